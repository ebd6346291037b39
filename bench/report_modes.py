"""Forward against reverse mode as m and n vary (bench/test_bench_modes.py): the points, the
log-log and affine fits, the crossovers, how close auto's choice comes to the faster mode, the
markdown section and the plot (DIR/modes.png).

The modes benchmarks store one (m, n, mode) each, with the lines of the grid the point lies on;
slopes are fitted over m (or n) >= TAIL_MIN, where the per-direction cost dominates the
per-sweep cost, and over the whole line.
"""
import math
import os

from report_format import fmt_time

TAIL_MIN = 16            # slopes are fitted over m (or n) >= 16: the per-direction regime

# line -> (the variable along it, {mode: the cost model's slope along it})
LINE_SPEC = {
    "m varies, n=1": ("m", {"forward": 1, "reverse": 0}),
    "n varies, m=1": ("n", {"forward": 0, "reverse": 1}),
    "diagonal m=n": ("m", {"forward": 1, "reverse": 1}),
    "m varies, n=16": ("m", {"forward": 1, "reverse": 0}),
    "n varies, m=16": ("n", {"forward": 0, "reverse": 1}),
    "m=2n": ("n", {"forward": 1, "reverse": 1}),
}
VISITS = {"forward": "visits_tangent", "reverse": "visits_adjoint"}


def _loglog(xs, ys):
    """Least-squares slope of log y against log x (None with fewer than 2 points)."""
    pts = [(math.log(x), math.log(y)) for x, y in zip(xs, ys) if x > 0 and y and y > 0]
    if len(pts) < 2:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx if sxx else None


def _affine(xs, ys):
    """Least-squares (a, b) of y = a + b x."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else 0.0
    return my - b * mx, b


def modes_points(benchmarks):
    """{(m, n): {"ops", "lines", mode: (seconds, extra_info)}} of the modes benchmarks. The
    seconds of a mode are the least of its benchmark's min and of its round-robin measurement
    (stored with the auto benchmark): two estimates of the same uncontended time, of which a
    burst of load on the shared machine can spoil one."""
    pts = {}
    for b in benchmarks:
        e = b["extra_info"]
        if e.get("kind") == "modes":
            d = pts.setdefault((e["m"], e["n"]), {"ops": e["ops"], "lines": e["lines"]})
            d[e["mode"]] = (b["stats"]["min"], e)
    for d in pts.values():
        rr = d["auto"][1] if "auto" in d else {}
        for mode in ("forward", "reverse", "auto"):
            t = rr.get(f"interleaved_{mode}_s")
            if mode in d and t is not None and t < d[mode][0]:
                d[mode] = (t, d[mode][1])
    return pts


def line_of(pts, line):
    """[(x, point)] along a line, x the varying m or n, ascending; only complete points."""
    var = LINE_SPEC[line][0]
    out = [((p[0] if var == "m" else p[1]), p) for p in pts
           if line in pts[p]["lines"] and all(md in pts[p] for md in ("forward", "reverse"))]
    return sorted(out)


def crossover(xs, fwd, rev):
    """x where forward and reverse time cross (log-log interpolation), or None."""
    d = [math.log(f / r) for f, r in zip(fwd, rev)]
    for i in range(len(xs) - 1):
        if d[i] == 0:
            return xs[i]
        if d[i] * d[i + 1] < 0:
            lx0, lx1 = math.log(xs[i]), math.log(xs[i + 1])
            return math.exp(lx0 + (lx1 - lx0) * d[i] / (d[i] - d[i + 1]))
    return None


def slope_rows(pts):
    """Rows (line, mode, model slope, tail slope, full slope, visits slope, a, b, ops) per line
    and mode."""
    rows = []
    for line, (var, model) in LINE_SPEC.items():
        lp = line_of(pts, line)
        if len(lp) < 2:
            continue
        for mode, ms in model.items():
            xs = [x for x, _ in lp]
            ts = [pts[p][mode][0] for _, p in lp]
            vs = [pts[p][mode][1].get(VISITS[mode]) for _, p in lp]
            tail = [(x, t, v) for x, t, v in zip(xs, ts, vs) if x >= TAIL_MIN]
            a, b = _affine(xs, ts)
            rows.append(dict(line=line, var=var, mode=mode, model=ms,
                             tail=_loglog([r[0] for r in tail], [r[1] for r in tail]),
                             full=_loglog(xs, ts),
                             visits=_loglog([r[0] for r in tail], [r[2] for r in tail]),
                             a=a, b=b, ops=pts[lp[-1][1]]["ops"]))
    return rows


def crossovers(pts):
    """[(line, var, fixed other dimension, x*)] on the lines where a crossing is expected."""
    out = []
    for line in ("m varies, n=16", "n varies, m=16", "m varies, n=1", "n varies, m=1"):
        lp = line_of(pts, line)
        if len(lp) < 2:
            continue
        var = LINE_SPEC[line][0]
        other = lp[0][1][1] if var == "m" else lp[0][1][0]
        xs = [x for x, _ in lp]
        x = crossover(xs, [pts[p]["forward"][0] for _, p in lp],
                      [pts[p]["reverse"][0] for _, p in lp])
        out.append((line, var, other, x))
    return out


def auto_over_best(d):
    """auto's time over the faster mode's at one point (None if a mode is missing)."""
    if all(md in d for md in ("forward", "reverse", "auto")):
        return d["auto"][0] / min(d["forward"][0], d["reverse"][0])
    return None


def choice_over_best(d):
    """The time of auto's choice over the faster mode's. auto runs exactly the chosen mode's
    sweep (one comparison of m and n before it), so the time of its choice is the lesser of
    auto's and the chosen mode's own: what is left is whether the choice was right, not the
    noise between two timings of one computation."""
    r = auto_over_best(d)
    chosen = d.get("auto", (None, {}))[1].get("chosen")
    if r is None or chosen not in d:
        return None
    return min(d["auto"][0], d[chosen][0]) / min(d["forward"][0], d["reverse"][0])


def auto_worst(pts):
    """(ratio, (m, n), chosen mode, raw auto/best) where auto's choice is furthest behind the
    faster mode."""
    worst = None
    for p, d in pts.items():
        r = choice_over_best(d)
        if r is not None and (worst is None or r > worst[0]):
            worst = (r, p, d["auto"][1].get("chosen", "?"), auto_over_best(d))
    return worst


def modes_section(pts):
    """Markdown lines: the family, the fitted slopes, the crossovers and every point."""
    out = ["## Forward vs reverse as m and n vary\n",
           "F: R^m → R^n = an input layer (m − 1 additions), a chain of 2048 scalar steps "
           "(5 operations each) and n outputs read off the chain, so ops(F) ≈ 10^4 for every "
           "(m, n). Times are `tape.jacobian(x, mode)` per call; visits are the tangent "
           "(forward) or adjoint (reverse) operation visits of one call from "
           "`tape.stats()[\"swept\"]`; auto/best is auto's own time over the faster mode's, "
           "choice/best the time of the mode auto chose (the lesser of auto's and that mode's timings: the "
           "same sweep) over the faster mode's. Each time is the lesser of the benchmark's min "
           "and a round-robin measurement of the three modes at the same point "
           "(benchlib.interleaved_best).\n"]
    rows = slope_rows(pts)
    if rows:
        out.append("### Fitted slopes (log-log)\n")
        out.append(f"| line | mode | cost model | slope ({'m/n'} ≥ {TAIL_MIN}) | slope (all) | "
                   "op-visits slope | affine fit: fixed + per direction | per op per direction |")
        out.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for r in rows:
            f = lambda v: "–" if v is None else f"{v:.2f}"          # noqa: E731
            out.append(f"| {r['line']} | {r['mode']} | {r['model']} | {f(r['tail'])} | "
                       f"{f(r['full'])} | {f(r['visits'])} | {fmt_time(max(r['a'], 0))} + "
                       f"{fmt_time(r['b'])} × {r['var']} | "
                       f"{r['b'] / r['ops'] * 1e9:.2f} ns |" if r["model"] else
                       f"| {r['line']} | {r['mode']} | {r['model']} | {f(r['tail'])} | "
                       f"{f(r['full'])} | {f(r['visits'])} | – | – |")
        out.append("")
    cx = crossovers(pts)
    if cx:
        out.append("### Crossover (forward time = reverse time)\n")
        out.append("| line | crossover | ratio to the fixed dimension |")
        out.append("| --- | --- | --- |")
        for line, var, other, x in cx:
            out.append(f"| {line} | {var}* = {x:.2f} | {x / other:.2f} |" if x else
                       f"| {line} | none in range | – |")
        out.append("")
    out.append("### Every point\n")
    out.append("| line | m | n | ops | forward | reverse | auto (chose) | forward visits | "
               "reverse visits | auto/best | choice/best |")
    out.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for line in LINE_SPEC:
        for x, p in line_of(pts, line):
            d = pts[p]
            fw, rv = d["forward"], d["reverse"]
            au = d.get("auto")
            aob, cob = auto_over_best(d), choice_over_best(d)
            out.append(f"| {line} | {p[0]} | {p[1]} | {d['ops']:,} | {fmt_time(fw[0])} | "
                       f"{fmt_time(rv[0])} | "
                       f"{fmt_time(au[0]) + ' (' + au[1]['chosen'] + ')' if au else '–'} | "
                       f"{fw[1]['visits_tangent']:,} | {rv[1]['visits_adjoint']:,} | "
                       f"{'–' if aob is None else f'{aob:.2f}'} | "
                       f"{'–' if cob is None else f'{cob:.2f}'} |")
    out.append("")
    return out


def plot_modes(benchmarks, directory):
    """DIR/modes.png: time against m (forward, reverse; n = 1 and n = 16) and against n (m = 1
    and m = 16), log-log, crossovers marked. Returns (the path, "") or (None, the reason)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None, "matplotlib is not installed"
    pts = modes_points(benchmarks)
    if not pts:
        return None, "no modes benchmarks in the JSON"
    fig, axes = plt.subplots(1, 2, figsize=(12, 5))
    panels = ((axes[0], "m", ("m varies, n=1", "m varies, n=16")),
              (axes[1], "n", ("n varies, m=1", "n varies, m=16")))
    for ax, var, lines in panels:
        for line, style in zip(lines, ("-", "--")):
            lp = line_of(pts, line)
            if not lp:
                continue
            xs = [x for x, _ in lp]
            fw = [pts[p]["forward"][0] for _, p in lp]
            rv = [pts[p]["reverse"][0] for _, p in lp]
            fixed = line.split(", ")[1]
            ax.plot(xs, fw, style, marker="o", color="tab:blue", label=f"forward, {fixed}")
            ax.plot(xs, rv, style, marker="s", color="tab:red", label=f"reverse, {fixed}")
            x = crossover(xs, fw, rv)
            if x:
                y = math.exp(sum(math.log(v) for v in (
                    _interp(xs, fw, x), _interp(xs, rv, x))) / 2)
                ax.axvline(x, color="gray", linestyle=":", linewidth=1)
                ax.plot([x], [y], marker="X", markersize=12, color="black")
                ax.annotate(f"crossover {var}={x:.1f} ({fixed})", (x, y),
                            textcoords="offset points", xytext=(8, -14), fontsize=8)
        # slope-1 reference through the largest forward (m) / reverse (n) point
        lp = line_of(pts, lines[0])
        if lp:
            mode = "forward" if var == "m" else "reverse"
            x1, p1 = lp[-1]
            y1 = pts[p1][mode][0]
            xs = [x for x, _ in lp]
            ax.plot(xs, [y1 * x / x1 for x in xs], color="gray", linewidth=0.8, alpha=0.6,
                    label="slope 1 (cost model)")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel(f"{var} ({'inputs' if var == 'm' else 'outputs'})")
        ax.set_ylabel("seconds per tape.jacobian call")
        ax.set_title(f"Jacobian time against {var}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    ops = next(iter(pts.values()))["ops"]
    fig.suptitle(f"tapead: forward vs reverse Jacobian, F: R^m → R^n, ≈{ops:,} operations")
    fig.tight_layout()
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "modes.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path, ""


def _interp(xs, ys, x):
    """ys at x by log-log interpolation."""
    for i in range(len(xs) - 1):
        if xs[i] <= x <= xs[i + 1]:
            t = (math.log(x) - math.log(xs[i])) / (math.log(xs[i + 1]) - math.log(xs[i]))
            return math.exp(math.log(ys[i]) + t * (math.log(ys[i + 1]) - math.log(ys[i])))
    return ys[-1]

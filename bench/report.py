"""Turn a pytest-benchmark JSON of bench/ into a markdown report: issue 2's speed targets and
issue 4's targets side by side with the measured values (PASS/FAIL), the forward/reverse modes
table with fitted slopes and crossovers, the problem suite, the peers, then every benchmark.

    python -m pytest bench --benchmark-json=bench.json -q && python bench/report.py bench.json

Times are pytest-benchmark's ``min`` (best round, per call); ratios to plain Python come from
``extra_info``, against the plain-Python baseline measured in the same run (bench/conftest.py).
Options: ``-o FILE`` writes the markdown to FILE too; ``--plot DIR`` writes DIR/modes.png (time
against m and against n, both modes, crossover marked; needs matplotlib); ``--strict`` exits 1
when a target fails. Sections whose benchmarks are not in the JSON are left out.
"""
import argparse
import json
import math
import os
import sys

# issue 2, "Speed"
RECORD_MAX = 15.0        # recording (with the first gradient) <= 15x one plain-Python evaluation
REPLAY_MIN = 5.0         # a replayed gradient >= 5x faster than one plain-Python evaluation
PRIMAL_MAX = 2.0         # ns/op, tapes >= 10**6 operations
ADJOINT_MAX = 3.0        # ns/op, tapes >= 10**6 operations
SEED_GRAD_MAX = 2.0      # µs per tape.gradient(x) call on the seed's 2-input tape
BYTES_MAX = 10.0         # tape.nbytes / len(tape)
# small calls (bench/test_bench_small.py): µs per call on the seed's f; the goals are stored
# with each benchmark as extra_info "target_us"
BIG = 10**6              # "tapes of >= 10**6 operations"


def fmt_time(s):
    if s is None:
        return "–"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
        if s >= scale or unit == "ns":
            v = s / scale
            return f"{v:.3g} {unit}" if v < 100 else f"{v:.0f} {unit}"


def fmt_ops(n):
    if n is None:
        return "–"
    if n >= 10**5 and str(n).rstrip("0") == "1":
        return f"10^{len(str(n)) - 1}"
    return f"{n:,}"


def faster(speedup):
    return f"{speedup:.1f}× faster" if speedup >= 1 else f"{1 / speedup:.1f}× slower"


def verdict(ok):
    return "PASS" if ok else "**FAIL**"


def case(b):
    e = b["extra_info"]
    text = e.get("problem", b["name"])
    if "input" in e and e["kind"] != "plain":
        text += f", x as {e['input']}"
    return f"{text} ({fmt_ops(e['ops'])} ops)" if "ops" in e else text


def targets(benchmarks):
    """Rows (target, case, measured, goal, ok) of the issue-2 targets."""
    by_kind = {}
    for b in benchmarks:
        by_kind.setdefault(b["extra_info"].get("kind"), []).append(b)
    rows = []

    for b in by_kind.get("record", []):
        e = b["extra_info"]
        r = e.get("ratio_to_plain_list")
        if r is not None:
            rows.append(("recording + first gradient vs one plain-Python f", case(b),
                         f"{r:.1f}× ({fmt_time(b['stats']['min'])}; vs ndarray input "
                         f"{e['ratio_to_plain_ndarray']:.1f}×)", f"≤ {RECORD_MAX:g}×",
                         r <= RECORD_MAX))

    for b in by_kind.get("replay_gradient", []):
        e = b["extra_info"]
        s = e.get("speedup_vs_plain_list")
        if s is not None:
            rows.append(("replayed gradient, speed-up over one plain-Python f", case(b),
                         f"{faster(s)} ({fmt_time(b['stats']['min'])}; vs ndarray input "
                         f"{faster(e['speedup_vs_plain_ndarray'])})", f"≥ {REPLAY_MIN:g}× faster",
                         s >= REPLAY_MIN))

    big = [b for b in by_kind.get("sweep_primal", []) + by_kind.get("huge", [])
           if b["extra_info"].get("ops", 0) >= BIG]
    for b in big:
        e = b["extra_info"]
        v = e.get("ns_per_op") if e["kind"] == "sweep_primal" else e.get("primal_ns_per_op")
        if v is not None:
            rows.append(("primal sweep (tape.forward) per operation", case(b), f"{v:.2f} ns/op",
                         f"≤ {PRIMAL_MAX:g} ns/op", v <= PRIMAL_MAX))

    big = [b for b in by_kind.get("sweep_gradient", []) + by_kind.get("huge", [])
           if b["extra_info"].get("ops", 0) >= BIG]
    for b in big:
        e = b["extra_info"]
        v = e.get("adjoint_ns_per_op")
        if v is not None:
            rows.append(("adjoint sweep per operation (gradient − primal)", case(b),
                         f"{v:.2f} ns/op (gradient {e['ns_per_op']:.2f}, primal "
                         f"{e['primal_ns_per_op']:.2f})", f"≤ {ADJOINT_MAX:g} ns/op",
                         v <= ADJOINT_MAX))

    for b in by_kind.get("replay_gradient", []):
        e = b["extra_info"]
        if e.get("problem") == "seed" and e.get("us_per_call") is not None:
            v = e["us_per_call"]
            rows.append(("tape.gradient(x) on the seed's 2-input tape", case(b),
                         f"{v:.2f} µs/call", f"≤ {SEED_GRAD_MAX:g} µs/call", v <= SEED_GRAD_MAX))

    small = {"small_multi_arg_gradient": "multi-arg gradient t.gradient((x1, x2))",
             "small_record_gradient": "recording + first gradient ad.record(f, x).gradient()",
             "small_ad_grad": "ad.grad(f)(x)"}
    for kind, name in small.items():
        for b in by_kind.get(kind, []):
            e = b["extra_info"]
            us = e.get("us_per_call")
            if us is None or e.get("target_us") is None:
                continue
            c = "seed f" + (f", x as {e['input']}" if "input" in e else "")
            inter = e.get("ratio_interleaved")
            rows.append((f"small calls: {name}", c,
                         f"{us:.2f} µs ({e['ratio_to_plain']:.1f}× one plain f"
                         + (f"; interleaved {inter:.1f}×" if inter is not None else "") + ")",
                         f"≤ {e['target_us']:g} µs", us <= e["target_us"]))

    seen = set()
    for b in benchmarks:
        e = b["extra_info"]
        if "bytes_per_op" in e and e.get("problem") not in seen:
            seen.add(e.get("problem"))
            v = e["bytes_per_op"]
            rows.append(("tape storage, tape.nbytes / len(tape)", f"{e['problem']} "
                         f"({fmt_ops(e['ops'])} ops)", f"{v:.2f} B/op",
                         f"≤ {BYTES_MAX:g} B/op", v <= BYTES_MAX))
    return rows


def markdown(data):
    benchmarks = [b for b in data.get("benchmarks", []) if b.get("stats")]
    out = []
    mi, ci = data.get("machine_info", {}), data.get("commit_info", {})
    cpu = mi.get("lscpu_model") or mi.get("cpu", {}).get("brand_raw") or mi.get("processor") \
        or "?"
    if mi.get("cores"):
        cpu += f", {mi['cores']} cores"
    commit = (ci.get("id") or "?")[:10] + (" (dirty)" if ci.get("dirty") else "")
    out.append("# tapead benchmarks\n")
    out.append(f"{data.get('datetime', '?')} · commit {commit} · {cpu} · "
               f"{mi.get('python_implementation', '')} {mi.get('python_version', '')}\n")
    out.append("Times are the best round (pytest-benchmark `min`, per call); ratios are against "
               "one plain-Python evaluation of the same f with a list of floats (its fastest "
               "input), measured in the same run; the ratio against a NumPy-array input is in "
               "brackets.\n")

    rows = targets(benchmarks)
    n_fail = 0
    if rows:
        out.append("## Issue 2: speed targets\n")
        out.append("| target | case | measured | goal | result |")
        out.append("| --- | --- | --- | --- | --- |")
        for name, c, measured, goal, ok in rows:
            out.append(f"| {name} | {c} | {measured} | {goal} | {verdict(ok)} |")
        n_fail = sum(not r[4] for r in rows)
        out.append(f"\n{len(rows) - n_fail} of {len(rows)} targets pass.\n")

    rows5 = ratio_targets(benchmarks)
    if rows5:
        out.append("## Second order and Taylor targets (issue 5)\n")
        out.append("| target | case | measured | goal | result |")
        out.append("| --- | --- | --- | --- | --- |")
        for name, c, measured, goal, ok in rows5:
            out.append(f"| {name} | {c} | {measured} | {goal} | {verdict(ok)} |")
        n5 = sum(not r[4] for r in rows5)
        out.append(f"\n{len(rows5) - n5} of {len(rows5)} targets pass.\n")
        n_fail += n5

    text4, fail4 = issue4_sections(data, benchmarks)
    out.append(text4)
    n_fail += fail4

    huge = [b for b in benchmarks if b["extra_info"].get("kind") == "huge"]
    for b in huge:
        e = b["extra_info"]
        out.append(f"## 10^8-operation tape ({e['problem']}, {e['ops']:,} ops)\n")
        out.append("| record | record/op | primal/op | gradient/op | adjoint/op | bytes/op | "
                   "peak RSS |")
        out.append("| --- | --- | --- | --- | --- | --- | --- |")
        out.append(f"| {fmt_time(e['record_s'])} | {e['record_ns_per_op']:.0f} ns | "
                   f"{e['primal_ns_per_op']:.2f} ns | {e['ns_per_op']:.2f} ns | "
                   f"{e['adjoint_ns_per_op']:.2f} ns | {e['bytes_per_op']:.2f} | "
                   f"{e['peak_rss_bytes'] / 2**30:.2f} GiB ({e['peak_rss_scope']}) |\n")

    out.append("## Every benchmark\n")
    out.append("| group | benchmark | min | median | rounds × iterations | per op | "
               "vs plain (list) |")
    out.append("| --- | --- | --- | --- | --- | --- | --- |")
    for b in sorted(benchmarks, key=lambda b: (b["group"] or "", b["stats"]["min"])):
        e, st = b["extra_info"], b["stats"]
        per_op = f"{e['ns_per_op']:.2f} ns" if e.get("ns_per_op") is not None else ""
        if e.get("ratio_to_plain_list") is not None:
            vs = f"{e['ratio_to_plain_list']:.2f}×"
        elif e.get("ratio_to_plain") is not None:
            vs = f"{e['ratio_to_plain']:.3g}×"
        elif e.get("speedup_vs_plain_list") is not None:
            vs = f"{1 / e['speedup_vs_plain_list']:.3g}×"
        elif e.get("kind") == "plain":
            vs = f"session baseline {fmt_time(e.get('session_baseline_s'))}"
        else:
            vs = ""
        out.append(f"| {b['group']} | {b['name'].removeprefix('test_')} | "
                   f"{fmt_time(st['min'])} | {fmt_time(st['median'])} | "
                   f"{st['rounds']} × {st['iterations']} | {per_op} | {vs} |")
    return "\n".join(out) + "\n", n_fail

def ratio_targets(benchmarks):
    """Rows of the benchmarks that carry their own target as extra_info "target_ratio" and
    "ratio" (time over a same-run baseline stored as "<baseline>_s", e.g. issue 5's
    bench/test_bench_second.py)."""
    rows = []
    for b in sorted(benchmarks, key=lambda b: (b["group"] or "", b["name"])):
        e = b["extra_info"]
        if e.get("target_ratio") is None or e.get("ratio") is None:
            continue
        base = next((k[:-2] for k in e if k.endswith("_s") and k[:-2] in
                     ("gradient", "forward", "primal")), "baseline")
        what = b["name"].removeprefix("test_").split("[")[0].replace("_", " ")
        c = e.get("problem", b.get("param", ""))
        if e.get("order") is not None:
            c += f", order {e['order']}"
        rows.append((f"{what}: time / one {base}", c,
                     f"{e['ratio']:.2f}× ({fmt_time(b['stats']['min'])} vs "
                     f"{fmt_time(e.get(base + '_s'))})", f"≤ {e['target_ratio']:g}×",
                     e["ratio"] <= e["target_ratio"]))
    return rows


# ==== issue 4: modes, problem suite, peers =====================================================
SLOPE_TOL = 0.20         # measured forward/reverse slopes within 20% of the cost model's 1
AUTO_MAX = 1.10          # auto at most 10% slower than the faster mode
CROSS_RANGE = (0.5, 2.0)  # "crossover near m = n": m*/n (or n*/m) within this range
TORCH_MIN = 10.0         # cold gradient >= 10x faster than PyTorch eager
MICROGRAD_MIN = 3.0      # cold gradient >= 3x faster than micrograd-style
TAIL_MIN = 16            # slopes are fitted over m (or n) >= 16: the per-direction regime
CASADI_CASES = ("rosen-10^4", "det_minor-8")

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


def peer_data(benchmarks):
    """{case: {system: {"cold"|"warm": (min seconds, extra_info)}}} and the problem of each case."""
    cases = {}
    for b in benchmarks:
        e = b["extra_info"]
        if e.get("kind") in ("peer_cold", "peer_warm"):
            cases.setdefault(e["case"], {}).setdefault(e["system"], {})[e["kind"][5:]] = \
                (b["stats"]["min"], e)
    return cases


def problem_data(benchmarks):
    """{(problem, size): {"cold"|"warm": (min seconds, extra_info)}}."""
    out = {}
    for b in benchmarks:
        e = b["extra_info"]
        if e.get("kind") in ("problem_cold", "problem_warm"):
            out.setdefault((e["problem"], e["size"]), {})[e["kind"][8:]] = (b["stats"]["min"], e)
    return out


def issue4_targets(pts, peers):
    """Rows (target, case, measured, goal, ok) of issue 4; ok None: not measured in this run."""
    rows = []
    sr = {(r["line"], r["mode"]): r for r in slope_rows(pts)}
    for line, mode in (("m varies, n=1", "forward"), ("n varies, m=1", "reverse")):
        r = sr.get((line, mode))
        if r and r["tail"] is not None:
            rows.append((f"{mode} time ∝ {r['var']} (log-log slope, {r['var']} ≥ {TAIL_MIN})",
                         f"F: {line} ({r['ops']:,} ops)",
                         f"{r['tail']:.2f} (over all {r['var']}: {r['full']:.2f}; op-visits "
                         f"{r['visits']:.2f})", f"1 ± {SLOPE_TOL:.0%}",
                         abs(r["tail"] - 1) <= SLOPE_TOL))
    w = auto_worst(pts)
    if w:
        r, (m, n), chosen, raw = w
        worst_raw = max(auto_over_best(d) or 0 for d in pts.values())
        rows.append(("auto's choice vs the faster mode (worst point)",
                     f"m={m}, n={n} (auto: {chosen})",
                     f"{r:.2f}× (auto's own timing there {raw:.2f}×, worst anywhere "
                     f"{worst_raw:.2f}×)", f"≤ {AUTO_MAX:.2f}×", r <= AUTO_MAX))
    for line, var, other, x in crossovers(pts):
        if other == 16:
            ratio = x / other if x else None
            rows.append((f"crossover of forward and reverse ({line})", f"{var}* / {other}",
                         f"{var}* = {x:.1f} → {ratio:.2f}" if x else "no crossing",
                         f"{CROSS_RANGE[0]:g}–{CROSS_RANGE[1]:g} (near m = n)",
                         ratio is not None and CROSS_RANGE[0] <= ratio <= CROSS_RANGE[1]))

    for case in CASADI_CASES:
        d = peers.get(case, {})
        t, c = d.get("tapead", {}).get("warm"), d.get("casadi", {}).get("warm")
        if t and c:
            rows.append(("warm gradient vs CasADi SX Function", case,
                         f"tapead {fmt_time(t[0])}, CasADi {fmt_time(c[0])}: {faster(c[0] / t[0])}",
                         "faster", t[0] < c[0]))
        else:
            rows.append(("warm gradient vs CasADi SX Function", case, "not measured", "faster",
                         None))
    for peer, goal in (("torch", TORCH_MIN), ("micrograd", MICROGRAD_MIN)):
        label = "PyTorch eager" if peer == "torch" else "micrograd-style"
        found = False
        for case, d in sorted(peers.items(), key=lambda kv: _case_key(kv[0])):
            t, o = d.get("tapead", {}).get("cold"), d.get(peer, {}).get("cold")
            if t and o and t[1]["derivative"] == "gradient":
                found = True
                rows.append((f"cold gradient (record + sweep) vs {label}", case,
                             f"tapead {fmt_time(t[0])}, {peer} {fmt_time(o[0])}: "
                             f"{faster(o[0] / t[0])}", f"≥ {goal:g}× faster", o[0] / t[0] >= goal))
        if not found:
            rows.append((f"cold gradient vs {label}", "–", "not measured", f"≥ {goal:g}× faster",
                         None))
    return rows


def _case_key(case):
    name, _, size = case.rpartition("-")
    return name, (10 ** int(size[3:]) if size.startswith("10^") else int(size))


def _verdict4(ok):
    return "not run" if ok is None else verdict(ok)


def modes_section(pts):
    out = ["## Forward vs reverse as m and n vary\n",
           "F: R^m → R^n = an input layer (m − 1 additions), a chain of 2048 scalar steps "
           "(5 operations each) and n outputs read off the chain, so ops(F) ≈ 10^4 for every "
           "(m, n). Times are `tape.jacobian(x, mode)` per call; visits are the tangent "
           "(forward) or adjoint (reverse) operation visits of one call from "
           "`tape.stats()[\"swept\"]`; auto/best is auto's own time over the faster mode's, choice/best "
           "the time of the mode auto chose (the lesser of auto's and that mode's timings: the "
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


def problems_section(probs):
    out = ["## Problem suite (CppAD's speed tests)\n",
           "cold = `ad.record(f, x0)` + the first derivative; warm = the derivative replayed "
           "from the tape at a new point; plain = one evaluation of the same Python f on floats "
           "in the same run; ns/op = time / len(tape).\n",
           "| problem | size | derivative | ops | plain f | cold | cold / plain | cold ns/op | "
           "warm | warm / plain | warm ns/op |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    rerecorded = False
    for (name, size), d in sorted(probs.items()):
        c, w = d.get("cold"), d.get("warm")
        e = (c or w)[1]
        cell = lambda x, k: "–" if x is None else (                 # noqa: E731
            fmt_time(x[0]) if k == "t" else f"{x[1]['ratio_to_plain']:.3g}×" if k == "r"
            else f"{x[1]['ns_per_op']:.1f}")
        mark = " †" if w and w[1].get("rerecords_at_x1") else ""
        rerecorded = rerecorded or bool(mark)
        out.append(f"| {name} | {size} | {e['derivative']} | {e['ops']:,} | "
                   f"{fmt_time(e['plain_s'])} | {cell(c, 't')} | {cell(c, 'r')} | {cell(c, 'n')} | "
                   f"{cell(w, 't')}{mark} | {cell(w, 'r')} | {cell(w, 'n')} |")
    if rerecorded:
        out.append("\n† a branch guard (a pivot comparison) flipped at the new point: the first "
                   "replay re-recorded the tape there, and the timed replays ran the re-recorded "
                   "tape.")
    out.append("")
    return out


def peers_section(peers, skips):
    out = ["## Other AD systems side by side\n",
           "Same problem code on every system; every derivative checked against the same "
           "oracle first. cold = from scratch in one call (JAX jit: trace + compile + call; "
           "CasADi: SX graph + derivative + Function + call); build = that build alone, timed "
           "once; warm = the derivative at a new point from what was built. ns/op divides by "
           "tapead's len(tape) for the same problem. ×tapead = the system's time over "
           "tapead's.\n",
           "| case | system | cold | cold ns/op | cold ×tapead | build | warm | warm ns/op | "
           "warm ×tapead |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for case in sorted(peers, key=_case_key):
        d = peers[case]
        tc, tw = d.get("tapead", {}).get("cold"), d.get("tapead", {}).get("warm")
        order = sorted(d, key=lambda s: (s != "tapead", d[s].get("cold", (math.inf,))[0]))
        for s in order:
            c, w = d[s].get("cold"), d[s].get("warm")
            e = (c or w)[1]
            build = w[1].get("build_s") if w and s != "tapead" else None
            c_ns = f"{c[1]['ns_per_op']:.0f}" if c and c[1].get("ns_per_op") else "–"
            w_ns = f"{w[1]['ns_per_op']:.1f}" if w and w[1].get("ns_per_op") else "–"
            c_x = f"{c[0] / tc[0]:.3g}" if c and tc else "–"
            w_x = f"{w[0] / tw[0]:.3g}" if w and tw else "–"
            out.append(f"| {case} ({e['ops']:,} ops, {e['derivative']}) | {e['label']} | "
                       f"{fmt_time(c[0]) if c else '–'} | {c_ns} | {c_x} | "
                       f"{fmt_time(build) if build is not None else '–'} | "
                       f"{fmt_time(w[0]) if w else '–'} | {w_ns} | {w_x} |")
    out.append("")
    if skips:
        full = [s for s in skips if "--full" in s["reason"]]
        other = [s for s in skips if "--full" not in s["reason"]]
        out.append("Not run: " + (f"{len(full)} peer benchmarks that need `--full`" if full
                                   else "nothing for lack of `--full`") + ".")
        for s in other:
            out.append(f"- `{s['test']}`: {s['reason']}")
        out.append("")
    return out


def issue4_sections(data, benchmarks):
    """Markdown of issue 4 (targets, modes, problem suite, peers) and its number of failures."""
    pts, peers, probs = modes_points(benchmarks), peer_data(benchmarks), problem_data(benchmarks)
    if not (pts or peers or probs):
        return "", 0
    out = ["## Issue 4: targets\n"]
    rows = issue4_targets(pts, peers)
    out.append("| target | case | measured | goal | result |")
    out.append("| --- | --- | --- | --- | --- |")
    for name, c, measured, goal, ok in rows:
        out.append(f"| {name} | {c} | {measured} | {goal} | {_verdict4(ok)} |")
    n_fail = sum(ok is False for *_, ok in rows)
    n_run = sum(ok is not None for *_, ok in rows)
    out.append(f"\n{n_run - n_fail} of {n_run} measured targets pass.\n")
    if pts:
        out += modes_section(pts)
    if probs:
        out += problems_section(probs)
    if peers or data.get("tapead_skips"):
        out += peers_section(peers, [s for s in data.get("tapead_skips", [])
                                     if s["test"].startswith("test_peer")])
    return "\n".join(out) + "\n", n_fail


_plot_skip_reason = ""


def plot_modes(data, directory):
    """DIR/modes.png: time against m (forward, reverse; n = 1 and n = 16) and against n (m = 1
    and m = 16), log-log, crossovers marked. Returns the path, or None (reason in
    _plot_skip_reason)."""
    global _plot_skip_reason
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        _plot_skip_reason = "matplotlib is not installed"
        return None
    pts = modes_points([b for b in data.get("benchmarks", []) if b.get("stats")])
    if not pts:
        _plot_skip_reason = "no modes benchmarks in the JSON"
        return None
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
    return path


def _interp(xs, ys, x):
    """ys at x by log-log interpolation."""
    for i in range(len(xs) - 1):
        if xs[i] <= x <= xs[i + 1]:
            t = (math.log(x) - math.log(xs[i])) / (math.log(xs[i + 1]) - math.log(xs[i]))
            return math.exp(math.log(ys[i]) + t * (math.log(ys[i + 1]) - math.log(ys[i])))
    return ys[-1]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("json", help="the file written by pytest --benchmark-json")
    ap.add_argument("-o", "--output", help="also write the markdown to this file")
    ap.add_argument("--plot", metavar="DIR", help="write DIR/modes.png (needs matplotlib)")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a target fails")
    args = ap.parse_args(argv)
    with open(args.json) as f:
        data = json.load(f)
    text, n_fail = markdown(data)
    sys.stdout.write(text)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)
        print(f"wrote {args.output}", file=sys.stderr)
    if args.plot:
        path = plot_modes(data, args.plot)
        print(f"wrote {path}" if path else "no plot: " + _plot_skip_reason, file=sys.stderr)
    return 1 if args.strict and n_fail else 0


if __name__ == "__main__":
    sys.exit(main())

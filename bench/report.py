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
import sys

from report_format import case_key, faster, fmt_ops, fmt_time
from report_modes import (TAIL_MIN, auto_over_best, auto_worst, crossovers, modes_points,
                          modes_section, plot_modes, slope_rows)
from report_suites import peer_data, peers_section, problem_data, problems_section

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
CASADI_CASES = ("rosen-10^4", "det_minor-8")

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
        for case, d in sorted(peers.items(), key=lambda kv: case_key(kv[0])):
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


def _verdict4(ok):
    return "not run" if ok is None else verdict(ok)


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
        path, why = plot_modes([b for b in data.get("benchmarks", []) if b.get("stats")],
                               args.plot)
        print(f"wrote {path}" if path else "no plot: " + why, file=sys.stderr)
    return 1 if args.strict and n_fail else 0


if __name__ == "__main__":
    sys.exit(main())

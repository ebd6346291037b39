"""Turn a pytest-benchmark JSON of bench/ into a markdown report: issue 2's speed targets side by
side with the measured values (PASS/FAIL), then every benchmark of the run.

    python -m pytest bench --benchmark-json=bench.json -q && python bench/report.py bench.json

Times are pytest-benchmark's ``min`` (best round, per call); ratios to plain Python come from
``extra_info``, against the plain-Python baseline measured in the same run (bench/conftest.py).
Options: ``-o FILE`` writes the markdown to FILE too; ``--strict`` exits 1 when a target fails.
"""
import argparse
import json
import sys

# issue 2, "Speed"
RECORD_MAX = 15.0        # recording (with the first gradient) <= 15x one plain-Python evaluation
REPLAY_MIN = 5.0         # a replayed gradient >= 5x faster than one plain-Python evaluation
PRIMAL_MAX = 2.0         # ns/op, tapes >= 10**6 operations
ADJOINT_MAX = 3.0        # ns/op, tapes >= 10**6 operations
SEED_GRAD_MAX = 2.0      # µs per tape.gradient(x) call on the seed's 2-input tape
BYTES_MAX = 10.0         # tape.nbytes / len(tape)
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
    cpu = mi.get("cpu", {}).get("brand_raw") or mi.get("processor") or "?"
    commit = (ci.get("id") or "?")[:10] + (" (dirty)" if ci.get("dirty") else "")
    out.append("# tapead benchmarks: issue 2 speed targets\n")
    out.append(f"{data.get('datetime', '?')} · commit {commit} · {cpu} · "
               f"{mi.get('python_implementation', '')} {mi.get('python_version', '')}\n")
    out.append("Times are the best round (pytest-benchmark `min`, per call); ratios are against "
               "one plain-Python evaluation of the same f with a list of floats (its fastest "
               "input), measured in the same run; the ratio against a NumPy-array input is in "
               "brackets.\n")

    rows = targets(benchmarks)
    out.append("| target | case | measured | goal | result |")
    out.append("| --- | --- | --- | --- | --- |")
    for name, c, measured, goal, ok in rows:
        out.append(f"| {name} | {c} | {measured} | {goal} | {verdict(ok)} |")
    n_fail = sum(not r[4] for r in rows)
    out.append(f"\n{len(rows) - n_fail} of {len(rows)} targets pass.\n")

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


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("json", help="the file written by pytest --benchmark-json")
    ap.add_argument("-o", "--output", help="also write the markdown to this file")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a target fails")
    args = ap.parse_args(argv)
    with open(args.json) as f:
        data = json.load(f)
    text, n_fail = markdown(data)
    sys.stdout.write(text)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)
    return 1 if args.strict and n_fail else 0


if __name__ == "__main__":
    sys.exit(main())

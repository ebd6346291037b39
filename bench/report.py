"""Turn a pytest-benchmark JSON of bench/ into a markdown report: the targets, each with its
measured value and PASS/FAIL (bench/report_targets.py), forward against reverse mode as m and n
vary with fitted slopes and crossovers (bench/report_modes.py), the problem suite and the other
AD systems (bench/report_suites.py), the 10^8-operation tape, then every benchmark.

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

import report_targets
from report_format import fmt_time
from report_modes import modes_section, plot_modes
from report_suites import peers_section, problem_data, problems_section


def header(data):
    mi, ci = data.get("machine_info", {}), data.get("commit_info", {})
    cpu = mi.get("lscpu_model") or mi.get("cpu", {}).get("brand_raw") or mi.get("processor") \
        or "?"
    if mi.get("cores"):
        cpu += f", {mi['cores']} cores"
    commit = (ci.get("id") or "?")[:10] + (" (dirty)" if ci.get("dirty") else "")
    return ["# tapead benchmarks\n",
            f"{data.get('datetime', '?')} · commit {commit} · {cpu} · "
            f"{mi.get('python_implementation', '')} {mi.get('python_version', '')}\n",
            "Times are the best round (pytest-benchmark `min`, per call); ratios are against "
            "one plain-Python evaluation of the same f with a list of floats (its fastest "
            "input), measured in the same run; the ratio against a NumPy-array input is in "
            "brackets.\n"]


def markdown(data):
    """The report and its number of failed targets."""
    benchmarks = [b for b in data.get("benchmarks", []) if b.get("stats")]
    run = report_targets.Run(benchmarks)
    out = header(data)
    targets, n_fail = report_targets.markdown(report_targets.evaluate(run))
    out += targets
    if run.modes:
        out += modes_section(run.modes)
    probs = problem_data(benchmarks)
    if probs:
        out += problems_section(probs)
    skips = [s for s in data.get("tapead_skips", []) if s["test"].startswith("test_peer")]
    if run.peers or skips:
        out += peers_section(run.peers, skips)
    out += huge_section(run.kind("huge"))
    out += every_benchmark(benchmarks)
    return "\n".join(out) + "\n", n_fail


def huge_section(huge):
    """The 10^8-operation tape (bench/test_bench_huge.py, opt-in): one table per benchmark."""
    out = []
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
    return out


def every_benchmark(benchmarks):
    """One row per benchmark, by group, fastest first."""
    out = ["## Every benchmark\n"]
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
    return out


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

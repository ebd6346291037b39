"""The problem suite (CppAD's speed tests on tapead, bench/test_bench_problems.py) and the other
AD systems side by side (bench/test_bench_peers.py): their data read from the benchmark JSON and
their markdown sections."""
import math

from report_format import case_key, fmt_time


def peer_data(benchmarks):
    """{case: {system: {"cold"|"warm": (min seconds, extra_info)}}}."""
    cases = {}
    for b in benchmarks:
        e = b["extra_info"]
        if e.get("kind") in ("peer_cold", "peer_warm"):
            cases.setdefault(e["case"], {}).setdefault(e["system"], {})[e["kind"][5:]] = \
                (b["stats"]["min"], e)
    return cases


def problem_data(benchmarks):
    """{(problem, size): {"cold"|"warm"|"sparse"|"optimized": (min seconds, extra_info)}}."""
    out = {}
    for b in benchmarks:
        e = b["extra_info"]
        if e.get("kind") in ("problem_cold", "problem_warm", "problem_sparse",
                             "problem_optimized"):
            out.setdefault((e["problem"], e["size"]), {})[e["kind"][8:]] = (b["stats"]["min"], e)
    return out


def problems_section(probs):
    """Markdown lines of the problem-suite table."""
    out = ["## Problem suite (CppAD's speed tests)\n",
           "cold = `ad.record(f, x0)` + the first derivative; warm = the derivative replayed "
           "from the tape at a new point; plain = one evaluation of the same Python f on floats "
           "in the same run; ns/op = time / len(tape); optimised = the warm derivative from "
           "`t.optimize()` of the same recording (its operations; speed-up = the unoptimised "
           "tape's time over the optimised one's, the two timed round-robin in one test); "
           "sparse = the warm derivative with `sparse=True` (directions: forward + reverse "
           "colours of a Jacobian, or a Hessian's).\n",
           "| problem | size | derivative | ops | plain f | cold | cold / plain | cold ns/op | "
           "warm | warm / plain | warm ns/op | optimised (ops) | speed-up | "
           "sparse (directions) |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | "
           "--- |"]
    rerecorded = False
    for (name, size), d in sorted(probs.items()):
        c, w, sp, o = d.get("cold"), d.get("warm"), d.get("sparse"), d.get("optimized")
        e = (c or w or sp or o)[1]
        dirs = sp and sp[1].get("colours")
        dirs = "+".join(map(str, dirs)) if isinstance(dirs, list) else dirs
        sparse = "–" if sp is None else f"{fmt_time(sp[0])} ({dirs})"
        optimized = "– | –" if o is None else (
            f"{fmt_time(o[0])} ({o[1]['ops_optimized']:,}) | "
            + (f"{o[1]['speedup']:.3g}×" if o[1].get("speedup") else "–"))
        cell = lambda x, k: "–" if x is None else (                 # noqa: E731
            fmt_time(x[0]) if k == "t" else f"{x[1]['ratio_to_plain']:.3g}×" if k == "r"
            else f"{x[1]['ns_per_op']:.1f}")
        mark = " †" if any(x and x[1].get("rerecords_at_x1") for x in (w, o)) else ""
        rerecorded = rerecorded or bool(mark)
        out.append(f"| {name} | {size} | {e['derivative']} | {e['ops']:,} | "
                   f"{fmt_time(e['plain_s'])} | {cell(c, 't')} | {cell(c, 'r')} | "
                   f"{cell(c, 'n')} | {cell(w, 't')}{mark} | {cell(w, 'r')} | {cell(w, 'n')} | "
                   f"{optimized} | {sparse} |")
    if rerecorded:
        out.append("\n† a branch guard (a pivot comparison) flipped at the new point: the first "
                   "replay re-recorded the tape there, and the timed replays ran the re-recorded "
                   "tape (optimised again, in the optimised column).")
    out.append("")
    return out


def peers_section(peers, skips):
    """Markdown lines of the peers table and of the peer benchmarks that did not run."""
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
    for case in sorted(peers, key=case_key):
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

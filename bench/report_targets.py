"""The benchmarks' targets as one table, TARGETS, and the generic code that measures them.

A row (Target) names its area, says what it measures, how the measured values are read from the
benchmark JSON (a reader: Run -> Readings, one per case), the comparison, the goal and the unit.
``evaluate`` turns the table into verdicts (PASS, FAIL, or not measured) and ``markdown`` into a
table. To add a target, add a row; a reader is usually ``from_info(kind, extra_info key)``.

An area none of whose benchmarks is in the JSON is left out; a row of an area that ran but with
nothing to read shows "not measured". A benchmark that stores its own "target_ratio" and "ratio"
(time over a same-run baseline) and whose kind is in no area is still reported, by the last row.
"""
import functools
from dataclasses import dataclass
from typing import Callable, Iterable, Optional

from report_format import case_key, faster, fmt_ops, fmt_time
from report_modes import auto_over_best, auto_worst, crossovers, modes_points, slope_rows
from report_suites import peer_data

BASELINES = ("gradient", "forward", "primal")   # extra_info "<baseline>_s" of a ratio target
BIG = 10**6              # "tapes of >= 10**6 operations" for the per-operation sweep targets

# area -> the extra_info "kind"s of its benchmarks: an area is reported when one of them ran
AREAS = {
    "core speed": ("plain", "record", "replay_gradient", "replay_forward", "sweep_primal",
                   "sweep_gradient", "huge"),
    "small calls": ("small_plain", "small_multi_arg_gradient", "small_one_array_gradient",
                    "small_record_gradient", "small_ad_grad"),
    "second order and Taylor": ("hvp", "hessian", "taylor"),
    "modes as m and n vary": ("modes",),
    "peers": ("peer_cold", "peer_warm"),
    "sparse Jacobians": ("sparse",),
    "tape optimisation": ("optimize_det_minor_gradient", "optimize_casadi",
                          "optimize_sparse_jacobian", "optimize_cost"),
    "many points": ("batch_gradient", "batch_gradient_jax", "batch_threads"),
}


@dataclass(frozen=True)
class Reading:
    """One measured case of a target. value None: measured, with no value (a FAIL, detail says
    why); measured False: not in this run. goal: the benchmark's own goal, where the row has
    none."""
    case: str
    value: Optional[float] = None
    detail: str = ""
    goal: Optional[float] = None
    measured: bool = True


@dataclass(frozen=True)
class Target:
    area: str
    text: str
    read: Callable[["Run"], Iterable[Reading]]
    cmp: str                      # "≤", "≥", ">", "±" (goal (centre, relative tolerance)),
    goal: object = None           # "in" (goal (low, high)); goal None: each Reading's own
    unit: str = ""                # "×", "× faster", "ns/op", "µs/call", "µs", "B/op", ""
    digits: int = 2               # of the measured value ("× faster": always one)
    goal_text: str = ""           # instead of the goal written from cmp, goal and unit


COMPARE = {
    "≤": lambda v, g: v <= g,
    "≥": lambda v, g: v >= g,
    ">": lambda v, g: v > g,
    "±": lambda v, g: abs(v - g[0]) <= g[1] * abs(g[0]),
    "in": lambda v, g: g[0] <= v <= g[1],
}


class Run:
    """The benchmarks of one JSON (those with stats), by kind, and what the sections derive from
    them, computed once."""

    def __init__(self, benchmarks):
        self.benchmarks = benchmarks

    def kind(self, *kinds):
        """Benchmarks of these kinds, kind by kind, each in the JSON's order."""
        return [b for k in kinds for b in self.benchmarks if b["extra_info"].get("kind") == k]

    def ran(self, area):
        return bool(self.kind(*AREAS.get(area, ())))

    @functools.cached_property
    def modes(self):
        return modes_points(self.benchmarks)

    @functools.cached_property
    def slopes(self):
        return {(r["line"], r["mode"]): r for r in slope_rows(self.modes)}

    @functools.cached_property
    def peers(self):
        return peer_data(self.benchmarks)


# ---- readers ------------------------------------------------------------------------------------
def case_of(b):
    """The problem, the input kind and the tape's length: "rosen-10^4, x as ndarray (79,992 ops)"."""
    e = b["extra_info"]
    text = e.get("problem", b["name"])
    if "input" in e and e["kind"] != "plain":
        text += f", x as {e['input']}"
    return f"{text} ({fmt_ops(e['ops'])} ops)" if "ops" in e else text


def from_info(kinds, key, detail=None, case=case_of, where=None, goal_key=None, order=False):
    """Reader of extra_info[key] (or key(extra_info)) of the benchmarks of these kinds (a name
    or a tuple) that have it, where(extra_info) holds and, with goal_key, that carry their goal
    as extra_info[goal_key]; detail(benchmark, extra_info) is the text in brackets. order: by
    (group, name) instead of the JSON's order."""
    kinds = (kinds,) if isinstance(kinds, str) else kinds

    def read(run):
        bs = run.kind(*kinds)
        if order:
            bs = sorted(bs, key=lambda b: (b["group"] or "", b["name"]))
        for b in bs:
            e = b["extra_info"]
            v = key(e) if callable(key) else e.get(key)
            if v is None or (where and not where(e)):
                continue
            goal = e.get(goal_key) if goal_key else None
            if goal_key and goal is None:
                continue
            yield Reading(case(b), v, detail(b, e) if detail else "", goal)
    return read


def t_min(b):
    return fmt_time(b["stats"]["min"])


def big(e):
    return e.get("ops", 0) >= BIG


def small_case(b):
    e = b["extra_info"]
    return "seed f" + (f", x as {e['input']}" if "input" in e else "")


def small_detail(b, e):
    inter = e.get("ratio_interleaved")
    return f"{e['ratio_to_plain']:.1f}× one plain f" + (
        f"; interleaved {inter:.1f}×" if inter is not None else "")


def ratio_case(b):
    e = b["extra_info"]
    return e.get("problem", b.get("param", "")) + (
        f", order {e['order']}" if e.get("order") is not None else "")


def ratio_detail(baseline):
    return lambda b, e: f"{t_min(b)} vs {fmt_time(e.get(baseline + '_s'))}"


def storage(run):
    """tape.nbytes / len(tape), once per problem, from whichever benchmark stored it first."""
    seen = set()
    for b in run.benchmarks:
        e = b["extra_info"]
        if "bytes_per_op" in e and e.get("problem") not in seen:
            seen.add(e.get("problem"))
            yield Reading(f"{e['problem']} ({fmt_ops(e['ops'])} ops)", e["bytes_per_op"])


def slope(line, mode):
    """The log-log slope of `mode`'s time along `line` over m (or n) >= 16."""
    def read(run):
        r = run.slopes.get((line, mode))
        if r and r["tail"] is not None:
            yield Reading(f"F: {line} ({r['ops']:,} ops)", r["tail"],
                          f"over all {r['var']}: {r['full']:.2f}; op-visits {r['visits']:.2f}")
    return read


def auto_choice(run):
    """The point where auto's choice is furthest behind the faster mode."""
    w = auto_worst(run.modes)
    if w:
        r, (m, n), chosen, raw = w
        worst_raw = max(auto_over_best(d) or 0 for d in run.modes.values())
        yield Reading(f"m={m}, n={n} (auto: {chosen})", r,
                      f"auto's own timing there {raw:.2f}×, worst anywhere {worst_raw:.2f}×")


def crossing(line):
    """Where forward and reverse time cross along `line`, over the fixed dimension."""
    def read(run):
        for ln, var, other, x in crossovers(run.modes):
            if ln == line:
                yield Reading(f"{var}* / {other}", x / other if x else None,
                              f"{var}* = {x:.1f}" if x else "no crossing")
    return read


def warm_vs(system, label, cases):
    """The warm gradient's speed-up over `system`'s on each of `cases` (a row each, measured or
    not)."""
    def read(run):
        for case in cases:
            d = run.peers.get(case, {})
            t, o = d.get("tapead", {}).get("warm"), d.get(system, {}).get("warm")
            if t and o:
                yield Reading(case, o[0] / t[0],
                              f"tapead {fmt_time(t[0])}, {label} {fmt_time(o[0])}")
            else:
                yield Reading(case, measured=False)
    return read


def cold_gradient_vs(system):
    """The cold gradient's speed-up over `system`'s on every case where both ran."""
    def read(run):
        for case, d in sorted(run.peers.items(), key=lambda kv: case_key(kv[0])):
            t, o = d.get("tapead", {}).get("cold"), d.get(system, {}).get("cold")
            if t and o and t[1]["derivative"] == "gradient":
                yield Reading(case, o[0] / t[0],
                              f"tapead {fmt_time(t[0])}, {system} {fmt_time(o[0])}")
    return read


def optimized_case(b):
    """"det_minor-8, gradient (109,599 → 1,785 ops)": the problem, what is timed, the lengths."""
    e = b["extra_info"]
    what = f", {e['derivative']}" if "derivative" in e else ""
    return (f"{e['problem']}-{e['size']}{what} ({fmt_ops(e['ops_before'])} → "
            f"{fmt_ops(e['ops_after'])} ops)")


def interleaved(a, b):
    """The two round-robin times of an optimisation ratio, a over b."""
    return lambda bench, e: f"{a} {fmt_time(e[a + '_s'])}, {b} {fmt_time(e[b + '_s'])}"


def other_ratio_targets(run):
    """Benchmarks that store their own "target_ratio" and "ratio" (time over a same-run baseline
    "<baseline>_s") and that no other row reads."""
    claimed = {k for kinds in AREAS.values() for k in kinds}
    for b in sorted(run.benchmarks, key=lambda b: (b["group"] or "", b["name"])):
        e = b["extra_info"]
        if e.get("kind") in claimed or e.get("target_ratio") is None or e.get("ratio") is None:
            continue
        base = next((k[:-2] for k in e if k.endswith("_s") and k[:-2] in BASELINES), "baseline")
        what = b["name"].removeprefix("test_").split("[")[0].replace("_", " ")
        yield Reading(f"{what}: {ratio_case(b)}", e["ratio"],
                      f"{t_min(b)} vs {base} {fmt_time(e.get(base + '_s'))}", e["target_ratio"])


# ---- the table ----------------------------------------------------------------------------------
CORE, SMALL, SECOND = "core speed", "small calls", "second order and Taylor"
MODES, PEERS = "modes as m and n vary", "peers"
SPARSE, OPTIMIZE = "sparse Jacobians", "tape optimisation"
BATCH = "many points"

TARGETS = [
    Target(CORE, "recording + first gradient vs one plain-Python f",
           from_info("record", "ratio_to_plain_list", lambda b, e: (
               f"{t_min(b)}; vs ndarray input {e['ratio_to_plain_ndarray']:.1f}×")),
           "≤", 15, "×", digits=1),
    Target(CORE, "replayed gradient, speed-up over one plain-Python f",
           from_info("replay_gradient", "speedup_vs_plain_list", lambda b, e: (
               f"{t_min(b)}; vs ndarray input {faster(e['speedup_vs_plain_ndarray'])}")),
           "≥", 5, "× faster"),
    Target(CORE, "primal sweep (tape.forward) per operation, tapes of ≥ 10^6 operations",
           from_info(("sweep_primal", "huge"), lambda e: e.get(
               "ns_per_op" if e["kind"] == "sweep_primal" else "primal_ns_per_op"), where=big),
           "≤", 2, "ns/op"),
    Target(CORE, "adjoint sweep per operation (gradient − primal), tapes of ≥ 10^6 operations",
           from_info(("sweep_gradient", "huge"), "adjoint_ns_per_op", lambda b, e: (
               f"gradient {e['ns_per_op']:.2f}, primal {e['primal_ns_per_op']:.2f}"), where=big),
           "≤", 3, "ns/op"),
    Target(CORE, "tape.gradient(x) on the seed's 2-input tape",
           from_info("replay_gradient", "us_per_call", where=lambda e: e.get("problem") == "seed"),
           "≤", 2, "µs/call"),
    Target(CORE, "tape storage, tape.nbytes / len(tape)", storage, "≤", 10, "B/op"),
    Target(SMALL, "multi-arg gradient t.gradient((x1, x2))",
           from_info("small_multi_arg_gradient", "us_per_call", small_detail, small_case,
                     goal_key="target_us"), "≤", None, "µs"),
    Target(SMALL, "recording + first gradient ad.record(f, x).gradient()",
           from_info("small_record_gradient", "us_per_call", small_detail, small_case,
                     goal_key="target_us"), "≤", None, "µs"),
    Target(SMALL, "ad.grad(f)(x)",
           from_info("small_ad_grad", "us_per_call", small_detail, small_case,
                     goal_key="target_us"), "≤", None, "µs"),
    Target(SECOND, "Hessian-vector product (tape.hvp) over one gradient",
           from_info("hvp", "ratio", ratio_detail("gradient"), ratio_case,
                     goal_key="target_ratio", order=True), "≤", None, "×"),
    Target(SECOND, "full Hessian (tape.hessian) over one gradient",
           from_info("hessian", "ratio", ratio_detail("gradient"), ratio_case,
                     goal_key="target_ratio", order=True), "≤", None, "×"),
    Target(SECOND, "Taylor sweep of order d (tape.taylor) over one primal sweep, goal (d + 1)²",
           from_info("taylor", "ratio", ratio_detail("forward"), ratio_case,
                     goal_key="target_ratio", order=True), "≤", None, "×"),
    Target(MODES, "forward time ∝ m (log-log slope, m ≥ 16)", slope("m varies, n=1", "forward"),
           "±", (1, 0.20)),
    Target(MODES, "reverse time ∝ n (log-log slope, n ≥ 16)", slope("n varies, m=1", "reverse"),
           "±", (1, 0.20)),
    Target(MODES, "auto's choice vs the faster mode (worst point)", auto_choice,
           "≤", 1.10, "×"),
    Target(MODES, "forward and reverse cross near m = n (m varies, n=16)",
           crossing("m varies, n=16"), "in", (0.5, 2)),
    Target(MODES, "forward and reverse cross near m = n (n varies, m=16)",
           crossing("n varies, m=16"), "in", (0.5, 2)),
    Target(PEERS, "warm gradient vs CasADi SX Function",
           warm_vs("casadi", "CasADi", ("rosen-10^4", "det_minor-8")), ">", 1, "× faster",
           goal_text="faster"),
    Target(PEERS, "cold gradient (record + sweep) vs PyTorch eager", cold_gradient_vs("torch"),
           "≥", 10, "× faster"),
    Target(PEERS, "cold gradient (record + sweep) vs micrograd-style",
           cold_gradient_vs("micrograd"), "≥", 3, "× faster"),
    Target(SPARSE, "t.jacobian(x, sparse=True) vs the dense t.jacobian(x), same tape and run",
           from_info("sparse", "speedup", lambda b, e: (
               f"{t_min(b)} vs {fmt_time(e['dense_s'])}, directions {e['colours']}"),
               goal_key="target_speedup"), "≥", None, "× faster"),
    Target(SPARSE, "arrowhead Jacobian: tangent + adjoint sweeps",
           from_info("sparse", "sweeps", where=lambda e: "sweeps" in e), "≤", 3, "", digits=0),
    Target(OPTIMIZE, "warm gradient, optimised tape over the unoptimised one",
           from_info("optimize_det_minor_gradient", "speedup", interleaved("optimized", "original"),
                     optimized_case), "≥", 10, "× faster"),
    Target(OPTIMIZE, "warm gradient, optimised tape over CasADi's SX Function",
           from_info("optimize_casadi", "casadi_ratio", interleaved("optimized", "casadi"),
                     optimized_case), "≥", 20, "× faster"),
    Target(OPTIMIZE, "Jacobian and gradient of w·y, optimised tape over the unoptimised one",
           from_info("optimize_sparse_jacobian", "speedup", interleaved("optimized", "original"),
                     optimized_case), "≥", 3, "× faster"),
    Target(OPTIMIZE, "t.optimize() per operation of the original tape",
           from_info("optimize_cost", "ns_per_op", lambda b, e: t_min(b), optimized_case,
                     where=lambda e: e["problem"] == "det_minor"), "≤", 20, "ns/op"),
    Target(BATCH, "t.gradient(X, batch=True) vs the loop of t.gradient(x), per point",
           from_info("batch_gradient", "speedup", lambda b, e: (
               f"{e['ns_per_point_batch']:.0f} vs {e['ns_per_point_loop']:.0f} ns/point"),
               goal_key="target_speedup"), "≥", None, "×"),
    Target(BATCH, "t.compile()'d batched gradient vs JAX jit(vmap(grad)), per point",
           from_info("batch_gradient_jax", "native_over_jax", lambda b, e: (
               f"{e['ns_per_point_native']:.0f} vs {e['ns_per_point_jax']:.0f} ns/point")),
           "≤", 2, "×"),
    Target(BATCH, "a batched gradient over 10^5 points: two threads vs one",
           from_info("batch_threads", "speedup", lambda b, e: (
               f"{fmt_time(e['one_thread_s'])} vs {fmt_time(e['two_threads_s'])}"),
               goal_key="target_speedup"), "≥", None, "×"),
    Target("other", "time over a same-run baseline, the goal stored with the benchmark",
           other_ratio_targets, "≤", None, "×"),
]


# ---- evaluation and markdown --------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    target: Target
    reading: Reading
    goal: object
    ok: Optional[bool]            # None: not measured


def evaluate(run, table=TARGETS):
    """Rows of every target of an area that ran, a row per reading (or one "not measured")."""
    rows = []
    for t in table:
        if t.area in AREAS and not run.ran(t.area):
            continue
        readings = list(t.read(run))
        if not readings and t.area in AREAS:
            readings = [Reading("–", measured=False)]
        for r in readings:
            goal = r.goal if t.goal is None else t.goal
            ok = None if not r.measured else r.value is not None and COMPARE[t.cmp](r.value, goal)
            rows.append(Row(t, r, goal, ok))
    return rows


def with_unit(v, unit, digits):
    if unit == "× faster":
        return faster(v)
    return f"{v:.{digits}f}" + ("" if unit in ("", "×") else " ") + unit


def goal_text(t, goal):
    if t.goal_text:
        return t.goal_text
    if goal is None:                                  # not measured, the goal read with it
        return "–"
    if t.cmp == "±":
        return f"{goal[0]:g} ± {goal[1]:.0%}"
    if t.cmp == "in":
        return f"{goal[0]:g}–{goal[1]:g}"
    return f"{t.cmp} {goal:g}" + ("" if t.unit.startswith("×") or not t.unit else " ") + t.unit


def measured_text(row):
    t, r = row.target, row.reading
    if not r.measured:
        return "–"
    if r.value is None:
        return r.detail
    return with_unit(r.value, t.unit, t.digits) + (f" ({r.detail})" if r.detail else "")


def verdict(ok):
    return "not measured" if ok is None else "PASS" if ok else "**FAIL**"


def markdown(rows):
    """The targets' section (lines) and its number of failures."""
    if not rows:
        return [], 0
    out = ["## Targets\n",
           "| area | target | case | measured | goal | result |",
           "| --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        out.append(f"| {row.target.area} | {row.target.text} | {row.reading.case} | "
                   f"{measured_text(row)} | {goal_text(row.target, row.goal)} | "
                   f"{verdict(row.ok)} |")
    areas = {}
    for row in rows:
        areas.setdefault(row.target.area, []).append(row.ok)
    n_fail = sum(row.ok is False for row in rows)
    n_run = sum(row.ok is not None for row in rows)
    out.append(f"\n{n_run - n_fail} of {n_run} measured targets pass"
               + (f", {len(rows) - n_run} not measured" if n_run < len(rows) else "") + ": "
               + "; ".join(f"{area} {sum(ok is True for ok in oks)} of "
                           f"{sum(ok is not None for ok in oks)}" for area, oks in areas.items())
               + ".\n")
    return out, n_fail

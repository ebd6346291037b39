"""The cost of safe replay (branch guards), side by side in one run.

Groups:
- "guards: overhead 10^5 ops", "guards: overhead 10^6 ops": a replayed forward / gradient of a
  tape where every tenth operation is a comparison (a branch guard whose outcome feeds nothing:
  9 arithmetic operations, then ``s < 0.0``), against the same computation recorded without
  the comparisons. Target: guard checks add <= 10% (``ratio_vs_without`` <= 1.10). For a view
  of the guard op alone, ``ratio_vs_same_ops`` compares with a tape of the same length where the
  tenth operation is an unused multiplication instead.
- "guards: re-record n=...": ``tape.gradient(x)`` on an ``ad.record`` tape of Rosenbrock (n
  inputs) where every call flips a guard (points alternate between the two sides of
  ``x[0] > 0``; the comparison is the first operation of the tape, or the last, so that each
  replay first sweeps the whole tape before it finds the flip), against
  ``ad.record(f, x).gradient()`` at the same points. Target: re-recording
  costs no more than a fresh recording (``ratio_vs_fresh_record`` <= 1.0).

Every benchmark checks its result against an oracle (scipy.optimize.rosen / rosen_der) first.
The ratios come from benchlib.interleaved_best (the two or three calls timed round-robin, best
round), so that both sides are measured under the same machine load; they are stored in
``benchmark.extra_info`` with their ``target``.
"""
import functools
import itertools

import numpy as np
import pytest
from scipy.optimize import rosen, rosen_der

import tapead as ad
from benchlib import assert_grad, best, interleaved_best, rosen_loop, rosen_point

# ---- guard overhead ----------------------------------------------------------------------------
GUARD_N = (10_001, 100_001)         # blocks of 10 operations: 10^5 and 10^6 operations
OVERHEAD_TARGET = 1.10
OVERHEAD = pytest.mark.benchmark(max_time=0.5, min_rounds=10, warmup=True, warmup_iterations=2)


def block(s, a, b):
    """Nine operations: s + (100 (b - a²)² + (1 - a)²) / 2."""
    u = b - a * a
    v = 1.0 - a
    return s + (100.0 * (u * u) + v * v) * 0.5


def without_comparisons(x):
    s = 0.0
    for i in range(len(x) - 1):
        s = block(s, x[i], x[i + 1])
    return s


def with_comparisons(x):
    """The same, with a comparison after every nine operations (a guard that feeds nothing)."""
    s = 0.0
    for i in range(len(x) - 1):
        s = block(s, x[i], x[i + 1])
        bool(s < 0.0)                            # its truth taken: recorded as a guard
    return s


def with_unused_products(x):
    """The same length as with_comparisons: the tenth operation a multiplication that feeds
    nothing."""
    s = 0.0
    for i in range(len(x) - 1):
        s = block(s, x[i], x[i + 1])
        s * 1.0                                               # noqa: B018 - recorded, unused
    return s


def _exp(n):
    return f"10^{len(str(n)) - 1}"


@pytest.fixture(scope="module")
def guard_tapes():
    """guard_tapes(n) -> {"without", "with", "same_ops"} tapes recorded once, and a new point."""
    @functools.cache
    def get(n):
        x = rosen_point(n)
        return ({"without": ad.record(without_comparisons, x),
                 "with": ad.record(with_comparisons, x),
                 "same_ops": ad.record(with_unused_products, x)},
                rosen_point(n, seed=1))

    yield get
    get.cache_clear()


@OVERHEAD
@pytest.mark.parametrize("sweep", ["forward", "gradient"])
@pytest.mark.parametrize("n", [pytest.param(n, id=f"{_exp(10 * (n - 1))}ops") for n in GUARD_N])
def test_guard_overhead(benchmark, n, sweep, guard_tapes):
    """tape.forward / tape.gradient at a new point on a tape where every tenth operation is a
    branch guard, against the same computation without the comparisons."""
    tapes, x_new = guard_tapes(n)
    tg, tp = tapes["with"], tapes["without"]
    blocks = n - 1
    st = tg.stats()
    assert len(tg) == 10 * blocks and len(tp) == 9 * blocks and len(tapes["same_ops"]) == len(tg)
    assert st["guards"] == blocks and st["by_opcode"]["lt"] == blocks
    if sweep == "forward":
        np.testing.assert_allclose(tg.forward(x_new), 0.5 * rosen(x_new), rtol=1e-12)
        assert tg.forward(x_new) == tp.forward(x_new)
    else:
        assert_grad(tg.gradient(x_new), 0.5 * rosen_der(x_new))
        np.testing.assert_array_equal(tg.gradient(x_new), tp.gradient(x_new))
    assert tg.stats()["rerecords"] == 0

    benchmark.group = f"guards: overhead {_exp(len(tg))} ops"
    info = benchmark.extra_info
    info.update(kind="guard_overhead", sweep=sweep, ops=len(tg), guards=blocks,
                ops_without=len(tp), target=OVERHEAD_TARGET)
    benchmark(getattr(tg, sweep), x_new)
    if best(benchmark) is None:                              # --benchmark-disable
        return
    t = interleaved_best({k: (lambda tape=tape: getattr(tape, sweep)(x_new))
                          for k, tape in tapes.items()}, rounds=41)
    info.update(
        s_with=t["with"], s_without=t["without"], s_same_ops=t["same_ops"],
        ratio_vs_without=t["with"] / t["without"],
        ratio_vs_same_ops=t["with"] / t["same_ops"],
        ns_per_guard=(t["with"] - t["without"]) / blocks * 1e9,
        ns_per_op_with=t["with"] / len(tg) * 1e9,
        ns_per_op_without=t["without"] / len(tp) * 1e9,
        meets_target=t["with"] / t["without"] <= OVERHEAD_TARGET,
    )


# ---- re-recording against a fresh recording -------------------------------------------------
RERECORD_N = (10, 1_000)
RERECORD_TARGET = 1.0
RERECORD = pytest.mark.benchmark(max_time=0.5, min_rounds=10, warmup=True, warmup_iterations=2)


def branchy_last(x):
    """Rosenbrock doubled where x[0] > 0: the comparison is the tape's last operation but one,
    so a replay sweeps the whole tape before it finds the flip (the worst case)."""
    s = rosen_loop(x)
    if x[0] > 0.0:
        s = s * 2.0
    return s


def branchy_first(x):
    """The same function with the comparison as the tape's first operation (the best case)."""
    c = 2.0 if x[0] > 0.0 else 1.0
    return rosen_loop(x) * c


BRANCHY = {"last": branchy_last, "first": branchy_first}


def branchy_grad(x):
    return rosen_der(x) * (2.0 if x[0] > 0 else 1.0)


def two_sides(n):
    """Two points on either side of the guard."""
    x = rosen_point(n)
    pos, neg = x.copy(), x.copy()
    pos[0], neg[0] = abs(x[0]) + 0.25, -abs(x[0]) - 0.25
    return pos, neg


@RERECORD
@pytest.mark.parametrize("guard_at", list(BRANCHY))
@pytest.mark.parametrize("n", RERECORD_N, ids=[f"n={n}" for n in RERECORD_N])
def test_rerecord_vs_fresh_record(benchmark, n, guard_at):
    """tape.gradient(x) flipping a guard on every call (each call re-records f) against
    ad.record(f, x).gradient() at the same alternating points; the guard is the first or the
    last operation of the tape."""
    f = BRANCHY[guard_at]
    pos, neg = two_sides(n)
    tape = ad.record(f, pos)
    for k, x in enumerate([neg, pos, neg, pos], 1):
        g = tape.gradient(x)
        assert tape.stats()["rerecords"] == k
        assert_grad(g, branchy_grad(x))
        np.testing.assert_array_equal(g, ad.record(f, x).gradient())

    flip_points, fresh_points = itertools.cycle([neg, pos]), itertools.cycle([neg, pos])

    def flip():
        return tape.gradient(next(flip_points))

    def fresh():
        return ad.record(f, next(fresh_points)).gradient()

    benchmark.group = f"guards: re-record n={n}"
    info = benchmark.extra_info
    info.update(kind="rerecord", n=n, guard_at=guard_at, ops=len(tape), target=RERECORD_TARGET)
    before = tape.stats()["rerecords"]
    calls = [0]

    def counted():
        calls[0] += 1
        return flip()
    benchmark(counted)
    assert tape.stats()["rerecords"] - before == calls[0]      # every timed call re-recorded
    if best(benchmark) is None:
        return
    t = interleaved_best({"rerecord": flip, "fresh": fresh}, rounds=41)
    info.update(s_rerecord=t["rerecord"], s_fresh_record=t["fresh"],
                ratio_vs_fresh_record=t["rerecord"] / t["fresh"],
                meets_target=t["rerecord"] / t["fresh"] <= RERECORD_TARGET)

"""Core speed: tapead against plain Python, side by side in one run.

Groups (pytest-benchmark's table is grouped by them):
- "rosenbrock n=10^4", "rosenbrock n=10^5", "seed f": plain-Python evaluation (list and
  ndarray input), recording with the first gradient, a replayed gradient and a replayed primal
  at a new point;
- "sweeps 10^6 ops", "sweeps 10^7 ops": the primal sweep and the gradient (primal + adjoint)
  on large Rosenbrock tapes, in ns per operation.

Every benchmark checks its result against an oracle (scipy.optimize.rosen / rosen_der, the
seed's closed form) before it is timed. Ratios to the plain-Python baseline of the same run
(conftest.plain) go to ``benchmark.extra_info``; bench/report.py turns them into the table of
targets.
"""
import numpy as np
import pytest
from scipy.optimize import rosen, rosen_der

import tapead as ad
from benchlib import (ROSEN_N, SEED_X, SEED_X_NEW, SWEEP_N, assert_grad, best, best_of,
                      ratios, rosen_loop, rosen_ops, rosen_point, seed_grad, seed_plain_f,
                      seed_tape_f, seed_value)

# Fast calls (µs) get many rounds of many iterations; slow ones (ms and up) fewer, longer rounds.
FAST = pytest.mark.benchmark(min_time=2e-4, max_time=1.0, min_rounds=20, warmup=True,
                             warmup_iterations=20_000)
SLOW = pytest.mark.benchmark(max_time=2.0, min_rounds=7, warmup=True, warmup_iterations=1)


def _exp(n):
    return f"10^{len(str(n)) - 1}" if str(n).strip("0") == "1" else str(n)


def group_of(problem):
    return "seed f" if problem == "seed" else f"rosenbrock n={_exp(problem)}"


def problem_id(problem):
    return "seed" if problem == "seed" else f"rosen-{_exp(problem)}"


PROBLEMS = [pytest.param(n, id=problem_id(n), marks=SLOW) for n in ROSEN_N] + \
           [pytest.param("seed", id="seed", marks=FAST)]


def problem(p):
    """(tapead f, recording point x, new point x_new, value oracle, gradient oracle)."""
    if p == "seed":
        return seed_tape_f, np.array(SEED_X), np.array(SEED_X_NEW), seed_value, seed_grad
    return rosen_loop, rosen_point(p), rosen_point(p, seed=1), rosen, rosen_der


def describe(benchmark, p, kind, tape=None, **more):
    benchmark.group = group_of(p)
    info = benchmark.extra_info
    info.update(kind=kind, problem=problem_id(p), **more)
    if tape is not None:
        info.update(ops=len(tape), nbytes=tape.nbytes, bytes_per_op=tape.nbytes / len(tape))
    return info


# ---- plain Python: the baseline ---------------------------------------------------------------
@pytest.mark.parametrize("kind", ["list", "ndarray"])
@pytest.mark.parametrize("p", PROBLEMS)
def test_plain(benchmark, p, kind, plain):
    """One plain-Python evaluation of f (math functions, floats): the baseline."""
    f_tape, x, _, value, _ = problem(p)
    f = seed_plain_f if p == "seed" else rosen_loop
    x = x.tolist() if kind == "list" else x
    np.testing.assert_allclose(f(x), value(np.asarray(x)), rtol=1e-12)
    info = describe(benchmark, p, "plain", input=kind)
    benchmark(f, x)
    # the session baseline (timeit best-of-N) the ratios use, next to this benchmark's own min
    info["session_baseline_s"] = plain(p, kind)


# ---- recording with the first gradient -------------------------------------------------------
@pytest.mark.parametrize("p", PROBLEMS)
def test_record(benchmark, p, plain):
    """ad.record(f, x).gradient(): recording plus the first reverse sweep."""
    f, x, _, _, grad = problem(p)
    tape = ad.record(f, x)
    assert_grad(tape.gradient(), grad(x))
    info = describe(benchmark, p, "record", tape=tape)
    benchmark(lambda: ad.record(f, x).gradient())
    ratios(info, best(benchmark), p, plain)


# ---- replays at a new point ------------------------------------------------------------------
REPLAYS = [pytest.param(n, "ndarray", id=f"{problem_id(n)}-ndarray", marks=SLOW)
           for n in ROSEN_N] + \
          [pytest.param("seed", kind, id=f"seed-{kind}", marks=FAST)
           for kind in ("list", "ndarray")]


@pytest.mark.parametrize("p, input_kind", REPLAYS)
def test_replay_gradient(benchmark, p, input_kind, plain):
    """tape.gradient(x_new): one primal and one adjoint sweep at a new point."""
    f, x, x_new, _, grad = problem(p)
    tape = ad.record(f, x)
    x_new = x_new.tolist() if input_kind == "list" else x_new
    assert_grad(tape.gradient(x_new), grad(np.asarray(x_new)))
    info = describe(benchmark, p, "replay_gradient", tape=tape, input=input_kind)
    replay_timed(benchmark, info, tape, tape.gradient, x_new, p, plain)


@pytest.mark.parametrize("p, input_kind", REPLAYS)
def test_replay_forward(benchmark, p, input_kind, plain):
    """tape.forward(x_new): the primal sweep alone at a new point."""
    f, x, x_new, value, _ = problem(p)
    tape = ad.record(f, x)
    x_new = x_new.tolist() if input_kind == "list" else x_new
    np.testing.assert_allclose(tape.forward(x_new), value(np.asarray(x_new)), rtol=1e-12)
    info = describe(benchmark, p, "replay_forward", tape=tape, input=input_kind)
    replay_timed(benchmark, info, tape, tape.forward, x_new, p, plain)


def replay_timed(benchmark, info, tape, call, x, p, plain):
    """Time call(x) and note its speed-up over plain Python, µs per call and ns per op."""
    benchmark(call, x)
    t = best(benchmark)
    ratios(info, t, p, plain, speedup=True)
    if t is not None:
        info["us_per_call"] = t * 1e6
        info["ns_per_op"] = t / len(tape) * 1e9


# ---- sweeps on large tapes: ns per operation -------------------------------------------------
SWEEPS = [pytest.param(n, id=f"{_exp(rosen_ops(n))}ops") for n in SWEEP_N]
SWEEP_MARK = pytest.mark.benchmark(max_time=2.0, min_rounds=10, warmup=True, warmup_iterations=2)


def sweep_group(n):
    return f"sweeps {_exp(rosen_ops(n))} ops"


def sweep_timed(benchmark, n, tape, kind, call, x):
    """Time call(x) on the big tape of Rosenbrock n: (extra_info, best time or None)."""
    benchmark.group = sweep_group(n)
    info = benchmark.extra_info
    info.update(kind=kind, problem=f"rosen-{n}", ops=len(tape), nbytes=tape.nbytes,
                bytes_per_op=tape.nbytes / len(tape))
    benchmark(call, x)
    return info, best(benchmark)


@SWEEP_MARK
@pytest.mark.parametrize("n", SWEEPS)
def test_sweep_primal(benchmark, n, rosen_tape):
    """tape.forward(x_new) on a tape of >= 10**6 operations: primal ns/op."""
    tape, _ = rosen_tape(n)
    x_new = rosen_point(n, seed=1)
    np.testing.assert_allclose(tape.forward(x_new), rosen(x_new), rtol=1e-12)
    info, t = sweep_timed(benchmark, n, tape, "sweep_primal", tape.forward, x_new)
    if t is not None:
        info["ns_per_op"] = t / len(tape) * 1e9


@SWEEP_MARK
@pytest.mark.parametrize("n", SWEEPS)
def test_sweep_gradient(benchmark, n, rosen_tape):
    """tape.gradient(x_new) on a tape of >= 10**6 operations; the adjoint sweep is estimated as
    gradient minus primal time (the primal timed right after, timeit best-of-N)."""
    tape, _ = rosen_tape(n)
    x_new = rosen_point(n, seed=1)
    assert_grad(tape.gradient(x_new), rosen_der(x_new))
    info, t = sweep_timed(benchmark, n, tape, "sweep_gradient", tape.gradient, x_new)
    if t is not None:
        t_primal = best_of(lambda: tape.forward(x_new))
        ops = len(tape)
        info.update(ns_per_op=t / ops * 1e9, primal_ns_per_op=t_primal / ops * 1e9,
                    adjoint_ns_per_op=(t - t_primal) / ops * 1e9)

"""Sparse Jacobians (t.jacobian(x, sparse=True)) against the dense t.jacobian(x) on the same
tape, in one run.

Groups:
- "sparse tridiagonal n=10^4": y_i = x_{i-1} - 2 x_i² + sin(x_{i+1}); 3 forward directions
  instead of 10^4; the dense Jacobian (10^4 directions, an 800 MB array) is timed once;
- "sparse cppad n=1000": CppAD's sparse_jacobian function (bench/problems.py: m = 3n outputs,
  30n terms exp(x_j²/2)); target: sparse >= 10x faster than dense;
- "sparse arrowhead n=1000": y_0 = Σ x_i², y_i = x_0 x_i + exp(x_i); at most 3 sweeps (the dense
  row in reverse mode, the rest in 2 forward directions).

Each timed call is the warm one: the pattern and colouring are found on the first call and kept
with the recording; that first call is timed apart ("first_call_s"). Every result is checked
against its closed form (and the dense Jacobian) first. extra_info (kind "sparse"): the colours
(forward, reverse), the dense time "dense_s", speedup = dense / sparse and its goal
"target_speedup" (bench/report_targets.py's "sparse Jacobians" rows).
"""
import types

import numpy as np
import pytest

import tapead as ad
from benchlib import best, best_of, least_time
from problems import _sparse_jacobian_jac, make_f_sparse_jacobian, sparse_jacobian_pattern

WARM = pytest.mark.benchmark(min_time=2e-4, max_time=1.0, min_rounds=10, warmup=True,
                             warmup_iterations=2)
CPPAD_TARGET = 10           # sparse at least 10x faster than dense
TRIDIAGONAL_TARGET = 100    # ours: 3 directions instead of 10^4 should give >= 100x
ARROWHEAD_TARGET = 50       # ours: 3 sweeps instead of 1000
ARROWHEAD_SWEEPS = 3


def tridiagonal(x):
    n = len(x)
    return [(x[i - 1] if i else 0.0) - 2.0 * x[i] * x[i] + (ad.sin(x[i + 1]) if i < n - 1 else 0.0)
            for i in range(n)]


def arrowhead(x):
    return [ad.sum([xi * xi for xi in x])] + [x[0] * x[i] + ad.exp(x[i]) for i in range(1, len(x))]


def first_call(tape, x):
    """Seconds of the first sparse Jacobian of a recording: pattern, colouring and sweeps."""
    return least_time(lambda: tape.jacobian(x, sparse=True))


def store(benchmark, tape, dense_s, target, **more):
    info = benchmark.extra_info
    info.update(more, kind="sparse", ops=len(tape), dense_s=dense_s, target_speedup=target,
                colours=list(tape.stats()["colours"]["jacobian"]))
    t = best(benchmark)
    if t is not None:
        info["speedup"] = dense_s / t
        info["within_target"] = bool(dense_s / t >= target)


@WARM
def test_sparse_tridiagonal(benchmark):
    n = 10 ** 4
    benchmark.group = "sparse tridiagonal n=10^4"
    tape = ad.record(lambda x: tridiagonal(list(x)), np.linspace(0.5, 1.5, n))
    x = np.random.default_rng(1).uniform(-1, 1, n)
    first = first_call(tape, x)
    S = tape.jacobian(x, sparse=True)
    assert tape.stats()["colours"]["jacobian"] == (3, 0)
    d = np.arange(n)
    assert np.array_equal(S.diagonal(), -4.0 * x)
    assert np.array_equal(S[d[1:], d[:-1]], np.ones(n - 1))
    assert np.array_equal(S[d[:-1], d[1:]], np.cos(x[1:]))
    J = None

    def dense():
        nonlocal J
        J = tape.jacobian(x)
    dense_s = least_time(dense)
    assert np.array_equal(S.toarray(), J)
    del J
    benchmark(tape.jacobian, x, sparse=True)
    store(benchmark, tape, dense_s, TRIDIAGONAL_TARGET, problem="tridiagonal-10^4",
          first_call_s=first)


@WARM
def test_sparse_cppad_jacobian(benchmark):
    n = 1000
    benchmark.group = "sparse cppad n=1000"
    m, row, col = sparse_jacobian_pattern(n)
    f = make_f_sparse_jacobian(m, row, col)
    ops = types.SimpleNamespace(exp=ad.exp)
    tape = ad.record(lambda x: f(list(x), ops), np.random.default_rng(0).uniform(-1, 1, n))
    x = np.random.default_rng(1).uniform(-1, 1, n)
    first = first_call(tape, x)
    S = tape.jacobian(x, sparse=True)
    np.testing.assert_allclose(S.toarray(), _sparse_jacobian_jac(x, m, row, col), rtol=1e-12,
                               atol=1e-12)
    assert np.array_equal(S.toarray(), tape.jacobian(x))
    dense_s = least_time(lambda: tape.jacobian(x), repeat=3)
    benchmark(tape.jacobian, x, sparse=True)
    store(benchmark, tape, dense_s, CPPAD_TARGET, problem=f"sparse_jacobian-{n} (m={m})",
          first_call_s=first, outputs=m, K=len(row))


@WARM
def test_sparse_arrowhead(benchmark):
    n = 1000
    benchmark.group = "sparse arrowhead n=1000"
    tape = ad.record(lambda x: arrowhead(list(x)), np.linspace(0.5, 1.5, n))
    x = np.random.default_rng(1).uniform(-1, 1, n)
    first = first_call(tape, x)
    before = dict(tape.stats()["swept"])
    S = tape.jacobian(x, sparse=True)
    after = tape.stats()["swept"]
    pf, pr = tape.stats()["colours"]["jacobian"]
    assert pf + pr <= ARROWHEAD_SWEEPS
    assert (after["tangent"] - before["tangent"], after["adjoint"] - before["adjoint"]) == \
        (pf * len(tape), pr * len(tape))
    want = np.diag(x[0] + np.exp(x))
    want[0, :] = 2 * x
    want[1:, 0] = x[1:]
    np.testing.assert_allclose(S.toarray(), want, rtol=1e-15, atol=0)
    dense_s = best_of(lambda: tape.jacobian(x), budget=1.0, min_repeat=3)
    benchmark(tape.jacobian, x, sparse=True)
    store(benchmark, tape, dense_s, ARROWHEAD_TARGET, problem=f"arrowhead-{n}",
          first_call_s=first, sweeps=pf + pr)

"""Second order and Taylor sweeps against first-order ones on
the same tape.

Groups (pytest-benchmark's table is grouped by them):
- "second order n=10^4", "second order n=10^5": one tape.hvp(x, v) on the Rosenbrock loop; target
  hvp <= 3x one tape.gradient(x) on the same tape;
- "hessian n=100": the full Hessian of the Rosenbrock loop at n = 100 by vector mode (m = 100
  directions in one sweep); target <= 20x one gradient;
- "taylor n=10^4", "taylor n=10^5": tape.taylor(x, v, order=d) for d = 2, 4, 8; target
  <= (d + 1)^2 x one primal sweep (tape.forward).

Every benchmark checks its result against an oracle (scipy.optimize.rosen_hess_prod, rosen_hess;
the exact quartic Taylor polynomial of Rosenbrock along v) before it is timed. The baseline
(gradient or forward on the same tape and point) is timed in the same run right after, with
benchlib.best_of (the estimator of the benchmarks' min); ratio, target and whether it is met go
to benchmark.extra_info.
"""
import functools

import numpy as np
import pytest
from scipy.optimize import rosen, rosen_der, rosen_hess, rosen_hess_prod

import tapead as ad
from benchlib import best, best_of, rosen_loop, rosen_point, visits_of

HVP_N = (10**4, 10**5)
HESSIAN_N = 100
TAYLOR_N = (10**4, 10**5)
TAYLOR_D = (2, 4, 8)
HVP_TARGET = 3.0
HESSIAN_TARGET = 20.0

SLOW = pytest.mark.benchmark(max_time=2.0, min_rounds=7, warmup=True, warmup_iterations=1)
MEDIUM = pytest.mark.benchmark(min_time=2e-4, max_time=1.0, min_rounds=20, warmup=True,
                               warmup_iterations=50)


def _exp(n):
    return f"10^{len(str(n)) - 1}" if str(n).strip("0") == "1" else str(n)


@pytest.fixture(scope="module")
def tapes():
    """tapes(n) -> Rosenbrock tape recorded once per module at rosen_point(n)."""
    @functools.cache
    def get(n):
        return ad.record(rosen_loop, rosen_point(n))

    yield get
    get.cache_clear()


def store(benchmark, baseline_name, baseline, target, **more):
    """Ratio of this benchmark's min to the same-run baseline, the target and the verdict."""
    info = benchmark.extra_info
    info.update(more)
    info[f"{baseline_name}_s"] = baseline
    info["target_ratio"] = target
    t = best(benchmark)
    if t is not None:
        info["ratio"] = t / baseline
        info["within_target"] = bool(t / baseline <= target)
    return info


def rosen_taylor(x, v):
    """Exact Taylor coefficients y_0..y_4 of t -> rosen(x + t v) (a quartic polynomial): each term
    100 (b - a^2)^2 + (1 - a)^2 with a = x_i + t v_i, b = x_{i+1} + t v_{i+1}."""
    a0, a1, b0, b1 = x[:-1], v[:-1], x[1:], v[1:]
    # c = b - a^2 = (b0 - a0^2) + (b1 - 2 a0 a1) t - a1^2 t^2, coefficient arrays per term
    c = np.stack([b0 - a0 * a0, b1 - 2 * a0 * a1, -a1 * a1])
    c2 = np.stack([c[0] * c[0], 2 * c[0] * c[1], c[1] * c[1] + 2 * c[0] * c[2],
                   2 * c[1] * c[2], c[2] * c[2]])
    e = np.stack([1 - a0, -a1])
    e2 = np.stack([e[0] * e[0], 2 * e[0] * e[1], e[1] * e[1], 0 * a0, 0 * a0])
    return (100.0 * c2 + e2).sum(axis=1)


# ---- one hvp vs one gradient -----------------------------------------------------------------
@SLOW
@pytest.mark.parametrize("n", [pytest.param(n, id=f"rosen-{_exp(n)}") for n in HVP_N])
def test_hvp_vs_gradient(benchmark, n, tapes):
    """tape.hvp(x, v): one forward-over-reverse sweep (tangent + second-order adjoint)."""
    tape = tapes(n)
    x, v = rosen_point(n, seed=1), rosen_point(n, seed=2)
    hv = tape.hvp(x, v)
    want = rosen_hess_prod(x, v)
    np.testing.assert_allclose(hv, want, rtol=1e-12, atol=1e-12 * np.abs(want).max())
    np.testing.assert_allclose(tape.gradient(x), rosen_der(x), rtol=1e-12, atol=1e-10)
    seen = visits_of(tape, lambda: tape.hvp(x, v))
    assert seen["second_order"] == len(tape)
    benchmark.group = f"second order n={_exp(n)}"
    benchmark(tape.hvp, x, v)
    t_grad = best_of(lambda: tape.gradient(x))
    store(benchmark, "gradient", t_grad, HVP_TARGET, kind="hvp", problem=f"rosen-{n}",
          ops=len(tape), visits=seen)


# ---- the full Hessian at n = 100 vs one gradient --------------------------------------------
@MEDIUM
def test_hessian_vs_gradient(benchmark, tapes):
    """tape.hessian(x) at n = 100: one Hessian-vector direction per colour of the sparsity
    pattern (3 for Rosenbrock's tridiagonal Hessian), carried in one sweep."""
    n = HESSIAN_N
    tape = tapes(n)
    x = rosen_point(n, seed=1)
    H = tape.hessian(x)
    H = tape.hessian(x)                     # the second call finds the pattern (cached)
    want = rosen_hess(x)
    np.testing.assert_allclose(H, want, rtol=1e-12, atol=1e-13 * np.abs(want).max())
    assert np.array_equal(H, H.T)
    seen = visits_of(tape, lambda: tape.hessian(x))
    assert seen["second_order"] == tape._rec.colouring.p * len(tape) == 3 * len(tape)
    benchmark.group = f"hessian n={n}"
    benchmark(tape.hessian, x)
    t_grad = best_of(lambda: tape.gradient(x))
    info = store(benchmark, "gradient", t_grad, HESSIAN_TARGET, kind="hessian",
                 problem=f"rosen-{n}", ops=len(tape), visits=seen)
    t_hvp = best_of(lambda: tape.hvp(x, np.eye(n)[0]))
    info["one_hvp_s"] = t_hvp
    info["hessian_over_n_hvp"] = (best(benchmark) or np.nan) / (n * t_hvp)


# ---- Taylor of order d vs one primal sweep ---------------------------------------------------
@SLOW
@pytest.mark.parametrize("d", TAYLOR_D, ids=[f"d={d}" for d in TAYLOR_D])
@pytest.mark.parametrize("n", [pytest.param(n, id=f"rosen-{_exp(n)}") for n in TAYLOR_N])
def test_taylor_vs_primal(benchmark, n, d, tapes):
    """tape.taylor(x, v, order=d): one univariate Taylor sweep of order d."""
    tape = tapes(n)
    x, v = rosen_point(n, seed=1), 0.5 * rosen_point(n, seed=2)
    y = tape.taylor(x, v, order=d)
    exact = np.zeros(d + 1)
    c = rosen_taylor(x, v)
    exact[:min(d, 4) + 1] = c[:min(d, 4) + 1]
    scale = np.abs(exact).max()
    np.testing.assert_allclose(y, exact, rtol=1e-11, atol=1e-12 * scale)
    np.testing.assert_allclose(y[0], rosen(x), rtol=1e-12)
    np.testing.assert_allclose(2 * y[2], v @ rosen_hess_prod(x, v), rtol=1e-10)
    seen = visits_of(tape, lambda: tape.taylor(x, v, order=d))
    assert seen["taylor"] == len(tape)
    benchmark.group = f"taylor n={_exp(n)}"
    benchmark(tape.taylor, x, v, d)
    t_fwd = best_of(lambda: tape.forward(x))
    store(benchmark, "forward", t_fwd, float((d + 1) ** 2), kind="taylor", order=d,
          problem=f"rosen-{n}", ops=len(tape), visits=seen)

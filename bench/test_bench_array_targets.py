"""Array targets of issue 11 (group "array targets"), float64, BLAS on one thread:

- ``matmul_sum_gradient[n]``: the gradient of sum(A @ B) w.r.t. A and B replayed (one MATMUL, one
  REDUCE), n = 60 and 200, against NumPy's forward and the two dgemm of the VJP (target <= 1.5x);
  the n = 60 tape's program bytes (``tape_nbytes``, target <= 1 KB) and its t.stats();
- ``record_array_op``: recording one array operation (a MAP, a MATMUL) on 2 x 2 Arrays, where
  the values cost nothing: the Python (and C bookkeeping) time per operation (target <= 3 µs);
- ``logistic_{gradient,hvp}``: logistic regression on 500 x 20 data written with NumPy arrays,
  the gradient and the Hessian-vector product replayed per call as scipy.optimize.minimize(jac=,
  hessp=) calls them, against jax.jit's warm time per call (target <= 1.5x; PyTorch eager when
  JAX is not installed, named in extra_info ``reference``).
Ratios are timed round-robin in the same test (benchlib.interleaved_best).
"""
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np                                     # noqa: E402
import pytest                                          # noqa: E402

import tapead as ad                                    # noqa: E402
from benchlib import interleaved_best                  # noqa: E402


@pytest.mark.parametrize("n", [60, 200])
def test_matmul_sum_gradient(benchmark, n):
    rng = np.random.default_rng(n)
    A, B = rng.normal(size=(n, n)), rng.normal(size=(n, n))
    t = ad.record(lambda a, b: np.sum(a @ b), A, B)
    G = np.ones((n, n))

    def numpy_fwd_vjp():
        return np.sum(A @ B), G @ B.T, A.T @ G
    _, ga_, gb_ = numpy_fwd_vjp()
    ga, gb = t.gradient((A, B))
    np.testing.assert_allclose(ga, ga_, rtol=1e-12)
    np.testing.assert_allclose(gb, gb_, rtol=1e-12)
    benchmark.group = "array targets"
    benchmark(t.gradient, (A, B))
    best = interleaved_best({"tapead": lambda: t.gradient((A, B)), "numpy": numpy_fwd_vjp},
                            rounds=15)
    st = t.stats()
    benchmark.extra_info.update(
        kind="matmul_sum_gradient", n=n, tapead_s=best["tapead"], numpy_s=best["numpy"],
        ratio_to_numpy=best["tapead"] / best["numpy"], target_ratio=1.5,
        tape_nbytes=t.nbytes, ops=st["ops"], by_opcode=st["by_opcode"],
        values_nbytes=st["values_nbytes"], constants=st["constants"])


def test_record_array_op(benchmark):
    def one_op(op):
        with ad.Tape() as t:
            a, b = t.variables(np.ones((2, 2))), t.variables(np.ones((2, 2)))
            for _ in range(100):
                op(a, b)
    ops = {"map": lambda a, b: a * b, "matmul": lambda a, b: a @ b,
           "sum": lambda a, b: np.sum(a), "empty": lambda a, b: None}
    benchmark.group = "array targets"
    benchmark(one_op, ops["map"])
    best = interleaved_best({k: (lambda op=op: one_op(op)) for k, op in ops.items()}, rounds=15)
    per = {k: (best[k] - best["empty"]) / 100 for k in ops if k != "empty"}
    benchmark.extra_info.update(kind="record_array_op", target_us=3.0,
                                **{f"{k}_us": v * 1e6 for k, v in per.items()})


def _logistic(seed=0, n=500, d=20):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = np.where(rng.random(n) < 1 / (1 + np.exp(-X @ rng.normal(size=d))), 1.0, -1.0)
    return X, y, rng.normal(size=d) * 0.1, rng.normal(size=d)


def _reference(X, y):
    """(name, gradient, hvp) of the same loss on JAX (jit, warm) or else PyTorch eager."""
    try:
        import jax
        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp
        Xj, yj = jnp.asarray(X), jnp.asarray(y)

        def loss(w):
            return jnp.sum(jnp.log1p(jnp.exp(-yj * (Xj @ w))))
        g = jax.jit(jax.grad(loss))
        hvp = jax.jit(lambda w, v: jax.jvp(jax.grad(loss), (w,), (v,))[1])
        return ("jax.jit", lambda w: np.asarray(g(w).block_until_ready()),
                lambda w, v: np.asarray(hvp(w, v).block_until_ready()))
    except ImportError:
        pass
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)

    def loss(w):
        return torch.sum(torch.log1p(torch.exp(-yt * (Xt @ w))))

    def grad(w):
        return torch.func.grad(loss)(torch.from_numpy(w)).numpy()

    def hvp(w, v):
        return torch.func.jvp(torch.func.grad(loss), (torch.from_numpy(w),),
                              (torch.from_numpy(v),))[1].numpy()
    return "torch eager (JAX not installed)", grad, hvp


@pytest.mark.parametrize("what", ["gradient", "hvp"])
def test_logistic(benchmark, what):
    from scipy.optimize import minimize
    X, y, w0, v = _logistic()

    def loss(w):
        return np.sum(np.log1p(np.exp(-y * (X @ w))))
    t = ad.record(loss, w0)
    res = minimize(t.forward, w0, jac=t.gradient, hessp=t.hvp, method="trust-ncg")
    assert res.success and np.linalg.norm(t.gradient(res.x)) < 1e-4
    p = 1 / (1 + np.exp(y * (X @ w0)))                  # sigma(-y z)
    g_ref = -X.T @ (y * p)
    hv_ref = X.T @ (p * (1 - p) * (X @ v))
    np.testing.assert_allclose(t.gradient(w0), g_ref, rtol=1e-12)
    np.testing.assert_allclose(t.hvp(w0, v), hv_ref, rtol=1e-12)
    ours = (lambda: t.gradient(w0)) if what == "gradient" else (lambda: t.hvp(w0, v))
    benchmark.group = "array targets"
    benchmark(ours)
    info = benchmark.extra_info
    info.update(kind=f"logistic_{what}", target_ratio=1.5, nit=res.nit)
    ref = _reference(X, y)
    if ref is None:
        info["reference"] = "none installed"
        return
    name, g, hvp = ref
    theirs = (lambda: g(w0)) if what == "gradient" else (lambda: hvp(w0, v))
    np.testing.assert_allclose(theirs(), ours(), rtol=1e-10)
    best = interleaved_best({"tapead": ours, "ref": theirs}, rounds=15)
    info.update(reference=name, tapead_s=best["tapead"], reference_s=best["ref"],
                ratio_to_reference=best["tapead"] / best["ref"])

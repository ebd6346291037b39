"""ad.Array block operations (group "arrays"), single-threaded BLAS (OPENBLAS_NUM_THREADS=1,
torch.set_num_threads(1)).

- ``matmul_gradient[n]``: the gradient of sum(tanh(A @ B)) over both n x n factors replayed,
  against NumPy computing the same (forward, then the two dgemm of the adjoint: the least any
  reverse mode does);
- ``network``: the seed's two-layer network (N=64, D_in=1000, H=100, D_out=10, ReLU as
  maximum(h, 0), loss sum of squares, SGD lr=1e-4), recorded once with the weights as inputs and
  its gradient replayed per step; against PyTorch eager (skipped without torch).
Each checks its gradient against the reference first; ratios go to ``benchmark.extra_info``.
"""
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np                                     # noqa: E402
import pytest                                          # noqa: E402

import tapead as ad                                    # noqa: E402
from benchlib import best_of                           # noqa: E402


@pytest.mark.parametrize("n", [60, 200])
def test_matmul_gradient(benchmark, n):
    rng = np.random.default_rng(n)
    A, B = rng.normal(size=(n, n)) / n, rng.normal(size=(n, n)) / n
    t = ad.record(lambda a, b: np.sum(np.tanh(a @ b)), A, B, arrays=True)

    def numpy_grad(a, b):
        g = 1.0 - np.tanh(a @ b) ** 2
        return g @ b.T, a.T @ g
    ga, gb = t.gradient((A, B))
    ra, rb = numpy_grad(A, B)
    assert np.allclose(ga, ra, rtol=1e-12, atol=1e-15) and np.allclose(gb, rb, rtol=1e-12, atol=1e-15)
    benchmark.group = "arrays"
    benchmark(t.gradient, (A, B))
    ref = best_of(lambda: numpy_grad(A, B))
    benchmark.extra_info.update(numpy=ref, backend=ad.blas_info()["backend"],
                                ratio_to_numpy=benchmark.stats.stats.min / ref)


def _data(seed=0):
    rng = np.random.default_rng(seed)
    N, D_in, H, D_out = 64, 1000, 100, 10
    return (rng.normal(size=(N, D_in)), rng.normal(size=(N, D_out)),
            rng.normal(size=(D_in, H)), rng.normal(size=(H, D_out)))


def test_network_sgd_step(benchmark):
    x, y, w1, w2 = _data()

    def loss(w1, w2):
        h = np.maximum(x @ w1, 0.0)
        return np.sum((h @ w2 - y) ** 2.0)
    t = ad.record(loss, w1, w2, arrays=True)
    h = np.maximum(x @ w1, 0.0)
    g = 2.0 * (h @ w2 - y)
    ref2, ref1 = h.T @ g, x.T @ ((g @ w2.T) * (h > 0))
    g1, g2 = t.gradient((w1, w2))
    assert np.allclose(g1, ref1, rtol=1e-10) and np.allclose(g2, ref2, rtol=1e-10)
    state = [w1.copy(), w2.copy()]

    def step():
        a, b = t.gradient((state[0], state[1]))
        state[0] -= 1e-4 * a
        state[1] -= 1e-4 * b
    benchmark.group = "arrays"
    benchmark(step)
    try:
        import torch
    except ImportError:
        pytest.skip("torch not installed: no PyTorch eager reference")
    torch.set_num_threads(1)
    tx, ty = torch.tensor(x), torch.tensor(y)
    tw = [torch.tensor(w1, requires_grad=True), torch.tensor(w2, requires_grad=True)]

    def torch_step():
        loss_ = ((tx.mm(tw[0]).clamp(min=0).mm(tw[1]) - ty) ** 2).sum()
        loss_.backward()
        with torch.no_grad():
            for w in tw:
                w -= 1e-4 * w.grad
                w.grad.zero_()
    ref = best_of(torch_step)
    benchmark.extra_info.update(torch=ref, ratio_to_torch=benchmark.stats.stats.min / ref)

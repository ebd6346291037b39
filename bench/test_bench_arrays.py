"""ad.Array block operations (group "arrays"), single-threaded BLAS (OPENBLAS_NUM_THREADS=1,
torch.set_num_threads(1)).

- ``matmul_gradient[n]``: the gradient of sum(tanh(A @ B)) over both n x n factors replayed,
  against NumPy computing the same (forward, then the two dgemm of the adjoint: the least any
  reverse mode does);
- ``linear_transposed``: PyTorch's Linear layer, sum(tanh(x @ W.T + b)) for x 64 x 1000, W 100 x
  1000, its gradient against the same layer on a pre-transposed W (``ratio_to_pretransposed``:
  a transposed operand is read in place) and NumPy's forward and backward;
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
from benchlib import best_of, interleaved_best         # noqa: E402


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


def test_linear_layer_transposed_weight(benchmark):
    """PyTorch's Linear, x @ W.T + b: the product reads W through transposed strides (no copy of
    W on the tape), timed round-robin against the same layer on a pre-transposed W and NumPy."""
    rng = np.random.default_rng(7)
    x, W, b = rng.normal(size=(64, 1000)), rng.normal(size=(100, 1000)) / 30, rng.normal(size=100)
    Wt = W.T.copy()
    tt = ad.record(lambda W, b: np.sum(np.tanh(x @ W.T + b)), W, b)
    tp = ad.record(lambda Wt, b: np.sum(np.tanh(x @ Wt + b)), Wt, b)
    assert "pack" not in tt.stats()["by_opcode"]

    def numpy_grad():
        g = 1.0 - np.tanh(x @ W.T + b) ** 2
        return g.T @ x, g.sum(0)
    gW, gb = tt.gradient((W, b))
    rW, rb = numpy_grad()
    np.testing.assert_allclose(gW, rW, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gb, rb, rtol=1e-12)
    benchmark.group = "arrays"
    benchmark(tt.gradient, (W, b))
    best = interleaved_best({"x @ W.T": lambda: tt.gradient((W, b)),
                             "x @ Wt": lambda: tp.gradient((Wt, b)), "numpy": numpy_grad},
                            rounds=15)
    benchmark.extra_info.update(
        kind="linear_transposed", tapead_s=best["x @ W.T"], pretransposed_s=best["x @ Wt"],
        numpy_s=best["numpy"], ratio_to_pretransposed=best["x @ W.T"] / best["x @ Wt"],
        ratio_to_numpy=best["x @ W.T"] / best["numpy"])


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

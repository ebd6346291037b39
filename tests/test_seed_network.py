"""The seed's two-layer network (N=64, D_in=1000, H=100, D_out=10, sum of squares, SGD lr=1e-4)
written with NumPy arrays on tapead, both ways (record once and replay the gradient; record every
step), Linear -> Linear with biases and with a ReLU between: the loss curve equals hand-written
NumPy backpropagation in float64 (<= 1e-10 relative) over the seed's 500 steps;
bench/test_bench_network.py times the steps against PyTorch."""
import numpy as np
import pytest

import tapead as ad

N, D_IN, H, D_OUT, LR, STEPS = 64, 1000, 100, 10, 1e-4, 500


def setup(seed=0):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(N, D_IN)), rng.normal(size=(N, D_OUT))
    w = [rng.uniform(-0.03, 0.03, (D_IN, H)), rng.uniform(-0.03, 0.03, H),
         rng.uniform(-0.1, 0.1, (H, D_OUT)), rng.uniform(-0.1, 0.1, D_OUT)]
    return x, y, w


def hand_written(x, y, w, relu):
    losses = []
    for _ in range(STEPS):
        W1, b1, W2, b2 = w
        z = x @ W1 + b1
        h = np.maximum(z, 0.0) if relu else z
        r = h @ W2 + b2 - y
        losses.append(np.sum(r ** 2))
        g = 2.0 * r
        gh = g @ W2.T * ((z > 0) if relu else 1.0)
        for p, gp in zip(w, (x.T @ gh, gh.sum(0), h.T @ g, g.sum(0))):
            p -= LR * gp
    return np.array(losses)


@pytest.mark.parametrize("relu", [False, True], ids=["linear", "relu"])
@pytest.mark.parametrize("way", ["replay", "record"])
def test_loss_curve_equals_hand_written_backprop(way, relu):
    x, y, w0 = setup()

    def loss(W1, b1, W2, b2):
        h = x @ W1 + b1
        if relu:
            h = np.maximum(h, 0.0)
        return np.sum((h @ W2 + b2 - y) ** 2)
    w = [a.copy() for a in w0]
    losses = []
    if way == "replay":
        tape = ad.record(loss, *w)               # the weights are the inputs
        assert tape.stats()["by_opcode"]["matmul"] == 2 and len(tape) <= 9
        for _ in range(STEPS):
            value, grads = tape.vjp(tuple(w), 1.0)     # value and gradient in one sweep
            losses.append(value)
            for p, g in zip(w, grads):
                p -= LR * g
    else:
        value_and_grad = ad.value_and_grad(loss, argnums=(0, 1, 2, 3))
        for _ in range(STEPS):
            value, grads = value_and_grad(*w)
            losses.append(value)
            for p, g in zip(w, grads):
                p -= LR * g
    want = hand_written(x, y, [a.copy() for a in w0], relu)
    # <= 1e-10 relative; the linear network fits the 64 samples exactly, its loss falls to ~1e-11
    # (residuals ~1e-6, differences of O(1) numbers), where BLAS's summation order (threads)
    # moves it by ~1e-20: there the curves agree to 1e-18 absolute
    np.testing.assert_allclose(losses, want, rtol=1e-10, atol=1e-18)
    assert np.all(np.diff(want) < 0)              # it learns

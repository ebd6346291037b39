"""The seed's two-layer network (its PyTorch program) on tapead, on PyTorch and in hand-written
NumPy: N=64 samples, D_in=1000, H=100, D_out=10, Linear -> Linear with biases (the seed's code)
or Linear -> ReLU -> Linear (its comment), loss the sum of squares, SGD lr=1e-4.

Two ways on tapead: ``replay`` records the loss once with the weights as inputs and replays its
gradient every step; ``record`` records every step, as the seed's PyTorch program builds its
graph every step. One step of each returns the loss and updates the weights in place."""
import numpy as np

import tapead as ad

N, D_IN, H, D_OUT = 64, 1000, 100, 10
LR = 1e-4


def data(seed=0):
    """x, y and the initial weights [W1, b1, W2, b2] (torch.nn.Linear's uniform init)."""
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(N, D_IN)), rng.normal(size=(N, D_OUT))
    s1, s2 = 1 / np.sqrt(D_IN), 1 / np.sqrt(H)
    w = [rng.uniform(-s1, s1, (D_IN, H)), rng.uniform(-s1, s1, H),
         rng.uniform(-s2, s2, (H, D_OUT)), rng.uniform(-s2, s2, D_OUT)]
    return x, y, w


def loss_fn(x, y, relu):
    """loss(W1, b1, W2, b2) as NumPy code: tapead records it as it is written."""
    def loss(W1, b1, W2, b2):
        h = x @ W1 + b1
        if relu:
            h = np.maximum(h, 0.0)
        return np.sum((h @ W2 + b2 - y) ** 2)
    return loss


def tapead_step(x, y, w, relu, way):
    """step() -> loss: one SGD step on the weights w (in place) on tapead, `way` replay/record."""
    loss = loss_fn(x, y, relu)
    if way == "replay":
        tape = ad.record(loss, *w)

        def step():
            value, grads = tape.vjp(tuple(w), 1.0)        # value and gradient, one sweep
            for p, g in zip(w, grads):
                p -= np.multiply(g, LR, out=g)            # in place, as torch.optim.SGD
            return value
    else:
        vg = ad.value_and_grad(loss, argnums=(0, 1, 2, 3))

        def step():
            value, grads = vg(*w)                         # records the step, then sweeps
            for p, g in zip(w, grads):
                p -= np.multiply(g, LR, out=g)            # in place, as torch.optim.SGD
            return value
    return step


def numpy_step(x, y, w, relu):
    """The same step with backpropagation written by hand in NumPy (the oracle)."""
    def step():
        W1, b1, W2, b2 = w
        z = x @ W1 + b1
        h = np.maximum(z, 0.0) if relu else z
        r = h @ W2 + b2 - y
        g = 2.0 * r
        gh = g @ W2.T
        if relu:
            gh = gh * (z > 0)
        grads = (x.T @ gh, gh.sum(0), h.T @ g, g.sum(0))
        for p, gp in zip(w, grads):
            p -= np.multiply(gp, LR, out=gp)
        return float(np.sum(r ** 2))
    return step


def torch_step(x, y, w, relu):
    """The seed's PyTorch program, float64: nn.Sequential, MSELoss(reduction="sum"), optim.SGD."""
    import torch
    layers = [torch.nn.Linear(D_IN, H), torch.nn.Linear(H, D_OUT)]
    if relu:
        layers.insert(1, torch.nn.ReLU())
    model = torch.nn.Sequential(*layers).double()
    with torch.no_grad():
        for lin, (W, b) in zip((layers[0], layers[-1]), ((w[0], w[1]), (w[2], w[3]))):
            lin.weight.copy_(torch.from_numpy(W.T.copy()))
            lin.bias.copy_(torch.from_numpy(b.copy()))
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    loss_fn_ = torch.nn.MSELoss(reduction="sum")
    opt = torch.optim.SGD(model.parameters(), lr=LR)

    def step():
        loss = loss_fn_(model(tx), ty)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()
    return step

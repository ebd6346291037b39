"""a.T of a 2-d Array as a matmul operand: the product reads a's block through transposed
strides (no PACK on the tape); any other use records the PACK at first use. Every case against
the same program on object arrays of Var, in every sweep (test_arrays.check)."""
import copy

import numpy as np
import pytest
from numpy.testing import assert_allclose

import tapead as ad

from helpers import raised_in_another_thread
from test_arrays import check, kernels_agree

RNG = np.random.default_rng(21)
W = RNG.normal(size=(4, 3))
X = RNG.normal(size=(5, 3))


def _ops(f, *args):
    return ad.record(f, *args, arrays=True).stats()["by_opcode"]


@pytest.mark.parametrize("f", [
    lambda w, x: np.sum(np.tanh(x @ w.T)),                  # PyTorch's Linear
    lambda w, x: np.sum((w.T @ np.sin(w)) * 2.0),
    lambda w, x: np.sum(w @ w.T) + np.sum(w.T @ w),         # aliased operands
    lambda w, x: np.sum(np.cos(w.T @ (x @ w.T).T)),         # both transposed
    lambda w, x: np.sum(w.T @ np.sum(w, axis=1)) + np.sum(np.sum(w, 1) @ w.T.T),  # .T.T: w
    lambda w, x: np.sum(np.matmul(x, w.T) ** 2),            # np.matmul: tapead/array.py's path
    lambda w, x: np.sum(np.dot(x, np.transpose(w))) + np.sum(x @ w.transpose(1, 0)),
], ids=["linear", "left", "aliased", "both", "vectors", "np.matmul", "np.transpose"])
def test_products_read_the_transpose_in_place(f):
    ops = _ops(f, W, X)
    assert "pack" not in ops, ops
    check(f, W, X, ops=["matmul"])


@pytest.mark.parametrize("f", [
    lambda w: np.sum(w.T * np.arange(4.0)),                 # a MAP over the transpose
    lambda w: np.sum(np.exp(w.T), axis=0) @ np.ones(4),     # a reduction
    lambda w: w.T[1] @ w.T[2] + w.T[0, 3] * w.T[2, 1],      # rows and elements (a PACK each)
    lambda w: sum(r[0] * r[1] for r in w.T),                # iteration
    lambda w: np.sum(np.concatenate([w.T, w.T * 2.0]) ** 2),
    lambda w: np.sum(np.where(w.T > 0, w.T, -2.0 * w.T)),
    lambda w: np.sum(w.T.reshape(-1) * np.arange(12.0)),
    lambda w: np.sum(w.T[::2] @ w),
], ids=["map", "reduce", "elements", "iteration", "concatenate", "where", "reshape", "slice"])
def test_other_uses_record_the_pack(f):
    check(f, W)


def test_a_pending_transpose_records_its_pack_once():
    with ad.Tape() as t:
        w = t.variables(W)
        wt = w.T
        n = len(t)
        u = wt * 2.0                                             # the PACK, then the MAP
        assert len(t) == n + 2
        v = np.sum(wt) + wt[0, 1] + np.sum(wt[1]) + np.sum(X @ wt)   # no PACK again
        t.outputs(np.sum(u) + v)
    assert t.stats()["by_opcode"]["pack"] == 1
    g = np.full(W.shape, 3.0) + np.ones((5, 4)).T @ X
    g[1, 0] += 1.0
    g[:, 1] += 1.0
    assert_allclose(t.gradient(W), g, rtol=1e-13)


def test_pending_transpose_values_grad_and_outputs():
    with ad.Tape() as t:
        w = t.variables(W)
        wt = w.T
        n = len(t)
        assert wt.shape == (3, 4) and len(t) == n                # pending: nothing recorded
        assert wt.T._tsrc is None and wt.T._first == w._first    # a's block again, no op
        y = X @ wt
        assert len(t) == n + 1                                   # the MATMUL alone
        t.outputs(np.sum(y * y) + np.sum(wt[0]))                 # wt[0]: its PACK now
    assert t.stats()["by_opcode"].get("pack") == 1
    g = t.gradient(W)
    want = 2.0 * (X @ W.T).T @ X
    want[:, 0] += 1.0
    assert_allclose(g, want, rtol=1e-13)
    assert_allclose(wt.value, W.T)                               # after closing too
    with ad.Tape() as t2:
        w2 = t2.variables(W)
        z = w2.T                                                 # used after the tape closes
        t2.outputs(np.sum(w2))
    assert_allclose(z.value, W.T)
    with pytest.raises(ad.TapeError):
        z @ X.T
    with pytest.raises(ad.TapeError):
        z * 2.0
    t3 = ad.record(lambda a: a.T, W)                             # a pending as the output
    assert t3.jacobian(W).shape == (3, 4, 4, 3)
    assert_allclose(t3(W * 2.0), (W * 2.0).T)


def test_pending_transpose_keeps_the_block_it_was_taken_of():
    """a functional update rebinds a to a new block; a.T taken before reads the old one (as the
    PACK recorded at once did: an Array's views are copies, not NumPy's shared memory)"""
    B = RNG.normal(size=(4, 2))

    def f(a, b, copied):
        at = a.T.copy() if copied else a.T
        a[0, 0] = 10.0 * b[0, 0]
        return np.sum(at @ b) + np.sum(a * a)
    ta = ad.record(lambda a, b: f(a, b, False), W, B)
    ts = ad.record(lambda a, b: f(a, b, True), W, B, arrays=False)
    for p in [(W, B), (W * 1.5, B - 0.5)]:
        assert_allclose(ta(p), ts(p), rtol=1e-13)
        for a, b in zip(ta.gradient(p), ts.gradient(p)):
            assert_allclose(a, b, rtol=1e-13)


def test_transposed_products_in_every_replay():
    f = lambda w, x: np.sum(np.tanh(x @ w.T) @ w)            # noqa: E731
    t = ad.record(f, W, X)
    pts = [(W + 0.1 * k, X - 0.05 * k) for k in range(3)]
    Wb, Xb = np.stack([p[0] for p in pts]), np.stack([p[1] for p in pts])
    gb = t.gradient((Wb, Xb), batch=True)
    for k, p in enumerate(pts):
        g = t.gradient(p)
        for a, b in zip(g, gb):
            assert_allclose(b[k], a, rtol=1e-13)
    u = ad.loads(t.dumps(function=False))
    o = t.optimize()
    c = copy.deepcopy(t)
    for other in (u, o, c):
        for a, b in zip(other.gradient(pts[1]), t.gradient(pts[1])):
            assert_allclose(a, b, rtol=1e-13)


def test_blas_and_builtin_kernels_agree_on_transposed_operands():
    a, b = RNG.normal(size=(37, 150)), RNG.normal(size=(29, 150))

    def no_pack(t):
        assert "pack" not in t.stats()["by_opcode"]
    kernels_agree(lambda x, y: np.sum(np.tanh(x @ y.T) @ y * 1.5) + np.sum(y.T @ (x @ y.T).T),
                  a, b, no_pack)


def test_another_thread_cannot_take_a_transpose_of_an_open_tape():
    with ad.Tape() as t:
        w = t.variables(W)
        assert isinstance(raised_in_another_thread(lambda: w.T), ad.TapeError)
        t.outputs(np.sum(w))

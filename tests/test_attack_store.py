"""Attacks on the shared constants/values store, x=None, tp_vjp_parts and the C gradient of
input pieces (grad_pieces): each case checked against an independent oracle."""
import pickle
import threading

import numpy as np
import pytest

import tapead as ad
from tapead._core import ffi, lib


def _one_array_tape(A):
    t = ad.Tape()
    with t:
        a = t.variables(A)
        t.outputs(np.sum(np.sin(a)))
    return t


@pytest.mark.parametrize("wrap", [tuple, list])
def test_one_piece_tape_refuses_a_sequence_of_its_piece(wrap):
    """A tape of one array input takes that array, never (A,): the C path of pieces took the
    one-element tuple/list and answered where every other replay raises ValueError."""
    A = np.array([0.3, 0.4, 0.5])
    t = _one_array_tape(A)
    with pytest.raises(ValueError, match=r"expected x of shape \(3,\), got shape \(1, 3\)"):
        t.gradient(wrap([A]))
    with pytest.raises(ValueError, match=r"expected x of shape \(3,\), got shape \(1, 3\)"):
        t.vjp(wrap([A]), 1.0)
    np.testing.assert_array_equal(t.gradient(A), np.cos(A))


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")
def test_pieces_in_every_buffer_form_equal_the_general_path():
    rng = np.random.default_rng(4)
    W, b = rng.normal(size=(4, 3)) / 4, rng.normal(size=4) / 4
    u = np.array([1.0, -2.0, 0.5])

    def loss(W, b, s):
        return np.sum(np.tanh(W @ u + b) ** 2) * s
    t = ad.record(loss, W, b, 1.5)
    ref = t.gradient([W.tolist(), b.tolist(), 1.5])
    h = np.tanh(W @ u + b)
    d = 2 * h * (1 - h * h) * 1.5
    np.testing.assert_allclose(ref[0], np.outer(d, u), rtol=1e-14, atol=1e-16)
    np.testing.assert_allclose(ref[1], d, rtol=1e-14, atol=1e-16)
    assert ref[2] == pytest.approx(np.sum(h * h), rel=1e-14)
    raw = bytearray(W.nbytes + 1)
    mis = np.frombuffer(raw, dtype=np.float64, offset=1, count=W.size).reshape(W.shape)
    mis[...] = W
    ro = np.frombuffer(W.tobytes()).reshape(W.shape)
    for x in [(np.matrix(W), b, 1.5), (memoryview(W.copy()), memoryview(b.copy()), 1.5),
              (W, b, np.float64(1.5)), (W, b, np.array(1.5)), (ro, b, 1.5),
              (W.astype(">f8"), b.astype(">f8"), 1.5), (mis, b, 1.5),
              (np.asfortranarray(W), b[::-1].copy()[::-1], 1.5)]:
        got = t.gradient(x)
        for g, r in zip(got, ref):
            assert np.asarray(g).tobytes() == np.asarray(r).tobytes()


def test_pieces_from_threads_and_x_none():
    rng = np.random.default_rng(3)
    C = rng.normal(size=(30, 35))

    def grad(A, B):
        S = C * (1 - np.tanh(A @ B) ** 2)
        return S @ B.T, A.T @ S
    A, B = rng.normal(size=(30, 40)) / 10, rng.normal(size=(40, 35)) / 10
    t = ad.record(lambda A, B: np.sum(np.tanh(A @ B) * C), A, B)
    gA, gB = t.gradient()                               # x=None: the recorded point
    oA, oB = grad(A, B)
    np.testing.assert_allclose(gA, oA, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(gB, oB, rtol=1e-13, atol=1e-15)
    pts = [(rng.normal(size=A.shape) / 10, rng.normal(size=B.shape) / 10) for _ in range(3)]
    want = [grad(*p) for p in pts]
    bad = []

    def work(i):
        for r in range(10):
            p, w = pts[(i + r) % 3], want[(i + r) % 3]
            for g, o in zip(t.gradient(p if r % 2 else list(p)), w):
                if not np.allclose(g, o, rtol=1e-12, atol=1e-15):
                    bad.append((i, r))
    ths = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for h in ths:
        h.start()
    for h in ths:
        h.join()
    assert not bad
    t.gradient(pts[1])
    for g, o in zip(t.gradient(), want[1]):              # x=None: the last point swept
        np.testing.assert_allclose(g, o, rtol=1e-13, atol=1e-15)


def test_vjp_parts_refuses_lengths_that_do_not_add_up():
    t = ad.record(lambda a, b: np.sum(a * a) + 3.0 * np.sum(b), np.ones(3), np.ones(2))
    p = t._rec._p
    a, b = np.array([1.0, 2.0, 3.0]), np.array([4.0, 5.0])
    out, one = np.empty(5), ffi.new("double[]", [1.0])

    def call(parts, lens, n=None, k=1):
        P = ffi.new("double *[]", [ffi.NULL if x is None else ffi.from_buffer("double[]", x)
                                   for x in parts])
        L = ffi.new("int64_t[]", lens)
        return lib.tp_vjp_parts(p, len(parts) if n is None else n, P, L, k, one, ffi.NULL,
                                ffi.from_buffer("double[]", out))
    assert call([a, b], [3, 2]) == 0
    np.testing.assert_array_equal(out, [2.0, 4.0, 6.0, 3.0, 3.0])
    for parts, lens, n, k in [([a, b], [3, 1], None, 1), ([a, b], [-1, 6], None, 1),
                              ([a, b], [3, 2], 0, 1), ([a, b], [3, 2], -4, 1),
                              ([a, b], [3, 2], None, 0), ([a, None, b], [3, 1, 1], None, 1)]:
        assert call(parts, lens, n, k) == lib.TP_EARG
    assert call([a, None, b], [3, 0, 2]) == 0
    np.testing.assert_array_equal(out, [2.0, 4.0, 6.0, 3.0, 3.0])


def test_backward_between_constants_that_move_the_store():
    """Var.backward on an open tape sweeps the tape's own values: before and after many
    scalar and block constants move the block that holds them, and again after."""
    rng = np.random.default_rng(7)
    n = 100
    x0 = rng.normal(size=n)
    K1 = rng.normal(size=n)
    Ks = [rng.normal(size=n) for _ in range(4)]
    want1 = K1 * np.cos(x0 * K1)
    want = want1 + sum(Ks)
    for i in range(300):
        want[i % n] += 0.001 * i + 7.0
    t = ad.Tape()
    with t:
        x = t.variables(x0)
        y1 = np.sum(np.sin(x * K1))
        y1.backward()
        np.testing.assert_allclose(x.grad, want1, rtol=1e-15, atol=1e-16)
        s = y1
        for i in range(300):
            s = s + x[i % n] * (0.001 * i + 7.0)
        for K in Ks:
            s = s + np.sum(x * K)
        s.backward()
        np.testing.assert_allclose(x.grad, want, rtol=1e-14, atol=1e-14)
        y1.backward()
        np.testing.assert_allclose(x.grad, want1, rtol=1e-15, atol=1e-16)
        t.outputs(s)
    for u in (t, ad.loads(t.dumps()), pickle.loads(pickle.dumps(t)), t.optimize()):
        np.testing.assert_allclose(u.gradient(), want, rtol=1e-14, atol=1e-14)
        np.testing.assert_allclose(u.gradient(x0 + 0.0), want, rtol=1e-14, atol=1e-14)


def test_zero_adjoint_meets_inf_constants_in_every_copy_of_the_tape():
    K = np.array([[1.0, np.inf], [2.0, np.inf], [-1.0, np.nan]])
    w = np.array([1.5, 0.0])
    x0 = np.array([0.3, -0.2, 0.7])
    t = ad.record(lambda x: np.sum((x @ K) * w) + x[0] * 2.5 + 1.25, x0, arrays=True)
    want = np.array([4.0, 3.0, -1.5])
    for u in (t, t.optimize(), ad.loads(t.dumps(function=False)),
              ad.loads(t.optimize().dumps(function=False))):
        for g in (u.gradient(x0), u.gradient(), u.vjp(x0, 1.0)[1],
                  u.gradient(np.stack([x0, x0]), batch=True)[1], u.jacobian(x0, mode="reverse")):
            np.testing.assert_array_equal(g, want)


def test_empty_block_operands_save_load_and_optimize():
    """An empty block operand's code names no variable: with no variable before the op the
    recorder writes 0, which the loader refused; the optimiser mapped such codes through its
    renumbering (past its end: garbage codes, files it could not load, crashes)."""
    from tapead.program import export
    t = ad.Tape()
    with t:
        x = t.variables(np.zeros(0))
        t.outputs(np.sum(x))
    for _ in range(20):
        o = t.optimize()
        assert export(o)[1].tolist() == export(t)[1].tolist()
        for u in (ad.loads(t.dumps()), pickle.loads(pickle.dumps(t)), o, ad.loads(o.dumps())):
            assert u.forward() == 0.0 and u.gradient(np.zeros(0)).shape == (0,)
            assert u.dumps() == t.dumps()
    t2 = ad.record(lambda a: np.sum(a * 2.0) + 1.0, np.zeros(0), arrays=True)
    u = ad.loads(t2.dumps(function=False))
    assert u.forward(np.zeros(0)) == 1.0 and u.gradient(np.zeros(0)).shape == (0,)

    def f(a):
        y = a * 3.0
        return np.sum(y[1:1]) + a[0] * 2.0 + np.sum(a[2:] ** 2)
    x0 = np.array([0.5, -1.0, 2.0, 3.0])
    t3 = ad.record(f, x0, arrays=True)
    want = np.array([2.0, 0.0, 4.0, 6.0])
    for u in (t3, t3.optimize(), ad.loads(t3.optimize().dumps(function=False)),
              ad.loads(t3.dumps(function=False))):
        np.testing.assert_array_equal(u.gradient(x0), want)
        assert u.forward(x0) == 1.0 + 4.0 + 9.0

"""How a replay and a recording hold their numbers, without changing any result:

- an input of several large pieces is read where the pieces are (lib.tp_vjp_parts), not joined;
- x=None reads the recorded inputs until a sweep stores a point;
- the tape's constants sit below its recorded values in one block (tape_impl.h), which
  value_and_grad sweeps in place and which moves as constants are added between operations;
- a block of constants is checked finite as it is copied (matmul.c's zero-adjoint rule);
- constants' adjoints are not zeroed (nothing reads them; the sanitizer build fills them with NaN,
  tests/run_sanitizers.sh).
"""
import numpy as np
import pytest

import tapead as ad
import tapead.recording as recording
from tapead._core import ffi, lib


def _tanh_loss(C):
    return lambda A, B: np.sum(np.tanh(A @ B) * C)


def _tanh_grad(A, B, C):
    S = C * (1.0 - np.tanh(A @ B) ** 2)
    return S @ B.T, A.T @ S


@pytest.fixture
def big():
    rng = np.random.default_rng(11)
    A, B = rng.normal(size=(90, 100)) / 10, rng.normal(size=(100, 95)) / 10
    C = rng.normal(size=(90, 95))
    assert A.size + B.size >= recording.PARTS_MIN        # the pieces are read in place
    return A, B, C


def test_large_pieces_read_in_place_equal_the_joined_input(big, monkeypatch):
    A, B, C = big
    t = ad.record(_tanh_loss(C), A, B)
    rng = np.random.default_rng(2)
    A2, B2 = rng.normal(size=A.shape) / 10, rng.normal(size=B.shape) / 10
    gA, gB = t.gradient((A2, B2))
    oA, oB = _tanh_grad(A2, B2, C)
    np.testing.assert_allclose(gA, oA, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(gB, oB, rtol=1e-12, atol=1e-14)
    y, (vA, vB) = t.vjp((A2, B2), 1.0)
    assert y == pytest.approx(float(np.sum(np.tanh(A2 @ B2) * C)), rel=1e-13)
    y3, (wA, wB) = t.vjp([A2, B2], np.array([1.0, -2.0, 0.5]))           # k weights at once
    monkeypatch.setattr(recording, "PARTS_MIN", 1 << 62)                   # joined: x_flat
    jA, jB = t.gradient((A2, B2))
    assert gA.tobytes() == jA.tobytes() and gB.tobytes() == jB.tobytes()
    assert vA.tobytes() == jA.tobytes() and vB.tobytes() == jB.tobytes()
    for k, s in enumerate([1.0, -2.0, 0.5]):
        np.testing.assert_allclose(wA[k], s * jA, rtol=1e-12, atol=1e-15)   # (k-direction
        np.testing.assert_allclose(wB[k], s * jB, rtol=1e-12, atol=1e-15)   # kernels' order)
    for got, want in zip(t.gradient(), (jA, jB)):                           # x=None: the last point
        assert got.tobytes() == want.tobytes()


def test_large_pieces_in_any_layout_and_dtype(big):
    A, B, C = big
    t = ad.record(_tanh_loss(C), A, B)
    want = t.gradient((A, B))
    for a, b in [(np.asfortranarray(A), B), (A, np.asfortranarray(B)),
                 (np.repeat(A, 2, axis=1)[:, ::2], B[::1]), (A.tolist(), B)]:
        got = t.gradient((a, b))
        for g, w in zip(got, want):
            assert g.tobytes() == w.tobytes()
    with pytest.raises(ValueError, match=r"x\[1\] of shape \(100, 95\), got shape \(95, 100\)"):
        t.gradient((A, B.T))
    with pytest.raises(ValueError, match="sequence of 2 pieces"):
        t.gradient((A,))
    with pytest.raises(ValueError, match="sequence of 2 pieces"):
        t.vjp(np.concatenate([A.ravel(), B.ravel()]), 1.0)
    with pytest.raises(TypeError):
        t.gradient((A, None))


def test_vjp_parts_checks_its_pieces_at_the_c_boundary(big):
    A, B, C = big
    t = ad.record(_tanh_loss(C), A, B)
    p = t._rec._p
    a, b = np.ascontiguousarray(A).ravel(), np.ascontiguousarray(B).ravel()
    g, one = np.empty(a.size + b.size), np.ones(1)
    ptrs = ffi.new("double *[]", [ffi.from_buffer("double[]", a), ffi.from_buffer("double[]", b)])
    buf = ffi.from_buffer("double[]", g)
    w = ffi.from_buffer("double[]", one)
    for lens, n in [([a.size, b.size - 1], 2), ([a.size, b.size + 1], 2), ([-1, b.size + 1], 2),
                    ([a.size + b.size + 1], 1), ([a.size, b.size], 0), ([a.size, b.size], -3)]:
        assert lib.tp_vjp_parts(p, n, ptrs, ffi.new("int64_t[]", lens), 1, w, ffi.NULL, buf) < 0
    null = ffi.new("double *[]", [ffi.from_buffer("double[]", a), ffi.NULL])
    assert lib.tp_vjp_parts(p, 2, null, ffi.new("int64_t[]", [a.size, b.size]), 1, w,
                            ffi.NULL, buf) < 0
    assert lib.tp_vjp_parts(p, 2, ptrs, ffi.new("int64_t[]", [a.size, b.size]), 0, w,
                            ffi.NULL, buf) < 0                              # k < 1
    assert lib.tp_vjp_parts(p, 2, ptrs, ffi.new("int64_t[]", [a.size, b.size]), 1, w,
                            ffi.NULL, buf) == 0
    np.testing.assert_array_equal(g, np.concatenate([x.ravel() for x in t.gradient((A, B))]))


def test_x_none_is_the_recorded_point_then_the_last_point_swept():
    x0, x1 = np.array([0.3, -1.2, 2.0]), np.array([1.0, 0.5, -0.25])
    t = ad.record(lambda x: np.sum(np.sin(x) * x), x0, arrays=True)
    assert np.array_equal(t.gradient(), np.sin(x0) + x0 * np.cos(x0))
    assert t.forward() == pytest.approx(np.sum(np.sin(x0) * x0), rel=1e-15)
    t.gradient(x1)
    assert np.array_equal(t.gradient(), np.sin(x1) + x1 * np.cos(x1))
    with pytest.raises(ValueError):
        t.gradient(np.ones(4))                       # a replay that raised does not move it
    assert np.array_equal(t.gradient(), np.sin(x1) + x1 * np.cos(x1))
    t0 = ad.record(lambda x: np.sum(np.sin(x) * x), x0, arrays=True)
    back = ad.loads(t0.dumps(function=False))
    assert np.array_equal(back.gradient(), np.sin(x0) + x0 * np.cos(x0))
    assert np.array_equal(t.optimize().gradient(), np.sin(x1) + x1 * np.cos(x1))


def test_x_none_with_inputs_added_after_a_replay_of_an_open_tape():
    with ad.Tape() as t:
        a = t.variables(np.array([1.0, 2.0]), array=True)
        t.outputs(np.sum(a * a))
        assert np.array_equal(t.gradient([3.0, 4.0]), [6.0, 8.0])      # the recording thread
    assert np.array_equal(t.gradient(), [6.0, 8.0])


def _zero_rule_tape(K, before=(), after=()):
    """sum((K @ W)[0]) with constant blocks recorded before and after K: only row 0 of K @ W
    reaches the output, so K's Inf in other rows meets zero adjoints and must give 0, not NaN."""
    def f(W):
        s = 0.0
        for c in before:
            s = s + np.sum(np.asarray(c) * W[0])
        s = s + np.sum((K @ W)[0])
        for c in after:
            s = s + np.sum(np.asarray(c) * W[0])
        return s
    return f


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
@pytest.mark.parametrize("where", ["alone", "after finite", "before finite", "scalar after"])
def test_a_constant_block_is_checked_finite_as_it_is_recorded(bad, where):
    K = np.arange(12.0).reshape(4, 3) / 7
    K[2, 1] = bad
    W = np.arange(6.0).reshape(3, 2) - 2.5
    fin = [np.full(2, 0.5), np.full(2, -1.5)]
    before, after = {"alone": ([], []), "after finite": (fin, []), "before finite": ([], fin),
                     "scalar after": ([], [3.0, 4.0])}[where]
    f = _zero_rule_tape(K, before, after)
    t = ad.record(f, W, arrays=True)
    want = np.outer(K[0], np.ones(2))
    want[0] += sum(np.asarray(c) * np.ones(2) for c in list(before) + list(after))
    for g in (t.gradient(), t.gradient(W + 1.0), t.optimize().gradient(W)):
        assert np.all(np.isfinite(g))
        np.testing.assert_allclose(g, want, rtol=1e-15)
    y, g = ad.value_and_grad(f)(W)
    np.testing.assert_allclose(g, want, rtol=1e-15)
    back = ad.loads(t.dumps(function=False))
    assert back.gradient(W).tobytes() == t.gradient(W).tobytes()


def test_constants_added_between_operations_move_the_values_block():
    """Scalar constants and blocks of constants recorded after many values (the block that holds
    both grows below and moves): every replay mode, a save/load and the optimiser agree."""
    rng = np.random.default_rng(5)
    x0 = rng.normal(size=300)
    blocks = [rng.normal(size=300) for _ in range(3)]

    def f(x):
        s = 0.0
        for i in range(0, 300, 7):
            s = s + x[i] * (i + 0.25) + ad.sin(x[i]) * (0.5 - i)
        for c in blocks:
            s = s + np.sum(np.tanh(x * c))
        return s

    def grad(x):
        g = sum(c * (1 - np.tanh(x * c) ** 2) for c in blocks)
        i = np.arange(0, 300, 7)
        g[i] += (i + 0.25) + np.cos(x[i]) * (0.5 - i)
        return g
    t = ad.record(f, x0, arrays=True)
    assert t.stats()["constants"] >= 900
    x1 = rng.normal(size=300)
    for x in (x0, x1):
        np.testing.assert_allclose(t.gradient(x), grad(x), rtol=1e-13, atol=1e-13)
    v = rng.normal(size=300)
    _, jv = t.jvp(x1, v)
    assert jv == pytest.approx(float(grad(x1) @ v), rel=1e-12)
    back = ad.loads(t.dumps(function=False))
    assert back.gradient(x1).tobytes() == t.gradient(x1).tobytes()
    assert back.hvp(x1, v).tobytes() == t.hvp(x1, v).tobytes()
    np.testing.assert_allclose(t.optimize().gradient(x1), grad(x1), rtol=1e-13, atol=1e-13)
    y, g = ad.value_and_grad(f)(x1)
    np.testing.assert_allclose(g, grad(x1), rtol=1e-13, atol=1e-13)


def test_block_guard_of_many_elements_moves_the_block_it_reads_from():
    """A block comparison's outcomes become constants copied from the tape's own values: with
    many elements the constants' room grows (the block moves) during that copy."""
    x = np.linspace(0.5, 3.0, 20000)

    def f(a):
        return np.sum(a * a) if (a > 0).all() else np.sum(-a)
    t = ad.record(f, x, arrays=True)
    assert t.stats()["guards"] == 1
    np.testing.assert_array_equal(t.gradient(x), 2 * x)
    x2 = x.copy()
    x2[12345] = -1.0
    np.testing.assert_array_equal(t.gradient(x2), -np.ones_like(x))      # re-recorded
    assert t.stats()["rerecords"] == 1


def test_constant_adjoints_are_never_read():
    """Constants of every kind around every kind of op, replayed in every mode twice (the second
    time over the first's leftovers): results as the oracle's."""
    x0 = np.array([0.7, -0.4, 1.3])
    K = np.array([[1.0, 2.0, -1.0], [0.5, 0.0, 3.0]])

    def f(x):
        z = K @ x + np.array([0.1, -0.2])
        return np.sum(np.exp(z) * 3.0) + np.max(x * np.array([1.0, 2.0, 0.5])) + 2.0 * x[0]

    def grad(x):
        g = K.T @ (3.0 * np.exp(K @ x + np.array([0.1, -0.2])))
        w = x * np.array([1.0, 2.0, 0.5])
        g[np.argmax(w)] += np.array([1.0, 2.0, 0.5])[np.argmax(w)]
        g[0] += 2.0
        return g
    t = ad.record(f, x0, arrays=True)
    H = K.T @ np.diag(3.0 * np.exp(K @ x0 + np.array([0.1, -0.2]))) @ K
    for _ in range(2):
        np.testing.assert_allclose(t.gradient(x0), grad(x0), rtol=1e-14)
        np.testing.assert_allclose(t.vjp(x0, 1.0)[1], grad(x0), rtol=1e-14)
        np.testing.assert_allclose(t.hessian(x0), H, rtol=1e-13)
        np.testing.assert_allclose(t.gradient(np.stack([x0, x0]), batch=True)[1], grad(x0),
                                   rtol=1e-14)
        np.testing.assert_allclose(t.hvp(np.stack([x0, x0]), np.eye(3)[:2], batch=True)[1],
                                   H[1], rtol=1e-13)
        np.testing.assert_allclose(ad.value_and_grad(f)(x0)[1], grad(x0), rtol=1e-14)


def _pieces_loss(W, b, s):
    h = np.tanh(W @ np.array([1.0, -2.0, 0.5]) + b)
    return np.sum(h * h) * s if np.all(h > -0.9) else np.sum(h) + s


def test_gradient_of_array_pieces_in_c_equals_the_general_path():
    """t.gradient((W, b, s)) with float64 C-contiguous arrays takes the C path (pieces read in
    place): the same bits as the general path (lists, other layouts), its errors, re-recording
    where a guard flips."""
    rng = np.random.default_rng(3)
    W, b = rng.normal(size=(4, 3)) / 4, rng.normal(size=4) / 4
    t = ad.record(_pieces_loss, W, b, 1.5)
    W2, b2 = W + 0.1, b - 0.05
    fast = t.gradient((W2, b2, np.array(2.0)))
    slow = t.gradient([W2.tolist(), list(b2), 2.0])
    fort = t.gradient((np.asfortranarray(W2), b2, 2.0))
    for got in (slow, fort):
        for g, f in zip(got, fast):
            assert np.asarray(g).tobytes() == np.asarray(f).tobytes()
    assert isinstance(fast[2], float) and fast[0].shape == (4, 3) and fast[1].shape == (4,)
    h = np.tanh(W2 @ np.array([1.0, -2.0, 0.5]) + b2)
    d = 2 * h * (1 - h * h) * 2.0
    np.testing.assert_allclose(fast[0], np.outer(d, [1.0, -2.0, 0.5]), rtol=1e-14)
    np.testing.assert_allclose(fast[1], d, rtol=1e-14)
    assert fast[2] == pytest.approx(np.sum(h * h), rel=1e-14)
    with pytest.raises(ValueError, match=r"x\[0\] of shape \(4, 3\), got shape \(3, 4\)"):
        t.gradient((W2.T.copy(), b2, 2.0))
    with pytest.raises(ValueError, match="sequence of 3 pieces"):
        t.gradient((W2, b2))
    assert t.stats()["rerecords"] == 0
    Wf = W2.copy()
    Wf[0] = [-5.0, 5.0, 0.0]                                  # h[0] < -0.9: the other branch
    g = t.gradient((Wf, b2, np.array(2.0)))
    assert t.stats()["rerecords"] == 1
    hf = np.tanh(Wf @ np.array([1.0, -2.0, 0.5]) + b2)
    np.testing.assert_allclose(g[1], 1 - hf * hf, rtol=1e-14, atol=1e-15)
    assert g[2] == 1.0
    g32 = t.gradient((Wf.astype(np.float32), b2, 2.0))       # converted by the general path
    np.testing.assert_allclose(g32[1], g[1], rtol=1e-6)


def test_vjp_of_array_pieces_in_c_equals_the_general_path(monkeypatch):
    """t.vjp((W, b, s), w) for a float w goes through C (_fast.vjp1): (y, w * gradient) with the
    general path's bits, its result types, its errors and re-recording."""
    rng = np.random.default_rng(4)
    W, b = rng.normal(size=(4, 3)) / 4, rng.normal(size=4) / 4
    t = ad.record(_pieces_loss, W, b, 1.5)
    x = (W + 0.1, b - 0.05, np.array(2.0))
    y, g = t.vjp(x, 1.0)
    assert isinstance(y, float) and isinstance(g, tuple) and isinstance(g[2], float)
    assert y == t.forward(x)
    for a, e in zip(g, t.gradient(x)):
        assert np.asarray(a).tobytes() == np.asarray(e).tobytes()
    for w in (-2.5, 3, np.float64(0.5)):
        yw, gw = t.vjp(x, w)
        assert yw == y
        for a, e in zip(gw, g):
            np.testing.assert_allclose(a, float(w) * np.asarray(e), rtol=1e-14)
    from tapead import _fast
    monkeypatch.setattr(_fast, "vjp1", lambda rec, x, w: NotImplemented)   # the general path
    y2, g2 = t.vjp(x, -2.5)
    monkeypatch.undo()
    y3, g3 = t.vjp(x, -2.5)
    assert y2 == y3 and all(np.asarray(a).tobytes() == np.asarray(c).tobytes()
                            for a, c in zip(g2, g3))
    yk, gk = t.vjp(x, np.array([1.0, -1.0]))                  # k weights: the general path
    np.testing.assert_allclose(gk[0][1], -g[0], rtol=1e-14)
    with pytest.raises(ValueError, match="expected w of shape"):
        t.vjp(x, np.ones((2, 2)))
    Wf = x[0].copy()
    Wf[0] = [-5.0, 5.0, 0.0]
    yf, gf = t.vjp((Wf, x[1], x[2]), 1.0)                     # a guard flips: re-recorded
    assert t.stats()["rerecords"] == 1 and gf[2] == 1.0
    t1 = ad.record(lambda a, c: (a @ c)[:1], np.ones((2, 2)), np.ones(2))
    y1, g1 = t1.vjp((np.ones((2, 2)), np.arange(2.0)), np.ones(1))   # output of shape (1,)
    assert isinstance(y1, np.ndarray) and y1.shape == (1,)
    np.testing.assert_array_equal(g1[0], [[0.0, 1.0], [0.0, 0.0]])
    np.testing.assert_array_equal(g1[1], [1.0, 1.0])
    with ad.Tape() as t0:
        t0.variables(np.ones(2)), t0.variables(np.ones((2, 2)))
    with pytest.raises(ad.TapeError, match="no outputs"):
        t0.vjp((np.ones(2), np.ones((2, 2))), 1.0)

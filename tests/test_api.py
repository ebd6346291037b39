"""The public API (docs/API.md, recording to checking): functional transforms with JAX's conventions, recording
and output structures, NumPy object arrays, backward(), stats() and the visit counters, nbytes,
and the derivative checker."""
import math

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import tapead as ad

from helpers import rosen_loop, seed_f


# ---- functional API --------------------------------------------------------------------------
def test_grad_argnums():
    f = lambda a, b, c: a * b ** 2 + ad.sin(c) * a       # noqa: E731
    args = (2.0, 3.0, 0.5)
    da, db, dc = 9.0 + math.sin(0.5), 12.0, 2.0 * math.cos(0.5)
    g0 = ad.grad(f)(*args)
    assert type(g0) is float and g0 == pytest.approx(da, rel=1e-15)
    assert ad.grad(f, argnums=1)(*args) == 12.0
    assert ad.grad(f, argnums=-1)(*args) == pytest.approx(dc, rel=1e-15)
    g = ad.grad(f, argnums=(0, 2))(*args)
    assert isinstance(g, tuple) and len(g) == 2
    assert_allclose(g, (da, dc), rtol=1e-15)
    g1 = ad.grad(f, argnums=(1,))(*args)                   # a 1-tuple gives a 1-tuple
    assert isinstance(g1, tuple) and g1 == (db,)
    assert_allclose(ad.grad(f, argnums=(0, 1, 2))(*args), (da, db, dc), rtol=1e-15)


def test_grad_of_array_arguments_keeps_their_shape():
    f = lambda A, b: ad.sum(np.sin(A) * b)                 # noqa: E731
    A, b = np.arange(6.0).reshape(2, 3) / 7, np.array([1.0, -2.0, 0.5])
    gA, gb = ad.grad(f, argnums=(0, 1))(A, b)
    assert gA.shape == (2, 3) and gb.shape == (3,)
    assert_allclose(gA, np.cos(A) * b, rtol=1e-15)
    assert_allclose(gb, np.sin(A).sum(axis=0), rtol=1e-15)
    # other arguments stay plain values
    seen = []
    ad.grad(lambda A, b: seen.append(type(b)) or ad.sum(A * b))(A, b)
    assert seen == [np.ndarray]


@pytest.mark.parametrize("xshape,yshape", [((), ()), ((3,), ()), ((), (4,)), ((3,), (4,)),
                                           ((2, 3), (4,)), ((2, 3), (2, 2)), ((3,), (1,)),
                                           ((1,), (3,))])
def test_jacobian_shapes_follow_jax(xshape, yshape):
    rng = np.random.default_rng(len(xshape) * 10 + len(yshape))
    x0 = rng.uniform(0.5, 1.5, xshape)
    ny, nx = int(np.prod(yshape)), int(np.prod(xshape))
    C = rng.normal(size=(ny, nx))

    def f(x):
        flat = np.asarray(x, dtype=object).reshape(-1)
        out = [ad.sin(ad.dot(C[i], flat)) * flat[i % nx] for i in range(ny)]
        return out[0] if yshape == () else np.array(out, dtype=object).reshape(yshape)

    expect = yshape + xshape
    Jf, Jr, Ja = ad.jacfwd(f)(x0), ad.jacrev(f)(x0), ad.jacobian(f)(x0)
    for J in (Jf, Jr, Ja, ad.jacobian(f, mode="forward")(x0), ad.jacobian(f, mode="reverse")(x0)):
        assert np.shape(J) == expect
    assert_allclose(Jf, Jr, rtol=1e-13, atol=1e-15)
    assert_allclose(Ja, Jr, rtol=1e-13, atol=1e-15)
    fd = ad.finite_diff(lambda u: np.array(f(u), dtype=float), x0)
    assert fd.shape == expect
    assert_allclose(Jr, fd, rtol=1e-6, atol=1e-8)
    t = ad.record(f, x0)
    assert np.shape(t.jacobian(x0)) == expect and np.shape(t(x0)) == yshape


def test_jacobian_with_tuple_argnums():
    f = lambda a, b: a * b                                 # noqa: E731
    a, b = np.array([1.0, 2.0, 3.0]), 2.0
    for jac in (ad.jacfwd, ad.jacrev, ad.jacobian):
        Ja, Jb = jac(f, argnums=(0, 1))(a, b)
        assert Ja.shape == (3, 3) and np.shape(Jb) == (3,)
        assert_array_equal(Ja, 2.0 * np.eye(3))
        assert_array_equal(Jb, a)


def test_jvp_returns_primal_and_tangent_out():
    f = lambda a, b: [a * b, ad.exp(a)]                    # noqa: E731
    y, ydot = ad.jvp(f, (2.0, 3.0), (1.0, 0.5))
    assert_allclose(y, [6.0, math.exp(2.0)], rtol=1e-15)
    assert_allclose(ydot, [3.0 + 1.0, math.exp(2.0)], rtol=1e-15)
    y, ydot = ad.jvp(lambda x: x * x, (3.0,), (2.0,))
    assert type(y) is float and type(ydot) is float and (y, ydot) == (9.0, 12.0)
    x = np.array([1.0, 2.0])
    y, ydot = ad.jvp(lambda x: np.sin(x), (x,), (np.array([1.0, -1.0]),))
    assert y.shape == ydot.shape == (2,)
    assert_allclose(ydot, np.cos(x) * [1.0, -1.0], rtol=1e-15)
    y, ydot = ad.jvp(lambda x: ad.sum(x * x), [x], [np.ones(2)])       # lists work too
    assert ydot == 6.0


def test_vjp_returns_primal_and_pullback():
    f = lambda a, b: [a * b, ad.exp(a)]                    # noqa: E731
    y, pullback = ad.vjp(f, 2.0, 3.0)
    assert_allclose(y, [6.0, math.exp(2.0)], rtol=1e-15)
    ct = pullback(np.array([1.0, 2.0]))
    assert isinstance(ct, tuple) and len(ct) == 2
    assert_allclose(ct, (3.0 + 2 * math.exp(2.0), 2.0), rtol=1e-15)
    # one primal: still a 1-tuple of cotangents; the pullback can be called again
    y, pullback = ad.vjp(lambda x: x * x, np.array([1.0, 2.0, 3.0]))
    (c,) = pullback(np.ones(3))
    assert c.shape == (3,)
    assert_array_equal(c, [2.0, 4.0, 6.0])
    assert_array_equal(pullback(np.array([0.0, 1.0, 0.0]))[0], [0.0, 4.0, 0.0])
    y, pullback = ad.vjp(lambda x: ad.sum(x), np.array([1.0, 2.0]))
    assert type(y) is float and y == 3.0


# ---- recording ---------------------------------------------------------------------------------
def test_record_with_several_scalar_and_array_arguments():
    kinds = []

    def f(a, B, c):
        kinds.extend([type(a), type(B), B.dtype, B.shape, type(c)])
        return a * ad.sum(B) + c * B[1, 0]

    B0 = np.array([[1.0, 2.0], [3.0, 4.0]])
    t = ad.record(f, 2.0, B0, -1.0)
    assert kinds == [ad.Var, np.ndarray, object, (2, 2), ad.Var]
    assert t.n_inputs == 6 and t.n_outputs == 1
    x = (1.5, B0 * 2, 3.0)
    assert t(x) == 1.5 * 20.0 + 3.0 * 6.0
    ga, gB, gc = t.gradient(x)
    assert type(ga) is float and gB.shape == (2, 2) and type(gc) is float
    assert ga == 20.0 and gc == 6.0
    assert_array_equal(gB, [[1.5, 1.5], [1.5 + 3.0, 1.5]])
    Ja, JB, Jc = t.jacobian(x, mode="forward")
    assert (Ja, Jc) == (20.0, 6.0)
    assert_array_equal(JB, gB)
    y, (va, vB, vc) = t.vjp(x, 2.0)
    assert (va, vc) == (40.0, 12.0)
    assert_array_equal(vB, 2 * gB)
    y, ydot = t.jvp(x, (1.0, np.zeros((2, 2)), 0.0))
    assert ydot == 20.0
    # k directions: every piece with the same trailing k
    y, ydot = t.jvp(x, (np.array([1.0, 0.0]), np.zeros((2, 2, 2)), np.array([0.0, 1.0])))
    assert_array_equal(ydot, [20.0, 6.0])


def test_variables_called_twice_numbers_inputs_in_call_order():
    with ad.Tape() as t:
        a = t.variables(2.0)
        B = t.variables([[1.0, 2.0], [3.0, 4.0]])
        c = t.variables([5.0])
        assert type(a) is ad.Var and B.shape == (2, 2) and B.dtype == object and c.shape == (1,)
        assert a.index == 0 and [b.index for b in B.flat] == [1, 2, 3, 4] and c[0].index == 5
        y = a * B[0, 1] + c[0]
        assert y.index == 6 + len(t) - 1
        t.outputs(y)
    assert t.n_inputs == 6 and len(t) == 2
    assert a.value == 2.0 and B[1, 0].value == 3.0
    g = t.gradient((1.0, [[0.0, 7.0], [0.0, 0.0]], [0.0]))
    assert g[0] == 7.0 and g[2].tolist() == [1.0]
    assert_array_equal(g[1], [[0.0, 1.0], [0.0, 0.0]])


def test_output_shapes_are_reproduced():
    x0 = np.array([1.0, 2.0, 3.0])
    t = ad.record(lambda x: x[0] * x[1], x0)                          # scalar -> float
    assert type(t(x0)) is float and type(t.forward(x0)) is float
    assert type(t.jvp(x0, np.ones(3))[0]) is float and type(t.vjp(x0, 1.0)[0]) is float
    t = ad.record(lambda x: [[x[0], x[1]], [x[2], x[0] * x[2]], [1.0, x[1]]], x0)  # nested
    y = t(x0)
    assert isinstance(y, np.ndarray) and y.shape == (3, 2) and y.dtype == np.float64
    assert_array_equal(y, [[1, 2], [3, 3], [1, 2]])
    assert t.jacobian(x0).shape == (3, 2, 3)
    assert t.jvp(x0, np.ones(3))[1].shape == (3, 2)
    assert t.jvp(x0, np.ones((3, 5)))[1].shape == (3, 2, 5)
    assert t.vjp(x0, np.ones((3, 2)))[1].shape == (3,)
    assert t.vjp(x0, np.ones((4, 3, 2)))[1].shape == (4, 3)
    t = ad.record(lambda x: (x * 2.0).reshape(3, 1), x0)             # object array output
    assert t(x0).shape == (3, 1) and t.jacobian(x0).shape == (3, 1, 3)
    t = ad.record(lambda x: [x[0]], x0)                               # one-element list
    assert t(x0).shape == (1,)


def test_constants_as_outputs():
    t = ad.record(lambda x: [x * 2.0, 3.0, 7], 1.0)
    assert_array_equal(t(5.0), [10.0, 3.0, 7.0])
    assert_array_equal(t.jacobian(5.0, mode="forward"), [2.0, 0.0, 0.0])
    assert_array_equal(t.jacobian(5.0, mode="reverse"), [2.0, 0.0, 0.0])
    t = ad.record(lambda x: 4.5, 1.0)                                 # a constant function
    assert t(2.0) == 4.5 and t.gradient(2.0) == 0.0 and len(t) == 0
    t = ad.record(lambda x: x, np.array([1.0, 2.0]))                  # the identity
    assert len(t) == 0
    assert_array_equal(t.jacobian([3.0, 4.0]), np.eye(2))


def test_x_none_means_last_point_swept():
    t = ad.record(seed_f, 2.0, 1.0)
    assert t() == t((2.0, 1.0))                    # first: the recording point
    g = t.gradient((3.0, 0.5))
    assert_array_equal(t.gradient(), g)
    assert t() == t((3.0, 0.5))
    assert_allclose(t.jacobian(None, mode="forward"), g, rtol=1e-15)


# ---- Var and NumPy -----------------------------------------------------------------------------
def test_var_attributes_and_comparisons():
    with ad.Tape() as t:
        x, y = t.variables([2.0, 3.0])
        z = x * y
        assert (x.index, y.index, z.index) == (0, 1, 2)
        assert x.grad is None
        for r in (x < y, x <= 2.0, 3 > x, y >= x, x == 2.0, x != y, 1.5 < x):
            assert type(r) is ad.Cond and not r.guarded
            assert bool(r) is True and r.guarded
        assert not (x > y) and (x == y) == False        # noqa: E712
        assert bool(x) is True
        # each comparison is recorded; taking its truth value (and bool(x), i.e. x != 0) makes
        # it a branch guard
        assert len(t) == 11 and t.stats()["guards"] == 10
        t.outputs(z)
    assert z.value == 6.0 and type(z.value) is float     # closed: a plain read
    assert type(x < y) is bool and (x < y) is True       # closed: plain bools


def test_elementary_functions_on_plain_numbers_and_arrays():
    assert type(ad.sin(1.0)) is float and ad.sin(1.0) == math.sin(1.0)
    assert type(ad.hypot(3, 4)) is float and ad.hypot(3, 4) == 5.0
    assert ad.erf(0.5) == math.erf(0.5)
    a = np.array([0.5, 1.0, 2.0])
    assert_array_equal(ad.sqrt(a), np.sqrt(a))
    assert_array_equal(ad.maximum(a, 1.0), [1.0, 1.0, 2.0])
    assert_array_equal(ad.erf(a), [math.erf(e) for e in a])
    assert ad.where(True, 1.0, 2.0) == 1.0
    assert_array_equal(ad.where(a > 0.7, a, -a), [-0.5, 1.0, 2.0])
    assert ad.sum([1.0, 2, np.float32(0.5)]) == 3.5 and ad.dot([1, 2], [3, 4]) == 11.0


def test_object_arrays_of_var():
    A0 = np.array([[1.0, 2.0], [3.0, 4.0]])
    with ad.Tape() as t:
        A = t.variables(A0)
        v = t.variables([0.5, -1.0])
        s = np.sum(A)                               # NumPy reductions
        d = np.dot(A[0], v)
        mv = A @ v                                  # matmul gives an object array of Var
        mm = A @ A
        sn = np.sin(A)                              # ufuncs elementwise
        ex = np.exp(v) * 2.0 + 1.0                  # broadcasting with numbers
        rows = [r for r in A]                       # iteration
        elems = [e for e in A.flat]
        assert mv.shape == (2,) and mm.shape == (2, 2) and sn.shape == (2, 2)
        assert sn.dtype == object and type(sn[1, 1]) is ad.Var
        assert all(type(e) is ad.Var for e in elems) and len(rows) == 2
        assert type(s) is ad.Var and type(d) is ad.Var
        y = s + d + mv[1] + mm[0, 1] + sn[1, 1] + ex[0] + rows[1][0]
        t.outputs(y)
    x = (A0, np.array([0.5, -1.0]))
    expect = (A0.sum() + A0[0] @ x[1] + (A0 @ x[1])[1] + (A0 @ A0)[0, 1] + math.sin(4.0)
              + 2 * math.exp(0.5) + 1.0 + 3.0)
    assert_allclose(t(x), expect, rtol=1e-14)
    gA, gv = t.gradient(x)
    v0 = x[1]
    ref_A = np.ones((2, 2))
    ref_A[0] += v0                                  # d
    ref_A[1] += v0                                  # mv[1]
    ref_A[0, 0] += A0[0, 1]; ref_A[0, 1] += A0[0, 0] + A0[1, 1]; ref_A[1, 1] += A0[0, 1]
    ref_A[1, 1] += math.cos(4.0)
    ref_A[1, 0] += 1.0
    ref_v = A0[0] + A0[1] + np.array([2 * math.exp(0.5), 0.0])
    assert_allclose(gA, ref_A, rtol=1e-14)
    assert_allclose(gv, ref_v, rtol=1e-14)


def test_backward_fills_grad():
    with ad.Tape() as t:
        x1, x2 = t.variables([2.0, 1.0])
        v1 = x2 ** 2
        y = seed_f(x1, x2)
    assert x1.grad is None and y.grad is None
    y.backward()
    L = math.log(2.0 / math.sin(1.0))
    assert_allclose([x1.grad, x2.grad],
                    [math.sqrt(L) + 1 / (2 * math.sqrt(L)), -2.0 / math.tan(1.0) / math.sqrt(L)],
                    rtol=1e-13)
    assert y.grad == 1.0
    assert v1.grad is not None                      # intermediates get their adjoints too
    assert t.stats()["swept"]["adjoint"] == len(t)
    # a second backward from another root overwrites
    v1.backward()
    assert (x1.grad, x2.grad, v1.grad) == (0.0, 2.0, 1.0)


def test_backward_inside_the_recording():
    with ad.Tape() as t:
        x = t.variables(3.0)
        y = x * x
        y.backward()
        z = y * x                                   # recording goes on
        t.outputs(z)
    assert x.grad == 6.0                            # read after the recording: a plain number
    assert t.gradient(2.0) == 12.0


# ---- stats and the visit counters ----------------------------------------------------------------
def test_stats_keys_and_counts():
    t = ad.record(seed_f, 2.0, 1.0)
    s = t.stats()
    for key in ("ops", "by_opcode", "rerecords", "swept"):
        assert key in s
    assert s["ops"] == len(t) == 6
    assert s["by_opcode"] == {"square": 1, "sin": 1, "div": 1, "log": 1, "sqrt": 1, "mul": 1}
    assert sum(s["by_opcode"].values()) == len(t)
    assert s["rerecords"] == 0
    assert set(s["swept"]) >= {"primal", "tangent", "adjoint"}
    assert t.n_inputs == 2 and t.n_outputs == 1


def _delta(t, fn):
    """Visits a call adds: {"tangent": .., "adjoint": ..} exactly, and whether it swept the
    primal once (a derivative sweep may reuse a primal sweep; it never repeats one)."""
    before = dict(t.stats()["swept"])
    fn()
    after = t.stats()["swept"]
    d = {k: after[k] - before[k] for k in ("primal", "tangent", "adjoint")}
    assert d["primal"] in (0, len(t)), d
    del d["primal"]
    return d


@pytest.mark.parametrize("m,n", [(1, 1), (2, 7), (7, 2), (5, 5), (12, 1)])
def test_swept_counters_follow_the_cost_model(m, n):
    rng = np.random.default_rng(m * 31 + n)
    C = rng.normal(size=(n, m))
    t = ad.record(lambda x: [ad.tanh(ad.dot(C[i], x)) * x[i % m] for i in range(n)],
                  rng.normal(size=m))
    L = len(t)
    x = rng.normal(size=m)
    # forward Jacobian: exactly m * len(tape) tangent visits; reverse: n * len(tape) adjoint
    assert _delta(t, lambda: t.jacobian(x, mode="forward")) == {"tangent": m * L, "adjoint": 0}
    assert _delta(t, lambda: t.jacobian(x, mode="reverse")) == {"tangent": 0, "adjoint": n * L}
    auto = _delta(t, lambda: t.jacobian(x))                     # the cheaper of the two
    assert auto["tangent"] + auto["adjoint"] == min(m, n) * L
    before = t.stats()["swept"]["primal"]
    t(x)                                                        # a primal sweep: len(tape)
    assert t.stats()["swept"]["primal"] - before == L
    assert _delta(t, lambda: t(x)) == {"tangent": 0, "adjoint": 0}
    assert _delta(t, lambda: t.jvp(x, np.ones((m, 3)))) == {"tangent": 3 * L, "adjoint": 0}
    assert _delta(t, lambda: t.jvp(x, np.ones(m))) == {"tangent": L, "adjoint": 0}
    assert _delta(t, lambda: t.vjp(x, np.ones((4, n)))) == {"tangent": 0, "adjoint": 4 * L}
    if n == 1:
        assert _delta(t, lambda: t.gradient(x)) == {"tangent": 0, "adjoint": L}


def test_nbytes_per_operation_on_rosenbrock():
    t = ad.record(rosen_loop, np.linspace(-1.0, 1.0, 1000))
    assert len(t) > 7000
    assert t.nbytes / len(t) <= 10
    assert t.stats()["by_opcode"].get("pow", 0) == 0       # x ** 2 is SQUARE


def test_constants_are_operands_not_variables():
    t = ad.record(lambda x: 3.0 * x + 3.0 - x / 3.0 + x ** 3.0, 1.0)
    assert len(t) == 6 and t.n_inputs == 1
    assert t(2.0) == 6.0 + 3.0 - 2.0 / 3.0 + 8.0


# ---- the checker -------------------------------------------------------------------------------
def test_check_grads_passes_on_correct_code():
    ad.check_grads(seed_f, (2.0, 1.0))
    ad.check_grads(rosen_loop, (np.array([0.5, -0.3, 1.2]),), modes=("rev",))
    ad.check_grads(lambda x: np.sin(x) * x[::-1], (np.array([0.1, 0.7, 1.3]),), modes="fwd")
    ad.check_grads(lambda a, b: ad.hypot(a, b) * ad.exp(b), (0.3, -1.2), rtol=1e-7, atol=1e-8)


def test_check_grads_raises_on_a_wrong_derivative():
    def bad(x):
        # the taped path differentiates sin, the numeric path sees 1.1 * sin
        return ad.sin(x) if isinstance(x, ad.Var) else 1.1 * math.sin(x)

    with pytest.raises(AssertionError) as e:
        ad.check_grads(bad, (0.7,))
    msg = str(e.value)
    assert "AD" in msg and "numeric" in msg
    assert repr(math.cos(0.7)) in msg or f"{math.cos(0.7):.6}" in msg   # the AD value is named

    def bad_vec(x):
        if isinstance(x[0], ad.Var):
            return x * x
        y = x * x
        y[2] = y[2] + 0.01 * x[1]                             # one wrong entry
        return y

    with pytest.raises(AssertionError, match=r"\(2, 1\)"):
        ad.check_grads(bad_vec, (np.array([1.0, 2.0, 3.0]),), modes=("rev",))


def test_finite_diff_methods_and_shapes():
    f = lambda x: np.array([x[0] * x[1], np.sin(x[2])])   # noqa: E731
    x = np.array([1.0, 2.0, 0.5])
    J = np.array([[2.0, 1.0, 0.0], [0.0, 0.0, math.cos(0.5)]])
    assert_allclose(ad.finite_diff(f, x), J, rtol=1e-9, atol=1e-10)
    assert_allclose(ad.finite_diff(f, x, method="forward"), J, rtol=1e-6, atol=1e-7)
    assert_allclose(ad.finite_diff(math.exp, 1.0), math.e, rtol=1e-9)
    assert ad.finite_diff(lambda u: u * u, np.ones((2, 2))).shape == (2, 2, 2, 2)


def test_value_and_grad_as_jax():
    f = lambda x: x[0] * ad.sin(x[1])                 # noqa: E731
    x = np.array([2.0, 0.5])
    y, g = ad.value_and_grad(f)(x)
    assert y == 2.0 * np.sin(0.5) and type(y) is float
    assert_array_equal(g, ad.grad(f)(x))
    h = lambda a, b: a * a * b                        # noqa: E731
    y, (ga, gb) = ad.value_and_grad(h, argnums=(0, 1))(3.0, 2.0)
    assert (y, ga, gb) == (18.0, 12.0, 9.0)
    y, (g1, g2) = ad.value_and_grad(h, argnums=(0, 0))(3.0, 2.0)
    assert (y, g1, g2) == (18.0, 12.0, 12.0)
    with pytest.raises(ValueError, match="ad.value_and_grad"):
        ad.value_and_grad(lambda x: x * 1.0)(np.array([1.0, 2.0]))

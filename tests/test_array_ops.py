"""Array comparisons (block guards), where, max/min/clip/logaddexp, max/min/prod reductions and
the matmul forms: each against the same program written with scalar Vars on the same engine in
every sweep (test_arrays.check), central differences and closed forms."""
import sys

import numpy as np
import pytest
from numpy.testing import assert_allclose

import tapead as ad
ArrayCond = ad.ArrayCond
from test_arrays import _close, check, total

RNG = np.random.default_rng(7)


def _u(*shape, lo=-1.0, hi=1.0):
    return RNG.uniform(lo, hi, size=shape)


def _ops_of(t):
    return t.stats()["by_opcode"]


# ---- comparisons: an ArrayCond, one MAP; a guard only once Python uses the values -----------
@pytest.mark.parametrize("rel", ["<", "<=", ">", ">=", "==", "!="])
@pytest.mark.parametrize("shapes", [((3, 4), (4,)), ((3, 1), (1, 4)), ((2, 3), ()), ((), ())])
def test_comparison_values_and_one_map(rel, shapes):
    x, y = _u(*shapes[0]).round(1), _u(*shapes[1]).round(1)
    with ad.Tape() as t:
        a, b = t.variables(x, array=True), t.variables(y, array=True)
        c = eval(f"a {rel} b")
        assert isinstance(c, ArrayCond) and c.dtype == bool
        assert c.shape == np.broadcast_shapes(x.shape, y.shape) and c.ndim == len(c.shape)
        assert _ops_of(t) == {"map": 1} and t.stats()["guards"] == 0
        for other in (y, 0.1, float(np.ravel(y)[0]) if y.size else 0.0):     # ndarray, number
            assert np.array_equal(np.asarray(eval(f"a {rel} other")), eval(f"x {rel} other"))
        want = eval(f"x {rel} y")
        assert np.array_equal(np.asarray(c), want)           # the values: a guard
        assert t.stats()["guards"] == 4
        assert np.array_equal(np.asarray(eval(f"x {rel} a")), eval(f"x {rel} x"))   # reflected
        t.outputs(np.sum(a) + np.sum(b))


def test_condition_acts_as_a_bool_array_and_guards_once():
    x = np.array([[0.5, -1.0, 2.0], [-0.2, 0.0, 3.0]])
    with ad.Tape() as t:
        a = t.variables(x, array=True)
        c = a > 0
        assert len(c) == 2 and c.size == 6 and t.stats()["guards"] == 0
        assert c.any() and not c.all() and t.stats()["guards"] == 1
        assert c.any(axis=1).tolist() == [True, True]
        assert [list(r) for r in c] == (x > 0).tolist() and c[0, 2]
        assert "True" in repr(c) and str(c) == str(x > 0)
        assert np.sum(c) == 3 and np.count_nonzero(c) == 3 and t.stats()["guards"] == 1
        with pytest.raises(ValueError, match="ambiguous"):
            bool(c)
        assert bool(a[0, 0] > 0) and bool((a[:1, :1] > 0))        # one element: its truth
        t.outputs(np.sum(a * a))
    assert t.stats()["guards"] == 3


def test_logical_combinations_record_no_guard():
    x = _u(4, 3)

    def f(a):
        c = ((a > 0.2) & (a < 0.8)) | ~(a > -0.5) ^ (a > 0.9) | ((a > 0) == (a < 0.1))
        return np.sum(np.where(c, a * a, -a) + np.where(np.logical_not(a > 0), 1.0, a))
    t = check(f, x)
    assert t.stats()["guards"] == 0


def test_condition_in_arithmetic_is_its_zeros_and_ones():
    x = _u(3, 4)
    t = check(lambda a: np.sum(a * (a > 0) + 2.0 * (a < 0.5)), x, fd=False)
    assert t.stats()["guards"] == 0 and _ops_of(t)["map"] >= 4


def test_comparisons_after_recording_are_plain_bool_arrays_and_scalar_conds_select():
    with ad.Tape() as t:
        a = t.variables(np.array([1.0, -2.0, 3.0]), array=True)
        y = ad.where(a[0] > 0, a * 2.0, -a)           # a scalar Cond over arrays: no guard
        t.outputs(y)
    c = a > 0
    assert type(c) is np.ndarray and c.tolist() == [True, False, True]
    assert (a < np.array([2.0, 0.0, 0.0])).tolist() == [True, True, False]
    assert t.stats()["guards"] == 0
    assert t.jacobian([-1.0, 1.0, 1.0]).tolist() == [[-1, 0, 0], [0, -1, 0], [0, 0, -1]]


# ---- where and a[c] = v ---------------------------------------------------------------------------
@pytest.mark.parametrize("shapes", [((3, 4), (3, 4), ()), ((3, 1), (4,), (3, 4)), ((4,), (), (2, 4))])
def test_where_broadcasting_against_scalar_program(shapes):
    x, y, w = (_u(*s) for s in shapes)
    t = check(lambda a, b, c: np.sum(np.where(a > 0.1, np.sin(b) * a, c * c)), x, y, w,
              ops=["map"])
    assert t.stats()["guards"] == 0
    t = check(lambda a, b, c: total(ad.where(b < a, a * 2.0, c) * b), x, y, w)
    assert t.stats()["guards"] == 0


def test_where_derivative_only_through_the_chosen_operand():
    t = ad.record(lambda a: np.sum(np.where(a > 0, np.sqrt(a), 0.0) + ad.where(a < 0, np.log(-a),
                                                                                a)),
                  np.ones(3), arrays=True)
    x = np.array([0.0, 4.0, -1.0])
    g = t.gradient(x)
    assert np.array_equal(g, [1.0, 0.25 + 1.0, -1.0])
    assert np.array_equal(t.hvp(x, np.ones(3)), [0.0, -1.0 / 32, -1.0])
    assert np.array_equal(t.taylor(x, np.ones(3), 2)[1], 1.0 + 1.25 - 1.0)
    assert t.stats()["rerecords"] == 0


def test_masked_assignment_is_a_where_relu_network_replays_everywhere():
    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(8, 5)), rng.normal(size=(8, 2))
    w1, w2 = rng.normal(size=(5, 6)), rng.normal(size=(6, 2))

    def loss(a, b):
        h = X @ a
        h[h < 0] = 0                        # where(h < 0, 0, h): no guard
        return np.sum((h @ b - Y) ** 2.0)
    t = check(loss, w1, w2)
    assert t.stats()["guards"] == 0
    for k in range(5):                      # other activation patterns: no re-recording
        p = (rng.normal(size=w1.shape), rng.normal(size=w2.shape))
        g = t.gradient(p)
        h = X @ p[0]
        r = np.maximum(h, 0) @ p[1] - Y
        _close(g[1], 2 * np.maximum(h, 0).T @ r)
        _close(g[0], X.T @ (2 * r @ p[1].T * (h > 0)))
    assert t.stats()["rerecords"] == 0


def test_masked_assignment_with_a_var_and_shape_errors():
    with ad.Tape() as t:
        a = t.variables(np.array([1.0, -2.0, 3.0]), array=True)
        s = a[0]
        a[a > 2] = s * 2.0
        assert t.stats()["guards"] == 0
        t.outputs(np.sum(a))
    with ad.Tape() as t2:
        b = t2.variables(np.array([1.0, -2.0, 3.0]), array=True)
        with pytest.raises(IndexError):
            b[b[:2] > 0] = 1.0              # another shape: indexing by the values (a guard)
        assert t2.stats()["guards"] == 1
        t2.outputs(np.sum(b))
    assert np.array_equal(a.value, [1.0, -2.0, 2.0])
    assert np.array_equal(t.gradient([1.0, 1.0, 5.0]), [3.0, 1.0, 0.0])


# ---- block guards on replay: re-record (ad.record) or BranchChanged naming the element -------------
def test_guarded_block_rerecords_when_any_element_flips():
    def f(a):
        return np.sum(a * a) if (a > 0).all() else np.sum(-a)
    x = np.array([1.0, 2.0, 3.0])
    t = ad.record(f, x, arrays=True)
    assert t.stats()["guards"] == 1
    assert np.array_equal(t.gradient([1.0, 5.0, 0.5]), [2.0, 10.0, 1.0])
    assert t.stats()["rerecords"] == 0
    assert np.array_equal(t.gradient([1.0, -5.0, 0.5]), [-1.0, -1.0, -1.0])    # element 1 flips
    assert t.stats()["rerecords"] == 1
    assert np.array_equal(t.gradient([1.0, -5.0, 0.0]), [-1.0, -1.0, -1.0])
    assert np.array_equal(t.jvp([2.0, 1.0, 1.0], np.ones(3))[1], 8.0)       # back again


def test_imperative_block_guard_raises_branch_changed_naming_the_element():
    with ad.Tape() as t:
        a = t.variables(np.array([1.0, 2.0, 3.0]), array=True)
        line = sys._getframe().f_lineno + 1
        if (a < 2.5).any():                 # the guarded line
            y = np.sum(a * a)
        t.outputs(y)
    assert t.gradient([0.0, 1.0, 3.0]).tolist() == [0.0, 2.0, 6.0]   # every outcome as recorded
    with pytest.raises(ad.BranchChanged) as e:
        t.gradient([3.0, 2.0, 2.9])
    msg = str(e.value)
    assert "v[-2] < 2.5" in msg and f"test_array_ops.py:{line}, element (0,) of a " \
        "comparison of shape (3,))" in msg, msg
    assert "True at recording (v[-2] = 1.0) and is False now (v[-2] = 3.0)" in msg
    with pytest.raises(ad.BranchChanged, match=r"v\[-1\] < 2.5"):
        t.hvp([1.0, 2.6, 3.0], np.ones(3))
    with pytest.raises(ad.BranchChanged, match=r"v\[0\] < 2.5.*False at recording"):
        t.taylor([1.0, 2.0, 2.0], np.ones(3), 2)
    assert t.gradient(None).tolist() == [0.0, 2.0, 6.0]     # the last point swept


def test_branch_changed_names_the_element_of_a_derived_2d_comparison():
    with ad.Tape() as t:
        a = t.variables(np.arange(6.0).reshape(2, 3) + 1.0)
        b = np.exp(a) * 0.5                  # a derived array: its elements are no inputs
        if (b > 3.0)[1, 2]:
            y = np.sum(a * a)
        t.outputs(y)
    x = np.arange(6.0).reshape(2, 3) + 1.0
    x[0, 0] = 9.0                            # another element flips: (0, 0)
    with pytest.raises(ad.BranchChanged, match=r"element \(0, 0\) of a comparison of shape "
                                               r"\(2, 3\)\) was False at recording"):
        t.gradient(x)


# ---- maximum, minimum, clip, logaddexp ---------------------------------------------------------------
def test_maximum_minimum_clip():
    x, y = _u(3, 4), _u(4)
    check(lambda a, b: np.sum(np.maximum(a, b) * np.minimum(a, 0.3) + ad.maximum(b, a)), x, y,
          ops=["map"])
    check(lambda a: np.sum(np.clip(a, -0.5, 0.45) ** 2.0), x.round(2) + 0.003)
    check(lambda a: np.sum(np.clip(a, None, 0.45) * a.clip(-0.4, None)), x.round(2) + 0.003,
          fd=False)
    with ad.Tape() as t:
        a = t.variables(x, array=True)
        assert _ops_of(t) == {} and np.clip(a, -0.5, 0.5).shape == (3, 4)
        assert _ops_of(t) == {"map": 2} and t.stats()["guards"] == 0
        t.outputs(np.sum(a))


@pytest.mark.parametrize("n", [7, 300])               # plain loops; above 2^16 entries dgemm
def test_matrix_vector_products_both_ways(n):
    rng = np.random.default_rng(n)
    X, w, v = rng.normal(size=(n, 230)), rng.normal(size=230), rng.normal(size=n)

    def f(w, v):
        return np.sum(np.tanh(X @ w) * v) + v @ (X @ w) + np.sum((v @ X) * w) + w @ X.T @ v
    t = ad.record(f, w, v)
    z = X @ w
    gw = X.T @ ((1 - np.tanh(z) ** 2) * v) + 3 * X.T @ v
    gv = np.tanh(z) + 3 * z
    got = t.gradient((w, v))
    np.testing.assert_allclose(got[0], gw, rtol=1e-11)
    np.testing.assert_allclose(got[1], gv, rtol=1e-11)
    dw, dv = rng.normal(size=230), rng.normal(size=n)
    assert t.jvp((w, v), (dw, dv))[1] == pytest.approx(gw @ dw + gv @ dv, rel=1e-11)


def test_matmul_with_constant_operands_inf_and_finite():
    """A constant operand's finiteness is checked once per tape (matmul.c): an Inf in it still
    meets only zero adjoints as zero, and a finite one takes BLAS every sweep, both repeatedly."""
    X = np.array([[np.inf, 1.0], [2.0, 3.0]])
    t = ad.record(lambda w: np.sum((X @ w) * np.array([0.0, 1.0])), np.ones(2))
    F = np.array([[4.0, 1.0], [2.0, 3.0]])
    u = ad.record(lambda w: np.sum((w @ F) * np.array([0.0, 1.0])), np.ones(2))
    for _ in range(3):
        np.testing.assert_array_equal(t.gradient(np.ones(2)), [2.0, 3.0])
        np.testing.assert_array_equal(t.jvp(np.ones(2), np.array([0.0, 1.0]))[1], 3.0)
        np.testing.assert_array_equal(u.gradient(np.ones(2)), [1.0, 3.0])


def test_square_records_square_as_a_var_does():
    """a ** 2 and np.power(a, 2) record SQUARE (no constant 2, no pow() per element), like
    Var ** 2; other exponents, and a Var exponent, stay POW."""
    x = _u(3, 4)
    check(lambda a: np.sum(a ** 2 + np.power(a, 2.0) * a + np.square(a) + a ** 3), x)
    check(lambda a, e: np.sum(a ** e[0]) + e[0] ** 2, x + 2.0, np.array([2.0]))
    for f, consts in ((lambda a: a ** 2, 0), (lambda a: np.power(a, np.float64(2)), 0),
                      (lambda a: a ** 2.5, 1), (lambda a: 2.0 ** a, 1)):
        assert ad.record(lambda a: np.sum(f(a)), x).stats()["constants"] == consts


def test_elementwise_adjoints_with_operands_overlapping_or_apart():
    """One weight vector and rows of stride 1 run MAP's adjoint as a vector loop, but only when
    the two operands' adjoints are apart: a block with itself, overlapping slices, a reversed
    slice, broadcast rows and columns, a transpose and a constant all give the scalar program's
    derivatives and the closed forms."""
    x, r = _u(5, 6), _u(6)
    cases = [lambda a: np.sum(a * a), lambda a: np.sum(a + a),
             lambda a: np.sum(a[:, :-1] * a[:, 1:]), lambda a: np.sum(a[:, 1:] - a[:, :-1]),
             lambda a: np.sum(a[0, ::-1] * a[0]), lambda a: np.sum(a * a[0]),
             lambda a: np.sum(a * a[:, :1]), lambda a: np.sum(a[:, :5] * a[:, :5].T),
             lambda a: np.sum(np.sin(a) * r - a), lambda a: np.sum((a[1:] - a[:-1]) ** 2)]
    for f in cases:
        check(f, x, taylor=False)
    g = ad.record(lambda a: np.sum(a[:-1] * a[1:]), x[0]).gradient(x[0])
    want = np.concatenate(([0.0], x[0, :-1])) + np.concatenate((x[0, 1:], [0.0]))
    np.testing.assert_allclose(g, want, rtol=1e-15, atol=0)
    g = ad.record(lambda a: np.sum(a[::-1] * a), x[0]).gradient(x[0])
    np.testing.assert_allclose(g, 2.0 * x[0, ::-1], rtol=1e-15, atol=0)
    t = ad.record(lambda a, b: np.sum((a + b) ** 2), x, r)            # b broadcast over rows
    ga, gb = t.gradient((x, r))
    np.testing.assert_allclose(ga, 2.0 * (x + r), rtol=1e-15)
    np.testing.assert_allclose(gb, np.sum(2.0 * (x + r), axis=0), rtol=1e-14)


def _lae(a, b):
    if isinstance(a, ad.Array):
        return np.logaddexp(a, b)
    return np.log(np.exp(a) + np.exp(b))          # the oracle: scalar Vars, moderate values


def test_logaddexp_against_scalar_program_and_stability():
    x, y = _u(3, 4, lo=-3, hi=3), _u(4, lo=-3, hi=3)
    check(lambda a, b: np.sum(_lae(a, b) * a), x, y)
    big = np.array([1000.0, -1000.0, 0.0, -np.inf, 5.0, np.inf])
    other = np.array([999.0, -1001.0, 0.0, -np.inf, -np.inf, 3.0])
    t = ad.record(lambda a, b: np.logaddexp(a, b), big, other, arrays=True)
    assert t.stats()["by_opcode"] == {"map": 1}
    _close(t((big, other)), np.logaddexp(big, other), rtol=1e-15)
    J = t.jacobian((big, other))
    with np.errstate(invalid="ignore"):             # the oracle meets -inf - -inf
        s = 1.0 / (1.0 + np.exp(other - big))      # d/da = sigmoid(a - b)
    s[3] = 0.5                                     # (-inf, -inf): the tie's convention
    _close(np.diag(J[0]), s)
    _close(np.diag(J[1]), 1.0 - s)


# ---- reductions -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["max", "min", "prod", "amax", "amin"])
@pytest.mark.parametrize("axis", [None, 0, 1, -1, (0, 2), (2, 0, 1)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_reductions_over_axes(name, axis, keepdims):
    x = _u(2, 3, 4, lo=0.5, hi=1.5)
    fn = getattr(np, name)
    t = check(lambda a: total(np.sin(fn(a * a, axis=axis, keepdims=keepdims)) * 1.5), x,
              fd=name not in ("max", "min", "amax", "amin") or axis is not None)
    assert {"max": "amax", "amin": "amin", "min": "amin", "amax": "amax",
            "prod": "prod"}[name] in _ops_of(t)
    check(lambda a: fn(a, axis=axis, keepdims=keepdims) * 2.0, x, fd=False)


def test_reduction_methods_and_functions():
    x = _u(3, 4, lo=0.5, hi=2.0)
    t = check(lambda a: a.max() * a.min(axis=0).sum() + a.prod(axis=1).sum() + np.amax(a, 1)[0],
              x)
    assert _ops_of(t)["amax"] == 2 and _ops_of(t)["amin"] == 1 and _ops_of(t)["prod"] == 1


def test_max_ties_split_evenly_and_nan_propagates():
    t = ad.record(lambda a: np.max(a), np.ones(4), arrays=True)
    assert t.gradient([1.0, 3.0, 3.0, 2.0]).tolist() == [0.0, 0.5, 0.5, 0.0]
    assert t.gradient([3.0, 3.0, 3.0, 3.0]).tolist() == [0.25] * 4
    assert t.hvp([1.0, 3.0, 3.0, 2.0], np.ones(4)).tolist() == [0.0] * 4
    assert t.taylor([1.0, 3.0, 3.0, 2.0], [0.0, 1.0, 3.0, 0.0], 2).tolist() == [3.0, 2.0, 0.0]
    assert np.isnan(t([1.0, np.nan, 3.0, 2.0]))
    assert t.gradient([1.0, np.nan, 3.0, 2.0]).tolist() == [0.0, 1.0, 0.0, 0.0]
    m = ad.record(lambda a: np.min(a, axis=1), np.ones((2, 3)), arrays=True)
    assert m.jacobian([[1.0, 0.0, 0.0], [2.0, 1.0, 3.0]]).tolist() == \
        [[[0, 0.5, 0.5], [0, 0, 0]], [[0, 0, 0], [0, 1, 0]]]


@pytest.mark.parametrize("x", [[0.0, 2.0, 3.0, -1.5], [0.0, 2.0, 0.0, 4.0], [0.0] * 4,
                               [1.5, -2.0, 0.5, 3.0]])
def test_prod_is_exact_with_zeros(x):
    x = np.array(x)
    t = ad.record(lambda a: np.prod(a), np.ones(4), arrays=True)
    ts = ad.record(lambda a: a[0] * a[1] * a[2] * a[3], np.ones(4))
    others = [np.prod(np.delete(x, i)) for i in range(4)]
    assert t.gradient(x).tolist() == others
    _close(t.hessian(x), ts.hessian(x))
    v = np.array([0.5, -1.0, 2.0, 1.0])
    _close(t.hvp(x, v), ts.hvp(x, v))
    _close(t.taylor(x, v, 4), ts.taylor(x, v, 4))
    _close(t.jvp(x, v)[1], ts.jvp(x, v)[1])


def test_reduction_axis_errors_as_numpy():
    with ad.Tape() as t:
        a = t.variables(np.ones((2, 3)))
        for f in (np.sum, np.mean, np.max, np.prod):
            with pytest.raises(ValueError, match="duplicate value in 'axis'"):
                f(a, axis=(0, -2))
            with pytest.raises(TypeError, match="cannot be interpreted as an integer"):
                f(a, axis=1.0)
        assert isinstance(np.sum(a, axis=(1, 0)), ad.Var)


def test_reduction_edge_shapes():
    check(lambda a: np.prod(a, axis=0) + 1.0, np.ones((0, 3)), fd=False)
    t = ad.record(lambda a: np.max(a) * a.min() * np.prod(a), np.array(0.7), arrays=True)
    assert t.gradient(0.5) == 0.75 and t.hessian(0.5) == 3.0 and t.taylor(0.5, 1.0, 3)[3] == 1.0
    check(lambda a: np.sum(np.max(a, axis=(0, 2), keepdims=True) * a), _u(1, 3, 1), fd=False)
    with ad.Tape() as t:
        a = t.variables(np.ones((0, 3)), array=True)
        with pytest.raises(ValueError, match="zero-size array to reduction operation max"):
            np.max(a, axis=0)
        assert np.max(a, axis=1).shape == (0,)
        with pytest.raises(TypeError, match="max.*initial"):
            np.max(a, axis=1, initial=0.0)
        with pytest.raises(np.exceptions.AxisError, match="axis 2"):
            a.prod(axis=2)
        t.outputs(np.sum(a))


# ---- matmul forms -------------------------------------------------------------------------------------
@pytest.mark.parametrize("sa, sb", [((2, 3, 4), (2, 4, 5)), ((1, 3, 4), (2, 4, 2)),
                                    ((3, 4), (2, 4, 5)), ((2, 3, 4), (4,)), ((4,), (2, 4, 3)),
                                    ((2, 1, 3, 4), (3, 4, 2)), ((2, 3, 4), (4, 2))])
def test_batched_matmul_broadcasting(sa, sb):
    a, b = _u(*sa), _u(*sb)
    check(lambda x, y: np.sum(np.tanh(x @ y)), a, b, ops=["matmul"])
    t = check(lambda x: total(np.matmul(x, b) ** 2.0), a, ops=["matmul"])
    assert _ops_of(t)["matmul"] == 1
    check(lambda y: total(np.sin(a @ y)), b)


def test_batched_matmul_aliasing():
    x = _u(3, 4, 4)
    check(lambda a: np.sum(a @ a), x, ops=["matmul"])
    check(lambda a: np.sum(np.transpose(a, (0, 2, 1)) @ a * a), x)


@pytest.mark.parametrize("spec, shapes", [
    ("ij,jk->ik", [(3, 4), (4, 2)]), ("ij,ij->", [(3, 4), (3, 4)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]), ("i,i->", [(4,), (4,)]), ("i,j->ij", [(3,), (4,)]),
    ("ij,kj->ki", [(3, 4), (2, 4)]), ("ij,jk", [(3, 4), (4, 2)]), ("ijk,jl->lk", [(2, 3, 4), (3, 5)]),
    ("ij->ji", [(3, 4)]), ("ij->j", [(3, 4)]), ("bi,bi->b", [(3, 4), (3, 4)])])
def test_einsum_forms(spec, shapes):
    args = [_u(*s) for s in shapes]
    check(lambda *xs: total(np.einsum(spec, *xs) ** 2.0), *args)
    if len(args) == 2:
        check(lambda x: total(np.sin(np.einsum(spec, x, args[1]))), args[0])


def test_dot_inner_outer():
    a, b, c = _u(3, 4), _u(4), _u(2, 4, 3)
    check(lambda x, y: total(np.dot(x, y) * x.dot(y)), a, b)
    check(lambda x, y: total(np.dot(x, y) ** 2.0), a, c)
    check(lambda x, y: total(np.inner(x, y) ** 2.0), a, _u(2, 4))
    check(lambda x, y: total(np.inner(x, y) + np.outer(x, y).sum() * 0.5), b, _u(4))
    check(lambda x: total(np.outer(x, a) ** 2.0), _u(2, 2))


def _norm(x, **kw):
    if isinstance(x, ad.Array):
        return np.linalg.norm(x, **kw)
    return np.sqrt(np.sum(x * x, axis=kw.get("axis"), keepdims=kw.get("keepdims", False)))


@pytest.mark.parametrize("kw", [{}, {"ord": 2}, {"axis": 1}, {"axis": 0, "keepdims": True}])
def test_norm_vector_and_frobenius(kw):
    x = _u(5) if kw.get("ord") == 2 else _u(3, 4)
    check(lambda a: total(_norm(a, **kw)), x)
    t = ad.record(lambda a: np.linalg.norm(a, **kw), x, arrays=True)
    _close(t(x), np.linalg.norm(x, **kw))
    if not kw:
        check(lambda a: _norm(a, ord="fro") if isinstance(a, ad.Array) else _norm(a), x)


def test_norm_other_orders_raise_type_error():
    with ad.Tape() as t:
        a = t.variables(np.ones((3, 3)), array=True)
        for kw in ({"ord": 1}, {"ord": 2}, {"ord": "nuc"}, {"ord": np.inf, "axis": 0}):
            with pytest.raises(TypeError, match="norm"):
                np.linalg.norm(a, **kw)
        t.outputs(np.sum(a))


def test_c_core_refuses_inconsistent_block_words():
    """Words no Python path records (wrong operand counts, shapes, maps): TP_EARG, no crash."""
    from tapead._core import Op as O, ffi, lib

    def shape(t, dims, strides):
        return lib.tp_shape(t, len(dims), ffi.new("int64_t[]", list(dims) or [0]),
                            ffi.new("int64_t[]", list(strides) or [0]))
    t = lib.tp_new()
    try:
        assert lib.tp_claim(t) == 0
        lib.tp_add_inputs(t, ffi.new("double[]", [1.0] * 12), 12)
        s34, s43, s3, s12 = shape(t, (3, 4), (4, 1)), shape(t, (4, 3), (3, 1)), \
            shape(t, (3,), (1,)), shape(t, (12,), (1,))
        bad = [(O.MAP, int(O.LT), s3, [0, s3, 3, s3]),                  # a comparison needs w
               (O.MAP, int(O.WHERE), s3, [0, s3, 3, s3, 6, s34]),        # w of other dims
               (O.MAP, int(O.CALL), s3, [0, s3]),
               (O.MATMUL, 0, s34, [0, s34, 0, s43]),                     # z of wrong dims
               (O.MATMUL, 0, shape(t, (2, 3, 3), (9, 3, 1)), [0, s34, 0, s43]),
               (O.AMAX, shape(t, (3, 4), (0, 0)), s3, [0, s34]),         # results unreached
               (O.PROD, shape(t, (3, 4), (5, 0)), s3, [0, s34]),         # map out of range
               (O.AMIN, s12, s3, [0, s34])]
        for op, attr, zs, words in bad:
            r = lib.tp_rec_block(t, int(op), attr, zs, ffi.new("int32_t[]", words), len(words) // 2)
            assert r == lib.TP_EARG, (op, r)
        nan = ffi.new("int32_t *")
        assert lib.tp_const(t, float("nan"), nan) == 0
        good = [0, s3, 3, s3, nan[0], shape(t, (3,), (0,))]
        z = lib.tp_rec_block(t, int(O.MAP), int(O.LT), s3, ffi.new("int32_t[]", good), 3)
        assert z == 12 and lib.tp_guard_block(t, z) == 0 and lib.tp_guard_block(t, z + 1) < 0
        assert lib.tp_guard_block(t, 0) == lib.TP_EARG
        assert lib.tp_guard_block(t, 10 ** 9) == lib.TP_EARG
    finally:
        lib.tp_free(t)


# ---- bad input -------------------------------------------------------------------------------------
def test_shape_errors_name_both_shapes():
    with ad.Tape() as t:
        a, b = t.variables(np.ones((2, 3, 4)), array=True), t.variables(np.ones((3, 5, 2)), array=True)
        with pytest.raises(ValueError, match=r"\(2, 3, 4\) and \(3, 5, 2\)"):
            a @ b
        with pytest.raises(ValueError, match=r"\(2, 3, 4\) and \(5, 2\)"):
            a @ b[0]
        with pytest.raises(ValueError, match="broadcast"):
            a < b
        with pytest.raises(ValueError, match="sizes 4 and 5"):
            np.einsum("ijk,lkm->ijm", a, b)
        with pytest.raises(ValueError, match="at least 1-d"):
            a[0, 0, 0] @ a
        t.outputs(np.sum(a))


def test_unsupported_functions_raise_type_error_naming_them():
    with ad.Tape() as t:
        a = t.variables(np.ones((2, 2)), array=True)
        for call, name in [(lambda: np.cumsum(a), "cumsum"), (lambda: np.isnan(a), "isnan"),
                           (lambda: np.floor(a), "floor"), (lambda: np.tensordot(a, a), "tensordot"),
                           (lambda: np.einsum("...i,...i", a, a), "einsum"),
                           (lambda: np.einsum("ii->", a), "diagonal"),
                           (lambda: np.where(a > 0), "where"),
                           (lambda: np.sum(a, where=True), "where"),
                           (lambda: np.add.reduce(a), "add.reduce"),
                           (lambda: np.maximum(a, 1.0, out=np.ones((2, 2))), "maximum")]:
            with pytest.raises(TypeError, match=name):
                call()
        with pytest.raises(TypeError, match="supported.*logaddexp"):
            np.fmod(a, 2.0)
        # the qualified name, and what records instead
        for call, text in [(lambda: np.linalg.inv(a), "numpy.linalg.inv is not supported"),
                           (lambda: np.cumsum(a), "numpy.cumsum .*supported NumPy functions: .*"
                                                  "einsum.*ufuncs.*logaddexp"),
                           (lambda: np.add.outer(a, a), "add.outer .*np.outer"),
                           (lambda: np.add.at(a, [0], 1.0), r"add.at .*\.at\[idx\]\.add"),
                           (lambda: np.maximum.reduce(a), "maximum.reduce .*np.max"),
                           (lambda: np.exp(a, dtype=float), "exp with dtype= .*without them")]:
            with pytest.raises(TypeError, match=text):
                call()
        try:
            from scipy.special import erf             # another library's ufunc
        except ImportError:
            erf = None
        if erf is not None:
            with pytest.raises(TypeError, match="ufunc 'erf' .*use ad.erf"):
                erf(a)
        t.outputs(np.sum(a))


def test_empty_and_size_one_comparisons_where_and_batches():
    check(lambda a: np.sum(np.where(a > 0, a, 2.0 * a)) + 1.0, np.ones((0, 3)), fd=False)
    check(lambda a: np.sum(np.where(a > 0.5, a, a * a), axis=1), _u(3, 1), fd=False)
    check(lambda a: np.sum(a @ a) + 1.0, np.ones((0, 2, 2)), fd=False)
    check(lambda a: np.sum(a @ np.ones((2, 1))), _u(1, 3, 2))
    with ad.Tape() as t:
        a = t.variables(np.ones((0, 3)), array=True)
        c = a < 1.0
        assert c.shape == (0, 3) and not c.any() and len(t) == 0 and t.stats()["guards"] == 0
        t.outputs(np.sum(a))


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, np.bool_, np.float32])
def test_non_float_dtypes_convert_as_inputs_and_constants(dtype):
    x = (np.arange(6).reshape(2, 3) % 2 if dtype is np.bool_ else np.arange(6).reshape(2, 3))
    x = x.astype(dtype)
    c = x[::-1].copy()

    def f(a):
        return np.sum(a * a * c) + np.sum(np.exp(0.1 * a) @ c.T)

    t = ad.record(f, x)
    xf, cf = x.astype(float), c.astype(float)
    g = 2 * xf * cf + (0.1 * np.exp(0.1 * xf) * (np.ones((2, 2)) @ cf))
    assert_allclose(t.gradient(x), g, rtol=1e-14)
    assert_allclose(t.gradient(xf), g, rtol=1e-14)     # the same tape at the float point
    assert_allclose(t(x), f(xf), rtol=1e-14)


@pytest.mark.parametrize("bad", [np.ones(2, complex), np.array(["a", "b"])])
def test_non_real_dtypes_raise_naming_the_dtype(bad):
    with pytest.raises(TypeError, match=f"dtype {bad.dtype}"):
        ad.record(lambda a: np.sum(a), bad)
    with pytest.raises(TypeError, match=f"dtype {bad.dtype}"):
        with ad.Tape() as t:
            a = t.variables(np.ones(2))
            t.outputs(np.sum(a * bad))
    t = ad.record(lambda a: np.sum(a * a), np.ones(2))
    with pytest.raises(TypeError, match=f"dtype {bad.dtype}"):
        t.gradient(bad)

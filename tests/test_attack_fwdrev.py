"""Forward mode against reverse mode at IEEE special values (±0, ±inf, NaN, huge, tiny).

API.md §10.2: a zero tangent or adjoint stays zero whatever the partial, and a zero partial
gives zero whatever the tangent or adjoint, so the two modes read each path of the tape from
either end with the same rule: their Jacobians agree entry for entry, NaN and ±inf included,
wherever the non-finite numbers come from values, constants and partials (not from a finite
product or sum that overflows in one order only). Batched replays equal per-point ones bit for
bit (§2.5).

First the regressions found by this file (each with values), then random tapes: scalar
programs over every elementwise op, and array programs (broadcasting MAPs, matmul, sum, prod,
max, indexing, where), each at many points, checking jacobian forward vs reverse, <w, J v>
from jvp vs <J^T w, v> from vjp, batch vs per point, and hvp vs the Hessian's columns.
"""
import warnings

import numpy as np
import pytest

import tapead as ad

INF, NAN = np.inf, np.nan


def _same(a, b):
    """Equal as derivatives: the same NaN pattern, the same infinities, finite entries close."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.shape != b.shape:
        return False
    na, nb = np.isnan(a), np.isnan(b)
    if not np.array_equal(na, nb):
        return False
    ia, ib = np.isinf(a), np.isinf(b)
    if not np.array_equal(ia, ib) or not np.array_equal(a[ia], b[ib]):
        return False
    f = np.isfinite(a)
    return bool(np.all(np.abs(a[f] - b[f]) <= 1e-9 * np.maximum(np.abs(a[f]), np.abs(b[f])) + 1e-12))


def _bits(a, b):
    """Bit for bit, any NaN payload equal to any other."""
    a = np.ascontiguousarray(a, dtype=float)
    b = np.ascontiguousarray(b, dtype=float)
    if a.shape != b.shape or not np.array_equal(np.isnan(a), np.isnan(b)):
        return False
    return np.array_equal(np.where(np.isnan(a), 0.0, a).view(np.int64),
                          np.where(np.isnan(b), 0.0, b).view(np.int64))


def _jac_both(t, x):
    return t.jacobian(x, mode="forward"), t.jacobian(x, mode="reverse")


# ---------------------------------------------------------------------------------------------
# Regressions: forward NaN where reverse gave 0 (a zero partial after an infinite tangent), and
# reverse NaN where forward gave 0 (an infinite partial after a zero one)
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("f, x0, want", [
    (lambda x: 0.0 * ad.sqrt(x), 0.0, 0.0),                  # the API.md example
    (lambda x: ad.maximum(ad.sqrt(x), 1.0), 0.0, 0.0),      # max's partial 0 on the loser
    (lambda x: ad.minimum(ad.sqrt(x), -1.0), 0.0, 0.0),
    (lambda x: ad.abs(ad.sqrt(x)), 0.0, 0.0),               # abs'(0) = 0
    (lambda x: ad.sign(ad.log(x)), 0.0, 0.0),               # sign' = 0
    (lambda x: ad.sqrt(x) ** 0.0, 0.0, 0.0),                # pow: d/dx = 0 at y = 0
    (lambda x: INF * (0.0 * x), 1.0, 0.0),                  # reverse used to give NaN
    (lambda x: (0.0 * x) * NAN, 1.0, 0.0),
    (lambda x: ad.dot([ad.sqrt(x), x], [0.0, 2.0]), 0.0, 2.0),
    (lambda x: ad.sqrt(x) * 0.0 + 3.0 * x, 0.0, 3.0),
    (lambda x: ad.exp(x) * 0.0, INF, 0.0),
    (lambda x: ad.log(x * 0.0) * 0.0 + x, 1.0, 1.0),
])
def test_zero_partial_kills_infinite_tangent(f, x0, want):
    t = ad.record(f, x0)
    jf, jr = _jac_both(t, x0)
    assert jf == want and jr == want
    assert t.jvp(x0, 1.0)[1] == want
    assert t.vjp(x0, 1.0)[1] == want
    assert t.gradient(x0) == want
    assert t.jvp(np.array([x0]), np.array([1.0]), batch=True)[1][0] == want
    assert t.gradient(np.array([x0]), batch=True)[0] == want


def test_zero_partial_kills_infinite_tangent_hvp():
    # y = 0 * sqrt(x) + x**3: H = 6x; the sqrt path is dead in every order
    t = ad.record(lambda x: 0.0 * ad.sqrt(x) + x ** 3, 0.0)
    assert t.hvp(0.0, 1.0) == 0.0
    assert t.hessian(0.0) == 0.0
    assert t.hvp(1.0, 1.0) == 6.0


def test_zero_partial_kills_infinite_tangent_array_map():
    x0 = np.array([0.0, 4.0])
    t = ad.record(lambda x: np.maximum(ad.sqrt(x), 1.0) * np.array([1.0, 2.0]), x0)
    jf, jr = _jac_both(t, x0)
    want = np.array([[0.0, 0.0], [0.0, 0.5]])
    np.testing.assert_array_equal(jf, want)
    np.testing.assert_array_equal(jr, want)


def test_matmul_zero_value_against_infinite_tangent():
    # z = sqrt(x) @ C with C[0] = 0: forward carried inf * 0 = NaN through the product
    C = np.array([[0.0, 1.0], [1.0, 3.0]])
    x0 = np.array([0.0, 1.0])
    t = ad.record(lambda x: ad.sqrt(x) @ C, x0)
    jf, jr = _jac_both(t, x0)
    want = np.array([[0.0, 0.5], [INF, 1.5]])        # z1 = sqrt(x0) * 1 + ...: inf is right
    np.testing.assert_array_equal(jf, want)
    np.testing.assert_array_equal(jr, want)
    # the transposed side: C @ sqrt(x)
    t = ad.record(lambda x: C.T @ ad.sqrt(x), x0)
    jf, jr = _jac_both(t, x0)
    np.testing.assert_array_equal(jf, want)
    np.testing.assert_array_equal(jr, want)


def test_matmul_zero_value_against_infinite_adjoint():
    # y = inf * (x @ [0, 1]): the adjoint inf met the 0 of the matrix (reverse NaN)
    x0 = np.array([[1.0, 2.0]])
    t = ad.record(lambda x: (x @ np.array([[0.0], [1.0]])) * INF, x0)
    jf, jr = _jac_both(t, x0)
    want = np.array([[[[0.0, INF]]]])
    np.testing.assert_array_equal(jf, want)
    np.testing.assert_array_equal(jr, want)


def test_matmul_of_two_variables_zero_against_infinite():
    # z = a @ b with a = sqrt(x) (tangent inf at 0) and b holding a 0
    x0 = np.array([0.0, 1.0])

    def f(x):
        a = ad.sqrt(x).reshape(1, 2)
        b = (x * np.array([5.0, 0.0])).reshape(2, 1)     # b = [0, 0] at x0
        return (a @ b).reshape(())

    t = ad.record(f, x0)
    jf, jr = _jac_both(t, x0)
    np.testing.assert_array_equal(jf, [0.0, 0.0])
    np.testing.assert_array_equal(jr, [0.0, 0.0])
    # z = sum(sqrt(x)*5x, ...) at x = 0: d/dx0 = 5 sqrt(x0) + 5 x0 / (2 sqrt(x0)) -> 0 + 0*inf = 0
    np.testing.assert_array_equal(t.jacobian(np.array([4.0, 1.0]), mode="forward"), [15.0, 0.0])


def test_prod_zero_after_infinity():
    # prod([1, inf, 0]): d/dx0 = inf * 0 on a path with a zero: 0 in both modes, like the scalar
    # program ((x0 x1) x2); reverse took prefix 1 times suffix inf*0 = NaN
    x0 = np.array([1.0, INF, 0.0])
    t = ad.record(lambda x: np.prod(x), x0)
    s = ad.record(lambda x: (x[0] * x[1]) * x[2], x0)
    for tape in (t, s):
        jf, jr = _jac_both(tape, x0)
        np.testing.assert_array_equal(jf, [0.0, 0.0, INF])
        np.testing.assert_array_equal(jr, [0.0, 0.0, INF])
    # a NaN prefix value is a NaN partial in both (x0 * x1 = inf * 0 is a value)
    x1 = np.array([INF, 0.0, 2.0])
    for tape in (t, s):
        jf, jr = _jac_both(tape, x1)
        np.testing.assert_array_equal(np.isnan(jf), [False, False, True])
        np.testing.assert_array_equal(np.isnan(jr), [False, False, True])
        np.testing.assert_array_equal(jf[:2], [0.0, INF])
        np.testing.assert_array_equal(jr[:2], [0.0, INF])


def test_prod_hvp_zero_after_infinity():
    x0 = np.array([1.0, INF, 0.0])
    t = ad.record(lambda x: np.prod(x), x0)
    s = ad.record(lambda x: (x[0] * x[1]) * x[2], x0)
    v = np.array([1.0, 0.0, 0.0])
    np.testing.assert_array_equal(t.hvp(x0, v), s.hvp(x0, v))


def test_documented_cancellation_difference():
    # API.md §10.2: where two paths meet in a sum that is exactly 0 in one mode only, the modes
    # differ (NaN against 0); pinned so that the doc stays true
    t = ad.record(lambda x: (lambda u: u - u)(ad.log(x)), 0.0)
    assert np.isnan(t.jacobian(0.0, mode="forward")) and t.jacobian(0.0, mode="reverse") == 0.0
    t = ad.record(lambda x: ad.log(x - x), 0.0)
    assert t.jacobian(0.0, mode="forward") == 0.0 and np.isnan(t.jacobian(0.0, mode="reverse"))


# ---------------------------------------------------------------------------------------------
# Random tapes (tests/_fwdrev_gen.py): scalar programs over every elementwise op and array
# programs; "tree" programs use each variable once, so every Jacobian entry is one path and the
# two modes must agree exactly in their NaN/inf pattern; other programs ("dag") may sum paths
# that cancel (see test_documented_cancellation_difference): there finite entries must agree.
# ---------------------------------------------------------------------------------------------
import os  # noqa: E402
import sys  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
import _fwdrev_gen as gen  # noqa: E402

COUNTS = {}          # checks made, per test (printed by -s runs; asserted > 0 below)


def _count(name, k=1):
    COUNTS[name] = COUNTS.get(name, 0) + k


def _finite_close(a, b, rtol=1e-9, atol=1e-10):
    a = np.asarray(a, dtype=float).ravel()
    b = np.asarray(b, dtype=float).ravel()
    both = np.isfinite(a) & np.isfinite(b)
    bad = np.abs(a[both] - b[both]) > rtol * np.maximum(np.abs(a[both]), np.abs(b[both])) + atol
    return not bad.any()


def _unit_dirs(m):
    return np.eye(m)


def _check_point(t, x, tree, name, exact_pattern=True, second=True, rng=None, bitwise=True):
    """Every check at one point x of tape t; returns the Jacobians for the batched check.
    bitwise: a Jacobian's column (row) is the jvp (vjp) of its unit direction to the bit, and so
    is an hvp carrying k directions at once; array tapes only to rounding (MATMUL's products
    run through other kernels for other numbers of directions)."""
    jf, jr = _jac_both(t, x)
    if tree and exact_pattern:
        assert _same(jf, jr), (name, x, jf, jr)
    else:
        assert _finite_close(jf, jr), (name, x, jf, jr)
    _count(name)
    xs, ys = np.shape(x), np.shape(jf)[: np.ndim(jf) - np.ndim(x)]
    v = rng.standard_normal(xs)
    w = rng.standard_normal(ys)
    ydot = np.asarray(t.jvp(x, v)[1], dtype=float)
    xbar = np.asarray(t.vjp(x, w)[1], dtype=float)
    # the Jacobians are the jvp/vjp of unit directions, to the bit
    m, n = int(np.prod(xs)), int(np.prod(ys))
    J2f = np.asarray(jf, dtype=float).reshape(n, m)
    J2r = np.asarray(jr, dtype=float).reshape(n, m)
    for j in range(min(m, 2)):
        e = np.zeros(m)
        e[j] = 1.0
        assert (_bits if bitwise else _same)(np.ravel(t.jvp(x, e.reshape(xs))[1]), J2f[:, j]), \
            (name, x, j)
    for i in range(min(n, 2)):
        e = np.zeros(n)
        e[i] = 1.0
        assert (_bits if bitwise else _same)(np.ravel(t.vjp(x, e.reshape(ys) if ys else e[0])[1]),
                                             J2r[i]), (name, x, i)
    # <w, J v> == <J^T w, v> where everything is finite
    if np.all(np.isfinite(J2f)) and np.all(np.isfinite(ydot)) and np.all(np.isfinite(xbar)):
        lhs = float(np.dot(np.ravel(w), np.ravel(ydot)))
        rhs = float(np.dot(np.ravel(xbar), np.ravel(v)))
        scale = float(np.abs(np.ravel(w)) @ np.abs(J2f) @ np.abs(np.ravel(v)))
        if np.isfinite(scale):
            assert abs(lhs - rhs) <= 1e-9 * scale + 1e-300, (name, x, lhs, rhs)
            _count(name + ":dual")
    # forward over reverse: hvp columns, all directions at once, and the Hessian
    if second:
        R = np.stack([np.ravel(t.hvp(x, e.reshape(xs), w)) for e in np.eye(m)], axis=1)
        Rk = np.asarray(t.hvp(x, np.eye(m).reshape(xs + (m,)), w)).reshape(m, m)
        assert (_bits if bitwise else _same)(R, Rk), (name, x, R - Rk)
        assert _finite_close(R, R.T, rtol=1e-7, atol=1e-8), (name, x, R)
        H = np.asarray(t.hessian(x, w), dtype=float).reshape(m, m)
        assert _same(H, (R + R.T) / 2), (name, x, H, R)
        _count(name + ":hvp")
    return jf, jr, v, w, ydot, xbar


def _check_batch(t, X, V, W, per_point, name):
    JF = t.jacobian(X, mode="forward", batch=True)
    JR = t.jacobian(X, mode="reverse", batch=True)
    assert _bits(JF, np.stack([p[0] for p in per_point])), (name, X)
    assert _bits(JR, np.stack([p[1] for p in per_point])), (name, X)
    assert _bits(t.jvp(X, V, batch=True)[1], np.stack([p[4] for p in per_point])), (name, X)
    assert _bits(t.vjp(X, W, batch=True)[1], np.stack([p[5] for p in per_point])), (name, X)
    _count(name + ":batch", len(X))


def _scalar_run(seed, n_tapes, tree, specials, consts, name, exact_pattern=True):
    rng = np.random.default_rng(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for _ in range(n_tapes):
            m = int(rng.integers(1, 4))
            t, steps = gen.record_scalar(rng, m, int(rng.integers(1, 8)), int(rng.integers(1, 3)),
                                         consts, tree=tree)
            X = np.stack([gen.point(rng, m, specials) for _ in range(4)])
            per = [_check_point(t, x, tree, name, exact_pattern, second=True, rng=rng) for x in X]
            _check_batch(t, X, np.stack([p[2] for p in per]), np.stack([p[3] for p in per]),
                         per, name)


def _array_run(seed, n_tapes, tree, name):
    rng = np.random.default_rng(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for _ in range(n_tapes):
            shape = [(3,), (2, 3)][rng.integers(2)]
            f, steps, final = gen.array_program(rng, shape, int(rng.integers(1, 6)), gen.CONSTS,
                                                tree)
            t = ad.record(f, rng.uniform(0.2, 0.9, shape))
            m = int(np.prod(shape))
            X = np.stack([gen.point(rng, m, gen.SPECIAL).reshape(shape) for _ in range(4)])
            per = [_check_point(t, x, tree, name, second=(m == 3), rng=rng, bitwise=False)
                   for x in X]
            _check_batch(t, X, np.stack([p[2] for p in per]), np.stack([p[3] for p in per]),
                         per, name)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_scalar_tree_tapes(seed):
    _scalar_run(seed, 250, True, gen.SPECIAL, gen.CONSTS, "scalar_tree")
    assert COUNTS["scalar_tree"] >= 1000 * (seed + 1)


@pytest.mark.parametrize("seed", [10])
def test_random_scalar_dag_tapes(seed):
    _scalar_run(seed, 250, False, gen.SPECIAL, gen.CONSTS, "scalar_dag")
    assert COUNTS["scalar_dag"] >= 1000


@pytest.mark.parametrize("seed", [20])
def test_random_scalar_huge_tiny(seed):
    # huge and tiny values: products of partials overflow or underflow in one order and not the
    # other, so only finite entries are compared (and batched results bit for bit)
    _scalar_run(seed, 200, True, gen.SPECIAL + gen.HUGE_TINY, gen.CONSTS + gen.HUGE_TINY,
                "scalar_huge", exact_pattern=False)
    assert COUNTS["scalar_huge"] >= 800


@pytest.mark.parametrize("seed", [30, 31, 32])
def test_random_array_tree_tapes(seed):
    _array_run(seed, 150, True, "array_tree")
    assert COUNTS["array_tree"] >= 600


@pytest.mark.parametrize("seed", [40])
def test_random_array_dag_tapes(seed):
    _array_run(seed, 150, False, "array_dag")
    assert COUNTS["array_dag"] >= 600


@pytest.mark.parametrize("f", [ad.hypot, ad.atan2])
@pytest.mark.parametrize("p", [[NAN, 1.0], [1.0, NAN], [NAN, 0.0], [NAN, NAN]])
def test_hypot_atan2_nan_operand_is_not_the_origin(f, p):
    # their partials were 0 at a NaN operand (the origin's convention), so hypot(x, 1) + x had
    # gradient 1 (finite) at x = NaN; now NaN in every mode and order
    t = ad.record(lambda x: f(x[0], x[1]) + x[0], np.array([1.0, 2.0]))
    x = np.array(p)
    assert np.isnan(t.forward(x))
    assert np.all(np.isnan(t.gradient(x)))
    assert np.all(np.isnan(t.jacobian(x, mode="forward")))
    assert np.all(np.isnan(t.hessian(x)))
    assert np.all(np.isnan(t.gradient(x[None], batch=True)))
    # the origin keeps its convention
    np.testing.assert_array_equal(t.gradient(np.zeros(2)), [1.0, 0.0])
    np.testing.assert_array_equal(t.hessian(np.zeros(2)), np.zeros((2, 2)))


def test_taylor_zero_coefficient_against_infinity():
    # Taylor order 1 = jvp (API.md §2.2): the series products take a zero coefficient times an
    # infinite or NaN one as 0, as the tangent sweep's TIMES does; they made NaN before
    cases = [
        (lambda x: 0.0 * ad.sqrt(x), 0.0, 0.0),
        (lambda x: ad.maximum(ad.sqrt(x), 1.0), 0.0, 0.0),
        (lambda x: ad.abs(ad.sqrt(x)), 0.0, 0.0),
        (lambda x: 2.0 * x, INF, 2.0),                     # 0 (the constant's series) * inf
        (lambda x: ad.dot([x - INF], [-1.0]), 2.0, -1.0),
        (lambda x: ad.exp(ad.log(x)), 0.0, 0.0),            # exp's z = 0 times log's inf
        (lambda x: ad.atan(-INF * x), 1.0, 0.0),            # 1 / (1 + x^2) = 0 at x = inf
        (lambda x: ad.sqrt(INF * x), 1.0, 0.0),
    ]
    for f, x0, want in cases:
        t = ad.record(f, x0)
        y = t.taylor(x0, 1.0, order=3)
        assert y[1] == want == t.jvp(x0, 1.0)[1], (x0, y)


# ops whose Taylor recurrences are the partials' products (pow, cbrt, hypot, atan2 and division
# have recurrences of their own, which at an infinite operand may give NaN or ±inf where jvp
# gives 0 or NaN: API.md §2.2)
_TAYLOR_BINARY = ["add", "sub", "mul", "maximum", "minimum", "where", "where0"]
_TAYLOR_UNARY = [u for u in gen.UNARY if u != "cbrt"]


@pytest.mark.parametrize("seed", [50])
def test_random_taylor_order1_is_jvp(seed):
    rng = np.random.default_rng(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for _ in range(400):
            m = int(rng.integers(1, 4))
            t, steps = gen.record_scalar(rng, m, int(rng.integers(1, 7)), 1, gen.CONSTS,
                                         tree=True, binary=_TAYLOR_BINARY,
                                         unary=_TAYLOR_UNARY)
            for _ in range(4):
                x = gen.point(rng, m)
                v = rng.standard_normal(m)
                y = t.taylor(x, v, order=2)
                assert _same(y[1], t.jvp(x, v)[1]), (steps, x, v, y)
                _count("taylor")
    assert COUNTS["taylor"] >= 1600

"""Attacks on the vector loops of the C core (MAP's WALK_UNIT path in block.c, gemv's column and
row forms in matmul.c, the 4 x 4 register transposes of batch.c) and on the three forms of the
symmetric TIMES rule (tp_times, tp_times1, SER_TIMES).

The unit path must give the generic path's bits: the same program is recorded twice, once with
its operands as contiguous rows apart (the vector loop) and once interleaved (stride 2: the
generic WALK), and replayed at the same values, ±0, ±inf, NaN, subnormals and huge numbers
included. "Bits" here are the bits of every entry that is not NaN, and the same NaN pattern:
which NaN an operation returns when two meet (its sign and payload) depends on the operand order
the compiler picks and is not specified (API.md §10.2)."""
import functools
import operator
import warnings

import numpy as np
import pytest

import tapead as ad
import tapead.batch
from tapead._core import Op
from test_arrays import BINARY, UNARY, total

RNG = np.random.default_rng(20261201)
SPECIAL = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 5e-324, -5e-324, 1e-300, -1e-300,
                    1e300, -1e300, 1e-160, -1e-170, 2.0, -0.5, 1.0, -1.0])
SAME = {"NEG": operator.neg, "ADD": operator.add, "SUB": operator.sub, "MUL": operator.mul,
        "DIV": operator.truediv, "POW": operator.pow, "MAX": ad.maximum, "MIN": ad.minimum}


def _vals(shape, special=True):
    v = RNG.uniform(-2.0, 2.0, shape)
    if special:
        m = RNG.random(shape) < 0.35
        v[m] = RNG.choice(SPECIAL, int(m.sum()))
    return v


def _bits(a, b):
    """The same shape, NaN pattern and bits of every other entry (the sign of a zero too)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        return False
    na, nb = np.isnan(a), np.isnan(b)
    return np.array_equal(na, nb) and a[~na].tobytes() == b[~nb].tobytes()


def _fn(op):
    name = Op(op).name
    return SAME.get(name) or getattr(ad, name.lower())


def _quiet(f):
    @functools.wraps(f)
    def g(*a, **k):
        with np.errstate(all="ignore"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return f(*a, **k)
    return g


@_quiet
def _map_case(op, n):
    """(unit tape, generic tape, the scalar program's tape, the permutation unit -> generic)"""
    fn, unary = _fn(op), op in UNARY
    if unary:
        fu, fg = (lambda a: fn(a[:, :n])), (lambda a: fn(a[:, 0::2]))
        fs = (lambda a: [[fn(a[r, i]) for i in range(n)] for r in range(2)])
    else:
        fu, fg = (lambda a: fn(a[:, :n], a[:, n:])), (lambda a: fn(a[:, 0::2], a[:, 1::2]))
        fs = (lambda a: [[fn(a[r, i], a[r, n + i]) for i in range(n)] for r in range(2)])
    x0 = np.full((2, 2 * n), 0.7)
    perm = np.concatenate((np.arange(0, 2 * n, 2), np.arange(1, 2 * n, 2)))
    return (ad.record(fu, x0), ad.record(fg, x0), ad.record(fs, x0, arrays=False), perm)


def _to_generic(a, perm):
    """an input laid out for the unit tape, laid out for the generic one (last axis)"""
    out = np.empty_like(a)
    out[..., perm] = a
    return out


@pytest.mark.parametrize("op", UNARY + BINARY, ids=lambda o: Op(o).name)
@_quiet
def test_map_vector_loop_is_the_generic_loop_to_the_bit(op):
    """primal, jvp, vjp and hvp of one direction (the only ones on the unit path), one point and
    batched: the unit path (rows of stride 1, operands apart), the generic WALK (stride 2) and
    the scalar program (one Var per element: the same arithmetic, sums of at most one term)
    agree; 3, 8 and 13 elements a row (AVX-512's 8 lanes, AVX2's 4, and remainders)"""
    for n in (3, 8, 13):
        tu, tg, ts, perm = _map_case(op, n)
        for _ in range(2):
            x, v, w = _vals((2, 2 * n)), _vals((2, 2 * n)), _vals((2, n))
            xg, vg = _to_generic(x, perm), _to_generic(v, perm)
            got = [tu(x), tu.jvp(x, v)[1], tu.vjp(x, w)[1], tu.hvp(x, v, w)]
            gen = [tg(xg), tg.jvp(xg, vg)[1], tg.vjp(xg, w)[1][:, perm],
                   tg.hvp(xg, vg, w)[:, perm]]
            sca = [ts(x), ts.jvp(x, v)[1], ts.vjp(x, w)[1], ts.hvp(x, v, w)]
            for what, a, b, c in zip(("primal", "jvp", "vjp", "hvp"), got, gen, sca):
                assert _bits(a, b), (Op(op).name, n, what, x, v, w, a, b)
                assert _bits(a, c), (Op(op).name, n, what, "scalar", x, v, w, a, c)
        X, V, W = _vals((5, 2, 2 * n)), _vals((5, 2, 2 * n)), _vals((5, 2, n))
        Y, Yd = tu.jvp(X, V, batch=True)
        G, H = tu.vjp(X, W, batch=True)[1], tu.hvp(X, V, W, batch=True)
        for b in range(5):
            assert _bits(Y[b], tu(X[b])) and _bits(Yd[b], tu.jvp(X[b], V[b])[1])
            assert _bits(G[b], tu.vjp(X[b], W[b])[1]) and _bits(H[b], tu.hvp(X[b], V[b], W[b]))


ALIASING = {
    "same block": lambda a: a * a,
    "same block, sum": lambda a: a + a,
    "overlapping rows": lambda a: a[:, :-1] * a[:, 1:],
    "overlapping, diff": lambda a: a[:, 1:] - a[:, :-1],
    "reversed": lambda a: a[0, ::-1] * a[0],
    "broadcast row": lambda a: a * a[0],
    "broadcast column": lambda a: a * a[:, :1],
    "transpose": lambda a: a[:, :5] * a[:, :5].T,
    "constant": lambda a: np.sin(a) * np.arange(6.0) - a,
    "constant first": lambda a: np.arange(6.0) / (a + 3.0),
    "rows apart": lambda a: a[:2] * a[3:],
    "rows apart, broadcast": lambda a: np.hypot(a[:2], a[4]),
    "one-element rows": lambda a: a[:, :1] * a[:, 1:2],
    "0-d": lambda a: a[1, 2] * a[3, 4],
    "scalar": lambda a: np.exp(a[:2]) * 2.5,
}


@pytest.mark.parametrize("case", sorted(ALIASING))
@_quiet
def test_operands_sharing_adjoints_never_take_the_vector_loop_wrongly(case):
    """every aliasing of x and y (the vector loop's ivdep asserts none within a row) against
    the scalar program: gradient, jvp of one direction, hvp and the batched gradient"""
    f = ALIASING[case]
    x = RNG.uniform(-1.0, 1.0, (5, 6))
    ta, ts = ad.record(lambda a: total(f(a) ** 2), x), ad.record(
        lambda a: sum(np.ravel(np.asarray(f(a), dtype=object)) ** 2), x, arrays=False)
    v = RNG.normal(size=x.shape)
    np.testing.assert_allclose(ta.gradient(x), ts.gradient(x), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(ta.jvp(x, v)[1], ts.jvp(x, v)[1], rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(ta.hvp(x, v), ts.hvp(x, v), rtol=1e-13, atol=1e-15)
    X = RNG.uniform(-1.0, 1.0, (6, 5, 6))
    G = ta.gradient(X, batch=True)
    for b in range(6):
        assert G[b].tobytes() == ta.gradient(X[b]).tobytes()
        np.testing.assert_allclose(G[b], ts.gradient(X[b]), rtol=1e-13, atol=1e-15)


def test_aliasing_closed_forms():
    r = RNG.uniform(-1.0, 1.0, 9)
    g = ad.record(lambda a: np.sum(a[:-1] * a[1:]), r).gradient(r)
    want = np.concatenate(([0.0], r[:-1])) + np.concatenate((r[1:], [0.0]))
    assert g.tobytes() == want.tobytes()
    g = ad.record(lambda a: np.sum(a[:4] * a[5:]), r).gradient(r)   # apart: the vector loop
    assert g.tobytes() == np.concatenate((r[5:], [0.0], r[:4])).tobytes()
    g = ad.record(lambda a: np.sum(a[::-1] * a), r).gradient(r)
    np.testing.assert_array_equal(g, 2.0 * r[::-1])


# ---- gemv: both layouts of A, the same sums ----------------------------------------------------
@pytest.mark.parametrize("m", [1, 3, 7, 8, 9, 17])
@_quiet
def test_gemv_layouts_give_the_same_bits(m):
    """A b and b A^T with A row-major (row form), column-major (8 elements of C at a time) and a
    stride-2 slice (row form, strided), p below, at and above multiples of 4; values with
    ±inf, NaN, zeros: the derivatives' zero rule makes the fast path and the skip path meet"""
    for p in (1, 2, 3, 4, 5, 9):
        for special in (False, True):
            A, b = _vals((m, p), special), _vals(p, special)
            TA, tb, w = _vals((m, p), special), _vals(p, special), _vals(m, special)
            rows = ad.record(lambda a, v: a @ v, A, b)
            cols = ad.record(lambda at, v: at.T @ v, A.T.copy(), b)
            step = ad.record(lambda a2, v: a2[:, ::2] @ v, np.repeat(A, 2, axis=1), b)
            left = ad.record(lambda at, v: v @ at, A.T.copy(), b)
            A2, TA2 = np.repeat(A, 2, axis=1), np.repeat(TA, 2, axis=1)
            r = [rows((A, b)), rows.jvp((A, b), (TA, tb))[1], rows.vjp((A, b), w)[1][1],
                 rows.hvp((A, b), (TA, tb), w)[1]]
            c = [cols((A.T.copy(), b)), cols.jvp((A.T.copy(), b), (TA.T.copy(), tb))[1],
                 cols.vjp((A.T.copy(), b), w)[1][1],
                 cols.hvp((A.T.copy(), b), (TA.T.copy(), tb), w)[1]]
            s = [step((A2, b)), step.jvp((A2, b), (TA2, tb))[1], step.vjp((A2, b), w)[1][1],
                 step.hvp((A2, b), (TA2, tb), w)[1]]
            lf = [left((A.T.copy(), b)), left.jvp((A.T.copy(), b), (TA.T.copy(), tb))[1],
                  left.vjp((A.T.copy(), b), w)[1][1],
                  left.hvp((A.T.copy(), b), (TA.T.copy(), tb), w)[1]]
            for what, x, y, z, u in zip(("primal", "jvp", "vjp", "hvp"), r, c, s, lf):
                assert _bits(x, y) and _bits(x, z) and _bits(x, u), (m, p, special, what)
            if not special:
                np.testing.assert_allclose(r[0], A @ b, rtol=1e-14, atol=1e-14)
                np.testing.assert_allclose(r[1], TA @ b + A @ tb, rtol=1e-13, atol=1e-13)


def test_gemv_zero_rule_against_inf_and_nan():
    """a zero of either factor contributes nothing to a derivative (API.md §10.2), on both of
    gemv's forms: a tangent of A infinite or NaN where b is 0, b's tangent against a column of
    A that is infinite where the tangent is 0"""
    m, p = 11, 6
    A, b = RNG.normal(size=(m, p)), RNG.normal(size=p)
    b[2] = 0.0
    TA = RNG.normal(size=(m, p))
    TA[:, 2] = np.inf
    TA[3, 2] = np.nan
    tb = RNG.normal(size=p)
    tb[4] = 0.0
    A[:, 4] = -np.inf
    for t, a, ta in ((ad.record(lambda a, v: a @ v, A, b), A, TA),
                     (ad.record(lambda at, v: at.T @ v, A.T.copy(), b), A.T.copy(), TA.T.copy())):
        got = t.jvp((a, b), (ta, tb))[1]
        TA0, A0 = TA.copy(), A.copy()
        TA0[:, 2] = 0.0
        A0[:, 4] = 0.0
        np.testing.assert_allclose(got, TA0 @ b + A0 @ tb, rtol=1e-13, atol=1e-13)


def test_batched_matrix_vector_over_leading_axes():
    for m, p in ((9, 3), (16, 5), (23, 7), (8, 1)):
        A, b = RNG.normal(size=(3, m, p)), RNG.normal(size=p)
        At = np.swapaxes(A, -1, -2).copy()
        t1 = ad.record(lambda a, v: a @ v, A, b)
        t2 = ad.record(lambda at, v: np.swapaxes(at, -1, -2) @ v, At, b)
        VA, vb, W = RNG.normal(size=A.shape), RNG.normal(size=p), RNG.normal(size=(3, m))
        assert t1.jvp((A, b), (VA, vb))[1].tobytes() == \
            t2.jvp((At, b), (np.swapaxes(VA, -1, -2).copy(), vb))[1].tobytes()
        g1, g2 = t1.vjp((A, b), W)[1], t2.vjp((At, b), W)[1]
        assert g1[1].tobytes() == g2[1].tobytes()
        assert g1[0].tobytes() == np.swapaxes(g2[0], -1, -2).tobytes()
        np.testing.assert_allclose(t1((A, b)), A @ b, rtol=1e-14)


# ---- batch.c's transposes: every batched method against the loop, to the bit ------------------
def _prog(x):
    n = len(x)
    s = 0.0
    for i in range(n):
        s = s + ad.sin(x[i]) * x[(i + 1) % n] + x[i] * x[i]
    return [s, x[0] * x[n - 1] + ad.exp(x[n // 2])]


@pytest.mark.parametrize("m", [1, 2, 3, 4, 5, 7, 9])
def test_batched_methods_through_the_transposes(m):
    t = ad.record(lambda x: _prog(x)[0], np.full(m, 0.5))
    t2 = ad.record(_prog, np.full(m, 0.5))
    for B in (1, 3, 4, 5, 8, 13):
        X = RNG.normal(size=(B, 2 * m))[:, 1::2]                 # not contiguous
        V, W = RNG.normal(size=(B, m)), RNG.normal(size=(B, 2))
        checks = [(t.gradient(X, batch=True), lambda b: t.gradient(X[b])),
                  (t2(X, batch=True), lambda b: t2(X[b])),
                  (t2.jacobian(X, batch=True), lambda b: t2.jacobian(X[b])),
                  (t2.jacobian(X, mode="forward", batch=True),
                   lambda b: t2.jacobian(X[b], mode="forward")),
                  (t2.jvp(X, V, batch=True)[1], lambda b: t2.jvp(X[b], V[b])[1]),
                  (t2.vjp(X, W, batch=True)[1], lambda b: t2.vjp(X[b], W[b])[1]),
                  (t.hvp(X, V, batch=True), lambda b: t.hvp(X[b], V[b])),
                  (t.hessian(X, batch=True), lambda b: t.hessian(X[b])),
                  (t2.taylor(X, V, 3, batch=True), lambda b: t2.taylor(X[b], V[b], 3))]
        for k, (got, one) in enumerate(checks):
            for b in range(B):
                assert np.asarray(got[b]).tobytes() == np.asarray(one(b)).tobytes(), (m, B, k, b)


def test_batched_gradient_on_threads_and_wide_tiles():
    def rosen(x):
        return sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(len(x) - 1))
    t = ad.record(rosen, np.zeros(5))
    X = RNG.uniform(-2, 2, (20001, 5))
    old = tapead.batch.set_threads(2)
    try:
        G2 = t.gradient(X, batch=True)
    finally:
        tapead.batch.set_threads(old)
    assert G2.tobytes() == t.gradient(X, batch=True).tobytes()
    idx = RNG.choice(len(X), 300, replace=False)
    assert G2[idx].tobytes() == np.stack([t.gradient(X[i]) for i in idx]).tobytes()
    m = 1500                                                    # a few points per tile
    ta = ad.record(lambda a: np.sum(np.sin(a[:-1]) * a[1:]) + np.sum(a * a), np.zeros(m))
    X = RNG.normal(size=(11, 2 * m))[:, ::2]
    G, H = ta.gradient(X, batch=True), ta.hvp(X, X, batch=True)
    for b in range(11):
        assert G[b].tobytes() == ta.gradient(X[b]).tobytes()
        assert H[b].tobytes() == ta.hvp(X[b], X[b]).tobytes()


# ---- the three forms of TIMES ------------------------------------------------------------------
@_quiet
def test_times_forms_zero_signs_subnormals():
    """One product per derivative (square's tangent 2x * xdot, sin's adjoint cos(x) * ybar): the
    product, its sign kept when it underflows to 0 with both factors nonzero; a zero factor of
    either sign: +0 whatever the other, also against ±inf and NaN. The same bits from the scalar
    sweep (tp_times1), the array sweep (tp_times, the vector loop and the generic one), batched,
    and taylor's order 1 (SER_TIMES) wherever it is the one product"""
    cases = [  # (x, tangent or weight, the result of square's jvp, of sin's vjp)
        (1e-200, -1e-200, -0.0, None), (-1e-200, -1e-200, 0.0, None),
        (5e-324, -0.2, -0.0, None), (1e-160, -1e-160, -2e-320, None),
        (0.0, np.inf, 0.0, np.inf), (-0.0, np.nan, 0.0, np.nan), (0.0, -np.inf, 0.0, -np.inf),
        (np.inf, 0.0, 0.0, 0.0), (np.nan, -0.0, 0.0, 0.0), (-np.inf, 0.0, 0.0, 0.0),
        (np.inf, 2.0, np.inf, np.nan), (2.0, -0.0, 0.0, 0.0), (np.pi / 2, np.inf, None, None),
    ]
    n = 9
    fs = ad.record(lambda x: ad.square(x), 0.3)
    fa = ad.record(lambda a: ad.square(a[:n]), np.full(2 * n, 0.3))
    fg = ad.record(lambda a: ad.square(a[::2]), np.full(2 * n, 0.3))
    ss = ad.record(lambda x: ad.sin(x), 0.3)
    sa = ad.record(lambda a: ad.sin(a[:n]), np.full(2 * n, 0.3))
    for x, v, sq, sn in cases:
        X, V = np.full(2 * n, x), np.full(2 * n, v)
        forms = [np.array([fs.jvp(x, v)[1]]), fa.jvp(X, V)[1], fg.jvp(X, V)[1],
                 fs.jvp(np.full(5, x), np.full(5, v), batch=True)[1],
                 fa.jvp(np.stack([X, X]), np.stack([V, V]), batch=True)[1]]
        for f in forms[1:]:
            assert _bits(np.ravel(f), np.full(np.size(f), forms[0][0])), (x, v, forms)
        if sq is not None:
            assert _bits(forms[0], [sq]), (x, v, forms[0])
        if np.isfinite(x) and np.isfinite(v) and x * v != 0.0 or x == 0.0 or v == 0.0:
            assert _bits([fs.taylor(x, v, 1)[1]], forms[0]), (x, v)
        back = [np.array([ss.vjp(x, v)[1]]), sa.vjp(X, V[:n])[1][:n],
                ss.vjp(np.full(5, x), np.full(5, v), batch=True)[1],
                sa.vjp(np.stack([X, X]), np.stack([V[:n], V[:n]]), batch=True)[1][:, :n]]
        for f in back[1:]:
            assert _bits(np.ravel(f), np.full(np.size(f), back[0][0])), (x, v, back)
        if sn is not None:
            assert _bits(back[0], [sn]), (x, v, back[0])

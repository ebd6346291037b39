"""Every op of the op list (csrc/ops.def, seen from Python as tapead._core.Op), table-driven.

For each op: value, tangent (jvp, jacobian forward) and adjoint (vjp, gradient, jacobian
reverse) at several points, against closed-form partial derivatives written with the math module
(the first-order cases of tests/op_cases.py), and those closed forms against central
differences. Each case is reached through every public spelling (operator, ad.<name>, numpy
ufunc) and must record the op it stands for. A test
fails when an op of the list has no case. Then: mixed operand kinds, the documented conventions
at non-smooth points, and NaN/Inf inputs through every op.
"""
import math

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import tapead as ad
from tapead._core import OP_ARITY, OP_RESULTS, GroupOp, Op

from op_cases import context, table

RTOL = 1e-13        # AD against closed form
FD_RTOL = 1e-6      # central differences against closed form
FD_ATOL = 1e-8


FIRST = table("first")                         # op -> its first-order cases (tests/op_cases.py)
# (op, k): spelling k of the op, over its cases in order
SPELLINGS = {op: [(case, fn) for case in cases for fn in case.spellings]
             for op, cases in FIRST.items()}
GUARDS = tuple(sorted(GroupOp.GUARD))          # op kinds from ops.def's RULE column
PRIMITIVES = tuple(sorted(GroupOp.PRIMITIVE))
CASE_IDS = [(op, k) for op, spellings in SPELLINGS.items() for k in range(len(spellings))]


def test_every_op_has_a_case():
    """Adding an op to csrc/ops.def without a first-order case breaks the suite."""
    missing = [op.name for op in Op if op not in FIRST]
    assert not missing, f"ops without a first-order case in tests/op_cases.py: {missing}"
    assert set(FIRST) <= set(Op)


def test_op_table_arity_matches_cases():
    for op, cases in FIRST.items():
        for case in cases:
            n = len(case.points[0])
            if op in GUARDS:                # x, y and the outcome at recording
                assert OP_ARITY[op] == n + 1, op.name
            elif op in PRIMITIVES:          # CALL: variadic, writing its outputs
                assert OP_ARITY[op] in (-1, 2), op.name
            elif OP_ARITY[op] >= 0:
                assert OP_ARITY[op] == n, op.name
            else:
                assert OP_ARITY[op] == -1, op.name
            assert all(len(p) == n for p in case.points), op.name


def _record(fn, point):
    n = len(point)
    return ad.record(lambda x: fn(*[x[i] for i in range(n)]), np.array(point, dtype=float))


def _closed_jac(case, p):
    return np.array(case.partials(*p), dtype=float)


@pytest.mark.parametrize("op,k", CASE_IDS, ids=[f"{op.name}-{k}" for op, k in CASE_IDS])
def test_op_value_tangent_adjoint(op, k):
    case, fn = SPELLINGS[op][k]
    rng = np.random.default_rng(int(op) * 10 + k)
    replay = _record(fn, case.points[0])          # one tape, replayed at every point
    assert op.name.lower() in replay.stats()["by_opcode"], \
        f"spelling {k} of {op.name} recorded {replay.stats()['by_opcode']}"
    for p in case.points:
        x = np.array(p, dtype=float)
        n = x.size
        z, J = case.value(*p), _closed_jac(case, p)
        for t, fresh in ((_record(fn, p), True), (replay, False)):
            msg = context(op, f"spelling {k}", p, fresh)
            assert_allclose(t(x), z, rtol=RTOL, atol=1e-300, err_msg=msg)
            assert type(t(x)) is float, msg
            # adjoint
            assert_allclose(t.gradient(x), J, rtol=RTOL, atol=1e-15, err_msg=msg)
            assert_allclose(t.jacobian(x, mode="reverse"), J, rtol=RTOL, atol=1e-15, err_msg=msg)
            y, xbar = t.vjp(x, 1.75)
            assert_allclose(y, z, rtol=RTOL, atol=1e-300, err_msg=msg)
            assert_allclose(xbar, 1.75 * J, rtol=RTOL, atol=1e-15, err_msg=msg)
            w = np.array([0.5, -2.0, 3.0])                    # k = 3 weights in one sweep
            _, xbar = t.vjp(x, w)
            assert_allclose(xbar, np.outer(w, J), rtol=RTOL, atol=1e-15, err_msg=msg)
            # tangent
            assert_allclose(t.jacobian(x, mode="forward"), J, rtol=RTOL, atol=1e-15, err_msg=msg)
            v = rng.normal(size=n)
            y, ydot = t.jvp(x, v)
            assert_allclose(y, z, rtol=RTOL, atol=1e-300, err_msg=msg)
            assert_allclose(ydot, J @ v, rtol=1e-12, atol=1e-14, err_msg=msg)
            V = rng.normal(size=(n, 4))                       # k = 4 directions in one sweep
            _, ydot = t.jvp(x, V)
            assert ydot.shape == (4,), msg
            assert_allclose(ydot, J @ V, rtol=1e-12, atol=1e-14, err_msg=msg)


@pytest.mark.parametrize("op", list(FIRST), ids=[op.name for op in FIRST])
def test_closed_form_against_central_differences(op):
    """The closed forms used above are themselves checked numerically (and AD with them)."""
    cases = [case for case in FIRST[op] if case.fd]
    if not cases:
        pytest.skip("piecewise-constant in its condition; the closed form is exact")
    for case in cases:
        t = _record(case.spellings[0], case.points[0])
        for p in case.points:
            x = np.array(p, dtype=float)
            fd = ad.finite_diff(lambda u: case.value(*[float(e) for e in u]), x)
            scale = max(1.0, abs(case.value(*p)))
            msg = context(op, "closed form", p, p == case.points[0])
            assert_allclose(_closed_jac(case, p), fd, rtol=FD_RTOL, atol=FD_ATOL * scale,
                            err_msg=msg)
            assert_allclose(t.gradient(x), fd, rtol=FD_RTOL, atol=FD_ATOL * scale, err_msg=msg)


def test_where_selected_branch_on_both_sides_of_condition():
    """WHERE is reached with a Var condition and stays valid when the condition flips."""
    t = ad.record(lambda u: ad.where(u[0], u[1] * u[1], ad.sin(u[2])), np.array([1.0, 3.0, 0.5]))
    assert t.stats()["by_opcode"]["where"] == 1
    assert_allclose(t([1.0, 3.0, 0.5]), 9.0, rtol=RTOL)
    assert_allclose(t.gradient([2.0, 3.0, 0.5]), [0.0, 6.0, 0.0], rtol=RTOL)
    assert_allclose(t([0.0, 3.0, 0.5]), math.sin(0.5), rtol=RTOL)
    assert_allclose(t.gradient([0.0, 3.0, 0.5]), [0.0, 0.0, math.cos(0.5)], rtol=RTOL)
    assert_allclose(t.jacobian([-1.0, 3.0, 0.5], mode="forward"), [0.0, 6.0, 0.0], rtol=RTOL)


# ---- mixed operand kinds ---------------------------------------------------------------------
KINDS = [2.5, 3, np.float64(1.25), np.float32(0.75), np.int64(2), True]
KIND_IDS = ["float", "int", "float64", "float32", "int64", "bool"]
BINARY_OPS = [
    # op, spellings of (a, b), value, partials (da, db)
    (Op.ADD, [lambda a, b: a + b, np.add], lambda a, b: a + b, lambda a, b: (1.0, 1.0)),
    (Op.SUB, [lambda a, b: a - b, np.subtract], lambda a, b: a - b, lambda a, b: (1.0, -1.0)),
    (Op.MUL, [lambda a, b: a * b, np.multiply], lambda a, b: a * b, lambda a, b: (b, a)),
    (Op.DIV, [lambda a, b: a / b, np.divide], lambda a, b: a / b,
     lambda a, b: (1 / b, -a / b ** 2)),
    (Op.POW, [lambda a, b: a ** b, ad.pow, np.power], lambda a, b: a ** b,
     lambda a, b: (b * a ** (b - 1), a ** b * math.log(a))),
    (Op.ATAN2, [ad.atan2, np.arctan2], math.atan2,
     lambda a, b: (b / (a * a + b * b), -a / (a * a + b * b))),
    (Op.HYPOT, [ad.hypot, np.hypot], math.hypot,
     lambda a, b: (a / math.hypot(a, b), b / math.hypot(a, b))),
    (Op.MAX, [ad.maximum, np.maximum], max,
     lambda a, b: (1.0, 0.0) if a > b else (0.0, 1.0)),
    (Op.MIN, [ad.minimum, np.minimum], min,
     lambda a, b: (1.0, 0.0) if a < b else (0.0, 1.0)),
]


@pytest.mark.parametrize("kind", KINDS, ids=KIND_IDS)
@pytest.mark.parametrize("op,spellings,value,partials", BINARY_OPS,
                         ids=[b[0].name for b in BINARY_OPS])
def test_binary_op_with_constant_operand(op, spellings, value, partials, kind):
    """Var op c and c op Var for every kind of number c: one tape operation (the constant is an
    operand, not an extra variable), value and derivative of the Var side as for floats."""
    c = float(kind)
    x0 = 1.7
    for fn in spellings:
        for side in ("var-const", "const-var"):
            f = (lambda x: fn(x, kind)) if side == "var-const" else (lambda x: fn(kind, x))
            t = ad.record(f, x0)
            assert len(t) == 1 and t.n_inputs == 1, (side, t.stats()["by_opcode"])
            recorded = set(t.stats()["by_opcode"])
            special = op is Op.POW and side == "var-const" and c in (2.0, 0.5)
            allowed = [{"pow"}, {"square"}, {"sqrt"}] if special else [{op.name.lower()}]
            assert recorded in allowed, (side, recorded)
            for x in (x0, 0.6, 2.9):
                a, b = (x, c) if side == "var-const" else (c, x)
                d = partials(a, b)[0 if side == "var-const" else 1]
                assert_allclose(t(x), value(a, b), rtol=RTOL)
                assert_allclose(t.gradient(x), d, rtol=RTOL, atol=1e-15)
                assert_allclose(t.jvp(x, 1.0)[1], d, rtol=RTOL, atol=1e-15)


@pytest.mark.parametrize("op,spellings,value,partials", BINARY_OPS,
                         ids=[b[0].name for b in BINARY_OPS])
def test_binary_op_with_the_same_var_twice(op, spellings, value, partials):
    """op(x, x): both partials accumulate into x (maximum/minimum: tie, 1/2 + 1/2 = 1)."""
    for fn in spellings:
        t = ad.record(lambda x: fn(x, x), 1.7)
        for x in (1.7, 0.6):
            da, db = partials(x, x) if op not in (Op.MAX, Op.MIN) else (0.5, 0.5)
            assert_allclose(t(x), value(x, x), rtol=RTOL)
            assert_allclose(t.gradient(x), da + db, rtol=RTOL, atol=1e-15)
            assert_allclose(t.jacobian(x, mode="forward"), da + db, rtol=RTOL, atol=1e-15)


def test_numpy_scalar_on_the_left_gives_a_var():
    with ad.Tape() as t:
        x = t.variables(1.5)
        for c in (np.float64(2.0), np.float32(2.0), np.int64(2), np.int32(2)):
            for e in (c + x, c - x, c * x, c / x, c ** x, x + c, x - c, x * c, x / c, x ** c):
                assert type(e) is ad.Var, (type(c), type(e))
        t.outputs(x)


COMPARISONS = [  # spelling with the constant c on the right / on the left, the op it records
    (lambda x, c: x < c, lambda x, c: c > x, Op.LT, Op.LT, lambda a, b: a < b),
    (lambda x, c: x <= c, lambda x, c: c >= x, Op.LE, Op.LE, lambda a, b: a <= b),
    (lambda x, c: x > c, lambda x, c: c < x, Op.GT, Op.GT, lambda a, b: a > b),
    (lambda x, c: x >= c, lambda x, c: c <= x, Op.GE, Op.GE, lambda a, b: a >= b),
    (lambda x, c: x == c, lambda x, c: c == x, Op.EQ, Op.EQ, lambda a, b: a == b),
    (lambda x, c: x != c, lambda x, c: c != x, Op.NE, Op.NE, lambda a, b: a != b),
]


@pytest.mark.parametrize("kind", KINDS, ids=KIND_IDS)
@pytest.mark.parametrize("right,left,op_r,op_l,plain", COMPARISONS,
                         ids=[c[2].name for c in COMPARISONS])
def test_comparison_with_constant_operand_is_a_guard(right, left, op_r, op_l, plain, kind):
    """x < c and c > x: a plain bool and one guard on the tape; a replay that flips it
    re-records (ad.record) and is right on both sides."""
    c = float(kind)
    sides = [(right, op_r)]
    sides.append((left, op_l))
    for spell, op in sides:
        f = lambda x: x * 2.0 if spell(x, kind) else x * x        # noqa: E731
        for x0 in (c - 0.5, c, c + 0.5):
            t = ad.record(f, x0)
            assert op.name.lower() in t.stats()["by_opcode"]
            for x in (c - 0.75, c, c + 0.25, c + 3.0):
                taken = plain(x, c)
                assert t(x) == (x * 2.0 if taken else x * x)
                assert t.gradient(x) == (2.0 if taken else 2 * x)
                assert t.jacobian(x, mode="forward") == (2.0 if taken else 2 * x)


@pytest.mark.parametrize("kind", [np.float64(2.0), np.float32(2.0), np.int64(2)],
                         ids=["float64", "float32", "int64"])
def test_comparison_with_numpy_scalar_on_the_left(kind):
    with ad.Tape() as t:
        x = t.variables(1.0)
        r = [kind > x, kind < x, kind == x, kind >= x, kind <= x, kind != x]
        assert all(type(c) is ad.Cond for c in r)
        assert [bool(c) for c in r] == [True, False, False, True, False, True]
        t.outputs(x * 2.0)


def test_where_of_a_comparison_stays_valid_without_re_recording():
    f = lambda x, y: ad.where(x < y, x * y, x - y)             # noqa: E731
    t = ad.record(f, 1.0, 2.0)
    assert {"where", "lt"} <= set(t.stats()["by_opcode"])
    for p, z, g in (((1.0, 2.0), 2.0, (2.0, 1.0)), ((3.0, 2.0), 1.0, (1.0, -1.0)),
                    ((-1.0, 0.5), -0.5, (0.5, -1.0)), ((2.0, 2.0), 0.0, (1.0, -1.0))):
        assert t(p) == z
        assert t.gradient(p) == g
        assert_array_equal(t.jacobian(p, mode="forward"), g)
    assert t.stats()["rerecords"] == 0


# ---- documented conventions at non-smooth points ----------------------------------------------
def _both_modes(t, x):
    """Gradient by reverse and by forward mode (they must agree exactly in these cases)."""
    g_rev = np.asarray(t.jacobian(x, mode="reverse"), dtype=float)
    g_fwd = np.asarray(t.jacobian(x, mode="forward"), dtype=float)
    assert_array_equal(g_rev, g_fwd)
    assert_array_equal(np.asarray(t.gradient(x), dtype=float), g_rev)
    return g_rev


@pytest.mark.parametrize("spelling", [ad.abs, abs, np.abs])
def test_abs_at_zero_has_derivative_zero(spelling):
    t = ad.record(spelling, 1.0)
    for x in (0.0, -0.0):
        assert t(x) == 0.0
        assert _both_modes(t, x) == 0.0
    assert _both_modes(t, 2.0) == 1.0 and _both_modes(t, -2.0) == -1.0


def test_sign_has_derivative_zero_everywhere():
    t = ad.record(ad.sign, 1.0)
    for x, s in ((0.0, 0.0), (-3.0, -1.0), (3.0, 1.0), (1e-300, 1.0)):
        assert t(x) == s
        assert _both_modes(t, x) == 0.0
    assert math.isnan(t(math.nan))


@pytest.mark.parametrize("fn", [ad.maximum, ad.minimum, np.maximum, np.minimum])
def test_maximum_minimum_tie_splits_half_half(fn):
    t = ad.record(fn, 2.0, 2.0)
    assert_array_equal(t.jacobian((2.0, 2.0), mode="reverse"), (0.5, 0.5))
    assert_array_equal(t.jacobian((2.0, 2.0), mode="forward"), (0.5, 0.5))
    assert_array_equal(t.gradient((-1.0, -1.0)), (0.5, 0.5))
    assert t.jvp((2.0, 2.0), (1.0, 0.0))[1] == 0.5
    # with a constant operand at a tie: the Var gets 1/2
    tc = ad.record(lambda x: fn(x, 3.0), 1.0)
    assert tc(3.0) == 3.0 and _both_modes(tc, 3.0) == 0.5


def test_hypot_and_atan2_at_origin_give_zero():
    for fn in (ad.hypot, ad.atan2):
        t = ad.record(fn, 0.0, 0.0)
        assert t((0.0, 0.0)) == 0.0
        assert_array_equal(t.jacobian((0.0, 0.0), mode="reverse"), (0.0, 0.0))
        assert_array_equal(t.jacobian((0.0, 0.0), mode="forward"), (0.0, 0.0))
    t = ad.record(lambda x: ad.hypot(x, 0.0), 0.0)
    assert _both_modes(t, 0.0) == 0.0


def test_pow_partials_at_zero_exponent_and_zero_base():
    t = ad.record(lambda x, y: x ** y, 2.0, 3.0)
    assert t.stats()["by_opcode"] == {"pow": 1}
    # y == 0: x**0 == 1 everywhere, dz/dx = 0 (also at x == 0 and x < 0)
    for x in (0.0, -2.0, 3.0):
        assert t((x, 0.0)) == 1.0
        assert t.jacobian((x, 0.0), mode="reverse")[0] == 0.0
        assert t.jacobian((x, 0.0), mode="forward")[0] == 0.0
    assert t.gradient((3.0, 0.0))[1] == math.log(3.0)
    # x == 0, y > 0: dz/dy = 0 (its limit)
    g = t.gradient((0.0, 2.0))
    assert g[0] == 0.0 and g[1] == 0.0
    assert_array_equal(t.jacobian((0.0, 2.0), mode="forward"), g)
    assert t.gradient((0.0, 1.0)) == (1.0, 0.0)
    # x < 0: not differentiable in y (NaN), but dz/dx is fine
    g = t.gradient((-2.0, 3.0))
    assert g[0] == 12.0 and math.isnan(g[1])
    # a constant exponent gets no partial: x ** 3.0 at x < 0 is finite
    tc = ad.record(lambda x: x ** 3.0, 1.0)
    assert tc(-2.0) == -8.0 and _both_modes(tc, -2.0) == 12.0
    # a constant base: c ** y, dz/dy = c**y log c, and 0 ** y has dz/dy = 0
    tb = ad.record(lambda y: 2.0 ** y, 1.0)
    assert_allclose(_both_modes(tb, 1.5), 2.0 ** 1.5 * math.log(2.0), rtol=RTOL)
    tz = ad.record(lambda y: 0.0 ** y, 1.0)
    assert tz(1.5) == 0.0 and _both_modes(tz, 1.5) == 0.0


def test_sqrt_and_cbrt_at_zero_have_infinite_derivative():
    for fn in (ad.sqrt, ad.cbrt):
        t = ad.record(fn, 1.0)
        assert t(0.0) == 0.0
        assert _both_modes(t, 0.0) == math.inf


def test_zero_tangent_or_adjoint_stays_zero_through_infinite_partials():
    """A path that does not reach the result contributes 0, never 0 * inf = NaN."""
    t = ad.record(lambda x, y: x + ad.sqrt(y), 1.0, 1.0)
    assert t.jvp((1.0, 0.0), (1.0, 0.0))[1] == 1.0
    assert t.gradient((1.0, 0.0))[0] == 1.0
    tw = ad.record(lambda c, a, b: ad.where(c, a, ad.log(b)), 1.0, 2.0, 1.0)
    g = tw.gradient((1.0, 2.0, -1.0))                   # the unselected side is NaN
    assert tw((1.0, 2.0, -1.0)) == 2.0 and g == (0.0, 1.0, 0.0)
    tw2 = ad.record(lambda c, a, b: ad.where(c, 1.0 / a, b), 1.0, 2.0, 1.0)
    g = tw2.jacobian((0.0, 0.0, 5.0), mode="forward")   # 1/0 unselected
    assert_array_equal(g, (0.0, 0.0, 1.0))


# ---- NaN and Inf through every op -------------------------------------------------------------
@pytest.mark.filterwarnings("ignore::RuntimeWarning")      # NumPy, in the user primitives
@pytest.mark.parametrize("op", list(FIRST), ids=[op.name for op in FIRST])
def test_nonfinite_inputs_sweep_without_crashing(op):
    for k, case in enumerate(FIRST[op]):
        n = len(case.points[0])
        t = _record(case.spellings[0], case.points[0])
        for bad in (math.nan, math.inf, -math.inf):
            for i in range(n):
                x = np.array(case.points[0], dtype=float)
                x[i] = bad
                msg = context(op, f"case {k}", x, False)
                y = t(x)
                g = t.gradient(x)
                Jf = t.jacobian(x, mode="forward")
                Jr = t.jacobian(x, mode="reverse")
                _, ydot = t.jvp(x, np.ones((n, 2)))
                _, xbar = t.vjp(x, np.ones(2))
                assert isinstance(y, float) and np.shape(g) == (n,) and ydot.shape == (2,), msg
                if op not in PRIMITIVES:    # (user rules need not skip 0 * NaN)
                    assert_array_equal(np.isnan(Jf), np.isnan(Jr), err_msg=msg)
                if math.isnan(bad) and op not in (Op.WHERE, Op.SIGN, Op.MAX, Op.MIN) + GUARDS:
                    assert math.isnan(y), (msg, y)        # NaN propagates through the value
    # IEEE values at a few well-known points (the tape takes its recorded shape, (1,))
    if op is Op.EXP:
        assert t([-math.inf]) == 0.0 and t.gradient([-math.inf])[0] == 0.0
        assert t([math.inf]) == math.inf and t.gradient([math.inf])[0] == math.inf
    if op is Op.LOG:
        assert t([0.0]) == -math.inf and t.gradient([0.0])[0] == math.inf
        assert math.isnan(t([-1.0]))
    if op is Op.TANH:
        assert t([math.inf]) == 1.0 and t.gradient([math.inf])[0] == 0.0
    if op is Op.ATAN:
        assert t([math.inf]) == math.pi / 2 and t.gradient([math.inf])[0] == 0.0


def test_op_kinds_come_from_the_op_list():
    """GroupOp is read from ops.def's RULE column (through C): every op has exactly one kind,
    comparisons are GUARD, user primitives PRIMITIVE, WHERE is CUSTOM. OP_RESULTS is its
    RESULTS column: one variable per scalar op, a CALL's count stored with its operands."""
    import re
    from pathlib import Path
    rows = re.findall(r"^OP\(\s*(\w+)\s*,\s*\w+\s*,\s*(\w+)\s*,\s*(\w+)\s*,",
                      (Path(__file__).parents[1] / "csrc" / "ops.def").read_text(), flags=re.M)
    kinds = {"PARTIAL": GroupOp.PARTIAL, "CUSTOM": GroupOp.CUSTOM, "GUARD": GroupOp.GUARD,
             "PRIMITIVE": GroupOp.PRIMITIVE}
    assert len(rows) == len(Op)
    for name, results, rule in rows:
        assert [k for k, group in kinds.items() if Op[name] in group] == [rule]
        assert OP_RESULTS[Op[name]] == (-1 if results == "VARIADIC" else int(results)), name
    assert {op.name for op in GroupOp.GUARD} == {"LT", "LE", "GT", "GE", "EQ", "NE"}
    assert Op.WHERE in GroupOp.CUSTOM
    assert {op for op in Op if OP_RESULTS[op] != 1} == {Op.CALL}

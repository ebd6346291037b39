"""The op table (tapead/optable.py) and the places an op must reach.

Adding an elementwise op is one row in csrc/ops.def, one banner in csrc/rules.h (without it the
core does not compile), one row in tapead/optable.py and one case row in tests/op_cases.py. This
file fails when a differentiable op lacks the last two or what they feed: a public spelling, a
CLI name, a display template, first-order, second-order and Taylor cases. The public names and
__all__, the ufunc map, the CLI's function list and the trace's templates must be the table's.
"""
import string

import numpy as np
import pytest

import tapead as ad
from tapead import cli, elementary, view as trace
from tapead._core import OP_ARITY, GroupOp, Op
from tapead.optable import DIFFERENTIABLE, ELEMENTWISE, INTERNAL, OPS, PUBLIC, display_templates
from tapead.var import UFUNCS

from op_cases import table

POINT = (0.75, 0.5, -0.25)
VARIADIC_DISPLAY = {Op.SUM, Op.DOT}     # their text is generated in tapead/view.py
WHAT = {"first": "first-order", "second": "second-order", "taylor": "Taylor"}


def gaps():
    """Differentiable op name -> the places it is missing from; ops of INTERNAL are exempt."""
    cases = {test: table(test) for test in ("first", "second", "taylor")}
    out = {}
    for op in DIFFERENTIABLE:
        if op in INTERNAL:
            continue
        row, miss = OPS.get(op), []
        if row is None:
            miss.append("a row in tapead/optable.py")
        else:
            if not (row.name or row.operator):
                miss.append("a public spelling (ad.<name> or an operator)")
            if row.name and (row.name not in ad.__all__ or not callable(getattr(ad, row.name))):
                miss.append(f"ad.{row.name} in tapead.__all__")
            if not row.cli:
                miss.append("a CLI name")
            if row.partials is None and op not in VARIADIC_DISPLAY:
                miss.append("a display template")
        miss += [f"a {WHAT[test]} case in tests/op_cases.py" for test in cases
                 if op not in cases[test]]
        if miss:
            out[op.name] = miss
    return out


def test_every_differentiable_op_is_in_every_place():
    missing = gaps()
    assert not missing, "ops missing a place: " + "; ".join(
        f"{name}: {', '.join(places)}" for name, places in missing.items())


def test_internal_ops_say_why():
    for op, reason in INTERNAL.items():
        assert op in DIFFERENTIABLE and isinstance(reason, str) and reason.strip(), op


def test_rows_are_ops_python_reaches():
    """Rows for differentiable ops and comparisons; user primitives have their own rules."""
    assert set(OPS) <= set(DIFFERENTIABLE) | GroupOp.GUARD
    assert GroupOp.GUARD <= set(OPS)
    assert {op for op in DIFFERENTIABLE if OP_ARITY[op] < 0} == VARIADIC_DISPLAY, \
        "a new variadic op needs its display text in tapead/view.py (as SUM and DOT)"


def _vars(t, n):
    return t.variables(list(POINT[:n]))


def _record(fn, n):
    with ad.Tape() as t:
        t.outputs(fn(*_vars(t, n)))
    return t.stats()["by_opcode"]


def _call(op, fn):
    """fn on n Vars, n the op's arity; variadic functions (sum, dot) get lists."""
    if OP_ARITY[op] >= 0:
        return lambda *v: fn(*v)
    return {Op.SUM: lambda *v: fn(list(v)), Op.DOT: lambda *v: fn(v[:1], v[1:2])}[op]


@pytest.mark.parametrize("op", [op for op in OPS if op in DIFFERENTIABLE],
                         ids=lambda op: op.name)
def test_every_spelling_records_its_op(op):
    """ad.<name>, the operator and each NumPy ufunc of the row record the op."""
    row, n = OPS[op], OP_ARITY[op] if OP_ARITY[op] >= 0 else 2
    if row.name:
        assert getattr(ad, row.name) is getattr(elementary, row.name)
        assert op.name.lower() in _record(_call(op, getattr(ad, row.name)), n), row.name
    if row.operator:
        spelled = lambda *v: eval(row.operator, {"__builtins__": {"abs": abs}},   # noqa: E731
                                  dict(zip("xy", v)))
        assert op.name.lower() in _record(spelled, n), row.operator
    for u in row.ufuncs:
        assert op.name.lower() in _record(u, n), u.__name__


@pytest.mark.parametrize("op", sorted(GroupOp.GUARD), ids=lambda op: op.name)
def test_comparison_ufuncs_record_their_guard(op):
    for u in OPS[op].ufuncs:
        assert op.name.lower() in _record(lambda x, y: ad.where(u(x, y), x, y), 2), u.__name__


def test_public_names_and_all_are_the_tables():
    assert len(set(PUBLIC)) == len(PUBLIC)
    assert [name for name in ad.__all__ if name in PUBLIC] == list(PUBLIC)
    assert all(getattr(ad, name) is getattr(elementary, name) for name in PUBLIC)
    functions = [name for name in ad.__all__
                 if getattr(getattr(ad, name), "__module__", None) == "tapead.elementary"]
    assert functions == list(PUBLIC)           # no elementary function outside the table


def test_ufunc_map_is_the_tables():
    want = {u for row in OPS.values() for u in row.ufuncs} | {np.positive, np.conjugate}
    assert set(UFUNCS) == want


@pytest.mark.parametrize("op", ELEMENTWISE, ids=lambda op: op.name)
def test_plain_numbers_give_the_plain_function(op):
    row, args = OPS[op], POINT[:OP_ARITY[op]]
    name = row.name or row.ufuncs[0].__name__
    with np.errstate(invalid="ignore"):                  # acosh(0.75): NaN, as NumPy's
        got, want = getattr(elementary, name)(*args), float(row.plain(*args))
    assert type(got) is float and np.array_equal(got, want, equal_nan=True), name


def _cli_expression(op, row):
    """The op in a trace EXPR, by its CLI name: a call (lists for sum and dot) or an operator."""
    k = cli.FUNCTIONS.get(row.cli)
    if row.cli in cli.LISTS:
        return f"{row.cli}({', '.join(['[x1, x2]', '[x2, x3]'][:k])})"
    if k is not None:
        return f"{row.cli}({', '.join(['x1', 'x2', 'x3'][:k])})"
    return f"{row.cli}x1" if OP_ARITY[op] == 1 else f"x1 {row.cli} x2"


def test_cli_function_list_is_the_tables():
    names = {row.cli for row in OPS.values() if row.cli and row.cli.isidentifier()}
    assert set(cli.FUNCTIONS) == names
    for op, row in OPS.items():
        if row.cli and not row.cli.isidentifier():      # an operator: the CLI must allow it
            symbols = cli.UNARY if OP_ARITY[op] == 1 else cli.BINARY
            assert row.cli in symbols.values(), (op.name, row.cli)


@pytest.mark.parametrize("op", [op for op in OPS if OPS[op].cli], ids=lambda op: op.name)
def test_cli_name_records_its_op(op):
    expr = _cli_expression(op, OPS[op])
    tape, _ = cli.record_expression(expr, dict(zip(("x1", "x2", "x3"), POINT)))
    assert op.name.lower() in tape.stats()["by_opcode"], expr


def test_display_templates_are_the_tables():
    """trace.py's templates are the table's; each names only its op's operands ({x} {y} {w}),
    their tangents ({dx} ...) and the result ({z})."""
    assert trace.RULES == display_templates()
    for op, row in OPS.items():
        if row.partials is None:
            continue
        n = OP_ARITY[op]
        assert len(row.partials) == n, op.name
        allowed = {"z", *"xyw"[:n], *("d" + s for s in "xyw"[:n])}
        for text in (*row.partials, row.tangent):
            used = {f for _, f, _, _ in string.Formatter().parse(text) if f}
            assert used <= allowed, (op.name, text, used - allowed)

"""The Python op table: how each op of csrc/ops.def is spelled in Python and shown in traces.

Columns: the public function ad.<name> (None: an operator only); the Python operator that
records it; the NumPy ufuncs it stands for on Vars; the function on plain numbers; its name in
`python -m tapead trace EXPR` (a function or an operator); the trace's display template, the
text of each ∂z/∂operand and of the tangent rule ({x} {y} {w} operands, {z} the result,
{dx} {dy} {dw} operand tangents; text only, the numbers come from the C sweeps).

tapead.elementary builds its functions and the ufunc map from it, tapead/__init__.py its
__all__, tapead.cli its function list, tapead.trace its templates; tests/test_optable.py fails
for a differentiable op without a row, a spelling, a CLI name, a template or a test case.
"""
import math
import operator
from typing import NamedTuple

import numpy as np

from ._core import GroupOp, Op


class Row(NamedTuple):
    name: object        # ad.<name>, or None
    operator: object    # Python spelling by an operator ("x + y"), or None
    ufuncs: tuple       # NumPy ufuncs that record this op on Vars
    plain: object       # the function on plain numbers (floats and float arrays)
    cli: object         # name in a trace EXPR: a function name or an operator symbol
    partials: object    # display: ∂z/∂operand text per operand (None: generated, variadic)
    tangent: object     # display: the tangent rule's text


def _erf(x):
    return np.vectorize(math.erf, otypes=[float])(x) if np.ndim(x) else math.erf(x)


_GUARD = (("0", "0", "0"), "0")       # comparisons: z = 1 or 0, no derivative; w the outcome
_TIE = "  (½, ½ on a tie)"

OPS = {
    # arithmetic
    Op.NEG: Row(None, "-x", (np.negative,), np.negative, "-", ("−1",), "−{dx}"),
    Op.ADD: Row(None, "x + y", (np.add,), np.add, "+", ("1", "1"), "{dx} + {dy}"),
    Op.SUB: Row(None, "x - y", (np.subtract,), np.subtract, "-", ("1", "−1"), "{dx} − {dy}"),
    Op.MUL: Row(None, "x * y", (np.multiply,), np.multiply, "*", ("{y}", "{x}"),
                "{dx}·{y} + {x}·{dy}"),
    Op.DIV: Row(None, "x / y", (np.true_divide,), np.true_divide, "/",
                ("1/{y}", "−{x}/{y}²"), "({dx}·{y} − {x}·{dy})/{y}²"),
    Op.POW: Row("pow", "x ** y", (np.power,), np.power, "pow",
                ("{y}·{x}^({y} − 1)", "{z}·log({x})"),
                "{y}·{x}^({y} − 1)·{dx} + {z}·log({x})·{dy}"),
    Op.SQUARE: Row("square", None, (np.square,), np.square, "square", ("2·{x}",), "2·{x}·{dx}"),
    Op.SQRT: Row("sqrt", None, (np.sqrt,), np.sqrt, "sqrt", ("½·{x}^(−½)",), "½·{x}^(−½)·{dx}"),
    Op.CBRT: Row("cbrt", None, (np.cbrt,), np.cbrt, "cbrt", ("1/(3·{z}²)",), "{dx}/(3·{z}²)"),
    # exponentials and logarithms
    Op.EXP: Row("exp", None, (np.exp,), np.exp, "exp", ("exp({x})",), "exp({x})·{dx}"),
    Op.EXPM1: Row("expm1", None, (np.expm1,), np.expm1, "expm1", ("exp({x})",),
                  "exp({x})·{dx}"),
    Op.LOG: Row("log", None, (np.log,), np.log, "log", ("1/{x}",), "{dx}/{x}"),
    Op.LOG1P: Row("log1p", None, (np.log1p,), np.log1p, "log1p", ("1/(1 + {x})",),
                  "{dx}/(1 + {x})"),
    Op.LOG2: Row("log2", None, (np.log2,), np.log2, "log2", ("1/({x}·ln 2)",),
                 "{dx}/({x}·ln 2)"),
    Op.LOG10: Row("log10", None, (np.log10,), np.log10, "log10", ("1/({x}·ln 10)",),
                  "{dx}/({x}·ln 10)"),
    # trigonometric and hyperbolic
    Op.SIN: Row("sin", None, (np.sin,), np.sin, "sin", ("cos({x})",), "cos({x})·{dx}"),
    Op.COS: Row("cos", None, (np.cos,), np.cos, "cos", ("−sin({x})",), "−sin({x})·{dx}"),
    Op.TAN: Row("tan", None, (np.tan,), np.tan, "tan", ("1 + {z}²",), "(1 + {z}²)·{dx}"),
    Op.ASIN: Row("asin", None, (np.arcsin,), np.arcsin, "asin", ("1/√(1 − {x}²)",),
                 "{dx}/√(1 − {x}²)"),
    Op.ACOS: Row("acos", None, (np.arccos,), np.arccos, "acos", ("−1/√(1 − {x}²)",),
                 "−{dx}/√(1 − {x}²)"),
    Op.ATAN: Row("atan", None, (np.arctan,), np.arctan, "atan", ("1/(1 + {x}²)",),
                 "{dx}/(1 + {x}²)"),
    Op.SINH: Row("sinh", None, (np.sinh,), np.sinh, "sinh", ("cosh({x})",), "cosh({x})·{dx}"),
    Op.COSH: Row("cosh", None, (np.cosh,), np.cosh, "cosh", ("sinh({x})",), "sinh({x})·{dx}"),
    Op.TANH: Row("tanh", None, (np.tanh,), np.tanh, "tanh", ("1 − {z}²",), "(1 − {z}²)·{dx}"),
    Op.ASINH: Row("asinh", None, (np.arcsinh,), np.arcsinh, "asinh", ("1/√({x}² + 1)",),
                  "{dx}/√({x}² + 1)"),
    Op.ACOSH: Row("acosh", None, (np.arccosh,), np.arccosh, "acosh", ("1/√({x}² − 1)",),
                  "{dx}/√({x}² − 1)"),
    Op.ATANH: Row("atanh", None, (np.arctanh,), np.arctanh, "atanh", ("1/(1 − {x}²)",),
                  "{dx}/(1 − {x}²)"),
    Op.ATAN2: Row("atan2", None, (np.arctan2,), np.arctan2, "atan2",
                  ("{y}/({x}² + {y}²)", "−{x}/({x}² + {y}²)"),
                  "({y}·{dx} − {x}·{dy})/({x}² + {y}²)"),
    Op.HYPOT: Row("hypot", None, (np.hypot,), np.hypot, "hypot", ("{x}/{z}", "{y}/{z}"),
                  "({x}·{dx} + {y}·{dy})/{z}"),
    # special functions (no NumPy ufunc)
    Op.ERF: Row("erf", None, (), _erf, "erf", ("2/√π·exp(−{x}²)",), "2/√π·exp(−{x}²)·{dx}"),
    # non-smooth
    Op.ABS: Row("abs", "abs(x)", (np.absolute,), np.abs, "abs", ("sign({x})",),
                "sign({x})·{dx}"),
    Op.SIGN: Row("sign", None, (np.sign,), np.sign, "sign", ("0",), "0"),
    Op.MAX: Row("maximum", None, (np.maximum,), np.maximum, "maximum",
                ("[{x} > {y}]", "[{y} > {x}]"), "[{x} > {y}]·{dx} + [{y} > {x}]·{dy}" + _TIE),
    Op.MIN: Row("minimum", None, (np.minimum,), np.minimum, "minimum",
                ("[{x} < {y}]", "[{y} < {x}]"), "[{x} < {y}]·{dx} + [{y} < {x}]·{dy}" + _TIE),
    Op.LOGADDEXP: Row("logaddexp", None, (np.logaddexp,), np.logaddexp, "logaddexp",
                      ("σ({x} − {y})", "σ({y} − {x})"), "σ({x} − {y})·{dx} + σ({y} − {x})·{dy}"),
    # selection and n-ary: written by hand in tapead/elementary.py
    Op.WHERE: Row("where", None, (), None, "where", ("0", "[{x} ≠ 0]", "[{x} = 0]"),
                  "{dy} if {x} ≠ 0 else {dw}"),
    Op.SUM: Row("sum", None, (), None, "sum", None, None),      # trace.py: ∂ = 1 each
    Op.DOT: Row("dot", None, (), None, "dot", None, None),      # ∂/∂x_i = its pair partner
    # comparisons (branch guards): Python's operators, giving an ad.Cond while recording
    Op.LT: Row(None, "x < y", (np.less,), operator.lt, None, *_GUARD),
    Op.LE: Row(None, "x <= y", (np.less_equal,), operator.le, None, *_GUARD),
    Op.GT: Row(None, "x > y", (np.greater,), operator.gt, None, *_GUARD),
    Op.GE: Row(None, "x >= y", (np.greater_equal,), operator.ge, None, *_GUARD),
    Op.EQ: Row(None, "x == y", (np.equal,), operator.eq, None, *_GUARD),
    Op.NE: Row(None, "x != y", (np.not_equal,), operator.ne, None, *_GUARD),
}

#: Differentiable ops that need no row (no public spelling of their own), with the reason.
INTERNAL = {}

#: Differentiable ops: every one needs a row with a spelling, a CLI name and a template.
DIFFERENTIABLE = tuple(op for op in Op if op in GroupOp.PARTIAL | GroupOp.CUSTOM)

#: ad.<name> of every op, in op order (tapead/__init__.py exports them).
PUBLIC = tuple(row.name for row in OPS.values() if row.name)

#: Ops of the functions tapead.elementary makes from the table: fixed arity, a plain function.
ELEMENTWISE = tuple(op for op, row in OPS.items()
                    if row.plain is not None and op not in GroupOp.GUARD)


def display_templates():
    """op name -> (∂z/∂operand texts, tangent rule text), or None where tapead.trace generates
    the text (variadic ops, user primitives)."""
    return {op.name: (OPS[op].partials, OPS[op].tangent)
            if op in OPS and OPS[op].partials is not None else None for op in Op}

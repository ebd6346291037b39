"""tapead: automatic differentiation by tape recording. Python records, C sweeps.

    import tapead as ad
    with ad.Tape() as t:
        x1, x2 = t.variables([2.0, 1.0])
        y = x1 * ad.sqrt(ad.log(x1 / ad.sin(x2 ** 2)))
        t.outputs(y)
    t.gradient([3.0, 0.5])
"""
from .errors import BranchChanged, TapeError
from .var import Var, ValueWarning
from ._fast import Cond
from .tape import Tape, record
from .elementary import (abs, acos, acosh, asin, asinh, atan, atan2, atanh, cbrt, cos, cosh,
                         dot, erf, exp, expm1, hypot, log, log1p, log2, log10, maximum, minimum,
                         pow, sign, sin, sinh, sqrt, square, sum, tan, tanh, where)
from .functional import grad, hessian, hvp, jacfwd, jacobian, jacrev, jvp, vjp
from .checking import check_grads, finite_diff
from .primitive import Primitive, primitive

__version__ = "0.1.0"

__all__ = ["Var", "Cond", "ValueWarning", "Tape", "record", "TapeError", "BranchChanged", "grad", "jacobian", "jacfwd",
           "jacrev", "jvp", "vjp", "hessian", "hvp", "finite_diff", "check_grads", "where",
           "primitive", "Primitive", "sum", "dot",
           "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh", "asinh", "acosh",
           "atanh", "exp", "expm1", "log", "log1p", "log2", "log10", "sqrt", "cbrt", "square",
           "abs", "sign", "hypot", "atan2", "pow", "maximum", "minimum", "erf"]

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
from . import elementary as _elementary
from .optable import PUBLIC as _PUBLIC
from .functional import (grad, hessian, hvp, jacfwd, jacobian, jacrev, jvp, value_and_grad,
                         vjp)
from .checking import check_grads, finite_diff
from .primitive import Primitive, primitive
from .array import Array, asarray, blas_info
from .array_ops import ArrayCond
from .saving import load, loads
from .mapping import map  # noqa: A004 - ad.map (not in __all__: a star import keeps the builtin)

__version__ = "0.1.0"

globals().update({_name: getattr(_elementary, _name) for _name in _PUBLIC})   # ad.sin, ...

__all__ = ["Var", "Cond", "ValueWarning", "Tape", "record", "TapeError", "BranchChanged", "grad",
           "value_and_grad",
           "jacobian", "jacfwd", "jacrev", "jvp", "vjp", "hessian", "hvp", "finite_diff",
           "check_grads", "primitive", "Primitive", "load", "loads", "Array", "ArrayCond",
           "asarray", "blas_info", *_PUBLIC]

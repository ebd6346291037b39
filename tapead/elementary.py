"""Elementary functions (docs/API.md): on a Var they record one tape operation; on plain
numbers they return plain numbers; on arrays they apply elementwise (object arrays of Var give
object arrays of Var). NumPy's ufuncs dispatch here for Vars (Var.__array_ufunc__), and NumPy's
object-array loops call the same functions through the Var methods named after the ufuncs."""
import numpy as np

from ._core import OP_ARITY, GroupOp, Op, lib
from ._fast import Cond, rec1 as _rec1, rec2 as _rec2
from .array import Array, _map, matmul as _matmul, reduce_sum
from .array_ops import ArrayCond, where as _array_where
from .optable import ELEMENTWISE, OPS
from .var import UFUNCS, Var, _make, _mixed, _number, operand_codes


def _elementwise(fn, *args):
    """Apply a scalar function over arrays (broadcasting), keeping object dtype for Vars."""
    arrays = [np.asarray(a) for a in args]
    if any(a.dtype == object for a in arrays):
        if all(a.ndim == 0 for a in arrays):     # scalars: mapping fn over them would recurse
            for a in arrays:
                e = a[()]
                if type(e) is not Var and _number(e) is None:
                    raise TypeError(f"ad.{fn.__name__} expects Vars, real numbers or arrays of "
                                    f"them; got {type(e).__name__}")
        return np.frompyfunc(fn, len(args), 1)(*arrays)
    return None


def _on_arrays(f, plain, name, *args):
    """f over arrays: elementwise over object arrays (of Vars), else plain on float arrays."""
    out = _elementwise(f, *args)
    if out is not None:
        return out
    try:
        return plain(*(np.asarray(a, dtype=np.float64) for a in args))
    except (TypeError, ValueError):
        got = " and ".join(type(a).__name__ for a in args)
        want = "a Var, a real number or an array of them" if len(args) == 1 else \
            "Vars, real numbers or arrays of them"
        raise TypeError(f"ad.{name} expects {want}; got {got}") from None


def _unary(op, plain, name):
    op = int(op)

    def f(x):
        if type(x) is Var:
            return _rec1(op, x)
        if type(x) is Array:                     # one MAP over the block
            return _map(op, x)
        c = _number(x)
        if c is not None:
            return float(plain(c))
        return _on_arrays(f, plain, name, x)
    f.__name__ = f.__qualname__ = name
    f.__doc__ = f"{name}(x), elementwise; records {Op(op).name} for a Var."
    return f


def _binary(op, plain, name):
    op = int(op)

    def f(x, y):
        if type(x) is Array or type(y) is Array:
            return _map(op, x, y)
        tx, ty = type(x) is Var, type(y) is Var
        if tx or ty:
            r = _rec2(op, x, y)
            if r is not NotImplemented:
                return r
        else:
            cx, cy = _number(x), _number(y)
            if cx is not None and cy is not None:
                return float(plain(cx, cy))
        return _on_arrays(f, plain, name, x, y)
    f.__name__ = f.__qualname__ = name
    f.__doc__ = f"{name}(x, y), elementwise with broadcasting; records {Op(op).name} for Vars."
    return f


def _named(op):
    """A row's function name: ad.<name>, or its ufunc's name for an op spelled by an operator."""
    row = OPS[op]
    return row.name or row.ufuncs[0].__name__


def _comparison(compare):
    """A comparison ufunc on Vars (a NumPy scalar on the left of a Var comes here): Python's
    operator, giving Conds."""
    def plain(u):
        u = u[()] if isinstance(u, np.ndarray) else u           # 0-d arrays: their element
        return u if type(u) is Var else _number(u)

    def f(a, b):
        if np.ndim(a) or np.ndim(b):
            return np.frompyfunc(f, 2, 1)(np.asarray(a, dtype=object), np.asarray(b, dtype=object))
        return compare(plain(a), plain(b))
    return f


# the elementwise functions and the ufunc map, from the op table (tapead/optable.py)
_ns = globals()
for _op in ELEMENTWISE:
    _f = (_unary if OP_ARITY[_op] == 1 else _binary)(_op, OPS[_op].plain, _named(_op))
    _ns[_named(_op)] = _f
    UFUNCS.update(dict.fromkeys(OPS[_op].ufuncs, _f))
for _op in sorted(GroupOp.GUARD):
    UFUNCS.update(dict.fromkeys(OPS[_op].ufuncs, _comparison(OPS[_op].plain)))
UFUNCS[np.positive] = lambda x: x
UFUNCS[np.conjugate] = lambda x: x


def where(cond, x, y):
    """x where cond is true, else y, elementwise, as one conditional operation per element that
    stays valid on both sides of the branch: the derivative flows only through the selected
    operand (a NaN or Inf in the other never reaches it), and replays choose anew.

    cond is a comparison of Vars (``ad.where(x > 0, x, 0.0)``; elementwise on arrays): while
    recording a comparison gives an ``ad.Cond``, which where takes as its condition without
    recording a branch guard. A Var also serves (nonzero: true). A plain bool (or a Cond whose
    truth value Python already took, as in ``a > 0 and b > 0``) just selects, and the guards it
    came from stay in force: replays on the other side re-record or raise BranchChanged."""
    if type(cond) is ArrayCond or type(cond) is Array or type(x) is Array or type(y) is Array:
        return _array_where(cond, x, y)          # one MAP of WHERE over blocks
    if (type(cond) is Cond or type(cond) is Var) and not (np.ndim(x) or np.ndim(y)):
        return _where1(cond, x, y)
    c = np.asarray(cond, dtype=object) if type(cond) in (Cond, Var) else np.asarray(cond)
    if c.dtype == object:                        # an array of conditions: elementwise
        _check_tapes(c, x, y)
        return np.frompyfunc(_where1, 3, 1)(c, np.asarray(x, dtype=object),
                                            np.asarray(y, dtype=object))
    if c.dtype != bool and c.dtype.kind not in "biuf":
        raise TypeError(f"ad.where expects a condition (a comparison of Vars, a Var, a bool "
                        f"or an array of them); got {type(cond).__name__}")
    if c.ndim == 0 and not isinstance(cond, np.ndarray):
        return x if cond else y
    out = np.where(c, np.asarray(x, dtype=object), np.asarray(y, dtype=object))
    return out if any(type(e) is Var for e in out.flat) else out.astype(np.float64)


def _where1(cond, x, y):
    """One element of where: a Cond or Var condition records WHERE; anything else selects."""
    if type(cond) is Cond:
        return _record_where(cond._rec, cond.index, x, y)
    if type(cond) is Var:
        return _record_where(cond._rec, cond.index, x, y)
    return x if cond else y


def _check_tapes(*items):
    """TapeError before anything is recorded when items hold Vars or Conds of two tapes."""
    rec = None
    for a in items:
        for e in (np.asarray(a, dtype=object).flat if np.ndim(a) else (a,)):
            if type(e) is Var or type(e) is Cond:
                if rec is None:
                    rec = e._rec
                elif e._rec is not rec:
                    _mixed()


def _record_where(rec, cond_index, x, y):
    """Record z = x if variable cond_index != 0 else y on rec."""
    return _make(rec, lib.tp_rec3(rec._p, _WHERE, cond_index,
                                  *operand_codes(rec, (x, y), "ad.where")))


def _floats(items, name):
    """items as a float64 array; TypeError (not NaN, not ValueError) for a non-number."""
    arr = np.asarray(items)
    if arr.dtype.kind not in "biuf":
        for e in arr.flat:
            if _number(e) is None:
                raise TypeError(f"{name} expects Vars and real numbers; got {type(e).__name__}")
    return np.asarray(arr, dtype=np.float64)


def sum(xs):
    """Sum of a sequence or array; with Vars, one n-ary tape operation (numbers included); of
    an ad.Array, one REDUCE."""
    if type(xs) is Array:
        return reduce_sum(xs)
    items = list(np.asarray(xs, dtype=object).flat) if isinstance(xs, np.ndarray) else list(xs)
    owner = next((v for v in items if type(v) is Var), None)
    if owner is None:
        return float(np.sum(_floats(items, "ad.sum")))
    rec = owner._rec
    idx = operand_codes(rec, items, "ad.sum")
    return _make(rec, lib.tp_recn(rec._p, _SUM, idx, len(idx)))


def dot(a, b):
    """Inner product of two equal-length sequences, one n-ary tape operation when Vars occur;
    of ad.Arrays, one MATMUL."""
    if type(a) is Array or type(b) is Array:
        return _matmul(a, b)
    a = list(np.asarray(a, dtype=object).flat)
    b = list(np.asarray(b, dtype=object).flat)
    if len(a) != len(b):
        raise ValueError(f"ad.dot expects sequences of equal length; got {len(a)} and {len(b)}")
    owner = next((v for v in a + b if type(v) is Var), None)
    if owner is None:
        return float(np.dot(_floats(a, "ad.dot"), _floats(b, "ad.dot")))
    t = owner._rec
    idx = operand_codes(t, [e for pair in zip(a, b) for e in pair], "ad.dot")
    return _make(t, lib.tp_recn(t._p, _DOT, idx, len(idx)))


_WHERE, _SUM, _DOT = int(Op.WHERE), int(Op.SUM), int(Op.DOT)

# NumPy's object-dtype loops call a method named after the ufunc on each element, or the Python
# operator for an operator's ufunc.
_OPERATORS = {u for row in OPS.values() if row.operator for u in row.ufuncs} | {np.positive}
for _ufunc, _f in list(UFUNCS.items()):
    if _ufunc not in _OPERATORS:
        setattr(Var, _ufunc.__name__, lambda self, *a, _f=_f: _f(self, *a))
del _ns, _op, _ufunc, _f

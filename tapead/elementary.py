"""Elementary functions of API.md section 1: on a Var they record one tape operation; on plain
numbers they return plain numbers; on arrays they apply elementwise (object arrays of Var give
object arrays of Var). NumPy's ufuncs dispatch here for Vars (Var.__array_ufunc__), and NumPy's
object-array loops call the same functions through the Var methods named after the ufuncs."""
import ast
import functools
import linecache
import operator
import sys

import numpy as np

from ._core import Op, check, lib
from ._fast import rec1 as _rec1, rec2 as _rec2
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


def _unary(op, plain, name):
    op = int(op)

    def f(x):
        if type(x) is Var:
            return _rec1(op, x)
        c = _number(x)
        if c is not None:
            return float(plain(c))
        out = _elementwise(f, x)
        if out is not None:
            return out
        try:
            return plain(np.asarray(x, dtype=np.float64))
        except (TypeError, ValueError):
            raise TypeError(f"ad.{name} expects a Var, a real number or an array of them; got "
                            f"{type(x).__name__}") from None
    f.__name__ = f.__qualname__ = name
    f.__doc__ = f"{name}(x), elementwise; records {Op(op).name} for a Var."
    return f


def _binary(op, plain, name):
    op = int(op)

    def f(x, y):
        tx, ty = type(x) is Var, type(y) is Var
        if tx or ty:
            r = _rec2(op, x, y)
            if r is not NotImplemented:
                return r
        else:
            cx, cy = _number(x), _number(y)
            if cx is not None and cy is not None:
                return float(plain(cx, cy))
        out = _elementwise(f, x, y)
        if out is not None:
            return out
        try:
            return plain(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
        except (TypeError, ValueError):
            raise TypeError(f"ad.{name} expects Vars, real numbers or arrays of them; got "
                            f"{type(x).__name__} and {type(y).__name__}") from None
    f.__name__ = f.__qualname__ = name
    f.__doc__ = f"{name}(x, y), elementwise with broadcasting; records {Op(op).name} for Vars."
    return f


def _sign(x):
    return np.sign(x)


# name, op, plain-number function, numpy ufunc it stands for (None: no ufunc of that meaning)
_UNARY = [
    ("sin", Op.SIN, np.sin, np.sin), ("cos", Op.COS, np.cos, np.cos),
    ("tan", Op.TAN, np.tan, np.tan), ("asin", Op.ASIN, np.arcsin, np.arcsin),
    ("acos", Op.ACOS, np.arccos, np.arccos), ("atan", Op.ATAN, np.arctan, np.arctan),
    ("sinh", Op.SINH, np.sinh, np.sinh), ("cosh", Op.COSH, np.cosh, np.cosh),
    ("tanh", Op.TANH, np.tanh, np.tanh), ("asinh", Op.ASINH, np.arcsinh, np.arcsinh),
    ("acosh", Op.ACOSH, np.arccosh, np.arccosh), ("atanh", Op.ATANH, np.arctanh, np.arctanh),
    ("exp", Op.EXP, np.exp, np.exp), ("expm1", Op.EXPM1, np.expm1, np.expm1),
    ("log", Op.LOG, np.log, np.log), ("log1p", Op.LOG1P, np.log1p, np.log1p),
    ("log2", Op.LOG2, np.log2, np.log2), ("log10", Op.LOG10, np.log10, np.log10),
    ("sqrt", Op.SQRT, np.sqrt, np.sqrt), ("cbrt", Op.CBRT, np.cbrt, np.cbrt),
    ("square", Op.SQUARE, np.square, np.square), ("abs", Op.ABS, np.abs, np.absolute),
    ("sign", Op.SIGN, _sign, np.sign), ("negative", Op.NEG, np.negative, np.negative),
]
_BINARY = [
    ("hypot", Op.HYPOT, np.hypot, np.hypot), ("atan2", Op.ATAN2, np.arctan2, np.arctan2),
    ("pow", Op.POW, np.power, np.power), ("maximum", Op.MAX, np.maximum, np.maximum),
    ("minimum", Op.MIN, np.minimum, np.minimum), ("add", Op.ADD, np.add, np.add),
    ("subtract", Op.SUB, np.subtract, np.subtract), ("multiply", Op.MUL, np.multiply, np.multiply),
    ("divide", Op.DIV, np.divide, np.true_divide),
]

_ns = globals()
for _name, _op, _plain, _ufunc in _UNARY:
    _ns[_name] = _f = _unary(_op, _plain, _name)
    UFUNCS[_ufunc] = _f
for _name, _op, _plain, _ufunc in _BINARY:
    _ns[_name] = _f = _binary(_op, _plain, _name)
    UFUNCS[_ufunc] = _f
UFUNCS[np.positive] = lambda x: x
UFUNCS[np.conjugate] = lambda x: x
# comparisons (NumPy scalars on the left of a Var come here): Python's, so they are guards
def _comparison(compare):
    def plain(u):
        u = u[()] if isinstance(u, np.ndarray) else u           # 0-d arrays: their element
        return u if type(u) is Var else _number(u)

    def f(a, b):
        if np.ndim(a) or np.ndim(b):
            return np.frompyfunc(f, 2, 1)(np.asarray(a, dtype=object), np.asarray(b, dtype=object))
        return compare(plain(a), plain(b))
    return f


for _ufunc, _cmp in ((np.less, operator.lt), (np.less_equal, operator.le),
                     (np.greater, operator.gt), (np.greater_equal, operator.ge),
                     (np.equal, operator.eq), (np.not_equal, operator.ne)):
    UFUNCS[_ufunc] = _comparison(_cmp)


def _erf_plain(x):
    import math
    return np.vectorize(math.erf, otypes=[float])(x) if np.ndim(x) else math.erf(x)


erf = _unary(Op.ERF, _erf_plain, "erf")


def where(cond, x, y):
    """x where cond is true, else y, elementwise, as one conditional operation per element that
    stays valid on both sides of the branch: the derivative flows only through the selected
    operand (a NaN or Inf in the other never reaches it), and replays choose anew.

    cond is a comparison of Vars written in the call (``ad.where(x > 0, x, 0.0)``, also
    elementwise on arrays), whose branch guard the call takes over, or a Var (nonzero: true).
    A plain bool that did not come from such a comparison just selects; any guard it came from
    stays in force (replays on the other side re-record or raise BranchChanged)."""
    return _where(cond, x, y, sys._getframe(1))


def _where(cond, x, y, frame):
    if type(cond) is Var:
        return _record_where(cond._rec, cond.index, x, y)
    c = np.asarray(cond)
    if c.dtype == object:                        # an array of Vars (or mixed): elementwise
        out = np.frompyfunc(lambda ci, xi, yi: _where(ci, xi, yi, frame), 3, 1)(
            c, np.asarray(x, dtype=object), np.asarray(y, dtype=object))
        return out
    rec = _recording_of(x, y)
    if rec is not None:                          # before any guard is taken over
        for a in (x, y):
            for e in (np.asarray(a, dtype=object).flat if np.ndim(a) else (a,)):
                if type(e) is Var and e._rec is not rec:
                    _mixed()
    guards = _claim_guards(rec, frame, c) if rec is not None else None
    if guards is None:                           # a plain condition: select
        if c.ndim == 0 and not isinstance(cond, np.ndarray):
            return x if cond else y
        out = np.where(c, np.asarray(x, dtype=object), np.asarray(y, dtype=object))
        return out if any(type(e) is Var for e in out.flat) else out.astype(np.float64)
    if c.ndim == 0:
        return _record_where(rec, guards[0], x, y)
    cb, xb, yb = np.broadcast_arrays(c, np.asarray(x, dtype=object), np.asarray(y, dtype=object))
    out = np.empty(cb.shape, dtype=object)
    it = np.nditer(c, flags=["multi_index", "refs_ok"], order="K")   # the order compared in
    for g, _ in zip(guards, it):
        k = it.multi_index
        out[k] = _record_where(rec, g, xb[k], yb[k])
    return out


def _recording_of(*items):
    """The recording this thread is making, else that of the first Var among items (arrays
    searched too); operand_codes then refuses Vars of any other."""
    from .tape import _state
    rec = getattr(_state, "rec", None)
    if rec is not None:
        return rec
    for a in items:
        if type(a) is Var:
            return a._rec
        if isinstance(a, (np.ndarray, list, tuple)):
            for e in np.asarray(a, dtype=object).flat:
                if type(e) is Var:
                    return e._rec
    return None


def _claim_guards(rec, frame, c):
    """The branch guards that made the bools c, if c is where's first argument written as one
    comparison in the call being evaluated in frame (``ad.where(x > 0, ...)``, elementwise too):
    they become plain comparisons, no longer checked by replays. None otherwise: then c only
    selects and its guards (if any) stay in force."""
    n = c.size
    if n == 0 or c.dtype != bool:
        return None
    code = frame.f_code
    span = _condition_span(code, frame.f_lasti)
    if span is None:
        return None
    taken, sites, mine = rec.unguarded, rec.sites, []
    for g in reversed(rec.guards[-(n + 10000):]):          # the latest, back to front
        site = sites.get(g)
        if g not in taken and site is not None and site[2] is code and \
                _position(code, site[3]) == span:
            mine.append(g)
            if len(mine) == n:
                break
    if len(mine) < n:
        return None
    mine.reverse()
    outcomes = c.ravel(order="K")
    if any(bool(lib.tp_value(rec._p, g)) != bool(o) for g, o in zip(mine, outcomes)):
        return None
    for g in mine:
        check(lib.tp_unguard(rec._p, g), "ad.where")
        taken.add(g)
    return mine


def _position(code, lasti):
    """(line, end line, column, end column) of the instruction at lasti (Python 3.11+)."""
    try:
        return tuple(list(code.co_positions())[lasti // 2])
    except (AttributeError, IndexError):
        return None


@functools.lru_cache(maxsize=4096)
def _condition_span(code, lasti):
    """Source position of where's condition in the call at lasti, if it is one comparison
    (``x > 0``; not ``0 < x < 1`` nor ``a > 0 or b > 0``), else None."""
    pos = _position(code, lasti)
    if pos is None or None in pos:
        return None
    line, end_line, col, end_col = pos
    lines = [ln.encode("utf-8") for ln in linecache.getlines(code.co_filename)]
    if not lines or end_line > len(lines):
        return None
    chunk = lines[line - 1:end_line]
    chunk[-1] = chunk[-1][:end_col]
    chunk[0] = chunk[0][col:]
    try:
        call = ast.parse(b"(" + b"".join(chunk) + b")", mode="eval").body
    except (SyntaxError, ValueError):
        return None
    if not isinstance(call, ast.Call):
        return None
    cond = call.args[0] if call.args else next(
        (k.value for k in call.keywords if k.arg == "cond"), None)
    if not isinstance(cond, ast.Compare) or len(cond.ops) != 1:
        return None

    def absolute(ln, cl):                  # the snippet starts with "(" at column col
        return line + ln - 1, (col + cl - 1 if ln == 1 else cl)
    (l0, c0), (l1, c1) = absolute(cond.lineno, cond.col_offset), \
        absolute(cond.end_lineno, cond.end_col_offset)
    return (l0, l1, c0, c1)


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
    """Sum of a sequence or array; with Vars, one n-ary tape operation (numbers included)."""
    items = list(np.asarray(xs, dtype=object).flat) if isinstance(xs, np.ndarray) else list(xs)
    owner = next((v for v in items if type(v) is Var), None)
    if owner is None:
        return float(np.sum(_floats(items, "ad.sum")))
    rec = owner._rec
    idx = operand_codes(rec, items, "ad.sum")
    return _make(rec, lib.tp_recn(rec._p, _SUM, idx, len(idx)))


def dot(a, b):
    """Inner product of two equal-length sequences, one n-ary tape operation when Vars occur."""
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

# NumPy's object-dtype loops call a method named after the ufunc on each element.
for _ufunc, _f in list(UFUNCS.items()):
    if _ufunc not in (np.add, np.subtract, np.multiply, np.true_divide, np.power,
                      np.negative, np.positive, np.absolute, np.less, np.less_equal,
                      np.greater, np.greater_equal, np.equal, np.not_equal):
        setattr(Var, _ufunc.__name__, lambda self, *a, _f=_f: _f(self, *a))
del _ns, _name, _op, _plain, _ufunc, _f, _cmp

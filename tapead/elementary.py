"""Elementary functions of API.md section 1: on a Var they record one tape operation; on plain
numbers they return plain numbers; on arrays they apply elementwise (object arrays of Var give
object arrays of Var). NumPy's ufuncs dispatch here for Vars (Var.__array_ufunc__), and NumPy's
object-array loops call the same functions through the Var methods named after the ufuncs."""
import numpy as np

from ._core import Op, check, ffi as _ffi, lib
from .var import UFUNCS, Var, _make, _mixed, _number, rec1 as _rec1, rec2 as _rec2


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


def _erf_plain(x):
    import math
    return np.vectorize(math.erf, otypes=[float])(x) if np.ndim(x) else math.erf(x)


erf = _unary(Op.ERF, _erf_plain, "erf")


def where(cond, x, y):
    """x where cond is true, else y, elementwise. A Var cond (nonzero means true) records a
    conditional operation that stays valid on both sides; the derivative flows only through the
    selected operand, so a NaN or Inf in the other never reaches it."""
    if type(cond) is Var:
        t = cond._tape
        args = []
        for a in (cond, x, y):
            if type(a) is Var:
                if a._tape is not t:
                    _mixed(cond, a)
                args.append(a.index)
            else:
                c = _number(a)
                if c is None:
                    break
                code = _ffi.new("int32_t *")
                check(lib.tp_const(t._p, c, code))
                args.append(code[0])
        else:
            return _make(t, lib.tp_rec3(t._p, _WHERE, *args))
    elif np.ndim(cond) == 0 and not isinstance(cond, np.ndarray):
        return x if cond else y
    out = np.frompyfunc(where, 3, 1)(np.asarray(cond, dtype=object), np.asarray(x, dtype=object),
                                     np.asarray(y, dtype=object))
    if isinstance(out, np.ndarray) and not any(type(e) is Var for e in out.flat):
        return out.astype(np.float64)
    return out


def sum(xs):
    """Sum of a sequence or array; Vars are summed by one n-ary tape operation."""
    items = list(np.asarray(xs, dtype=object).flat) if isinstance(xs, np.ndarray) else list(xs)
    vars_ = [v for v in items if type(v) is Var]
    if not vars_:
        return float(np.sum(np.asarray(items, dtype=np.float64)))
    t = vars_[0]._tape
    const = 0.0
    idx = []
    for v in items:
        if type(v) is Var:
            if v._tape is not t:
                _mixed(vars_[0], v)
            idx.append(v.index)
        else:
            c = _number(v)
            if c is None:
                raise TypeError(f"ad.sum expects Vars and real numbers; got {type(v).__name__}")
            const += c
    s = _make(t, lib.tp_recn(t._p, _SUM, idx, len(idx)))
    return s + const if const else s


def dot(a, b):
    """Inner product of two equal-length sequences, one n-ary tape operation when Vars occur."""
    a = list(np.asarray(a, dtype=object).flat)
    b = list(np.asarray(b, dtype=object).flat)
    if len(a) != len(b):
        raise ValueError(f"ad.dot expects sequences of equal length; got {len(a)} and {len(b)}")
    owner = next((v for v in a + b if type(v) is Var), None)
    if owner is None:
        return float(np.dot(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)))
    t = owner._tape
    idx = []
    for u in a + b:
        if type(u) is Var:
            if u._tape is not t:
                _mixed(owner, u)
        elif _number(u) is None:
            raise TypeError(f"ad.dot expects Vars and real numbers; got {type(u).__name__}")
    for u, v in zip(a, b):
        for e in (u, v):
            if type(e) is Var:
                idx.append(e.index)
            else:
                code = _ffi.new("int32_t *")
                check(lib.tp_const(t._p, _number(e), code))
                idx.append(code[0])
    return _make(t, lib.tp_recn(t._p, _DOT, idx, len(idx)))


_WHERE, _SUM, _DOT = int(Op.WHERE), int(Op.SUM), int(Op.DOT)

# NumPy's object-dtype loops call a method named after the ufunc on each element.
for _ufunc, _f in list(UFUNCS.items()):
    if _ufunc not in (np.add, np.subtract, np.multiply, np.true_divide, np.power,
                      np.negative, np.positive, np.absolute):
        setattr(Var, _ufunc.__name__, lambda self, *a, _f=_f: _f(self, *a))
del _ns, _name, _op, _plain, _ufunc, _f

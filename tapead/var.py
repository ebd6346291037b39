"""Var: an active scalar on a tape. Operator overloading records one tape operation per call."""
import numbers

import numpy as np

from ._core import Op, fail, lib
from .errors import TapeError

_rec1, _rec2, _rec2vc, _rec2cv = lib.tp_rec1, lib.tp_rec2, lib.tp_rec2vc, lib.tp_rec2cv
_new = object.__new__

#: numpy ufunc -> tapead function; filled by tapead.elementary (Var.__array_ufunc__ reads it)
UFUNCS = {}


class Var:
    """An active scalar: a variable of a tape. Created by a tape, never by the user.

    ``value`` is its primal value at recording, ``index`` its position on the tape (inputs
    first), ``grad`` its adjoint after ``backward()`` (``None`` before).
    """
    __slots__ = ("_tape", "index")

    @property
    def value(self):
        return lib.tp_value(self._tape._p, self.index)

    @property
    def grad(self):
        return self._tape._grad_of(self.index)

    @property
    def tape(self):
        return self._tape

    def backward(self, seed=1.0):
        """Reverse sweep from this variable at the recorded point: fills ``.grad`` of every
        variable of the tape (overwriting what an earlier backward() left)."""
        self._tape._backward(self.index, seed)

    def __repr__(self):
        return f"Var(value={self.value!r}, index={self.index})"

    __hash__ = object.__hash__      # identity, as torch.Tensor; == compares values

    # ---- arithmetic -------------------------------------------------------------------------
    def __pos__(self):
        return self

    def __neg__(self):
        return _make(self._tape, _rec1(self._tape._p, _NEG, self.index))

    def __abs__(self):
        return _make(self._tape, _rec1(self._tape._p, _ABS, self.index))

    def __pow__(self, other, modulo=None):
        if modulo is not None:
            raise TypeError("pow() with a modulus is not differentiable")
        if type(other) is not Var:
            c = _number(other)
            if c is None:
                return NotImplemented
            if c == 2.0:
                return _make(self._tape, _rec1(self._tape._p, _SQUARE, self.index))
            if c == 0.5:
                return _make(self._tape, _rec1(self._tape._p, _SQRT, self.index))
            return _make(self._tape, _rec2vc(self._tape._p, _POW, self.index, c))
        return _pow_vv(self, other)

    def __rpow__(self, other):
        c = _number(other)
        if c is None:
            return NotImplemented
        return _make(self._tape, _rec2cv(self._tape._p, _POW, c, self.index))

    # ---- comparisons: plain bools on the values (recorded as branch guards: see README) -----
    def __lt__(self, other):
        return self.value < _cmp_value(other)

    def __le__(self, other):
        return self.value <= _cmp_value(other)

    def __gt__(self, other):
        return self.value > _cmp_value(other)

    def __ge__(self, other):
        return self.value >= _cmp_value(other)

    def __eq__(self, other):
        c = _cmp_value(other, strict=False)
        return NotImplemented if c is NotImplemented else self.value == c

    def __ne__(self, other):
        c = _cmp_value(other, strict=False)
        return NotImplemented if c is NotImplemented else self.value != c

    def __bool__(self):
        return self.value != 0.0

    # ---- paths that would drop the derivative ----------------------------------------------
    def __float__(self):
        raise TypeError(_drop_msg(self, "float()"))

    def __int__(self):
        raise TypeError(_drop_msg(self, "int()"))

    def __index__(self):
        raise TypeError(_drop_msg(self, "use as an index"))

    def __complex__(self):
        raise TypeError(_drop_msg(self, "complex()"))

    def __round__(self, ndigits=None):
        raise TypeError(_drop_msg(self, "round()"))

    def __trunc__(self):
        raise TypeError(_drop_msg(self, "math.trunc()"))

    def __floor__(self):
        raise TypeError(_drop_msg(self, "math.floor()"))

    def __ceil__(self):
        raise TypeError(_drop_msg(self, "math.ceil()"))

    def _no_floor(self, other=None):
        raise TypeError("// and % are not differentiable operations on a tapead Var; "
                        "use v.value for the plain number")
    __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = __divmod__ = __rdivmod__ = _no_floor

    # ---- NumPy -------------------------------------------------------------------------------
    __array_priority__ = 1000

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        fn = UFUNCS.get(ufunc)
        if fn is None or method != "__call__" or kwargs.get("out") is not None:
            what = ufunc.__name__ if method == "__call__" else f"{ufunc.__name__}.{method}"
            raise TypeError(f"numpy.{what} is not supported on tapead Vars (it has no "
                            f"derivative rule); supported ufuncs: "
                            f"{', '.join(sorted(u.__name__ for u in UFUNCS))}")
        if any(isinstance(a, np.ndarray) for a in inputs):
            inputs = [np.asarray(a, dtype=object) if isinstance(a, np.ndarray) else a
                      for a in inputs]
        return fn(*inputs)


def _make(tape, i):
    """The Var of index i on tape (a negative i is a C status: raise it)."""
    if i < 0:
        fail(i)
    v = _new(Var)
    v._tape = tape
    v.index = i
    return v


def _number(x):
    """float(x) for a real number that is not a Var, None for other types."""
    if type(x) is float or type(x) is int:
        return x
    if isinstance(x, numbers.Real) and not isinstance(x, np.ndarray):
        return float(x)
    if isinstance(x, np.ndarray) and x.ndim == 0 and x.dtype.kind in "biuf":
        return float(x)
    if isinstance(x, (complex, np.complexfloating)):
        raise TypeError("tapead differentiates real functions; got a complex number")
    return None


def _cmp_value(other, strict=True):
    if type(other) is Var:
        return other.value
    c = _number(other)
    if c is None:
        if strict:
            raise TypeError(f"cannot compare a tapead Var with {type(other).__name__}")
        return NotImplemented
    return c


def _drop_msg(v, what):
    return (f"{what} would drop the derivative of a tapead Var (value {v.value!r}); use "
            f"v.value for the plain number, or ad.sin / numpy.sin (not math.sin) to keep "
            f"differentiating")


def _mixed(a, b):
    raise TapeError("operands belong to different tapes; a Var can only be combined with "
                    "Vars of its own tape")


def _binary(op, name):
    """x <op> y and y <op> x methods for an op recorded as TP_OP_<op>(x, y)."""
    def method(self, other):
        t = self._tape
        if type(other) is Var:
            if other._tape is not t:
                _mixed(self, other)
            i = _rec2(t._p, op, self.index, other.index)
        elif type(other) is float or type(other) is int:
            i = _rec2vc(t._p, op, self.index, other)
        else:
            c = _number(other)
            if c is None:
                return NotImplemented
            i = _rec2vc(t._p, op, self.index, c)
        if i < 0:
            fail(i)
        v = _new(Var)
        v._tape = t
        v.index = i
        return v

    def reflected(self, other):
        t = self._tape
        if type(other) is float or type(other) is int:
            i = _rec2cv(t._p, op, other, self.index)
        else:
            c = _number(other)
            if c is None:
                return NotImplemented
            i = _rec2cv(t._p, op, c, self.index)
        if i < 0:
            fail(i)
        v = _new(Var)
        v._tape = t
        v.index = i
        return v

    method.__name__, reflected.__name__ = f"__{name}__", f"__r{name}__"
    return method, reflected


def _pow_vv(x, y):
    if x._tape is not y._tape:
        _mixed(x, y)
    return _make(x._tape, _rec2(x._tape._p, _POW, x.index, y.index))


_NEG, _ABS, _POW, _SQUARE, _SQRT = (int(o) for o in (Op.NEG, Op.ABS, Op.POW, Op.SQUARE, Op.SQRT))
Var.__add__, Var.__radd__ = _binary(int(Op.ADD), "add")
Var.__sub__, Var.__rsub__ = _binary(int(Op.SUB), "sub")
Var.__mul__, Var.__rmul__ = _binary(int(Op.MUL), "mul")
Var.__truediv__, Var.__rtruediv__ = _binary(int(Op.DIV), "truediv")

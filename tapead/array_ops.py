"""Comparisons, where, clip and logaddexp on ad.Array.

A comparison of Arrays records one MAP of the comparison op (its rules are the scalar ones) and
gives an ArrayCond: it acts as the NumPy bool array of the outcomes, and as soon as Python uses
those values (truth value, np.asarray, .any(), iteration, printing, ...) the whole block becomes
one branch guard, checked element by element on every replay. Consumed by np.where / ad.where,
as the mask of a[c] = v, or in arithmetic (its 0s and 1s), it records no guard: the comparison
is redone on replay, as for the scalar ad.Cond.
"""
import sys

import numpy as np

from ._core import Op, check, lib
from .array import Array, _map, _rec_of, asarray
from ._fast import Cond
from .var import Var, _make

_WHERE = int(Op.WHERE)
_NAN = float("nan")
_HERE = __file__.rsplit("/", 1)[0]


def _user_frame():
    """The innermost frame outside tapead (the user's line, for BranchChanged)."""
    f = sys._getframe(1)
    while f.f_back is not None and f.f_code.co_filename.startswith(_HERE):
        f = f.f_back
    return f


class ArrayCond:
    """The outcome of comparing ad.Arrays while recording: a NumPy bool array of the values
    that records one branch guard for its block when Python uses them (see the module doc)."""
    __slots__ = ("_arr", "_guarded")
    __array_priority__ = 3000

    def __init__(self, arr):
        self._arr, self._guarded = arr, False

    shape = property(lambda self: self._arr.shape)
    ndim = property(lambda self: len(self._arr.shape))
    size = property(lambda self: self._arr.size)
    dtype = property(lambda self: np.dtype(bool))

    def _values(self):
        """The outcomes as a bool ndarray: Python sees them, so the block becomes a guard."""
        a = self._arr
        rec = a._rec
        if not self._guarded and a.size and not lib.tp_closed(rec._p):
            check(lib.tp_guard_block(rec._p, a._first), "comparison of ad.Arrays")
            frame = _user_frame()
            rec.note_guard(a._first, frame)
            site = rec.sites[a._first]             # every element names the line
            rec.sites.update(dict.fromkeys(range(a._first + 1, a._first + a.size), site))
        self._guarded = True
        return np.asarray(a._values() != 0.0)

    def __array__(self, dtype=None, copy=None):
        v = self._values()
        return v if dtype is None else v.astype(dtype)

    def __bool__(self):
        return bool(self._values())

    def __len__(self):
        return len(self._arr)

    def __iter__(self):
        return iter(self._values())

    def __getitem__(self, key):
        return self._values()[key]

    def __repr__(self):
        return f"ArrayCond({np.array2string(self._values())})"

    def __str__(self):
        return str(self._values())

    def __format__(self, spec):
        return format(self._values(), spec)

    def any(self, axis=None, keepdims=False):
        return self._values().any(axis=axis, keepdims=keepdims)

    def all(self, axis=None, keepdims=False):
        return self._values().all(axis=axis, keepdims=keepdims)

    def nonzero(self):
        return self._values().nonzero()

    def tolist(self):
        return self._values().tolist()

    def __getattr__(self, name):           # the rest of a bool ndarray (sum, mean, T, ...): a guard
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._values(), name)

    def astype(self, dtype):
        """float: the 0s and 1s as an ad.Array (no guard); bool: the values (a guard)."""
        if np.dtype(dtype).kind == "f":
            return self._arr
        return self._values().astype(dtype)

    # ---- conditions from conditions (no guard): ~c, c & d, c | d, c ^ d ----------------------
    def __invert__(self):
        return compare(Op.EQ, self._arr, 0.0)

    def __and__(self, other):
        return compare(Op.NE, _map(int(Op.MUL), self._arr, _bits(other), array=True), 0.0)

    def __or__(self, other):
        return compare(Op.NE, _map(int(Op.MAX), self._arr, _bits(other), array=True), 0.0)

    def __xor__(self, other):
        return compare(Op.NE, self._arr, _bits(other))

    __rand__, __ror__, __rxor__ = __and__, __or__, __xor__

    def __eq__(self, other):
        return compare(Op.EQ, self._arr, other._arr if isinstance(other, ArrayCond) else other)

    def __ne__(self, other):
        return compare(Op.NE, self._arr, other._arr if isinstance(other, ArrayCond) else other)

    __hash__ = object.__hash__

    # ---- in arithmetic: its 0s and 1s, an ad.Array (no guard) ------------------------------------
    def __neg__(self):
        return -self._arr

    # ---- NumPy ----------------------------------------------------------------------------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        logical = _LOGICAL.get(ufunc)
        if logical is not None and method == "__call__" and not kwargs:
            return logical(*inputs)
        # elsewhere a condition counts as its 0s and 1s (an ad.Array: no guard)
        inputs = [a._arr if isinstance(a, ArrayCond) else a for a in inputs]
        return getattr(ufunc, method)(*inputs, **kwargs)

    def __array_function__(self, func, types, args, kwargs):
        if func is np.where:
            return where(*args, **kwargs)
        # the values used by NumPy: the block is a guard
        return func(*_plain(args), **{k: _plain(v) for k, v in kwargs.items()})


for _name in ("add", "sub", "mul", "truediv", "pow", "matmul"):
    for _n in (f"__{_name}__", f"__r{_name}__"):
        setattr(ArrayCond, _n, lambda self, other, _n=_n: getattr(self._arr, _n)(other))


def _plain(a):
    if isinstance(a, ArrayCond):
        return a._values()
    if isinstance(a, (list, tuple)):
        return type(a)(_plain(e) for e in a)
    return a


def _bits(c):
    """A condition operand of &, |, ^ as 0s and 1s."""
    if isinstance(c, ArrayCond):
        return c._arr
    if type(c) in (Array, Var):
        raise TypeError("&, | and ^ combine conditions (comparisons), not ad.Arrays")
    return np.asarray(c, dtype=bool).astype(np.float64)


def _sym(method):
    """A binary &, |, ^ called with the ArrayCond first (they are symmetric)."""
    return lambda a, b: method(a, b) if isinstance(a, ArrayCond) else method(b, a)


_LOGICAL = {np.logical_not: lambda a: ~a, np.invert: lambda a: ~a,
            np.logical_and: _sym(ArrayCond.__and__), np.bitwise_and: _sym(ArrayCond.__and__),
            np.logical_or: _sym(ArrayCond.__or__), np.bitwise_or: _sym(ArrayCond.__or__),
            np.logical_xor: _sym(ArrayCond.__xor__), np.bitwise_xor: _sym(ArrayCond.__xor__)}


def compare(op, a, b):
    """a REL b elementwise (broadcasting) as one MAP of the comparison op: an ArrayCond."""
    if _rec_of((a, b)) is None:
        if isinstance(a, ArrayCond) or isinstance(b, ArrayCond):
            a, b = (x._arr if isinstance(x, ArrayCond) else x for x in (a, b))
        else:
            return NotImplemented
    rec = _rec_of((a, b))
    if lib.tp_closed(rec._p):                  # after recording: plain bool arrays
        return _PLAIN[op](*(_value_of(x) for x in (a, b)))
    return ArrayCond(_map(int(op), a, b, _NAN, array=True))


def _value_of(x):
    return x._values() if type(x) is Array else x.value if type(x) is Var else x


_PLAIN = {Op.LT: np.less, Op.LE: np.less_equal, Op.GT: np.greater, Op.GE: np.greater_equal,
          Op.EQ: np.equal, Op.NE: np.not_equal}


def where(cond, x=None, y=None):
    """x where cond else y, elementwise with broadcasting: one MAP of WHERE, no guard. The
    derivative flows only through the chosen operand (a NaN or Inf in the other never reaches
    it); cond an ArrayCond (a comparison), an ad.Array (nonzero: true) or a bool array."""
    if x is None or y is None:
        raise TypeError("numpy.where(cond) with one argument (the indices of true elements) is "
                        "not supported on ad.Array conditions; give x and y")
    items = (cond, x, y)
    if _rec_of(items) is None and not isinstance(cond, ArrayCond):
        return NotImplemented
    if isinstance(cond, ArrayCond):
        c = cond._arr
    elif type(cond) is Cond:                   # a comparison of Vars: its 0 or 1, no guard
        c = _make(cond._rec, cond.index)
    elif type(cond) is Array or type(cond) is Var:
        c = cond
    else:
        c = np.asarray(cond)
        if c.dtype == object:
            c = asarray(c)
        elif c.dtype.kind not in "biuf":
            raise TypeError(f"where expects a condition (a comparison, an ad.Array or a bool "
                            f"array); got {type(cond).__name__}")
    return _map(_WHERE, c, x, y)


def clip(a, a_min=None, a_max=None, **kwargs):
    """np.clip: minimum(maximum(a, a_min), a_max), one MAP each (no guard; ties split the
    derivative 1/2, 1/2 as ad.maximum does)."""
    if kwargs:
        raise TypeError(f"numpy.clip of an ad.Array takes a_min and a_max only; got "
                        f"{', '.join(kwargs)}")
    if a_min is None and a_max is None:
        raise ValueError("np.clip needs a_min or a_max")
    out = a if a_min is None else _map(int(Op.MAX), a, a_min)
    return out if a_max is None else _map(int(Op.MIN), out, a_max)


UFUNCS = {np.less: lambda a, b: compare(Op.LT, a, b),
          np.less_equal: lambda a, b: compare(Op.LE, a, b),
          np.greater: lambda a, b: compare(Op.GT, a, b),
          np.greater_equal: lambda a, b: compare(Op.GE, a, b),
          np.equal: lambda a, b: compare(Op.EQ, a, b),
          np.not_equal: lambda a, b: compare(Op.NE, a, b)}

FUNCTIONS = {np.where: where, np.clip: clip}

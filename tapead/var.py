"""Var: an active scalar on a tape. Operator overloading records one tape operation per call:
the number protocol is C (csrc/fast.c, tapead._fast); this module adds the Python-level rest."""
import numbers
import sys
import warnings

import numpy as np

from ._core import fail, ffi, lib
from ._fast import Cond, Var, new as new_var, setup as _setup
from .errors import TapeError

#: numpy ufunc -> tapead function; filled by tapead.elementary (Var.__array_ufunc__ reads it)
UFUNCS = {}


def _refused(what):
    """A method of a path that would drop the derivative (float(v), int(v), ...): TypeError."""
    def method(self, *args):
        raise TypeError(_drop_msg(self, what))
    return method


class _Methods:
    """An active scalar: a variable of a tape. Created by a tape, never by the user.

    ``value`` is its primal value at recording, ``index`` its position on the tape (inputs
    first), ``grad`` its adjoint after ``backward()`` (``None`` before). Arithmetic, ``**``,
    ``abs`` and comparisons are implemented in C (csrc/fast.c); each records one operation.
    """

    @property
    def grad(self):
        """The adjoint from the last backward() (None before). Read while the tape records, it
        depends on the point: every input gets a guard on its value (as for .value)."""
        rec = self._rec
        if rec.grads is not None and not lib.tp_closed(rec._p) and lib.tp_readable(rec._p):
            freeze(rec, range(rec.m), sys._getframe(1), ".grad")
        return rec.grad_of(self.index)

    @property
    def tape(self):
        """The Tape that recorded this variable."""
        return self._rec.owner()

    def backward(self, seed=1.0):
        """Reverse sweep from this variable at the recorded point: fills ``.grad`` of every
        variable of the tape (overwriting what an earlier backward() left)."""
        self._rec.backward(self.index, seed)

    def __repr__(self):
        return f"Var(value={self._value!r}, index={self.index})"

    def __format__(self, spec):
        """The value formatted (f'{v:.3f}'), without recording anything: prints progress."""
        return format(self._value, spec)

    # ---- paths that would drop the derivative ----------------------------------------------
    __float__ = _refused("float()")
    __int__ = _refused("int()")
    __index__ = _refused("use as an index")
    __complex__ = _refused("complex()")
    __round__ = _refused("round()")
    __trunc__ = _refused("math.trunc()")
    __floor__ = _refused("math.floor()")
    __ceil__ = _refused("math.ceil()")

    def _no_floor(self, other=None):
        raise TypeError("// and % are not differentiable operations on a tapead Var (they "
                        "would drop its derivative); write the computation with +, -, *, /, "
                        "the elementary functions and ad.where")
    __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = __divmod__ = __rdivmod__ = _no_floor

    # ---- NumPy -------------------------------------------------------------------------------
    __array_priority__ = 1000

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        fn = UFUNCS.get(ufunc)
        if kwargs.get("out") is not None:
            raise TypeError(f"numpy.{ufunc.__name__}(..., out=...) cannot hold tapead Vars; "
                            f"call it without out=")
        if method == "reduce" and ufunc in _FOLDS and len(inputs) == 1 and \
                inputs[0] is self and kwargs.get("axis", 0) in (None, ()) and \
                kwargs.get("dtype") in (None, float, np.float64) and \
                not kwargs.get("keepdims") and set(kwargs) <= {"axis", "dtype", "keepdims", "out"}:
            return self     # np.sum / prod / max / min of a scalar (an Array's 0-d reduction)
        if fn is None or method != "__call__" or kwargs:
            what = ufunc.__name__ if method == "__call__" else f"{ufunc.__name__}.{method}"
            raise TypeError(f"numpy.{what} is not supported on tapead Vars (it has no "
                            f"derivative rule); supported ufuncs: "
                            f"{', '.join(sorted(u.__name__ for u in UFUNCS))}")
        if any(isinstance(a, np.ndarray) for a in inputs):
            inputs = [np.asarray(a, dtype=object) if isinstance(a, np.ndarray) else a
                      for a in inputs]
        return fn(*inputs)


_FOLDS = (np.add, np.multiply, np.maximum, np.minimum)


def _make(rec, i):
    """The Var of variable i of a recording (a negative i is a C status: raise it)."""
    if i < 0:
        fail(i)
    return new_var(rec, i)


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


def operand_codes(rec, items, what):
    """Operand codes on recording rec for items, each a Var of rec (its index) or a real number
    (a constant of the pool); TypeError naming `what` for anything else."""
    codes, code = [], None
    for a in items:
        if type(a) is Var:
            if a._rec is not rec:
                _mixed()
            codes.append(a.index)
            continue
        c = _number(a)
        if c is None:
            raise TypeError(f"{what} expects Vars and real numbers; got {type(a).__name__}")
        if code is None:
            code = ffi.new("int32_t *")
        r = lib.tp_const(rec._p, c, code)
        if r < 0:
            fail(r, what)
        codes.append(code[0])
    return codes


def _drop_msg(v, what):
    return (f"{what} would drop the derivative of a tapead Var (value {v._value!r}); keep "
            f"computing with the Var: ad.sin / numpy.sin (not math.sin), ad.where for "
            f"branch-free selection. To print it, format the Var (f'{{v:.4g}}'); v.value gives "
            f"the plain number, but read while recording it puts a guard on the tape")


def _mixed(*_):
    raise TapeError("operands belong to different tapes; a Var can only be combined with "
                    "Vars of its own tape")


def _unsupported(name):
    def method(self, *args, **kwargs):
        raise TypeError(f"numpy.{name} is not supported on tapead Vars (it has no derivative "
                        f"rule)")
    method.__name__ = name
    return method


# NumPy's object-array loops call a method named after the ufunc on each element: every ufunc
# without a rule gets one that raises TypeError naming it (tapead/elementary.py adds the others).
for _name in dir(np):
    if isinstance(getattr(np, _name), np.ufunc) and not _name.startswith("_"):
        setattr(_Methods, _name, _unsupported(_name))

# The Python-level part of Var, copied onto the C type tapead._fast.Var.
for _name, _attr in vars(_Methods).items():
    if _name not in ("__module__", "__dict__", "__weakref__"):
        setattr(Var, _name, _attr)
del _name, _attr

def _on_guard(rec, index):
    """A Cond's truth value was taken: variable index is now a branch guard. Notes the line."""
    rec.note_guard(index, sys._getframe(1))


def _on_value(rec, index):
    """v.value was read while recording (called from C with the user's frame above)."""
    freeze(rec, (index,), sys._getframe(1), ".value")


def freeze(rec, indices, frame, what):
    """Guards that variables keep their recorded values, for a number read while recording
    (`what`: ".value" or ".grad"): replays elsewhere re-record or raise BranchChanged instead of
    reusing it silently. Warns once per line of user code."""
    if lib.tp_closed(rec._p):
        return
    guards = ffi.new("int32_t[2]")
    for i in indices:
        n = lib.tp_guard_value(rec._p, i, guards)
        if n < 0:
            fail(n, what)
        for k in range(n):
            rec.note_guard(guards[k], frame, i)
    warnings.warn_explicit(
        f"reading {what} of a tapead Var while recording freezes that number into the tape: it "
        f"now holds a branch guard, so replays at another point re-record (ad.record) or raise "
        f"BranchChanged. To print progress, print the Var or format it (f'{{v:.4g}}'); to "
        f"compute, use the Var itself (ad.sin, numpy.sin, +, *, ...)",
        ValueWarning, frame.f_code.co_filename, frame.f_lineno,
        module=frame.f_globals.get("__name__"),
        registry=frame.f_globals.setdefault("__warningregistry__", {}))


def _cond_format(self, spec):
    """A Cond formats as its bool does (taking its truth value)."""
    return format(bool(self), spec)


Cond.__format__ = _cond_format


class ValueWarning(UserWarning):
    """v.value (or .grad) was read while recording: the tape now holds a guard on that value."""


_setup(fail, _number, _mixed, _on_guard, _on_value, int(ffi.cast("uintptr_t", lib.tp_api())))

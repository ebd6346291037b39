"""Conversions between the user's shapes and the flat float64 arrays the C sweeps take."""
import numpy as np

from ._core import ffi
from .var import Var, _number


def buf(a):
    """A float64 array as the C sweeps' double *."""
    return ffi.from_buffer("double[]", a)


def scalar(a):
    """A 0-d array as a float, anything else as it is."""
    return float(a) if a.ndim == 0 else a


def as_float_array(x, what):
    """x as a float64 array; TypeError for Vars, None, strings and other non-numbers (NumPy would
    turn None into NaN and parse numeric strings)."""
    try:
        a = np.asarray(x)
    except (TypeError, ValueError):
        a = None
    if a is not None and a.dtype.kind in "biuf":
        a = a.astype(np.float64, copy=False)
        return a if a.flags.aligned else a.copy()      # C reads doubles at aligned addresses
    if a is not None and a.dtype == object:
        bad = [e for e in a.flat if type(e) is Var or _number(e) is None]
        if not bad:
            return a.astype(np.float64)
        if type(bad[0]) is Var:
            raise TypeError(f"{what} expects plain numbers, not tapead Vars (a replay takes "
                            f"the input point as numbers)")
        x = bad[0]
    raise TypeError(f"{what} expects a real number or an array-like of real numbers; got "
                    f"{_described(x)}")


def _described(x):
    """the type of x, and an array's dtype (complex128 is not real: name it)"""
    dtype = getattr(x, "dtype", None)
    return f"{type(x).__name__} of dtype {dtype}" if dtype is not None else type(x).__name__


def block(H, pieces, i, j):
    """Block (i, j) of a Hessian over inputs given in pieces, shaped pieces[i] + pieces[j]."""
    if len(pieces) == 1 and len(pieces[0]) == 1:
        return H
    sizes = [int(np.prod(s, dtype=np.int64)) for s in pieces]
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    b = H[starts[i]:starts[i + 1], starts[j]:starts[j + 1]].reshape(pieces[i] + pieces[j])
    return float(b) if b.ndim == 0 else b



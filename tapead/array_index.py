"""Indexing, functional updates and joining of ad.Array.

NumPy computes every selection on an array standing for the operand's elements, so its indexing
rules and its errors apply unchanged. A selection that strides describe (basic indexing,
transposes, swapaxes, broadcast_to) is a view: the same variables (no operation) when it is
C-contiguous, else one PACK through the strides. Any other (integer arrays, boolean masks,
np.take) is one GATHER whose indices go to the tape's index table; the C core checks each one
against the operand's size. Updates are functional: a[idx] = v records a SCATTER and rebinds
`a` to its result; a.at[idx].set(v) / .add(v) return a new Array (SCATTER, SCATTER_ADD).
"""
import math

import numpy as np

from . import _fast
from ._core import Op, check, ffi, lib
from .array import (Array, _AxisError, _contiguous, _operand, _rec_of, _record, _shape_id,
                    asarray)
from .var import Var, _make

_PACK, _GATHER = int(Op.PACK), int(Op.GATHER)
_SCATTER, _SCATTER_ADD = int(Op.SCATTER), int(Op.SCATTER_ADD)
_MAX_VARS = 2 ** 31 - 1                  # a tape's variables
_probe = np.empty(0, dtype=np.uint8)     # never written: only its element addresses are read


# ---- selections ---------------------------------------------------------------------------------
def _addresses(a):
    """An array of a's shape whose element e lies at byte e of a buffer: a view of it tells the
    offset and strides (in elements) of the selection it makes."""
    global _probe
    n = _size(a)
    if _probe.size < n:
        _probe = np.empty(n, dtype=np.uint8)
    return _probe[:n].reshape(a.shape)


def _size(a):
    return math.prod(a.shape)


def positions(a):
    """The element numbers of a (C order), shaped like a (int32: a tape has < 2**31 variables)."""
    return np.arange(_size(a), dtype=np.int32).reshape(a.shape)


def select(a, fn):
    """fn (a NumPy selection: indexing, take, swapaxes, ...) applied to Array a."""
    base = _addresses(a)
    r = fn(base)
    if type(r) is np.ndarray and r.size and np.may_share_memory(r, base):
        offset = r.__array_interface__["data"][0] - base.__array_interface__["data"][0]
        return strided(a._rec, a._first + offset, r.shape, r.strides)
    return from_positions(a, fn(positions(a)))


#: strided(rec, first, shape, strides): the variables first + sum(i_d * strides_d): a Var (0-d),
#: the block itself when that is C-contiguous, else one PACK (csrc/fast_array.h)
strided = _fast.strided


def _affine(p):
    """(offset, strides) when the element numbers p are affine in their index, else None."""
    offset = int(p.flat[0])
    strides = tuple(int(p[tuple(1 if k == d else 0 for k in range(p.ndim))]) - offset
                    if p.shape[d] > 1 else 0 for d in range(p.ndim))
    grid = np.indices(p.shape).reshape(p.ndim, -1)
    if np.array_equal(offset + np.dot(strides, grid), p.ravel()):
        return offset, strides
    return None


def from_positions(a, p):
    """The elements numbered p of Array a, shaped like p: a view when strides describe them,
    else one GATHER."""
    p = np.asarray(p)
    rec = a._rec
    if p.ndim == 0:
        return _make(rec, a._first + int(p))
    if p.size == 0:
        return Array(rec, 0, p.shape)
    if p.size > _MAX_VARS - lib.tp_n_vars(rec._p):   # refused before _affine's big arrays
        check(lib.TP_ETOOBIG, "ad.Array indexing")
    aff = _affine(p)
    if aff is not None:
        return strided(rec, a._first + aff[0], p.shape, aff[1])
    return _record(rec, _GATHER, indices(rec, p), p.shape,
                   [(a._first, _shape_id(rec, (_size(a),), (1,)))])


def indices(rec, words):
    """A new entry of the tape's index table: its id."""
    w = np.ascontiguousarray(np.ravel(words), dtype=np.int64)
    buf = ffi.from_buffer("int64_t[]", w) if w.size else ffi.NULL
    return check(lib.tp_indices(rec._p, buf, w.size), "ad.Array indexing")


# ---- keys ---------------------------------------------------------------------------------------
def index_key(obj):
    """One element of an index as NumPy takes it. Active values are refused; an object with
    __array__ (a comparison's condition, say) becomes its NumPy array: a boolean mask."""
    if type(obj) is Var or type(obj) is Array:
        raise TypeError("indexing an ad.Array by Vars or Arrays (active indices) is not "
                        "supported: index by integers, slices, integer arrays or NumPy "
                        "boolean masks")
    plain = (int, slice, np.integer, np.ndarray, list)
    if obj is None or obj is Ellipsis or isinstance(obj, plain):
        return obj
    if hasattr(obj, "__array__"):
        return np.asarray(obj)
    return obj


def _key(key):
    """key as a tuple ending in an Ellipsis (so that an all-integer key selects a 0-d view)."""
    key = tuple(index_key(k) for k in (key if type(key) is tuple else (key,)))
    return key if any(k is Ellipsis for k in key) else key + (Ellipsis,)


def getitem(a, key):
    """a[key]: NumPy's basic and advanced indexing."""
    if (type(key) is int or isinstance(key, np.integer)) and a.shape and \
            -a.shape[0] <= key < a.shape[0]:             # a row: its variables, no operation
        i, inner = int(key) % a.shape[0], a.shape[1:]
        if not inner:
            return _make(a._rec, a._first + i)
        return Array(a._rec, a._first + i * math.prod(inner), inner)
    if type(key) is tuple and len(key) == len(a.shape) and all(type(k) is int for k in key):
        at = 0                                   # an element: its variable
        for k, n in zip(key, a.shape):
            if not -n <= k < n:
                break
            at = at * n + k % n
        else:
            return _make(a._rec, a._first + at)
    key = _key(key)
    return select(a, lambda b: b[key])


# ---- functional updates -------------------------------------------------------------------------
def update(a, key, v, add):
    """A new Array: a with the elements key selects set to v (add: increased by v; repeated
    positions accumulate). Setting a position twice keeps the last value, as NumPy does."""
    p = positions(a)[_key(key)]
    v = activate(v)
    rec = _rec_of((a, v))
    first, vshape, _ = _operand(rec, v, "ad.Array update")
    vsize = math.prod(vshape)
    while len(vshape) > p.ndim and vshape[0] == 1:   # NumPy drops leading unit axes of v
        vshape = vshape[1:]
    try:
        src = np.broadcast_to(np.arange(vsize, dtype=np.int64).reshape(vshape), p.shape)
    except ValueError:
        raise ValueError(f"could not broadcast the value of shape {vshape} to the indexed "
                         f"shape {p.shape}") from None
    pos, src = p.ravel(), src.ravel()
    if pos.size == 0:
        return a
    if not add:                                  # the last write to each position wins
        last = pos.size - 1 - np.unique(pos[::-1], return_index=True)[1]
        pos, src = pos[last], src[last]
    blocks = [(a._first, _shape_id(rec, (_size(a),), (1,))),
              (first, _shape_id(rec, (vsize,), (1,)))]
    entry = indices(rec, np.concatenate([pos, src]))
    return _record(rec, _SCATTER_ADD if add else _SCATTER, entry, a.shape, blocks)


def activate(x):
    """x with its Vars packed into an ad.Array (a Var, or a sequence or object array holding
    Vars); anything else unchanged."""
    if type(x) is Var or isinstance(x, (list, tuple)) or \
            (type(x) is np.ndarray and x.dtype == object):
        return asarray(x)
    return x


def setitem(a, key, v):
    """a[key] = v: a refers to the updated block from now on (other references do not change)."""
    z = update(a, key, v, add=False)
    a._first = z.index if type(z) is Var else z._first


class At:
    """a.at[key]: JAX's spelling of functional updates."""
    __slots__ = ("_a",)

    def __init__(self, a):
        self._a = a

    def __getitem__(self, key):
        return _AtKey(self._a, key)


class _AtKey:
    __slots__ = ("_a", "_key")

    def __init__(self, a, key):
        self._a, self._key = a, key

    def get(self):
        """a[key]"""
        return getitem(self._a, self._key)

    def set(self, v):
        """a with a[key] = v (a repeated position keeps the last value)"""
        return update(self._a, self._key, v, add=False)

    def add(self, v):
        """a with a[key] += v, repeated positions accumulating (as np.add.at)"""
        return update(self._a, self._key, v, add=True)


# ---- NumPy functions: selections of one array ---------------------------------------------------
def _active(a, what):
    """a as an ad.Array (Vars and object arrays of Vars are packed)."""
    a = activate(a)
    if type(a) is not Array:
        raise TypeError(f"numpy.{what} expects an ad.Array")
    return a


def take(a, indices, axis=None, out=None, mode="raise"):
    if out is not None:
        raise TypeError("numpy.take of an ad.Array takes no out= (updates are functional)")
    a, indices = _active(a, "take"), index_key(indices)
    return select(a, lambda b: np.take(b, indices, axis=axis, mode=mode))


def _selection(name):
    fn = getattr(np, name)

    def apply(a, *args, **kwargs):
        return select(_active(a, name), lambda b: fn(b, *args, **kwargs))
    apply.__name__ = name
    apply.__doc__ = f"numpy.{name} of an ad.Array: a view of its variables"
    return apply


def ravel(a, order="C"):
    if order != "C":
        raise TypeError("numpy.ravel of an ad.Array takes order='C' only")
    return _active(a, "ravel").reshape(-1)


def copy(a, *args, **kwargs):
    return _active(a, "copy").copy()


# ---- joining ------------------------------------------------------------------------------------
def _operands(arrays, what):
    items = [activate(x) for x in arrays]
    if not items:
        raise ValueError(f"numpy.{what} needs at least one array to join")
    rec = _rec_of(items)
    return rec, [_operand(rec, x, f"numpy.{what}") for x in items]


def _axis(axis, ndim, what):
    if not -ndim <= axis < ndim:
        raise _AxisError(f"numpy.{what}: axis {axis} is out of bounds for arrays of dimension "
                         f"{ndim}")
    return axis % ndim


def concatenate(arrays, axis=0, out=None, dtype=None, casting=None):
    """One PACK of the operands along axis 0; along another axis a second PACK (a transpose)
    puts the elements in C order. Arrays, float arrays, Vars (0-d: refused as NumPy does) mix."""
    if out is not None or dtype not in (None, float, np.float64):
        raise TypeError("numpy.concatenate of ad.Arrays takes no out= or dtype=")
    if axis is None:
        return concatenate([ravel(x) if type(x) is Array else np.ravel(x) for x in arrays])
    rec, ops = _operands(arrays, "concatenate")
    shapes = [s for _, s, _ in ops]
    if any(len(s) == 0 for s in shapes):
        raise ValueError("zero-dimensional arrays cannot be concatenated")
    ax = _axis(axis, len(shapes[0]), "concatenate")
    for s in shapes[1:]:
        s0 = shapes[0]
        if len(s) != len(s0) or s[:ax] + s[ax + 1:] != s0[:ax] + s0[ax + 1:]:
            raise ValueError(f"numpy.concatenate along axis {ax}: shapes {shapes[0]} and {s} "
                             f"differ on another axis")
    out_shape = shapes[0][:ax] + (sum(s[ax] for s in shapes),) + shapes[0][ax + 1:]
    moved = ax and math.prod(shapes[0][:ax]) > 1
    blocks = []
    for first, s, st in ops:
        if not math.prod(s):
            continue
        if moved:                                # axis ax first: pieces follow one another
            s, st = (s[ax],) + s[:ax] + s[ax + 1:], (st[ax],) + st[:ax] + st[ax + 1:]
        blocks.append((first, _shape_id(rec, s, st)))
    if not blocks:
        return Array(rec, 0, out_shape)
    if not moved and _adjacent(ops):             # one run of variables already: no operation
        return Array(rec, ops[0][0], out_shape)
    packed = out_shape if not moved else (out_shape[ax],) + out_shape[:ax] + out_shape[ax + 1:]
    z = _record(rec, _PACK, 0, packed, blocks)
    return select(z, lambda b: np.moveaxis(b, 0, ax)) if moved else z


def _adjacent(ops):
    """The operands are C-contiguous blocks of variables, each right after the one before."""
    at = next((f for f, s, _ in ops if math.prod(s)), 0)
    for first, s, st in ops:
        n = math.prod(s)
        if n and (first != at or first < 0 or st != _contiguous(s)):
            return False
        at += n
    return True


def _expand(x, axis):
    """x (Array, Var, number, array) with a new axis of length 1."""
    x = activate(x)
    if type(x) is Array:
        return x.reshape(x.shape[:axis] + (1,) + x.shape[axis:])
    return np.expand_dims(np.asarray(x, dtype=np.float64), axis)


def stack(arrays, axis=0, out=None, dtype=None, casting=None):
    if out is not None or dtype not in (None, float, np.float64):
        raise TypeError("numpy.stack of ad.Arrays takes no out= or dtype=")
    arrays = [activate(x) for x in arrays]
    shapes = {np.shape(x) for x in arrays}
    if len(shapes) > 1:
        raise ValueError(f"numpy.stack: all arrays must have the same shape; got "
                         f"{' and '.join(str(s) for s in sorted(shapes))}")
    nd = len(shapes.pop()) + 1 if arrays else 1
    ax = _axis(axis, nd, "stack")
    return concatenate([_expand(x, ax) for x in arrays], axis=ax)


def atleast_1d(*arys):
    out = [x if np.ndim(x) >= 1 else x.reshape(1) if type(x) is Array else
           asarray(x).reshape(1) if type(x) is Var else np.atleast_1d(x) for x in arys]
    return out[0] if len(out) == 1 else out


def atleast_2d(*arys):
    out = []
    for x in arys:
        x = atleast_1d(x)
        out.append(x if np.ndim(x) >= 2 else x.reshape(1, -1) if type(x) is Array
                   else np.atleast_2d(x))
    return out[0] if len(out) == 1 else out


def hstack(tup, dtype=None, casting=None):
    arrs = [atleast_1d(x) for x in tup]
    return concatenate(arrs, axis=0 if arrs and np.ndim(arrs[0]) == 1 else 1, dtype=dtype)


def vstack(tup, dtype=None, casting=None):
    return concatenate([atleast_2d(x) for x in tup], axis=0, dtype=dtype)


FUNCTIONS = {np.take: take, np.concatenate: concatenate, np.stack: stack, np.hstack: hstack,
             np.vstack: vstack, np.ravel: ravel, np.copy: copy, np.atleast_1d: atleast_1d,
             np.atleast_2d: atleast_2d,
             **{getattr(np, n): _selection(n) for n in (
                 "swapaxes", "moveaxis", "expand_dims", "squeeze", "broadcast_to", "flip",
                 "fliplr", "flipud", "roll", "diagonal")}}

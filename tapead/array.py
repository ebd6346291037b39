"""ad.Array: an active float64 array, a contiguous block of tape variables with a shape.

One array operation records one block operation (csrc/tape.h, "Block operations") however many
elements it has: MAP (an elementwise op with NumPy broadcasting, comparisons and where too),
REDUCE (sum over axes), AMAX, AMIN, PROD, MATMUL and PACK (copies: transpose, slicing,
ad.asarray of scattered Vars); indexing, updates and joining are tapead/array_index.py's
(GATHER, SCATTER, SCATTER_ADD). Its elements are ordinary variables: a[i] of a 1-d Array is the
Var of that variable, at no cost. Comparisons, where, max/min/prod and clip live in
tapead/array_ops.py, the matmul forms (einsum, inner, outer, norm) in tapead/array_linalg.py.
"""
import functools
import math
import operator
import sys

import numpy as np

from . import _fast
from ._core import Op, check, ffi, lib
from .optable import OPS
from .var import Var, _make, _mixed, _number, freeze
from .convert import _described

_MAP, _REDUCE, _PACK = int(Op.MAP), int(Op.REDUCE), int(Op.PACK)
_AMAX, _AMIN, _PROD = int(Op.AMAX), int(Op.AMIN), int(Op.PROD)
_NEG, _ABS, _POW, _SQUARE = int(Op.NEG), int(Op.ABS), int(Op.POW), int(Op.SQUARE)

#: NumPy ufunc -> (scalar op, arity) for MAP: the unary and binary ops with PARTIAL rules
UFUNC_OPS = {u: (int(op), lib.tp_op_arity[op]) for op, row in OPS.items()
             if lib.tp_op_kind[op] == lib.TP_KIND_PARTIAL and lib.tp_op_arity[op] in (1, 2)
             for u in row.ufuncs}


@functools.lru_cache(maxsize=4096)
def _contiguous(shape):
    st, acc = [], 1
    for d in reversed(shape):
        st.append(acc)
        acc *= d
    return tuple(reversed(st))


class Array(_fast.ArrayBase):
    """An active float64 array on a tape: variables first .. first + size - 1 in C order.

    Made by ``t.variables(x)``, ``ad.record(f, x)`` for an array x, ``ad.asarray`` and every
    array operation. Attributes: shape, ndim, size, dtype, value (the values at recording), grad
    (after backward()), T. ``Array(rec, first, shape)``: the fields live in C (ArrayBase,
    csrc/fast_array.h), which also serves a[i] (1-d), a[i, j, ...] (all ints), len() and
    iteration; every other key goes to __getitem__ below."""
    __slots__ = ()
    __array_priority__ = 2000

    ndim = property(lambda self: len(self.shape))
    size = property(lambda self: math.prod(self.shape))
    dtype = property(lambda self: np.dtype(np.float64))
    # T: ArrayBase's (csrc/fast_array.h), a strided view as transpose() makes

    @property
    def tape(self):
        return self._rec.owner()

    def _viewed(self, first="_tsrc"):
        """a pending a.T (csrc/fast_array.h: no PACK recorded yet; first="_tview": recorded
        too): the Array a, else None"""
        src = getattr(self, first)
        return None if src is None else Array(self._rec, src, self.shape[::-1])

    def _values(self):
        if (src := self._viewed()) is not None:
            return src._values().T
        out = np.empty(self.size)
        if self.size:
            check(lib.tp_values(self._rec._p, self._first, self.size,
                                ffi.from_buffer("double[]", out)), "ad.Array.value")
        return out.reshape(self.shape)

    @property
    def value(self):
        """The values at recording (read while recording, they become guards, as Var.value)."""
        return self._value_at(sys._getframe(1))

    def _value_at(self, frame):
        """.value read by the user's code at frame (a pending a.T: a's, transposed)"""
        if (src := self._viewed()) is not None:
            return src._value_at(frame).T
        rec = self._rec
        if not lib.tp_closed(rec._p) and lib.tp_readable(rec._p) and self.size:
            freeze(rec, range(self._first, self._first + self.size), frame, ".value")
        return self._values()

    @property
    def grad(self):
        """The adjoints from the last backward() (None before), shaped like the array."""
        g = self._rec.grads
        if g is None:
            return None
        if (src := self._viewed("_tview")) is not None:   # a.T: the viewed variables' adjoints
            return src.grad.T
        out = np.zeros(self.size)             # variables after backward()'s root: 0
        n = max(0, min(self.size, g.size - self._first))
        out[:n] = g[self._first:self._first + n]
        return out.reshape(self.shape)

    def __repr__(self):
        return f"Array(shape={self.shape}, value={np.array2string(self._values(), precision=6)})"

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of a 0-d ad.Array")
        return self.shape[0]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def tolist(self):
        """Nested lists of the elements' Vars, as ndarray.tolist (a 0-d Array: its Var)."""
        items = [_make(self._rec, self._first + i) for i in range(self.size)]
        for d in reversed(self.shape[1:]):
            items = [items[i:i + d] for i in range(0, len(items), d)]
        return items if self.shape else items[0]

    def __bool__(self):
        raise TypeError("the truth value of an ad.Array is ambiguous; compare its elements "
                        "(a[i] is a Var) or use ad.maximum / ad.minimum")

    def __float__(self):
        raise TypeError("float() would drop the derivative of an ad.Array; use .value for the "
                        "numbers")

    # ---- indexing and views --------------------------------------------------------------------
    def __getitem__(self, key):               # NumPy's indexing: tapead/array_index.py
        if type(key) is int and len(self.shape) == 1 and -self.shape[0] <= key < self.shape[0]:
            return _make(self._rec, self._first + key % self.shape[0])
        return _index.getitem(self, key)

    at = property(lambda self: _index.At(self), doc="a.at[key].set(v) / .add(v) / .get()")

    def copy(self):
        """The same array (Arrays are values: updating one never changes another)."""
        return Array(self._rec, self._first, self.shape)

    def reshape(self, *shape):
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        new = np.empty(self.shape, dtype=np.bool_).reshape(shape).shape   # NumPy's checks
        return Array(self._rec, self._first, new)

    def ravel(self):
        return self.reshape(-1)

    flatten = ravel

    def transpose(self, *axes):
        axes = axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
        if type(self) is Array and self.ndim == 2 and self.size and tuple(axes) in _SWAP2:
            return self.T               # (a matmul operand: read through strides, no copy)
        # (a subclass's .T comes here: csrc/fast_array.h's array_get_T serves Array alone)
        return _index.select(self, lambda b: b.transpose(*axes) if axes else b.T)

    # ---- reductions and products -----------------------------------------------------------------
    def sum(self, axis=None, keepdims=False):
        return reduce_sum(self, axis, keepdims)

    def mean(self, axis=None, keepdims=False):
        return mean(self, axis, keepdims)

    def max(self, axis=None, keepdims=False):
        return reduce_max(self, axis, keepdims)

    def min(self, axis=None, keepdims=False):
        return reduce_min(self, axis, keepdims)

    def prod(self, axis=None, keepdims=False):
        return reduce_prod(self, axis, keepdims)

    def clip(self, a_min=None, a_max=None):
        return _ops.clip(self, a_min, a_max)

    def dot(self, other):
        return dot(self, other)

    def __matmul__(self, other):
        return matmul(self, other)

    def __rmatmul__(self, other):
        return matmul(other, self)

    # ---- arithmetic: one MAP each ---------------------------------------------------------------
    def __neg__(self):
        return _map(_NEG, self)

    def __pos__(self):
        return self

    def __abs__(self):
        return _map(_ABS, self)

    # comparisons: one MAP each, giving an array condition (tapead/array_ops.py)
    __lt__ = lambda self, other: _ops.compare(Op.LT, self, other)     # noqa: E731
    __le__ = lambda self, other: _ops.compare(Op.LE, self, other)     # noqa: E731
    __gt__ = lambda self, other: _ops.compare(Op.GT, self, other)     # noqa: E731
    __ge__ = lambda self, other: _ops.compare(Op.GE, self, other)     # noqa: E731
    __eq__ = lambda self, other: _equality(Op.EQ, self, other)        # noqa: E731
    __ne__ = lambda self, other: _equality(Op.NE, self, other)        # noqa: E731
    __hash__ = object.__hash__

    def __setitem__(self, key, v):
        """Functional: self refers to the result. a[c] = v for a comparison c of a's shape and a
        number or Var v is where(c, v, a) (no guard); any other key: tapead/array_index.py."""
        if isinstance(key, _ops.ArrayCond) and key.shape == self.shape and np.ndim(v) == 0:
            new = _ops.where(key, v, self)
            self._first = new.index if type(new) is Var else new._first
            return
        _index.setitem(self, key, v)

    # ---- NumPy protocols ------------------------------------------------------------------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if method != "__call__" or kwargs:
            raise TypeError(_unsupported_call(ufunc, method, kwargs))
        if ufunc is np.matmul:
            return matmul(*inputs)
        if ufunc is np.positive:
            return inputs[0]
        if ufunc in _ops.UFUNCS:
            return _ops.UFUNCS[ufunc](*inputs)
        spec = UFUNC_OPS.get(ufunc)
        if spec is None or spec[1] != len(inputs):
            raise TypeError(f"{_ufunc_name(ufunc)} is not supported on ad.Array (no block rule)"
                            f"{_instead(ufunc.__name__)}; supported ufuncs: "
                            f"{', '.join(sorted(u.__name__ for u in _supported_ufuncs()))}")
        return _map(spec[0], *inputs)

    def __array_function__(self, func, types, args, kwargs):
        fn = _FUNCTIONS.get(func)
        if fn is None:
            raise TypeError(f"{func.__module__}.{func.__name__} is not supported on ad.Array"
                            f"{_instead(func.__name__)}; supported NumPy functions: "
                            f"{', '.join(sorted(f.__name__ for f in _FUNCTIONS))}, and the "
                            f"ufuncs {', '.join(sorted(u.__name__ for u in _supported_ufuncs()))}")
        return fn(*args, **kwargs)


_SWAP2 = ((), (1, 0), (-1, -2), (1, -2), (-1, 0))     # a 2-d transpose's axes


def _equality(op, a, other):
    try:
        return _ops.compare(op, a, other)
    except TypeError:                      # a == None, a == "s": Python's answer, as for a Var
        return NotImplemented


def _ufunc_name(ufunc):
    """numpy.exp for NumPy's own ufuncs; another library's (scipy.special.erf) by its name"""
    return f"numpy.{ufunc.__name__}" if getattr(np, ufunc.__name__, None) is ufunc \
        else f"the ufunc {ufunc.__name__!r}"


# ufunc methods -> what records instead
_METHOD_INSTEAD = {
    "reduce": "np.sum, np.prod, np.max or np.min with axis=",
    "at": "a.at[idx].add(v) / .set(v), functional updates",
    "outer": "np.outer, or broadcasting: a[:, None] * b[None, :]",
    "accumulate": "a loop over the axis (each step one block op)",
}


def _unsupported_call(ufunc, method, kwargs):
    if method == "__call__":
        return (f"{_ufunc_name(ufunc)} with {', '.join(kwargs)}= is not supported on ad.Array "
                f"(results are new Arrays: no out=, where=, dtype=); call it without them")
    return (f"{_ufunc_name(ufunc)}.{method} is not supported on ad.Array; instead: "
            f"{_METHOD_INSTEAD.get(method, 'the plain call on broadcast operands')}")


def _instead(name):
    """'; use ad.erf' when tapead has a function of that name (scipy.special.erf on an Array)"""
    import tapead
    fn = getattr(tapead, name, None)
    return f"; use ad.{name}" if callable(fn) and not isinstance(fn, type) else ""


def _supported_ufuncs():
    return set(UFUNC_OPS) | set(_ops.UFUNCS) | {np.matmul, np.positive}


def _binop(op, reflected=False):
    op = int(op)
    if reflected:
        return lambda self, other: _map(op, other, self)
    return lambda self, other: _map(op, self, other)


for _name, _op in (("add", Op.ADD), ("sub", Op.SUB), ("mul", Op.MUL), ("truediv", Op.DIV),
                   ("pow", Op.POW)):
    setattr(Array, f"__{_name}__", _binop(_op))
    setattr(Array, f"__r{_name}__", _binop(_op, True))


# ---- operands and recording ------------------------------------------------------------------------
def _rec_of(items):
    """The recording of the Vars and Arrays among items (TapeError for two tapes), or None."""
    rec = None
    for a in items:
        if type(a) is Array or type(a) is Var:
            if rec is None:
                rec = a._rec
            elif a._rec is not rec:
                _mixed()
    return rec


_shape_id = _fast.shape       # (rec, dims, strides): the id in the tape's shape table


def _operand(rec, a, what):
    """(first code, shape, strides) of an operand: an Array, a Var, a number or a float array."""
    if type(a) is Array:
        return a._first, a.shape, _contiguous(a.shape)
    if type(a) is Var:
        return a.index, (), ()
    if isinstance(a, _ops.ArrayCond):           # a comparison's 0s and 1s (no guard)
        return _operand(rec, a._arr, what)
    c = _number(a)
    if c is not None:
        code = ffi.new("int32_t *")
        check(lib.tp_const(rec._p, c, code), what)
        return code[0], (), ()
    arr = np.asarray(a)
    if arr.dtype == object and all(type(e) is Var or _number(e) is not None for e in arr.flat):
        return _operand(rec, asarray(arr), what)
    if arr.dtype.kind not in "biuf":       # (None is no number: NumPy's float arrays raise too)
        raise TypeError(f"{what} expects ad.Arrays, Vars, real numbers or arrays of them; got "
                        f"{_described(a)}")
    flat = np.ascontiguousarray(arr, dtype=np.float64).ravel()
    first = ffi.new("int32_t *")
    check(lib.tp_const_block(rec._p, ffi.from_buffer("double[]", flat), flat.size, first), what)
    return (first[0] if flat.size else 0), arr.shape, _contiguous(arr.shape)


def _record(rec, op, attr, shape, blocks, array=False):
    """One block op; blocks: (first, shape id) per operand. Returns the Array of its results
    (a Var for shape (), as NumPy gives a scalar, unless array); of size 0, no operation."""
    return _fast.rec_block(rec, op, attr, shape, blocks, array)


def _broadcast_strides(shape, strides, out):
    """Strides of an operand of `shape` read over the broadcast shape `out` (0: repeated)."""
    lead = len(out) - len(shape)
    return tuple(0 if i < lead or shape[i - lead] == 1 != out[i] else strides[i - lead]
                 for i in range(len(out)))


def _map(op, *args, array=False):
    """MAP of scalar op over args (1 to 3 operands) with NumPy broadcasting."""
    rec = _rec_of(args)
    if rec is None:
        return NotImplemented
    if op == _POW and len(args) == 2 and type(args[1]) is not Var and _number(args[1]) == 2.0:
        op, args = _SQUARE, args[:1]       # a ** 2: SQUARE, as for a Var (no pow() per element)
    what = _MAP_NAMES[op]
    ops = [_operand(rec, a, what) for a in args]
    out = _broadcast_shape([s for _, s, _ in ops])
    blocks = [(f, _shape_id(rec, out, st if s == out else _broadcast_strides(s, st, out)))
              for f, s, st in ops]
    return _record(rec, _MAP, op, out, blocks, array)


_MAP_NAMES = {int(o): f"ad.Array {o.name.lower()}" for o in Op}   # (what its errors name)


def _broadcast_shape(shapes):
    """NumPy's broadcast shape of the operands' shapes (at once when they agree, or are ())."""
    given = [s for s in shapes if s]
    if all(s == given[0] for s in given):
        return given[0] if given else ()
    try:
        return np.broadcast_shapes(*shapes)
    except ValueError:
        raise ValueError(f"operands could not be broadcast together with shapes "
                         f"{' '.join(str(s) for s in shapes)}") from None


def asarray(a):
    """An ad.Array from an Array, a Var, or a (nested) sequence or object array of Vars and
    numbers: the Vars' variables themselves when they are consecutive, else one PACK operation.
    Without any Var, a float64 ndarray."""
    if type(a) is Array:
        return a
    if type(a) is Var:
        return Array(a._rec, a.index, ())
    arr = np.asarray(a, dtype=object)
    items = list(arr.flat)
    rec = _rec_of(items)
    if rec is None:
        return np.asarray(arr, dtype=np.float64)
    runs = []                              # [first, length, is_var] runs of the flat items
    consts = []
    for e in items:
        if type(e) is Var:
            if runs and runs[-1][2] and runs[-1][0] + runs[-1][1] == e.index:
                runs[-1][1] += 1
            else:
                runs.append([e.index, 1, True])
        else:
            c = _number(e)
            if c is None:
                raise TypeError(f"ad.asarray expects Vars and real numbers; got "
                                f"{type(e).__name__}")
            if runs and not runs[-1][2]:
                runs[-1][1] += 1
            else:
                runs.append([len(consts), 1, False])
            consts.append(c)
    if len(runs) == 1 and runs[0][2]:
        return Array(rec, runs[0][0], arr.shape)
    blocks = []
    for first, n, is_var in runs:
        if not is_var:
            first = _operand(rec, np.array(consts[first:first + n]), "ad.asarray")[0]
        blocks.append((first, _shape_id(rec, (n,), (1,))))
    return _record(rec, _PACK, 0, arr.shape, blocks)


# ---- reductions, products and NumPy functions --------------------------------------------------------
def _as_array(a, what):
    if type(a) is not Array:
        a = asarray(a) if type(a) is Var or np.asarray(a, dtype=object).dtype == object else a
    if type(a) is not Array:
        raise TypeError(f"{what} expects an ad.Array")
    return a


def _axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    out = set()
    for a in (axis if isinstance(axis, tuple) else (axis,)):
        if isinstance(a, bool):            # an int to operator.index, not to NumPy
            raise TypeError(f"'bool' object cannot be interpreted as an integer (axis {axis!r})")
        a = operator.index(a)              # (TypeError for a float or a string, as NumPy)
        if not -ndim <= a < ndim:
            raise _AxisError(f"axis {a} is out of bounds for an ad.Array of dimension {ndim}")
        if a % ndim in out:
            raise ValueError(f"duplicate value in 'axis': {axis}")
        out.add(a % ndim)
    return tuple(sorted(out))


def _reduce(op, what, a, axis, keepdims, kwargs):
    """One REDUCE, AMAX, AMIN or PROD of a over axis (an int, a tuple, None: all), recorded by
    _fast.reduce (csrc/fast_array.h), which takes an Array and axes in range."""
    if type(a) is Array and not kwargs:
        z = _fast.reduce(op, a, axis, keepdims)
        if z is not NotImplemented:
            return z
    if kwargs:
        raise TypeError(f"numpy.{what} of an ad.Array takes axis and keepdims only; got "
                        f"{', '.join(kwargs)}")
    a = _as_array(a, what)
    axes = _axes(axis, a.ndim)
    if op in (_AMAX, _AMIN) and any(a.shape[d] == 0 for d in axes):
        raise ValueError(f"zero-size array to reduction operation {what} which has no "
                         f"identity (shape {a.shape}, axis {axis})")
    z = _fast.reduce(op, a, axes, keepdims)
    if z is NotImplemented:                # (axes in range: only an Array of 64 axes is left)
        raise ValueError(f"numpy.{what}: ad.Array operations take arrays of at most 32 axes; "
                         f"got {a.ndim}")
    return z


def reduce_sum(a, axis=None, keepdims=False, **kwargs):
    """Sum over axis (None: all), one REDUCE operation."""
    return _reduce(_REDUCE, "sum", a, axis, keepdims, kwargs)


def reduce_max(a, axis=None, keepdims=False, **kwargs):
    """Max over axis, one AMAX: the derivative split evenly among tied elements (as JAX)."""
    return _reduce(_AMAX, "max", a, axis, keepdims, kwargs)


def reduce_min(a, axis=None, keepdims=False, **kwargs):
    """Min over axis, one AMIN: the derivative split evenly among tied elements (as JAX)."""
    return _reduce(_AMIN, "min", a, axis, keepdims, kwargs)


def reduce_prod(a, axis=None, keepdims=False, **kwargs):
    """Product over axis, one PROD (exact derivatives with zeros: no division)."""
    return _reduce(_PROD, "prod", a, axis, keepdims, kwargs)


def mean(a, axis=None, keepdims=False, **kwargs):
    """Mean over axis: the sum divided by the count (a REDUCE and a MAP)."""
    a = _as_array(a, "mean")
    n = math.prod(a.shape[d] for d in _axes(axis, a.ndim))
    return reduce_sum(a, axis, keepdims, **kwargs) / float(n)


def matmul(a, b):
    """a @ b with NumPy's rules: matrix·matrix, matrix·vector, vector·matrix, vector·vector and
    leading batch axes (broadcast), one MATMUL."""
    rec = _rec_of((a, b))
    if rec is None:
        return NotImplemented
    (fa, sa, ta), (fb, sb, tb) = (_matmul_operand(rec, x) for x in (a, b))
    return _fast.matmul(rec, fa, sa, fb, sb, ta, tb)      # the rules: csrc/fast_array.h


def _matmul_operand(rec, x):
    """(first, shape, transposed): a pending a.T reads a's block through transposed strides"""
    if type(x) is Array and x._rec is rec and (src := x._tsrc) is not None:
        return src, x.shape, True
    return _operand(rec, x, "matmul")[:2] + (False,)


def transpose(a, axes=None):
    return _as_array(a, "transpose").transpose(*(() if axes is None else (axes,)))


def reshape(a, shape, order="C"):
    if order != "C":
        raise TypeError("numpy.reshape of an ad.Array takes order='C' only")
    return _as_array(a, "reshape").reshape(shape)


_FUNCTIONS = {np.sum: reduce_sum, np.mean: mean, np.matmul: matmul,
              np.max: reduce_max, np.amax: reduce_max, np.min: reduce_min, np.amin: reduce_min,
              np.prod: reduce_prod,
              np.transpose: transpose, np.reshape: reshape,
              np.shape: lambda a: a.shape, np.ndim: lambda a: a.ndim,
              np.size: lambda a: a.size}


# ---- the matmul backend ---------------------------------------------------------------------------
_BLAS = {"backend": "builtin", "name": "tapead's blocked C kernel (csrc/matmul.c)"}


def _find_dgemm():
    """The address and signature of SciPy's BLAS dgemm (scipy.linalg.cython_blas), or None."""
    try:
        import ctypes
        from scipy.linalg import cython_blas
        cap = cython_blas.__pyx_capi__["dgemm"]
    except (ImportError, KeyError, AttributeError):
        return None
    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    get_ptr = ctypes.pythonapi.PyCapsule_GetPointer
    get_ptr.restype, get_ptr.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    sig = get_name(cap)
    text = sig.decode() if sig else ""
    # void (char *, char *, int *, int *, int *, d *, d *, int *, d *, int *, d *, d *, int *):
    # LP64 (32-bit int) dimensions, as csrc/matmul.c calls it
    if not text.startswith("void (") or text.count("int *") != 6 or text.count(",") != 12:
        return None
    return get_ptr(cap, sig), text


def _use_blas(on=True):
    """Matmul through SciPy's BLAS dgemm (on, when found) or the built-in kernel; the backend."""
    found = _find_dgemm() if on else None
    lib.tp_set_dgemm(ffi.cast("void *", found[0]) if found else ffi.NULL)
    if found:
        _BLAS.update(backend="blas", name="scipy.linalg.cython_blas.dgemm", signature=found[1])
    else:
        _BLAS.clear()
        _BLAS.update(backend="builtin", name="tapead's blocked C kernel (csrc/matmul.c)")
    return blas_info()


def blas_info():
    """The matrix-multiply backend of ad.Array's matmul: {"backend": "blas" or "builtin",
    "name": ..., "signature": the dgemm capsule's C signature (BLAS)}."""
    return dict(_BLAS)


_AxisError = getattr(getattr(np, "exceptions", np), "AxisError", ValueError)
_use_blas(True)
from . import array_index as _index  # noqa: E402  (indexing, updates and joining use this module)
_FUNCTIONS.update(_index.FUNCTIONS)
_fast.array_type(Array)      # C slots for a[i], len(a), iteration; __getitem__ the fallback
del _name, _op

from . import array_ops as _ops, array_linalg as _linalg   # noqa: E402  (they build on Array)

dot = _linalg.dot
_FUNCTIONS.update(_ops.FUNCTIONS)
_FUNCTIONS.update(_linalg.FUNCTIONS)


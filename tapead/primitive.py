"""User-defined primitives (docs/API.md; the seed document: "for non-trivial operations, one needs to
implement a backward() function").

    @ad.primitive
    def gammaln(x):                       # k scalars in (or one 1-d array), a scalar or array out
        return scipy.special.gammaln(x)

    @gammaln.defjvp
    def _(x, v):                          # x, v: tuples of k floats (one array for array input)
        return scipy.special.digamma(x[0]) * v[0]

    @gammaln.defvjp
    def _(x, w):                          # w shaped like the output; returns k numbers
        return (scipy.special.digamma(x[0]) * w,)

Batched replays (batch=True) call a primitive made with ``vectorized=True`` once per tile of
points: its function and rules then also take a leading axis of B points (k arrays of shape
(B,), or one (B, k) array; v and w likewise) and return it ((B,) or (B, n); a vjp rule k arrays
of shape (B,), or a (B, k) array) -- NumPy ufuncs and scipy.special do. Any other primitive is
called once per point. Either way each point gets what a one-point replay gives it, as far as
the function gives the same numbers for a batch as for one point.

On Vars a primitive is recorded as one tape operation, a CALL writing its n outputs as n
consecutive variables; the C sweeps call its function and rules back through tp_py_call. An exception a rule raises
comes out of the sweep as that exception, and the tape stays usable.

The C tape holds a primitive by a small integer id. The registry maps ids to weak references;
the recordings that used a primitive hold it strongly (_users), so a primitive, and whatever
its functions capture, is freed once it and every recording using it are gone, and its ids are
used again. Saved tapes name their primitives instead (ids are per process): every live
primitive is also registered under its name (named(), by_name()), and saving or loading a tape
that calls a name held by several live primitives is an error.
"""
import functools
import itertools
import reprlib
import threading
import weakref

import numpy as np

from . import _core
from ._core import check, ffi, lib
from .convert import as_float_array as _as_float_array
from .var import Var, _make, _number, operand_codes

_registry = {}                     # id -> (weak reference to the Primitive, takes an array)
_free = []                         # ids of primitives that are gone, to use again
_new_ids = itertools.count()
_users = weakref.WeakKeyDictionary()   # recording -> the primitives recorded on it
_lock = threading.Lock()           # one id per (primitive, array) even across threads
_pending = threading.local()       # the exception a rule raised in this thread's sweep
_by_name = {}                      # name -> WeakSet of the live primitives of that name


class Primitive:
    """A function of k scalars or of one 1-d array, with derivative rules (jvp and/or vjp) in
    NumPy. Plain numbers in: plain result out. Vars in: one recorded tape operation."""

    def __init__(self, fun, jvp=None, vjp=None, name=None, vectorized=False):
        self.fun, self.jvp_rule, self.vjp_rule = fun, jvp, vjp
        self.vectorized = bool(vectorized)
        self._ids = {}             # takes an array -> registry id
        self._ref = None           # the registry's weak reference to self
        self.name = name or getattr(fun, "__name__", "primitive")
        functools.update_wrapper(self, fun, updated=())

    @property
    def name(self):
        """The primitive's name: in messages, and how saved tapes refer to it (ad.loads finds
        it by this name among the live primitives)."""
        return self._name

    @name.setter
    def name(self, name):
        if not isinstance(name, str):
            raise TypeError(f"a primitive's name is a str, not {type(name).__name__}")
        with _lock:
            old = self.__dict__.get("_name")
            if old is not None and old in _by_name:
                _by_name[old].discard(self)
            self._name = name
            _by_name.setdefault(name, weakref.WeakSet()).add(self)

    def defjvp(self, rule):
        """Set the forward rule: rule(x, v) -> y_dot, shaped like the output."""
        self.jvp_rule = rule
        return rule

    def defvjp(self, rule):
        """Set the reverse rule: rule(x, w) -> x_bar, one number per input."""
        self.vjp_rule = rule
        return rule

    def __repr__(self):
        return f"<tapead.primitive {self.name}>"

    # copy.copy, copy.deepcopy (and pickle): a copy is a primitive of its own, with its own ids,
    # so changing its rules never reaches tapes recorded with the original, nor the other way
    def __getstate__(self):
        state = dict(self.__dict__)
        del state["_ids"], state["_ref"]
        return state

    def __setstate__(self, state):
        name = state.pop("_name", None) or "primitive"
        self.__dict__.update(state)
        self._ids, self._ref = {}, None
        self.name = name

    def __call__(self, *args):
        array = len(args) == 1 and np.ndim(args[0]) >= 1
        if array and np.ndim(args[0]) != 1:
            raise ValueError(f"primitive {self.name} takes k scalars or one 1-d array; got an "
                             f"array of shape {np.shape(args[0])}")
        items = list(np.asarray(args[0], dtype=object)) if array else list(args)
        owner = next((a for a in items if type(a) is Var), None)
        if owner is None:
            return self.fun(*args)
        rec = owner._rec
        codes = operand_codes(rec, items, f"primitive {self.name}")
        values = [a._value if type(a) is Var else _number(a) for a in items]
        y, scalar = self._outputs(np.array(values, dtype=np.float64), array)
        _users.setdefault(rec, set()).add(self)          # the recording keeps self alive
        z = check(lib.tp_rec_call(rec._p, self._id(array), codes, len(codes),
                                  ffi.from_buffer("double[]", y), y.size), self.name)
        if scalar:
            return _make(rec, z)
        out = np.empty(y.size, dtype=object)
        for j in range(y.size):
            out[j] = _make(rec, z + j)
        return out

    def _id(self, array):
        i = self._ids.get(array)
        if i is None:
            with _lock:
                i = self._ids.get(array)
                if i is None:
                    if self._ref is None:
                        self._ref = weakref.ref(self, _release(self._ids))
                    i = _free.pop() if _free else next(_new_ids)
                    _registry[i] = (self._ref, array)
                    self._ids[array] = i
        return i

    def _args(self, x, array):
        return (x,) if array else tuple(float(e) for e in x)

    def _outputs(self, x, array):
        """f at x as a flat float64 array, and whether f gives a scalar."""
        y = self.fun(*self._args(x, array))
        scalar = np.ndim(y) == 0
        y = np.atleast_1d(floats(y, self, "function"))
        if y.ndim != 1 or y.size == 0:
            raise ValueError(f"primitive {self.name} must return a number or a non-empty 1-d "
                             f"array; got shape {np.shape(y)}")
        return np.ascontiguousarray(y), scalar

    def _rule(self, which):
        rule = self.jvp_rule if which == "jvp" else self.vjp_rule
        if rule is None:
            other = "reverse mode (vjp, gradient, jacobian(mode='reverse'))" if which == "jvp" \
                else "forward mode (jvp, jacobian(mode='forward'))"
            raise TypeError(f"primitive {self.name} has no {which} rule: give one with "
                            f"@{self.name}.def{which} (or {which}=...), or use {other}")
        return rule


def primitive(fun=None, *, jvp=None, vjp=None, name=None, vectorized=False):
    """Register fun (of k scalars or one 1-d array; a number or 1-d array out) with its
    derivative rules as a tapead operation. Usable as @ad.primitive or
    ad.primitive(fun, jvp=..., vjp=...). Rules: jvp(x, v) -> y_dot; vjp(x, w) -> x_bar, with x
    and v as a tuple of floats (k scalars) or an array (one array input). vectorized=True: fun
    and the rules also take a leading axis of points, and batched replays call them once per
    tile of points (see the module's docstring)."""
    if fun is None:
        return lambda f: Primitive(f, jvp, vjp, name, vectorized)
    return Primitive(fun, jvp, vjp, name, vectorized)


def floats(r, prim, what):
    """What prim's function or rule (what) returned, as a float64 array; TypeError naming both
    for None, strings and other non-numbers (NumPy would make None NaN and parse strings)."""
    try:
        return _as_float_array(r, what)
    except TypeError:
        raise TypeError(f"primitive {prim.name}: its {what} returned {reprlib.repr(r)}; expected "
                        f"real numbers (a number or an array-like of numbers)") from None


def _release(ids, registry=_registry, free=_free):
    """The callback freeing a primitive's ids when it is gone (no lock: it may run in the
    garbage collector while _id holds the lock; dict.pop and list.append are atomic). It
    holds the registry itself: at interpreter exit the module's globals may be gone."""
    def release(_):
        for i in list(ids.values()):
            registry.pop(i, None)
            free.append(i)
    return release


def named(name):
    """The live primitives named name."""
    with _lock:
        return [p for p in _by_name.get(name, ()) if p.name == name]


def by_name(name, what):
    """The one live primitive named name; ValueError, beginning with what, if there is none or
    more than one."""
    ps = named(name)
    if len(ps) == 1:
        return ps[0]
    if not ps:
        raise ValueError(f"{what}: it calls the primitive {name!r}, which is not defined in "
                         f"this process: import the module that defines it (ad.primitive(..., "
                         f"name={name!r})) before loading")
    raise ValueError(f"{what}: {len(ps)} live primitives are named {name!r}, so a saved tape "
                     f"cannot say which one it calls: give each a distinct name "
                     f"(ad.primitive(..., name=...)), or drop the others")


def lookup(i):
    """(Primitive, takes an array) of registry id i, which a live recording holds."""
    ref, array = _registry[i]
    prim = ref()
    if prim is None:                   # cannot happen while a recording holds the primitive
        raise RuntimeError(f"tapead primitive {i} is gone")
    return prim, array


def _keep(exc_type, exc, tb):
    _pending.exc = exc.with_traceback(tb) if exc is not None else exc_type()
    return -1


@ffi.def_extern(onerror=_keep, error=-1)
def tp_py_call(prim, mode, k, x, n, K, inp, out):
    """The C sweeps' way into a primitive: mode 0 evaluates, 1 applies the jvp rule to K
    directions (k x K in, n x K out), 2 the vjp rule to K weight vectors (n x K, k x K)."""
    P, array = lookup(prim)
    xs = np.frombuffer(ffi.buffer(x, 8 * k), dtype=np.float64).copy()
    args = xs if array else tuple(xs.tolist())           # the rules' x
    if mode == 0:
        y, _ = P._outputs(xs, array)
        if y.size != n:
            raise ValueError(f"primitive {P.name} returned {y.size} values where it returned "
                             f"{n} when recorded")
        np.frombuffer(ffi.buffer(out, 8 * n), dtype=np.float64)[:] = y
        return 0
    rows, cols = (k, n) if mode == 1 else (n, k)
    src = np.frombuffer(ffi.buffer(inp, 8 * rows * K), dtype=np.float64).reshape(rows, K)
    dst = np.frombuffer(ffi.buffer(out, 8 * cols * K), dtype=np.float64).reshape(cols, K)
    rule = P._rule("jvp" if mode == 1 else "vjp")
    for j in range(K):
        if not src[:, j].any():                # a zero direction (or padding): a zero result
            dst[:, j] = 0.0
            continue
        if mode == 1:
            d = src[:, j].copy() if array else tuple(src[:, j].tolist())
        else:
            d = src[:, j].copy() if n > 1 else float(src[0, j])
        r = floats(rule(args, d), P, "jvp rule" if mode == 1 else "vjp rule").ravel()
        if r.size != cols:
            what = "jvp rule must return one number per output" if mode == 1 else \
                "vjp rule must return one number per input"
            raise ValueError(f"primitive {P.name}: its {what} ({cols}); got {r.size}")
        dst[:, j] = r
    return 0


@ffi.def_extern(onerror=_keep, error=-1)
def tp_py_call_batch(prim, mode, B, k, x, n, inp, out):
    """The batched sweeps' way into a vectorized primitive: B points at once (x: B x k), mode 0
    evaluates (out B x n), 1 the jvp rule on one direction (B x k in, B x n out), 2 the vjp rule
    on one weight vector (B x n in, B x k out). 1 for a primitive that is not vectorized."""
    P, array = lookup(prim)
    if not P.vectorized:
        return 1
    X = np.frombuffer(ffi.buffer(x, 8 * B * k), dtype=np.float64).reshape(B, k).copy()
    args = (X,) if array else tuple(X[:, i] for i in range(k))
    dst = np.frombuffer(ffi.buffer(out, 8 * B * (k if mode == 2 else n)), dtype=np.float64)
    if mode == 0:
        y = floats(P.fun(*args), P, "function")
        what = "function"
    else:
        rows = k if mode == 1 else n
        src = np.frombuffer(ffi.buffer(inp, 8 * B * rows), dtype=np.float64).reshape(B, rows)
        if mode == 1:
            d = src.copy() if array else tuple(src[:, i].copy() for i in range(k))
        else:
            d = src.copy() if n > 1 else src[:, 0].copy()
        xs = args[0] if array else args
        what = "jvp rule" if mode == 1 else "vjp rule"
        y = floats(P._rule("jvp" if mode == 1 else "vjp")(xs, d), P, what)
        if mode == 2 and not array and y.ndim >= 1 and y.shape[0] == k and y.size == B * k:
            y = y.reshape(k, B).T                      # k arrays of B: one per input
    cols = k if mode == 2 else n
    if y.size != B * cols or (y.ndim and y.shape[0] != B and not (B == 1 and y.size == cols)):
        raise ValueError(f"primitive {P.name} (vectorized): its {what} must give {cols} "
                         f"number(s) for each of the {B} points (shape ({B},) or ({B}, {cols}))"
                         f"; got shape {np.shape(y)}")
    dst[:] = y.reshape(B * cols)
    return 0


def raise_pending():
    """Raise the exception that a primitive's rule raised during this thread's last sweep."""
    exc = getattr(_pending, "exc", None)
    _pending.exc = None
    if exc is None:
        raise RuntimeError("a primitive's rule failed")
    raise exc


_core.raise_callback_error = raise_pending

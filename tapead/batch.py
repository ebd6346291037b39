"""Batched replays: a Tape's replay methods with ``batch=True`` (docs/API.md, "Many points").

x (and v, w) carry a leading axis of B points; results gain the same leading axis. One C call
(csrc/batch.c) sweeps all B points, a tile of points per op; calls over many points are cut into
runs of tiles that threads sweep at once (the GIL is released). Per point the arithmetic is the
one-point sweep's: results equal a loop of one-point calls to the last bit.

Where a branch guard flips at some points, C leaves them out and this module handles them: a tape
of ad.record re-records f at the first such point, sweeps the remaining flipped points on that
recording in one batched call, and so on (each distinct branch records once per call); an
imperative tape raises BranchChanged naming the first point's guard, with ``.points``, the
indices of every point that flipped.

hessian is batched hvp (the recording's colouring, symmetrised as one-point calls do); taylor is a
loop in C over the points of the one-point Taylor sweep. A primitive's Python rules are called
once per point.
"""
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ._core import check, ffi, lib
from .errors import TapeError

_THREADS = os.cpu_count() or 1
_MIN_WORK = 2_000_000            # op-visits x points per thread (~2 ms) before a call splits
_pool, _pool_size = None, 0
_pool_lock = threading.Lock()
_inline = threading.local()      # .on: this thread runs an ad.map task, its calls unsplit


def set_threads(n):
    """Threads a batched call may use (default: the CPU count); returns the previous number."""
    global _THREADS
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"set_threads needs a whole number >= 1, got {n!r}")
    old, _THREADS = _THREADS, n
    return old


def _executor():
    """The threads of batched calls and ad.map: one pool, replaced by a larger one if asked."""
    global _pool, _pool_size
    with _pool_lock:
        if _pool is None or _pool_size < _THREADS:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool_size = max(_THREADS, os.cpu_count() or 1)
            _pool = ThreadPoolExecutor(max_workers=_pool_size, thread_name_prefix="tapead-batch")
        return _pool


def _d(a):
    return ffi.from_buffer("double[]", a) if a is not None else ffi.NULL


# ---- the points and per-point arguments ---------------------------------------------------------
def _float(a, what):
    from .convert import as_float_array
    return as_float_array(a, what)


def _size(shape):
    return math.prod(shape)


def points(rec, x, what="x"):
    """x as a C-contiguous (B, m) array: a leading axis of B points on each input piece."""
    pieces = rec.pieces
    if (type(x) is np.ndarray and len(pieces) == 1 and x.dtype == np.float64 and   # as it is
            x.shape[1:] == pieces[0] and x.ndim >= 1 and x.flags.c_contiguous and x.flags.aligned):
        return x.reshape(x.shape[0], rec.m), x.shape[0]
    if x is None:
        raise ValueError(f"batch=True needs the points {what} (a leading axis of B points)")
    parts = [x] if len(pieces) == 1 else x
    if len(pieces) != 1 and (not isinstance(x, (tuple, list)) or len(x) != len(pieces)):
        raise ValueError(f"expected {what} as a sequence of {len(pieces)} pieces of shapes "
                         f"(B,) + {pieces}, got {type(x).__name__}")
    flat, B = [], None
    for k, (xi, s) in enumerate(zip(parts, pieces)):
        name = what if len(pieces) == 1 else f"{what}[{k}]"
        a = _float(xi, name)
        if a.ndim != len(s) + 1 or a.shape[1:] != s:
            raise ValueError(f"expected {name} of shape (B,) + {s} (a leading axis of B "
                             f"points), got shape {a.shape}")
        if B is not None and a.shape[0] != B:
            raise ValueError(f"expected {name} with a leading axis of B = {B} points (as "
                             f"{what}[0]), got shape {a.shape}")
        B = a.shape[0]
        flat.append(a.reshape(B, _size(s)))
    X = np.concatenate(flat, axis=1) if len(flat) > 1 else flat[0]
    return np.require(X, np.float64, "CA").reshape(B, rec.m), B


def directions(rec, v, B, what="v", k_allowed=True):
    """v shaped like the points, or with a trailing axis of k directions: (B, m, k), k, batched."""
    pieces = rec.pieces
    parts = [v] if len(pieces) == 1 else v
    if len(pieces) != 1 and (not isinstance(v, (tuple, list)) or len(v) != len(pieces)):
        raise ValueError(f"expected {what} as a sequence of {len(pieces)} pieces shaped like x")
    flat, ks = [], set()
    for n_, (vi, s) in enumerate(zip(parts, pieces)):
        name = what if len(pieces) == 1 else f"{what}[{n_}]"
        a = _float(vi, name)
        if a.ndim >= 1 and a.shape[0] != B:
            raise ValueError(f"expected {name} with a leading axis of B = {B} points (as x), "
                             f"got shape {a.shape}")
        if a.shape[1:] == s:
            ks.add(None)
            flat.append(a.reshape(B, _size(s), 1))
        elif k_allowed and a.ndim == len(s) + 2 and a.shape[1:-1] == s and a.shape[-1] >= 1:
            ks.add(a.shape[-1])
            flat.append(a.reshape(B, _size(s), a.shape[-1]))
        else:
            extra = " or (B,) + %s + (k,)" % (s,) if k_allowed else ""
            raise ValueError(f"expected {name} of shape (B,) + {s}{extra}, got shape {a.shape}")
    if len(ks) != 1:
        raise ValueError(f"every piece of {what} needs the same number k of directions")
    k = ks.pop()
    V = np.concatenate(flat, axis=1) if len(flat) > 1 else flat[0]
    return np.require(V, np.float64, "CA"), (k or 1), k is not None


def weights(rec, w, B, what):
    """Output weights: None (one output: 1, shared by the points) or (B,) + y.shape."""
    if w is None:
        if rec.n_out != 1:
            raise ValueError(f"{what} of a tape with {rec.n_out} outputs needs weights w "
                             f"shaped like y {rec.out_shape} (the Hessian of w·y)")
        return np.ones(1), 0
    a = _float(w, "w")
    if a.shape != (B,) + rec.out_shape:
        raise ValueError(f"expected w of shape (B,) + {rec.out_shape} with B = {B} (like y "
                         f"at each point), got shape {a.shape}")
    return np.require(a, np.float64, "CA").reshape(B, rec.n_out), rec.n_out


# ---- running a sweep over the points, in threads ------------------------------------------------
def spread(rec, B, directions, sweep):
    """sweep(lo, hi) over [0, B): one call, or runs of whole tiles on the threads at once."""
    work = B * max(lib.tp_n_ops(rec._p), 1) * (1 + directions)
    n = min(_THREADS, work // _MIN_WORK, B)
    if n <= 1 or not lib.tp_closed(rec._p) or getattr(_inline, "on", False):
        return sweep(0, B)
    tile = lib.tp_batch_tile(rec._p, max(directions, 1), 1)
    size = -(-B // n)
    size = -(-size // tile) * tile
    runs = [(lo, min(lo + size, B)) for lo in range(0, B, size)]
    futures = [_executor().submit(sweep, lo, hi) for lo, hi in runs[1:]]
    try:
        sweep(*runs[0])                 # the calling thread sweeps the first run
    finally:
        for f in futures:               # every run ends before an error is raised
            f.exception()
    for f in futures:
        f.result()


def call(tape, method, x, args=(), kwargs=None):
    """tape.method(x, *args, batch=True, **kwargs)."""
    spec = _methods()[method]
    rec = tape._rec
    rec.need_outputs()
    X, B = points(rec, x)
    job = spec.parse(rec, B, *args, **(kwargs or {}))
    flips = np.zeros(B, dtype=np.uint8)
    out = spec.run(rec, X, job, flips)
    if np.count_nonzero(flips):
        rec = _regroup(tape, spec, rec, X, job, flips, out)
    return spec.shape(rec, out, B, job)


def _methods():
    """batch_methods.METHODS (that module builds on this one: imported at the first call)."""
    global _METHODS
    if _METHODS is None:
        from .batch_methods import METHODS
        _METHODS = METHODS
    return _METHODS


_METHODS = None


def _regroup(tape, spec, rec, X, job, flips, out):
    """Points where a guard flipped: re-record (ad.record) and sweep them on the new recording,
    one recording per distinct branch; or BranchChanged with .points (an imperative tape)."""
    pending = np.flatnonzero(flips)
    if tape._fn is None:
        raise _branch_changed(rec, X[pending[0]], pending)
    while pending.size:
        first = pending[0]
        new = tape._rerecord(rec.split(X[first].copy()))
        if new.pieces != rec.pieces or new.out_shape != rec.out_shape:
            raise TapeError(f"f re-recorded at point {first} (where a branch guard flipped) "
                            f"has inputs {new.pieces} and outputs {new.out_shape}, not "
                            f"{rec.pieces} and {rec.out_shape}: a batched call needs the same "
                            f"shapes at every point")
        flips2 = np.zeros(pending.size, dtype=np.uint8)
        out2 = spec.run(new, np.require(X[pending], requirements="CA"), job.at(pending), flips2)
        if flips2[0]:                                   # f took another branch on that input
            raise _branch_changed(new, X[first], None)
        done = flips2 == 0
        for o, o2 in zip(out, out2):
            o[pending[done]] = o2[done]
        pending = pending[~done]
    return tape._rec


def _branch_changed(rec, x, which):
    """BranchChanged naming the guard that flips at x (this thread replays it once more)."""
    xf = np.require(x, np.float64, "CA")
    y = np.empty(max(rec.n_out, 1))
    rc = lib.tp_forward(rec._p, _d(xf), _d(y))
    if rc != lib.TP_EBRANCH:
        check(rc, "batch")
        return TapeError("a branch guard flipped in a batched replay but not in a replay of "
                         "that point alone")
    e = rec.branch_changed()
    e.guard_message = e.args[0]
    e.points = [] if which is None else [int(i) for i in which]
    _describe(e)
    return e


def _describe(e):
    if e.points:
        e.args = (f"{e.guard_message} [batched call: the guard flips at {len(e.points)} of its "
                  f"points, indices in .points; the first is point {e.points[0]}]",)


def shift_points(e, first):
    """A BranchChanged of a batched call over points first, first+1, ...: .points renumbered
    from 0 (ad.map's chunks)."""
    if first and getattr(e, "points", None):
        e.points = [p + first for p in e.points]
        _describe(e)

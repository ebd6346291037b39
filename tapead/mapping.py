"""ad.map: a batched replay method over many points, in chunks, on threads, an executor or dask.

    ad.map(tape, "gradient", X)                          # threads of this process
    ad.map(tape, "jvp", X, V, executor=pool)             # any concurrent.futures.Executor
    ad.map(tape, "hessian", X, executor=client)          # a dask.distributed Client
    ad.map(tape, "gradient", dask_array)                 # a dask.array result

Each chunk is one batched call (tapead/batch.py) run single-threaded; the chunks run at once.
Chunks hold enough points for about 10 ms of sweeping each (by the tape's size and the method's
directions), unless chunk= says. Threads share the tape; other processes (a process pool, dask
workers) need it pickled: dask gets it once per worker (scattered), a process pool with each
task (unpickled once per process, cached by a key).
"""
import math
import pickle
import threading
import uuid
from concurrent.futures import Executor, ThreadPoolExecutor

import numpy as np

from . import batch as _batch
from ._core import lib
from .errors import BranchChanged
from .batch_methods import METHODS

# per method: its arguments after x that carry a leading axis of points, shaped like x (in
# pieces, as x is) or like y
PER_POINT = {"forward": {}, "gradient": {}, "jvp": {0: "x"}, "vjp": {0: "y"}, "jacobian": {},
             "hvp": {0: "x", 1: "y"}, "hessian": {0: "y"}, "taylor": {0: "x"}}
TASK_SECONDS = 0.01         # a task's sweeping on a thread of this process
REMOTE_SECONDS = 0.05       # in another process: dask's per-task cost is 0.2-1 ms, more when busy
NS_PER_VISIT = 1.5          # sweep time per op-visit and point (bench/test_bench_batch.py)
NS_PER_VISIT_NATIVE = 0.1   # ... in the native code of a compiled tape (forward, gradient, vjp)


def map(tape, method, X, *args, executor=None, chunk=None):   # noqa: A001 - ad.map
    """tape.method(X, *args, batch=True) over the points of X, in chunks run at once (module
    docstring); the result is the batched method's, or a dask.array for a dask.array X."""
    if method not in METHODS:
        raise ValueError(f"ad.map: method must be one of {sorted(METHODS)}, got {method!r}")
    if chunk is not None and (not isinstance(chunk, (int, np.integer)) or chunk < 1):
        raise ValueError(f"ad.map: chunk must be a whole number of points >= 1, got {chunk!r}")
    if _is_dask_array(X):
        from .mapping_dask import map_dask_array
        return map_dask_array(tape, method, X, args, executor, chunk)
    B = _points(tape, X)
    size = int(chunk) if chunk else chunk_size(tape, method, args, B, _remote_workers(executor))
    pieces = [(lo, min(lo + size, B)) for lo in range(0, B, size)] or [(0, 0)]
    multi = len(tape._rec.pieces) > 1
    tasks = [(_at(X, lo, hi, multi), _args_at(tape, method, args, lo, hi))
             for lo, hi in pieces]
    starts = [lo for lo, _ in pieces]
    if executor is None or isinstance(executor, ThreadPoolExecutor):
        pool = _batch._executor() if executor is None else executor
        futures = [pool.submit(_run_inline, tape, method, x, a) for x, a in tasks]
        return _concat(_results(futures, starts))
    if _is_dask_client(executor):
        from .mapping_dask import map_client
        return _concat(_results(map_client(executor, tape, method, tasks), starts))
    if isinstance(executor, Executor):
        blob = picklable(tape, executor)
        key = uuid.uuid4().hex
        futures = [executor.submit(_run_pickled, key, blob, method, x, a) for x, a in tasks]
        return _concat(_results(futures, starts))
    raise TypeError(f"ad.map: executor must be None, a concurrent.futures.Executor or a "
                    f"dask.distributed Client, got {type(executor).__name__}")


def chunk_size(tape, method, args=(), B=None, workers=0):
    """Points per task for about TASK_SECONDS of sweeping (the cost model of the sweeps); with
    workers in other processes, REMOTE_SECONDS, but still two tasks or more per worker."""
    rec = tape._rec
    dirs = {"gradient": 1, "vjp": 1, "jvp": 1, "hvp": 3, "taylor": 2,
            "jacobian": min(rec.m, rec.n_out) * 1.5, "hessian": 3 * rec.m}.get(method, 0)
    if method in ("jvp", "hvp", "vjp") and args:
        k = np.shape(args[0])[-1] if method != "vjp" else 1
        dirs *= max(k if np.ndim(args[0]) > 1 + len(rec.pieces[0]) else 1, 1)
    native = lib.tp_has_native(rec._p) and (method in ("forward", "gradient") or
                                            (method == "vjp" and dirs == 1))
    ns = NS_PER_VISIT_NATIVE if native else NS_PER_VISIT
    per_point = max(lib.tp_n_ops(rec._p), 1) * (1 + dirs) * ns * 1e-9
    size = math.ceil(TASK_SECONDS / per_point)
    if workers:
        share = math.ceil(B / (2 * workers)) if B else size
        size = max(size, min(math.ceil(REMOTE_SECONDS / per_point), share))
    return max(1, size)


def _remote_workers(executor):
    """How many worker processes (threads of them) run the tasks; 0 for threads here."""
    if executor is None or isinstance(executor, ThreadPoolExecutor):
        return 0
    if _is_dask_client(executor):
        info = executor.scheduler_info().get("workers", {})
        return max(1, sum(w.get("nthreads", 1) for w in info.values()))
    return max(1, getattr(executor, "_max_workers", 1))


def picklable(tape, executor):
    """The tape pickled, or TypeError: another process needs it."""
    try:
        return pickle.dumps(tape)
    except Exception as e:                      # noqa: BLE001 - named in the TypeError
        raise TypeError(f"ad.map with {type(executor).__name__} runs in other processes, "
                        f"which needs the tape picklable, and it is not ({e}). Use threads "
                        f"(executor=None or a ThreadPoolExecutor), or a tape that pickles "
                        f"(docs/API.md, saving and loading)") from None


def _results(futures, starts):
    """The chunks' results in order; a BranchChanged's .points counted over all of X."""
    out = []
    for f, first in zip(futures, starts):
        try:
            out.append(f.result())
        except BranchChanged as e:
            _batch.shift_points(e, first)
            raise
    return out


# ---- tasks ----------------------------------------------------------------------------------------
def _run_inline(tape, method, x, args):
    """One chunk: the batched method, on this thread only."""
    _batch._inline.on = True
    try:
        return _batch.call(tape, method, x, args)
    finally:
        _batch._inline.on = False


_cache = {}
_cache_lock = threading.Lock()


def _run_pickled(key, blob, method, x, args):
    """One chunk in another process: the tape unpickled once per process (cached by key)."""
    with _cache_lock:
        tape = _cache.get(key)
        if tape is None:
            _cache.clear()
            tape = _cache[key] = pickle.loads(blob)
    return _run_inline(tape, method, x, args)


# ---- points and chunks -------------------------------------------------------------------------
def _points(tape, X):
    if len(tape._rec.pieces) > 1:
        if not isinstance(X, (tuple, list)) or not X:
            _batch.points(tape._rec, X)                    # its ValueError
        return len(X[0])
    return len(X)


def _at(a, lo, hi, pieces):
    """Points lo .. hi of x or of a per-point argument (in pieces: of each piece)."""
    if a is None:
        return None
    if pieces:
        return type(a)(np.asarray(p)[lo:hi] for p in a)
    return np.asarray(a)[lo:hi]


def _args_at(tape, method, args, lo, hi):
    per, multi = PER_POINT[method], len(tape._rec.pieces) > 1
    return tuple(_at(a, lo, hi, multi and per[i] == "x") if i in per else a
                 for i, a in enumerate(args))


def _concat(results):
    """Chunk results joined along the points axis (tuples element-wise)."""
    first = results[0]
    if isinstance(first, tuple):
        return tuple(_concat([r[i] for r in results]) for i in range(len(first)))
    return np.concatenate(results) if len(results) > 1 else first


def _is_dask_array(X):
    return type(X).__module__.startswith("dask.array")


def _is_dask_client(e):
    return type(e).__name__ == "Client" and type(e).__module__.startswith("distributed")

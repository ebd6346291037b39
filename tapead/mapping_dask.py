"""ad.map with dask (tapead/mapping.py): a dask.distributed Client as the executor, or a
dask.array of points (a dask.array result). Imported only when dask is in use."""
import numpy as np

from . import batch as _batch
from .mapping import PER_POINT, _remote_workers, _run_inline, chunk_size, picklable


def map_client(client, tape, method, tasks):
    """Futures of the tasks run on the Client's workers; the tape is scattered to every worker
    once, and each task finds it there."""
    picklable(tape, client)
    shared = client.scatter(tape, broadcast=True, hash=False)
    return client.map(_run_remote, [x for x, _ in tasks], [a for _, a in tasks],
                      tape=shared, method=method, pure=False)


def _run_remote(x, args, tape, method):
    return _run_inline(tape, method, x, args)


def _client(executor):
    """The Client that computes the graph: the executor, or the default one, or None."""
    if executor is not None:
        return executor
    try:
        from distributed import get_client
        return get_client()
    except (ImportError, ValueError):
        return None


def map_dask_array(tape, method, X, args, executor, chunk):
    """The batched method over a dask.array X of points, lazily: a dask.array (a tuple of them
    where the method returns a tuple), chunked along the points as X after rechunking."""
    import dask
    import dask.array as da
    rec = tape._rec
    if len(rec.pieces) > 1:
        raise TypeError("ad.map over a dask.array takes a tape of one input piece (x one array)")
    piece = rec.pieces[0]
    if X.ndim != len(piece) + 1 or tuple(X.shape[1:]) != piece:
        raise ValueError(f"expected x of shape (B,) + {piece} (a leading axis of B points), "
                         f"got shape {X.shape}")
    B = X.shape[0]
    client = _client(executor)
    workers = _remote_workers(client) if client is not None else 0
    size = int(chunk) if chunk else max(chunk_size(tape, method, args, B, workers),
                                        max(X.chunks[0] or (1,)))
    flat = [X.reshape(B, -1).rechunk((size, -1))]       # every array 2-D: (points, values)
    per, shapes = PER_POINT[method], []
    for i, a in enumerate(args):
        if i in per and a is not None:
            a = da.asarray(a)
            if a.shape[:1] != (B,):
                raise ValueError(f"expected per-point arguments with a leading axis of B = {B} "
                                 f"points, got shape {a.shape}")
            shapes.append((i, a.shape[1:]))
            flat.append(a.reshape(B, -1).rechunk((flat[0].chunks[0], -1)))
    sh = dict(shapes)                  # the result's shapes: the method at the last point swept
    probe = _batch.call(tape, method, rec.x_flat(None).reshape((1,) + piece),
                        tuple(np.zeros((1,) + sh[i]) if i in sh else a for i, a in enumerate(args)))
    leaves = [np.asarray(leaf).shape[1:] for leaf in _leaves(probe)]
    sizes = [int(np.prod(s, dtype=np.int64)) for s in leaves]
    if client is not None:
        picklable(tape, client)
        shared = client.scatter(tape, broadcast=True, hash=False)
    else:
        shared = dask.delayed(tape, traverse=False)

    def block(xb, *blocks, tape):
        it = iter(blocks)
        bargs = tuple(next(it).reshape((len(xb),) + sh[i]) if i in sh else a
                      for i, a in enumerate(args))
        res = _run_inline(tape, method, xb.reshape((len(xb),) + piece), bargs)
        return np.concatenate([np.asarray(v, dtype=np.float64).reshape(len(xb), -1)
                               for v in _leaves(res)], axis=1)
    out = da.map_blocks(block, *flat, tape=shared, dtype=np.float64,
                        chunks=(flat[0].chunks[0], (sum(sizes),)))
    parts, start = [], 0
    for s, n in zip(leaves, sizes):
        parts.append(out[:, start:start + n].reshape((B,) + s))
        start += n
    return _rebuild(probe, iter(parts))


def _leaves(res):
    if isinstance(res, tuple):
        return [leaf for r in res for leaf in _leaves(r)]
    return [res]


def _rebuild(like, parts):
    if isinstance(like, tuple):
        return tuple(_rebuild(r, parts) for r in like)
    return next(parts)

"""The batched replay methods (tapead/batch.py runs them): for each, parse its arguments into a
Job, run the C batched sweep over (B, m) points, and shape the flat results as the one-point
method shapes them, with a leading axis of B points."""
import numpy as np

from ._core import check, ffi, lib
from .hessian import Compressed, plan   # (tapead.hessian is also ad.hessian, the function)
from .batch import directions, spread, weights


def _d(a):
    return ffi.from_buffer("double[]", a) if a is not None else ffi.NULL


def _u(a):
    return ffi.from_buffer("uint8_t[]", a)


class Job:
    """A method's parsed arguments; the names in `per_point` have a leading axis of points."""

    def __init__(self, per_point=(), **fields):
        self.__dict__.update(fields)
        self.per_point = per_point

    def at(self, idx):
        """The job at points idx (for points swept again on another recording)."""
        j = Job(**self.__dict__)
        for name in self.per_point:
            setattr(j, name, np.require(getattr(self, name)[idx], requirements="CA"))
        return j


def _sweep(rec, X, flips, dirs, what, fn, *outs):
    """fn(p, B, x, flips, lo, hi) -> status, over runs of points spread on the threads."""
    p = rec._p

    def run(lo, hi):
        check(fn(p, hi - lo, _d(X[lo:hi]), _u(flips[lo:hi]), lo, hi), what)
    spread(rec, X.shape[0], dirs, run)
    return outs


def _with_flips(rec, X, flips, *outs):
    """Results that need no sweep (no inputs or no outputs): the primal sweep finds the flips."""
    y = np.empty((X.shape[0], rec.n_out))
    _sweep(rec, X, flips, 0, "batch", lambda p, B, x, f, lo, hi:
           lib.tp_forward_batch(p, B, x, _d(y[lo:hi]), f))
    return outs


# ---- the methods --------------------------------------------------------------------------------
class forward:
    def parse(rec, B):
        return Job()

    def run(rec, X, job, flips):
        y = np.empty((X.shape[0], rec.n_out))
        return _sweep(rec, X, flips, 0, "forward", lambda p, B, x, f, lo, hi:
                      lib.tp_forward_batch(p, B, x, _d(y[lo:hi]), f), y)

    def shape(rec, out, B, job):
        return out[0].reshape((B,) + rec.out_shape)


class gradient:
    def parse(rec, B):
        if rec.n_out != 1:
            raise ValueError(f"tape.gradient needs a scalar output; this tape has "
                             f"{rec.n_out} outputs of shape {rec.out_shape} (use vjp or "
                             f"jacobian)")
        return Job()

    def run(rec, X, job, flips):
        g = np.empty((X.shape[0], rec.m))
        return _sweep(rec, X, flips, 1, "gradient", lambda p, B, x, f, lo, hi:
                      lib.tp_vjp_batch(p, B, x, 1, ffi.NULL, 0, ffi.NULL, _d(g[lo:hi]), f), g)

    def shape(rec, out, B, job):
        return rec.shape_x(out[0], lead=(B,))


class jvp:
    def parse(rec, B, v):
        V, k, batched = directions(rec, v, B)
        return Job(("V",), V=V, k=k, batched=batched)

    def run(rec, X, job, flips):
        return _run_k(rec, X, job, flips, "jvp", lib.tp_jvp_batch, job.V, rec.m, rec.n_out)

    def shape(rec, out, B, job):
        y, ydot = out
        ydot = ydot.reshape((B,) + rec.out_shape + (job.k,))
        return y.reshape((B,) + rec.out_shape), (ydot if job.batched else ydot[..., 0])


def _run_k(rec, X, job, flips, name, sweep, dirs, rows_in, rows_out):
    """A k-direction batched sweep (jvp: tangents in, vjp: weights in): per point, dirs has
    rows_in x k entries and the second result rows_out x k; the first result is y."""
    B, k = X.shape[0], job.k
    y, out = np.empty((B, rec.n_out)), np.empty((B, rows_out, k))
    return _sweep(rec, X, flips, k, name, lambda p, b, x, f, lo, hi:
                  sweep(p, b, x, k, _d(dirs[lo:hi]), rows_in * k, _d(y[lo:hi]), _d(out[lo:hi]),
                        f), y, out)


class vjp:
    def parse(rec, B, w):
        from .batch import _float
        a, shape, n = _float(w, "w"), rec.out_shape, rec.n_out
        if a.shape == (B,) + shape:
            k, batched = 1, False
        elif a.ndim == len(shape) + 2 and a.shape[0] == B and a.shape[2:] == shape and \
                a.shape[1] >= 1:
            k, batched = a.shape[1], True
        else:
            raise ValueError(f"expected w of shape (B,) + {shape} or (B, k) + {shape} with "
                             f"B = {B} (like y at each point), got shape {a.shape}")
        W = np.require(a.reshape(B, k, n).transpose(0, 2, 1), np.float64, "CA")
        return Job(("W",), W=W, k=k, batched=batched)

    def run(rec, X, job, flips):
        return _run_k(rec, X, job, flips, "vjp", lib.tp_vjp_batch, job.W, rec.n_out, rec.m)

    def shape(rec, out, B, job):
        y, xbar = out
        y = y.reshape((B,) + rec.out_shape)
        if job.batched:
            return y, rec.shape_x(np.require(xbar.transpose(0, 2, 1), requirements="CA"), lead=(B, job.k))
        return y, rec.shape_x(xbar[..., 0], lead=(B,))


def _dense_only(method, sparse):
    if sparse is not False:
        raise ValueError(f"tape.{method}(..., batch=True) is dense: sparse=True takes one point "
                         f"per call (got sparse={sparse!r})")


class jacobian:
    def parse(rec, B, mode="auto", sparse=False):
        from .tape import _ADJOINT_COST, _MODES
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
        _dense_only("jacobian", sparse)
        if mode == "auto":
            mode = "forward" if rec.m <= _ADJOINT_COST * rec.n_out else "reverse"
        return Job(mode=mode)

    def run(rec, X, job, flips):
        B, m, n = X.shape[0], rec.m, rec.n_out
        J = np.zeros((B, n, m))
        if not (m and n):
            return _with_flips(rec, X, flips, J)
        if job.mode == "forward":             # m unit tangent directions: J[b, o, i]
            return _sweep(rec, X, flips, m, "jacobian", lambda p, b, x, f, lo, hi:
                          lib.tp_jvp_batch(p, b, x, m, ffi.NULL, 0, ffi.NULL, _d(J[lo:hi]), f), J)
        Jt = np.empty((B, m, n))               # n unit adjoint directions: J[b].T
        _sweep(rec, X, flips, n, "jacobian", lambda p, b, x, f, lo, hi:
               lib.tp_vjp_batch(p, b, x, n, ffi.NULL, 0, ffi.NULL, _d(Jt[lo:hi]), f))
        return (np.require(Jt.transpose(0, 2, 1), requirements="CA"),)

    def shape(rec, out, B, job):
        return rec.shape_x(out[0], lead=(B,) + rec.out_shape)


class hvp:
    def parse(rec, B, v, w=None):
        W, ws = weights(rec, w, B, "tape.hvp")
        V, k, batched = directions(rec, v, B)
        return Job(("V", "W") if ws else ("V",), V=V, k=k, batched=batched, W=W, ws=ws)

    def run(rec, X, job, flips):
        B, k, m = X.shape[0], job.k, rec.m
        hv = np.empty((B, m, k))
        return _sweep(rec, X, flips, 2 * k, "hvp", lambda p, b, x, f, lo, hi:
                      lib.tp_hvp_batch(p, b, x, _d(job.W[lo:hi] if job.ws else job.W), job.ws,
                                       k, _d(job.V[lo:hi]), m * k, _d(hv[lo:hi]), f), hv)

    def shape(rec, out, B, job):
        hv = out[0]
        if job.batched:
            return rec.shape_x(hv, lead=(B,), trail=(job.k,))
        return rec.shape_x(hv[..., 0], lead=(B,))


class hessian:
    def parse(rec, B, w=None, sparse=False):
        _dense_only("hessian", sparse)
        W, ws = weights(rec, w, B, "tape.hessian")
        return Job(("W",) if ws else (), W=W, ws=ws)

    def run(rec, X, job, flips):
        B, m = X.shape[0], rec.m
        c = plan(rec)                          # as the one-point hessian: tapead/hessian.py
        H = np.zeros((B, m, m))
        if not m:
            return _with_flips(rec, X, flips, H)

        def hv(k, seeds, out):
            _sweep(rec, X, flips, 2 * k, "hessian", lambda p, b, x, f, lo, hi:
                   lib.tp_hvp_batch(p, b, x, _d(job.W[lo:hi] if job.ws else job.W), job.ws, k,
                                    _d(seeds), 0, _d(out[lo:hi]), f))
        if isinstance(c, Compressed):
            Bm = np.empty((B, m, c.p))
            hv(c.p, c.seeds, Bm)
            H[:, c.rows, c.cols] = (Bm[:, c.rows, c.at_c] + Bm[:, c.cols, c.at_r]) * 0.5
        else:
            hv(m, None, H)
            H = (H + H.transpose(0, 2, 1)) * 0.5
        return (H,)

    def shape(rec, out, B, job):
        H, pieces = out[0], rec.pieces
        if len(pieces) == 1:
            return _block(H, pieces, 0, 0, B)
        return tuple(tuple(_block(H, pieces, i, j, B) for j in range(len(pieces)))
                     for i in range(len(pieces)))


def _block(H, pieces, i, j, B):
    """Block (i, j) of B Hessians over inputs given in pieces, shaped (B,) + pieces[i] +
    pieces[j]."""
    if len(pieces) == 1 and len(pieces[0]) == 1:
        return H
    starts = np.concatenate([[0], np.cumsum([int(np.prod(s, dtype=np.int64)) for s in pieces])])
    return H[:, starts[i]:starts[i + 1], starts[j]:starts[j + 1]].reshape(
        (B,) + pieces[i] + pieces[j])


class taylor:
    def parse(rec, B, v, order=2):
        if not isinstance(order, (int, np.integer)) or isinstance(order, bool) or \
                not 0 <= order <= 1000:
            raise ValueError(f"order must be a whole number from 0 to 1000, got {order!r}")
        V = directions(rec, v, B, k_allowed=False)[0].reshape(B, rec.m)
        return Job(("V",), V=V, order=int(order))

    def run(rec, X, job, flips):
        B, d = X.shape[0], job.order
        y = np.empty((B, rec.n_out, d + 1))
        return _sweep(rec, X, flips, d + 1, "taylor", lambda p, b, x, f, lo, hi:
                      lib.tp_taylor_batch(p, b, x, _d(job.V[lo:hi]), d, _d(y[lo:hi]), f), y)

    def shape(rec, out, B, job):
        return np.require(out[0].transpose(0, 2, 1), requirements="CA").reshape(
            (B, job.order + 1) + rec.out_shape)


METHODS = {c.__name__: c for c in (forward, gradient, jvp, vjp, jacobian, hvp, hessian, taylor)}

"""Tape: imperative recording (``with ad.Tape() as t``), ``ad.record`` and the replay methods.

Every replay is one C call over the flat tape; this module only converts inputs and results.
"""
import threading

import numpy as np

from . import _fast
from ._core import Op, check, ffi, lib
from .errors import TapeError
from .var import Var, _make, _number

_state = threading.local()
_MODES = ("auto", "forward", "reverse")


def _buf(a):
    return ffi.from_buffer("double[]", a)


class Tape:
    """A recording of elementary operations (a Wengert list) that C sweeps replay.

    Record with ``with ad.Tape() as t: x = t.variables(...); ...; t.outputs(y)`` or with
    ``ad.record(f, *args)``; replay with ``tape(x)``, ``jvp``, ``vjp``, ``gradient``,
    ``jacobian``.
    """

    def __init__(self):
        p = lib.tp_new()
        if p == ffi.NULL:
            raise MemoryError("could not allocate a tape")
        self._p = ffi.gc(p, lib.tp_free)
        self._addr = int(ffi.cast("uintptr_t", p))
        self._pieces = []          # shape of each t.variables() call, in order
        self._sizes = []           # and its number of inputs
        self._m = 0
        self._out_shape = None     # None until t.outputs()
        self._n_out = 0
        self._grads = None         # adjoints of every variable from the last backward()
        self._fast = 0             # 1: input is one vector, 2: one scalar (tapead._fast paths)
        self._rerecords = 0

    # ---- recording ---------------------------------------------------------------------------
    def __enter__(self):
        if getattr(_state, "tape", None) is not None:
            raise TapeError("a Tape is already recording in this thread; nested recording is "
                            "not supported (for second derivatives use tape.hessian / hvp)")
        if lib.tp_closed(self._p):
            raise TapeError("this tape has already been recorded; start a new Tape")
        lib.tp_claim(self._p)
        _state.tape = self
        return self

    def __exit__(self, *exc):
        _state.tape = None
        lib.tp_close(self._p)
        return False

    @property
    def recording(self):
        """True while operations may still be recorded on this tape."""
        return not lib.tp_closed(self._p)

    def variables(self, x):
        """Declare inputs: a number gives one Var, an array-like an object ndarray of Var of the
        same shape. Call before the first operation; inputs are numbered in call order."""
        a = _as_float_array(x, "t.variables")
        flat = a.ravel() if a.flags.c_contiguous else np.ascontiguousarray(a).ravel()
        n = flat.size
        first = check(lib.tp_add_inputs(self._p, _buf(flat), n), "t.variables")
        self._pieces.append(a.shape)
        self._sizes.append(n)
        self._m += n
        self._fast = ((1 if a.ndim == 1 else 2 if a.ndim == 0 else 0)
                      if len(self._pieces) == 1 else 0)
        if a.ndim == 0:
            return _make(self, first)
        out = np.empty(n, dtype=object)
        out[:] = _fast.vars(self, self._addr, first, n)
        return out.reshape(a.shape)

    def outputs(self, y):
        """Declare the outputs: a Var, a number, or a (nested) sequence/array of them. Numbers
        become constant outputs; the shape is reproduced by every replay."""
        if type(y) is Var:                        # the common case, kept short
            if y._tape is not self:
                raise TapeError("t.outputs got a Var of another tape")
            check(lib.tp_set_outputs(self._p, [y.index], 1), "t.outputs")
            self._out_shape, self._n_out = (), 1
            return
        else:
            try:
                arr = np.asarray(y, dtype=object)
            except ValueError as e:
                raise ValueError(f"t.outputs expects a Var, a number or a regular (nested) "
                                 f"sequence/array of them: {e}") from None
            shape, items = arr.shape, list(arr.flat)
        idx = np.empty(len(items), dtype=np.int32)
        code = ffi.new("int32_t *")
        for k, e in enumerate(items):
            if type(e) is Var:
                if e._tape is not self:
                    raise TapeError("t.outputs got a Var of another tape")
                idx[k] = e.index
            else:
                c = _number(e)
                if c is None:
                    raise TypeError(f"t.outputs expects Vars and real numbers; got "
                                    f"{type(e).__name__}")
                check(lib.tp_const(self._p, c, code), "t.outputs")
                idx[k] = code[0]
        check(lib.tp_set_outputs(self._p, ffi.from_buffer("int32_t[]", idx), len(items)),
              "t.outputs")
        self._out_shape, self._n_out = shape, len(items)

    def _backward(self, root, seed):
        adj = np.empty(root + 1)
        check(lib.tp_backward(self._p, root, float(seed), _buf(adj)), "backward()")
        self._grads = adj

    def _grad_of(self, index):
        g = self._grads
        if g is None:
            return None
        return float(g[index]) if index < g.size else 0.0

    # ---- inspection --------------------------------------------------------------------------
    def __len__(self):
        return lib.tp_n_ops(self._p)

    @property
    def n_inputs(self):
        return self._m

    @property
    def n_outputs(self):
        return self._n_out

    @property
    def nbytes(self):
        """Bytes of the recorded program: opcodes, operands, constants and outputs."""
        return lib.tp_nbytes(self._p)

    def stats(self):
        counts = np.zeros(lib.tp_n_opcodes, dtype=np.int64)
        check(lib.tp_op_counts(self._p, ffi.from_buffer("int64_t[]", counts)))
        swept = ffi.new("int64_t[5]")
        lib.tp_swept(self._p, swept)
        n = len(self)
        return {
            "ops": n,
            "by_opcode": {Op(k).name.lower(): int(c) for k, c in enumerate(counts) if c},
            "rerecords": self._rerecords,
            "swept": {"primal": swept[0], "tangent": swept[1], "adjoint": swept[2],
                      "second_order": swept[3], "taylor": swept[4]},
            "inputs": self._m,
            "outputs": self._n_out,
            "constants": lib.tp_n_consts(self._p),
            "nbytes": self.nbytes,
            "values_nbytes": 8 * (self._m + n),
        }

    def __repr__(self):
        state = "recording" if self.recording else "closed"
        return (f"<tapead.Tape {state}: {self._m} inputs, {len(self)} operations, "
                f"{self._n_out} outputs>")

    # ---- seeing the tape (tapead/trace.py, tapead/graph.py) -------------------------------------
    def trace(self, x=None, v=None, w=None, **options):
        """The seed's primal, tangent and adjoint traces as text; see tapead.trace.trace."""
        from .trace import trace
        return trace(self, x, v, w, **options)

    def to_dot(self, x=None, **options):
        """Graphviz DOT source of the computational graph; see tapead.graph.to_dot."""
        from .graph import to_dot
        return to_dot(self, x, **options)

    def render(self, path, x=None, **options):
        """Write the graph as SVG/PNG/PDF with Graphviz's `dot`; see tapead.graph.render."""
        from .graph import render
        return render(self, path, x, **options)

    # ---- replay ------------------------------------------------------------------------------
    def _x(self, x, what="x"):
        """The flat float64 input for a replay at x (None: the last point swept)."""
        if self._out_shape is None:
            raise TapeError("this tape has no outputs: call t.outputs(y) while recording "
                            "(or use y.backward() for the recorded point)")
        if x is None:
            last = np.empty(self._m)
            lib.tp_last_x(self._p, _buf(last))
            return last
        pieces = self._pieces
        if len(pieces) == 1:
            a = _as_float_array(x, what)
            if a.shape != pieces[0]:
                raise ValueError(f"expected {what} of shape {pieces[0]}, got shape {a.shape}")
            flat = np.array(a, dtype=np.float64, order="C").ravel()
        else:
            if not isinstance(x, (tuple, list)) or len(x) != len(pieces):
                raise ValueError(f"expected {what} as a sequence of {len(pieces)} pieces of "
                                 f"shapes {pieces}, got {type(x).__name__}"
                                 f"{' of length %d' % len(x) if hasattr(x, '__len__') else ''}")
            parts = []
            for k, (xi, s) in enumerate(zip(x, pieces)):
                a = _as_float_array(xi, f"{what}[{k}]")
                if a.shape != s:
                    raise ValueError(f"expected {what}[{k}] of shape {s}, got shape {a.shape}")
                parts.append(a.ravel())
            flat = np.concatenate(parts) if parts else np.empty(0)
        return flat

    def _shape_y(self, y):
        return float(y[0]) if self._out_shape == () else y.reshape(self._out_shape)

    def _shape_x(self, flat, lead=(), trail=()):
        """Split a flat (lead, m, trail) result into the input structure."""
        out, start = [], 0
        for s, size in zip(self._pieces, self._sizes):
            part = flat[..., start:start + size, :] if trail else flat[..., start:start + size]
            part = part.reshape(lead + s + trail)
            out.append(float(part) if part.ndim == 0 else part)
            start += size
        return out[0] if len(out) == 1 else tuple(out)

    def forward(self, x=None):
        """Outputs at x, in the recorded shape (a float for a scalar output)."""
        y = np.empty(self._n_out)
        if self._fast and x is not None and self._out_shape is not None and \
                _fast.forward(self._addr, self._m, x, y, self._n_out) is None:
            return self._shape_y(y)
        xf = self._x(x)
        check(lib.tp_forward(self._p, _buf(xf), _buf(y)), "forward")
        return self._shape_y(y)

    __call__ = forward

    def jvp(self, x, v):
        """(y, y_dot): forward tangent sweep; v shaped like x, or with a trailing axis of k
        directions (carried in one sweep), giving y_dot with a trailing axis of k."""
        xf = self._x(x)
        vf, k, batched = self._directions(v)
        y, ydot = np.empty(self._n_out), np.empty((self._n_out, k))
        check(lib.tp_jvp(self._p, _buf(xf), k, _buf(vf), _buf(y), _buf(ydot)), "jvp")
        ydot = ydot.reshape(self._out_shape + (k,))
        return self._shape_y(y), (ydot if batched else _scalar(ydot[..., 0]))

    def vjp(self, x, w):
        """(y, x_bar): reverse adjoint sweep; w shaped like y, or with a leading axis of k
        weight vectors (carried in one sweep), giving x_bar with a leading axis of k."""
        xf = self._x(x)
        w = _as_float_array(w, "w")
        n, shape = self._n_out, self._out_shape
        if w.shape == shape:
            k, batched = 1, False
        elif w.ndim == len(shape) + 1 and w.shape[1:] == shape and w.shape[0] >= 1:
            k, batched = w.shape[0], True
        else:
            raise ValueError(f"expected w of shape {shape} (like y) or (k,) + {shape}, got "
                             f"shape {w.shape}")
        wf = np.ascontiguousarray(w.reshape(k, n).T)
        y, xbar = np.empty(n), np.empty((self._m, k))
        check(lib.tp_vjp(self._p, _buf(xf), k, _buf(wf), _buf(y), _buf(xbar)), "vjp")
        if batched:
            return self._shape_y(y), self._shape_x(np.ascontiguousarray(xbar.T), lead=(k,))
        return self._shape_y(y), self._shape_x(xbar[:, 0])

    def gradient(self, x=None):
        """Gradient of the scalar output at x, shaped like x (one primal + one adjoint sweep)."""
        if self._n_out != 1:
            raise ValueError(f"tape.gradient needs a scalar output; this tape has "
                             f"{self._n_out} outputs of shape {self._out_shape} (use vjp or "
                             f"jacobian)")
        g = np.empty(self._m)
        if self._fast and _fast.grad(self._addr, self._m, x, g) is None:
            return g if self._fast == 1 else float(g[0])
        xf = self._x(x)
        check(lib.tp_vjp(self._p, _buf(xf), 1, _ONE, ffi.NULL, _buf(g)), "gradient")
        return self._shape_x(g)

    def jacobian(self, x=None, mode="auto"):
        """Jacobian at x, shaped y.shape + x.shape (a tuple over inputs given in pieces).
        mode: "forward" (m tangent directions), "reverse" (n adjoint directions) or "auto"
        (the cheaper of the two by the cost model)."""
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
        xf = self._x(x)
        m, n = self._m, self._n_out
        if mode == "auto":
            mode = "forward" if m <= n else "reverse"
        J = np.zeros((n, m))
        if m and n and mode == "forward":        # m tangent directions: J[o, i] at o*m + i
            check(lib.tp_jvp(self._p, _buf(xf), m, _buf(np.eye(m)), ffi.NULL, _buf(J)),
                  "jacobian")
        elif m and n:                             # n adjoint directions: J.T[i, o] at i*n + o
            Jt = np.empty((m, n))
            check(lib.tp_vjp(self._p, _buf(xf), n, _buf(np.eye(n)), ffi.NULL, _buf(Jt)),
                  "jacobian")
            J = np.ascontiguousarray(Jt.T)
        return self._shape_x(J, lead=self._out_shape)

    def taylor(self, x, v, order=2):
        """Taylor coefficients y_0 .. y_order of t -> f(x + t·v) at t = 0, shaped
        (order + 1,) + y.shape, from one forward sweep of univariate Taylor propagation (as
        ADOL-C's hos_forward, CppAD's Forward(q)). The k-th directional derivative of f along v
        is k!·y_k."""
        if not isinstance(order, (int, np.integer)) or isinstance(order, bool) or \
                not 0 <= order <= 1000:
            raise ValueError(f"order must be a whole number from 0 to 1000, got {order!r}")
        xf = self._x(x)
        vf, k, batched = self._directions(v)
        if batched:
            raise ValueError("tape.taylor takes one direction v shaped like x")
        y = np.empty((self._n_out, order + 1))
        check(lib.tp_taylor(self._p, _buf(xf), _buf(vf), int(order), _buf(y)), "taylor")
        return np.ascontiguousarray(y.T).reshape((order + 1,) + self._out_shape)

    # ---- second order ------------------------------------------------------------------------
    def _weights(self, w, what):
        """Flat output weights: w shaped like y; None means 1 for a single output."""
        if w is None:
            if self._n_out != 1:
                raise ValueError(f"{what} of a tape with {self._n_out} outputs needs weights w "
                                 f"shaped like y {self._out_shape} (the Hessian of w·y)")
            return np.ones(1)
        a = _as_float_array(w, "w")
        if a.shape != self._out_shape:
            raise ValueError(f"expected w of shape {self._out_shape} (like y), got shape "
                             f"{a.shape}")
        return np.ascontiguousarray(a, dtype=np.float64).ravel()

    def hvp(self, x, v, w=None):
        """Hessian-vector product H·v at x, shaped like x: one forward-over-reverse sweep (the
        tangent of the adjoint sweep). v shaped like x, or with a trailing axis of k directions
        (carried in one sweep). For vector outputs, H is the Hessian of w·y."""
        wf = self._weights(w, "tape.hvp")
        xf = self._x(x)
        vf, k, batched = self._directions(v)
        hv = np.empty((self._m, k))
        check(lib.tp_hvp(self._p, _buf(xf), _buf(wf), k, _buf(vf), ffi.NULL, ffi.NULL,
                         _buf(hv)), "hvp")
        return self._shape_x(hv, trail=(k,)) if batched else self._shape_x(hv[:, 0])

    def hessian(self, x=None, w=None):
        """Hessian at x, shaped x.shape + x.shape (nested tuples over inputs given in pieces):
        the m Hessian-vector directions carried in one vector-mode sweep, then symmetrised so
        that H == H.T to the last bit. For vector outputs, the Hessian of w·y."""
        wf = self._weights(w, "tape.hessian")
        xf = self._x(x)
        m = self._m
        H = np.zeros((m, m))
        if m:
            check(lib.tp_hvp(self._p, _buf(xf), _buf(wf), m, _buf(np.eye(m)), ffi.NULL,
                             ffi.NULL, _buf(H)), "hessian")
            H = (H + H.T) * 0.5
        if len(self._pieces) == 1:
            return _block(H, self._pieces, 0, 0)
        return tuple(tuple(_block(H, self._pieces, i, j) for j in range(len(self._pieces)))
                     for i in range(len(self._pieces)))

    def _directions(self, v):
        """Flat (m, k) tangent directions from v shaped like x, or like x plus a trailing k."""
        pieces = self._pieces
        vs = [v] if len(pieces) == 1 else v
        if len(pieces) != 1 and (not isinstance(v, (tuple, list)) or len(v) != len(pieces)):
            raise ValueError(f"expected v as a sequence of {len(pieces)} pieces shaped like x")
        parts, ks = [], set()
        for k_, (vi, s) in enumerate(zip(vs, pieces)):
            a = _as_float_array(vi, "v")
            if a.shape == s:
                ks.add(None)
                parts.append(a.reshape(-1, 1))
            elif a.ndim == len(s) + 1 and a.shape[:-1] == s and a.shape[-1] >= 1:
                ks.add(a.shape[-1])
                parts.append(a.reshape(-1, a.shape[-1]))
            else:
                raise ValueError(f"expected v{'' if len(pieces) == 1 else '[%d]' % k_} of shape "
                                 f"{s} (like x) or {s} + (k,), got shape {a.shape}")
        if len(ks) != 1:
            raise ValueError("every piece of v needs the same number k of directions")
        k = ks.pop()
        flat = np.ascontiguousarray(np.concatenate(parts) if parts else np.empty((0, k or 1)))
        return flat, (k or 1), k is not None


_ONE = ffi.new("double[1]", [1.0])


def _block(H, pieces, i, j):
    """Block (i, j) of a Hessian over inputs given in pieces, shaped pieces[i] + pieces[j]."""
    sizes = [int(np.prod(s, dtype=np.int64)) for s in pieces]
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    b = H[starts[i]:starts[i + 1], starts[j]:starts[j + 1]].reshape(pieces[i] + pieces[j])
    return float(b) if b.ndim == 0 else b


def _scalar(a):
    return float(a) if a.ndim == 0 else a


def _as_float_array(x, what):
    if type(x) is Var or (isinstance(x, np.ndarray) and x.dtype == object and
                          any(type(e) is Var for e in x.flat)):
        raise TypeError(f"{what} expects plain numbers, not tapead Vars (use v.value)")
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{what} expects a real number or an array-like of real numbers; got "
                        f"{type(x).__name__}") from None
    return a


def record(f, *args):
    """Call f once on Vars initialised to args (a Var per scalar argument, an object ndarray of
    Var per array argument) and return the closed Tape with f's result as outputs."""
    if not args:
        raise TypeError("ad.record(f, x, ...) needs at least one argument to differentiate by")
    tape = Tape()
    with tape:
        xs = [tape.variables(a) for a in args]
        tape.outputs(f(*xs))
    return tape

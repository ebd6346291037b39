"""Tape: imperative recording (``with ad.Tape() as t``), ``ad.record`` and the replay methods.

Every replay is one C call over the flat tape; this module only converts inputs and results,
and re-records f (ad.record) where a replay flips a branch guard. The common small cases run in
C without this module (csrc/fast.c): ad.record of scalar arguments or one vector, and gradient
replays of such tapes; they hand anything unusual to the general paths here.
"""
import functools
import inspect

import numpy as np

from . import _fast, batch as _batch, hessian as _hessian, recording, sparse as _sparse
from ._core import Flip as _Flip, Op, check, ffi, lib
from .convert import as_float_array as _as_float_array, buf as _buf, scalar as _scalar
from .errors import TapeError
from .optimize import optimized, removed
from .recording import Recording as _Recording

_MODES = ("auto", "forward", "reverse")


def _replay(method):
    """Run a replay on the current recording; when a branch guard flips, re-record f at the new
    point (a tape from ad.record) and run it again, or raise BranchChanged."""
    @functools.wraps(method)
    def run(self, *args, batch=False, **kwargs):
        if batch:                                  # a leading axis of points: tapead/batch.py
            return _batched(self, method.__name__.lstrip("_"), args, kwargs)
        rec = self._rec
        try:
            return method(self, rec, *args, **kwargs)
        except _Flip:
            rec = self._after_flip(rec, args[0] if args else kwargs.get("x"))
        try:
            return method(self, rec, *args, **kwargs)
        except _Flip:                              # f took another branch on the same input
            raise rec.branch_changed() from None
    params = list(inspect.signature(method).parameters.values())
    batch = inspect.Parameter("batch", inspect.Parameter.KEYWORD_ONLY, default=False)
    run.__signature__ = inspect.Signature([params[0]] + params[2:] + [batch])  # without `rec`
    return run


def _batched(tape, name, args, kwargs):
    """tape.name(x, *args, batch=True, **kwargs): x and per-point arguments with a leading axis
    of points (tapead/batch.py)."""
    kwargs = dict(kwargs)
    x = args[0] if args else kwargs.pop("x", None)
    return _batch.call(tape, name, x, args[1:], kwargs)


class Tape(_fast.TapeBase):
    """A recording of elementary operations (a Wengert list) that C sweeps replay.

    Record with ``with ad.Tape() as t: x = t.variables(...); ...; t.outputs(y)`` or with
    ``ad.record(f, *args)``; replay with ``tape(x)``, ``jvp``, ``vjp``, ``gradient``,
    ``jacobian``, ``hvp``, ``hessian``, ``taylor``. Comparisons made while recording are branch
    guards: a replay where one flips re-records f (ad.record) or raises ad.BranchChanged.
    """

    def __init__(self):
        self._rec = _Recording(self)
        self._fn = None            # f of ad.record: re-recorded when a branch guard flips
        self._rerecords = 0

    # the current recording's state, for the modules that read it (program, trace, graph)
    _p = property(lambda self: self._rec._p)
    _addr = property(lambda self: self._rec._addr)
    _pieces = property(lambda self: self._rec.pieces)
    _m = property(lambda self: self._rec.m)
    _out_shape = property(lambda self: self._rec.out_shape)
    _n_out = property(lambda self: self._rec.n_out)

    def _x(self, x, what="x"):
        return self._rec.x_flat(x, what)

    # ---- recording ---------------------------------------------------------------------------
    def __enter__(self):
        if _fast.current() is not None:
            raise TapeError("a Tape is already recording in this thread; nested recording is "
                            "not supported (for second derivatives use tape.hessian / hvp)")
        rc = lib.tp_claim(self._rec._p)
        if rc == lib.TP_ECLOSED:
            raise TapeError("this tape has already been recorded; start a new Tape")
        if rc < 0:
            raise TapeError("this tape is already being recorded (by another thread or an "
                            "earlier `with` block); a tape is recorded once, by one thread")
        _fast.set_current(self._rec)
        return self

    def __exit__(self, *exc):
        if _fast.current() is self._rec:          # only the recording thread closes it
            _fast.set_current(None)
            lib.tp_close(self._rec._p)
        return False

    @property
    def recording(self):
        """True while operations may still be recorded on this tape."""
        return not lib.tp_closed(self._rec._p)

    def variables(self, x, array=None):
        """Declare inputs: a number (or a 0-d array) gives one Var, an array-like an ad.Array of
        the same shape (its elements are Vars: ``x1, x2 = t.variables([2.0, 1.0])`` unpacks);
        array=False gives an object ndarray of Var instead, array=True an ad.Array even for a
        0-d x. Call before the first operation; inputs are numbered in call order."""
        return self._rec.add_inputs(x, array)

    def outputs(self, y):
        """Declare the outputs: a Var, a number, or a (nested) sequence/array of them. Numbers
        become constant outputs; the shape is reproduced by every replay."""
        self._rec.set_outputs(y)

    def _after_flip(self, rec, x):
        """A replay of rec at x flipped a branch guard (just now, in this thread): the new
        recording of f at x, or BranchChanged for an imperatively recorded tape."""
        if self._fn is None:
            raise rec.branch_changed() from None
        # the replay has checked x already: one input piece goes to f's recording as it is,
        # and so do the pieces of several scalars (converted as add_inputs converts them)
        if x is not None and rec.fast == 3 and isinstance(x, (tuple, list)):
            args = x
        else:
            args = [x] if x is not None and len(rec.pieces) == 1 else rec.split(rec.x_flat(x))
        return self._rerecord(args)

    def _rerecord(self, args):
        """Record f again at args, one per input piece (its branch guards flipped there)."""
        rec = NotImplemented if self._general else _fast.record_into(self._fn, args, self)  # C
        if rec is not NotImplemented:
            if self._optimize:
                rec = self._rec = optimized(rec)
            return rec
        rec = _Recording(self)
        check(lib.tp_claim(rec._p), "re-recording")
        outer = _fast.current()
        _fast.set_current(rec)
        try:
            xs = [rec.add_inputs(a, getattr(self, "_arrays", None)) for a in args]
            rec.set_outputs(self._fn(*xs))
        finally:
            _fast.set_current(outer)
            lib.tp_close(rec._p)
        self._rec = optimized(rec) if self._optimize else rec
        self._rerecords += 1
        return self._rec

    # ---- optimisation (tapead/optimize.py, csrc/optimize.c) -----------------------------------
    def optimize(self):
        """A new closed Tape computing the same outputs, branch guards and derivatives with fewer
        operations: common subexpressions merged, operations on constants folded, identities
        exact in IEEE arithmetic (x*1, x/1, x+(-0.0), x-0.0, -(-x)) forwarded, operations that
        reach no output and no guard removed. This tape is unchanged. A tape from ad.record
        gives one that re-records f where a guard flips, and optimises that recording too.
        stats()["optimized"] says what each pass removed (docs/API.md)."""
        rec = self._rec
        if not lib.tp_closed(rec._p):
            raise TapeError("tape.optimize(): this tape is still recording; optimise it after "
                            "its `with` block")
        t = Tape.__new__(Tape)
        t._fn, t._rerecords, t._optimize, t._general = self._fn, 0, True, self._general
        if hasattr(self, "_arrays"):
            t._arrays = self._arrays
        t._rec = optimized(rec, t)
        return t

    # ---- native kernels (tapead/native.py) -----------------------------------------------------
    def compile(self):
        """Compile this closed tape's program to native code with the system C compiler (CC, or
        Python's, cc, gcc, clang), for its batched replays: ``forward``, ``gradient`` and
        ``vjp`` with one weight per point (``batch=True``) then run straight-line code
        vectorised over the points instead of interpreting the tape, with the same results to
        the last bit. Returns the tape. Scalar operations only (TypeError names any other);
        the compiler takes about a second per 1000 operations, once per program and process
        (a copy or a re-recording down a branch compiled before reuses the code). Copies and
        pickles of a compiled tape are compiled (a pickle where it is loaded, if a compiler is
        there; else interpreted). A re-recording of an ad.record tape (a flipped guard) is
        interpreted until compiled again; stats()["native"] says whether the current recording
        is compiled."""
        from .native import compile_recording
        self._compile_seconds = compile_recording(self._rec)
        return self

    # ---- saving and copies (tapead/saving.py) --------------------------------------------------
    def dumps(self, function=True):
        """The closed tape as bytes, for ad.loads: a versioned binary format (docs/API.md). A tape
        of ad.record keeps f by reference (pickle), so the loaded tape re-records it where a
        branch guard flips; function=False leaves f out (replays then raise BranchChanged)."""
        from .saving import dumps
        return dumps(self, function)

    def save(self, path, function=True):
        """Write the closed tape to the file path (the bytes of dumps), for ad.load."""
        from .saving import save
        save(self, path, function)

    def __reduce_ex__(self, protocol):
        from .saving import loads
        from .native import loads_compiled
        compiled = lib.tp_has_native(self._rec._p)
        return (loads_compiled if compiled else loads), (self.dumps(),)

    def __deepcopy__(self, memo):
        """A Tape around a recording of its own, made from the saved bytes; f is shared (deep
        copies of functions are the functions themselves)."""
        import copy
        from .saving import _dump, _load
        out, n, prims = _dump(self, False, check_names=False)
        t = _load(memoryview(out)[:n], False, prims)
        t._fn = copy.deepcopy(self._fn, memo)
        t._fn_note, t._rerecords = getattr(self, "_fn_note", None), self._rerecords
        t._general = self._general
        if hasattr(self, "_arrays"):
            t._arrays = self._arrays
        if lib.tp_has_native(self._rec._p):        # the same program: its code is cached
            from .native import compile_quietly
            compile_quietly(t)
        return t

    def __copy__(self):
        """A second Tape around the same recording (immutable once closed)."""
        t = Tape.__new__(Tape)
        t._rec, t._fn, t._rerecords = self._rec, self._fn, self._rerecords   # C fields
        t._optimize, t._general = self._optimize, self._general
        t.__dict__.update(getattr(self, "__dict__", {}))
        return t

    # ---- inspection --------------------------------------------------------------------------
    def __len__(self):
        return lib.tp_n_ops(self._rec._p)

    @property
    def n_inputs(self):
        return self._rec.m

    @property
    def n_outputs(self):
        return self._rec.n_out

    @property
    def nbytes(self):
        """Bytes of the recorded program: opcodes, operands, constants and outputs."""
        return lib.tp_nbytes(self._rec._p)

    def stats(self):
        rec = self._rec
        counts = np.zeros(lib.tp_n_opcodes, dtype=np.int64)
        check(lib.tp_op_counts(rec._p, ffi.from_buffer("int64_t[]", counts)))
        swept = ffi.new("int64_t[5]")
        lib.tp_swept(rec._p, swept)
        n = lib.tp_n_ops(rec._p)
        return {
            "ops": n,
            "by_opcode": {Op(k).name.lower(): int(c) for k, c in enumerate(counts) if c},
            "rerecords": self._rerecords,
            "swept": {"primal": swept[0], "tangent": swept[1], "adjoint": swept[2],
                      "second_order": swept[3], "taylor": swept[4]},
            "native": bool(lib.tp_has_native(rec._p)),
            "inputs": rec.m,
            "outputs": rec.n_out,
            "guards": len(rec.guards),
            "constants": lib.tp_n_consts(rec._p),
            "nbytes": lib.tp_nbytes(rec._p),
            "values_nbytes": 8 * lib.tp_n_vars(rec._p),
            "colours": {"jacobian": rec.sparse.get("colours"),
                        "hessian": _hessian.directions(rec)},
            **removed(rec),
        }

    def jacobian_sparsity(self):
        """The Jacobian's structural sparsity pattern: a boolean scipy.sparse.csr_array
        (n_outputs, n_inputs), a superset of its nonzeros wherever the tape's guards hold."""
        rec = self._rec
        _sparse_ready(rec, True)
        return _sparse.jacobian_sparsity(rec)

    def hessian_sparsity(self):
        """The Hessian's structural sparsity pattern (of w·y, any w): a boolean
        scipy.sparse.csr_array (n_inputs, n_inputs)."""
        rec = self._rec
        _sparse_ready(rec, True)
        rows, cols = _hessian.entries(rec)
        return _sparse.square(np.ones(rows.size, dtype=bool), rows, cols, rec.m)

    def __repr__(self):
        state = "recording" if self.recording else "closed"
        return (f"<tapead.Tape {state}: {self.n_inputs} inputs, {len(self)} operations, "
                f"{self.n_outputs} outputs>")

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
    def forward(self, x=None, *, batch=False):
        """Outputs at x, in the recorded shape (a float for a scalar output). batch=True: x has
        a leading axis of points, and so do the results (every replay method takes it)."""
        if batch:
            return _batched(self, "forward", (x,), {})
        rec = self._rec
        if rec.fast and x is not None and rec.out_shape is not None:
            y = np.empty(rec.n_out)
            try:
                if _fast.forward(rec, rec.fast == 2, x, y) is None:
                    return rec.shape_y(y)
            except _Flip:
                rec = self._after_flip(rec, x)     # re-recorded at x (or BranchChanged)
                y = np.empty(rec.n_out)
                try:
                    if _fast.forward(rec, rec.fast == 2, x, y) is None:
                        return rec.shape_y(y)
                except _Flip:                      # f took another branch on the same input
                    raise rec.branch_changed() from None
        return self._forward(x)

    @_replay
    def _forward(self, rec, x=None):
        y = np.empty(rec.n_out)
        xf = rec.x_flat(x, scratch=True)
        check(lib.tp_forward(rec._p, _buf(xf), _buf(y)), "forward")
        rec.give_back(xf)
        return rec.shape_y(y)

    __call__ = forward

    @_replay
    def jvp(self, rec, x, v):
        """(y, y_dot): forward tangent sweep; v shaped like x, or with a trailing axis of k
        directions (carried in one sweep), giving y_dot with a trailing axis of k."""
        xf = rec.x_flat(x, scratch=True)
        vf, k, batched = rec.directions(v)
        y, ydot = np.empty(rec.n_out), np.empty((rec.n_out, k))
        check(lib.tp_jvp(rec._p, _buf(xf), k, _buf(vf), _buf(y), _buf(ydot)), "jvp")
        rec.give_back(xf)
        ydot = ydot.reshape(rec.out_shape + (k,))
        return rec.shape_y(y), (ydot if batched else _scalar(ydot[..., 0]))

    @_replay
    def vjp(self, rec, x, w):
        """(y, x_bar): reverse adjoint sweep; w shaped like y, or with a leading axis of k
        weight vectors (carried in one sweep), giving x_bar with a leading axis of k."""
        if x is not None and not rec.fast:       # array pieces and a float w: in C
            r = _fast.vjp1(rec, x, w)
            if r is not NotImplemented:
                return r
        rec.need_outputs()
        w = _as_float_array(w, "w")
        n, shape = rec.n_out, rec.out_shape
        if w.shape == shape:
            k, batched = 1, False
        elif w.ndim == len(shape) + 1 and w.shape[1:] == shape and w.shape[0] >= 1:
            k, batched = w.shape[0], True
        else:
            raise ValueError(f"expected w of shape {shape} (like y) or (k,) + {shape}, got "
                             f"shape {w.shape}")
        wf = np.ascontiguousarray(w.reshape(k, n).T)
        y, xbar = np.empty(n), np.empty((rec.m, k))
        rec.vjp_into(x, k, _buf(wf), _buf(y), _buf(xbar), "vjp")
        if batched:
            return rec.shape_y(y), rec.shape_x(np.ascontiguousarray(xbar.T), lead=(k,))
        return rec.shape_y(y), rec.shape_x(xbar[:, 0])

    # gradient(x=None) is TapeBase.gradient (csrc/fast.c): for a tape whose input is one vector,
    # one scalar or several scalars, with one output, and x in a plain form (a list or tuple of
    # numbers, a float64 vector, a number; None), it sweeps in C. Where a branch guard flips it
    # calls _after_flip and sweeps the new recording at x again (not "the last point": another
    # thread may sweep it meanwhile) (a new recording with
    # other than one output: _gradient's ValueError); anything else goes to _gradient.

    def _gradient_batch(self, x=None, batch=False):
        """gradient(x, batch=...) (TapeBase.gradient hands calls naming batch here)."""
        return _batched(self, "gradient", (x,), {}) if batch else _fast.TapeBase.gradient(self, x)

    @_replay
    def _gradient(self, rec, x=None):
        """Gradient of the scalar output at x, shaped like x (the general path)."""
        rec.need_outputs()
        if rec.n_out != 1:
            raise ValueError(f"tape.gradient needs a scalar output; this tape has "
                             f"{rec.n_out} outputs of shape {rec.out_shape} (use vjp or "
                             f"jacobian)")
        g = np.empty(rec.m)
        rec.vjp_into(x, 1, _ONE, ffi.NULL, _buf(g), "gradient")
        return rec.shape_x(g)

    @_replay
    def jacobian(self, rec, x=None, mode="auto", sparse=False):
        """Jacobian at x, shaped y.shape + x.shape (a tuple over inputs given in pieces).
        mode: "forward" (m tangent directions), "reverse" (n adjoint directions) or "auto"
        (the cheaper of the two by the cost model). sparse=True: a scipy.sparse.csr_array
        (n_outputs, n_inputs), y and x flattened, from one direction per colour of the
        sparsity pattern's columns (forward) or rows (reverse; auto: the cheaper, dense rows or
        columns done in the other mode; tapead/sparse.py)."""
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
        if _sparse_ready(rec, sparse):
            return _sparse.jacobian(rec, rec.x_flat(x), mode, _ADJOINT_COST)
        xf = rec.x_flat(x)
        m, n = rec.m, rec.n_out
        if mode == "auto":
            mode = "forward" if m <= _ADJOINT_COST * n else "reverse"
        J = np.zeros((n, m))
        if m and n and mode == "forward":        # m unit tangent directions: J[o, i] at o*m + i
            check(lib.tp_jvp(rec._p, _buf(xf), m, ffi.NULL, ffi.NULL, _buf(J)), "jacobian")
        elif m and n:                             # n unit adjoint directions: J.T[i, o] at i*n + o
            Jt = np.empty((m, n))
            check(lib.tp_vjp(rec._p, _buf(xf), n, ffi.NULL, ffi.NULL, _buf(Jt)), "jacobian")
            J = np.ascontiguousarray(Jt.T)
        return rec.shape_x(J, lead=rec.out_shape)

    @_replay
    def taylor(self, rec, x, v, order=2):
        """Taylor coefficients y_0 .. y_order of t -> f(x + t·v) at t = 0, shaped
        (order + 1,) + y.shape, from one forward sweep of univariate Taylor propagation (as
        ADOL-C's hos_forward, CppAD's Forward(q)). The k-th directional derivative of f along v
        is k!·y_k."""
        if not isinstance(order, (int, np.integer)) or isinstance(order, bool) or \
                not 0 <= order <= 1000:
            raise ValueError(f"order must be a whole number from 0 to 1000, got {order!r}")
        xf = rec.x_flat(x)
        vf, k, batched = rec.directions(v)
        if batched:
            raise ValueError("tape.taylor takes one direction v shaped like x")
        y = np.empty((rec.n_out, order + 1))
        check(lib.tp_taylor(rec._p, _buf(xf), _buf(vf), int(order), _buf(y)), "taylor")
        return np.ascontiguousarray(y.T).reshape((order + 1,) + rec.out_shape)

    # ---- second order ------------------------------------------------------------------------
    @_replay
    def hvp(self, rec, x, v, w=None):
        """Hessian-vector product H·v at x, shaped like x: one forward-over-reverse sweep (the
        tangent of the adjoint sweep). v shaped like x, or with a trailing axis of k directions
        (carried in one sweep). For vector outputs, H is the Hessian of w·y."""
        wf = rec.weights(w, "tape.hvp")
        xf = rec.x_flat(x, scratch=True)
        vf, k, batched = rec.directions(v)
        hv = np.empty((rec.m, k))
        check(lib.tp_hvp(rec._p, _buf(xf), _buf(wf), k, _buf(vf), ffi.NULL, ffi.NULL,
                         _buf(hv)), "hvp")
        rec.give_back(xf)
        return rec.shape_x(hv, trail=(k,)) if batched else rec.shape_x(hv[:, 0])

    @_replay
    def hessian(self, rec, x=None, w=None, sparse=False):
        """Hessian at x, shaped x.shape + x.shape (nested tuples over inputs given in pieces):
        Hessian-vector directions carried in one vector-mode sweep — one per colour of the
        Hessian's sparsity pattern when that is fewer than the m inputs (tapead/hessian.py),
        else m — then symmetrised so that H == H.T to the last bit. For vector outputs, the
        Hessian of w·y. sparse=True: a scipy.sparse.csr_array (m, m) over the flattened
        inputs, holding the pattern's entries."""
        sparse = _sparse_ready(rec, sparse, outputs=False)
        wf = rec.weights(w, "tape.hessian")
        H = _hessian.hessian(rec, rec.x_flat(x), wf, sparse)
        return _sparse.square(*H, rec.m) if sparse else _hessian.blocks(H, rec.pieces)


# Cost of an adjoint direction in units of a tangent direction, for mode="auto" (measured in
# bench/test_bench_modes.py: 1.35-1.7; directions are swept in cache-sized blocks).
_ADJOINT_COST = 1.5


_ONE = ffi.new("double[1]", [1.0])


def _sparse_ready(rec, sparse, outputs=True):
    """sparse as a bool; True needs SciPy (an ImportError naming the extra) and, with outputs,
    a tape with outputs (TapeError)."""
    if not isinstance(sparse, (bool, np.bool_)):
        raise TypeError(f"sparse must be True or False, got {sparse!r}")
    if sparse:
        _sparse.scipy_sparse()
        if outputs:
            rec.need_outputs()
    return bool(sparse)


# ad.record(f, *args) is tapead._fast.record (csrc/fast.c): for scalar arguments or one float
# vector (recorded in this thread, nothing else recording) it makes the Tape in one C call, and
# hands every other call to _record, the general path, with the same arguments.
record = _fast.record


def _record(f, *args, arrays=None, optimize=False):
    """ad.record's general path (see tapead._fast.record). f gets a Var per number (or 0-d
    array) and an ad.Array per array argument; arrays=False: an object ndarray of Var instead,
    arrays=True: an ad.Array for 0-d arrays too (and so does every re-recording).
    optimize=True: the tape optimised (Tape.optimize), and so is every re-recording."""
    if optimize:
        tape = record(f, *args) if arrays is None else record(f, *args, arrays=arrays)
        tape._optimize = True
        tape._rec = optimized(tape._rec)
        return tape
    if not args:
        raise TypeError("ad.record(f, x, ...) needs at least one argument to differentiate by")
    tape = Tape()
    arrays = None if arrays is None else bool(arrays)
    if arrays is not None:                   # re-recordings in Python, with these inputs
        tape._arrays, tape._general = arrays, True
    with tape:
        xs = [tape.variables(a, arrays) for a in args]
        tape.outputs(f(*xs))
    tape._fn = f
    return tape


_record.__name__ = _record.__qualname__ = "record"        # its TypeErrors name ad.record


def _own(addr):
    """The C tape at addr as a cffi pointer that frees it (a recording's ``_p``)."""
    return ffi.gc(ffi.cast("tp_tape *", addr), lib.tp_free)


recording.TAPE_TYPE = Tape
_fast.set_types(_Recording, Tape, np.empty, np.dtype(object), np.ndarray, np.float64, _own,
                _record)

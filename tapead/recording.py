"""A recording: one C tape with its input and output structure, the conversions between the
user's shapes and the sweeps' flat arrays, and the bookkeeping of branch guards."""
import threading
import weakref

import numpy as np

from . import _fast
from ._core import OP_FORMULA, Op, check, ffi, lib
from .convert import as_float_array as _as_float_array, buf as _buf
from .errors import BranchChanged, TapeError
from .array import Array
from .var import Var, _make, _number

TAPE_TYPE = None                   # tapead.tape.Tape, set by that module (it builds on this one)
_ONES = np.ones(1)
_ONES.flags.writeable = False
# One flat input vector per thread, reused by the replays that join pieces of x (x_flat(...,
# scratch=True), handed back by give_back): a fresh ~MB temporary per call makes glibc trim and
# regrow its heap, faulting every page in again (a third of a replay of the seed's network).
# A nested replay in the same thread (a primitive's rule) finds it taken and allocates.
_scratch = threading.local()
# Inputs in several pieces, at least this many in all: C reads the pieces where they are
# (lib.tp_vjp_parts) instead of joining them first (below, one copy costs less than the call's
# extra cffi arrays).
PARTS_MIN = 1 << 14


class _RecordingMethods:
    """One recording of a tape: owns the C tape and knows the input and output structure.

    Vars hold their recording (not the Tape), so its memory lives as long as they do, even after
    a re-recording (safe replay) replaced it on the Tape while other threads still sweep it.

    _Recording(tape) makes an empty one. Its fields live in C (tapead._fast.Recording, shared
    with the C paths): ``_p`` (the C tape as a cffi pointer), ``_addr``, ``tape`` (a weak
    reference), ``pieces`` (shape of each t.variables() call, in order) and ``sizes`` (its
    number of inputs), ``m``, ``out_shape`` (None until t.outputs()), ``n_out``, ``fast`` (1: the
    input is one vector, 2: one scalar, 3: several scalars; the C replay paths), ``grads``
    (adjoints of every variable from the last backward(), or None), ``guards`` (variable index
    of each branch guard, in order made), ``sites`` (variable index of a guard -> (file, line,
    the variable whose .value/.grad was read, or None)), ``colouring`` (the Hessian's plan,
    tapead/hessian.py) and ``sparse`` (a dict: sparse.py's Jacobian pattern and plans, the
    Hessian's pattern, the last sparse colours).

    The methods below are copied onto that C type (as var.py does for Var): recordings are
    instances of it, neither tracked by the cyclic GC nor of a Python subclass.
    """

    def owner(self):
        """The Tape of this recording. Vars keep their recording alive, not the Tape (no
        reference cycle); if the Tape is gone, an equivalent one is made around the recording."""
        t = self.tape()
        if t is None:
            t = TAPE_TYPE.__new__(TAPE_TYPE)
            t._rec, t._fn, t._rerecords = self, None, 0
            self.tape = weakref.ref(t)
        return t

    # ---- recording ---------------------------------------------------------------------------
    def add_inputs(self, x, array=None):
        a = _as_float_array(x, "t.variables")
        flat = a.ravel() if a.flags.c_contiguous else np.ascontiguousarray(a).ravel()
        n = flat.size
        first = check(lib.tp_add_inputs(self._p, _buf(flat), n), "t.variables")
        self.pieces.append(a.shape)
        self.sizes.append(n)
        self.m += n
        if len(self.pieces) == 1:
            self.fast = 1 if a.ndim == 1 else 2 if a.ndim == 0 else 0
        else:                                     # several pieces: all scalars, or none fast
            self.fast = 3 if a.ndim == 0 and self.fast in (2, 3) else 0
        if array or (array is None and a.ndim):   # an ad.Array: the block itself
            return Array(self, first, a.shape)
        if a.ndim == 0:
            return _make(self, first)
        out = np.empty(n, dtype=object)
        out[:] = _fast.vars(self, first, n)
        return out.reshape(a.shape)

    def set_outputs(self, y):
        if type(y) is Var:                        # the common case, kept short
            if y._rec is not self:
                raise TapeError("t.outputs got a Var of another tape")
            check(lib.tp_set_outputs(self._p, [y.index], 1), "t.outputs")
            self.out_shape, self.n_out = (), 1
            return
        if type(y) is Array:                      # its block, in C order
            if y._rec is not self:
                raise TapeError("t.outputs got an ad.Array of another tape")
            idx = np.arange(y._first, y._first + y.size, dtype=np.int32)
            check(lib.tp_set_outputs(self._p, ffi.from_buffer("int32_t[]", idx), y.size),
                  "t.outputs")
            self.out_shape, self.n_out = y.shape, y.size
            return
        try:
            arr = np.asarray(y, dtype=object)
        except ValueError as e:
            raise ValueError(f"t.outputs expects a Var, a number or a regular (nested) "
                             f"sequence/array of them: {e}") from None
        items = list(arr.flat)
        idx = np.empty(len(items), dtype=np.int32)
        code = ffi.new("int32_t *")
        for k, e in enumerate(items):
            if type(e) is Array and e.shape == ():  # a 0-d ad.Array: its variable
                e = _make(e._rec, e._first)
            if type(e) is Var:
                if e._rec is not self:
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
        self.out_shape, self.n_out = arr.shape, len(items)

    def note_guard(self, index, frame, frozen=None):
        """Variable `index` became a branch guard: a Cond's truth value was taken, or (frozen:
        the variable read) .value/.grad was read while recording; frame is the user's code."""
        self.guards.append(index)
        self.sites[index] = (frame.f_code.co_filename, frame.f_lineno, frozen)

    def backward(self, root, seed):
        adj = np.empty(root + 1)
        check(lib.tp_backward(self._p, root, float(seed), _buf(adj), root + 1), "backward()")
        self.grads = adj

    def grad_of(self, index):
        g = self.grads
        if g is None:
            return None
        return float(g[index]) if index < g.size else 0.0

    # ---- conversions between user shapes and flat C arrays -----------------------------------
    def x_flat(self, x, what="x", scratch=False):
        """The flat float64 input for a replay at x (None: the last point swept); read-only (a
        contiguous float64 x itself). scratch=True: pieces are joined into this thread's
        scratch vector, which the caller hands back (give_back) once C has read it."""
        self.need_outputs()
        if x is None:
            last = np.empty(self.m)
            check(lib.tp_last_x(self._p, _buf(last)))
            return last
        pieces = self.pieces
        if len(pieces) == 1:
            a = _as_float_array(x, what)
            if a.shape != pieces[0]:
                raise ValueError(f"expected {what} of shape {pieces[0]}, got shape {a.shape}")
            return np.ascontiguousarray(a, dtype=np.float64).reshape(-1)
        parts = self._parts(x, what)
        if not parts:
            return np.empty(0)
        out = None
        if scratch:
            buf = _scratch.__dict__.pop("x", None)
            if buf is None or buf.size < self.m:
                buf = np.empty(self.m)
            _scratch.mine, out = buf, buf[:self.m]
        return np.concatenate(parts, out=out)

    def need_outputs(self):
        if self.out_shape is None:
            raise TapeError("this tape has no outputs: call t.outputs(y) while recording "
                            "(or use y.backward() for the recorded point)")

    def _parts(self, x, what):
        """x's pieces (a sequence, one per piece) as flat float64 arrays, checked."""
        pieces = self.pieces
        if not isinstance(x, (tuple, list)) or len(x) != len(pieces):
            raise ValueError(f"expected {what} as a sequence of {len(pieces)} pieces of "
                             f"shapes {pieces}, got {type(x).__name__}"
                             f"{' of length %d' % len(x) if hasattr(x, '__len__') else ''}")
        parts = []
        for k, (xi, s) in enumerate(zip(x, pieces)):
            a = _as_float_array(xi, f"{what}[{k}]")
            if a.shape != s:
                raise ValueError(f"expected {what}[{k}] of shape {s}, got shape {a.shape}")
            parts.append(a.ravel())                # (float64 and aligned: contiguous once)
        return parts

    def vjp_into(self, x, k, w, y, xbar, what):
        """C's vjp at x (k weight vectors w, cffi pointers; y, xbar written): the pieces of a
        large x in several pieces read where they are, any other x joined (x_flat)."""
        if x is not None and len(self.pieces) > 1 and self.m >= PARTS_MIN:
            parts = self._parts(x, "x")
            ptrs = ffi.new("double *[]", [_buf(a) for a in parts])
            lens = ffi.new("int64_t[]", [a.size for a in parts])
            check(lib.tp_vjp_parts(self._p, len(parts), ptrs, lens, k, w, y, xbar), what)
            return
        xf = self.x_flat(x, scratch=True)
        check(lib.tp_vjp(self._p, _buf(xf), k, w, y, xbar), what)
        self.give_back(xf)

    @staticmethod
    def give_back(xf):
        """Hand back x_flat(..., scratch=True)'s vector (anything else is left alone)."""
        if xf.base is not None and xf.base is _scratch.__dict__.get("mine"):
            _scratch.x = xf.base

    def split(self, flat):
        """A flat input as the arguments it was recorded from (one per t.variables call)."""
        out, start = [], 0
        for s, size in zip(self.pieces, self.sizes):
            part = flat[start:start + size].reshape(s)
            out.append(float(part) if part.ndim == 0 else part)
            start += size
        return out

    def shape_y(self, y):
        return float(y[0]) if self.out_shape == () else y.reshape(self.out_shape)

    def shape_x(self, flat, lead=(), trail=()):
        """Split a flat (lead, m, trail) result into the input structure."""
        out, start = [], 0
        if not lead and not trail and flat.ndim == 1:   # (a gradient: kept short)
            for s, size in zip(self.pieces, self.sizes):
                out.append(flat[start:start + size].reshape(s) if s else float(flat[start]))
                start += size
            return out[0] if len(out) == 1 else tuple(out)
        for s, size in zip(self.pieces, self.sizes):
            part = flat[..., start:start + size, :] if trail else flat[..., start:start + size]
            part = part.reshape(lead + s + trail)
            out.append(float(part) if part.ndim == 0 else part)
            start += size
        return out[0] if len(out) == 1 else tuple(out)

    def directions(self, v):
        """Flat (m, k) tangent directions from v shaped like x, or like x plus a trailing k."""
        pieces = self.pieces
        if len(pieces) == 1:                      # the common case, kept short
            a = _as_float_array(v, "v")
            if a.shape == pieces[0]:
                return np.ascontiguousarray(a).reshape(-1, 1), 1, False
            if a.ndim == len(pieces[0]) + 1 and a.shape[:-1] == pieces[0] and a.shape[-1] >= 1:
                return np.ascontiguousarray(a).reshape(-1, a.shape[-1]), a.shape[-1], True
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

    def weights(self, w, what):
        """Flat output weights: w shaped like y; None means 1 for a single output."""
        if w is None:
            if self.n_out != 1:
                raise ValueError(f"{what} of a tape with {self.n_out} outputs needs weights w "
                                 f"shaped like y {self.out_shape} (the Hessian of w·y)")
            return _ONES
        a = _as_float_array(w, "w")
        if a.shape != self.out_shape:
            raise ValueError(f"expected w of shape {self.out_shape} (like y), got shape "
                             f"{a.shape}")
        return np.ascontiguousarray(a, dtype=np.float64).ravel()

    # ---- branch guards -----------------------------------------------------------------------
    def branch_changed(self):
        """BranchChanged for the guard that this thread's last replay found flipped."""
        var, xy = ffi.new("int64_t *"), ffi.new("double[2]")
        lib.tp_branch_info(var, xy)
        var = var[0]
        op, operands, values = ffi.new("int *"), ffi.new("int32_t[3]"), ffi.new("double[3]")
        check(lib.tp_comparison(self._p, var, op, operands, values))
        rel = OP_FORMULA[Op(op[0])].split(" ")[3]                        # "<" of "z = x < y"
        now = [xy[0], xy[1]]
        names = [vname(self, operands[i]) if operands[i] >= 0 else repr(values[i])
                 for i in range(2)]
        nd, idx, dims = ffi.new("int *"), ffi.new("int64_t[32]"), ffi.new("int64_t[32]")
        element = "" if lib.tp_comparison_element(self._p, var, nd, idx, dims) != lib.TP_OK \
            else (f", element {tuple(idx[0:nd[0]])} of a comparison of shape "
                  f"{tuple(dims[0:nd[0]])}")
        then = ", ".join(f"{names[i]} = {values[i]!r}" for i in range(2) if operands[i] >= 0)
        later = ", ".join(f"{names[i]} = {now[i]!r}" for i in range(2) if operands[i] >= 0)
        where = self.sites.get(var)
        site = f"{where[0]}:{where[1]}" if where else "an unknown line"
        was = bool(values[2])
        if where and where[2] is not None:         # .value/.grad read while recording
            v = where[2]
            return BranchChanged(
                f"{vname(self, v)}.value (or a .grad depending on it) was read while recording "
                f"(at {site}), which fixed the tape to {vname(self, v)} = "
                f"{lib.tp_value(self._p, v)!r}; this point differs. Compute with the Var itself "
                f"(not its .value) so replays at other points stay valid, or record with "
                f"ad.record(f, x), which re-records f at the new point")
        t = self.tape()
        note = t is not None and getattr(t, "_fn_note", None)     # a loaded tape without f
        how = (f"This tape of ad.record was {note} and cannot re-record; load it with its "
               f"function to re-record f at the new point" if note else
               "This tape was recorded imperatively and cannot re-record; use ad.record(f, x), "
               "which re-records f at the new point")
        return BranchChanged(
            f"branch guard {names[0]} {rel} {names[1]} (recorded at {site}{element}) was {was} at "
            f"recording ({then}) and is {not was} now ({later}). {how}, or ad.where for "
            f"branch-free code")


for _name, _attr in vars(_RecordingMethods).items():
    if _name not in ("__module__", "__dict__", "__weakref__"):
        setattr(_fast.Recording, _name, _attr)
Recording = _fast.Recording
del _name, _attr, _RecordingMethods


def vname(rec, i):
    """Variable i in the seed's numbering: inputs v[-m+1] .. v[0], then v[1] ..."""
    return f"v[{i - rec.m + 1}]"



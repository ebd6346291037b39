"""The recorded program as Python data, for traces and graphs: each operation with its operands,
and every variable's value, tangent and adjoint, and each operand's local partial, at a point.
All numbers come from the C sweeps (tp_export, tp_inspect); nothing is recomputed here."""
from dataclasses import dataclass

import numpy as np

from ._core import OP_ARITY, OP_FORMULA, Flip, Op, check, ffi, lib


@dataclass(frozen=True)
class Step:
    """One operation: variable `index` = op(operands); an operand < 0 is constant -1-operand."""
    index: int
    op: Op
    operands: tuple
    args_at: int               # position of the first operand in the operand stream

    @property
    def formula(self):
        return OP_FORMULA[self.op]


def _buf(a, ctype="double[]"):
    return ffi.from_buffer(ctype, a)


def listing(tape):
    """(steps, constants, outputs) of a tape (or a recording): its Wengert list in order."""
    p = tape._p
    n_ops, n_args = lib.tp_n_ops(p), lib.tp_n_args(p)
    ops = np.empty(n_ops, dtype=np.uint8)
    args = np.empty(n_args, dtype=np.int32)
    consts = np.empty(lib.tp_n_consts(p))
    outputs = np.empty(lib.tp_n_outputs(p), dtype=np.int32)
    check(lib.tp_export(p, _buf(ops, "uint8_t[]"), _buf(args, "int32_t[]"), _buf(consts),
                        _buf(outputs, "int32_t[]")))
    steps, at = [], 0
    m = lib.tp_n_inputs(p)
    for k, code in enumerate(ops.tolist()):
        op = Op(code)
        arity = OP_ARITY[op]
        if arity < 0:                       # variadic: count, operands..., count
            n = int(args[at])
            steps.append(Step(m + k, op, tuple(args[at + 1:at + 1 + n].tolist()), at + 1))
            at += n + 2
        else:
            steps.append(Step(m + k, op, tuple(args[at:at + arity].tolist()), at))
            at += arity
    return steps, consts, outputs


def at_point(tape, x=None, v=None, w=None, rec=None):
    """Values, tangents (direction v, flat like x) and adjoints (weights w, flat like y) of every
    variable at x, and the local partials aligned with the operand stream; with "rec", the
    recording swept, and "x", the flat point. Where a branch guard flips at x, a tape from
    ad.record is recorded again there first (else BranchChanged).

    The recording (rec, default tape._rec) is read once and x=None (its last point swept,
    which replays in other threads move) resolved once: another thread re-recording the tape
    meanwhile changes nothing here."""
    rec = tape._rec if rec is None else rec
    xf = rec.x_flat(x)
    try:
        return sweep(rec, xf, v, w)
    except Flip:
        if x is None:
            parts = rec.split(xf)
            x = parts[0] if len(parts) == 1 else tuple(parts)
        rec = tape._after_flip(rec, x)
        return sweep(rec, rec.x_flat(x), v, w)


def sweep(rec, xf, v=None, w=None):
    """at_point's numbers for the recording rec at the flat point xf (no re-recording)."""
    p = rec._p
    nv = rec.m + lib.tp_n_ops(p)
    vals, tans, adjs = np.empty(nv), np.empty(nv), np.empty(nv)
    partials = np.empty(lib.tp_n_args(p))
    vf = None if v is None else np.ascontiguousarray(v, dtype=np.float64).ravel()
    wf = None if w is None else np.ascontiguousarray(w, dtype=np.float64).ravel()
    if vf is not None and vf.size != rec.m:
        raise ValueError(f"expected a direction v of {rec.m} entries, got {vf.size}")
    if wf is not None and wf.size != rec.n_out:
        raise ValueError(f"expected weights w of {rec.n_out} entries, got {wf.size}")
    check(lib.tp_inspect(p, _buf(xf), ffi.NULL if vf is None else _buf(vf),
                         ffi.NULL if wf is None else _buf(wf), _buf(vals), _buf(tans),
                         _buf(adjs), _buf(partials)), "inspect")
    return {"values": vals, "tangents": tans if vf is not None else None,
            "adjoints": adjs if wf is not None else None, "partials": partials, "rec": rec,
            "x": xf}

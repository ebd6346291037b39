"""The recorded program as Python data, for traces and graphs: each operation with its operands,
and every variable's value, tangent and adjoint, and each operand's local partial, at a point.
All numbers come from the C sweeps (tp_export, tp_inspect); nothing is recomputed here.

The operand stream is decoded here only (decode), by the rule of csrc/tape.h: each operation
writes a contiguous range of new variables, as many as ops.def's RESULTS column says (1 for
scalar ops) or, for a VARIADIC-results op (CALL), the count stored as its first operand word."""
from dataclasses import dataclass

import numpy as np

from ._core import OP_ARITY, OP_FORMULA, OP_RESULTS, Flip, GroupOp, Op, check, ffi, lib

_ARITY = np.array([OP_ARITY[op] for op in sorted(Op)], dtype=np.int64)
_RESULTS = np.array([OP_RESULTS[op] for op in sorted(Op)], dtype=np.int64)


@dataclass(frozen=True)
class Step:
    """One operation: variables index .. index + results - 1 = op(operands); an operand < 0 is
    constant -1-operand. A CALL's operands are its primitive's id (a constant), then its inputs."""
    index: int                 # its first result
    op: Op
    operands: tuple
    args_at: int               # position of the first operand in the operand stream
    results: int = 1           # how many variables it writes

    @property
    def formula(self):
        return OP_FORMULA[self.op]


def _buf(a, ctype="double[]"):
    return ffi.from_buffer(ctype, a)


def export(tape):
    """(ops, args, consts, outputs) of a tape (or a recording) as NumPy arrays (tp_export)."""
    p = tape._p
    ops = np.empty(lib.tp_n_ops(p), dtype=np.uint8)
    args = np.empty(lib.tp_n_args(p), dtype=np.int32)
    consts = np.empty(lib.tp_n_consts(p))
    outputs = np.empty(lib.tp_n_outputs(p), dtype=np.int32)
    check(lib.tp_export(p, _buf(ops, "uint8_t[]"), _buf(args, "int32_t[]"), _buf(consts),
                        _buf(outputs, "int32_t[]")))
    return ops, args, consts, outputs


def decode(ops, args, m):
    """The variable model of an exported tape with m inputs, per op (int64 arrays): where its
    operands start in the operand stream, how many there are, its first result variable and its
    number of results. Fixed-arity ops take ARITY words; a variadic op n, w_1 .. w_n, n, of which
    w_1 is the result count when its RESULTS is variadic, the rest operands."""
    n_ops = ops.size
    arity = _ARITY[ops] if n_ops else np.empty(0, dtype=np.int64)
    results = _RESULTS[ops] if n_ops else np.empty(0, dtype=np.int64)
    start = np.empty(n_ops, dtype=np.int64)
    count = arity.copy()
    pos, prev = 0, 0
    for k in list(np.flatnonzero(arity < 0)) + [n_ops]:     # runs of fixed-arity ops
        seg = arity[prev:k]
        ends = np.cumsum(seg)
        start[prev:k] = pos + ends - seg
        pos += int(ends[-1]) if seg.size else 0
        if k < n_ops:                        # the variadic op k
            n = int(args[pos])
            start[k], count[k] = pos + 1, n
            if results[k] < 0:               # w_1: its result count
                results[k] = int(args[pos + 1])
                start[k], count[k] = pos + 2, n - 1
            pos += n + 2
        prev = k + 1
    first = m + np.cumsum(results) - results
    return start, count, first, results


def refuse_blocks(tape, what):
    """TypeError naming `what` for a tape holding array block ops (not shown per element yet)."""
    ops = export(tape)[0]
    found = sorted({Op(int(o)).name for o in np.unique(ops)} & {op.name for op in GroupOp.BLOCK})
    if found:
        raise TypeError(f"{what} of a tape holding array block operations ({', '.join(found)}) "
                        f"is not implemented yet")


def listing(tape):
    """(steps, constants, outputs) of a tape (or a recording): its Wengert list in order."""
    ops, args, consts, outputs = export(tape)
    start, count, first, results = decode(ops, args, lib.tp_n_inputs(tape._p))
    steps = [Step(z, Op(code), tuple(args[s:s + c].tolist()), s, r)
             for code, s, c, z, r in zip(ops.tolist(), start.tolist(), count.tolist(),
                                         first.tolist(), results.tolist())]
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
    xf = rec.x_flat(x).copy()                # (the view keeps it: never the caller's array)
    try:
        return sweep(rec, xf, v, w)
    except Flip:
        if x is None:
            parts = rec.split(xf)
            x = parts[0] if len(parts) == 1 else tuple(parts)
        rec = tape._after_flip(rec, x)
        return sweep(rec, rec.x_flat(x).copy(), v, w)


def sweep(rec, xf, v=None, w=None):
    """at_point's numbers for the recording rec at the flat point xf (no re-recording)."""
    p = rec._p
    nv = lib.tp_n_vars(p)
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

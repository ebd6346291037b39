"""The compiled core: cffi handles, the opcode enum and C status codes turned into exceptions."""
import enum

from ._tapead import ffi, lib
from .errors import BranchChanged, TapeError


class Flip(BranchChanged):
    """A replay found a flipped branch guard (details: lib.tp_branch_info); tapead/tape.py
    re-records or turns it into a BranchChanged naming the guard."""

#: Opcodes, generated from csrc/ops.def through the cffi enum (values from the compiler).
Op = enum.IntEnum("Op", {ffi.string(lib.tp_op_name[i]).decode(): i
                         for i in range(lib.tp_n_opcodes)})
OP_ARITY = {op: lib.tp_op_arity[op] for op in Op}          # -1: variadic
OP_RESULTS = {op: lib.tp_op_results[op] for op in Op}      # -1: stored with its operands
OP_FORMULA = {op: ffi.string(lib.tp_op_formula[op]).decode() for op in Op}
OP_CURVATURE = {op: lib.tp_op_curvature[op] for op in Op}  # 0 linear, 1 bilinear, 2 nonlinear


class GroupOp:
    """Ops by kind, from ops.def's RULE column (through the C table tp_op_kind)."""
    PARTIAL = frozenset(op for op in Op if lib.tp_op_kind[op] == lib.TP_KIND_PARTIAL)
    CUSTOM = frozenset(op for op in Op if lib.tp_op_kind[op] == lib.TP_KIND_CUSTOM)
    GUARD = frozenset(op for op in Op if lib.tp_op_kind[op] == lib.TP_KIND_GUARD)
    PRIMITIVE = frozenset(op for op in Op if lib.tp_op_kind[op] == lib.TP_KIND_PRIMITIVE)
    BLOCK = frozenset(op for op in Op if lib.tp_op_kind[op] == lib.TP_KIND_BLOCK)

_MESSAGES = {
    lib.TP_ENOMEM: (MemoryError, "the tape could not allocate memory"),
    lib.TP_ECLOSED: (TapeError, "this tape is closed: its recording ended with its `with` block "
                                "(or ad.record); start a new Tape to record more"),
    lib.TP_ETHREAD: (TapeError, "this tape is being recorded by another thread; record and "
                                "replay an open tape only from the thread that records it"),
    lib.TP_ETOOBIG: (MemoryError, "the tape is full: at most 2**31 - 1 variables and constants"),
    lib.TP_EARG: (ValueError, "invalid operand or size passed to the tape"),
    lib.TP_EORDER: (TapeError, "inputs must be declared with t.variables() before the first "
                               "operation"),
    lib.TP_EBRANCH: (Flip, "a branch guard flipped"),
    lib.TP_EBUSY: (TapeError, "this tape is being swept (by a replay calling a primitive's "
                              "rule): nothing can be recorded on it until the sweep ends"),
    lib.TP_ESTART: (TapeError, "record inside `with tape:` (or use ad.record); a Tape outside "
                               "its with block does not record"),
    lib.TP_ENORULE: (TypeError, "the tape holds user primitives (tapead.primitive), which have "
                                "no second-order or Taylor rules"),
}


# Raises the exception a primitive's rule raised in this thread's sweep: set by
# tapead/primitive.py, which builds on this module (dependencies point downward only).
raise_callback_error = None


def fail(status, what=None):
    """Raise the exception of a negative C status."""
    if status == lib.TP_ECALLBACK and raise_callback_error is not None:
        raise_callback_error()                     # a primitive's rule raised: that exception
    exc, msg = _MESSAGES.get(status, (RuntimeError, f"tapead core error {status}"))
    raise exc(f"{what}: {msg}" if what else msg)


def check(status, what=None):
    if status < 0:
        fail(status, what)
    return status

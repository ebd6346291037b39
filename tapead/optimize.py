"""Tape.optimize: a recording rebuilt by the C optimiser (csrc/optimize.c) with fewer operations
(common subexpressions merged, constants folded, exact identities forwarded, dead code removed),
and the Python state that goes with it: the input and output structure, the branch guards and
the lines that made them (renumbered), the primitives it calls. docs/API.md describes it."""
import numpy as np

from ._core import check, ffi, lib

STATS = ("cse", "folded", "identities", "dead", "ops_before", "ops_after")


def optimized(rec):
    """A new closed _Recording of the same Tape computing what rec computes, and its stats."""
    from .primitive import _users
    from .tape import _Recording
    p = rec._p
    nv = rec.m + lib.tp_n_ops(p)
    out = ffi.new("tp_tape **")
    vmap = np.empty(nv, dtype=np.int32)
    counts = ffi.new("int64_t[6]")
    check(lib.tp_optimize(p, out, ffi.from_buffer("int32_t[]", vmap), counts), "optimize")
    new = _Recording(rec.owner(), out[0])
    for name in ("pieces", "sizes", "m", "out_shape", "n_out", "fast"):
        setattr(new, name, getattr(rec, name))
    # a guard merged into an earlier identical one reports the earlier's line, as the original
    # (whose replays stop at the first guard that flips) does
    for var in sorted(rec.sites):
        g = int(vmap[var])
        if g >= 0 and g not in new.sites:
            file, line, frozen = rec.sites[var]
            new.sites[g] = (file, line, None if frozen is None else int(vmap[frozen]))
    new.guards = [g for g in dict.fromkeys(int(vmap[v]) for v in rec.guards) if g >= 0]
    if rec in _users:
        _users[new] = set(_users[rec])          # the primitives its CALLs name stay alive
    new.optimized = dict(zip(STATS, (int(c) for c in counts)))
    return new

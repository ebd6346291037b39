"""Tape.optimize: a recording rebuilt by the C optimiser (csrc/optimize.c) with fewer operations
(common subexpressions merged, constants folded, exact identities forwarded, dead code removed),
and the Python state that goes with it: the input and output structure, the branch guards and
the lines that made them (renumbered), the primitives it calls. docs/API.md describes it."""
import weakref

import numpy as np

from ._core import check, ffi, lib

STATS = ("cse", "folded", "identities", "dead", "ops_before", "ops_after")
_removed = weakref.WeakKeyDictionary()     # optimised recording -> its STATS


def optimized(rec, tape=None):
    """A new closed recording (of tape, default rec's) computing what rec computes."""
    from .primitive import _users
    from .recording import Recording
    new = Recording(rec.owner() if tape is None else tape)
    sites = sorted(rec.sites.items())
    frozen = [-1 if s[2] is None else s[2] for _, s in sites]
    # the variables carried across: each guard's (its site's and rec.guards), the .value-read
    old = [v for v, _ in sites] + list(rec.guards) + [f for f in frozen if f >= 0]
    vmap = np.array(old, dtype=np.int32)
    counts = ffi.new("int64_t[6]")
    check(lib.tp_optimize(rec._p, new._p, ffi.from_buffer("int32_t[]", vmap), vmap.size,
                          counts), "optimize")
    new_of = dict(zip(old, vmap.tolist()))
    new.pieces, new.sizes = list(rec.pieces), list(rec.sizes)
    new.m, new.out_shape, new.n_out, new.fast = rec.m, rec.out_shape, rec.n_out, rec.fast
    # a guard merged into an earlier identical one reports the earlier's line, as the original
    # does (its replays stop at the first guard that flips)
    new_sites = {}
    for (var, (file, line, _)), f in zip(sites, frozen):
        g = new_of[var]
        if g >= 0 and g not in new_sites:
            f = new_of[f] if f >= 0 else -1
            new_sites[g] = (file, line, f if f >= 0 else None)
    new.sites = new_sites
    new.guards = [g for g in dict.fromkeys(new_of[v] for v in rec.guards) if g >= 0]
    if rec in _users:
        _users[new] = set(_users[rec])          # the primitives its CALLs name stay alive
    _removed[new] = dict(zip(STATS, (int(c) for c in counts)))
    return new


def removed(rec):
    """{"optimized": what each pass removed} for Tape.stats() of an optimised recording."""
    got = _removed.get(rec)
    return {} if got is None else {"optimized": dict(got)}

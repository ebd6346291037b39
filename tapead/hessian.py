"""tape.hessian: Hessian-vector directions carried in one vector-mode sweep, dense (one per input)
or compressed by the Hessian's sparsity pattern (one per colour, tapead/sparsity.py).

Each recording keeps its plan (``rec.colouring``): the pattern is looked for the second time a
recording is asked for its Hessian (one-off Hessians, as ad.hessian's, stay dense), or at once
when m dense directions would cost more than the analysis, or for a sparse Hessian
(tape.hessian(x, sparse=True), which returns the pattern's entries)."""
import enum
from dataclasses import dataclass

import numpy as np

from ._core import check, ffi, lib
from .convert import block, buf
from .sparsity import hessian_colouring, hessian_entries

FIND_AT_ONCE = 1000            # inputs: above this, look for the pattern on the first Hessian


class Plan(enum.Enum):
    UNKNOWN = "never asked"    # a first Hessian: dense
    ASKED = "asked once"       # the next Hessian looks for the pattern
    DENSE = "dense"            # looked: no pattern worth it


@dataclass(frozen=True)
class Compressed:
    """One direction per colour: entry (r, c) is read back from row r of c's colour."""
    seeds: np.ndarray          # (m, p) 0/1 seed directions
    p: int                     # number of colours
    rows: np.ndarray           # the nonzeros (rows[k], cols[k])
    cols: np.ndarray
    at_r: np.ndarray           # colour of each row / column index
    at_c: np.ndarray


def plan(rec, now=False):
    """The recording's Hessian plan, moved one step on (see the module's docstring); now: look
    for the pattern at once."""
    c = rec.colouring
    if c is False or c is Plan.UNKNOWN:
        c = Plan.ASKED if rec.m <= FIND_AT_ONCE and not now else _find(rec)
    elif c is Plan.ASKED:
        c = _find(rec)
    rec.colouring = c
    return c


def _find(rec):
    found = hessian_colouring(rec)
    if found is None or found[1] >= rec.m:
        return Plan.DENSE
    colours, p, rows, cols = found
    seeds = np.zeros((rec.m, p))
    seeds[np.arange(rec.m), colours] = 1.0
    return Compressed(seeds, p, rows, cols, colours[rows], colours[cols])


def hessian(rec, xf, wf, sparse=False):
    """The Hessian of w·y at xf, (m, m), symmetric to the last bit, by rec's plan; sparse: the
    pattern's entries instead, (values, rows, cols) row by row."""
    m = rec.m
    c = plan(rec, now=sparse)
    if isinstance(c, Compressed):
        B = np.empty((m, c.p))
        check(lib.tp_hvp(rec._p, buf(xf), buf(wf), c.p, buf(c.seeds), ffi.NULL, ffi.NULL,
                         buf(B)), "hessian")
        # the mean with (c, r) makes H symmetric to the last bit
        values = (B[c.rows, c.at_c] + B[c.cols, c.at_r]) * 0.5
        if sparse:
            return values, c.rows, c.cols
        H = np.zeros((m, m))
        H[c.rows, c.cols] = values
        return H
    H = np.zeros((m, m))
    if m:
        check(lib.tp_hvp(rec._p, buf(xf), buf(wf), m, ffi.NULL, ffi.NULL, ffi.NULL, buf(H)),
              "hessian")
        H = (H + H.T) * 0.5
    if sparse:
        rows, cols = entries(rec)
        return H[rows, cols], rows, cols
    return H


def entries(rec):
    """(rows, cols) of the Hessian's pattern, row by row: the compressed plan's, else found once
    (kept with a closed recording) whatever it costs."""
    c = rec.colouring
    if isinstance(c, Compressed):
        return c.rows, c.cols
    cache = rec.sparse if lib.tp_closed(rec._p) else {}
    if "hessian" not in cache:
        cache["hessian"] = hessian_entries(rec)
    return cache["hessian"]


def directions(rec):
    """Directions a Hessian of rec carries by its plan: colours, m (dense), or None (not yet
    known: the first Hessian is dense, the second may be compressed)."""
    c = rec.colouring
    return c.p if isinstance(c, Compressed) else rec.m if c is Plan.DENSE else None


def blocks(H, pieces):
    """H over inputs given in pieces: one block, or nested tuples of blocks per pair of pieces."""
    if len(pieces) == 1:
        return block(H, pieces, 0, 0)
    return tuple(tuple(block(H, pieces, i, j) for j in range(len(pieces)))
                 for i in range(len(pieces)))

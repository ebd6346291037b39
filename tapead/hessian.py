"""tape.hessian: Hessian-vector directions carried in one vector-mode sweep, dense (one per input)
or compressed by the Hessian's sparsity pattern (one per colour, tapead/sparsity.py).

Each recording keeps its plan (``rec.colouring``): the pattern is looked for the second time a
recording is asked for its Hessian (one-off Hessians, as ad.hessian's, stay dense), or at once
when m dense directions would cost more than the analysis."""
import enum
from dataclasses import dataclass

import numpy as np

from ._core import check, ffi, lib
from .convert import block, buf
from .sparsity import hessian_colouring

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


def plan(rec):
    """The recording's Hessian plan, moved one step on (see the module's docstring)."""
    c = rec.colouring
    if c is False or c is Plan.UNKNOWN:
        c = Plan.ASKED if rec.m <= FIND_AT_ONCE else _find(rec)
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


def hessian(rec, xf, wf):
    """The Hessian of w·y at xf, (m, m), symmetric to the last bit, by rec's plan."""
    m = rec.m
    c = plan(rec)
    H = np.zeros((m, m))
    if isinstance(c, Compressed):
        B = np.empty((m, c.p))
        check(lib.tp_hvp(rec._p, buf(xf), buf(wf), c.p, buf(c.seeds), ffi.NULL, ffi.NULL,
                         buf(B)), "hessian")
        # the mean with (c, r) makes H symmetric to the last bit
        H[c.rows, c.cols] = (B[c.rows, c.at_c] + B[c.cols, c.at_r]) * 0.5
    elif m:
        check(lib.tp_hvp(rec._p, buf(xf), buf(wf), m, ffi.NULL, ffi.NULL, ffi.NULL, buf(H)),
              "hessian")
        H = (H + H.T) * 0.5
    return H


def blocks(H, pieces):
    """H over inputs given in pieces: one block, or nested tuples of blocks per pair of pieces."""
    if len(pieces) == 1:
        return block(H, pieces, 0, 0)
    return tuple(tuple(block(H, pieces, i, j) for j in range(len(pieces)))
                 for i in range(len(pieces)))

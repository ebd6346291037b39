"""The Hessian's sparsity, from the tape's structure alone, and a colouring of its columns, so
that tape.hessian carries one direction per colour instead of one per input (the compressed
Hessian of Curtis-Powell-Reid / Coleman-Moré, as CppAD's sparse_hessian).

Which inputs each variable depends on is propagated forward as bit sets; an operation whose
second derivative can couple its operands (tp_op_curvature, from each op's rules) adds those
pairs to the pattern. The pattern holds for every point the tape is valid at (its guards). A tape
holding array block ops gets, for now, the pattern of J^T J from the Jacobian's per-element
pattern (csrc/pattern.c): a superset, conservative."""
import numpy as np

from ._core import OP_CURVATURE, GroupOp
from .program import listing

MAX_WORK = 20_000_000          # bit operations; beyond that a dense Hessian is as cheap


def hessian_colouring(rec):
    """(colour of each input, number of colours, rows, cols) of the nonzeros, or None when the
    analysis would cost more than it saves."""
    m = rec.m
    if m < 3:
        return None
    rows = _pattern_rows(rec, MAX_WORK)
    if rows is None:
        return None
    colours = np.full(m, -1, dtype=np.int64)
    for i in range(m):                           # greedy distance-2 colouring
        taken = set()
        for r in _bits(rows[i]):
            for j in _bits(rows[r]):
                if colours[j] >= 0:
                    taken.add(int(colours[j]))
        c = 0
        while c in taken:
            c += 1
        colours[i] = c
    return (colours, int(colours.max()) + 1) + _entries(rows)


def hessian_entries(rec):
    """(rows, cols) of the Hessian's structural nonzeros, whatever the analysis costs."""
    return _entries(_pattern_rows(rec, None))


def _entries(rows):
    r_idx = [r for r in range(len(rows)) for _ in _bits(rows[r])]
    c_idx = [c for r in range(len(rows)) for c in _bits(rows[r])]
    return np.array(r_idx, dtype=np.int64), np.array(c_idx, dtype=np.int64)


def _pattern_rows(rec, max_work):
    """rows[i]: the bit set of the columns j with H[i, j] != 0 (for some point and weights), or
    None when that would take more than max_work bit operations (None: no limit)."""
    m = rec.m
    steps, _, _ = listing(rec)
    if any(st.op in GroupOp.BLOCK for st in steps):  # array block ops: J^T J's pattern
        return _conservative_rows(rec, max_work)
    if max_work is not None and len(steps) * max(1, m // 64) > max_work:
        return None
    dep = [1 << i for i in range(m)] + [0] * sum(st.results for st in steps)
    rows = [0] * m
    work = 0

    def couple(a, b):                            # H[i, j] != 0 for i in a, j in b (both ways)
        nonlocal work
        for s, t in ((a, b), (b, a)):
            for i in _bits(s):
                rows[i] |= t
                work += 1
            if a == b:
                break
    for st in steps:
        sets = [dep[o] if o >= 0 else 0 for o in st.operands]
        z = 0
        for s in sets:
            z |= s
        dep[st.index] = z
        if st.results > 1:                       # a call's further outputs
            dep[st.index + 1:st.index + st.results] = [z] * (st.results - 1)
        curvature = OP_CURVATURE[st.op]
        if curvature == 2 and z:
            couple(z, z)
        elif curvature == 1:                     # x*y, and the pairs of a dot product
            for a, b in zip(sets[0::2], sets[1::2]):
                if a and b:
                    couple(a, b)
        if max_work is not None and work > max_work:
            return None
    return rows


def _conservative_rows(rec, max_work):
    """rows for a tape holding array block ops: H[i, j] != 0 only where some output depends on
    both x_i and x_j (the pattern of J^T J, from the Jacobian's per-element pattern in C). A
    superset of the Hessian's (no nonlinear-interaction analysis through block ops yet): exact
    when each output's inputs all interact, dense for a scalar objective of every input."""
    from .sparse import jacobian_pattern
    pat = jacobian_pattern(rec)
    nnz = pat.row_nnz.astype(np.int64)
    if max_work is not None and int((nnz * nnz).sum()) > max_work:
        return None
    rows = [0] * rec.m
    for k in range(pat.n):
        cols = pat.indices[pat.indptr[k]:pat.indptr[k + 1]].tolist()
        bits = 0
        for c in cols:
            bits |= 1 << c
        for c in cols:
            rows[c] |= bits
    return rows


def _bits(s):
    """Positions of the set bits of s, low to high."""
    while s:
        low = s & -s
        yield low.bit_length() - 1
        s ^= low

"""Sparse Jacobians: the structural pattern (csrc/pattern.c), a colouring of its columns and
rows (csrc/colour.c), and the compressed sweeps that give every nonzero exactly.

A forward (tangent) direction that is the sum of the unit vectors of columns sharing no row
gives all their entries at once; so does a reverse (adjoint) weight vector for rows sharing no
column (Curtis-Powell-Reid; CppAD's sparse_jacobian). mode="auto" also splits dense rows off to
reverse mode (or dense columns to forward mode), so an arrowhead Jacobian takes 3 sweeps, and
keeps the plan the cost model (tape._ADJOINT_COST) prices cheapest. The pattern and the plans
are kept with the recording (a re-recording starts afresh). Sparse Hessians take their pattern
and colouring from hessian.py and sparsity.py; square() makes their scipy.sparse arrays.
"""
import numpy as np

from ._core import check, ffi, lib

COLOUR_BUDGET = 50_000_000     # row entries one colouring may visit; beyond it, unit directions
MAX_TRIALS = 6                 # splits tried on each side by mode="auto"


def scipy_sparse():
    """scipy.sparse, or an ImportError naming the extra that installs it."""
    try:
        import scipy.sparse as sp
    except ImportError:
        raise ImportError("sparse derivatives are scipy.sparse arrays: install SciPy >= 1.8, "
                          "e.g. pip install 'tapead[sparse]' (or 'tapead[test]')") from None
    return sp


def _cache(rec):
    """The recording's cache; a throwaway one while it is still open (it may still change)."""
    return rec.sparse if lib.tp_closed(rec._p) else {}


def _ptr(a, ctype):
    return ffi.from_buffer(ctype, a) if a is not None else ffi.NULL


class Pattern:
    """A Jacobian's structural pattern, n x m: CSR (indptr, indices) and CSC (colptr, rowidx),
    and each nonzero's row (rows, in CSR order)."""

    def __init__(self, n, m, indptr, indices):
        self.n, self.m, self.indptr, self.indices = n, m, indptr, indices
        self.row_nnz = np.diff(indptr)
        self.rows = np.repeat(np.arange(n, dtype=np.int32), self.row_nnz)
        self.col_nnz = np.bincount(indices, minlength=m)
        self.colptr = np.zeros(m + 1, dtype=np.int64)
        np.cumsum(self.col_nnz, out=self.colptr[1:])
        self.rowidx = self.rows[np.argsort(indices, kind="stable")]

    nnz = property(lambda self: self.indices.size)

    def csr_indptr(self):
        """A copy of indptr in the indices' dtype (int32 when it fits: SciPy copies mixed)."""
        return self.indptr.astype(np.int32 if self.nnz < 2**31 else np.int64)


def jacobian_pattern(rec):
    """The recording's Pattern, found once (forward over inputs, or backward over outputs when
    they need fewer 64-bit words)."""
    cache = _cache(rec)
    pat = cache.get("pattern")
    if pat is None:
        n, m = rec.n_out, rec.m
        indptr = np.empty(n + 1, dtype=np.int64)
        out = ffi.new("int32_t **")
        nnz = check(lib.tp_jac_pattern(rec._p, (n + 63) // 64 < (m + 63) // 64, 0,
                                       _ptr(indptr, "int64_t[]"), out), "jacobian_sparsity")
        try:
            indices = np.frombuffer(ffi.buffer(out[0], 4 * nnz), dtype=np.int32).copy() \
                if nnz else np.empty(0, dtype=np.int32)
        finally:
            lib.tp_free_pattern(out[0])
        pat = cache["pattern"] = Pattern(n, m, indptr, indices)
    return pat


def _colour(pat, rows, use_conflict, use_line, unit=False):
    """Colours of the columns (rows=True: of the rows) and their count; use_conflict: the rows
    (columns) that count as shared, use_line: the lines to colour. unit, or over the budget: a
    colour of its own for each line coloured."""
    if rows:                     # the rows of J are the columns of J.T: CSR and CSC swap
        nr, nc, rp, ci, cp, ri = pat.m, pat.n, pat.colptr, pat.rowidx, pat.indptr, pat.indices
    else:
        nr, nc, rp, ci, cp, ri = pat.n, pat.m, pat.indptr, pat.indices, pat.colptr, pat.rowidx
    colour = np.empty(nc, dtype=np.int32)
    conflict = None if use_conflict is None else use_conflict.astype(np.uint8)
    order = np.argsort(-np.diff(cp), kind="stable")          # largest first (fewer colours)
    k = lib.TP_ETOOBIG
    if not unit:
        k = lib.tp_colour(nr, nc, _ptr(rp, "int64_t[]"), _ptr(ci, "int32_t[]"),
                          _ptr(cp, "int64_t[]"), _ptr(ri, "int32_t[]"),
                          _ptr(conflict, "uint8_t[]"),
                          _ptr(use_line.astype(np.uint8), "uint8_t[]"), _ptr(order, "int64_t[]"),
                          COLOUR_BUDGET, _ptr(colour, "int32_t[]"))
    if k == lib.TP_ETOOBIG:
        colour[:] = -1
        colour[use_line] = np.arange(int(use_line.sum()), dtype=np.int32)
        return colour, int(use_line.sum())
    return colour, check(k, "colouring")


class Plan:
    """Which nonzeros come from forward directions (fwd: a colour per column, -1 none; pf
    colours) and which from reverse weights (rev: a colour per row; pr colours)."""

    def __init__(self, pat, split):
        fwd, self.pf, rev, self.pr, self.from_fwd = split
        self.from_rev = ~self.from_fwd
        rows, cols = pat.rows.astype(np.int64), pat.indices.astype(np.int64)
        f, r = self.from_fwd, self.from_rev
        self.fidx = rows[f] * self.pf + fwd[cols[f]]     # J[r, c] = B[r, colour of c]
        self.ridx = cols[r] * self.pr + rev[rows[r]]     # J[r, c] = X[c, colour of r]
        self.seeds = np.zeros((pat.m, self.pf))
        self.seeds[np.flatnonzero(fwd >= 0), fwd[fwd >= 0]] = 1.0
        self.weights = np.zeros((pat.n, self.pr))
        self.weights[np.flatnonzero(rev >= 0), rev[rev >= 0]] = 1.0


def _split(pat, reverse_main, lines, unit=False):
    """(fwd, pf, rev, pr, from_fwd) with `lines` (rows, or with reverse_main columns) done in
    the other mode and the rest of the pattern coloured for the main mode (unit: a colour of
    its own for each line, no colouring)."""
    if not reverse_main:                     # forward; the dense rows `lines` in reverse
        rev_rows = np.zeros(pat.n, dtype=bool)
        rev_rows[lines] = True
        from_fwd = ~rev_rows[pat.rows]
        need = np.bincount(pat.indices[from_fwd], minlength=pat.m) > 0
        fwd, pf = _colour(pat, False, ~rev_rows, need, unit)
        rev, pr = _colour(pat, True, None, rev_rows & (pat.row_nnz > 0))
    else:                                    # reverse; the dense columns `lines` in forward
        fwd_cols = np.zeros(pat.m, dtype=bool)
        fwd_cols[lines] = True
        from_fwd = fwd_cols[pat.indices]
        need = np.bincount(pat.rows[~from_fwd], minlength=pat.n) > 0
        rev, pr = _colour(pat, True, ~fwd_cols, need, unit)
        fwd, pf = _colour(pat, False, None, fwd_cols & (pat.col_nnz > 0))
    return fwd, pf, rev, pr, from_fwd


def _search(pat, adj_cost):
    """mode="auto": the cheapest of a few splits on each side, never dearer than the dense
    Jacobian's unit directions. A line with d nonzeros kept in the main mode costs at least d
    directions: lines as dense as the best plan so far always go to the other mode; then the
    next group of equal density joins them while that pays, up to MAX_TRIALS."""
    reverse = pat.m > adj_cost * pat.n                       # the dense Jacobian's mode
    best = _split(pat, reverse, np.arange(0), unit=True)
    best_cost = best[1] + adj_cost * best[3]
    for reverse_main in (False, True):
        deg = pat.col_nnz if reverse_main else pat.row_nnz
        unit = adj_cost if reverse_main else 1.0
        order = np.argsort(-deg, kind="stable")
        sdeg = deg[order]
        k = int(np.count_nonzero(sdeg * unit >= best_cost))
        for _ in range(MAX_TRIALS):
            split = _split(pat, reverse_main, order[:k])
            cost = split[1] + adj_cost * split[3]
            if cost >= best_cost and k:         # splitting more lines stopped paying
                break
            if cost < best_cost:
                best, best_cost = split, cost
            if k == len(deg) or sdeg[k] == 0:
                break
            k = int(np.count_nonzero(sdeg >= sdeg[k]))
    return best


def plan_for(rec, mode, adj_cost):
    """The recording's plan for mode ("forward", "reverse" or "auto"), found once."""
    key, cache = ("plan", mode), _cache(rec)
    plan = cache.get(key)
    if plan is None:
        pat = jacobian_pattern(rec)
        split = _search(pat, adj_cost) if mode == "auto" else \
            _split(pat, mode == "reverse", np.arange(0))
        plan = cache[key] = Plan(pat, split)
    return plan


def jacobian(rec, xf, mode, adj_cost):
    """The Jacobian at the flat point xf as a csr_array (n_outputs, n_inputs)."""
    sp = scipy_sparse()
    pat = jacobian_pattern(rec)
    plan = plan_for(rec, mode, adj_cost)
    data = np.empty(pat.nnz)
    x = ffi.from_buffer("double[]", xf)
    if plan.pf:
        B = np.empty((pat.n, plan.pf))
        check(lib.tp_jvp(rec._p, x, plan.pf, ffi.from_buffer("double[]", plan.seeds), ffi.NULL,
                         ffi.from_buffer("double[]", B)), "jacobian")
        data[plan.from_fwd] = B.ravel()[plan.fidx]
    if plan.pr:
        X = np.empty((pat.m, plan.pr))
        check(lib.tp_vjp(rec._p, x, plan.pr, ffi.from_buffer("double[]", plan.weights),
                         ffi.NULL, ffi.from_buffer("double[]", X)), "jacobian")
        data[plan.from_rev] = X.ravel()[plan.ridx]
    if not plan.pf and not plan.pr:          # no nonzeros: still check x against the guards
        check(lib.tp_forward(rec._p, x, ffi.from_buffer("double[]", np.empty(pat.n))),
              "jacobian")
    rec.sparse["colours"] = (plan.pf, plan.pr)
    return sp.csr_array((data, pat.indices.copy(), pat.csr_indptr()), shape=(pat.n, pat.m))


def jacobian_sparsity(rec):
    """The structural pattern as a boolean csr_array (n_outputs, n_inputs)."""
    sp = scipy_sparse()
    pat = jacobian_pattern(rec)
    return sp.csr_array((np.ones(pat.nnz, dtype=bool), pat.indices.copy(), pat.csr_indptr()),
                        shape=(pat.n, pat.m))


def square(values, rows, cols, m):
    """A csr_array (m, m) holding values at (rows, cols), given row by row, columns ascending."""
    sp = scipy_sparse()
    indptr = np.zeros(m + 1, dtype=np.int32 if rows.size < 2**31 else np.int64)
    np.cumsum(np.bincount(rows, minlength=m), out=indptr[1:])
    return sp.csr_array((values, cols.astype(indptr.dtype), indptr), shape=(m, m))

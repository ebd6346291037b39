/* The Jacobian's sparsity pattern from the tape's structure alone: which inputs each variable
 * depends on, propagated as bit sets (64 inputs a machine word, up to W words a pass), or which
 * outputs depend on each variable, propagated backward (64 outputs a word), whichever needs
 * fewer words. Structural: a superset of the nonzeros at every point where the tape's guards
 * hold. A comparison's result has derivative zero and carries no dependency; WHERE's condition
 * carries none, its two sides both count; a primitive's outputs each depend on all its inputs.
 */
#include <stdlib.h>
#include <string.h>
#include "sweeps.h"

#define PASS_BYTES ((int64_t)8 << 20)   /* bit sets of one pass: W words for every variable */

/* The operand codes q[0 .. *n-1] and result count *r of an op whose words start at p (tape.h,
 * "Operands"); returns where its words end. */
static const int32_t *decode(int op, const int32_t *p, const int32_t **q, int32_t *n, int32_t *r)
{
    int a = tp_op_arity[op];
    if (a != VARIADIC) { *q = p; *n = a; *r = tp_op_results[op]; return p + a; }
    int counted = tp_op_results[op] == VARIADIC;    /* w_1 is the result count, no operand */
    *r = counted ? p[1] : tp_op_results[op];
    *q = p + 1 + counted; *n = p[0] - counted;
    return p + p[0] + 2;
}

/* The same walking back: p is where the op's words end; returns where they start. */
static const int32_t *decode_back(int op, const int32_t *p, const int32_t **q, int32_t *n,
                                  int32_t *r)
{
    int a = tp_op_arity[op];
    const int32_t *start = p - (a == VARIADIC ? p[-1] + 2 : a);
    decode(op, start, q, n, r);
    return start;
}

/* The first operand a derivative flows from: none for a comparison, not WHERE's condition. */
static int32_t first_carrier(int op, int32_t n)
{
    return tp_op_kind[op] == TP_KIND_GUARD ? n : op == TP_OP_WHERE ? 1 : 0;
}

/* A pass keeps each variable's W-word set and the span [lo, hi) of its words that may be
 * nonzero (the rest are not even written): banded and block structure stays cheap. */
typedef struct { uint64_t *S; int32_t *lo, *hi; int64_t W; } sets_t;

static void set_empty(sets_t *s, int64_t v) { s->lo[v] = INT32_MAX; s->hi[v] = 0; }

/* z |= s (variables), growing z's span (words newly inside it zeroed first). */
static void set_or(sets_t *s, int64_t z, int64_t v)
{
    int32_t lo = s->lo[v], hi = s->hi[v];
    if (lo >= hi) return;
    uint64_t *restrict a = s->S + z * s->W;
    const uint64_t *restrict b = s->S + v * s->W;
    if (s->lo[z] >= s->hi[z]) { s->lo[z] = lo; s->hi[z] = lo; }
    for (int32_t k = lo; k < s->lo[z]; k++) a[k] = 0;
    for (int32_t k = s->hi[z]; k < hi; k++) a[k] = 0;
    if (lo < s->lo[z]) s->lo[z] = lo;
    if (hi > s->hi[z]) s->hi[z] = hi;
    for (int32_t k = lo; k < hi; k++) a[k] |= b[k];
}

/* Each variable's inputs i0 .. i0+64W-1 (bit i-i0 of its W words), forward. */
static void forward_pass(const tp_tape *t, sets_t *s, int64_t i0)
{
    int64_t W = s->W;
    for (int64_t i = 0; i < t->n_inputs; i++) {
        set_empty(s, i);
        if (i < i0 || i >= i0 + 64 * W) continue;
        int32_t k = (int32_t)((i - i0) / 64);
        s->S[i * W + k] = (uint64_t)1 << ((i - i0) % 64);
        s->lo[i] = k; s->hi[i] = k + 1;
    }
    const int32_t *p = t->args, *q;
    int32_t n, r;
    for (int64_t o = 0, iz = t->n_inputs; o < t->n_ops; o++, iz += r) {
        int op = t->ops[o];
        p = decode(op, p, &q, &n, &r);
        if (r < 1) continue;
        set_empty(s, iz);
        for (int32_t i = first_carrier(op, n); i < n; i++)
            if (q[i] >= 0) set_or(s, iz, q[i]);       /* q[i] < 0: a constant */
        for (int32_t k = 1; k < r; k++) {             /* a call's outputs: all its inputs */
            set_empty(s, iz + k);
            set_or(s, iz + k, iz);
        }
    }
}

/* Each variable's outputs r0 .. r0+64W-1 that depend on it, backward. */
static void reverse_pass(const tp_tape *t, sets_t *s, int64_t r0)
{
    int64_t W = s->W, nv = tp_nvars(t);
    for (int64_t v = 0; v < nv; v++) set_empty(s, v);
    for (int64_t r = r0; r < t->n_outputs && r < r0 + 64 * W; r++) {
        int64_t v = t->outputs[r];
        if (v < 0) continue;
        int32_t k = (int32_t)((r - r0) / 64);
        if (s->lo[v] >= s->hi[v]) { s->lo[v] = k; s->hi[v] = k; }
        for (int32_t j = s->hi[v]; j <= k; j++) s->S[v * W + j] = 0;
        for (int32_t j = k; j < s->lo[v]; j++) s->S[v * W + j] = 0;
        if (k < s->lo[v]) s->lo[v] = k;
        if (k + 1 > s->hi[v]) s->hi[v] = k + 1;
        s->S[v * W + k] |= (uint64_t)1 << ((r - r0) % 64);
    }
    const int32_t *p = t->args + t->n_args, *q;
    int32_t n, r;
    for (int64_t o = t->n_ops - 1, iz = nv; o >= 0; o--) {
        int op = t->ops[o];
        p = decode_back(op, p, &q, &n, &r);
        iz -= r;                                      /* its first result */
        for (int32_t k = 0; k < r; k++) {
            if (s->lo[iz + k] >= s->hi[iz + k]) continue;
            for (int32_t i = first_carrier(op, n); i < n; i++)
                if (q[i] >= 0) set_or(s, q[i], iz + k);
        }
    }
}

typedef struct { int32_t *row, *col; int64_t n, cap; } pairs_t;

static int push(pairs_t *e, int64_t r, int64_t c)
{
    if (e->n == e->cap) {
        int64_t cap = e->cap ? 2 * e->cap : 1024;
        int32_t *a = realloc(e->row, (size_t)cap * sizeof *a);
        if (a) e->row = a;
        int32_t *b = a ? realloc(e->col, (size_t)cap * sizeof *b) : NULL;
        if (!b) return TP_ENOMEM;
        e->col = b; e->cap = cap;
    }
    e->row[e->n] = (int32_t)r; e->col[e->n] = (int32_t)c; e->n++;
    return TP_OK;
}

/* The entries (i, base + bit) for the set bits of the W-word set of variable index[i] (or i),
 * i < count; transposed: (base + bit, i). */
static int collect(pairs_t *e, const sets_t *s, const int32_t *index, int64_t count,
                   int64_t base, int transposed)
{
    for (int64_t i = 0; i < count; i++) {
        int64_t v = index ? index[i] : i;
        if (v < 0) continue;                         /* a constant output */
        for (int64_t b = s->lo[v]; b < s->hi[v]; b++)
            for (uint64_t w = s->S[v * s->W + b]; w; w &= w - 1) {
                int64_t j = base + 64 * b + __builtin_ctzll(w);
                int rc = transposed ? push(e, j, i) : push(e, i, j);
                if (rc < 0) return rc;
            }
    }
    return TP_OK;
}

/* The pattern as CSR over the outputs: indptr (n_outputs + 1, the caller's), *indices (column
 * indices ascending in each row, allocated here: free with tp_free_pattern). reverse: propagate
 * over the outputs instead of the inputs. Returns the number of nonzeros. */
int64_t tp_jac_pattern(tp_tape *t, int reverse, int64_t *indptr, int32_t **indices)
{
    if (!tp_may_read(t)) return TP_ETHREAD;
    *indices = NULL;
    int64_t nv = tp_nvars(t), span = reverse ? t->n_outputs : t->n_inputs;
    int64_t words = (span + 63) / 64, W = PASS_BYTES / 8 / (nv ? nv : 1);
    if (W > words) W = words;
    if (W < 1) W = 1;
    sets_t s = {malloc((size_t)(nv * W) * sizeof *s.S), malloc((size_t)(nv + 1) * sizeof *s.lo),
                malloc((size_t)(nv + 1) * sizeof *s.hi), W};
    pairs_t e = {NULL, NULL, 0, 0};
    int rc = s.S && s.lo && s.hi ? TP_OK : TP_ENOMEM;
    for (int64_t b0 = 0; b0 < span && rc >= 0; b0 += 64 * W) {
        if (reverse) {
            reverse_pass(t, &s, b0);
            rc = collect(&e, &s, NULL, t->n_inputs, b0, 1);
        } else {
            forward_pass(t, &s, b0);
            rc = collect(&e, &s, t->outputs, t->n_outputs, b0, 0);
        }
    }
    free(s.S); free(s.lo); free(s.hi);
    int32_t *idx = rc < 0 ? NULL : malloc((size_t)(e.n ? e.n : 1) * sizeof *idx);
    if (rc >= 0 && !idx) rc = TP_ENOMEM;
    if (rc >= 0) {                /* counting sort by row: stable, so columns stay ascending */
        memset(indptr, 0, (size_t)(t->n_outputs + 1) * sizeof *indptr);
        for (int64_t k = 0; k < e.n; k++) indptr[e.row[k] + 1]++;
        for (int64_t r = 0; r < t->n_outputs; r++) indptr[r + 1] += indptr[r];
        for (int64_t k = 0; k < e.n; k++) idx[indptr[e.row[k]]++] = e.col[k];
        for (int64_t r = t->n_outputs; r > 0; r--) indptr[r] = indptr[r - 1];
        indptr[0] = 0;
        *indices = idx;
    }
    free(e.row);
    free(e.col);
    return rc < 0 ? rc : e.n;
}

void tp_free_pattern(int32_t *indices) { free(indices); }

/* The Jacobian's sparsity pattern from the tape's structure alone: which inputs each variable
 * depends on, propagated as bit sets (64 inputs a machine word), or which outputs depend on each
 * variable, propagated backward (64 outputs a word), whichever needs fewer words. Structural: a
 * superset of the nonzeros at every point where the tape's guards hold. A comparison's result
 * has derivative zero and carries no dependency; WHERE's condition carries none, its two sides
 * both count; a primitive's outputs each depend on all its inputs.
 *
 * A variable's set is stored over its span only, the words between its first and last possible
 * bit (a first sweep finds every span: the hull of its operands'), packed one after another: a
 * banded or block structure needs a word or two a variable whatever the size. When the spans add
 * up to more than PASS_BYTES, the words are split into ranges swept one pass each.
 */
#include <stdlib.h>
#include <string.h>
#include "block.h"
#include "sweeps.h"

#define PASS_BYTES ((int64_t)32 << 20)  /* the packed sets of one pass */

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

/* ---- array block ops, per element ------------------------------------------------------ */
/* What an edge (result variable z depends on variable v) does: grow a span or OR a set, forward
 * (z from v) or backward (v from z). */
typedef struct sets_t sets_t;
typedef enum { SPAN_FWD, SPAN_REV, SET_FWD, SET_REV } edge_kind;
static void edge(sets_t *s, edge_kind k, int64_t z, int64_t v);

/* An operand block's element at offset o: a variable (code >= 0) or a constant. */
#define EDGE(z, code) do { const int64_t c_ = (code); if (c_ >= 0) edge(s, k, (z), c_); } while (0)

/* Every edge of the block op with words q (after n: q[0] = r, tape.h) and first result iz:
 * each result element depends on exactly the operand elements it reads (block.c's walks). */
static void block_edges(const tp_tape *t, int op, const int32_t *q, int64_t iz, sets_t *s,
                        edge_kind k)
{
    const int64_t r = q[0], nb = (q[-1] - 3) / 2;
    switch (op) {
    case TP_OP_MAP: {
        const int a = q[2];
        if (tp_op_kind[a] == TP_KIND_GUARD) return;           /* comparisons: no derivative */
        blk b[3];
        for (int64_t i = 0; i < nb && i < 3; i++) tp_blk(t, q + 3 + 2 * i, &b[i]);
        for (int64_t i = a == TP_OP_WHERE ? 1 : 0; i < nb && i < 3; i++) {
            const int32_t f = b[i].first;               /* result dims are operand 0's */
            WALK(b[0].nd, b[0].dims, b[i].st, ZEROS, { (void)o1; EDGE(iz + e, f + o0); });
        }
        return;
    }
    case TP_OP_REDUCE: case TP_OP_AMAX: case TP_OP_AMIN: case TP_OP_PROD: {
        blk x, zm;
        int32_t w[2] = {0, q[2]};
        tp_blk(t, q + 3, &x);
        tp_blk(t, w, &zm);
        const int32_t f = x.first;
        WALK(x.nd, x.dims, x.st, zm.st, { EDGE(iz + o1, f + o0); });
        return;
    }
    case TP_OP_PACK: {
        int64_t at = 0;
        for (int64_t i = 0; i < nb; i++) {
            blk x;
            tp_blk(t, q + 3 + 2 * i, &x);
            const int32_t f = x.first;
            WALK(x.nd, x.dims, x.st, ZEROS, { (void)o1; EDGE(iz + at + e, f + o0); });
            at += x.size;
        }
        return;
    }
    case TP_OP_MATMUL: {                  /* z[b, i, j] from x[b, i, :] and y[b, :, j] */
        blk x, y;
        tp_blk(t, q + 3, &x);
        tp_blk(t, q + 5, &y);
        const int nd = x.nd - 2;
        const int64_t m = x.dims[nd], p = x.dims[nd + 1], qq = y.dims[nd + 1];
        int64_t nbatch = 1;
        for (int d = 0; d < nd; d++) nbatch *= x.dims[d];
        for (int64_t bt = 0; bt < nbatch; bt++) {
            int64_t xo = x.first, yo = y.first, rest = bt;
            for (int d = nd - 1; d >= 0; d--) {
                const int64_t i = rest % x.dims[d];
                rest /= x.dims[d];
                xo += i * x.st[d]; yo += i * y.st[d];
            }
            const int64_t zo = iz + bt * m * qq;
            for (int64_t i = 0; i < m; i++)
                for (int64_t j = 0; j < qq; j++)
                    for (int64_t l = 0; l < p; l++) {
                        EDGE(zo + i * qq + j, xo + i * x.st[nd] + l * x.st[nd + 1]);
                        EDGE(zo + i * qq + j, yo + l * y.st[nd] + j * y.st[nd + 1]);
                    }
        }
        return;
    }
    case TP_OP_GATHER: case TP_OP_SCATTER: case TP_OP_SCATTER_ADD: {
        int64_t n;
        const int32_t *pos = tp_index_of(t, q[2], &n);
        blk x;
        tp_blk(t, q + 3, &x);
        if (op == TP_OP_GATHER) {
            for (int64_t e = 0; e < r; e++) EDGE(iz + e, x.first + pos[e] * x.st[0]);
            return;
        }
        blk y;
        tp_blk(t, q + 5, &y);
        const int64_t m = n / 2;
        const int32_t *src = pos + m;
        for (int64_t pz = 0, e = 0; pz < r; pz++) {   /* SCATTER: positions ascending, once */
            if (op == TP_OP_SCATTER && e < m && pos[e] == pz) { e++; continue; }
            EDGE(iz + pz, x.first + pz * x.st[0]);
        }
        for (int64_t e = 0; e < m; e++) EDGE(iz + pos[e], y.first + src[e] * y.st[0]);
        return;
    }
    }
}

struct sets_t {
    int32_t *lo, *hi;          /* each variable's span of words [lo, hi); lo >= hi: empty */
    int64_t *at;               /* this pass: where its words in [b0, b1) start in S */
    uint64_t *S;
    int64_t b0, b1;            /* the words of this pass */
};

/* v's span within the words of this pass */
static int64_t cl_lo(const sets_t *s, int64_t v) { return s->lo[v] > s->b0 ? s->lo[v] : s->b0; }
static int64_t cl_hi(const sets_t *s, int64_t v) { return s->hi[v] < s->b1 ? s->hi[v] : s->b1; }

/* z's span grows to cover v's. */
static void hull(sets_t *s, int64_t z, int64_t v)
{
    if (s->lo[v] >= s->hi[v]) return;
    if (s->lo[v] < s->lo[z]) s->lo[z] = s->lo[v];
    if (s->hi[v] > s->hi[z]) s->hi[z] = s->hi[v];
}

/* Set z |= set v, the words of this pass; v's span lies within z's. */
static void set_or(sets_t *s, int64_t z, int64_t v)
{
    int64_t lo = cl_lo(s, v), hi = cl_hi(s, v);
    uint64_t *restrict a = s->S + s->at[z] + (lo - cl_lo(s, z));
    const uint64_t *restrict b = s->S + s->at[v];
    for (int64_t k = 0; k < hi - lo; k++) a[k] |= b[k];
}

static void edge(sets_t *s, edge_kind k, int64_t z, int64_t v)
{
    switch (k) {
    case SPAN_FWD: hull(s, z, v); return;
    case SPAN_REV: hull(s, v, z); return;
    case SET_FWD: set_or(s, z, v); return;
    case SET_REV: set_or(s, v, z); return;
    }
}

/* Every variable's span: forward, the hull of its operands' (an input's: its word); reverse, the
 * hull of the outputs' words depending on it. */
static void spans(const tp_tape *t, sets_t *s, int reverse)
{
    int64_t nv = tp_nvars(t);
    for (int64_t v = 0; v < nv; v++) { s->lo[v] = INT32_MAX; s->hi[v] = 0; }
    const int32_t *p, *q;
    int32_t n, r;
    if (!reverse) {
        for (int64_t i = 0; i < t->n_inputs; i++) {
            s->lo[i] = (int32_t)(i / 64);
            s->hi[i] = s->lo[i] + 1;
        }
        p = t->args;
        for (int64_t o = 0, iz = t->n_inputs; o < t->n_ops; o++, iz += r) {
            if (tp_op_kind[t->ops[o]] == TP_KIND_BLOCK) {
                block_edges(t, t->ops[o], p + 1, iz, s, SPAN_FWD);
                r = p[1]; p += p[0] + 2;
                continue;
            }
            p = decode(t->ops[o], p, &q, &n, &r);
            for (int32_t i = first_carrier(t->ops[o], n); i < n; i++)
                if (q[i] >= 0) hull(s, iz, q[i]);     /* q[i] < 0: a constant */
            for (int32_t k = 1; k < r; k++) hull(s, iz + k, iz);   /* a call's outputs */
        }
        return;
    }
    for (int64_t o = 0; o < t->n_outputs; o++) {
        int64_t v = t->outputs[o];
        if (v < 0) continue;
        if (o / 64 < s->lo[v]) s->lo[v] = (int32_t)(o / 64);
        if (o / 64 + 1 > s->hi[v]) s->hi[v] = (int32_t)(o / 64 + 1);
    }
    p = t->args + t->n_args;
    for (int64_t o = t->n_ops - 1, iz = nv; o >= 0; o--) {
        if (tp_op_kind[t->ops[o]] == TP_KIND_BLOCK) {
            p -= p[-1] + 2;
            iz -= p[1];
            block_edges(t, t->ops[o], p + 1, iz, s, SPAN_REV);
            continue;
        }
        p = decode_back(t->ops[o], p, &q, &n, &r);
        iz -= r;
        for (int32_t k = 0; k < r; k++)
            for (int32_t i = first_carrier(t->ops[o], n); i < n; i++)
                if (q[i] >= 0) hull(s, q[i], iz + k);
    }
}

/* Lay out the words [b0, b1) of every set in S (s->at), zeroed. */
static void layout(const tp_tape *t, sets_t *s)
{
    int64_t used = 0;
    for (int64_t v = 0; v < tp_nvars(t); v++) {
        s->at[v] = used;
        if (cl_lo(s, v) < cl_hi(s, v)) used += cl_hi(s, v) - cl_lo(s, v);
    }
    memset(s->S, 0, (size_t)used * sizeof *s->S);
}

/* Each variable's inputs in the words of this pass, forward. */
static void forward_pass(const tp_tape *t, sets_t *s)
{
    for (int64_t i = 64 * s->b0; i < t->n_inputs && i < 64 * s->b1; i++)
        s->S[s->at[i]] = (uint64_t)1 << (i % 64);
    const int32_t *p = t->args, *q;
    int32_t n, r;
    for (int64_t o = 0, iz = t->n_inputs; o < t->n_ops; o++, iz += r) {
        int op = t->ops[o];
        if (tp_op_kind[op] == TP_KIND_BLOCK) {
            block_edges(t, op, p + 1, iz, s, SET_FWD);
            r = p[1]; p += p[0] + 2;
            continue;
        }
        p = decode(op, p, &q, &n, &r);
        if (r < 1 || cl_lo(s, iz) >= cl_hi(s, iz)) continue;
        for (int32_t i = first_carrier(op, n); i < n; i++)
            if (q[i] >= 0 && cl_lo(s, q[i]) < cl_hi(s, q[i])) set_or(s, iz, q[i]);
        for (int32_t k = 1; k < r; k++) set_or(s, iz + k, iz);
    }
}

/* Each variable's outputs in the words of this pass that depend on it, backward. */
static void reverse_pass(const tp_tape *t, sets_t *s)
{
    for (int64_t o = 64 * s->b0; o < t->n_outputs && o < 64 * s->b1; o++) {
        int64_t v = t->outputs[o];
        if (v >= 0) s->S[s->at[v] + o / 64 - cl_lo(s, v)] |= (uint64_t)1 << (o % 64);
    }
    const int32_t *p = t->args + t->n_args, *q;
    int32_t n, r;
    for (int64_t o = t->n_ops - 1, iz = tp_nvars(t); o >= 0; o--) {
        int op = t->ops[o];
        if (tp_op_kind[op] == TP_KIND_BLOCK) {
            p -= p[-1] + 2;
            iz -= p[1];
            block_edges(t, op, p + 1, iz, s, SET_REV);
            continue;
        }
        p = decode_back(op, p, &q, &n, &r);
        iz -= r;
        for (int32_t k = 0; k < r; k++) {
            if (cl_lo(s, iz + k) >= cl_hi(s, iz + k)) continue;
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

/* The entries (i, bit) for the bits of this pass in the set of variable index[i] (or i),
 * i < count; transposed: (bit, i). */
static int collect(pairs_t *e, const sets_t *s, const int32_t *index, int64_t count,
                   int transposed)
{
    for (int64_t i = 0; i < count; i++) {
        int64_t v = index ? index[i] : i;
        if (v < 0) continue;                         /* a constant output */
        for (int64_t b = cl_lo(s, v); b < cl_hi(s, v); b++)
            for (uint64_t w = s->S[s->at[v] + b - cl_lo(s, v)]; w; w &= w - 1) {
                int64_t j = 64 * b + __builtin_ctzll(w);
                int rc = transposed ? push(e, j, i) : push(e, i, j);
                if (rc < 0) return rc;
            }
    }
    return TP_OK;
}

/* The end of the pass from word b0: as many words as keep its sets within budget words (at
 * least one); cover[w]: how many spans hold word w. */
static int64_t pass_end(const int64_t *cover, int64_t words, int64_t b0, int64_t budget)
{
    int64_t b1 = b0, used = 0;
    while (b1 < words && (b1 == b0 || used + cover[b1] <= budget)) used += cover[b1++];
    return b1;
}

/* The pattern as CSR over the outputs: indptr (n_outputs + 1, the caller's), *indices (column
 * indices ascending in each row, allocated here: free with tp_free_pattern). reverse: propagate
 * over the outputs instead of the inputs. pass_bytes: the sets of one pass (<= 0: PASS_BYTES).
 * Returns the number of nonzeros. */
int64_t tp_jac_pattern(tp_tape *t, int reverse, int64_t pass_bytes, int64_t *indptr,
                       int32_t **indices)
{
    if (!tp_may_read(t)) return TP_ETHREAD;
    *indices = NULL;
    int64_t nv = tp_nvars(t), words = ((reverse ? t->n_outputs : t->n_inputs) + 63) / 64;
    int64_t budget = (pass_bytes > 0 ? pass_bytes : PASS_BYTES) / 8;
    sets_t s = {malloc((size_t)(nv + 1) * sizeof *s.lo), malloc((size_t)(nv + 1) * sizeof *s.hi),
                malloc((size_t)(nv + 1) * sizeof *s.at), NULL, 0, 0};
    int64_t *cover = calloc((size_t)words + 1, sizeof *cover), most = 0;
    pairs_t e = {NULL, NULL, 0, 0};
    int rc = s.lo && s.hi && s.at && cover ? TP_OK : TP_ENOMEM;
    if (rc >= 0) {
        spans(t, &s, reverse);
        for (int64_t v = 0; v < nv; v++)
            if (s.lo[v] < s.hi[v]) { cover[s.lo[v]]++; cover[s.hi[v]]--; }
        for (int64_t w = 1; w <= words; w++) cover[w] += cover[w - 1];
        for (int64_t b0 = 0, b1; b0 < words; b0 = b1) {      /* room for the largest pass */
            int64_t used = 0;
            b1 = pass_end(cover, words, b0, budget);
            for (int64_t w = b0; w < b1; w++) used += cover[w];
            if (used > most) most = used;
        }
        if (!(s.S = malloc((size_t)(most ? most : 1) * sizeof *s.S))) rc = TP_ENOMEM;
    }
    for (s.b0 = 0; s.b0 < words && rc >= 0; s.b0 = s.b1) {
        s.b1 = pass_end(cover, words, s.b0, budget);
        layout(t, &s);
        if (reverse) {
            reverse_pass(t, &s);
            rc = collect(&e, &s, NULL, t->n_inputs, 1);
        } else {
            forward_pass(t, &s);
            rc = collect(&e, &s, t->outputs, t->n_outputs, 0);
        }
    }
    free(s.S); free(s.lo); free(s.hi); free(s.at); free(cover);
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

/* Recording array block operations: the shape table, blocks of constants, and tp_rec_block, which
 * checks a block op's words and computes its values with the sweeps' own kernels (block.c). */
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include "block.h"
#include "gather.h"

#define MAX_VARS ((int64_t)INT32_MAX)

static uint64_t shape_hash(const int64_t *w, int64_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (int64_t i = 0; i < n; i++) { h ^= (uint64_t)w[i]; h *= 1099511628211ULL; h ^= h >> 29; }
    return h;
}

static int64_t shape_words(const tp_tape *t, int32_t id) { return 1 + 2 * tp_shape_of(t, id)[0]; }

static int shape_rehash(tp_tape *t, int64_t cap)
{
    int32_t *h = malloc((size_t)cap * sizeof *h);
    if (!h) return TP_ENOMEM;
    for (int64_t i = 0; i < cap; i++) h[i] = -1;
    for (int64_t id = 0; id < t->n_shapes; id++) {
        uint64_t k = shape_hash(tp_shape_of(t, (int32_t)id), shape_words(t, (int32_t)id));
        int64_t s = (int64_t)(k & (uint64_t)(cap - 1));
        while (h[s] >= 0) s = (s + 1) & (cap - 1);
        h[s] = (int32_t)id;
    }
    free(t->shash);
    t->shash = h; t->shash_cap = cap;
    return TP_OK;
}

/* nd dims and strides a shape may have: dims and strides within the variables' range, at most
 * MAX_VARS elements (the recorder's and the loader's rule). */
int tp_shape_valid(int64_t nd, const int64_t *dims, const int64_t *strides)
{
    if (nd < 0 || nd > TP_MAXDIM) return 0;
    int64_t size = 1;
    for (int64_t d = 0; d < nd; d++) {
        if (dims[d] < 0 || dims[d] > MAX_VARS || strides[d] < -MAX_VARS || strides[d] > MAX_VARS)
            return 0;
        size *= dims[d];
        if (size > MAX_VARS) return 0;
    }
    return 1;
}

/* The id of the shape (dims, strides), added to the table unless it holds it already. */
int32_t tp_shape(tp_tape *t, int nd, const int64_t *dims, const int64_t *strides)
{
    int rc = tp_may_record(t);
    if (rc < 0) return rc;
    if (!tp_shape_valid(nd, dims, strides)) {   /* too many elements: the tape's limit */
        int64_t size = 1, ok = nd >= 0 && nd <= TP_MAXDIM;
        for (int d = 0; ok && d < nd; d++)
            ok = dims[d] >= 0 && strides[d] >= -MAX_VARS && strides[d] <= MAX_VARS &&
                 !__builtin_mul_overflow(size, dims[d], &size);
        return ok && size > MAX_VARS ? TP_ETOOBIG : TP_EARG;
    }
    int64_t w[1 + 2 * TP_MAXDIM], n = 1 + 2 * (int64_t)nd;
    w[0] = nd;
    for (int d = 0; d < nd; d++) { w[1 + d] = dims[d]; w[1 + nd + d] = strides[d]; }
    if (2 * (t->n_shapes + 1) > t->shash_cap &&
        (rc = shape_rehash(t, t->shash_cap ? 2 * t->shash_cap : 64)) < 0) return rc;
    uint64_t k = shape_hash(w, n);
    int64_t s = (int64_t)(k & (uint64_t)(t->shash_cap - 1));
    for (; t->shash[s] >= 0; s = (s + 1) & (t->shash_cap - 1)) {
        int32_t id = t->shash[s];
        if (shape_words(t, id) == n && !memcmp(tp_shape_of(t, id), w, (size_t)n * sizeof *w))
            return id;
    }
    if (t->n_shapes >= INT32_MAX ||
        (rc = tp_grow((void **)&t->shp, &t->cap_shp, t->n_shp + n, sizeof *t->shp,
                      INT64_MAX / 16)) < 0 ||
        (rc = tp_grow((void **)&t->shp_at, &t->cap_shapes, t->n_shapes + 1, sizeof *t->shp_at,
                      INT32_MAX)) < 0) return rc < 0 ? rc : TP_ETOOBIG;
    memcpy(t->shp + t->n_shp, w, (size_t)n * sizeof *w);
    t->shp_at[t->n_shapes] = t->n_shp;
    t->n_shp += n;
    t->shash[s] = (int32_t)t->n_shapes;
    return (int32_t)t->n_shapes++;
}

/* n constants as one block below the others: element i has code *first + i (codes ascend, as
 * they lie in memory below vals). Not deduplicated. x may be values of the tape's own. */
int tp_const_block(tp_tape *t, const double *x, int64_t n, int32_t *first)
{
    int rc = tp_may_record(t);
    if (rc < 0) return rc;
    if (n < 0) return TP_EARG;
    if (n > MAX_VARS - t->n_consts) return TP_ETOOBIG;   /* (before n_consts + n can overflow) */
    const uintptr_t at = (uintptr_t)x, lo = (uintptr_t)(t->vals ? t->vals - t->cap_consts : NULL);
    const int in_store = t->vals && at >= lo && at < (uintptr_t)(t->vals + t->cap_vals);
    const int64_t off = in_store ? x - t->vals : 0;   /* x inside the block that may move */
    if ((rc = tp_grow_store(t, t->n_consts + n, t->n_vars)) < 0) return rc;
    if (in_store) x = t->vals + off;
    double *c = t->vals - t->n_consts - n, bad = 0.0;  /* codes -n_consts - n .. : x in order */
    for (int64_t i = 0; i < n; i++) {         /* copied, and checked finite on the way */
        const double v = x[i], d = v - v;
        c[i] = v;
        bad = d != 0.0 ? d : bad;              /* (x - x is 0 but for Inf and NaN) */
    }
    t->n_consts += n;
    tp_consts_appended(t, t->n_consts - n, bad == 0.0);
    *first = (int32_t)(-t->n_consts);
    return TP_OK;
}

/* The lowest and highest operand codes of a block (of nonzero size). */
static void span(const tp_tape *t, const int32_t *w, int64_t *lo, int64_t *hi)
{
    blk b;
    tp_blk(t, w, &b);
    *lo = *hi = w[0];
    for (int d = 0; d < b.nd; d++) {
        int64_t s = (b.dims[d] - 1) * b.st[d];
        if (s < 0) *lo += s; else *hi += s;
    }
}

static int64_t size_of(const tp_tape *t, const int32_t *w)
{
    blk b;
    tp_blk(t, w, &b);
    return b.size;
}

/* A block operand lies inside the variables, or inside the constants. */
static int valid_block(const tp_tape *t, const int32_t *w)
{
    if (w[1] < 0 || w[1] >= t->n_shapes) return 0;
    blk b;
    tp_blk(t, w, &b);
    if (!b.size) return 1;
    int64_t lo, hi;
    span(t, w, &lo, &hi);
    return lo >= 0 ? hi < t->n_vars : (lo >= -t->n_consts && hi < 0);
}

static int same_dims(const blk *a, const int64_t *s)
{
    if (a->nd != s[0]) return 0;
    for (int d = 0; d < a->nd; d++)
        if (a->dims[d] != s[1 + d]) return 0;
    return 1;
}

/* The op's words q (after n; nb operands) are consistent (tape.h, "Block operations"). */
static int valid_op(const tp_tape *t, int op, const int32_t *q, int64_t nb)
{
    const int64_t *zs = tp_shape_of(t, q[1]);
    blk x, y;
    for (int64_t i = 0; i < nb; i++)
        if (!valid_block(t, q + 3 + 2 * i)) return 0;
    if (nb) tp_blk(t, q + 3, &x);
    switch (op) {
    case TP_OP_MAP: {                      /* PARTIAL ops of arity 1, 2; WHERE; comparisons */
        int a = q[2];
        if (a < 0 || a >= TP_N_OPCODES || tp_op_arity[a] != nb || nb < 1 || nb > 3 ||
            !(tp_op_kind[a] == TP_KIND_PARTIAL || tp_op_kind[a] == TP_KIND_GUARD ||
              a == TP_OP_WHERE)) return 0;
        for (int64_t i = 0; i < nb; i++) {
            tp_blk(t, q + 3 + 2 * i, &y);
            if (!same_dims(&y, zs)) return 0;
        }
        return 1;
    }
    case TP_OP_AMAX: case TP_OP_AMIN: case TP_OP_PROD:
    case TP_OP_REDUCE: {                   /* zmap: x's dims, strides into z (within r) */
        if (nb != 1 || q[2] < 0 || q[2] >= t->n_shapes) return 0;
        int32_t w[2] = {0, q[2]};
        blk zm;
        tp_blk(t, w, &zm);
        if (!same_dims(&zm, tp_shape_of(t, q[2])) || zm.nd != x.nd) return 0;
        for (int d = 0; d < x.nd; d++)
            if (zm.dims[d] != x.dims[d] || zm.st[d] < 0) return 0;
        int64_t hi = 0;
        for (int d = 0; d < zm.nd; d++) hi += (zm.dims[d] - 1) * zm.st[d];
        if (op != TP_OP_REDUCE && x.size) {   /* every result reached: no empty max */
            int64_t reached = 1;
            for (int d = 0; d < zm.nd; d++) if (zm.st[d]) reached *= zm.dims[d];
            if (reached != q[0]) return 0;
        }
        return !x.size || hi < q[0];
    }
    case TP_OP_MATMUL: {                   /* (.., m, p) @ (.., p, q) -> (.., m, q) */
        if (nb != 2) return 0;
        tp_blk(t, q + 5, &y);
        const int nd = x.nd;
        if (nd < 2 || y.nd != nd || zs[0] != nd || x.dims[nd - 1] != y.dims[nd - 2] ||
            zs[nd - 1] != x.dims[nd - 2] || zs[nd] != y.dims[nd - 1]) return 0;
        for (int d = 0; d < nd - 2; d++)
            if (x.dims[d] != zs[1 + d] || y.dims[d] != zs[1 + d]) return 0;
        return 1;
    }
    case TP_OP_PACK: {
        int64_t total = 0;
        for (int64_t i = 0; i < nb; i++) { tp_blk(t, q + 3 + 2 * i, &y); total += y.size; }
        return total == q[0];
    }
    case TP_OP_GATHER: case TP_OP_SCATTER: case TP_OP_SCATTER_ADD:
        return tp_gather_valid(t, op, q, nb);
    }
    return 0;
}

/* The block op op's words q (after n: r, shape, attr, then nb operand blocks) are valid on t
 * as it stands (its variables and constants so far): the recorder's check (tp_rec_block) and the
 * loader's (serial.c), so that a block op's rules are written once, in valid_op. */
int tp_block_valid(const tp_tape *t, int op, const int32_t *q, int64_t nb)
{
    if (op < 0 || op >= TP_N_OPCODES || tp_op_kind[op] != TP_KIND_BLOCK || nb < 1 ||
        q[1] < 0 || q[1] >= t->n_shapes)
        return 0;
    const int64_t *zs = tp_shape_of(t, q[1]);
    int64_t r = 1;
    for (int d = 0; d < zs[0]; d++) r *= zs[1 + d];
    return r >= 1 && r == q[0] && valid_op(t, op, q, nb);
}

/* One block op: words r, shape, attr, blocks. Returns its first result (values computed here
 * by block.c's kernels, so a replay at the recorded point gives the same bits). */
int32_t tp_rec_block(tp_tape *t, int op, int32_t attr, int32_t shape, const int32_t *blocks,
                     int64_t nb)
{
    int rc = tp_may_record(t);
    if (rc < 0) return rc;
    if (op < 0 || op >= TP_N_OPCODES || tp_op_kind[op] != TP_KIND_BLOCK || nb < 1 ||
        nb > (INT32_MAX - 8) / 2 || shape < 0 || shape >= t->n_shapes) return TP_EARG;
    const int64_t *zs = tp_shape_of(t, shape);
    int64_t r = 1;
    for (int d = 0; d < zs[0]; d++) r *= zs[1 + d];
    if (r < 1 || r > MAX_VARS - t->n_vars) return r < 1 ? TP_EARG : TP_ETOOBIG;
    int64_t n = 3 + 2 * nb;
    int32_t *words = malloc((size_t)(n + 1) * sizeof *words), *a;  /* n, then the op's words: */
                                       /* the kernels read n at a[-1], as in the sweeps */
    const double **opnd = malloc((size_t)nb * sizeof *opnd);
    int32_t z = TP_ENOMEM;
    if (!words || !opnd) goto done;
    a = words + 1;
    a[-1] = (int32_t)n; a[0] = (int32_t)r; a[1] = shape; a[2] = attr;
    memcpy(a + 3, blocks, (size_t)(2 * nb) * sizeof *a);
    z = TP_EARG;
    if (!tp_block_valid(t, op, a, nb)) goto done;
    if ((z = tp_append(t, op, a, n)) < 0) goto done;
    for (int64_t i = 0; i < nb; i++) {    /* constants and variables alike, below and in vals */
        const int32_t f = blocks[2 * i];
        opnd[i] = t->vals + (size_of(t, blocks + 2 * i) ? f : 0);
    }
    if ((rc = tp_block_values(t, op, a, opnd, t->vals + z, z)) >= 0) goto done;
    /* out of memory: the op is not recorded */
    t->n_ops--; t->n_args -= n + 2; t->n_vars = z;
    z = rc;
done:
    free(words); free(opnd);
    return z;
}

/* The block op whose results hold variable var (a walk back from the last op): its opcode, its
 * words after n and its first result; 0 when var is an input or a scalar op's result. */
static int block_at(const tp_tape *t, int64_t var, int *op, const int32_t **q, int64_t *first)
{
    const int32_t *p = t->args + t->n_args;
    int64_t z = t->n_vars;
    for (int64_t o = t->n_ops - 1; o >= 0 && z > var; o--) {
        int64_t words = 0, r = 0;
        switch (t->ops[o]) {
#define OP(NAME, ARITY, RESULTS, RULE, FORMULA) case TP_OP_##NAME: \
            words = TP_WORDS_BACK_##ARITY(p); r = TP_RESULTS(RESULTS, p - words); break;
#include "ops.def"
#undef OP
        }
        p -= words;
        z -= r;
        if (z <= var) {
            if (tp_op_kind[t->ops[o]] != TP_KIND_BLOCK) return 0;
            *op = t->ops[o]; *q = p + 1; *first = z;
            return 1;
        }
    }
    return 0;
}

/* var is an element of a block comparison (MAP of a GUARD op): its words after n, first result */
static int block_comparison(const tp_tape *t, int64_t var, const int32_t **q, int64_t *first)
{
    int op;
    return block_at(t, var, &op, q, first) && op == TP_OP_MAP && (*q)[-1] == 9 &&
           tp_op_kind[(*q)[2]] == TP_KIND_GUARD;
}

/* The block comparison whose first result is var becomes one branch guard for all its elements:
 * its outcomes operand (NaN: unchecked) becomes a block of their values at recording. */
int tp_guard_block(tp_tape *t, int64_t var)
{
    int rc = tp_may_record(t);
    if (rc < 0) return rc;
    const int32_t *q;
    int64_t first;
    if (!block_comparison(t, var, &q, &first) || first != var) return TP_EARG;
    const int64_t at = q - t->args;        /* (the constant pool may move, the words do not) */
    if (q[7] >= 0 || !isnan(t->vals[q[7]]))
        return TP_OK;                      /* guarded already (or not a recorded NaN) */
    int32_t code;
    if ((rc = tp_const_block(t, t->vals + first, q[0], &code)) < 0) return rc;
    t->args[at + 7] = code;
    t->args[at + 8] = t->args[at + 1];     /* the result's (contiguous) shape */
    return TP_OK;
}

/* var, an element of the block comparison q (first result first): its index in the result */
static void element_index(const tp_tape *t, const int32_t *q, int64_t first, int64_t var,
                          int64_t *idx)
{
    const int64_t *zs = tp_shape_of(t, q[1]);
    int64_t e = var - first;
    for (int d = (int)zs[0] - 1; d >= 0; d--) { idx[d] = e % zs[1 + d]; e /= zs[1 + d]; }
}

int tp_comparison_element(const tp_tape *t, int64_t var, int *nd, int64_t *idx, int64_t *dims)
{
    const int32_t *q;
    int64_t first;
    if (!tp_may_read(t)) return TP_ETHREAD;
    if (!block_comparison(t, var, &q, &first)) return TP_EARG;
    const int64_t *zs = tp_shape_of(t, q[1]);
    *nd = (int)zs[0];
    memcpy(dims, zs + 1, (size_t)zs[0] * sizeof *dims);
    element_index(t, q, first, var, idx);
    return TP_OK;
}

/* The element operand codes x, y, outcome of the block comparison element var, its opcode. */
int tp_block_comparison(const tp_tape *t, int64_t var, int *op, int32_t *operands)
{
    const int32_t *q;
    int64_t first;
    if (!block_comparison(t, var, &q, &first)) return TP_EARG;
    int64_t idx[TP_MAXDIM];
    element_index(t, q, first, var, idx);
    for (int i = 0; i < 3; i++) {
        blk b;
        tp_blk(t, q + 3 + 2 * i, &b);
        int64_t off = b.first;
        for (int d = 0; d < b.nd; d++) off += idx[d] * b.st[d];
        operands[i] = (int32_t)off;
    }
    *op = q[2];
    return TP_OK;
}

/* The first block operation of t, or -1 (sparsity patterns refuse them; a loaded tape holding
 * them replays through the general paths) */
int64_t tp_first_block(const tp_tape *t)
{
    for (int64_t o = 0; o < t->n_ops; o++)
        if (tp_op_kind[t->ops[o]] == TP_KIND_BLOCK) return o;
    return -1;
}

int tp_values(const tp_tape *t, int64_t first, int64_t n, double *out)
{
    if (!tp_may_read(t)) return TP_ETHREAD;
    if (first < 0 || n < 0 || first + n > t->n_vars) return TP_EARG;
    if (n) memcpy(out, t->vals + first, (size_t)n * sizeof *out);
    return TP_OK;
}

/* The tape optimiser (tp_optimize): a new closed tape computing the same outputs, guards and
 * derivatives with fewer operations, in three linear passes:
 *
 *  1. forward: each operation's operands are replaced by their representatives, then it is
 *     folded (all operands constants: computed once by its own PRIMAL rule, bit for bit), or
 *     forwarded to an operand by an identity exact in IEEE arithmetic (exact_identity), or merged
 *     into an earlier identical operation (value numbering: a hash of opcode and operands), or
 *     kept. Primitives (CALL) are always kept here: their functions may be impure.
 *  2. backward: liveness from the outputs and the checked comparisons (branch guards); an
 *     unchecked comparison (outcome NaN, ad.where's) lives only through its users. An op lives
 *     if any of its results does (a CALL keeps all of its outputs).
 *  3. forward: the live operations, renumbered into the new tape with a fresh constant pool.
 *
 * Array block ops (tape.h, "Block operations") are kept as they are, their operand codes
 * renumbered, or merged into an earlier identical one (same words: op, results, shape,
 * attribute, operand blocks); never folded. An operand block names a range of variables by its
 * first and a shape, so the operations writing a range that spans several of them are pinned:
 * kept as recorded (no merging, folding or forwarding, all live while the block op is), so that
 * the range stays one run of consecutive variables in the new tape. A block of constants is
 * copied whole into the new pool (its codes ascend).
 *
 * Operand order is canonical (for matching only) where swapping operands changes neither the
 * IEEE result nor a derivative convention: ADD, MUL, EQ, NE. Not MAX/MIN (max(+0, -0) is -0,
 * max(-0, +0) is +0), not HYPOT (libm need not be symmetric to the bit).
 */
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include "tape_impl.h"
#include "work.h"
#include "rules.h"
#include "block.h"

#define NONE INT32_MIN                   /* no operand code: constants end at INT32_MIN + 1 */

typedef struct {
    const tp_tape *t;
    int64_t m, n, nv;                    /* inputs; operations and variables kept by pass 1 */
    uint8_t *ops;                        /* pass 1's operations: opcodes, */
    int32_t *args; int64_t n_args;       /* operand stream (tape.h's layout), */
    int64_t *at;                         /* where each one's words start, */
    int32_t *src;                        /* the original variable of its first result, */
    int32_t *first;                      /* and its own */
    int32_t *def;                        /* pass-1 variable - m -> the op that writes it */
    int32_t *rep;                        /* original variable -> pass-1 operand code */
    tp_tape *pool;                       /* pass 1's constants (the original pool, then folds) */
    struct slot *table; int64_t cap;     /* value numbering (value_number) */
    const uint8_t *pinned;               /* original variables in an operand block's range */
    int64_t cse, folded, identities;
} opt_t;

/* The operand words of an op whose stream starts at p (tape.h, "Operands"): q the first, n how
 * many, len the stream's length, c the first operand code (1 after a result count, else 0) and
 * res the number of results. */
typedef struct { const int32_t *q; int32_t n, c; int64_t len, res; } words_t;

static inline words_t words(int op, const int32_t *p)
{
    words_t w;
    int a = tp_op_arity[op];
    if (a == VARIADIC) { w.q = p + 1; w.n = p[0]; w.len = (int64_t)p[0] + 2; }
    else { w.q = p; w.n = a; w.len = a; }
    w.c = tp_op_results[op] == VARIADIC;
    w.res = w.c ? w.q[0] : tp_op_results[op];
    return w;
}

/* Word j of an op's words q is an operand code (else a count, shape id or attribute). */
static inline int is_code(int op, int32_t j)
{
    if (tp_op_kind[op] == TP_KIND_BLOCK) return j >= 3 && (j - 3) % 2 == 0;
    return j >= (tp_op_results[op] == VARIADIC);
}

static inline double konst(const opt_t *o, int32_t code)
{
    return o->pool->vals[code];
}

static inline int is_const(int32_t code, const opt_t *o, double c)   /* c, bit for bit */
{
    if (code >= 0) return 0;
    double v = konst(o, code);
    return memcmp(&v, &c, sizeof v) == 0;
}

static inline int commutative(int op)
{
    return op == TP_OP_ADD || op == TP_OP_MUL || op == TP_OP_EQ || op == TP_OP_NE;
}

/* ---- 1. folding, identities, value numbering -------------------------------------------- */
/* z of op on constant operands v[0 .. n-1], by the op's own PRIMAL rule (the sweeps' bits). */
static double fold(int op, const double *v, int32_t n)
{
    const double x = v[0], y = n > 1 ? v[1] : 0.0, w = n > 2 ? v[2] : 0.0;
    double z = NAN;
    (void)x; (void)y; (void)w;
#define VAL(i) v[i]
#define CHECK_GUARD(z, w)                /* constant operands: the guard can never flip */
#define PRIMITIVE_CALL z = NAN           /* never folded */
#define BLOCK_PRIMAL(op) z = NAN         /* block ops are never folded */
    switch (op) {
#define OP(NAME, ARITY, RESULTS, RULE, FORMULA) case TP_OP_##NAME: NAME##_PRIMAL; break;
#include "ops.def"
#undef OP
    }
#undef VAL
#undef CHECK_GUARD
#undef PRIMITIVE_CALL
#undef BLOCK_PRIMAL
    return z;
}

/* The operand an operation equals exactly (value and derivative), or NONE. Only identities
 * that hold for every IEEE double: x*1, 1*x, x/1, x+(-0), (-0)+x, x-(+0), -(-x), where(c, y, w)
 * with c constant or y == w. Never x*0 (NaN, Inf, -0), x-x (NaN, Inf), x+0 (-0 + 0 is +0). */
static int32_t exact_identity(const opt_t *o, int op, const int32_t *q)
{
    switch (op) {
    case TP_OP_MUL:
        if (is_const(q[1], o, 1.0)) return q[0];
        if (is_const(q[0], o, 1.0)) return q[1];
        return NONE;
    case TP_OP_DIV: return is_const(q[1], o, 1.0) ? q[0] : NONE;
    case TP_OP_ADD:
        if (is_const(q[1], o, -0.0)) return q[0];
        if (is_const(q[0], o, -0.0)) return q[1];
        return NONE;
    case TP_OP_SUB: return is_const(q[1], o, 0.0) ? q[0] : NONE;
    case TP_OP_NEG:                      /* -(-x): the inner NEG's operand */
        if (q[0] >= o->m) {
            int32_t k = o->def[q[0] - o->m];
            if (o->ops[k] == TP_OP_NEG) return o->args[o->at[k]];
        }
        return NONE;
    case TP_OP_WHERE:                    /* WHERE_PRIMAL's choice: y if x != 0 (NaN too) */
        if (q[0] < 0) return konst(o, q[0]) != 0.0 ? q[1] : q[2];
        return q[1] == q[2] ? q[1] : NONE;
    default: return NONE;
    }
}

static inline uint64_t mix(uint64_t h)
{
    h ^= h >> 33; h *= 0xff51afd7ed558ccdULL; h ^= h >> 33; h *= 0xc4ceb9fe1a85ec53ULL;
    return h ^ (h >> 33);
}

/* A hash of an operation; a commutative op's operands in order, so that x+y and y+x meet. */
static inline uint32_t hash_op(int op, const int32_t *q, int32_t n)
{
    uint64_t g = (uint64_t)op * 0x9e3779b97f4a7c15ULL + (uint64_t)n;
    if (n == 2) {
        uint32_t a = (uint32_t)q[0], b = (uint32_t)q[1];
        if (commutative(op) && q[0] > q[1]) { a = (uint32_t)q[1]; b = (uint32_t)q[0]; }
        return (uint32_t)mix(g ^ ((uint64_t)a << 32 | b));
    }
    for (int32_t i = 0; i + 1 < n; i += 2)
        g = mix(g ^ ((uint64_t)(uint32_t)q[i] << 32 | (uint32_t)q[i + 1]));
    if (n % 2) g = mix(g ^ (uint32_t)q[n - 1]);
    return (uint32_t)g;
}

static inline int same_op(const opt_t *o, int64_t k, int op, const int32_t *q, int32_t n)
{
    if (o->ops[k] != op) return 0;
    if (tp_op_arity[op] == 2) {
        const int32_t *r = o->args + o->at[k];
        return (r[0] == q[0] && r[1] == q[1]) ||
               (commutative(op) && r[0] == q[1] && r[1] == q[0]);
    }
    words_t w = words(op, o->args + o->at[k]);
    const int32_t *r = w.q;
    if (w.n != n) return 0;
    if (commutative(op) && r[0] == q[1] && r[1] == q[0]) return 1;
    for (int32_t i = 0; i < n; i++)
        if (r[i] != q[i]) return 0;
    return 1;
}

/* The table: k + 1 for pass-1 op k (0: empty) with its hash, at the hash's low bits; at least
 * twice the operations' number of slots (at most 2^32, the hash's bits). */
typedef struct slot { int32_t k1; uint32_t h; } slot_t;

/* The pass-1 op equal to (op, q), else k is entered as it: its number. */
static int64_t value_number(opt_t *o, int op, const int32_t *q, int32_t n, int64_t k)
{
    const uint32_t h = hash_op(op, q, n);
    int64_t j = h & (o->cap - 1);
    for (slot_t *s; (s = &o->table[j])->k1; j = (j + 1) & (o->cap - 1))
        if (s->h == h && same_op(o, s->k1 - 1, op, q, n)) return s->k1 - 1;
    o->table[j].k1 = (int32_t)k + 1;
    o->table[j].h = h;
    return k;
}

/* What a non-primitive op with operands r[0 .. n-1] becomes: *to a pass-1 operand code, or
 * NONE (it is kept, as the new pass-1 op k). */
static inline int simplify(opt_t *o, int op, const int32_t *r, int32_t n, int64_t k,
                           int32_t *to)
{
    int all_const = tp_op_kind[op] != TP_KIND_BLOCK;        /* blocks: never folded */
    for (int32_t j = 0; j < n && all_const; j++) all_const &= r[j] < 0;
    if (all_const) {
        double c[3] = {0.0, 0.0, 0.0}, *vals = n <= 3 ? c : malloc((size_t)n * sizeof *vals);
        if (!vals) return TP_ENOMEM;
        for (int32_t j = 0; j < n; j++) vals[j] = konst(o, r[j]);
        double z = fold(op, vals, n);
        if (vals != c) free(vals);
        o->folded++;
        return tp_pool_code(o->pool, z, to);
    }
    if ((*to = exact_identity(o, op, r)) != NONE) { o->identities++; return TP_OK; }
    int64_t e = value_number(o, op, r, n, k);
    if (e != k) { *to = o->first[e]; o->cse++; }
    return TP_OK;
}

static int pass1(opt_t *o)
{
    const tp_tape *t = o->t;
    const int32_t *p = t->args;
    int32_t *out = o->args;
    int64_t v = o->m;                    /* the original variable of this op's first result */
    int rc;
    for (int64_t i = 0; i < o->m; i++) o->rep[i] = (int32_t)i;
    o->nv = o->m;
    for (int64_t i = 0; i < t->n_ops; i++) {
        const int op = t->ops[i];
        const words_t w = words(op, p);
        int32_t *r = out + (w.q - p);    /* its words, operand codes as representatives */
        if (w.len == 2) {                /* the common case, kept short */
            r[0] = p[0] < 0 ? p[0] : o->rep[p[0]];
            r[1] = p[1] < 0 ? p[1] : o->rep[p[1]];
        } else for (int32_t j = 0; j < w.n; j++)
            r[j] = !is_code(op, j) || w.q[j] < 0 ? w.q[j] : o->rep[w.q[j]];
        if (tp_op_kind[op] == TP_KIND_BLOCK)    /* one constant: its pool code, for matching */
            for (int32_t j = 3; j < w.n; j += 2) {
                int64_t lo, hi;
                if (r[j] < 0 && tp_span(t, r + j, &lo, &hi) && lo == hi &&
                    (rc = tp_pool_code(o->pool, konst(o, r[j]), &r[j])) < 0) return rc;
            }
        p += w.len;
        const int64_t k = o->n;
        int32_t to = NONE;
        int pinned = 0;                  /* any of its results */
        for (int64_t j = 0; j < w.res && !pinned; j++) pinned = o->pinned[v + j];
        if (tp_op_kind[op] != TP_KIND_PRIMITIVE && !pinned &&
            (rc = simplify(o, op, r, w.n, k, &to)) < 0)
            return rc;
        if (to != NONE) {                /* a block op merged: its results the earlier's */
            for (int64_t j = 0; j < w.res; j++) o->rep[v++] = to < 0 ? to : to + (int32_t)j;
            continue;
        }
        if (w.len > w.n) { out[0] = w.n; out[w.n + 1] = w.n; }
        o->ops[k] = (uint8_t)op;
        o->at[k] = out - o->args;
        o->src[k] = (int32_t)v;
        o->first[k] = (int32_t)o->nv;
        for (int64_t j = 0; j < w.res; j++) {
            o->def[o->nv - o->m] = (int32_t)k;
            o->rep[v++] = (int32_t)o->nv++;
        }
        o->n++;
        out += w.len;
    }
    o->n_args = out - o->args;
    return TP_OK;
}

/* ---- 2. liveness ------------------------------------------------------------------------- */
static inline int checked(const opt_t *o, int64_t k)   /* a comparison that replays check */
{
    const int32_t *q = o->args + o->at[k] + 1;
    if (o->ops[k] == TP_OP_MAP && q[-1] == 9 && tp_op_kind[q[2]] == TP_KIND_GUARD) {
        int64_t lo, hi;                  /* a block comparison: outcomes a block of 0s and 1s */
        return q[7] >= 0 || !tp_span(o->t, q + 7, &lo, &hi) ||
               !isnan(konst(o, (int32_t)lo));
    }
    if (tp_op_kind[o->ops[k]] != TP_KIND_GUARD) return 0;
    int32_t w = o->args[o->at[k] + 2];
    return w >= 0 || !isnan(konst(o, w));
}

/* live[]: pass-1 variables that reach an output or a guard; an op lives if one result does. */
static void pass2(const opt_t *o, const int32_t *outputs, int64_t n_out, uint8_t *live)
{
    for (int64_t j = 0; j < n_out; j++)
        if (outputs[j] >= 0) live[outputs[j]] = 1;
    for (int64_t k = 0; k < o->n; k++)
        if (checked(o, k)) live[o->first[k]] = 1;
    for (int64_t k = o->n - 1; k >= 0; k--) {
        const words_t w = words(o->ops[k], o->args + o->at[k]);
        int any = 0;
        for (int64_t j = 0; j < w.res; j++) any |= live[o->first[k] + j];
        if (!any) continue;
        const int block = tp_op_kind[o->ops[k]] == TP_KIND_BLOCK;
        for (int32_t j = w.c; j < w.n; j++) {
            int64_t lo, hi;
            if (block && is_code(o->ops[k], j) && w.q[j] >= 0 &&
                tp_span(o->t, w.q + j, &lo, &hi))
                memset(live + lo, 1, (size_t)(hi - lo + 1));    /* the whole range */
            else if (!block && w.q[j] >= 0) live[w.q[j]] = 1;
        }
        for (int64_t j = 0; j < w.res; j++) live[o->first[k] + j] = 1;
    }
}

/* ---- 3. the new tape (its shape and index tables: the original's, ids unchanged) ---------- */
typedef struct {
    tp_tape *z;
    int32_t *var;                        /* pass-1 variable -> new variable, -1 dead */
    int32_t *cmap;                       /* pass-1 constant -1-c -> new constant code, 0 unset */
} renum_t;

static int code_of(renum_t *r, const opt_t *o, int32_t c, int32_t *out)
{
    if (c >= 0) { *out = r->var[c]; return TP_OK; }
    int32_t *slot = &r->cmap[-1 - (int64_t)c];
    int rc = *slot ? TP_OK : tp_pool_code(r->z, konst(o, c), slot);
    *out = *slot;
    return rc;
}

/* A block of constants (first, shape id at w): its codes' span copied whole into the new pool,
 * in order (codes ascend); *out its first element's new code. */
static int const_block(renum_t *r, const opt_t *o, const int32_t *w, int32_t *out)
{
    int64_t lo, hi;
    if (!tp_span(o->t, w, &lo, &hi)) { *out = 0; return TP_OK; }
    if (lo == hi) return code_of(r, o, w[0], out);
    const int64_t n0 = r->z->n_consts;
    int rc = tp_pool_append(r->z, o->pool->vals + lo, hi - lo + 1);      /* in code order */
    *out = (int32_t)(-1 - n0 - (hi - w[0]));
    return rc;
}

static void *alloc(int64_t n, size_t sz) { return malloc((size_t)(n > 0 ? n : 1) * sz); }

static int pass3(opt_t *o, const int32_t *outputs, const uint8_t *live, renum_t *r)
{
    const tp_tape *t = o->t;
    tp_tape *z = r->z;
    const int64_t m = o->m;
    int64_t n_live = 0, n_args = 0, n_vars = m, n_guards = 0;
    int rc;
    for (int64_t k = 0; k < o->n; k++) {
        if (!live[o->first[k]]) continue;
        const words_t w = words(o->ops[k], o->args + o->at[k]);
        n_live++; n_args += w.len; n_vars += w.res;
        n_guards += tp_op_kind[o->ops[k]] == TP_KIND_GUARD;
    }
    z->ops = alloc(n_live, 1); z->cap_ops = n_live;
    z->args = alloc(n_args, sizeof *z->args); z->cap_args = n_args;
    if ((rc = tp_grow_store(z, 0, n_vars)) < 0) return rc;
    z->last_x = alloc(m, sizeof *z->last_x); z->cap_last = m;
    z->guards = alloc(3 * n_guards, sizeof *z->guards); z->cap_guards = 3 * n_guards;
    z->outputs = alloc(t->n_outputs, sizeof *z->outputs);
    if (!z->ops || !z->args || !z->last_x || !z->guards || !z->outputs)
        return TP_ENOMEM;
    z->n_inputs = z->n_vars = m;
    for (int64_t i = 0; i < m; i++) {
        r->var[i] = (int32_t)i;
        z->vals[i] = t->vals[i];
    }
    if (m) memcpy(z->last_x, tp_last(t), (size_t)m * sizeof *z->last_x);
    z->last_set = 1;
    int32_t *dst = z->args;
    for (int64_t k = 0; k < o->n; k++) {
        const int op = o->ops[k];
        const words_t w = words(op, o->args + o->at[k]);
        const int32_t s = o->first[k];
        if (!live[s]) {
            for (int64_t j = 0; j < w.res; j++) r->var[s + j] = -1;
            continue;
        }
        const int64_t nz = z->n_vars;
        int32_t *d = dst + (w.q - (o->args + o->at[k]));
        int64_t lo, hi;
        for (int32_t j = 0; j < w.n; j++)
            if (!is_code(op, j)) d[j] = w.q[j];
            else if (tp_op_kind[op] == TP_KIND_BLOCK && !tp_span(t, w.q + j, &lo, &hi))
                d[j] = 0;                /* an empty block: no variable of its (may be none) */
            else if (tp_op_kind[op] == TP_KIND_BLOCK && w.q[j] < 0) {
                if ((rc = const_block(r, o, w.q + j, &d[j])) < 0) return rc;
            } else if ((rc = code_of(r, o, w.q[j], &d[j])) < 0) return rc;
        if (w.len > w.n) { dst[0] = w.n; dst[w.n + 1] = w.n; }
        if (tp_op_kind[op] == TP_KIND_GUARD) {
            int64_t *g = z->guards + 3 * z->n_guards++;
            g[0] = nz; g[1] = d - z->args; g[2] = z->n_ops;
        }
        for (int64_t j = 0; j < w.res; j++) {
            r->var[s + j] = (int32_t)(nz + j);
            z->vals[nz + j] = t->vals[o->src[k] + j];
        }
        z->ops[z->n_ops++] = (uint8_t)op;
        z->n_vars += w.res;
        dst += w.len;
    }
    z->n_args = dst - z->args;
    for (int64_t j = 0; j < t->n_outputs; j++)
        if ((rc = code_of(r, o, outputs[j], &z->outputs[j])) < 0) return rc;
    z->n_outputs = t->n_outputs;
    if (t->n_shapes) {                   /* the shape table as it is: block ops name its ids */
        z->shp = alloc(t->n_shp, sizeof *z->shp);
        z->shp_at = alloc(t->n_shapes, sizeof *z->shp_at);
        if (!z->shp || !z->shp_at) return TP_ENOMEM;
        memcpy(z->shp, t->shp, (size_t)t->n_shp * sizeof *z->shp);
        memcpy(z->shp_at, t->shp_at, (size_t)t->n_shapes * sizeof *z->shp_at);
        z->n_shp = z->cap_shp = t->n_shp;
        z->n_shapes = z->cap_shapes = t->n_shapes;
    }
    if (t->n_index) {                    /* the index table too: GATHER's and SCATTER's ids */
        z->ixw = alloc(t->n_ixw, sizeof *z->ixw);
        z->ix_at = alloc(t->n_index, sizeof *z->ix_at);
        if (!z->ixw || !z->ix_at) return TP_ENOMEM;
        if (t->n_ixw) memcpy(z->ixw, t->ixw, (size_t)t->n_ixw * sizeof *z->ixw);
        memcpy(z->ix_at, t->ix_at, (size_t)t->n_index * sizeof *z->ix_at);
        z->n_ixw = z->cap_ixw = t->n_ixw;
        z->n_index = z->cap_index = t->n_index;
    }
    return TP_OK;
}

/* pinned[v]: variable v lies in an operand block's range that the results of one operation do
 * not hold alone (head: each variable's operation's first result; cover: range counts) */
static void pin(const tp_tape *t, int32_t *head, int32_t *cover, uint8_t *pinned)
{
    const int64_t nv = tp_nvars(t);
    const int32_t *p = t->args;
    int64_t v = t->n_inputs;
    for (int64_t i = 0; i < t->n_inputs; i++) head[i] = -1;
    memset(cover, 0, (size_t)(nv + 1) * sizeof *cover);
    for (int64_t k = 0; k < t->n_ops; k++) {
        const int op = t->ops[k];
        const words_t w = words(op, p);
        for (int64_t j = 0; j < w.res; j++) head[v + j] = (int32_t)v;
        if (tp_op_kind[op] == TP_KIND_BLOCK)
            for (int32_t j = 3; j < w.n; j += 2) {
                int64_t lo, hi;
                if (w.q[j] < 0 || !tp_span(t, w.q + j, &lo, &hi) || lo == hi ||
                    (head[lo] >= 0 && head[lo] == head[hi])) continue;
                cover[lo]++; cover[hi + 1]--;
            }
        v += w.res;
        p += w.len;
    }
    int32_t c = 0;
    for (int64_t i = 0; i < nv; i++) { c += cover[i]; pinned[i] = c > 0; }
}

/* ---- the entry point --------------------------------------------------------------------- */
/* Scratch from the thread's sweep buffers (work.h): repeated calls fault no fresh pages in. */
typedef struct { char *p; size_t used; } arena_t;

static void *take(arena_t *a, int64_t n, size_t sz)
{
    void *q = a->p + a->used;
    a->used += ((size_t)(n > 0 ? n : 1) * sz + 7) & ~(size_t)7;
    return q;
}

/* Fills into (a new tape: tp_new, nothing recorded) with t optimised and closes it. vars[0 ..
 * n_vars-1], variables of t, become theirs in the new tape, or -1 (removed, or replaced by a
 * constant). stats: cse, folded, identities, dead, the operations before and after. */
int tp_optimize(tp_tape *t, tp_tape *into, int32_t *vars, int64_t n_vars, int64_t *stats)
{
    if (!tp_may_read(t)) return TP_ETHREAD;
    if (into == t || into->claimed || into->n_inputs || into->n_ops || into->n_consts)
        return TP_EARG;
    const int64_t nv = tp_nvars(t), n = t->n_ops, pool_max = t->n_consts + n;
    for (int64_t i = 0; i < n_vars; i++)
        if (vars[i] < 0 || vars[i] >= nv) return TP_EARG;
    opt_t o = {.t = t, .m = t->n_inputs, .cap = 1024};
    while (o.cap < 2 * n && o.cap < ((int64_t)1 << 32)) o.cap *= 2;
    renum_t r = {0};
    work_t w;
    int rc = work_begin(&w, t);
    if (rc < 0) return rc;
    /* 8-byte items first: every piece stays aligned */
    const size_t bytes = (size_t)(o.cap + n) * 8 + (size_t)(nv * 3 + n * 3 + t->n_args +
                         pool_max + t->n_outputs) * 4 + (size_t)(n + nv) + 13 * 8 +
                         (size_t)(2 * nv + 1) * 4 + (size_t)nv + 3 * 8;
    arena_t a = {(char *)work_buf(&w, W_VALUES, (int64_t)(bytes / 8 + 1)), 0};
    o.pool = tp_new(); r.z = tp_new();
    rc = TP_ENOMEM;
    if (!a.p || !o.pool || !r.z) goto done;
    o.table = take(&a, o.cap, sizeof *o.table);
    o.at = take(&a, n, sizeof *o.at);
    o.rep = take(&a, nv, sizeof *o.rep); o.def = take(&a, nv - o.m, sizeof *o.def);
    o.src = take(&a, n, sizeof *o.src); o.first = take(&a, n, sizeof *o.first);
    o.args = take(&a, t->n_args, sizeof *o.args);
    r.var = take(&a, nv, sizeof *r.var); r.cmap = take(&a, pool_max, sizeof *r.cmap);
    int32_t *outputs = take(&a, t->n_outputs, sizeof *outputs);
    o.ops = take(&a, n, 1);
    uint8_t *live = take(&a, nv, 1);
    int32_t *head = take(&a, nv, sizeof *head), *cover = take(&a, nv + 1, sizeof *cover);
    uint8_t *pinned = take(&a, nv, 1);
    memset(o.table, 0, (size_t)o.cap * sizeof *o.table);
    if ((rc = tp_pool_append(o.pool, tp_clow(t), t->n_consts)) < 0) goto done;   /* same codes */
    pin(t, head, cover, pinned);
    o.pinned = pinned;
    if ((rc = pass1(&o)) < 0) goto done;
    for (int64_t j = 0; j < t->n_outputs; j++)
        outputs[j] = t->outputs[j] >= 0 ? o.rep[t->outputs[j]] : t->outputs[j];
    memset(live, 0, (size_t)o.nv);
    memset(r.cmap, 0, (size_t)o.pool->n_consts * sizeof *r.cmap);
    pass2(&o, outputs, t->n_outputs, live);
    if ((rc = pass3(&o, outputs, live, &r)) < 0) goto done;
    for (int64_t i = 0; i < n_vars; i++)
        vars[i] = o.rep[vars[i]] >= 0 ? r.var[o.rep[vars[i]]] : -1;
    stats[0] = o.cse; stats[1] = o.folded; stats[2] = o.identities;
    stats[3] = o.n - r.z->n_ops; stats[4] = n; stats[5] = r.z->n_ops;
    r.z->claimed = 1;
    tp_tape empty = *into;               /* into takes the new tape's fields; r.z frees its own */
    *into = *r.z;
    *r.z = empty;
    tp_close(into);
done:
    work_end(&w);
    tp_free(o.pool); tp_free(r.z);
    return rc;
}

/* The tape optimiser (tp_optimize): a new closed tape computing the same outputs, guards and
 * derivatives with fewer operations, in three linear passes:
 *
 *  1. forward: each operation's operands are replaced by their representatives, then it is
 *     folded (all operands constants: computed once by its own PRIMAL rule, bit for bit), or
 *     forwarded to an operand by an identity exact in IEEE arithmetic (exact_identity), or merged
 *     into an earlier identical operation (value numbering: a hash of opcode and operands), or
 *     kept. Primitives (CALL, OUT) are always kept here: their functions may be impure.
 *  2. backward: liveness from the outputs and the checked comparisons (branch guards); an
 *     unchecked comparison (outcome NaN, ad.where's) lives only through its users.
 *  3. forward: the live operations, renumbered into the new tape with a fresh constant pool.
 *
 * Operand order is canonical (for matching only) where swapping operands changes neither the
 * IEEE result nor a derivative convention: ADD, MUL, EQ, NE. Not MAX/MIN (max(+0, -0) is -0,
 * max(-0, +0) is +0), not HYPOT (libm need not be symmetric to the bit).
 */
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include "tape_impl.h"
#include "rules.h"

#define NONE INT32_MIN                   /* no operand code: constants end at INT32_MIN + 1 */

typedef struct {
    const tp_tape *t;
    int64_t m, n;                        /* inputs; operations kept by pass 1 */
    uint8_t *ops;                        /* pass 1's operations: opcodes, */
    int32_t *args; int64_t n_args;       /* operand stream (ops.def's layout), */
    int64_t *at;                         /* where each one's operands start, */
    int32_t *src;                        /* and the original variable it computes */
    int32_t *rep;                        /* original variable -> pass-1 operand code */
    tp_tape *pool;                       /* pass 1's constants (the original pool, then folds) */
    struct slot *table; int64_t cap, used;   /* value numbering (value_number) */
    int64_t cse, folded, identities;
} opt_t;

/* The operands of the operation whose stream starts at p: their count, *q the first, *len the
 * stream length (variadic ops hold their count before and after). */
static inline int32_t operands(int op, const int32_t *p, const int32_t **q, int64_t *len)
{
    int a = tp_op_arity[op];
    if (a == VARIADIC) { *q = p + 1; *len = (int64_t)p[0] + 2; return p[0]; }
    *q = p; *len = a;
    return a;
}

static inline double konst(const opt_t *o, int32_t code) { return o->pool->consts[-1 - (int64_t)code]; }
static inline int is_const(int32_t code, const opt_t *o, double c)   /* the constant c, bit for bit */
{
    if (code >= 0) return 0;
    double v = konst(o, code);
    return memcmp(&v, &c, sizeof v) == 0;
}

static inline int commutative(int op)
{
    return op == TP_OP_ADD || op == TP_OP_MUL || op == TP_OP_EQ || op == TP_OP_NE;
}

/* ---- 1. folding, identities, value numbering -------------------------------------------------- */
/* z of op on constant operands v[0 .. n-1], by the op's own PRIMAL rule (the sweeps' bits). */
static double fold(int op, const double *v, int32_t n)
{
    const double x = v[0], y = n > 1 ? v[1] : 0.0, w = n > 2 ? v[2] : 0.0;
    double z = NAN;
    (void)x; (void)y; (void)w;
#define VAL(i) v[i]
#define CHECK_GUARD(z, w)                /* constant operands: the guard can never flip */
#define PRIMITIVE_CALL z = NAN           /* never folded */
#define PRIMITIVE_OUT z = NAN
    switch (op) {
#define OP(NAME, ARITY, RULE, FORMULA) case TP_OP_##NAME: NAME##_PRIMAL; break;
#include "ops.def"
#undef OP
    }
#undef VAL
#undef CHECK_GUARD
#undef PRIMITIVE_CALL
#undef PRIMITIVE_OUT
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
        if (q[0] >= o->m && o->ops[q[0] - o->m] == TP_OP_NEG) return o->args[o->at[q[0] - o->m]];
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
static uint32_t hash_op(int op, const int32_t *q, int32_t n)
{
    uint64_t g = (uint64_t)op * 0x9e3779b97f4a7c15ULL + (uint64_t)n;
    if (commutative(op) && q[0] > q[1])
        return (uint32_t)mix(g ^ ((uint64_t)(uint32_t)q[1] << 32 | (uint32_t)q[0]));
    for (int32_t i = 0; i + 1 < n; i += 2)
        g = mix(g ^ ((uint64_t)(uint32_t)q[i] << 32 | (uint32_t)q[i + 1]));
    if (n % 2) g = mix(g ^ (uint32_t)q[n - 1]);
    return (uint32_t)g;
}

static int same_op(const opt_t *o, int64_t k, int op, const int32_t *q, int32_t n)
{
    if (o->ops[k] != op) return 0;
    const int32_t *r;
    int64_t len;
    if (operands(op, o->args + o->at[k], &r, &len) != n) return 0;
    if (commutative(op) && r[0] == q[1] && r[1] == q[0]) return 1;
    for (int32_t i = 0; i < n; i++)
        if (r[i] != q[i]) return 0;
    return 1;
}

/* The table: k + 1 for pass-1 op k (0: empty) with its hash, at the hash's low bits. It starts
 * small and doubles (load under 1/2), so a tape of many repeats keeps it in cache. */
typedef struct slot { int32_t k1; uint32_t h; } slot_t;

static int grow_table(opt_t *o)
{
    int64_t cap = o->cap ? 2 * o->cap : 4096;
    if (cap > ((int64_t)1 << 32)) return TP_ETOOBIG;          /* the hash's bits */
    slot_t *t = calloc((size_t)cap, sizeof *t);
    if (!t) return TP_ENOMEM;
    for (int64_t i = 0; i < o->cap; i++) {
        if (!o->table[i].k1) continue;
        int64_t j = o->table[i].h & (cap - 1);
        while (t[j].k1) j = (j + 1) & (cap - 1);
        t[j] = o->table[i];
    }
    free(o->table);
    o->table = t; o->cap = cap;
    return TP_OK;
}

/* The pass-1 op equal to (op, q), else k is entered as it: its number (or a status). */
static int64_t value_number(opt_t *o, int op, const int32_t *q, int32_t n, int64_t k)
{
    int rc;
    if (2 * (o->used + 1) > o->cap && (rc = grow_table(o)) < 0) return rc;
    const uint32_t h = hash_op(op, q, n);
    int64_t j = h & (o->cap - 1);
    for (slot_t *s; (s = &o->table[j])->k1; j = (j + 1) & (o->cap - 1))
        if (s->h == h && same_op(o, s->k1 - 1, op, q, n)) return s->k1 - 1;
    o->table[j].k1 = (int32_t)k + 1;
    o->table[j].h = h;
    o->used++;
    return k;
}

static int pass1(opt_t *o)
{
    const tp_tape *t = o->t;
    const int32_t *p = t->args;
    int32_t *out = o->args;
    int rc;
    for (int64_t i = 0; i < o->m; i++) o->rep[i] = (int32_t)i;
    for (int64_t i = 0; i < t->n_ops; i++) {
        const int op = t->ops[i];
        const int32_t *q;
        int64_t len;
        const int32_t n = operands(op, p, &q, &len);
        int32_t *r = out + (len - n == 2 ? 1 : 0);      /* its operands, as representatives */
        int all_const = 1;
        for (int32_t j = 0; j < n; j++) {
            r[j] = q[j] >= 0 ? o->rep[q[j]] : q[j];
            all_const &= r[j] < 0;
        }
        p += len;
        const int64_t v = o->m + i, k = o->n;
        int32_t to = NONE;
        if (tp_op_kind[op] != TP_KIND_PRIMITIVE) {
            if (all_const) {
                double c[3], *vals = n <= 3 ? c : malloc((size_t)n * sizeof *vals);
                if (!vals) return TP_ENOMEM;
                for (int32_t j = 0; j < n; j++) vals[j] = konst(o, r[j]);
                double z = fold(op, vals, n);
                if (vals != c) free(vals);
                if ((rc = tp_pool_code(o->pool, z, &to)) < 0) return rc;
                o->folded++;
            } else if ((to = exact_identity(o, op, r)) != NONE) {
                o->identities++;
            } else {
                int64_t e = value_number(o, op, r, n, k);
                if (e < 0) return (int)e;
                if (e != k) { to = (int32_t)(o->m + e); o->cse++; }
            }
        }
        if (to != NONE) { o->rep[v] = to; continue; }
        if (len - n == 2) { out[0] = n; out[n + 1] = n; }
        o->ops[k] = (uint8_t)op;
        o->at[k] = out - o->args;
        o->src[k] = (int32_t)v;
        o->rep[v] = (int32_t)(o->m + k);
        o->n++;
        out += len;
    }
    o->n_args = out - o->args;
    return TP_OK;
}

/* ---- 2. liveness ------------------------------------------------------------------------------ */
static inline int checked(const opt_t *o, int64_t k)   /* a comparison whose outcome replays check */
{
    if (tp_op_kind[o->ops[k]] != TP_KIND_GUARD) return 0;
    int32_t w = o->args[o->at[k] + 2];
    return w >= 0 || !isnan(konst(o, w));
}

static void pass2(const opt_t *o, const int32_t *outputs, int64_t n_out, uint8_t *live)
{
    const int64_t m = o->m;
    for (int64_t j = 0; j < n_out; j++)
        if (outputs[j] >= 0) live[outputs[j]] = 1;
    for (int64_t k = 0; k < o->n; k++)
        if (checked(o, k)) live[m + k] = 1;
    for (int64_t k = o->n - 1; k >= 0; k--) {
        if (!live[m + k]) continue;
        const int op = o->ops[k];
        const int32_t *q;
        int64_t len;
        const int32_t n = operands(op, o->args + o->at[k], &q, &len);
        for (int32_t j = 0; j < n; j++)
            if (q[j] >= 0) live[q[j]] = 1;
        if (op == TP_OP_CALL)            /* a call keeps all of its outputs (the OUTs after it) */
            for (int64_t u = k + 1; u < o->n && o->ops[u] == TP_OP_OUT; u++) live[m + u] = 1;
    }
}

/* ---- 3. the new tape ---------------------------------------------------------------------------- */
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

static void *alloc(int64_t n, size_t sz) { return malloc((size_t)(n > 0 ? n : 1) * sz); }

static int pass3(opt_t *o, const int32_t *outputs, const uint8_t *live, renum_t *r)
{
    const tp_tape *t = o->t;
    tp_tape *z = r->z;
    const int64_t m = o->m;
    int64_t n_live = 0, n_args = 0, n_guards = 0;
    int rc;
    for (int64_t k = 0; k < o->n; k++) {
        if (!live[m + k]) continue;
        const int32_t *q;
        int64_t len;
        operands(o->ops[k], o->args + o->at[k], &q, &len);
        n_live++; n_args += len;
        n_guards += tp_op_kind[o->ops[k]] == TP_KIND_GUARD;
    }
    z->ops = alloc(n_live, 1); z->cap_ops = n_live;
    z->args = alloc(n_args, sizeof *z->args); z->cap_args = n_args;
    z->vals = alloc(m + n_live, sizeof *z->vals); z->cap_vals = m + n_live;
    z->last_x = alloc(m, sizeof *z->last_x); z->cap_last = m;
    z->guards = alloc(2 * n_guards, sizeof *z->guards); z->cap_guards = 2 * n_guards;
    z->outputs = alloc(t->n_outputs, sizeof *z->outputs);
    if (!z->ops || !z->args || !z->vals || !z->last_x || !z->guards || !z->outputs)
        return TP_ENOMEM;
    z->n_inputs = m;
    for (int64_t i = 0; i < m; i++) {
        r->var[i] = (int32_t)i;
        z->vals[i] = t->vals[i];
        __atomic_load(&t->last_x[i], &z->last_x[i], __ATOMIC_RELAXED);
    }
    int32_t *dst = z->args;
    for (int64_t k = 0; k < o->n; k++) {
        if (!live[m + k]) { r->var[m + k] = -1; continue; }
        const int op = o->ops[k];
        const int32_t *q;
        int64_t len;
        const int32_t n = operands(op, o->args + o->at[k], &q, &len);
        const int64_t nz = m + z->n_ops;
        int32_t *d = dst + (len - n == 2 ? 1 : 0);
        for (int32_t j = 0; j < n; j++)
            if ((rc = code_of(r, o, q[j], &d[j])) < 0) return rc;
        if (len - n == 2) { dst[0] = n; dst[n + 1] = n; }
        if (tp_op_kind[op] == TP_KIND_GUARD) {
            z->guards[2 * z->n_guards] = nz;
            z->guards[2 * z->n_guards + 1] = d - z->args;
            z->n_guards++;
        }
        z->ops[z->n_ops++] = (uint8_t)op;
        z->vals[nz] = t->vals[o->src[k]];
        r->var[m + k] = (int32_t)nz;
        dst += len;
    }
    z->n_args = dst - z->args;
    for (int64_t j = 0; j < t->n_outputs; j++)
        if ((rc = code_of(r, o, outputs[j], &z->outputs[j])) < 0) return rc;
    z->n_outputs = t->n_outputs;
    return TP_OK;
}

/* ---- the entry point ---------------------------------------------------------------------------- */
/* *out: the optimised tape (closed). map (one per variable of t): its variable in the new tape, or
 * -1 (removed, or replaced by a constant). stats: cse, folded, identities, dead, ops before, after. */
int tp_optimize(tp_tape *t, tp_tape **out, int32_t *map, int64_t *stats)
{
    if (!tp_may_read(t)) return TP_ETHREAD;
    const int64_t nv = tp_nvars(t);
    opt_t o = {.t = t, .m = t->n_inputs};
    renum_t r = {0};
    int32_t *outputs = alloc(t->n_outputs, sizeof *outputs);
    uint8_t *live = NULL;
    int rc = TP_ENOMEM;
    o.ops = alloc(t->n_ops, 1); o.args = alloc(t->n_args, sizeof *o.args);
    o.at = alloc(t->n_ops, sizeof *o.at); o.src = alloc(t->n_ops, sizeof *o.src);
    o.rep = alloc(nv, sizeof *o.rep);
    o.pool = tp_new(); r.z = tp_new();
    if (!outputs || !o.ops || !o.args || !o.at || !o.src || !o.rep || !o.pool || !r.z)
        goto done;
    for (int64_t c = 0; c < t->n_consts; c++) {   /* the same codes: the pool is deduplicated */
        int32_t code;
        if ((rc = tp_pool_code(o.pool, t->consts[c], &code)) < 0) goto done;
    }
    if ((rc = pass1(&o)) < 0) goto done;
    for (int64_t j = 0; j < t->n_outputs; j++)
        outputs[j] = t->outputs[j] >= 0 ? o.rep[t->outputs[j]] : t->outputs[j];
    rc = TP_ENOMEM;
    if (!(live = calloc((size_t)(o.m + o.n + 1), 1)) ||
        !(r.var = alloc(o.m + o.n, sizeof *r.var)) ||
        !(r.cmap = calloc((size_t)o.pool->n_consts + 1, sizeof *r.cmap))) goto done;
    pass2(&o, outputs, t->n_outputs, live);
    if ((rc = pass3(&o, outputs, live, &r)) < 0) goto done;
    for (int64_t v = 0; v < nv; v++) map[v] = o.rep[v] >= 0 ? r.var[o.rep[v]] : -1;
    stats[0] = o.cse; stats[1] = o.folded; stats[2] = o.identities;
    stats[3] = o.n - r.z->n_ops; stats[4] = t->n_ops; stats[5] = r.z->n_ops;
    r.z->claimed = 1;
    tp_close(r.z);
    *out = r.z;
    r.z = NULL;
done:
    free(outputs); free(live); free(o.ops); free(o.args); free(o.at); free(o.src); free(o.rep);
    free(o.table); free(r.var); free(r.cmap);
    tp_free(o.pool); tp_free(r.z);
    return rc;
}

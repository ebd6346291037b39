/* Recording: the tape's arrays, growth, the constant pool and the op tables. */
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include "tape_impl.h"
#include "rules.h"

#define CHECK_GUARD(z, w)          /* recording: the outcome is what was just computed */
#define PRIMITIVE_CALL z = NAN     /* tp_rec_call sets the values the user's function gave */
#define BLOCK_PRIMAL(op) z = NAN      /* tp_rec_block computes them (blocktape.c) */

#define OP(NAME, ARITY, RESULTS, RULE, FORMULA) #NAME,
const char *const tp_op_name[] = {
#include "ops.def"
};
#undef OP
#define OP(NAME, ARITY, RESULTS, RULE, FORMULA) ARITY,
const int tp_op_arity[] = {
#include "ops.def"
};
#undef OP
#define OP(NAME, ARITY, RESULTS, RULE, FORMULA) RESULTS,
const int tp_op_results[] = {
#include "ops.def"
};
#undef OP
/* an op writes one variable, or a variadic op as many as it stores (tape.h, "Operands") */
#define OP(NAME, ARITY, RESULTS, RULE, FORMULA) typedef char \
    results_of_##NAME[(RESULTS) == 1 || ((RESULTS) == VARIADIC && (ARITY) == VARIADIC) ? 1 : -1];
#include "ops.def"
#undef OP
#define OP(NAME, ARITY, RESULTS, RULE, FORMULA) FORMULA,
const char *const tp_op_formula[] = {
#include "ops.def"
};
#undef OP
#define LINEAR 0
#define BILINEAR 1
#define NONLINEAR 2
#define OP(NAME, ARITY, RESULTS, RULE, FORMULA) RULE_OF(RULE, NAME, CURVATURE),
const int tp_op_curvature[] = {
#include "ops.def"
};
#undef OP
#define OP(NAME, ARITY, RESULTS, RULE, FORMULA) TP_KIND_##RULE,
const int tp_op_kind[] = {
#include "ops.def"
};
#undef OP
const int tp_n_opcodes = TP_N_OPCODES;

#define MAX_VARS   ((int64_t)INT32_MAX)       /* variable indices are int32 */
#define MAX_CONSTS ((int64_t)INT32_MAX)       /* constant codes are -1 .. INT32_MIN+1 */

static void give(void *p, size_t n)        /* a large block to recycle.c, a small one freed */
{
    if (n >= TP_RECYCLE_MIN) tp_recycle(p, n);
    else free(p);
}

/* Grow *p (elements of size sz) to hold need elements: capacity doubles, never past limit. */
static int grow(void **p, int64_t *cap, int64_t need, size_t sz, int64_t limit)
{
    if (need <= *cap) return TP_OK;
    if (need > limit) return TP_ETOOBIG;
    int64_t c = *cap ? *cap : 64;
    while (c < need) c = (c > limit / 2) ? limit : 2 * c;
    if ((uint64_t)c > SIZE_MAX / sz) return TP_ETOOBIG;
    size_t got = (size_t)c * sz;                     /* a kept block of a freed tape, */
    void *q = got >= TP_RECYCLE_MIN ? tp_recycled(got, &got) : NULL;
    if (q) {
        if (*p) memcpy(q, *p, (size_t)*cap * sz);
        give(*p, (size_t)*cap * sz);
    } else if (!(q = realloc(*p, (size_t)c * sz))) {  /* else realloc (mremap when large) */
        return TP_ENOMEM;
    }
    *p = q;
    *cap = (int64_t)(got / sz) < limit ? (int64_t)(got / sz) : limit;
    return TP_OK;
}
int tp_grow(void **p, int64_t *cap, int64_t need, size_t sz, int64_t limit)
{
    return grow(p, cap, need, sz, limit);
}

#define RESERVE_MAX ((int64_t)1 << 22)      /* constants' room reserved at most (32 MB) */

static int64_t doubled(int64_t cap, int64_t need, int64_t limit)
{
    if (need <= cap) return cap;
    int64_t c = cap ? cap : 64;
    while (c < need) c = (c > limit / 2) ? limit : 2 * c;
    return c;
}

/* The constants' and values' block (tape_impl.h): more room for the values alone reallocs it;
 * for the constants, a new block takes them at its new bottom and the n_vars values above. The
 * first block (made for the inputs) has as much room for constants as for values: NumPy code's
 * constant arrays (data) come after its inputs (weights), often as large, and would move it. */
int tp_grow_store(tp_tape *t, int64_t consts, int64_t vars)
{
    if (consts <= t->cap_consts && vars <= t->cap_vals) return TP_OK;
    if (consts > MAX_CONSTS || vars > MAX_VARS) return TP_ETOOBIG;
    const int64_t room = vars < RESERVE_MAX ? vars : RESERVE_MAX;
    const int64_t cc = doubled(t->cap_consts, t->vals || consts > room ? consts : room, MAX_CONSTS);
    const int64_t cv = doubled(t->cap_vals, vars, MAX_VARS);
    double *old = t->vals ? t->vals - t->cap_consts : NULL;
    size_t bytes = (size_t)(cc + cv) * sizeof *old, got = bytes;
    double *q = bytes >= TP_RECYCLE_MIN ? tp_recycled(bytes, &got) : NULL;
    if (!q && old && cc == t->cap_consts) {
        if (!(q = realloc(old, bytes))) return TP_ENOMEM;
    } else {
        if (!q && !(q = malloc(bytes))) return TP_ENOMEM;
        if (old) {
            const int64_t nv = t->n_vars < t->cap_vals ? t->n_vars : t->cap_vals;
            if (t->n_consts)
                memcpy(q + cc - t->n_consts, tp_clow(t), (size_t)t->n_consts * sizeof *q);
            if (nv) memcpy(q + cc, t->vals, (size_t)nv * sizeof *q);
            give(old, (size_t)(t->cap_consts + t->cap_vals) * sizeof *old);
        }
    }
    t->vals = q + cc;
    t->cap_consts = cc;
    t->cap_vals = (int64_t)(got / sizeof *q) - cc;
    if (t->cap_vals > MAX_VARS) t->cap_vals = MAX_VARS;
    return TP_OK;
}

void tp_free_store(tp_tape *t)
{
    if (t->vals)
        give(t->vals - t->cap_consts, (size_t)(t->cap_consts + t->cap_vals) * sizeof(double));
    t->vals = NULL;
    t->cap_consts = t->cap_vals = 0;
}
#define GROW(t, arr, capf, need, limit) \
    grow((void **)&(t)->arr, &(t)->capf, (need), sizeof *(t)->arr, (limit))

tp_tape *tp_new(void)
{
    return calloc(1, sizeof(tp_tape));
}

void tp_free(tp_tape *t)
{
    if (!t) return;
    give(t->ops, (size_t)t->cap_ops);
    give(t->args, (size_t)t->cap_args * sizeof *t->args);
    tp_free_store(t);
    give(t->last_x, (size_t)t->cap_last * sizeof *t->last_x);
    free(t->ckeys); free(t->cslot); free(t->outputs); free(t->guards);
    free(t->shp); free(t->shp_at); free(t->shash); free(t->ixw); free(t->ix_at); free(t);
}

/* The calling thread starts recording t: once per tape, by one thread (a second `with t:`, from
 * any thread, is TP_ETHREAD; a closed tape TP_ECLOSED). */
int tp_claim(tp_tape *t)
{
    if (__atomic_load_n(&t->closed, __ATOMIC_ACQUIRE)) return TP_ECLOSED;
    int free_ = 0;
    if (!__atomic_compare_exchange_n(&t->claimed, &free_, 1, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE)) return TP_ETHREAD;
    t->owner = pthread_self();
    __atomic_store_n(&t->started, 1, __ATOMIC_RELEASE);
    return TP_OK;
}

int tp_readable(const tp_tape *t) { return tp_may_read(t); }
void tp_close(tp_tape *t) { __atomic_store_n(&t->closed, 1, __ATOMIC_RELEASE); }
int tp_closed(const tp_tape *t) { return __atomic_load_n(&t->closed, __ATOMIC_ACQUIRE); }

static int may_record(const tp_tape *t)
{
    if (t->closed) return TP_ECLOSED;
    if (!t->started) return TP_ESTART;
    if (!pthread_equal(t->owner, pthread_self())) return TP_ETHREAD;
    if (__atomic_load_n(&t->sweeping, __ATOMIC_ACQUIRE)) return TP_EBUSY;
    return TP_OK;
}

int tp_may_record(const tp_tape *t) { return may_record(t); }

/* ---- constant pool: open addressing on the bit pattern, so -0.0 and each NaN stay apart ---- */
static uint64_t mix(uint64_t h)
{
    h ^= h >> 33; h *= 0xff51afd7ed558ccdULL; h ^= h >> 33; h *= 0xc4ceb9fe1a85ec53ULL;
    return h ^ (h >> 33);
}

static int rehash(tp_tape *t, int64_t cap)
{
    uint64_t *keys = malloc((size_t)cap * sizeof *keys);
    int32_t *slot = malloc((size_t)cap * sizeof *slot);
    if (!keys || !slot) { free(keys); free(slot); return TP_ENOMEM; }
    for (int64_t i = 0; i < cap; i++) slot[i] = -1;
    for (int64_t i = 0; i < t->chash_cap; i++) {  /* the pooled constants (not the blocks) */
        if (t->cslot[i] < 0) continue;
        uint64_t k = t->ckeys[i];
        int64_t h = (int64_t)(mix(k) & (uint64_t)(cap - 1));
        while (slot[h] >= 0) h = (h + 1) & (cap - 1);
        keys[h] = k; slot[h] = t->cslot[i];
    }
    free(t->ckeys); free(t->cslot);
    t->ckeys = keys; t->cslot = slot; t->chash_cap = cap;
    return TP_OK;
}

static int const_code(tp_tape *t, double c, int32_t *code)
{
    int rc;
    if (2 * (t->n_pooled + 1) > t->chash_cap) {   /* blocks of constants are not pooled */
        int64_t cap = t->chash_cap ? 2 * t->chash_cap : 64;
        while (cap < 2 * (t->n_pooled + 1)) cap *= 2;       /* sized by the pooled, not blocks */
        if ((rc = rehash(t, cap)) < 0) return rc;
    }
    uint64_t k; memcpy(&k, &c, sizeof k);
    int64_t h = (int64_t)(mix(k) & (uint64_t)(t->chash_cap - 1));
    while (t->cslot[h] >= 0) {
        if (t->ckeys[h] == k) { *code = -1 - t->cslot[h]; return TP_OK; }
        h = (h + 1) & (t->chash_cap - 1);
    }
    if ((rc = tp_grow_store(t, t->n_consts + 1, t->n_vars)) < 0) return rc;
    t->vals[-1 - t->n_consts] = c;
    t->ckeys[h] = k; t->cslot[h] = (int32_t)t->n_consts;
    t->n_pooled++;
    *code = (int32_t)(-1 - t->n_consts++);
    tp_consts_appended(t, t->n_consts - 1, c - c == 0.0);
    return TP_OK;
}

/* n constants appended as they are, in code order (x[0] gets the lowest code, -n_consts - n; not
 * deduplicated: a block of constants keeps its codes), then found by const_code like the others
 * (optimize.c). */
int tp_pool_append(tp_tape *t, const double *x, int64_t n)
{
    int rc;
    if (n < 0) return TP_EARG;
    if ((rc = tp_grow_store(t, t->n_consts + n, t->n_vars)) < 0) return rc;
    if (n) memcpy(t->vals - t->n_consts - n, x, (size_t)n * sizeof *x);
    t->n_consts += n;
    int64_t cap = t->chash_cap ? t->chash_cap : 64;
    while (cap < 2 * (t->n_consts + 1)) cap *= 2;
    return rehash(t, cap);
}

/* The pool code of c without the recording checks: for building a tape (optimize.c). */
int tp_pool_code(tp_tape *t, double c, int32_t *code) { return const_code(t, c, code); }

int tp_const(tp_tape *t, double c, int32_t *code)
{
    int rc = may_record(t);
    return rc < 0 ? rc : const_code(t, c, code);
}

/* ---- recording ------------------------------------------------------------------------------ */
int64_t tp_add_inputs(tp_tape *t, const double *x, int64_t n)
{
    int rc = may_record(t);
    if (rc < 0) return rc;
    if (t->n_ops > 0) return TP_EORDER;
    if (n < 0) return TP_EARG;
    if ((rc = tp_grow_store(t, t->n_consts, t->n_inputs + n)) < 0 ||
        (rc = GROW(t, last_x, cap_last, t->n_inputs + n, MAX_VARS)) < 0) return rc;
    if (n) {
        memcpy(t->vals + t->n_inputs, x, (size_t)n * sizeof *x);
        if (t->last_set) memcpy(t->last_x + t->n_inputs, x, (size_t)n * sizeof *x);  /* tp_last */
    }
    int64_t first = t->n_inputs;
    t->n_inputs += n;
    t->n_vars = t->n_inputs;
    return first;
}

static inline double value_of(const tp_tape *t, int32_t i)
{
    return t->vals[i];                     /* (a constant's code is its place below vals) */
}

static inline int valid_operand(const tp_tape *t, int32_t i)
{
    return i >= 0 ? (int64_t)i < tp_nvars(t) : -1 - (int64_t)i < t->n_consts;
}

/* Append one operation with operand words a[0..n-1] (n = its arity, or the count when
 * variadic; an op with VARIADIC results has its result count in a[0]). Its results are the next
 * variables; the first is returned, with its value (the others' are the caller's to set). */
static int32_t append(tp_tape *t, int op, const int32_t *a, int64_t n)
{
    int rc = may_record(t);
    if (rc < 0) return rc;
    if (op < 0 || op >= TP_N_OPCODES) return TP_EARG;
    int variadic = tp_op_arity[op] == VARIADIC, counted = tp_op_results[op] == VARIADIC;
    if (variadic ? (n < 1 || n > INT32_MAX - 2) : n != tp_op_arity[op]) return TP_EARG;
    if (op == TP_OP_DOT && n % 2) return TP_EARG;
    int64_t r = counted ? a[0] : tp_op_results[op];
    if (r < 1) return TP_EARG;
    for (int64_t i = counted; i < n && tp_op_kind[op] != TP_KIND_BLOCK; i++)  /* blocktape.c */
        if (!valid_operand(t, a[i])) return TP_EARG;        /* checks a block op's words */
    int64_t nz = tp_nvars(t), nargs = n + (variadic ? 2 : 0);
    if ((rc = tp_grow_store(t, t->n_consts, nz + r)) < 0 ||
        (rc = GROW(t, ops, cap_ops, t->n_ops + 1, MAX_VARS)) < 0 ||
        (rc = GROW(t, args, cap_args, t->n_args + nargs, INT64_MAX / 8)) < 0) return rc;

    double x = 0.0, y = 0.0, w = 0.0, z = 0.0;
    if (!variadic) {
        x = value_of(t, a[0]);
        if (n > 1) y = value_of(t, a[1]);
        if (n > 2) w = value_of(t, a[2]);
    }
    const int32_t *q = a;
    (void)x; (void)y; (void)w; (void)q;
#define VAL(i) value_of(t, q[i])
    switch (op) {
#define OP(NAME, ARITY, RESULTS, RULE, FORMULA) case TP_OP_##NAME: NAME##_PRIMAL; break;
#include "ops.def"
#undef OP
    }
#undef VAL
    if (tp_op_kind[op] == TP_KIND_GUARD) {                  /* remember comparisons */
        if ((rc = GROW(t, guards, cap_guards, 3 * t->n_guards + 3, INT64_MAX / 8)) < 0) return rc;
        int64_t *g = t->guards + 3 * t->n_guards++;
        g[0] = nz; g[1] = t->n_args; g[2] = t->n_ops;
    }
    int32_t *dst = t->args + t->n_args;
    if (variadic) { *dst++ = (int32_t)n; dst[n] = (int32_t)n; }
    memcpy(dst, a, (size_t)n * sizeof *a);
    t->n_args += nargs;
    t->ops[t->n_ops++] = (uint8_t)op;
    for (int64_t i = 0; i < r; i++) t->vals[nz + i] = i ? NAN : z;
    t->n_vars = nz + r;
    return (int32_t)nz;
}

int32_t tp_append(tp_tape *t, int op, const int32_t *a, int64_t n) { return append(t, op, a, n); }

/* Any operation but the primitives' and block ops' (tp_rec_call, tp_rec_block record them with
 * their values). */
static int32_t record(tp_tape *t, int op, const int32_t *a, int64_t n)
{
    if (op < 0 || op >= TP_N_OPCODES) return TP_EARG;
    if (tp_op_kind[op] == TP_KIND_PRIMITIVE || tp_op_kind[op] == TP_KIND_BLOCK) return TP_EARG;
    return append(t, op, a, n);
}

int32_t tp_rec1(tp_tape *t, int op, int32_t x) { return record(t, op, &x, 1); }

int32_t tp_rec2(tp_tape *t, int op, int32_t x, int32_t y)
{
    int32_t a[2] = {x, y};
    return record(t, op, a, 2);
}

int32_t tp_rec2vc(tp_tape *t, int op, int32_t x, double c)
{
    int32_t a[2] = {x, 0};
    int rc = may_record(t);
    if (rc < 0 || (rc = const_code(t, c, &a[1])) < 0) return rc;
    return record(t, op, a, 2);
}

int32_t tp_rec2cv(tp_tape *t, int op, double c, int32_t y)
{
    int32_t a[2] = {0, y};
    int rc = may_record(t);
    if (rc < 0 || (rc = const_code(t, c, &a[0])) < 0) return rc;
    return record(t, op, a, 2);
}

int32_t tp_rec3(tp_tape *t, int op, int32_t x, int32_t y, int32_t w)
{
    int32_t a[3] = {x, y, w};
    return record(t, op, a, 3);
}

int32_t tp_recn(tp_tape *t, int op, const int32_t *args, int64_t n)
{
    if (!args || n < 1) return TP_EARG;
    return record(t, op, args, n);
}

/* The comparison that made variable var: (variable, operand position, op index), or NULL. */
static const int64_t *comparison_at(const tp_tape *t, int64_t var)
{
    int64_t lo = 0, hi = t->n_guards - 1;          /* comparisons are in variable order */
    while (lo <= hi) {
        int64_t mid = lo + (hi - lo) / 2, v = t->guards[3 * mid];
        if (v < var) lo = mid + 1;
        else if (v > var) hi = mid - 1;
        else return t->guards + 3 * mid;
    }
    return NULL;
}

/* Make the comparison that made variable var a branch guard with the given outcome (Python took
 * its truth value): replays check it from now on. Comparisons are recorded unchecked (outcome
 * NaN); ad.where uses one as its condition without ever guarding it. */
int tp_guard(tp_tape *t, int64_t var, int outcome)
{
    int rc = may_record(t);
    if (rc < 0) return rc;
    const int64_t *g = comparison_at(t, var);
    if (!g) return TP_EARG;
    int32_t code;
    if ((rc = const_code(t, outcome ? 1.0 : 0.0, &code)) < 0) return rc;
    t->args[g[1] + 2] = code;
    return TP_OK;
}

/* Guards that variable var keeps its value at recording, for what reading it while recording
 * froze (.value, .grad): var == value; for NaN var != var; for a zero also its sign, 1/var > 0
 * (or < 0). guards[] gets the guards' variables; returns how many (1 or 2). */
int tp_guard_value(tp_tape *t, int32_t var, int32_t *guards)
{
    int rc = may_record(t);
    if (rc < 0) return rc;
    if (var < 0 || var >= tp_nvars(t)) return TP_EARG;
    const double x = t->vals[var];
    int32_t one, c, zero;
    if ((rc = const_code(t, 1.0, &one)) < 0) return rc;
    if (x != x) {
        int32_t a[3] = {var, var, one};
        return (guards[0] = append(t, TP_OP_NE, a, 3)) < 0 ? guards[0] : 1;
    }
    if ((rc = const_code(t, x, &c)) < 0) return rc;
    int32_t a[3] = {var, c, one};
    if ((guards[0] = append(t, TP_OP_EQ, a, 3)) < 0) return guards[0];
    if (x != 0.0) return 1;
    int32_t d[2] = {one, var}, s;                  /* 1/var: +inf or -inf, the zero's sign */
    if ((rc = const_code(t, 0.0, &zero)) < 0 || (rc = s = append(t, TP_OP_DIV, d, 2)) < 0) return rc;
    int32_t b[3] = {s, zero, one};
    return (guards[1] = append(t, signbit(x) ? TP_OP_LT : TP_OP_GT, b, 3)) < 0 ? guards[1] : 2;
}

/* The comparison that made variable var: its opcode, operands (x, y, outcome) and their values
 * at recording. */
int tp_comparison(const tp_tape *t, int64_t var, int *op, int32_t *operands, double *values)
{
    if (!tp_may_read(t)) return TP_ETHREAD;
    const int64_t *g = comparison_at(t, var);
    if (g) {
        *op = t->ops[g[2]];
        for (int i = 0; i < 3; i++) operands[i] = t->args[g[1] + i];
    } else if (tp_block_comparison(t, var, op, operands) < 0) return TP_EARG;  /* an element */
    for (int i = 0; i < 3; i++) values[i] = value_of(t, operands[i]);
    return TP_OK;
}

/* A call of primitive prim on k inputs whose n outputs are y: one CALL op writing the variables
 * z .. z+n-1, operand words n, prim (a constant code), then the inputs. All or nothing. */
int32_t tp_rec_call(tp_tape *t, int prim, const int32_t *inputs, int64_t k, const double *y,
                    int64_t n)
{
    int rc = may_record(t);
    if (rc < 0) return rc;
    if (k < 0 || n < 1 || k > INT32_MAX - 4 || n > INT32_MAX || prim < 0) return TP_EARG;
    for (int64_t i = 0; i < k; i++)
        if (!valid_operand(t, inputs[i])) return TP_EARG;
    int32_t *a = malloc((size_t)(k + 2) * sizeof *a);
    if (!a) return TP_ENOMEM;
    a[0] = (int32_t)n;
    if ((rc = const_code(t, (double)prim, &a[1])) < 0) { free(a); return rc; }
    if (k) memcpy(a + 2, inputs, (size_t)k * sizeof *a);
    int32_t z = append(t, TP_OP_CALL, a, k + 2);
    free(a);
    if (z < 0) return z;
    memcpy(t->vals + z, y, (size_t)n * sizeof *y);
    return z;
}

int tp_set_outputs(tp_tape *t, const int32_t *idx, int64_t n)
{
    int rc = may_record(t);
    if (rc < 0) return rc;
    if (n < 0) return TP_EARG;
    for (int64_t i = 0; i < n; i++)
        if (!valid_operand(t, idx[i])) return TP_EARG;
    int32_t *o = malloc((size_t)(n ? n : 1) * sizeof *o);
    if (!o) return TP_ENOMEM;
    if (n) memcpy(o, idx, (size_t)n * sizeof *o);
    free(t->outputs);
    t->outputs = o; t->n_outputs = n;
    return TP_OK;
}

/* ---- inspection ----------------------------------------------------------------------------- */
int64_t tp_n_inputs(const tp_tape *t) { return t->n_inputs; }
int64_t tp_n_ops(const tp_tape *t) { return t->n_ops; }
int64_t tp_n_vars(const tp_tape *t) { return t->n_vars; }
int64_t tp_n_args(const tp_tape *t) { return t->n_args; }
int64_t tp_n_consts(const tp_tape *t) { return t->n_consts; }
int64_t tp_n_outputs(const tp_tape *t) { return t->n_outputs; }

int tp_output_code(const tp_tape *t, int64_t i, int32_t *code)
{
    if (i < 0 || i >= t->n_outputs) return TP_EARG;
    *code = t->outputs[i];
    return TP_OK;
}

/* The recorded program: opcodes, operands, constants and outputs (not the recording's values). */
int64_t tp_nbytes(const tp_tape *t)
{
    return t->n_ops * (int64_t)sizeof *t->ops + t->n_args * (int64_t)sizeof *t->args +
           t->n_consts * (int64_t)sizeof(double) + t->n_outputs * (int64_t)sizeof *t->outputs +
           t->n_shp * (int64_t)sizeof *t->shp + t->n_ixw * (int64_t)sizeof *t->ixw;
}

double tp_value(const tp_tape *t, int64_t i)    /* callers check tp_readable first */
{
    return (i >= 0 && i < tp_nvars(t)) ? t->vals[i] : NAN;
}

int tp_export(const tp_tape *t, uint8_t *ops, int32_t *args, double *consts, int32_t *outputs)
{
    if (!tp_may_read(t)) return TP_ETHREAD;
    if (ops && t->n_ops) memcpy(ops, t->ops, (size_t)t->n_ops * sizeof *ops);
    if (args && t->n_args) memcpy(args, t->args, (size_t)t->n_args * sizeof *args);
    for (int64_t c = 0; consts && c < t->n_consts; c++) consts[c] = tp_cval(t, c);
    if (outputs && t->n_outputs)
        memcpy(outputs, t->outputs, (size_t)t->n_outputs * sizeof *outputs);
    return TP_OK;
}

/* The input of the last sweep (the recorded inputs before any). Concurrent sweeps may leave a
 * mix of their points: meaningful for sequential use. */
int tp_last_x(const tp_tape *t, double *x)
{
    if (!tp_may_read(t)) return TP_ETHREAD;
    if (t->n_inputs) memcpy(x, tp_last(t), (size_t)t->n_inputs * sizeof *x);
    return TP_OK;
}

int tp_op_counts(const tp_tape *t, int64_t *counts)
{
    if (!tp_may_read(t)) return TP_ETHREAD;
    memset(counts, 0, TP_N_OPCODES * sizeof *counts);
    for (int64_t i = 0; i < t->n_ops; i++) counts[t->ops[i]]++;
    return TP_OK;
}

void tp_swept(const tp_tape *t, int64_t *out)
{
    for (int i = 0; i < 5; i++) out[i] = __atomic_load_n(&t->swept[i], __ATOMIC_RELAXED);
}

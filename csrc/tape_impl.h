/* The tape's storage, shared by tape.c (recording) and sweep.c (replay). */
#pragma once
#include <pthread.h>
#include "tape.h"

enum tp_opcode {
#define OP(NAME, ARITY, RESULTS, RULE, FORMULA) TP_OP_##NAME,
#include "ops.def"
#undef OP
    TP_N_OPCODES
};
#define VARIADIC (-1)

/* Walking the operand stream (tape.h, "Operands"), generated per op from ops.def's columns:
 * TP_WORDS_<ARITY>(p) is the number of operand words of an op whose words start at p,
 * TP_WORDS_BACK_<ARITY>(p) the same from where they end, and TP_RESULTS(RESULTS, p) the
 * variables it writes given the start p of its words (a constant but for VARIADIC results). */
#define TP_WORDS_1(p) 1
#define TP_WORDS_2(p) 2
#define TP_WORDS_3(p) 3
#define TP_WORDS_VARIADIC(p) ((p)[0] + 2)
#define TP_WORDS_BACK_1(p) 1
#define TP_WORDS_BACK_2(p) 2
#define TP_WORDS_BACK_3(p) 3
#define TP_WORDS_BACK_VARIADIC(p) ((p)[-1] + 2)
#define TP_RESULTS(RESULTS, p) ((RESULTS) == VARIADIC ? (p)[1] : (RESULTS))

struct tp_tape {
    uint8_t *ops;    int64_t n_ops, cap_ops;       /* opcode of each operation */
    int32_t *args;   int64_t n_args, cap_args;     /* operand stream; variadic: n, q1..qn, n */
    int64_t n_consts, cap_consts;                  /* constant pool, deduplicated by bits: */
                                                   /* below vals (tp_cval), room for cap_consts */
    uint64_t *ckeys; int32_t *cslot; int64_t chash_cap;
    int64_t n_pooled;        /* constants in the hash (tp_const; not tp_const_block's) */
    double *vals;    int64_t cap_vals;             /* values at recording, one per variable */
    int64_t n_inputs;
    int64_t n_vars;                                /* inputs and every op's results */
    double *last_x;  int64_t cap_last;             /* the input of the last sweep, once */
    int last_set;                                  /* a sweep stored it; until then: vals */
    int32_t *outputs; int64_t n_outputs;
    int64_t *guards; int64_t n_guards, cap_guards; /* comparisons: (variable, operand position,
                                                      op index) */
    int64_t *shp;    int64_t n_shp, cap_shp;       /* shape table: nd, dims, strides per shape */
    int64_t *shp_at; int64_t n_shapes, cap_shapes; /* where shape id i starts in shp */
    int32_t *shash;  int64_t shash_cap;            /* shape ids by content (open addressing) */
    int32_t *ixw;    int64_t n_ixw, cap_ixw;       /* index table: the words of every entry */
    int64_t *ix_at;  int64_t n_index, cap_index;   /* where index id i starts in ixw */
    int closed;
    int claimed;                                   /* tp_claim ran: no second claim */
    int started;                                   /* the owner is set (`with tape:`) */
    int sweeping;                                  /* sweeps under way: recording must wait */
    pthread_t owner;
    int64_t swept[5];          /* op-visits: primal, tangent, adjoint, second order, taylor */
    uint64_t uid;              /* unique per tape (and per clear()), given at its first sweep:
                                  work.c's key of the constants kept in a thread's buffer */
    void *native;              /* tapead/native.py's kernel for this closed tape, or NULL */
    int64_t finite_at;         /* 2 n + 1 when the first n constants are all finite, 2 n when
                                  not (matmul.c: it skips checking them in every sweep) */
};

int tp_pool_code(tp_tape *t, double c, int32_t *code);   /* constant c's code, no checks */
int tp_pool_append(tp_tape *t, const double *x, int64_t n);   /* as they are, no checks */

/* One block holds the constants and then the values at recording, laid out as a sweep buffer:
 * constant c (code -1 - c) at vals[-1 - c], so a block of constants is in code order and a
 * sweep over the recorded values needs no copy (tp_backward). cap_consts doubles fit below
 * vals, cap_vals from it. tp_grow_store makes room for that many constants and variables (the
 * values past n_vars are not kept when the constants' room grows). */
int tp_grow_store(tp_tape *t, int64_t consts, int64_t vars);
void tp_free_store(tp_tape *t);
static inline double tp_cval(const tp_tape *t, int64_t c) { return t->vals[-1 - c]; }
static inline const double *tp_clow(const tp_tape *t)      /* codes -n_consts .. -1 */
{
    return t->vals - t->n_consts;
}

static inline int64_t tp_nvars(const tp_tape *t) { return t->n_vars; }
/* Constants n0 .. n_consts-1 were appended, all finite or not (ok): finite_at (matmul.c) kept
 * current, so that no sweep scans the constants again (only the recording thread appends). */
static inline void tp_consts_appended(tp_tape *t, int64_t n0, int ok)
{
    const int64_t f = __atomic_load_n(&t->finite_at, __ATOMIC_RELAXED);
    const int before = n0 == 0 ? 1 : f == 2 * n0 + 1 ? 1 : f == 2 * n0 ? 0 : -1;
    if (before >= 0)
        __atomic_store_n(&t->finite_at, 2 * t->n_consts + (before & ok), __ATOMIC_RELAXED);
}

/* the point x=None replays at: the last one swept, or the recorded inputs before any sweep
 * (recording does not copy them twice) */
static inline const double *tp_last(const tp_tape *t)
{
    return __atomic_load_n(&t->last_set, __ATOMIC_ACQUIRE) ? t->last_x : t->vals;
}
/* a thread may touch the tape: it is closed (immutable) or this thread records it */
static inline int tp_may_read(const tp_tape *t)
{
    return __atomic_load_n(&t->closed, __ATOMIC_ACQUIRE) ||
           (t->started && pthread_equal(t->owner, pthread_self()));
}

/* A sweep holds pointers into the tape's arrays while it may call a primitive's Python rule:
 * recording on that (open) tape meanwhile must not move them. */
static inline void tp_sweep_begin(tp_tape *t) { __atomic_add_fetch(&t->sweeping, 1, __ATOMIC_ACQ_REL); }
static inline void tp_sweep_end(tp_tape *t) { __atomic_sub_fetch(&t->sweeping, 1, __ATOMIC_ACQ_REL); }

/* tape.c's recording primitives, for blocktape.c */
#define TP_MAXDIM 32
int tp_may_record(const tp_tape *t);
int tp_grow(void **p, int64_t *cap, int64_t need, size_t sz, int64_t limit);
/* large blocks kept from freed tapes (recycle.c): one of at least n bytes (*got: its size; NULL:
 * none kept, malloc instead), and a block of n bytes given back (kept, or freed) */
void *tp_recycled(size_t n, size_t *got);
void tp_recycle(void *p, size_t n);
#define TP_RECYCLE_MIN ((size_t)128 << 10)    /* smaller blocks: malloc's bins serve them well */
int32_t tp_append(tp_tape *t, int op, const int32_t *a, int64_t n);
/* blocktape.c: an element of a block comparison, for tp_comparison */
int tp_block_comparison(const tp_tape *t, int64_t var, int *op, int32_t *operands);
/* shape id s: its nd, then dims[nd] and strides[nd] */
static inline const int64_t *tp_shape_of(const tp_tape *t, int32_t s) { return t->shp + t->shp_at[s]; }
/* index id i: its words and their number *n (gather.c) */
static inline const int32_t *tp_index_of(const tp_tape *t, int32_t i, int64_t *n)
{
    *n = (i + 1 < t->n_index ? t->ix_at[i + 1] : t->n_ixw) - t->ix_at[i];
    return t->ixw + t->ix_at[i];
}

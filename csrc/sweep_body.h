/* Tangent and adjoint sweeps for K directions, generated from ops.def and rules.h.
 * sweep.c includes this twice: K = 1 (a constant, so the loops over directions vanish) with
 * threaded dispatch, and K = k with a switch. TIMES: a zero tangent or adjoint stays zero whatever
 * the local partial, and a zero partial gives zero whatever the tangent or adjoint (no 0 * Inf =
 * NaN from a path that does not reach the result), so that forward and reverse mode take the
 * same paths as zero: each is a chain of such products, read from either end.
 * iz is the variable counter, p the operand words: forward, an op's rule runs at its first
 * result iz and words p, then both move past it; backward, both move back over the op first.
 * Expects: K, SUFFIX, and DISPATCH_THREADED (1: computed goto, 0: switch). Each returns TP_OK or
 * the status of a primitive's rule that failed. */
#define TAN(i, j) T[(int64_t)(i) * K + (j)]
#define ADJ(i, j) A[(int64_t)(i) * K + (j)]
#define VAL(i) V[q[i]]
#undef TIMES                                 /* (block.h's: the vector loops') */
#define TIMES(d, p) tp_times1((d), (p))

#define LOAD_1 const double z = V[iz]; const int32_t ix = p[0]; const double x = V[ix]; double px; \
    (void)x; (void)z
#define LOAD_2 LOAD_1; const int32_t iy = p[1]; const double y = V[iy]; double py; (void)y
#define LOAD_3 LOAD_2; const int32_t iw = p[2]; const double w = V[iw]; double pw; (void)w

#define TANGENT_PARTIAL_1(NAME) { LOAD_1; NAME##_PARTIAL; \
    for (int64_t j = 0; j < K; j++) { TAN(iz, j) = TIMES(TAN(ix, j), px); } }
#define TANGENT_PARTIAL_2(NAME) { LOAD_2; NAME##_PARTIAL; \
    for (int64_t j = 0; j < K; j++) { TAN(iz, j) = TIMES(TAN(ix, j), px) + TIMES(TAN(iy, j), py); } }
#define TANGENT_PARTIAL_3(NAME) { LOAD_3; NAME##_PARTIAL; \
    for (int64_t j = 0; j < K; j++) { \
        TAN(iz, j) = TIMES(TAN(ix, j), px) + TIMES(TAN(iy, j), py) + TIMES(TAN(iw, j), pw); } }
#define TANGENT_PARTIAL_VARIADIC(NAME) { const int32_t n = p[0]; const int32_t *q = p + 1; \
    const double z = V[iz]; (void)z; \
    for (int64_t j = 0; j < K; j++) { TAN(iz, j) = 0.0; } \
    for (int32_t i = 0; i < n; i++) { double pi; NAME##_PARTIAL; \
        for (int64_t j = 0; j < K; j++) { TAN(iz, j) += TIMES(TAN(q[i], j), pi); } } }
#define TANGENT_CUSTOM_3(NAME) { LOAD_3; (void)px; (void)py; (void)pw; NAME##_TANGENT; }
#define TANGENT_GUARD_3(NAME) { for (int64_t j = 0; j < K; j++) { TAN(iz, j) = 0.0; } }
#define TANGENT_PRIMITIVE_VARIADIC(NAME) { \
    int rc_ = tp_call_tangent(V, T, K, p + 1, p[0], iz, w); if (rc_ < 0) return rc_; }

#define TANGENT_BLOCK_VARIADIC(NAME) { \
    int rc_ = tp_block_tangent(t, V, T, K, TP_OP_##NAME, p + 1, iz); if (rc_ < 0) return rc_; }

#define ADJOINT_PARTIAL_1(NAME) { LOAD_1; NAME##_PARTIAL; \
    for (int64_t j = 0; j < K; j++) { ADJ(ix, j) += TIMES(ADJ(iz, j), px); } }
#define ADJOINT_PARTIAL_2(NAME) { LOAD_2; NAME##_PARTIAL; \
    for (int64_t j = 0; j < K; j++) { const double a_ = ADJ(iz, j); \
        ADJ(ix, j) += TIMES(a_, px); ADJ(iy, j) += TIMES(a_, py); } }
#define ADJOINT_PARTIAL_3(NAME) { LOAD_3; NAME##_PARTIAL; \
    for (int64_t j = 0; j < K; j++) { const double a_ = ADJ(iz, j); \
        ADJ(ix, j) += TIMES(a_, px); ADJ(iy, j) += TIMES(a_, py); ADJ(iw, j) += TIMES(a_, pw); } }
#define ADJOINT_PARTIAL_VARIADIC(NAME) { const int32_t n = p[0]; \
    const int32_t *q = p + 1; const double z = V[iz]; (void)z; \
    for (int32_t i = 0; i < n; i++) { double pi; NAME##_PARTIAL; \
        for (int64_t j = 0; j < K; j++) { ADJ(q[i], j) += TIMES(ADJ(iz, j), pi); } } }
#define ADJOINT_CUSTOM_3(NAME) { LOAD_3; (void)px; (void)py; (void)pw; NAME##_ADJOINT; }
#define ADJOINT_GUARD_3(NAME) { }
#define ADJOINT_PRIMITIVE_VARIADIC(NAME) { \
    int rc_ = tp_call_adjoint(V, A, K, p + 1, p[0], iz, w); if (rc_ < 0) return rc_; }
#define ADJOINT_BLOCK_VARIADIC(NAME) { \
    int rc_ = tp_block_adjoint(t, V, A, K, TP_OP_##NAME, p + 1, iz); if (rc_ < 0) return rc_; }

/* T: tangents of every slot (constants zero, inputs seeded); fills the operations' tangents. */
static int CAT(tangent, SUFFIX)(const tp_tape *t, const double *V, double *T, int64_t k,
                                work_t *w)
{
    (void)k;
    const uint8_t *op = t->ops, *const end = t->ops + t->n_ops;
    const int32_t *p = t->args;
    int32_t iz = (int32_t)t->n_inputs;
#if DISPATCH_THREADED
    static const void *const label[] = {
#define OP(NAME, ARITY, RESULTS, RULE, FORMULA) &&tangent_##NAME,
#include "ops.def"
#undef OP
    };
#define NEXT { if (++op == end) return TP_OK; goto *label[*op]; }
    if (op == end) return TP_OK;
    goto *label[*op];
#define OP(NAME, ARITY, RESULTS, RULE, FORMULA) tangent_##NAME: TANGENT_##RULE##_##ARITY(NAME); \
    iz += TP_RESULTS(RESULTS, p); p += TP_WORDS_##ARITY(p); NEXT
#include "ops.def"
#undef OP
#undef NEXT
#else
    for (; op < end; op++) {
        switch (*op) {
#define OP(NAME, ARITY, RESULTS, RULE, FORMULA) case TP_OP_##NAME: \
    TANGENT_##RULE##_##ARITY(NAME); iz += TP_RESULTS(RESULTS, p); p += TP_WORDS_##ARITY(p); break;
#include "ops.def"
#undef OP
        }
    }
    return TP_OK;
#endif
}

/* A: adjoints of every slot (zero but the seeds); sweeps operations e.ops-1 .. 0, whose operand
 * words end at e.args and results at e.vars (tp_extent: the whole tape, or a prefix). */
static int CAT(adjoint, SUFFIX)(const tp_tape *t, const double *V, double *A, int64_t k,
                                tp_extent e, work_t *w)
{
    (void)k;
    const uint8_t *const begin = t->ops;
    const uint8_t *op = t->ops + e.ops;
    const int32_t *p = t->args + e.args;
    int32_t iz = (int32_t)e.vars;
#if DISPATCH_THREADED
    static const void *const label[] = {
#define OP(NAME, ARITY, RESULTS, RULE, FORMULA) &&adjoint_##NAME,
#include "ops.def"
#undef OP
    };
#define NEXT { if (op == begin) return TP_OK; goto *label[*--op]; }
    NEXT
#define OP(NAME, ARITY, RESULTS, RULE, FORMULA) adjoint_##NAME: p -= TP_WORDS_BACK_##ARITY(p); \
    iz -= TP_RESULTS(RESULTS, p); ADJOINT_##RULE##_##ARITY(NAME); NEXT
#include "ops.def"
#undef OP
#undef NEXT
#else
    while (op > begin) {
        switch (*--op) {
#define OP(NAME, ARITY, RESULTS, RULE, FORMULA) case TP_OP_##NAME: \
    p -= TP_WORDS_BACK_##ARITY(p); iz -= TP_RESULTS(RESULTS, p); ADJOINT_##RULE##_##ARITY(NAME); \
    break;
#include "ops.def"
#undef OP
        }
    }
    return TP_OK;
#endif
}

#undef TAN
#undef ADJ
#undef VAL
#undef TIMES
#undef LOAD_1
#undef LOAD_2
#undef LOAD_3
#undef TANGENT_PARTIAL_1
#undef TANGENT_PARTIAL_2
#undef TANGENT_PARTIAL_3
#undef TANGENT_PARTIAL_VARIADIC
#undef TANGENT_CUSTOM_3
#undef TANGENT_GUARD_3
#undef TANGENT_PRIMITIVE_VARIADIC
#undef ADJOINT_PARTIAL_1
#undef ADJOINT_PARTIAL_2
#undef ADJOINT_PARTIAL_3
#undef ADJOINT_PARTIAL_VARIADIC
#undef ADJOINT_CUSTOM_3
#undef ADJOINT_GUARD_3
#undef ADJOINT_PRIMITIVE_VARIADIC
#undef TANGENT_BLOCK_VARIADIC
#undef ADJOINT_BLOCK_VARIADIC

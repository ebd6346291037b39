/* The second-order reverse sweep (forward over reverse), generated from ops.def and rules.h.
 * Given values V, tangents T (K directions) and the adjoint seeds A (weights of the outputs) and
 * D = 0, it accumulates adjoints A and their tangents D = A_dot:
 *     x_bar     += z_bar * px
 *     x_bar_dot += z_bar_dot * px + z_bar * (pxx * x_dot + pxy * y_dot)
 * so that D at the inputs is H·v for each direction v (H the Hessian of w·y).
 * second.c includes this for K = 1, 4, 8 and k. Expects K and SUFFIX. Like the adjoint sweep it
 * walks back: p and the variable counter iz move back over an op, then its rule runs. */
#define TAN(i, j) T[(int64_t)(i) * K + (j)]
#define DOT_(i, j) D[(int64_t)(i) * K + (j)]
#define VAL(i) V[q[i]]
#undef TIMES                                 /* (block.h's: the vector loops') */
#define TIMES(d, p) tp_times1((d), (p))

#define LOAD_1 const double z = V[iz]; const int32_t ix = p[0]; const double x = V[ix]; \
    double px, pxx; (void)x; (void)z
#define LOAD_2 LOAD_1; const int32_t iy = p[1]; const double y = V[iy]; double py, pxy, pyy; \
    (void)y
#define LOAD_3 LOAD_2; const int32_t iw = p[2]; const double w = V[iw]; double pw, pxw, pyw, pww; \
    (void)w

#define SECOND_PARTIAL_1(NAME) { LOAD_1; NAME##_PARTIAL; NAME##_PARTIAL2; \
    const double a_ = A[iz]; A[ix] += TIMES(a_, px); \
    for (int64_t j = 0; j < K; j++) { \
        DOT_(ix, j) += TIMES(DOT_(iz, j), px) + TIMES(a_, TIMES(TAN(ix, j), pxx)); } }
#define SECOND_PARTIAL_2(NAME) { LOAD_2; NAME##_PARTIAL; NAME##_PARTIAL2; \
    const double a_ = A[iz]; A[ix] += TIMES(a_, px); A[iy] += TIMES(a_, py); \
    for (int64_t j = 0; j < K; j++) { \
        const double d_ = DOT_(iz, j), tx_ = TAN(ix, j), ty_ = TAN(iy, j); \
        DOT_(ix, j) += TIMES(d_, px) + TIMES(a_, TIMES(tx_, pxx) + TIMES(ty_, pxy)); \
        DOT_(iy, j) += TIMES(d_, py) + TIMES(a_, TIMES(tx_, pxy) + TIMES(ty_, pyy)); } }
#define SECOND_PARTIAL_VARIADIC(NAME) { const int32_t n = p[0]; \
    const int32_t *q = p + 1; const double z = V[iz]; (void)z; const double a_ = A[iz]; \
    for (int32_t i = 0; i < n; i++) { double pi; NAME##_PARTIAL; A[q[i]] += TIMES(a_, pi); \
        for (int64_t j = 0; j < K; j++) { double dpi; \
            NAME##_DPARTIAL; \
            DOT_(q[i], j) += TIMES(DOT_(iz, j), pi) + TIMES(a_, dpi); } } }
/* CUSTOM ops: their NAME_SECOND rule (rules.h) does the work */
#define SECOND_CUSTOM_3(NAME) { LOAD_3; (void)px; (void)py; (void)pw; (void)pxx; \
    (void)pxy; (void)pyy; (void)pxw; (void)pyw; (void)pww; NAME##_SECOND; }

#define SECOND_GUARD_3(NAME) { }
#define SECOND_PRIMITIVE_VARIADIC(NAME) return TP_ENORULE
#define SECOND_BLOCK_VARIADIC(NAME) { \
    int rc_ = tp_block_second(t, V, T, A, D, K, TP_OP_##NAME, p + 1, iz); if (rc_ < 0) return rc_; }

static int CAT(second, SUFFIX)(const tp_tape *t, const double *V, const double *T, double *A,
                               double *D, int64_t k)
{
    (void)k;
    const uint8_t *const begin = t->ops;
    const uint8_t *op = t->ops + t->n_ops;
    const int32_t *p = t->args + t->n_args;
    int32_t iz = (int32_t)tp_nvars(t);
#define TVAL(i) TAN(q[i], j)
    while (op > begin) {
        switch (*--op) {
#define OP(NAME, ARITY, RESULTS, RULE, FORMULA) case TP_OP_##NAME: \
    p -= TP_WORDS_BACK_##ARITY(p); iz -= TP_RESULTS(RESULTS, p); SECOND_##RULE##_##ARITY(NAME); \
    break;
#include "ops.def"
#undef OP
        }
    }
#undef TVAL
    return TP_OK;
}

#undef TAN
#undef DOT_
#undef VAL
#undef TIMES
#undef LOAD_1
#undef LOAD_2
#undef LOAD_3
#undef SECOND_PARTIAL_1
#undef SECOND_PARTIAL_2
#undef SECOND_PARTIAL_VARIADIC
#undef SECOND_CUSTOM_3
#undef SECOND_GUARD_3
#undef SECOND_PRIMITIVE_VARIADIC
#undef SECOND_BLOCK_VARIADIC

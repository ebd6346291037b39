/* Tangent and adjoint sweeps for K directions, generated from ops.def and rules.h.
 * sweep.c includes this twice: K = 1 (a constant, so the loops over directions vanish) and
 * K = k. A zero tangent or adjoint stays zero whatever the local partial (no 0 * Inf = NaN from
 * a path that does not reach the result). */
#define TAN(i, j) T[(int64_t)(i) * K + (j)]
#define ADJ(i, j) A[(int64_t)(i) * K + (j)]
#define VAL(i) V[q[i]]
#define TIMES(d, p) ((d) == 0.0 ? 0.0 : (d) * (p))

#define LOAD_1 const int32_t ix = p[0]; const double x = V[ix]; double px; (void)x
#define LOAD_2 LOAD_1; const int32_t iy = p[1]; const double y = V[iy]; double py; (void)y
#define LOAD_3 LOAD_2; const int32_t iw = p[2]; const double w = V[iw]; double pw; (void)w

#define TANGENT_PARTIAL_1(NAME) { LOAD_1; NAME##_PARTIAL; \
    for (int64_t j = 0; j < K; j++) { TAN(iz, j) = TIMES(TAN(ix, j), px); } p += 1; }
#define TANGENT_PARTIAL_2(NAME) { LOAD_2; NAME##_PARTIAL; \
    for (int64_t j = 0; j < K; j++) { TAN(iz, j) = TIMES(TAN(ix, j), px) + TIMES(TAN(iy, j), py); } \
    p += 2; }
#define TANGENT_PARTIAL_3(NAME) { LOAD_3; NAME##_PARTIAL; \
    for (int64_t j = 0; j < K; j++) { \
        TAN(iz, j) = TIMES(TAN(ix, j), px) + TIMES(TAN(iy, j), py) + TIMES(TAN(iw, j), pw); } \
    p += 3; }
#define TANGENT_PARTIAL_VARIADIC(NAME) { const int32_t n = p[0]; const int32_t *q = p + 1; \
    for (int64_t j = 0; j < K; j++) { TAN(iz, j) = 0.0; } \
    for (int32_t i = 0; i < n; i++) { double pi; NAME##_PARTIAL; \
        for (int64_t j = 0; j < K; j++) { TAN(iz, j) += TIMES(TAN(q[i], j), pi); } } \
    p += n + 2; }
#define TANGENT_CUSTOM_3(NAME) { LOAD_3; (void)px; (void)py; (void)pw; NAME##_TANGENT; p += 3; }

#define ADJOINT_PARTIAL_1(NAME) { p -= 1; LOAD_1; NAME##_PARTIAL; \
    for (int64_t j = 0; j < K; j++) ADJ(ix, j) += TIMES(ADJ(iz, j), px); }
#define ADJOINT_PARTIAL_2(NAME) { p -= 2; LOAD_2; NAME##_PARTIAL; \
    for (int64_t j = 0; j < K; j++) { const double a_ = ADJ(iz, j); \
        ADJ(ix, j) += TIMES(a_, px); ADJ(iy, j) += TIMES(a_, py); } }
#define ADJOINT_PARTIAL_3(NAME) { p -= 3; LOAD_3; NAME##_PARTIAL; \
    for (int64_t j = 0; j < K; j++) { const double a_ = ADJ(iz, j); \
        ADJ(ix, j) += TIMES(a_, px); ADJ(iy, j) += TIMES(a_, py); ADJ(iw, j) += TIMES(a_, pw); } }
#define ADJOINT_PARTIAL_VARIADIC(NAME) { const int32_t n = p[-1]; p -= n + 2; \
    const int32_t *q = p + 1; \
    for (int32_t i = 0; i < n; i++) { double pi; NAME##_PARTIAL; \
        for (int64_t j = 0; j < K; j++) ADJ(q[i], j) += TIMES(ADJ(iz, j), pi); } }
#define ADJOINT_CUSTOM_3(NAME) { p -= 3; LOAD_3; (void)px; (void)py; (void)pw; NAME##_ADJOINT; }

/* T: tangents of every slot (constants zero, inputs seeded); fills the operations' tangents. */
static void TANGENT_FN(const tp_tape *t, const double *V, double *T, int64_t k)
{
    (void)k;
    const int32_t *p = t->args;
    int32_t iz = (int32_t)t->n_inputs;
    for (int64_t o = 0; o < t->n_ops; o++, iz++) {
        const double z = V[iz]; (void)z;
        switch (t->ops[o]) {
#define OP(NAME, ARITY, RULE, FORMULA) case TP_OP_##NAME: TANGENT_##RULE##_##ARITY(NAME); break;
#include "ops.def"
#undef OP
        }
    }
}

/* A: adjoints of every slot (zero but the seeds); sweeps operations nops-1 .. 0 whose
 * operands end at args_end. */
static void ADJOINT_FN(const tp_tape *t, const double *V, double *A, int64_t k, int64_t nops,
                       const int32_t *args_end)
{
    (void)k;
    const int32_t *p = args_end;
    int32_t iz = (int32_t)(t->n_inputs + nops - 1);
    for (int64_t o = nops - 1; o >= 0; o--, iz--) {
        const double z = V[iz]; (void)z;
        switch (t->ops[o]) {
#define OP(NAME, ARITY, RULE, FORMULA) case TP_OP_##NAME: ADJOINT_##RULE##_##ARITY(NAME); break;
#include "ops.def"
#undef OP
        }
    }
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
#undef ADJOINT_PARTIAL_1
#undef ADJOINT_PARTIAL_2
#undef ADJOINT_PARTIAL_3
#undef ADJOINT_PARTIAL_VARIADIC
#undef ADJOINT_CUSTOM_3

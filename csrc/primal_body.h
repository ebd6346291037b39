/* The primal sweep, generated from ops.def and rules.h: V[z] for every operation. sweep.c includes
 * this twice: PRIMAL_FN = primal (ZERO_ADJOINTS 0) and primal_clearing (1), which also sets
 * A[z] = 0 on the way, saving a gradient's adjoint sweep a pass over memory to clear them.
 * Z is the variable counter: each op writes its results from Z on, then Z moves past them
 * (TP_RESULTS: 1, or the count a CALL stores) and p past its operand words.
 * Expects THREADED (computed goto) and PRIMAL_FN, ZERO_ADJOINTS. */
static int PRIMAL_FN(const tp_tape *t, double *V, work_t *w, double *A)
{
    const uint8_t *op = t->ops, *const end = t->ops + t->n_ops;
    const int32_t *p = t->args;
    double *Z = V + t->n_inputs;
#if ZERO_ADJOINTS
    double *Za = A + t->n_inputs;
#define CLEAR(r) { for (int32_t c_ = 0; c_ < (r); c_++) Za[c_] = 0.0; Za += (r); }
#else
    (void)A;
#define CLEAR(r)
#endif
#define LOAD_1 const double x = V[p[0]]; (void)x
#define LOAD_2 LOAD_1; const double y = V[p[1]]; (void)y
#define LOAD_3 LOAD_2; const double w = V[p[2]]; (void)w
#define PRIMAL_1(NAME) { LOAD_1; double z; NAME##_PRIMAL; *Z = z; }
#define PRIMAL_2(NAME) { LOAD_2; double z; NAME##_PRIMAL; *Z = z; }
#define PRIMAL_3(NAME) { LOAD_3; double z; NAME##_PRIMAL; *Z = z; }
#define PRIMAL_VARIADIC(NAME) { const int32_t n = p[0]; const int32_t *q = p + 1; double z; \
                                NAME##_PRIMAL; *Z = z; }
/* past the op's r results and its operand words */
#define ADVANCE(r, words) { const int32_t r_ = (r); CLEAR(r_) Z += r_; p += (words); }
#define VAL(i) V[q[i]]
#define CHECK_GUARD(z, w) if ((z) == 1.0 - (w)) return tp_flipped(Z - V, x, y)  /* w NaN: never */
#define PRIMITIVE_CALL { int rc_ = tp_call_primal(V, Z, q, n, w); if (rc_ < 0) return rc_; \
                         z = *Z; }
#if THREADED
    static const void *const label[] = {
#define OP(NAME, ARITY, RESULTS, RULE, FORMULA) &&primal_##NAME,
#include "ops.def"
#undef OP
    };
#define NEXT { if (++op == end) return TP_OK; goto *label[*op]; }
    if (op == end) return TP_OK;
    goto *label[*op];
#define OP(NAME, ARITY, RESULTS, RULE, FORMULA) primal_##NAME: PRIMAL_##ARITY(NAME); \
    ADVANCE(TP_RESULTS(RESULTS, p), TP_WORDS_##ARITY(p)); NEXT
#include "ops.def"
#undef OP
#undef NEXT
#else
    for (; op < end; op++) {
        switch (*op) {
#define OP(NAME, ARITY, RESULTS, RULE, FORMULA) case TP_OP_##NAME: PRIMAL_##ARITY(NAME); \
    ADVANCE(TP_RESULTS(RESULTS, p), TP_WORDS_##ARITY(p)); break;
#include "ops.def"
#undef OP
        }
    }
    return TP_OK;
#endif
#undef VAL
#undef CHECK_GUARD
#undef PRIMITIVE_CALL
}
#undef CLEAR
#undef ADVANCE
#undef LOAD_1
#undef LOAD_2
#undef LOAD_3
#undef PRIMAL_1
#undef PRIMAL_2
#undef PRIMAL_3
#undef PRIMAL_VARIADIC

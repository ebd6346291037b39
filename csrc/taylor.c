/* Taylor: coefficients y_0 .. y_d of t -> f(x + t v), univariate Taylor propagation in one
 * forward sweep; each op's recurrence is its NAME_TAYLOR rule (series.h has the algebra). */
#include <string.h>
#include "sweeps.h"
#include "series.h"
#include "block.h"
#include "rules.h"

/* y (n x (d+1)): coefficient k of output o at o*(d+1) + k. */
int tp_taylor(tp_tape *t, const double *x, const double *v, int64_t order, double *y)
{
    if (!tp_may_read(t)) return TP_ETHREAD;
    if (order < 0 || order > 1000) return TP_EARG;
    const int d = (int)order;
    const int64_t D1 = d + 1, ns = t->n_consts + tp_nvars(t);
    work_t w;
    int rc = work_begin(&w, t);
    if (rc < 0) return rc;
    double *base = work_buf(&w, W_DIRS, ns * D1), *aux = work_buf(&w, W_DIRS2, 5 * D1);
    if (!base || !aux) { work_end(&w); return TP_ENOMEM; }
    rc = TP_OK;
    double *Sr = base + t->n_consts * D1, *S0 = aux, *S1 = aux + D1, *S2 = aux + 2 * D1;
    double *S3 = aux + 3 * D1, *S4 = aux + 4 * D1;
    memset(base, 0, (size_t)((t->n_consts + t->n_inputs) * D1) * sizeof(double));  /* the ops */
    for (int64_t c = 0; c < t->n_consts; c++) Sr[(-1 - c) * D1] = tp_cval(t, c);     /* write all */
    for (int64_t i = 0; i < t->n_inputs; i++) {
        Sr[i * D1] = x[i];
        if (d > 0) Sr[i * D1 + 1] = v[i];
    }
    const int32_t *p = t->args;
    int32_t iz = (int32_t)t->n_inputs;
#define SERIES(i) (Sr + (int64_t)(i) * D1)
/* a function of constant series is constant: no recurrence (none divides 0 by 0 at a point of
 * infinite derivative, as the zero tangent rule of the first-order sweeps) */
#define CONSTANT_RESULT { for (int k = 1; k <= d; k++) Z[k] = 0.0; }
#define TAYLOR_1(NAME, RULE) { const int32_t ix = p[0]; const double *X = SERIES(ix); \
    const double x = X[0]; double z; (void)ix; NAME##_PRIMAL; Z[0] = z; \
    if (ser_constant(X, d)) CONSTANT_RESULT else { RULE_OF(RULE, NAME, TAYLOR); } p += 1; }
#define TAYLOR_2(NAME, RULE) { const int32_t ix = p[0], iy = p[1]; \
    const double *X = SERIES(ix), *Y = SERIES(iy); const double x = X[0], y = Y[0]; double z; \
    (void)ix; (void)iy; (void)x; (void)y; NAME##_PRIMAL; Z[0] = z; \
    if (ser_constant(X, d) && ser_constant(Y, d)) CONSTANT_RESULT else { RULE_OF(RULE, NAME, TAYLOR); } p += 2; }
#define TAYLOR_3(NAME, RULE) { const double *X = SERIES(p[0]), *Y = SERIES(p[1]), *W = SERIES(p[2]); \
    const double x = X[0], y = Y[0], w = W[0]; double z; (void)x; (void)y; (void)w; (void)W; \
    NAME##_PRIMAL; \
    Z[0] = z; RULE_OF(RULE, NAME, TAYLOR); p += 3; }
#define TAYLOR_VARIADIC(NAME, RULE) { const int32_t n = p[0]; const int32_t *q = p + 1; double z; \
    (void)q; NAME##_PRIMAL; Z[0] = z; RULE_OF(RULE, NAME, TAYLOR); p += n + 2; }
#define VAL(i) SERIES(q[i])[0]
#define SER(i) SERIES(q[i])
#define CHECK_GUARD(z, w) if ((z) == 1.0 - (w)) { rc = tp_flipped(iz, x, y); goto done; }
#define PRIMITIVE_CALL { rc = TP_ENORULE; goto done; }
#define BLOCK_PRIMAL(op) z = 0.0                       /* BLOCK_TAYLOR writes every coefficient */
#define BLOCK_TAYLOR(op) if ((rc = tp_block_taylor(t, Sr, D1, d, op, q, iz, aux)) < 0) goto done
    for (int64_t o = 0; o < t->n_ops; o++) {      /* iz: the op's first result; its rule moves p */
        double *Z = SERIES(iz);
        const int32_t *const at = p;
        switch (t->ops[o]) {
#define OP(NAME, ARITY, RESULTS, RULE, FORMULA) case TP_OP_##NAME: TAYLOR_##ARITY(NAME, RULE); \
    iz += TP_RESULTS(RESULTS, at); break;
#include "ops.def"
#undef OP
        }
    }
    for (int64_t o = 0; o < t->n_outputs; o++)
        memcpy(y + o * D1, SERIES(t->outputs[o]), (size_t)D1 * sizeof(double));
    tp_commit_x(t, x);
    tp_count(t, 0, t->n_ops);
    tp_count(t, 4, t->n_ops);
done:
    work_end(&w);
    return rc;
}

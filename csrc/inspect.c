/* Whole-tape inspection for traces and graphs: every variable's value, tangent and adjoint at a
 * point, and each operand's local partial from the op's PARTIAL rule. */
#include <string.h>
#include "sweeps.h"
#include "block.h"
#include "rules.h"

/* vals, tans, adjs: tp_n_vars doubles each (any may be NULL); v: one direction (m entries), w:
 * n_outputs weights. partials: one per word of the operand stream (a variadic op's counts get 0,
 * a CALL's words NaN), the local partial dz/d(operand) at x. */
int tp_inspect(tp_tape *t, const double *x, const double *v, const double *w, double *vals,
               double *tans, double *adjs, double *partials)
{
    if (!tp_may_read(t)) return TP_ETHREAD;
    int64_t nv = tp_nvars(t);
    work_t wk;
    double *V, *base;
    int rc = work_begin(&wk, t);
    if (rc < 0) return rc;
    if ((rc = tp_primal_at(t, x, &wk, &V, NULL)) < 0) goto done;
    if (vals) memcpy(vals, V, (size_t)nv * sizeof(double));
    if (!(base = work_buf(&wk, W_DIRS, t->n_consts + nv))) { rc = TP_ENOMEM; goto done; }
    double *S = base + t->n_consts;
    if (tans && v) {
        memset(base, 0, (size_t)t->n_consts * sizeof(double));
        memcpy(S, v, (size_t)t->n_inputs * sizeof(double));
        if ((rc = tp_tangent_sweep(t, V, S, 1, &wk)) < 0) goto done;
        tp_count(t, 1, t->n_ops);
        memcpy(tans, S, (size_t)nv * sizeof(double));
    }
    if (adjs && w) {
        tp_clear_adjoints(base, t->n_consts, t->n_consts + nv);
        for (int64_t o = 0; o < t->n_outputs; o++) S[t->outputs[o]] += w[o];
        if ((rc = tp_adjoint_sweep(t, V, S, 1, tp_whole(t), &wk)) < 0) goto done;
        tp_count(t, 2, t->n_ops);
        memcpy(adjs, S, (size_t)nv * sizeof(double));
    }
    if (partials) {
        const int32_t *p = t->args;
        double *out = partials;
        int32_t iz = (int32_t)t->n_inputs;
        for (int64_t o = 0; o < t->n_ops; o++) {   /* iz: the op's first result */
            const double z = V[iz]; (void)z;
            const int32_t *const at = p;
            switch (t->ops[o]) {
#define VAL(i) V[q[i]]
#define INSPECT_1(NAME, RULE) { const int32_t ix = p[0]; const double x = V[ix]; double px; (void)ix; \
    (void)x; RULE_OF(RULE, NAME, PARTIAL); *out++ = px; p += 1; }
#define INSPECT_2(NAME, RULE) { const int32_t ix = p[0], iy = p[1]; const double x = V[ix], y = V[iy]; \
    double px, py; (void)ix; (void)iy; (void)x; (void)y; RULE_OF(RULE, NAME, PARTIAL); *out++ = px; \
    *out++ = py; p += 2; }
#define INSPECT_3(NAME, RULE) { const int32_t ix = p[0], iy = p[1], iw = p[2]; \
    const double x = V[ix], y = V[iy], w = V[iw]; double px, py, pw; (void)ix; (void)iy; \
    (void)iw; (void)x; (void)y; (void)w; RULE_OF(RULE, NAME, PARTIAL); *out++ = px; *out++ = py; \
    *out++ = pw; p += 3; }
#define INSPECT_VARIADIC(NAME, RULE) { const int32_t n = p[0]; const int32_t *q = p + 1; (void)q; \
    *out++ = 0.0; for (int32_t i = 0; i < n; i++) { double pi; RULE_OF(RULE, NAME, PARTIAL); *out++ = pi; } \
    *out++ = 0.0; p += n + 2; }
#define OP(NAME, ARITY, RESULTS, RULE, FORMULA) case TP_OP_##NAME: INSPECT_##ARITY(NAME, RULE); \
    iz += TP_RESULTS(RESULTS, at); break;
#include "ops.def"
#undef OP
#undef VAL
            }
        }
    }
    tp_commit_x(t, V);
done:
    work_end(&wk);
    return rc;
}

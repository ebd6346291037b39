/* Second order: Hessian-vector products by forward over reverse (the tangent of the adjoint
 * sweep), k directions carried at once; tape.hessian carries m of them. */
#include <string.h>
#include "sweeps.h"
#include "block.h"
#include "rules.h"

#define K 1
#define SUFFIX _k1
#include "sweep2_body.h"
#undef K
#undef SUFFIX
#define K 4
#define SUFFIX _k4
#include "sweep2_body.h"
#undef K
#undef SUFFIX
#define K 8
#define SUFFIX _k8
#include "sweep2_body.h"
#undef K
#undef SUFFIX
#define K k
#define SUFFIX _kn
#include "sweep2_body.h"
#undef K
#undef SUFFIX

static int second(const tp_tape *t, const double *V, const double *T, double *A, double *D,
                  int64_t k)
{
    switch (k) {
    case 1: return second_k1(t, V, T, A, D, 1);
    case 4: return second_k4(t, V, T, A, D, 4);
    case 8: return second_k8(t, V, T, A, D, 8);
    default: return second_kn(t, V, T, A, D, k);
    }
}

/* hv (m x k) = H·xdot for the k directions of xdot (m x k), H the Hessian of w·y at x (w: one
 * weight per output); g (m, optional) = the gradient of w·y. */
int tp_hvp(tp_tape *t, const double *x, const double *w, int64_t k, const double *xdot,
           double *y, double *g, double *hv)
{
    if (!tp_may_read(t)) return TP_ETHREAD;
    if (k < 1) return TP_EARG;
    work_t wk;
    double *V;
    int rc = work_begin(&wk, t);
    if (rc < 0) return rc;
    if ((rc = tp_primal_at(t, x, &wk, &V, NULL)) < 0) goto done;
    tp_read_outputs(t, V, y);
    int64_t ns = t->n_consts + tp_nvars(t), m = t->n_inputs, kb = tp_block(t, k, 2);
    double *tbase = work_buf(&wk, W_DIRS, ns * tp_padded(kb));
    double *dbase = work_buf(&wk, W_DIRS2, ns * tp_padded(kb));
    double *abase = work_buf(&wk, W_ADJ, ns);
    if (!tbase || !dbase || !abase) { rc = TP_ENOMEM; goto done; }
    for (int64_t j0 = 0; j0 < k; j0 += kb) {
        int64_t nb = k - j0 < kb ? k - j0 : kb, ks = tp_padded(nb);
        double *T = tbase + t->n_consts * ks, *D = dbase + t->n_consts * ks;
        double *A = abase + t->n_consts;
        memset(tbase, 0, (size_t)(t->n_consts * ks) * sizeof(double));
        tp_seed(T, ks, xdot, m, k, j0, nb);
        if ((rc = tp_tangent_sweep(t, V, T, ks, &wk)) < 0) break;
        tp_clear_adjoints(abase, t->n_consts, ns);
        tp_clear_adjoints(dbase, t->n_consts * ks, ns * ks);
        for (int64_t o = 0; o < t->n_outputs; o++) A[t->outputs[o]] += w[o];
        if ((rc = second(t, V, T, A, D, ks)) < 0) break;
        for (int64_t i = 0; i < m; i++)
            memcpy(hv + i * k + j0, D + i * ks, (size_t)nb * sizeof(double));
        if (g && j0 == 0) memcpy(g, A, (size_t)m * sizeof(double));
        tp_count(t, 1, t->n_ops * nb);
        tp_count(t, 3, t->n_ops * nb);
    }
    if (rc >= 0) tp_commit_x(t, V);
done:
    work_end(&wk);
    return rc;
}

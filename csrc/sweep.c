/* Replay: primal, tangent (K directions) and adjoint (K weight vectors) sweeps over the tape.
 * Scratch is allocated per call, so threads may sweep one closed tape at once. A sweep buffer
 * holds the constants below index 0 (slot -1-c is constant c) and the variables from 0 up. */
#include <stdlib.h>
#include <string.h>
#include "tape_impl.h"
#include "rules.h"

#define SCRATCH_BUDGET ((int64_t)256 << 20)   /* bytes of tangents/adjoints per block */

#define K 1
#define TANGENT_FN tangent_k1
#define ADJOINT_FN adjoint_k1
#include "sweep_body.h"
#undef K
#undef TANGENT_FN
#undef ADJOINT_FN
#define K k
#define TANGENT_FN tangent_kn
#define ADJOINT_FN adjoint_kn
#include "sweep_body.h"
#undef K
#undef TANGENT_FN
#undef ADJOINT_FN

static void count(tp_tape *t, int which, int64_t visits)
{
    __atomic_fetch_add(&t->swept[which], visits, __ATOMIC_RELAXED);
}

/* A buffer of (n_consts + n_vars) * k doubles; returns the pointer to slot 0. */
static double *slots(const tp_tape *t, int64_t k, double **base)
{
    int64_t n = (t->n_consts + tp_nvars(t)) * k;
    *base = malloc((size_t)(n ? n : 1) * sizeof(double));
    return *base ? *base + t->n_consts * k : NULL;
}

static void primal(const tp_tape *t, double *V)
{
    const int32_t *p = t->args;
    int32_t iz = (int32_t)t->n_inputs;
    for (int64_t o = 0; o < t->n_ops; o++, iz++) {
        double z;
        switch (t->ops[o]) {
#define LOAD_1 const double x = V[p[0]]; (void)x
#define LOAD_2 LOAD_1; const double y = V[p[1]]; (void)y
#define LOAD_3 LOAD_2; const double w = V[p[2]]; (void)w
#define PRIMAL_1(NAME) { LOAD_1; NAME##_PRIMAL; p += 1; }
#define PRIMAL_2(NAME) { LOAD_2; NAME##_PRIMAL; p += 2; }
#define PRIMAL_3(NAME) { LOAD_3; NAME##_PRIMAL; p += 3; }
#define PRIMAL_VARIADIC(NAME) { const int32_t n = p[0]; const int32_t *q = p + 1; \
                                NAME##_PRIMAL; p += n + 2; }
#define VAL(i) V[q[i]]
#define OP(NAME, ARITY, RULE, FORMULA) case TP_OP_##NAME: PRIMAL_##ARITY(NAME); break;
#include "ops.def"
#undef OP
        default: z = NAN;
        }
        V[iz] = z;
    }
}

/* Values of every slot at input x; *base is the allocation to free. */
static double *primal_at(tp_tape *t, const double *x, double **base)
{
    double *V = slots(t, 1, base);
    if (!V) return NULL;
    for (int64_t c = 0; c < t->n_consts; c++) V[-1 - c] = t->consts[c];
    memcpy(V, x, (size_t)t->n_inputs * sizeof *x);
    primal(t, V);
    count(t, 0, t->n_ops);
    return V;
}

static void read_outputs(const tp_tape *t, const double *V, double *y)
{
    if (y) for (int64_t i = 0; i < t->n_outputs; i++) y[i] = V[t->outputs[i]];
}

int tp_forward(tp_tape *t, const double *x, double *y)
{
    if (!tp_may_read(t)) return TP_ETHREAD;
    double *base, *V = primal_at(t, x, &base);
    if (!V) return TP_ENOMEM;
    read_outputs(t, V, y);
    free(base);
    return TP_OK;
}

/* Directions are carried kb at a time, kb as large as the scratch budget allows. */
static int64_t block(const tp_tape *t, int64_t k)
{
    int64_t per = (t->n_consts + tp_nvars(t)) * (int64_t)sizeof(double);
    int64_t kb = per ? SCRATCH_BUDGET / per : k;
    return kb < 1 ? 1 : (kb < k ? kb : k);
}

int tp_jvp(tp_tape *t, const double *x, int64_t k, const double *xdot, double *y, double *ydot)
{
    if (!tp_may_read(t)) return TP_ETHREAD;
    if (k < 1) return TP_EARG;
    double *vbase, *tbase, *V = primal_at(t, x, &vbase);
    if (!V) return TP_ENOMEM;
    read_outputs(t, V, y);
    int64_t kb = block(t, k), m = t->n_inputs;
    double *T = slots(t, kb, &tbase);
    if (!T) { free(vbase); return TP_ENOMEM; }
    for (int64_t j0 = 0; j0 < k; j0 += kb) {
        int64_t nb = k - j0 < kb ? k - j0 : kb;
        memset(tbase, 0, (size_t)(t->n_consts * nb) * sizeof(double));
        T = tbase + t->n_consts * nb;
        for (int64_t i = 0; i < m; i++)
            memcpy(T + i * nb, xdot + i * k + j0, (size_t)nb * sizeof(double));
        if (nb == 1) tangent_k1(t, V, T, 1); else tangent_kn(t, V, T, nb);
        for (int64_t o = 0; o < t->n_outputs; o++)
            memcpy(ydot + o * k + j0, T + (int64_t)t->outputs[o] * nb, (size_t)nb * sizeof(double));
        count(t, 1, t->n_ops * nb);
    }
    free(tbase); free(vbase);
    return TP_OK;
}

static void adjoint(tp_tape *t, const double *V, double *A, int64_t k, int64_t nops)
{
    const int32_t *end = t->args + t->n_args;
    if (nops < t->n_ops) {           /* a prefix: find where its operands end */
        const int32_t *p = t->args;
        for (int64_t o = 0; o < nops; o++) {
            int a = tp_op_arity[t->ops[o]];
            p += a == VARIADIC ? p[0] + 2 : a;
        }
        end = p;
    }
    if (k == 1) adjoint_k1(t, V, A, 1, nops, end); else adjoint_kn(t, V, A, k, nops, end);
    count(t, 2, nops * k);
}

int tp_vjp(tp_tape *t, const double *x, int64_t k, const double *ybar, double *y, double *xbar)
{
    if (!tp_may_read(t)) return TP_ETHREAD;
    if (k < 1) return TP_EARG;
    double *vbase, *abase, *V = primal_at(t, x, &vbase);
    if (!V) return TP_ENOMEM;
    read_outputs(t, V, y);
    int64_t kb = block(t, k), m = t->n_inputs;
    double *A = slots(t, kb, &abase);
    if (!A) { free(vbase); return TP_ENOMEM; }
    for (int64_t j0 = 0; j0 < k; j0 += kb) {
        int64_t nb = k - j0 < kb ? k - j0 : kb;
        int64_t n = (t->n_consts + tp_nvars(t)) * nb;
        memset(abase, 0, (size_t)n * sizeof(double));
        A = abase + t->n_consts * nb;
        for (int64_t o = 0; o < t->n_outputs; o++)
            for (int64_t j = 0; j < nb; j++)
                A[(int64_t)t->outputs[o] * nb + j] += ybar[o * k + j0 + j];
        adjoint(t, V, A, nb, t->n_ops);
        for (int64_t i = 0; i < m; i++)
            memcpy(xbar + i * k + j0, A + i * nb, (size_t)nb * sizeof(double));
    }
    free(abase); free(vbase);
    return TP_OK;
}

int tp_backward(tp_tape *t, int64_t root, double seed, double *adj)
{
    if (!tp_may_read(t)) return TP_ETHREAD;
    if (root < 0 || root >= tp_nvars(t)) return TP_EARG;
    int64_t nvars = root + 1, nops = nvars - t->n_inputs;
    if (nops < 0) nops = 0;
    double *vbase = malloc((size_t)(t->n_consts + nvars) * sizeof(double));
    double *abase = calloc((size_t)(t->n_consts + nvars), sizeof(double));
    if (!vbase || !abase) { free(vbase); free(abase); return TP_ENOMEM; }
    double *V = vbase + t->n_consts, *A = abase + t->n_consts;
    for (int64_t c = 0; c < t->n_consts; c++) V[-1 - c] = t->consts[c];
    memcpy(V, t->vals, (size_t)nvars * sizeof(double));
    A[root] = seed;
    adjoint(t, V, A, 1, nops);
    memcpy(adj, A, (size_t)nvars * sizeof(double));
    free(vbase); free(abase);
    return TP_OK;
}

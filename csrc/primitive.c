/* User-defined primitives (tapead/primitive.py): the CALL op, whose rules are Python callables
 * reached through tp_py_call, a cffi extern "Python+C" callback.
 *
 * CALL's operand words q[0 .. nq-1]: q[0] its number n of outputs (a plain count), q[1] a
 * constant holding the primitive's id, q[2 ..] its k inputs. Its outputs are the n variables
 * iz .. iz+n-1, its results: the CALL computes all their values, tangents or adjoints itself.
 */
#include <string.h>
#include "sweeps.h"
#include "callback.h"

enum { EVAL, JVP, VJP };

typedef struct { int prim; int64_t k, n; double *x, *in, *out; } call_t;

/* The call's id, sizes and input values; buffers for K directions. */
static int prepare(call_t *c, const double *V, const int32_t *q, int32_t nq, int64_t K,
                   work_t *w)
{
    c->n = q[0];
    c->prim = (int)V[q[1]];
    c->k = nq - 2;
    int64_t big = (c->k > c->n ? c->k : c->n) * K;
    double *b = work_buf(w, W_PRIM, c->k + 2 * big);
    if (!b) return TP_ENOMEM;
    c->x = b; c->in = b + c->k; c->out = b + c->k + big;
    for (int64_t i = 0; i < c->k; i++) c->x[i] = V[q[2 + i]];
    return TP_OK;
}

int tp_call_primal(const double *V, double *Z, const int32_t *q, int32_t nq, work_t *w)
{
    call_t c;
    int rc = prepare(&c, V, q, nq, 1, w);
    if (rc < 0) return rc;
    if (tp_py_call(c.prim, EVAL, c.k, c.x, c.n, 1, NULL, c.out)) return TP_ECALLBACK;
    memcpy(Z, c.out, (size_t)c.n * sizeof(double));
    return TP_OK;
}

/* The call's derivative rule over K directions: JVP from its inputs' tangents to its results',
 * or VJP from its results' adjoints (none reaching it: the rule is not asked) added to its
 * inputs'. D holds the tangents or adjoints of every slot. */
static int derivative(int mode, const double *V, double *D, int64_t K, const int32_t *q,
                      int32_t nq, int32_t iz, work_t *w)
{
    call_t c;
    int rc = prepare(&c, V, q, nq, K, w);
    if (rc < 0) return rc;
    size_t row = (size_t)K * sizeof(double);
    double *Z = D + (int64_t)iz * K;
    if (mode == JVP) {
        for (int64_t i = 0; i < c.k; i++) memcpy(c.in + i * K, D + (int64_t)q[2 + i] * K, row);
    } else {
        memcpy(c.in, Z, (size_t)c.n * row);
        int zero = 1;
        for (int64_t i = 0; i < c.n * K; i++) zero &= c.in[i] == 0.0;
        if (zero) return TP_OK;
    }
    if (tp_py_call(c.prim, mode, c.k, c.x, c.n, K, c.in, c.out)) return TP_ECALLBACK;
    if (mode == JVP) {
        memcpy(Z, c.out, (size_t)c.n * row);
    } else {
        for (int64_t i = 0; i < c.k; i++)
            for (int64_t j = 0; j < K; j++) D[(int64_t)q[2 + i] * K + j] += c.out[i * K + j];
    }
    return TP_OK;
}

int tp_call_tangent(const double *V, double *T, int64_t K, const int32_t *q, int32_t nq,
                    int32_t iz, work_t *w)
{
    return derivative(JVP, V, T, K, q, nq, iz, w);
}

int tp_call_adjoint(const double *V, double *A, int64_t K, const int32_t *q, int32_t nq,
                    int32_t iz, work_t *w)
{
    return derivative(VJP, V, A, K, q, nq, iz, w);
}

/* AMAX, AMIN and PROD: z[zmap(i)] = max, min or product of the x[i] over x's index space, in
 * every sweep (rules.h banners; REDUCE's words: a is the shape id of zmap). */
#include <stdlib.h>
#include <string.h>
#include "block.h"
#include "series.h"
#include "rules.h"

typedef struct { blk x, zm; int64_t r; } folding;

static void fold_of(const tp_tape *t, const int32_t *q, folding *f)
{
    int32_t w[2] = {0, q[2]};
    tp_blk(t, q + 3, &f->x);
    tp_blk(t, w, &f->zm);
    f->r = q[0];
}

#define FWALK(F, ...) WALK((F).x.nd, (F).x.dims, (F).x.st, (F).zm.st, __VA_ARGS__)

/* max or min of X (element o at X[o * xs]) into Z[o * zs]: the first NaN, else the extreme */
static int extreme(const folding *F, int op, const double *X, int64_t xs, double *Z, int64_t zs)
{
    unsigned char *seen = calloc((size_t)F->r + 1, 1);
    if (!seen) return TP_ENOMEM;
    for (int64_t i = 0; i < F->r; i++) Z[i * zs] = NAN;
    FWALK(*F, { const double x = X[o0 * xs], b = Z[o1 * zs];
          if (!seen[o1] || (b == b && (x != x || FOLD_BETTER(op, x, b)))) {
              Z[o1 * zs] = x; seen[o1] = 1; } });
    free(seen);
    return TP_OK;
}

/* the number of elements tied with z, per result (1 / that: each one's share) */
static double *shares(const folding *F, const double *X, int64_t xs, const double *Z, int64_t zs)
{
    double *c = calloc((size_t)F->r + 1, sizeof *c);
    if (!c) return NULL;
    FWALK(*F, { if (FOLD_TIE(X[o0 * xs], Z[o1 * zs])) c[o1] += 1.0; });
    for (int64_t i = 0; i < F->r; i++) c[i] = c[i] > 0.0 ? 1.0 / c[i] : 0.0;
    return c;
}

/* AMAX, AMIN: each tied element's K directions times its share, from x to z (forward: tangents)
 * or from z to x (adjoints) */
static int to_ties(const folding *F, const double *X, const double *Z, int64_t K, const double *S,
                   double *D, int forward)
{
    double *c = shares(F, X, 1, Z, 1);
    if (!c) return TP_ENOMEM;
    FWALK(*F, { if (FOLD_TIE(X[o0], Z[o1])) {
          const int64_t from = forward ? o0 : o1, to = forward ? o1 : o0;
          for (int64_t j = 0; j < K; j++) D[to * K + j] += S[from * K + j] * c[o1]; } });
    free(c);
    return TP_OK;
}

int tp_fold_values(const tp_tape *t, int op, const int32_t *q, const double *X, double *Z)
{
    folding F;
    fold_of(t, q, &F);
    if (op != TP_OP_PROD) return extreme(&F, op, X, 1, Z, 1);
    for (int64_t i = 0; i < F.r; i++) Z[i] = 1.0;
    FWALK(F, { Z[o1] *= X[o0]; });
    return TP_OK;
}

/* PROD's per-element partials prod_(j != i) x_j, as prefix times suffix products (no division),
 * each element's offsets o0, o1 kept for the walk back. p: n partials, o: 2n offsets. As the
 * scalar program's reverse sweep ((x_0 x_1) x_2 ...: the adjoint walks the suffix back with
 * TIMES, then meets the prefix's value), the suffix and the final product are TIMES products:
 * a zero x_j (j > i) makes the partial 0 even against an Inf, as in forward mode. */
static int prod_partials(const folding *F, const double *X, double *p, int64_t *o)
{
    double *run = malloc(((size_t)F->r + 1) * sizeof *run);
    if (!run) return TP_ENOMEM;
    for (int64_t i = 0; i < F->r; i++) run[i] = 1.0;
    FWALK(*F, { p[e] = run[o1]; run[o1] *= X[o0]; o[2 * e] = o0; o[2 * e + 1] = o1; });
    for (int64_t i = 0; i < F->r; i++) run[i] = 1.0;
    for (int64_t e = F->x.size - 1; e >= 0; e--) {
        p[e] = TIMES(run[o[2 * e + 1]], p[e]);
        run[o[2 * e + 1]] = TIMES(run[o[2 * e + 1]], X[o[2 * e]]);
    }
    free(run);
    return TP_OK;
}

int tp_fold_tangent(const tp_tape *t, const double *V, double *T, int64_t K, int op,
                    const int32_t *q, int32_t iz)
{
    folding F;
    fold_of(t, q, &F);
    const double *X = V + F.x.first, *TX = T + (int64_t)F.x.first * K;
    double *TZ = T + (int64_t)iz * K;
    memset(TZ, 0, (size_t)(F.r * K) * sizeof *TZ);
    if (op != TP_OP_PROD) return to_ties(&F, X, V + iz, K, TX, TZ, 1);
    double *run = malloc(((size_t)F.r + 1) * sizeof *run);     /* the running product */
    if (!run) return TP_ENOMEM;
    for (int64_t i = 0; i < F.r; i++) run[i] = 1.0;
    FWALK(F, { const double x = X[o0];                        /* (P x)' = P' x + P x' */
          for (int64_t j = 0; j < K; j++)
              TZ[o1 * K + j] = TIMES(TZ[o1 * K + j], x) + TIMES(TX[o0 * K + j], run[o1]);
          run[o1] *= x; });
    free(run);
    return TP_OK;
}

int tp_fold_adjoint(const tp_tape *t, const double *V, double *A, int64_t K, int op,
                    const int32_t *q, int32_t iz)
{
    folding F;
    fold_of(t, q, &F);
    const double *X = V + F.x.first, *AZ = A + (int64_t)iz * K;
    double *AX = A + (int64_t)F.x.first * K;
    if (op != TP_OP_PROD) return to_ties(&F, X, V + iz, K, AZ, AX, 0);
    double *p = malloc(((size_t)F.x.size + 1) * sizeof *p);
    int64_t *o = malloc(((size_t)F.x.size + 1) * 2 * sizeof *o);
    int rc = p && o ? prod_partials(&F, X, p, o) : TP_ENOMEM;
    if (rc == TP_OK)
        for (int64_t e = 0; e < F.x.size; e++)
            for (int64_t j = 0; j < K; j++)
                AX[o[2 * e] * K + j] += TIMES(AZ[o[2 * e + 1] * K + j], p[e]);
    free(p); free(o);
    return rc;
}

/* forward over reverse: adjoints A (one per variable), their tangents D, tangents T */
int tp_fold_second(const tp_tape *t, const double *V, const double *T, double *A, double *D,
                   int64_t K, int op, const int32_t *q, int32_t iz)
{
    folding F;
    fold_of(t, q, &F);
    const double *X = V + F.x.first, *TX = T + (int64_t)F.x.first * K;
    const double *AZ = A + iz, *DZ = D + (int64_t)iz * K;
    double *AX = A + F.x.first, *DX = D + (int64_t)F.x.first * K;
    if (op != TP_OP_PROD) {                /* piecewise linear: the adjoint's rule twice */
        int rc = to_ties(&F, X, V + iz, 1, AZ, AX, 0);
        return rc < 0 ? rc : to_ties(&F, X, V + iz, K, DZ, DX, 0);
    }
    /* p_i = pre_i suf_i and its tangent dp_i = pre_i' suf_i + pre_i suf_i' (no division) */
    const int64_t n = F.x.size, r = F.r;
    double *p = malloc(((size_t)n + 1) * sizeof *p), *tp = malloc(((size_t)(n * K) + 1) * sizeof *tp);
    double *run = malloc(((size_t)r + 1) * sizeof *run), *trun = malloc(((size_t)(r * K) + 1) * sizeof *trun);
    int64_t *o = malloc(((size_t)n + 1) * 2 * sizeof *o);
    int rc = TP_ENOMEM;
    if (!p || !tp || !run || !trun || !o) goto done;
    for (int64_t i = 0; i < r; i++) run[i] = 1.0;
    memset(trun, 0, (size_t)(r * K) * sizeof *trun);
    FWALK(F, { const double x = X[o0];
          p[e] = run[o1]; o[2 * e] = o0; o[2 * e + 1] = o1;
          for (int64_t j = 0; j < K; j++) {
              double *tr_ = trun + o1 * K + j;
              tp[e * K + j] = *tr_;
              *tr_ = TIMES(*tr_, x) + TIMES(TX[o0 * K + j], run[o1]); }
          run[o1] *= x; });
    for (int64_t i = 0; i < r; i++) run[i] = 1.0;
    memset(trun, 0, (size_t)(r * K) * sizeof *trun);
    for (int64_t e = n - 1; e >= 0; e--) {
        const int64_t i0 = o[2 * e], i1 = o[2 * e + 1];
        const double x = X[i0], pre = p[e], suf = run[i1], pe = TIMES(suf, pre), az = AZ[i1];
        AX[i0] += TIMES(az, pe);
        for (int64_t j = 0; j < K; j++) {
            double *tr_ = trun + i1 * K + j;
            const double dp = TIMES(tp[e * K + j], suf) + TIMES(*tr_, pre);
            DX[i0 * K + j] += TIMES(DZ[i1 * K + j], pe) + TIMES(az, dp);
            *tr_ = TIMES(*tr_, x) + TIMES(TX[i0 * K + j], suf);
        }
        run[i1] = TIMES(run[i1], x);
    }
    rc = TP_OK;
done:
    free(p); free(tp); free(run); free(trun); free(o);
    return rc;
}

/* Taylor: series of D1 coefficients per variable; aux: scratch of at least D1 */
int tp_fold_taylor(const tp_tape *t, double *S, int64_t D1, int d, int op, const int32_t *q,
                   int32_t iz, double *aux)
{
    folding F;
    fold_of(t, q, &F);
    const double *SX = S + (int64_t)F.x.first * D1;
    double *SZ = S + (int64_t)iz * D1;
    for (int64_t i = 0; i < F.r; i++)
        for (int k = 0; k <= d; k++) SZ[i * D1 + k] = op == TP_OP_PROD && k == 0 ? 1.0 : 0.0;
    if (op == TP_OP_PROD) {
        FWALK(F, { double *Z = SZ + o1 * D1; const double *X = SX + o0 * D1;
              aux[0] = Z[0] * X[0]; ser_mul(aux, Z, X, d);
              memcpy(Z, aux, (size_t)(d + 1) * sizeof *Z); });
        return TP_OK;
    }
    int rc = extreme(&F, op, SX, D1, SZ, D1);
    double *c = rc < 0 ? NULL : shares(&F, SX, D1, SZ, D1);
    if (!c) return TP_ENOMEM;
    FWALK(F, { const double *X = SX + o0 * D1; double *Z = SZ + o1 * D1;
          if (FOLD_TIE(X[0], Z[0])) for (int k = 1; k <= d; k++) Z[k] += X[k] * c[o1]; });
    free(c);
    return TP_OK;
}

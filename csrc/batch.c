/* Batched replays (batch.h): many points in one call. Points are cut into tiles sized to the
 * cache; each sweep visits every op once per tile and runs it over the tile's points in one loop
 * (batch_body.h), so dispatch is paid once per op per tile and the arithmetic vectorises (AVX-512
 * and AVX2 clones where the CPU has them: no FMA contraction, the same bits as the scalar code).
 *
 * Per point, every result is computed exactly as the one-point sweeps compute it (same rules,
 * same order, the same blocks of directions for a tape with primitives), so batched results equal
 * a loop of one-point calls to the last bit. A point whose branch guard flips is marked in flips
 * and left out; a primitive's Python rules are called once per point (points marked are skipped).
 * Threads: each call is single-threaded; tapead/batch.py spreads tiles of many points over
 * threads (the GIL is released during the call).
 */
#include <math.h>
#include <string.h>
#include "sweeps.h"
#include "rules.h"
#include "batch.h"
#include "callback.h"

#define TILE_MAX 256                      /* points per tile at most (the partials' arrays) */
#define TILE_BYTES ((int64_t)1 << 20)     /* a tile's buffers: to stay in L2 */
#define TILE_HUGE ((int64_t)256 << 20)    /* ... at most, for tapes too long for 8 points in L2 */

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
#define CLONES __attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#else
#define CLONES
#endif

/* z_dot = x_dot * p, but +0 for a zero x_dot whatever p (sweep_body.h's TIMES, the same bits):
 * the product, then its bits masked by the comparison, so that no branch stops the loop from
 * vectorising (a ?: of doubles does, under -ftrapping-math) */
static inline double times(double d, double p)
{
    const double r = d * p;
    uint64_t u;
    memcpy(&u, &r, sizeof u);
    u &= -(uint64_t)(d != 0.0);
    double z;
    memcpy(&z, &u, sizeof z);
    return z;
}
#define TIMES(d, p) times((d), (p))
#define BV(i) (V + (int64_t)(i) * S)
#define LOOP for (int64_t b = 0; b < np; b++)

/* WHERE's second-order rule (sweep2's WHERE_SECOND, on the batch layout) */
#define WHERE_BSECOND { const int32_t is_ = (x != 0.0) ? iy : iw; \
    AV[is_ * S + b] += AV[iz * S + b]; \
    for (int64_t j = 0; j < K; j++) DOT_(is_, j) += DOT_(iz, j); }

/* ---- primitives: the user's rules once per point (primitive.c's, on the batch layout) ------- */
enum { EVAL, JVP, VJP };

/* mode EVAL: the values of the call's outputs into X (V itself); JVP: their tangents in X; VJP:
 * adds to X (the adjoints) the inputs'. q: the call's words (q[0] its outputs, q[1] its id, then
 * its inputs). */
static int bcall(int mode, const double *V, double *X, int64_t S, int64_t np, int64_t K,
                 const uint8_t *M, const int32_t *q, int32_t nq, int32_t iz, work_t *wk)
{
    const int64_t n = q[0], k = nq - 2, big = (k > n ? k : n) * K;
    const int prim = (int)V[(int64_t)q[1] * S];
    double *x = work_buf(wk, W_PRIM, k + 2 * big);
    if (!x) return TP_ENOMEM;
    double *in = x + k, *out = x + k + big;
    for (int64_t b = 0; b < np; b++) {
        if (M[b]) {                                        /* flipped: left out */
            if (mode == EVAL) for (int64_t o = 0; o < n; o++) X[(iz + o) * S + b] = NAN;
            if (mode == JVP)
                for (int64_t o = 0; o < n * K; o++) X[((int64_t)iz * K + o) * S + b] = 0.0;
            continue;
        }
        for (int64_t i = 0; i < k; i++) x[i] = V[(int64_t)q[2 + i] * S + b];
        if (mode == EVAL) {
            if (tp_py_call(prim, EVAL, k, x, n, 1, NULL, out)) return TP_ECALLBACK;
            for (int64_t o = 0; o < n; o++) X[(iz + o) * S + b] = out[o];
        } else if (mode == JVP) {
            for (int64_t i = 0; i < k; i++)
                for (int64_t j = 0; j < K; j++) in[i * K + j] = X[((int64_t)q[2 + i] * K + j) * S + b];
            if (tp_py_call(prim, JVP, k, x, n, K, in, out)) return TP_ECALLBACK;
            for (int64_t o = 0; o < n * K; o++) X[((int64_t)iz * K + o) * S + b] = out[o];
        } else {
            int zero = 1;
            for (int64_t o = 0; o < n * K; o++) {
                in[o] = X[((int64_t)iz * K + o) * S + b];
                zero &= in[o] == 0.0;
            }
            if (zero) continue;                /* no adjoint reaches it: the rule is not asked */
            if (tp_py_call(prim, VJP, k, x, n, K, in, out)) return TP_ECALLBACK;
            for (int64_t i = 0; i < k; i++)
                for (int64_t j = 0; j < K; j++) X[((int64_t)q[2 + i] * K + j) * S + b] += out[i * K + j];
        }
    }
    return TP_OK;
}

/* ---- the primal sweep over a tile: V's inputs and constants set, M zero ----------------------- */
#define CHECK_GUARD(z, w) M[b] |= (z) == 1.0 - (w)        /* w NaN (ad.where): never */
#define PRIMITIVE_CALL { (void)n; z = V[iz * S + b]; }
#define VAL(i) V[(int64_t)q[i] * S + b]
#define BPRIMAL_1(NAME) { const double *restrict X_ = BV(p[0]); double *restrict Z_ = BV(iz); \
    LOOP { const double x = X_[b]; double z; NAME##_PRIMAL; Z_[b] = z; } }
#define BPRIMAL_2(NAME) { const double *restrict X_ = BV(p[0]), *restrict Y_ = BV(p[1]); \
    double *restrict Z_ = BV(iz); \
    LOOP { const double x = X_[b], y = Y_[b]; double z; NAME##_PRIMAL; Z_[b] = z; } }
#define BPRIMAL_3(NAME) { const double *X_ = BV(p[0]), *Y_ = BV(p[1]), *W_ = BV(p[2]); \
    double *restrict Z_ = BV(iz); \
    LOOP { const double x = X_[b], y = Y_[b], w = W_[b]; double z; (void)y; (void)w; NAME##_PRIMAL; \
           Z_[b] = z; } }
#define BLOCK_PRIMAL(op) return TP_EARG                  /* tp_first_block refused them */
#define BPRIMAL_VARIADIC(NAME) { const int32_t n = p[0]; const int32_t *q = p + 1; \
    if (TP_OP_##NAME == TP_OP_CALL) { int rc_ = bcall(EVAL, V, V, S, np, 1, M, q, n, iz, wk); \
                                      if (rc_ < 0) return rc_; } \
    double *Z_ = BV(iz); LOOP { double z; NAME##_PRIMAL; Z_[b] = z; } }

CLONES static int bprimal(const tp_tape *t, double *V, int64_t S, int64_t np, uint8_t *M,
                          work_t *wk)
{
    const int32_t *p = t->args;
    int32_t iz = (int32_t)t->n_inputs;
    for (int64_t o = 0; o < t->n_ops; o++) {
        switch (t->ops[o]) {
#define OP(NAME, ARITY, RESULTS, RULE, FORMULA) case TP_OP_##NAME: BPRIMAL_##ARITY(NAME); \
    iz += TP_RESULTS(RESULTS, p); p += TP_WORDS_##ARITY(p); break;
#include "ops.def"
#undef OP
        }
    }
    return TP_OK;
}
#undef CHECK_GUARD
#undef PRIMITIVE_CALL
#undef BLOCK_PRIMAL
#undef VAL

#define K 1
#define FUSED 1
#define SUFFIX _k1
#include "batch_body.h"
#undef K
#undef FUSED
#undef SUFFIX
#define K k
#define FUSED 0
#define SUFFIX _kn
#include "batch_body.h"
#undef K
#undef FUSED
#undef SUFFIX

static int btangent(const tp_tape *t, const double *V, double *T, int64_t k, int64_t S,
                    int64_t np, const uint8_t *M, work_t *wk)
{
    return k == 1 ? btangent_k1(t, V, T, 1, S, np, M, wk) : btangent_kn(t, V, T, k, S, np, M, wk);
}

static int badjoint(const tp_tape *t, const double *V, double *A, int64_t k, int64_t S,
                    int64_t np, const uint8_t *M, work_t *wk)
{
    return k == 1 ? badjoint_k1(t, V, A, 1, S, np, M, wk) : badjoint_kn(t, V, A, k, S, np, M, wk);
}

static int bsecond(const tp_tape *t, const double *V, const double *T, double *AV, double *D,
                   int64_t k, int64_t S, int64_t np)
{
    return k == 1 ? bsecond_k1(t, V, T, AV, D, 1, S, np) : bsecond_kn(t, V, T, AV, D, k, S, np);
}

/* ---- planning: directions per block and points per tile ------------------------------------ */
static int has_call(const tp_tape *t)
{
    for (int64_t o = 0; o < t->n_ops; o++) if (t->ops[o] == TP_OP_CALL) return 1;
    return 0;
}

typedef struct {
    int64_t kb;       /* directions per block (as the one-point sweep's on a tape with calls) */
    int calls;        /* the tape has primitives: blocks padded as one-point sweeps pad them */
    int64_t S;        /* points per tile */
    int64_t ns;       /* slots: constants and variables */
} plan_t;

/* k directions carried in `buffers` sets besides the values */
static plan_t plan(const tp_tape *t, int64_t k, int buffers)
{
    plan_t pl;
    pl.ns = t->n_consts + tp_nvars(t);
    pl.calls = has_call(t);
    int64_t per = TILE_BYTES / (pl.ns * (int64_t)sizeof(double) + 1);   /* slots x points */
    if (pl.calls) pl.kb = tp_block(t, k, buffers);
    else {
        int64_t kb = (per / 16 - 1) / (buffers ? buffers : 1);          /* >= 16 points */
        pl.kb = k < 1 ? 1 : kb < 1 ? 1 : kb < k ? kb : k;
    }
    int64_t ks = pl.calls ? tp_padded(pl.kb) : pl.kb;
    int64_t S = per / (1 + buffers * ks);
    /* at least 8 points (one vector loop), unless a point's buffers alone are huge: then as
     * many as fit TILE_HUGE (a tape of 10^8 operations sweeps one point at a time) */
    int64_t point = pl.ns * (int64_t)sizeof(double) * (1 + buffers * ks), most = TILE_HUGE / point;
    S = S >= TILE_MAX ? TILE_MAX : S >= 8 ? S & ~(int64_t)7 : most >= 8 ? 8 : most < 1 ? 1 : most;
    pl.S = S;
    return pl;
}

int64_t tp_batch_tile(tp_tape *t, int64_t k, int buffers) { return plan(t, k, buffers).S; }

/* the tile's value buffer: constants broadcast over its S points (set once per call) */
static double *values(const tp_tape *t, work_t *wk, const plan_t *pl)
{
    double *base = work_buf(wk, W_VALUES, pl->ns * pl->S);
    if (!base) return NULL;
    for (int64_t c = 0; c < t->n_consts; c++)
        for (int64_t b = 0; b < pl->S; b++) base[(t->n_consts - 1 - c) * pl->S + b] = t->consts[c];
    return base + t->n_consts * pl->S;
}

/* the primal sweep at points b0 .. b0+np-1 of x: V filled, M their flips */
static int tile_primal(tp_tape *t, const double *x, int64_t b0, int64_t np, double *V,
                       int64_t S, uint8_t *M, work_t *wk)
{
    const int64_t m = t->n_inputs;
    for (int64_t i0 = 0; i0 < m; i0 += 8)             /* a transpose, in blocks of 8 rows */
        for (int64_t b = 0; b < np; b++)
            for (int64_t i = i0; i < i0 + 8 && i < m; i++) V[i * S + b] = x[(b0 + b) * m + i];
    memset(M, 0, (size_t)np);
    int rc = bprimal(t, V, S, np, M, wk);
    tp_count(t, 0, t->n_ops * np);
    return rc;
}

static void tile_outputs(const tp_tape *t, const double *V, int64_t S, int64_t b0, int64_t np,
                         double *y)
{
    const int64_t n = t->n_outputs;
    if (y)
        for (int64_t b = 0; b < np; b++)
            for (int64_t o = 0; o < n; o++) y[(b0 + b) * n + o] = V[(int64_t)t->outputs[o] * S + b];
}

/* out[b0+b][i][j0+j] (rows of k) = directions j < nb of slots i < rows at the tile's points */
static void untile(double *out, const double *X, int64_t S, int64_t ks, int64_t rows, int64_t k,
                   int64_t b0, int64_t np, int64_t j0, int64_t nb)
{
    for (int64_t i0 = 0; i0 < rows; i0 += 8)
        for (int64_t b = 0; b < np; b++)
            for (int64_t i = i0; i < i0 + 8 && i < rows; i++)
                for (int64_t j = 0; j < nb; j++)
                    out[((b0 + b) * rows + i) * k + j0 + j] = X[(i * ks + j) * S + b];
}

/* the last point of the call, unless it flipped: x=None replays there */
static void commit_last(tp_tape *t, int64_t B, const double *x, const uint8_t *flips)
{
    if (B > 0 && !flips[B - 1]) tp_commit_x(t, x + (B - 1) * t->n_inputs);
}

#define BEGIN(k_, buffers_) \
    if (!tp_may_read(t)) return TP_ETHREAD; \
    if (B < 0 || (k_) < 1 || tp_first_block(t) >= 0) return TP_EARG; \
    work_t wk; \
    int rc = work_begin(&wk, t); \
    if (rc < 0) return rc; \
    const plan_t pl = plan(t, (k_), (buffers_)); \
    const int64_t S = pl.S, m = t->n_inputs, n = t->n_outputs; \
    uint8_t M[TILE_MAX]; \
    double *V = values(t, &wk, &pl); \
    if (!V) { rc = TP_ENOMEM; goto done; } \
    (void)m; (void)n

#define END done: \
    if (rc >= 0) commit_last(t, B, x, flips); \
    work_end(&wk); \
    return rc

int tp_forward_batch(tp_tape *t, int64_t B, const double *x, double *y, uint8_t *flips)
{
    BEGIN(1, 0);
    for (int64_t b0 = 0; b0 < B; b0 += S) {
        const int64_t np = B - b0 < S ? B - b0 : S;
        if ((rc = tile_primal(t, x, b0, np, V, S, M, &wk)) < 0) break;
        tile_outputs(t, V, S, b0, np, y);
        memcpy(flips + b0, M, (size_t)np);
    }
    END;
}

/* rows 0..m-1 of T: directions j0 .. j0+nb-1 of xdot at the tile's points (ks of them carried) */
static void seed_tile(double *T, int64_t S, int64_t ks, const double *xdot, int64_t stride,
                      int64_t m, int64_t k, int64_t b0, int64_t np, int64_t j0, int64_t nb)
{
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < ks; j++)
            for (int64_t b = 0; b < np; b++)
                T[(i * ks + j) * S + b] = j >= nb ? 0.0 : xdot ?
                    xdot[(b0 + b) * stride + i * k + j0 + j] : (double)(i == j0 + j);
}

int tp_jvp_batch(tp_tape *t, int64_t B, const double *x, int64_t k, const double *xdot,
                 int64_t xdot_stride, double *y, double *ydot, uint8_t *flips)
{
    BEGIN(k, 1);
    const int64_t kb = pl.kb;
    double *tbase = work_buf(&wk, W_DIRS, pl.ns * (pl.calls ? tp_padded(kb) : kb) * S);
    if (!tbase) { rc = TP_ENOMEM; goto done; }
    for (int64_t b0 = 0; b0 < B && rc >= 0; b0 += S) {
        const int64_t np = B - b0 < S ? B - b0 : S;
        if ((rc = tile_primal(t, x, b0, np, V, S, M, &wk)) < 0) break;
        tile_outputs(t, V, S, b0, np, y);
        for (int64_t j0 = 0; j0 < k; j0 += kb) {
            const int64_t nb = k - j0 < kb ? k - j0 : kb, ks = pl.calls ? tp_padded(nb) : nb;
            memset(tbase, 0, (size_t)(t->n_consts * ks * S) * sizeof(double));
            double *T = tbase + t->n_consts * ks * S;
            seed_tile(T, S, ks, xdot, xdot_stride, m, k, b0, np, j0, nb);
            if ((rc = btangent(t, V, T, ks, S, np, M, &wk)) < 0) break;
            for (int64_t b = 0; b < np; b++)
                for (int64_t o = 0; o < n; o++)
                    for (int64_t j = 0; j < nb; j++)
                        ydot[((b0 + b) * n + o) * k + j0 + j] = T[((int64_t)t->outputs[o] * ks + j) * S + b];
            tp_count(t, 1, t->n_ops * nb * np);
        }
        memcpy(flips + b0, M, (size_t)np);
    }
    END;
}

int tp_vjp_batch(tp_tape *t, int64_t B, const double *x, int64_t k, const double *ybar,
                 int64_t ybar_stride, double *y, double *xbar, uint8_t *flips)
{
    BEGIN(k, 1);
    const int64_t kb = pl.kb;
    const int64_t kc = pl.calls ? tp_padded(kb) : kb;
    double *abase = work_buf(&wk, W_DIRS, pl.ns * kc * S);
    if (!abase) { rc = TP_ENOMEM; goto done; }
    memset(abase, 0, (size_t)(pl.ns * kc * S) * sizeof(double));  /* then zero after each sweep */
    for (int64_t b0 = 0; b0 < B && rc >= 0; b0 += S) {
        const int64_t np = B - b0 < S ? B - b0 : S;
        if ((rc = tile_primal(t, x, b0, np, V, S, M, &wk)) < 0) break;
        tile_outputs(t, V, S, b0, np, y);
        for (int64_t j0 = 0; j0 < k; j0 += kb) {
            const int64_t nb = k - j0 < kb ? k - j0 : kb, ks = pl.calls ? tp_padded(nb) : nb;
            double *A = abase + t->n_consts * ks * S;
            for (int64_t o = 0; o < n; o++)
                for (int64_t j = 0; j < nb; j++)
                    for (int64_t b = 0; b < np; b++)
                        A[((int64_t)t->outputs[o] * ks + j) * S + b] += ybar ?
                            ybar[(b0 + b) * ybar_stride + o * k + j0 + j] : (double)(o == j0 + j);
            if ((rc = badjoint(t, V, A, ks, S, np, M, &wk)) < 0) break;
            tp_count(t, 2, t->n_ops * nb * np);
            untile(xbar, A, S, ks, m, k, b0, np, j0, nb);
            memset(abase, 0, (size_t)((t->n_consts + m) * ks * S) * sizeof(double));
        }
        memcpy(flips + b0, M, (size_t)np);
    }
    END;
}

int tp_hvp_batch(tp_tape *t, int64_t B, const double *x, const double *w, int64_t w_stride,
                 int64_t k, const double *xdot, int64_t xdot_stride, double *hv, uint8_t *flips)
{
    BEGIN(k, 2);
    const int64_t kb = pl.kb, kc = pl.calls ? tp_padded(kb) : kb;
    double *tbase = work_buf(&wk, W_DIRS, pl.ns * kc * S);
    double *dbase = work_buf(&wk, W_DIRS2, pl.ns * kc * S);
    double *abase = work_buf(&wk, W_ADJ, pl.ns * S);
    if (!tbase || !dbase || !abase) { rc = TP_ENOMEM; goto done; }
    for (int64_t b0 = 0; b0 < B && rc >= 0; b0 += S) {
        const int64_t np = B - b0 < S ? B - b0 : S;
        if ((rc = tile_primal(t, x, b0, np, V, S, M, &wk)) < 0) break;
        for (int64_t j0 = 0; j0 < k; j0 += kb) {
            const int64_t nb = k - j0 < kb ? k - j0 : kb, ks = pl.calls ? tp_padded(nb) : nb;
            double *T = tbase + t->n_consts * ks * S, *D = dbase + t->n_consts * ks * S;
            double *AV = abase + t->n_consts * S;
            memset(tbase, 0, (size_t)(t->n_consts * ks * S) * sizeof(double));
            seed_tile(T, S, ks, xdot, xdot_stride, m, k, b0, np, j0, nb);
            if ((rc = btangent(t, V, T, ks, S, np, M, &wk)) < 0) break;
            memset(abase, 0, (size_t)(pl.ns * S) * sizeof(double));
            memset(dbase, 0, (size_t)(pl.ns * ks * S) * sizeof(double));
            for (int64_t o = 0; o < n; o++)
                for (int64_t b = 0; b < np; b++)
                    AV[(int64_t)t->outputs[o] * S + b] += w[(b0 + b) * w_stride + o];
            if ((rc = bsecond(t, V, T, AV, D, ks, S, np)) < 0) break;
            untile(hv, D, S, ks, m, k, b0, np, j0, nb);
            tp_count(t, 1, t->n_ops * nb * np);
            tp_count(t, 3, t->n_ops * nb * np);
        }
        memcpy(flips + b0, M, (size_t)np);
    }
    END;
}

/* Taylor: the one-point sweep at each point in turn (its scratch is per order, not per point) */
int tp_taylor_batch(tp_tape *t, int64_t B, const double *x, const double *v, int64_t order,
                    double *y, uint8_t *flips)
{
    const int64_t m = t->n_inputs, ny = t->n_outputs * (order + 1);
    for (int64_t b = 0; b < B; b++) {
        int rc = tp_taylor(t, x + b * m, v + b * m, order, y + b * ny);
        flips[b] = rc == TP_EBRANCH;
        if (rc < 0 && rc != TP_EBRANCH) return rc;
    }
    return TP_OK;
}

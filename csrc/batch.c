/* Batched replays (batch.h): many points in one call. Points are cut into tiles sized to the
 * cache; each sweep visits every op once per tile and runs it over the tile's points in one loop
 * (batch_body.h), so dispatch is paid once per op per tile and the arithmetic vectorises (AVX-512
 * and AVX2 clones where the CPU has them: no FMA contraction, the same bits as the scalar code).
 *
 * Per point, every result is computed exactly as the one-point sweeps compute it (same rules,
 * same order, the same blocks of directions for a tape with primitives), so batched results equal
 * a loop of one-point calls to the last bit. A point whose branch guard flips is marked in flips
 * and left out; a vectorized primitive's Python rules are called once per tile (per direction)
 * with its points, any other primitive's once per point (points marked are skipped).
 * Threads: each call is single-threaded; tapead/batch.py spreads tiles of many points over
 * threads (the GIL is released during the call).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "sweeps.h"
#include "block.h"
#include "rules.h"
#include "batch.h"
#include "callback.h"
#include "transpose.h"

#define TILE_MAX 256                      /* points per tile at most (the partials' arrays) */
#define TILE_BYTES ((int64_t)1 << 20)     /* a tile's buffers: to stay in L2 */
#define TILE_HUGE ((int64_t)256 << 20)    /* ... at most, for tapes too long for 8 points in L2 */

#define BV(i) (V + (int64_t)(i) * S)
#define LOOP for (int64_t b = 0; b < np; b++)

/* WHERE's second-order rule (sweep2's WHERE_SECOND, on the batch layout) */
#define WHERE_BSECOND { const int32_t is_ = (x != 0.0) ? iy : iw; \
    AV[is_ * S + b] += AV[iz * S + b]; \
    for (int64_t j = 0; j < K; j++) DOT_(is_, j) += DOT_(iz, j); }

/* ---- primitives: the user's rules per tile or per point (primitive.c's, batch layout) ------- */
enum { EVAL, JVP, VJP };

/* The call as bcall below, but one Python call per tile (per direction for JVP and VJP) with
 * the points that need it, for a vectorized primitive; 1: the primitive is not one. Per point it
 * does what bcall does: the same rule results go to the same places, in the same order. */
static int bcall_vec(int mode, const double *V, double *X, int64_t S, int64_t np, int64_t K,
                     const uint8_t *M, const int32_t *q, int32_t nq, int32_t iz, work_t *wk)
{
    const int64_t n = q[0], k = nq - 2, big = k > n ? k : n;
    const int prim = (int)V[(int64_t)q[1] * S];
    double *x = work_buf(wk, W_PRIM, np * (k + 2 * big) + np);
    if (!x) return TP_ENOMEM;
    double *in = x + np * k, *out = in + np * big, *pt = out + np * big;   /* pt: point numbers */
    (void)K;
    int64_t nl = 0;
    for (int64_t b = 0; b < np; b++) {
        if (M[b]) {
            if (mode == EVAL) for (int64_t o = 0; o < n; o++) X[(iz + o) * S + b] = NAN;
            if (mode == JVP)
                for (int64_t o = 0; o < n * K; o++) X[((int64_t)iz * K + o) * S + b] = 0.0;
            continue;
        }
        int zero = mode == VJP;                  /* no adjoint reaches it: the rule is not asked */
        for (int64_t o = 0; o < n * K && zero; o++) zero = X[((int64_t)iz * K + o) * S + b] == 0.0;
        if (zero) continue;
        for (int64_t i = 0; i < k; i++) x[nl * k + i] = V[(int64_t)q[2 + i] * S + b];
        pt[nl++] = (double)b;
    }
    if (!nl) return TP_OK;
    if (mode == EVAL) {
        int rc = tp_py_call_batch(prim, EVAL, nl, k, x, n, NULL, out);
        if (rc) return rc > 0 ? 1 : TP_ECALLBACK;
        for (int64_t l = 0; l < nl; l++)
            for (int64_t o = 0; o < n; o++) X[(iz + o) * S + (int64_t)pt[l]] = out[l * n + o];
        return TP_OK;
    }
    const int64_t rows = mode == JVP ? k : n, cols = mode == JVP ? n : k;
    for (int64_t j = 0; j < K; j++) {
        int64_t nd = 0, keep[TILE_MAX];          /* the points whose direction j is not zero */
        for (int64_t l = 0; l < nl; l++) {
            const int64_t b = (int64_t)pt[l];
            int any = 0;
            for (int64_t i = 0; i < rows; i++) {
                const int32_t s = mode == JVP ? q[2 + i] : iz + (int32_t)i;
                in[nd * rows + i] = X[((int64_t)s * K + j) * S + b];
                any |= in[nd * rows + i] != 0.0;
            }
            if (!any) {                          /* a zero direction: a zero result */
                for (int64_t c = 0; c < cols; c++) {
                    if (mode == JVP) X[((iz + c) * K + j) * S + b] = 0.0;
                    else X[((int64_t)q[2 + c] * K + j) * S + b] += 0.0;
                }
                continue;
            }
            keep[nd++] = l;
        }
        if (!nd) continue;
        double *sub = work_buf(wk, W_BLOCK, nd * (k + cols));
        if (!sub) return TP_ENOMEM;
        for (int64_t d = 0; d < nd; d++)
            memcpy(sub + d * k, x + keep[d] * k, (size_t)k * sizeof *x);
        double *res = sub + nd * k;
        int rc = tp_py_call_batch(prim, mode, nd, k, sub, n, in, res);
        if (rc) return rc > 0 ? 1 : TP_ECALLBACK;
        for (int64_t d = 0; d < nd; d++) {
            const int64_t b = (int64_t)pt[keep[d]];
            for (int64_t c = 0; c < cols; c++) {
                if (mode == JVP) X[((iz + c) * K + j) * S + b] = res[d * cols + c];
                else X[((int64_t)q[2 + c] * K + j) * S + b] += res[d * cols + c];
            }
        }
    }
    return TP_OK;
}

/* mode EVAL: the values of the call's outputs into X (V itself); JVP: their tangents in X; VJP:
 * adds to X (the adjoints) the inputs'. q: the call's words (q[0] its outputs, q[1] its id, then
 * its inputs). A vectorized primitive gets the tile's points in one call (bcall_vec); any other
 * its points one by one. */
static int bcall(int mode, const double *V, double *X, int64_t S, int64_t np, int64_t K,
                 const uint8_t *M, const int32_t *q, int32_t nq, int32_t iz, work_t *wk)
{
    int rc_ = bcall_vec(mode, V, X, S, np, K, M, q, nq, iz, wk);
    if (rc_ != 1) return rc_;
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

/* ---- array block ops: each point through the one-point kernels (block.c, matmul.c) ----------
 * Any block op, present or future, whose kernels touch only its operand blocks and its results:
 * per op and tile, the blocks' spans of operand codes are merged into intervals and laid out in
 * a compact local buffer (constants below 0, variables from 0, then the results), the op's words
 * rewritten for it; per point, the values (tangents, adjoints) of the intervals are gathered
 * there, the kernel runs as in a one-point sweep, and what it wrote is put back. Adjoints are
 * gathered and put back whole, so each is summed in the one-point sweep's order: the same bits. */
enum { B_PRIMAL, B_TANGENT, B_ADJOINT, B_SECOND };

typedef struct { int64_t lo, hi, at; } ival_t;        /* codes lo..hi at local slot at.. */

typedef struct {
    int32_t *w;              /* the op's words rewritten: n, q'.., n (w + 1: q') */
    ival_t *iv; int64_t niv; /* intervals, constants' first */
    int64_t lc, lv, r;       /* constant slots, variable slots, results */
} blayout_t;

static int by_lo(const void *a, const void *b)
{
    const ival_t *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* The layout of the block op whose words (after n) are q, from scratch mem (room: blayout_room) */
static int64_t blayout_room(int32_t n) { return 4 * (int64_t)n + 16; }   /* in int64 words */

static void blayout(const tp_tape *t, const int32_t *q, int32_t iz, int64_t *mem, blayout_t *L)
{
    const int32_t n = q[-1];
    const int64_t nb = (n - 3) / 2;
    ival_t *sp = (ival_t *)mem;                          /* nb spans, then merged in place */
    int32_t *w = (int32_t *)(sp + nb + 1);
    int64_t k = 0;
    memcpy(w, q - 1, (size_t)(n + 2) * sizeof *w);
    for (int64_t i = 0; i < nb; i++) {
        int64_t lo, hi;
        if (!tp_span(t, q + 3 + 2 * i, &lo, &hi)) { w[4 + 2 * i] = 0; continue; }
        sp[k].lo = lo; sp[k].hi = hi; sp[k].at = i; k++;
    }
    qsort(sp, (size_t)k, sizeof *sp, by_lo);
    /* merge: codes ascend, constants (negative) first; an interval never crosses 0 */
    int64_t m = 0;
    for (int64_t j = 0; j < k; j++) {
        if (m && sp[j].lo <= sp[m - 1].hi + 1 && (sp[j].lo < 0) == (sp[m - 1].lo < 0)) {
            if (sp[j].hi > sp[m - 1].hi) sp[m - 1].hi = sp[j].hi;
        } else sp[m++] = (ival_t){sp[j].lo, sp[j].hi, 0};
    }
    int64_t lc = 0, lv = 0;
    for (int64_t j = 0; j < m; j++) {
        const int64_t len = sp[j].hi - sp[j].lo + 1;
        if (sp[j].lo < 0) { sp[j].at = lc; lc += len; } else { sp[j].at = lv; lv += len; }
    }
    for (int64_t j = 0; j < m; j++) if (sp[j].lo < 0) sp[j].at -= lc;   /* -lc .. -1 */
    for (int64_t i = 0; i < nb; i++) {                   /* each operand's first, relocated */
        int64_t f = q[3 + 2 * i], flo, fhi;
        if (!tp_span(t, q + 3 + 2 * i, &flo, &fhi)) continue;
        int64_t lo = 0, hi = m - 1;                      /* the interval holding f */
        while (lo < hi) {
            int64_t mid = (lo + hi + 1) / 2;
            if (sp[mid].lo <= f) lo = mid; else hi = mid - 1;
        }
        w[4 + 2 * i] = (int32_t)(sp[lo].at + (f - sp[lo].lo));
    }
    L->w = w; L->iv = sp; L->niv = m; L->lc = lc; L->lv = lv; L->r = q[0];
    (void)iz;
}

/* per point b: slot codes c of the intervals <-> local slots; X holds K per slot (stride S);
 * vars_only: the constants' local slots start at zero instead */
static void gather(const blayout_t *L, const double *X, int64_t K, int64_t S, int64_t b,
                   double *loc, int vars_only)
{
    for (int64_t j = 0; j < L->niv; j++) {
        const ival_t *v = &L->iv[j];
        double *d = loc + v->at * K;
        if (vars_only && v->lo < 0) {                    /* constants' adjoints: a zero start */
            memset(d, 0, (size_t)((v->hi - v->lo + 1) * K) * sizeof *d);
            continue;
        }
        const double *s = X + v->lo * K * S + b;
        for (int64_t e = 0; e < (v->hi - v->lo + 1) * K; e++) d[e] = s[e * S];
    }
}

static void scatter(const blayout_t *L, double *X, int64_t K, int64_t S, int64_t b,
                    const double *loc)
{
    for (int64_t j = 0; j < L->niv; j++) {
        const ival_t *v = &L->iv[j];
        if (v->lo < 0) continue;                         /* constants' adjoints: not kept */
        const double *s = loc + v->at * K;
        double *d = X + v->lo * K * S + b;
        for (int64_t e = 0; e < (v->hi - v->lo + 1) * K; e++) d[e * S] = s[e];
    }
}

/* the results iz .. iz+r-1 (K per slot) between X at point b and the local slots */
static void results_in(const blayout_t *L, const double *X, int64_t K, int64_t S, int64_t b,
                       int32_t iz, double *loc)
{
    double *d = loc + L->lv * K;
    const double *s = X + (int64_t)iz * K * S + b;
    for (int64_t e = 0; e < L->r * K; e++) d[e] = s[e * S];
}

static void results_out(const blayout_t *L, double *X, int64_t K, int64_t S, int64_t b,
                        int32_t iz, const double *loc)
{
    const double *s = loc + L->lv * K;
    double *d = X + (int64_t)iz * K * S + b;
    for (int64_t e = 0; e < L->r * K; e++) d[e * S] = s[e];
}

/* Block op op (words p: n first) with first result iz over the tile's points, in one mode:
 * B_PRIMAL fills V's results (a kernel's TP_EBRANCH marks the point in M); B_TANGENT T's;
 * B_ADJOINT adds to the operands' adjoints A and zeroes the results'; B_SECOND adds to AV
 * (one per slot) and D. */
static int bblock(int mode, const tp_tape *t, int op, const int32_t *p, int32_t iz, double *V,
                  double *T, double *A, double *D, int64_t K, int64_t S, int64_t np,
                  uint8_t *M, work_t *wk)
{
    int64_t *mem = (int64_t *)work_buf(wk, W_BLOCK, blayout_room(p[0]));
    if (!mem) return TP_ENOMEM;
    blayout_t L;
    blayout(t, p + 1, iz, mem, &L);
    /* local slots: values, then K tangents (or adjoints) each, then K adjoint tangents and one
     * adjoint each (second order); each region's slot 0 after its constants */
    const int64_t ns = L.lc + L.lv + L.r;
    const int64_t need = ns * (1 + (mode == B_PRIMAL ? 0 : mode == B_SECOND ? 2 * K + 1 : K));
    double *buf = work_buf(wk, W_PRIM, need);
    if (!buf) return TP_ENOMEM;
    const int32_t *q = L.w + 1, izl = (int32_t)L.lv;
    double *Vl = buf + L.lc, *Xl = buf + ns + L.lc * K, *Dl = Xl + ns * K;
    double *Al = Dl + ns * K - L.lc * K + L.lc;
    for (int64_t b = 0; b < np; b++) {
        int rc;
        gather(&L, V, 1, S, b, Vl, 0);
        if (mode == B_PRIMAL) {
            rc = tp_block_primal(t, Vl, op, q, izl, Vl + izl);
            if (rc == TP_EBRANCH) {
                M[b] = 1;
                for (int64_t e = 0; e < L.r; e++) Vl[izl + e] = NAN;
            } else if (rc < 0) return rc;
            results_out(&L, V, 1, S, b, iz, Vl);
            continue;
        }
        results_in(&L, V, 1, S, b, iz, Vl);
        if (mode == B_TANGENT) {
            gather(&L, T, K, S, b, Xl, 0);
            if ((rc = tp_block_tangent(t, Vl, Xl, K, op, q, izl)) < 0) return rc;
            results_out(&L, T, K, S, b, iz, Xl);
        } else if (mode == B_ADJOINT) {
            gather(&L, A, K, S, b, Xl, 1);
            results_in(&L, A, K, S, b, iz, Xl);
            if ((rc = tp_block_adjoint(t, Vl, Xl, K, op, q, izl)) < 0) return rc;
            scatter(&L, A, K, S, b, Xl);
        } else {
            gather(&L, T, K, S, b, Xl, 0);
            gather(&L, D, K, S, b, Dl, 1);
            results_in(&L, D, K, S, b, iz, Dl);
            gather(&L, A, 1, S, b, Al, 1);
            results_in(&L, A, 1, S, b, iz, Al);
            if ((rc = tp_block_second(t, Vl, Xl, Al, Dl, K, op, q, izl)) < 0) return rc;
            scatter(&L, D, K, S, b, Dl);
            scatter(&L, A, 1, S, b, Al);
        }
    }
    if (mode == B_ADJOINT)                               /* the results' adjoints: zero again */
        for (int64_t e = 0; e < L.r * K; e++) {
            double *a = A + ((int64_t)iz * K + e) * S;
            for (int64_t b = 0; b < np; b++) a[b] = 0.0;
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
#define BLOCK_PRIMAL(op) z = 0.0                         /* bblock, not per point */
#define BPRIMAL_VARIADIC(NAME) { const int32_t n = p[0]; const int32_t *q = p + 1; \
    if (tp_op_kind[TP_OP_##NAME] == TP_KIND_BLOCK) { \
        int rc_ = bblock(B_PRIMAL, t, TP_OP_##NAME, p, iz, V, NULL, NULL, NULL, 1, S, np, M, wk); \
        if (rc_ < 0) return rc_; \
    } else { \
    if (TP_OP_##NAME == TP_OP_CALL) { int rc_ = bcall(EVAL, V, V, S, np, 1, M, q, n, iz, wk); \
                                      if (rc_ < 0) return rc_; } \
    double *Z_ = BV(iz); LOOP { double z; NAME##_PRIMAL; Z_[b] = z; } } }

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
                   int64_t k, int64_t S, int64_t np, work_t *wk)
{
    return k == 1 ? bsecond_k1(t, V, T, AV, D, 1, S, np, wk)
                  : bsecond_kn(t, V, T, AV, D, k, S, np, wk);
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
        for (int64_t b = 0; b < pl->S; b++) base[(t->n_consts - 1 - c) * pl->S + b] = tp_cval(t, c);
    return base + t->n_consts * pl->S;
}

/* the primal sweep at points b0 .. b0+np-1 of x: V filled, M their flips */
static int tile_primal(tp_tape *t, const double *x, int64_t b0, int64_t np, double *V,
                       int64_t S, uint8_t *M, work_t *wk)
{
    transpose(V, S, x + b0 * t->n_inputs, t->n_inputs, np, t->n_inputs);
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
    if (k == 1) {                                     /* a gradient's rows: one transpose */
        transpose(out + b0 * rows, rows, X, S, rows, np);
        return;
    }
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

/* ---- native kernels (tapead/native.py): the tape's program compiled to straight-line code ----
 * kernel(B, x, w, w_stride, y, g, flips): y (or NULL) the outputs at the B points, flips set where
 * a guard flipped; g NULL: no more, else g the adjoints of the inputs for output weights w (per
 * point, w_stride apart; NULL: 1 for output 0, 0 for the others). 0, or -1 without memory.
 * Per point its arithmetic is the interpreter's, in the same order: the same bits. */
typedef int (*native_fn)(int64_t B, const double *x, const double *w, int64_t w_stride,
                         double *y, double *g, uint8_t *flips);

int tp_set_native(tp_tape *t, void *kernel)
{
    if (!__atomic_load_n(&t->closed, __ATOMIC_ACQUIRE)) return TP_EARG;
    __atomic_store_n(&t->native, kernel, __ATOMIC_RELEASE);
    return TP_OK;
}

int tp_has_native(const tp_tape *t) { return __atomic_load_n(&t->native, __ATOMIC_ACQUIRE) != NULL; }

/* the call on the kernel, if the tape has one (1: it has none) */
static int native(tp_tape *t, int64_t B, const double *x, const double *w, int64_t w_stride,
                  double *y, double *g, uint8_t *flips)
{
    const native_fn fn = (native_fn)__atomic_load_n(&t->native, __ATOMIC_ACQUIRE);
    if (!fn) return 1;
    if (!tp_may_read(t)) return TP_ETHREAD;
    if (B < 0) return TP_EARG;
    if (fn(B, x, w, w_stride, y, g, flips) < 0) return TP_ENOMEM;
    tp_count(t, 0, t->n_ops * B);
    if (g) tp_count(t, 2, t->n_ops * B);
    commit_last(t, B, x, flips);
    return TP_OK;
}

#define BEGIN(k_, buffers_) \
    if (!tp_may_read(t)) return TP_ETHREAD; \
    if (B < 0 || (k_) < 1) return TP_EARG; \
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
    const int nrc = native(t, B, x, NULL, 0, y, NULL, flips);
    if (nrc <= 0) return nrc;
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

/* jvp (reverse 0: d the directions xdot, out ydot) and vjp (1: d the weights ybar, out xbar) */
static int dirs_batch(tp_tape *t, int64_t B, const double *x, int64_t k, const double *d,
                      int64_t d_stride, double *y, double *out, uint8_t *flips, int reverse)
{
    if (reverse && k == 1) {
        const int nrc = native(t, B, x, d, d_stride, y, out, flips);
        if (nrc <= 0) return nrc;
    }
    BEGIN(k, 1);
    const int64_t kb = pl.kb, kc = pl.calls ? tp_padded(kb) : kb;
    double *base = work_buf(&wk, W_DIRS, pl.ns * kc * S);
    if (!base) { rc = TP_ENOMEM; goto done; }
    if (reverse)                                   /* zero; the adjoint sweep leaves it so but */
        memset(base, 0, (size_t)(pl.ns * kc * S) * sizeof(double));   /* inputs', constants' */
    for (int64_t b0 = 0; b0 < B && rc >= 0; b0 += S) {
        const int64_t np = B - b0 < S ? B - b0 : S;
        if ((rc = tile_primal(t, x, b0, np, V, S, M, &wk)) < 0) break;
        tile_outputs(t, V, S, b0, np, y);
        for (int64_t j0 = 0; j0 < k; j0 += kb) {
            const int64_t nb = k - j0 < kb ? k - j0 : kb, ks = pl.calls ? tp_padded(nb) : nb;
            double *X = base + t->n_consts * ks * S;
            if (!reverse) {
                memset(base, 0, (size_t)(t->n_consts * ks * S) * sizeof(double));
                seed_tile(X, S, ks, d, d_stride, m, k, b0, np, j0, nb);
                if ((rc = btangent(t, V, X, ks, S, np, M, &wk)) < 0) break;
                for (int64_t b = 0; b < np; b++)
                    for (int64_t o = 0; o < n; o++)
                        for (int64_t j = 0; j < nb; j++)
                            out[((b0 + b) * n + o) * k + j0 + j] =
                                X[((int64_t)t->outputs[o] * ks + j) * S + b];
            } else {
                for (int64_t o = 0; o < n; o++)
                    for (int64_t j = 0; j < nb; j++)
                        for (int64_t b = 0; b < np; b++)
                            X[((int64_t)t->outputs[o] * ks + j) * S + b] += d ?
                                d[(b0 + b) * d_stride + o * k + j0 + j] : (double)(o == j0 + j);
                if ((rc = badjoint(t, V, X, ks, S, np, M, &wk)) < 0) break;
                untile(out, X, S, ks, m, k, b0, np, j0, nb);
                memset(base, 0, (size_t)((t->n_consts + m) * ks * S) * sizeof(double));
            }
            tp_count(t, 1 + reverse, t->n_ops * nb * np);
        }
        memcpy(flips + b0, M, (size_t)np);
    }
    END;
}

int tp_jvp_batch(tp_tape *t, int64_t B, const double *x, int64_t k, const double *xdot,
                 int64_t xdot_stride, double *y, double *ydot, uint8_t *flips)
{
    return dirs_batch(t, B, x, k, xdot, xdot_stride, y, ydot, flips, 0);
}

int tp_vjp_batch(tp_tape *t, int64_t B, const double *x, int64_t k, const double *ybar,
                 int64_t ybar_stride, double *y, double *xbar, uint8_t *flips)
{
    return dirs_batch(t, B, x, k, ybar, ybar_stride, y, xbar, flips, 1);
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
            tp_clear_adjoints(abase, t->n_consts * S, pl.ns * S);
            tp_clear_adjoints(dbase, t->n_consts * ks * S, pl.ns * ks * S);
            for (int64_t o = 0; o < n; o++)
                for (int64_t b = 0; b < np; b++)
                    AV[(int64_t)t->outputs[o] * S + b] += w[(b0 + b) * w_stride + o];
            if ((rc = bsecond(t, V, T, AV, D, ks, S, np, &wk)) < 0) break;
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

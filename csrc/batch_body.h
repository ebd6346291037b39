/* Batched tangent, adjoint and second-order sweeps over a tile of points, generated from ops.def
 * and rules.h. batch.c includes this for K = 1 (a gradient: the direction loops vanish) and K = k.
 *
 * Layout: points innermost. Slot i's value at point b is V[i*S + b] (S: the tile's stride, np <=
 * S points in use); direction j of slot i at point b is T[(i*K + j)*S + b] (likewise A, D). The
 * second-order sweep's adjoint has one direction: AV[i*S + b]. Each op runs one loop over the
 * points computing its local partials into PX.. (per-point arrays), then one loop per direction
 * over the points: dispatch is paid once per op per tile and the loops vectorise. Per point the
 * arithmetic is sweep_body.h's / sweep2_body.h's, in the same order: the same bits.
 * M (np bytes): points whose branch guard flipped; only a primitive's rules look at it.
 * Expects K, SUFFIX, and from batch.c: BV, TIMES, LOOP, CLONES, bcall.
 */
#define TAN(i, j) T[((int64_t)(i) * K + (j)) * S + b]     /* point b: the per-point rules' view */
#define ADJ(i, j) A[((int64_t)(i) * K + (j)) * S + b]
#define DOT_(i, j) D[((int64_t)(i) * K + (j)) * S + b]
#define BT(i, j) (T + ((int64_t)(i) * K + (j)) * S)       /* direction j of slot i: S points */
#define BA(i, j) (A + ((int64_t)(i) * K + (j)) * S)
#define BD(i, j) (D + ((int64_t)(i) * K + (j)) * S)
#define VAL(i) V[(int64_t)q[i] * S + b]
#define TVAL(i) T[((int64_t)q[i] * K + j) * S + b]

/* the local partials of a PARTIAL op of fixed arity at every point: PX, PY, PW */
#define PART_1(NAME) const int32_t ix = p[0]; const double *X_ = BV(ix), *Z_ = BV(iz); \
    LOOP { const double x = X_[b], z = Z_[b]; double px; (void)x; (void)z; (void)ix; \
           NAME##_PARTIAL; PX[b] = px; }
#define PART_2(NAME) const int32_t ix = p[0], iy = p[1]; \
    const double *X_ = BV(ix), *Y_ = BV(iy), *Z_ = BV(iz); \
    LOOP { const double x = X_[b], y = Y_[b], z = Z_[b]; double px, py; \
           (void)x; (void)y; (void)z; (void)ix; (void)iy; NAME##_PARTIAL; PX[b] = px; PY[b] = py; }

#define BTANGENT_PARTIAL_1(NAME) { PART_1(NAME) for (int64_t j = 0; j < K; j++) { \
    const double *restrict tx = BT(ix, j); double *restrict tz = BT(iz, j); \
    LOOP tz[b] = TIMES(tx[b], PX[b]); } }
#define BTANGENT_PARTIAL_2(NAME) { PART_2(NAME) for (int64_t j = 0; j < K; j++) { \
    const double *tx = BT(ix, j), *ty = BT(iy, j); double *restrict tz = BT(iz, j); \
    LOOP tz[b] = TIMES(tx[b], PX[b]) + TIMES(ty[b], PY[b]); } }
#define BTANGENT_PARTIAL_VARIADIC(NAME) { const int32_t n = p[0]; const int32_t *q = p + 1; \
    const double *Z_ = BV(iz); \
    for (int64_t j = 0; j < K; j++) { double *tz = BT(iz, j); LOOP tz[b] = 0.0; } \
    for (int32_t i = 0; i < n; i++) { \
        LOOP { const double z = Z_[b]; double pi; (void)z; NAME##_PARTIAL; PX[b] = pi; } \
        for (int64_t j = 0; j < K; j++) { const double *restrict tq = BT(q[i], j); \
            double *restrict tz = BT(iz, j); LOOP tz[b] += TIMES(tq[b], PX[b]); } } }
#define BTANGENT_CUSTOM_3(NAME) { const int32_t ix = p[0], iy = p[1], iw = p[2]; \
    LOOP { const double x = V[ix * S + b], y = V[iy * S + b], w = V[iw * S + b]; \
           (void)y; (void)w; NAME##_TANGENT; } }
#define BTANGENT_GUARD_3(NAME) { for (int64_t j = 0; j < K; j++) { \
    double *tz = BT(iz, j); LOOP tz[b] = 0.0; } }
#define BTANGENT_PRIMITIVE_VARIADIC(NAME) { \
    int rc_ = bcall(JVP, V, T, S, np, K, M, p + 1, p[0], iz, wk); if (rc_ < 0) return rc_; }

#if FUSED   /* one direction (a gradient): the partials and the update in one loop */
#undef BTANGENT_PARTIAL_1
#undef BTANGENT_PARTIAL_2
#define BTANGENT_PARTIAL_1(NAME) { const int32_t ix = p[0]; \
    const double *restrict X_ = BV(ix), *restrict Z_ = BV(iz), *restrict tx = BT(ix, 0); \
    double *restrict tz = BT(iz, 0); \
    LOOP { const double x = X_[b], z = Z_[b]; double px; (void)x; (void)z; (void)ix; \
           NAME##_PARTIAL; tz[b] = TIMES(tx[b], px); } }
#define BTANGENT_PARTIAL_2(NAME) { const int32_t ix = p[0], iy = p[1]; \
    const double *restrict X_ = BV(ix), *restrict Y_ = BV(iy), *restrict Z_ = BV(iz); \
    const double *restrict tx = BT(ix, 0), *restrict ty = BT(iy, 0); double *restrict tz = BT(iz, 0); \
    LOOP { const double x = X_[b], y = Y_[b], z = Z_[b]; double px, py; \
           (void)x; (void)y; (void)z; (void)ix; (void)iy; NAME##_PARTIAL; \
           tz[b] = TIMES(tx[b], px) + TIMES(ty[b], py); } }
#define BADJOINT_PARTIAL_1(NAME) { const int32_t ix = p[0]; \
    const double *restrict X_ = BV(ix), *restrict Z_ = BV(iz); \
    double *restrict az = BA(iz, 0), *restrict ax = BA(ix, 0); \
    LOOP { const double x = X_[b], z = Z_[b]; double px; (void)x; (void)z; (void)ix; \
           NAME##_PARTIAL; const double a_ = az[b]; az[b] = 0.0; ax[b] += TIMES(a_, px); } }
#define BADJOINT_PARTIAL_2(NAME) { const int32_t ix = p[0], iy = p[1]; \
    const double *restrict X_ = BV(ix), *restrict Y_ = BV(iy), *restrict Z_ = BV(iz); \
    double *restrict az = BA(iz, 0), *ax = BA(ix, 0), *ay = BA(iy, 0); \
    if (ix == iy) LOOP { const double x = X_[b], y = Y_[b], z = Z_[b]; double px, py; \
           (void)x; (void)y; (void)z; NAME##_PARTIAL; const double a_ = az[b]; az[b] = 0.0; \
           ax[b] += TIMES(a_, px); ax[b] += TIMES(a_, py); } \
    else { double *restrict ax_ = ax, *restrict ay_ = ay; \
    LOOP { const double x = X_[b], y = Y_[b], z = Z_[b]; double px, py; \
           (void)x; (void)y; (void)z; NAME##_PARTIAL; const double a_ = az[b]; az[b] = 0.0; \
           ax_[b] += TIMES(a_, px); ay_[b] += TIMES(a_, py); } } }
#else
#define BADJOINT_PARTIAL_1(NAME) { PART_1(NAME) for (int64_t j = 0; j < K; j++) { \
    double *restrict az = BA(iz, j), *restrict ax = BA(ix, j); \
    LOOP { const double a_ = az[b]; az[b] = 0.0; ax[b] += TIMES(a_, PX[b]); } } }
#define BADJOINT_PARTIAL_2(NAME) { PART_2(NAME) for (int64_t j = 0; j < K; j++) { \
    double *restrict az = BA(iz, j), *ax = BA(ix, j), *ay = BA(iy, j); \
    LOOP { const double a_ = az[b]; az[b] = 0.0; ax[b] += TIMES(a_, PX[b]); \
           ay[b] += TIMES(a_, PY[b]); } } }
#endif
#define BADJOINT_PARTIAL_VARIADIC(NAME) { const int32_t n = p[0]; const int32_t *q = p + 1; \
    const double *Z_ = BV(iz); \
    for (int32_t i = 0; i < n; i++) { \
        LOOP { const double z = Z_[b]; double pi; (void)z; NAME##_PARTIAL; PX[b] = pi; } \
        for (int64_t j = 0; j < K; j++) { const double *restrict az = BA(iz, j); \
            double *restrict aq = BA(q[i], j); LOOP aq[b] += TIMES(az[b], PX[b]); } } \
    ZERO_ADJOINTS(1); }
#define BADJOINT_CUSTOM_3(NAME) { const int32_t ix = p[0], iy = p[1], iw = p[2]; \
    LOOP { const double x = V[ix * S + b], y = V[iy * S + b], w = V[iw * S + b]; \
           (void)y; (void)w; NAME##_ADJOINT; } ZERO_ADJOINTS(1); }
#define BADJOINT_GUARD_3(NAME) { ZERO_ADJOINTS(1); }
#define BADJOINT_PRIMITIVE_VARIADIC(NAME) { \
    int rc_ = bcall(VJP, V, A, S, np, K, M, p + 1, p[0], iz, wk); if (rc_ < 0) return rc_; \
    ZERO_ADJOINTS(p[1]); }
/* an op's results' adjoints are read by its rule only: zeroed after it, the adjoint buffer is
 * zero again when the sweep ends (but for the inputs' and constants': tp_vjp_batch) */
#define ZERO_ADJOINTS(r) for (int64_t z_ = 0; z_ < (r) * K; z_++) { \
    double *a_ = A + ((int64_t)iz * K + z_) * S; LOOP a_[b] = 0.0; }

/* second order: x_bar += z_bar px; x_bar_dot += z_bar_dot px + z_bar (pxx x_dot + pxy y_dot) */
#define BSECOND_PARTIAL_1(NAME) { const int32_t ix = p[0]; \
    const double *X_ = BV(ix), *Z_ = BV(iz); \
    LOOP { const double x = X_[b], z = Z_[b]; double px, pxx; (void)x; (void)z; (void)ix; \
           NAME##_PARTIAL; NAME##_PARTIAL2; PX[b] = px; PXX[b] = pxx; \
           const double a_ = AV[iz * S + b]; AZ[b] = a_; AV[ix * S + b] += TIMES(a_, px); } \
    for (int64_t j = 0; j < K; j++) { const double *restrict dz = BD(iz, j), *restrict tx = BT(ix, j); \
        double *restrict dx = BD(ix, j); \
        LOOP dx[b] += TIMES(dz[b], PX[b]) + TIMES(AZ[b], TIMES(tx[b], PXX[b])); } }
#define BSECOND_PARTIAL_2(NAME) { const int32_t ix = p[0], iy = p[1]; \
    const double *X_ = BV(ix), *Y_ = BV(iy), *Z_ = BV(iz); \
    LOOP { const double x = X_[b], y = Y_[b], z = Z_[b]; double px, py, pxx, pxy, pyy; \
           (void)x; (void)y; (void)z; (void)ix; (void)iy; NAME##_PARTIAL; NAME##_PARTIAL2; \
           PX[b] = px; PY[b] = py; PXX[b] = pxx; PXY[b] = pxy; PYY[b] = pyy; \
           const double a_ = AV[iz * S + b]; AZ[b] = a_; \
           AV[ix * S + b] += TIMES(a_, px); AV[iy * S + b] += TIMES(a_, py); } \
    for (int64_t j = 0; j < K; j++) { const double *restrict dz = BD(iz, j); \
        const double *tx = BT(ix, j), *ty = BT(iy, j); double *dx = BD(ix, j), *dy = BD(iy, j); \
        LOOP { const double d_ = dz[b], tx_ = tx[b], ty_ = ty[b], a_ = AZ[b]; \
            dx[b] += TIMES(d_, PX[b]) + TIMES(a_, TIMES(tx_, PXX[b]) + TIMES(ty_, PXY[b])); \
            dy[b] += TIMES(d_, PY[b]) + TIMES(a_, TIMES(tx_, PXY[b]) + TIMES(ty_, PYY[b])); } } }
#define BSECOND_PARTIAL_VARIADIC(NAME) { const int32_t n = p[0]; const int32_t *q = p + 1; \
    const double *Z_ = BV(iz); \
    LOOP AZ[b] = AV[iz * S + b]; \
    for (int32_t i = 0; i < n; i++) { \
        LOOP { const double z = Z_[b]; double pi; (void)z; NAME##_PARTIAL; PX[b] = pi; \
               AV[(int64_t)q[i] * S + b] += TIMES(AZ[b], pi); } \
        for (int64_t j = 0; j < K; j++) { const double *restrict dz = BD(iz, j); \
            double *restrict dq = BD(q[i], j); \
            LOOP { double dpi; NAME##_DPARTIAL; dq[b] += TIMES(dz[b], PX[b]) + TIMES(AZ[b], dpi); } } } }
#define BSECOND_CUSTOM_3(NAME) { const int32_t ix = p[0], iy = p[1], iw = p[2]; \
    LOOP { const double x = V[ix * S + b]; (void)iy; (void)iw; NAME##_BSECOND; } }
#define BSECOND_GUARD_3(NAME) { }
#define BSECOND_PRIMITIVE_VARIADIC(NAME) return TP_ENORULE
#define BTANGENT_BLOCK_VARIADIC(NAME) { int rc_ = bblock(B_TANGENT, t, TP_OP_##NAME, p, iz, \
    (double *)V, T, NULL, NULL, K, S, np, NULL, wk); if (rc_ < 0) return rc_; }
#define BADJOINT_BLOCK_VARIADIC(NAME) { int rc_ = bblock(B_ADJOINT, t, TP_OP_##NAME, p, iz, \
    (double *)V, NULL, A, NULL, K, S, np, NULL, wk); if (rc_ < 0) return rc_; }
#define BSECOND_BLOCK_VARIADIC(NAME) { int rc_ = bblock(B_SECOND, t, TP_OP_##NAME, p, iz, \
    (double *)V, (double *)T, AV, D, K, S, np, NULL, wk); if (rc_ < 0) return rc_; }

/* T: tangents of every slot (constants zero, inputs seeded); fills the operations'. */
CLONES static int CAT(btangent, SUFFIX)(const tp_tape *t, const double *V, double *T, int64_t k,
                                        int64_t S, int64_t np, const uint8_t *M, work_t *wk)
{
    (void)k; (void)M; (void)wk;
    double PX[TILE_MAX], PY[TILE_MAX];
    const int32_t *p = t->args;
    int32_t iz = (int32_t)t->n_inputs;
    for (int64_t o = 0; o < t->n_ops; o++) {
        switch (t->ops[o]) {
#define OP(NAME, ARITY, RESULTS, RULE, FORMULA) case TP_OP_##NAME: \
    BTANGENT_##RULE##_##ARITY(NAME); iz += TP_RESULTS(RESULTS, p); p += TP_WORDS_##ARITY(p); break;
#include "ops.def"
#undef OP
        }
    }
    (void)PY;
    return TP_OK;
}

/* A: adjoints of every slot (zero but the seeds); sweeps the operations from the last. */
CLONES static int CAT(badjoint, SUFFIX)(const tp_tape *t, const double *V, double *A, int64_t k,
                                        int64_t S, int64_t np, const uint8_t *M, work_t *wk)
{
    (void)k; (void)M; (void)wk;
    double PX[TILE_MAX], PY[TILE_MAX];
    const int32_t *p = t->args + t->n_args;
    int32_t iz = (int32_t)tp_nvars(t);
    for (int64_t o = t->n_ops - 1; o >= 0; o--) {
        switch (t->ops[o]) {
#define OP(NAME, ARITY, RESULTS, RULE, FORMULA) case TP_OP_##NAME: \
    p -= TP_WORDS_BACK_##ARITY(p); iz -= TP_RESULTS(RESULTS, p); BADJOINT_##RULE##_##ARITY(NAME); \
    break;
#include "ops.def"
#undef OP
        }
    }
    (void)PY;
    return TP_OK;
}

/* AV: adjoints (one weight vector), D their tangents (K directions), from T's tangents. */
CLONES static int CAT(bsecond, SUFFIX)(const tp_tape *t, const double *V, const double *T,
                                       double *AV, double *D, int64_t k, int64_t S, int64_t np,
                                       work_t *wk)
{
    (void)k; (void)wk;
    double PX[TILE_MAX], PY[TILE_MAX], PXX[TILE_MAX], PXY[TILE_MAX], PYY[TILE_MAX], AZ[TILE_MAX];
    const int32_t *p = t->args + t->n_args;
    int32_t iz = (int32_t)tp_nvars(t);
    for (int64_t o = t->n_ops - 1; o >= 0; o--) {
        switch (t->ops[o]) {
#define OP(NAME, ARITY, RESULTS, RULE, FORMULA) case TP_OP_##NAME: \
    p -= TP_WORDS_BACK_##ARITY(p); iz -= TP_RESULTS(RESULTS, p); BSECOND_##RULE##_##ARITY(NAME); \
    break;
#include "ops.def"
#undef OP
        }
    }
    (void)PY; (void)PXY; (void)PYY;
    return TP_OK;
}

#undef TAN
#undef ADJ
#undef DOT_
#undef BT
#undef BA
#undef BD
#undef VAL
#undef TVAL
#undef PART_1
#undef PART_2
#undef BTANGENT_PARTIAL_1
#undef BTANGENT_PARTIAL_2
#undef BTANGENT_PARTIAL_VARIADIC
#undef BTANGENT_CUSTOM_3
#undef BTANGENT_GUARD_3
#undef BTANGENT_PRIMITIVE_VARIADIC
#undef BADJOINT_PARTIAL_1
#undef BADJOINT_PARTIAL_2
#undef BADJOINT_PARTIAL_VARIADIC
#undef BADJOINT_CUSTOM_3
#undef BADJOINT_GUARD_3
#undef BADJOINT_PRIMITIVE_VARIADIC
#undef ZERO_ADJOINTS
#undef BSECOND_PARTIAL_1
#undef BSECOND_PARTIAL_2
#undef BSECOND_PARTIAL_VARIADIC
#undef BSECOND_CUSTOM_3
#undef BSECOND_GUARD_3
#undef BSECOND_PRIMITIVE_VARIADIC
#undef BTANGENT_BLOCK_VARIADIC
#undef BADJOINT_BLOCK_VARIADIC
#undef BSECOND_BLOCK_VARIADIC

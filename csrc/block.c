/* Sweeps of the array block ops MAP, REDUCE and PACK (MATMUL: matmul.c). MAP runs the scalar
 * op's own rules of rules.h per element (PRIMAL, PARTIAL, PARTIAL2, TAYLOR), with the same
 * arithmetic as the scalar sweeps (sweep_body.h, sweep2_body.h, taylor.c), so an array program
 * and the same program written with scalar Vars agree to the bit but for summation order. */
#include <stdlib.h>
#include <string.h>
#include "block.h"
#include "gather.h"
#include "series.h"
#include "rules.h"
#include "sweeps.h"

/* MAP's element rules: MAP_ROWS after defining M1(NAME) for the unary PARTIAL ops of ops.def,
 * M2(NAME) for the binary ones, MW(NAME) for WHERE and MG(NAME) for the comparisons (each a case
 * of a switch on the attribute a). A comparison's third operand is its outcomes at recording
 * (NaN: unchecked; 0 or 1 once Python took the block's values: a block guard). */
#define MAP_ROW_PARTIAL_1(NAME, M) M##1(NAME)
#define MAP_ROW_PARTIAL_2(NAME, M) M##2(NAME)
#define MAP_ROW_PARTIAL_VARIADIC(NAME, M)
#define MAP_ROW_CUSTOM_3(NAME, M) M##W(NAME)           /* WHERE: selection, one-sided */
#define MAP_ROW_GUARD_3(NAME, M) M##G(NAME)            /* comparisons: no derivative */
#define MAP_ROW_PRIMITIVE_VARIADIC(NAME, M)
#define MAP_ROW_BLOCK_VARIADIC(NAME, M)

/* operands of a MAP at element e: values x, y (offsets o0, o1), ix, iy < 0 for constants */
#define LOAD1 const double x = X[o0]; const int32_t ix = cx; (void)x; (void)ix
#define LOAD2 LOAD1; const double y = Y[o1]; const int32_t iy = cy; (void)y; (void)iy

#define LOAD3 LOAD2; const double w = W[o2]; (void)w
#define WALKM(...) WALK3(m->x.nd, m->x.dims, m->x.st, m->sy, m->sw, __VA_ARGS__)

typedef struct { blk x, y, w; int nb; const int64_t *sy, *sw; int32_t cx, cy; } mapping;

static void map_of(const tp_tape *t, const int32_t *q, mapping *m)
{
    m->nb = (q[-1] - 3) / 2;               /* n = 3 + 2 * operands */
    tp_blk(t, q + 3, &m->x);
    if (m->nb > 1) tp_blk(t, q + 5, &m->y); else m->y = m->x;
    if (m->nb > 2) tp_blk(t, q + 7, &m->w); else m->w = m->x;
    m->sy = m->nb > 1 ? m->y.st : ZEROS;
    m->sw = m->nb > 2 ? m->w.st : ZEROS;
    m->cx = m->x.first < 0 ? -1 : 0;
    m->cy = m->y.first < 0 ? -1 : 0;
}

/* One direction, operands' last strides 1 (the sy of a unary op: unused) and the adjoints of x
 * and y apart: the element loops may run as vector loops (WALK_UNIT) */
static int unit_rows(const mapping *m, int64_t K)
{
    const int l = m->x.nd - 1;
    if (K != 1 || l < 0 || m->x.st[l] != 1 || m->x.size < 2) return 0;
    if (m->nb < 2) return 1;
    if (m->sy[l] != 1) return 0;
    int64_t xl, xh, yl, yh;
    if (!tp_blk_span(&m->x, &xl, &xh) || !tp_blk_span(&m->y, &yl, &yh)) return 0;
    return xh < yl || yh < xl;
}

/* WALK over a MAP's x and y; with `unit` (unit_rows) the vector loop of WALK_UNIT, the body's
 * direction loops then of one direction (K shadowed by the constant 1). `unit` is a constant in
 * each copy of the MAP sweeps (INLINED bodies): the other loop is not compiled there. */
#define INLINED static inline __attribute__((always_inline))
#define MAPWALK(...) do { \
    if (unit) { const int64_t K = 1; (void)K; \
                WALK_UNIT(m->x.nd, m->x.dims, m->x.st, m->sy, __VA_ARGS__); } \
    else WALK(m->x.nd, m->x.dims, m->x.st, m->sy, __VA_ARGS__); } while (0)

/* iz: the first result's variable, named when a comparison's outcome differs (a block guard) */
INLINED int map_values_(int a, const mapping *m, const double *X, const double *Y,
                        const double *W, double *Z, int32_t iz, const int unit)
{
    const int32_t cx = m->cx, cy = m->cy;
#define CHECK_GUARD(z, w) if ((z) == 1.0 - (w)) return tp_flipped(iz + e, x, y)
#define PW(NAME) case TP_OP_##NAME: WALKM({ LOAD3; double z; NAME##_PRIMAL; Z[e] = z; }); break;
#define PG(NAME) PW(NAME)
#define P1(NAME) case TP_OP_##NAME: MAPWALK( \
    { LOAD1; double z; NAME##_PRIMAL; Z[e] = z; }); break;
#define P2(NAME) case TP_OP_##NAME: MAPWALK( \
    { LOAD2; double z; NAME##_PRIMAL; Z[e] = z; }); break;
    switch (a) {
#define OP(NAME, ARITY, RESULTS, RULE, FORMULA) MAP_ROW_##RULE##_##ARITY(NAME, P)
#include "ops.def"
#undef OP
    default: return TP_EARG;
    }
#undef P1
#undef P2
#undef PW
#undef PG
    return TP_OK;
}

INLINED int map_tangent_(int a, const mapping *m, const double *V, double *T, int64_t K,
                         int32_t iz, const int unit)
{
    const double *X = V + m->x.first, *Y = V + m->y.first, *Zv = V + iz;
    const double *TX = T + (int64_t)m->x.first * K, *TY = T + (int64_t)m->y.first * K;
    const double *W = V + m->w.first, *TW = T + (int64_t)m->w.first * K;
    double *TZ = T + (int64_t)iz * K;
    const int32_t cx = m->cx, cy = m->cy;
    (void)W; (void)TW;
#define TW(NAME) case TP_OP_##NAME: WALKM({ const double *s_ = X[o0] != 0.0 ? TY + o1 * K : \
    TW + o2 * K; for (int64_t j = 0; j < K; j++) TZ[e * K + j] = s_[j]; }); break;
#define TG(NAME) case TP_OP_##NAME: memset(TZ, 0, (size_t)(m->x.size * K) * sizeof *TZ); break;
#define T1(NAME) case TP_OP_##NAME: MAPWALK( \
    { LOAD1; const double z = Zv[e]; double px; (void)z; NAME##_PARTIAL; \
      for (int64_t j = 0; j < K; j++) TZ[e * K + j] = TIMES(TX[o0 * K + j], px); }); break;
#define T2(NAME) case TP_OP_##NAME: MAPWALK( \
    { LOAD2; const double z = Zv[e]; double px, py; (void)z; NAME##_PARTIAL; \
      for (int64_t j = 0; j < K; j++) \
          TZ[e * K + j] = TIMES(TX[o0 * K + j], px) + TIMES(TY[o1 * K + j], py); }); break;
    switch (a) {
#define OP(NAME, ARITY, RESULTS, RULE, FORMULA) MAP_ROW_##RULE##_##ARITY(NAME, T)
#include "ops.def"
#undef OP
    default: return TP_EARG;
    }
#undef T1
#undef T2
#undef TW
#undef TG
    return TP_OK;
}

INLINED int map_adjoint_(int a, const mapping *m, const double *V, double *A, int64_t K,
                         int32_t iz, const int unit)
{
    const double *X = V + m->x.first, *Y = V + m->y.first, *Zv = V + iz;
    double *AX = A + (int64_t)m->x.first * K, *AY = A + (int64_t)m->y.first * K;
    double *AW = A + (int64_t)m->w.first * K;
    const double *AZ = A + (int64_t)iz * K;
    const int32_t cx = m->cx, cy = m->cy;
    (void)AW;
#define AW(NAME) case TP_OP_##NAME: WALKM({ double *s_ = X[o0] != 0.0 ? AY + o1 * K : AW + o2 * K; \
    for (int64_t j = 0; j < K; j++) s_[j] += AZ[e * K + j]; }); break;
#define AG(NAME) case TP_OP_##NAME: break;
#define A1(NAME) case TP_OP_##NAME: MAPWALK( \
    { LOAD1; const double z = Zv[e]; double px; (void)z; NAME##_PARTIAL; \
      for (int64_t j = 0; j < K; j++) AX[o0 * K + j] += TIMES(AZ[e * K + j], px); }); break;
#define A2(NAME) case TP_OP_##NAME: MAPWALK( \
    { LOAD2; const double z = Zv[e]; double px, py; (void)z; NAME##_PARTIAL; \
      for (int64_t j = 0; j < K; j++) { const double a_ = AZ[e * K + j]; \
          AX[o0 * K + j] += TIMES(a_, px); AY[o1 * K + j] += TIMES(a_, py); } }); break;
    switch (a) {
#define OP(NAME, ARITY, RESULTS, RULE, FORMULA) MAP_ROW_##RULE##_##ARITY(NAME, A)
#include "ops.def"
#undef OP
    default: return TP_EARG;
    }
#undef A1
#undef A2
#undef AW
#undef AG
    return TP_OK;
}

/* forward over reverse (sweep2_body.h): adjoints A (one per variable) and their tangents D */
INLINED int map_second_(int a, const mapping *m, const double *V, const double *T,
                        double *A, double *D, int64_t K, int32_t iz, const int unit)
{
    const double *X = V + m->x.first, *Y = V + m->y.first, *Zv = V + iz;
    const double *TX = T + (int64_t)m->x.first * K, *TY = T + (int64_t)m->y.first * K;
    double *AX = A + m->x.first, *AY = A + m->y.first, *DX = D + (int64_t)m->x.first * K;
    double *DY = D + (int64_t)m->y.first * K;
    const double *AZ = A + iz, *DZ = D + (int64_t)iz * K;
    double *AW = A + m->w.first, *DW = D + (int64_t)m->w.first * K;
    const int32_t cx = m->cx, cy = m->cy;
    (void)AW; (void)DW;
#define SW(NAME) case TP_OP_##NAME: WALKM({ const int c_ = X[o0] != 0.0; \
    *(c_ ? AY + o1 : AW + o2) += AZ[e]; double *s_ = c_ ? DY + o1 * K : DW + o2 * K; \
    for (int64_t j = 0; j < K; j++) s_[j] += DZ[e * K + j]; }); break;
#define SG(NAME) case TP_OP_##NAME: break;
#define S1(NAME) case TP_OP_##NAME: MAPWALK( \
    { LOAD1; const double z = Zv[e]; double px, pxx; (void)z; NAME##_PARTIAL; NAME##_PARTIAL2; \
      const double a_ = AZ[e]; AX[o0] += TIMES(a_, px); \
      for (int64_t j = 0; j < K; j++) DX[o0 * K + j] += TIMES(DZ[e * K + j], px) + \
          TIMES(a_, TIMES(TX[o0 * K + j], pxx)); }); break;
#define S2(NAME) case TP_OP_##NAME: MAPWALK( \
    { LOAD2; const double z = Zv[e]; double px, py, pxx, pxy, pyy; (void)z; NAME##_PARTIAL; \
      NAME##_PARTIAL2; const double a_ = AZ[e]; AX[o0] += TIMES(a_, px); AY[o1] += TIMES(a_, py); \
      for (int64_t j = 0; j < K; j++) { \
          const double d_ = DZ[e * K + j], tx_ = TX[o0 * K + j], ty_ = TY[o1 * K + j]; \
          DX[o0 * K + j] += TIMES(d_, px) + TIMES(a_, TIMES(tx_, pxx) + TIMES(ty_, pxy)); \
          DY[o1 * K + j] += TIMES(d_, py) + TIMES(a_, TIMES(tx_, pxy) + TIMES(ty_, pyy)); } }); \
    break;
    switch (a) {
#define OP(NAME, ARITY, RESULTS, RULE, FORMULA) MAP_ROW_##RULE##_##ARITY(NAME, S)
#include "ops.def"
#undef OP
    default: return TP_EARG;
    }
#undef S1
#undef S2
#undef SW
#undef SG
    return TP_OK;
}

/* Each MAP sweep twice: NAME_unit, its vector loops alone (with the AVX clones), taken when
 * unit_rows, and its general walk (the clones of both made this file's compile 5x longer) */
#define TWO_COPIES(NAME, KK, PARAMS, ...) \
    CLONES static int NAME##_unit PARAMS { return NAME##_(__VA_ARGS__, 1); } \
    static int NAME PARAMS { \
        return unit_rows(m, KK) ? NAME##_unit(__VA_ARGS__) : NAME##_(__VA_ARGS__, 0); }
TWO_COPIES(map_values, 1, (int a, const mapping *m, const double *X, const double *Y,
                           const double *W, double *Z, int32_t iz), a, m, X, Y, W, Z, iz)
TWO_COPIES(map_tangent, K, (int a, const mapping *m, const double *V, double *T, int64_t K,
                            int32_t iz), a, m, V, T, K, iz)
TWO_COPIES(map_adjoint, K, (int a, const mapping *m, const double *V, double *A, int64_t K,
                            int32_t iz), a, m, V, A, K, iz)
TWO_COPIES(map_second, K, (int a, const mapping *m, const double *V, const double *T, double *A,
                           double *D, int64_t K, int32_t iz), a, m, V, T, A, D, K, iz)


/* Taylor (taylor.c): series of D1 coefficients per variable, S0 .. S4 scratch */
static int map_taylor(int a, const mapping *m, double *S, int64_t D1, int d, int32_t iz,
                      double *aux)
{
    const double *SX = S + (int64_t)m->x.first * D1, *SY = S + (int64_t)m->y.first * D1;
    const double *SW = S + (int64_t)m->w.first * D1;
    double *SZ = S + (int64_t)iz * D1;
    (void)SW;
#define RW(NAME) case TP_OP_##NAME: WALKM({ const double *s_ = SX[o0 * D1] != 0.0 ? \
    SY + o1 * D1 : SW + o2 * D1; memcpy(SZ + e * D1, s_, (size_t)(d + 1) * sizeof *SZ); }); break;
#define RG(NAME) case TP_OP_##NAME: WALKM({ const double x = SX[o0 * D1], y = SY[o1 * D1]; \
    const double w = SW[o2 * D1]; double z, *Z = SZ + e * D1; NAME##_PRIMAL; Z[0] = z; \
    for (int k = 1; k <= d; k++) Z[k] = 0.0; }); break;
    double *S0 = aux, *S1 = aux + D1, *S2 = aux + 2 * D1, *S3 = aux + 3 * D1, *S4 = aux + 4 * D1;
    (void)S0; (void)S1; (void)S2; (void)S3; (void)S4;
#define R1(NAME) case TP_OP_##NAME: WALK(m->x.nd, m->x.dims, m->x.st, m->sy, \
    { const double *X = SX + o0 * D1; double *Z = SZ + e * D1; const double x = X[0]; double z; \
      NAME##_PRIMAL; Z[0] = z; \
      if (ser_constant(X, d)) { for (int k = 1; k <= d; k++) Z[k] = 0.0; } \
      else { NAME##_TAYLOR; } }); break;
#define R2(NAME) case TP_OP_##NAME: WALK(m->x.nd, m->x.dims, m->x.st, m->sy, \
    { const double *X = SX + o0 * D1, *Y = SY + o1 * D1; double *Z = SZ + e * D1; \
      const double x = X[0], y = Y[0]; double z; NAME##_PRIMAL; Z[0] = z; \
      if (ser_constant(X, d) && ser_constant(Y, d)) { for (int k = 1; k <= d; k++) Z[k] = 0.0; } \
      else { NAME##_TAYLOR; } }); break;
    switch (a) {
#define OP(NAME, ARITY, RESULTS, RULE, FORMULA) MAP_ROW_##RULE##_##ARITY(NAME, R)
#include "ops.def"
#undef OP
    default: return TP_EARG;
    }
#undef R1
#undef R2
#undef RW
#undef RG
#undef CHECK_GUARD
    return TP_OK;
}

/* ---- REDUCE and PACK ------------------------------------------------------------------------ */
typedef struct { blk x, zm; } reducing;

static void reduce_of(const tp_tape *t, const int32_t *q, reducing *rd)
{
    int32_t w[2] = {0, q[2]};
    tp_blk(t, q + 3, &rd->x);
    tp_blk(t, w, &rd->zm);
}

/* A sum of a whole C-contiguous block: one accumulator (the walk's order, the same bits) */
static int whole_sum(const reducing *rd, int64_t r)
{
    if (r != 1) return 0;
    int64_t st = 1;
    for (int d = rd->x.nd - 1; d >= 0; d--) {
        if (rd->x.dims[d] != 1 && rd->x.st[d] != st) return 0;
        st *= rd->x.dims[d];
    }
    return 1;
}

/* ---- dispatch ------------------------------------------------------------------------------- */
int tp_block_values(const tp_tape *t, int op, const int32_t *q, const double *const *opnd,
                    double *Z, int32_t iz)
{
    const int64_t r = q[0], nb = (q[-1] - 3) / 2;
    switch (op) {
    case TP_OP_MAP: {
        mapping m;
        map_of(t, q, &m);
        return map_values(q[2], &m, opnd[0], opnd[m.nb > 1], opnd[2 * (m.nb > 2)], Z, iz);
    }
    case TP_OP_REDUCE: {
        reducing rd;
        reduce_of(t, q, &rd);
        const double *X = opnd[0];
        if (whole_sum(&rd, r)) {
            double sum = 0.0;
            for (int64_t i = 0; i < rd.x.size; i++) sum += X[i];
            Z[0] = sum;
            return TP_OK;
        }
        memset(Z, 0, (size_t)r * sizeof *Z);
        WALK(rd.x.nd, rd.x.dims, rd.x.st, rd.zm.st, { Z[o1] += X[o0]; });
        return TP_OK;
    }
    case TP_OP_MATMUL: return tp_matmul_values(t, q, opnd[0], opnd[1], Z);
    case TP_OP_AMAX: case TP_OP_AMIN: case TP_OP_PROD: return tp_fold_values(t, op, q, opnd[0], Z);
    case TP_OP_PACK: {
        int64_t at = 0;
        for (int64_t i = 0; i < nb; i++) {
            blk x;
            tp_blk(t, q + 3 + 2 * i, &x);
            const double *X = opnd[i];
            double *Zi = Z + at;
            WALK(x.nd, x.dims, x.st, ZEROS, { Zi[e] = X[o0]; (void)o1; });
            at += x.size;
        }
        return TP_OK;
    }
    case TP_OP_GATHER: case TP_OP_SCATTER: case TP_OP_SCATTER_ADD:
        return tp_gather_values(t, op, q, opnd, Z);
    }
    return TP_EARG;
}

int tp_block_primal(const tp_tape *t, const double *V, int op, const int32_t *q, int32_t iz,
                    double *Z)
{
    if (op == TP_OP_PACK) {                /* any number of operands: no pointer array */
        int64_t at = 0, nb = (q[-1] - 3) / 2;
        for (int64_t i = 0; i < nb; i++) {
            blk x;
            tp_blk(t, q + 3 + 2 * i, &x);
            const double *X = V + x.first;
            double *Zi = Z + at;
            WALK(x.nd, x.dims, x.st, ZEROS, { Zi[e] = X[o0]; (void)o1; });
            at += x.size;
        }
        return TP_OK;
    }
    const double *opnd[3] = {V + q[3], V + (q[-1] > 5 ? q[5] : q[3]), V + (q[-1] > 7 ? q[7] : q[3])};
    return tp_block_values(t, op, q, opnd, Z, iz);
}

int tp_block_tangent(const tp_tape *t, const double *V, double *T, int64_t K, int op,
                     const int32_t *q, int32_t iz)
{
    double *TZ = T + (int64_t)iz * K;
    switch (op) {
    case TP_OP_MAP: { mapping m; map_of(t, q, &m); return map_tangent(q[2], &m, V, T, K, iz); }
    case TP_OP_REDUCE: {
        reducing rd;
        reduce_of(t, q, &rd);
        const double *TX = T + (int64_t)rd.x.first * K;
        memset(TZ, 0, (size_t)(q[0] * K) * sizeof *TZ);
        WALK(rd.x.nd, rd.x.dims, rd.x.st, rd.zm.st,
             { for (int64_t j = 0; j < K; j++) TZ[o1 * K + j] += TX[o0 * K + j]; });
        return TP_OK;
    }
    case TP_OP_MATMUL: return tp_matmul_tangent(t, V, T, K, q, iz);
    case TP_OP_AMAX: case TP_OP_AMIN: case TP_OP_PROD: return tp_fold_tangent(t, V, T, K, op, q, iz);
    case TP_OP_PACK: {
        int64_t nb = (q[-1] - 3) / 2;
        for (int64_t i = 0; i < nb; i++) {
            blk x;
            tp_blk(t, q + 3 + 2 * i, &x);
            const double *TX = T + (int64_t)x.first * K;
            WALK(x.nd, x.dims, x.st, ZEROS, { (void)o1;
                 for (int64_t j = 0; j < K; j++) TZ[e * K + j] = TX[o0 * K + j]; });
            TZ += x.size * K;
        }
        return TP_OK;
    }
    case TP_OP_GATHER: case TP_OP_SCATTER: case TP_OP_SCATTER_ADD:
        return tp_gather_tangent(t, T, K, op, q, iz);
    }
    return TP_EARG;
}

int tp_block_adjoint(const tp_tape *t, const double *V, double *A, int64_t K, int op,
                     const int32_t *q, int32_t iz)
{
    const double *AZ = A + (int64_t)iz * K;
    switch (op) {
    case TP_OP_MAP: { mapping m; map_of(t, q, &m); return map_adjoint(q[2], &m, V, A, K, iz); }
    case TP_OP_REDUCE: {
        reducing rd;
        reduce_of(t, q, &rd);
        double *AX = A + (int64_t)rd.x.first * K;
        if (K == 1 && whole_sum(&rd, q[0])) {
            const double az = AZ[0];
            for (int64_t i = 0; i < rd.x.size; i++) AX[i] += az;
            return TP_OK;
        }
        WALK(rd.x.nd, rd.x.dims, rd.x.st, rd.zm.st,
             { for (int64_t j = 0; j < K; j++) AX[o0 * K + j] += AZ[o1 * K + j]; });
        return TP_OK;
    }
    case TP_OP_MATMUL: return tp_matmul_adjoint(t, V, A, K, q, iz);
    case TP_OP_AMAX: case TP_OP_AMIN: case TP_OP_PROD: return tp_fold_adjoint(t, V, A, K, op, q, iz);
    case TP_OP_PACK: {
        int64_t nb = (q[-1] - 3) / 2;
        for (int64_t i = 0; i < nb; i++) {
            blk x;
            tp_blk(t, q + 3 + 2 * i, &x);
            double *AX = A + (int64_t)x.first * K;
            WALK(x.nd, x.dims, x.st, ZEROS, { (void)o1;
                 for (int64_t j = 0; j < K; j++) AX[o0 * K + j] += AZ[e * K + j]; });
            AZ += x.size * K;
        }
        return TP_OK;
    }
    case TP_OP_GATHER: case TP_OP_SCATTER: case TP_OP_SCATTER_ADD:
        return tp_gather_adjoint(t, A, K, op, q, iz);
    }
    return TP_EARG;
}

int tp_block_second(const tp_tape *t, const double *V, const double *T, double *A, double *D,
                    int64_t K, int op, const int32_t *q, int32_t iz)
{
    const double *AZ = A + iz, *DZ = D + (int64_t)iz * K;
    switch (op) {
    case TP_OP_MAP: {
        mapping m;
        map_of(t, q, &m);
        return map_second(q[2], &m, V, T, A, D, K, iz);
    }
    case TP_OP_REDUCE: {
        reducing rd;
        reduce_of(t, q, &rd);
        double *AX = A + rd.x.first, *DX = D + (int64_t)rd.x.first * K;
        WALK(rd.x.nd, rd.x.dims, rd.x.st, rd.zm.st, { AX[o0] += AZ[o1];
             for (int64_t j = 0; j < K; j++) DX[o0 * K + j] += DZ[o1 * K + j]; });
        return TP_OK;
    }
    case TP_OP_MATMUL: return tp_matmul_second(t, V, T, A, D, K, q, iz);
    case TP_OP_AMAX: case TP_OP_AMIN: case TP_OP_PROD:
        return tp_fold_second(t, V, T, A, D, K, op, q, iz);
    case TP_OP_PACK: {
        int64_t nb = (q[-1] - 3) / 2;
        for (int64_t i = 0; i < nb; i++) {
            blk x;
            tp_blk(t, q + 3 + 2 * i, &x);
            double *AX = A + x.first, *DX = D + (int64_t)x.first * K;
            WALK(x.nd, x.dims, x.st, ZEROS, { (void)o1; AX[o0] += AZ[e];
                 for (int64_t j = 0; j < K; j++) DX[o0 * K + j] += DZ[e * K + j]; });
            AZ += x.size;
            DZ += x.size * K;
        }
        return TP_OK;
    }
    case TP_OP_GATHER: case TP_OP_SCATTER: case TP_OP_SCATTER_ADD:
        return tp_gather_second(t, A, D, K, op, q, iz);
    }
    return TP_EARG;
}

int tp_block_taylor(const tp_tape *t, double *S, int64_t D1, int d, int op, const int32_t *q,
                    int32_t iz, double *aux)
{
    double *SZ = S + (int64_t)iz * D1;
    switch (op) {
    case TP_OP_MAP: {
        mapping m;
        map_of(t, q, &m);
        return map_taylor(q[2], &m, S, D1, d, iz, aux);
    }
    case TP_OP_REDUCE: {
        reducing rd;
        reduce_of(t, q, &rd);
        const double *SX = S + (int64_t)rd.x.first * D1;
        memset(SZ, 0, (size_t)(q[0] * D1) * sizeof *SZ);
        WALK(rd.x.nd, rd.x.dims, rd.x.st, rd.zm.st,
             { for (int64_t k = 0; k < D1; k++) SZ[o1 * D1 + k] += SX[o0 * D1 + k]; });
        return TP_OK;
    }
    case TP_OP_MATMUL: return tp_matmul_taylor(t, S, D1, d, q, iz);
    case TP_OP_AMAX: case TP_OP_AMIN: case TP_OP_PROD: return tp_fold_taylor(t, S, D1, d, op, q, iz, aux);
    case TP_OP_PACK: {
        int64_t nb = (q[-1] - 3) / 2;
        for (int64_t i = 0; i < nb; i++) {
            blk x;
            tp_blk(t, q + 3 + 2 * i, &x);
            const double *SX = S + (int64_t)x.first * D1;
            WALK(x.nd, x.dims, x.st, ZEROS, { (void)o1;
                 memcpy(SZ + e * D1, SX + o0 * D1, (size_t)D1 * sizeof *SZ); });
            SZ += x.size * D1;
        }
        return TP_OK;
    }
    case TP_OP_GATHER: case TP_OP_SCATTER: case TP_OP_SCATTER_ADD:
        return tp_gather_taylor(t, S, D1, op, q, iz);
    }
    return TP_EARG;
}

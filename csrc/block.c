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

#define TIMES(d, p) ((d) == 0.0 ? 0.0 : (d) * (p))
static const int64_t ZEROS[TP_MAXDIM];

/* Runs the statements after s1_ for e = 0 .. prod(dims)-1 in C order, o0 and o1 the offsets of
 * element e through strides s0_ and s1_ (an odometer: one step per element, mostly one digit). */
#define WALK(nd_, dims_, s0_, s1_, ...) do { \
    int64_t i_[TP_MAXDIM] = {0}, o0 = 0, o1 = 0, n_ = 1; \
    for (int d_ = 0; d_ < (nd_); d_++) n_ *= (dims_)[d_]; \
    for (int64_t e = 0; e < n_; e++) { \
        __VA_ARGS__ \
        for (int d_ = (nd_) - 1; d_ >= 0; d_--) { \
            o0 += (s0_)[d_]; o1 += (s1_)[d_]; \
            if (++i_[d_] < (dims_)[d_]) break; \
            o0 -= (s0_)[d_] * (dims_)[d_]; o1 -= (s1_)[d_] * (dims_)[d_]; i_[d_] = 0; } } \
    } while (0)

/* MAP's element rules: MAP_ROWS after defining M1(NAME) for the unary PARTIAL ops of ops.def
 * and M2(NAME) for the binary ones (each a case of a switch on the attribute a) */
#define MAP_ROW_PARTIAL_1(NAME, M) M##1(NAME)
#define MAP_ROW_PARTIAL_2(NAME, M) M##2(NAME)
#define MAP_ROW_PARTIAL_VARIADIC(NAME, M)
#define MAP_ROW_CUSTOM_3(NAME, M)
#define MAP_ROW_GUARD_3(NAME, M)
#define MAP_ROW_PRIMITIVE_VARIADIC(NAME, M)
#define MAP_ROW_BLOCK_VARIADIC(NAME, M)

/* operands of a MAP at element e: values x, y (offsets o0, o1), ix, iy < 0 for constants */
#define LOAD1 const double x = X[o0]; const int32_t ix = cx; (void)x; (void)ix
#define LOAD2 LOAD1; const double y = Y[o1]; const int32_t iy = cy; (void)y; (void)iy

typedef struct { blk x, y; int two; const int64_t *sy; int32_t cx, cy; } mapping;

static void map_of(const tp_tape *t, const int32_t *q, mapping *m)
{
    m->two = q[-1] == 7;                   /* n = 3 + 2 * operands */
    tp_blk(t, q + 3, &m->x);
    if (m->two) tp_blk(t, q + 5, &m->y); else m->y = m->x;
    m->sy = m->two ? m->y.st : ZEROS;
    m->cx = m->x.first < 0 ? -1 : 0;
    m->cy = m->y.first < 0 ? -1 : 0;
}

static int map_values(int a, const mapping *m, const double *X, const double *Y, double *Z)
{
    const int32_t cx = m->cx, cy = m->cy;
#define P1(NAME) case TP_OP_##NAME: WALK(m->x.nd, m->x.dims, m->x.st, m->sy, \
    { LOAD1; double z; NAME##_PRIMAL; Z[e] = z; }); break;
#define P2(NAME) case TP_OP_##NAME: WALK(m->x.nd, m->x.dims, m->x.st, m->sy, \
    { LOAD2; double z; NAME##_PRIMAL; Z[e] = z; }); break;
    switch (a) {
#define OP(NAME, ARITY, RESULTS, RULE, FORMULA) MAP_ROW_##RULE##_##ARITY(NAME, P)
#include "ops.def"
#undef OP
    default: return TP_EARG;
    }
#undef P1
#undef P2
    return TP_OK;
}

static int map_tangent(int a, const mapping *m, const double *V, double *T, int64_t K, int32_t iz)
{
    const double *X = V + m->x.first, *Y = V + m->y.first, *Zv = V + iz;
    const double *TX = T + (int64_t)m->x.first * K, *TY = T + (int64_t)m->y.first * K;
    double *TZ = T + (int64_t)iz * K;
    const int32_t cx = m->cx, cy = m->cy;
#define T1(NAME) case TP_OP_##NAME: WALK(m->x.nd, m->x.dims, m->x.st, m->sy, \
    { LOAD1; const double z = Zv[e]; double px; (void)z; NAME##_PARTIAL; \
      for (int64_t j = 0; j < K; j++) TZ[e * K + j] = TIMES(TX[o0 * K + j], px); }); break;
#define T2(NAME) case TP_OP_##NAME: WALK(m->x.nd, m->x.dims, m->x.st, m->sy, \
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
    return TP_OK;
}

static int map_adjoint(int a, const mapping *m, const double *V, double *A, int64_t K, int32_t iz)
{
    const double *X = V + m->x.first, *Y = V + m->y.first, *Zv = V + iz;
    double *AX = A + (int64_t)m->x.first * K, *AY = A + (int64_t)m->y.first * K;
    const double *AZ = A + (int64_t)iz * K;
    const int32_t cx = m->cx, cy = m->cy;
#define A1(NAME) case TP_OP_##NAME: WALK(m->x.nd, m->x.dims, m->x.st, m->sy, \
    { LOAD1; const double z = Zv[e]; double px; (void)z; NAME##_PARTIAL; \
      for (int64_t j = 0; j < K; j++) AX[o0 * K + j] += TIMES(AZ[e * K + j], px); }); break;
#define A2(NAME) case TP_OP_##NAME: WALK(m->x.nd, m->x.dims, m->x.st, m->sy, \
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
    return TP_OK;
}

/* forward over reverse (sweep2_body.h): adjoints A (one per variable) and their tangents D */
static int map_second(int a, const mapping *m, const double *V, const double *T, double *A,
                      double *D, int64_t K, int32_t iz)
{
    const double *X = V + m->x.first, *Y = V + m->y.first, *Zv = V + iz;
    const double *TX = T + (int64_t)m->x.first * K, *TY = T + (int64_t)m->y.first * K;
    double *AX = A + m->x.first, *AY = A + m->y.first, *DX = D + (int64_t)m->x.first * K;
    double *DY = D + (int64_t)m->y.first * K;
    const double *AZ = A + iz, *DZ = D + (int64_t)iz * K;
    const int32_t cx = m->cx, cy = m->cy;
#define S1(NAME) case TP_OP_##NAME: WALK(m->x.nd, m->x.dims, m->x.st, m->sy, \
    { LOAD1; const double z = Zv[e]; double px, pxx; (void)z; NAME##_PARTIAL; NAME##_PARTIAL2; \
      const double a_ = AZ[e]; AX[o0] += TIMES(a_, px); \
      for (int64_t j = 0; j < K; j++) DX[o0 * K + j] += TIMES(DZ[e * K + j], px) + \
          TIMES(a_, TIMES(TX[o0 * K + j], pxx)); }); break;
#define S2(NAME) case TP_OP_##NAME: WALK(m->x.nd, m->x.dims, m->x.st, m->sy, \
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
    return TP_OK;
}

/* Taylor (taylor.c): series of D1 coefficients per variable, S0 .. S4 scratch */
static int map_taylor(int a, const mapping *m, double *S, int64_t D1, int d, int32_t iz,
                      double *aux)
{
    const double *SX = S + (int64_t)m->x.first * D1, *SY = S + (int64_t)m->y.first * D1;
    double *SZ = S + (int64_t)iz * D1;
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
                    double *Z)
{
    const int64_t r = q[0], nb = (q[-1] - 3) / 2;
    switch (op) {
    case TP_OP_MAP: {
        mapping m;
        map_of(t, q, &m);
        return map_values(q[2], &m, opnd[0], m.two ? opnd[1] : opnd[0], Z);
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
    case TP_OP_MATMUL: {
        blk x, y;
        tp_blk(t, q + 3, &x);
        tp_blk(t, q + 5, &y);
        memset(Z, 0, (size_t)r * sizeof *Z);
        return tp_gemm(x.dims[0], y.dims[1], x.dims[1], opnd[0], x.st[0], x.st[1], opnd[1],
                       y.st[0], y.st[1], Z, y.dims[1], 1);
    }
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
    (void)iz;
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
    const double *opnd[2] = {V + q[3], V + (q[-1] > 5 ? q[5] : q[3])};
    return tp_block_values(t, op, q, opnd, Z);
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

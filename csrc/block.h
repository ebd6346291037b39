/* Array block operations (tape.h, "Block operations"): the operand descriptors and the kernels
 * shared by the recording (blocktape.c) and the sweeps (block.c, matmul.c). */
#pragma once
#include <string.h>
#include "tape_impl.h"
#include "times.h"

/* AVX-512 and AVX2 clones of a hot loop's function where the CPU has them (no FMA contraction:
 * the same bits as the scalar code) */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
#define CLONES __attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#else
#define CLONES
#endif
static const int64_t ZEROS[TP_MAXDIM];   /* the strides of a broadcast scalar */

/* Runs the statements after s2_ for e = 0 .. prod(dims)-1 in C order, o0, o1 and o2 the offsets
 * of element e through strides s0_, s1_ and s2_: a tight loop along the last axis, an odometer
 * over the others (one step per row). WALK: two offset streams. */
#define WALK3(nd_, dims_, s0_, s1_, s2_, ...) \
    WALK_(nd_, dims_, s0_, s1_, s2_, l0_, l1_, l2_, , __VA_ARGS__)
/* WALK with both streams' last strides 1 (tp_unit_rows) and their elements written apart: the
 * loop along the last axis vectorises (GCC's ivdep: no dependence between its iterations) */
#define WALK_UNIT(nd_, dims_, s0_, s1_, ...) \
    WALK_(nd_, dims_, s0_, s1_, ZEROS, 1, 1, 0, _Pragma("GCC ivdep"), { (void)o2; __VA_ARGS__ })
#define WALK_(nd_, dims_, s0_, s1_, s2_, L0, L1, L2, IVDEP, ...) do { \
    const int nd_w = (nd_), lw_ = nd_w > 0 ? nd_w - 1 : 0; \
    const int64_t len_ = nd_w > 0 ? (dims_)[lw_] : 1, l0_ = nd_w > 0 ? (s0_)[lw_] : 0, \
        l1_ = nd_w > 0 ? (s1_)[lw_] : 0, l2_ = nd_w > 0 ? (s2_)[lw_] : 0; \
    int64_t i_[TP_MAXDIM] = {0}, b0_ = 0, b1_ = 0, b2_ = 0, rows_ = 1, e = 0; \
    (void)l0_; (void)l1_; (void)l2_; \
    for (int d_ = 0; d_ < lw_; d_++) rows_ *= (dims_)[d_]; \
    if (len_ == 0) rows_ = 0; \
    for (int64_t r_ = 0; r_ < rows_; r_++) { \
        IVDEP for (int64_t j_ = 0; j_ < len_; j_++, e++) { \
            const int64_t o0 = b0_ + j_ * (L0), o1 = b1_ + j_ * (L1), o2 = b2_ + j_ * (L2); \
            (void)o0; (void)o1; (void)o2; \
            __VA_ARGS__ \
        } \
        for (int d_ = lw_ - 1; d_ >= 0; d_--) { \
            b0_ += (s0_)[d_]; b1_ += (s1_)[d_]; b2_ += (s2_)[d_]; \
            if (++i_[d_] < (dims_)[d_]) break; \
            b0_ -= (s0_)[d_] * (dims_)[d_]; b1_ -= (s1_)[d_] * (dims_)[d_]; \
            b2_ -= (s2_)[d_] * (dims_)[d_]; i_[d_] = 0; } } \
    } while (0)
#define WALK(nd_, dims_, s0_, s1_, ...) WALK3(nd_, dims_, s0_, s1_, ZEROS, { (void)o2; __VA_ARGS__ })

/* A block operand: element offset o (from the strides and a multi-index) is operand code
 * first + o; b points at element 0 of the array swept (values, or direction 0 of tangents). */
typedef struct {
    int32_t first;
    int nd;
    const int64_t *dims, *st;
    int64_t size;
} blk;

static inline void tp_blk(const tp_tape *t, const int32_t *w, blk *o)
{
    const int64_t *s = tp_shape_of(t, w[1]);
    o->first = w[0];
    o->nd = (int)s[0];
    o->dims = s + 1;
    o->st = s + 1 + s[0];
    o->size = 1;
    for (int d = 0; d < o->nd; d++) o->size *= o->dims[d];
}

/* The lowest and highest operand codes of block b; 0: it is empty. */
static inline int tp_blk_span(const blk *b, int64_t *lo, int64_t *hi)
{
    if (!b->size) return 0;
    *lo = *hi = b->first;
    for (int d = 0; d < b->nd; d++) {
        int64_t e = (b->dims[d] - 1) * b->st[d];
        if (e < 0) *lo += e; else *hi += e;
    }
    return 1;
}

/* ... of the block at w (first, shape id) */
static inline int tp_span(const tp_tape *t, const int32_t *w, int64_t *lo, int64_t *hi)
{
    blk b;
    tp_blk(t, w, &b);
    return tp_blk_span(&b, lo, hi);
}

/* blocktape.c: a shape's dims and strides are in range; a block op's words are consistent with
 * t's variables, constants and shapes so far (recorder and loader share these checks) */
int tp_shape_valid(int64_t nd, const int64_t *dims, const int64_t *strides);
int tp_block_valid(const tp_tape *t, int op, const int32_t *q, int64_t nb);

/* Values of a block op's r results from operand values: opnd[i] points at operand i's element
 * 0 (V + first in a sweep). q: the op's words after n (q[0] = r). */
int tp_block_values(const tp_tape *t, int op, const int32_t *q, const double *const *opnd,
                    double *Z, int32_t iz);

/* The sweeps' block cases (sweep_body.h, sweep2_body.h, primal_body.h, taylor.c): the op at
 * first result iz, words q (after n). K directions at T[i*K + j], as the sweeps store them. */
int tp_block_primal(const tp_tape *t, const double *V, int op, const int32_t *q, int32_t iz,
                    double *Z);
int tp_block_tangent(const tp_tape *t, const double *V, double *T, int64_t K, int op,
                     const int32_t *q, int32_t iz);
int tp_block_adjoint(const tp_tape *t, const double *V, double *A, int64_t K, int op,
                     const int32_t *q, int32_t iz);
int tp_block_second(const tp_tape *t, const double *V, const double *T, double *A, double *D,
                    int64_t K, int op, const int32_t *q, int32_t iz);
int tp_block_taylor(const tp_tape *t, double *S, int64_t D1, int d, int op, const int32_t *q,
                    int32_t iz, double *aux);

/* matmul.c: C += A B for (m x p) A and (p x q) B, every matrix strided (row, column strides in
 * doubles); the BLAS dgemm when set, else the built-in blocked kernel. TP_OK or TP_ENOMEM. */
int tp_gemm(int64_t m, int64_t q, int64_t p, const double *A, int64_t a0, int64_t a1,
            const double *B, int64_t b0, int64_t b1, double *C, int64_t c0, int64_t c1);
/* MATMUL's sweeps (block.c dispatches to them) */
int tp_matmul_tangent(const tp_tape *t, const double *V, double *T, int64_t K, const int32_t *q,
                      int32_t iz);
int tp_matmul_adjoint(const tp_tape *t, const double *V, double *A, int64_t K,
                      const int32_t *q, int32_t iz);
int tp_matmul_second(const tp_tape *t, const double *V, const double *T, double *A, double *D,
                     int64_t K, const int32_t *q, int32_t iz);
int tp_matmul_taylor(const tp_tape *t, double *S, int64_t D1, int d, const int32_t *q,
                     int32_t iz);
int tp_matmul_values(const tp_tape *t, const int32_t *q, const double *X, const double *Y,
                     double *Z);

/* reduce.c: AMAX, AMIN and PROD over axes (REDUCE's words: a is the map into z's indices) */
int tp_fold_values(const tp_tape *t, int op, const int32_t *q, const double *X, double *Z);
int tp_fold_tangent(const tp_tape *t, const double *V, double *T, int64_t K, int op,
                    const int32_t *q, int32_t iz);
int tp_fold_adjoint(const tp_tape *t, const double *V, double *A, int64_t K, int op,
                    const int32_t *q, int32_t iz);
int tp_fold_second(const tp_tape *t, const double *V, const double *T, double *A, double *D,
                   int64_t K, int op, const int32_t *q, int32_t iz);
int tp_fold_taylor(const tp_tape *t, double *S, int64_t D1, int d, int op, const int32_t *q,
                   int32_t iz, double *aux);

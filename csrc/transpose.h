/* Transposes between a (B, m) array's rows of points and a tile's rows of one slot each:
 * batch.c's tiles and the native kernels of tapead/native.py. CLONES: block.h's, or empty. */
#pragma once
#include <stdint.h>
#include <string.h>
#ifndef CLONES
#define CLONES
#endif

/* dst[c * ds + r] = src[r * ss + c] for r < R, c < C: points between a (B, m) array's rows and
 * a tile's rows. 4 x 4 blocks transposed in registers (two rounds of shuffles), the edges one by
 * one: a plain copy of each number, the same bits. */
typedef double v4d __attribute__((vector_size(32)));
typedef int64_t v4i __attribute__((vector_size(32)));
CLONES __attribute__((unused)) static void transpose(double *restrict dst, int64_t ds,
                                                     const double *restrict src, int64_t ss,
                                                     int64_t R, int64_t C)
{
    const v4i lo = {0, 4, 2, 6}, hi = {1, 5, 3, 7}, first = {0, 1, 4, 5}, last = {2, 3, 6, 7};
    const int64_t R4 = R & ~(int64_t)3, C4 = C & ~(int64_t)3;
    for (int64_t c = 0; c < C4; c += 4) {            /* dst's rows 4 at a time: written in order */
        for (int64_t r = 0; r < R4; r += 4) {
            v4d a, b, e, f;
            memcpy(&a, src + r * ss + c, sizeof a);
            memcpy(&b, src + (r + 1) * ss + c, sizeof b);
            memcpy(&e, src + (r + 2) * ss + c, sizeof e);
            memcpy(&f, src + (r + 3) * ss + c, sizeof f);
            const v4d t0 = __builtin_shuffle(a, b, lo), t1 = __builtin_shuffle(a, b, hi);
            const v4d t2 = __builtin_shuffle(e, f, lo), t3 = __builtin_shuffle(e, f, hi);
            const v4d c0 = __builtin_shuffle(t0, t2, first), c1 = __builtin_shuffle(t1, t3, first);
            const v4d c2 = __builtin_shuffle(t0, t2, last), c3 = __builtin_shuffle(t1, t3, last);
            memcpy(dst + c * ds + r, &c0, sizeof c0);
            memcpy(dst + (c + 1) * ds + r, &c1, sizeof c1);
            memcpy(dst + (c + 2) * ds + r, &c2, sizeof c2);
            memcpy(dst + (c + 3) * ds + r, &c3, sizeof c3);
        }
        for (int64_t q = c; q < c + 4; q++)
            for (int64_t r = R4; r < R; r++) dst[q * ds + r] = src[r * ss + q];
    }
    for (int64_t c = C4; c < C; c++)
        for (int64_t r = 0; r < R; r++) dst[c * ds + r] = src[r * ss + c];
}

/* The same for 8 x 8 blocks (three rounds of shuffles: 24 per 64 numbers; AVX-512's vpermt2pd
 * where the compiler targets it), the edges one by one: the native kernels' tiles of 8 points. */
typedef double v8d __attribute__((vector_size(64)));
typedef int64_t v8i __attribute__((vector_size(64)));
static inline void transpose8x8(double *restrict dst, int64_t ds, const double *restrict src,
                                int64_t ss)
{
    const v8i lo = {0, 8, 2, 10, 4, 12, 6, 14}, hi = {1, 9, 3, 11, 5, 13, 7, 15};
    const v8i q0 = {0, 1, 8, 9, 4, 5, 12, 13}, q1 = {2, 3, 10, 11, 6, 7, 14, 15};
    const v8i h0 = {0, 1, 2, 3, 8, 9, 10, 11}, h1 = {4, 5, 6, 7, 12, 13, 14, 15};
    v8d r0, r1, r2, r3, r4, r5, r6, r7;       /* written out: loops over arrays of vectors */
    memcpy(&r0, src, 64);                     /* stay in memory at -O2 */
    memcpy(&r1, src + ss, 64);
    memcpy(&r2, src + 2 * ss, 64);
    memcpy(&r3, src + 3 * ss, 64);
    memcpy(&r4, src + 4 * ss, 64);
    memcpy(&r5, src + 5 * ss, 64);
    memcpy(&r6, src + 6 * ss, 64);
    memcpy(&r7, src + 7 * ss, 64);
    /* pairs of rows interleaved */
    const v8d t0 = __builtin_shuffle(r0, r1, lo), t1 = __builtin_shuffle(r0, r1, hi);
    const v8d t2 = __builtin_shuffle(r2, r3, lo), t3 = __builtin_shuffle(r2, r3, hi);
    const v8d t4 = __builtin_shuffle(r4, r5, lo), t5 = __builtin_shuffle(r4, r5, hi);
    const v8d t6 = __builtin_shuffle(r6, r7, lo), t7 = __builtin_shuffle(r6, r7, hi);
    /* then pairs of pairs: columns c | c + 4 of rows 0-3 (u0..u3) and 4-7 (u4..u7) */
    const v8d u0 = __builtin_shuffle(t0, t2, q0), u1 = __builtin_shuffle(t0, t2, q1);   /* 0|4, 2|6 */
    const v8d u2 = __builtin_shuffle(t1, t3, q0), u3 = __builtin_shuffle(t1, t3, q1);   /* 1|5, 3|7 */
    const v8d u4 = __builtin_shuffle(t4, t6, q0), u5 = __builtin_shuffle(t4, t6, q1);
    const v8d u6 = __builtin_shuffle(t5, t7, q0), u7 = __builtin_shuffle(t5, t7, q1);
    /* then rows 0-3 with rows 4-7: whole columns */
    const v8d c0 = __builtin_shuffle(u0, u4, h0), c4 = __builtin_shuffle(u0, u4, h1);
    const v8d c2 = __builtin_shuffle(u1, u5, h0), c6 = __builtin_shuffle(u1, u5, h1);
    const v8d c1 = __builtin_shuffle(u2, u6, h0), c5 = __builtin_shuffle(u2, u6, h1);
    const v8d c3 = __builtin_shuffle(u3, u7, h0), c7 = __builtin_shuffle(u3, u7, h1);
    memcpy(dst, &c0, 64);
    memcpy(dst + ds, &c1, 64);
    memcpy(dst + 2 * ds, &c2, 64);
    memcpy(dst + 3 * ds, &c3, 64);
    memcpy(dst + 4 * ds, &c4, 64);
    memcpy(dst + 5 * ds, &c5, 64);
    memcpy(dst + 6 * ds, &c6, 64);
    memcpy(dst + 7 * ds, &c7, 64);
}

static inline void transpose8(double *restrict dst, int64_t ds, const double *restrict src,
                              int64_t ss, int64_t R, int64_t C)
{
    const int64_t R8 = R & ~(int64_t)7, C8 = C & ~(int64_t)7;
    for (int64_t c = 0; c < C8; c += 8)
        for (int64_t r = 0; r < R8; r += 8) transpose8x8(dst + c * ds + r, ds, src + r * ss + c, ss);
    for (int64_t c = 0; c < C; c++)
        for (int64_t r = c < C8 ? R8 : 0; r < R; r++) dst[c * ds + r] = src[r * ss + c];
}

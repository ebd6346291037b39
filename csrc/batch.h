/* Batched replays (csrc/batch.c): B points in one call, the tape swept once per tile of points.
 * cffi parses this file like tape.h (lines starting with '#' dropped): plain declarations only.
 *
 * Point b's input is x[b*m .. b*m+m-1]; results gain the same leading axis: y is B x n, ydot
 * B x n x k, xbar B x m x k, hv B x m x k, Taylor coefficients B x n x (order+1). A per-point
 * argument (xdot, ybar, w) has a stride: the doubles between two points' blocks, or 0 for one
 * block shared by every point; xdot or ybar NULL: the unit directions (a Jacobian's, a Hessian's).
 * flips (B bytes) gets 1 where a branch guard flipped at that point: its results are not written
 * (the caller replays it on another recording), and a primitive's rules are not asked there.
 * Each returns TP_OK or a negative tp_status (a primitive's rule failing, no memory ...).
 */
#pragma once
#include <stdint.h>

int tp_forward_batch(tp_tape *t, int64_t B, const double *x, double *y, uint8_t *flips);
int tp_jvp_batch(tp_tape *t, int64_t B, const double *x, int64_t k, const double *xdot,
                 int64_t xdot_stride, double *y, double *ydot, uint8_t *flips);
int tp_vjp_batch(tp_tape *t, int64_t B, const double *x, int64_t k, const double *ybar,
                 int64_t ybar_stride, double *y, double *xbar, uint8_t *flips);
int tp_hvp_batch(tp_tape *t, int64_t B, const double *x, const double *w, int64_t w_stride,
                 int64_t k, const double *xdot, int64_t xdot_stride, double *hv, uint8_t *flips);
int tp_taylor_batch(tp_tape *t, int64_t B, const double *x, const double *v, int64_t order,
                    double *y, uint8_t *flips);   /* a loop over the points of tp_taylor */
int64_t tp_batch_tile(tp_tape *t, int64_t k, int buffers);   /* points per tile (for tests) */

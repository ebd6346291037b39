/* Internal interface between the sweep files (sweep.c, second.c, taylor.c, inspect.c) and the
 * primitive callbacks (primitive.c). */
#pragma once
#include <string.h>
#include "tape_impl.h"
#include "work.h"

#define BLOCK_BYTES ((int64_t)4 << 20)   /* tangents/adjoints of a block of directions: to stay in
                                            cache (a reverse sweep out of it costs 2x) */
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)

/* visits: 0 primal, 1 tangent, 2 adjoint, 3 second order, 4 Taylor */
static inline void tp_count(tp_tape *t, int which, int64_t visits)
{
    __atomic_fetch_add(&t->swept[which], visits, __ATOMIC_RELAXED);
}

/* Directions carried per block: as many as fit BLOCK_BYTES for `buffers` sets, at least 8 (one
 * vectorised sweep) and at most k. */
static inline int64_t tp_block(const tp_tape *t, int64_t k, int buffers)
{
    int64_t per = (t->n_consts + tp_nvars(t)) * (int64_t)sizeof(double) * buffers;
    int64_t kb = per ? BLOCK_BYTES / per : k;
    return kb < 8 ? (k < 8 ? k : 8) : (kb < k ? kb : k);
}

/* Directions actually carried for nb: 2-4 and 5-8 are padded with zero directions to the
 * sweeps compiled for K = 4 and 8 (fixed-length loops the compiler vectorises). */
static inline int64_t tp_padded(int64_t nb)
{
    return nb == 1 ? 1 : nb <= 4 ? 4 : nb <= 8 ? 8 : nb;
}

/* Rows 0..m-1 of T (stride ks) from directions j0 .. j0+nb-1 of xdot (m x k), the rest zero;
 * xdot NULL means the unit directions e_j (a Jacobian or Hessian without an m x m identity). */
static inline void tp_seed(double *T, int64_t ks, const double *xdot, int64_t m, int64_t k,
                           int64_t j0, int64_t nb)
{
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < ks; j++)
            T[i * ks + j] = j >= nb ? 0.0 : xdot ? xdot[i * k + j0 + j] : (double)(i == j0 + j);
}

static inline void tp_read_outputs(const tp_tape *t, const double *V, double *y)
{
    if (y) for (int64_t i = 0; i < t->n_outputs; i++) y[i] = V[t->outputs[i]];
}

/* The last point swept (x=None): stored only once a whole replay has succeeded. A plain copy
 * (per-element atomic stores cost 6% of a 10^5-input gradient); threads replaying one tape at
 * once may leave a mix of their points (API.md, Threads). */
static inline void tp_commit_x(tp_tape *t, const double *x)
{
    double *restrict last = t->last_x;
    const double *restrict src = x;
    const int64_t n = t->n_inputs;
    if (src != last)                       /* (Taylor's x=None sweeps last_x itself) */
        for (int64_t i = 0; i < n; i++) last[i] = src[i];
    __atomic_store_n(&t->last_set, 1, __ATOMIC_RELEASE);
}

/* Zero the variables' adjoints (or adjoint tangents) of a sweep buffer whose first `consts`
 * words are the constants'. The reverse sweeps add to a constant's adjoint but nothing reads it:
 * it is left as it is (a 10^5-element constant would cost a pass over memory per gradient).
 * The sanitizer build fills it with NaN instead (TP_POISON_CONSTS): the suite then shows that
 * no result depends on it. */
static inline void tp_clear_adjoints(double *base, int64_t consts, int64_t all)
{
#ifdef TP_POISON_CONSTS
    memset(base, 0xff, (size_t)consts * sizeof *base);
#endif
    memset(base + consts, 0, (size_t)(all - consts) * sizeof *base);
}

/* A prefix of the tape: its first `ops` operations, their operand words and the variables up to
 * theirs (inputs included). */
typedef struct { int64_t ops, args, vars; } tp_extent;

static inline tp_extent tp_whole(const tp_tape *t)
{
    tp_extent e = {t->n_ops, t->n_args, tp_nvars(t)};
    return e;
}

int tp_flipped(int64_t var, double x, double y);   /* note a flipped guard: TP_EBRANCH */
int tp_primal_at(tp_tape *t, const double *x, work_t *w, double **V, double *A);
int tp_tangent_sweep(const tp_tape *t, const double *V, double *T, int64_t k, work_t *w);
int tp_adjoint_sweep(tp_tape *t, const double *V, double *A, int64_t k, tp_extent e, work_t *w);

/* primitives: the CALL op whose results start at variable iz, with its n operand words q (q[0]
 * its number of results, q[1] its primitive's id, then its inputs; see primitive.c) */
int tp_call_primal(const double *V, double *Z, const int32_t *q, int32_t n, work_t *w);
int tp_call_tangent(const double *V, double *T, int64_t K, const int32_t *q, int32_t n,
                    int32_t iz, work_t *w);
int tp_call_adjoint(const double *V, double *A, int64_t K, const int32_t *q, int32_t n,
                    int32_t iz, work_t *w);

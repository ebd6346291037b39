/* Replay: primal, tangent (K directions) and adjoint (K weight vectors) sweeps over the tape.
 *
 * A sweep buffer holds the constants below index 0 (slot -1-c is constant c) and the variables
 * from 0 up, so an operand index addresses either without a branch. Scratch belongs to the call
 * (work.h), never to the tape: threads may sweep one closed tape at once.
 */
#include <stdlib.h>
#include <string.h>
#include "sweeps.h"
#include "block.h"
#include "rules.h"

#if defined(__GNUC__) || defined(__clang__)
#define THREADED 1               /* computed goto: one indirect jump per op handler */
#else
#define THREADED 0
#endif

#define K 1
#define SUFFIX _k1
#define DISPATCH_THREADED THREADED
#include "sweep_body.h"
#undef K
#undef SUFFIX
#undef DISPATCH_THREADED
#define K 4
#define SUFFIX _k4
#define DISPATCH_THREADED THREADED
#include "sweep_body.h"
#undef K
#undef SUFFIX
#undef DISPATCH_THREADED
#define K 8
#define SUFFIX _k8
#define DISPATCH_THREADED THREADED
#include "sweep_body.h"
#undef K
#undef SUFFIX
#undef DISPATCH_THREADED
#define K k
#define SUFFIX _kn
#define DISPATCH_THREADED 0
#include "sweep_body.h"
#undef K
#undef SUFFIX
#undef DISPATCH_THREADED

/* ---- branch guards: the first guard of a replay that flips, for this thread ---------------- */
static __thread struct { int64_t var; double x, y; } flip;

int tp_flipped(int64_t var, double x, double y)
{
    flip.var = var; flip.x = x; flip.y = y;
    return TP_EBRANCH;
}

int tp_branch_info(int64_t *var, double *xy)
{
    *var = flip.var; xy[0] = flip.x; xy[1] = flip.y;
    return TP_OK;
}

/* ---- primal -------------------------------------------------------------------------------- */
#define PRIMAL_FN primal
#define ZERO_ADJOINTS 0
#include "primal_body.h"
#undef PRIMAL_FN
#undef ZERO_ADJOINTS
#define PRIMAL_FN primal_clearing
#define ZERO_ADJOINTS 1
#include "primal_body.h"
#undef PRIMAL_FN
#undef ZERO_ADJOINTS

/* Values of every slot at the input given in np parts (part[i]: len[i] doubles, together the
 * tape's inputs in order; checked by the caller) (*V: slot 0); A, if given, gets its operations'
 * slots zeroed. TP_EBRANCH when a branch guard flips. */
static int primal_parts(tp_tape *t, int64_t np, const double *const *part, const int64_t *len,
                        work_t *w, double **V, double *A)
{
    int kept;
    double *base = work_values(w, t, t->n_consts + tp_nvars(t), &kept);
    if (!base) return TP_ENOMEM;
    double *S = base + t->n_consts;
    if (!kept && t->n_consts) memcpy(S - t->n_consts, tp_clow(t), (size_t)t->n_consts * sizeof *S);
    for (int64_t i = 0, at = 0; i < np; at += len[i++])
        if (len[i]) memcpy(S + at, part[i], (size_t)len[i] * sizeof *S);
    int rc = A ? primal_clearing(t, S, w, A) : primal(t, S, w, NULL);
    tp_count(t, 0, t->n_ops);
    *V = S;
    return rc;
}

int tp_primal_at(tp_tape *t, const double *x, work_t *w, double **V, double *A)
{
    return primal_parts(t, 1, &x, &t->n_inputs, w, V, A);
}

int tp_tangent_sweep(const tp_tape *t, const double *V, double *T, int64_t k, work_t *w)
{
    switch (k) {
    case 1: return tangent_k1(t, V, T, 1, w);
    case 4: return tangent_k4(t, V, T, 4, w);
    case 8: return tangent_k8(t, V, T, 8, w);
    default: return tangent_kn(t, V, T, k, w);
    }
}

/* Adjoints of the operations of e (the whole tape, or a prefix: tp_backward) from the last to
 * the first. The caller counts the visits (k may include padding directions). */
int tp_adjoint_sweep(tp_tape *t, const double *V, double *A, int64_t k, tp_extent e, work_t *w)
{
    switch (k) {
    case 1: return adjoint_k1(t, V, A, 1, e, w);
    case 4: return adjoint_k4(t, V, A, 4, e, w);
    case 8: return adjoint_k8(t, V, A, 8, e, w);
    default: return adjoint_kn(t, V, A, k, e, w);
    }
}

/* The shortest prefix of the tape whose variables include var: a walk over the ops counting
 * their operand words and results (the tape stores no op -> variable offsets). */
static tp_extent prefix_through(const tp_tape *t, int64_t var)
{
    tp_extent e = {0, 0, t->n_inputs};
    const int32_t *p = t->args;
    while (e.vars <= var && e.ops < t->n_ops) {
        switch (t->ops[e.ops++]) {
#define OP(NAME, ARITY, RESULTS, RULE, FORMULA) case TP_OP_##NAME: \
        e.vars += TP_RESULTS(RESULTS, p); p += TP_WORDS_##ARITY(p); break;
#include "ops.def"
#undef OP
        }
    }
    e.args = p - t->args;
    return e;
}

/* ---- entry points --------------------------------------------------------------------------- */
int tp_forward(tp_tape *t, const double *x, double *y)
{
    if (!tp_may_read(t)) return TP_ETHREAD;
    work_t w;
    double *V;
    int rc = work_begin(&w, t);
    if (rc < 0) return rc;
    if ((rc = tp_primal_at(t, x, &w, &V, NULL)) >= 0) {
        tp_read_outputs(t, V, y);
        tp_commit_x(t, V);
    }
    work_end(&w);
    return rc;
}

/* jvp and vjp: one primal sweep, then the k directions in blocks of kb (padded to ks), one
 * tangent sweep a block seeded at the inputs from xdot and read at the outputs, or one adjoint
 * sweep a block seeded at the outputs from ybar and read at the inputs. */
static int directions(tp_tape *t, int adjoint, int64_t np, const double *const *part,
                      const int64_t *len, int64_t k, const double *in, double *y, double *out)
{
    if (!tp_may_read(t)) return TP_ETHREAD;
    if (k < 1) return TP_EARG;
    work_t w;
    double *V, *base;
    int rc = work_begin(&w, t);
    if (rc < 0) return rc;
    int64_t kb = tp_block(t, k, 1), m = t->n_inputs, ns = t->n_consts + tp_nvars(t);
    if (!(base = work_buf(&w, W_DIRS, ns * tp_padded(kb)))) {
        rc = TP_ENOMEM;
        goto done;
    }
    /* one weight vector (a gradient): the primal sweep clears the operations' adjoints */
    int cleared = adjoint && k == 1;
    if ((rc = primal_parts(t, np, part, len, &w, &V, cleared ? base + t->n_consts : NULL)) < 0)
        goto done;
    tp_read_outputs(t, V, y);
    for (int64_t j0 = 0; j0 < k && rc >= 0; j0 += kb) {
        int64_t nb = k - j0 < kb ? k - j0 : kb, ks = tp_padded(nb);
        double *D = base + t->n_consts * ks;
        size_t row = (size_t)nb * sizeof(double);
        if (!adjoint) {      /* the tangent sweep writes every operation's slots */
            memset(base, 0, (size_t)(t->n_consts * ks) * sizeof(double));
            tp_seed(D, ks, in, m, k, j0, nb);
            if ((rc = tp_tangent_sweep(t, V, D, ks, &w)) < 0) break;
            for (int64_t o = 0; o < t->n_outputs; o++)
                memcpy(out + o * k + j0, D + (int64_t)t->outputs[o] * ks, row);
        } else {             /* the adjoint sweep accumulates into zeroed slots */
            tp_clear_adjoints(base, t->n_consts * ks, (cleared ? t->n_consts + m : ns) * ks);
            for (int64_t o = 0; o < t->n_outputs; o++)
                for (int64_t j = 0; j < nb; j++)
                    D[(int64_t)t->outputs[o] * ks + j] += in ? in[o * k + j0 + j] : (o == j0 + j);
            if ((rc = tp_adjoint_sweep(t, V, D, ks, tp_whole(t), &w)) < 0) break;
            if (k == 1) memcpy(out, D, (size_t)m * sizeof(double));     /* a gradient */
            else for (int64_t i = 0; i < m; i++) memcpy(out + i * k + j0, D + i * ks, row);
        }
        tp_count(t, adjoint ? 2 : 1, t->n_ops * nb);
    }
    if (rc >= 0) tp_commit_x(t, V);
done:
    work_end(&w);
    return rc;
}

int tp_jvp(tp_tape *t, const double *x, int64_t k, const double *xdot, double *y, double *ydot)
{
    return directions(t, 0, 1, &x, &t->n_inputs, k, xdot, y, ydot);
}

int tp_vjp(tp_tape *t, const double *x, int64_t k, const double *ybar, double *y, double *xbar)
{
    return directions(t, 1, 1, &x, &t->n_inputs, k, ybar, y, xbar);
}

/* tp_vjp with x in np parts (x's pieces as the caller holds them: no joined copy) */
int tp_vjp_parts(tp_tape *t, int64_t np, const double *const *part, const int64_t *len,
                 int64_t k, const double *ybar, double *y, double *xbar)
{
    if (!tp_may_read(t)) return TP_ETHREAD;
    int64_t left = t->n_inputs;
    if (np < 1) return TP_EARG;
    for (int64_t i = 0; i < np; i++) {
        if (len[i] < 0 || len[i] > left || (len[i] && !part[i])) return TP_EARG;
        left -= len[i];
    }
    if (left) return TP_EARG;
    return directions(t, 1, np, part, len, k, ybar, y, xbar);
}

/* Adjoints of variables 0 .. n-1 (into adj) from root's, at the values of the recording: the
 * adjoint sweep over the ops up to the one that wrote root (all of a call's outputs), reading
 * the tape's own constants and values (laid out as a sweep buffer: tape_impl.h). */
int tp_backward(tp_tape *t, int64_t root, double seed, double *adj, int64_t n)
{
    if (!tp_may_read(t)) return TP_ETHREAD;
    if (root < 0 || root >= tp_nvars(t) || n < 0 || n > tp_nvars(t)) return TP_EARG;
    tp_extent e = prefix_through(t, root);
    int64_t ns = t->n_consts + e.vars;
    work_t w;
    int rc = work_begin(&w, t);
    if (rc < 0) return rc;
    double *abase = work_buf(&w, W_DIRS, ns);
    if (abase) {
        const double *V = t->vals;
        double *A = abase + t->n_consts;
        tp_clear_adjoints(abase, t->n_consts, ns);
        A[root] = seed;
        if ((rc = tp_adjoint_sweep(t, V, A, 1, e, &w)) >= 0) {
            int64_t r = n < root + 1 ? n : root + 1;      /* later variables: no adjoint */
            memcpy(adj, A, (size_t)r * sizeof(double));
            memset(adj + r, 0, (size_t)(n - r) * sizeof(double));
        }
        tp_count(t, 2, e.ops);
    } else rc = TP_ENOMEM;
    work_end(&w);
    return rc;
}

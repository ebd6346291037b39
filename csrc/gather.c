/* Array indexing and functional updates: GATHER, SCATTER, SCATTER_ADD (tape.h, "Block
 * operations") and the index table they read. All three are linear with unit coefficients, so
 * every sweep copies or accumulates W doubles per element: W = 1 for values, K tangents or
 * adjoints, D1 Taylor coefficients; second order is the adjoint pass on A and again on D. */
#include <stdlib.h>
#include <string.h>
#include "gather.h"

/* ---- the index table ------------------------------------------------------------------------ */
/* n words 0 <= idx[i] < 2**31 - 1 as a new entry; returns its id */
int32_t tp_indices(tp_tape *t, const int64_t *idx, int64_t n)
{
    int rc = tp_may_record(t);
    if (rc < 0) return rc;
    if (n < 0) return TP_EARG;
    if (n > INT64_MAX / 8 - t->n_ixw) return TP_ETOOBIG;  /* (before n_ixw + n can overflow) */
    for (int64_t i = 0; i < n; i++)
        if (idx[i] < 0 || idx[i] >= INT32_MAX) return TP_EARG;
    if (t->n_index >= INT32_MAX) return TP_ETOOBIG;
    if ((rc = tp_grow((void **)&t->ixw, &t->cap_ixw, t->n_ixw + n, sizeof *t->ixw,
                      INT64_MAX / 8)) < 0 ||
        (rc = tp_grow((void **)&t->ix_at, &t->cap_index, t->n_index + 1, sizeof *t->ix_at,
                      INT32_MAX)) < 0) return rc;
    for (int64_t i = 0; i < n; i++) t->ixw[t->n_ixw + i] = (int32_t)idx[i];
    t->ix_at[t->n_index] = t->n_ixw;
    t->n_ixw += n;
    return (int32_t)t->n_index++;
}

int64_t tp_index_words(const tp_tape *t, int32_t id, int32_t *out)
{
    if (!tp_may_read(t)) return TP_ETHREAD;
    if (id < 0 || id >= t->n_index) return TP_EARG;
    int64_t n;
    const int32_t *w = tp_index_of(t, id, &n);
    if (out && n) memcpy(out, w, (size_t)n * sizeof *out);
    return n;
}

/* ---- an op's operands and indices ----------------------------------------------------------- */
typedef struct {
    blk x, y;                  /* the operand indexed; y the values written (SCATTER*) */
    const int32_t *pos, *src;  /* GATHER: x's element of each result; SCATTER*: z's, y's */
    int64_t m, r;              /* indices; results */
} indexing;

static void index_of(const tp_tape *t, int op, const int32_t *q, indexing *g)
{
    int64_t n;
    g->pos = tp_index_of(t, q[2], &n);
    g->r = q[0];
    tp_blk(t, q + 3, &g->x);
    if (op == TP_OP_GATHER) { g->y = g->x; g->src = NULL; g->m = n; return; }
    tp_blk(t, q + 5, &g->y);
    g->m = n / 2;
    g->src = g->pos + g->m;
}

/* The op's words q (nb operands) are consistent: every index in range of what it indexes. */
int tp_gather_valid(const tp_tape *t, int op, const int32_t *q, int64_t nb)
{
    if (q[2] < 0 || q[2] >= t->n_index || nb != (op == TP_OP_GATHER ? 1 : 2)) return 0;
    indexing g;
    int64_t n;
    tp_index_of(t, q[2], &n);
    index_of(t, op, q, &g);
    if (g.x.nd != 1 || g.y.nd != 1) return 0;
    if (op == TP_OP_GATHER) {
        if (n != g.r) return 0;
        for (int64_t e = 0; e < g.m; e++)
            if (g.pos[e] >= g.x.dims[0]) return 0;
        return 1;
    }
    if (n % 2 || g.x.dims[0] != g.r) return 0;
    for (int64_t e = 0; e < g.m; e++)
        if (g.pos[e] >= g.r || g.src[e] >= g.y.dims[0] ||
            (op == TP_OP_SCATTER && e && g.pos[e] <= g.pos[e - 1])) return 0;
    return 1;
}

/* ---- the two passes ------------------------------------------------------------------------- */
/* Z (the results, W doubles each) from X and Y (operands' element 0, W doubles per element) */
static void forward(int op, const indexing *g, const double *X, const double *Y, double *Z,
                    int64_t W)
{
    const int64_t sx = g->x.st[0] * W, sy = g->y.st[0] * W;
    if (op == TP_OP_GATHER) {
        for (int64_t e = 0; e < g->r; e++)
            memcpy(Z + e * W, X + g->pos[e] * sx, (size_t)W * sizeof *Z);
        return;
    }
    for (int64_t p = 0; p < g->r; p++) memcpy(Z + p * W, X + p * sx, (size_t)W * sizeof *Z);
    for (int64_t e = 0; e < g->m; e++) {
        double *z = Z + g->pos[e] * W;
        const double *y = Y + g->src[e] * sy;
        if (op == TP_OP_SCATTER) memcpy(z, y, (size_t)W * sizeof *z);
        else for (int64_t j = 0; j < W; j++) z[j] += y[j];
    }
}

/* the adjoints of X and Y accumulate those of Z (SCATTER: x's at positions not written) */
static void backward(int op, const indexing *g, double *AX, double *AY, const double *AZ,
                     int64_t W)
{
    const int64_t sx = g->x.st[0] * W, sy = g->y.st[0] * W;
    if (op == TP_OP_GATHER) {
        for (int64_t e = 0; e < g->r; e++)
            for (int64_t j = 0; j < W; j++) AX[g->pos[e] * sx + j] += AZ[e * W + j];
        return;
    }
    for (int64_t p = 0, e = 0; p < g->r; p++) {
        if (op == TP_OP_SCATTER && e < g->m && g->pos[e] == p) { e++; continue; }  /* ascending */
        for (int64_t j = 0; j < W; j++) AX[p * sx + j] += AZ[p * W + j];
    }
    for (int64_t e = 0; e < g->m; e++)
        for (int64_t j = 0; j < W; j++) AY[g->src[e] * sy + j] += AZ[g->pos[e] * W + j];
}

/* ---- the sweeps ----------------------------------------------------------------------------- */
int tp_gather_values(const tp_tape *t, int op, const int32_t *q, const double *const *opnd,
                     double *Z)
{
    indexing g;
    index_of(t, op, q, &g);
    forward(op, &g, opnd[0], op == TP_OP_GATHER ? opnd[0] : opnd[1], Z, 1);
    return TP_OK;
}

/* the op's pass over B, W doubles per variable: forward, or backward (adjoints) */
static int pass(const tp_tape *t, int op, const int32_t *q, int32_t iz, double *B, int64_t W,
                int back)
{
    indexing g;
    index_of(t, op, q, &g);
    double *X = B + g.x.first * W, *Y = B + g.y.first * W, *Z = B + iz * W;
    if (back) backward(op, &g, X, Y, Z, W);
    else forward(op, &g, X, Y, Z, W);
    return TP_OK;
}

int tp_gather_tangent(const tp_tape *t, double *T, int64_t K, int op, const int32_t *q,
                      int32_t iz)
{
    return pass(t, op, q, iz, T, K, 0);
}

int tp_gather_adjoint(const tp_tape *t, double *A, int64_t K, int op, const int32_t *q,
                      int32_t iz)
{
    return pass(t, op, q, iz, A, K, 1);
}

int tp_gather_second(const tp_tape *t, double *A, double *D, int64_t K, int op,
                     const int32_t *q, int32_t iz)
{
    pass(t, op, q, iz, A, 1, 1);
    return pass(t, op, q, iz, D, K, 1);
}

int tp_gather_taylor(const tp_tape *t, double *S, int64_t D1, int op, const int32_t *q,
                     int32_t iz)
{
    return pass(t, op, q, iz, S, D1, 0);
}

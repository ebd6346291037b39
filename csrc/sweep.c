/* Replay: primal, tangent (K directions) and adjoint (K weight vectors) sweeps over the tape.
 *
 * A sweep buffer holds the constants below index 0 (slot -1-c is constant c) and the variables
 * from 0 up, so an operand index addresses either without a branch. Scratch belongs to the
 * calling thread (a small per-thread cache, so repeated replays do not fault fresh pages in),
 * never to the tape: threads may sweep one closed tape at once.
 */
#include <stdlib.h>
#include <string.h>
#include "tape_impl.h"
#include "series.h"
#include "rules.h"

#if defined(__GNUC__) || defined(__clang__)
#define THREADED 1               /* computed goto: one indirect jump per op handler */
#else
#define THREADED 0
#endif

#define SCRATCH_BUDGET ((int64_t)256 << 20)   /* bytes of tangents/adjoints per block */
#define CACHE_LIMIT ((size_t)2 << 30)         /* larger scratch is returned after the call */

#define K 1
#define SUFFIX _k1
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

#define K 1
#define SUFFIX _k1
#include "sweep2_body.h"
#undef K
#undef SUFFIX
#define K k
#define SUFFIX _kn
#include "sweep2_body.h"
#undef K
#undef SUFFIX

/* ---- per-thread scratch: values; tangents or adjoints; adjoint tangents ---------------------- */
#define N_SCRATCH 4
typedef struct { double *buf[N_SCRATCH]; size_t cap[N_SCRATCH]; } scratch_t;
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *p)
{
    scratch_t *s = p;
    for (int i = 0; i < N_SCRATCH; i++) free(s->buf[i]);
    free(s);
}

static void scratch_init(void) { pthread_key_create(&scratch_key, scratch_free); }

/* Buffer `which` with room for n doubles, or NULL. */
static double *scratch(int which, int64_t n)
{
    pthread_once(&scratch_once, scratch_init);
    scratch_t *s = pthread_getspecific(scratch_key);
    if (!s) {
        if (!(s = calloc(1, sizeof *s))) return NULL;
        if (pthread_setspecific(scratch_key, s)) { free(s); return NULL; }
    }
    if (n < 1) n = 1;
    if ((uint64_t)n > SIZE_MAX / sizeof(double)) return NULL;
    if ((size_t)n > s->cap[which]) {
        free(s->buf[which]);
        s->buf[which] = malloc((size_t)n * sizeof(double));
        s->cap[which] = s->buf[which] ? (size_t)n : 0;
    }
    return s->buf[which];
}

/* Give back what is too large to keep cached between calls. */
static void scratch_trim(void)
{
    scratch_t *s = pthread_getspecific(scratch_key);
    for (int i = 0; s && i < N_SCRATCH; i++)
        if (s->cap[i] * sizeof(double) > CACHE_LIMIT) {
            free(s->buf[i]); s->buf[i] = NULL; s->cap[i] = 0;
        }
}

/* ---- branch guards: the first guard of a replay that flips, for this thread ---------------- */
static __thread struct { int64_t var; double x, y; } flip;

static int flipped(int64_t var, double x, double y)
{
    flip.var = var; flip.x = x; flip.y = y;
    return TP_EBRANCH;
}

int tp_branch_info(int64_t *var, double *xy)
{
    *var = flip.var; xy[0] = flip.x; xy[1] = flip.y;
    return TP_OK;
}

static void count(tp_tape *t, int which, int64_t visits)
{
    __atomic_fetch_add(&t->swept[which], visits, __ATOMIC_RELAXED);
}

/* ---- primal -------------------------------------------------------------------------------- */
static int primal(const tp_tape *t, double *V)
{
    const uint8_t *op = t->ops, *const end = t->ops + t->n_ops;
    const int32_t *p = t->args;
    double *Z = V + t->n_inputs;
#define LOAD_1 const double x = V[p[0]]; (void)x
#define LOAD_2 LOAD_1; const double y = V[p[1]]; (void)y
#define LOAD_3 LOAD_2; const double w = V[p[2]]; (void)w
#define PRIMAL_1(NAME) { LOAD_1; double z; NAME##_PRIMAL; *Z = z; p += 1; }
#define PRIMAL_2(NAME) { LOAD_2; double z; NAME##_PRIMAL; *Z = z; p += 2; }
#define PRIMAL_3(NAME) { LOAD_3; double z; NAME##_PRIMAL; *Z = z; p += 3; }
#define PRIMAL_VARIADIC(NAME) { const int32_t n = p[0]; const int32_t *q = p + 1; double z; \
                                NAME##_PRIMAL; *Z = z; p += n + 2; }
#define VAL(i) V[q[i]]
#define CHECK_GUARD(z, w) if ((w) == (w) && (z) != (w)) return flipped(Z - V, x, y)
#if THREADED
    static const void *const label[] = {
#define OP(NAME, ARITY, RULE, FORMULA) &&primal_##NAME,
#include "ops.def"
#undef OP
    };
#define NEXT { Z++; if (++op == end) return TP_OK; goto *label[*op]; }
    if (op == end) return TP_OK;
    goto *label[*op];
#define OP(NAME, ARITY, RULE, FORMULA) primal_##NAME: PRIMAL_##ARITY(NAME); NEXT
#include "ops.def"
#undef OP
#undef NEXT
#else
    for (; op < end; op++, Z++) {
        switch (*op) {
#define OP(NAME, ARITY, RULE, FORMULA) case TP_OP_##NAME: PRIMAL_##ARITY(NAME); break;
#include "ops.def"
#undef OP
        }
    }
    return TP_OK;
#endif
#undef VAL
#undef CHECK_GUARD
}

/* Values of every slot at input x, in scratch buffer 0 (*V: slot 0); TP_EBRANCH when a branch
 * guard flips. */
static int primal_at(tp_tape *t, const double *x, double **V)
{
    double *base = scratch(0, t->n_consts + tp_nvars(t));
    if (!base) return TP_ENOMEM;
    double *S = base + t->n_consts;
    for (int64_t c = 0; c < t->n_consts; c++) S[-1 - c] = t->consts[c];
    memcpy(S, x, (size_t)t->n_inputs * sizeof *x);
    for (int64_t i = 0; i < t->n_inputs; i++)
        __atomic_store(&t->last_x[i], &x[i], __ATOMIC_RELAXED);
    int rc = primal(t, S);
    count(t, 0, t->n_ops);
    *V = S;
    return rc;
}

static void read_outputs(const tp_tape *t, const double *V, double *y)
{
    if (y) for (int64_t i = 0; i < t->n_outputs; i++) y[i] = V[t->outputs[i]];
}

int tp_forward(tp_tape *t, const double *x, double *y)
{
    if (!tp_may_read(t)) return TP_ETHREAD;
    double *V;
    int rc = primal_at(t, x, &V);
    if (rc < 0) return rc;
    read_outputs(t, V, y);
    scratch_trim();
    return TP_OK;
}

/* Directions are carried kb at a time, kb as large as the scratch budget allows. */
static int64_t block(const tp_tape *t, int64_t k)
{
    int64_t per = (t->n_consts + tp_nvars(t)) * (int64_t)sizeof(double);
    int64_t kb = per ? SCRATCH_BUDGET / per : k;
    return kb < 1 ? 1 : (kb < k ? kb : k);
}

int tp_jvp(tp_tape *t, const double *x, int64_t k, const double *xdot, double *y, double *ydot)
{
    if (!tp_may_read(t)) return TP_ETHREAD;
    if (k < 1) return TP_EARG;
    double *V;
    int rc = primal_at(t, x, &V);
    if (rc < 0) return rc;
    read_outputs(t, V, y);
    int64_t kb = block(t, k), m = t->n_inputs;
    double *tbase = scratch(1, (t->n_consts + tp_nvars(t)) * kb);
    if (!tbase) return TP_ENOMEM;
    for (int64_t j0 = 0; j0 < k; j0 += kb) {
        int64_t nb = k - j0 < kb ? k - j0 : kb;
        memset(tbase, 0, (size_t)(t->n_consts * nb) * sizeof(double));
        double *T = tbase + t->n_consts * nb;
        for (int64_t i = 0; i < m; i++)
            memcpy(T + i * nb, xdot + i * k + j0, (size_t)nb * sizeof(double));
        if (nb == 1) tangent_k1(t, V, T, 1); else tangent_kn(t, V, T, nb);
        for (int64_t o = 0; o < t->n_outputs; o++)
            memcpy(ydot + o * k + j0, T + (int64_t)t->outputs[o] * nb, (size_t)nb * sizeof(double));
        count(t, 1, t->n_ops * nb);
    }
    scratch_trim();
    return TP_OK;
}

static void adjoint(tp_tape *t, const double *V, double *A, int64_t k, int64_t nops)
{
    const int32_t *end = t->args + t->n_args;
    if (nops < t->n_ops) {           /* a prefix: find where its operands end */
        const int32_t *p = t->args;
        for (int64_t o = 0; o < nops; o++) {
            int a = tp_op_arity[t->ops[o]];
            p += a == VARIADIC ? p[0] + 2 : a;
        }
        end = p;
    }
    if (k == 1) adjoint_k1(t, V, A, 1, nops, end); else adjoint_kn(t, V, A, k, nops, end);
    count(t, 2, nops * k);
}

int tp_vjp(tp_tape *t, const double *x, int64_t k, const double *ybar, double *y, double *xbar)
{
    if (!tp_may_read(t)) return TP_ETHREAD;
    if (k < 1) return TP_EARG;
    double *V;
    int rc = primal_at(t, x, &V);
    if (rc < 0) return rc;
    read_outputs(t, V, y);
    int64_t kb = block(t, k), m = t->n_inputs;
    double *abase = scratch(1, (t->n_consts + tp_nvars(t)) * kb);
    if (!abase) return TP_ENOMEM;
    for (int64_t j0 = 0; j0 < k; j0 += kb) {
        int64_t nb = k - j0 < kb ? k - j0 : kb;
        memset(abase, 0, (size_t)((t->n_consts + tp_nvars(t)) * nb) * sizeof(double));
        double *A = abase + t->n_consts * nb;
        for (int64_t o = 0; o < t->n_outputs; o++)
            for (int64_t j = 0; j < nb; j++)
                A[(int64_t)t->outputs[o] * nb + j] += ybar[o * k + j0 + j];
        adjoint(t, V, A, nb, t->n_ops);
        for (int64_t i = 0; i < m; i++)
            memcpy(xbar + i * k + j0, A + i * nb, (size_t)nb * sizeof(double));
    }
    scratch_trim();
    return TP_OK;
}

int tp_backward(tp_tape *t, int64_t root, double seed, double *adj)
{
    if (!tp_may_read(t)) return TP_ETHREAD;
    if (root < 0 || root >= tp_nvars(t)) return TP_EARG;
    int64_t nvars = root + 1, nops = nvars - t->n_inputs;
    if (nops < 0) nops = 0;
    double *vbase = scratch(0, t->n_consts + nvars), *abase = scratch(1, t->n_consts + nvars);
    if (!vbase || !abase) return TP_ENOMEM;
    double *V = vbase + t->n_consts, *A = abase + t->n_consts;
    for (int64_t c = 0; c < t->n_consts; c++) V[-1 - c] = t->consts[c];
    memcpy(V, t->vals, (size_t)nvars * sizeof(double));
    memset(abase, 0, (size_t)(t->n_consts + nvars) * sizeof(double));
    A[root] = seed;
    adjoint(t, V, A, 1, nops);
    memcpy(adj, A, (size_t)nvars * sizeof(double));
    scratch_trim();
    return TP_OK;
}

/* ---- second order: Hessian-vector products, forward over reverse ---------------------------- */

/* hv (m x k) = H·xdot for the k directions of xdot (m x k), H the Hessian of w·y at x (w: one
 * weight per output); g (m, optional) = the gradient of w·y. */
int tp_hvp(tp_tape *t, const double *x, const double *w, int64_t k, const double *xdot,
           double *y, double *g, double *hv)
{
    if (!tp_may_read(t)) return TP_ETHREAD;
    if (k < 1) return TP_EARG;
    double *V;
    int rc = primal_at(t, x, &V);
    if (rc < 0) return rc;
    read_outputs(t, V, y);
    int64_t ns = t->n_consts + tp_nvars(t), m = t->n_inputs;
    int64_t kb = block(t, 2 * k);
    kb = kb / 2 < 1 ? 1 : (kb / 2 < k ? kb / 2 : k);
    double *tbase = scratch(1, ns * kb), *dbase = scratch(2, ns * kb), *abase = scratch(3, ns);
    if (!tbase || !dbase || !abase) return TP_ENOMEM;
    for (int64_t j0 = 0; j0 < k; j0 += kb) {
        int64_t nb = k - j0 < kb ? k - j0 : kb;
        double *T = tbase + t->n_consts * nb, *D = dbase + t->n_consts * nb;
        double *A = abase + t->n_consts;
        memset(tbase, 0, (size_t)(t->n_consts * nb) * sizeof(double));
        for (int64_t i = 0; i < m; i++)
            memcpy(T + i * nb, xdot + i * k + j0, (size_t)nb * sizeof(double));
        if (nb == 1) tangent_k1(t, V, T, 1); else tangent_kn(t, V, T, nb);
        memset(abase, 0, (size_t)ns * sizeof(double));
        memset(dbase, 0, (size_t)(ns * nb) * sizeof(double));
        for (int64_t o = 0; o < t->n_outputs; o++) A[t->outputs[o]] += w[o];
        if (nb == 1) second_k1(t, V, T, A, D, 1); else second_kn(t, V, T, A, D, nb);
        for (int64_t i = 0; i < m; i++)
            memcpy(hv + i * k + j0, D + i * nb, (size_t)nb * sizeof(double));
        if (g && j0 == 0) memcpy(g, A, (size_t)m * sizeof(double));
        count(t, 1, t->n_ops * nb);
        count(t, 3, t->n_ops * nb);
    }
    scratch_trim();
    return TP_OK;
}

/* ---- Taylor: coefficients y_0 .. y_d of t -> f(x + t v), univariate Taylor propagation ------ */

/* y (n x (d+1)): coefficient k of output o at o*(d+1) + k. */
int tp_taylor(tp_tape *t, const double *x, const double *v, int64_t order, double *y)
{
    if (!tp_may_read(t)) return TP_ETHREAD;
    if (order < 0 || order > 1000) return TP_EARG;
    const int d = (int)order;
    const int64_t D1 = d + 1, ns = t->n_consts + tp_nvars(t);
    double *base = scratch(1, ns * D1), *aux = scratch(2, 3 * D1);
    if (!base || !aux) return TP_ENOMEM;
    double *Sr = base + t->n_consts * D1, *S0 = aux, *S1 = aux + D1, *S2 = aux + 2 * D1;
    memset(base, 0, (size_t)(ns * D1) * sizeof(double));
    for (int64_t c = 0; c < t->n_consts; c++) Sr[(-1 - c) * D1] = t->consts[c];
    for (int64_t i = 0; i < t->n_inputs; i++) {
        Sr[i * D1] = x[i];
        if (d > 0) Sr[i * D1 + 1] = v[i];
        __atomic_store(&t->last_x[i], &x[i], __ATOMIC_RELAXED);
    }
    const int32_t *p = t->args;
    int32_t iz = (int32_t)t->n_inputs;
#define SERIES(i) (Sr + (int64_t)(i) * D1)
#define TAYLOR_1(NAME) { const int32_t ix = p[0]; const double *X = SERIES(ix); \
    const double x = X[0]; double z; (void)ix; NAME##_PRIMAL; Z[0] = z; NAME##_TAYLOR; p += 1; }
#define TAYLOR_2(NAME) { const int32_t ix = p[0], iy = p[1]; \
    const double *X = SERIES(ix), *Y = SERIES(iy); const double x = X[0], y = Y[0]; double z; \
    (void)ix; (void)iy; NAME##_PRIMAL; Z[0] = z; NAME##_TAYLOR; p += 2; }
#define TAYLOR_3(NAME) { const double *X = SERIES(p[0]), *Y = SERIES(p[1]), *W = SERIES(p[2]); \
    const double x = X[0], y = Y[0], w = W[0]; double z; (void)w; (void)W; NAME##_PRIMAL; \
    Z[0] = z; NAME##_TAYLOR; p += 3; }
#define TAYLOR_VARIADIC(NAME) { const int32_t n = p[0]; const int32_t *q = p + 1; double z; \
    NAME##_PRIMAL; Z[0] = z; NAME##_TAYLOR; p += n + 2; }
#define VAL(i) SERIES(q[i])[0]
#define SER(i) SERIES(q[i])
#define CHECK_GUARD(z, w) if ((w) == (w) && (z) != (w)) return flipped(iz, x, y)
    for (int64_t o = 0; o < t->n_ops; o++, iz++) {
        double *Z = SERIES(iz);
        switch (t->ops[o]) {
#define OP(NAME, ARITY, RULE, FORMULA) case TP_OP_##NAME: TAYLOR_##ARITY(NAME); break;
#include "ops.def"
#undef OP
        }
    }
#undef VAL
#undef SER
#undef CHECK_GUARD
    for (int64_t o = 0; o < t->n_outputs; o++)
        memcpy(y + o * D1, SERIES(t->outputs[o]), (size_t)D1 * sizeof(double));
#undef SERIES
    count(t, 0, t->n_ops);
    count(t, 4, t->n_ops);
    scratch_trim();
    return TP_OK;
}

/* ---- whole-tape inspection (traces, graphs): every variable's value, tangent, adjoint ------- */

/* vals, tans, adjs: n_inputs + n_ops doubles each (any may be NULL); v: m directions entries
 * (one direction), w: n_outputs weights. partials: one per entry of the operand stream (the
 * variadic counts get 0), the local partial dz/d(operand) at x. */
int tp_inspect(tp_tape *t, const double *x, const double *v, const double *w, double *vals,
               double *tans, double *adjs, double *partials)
{
    if (!tp_may_read(t)) return TP_ETHREAD;
    int64_t nv = tp_nvars(t);
    double *V;
    int rc = primal_at(t, x, &V);
    if (rc < 0) return rc;
    if (vals) memcpy(vals, V, (size_t)nv * sizeof(double));
    double *base = scratch(1, t->n_consts + nv);
    if (!base) return TP_ENOMEM;
    double *S = base + t->n_consts;
    if (tans && v) {
        memset(base, 0, (size_t)t->n_consts * sizeof(double));
        memcpy(S, v, (size_t)t->n_inputs * sizeof(double));
        tangent_k1(t, V, S, 1);
        count(t, 1, t->n_ops);
        memcpy(tans, S, (size_t)nv * sizeof(double));
    }
    if (adjs && w) {
        memset(base, 0, (size_t)(t->n_consts + nv) * sizeof(double));
        for (int64_t o = 0; o < t->n_outputs; o++) S[t->outputs[o]] += w[o];
        adjoint(t, V, S, 1, t->n_ops);
        memcpy(adjs, S, (size_t)nv * sizeof(double));
    }
    if (partials) {
        const int32_t *p = t->args;
        double *out = partials;
        int32_t iz = (int32_t)t->n_inputs;
        for (int64_t o = 0; o < t->n_ops; o++, iz++) {
            const double z = V[iz]; (void)z;
            switch (t->ops[o]) {
#define VAL(i) V[q[i]]
#define INSPECT_1(NAME) { const int32_t ix = p[0]; const double x = V[ix]; double px; (void)ix; \
    (void)x; NAME##_PARTIAL; *out++ = px; p += 1; }
#define INSPECT_2(NAME) { const int32_t ix = p[0], iy = p[1]; const double x = V[ix], y = V[iy]; \
    double px, py; (void)ix; (void)iy; (void)x; (void)y; NAME##_PARTIAL; *out++ = px; \
    *out++ = py; p += 2; }
#define INSPECT_3(NAME) { const int32_t ix = p[0], iy = p[1], iw = p[2]; \
    const double x = V[ix], y = V[iy], w = V[iw]; double px, py, pw; (void)ix; (void)iy; \
    (void)iw; (void)x; (void)y; (void)w; NAME##_PARTIAL; *out++ = px; *out++ = py; \
    *out++ = pw; p += 3; }
#define INSPECT_VARIADIC(NAME) { const int32_t n = p[0]; const int32_t *q = p + 1; (void)q; \
    *out++ = 0.0; for (int32_t i = 0; i < n; i++) { double pi; NAME##_PARTIAL; *out++ = pi; } \
    *out++ = 0.0; p += n + 2; }
#define OP(NAME, ARITY, RULE, FORMULA) case TP_OP_##NAME: INSPECT_##ARITY(NAME); break;
#include "ops.def"
#undef OP
#undef VAL
            }
        }
    }
    scratch_trim();
    return TP_OK;
}

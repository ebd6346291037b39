/* MATMUL: z = x @ y for an (.., m, p) block x and a (.., p, q) block y, every sweep, one product
 * per index of the leading (batch) axes (broadcast ones have stride 0); bilinear, so its second
 * order is products too. All of it is C += A B on strided matrices (tp_gemm): the BLAS
 * dgemm when Python set one (SciPy's, tapead/array.py), else a blocked kernel here. A factor whose
 * block of tangents or adjoints is all zero is skipped (the sweeps' zero rule, per block). */
#include <stdlib.h>
#include <string.h>
#include "block.h"

typedef void dgemm_fn(const char *ta, const char *tb, const int *m, const int *n, const int *k,
                      const double *alpha, const double *a, const int *lda, const double *b,
                      const int *ldb, const double *beta, double *c, const int *ldc);
static dgemm_fn *dgemm_;

int tp_set_dgemm(void *f)
{
    __atomic_store_n(&dgemm_, (dgemm_fn *)f, __ATOMIC_RELEASE);
    return TP_OK;
}

int tp_blas(void) { return __atomic_load_n(&dgemm_, __ATOMIC_ACQUIRE) != NULL; }

#define KC 128                 /* a KC x NC panel of B (packed, 512 KB) per pass over A's rows */
#define NC 512

/* skip: a zero entry of A or of B contributes nothing, even against an Inf or NaN of the other
 * factor (the sweeps' TIMES rule for a zero tangent, adjoint or partial) */
static int gemm_builtin(int64_t m, int64_t q, int64_t p, const double *A, int64_t a0, int64_t a1,
                        const double *B, int64_t b0, int64_t b1, double *C, int64_t c0, int64_t c1,
                        int skip)
{
    double *bp = malloc(KC * NC * sizeof *bp), *row = malloc(NC * sizeof *row);
    if (!bp || !row) { free(bp); free(row); return TP_ENOMEM; }
    for (int64_t k0 = 0; k0 < p; k0 += KC) {
        const int64_t kc = p - k0 < KC ? p - k0 : KC;
        for (int64_t j0 = 0; j0 < q; j0 += NC) {
            const int64_t nc = q - j0 < NC ? q - j0 : NC;
            for (int64_t k = 0; k < kc; k++)
                for (int64_t j = 0; j < nc; j++) bp[k * nc + j] = B[(k0 + k) * b0 + (j0 + j) * b1];
            for (int64_t i = 0; i < m; i++) {
                const double *ai = A + i * a0 + k0 * a1;
                memset(row, 0, (size_t)nc * sizeof *row);
                for (int64_t k = 0; k < kc; k++) {
                    const double a = ai[k * a1], *bk = bp + k * nc;
                    if (skip && a == 0.0) continue;
                    if (skip) for (int64_t j = 0; j < nc; j++) row[j] += TIMES(a, bk[j]);
                    else for (int64_t j = 0; j < nc; j++) row[j] += a * bk[j];
                }
                double *ci = C + i * c0 + j0 * c1;
                for (int64_t j = 0; j < nc; j++) ci[j * c1] += row[j];
            }
        }
    }
    free(bp); free(row);
    return TP_OK;
}

/* How dgemm (column-major) reads an r x c matrix with strides s0, s1: 'N' when it is stored
 * column-major (leading dimension s1), 'T' when row-major (s0); 0: neither, pack it first. */
static char blas_view(int64_t r, int64_t c, int64_t s0, int64_t s1, int64_t *ld)
{
    const int64_t rr = r > 1 ? r : 1, cc = c > 1 ? c : 1;
    if ((s0 == 1 || r <= 1) && (c <= 1 || s1 >= rr)) { *ld = c <= 1 || s1 < rr ? rr : s1; return 'N'; }
    if ((s1 == 1 || c <= 1) && (r <= 1 || s0 >= cc)) { *ld = r <= 1 || s0 < cc ? cc : s0; return 'T'; }
    return 0;
}

static double *packed(int64_t r, int64_t c, const double *M, int64_t s0, int64_t s1)
{
    double *P = malloc((size_t)(r * c) * sizeof *P);
    if (P) for (int64_t i = 0; i < r; i++) for (int64_t j = 0; j < c; j++) P[i * c + j] = M[i * s0 + j * s1];
    return P;
}

/* C^T = B^T A^T in dgemm's column-major terms when C is row-major; C = A B when C is
 * column-major (an adjoint of a transposed operand); else through a zeroed row-major copy. */
static int gemm_blas(dgemm_fn *f, int64_t m, int64_t q, int64_t p, const double *A, int64_t a0,
                     int64_t a1, const double *B, int64_t b0, int64_t b1, double *C, int64_t c0,
                     int64_t c1)
{
    double *pa = NULL, *pb = NULL, *pc = NULL;
    int64_t lda, ldb, ldc;
    if (blas_view(q, m, c1, c0, &ldc) != 'N' && blas_view(m, q, c0, c1, &ldc) == 'N')
        return gemm_blas(f, q, m, p, B, b1, b0, A, a1, a0, C, c1, c0);     /* C^T += B^T A^T */
    char ta = blas_view(q, p, b1, b0, &lda), tb = blas_view(p, m, a1, a0, &ldb);
    int rc = TP_ENOMEM;
    if (!ta) { if (!(pb = packed(p, q, B, b0, b1))) goto done; B = pb; b0 = q; b1 = 1; ta = 'N'; lda = q > 1 ? q : 1; }
    if (!tb) { if (!(pa = packed(m, p, A, a0, a1))) goto done; A = pa; a0 = p; a1 = 1; tb = 'N'; ldb = p > 1 ? p : 1; }
    double *Cw = C;
    if (blas_view(q, m, c1, c0, &ldc) != 'N') {          /* C not row-major: a zeroed copy */
        if (!(pc = calloc((size_t)(m * q), sizeof *pc))) goto done;
        Cw = pc; ldc = q > 1 ? q : 1;
    }
    const int M = (int)q, N = (int)m, Kd = (int)p, la = (int)lda, lb = (int)ldb, lc = (int)ldc;
    const double one = 1.0;
    f(&ta, &tb, &M, &N, &Kd, &one, B, &la, A, &lb, &one, Cw, &lc);
    if (pc) for (int64_t i = 0; i < m; i++) for (int64_t j = 0; j < q; j++) C[i * c0 + j * c1] += pc[i * q + j];
    rc = TP_OK;
done:
    free(pa); free(pb); free(pc);
    return rc;
}

typedef double v8d __attribute__((vector_size(64)));

/* C += A b for a column b (q == 1): C_i += (s0 + s1) + (s2 + s3), s_u the sum of A_ik b_k over
 * k = u mod 4 in order (the tail k >= p - p % 4 in s0), whichever of A's strides is 1: rows of
 * A in place, or its columns (C's elements 8 at a time, four sums each in registers). The
 * clones vectorise the loops with the same operations per element: the same bits. */
CLONES static void gemv(int64_t m, int64_t p, const double *A, int64_t a0, int64_t a1,
                        const double *b, int64_t b0, double *C, int64_t c0)
{
    const int64_t p4 = p & ~(int64_t)3;
    int64_t i = 0;
    if (a1 != 1 && a0 == 1 && c0 == 1)
        for (; i + 8 <= m; i += 8) {
            v8d s[4] = {{0.0}, {0.0}, {0.0}, {0.0}}, a_, c;
            for (int64_t k = 0; k < p4; k += 4)
                for (int u = 0; u < 4; u++) {
                    memcpy(&a_, A + (k + u) * a1 + i, sizeof a_);
                    s[u] += a_ * b[(k + u) * b0];
                }
            for (int64_t k = p4; k < p; k++) {
                memcpy(&a_, A + k * a1 + i, sizeof a_);
                s[0] += a_ * b[k * b0];
            }
            memcpy(&c, C + i, sizeof c);
            c += (s[0] + s[1]) + (s[2] + s[3]);
            memcpy(C + i, &c, sizeof c);
        }
    for (; i < m; i++) {
        const double *ai = A + i * a0;
        double s[4] = {0.0, 0.0, 0.0, 0.0};
        if (a1 == 1 && b0 == 1)
            for (int64_t k = 0; k < p4; k += 4)
                for (int u = 0; u < 4; u++) s[u] += ai[k + u] * b[k + u];
        else
            for (int64_t k = 0; k < p4; k += 4)
                for (int u = 0; u < 4; u++) s[u] += ai[(k + u) * a1] * b[(k + u) * b0];
        for (int64_t k = p4; k < p; k++) s[0] += ai[k * a1] * b[k * b0];
        C[i * c0] += (s[0] + s[1]) + (s[2] + s[3]);
    }
}

#define GEMV_MAX ((int64_t)1 << 16)     /* larger matrix-vector products: dgemm */

int tp_gemm(int64_t m, int64_t q, int64_t p, const double *A, int64_t a0, int64_t a1,
            const double *B, int64_t b0, int64_t b1, double *C, int64_t c0, int64_t c1)
{
    if (m == 0 || q == 0 || p == 0) return TP_OK;
    if (q == 1 && m * p <= GEMV_MAX) {                   /* (dgemm would pack A every call) */
        gemv(m, p, A, a0, a1, B, b0, C, c0);
        return TP_OK;
    }
    if (m == 1 && q * p <= GEMV_MAX) {                   /* c^T += B^T a^T */
        gemv(q, p, B, b1, b0, A, a1, C, c1);
        return TP_OK;
    }
    dgemm_fn *f = __atomic_load_n(&dgemm_, __ATOMIC_ACQUIRE);
    return f ? gemm_blas(f, m, q, p, A, a0, a1, B, b0, b1, C, c0, c1)
             : gemm_builtin(m, q, p, A, a0, a1, B, b0, b1, C, c0, c1, 0);
}

/* ---- the sweeps --------------------------------------------------------------------------- */
typedef struct { const double *b; int64_t r, c, s0, s1; } mat;   /* a strided matrix */

static mat at(const double *base, int64_t r, int64_t c, int64_t s0, int64_t s1)
{
    mat x = {base, r, c, s0, s1};
    return x;
}

static mat tr(mat x) { return at(x.b, x.c, x.r, x.s1, x.s0); }

static int nonzero(mat x)
{
    for (int64_t i = 0; i < x.r; i++)
        for (int64_t j = 0; j < x.c; j++)
            if (x.b[i * x.s0 + j * x.s1] != 0.0) return 1;
    return 0;
}

static int acc(mat c, mat a, mat b)        /* c += a b */
{
    return tp_gemm(a.r, b.c, a.c, a.b, a.s0, a.s1, b.b, b.s0, b.s1, (double *)c.b, c.s0, c.s1);
}

/* every entry finite: x - x is 0 but for Inf and NaN; a row at a time without an early exit,
 * in a form the compiler vectorises */
#define NOT_FINITE(x) do { const double d_ = (x) - (x); bad = d_ != 0.0 ? d_ : bad; } while (0)

CLONES static int all_finite(mat x)
{
    if ((x.s1 != 1 && x.s0 == 1) || x.c == 1) x = tr(x);       /* rows along the stride 1 */
    if (x.s1 == 1 && x.s0 == x.c) { x.c *= x.r; x.r = 1; }      /* contiguous: one row */
    for (int64_t i = 0; i < x.r; i++) {
        const double *r = x.b + i * x.s0;
        const int64_t c = x.c, s1 = x.s1;
        double bad = 0.0;
        if (s1 == 1) for (int64_t j = 0; j < c; j++) NOT_FINITE(r[j]);
        else for (int64_t j = 0; j < c; j++) NOT_FINITE(r[j * s1]);
        if (bad != 0.0) return 0;
    }
    return 1;
}

/* every constant of t is finite: checked once per number of constants (only ever appended) */
static int consts_finite(const tp_tape *t)
{
    int64_t *at_ = (int64_t *)&t->finite_at, n = t->n_consts;
    const int64_t got = __atomic_load_n(at_, __ATOMIC_RELAXED);
    if (got >> 1 == n) return (int)(got & 1);
    const int ok = all_finite(at(tp_clow(t), 1, n, 0, 1));
    __atomic_store_n(at_, 2 * n + ok, __ATOMIC_RELAXED);
    return ok;
}

/* c += d v for a derivative d (tangents or adjoints) and values v (the partials): a zero of
 * either factor contributes nothing, as in the scalar sweeps' TIMES (0 * Inf is not NaN there,
 * whichever side the 0 is on); any product when both are finite. vfin: v is known to be (a
 * block of the tape's constants); dfin: d is (1), is not (0), or unknown (-1: looked at here) */
static int dacc(mat c, mat d, mat v, int vfin, int dfin)
{
    if (dfin < 0) dfin = all_finite(d);
    if (dfin && (vfin || all_finite(v))) return acc(c, d, v);
    if (!d.r || !v.c || !d.c) return TP_OK;
    return gemm_builtin(d.r, v.c, d.c, d.b, d.s0, d.s1, v.b, v.s0, v.s1, (double *)c.b, c.s0,
                        c.s1, 1);
}

static int vacc(mat c, mat v, mat d, int vfin, int dfin)        /* c += v d */
{
    return dacc(tr(c), tr(d), tr(v), vfin, dfin);
}

/* the operands' blocks; nb batch axes; product b of nbatch at element offsets xo, yo, zo */
typedef struct { blk x, y; int64_t m, p, q, xs0, xs1, ys0, ys1, nbatch, xo, yo, zo; int nb; } product;

static void product_of(const tp_tape *t, const int32_t *q, product *o)
{
    tp_blk(t, q + 3, &o->x);
    tp_blk(t, q + 5, &o->y);
    const int nb = o->nb = o->x.nd - 2;
    o->m = o->x.dims[nb]; o->p = o->x.dims[nb + 1]; o->q = o->y.dims[nb + 1];
    o->xs0 = o->x.st[nb]; o->xs1 = o->x.st[nb + 1]; o->ys0 = o->y.st[nb]; o->ys1 = o->y.st[nb + 1];
    o->nbatch = 1;
    for (int d = 0; d < nb; d++) o->nbatch *= o->x.dims[d];
}

/* P's offsets for product b (C order over the batch axes) */
static void batch_at(product *P, int64_t b)
{
    P->xo = P->yo = 0;
    P->zo = b * P->m * P->q;
    for (int d = P->nb - 1; d >= 0; d--) {
        const int64_t i = b % P->x.dims[d];
        b /= P->x.dims[d];
        P->xo += i * P->x.st[d]; P->yo += i * P->y.st[d];
    }
}

#define BATCHES(P) for (int64_t b_ = 0; b_ < (P).nbatch && (batch_at(&(P), b_), 1); b_++)

/* operand x's (or y's, z's) direction j of an array S holding K per variable, this product */
#define XM(S, K, j) at((S) + ((int64_t)P.x.first + P.xo) * (K) + (j), P.m, P.p, P.xs0 * (K), P.xs1 * (K))
#define YM(S, K, j) at((S) + ((int64_t)P.y.first + P.yo) * (K) + (j), P.p, P.q, P.ys0 * (K), P.ys1 * (K))
#define ZM(S, K, j) at((S) + ((int64_t)iz + P.zo) * (K) + (j), P.m, P.q, P.q * (K), (K))
#define TRY(call) if ((rc = (call)) < 0) return rc
#define CF(o) (P.o.first < 0 && consts_finite(t))   /* operand o: constants, all finite */

int tp_matmul_values(const tp_tape *t, const int32_t *q, const double *X, const double *Y,
                     double *Z)
{
    product P;
    product_of(t, q, &P);
    int rc;
    memset(Z, 0, (size_t)q[0] * sizeof *Z);
    BATCHES(P) TRY(tp_gemm(P.m, P.q, P.p, X + P.xo, P.xs0, P.xs1, Y + P.yo, P.ys0, P.ys1,
                           Z + P.zo, P.q, 1));
    return TP_OK;
}

int tp_matmul_tangent(const tp_tape *t, const double *V, double *T, int64_t K, const int32_t *q,
                      int32_t iz)
{
    product P;
    product_of(t, q, &P);
    int rc;
    memset(T + (int64_t)iz * K, 0, (size_t)(q[0] * K) * sizeof *T);
    BATCHES(P) for (int64_t j = 0; j < K; j++) {
        mat tx = XM(T, K, j), ty = YM(T, K, j);
        if (P.x.first >= 0 && nonzero(tx)) TRY(dacc(ZM(T, K, j), tx, YM(V, 1, 0), CF(y), -1));
        if (P.y.first >= 0 && nonzero(ty)) TRY(vacc(ZM(T, K, j), XM(V, 1, 0), ty, CF(x), -1));
    }
    return TP_OK;
}

int tp_matmul_adjoint(const tp_tape *t, const double *V, double *A, int64_t K,
                      const int32_t *q, int32_t iz)
{
    product P;
    product_of(t, q, &P);
    int rc;
    BATCHES(P) for (int64_t j = 0; j < K; j++) {
        mat az = ZM(A, K, j);
        if (!nonzero(az)) continue;
        const int af = all_finite(az);                          /* (once for both products) */
        if (P.x.first >= 0) TRY(dacc(XM(A, K, j), az, tr(YM(V, 1, 0)), CF(y), af));  /* += z_bar y^T */
        if (P.y.first >= 0) TRY(vacc(YM(A, K, j), tr(XM(V, 1, 0)), az, CF(x), af));  /* += x^T z_bar */
    }
    return TP_OK;
}

/* forward over reverse: adjoints A (one per variable) and their tangents D, tangents T */
int tp_matmul_second(const tp_tape *t, const double *V, const double *T, double *A, double *D,
                     int64_t K, const int32_t *q, int32_t iz)
{
    product P;
    product_of(t, q, &P);
    int rc;
    BATCHES(P) {
    const mat x = XM(V, 1, 0), y = YM(V, 1, 0), az = ZM(A, 1, 0);
    const int a_nz = nonzero(az), xv = P.x.first >= 0, yv = P.y.first >= 0;
    const int af = a_nz ? all_finite(az) : 1;
    if (a_nz && xv) TRY(dacc(XM(A, 1, 0), az, tr(y), CF(y), af));
    if (a_nz && yv) TRY(vacc(YM(A, 1, 0), tr(x), az, CF(x), af));
    for (int64_t j = 0; j < K; j++) {
        mat dz = ZM(D, K, j), tx = XM(T, K, j), ty = YM(T, K, j);
        const int d_nz = nonzero(dz), df = d_nz ? all_finite(dz) : 1;
        if (xv && d_nz) TRY(dacc(XM(D, K, j), dz, tr(y), CF(y), df));     /* x_bar_dot */
        if (xv && a_nz && yv && nonzero(ty)) TRY(dacc(XM(D, K, j), az, tr(ty), 0, af));
        if (yv && d_nz) TRY(vacc(YM(D, K, j), tr(x), dz, CF(x), df));     /* y_bar_dot */
        if (yv && a_nz && xv && nonzero(tx)) TRY(vacc(YM(D, K, j), tr(tx), az, 0, af));
    }
    }
    return TP_OK;
}

/* Taylor: z_k = sum_i x_i y_(k-i), series of D1 coefficients per variable */
int tp_matmul_taylor(const tp_tape *t, double *S, int64_t D1, int d, const int32_t *q, int32_t iz)
{
    product P;
    product_of(t, q, &P);
    int rc;
    for (int64_t i = 0; i < q[0]; i++)
        for (int k = 0; k <= d; k++) S[(iz + i) * D1 + k] = 0.0;
    BATCHES(P) for (int k = 0; k <= d; k++) {
        mat z = ZM(S, D1, k);
        for (int i = 0; i <= k; i++) {
            mat x = XM(S, D1, i), y = YM(S, D1, k - i);
            if (k == 0 || (nonzero(x) && nonzero(y))) TRY(acc(z, x, y));
        }
    }
    return TP_OK;
}

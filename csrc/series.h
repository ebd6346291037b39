/* Truncated Taylor series arithmetic for the Taylor sweep: arrays of coefficients 0..d of
 * t -> u(t). In every helper Z[0] is already set (the primal value, from the op's PRIMAL rule)
 * and coefficients 1..d are filled. Recurrences as in Griewank & Walther, "Evaluating
 * Derivatives", ch. 13. */
#pragma once
#include <math.h>
#include "times.h"

/* a * b, but +0 when either is 0 whatever the other: the sweeps' TIMES (times.h), so that
 * order 1 is the tangent sweep's, Inf and NaN included */
#define SER_TIMES(a, b) tp_times1((a), (b))

/* Z = X * Y */
static inline void ser_mul(double *Z, const double *X, const double *Y, int d)
{
    for (int k = 1; k <= d; k++) {
        double s = 0.0;
        for (int j = 0; j <= k; j++) s += SER_TIMES(X[j], Y[k - j]);
        Z[k] = s;
    }
}

/* Z = X / Y */
static inline void ser_div(double *Z, const double *X, const double *Y, int d)
{
    for (int k = 1; k <= d; k++) {
        double s = X[k];
        for (int j = 0; j < k; j++) s -= SER_TIMES(Z[j], Y[k - j]);
        Z[k] = s == 0.0 ? 0.0 : s / Y[0];             /* 0 / 0: the tangent's TIMES(0, 1/y) */
    }
}

/* Z = sqrt(X) */
static inline void ser_sqrt(double *Z, const double *X, int d)
{
    for (int k = 1; k <= d; k++) {
        double s = X[k];
        for (int j = 1; j < k; j++) s -= SER_TIMES(Z[j], Z[k - j]);
        Z[k] = (s == 0.0 || isinf(Z[0])) ? 0.0 : s / (2.0 * Z[0]);  /* TIMES(s, 0.5 / z) */
    }
}

/* Z' = G X' with G known (Z = exp(X) is G = Z, filled as it goes) */
static inline void ser_scale_int(double *Z, const double *X, const double *G, int d)
{
    for (int k = 1; k <= d; k++) {
        double s = 0.0;
        for (int j = 1; j <= k; j++) s += SER_TIMES(j * X[j], G[k - j]);
        Z[k] = s / k;
    }
}

static inline void ser_exp(double *Z, const double *X, int d) { ser_scale_int(Z, X, Z, d); }

/* U Z' = X'  (log: U = X; asin: U = sqrt(1 - X^2); atan: U = 1 + X^2; ...) */
static inline void ser_quot_int(double *Z, const double *X, const double *U, int d)
{
    for (int k = 1; k <= d; k++) {
        double s = 0.0;
        for (int j = 1; j < k; j++) s += SER_TIMES(j * Z[j], U[k - j]);
        const double r = X[k] - s / k;                          /* TIMES(r, 1 / U[0]) */
        Z[k] = (r == 0.0 || isinf(U[0])) ? 0.0 : r / U[0];
    }
}

/* S' = C X', C' = sign S X'  (sin/cos: sign = -1; sinh/cosh: sign = +1); S[0], C[0] set */
static inline void ser_sincos(double *S, double *C, const double *X, int d, double sign)
{
    for (int k = 1; k <= d; k++) {
        double s = 0.0, c = 0.0;
        for (int j = 1; j <= k; j++) { s += SER_TIMES(j * X[j], C[k - j]); c += SER_TIMES(j * X[j], S[k - j]); }
        S[k] = s / k;
        C[k] = sign * c / k;
    }
}

/* Z' = (1 + sign Z^2) X'  (tan: +1, tanh: -1), G the scratch for 1 + sign Z^2 */
static inline void ser_tan(double *Z, double *G, const double *X, int d, double sign)
{
    G[0] = 1.0 + sign * Z[0] * Z[0];
    for (int k = 1; k <= d; k++) {
        double s = 0.0;
        for (int j = 1; j <= k; j++) s += SER_TIMES(j * X[j], G[k - j]);
        Z[k] = s / k;
        double q = 0.0;
        for (int j = 0; j <= k; j++) q += SER_TIMES(Z[j], Z[k - j]);
        G[k] = sign * q;
    }
}

/* Z = X^2 + sign (constant c): coefficient 0 is set by the caller */
static inline void ser_square_plus(double *W, const double *X, int d, double sign)
{
    for (int k = 1; k <= d; k++) {
        double s = 0.0;
        for (int j = 0; j <= k; j++) s += SER_TIMES(X[j], X[k - j]);
        W[k] = sign * s;
    }
}

/* 1 when the series X is constant (coefficients 1..d zero): then so is any function of it. */
static inline int ser_constant(const double *X, int d)
{
    for (int k = 1; k <= d; k++)
        if (X[k] != 0.0) return 0;
    return 1;
}

/* The time scale t = 2^e tau at which |X[k]|, |Y[k]| 2^(e k + a) < 2 for every k >= 1: the
 * largest such e (0 for constant series). */
static inline int ser_rate(const double *X, const double *Y, int d, int a)
{
    int e = 0;
    for (int k = 1, first = 1; k <= d; k++) {
        const double bx = fabs(X[k]), by = fabs(Y[k]), m = bx > by ? bx : by;
        if (!(m > 0.0 && isfinite(m))) continue;
        const int g = ilogb(m) + a, ek = g >= 0 ? -((g + k - 1) / k) : -g / k;  /* floor(-g/k) */
        if (first || ek < e) { e = ek; first = 0; }
    }
    return e;
}

/* Powers of 2 that bring the series X, Y to unit scale: amplitude 2^a, max(|X0|, |Y0|) 2^a in
 * [1, 2), and time t = 2^e tau (ser_rate). A homogeneous recurrence run on X[k] 2^(e k + a)
 * gives the same digits (powers of 2 scale exactly) without intermediate overflow or underflow
 * far from its result's. */
static inline void ser_scales(const double *X, const double *Y, int d, int *e, int *a)
{
    const double ax = fabs(X[0]), ay = fabs(Y[0]), m0 = ax > ay ? ax : ay;
    *a = (m0 > 0.0 && isfinite(m0)) ? -ilogb(m0) : 0;
    *e = ser_rate(X, Y, d, *a);
}

/* P = (X / X0)^r at time scale 2^e (P[0] = 1; Z[k] = X0^r 2^(-e k) P[k]), X0 finite, nonzero:
 *     P[k] = (1/k) sum_{j=1..k} (r j - (k - j)) Q[j] P[k-j],   Q = X / X0 (left in Q),
 * from X Z' = r Z X'. r j - (k - j), not (r + 1) j - k: r + 1 rounds a tiny r away. */
static inline void ser_powq(double *P, double *Q, const double *X, double r, int d, int e)
{
    const int a = -ilogb(X[0]);
    const double x0 = ldexp(X[0], a);
    P[0] = Q[0] = 1.0;
    for (int k = 1; k <= d; k++) Q[k] = ldexp(X[k], e * k + a) / x0;
    for (int k = 1; k <= d; k++) {
        double s = 0.0;
        for (int j = 1; j <= k; j++) s += (r * j - (k - j)) * Q[j] * P[k - j];
        P[k] = s / k;
    }
}

/* X0^r = c 2^n with c of unit scale: exactly z = X0^r (the primal value) where it is a normal
 * number; else x0^r 2^f with X0 = x0 2^b and b r = n + f split exactly (fma). Where that
 * leaves the range too (|r| beyond ~1000): c = z, n = 0. X0 finite, nonzero. */
static inline void ser_pow_scale(double z, double X0, double r, double *c, int *n)
{
    if (isnormal(z)) { *n = ilogb(z); *c = ldexp(z, -*n); return; }
    const int b = ilogb(X0);
    const double nb = floor(b * r), cb = pow(ldexp(X0, -b), r) * exp2(fma(b, r, -nb));
    if (isfinite(cb) && cb != 0.0 && fabs(nb) < 4096.0) { *c = cb; *n = (int)nb; }
    else { *c = z; *n = 0; }
}

/* Z = X^r, r constant. A whole r (|r| <= 64) by repeated multiplication (exact at X[0] == 0, no
 * underflow through Z[0]). Otherwise Z[k] = X0^r 2^(-e k) P[k], P = (X / X0)^r at unit scale
 * (ser_powq, ser_scales) and X0^r = c 2^n (ser_pow_scale): no coefficient leaves the range
 * before its result does, none is derived from an underflowed Z[0], and a tiny r keeps its
 * digits. At X0 == 0: Z[k] = X0^(r-k) p_k, p_k = (1/k) sum_j (r j - (k - j)) X_j X0^(j-1) p_{k-j}
 * (0 or infinite). P, Q: scratch series. */
static inline void ser_powr(double *Z, const double *X, double r, int d, double *P, double *Q)
{
    if (r == floor(r) && fabs(r) <= 64.0) {
        int e = (int)fabs(r);
        for (int k = 0; k <= d; k++) P[k] = (k == 0);          /* P = 1 */
        for (int i = 0; i < e; i++) {
            for (int k = 0; k <= d; k++) {                    /* Q = P * X */
                double s = 0.0;
                for (int j = 0; j <= k; j++) s += P[j] * X[k - j];
                Q[k] = s;
            }
            for (int k = 0; k <= d; k++) P[k] = Q[k];
        }
        if (r >= 0.0) {
            for (int k = 1; k <= d; k++) Z[k] = P[k];
        } else {                                              /* Z = 1 / P */
            for (int k = 1; k <= d; k++) {
                double s = 0.0;
                for (int j = 0; j < k; j++) s -= Z[j] * P[k - j];
                Z[k] = s / P[0];
            }
        }
        return;
    }
    if (X[0] == 0.0 || !isfinite(X[0])) {
        P[0] = 1.0;
        for (int k = 1; k <= d; k++) {
            double s = 0.0, xp = 1.0;                         /* xp = X0^(j-1) */
            for (int j = 1; j <= k; j++, xp *= X[0]) s += (r * j - (k - j)) * X[j] * xp * P[k - j];
            P[k] = s / k;
            Z[k] = pow(X[0], r - k) * P[k];
        }
        return;
    }
    int e, a, n;
    double c;
    ser_scales(X, X, d, &e, &a);
    ser_powq(P, Q, X, r, d, e);
    ser_pow_scale(Z[0], X[0], r, &c, &n);
    for (int k = 1; k <= d; k++) Z[k] = ldexp(c * P[k], n - e * k);
}

/* Z = X^Y, Y moving, X[0] != 0: Z = X0^y0 P B with P = (X / X0)^y0 (ser_powq, y0 = Y[0]) and
 * B = exp((Y - y0) log X), all at one unit time scale (ser_rate of X / X0 and of Y log x) and
 * X0^y0 = c 2^n (ser_pow_scale): no coefficient is derived from an underflowed or overflowed
 * z = x^y0, and Z[1] = z (y0 X[1] / x + log(x) Y[1]) is the tangent rule's. A still exponent
 * (Y[j] == 0) adds nothing, not the NaN of log x for x < 0. P, Q, L, E, B: scratch series
 * (Q = X / X0, then Y at the time scale; L = log X; E = (Y - y0) log X). */
static inline void ser_pow(double *Z, const double *X, const double *Y, int d, double *P,
                           double *Q, double *L, double *E, double *B)
{
    if (!isfinite(X[0])) {
        for (int k = 1; k <= d; k++) Z[k] = NAN;
        return;
    }
    const double l0 = log(X[0]);
    int e, a, n;
    double c;
    ser_scales(X, X, d, &e, &a);
    const int ey = ser_rate(Y, Y, d, isfinite(l0) ? ilogb(fabs(l0) + 1.0) : 0);
    if (ey < e) e = ey;
    ser_powq(P, Q, X, Y[0], d, e);
    L[0] = l0;
    ser_quot_int(L, Q, Q, d);                                 /* log X = log X0 + log Q */
    for (int k = 1; k <= d; k++) Q[k] = ldexp(Y[k], e * k);
    E[0] = 0.0;
    for (int k = 1; k <= d; k++) {
        double s = 0.0;
        for (int j = 1; j <= k; j++) if (Q[j] != 0.0) s += Q[j] * L[k - j];
        E[k] = s;
    }
    B[0] = 1.0;
    ser_exp(B, E, d);
    ser_pow_scale(Z[0], X[0], Y[0], &c, &n);
    for (int k = 1; k <= d; k++) {
        double s = 0.0;
        for (int j = 0; j <= k; j++) s += P[j] * B[k - j];
        Z[k] = ldexp(c * s, n - e * k);
    }
}

/* Xs[k] = X[k] 2^(e k + a), Ys likewise */
static inline void ser_scaled(double *Xs, double *Ys, const double *X, const double *Y, int d,
                              int e, int a)
{
    for (int k = 0; k <= d; k++) { Xs[k] = ldexp(X[k], e * k + a); Ys[k] = ldexp(Y[k], e * k + a); }
}

/* R = hypot(X, Y), R[0] > 0 set, in ratio form: R' = U X' + V Y' with U = X / R, V = Y / R
 * (U[k] = (X[k] - sum_{j<k} U[j] R[k-j]) / R[0]): no coefficient is squared. U, V: 0..d. */
static inline void ser_hypot_ratio(double *R, const double *X, const double *Y, int d, double *U,
                                   double *V)
{
    U[0] = X[0] / R[0];
    V[0] = Y[0] / R[0];
    for (int k = 1; k <= d; k++) {
        double s = 0.0;
        for (int j = 1; j <= k; j++) s += j * (X[j] * U[k - j] + Y[j] * V[k - j]);
        R[k] = s / k;
        double u = X[k], v = Y[k];
        for (int j = 0; j < k; j++) { u -= U[j] * R[k - j]; v -= V[j] * R[k - j]; }
        U[k] = u / R[0];
        V[k] = v / R[0];
    }
}

/* Z = hypot(X, Y), Z[0] > 0 set: ser_hypot_ratio on the series at unit scale (ser_scales), where
 * x^2 + y^2 would overflow or underflow far inside the range of Z. Xs, Ys, U, V: scratch. */
static inline void ser_hypot(double *Z, const double *X, const double *Y, int d, double *Xs,
                             double *Ys, double *U, double *V)
{
    int e, a;
    ser_scales(X, Y, d, &e, &a);
    ser_scaled(Xs, Ys, X, Y, d, e, a);
    const double z = Z[0];
    Z[0] = hypot(Xs[0], Ys[0]);                       /* finite where z overflowed */
    ser_hypot_ratio(Z, Xs, Ys, d, U, V);
    Z[0] = z;
    for (int k = 1; k <= d; k++) Z[k] = ldexp(Z[k], -(e * k + a));
}

/* Z = atan2(X, Y), not both 0, at unit scale (ser_scales): Z' = D = (V X' - U Y') / R with
 * R = hypot(X, Y), U = X / R, V = Y / R (ser_hypot_ratio), D[k] = (W[k] - sum_{j<k} D[j] R[k-j])
 * / R[0] for W = V X' - U Y', and Z[k+1] = D[k] / (k + 1): no x^2 + y^2. Xs, Ys, U, V, R:
 * scratch. */
static inline void ser_atan2(double *Z, const double *X, const double *Y, int d, double *Xs,
                             double *Ys, double *U, double *V, double *R)
{
    if (d < 1) return;
    int e, a;
    ser_scales(X, Y, d, &e, &a);
    ser_scaled(Xs, Ys, X, Y, d, e, a);
    R[0] = hypot(Xs[0], Ys[0]);
    ser_hypot_ratio(R, Xs, Ys, d - 1, U, V);
    for (int k = 0; k < d; k++) {
        double w = 0.0;
        for (int j = 0; j <= k; j++)
            w += (k - j + 1) * (V[j] * Xs[k - j + 1] - U[j] * Ys[k - j + 1]);
        for (int j = 0; j < k; j++) w -= (j + 1) * Z[j + 1] * R[k - j];
        Z[k + 1] = w / R[0] / (k + 1);
    }
    for (int k = 1; k <= d; k++) Z[k] = ldexp(Z[k], -e * k);        /* atan2: degree 0 in a */
}

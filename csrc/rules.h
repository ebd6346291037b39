/* Derivative rules, one banner per op of ops.def, in the same order.
 *
 * In a rule body: operand values x, y, w (operand indices ix, iy, iw; an index < 0 is a constant
 * from the pool), result value z.
 *   NAME_PRIMAL   sets z from the operands.
 *   NAME_PARTIAL  sets the local partial derivatives px = dz/dx, py = dz/dy, pw = dz/dw
 *                 (it may use z); tangent and adjoint sweeps are built from them:
 *                 z_dot = px*x_dot + py*y_dot,  x_bar += px*z_bar,  y_bar += py*z_bar.
 *   NAME_PARTIAL2 sets the second partials pxx, pxy, pyy (pxw, pyw, pww for three operands)
 *                 for the second-order sweep (hvp, hessian); variadic ops set NAME_DPARTIAL,
 *                 dpi = the tangent of pi, with TVAL(i) the tangent of operand i.
 *   NAME_CURVATURE which operand pairs its second derivative can couple, for the Hessian's
 *                 sparsity: LINEAR (none: piecewise linear), BILINEAR (x with y only, as x*y),
 *                 NONLINEAR (all its operands together).
 *   NAME_TAYLOR   fills Taylor coefficients Z[1..d] of the result from the operands' X, Y, W
 *                 (SER(i) for variadic ops), Z[0] = z being set; S0 .. S4 are scratch series.
 *                 The recurrences are in series.h.
 *   NAME_TANGENT / NAME_ADJOINT (CUSTOM ops only) do the work directly, for K directions:
 *                 TAN(i, j) / ADJ(i, j) are direction j of variable i.
 * Variadic ops see n operands q[0..n-1] with values VAL(i); their PARTIAL sets pi for operand i.
 * CUSTOM ops define PARTIAL too: the trace and the graph show it.
 * Conventions at non-smooth points are the README's; keep both in step.
 * GUARD ops (comparisons) end their PRIMAL with CHECK_GUARD(z, w), which each sweep defines:
 * the primal and Taylor sweeps stop at a guard whose outcome z differs from the recorded w.
 */
#ifndef TAPEAD_RULES_H
#define TAPEAD_RULES_H
#include <math.h>

#define TP_LN2      0.693147180559945309417232121458176568
#define TP_LN10     2.302585092994045684017991454684364208
#define TP_2_SQRTPI 1.128379167095512573896158903121545172  /* 2/sqrt(pi) */

/* x, y scaled exactly by a power of 2 s_ that brings max(|x|, |y|) into [2^-500, 2^500] (as libm's
 * hypot): xs_^2 + ys_^2 neither overflows nor loses to underflow. */
#define TP_SCALE  const double ax_ = fabs(x), ay_ = fabs(y), m_ = ax_ > ay_ ? ax_ : ay_; \
                  const double s_ = m_ > 0x1p500 ? 0x1p-600 : (m_ < 0x1p-500 ? 0x1p600 : 1.0); \
                  const double xs_ = x * s_, ys_ = y * s_

/* ---- NEG: z = -x --------------------------------------------------------------------------- */
#define NEG_PRIMAL     z = -x
#define NEG_PARTIAL    px = -1.0
#define NEG_PARTIAL2   pxx = 0.0
#define NEG_CURVATURE   LINEAR
#define NEG_TAYLOR     for (int k = 1; k <= d; k++) Z[k] = -X[k]

/* ---- ADD: z = x + y ------------------------------------------------------------------------ */
#define ADD_PRIMAL     z = x + y
#define ADD_PARTIAL    px = 1.0; py = 1.0
#define ADD_PARTIAL2   pxx = 0.0; pxy = 0.0; pyy = 0.0
#define ADD_CURVATURE   LINEAR
#define ADD_TAYLOR     for (int k = 1; k <= d; k++) Z[k] = X[k] + Y[k]

/* ---- SUB: z = x - y ------------------------------------------------------------------------ */
#define SUB_PRIMAL     z = x - y
#define SUB_PARTIAL    px = 1.0; py = -1.0
#define SUB_PARTIAL2   pxx = 0.0; pxy = 0.0; pyy = 0.0
#define SUB_CURVATURE   LINEAR
#define SUB_TAYLOR     for (int k = 1; k <= d; k++) Z[k] = X[k] - Y[k]

/* ---- MUL: z = x * y ------------------------------------------------------------------------ */
#define MUL_PRIMAL     z = x * y
#define MUL_PARTIAL    px = y; py = x
#define MUL_PARTIAL2   pxx = 0.0; pxy = 1.0; pyy = 0.0
#define MUL_CURVATURE   BILINEAR
#define MUL_TAYLOR     ser_mul(Z, X, Y, d)

/* ---- DIV: z = x / y      dz = dx/y - z dy/y ------------------------------------------------ */
#define DIV_PRIMAL     z = x / y
#define DIV_PARTIAL    px = 1.0 / y; py = -z / y
#define DIV_PARTIAL2   pxx = 0.0; pxy = -1.0 / (y * y); pyy = 2.0 * z / (y * y)
#define DIV_CURVATURE   NONLINEAR
#define DIV_TAYLOR     ser_div(Z, X, Y, d)

/* ---- POW: z = x ** y     dz = y x^(y-1) dx + z log(x) dy ------------------------------------
 * dz/dx = 0 when y == 0 (x**0 == 1 everywhere); dz/dy = 0 at x == 0 (its limit for y > 0) and
 * NaN for x < 0, where x**y is not differentiable in y. A constant operand gets no partial. */
#define POW_PRIMAL     z = pow(x, y)
#define POW_PARTIAL    px = (ix < 0 || y == 0.0) ? 0.0 : y * pow(x, y - 1.0); \
                       py = (iy < 0 || x == 0.0) ? 0.0 : (x > 0.0 ? z * log(x) : NAN)
#define POW_PARTIAL2   pxx = (y == 0.0 || y == 1.0) ? 0.0 : y * (y - 1.0) * pow(x, y - 2.0); \
                       pxy = x > 0.0 ? pow(x, y - 1.0) * (1.0 + y * log(x)) : (x == 0.0 ? 0.0 : NAN); \
                       pyy = x > 0.0 ? z * log(x) * log(x) : (x == 0.0 ? 0.0 : NAN)
#define POW_CURVATURE   NONLINEAR
#define POW_TAYLOR     if (ser_constant(Y, d)) ser_powr(Z, X, y, d, S0, S1);   /* x ** c */ \
                       else if (x == 0.0 && ser_constant(X, d)) {            /* 0 ** y */ \
                           for (int k = 1; k <= d; k++) { Z[k] = 0.0; } } \
                       else if (x == 0.0) ser_powr(Z, X, y, d, S0, S1);   /* y frozen: dz/dy = 0 */ \
                       else ser_pow(Z, X, Y, d, S0, S1, S2, S3, S4);  /* x^y0 exp((y - y0) log x) */

#define SQUARE_PRIMAL  z = x * x
#define SQUARE_PARTIAL px = 2.0 * x
#define SQUARE_PARTIAL2 pxx = 2.0
#define SQUARE_CURVATURE NONLINEAR
#define SQUARE_TAYLOR  ser_mul(Z, X, X, d)

/* ---- SQRT: z = sqrt(x)   dz = dx / (2 z)      (+inf at x == 0) ----------------------------- */
#define SQRT_PRIMAL    z = sqrt(x)
#define SQRT_PARTIAL   px = 0.5 / z
#define SQRT_PARTIAL2  pxx = -0.25 / (z * z * z)
#define SQRT_CURVATURE  NONLINEAR
#define SQRT_TAYLOR    ser_sqrt(Z, X, d)

/* ---- CBRT: z = cbrt(x)   dz = dx / (3 z^2)    (+inf at x == 0) ----------------------------- */
#define CBRT_PRIMAL    z = cbrt(x)
#define CBRT_PARTIAL   px = 1.0 / (3.0 * z * z)
#define CBRT_PARTIAL2  pxx = -2.0 / (9.0 * z * z * z * z * z)
#define CBRT_CURVATURE  NONLINEAR
#define CBRT_TAYLOR    if (x < 0.0) {                            /* cbrt(x) = -cbrt(-x) */ \
                           for (int k = 0; k <= d; k++) { S2[k] = -X[k]; } Z[0] = -Z[0]; \
                           ser_powr(Z, S2, 1.0 / 3.0, d, S0, S1); \
                           for (int k = 0; k <= d; k++) { Z[k] = -Z[k]; } } \
                       else ser_powr(Z, X, 1.0 / 3.0, d, S0, S1)

/* ---- EXP: z = exp(x)     dz = z dx ---------------------------------------------------------- */
#define EXP_PRIMAL     z = exp(x)
#define EXP_PARTIAL    px = z
#define EXP_PARTIAL2   pxx = z
#define EXP_CURVATURE   NONLINEAR
#define EXP_TAYLOR     ser_exp(Z, X, d)

/* ---- EXPM1: z = expm1(x) dz = (z + 1) dx --------------------------------------------------- */
#define EXPM1_PRIMAL   z = expm1(x)
#define EXPM1_PARTIAL  px = z + 1.0
#define EXPM1_PARTIAL2 pxx = z + 1.0
#define EXPM1_CURVATURE NONLINEAR
#define EXPM1_TAYLOR   S0[0] = z + 1.0; ser_exp(S0, X, d); for (int k = 1; k <= d; k++) { Z[k] = S0[k]; }

/* ---- LOG: z = log(x)     dz = dx / x ------------------------------------------------------- */
#define LOG_PRIMAL     z = log(x)
#define LOG_PARTIAL    px = 1.0 / x
#define LOG_PARTIAL2   pxx = -1.0 / (x * x)
#define LOG_CURVATURE   NONLINEAR
#define LOG_TAYLOR     ser_quot_int(Z, X, X, d)

/* ---- LOG1P: z = log1p(x) dz = dx / (1 + x) ------------------------------------------------- */
#define LOG1P_PRIMAL   z = log1p(x)
#define LOG1P_PARTIAL  px = 1.0 / (1.0 + x)
#define LOG1P_PARTIAL2 pxx = -1.0 / ((1.0 + x) * (1.0 + x))
#define LOG1P_CURVATURE NONLINEAR
#define LOG1P_TAYLOR   for (int k = 0; k <= d; k++) { S0[k] = X[k] + (k == 0); } ser_quot_int(Z, X, S0, d)

/* ---- LOG2: z = log2(x)   dz = dx / (x ln 2) ------------------------------------------------ */
#define LOG2_PRIMAL    z = log2(x)
#define LOG2_PARTIAL   px = 1.0 / (x * TP_LN2)
#define LOG2_PARTIAL2  pxx = -1.0 / (x * x * TP_LN2)
#define LOG2_CURVATURE  NONLINEAR
#define LOG2_TAYLOR    S0[0] = log(x); ser_quot_int(S0, X, X, d); for (int k = 1; k <= d; k++) Z[k] = S0[k] / TP_LN2

/* ---- LOG10: z = log10(x) dz = dx / (x ln 10) ----------------------------------------------- */
#define LOG10_PRIMAL   z = log10(x)
#define LOG10_PARTIAL  px = 1.0 / (x * TP_LN10)
#define LOG10_PARTIAL2 pxx = -1.0 / (x * x * TP_LN10)
#define LOG10_CURVATURE NONLINEAR
#define LOG10_TAYLOR   S0[0] = log(x); ser_quot_int(S0, X, X, d); for (int k = 1; k <= d; k++) Z[k] = S0[k] / TP_LN10

/* ---- SIN: z = sin(x)     dz = cos(x) dx ---------------------------------------------------- */
#define SIN_PRIMAL     z = sin(x)
#define SIN_PARTIAL    px = cos(x)
#define SIN_PARTIAL2   pxx = -z
#define SIN_CURVATURE   NONLINEAR
#define SIN_TAYLOR     S0[0] = cos(x); ser_sincos(Z, S0, X, d, -1.0)

/* ---- COS: z = cos(x)     dz = -sin(x) dx --------------------------------------------------- */
#define COS_PRIMAL     z = cos(x)
#define COS_PARTIAL    px = -sin(x)
#define COS_PARTIAL2   pxx = -z
#define COS_CURVATURE   NONLINEAR
#define COS_TAYLOR     S0[0] = sin(x); ser_sincos(S0, Z, X, d, -1.0)

/* ---- TAN: z = tan(x)     dz = (1 + z^2) dx ------------------------------------------------- */
#define TAN_PRIMAL     z = tan(x)
#define TAN_PARTIAL    px = 1.0 + z * z
#define TAN_PARTIAL2   pxx = 2.0 * z * (1.0 + z * z)
#define TAN_CURVATURE   NONLINEAR
#define TAN_TAYLOR     ser_tan(Z, S0, X, d, 1.0)

/* ---- ASIN: z = asin(x)   dz = dx / sqrt(1 - x^2) ------------------------------------------- */
#define ASIN_PRIMAL    z = asin(x)
#define ASIN_PARTIAL   px = 1.0 / sqrt((1.0 - x) * (1.0 + x))
#define ASIN_PARTIAL2  pxx = x * px * px * px
#define ASIN_CURVATURE  NONLINEAR
#define ASIN_TAYLOR    S0[0] = (1.0 - x) * (1.0 + x); ser_square_plus(S0, X, d, -1.0);   /* 1 - x^2 */ \
                       S1[0] = sqrt(S0[0]); ser_sqrt(S1, S0, d); ser_quot_int(Z, X, S1, d)

/* ---- ACOS: z = acos(x)   dz = -dx / sqrt(1 - x^2) ------------------------------------------ */
#define ACOS_PRIMAL    z = acos(x)
#define ACOS_PARTIAL   px = -1.0 / sqrt((1.0 - x) * (1.0 + x))
#define ACOS_PARTIAL2  pxx = x * px * px * px
#define ACOS_CURVATURE  NONLINEAR
#define ACOS_TAYLOR    S0[0] = (1.0 - x) * (1.0 + x); ser_square_plus(S0, X, d, -1.0);   /* 1 - x^2 */ \
                       S1[0] = sqrt(S0[0]); ser_sqrt(S1, S0, d); \
                       for (int k = 0; k <= d; k++) { S2[k] = -X[k]; } ser_quot_int(Z, S2, S1, d)

/* ---- ATAN: z = atan(x)   dz = dx / (1 + x^2) ----------------------------------------------- */
#define ATAN_PRIMAL    z = atan(x)
#define ATAN_PARTIAL   px = 1.0 / (1.0 + x * x)
#define ATAN_PARTIAL2  pxx = -2.0 * x * px * px
#define ATAN_CURVATURE  NONLINEAR
#define ATAN_TAYLOR    S0[0] = 1.0 + x * x; ser_square_plus(S0, X, d, 1.0); ser_quot_int(Z, X, S0, d)

/* ---- SINH: z = sinh(x)   dz = cosh(x) dx --------------------------------------------------- */
#define SINH_PRIMAL    z = sinh(x)
#define SINH_PARTIAL   px = cosh(x)
#define SINH_PARTIAL2  pxx = z
#define SINH_CURVATURE  NONLINEAR
#define SINH_TAYLOR    S0[0] = cosh(x); ser_sincos(Z, S0, X, d, 1.0)

/* ---- COSH: z = cosh(x)   dz = sinh(x) dx --------------------------------------------------- */
#define COSH_PRIMAL    z = cosh(x)
#define COSH_PARTIAL   px = sinh(x)
#define COSH_PARTIAL2  pxx = z
#define COSH_CURVATURE  NONLINEAR
#define COSH_TAYLOR    S0[0] = sinh(x); ser_sincos(S0, Z, X, d, 1.0)

/* ---- TANH: z = tanh(x)   dz = (1 - z^2) dx ------------------------------------------------- */
#define TANH_PRIMAL    z = tanh(x)
#define TANH_PARTIAL   px = (1.0 - z) * (1.0 + z)
#define TANH_PARTIAL2  pxx = -2.0 * z * px
#define TANH_CURVATURE  NONLINEAR
#define TANH_TAYLOR    ser_tan(Z, S0, X, d, -1.0)

/* ---- ASINH: z = asinh(x) dz = dx / sqrt(x^2 + 1) ------------------------------------------- */
#define ASINH_PRIMAL   z = asinh(x)
#define ASINH_PARTIAL  px = 1.0 / hypot(x, 1.0)
#define ASINH_PARTIAL2 pxx = -x * px * px * px
#define ASINH_CURVATURE NONLINEAR
#define ASINH_TAYLOR   S0[0] = 1.0 + x * x; ser_square_plus(S0, X, d, 1.0);            /* 1 + x^2 */ \
                       S1[0] = hypot(x, 1.0); ser_sqrt(S1, S0, d); ser_quot_int(Z, X, S1, d)

/* ---- ACOSH: z = acosh(x) dz = dx / sqrt(x^2 - 1) ------------------------------------------- */
#define ACOSH_PRIMAL   z = acosh(x)
#define ACOSH_PARTIAL  px = 1.0 / (sqrt(x - 1.0) * sqrt(x + 1.0))
#define ACOSH_PARTIAL2 pxx = -x * px * px * px
#define ACOSH_CURVATURE NONLINEAR
#define ACOSH_TAYLOR   S0[0] = sqrt(x - 1.0); ser_sqrt(S0, X, d);        /* sqrt(x - 1) sqrt(x + 1): */ \
                       S1[0] = sqrt(x + 1.0); ser_sqrt(S1, X, d);        /* no x^2 to overflow */ \
                       S2[0] = S0[0] * S1[0]; ser_mul(S2, S0, S1, d); ser_quot_int(Z, X, S2, d)

/* ---- ATANH: z = atanh(x) dz = dx / (1 - x^2) ----------------------------------------------- */
#define ATANH_PRIMAL   z = atanh(x)
#define ATANH_PARTIAL  px = 1.0 / ((1.0 - x) * (1.0 + x))
#define ATANH_PARTIAL2 pxx = 2.0 * x * px * px
#define ATANH_CURVATURE NONLINEAR
#define ATANH_TAYLOR   S0[0] = (1.0 - x) * (1.0 + x); ser_square_plus(S0, X, d, -1.0); ser_quot_int(Z, X, S0, d)

/* ---- ATAN2: z = atan2(x, y)   dz = (y dx - x dy) / (x^2 + y^2)    (0 at x == y == 0) --------
 * The partials on x, y scaled by s_ (TP_SCALE): r_ = (x^2 + y^2) s_^2 stays in range. A NaN
 * operand makes r_ NaN and every partial NaN (not the origin's 0) */
#define ATAN2_PRIMAL   z = atan2(x, y)
#define ATAN2_PARTIAL  { TP_SCALE; const double r_ = xs_ * xs_ + ys_ * ys_; \
                         const double o_ = r_ == 0.0 ? 0.0 : NAN; \
                         px = r_ > 0.0 ? ys_ / r_ * s_ : o_; py = r_ > 0.0 ? -xs_ / r_ * s_ : o_; }
#define ATAN2_PARTIAL2 { TP_SCALE; const double r_ = xs_ * xs_ + ys_ * ys_; \
                         const int ok_ = r_ > 0.0;                        /* -2xy/r^4, (x^2 - y^2)/r^4 */ \
                         const double o_ = r_ == 0.0 ? 0.0 : NAN; \
                         const double a_ = ok_ ? xs_ / r_ : o_, b_ = ok_ ? ys_ / r_ : o_; \
                         pxx = -2.0 * (a_ * b_) * s_ * s_; pyy = -pxx; \
                         pxy = ok_ ? ((xs_ - ys_) / r_) * ((xs_ + ys_) / r_) * s_ * s_ : o_; }
#define ATAN2_CURVATURE NONLINEAR
#define ATAN2_TAYLOR   if (x == 0.0 && y == 0.0) { for (int k = 1; k <= d; k++) Z[k] = 0.0; } \
                       else ser_atan2(Z, X, Y, d, S0, S1, S2, S3, S4)

/* ---- HYPOT: z = hypot(x, y)   dz = (x dx + y dy) / z          (0 at x == y == 0) --------
 * Where z is subnormal, 0 or overflowed, the partials on x, y scaled by s_ (TP_SCALE); second
 * partials y^2/z^3, -xy/z^3, x^2/z^3 as products of x/z^1.5, y/z^1.5: no overflow */
#define HYPOT_PRIMAL   z = hypot(x, y)
#define HYPOT_PARTIAL  { if (z >= 0x1p-1022 && z != INFINITY) { px = x / z; py = y / z; } \
                         else { TP_SCALE; const double h_ = z > 0.0 ? hypot(xs_, ys_) : 0.0; \
                                const double o_ = z == z ? 0.0 : NAN;   /* NaN: not the origin */ \
                                px = h_ > 0.0 ? xs_ / h_ : o_; py = h_ > 0.0 ? ys_ / h_ : o_; } }
#define HYPOT_PARTIAL2 { TP_SCALE; const double h_ = s_ == 1.0 ? z : hypot(xs_, ys_);  /* z s_ */ \
                         const double q_ = h_ > 0.0 ? 1.0 / sqrt(h_) : 0.0, g_ = sqrt(s_); /* exact */ \
                         const double o_ = h_ == h_ ? 0.0 : NAN; \
                         const double u_ = h_ > 0.0 ? xs_ * q_ / h_ * g_ : o_; \
                         const double v_ = h_ > 0.0 ? ys_ * q_ / h_ * g_ : o_; \
                         pxx = v_ * v_; pxy = -u_ * v_; pyy = u_ * u_; }
#define HYPOT_CURVATURE NONLINEAR
#define HYPOT_TAYLOR   if (x == 0.0 && y == 0.0) { for (int k = 1; k <= d; k++) Z[k] = 0.0; } \
                       else ser_hypot(Z, X, Y, d, S0, S1, S2, S3)

/* ---- ERF: z = erf(x)     dz = 2/sqrt(pi) exp(-x^2) dx ------------------------------------- */
#define ERF_PRIMAL     z = erf(x)
#define ERF_PARTIAL    px = TP_2_SQRTPI * exp(-x * x)
#define ERF_PARTIAL2   pxx = -2.0 * x * px
#define ERF_CURVATURE   NONLINEAR
#define ERF_TAYLOR     S0[0] = -x * x; ser_square_plus(S0, X, d, -1.0);                 /* -x^2 */ \
                       S1[0] = exp(S0[0]); ser_exp(S1, S0, d); \
                       for (int k = 0; k <= d; k++) { S1[k] *= TP_2_SQRTPI; } ser_scale_int(Z, X, S1, d)

/* ---- ABS: z = abs(x)     dz = sign(x) dx                       (abs'(0) = 0) ----------------- */
#define ABS_PRIMAL     z = fabs(x)
#define ABS_PARTIAL    px = x > 0.0 ? 1.0 : (x < 0.0 ? -1.0 : (x == 0.0 ? 0.0 : NAN))
#define ABS_PARTIAL2   pxx = 0.0
#define ABS_CURVATURE   LINEAR
#define ABS_TAYLOR     { double s_ = x > 0.0 ? 1.0 : (x < 0.0 ? -1.0 : (x == 0.0 ? 0.0 : NAN)); \
                         for (int k = 1; k <= d; k++) Z[k] = SER_TIMES(s_, X[k]); }

/* ---- SIGN: z = sign(x)   dz = 0                       (sign(0) = 0, sign(NaN) = NaN) -------- */
#define SIGN_PRIMAL    z = x > 0.0 ? 1.0 : (x < 0.0 ? -1.0 : (x == 0.0 ? 0.0 : x))
#define SIGN_PARTIAL   px = 0.0
#define SIGN_PARTIAL2  pxx = 0.0
#define SIGN_CURVATURE  LINEAR
#define SIGN_TAYLOR    for (int k = 1; k <= d; k++) Z[k] = 0.0

/* ---- MAX: z = maximum(x, y)   NaN propagates; a tie splits the derivative 1/2, 1/2 ---------- */
#define MAX_PRIMAL     z = (x > y || x != x) ? x : y
#define MAX_PARTIAL    px = x > y ? 1.0 : (x < y ? 0.0 : 0.5); py = 1.0 - px
#define MAX_PARTIAL2   pxx = 0.0; pxy = 0.0; pyy = 0.0
#define MAX_CURVATURE   LINEAR
#define MAX_TAYLOR     { double s_ = x > y ? 1.0 : (x < y ? 0.0 : 0.5); \
                         for (int k = 1; k <= d; k++) Z[k] = SER_TIMES(s_, X[k]) + SER_TIMES(1.0 - s_, Y[k]); }

/* ---- MIN: z = minimum(x, y)   NaN propagates; a tie splits the derivative 1/2, 1/2 ---------- */
#define MIN_PRIMAL     z = (x < y || x != x) ? x : y
#define MIN_PARTIAL    px = x < y ? 1.0 : (x > y ? 0.0 : 0.5); py = 1.0 - px
#define MIN_PARTIAL2   pxx = 0.0; pxy = 0.0; pyy = 0.0
#define MIN_CURVATURE   LINEAR
#define MIN_TAYLOR     { double s_ = x < y ? 1.0 : (x > y ? 0.0 : 0.5); \
                         for (int k = 1; k <= d; k++) Z[k] = SER_TIMES(s_, X[k]) + SER_TIMES(1.0 - s_, Y[k]); }

/* ---- WHERE: z = y if x != 0 else w    only the chosen operand gets a derivative, so a NaN or
 * Inf on the other side never reaches it (no 0 * NaN) ---------------------------------------- */
#define WHERE_PRIMAL   z = (x != 0.0) ? y : w
#define WHERE_PARTIAL  px = 0.0; py = (x != 0.0) ? 1.0 : 0.0; pw = 1.0 - py
#define WHERE_PARTIAL2 pxx = 0.0; pxy = 0.0; pyy = 0.0; pxw = 0.0; pyw = 0.0; pww = 0.0
#define WHERE_CURVATURE LINEAR
#define WHERE_TAYLOR   for (int k = 1; k <= d; k++) Z[k] = (x != 0.0) ? Y[k] : W[k]
#define WHERE_TANGENT  { const int32_t is_ = (x != 0.0) ? iy : iw; \
                         for (int j = 0; j < K; j++) TAN(iz, j) = TAN(is_, j); }
#define WHERE_ADJOINT  { const int32_t is_ = (x != 0.0) ? iy : iw; \
                         for (int j = 0; j < K; j++) ADJ(is_, j) += ADJ(iz, j); }
/* second order: the adjoint and its tangent D go to the chosen operand only */
#define WHERE_SECOND   { const int32_t is_ = (x != 0.0) ? iy : iw; A[is_] += A[iz]; \
                         for (int64_t j = 0; j < K; j++) DOT_(is_, j) += DOT_(iz, j); }

/* ---- SUM: z = x_1 + ... + x_n ---------------------------------------------------------------- */
#define SUM_PRIMAL     { z = 0.0; for (int32_t i = 0; i < n; i++) z += VAL(i); }
#define SUM_PARTIAL    pi = 1.0
#define SUM_DPARTIAL   dpi = 0.0
#define SUM_CURVATURE   LINEAR
#define SUM_TAYLOR     for (int k = 1; k <= d; k++) { Z[k] = 0.0; for (int32_t i = 0; i < n; i++) Z[k] += SER(i)[k]; }

/* ---- DOT: z = x_1*x_2 + x_3*x_4 + ...    (n even; dz/dx_i = its pair partner) -------------- */
#define DOT_PRIMAL     { z = 0.0; for (int32_t i = 0; i < n; i += 2) z += VAL(i) * VAL(i + 1); }
#define DOT_PARTIAL    pi = VAL(i ^ 1)
#define DOT_DPARTIAL   dpi = TVAL(i ^ 1)
#define DOT_CURVATURE   BILINEAR
#define DOT_TAYLOR     for (int k = 1; k <= d; k++) { double s_ = 0.0; \
                           for (int32_t i = 0; i < n; i += 2) for (int j = 0; j <= k; j++) \
                               s_ += SER_TIMES(SER(i)[j], SER(i + 1)[k - j]); \
                           Z[k] = s_; }

/* ---- LT, LE, GT, GE, EQ, NE: z = (x REL y) as 1 or 0; w the outcome at recording --------------
 * No derivative: a comparison is piecewise constant. Replays check z == w (w NaN: no check). */
#define LT_PRIMAL      z = (x < y) ? 1.0 : 0.0; CHECK_GUARD(z, w)
#define LE_PRIMAL      z = (x <= y) ? 1.0 : 0.0; CHECK_GUARD(z, w)
#define GT_PRIMAL      z = (x > y) ? 1.0 : 0.0; CHECK_GUARD(z, w)
#define GE_PRIMAL      z = (x >= y) ? 1.0 : 0.0; CHECK_GUARD(z, w)
#define EQ_PRIMAL      z = (x == y) ? 1.0 : 0.0; CHECK_GUARD(z, w)
#define NE_PRIMAL      z = (x != y) ? 1.0 : 0.0; CHECK_GUARD(z, w)
/* the rules every GUARD op shares (its kind's, not per op: see RULE_OF below) */
#define GUARD_PARTIAL  px = 0.0; py = 0.0; pw = 0.0
#define GUARD_TAYLOR   for (int k = 1; k <= d; k++) { Z[k] = 0.0; }
#define GUARD_CURVATURE LINEAR

/* ---- CALL: (z_1 .. z_n) = f(x_1 .. x_k), a user-defined primitive ----------------------------
 * Its operand words q[0 .. n-1]: the number of outputs r (a plain count: its results are the
 * variables iz .. iz+r-1), its primitive's id (a constant), then its k inputs. The rules are the
 * user's Python callables, reached through primitive.c; each sweep says what PRIMITIVE_CALL does
 * (it writes all r results). */
#define CALL_PRIMAL    PRIMITIVE_CALL
#define CALL_PARTIAL   pi = NAN                     /* (shown by traces: not known locally) */
#define CALL_TAYLOR    return TP_ENORULE
#define CALL_CURVATURE NONLINEAR

/* ---- MAP, REDUCE, MATMUL, PACK: array block operations (tape.h, "Block operations") -------
 * One op over blocks of variables; block.c runs MAP's element rules from the banners above (the
 * scalar op named by its attribute), matmul.c the bilinear product. Each sweep says what
 * BLOCK_PRIMAL, BLOCK_TAYLOR do (they write all r results); traces show no local partials. */
#define MAP_PRIMAL     BLOCK_PRIMAL(TP_OP_MAP)
#define REDUCE_PRIMAL  BLOCK_PRIMAL(TP_OP_REDUCE)
#define MATMUL_PRIMAL  BLOCK_PRIMAL(TP_OP_MATMUL)
#define PACK_PRIMAL    BLOCK_PRIMAL(TP_OP_PACK)
#define GATHER_PRIMAL  BLOCK_PRIMAL(TP_OP_GATHER)       /* gather.c: indexing, updates */
#define SCATTER_PRIMAL BLOCK_PRIMAL(TP_OP_SCATTER)
#define SCATTER_ADD_PRIMAL BLOCK_PRIMAL(TP_OP_SCATTER_ADD)

/* ---- AMAX, AMIN: z = max (min) of x over axes, one block op (reduce.c) ----------------------
 * The derivative goes to the elements equal to z, split evenly among ties (as JAX's max and
 * torch.amax; ad.maximum splits a tie 1/2, 1/2 likewise); NaN propagates (the first NaN is z and
 * the NaN elements share its derivative). Taylor: the tied elements' series averaged. */
#define AMAX_PRIMAL    BLOCK_PRIMAL(TP_OP_AMAX)
#define AMIN_PRIMAL    BLOCK_PRIMAL(TP_OP_AMIN)
#define FOLD_BETTER(op, x, b) ((op) == TP_OP_AMAX ? (x) > (b) : (x) < (b))
#define FOLD_TIE(x, z) ((x) == (z) || ((x) != (x) && (z) != (z)))

/* ---- PROD: z = prod of x over axes     dz/dx_i = prod_(j != i) x_j (reduce.c) ---------------
 * Every rule multiplies, never divides by x_i: exact with zeros in the block. Tangent: the
 * running product's product rule; adjoint: prefix times suffix products; second order: their
 * tangents; Taylor: the series multiplied in turn. */
#define PROD_PRIMAL    BLOCK_PRIMAL(TP_OP_PROD)
#define BLOCK_PARTIAL(op)   pi = NAN
#define BLOCK_CURVATURE(op) NONLINEAR

/* ---- LOGADDEXP: z = log(exp(x) + exp(y)) = max + log1p(exp(-|x - y|))  (no overflow) -------
 * dz = s(x - y) dx + s(y - x) dy with the logistic s; equal infinities give that infinity and a
 * tie's split 1/2, 1/2 */
#define LOGADDEXP_PRIMAL   z = x == y ? x + TP_LN2 : ((x > y || x != x) ? x : y) + log1p(exp(-fabs(x - y)))
#define LOGADDEXP_PARTIAL  { const double d_ = x - y; px = d_ == d_ ? 1.0 / (1.0 + exp(-d_)) : 0.5; \
                             py = d_ == d_ ? 1.0 / (1.0 + exp(d_)) : 0.5; }
#define LOGADDEXP_PARTIAL2 { double px, py; LOGADDEXP_PARTIAL; pxx = px * py; pxy = -pxx; pyy = pxx; }
#define LOGADDEXP_CURVATURE NONLINEAR
#define LOGADDEXP_TAYLOR   { const int xm_ = x >= y; const double *H = xm_ ? X : Y, *L = xm_ ? Y : X; \
                             for (int k = 0; k <= d; k++) { S0[k] = L[k] - H[k]; }  /* u <= 0 */ \
                             S1[0] = exp(S0[0]); ser_exp(S1, S0, d); \
                             for (int k = 0; k <= d; k++) { S2[k] = S1[k] + (k == 0); } \
                             ser_quot_int(S3, S1, S2, d);                 /* log1p(exp(u)) */ \
                             for (int k = 1; k <= d; k++) { Z[k] = H[k] + S3[k]; } }

/* ---- an op's rule of a given part, by its kind (ops.def's RULE column) ------------------------
 * RULE_OF(RULE, NAME, PART): NAME_PART, except GUARD ops, which share GUARD_PART. */
#define RULE_OF(RULE, NAME, PART) RULE_OF_##RULE(NAME, PART)
#define RULE_OF_PARTIAL(NAME, PART)   NAME##_##PART
#define RULE_OF_CUSTOM(NAME, PART)    NAME##_##PART
#define RULE_OF_PRIMITIVE(NAME, PART) NAME##_##PART
#define RULE_OF_GUARD(NAME, PART)     GUARD_##PART
#define RULE_OF_BLOCK(NAME, PART)     BLOCK_##PART(TP_OP_##NAME)

#endif

/* The sweeps' product of a derivative by a partial (API.md §10.2): +0 when either factor is 0,
 * whatever the other (Inf and NaN included), else the product. Two forms, the same bits. */
#pragma once
#include <stdint.h>
#include <string.h>

/* z_dot = x_dot * p, but +0 for a zero x_dot or a zero p whatever the other (sweep_body.h's
 * TIMES, the same bits): the product, then its bits masked by the comparisons, so that no branch
 * stops a loop from vectorising (a ?: of doubles does, under -ftrapping-math) */
static inline double tp_times(double d, double p)
{
    const double r = d * p;
    uint64_t u;
    memcpy(&u, &r, sizeof u);
    u &= -(uint64_t)((d != 0.0) & (p != 0.0));
    double z;
    memcpy(&z, &u, sizeof z);
    return z;
}
#define TIMES(d, p) tp_times((d), (p))

/* The same product and bits for the one-point sweeps, one test on the way: a product that is
 * neither 0 nor NaN has both factors nonzero (the rule does not apply) */
static inline double tp_times1(double d, double p)
{
    const double r = d * p;
    return __builtin_fabs(r) > 0.0 ? r : (d == 0.0 || p == 0.0) ? 0.0 : r;
}

/* The callback from the C sweeps into Python for user primitives (tapead/primitive.py defines it
 * as a cffi extern "Python+C" function; tapead/_build.py declares it to cffi from this line).
 * mode 0: out (n) = f(x); 1: out (n x K) = J in (k x K); 2: out (k x K) = J^T in (n x K).
 * Returns 0, or -1 with the Python exception kept for tapead/primitive.py to raise.
 * The batch form takes B points at once (x B x k; one direction: in, out B x k or B x n) for a
 * primitive made with vectorized=True; 1: it was not, the caller asks point by point. */
#pragma once
#include <stdint.h>

int tp_py_call(int prim, int mode, int64_t k, const double *x, int64_t n, int64_t K, const double *in, double *out);
int tp_py_call_batch(int prim, int mode, int64_t B, int64_t k, const double *x, int64_t n, const double *in, double *out);

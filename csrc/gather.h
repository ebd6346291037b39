/* GATHER, SCATTER, SCATTER_ADD (gather.c): the index table's checks and the sweeps of the ops
 * that read it, dispatched from block.c and blocktape.c. Arguments as tp_block_* (block.h). */
#pragma once
#include "block.h"

int tp_gather_valid(const tp_tape *t, int op, const int32_t *q, int64_t nb);
int tp_gather_values(const tp_tape *t, int op, const int32_t *q, const double *const *opnd,
                     double *Z);
int tp_gather_tangent(const tp_tape *t, double *T, int64_t K, int op, const int32_t *q,
                      int32_t iz);
int tp_gather_adjoint(const tp_tape *t, double *A, int64_t K, int op, const int32_t *q,
                      int32_t iz);
int tp_gather_second(const tp_tape *t, double *A, double *D, int64_t K, int op,
                     const int32_t *q, int32_t iz);
int tp_gather_taylor(const tp_tape *t, double *S, int64_t D1, int op, const int32_t *q,
                     int32_t iz);

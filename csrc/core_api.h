/* The core's functions that tapead._fast (csrc/fast.c) calls directly, as one typed table.
 *
 * The core lives in the cffi module (tapead._tapead); fast.c is a separate extension. tape.c
 * fills tp_core_api from the functions of tape.h (the compiler checks every entry's type) and
 * tp_api() returns its address, which tapead/var.py hands to fast.c's setup() once. Both sides
 * include this header; opcodes come from the generated enum (tape_impl.h). */
#pragma once
#include "tape.h"

typedef struct tp_core_api {
    tp_tape *(*tape_new)(void);
    void (*tape_free)(tp_tape *);
    int (*claim)(tp_tape *);
    void (*close)(tp_tape *);
    int (*closed)(const tp_tape *);
    int64_t (*add_inputs)(tp_tape *, const double *, int64_t);
    int32_t (*rec1)(tp_tape *, int, int32_t);
    int32_t (*rec2)(tp_tape *, int, int32_t, int32_t);
    int32_t (*rec2vc)(tp_tape *, int, int32_t, double);
    int32_t (*rec2cv)(tp_tape *, int, double, int32_t);
    int32_t (*rec3)(tp_tape *, int, int32_t, int32_t, int32_t);
    int (*konst)(tp_tape *, double, int32_t *);
    int (*set_outputs)(tp_tape *, const int32_t *, int64_t);
    int (*guard)(tp_tape *, int64_t, int);
    double (*value)(const tp_tape *, int64_t);
    int64_t (*n_ops)(const tp_tape *);
    int (*forward)(tp_tape *, const double *, double *);
    int (*vjp)(tp_tape *, const double *, int64_t, const double *, double *, double *);
    int32_t (*shape)(tp_tape *, int, const int64_t *, const int64_t *);
    int32_t (*rec_block)(tp_tape *, int, int32_t, int32_t, const int32_t *, int64_t);
    int (*may_record)(const tp_tape *);
    int (*vjp_parts)(tp_tape *, int64_t, const double *const *, const int64_t *, int64_t,
                     const double *, double *, double *);
} tp_core_api;

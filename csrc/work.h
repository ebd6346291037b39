/* Scratch memory of one sweep call. Buffers are cached per thread between calls (repeated replays
 * fault no fresh pages in); a sweep started while another runs in the same thread (a primitive's
 * Python rule replaying a tape) gets private buffers instead. Never part of the tape. */
#pragma once
#include <stddef.h>
#include <stdint.h>

enum { W_VALUES, W_DIRS, W_DIRS2, W_ADJ, W_PRIM, W_BLOCK, W_SLOTS };   /* buffers of a call */

typedef struct {
    double *buf[W_SLOTS];
    size_t cap[W_SLOTS];
    int busy;
} work_cache;

struct tp_tape;

typedef struct {
    work_cache *c;           /* the thread's cache, or `own` when nested */
    work_cache own;
    struct tp_tape *t;       /* the tape swept: no recording on it until work_end */
} work_t;

int work_begin(work_t *w, struct tp_tape *t);       /* TP_OK or TP_ENOMEM */
double *work_buf(work_t *w, int slot, int64_t n);   /* room for n doubles; NULL: no memory */
void work_end(work_t *w);

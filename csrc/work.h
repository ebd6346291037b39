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
    uint64_t kuid;           /* buf[W_VALUES] holds this tape's constants (0: nothing kept) */
    int64_t kn;              /* ... its n_consts of them, below slot 0 */
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
/* buf[W_VALUES] for a sweep of t (n doubles, t's constants at the start, reversed): *kept = 1
 * when they are already there from an earlier sweep of t in this thread (constants are only
 * appended, and a change of n_consts or of the tape's uid misses). */
double *work_values(work_t *w, struct tp_tape *t, int64_t n, int *kept);

/* Scratch memory of sweep calls: see work.h. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "tape_impl.h"
#include "work.h"

#define CACHE_LIMIT ((size_t)2 << 30)      /* a larger buffer is freed at the end of the call */

static pthread_key_t key;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void release(work_cache *c)
{
    for (int i = 0; i < W_SLOTS; i++) { free(c->buf[i]); c->buf[i] = NULL; c->cap[i] = 0; }
}

static void destroy(void *p) { release(p); free(p); }
static void make_key(void) { pthread_key_create(&key, destroy); }

int work_begin(work_t *w, tp_tape *t)
{
    w->t = NULL;
    pthread_once(&once, make_key);
    work_cache *c = pthread_getspecific(key);
    if (!c) {
        if (!(c = calloc(1, sizeof *c))) return TP_ENOMEM;
        if (pthread_setspecific(key, c)) { free(c); return TP_ENOMEM; }
    }
    memset(&w->own, 0, sizeof w->own);
    if (c->busy) w->c = &w->own;                   /* nested: private buffers */
    else { c->busy = 1; w->c = c; }
    w->t = t;
    tp_sweep_begin(t);
    return TP_OK;
}

double *work_buf(work_t *w, int slot, int64_t n)
{
    work_cache *c = w->c;
    if (n < 1) n = 1;
    if ((uint64_t)n > SIZE_MAX / sizeof(double)) return NULL;
    if (slot == W_VALUES) c->kuid = 0;      /* another use: the constants kept are lost */
    if ((size_t)n > c->cap[slot]) {
        free(c->buf[slot]);
        c->buf[slot] = malloc((size_t)n * sizeof(double));
        c->cap[slot] = c->buf[slot] ? (size_t)n : 0;
    }
    return c->buf[slot];
}

void work_end(work_t *w)
{
    work_cache *c = w->c;
    if (w->t) tp_sweep_end(w->t);
    if (c == &w->own) { release(c); return; }
    for (int i = 0; i < W_SLOTS; i++)
        if (c->cap[i] * sizeof(double) > CACHE_LIMIT) {
            free(c->buf[i]); c->buf[i] = NULL; c->cap[i] = 0;
            if (i == W_VALUES) c->kuid = 0;
        }
    c->busy = 0;
}

static uint64_t next_uid;

double *work_values(work_t *w, tp_tape *t, int64_t n, int *kept)
{
    uint64_t uid = __atomic_load_n(&t->uid, __ATOMIC_ACQUIRE);
    if (!uid) {      /* first sweep of t: threads sweeping it at once agree on one uid */
        uint64_t fresh = __atomic_add_fetch(&next_uid, 1, __ATOMIC_RELAXED), zero = 0;
        uid = __atomic_compare_exchange_n(&t->uid, &zero, fresh, 0, __ATOMIC_ACQ_REL,
                                          __ATOMIC_ACQUIRE) ? fresh : zero;
    }
    work_cache *c = w->c;
    uint64_t ku = c->kuid;
    int64_t kn = c->kn;
    double *b = work_buf(w, W_VALUES, n);      /* (clears kuid; it is set again below) */
    if (!b) return NULL;
    *kept = ku == uid && kn == t->n_consts;
    c->kuid = uid;
    c->kn = t->n_consts;
    return b;
}

/* Large arrays of freed tapes, kept for the next tapes. A tape recorded every step (as PyTorch
 * users write a training loop) allocates and frees the same few MB each step; given back to
 * glibc they shrink its heap and every page faults in again the next step (a third of the step).
 * At most SLOTS blocks and LIMIT bytes are kept; anything else goes to free(). Blocks come from
 * malloc, so free() may release any of them. */
#include <pthread.h>
#include <stdlib.h>
#include "tape_impl.h"

#define SLOTS 16
#define LIMIT ((size_t)256 << 20)

static struct { void *p; size_t n; } slot[SLOTS];
static size_t held;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

void *tp_recycled(size_t n, size_t *got)
{
    *got = n;
    if (n < TP_RECYCLE_MIN) return NULL;
    void *p = NULL;
    pthread_mutex_lock(&lock);
    int best = -1;                     /* the smallest kept block of n .. 4n bytes */
    for (int i = 0; i < SLOTS; i++)
        if (slot[i].p && slot[i].n >= n && slot[i].n / 4 <= n && (best < 0 || slot[i].n < slot[best].n))
            best = i;
    if (best >= 0) {
        p = slot[best].p; *got = slot[best].n; held -= *got;
        slot[best].p = NULL;
    }
    pthread_mutex_unlock(&lock);
    return p;
}

void tp_recycle(void *p, size_t n)
{
    if (!p) return;
    if (n >= TP_RECYCLE_MIN) {
        pthread_mutex_lock(&lock);
        for (int i = 0; i < SLOTS && held + n <= LIMIT; i++)
            if (!slot[i].p) {
                slot[i].p = p; slot[i].n = n; held += n;
                p = NULL;
                break;
            }
        pthread_mutex_unlock(&lock);
    }
    free(p);
}

/*
 * bs_threadpool.c - a fixed pool of kernel threads; the caller's thread takes part.
 *
 * A pool of T threads owns T - 1 pthreads. bs_threadpool_run publishes one job (fn, ctx,
 * count) under the mutex, bumps a generation number and wakes the workers with a broadcast;
 * then the caller and the workers take item indices from one atomic counter until it passes
 * count, so a slow thread simply takes fewer items. Each worker, when the counter is spent,
 * decrements the number of workers still inside the job; the caller waits on a second
 * condition variable until that number is zero, so every item's writes happen-before the
 * return of bs_threadpool_run (mutex release/acquire). Between runs the workers sleep on the
 * condition variable, waiting for the generation to change or for the stop flag.
 *
 * Which thread runs which item is not fixed; callers that need per-thread scratch take a
 * slot (see bs_gemm) rather than assume item i runs on thread i. A pool of 1 creates no
 * thread and runs every item inline, in order.
 */
#include "bs_threadpool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "bs_alloc.h"

struct bs_threadpool {
    int threads;               /* T, counting the caller */
    int started;               /* pthreads actually created (T - 1 once construction ends) */
    pthread_t *tids;           /* the workers */
    pthread_mutex_t mu;        /* guards everything below except next */
    pthread_cond_t wake;       /* workers wait here for a new generation or stop */
    pthread_cond_t done;       /* the caller waits here for busy == 0 */
    uint64_t gen;              /* bumped once per run */
    int stop;                  /* set by free: workers exit */
    int busy;                  /* workers still inside the current run */
    void (*fn)(void *ctx, int i);
    void *ctx;
    int count;                 /* items of the current run */
    atomic_int next;           /* next item index to hand out */
};

/* Takes items until none are left. */
static void s_drain(bs_threadpool_t *p, void (*fn)(void *, int), void *ctx, int count)
{
    for (;;) {
        int i = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
        if (i >= count)
            return;
        fn(ctx, i);
    }
}

static void *s_worker(void *arg)
{
    bs_threadpool_t *p = arg;
    uint64_t seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && p->gen == seen)
            pthread_cond_wait(&p->wake, &p->mu);
        if (p->stop)
            break;
        seen = p->gen;
        void (*fn)(void *, int) = p->fn;
        void *ctx = p->ctx;
        int count = p->count;
        pthread_mutex_unlock(&p->mu);
        s_drain(p, fn, ctx, count);
        pthread_mutex_lock(&p->mu);
        if (--p->busy == 0)
            pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

bs_threadpool_t *bs_threadpool_new(int threads)
{
    if (threads < 1)
        return NULL;
    bs_threadpool_t *p = bs_calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->threads = threads;
    atomic_init(&p->next, 0);
    if (threads == 1)
        return p;
    p->tids = bs_calloc((size_t)threads - 1, sizeof *p->tids);
    if (!p->tids) {
        bs_free(p);
        return NULL;
    }
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        bs_free(p->tids);
        bs_free(p);
        return NULL;
    }
    if (pthread_cond_init(&p->wake, NULL) != 0) {
        pthread_mutex_destroy(&p->mu);
        bs_free(p->tids);
        bs_free(p);
        return NULL;
    }
    if (pthread_cond_init(&p->done, NULL) != 0) {
        pthread_cond_destroy(&p->wake);
        pthread_mutex_destroy(&p->mu);
        bs_free(p->tids);
        bs_free(p);
        return NULL;
    }
    for (int t = 0; t < threads - 1; t++) {
        if (pthread_create(&p->tids[t], NULL, s_worker, p) != 0) {
            bs_threadpool_free(&p); /* joins the ones already started */
            return NULL;
        }
        p->started++;
    }
    return p;
}

void bs_threadpool_free(bs_threadpool_t **pp)
{
    if (!pp || !*pp)
        return;
    bs_threadpool_t *p = *pp;
    *pp = NULL;
    if (p->threads > 1) {
        pthread_mutex_lock(&p->mu);
        p->stop = 1;
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
        for (int t = 0; t < p->started; t++)
            pthread_join(p->tids[t], NULL);
        pthread_cond_destroy(&p->done);
        pthread_cond_destroy(&p->wake);
        pthread_mutex_destroy(&p->mu);
        bs_free(p->tids);
    }
    bs_free(p);
}

int bs_threadpool_size(const bs_threadpool_t *p)
{
    return p ? p->threads : 1;
}

void bs_threadpool_run(bs_threadpool_t *p, int n, void (*fn)(void *ctx, int i), void *ctx)
{
    if (n <= 0)
        return;
    if (!p || p->threads == 1 || n == 1) {
        for (int i = 0; i < n; i++)
            fn(ctx, i);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->ctx = ctx;
    p->count = n;
    atomic_store_explicit(&p->next, 0, memory_order_relaxed);
    p->busy = p->started;
    p->gen++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);

    s_drain(p, fn, ctx, n);

    pthread_mutex_lock(&p->mu);
    while (p->busy > 0)
        pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

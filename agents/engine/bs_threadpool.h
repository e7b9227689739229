/*
 * bs_threadpool.h - a fixed pool of kernel threads (--threads). The caller's thread takes
 * part, so a pool of 1 runs everything inline with no synchronisation. Workers sleep on a
 * condition variable between runs.
 */
#ifndef BS_THREADPOOL_H
#define BS_THREADPOOL_H

typedef struct bs_threadpool bs_threadpool_t;

/* threads >= 1; NULL on failure. Free with bs_threadpool_free (NULL-safe, clears *p). */
bs_threadpool_t *bs_threadpool_new(int threads);
void bs_threadpool_free(bs_threadpool_t **p);
int bs_threadpool_size(const bs_threadpool_t *p); /* 1 for NULL */
/* Runs fn(ctx, i) for every i in [0, n), spread over the threads; returns when all are done.
 * p may be NULL (runs inline). Not reentrant: fn must not call bs_threadpool_run. */
void bs_threadpool_run(bs_threadpool_t *p, int n, void (*fn)(void *ctx, int i), void *ctx);

#endif

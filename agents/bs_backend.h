/*
 * bs_backend.h - what runs a job on the device: the backend interface and its registry.
 *
 * A backend turns one job (a model file, a per-layer precision assignment, data files and
 * measurement settings) into a metrics record. The agent prepares everything a backend needs
 * before calling it: every file named by the job is fetched, verified and given as a path in
 * the cache. A backend never touches the network, the socket or the cache: run() is called on
 * a worker thread while the agent's loop thread keeps the session alive, and it must be safe
 * to call from any thread (no global mutable state without a lock).
 *
 * Backends are listed in one static registry (bs_backend.c); the agent advertises their names
 * in HELLO and picks one by the JOB's "backend" field: "sim", a synthetic device for tests and
 * scale, and "engine", the built-in inference engine (bs_backend_engine.c, bs_run.h).
 */
#ifndef BS_BACKEND_H
#define BS_BACKEND_H

#include <stdatomic.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "bs_error.h"
#include "bs_metrics.h"

/* One job as a backend sees it. Everything is borrowed from the agent and stays valid (and
 * unchanged) until run() returns. */
typedef struct bs_job_spec {
    const char *model_path;  /* the ONNX model in the cache; NULL if the job named none */
    const char *assignment;  /* canonical assignment "conv1=w8a8,fc=w4a32" */
    const char *eval_images; /* cache paths of the data files, or NULL */
    const char *eval_labels;
    const char *calib_images;
    const cJSON *measure; /* JOB.measure: min_runs, warmup, ...; may be NULL */
    const cJSON *data;    /* JOB.data: input names, preprocessing, ...; may be NULL */
    int threads;          /* worker threads the backend may use, >= 1 */
    /* Set to nonzero by the agent when the job must stop (the agent is shutting down);
     * a backend checks it between steps and returns BS_ECANCELED. NULL: never canceled. */
    const atomic_int *cancel;
    /* Where a backend reports how long loading the model took (ms), -1 when not separable.
     * The agent sets *load_ms = -1 before run(); NULL: not wanted. */
    int64_t *load_ms;
} bs_job_spec_t;

typedef struct bs_backend_ops {
    const char *name; /* advertised in HELLO, matched against JOB.backend */
    int simulated;    /* 1: numbers are synthetic (metrics.simulated is set) */
    /* Runs the job: 0 with *out filled (caller's bs_metrics_init'ed record), or a negative
     * BS_E* code with err saying what failed (it becomes the RESULT's error). */
    int (*run)(const bs_job_spec_t *job, bs_metrics_t *out, bs_err_t *err);
} bs_backend_ops_t;

/* The registered backend called name, or NULL. */
const bs_backend_ops_t *bs_backend_find(const char *name);
/* Registered backends, in registry order: bs_backend_count() of them. */
int bs_backend_count(void);
const bs_backend_ops_t *bs_backend_at(int i); /* NULL if i is out of range */
/* A new JSON array of the registered names, for HELLO; caller owns; NULL on OOM. */
cJSON *bs_backend_names(void);

/* The backends themselves (defined in bs_backend_<name>.c). */
extern const bs_backend_ops_t bs_backend_sim;
extern const bs_backend_ops_t bs_backend_engine; /* bs_backend_engine.c: the built-in engine */

#endif

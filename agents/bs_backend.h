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
 *
 * A backend may also run sensitivity jobs (JOB.kind "sensitivity", proto/PROTOCOL.md): the
 * job's base assignment once (the baseline), then each layer alone at each of the job's
 * precisions, the metric of every one into a bs_sens_result_t. That entry is optional; the
 * agent finds it with bs_backend_sensitivity() and answers EUNSUPPORTED where there is none.
 */
#ifndef BS_BACKEND_H
#define BS_BACKEND_H

#include <stdatomic.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "bs_error.h"
#include "bs_metrics.h"
#include "bs_precision.h"

#define BS_SENS_MAX_PRECS 18 /* distinct wBaB precisions: 9 weight x 2 activation widths */

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
    /* Sensitivity jobs: JOB.precisions, parsed and distinct (none for an evaluation). The
     * base configuration is `assignment`. */
    int n_precisions;
    const bs_prec_t *precisions;
    /* The agent's energy sensors (bs_sensors.h), found once at start; NULL: none looked for.
     * A backend measures energy on the best readable one (BS_SENSOR_BEST). */
    struct bs_sensor_set *sensors;
    /* Where a backend may leave a per-layer profile (RESULT metrics.profile, PROTOCOL.md):
     * a new cJSON object the agent takes over. NULL: not wanted. */
    cJSON **profile;
} bs_job_spec_t;

/* One (layer, precision) measurement of a sensitivity job. */
typedef struct bs_sens_item {
    char *layer;  /* owned */
    bs_prec_t prec;
    double value; /* the metric with this layer alone at prec; NAN: not measured */
    char *error;  /* owned: why value is NAN ("EMODEL: ..."), else NULL */
} bs_sens_item_t;

/* What a sensitivity job measured. bs_sens_result_init before use, bs_sens_result_free after. */
typedef struct bs_sens_result {
    char metric[24];       /* "top1", "top1_agreement" */
    double baseline;       /* the metric of the base assignment, in [0, 1] */
    int simulated;         /* 1: synthetic (sim) */
    char backend[16];
    int n, cap;
    bs_sens_item_t *items; /* owned: layers in graph order, each at the precisions in order */
} bs_sens_result_t;

void bs_sens_result_init(bs_sens_result_t *r);
void bs_sens_result_free(bs_sens_result_t *r); /* NULL-safe; leaves *r initialised */
/* Appends a row (layer and error copied; error NULL when value is known). 0 or BS_ENOMEM. */
int bs_sens_result_add(bs_sens_result_t *r, const char *layer, bs_prec_t prec, double value,
                       const char *error);
/* RESULT.sensitivity as PROTOCOL.md defines it: {"metric", "baseline", "rows": [{"layer",
 * "precision", "value", "delta", "error"?}], "simulated", "backend"}; value and delta null
 * when unknown. Caller owns; NULL on OOM. */
cJSON *bs_sens_result_to_json(const bs_sens_result_t *r);

/* A backend's sensitivity entry: 0 with *out filled (bs_sens_result_init'ed by the caller), or
 * a negative BS_E* code with err saying what failed (the baseline could not be measured, the
 * job was canceled, ...). One configuration that cannot run is a row with an error, not a
 * failure of the job. */
typedef int (*bs_sens_fn)(const bs_job_spec_t *job, bs_sens_result_t *out, bs_err_t *err);

typedef struct bs_backend_ops {
    const char *name; /* advertised in HELLO, matched against JOB.backend */
    int simulated;    /* 1: numbers are synthetic (metrics.simulated is set) */
    /* Runs the job: 0 with *out filled (caller's bs_metrics_init'ed record), or a negative
     * BS_E* code with err saying what failed (it becomes the RESULT's error). */
    int (*run)(const bs_job_spec_t *job, bs_metrics_t *out, bs_err_t *err);
    bs_sens_fn sensitivity; /* optional: NULL when the backend cannot run sensitivity jobs */
} bs_backend_ops_t;

/* The registered backend called name, or NULL. */
const bs_backend_ops_t *bs_backend_find(const char *name);
/* Registered backends, in registry order: bs_backend_count() of them. */
int bs_backend_count(void);
const bs_backend_ops_t *bs_backend_at(int i); /* NULL if i is out of range */
/* A new JSON array of the registered names, for HELLO; caller owns; NULL on OOM. */
cJSON *bs_backend_names(void);
/* The sensitivity entry of a backend, or NULL when it has none. */
bs_sens_fn bs_backend_sensitivity(const bs_backend_ops_t *ops);

/* The backends themselves (defined in bs_backend_<name>.c). */
extern const bs_backend_ops_t bs_backend_sim;
extern const bs_backend_ops_t bs_backend_engine; /* bs_backend_engine.c: the built-in engine */

#endif

/*
 * bs_metrics.h - what one evaluation measured, and the names campaigns use for it.
 *
 * Unknown values are NAN (doubles) or -1 (byte counts) and are stored as SQL NULL, never as a
 * made-up number. Energy always carries its source ("rapl", "ina3221", "none", ...) and, when
 * unknown, the reason. A result produced by the sim backend has simulated = 1 and is labelled
 * so in the database and in every query output.
 *
 * The metric table (BS_METRIC_MAP) is the single list of names an objective or constraint may
 * use; bs_metrics_get() reads one by name.
 */
#ifndef BS_METRICS_H
#define BS_METRICS_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "bs_error.h"

/* X(name, default goal: +1 maximise / -1 minimise, description) */
#define BS_METRIC_MAP(X)                                                                         \
    X(accuracy, +1, "top-1 accuracy (or top-1 agreement with fp32), 0..1")                       \
    X(latency_min_ms, -1, "minimum latency, ms")                                                 \
    X(latency_median_ms, -1, "median latency, ms")                                               \
    X(latency_mean_ms, -1, "mean latency, ms")                                                   \
    X(latency_p90_ms, -1, "90th percentile latency, ms")                                         \
    X(latency_p99_ms, -1, "99th percentile latency, ms")                                         \
    X(weight_bytes, -1, "bytes of weights held by the engine, scales included")                  \
    X(arena_bytes, -1, "peak activation arena, bytes")                                           \
    X(peak_rss_bytes, -1, "process peak resident memory during the job, bytes")                  \
    X(energy_j, -1, "energy per inference, joules")

typedef struct bs_metrics {
    double accuracy;      /* NAN if unknown */
    char metric[24];      /* how accuracy was computed: "top1", "top1_agreement", "" */
    double lat_min_ms, lat_median_ms, lat_mean_ms, lat_p90_ms, lat_p99_ms, lat_std_ms, lat_cv;
    int64_t lat_runs;     /* timed runs behind the statistics, 0 if none */
    int64_t weight_bytes; /* -1 if unknown */
    int64_t arena_bytes;
    int64_t peak_rss_bytes;
    double energy_j;         /* NAN if unknown */
    char energy_source[16];  /* "none" when unknown */
    char energy_reason[128]; /* why unknown, "" otherwise */
    double energy_dynamic_j; /* per inference, above idle power; NAN if unknown */
    double energy_idle_w;    /* idle power measured before the job; NAN if unknown */
    double energy_window_s;  /* the measured window; NAN if none */
    int64_t energy_samples;  /* sensor reads / power samples behind the figure; 0 if none */
    int64_t energy_runs;     /* inferences in the window; 0 if none */
    int simulated;           /* 1: produced by the sim backend, not measured */
    char backend[16];        /* "sim", "engine" */
    /* how the run went (JSON "run"; all optional): */
    int threads;             /* kernel threads used; 0 if unknown */
    char cpus[64];           /* CPUs the job's threads could run on ("0-3"), "" if unknown */
    int remeasures;          /* extra timing passes because of a high CV */
    int unstable;            /* 1: CV stayed above measure.cv_max; 0: stable; -1 unknown */
    double temp_before_c, temp_after_c;   /* hottest thermal zone; NAN if unknown */
    double freq_before_mhz, freq_after_mhz; /* mean current frequency of those CPUs; NAN */
    int throttled;           /* 1: frequency fell by over 10% during the job; -1 unknown */
    char agent_version[24];  /* bitscout version of the agent that measured */
    char engine[48];         /* engine build: "bitscout-engine 0.1.0 avx512/avx512vnni" */
} bs_metrics_t;

void bs_metrics_init(bs_metrics_t *m); /* everything unknown, energy source "none" */
int bs_metric_name_valid(const char *name);
int bs_metric_default_goal(const char *name); /* +1, -1, 0 if unknown name */
/* Comma-separated list of the valid names, for error messages. Static storage. */
const char *bs_metric_names_list(void);
/* Reads a metric by name: 0 with *out set, BS_ENOENT if the value is unknown (NAN/-1),
 * BS_EINVAL for an unknown name. */
int bs_metrics_get(const bs_metrics_t *m, const char *name, double *out);

/* JSON form used in RESULT messages (see proto/PROTOCOL.md). to_json returns a new object
 * (caller owns) or NULL on OOM; unknown values are JSON null. from_json checks each field's
 * type and range and names the offending field in err. */
cJSON *bs_metrics_to_json(const bs_metrics_t *m);
int bs_metrics_from_json(const cJSON *obj, bs_metrics_t *m, bs_err_t *err);

#endif

/*
 * bs_run.h - running a model on this device with the built-in engine: the one code path behind
 * both the "engine" backend (jobs from a searcher) and `bitscout-agent run` (by hand).
 *
 * The steps, each a function here so both callers share them:
 *   load      bs_run_load: the ONNX model through bs_graph_load, batch dimension 1 where the
 *             model leaves it free, the given number of kernel threads;
 *   evaluate  bs_run_evaluate: every sample of a data set (bs_data.h) through the model, in
 *             batches of the model's batch size, and the metric: top-1 accuracy with labels;
 *             without labels, top-1 agreement with a reference output set and the SQNR;
 *   time      bs_run_time: single-stream timing in the manner of MLPerf: warmup_runs untimed
 *             runs, then timed runs until both min_runs and min_time_ms are reached, bounded
 *             by max_time_ms (and by BS_RUN_MAX_SAMPLES runs), summarised with bs_stats;
 *   memory    peak RSS as the kernel's VmHWM, reset at the start of a job by writing "5" to
 *             /proc/self/clear_refs. Where that write is refused (old kernels, some sandboxes)
 *             the reported peak is the process's peak since it started, which can only be
 *             higher; nothing in the metrics says which happened (the log does, at debug).
 * bs_run_job chains them for a backend job; bs_run_main is the `run` subcommand.
 */
#ifndef BS_RUN_H
#define BS_RUN_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "bs_data.h"
#include "bs_error.h"
#include "bs_graph.h"
#include "bs_metrics.h"
#include "bs_stats.h"

#define BS_RUN_MAX_SAMPLES 100000 /* timed runs kept at most (the config's min_runs cap) */

typedef struct bs_measure_opts {
    int64_t warmup_runs; /* untimed runs first; default 5 */
    double warmup_min_ms; /* and untimed for at least this long; default 100 */
    int64_t min_runs;    /* at least this many timed runs; default 20, >= 1 */
    double min_time_ms;  /* and at least this long; default 500 */
    double max_time_ms;  /* but never longer than this (per pass); default 10000 */
    double cv_max;       /* a pass whose coefficient of variation exceeds this is measured
                            again; default 0.05 */
    int64_t remeasure_max; /* at most this many more passes; default 2 */
    double cooldown_ms;  /* idle before the job (thermal recovery); default 0 */
    char cpus[64];       /* CPU list to pin the job's threads to ("4-7", "0,2"); "" = any */
    double energy_ms;    /* energy window: inferences run back to back for at least this
                            long (and ten sensor periods); 0: no energy; default 2000 */
    double idle_ms;      /* idle power measured this long first; 0: none; default 1000 */
    int64_t profile_runs; /* per-layer profile over this many runs after the timing; 0: none;
                             default 10 */
    double energy_estimate_w; /* > 0: without a usable sensor, estimate energy per inference as
                                 this many watts x the median latency, stored with source
                                 "estimate"; 0 (default): no estimate, energy unknown */
} bs_measure_opts_t;

void bs_measure_defaults(bs_measure_opts_t *m);
/* Reads the keys above from a JOB's measure object (NULL: defaults); other keys (backend,
 * threads, ...) are left to others. err names the key: "measure.min_runs: expected ...". */
int bs_measure_from_json(const cJSON *measure, bs_measure_opts_t *out, bs_err_t *err);

/* Loads a model for running. *g is the caller's (bs_graph_free). */
int bs_run_load(const char *model_path, int threads, bs_graph_t **g, bs_err_t *err);

/* How integer precisions are made: weight scales and activation calibration. */
typedef struct bs_quant_opts {
    int wscale_minmax;        /* 1: weight scales by min-max; 0 (default): MSE clipping search */
    int calib_method;         /* BS_CALIB_MINMAX (default), BS_CALIB_PERCENTILE, BS_CALIB_MSE */
    double percentile;        /* for BS_CALIB_PERCENTILE, in (50, 100]; default 99.99 */
    const char *calib_images; /* calibration images (IDX / npy); NULL: none */
    int64_t calib_count;      /* samples from the start of the file; 0: all */
    const bs_preprocess_t *pre; /* NULL: defaults */
} bs_quant_opts_t;

void bs_quant_opts_default(bs_quant_opts_t *q);
/* Reads a JOB's or campaign's "quantization" object: {"weights": "mse"|"minmax",
 * "activations": "minmax"|"percentile"|"mse", "percentile": 99.99} (NULL: defaults); the data
 * fields of q are left as they are. err names the key. */
int bs_quant_opts_from_json(const cJSON *obj, bs_quant_opts_t *q, bs_err_t *err);

/* A JOB's "data" object (PROTOCOL.md) as the engine takes it: data.preprocess into *pre,
 * data.eval_count into *eval_count (0 when absent), and into *q (bs_quant_opts_default'ed
 * here) data.quantization and data.calib_count. Errors are prefixed "JOB: data...". */
int bs_run_job_data(const cJSON *data, bs_preprocess_t *pre, int64_t *eval_count,
                    bs_quant_opts_t *q, bs_err_t *err);

/* Runs the float32 model on q's calibration images and returns uint8 parameters for the input
 * of every weight layer (*out the caller's: bs_act_table_free). BS_EINVAL when q names no
 * calibration images. */
int bs_run_calibrate(const char *model_path, int threads, const bs_quant_opts_t *q,
                     bs_act_table_t *out, bs_err_t *err);

/* The same on a loaded float32 graph g (all w32a32) and samples ds (input 0); used by
 * bs_run_calibrate and by benchmarks that calibrate on synthetic inputs. */
int bs_run_calibrate_graph(bs_graph_t *g, const bs_dataset_t *ds, const bs_quant_opts_t *q,
                           bs_act_table_t *out, bs_err_t *err);

/* Loads a model at a precision assignment (or spec; NULL: all fp32). act: calibration from
 * bs_run_calibrate, or NULL to calibrate here when a layer has int8 activations. *g is the
 * caller's (bs_graph_free). Unknown layer names and impossible precisions fail with BS_EINVAL
 * listing the valid names. */
int bs_run_load_prec(const char *model_path, int threads, const char *assignment,
                     const bs_quant_opts_t *q, const bs_act_table_t *act, bs_graph_t **g,
                     bs_err_t *err);

/* Checks an assignment (or any precision spec) against the model's weight layers, named as in
 * common/bs_model.h: BS_EINVAL listing the valid names when a pattern matches none or a
 * precision is malformed. NULL or "" means all fp32. */
int bs_run_check_assignment(const char *model_path, const char *assignment, bs_err_t *err);

typedef struct bs_eval {
    double accuracy; /* 0..1; NAN when unknown */
    char metric[24]; /* "top1" (labels) or "top1_agreement" */
    double sqnr_db;  /* without labels: SQNR of the outputs against the reference; NAN with
                        labels; +INFINITY when identical */
    int64_t samples;
    int64_t classes; /* values of the first output per sample */
} bs_eval_t;

/* Runs every sample of ds through g (input 0, float32) and computes the metric. ref: the
 * reference outputs (ds->count * classes floats, the float32 model's) used without labels;
 * NULL without labels means g itself is the float32 reference (agreement 1, SQNR +inf).
 * outputs: if not NULL, receives the first output of every sample (caller frees, bs_free).
 * BS_ECANCELED when *cancel becomes nonzero between batches. */
int bs_run_evaluate(bs_graph_t *g, const bs_dataset_t *ds, const float *ref,
                    const atomic_int *cancel, bs_eval_t *out, float **outputs, bs_err_t *err);

/* Times g on whatever its inputs hold (set them first): warm-up (warmup_runs and
 * warmup_min_ms), then timed passes; a pass whose coefficient of variation exceeds cv_max is
 * repeated up to remeasure_max times and the steadiest pass (lowest CV) is kept; *remeasures
 * gets the extra passes run and *unstable 1 when even the kept one exceeds cv_max (both may
 * be NULL). */
int bs_run_time(bs_graph_t *g, const bs_measure_opts_t *m, const atomic_int *cancel,
                bs_latency_stats_t *st, int *remeasures, int *unstable, bs_err_t *err);

/* What the machine looked like around a job: the hottest thermal zone and the mean current
 * frequency of the CPUs the job may use, read under the sensor root (BITSCOUT_SENSOR_ROOT,
 * default "/": sys/class/thermal/thermal_zone*\/temp in m°C,
 * sys/devices/system/cpu/cpuN/cpufreq/scaling_cur_freq in kHz). NAN where nothing is readable. */
typedef struct bs_run_env {
    double temp_c;
    double freq_mhz;
} bs_run_env_t;
void bs_run_env_read(const char *cpus, bs_run_env_t *out);
/* The calling thread's CPU set as a list ("0-3,6") into buf ("" when unknown). */
void bs_run_affinity_str(char *buf, size_t cap);


/* Resets the peak-RSS mark (0, or -1 when the kernel refuses) and reads it (bytes, -1 when
 * unknown). */
int bs_run_rss_reset(void);
int64_t bs_run_peak_rss(void);

/* One job for the engine backend. Borrowed pointers, valid during bs_run_job. */
typedef struct bs_run_job {
    const char *model_path;
    const char *assignment; /* NULL: all fp32 */
    int threads;
    const char *images; /* evaluation data; NULL: no accuracy */
    const char *labels; /* NULL: agreement with fp32 instead of accuracy */
    int64_t count;      /* samples from the start of the files; 0: all */
    const bs_preprocess_t *pre;
    bs_measure_opts_t measure;
    const atomic_int *cancel; /* may be NULL */
    int64_t *load_ms;         /* may be NULL */
    bs_quant_opts_t quant;    /* weight scales, calibration method and images (pre: NULL
                                 means the job's pre) */
    struct bs_sensor_set *sensors; /* energy sensors (bs_sensors.h), or NULL: energy unknown */
    cJSON **profile;          /* receives the per-layer profile (bs_run_profile), or NULL */
} bs_run_job_t;

/* The per-layer profile, in a run of its own after the timed runs (never inside them): each
 * node timed alone over `runs` runs of the graph; {"runs": N, "total_ms": sum of the node
 * medians, "other_ms": the nodes that are not weight layers, "layers": [{"layer", "op",
 * "precision", "ms": median}] in graph order}. New object, the caller's; NULL on OOM. */
cJSON *bs_run_profile(bs_graph_t *g, int runs, const atomic_int *cancel, bs_err_t *err);

/* Check assignment, load, evaluate, time, read memory: fills *out (bs_metrics_init'ed by this
 * function) with backend "engine", simulated 0, energy unknown. */
int bs_run_job(const bs_run_job_t *job, bs_metrics_t *out, bs_err_t *err);

/* `bitscout-agent run ...`: argv[0] is "run". Returns the exit status: 0 done, 1 failed (the
 * error is printed), 2 bad usage. */
int bs_run_main(int argc, char **argv);

/* The bad-usage path of bitscout-agent's command lines (main.c and bs_run_main): prints
 * "PROG: " then fmt with its one %s filled by arg, a blank line and usage(stderr), all to
 * stderr. Returns 2, the exit status for bad usage. */
int bs_run_bad_usage(const char *prog, void (*usage)(FILE *out), const char *fmt,
                     const char *arg);

#endif

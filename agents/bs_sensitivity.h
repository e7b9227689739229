/*
 * bs_sensitivity.h - per-layer sensitivity with the built-in engine: for each weight layer
 * alone at each of a list of precisions (every other layer at the base assignment, normally
 * fp32), the metric and its change from the base. Issue 4's sensitivity job; issue 6's
 * `sensitivity` policy seeds from what it measures.
 *
 * One code path serves the two callers: the engine backend's sensitivity entry
 * (bs_sensitivity_engine, a JOB with "kind": "sensitivity", proto/PROTOCOL.md) and the
 * `bitscout-agent sensitivity` subcommand (bs_sensitivity_main), which reads the data paths
 * from a campaign file and prints the table.
 */
#ifndef BS_SENSITIVITY_H
#define BS_SENSITIVITY_H

#include <stdatomic.h>
#include <stdint.h>

#include "bs_backend.h"
#include "bs_data.h"
#include "bs_error.h"
#include "bs_run.h"

/* One sensitivity run. Everything is borrowed and stays valid during bs_sensitivity_run. */
typedef struct bs_sens_run {
    const char *model_path;
    const char *base;       /* base assignment or spec; NULL: every layer fp32 */
    const bs_prec_t *precs; /* the precisions to measure each layer at, n_precs >= 1 */
    int n_precs;
    const char *images;         /* evaluation data (required) */
    const char *labels;         /* NULL: top-1 agreement with the base configuration's outputs */
    int64_t count;              /* samples from the start of the files; 0: all */
    const bs_preprocess_t *pre; /* NULL: defaults */
    bs_quant_opts_t quant;      /* weight scales, calibration method and calibration images */
    int threads;
    const atomic_int *cancel; /* checked before every load and evaluation; may be NULL */
    int64_t *load_ms;         /* the base model's load time (ms); may be NULL */
    int64_t *samples;         /* the number of samples evaluated; may be NULL */
    /* Called after every row, for progress lines; may be NULL. */
    void (*on_row)(void *ud, const bs_sens_item_t *row, int done, int total);
    void *ud;
} bs_sens_run_t;

/* Measures the base configuration once (its metric is out->baseline), calibrates int8
 * activations once when any precision has a8 (the table is reused by every load), then loads
 * and evaluates each layer at each precision. A configuration the engine refuses or fails on
 * is a row with value NAN and the error; the run fails (a negative BS_E* code, err says why)
 * only when the base cannot be measured, on ENOMEM, or when *cancel is set (BS_ECANCELED).
 * *out must be bs_sens_result_init'ed; it is filled with backend "engine", simulated 0. */
int bs_sensitivity_run(const bs_sens_run_t *r, bs_sens_result_t *out, bs_err_t *err);

/* The engine backend's sensitivity entry (bs_backend.h): reads the JOB's data object
 * (preprocess, eval_count, calib_count, quantization) as the engine backend does and runs
 * bs_sensitivity_run on the job's files. Errors are prefixed "engine: ". */
int bs_sensitivity_engine(const bs_job_spec_t *job, bs_sens_result_t *out, bs_err_t *err);

/* `bitscout-agent sensitivity ...`: argv[0] is "sensitivity". Returns the exit status: 0 done,
 * 1 failed (the error is printed), 2 bad usage. */
int bs_sensitivity_main(int argc, char **argv);

#endif

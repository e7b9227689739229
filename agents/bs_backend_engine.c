/*
 * bs_backend_engine.c - "engine": the agent's built-in ONNX engine runs the job for real
 * (simulated = 0).
 *
 * The backend only translates the job (bs_backend.h) into a bs_run_job_t and hands it to
 * bs_run_job (bs_run.c), the same code `bitscout-agent run` uses: check the assignment, load
 * the model at it with the job's threads (integer weights scaled and int8 activations
 * calibrated on calib_images as data.quantization says),
 * evaluate on the job's eval_images / eval_labels files (data.eval_count samples, preprocessed
 * by data.preprocess), time single-sample inference by measure.warmup_runs / min_runs /
 * min_time_ms / max_time_ms, and read weight, arena and peak-RSS bytes. Energy is unknown
 * (issue 5). The cancel flag is checked between runs. Every error is prefixed "engine: ".
 *
 * No global state: run() may be called from any thread.
 */
#include "bs_backend.h"
#include "bs_data.h"
#include "bs_run.h"
#include "bs_sensitivity.h"

#include <math.h>
#include <string.h>

static int s_run(const bs_job_spec_t *job, bs_metrics_t *out, bs_err_t *err)
{
    if (!job->model_path)
        return bs_err_set(err, BS_EINVAL, "engine: the job names no model file (role \"model\")");
    bs_run_job_t rj;
    memset(&rj, 0, sizeof rj);
    bs_preprocess_t pre;
    int rc;
    if ((rc = bs_measure_from_json(job->measure, &rj.measure, err))) {
        bs_err_prefix(err, "engine: JOB");
        return rc;
    }
    if ((rc = bs_run_job_data(job->data, &pre, &rj.count, &rj.quant, err))) {
        bs_err_prefix(err, "engine");
        return rc;
    }
    rj.quant.calib_images = job->calib_images;
    rj.sensors = job->sensors;
    rj.profile = job->profile;
    rj.model_path = job->model_path;
    rj.assignment = job->assignment;
    rj.threads = job->threads;
    rj.images = job->eval_images;
    rj.labels = job->eval_labels;
    rj.pre = &pre;
    rj.cancel = job->cancel;
    rj.load_ms = job->load_ms;
    if ((rc = bs_run_job(&rj, out, err)) != 0)
        bs_err_prefix(err, "engine");
    return rc;
}

const bs_backend_ops_t bs_backend_engine = {
    .name = "engine",
    .simulated = 0,
    .run = s_run,
    .sensitivity = bs_sensitivity_engine, /* bs_sensitivity.c */
};

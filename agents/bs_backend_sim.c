/*
 * bs_backend_sim.c - "sim": a SYNTHETIC device, for tests and for exercising the searcher at
 * scale. Its numbers are made up by a fixed formula and every result it produces is labelled
 * simulated = 1; nothing here measures anything.
 *
 * It does the real work that is not measurement, so the rest of the system is exercised for
 * real: it loads the model's layer list from the fetched ONNX file (bs_model_info_load) and
 * applies the job's assignment over the layer names (bs_spec_apply), failing with BS_EINVAL,
 * and the list of valid names, on an unknown layer or a bad precision.
 *
 * The numbers are a deterministic function of the SHA-256 of the assignment text: the hash
 * seeds a bs_rng, so one configuration always yields the same metrics (no clock, no global
 * state), and lower precisions yield lower accuracy, fewer weight bytes and lower latency:
 *   accuracy    0.92 - sum_l share_l * wpen(w_l) - sum_{l: a_l = 8} share_l * 0.004
 *               + uniform noise in [-0.002, 0.002], clamped to [0, 1]; share_l = the layer's
 *               share of the layers' parameters
 *   latency     base = 0.05 + sum_l n_params_l * 1e-6 * cost(w_l, a_l) ms; min_runs samples
 *               base * (1 + |N(0,1)| * 0.03), summarised by bs_stats_compute
 *   weights     sum_l ceil(n_params_l * w_l / 8) bytes (fp32: 4 bytes a parameter)
 *   arena, RSS and energy: unknown (-1, -1, NAN with source "none").
 * measure.sim_delay_ms sleeps that long (in 10 ms steps, watching the cancel flag) to stand in
 * for run time; measure.sim_fail_rate makes a config fail when the hash's first 32 bits / 2^32
 * fall below it - deterministically, so such a config fails on every attempt.
 *
 * Sensitivity jobs (s_sensitivity) use the same accuracy formula: the baseline is the accuracy
 * an evaluation of the job's base assignment would report, and each row the accuracy of the
 * base with that one layer at that precision - the very number an evaluation of that
 * assignment gives, noise included. sim_delay_ms is slept once for the whole job;
 * sim_fail_rate turns a row (never the baseline) into an unmeasured one with an error.
 */
#include "bs_alloc.h"
#include "bs_backend.h"
#include "bs_model.h"
#include "bs_precision.h"
#include "bs_stats.h"
#include "bs_util.h"

#include <math.h>
#include <sodium.h>
#include <string.h>
#include <time.h>

#define S_MAX_RUNS 100000
#define S_MAX_DELAY_MS (24.0 * 3600.0 * 1000.0)

/* Accuracy penalty and relative cost of a weight width. */
static double s_wpen(int w)
{
    switch (w) {
    case 16:
        return 0.0005;
    case 8:
        return 0.002;
    case 7:
        return 0.004;
    case 6:
        return 0.008;
    case 5:
        return 0.016;
    case 4:
        return 0.035;
    case 3:
        return 0.09;
    case 2:
        return 0.25;
    default:
        return 0.0; /* 32 */
    }
}

static double s_wcost(int w)
{
    switch (w) {
    case 16:
        return 0.8;
    case 8:
    case 7:
    case 6:
        return 0.55;
    case 5:
        return 0.5;
    case 4:
    case 3:
        return 0.45;
    case 2:
        return 0.4;
    default:
        return 1.0; /* 32 */
    }
}

/* Reads measure.<key> as a number in [lo, hi]; absent or null leaves *out at its default. */
static int s_measure_num(const cJSON *measure, const char *key, double lo, double hi, double *out,
                         bs_err_t *err)
{
    const cJSON *it = measure ? cJSON_GetObjectItemCaseSensitive(measure, key) : NULL;
    if (!it || cJSON_IsNull(it))
        return 0;
    if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble) || it->valuedouble < lo ||
        it->valuedouble > hi)
        return bs_err_set(err, BS_EINVAL, "sim: measure.%s: expected a number in [%g, %g]", key,
                          lo, hi);
    *out = it->valuedouble;
    return 0;
}

static double s_gauss(bs_rng_t *r)
{
    double u1 = 1.0 - bs_rng_uniform(r); /* (0, 1]: log() stays finite */
    double u2 = bs_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static int s_canceled(const bs_job_spec_t *job)
{
    return job->cancel && atomic_load(job->cancel);
}

static int s_sleep(const bs_job_spec_t *job, double ms, bs_err_t *err)
{
    uint64_t end = bs_now_ms() + (uint64_t)ms;
    for (;;) {
        if (s_canceled(job))
            return bs_err_set(err, BS_ECANCELED, "sim: canceled");
        uint64_t now = bs_now_ms();
        if (now >= end)
            return 0;
        uint64_t step = end - now < 10 ? end - now : 10;
        struct timespec ts = {0, (long)step * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* The seed of a configuration's numbers: the first 8 bytes of the SHA-256 of its assignment
 * text; *first32 is its top 32 bits / 2^32, in [0, 1) (compared with sim_fail_rate). */
static uint64_t s_seed(const char *assignment, double *first32)
{
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, (const unsigned char *)assignment, strlen(assignment));
    uint64_t seed = 0;
    for (int i = 0; i < 8; i++)
        seed = (seed << 8) | h[i];
    *first32 = (double)(seed >> 32) / 4294967296.0;
    return seed;
}

/* The accuracy formula (see the file comment); noise_u is the configuration's first uniform
 * draw, in [0, 1). */
static double s_accuracy(const bs_model_info_t *mi, const bs_prec_t *p, double noise_u)
{
    double total = 0.0;
    for (int i = 0; i < mi->n_layers; i++)
        total += (double)mi->layers[i].n_params;
    double acc = 0.92;
    for (int i = 0; i < mi->n_layers; i++) {
        double n = (double)mi->layers[i].n_params;
        double share = total > 0.0 ? n / total : 1.0 / mi->n_layers;
        acc -= share * s_wpen(p[i].w);
        if (p[i].a == 8)
            acc -= share * 0.004;
    }
    acc += (noise_u * 2.0 - 1.0) * 0.002;
    return acc < 0.0 ? 0.0 : acc > 1.0 ? 1.0 : acc;
}

/* The numbers, from the parsed layers and precisions (see the file comment). */
static int s_compute(const bs_job_spec_t *job, const bs_model_info_t *mi, const bs_prec_t *p,
                     bs_rng_t *rng, int runs, bs_metrics_t *out, bs_err_t *err)
{
    double base = 0.05;
    int64_t wbytes = 0;
    for (int i = 0; i < mi->n_layers; i++) {
        double n = (double)mi->layers[i].n_params;
        base += n * 1e-6 * (p[i].a == 8 ? 0.45 : 1.0) * s_wcost(p[i].w);
        wbytes += (mi->layers[i].n_params * p[i].w + 7) / 8;
    }
    out->accuracy = s_accuracy(mi, p, bs_rng_uniform(rng));
    strcpy(out->metric, "top1");

    double *samples = bs_malloc(sizeof *samples * (size_t)runs);
    if (!samples)
        return bs_err_set(err, BS_ENOMEM, "sim: out of memory");
    for (int i = 0; i < runs; i++)
        samples[i] = base * (1.0 + fabs(s_gauss(rng)) * 0.03);
    bs_latency_stats_t st;
    int rc = bs_stats_compute(samples, (size_t)runs, &st);
    bs_free(samples);
    if (rc)
        return bs_err_set(err, rc, "sim: latency statistics failed");
    bs_stats_to_metrics(&st, out);

    out->weight_bytes = wbytes;
    out->arena_bytes = -1;
    out->peak_rss_bytes = -1;
    out->energy_j = NAN;
    strcpy(out->energy_source, "none");
    snprintf(out->energy_reason, sizeof out->energy_reason, "sim backend: no sensor");
    out->simulated = 1;
    strcpy(out->backend, "sim");
    (void)job;
    return 0;
}

static int s_run(const bs_job_spec_t *job, bs_metrics_t *out, bs_err_t *err)
{
    if (!job->model_path)
        return bs_err_set(err, BS_EINVAL, "sim: the job names no model file (role \"model\")");
    if (!job->assignment)
        return bs_err_set(err, BS_EINVAL, "sim: the job has no assignment");
    double runs = 20, delay_ms = 0, fail_rate = 0;
    int rc;
    if ((rc = s_measure_num(job->measure, "min_runs", 1, S_MAX_RUNS, &runs, err)) ||
        (rc = s_measure_num(job->measure, "sim_delay_ms", 0, S_MAX_DELAY_MS, &delay_ms, err)) ||
        (rc = s_measure_num(job->measure, "sim_fail_rate", 0, 1, &fail_rate, err)))
        return rc;
    if (runs != floor(runs))
        return bs_err_set(err, BS_EINVAL, "sim: measure.min_runs: expected a whole number");

    uint64_t t0 = bs_now_ms();
    bs_model_info_t mi;
    if ((rc = bs_model_info_load(job->model_path, &mi, err)) != 0)
        return rc;
    if (job->load_ms)
        *job->load_ms = (int64_t)(bs_now_ms() - t0);

    bs_prec_t *precs = bs_malloc(sizeof *precs * (size_t)mi.n_layers);
    const char **names = bs_malloc(sizeof *names * (size_t)mi.n_layers);
    if (!precs || !names) {
        rc = bs_err_set(err, BS_ENOMEM, "sim: out of memory");
        goto done;
    }
    for (int i = 0; i < mi.n_layers; i++) {
        precs[i] = BS_PREC_FP32;
        names[i] = mi.layers[i].name;
    }
    if ((rc = bs_spec_apply(job->assignment, names, mi.n_layers, precs, err)) != 0) {
        bs_err_prefix(err, "sim: assignment");
        goto done;
    }

    double first32;
    bs_rng_t rng;
    bs_rng_seed(&rng, s_seed(job->assignment, &first32));

    if (delay_ms > 0 && (rc = s_sleep(job, delay_ms, err)) != 0)
        goto done;
    if (s_canceled(job)) {
        rc = bs_err_set(err, BS_ECANCELED, "sim: canceled");
        goto done;
    }
    if (first32 < fail_rate) {
        rc = bs_err_set(err, BS_EBACKEND, "sim: injected failure (sim_fail_rate)");
        goto done;
    }
    bs_metrics_init(out);
    rc = s_compute(job, &mi, precs, &rng, (int)runs, out, err);
done:
    bs_free(precs);
    bs_free(names);
    bs_model_info_free(&mi);
    return rc;
}

/* The accuracy an evaluation of these precisions would report (-1 on OOM), and in *fails
 * whether sim_fail_rate would fail it. */
static double s_config_accuracy(const bs_model_info_t *mi, const char *const *names,
                                const bs_prec_t *p, double fail_rate, int *fails)
{
    char *a = bs_assign_format(names, p, mi->n_layers);
    if (!a)
        return -1.0;
    double first32;
    bs_rng_t rng;
    bs_rng_seed(&rng, s_seed(a, &first32));
    bs_free(a);
    *fails = first32 < fail_rate;
    return s_accuracy(mi, p, bs_rng_uniform(&rng));
}

static int s_sensitivity(const bs_job_spec_t *job, bs_sens_result_t *out, bs_err_t *err)
{
    if (!job->model_path)
        return bs_err_set(err, BS_EINVAL, "sim: the job names no model file (role \"model\")");
    if (job->n_precisions < 1 || !job->precisions)
        return bs_err_set(err, BS_EINVAL, "sim: a sensitivity job needs precisions");
    double delay_ms = 0, fail_rate = 0;
    int rc;
    if ((rc = s_measure_num(job->measure, "sim_delay_ms", 0, S_MAX_DELAY_MS, &delay_ms, err)) ||
        (rc = s_measure_num(job->measure, "sim_fail_rate", 0, 1, &fail_rate, err)))
        return rc;
    uint64_t t0 = bs_now_ms();
    bs_model_info_t mi;
    if ((rc = bs_model_info_load(job->model_path, &mi, err)) != 0)
        return rc;
    if (job->load_ms)
        *job->load_ms = (int64_t)(bs_now_ms() - t0);
    int n = mi.n_layers;
    bs_prec_t *base = bs_malloc(sizeof *base * (size_t)(n ? n : 1));
    bs_prec_t *p = bs_malloc(sizeof *p * (size_t)(n ? n : 1));
    const char **names = bs_malloc(sizeof *names * (size_t)(n ? n : 1));
    if (!base || !p || !names) {
        rc = bs_err_set(err, BS_ENOMEM, "sim: out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) {
        base[i] = BS_PREC_FP32;
        names[i] = mi.layers[i].name;
    }
    if (job->assignment && (rc = bs_spec_apply(job->assignment, names, n, base, err)) != 0) {
        bs_err_prefix(err, "sim: assignment");
        goto done;
    }
    if (delay_ms > 0 && (rc = s_sleep(job, delay_ms, err)) != 0)
        goto done;
    int fails;
    out->baseline = s_config_accuracy(&mi, names, base, 0, &fails);
    snprintf(out->metric, sizeof out->metric, "top1");
    snprintf(out->backend, sizeof out->backend, "sim");
    out->simulated = 1;
    memcpy(p, base, sizeof *p * (size_t)n);
    for (int i = 0; i < n && rc == 0; i++) {
        for (int k = 0; k < job->n_precisions && rc == 0; k++) {
            if (s_canceled(job)) {
                rc = bs_err_set(err, BS_ECANCELED, "sim: canceled");
                break;
            }
            p[i] = job->precisions[k];
            double acc = s_config_accuracy(&mi, names, p, fail_rate, &fails);
            if (acc < 0 || out->baseline < 0)
                rc = BS_ENOMEM;
            else if (fails)
                rc = bs_sens_result_add(out, names[i], p[i], NAN,
                                        "EBACKEND: sim: injected failure (sim_fail_rate)");
            else
                rc = bs_sens_result_add(out, names[i], p[i], acc, NULL);
            if (rc == BS_ENOMEM)
                bs_err_set(err, rc, "sim: out of memory");
        }
        p[i] = base[i];
    }
done:
    bs_free(base);
    bs_free(p);
    bs_free(names);
    bs_model_info_free(&mi);
    return rc;
}

const bs_backend_ops_t bs_backend_sim = {
    .name = "sim",
    .simulated = 1,
    .run = s_run,
    .sensitivity = s_sensitivity,
};

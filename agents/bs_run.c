/*
 * bs_run.c - load, evaluate and time a model with the built-in engine (see bs_run.h), and the
 * `bitscout-agent run` subcommand built from the same functions.
 *
 * Evaluation feeds the data set through input 0 in batches of the model's batch size (the
 * last batch padded with zeros, its extra outputs ignored) and keeps the first output of each
 * sample, so metrics are computed once over all of them. Timing uses CLOCK_MONOTONIC around
 * bs_graph_run only: copying inputs is not part of a sample. The subcommand reads the few keys
 * it needs from a campaign file through bs_campaign.h (the agent does not link the searcher's
 * config parser): model, data.eval, data.calibration, data.preprocess and quantization.
 */
#define _GNU_SOURCE /* sched_setaffinity, CPU_SET */
#include "bs_run.h"

#include "bs_campaign.h"

#include "bs_alloc.h"
#include "bs_kernels.h"
#include "bs_log.h"
#include "bs_model.h"
#include "bs_npy.h"
#include "bs_op.h"
#include "bs_precision.h"
#include "bs_qkernels.h"
#include "bs_quant.h"
#include "bs_sensors.h"
#include "bs_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>


static int s_canceled(const atomic_int *cancel)
{
    return cancel && atomic_load(cancel);
}

static double s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- measure settings ---------------------------------------------------------------------- */

void bs_measure_defaults(bs_measure_opts_t *m)
{
    memset(m, 0, sizeof *m);
    m->warmup_runs = 5;
    m->warmup_min_ms = 100;
    m->min_runs = 20;
    m->min_time_ms = 500;
    m->max_time_ms = 10000;
    m->cv_max = 0.05;
    m->remeasure_max = 2;
    m->energy_ms = 2000;
    m->idle_ms = 1000;
    m->profile_runs = 10;
}


static int s_json_num(const cJSON *obj, const char *key, double lo, double hi, int whole,
                      double *out, bs_err_t *err)
{
    const cJSON *it = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    if (!it || cJSON_IsNull(it))
        return 0;
    if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble) || it->valuedouble < lo ||
        it->valuedouble > hi || (whole && it->valuedouble != floor(it->valuedouble)))
        return bs_err_set(err, BS_EINVAL, "measure.%s: expected a%s number in [%g, %g]", key,
                          whole ? " whole" : "", lo, hi);
    *out = it->valuedouble;
    return 0;
}

int bs_measure_from_json(const cJSON *measure, bs_measure_opts_t *out, bs_err_t *err)
{
    bs_measure_defaults(out);
    if (measure && !cJSON_IsObject(measure))
        return bs_err_set(err, BS_EINVAL, "measure: expected an object");
    double w = (double)out->warmup_runs, r = (double)out->min_runs;
    double tmin = out->min_time_ms, tmax = out->max_time_ms;
    double rem = (double)out->remeasure_max;
    int rc;
    if ((rc = s_json_num(measure, "warmup_runs", 0, 100000, 1, &w, err)) ||
        (rc = s_json_num(measure, "warmup_min_ms", 0, 1e9, 0, &out->warmup_min_ms, err)) ||
        (rc = s_json_num(measure, "min_runs", 1, BS_RUN_MAX_SAMPLES, 1, &r, err)) ||
        (rc = s_json_num(measure, "min_time_ms", 0, 1e9, 0, &tmin, err)) ||
        (rc = s_json_num(measure, "max_time_ms", 0, 1e9, 0, &tmax, err)) ||
        (rc = s_json_num(measure, "cv_max", 1e-6, 10, 0, &out->cv_max, err)) ||
        (rc = s_json_num(measure, "remeasure_max", 0, 10, 1, &rem, err)) ||
        (rc = s_json_num(measure, "cooldown_ms", 0, 3.6e6, 0, &out->cooldown_ms, err)) ||
        (rc = s_json_num(measure, "energy_ms", 0, 3.6e6, 0, &out->energy_ms, err)) ||
        (rc = s_json_num(measure, "idle_ms", 0, 3.6e6, 0, &out->idle_ms, err)) ||
        (rc = s_json_num(measure, "energy_estimate_w", 0, 1e5, 0, &out->energy_estimate_w,
                         err)))
        return rc;
    out->remeasure_max = (int64_t)rem;
    double pr = (double)out->profile_runs;
    if ((rc = s_json_num(measure, "profile_runs", 0, 10000, 1, &pr, err)))
        return rc;
    out->profile_runs = (int64_t)pr;
    const cJSON *cpus = measure ? cJSON_GetObjectItemCaseSensitive(measure, "cpus") : NULL;
    if (cpus && !cJSON_IsNull(cpus)) {
        unsigned char mask[128];
        const char *cs = cJSON_GetStringValue(cpus);
        if (!cs || strlen(cs) >= sizeof out->cpus || bs_cpulist_parse(cs, mask) != 0)
            return bs_err_set(err, BS_EINVAL,
                              "measure.cpus: expected a CPU list such as \"4-7\" or "
                              "\"0,2\" (CPUs 0..1023)");
        snprintf(out->cpus, sizeof out->cpus, "%s", cs);
    }
    if (!(tmax > 0) || tmax < tmin)
        return bs_err_set(err, BS_EINVAL,
                          "measure.max_time_ms: expected a number > 0 and >= "
                          "measure.min_time_ms (%g); got %g",
                          tmin, tmax);
    out->warmup_runs = (int64_t)w;
    out->min_runs = (int64_t)r;
    out->min_time_ms = tmin;
    out->max_time_ms = tmax;
    return 0;
}

/* ---- load and check ------------------------------------------------------------------------ */

int bs_run_load(const char *model_path, int threads, bs_graph_t **g, bs_err_t *err)
{
    bs_graph_opts_t o;
    memset(&o, 0, sizeof o);
    o.threads = threads >= 1 ? threads : 1;
    o.free_dim = 1;
    return bs_graph_load(model_path, &o, g, err);
}

/* ---- quantization settings and calibration ------------------------------------------------ */

void bs_quant_opts_default(bs_quant_opts_t *q)
{
    memset(q, 0, sizeof *q);
    q->calib_method = BS_CALIB_MINMAX;
    q->percentile = 99.99;
}

int bs_quant_opts_from_json(const cJSON *obj, bs_quant_opts_t *q, bs_err_t *err)
{
    if (!obj || cJSON_IsNull(obj))
        return 0;
    if (!cJSON_IsObject(obj))
        return bs_err_set(err, BS_EINVAL, "quantization: expected an object");
    const cJSON *it;
    cJSON_ArrayForEach(it, obj)
    {
        const char *k = it->string ? it->string : "";
        const char *v = cJSON_GetStringValue(it);
        if (!strcmp(k, "weights")) {
            if (v && !strcmp(v, "mse"))
                q->wscale_minmax = 0;
            else if (v && !strcmp(v, "minmax"))
                q->wscale_minmax = 1;
            else
                return bs_err_set(err, BS_EINVAL,
                                  "quantization.weights: expected \"mse\" or \"minmax\"");
        } else if (!strcmp(k, "activations")) {
            if (v && !strcmp(v, "minmax"))
                q->calib_method = BS_CALIB_MINMAX;
            else if (v && !strcmp(v, "percentile"))
                q->calib_method = BS_CALIB_PERCENTILE;
            else if (v && !strcmp(v, "mse"))
                q->calib_method = BS_CALIB_MSE;
            else
                return bs_err_set(err, BS_EINVAL,
                                  "quantization.activations: expected \"minmax\", "
                                  "\"percentile\" or \"mse\"");
        } else if (!strcmp(k, "percentile")) {
            if (!cJSON_IsNumber(it) || !(it->valuedouble > 50.0) || it->valuedouble > 100.0)
                return bs_err_set(err, BS_EINVAL,
                                  "quantization.percentile: expected a number in (50, 100]");
            q->percentile = it->valuedouble;
        } else {
            return bs_err_set(err, BS_EINVAL,
                              "quantization: unknown key '%s' (expected weights, activations, "
                              "percentile)",
                              k);
        }
    }
    return 0;
}

/* data.<key>: absent or null leaves *out; else an integer >= 0. */
static int s_data_count(const cJSON *data, const char *key, int64_t *out, bs_err_t *err)
{
    const cJSON *it = data ? cJSON_GetObjectItemCaseSensitive(data, key) : NULL;
    if (!it || cJSON_IsNull(it))
        return 0;
    if (!cJSON_IsNumber(it) || !(it->valuedouble >= 0) || it->valuedouble > 9.0e15 ||
        it->valuedouble != floor(it->valuedouble))
        return bs_err_set(err, BS_EINVAL, "JOB: data.%s: expected an integer >= 0", key);
    *out = (int64_t)it->valuedouble;
    return 0;
}

int bs_run_job_data(const cJSON *data, bs_preprocess_t *pre, int64_t *eval_count,
                    bs_quant_opts_t *q, bs_err_t *err)
{
    int rc;
    *eval_count = 0;
    bs_quant_opts_default(q);
    if ((rc = bs_preprocess_from_json(
             data ? cJSON_GetObjectItemCaseSensitive(data, "preprocess") : NULL,
             "data.preprocess", pre, err))) {
        bs_err_prefix(err, "JOB");
        return rc;
    }
    if ((rc = s_data_count(data, "eval_count", eval_count, err)) ||
        (rc = s_data_count(data, "calib_count", &q->calib_count, err)))
        return rc;
    if ((rc = bs_quant_opts_from_json(
             data ? cJSON_GetObjectItemCaseSensitive(data, "quantization") : NULL, q, err)))
        bs_err_prefix(err, "JOB: data");
    return rc;
}

typedef struct s_calib_run {
    int n;             /* weight-layer inputs observed */
    int *tensor;       /* their tensor indices */
    bs_calib_t *calib; /* one per tensor */
} s_calib_run_t;

static void s_calib_observe(void *ctx, const bs_graph_t *g, int node, const bs_tensor_t *t)
{
    (void)node;
    s_calib_run_t *c = ctx;
    int ti = (int)(t - g->tensors);
    for (int i = 0; i < c->n; i++)
        if (c->tensor[i] == ti) {
            if (t->dtype == BS_DT_FLOAT && t->data)
                bs_calib_observe(&c->calib[i], t->data, t->nbytes / sizeof(float));
            return;
        }
}

int bs_run_calibrate(const char *model_path, int threads, const bs_quant_opts_t *q,
                     bs_act_table_t *out, bs_err_t *err)
{
    memset(out, 0, sizeof *out);
    if (!q || !q->calib_images)
        return bs_err_set(err, BS_EINVAL,
                          "int8 activations need calibration images (data.calibration in the "
                          "campaign)");
    bs_graph_t *g = NULL;
    bs_dataset_t ds;
    memset(&ds, 0, sizeof ds);
    bs_preprocess_t dflt;
    bs_preprocess_default(&dflt);
    int rc = bs_run_load(model_path, threads, &g, err);
    if (rc)
        return rc;
    const bs_tensor_t *in = bs_graph_input(g, 0);
    if (!in || in->dtype != BS_DT_FLOAT) {
        rc = bs_err_set(err, BS_EMODEL, "%s: calibration needs a float32 input 0", model_path);
    } else if ((rc = bs_dataset_load(q->calib_images, NULL, q->calib_count,
                                     q->pre ? q->pre : &dflt, &in->shape, &ds, err))) {
        bs_err_prefix(err, "calibration");
    } else {
        rc = bs_run_calibrate_graph(g, &ds, q, out, err);
    }
    bs_dataset_free(&ds);
    bs_graph_free(&g);
    return rc;
}

int bs_run_calibrate_graph(bs_graph_t *g, const bs_dataset_t *ds, const bs_quant_opts_t *q,
                           bs_act_table_t *out, bs_err_t *err)
{
    memset(out, 0, sizeof *out);
    s_calib_run_t c = {0};
    float *batch = NULL;
    int rc = 0;
    const bs_tensor_t *in = bs_graph_input(g, 0);
    if (!in || in->dtype != BS_DT_FLOAT || ds->count < 1)
        return bs_err_set(err, BS_EINVAL, "calibration needs a float32 input 0 and samples");
    for (int i = 0; i < g->n_nodes; i++)
        c.n += !g->nodes[i].dead && g->nodes[i].weight_layer;
    c.tensor = bs_calloc((size_t)(c.n ? c.n : 1), sizeof *c.tensor);
    c.calib = bs_malloc(sizeof *c.calib * (size_t)(c.n ? c.n : 1));
    out->names = bs_calloc((size_t)(c.n ? c.n : 1), sizeof *out->names);
    out->q = bs_calloc((size_t)(c.n ? c.n : 1), sizeof *out->q);
    if (!c.tensor || !c.calib || !out->names || !out->q) {
        rc = bs_err_set(err, BS_ENOMEM, "out of memory");
        goto done;
    }
    c.n = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const bs_node_t *n = &g->nodes[i];
        if (n->dead || !n->weight_layer || n->n_in < 1 || n->in[0] < 0)
            continue;
        int dup = 0;
        for (int j = 0; j < c.n; j++)
            dup |= c.tensor[j] == n->in[0];
        if (dup)
            continue;
        c.tensor[c.n] = n->in[0];
        bs_calib_init(&c.calib[c.n]);
        c.n++;
    }
    int64_t per = ds->sample_numel, numel = bs_shape_numel(&in->shape);
    int64_t bsz = per > 0 ? numel / per : 1;
    if (bsz < 1)
        bsz = 1;
    if (!(batch = bs_calloc((size_t)numel, sizeof(float)))) {
        rc = bs_err_set(err, BS_ENOMEM, "out of memory");
        goto done;
    }
    /* whole batches only, unless there is less than one: then the one batch is zero-padded */
    int64_t nb = ds->count / bsz ? ds->count / bsz : 1;
    for (int64_t b = 0; b < nb && rc == 0; b++) {
        int64_t take = ds->count - b * bsz < bsz ? ds->count - b * bsz : bsz;
        memcpy(batch, ds->x + b * bsz * per, sizeof(float) * (size_t)(take * per));
        if ((rc = bs_graph_set_input(g, 0, BS_DT_FLOAT, batch, in->nbytes, err)) == 0)
            rc = bs_graph_run_observed(g, s_calib_observe, &c, err);
    }
    for (int i = 0; i < c.n && rc == 0; i++) {
        const bs_tensor_t *t = &g->tensors[c.tensor[i]];
        if (!(out->names[i] = bs_strdup(t->name))) {
            rc = bs_err_set(err, BS_ENOMEM, "out of memory");
            break;
        }
        out->n = i + 1;
        rc = bs_calib_params(&c.calib[i], q->calib_method, q->percentile, BS_DT_UINT8,
                             &out->q[i].scale, &out->q[i].zero_point, err);
    }
done:
    if (rc)
        bs_act_table_free(out);
    bs_free(batch);
    bs_free(c.tensor);
    bs_free(c.calib);
    return rc;
}

/* Applies a spec to the model's weight layers: 0 with *has_a8 set, or BS_EINVAL naming the
 * valid layers. */
static int s_spec_check(const char *model_path, const char *assignment, int *has_a8,
                        bs_err_t *err)
{
    *has_a8 = 0;
    if (!assignment || !*assignment)
        return 0;
    bs_model_info_t mi;
    int rc = bs_model_info_load(model_path, &mi, err);
    if (rc)
        return rc;
    int n = mi.n_layers;
    bs_prec_t *precs = bs_malloc(sizeof *precs * (size_t)(n ? n : 1));
    const char **names = bs_malloc(sizeof *names * (size_t)(n ? n : 1));
    if (!precs || !names) {
        rc = bs_err_set(err, BS_ENOMEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) {
        precs[i] = BS_PREC_FP32;
        names[i] = mi.layers[i].name;
    }
    if ((rc = bs_spec_apply(assignment, names, n, precs, err)) != 0)
        goto done;
    for (int i = 0; i < n; i++)
        *has_a8 |= precs[i].a == 8;
done:
    bs_free(precs);
    bs_free(names);
    bs_model_info_free(&mi);
    return rc;
}

int bs_run_load_prec(const char *model_path, int threads, const char *assignment,
                     const bs_quant_opts_t *q, const bs_act_table_t *act, bs_graph_t **g,
                     bs_err_t *err)
{
    *g = NULL;
    int a8, rc = s_spec_check(model_path, assignment, &a8, err);
    if (rc)
        return rc;
    bs_quant_opts_t dq;
    if (!q) {
        bs_quant_opts_default(&dq);
        q = &dq;
    }
    bs_act_table_t own = {0};
    if (a8 && !act) {
        if ((rc = bs_run_calibrate(model_path, threads, q, &own, err)))
            return rc;
        act = &own;
    }
    bs_graph_opts_t o;
    memset(&o, 0, sizeof o);
    o.threads = threads >= 1 ? threads : 1;
    o.free_dim = 1;
    o.precision = assignment;
    o.wscale_minmax = q->wscale_minmax;
    o.act = act;
    rc = bs_graph_load(model_path, &o, g, err);
    bs_act_table_free(&own);
    return rc;
}

int bs_run_check_assignment(const char *model_path, const char *assignment, bs_err_t *err)
{
    int a8;
    return s_spec_check(model_path, assignment, &a8, err);
}

/* ---- evaluate ------------------------------------------------------------------------------ */

int bs_run_evaluate(bs_graph_t *g, const bs_dataset_t *ds, const float *ref,
                    const atomic_int *cancel, bs_eval_t *out, float **outputs, bs_err_t *err)
{
    char s1[96];
    out->accuracy = NAN;
    out->sqnr_db = NAN;
    out->metric[0] = '\0';
    out->samples = 0;
    out->classes = 0;
    if (outputs)
        *outputs = NULL;
    const bs_tensor_t *in = bs_graph_input(g, 0), *o = bs_graph_output(g, 0);
    if (!in || !o)
        return bs_err_set(err, BS_EMODEL, "the model has no %s", in ? "output" : "input");
    if (g->n_inputs != 1)
        return bs_err_set(err, BS_EUNSUPPORTED,
                          "the model has %d inputs; evaluating on a data "
                          "set feeds exactly one",
                          g->n_inputs);
    if (in->dtype != BS_DT_FLOAT)
        return bs_err_set(err, BS_EUNSUPPORTED,
                          "input '%s' takes %s; the data set path feeds "
                          "preprocessed float32",
                          in->name, bs_dtype_name(in->dtype));
    if (o->dtype != BS_DT_FLOAT)
        return bs_err_set(err, BS_EUNSUPPORTED, "output '%s' is %s; metrics need float32", o->name,
                          bs_dtype_name(o->dtype));
    int64_t B = in->shape.rank >= 1 ? in->shape.d[0] : 1;
    int64_t per = B > 0 ? bs_shape_numel(&in->shape) / B : 0;
    int64_t onumel = bs_shape_numel(&o->shape);
    if (B < 1 || per != ds->sample_numel)
        return bs_err_set(err, BS_EINVAL,
                          "the data set's samples hold %lld values; input '%s' "
                          "%s takes %lld a batch entry",
                          (long long)ds->sample_numel, in->name,
                          bs_shape_str(&in->shape, s1, sizeof s1), (long long)per);
    if (onumel < B || onumel % B != 0)
        return bs_err_set(err, BS_EMODEL,
                          "output '%s' %s does not split into %lld batch "
                          "entries",
                          o->name, bs_shape_str(&o->shape, s1, sizeof s1), (long long)B);
    int64_t classes = onumel / B, n = ds->count;
    float *outs = bs_malloc(sizeof(float) * (size_t)(n * classes > 0 ? n * classes : 1));
    float *batch = B > 1 ? bs_malloc(sizeof(float) * (size_t)(B * per)) : NULL;
    int rc = 0;
    if (!outs || (B > 1 && !batch)) {
        rc = bs_err_set(err, BS_ENOMEM, "out of memory for the outputs of %lld samples",
                        (long long)n);
        goto done;
    }
    for (int64_t i = 0; i < n; i += B) {
        if (s_canceled(cancel)) {
            rc = bs_err_set(err, BS_ECANCELED, "canceled");
            goto done;
        }
        int64_t k = n - i < B ? n - i : B;
        const float *x = ds->x + i * per;
        if (B > 1) {
            memcpy(batch, x, sizeof(float) * (size_t)(k * per));
            memset(batch + k * per, 0, sizeof(float) * (size_t)((B - k) * per));
            x = batch;
        }
        if ((rc = bs_graph_set_input(g, 0, BS_DT_FLOAT, x, in->nbytes, err)) ||
            (rc = bs_graph_run(g, err)))
            goto done;
        memcpy(outs + i * classes, o->data, sizeof(float) * (size_t)(k * classes));
    }
    out->samples = n;
    out->classes = classes;
    if (ds->labels) {
        strcpy(out->metric, "top1");
        if ((rc = bs_metric_top1(outs, n, classes, ds->labels, &out->accuracy, err)))
            goto done;
    } else {
        strcpy(out->metric, "top1_agreement");
        const float *r = ref ? ref : outs; /* the model is its own float32 reference */
        out->accuracy = bs_metric_agreement(outs, r, n, classes);
        out->sqnr_db = bs_metric_sqnr_db(outs, r, n * classes);
    }
    if (outputs) {
        *outputs = outs;
        outs = NULL;
    }
done:
    bs_free(outs);
    bs_free(batch);
    return rc;
}

/* ---- time ---------------------------------------------------------------------------------- */

/* One timed pass: runs until min_runs and min_time_ms, at most max_time_ms (and cap runs). */
static int s_timed_pass(bs_graph_t *g, const bs_measure_opts_t *m, const atomic_int *cancel,
                        double *samples, size_t cap, size_t *n_out, bs_err_t *err)
{
    int64_t min_runs = m->min_runs < 1 ? 1 : m->min_runs;
    size_t n = 0;
    double begin = s_now_ms();
    int rc = 0;
    for (;;) {
        if (s_canceled(cancel))
            return bs_err_set(err, BS_ECANCELED, "canceled");
        double t0 = s_now_ms();
        if ((rc = bs_graph_run(g, err)))
            return rc;
        double t1 = s_now_ms();
        samples[n++] = t1 - t0;
        double elapsed = t1 - begin;
        if (((int64_t)n >= min_runs && elapsed >= m->min_time_ms) || elapsed >= m->max_time_ms ||
            n >= cap)
            break;
    }
    *n_out = n;
    return 0;
}

int bs_run_time(bs_graph_t *g, const bs_measure_opts_t *m, const atomic_int *cancel,
                bs_latency_stats_t *st, int *remeasures, int *unstable, bs_err_t *err)
{
    int rc;
    if (remeasures)
        *remeasures = 0;
    if (unstable)
        *unstable = 0;
    double w0 = s_now_ms();
    for (int64_t i = 0; i < m->warmup_runs || s_now_ms() - w0 < m->warmup_min_ms; i++) {
        if (s_canceled(cancel))
            return bs_err_set(err, BS_ECANCELED, "canceled");
        if ((rc = bs_graph_run(g, err)))
            return rc;
        if (s_now_ms() - w0 >= m->max_time_ms)
            break;
    }
    int64_t min_runs = m->min_runs < 1 ? 1 : m->min_runs;
    if (min_runs > BS_RUN_MAX_SAMPLES)
        min_runs = BS_RUN_MAX_SAMPLES;
    size_t cap = m->min_time_ms > 0 ? BS_RUN_MAX_SAMPLES : (size_t)min_runs;
    double *samples = bs_malloc(sizeof *samples * cap);
    if (!samples)
        return bs_err_set(err, BS_ENOMEM, "out of memory for %zu latency samples", cap);
    rc = 0;
    int have = 0;
    for (int64_t pass = 0; pass <= m->remeasure_max; pass++) {
        size_t n = 0;
        bs_latency_stats_t cur;
        if ((rc = s_timed_pass(g, m, cancel, samples, cap, &n, err)))
            break;
        if ((rc = bs_stats_compute(samples, n, &cur))) {
            bs_err_set(err, rc, "latency statistics failed");
            break;
        }
        if (pass > 0 && remeasures)
            *remeasures = (int)pass;
        if (!have || cur.cv < st->cv) /* keep the steadiest pass */
            *st = cur;
        have = 1;
        if (!(st->cv > m->cv_max))
            break;
        BS_DEBUG("engine", "latency pass %lld: cv %.3f > %.3f, measuring again", (long long)pass,
                 cur.cv, m->cv_max);
    }
    if (rc == 0 && unstable)
        *unstable = st->cv > m->cv_max;
    bs_free(samples);
    return rc;
}

/* ---- memory -------------------------------------------------------------------------------- */

int bs_run_rss_reset(void)
{
    int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t w = write(fd, "5", 1);
    close(fd);
    return w == 1 ? 0 : -1;
}

int64_t bs_run_peak_rss(void)
{
    FILE *f = fopen("/proc/self/status", "re");
    if (!f)
        return -1;
    char line[256];
    int64_t kb = -1;
    while (fgets(line, sizeof line, f)) {
        long long v;
        if (sscanf(line, "VmHWM: %lld kB", &v) == 1) {
            kb = v;
            break;
        }
    }
    fclose(f);
    return kb < 0 ? -1 : kb * 1024;
}

/* ---- the machine around a job --------------------------------------------------------------- */

/* A file holding one integer (sysfs); 0, or -1 when unreadable or not a number. */
static int s_read_i64(const char *path, long long *v)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int ok = fscanf(f, "%lld", v) == 1;
    fclose(f);
    return ok ? 0 : -1;
}

void bs_run_env_read(const char *cpus, bs_run_env_t *out)
{
    out->temp_c = NAN;
    out->freq_mhz = NAN;
    const char *root = bs_sensor_root(NULL);
    char path[4096];
    snprintf(path, sizeof path, "%s/sys/class/thermal", root);
    DIR *d = opendir(path);
    for (struct dirent *e; d && (e = readdir(d));) {
        long long v;
        if (strncmp(e->d_name, "thermal_zone", 12) != 0)
            continue;
        snprintf(path, sizeof path, "%s/sys/class/thermal/%s/temp", root, e->d_name);
        if (s_read_i64(path, &v) == 0 && v > -100000 && v < 300000 &&
            !(out->temp_c >= (double)v / 1000.0))
            out->temp_c = (double)v / 1000.0;
    }
    if (d)
        closedir(d);
    unsigned char mask[128];
    int all = !cpus || !*cpus || bs_cpulist_parse(cpus, mask) != 0;
    double sum = 0.0;
    int n = 0;
    for (int cpu = 0; cpu < 1024; cpu++) {
        if (!all && !(mask[cpu / 8] & (1u << (cpu % 8))))
            continue;
        long long khz;
        snprintf(path, sizeof path, "%s/sys/devices/system/cpu/cpu%d/cpufreq/scaling_cur_freq",
                 root, cpu);
        if (s_read_i64(path, &khz) == 0 && khz > 0) {
            sum += (double)khz / 1000.0;
            n++;
        }
    }
    if (n)
        out->freq_mhz = sum / n;
}

void bs_run_affinity_str(char *buf, size_t cap)
{
    cpu_set_t set;
    buf[0] = '\0';
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return;
    size_t at = 0;
    for (int c = 0; c < CPU_SETSIZE && at + 16 < cap; c++) {
        if (!CPU_ISSET(c, &set))
            continue;
        int e = c;
        while (e + 1 < CPU_SETSIZE && CPU_ISSET(e + 1, &set))
            e++;
        at += (size_t)snprintf(buf + at, cap - at, e > c ? "%s%d-%d" : "%s%d", at ? "," : "", c,
                               e);
        c = e;
    }
}

/* ---- a job --------------------------------------------------------------------------------- */

/* Fills every input with zeros (timing without data). */
static int s_zero_inputs(bs_graph_t *g, bs_err_t *err)
{
    size_t most = 0;
    for (int i = 0; i < g->n_inputs; i++)
        if (bs_graph_input(g, i)->nbytes > most)
            most = bs_graph_input(g, i)->nbytes;
    void *z = bs_calloc(1, most ? most : 1);
    if (!z)
        return bs_err_set(err, BS_ENOMEM, "out of memory");
    int rc = 0;
    for (int i = 0; i < g->n_inputs && rc == 0; i++) {
        const bs_tensor_t *t = bs_graph_input(g, i);
        rc = bs_graph_set_input(g, i, t->dtype, z, t->nbytes, err);
    }
    bs_free(z);
    return rc;
}

static int s_run_job(const bs_run_job_t *job, bs_metrics_t *out, bs_err_t *err);

static int s_cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

cJSON *bs_run_profile(bs_graph_t *g, int runs, const atomic_int *cancel, bs_err_t *err)
{
    int nn = g->n_nodes;
    if (runs < 1)
        runs = 1;
    double *t = bs_calloc((size_t)nn * (size_t)runs + 1, sizeof *t);
    double *col = bs_malloc(sizeof *col * (size_t)runs);
    cJSON *o = cJSON_CreateObject(), *layers = o ? cJSON_AddArrayToObject(o, "layers") : NULL;
    if (!t || !col || !layers) {
        bs_err_set(err, BS_ENOMEM, "out of memory for the profile");
        goto fail;
    }
    bs_ctx_t ctx = {.scratch = g->scratch, .pool = g->pool};
    for (int r = 0; r < runs; r++) {
        if (s_canceled(cancel)) {
            bs_err_set(err, BS_ECANCELED, "canceled");
            goto fail;
        }
        for (int i = 0; i < nn; i++) {
            bs_node_t *n = &g->nodes[i];
            if (n->dead || (n->op->alias && n->n_out > 0 && n->out[0] >= 0 &&
                            g->tensors[n->out[0]].alias_of >= 0))
                continue;
            double t0 = s_now_ms();
            int rc = n->op->run(g, n, &ctx);
            t[(size_t)i * (size_t)runs + (size_t)r] = s_now_ms() - t0;
            if (rc) {
                bs_node_err(err, n, rc, "profile run failed");
                goto fail;
            }
        }
    }
    double total = 0, other = 0;
    for (int i = 0; i < nn; i++) {
        const bs_node_t *n = &g->nodes[i];
        memcpy(col, t + (size_t)i * (size_t)runs, sizeof *col * (size_t)runs);
        qsort(col, (size_t)runs, sizeof *col, s_cmp_dbl);
        double med = runs % 2 ? col[runs / 2] : 0.5 * (col[runs / 2 - 1] + col[runs / 2]);
        if (n->dead)
            continue;
        total += med;
        if (!n->weight_layer) {
            other += med;
            continue;
        }
        char p[BS_PREC_TEXT_MAX];
        bs_prec_format(n->prec, p);
        cJSON *e = cJSON_CreateObject();
        if (!e || !cJSON_AddStringToObject(e, "layer", n->name) ||
            !cJSON_AddStringToObject(e, "op", n->op_type) ||
            !cJSON_AddStringToObject(e, "precision", p) ||
            !cJSON_AddNumberToObject(e, "ms", med) || !cJSON_AddItemToArray(layers, e)) {
            cJSON_Delete(e);
            bs_err_set(err, BS_ENOMEM, "out of memory for the profile");
            goto fail;
        }
    }
    if (!cJSON_AddNumberToObject(o, "runs", runs) ||
        !cJSON_AddNumberToObject(o, "total_ms", total) ||
        !cJSON_AddNumberToObject(o, "other_ms", other)) {
        bs_err_set(err, BS_ENOMEM, "out of memory for the profile");
        goto fail;
    }
    bs_free(t);
    bs_free(col);
    return o;
fail:
    cJSON_Delete(o);
    bs_free(t);
    bs_free(col);
    return NULL;
}

/* Energy per inference on the best readable sensor: idle power for idle_ms, then a window of
 * inferences run back to back for energy_ms (stretched to ten sensor periods, at most ten
 * times energy_ms). Unknown energy is NAN with source "none" and the reason; only
 * cancellation is an error. */
static int s_energy(bs_graph_t *g, const bs_run_job_t *job, bs_metrics_t *out, bs_err_t *err)
{
    const bs_measure_opts_t *m = &job->measure;
    const char *why = NULL;
    int src = job->sensors ? bs_sensors_best(job->sensors, &why) : BS_ENOENT;
    if (!job->sensors || m->energy_ms <= 0 || src < 0) {
        snprintf(out->energy_reason, sizeof out->energy_reason, "%s",
                 !job->sensors ? "the agent looks for no energy sensor (--no-sensors)"
                 : m->energy_ms <= 0 ? "measure.energy_ms is 0"
                                     : (why ? why : "no energy sensor found"));
        if (m->energy_estimate_w > 0 && m->energy_ms > 0 && isfinite(out->lat_median_ms)) {
            /* asked for by the campaign: a model, labelled as such, never a measurement */
            out->energy_j = m->energy_estimate_w * out->lat_median_ms / 1000.0;
            snprintf(out->energy_source, sizeof out->energy_source, "estimate");
            snprintf(out->energy_reason, sizeof out->energy_reason,
                     "estimate: %g W (measure.energy_estimate_w) x the median latency; no "
                     "sensor measured it",
                     m->energy_estimate_w);
        }
        return 0;
    }
    bs_sensor_info_t info;
    bs_sensors_info(job->sensors, src, &info);
    bs_err_t e = {0};
    double idle_w = NAN;
    if (m->idle_ms > 0 &&
        bs_energy_idle(job->sensors, src, m->idle_ms / 1000.0, &idle_w, &e) != 0)
        BS_WARN("engine", "idle power from %s: %s (dynamic energy unknown)", info.name, e.msg);
    if (s_canceled(job->cancel))
        return bs_err_set(err, BS_ECANCELED, "canceled");
    double want_s = m->energy_ms / 1000.0, min_s = 10.0 * info.period_s;
    if (want_s < min_s)
        want_s = min_s < 10.0 * m->energy_ms / 1000.0 ? min_s : 10.0 * m->energy_ms / 1000.0;
    bs_energy_window_t *win = NULL;
    if (bs_energy_begin(job->sensors, src, &win, &e) != 0) {
        snprintf(out->energy_reason, sizeof out->energy_reason, "%s: %.100s", info.name, e.msg);
        return 0;
    }
    int64_t runs = 0;
    double t0 = s_now_ms();
    int rc = 0;
    while (s_now_ms() - t0 < want_s * 1000.0 || runs == 0) {
        if (s_canceled(job->cancel)) {
            rc = bs_err_set(err, BS_ECANCELED, "canceled");
            break;
        }
        if ((rc = bs_graph_run(g, err)))
            break;
        runs++;
    }
    if (rc) {
        bs_energy_abort(&win);
        return rc;
    }
    bs_energy_result_t res;
    if (bs_energy_end(&win, &res) != 0) {
        snprintf(out->energy_source, sizeof out->energy_source, "none");
        snprintf(out->energy_reason, sizeof out->energy_reason, "%s: %.100s", info.name,
                 res.reason);
        return 0;
    }
    bs_energy_apply_idle(&res, idle_w);
    out->energy_j = res.joules / (double)runs;
    out->energy_dynamic_j = res.dynamic_joules / (double)runs;
    out->energy_idle_w = idle_w;
    out->energy_window_s = res.seconds;
    out->energy_samples = res.samples;
    out->energy_runs = runs;
    snprintf(out->energy_source, sizeof out->energy_source, "%s", res.source);
    out->energy_reason[0] = '\0';
    if (res.too_short)
        BS_WARN("engine", "energy window %.3f s is shorter than ten %s periods (%.3f s)",
                res.seconds, res.source, res.min_seconds);
    return 0;
}

/* Pins the calling thread (and so the kernel threads it starts) to cpus; *old gets the mask
 * to restore. */
static int s_pin(const char *cpus, cpu_set_t *old, bs_err_t *err)
{
    unsigned char mask[128];
    cpu_set_t set;
    CPU_ZERO(&set);
    if (bs_cpulist_parse(cpus, mask) != 0)
        return bs_err_set(err, BS_EINVAL, "measure.cpus: '%s' is not a CPU list", cpus);
    for (int c = 0; c < CPU_SETSIZE && c < 1024; c++)
        if (mask[c / 8] & (1u << (c % 8)))
            CPU_SET(c, &set);
    if (sched_getaffinity(0, sizeof *old, old) != 0 ||
        sched_setaffinity(0, sizeof set, &set) != 0)
        return bs_err_set(err, BS_EINVAL,
                          "measure.cpus: cannot run on CPUs %s here (%s; this device has %ld "
                          "CPUs online)",
                          cpus, strerror(errno), sysconf(_SC_NPROCESSORS_ONLN));
    return 0;
}

int bs_run_job(const bs_run_job_t *job, bs_metrics_t *out, bs_err_t *err)
{
    bs_metrics_init(out);
    cpu_set_t old_set;
    int pinned = 0;
    if (job->measure.cooldown_ms > 0) { /* idle in short steps, so cancel stays prompt */
        double until = s_now_ms() + job->measure.cooldown_ms;
        while (s_now_ms() < until && !s_canceled(job->cancel)) {
            struct timespec ts = {0, 20 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    if (job->measure.cpus[0]) {
        int prc = s_pin(job->measure.cpus, &old_set, err);
        if (prc)
            return prc;
        pinned = 1;
    }
    int rc = s_run_job(job, out, err);
    if (pinned)
        sched_setaffinity(0, sizeof old_set, &old_set);
    return rc;
}

static int s_run_job(const bs_run_job_t *job, bs_metrics_t *out, bs_err_t *err)
{
    if (bs_run_rss_reset() != 0)
        BS_DEBUG("engine", "cannot reset the peak RSS (/proc/self/clear_refs refused): "
                           "peak_rss_bytes is the process's peak since it started");
    int rc = bs_run_check_assignment(job->model_path, job->assignment, err);
    if (rc)
        return rc;
    if (s_canceled(job->cancel))
        return bs_err_set(err, BS_ECANCELED, "canceled");
    uint64_t t0 = bs_now_ms();
    bs_graph_t *g = NULL;
    bs_quant_opts_t q = job->quant;
    if (!q.pre)
        q.pre = job->pre;
    if ((rc = bs_run_load_prec(job->model_path, job->threads, job->assignment, &q, NULL, &g,
                               err)))
        return rc;
    if (job->load_ms)
        *job->load_ms = (int64_t)(bs_now_ms() - t0);
    bs_dataset_t ds;
    memset(&ds, 0, sizeof ds);
    bs_eval_t ev = {.accuracy = NAN};
    if (job->images) {
        const bs_tensor_t *in = bs_graph_input(g, 0);
        bs_preprocess_t dflt;
        bs_preprocess_default(&dflt);
        if (!in) {
            rc = bs_err_set(err, BS_EMODEL, "the model has no input");
            goto done;
        }
        if ((rc = bs_dataset_load(job->images, job->labels, job->count,
                                  job->pre ? job->pre : &dflt, &in->shape, &ds, err)) ||
            (rc = bs_run_evaluate(g, &ds, NULL, job->cancel, &ev, NULL, err)))
            goto done;
        /* the inputs now hold the last batch of real data: timing runs on it */
    } else if ((rc = s_zero_inputs(g, err))) {
        goto done;
    }
    bs_latency_stats_t st;
    bs_run_env_t before, after;
    bs_run_affinity_str(out->cpus, sizeof out->cpus);
    bs_run_env_read(out->cpus, &before);
    if ((rc = bs_run_time(g, &job->measure, job->cancel, &st, &out->remeasures, &out->unstable,
                          err)))
        goto done;
    bs_run_env_read(out->cpus, &after);
    out->threads = job->threads >= 1 ? job->threads : 1;
    out->temp_before_c = before.temp_c;
    out->temp_after_c = after.temp_c;
    out->freq_before_mhz = before.freq_mhz;
    out->freq_after_mhz = after.freq_mhz;
    if (!isnan(before.freq_mhz) && !isnan(after.freq_mhz))
        out->throttled = after.freq_mhz < 0.9 * before.freq_mhz;
    snprintf(out->agent_version, sizeof out->agent_version, "%s", BS_VERSION);
    snprintf(out->engine, sizeof out->engine, "bitscout-engine %s %s/%s", BS_VERSION,
             bs_kernels_isa(), bs_qkernels_isa());
    if (out->unstable == 1)
        BS_WARN("engine", "%s: latency stayed unstable (cv %.3f > %.3f after %d more passes)",
                job->model_path, st.cv, job->measure.cv_max, out->remeasures);
    out->accuracy = ev.accuracy;
    snprintf(out->metric, sizeof out->metric, "%s", ev.metric);
    bs_stats_to_metrics(&st, out);
    out->weight_bytes = (int64_t)g->weight_bytes;
    out->arena_bytes = (int64_t)g->arena_bytes;
    out->peak_rss_bytes = bs_run_peak_rss();
    out->energy_j = NAN;
    snprintf(out->energy_source, sizeof out->energy_source, "none");
    if ((rc = s_energy(g, job, out, err)))
        goto done;
    if (job->profile && job->measure.profile_runs > 0) {
        cJSON_Delete(*job->profile);
        if (!(*job->profile = bs_run_profile(g, (int)job->measure.profile_runs, job->cancel,
                                             err))) {
            rc = err->code ? err->code : BS_ENOMEM;
            goto done;
        }
    }
    out->simulated = 0;
    snprintf(out->backend, sizeof out->backend, "engine");
    BS_DEBUG("engine", "%s: %s %.4f on %lld samples, median %.3f ms over %lld runs",
             job->model_path, ev.metric[0] ? ev.metric : "accuracy", ev.accuracy,
             (long long)ev.samples, st.median, (long long)st.n);
done:
    bs_dataset_free(&ds);
    bs_graph_free(&g);
    return rc;
}

/* ---- `bitscout-agent run` ------------------------------------------------------------------ */

#define S_MAX_INPUTS 16

typedef struct s_cli {
    const char *model;
    const char *inputs[S_MAX_INPUTS];
    int n_inputs;
    const char *output;
    const char *config;
    const char *precision;
    int64_t repeats;
    int threads;
    int json;
} s_cli_t;


static void s_usage(FILE *out)
{
    fprintf(out,
            "usage: bitscout-agent run --model FILE.onnx [--input X.npy]... [--output Y.npy]\n"
            "                          [--config CAMPAIGN.json] [--precision SPEC]\n"
            "                          [--repeats N] [--threads N] [--format text|json]\n"
            "\n"
            "Loads a model into the built-in engine and runs it, without a searcher.\n"
            "\n"
            "  --model FILE        the ONNX model (default: the campaign's \"model\")\n"
            "  --input X.npy       a model input, in the model's input order: float32 (or\n"
            "                      uint8 where the model takes it), exactly the input's shape.\n"
            "                      Without inputs: the campaign's first samples, else zeros\n"
            "  --output Y.npy      write the first model output (for the last input run)\n"
            "  --config FILE       a campaign file: its eval data, count and preprocess give\n"
            "                      the accuracy (top-1, when it has labels); its\n"
            "                      calibration data and quantization settings serve a8\n"
            "  --precision SPEC    per-layer precisions, e.g. \"*=w8a8,fc*=w4a32\" (wBaB: w32, w16,\n"
            "                      w8..w2 weights; a32 or a8 activations, calibrated on the\n"
            "                      campaign's data.calibration); default all w32a32\n"
            "  --repeats N         timed runs for the latency (default 20)\n"
            "  --threads N         kernel threads (default 1)\n"
            "  --format text|json  output format (default text)\n");
}

int bs_run_bad_usage(const char *prog, void (*usage)(FILE *out), const char *fmt,
                     const char *arg)
{
    fprintf(stderr, "%s: ", prog);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n\n");
    usage(stderr);
    return 2;
}

static int s_bad(const char *fmt, const char *arg)
{
    return bs_run_bad_usage("bitscout-agent run", s_usage, fmt, arg);
}

/* Loads --input i and checks it against the model's input i. */
static int s_feed_input(bs_graph_t *g, int i, const char *path, bs_err_t *err)
{
    const bs_tensor_t *t = bs_graph_input(g, i);
    bs_npy_t a;
    int rc = bs_npy_load(path, BS_NPY_MAX_BYTES, &a, err);
    if (rc)
        return rc;
    bs_shape_t s = {.rank = a.ndim};
    for (int k = 0; k < a.ndim; k++)
        s.d[k] = a.dims[k];
    char want[96], got[96];
    if (a.dtype != t->dtype || !bs_shape_eq(&s, &t->shape))
        rc = bs_err_set(err, BS_EINVAL, "%s: input '%s' takes %s %s; the file holds %s %s", path,
                        t->name, bs_shape_str(&t->shape, want, sizeof want),
                        bs_dtype_name(t->dtype), bs_shape_str(&s, got, sizeof got),
                        bs_dtype_name(a.dtype));
    else
        rc = bs_graph_set_input(g, i, a.dtype, a.data, a.nbytes, err);
    bs_npy_free(&a);
    return rc;
}

static int s_parse_cli(int argc, char **argv, s_cli_t *c)
{
    static const struct option longopts[] = {
        {"model", required_argument, NULL, 'm'},   {"input", required_argument, NULL, 'i'},
        {"output", required_argument, NULL, 'o'},  {"config", required_argument, NULL, 'c'},
        {"repeats", required_argument, NULL, 'r'}, {"threads", required_argument, NULL, 'j'},
        {"format", required_argument, NULL, 'f'},  {"precision", required_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    memset(c, 0, sizeof *c);
    c->repeats = 20;
    c->threads = 1;
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        char *end;
        long long v;
        switch (ch) {
        case 'm':
            c->model = optarg;
            break;
        case 'i':
            if (c->n_inputs >= S_MAX_INPUTS)
                return s_bad("at most 16 --input files%s", "");
            c->inputs[c->n_inputs++] = optarg;
            break;
        case 'o':
            c->output = optarg;
            break;
        case 'c':
            c->config = optarg;
            break;
        case 'p':
            c->precision = optarg;
            break;
        case 'r':
            v = strtoll(optarg, &end, 10);
            if (!*optarg || *end || v < 1 || v > BS_RUN_MAX_SAMPLES)
                return s_bad("--repeats '%s': expected a whole number from 1 to 100000", optarg);
            c->repeats = v;
            break;
        case 'j':
            v = strtoll(optarg, &end, 10);
            if (!*optarg || *end || v < 1 || v > 1024)
                return s_bad("--threads '%s': expected a whole number from 1 to 1024", optarg);
            c->threads = (int)v;
            break;
        case 'f':
            if (strcmp(optarg, "text") && strcmp(optarg, "json"))
                return s_bad("--format '%s': expected text or json", optarg);
            c->json = !strcmp(optarg, "json");
            break;
        case 'h':
            s_usage(stdout);
            return 0;
        case ':':
            return s_bad("%s needs a value", argv[optind - 1]);
        default:
            return s_bad("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return s_bad("unexpected argument '%s'", argv[optind]);
    return -1; /* go on */
}

static void s_print_text(const s_cli_t *c, const char *model, const bs_graph_t *g,
                         const bs_eval_t *ev, int have_data, const bs_latency_stats_t *st)
{
    char s[96];
    printf("model         %s\n", model);
    for (int i = 0; i < g->n_inputs; i++) {
        const bs_tensor_t *t = bs_graph_input(g, i);
        printf("input         '%s' %s %s\n", t->name, bs_shape_str(&t->shape, s, sizeof s),
               bs_dtype_name(t->dtype));
    }
    for (int i = 0; i < g->n_outputs; i++) {
        const bs_tensor_t *t = bs_graph_output(g, i);
        printf("output        '%s' %s %s\n", t->name, bs_shape_str(&t->shape, s, sizeof s),
               bs_dtype_name(t->dtype));
    }
    printf("threads       %d (kernels: %s, integer kernels: %s)\n", c->threads,
           bs_kernels_isa(), bs_qkernels_isa());
    char *asg = bs_graph_assignment(g);
    printf("precision     %s\n", asg ? asg : "?");
    bs_free(asg);
    if (have_data && !strcmp(ev->metric, "top1"))
        printf("accuracy      %.4f (top-1 on %lld samples)\n", ev->accuracy,
               (long long)ev->samples);
    else if (have_data)
        printf("accuracy      n/a (the campaign's data has no labels; %lld samples run)\n",
               (long long)ev->samples);
    printf("latency       median %.4f ms, p90 %.4f ms, min %.4f ms (%lld runs)\n", st->median,
           st->p90, st->min, (long long)st->n);
    printf("weight bytes  %zu\n", g->weight_bytes);
    printf("arena bytes   %zu\n", g->arena_bytes);
    if (c->output)
        printf("output file   %s\n", c->output);
}

static int s_print_json(const s_cli_t *c, const char *model, const bs_graph_t *g,
                        const bs_eval_t *ev, int have_data, const bs_latency_stats_t *st)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return BS_ENOMEM;
    cJSON_AddStringToObject(o, "model", model);
    cJSON_AddNumberToObject(o, "threads", c->threads);
    cJSON_AddStringToObject(o, "kernels", bs_kernels_isa());
    cJSON_AddStringToObject(o, "integer_kernels", bs_qkernels_isa());
    char *asg = bs_graph_assignment(g);
    if (asg)
        cJSON_AddStringToObject(o, "precision", asg);
    bs_free(asg);
    if (have_data && !strcmp(ev->metric, "top1")) {
        cJSON_AddNumberToObject(o, "accuracy", ev->accuracy);
        cJSON_AddStringToObject(o, "metric", "top1");
    } else {
        cJSON_AddNullToObject(o, "accuracy");
    }
    cJSON_AddNumberToObject(o, "samples", have_data ? (double)ev->samples : 0);
    cJSON_AddNumberToObject(o, "latency_median_ms", st->median);
    cJSON_AddNumberToObject(o, "latency_p90_ms", st->p90);
    cJSON_AddNumberToObject(o, "latency_min_ms", st->min);
    cJSON_AddNumberToObject(o, "latency_mean_ms", st->mean);
    cJSON_AddNumberToObject(o, "runs", (double)st->n);
    cJSON_AddNumberToObject(o, "weight_bytes", (double)g->weight_bytes);
    cJSON_AddNumberToObject(o, "arena_bytes", (double)g->arena_bytes);
    if (c->output)
        cJSON_AddStringToObject(o, "output", c->output);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!text)
        return BS_ENOMEM;
    printf("%s\n", text);
    cJSON_free(text);
    return 0;
}

int bs_run_main(int argc, char **argv)
{
    s_cli_t c;
    int st_cli = s_parse_cli(argc, argv, &c);
    if (st_cli >= 0)
        return st_cli;
    if (!c.model && !c.config)
        return s_bad("--model FILE.onnx (or --config with a \"model\" key) is required%s", "");

    bs_err_t err = {0};
    bs_campaign_file_t camp;
    memset(&camp, 0, sizeof camp);
    bs_quant_opts_default(&camp.quant);
    bs_graph_t *g = NULL;
    bs_dataset_t ds;
    memset(&ds, 0, sizeof ds);
    bs_eval_t ev = {.accuracy = NAN};
    int rc = 0, have_data = 0;
    const char *model = c.model;

    if (c.config && (rc = bs_campaign_file_load(c.config, &camp, &err)))
        goto done;
    if (!model)
        model = camp.model;
    if (!model) {
        rc = bs_err_set(&err, BS_ECONFIG, "%s: model: required key missing (or give --model)",
                        c.config);
        goto done;
    }
    if ((rc = bs_run_load_prec(model, c.threads, c.precision, &camp.quant, NULL, &g, &err)))
        goto done;
    if (c.n_inputs > 0 && c.n_inputs != g->n_inputs) {
        rc = bs_err_set(&err, BS_EINVAL, "the model has %d input(s); %d --input file(s) given",
                        g->n_inputs, c.n_inputs);
        goto done;
    }
    if (camp.images) {
        const bs_tensor_t *in = bs_graph_input(g, 0);
        if (!in) {
            rc = bs_err_set(&err, BS_EMODEL, "%s: the model has no input", model);
            goto done;
        }
        if ((rc = bs_dataset_load(camp.images, camp.labels, camp.count, &camp.pre, &in->shape, &ds,
                                  &err)) ||
            (rc = bs_run_evaluate(g, &ds, NULL, NULL, &ev, NULL, &err)))
            goto done;
        have_data = 1;
    }
    if (c.n_inputs > 0) {
        for (int i = 0; i < c.n_inputs && rc == 0; i++)
            rc = s_feed_input(g, i, c.inputs[i], &err);
        if (rc)
            goto done;
    } else if (!have_data) {
        if ((rc = s_zero_inputs(g, &err)))
            goto done;
    }
    bs_measure_opts_t m;
    bs_measure_defaults(&m);
    m.min_runs = c.repeats;
    m.min_time_ms = 0;
    m.max_time_ms = 1e12; /* exactly --repeats runs */
    if (m.warmup_runs > c.repeats)
        m.warmup_runs = c.repeats;
    bs_latency_stats_t st;
    if ((rc = bs_run_time(g, &m, NULL, &st, NULL, NULL, &err)))
        goto done;
    if (c.output) {
        const bs_tensor_t *o = bs_graph_output(g, 0);
        if (!o) {
            rc = bs_err_set(&err, BS_EMODEL, "%s: the model has no output", model);
            goto done;
        }
        if ((rc = bs_npy_save(c.output, o->dtype, o->shape.rank, o->shape.d, o->data, &err)))
            goto done;
    }
    if (c.json)
        rc = s_print_json(&c, model, g, &ev, have_data, &st);
    else
        s_print_text(&c, model, g, &ev, have_data, &st);
    if (rc)
        bs_err_set(&err, rc, "out of memory");
done:
    if (rc)
        fprintf(stderr, "bitscout-agent run: %s\n", err.msg[0] ? err.msg : bs_strerror(rc));
    bs_dataset_free(&ds);
    bs_graph_free(&g);
    bs_campaign_file_free(&camp);
    return rc ? 1 : 0;
}

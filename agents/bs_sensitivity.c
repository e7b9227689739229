/*
 * bs_sensitivity.c - per-layer sensitivity with the built-in engine (see bs_sensitivity.h):
 * the engine backend's sensitivity entry and the `bitscout-agent sensitivity` subcommand.
 *
 * bs_sensitivity_run reads the layer names from the model (common/bs_model.h, the names
 * assignments use), applies the base spec over them, loads the base configuration with
 * bs_run_load_prec, loads the evaluation data for its input shape once, and evaluates it with
 * bs_run_evaluate: that metric is the baseline, and without labels its outputs are the
 * reference the other configurations are compared to (top-1 agreement). When a precision has
 * int8 activations, bs_run_calibrate runs once on the calibration images and every load reuses
 * the table. Then, for each layer in graph order and each precision in the order given, the
 * base assignment with that one layer changed is formatted canonically, loaded, evaluated and
 * freed; the cancel flag is checked before every step. A load or evaluation that fails becomes
 * that row's error (its bs_err name and message); only out-of-memory and cancellation end the
 * run, since the other rows are still worth having.
 *
 * The backend entry reads the JOB's data object as bs_backend_engine.c does (preprocess,
 * eval_count, calib_count, quantization). The subcommand reads the few keys it needs from a
 * campaign file with cJSON, as `bitscout-agent run` does (the agent does not link the
 * searcher's strict parser): model, data.eval.{images,labels,count}, data.calibration.{images,
 * count}, data.preprocess, quantization, sensitivity.{precisions,eval_count} and, for the
 * default precision list, search_space[].{weights,activations}; paths relative to the file.
 */
#include "bs_sensitivity.h"

#include "bs_campaign.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bs_alloc.h"
#include "bs_graph.h"
#include "bs_kernels.h"
#include "bs_log.h"
#include "bs_model.h"
#include "bs_util.h"

#define S_MOD "sensitivity"

static int s_canceled(const atomic_int *cancel)
{
    return cancel && atomic_load(cancel);
}

/* Errors that end the whole run instead of one row. */
static int s_fatal(int rc)
{
    return rc == BS_ENOMEM || rc == BS_ECANCELED;
}

/* A row that could not be measured: its error is "<code name>: <message>". */
static int s_add_failed(bs_sens_result_t *out, const char *layer, bs_prec_t p, int rc,
                        const bs_err_t *e)
{
    char text[BS_ERR_MSG_MAX + 48];
    snprintf(text, sizeof text, "%s: %s", bs_err_name(rc), e->msg[0] ? e->msg : bs_strerror(rc));
    return bs_sens_result_add(out, layer, p, NAN, text);
}

/* Loads `assignment` and evaluates it on ds: 0 with *value, or the failing code in e. */
static int s_measure(const bs_sens_run_t *r, const char *assignment, const bs_act_table_t *act,
                     const bs_dataset_t *ds, const float *ref, double *value, bs_err_t *e)
{
    bs_graph_t *g = NULL;
    int rc = bs_run_load_prec(r->model_path, r->threads, assignment, &r->quant, act, &g, e);
    if (rc == 0 && s_canceled(r->cancel))
        rc = bs_err_set(e, BS_ECANCELED, "canceled");
    bs_eval_t ev;
    if (rc == 0 && (rc = bs_run_evaluate(g, ds, ref, r->cancel, &ev, NULL, e)) == 0)
        *value = ev.accuracy;
    bs_graph_free(&g);
    return rc;
}

int bs_sensitivity_run(const bs_sens_run_t *r, bs_sens_result_t *out, bs_err_t *err)
{
    if (!r->model_path)
        return bs_err_set(err, BS_EINVAL, "no model file");
    if (!r->images)
        return bs_err_set(err, BS_EINVAL,
                          "sensitivity needs evaluation data "
                          "(data.eval.images)");
    if (r->n_precs < 1 || !r->precs)
        return bs_err_set(err, BS_EINVAL, "no precisions to measure");
    snprintf(out->backend, sizeof out->backend, "engine");
    out->simulated = 0;

    bs_model_info_t mi;
    int rc = bs_model_info_load(r->model_path, &mi, err);
    if (rc)
        return rc;
    int n = mi.n_layers;
    bs_prec_t *base = bs_malloc(sizeof *base * (size_t)(n ? n : 1));
    bs_prec_t *p = bs_malloc(sizeof *p * (size_t)(n ? n : 1));
    const char **names = bs_malloc(sizeof *names * (size_t)(n ? n : 1));
    bs_graph_t *g = NULL;
    bs_dataset_t ds;
    memset(&ds, 0, sizeof ds);
    bs_act_table_t act = {0};
    float *ref = NULL;
    char *base_text = NULL, *assignment = NULL;
    bs_preprocess_t dflt;
    bs_preprocess_default(&dflt);
    bs_quant_opts_t quant = r->quant;
    quant.pre = r->pre ? r->pre : &dflt;
    bs_sens_run_t run = *r;
    run.quant = quant;
    if (!base || !p || !names) {
        rc = bs_err_set(err, BS_ENOMEM, "out of memory");
        goto done;
    }
    int base_a8 = 0, any_a8 = 0;
    for (int i = 0; i < n; i++) {
        base[i] = BS_PREC_FP32;
        names[i] = mi.layers[i].name;
    }
    if (r->base && *r->base && (rc = bs_spec_apply(r->base, names, n, base, err)) != 0) {
        bs_err_prefix(err, "base assignment");
        goto done;
    }
    for (int i = 0; i < n; i++)
        base_a8 |= base[i].a == 8;
    for (int k = 0; k < r->n_precs; k++)
        any_a8 |= r->precs[k].a == 8;
    if (!(base_text = bs_assign_format(names, base, n))) {
        rc = bs_err_set(err, BS_ENOMEM, "out of memory");
        goto done;
    }

    /* Calibration once, for every configuration with int8 activations. */
    bs_err_t calib_err = {0};
    int calib_rc = 0;
    if (base_a8 || any_a8) {
        calib_rc = bs_run_calibrate(r->model_path, r->threads, &quant, &act, &calib_err);
        if (calib_rc && (base_a8 || s_fatal(calib_rc))) {
            *err = calib_err;
            rc = calib_rc;
            goto done;
        }
        if (calib_rc)
            BS_WARN(S_MOD,
                    "int8 activations cannot be calibrated (%s); every a8 row is "
                    "unmeasured",
                    calib_err.msg);
    }
    if (s_canceled(r->cancel)) {
        rc = bs_err_set(err, BS_ECANCELED, "canceled");
        goto done;
    }

    /* The baseline, and the data set shaped for the model's input. */
    uint64_t t0 = bs_now_ms();
    if ((rc = bs_run_load_prec(r->model_path, r->threads, base_text, &quant,
                               calib_rc ? NULL : &act, &g, err))) {
        bs_err_prefix(err, "base configuration");
        goto done;
    }
    if (r->load_ms)
        *r->load_ms = (int64_t)(bs_now_ms() - t0);
    const bs_tensor_t *in = bs_graph_input(g, 0);
    if (!in) {
        rc = bs_err_set(err, BS_EMODEL, "%s: the model has no input", r->model_path);
        goto done;
    }
    bs_eval_t ev;
    if ((rc = bs_dataset_load(r->images, r->labels, r->count, quant.pre, &in->shape, &ds, err)) ||
        (rc = bs_run_evaluate(g, &ds, NULL, r->cancel, &ev, r->labels ? NULL : &ref, err)))
        goto done;
    bs_graph_free(&g);
    if (!(ev.accuracy >= 0.0 && ev.accuracy <= 1.0)) {
        rc = bs_err_set(err, BS_EDATA, "the base configuration's %s is not a number in [0, 1]",
                        ev.metric);
        goto done;
    }
    out->baseline = ev.accuracy;
    snprintf(out->metric, sizeof out->metric, "%s", ev.metric);
    if (r->samples)
        *r->samples = ev.samples;
    BS_INFO(S_MOD, "%s: baseline %s %.4f on %lld samples; %d layers x %d precisions to go",
            r->model_path, ev.metric, ev.accuracy, (long long)ev.samples, n, r->n_precs);

    /* Each layer alone at each precision. */
    memcpy(p, base, sizeof *p * (size_t)n);
    int done_rows = 0, total = n * r->n_precs;
    for (int i = 0; i < n && rc == 0; i++) {
        for (int k = 0; k < r->n_precs && rc == 0; k++) {
            if (s_canceled(r->cancel)) {
                rc = bs_err_set(err, BS_ECANCELED, "canceled");
                break;
            }
            p[i] = r->precs[k];
            bs_free(assignment);
            if (!(assignment = bs_assign_format(names, p, n))) {
                rc = bs_err_set(err, BS_ENOMEM, "out of memory");
                break;
            }
            double value = NAN;
            bs_err_t e = {0};
            int mrc = 0;
            if (p[i].a == 8 && calib_rc) {
                mrc = calib_rc;
                e = calib_err;
            } else {
                mrc = s_measure(&run, assignment, calib_rc ? NULL : &act, &ds, ref, &value, &e);
            }
            if (s_fatal(mrc)) {
                *err = e;
                rc = mrc;
                break;
            }
            if (mrc == 0 && !(value >= 0.0 && value <= 1.0)) {
                mrc = bs_err_set(&e, BS_EDATA, "the %s is not a number in [0, 1]", ev.metric);
            }
            rc = mrc ? s_add_failed(out, names[i], p[i], mrc, &e)
                     : bs_sens_result_add(out, names[i], p[i], value, NULL);
            if (rc) {
                bs_err_set(err, rc, "out of memory");
                break;
            }
            done_rows++;
            if (r->on_row)
                r->on_row(r->ud, &out->items[out->n - 1], done_rows, total);
        }
        p[i] = base[i];
    }
done:
    bs_free(assignment);
    bs_free(base_text);
    bs_free(ref);
    bs_graph_free(&g);
    bs_dataset_free(&ds);
    bs_act_table_free(&act);
    bs_free(base);
    bs_free(p);
    bs_free(names);
    bs_model_info_free(&mi);
    return rc;
}

/* ---- the engine backend's entry ------------------------------------------------------------ */

int bs_sensitivity_engine(const bs_job_spec_t *job, bs_sens_result_t *out, bs_err_t *err)
{
    if (!job->model_path)
        return bs_err_set(err, BS_EINVAL, "engine: the job names no model file (role \"model\")");
    bs_preprocess_t pre;
    bs_sens_run_t r;
    memset(&r, 0, sizeof r);
    int rc;
    if ((rc = bs_run_job_data(job->data, &pre, &r.count, &r.quant, err))) {
        bs_err_prefix(err, "engine");
        return rc;
    }
    r.quant.calib_images = job->calib_images;
    r.model_path = job->model_path;
    r.base = job->assignment;
    r.precs = job->precisions;
    r.n_precs = job->n_precisions;
    r.images = job->eval_images;
    r.labels = job->eval_labels;
    r.pre = &pre;
    r.threads = job->threads;
    r.cancel = job->cancel;
    r.load_ms = job->load_ms;
    if ((rc = bs_sensitivity_run(&r, out, err)) != 0)
        bs_err_prefix(err, "engine");
    return rc;
}

/* ---- `bitscout-agent sensitivity` ---------------------------------------------------------- */

/* What the subcommand takes from a campaign file: the common keys (bs_campaign.h) plus
 * sensitivity.eval_count and the precisions to measure. */
typedef struct s_campaign {
    bs_campaign_file_t f;
    int has_sens_count;
    int64_t sens_count;
    int n_precs;
    bs_prec_t precs[BS_SENS_MAX_PRECS];
} s_campaign_t;

static void s_usage(FILE *out)
{
    fprintf(out,
            "usage: bitscout-agent sensitivity --config CAMPAIGN.json [--model FILE.onnx]\n"
            "                                  [--precisions LIST] [--count N] [--threads N]\n"
            "                                  [--json]\n"
            "\n"
            "Measures each weight layer of a model alone at each precision (every other\n"
            "layer fp32) with the built-in engine, on the campaign's evaluation data, and\n"
            "prints the metric and its change from the all-fp32 baseline.\n"
            "\n"
            "  --config FILE       the campaign: data.eval (images, labels, count),\n"
            "                      data.calibration (for int8 activations), data.preprocess,\n"
            "                      quantization, sensitivity; required\n"
            "  --model FILE        the ONNX model (default: the campaign's \"model\")\n"
            "  --precisions LIST   comma-separated, e.g. w8a8,w4a32 (default: the campaign's\n"
            "                      sensitivity.precisions, else every non-fp32 choice of its\n"
            "                      search space)\n"
            "  --count N           evaluation samples (default: sensitivity.eval_count, else\n"
            "                      data.eval.count; 0 = all)\n"
            "  --threads N         kernel threads (default 1)\n"
            "  --json              print JSON instead of a table\n");
}

static int s_bad(const char *fmt, const char *arg)
{
    return bs_run_bad_usage("bitscout-agent sensitivity", s_usage, fmt, arg);
}

static void s_campaign_free(s_campaign_t *c)
{
    bs_campaign_file_free(&c->f);
    memset(c, 0, sizeof *c);
}

/* Adds p to the list unless it is w32a32 or already there; 1 when added. */
static int s_prec_add(s_campaign_t *c, bs_prec_t p)
{
    if (bs_prec_eq(p, BS_PREC_FP32))
        return 0;
    for (int i = 0; i < c->n_precs; i++)
        if (bs_prec_eq(c->precs[i], p))
            return 0;
    if (c->n_precs == BS_SENS_MAX_PRECS)
        return 0;
    c->precs[c->n_precs++] = p;
    return 1;
}

/* The default precisions: sensitivity.precisions, else the search space's non-fp32 choices. */
static int s_campaign_precs(const char *file, const cJSON *root, s_campaign_t *c, bs_err_t *err)
{
    const cJSON *sens = cJSON_GetObjectItemCaseSensitive(root, "sensitivity");
    const cJSON *list =
        cJSON_IsObject(sens) ? cJSON_GetObjectItemCaseSensitive(sens, "precisions") : NULL;
    if (list) {
        if (!cJSON_IsArray(list))
            return bs_err_set(err, BS_ECONFIG, "%s: sensitivity.precisions: expected an array",
                              file);
        int i = 0;
        for (const cJSON *e = list->child; e; e = e->next, i++) {
            bs_prec_t p;
            const char *s = cJSON_GetStringValue(e);
            if (!s || bs_prec_parse(s, &p) != 0 || !s_prec_add(c, p))
                return bs_err_set(err, BS_ECONFIG,
                                  "%s: sensitivity.precisions[%d]: expected a "
                                  "distinct precision wBaB other than w32a32 (\"w8a8\")",
                                  file, i);
        }
        return 0;
    }
    const cJSON *space = cJSON_GetObjectItemCaseSensitive(root, "search_space");
    int i = 0;
    for (const cJSON *rule = cJSON_IsArray(space) ? space->child : NULL; rule;
         rule = rule->next, i++) {
        const cJSON *ws = cJSON_GetObjectItemCaseSensitive(rule, "weights");
        const cJSON *as = cJSON_GetObjectItemCaseSensitive(rule, "activations");
        for (const cJSON *w = cJSON_IsArray(ws) ? ws->child : NULL; w; w = w->next) {
            uint8_t wb;
            const char *wn = cJSON_GetStringValue(w);
            if (!wn || bs_wprec_from_name(wn, &wb) != 0)
                return bs_err_set(err, BS_ECONFIG,
                                  "%s: search_space[%d].weights: expected "
                                  "precision names (fp32, fp16, int8 .. int2)",
                                  file, i);
            if (!cJSON_IsArray(as)) {
                s_prec_add(c, (bs_prec_t){wb, 32});
                continue;
            }
            for (const cJSON *a = as->child; a; a = a->next) {
                uint8_t ab;
                const char *an = cJSON_GetStringValue(a);
                if (!an || bs_aprec_from_name(an, &ab) != 0)
                    return bs_err_set(err, BS_ECONFIG,
                                      "%s: search_space[%d].activations: "
                                      "expected precision names (fp32, int8)",
                                      file, i);
                s_prec_add(c, (bs_prec_t){wb, ab});
            }
        }
    }
    return 0;
}

static int s_campaign_load(const char *file, s_campaign_t *c, bs_err_t *err)
{
    memset(c, 0, sizeof *c);
    int rc = bs_campaign_file_load(file, &c->f, err);
    const cJSON *sens;
    if (rc)
        return rc;
    if ((rc = bs_campaign_obj_key(file, c->f.root, "sensitivity", "sensitivity", &sens, err)) ||
        (rc = bs_campaign_count_key(file, sens, "eval_count", "sensitivity.eval_count",
                                    &c->sens_count, &c->has_sens_count, err)))
        goto done;
    if (!c->f.images) {
        rc = bs_err_set(err, BS_ECONFIG,
                        "%s: data.eval.images: required key missing (the "
                        "evaluation data sensitivity is measured on)",
                        file);
        goto done;
    }
    rc = s_campaign_precs(file, c->f.root, c, err);
done:
    if (rc)
        s_campaign_free(c);
    return rc;
}

/* "w8a8,w4a32" into c's list, replacing it. */
static int s_parse_precs(const char *list, s_campaign_t *c)
{
    c->n_precs = 0;
    const char *t = list;
    while (*t) {
        size_t n = strcspn(t, ",");
        char one[16];
        bs_prec_t p;
        if (n == 0 || n >= sizeof one)
            return -1;
        memcpy(one, t, n);
        one[n] = '\0';
        if (bs_prec_parse(one, &p) != 0 || !s_prec_add(c, p))
            return -1;
        t += n;
        if (*t == ',' && *++t == '\0')
            return -1;
    }
    return c->n_precs > 0 ? 0 : -1;
}

typedef struct s_cli {
    const char *config, *model, *precisions;
    int64_t count; /* -1: the campaign's */
    int threads;
    int json;
} s_cli_t;

static int s_parse_cli(int argc, char **argv, s_cli_t *c)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"model", required_argument, NULL, 'm'},
        {"precisions", required_argument, NULL, 'p'},
        {"count", required_argument, NULL, 'n'},
        {"threads", required_argument, NULL, 'j'},
        {"json", no_argument, NULL, 'J'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    memset(c, 0, sizeof *c);
    c->count = -1;
    c->threads = 1;
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        char *end;
        long long v;
        switch (ch) {
        case 'c':
            c->config = optarg;
            break;
        case 'm':
            c->model = optarg;
            break;
        case 'p':
            c->precisions = optarg;
            break;
        case 'n':
            v = strtoll(optarg, &end, 10);
            if (!*optarg || *end || v < 0 || v > 1000000000LL)
                return s_bad("--count '%s': expected a whole number >= 0", optarg);
            c->count = v;
            break;
        case 'j':
            v = strtoll(optarg, &end, 10);
            if (!*optarg || *end || v < 1 || v > 1024)
                return s_bad("--threads '%s': expected a whole number from 1 to 1024", optarg);
            c->threads = (int)v;
            break;
        case 'J':
            c->json = 1;
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
    if (!c->config)
        return s_bad("--config CAMPAIGN.json is required (it names the evaluation data)%s", "");
    return -1; /* go on */
}

static void s_on_row(void *ud, const bs_sens_item_t *row, int done, int total)
{
    (void)ud;
    char p[BS_PREC_TEXT_MAX];
    bs_prec_format(row->prec, p);
    if (isnan(row->value))
        BS_INFO(S_MOD, "%d/%d %s %s: not measured: %s", done, total, row->layer, p,
                row->error ? row->error : "");
    else
        BS_INFO(S_MOD, "%d/%d %s %s: %.4f", done, total, row->layer, p, row->value);
}

static void s_print_table(const char *model, int64_t samples, const bs_sens_result_t *r)
{
    int lw = 5;
    for (int i = 0; i < r->n; i++)
        if ((int)strlen(r->items[i].layer) > lw)
            lw = (int)strlen(r->items[i].layer);
    printf("model     %s\n", model);
    printf("metric    %s on %lld samples\n", r->metric, (long long)samples);
    printf("baseline  %.4f (every layer fp32)\n", r->baseline);
    printf("%-*s  %-9s  %7s  %8s  %s\n", lw, "layer", "precision", "value", "delta", "error");
    for (int i = 0; i < r->n; i++) {
        const bs_sens_item_t *it = &r->items[i];
        char p[BS_PREC_TEXT_MAX];
        bs_prec_format(it->prec, p);
        if (isnan(it->value))
            printf("%-*s  %-9s  %7s  %8s  %s\n", lw, it->layer, p, "-", "-",
                   it->error ? it->error : "");
        else
            printf("%-*s  %-9s  %7.4f  %+8.4f\n", lw, it->layer, p, it->value,
                   it->value - r->baseline);
    }
}

static int s_print_json(const char *model, int64_t samples, const bs_sens_result_t *r)
{
    cJSON *o = bs_sens_result_to_json(r);
    if (!o || !cJSON_AddStringToObject(o, "model", model) ||
        !cJSON_AddNumberToObject(o, "samples", (double)samples)) {
        cJSON_Delete(o);
        return BS_ENOMEM;
    }
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!text)
        return BS_ENOMEM;
    printf("%s\n", text);
    cJSON_free(text);
    return 0;
}

int bs_sensitivity_main(int argc, char **argv)
{
    s_cli_t c;
    int st = s_parse_cli(argc, argv, &c);
    if (st >= 0)
        return st;
    bs_err_t err = {0};
    s_campaign_t camp;
    bs_sens_result_t res;
    bs_sens_result_init(&res);
    int rc = s_campaign_load(c.config, &camp, &err);
    if (rc)
        goto done;
    if (c.precisions && s_parse_precs(c.precisions, &camp) != 0) {
        s_campaign_free(&camp);
        return s_bad("--precisions '%s': expected distinct precisions such as w8a8,w4a32 "
                     "(weights 32, 16, 8..2; activations 32, 8), none of them w32a32",
                     c.precisions);
    }
    if (camp.n_precs == 0) {
        rc = bs_err_set(&err, BS_ECONFIG,
                        "%s: no precision to measure: the campaign's search "
                        "space offers only fp32 and it has no sensitivity.precisions; give "
                        "--precisions",
                        c.config);
        goto done;
    }
    const char *model = c.model ? c.model : camp.f.model;
    if (!model) {
        rc = bs_err_set(&err, BS_ECONFIG, "%s: model: required key missing (or give --model)",
                        c.config);
        goto done;
    }
    int64_t samples = 0;
    bs_sens_run_t r;
    memset(&r, 0, sizeof r);
    r.model_path = model;
    r.precs = camp.precs;
    r.n_precs = camp.n_precs;
    r.images = camp.f.images;
    r.labels = camp.f.labels;
    r.count = c.count >= 0 ? c.count : camp.has_sens_count ? camp.sens_count : camp.f.count;
    r.pre = &camp.f.pre;
    r.quant = camp.f.quant;
    r.threads = c.threads;
    r.samples = &samples;
    r.on_row = s_on_row;
    BS_INFO(S_MOD, "kernels: %s, %d thread(s)", bs_kernels_isa(), c.threads);
    if ((rc = bs_sensitivity_run(&r, &res, &err)))
        goto done;
    if (c.json)
        rc = s_print_json(model, samples, &res);
    else
        s_print_table(model, samples, &res);
    if (rc)
        bs_err_set(&err, rc, "out of memory");
done:
    if (rc)
        fprintf(stderr, "bitscout-agent sensitivity: %s\n",
                err.msg[0] ? err.msg : bs_strerror(rc));
    bs_sens_result_free(&res);
    s_campaign_free(&camp);
    return rc ? 1 : 0;
}

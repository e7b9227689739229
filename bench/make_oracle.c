/*
 * make_oracle.c - builds the benchmark's oracle problem (issue 6) from a real model with the
 * real engine: every configuration of a small per-layer precision space, with its accuracy,
 * latency and weight bytes, written as bench/oracle/<model>.csv (format: bs_oracle.h and
 * bench/README.md, "Oracle problem (issue 6)").
 *
 * The space: every weight layer of the model (common/bs_model.h names, graph order) takes one
 * of eight choices, in this fixed order: w32a32 w32a8 w8a32 w8a8 w4a32 w4a8 w2a32 w2a8; the
 * fmnist-cnn model's four layers give 8^4 = 4096 configurations.
 *
 * Accuracy and weight bytes are exactly what an agent reports for the configuration
 * (agents/bs_run.c): int8 activations are calibrated once, min-max, on the first --calib
 * training images (bs_run_calibrate; calibration runs the fp32 model, so one table serves
 * every configuration, as it would be recomputed identically per job), weight scales by the
 * MSE search (the default), the data preprocessed as configs/fmnist-cnn.json says (parsed by
 * the same bs_preprocess_from_json), and each configuration is loaded with bs_run_load_prec
 * and evaluated with bs_run_evaluate (batch 1, top-1 on the first --images test images);
 * weight_bytes is the loaded graph's. One kernel thread.
 *
 * Latency is additive over layers, from per-layer measurements: for each choice the whole
 * model is loaded at that uniform choice and every node is timed alone, the way bench_engine
 * --layers does (a layer's time includes what was fused into it: batch norm, the activation,
 * requantization into the next int8 layer), one thread, the median over --runs runs. The
 * machine may be shared, so the choices are interleaved run by run (each gets an untimed run
 * to warm its weights, a timed whole run, then a run timed node by node; the order rotates),
 * so that load from elsewhere falls on all of them alike, and this is done in --rounds rounds:
 * the figures of the quietest round (smallest sum of whole-model medians) are kept, all from
 * the same round so they belong together. The whole model's median at each uniform choice is
 * measured in the same runs; base_ms = the fp32 whole-model median minus the sum of the fp32
 * layer times (the non-layer ops: pooling, reshapes, and the call overhead), and a
 * configuration's latency_ms = base_ms + the sum of its layers' times. The uniform
 * whole-model medians go in the file too (uniform_ms), so a reader can see how far the
 * additive model is from a real run.
 *
 * Options: --model F, --data-dir D (t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz,
 * train-images-idx3-ubyte.gz), --images N (1000), --calib N (256), --runs R (2000),
 * --rounds K (7), --warmup N (200), --out F; --accuracy-from F takes accuracy and weight bytes
 * from an earlier oracle file of the same model, space and data and measures only the latency
 * again (on a quieter moment, or another machine). A missing data file is an error naming it.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "bs_alloc.h"
#include "bs_graph.h"
#include "bs_kernels.h"
#include "bs_model.h"
#include "bs_op.h"
#include "bs_oracle.h"
#include "bs_qkernels.h"
#include "bs_run.h"
#include "bs_util.h"

#define S_NCHOICES 8
static const char *const s_choice_text[S_NCHOICES] = {"w32a32", "w32a8", "w8a32", "w8a8",
                                                      "w4a32",  "w4a8",  "w2a32", "w2a8"};
/* configs/fmnist-cnn.json's data.preprocess, verbatim */
static const char s_preprocess_json[] =
    "{\"scale\": 0.00392156862745098, \"mean\": [0.2860], \"std\": [0.3530]}";

typedef struct s_opts {
    const char *model, *data_dir, *out, *acc_from;
    int images, calib, runs, rounds, warmup;
} s_opts_t;

static double s_now_ms(void)
{
    return 1e3 * bs_now_s();
}

static int s_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double s_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, s_cmp);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* ---- timing --------------------------------------------------------------------------------- */

typedef struct s_timer {
    bs_graph_t *g;
    int n_layers;
    int *layer_node;   /* per model layer: its engine node index, -1 when the engine has none */
    const float *input; /* one sample */
} s_timer_t;

static int s_set_input(s_timer_t *t, bs_err_t *err)
{
    const bs_tensor_t *in = bs_graph_input(t->g, 0);
    return bs_graph_set_input(t->g, 0, BS_DT_FLOAT, t->input, in->nbytes, err);
}

/* One whole-model run, timed (the input copied in first, outside the timing). */
static int s_whole_once(s_timer_t *t, double *ms, bs_err_t *err)
{
    int rc = s_set_input(t, err);
    if (rc)
        return rc;
    double t0 = s_now_ms();
    rc = bs_graph_run(t->g, err);
    *ms = s_now_ms() - t0;
    return rc;
}

/* One run with every live node timed alone, walking the graph as bench_engine --layers and
 * bs_run_profile do; lay[l] = the time of model layer l's node (0 when it has none). */
static int s_nodes_once(s_timer_t *t, double *lay, bs_err_t *err)
{
    bs_graph_t *g = t->g;
    bs_ctx_t ctx = {.scratch = g->scratch, .pool = g->pool, .err = err};
    int rc = s_set_input(t, err);
    if (rc)
        return rc;
    for (int l = 0; l < t->n_layers; l++)
        lay[l] = 0.0;
    for (int i = 0; i < g->n_nodes; i++) {
        bs_node_t *n = &g->nodes[i];
        if (n->dead || (n->op->alias && n->n_out > 0 && n->out[0] >= 0 &&
                        g->tensors[n->out[0]].alias_of >= 0))
            continue;
        double t0 = s_now_ms();
        if ((rc = n->op->run(g, n, &ctx)))
            return bs_node_err(err, n, rc, "run failed: %s", bs_strerror(rc));
        double ms = s_now_ms() - t0;
        for (int l = 0; l < t->n_layers; l++)
            if (t->layer_node[l] == i)
                lay[l] = ms;
    }
    return 0;
}

/* Maps the model's layer names to the engine's weight-layer nodes. */
static int s_map_layers(s_timer_t *t, const char *const *names, int n, bs_err_t *err)
{
    const char **en = NULL;
    int *idx = NULL;
    int ne = bs_graph_weight_layers(t->g, &en, &idx);
    if (ne < 0)
        return bs_err_set(err, BS_ENOMEM, "out of memory");
    if (!(t->layer_node = bs_malloc(sizeof *t->layer_node * (size_t)n))) {
        bs_free(en);
        bs_free(idx);
        return bs_err_set(err, BS_ENOMEM, "out of memory");
    }
    t->n_layers = n;
    for (int l = 0; l < n; l++) {
        t->layer_node[l] = -1;
        for (int j = 0; j < ne; j++)
            if (!strcmp(en[j], names[l]))
                t->layer_node[l] = idx[j];
    }
    bs_free(en);
    bs_free(idx);
    return 0;
}

/* Fills o->layer_ms, o->uniform_ms and o->base_ms. */
static int s_measure(const s_opts_t *op, const bs_quant_opts_t *q, const bs_act_table_t *act,
                     const char *const *names, const float *input, bs_oracle_t *o,
                     bs_err_t *err)
{
    int L = o->n_layers, C = o->n_choices, R = op->runs, K = op->rounds, rc = 0;
    s_timer_t tm[S_NCHOICES];
    memset(tm, 0, sizeof tm);
    double *times = NULL;
    double *lay = bs_calloc((size_t)(K * C * L), sizeof *lay);   /* [round][choice][layer] */
    double *whole = bs_calloc((size_t)(K * C), sizeof *whole);  /* [round][choice] */
    if (!lay || !whole) {
        rc = bs_err_set(err, BS_ENOMEM, "out of memory");
        goto done;
    }
    for (int k = 0; k < C && rc == 0; k++) {
        char spec[32];
        snprintf(spec, sizeof spec, "*=%s", s_choice_text[k]);
        if ((rc = bs_run_load_prec(op->model, 1, spec, q, act, &tm[k].g, err)) == 0)
            rc = s_map_layers(&tm[k], names, L, err);
        tm[k].input = input;
    }
    /* samples of one round: [choice][run] whole, [choice][layer][run] per layer */
    if (rc == 0 && !(times = bs_malloc(sizeof *times * (size_t)C * (size_t)(L + 1) * (size_t)R)))
        rc = bs_err_set(err, BS_ENOMEM, "out of memory");
    for (int k = 0; k < C && rc == 0; k++)
        for (int w = 0; w < op->warmup && rc == 0; w++)
            if ((rc = s_set_input(&tm[k], err)) == 0)
                rc = bs_graph_run(tm[k].g, err);
    double lay_once[BS_ORACLE_MAX_LAYERS];
    for (int r = 0; r < K && rc == 0; r++) {
        /* run by run, every choice in turn (rotated), so that load from elsewhere falls on
         * all of them alike; each choice gets an untimed run first to bring its weights back
         * into the cache, then a timed whole run and a run timed node by node */
        for (int i = 0; i < R && rc == 0; i++) {
            for (int j = 0; j < C && rc == 0; j++) {
                int k = (j + i) % C;
                double *base = times + (size_t)k * (size_t)(L + 1) * (size_t)R;
                if ((rc = s_set_input(&tm[k], err)) == 0 &&
                    (rc = bs_graph_run(tm[k].g, err)) == 0 &&
                    (rc = s_whole_once(&tm[k], &base[i], err)) == 0)
                    rc = s_nodes_once(&tm[k], lay_once, err);
                for (int l = 0; l < L && rc == 0; l++)
                    base[(size_t)(l + 1) * (size_t)R + (size_t)i] = lay_once[l];
            }
        }
        for (int k = 0; k < C && rc == 0; k++) {
            double *base = times + (size_t)k * (size_t)(L + 1) * (size_t)R;
            whole[r * C + k] = s_median(base, R);
            for (int l = 0; l < L; l++)
                lay[(r * C + k) * L + l] = s_median(base + (size_t)(l + 1) * (size_t)R, R);
        }
        if (rc == 0)
            fprintf(stderr, "make_oracle: timing round %d/%d: fp32 %.4f ms, %s %.4f ms\n",
                    r + 1, K, whole[r * C], s_choice_text[C - 1], whole[r * C + C - 1]);
    }
    /* the quietest round (smallest sum of whole-model medians over the choices) gives every
     * figure: within a round all choices saw the same conditions, so its figures belong
     * together, and load from elsewhere only ever makes a round slower */
    int best = 0;
    double best_sum = INFINITY;
    for (int r = 0; r < K && rc == 0; r++) {
        double sum = 0.0;
        for (int k = 0; k < C; k++)
            sum += whole[r * C + k];
        if (sum < best_sum) {
            best_sum = sum;
            best = r;
        }
    }
    for (int k = 0; k < C && rc == 0; k++) {
        o->uniform_ms[k] = whole[best * C + k];
        for (int l = 0; l < L; l++)
            o->layer_ms[l * C + k] = lay[(best * C + k) * L + l];
    }
    if (rc == 0)
        fprintf(stderr, "make_oracle: figures from round %d (the quietest)\n", best + 1);
    if (rc == 0) {
        o->base_ms = o->uniform_ms[0];
        for (int l = 0; l < L; l++)
            o->base_ms -= o->layer_ms[l * C];
    }
done:
    for (int k = 0; k < C; k++) {
        bs_graph_free(&tm[k].g);
        bs_free(tm[k].layer_node);
    }
    bs_free(times);
    bs_free(lay);
    bs_free(whole);
    return rc;
}

/* ---- accuracy ------------------------------------------------------------------------------- */

static int s_evaluate_all(const s_opts_t *op, const bs_quant_opts_t *q, const bs_act_table_t *act,
                          const char *const *names, const bs_dataset_t *ds, bs_oracle_t *o,
                          bs_err_t *err)
{
    int L = o->n_layers, rc = 0;
    int cand[BS_ORACLE_MAX_LAYERS];
    bs_prec_t precs[BS_ORACLE_MAX_LAYERS];
    double t0 = bs_now_s();
    for (int64_t c = 0; c < o->n_configs && rc == 0; c++) {
        bs_oracle_cand(o, c, cand);
        for (int l = 0; l < L; l++)
            precs[l] = o->choices[cand[l]];
        char *assign = bs_assign_format(names, precs, L);
        bs_graph_t *g = NULL;
        bs_eval_t ev;
        if (!assign) {
            rc = bs_err_set(err, BS_ENOMEM, "out of memory");
            break;
        }
        if ((rc = bs_run_load_prec(op->model, 1, assign, q, act, &g, err)) == 0 &&
            (rc = bs_run_evaluate(g, ds, NULL, NULL, &ev, NULL, err)) == 0) {
            o->accuracy[c] = ev.accuracy;
            o->weight_bytes[c] = (int64_t)g->weight_bytes;
            o->latency_ms[c] = bs_oracle_latency(o, cand);
        } else {
            bs_err_prefix(err, "configuration %s", assign);
        }
        bs_graph_free(&g);
        bs_free(assign);
        if (rc == 0 && ((c + 1) % 256 == 0 || c + 1 == o->n_configs)) {
            double el = bs_now_s() - t0;
            fprintf(stderr, "make_oracle: accuracy %lld/%lld configurations, %.0f s, about %.0f "
                    "s left\n", (long long)(c + 1), (long long)o->n_configs, el,
                    el / (double)(c + 1) * (double)(o->n_configs - c - 1));
        }
    }
    return rc;
}

/* --accuracy-from: accuracy and weight bytes from an earlier oracle of the same model, space
 * and data (only the latency is measured again). */
static int s_reuse(const char *path, const char *data, bs_oracle_t *o, bs_err_t *err)
{
    bs_oracle_t prev;
    int rc = bs_oracle_load(path, &prev, err);
    if (rc)
        return rc;
    int same = prev.n_layers == o->n_layers && prev.n_choices == o->n_choices &&
               !strcmp(prev.sha256, o->sha256) && !strcmp(prev.data, data);
    for (int l = 0; same && l < o->n_layers; l++)
        same = !strcmp(prev.layers[l], o->layers[l]);
    for (int k = 0; same && k < o->n_choices; k++)
        same = bs_prec_eq(prev.choices[k], o->choices[k]);
    if (!same) {
        rc = bs_err_set(err, BS_EINVAL, "%s: not an oracle of this model, space and data "
                        "(model sha256, layers, choices and the \"data:\" line must match: "
                        "\"%s\")", path, data);
    } else {
        int cand[BS_ORACLE_MAX_LAYERS];
        for (int64_t c = 0; c < o->n_configs; c++) {
            bs_oracle_cand(o, c, cand);
            o->accuracy[c] = prev.accuracy[c];
            o->weight_bytes[c] = prev.weight_bytes[c];
            o->latency_ms[c] = bs_oracle_latency(o, cand);
        }
    }
    bs_oracle_free(&prev);
    return rc;
}

/* ---- header text ---------------------------------------------------------------------------- */

static void s_cpu_model(char *buf, size_t cap)
{
    snprintf(buf, cap, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) && strncmp(line, "Model", 5) &&
            strncmp(line, "Hardware", 8))
            continue;
        char *c = strchr(line, ':');
        if (!c)
            continue;
        c++;
        while (*c == ' ' || *c == '\t')
            c++;
        c[strcspn(c, "\r\n")] = '\0';
        for (char *p = c; *p; p++)
            if (*p == ',')
                *p = ' ';
        snprintf(buf, cap, "%s", c);
        break;
    }
    fclose(f);
}

/* ---- main ----------------------------------------------------------------------------------- */

static int s_usage(void)
{
    fprintf(stderr,
            "usage: make_oracle [--model F.onnx] [--data-dir D] [--images N] [--calib N] "
            "[--runs R] [--rounds K] [--warmup N] [--out F.csv] [--accuracy-from F.csv]\n"
            "defaults: --model %s/models/fmnist-cnn.onnx --data-dir "
            "/usr/share/datasets/fashion-mnist --images 1000 --calib 256 --runs 2000 --rounds 7 "
            "--warmup 200 --out %s/bench/oracle/fmnist-cnn.csv\n",
            BS_SRC_DIR, BS_SRC_DIR);
    return 2;
}

static int s_count(const char *flag, const char *v, int lo, int hi, int *out)
{
    char *end = NULL;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || !*v || *end || x < lo || x > hi) {
        fprintf(stderr, "make_oracle: %s needs an integer in [%d, %d], got '%s'\n", flag, lo, hi,
                v ? v : "");
        return -1;
    }
    *out = (int)x;
    return 0;
}

static const char *s_base(const char *path)
{
    const char *b = strrchr(path, '/');
    return b ? b + 1 : path;
}

static int s_run(const s_opts_t *op, bs_err_t *err)
{
    char images[4096], labels[4096], train[4096];
    snprintf(images, sizeof images, "%s/t10k-images-idx3-ubyte.gz", op->data_dir);
    snprintf(labels, sizeof labels, "%s/t10k-labels-idx1-ubyte.gz", op->data_dir);
    snprintf(train, sizeof train, "%s/train-images-idx3-ubyte.gz", op->data_dir);
    const char *files[] = {op->model, images, labels, train};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++)
        if (access(files[i], R_OK) != 0)
            return bs_err_set(err, BS_ENOENT, "%s: cannot read it%s", files[i],
                              i ? " (Fashion-MNIST: Debian's dataset-fashion-mnist package, or "
                                  "--data-dir)" : "");
    bs_oracle_t o;
    memset(&o, 0, sizeof o);
    bs_model_info_t mi;
    memset(&mi, 0, sizeof mi);
    bs_preprocess_t pre;
    bs_act_table_t act = {0};
    bs_dataset_t ds;
    memset(&ds, 0, sizeof ds);
    bs_graph_t *g0 = NULL;
    const char **names = NULL;
    cJSON *pj = cJSON_Parse(s_preprocess_json);
    int rc = pj ? bs_preprocess_from_json(pj, "preprocess", &pre, err)
                : bs_err_set(err, BS_ENOMEM, "out of memory");
    cJSON_Delete(pj);
    if (rc == 0)
        rc = bs_model_info_load(op->model, &mi, err);
    if (rc)
        goto done;
    o.n_layers = mi.n_layers;
    o.n_choices = S_NCHOICES;
    o.n_configs = 1;
    for (int l = 0; l < mi.n_layers; l++) {
        o.n_configs *= S_NCHOICES;
        if (l + 1 > BS_ORACLE_MAX_LAYERS || o.n_configs > BS_ORACLE_MAX_CONFIGS) {
            rc = bs_err_set(err, BS_EINVAL, "%s: %d weight layers: more than %lld "
                            "configurations", op->model, mi.n_layers,
                            (long long)BS_ORACLE_MAX_CONFIGS);
            goto done;
        }
    }
    for (int k = 0; k < S_NCHOICES; k++)
        bs_prec_parse(s_choice_text[k], &o.choices[k]);
    o.layers = bs_calloc((size_t)o.n_layers, sizeof *o.layers);
    names = bs_calloc((size_t)o.n_layers, sizeof *names);
    o.accuracy = bs_calloc((size_t)o.n_configs, sizeof *o.accuracy);
    o.latency_ms = bs_calloc((size_t)o.n_configs, sizeof *o.latency_ms);
    o.weight_bytes = bs_calloc((size_t)o.n_configs, sizeof *o.weight_bytes);
    o.layer_ms = bs_calloc((size_t)(o.n_layers * o.n_choices), sizeof *o.layer_ms);
    o.uniform_ms = bs_calloc((size_t)o.n_choices, sizeof *o.uniform_ms);
    o.model = bs_strdup(s_base(op->model));
    if (!o.layers || !names || !o.accuracy || !o.latency_ms || !o.weight_bytes || !o.layer_ms ||
        !o.uniform_ms || !o.model) {
        rc = bs_err_set(err, BS_ENOMEM, "out of memory");
        goto done;
    }
    for (int l = 0; l < o.n_layers; l++) {
        if (!(o.layers[l] = bs_strdup(mi.layers[l].name))) {
            rc = bs_err_set(err, BS_ENOMEM, "out of memory");
            goto done;
        }
        names[l] = o.layers[l];
    }
    if ((rc = bs_sha256_file(op->model, o.sha256, NULL, err)))
        goto done;

    /* calibration once (the fp32 model: the same table every job would compute) */
    bs_quant_opts_t q;
    bs_quant_opts_default(&q);
    q.calib_images = train;
    q.calib_count = op->calib;
    q.pre = &pre;
    double t0 = bs_now_s();
    if ((rc = bs_run_calibrate(op->model, 1, &q, &act, err)))
        goto done;
    if ((rc = bs_run_load(op->model, 1, &g0, err)))
        goto done;
    const bs_tensor_t *in = bs_graph_input(g0, 0);
    if (!in || in->dtype != BS_DT_FLOAT) {
        rc = bs_err_set(err, BS_EMODEL, "%s: input 0 must be float32", op->model);
        goto done;
    }
    if ((rc = bs_dataset_load(images, labels, op->images, &pre, &in->shape, &ds, err)))
        goto done;
    if (ds.count < op->images) {
        rc = bs_err_set(err, BS_EDATA, "%s: %lld images, --images asks for %d", images,
                        (long long)ds.count, op->images);
        goto done;
    }
    fprintf(stderr, "make_oracle: %s: %d layers x %d choices = %lld configurations; "
            "calibrated on %d images, %d test images\n", op->model, o.n_layers, o.n_choices,
            (long long)o.n_configs, op->calib, op->images);

    if ((rc = s_measure(op, &q, &act, names, ds.x, &o, err)))
        goto done;
    fprintf(stderr, "make_oracle: base_ms %.6f (fp32 whole %.6f)\n", o.base_ms, o.uniform_ms[0]);
    char cpu[256], date[32], data[512], machine[768];
    snprintf(data, sizeof data, "%s first %d images, calibration %d %s minmax, weights mse",
             s_base(images), op->images, op->calib, s_base(train));
    if ((rc = op->acc_from ? s_reuse(op->acc_from, data, &o, err)
                           : s_evaluate_all(op, &q, &act, names, &ds, &o, err)))
        goto done;
    s_cpu_model(cpu, sizeof cpu);
    bs_iso8601(bs_wall_ms(), date);
    snprintf(machine, sizeof machine, "%s, engine bitscout-engine %s %s/%s, 1 thread, latency "
             "median of %d runs (quietest of %d rounds), date %s", cpu, BS_VERSION,
             bs_kernels_isa(), bs_qkernels_isa(), op->runs, op->rounds, date);
    o.data = data;
    o.machine = machine;
    rc = bs_oracle_save(op->out, &o, err);
    o.data = o.machine = NULL;
    if (rc == 0) {
        fprintf(stderr, "make_oracle: wrote %s in %.0f s\n", op->out, bs_now_s() - t0);
        int uni[BS_ORACLE_MAX_LAYERS];
        for (int k = 0; k < o.n_choices; k++) {
            for (int l = 0; l < o.n_layers; l++)
                uni[l] = k;
            int64_t r = bs_oracle_index(&o, uni);
            fprintf(stderr, "make_oracle: uniform %-6s accuracy %.4f latency_ms %.4f "
                    "(whole-model run %.4f) weight_bytes %lld\n", s_choice_text[k],
                    o.accuracy[r], o.latency_ms[r], o.uniform_ms[k],
                    (long long)o.weight_bytes[r]);
        }
    }
done:
    bs_free(names);
    bs_graph_free(&g0);
    bs_dataset_free(&ds);
    bs_act_table_free(&act);
    bs_model_info_free(&mi);
    bs_oracle_free(&o);
    return rc;
}

int main(int argc, char **argv)
{
    s_opts_t o = {.model = BS_SRC_DIR "/models/fmnist-cnn.onnx",
                  .data_dir = "/usr/share/datasets/fashion-mnist",
                  .out = BS_SRC_DIR "/bench/oracle/fmnist-cnn.csv",
                  .images = 1000, .calib = 256, .runs = 2000, .rounds = 7, .warmup = 200};
    for (int i = 1; i < argc; i += 2) { /* every option takes a value */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (!strcmp(a, "--images"))
            bad = s_count(a, v, 1, 1000000, &o.images);
        else if (!strcmp(a, "--calib"))
            bad = s_count(a, v, 1, 1000000, &o.calib);
        else if (!strcmp(a, "--runs"))
            bad = s_count(a, v, 1, 100000, &o.runs);
        else if (!strcmp(a, "--rounds"))
            bad = s_count(a, v, 1, 1000, &o.rounds);
        else if (!strcmp(a, "--warmup"))
            bad = s_count(a, v, 0, 1000000, &o.warmup);
        else if (!strcmp(a, "--model") && v)
            o.model = v;
        else if (!strcmp(a, "--data-dir") && v)
            o.data_dir = v;
        else if (!strcmp(a, "--out") && v)
            o.out = v;
        else if (!strcmp(a, "--accuracy-from") && v)
            o.acc_from = v;
        else
            return s_usage();
        if (bad)
            return 2;
    }
    bs_err_t err = {0};
    if (s_run(&o, &err) != 0) {
        fprintf(stderr, "make_oracle: %s\n", err.msg);
        return 1;
    }
    return 0;
}

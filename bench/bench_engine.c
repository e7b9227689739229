/*
 * bench_engine.c - latency of the built-in engine on whole ONNX models (issue 3, "Speed").
 *
 * A program that prints figures, not a test. For each model on the command line it loads and
 * prepares the graph with bs_graph_load (batch 1, --threads kernel threads), fills every graph
 * input with deterministic pseudo-random data (xorshift32, uniform in [-1, 1); the same
 * generator as bench/ort_bench.js, so both see the same input), runs --warmup untimed runs,
 * then times --runs single runs of bs_graph_run with CLOCK_MONOTONIC (the inputs are copied in
 * before each run, outside the timed region) and prints one line per model:
 *
 *   engine model=NAME isa=ISA threads=T median_ms=X p90_ms=Y min_ms=Z runs=N
 *          weight_bytes=W arena_bytes=A scratch_bytes=S input=1x3x96x96 out_l1=L
 *
 * (one line; out_l1 is the sum of |output 0|, a cheap cross-check). A model that fails to load
 * or run gets an "engine model=NAME error=..." line and the exit status is 1.
 *
 * Options:
 *   --threads T     kernel threads (default 1)
 *   --runs N        timed runs (default 100); --warmup N untimed runs first (default 10)
 *   --isa NAME      force an instruction set (bs_kernels_select: scalar, avx2, avx512, neon)
 *   --dump DIR      write output 0 of the last run as raw float32 to DIR/NAME.out.f32
 *                   (bench/ort_bench.js --compare DIR reports the largest difference)
 *   --profile       after the timed runs, time every node separately over the same number of
 *                   runs and print the time per op type (Conv split into depthwise, 1x1 and
 *                   other) and the slowest nodes. This walks the nodes the way bs_graph_run
 *                   does (live nodes, aliasing ops skipped); the "profile ... total" line shows
 *                   the sum next to the whole-run median, so a divergence would be visible.
 *   --top N         how many of the slowest nodes --profile lists (default 12)
 *   --precision S   load at precision spec S (e.g. "*=w8a8"; common/bs_precision.h); int8
 *                   activations are calibrated (min-max) on 16 inputs from the same generator
 *                   (seeds 101..116), so the timed input is not among them
 *   --calib-out F   also write those 16 calibration inputs to F (.npy, float32, batch of 16)
 *                   so that `bitscout export` calibrates on exactly the same samples
 *   --layers        after the timed runs, one "layer" line per weight layer: its median time
 *                   over --runs runs of that node alone, and its precision
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bs_alloc.h"
#include "bs_graph.h"
#include "bs_kernels.h"
#include "bs_npy.h"
#include "bs_op.h"
#include "bs_qkernels.h"
#include "bs_run.h"

typedef struct opts {
    int threads, runs, warmup, profile, top, layers;
    const char *isa, *dump, *precision, *calib_out;
} opts_t;

static double s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return 1e3 * (double)ts.tv_sec + 1e-6 * (double)ts.tv_nsec;
}

static int s_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Value at fraction q of the sorted samples (nearest rank). */
static double s_quantile(const double *sorted, int n, double q)
{
    int i = (int)ceil(q * n) - 1;
    return sorted[i < 0 ? 0 : i >= n ? n - 1 : i];
}

/* Model name: the file name without directory and ".onnx". Writes into buf. */
static const char *s_model_name(const char *path, char *buf, size_t cap)
{
    const char *b = strrchr(path, '/');
    snprintf(buf, cap, "%s", b ? b + 1 : path);
    size_t n = strlen(buf);
    if (n > 5 && strcmp(buf + n - 5, ".onnx") == 0)
        buf[n - 5] = '\0';
    return buf;
}

/* xorshift32, the same sequence as bench/ort_bench.js. */
static uint32_t s_xorshift(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

/* Input buffers: deterministic data per input (seed 1 + input index). Owned by the caller
 * (bs_free each, then the array). */
static int s_make_inputs(const bs_graph_t *g, void ***bufs, bs_err_t *err)
{
    void **b = bs_malloc((size_t)(g->n_inputs ? g->n_inputs : 1) * sizeof *b);
    if (!b)
        return bs_err_set(err, BS_ENOMEM, "out of memory");
    for (int i = 0; i < g->n_inputs; i++)
        b[i] = NULL;
    *bufs = b;
    for (int i = 0; i < g->n_inputs; i++) {
        const bs_tensor_t *t = bs_graph_input(g, i);
        int64_t n = bs_shape_numel(&t->shape);
        if (!(b[i] = bs_malloc(t->nbytes ? t->nbytes : 1)))
            return bs_err_set(err, BS_ENOMEM, "out of memory");
        uint32_t s = 1u + (uint32_t)i;
        if (t->dtype == BS_DT_FLOAT) {
            float *f = b[i];
            for (int64_t k = 0; k < n; k++)
                f[k] = (float)(s_xorshift(&s) >> 8) * (2.0f / 16777216.0f) - 1.0f;
        } else if (t->dtype == BS_DT_UINT8) {
            uint8_t *u = b[i];
            for (int64_t k = 0; k < n; k++)
                u[k] = (uint8_t)(s_xorshift(&s) >> 24);
        } else {
            return bs_err_set(err, BS_EUNSUPPORTED, "input '%s' has type %s; the benchmark "
                              "fills float32 and uint8 inputs only", t->name,
                              bs_dtype_name(t->dtype));
        }
    }
    return 0;
}

static int s_set_inputs(bs_graph_t *g, void **bufs, bs_err_t *err)
{
    for (int i = 0; i < g->n_inputs; i++) {
        const bs_tensor_t *t = bs_graph_input(g, i);
        int rc = bs_graph_set_input(g, i, t->dtype, bufs[i], t->nbytes, err);
        if (rc)
            return rc;
    }
    return 0;
}

/* Op-type key for the profile: Conv split by kind, so kernel owners see which path costs. */
static void s_op_key(bs_graph_t *g, const bs_node_t *n, char *buf, size_t cap)
{
    if (strcmp(n->op_type, "Conv") == 0) {
        const bs_tensor_t *x = bs_node_input(g, n, 0), *w = bs_node_input(g, n, 1);
        int64_t group = bs_attr_int(n, "group", 1);
        const char *kind = "conv";
        if (x && w && x->shape.rank == 4 && w->shape.rank == 4) {
            if (group > 1 && group == x->shape.d[1] && w->shape.d[1] == 1)
                kind = "dw";
            else if (group == 1 && w->shape.d[2] == 1 && w->shape.d[3] == 1)
                kind = "1x1";
            else if (group == 1)
                kind = "kxk";
            else
                kind = "grouped";
        }
        snprintf(buf, cap, "Conv(%s)", kind);
    } else {
        snprintf(buf, cap, "%s", n->op_type);
    }
}

typedef struct prof_row {
    char key[48];
    int nodes;                /* nodes of this op type; in the top-nodes list, the node index */
    double ms;
} prof_row_t;

static int s_row_cmp(const void *a, const void *b)
{
    double x = ((const prof_row_t *)a)->ms, y = ((const prof_row_t *)b)->ms;
    return (x < y) - (x > y);
}

/* Median time of every node over `runs` runs, each node timed alone (med[i], 0 for nodes that
 * do not run). */
static int s_node_medians(bs_graph_t *g, void **inputs, int runs, double *med, bs_err_t *err)
{
    int nn = g->n_nodes, rc = 0;
    double *t = bs_malloc((size_t)nn * (size_t)runs * sizeof *t + 1);
    double *col = bs_malloc((size_t)runs * sizeof *col + 1);
    if (!t || !col) {
        bs_free(t);
        bs_free(col);
        return bs_err_set(err, BS_ENOMEM, "out of memory");
    }
    bs_ctx_t ctx = {.scratch = g->scratch, .pool = g->pool};
    for (int r = 0; r < runs && rc == 0; r++) {
        if ((rc = s_set_inputs(g, inputs, err)))
            break;
        for (int i = 0; i < nn; i++) {
            bs_node_t *n = &g->nodes[i];
            t[(size_t)i * (size_t)runs + (size_t)r] = 0.0;
            if (n->dead)
                continue;
            if (n->op->alias && n->n_out > 0 && n->out[0] >= 0 &&
                g->tensors[n->out[0]].alias_of >= 0)
                continue;
            double t0 = s_now_ms();
            if ((rc = n->op->run(g, n, &ctx))) {
                bs_node_err(err, n, rc, "run failed: %s", bs_strerror(rc));
                break;
            }
            t[(size_t)i * (size_t)runs + (size_t)r] = s_now_ms() - t0;
        }
    }
    for (int i = 0; i < nn && rc == 0; i++) {
        memcpy(col, &t[(size_t)i * (size_t)runs], (size_t)runs * sizeof *col);
        qsort(col, (size_t)runs, sizeof *col, s_cmp);
        med[i] = s_quantile(col, runs, 0.5);
    }
    bs_free(t);
    bs_free(col);
    return rc;
}

/* --layers: one line per weight layer with its median time and precision. */
static int s_layers(bs_graph_t *g, void **inputs, const char *name, const char *spec, int runs,
                    bs_err_t *err)
{
    double *med = bs_calloc((size_t)g->n_nodes + 1, sizeof *med);
    if (!med)
        return bs_err_set(err, BS_ENOMEM, "out of memory");
    int rc = s_node_medians(g, inputs, runs, med, err);
    for (int i = 0; i < g->n_nodes && rc == 0; i++) {
        const bs_node_t *n = &g->nodes[i];
        if (n->dead || !n->weight_layer)
            continue;
        char key[48], p[BS_PREC_TEXT_MAX];
        s_op_key(g, n, key, sizeof key);
        bs_prec_format(n->prec, p);
        printf("layer model=%s spec=%s node=%s op=%s precision=%s ms=%.4f\n", name,
               spec ? spec : "fp32", n->name, key, p, med[i]);
    }
    fflush(stdout);
    bs_free(med);
    return rc;
}

/* Calibration for a spec with int8 activations: the float32 model run on 16 pseudo-random
 * inputs (seeds 101.., the same generator as the timed input), min-max. */
static int s_calibrate(const char *path, const opts_t *o, bs_act_table_t *act, bs_err_t *err)
{
    bs_graph_opts_t go = {.threads = o->threads, .free_dim = 1};
    bs_graph_t *g = NULL;
    int rc = bs_graph_load(path, &go, &g, err);
    if (rc)
        return rc;
    const bs_tensor_t *x = bs_graph_input(g, 0);
    bs_dataset_t ds = {.count = 16};
    if (!x || x->dtype != BS_DT_FLOAT) {
        rc = bs_err_set(err, BS_EUNSUPPORTED, "int8 activations: input 0 must be float32");
    } else {
        ds.sample_numel = bs_shape_numel(&x->shape);
        if (!(ds.x = bs_malloc(sizeof(float) * (size_t)(ds.count * ds.sample_numel))))
            rc = bs_err_set(err, BS_ENOMEM, "out of memory");
    }
    for (int64_t i = 0; rc == 0 && i < ds.count; i++) {
        uint32_t sd = 101u + (uint32_t)i;
        for (int64_t k = 0; k < ds.sample_numel; k++)
            ds.x[i * ds.sample_numel + k] =
                (float)(s_xorshift(&sd) >> 8) * (2.0f / 16777216.0f) - 1.0f;
    }
    bs_quant_opts_t q;
    bs_quant_opts_default(&q);
    if (rc == 0 && o->calib_out) { /* the same samples for `bitscout export` (bench/precision.sh) */
        int64_t dims[BS_MAX_RANK + 1];
        dims[0] = ds.count;
        for (int d = 1; d < x->shape.rank; d++)
            dims[d] = x->shape.d[d];
        rc = bs_npy_save(o->calib_out, BS_DT_FLOAT, x->shape.rank, dims, ds.x, err);
    }
    if (rc == 0)
        rc = bs_run_calibrate_graph(g, &ds, &q, act, err);
    bs_free(ds.x);
    bs_graph_free(&g);
    return rc;
}

/* Per-node timing over `runs` runs; prints per-op-type totals (median run) and the top nodes. */
static int s_profile(bs_graph_t *g, void **inputs, const char *name, int runs, int ntop_max,
                     double whole_ms, bs_err_t *err)
{
    int nn = g->n_nodes;
    double *meds = bs_calloc((size_t)nn + 1, sizeof *meds);
    prof_row_t *rows = bs_malloc((size_t)(nn + 1) * sizeof *rows);
    prof_row_t *top = bs_malloc((size_t)(nn + 1) * sizeof *top);
    int rc = 0;
    if (!meds || !rows || !top) {
        rc = bs_err_set(err, BS_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = s_node_medians(g, inputs, runs, meds, err)))
        goto out;
    /* per node: median over runs */
    int nrows = 0, ntop = 0;
    double total = 0.0;
    for (int i = 0; i < nn; i++) {
        bs_node_t *n = &g->nodes[i];
        double med = meds[i];
        if (n->dead || med == 0.0)
            continue;
        total += med;
        snprintf(top[ntop].key, sizeof top[ntop].key, "%s", n->name);
        top[ntop].nodes = i;
        top[ntop++].ms = med;
        char key[48];
        s_op_key(g, n, key, sizeof key);
        int k = 0;
        while (k < nrows && strcmp(rows[k].key, key) != 0)
            k++;
        if (k == nrows) {
            snprintf(rows[k].key, sizeof rows[k].key, "%s", key);
            rows[k].nodes = 0;
            rows[k].ms = 0.0;
            nrows++;
        }
        rows[k].nodes++;
        rows[k].ms += med;
    }
    qsort(rows, (size_t)nrows, sizeof *rows, s_row_cmp);
    qsort(top, (size_t)ntop, sizeof *top, s_row_cmp);
    printf("profile model=%s total_ms=%.4f whole_run_median_ms=%.4f (sum of per-node medians)\n",
           name, total, whole_ms);
    for (int k = 0; k < nrows; k++)
        printf("profile model=%s op=%-16s nodes=%-3d ms=%8.4f pct=%5.1f\n", name, rows[k].key,
               rows[k].nodes, rows[k].ms, total > 0 ? 100.0 * rows[k].ms / total : 0.0);
    for (int k = 0; k < ntop && k < ntop_max; k++) {
        const bs_node_t *n = &g->nodes[top[k].nodes];
        const bs_tensor_t *y = bs_node_output(g, n, 0);
        char shp[96] = "?";
        if (y)
            bs_shape_str(&y->shape, shp, sizeof shp);
        char key[48];
        s_op_key(g, n, key, sizeof key);
        printf("profile model=%s node=%-18s op=%-12s out=%-16s ms=%8.4f\n", name, top[k].key,
               key, shp, top[k].ms);
    }
out:
    bs_free(meds);
    bs_free(rows);
    bs_free(top);
    return rc;
}

static int s_dump(const bs_graph_t *g, const char *dir, const char *name, bs_err_t *err)
{
    const bs_tensor_t *y = bs_graph_output(g, 0);
    if (!y || y->dtype != BS_DT_FLOAT)
        return bs_err_set(err, BS_EINVAL, "output 0 is not float32; nothing dumped");
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.out.f32", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f)
        return bs_err_set(err, BS_EIO, "%s: cannot write", path);
    size_t w = fwrite(y->data, 1, y->nbytes, f);
    if (fclose(f) != 0 || w != y->nbytes)
        return bs_err_set(err, BS_EIO, "%s: write failed", path);
    return 0;
}

/* Loads, times and reports one model. 0, or a BS_E* code with err filled. */
static int s_bench(const char *path, const opts_t *o, bs_err_t *err)
{
    char name[256];
    s_model_name(path, name, sizeof name);
    bs_graph_opts_t go = {.threads = o->threads, .free_dim = 1, .precision = o->precision};
    bs_graph_t *g = NULL;
    void **inputs = NULL;
    bs_act_table_t act = {0};
    double *t = bs_malloc((size_t)o->runs * sizeof *t);
    int rc = t ? 0 : bs_err_set(err, BS_ENOMEM, "no memory");
    if (rc == 0 && o->precision && strstr(o->precision, "a8")) {
        rc = s_calibrate(path, o, &act, err);
        go.act = &act;
    }
    if (rc == 0)
        rc = bs_graph_load(path, &go, &g, err);
    if (rc == 0)
        rc = s_make_inputs(g, &inputs, err);
    for (int r = 0; rc == 0 && r < o->warmup; r++)
        if ((rc = s_set_inputs(g, inputs, err)) == 0)
            rc = bs_graph_run(g, err);
    for (int r = 0; rc == 0 && r < o->runs; r++) {
        if ((rc = s_set_inputs(g, inputs, err)))
            break;
        double t0 = s_now_ms();
        rc = bs_graph_run(g, err);
        t[r] = s_now_ms() - t0;
    }
    if (rc == 0) {
        const bs_tensor_t *y = bs_graph_output(g, 0);
        double l1 = 0.0;
        if (y && y->dtype == BS_DT_FLOAT)
            for (int64_t k = 0; k < bs_shape_numel(&y->shape); k++)
                l1 += fabs((double)((const float *)y->data)[k]);
        char in[96] = "?";
        const bs_tensor_t *x = bs_graph_input(g, 0);
        if (x) {
            size_t used = 0;
            for (int d = 0; d < x->shape.rank && used < sizeof in - 24; d++)
                used += (size_t)snprintf(in + used, sizeof in - used, "%s%lld", d ? "x" : "",
                                         (long long)x->shape.d[d]);
        }
        qsort(t, (size_t)o->runs, sizeof *t, s_cmp);
        printf("engine model=%s spec=%s isa=%s qisa=%s threads=%d median_ms=%.4f p90_ms=%.4f "
               "min_ms=%.4f runs=%d weight_bytes=%zu arena_bytes=%zu scratch_bytes=%zu input=%s "
               "out_l1=%.6g\n",
               name, o->precision ? o->precision : "fp32", bs_kernels_isa(), bs_qkernels_isa(),
               o->threads, s_quantile(t, o->runs, 0.5),
               s_quantile(t, o->runs, 0.9), t[0], o->runs, g->weight_bytes, g->arena_bytes,
               g->scratch_bytes, in, l1);
        fflush(stdout);
        if (o->dump)
            rc = s_dump(g, o->dump, name, err);
        if (rc == 0 && o->layers)
            rc = s_layers(g, inputs, name, o->precision, o->runs, err);
        if (rc == 0 && o->profile)
            rc = s_profile(g, inputs, name, o->runs, o->top, s_quantile(t, o->runs, 0.5), err);
    }
    if (inputs)
        for (int i = 0; i < g->n_inputs; i++)
            bs_free(inputs[i]);
    bs_free(inputs);
    bs_graph_free(&g);
    bs_act_table_free(&act);
    bs_free(t);
    return rc;
}

static int s_usage(void)
{
    fprintf(stderr, "usage: bench_engine [--threads T] [--runs N] [--warmup N] [--isa ISA] "
                    "[--dump DIR] [--profile] [--top N] [--precision SPEC] [--calib-out F.npy] "
                    "[--layers] "
                    "MODEL.onnx...\n");
    return 2;
}

static int s_count(const char *flag, const char *v, int lo, int *out)
{
    char *end = NULL;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || *end || x < lo || x > 1000000) {
        fprintf(stderr, "bench_engine: %s needs an integer >= %d, got '%s'\n", flag, lo,
                v ? v : "");
        return -1;
    }
    *out = (int)x;
    return 0;
}

int main(int argc, char **argv)
{
    opts_t o = {.threads = 1, .runs = 100, .warmup = 10, .top = 12};
    int first = argc;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--threads") == 0) {
            if (s_count(a, v, 1, &o.threads))
                return 2;
            i++;
        } else if (strcmp(a, "--runs") == 0) {
            if (s_count(a, v, 1, &o.runs))
                return 2;
            i++;
        } else if (strcmp(a, "--warmup") == 0) {
            if (s_count(a, v, 0, &o.warmup))
                return 2;
            i++;
        } else if (strcmp(a, "--top") == 0) {
            if (s_count(a, v, 0, &o.top))
                return 2;
            i++;
        } else if (strcmp(a, "--isa") == 0 && v) {
            o.isa = v;
            i++;
        } else if (strcmp(a, "--dump") == 0 && v) {
            o.dump = v;
            i++;
        } else if (strcmp(a, "--profile") == 0) {
            o.profile = 1;
        } else if (strcmp(a, "--layers") == 0) {
            o.layers = 1;
        } else if (strcmp(a, "--calib-out") == 0 && v) {
            o.calib_out = v;
            i++;
        } else if (strcmp(a, "--precision") == 0 && v) {
            o.precision = v;
            i++;
        } else if (a[0] == '-') {
            return s_usage();
        } else {
            first = i;
            break;
        }
    }
    if (first >= argc)
        return s_usage();
    if (o.isa && bs_kernels_select(o.isa) != 0) {
        fprintf(stderr, "bench_engine: ISA '%s' not available (this build and CPU: %s)\n", o.isa,
                bs_kernels_available());
        return 2;
    }
    int status = 0;
    for (int i = first; i < argc; i++) {
        bs_err_t err = {0};
        if (s_bench(argv[i], &o, &err) != 0) {
            char name[256];
            printf("engine model=%s error=\"%s\"\n", s_model_name(argv[i], name, sizeof name),
                   err.msg);
            fflush(stdout);
            status = 1;
        }
    }
    return status;
}

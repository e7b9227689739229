/*
 * onnx_conformance.c - runs ONNX's own backend tests (Debian's libonnx-testdata) through the
 * engine and checks every output at ONNX's tolerances.
 *
 *   onnx-conformance DATA_DIR [--filter SUBSTR] [--verbose] [--no-fork]
 *
 * DATA_DIR holds the suites node/, pytorch-converted/, pytorch-operator/ and simple/; each test
 * is a directory with model.onnx and test_data_set_N/ folders of input_K.pb / output_K.pb
 * (serialized TensorProtos). A test is "supported" when every node is in the default domain
 * and has an op in the engine's registry, and every tensor type in the graph (inputs,
 * outputs, value_info, initializers, tensor attributes) is one the engine stores; that is
 * decided from the model parsed with the protobuf-c code generated from onnx.proto, before the
 * engine sees it. Unsupported tests are skipped and counted. A supported test is loaded with
 * the input shapes of its data set (free dimension 1, one thread); a graph input that decides
 * an output's shape (Reshape's shape, Slice's starts, ...: see s_load_time) is first baked into
 * the model as an initializer with the data set's value, since the engine's shapes are static.
 * The model is run, and every output is
 * compared with the expected one: same dtype and shape, floats within
 * |actual - expected| <= atol + rtol * |expected| (rtol 1e-3, atol 1e-7: the defaults of ONNX's
 * backend runner, which in ONNX 1.12 overrides them only for the downloaded "real" models, not
 * for these suites), NaN equal to NaN, integers and bools exactly.
 *
 * Each test runs in a forked child with a time limit, so a crash or a hang fails that test
 * alone (--no-fork runs in-process, for a debugger). A failure prints
 * `FAIL <suite>/<test>: <reason>`. A test whose op types are all registered but which the
 * engine refuses at load with BS_EUNSUPPORTED (a mode it deliberately does not implement, such
 * as BatchNormalization training_mode=1) prints `REFUSED <suite>/<test>: <reason>` and is
 * counted apart, not as supported. The last line is always
 * `onnx-conformance: N supported, P passed`, and the exit status is 0 only when P == N.
 */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bs_alloc.h"
#include "bs_graph.h"
#include "bs_op.h"
#include "bs_util.h"
#include "onnx.pb-c.h"

#define S_RTOL 1e-3
#define S_ATOL 1e-7
#define S_MAX_IO 64            /* inputs / outputs per data set */
#define S_TEST_TIMEOUT_S 60    /* per test, in the child; generous for sanitizer builds */
#define S_MODEL_MAX ((size_t)512 << 20)
#define S_CHILD_REFUSED 4      /* the engine refused a feature at load (BS_EUNSUPPORTED) */
#define S_CHILD_FAILED 3       /* a child's status for "failed, FAIL line printed"; the
                                  sanitizers exit with 1 and 23 */

static const char *const s_suites[] = {"node", "pytorch-converted", "pytorch-operator",
                                       "simple"};

/* Node inputs whose values decide output shapes, so the engine (static shapes) needs them at
 * load time: (op type, bit mask of input positions). ONNX's node tests feed many of them as
 * graph inputs (Reshape's shape in test_reshape_*); a real model has them as initializers or
 * computes them from shapes, which the loader folds. The runner therefore bakes a graph input
 * that feeds one of these slots into the model as an initializer holding the data set's value,
 * and feeds the engine the remaining inputs. */
static const struct {
    const char *op;
    unsigned mask;
} s_load_time[] = {
    {"Reshape", 1u << 1}, {"Expand", 1u << 1}, {"Tile", 1u << 1},
    {"Slice", 0x1eu}, {"Squeeze", 1u << 1}, {"Unsqueeze", 1u << 1},
    {"Split", 1u << 1}, {"Pad", (1u << 1) | (1u << 3)}, {"ConstantOfShape", 1u << 0},
    {"Range", 0x7u}, {"Resize", 0xeu}, {"Upsample", 1u << 1},
    {"ReduceMean", 1u << 1}, {"ReduceSum", 1u << 1},
};

typedef struct s_opts {
    const char *data_dir;
    const char *filter;
    int verbose;
    int fork;
} s_opts_t;

/* snprintf that may truncate (paths and messages here are far below their buffers). */
static void s_fmt(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void s_fmt(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
}

/* ---- listing ------------------------------------------------------------------------------ */

static int s_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted subdirectory names of dir; *out and its strings are the caller's. */
static int s_list_dirs(const char *dir, char ***out, int *count)
{
    DIR *d = opendir(dir);
    *out = NULL;
    *count = 0;
    if (!d)
        return BS_ENOENT;
    char **names = NULL;
    int n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        struct stat st;
        s_fmt(path, sizeof path, "%s/%s", dir, e->d_name);
        if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nn = bs_realloc(names, (size_t)cap * sizeof *names);
            if (!nn)
                break;
            names = nn;
        }
        names[n++] = bs_strdup(e->d_name);
    }
    closedir(d);
    if (n)
        qsort(names, (size_t)n, sizeof *names, s_cmp_str);
    *out = names;
    *count = n;
    return 0;
}

static void s_free_list(char **names, int n)
{
    for (int i = 0; i < n; i++)
        bs_free(names[i]);
    bs_free(names);
}

static int s_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* ---- "supported" -------------------------------------------------------------------------- */

static int s_type_ok(const Onnx__TypeProto *t)
{
    return t && t->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE && t->tensor_type &&
           t->tensor_type->has_elem_type && bs_dtype_size(t->tensor_type->elem_type) > 0;
}

static int s_values_ok(Onnx__ValueInfoProto **v, size_t n, const char *what, char *why,
                       size_t cap)
{
    for (size_t i = 0; i < n; i++) {
        if (!s_type_ok(v[i]->type)) {
            s_fmt(why, cap, "%s '%s' is not a tensor of a supported type", what,
                     v[i]->name ? v[i]->name : "");
            return 0;
        }
    }
    return 1;
}

/* 1 if the engine should run this model; otherwise 0 with the reason in why. */
static int s_supported(const Onnx__ModelProto *m, char *why, size_t cap)
{
    const Onnx__GraphProto *g = m->graph;
    if (!g) {
        s_fmt(why, cap, "no graph");
        return 0;
    }
    for (size_t i = 0; i < g->n_node; i++) {
        const Onnx__NodeProto *nd = g->node[i];
        const char *dom = nd->domain ? nd->domain : "";
        if (dom[0] && strcmp(dom, "ai.onnx") != 0) {
            s_fmt(why, cap, "node %zu in domain '%s'", i, dom);
            return 0;
        }
        if (!bs_op_find(nd->op_type)) {
            s_fmt(why, cap, "op %s", nd->op_type ? nd->op_type : "(none)");
            return 0;
        }
        for (size_t a = 0; a < nd->n_attribute; a++) {
            const Onnx__AttributeProto *at = nd->attribute[a];
            if (at->g || at->n_graphs || at->sparse_tensor || at->n_sparse_tensors) {
                s_fmt(why, cap, "node %zu has a graph or sparse attribute", i);
                return 0;
            }
            if (at->t && bs_dtype_size(at->t->data_type) == 0) {
                s_fmt(why, cap, "node %zu has a tensor attribute of type %d", i,
                         at->t->data_type);
                return 0;
            }
        }
    }
    for (size_t i = 0; i < g->n_initializer; i++) {
        if (bs_dtype_size(g->initializer[i]->data_type) == 0) {
            s_fmt(why, cap, "initializer of type %d", g->initializer[i]->data_type);
            return 0;
        }
    }
    if (g->n_sparse_initializer) {
        s_fmt(why, cap, "sparse initializers");
        return 0;
    }
    return s_values_ok(g->input, g->n_input, "input", why, cap) &&
           s_values_ok(g->output, g->n_output, "output", why, cap) &&
           s_values_ok(g->value_info, g->n_value_info, "value", why, cap);
}

/* ---- comparing ---------------------------------------------------------------------------- */

static double s_elem_f(const bs_tensor_t *t, int64_t i)
{
    switch (t->dtype) {
    case BS_DT_FLOAT: return ((const float *)t->data)[i];
    case BS_DT_DOUBLE: return ((const double *)t->data)[i];
    case BS_DT_FLOAT16: return bs_f16_to_f32(((const uint16_t *)t->data)[i]);
    default: return 0;
    }
}

static void s_elem_str(const bs_tensor_t *t, int64_t i, char *buf, size_t cap)
{
    const void *p = t->data;
    switch (t->dtype) {
    case BS_DT_FLOAT: case BS_DT_DOUBLE: case BS_DT_FLOAT16:
        s_fmt(buf, cap, "%.9g", s_elem_f(t, i));
        break;
    case BS_DT_UINT8: case BS_DT_BOOL: s_fmt(buf, cap, "%u", ((const uint8_t *)p)[i]); break;
    case BS_DT_INT8: s_fmt(buf, cap, "%d", ((const int8_t *)p)[i]); break;
    case BS_DT_UINT16: s_fmt(buf, cap, "%u", ((const uint16_t *)p)[i]); break;
    case BS_DT_INT16: s_fmt(buf, cap, "%d", ((const int16_t *)p)[i]); break;
    case BS_DT_INT32: s_fmt(buf, cap, "%d", ((const int32_t *)p)[i]); break;
    case BS_DT_UINT32: s_fmt(buf, cap, "%u", ((const uint32_t *)p)[i]); break;
    case BS_DT_INT64: s_fmt(buf, cap, "%lld", (long long)((const int64_t *)p)[i]); break;
    case BS_DT_UINT64:
        s_fmt(buf, cap, "%llu", (unsigned long long)((const uint64_t *)p)[i]);
        break;
    default: s_fmt(buf, cap, "?");
    }
}

static int s_close(double a, double e)
{
    if (isnan(a) || isnan(e))
        return isnan(a) && isnan(e);
    if (isinf(a) || isinf(e))
        return a == e;
    return fabs(a - e) <= S_ATOL + S_RTOL * fabs(e);
}

/* 0 if actual matches expected; else 1 with the reason in why. */
static int s_compare(int k, const bs_tensor_t *a, const bs_tensor_t *e, char *why, size_t cap)
{
    char b1[160], b2[160];
    if (a->dtype != e->dtype) {
        s_fmt(why, cap, "output %d: type %s, expected %s", k, bs_dtype_name(a->dtype),
                 bs_dtype_name(e->dtype));
        return 1;
    }
    if (!bs_shape_eq(&a->shape, &e->shape)) {
        s_fmt(why, cap, "output %d: shape %s, expected %s", k,
                 bs_shape_str(&a->shape, b1, sizeof b1), bs_shape_str(&e->shape, b2, sizeof b2));
        return 1;
    }
    int64_t n = bs_shape_numel(&e->shape);
    size_t es = bs_dtype_size(e->dtype);
    int is_f = e->dtype == BS_DT_FLOAT || e->dtype == BS_DT_DOUBLE || e->dtype == BS_DT_FLOAT16;
    if (n > 0 && (!a->data || !e->data)) {
        s_fmt(why, cap, "output %d: no data", k);
        return 1;
    }
    for (int64_t i = 0; i < n; i++) {
        int ok = is_f ? s_close(s_elem_f(a, i), s_elem_f(e, i))
                      : memcmp((const char *)a->data + i * (int64_t)es,
                               (const char *)e->data + i * (int64_t)es, es) == 0;
        if (!ok) {
            s_elem_str(a, i, b1, sizeof b1);
            s_elem_str(e, i, b2, sizeof b2);
            s_fmt(why, cap, "output %d: index %lld: got %s, expected %s", k, (long long)i,
                     b1, b2);
            return 1;
        }
    }
    return 0;
}

/* ---- running one test --------------------------------------------------------------------- */

static void s_clear_all(bs_tensor_t *t, int n)
{
    for (int i = 0; i < n; i++)
        bs_tensor_clear(&t[i]);
}

/* Loads the .pb files prefix_0.pb, prefix_1.pb, ... of a data set; *n gets their count. */
static int s_load_pbs(const char *set_dir, const char *prefix, bs_tensor_t *t, int *n,
                      char *why, size_t cap)
{
    *n = 0;
    for (int k = 0; k < S_MAX_IO; k++) {
        char path[4096];
        s_fmt(path, sizeof path, "%s/%s_%d.pb", set_dir, prefix, k);
        if (!s_exists(path))
            break;
        bs_err_t err = {0};
        if (bs_tensor_load_pb(path, &t[k], &err) != 0) {
            s_fmt(why, cap, "reading %s_%d.pb: %s", prefix, k, err.msg);
            return -1;
        }
        *n = k + 1;
    }
    return 0;
}

/* 1 if the graph input named `name` feeds a load-time slot of some node. */
static int s_feeds_load_time(const Onnx__GraphProto *g, const char *name)
{
    for (size_t i = 0; i < g->n_node; i++) {
        const Onnx__NodeProto *nd = g->node[i];
        for (size_t t = 0; t < sizeof s_load_time / sizeof s_load_time[0]; t++) {
            if (!nd->op_type || strcmp(nd->op_type, s_load_time[t].op) != 0)
                continue;
            for (size_t k = 0; k < nd->n_input && k < 32; k++)
                if ((s_load_time[t].mask >> k & 1u) && nd->input[k] &&
                    strcmp(nd->input[k], name) == 0)
                    return 1;
        }
    }
    return 0;
}

/* The graph inputs that are not initializers, in order (they match input_K.pb); bake[k] says
 * whether input k is baked into the model. Returns their count. */
static int s_real_inputs(const Onnx__GraphProto *g, const char **names, int *bake)
{
    int n = 0;
    for (size_t i = 0; i < g->n_input && n < S_MAX_IO; i++) {
        const char *nm = g->input[i]->name ? g->input[i]->name : "";
        int init = 0;
        for (size_t j = 0; j < g->n_initializer && !init; j++)
            init = g->initializer[j]->name && strcmp(g->initializer[j]->name, nm) == 0;
        if (init)
            continue;
        names[n] = nm;
        bake[n] = s_feeds_load_time(g, nm);
        n++;
    }
    return n;
}

/* Packs m with the baked inputs of one data set added as initializers; *out is the caller's
 * (bs_free). The model is left as it was. */
static int s_pack_baked(Onnx__ModelProto *m, const char *set_dir, const char **names,
                        const int *bake, int n, uint8_t **out, size_t *len, char *why,
                        size_t cap)
{
    Onnx__GraphProto *g = m->graph;
    size_t n0 = g->n_initializer;
    Onnx__TensorProto **orig = g->initializer;
    Onnx__TensorProto **all = bs_calloc(n0 + (size_t)n + 1, sizeof *all);
    Onnx__TensorProto *added[S_MAX_IO];
    char *orig_names[S_MAX_IO];
    int n_added = 0, rc = -1;
    if (!all) {
        s_fmt(why, cap, "out of memory");
        return -1;
    }
    if (n0)
        memcpy(all, orig, n0 * sizeof *all);
    for (int k = 0; k < n; k++) {
        if (!bake[k])
            continue;
        char path[4096], *buf = NULL;
        size_t blen = 0;
        bs_err_t err = {0};
        s_fmt(path, sizeof path, "%s/input_%d.pb", set_dir, k);
        if (bs_read_file(path, S_MODEL_MAX, &buf, &blen, &err) != 0) {
            s_fmt(why, cap, "%s", err.msg);
            goto out;
        }
        Onnx__TensorProto *tp = onnx__tensor_proto__unpack(NULL, blen, (const uint8_t *)buf);
        bs_free(buf);
        if (!tp) {
            s_fmt(why, cap, "input_%d.pb does not parse", k);
            goto out;
        }
        orig_names[n_added] = tp->name;
        tp->name = (char *)names[k];
        added[n_added++] = tp;
        all[n0 + (size_t)n_added - 1] = tp;
    }
    g->initializer = all;
    g->n_initializer = n0 + (size_t)n_added;
    *len = onnx__model_proto__get_packed_size(m);
    *out = bs_malloc(*len ? *len : 1);
    if (*out) {
        onnx__model_proto__pack(m, *out);
        rc = 0;
    } else {
        s_fmt(why, cap, "out of memory");
    }
    g->initializer = orig;
    g->n_initializer = n0;
out:
    for (int i = 0; i < n_added; i++) {
        added[i]->name = orig_names[i];
        onnx__tensor_proto__free_unpacked(added[i], NULL);
    }
    bs_free(all);
    return rc;
}

/* Runs one data set; 0 = pass, else the reason in why. */
static int s_run_set(Onnx__ModelProto *m, const char *test_dir, const char *set_dir, char *why,
                     size_t cap)
{
    bs_tensor_t in[S_MAX_IO], exp[S_MAX_IO];
    bs_shape_t shapes[S_MAX_IO];
    const char *names[S_MAX_IO];
    int bake[S_MAX_IO], feed[S_MAX_IO];
    int n_in = 0, n_exp = 0, n_feed = 0, n_baked = 0, rc = 1;
    bs_graph_t *g = NULL;
    bs_err_t err = {0};
    uint8_t *packed = NULL;
    size_t packed_len = 0;
    memset(in, 0, sizeof in);
    memset(exp, 0, sizeof exp);
    if (s_load_pbs(set_dir, "input", in, &n_in, why, cap) ||
        s_load_pbs(set_dir, "output", exp, &n_exp, why, cap))
        goto out;
    int n_real = s_real_inputs(m->graph, names, bake);
    if (n_real != n_in) {
        s_fmt(why, cap, "model has %d inputs, the data set %d", n_real, n_in);
        goto out;
    }
    for (int k = 0; k < n_in; k++) {
        if (bake[k]) {
            n_baked++;
            continue;
        }
        shapes[n_feed] = in[k].shape;
        feed[n_feed++] = k;
    }
    bs_graph_opts_t opts = {.threads = 1, .free_dim = 1, .n_input_shapes = n_feed,
                            .input_shapes = shapes};
    char model[4096];
    s_fmt(model, sizeof model, "%s/model.onnx", test_dir);
    if (n_baked) {
        if (s_pack_baked(m, set_dir, names, bake, n_in, &packed, &packed_len, why, cap))
            goto out;
        rc = bs_graph_load_buffer(packed, packed_len, test_dir, &opts, &g, &err);
    } else {
        rc = bs_graph_load(model, &opts, &g, &err);
    }
    if (rc != 0) {
        /* The engine refused a feature of a supported op type at load, with a clear error
         * (BatchNormalization training_mode=1, say): reported as refused, not as supported. */
        rc = rc == BS_EUNSUPPORTED ? 2 : 1;
        s_fmt(why, cap, "load: %s", err.msg);
        goto out;
    }
    rc = 1;
    if (g->n_inputs != n_feed || g->n_outputs != n_exp) {
        s_fmt(why, cap, "engine has %d inputs and %d outputs, the data set %d and %d",
              g->n_inputs, g->n_outputs, n_feed, n_exp);
        goto out;
    }
    for (int j = 0; j < n_feed; j++) {
        const bs_tensor_t *t = &in[feed[j]];
        if (bs_graph_set_input(g, j, t->dtype, t->data, t->nbytes, &err) != 0) {
            s_fmt(why, cap, "input %d: %s", feed[j], err.msg);
            goto out;
        }
    }
    if (bs_graph_run(g, &err) != 0) {
        s_fmt(why, cap, "run: %s", err.msg);
        goto out;
    }
    for (int k = 0; k < n_exp; k++) {
        const bs_tensor_t *a = bs_graph_output(g, k);
        if (!a) {
            s_fmt(why, cap, "output %d missing", k);
            goto out;
        }
        if (s_compare(k, a, &exp[k], why, cap))
            goto out;
    }
    rc = 0;
out:
    bs_free(packed);
    bs_graph_free(&g);
    s_clear_all(in, n_in);
    s_clear_all(exp, n_exp);
    return rc;
}

/* Runs every data set of a test; 0 = pass, else the reason in why. */
static int s_run_test(const char *test_dir, char *why, size_t cap)
{
    char model[4096], *buf = NULL;
    size_t len = 0;
    bs_err_t err = {0};
    s_fmt(model, sizeof model, "%s/model.onnx", test_dir);
    if (bs_read_file(model, S_MODEL_MAX, &buf, &len, &err) != 0) {
        s_fmt(why, cap, "%s", err.msg);
        return 1;
    }
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, len, (const uint8_t *)buf);
    bs_free(buf);
    if (!m || !m->graph) {
        s_fmt(why, cap, "model.onnx does not parse");
        if (m)
            onnx__model_proto__free_unpacked(m, NULL);
        return 1;
    }
    int sets = 0, rc = 0;
    for (int s = 0;; s++) {
        char set_dir[4096];
        s_fmt(set_dir, sizeof set_dir, "%s/test_data_set_%d", test_dir, s);
        if (!s_exists(set_dir))
            break;
        char sub[1024];
        int set_rc = s_run_set(m, test_dir, set_dir, sub, sizeof sub);
        if (set_rc != 0) {
            s_fmt(why, cap, "test_data_set_%d: %s", s, sub);
            rc = set_rc == 2 ? 2 : 1; /* 2: refused at load */
            break;
        }
        sets++;
    }
    onnx__model_proto__free_unpacked(m, NULL);
    if (!rc && !sets) {
        s_fmt(why, cap, "no test_data_set_N directory");
        rc = 1;
    }
    return rc;
}

/* Runs a test in a child process with a time limit; 0 = pass. The child prints the FAIL
 * line itself (its reason stays in its memory). */
static int s_run_forked(const char *name, const char *test_dir)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        printf("FAIL %s: fork: %s\n", name, strerror(errno));
        return 1;
    }
    if (pid == 0) {
        alarm(S_TEST_TIMEOUT_S);
        char why[1200];
        int rc = s_run_test(test_dir, why, sizeof why);
        if (rc == 2)
            printf("REFUSED %s: %s\n", name, why);
        else if (rc)
            printf("FAIL %s: %s\n", name, why);
        fflush(stdout);
        exit(rc == 2 ? S_CHILD_REFUSED : rc ? S_CHILD_FAILED : 0); /* exit: leak check runs */
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (WIFEXITED(status) && WEXITSTATUS(status) == S_CHILD_REFUSED)
        return 2;
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        printf("FAIL %s: %s (signal %d)\n", name, sig == SIGALRM ? "timed out" : "crashed",
               sig);
    } else if (WIFEXITED(status) && WEXITSTATUS(status) != S_CHILD_FAILED &&
               WEXITSTATUS(status) != S_CHILD_REFUSED) {
        printf("FAIL %s: child exited with status %d (sanitizer report above?)\n", name,
               WEXITSTATUS(status));
    }
    return 1;
}

/* ---- main --------------------------------------------------------------------------------- */

static void s_usage(void)
{
    fprintf(stderr, "usage: onnx-conformance DATA_DIR [--filter SUBSTR] [--verbose] "
                    "[--no-fork]\n");
}

int main(int argc, char **argv)
{
    s_opts_t o = {.fork = 1};
    bs_alloc_init();
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--filter") == 0 && i + 1 < argc) {
            o.filter = argv[++i];
        } else if (strcmp(argv[i], "--verbose") == 0) {
            o.verbose = 1;
        } else if (strcmp(argv[i], "--no-fork") == 0) {
            o.fork = 0;
        } else if (argv[i][0] != '-' && !o.data_dir) {
            o.data_dir = argv[i];
        } else {
            s_usage();
            return 2;
        }
    }
    if (!o.data_dir) {
        s_usage();
        return 2;
    }
    int supported = 0, passed = 0, skipped = 0, refused = 0, found = 0;
    double t0 = bs_now_s();
    for (size_t s = 0; s < sizeof s_suites / sizeof s_suites[0]; s++) {
        char suite_dir[4096];
        s_fmt(suite_dir, sizeof suite_dir, "%s/%s", o.data_dir, s_suites[s]);
        char **names;
        int n;
        if (s_list_dirs(suite_dir, &names, &n) != 0) {
            fprintf(stderr, "onnx-conformance: %s: not found (Debian: apt-get install "
                            "libonnx-testdata)\n", suite_dir);
            continue;
        }
        found++;
        for (int i = 0; i < n; i++) {
            char name[1024], test_dir[4096], model[4096], why[1200];
            s_fmt(name, sizeof name, "%s/%s", s_suites[s], names[i]);
            if (o.filter && !strstr(name, o.filter))
                continue;
            s_fmt(test_dir, sizeof test_dir, "%s/%s", suite_dir, names[i]);
            s_fmt(model, sizeof model, "%s/model.onnx", test_dir);
            char *buf = NULL;
            size_t len = 0;
            bs_err_t err = {0};
            if (bs_read_file(model, S_MODEL_MAX, &buf, &len, &err) != 0) {
                skipped++;
                if (o.verbose)
                    printf("SKIP %s: %s\n", name, err.msg);
                continue;
            }
            Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, len, (const uint8_t *)buf);
            bs_free(buf);
            int ok = m && s_supported(m, why, sizeof why);
            if (!m)
                s_fmt(why, sizeof why, "model.onnx does not parse");
            if (m)
                onnx__model_proto__free_unpacked(m, NULL);
            if (!ok) {
                skipped++;
                if (o.verbose)
                    printf("SKIP %s: %s\n", name, why);
                continue;
            }
            supported++;
            double t1 = bs_now_s();
            int rc;
            if (o.fork) {
                rc = s_run_forked(name, test_dir);
            } else {
                rc = s_run_test(test_dir, why, sizeof why);
                if (rc == 2)
                    printf("REFUSED %s: %s\n", name, why);
                else if (rc)
                    printf("FAIL %s: %s\n", name, why);
            }
            if (rc == 2) {
                supported--;
                refused++;
                continue;
            }
            if (rc == 0) {
                passed++;
                if (o.verbose)
                    printf("PASS %s (%.0f ms)\n", name, (bs_now_s() - t1) * 1e3);
            }
        }
        s_free_list(names, n);
    }
    if (!found) {
        fprintf(stderr, "onnx-conformance: no test suite under %s\n", o.data_dir);
        printf("onnx-conformance: 0 supported, 0 passed\n");
        return 2;
    }
    printf("%d skipped as unsupported, %d refused at load (listed above), %d failed, %.1f s\n",
           skipped, refused, supported - passed, bs_now_s() - t0);
    printf("onnx-conformance: %d supported, %d passed\n", supported, passed);
    return passed == supported ? 0 : 1;
}

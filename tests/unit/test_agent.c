/*
 * test_agent.c - unit tests of the device agent: the file cache, latency statistics, the sim
 * backend, the device description, the agent identity, and whole sessions against a searcher
 * played by hand in the test process.
 *
 * The sim backend tests need an ONNX model: s_make_model() builds one in C with the
 * protobuf-c structs generated from onnx.proto (Conv "conv1" with a 4x1x3x3 weight and a bias
 * of 4, Gemm "fc" with a 10x64 weight: 40 + 640 parameters) and packs it into the test's
 * temporary directory.
 *
 * Sensitivity jobs: the sim backend's entry against its own evaluations (the same numbers),
 * the RESULT it makes against the protocol codec, and, with the bundled model and Debian's
 * Fashion-MNIST data when they are there, the engine's entry on a few precisions.
 *
 * The session tests run bs_agent_run() in a thread and bind a ROUTER on tcp://127.0.0.1:*;
 * the test reads what the agent sends (skipping heartbeats where that is not the point) and
 * answers as a searcher would: WELCOME, JOB, CHUNKs for its FETCHes (deliberately smaller than
 * asked, so a file takes several), ERROR, BYE. Timeouts in these helpers only bound a wait
 * for a message; no test asserts how long anything took.
 */
#include "bs_test.h"

#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "bs_agent.h"
#include "bs_alloc.h"
#include "bs_backend.h"
#include "bs_cache.h"
#include "bs_device.h"
#include "bs_log.h"
#include "bs_proto.h"
#include "bs_sensitivity.h"
#include "bs_stats.h"
#include "bs_util.h"
#include "onnx.pb-c.h"

/* ---- helpers --------------------------------------------------------------------------- */

static char *s_path(const char *name)
{
    static char buf[4][512];
    static int i;
    char *p = buf[i++ & 3];
    snprintf(p, 512, "%s/%s", bs_test_tmpdir(), name);
    return p;
}

static void s_write(const char *path, const void *buf, size_t n)
{
    FILE *f = fopen(path, "wb");
    ASSERT(f != NULL);
    ASSERT_EQ(n, fwrite(buf, 1, n, f));
    ASSERT_OK(fclose(f));
}

static void s_write_str(const char *path, const char *text)
{
    s_write(path, text, strlen(text));
}

static int s_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static int s_count_files(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    ASSERT(d != NULL);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name), sl = strlen(suffix);
        if (e->d_name[0] != '.' && len >= sl && strcmp(e->d_name + len - sl, suffix) == 0)
            n++;
    }
    closedir(d);
    return n;
}

/* A small ONNX model: Conv conv1 (W 4x1x3x3, B 4) then Gemm fc (W 10x64). */
/* Points an initializer at a float array (borrowed: static in the caller). */
static void s_float_init(Onnx__TensorProto *t, char *name, size_t n_dims, int64_t *dims,
                         size_t n, float *data)
{
    t->name = name;
    t->n_dims = n_dims;
    t->dims = dims;
    t->has_data_type = 1;
    t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    t->n_float_data = n;
    t->float_data = data;
}

static void s_make_model(const char *path)
{
    static float wconv[36], bconv[4], wfc[640];
    for (int i = 0; i < 36; i++)
        wconv[i] = (float)i * 0.01f;
    for (int i = 0; i < 640; i++)
        wfc[i] = (float)(i % 17) * 0.1f - 0.8f;
    static int64_t dconv[] = {4, 1, 3, 3}, dbias[] = {4}, dfc[] = {10, 64};

    Onnx__TensorProto t_wconv = ONNX__TENSOR_PROTO__INIT, t_bconv = ONNX__TENSOR_PROTO__INIT,
                      t_wfc = ONNX__TENSOR_PROTO__INIT;
    s_float_init(&t_wconv, "conv1.weight", 4, dconv, 36, wconv);
    s_float_init(&t_bconv, "conv1.bias", 1, dbias, 4, bconv);
    s_float_init(&t_wfc, "fc.weight", 2, dfc, 640, wfc);
    Onnx__TensorProto *inits[] = {&t_wconv, &t_bconv, &t_wfc};

    static char *conv_in[] = {"x", "conv1.weight", "conv1.bias"}, *conv_out[] = {"h"};
    static char *fc_in[] = {"h", "fc.weight"}, *fc_out[] = {"y"};
    Onnx__NodeProto conv = ONNX__NODE_PROTO__INIT, fc = ONNX__NODE_PROTO__INIT;
    conv.name = "conv1";
    conv.op_type = "Conv";
    conv.n_input = 3;
    conv.input = conv_in;
    conv.n_output = 1;
    conv.output = conv_out;
    fc.name = "fc";
    fc.op_type = "Gemm";
    fc.n_input = 2;
    fc.input = fc_in;
    fc.n_output = 1;
    fc.output = fc_out;
    Onnx__NodeProto *nodes[] = {&conv, &fc};

    Onnx__GraphProto graph = ONNX__GRAPH_PROTO__INIT;
    graph.name = "tiny";
    graph.n_node = 2;
    graph.node = nodes;
    graph.n_initializer = 3;
    graph.initializer = inits;

    Onnx__OperatorSetIdProto opset = ONNX__OPERATOR_SET_ID_PROTO__INIT;
    opset.domain = "";
    opset.has_version = 1;
    opset.version = 13;
    Onnx__OperatorSetIdProto *opsets[] = {&opset};
    Onnx__ModelProto model = ONNX__MODEL_PROTO__INIT;
    model.has_ir_version = 1;
    model.ir_version = 8;
    model.n_opset_import = 1;
    model.opset_import = opsets;
    model.producer_name = "test_agent";
    model.graph = &graph;

    size_t n = onnx__model_proto__get_packed_size(&model);
    uint8_t *buf = bs_malloc(n);
    ASSERT(buf != NULL);
    ASSERT_EQ(n, onnx__model_proto__pack(&model, buf));
    s_write(path, buf, n);
    bs_free(buf);
}

/* ---- cache ----------------------------------------------------------------------------- */

BS_TEST(cache_download_verifies)
{
    const char *dir = s_path("cache/sub");
    bs_cache_t *c = NULL;
    bs_err_t err = {0};
    ASSERT_OK(bs_cache_open(dir, &c, &err));
    const char data[] = "the quick brown fox jumps over the lazy dog";
    size_t n = sizeof data - 1;
    char sha[65];
    bs_sha256_hex(data, n, sha);
    ASSERT_EQ(0, bs_cache_has_verified(c, sha, (int64_t)n, &err));

    bs_cache_dl_t *d = NULL;
    ASSERT_OK(bs_cache_begin(c, sha, n, &d, &err));
    ASSERT_OK(bs_cache_append(d, 0, data, 10, &err));
    ASSERT_EQ(BS_EPROTO, bs_cache_append(d, 5, data + 5, 5, &err)); /* not where it stands */
    ASSERT_CONTAINS(err.msg, "expected offset 10");
    ASSERT_EQ(BS_EPROTO, bs_cache_append(d, 10, data + 10, n, &err)); /* runs past the size */
    ASSERT_OK(bs_cache_append(d, 10, data + 10, n - 10, &err));
    ASSERT_EQ(n, bs_cache_dl_received(d));
    ASSERT_OK(bs_cache_finish(c, &d, &err));
    ASSERT(d == NULL);

    char *path = NULL;
    ASSERT_OK(bs_cache_path(c, sha, &path, &err));
    ASSERT(s_exists(path));
    char hex[65];
    ASSERT_OK(bs_sha256_file(path, hex, NULL, &err));
    ASSERT_STR_EQ(sha, hex);
    bs_free(path);
    ASSERT_EQ(1, bs_cache_has_verified(c, sha, (int64_t)n, &err));
    ASSERT_EQ(1, bs_cache_has_verified(c, sha, -1, &err));
    ASSERT_EQ(0, s_count_files(dir, ".part"));
    bs_cache_close(&c);
    ASSERT(c == NULL);
}

BS_TEST(cache_wrong_hash_is_refused)
{
    const char *dir = s_path("cache");
    bs_cache_t *c = NULL;
    bs_err_t err = {0};
    ASSERT_OK(bs_cache_open(dir, &c, &err));
    char sha[65];
    bs_sha256_hex("expected", 8, sha);
    bs_cache_dl_t *d = NULL;
    ASSERT_OK(bs_cache_begin(c, sha, 8, &d, &err));
    ASSERT_OK(bs_cache_append(d, 0, "tampered", 8, &err));
    ASSERT_EQ(BS_EHASH, bs_cache_finish(c, &d, &err));
    ASSERT(d == NULL);
    ASSERT_CONTAINS(err.msg, sha);
    ASSERT_EQ(0, bs_cache_has_verified(c, sha, 8, &err));
    ASSERT_EQ(0, s_count_files(dir, ".part"));
    ASSERT_EQ(0, s_count_files(dir, sha));

    /* An incomplete download is a protocol error; discard cleans up. */
    ASSERT_OK(bs_cache_begin(c, sha, 8, &d, &err));
    ASSERT_OK(bs_cache_append(d, 0, "exp", 3, &err));
    ASSERT_EQ(BS_EPROTO, bs_cache_finish(c, &d, &err));
    ASSERT_CONTAINS(err.msg, "3 of 8 bytes");
    ASSERT_OK(bs_cache_begin(c, sha, 8, &d, &err));
    ASSERT_EQ(1, s_count_files(dir, ".part"));
    bs_cache_discard(&d);
    ASSERT(d == NULL);
    ASSERT_EQ(0, s_count_files(dir, ".part"));
    bs_cache_close(&c);
}

BS_TEST(cache_rejects_bad_sha)
{
    bs_cache_t *c = NULL;
    bs_err_t err = {0};
    ASSERT_OK(bs_cache_open(s_path("cache"), &c, &err));
    char *path = NULL;
    ASSERT_EQ(BS_EINVAL, bs_cache_path(c, "../x", &path, &err));
    ASSERT(path == NULL);
    ASSERT_CONTAINS(err.msg, "../x");
    bs_cache_dl_t *d = NULL;
    ASSERT_EQ(BS_EINVAL, bs_cache_begin(c, "../x", 4, &d, &err));
    ASSERT(d == NULL);
    ASSERT_EQ(BS_EINVAL, bs_cache_has_verified(c, "../x", -1, &err));
    char upper[65];
    bs_sha256_hex("x", 1, upper);
    upper[0] = 'A';
    upper[1] = 'B';
    ASSERT_EQ(BS_EINVAL, bs_cache_path(c, upper, &path, &err));
    ASSERT_EQ(BS_EINVAL, bs_cache_path(c, "abc", &path, &err));
    ASSERT_EQ(BS_EINVAL, bs_cache_path(c, NULL, &path, &err));
    bs_cache_t *none = NULL;
    ASSERT_EQ(BS_EINVAL, bs_cache_open("", &none, &err));
    bs_cache_close(&c);
}

BS_TEST(cache_deletes_a_corrupt_file)
{
    const char *dir = s_path("cache");
    bs_cache_t *c = NULL;
    bs_err_t err = {0};
    ASSERT_OK(bs_cache_open(dir, &c, &err));
    char sha[65];
    bs_sha256_hex("good", 4, sha);
    char *path = NULL;
    ASSERT_OK(bs_cache_path(c, sha, &path, &err));
    s_write_str(path, "evil"); /* right size, wrong bytes */
    ASSERT_EQ(0, bs_cache_has_verified(c, sha, 4, &err));
    ASSERT(!s_exists(path));
    s_write_str(path, "good!"); /* wrong size */
    ASSERT_EQ(0, bs_cache_has_verified(c, sha, 4, &err));
    ASSERT(!s_exists(path));
    s_write_str(path, "good"); /* placed by another agent: accepted once hashed */
    ASSERT_EQ(1, bs_cache_has_verified(c, sha, 4, &err));
    bs_free(path);
    bs_cache_close(&c);
}

/* ---- stats ----------------------------------------------------------------------------- */

BS_TEST(stats_known_samples)
{
    double s[10] = {7, 3, 10, 1, 9, 2, 8, 4, 6, 5};
    bs_latency_stats_t st;
    ASSERT_OK(bs_stats_compute(s, 10, &st));
    ASSERT_EQ(10, st.n);
    ASSERT_DBL_NEAR(1.0, st.min, 1e-12);
    ASSERT_DBL_NEAR(5.5, st.median, 1e-12);
    ASSERT_DBL_NEAR(5.5, st.mean, 1e-12);
    ASSERT_DBL_NEAR(9.0, st.p90, 1e-12);  /* rank ceil(0.9 * 10) = 9 */
    ASSERT_DBL_NEAR(10.0, st.p99, 1e-12); /* rank ceil(0.99 * 10) = 10 */
    ASSERT_DBL_NEAR(sqrt(82.5 / 9.0), st.std, 1e-12);
    ASSERT_DBL_NEAR(sqrt(82.5 / 9.0) / 5.5, st.cv, 1e-12);

    double big[100];
    for (int i = 0; i < 100; i++)
        big[i] = (double)(100 - i);
    ASSERT_OK(bs_stats_compute(big, 100, &st));
    ASSERT_DBL_NEAR(90.0, st.p90, 1e-12);
    ASSERT_DBL_NEAR(99.0, st.p99, 1e-12);
    ASSERT_DBL_NEAR(50.5, st.median, 1e-12);

    double three[3] = {2, 4, 3};
    ASSERT_OK(bs_stats_compute(three, 3, &st));
    ASSERT_DBL_NEAR(3.0, st.median, 1e-12);
    ASSERT_DBL_NEAR(4.0, st.p90, 1e-12);
    ASSERT_DBL_NEAR(1.0, st.std, 1e-12);

    double one[1] = {0.25};
    ASSERT_OK(bs_stats_compute(one, 1, &st));
    ASSERT_DBL_NEAR(0.25, st.p99, 1e-12);
    ASSERT_DBL_NEAR(0.0, st.std, 1e-12);

    ASSERT_EQ(BS_EINVAL, bs_stats_compute(one, 0, &st));
    ASSERT(isnan(st.median));
    double bad[2] = {1.0, NAN};
    ASSERT_EQ(BS_EINVAL, bs_stats_compute(bad, 2, &st));

    bs_metrics_t m;
    bs_metrics_init(&m);
    ASSERT_OK(bs_stats_compute(s, 10, &st));
    bs_stats_to_metrics(&st, &m);
    ASSERT_DBL_NEAR(9.0, m.lat_p90_ms, 1e-12);
    ASSERT_EQ(10, m.lat_runs);
}

/* ---- sim backend ----------------------------------------------------------------------- */

static int s_sim(const char *model, const char *assignment, const char *measure_json,
                 bs_metrics_t *m, bs_err_t *err)
{
    cJSON *measure = measure_json ? cJSON_Parse(measure_json) : NULL;
    int64_t load_ms = -1;
    bs_job_spec_t job = {0};
    job.model_path = model;
    job.assignment = assignment;
    job.measure = measure;
    job.threads = 1;
    job.load_ms = &load_ms;
    const bs_backend_ops_t *ops = bs_backend_find("sim");
    ASSERT(ops != NULL);
    bs_metrics_init(m);
    bs_err_clear(err);
    int rc = ops->run(&job, m, err);
    cJSON_Delete(measure);
    if (rc == 0)
        ASSERT(load_ms >= 0);
    return rc;
}

BS_TEST(sim_is_deterministic)
{
    const char *model = s_path("tiny.onnx");
    s_make_model(model);
    bs_metrics_t a, b;
    bs_err_t err;
    ASSERT_OK(s_sim(model, "conv1=w8a8,fc=w4a32", NULL, &a, &err));
    ASSERT_OK(s_sim(model, "conv1=w8a8,fc=w4a32", NULL, &b, &err));
    ASSERT(a.accuracy == b.accuracy);
    ASSERT(a.lat_min_ms == b.lat_min_ms);
    ASSERT(a.lat_median_ms == b.lat_median_ms);
    ASSERT(a.lat_mean_ms == b.lat_mean_ms);
    ASSERT(a.lat_p90_ms == b.lat_p90_ms);
    ASSERT(a.lat_p99_ms == b.lat_p99_ms);
    ASSERT(a.lat_std_ms == b.lat_std_ms);
    ASSERT_EQ(a.weight_bytes, b.weight_bytes);
    ASSERT_EQ(20, a.lat_runs);
    ASSERT_EQ(1, a.simulated);
    ASSERT_STR_EQ("sim", a.backend);
    ASSERT_STR_EQ("top1", a.metric);
    ASSERT_STR_EQ("none", a.energy_source);
    ASSERT_STR_EQ("sim backend: no sensor", a.energy_reason);
    ASSERT(isnan(a.energy_j));
    ASSERT_EQ(-1, a.arena_bytes);
    ASSERT_EQ(-1, a.peak_rss_bytes);
    ASSERT(a.accuracy > 0.8 && a.accuracy < 0.95);
    ASSERT(a.lat_min_ms <= a.lat_median_ms && a.lat_median_ms <= a.lat_p90_ms);
    ASSERT(a.lat_p90_ms <= a.lat_p99_ms);
    /* conv1: 40 params at 8 bits = 40 bytes; fc: 640 params at 4 bits = 320 bytes. */
    ASSERT_EQ(360, a.weight_bytes);

    /* A different assignment gives other numbers; min_runs is honoured. */
    ASSERT_OK(s_sim(model, "conv1=w8a8,fc=w5a32", "{\"min_runs\": 7}", &b, &err));
    ASSERT_EQ(7, b.lat_runs);
    ASSERT(a.accuracy != b.accuracy);

    /* The metrics encode to JSON that decodes back (what RESULT carries). */
    cJSON *j = bs_metrics_to_json(&a);
    ASSERT(j != NULL);
    bs_metrics_t back;
    ASSERT_OK(bs_metrics_from_json(j, &back, &err));
    ASSERT_EQ(1, back.simulated);
    ASSERT_EQ(360, back.weight_bytes);
    cJSON_Delete(j);
}

BS_TEST(sim_precision_orders_metrics)
{
    const char *model = s_path("tiny.onnx");
    s_make_model(model);
    bs_metrics_t fp32, w8, w4, w2;
    bs_err_t err;
    ASSERT_OK(s_sim(model, "conv1=w32a32,fc=w32a32", NULL, &fp32, &err));
    ASSERT_OK(s_sim(model, "*=w8a8", NULL, &w8, &err));
    ASSERT_OK(s_sim(model, "conv1=w4a8,fc=w4a8", NULL, &w4, &err));
    ASSERT_OK(s_sim(model, "*=w2a32", NULL, &w2, &err));
    ASSERT_EQ(680 * 4, fp32.weight_bytes);
    ASSERT_EQ(680, w8.weight_bytes);
    ASSERT_EQ(20 + 320, w4.weight_bytes);
    ASSERT_EQ(10 + 160, w2.weight_bytes);
    ASSERT(w2.accuracy < fp32.accuracy);
    ASSERT(w2.accuracy < w8.accuracy);
    ASSERT(w8.lat_min_ms < fp32.lat_min_ms);
    /* Empty spec entries leave fp32: a partial spec is applied over fp32 defaults. */
    ASSERT_OK(s_sim(model, "fc=w16a32", NULL, &w8, &err));
    ASSERT_EQ(40 * 4 + 640 * 2, w8.weight_bytes);
}

BS_TEST(sim_rejects_bad_assignments)
{
    const char *model = s_path("tiny.onnx");
    s_make_model(model);
    bs_metrics_t m;
    bs_err_t err;
    ASSERT_EQ(BS_EINVAL, s_sim(model, "conv1=w8a8,conv9=w4a8", NULL, &m, &err));
    ASSERT_EQ(BS_EINVAL, err.code);
    ASSERT_CONTAINS(err.msg, "conv9");
    ASSERT_CONTAINS(err.msg, "valid layer names: conv1 fc");
    ASSERT_EQ(BS_EINVAL, s_sim(model, "conv1=w9a8", NULL, &m, &err));
    ASSERT_CONTAINS(err.msg, "w9a8");
    ASSERT_EQ(BS_EINVAL, s_sim(model, "*=w8a8", "{\"min_runs\": 0}", &m, &err));
    ASSERT_CONTAINS(err.msg, "min_runs");
    ASSERT_EQ(BS_EINVAL, s_sim(model, "*=w8a8", "{\"sim_fail_rate\": \"x\"}", &m, &err));
    ASSERT_CONTAINS(err.msg, "sim_fail_rate");
    ASSERT_EQ(BS_EINVAL, s_sim(NULL, "*=w8a8", NULL, &m, &err));
    ASSERT_CONTAINS(err.msg, "model");
    /* A file that is not ONNX. */
    const char *junk = s_path("junk.onnx");
    s_write_str(junk, "\xff\xff\xff\xff not a model");
    ASSERT_EQ(BS_EMODEL, s_sim(junk, "*=w8a8", NULL, &m, &err));
    ASSERT_CONTAINS(err.msg, "junk.onnx");
}

BS_TEST(sim_injected_failures_are_deterministic)
{
    const char *model = s_path("tiny.onnx");
    s_make_model(model);
    bs_metrics_t m;
    bs_err_t err;
    ASSERT_EQ(BS_EBACKEND, s_sim(model, "*=w8a8", "{\"sim_fail_rate\": 1.0}", &m, &err));
    ASSERT_CONTAINS(err.msg, "sim_fail_rate");
    ASSERT_OK(s_sim(model, "*=w8a8", "{\"sim_fail_rate\": 0}", &m, &err));
    /* At a rate of one half, each config either always fails or never does. */
    int fails = 0;
    const char *cfgs[] = {"*=w8a8", "*=w4a8",  "*=w2a8",  "*=w16a32", "*=w6a32", "*=w3a8",
                          "*=w5a8", "*=w7a32", "*=w2a32", "*=w4a32",  "*=w5a32", "*=w6a8"};
    for (int i = 0; i < 12; i++) {
        int r1 = s_sim(model, cfgs[i], "{\"sim_fail_rate\": 0.5}", &m, &err);
        int r2 = s_sim(model, cfgs[i], "{\"sim_fail_rate\": 0.5}", &m, &err);
        ASSERT_EQ(r1, r2);
        fails += r1 != 0;
    }
    ASSERT(fails > 0 && fails < 12);
}

BS_TEST(sim_delay_honours_cancel)
{
    const char *model = s_path("tiny.onnx");
    s_make_model(model);
    cJSON *measure = cJSON_Parse("{\"sim_delay_ms\": 60000}");
    atomic_int cancel;
    atomic_init(&cancel, 1);
    bs_job_spec_t job = {0};
    job.model_path = model;
    job.assignment = "*=w8a8";
    job.measure = measure;
    job.threads = 1;
    job.cancel = &cancel;
    bs_metrics_t m;
    bs_metrics_init(&m);
    bs_err_t err = {0};
    ASSERT_EQ(BS_ECANCELED, bs_backend_sim.run(&job, &m, &err));
    cJSON_Delete(measure);
}

/* ---- sensitivity ----------------------------------------------------------------------- */

static int s_sim_sens(const char *model, const char *base, const char *measure_json,
                      const bs_prec_t *precs, int n, bs_sens_result_t *out, bs_err_t *err,
                      const atomic_int *cancel)
{
    cJSON *measure = measure_json ? cJSON_Parse(measure_json) : NULL;
    bs_job_spec_t job = {0};
    job.model_path = model;
    job.assignment = base;
    job.measure = measure;
    job.threads = 1;
    job.cancel = cancel;
    job.precisions = precs;
    job.n_precisions = n;
    bs_sens_fn fn = bs_backend_sensitivity(&bs_backend_sim);
    ASSERT(fn != NULL);
    bs_sens_result_init(out);
    bs_err_clear(err);
    int rc = fn(&job, out, err);
    cJSON_Delete(measure);
    return rc;
}

/* Every row is the accuracy an evaluation of that assignment reports; the baseline is the
 * base assignment's. The RESULT built from it passes the codec. */
BS_TEST(sim_sensitivity_matches_evaluations)
{
    const char *model = s_path("tiny.onnx");
    s_make_model(model);
    bs_prec_t precs[] = {{8, 8}, {4, 32}, {2, 32}};
    bs_sens_result_t r;
    bs_err_t err;
    ASSERT_OK(s_sim_sens(model, "conv1=w32a32,fc=w32a32", NULL, precs, 3, &r, &err, NULL));
    ASSERT_EQ(6, r.n);
    ASSERT_STR_EQ("top1", r.metric);
    ASSERT_STR_EQ("sim", r.backend);
    ASSERT_EQ(1, r.simulated);
    bs_metrics_t m;
    ASSERT_OK(s_sim(model, "conv1=w32a32,fc=w32a32", NULL, &m, &err));
    ASSERT(m.accuracy == r.baseline);
    static const char *const want[] = {
        "conv1=w8a8,fc=w32a32", "conv1=w4a32,fc=w32a32", "conv1=w2a32,fc=w32a32",
        "conv1=w32a32,fc=w8a8", "conv1=w32a32,fc=w4a32", "conv1=w32a32,fc=w2a32",
    };
    for (int i = 0; i < 6; i++) {
        ASSERT_STR_EQ(i < 3 ? "conv1" : "fc", r.items[i].layer);
        ASSERT(bs_prec_eq(precs[i % 3], r.items[i].prec));
        ASSERT(r.items[i].error == NULL);
        ASSERT_OK(s_sim(model, want[i], NULL, &m, &err));
        ASSERT(m.accuracy == r.items[i].value);
    }
    /* fc holds most parameters: int2 there costs more than on conv1. */
    ASSERT(r.items[5].value < r.items[2].value);

    /* The RESULT: value and delta per row, and the message validates. */
    cJSON *res = bs_msg_new(BS_MSG_RESULT);
    cJSON_AddNumberToObject(res, "job_id", 7);
    cJSON_AddBoolToObject(res, "ok", 1);
    cJSON *sj = bs_sens_result_to_json(&r);
    ASSERT(sj != NULL);
    cJSON_AddItemToObject(res, "sensitivity", sj);
    int type = -1;
    ASSERT_OK(bs_msg_validate(res, &type, &err));
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive(sj, "rows");
    ASSERT_EQ(6, cJSON_GetArraySize(rows));
    const cJSON *row4 = cJSON_GetArrayItem(rows, 4);
    ASSERT_STR_EQ("fc", cJSON_GetObjectItemCaseSensitive(row4, "layer")->valuestring);
    ASSERT_STR_EQ("w4a32", cJSON_GetObjectItemCaseSensitive(row4, "precision")->valuestring);
    ASSERT_DBL_NEAR(r.items[4].value - r.baseline,
                    cJSON_GetObjectItemCaseSensitive(row4, "delta")->valuedouble, 1e-12);
    ASSERT(cJSON_GetObjectItemCaseSensitive(row4, "error") == NULL);
    cJSON_Delete(res);
    bs_sens_result_free(&r);
    ASSERT_EQ(0, r.n);
    bs_sens_result_free(&r);
    bs_sens_result_free(NULL);

    /* Another base: the rows change the one layer over it. */
    ASSERT_OK(s_sim_sens(model, "*=w8a32", NULL, precs, 1, &r, &err, NULL));
    ASSERT_EQ(2, r.n);
    ASSERT_OK(s_sim(model, "conv1=w8a32,fc=w8a8", NULL, &m, &err));
    ASSERT(m.accuracy == r.items[1].value);
    bs_sens_result_free(&r);
}

BS_TEST(sim_sensitivity_failures)
{
    const char *model = s_path("tiny.onnx");
    s_make_model(model);
    bs_prec_t precs[] = {{8, 8}, {4, 32}};
    bs_sens_result_t r;
    bs_err_t err;
    /* sim_fail_rate 1: every row unmeasured, with its error; the baseline is still there. */
    ASSERT_OK(s_sim_sens(model, NULL, "{\"sim_fail_rate\": 1}", precs, 2, &r, &err, NULL));
    ASSERT_EQ(4, r.n);
    ASSERT(r.baseline > 0.8);
    for (int i = 0; i < 4; i++) {
        ASSERT(isnan(r.items[i].value));
        ASSERT_CONTAINS(r.items[i].error, "injected failure");
    }
    cJSON *sj = bs_sens_result_to_json(&r);
    const cJSON *row = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(sj, "rows"), 0);
    ASSERT(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(row, "value")));
    ASSERT(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(row, "delta")));
    ASSERT_CONTAINS(cJSON_GetObjectItemCaseSensitive(row, "error")->valuestring,
                    "EBACKEND: sim: injected failure");
    cJSON_Delete(sj);
    bs_sens_result_free(&r);

    /* Bad jobs fail as a whole. */
    ASSERT_EQ(BS_EINVAL, s_sim_sens(model, "conv9=w8a8", NULL, precs, 2, &r, &err, NULL));
    ASSERT_CONTAINS(err.msg, "conv9");
    ASSERT_EQ(0, r.n);
    ASSERT_EQ(BS_EINVAL, s_sim_sens(model, NULL, NULL, precs, 0, &r, &err, NULL));
    ASSERT_CONTAINS(err.msg, "precisions");
    ASSERT_EQ(BS_EINVAL, s_sim_sens(NULL, NULL, NULL, precs, 2, &r, &err, NULL));
    ASSERT_EQ(BS_EINVAL, s_sim_sens(model, NULL, "{\"sim_delay_ms\": -1}", precs, 2, &r, &err,
                                    NULL));
    ASSERT_CONTAINS(err.msg, "sim_delay_ms");
    atomic_int cancel;
    atomic_init(&cancel, 1);
    ASSERT_EQ(BS_ECANCELED, s_sim_sens(model, NULL, NULL, precs, 2, &r, &err, &cancel));
    bs_sens_result_free(&r);
    ASSERT_EQ(BS_ECANCELED, s_sim_sens(model, NULL, "{\"sim_delay_ms\": 60000}", precs, 2, &r,
                                       &err, &cancel));
    bs_sens_result_free(&r);
}

/* The engine's entry on the bundled model: each row a real load and evaluation. */
BS_TEST(engine_sensitivity)
{
#ifdef BS_SRC_DIR
    const char *images = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
    const char *labels = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz";
    const char *calib = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz";
    if (access(images, R_OK) != 0 || access(calib, R_OK) != 0) {
        fprintf(stderr, "engine_sensitivity: skipped, dataset-fashion-mnist is not installed\n");
        return;
    }
    bs_log_level = BS_LOG_WARN;
    cJSON *data = cJSON_Parse("{\"preprocess\": {\"scale\": 0.00392156862745098, \"mean\": "
                              "[0.286], \"std\": [0.353]}, \"eval_count\": 100, \"calib_count\": "
                              "64, \"quantization\": {\"weights\": \"mse\", \"activations\": "
                              "\"minmax\"}}");
    bs_prec_t precs[] = {{8, 8}, {2, 32}};
    int64_t load_ms = -1;
    bs_job_spec_t job = {0};
    job.model_path = BS_SRC_DIR "/models/fmnist-cnn.onnx";
    job.assignment = "conv1=w32a32,conv2=w32a32,fc1=w32a32,fc2=w32a32";
    job.eval_images = images;
    job.eval_labels = labels;
    job.calib_images = calib;
    job.data = data;
    job.threads = 1;
    job.load_ms = &load_ms;
    job.precisions = precs;
    job.n_precisions = 2;
    bs_sens_fn fn = bs_backend_sensitivity(bs_backend_find("engine"));
    ASSERT(fn == bs_sensitivity_engine);
    bs_sens_result_t r;
    bs_sens_result_init(&r);
    bs_err_t err = {0};
    int rc = fn(&job, &r, &err);
    if (rc)
        fprintf(stderr, "%s\n", err.msg);
    ASSERT_OK(rc);
    ASSERT(load_ms >= 0);
    ASSERT_STR_EQ("top1", r.metric);
    ASSERT_STR_EQ("engine", r.backend);
    ASSERT_EQ(0, r.simulated);
    ASSERT(r.baseline > 0.7 && r.baseline <= 1.0);
    ASSERT_EQ(8, r.n);
    static const char *const layers[] = {"conv1", "conv2", "fc1", "fc2"};
    for (int i = 0; i < 8; i++) {
        ASSERT_STR_EQ(layers[i / 2], r.items[i].layer);
        ASSERT(bs_prec_eq(precs[i % 2], r.items[i].prec));
        if (r.items[i].error)
            fprintf(stderr, "%s %d: %s\n", r.items[i].layer, i % 2, r.items[i].error);
        ASSERT(r.items[i].value >= 0.0 && r.items[i].value <= 1.0);
        /* int8 alone costs little on 100 samples */
        if (i % 2 == 0)
            ASSERT(fabs(r.items[i].value - r.baseline) <= 0.05);
    }
    bs_sens_result_free(&r);

    /* Without calibration images, a8 rows are unmeasured and say why; the rest are measured. */
    job.calib_images = NULL;
    bs_sens_result_init(&r);
    ASSERT_OK(fn(&job, &r, &err));
    ASSERT_EQ(8, r.n);
    for (int i = 0; i < 8; i++) {
        if (i % 2 == 0) {
            ASSERT(isnan(r.items[i].value));
            ASSERT_CONTAINS(r.items[i].error, "calibration");
        } else {
            ASSERT(!isnan(r.items[i].value));
        }
    }
    bs_sens_result_free(&r);

    /* Without evaluation data, or with a bad base, the job fails. */
    job.eval_images = NULL;
    bs_sens_result_init(&r);
    ASSERT_EQ(BS_EINVAL, fn(&job, &r, &err));
    ASSERT_CONTAINS(err.msg, "engine: sensitivity needs evaluation data");
    job.eval_images = images;
    job.assignment = "conv7=w8a8";
    ASSERT_EQ(BS_EINVAL, fn(&job, &r, &err));
    ASSERT_CONTAINS(err.msg, "conv7");
    bs_sens_result_free(&r);
    cJSON_Delete(data);
#endif
}

BS_TEST(backend_registry)
{
    ASSERT(bs_backend_find("sim") == &bs_backend_sim);
    ASSERT(bs_backend_find("nope") == NULL);
    ASSERT(bs_backend_find(NULL) == NULL);
    ASSERT(bs_backend_count() >= 1);
    ASSERT(bs_backend_at(-1) == NULL);
    ASSERT(bs_backend_at(bs_backend_count()) == NULL);
    ASSERT_EQ(1, bs_backend_sim.simulated);
    cJSON *names = bs_backend_names();
    ASSERT(names != NULL);
    ASSERT_EQ(bs_backend_count(), cJSON_GetArraySize(names));
    ASSERT_STR_EQ("sim", cJSON_GetArrayItem(names, 0)->valuestring);
    cJSON_Delete(names);
    ASSERT(bs_backend_sensitivity(&bs_backend_sim) != NULL);
    ASSERT(bs_backend_sensitivity(&bs_backend_engine) == bs_sensitivity_engine);
    ASSERT(bs_backend_sensitivity(NULL) == NULL);
}

/* ---- device and identity --------------------------------------------------------------- */

BS_TEST(device_description)
{
    cJSON *d = bs_device_describe();
    ASSERT(d != NULL);
    const char *keys[] = {"arch", "cpu", "os", "kernel", "hostname"};
    for (int i = 0; i < 5; i++)
        ASSERT(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(d, keys[i])));
    ASSERT(cJSON_GetObjectItemCaseSensitive(d, "cores")->valuedouble >= 1);
    ASSERT(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(d, "mem_bytes")));
    const cJSON *eng = cJSON_GetObjectItemCaseSensitive(d, "engine");
    ASSERT(cJSON_IsObject(eng));
    ASSERT_STR_EQ(BS_VERSION, cJSON_GetObjectItemCaseSensitive(eng, "version")->valuestring);
    ASSERT(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(eng, "float_kernels")));
    ASSERT(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(eng, "int8_kernels")));
    cJSON_Delete(d);

    char os[128];
    const char *osr = s_path("os-release");
    s_write_str(osr, "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n");
    bs_device_os_release(osr, os, sizeof os);
    ASSERT_STR_EQ("Debian GNU/Linux 12 (bookworm)", os);
    s_write_str(osr, "PRETTY_NAME=Android\n");
    bs_device_os_release(osr, os, sizeof os);
    ASSERT_STR_EQ("Android", os);
    bs_device_os_release(s_path("missing"), os, sizeof os);
    ASSERT_STR_EQ("", os);

    char cpu[64];
    const char *f = s_path("cpuinfo");
    s_write_str(f, "processor\t: 0\nHardware\t: Qualcomm SM8550\n"
                   "model name\t: Cortex-X3\n");
    bs_device_cpu_model(f, cpu, sizeof cpu);
    ASSERT_STR_EQ("Cortex-X3", cpu);
    s_write_str(f, "processor\t: 0\nBogoMIPS\t: 38.40\nHardware\t: Qualcomm SM8550\n");
    bs_device_cpu_model(f, cpu, sizeof cpu);
    ASSERT_STR_EQ("Qualcomm SM8550", cpu);
    s_write_str(f, "processor\t: 0\nmodel name\t:\n");
    bs_device_cpu_model(f, cpu, sizeof cpu);
    ASSERT_STR_EQ("unknown", cpu);
    bs_device_cpu_model(s_path("missing"), cpu, sizeof cpu);
    ASSERT_STR_EQ("unknown", cpu);

    const char *mi = s_path("meminfo");
    s_write_str(mi, "MemFree: 10 kB\nMemTotal:       16384 kB\n");
    ASSERT_EQ(16384LL * 1024, bs_device_mem_total(mi));
    ASSERT_EQ(-1, bs_device_mem_total(s_path("missing")));
}

BS_TEST(agent_id_is_persistent)
{
    const char *dir = s_path("c");
    ASSERT_OK(bs_mkdir_p(dir, NULL));
    char a[33], b[33], c[33];
    bs_err_t err;
    ASSERT_OK(bs_agent_load_id(dir, "phone-1", a, &err));
    ASSERT_EQ(32, strlen(a));
    ASSERT_OK(bs_agent_load_id(dir, "phone-1", b, &err));
    ASSERT_STR_EQ(a, b);
    ASSERT_OK(bs_agent_load_id(dir, "phone-2", c, &err));
    ASSERT(strcmp(a, c) != 0);
    ASSERT(s_exists(s_path("c/agent-id-phone-1")));
    /* A name is made safe for a file name. */
    ASSERT_OK(bs_agent_load_id(dir, "../evil/x", c, &err));
    ASSERT(s_exists(s_path("c/agent-id-.._evil_x")));
    /* A damaged id file is replaced. */
    s_write_str(s_path("c/agent-id-phone-1"), "garbage\n");
    ASSERT_OK(bs_agent_load_id(dir, "phone-1", b, &err));
    ASSERT(strcmp(a, b) != 0);
    ASSERT_EQ(32, strlen(b));
}

BS_TEST(default_cache_dir)
{
    setenv("BITSCOUT_CACHE_DIR", "/x/bs", 1);
    setenv("XDG_CACHE_HOME", "/x/xdg", 1);
    setenv("HOME", "/x/home", 1);
    char *d = bs_agent_default_cache_dir();
    ASSERT_STR_EQ("/x/bs", d);
    bs_free(d);
    unsetenv("BITSCOUT_CACHE_DIR");
    d = bs_agent_default_cache_dir();
    ASSERT_STR_EQ("/x/xdg/bitscout", d);
    bs_free(d);
    unsetenv("XDG_CACHE_HOME");
    d = bs_agent_default_cache_dir();
    ASSERT_STR_EQ("/x/home/.cache/bitscout", d);
    bs_free(d);
    unsetenv("HOME");
    ASSERT(bs_agent_default_cache_dir() == NULL);
}

/* ---- sessions: the test plays the searcher --------------------------------------------- */

typedef struct s_fx {
    void *ctx, *router;
    char endpoint[128];
    char cache[512];
    bs_agent_opts_t opts;
    volatile sig_atomic_t stop;
    pthread_t thread;
    int rc;
    unsigned char id[BS_PROTO_MAX_ID + 1]; /* the agent's current routing id */
    size_t id_len;
    char *file; /* the model served to FETCHes (bs_malloc) */
    size_t file_len;
    char sha[65];
} s_fx_t;

static void *s_agent_thread(void *arg)
{
    s_fx_t *fx = arg;
    fx->rc = bs_agent_run(&fx->opts, &fx->stop);
    return NULL;
}

static void s_fx_start(s_fx_t *fx)
{
    memset(fx, 0, sizeof *fx);
    bs_log_level = getenv("BS_TEST_DEBUG") ? BS_LOG_DEBUG : BS_LOG_WARN;
    fx->ctx = zmq_ctx_new();
    fx->router = zmq_socket(fx->ctx, ZMQ_ROUTER);
    int linger = 0;
    zmq_setsockopt(fx->router, ZMQ_LINGER, &linger, sizeof linger);
    ASSERT_OK(zmq_bind(fx->router, "tcp://127.0.0.1:*"));
    size_t len = sizeof fx->endpoint;
    ASSERT_OK(zmq_getsockopt(fx->router, ZMQ_LAST_ENDPOINT, fx->endpoint, &len));
    snprintf(fx->cache, sizeof fx->cache, "%s/cache", bs_test_tmpdir());
    const char *model = s_path("tiny.onnx");
    s_make_model(model);
    bs_err_t err;
    ASSERT_OK(bs_read_file(model, 1 << 20, &fx->file, &fx->file_len, &err));
    bs_sha256_hex(fx->file, fx->file_len, fx->sha);
    fx->opts.endpoint = fx->endpoint;
    fx->opts.name = "test-agent";
    fx->opts.tags = "unit,,loopback";
    fx->opts.cache_dir = fx->cache;
    fx->opts.threads = 1;
    fx->opts.fetch_timeout_ms = 300;
    fx->opts.hello_initial_ms = 100;
    ASSERT_OK(pthread_create(&fx->thread, NULL, s_agent_thread, fx));
}

static int s_recv(s_fx_t *fx, bs_wire_msg_t *m, int timeout_ms);

/* Stops the agent; with expect_bye, checks that it said BYE on its way out. */
static void s_fx_stop(s_fx_t *fx, int expect_bye)
{
    fx->stop = 1;
    ASSERT_OK(pthread_join(fx->thread, NULL));
    ASSERT_OK(fx->rc);
    if (expect_bye) {
        bs_wire_msg_t m;
        int t;
        while ((t = s_recv(fx, &m, 5000)) == BS_MSG_HEARTBEAT || t == BS_MSG_HELLO)
            bs_wire_msg_free(&m);
        ASSERT_EQ(BS_MSG_BYE, t);
        bs_wire_msg_free(&m);
    }
    zmq_close(fx->router);
    zmq_ctx_term(fx->ctx);
    bs_free(fx->file);
}

/* Receives the next message within timeout_ms; returns its type, or -1 on timeout. */
static int s_recv(s_fx_t *fx, bs_wire_msg_t *m, int timeout_ms)
{
    zmq_pollitem_t it = {fx->router, 0, ZMQ_POLLIN, 0};
    uint64_t end = bs_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        bs_err_t err;
        int rc = bs_wire_recv(fx->router, 1, m, &err);
        if (rc == 0) {
            memcpy(fx->id, m->id, m->id_len);
            fx->id_len = m->id_len;
            return m->type;
        }
        if (rc != BS_EAGAIN)
            bs_test_fail(__FILE__, __LINE__, "agent sent an undecodable message: %s", err.msg);
        uint64_t now = bs_now_ms();
        if (now >= end)
            return -1;
        zmq_poll(&it, 1, (long)(end - now));
    }
}

/* Receives until a message of type want (skipping heartbeats); fails after timeout_ms. */
static void s_expect(s_fx_t *fx, int want, bs_wire_msg_t *m, int timeout_ms, int line)
{
    uint64_t end = bs_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        uint64_t now = bs_now_ms();
        int t = now < end ? s_recv(fx, m, (int)(end - now)) : -1;
        if (t == want)
            return;
        if (t < 0)
            bs_test_fail(__FILE__, line, "no %s from the agent",
                         bs_msg_type_name((bs_msg_type_t)want));
        if (t != BS_MSG_HEARTBEAT && t != BS_MSG_HELLO)
            bs_test_fail(__FILE__, line, "expected %s, got %s",
                         bs_msg_type_name((bs_msg_type_t)want), bs_msg_type_name(t));
        bs_wire_msg_free(m);
    }
}
#define EXPECT(fx, type, m) s_expect((fx), BS_MSG_##type, (m), 10000, __LINE__)

/* Receives until a HELLO from a routing id other than old (a new socket). */
static void s_expect_new_hello(s_fx_t *fx, const unsigned char *old, size_t old_len)
{
    bs_wire_msg_t m;
    for (;;) {
        int t = s_recv(fx, &m, 10000);
        ASSERT(t >= 0);
        bs_wire_msg_free(&m);
        if (t == BS_MSG_HELLO && (fx->id_len != old_len || memcmp(fx->id, old, old_len) != 0))
            return;
        ASSERT(t == BS_MSG_HEARTBEAT || t == BS_MSG_HELLO);
    }
}

static void s_send(s_fx_t *fx, cJSON *msg, const void *payload, size_t len)
{
    ASSERT(msg != NULL);
    ASSERT_OK(bs_wire_send(fx->router, fx->id, fx->id_len, msg, payload, len));
    cJSON_Delete(msg);
}

static void s_welcome(s_fx_t *fx, int heartbeat_ms, int liveness)
{
    cJSON *w = bs_msg_new(BS_MSG_WELCOME);
    cJSON_AddNumberToObject(w, "heartbeat_ms", heartbeat_ms);
    cJSON_AddNumberToObject(w, "liveness", liveness);
    cJSON_AddStringToObject(w, "searcher", "test");
    s_send(fx, w, NULL, 0);
}

/* HELLO then WELCOME; checks what HELLO says. */
static void s_handshake(s_fx_t *fx, int heartbeat_ms, int liveness)
{
    bs_wire_msg_t m;
    EXPECT(fx, HELLO, &m);
    const cJSON *h = m.msg;
    ASSERT_STR_EQ("test-agent", cJSON_GetObjectItemCaseSensitive(h, "name")->valuestring);
    ASSERT_STR_EQ(BS_VERSION, cJSON_GetObjectItemCaseSensitive(h, "version")->valuestring);
    ASSERT_EQ(32, strlen(cJSON_GetObjectItemCaseSensitive(h, "agent_id")->valuestring));
    const cJSON *tags = cJSON_GetObjectItemCaseSensitive(h, "tags");
    ASSERT_EQ(2, cJSON_GetArraySize(tags));
    ASSERT_STR_EQ("loopback", cJSON_GetArrayItem(tags, 1)->valuestring);
    const cJSON *be = cJSON_GetObjectItemCaseSensitive(h, "backends");
    ASSERT_STR_EQ("sim", cJSON_GetArrayItem(be, 0)->valuestring);
    const cJSON *pw = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(h, "precisions"), "weights");
    ASSERT_EQ(9, cJSON_GetArraySize(pw));
    ASSERT(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(h, "device")));
    bs_wire_msg_free(&m);
    s_welcome(fx, heartbeat_ms, liveness);
}

static void s_send_job(s_fx_t *fx, int64_t id, const char *backend, const char *assignment,
                       const char *measure)
{
    cJSON *j = bs_msg_new(BS_MSG_JOB);
    cJSON_AddNumberToObject(j, "job_id", (double)id);
    cJSON_AddStringToObject(j, "campaign", "unit");
    cJSON_AddNumberToObject(j, "attempt", 1);
    cJSON_AddNumberToObject(j, "lease_ms", 60000);
    cJSON_AddStringToObject(j, "backend", backend);
    cJSON_AddStringToObject(j, "assignment", assignment);
    cJSON *files = cJSON_AddArrayToObject(j, "files");
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "role", "model");
    cJSON_AddStringToObject(f, "sha256", fx->sha);
    cJSON_AddNumberToObject(f, "size", (double)fx->file_len);
    cJSON_AddStringToObject(f, "name", "tiny.onnx");
    cJSON_AddItemToArray(files, f);
    cJSON_AddItemToObject(j, "measure", cJSON_Parse(measure ? measure : "{}"));
    cJSON_AddItemToObject(j, "data", cJSON_CreateObject());
    s_send(fx, j, NULL, 0);
}

/* Answers one FETCH with at most chunk_max bytes; corrupt flips a byte of the payload. */
static void s_serve_fetch(s_fx_t *fx, const cJSON *fetch, size_t chunk_max, int corrupt)
{
    const char *sha = cJSON_GetObjectItemCaseSensitive(fetch, "sha256")->valuestring;
    size_t off = (size_t)cJSON_GetObjectItemCaseSensitive(fetch, "offset")->valuedouble;
    size_t len = (size_t)cJSON_GetObjectItemCaseSensitive(fetch, "length")->valuedouble;
    ASSERT_STR_EQ(fx->sha, sha);
    ASSERT(len >= 1 && len <= BS_PROTO_CHUNK_SIZE);
    ASSERT(off + len <= fx->file_len);
    if (len > chunk_max)
        len = chunk_max;
    char *bytes = bs_malloc(len);
    memcpy(bytes, fx->file + off, len);
    if (corrupt)
        bytes[0] ^= 0x5a;
    cJSON *c = bs_msg_new(BS_MSG_CHUNK);
    cJSON_AddStringToObject(c, "sha256", sha);
    cJSON_AddNumberToObject(c, "offset", (double)off);
    cJSON_AddNumberToObject(c, "total", (double)fx->file_len);
    s_send(fx, c, bytes, len);
    bs_free(bytes);
}

/* Serves FETCHes until a RESULT arrives (returned in *m); counts the FETCHes. */
static int s_serve_until_result(s_fx_t *fx, bs_wire_msg_t *m, size_t chunk_max, int corrupt)
{
    int fetches = 0;
    uint64_t end = bs_now_ms() + 10000;
    for (;;) {
        uint64_t now = bs_now_ms();
        int t = now < end ? s_recv(fx, m, (int)(end - now)) : -1;
        if (t < 0)
            bs_test_fail(__FILE__, __LINE__, "no RESULT from the agent");
        if (t == BS_MSG_RESULT)
            return fetches;
        if (t == BS_MSG_FETCH) {
            fetches++;
            s_serve_fetch(fx, m->msg, chunk_max, corrupt);
        } else if (t != BS_MSG_HEARTBEAT && t != BS_MSG_HELLO) {
            bs_test_fail(__FILE__, __LINE__, "unexpected %s", bs_msg_type_name(t));
        }
        bs_wire_msg_free(m);
    }
}

static const char *s_result_code(const cJSON *r)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(r, "error");
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "code");
    return cJSON_IsString(c) ? c->valuestring : "(none)";
}

BS_TEST(session_job_fetch_and_cache_hit)
{
    s_fx_t fx;
    s_fx_start(&fx);
    s_handshake(&fx, 1000, 60);

    s_send_job(&fx, 41, "sim", "conv1=w8a8,fc=w4a8", "{\"min_runs\": 5}");
    bs_wire_msg_t m;
    int fetches = s_serve_until_result(&fx, &m, 1000, 0);
    ASSERT(fx.file_len > 2000);
    ASSERT_EQ((fx.file_len + 999) / 1000, fetches); /* several chunks, one at a time */
    const cJSON *r = m.msg;
    ASSERT_EQ(41, cJSON_GetObjectItemCaseSensitive(r, "job_id")->valuedouble);
    ASSERT(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "ok")));
    bs_metrics_t met;
    bs_err_t err;
    ASSERT_OK(bs_metrics_from_json(cJSON_GetObjectItemCaseSensitive(r, "metrics"), &met, &err));
    ASSERT_EQ(1, met.simulated);
    ASSERT_STR_EQ("sim", met.backend);
    ASSERT_EQ(5, met.lat_runs);
    ASSERT_EQ(40 + 320, met.weight_bytes);
    const cJSON *tm = cJSON_GetObjectItemCaseSensitive(r, "timings");
    ASSERT(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(tm, "fetch_ms")));
    ASSERT(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(tm, "run_ms")));
    ASSERT(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(tm, "load_ms")));
    double acc = met.accuracy;
    bs_wire_msg_free(&m);
    char path[700];
    snprintf(path, sizeof path, "%s/%s", fx.cache, fx.sha);
    ASSERT(s_exists(path));
    ASSERT_EQ(0, s_count_files(fx.cache, ".part"));

    /* The same model again: a cache hit, no FETCH; the same config, the same numbers. */
    s_send_job(&fx, 42, "sim", "conv1=w8a8,fc=w4a8", "{\"min_runs\": 5}");
    ASSERT_EQ(0, s_serve_until_result(&fx, &m, 1000, 0));
    ASSERT_EQ(42, cJSON_GetObjectItemCaseSensitive(m.msg, "job_id")->valuedouble);
    ASSERT(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(m.msg, "ok")));
    ASSERT_OK(
        bs_metrics_from_json(cJSON_GetObjectItemCaseSensitive(m.msg, "metrics"), &met, &err));
    ASSERT(acc == met.accuracy);
    bs_wire_msg_free(&m);

    /* A failing config is a RESULT with its error, not a crash. */
    s_send_job(&fx, 43, "sim", "conv1=w8a8,nope=w4a8", NULL);
    ASSERT_EQ(0, s_serve_until_result(&fx, &m, 1000, 0));
    ASSERT(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(m.msg, "ok")));
    ASSERT_STR_EQ("EINVAL", s_result_code(m.msg));
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(m.msg, "error");
    ASSERT_CONTAINS(cJSON_GetObjectItemCaseSensitive(e, "message")->valuestring, "nope");
    bs_wire_msg_free(&m);

    /* An unknown backend. */
    s_send_job(&fx, 44, "tpu", "*=w8a8", NULL);
    EXPECT(&fx, RESULT, &m);
    ASSERT_STR_EQ("EUNSUPPORTED", s_result_code(m.msg));
    bs_wire_msg_free(&m);

    s_fx_stop(&fx, 1);
}

/* A JOB of kind "sensitivity": the RESULT carries the rows instead of metrics. */
BS_TEST(session_sensitivity_job)
{
    s_fx_t fx;
    s_fx_start(&fx);
    s_handshake(&fx, 1000, 60);
    s_send_job(&fx, 51, "sim", "conv1=w8a8,fc=w4a8", NULL); /* the model goes into the cache */
    bs_wire_msg_t m;
    s_serve_until_result(&fx, &m, 100000, 0);
    double acc = cJSON_GetObjectItemCaseSensitive(
                     cJSON_GetObjectItemCaseSensitive(m.msg, "metrics"), "accuracy")
                     ->valuedouble;
    bs_wire_msg_free(&m);

    cJSON *j = bs_msg_new(BS_MSG_JOB);
    cJSON_AddNumberToObject(j, "job_id", 52);
    cJSON_AddStringToObject(j, "campaign", "unit");
    cJSON_AddNumberToObject(j, "attempt", 1);
    cJSON_AddNumberToObject(j, "lease_ms", 60000);
    cJSON_AddStringToObject(j, "backend", "sim");
    cJSON_AddStringToObject(j, "kind", "sensitivity");
    cJSON_AddItemToObject(j, "precisions", cJSON_Parse("[\"w4a8\", \"w16a32\"]"));
    cJSON_AddStringToObject(j, "assignment", "conv1=w8a8,fc=w32a32");
    cJSON *files = cJSON_AddArrayToObject(j, "files");
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "role", "model");
    cJSON_AddStringToObject(f, "sha256", fx.sha);
    cJSON_AddNumberToObject(f, "size", (double)fx.file_len);
    cJSON_AddStringToObject(f, "name", "tiny.onnx");
    cJSON_AddItemToArray(files, f);
    cJSON_AddItemToObject(j, "measure", cJSON_Parse("{\"backend\": \"sim\"}"));
    cJSON_AddItemToObject(j, "data", cJSON_Parse("{\"eval_count\": 10}"));
    s_send(&fx, j, NULL, 0);
    ASSERT_EQ(0, s_serve_until_result(&fx, &m, 100000, 0));
    const cJSON *r = m.msg;
    ASSERT_EQ(52, cJSON_GetObjectItemCaseSensitive(r, "job_id")->valuedouble);
    ASSERT(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "ok")));
    ASSERT(cJSON_GetObjectItemCaseSensitive(r, "metrics") == NULL);
    const cJSON *sens = cJSON_GetObjectItemCaseSensitive(r, "sensitivity");
    ASSERT(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(sens, "simulated")));
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive(sens, "rows");
    ASSERT_EQ(4, cJSON_GetArraySize(rows));
    const cJSON *r2 = cJSON_GetArrayItem(rows, 2); /* fc at w4a8 over the base */
    ASSERT_STR_EQ("fc", cJSON_GetObjectItemCaseSensitive(r2, "layer")->valuestring);
    ASSERT_STR_EQ("w4a8", cJSON_GetObjectItemCaseSensitive(r2, "precision")->valuestring);
    /* conv1=w8a8,fc=w4a8 is the configuration job 51 evaluated: the same number */
    ASSERT(acc == cJSON_GetObjectItemCaseSensitive(r2, "value")->valuedouble);
    ASSERT(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(r, "timings")));
    bs_wire_msg_free(&m);

    /* The engine cannot measure without evaluation data: a failed RESULT, not a crash. */
    j = bs_msg_new(BS_MSG_JOB);
    cJSON_AddNumberToObject(j, "job_id", 53);
    cJSON_AddStringToObject(j, "campaign", "unit");
    cJSON_AddNumberToObject(j, "attempt", 1);
    cJSON_AddNumberToObject(j, "lease_ms", 60000);
    cJSON_AddStringToObject(j, "backend", "engine");
    cJSON_AddStringToObject(j, "kind", "sensitivity");
    cJSON_AddItemToObject(j, "precisions", cJSON_Parse("[\"w8a32\"]"));
    cJSON_AddStringToObject(j, "assignment", "conv1=w32a32,fc=w32a32");
    cJSON_AddArrayToObject(j, "files");
    cJSON_AddItemToObject(j, "measure", cJSON_CreateObject());
    s_send(&fx, j, NULL, 0);
    EXPECT(&fx, RESULT, &m);
    ASSERT(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(m.msg, "ok")));
    ASSERT_STR_EQ("EINVAL", s_result_code(m.msg));
    bs_wire_msg_free(&m);
    s_fx_stop(&fx, 1);
}

BS_TEST(session_corrupt_chunk_is_ehash)
{
    s_fx_t fx;
    s_fx_start(&fx);
    s_handshake(&fx, 1000, 60);
    s_send_job(&fx, 7, "sim", "*=w8a8", NULL);
    bs_wire_msg_t m;
    s_serve_until_result(&fx, &m, 1000, 1);
    ASSERT(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(m.msg, "ok")));
    ASSERT_STR_EQ("EHASH", s_result_code(m.msg));
    const cJSON *tm = cJSON_GetObjectItemCaseSensitive(m.msg, "timings");
    ASSERT(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(tm, "fetch_ms")));
    ASSERT(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(tm, "run_ms"))); /* never ran */
    bs_wire_msg_free(&m);
    char path[700];
    snprintf(path, sizeof path, "%s/%s", fx.cache, fx.sha);
    ASSERT(!s_exists(path));
    ASSERT_EQ(0, s_count_files(fx.cache, ".part"));

    /* A good transfer afterwards works. */
    s_send_job(&fx, 8, "sim", "*=w8a8", NULL);
    ASSERT(s_serve_until_result(&fx, &m, 100000, 0) == 1);
    ASSERT(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(m.msg, "ok")));
    bs_wire_msg_free(&m);
    s_fx_stop(&fx, 0);
}

/* Sends a JOB, takes its FETCH and answers with a 3-byte CHUNK at offset of a file of total. */
static void s_send_bad_chunk(s_fx_t *fx, int job_id, double offset, double total)
{
    s_send_job(fx, job_id, "sim", "*=w8a8", NULL);
    bs_wire_msg_t m;
    EXPECT(fx, FETCH, &m);
    bs_wire_msg_free(&m);
    cJSON *c = bs_msg_new(BS_MSG_CHUNK);
    cJSON_AddStringToObject(c, "sha256", fx->sha);
    cJSON_AddNumberToObject(c, "offset", offset);
    cJSON_AddNumberToObject(c, "total", total);
    s_send(fx, c, "abc", 3);
}

BS_TEST(session_bad_chunk_is_eproto)
{
    s_fx_t fx;
    s_fx_start(&fx);
    s_handshake(&fx, 1000, 60);
    s_send_bad_chunk(&fx, 9, 5, (double)fx.file_len); /* the wrong offset */
    bs_wire_msg_t m;
    EXPECT(&fx, RESULT, &m);
    ASSERT_STR_EQ("EPROTO", s_result_code(m.msg));
    bs_wire_msg_free(&m);

    s_send_bad_chunk(&fx, 10, 0, (double)fx.file_len + 1); /* the wrong total */
    EXPECT(&fx, RESULT, &m);
    ASSERT_STR_EQ("EPROTO", s_result_code(m.msg));
    bs_wire_msg_free(&m);

    /* The searcher refuses the FETCH: the job fails with its code. */
    s_send_job(&fx, 11, "sim", "*=w8a8", NULL);
    EXPECT(&fx, FETCH, &m);
    bs_wire_msg_free(&m);
    s_send(&fx, bs_msg_error(BS_ENOENT, "no such file", "FETCH"), NULL, 0);
    EXPECT(&fx, RESULT, &m);
    ASSERT_STR_EQ("ENOENT", s_result_code(m.msg));
    bs_wire_msg_free(&m);

    /* Unanswered FETCHes: re-sent, then ETIMEOUT (the test sets a 300 ms timeout). */
    s_send_job(&fx, 12, "sim", "*=w8a8", NULL);
    int fetches = 0;
    for (;;) {
        int t = s_recv(&fx, &m, 10000);
        ASSERT(t >= 0);
        if (t == BS_MSG_RESULT)
            break;
        fetches += t == BS_MSG_FETCH;
        bs_wire_msg_free(&m);
    }
    ASSERT_EQ(3, fetches);
    ASSERT_STR_EQ("ETIMEOUT", s_result_code(m.msg));
    bs_wire_msg_free(&m);
    s_fx_stop(&fx, 0);
}

BS_TEST(session_busy_heartbeat_and_stop_while_running)
{
    s_fx_t fx;
    s_fx_start(&fx);
    s_handshake(&fx, 50, 100);
    s_send_job(&fx, 1, "sim", "*=w8a8", "{\"sim_delay_ms\": 60000}");
    bs_wire_msg_t m;
    EXPECT(&fx, FETCH, &m);
    s_serve_fetch(&fx, m.msg, 100000, 0);
    bs_wire_msg_free(&m);
    /* While job 1 runs: heartbeats carry its id, and another JOB gets EBUSY. */
    int with_id = 0;
    while (!with_id) {
        EXPECT(&fx, HEARTBEAT, &m);
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(m.msg, "job_id");
        with_id = cJSON_IsNumber(id) && id->valuedouble == 1;
        bs_wire_msg_free(&m);
    }
    s_send_job(&fx, 2, "sim", "*=w8a8", NULL);
    EXPECT(&fx, RESULT, &m);
    ASSERT_EQ(2, cJSON_GetObjectItemCaseSensitive(m.msg, "job_id")->valuedouble);
    ASSERT_STR_EQ("EBUSY", s_result_code(m.msg));
    bs_wire_msg_free(&m);
    /* Stopping does not wait for the 60 s job. */
    s_fx_stop(&fx, 1);
}

BS_TEST(session_ehello_and_lost_searcher)
{
    s_fx_t fx;
    s_fx_start(&fx);
    s_handshake(&fx, 1000, 60);
    /* The searcher forgot us: ERROR EHELLO brings a HELLO at once, on the same socket. */
    unsigned char first[BS_PROTO_MAX_ID + 1];
    size_t first_len = fx.id_len;
    memcpy(first, fx.id, fx.id_len);
    s_send(&fx, bs_msg_error(BS_EHELLO, "who are you?", "HEARTBEAT"), NULL, 0);
    bs_wire_msg_t m;
    EXPECT(&fx, HELLO, &m);
    bs_wire_msg_free(&m);
    ASSERT_EQ(first_len, fx.id_len);
    ASSERT_OK(memcmp(first, fx.id, first_len));

    /* A short heartbeat, then silence: the agent gives up on us and reconnects. */
    s_welcome(&fx, 50, 2);
    s_expect_new_hello(&fx, first, first_len);

    /* BYE from the searcher: the agent comes back with HELLO. */
    s_welcome(&fx, 1000, 5);
    cJSON *bye = bs_msg_new(BS_MSG_BYE);
    cJSON_AddStringToObject(bye, "reason", "searcher stopping");
    s_send(&fx, bye, NULL, 0);
    EXPECT(&fx, HELLO, &m);
    bs_wire_msg_free(&m);
    s_fx_stop(&fx, 0);
}

BS_TEST(session_result_survives_a_lost_session)
{
    s_fx_t fx;
    s_fx_start(&fx);
    s_handshake(&fx, 50, 2);
    s_send_job(&fx, 5, "sim", "*=w8a8", "{\"sim_delay_ms\": 400}");
    bs_wire_msg_t m;
    EXPECT(&fx, FETCH, &m);
    s_serve_fetch(&fx, m.msg, 100000, 0);
    bs_wire_msg_free(&m);
    /* Say nothing more: the agent loses the session while the job runs, says HELLO again
     * on a new socket, and after WELCOME delivers the RESULT. */
    unsigned char first[BS_PROTO_MAX_ID + 1];
    size_t first_len = fx.id_len;
    memcpy(first, fx.id, fx.id_len);
    s_expect_new_hello(&fx, first, first_len);
    s_welcome(&fx, 1000, 5);
    EXPECT(&fx, RESULT, &m);
    ASSERT_EQ(5, cJSON_GetObjectItemCaseSensitive(m.msg, "job_id")->valuedouble);
    ASSERT(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(m.msg, "ok")));
    bs_wire_msg_free(&m);
    s_fx_stop(&fx, 0);
}

/* Sends raw frames to the agent, bypassing the codec. */
static void s_send_raw(s_fx_t *fx, const char *json)
{
    ASSERT(zmq_send(fx->router, fx->id, fx->id_len, ZMQ_SNDMORE) >= 0);
    ASSERT(zmq_send(fx->router, json, strlen(json), 0) >= 0);
}

BS_TEST(session_bad_messages_get_errors)
{
    s_fx_t fx;
    s_fx_start(&fx);
    s_handshake(&fx, 1000, 60);
    bs_wire_msg_t m;
    s_send_raw(&fx, "this is not json");
    EXPECT(&fx, ERROR, &m);
    ASSERT_STR_EQ("EPROTO", cJSON_GetObjectItemCaseSensitive(m.msg, "code")->valuestring);
    bs_wire_msg_free(&m);
    s_send_raw(&fx, "{\"type\": \"JOB\", \"v\": 1, \"job_id\": -3}");
    EXPECT(&fx, ERROR, &m);
    ASSERT_STR_EQ("JOB", cJSON_GetObjectItemCaseSensitive(m.msg, "ref")->valuestring);
    bs_wire_msg_free(&m);
    s_send_raw(&fx, "{\"type\": \"HEARTBEAT\", \"v\": 2}");
    EXPECT(&fx, ERROR, &m);
    ASSERT_STR_EQ("EVERSION", cJSON_GetObjectItemCaseSensitive(m.msg, "code")->valuestring);
    bs_wire_msg_free(&m);
    /* A message type agents never take. */
    cJSON *fetch = bs_msg_new(BS_MSG_FETCH);
    cJSON_AddStringToObject(fetch, "sha256", fx.sha);
    cJSON_AddNumberToObject(fetch, "offset", 0);
    cJSON_AddNumberToObject(fetch, "length", 1);
    s_send(&fx, fetch, NULL, 0);
    EXPECT(&fx, ERROR, &m);
    ASSERT_STR_EQ("FETCH", cJSON_GetObjectItemCaseSensitive(m.msg, "ref")->valuestring);
    bs_wire_msg_free(&m);
    /* A bad ERROR is not answered; the agent still works afterwards. */
    s_send_raw(&fx, "{\"type\": \"ERROR\", \"v\": 1}");
    s_send_job(&fx, 77, "sim", "*=w8a8", NULL);
    ASSERT(s_serve_until_result(&fx, &m, 100000, 0) == 1);
    ASSERT(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(m.msg, "ok")));
    bs_wire_msg_free(&m);
    s_fx_stop(&fx, 1);
}

BS_TEST(agent_refuses_bad_options)
{
    bs_log_level = BS_LOG_ERROR - 1;
    volatile sig_atomic_t stop = 0;
    bs_agent_opts_t o = {0};
    ASSERT_EQ(BS_EINVAL, bs_agent_run(&o, &stop));
    o.endpoint = "not-an-endpoint";
    o.cache_dir = s_path("cache");
    o.name = "x";
    ASSERT_EQ(BS_EINVAL, bs_agent_run(&o, &stop));
    o.endpoint = "tcp://127.0.0.1:1";
    o.name = "a-name-that-is-far-too-long-for-a-hello-message-because-it-exceeds-64-bytes";
    ASSERT_EQ(BS_EINVAL, bs_agent_run(&o, &stop));
}

#define TESTS(X)                                                                                  \
    X(cache_download_verifies)                                                                    \
    X(cache_wrong_hash_is_refused)                                                                \
    X(cache_rejects_bad_sha)                                                                      \
    X(cache_deletes_a_corrupt_file)                                                               \
    X(stats_known_samples)                                                                        \
    X(sim_is_deterministic)                                                                       \
    X(sim_precision_orders_metrics)                                                               \
    X(sim_rejects_bad_assignments)                                                                \
    X(sim_injected_failures_are_deterministic)                                                    \
    X(sim_delay_honours_cancel)                                                                   \
    X(sim_sensitivity_matches_evaluations)                                                        \
    X(sim_sensitivity_failures)                                                                   \
    X(engine_sensitivity)                                                                         \
    X(backend_registry)                                                                           \
    X(device_description)                                                                         \
    X(agent_id_is_persistent)                                                                     \
    X(default_cache_dir)                                                                          \
    X(session_job_fetch_and_cache_hit)                                                            \
    X(session_sensitivity_job)                                                                    \
    X(session_corrupt_chunk_is_ehash)                                                             \
    X(session_bad_chunk_is_eproto)                                                                \
    X(session_busy_heartbeat_and_stop_while_running)                                              \
    X(session_ehello_and_lost_searcher)                                                           \
    X(session_result_survives_a_lost_session)                                                     \
    X(session_bad_messages_get_errors)                                                            \
    X(agent_refuses_bad_options)

BS_TEST_MAIN(TESTS)

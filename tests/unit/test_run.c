/*
 * test_run.c - the shared run path (bs_run.c) and the "engine" backend, on the bundled
 * Fashion-MNIST model: measure settings from JSON, the assignment check, evaluation with and
 * without labels, timing by runs, by cancel flag and by coefficient of variation (remeasures,
 * unstable), the machine's temperature and frequencies from a fake sensor tree, CPU pinning,
 * and a whole backend job with the metrics it must report (real, not simulated; energy
 * unknown). Tests that need the Debian
 * Fashion-MNIST files skip themselves when the package is absent.
 */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include "bs_alloc.h"
#include "bs_backend.h"
#include "bs_data.h"
#include "bs_npy.h"
#include "bs_run.h"
#include "bs_test.h"
#include "bs_util.h"

#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_MODEL BS_SRC_DIR "/models/fmnist-cnn.onnx"
#define S_IMAGES "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
#define S_LABELS "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"

static int s_have_data(void)
{
    if (access(S_IMAGES, R_OK) == 0 && access(S_LABELS, R_OK) == 0)
        return 1;
    fprintf(stderr, "dataset-fashion-mnist not installed; skipped\n");
    return 0;
}

static void s_pre(bs_preprocess_t *p)
{
    bs_preprocess_default(p);
    p->n_mean = p->n_std = 1;
    p->mean[0] = 0.2860f;
    p->std[0] = 0.3530f;
}

BS_TEST(measure_json)
{
    bs_measure_opts_t m;
    bs_err_t err = {0};
    ASSERT_OK(bs_measure_from_json(NULL, &m, &err));
    ASSERT_EQ(5, m.warmup_runs);
    ASSERT_EQ(20, m.min_runs);
    ASSERT_DBL_NEAR(500, m.min_time_ms, 0);
    ASSERT_DBL_NEAR(10000, m.max_time_ms, 0);
    cJSON *o = cJSON_Parse("{\"backend\": \"engine\", \"warmup_runs\": 0, \"min_runs\": 7, "
                           "\"min_time_ms\": 0, \"max_time_ms\": 50, \"threads\": 2}");
    ASSERT_OK(bs_measure_from_json(o, &m, &err));
    ASSERT_EQ(0, m.warmup_runs);
    ASSERT_EQ(7, m.min_runs);
    ASSERT_DBL_NEAR(50, m.max_time_ms, 0);
    cJSON_Delete(o);
    static const struct {
        const char *json, *msg;
    } bad[] = {
        {"{\"min_runs\": 0}", "measure.min_runs"},
        {"{\"min_runs\": 2.5}", "measure.min_runs"},
        {"{\"warmup_runs\": \"5\"}", "measure.warmup_runs"},
        {"{\"min_time_ms\": 100, \"max_time_ms\": 50}", "measure.max_time_ms"},
        {"{\"max_time_ms\": 0}", "measure.max_time_ms"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        o = cJSON_Parse(bad[i].json);
        int rc = bs_measure_from_json(o, &m, &err);
        cJSON_Delete(o);
        if (rc != BS_EINVAL || !strstr(err.msg, bad[i].msg))
            bs_test_fail(__FILE__, __LINE__, "%s: rc %d, \"%s\"", bad[i].json, rc, err.msg);
    }
}

BS_TEST(assignment_checks)
{
    bs_err_t err = {0};
    ASSERT_OK(bs_run_check_assignment(S_MODEL, NULL, &err));
    ASSERT_OK(bs_run_check_assignment(S_MODEL, "*=w32a32", &err));
    ASSERT_OK(bs_run_check_assignment(S_MODEL,
                                      "conv1=w32a32,conv2=w32a32,fc1=w32a32,"
                                      "fc2=w32a32",
                                      &err));
    ASSERT_OK(bs_run_check_assignment(S_MODEL, "*=w32a32,fc1=w8a8", &err));
    ASSERT_EQ(BS_EINVAL, bs_run_check_assignment(S_MODEL, "fc1=w8a9", &err));
    ASSERT_EQ(BS_EINVAL, bs_run_check_assignment(S_MODEL, "fc9=w8a8", &err));
    ASSERT_CONTAINS(err.msg, "conv1");
}

BS_TEST(evaluate_and_time)
{
    if (!s_have_data())
        return;
    bs_err_t err = {0};
    bs_graph_t *g;
    ASSERT_OK(bs_run_load(S_MODEL, 1, &g, &err));
    bs_preprocess_t pre;
    s_pre(&pre);
    bs_dataset_t ds;
    ASSERT_OK(
        bs_dataset_load(S_IMAGES, S_LABELS, 200, &pre, &bs_graph_input(g, 0)->shape, &ds, &err));
    bs_eval_t ev;
    float *outs;
    ASSERT_OK(bs_run_evaluate(g, &ds, NULL, NULL, &ev, &outs, &err));
    ASSERT_STR_EQ("top1", ev.metric);
    ASSERT_EQ(200, ev.samples);
    ASSERT_EQ(10, ev.classes);
    ASSERT(ev.accuracy > 0.8 && ev.accuracy <= 1.0); /* the model: 0.904 on the test set */
    ASSERT(isnan(ev.sqnr_db));

    /* without labels: agreement with a reference; itself, then a perturbed copy */
    bs_free(ds.labels);
    ds.labels = NULL;
    bs_eval_t ev2;
    ASSERT_OK(bs_run_evaluate(g, &ds, NULL, NULL, &ev2, NULL, &err));
    ASSERT_STR_EQ("top1_agreement", ev2.metric);
    ASSERT_DBL_NEAR(1.0, ev2.accuracy, 0);
    ASSERT(isinf(ev2.sqnr_db));
    for (int c = 0; c < 10; c++)
        outs[c] = c == 0 ? 1e6f : 0.0f; /* sample 0's reference says class 0 */
    ASSERT_OK(bs_run_evaluate(g, &ds, outs, NULL, &ev2, NULL, &err));
    /* the model calls sample 0 (an ankle boot) class 9: one disagreement in 200 */
    ASSERT_DBL_NEAR(199.0 / 200.0, ev2.accuracy, 1e-12);
    ASSERT(isfinite(ev2.sqnr_db));
    bs_free(outs);

    /* timing: exactly min_runs when min_time_ms is 0 */
    bs_measure_opts_t m;
    bs_measure_defaults(&m);
    m.warmup_runs = 1;
    m.warmup_min_ms = 0;
    m.min_runs = 7;
    m.min_time_ms = 0;
    m.max_time_ms = 60000;
    m.cv_max = 10; /* any pass is steady enough: exactly one pass */
    bs_latency_stats_t st;
    int again = -1, unstable = -1;
    ASSERT_OK(bs_run_time(g, &m, NULL, &st, &again, &unstable, &err));
    ASSERT_EQ(7, st.n);
    ASSERT_EQ(0, again);
    ASSERT_EQ(0, unstable);
    /* an impossible cv_max: every pass is measured again, up to remeasure_max, and the result
     * is flagged unstable (a CV of exactly 0 over 7 runs of a real model does not happen) */
    m.cv_max = 1e-6;
    m.remeasure_max = 2;
    ASSERT_OK(bs_run_time(g, &m, NULL, &st, &again, &unstable, &err));
    ASSERT_EQ(2, again);
    ASSERT_EQ(1, unstable);
    ASSERT_EQ(7, st.n);
    m.cv_max = 10;
    ASSERT(st.min > 0 && st.min <= st.median && st.median <= st.p90);
    /* bounded by max_time_ms: far fewer than a million runs */
    m.min_runs = 100000;
    m.max_time_ms = 20;
    ASSERT_OK(bs_run_time(g, &m, NULL, &st, NULL, NULL, &err));
    ASSERT(st.n >= 1 && st.n < 100000);
    /* canceled */
    atomic_int cancel;
    atomic_init(&cancel, 1);
    ASSERT_EQ(BS_ECANCELED, bs_run_time(g, &m, &cancel, &st, NULL, NULL, &err));
    ASSERT_EQ(BS_ECANCELED, bs_run_evaluate(g, &ds, NULL, &cancel, &ev2, NULL, &err));
    bs_dataset_free(&ds);
    bs_graph_free(&g);
    ASSERT(bs_run_peak_rss() > 0);
}

static int s_engine_job(const char *assignment, const char *measure, const char *data,
                        const char *labels, const atomic_int *cancel, bs_metrics_t *out,
                        bs_err_t *err)
{
    const bs_backend_ops_t *ops = bs_backend_find("engine");
    ASSERT(ops != NULL);
    ASSERT_EQ(0, ops->simulated);
    cJSON *m = cJSON_Parse(measure), *d = cJSON_Parse(data);
    int64_t load_ms = -1;
    bs_job_spec_t job = {
        .model_path = S_MODEL,
        .assignment = assignment,
        .eval_images = S_IMAGES,
        .eval_labels = labels,
        .measure = m,
        .data = d,
        .threads = 1,
        .cancel = cancel,
        .load_ms = &load_ms,
    };
    cJSON *profile = NULL;
    job.profile = &profile;
    bs_metrics_init(out);
    int rc = ops->run(&job, out, err);
    if (rc == 0) { /* a profile of the four layers, unless measure.profile_runs is 0 */
        const cJSON *pr = cJSON_GetObjectItemCaseSensitive(m, "profile_runs");
        if (pr && cJSON_IsNumber(pr) && pr->valuedouble == 0) {
            ASSERT(profile == NULL);
        } else {
            ASSERT(profile != NULL);
            const cJSON *layers = cJSON_GetObjectItemCaseSensitive(profile, "layers");
            ASSERT_EQ(4, cJSON_GetArraySize(layers));
            ASSERT_STR_EQ("conv1", cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(layers, 0),
                                                                    "layer")
                                       ->valuestring);
            ASSERT(cJSON_GetObjectItemCaseSensitive(profile, "total_ms")->valuedouble > 0);
            /* and it passes the searcher's check of RESULT metrics */
            cJSON *mj = bs_metrics_to_json(out);
            bs_metrics_t back;
            bs_err_t e2;
            cJSON_AddItemToObject(mj, "profile", cJSON_Duplicate(profile, 1));
            ASSERT_OK(bs_metrics_from_json(mj, &back, &e2));
            cJSON_ReplaceItemInObject(mj, "profile", cJSON_Parse("{\"layers\": [{\"ms\": -1}]}"));
            ASSERT_EQ(BS_EPROTO, bs_metrics_from_json(mj, &back, &e2));
            ASSERT_CONTAINS(e2.msg, "metrics.profile.layers[0]");
            cJSON_Delete(mj);
        }
    }
    cJSON_Delete(profile);
    if (rc == 0)
        ASSERT(load_ms >= 0);
    cJSON_Delete(m);
    cJSON_Delete(d);
    return rc;
}

BS_TEST(engine_backend)
{
    if (!s_have_data())
        return;
    static const char *measure = "{\"backend\": \"engine\", \"warmup_runs\": 1, "
                                 "\"min_runs\": 5, \"min_time_ms\": 0, \"max_time_ms\": 10000}";
    static const char *data = "{\"eval_count\": 100, \"calib_count\": 0, \"preprocess\": "
                              "{\"scale\": 0.00392156862745098, \"mean\": [0.286], "
                              "\"std\": [0.353], \"layout\": \"NCHW\"}}";
    bs_metrics_t m;
    bs_err_t err = {0};
    ASSERT_OK(s_engine_job("conv1=w32a32,conv2=w32a32,fc1=w32a32,fc2=w32a32", measure, data,
                           S_LABELS, NULL, &m, &err));
    ASSERT_EQ(0, m.simulated);
    ASSERT_STR_EQ("engine", m.backend);
    ASSERT_STR_EQ("top1", m.metric);
    ASSERT(m.accuracy > 0.8 && m.accuracy <= 1.0);
    ASSERT_EQ(5, m.lat_runs);
    ASSERT(m.lat_median_ms > 0 && m.lat_p90_ms >= m.lat_median_ms);
    /* The model's 105,866 parameters at 4 bytes (423,464), as packed weight panels (padded
     * to the kernel's panel width) plus biases: held once, never twice. */
    ASSERT(m.weight_bytes >= 423464 && m.weight_bytes < 440000);
    ASSERT(m.arena_bytes > 0);
    ASSERT(m.peak_rss_bytes > 0);
    ASSERT(isnan(m.energy_j));
    ASSERT_STR_EQ("none", m.energy_source);
    ASSERT_CONTAINS(m.energy_reason, "no energy sensor"); /* the job names no sensor set */
    /* the record survives the wire format */
    cJSON *j = bs_metrics_to_json(&m);
    bs_metrics_t back;
    ASSERT_OK(bs_metrics_from_json(j, &back, &err));
    cJSON_Delete(j);

    /* no labels: agreement with the fp32 model, which this model is */
    ASSERT_OK(s_engine_job(NULL, measure, data, NULL, NULL, &m, &err));
    ASSERT_STR_EQ("top1_agreement", m.metric);
    ASSERT_DBL_NEAR(1.0, m.accuracy, 0);

    /* a quantized layer: fewer weight bytes; int8 activations without calibration data are
     * refused with a message that says so */
    ASSERT_OK(s_engine_job("conv1=w32a32,conv2=w4a32,fc1=w32a32,fc2=w32a32", measure, data,
                           S_LABELS, NULL, &m, &err));
    ASSERT(m.accuracy > 0.8 && m.weight_bytes < 423464);
    ASSERT_EQ(BS_EINVAL, s_engine_job("conv1=w32a32,conv2=w8a8,fc1=w32a32,fc2=w32a32", measure,
                                      data, S_LABELS, NULL, &m, &err));
    ASSERT_CONTAINS(err.msg, "calibration");
    ASSERT_EQ(BS_EINVAL, s_engine_job(NULL, "{\"min_runs\": -1}", data, S_LABELS, NULL, &m, &err));
    ASSERT_CONTAINS(err.msg, "engine: JOB: measure.min_runs");
    ASSERT_EQ(BS_ECONFIG, s_engine_job(NULL, measure, "{\"preprocess\": {\"std\": [0]}}", S_LABELS,
                                       NULL, &m, &err));
    ASSERT_CONTAINS(err.msg, "data.preprocess.std[0]");
    ASSERT_EQ(BS_EDATA,
              s_engine_job(NULL, measure, "{\"eval_count\": 20000}", S_LABELS, NULL, &m, &err));
    ASSERT_CONTAINS(err.msg, "20000 samples asked, the file holds 10000");
    atomic_int cancel;
    atomic_init(&cancel, 1);
    ASSERT_EQ(BS_ECANCELED, s_engine_job(NULL, measure, data, S_LABELS, &cancel, &m, &err));
}

/* What a job records about its run: the CPUs it was pinned to, threads, versions, and the
 * machine's temperature and frequencies read under BITSCOUT_SENSOR_ROOT (a fake tree here). */
static void s_write(const char *dir, const char *rel, const char *text)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    for (char *p = path + strlen(dir) + 1; (p = strchr(p, '/')); p++) {
        *p = '\0';
        mkdir(path, 0755);
        *p = '/';
    }
    FILE *f = fopen(path, "w");
    ASSERT(f);
    fputs(text, f);
    fclose(f);
}

BS_TEST(run_environment_and_pinning)
{
    const char *root = bs_test_tmpdir();
    s_write(root, "sys/class/thermal/thermal_zone0/temp", "41500\n");
    s_write(root, "sys/class/thermal/thermal_zone1/temp", "55000\n");
    s_write(root, "sys/class/thermal/thermal_zone2/temp", "garbage\n");
    s_write(root, "sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq", "2000000\n");
    s_write(root, "sys/devices/system/cpu/cpu1/cpufreq/scaling_cur_freq", "1000000\n");
    setenv("BITSCOUT_SENSOR_ROOT", root, 1);
    bs_run_env_t env;
    bs_run_env_read("0", &env);
    ASSERT_DBL_NEAR(55.0, env.temp_c, 1e-9);
    ASSERT_DBL_NEAR(2000.0, env.freq_mhz, 1e-9);
    bs_run_env_read("0-1", &env);
    ASSERT_DBL_NEAR(1500.0, env.freq_mhz, 1e-9);
    bs_run_env_read("5", &env); /* no such CPU in the tree */
    ASSERT(isnan(env.freq_mhz));
    char empty[4200];
    snprintf(empty, sizeof empty, "%s/none", root);
    setenv("BITSCOUT_SENSOR_ROOT", empty, 1);
    bs_run_env_read("", &env);
    ASSERT(isnan(env.temp_c) && isnan(env.freq_mhz));
    unsetenv("BITSCOUT_SENSOR_ROOT");

    unsigned char mask[128];
    ASSERT_OK(bs_cpulist_parse("0-3,6", mask));
    ASSERT_EQ(0x4f, mask[0]);
    ASSERT_EQ(BS_EINVAL, bs_cpulist_parse("3-1", mask));
    ASSERT_EQ(BS_EINVAL, bs_cpulist_parse("1,,2", mask));
    ASSERT_EQ(BS_EINVAL, bs_cpulist_parse("", mask));
    ASSERT_EQ(BS_EINVAL, bs_cpulist_parse("1024", mask));

    if (!s_have_data())
        return;
    bs_metrics_t m;
    bs_err_t err;
    const char *data = "{\"eval_count\": 20}";
    ASSERT_OK(s_engine_job(NULL,
                           "{\"warmup_runs\": 1, \"min_runs\": 3, \"min_time_ms\": 0, "
                           "\"cpus\": \"0\"}",
                           data, S_LABELS, NULL, &m, &err));
    ASSERT_STR_EQ("0", m.cpus);
    ASSERT_EQ(1, m.threads);
    ASSERT(m.unstable == 0 || m.unstable == 1);
    ASSERT_STR_EQ(BS_VERSION, m.agent_version);
    ASSERT_CONTAINS(m.engine, "bitscout-engine");
    cJSON *j = bs_metrics_to_json(&m);
    bs_metrics_t back;
    ASSERT_OK(bs_metrics_from_json(j, &back, &err));
    ASSERT_STR_EQ("0", back.cpus);
    ASSERT_EQ(m.unstable, back.unstable);
    cJSON_Delete(j);
    /* no sensor: an estimate only when asked for, labelled as one */
    ASSERT_OK(s_engine_job(NULL,
                           "{\"warmup_runs\": 1, \"min_runs\": 3, \"min_time_ms\": 0, "
                           "\"energy_estimate_w\": 5}",
                           data, S_LABELS, NULL, &m, &err));
    ASSERT_STR_EQ("estimate", m.energy_source);
    ASSERT_DBL_NEAR(5.0 * m.lat_median_ms / 1000.0, m.energy_j, 1e-15);
    ASSERT_CONTAINS(m.energy_reason, "estimate");
    /* the job's thread is unpinned afterwards */
    cpu_set_t set;
    ASSERT_OK(sched_getaffinity(0, sizeof set, &set));
    ASSERT(CPU_COUNT(&set) >= 1);
    ASSERT_EQ(BS_EINVAL, s_engine_job(NULL, "{\"cpus\": \"7-2\"}", data, S_LABELS, NULL, &m,
                                      &err));
    ASSERT_CONTAINS(err.msg, "measure.cpus");
    ASSERT_EQ(BS_EINVAL, s_engine_job(NULL, "{\"cpus\": \"1000\"}", data, S_LABELS, NULL, &m,
                                      &err));
    ASSERT_CONTAINS(err.msg, "cannot run on CPUs 1000");
}

BS_TEST(run_command_usage)
{
    char *bad1[] = {"run", "--repeats", "0", NULL};
    ASSERT_EQ(2, bs_run_main(3, bad1));
    char *bad2[] = {"run", NULL};
    ASSERT_EQ(2, bs_run_main(1, bad2));
    char *bad3[] = {"run", "--model", S_MODEL, "--format", "xml", NULL};
    ASSERT_EQ(2, bs_run_main(5, bad3));
    char *missing[] = {"run", "--model", "/nonexistent.onnx", NULL};
    ASSERT_EQ(1, bs_run_main(3, missing));
    char path[512];
    snprintf(path, sizeof path, "%s/y.npy", bs_test_tmpdir());
    char *ok[] = {"run", "--model", S_MODEL, "--repeats", "2", "--output", path, NULL};
    ASSERT_EQ(0, bs_run_main(7, ok));
    bs_npy_t y;
    bs_err_t err = {0};
    ASSERT_OK(bs_npy_load(path, BS_NPY_MAX_BYTES, &y, &err));
    ASSERT_EQ(2, y.ndim);
    ASSERT_EQ(10, y.dims[1]);
    bs_npy_free(&y);
}

#define TESTS(X)                                                                                  \
    X(measure_json)                                                                               \
    X(assignment_checks)                                                                       \
    X(evaluate_and_time)                                                                          \
    X(engine_backend)                                                                             \
    X(run_environment_and_pinning)                                                              \
    X(run_command_usage)

BS_TEST_MAIN(TESTS)

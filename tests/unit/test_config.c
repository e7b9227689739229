/*
 * test_config.c - campaign parsing (searcher/bs_config.c) and the search space (bs_space.c).
 *
 * Each test writes its campaign file and small dummy model/data files into bs_test_tmpdir():
 * the parser only checks that referenced files exist, so their contents do not matter. The
 * negative tests start from one valid, complete campaign (s_full), change one key through a
 * path such as "objectives[1].metric" (s_patch), and check that the error names the file and
 * the key path. The search-space tests use a hand-built three-layer model (conv1, conv2, fc),
 * so nothing here depends on an ONNX file.
 *
 * Besides the runner's leak check at exit, each test under ASan checks for leaks itself
 * (s_no_leaks) at the point where everything it made must have been freed. BS_TEST_VERBOSE=1
 * prints every error message the negative tests provoke, for reading them as a user would.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "bs_alloc.h"
#include "bs_config.h"
#include "bs_test.h"
#include "bs_util.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define S_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define S_ASAN 1
#endif
#ifdef S_ASAN
#include <sanitizer/lsan_interface.h>
#endif

static void s_no_leaks(void)
{
#ifdef S_ASAN
    ASSERT_EQ(0, __lsan_do_recoverable_leak_check());
#endif
}

/* ---- fixtures ------------------------------------------------------------------------------ */

static const char *s_full =
    "{\n"
    "  \"name\": \"test-campaign_1.0\",\n"
    "  \"model\": \"model.onnx\",\n"
    "  \"data\": {\n"
    "    \"eval\": {\"images\": \"data/eval-images.gz\", \"labels\": \"data/eval-labels.gz\",\n"
    "             \"count\": 100},\n"
    "    \"calibration\": {\"images\": \"data/cal-images.gz\", \"count\": 32},\n"
    "    \"preprocess\": {\"scale\": 0.5, \"mean\": [0.1, 0.2, 0.3], \"std\": [1, 2, 3],\n"
    "                   \"layout\": \"NHWC\", \"resize\": [32, 48]}\n"
    "  },\n"
    "  \"search_space\": [\n"
    "    {\"layers\": \"*\", \"weights\": [\"fp32\", \"int8\", \"int4\"],\n"
    "     \"activations\": [\"fp32\", \"int8\"]},\n"
    "    {\"layers\": \"fc\", \"weights\": [\"fp16\"]}\n"
    "  ],\n"
    "  \"objectives\": [{\"metric\": \"accuracy\", \"goal\": \"max\"},\n"
    "                 {\"metric\": \"latency_p90_ms\"}],\n"
    "  \"constraints\": [{\"metric\": \"latency_p90_ms\", \"max\": 4.0},\n"
    "                  {\"metric\": \"accuracy\", \"min\": 0.85, \"max\": 1}],\n"
    "  \"policy\": {\"name\": \"random\", \"seed\": 42},\n"
    "  \"budget\": {\"evaluations\": 60, \"wall_time_s\": 1800.5},\n"
    "  \"measure\": {\"backend\": \"sim\", \"warmup_runs\": 2, \"min_runs\": 10,\n"
    "              \"min_time_ms\": 100, \"max_time_ms\": 2000, \"threads\": 4,\n"
    "              \"sim_delay_ms\": 20, \"sim_fail_rate\": 0.1},\n"
    "  \"agents\": {\"tags\": [\"jetson\", \"orin\"], \"heartbeat_ms\": 500, \"liveness\": 3,\n"
    "             \"lease_ms\": 60000, \"max_attempts\": 2},\n"
    "  \"quantization\": {\"weights\": \"minmax\", \"activations\": \"percentile\",\n"
    "                   \"percentile\": 99.9},\n"
    "  \"sensitivity\": {\"precisions\": [\"w8a8\", \"w4a32\"], \"eval_count\": 50}\n"
    "}\n";

static const char *s_minimal =
    "{\"name\": \"m\", \"model\": \"model.onnx\",\n"
    " \"data\": {\"eval\": {\"images\": \"data/eval-images.gz\"}},\n"
    " \"search_space\": [{\"layers\": \"*\", \"weights\": [\"int8\"]}],\n"
    " \"objectives\": [{\"metric\": \"accuracy\"}, {\"metric\": \"weight_bytes\"}],\n"
    " \"budget\": {\"evaluations\": 1}}\n";

static char s_cfg_path[512];

static void s_write(const char *rel, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", bs_test_tmpdir(), rel);
    FILE *f = fopen(path, "wb");
    ASSERT(f != NULL);
    ASSERT_EQ(strlen(text), fwrite(text, 1, strlen(text), f));
    ASSERT_OK(fclose(f));
}

/* The dummy files every campaign here refers to. */
static void s_setup(void)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/data", bs_test_tmpdir());
    ASSERT_OK(mkdir(dir, 0755));
    s_write("model.onnx", "not really onnx");
    s_write("data/eval-images.gz", "x");
    s_write("data/eval-labels.gz", "x");
    s_write("data/cal-images.gz", "x");
    snprintf(s_cfg_path, sizeof s_cfg_path, "%s/campaign.json", bs_test_tmpdir());
}

/* Writes text as the campaign file and loads it. */
static int s_load_text(const char *text, bs_config_t **cfg, bs_err_t *err)
{
    s_write("campaign.json", text);
    return bs_config_load(s_cfg_path, cfg, err);
}

/* Sets (value = JSON text) or deletes (value = NULL) the item at path ("a.b[1].c") in root. */
static void s_set(cJSON *root, const char *path, const char *value)
{
    cJSON *parent = root;
    const char *p = path;
    for (;;) {
        char key[128] = "";
        int idx = -1;
        if (*p == '[') {
            idx = atoi(p + 1);
            p = strchr(p, ']') + 1;
        } else {
            size_t n = strcspn(p, ".[");
            snprintf(key, sizeof key, "%.*s", (int)n, p);
            p += n;
        }
        if (*p == '.')
            p++;
        if (*p) {
            parent = idx >= 0 ? cJSON_GetArrayItem(parent, idx)
                              : cJSON_GetObjectItemCaseSensitive(parent, key);
            ASSERT(parent != NULL);
            continue;
        }
        cJSON *v = NULL;
        if (value) {
            v = cJSON_Parse(value);
            ASSERT(v != NULL);
        }
        if (idx >= 0) {
            ASSERT(idx < cJSON_GetArraySize(parent));
            if (v)
                cJSON_ReplaceItemInArray(parent, idx, v);
            else
                cJSON_DeleteItemFromArray(parent, idx);
        } else {
            cJSON_DeleteItemFromObjectCaseSensitive(parent, key);
            if (v)
                cJSON_AddItemToObject(parent, key, v);
        }
        return;
    }
}

/* s_full with one change, as file text; caller frees. */
static char *s_patch(const char *path, const char *value)
{
    cJSON *root = cJSON_Parse(s_full);
    ASSERT(root != NULL);
    s_set(root, path, value);
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    ASSERT(text != NULL);
    return text;
}

typedef struct bad_case {
    const char *path;   /* what to change */
    const char *value;  /* JSON text, NULL to delete the key */
    const char *expect; /* a substring of the message (the key path when NULL) */
} bad_case_t;

/* Each case must fail with BS_ECONFIG, naming the file, the key path and what was expected. */
static void s_run_bad(const bad_case_t *cases, int n)
{
    for (int i = 0; i < n; i++) {
        char *text = s_patch(cases[i].path, cases[i].value);
        bs_config_t *cfg = NULL;
        bs_err_t err = {0};
        int rc = s_load_text(text, &cfg, &err);
        bs_free(text);
        if (getenv("BS_TEST_VERBOSE"))
            fprintf(stderr, "%s\n", err.msg);
        if (rc != BS_ECONFIG)
            fprintf(stderr, "case %s = %s: rc %d, msg: %s\n", cases[i].path,
                    cases[i].value ? cases[i].value : "(deleted)", rc, err.msg);
        ASSERT_EQ(BS_ECONFIG, rc);
        ASSERT(cfg == NULL);
        ASSERT_EQ(BS_ECONFIG, err.code);
        ASSERT_CONTAINS(err.msg, s_cfg_path);
        ASSERT_CONTAINS(err.msg, cases[i].expect ? cases[i].expect : cases[i].path);
        if (cases[i].value)
            ASSERT_CONTAINS(err.msg, "expected");
        else
            ASSERT_CONTAINS(err.msg, "required key missing");
    }
    s_no_leaks();
}

#define S_RUN_BAD(cases) s_run_bad(cases, (int)(sizeof cases / sizeof cases[0]))

/* ---- parsing: valid files ------------------------------------------------------------------ */

BS_TEST(full_config_values)
{
    s_setup();
    bs_config_t *cfg = NULL;
    bs_err_t err = {0};
    int rc = s_load_text(s_full, &cfg, &err);
    if (rc)
        fprintf(stderr, "%s\n", err.msg);
    ASSERT_OK(rc);
    ASSERT_STR_EQ(s_cfg_path, cfg->path);
    ASSERT_STR_EQ(s_full, cfg->text);
    ASSERT_STR_EQ("test-campaign_1.0", cfg->name);
    char want[600];
    snprintf(want, sizeof want, "%s/model.onnx", bs_test_tmpdir());
    ASSERT_STR_EQ(want, cfg->model);
    snprintf(want, sizeof want, "%s/data/eval-images.gz", bs_test_tmpdir());
    ASSERT_STR_EQ(want, cfg->eval.images);
    snprintf(want, sizeof want, "%s/data/eval-labels.gz", bs_test_tmpdir());
    ASSERT_STR_EQ(want, cfg->eval.labels);
    ASSERT_EQ(100, cfg->eval.count);
    snprintf(want, sizeof want, "%s/data/cal-images.gz", bs_test_tmpdir());
    ASSERT_STR_EQ(want, cfg->calibration.images);
    ASSERT(cfg->calibration.labels == NULL);
    ASSERT_EQ(32, cfg->calibration.count);

    char *pre = cJSON_PrintUnformatted(cfg->preprocess);
    ASSERT_STR_EQ("{\"scale\":0.5,\"mean\":[0.1,0.2,0.3],\"std\":[1,2,3],\"layout\":\"NHWC\","
                  "\"resize\":[32,48]}", pre);
    bs_free(pre);

    ASSERT_EQ(2, cfg->n_rules);
    ASSERT_STR_EQ("*", cfg->rules[0].match);
    ASSERT_EQ(3, cfg->rules[0].n_w);
    ASSERT_EQ(32, cfg->rules[0].w[0]);
    ASSERT_EQ(8, cfg->rules[0].w[1]);
    ASSERT_EQ(4, cfg->rules[0].w[2]);
    ASSERT_EQ(2, cfg->rules[0].n_a);
    ASSERT_EQ(32, cfg->rules[0].a[0]);
    ASSERT_EQ(8, cfg->rules[0].a[1]);
    ASSERT_STR_EQ("fc", cfg->rules[1].match);
    ASSERT_EQ(1, cfg->rules[1].n_w);
    ASSERT_EQ(16, cfg->rules[1].w[0]);
    ASSERT_EQ(1, cfg->rules[1].n_a); /* default ["fp32"] */
    ASSERT_EQ(32, cfg->rules[1].a[0]);

    ASSERT_EQ(2, cfg->n_objectives);
    ASSERT_STR_EQ("accuracy", cfg->objectives[0].metric);
    ASSERT_EQ(+1, cfg->objectives[0].goal);
    ASSERT_STR_EQ("latency_p90_ms", cfg->objectives[1].metric);
    ASSERT_EQ(-1, cfg->objectives[1].goal); /* the metric's default goal */

    ASSERT_EQ(2, cfg->n_constraints);
    ASSERT_STR_EQ("latency_p90_ms", cfg->constraints[0].metric);
    ASSERT(isnan(cfg->constraints[0].min));
    ASSERT_DBL_NEAR(4.0, cfg->constraints[0].max, 0);
    ASSERT_STR_EQ("accuracy", cfg->constraints[1].metric);
    ASSERT_DBL_NEAR(0.85, cfg->constraints[1].min, 0);
    ASSERT_DBL_NEAR(1.0, cfg->constraints[1].max, 0);

    ASSERT_STR_EQ("random", cfg->policy);
    ASSERT_EQ(42, cfg->seed);
    char *pol = cJSON_PrintUnformatted(cfg->policy_params);
    ASSERT_STR_EQ("{\"name\":\"random\",\"seed\":42}", pol);
    bs_free(pol);

    ASSERT_EQ(60, cfg->budget_evals);
    ASSERT_DBL_NEAR(1800.5, cfg->budget_wall_s, 0);

    ASSERT_STR_EQ("sim", cfg->backend);
    char *m = cJSON_PrintUnformatted(cfg->measure);
    ASSERT_STR_EQ("{\"backend\":\"sim\",\"warmup_runs\":2,\"min_runs\":10,\"min_time_ms\":100,"
                  "\"max_time_ms\":2000,\"warmup_min_ms\":100,\"cv_max\":0.05,\"remeasure_max\":2,"
                  "\"cooldown_ms\":0,\"energy_ms\":2000,\"idle_ms\":1000,\"profile_runs\":10,\"threads\":4,\"sim_delay_ms\":20,"
                  "\"sim_fail_rate\":0.1}", m);
    bs_free(m);

    ASSERT_EQ(2, cfg->n_tags);
    ASSERT_STR_EQ("jetson", cfg->tags[0]);
    ASSERT_STR_EQ("orin", cfg->tags[1]);
    ASSERT_EQ(500, cfg->heartbeat_ms);
    ASSERT_EQ(3, cfg->liveness);
    ASSERT_EQ(60000, cfg->lease_ms);
    ASSERT_EQ(2, cfg->max_attempts);

    char *q = cJSON_PrintUnformatted(cfg->quantization);
    ASSERT_STR_EQ("{\"weights\":\"minmax\",\"activations\":\"percentile\",\"percentile\":99.9}",
                  q);
    bs_free(q);
    ASSERT_EQ(1, cfg->sensitivity);
    ASSERT_EQ(2, cfg->n_sens_precs);
    ASSERT(bs_prec_eq((bs_prec_t){8, 8}, cfg->sens_precs[0]));
    ASSERT(bs_prec_eq((bs_prec_t){4, 32}, cfg->sens_precs[1]));
    ASSERT_EQ(50, cfg->sens_eval_count);

    bs_config_free(&cfg);
    ASSERT(cfg == NULL);
    bs_config_free(&cfg); /* NULL-safe */
    bs_config_free(NULL);
    s_no_leaks();
}

BS_TEST(defaults)
{
    s_setup();
    bs_config_t *cfg = NULL;
    bs_err_t err = {0};
    int rc = s_load_text(s_minimal, &cfg, &err);
    if (rc)
        fprintf(stderr, "%s\n", err.msg);
    ASSERT_OK(rc);
    ASSERT_STR_EQ("m", cfg->name);
    ASSERT(cfg->eval.labels == NULL);
    ASSERT_EQ(0, cfg->eval.count);
    ASSERT(cfg->calibration.images == NULL);
    ASSERT_EQ(0, cfg->calibration.count);
    char *pre = cJSON_PrintUnformatted(cfg->preprocess);
    ASSERT_STR_EQ("{\"scale\":0.00392156862745098,\"layout\":\"NCHW\"}", pre);
    bs_free(pre);
    ASSERT_EQ(1, cfg->n_rules);
    ASSERT_EQ(1, cfg->rules[0].n_a);
    ASSERT_EQ(32, cfg->rules[0].a[0]);
    ASSERT_EQ(2, cfg->n_objectives);
    ASSERT_EQ(+1, cfg->objectives[0].goal);
    ASSERT_EQ(-1, cfg->objectives[1].goal);
    ASSERT_EQ(0, cfg->n_constraints);
    ASSERT_STR_EQ("random", cfg->policy);
    ASSERT_EQ(1, cfg->seed);
    char *pol = cJSON_PrintUnformatted(cfg->policy_params);
    ASSERT_STR_EQ("{\"name\":\"random\",\"seed\":1}", pol);
    bs_free(pol);
    ASSERT_EQ(1, cfg->budget_evals);
    ASSERT_DBL_NEAR(0.0, cfg->budget_wall_s, 0);
    ASSERT_STR_EQ("engine", cfg->backend);
    char *m = cJSON_PrintUnformatted(cfg->measure);
    ASSERT_STR_EQ("{\"backend\":\"engine\",\"warmup_runs\":5,\"min_runs\":20,\"min_time_ms\":500,"
                  "\"max_time_ms\":10000,\"warmup_min_ms\":100,\"cv_max\":0.05,\"remeasure_max\":2,"
                  "\"cooldown_ms\":0,\"energy_ms\":2000,\"idle_ms\":1000,\"profile_runs\":10,\"threads\":1}", m);
    bs_free(m);
    ASSERT_EQ(0, cfg->n_tags);
    ASSERT_EQ(1000, cfg->heartbeat_ms);
    ASSERT_EQ(5, cfg->liveness);
    ASSERT_EQ(300000, cfg->lease_ms);
    ASSERT_EQ(3, cfg->max_attempts);
    char *q = cJSON_PrintUnformatted(cfg->quantization);
    ASSERT_STR_EQ("{\"weights\":\"mse\",\"activations\":\"minmax\"}", q);
    bs_free(q);
    ASSERT_EQ(0, cfg->sensitivity);
    ASSERT_EQ(0, cfg->n_sens_precs);
    bs_config_free(&cfg);
    s_no_leaks();
}

/* A campaign text from s_full with the given changes applied in order (path, JSON value or
 * NULL to delete, ...; NULL-terminated); loads it and returns the result code. */
static int s_load_patched(bs_config_t **cfg, bs_err_t *err, ...)
{
    cJSON *root = cJSON_Parse(s_full);
    ASSERT(root != NULL);
    va_list ap;
    va_start(ap, err);
    for (const char *path; (path = va_arg(ap, const char *)) != NULL;) {
        const char *value = va_arg(ap, const char *);
        s_set(root, path, value);
    }
    va_end(ap);
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    ASSERT(text != NULL);
    int rc = s_load_text(text, cfg, err);
    bs_free(text);
    return rc;
}

/* Seeding from sensitivity needs the sensitivity section; the hypervolume reference lands per
 * objective, NAN where not given. */
BS_TEST(policy_seeding_and_hv_reference)
{
    s_setup();
    bs_config_t *cfg = NULL;
    bs_err_t err = {0};
    ASSERT_OK(s_load_patched(&cfg, &err, "policy", "{\"name\": \"nsga2\", \"seed_from\": "
                             "\"sensitivity\", \"population\": 12}", "hypervolume",
                             "{\"reference\": {\"latency_p90_ms\": 2.5}}", NULL));
    ASSERT_STR_EQ("nsga2", cfg->policy);
    ASSERT(isnan(cfg->hv_ref[0]));
    ASSERT_DBL_NEAR(2.5, cfg->hv_ref[1], 0);
    bs_config_free(&cfg);
    ASSERT_EQ(BS_ECONFIG, s_load_patched(&cfg, &err, "policy", "{\"name\": \"haq\", "
                                         "\"seed_from\": \"sensitivity\"}", "sensitivity",
                                         NULL, NULL));
    ASSERT_CONTAINS(err.msg, "policy: seeding from sensitivity needs measurements: expected a "
                             "\"sensitivity\" section");
    ASSERT_EQ(BS_ECONFIG, s_load_patched(&cfg, &err, "policy", "{\"name\": \"sensitivity\", "
                                         "\"seed_from\": \"sensitivity\"}", NULL));
    ASSERT_CONTAINS(err.msg, "policy.seed_from: expected one of the keys name, seed, then, "
                             "levels, method");
    ASSERT_OK(s_load_patched(&cfg, &err, "policy", "{\"name\": \"sensitivity\", \"then\": "
                             "\"haq\", \"levels\": 4, \"warmup\": 5}", NULL));
    bs_config_free(&cfg);
    s_no_leaks();
}

/* quantization: defaults filled in, percentile only with the percentile method. */
BS_TEST(quantization_normalised)
{
    s_setup();
    static const struct {
        const char *value, *want;
    } cases[] = {
        {"{}", "{\"weights\":\"mse\",\"activations\":\"minmax\"}"},
        {"{\"weights\": \"minmax\"}", "{\"weights\":\"minmax\",\"activations\":\"minmax\"}"},
        {"{\"activations\": \"mse\"}", "{\"weights\":\"mse\",\"activations\":\"mse\"}"},
        {"{\"activations\": \"percentile\"}",
         "{\"weights\":\"mse\",\"activations\":\"percentile\",\"percentile\":99.99}"},
        {"{\"activations\": \"percentile\", \"percentile\": 100}",
         "{\"weights\":\"mse\",\"activations\":\"percentile\",\"percentile\":100}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bs_config_t *cfg = NULL;
        bs_err_t err = {0};
        int rc = s_load_patched(&cfg, &err, "quantization", cases[i].value, NULL);
        if (rc)
            fprintf(stderr, "%s\n", err.msg);
        ASSERT_OK(rc);
        char *q = cJSON_PrintUnformatted(cfg->quantization);
        ASSERT_STR_EQ(cases[i].want, q);
        bs_free(q);
        bs_config_free(&cfg);
    }
    s_no_leaks();
}

/* sensitivity without precisions: every non-fp32 choice of the rules, in rule order, once;
 * eval_count defaults to data.eval.count. */
BS_TEST(sensitivity_defaults)
{
    s_setup();
    bs_config_t *cfg = NULL;
    bs_err_t err = {0};
    int rc = s_load_patched(&cfg, &err, "sensitivity", "{}", NULL);
    if (rc)
        fprintf(stderr, "%s\n", err.msg);
    ASSERT_OK(rc);
    ASSERT_EQ(1, cfg->sensitivity);
    /* rule 0: {fp32, int8, int4} x {fp32, int8}; rule 1: {fp16} x {fp32} */
    static const char *const want[] = {"w32a8", "w8a32", "w8a8", "w4a32", "w4a8", "w16a32"};
    ASSERT_EQ(6, cfg->n_sens_precs);
    for (int i = 0; i < 6; i++) {
        char t[BS_PREC_TEXT_MAX];
        bs_prec_format(cfg->sens_precs[i], t);
        ASSERT_STR_EQ(want[i], t);
    }
    ASSERT_EQ(100, cfg->sens_eval_count);
    bs_config_free(&cfg);

    /* Rules that repeat choices list each once; eval_count 0 (all) is kept. */
    rc = s_load_patched(&cfg, &err, "sensitivity", "{\"eval_count\": 0}", "search_space",
                        "[{\"layers\": \"*\", \"weights\": [\"int8\", \"fp32\"]},"
                        " {\"layers\": \"fc\", \"weights\": [\"int8\"]}]",
                        NULL);
    ASSERT_OK(rc);
    ASSERT_EQ(1, cfg->n_sens_precs);
    ASSERT(bs_prec_eq((bs_prec_t){8, 32}, cfg->sens_precs[0]));
    ASSERT_EQ(0, cfg->sens_eval_count);
    bs_config_free(&cfg);

    /* Every precision there is, spelled out: 17 of them (w32a32 is the baseline). */
    rc = s_load_patched(&cfg, &err, "sensitivity.precisions",
                        "[\"w32a8\", \"w16a32\", \"w16a8\", \"w8a32\", \"w8a8\", \"w7a32\", "
                        "\"w7a8\", \"w6a32\", \"w6a8\", \"w5a32\", \"w5a8\", \"w4a32\", \"w4a8\", "
                        "\"w3a32\", \"w3a8\", \"w2a32\", \"w2a8\"]",
                        NULL);
    if (rc)
        fprintf(stderr, "%s\n", err.msg);
    ASSERT_OK(rc);
    ASSERT_EQ(17, cfg->n_sens_precs);
    bs_config_free(&cfg);

    /* A space of fp32 only offers nothing to measure: the precisions must be given. */
    rc = s_load_patched(&cfg, &err, "sensitivity", "{}", "search_space",
                        "[{\"layers\": \"*\", \"weights\": [\"fp32\"]}]", NULL);
    ASSERT_EQ(BS_ECONFIG, rc);
    ASSERT(cfg == NULL);
    ASSERT_CONTAINS(err.msg, s_cfg_path);
    ASSERT_CONTAINS(err.msg, "sensitivity.precisions: required key missing (the search space "
                             "offers no precision but fp32");
    s_no_leaks();
}

BS_TEST(bad_quantization_and_sensitivity)
{
    s_setup();
    static const bad_case_t cases[] = {
        {"quantization", "1", "quantization: expected an object"},
        {"quantization.weights", "\"max\"",
         "quantization.weights: expected one of mse, minmax; got \"max\""},
        {"quantization.weights", "8", NULL},
        {"quantization.activations", "\"kl\"",
         "quantization.activations: expected one of minmax, percentile, mse; got \"kl\""},
        {"quantization.percentile", "50",
         "quantization.percentile: expected a number in (50, 100]; got 50"},
        {"quantization.percentile", "100.5", NULL},
        {"quantization.percentile", "\"99\"", NULL},
        {"quantization.percentile", "1e999", NULL},
        {"quantization.bits", "8", "quantization.bits: expected one of the keys weights, "
                                   "activations, percentile; got unknown key \"bits\""},
        {"quantization.activations", "\"mse\"",
         "quantization.percentile: expected no percentile unless quantization.activations is "
         "\"percentile\" (it is \"mse\"); got 99.9"},
        {"sensitivity", "[]", "sensitivity: expected an object"},
        {"sensitivity", "true", NULL},
        {"sensitivity.precisions", "[]",
         "sensitivity.precisions: expected an array of 1 to 17 distinct precisions"},
        {"sensitivity.precisions", "\"w8a8\"", NULL},
        {"sensitivity.precisions", "[\"w8a8\", \"w9a8\"]",
         "sensitivity.precisions[1]: expected a precision wBaB other than w32a32"},
        {"sensitivity.precisions", "[\"w32a32\"]", "sensitivity.precisions[0]"},
        {"sensitivity.precisions", "[\"w8a16\"]", "got \"w8a16\""},
        {"sensitivity.precisions", "[\"int8\"]", "sensitivity.precisions[0]"},
        {"sensitivity.precisions", "[\"w8a8\", 4]", "sensitivity.precisions[1]"},
        {"sensitivity.precisions", "[\"w8a8\", \"w8a8\"]",
         "sensitivity.precisions[1]: expected a precision not already listed"},
        {"sensitivity.eval_count", "-1",
         "sensitivity.eval_count: expected an integer >= 0; got -1"},
        {"sensitivity.eval_count", "1.5", NULL},
        {"sensitivity.eval_count", "null", NULL},
        {"sensitivity.layers", "\"*\"",
         "sensitivity.layers: expected one of the keys precisions, eval_count"},
    };
    S_RUN_BAD(cases);
}

BS_TEST(sim_defaults_and_partial_objects)
{
    s_setup();
    const char *text =
        "{\"name\": \"m\", \"model\": \"model.onnx\",\n"
        " \"data\": {\"eval\": {\"images\": \"data/eval-images.gz\"},\n"
        "          \"calibration\": {\"images\": \"data/cal-images.gz\"},\n"
        "          \"preprocess\": {\"std\": [0.5]}},\n"
        " \"search_space\": [{\"layers\": \"*\", \"weights\": [\"int8\"]}],\n"
        " \"objectives\": [{\"metric\": \"accuracy\", \"goal\": \"min\"}],\n"
        " \"policy\": {\"seed\": 0},\n"
        " \"budget\": {\"evaluations\": 9007199254740992},\n"
        " \"measure\": {\"backend\": \"sim\"}, \"agents\": {}}\n";
    bs_config_t *cfg = NULL;
    bs_err_t err = {0};
    int rc = s_load_text(text, &cfg, &err);
    if (rc)
        fprintf(stderr, "%s\n", err.msg);
    ASSERT_OK(rc);
    ASSERT_EQ(256, cfg->calibration.count);
    ASSERT_EQ(-1, cfg->objectives[0].goal);
    ASSERT_EQ(0, cfg->seed);
    ASSERT_EQ(9007199254740992LL, cfg->budget_evals);
    char *pre = cJSON_PrintUnformatted(cfg->preprocess);
    ASSERT_STR_EQ("{\"std\":[0.5],\"scale\":0.00392156862745098,\"layout\":\"NCHW\"}", pre);
    bs_free(pre);
    char *pol = cJSON_PrintUnformatted(cfg->policy_params);
    ASSERT_STR_EQ("{\"seed\":0,\"name\":\"random\"}", pol);
    bs_free(pol);
    char *m = cJSON_PrintUnformatted(cfg->measure);
    ASSERT_STR_EQ("{\"backend\":\"sim\",\"warmup_runs\":5,\"min_runs\":20,\"min_time_ms\":500,"
                  "\"max_time_ms\":10000,\"warmup_min_ms\":100,\"cv_max\":0.05,\"remeasure_max\":2,"
                  "\"cooldown_ms\":0,\"energy_ms\":2000,\"idle_ms\":1000,\"profile_runs\":10,\"threads\":1,\"sim_delay_ms\":0,\"sim_fail_rate\":0}",
                  m);
    bs_free(m);
    bs_config_free(&cfg);
    s_no_leaks();
}

BS_TEST(parse_from_memory_and_relative_paths)
{
    s_setup();
    /* The campaign lives in <tmp>/sub/, its paths climb to <tmp>/ with "..". */
    char dir[600], path[600];
    snprintf(dir, sizeof dir, "%s/sub", bs_test_tmpdir());
    ASSERT_OK(mkdir(dir, 0755));
    snprintf(path, sizeof path, "%s/sub/c.json", bs_test_tmpdir());
    char *text = s_patch("model", "\"../model.onnx\"");
    cJSON *root = cJSON_Parse(text);
    bs_free(text);
    s_set(root, "data.eval.images", "\"../data/eval-images.gz\"");
    s_set(root, "data.eval.labels", "\"../data/eval-labels.gz\"");
    /* an absolute path is kept as it is */
    char abs[600], absq[620];
    snprintf(abs, sizeof abs, "%s/data/cal-images.gz", bs_test_tmpdir());
    snprintf(absq, sizeof absq, "\"%s\"", abs);
    s_set(root, "data.calibration.images", absq);
    text = cJSON_Print(root);
    cJSON_Delete(root);

    bs_config_t *cfg = NULL;
    bs_err_t err = {0};
    int rc = bs_config_parse(text, strlen(text), path, &cfg, &err);
    if (rc)
        fprintf(stderr, "%s\n", err.msg);
    ASSERT_OK(rc);
    char want[700];
    snprintf(want, sizeof want, "%s/sub/../model.onnx", bs_test_tmpdir());
    ASSERT_STR_EQ(want, cfg->model);
    snprintf(want, sizeof want, "%s/sub/../data/eval-labels.gz", bs_test_tmpdir());
    ASSERT_STR_EQ(want, cfg->eval.labels);
    ASSERT_STR_EQ(abs, cfg->calibration.images);
    ASSERT_STR_EQ(path, cfg->path);
    ASSERT_STR_EQ(text, cfg->text);
    bs_config_free(&cfg);

    /* The same text next to the data does not find "../model.onnx". */
    rc = s_load_text(text, &cfg, &err);
    ASSERT_EQ(BS_ECONFIG, rc);
    ASSERT_CONTAINS(err.msg, "model: expected a readable file; got \"../model.onnx\"");
    snprintf(want, sizeof want, "resolved to %s/../model.onnx", bs_test_tmpdir());
    ASSERT_CONTAINS(err.msg, want);
    bs_free(text);
    s_no_leaks();
}

/* ---- parsing: file-level errors ------------------------------------------------------------ */

BS_TEST(missing_file)
{
    char path[600];
    snprintf(path, sizeof path, "%s/nope.json", bs_test_tmpdir());
    bs_config_t *cfg = (bs_config_t *)&path; /* must be cleared */
    bs_err_t err = {0};
    ASSERT_EQ(BS_ENOENT, bs_config_load(path, &cfg, &err));
    ASSERT(cfg == NULL);
    ASSERT_CONTAINS(err.msg, path);
    s_no_leaks();
}

BS_TEST(too_big)
{
    s_setup();
    size_t n = BS_CONFIG_MAX_BYTES + 1;
    char *big = bs_malloc(n + 1);
    memset(big, ' ', n);
    big[n] = '\0';
    bs_config_t *cfg = NULL;
    bs_err_t err = {0};
    ASSERT_EQ(BS_ETOOBIG, bs_config_parse(big, n, "big.json", &cfg, &err));
    ASSERT_CONTAINS(err.msg, "big.json");
    ASSERT_EQ(BS_ETOOBIG, s_load_text(big, &cfg, &err));
    ASSERT_CONTAINS(err.msg, s_cfg_path);
    ASSERT(cfg == NULL);
    bs_free(big);
    s_no_leaks();
}

BS_TEST(syntax_error_line_column)
{
    s_setup();
    bs_config_t *cfg = NULL;
    bs_err_t err = {0};
    /* the stray "x" is on line 3, column 12 */
    ASSERT_EQ(BS_ECONFIG, s_load_text("{\n  \"name\": \"a\",\n  \"model\": x\n}\n", &cfg, &err));
    ASSERT_CONTAINS(err.msg, s_cfg_path);
    ASSERT_CONTAINS(err.msg, "line 3, column 12");
    ASSERT_CONTAINS(err.msg, "got \"x\"");
    /* a trailing comma: the error is at the closing brace (line 2, column 1) */
    ASSERT_EQ(BS_ECONFIG, s_load_text("{\"name\": \"a\",\n}", &cfg, &err));
    ASSERT_CONTAINS(err.msg, "line 2, column 1");
    /* truncated file */
    ASSERT_EQ(BS_ECONFIG, s_load_text("{\"name\": \"a\"", &cfg, &err));
    ASSERT_CONTAINS(err.msg, "line 1");
    /* empty file */
    ASSERT_EQ(BS_ECONFIG, s_load_text("", &cfg, &err));
    ASSERT_CONTAINS(err.msg, "line 1, column 1");
    ASSERT_CONTAINS(err.msg, "end of the file");
    /* garbage after the object */
    ASSERT_EQ(BS_ECONFIG, s_load_text("{}\n\n  {}", &cfg, &err));
    ASSERT_CONTAINS(err.msg, "line 3, column 3");
    /* a NUL byte inside */
    ASSERT_EQ(BS_ECONFIG, bs_config_parse("{\"a\"\0}", 6, "nul.json", &cfg, &err));
    ASSERT_CONTAINS(err.msg, "nul.json: line 1, column 5");
    /* top level not an object */
    ASSERT_EQ(BS_ECONFIG, s_load_text("[1, 2]", &cfg, &err));
    ASSERT_CONTAINS(err.msg, "expected a JSON object; got an array of 2 items");
    ASSERT(cfg == NULL);
    s_no_leaks();
}

BS_TEST(bad_arguments)
{
    bs_config_t *cfg = NULL;
    bs_err_t err = {0};
    ASSERT_EQ(BS_EINVAL, bs_config_parse(NULL, 3, "x.json", &cfg, &err));
    ASSERT_EQ(BS_EINVAL, bs_config_parse("{}", 2, "x.json", NULL, &err));
    ASSERT_EQ(BS_EINVAL, bs_config_load(NULL, &cfg, &err));
    /* NULL err is allowed */
    ASSERT_EQ(BS_ECONFIG, bs_config_parse("{}", 2, "x.json", &cfg, NULL));
    ASSERT_EQ(BS_ECONFIG, bs_config_parse(NULL, 0, "x.json", &cfg, &err));
    ASSERT_CONTAINS(err.msg, "x.json: line 1, column 1");
    s_no_leaks();
}

/* ---- parsing: one wrong key at a time ---------------------------------------------------- */

BS_TEST(bad_name_and_model)
{
    s_setup();
    static const bad_case_t cases[] = {
        {"name", "5", "name: expected a name of 1 to 64 characters"},
        {"name", "\"bad name!\"", "got \"bad name!\""},
        {"name", "\"\"", NULL},
        {"name", "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"", NULL},
        {"model", "3", "model: expected a path to a readable file"},
        {"model", "\"\"", NULL},
        {"model", "\"missing.onnx\"", "model: expected a readable file; got \"missing.onnx\""},
        {"model", "\"data\"", "not a regular file"},
    };
    S_RUN_BAD(cases);
}

BS_TEST(bad_data)
{
    s_setup();
    static const bad_case_t cases[] = {
        {"data", "[]", "data: expected an object"},
        {"data.eval", "\"x\"", NULL},
        {"data.eval.images", "1", NULL},
        {"data.eval.images", "\"nope.gz\"", "data.eval.images: expected a readable file"},
        {"data.eval.labels", "\"nope\"", "data.eval.labels"},
        {"data.eval.labels", "false", "data.eval.labels"},
        {"data.eval.count", "-1", "data.eval.count: expected an integer >= 0; got -1"},
        {"data.eval.count", "1.5", "got 1.5"},
        {"data.eval.count", "\"10\"", "got \"10\""},
        {"data.calibration", "1", NULL},
        {"data.calibration.images", "null", "got null"},
        {"data.calibration.count", "-3", NULL},
        {"data.preprocess", "\"x\"", NULL},
        {"data.preprocess.scale", "0", "data.preprocess.scale: expected a number > 0; got 0"},
        {"data.preprocess.scale", "\"x\"", NULL},
        {"data.preprocess.mean", "[]", "got an empty array"},
        {"data.preprocess.mean", "5", NULL},
        {"data.preprocess.mean", "[1, \"a\", 2]", "data.preprocess.mean[1]: expected a number"},
        {"data.preprocess.std", "[1, 0, 1]", "data.preprocess.std[1]: expected a number > 0"},
        {"data.preprocess.std", "[1, 2]", "as long as data.preprocess.mean (3 items)"},
        {"data.preprocess.layout", "\"CHW\"", "expected one of NCHW, NHWC; got \"CHW\""},
        {"data.preprocess.resize", "[1]", NULL},
        {"data.preprocess.resize", "[0, 5]", "data.preprocess.resize[0]"},
        {"data.preprocess.resize", "[5, 2.5]", "data.preprocess.resize[1]"},
    };
    S_RUN_BAD(cases);
}

BS_TEST(bad_search_space)
{
    s_setup();
    static const bad_case_t cases[] = {
        {"search_space", "{}", "search_space: expected a non-empty array of rules"},
        {"search_space", "[]", "got an empty array"},
        {"search_space[1]", "\"x\"", "search_space[1]: expected a rule object"},
        {"search_space[0].layers", "1", NULL},
        {"search_space[0].layers", "\"\"", NULL},
        {"search_space[0].weights", "[]", NULL},
        {"search_space[0].weights", "\"int8\"", NULL},
        {"search_space[0].weights", "[\"int8\", \"int9\"]",
         "search_space[0].weights[1]: expected one of fp32, fp16, int8, int7, int6, int5, int4, "
         "int3, int2; got \"int9\""},
        {"search_space[1].weights", "[\"int8\", \"int4\", \"int8\"]",
         "search_space[1].weights[2]: expected a precision not already listed"},
        {"search_space[0].activations", "[\"int4\"]",
         "search_space[0].activations[0]: expected one of fp32, int8; got \"int4\""},
        {"search_space[0].activations", "[]", NULL},
        {"search_space[0].activations", "[\"fp32\", \"fp32\"]", "activations[1]"},
    };
    S_RUN_BAD(cases);
}

BS_TEST(bad_objectives_and_constraints)
{
    s_setup();
    static const bad_case_t cases[] = {
        {"objectives", "[]", "objectives: expected an array of 1 to 4 objectives"},
        {"objectives", "\"x\"", NULL},
        {"objectives",
         "[{\"metric\":\"accuracy\"},{\"metric\":\"latency_min_ms\"},{\"metric\":\"energy_j\"},"
         "{\"metric\":\"weight_bytes\"},{\"metric\":\"arena_bytes\"}]",
         "got an array of 5 items"},
        {"objectives[0]", "3", NULL},
        {"objectives[1].metric", "\"latncy\"",
         "objectives[1].metric: expected one of accuracy, latency_min_ms, "},
        {"objectives[1].metric", "\"accuracy\"",
         "objectives[1].metric: expected a metric not already used by objectives[0]"},
        {"objectives[1].goal", "\"up\"", "objectives[1].goal: expected one of max, min"},
        {"constraints", "{}", "constraints: expected an array of at most 8"},
        {"constraints",
         "[{\"metric\":\"accuracy\",\"min\":0},{\"metric\":\"accuracy\",\"min\":0},"
         "{\"metric\":\"accuracy\",\"min\":0},{\"metric\":\"accuracy\",\"min\":0},"
         "{\"metric\":\"accuracy\",\"min\":0},{\"metric\":\"accuracy\",\"min\":0},"
         "{\"metric\":\"accuracy\",\"min\":0},{\"metric\":\"accuracy\",\"min\":0},"
         "{\"metric\":\"accuracy\",\"min\":0}]",
         "got an array of 9 items"},
        {"constraints[0].metric", "\"speed\"", "got \"speed\""},
        {"constraints[0].max", "\"4\"", "constraints[0].max: expected a number; got \"4\""},
        {"constraints[1].min", "2", "constraints[1].max: expected a number >= constraints[1].min"},
        {"constraints[0]", "{\"metric\": \"accuracy\"}",
         "constraints[0]: expected \"min\", \"max\" or both; got neither"},
        {"constraints[1]", "[]", NULL},
    };
    S_RUN_BAD(cases);
}

BS_TEST(bad_policy_and_budget)
{
    s_setup();
    static const bad_case_t cases[] = {
        {"policy", "\"random\"", "policy: expected an object"},
        {"policy.name", "\"nsga9\"",
         "policy.name: expected one of random, nsga2, haq, sensitivity; got \"nsga9\""},
        {"policy.name", "7", NULL},
        {"policy.seed", "-1", "policy.seed: expected an integer >= 0; got -1"},
        {"policy.seed", "1.5", NULL},
        {"policy.seed", "1e16", NULL},
        {"policy.population", "10",
         "policy.population: expected one of the keys name, seed, seed_from"},
        {"policy.seed_from", "\"sens\"", "policy.seed_from: expected \"sensitivity\"; got"},
        {"hypervolume", "[]", "hypervolume: expected an object"},
        {"hypervolume", "{\"refrence\": {}}",
         "hypervolume.refrence: expected one of the keys reference"},
        {"hypervolume", "{\"reference\": {\"energy_j\": 1}}",
         "hypervolume.reference.energy_j: expected the metric of an objective (accuracy, "
         "latency_p90_ms)"},
        {"hypervolume", "{\"reference\": {\"accuracy\": \"high\"}}",
         "hypervolume.reference.accuracy: expected a finite number; got \"high\""},
        {"budget", "5", "budget: expected an object"},
        {"budget.evaluations", "0", "budget.evaluations: expected an integer >= 1; got 0"},
        {"budget.evaluations", "2.5", NULL},
        {"budget.evaluations", "true", "got true"},
        {"budget.wall_time_s", "-1", "budget.wall_time_s: expected a number >= 0; got -1"},
        {"budget.wall_time_s", "\"x\"", NULL},
    };
    S_RUN_BAD(cases);
}

BS_TEST(bad_measure_and_agents)
{
    s_setup();
    static const bad_case_t cases[] = {
        {"measure", "1", "measure: expected an object"},
        {"measure.backend", "\"gpu\"", "measure.backend: expected one of engine, sim"},
        {"measure.backend", "\"engine\"",
         "measure.sim_delay_ms: expected no sim_delay_ms unless measure.backend is \"sim\""},
        {"measure.warmup_runs", "-1", "measure.warmup_runs: expected an integer in 0..100000"},
        {"measure.min_runs", "0", NULL},
        {"measure.min_time_ms", "-5", NULL},
        {"measure.max_time_ms", "0", "measure.max_time_ms: expected a number > 0"},
        {"measure.max_time_ms", "50", "expected a number >= measure.min_time_ms (100); got 50"},
        {"measure.threads", "0", NULL},
        {"measure.threads", "2.5", NULL},
        {"measure.sim_delay_ms", "-1", NULL},
        {"measure.sim_delay_ms", "1.5", NULL},
        {"measure.sim_fail_rate", "1.5", "measure.sim_fail_rate: expected a number in [0, 1]"},
        {"agents", "[]", "agents: expected an object"},
        {"agents.tags", "\"a\"", "agents.tags: expected an array of at most 16 tags"},
        {"agents.tags", "[\"ok\", \"a b\"]", "agents.tags[1]: expected a tag"},
        {"agents.tags", "[\"ok\", 3]", "agents.tags[1]"},
        {"agents.tags",
         "[\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\","
         "\"a\",\"a\",\"a\"]",
         "got an array of 17 items"},
        {"agents.heartbeat_ms", "5", "agents.heartbeat_ms: expected an integer in 10..60000"},
        {"agents.heartbeat_ms", "60001", NULL},
        {"agents.liveness", "0", NULL},
        {"agents.liveness", "101", NULL},
        {"agents.lease_ms", "99", "agents.lease_ms: expected an integer >= 100; got 99"},
        {"agents.lease_ms", "3000000000", NULL},
        {"agents.max_attempts", "0", NULL},
        {"agents.max_attempts", "21", NULL},
    };
    S_RUN_BAD(cases);
}

BS_TEST(min_time_above_default_max)
{
    s_setup();
    char *text = s_patch("measure.max_time_ms", NULL);
    cJSON *root = cJSON_Parse(text);
    bs_free(text);
    s_set(root, "measure.min_time_ms", "20000");
    text = cJSON_Print(root);
    cJSON_Delete(root);
    bs_config_t *cfg = NULL;
    bs_err_t err = {0};
    ASSERT_EQ(BS_ECONFIG, s_load_text(text, &cfg, &err));
    ASSERT_CONTAINS(err.msg, "measure.max_time_ms: expected a number >= measure.min_time_ms "
                             "(20000); got the default 10000");
    bs_free(text);
    s_no_leaks();
}

BS_TEST(unknown_keys)
{
    s_setup();
    static const bad_case_t cases[] = {
        {"nmae", "1", "nmae: expected one of the keys name, model, data, search_space, "
                      "objectives, constraints, policy, budget, measure, agents, quantization, "
                      "sensitivity, hypervolume; got unknown key \"nmae\""},
        {"data.evals", "{}", "data.evals: expected one of the keys eval, calibration, "
                             "preprocess; got unknown key \"evals\""},
        {"data.eval.extra", "1", NULL},
        {"data.calibration.labels", "\"data/eval-labels.gz\"", NULL},
        {"data.preprocess.order", "1", NULL},
        {"search_space[1].layer", "\"x\"", NULL},
        {"objectives[0].weight", "1", NULL},
        {"constraints[1].target", "1", NULL},
        {"policy.extra", "1", NULL},
        {"budget.hours", "1", NULL},
        {"measure.foo", "1", NULL},
        {"agents.x", "1", NULL},
    };
    S_RUN_BAD(cases);
}

BS_TEST(missing_required_keys)
{
    s_setup();
    static const bad_case_t cases[] = {
        {"name", NULL, NULL},
        {"model", NULL, NULL},
        {"data", NULL, NULL},
        {"data.eval", NULL, NULL},
        {"data.eval.images", NULL, NULL},
        {"data.calibration.images", NULL, NULL},
        {"search_space", NULL, NULL},
        {"search_space[0].layers", NULL, NULL},
        {"search_space[0].weights", NULL, NULL},
        {"objectives", NULL, NULL},
        {"objectives[1].metric", NULL, NULL},
        {"constraints[0].metric", NULL, NULL},
        {"budget", NULL, NULL},
        {"budget.evaluations", NULL,
         "budget.evaluations: required key missing (an integer >= 1)"},
    };
    S_RUN_BAD(cases);
}

BS_TEST(duplicate_keys_and_non_finite)
{
    s_setup();
    bs_config_t *cfg = NULL;
    bs_err_t err = {0};
    /* a key given twice */
    char *text = s_patch("budget", "{\"evaluations\": 5}");
    char *at = strstr(text, "\"evaluations\"");
    ASSERT(at != NULL);
    size_t len = strlen(text);
    char *dup = bs_malloc(len + 64);
    snprintf(dup, len + 64, "%.*s\"evaluations\": 7, %s", (int)(at - text), text, at);
    ASSERT_EQ(BS_ECONFIG, s_load_text(dup, &cfg, &err));
    ASSERT_CONTAINS(err.msg, "budget.evaluations: expected each key once");
    bs_free(dup);
    bs_free(text);
    /* a number that overflows to infinity */
    text = s_patch("budget.wall_time_s", "12345");
    at = strstr(text, "12345");
    ASSERT(at != NULL);
    dup = bs_malloc(strlen(text) + 64);
    snprintf(dup, strlen(text) + 64, "%.*s1e999%s", (int)(at - text), text, at + 5);
    ASSERT_EQ(BS_ECONFIG, s_load_text(dup, &cfg, &err));
    ASSERT_CONTAINS(err.msg, "budget.wall_time_s: expected a number >= 0; got inf");
    bs_free(dup);
    bs_free(text);
    ASSERT(cfg == NULL);
    s_no_leaks();
}

BS_TEST(long_and_odd_values_in_messages)
{
    s_setup();
    bs_config_t *cfg = NULL;
    bs_err_t err = {0};
    char key[400];
    memset(key, 'k', sizeof key - 1);
    key[sizeof key - 1] = '\0';
    char text[800];
    snprintf(text, sizeof text, "{\"%s\": 1}", key);
    ASSERT_EQ(BS_ECONFIG, s_load_text(text, &cfg, &err));
    ASSERT_CONTAINS(err.msg, "got unknown key \"kkkk");
    ASSERT_CONTAINS(err.msg, "...");
    ASSERT_EQ(BS_ECONFIG, s_load_text("{\"name\": \"a\\u0001b\\\"c\"}", &cfg, &err));
    ASSERT_CONTAINS(err.msg, "got \"a\\x01b\\\"c\"");
    ASSERT(strlen(err.msg) < BS_ERR_MSG_MAX);
    s_no_leaks();
}

/* ---- fault injection ----------------------------------------------------------------------- */

BS_TEST(alloc_failures)
{
    s_setup();
    s_write("campaign.json", s_full);
    int succeeded = 0;
    long n = 0;
    for (; n < 100000 && !succeeded; n++) {
        bs_config_t *cfg = NULL;
        bs_err_t err = {0};
        bs_alloc_fail_after(n);
        int rc = bs_config_load(s_cfg_path, &cfg, &err);
        bs_alloc_fail_after(-1);
        if (rc == 0) {
            succeeded = 1;
            ASSERT_STR_EQ("test-campaign_1.0", cfg->name);
            bs_config_free(&cfg);
        } else {
            if (rc != BS_ENOMEM && rc != BS_ECONFIG)
                fprintf(stderr, "n=%ld rc=%d %s\n", n, rc, err.msg);
            ASSERT(rc == BS_ENOMEM || rc == BS_ECONFIG);
            ASSERT(cfg == NULL);
            ASSERT_CONTAINS(err.msg, s_cfg_path);
        }
    }
    ASSERT(succeeded);
    ASSERT(n > 10); /* the walk did fail allocations along the way */
    s_no_leaks();
}

/* ---- search space -------------------------------------------------------------------------- */

static bs_layer_info_t s_layers[] = {
    {"conv1", "Conv", 80},
    {"conv2", "Conv", 1216},
    {"fc", "Gemm", 12345678901LL},
};
static bs_model_info_t s_model = {3, s_layers, 7, 0, 13, ""};

/* Loads a campaign whose search_space is the given JSON array. */
static bs_config_t *s_space_cfg(const char *space)
{
    char *text = s_patch("search_space", space);
    bs_config_t *cfg = NULL;
    bs_err_t err = {0};
    int rc = s_load_text(text, &cfg, &err);
    if (rc)
        fprintf(stderr, "%s\n", err.msg);
    ASSERT_OK(rc);
    bs_free(text);
    return cfg;
}

BS_TEST(space_overrides)
{
    s_setup();
    bs_config_t *cfg = s_space_cfg(
        "[{\"layers\": \"*\", \"weights\": [\"fp32\", \"int8\", \"int4\"],"
        "  \"activations\": [\"fp32\", \"int8\"]},"
        " {\"layers\": \"conv?\", \"weights\": [\"int8\"], \"activations\": [\"int8\"]},"
        " {\"layers\": \"fc\", \"weights\": [\"int2\", \"fp16\"]}]");
    bs_space_t s;
    bs_err_t err = {0};
    ASSERT_OK(bs_space_build(cfg, &s_model, &s, &err));
    ASSERT_EQ(3, s.n_layers);
    ASSERT_STR_EQ("conv1", s.layers[0].name);
    ASSERT_STR_EQ("Conv", s.layers[0].op_type);
    ASSERT_EQ(80, s.layers[0].n_params);
    ASSERT_EQ(1, s.layers[0].n_choices);
    ASSERT_EQ(8, s.layers[0].choices[0].w);
    ASSERT_EQ(8, s.layers[0].choices[0].a);
    ASSERT_EQ(1, s.layers[1].n_choices);
    ASSERT_EQ(2, s.layers[2].n_choices);
    ASSERT_EQ(2, s.layers[2].choices[0].w);
    ASSERT_EQ(32, s.layers[2].choices[0].a);
    ASSERT_EQ(16, s.layers[2].choices[1].w);
    ASSERT_DBL_NEAR(2.0, bs_space_size(&s), 0);
    ASSERT_STR_EQ("conv1", s.names[0]);
    ASSERT_STR_EQ("fc", s.names[2]);
    bs_prec_t precs[3] = {s.layers[0].choices[0], s.layers[1].choices[0],
                          s.layers[2].choices[1]};
    char *assign = bs_assign_format(s.names, precs, 3);
    ASSERT_STR_EQ("conv1=w8a8,conv2=w8a8,fc=w16a32", assign);
    bs_free(assign);
    char *json = bs_space_to_json(&s);
    ASSERT_STR_EQ("[{\"name\":\"conv1\",\"op\":\"Conv\",\"params\":80,\"choices\":[\"w8a8\"]},"
                  "{\"name\":\"conv2\",\"op\":\"Conv\",\"params\":1216,\"choices\":[\"w8a8\"]},"
                  "{\"name\":\"fc\",\"op\":\"Gemm\",\"params\":12345678901,"
                  "\"choices\":[\"w2a32\",\"w16a32\"]}]", json);
    bs_free(json);
    bs_space_free(&s);
    ASSERT_EQ(0, s.n_layers);
    bs_space_free(&s); /* twice is fine */
    bs_config_free(&cfg);
    s_no_leaks();
}

BS_TEST(space_cross_product_order_and_size)
{
    s_setup();
    bs_config_t *cfg = s_space_cfg(
        "[{\"layers\": \"*\", \"weights\": [\"int4\", \"fp32\", \"int8\"],"
        "  \"activations\": [\"int8\", \"fp32\"]}]");
    bs_space_t s;
    bs_err_t err = {0};
    ASSERT_OK(bs_space_build(cfg, &s_model, &s, &err));
    static const char *const want[] = {"w4a8", "w4a32", "w32a8", "w32a32", "w8a8", "w8a32"};
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ(6, s.layers[i].n_choices);
        for (int k = 0; k < 6; k++) {
            char t[BS_PREC_TEXT_MAX];
            bs_prec_format(s.layers[i].choices[k], t);
            ASSERT_STR_EQ(want[k], t);
        }
    }
    ASSERT_DBL_NEAR(216.0, bs_space_size(&s), 0);
    bs_space_free(&s);
    bs_config_free(&cfg);

    /* all 9 x 2 precisions on each layer: 18^3 */
    cfg = s_space_cfg("[{\"layers\": \"*\", \"weights\": [\"fp32\", \"fp16\", \"int8\", \"int7\","
                      "\"int6\", \"int5\", \"int4\", \"int3\", \"int2\"],"
                      " \"activations\": [\"fp32\", \"int8\"]}]");
    ASSERT_OK(bs_space_build(cfg, &s_model, &s, &err));
    ASSERT_EQ(BS_MAX_CHOICES, s.layers[1].n_choices);
    ASSERT_DBL_NEAR(5832.0, bs_space_size(&s), 0);
    bs_space_free(&s);
    bs_config_free(&cfg);
    s_no_leaks();
}

BS_TEST(space_unmatched_layers_stay_fp32)
{
    s_setup();
    bs_config_t *cfg = s_space_cfg("[{\"layers\": \"conv2\", \"weights\": [\"int8\", \"int4\"]}]");
    bs_space_t s;
    bs_err_t err = {0};
    ASSERT_OK(bs_space_build(cfg, &s_model, &s, &err));
    ASSERT_EQ(1, s.layers[0].n_choices);
    ASSERT(bs_prec_eq(BS_PREC_FP32, s.layers[0].choices[0]));
    ASSERT_EQ(2, s.layers[1].n_choices);
    ASSERT_EQ(1, s.layers[2].n_choices);
    ASSERT(bs_prec_eq(BS_PREC_FP32, s.layers[2].choices[0]));
    ASSERT_DBL_NEAR(2.0, bs_space_size(&s), 0);
    bs_space_free(&s);
    bs_config_free(&cfg);
    s_no_leaks();
}

BS_TEST(space_pattern_matching_no_layer)
{
    s_setup();
    bs_config_t *cfg = s_space_cfg("[{\"layers\": \"*\", \"weights\": [\"int8\"]},"
                                   " {\"layers\": \"fc1\", \"weights\": [\"int4\"]}]");
    bs_space_t s;
    memset(&s, 0xab, sizeof s);
    bs_err_t err = {0};
    ASSERT_EQ(BS_ECONFIG, bs_space_build(cfg, &s_model, &s, &err));
    ASSERT_CONTAINS(err.msg, s_cfg_path);
    ASSERT_CONTAINS(err.msg, "search_space[1].layers: \"fc1\" matches no layer; the model's "
                             "layers are: conv1, conv2, fc");
    ASSERT_EQ(0, s.n_layers);
    ASSERT(s.layers == NULL);
    bs_space_free(&s);
    bs_config_free(&cfg);

    /* a model without weight-bearing layers */
    cfg = s_space_cfg("[{\"layers\": \"*\", \"weights\": [\"int8\"]}]");
    bs_model_info_t empty = {0};
    ASSERT_EQ(BS_ECONFIG, bs_space_build(cfg, &empty, &s, &err));
    ASSERT_CONTAINS(err.msg, "search_space[0].layers: \"*\" matches no layer");
    bs_config_free(&cfg);
    s_no_leaks();
}

BS_TEST(space_long_layer_list_is_cut)
{
    s_setup();
    enum { N = 200 };
    bs_layer_info_t layers[N];
    char names[N][32];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "block%d/conv", i);
        layers[i] = (bs_layer_info_t){names[i], "Conv", 10};
    }
    bs_model_info_t model = {N, layers, N, 10 * N, 13, ""};
    bs_config_t *cfg = s_space_cfg("[{\"layers\": \"fc*\", \"weights\": [\"int8\"]}]");
    bs_space_t s;
    bs_err_t err = {0};
    ASSERT_EQ(BS_ECONFIG, bs_space_build(cfg, &model, &s, &err));
    ASSERT_CONTAINS(err.msg, "the model's layers are: block0/conv, block1/conv");
    ASSERT_CONTAINS(err.msg, "(200 layers in all)");
    bs_config_free(&cfg);
    s_no_leaks();
}

BS_TEST(space_json_deterministic)
{
    s_setup();
    bs_config_t *cfg = s_space_cfg(
        "[{\"layers\": \"*\", \"weights\": [\"fp16\", \"int6\"], \"activations\": [\"int8\"]}]");
    bs_space_t a, b;
    bs_err_t err = {0};
    ASSERT_OK(bs_space_build(cfg, &s_model, &a, &err));
    ASSERT_OK(bs_space_build(cfg, &s_model, &b, &err));
    char *ja = bs_space_to_json(&a);
    char *jb = bs_space_to_json(&b);
    ASSERT_STR_EQ(ja, jb);
    ASSERT_CONTAINS(ja, "{\"name\":\"conv2\",\"op\":\"Conv\",\"params\":1216,"
                        "\"choices\":[\"w16a8\",\"w6a8\"]}");
    ASSERT(strchr(ja, ' ') == NULL && strchr(ja, '\n') == NULL);
    bs_free(ja);
    bs_free(jb);
    bs_space_free(&a);
    bs_space_free(&b);
    bs_config_free(&cfg);
    s_no_leaks();
}

BS_TEST(space_alloc_failures)
{
    s_setup();
    bs_config_t *cfg = s_space_cfg("[{\"layers\": \"*\", \"weights\": [\"int8\", \"int4\"]}]");
    int built = 0, printed = 0;
    for (long n = 0; n < 10000 && !(built && printed); n++) {
        bs_space_t s;
        bs_err_t err = {0};
        bs_alloc_fail_after(n);
        int rc = bs_space_build(cfg, &s_model, &s, &err);
        bs_alloc_fail_after(-1);
        if (rc) {
            ASSERT_EQ(BS_ENOMEM, rc);
            ASSERT_EQ(0, s.n_layers);
            continue;
        }
        built = 1;
        bs_alloc_fail_after(n);
        char *json = bs_space_to_json(&s);
        bs_alloc_fail_after(-1);
        if (json)
            printed = 1;
        bs_free(json);
        bs_space_free(&s);
    }
    ASSERT(built && printed);
    bs_config_free(&cfg);
    s_no_leaks();
}

/* ---- the bundled campaigns ---------------------------------------------------------------- */

#ifdef BS_SRC_DIR
/* backend: the expected measure.backend; delay_ms: its sim_delay_ms (sim only). */
static void s_check_bundled(const char *file, const char *name, int64_t budget,
                            const char *backend, int delay_ms)
{
    char path[600];
    snprintf(path, sizeof path, "%s/configs/%s", BS_SRC_DIR, file);
    bs_config_t *cfg = NULL;
    bs_err_t err = {0};
    int rc = bs_config_load(path, &cfg, &err);
    if (rc)
        fprintf(stderr, "%s\n", err.msg);
    ASSERT_OK(rc);
    ASSERT_STR_EQ(name, cfg->name);
    ASSERT_EQ(budget, cfg->budget_evals);
    ASSERT_STR_EQ(backend, cfg->backend);
    if (strcmp(backend, "sim") == 0)
        ASSERT_EQ(delay_ms, cJSON_GetObjectItem(cfg->measure, "sim_delay_ms")->valuedouble);
    else
        ASSERT(cJSON_GetObjectItem(cfg->measure, "sim_delay_ms") == NULL);
    ASSERT_EQ(3, cfg->n_objectives);
    ASSERT_EQ(1000, cfg->eval.count);
    ASSERT_EQ(256, cfg->calibration.count);
    bs_model_info_t model;
    ASSERT_OK(bs_model_info_load(cfg->model, &model, &err));
    bs_space_t s;
    ASSERT_OK(bs_space_build(cfg, &model, &s, &err));
    ASSERT_EQ(model.n_layers, s.n_layers);
    for (int i = 0; i < s.n_layers; i++)
        ASSERT_EQ(14, s.layers[i].n_choices);
    bs_space_free(&s);
    bs_model_info_free(&model);
    bs_config_free(&cfg);
}
#endif

/* ---- sensitivity results against the campaign ----------------------------------------------- */

/* Checks the given "sensitivity" object text against s_full (precisions w8a8, w4a32) and the
 * three-layer space; returns the code, err filled. */
static int s_sens_check_text(const char *text, int n_rows, bs_sens_row_t *rows, bs_err_t *err)
{
    bs_config_t *cfg = NULL;
    ASSERT_OK(s_load_text(s_full, &cfg, err));
    bs_space_t sp;
    ASSERT_OK(bs_space_build(cfg, &s_model, &sp, err));
    cJSON *sens = cJSON_Parse(text);
    ASSERT(sens != NULL);
    bs_err_clear(err);
    int rc = bs_sens_check(cfg, &sp, sens, rows, n_rows, err);
    if (rc == 0) /* the strings are borrowed from sens: check them before it goes */
        for (int i = 0; i < n_rows; i++)
            ASSERT(rows[i].layer && rows[i].precision);
    cJSON_Delete(sens);
    bs_space_free(&sp);
    bs_config_free(&cfg);
    return rc;
}

#define S_SENS(rows)                                                                             \
    "{\"metric\": \"top1\", \"baseline\": 0.5, \"simulated\": false, \"rows\": [" rows "]}"

BS_TEST(sensitivity_result_check)
{
    s_setup();
    bs_sens_row_t rows[8];
    bs_err_t err = {0};
    ASSERT_OK(s_sens_check_text(
        S_SENS("{\"layer\": \"conv1\", \"precision\": \"w8a8\", \"value\": 0.25, "
               "\"delta\": -0.25},"
               "{\"layer\": \"fc\", \"precision\": \"w4a32\", \"value\": null, \"delta\": null,"
               " \"error\": \"EMODEL: no\"},"
               "{\"layer\": \"conv2\", \"precision\": \"w4a32\", \"value\": 0.5, \"delta\": 0}"),
        3, rows, &err));
    ASSERT_OK(s_sens_check_text(S_SENS(""), 0, rows, &err)); /* no rows is not an error */

    static const struct {
        const char *text, *needle;
    } bad[] = {
        {S_SENS("{\"layer\": \"conv3\", \"precision\": \"w8a8\", \"value\": 0.5, \"delta\": 0}"),
         "RESULT.sensitivity.rows[0].layer: expected a layer of the model (conv1, conv2, fc), "
         "got \"conv3\""},
        {S_SENS("{\"layer\": 3, \"precision\": \"w8a8\", \"value\": 0.5, \"delta\": 0}"),
         "rows[0].layer: expected a layer of the model (conv1, conv2, fc), got 3"},
        {S_SENS("{\"layer\": \"fc\", \"precision\": \"w2a8\", \"value\": 0.5, \"delta\": 0}"),
         "RESULT.sensitivity.rows[0].precision: expected one of the job's precisions (w8a8, "
         "w4a32), got \"w2a8\""},
        {S_SENS("{\"layer\": \"fc\", \"precision\": \"w8a9\", \"value\": 0.5, \"delta\": 0}"),
         "rows[0].precision: expected one of the job's precisions"},
        {S_SENS("{\"layer\": \"fc\", \"precision\": \"w8a8\", \"value\": 0.5, \"delta\": 0},"
                "{\"layer\": \"fc\", \"precision\": \"w8a8\", \"value\": 0.5, \"delta\": 0}"),
         "RESULT.sensitivity.rows[1]: expected each (layer, precision) once, got fc at w8a8 "
         "again"},
        {S_SENS("{\"layer\": \"fc\", \"precision\": \"w8a8\", \"value\": null, \"delta\": 0}"),
         "RESULT.sensitivity.rows[0].delta: expected null (value is null)"},
        {S_SENS("{\"layer\": \"fc\", \"precision\": \"w8a8\", \"value\": 0.5, \"delta\": null}"),
         "rows[0].delta: expected value - baseline, a number in [-1, 1] (value is a number)"},
        {S_SENS("{\"layer\": \"fc\", \"precision\": \"w8a8\", \"value\": 0.75, \"delta\": 0.2}"),
         "RESULT.sensitivity.rows[0].delta: expected value - baseline (0.25), got 0.2"},
        {S_SENS("{\"layer\": \"fc\", \"precision\": \"w8a8\", \"value\": 1.5, \"delta\": 1}"),
         "RESULT.sensitivity.rows[0].value: expected a number in [0, 1] or null"},
        {S_SENS("{\"layer\": \"fc\", \"precision\": \"w8a8\", \"value\": 0.5, \"delta\": 0,"
                " \"error\": 7}"),
         "RESULT.sensitivity.rows[0].error: expected a string"},
        {"{\"metric\": \"top1\", \"baseline\": 2, \"rows\": []}",
         "RESULT.sensitivity.baseline: expected a number in [0, 1]"},
        {"{\"metric\": 1, \"baseline\": 0.5, \"rows\": []}",
         "RESULT.sensitivity.metric: expected a string"},
        {"{\"metric\": \"top1\", \"baseline\": 0.5, \"rows\": {}}",
         "RESULT.sensitivity.rows: expected an array of 0 rows"},
        {"[]", "RESULT.sensitivity: expected an object"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int n = 0;
        cJSON *t = cJSON_Parse(bad[i].text);
        ASSERT(t != NULL);
        n = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(t, "rows"));
        cJSON_Delete(t);
        int rc = s_sens_check_text(bad[i].text, n, rows, &err);
        if (rc != BS_EPROTO || !strstr(err.msg, bad[i].needle))
            fprintf(stderr, "case %zu: rc %d: %s\n", i, rc, err.msg);
        ASSERT_EQ(BS_EPROTO, rc);
        ASSERT_CONTAINS(err.msg, bad[i].needle);
    }
    s_no_leaks();
}

/* The campaigns in configs/ load, against the bundled model and Debian's Fashion-MNIST data. */
BS_TEST(bundled_configs)
{
#ifdef BS_SRC_DIR
    if (access("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz", R_OK) != 0) {
        fprintf(stderr, "bundled_configs: skipped, dataset-fashion-mnist is not installed\n");
        return;
    }
    s_check_bundled("fmnist-cnn.json", "fmnist-cnn", 60, "engine", 0);
    s_check_bundled("sim-scale.json", "sim-scale", 2000, "sim", 0);
    s_no_leaks();
#endif
}

#define TESTS(X)                                                                                 \
    X(full_config_values)                                                                        \
    X(defaults)                                                                                  \
    X(quantization_normalised)                                                                   \
    X(sensitivity_defaults)                                                                      \
    X(policy_seeding_and_hv_reference)                                                           \
    X(bad_quantization_and_sensitivity)                                                          \
    X(sim_defaults_and_partial_objects)                                                          \
    X(parse_from_memory_and_relative_paths)                                                      \
    X(missing_file)                                                                              \
    X(too_big)                                                                                   \
    X(syntax_error_line_column)                                                                  \
    X(bad_arguments)                                                                             \
    X(bad_name_and_model)                                                                        \
    X(bad_data)                                                                                  \
    X(bad_search_space)                                                                          \
    X(bad_objectives_and_constraints)                                                            \
    X(bad_policy_and_budget)                                                                     \
    X(bad_measure_and_agents)                                                                    \
    X(min_time_above_default_max)                                                                \
    X(unknown_keys)                                                                              \
    X(missing_required_keys)                                                                     \
    X(duplicate_keys_and_non_finite)                                                             \
    X(long_and_odd_values_in_messages)                                                           \
    X(alloc_failures)                                                                            \
    X(space_overrides)                                                                           \
    X(space_cross_product_order_and_size)                                                        \
    X(space_unmatched_layers_stay_fp32)                                                          \
    X(space_pattern_matching_no_layer)                                                           \
    X(space_long_layer_list_is_cut)                                                              \
    X(space_json_deterministic)                                                                  \
    X(space_alloc_failures)                                                                      \
    X(sensitivity_result_check)                                                                  \
    X(bundled_configs)

BS_TEST_MAIN(TESTS)

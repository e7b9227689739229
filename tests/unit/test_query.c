/*
 * test_query.c - `bitscout query` end to end: a small database built through the store API,
 * then bs_query_main() run with each subcommand and format, its stdout and stderr captured in
 * files (dup2 over fds 1 and 2) and checked: table alignment markers and the simulated note,
 * CSV header and quoting, JSON that parses with the right rows, nulls and numbers, campaign
 * selection, the sensitivity rows, and the exit codes of usage errors.
 */
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bs_alloc.h"
#include "bs_query.h"
#include "bs_store.h"
#include "bs_test.h"
#include "bs_util.h"

static char s_out[1 << 16], s_err[1 << 14];

static const char *s_path(const char *name)
{
    static char path[2][512];
    static int k;
    k ^= 1;
    snprintf(path[k], sizeof path[k], "%s/%s", bs_test_tmpdir(), name);
    return path[k];
}

static void s_slurp(const char *path, char *dst, size_t size)
{
    char *text = NULL;
    size_t len = 0;
    ASSERT_OK(bs_read_file(path, size - 1, &text, &len, NULL));
    memcpy(dst, text, len + 1);
    bs_free(text);
}

/* Runs bs_query_main with the given arguments (argv[0] "query" is added); stdout and stderr
 * land in s_out and s_err. Returns the exit code. */
static int s_query(const char *const *args)
{
    char *argv[16];
    int argc = 0;
    argv[argc++] = "query";
    for (; *args; args++)
        argv[argc++] = (char *)*args;
    argv[argc] = NULL;
    char out_path[512], err_path[512];
    snprintf(out_path, sizeof out_path, "%s", s_path("stdout.txt"));
    snprintf(err_path, sizeof err_path, "%s", s_path("stderr.txt"));
    fflush(stdout);
    fflush(stderr);
    int saved_out = dup(1), saved_err = dup(2);
    int fo = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int fe = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ASSERT(saved_out >= 0 && saved_err >= 0 && fo >= 0 && fe >= 0);
    dup2(fo, 1);
    dup2(fe, 2);
    close(fo);
    close(fe);
    int rc = bs_query_main(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, 1);
    dup2(saved_err, 2);
    close(saved_out);
    close(saved_err);
    s_slurp(out_path, s_out, sizeof s_out);
    s_slurp(err_path, s_err, sizeof s_err);
    return rc;
}

static bs_metrics_t s_measured(double acc, double p90)
{
    bs_metrics_t m;
    bs_metrics_init(&m);
    m.accuracy = acc;
    snprintf(m.metric, sizeof m.metric, "top1");
    m.lat_median_ms = p90 * 0.8;
    m.lat_p90_ms = p90;
    m.lat_runs = 20;
    m.weight_bytes = 4096;
    m.energy_j = 0.00031;
    snprintf(m.energy_source, sizeof m.energy_source, "rapl");
    snprintf(m.backend, sizeof m.backend, "engine");
    return m;
}

static int64_t s_eval(bs_store_t *st, int64_t camp, int64_t agent, const char *assignment, int ok,
                      const bs_metrics_t *m)
{
    int64_t cfg = 0, eid = 0;
    ASSERT_OK(bs_store_config_add(st, camp, assignment, "random", &cfg));
    bs_eval_rec_t rec = {.campaign_id = camp,
                         .config_id = cfg,
                         .agent_id = agent,
                         .attempts = ok ? 1 : 3,
                         .ok = ok,
                         .m = *m,
                         .error_code = ok ? NULL : "EBACKEND",
                         .error_message = ok ? NULL : "kernel failed",
                         .fetch_ms = NAN,
                         .run_ms = NAN,
                         .started_ms = 1795795262123,
                         .finished_ms = 1795795263123};
    ASSERT_OK(bs_store_eval_add(st, &rec, &eid));
    return eid;
}

static int64_t s_campaign(bs_store_t *st, const char *name)
{
    bs_campaign_rec_t rec = {.name = name,
                             .config_path = "c.json",
                             .config_json = "{}",
                             .model_sha256 = "abc",
                             .space_json = "[]",
                             .policy = "random",
                             .seed = 1,
                             .budget = 10};
    int64_t id = 0;
    ASSERT_OK(bs_store_campaign_open(st, &rec, &id, NULL, NULL));
    return id;
}

/* c1: a measured row, a simulated row and a failed row (all unknowns), a front of two and
 * two progress points. With two_campaigns, c2 adds one measured row. */
static const char *s_build(int two_campaigns)
{
    const char *db = s_path("results.db");
    static char path[512];
    snprintf(path, sizeof path, "%s", db);
    bs_store_t *st = NULL;
    bs_err_t err = {0};
    ASSERT_OK(bs_store_open(path, 0, &st, &err));
    int64_t camp = s_campaign(st, "c1");
    bs_agent_rec_t a = {.uid = "uid-1",
                        .name = "local-1",
                        .arch = "x86_64",
                        .cpu = "cpu",
                        .cores = 4,
                        .mem_bytes = 1 << 30,
                        .tags = "x86",
                        .backends = "sim",
                        .device_json = "{\"os_release\": \"Debian GNU/Linux 12 (bookworm)\", "
                                       "\"governor\": \"performance\", \"cpu_max_mhz\": "
                                       "[{\"mhz\": 2400, \"cpus\": 4}], \"engine\": "
                                       "{\"float_kernels\": \"avx2\", \"int8_kernels\": "
                                       "\"avxvnni\"}}"};
    int64_t agent = 0;
    ASSERT_OK(bs_store_agent_upsert(st, &a, &agent));

    bs_metrics_t m1 = s_measured(0.8125, 2.5);
    int64_t e1 = s_eval(st, camp, agent, "conv1=w8a8,fc=w4a8", 1, &m1);
    bs_metrics_t m2 = s_measured(0.9, 4.0);
    m2.simulated = 1;
    snprintf(m2.backend, sizeof m2.backend, "sim");
    int64_t e2 = s_eval(st, camp, agent, "conv1=fp32,fc=fp32", 1, &m2);
    bs_metrics_t m3;
    bs_metrics_init(&m3);
    s_eval(st, camp, 0, "say \"hi\"", 0, &m3);
    int64_t front[] = {e1, e2};
    ASSERT_OK(bs_store_pareto_replace(st, camp, front, 2));
    ASSERT_OK(bs_store_progress_add(st, camp, 1, 1, NAN));
    ASSERT_OK(bs_store_progress_add(st, camp, 3, 2, 0.5));
    /* Sensitivity: simulated rows from two agent names, one row unmeasured. */
    bs_sens_row_t rows[] = {{"conv1", "w8a8", 0.905, -0.005, NULL},
                            {"conv1", "w4a32", NAN, NAN, "EUNSUPPORTED: no, \"int4\""},
                            {"fc", "w8a8", 0.91, 0, NULL}};
    bs_sens_rec_t sr = {camp, "local-2", "top1", 0.91, 1, 3, rows};
    ASSERT_OK(bs_store_sensitivity_add(st, &sr, &err));
    sr.agent = "local-1";
    ASSERT_OK(bs_store_sensitivity_add(st, &sr, &err));
    if (two_campaigns) {
        int64_t c2 = s_campaign(st, "c2");
        bs_sens_rec_t sr2 = {c2, "orin", "top1_agreement", 1, 0, 1, rows};
        ASSERT_OK(bs_store_sensitivity_add(st, &sr2, &err));
        bs_metrics_t m4 = s_measured(0.7, 1.0);
        int64_t e4 = s_eval(st, c2, agent, "conv1=w4a8,fc=w4a8", 1, &m4);
        ASSERT_OK(bs_store_pareto_replace(st, c2, &e4, 1));
        ASSERT_OK(bs_store_progress_add(st, c2, 1, 1, 0.25));
    }
    bs_store_close(&st);
    return path;
}

static int s_lines(const char *t)
{
    int n = 0;
    for (; *t; t++)
        n += *t == '\n';
    return n;
}

/* Parses s_out as a JSON array and checks its length; caller deletes. */
static cJSON *s_json(int rows)
{
    cJSON *arr = cJSON_Parse(s_out);
    if (!arr)
        bs_test_fail(__FILE__, __LINE__, "output is not JSON:\n%s", s_out);
    ASSERT(cJSON_IsArray(arr));
    ASSERT_EQ(rows, cJSON_GetArraySize(arr));
    return arr;
}

static double s_num(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsNumber(v))
        bs_test_fail(__FILE__, __LINE__, "%s is not a number", key);
    return v->valuedouble;
}

static const char *s_str(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsString(v))
        bs_test_fail(__FILE__, __LINE__, "%s is not a string", key);
    return v->valuestring;
}

BS_TEST(evals_table)
{
    const char *db = s_build(0);
    ASSERT_OK(s_query((const char *[]){"evals", "--db", db, NULL}));
    ASSERT_EQ(4 + 1, s_lines(s_out)); /* header, 3 rows, the note */
    ASSERT(strncmp(s_out, "eval_id  assignment", 19) == 0);
    ASSERT_CONTAINS(s_out, "energy_source");
    ASSERT_CONTAINS(s_out, "0.8125");
    ASSERT_CONTAINS(s_out, "0.00031"); /* small values keep 4 significant digits */
    ASSERT_CONTAINS(s_out, "EBACKEND");
    ASSERT_CONTAINS(s_out, "  -  "); /* NULL */
    ASSERT_CONTAINS(s_out, "note: rows marked simulated=1 come from the sim backend: synthetic "
                           "numbers, not measurements\n");
    ASSERT(strstr(s_out, "nan") == NULL);
    ASSERT_STR_EQ("", s_err);
    /* Every line of the table (not the note) has the same column starts: "assignment" starts
     * at the same offset in the header as the assignments in the rows. */
    const char *row = strchr(s_out, '\n') + 1;
    ASSERT(strncmp(row + 9, "conv1=w8a8,fc=w4a8", 18) == 0);
}

BS_TEST(table_without_simulated_rows_has_no_note)
{
    const char *db = s_build(1);
    ASSERT_OK(s_query((const char *[]){"evals", "--db", db, "--campaign", "c2", NULL}));
    ASSERT_EQ(2, s_lines(s_out));
    ASSERT(strstr(s_out, "note:") == NULL);
    ASSERT(strstr(s_out, "campaign") == NULL); /* one campaign picked: no campaign column */
}

BS_TEST(evals_csv)
{
    const char *db = s_build(0);
    ASSERT_OK(s_query((const char *[]){"evals", "--db", db, "--format", "csv", NULL}));
    const char *header = "eval_id,assignment,status,accuracy,latency_median_ms,latency_p90_ms,"
                         "weight_bytes,energy_j,energy_source,agent,attempts,error_code,"
                         "simulated\n";
    ASSERT(strncmp(s_out, header, strlen(header)) == 0);
    ASSERT_EQ(4, s_lines(s_out));
    ASSERT_CONTAINS(s_out,
                    ",\"conv1=w8a8,fc=w4a8\",ok,0.8125,2,2.5,4096,0.00031,rapl,local-1,1,,0\n");
    ASSERT_CONTAINS(s_out, ",\"say \"\"hi\"\"\",failed,,,,,,none,,3,EBACKEND,0\n");
    ASSERT(strstr(s_out, "note:") == NULL);
}

BS_TEST(evals_json)
{
    const char *db = s_build(0);
    ASSERT_OK(s_query((const char *[]){"evals", "--db", db, "--format=json", NULL}));
    cJSON *arr = s_json(3);
    const cJSON *r0 = cJSON_GetArrayItem(arr, 0), *r2 = cJSON_GetArrayItem(arr, 2);
    ASSERT_EQ(13, cJSON_GetArraySize(r0));
    ASSERT_DBL_NEAR(0.8125, s_num(r0, "accuracy"), 0);
    ASSERT_EQ(4096, s_num(r0, "weight_bytes"));
    ASSERT_STR_EQ("conv1=w8a8,fc=w4a8", s_str(r0, "assignment"));
    ASSERT_EQ(0, s_num(r0, "simulated"));
    ASSERT_EQ(1, s_num(cJSON_GetArrayItem(arr, 1), "simulated"));
    ASSERT(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(r2, "accuracy")));
    ASSERT(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(r2, "agent")));
    ASSERT(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(r2, "weight_bytes")));
    ASSERT_STR_EQ("failed", s_str(r2, "status"));
    ASSERT_STR_EQ("say \"hi\"", s_str(r2, "assignment"));
    ASSERT(s_num(r0, "eval_id") < s_num(r2, "eval_id"));
    cJSON_Delete(arr);
}

BS_TEST(pareto_order)
{
    const char *db = s_build(0);
    ASSERT_OK(s_query((const char *[]){"pareto", "--db", db, "--format", "json", NULL}));
    cJSON *arr = s_json(2);
    ASSERT_DBL_NEAR(0.9, s_num(cJSON_GetArrayItem(arr, 0), "accuracy"), 0);
    ASSERT_DBL_NEAR(0.8125, s_num(cJSON_GetArrayItem(arr, 1), "accuracy"), 0);
    cJSON_Delete(arr);
    ASSERT_OK(s_query((const char *[]){"pareto", "--db", db, NULL}));
    ASSERT_EQ(3 + 1, s_lines(s_out));
    ASSERT_CONTAINS(s_out, "note: rows marked simulated=1");
}

BS_TEST(campaigns_agents_progress)
{
    const char *db = s_build(0);
    ASSERT_OK(s_query((const char *[]){"campaigns", "--db", db, "--format", "json", NULL}));
    cJSON *arr = s_json(1);
    const cJSON *c = cJSON_GetArrayItem(arr, 0);
    ASSERT_STR_EQ("c1", s_str(c, "name"));
    ASSERT_STR_EQ("running", s_str(c, "status"));
    ASSERT_STR_EQ("random", s_str(c, "policy"));
    ASSERT_EQ(10, s_num(c, "budget"));
    ASSERT_EQ(3, s_num(c, "evaluations"));
    ASSERT_EQ(1, s_num(c, "failed"));
    ASSERT_EQ(2, s_num(c, "front_size"));
    ASSERT(s_str(c, "created_at")[0] == '2');
    ASSERT(s_str(c, "updated_at")[0] == '2');
    cJSON_Delete(arr);

    ASSERT_OK(s_query((const char *[]){"agents", "--db", db, "--format", "json", NULL}));
    arr = s_json(1);
    const cJSON *a = cJSON_GetArrayItem(arr, 0);
    ASSERT_STR_EQ("local-1", s_str(a, "name"));
    ASSERT_STR_EQ("uid-1", s_str(a, "uid"));
    ASSERT_EQ(2, s_num(a, "evaluations"));
    ASSERT_EQ(1 << 30, s_num(a, "mem_bytes"));
    ASSERT_STR_EQ("Debian GNU/Linux 12 (bookworm)", s_str(a, "os_release"));
    ASSERT_STR_EQ("performance", s_str(a, "governor"));
    ASSERT_STR_EQ("avx2/avxvnni", s_str(a, "kernels"));
    ASSERT_CONTAINS(s_str(a, "cpu_max_mhz"), "2400");
    ASSERT(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(a, "kernel"))); /* not reported */
    ASSERT_EQ(17, cJSON_GetArraySize(a));
    cJSON_Delete(arr);

    ASSERT_OK(s_query((const char *[]){"progress", "--db", db, "--format", "json", NULL}));
    arr = s_json(2);
    ASSERT(
        cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(arr, 0), "hypervolume")));
    ASSERT_DBL_NEAR(0.5, s_num(cJSON_GetArrayItem(arr, 1), "hypervolume"), 0);
    ASSERT_EQ(3, s_num(cJSON_GetArrayItem(arr, 1), "evaluations"));
    cJSON_Delete(arr);

    ASSERT_OK(s_query((const char *[]){"progress", "--db", db, "--format", "csv", NULL}));
    ASSERT(strncmp(s_out, "at,evaluations,front_size,hypervolume\n", 38) == 0);
    ASSERT_OK(s_query((const char *[]){"campaigns", "--db", db, NULL}));
    ASSERT(strncmp(s_out, "name  status", 12) == 0);
}

BS_TEST(several_campaigns)
{
    const char *db = s_build(1);
    ASSERT_OK(s_query((const char *[]){"evals", "--db", db, "--format", "json", NULL}));
    cJSON *arr = s_json(4);
    ASSERT_STR_EQ("c1", s_str(cJSON_GetArrayItem(arr, 0), "campaign"));
    ASSERT_STR_EQ("c2", s_str(cJSON_GetArrayItem(arr, 3), "campaign"));
    cJSON_Delete(arr);
    ASSERT_OK(s_query((const char *[]){"pareto", "--db", db, "--format", "csv", NULL}));
    ASSERT(strncmp(s_out, "campaign,eval_id,", 17) == 0);
    ASSERT_EQ(4, s_lines(s_out));
    ASSERT_OK(s_query(
        (const char *[]){"progress", "--db", db, "--format", "json", "--campaign", "c2", NULL}));
    arr = s_json(1);
    ASSERT(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(arr, 0), "campaign") == NULL);
    cJSON_Delete(arr);
    ASSERT_OK(s_query((const char *[]){"campaigns", "--db", db, "--format", "json", NULL}));
    arr = s_json(2);
    cJSON_Delete(arr);

    ASSERT_EQ(1, s_query((const char *[]){"evals", "--db", db, "--campaign", "nope", NULL}));
    ASSERT_CONTAINS(s_err, "no campaign named 'nope'");
    ASSERT_CONTAINS(s_err, "c1, c2");
    ASSERT_STR_EQ("", s_out);
}

BS_TEST(sensitivity_formats)
{
    const char *db = s_build(0);
    ASSERT_OK(s_query((const char *[]){"sensitivity", "--db", db, "--format", "csv", NULL}));
    const char *want = "agent,layer,precision,metric,baseline,value,delta,simulated,error\n"
                       "local-1,conv1,w8a8,top1,0.91,0.905,-0.005,1,\n"
                       "local-1,conv1,w4a32,top1,0.91,,,1,\"EUNSUPPORTED: no, \"\"int4\"\"\"\n"
                       "local-1,fc,w8a8,top1,0.91,0.91,0,1,\n"
                       "local-2,conv1,w8a8,top1,0.91,0.905,-0.005,1,\n"
                       "local-2,conv1,w4a32,top1,0.91,,,1,\"EUNSUPPORTED: no, \"\"int4\"\"\"\n"
                       "local-2,fc,w8a8,top1,0.91,0.91,0,1,\n";
    ASSERT_STR_EQ(want, s_out);
    ASSERT_STR_EQ("", s_err);

    ASSERT_OK(s_query((const char *[]){"sensitivity", "--db", db, NULL}));
    ASSERT_EQ(1 + 6 + 1, s_lines(s_out)); /* header, rows, the simulated note */
    ASSERT(strncmp(s_out, "agent    layer  precision  metric  baseline  value   delta", 58) ==
           0);
    ASSERT_CONTAINS(s_out, "note: rows marked simulated=1");
    ASSERT_CONTAINS(s_out, "-0.005");

    ASSERT_OK(s_query((const char *[]){"sensitivity", "--db", db, "--format", "json", NULL}));
    cJSON *arr = s_json(6);
    const cJSON *r0 = cJSON_GetArrayItem(arr, 0), *r1 = cJSON_GetArrayItem(arr, 1);
    ASSERT_EQ(9, cJSON_GetArraySize(r0));
    ASSERT_STR_EQ("local-1", s_str(r0, "agent"));
    ASSERT_STR_EQ("conv1", s_str(r0, "layer"));
    ASSERT_STR_EQ("w8a8", s_str(r0, "precision"));
    ASSERT_DBL_NEAR(0.905, s_num(r0, "value"), 0);
    ASSERT_DBL_NEAR(-0.005, s_num(r0, "delta"), 0);
    ASSERT_DBL_NEAR(0.91, s_num(r0, "baseline"), 0);
    ASSERT(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(r0, "error")));
    ASSERT(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(r1, "value")));
    ASSERT(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(r1, "delta")));
    ASSERT_STR_EQ("EUNSUPPORTED: no, \"int4\"", s_str(r1, "error"));
    cJSON_Delete(arr);
}

BS_TEST(sensitivity_campaigns)
{
    const char *db = s_build(1);
    ASSERT_OK(s_query((const char *[]){"sensitivity", "--db", db, "--format", "csv", NULL}));
    ASSERT(strncmp(s_out, "campaign,agent,layer,", 21) == 0);
    ASSERT_EQ(1 + 7, s_lines(s_out));
    ASSERT_CONTAINS(s_out, "\nc2,orin,conv1,w8a8,top1_agreement,1,0.905,-0.005,0,\n");
    ASSERT_OK(s_query((const char *[]){"sensitivity", "--db", db, "--campaign", "c2", "--format",
                                       "json", NULL}));
    cJSON *arr = s_json(1);
    ASSERT(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(arr, 0), "campaign") == NULL);
    ASSERT_EQ(0, s_num(cJSON_GetArrayItem(arr, 0), "simulated"));
    cJSON_Delete(arr);
    ASSERT_OK(s_query((const char *[]){"sensitivity", "--db", db, "--campaign", "c2", NULL}));
    ASSERT(strstr(s_out, "note:") == NULL); /* measured rows only */
    ASSERT_EQ(1, s_query((const char *[]){"sensitivity", "--db", db, "--campaign", "c3", NULL}));
    ASSERT_CONTAINS(s_err, "no campaign named 'c3'");
}

BS_TEST(missing_database)
{
    char db[512];
    snprintf(db, sizeof db, "%s", s_path("none.db"));
    ASSERT_EQ(1, s_query((const char *[]){"evals", "--db", db, NULL}));
    ASSERT_CONTAINS(s_err, db);
    ASSERT_CONTAINS(s_err, "no such database; run `bitscout search` first or pass --db");
    ASSERT(access(db, F_OK) != 0); /* not created */
    ASSERT_OK(chdir(bs_test_tmpdir()));
    ASSERT_EQ(1, s_query((const char *[]){"campaigns", NULL}));
    ASSERT_CONTAINS(s_err,
                    "results.db: no such database; run `bitscout search` first or pass --db");
}

BS_TEST(usage_errors)
{
    const char *db = s_build(0);
    const char *const *bad[] = {
        (const char *[]){NULL},
        (const char *[]){"everything", "--db", "x", NULL},
        (const char *[]){"evals", "--verbose", NULL},
        (const char *[]){"evals", "--format", "xml", NULL},
        (const char *[]){"evals", "--db", NULL},
        (const char *[]){"evals", "pareto", NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = s_query(bad[i]);
        if (rc != 2)
            bs_test_fail(__FILE__, __LINE__, "case %zu: expected 2, got %d", i, rc);
        ASSERT_CONTAINS(s_err, "usage: bitscout query");
    }
    ASSERT_EQ(2, s_query((const char *[]){"evals", "--format", "xml", "--db", db, NULL}));
    ASSERT_CONTAINS(s_err, "unknown format 'xml'");
    ASSERT_EQ(2, s_query((const char *[]){"evls", NULL}));
    ASSERT_CONTAINS(s_err, "unknown subcommand 'evls'");
    ASSERT_EQ(2, s_query((const char *[]){"evals", "--verbose", NULL}));
    ASSERT_CONTAINS(s_err, "unknown option '--verbose'");
    ASSERT_OK(s_query((const char *[]){"--help", NULL}));
    ASSERT_CONTAINS(s_out, "usage: bitscout query");
}

#define TESTS(X)                                                                                  \
    X(evals_table)                                                                                \
    X(table_without_simulated_rows_has_no_note)                                                   \
    X(evals_csv)                                                                                  \
    X(evals_json)                                                                                 \
    X(pareto_order)                                                                               \
    X(campaigns_agents_progress)                                                                  \
    X(several_campaigns)                                                                          \
    X(sensitivity_formats)                                                                        \
    X(sensitivity_campaigns)                                                                      \
    X(missing_database)                                                                           \
    X(usage_errors)

BS_TEST_MAIN(TESTS)

/*
 * test_store.c - the results database: schema and migrations, campaign/agent/config/eval
 * records and their conflicts, NULL for unknown values, the walks, the user-facing views,
 * sensitivity rows (whole jobs, per agent name) and the migration that added them, a
 * concurrent reader, read-only opens and allocation failures.
 *
 * Each test works in its own temporary directory (bs_test_tmpdir()) and checks the file with
 * the plain SQLite API where the point is what a user running sqlite3 would see.
 */
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "bs_alloc.h"
#include "bs_store.h"
#include "bs_test.h"

static const char *s_db_path(const char *name)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", bs_test_tmpdir(), name);
    return path;
}

/* Writes text to the file `name` in the temp dir; returns its path (s_db_path's buffer). */
static const char *s_db_file(const char *name, const char *text)
{
    const char *path = s_db_path(name);
    FILE *f = fopen(path, "wb");
    ASSERT(f != NULL);
    fputs(text, f);
    fclose(f);
    return path;
}

static bs_campaign_rec_t s_campaign(const char *name)
{
    bs_campaign_rec_t rec = {
        .name = name,
        .config_path = "campaign.json",
        .config_json = "{\"name\": \"x\"}",
        .model_sha256 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        .space_json = "[{\"layer\": \"conv1\", \"choices\": [\"w8a8\", \"w4a8\"]}]",
        .policy = "random",
        .seed = 42,
        .budget = 100,
    };
    return rec;
}

/* A measured result with every value known. */
static bs_metrics_t s_full_metrics(double acc)
{
    bs_metrics_t m;
    bs_metrics_init(&m);
    m.accuracy = acc;
    snprintf(m.metric, sizeof m.metric, "top1");
    m.lat_min_ms = 1.25;
    m.lat_median_ms = 1.5;
    m.lat_mean_ms = 1.625;
    m.lat_p90_ms = 2.0;
    m.lat_p99_ms = 2.5;
    m.lat_std_ms = 0.125;
    m.lat_cv = 0.0769;
    m.lat_runs = 50;
    m.weight_bytes = 123456;
    m.arena_bytes = 65536;
    m.peak_rss_bytes = 10485760;
    m.energy_j = 0.0031;
    snprintf(m.energy_source, sizeof m.energy_source, "rapl");
    m.simulated = 0;
    snprintf(m.backend, sizeof m.backend, "engine");
    return m;
}

static int64_t s_add_eval(bs_store_t *st, int64_t camp, int64_t cfg, int64_t agent,
                          const bs_metrics_t *m)
{
    bs_eval_rec_t rec = {
        .campaign_id = camp,
        .config_id = cfg,
        .agent_id = agent,
        .attempts = 1,
        .ok = 1,
        .m = *m,
        .started_ms = 1795795262123,
        .finished_ms = 1795795263456,
        .fetch_ms = 3.5,
        .run_ms = 120.0,
        .result_json = "{\"type\": \"RESULT\", \"metrics\": {\"run\": {\"threads\": 2, "
                       "\"cpus\": \"0-1\", \"unstable\": false, \"throttled\": true, "
                       "\"engine\": \"bitscout-engine 0.1.0 avx2/avxvnni\"}}}",
    };
    int64_t id = 0;
    ASSERT_OK(bs_store_eval_add(st, &rec, &id));
    ASSERT(id > 0);
    return id;
}

/* A store with one campaign, one agent and one config; returns the ids. */
static bs_store_t *s_fixture(int64_t *camp, int64_t *agent, int64_t *cfg)
{
    bs_store_t *st = NULL;
    bs_err_t err = {0};
    ASSERT_OK(bs_store_open(s_db_path("results.db"), 0, &st, &err));
    bs_campaign_rec_t rec = s_campaign("c1");
    int resumed = -1;
    ASSERT_OK(bs_store_campaign_open(st, &rec, camp, &resumed, &err));
    ASSERT_EQ(0, resumed);
    bs_agent_rec_t a = {.uid = "agent-uid-1",
                        .name = "local-1",
                        .version = "0.1.0",
                        .arch = "x86_64",
                        .cpu = "test cpu",
                        .os = "linux",
                        .cores = 4,
                        .mem_bytes = 8LL << 30,
                        .tags = "x86,test",
                        .backends = "sim,engine",
                        .device_json = "{}"};
    if (agent)
        ASSERT_OK(bs_store_agent_upsert(st, &a, agent));
    if (cfg)
        ASSERT_OK(bs_store_config_add(st, *camp, "conv1=w8a8,fc=w4a8", "random", cfg));
    return st;
}

static int64_t s_scalar(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *s = NULL;
    ASSERT_EQ(SQLITE_OK, sqlite3_prepare_v2(db, sql, -1, &s, NULL));
    ASSERT_EQ(SQLITE_ROW, sqlite3_step(s));
    int64_t v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

BS_TEST(create_and_reopen)
{
    int64_t camp = 0, agent = 0, cfg = 0;
    bs_store_t *st = s_fixture(&camp, &agent, &cfg);
    bs_metrics_t m = s_full_metrics(0.75);
    int64_t eid = s_add_eval(st, camp, cfg, agent, &m);
    bs_store_close(&st);
    ASSERT(st == NULL);
    bs_store_close(&st); /* NULL-safe */

    bs_err_t err = {0};
    ASSERT_OK(bs_store_open(s_db_path("results.db"), 0, &st, &err));
    int64_t n = -1;
    ASSERT_OK(bs_store_eval_count(st, camp, &n));
    ASSERT_EQ(1, n);
    bs_campaign_rec_t rec = s_campaign("c1");
    int64_t camp2 = 0;
    int resumed = 0;
    ASSERT_OK(bs_store_campaign_open(st, &rec, &camp2, &resumed, &err));
    ASSERT_EQ(camp, camp2);
    ASSERT_EQ(1, resumed);
    ASSERT_EQ(eid, s_scalar(bs_store_db(st), "SELECT max(id) FROM evaluations"));
    sqlite3_stmt *s = NULL;
    ASSERT_EQ(SQLITE_OK, sqlite3_prepare_v2(bs_store_db(st), "PRAGMA journal_mode", -1, &s, NULL));
    ASSERT_EQ(SQLITE_ROW, sqlite3_step(s));
    ASSERT_STR_EQ("wal", (const char *)sqlite3_column_text(s, 0));
    sqlite3_finalize(s);
    ASSERT_EQ(1, s_scalar(bs_store_db(st), "PRAGMA foreign_keys"));
    ASSERT_EQ(1, s_scalar(bs_store_db(st), "PRAGMA synchronous")); /* NORMAL */
    bs_store_close(&st);
}

BS_TEST(schema_version)
{
    bs_store_t *st = NULL;
    bs_err_t err = {0};
    ASSERT_OK(bs_store_open(s_db_path("v.db"), 0, &st, &err));
    ASSERT_EQ(BS_STORE_SCHEMA_VERSION, bs_store_schema_version(st));
    ASSERT_EQ(BS_STORE_SCHEMA_VERSION, s_scalar(bs_store_db(st), "PRAGMA user_version"));
    bs_store_close(&st);
}

BS_TEST(newer_schema_refused)
{
    const char *path = s_db_path("new.db");
    bs_store_t *st = NULL;
    bs_err_t err = {0};
    ASSERT_OK(bs_store_open(path, 0, &st, &err));
    bs_store_close(&st);
    sqlite3 *db = NULL;
    ASSERT_EQ(SQLITE_OK, sqlite3_open(path, &db));
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", BS_STORE_SCHEMA_VERSION + 1);
    ASSERT_EQ(SQLITE_OK, sqlite3_exec(db, sql, NULL, NULL, NULL));
    sqlite3_close(db);

    char want[128];
    snprintf(want, sizeof want, "schema version %d is newer than this bitscout (%d); upgrade",
             BS_STORE_SCHEMA_VERSION + 1, BS_STORE_SCHEMA_VERSION);
    for (int ro = 0; ro <= 1; ro++) {
        bs_err_clear(&err);
        ASSERT_EQ(BS_EDB, bs_store_open(path, ro, &st, &err));
        ASSERT(st == NULL);
        ASSERT_CONTAINS(err.msg, want);
        ASSERT_CONTAINS(err.msg, "new.db");
    }
}

BS_TEST(campaign_open_resume_conflict)
{
    bs_store_t *st = NULL;
    bs_err_t err = {0};
    ASSERT_OK(bs_store_open(s_db_path("c.db"), 0, &st, &err));
    bs_campaign_rec_t rec = s_campaign("resnet");
    int64_t id1 = 0, id2 = 0;
    int resumed = -1;
    ASSERT_OK(bs_store_campaign_open(st, &rec, &id1, &resumed, &err));
    ASSERT_EQ(0, resumed);

    rec.budget = 500; /* a resume may raise the budget */
    rec.config_json = "{\"name\": \"y\"}";
    ASSERT_OK(bs_store_campaign_open(st, &rec, &id2, &resumed, &err));
    ASSERT_EQ(1, resumed);
    ASSERT_EQ(id1, id2);
    ASSERT_EQ(500, s_scalar(bs_store_db(st), "SELECT budget FROM campaigns"));
    ASSERT_EQ(1, s_scalar(bs_store_db(st), "SELECT count(*) FROM campaigns"));

    bs_campaign_rec_t other = s_campaign("resnet");
    other.model_sha256 = "ffff456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    ASSERT_EQ(BS_EEXIST, bs_store_campaign_open(st, &other, &id2, &resumed, &err));
    ASSERT_CONTAINS(err.msg, "resnet");
    ASSERT_CONTAINS(err.msg, "choose another campaign name or database");

    other = s_campaign("resnet");
    other.space_json = "[]";
    bs_err_clear(&err);
    ASSERT_EQ(BS_EEXIST, bs_store_campaign_open(st, &other, &id2, &resumed, &err));
    ASSERT_CONTAINS(err.msg, "search space");
    ASSERT_CONTAINS(err.msg, "choose another campaign name or database");

    /* A different name is a different campaign; the conflict left nothing half-written. */
    other.name = "resnet-2";
    ASSERT_OK(bs_store_campaign_open(st, &other, &id2, &resumed, &err));
    ASSERT_NE(id1, id2);
    ASSERT_EQ(2, s_scalar(bs_store_db(st), "SELECT count(*) FROM campaigns"));
    ASSERT_EQ(1, sqlite3_get_autocommit(bs_store_db(st)));

    ASSERT_OK(bs_store_campaign_set_status(st, id1, "done"));
    ASSERT_EQ(1,
              s_scalar(bs_store_db(st), "SELECT count(*) FROM campaigns WHERE status = 'done'"));
    ASSERT_EQ(BS_ENOENT, bs_store_campaign_set_status(st, 9999, "done"));
    bs_store_close(&st);
}

BS_TEST(campaign_open_inside_transaction)
{
    bs_store_t *st = NULL;
    bs_err_t err = {0};
    ASSERT_OK(bs_store_open(s_db_path("t.db"), 0, &st, &err));
    ASSERT_OK(bs_store_begin(st));
    bs_campaign_rec_t rec = s_campaign("a");
    int64_t id = 0;
    int resumed = 0;
    ASSERT_OK(bs_store_campaign_open(st, &rec, &id, &resumed, &err));
    rec.model_sha256 = "other";
    ASSERT_EQ(BS_EEXIST, bs_store_campaign_open(st, &rec, &id, &resumed, &err));
    ASSERT_EQ(0, sqlite3_get_autocommit(bs_store_db(st))); /* still the caller's transaction */
    bs_store_rollback(st);
    ASSERT_EQ(0, s_scalar(bs_store_db(st), "SELECT count(*) FROM campaigns"));
    bs_store_close(&st);
}

BS_TEST(agent_upsert)
{
    int64_t camp = 0, a1 = 0, a2 = 0;
    bs_store_t *st = s_fixture(&camp, &a1, NULL);
    bs_agent_rec_t a = {.uid = "agent-uid-1", .name = "renamed", .cores = 8, .mem_bytes = -1};
    ASSERT_OK(bs_store_agent_upsert(st, &a, &a2));
    ASSERT_EQ(a1, a2);
    sqlite3 *db = bs_store_db(st);
    ASSERT_EQ(1, s_scalar(db, "SELECT count(*) FROM agents"));
    ASSERT_EQ(8, s_scalar(db, "SELECT cores FROM agents"));
    ASSERT_EQ(1, s_scalar(db, "SELECT name = 'renamed' AND mem_bytes IS NULL FROM agents"));
    ASSERT_EQ(1, s_scalar(db, "SELECT first_seen <= last_seen FROM agents"));

    bs_agent_rec_t b = {.uid = "agent-uid-2", .name = "other", .mem_bytes = 1024};
    int64_t a3 = 0;
    ASSERT_OK(bs_store_agent_upsert(st, &b, &a3));
    ASSERT_NE(a1, a3);
    ASSERT_OK(bs_store_agent_seen(st, a3, "lost"));
    ASSERT_EQ(1, s_scalar(db, "SELECT count(*) FROM agents WHERE state = 'lost'"));
    ASSERT_OK(bs_store_agent_seen(st, a3, NULL)); /* keeps the state */
    ASSERT_EQ(1, s_scalar(db, "SELECT count(*) FROM agents WHERE state = 'lost'"));
    ASSERT_EQ(BS_ENOENT, bs_store_agent_seen(st, 777, "online"));
    bs_store_close(&st);
}

BS_TEST(config_duplicate)
{
    int64_t camp = 0, cfg = 0, again = 0, other = 0;
    bs_store_t *st = s_fixture(&camp, NULL, &cfg);
    ASSERT_EQ(BS_EEXIST, bs_store_config_add(st, camp, "conv1=w8a8,fc=w4a8", "nsga2", &again));
    ASSERT_EQ(cfg, again);
    ASSERT_OK(bs_store_config_add(st, camp, "conv1=w4a8,fc=w4a8", NULL, &other));
    ASSERT_NE(cfg, other);
    ASSERT_EQ(2, s_scalar(bs_store_db(st), "SELECT count(*) FROM configs"));
    /* The same assignment in another campaign is another config. */
    bs_campaign_rec_t rec = s_campaign("c2");
    int64_t camp2 = 0, cfg2 = 0;
    ASSERT_OK(bs_store_campaign_open(st, &rec, &camp2, NULL, NULL));
    ASSERT_OK(bs_store_config_add(st, camp2, "conv1=w8a8,fc=w4a8", NULL, &cfg2));
    ASSERT_NE(cfg, cfg2);
    /* An unknown campaign is refused by the foreign key, as a database error. */
    ASSERT_EQ(BS_EDB, bs_store_config_add(st, 4242, "x", NULL, &cfg2));
    bs_store_close(&st);
}

BS_TEST(eval_duplicate)
{
    int64_t camp = 0, agent = 0, cfg = 0;
    bs_store_t *st = s_fixture(&camp, &agent, &cfg);
    bs_metrics_t m = s_full_metrics(0.5);
    int64_t eid = s_add_eval(st, camp, cfg, agent, &m);
    bs_eval_rec_t late = {
        .campaign_id = camp, .config_id = cfg, .agent_id = agent, .attempts = 2, .ok = 1, .m = m};
    int64_t eid2 = -5;
    ASSERT_EQ(BS_EEXIST, bs_store_eval_add(st, &late, &eid2));
    ASSERT_EQ(-5, eid2);
    int64_t n = 0;
    ASSERT_OK(bs_store_eval_count(st, camp, &n));
    ASSERT_EQ(1, n);
    ASSERT_EQ(eid, s_scalar(bs_store_db(st), "SELECT id FROM evaluations"));
    ASSERT_OK(bs_store_attempt_add(st, camp, cfg, agent, 1, "ok", NULL, NULL, 1795795262123,
                                   1795795263456));
    ASSERT_OK(bs_store_attempt_add(st, camp, cfg, agent, 2, "late", NULL, NULL, 0, 0));
    ASSERT_EQ(2, s_scalar(bs_store_db(st), "SELECT count(*) FROM attempts"));
    ASSERT_EQ(1, s_scalar(bs_store_db(st),
                          "SELECT started_at = '2026-11-27T16:01:02.123Z' FROM attempts "
                          "WHERE attempt = 1"));
    bs_store_close(&st);
}

BS_TEST(unknown_values_are_null)
{
    int64_t camp = 0, cfg = 0;
    bs_store_t *st = s_fixture(&camp, NULL, &cfg);
    bs_eval_rec_t rec = {.campaign_id = camp,
                         .config_id = cfg,
                         .agent_id = 0,
                         .attempts = 3,
                         .ok = 0,
                         .error_code = "EBACKEND",
                         .error_message = "kernel failed",
                         .fetch_ms = NAN,
                         .run_ms = NAN};
    bs_metrics_init(&rec.m);
    ASSERT_OK(bs_store_eval_add(st, &rec, NULL));
    sqlite3 *db = bs_store_db(st);
    static const char *const null_cols[] = {
        "agent_id",          "accuracy",        "metric",         "latency_min_ms",
        "latency_median_ms", "latency_mean_ms", "latency_p90_ms", "latency_p99_ms",
        "latency_std_ms",    "latency_cv",      "weight_bytes",   "arena_bytes",
        "peak_rss_bytes",    "energy_j",        "energy_reason",  "backend",
        "started_at",        "finished_at",     "fetch_ms",       "run_ms",
        "result_json"};
    for (size_t i = 0; i < sizeof null_cols / sizeof null_cols[0]; i++) {
        char sql[128];
        snprintf(sql, sizeof sql, "SELECT %s IS NULL FROM evaluations", null_cols[i]);
        if (s_scalar(db, sql) != 1)
            bs_test_fail(__FILE__, __LINE__, "column %s is not NULL", null_cols[i]);
    }
    ASSERT_EQ(1, s_scalar(db, "SELECT status = 'failed' AND error_code = 'EBACKEND' AND "
                              "energy_source = 'none' AND simulated = 0 FROM evaluations"));
    ASSERT_EQ(1, s_scalar(db, "SELECT typeof(accuracy) = 'null' FROM results"));
    /* hypervolume NAN is NULL too */
    ASSERT_OK(bs_store_progress_add(st, camp, 1, 0, NAN));
    ASSERT_OK(bs_store_progress_add(st, camp, 2, 1, 0.25));
    ASSERT_EQ(1, s_scalar(db, "SELECT count(*) FROM progress WHERE hypervolume IS NULL"));
    ASSERT_EQ(1, s_scalar(db, "SELECT count(*) FROM progress WHERE hypervolume = 0.25"));
    bs_store_close(&st);
}

typedef struct cfg_walk {
    int n;
    int64_t ids[8];
    int evaluated[8];
    char assignment[8][64];
} cfg_walk_t;

static int s_cfg_cb(void *ud, int64_t id, const char *assignment, int evaluated)
{
    cfg_walk_t *w = ud;
    if (w->n >= 8)
        return 1;
    w->ids[w->n] = id;
    w->evaluated[w->n] = evaluated;
    snprintf(w->assignment[w->n], sizeof w->assignment[0], "%s", assignment);
    w->n++;
    return 0;
}

static int s_stop_cb(void *ud, int64_t id, const char *assignment, int evaluated)
{
    (void)id, (void)assignment, (void)evaluated;
    ++*(int *)ud;
    return 7;
}

BS_TEST(each_config_flags)
{
    int64_t camp = 0, agent = 0, c1 = 0, c2 = 0, c3 = 0;
    bs_store_t *st = s_fixture(&camp, &agent, &c1);
    ASSERT_OK(bs_store_config_add(st, camp, "b", NULL, &c2));
    ASSERT_OK(bs_store_config_add(st, camp, "c", NULL, &c3));
    bs_metrics_t m = s_full_metrics(0.9);
    s_add_eval(st, camp, c2, agent, &m);
    cfg_walk_t w = {0};
    ASSERT_OK(bs_store_each_config(st, camp, s_cfg_cb, &w));
    ASSERT_EQ(3, w.n);
    ASSERT_EQ(c1, w.ids[0]);
    ASSERT_EQ(c2, w.ids[1]);
    ASSERT_EQ(c3, w.ids[2]);
    ASSERT_EQ(0, w.evaluated[0]);
    ASSERT_EQ(1, w.evaluated[1]);
    ASSERT_EQ(0, w.evaluated[2]);
    ASSERT_STR_EQ("conv1=w8a8,fc=w4a8", w.assignment[0]);
    ASSERT_STR_EQ("b", w.assignment[1]);
    int calls = 0;
    ASSERT_EQ(7, bs_store_each_config(st, camp, s_stop_cb, &calls));
    ASSERT_EQ(1, calls);
    cfg_walk_t none = {0};
    ASSERT_OK(bs_store_each_config(st, camp + 100, s_cfg_cb, &none));
    ASSERT_EQ(0, none.n);
    bs_store_close(&st);
}

typedef struct eval_walk {
    int n;
    int64_t ids[4];
    int ok[4];
    bs_metrics_t m[4];
    char assignment[4][64];
} eval_walk_t;

static int s_eval_cb(void *ud, int64_t eval_id, int64_t config_id, const char *assignment, int ok,
                     const bs_metrics_t *m, const char *result_json)
{
    (void)config_id;
    (void)result_json;
    eval_walk_t *w = ud;
    if (w->n >= 4)
        return 1;
    w->ids[w->n] = eval_id;
    w->ok[w->n] = ok;
    w->m[w->n] = *m;
    snprintf(w->assignment[w->n], sizeof w->assignment[0], "%s", assignment);
    w->n++;
    return 0;
}

static void s_assert_same_dbl(double a, double b)
{
    if (isnan(a))
        ASSERT(isnan(b));
    else
        ASSERT_DBL_NEAR(a, b, 0.0);
}

static void s_assert_same_metrics(const bs_metrics_t *a, const bs_metrics_t *b)
{
    s_assert_same_dbl(a->accuracy, b->accuracy);
    ASSERT_STR_EQ(a->metric, b->metric);
    s_assert_same_dbl(a->lat_min_ms, b->lat_min_ms);
    s_assert_same_dbl(a->lat_median_ms, b->lat_median_ms);
    s_assert_same_dbl(a->lat_mean_ms, b->lat_mean_ms);
    s_assert_same_dbl(a->lat_p90_ms, b->lat_p90_ms);
    s_assert_same_dbl(a->lat_p99_ms, b->lat_p99_ms);
    s_assert_same_dbl(a->lat_std_ms, b->lat_std_ms);
    s_assert_same_dbl(a->lat_cv, b->lat_cv);
    ASSERT_EQ(a->lat_runs, b->lat_runs);
    ASSERT_EQ(a->weight_bytes, b->weight_bytes);
    ASSERT_EQ(a->arena_bytes, b->arena_bytes);
    ASSERT_EQ(a->peak_rss_bytes, b->peak_rss_bytes);
    s_assert_same_dbl(a->energy_j, b->energy_j);
    ASSERT_STR_EQ(a->energy_source, b->energy_source);
    ASSERT_STR_EQ(a->energy_reason, b->energy_reason);
    ASSERT_EQ(a->simulated, b->simulated);
    ASSERT_STR_EQ(a->backend, b->backend);
}

BS_TEST(each_eval_round_trip)
{
    int64_t camp = 0, agent = 0, c1 = 0, c2 = 0;
    bs_store_t *st = s_fixture(&camp, &agent, &c1);
    ASSERT_OK(bs_store_config_add(st, camp, "second", NULL, &c2));
    bs_metrics_t full = s_full_metrics(0.8125);
    int64_t e1 = s_add_eval(st, camp, c1, agent, &full);
    bs_metrics_t sparse;
    bs_metrics_init(&sparse);
    sparse.accuracy = 0.5;
    sparse.lat_median_ms = 9.75;
    sparse.simulated = 1;
    snprintf(sparse.backend, sizeof sparse.backend, "sim");
    snprintf(sparse.energy_reason, sizeof sparse.energy_reason, "no sensor on this device");
    int64_t e2 = s_add_eval(st, camp, c2, 0, &sparse);

    eval_walk_t w = {0};
    ASSERT_OK(bs_store_each_eval(st, camp, s_eval_cb, &w));
    ASSERT_EQ(2, w.n);
    ASSERT_EQ(e1, w.ids[0]);
    ASSERT_EQ(e2, w.ids[1]);
    ASSERT_EQ(1, w.ok[0]);
    ASSERT_STR_EQ("conv1=w8a8,fc=w4a8", w.assignment[0]);
    ASSERT_STR_EQ("second", w.assignment[1]);
    s_assert_same_metrics(&full, &w.m[0]);
    s_assert_same_metrics(&sparse, &w.m[1]);
    ASSERT_EQ(1, w.m[1].simulated);
    ASSERT_STR_EQ("sim", w.m[1].backend);
    bs_store_close(&st);
}

BS_TEST(pareto_replace)
{
    int64_t camp = 0, agent = 0, c[3] = {0}, e[3] = {0};
    bs_store_t *st = s_fixture(&camp, &agent, &c[0]);
    ASSERT_OK(bs_store_config_add(st, camp, "b", NULL, &c[1]));
    ASSERT_OK(bs_store_config_add(st, camp, "c", NULL, &c[2]));
    for (int i = 0; i < 3; i++) {
        bs_metrics_t m = s_full_metrics(0.5 + 0.1 * i);
        e[i] = s_add_eval(st, camp, c[i], agent, &m);
    }
    sqlite3 *db = bs_store_db(st);
    ASSERT_OK(bs_store_pareto_replace(st, camp, e, 2));
    ASSERT_EQ(2, s_scalar(db, "SELECT count(*) FROM pareto_members"));
    ASSERT_EQ(2, s_scalar(db, "SELECT count(*) FROM pareto"));
    int64_t only[] = {e[2], e[2]}; /* a repeated id counts once */
    ASSERT_OK(bs_store_pareto_replace(st, camp, only, 2));
    ASSERT_EQ(1, s_scalar(db, "SELECT count(*) FROM pareto_members"));
    ASSERT_EQ(e[2], s_scalar(db, "SELECT eval_id FROM pareto"));
    ASSERT_OK(bs_store_pareto_replace(st, camp, NULL, 0));
    ASSERT_EQ(0, s_scalar(db, "SELECT count(*) FROM pareto"));
    /* An unknown evaluation fails and leaves the old front in place. */
    ASSERT_OK(bs_store_pareto_replace(st, camp, e, 1));
    int64_t bad[] = {e[1], 99999};
    ASSERT_EQ(BS_EDB, bs_store_pareto_replace(st, camp, bad, 2));
    ASSERT_EQ(e[0], s_scalar(db, "SELECT eval_id FROM pareto"));
    ASSERT_EQ(1, sqlite3_get_autocommit(db));
    bs_store_close(&st);
}

static const char *const s_view_cols[] = {
    "campaign",       "eval_id",        "config_id",       "assignment",        "status",
    "simulated",      "accuracy",       "metric",          "latency_median_ms", "latency_p90_ms",
    "latency_p99_ms", "latency_min_ms", "latency_mean_ms", "latency_std_ms",    "latency_cv",
    "latency_runs",   "weight_bytes",   "arena_bytes",     "peak_rss_bytes",    "energy_j",
    "energy_source",  "energy_reason",  "agent",           "agent_uid",         "backend",
    "attempts",       "error_code",     "error_message",   "started_at",        "finished_at",
    "fetch_ms",       "run_ms",         "threads",         "cpus",              "remeasures",
    "unstable",       "temp_before_c",  "temp_after_c",    "freq_before_mhz",   "freq_after_mhz",
    "throttled",      "agent_version",  "engine"};

static void s_check_view(sqlite3 *db, const char *view)
{
    char sql[64];
    snprintf(sql, sizeof sql, "SELECT * FROM %s", view);
    sqlite3_stmt *s = NULL;
    ASSERT_EQ(SQLITE_OK, sqlite3_prepare_v2(db, sql, -1, &s, NULL));
    int n = (int)(sizeof s_view_cols / sizeof s_view_cols[0]);
    ASSERT_EQ(n, sqlite3_column_count(s));
    for (int i = 0; i < n; i++)
        ASSERT_STR_EQ(s_view_cols[i], sqlite3_column_name(s, i));
    ASSERT_EQ(SQLITE_ROW, sqlite3_step(s));
    ASSERT_STR_EQ("c1", (const char *)sqlite3_column_text(s, 0));
    ASSERT_STR_EQ("conv1=w8a8,fc=w4a8", (const char *)sqlite3_column_text(s, 3));
    ASSERT_STR_EQ("ok", (const char *)sqlite3_column_text(s, 4));
    ASSERT_STR_EQ("local-1", (const char *)sqlite3_column_text(s, 22));
    ASSERT_STR_EQ("agent-uid-1", (const char *)sqlite3_column_text(s, 23));
    ASSERT_STR_EQ("2026-11-27T16:01:02.123Z", (const char *)sqlite3_column_text(s, 28));
    /* how the run went, from the RESULT kept with the evaluation (schema version 3) */
    ASSERT_EQ(2, sqlite3_column_int(s, 32));
    ASSERT_STR_EQ("0-1", (const char *)sqlite3_column_text(s, 33));
    ASSERT_EQ(SQLITE_NULL, sqlite3_column_type(s, 34));
    ASSERT_EQ(0, sqlite3_column_int(s, 35));
    ASSERT_EQ(1, sqlite3_column_int(s, 40));
    ASSERT_STR_EQ("bitscout-engine 0.1.0 avx2/avxvnni", (const char *)sqlite3_column_text(s, 42));
    ASSERT_EQ(SQLITE_DONE, sqlite3_step(s));
    sqlite3_finalize(s);
}

BS_TEST(views_columns)
{
    int64_t camp = 0, agent = 0, cfg = 0;
    bs_store_t *st = s_fixture(&camp, &agent, &cfg);
    bs_metrics_t m = s_full_metrics(0.7);
    int64_t eid = s_add_eval(st, camp, cfg, agent, &m);
    ASSERT_OK(bs_store_pareto_replace(st, camp, &eid, 1));
    s_check_view(bs_store_db(st), "results");
    s_check_view(bs_store_db(st), "pareto");
    bs_store_close(&st);
}

BS_TEST(reader_does_not_block_writer)
{
    int64_t camp = 0, agent = 0, cfg = 0;
    bs_store_t *st = s_fixture(&camp, &agent, &cfg);
    bs_metrics_t m = s_full_metrics(0.7);
    s_add_eval(st, camp, cfg, agent, &m);

    sqlite3 *reader = NULL;
    ASSERT_EQ(SQLITE_OK,
              sqlite3_open_v2(s_db_path("results.db"), &reader, SQLITE_OPEN_READONLY, NULL));
    ASSERT_EQ(SQLITE_OK, sqlite3_exec(reader, "BEGIN", NULL, NULL, NULL));
    sqlite3_stmt *s = NULL;
    ASSERT_EQ(SQLITE_OK, sqlite3_prepare_v2(reader, "SELECT count(*) FROM results", -1, &s, NULL));
    ASSERT_EQ(SQLITE_ROW, sqlite3_step(s));
    ASSERT_EQ(1, sqlite3_column_int(s, 0));
    sqlite3_reset(s); /* the read transaction stays open: no COMMIT */

    /* A second reader through the store, too. */
    bs_store_t *ro = NULL;
    bs_err_t err = {0};
    ASSERT_OK(bs_store_open(s_db_path("results.db"), 1, &ro, &err));

    for (int i = 0; i < 20; i++) {
        char a[32];
        snprintf(a, sizeof a, "cfg-%d", i);
        int64_t c = 0;
        ASSERT_OK(bs_store_config_add(st, camp, a, NULL, &c));
        s_add_eval(st, camp, c, agent, &m);
        ASSERT_OK(bs_store_attempt_add(st, camp, c, agent, 1, "ok", NULL, NULL, 1, 2));
    }
    ASSERT_OK(bs_store_begin(st));
    ASSERT_OK(bs_store_progress_add(st, camp, 21, 1, NAN));
    ASSERT_OK(bs_store_commit(st));
    int64_t n = 0;
    ASSERT_OK(bs_store_eval_count(st, camp, &n));
    ASSERT_EQ(21, n);

    /* The open reader still sees its snapshot; after COMMIT it sees the new rows. */
    ASSERT_EQ(SQLITE_ROW, sqlite3_step(s));
    ASSERT_EQ(1, sqlite3_column_int(s, 0));
    sqlite3_reset(s);
    ASSERT_EQ(SQLITE_OK, sqlite3_exec(reader, "COMMIT", NULL, NULL, NULL));
    ASSERT_EQ(SQLITE_ROW, sqlite3_step(s));
    ASSERT_EQ(21, sqlite3_column_int(s, 0));
    sqlite3_finalize(s);
    sqlite3_close(reader);

    ASSERT_OK(bs_store_eval_count(ro, camp, &n));
    ASSERT_EQ(21, n);
    /* A read-only store refuses writes with a database error. */
    int64_t c = 0;
    ASSERT_EQ(BS_EDB, bs_store_config_add(ro, camp, "nope", NULL, &c));
    bs_store_close(&ro);
    bs_store_close(&st);
}

BS_TEST(readonly_missing_file)
{
    const char *path = s_db_path("missing.db");
    bs_store_t *st = NULL;
    bs_err_t err = {0};
    ASSERT_EQ(BS_ENOENT, bs_store_open(path, 1, &st, &err));
    ASSERT(st == NULL);
    ASSERT_CONTAINS(err.msg, path);
    ASSERT_CONTAINS(err.msg, "no such database");
    FILE *f = fopen(path, "rb");
    ASSERT(f == NULL); /* not created */
}

BS_TEST(readonly_refuses_unmigrated)
{
    const char *path = s_db_file("empty.db", "");
    bs_store_t *st = NULL;
    bs_err_t err = {0};
    ASSERT_EQ(BS_EDB, bs_store_open(path, 1, &st, &err));
    ASSERT_CONTAINS(err.msg, "empty.db");
    ASSERT_CONTAINS(err.msg, "not a bitscout results database");

    const char *junk = s_db_file("junk.db",
                                 "this is not an SQLite file, just some text that is long enough "
                                 "to have a header of one hundred bytes or so, more or less.\n");
    for (int ro = 0; ro <= 1; ro++) {
        bs_err_clear(&err);
        ASSERT_EQ(BS_EDB, bs_store_open(junk, ro, &st, &err));
        ASSERT_CONTAINS(err.msg, "junk.db");
    }
}

BS_TEST(migrate_empty_file)
{
    const char *path = s_db_file("empty.db", "");
    bs_store_t *st = NULL;
    bs_err_t err = {0};
    ASSERT_OK(bs_store_open(path, 0, &st, &err));
    ASSERT_EQ(BS_STORE_SCHEMA_VERSION, bs_store_schema_version(st));
    ASSERT_EQ(9, s_scalar(bs_store_db(st), "SELECT count(*) FROM sqlite_schema WHERE type = "
                                           "'table'"));
    ASSERT_EQ(2, s_scalar(bs_store_db(st), "SELECT count(*) FROM sqlite_schema WHERE type = "
                                           "'view' AND name IN ('results', 'pareto')"));
    bs_store_close(&st);
    /* Now it opens read-only. */
    ASSERT_OK(bs_store_open(path, 1, &st, &err));
    ASSERT_EQ(BS_STORE_SCHEMA_VERSION, bs_store_schema_version(st));
    bs_store_close(&st);
}

/* Everything a searcher does, once; returns the first failure. */
static int s_scenario(const char *path)
{
    bs_store_t *st = NULL;
    bs_err_t err = {0};
    int rc = bs_store_open(path, 0, &st, &err);
    if (rc)
        return rc;
    bs_campaign_rec_t rec = s_campaign("fault");
    int64_t camp = 0, agent = 0, cfg = 0, eid = 0;
    bs_agent_rec_t a = {.uid = "u", .name = "n", .mem_bytes = -1};
    bs_metrics_t m = s_full_metrics(0.5);
    rc = bs_store_campaign_open(st, &rec, &camp, NULL, &err);
    rc = rc ? rc : bs_store_agent_upsert(st, &a, &agent);
    rc = rc ? rc : bs_store_config_add(st, camp, "a", NULL, &cfg);
    if (rc == 0) {
        bs_eval_rec_t e = {.campaign_id = camp,
                           .config_id = cfg,
                           .agent_id = agent,
                           .ok = 1,
                           .m = m,
                           .fetch_ms = NAN,
                           .run_ms = NAN};
        rc = bs_store_eval_add(st, &e, &eid);
    }
    rc = rc ? rc : bs_store_pareto_replace(st, camp, &eid, 1);
    rc = rc ? rc : bs_store_progress_add(st, camp, 1, 1, NAN);
    bs_sens_row_t rows[] = {{"conv1", "w8a8", 0.5, 0.0, NULL}, {"fc", "w8a8", NAN, NAN, "x"}};
    bs_sens_rec_t sr = {camp, "n", "top1", 0.5, 1, 2, rows};
    rc = rc ? rc : bs_store_sensitivity_add(st, &sr, &err);
    bs_sens_list_t l;
    rc = rc ? rc : bs_store_sensitivity_load(st, camp, NULL, &l);
    if (rc == 0 && l.n != 2)
        rc = BS_EINVAL;
    if (rc == 0)
        bs_sens_list_free(&l);
    bs_store_close(&st);
    if (rc)
        return rc;
    rc = bs_store_open(path, 1, &st, &err);
    bs_store_close(&st);
    return rc;
}

/* The rows of the fixture's sensitivity job for agent `agent`. */
static const bs_sens_row_t s_sens_rows[] = {
    {"conv1", "w8a8", 0.905, -0.005, NULL},
    {"conv1", "w4a32", NAN, 0.25, "EUNSUPPORTED: no int4 here"}, /* delta ignored: NULL */
    {"fc", "w8a8", 0.91, 0.0, ""},
    {"fc", "w4a32", 0.87, -0.04, NULL},
};

static int s_add_sens(bs_store_t *st, int64_t camp, const char *agent, bs_err_t *err)
{
    bs_sens_rec_t rec = {.campaign_id = camp,
                         .agent = agent,
                         .metric = "top1",
                         .baseline = 0.91,
                         .simulated = 1,
                         .n_rows = 4,
                         .rows = s_sens_rows};
    return bs_store_sensitivity_add(st, &rec, err);
}

typedef struct s_sens_seen {
    int n;
    char agents[8][16];
    char layers[8][16];
} s_sens_seen_t;

static int s_sens_cb(void *ud, const bs_sens_entry_t *e)
{
    s_sens_seen_t *seen = ud;
    ASSERT(seen->n < 8);
    snprintf(seen->agents[seen->n], 16, "%s", e->agent);
    snprintf(seen->layers[seen->n], 16, "%s:%s", e->layer, e->precision);
    seen->n++;
    return 0;
}

static int s_sens_stop_cb(void *ud, const bs_sens_entry_t *e)
{
    (void)e;
    ++*(int *)ud;
    return 42;
}

BS_TEST(sensitivity_rows)
{
    int64_t camp = 0;
    bs_store_t *st = s_fixture(&camp, NULL, NULL);
    bs_err_t err = {0};
    ASSERT_OK(s_add_sens(st, camp, "orin-2", &err));
    ASSERT_OK(s_add_sens(st, camp, "orin-1", &err));

    /* All agents: by agent name, then in the order reported. */
    s_sens_seen_t seen = {0};
    ASSERT_OK(bs_store_each_sensitivity(st, camp, NULL, s_sens_cb, &seen));
    ASSERT_EQ(8, seen.n);
    ASSERT_STR_EQ("orin-1", seen.agents[0]);
    ASSERT_STR_EQ("orin-1", seen.agents[3]);
    ASSERT_STR_EQ("orin-2", seen.agents[4]);
    ASSERT_STR_EQ("conv1:w8a8", seen.layers[0]);
    ASSERT_STR_EQ("conv1:w4a32", seen.layers[1]);
    ASSERT_STR_EQ("fc:w4a32", seen.layers[7]);
    /* One agent; an unknown agent or campaign has none. */
    memset(&seen, 0, sizeof seen);
    ASSERT_OK(bs_store_each_sensitivity(st, camp, "orin-2", s_sens_cb, &seen));
    ASSERT_EQ(4, seen.n);
    ASSERT_STR_EQ("orin-2", seen.agents[3]);
    memset(&seen, 0, sizeof seen);
    ASSERT_OK(bs_store_each_sensitivity(st, camp, "nobody", s_sens_cb, &seen));
    ASSERT_OK(bs_store_each_sensitivity(st, camp + 1, NULL, s_sens_cb, &seen));
    ASSERT_EQ(0, seen.n);
    /* The callback stops the walk. */
    int calls = 0;
    ASSERT_EQ(42, bs_store_each_sensitivity(st, camp, NULL, s_sens_stop_cb, &calls));
    ASSERT_EQ(1, calls);

    /* The owned list, with unknowns as NAN / NULL. */
    bs_sens_list_t l;
    ASSERT_OK(bs_store_sensitivity_load(st, camp, "orin-1", &l));
    ASSERT_EQ(4, l.n);
    ASSERT_STR_EQ("orin-1", l.rows[0].agent);
    ASSERT_STR_EQ("conv1", l.rows[0].layer);
    ASSERT_STR_EQ("w8a8", l.rows[0].precision);
    ASSERT_STR_EQ("top1", l.rows[0].metric);
    ASSERT_DBL_NEAR(0.905, l.rows[0].value, 0);
    ASSERT_DBL_NEAR(-0.005, l.rows[0].delta, 0);
    ASSERT_DBL_NEAR(0.91, l.rows[0].baseline, 0);
    ASSERT_EQ(1, l.rows[0].simulated);
    ASSERT(l.rows[0].error == NULL);
    ASSERT_EQ(24, strlen(l.rows[0].created_at));
    ASSERT(isnan(l.rows[1].value));
    ASSERT(isnan(l.rows[1].delta)); /* no delta without a value */
    ASSERT_STR_EQ("EUNSUPPORTED: no int4 here", l.rows[1].error);
    ASSERT(l.rows[2].error == NULL); /* "" is no error */
    bs_sens_list_free(&l);
    ASSERT_EQ(0, l.n);
    bs_sens_list_free(&l);
    bs_sens_list_free(NULL);

    /* What sqlite3 users see. */
    sqlite3 *db = bs_store_db(st);
    ASSERT_EQ(8, s_scalar(db, "SELECT count(*) FROM sensitivity"));
    ASSERT_EQ(2, s_scalar(db, "SELECT count(*) FROM sensitivity WHERE value IS NULL"));
    ASSERT_EQ(2, s_scalar(db, "SELECT count(*) FROM sensitivity WHERE delta IS NULL"));
    ASSERT_EQ(2, s_scalar(db, "SELECT count(*) FROM sensitivity WHERE error IS NOT NULL"));
    ASSERT_EQ(8, s_scalar(db, "SELECT count(*) FROM sensitivity WHERE simulated = 1"));
    bs_store_close(&st);
}

/* A second job for the same agent name, or a job with a pair twice, writes nothing. */
BS_TEST(sensitivity_conflicts)
{
    int64_t camp = 0;
    bs_store_t *st = s_fixture(&camp, NULL, NULL);
    bs_err_t err = {0};
    sqlite3 *db = bs_store_db(st);
    ASSERT_OK(s_add_sens(st, camp, "orin-1", &err));
    ASSERT_EQ(BS_EEXIST, s_add_sens(st, camp, "orin-1", &err));
    ASSERT_CONTAINS(err.msg, "already has sensitivity rows for agent 'orin-1'");
    ASSERT_EQ(4, s_scalar(db, "SELECT count(*) FROM sensitivity"));

    bs_sens_row_t dup[] = {{"conv1", "w8a8", 0.9, 0.0, NULL}, {"fc", "w8a8", 0.9, 0.0, NULL},
                           {"conv1", "w8a8", 0.8, -0.1, NULL}};
    bs_sens_rec_t rec = {camp, "orin-2", "top1", 0.9, 0, 3, dup};
    bs_err_clear(&err);
    ASSERT_EQ(BS_EEXIST, bs_store_sensitivity_add(st, &rec, &err));
    ASSERT_CONTAINS(err.msg, "sensitivity row 2 (conv1 at w8a8) is there twice");
    ASSERT_EQ(4, s_scalar(db, "SELECT count(*) FROM sensitivity"));
    ASSERT_EQ(1, sqlite3_get_autocommit(db)); /* the transaction was rolled back */

    /* Bad arguments. */
    bs_sens_rec_t bad = {camp, NULL, "top1", 0.9, 0, 0, NULL};
    ASSERT_EQ(BS_EINVAL, bs_store_sensitivity_add(st, &bad, &err));
    bs_sens_row_t noname[] = {{NULL, "w8a8", 0.9, 0.0, NULL}};
    bs_sens_rec_t bad2 = {camp, "x", "top1", 0.9, 0, 1, noname};
    ASSERT_EQ(BS_EINVAL, bs_store_sensitivity_add(st, &bad2, &err));
    ASSERT_CONTAINS(err.msg, "row 0 has no layer");

    /* Inside the caller's transaction: a savepoint, undone by the caller's rollback. */
    ASSERT_OK(bs_store_begin(st));
    ASSERT_OK(s_add_sens(st, camp, "orin-3", &err));
    ASSERT_EQ(BS_EEXIST, s_add_sens(st, camp, "orin-3", &err));
    ASSERT_EQ(0, sqlite3_get_autocommit(db)); /* still the caller's */
    bs_store_rollback(st);
    ASSERT_EQ(4, s_scalar(db, "SELECT count(*) FROM sensitivity"));
    /* An empty job (a model without weight layers) stores nothing and succeeds. */
    bs_sens_rec_t empty = {camp, "orin-4", "top1", 0.9, 0, 0, NULL};
    ASSERT_OK(bs_store_sensitivity_add(st, &empty, &err));
    bs_store_close(&st);
}

/* A version-1 database (no sensitivity table) is refused read-only, then upgraded in place by
 * a writer, its rows intact. */
BS_TEST(migrate_from_v1)
{
    int64_t camp = 0, agent = 0, cfg = 0;
    bs_store_t *st = s_fixture(&camp, &agent, &cfg);
    bs_metrics_t m = s_full_metrics(0.75);
    s_add_eval(st, camp, cfg, agent, &m);
    sqlite3 *db = bs_store_db(st);
    /* Version 1 is version 2 without the sensitivity table (version 3 is version 2 with a
     * wider results view, which the migration remakes in any case, and version 4 adds the
     * policy_state table). */
    ASSERT_EQ(SQLITE_OK, sqlite3_exec(db, "DROP TABLE sensitivity; DROP TABLE policy_state; "
                                      "PRAGMA user_version = 1", NULL, NULL, NULL));
    bs_store_close(&st);

    bs_err_t err = {0};
    const char *path = s_db_path("results.db");
    ASSERT_EQ(BS_EDB, bs_store_open(path, 1, &st, &err));
    ASSERT_CONTAINS(err.msg, "schema version 1 is older than this bitscout (4); open it once "
                             "for writing (bitscout search) to upgrade it");
    ASSERT_OK(bs_store_open(path, 0, &st, &err));
    ASSERT_EQ(4, bs_store_schema_version(st));
    ASSERT_EQ(0, s_scalar(bs_store_db(st), "SELECT count(*) FROM policy_state"));
    db = bs_store_db(st);
    ASSERT_EQ(1, s_scalar(db, "SELECT count(*) FROM evaluations"));
    ASSERT_EQ(1, s_scalar(db, "SELECT count(*) FROM results WHERE accuracy = 0.75"));
    ASSERT_EQ(2, s_scalar(db, "SELECT threads FROM results"));
    ASSERT_EQ(0, s_scalar(db, "SELECT count(*) FROM sensitivity"));
    ASSERT_OK(s_add_sens(st, camp, "orin-1", &err));
    bs_store_close(&st);
    ASSERT_OK(bs_store_open(path, 1, &st, &err));
    ASSERT_EQ(4, s_scalar(bs_store_db(st), "SELECT count(*) FROM sensitivity"));
    bs_store_close(&st);
}

BS_TEST(alloc_failures)
{
    int done = 0;
    for (long n = 0; n < 1000 && !done; n++) {
        char name[32];
        snprintf(name, sizeof name, "f%ld.db", n);
        bs_alloc_fail_after(n);
        int rc = s_scenario(s_db_path(name));
        bs_alloc_fail_after(-1);
        if (rc == 0)
            done = 1;
        else
            ASSERT_EQ(BS_ENOMEM, rc);
    }
    ASSERT(done);
}

#define TESTS(X)                                                                                  \
    X(create_and_reopen)                                                                          \
    X(schema_version)                                                                             \
    X(newer_schema_refused)                                                                       \
    X(campaign_open_resume_conflict)                                                              \
    X(campaign_open_inside_transaction)                                                           \
    X(agent_upsert)                                                                               \
    X(config_duplicate)                                                                           \
    X(eval_duplicate)                                                                             \
    X(unknown_values_are_null)                                                                    \
    X(each_config_flags)                                                                          \
    X(each_eval_round_trip)                                                                       \
    X(pareto_replace)                                                                             \
    X(views_columns)                                                                              \
    X(reader_does_not_block_writer)                                                               \
    X(readonly_missing_file)                                                                      \
    X(readonly_refuses_unmigrated)                                                                \
    X(migrate_empty_file)                                                                         \
    X(sensitivity_rows)                                                                           \
    X(sensitivity_conflicts)                                                                      \
    X(migrate_from_v1)                                                                            \
    X(alloc_failures)

BS_TEST_MAIN(TESTS)

/*
 * bs_store.c - the results database: SQLite in WAL mode, versioned schema, prepared statements.
 *
 * Opening sets the connection up the same way every time (busy timeout 10 s, WAL journal,
 * synchronous=NORMAL, foreign keys on) and brings the schema to BS_STORE_SCHEMA_VERSION: the
 * version lives in PRAGMA user_version, and s_migrations[v] is the SQL that takes version v to
 * v + 1, applied in its own IMMEDIATE transaction that re-reads the version first (so two
 * processes opening one new file do not both migrate it). A read-only open never migrates; it
 * refuses a missing file, an empty one and any version other than this build's.
 *
 * Every statement with values is prepared once, lazily, from the table in BS__SQL_MAP, kept on
 * the handle and reset after each use (a statement left un-reset would pin a read snapshot and
 * stop WAL checkpoints). The walks (bs_store_each_*) prepare their own statement so that the
 * callback may call back into the store. Multi-statement writes run in a transaction of their
 * own when the caller has none (BEGIN IMMEDIATE) or in a savepoint inside the caller's.
 *
 * Unknown values (NAN doubles, negative byte counts, empty strings, zero timestamps) are bound
 * as NULL and read back as NAN / -1 / "" so a round trip is exact. Every SQLite failure becomes
 * BS_EDB: with sqlite3_errmsg() in err where the function takes one, logged otherwise.
 *
 * Sensitivity rows (schema version 2) are written a whole job at a time, in one transaction
 * that first checks the agent name has none yet, and read back by a walk or as an owned list
 * (bs_store_sensitivity_load) for the policies that seed from them.
 */
#include "bs_store.h"

#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "bs_alloc.h"
#include "bs_log.h"
#include "bs_util.h"

#define BS__BUSY_TIMEOUT_MS 10000

/* ---- schema ----------------------------------------------------------------------------- */

/* The results view: v1 made it, v3 remade it with the columns of RESULT's metrics.run. */
#define S_RESULTS_COLS_V1 \
    "  cp.name AS campaign," \
    "  e.id AS eval_id," \
    "  e.config_id AS config_id," \
    "  c.assignment AS assignment," \
    "  e.status AS status," \
    "  e.simulated AS simulated," \
    "  e.accuracy AS accuracy," \
    "  e.metric AS metric," \
    "  e.latency_median_ms AS latency_median_ms," \
    "  e.latency_p90_ms AS latency_p90_ms," \
    "  e.latency_p99_ms AS latency_p99_ms," \
    "  e.latency_min_ms AS latency_min_ms," \
    "  e.latency_mean_ms AS latency_mean_ms," \
    "  e.latency_std_ms AS latency_std_ms," \
    "  e.latency_cv AS latency_cv," \
    "  e.latency_runs AS latency_runs," \
    "  e.weight_bytes AS weight_bytes," \
    "  e.arena_bytes AS arena_bytes," \
    "  e.peak_rss_bytes AS peak_rss_bytes," \
    "  e.energy_j AS energy_j," \
    "  e.energy_source AS energy_source," \
    "  e.energy_reason AS energy_reason," \
    "  a.name AS agent," \
    "  a.uid AS agent_uid," \
    "  e.backend AS backend," \
    "  e.attempts AS attempts," \
    "  e.error_code AS error_code," \
    "  e.error_message AS error_message," \
    "  e.started_at AS started_at," \
    "  e.finished_at AS finished_at," \
    "  e.fetch_ms AS fetch_ms," \
    "  e.run_ms AS run_ms" \

#define S_RESULTS_FROM \
    " FROM evaluations e" \
    " JOIN configs c ON c.id = e.config_id" \
    " JOIN campaigns cp ON cp.id = e.campaign_id" \
    " LEFT JOIN agents a ON a.id = e.agent_id;" \

#define S_PARETO_VIEW \
    "CREATE VIEW pareto AS SELECT r.* FROM results r" \
    " JOIN pareto_members pm ON pm.evaluation_id = r.eval_id;"

/* Version 0 -> 1: the whole first schema. db/schema.md documents every column; keep it in
 * step. Never edit a shipped migration: add a new one and bump BS_STORE_SCHEMA_VERSION. */
static const char s_schema_v1[] =
    "CREATE TABLE campaigns ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT UNIQUE NOT NULL,"
    "  config_path TEXT,"
    "  config_json TEXT,"
    "  model_sha256 TEXT,"
    "  space_json TEXT,"
    "  policy TEXT,"
    "  seed INTEGER,"
    "  budget INTEGER,"
    "  status TEXT,"
    "  created_at TEXT,"
    "  updated_at TEXT);"
    "CREATE TABLE agents ("
    "  id INTEGER PRIMARY KEY,"
    "  uid TEXT UNIQUE NOT NULL,"
    "  name TEXT,"
    "  version TEXT,"
    "  arch TEXT,"
    "  cpu TEXT,"
    "  os TEXT,"
    "  cores INTEGER,"
    "  mem_bytes INTEGER,"
    "  tags TEXT,"
    "  backends TEXT,"
    "  device_json TEXT,"
    "  first_seen TEXT,"
    "  last_seen TEXT,"
    "  state TEXT);"
    "CREATE TABLE configs ("
    "  id INTEGER PRIMARY KEY,"
    "  campaign_id INTEGER NOT NULL REFERENCES campaigns(id),"
    "  assignment TEXT NOT NULL,"
    "  source TEXT,"
    "  created_at TEXT,"
    "  UNIQUE(campaign_id, assignment));"
    "CREATE TABLE evaluations ("
    "  id INTEGER PRIMARY KEY,"
    "  campaign_id INTEGER NOT NULL REFERENCES campaigns(id),"
    "  config_id INTEGER NOT NULL UNIQUE REFERENCES configs(id),"
    "  agent_id INTEGER REFERENCES agents(id),"
    "  attempts INTEGER,"
    "  status TEXT NOT NULL CHECK (status IN ('ok', 'failed')),"
    "  error_code TEXT,"
    "  error_message TEXT,"
    "  accuracy REAL,"
    "  metric TEXT,"
    "  latency_min_ms REAL,"
    "  latency_median_ms REAL,"
    "  latency_mean_ms REAL,"
    "  latency_p90_ms REAL,"
    "  latency_p99_ms REAL,"
    "  latency_std_ms REAL,"
    "  latency_cv REAL,"
    "  latency_runs INTEGER,"
    "  weight_bytes INTEGER,"
    "  arena_bytes INTEGER,"
    "  peak_rss_bytes INTEGER,"
    "  energy_j REAL,"
    "  energy_source TEXT,"
    "  energy_reason TEXT,"
    "  simulated INTEGER NOT NULL,"
    "  backend TEXT,"
    "  started_at TEXT,"
    "  finished_at TEXT,"
    "  fetch_ms REAL,"
    "  run_ms REAL,"
    "  result_json TEXT);"
    "CREATE INDEX evaluations_by_campaign ON evaluations(campaign_id, id);"
    "CREATE INDEX evaluations_by_agent ON evaluations(agent_id);"
    "CREATE TABLE attempts ("
    "  id INTEGER PRIMARY KEY,"
    "  campaign_id INTEGER NOT NULL REFERENCES campaigns(id),"
    "  config_id INTEGER REFERENCES configs(id),"
    "  agent_id INTEGER REFERENCES agents(id),"
    "  attempt INTEGER,"
    "  outcome TEXT NOT NULL,"
    "  error_code TEXT,"
    "  error_message TEXT,"
    "  started_at TEXT,"
    "  finished_at TEXT);"
    "CREATE INDEX attempts_by_campaign ON attempts(campaign_id, id);"
    "CREATE INDEX attempts_by_config ON attempts(config_id);"
    "CREATE INDEX attempts_by_agent ON attempts(agent_id);"
    "CREATE TABLE pareto_members ("
    "  campaign_id INTEGER NOT NULL REFERENCES campaigns(id),"
    "  evaluation_id INTEGER NOT NULL REFERENCES evaluations(id),"
    "  PRIMARY KEY(campaign_id, evaluation_id));"
    "CREATE INDEX pareto_members_by_evaluation ON pareto_members(evaluation_id);"
    "CREATE TABLE progress ("
    "  id INTEGER PRIMARY KEY,"
    "  campaign_id INTEGER NOT NULL REFERENCES campaigns(id),"
    "  at TEXT,"
    "  evaluations INTEGER,"
    "  front_size INTEGER,"
    "  hypervolume REAL);"
    "CREATE INDEX progress_by_campaign ON progress(campaign_id, id);"
    "CREATE VIEW results AS SELECT"
    S_RESULTS_COLS_V1
    S_RESULTS_FROM
    S_PARETO_VIEW;

/* Version 1 -> 2: per-layer sensitivity measurements (issue 4), one row per (campaign, agent
 * name, layer, precision). */
static const char s_schema_v2[] =
    "CREATE TABLE sensitivity ("
    "  id INTEGER PRIMARY KEY,"
    "  campaign_id INTEGER NOT NULL REFERENCES campaigns(id),"
    "  agent TEXT NOT NULL,"
    "  layer TEXT NOT NULL,"
    "  precision TEXT NOT NULL,"
    "  metric TEXT,"
    "  value REAL,"
    "  delta REAL,"
    "  baseline REAL,"
    "  simulated INTEGER NOT NULL,"
    "  error TEXT,"
    "  created_at TEXT,"
    "  UNIQUE(campaign_id, agent, layer, precision));";

/* Version 2 -> 3: the results view gains how each run went (issue 5), read from the RESULT
 * kept in evaluations.result_json (metrics.run: threads, CPUs, remeasures, stability,
 * temperatures, frequencies, throttling, agent and engine versions). */
static const char s_schema_v3[] =
    "DROP VIEW pareto;"
    "DROP VIEW results;"
    "CREATE VIEW results AS SELECT"
    S_RESULTS_COLS_V1 ","
    "  json_extract(e.result_json, '$.metrics.run.threads') AS threads,"
    "  json_extract(e.result_json, '$.metrics.run.cpus') AS cpus,"
    "  json_extract(e.result_json, '$.metrics.run.remeasures') AS remeasures,"
    "  json_extract(e.result_json, '$.metrics.run.unstable') AS unstable,"
    "  json_extract(e.result_json, '$.metrics.run.temp_before_c') AS temp_before_c,"
    "  json_extract(e.result_json, '$.metrics.run.temp_after_c') AS temp_after_c,"
    "  json_extract(e.result_json, '$.metrics.run.freq_before_mhz') AS freq_before_mhz,"
    "  json_extract(e.result_json, '$.metrics.run.freq_after_mhz') AS freq_after_mhz,"
    "  json_extract(e.result_json, '$.metrics.run.throttled') AS throttled,"
    "  json_extract(e.result_json, '$.metrics.run.agent_version') AS agent_version,"
    "  json_extract(e.result_json, '$.metrics.run.engine') AS engine"
    S_RESULTS_FROM
    S_PARETO_VIEW;

/* Version 3 -> 4: the search policy's saved state (issue 6), one row per campaign, replaced
 * as results land, so a resumed campaign continues the same search. */
static const char s_schema_v4[] =
    "CREATE TABLE policy_state ("
    "  campaign_id INTEGER PRIMARY KEY REFERENCES campaigns(id),"
    "  policy TEXT NOT NULL,"
    "  last_evaluation_id INTEGER NOT NULL,"
    "  state_json TEXT NOT NULL,"
    "  saved_at TEXT);";

static const char *const s_migrations[] = {s_schema_v1, s_schema_v2, s_schema_v3,
                                           s_schema_v4};

_Static_assert(sizeof s_migrations / sizeof s_migrations[0] == BS_STORE_SCHEMA_VERSION,
               "one migration per schema version");

/* ---- statements ------------------------------------------------------------------------- */

/* X(id, sql): every statement the store runs more than once. */
#define BS__SQL_MAP(X)                                                                            \
    X(BEGIN, "BEGIN IMMEDIATE")                                                                   \
    X(COMMIT, "COMMIT")                                                                           \
    X(ROLLBACK, "ROLLBACK")                                                                       \
    X(SP, "SAVEPOINT bs_store")                                                                   \
    X(SP_RELEASE, "RELEASE bs_store")                                                             \
    X(SP_ROLLBACK, "ROLLBACK TO bs_store")                                                        \
    X(USER_VERSION, "PRAGMA user_version")                                                        \
    X(CAMPAIGN_FIND, "SELECT id, model_sha256, space_json FROM campaigns WHERE name = ?1")        \
    X(CAMPAIGN_INSERT,                                                                            \
      "INSERT INTO campaigns (name, config_path, config_json, model_sha256, space_json, "         \
      "policy, seed, budget, status, created_at, updated_at) "                                    \
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'running', ?9, ?9)")                               \
    X(CAMPAIGN_REFRESH,                                                                           \
      "UPDATE campaigns SET config_path = ?2, config_json = ?3, policy = ?4, seed = ?5, "         \
      "budget = ?6, updated_at = ?7 WHERE id = ?1")                                               \
    X(CAMPAIGN_STATUS, "UPDATE campaigns SET status = ?2, updated_at = ?3 WHERE id = ?1")         \
    X(AGENT_UPSERT,                                                                               \
      "INSERT INTO agents (uid, name, version, arch, cpu, os, cores, mem_bytes, tags, "           \
      "backends, device_json, first_seen, last_seen, state) "                                     \
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, 'online') "                \
      "ON CONFLICT(uid) DO UPDATE SET name = excluded.name, version = excluded.version, "         \
      "arch = excluded.arch, cpu = excluded.cpu, os = excluded.os, cores = excluded.cores, "      \
      "mem_bytes = excluded.mem_bytes, tags = excluded.tags, backends = excluded.backends, "      \
      "device_json = excluded.device_json, last_seen = excluded.last_seen, "                      \
      "state = excluded.state RETURNING id")                                                      \
    X(AGENT_SEEN, "UPDATE agents SET last_seen = ?2, state = coalesce(?3, state) WHERE id = ?1")  \
    X(CONFIG_INSERT, "INSERT INTO configs (campaign_id, assignment, source, created_at) "         \
                     "VALUES (?1, ?2, ?3, ?4) ON CONFLICT(campaign_id, assignment) DO NOTHING")   \
    X(CONFIG_FIND, "SELECT id FROM configs WHERE campaign_id = ?1 AND assignment = ?2")           \
    X(EVAL_INSERT,                                                                                \
      "INSERT INTO evaluations (campaign_id, config_id, agent_id, attempts, status, "             \
      "error_code, error_message, accuracy, metric, latency_min_ms, latency_median_ms, "          \
      "latency_mean_ms, latency_p90_ms, latency_p99_ms, latency_std_ms, latency_cv, "             \
      "latency_runs, weight_bytes, arena_bytes, peak_rss_bytes, energy_j, energy_source, "        \
      "energy_reason, simulated, backend, started_at, finished_at, fetch_ms, run_ms, "            \
      "result_json) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, "   \
      "?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30) "               \
      "ON CONFLICT(config_id) DO NOTHING")                                                        \
    X(EVAL_COUNT, "SELECT count(*) FROM evaluations WHERE campaign_id = ?1")                      \
    X(ATTEMPT_INSERT,                                                                             \
      "INSERT INTO attempts (campaign_id, config_id, agent_id, attempt, outcome, error_code, "    \
      "error_message, started_at, finished_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)")      \
    X(PARETO_CLEAR, "DELETE FROM pareto_members WHERE campaign_id = ?1")                          \
    X(PARETO_INSERT,                                                                              \
      "INSERT OR IGNORE INTO pareto_members (campaign_id, evaluation_id) VALUES (?1, ?2)")        \
    X(PROGRESS_INSERT,                                                                            \
      "INSERT INTO progress (campaign_id, at, evaluations, front_size, hypervolume) "             \
      "VALUES (?1, ?2, ?3, ?4, ?5)")                                                              \
    X(SENS_INSERT,                                                                                \
      "INSERT INTO sensitivity (campaign_id, agent, layer, precision, metric, value, delta, "     \
      "baseline, simulated, error, created_at) "                                                  \
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)")                                    \
    X(SENS_EXISTS, "SELECT EXISTS (SELECT 1 FROM sensitivity WHERE campaign_id = ?1 "             \
                   "AND agent = ?2)")                                                            \
    X(POLICY_SAVE,                                                                                \
      "INSERT INTO policy_state (campaign_id, policy, last_evaluation_id, state_json, saved_at) " \
      "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(campaign_id) DO UPDATE SET "                       \
      "policy = excluded.policy, last_evaluation_id = excluded.last_evaluation_id, "              \
      "state_json = excluded.state_json, saved_at = excluded.saved_at")                          \
    X(POLICY_LOAD,                                                                                \
      "SELECT policy, last_evaluation_id, state_json FROM policy_state WHERE campaign_id = ?1")

enum {
#define BS__SQL_ENUM(id, sql) BS__Q_##id,
    BS__SQL_MAP(BS__SQL_ENUM)
#undef BS__SQL_ENUM
        BS__Q_COUNT
};

static const char *const s_sql[BS__Q_COUNT] = {
#define BS__SQL_TEXT(id, sql) sql,
    BS__SQL_MAP(BS__SQL_TEXT)
#undef BS__SQL_TEXT
};

struct bs_store {
    sqlite3 *db;                     /* the connection; owned */
    char *path;                      /* as given to bs_store_open, for messages; owned */
    int readonly;                    /* opened with SQLITE_OPEN_READONLY */
    sqlite3_stmt *stmt[BS__Q_COUNT]; /* prepared on first use; owned */
};

/* ---- helpers ---------------------------------------------------------------------------- */

/* Logs a failure of the current statement on st and returns BS_EDB. */
static int s_log_db(bs_store_t *st, const char *what)
{
    BS_ERROR("store", "%s: %s: %s", st->path, what, sqlite3_errmsg(st->db));
    return BS_EDB;
}

/* Fills err (or logs, when err is NULL) and returns BS_EDB. */
static int s_err_db(bs_store_t *st, bs_err_t *err, const char *what)
{
    if (!err)
        return s_log_db(st, what);
    return bs_err_set(err, BS_EDB, "%s: %s: %s", st->path, what, sqlite3_errmsg(st->db));
}

/* The cached statement q, reset and with no bindings; NULL (logged) if it fails to prepare. */
static sqlite3_stmt *s_stmt(bs_store_t *st, int q)
{
    sqlite3_stmt *s = st->stmt[q];
    if (s) {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
        return s;
    }
    if (sqlite3_prepare_v3(st->db, s_sql[q], -1, SQLITE_PREPARE_PERSISTENT, &s, NULL) !=
        SQLITE_OK) {
        s_log_db(st, "prepare");
        sqlite3_finalize(s);
        return NULL;
    }
    st->stmt[q] = s;
    return s;
}

static int s_bind_text(sqlite3_stmt *s, int i, const char *v)
{
    return v ? sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(s, i);
}

/* Empty strings are "unknown" too. */
static int s_bind_text_ne(sqlite3_stmt *s, int i, const char *v)
{
    return s_bind_text(s, i, v && v[0] ? v : NULL);
}

static int s_bind_dbl(sqlite3_stmt *s, int i, double v)
{
    return isnan(v) ? sqlite3_bind_null(s, i) : sqlite3_bind_double(s, i, v);
}

/* Negative counts are unknown. */
static int s_bind_count(sqlite3_stmt *s, int i, int64_t v)
{
    return v < 0 ? sqlite3_bind_null(s, i) : sqlite3_bind_int64(s, i, v);
}

/* 0: NULL (no such row, e.g. agent_id 0). */
static int s_bind_id(sqlite3_stmt *s, int i, int64_t v)
{
    return v <= 0 ? sqlite3_bind_null(s, i) : sqlite3_bind_int64(s, i, v);
}

/* Wall-clock ms as ISO-8601 UTC text; 0 or less is unknown. */
static int s_bind_time(sqlite3_stmt *s, int i, int64_t wall_ms)
{
    if (wall_ms <= 0)
        return sqlite3_bind_null(s, i);
    char iso[32];
    bs_iso8601(wall_ms, iso);
    return sqlite3_bind_text(s, i, iso, -1, SQLITE_TRANSIENT);
}

static double s_col_dbl(sqlite3_stmt *s, int i)
{
    return sqlite3_column_type(s, i) == SQLITE_NULL ? NAN : sqlite3_column_double(s, i);
}

static int64_t s_col_count(sqlite3_stmt *s, int i)
{
    return sqlite3_column_type(s, i) == SQLITE_NULL ? -1 : sqlite3_column_int64(s, i);
}

static void s_col_str(sqlite3_stmt *s, int i, char *out, size_t size, const char *dflt)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    snprintf(out, size, "%s", t ? (const char *)t : dflt);
}

static int s_str_eq(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

/* Runs a statement that returns no row (or whose rows are ignored); resets it. */
static int s_exec(bs_store_t *st, int q, const char *what)
{
    sqlite3_stmt *s = s_stmt(st, q);
    if (!s)
        return BS_EDB;
    int rc = sqlite3_step(s);
    int out = (rc == SQLITE_DONE || rc == SQLITE_ROW) ? 0 : s_log_db(st, what);
    sqlite3_reset(s);
    return out;
}

/* Steps a fully bound statement to its end; BS_EDB (err or log) on failure. Resets it. */
static int s_step_done(bs_store_t *st, sqlite3_stmt *s, int bind_rc, bs_err_t *err,
                       const char *what)
{
    int rc = bind_rc == SQLITE_OK ? sqlite3_step(s) : bind_rc;
    int out = rc == SQLITE_DONE ? 0 : s_err_db(st, err, what);
    sqlite3_reset(s);
    return out;
}

/* A write unit: its own IMMEDIATE transaction when the caller has none, else a savepoint. */
typedef struct s_tx {
    int own; /* 1: we began a transaction; 0: a savepoint inside the caller's */
} s_tx_t;

static int s_tx_begin(bs_store_t *st, s_tx_t *tx)
{
    tx->own = sqlite3_get_autocommit(st->db) != 0;
    return s_exec(st, tx->own ? BS__Q_BEGIN : BS__Q_SP, "begin");
}

static int s_tx_end(bs_store_t *st, s_tx_t *tx, int rc)
{
    if (rc == 0) {
        int c = s_exec(st, tx->own ? BS__Q_COMMIT : BS__Q_SP_RELEASE, "commit");
        if (c == 0)
            return 0;
        rc = c;
    }
    if (tx->own) {
        if (!sqlite3_get_autocommit(st->db))
            s_exec(st, BS__Q_ROLLBACK, "rollback");
    } else {
        s_exec(st, BS__Q_SP_ROLLBACK, "rollback to savepoint");
        s_exec(st, BS__Q_SP_RELEASE, "release savepoint");
    }
    return rc;
}

static void s_now(char iso[32])
{
    bs_iso8601(bs_wall_ms(), iso);
}

/* ---- open, migrate, close --------------------------------------------------------------- */

static int s_user_version(bs_store_t *st, int *version, bs_err_t *err)
{
    sqlite3_stmt *s = s_stmt(st, BS__Q_USER_VERSION);
    if (!s)
        return s_err_db(st, err, "reading the schema version");
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *version = sqlite3_column_int(s, 0);
    int out = rc == SQLITE_ROW ? 0 : s_err_db(st, err, "reading the schema version");
    sqlite3_reset(s);
    return out;
}

static int s_exec_sql(bs_store_t *st, const char *sql, bs_err_t *err, const char *what)
{
    char *msg = NULL;
    if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) == SQLITE_OK)
        return 0;
    bs_err_set(err, BS_EDB, "%s: %s: %s", st->path, what, msg ? msg : sqlite3_errmsg(st->db));
    if (!err)
        BS_ERROR("store", "%s: %s: %s", st->path, what, msg ? msg : sqlite3_errmsg(st->db));
    sqlite3_free(msg);
    return BS_EDB;
}

/* Applies s_migrations from the current version up, one transaction each. */
static int s_migrate(bs_store_t *st, bs_err_t *err)
{
    int created = 0; /* the file had no schema: building it is not an upgrade worth a line */
    for (;;) {
        int rc = s_exec_sql(st, "BEGIN IMMEDIATE", err, "starting a migration");
        if (rc)
            return rc;
        int v = 0;
        rc = s_user_version(st, &v, err);
        if (rc == 0 && v > BS_STORE_SCHEMA_VERSION)
            rc = bs_err_set(err, BS_EDB,
                            "%s: schema version %d is newer than this bitscout (%d); "
                            "upgrade bitscout",
                            st->path, v, BS_STORE_SCHEMA_VERSION);
        if (rc == 0 && v < 0)
            rc = bs_err_set(err, BS_EDB, "%s: invalid schema version %d", st->path, v);
        if (rc == 0 && v == BS_STORE_SCHEMA_VERSION)
            return s_exec_sql(st, "COMMIT", err, "ending a migration");
        if (rc == 0) {
            char what[64];
            snprintf(what, sizeof what, "migrating schema %d -> %d", v, v + 1);
            rc = s_exec_sql(st, s_migrations[v], err, what);
        }
        if (rc == 0) {
            char pragma[48];
            snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", v + 1);
            rc = s_exec_sql(st, pragma, err, "setting the schema version");
        }
        if (rc == 0)
            rc = s_exec_sql(st, "COMMIT", err, "committing a migration");
        if (rc) {
            if (!sqlite3_get_autocommit(st->db))
                sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
            return rc;
        }
        if (v == 0)
            created = 1;
        else if (!created)
            BS_INFO("store", "%s: schema upgraded from version %d to %d", st->path, v, v + 1);
    }
}

/* A newer schema is always refused; an older one (or none) only when it cannot be migrated
 * (read-only). */
static int s_check_version(bs_store_t *st, int can_migrate, bs_err_t *err)
{
    int v = 0;
    int rc = s_user_version(st, &v, err);
    if (rc)
        return rc;
    if (v == BS_STORE_SCHEMA_VERSION || (can_migrate && v >= 0 && v < BS_STORE_SCHEMA_VERSION))
        return 0;
    if (v > BS_STORE_SCHEMA_VERSION)
        return bs_err_set(err, BS_EDB,
                          "%s: schema version %d is newer than this bitscout (%d); "
                          "upgrade bitscout",
                          st->path, v, BS_STORE_SCHEMA_VERSION);
    if (v <= 0)
        return bs_err_set(err, BS_EDB,
                          "%s: not a bitscout results database (schema version "
                          "%d)",
                          st->path, v);
    return bs_err_set(err, BS_EDB,
                      "%s: schema version %d is older than this bitscout (%d); open it once "
                      "for writing (bitscout search) to upgrade it",
                      st->path, v, BS_STORE_SCHEMA_VERSION);
}

static int s_setup(bs_store_t *st, bs_err_t *err)
{
    if (sqlite3_busy_timeout(st->db, BS__BUSY_TIMEOUT_MS) != SQLITE_OK)
        return s_err_db(st, err, "setting the busy timeout");
    sqlite3_extended_result_codes(st->db, 1);
    return s_exec_sql(st, "PRAGMA foreign_keys = ON", err, "enabling foreign keys");
}

static int s_set_wal(bs_store_t *st, bs_err_t *err)
{
    int rc;
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(st->db, "PRAGMA journal_mode = WAL", -1, &s, NULL) != SQLITE_OK) {
        sqlite3_finalize(s);
        return s_err_db(st, err, "setting WAL mode");
    }
    int step = sqlite3_step(s);
    if (step == SQLITE_ROW) {
        const unsigned char *mode = sqlite3_column_text(s, 0);
        if (!mode || strcmp((const char *)mode, "wal") != 0)
            BS_WARN("store", "%s: WAL mode unavailable (journal mode %s); readers may block",
                    st->path, mode ? (const char *)mode : "?");
        rc = 0;
    } else {
        rc = s_err_db(st, err, "setting WAL mode");
    }
    sqlite3_finalize(s);
    if (rc)
        return rc;
    return s_exec_sql(st, "PRAGMA synchronous = NORMAL", err, "setting synchronous mode");
}

int bs_store_open(const char *path, int readonly, bs_store_t **out, bs_err_t *err)
{
    if (!path || !out)
        return bs_err_set(err, BS_EINVAL, "bs_store_open: path and out are required");
    *out = NULL;
    if (readonly) {
        struct stat sb;
        if (stat(path, &sb) != 0)
            return bs_err_set(err, BS_ENOENT, "%s: no such database", path);
        if (!S_ISREG(sb.st_mode))
            return bs_err_set(err, BS_EDB, "%s: not a regular file", path);
    }
    bs_store_t *st = bs_calloc(1, sizeof *st);
    if (!st)
        return bs_err_set(err, BS_ENOMEM, "%s: out of memory opening the database", path);
    st->path = bs_strdup(path);
    if (!st->path) {
        bs_free(st);
        return bs_err_set(err, BS_ENOMEM, "%s: out of memory opening the database", path);
    }
    st->readonly = readonly != 0;
    int flags = readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    int rc;
    if (sqlite3_open_v2(path, &st->db, flags, NULL) != SQLITE_OK) {
        if (st->db)
            rc = bs_err_set(err, BS_EDB, "%s: cannot open: %s", path, sqlite3_errmsg(st->db));
        else
            rc = bs_err_set(err, BS_ENOMEM, "%s: out of memory opening the database", path);
    } else {
        rc = s_setup(st, err);
        /* Refuse a newer schema before changing anything in the file. */
        if (rc == 0)
            rc = s_check_version(st, !readonly, err);
        if (rc == 0 && !readonly)
            rc = s_set_wal(st, err);
        if (rc == 0 && !readonly)
            rc = s_migrate(st, err);
    }
    if (rc) {
        bs_store_close(&st);
        return rc;
    }
    *out = st;
    return 0;
}

void bs_store_close(bs_store_t **stp)
{
    if (!stp || !*stp)
        return;
    bs_store_t *st = *stp;
    for (int i = 0; i < BS__Q_COUNT; i++)
        sqlite3_finalize(st->stmt[i]);
    if (st->db && sqlite3_close(st->db) != SQLITE_OK) {
        BS_WARN("store", "%s: close: %s", st->path, sqlite3_errmsg(st->db));
        sqlite3_close_v2(st->db);
    }
    bs_free(st->path);
    bs_free(st);
    *stp = NULL;
}

sqlite3 *bs_store_db(bs_store_t *st)
{
    return st ? st->db : NULL;
}

int bs_store_schema_version(bs_store_t *st)
{
    int v = 0;
    int rc = s_user_version(st, &v, NULL);
    return rc ? rc : v;
}

int bs_store_begin(bs_store_t *st)
{
    return s_exec(st, BS__Q_BEGIN, "begin");
}

int bs_store_commit(bs_store_t *st)
{
    return s_exec(st, BS__Q_COMMIT, "commit");
}

void bs_store_rollback(bs_store_t *st)
{
    if (!sqlite3_get_autocommit(st->db))
        s_exec(st, BS__Q_ROLLBACK, "rollback");
}

/* ---- campaigns -------------------------------------------------------------------------- */

/* The first 12 hex digits of a hash, for messages. */
static const char *s_short(const char *h, char buf[16])
{
    snprintf(buf, 16, "%.12s", h ? h : "none");
    return buf;
}

int bs_store_campaign_open(bs_store_t *st, const bs_campaign_rec_t *rec, int64_t *campaign_id,
                           int *resumed, bs_err_t *err)
{
    if (!rec || !rec->name || !rec->name[0])
        return bs_err_set(err, BS_EINVAL, "%s: a campaign needs a name", st->path);
    s_tx_t tx;
    int rc = s_tx_begin(st, &tx);
    if (rc)
        return s_err_db(st, err, "starting a transaction");
    char now[32];
    s_now(now);
    int64_t id = 0;
    int found = 0;
    sqlite3_stmt *s = s_stmt(st, BS__Q_CAMPAIGN_FIND);
    if (!s) {
        rc = s_err_db(st, err, "looking up the campaign");
        goto done;
    }
    s_bind_text(s, 1, rec->name);
    int step = sqlite3_step(s);
    if (step == SQLITE_ROW) {
        found = 1;
        id = sqlite3_column_int64(s, 0);
        const char *sha = (const char *)sqlite3_column_text(s, 1);
        char a[16], b[16];
        if (!s_str_eq(sha, rec->model_sha256)) {
            rc = bs_err_set(err, BS_EEXIST,
                            "%s: campaign '%s' already exists for a different model (sha256 "
                            "%s..., this one %s...); choose another campaign name or database",
                            st->path, rec->name, s_short(sha, a), s_short(rec->model_sha256, b));
        } else if (!s_str_eq((const char *)sqlite3_column_text(s, 2), rec->space_json)) {
            rc = bs_err_set(err, BS_EEXIST,
                            "%s: campaign '%s' already exists with a different search space "
                            "(layers or precision choices changed); choose another campaign "
                            "name or database",
                            st->path, rec->name);
        }
    } else if (step != SQLITE_DONE) {
        rc = s_err_db(st, err, "looking up the campaign");
    }
    sqlite3_reset(s);
    if (rc)
        goto done;

    if (found) {
        s = s_stmt(st, BS__Q_CAMPAIGN_REFRESH);
        if (!s) {
            rc = s_err_db(st, err, "updating the campaign");
            goto done;
        }
        int b = sqlite3_bind_int64(s, 1, id);
        b = b ? b : s_bind_text(s, 2, rec->config_path);
        b = b ? b : s_bind_text(s, 3, rec->config_json);
        b = b ? b : s_bind_text(s, 4, rec->policy);
        b = b ? b : sqlite3_bind_int64(s, 5, (int64_t)rec->seed);
        b = b ? b : sqlite3_bind_int64(s, 6, rec->budget);
        b = b ? b : sqlite3_bind_text(s, 7, now, -1, SQLITE_TRANSIENT);
        rc = s_step_done(st, s, b, err, "updating the campaign");
    } else {
        s = s_stmt(st, BS__Q_CAMPAIGN_INSERT);
        if (!s) {
            rc = s_err_db(st, err, "creating the campaign");
            goto done;
        }
        int b = s_bind_text(s, 1, rec->name);
        b = b ? b : s_bind_text(s, 2, rec->config_path);
        b = b ? b : s_bind_text(s, 3, rec->config_json);
        b = b ? b : s_bind_text(s, 4, rec->model_sha256);
        b = b ? b : s_bind_text(s, 5, rec->space_json);
        b = b ? b : s_bind_text(s, 6, rec->policy);
        b = b ? b : sqlite3_bind_int64(s, 7, (int64_t)rec->seed);
        b = b ? b : sqlite3_bind_int64(s, 8, rec->budget);
        b = b ? b : sqlite3_bind_text(s, 9, now, -1, SQLITE_TRANSIENT);
        rc = s_step_done(st, s, b, err, "creating the campaign");
        if (rc == 0)
            id = sqlite3_last_insert_rowid(st->db);
    }
done:;
    int end = s_tx_end(st, &tx, rc);
    if (end && !rc) /* the commit itself failed (logged) */
        return bs_err_set(err, end, "%s: could not commit campaign '%s' (see the log)", st->path,
                          rec->name);
    if (end)
        return end;
    if (campaign_id)
        *campaign_id = id;
    if (resumed)
        *resumed = found;
    return 0;
}

int bs_store_campaign_set_status(bs_store_t *st, int64_t campaign_id, const char *status)
{
    sqlite3_stmt *s = s_stmt(st, BS__Q_CAMPAIGN_STATUS);
    if (!s)
        return BS_EDB;
    char now[32];
    s_now(now);
    int b = sqlite3_bind_int64(s, 1, campaign_id);
    b = b ? b : s_bind_text(s, 2, status);
    b = b ? b : sqlite3_bind_text(s, 3, now, -1, SQLITE_TRANSIENT);
    int rc = s_step_done(st, s, b, NULL, "setting the campaign status");
    if (rc == 0 && sqlite3_changes(st->db) == 0) {
        BS_ERROR("store", "%s: no campaign with id %lld", st->path, (long long)campaign_id);
        return BS_ENOENT;
    }
    return rc;
}

/* ---- agents ----------------------------------------------------------------------------- */

int bs_store_agent_upsert(bs_store_t *st, const bs_agent_rec_t *rec, int64_t *agent_id)
{
    if (!rec || !rec->uid || !rec->uid[0]) {
        BS_ERROR("store", "%s: an agent needs a uid", st->path);
        return BS_EINVAL;
    }
    sqlite3_stmt *s = s_stmt(st, BS__Q_AGENT_UPSERT);
    if (!s)
        return BS_EDB;
    char now[32];
    s_now(now);
    int b = s_bind_text(s, 1, rec->uid);
    b = b ? b : s_bind_text(s, 2, rec->name);
    b = b ? b : s_bind_text(s, 3, rec->version);
    b = b ? b : s_bind_text(s, 4, rec->arch);
    b = b ? b : s_bind_text(s, 5, rec->cpu);
    b = b ? b : s_bind_text(s, 6, rec->os);
    b = b ? b : (rec->cores > 0 ? sqlite3_bind_int(s, 7, rec->cores) : sqlite3_bind_null(s, 7));
    b = b ? b : s_bind_count(s, 8, rec->mem_bytes);
    b = b ? b : s_bind_text(s, 9, rec->tags);
    b = b ? b : s_bind_text(s, 10, rec->backends);
    b = b ? b : s_bind_text(s, 11, rec->device_json);
    b = b ? b : sqlite3_bind_text(s, 12, now, -1, SQLITE_TRANSIENT);
    int step = b ? b : sqlite3_step(s);
    int rc = 0;
    if (step == SQLITE_ROW) {
        if (agent_id)
            *agent_id = sqlite3_column_int64(s, 0);
        step = sqlite3_step(s); /* finish the statement so the write completes */
    }
    if (step != SQLITE_DONE)
        rc = s_log_db(st, "recording the agent");
    sqlite3_reset(s);
    return rc;
}

int bs_store_agent_seen(bs_store_t *st, int64_t agent_id, const char *state)
{
    sqlite3_stmt *s = s_stmt(st, BS__Q_AGENT_SEEN);
    if (!s)
        return BS_EDB;
    char now[32];
    s_now(now);
    int b = sqlite3_bind_int64(s, 1, agent_id);
    b = b ? b : sqlite3_bind_text(s, 2, now, -1, SQLITE_TRANSIENT);
    b = b ? b : s_bind_text(s, 3, state);
    int rc = s_step_done(st, s, b, NULL, "updating the agent");
    if (rc == 0 && sqlite3_changes(st->db) == 0) {
        BS_ERROR("store", "%s: no agent with id %lld", st->path, (long long)agent_id);
        return BS_ENOENT;
    }
    return rc;
}

/* ---- configs and evaluations ------------------------------------------------------------ */

int bs_store_config_add(bs_store_t *st, int64_t campaign_id, const char *assignment,
                        const char *source, int64_t *config_id)
{
    if (!assignment) {
        BS_ERROR("store", "%s: a config needs an assignment", st->path);
        return BS_EINVAL;
    }
    sqlite3_stmt *s = s_stmt(st, BS__Q_CONFIG_INSERT);
    if (!s)
        return BS_EDB;
    char now[32];
    s_now(now);
    int b = sqlite3_bind_int64(s, 1, campaign_id);
    b = b ? b : s_bind_text(s, 2, assignment);
    b = b ? b : s_bind_text(s, 3, source);
    b = b ? b : sqlite3_bind_text(s, 4, now, -1, SQLITE_TRANSIENT);
    int rc = s_step_done(st, s, b, NULL, "adding a config");
    if (rc)
        return rc;
    if (sqlite3_changes(st->db) == 1) {
        if (config_id)
            *config_id = sqlite3_last_insert_rowid(st->db);
        return 0;
    }
    /* The (campaign, assignment) pair exists already: report its id. */
    s = s_stmt(st, BS__Q_CONFIG_FIND);
    if (!s)
        return BS_EDB;
    b = sqlite3_bind_int64(s, 1, campaign_id);
    b = b ? b : s_bind_text(s, 2, assignment);
    int step = b ? b : sqlite3_step(s);
    if (step == SQLITE_ROW) {
        if (config_id)
            *config_id = sqlite3_column_int64(s, 0);
        rc = BS_EEXIST;
    } else {
        rc = s_log_db(st, "looking up an existing config");
    }
    sqlite3_reset(s);
    return rc;
}

int bs_store_eval_add(bs_store_t *st, const bs_eval_rec_t *rec, int64_t *eval_id)
{
    if (!rec)
        return BS_EINVAL;
    sqlite3_stmt *s = s_stmt(st, BS__Q_EVAL_INSERT);
    if (!s)
        return BS_EDB;
    const bs_metrics_t *m = &rec->m;
    int b = sqlite3_bind_int64(s, 1, rec->campaign_id);
    b = b ? b : sqlite3_bind_int64(s, 2, rec->config_id);
    b = b ? b : s_bind_id(s, 3, rec->agent_id);
    b = b ? b : sqlite3_bind_int(s, 4, rec->attempts);
    b = b ? b : sqlite3_bind_text(s, 5, rec->ok ? "ok" : "failed", -1, SQLITE_STATIC);
    b = b ? b : s_bind_text_ne(s, 6, rec->error_code);
    b = b ? b : s_bind_text_ne(s, 7, rec->error_message);
    b = b ? b : s_bind_dbl(s, 8, m->accuracy);
    b = b ? b : s_bind_text_ne(s, 9, m->metric);
    b = b ? b : s_bind_dbl(s, 10, m->lat_min_ms);
    b = b ? b : s_bind_dbl(s, 11, m->lat_median_ms);
    b = b ? b : s_bind_dbl(s, 12, m->lat_mean_ms);
    b = b ? b : s_bind_dbl(s, 13, m->lat_p90_ms);
    b = b ? b : s_bind_dbl(s, 14, m->lat_p99_ms);
    b = b ? b : s_bind_dbl(s, 15, m->lat_std_ms);
    b = b ? b : s_bind_dbl(s, 16, m->lat_cv);
    b = b ? b : sqlite3_bind_int64(s, 17, m->lat_runs > 0 ? m->lat_runs : 0);
    b = b ? b : s_bind_count(s, 18, m->weight_bytes);
    b = b ? b : s_bind_count(s, 19, m->arena_bytes);
    b = b ? b : s_bind_count(s, 20, m->peak_rss_bytes);
    b = b ? b : s_bind_dbl(s, 21, m->energy_j);
    b = b ? b : s_bind_text_ne(s, 22, m->energy_source);
    b = b ? b : s_bind_text_ne(s, 23, m->energy_reason);
    b = b ? b : sqlite3_bind_int(s, 24, m->simulated ? 1 : 0);
    b = b ? b : s_bind_text_ne(s, 25, m->backend);
    b = b ? b : s_bind_time(s, 26, rec->started_ms);
    b = b ? b : s_bind_time(s, 27, rec->finished_ms);
    b = b ? b : s_bind_dbl(s, 28, rec->fetch_ms);
    b = b ? b : s_bind_dbl(s, 29, rec->run_ms);
    b = b ? b : s_bind_text(s, 30, rec->result_json);
    int rc = s_step_done(st, s, b, NULL, "adding an evaluation");
    if (rc)
        return rc;
    if (sqlite3_changes(st->db) == 0)
        return BS_EEXIST; /* the config already has its evaluation */
    if (eval_id)
        *eval_id = sqlite3_last_insert_rowid(st->db);
    return 0;
}

int bs_store_attempt_add(bs_store_t *st, int64_t campaign_id, int64_t config_id, int64_t agent_id,
                         int attempt, const char *outcome, const char *error_code,
                         const char *message, int64_t started_ms, int64_t finished_ms)
{
    if (!outcome) {
        BS_ERROR("store", "%s: an attempt needs an outcome", st->path);
        return BS_EINVAL;
    }
    sqlite3_stmt *s = s_stmt(st, BS__Q_ATTEMPT_INSERT);
    if (!s)
        return BS_EDB;
    int b = sqlite3_bind_int64(s, 1, campaign_id);
    b = b ? b : s_bind_id(s, 2, config_id);
    b = b ? b : s_bind_id(s, 3, agent_id);
    b = b ? b : sqlite3_bind_int(s, 4, attempt);
    b = b ? b : s_bind_text(s, 5, outcome);
    b = b ? b : s_bind_text_ne(s, 6, error_code);
    b = b ? b : s_bind_text_ne(s, 7, message);
    b = b ? b : s_bind_time(s, 8, started_ms);
    b = b ? b : s_bind_time(s, 9, finished_ms);
    return s_step_done(st, s, b, NULL, "adding an attempt");
}

int bs_store_eval_count(bs_store_t *st, int64_t campaign_id, int64_t *n)
{
    sqlite3_stmt *s = s_stmt(st, BS__Q_EVAL_COUNT);
    if (!s)
        return BS_EDB;
    int b = sqlite3_bind_int64(s, 1, campaign_id);
    int step = b ? b : sqlite3_step(s);
    int rc = 0;
    if (step == SQLITE_ROW) {
        if (n)
            *n = sqlite3_column_int64(s, 0);
    } else {
        rc = s_log_db(st, "counting evaluations");
    }
    sqlite3_reset(s);
    return rc;
}

/* ---- walks ------------------------------------------------------------------------------ */

/* Prepares a walk's one-off statement (sql, with ?1 bound to campaign_id) into *s, which the
 * caller finalizes (NULL when it failed to prepare). 0, or BS_EDB logged as `what`. */
static int s_walk_open(bs_store_t *st, const char *sql, int64_t campaign_id, const char *what,
                       sqlite3_stmt **s)
{
    *s = NULL;
    if (sqlite3_prepare_v2(st->db, sql, -1, s, NULL) != SQLITE_OK) {
        sqlite3_finalize(*s);
        *s = NULL;
        return s_log_db(st, what);
    }
    return sqlite3_bind_int64(*s, 1, campaign_id) ? s_log_db(st, what) : 0;
}

/* Steps a walk: 1 with a row to read, 0 past the last, or BS_EDB logged as `what`. */
static int s_walk_step(bs_store_t *st, sqlite3_stmt *s, const char *what)
{
    int step = sqlite3_step(s);
    if (step == SQLITE_ROW)
        return 1;
    return step == SQLITE_DONE ? 0 : s_log_db(st, what);
}

int bs_store_each_config(bs_store_t *st, int64_t campaign_id, bs_store_config_cb cb, void *ud)
{
    static const char sql[] =
        "SELECT c.id, c.assignment, EXISTS (SELECT 1 FROM evaluations e "
        "WHERE e.config_id = c.id) FROM configs c WHERE c.campaign_id = ?1 ORDER BY c.id";
    sqlite3_stmt *s = NULL;
    int rc = s_walk_open(st, sql, campaign_id, "listing configs", &s);
    while (rc == 0) {
        int row = s_walk_step(st, s, "listing configs");
        if (row <= 0) {
            rc = row;
            break;
        }
        const char *a = (const char *)sqlite3_column_text(s, 1);
        rc = cb(ud, sqlite3_column_int64(s, 0), a ? a : "", sqlite3_column_int(s, 2));
    }
    sqlite3_finalize(s);
    return rc;
}

int bs_store_each_eval(bs_store_t *st, int64_t campaign_id, bs_store_eval_cb cb, void *ud)
{
    static const char sql[] =
        "SELECT e.id, e.config_id, c.assignment, e.status, e.accuracy, e.metric, "
        "e.latency_min_ms, e.latency_median_ms, e.latency_mean_ms, e.latency_p90_ms, "
        "e.latency_p99_ms, e.latency_std_ms, e.latency_cv, e.latency_runs, e.weight_bytes, "
        "e.arena_bytes, e.peak_rss_bytes, e.energy_j, e.energy_source, e.energy_reason, "
        "e.simulated, e.backend, e.result_json FROM evaluations e "
        "JOIN configs c ON c.id = e.config_id WHERE e.campaign_id = ?1 ORDER BY e.id";
    sqlite3_stmt *s = NULL;
    int rc = s_walk_open(st, sql, campaign_id, "listing evaluations", &s);
    while (rc == 0) {
        int row = s_walk_step(st, s, "listing evaluations");
        if (row <= 0) {
            rc = row;
            break;
        }
        bs_metrics_t m;
        bs_metrics_init(&m);
        const char *status = (const char *)sqlite3_column_text(s, 3);
        int ok = status && strcmp(status, "ok") == 0;
        m.accuracy = s_col_dbl(s, 4);
        s_col_str(s, 5, m.metric, sizeof m.metric, "");
        m.lat_min_ms = s_col_dbl(s, 6);
        m.lat_median_ms = s_col_dbl(s, 7);
        m.lat_mean_ms = s_col_dbl(s, 8);
        m.lat_p90_ms = s_col_dbl(s, 9);
        m.lat_p99_ms = s_col_dbl(s, 10);
        m.lat_std_ms = s_col_dbl(s, 11);
        m.lat_cv = s_col_dbl(s, 12);
        m.lat_runs = sqlite3_column_type(s, 13) == SQLITE_NULL ? 0 : sqlite3_column_int64(s, 13);
        m.weight_bytes = s_col_count(s, 14);
        m.arena_bytes = s_col_count(s, 15);
        m.peak_rss_bytes = s_col_count(s, 16);
        m.energy_j = s_col_dbl(s, 17);
        s_col_str(s, 18, m.energy_source, sizeof m.energy_source, "none");
        s_col_str(s, 19, m.energy_reason, sizeof m.energy_reason, "");
        m.simulated = sqlite3_column_int(s, 20) != 0;
        s_col_str(s, 21, m.backend, sizeof m.backend, "");
        const char *a = (const char *)sqlite3_column_text(s, 2);
        const char *rj = (const char *)sqlite3_column_text(s, 22);
        rc = cb(ud, sqlite3_column_int64(s, 0), sqlite3_column_int64(s, 1), a ? a : "", ok, &m,
                rj);
    }
    sqlite3_finalize(s);
    return rc;
}

/* ---- Pareto front and progress ---------------------------------------------------------- */

int bs_store_pareto_replace(bs_store_t *st, int64_t campaign_id, const int64_t *eval_ids, int n)
{
    if (n < 0 || (n > 0 && !eval_ids))
        return BS_EINVAL;
    s_tx_t tx;
    int rc = s_tx_begin(st, &tx);
    if (rc)
        return rc;
    sqlite3_stmt *s = s_stmt(st, BS__Q_PARETO_CLEAR);
    if (!s)
        rc = BS_EDB;
    else
        rc = s_step_done(st, s, sqlite3_bind_int64(s, 1, campaign_id), NULL,
                         "clearing the Pareto front");
    for (int i = 0; rc == 0 && i < n; i++) {
        s = s_stmt(st, BS__Q_PARETO_INSERT);
        if (!s) {
            rc = BS_EDB;
            break;
        }
        int b = sqlite3_bind_int64(s, 1, campaign_id);
        b = b ? b : sqlite3_bind_int64(s, 2, eval_ids[i]);
        rc = s_step_done(st, s, b, NULL, "recording the Pareto front");
    }
    return s_tx_end(st, &tx, rc);
}

int bs_store_progress_add(bs_store_t *st, int64_t campaign_id, int64_t evals, int front_size,
                          double hypervolume)
{
    sqlite3_stmt *s = s_stmt(st, BS__Q_PROGRESS_INSERT);
    if (!s)
        return BS_EDB;
    char now[32];
    s_now(now);
    int b = sqlite3_bind_int64(s, 1, campaign_id);
    b = b ? b : sqlite3_bind_text(s, 2, now, -1, SQLITE_TRANSIENT);
    b = b ? b : sqlite3_bind_int64(s, 3, evals);
    b = b ? b : sqlite3_bind_int(s, 4, front_size);
    b = b ? b : s_bind_dbl(s, 5, hypervolume);
    return s_step_done(st, s, b, NULL, "recording progress");
}

/* ---- policy state ----------------------------------------------------------------------- */

int bs_store_policy_save(bs_store_t *st, int64_t campaign_id, const char *policy,
                         int64_t last_eval_id, const char *state_json)
{
    if (!policy || !state_json)
        return BS_EINVAL;
    sqlite3_stmt *s = s_stmt(st, BS__Q_POLICY_SAVE);
    if (!s)
        return BS_EDB;
    char now[32];
    s_now(now);
    int b = sqlite3_bind_int64(s, 1, campaign_id);
    b = b ? b : sqlite3_bind_text(s, 2, policy, -1, SQLITE_STATIC);
    b = b ? b : sqlite3_bind_int64(s, 3, last_eval_id);
    b = b ? b : sqlite3_bind_text(s, 4, state_json, -1, SQLITE_STATIC);
    b = b ? b : sqlite3_bind_text(s, 5, now, -1, SQLITE_TRANSIENT);
    return s_step_done(st, s, b, NULL, "saving the policy state");
}

int bs_store_policy_load(bs_store_t *st, int64_t campaign_id, char **policy,
                         int64_t *last_eval_id, char **state_json)
{
    *policy = NULL;
    *state_json = NULL;
    *last_eval_id = 0;
    sqlite3_stmt *s = s_stmt(st, BS__Q_POLICY_LOAD);
    if (!s)
        return BS_EDB;
    int rc = sqlite3_bind_int64(s, 1, campaign_id);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    int out;
    if (rc == SQLITE_ROW) {
        const char *p = (const char *)sqlite3_column_text(s, 0);
        const char *j = (const char *)sqlite3_column_text(s, 2);
        *last_eval_id = sqlite3_column_int64(s, 1);
        *policy = bs_strdup(p ? p : "");
        *state_json = bs_strdup(j ? j : "");
        out = *policy && *state_json ? 0 : BS_ENOMEM;
        if (out) {
            bs_free(*policy);
            bs_free(*state_json);
            *policy = NULL;
            *state_json = NULL;
        }
    } else if (rc == SQLITE_DONE) {
        out = BS_ENOENT;
    } else {
        BS_ERROR("store", "%s: loading the policy state: %s", st->path, sqlite3_errmsg(st->db));
        out = BS_EDB;
    }
    sqlite3_reset(s);
    return out;
}

/* ---- sensitivity ------------------------------------------------------------------------ */

int bs_store_sensitivity_add(bs_store_t *st, const bs_sens_rec_t *rec, bs_err_t *err)
{
    if (!rec || !rec->agent || !rec->agent[0] || rec->n_rows < 0 || (rec->n_rows && !rec->rows))
        return bs_err_set(err, BS_EINVAL, "%s: sensitivity rows need an agent name and rows",
                          st->path);
    for (int i = 0; i < rec->n_rows; i++)
        if (!rec->rows[i].layer || !rec->rows[i].precision)
            return bs_err_set(err, BS_EINVAL, "%s: sensitivity row %d has no layer or "
                              "precision", st->path, i);
    s_tx_t tx;
    int rc = s_tx_begin(st, &tx);
    if (rc)
        return bs_err_set(err, rc, "%s: cannot begin a transaction (see the log)", st->path);
    sqlite3_stmt *s = s_stmt(st, BS__Q_SENS_EXISTS);
    if (!s) {
        rc = s_err_db(st, err, "looking up sensitivity rows");
        goto done;
    }
    int b = sqlite3_bind_int64(s, 1, rec->campaign_id);
    b = b ? b : s_bind_text(s, 2, rec->agent);
    int step = b ? b : sqlite3_step(s);
    int exists = step == SQLITE_ROW && sqlite3_column_int(s, 0) != 0;
    if (step != SQLITE_ROW)
        rc = s_err_db(st, err, "looking up sensitivity rows");
    sqlite3_reset(s);
    if (rc)
        goto done;
    if (exists) {
        rc = bs_err_set(err, BS_EEXIST, "%s: campaign %lld already has sensitivity rows for "
                        "agent '%s'", st->path, (long long)rec->campaign_id, rec->agent);
        goto done;
    }
    char now[32];
    s_now(now);
    for (int i = 0; i < rec->n_rows && rc == 0; i++) {
        const bs_sens_row_t *r = &rec->rows[i];
        if (!(s = s_stmt(st, BS__Q_SENS_INSERT))) {
            rc = s_err_db(st, err, "adding sensitivity rows");
            break;
        }
        b = sqlite3_bind_int64(s, 1, rec->campaign_id);
        b = b ? b : s_bind_text(s, 2, rec->agent);
        b = b ? b : s_bind_text(s, 3, r->layer);
        b = b ? b : s_bind_text(s, 4, r->precision);
        b = b ? b : s_bind_text_ne(s, 5, rec->metric);
        b = b ? b : s_bind_dbl(s, 6, r->value);
        b = b ? b : s_bind_dbl(s, 7, isnan(r->value) ? NAN : r->delta);
        b = b ? b : s_bind_dbl(s, 8, rec->baseline);
        b = b ? b : sqlite3_bind_int(s, 9, rec->simulated ? 1 : 0);
        b = b ? b : s_bind_text_ne(s, 10, r->error);
        b = b ? b : sqlite3_bind_text(s, 11, now, -1, SQLITE_TRANSIENT);
        step = b ? b : sqlite3_step(s);
        if (step == SQLITE_CONSTRAINT_UNIQUE)
            rc = bs_err_set(err, BS_EEXIST, "%s: sensitivity row %d (%s at %s) is there twice",
                            st->path, i, r->layer, r->precision);
        else if (step != SQLITE_DONE)
            rc = s_err_db(st, err, "adding sensitivity rows");
        sqlite3_reset(s);
    }
done:;
    int end = s_tx_end(st, &tx, rc);
    if (end && !rc)
        return bs_err_set(err, end, "%s: could not commit the sensitivity rows of agent '%s' "
                          "(see the log)", st->path, rec->agent);
    return end;
}

int bs_store_each_sensitivity(bs_store_t *st, int64_t campaign_id, const char *agent,
                              bs_store_sens_cb cb, void *ud)
{
    static const char sql_all[] =
        "SELECT agent, layer, precision, metric, value, delta, baseline, simulated, error, "
        "created_at FROM sensitivity WHERE campaign_id = ?1 ORDER BY agent, id";
    static const char sql_one[] =
        "SELECT agent, layer, precision, metric, value, delta, baseline, simulated, error, "
        "created_at FROM sensitivity WHERE campaign_id = ?1 AND agent = ?2 ORDER BY id";
    sqlite3_stmt *s = NULL;
    const char *what = "listing sensitivity rows";
    int rc = s_walk_open(st, agent ? sql_one : sql_all, campaign_id, what, &s);
    if (rc == 0 && agent && s_bind_text(s, 2, agent) != SQLITE_OK)
        rc = s_log_db(st, what);
    while (rc == 0) {
        int row = s_walk_step(st, s, what);
        if (row <= 0) {
            rc = row;
            break;
        }
        const char *t[10];
        for (int i = 0; i < 10; i++)
            t[i] = (const char *)sqlite3_column_text(s, i);
        bs_sens_entry_t e = {
            .agent = t[0] ? t[0] : "",
            .layer = t[1] ? t[1] : "",
            .precision = t[2] ? t[2] : "",
            .metric = t[3] ? t[3] : "",
            .value = s_col_dbl(s, 4),
            .delta = s_col_dbl(s, 5),
            .baseline = s_col_dbl(s, 6),
            .simulated = sqlite3_column_int(s, 7) != 0,
            .error = t[8],
            .created_at = t[9] ? t[9] : "",
        };
        rc = cb(ud, &e);
    }
    sqlite3_finalize(s);
    return rc;
}

static void s_sens_entry_clear(bs_sens_entry_t *e)
{
    bs_free((char *)e->agent);
    bs_free((char *)e->layer);
    bs_free((char *)e->precision);
    bs_free((char *)e->metric);
    bs_free((char *)e->error);
    bs_free((char *)e->created_at);
}

/* Appends a deep copy of e to the list (the walk callback of bs_store_sensitivity_load). */
static int s_sens_collect(void *ud, const bs_sens_entry_t *e)
{
    bs_sens_list_t *l = ud;
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 64;
        bs_sens_entry_t *rows = bs_realloc(l->rows, sizeof *rows * (size_t)cap);
        if (!rows)
            return BS_ENOMEM;
        l->rows = rows;
        l->cap = cap;
    }
    bs_sens_entry_t c = *e;
    c.agent = bs_strdup(e->agent);
    c.layer = bs_strdup(e->layer);
    c.precision = bs_strdup(e->precision);
    c.metric = bs_strdup(e->metric);
    c.error = e->error ? bs_strdup(e->error) : NULL;
    c.created_at = bs_strdup(e->created_at);
    if (!c.agent || !c.layer || !c.precision || !c.metric || (e->error && !c.error) ||
        !c.created_at) {
        s_sens_entry_clear(&c);
        return BS_ENOMEM;
    }
    l->rows[l->n++] = c;
    return 0;
}

int bs_store_sensitivity_load(bs_store_t *st, int64_t campaign_id, const char *agent,
                              bs_sens_list_t *out)
{
    memset(out, 0, sizeof *out);
    int rc = bs_store_each_sensitivity(st, campaign_id, agent, s_sens_collect, out);
    if (rc)
        bs_sens_list_free(out);
    return rc;
}

void bs_sens_list_free(bs_sens_list_t *l)
{
    if (!l)
        return;
    for (int i = 0; i < l->n; i++)
        s_sens_entry_clear(&l->rows[i]);
    bs_free(l->rows);
    memset(l, 0, sizeof *l);
}

/*
 * bs_query.c - `bitscout query`: each subcommand is one SQL statement over the documented
 * tables and views (db/schema.md), printed by one generic printer.
 *
 * The printer takes any prepared statement and writes its rows as an aligned table, CSV or
 * JSON, so the subcommands below are only their SQL. The whole query runs inside one read
 * transaction: the table format steps the statement twice (first to measure column widths,
 * then to print) and both passes see the same snapshot, so nothing is buffered in memory.
 *
 * Campaign selection: --campaign NAME filters by name (an unknown name is an error that lists
 * the campaigns there are). Without it, a database with one campaign shows that campaign and
 * a database with several shows all of them with a leading `campaign` column.
 *
 * Cells: NULL prints as "-" in tables, empty in CSV and null in JSON; REALs print with up to 4
 * decimals in tables (4 significant digits below 0.01) and exactly (shortest form that reads
 * back to the same double) in CSV and JSON. Rows from the sim backend are flagged by their
 * `simulated` column, and a table that shows any says so in a note under it.
 */
#include "bs_query.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bs_alloc.h"
#include "bs_error.h"
#include "bs_store.h"

#define BS__QUERY_MAX_COLS 32
#define BS__QUERY_SQL_MAX 2048

enum { BS__FMT_TABLE, BS__FMT_CSV, BS__FMT_JSON };

static const char s_usage[] =
    "usage: bitscout query campaigns|agents|evals|pareto|progress|sensitivity [--db FILE]\n"
    "                      [--campaign NAME] [--format table|csv|json]\n"
    "\n"
    "  campaigns    every campaign: status, policy, budget, evaluations, failures, front size\n"
    "  agents       every agent that has joined: device (OS, kernel, governor, max MHz per\n"
    "               cluster, engine kernels) and its evaluation count\n"
    "  evals        evaluations in the order they landed\n"
    "  pareto       the Pareto front, best accuracy first\n"
    "  progress     evaluations, front size and hypervolume over time\n"
    "  sensitivity  each layer alone at each precision, per agent: the metric and its change\n"
    "               from the all-fp32 baseline\n"
    "\n"
    "  --db FILE        the results database (default results.db)\n"
    "  --campaign NAME  only this campaign (default: the only one, or all with a campaign\n"
    "                   column when the database holds several)\n"
    "  --format F       table (default), csv or json\n";

static const char s_sim_note[] =
    "note: rows marked simulated=1 come from the sim backend: synthetic numbers, not "
    "measurements\n";

/* ---- cell formatting -------------------------------------------------------------------- */

/* Table form of a REAL: up to 4 decimals, trailing zeros dropped; 4 significant digits for
 * small magnitudes so 0.00031 J does not print as 0.0003. */
static void s_fmt_real_table(double v, char *buf, size_t size)
{
    double a = fabs(v);
    if (a != 0.0 && a < 0.01) {
        snprintf(buf, size, "%.4g", v);
        return;
    }
    snprintf(buf, size, "%.4f", v);
    if (!strchr(buf, '.'))
        return; /* inf, nan */
    size_t n = strlen(buf);
    while (n > 0 && buf[n - 1] == '0')
        buf[--n] = '\0';
    if (n > 0 && buf[n - 1] == '.')
        buf[--n] = '\0';
    if (strcmp(buf, "-0") == 0)
        snprintf(buf, size, "0");
}

/* Exact form of a REAL: the shortest of %.15g/%.17g that reads back to the same value. */
static void s_fmt_real_exact(double v, char *buf, size_t size)
{
    snprintf(buf, size, "%.15g", v);
    if (strtod(buf, NULL) != v)
        snprintf(buf, size, "%.17g", v);
}

/* The text of cell i in the given format; points into buf or at the statement's own text. */
static const char *s_cell(sqlite3_stmt *s, int i, int fmt, char *buf, size_t size)
{
    switch (sqlite3_column_type(s, i)) {
    case SQLITE_NULL:
        return fmt == BS__FMT_TABLE ? "-" : "";
    case SQLITE_INTEGER:
        snprintf(buf, size, "%lld", (long long)sqlite3_column_int64(s, i));
        return buf;
    case SQLITE_FLOAT:
        if (fmt == BS__FMT_TABLE)
            s_fmt_real_table(sqlite3_column_double(s, i), buf, size);
        else
            s_fmt_real_exact(sqlite3_column_double(s, i), buf, size);
        return buf;
    default: {
        const unsigned char *t = sqlite3_column_text(s, i);
        return t ? (const char *)t : "";
    }
    }
}

/* Display width of UTF-8 text: one per code point. */
static size_t s_width(const char *t)
{
    size_t w = 0;
    for (; *t; t++)
        w += ((unsigned char)*t & 0xC0) != 0x80;
    return w;
}

static int s_is_simulated_row(sqlite3_stmt *s, int sim_col)
{
    return sim_col >= 0 && sqlite3_column_type(s, sim_col) == SQLITE_INTEGER &&
           sqlite3_column_int64(s, sim_col) != 0;
}

/* ---- printers --------------------------------------------------------------------------- */

typedef struct q_ctx {
    const char *db_path; /* for messages */
    sqlite3 *db;
    FILE *out;
} q_ctx_t;

static int s_step_failed(q_ctx_t *q)
{
    fprintf(stderr, "bitscout query: %s: %s\n", q->db_path, sqlite3_errmsg(q->db));
    return 1;
}

static void s_pad(FILE *out, size_t n)
{
    while (n--)
        fputc(' ', out);
}

static int s_print_table(q_ctx_t *q, sqlite3_stmt *s)
{
    int ncol = sqlite3_column_count(s);
    size_t width[BS__QUERY_MAX_COLS];
    /* Right-align a column when it holds numbers and nothing else (NULLs aside). */
    int numeric[BS__QUERY_MAX_COLS], texty[BS__QUERY_MAX_COLS];
    int sim_col = -1, any_sim = 0;
    char buf[64];
    for (int i = 0; i < ncol; i++) {
        width[i] = s_width(sqlite3_column_name(s, i));
        numeric[i] = texty[i] = 0;
        if (strcmp(sqlite3_column_name(s, i), "simulated") == 0)
            sim_col = i;
    }
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        for (int i = 0; i < ncol; i++) {
            int type = sqlite3_column_type(s, i);
            if (type == SQLITE_TEXT || type == SQLITE_BLOB)
                texty[i] = 1;
            else if (type != SQLITE_NULL)
                numeric[i] = 1;
            size_t w = s_width(s_cell(s, i, BS__FMT_TABLE, buf, sizeof buf));
            if (w > width[i])
                width[i] = w;
        }
        any_sim |= s_is_simulated_row(s, sim_col);
    }
    if (rc != SQLITE_DONE)
        return s_step_failed(q);
    sqlite3_reset(s);
    for (int i = 0; i < ncol; i++)
        numeric[i] &= !texty[i];

    for (int i = 0; i < ncol; i++) {
        const char *name = sqlite3_column_name(s, i);
        size_t pad = width[i] - s_width(name);
        if (i)
            fputs("  ", q->out);
        if (numeric[i])
            s_pad(q->out, pad);
        fputs(name, q->out);
        if (!numeric[i] && i + 1 < ncol)
            s_pad(q->out, pad);
    }
    fputc('\n', q->out);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        for (int i = 0; i < ncol; i++) {
            const char *t = s_cell(s, i, BS__FMT_TABLE, buf, sizeof buf);
            size_t w = s_width(t);
            size_t pad = width[i] > w ? width[i] - w : 0;
            if (i)
                fputs("  ", q->out);
            if (numeric[i])
                s_pad(q->out, pad);
            fputs(t, q->out);
            if (!numeric[i] && i + 1 < ncol)
                s_pad(q->out, pad);
        }
        fputc('\n', q->out);
    }
    if (rc != SQLITE_DONE)
        return s_step_failed(q);
    if (any_sim)
        fputs(s_sim_note, q->out);
    return 0;
}

/* RFC 4180: a field with a comma, quote, CR or LF is quoted, its quotes doubled. */
static void s_csv_field(FILE *out, const char *t)
{
    if (!strpbrk(t, ",\"\r\n")) {
        fputs(t, out);
        return;
    }
    fputc('"', out);
    for (; *t; t++) {
        if (*t == '"')
            fputc('"', out);
        fputc(*t, out);
    }
    fputc('"', out);
}

static int s_print_csv(q_ctx_t *q, sqlite3_stmt *s)
{
    int ncol = sqlite3_column_count(s);
    char buf[64];
    for (int i = 0; i < ncol; i++) {
        if (i)
            fputc(',', q->out);
        s_csv_field(q->out, sqlite3_column_name(s, i));
    }
    fputc('\n', q->out);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        for (int i = 0; i < ncol; i++) {
            if (i)
                fputc(',', q->out);
            s_csv_field(q->out, s_cell(s, i, BS__FMT_CSV, buf, sizeof buf));
        }
        fputc('\n', q->out);
    }
    return rc == SQLITE_DONE ? 0 : s_step_failed(q);
}

/* Adds cell i of the current row to obj under its column name; NULL on OOM. */
static cJSON *s_json_cell(cJSON *obj, sqlite3_stmt *s, int i)
{
    const char *name = sqlite3_column_name(s, i);
    switch (sqlite3_column_type(s, i)) {
    case SQLITE_NULL:
        return cJSON_AddNullToObject(obj, name);
    case SQLITE_INTEGER:
        return cJSON_AddNumberToObject(obj, name, (double)sqlite3_column_int64(s, i));
    case SQLITE_FLOAT:
        return cJSON_AddNumberToObject(obj, name, sqlite3_column_double(s, i));
    default: {
        const unsigned char *t = sqlite3_column_text(s, i);
        return cJSON_AddStringToObject(obj, name, t ? (const char *)t : "");
    }
    }
}

static int s_print_json(q_ctx_t *q, sqlite3_stmt *s)
{
    int ncol = sqlite3_column_count(s);
    cJSON *arr = cJSON_CreateArray();
    if (!arr)
        goto oom;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        cJSON *obj = cJSON_CreateObject();
        if (!obj || !cJSON_AddItemToArray(arr, obj)) {
            cJSON_Delete(obj);
            goto oom;
        }
        for (int i = 0; i < ncol; i++)
            if (!s_json_cell(obj, s, i))
                goto oom;
    }
    if (rc != SQLITE_DONE) {
        cJSON_Delete(arr);
        return s_step_failed(q);
    }
    char *text = cJSON_Print(arr);
    cJSON_Delete(arr);
    arr = NULL;
    if (!text)
        goto oom;
    fputs(text, q->out);
    fputc('\n', q->out);
    cJSON_free(text);
    return 0;
oom:
    cJSON_Delete(arr);
    fprintf(stderr, "bitscout query: out of memory\n");
    return 1;
}

/* Prepares sql, binds ?1 to param (if not NULL) and prints the rows. */
static int s_run(q_ctx_t *q, const char *sql, const char *param, int fmt)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(q->db, sql, -1, &s, NULL) != SQLITE_OK) {
        sqlite3_finalize(s);
        return s_step_failed(q);
    }
    if (sqlite3_column_count(s) > BS__QUERY_MAX_COLS) {
        sqlite3_finalize(s);
        fprintf(stderr, "bitscout query: internal error: more than %d columns\n",
                BS__QUERY_MAX_COLS);
        return 1;
    }
    if (param && sqlite3_bind_text(s, 1, param, -1, SQLITE_TRANSIENT) != SQLITE_OK) {
        sqlite3_finalize(s);
        return s_step_failed(q);
    }
    int rc = fmt == BS__FMT_TABLE ? s_print_table(q, s)
             : fmt == BS__FMT_CSV ? s_print_csv(q, s)
                                  : s_print_json(q, s);
    sqlite3_finalize(s);
    return rc;
}

/* ---- campaign selection ----------------------------------------------------------------- */

/* Prints the campaign names to stderr, for "unknown campaign" errors. */
static void s_list_campaigns(q_ctx_t *q)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(q->db, "SELECT name FROM campaigns ORDER BY id", -1, &s, NULL) !=
        SQLITE_OK) {
        sqlite3_finalize(s);
        return;
    }
    int n = 0;
    while (sqlite3_step(s) == SQLITE_ROW)
        fprintf(stderr, "%s%s",
                n++ ? ", " : " (campaigns here: ", (const char *)sqlite3_column_text(s, 0));
    fputs(n ? ")\n" : " (it holds no campaign)\n", stderr);
    sqlite3_finalize(s);
}

/* Resolves which campaign to show. On return *name is the campaign to filter on (NULL: all,
 * which is also the only one when there is one) and *multi is 1 when rows of several
 * campaigns are shown. Returns an exit code. */
static int s_pick_campaign(q_ctx_t *q, const char *wanted, const char **name, int *multi)
{
    sqlite3_stmt *s = NULL;
    *name = NULL;
    *multi = 0;
    const char *sql = wanted ? "SELECT name FROM campaigns WHERE name = ?1"
                             : "SELECT name FROM campaigns ORDER BY id LIMIT 2";
    if (sqlite3_prepare_v2(q->db, sql, -1, &s, NULL) != SQLITE_OK ||
        (wanted && sqlite3_bind_text(s, 1, wanted, -1, SQLITE_TRANSIENT) != SQLITE_OK)) {
        sqlite3_finalize(s);
        return s_step_failed(q);
    }
    int n = 0, rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        n++;
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE)
        return s_step_failed(q);
    if (wanted) {
        if (n == 0) {
            fprintf(stderr, "bitscout query: %s: no campaign named '%s'", q->db_path, wanted);
            s_list_campaigns(q);
            return 1;
        }
        *name = wanted;
    } else if (n > 1) {
        *multi = 1;
    }
    return 0;
}

/* ---- subcommands ------------------------------------------------------------------------ */

static const char s_eval_cols[] =
    "eval_id, assignment, status, accuracy, latency_median_ms, latency_p90_ms, weight_bytes, "
    "energy_j, energy_source, agent, attempts, error_code, simulated";

static int s_cmd_campaigns(q_ctx_t *q, const char *campaign, int fmt)
{
    char sql[BS__QUERY_SQL_MAX];
    snprintf(sql, sizeof sql,
             "SELECT c.name AS name, c.status AS status, c.policy AS policy, "
             "c.budget AS budget, "
             "(SELECT count(*) FROM evaluations e WHERE e.campaign_id = c.id) AS evaluations, "
             "(SELECT count(*) FROM evaluations e WHERE e.campaign_id = c.id "
             "AND e.status = 'failed') AS failed, "
             "(SELECT count(*) FROM pareto_members p WHERE p.campaign_id = c.id) "
             "AS front_size, c.created_at AS created_at, c.updated_at AS updated_at "
             "FROM campaigns c %s ORDER BY c.id",
             campaign ? "WHERE c.name = ?1" : "");
    return s_run(q, sql, campaign, fmt);
}

static int s_cmd_agents(q_ctx_t *q, const char *campaign, int fmt)
{
    char sql[BS__QUERY_SQL_MAX];
    snprintf(sql, sizeof sql,
             "SELECT a.name AS name, a.uid AS uid, a.arch AS arch, a.cpu AS cpu, "
             "a.cores AS cores, a.mem_bytes AS mem_bytes, a.tags AS tags, "
             "a.backends AS backends, "
             "json_extract(a.device_json, '$.os_release') AS os_release, "
             "json_extract(a.device_json, '$.kernel') AS kernel, "
             "json_extract(a.device_json, '$.governor') AS governor, "
             "json_extract(a.device_json, '$.cpu_max_mhz') AS cpu_max_mhz, "
             "json_extract(a.device_json, '$.engine.float_kernels') || '/' || "
             "json_extract(a.device_json, '$.engine.int8_kernels') AS kernels, "
             "(SELECT count(*) FROM evaluations e "
             "WHERE e.agent_id = a.id%s) AS evaluations, a.first_seen AS first_seen, "
             "a.last_seen AS last_seen, a.state AS state FROM agents a ORDER BY a.id",
             campaign ? " AND e.campaign_id = (SELECT id FROM campaigns WHERE name = ?1)" : "");
    return s_run(q, sql, campaign, fmt);
}

/* evals and pareto: the same columns from the `results` or `pareto` view. */
static int s_cmd_rows(q_ctx_t *q, const char *view, const char *order, const char *campaign,
                      int multi, int fmt)
{
    char sql[BS__QUERY_SQL_MAX];
    snprintf(sql, sizeof sql, "SELECT %s%s FROM %s %s ORDER BY %s%s", multi ? "campaign, " : "",
             s_eval_cols, view, campaign ? "WHERE campaign = ?1" : "", multi ? "campaign, " : "",
             order);
    return s_run(q, sql, campaign, fmt);
}

static int s_cmd_progress(q_ctx_t *q, const char *campaign, int multi, int fmt)
{
    char sql[BS__QUERY_SQL_MAX];
    snprintf(sql, sizeof sql,
             "SELECT %sp.at AS at, p.evaluations AS evaluations, p.front_size AS front_size, "
             "p.hypervolume AS hypervolume FROM progress p "
             "JOIN campaigns c ON c.id = p.campaign_id %s ORDER BY %sp.id",
             multi ? "c.name AS campaign, " : "", campaign ? "WHERE c.name = ?1" : "",
             multi ? "c.id, " : "");
    return s_run(q, sql, campaign, fmt);
}

/* Per-layer sensitivity rows: by agent, then in the order the agent reported them (layers in
 * graph order, each at the job's precisions in order). */
static int s_cmd_sensitivity(q_ctx_t *q, const char *campaign, int multi, int fmt)
{
    char sql[BS__QUERY_SQL_MAX];
    snprintf(sql, sizeof sql,
             "SELECT %ss.agent AS agent, s.layer AS layer, s.precision AS precision, "
             "s.metric AS metric, s.baseline AS baseline, s.value AS value, s.delta AS delta, "
             "s.simulated AS simulated, s.error AS error FROM sensitivity s "
             "JOIN campaigns c ON c.id = s.campaign_id %s ORDER BY %ss.agent, s.id",
             multi ? "c.name AS campaign, " : "", campaign ? "WHERE c.name = ?1" : "",
             multi ? "c.id, " : "");
    return s_run(q, sql, campaign, fmt);
}

/* ---- command line ----------------------------------------------------------------------- */

static int s_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int s_usage_error(const char *fmt, ...)
{
    va_list ap;
    fputs("bitscout query: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n\n", stderr);
    fputs(s_usage, stderr);
    return 2;
}

/* Matches "--name VALUE" and "--name=VALUE"; 1 when argv[*i] is this option. Sets *value to
 * NULL when the value is missing. */
static int s_opt(int argc, char **argv, int *i, const char *name, const char **value)
{
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0)
        return 0;
    if (argv[*i][n] == '=') {
        *value = argv[*i] + n + 1;
        return 1;
    }
    if (argv[*i][n] != '\0')
        return 0;
    *value = *i + 1 < argc ? argv[++*i] : NULL;
    return 1;
}

int bs_query_main(int argc, char **argv)
{
    static const char *const subs[] = {"campaigns", "agents",   "evals",
                                       "pareto",    "progress", "sensitivity"};
    const char *sub = NULL, *db_path = "results.db", *campaign = NULL, *format = "table";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(s_usage, stdout);
            return 0;
        }
        if (s_opt(argc, argv, &i, "--db", &v) || s_opt(argc, argv, &i, "--campaign", &v) ||
            s_opt(argc, argv, &i, "--format", &v)) {
            if (!v || !v[0])
                return s_usage_error("option %s needs a value", a);
            if (!strncmp(a, "--db", 4))
                db_path = v;
            else if (!strncmp(a, "--campaign", 10))
                campaign = v;
            else
                format = v;
            continue;
        }
        if (a[0] == '-')
            return s_usage_error("unknown option '%s'", a);
        if (sub)
            return s_usage_error("unexpected argument '%s'", a);
        sub = a;
    }
    if (!sub)
        return s_usage_error("missing what to show");
    int which = -1;
    for (int i = 0; i < (int)(sizeof subs / sizeof subs[0]); i++)
        if (!strcmp(sub, subs[i]))
            which = i;
    if (which < 0)
        return s_usage_error("unknown subcommand '%s'", sub);
    int fmt;
    if (!strcmp(format, "table"))
        fmt = BS__FMT_TABLE;
    else if (!strcmp(format, "csv"))
        fmt = BS__FMT_CSV;
    else if (!strcmp(format, "json"))
        fmt = BS__FMT_JSON;
    else
        return s_usage_error("unknown format '%s' (expected table, csv or json)", format);

    bs_store_t *st = NULL;
    bs_err_t err = {0};
    int rc = bs_store_open(db_path, 1, &st, &err);
    if (rc == BS_ENOENT) {
        fprintf(stderr, "%s: no such database; run `bitscout search` first or pass --db\n",
                db_path);
        return 1;
    }
    if (rc) {
        fprintf(stderr, "bitscout query: %s\n", err.msg);
        return 1;
    }
    q_ctx_t q = {.db_path = db_path, .db = bs_store_db(st), .out = stdout};
    /* One snapshot for the whole command (the table printer reads the rows twice). */
    if (sqlite3_exec(q.db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
        rc = s_step_failed(&q);
        bs_store_close(&st);
        return rc;
    }
    const char *name = NULL;
    int multi = 0;
    if (which >= 2 || campaign)
        rc = s_pick_campaign(&q, campaign, &name, &multi);
    if (rc == 0) {
        switch (which) {
        case 0:
            rc = s_cmd_campaigns(&q, campaign, fmt);
            break;
        case 1:
            rc = s_cmd_agents(&q, campaign, fmt);
            break;
        case 2:
            rc = s_cmd_rows(&q, "results", "eval_id", name, multi, fmt);
            break;
        case 3:
            rc = s_cmd_rows(&q, "pareto", "accuracy DESC, eval_id", name, multi, fmt);
            break;
        case 4:
            rc = s_cmd_progress(&q, name, multi, fmt);
            break;
        default:
            rc = s_cmd_sensitivity(&q, name, multi, fmt);
            break;
        }
    }
    sqlite3_exec(q.db, "COMMIT", NULL, NULL, NULL);
    bs_store_close(&st);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "bitscout query: could not write the output\n");
        return 1;
    }
    return rc;
}

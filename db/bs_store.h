/*
 * bs_store.h - the results database: one SQLite file in WAL mode.
 *
 * The searcher is the only writer; `bitscout query` and users' `sqlite3` sessions read
 * concurrently (WAL: readers never block the writer, and a busy timeout means an open reader
 * never fails the campaign). The schema is versioned with PRAGMA user_version and upgraded by
 * an ordered list of migrations inside a transaction (db/schema.md documents every table,
 * column and view).
 *
 * Tables: campaigns, agents, configs (per-layer assignment, UNIQUE per campaign), evaluations
 * (one final row per config: UNIQUE(config_id), so a late duplicate result is refused with
 * BS_EEXIST and never counted twice), attempts (every try of every job, with its outcome),
 * pareto_members, progress, sensitivity (schema version 2: one row per campaign, agent name,
 * layer and precision, written a whole sensitivity job at a time). Views for people: `results`
 * and `pareto` (schema version 3 adds how each run went, from the stored RESULT).
 *
 * Strings passed in are copied; nothing returned is owned by the caller unless said so.
 */
#ifndef BS_STORE_H
#define BS_STORE_H

#include <stdint.h>

#include "bs_error.h"
#include "bs_metrics.h"

typedef struct bs_store bs_store_t;
typedef struct sqlite3 sqlite3;

#define BS_STORE_SCHEMA_VERSION 4

/* Opens (creating if needed, unless readonly) and migrates to BS_STORE_SCHEMA_VERSION.
 * A database newer than this build fails with BS_EDB and says so. */
int bs_store_open(const char *path, int readonly, bs_store_t **out, bs_err_t *err);
void bs_store_close(bs_store_t **st); /* NULL-safe; clears *st */
sqlite3 *bs_store_db(bs_store_t *st); /* borrowed handle, for query code */
int bs_store_schema_version(bs_store_t *st);

int bs_store_begin(bs_store_t *st);
int bs_store_commit(bs_store_t *st);
void bs_store_rollback(bs_store_t *st);

typedef struct bs_campaign_rec {
    const char *name;
    const char *config_path;  /* as given on the command line */
    const char *config_json;  /* the file's text */
    const char *model_sha256;
    const char *space_json;   /* layers and their choices: identity of the search space */
    const char *policy;
    uint64_t seed;
    int64_t budget;           /* total evaluations */
} bs_campaign_rec_t;

/* Finds the campaign by name or creates it. An existing campaign whose model_sha256 or
 * space_json differ is a different search under the same name: BS_EEXIST with a message that
 * says to pick another name or database. Otherwise config_json, budget and updated_at are
 * refreshed (a resume may raise the budget). *resumed is 1 when it already existed. */
int bs_store_campaign_open(bs_store_t *st, const bs_campaign_rec_t *rec, int64_t *campaign_id,
                           int *resumed, bs_err_t *err);
/* status: "running", "done", "interrupted", "exhausted" */
int bs_store_campaign_set_status(bs_store_t *st, int64_t campaign_id, const char *status);

typedef struct bs_agent_rec {
    const char *uid;       /* the agent's own stable id (HELLO agent_id) */
    const char *name;
    const char *version;
    const char *arch, *cpu, *os;
    int cores;
    int64_t mem_bytes;     /* -1 unknown */
    const char *tags;      /* comma-separated */
    const char *backends;  /* comma-separated */
    const char *device_json; /* the whole HELLO device object */
} bs_agent_rec_t;

/* Inserts or updates by uid; sets last_seen. */
int bs_store_agent_upsert(bs_store_t *st, const bs_agent_rec_t *rec, int64_t *agent_id);
int bs_store_agent_seen(bs_store_t *st, int64_t agent_id, const char *state);

/* Adds a configuration. Returns 0 and the new id, or BS_EEXIST with the existing id. */
int bs_store_config_add(bs_store_t *st, int64_t campaign_id, const char *assignment,
                        const char *source, int64_t *config_id);

typedef struct bs_eval_rec {
    int64_t campaign_id;
    int64_t config_id;
    int64_t agent_id;      /* 0: none (e.g. failed before any agent took it) */
    int attempts;          /* tries it took, the final one included */
    int ok;                /* 1 measured; 0 failed on every allowed attempt */
    const char *error_code;    /* bs_err_name(), NULL when ok */
    const char *error_message;
    bs_metrics_t m;            /* unknown values are stored as NULL */
    int64_t started_ms, finished_ms; /* wall clock, ms since the epoch */
    double fetch_ms, run_ms;   /* agent-side timings; NAN unknown */
    const char *result_json;   /* the RESULT message as received, NULL if none */
} bs_eval_rec_t;

/* Stores the final evaluation of a config; BS_EEXIST if the config already has one. */
int bs_store_eval_add(bs_store_t *st, const bs_eval_rec_t *rec, int64_t *eval_id);

/* Logs one attempt: outcome "ok", "error", "lease_expired", "agent_lost", "late". */
int bs_store_attempt_add(bs_store_t *st, int64_t campaign_id, int64_t config_id,
                         int64_t agent_id, int attempt, const char *outcome,
                         const char *error_code, const char *message, int64_t started_ms,
                         int64_t finished_ms);

int bs_store_eval_count(bs_store_t *st, int64_t campaign_id, int64_t *n);

/* All configs of a campaign in id order; evaluated tells whether it has an evaluation.
 * A non-zero return from cb stops the walk and is returned. */
typedef int (*bs_store_config_cb)(void *ud, int64_t config_id, const char *assignment,
                                  int evaluated);
int bs_store_each_config(bs_store_t *st, int64_t campaign_id, bs_store_config_cb cb, void *ud);

/* All evaluations of a campaign in id order; result_json is the stored RESULT (NULL when
 * none), valid during the callback. */
typedef int (*bs_store_eval_cb)(void *ud, int64_t eval_id, int64_t config_id,
                                const char *assignment, int ok, const bs_metrics_t *m,
                                const char *result_json);
int bs_store_each_eval(bs_store_t *st, int64_t campaign_id, bs_store_eval_cb cb, void *ud);

/* Replaces the campaign's Pareto membership with these evaluations. */
int bs_store_pareto_replace(bs_store_t *st, int64_t campaign_id, const int64_t *eval_ids, int n);

/* One point of the progress time series (hypervolume NAN until issue 6 computes it). */
int bs_store_progress_add(bs_store_t *st, int64_t campaign_id, int64_t evals, int front_size,
                          double hypervolume);

/* ---- policy state (issue 6, schema version 4) ------------------------------------------ */

/* Replaces the campaign's saved policy state: the policy's name, the id of the last evaluation
 * it had observed and its JSON (bs_policy_ops_t.save). Strings borrowed. 0 or BS_EDB. */
int bs_store_policy_save(bs_store_t *st, int64_t campaign_id, const char *policy,
                         int64_t last_eval_id, const char *state_json);
/* Reads it back: *policy and *state_json are the caller's (bs_free). 0, BS_ENOENT when none
 * is saved, BS_ENOMEM or BS_EDB. */
int bs_store_policy_load(bs_store_t *st, int64_t campaign_id, char **policy,
                         int64_t *last_eval_id, char **state_json);

/* ---- sensitivity (issue 4): each layer alone at each precision, per agent name ---------- */

/* One (layer, precision) measurement as a sensitivity job reports it. Borrowed strings. */
typedef struct bs_sens_row {
    const char *layer;      /* a weight-bearing layer of the campaign's model */
    const char *precision;  /* "w4a8" */
    double value;           /* the metric; NAN: not measured (error says why) */
    double delta;           /* value - baseline; stored NULL when value is NAN */
    const char *error;      /* NULL or "": none */
} bs_sens_row_t;

/* A whole sensitivity job's result. Borrowed. */
typedef struct bs_sens_rec {
    int64_t campaign_id;
    const char *agent;      /* the agent's name (HELLO.name): the key of the measurements */
    const char *metric;     /* "top1", "top1_agreement" */
    double baseline;        /* the metric with every layer fp32 */
    int simulated;          /* 1: the sim backend's numbers */
    int n_rows;
    const bs_sens_row_t *rows;
} bs_sens_rec_t;

/* Stores every row of rec in one transaction (a savepoint inside the caller's). BS_EEXIST,
 * with nothing written, when the campaign already has rows for that agent name or when two
 * rows share a (layer, precision); BS_EINVAL for a row without layer or precision; BS_EDB. */
int bs_store_sensitivity_add(bs_store_t *st, const bs_sens_rec_t *rec, bs_err_t *err);

/* One stored row, as the walk and the list give it. */
typedef struct bs_sens_entry {
    const char *agent, *layer, *precision, *metric;
    double value;           /* NAN when NULL */
    double delta;           /* NAN when NULL */
    double baseline;        /* NAN when NULL */
    int simulated;
    const char *error;      /* NULL when none */
    const char *created_at; /* ISO-8601 UTC */
} bs_sens_entry_t;

/* Walks a campaign's rows, of every agent (agent NULL; ordered by agent name, then in the
 * order they were reported: layers in graph order, each at the job's precisions in order) or
 * of one. The entry's strings are valid during the callback only; a non-zero return from cb
 * stops the walk and is returned. */
typedef int (*bs_store_sens_cb)(void *ud, const bs_sens_entry_t *e);
int bs_store_each_sensitivity(bs_store_t *st, int64_t campaign_id, const char *agent,
                              bs_store_sens_cb cb, void *ud);

/* The same rows as an owned list: every string in rows[] belongs to the list. */
typedef struct bs_sens_list {
    int n, cap;
    bs_sens_entry_t *rows;  /* owned */
} bs_sens_list_t;

/* Fills *out (the caller's: bs_sens_list_free) with the rows of a campaign, optionally of one
 * agent name. 0, BS_ENOMEM or BS_EDB (logged); *out is empty on failure. */
int bs_store_sensitivity_load(bs_store_t *st, int64_t campaign_id, const char *agent,
                              bs_sens_list_t *out);
void bs_sens_list_free(bs_sens_list_t *l); /* NULL-safe; empties *l */

#endif

/*
 * bs_searcher.c - the searcher daemon's event loop, scheduler and result handling.
 *
 * Life of a configuration: the policy proposes a candidate (choice indices per layer); the
 * searcher formats it as an assignment, drops it if already known (stored or in flight),
 * stores it in `configs`, and queues a job. On every tick and after every event the dispatcher
 * leases queued jobs to idle agents whose tags and backends fit the campaign: JOB goes out with
 * a lease deadline. The job ends when its agent sends RESULT (stored as an evaluation, offered
 * to the Pareto front and the policy), or fails an attempt: an error RESULT, a lease that
 * expires, or an agent that goes silent past its liveness. A failed attempt is logged in
 * `attempts` and the job is queued again until max_attempts, after which the configuration is
 * stored as a failed evaluation with its last error: failures are data.
 *
 * Exactly-once: a RESULT counts only if it comes from the agent that currently holds that
 * job's lease, and `evaluations.config_id` is UNIQUE, so a late or duplicated result can never
 * be counted twice. Job ids embed the searcher's start time, so a result for a job of an
 * earlier searcher process never matches a job of this one.
 *
 * Policy state and progress: after each stored result the policy observes it (with the
 * per-layer times of the RESULT's profile), the hypervolume of the front is recomputed when the
 * front or its normalisation changed (bs_hv.h) and written to `progress` in the same
 * transaction, and the policy's state is saved to `policy_state` (spaced so saving takes under
 * a tenth of the time; always at the end).
 *
 * Resume: at start the store is read back: evaluated configurations are known (never
 * dispatched again) and go to the front; the policy's saved state is restored and only the
 * evaluations after its `last_evaluation_id` are replayed into it (all of them when there is
 * no state, or one that does not load: the reason is logged); configurations stored but never
 * evaluated (in flight when the previous searcher died) are queued first. --budget counts the
 * total across runs. A policy that seeds from sensitivity gets the stored table at start and
 * again when a sensitivity job's rows are stored.
 *
 * Sensitivity: with a "sensitivity" section, each agent name (HELLO.name) gets one sensitivity
 * job (JOB.kind "sensitivity": every layer alone at each precision, the rest fp32), handed to
 * the first free agent of that name before any evaluation. These jobs live beside the
 * evaluations: their own retry queue (a retry waits for an agent of the same name), the same
 * leases, attempts, max_attempts and liveness, and they never count against the budget. Their
 * RESULT is checked against the model's layers and the job's precisions, then stored whole in
 * the `sensitivity` table; names with stored rows are read back at start, so a resumed
 * campaign does not measure them again. When the budget is spent the searcher waits for the
 * sensitivity jobs in flight, but starts no new one.
 *
 * ZeroMQ and libuv: the ROUTER's ZMQ_FD is level-less (edge-triggered): the poll callback and
 * every code path that sends call s_drain(), which receives until ZMQ_EVENTS lacks POLLIN.
 */
#define _GNU_SOURCE
#include "bs_searcher.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>
#include <uv.h>
#include <zmq.h>

#include "bs_alloc.h"
#include "bs_config.h"
#include "bs_log.h"
#include "bs_model.h"
#include "bs_hv.h"
#include "bs_pareto.h"
#include "bs_policy.h"
#include "bs_polutil.h"
#include "bs_progress.h"
#include "bs_proto.h"
#include "bs_store.h"
#include "bs_util.h"

#define S_MOD "searcher"
#define S_MAX_AGENTS 4096
#define S_PROPOSE_TRIES 256
#define S_MAX_FILES 4

typedef struct s_agent s_agent_t;

typedef struct s_job {
    int64_t id;               /* JOB.job_id of the current lease, 0 while queued */
    int64_t config_id;
    char *assignment;         /* owned */
    int *cand;                /* owned: choice index per layer */
    int attempts;             /* attempts finished so far */
    s_agent_t *agent;         /* lease holder, NULL while queued */
    uint64_t deadline;        /* monotonic ms, while leased */
    int64_t lease_wall;       /* wall ms when the current lease started */
    int64_t first_wall;       /* wall ms when the first lease started */
    char last_code[32];       /* error of the last failed attempt */
    char last_msg[BS_ERR_MSG_MAX];
    int64_t last_agent_id;
    int sens;                 /* 1: a sensitivity job (config_id 0, cand NULL) */
    char sens_agent[65];      /* the agent name a sensitivity job is for */
    struct s_job *next;
} s_job_t;

struct s_agent {
    unsigned char rid[BS_PROTO_MAX_ID + 1]; /* ZeroMQ routing id */
    size_t rid_len;
    char uid[65];
    char name[65];
    int64_t db_id;
    int eligible;             /* tags and backends fit the campaign */
    uint64_t last_seen;       /* monotonic ms */
    uint64_t last_hb_sent;
    uint64_t busy_until;      /* the agent says it is busy with a job we did not give it */
    s_job_t *job;             /* current lease, or NULL */
};

typedef struct s_file {
    char role[16];
    char *path;               /* owned */
    char sha[BS_SHA256_HEX_LEN + 1];
    uint64_t size;
    int fd;
} s_file_t;

/* Open-addressing set of assignment strings: every configuration known to this campaign. */
typedef struct s_strset {
    char **slots;
    size_t cap, n;
} s_strset_t;

typedef struct s_local {
    uv_process_t proc;
    int running;
    int index;
} s_local_t;

typedef struct s_searcher {
    const bs_search_opts_t *opts;
    bs_err_t *err;
    uv_loop_t loop;
    uv_poll_t poll;
    uv_timer_t tick;
    uv_signal_t sigint, sigterm;
    void *zctx, *router;
    char endpoint[256];       /* actual bound endpoint */
    bs_config_t *cfg;
    bs_model_info_t model;
    bs_space_t space;
    bs_prec_t *precs;         /* scratch: one precision per layer */
    bs_store_t *store;
    int64_t campaign_id;
    const bs_policy_ops_t *policy;
    void *policy_state;
    double *layer_ms;         /* scratch: one per layer, from a RESULT's profile */
    int64_t last_eval_id;     /* the last evaluation the policy observed */
    int64_t saved_eval_id;    /* ... when its state was last saved */
    uint64_t saved_ms;        /* monotonic time of that save */
    double save_cost_ms;      /* how long the last save took */
    bs_hv_norm_t hv_norm;
    double hv;                /* hypervolume of the front, NAN until defined */
    bs_pareto_t *front;
    bs_progress_t *progress;
    s_file_t files[S_MAX_FILES];
    int n_files;
    s_agent_t *agents[S_MAX_AGENTS];
    int n_agents;
    s_job_t *queue;           /* queued evaluation jobs, FIFO */
    s_job_t *leased;          /* leased jobs, of both kinds */
    int n_leased;             /* all leased jobs */
    s_job_t *sens_queue;      /* sensitivity jobs waiting for a retry */
    int n_sens_leased;        /* leased sensitivity jobs (counted in n_leased too) */
    s_strset_t sens_done;     /* agent names whose sensitivity is stored (or given up) */
    char *sens_base;          /* owned: the all-fp32 assignment sensitivity jobs carry */
    s_strset_t known;
    int64_t budget;
    int64_t done, failed;
    int64_t job_seq_base, job_seq;
    int exhausted;
    int stopping;             /* 1: draining after a signal or the end */
    int interrupted;
    int finished;
    uint64_t stop_deadline;
    uint64_t wall_deadline;   /* 0: none */
    int in_drain;
    int fatal;                /* a store failure: stop */
    s_local_t *locals;
    int n_locals_running;
    int hb_ms, liveness;
} s_searcher_t;

/* ---- string set --------------------------------------------------------------------------- */

static int s_set_has(const s_strset_t *set, const char *s)
{
    if (!set->cap)
        return 0;
    for (size_t i = bs_hash_str(s) & (set->cap - 1);; i = (i + 1) & (set->cap - 1)) {
        if (!set->slots[i])
            return 0;
        if (strcmp(set->slots[i], s) == 0)
            return 1;
    }
}

static int s_set_add(s_strset_t *set, const char *s)
{
    if ((set->n + 1) * 2 > set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 1024;
        char **slots = bs_calloc(cap, sizeof *slots);
        if (!slots)
            return BS_ENOMEM;
        for (size_t i = 0; i < set->cap; i++) {
            if (!set->slots[i])
                continue;
            size_t j = bs_hash_str(set->slots[i]) & (cap - 1);
            while (slots[j])
                j = (j + 1) & (cap - 1);
            slots[j] = set->slots[i];
        }
        bs_free(set->slots);
        set->slots = slots;
        set->cap = cap;
    }
    size_t i = bs_hash_str(s) & (set->cap - 1);
    while (set->slots[i]) {
        if (strcmp(set->slots[i], s) == 0)
            return 0;
        i = (i + 1) & (set->cap - 1);
    }
    if (!(set->slots[i] = bs_strdup(s)))
        return BS_ENOMEM;
    set->n++;
    return 0;
}

static void s_set_free(s_strset_t *set)
{
    for (size_t i = 0; i < set->cap; i++)
        bs_free(set->slots[i]);
    bs_free(set->slots);
    memset(set, 0, sizeof *set);
}

/* ---- helpers ------------------------------------------------------------------------------ */

static void s_job_free(s_job_t *j)
{
    if (!j)
        return;
    bs_free(j->assignment);
    bs_free(j->cand);
    bs_free(j);
}

static void s_queue_push(s_searcher_t *s, s_job_t *j, int front)
{
    j->agent = NULL;
    j->id = 0;
    if (front || !s->queue) {
        j->next = s->queue;
        s->queue = j;
        return;
    }
    s_job_t *t = s->queue;
    while (t->next)
        t = t->next;
    j->next = NULL;
    t->next = j;
}

static void s_leased_remove(s_searcher_t *s, s_job_t *j)
{
    for (s_job_t **pp = &s->leased; *pp; pp = &(*pp)->next) {
        if (*pp == j) {
            *pp = j->next;
            j->next = NULL;
            s->n_leased--;
            if (j->sens)
                s->n_sens_leased--;
            return;
        }
    }
}

/* A job that did not run through no fault of its configuration goes back to the front of its
 * queue: evaluations to the shared one, a sensitivity job to wait for its agent name. */
static void s_requeue(s_searcher_t *s, s_job_t *j)
{
    if (!j->sens) {
        s_queue_push(s, j, 1);
        return;
    }
    j->agent = NULL;
    j->id = 0;
    j->next = s->sens_queue;
    s->sens_queue = j;
}

/* What a job is, for log lines: its assignment, or whose sensitivity it measures. */
static const char *s_job_label(const s_job_t *j, char *buf, size_t cap)
{
    if (!j->sens)
        return j->assignment;
    snprintf(buf, cap, "sensitivity for agent %s", j->sens_agent);
    return buf;
}

static s_agent_t *s_agent_by_rid(s_searcher_t *s, const unsigned char *rid, size_t len)
{
    for (int i = 0; i < s->n_agents; i++)
        if (s->agents[i]->rid_len == len && memcmp(s->agents[i]->rid, rid, len) == 0)
            return s->agents[i];
    return NULL;
}

static int s_send(s_searcher_t *s, const unsigned char *rid, size_t rid_len, cJSON *msg,
                  const void *payload, size_t plen)
{
    int rc = msg ? bs_wire_send(s->router, rid, rid_len, msg, payload, plen) : BS_ENOMEM;
    cJSON_Delete(msg);
    return rc;
}

static void s_send_error(s_searcher_t *s, const unsigned char *rid, size_t rid_len, int code,
                         const char *text, int ref_type)
{
    const char *ref = ref_type >= 0 ? bs_msg_type_name((bs_msg_type_t)ref_type) : NULL;
    s_send(s, rid, rid_len, bs_msg_error(code, text, ref), NULL, 0);
}

static void s_fatal_store(s_searcher_t *s, int rc, const char *what)
{
    BS_ERROR(S_MOD, "database write failed (%s): %s; stopping", what, bs_strerror(rc));
    if (!s->fatal) {
        s->fatal = 1;
        bs_err_set(s->err, BS_EDB, "%s: database write failed (%s)", s->opts->db_path, what);
    }
    s->stopping = 1;
    s->stop_deadline = bs_now_ms();
}

static void s_progress(s_searcher_t *s, int final)
{
    int alive = 0;
    for (int i = 0; i < s->n_agents; i++)
        alive += s->agents[i]->eligible;
    bs_progress_state_t st = {
        .campaign = s->cfg->name,
        .done = s->done,
        .failed = s->failed,
        .budget = s->budget,
        .in_flight = s->n_leased,
        .agents = alive,
        .front = bs_pareto_size(s->front),
        .hypervolume = s->hv,
    };
    bs_progress_update(s->progress, &st, final);
}

/* ---- policy -------------------------------------------------------------------------------- */

static int s_policy_create(s_searcher_t *s, bs_err_t *err)
{
    bs_policy_ctx_t pctx = {
        .space = &s->space,
        .cfg = s->cfg,
        .params = s->cfg->policy_params,
        .seed = s->cfg->seed,
    };
    return s->policy->create(&pctx, &s->policy_state, err);
}

/* Gives a policy that seeds from sensitivity the stored table, averaged over the agent names
 * that measured it (bs_policy_sens_t). give_up: no table is coming (the jobs failed), so the
 * policy gets an empty one rather than waiting for ever. */
static void s_sens_feed(s_searcher_t *s, int give_up)
{
    if (!s->policy->sensitivity)
        return;
    int n = s->space.n_layers;
    bs_sens_list_t list = {0};
    double *sum = bs_calloc((size_t)(n ? n : 1) * BS_MAX_CHOICES, sizeof *sum);
    int *cnt = bs_calloc((size_t)(n ? n : 1) * BS_MAX_CHOICES, sizeof *cnt);
    if (!sum || !cnt || bs_store_sensitivity_load(s->store, s->campaign_id, NULL, &list) != 0) {
        BS_ERROR(S_MOD, "cannot read the sensitivity rows for the policy");
        goto out;
    }
    double base_sum = 0;
    int n_agents = 0, n_base = 0;
    const char *last_agent = NULL;
    for (int i = 0; i < list.n; i++) {
        const bs_sens_entry_t *e = &list.rows[i];
        if (!last_agent || strcmp(last_agent, e->agent) != 0) {
            last_agent = e->agent;
            n_agents++;
            if (!isnan(e->baseline)) {
                base_sum += e->baseline;
                n_base++;
            }
        }
        bs_prec_t p;
        if (isnan(e->delta) || bs_prec_parse(e->precision, &p) != 0)
            continue;
        for (int l = 0; l < n; l++) {
            if (strcmp(s->space.names[l], e->layer) != 0)
                continue;
            for (int c = 0; c < s->space.layers[l].n_choices; c++)
                if (bs_prec_eq(s->space.layers[l].choices[c], p)) {
                    sum[l * BS_MAX_CHOICES + c] += e->delta;
                    cnt[l * BS_MAX_CHOICES + c]++;
                }
        }
    }
    if (!n_agents && !give_up)
        goto out;
    for (int l = 0; l < n; l++)
        for (int c = 0; c < BS_MAX_CHOICES; c++) {
            int k = l * BS_MAX_CHOICES + c;
            int fp32 = c < s->space.layers[l].n_choices &&
                       bs_prec_eq(s->space.layers[l].choices[c], BS_PREC_FP32);
            sum[k] = fp32 ? 0 : cnt[k] ? sum[k] / cnt[k] : NAN;
        }
    bs_policy_sens_t t = {
        .n_layers = n,
        .delta = sum,
        .baseline = n_base ? base_sum / n_base : NAN,
        .n_agents = n_agents,
    };
    s->policy->sensitivity(s->policy_state, &t);
out:
    bs_sens_list_free(&list);
    bs_free(sum);
    bs_free(cnt);
}

/* ---- results ------------------------------------------------------------------------------ */

/* Per-layer times from a RESULT's metrics.profile ({"layers": [{"layer", "ms"}]}), summed per
 * layer; NULL when there is none. */
static const double *s_layer_ms(s_searcher_t *s, const cJSON *result)
{
    const cJSON *layers = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(result, "metrics"),
                                         "profile"),
        "layers");
    if (!cJSON_IsArray(layers) || !s->layer_ms)
        return NULL;
    int any = 0;
    for (int i = 0; i < s->space.n_layers; i++)
        s->layer_ms[i] = NAN;
    const cJSON *it;
    cJSON_ArrayForEach(it, layers)
    {
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(it, "layer");
        const cJSON *ms = cJSON_GetObjectItemCaseSensitive(it, "ms");
        if (!cJSON_IsString(nm) || !cJSON_IsNumber(ms) || !(ms->valuedouble >= 0))
            continue;
        for (int i = 0; i < s->space.n_layers; i++) {
            if (strcmp(s->space.names[i], nm->valuestring) != 0)
                continue;
            s->layer_ms[i] = (isnan(s->layer_ms[i]) ? 0 : s->layer_ms[i]) + ms->valuedouble;
            any = 1;
            break;
        }
    }
    return any ? s->layer_ms : NULL;
}

/* Hands one stored result to the policy and to the hypervolume's normalisation. Returns 1
 * when the normalisation moved. */
static int s_observe(s_searcher_t *s, int64_t eval_id, const int *cand, int ok,
                     const bs_metrics_t *m, const cJSON *result)
{
    bs_policy_obs_t obs = {
        .cand = cand,
        .ok = ok,
        .m = ok ? m : NULL,
        .layer_ms = ok && result ? s_layer_ms(s, result) : NULL,
    };
    s->policy->observe(s->policy_state, &obs);
    s->last_eval_id = eval_id;
    double v[BS_MAX_OBJECTIVES];
    return ok && bs_pareto_feasible(s->front, m) && bs_pol_objectives(s->cfg, m, v) &&
           bs_hv_norm_include(&s->hv_norm, v);
}

/* The front's hypervolume under the current normalisation (bs_hv.h). */
static void s_hv_update(s_searcher_t *s)
{
    double hv = bs_hv_normalized(&s->hv_norm, bs_pareto_vectors(s->front),
                                 bs_pareto_size(s->front));
    s->hv = hv < 0 ? NAN : hv;
}

/* Saves the policy's state when it has observed something new since the last save. Saves are
 * spaced so that they take under a tenth of the time (a big state, a fast campaign); results
 * observed after the last save are replayed on resume, so nothing is lost in between.
 * force: save now (the end of the run). */
static void s_policy_save(s_searcher_t *s, int force)
{
    if (!s->policy->save || s->last_eval_id == s->saved_eval_id || s->fatal)
        return;
    uint64_t now = bs_now_ms();
    if (!force && (double)(now - s->saved_ms) < 10.0 * s->save_cost_ms)
        return;
    cJSON *st = s->policy->save(s->policy_state);
    char *text = st ? cJSON_PrintUnformatted(st) : NULL;
    cJSON_Delete(st);
    if (!text) {
        BS_WARN(S_MOD, "out of memory saving the policy state; a resume replays the results");
        return;
    }
    int rc = bs_store_policy_save(s->store, s->campaign_id, s->policy->name, s->last_eval_id,
                                  text);
    cJSON_free(text);
    if (rc) {
        s_fatal_store(s, rc, "policy state");
        return;
    }
    s->saved_eval_id = s->last_eval_id;
    s->saved_ms = bs_now_ms();
    s->save_cost_ms = (double)(s->saved_ms - now);
}

static void s_record_front(s_searcher_t *s)
{
    int rc = bs_store_pareto_replace(s->store, s->campaign_id, bs_pareto_ids(s->front),
                                     bs_pareto_size(s->front));
    if (rc)
        s_fatal_store(s, rc, "pareto");
}

/* Stores the final evaluation of a job (ok or failed) and retires the job. */
static void s_finish_job(s_searcher_t *s, s_job_t *j, int ok, const bs_metrics_t *m,
                         const char *result_json, double fetch_ms, double run_ms)
{
    bs_eval_rec_t rec = {
        .campaign_id = s->campaign_id,
        .config_id = j->config_id,
        .agent_id = ok ? (j->agent ? j->agent->db_id : 0) : j->last_agent_id,
        .attempts = j->attempts,
        .ok = ok,
        .error_code = ok ? NULL : j->last_code,
        .error_message = ok ? NULL : j->last_msg,
        .started_ms = j->first_wall ? j->first_wall : bs_wall_ms(),
        .finished_ms = bs_wall_ms(),
        .fetch_ms = fetch_ms,
        .run_ms = run_ms,
        .result_json = result_json,
    };
    if (m)
        rec.m = *m;
    else
        bs_metrics_init(&rec.m);
    int64_t eval_id = 0;
    int changed = 0;
    int rc = bs_store_begin(s->store);
    if (rc == 0)
        rc = bs_store_eval_add(s->store, &rec, &eval_id);
    if (rc == BS_EEXIST) {
        /* Cannot happen through the lease check; the UNIQUE key is the last line of defence. */
        bs_store_rollback(s->store);
        BS_WARN(S_MOD, "config %lld already has an evaluation; result ignored",
                (long long)j->config_id);
        goto out;
    }
    if (rc == 0 && ok) {
        changed = bs_pareto_add(s->front, eval_id, &rec.m);
        if (changed < 0)
            rc = changed;
        else if (changed)
            rc = bs_store_pareto_replace(s->store, s->campaign_id, bs_pareto_ids(s->front),
                                         bs_pareto_size(s->front));
    }
    if (rc == 0) {
        cJSON *result = result_json ? cJSON_Parse(result_json) : NULL;
        int moved = s_observe(s, eval_id, j->cand, ok, &rec.m, result);
        cJSON_Delete(result);
        if (changed || moved) /* otherwise the hypervolume is what it was */
            s_hv_update(s);
        rc = bs_store_progress_add(s->store, s->campaign_id, s->done + 1,
                                   bs_pareto_size(s->front), s->hv);
    }
    if (rc == 0)
        rc = bs_store_commit(s->store);
    if (rc) {
        bs_store_rollback(s->store);
        s_fatal_store(s, rc, "evaluation");
        goto out;
    }
    s->done++;
    if (!ok)
        s->failed++;
    s_policy_save(s, 0);
    if (ok)
        BS_INFO(S_MOD, "eval %lld: %s accuracy %.4f p90 %.3f ms%s%s", (long long)eval_id,
                j->assignment, rec.m.accuracy, rec.m.lat_p90_ms,
                rec.m.simulated ? " (simulated)" : "", changed ? " [front]" : "");
    else
        BS_WARN(S_MOD, "eval %lld: %s failed after %d attempts: %s %s", (long long)eval_id,
                j->assignment, j->attempts, j->last_code, j->last_msg);
out:
    if (j->agent)
        j->agent->job = NULL;
    s_job_free(j);
}

/* One attempt of a leased job failed: log it, then retry or give up. */
static void s_attempt_failed(s_searcher_t *s, s_job_t *j, const char *outcome, int code,
                             const char *msg)
{
    s_agent_t *a = j->agent;
    j->attempts++;
    snprintf(j->last_code, sizeof j->last_code, "%s", bs_err_name(code));
    snprintf(j->last_msg, sizeof j->last_msg, "%s", msg ? msg : "");
    j->last_agent_id = a ? a->db_id : 0;
    int rc = bs_store_attempt_add(s->store, s->campaign_id, j->config_id, j->last_agent_id,
                                  j->attempts, outcome, j->last_code, j->last_msg, j->lease_wall,
                                  bs_wall_ms());
    if (rc)
        s_fatal_store(s, rc, "attempt");
    char label[128];
    BS_WARN(S_MOD, "job %lld (%s) attempt %d/%d on %s: %s: %s", (long long)j->id,
            s_job_label(j, label, sizeof label), j->attempts, s->cfg->max_attempts,
            a ? a->name : "-", outcome, j->last_msg);
    s_leased_remove(s, j);
    if (a)
        a->job = NULL;
    j->agent = NULL;
    if (j->attempts < s->cfg->max_attempts) {
        s_requeue(s, j);
    } else if (!j->sens) {
        s_finish_job(s, j, 0, NULL, NULL, NAN, NAN);
    } else {
        /* Nothing is stored, so a later run of the campaign tries again; this one does not. */
        BS_WARN(S_MOD, "%s failed after %d attempts: %s %s; not measured in this run", label,
                j->attempts, j->last_code, j->last_msg);
        if (s_set_add(&s->sens_done, j->sens_agent) != 0)
            BS_ERROR(S_MOD, "out of memory noting that %s failed", label);
        s_job_free(j);
        /* no table is coming once no other sensitivity job waits or runs (a seeder that gave
         * up still takes a table that lands before its first seed) */
        if (!s->sens_queue && s->n_sens_leased == 0)
            s_sens_feed(s, 1);
    }
}

/* ---- agents ------------------------------------------------------------------------------- */

static void s_agent_drop(s_searcher_t *s, s_agent_t *a, const char *why)
{
    BS_WARN(S_MOD, "agent %s (%s) dropped: %s", a->name, a->uid, why);
    if (a->job) {
        s_job_t *j = a->job;
        s_attempt_failed(s, j, "agent_lost", BS_EAGENT, why);
    }
    if (a->db_id)
        bs_store_agent_seen(s->store, a->db_id, "lost");
    for (int i = 0; i < s->n_agents; i++) {
        if (s->agents[i] == a) {
            s->agents[i] = s->agents[--s->n_agents];
            break;
        }
    }
    bs_free(a);
}

static char *s_join_strarray(const cJSON *arr)
{
    bs_buf_t b = {0};
    const cJSON *it;
    int first = 1;
    cJSON_ArrayForEach(it, arr)
    {
        if (cJSON_IsString(it)) {
            bs_buf_printf(&b, "%s%s", first ? "" : ",", it->valuestring);
            first = 0;
        }
    }
    if (b.oom) {
        bs_buf_free(&b);
        return NULL;
    }
    return b.data ? b.data : bs_strdup("");
}

static int s_has_string(const cJSON *arr, const char *want)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        if (cJSON_IsString(it) && strcmp(it->valuestring, want) == 0)
            return 1;
    }
    return 0;
}

static const char *s_str(const cJSON *o, const char *k, const char *dflt)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(it) ? it->valuestring : dflt;
}

static void s_send_welcome(s_searcher_t *s, const s_agent_t *a)
{
    cJSON *wel = bs_msg_new(BS_MSG_WELCOME);
    if (wel) {
        cJSON_AddNumberToObject(wel, "heartbeat_ms", s->hb_ms);
        cJSON_AddNumberToObject(wel, "liveness", s->liveness);
        cJSON_AddStringToObject(wel, "searcher", "bitscout " BS_VERSION);
        cJSON_AddStringToObject(wel, "campaign", s->cfg->name);
    }
    s_send(s, a->rid, a->rid_len, wel, NULL, 0);
}

static void s_on_hello(s_searcher_t *s, const bs_wire_msg_t *w)
{
    const cJSON *m = w->msg;
    const char *uid = s_str(m, "agent_id", "");
    const char *name = s_str(m, "name", "");
    const cJSON *dev = cJSON_GetObjectItemCaseSensitive(m, "device");
    const cJSON *tags = cJSON_GetObjectItemCaseSensitive(m, "tags");
    const cJSON *backends = cJSON_GetObjectItemCaseSensitive(m, "backends");

    /* The same routing id saying HELLO again, or the same agent on a new connection: the old
     * session ends, and a job it held is an attempt that failed. */
    uint64_t now = bs_now_ms();
    s_agent_t *old = s_agent_by_rid(s, w->id, w->id_len);
    if (old && strcmp(old->uid, uid) == 0) {
        /* A repeated HELLO on the same connection (a backoff resend that crossed our
         * WELCOME): the session stands, its job too. */
        old->last_seen = now;
        s_send_welcome(s, old);
        return;
    }
    if (old)
        s_agent_drop(s, old, "re-sent HELLO with another agent id");
    for (int i = 0; i < s->n_agents; i++) {
        s_agent_t *same = s->agents[i];
        if (strcmp(same->uid, uid) != 0)
            continue;
        if (same->last_seen + (uint64_t)s->hb_ms * 2 >= now) {
            /* The old session is alive: two processes claim one id. Refuse the newcomer;
             * a restarted agent gets in once the old session falls silent. */
            s_send_error(s, w->id, w->id_len, BS_EBUSY,
                         "an agent with this agent_id is already connected", BS_MSG_HELLO);
            return;
        }
        s_agent_drop(s, same, "reconnected as a new session");
        break;
    }
    if (s->n_agents >= S_MAX_AGENTS) {
        s_send_error(s, w->id, w->id_len, BS_EBUSY, "too many agents", BS_MSG_HELLO);
        return;
    }
    s_agent_t *a = bs_calloc(1, sizeof *a);
    char *tag_s = s_join_strarray(tags);
    char *be_s = s_join_strarray(backends);
    char *dev_s = cJSON_PrintUnformatted(dev);
    if (!a || !tag_s || !be_s || !dev_s) {
        bs_free(a);
        bs_free(tag_s);
        bs_free(be_s);
        bs_free(dev_s);
        s_send_error(s, w->id, w->id_len, BS_ENOMEM, "searcher out of memory", BS_MSG_HELLO);
        return;
    }
    memcpy(a->rid, w->id, w->id_len);
    a->rid_len = w->id_len;
    snprintf(a->uid, sizeof a->uid, "%s", uid);
    snprintf(a->name, sizeof a->name, "%s", name);
    a->last_seen = bs_now_ms();
    const cJSON *cores = cJSON_GetObjectItemCaseSensitive(dev, "cores");
    const cJSON *mem = cJSON_GetObjectItemCaseSensitive(dev, "mem_bytes");
    bs_agent_rec_t rec = {
        .uid = a->uid,
        .name = a->name,
        .version = s_str(m, "version", ""),
        .arch = s_str(dev, "arch", ""),
        .cpu = s_str(dev, "cpu", ""),
        .os = s_str(dev, "os", ""),
        .cores = cJSON_IsNumber(cores) ? (int)cores->valuedouble : 0,
        .mem_bytes = cJSON_IsNumber(mem) ? (int64_t)mem->valuedouble : -1,
        .tags = tag_s,
        .backends = be_s,
        .device_json = dev_s,
    };
    int rc = bs_store_agent_upsert(s->store, &rec, &a->db_id);
    if (rc)
        BS_WARN(S_MOD, "could not store agent %s: %s", a->name, bs_strerror(rc));
    /* Eligible when the agent carries every campaign tag and the campaign's backend. */
    a->eligible = s_has_string(backends, s->cfg->backend);
    const char *why = a->eligible ? NULL : "it lacks the campaign's backend";
    for (int i = 0; i < s->cfg->n_tags && a->eligible; i++) {
        if (!s_has_string(tags, s->cfg->tags[i])) {
            a->eligible = 0;
            why = "it lacks a campaign tag";
        }
    }
    s->agents[s->n_agents++] = a;
    BS_INFO(S_MOD, "agent %s joined (%s, %s, tags [%s], backends [%s])%s%s", a->name,
            rec.arch, rec.cpu, tag_s, be_s, why ? "; not used: " : "", why ? why : "");
    bs_free(tag_s);
    bs_free(be_s);
    bs_free(dev_s);
    s_send_welcome(s, a);
}

/* A sensitivity job's good RESULT: checked, then stored in one transaction. 0 when it is done
 * with (stored, or already there); otherwise a code with e saying what was wrong with it. */
static int s_sens_result(s_searcher_t *s, s_job_t *j, const cJSON *m, bs_err_t *e)
{
    const cJSON *sens = cJSON_GetObjectItemCaseSensitive(m, "sensitivity");
    if (!sens)
        return bs_err_set(e, BS_EPROTO, "RESULT.sensitivity: required for a sensitivity job "
                          "(JOB.kind \"sensitivity\"), got metrics instead");
    int n = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(sens, "rows"));
    bs_sens_row_t *rows = bs_calloc((size_t)(n ? n : 1), sizeof *rows);
    int rc = 0;
    if (!rows) {
        rc = bs_err_set(e, BS_ENOMEM, "searcher out of memory");
        goto done;
    }
    if ((rc = bs_sens_check(s->cfg, &s->space, sens, rows, n, e)))
        goto done;
    double baseline = cJSON_GetObjectItemCaseSensitive(sens, "baseline")->valuedouble;
    const char *metric = cJSON_GetObjectItemCaseSensitive(sens, "metric")->valuestring;
    int simulated = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(sens, "simulated"));
    bs_sens_rec_t rec = {
        .campaign_id = s->campaign_id,
        .agent = j->sens_agent,
        .metric = metric,
        .baseline = baseline,
        .simulated = simulated,
        .n_rows = n,
        .rows = rows,
    };
    bs_err_t se = {0};
    int st = bs_store_sensitivity_add(s->store, &rec, &se);
    if (st == BS_EEXIST) {
        BS_WARN(S_MOD, "sensitivity for agent %s: %s; this result is not stored", j->sens_agent,
                se.msg);
    } else if (st) {
        BS_ERROR(S_MOD, "%s", se.msg);
        s_fatal_store(s, st, "sensitivity");
    } else {
        int unmeasured = 0;
        for (int i = 0; i < n; i++)
            unmeasured += isnan(rows[i].value);
        BS_INFO(S_MOD, "sensitivity for agent %s: %d rows (%d unmeasured), baseline %s %.4f%s",
                j->sens_agent, n, unmeasured, metric[0] ? metric : "metric", baseline,
                simulated ? " (simulated)" : "");
        s_sens_feed(s, 0);
    }
    if (s_set_add(&s->sens_done, j->sens_agent) != 0)
        BS_ERROR(S_MOD, "out of memory noting that agent %s is measured", j->sens_agent);
done:
    bs_free(rows);
    return rc;
}

static void s_on_result(s_searcher_t *s, s_agent_t *a, const cJSON *m)
{
    const cJSON *jid = cJSON_GetObjectItemCaseSensitive(m, "job_id");
    int64_t job_id = (int64_t)jid->valuedouble;
    s_job_t *j = a->job;
    if (!j || j->id != job_id) {
        BS_WARN(S_MOD, "late result for job %lld from %s ignored (no longer its lease)",
                (long long)job_id, a->name);
        return;
    }
    const cJSON *ok = cJSON_GetObjectItemCaseSensitive(m, "ok");
    const cJSON *timings = cJSON_GetObjectItemCaseSensitive(m, "timings");
    const cJSON *fm = cJSON_GetObjectItemCaseSensitive(timings, "fetch_ms");
    const cJSON *rm = cJSON_GetObjectItemCaseSensitive(timings, "run_ms");
    double fetch_ms = cJSON_IsNumber(fm) ? fm->valuedouble : NAN;
    double run_ms = cJSON_IsNumber(rm) ? rm->valuedouble : NAN;
    if (cJSON_IsTrue(ok) && j->sens) {
        bs_err_t e = {0};
        if (s_sens_result(s, j, m, &e)) {
            BS_WARN(S_MOD, "bad sensitivity result from %s: %s", a->name, e.msg);
            s_send_error(s, a->rid, a->rid_len, e.code, e.msg, BS_MSG_RESULT);
            s_attempt_failed(s, j, "error", e.code, e.msg);
            return;
        }
        s_leased_remove(s, j);
        a->job = NULL;
        s_job_free(j);
        return;
    }
    if (cJSON_IsTrue(ok)) {
        bs_metrics_t met;
        bs_err_t e = {0};
        const cJSON *mj = cJSON_GetObjectItemCaseSensitive(m, "metrics");
        if (!mj)
            bs_err_set(&e, BS_EPROTO, "RESULT.metrics: required for an evaluation (JOB.kind "
                       "\"evaluate\"), got sensitivity instead");
        if (!mj || bs_metrics_from_json(mj, &met, &e)) {
            s_send_error(s, a->rid, a->rid_len, e.code, e.msg, BS_MSG_RESULT);
            s_attempt_failed(s, j, "error", e.code, e.msg);
            return;
        }
        char *text = cJSON_PrintUnformatted(m);
        s_leased_remove(s, j);
        s_finish_job(s, j, 1, &met, text, fetch_ms, run_ms);
        bs_free(text);
        return;
    }
    const cJSON *er = cJSON_GetObjectItemCaseSensitive(m, "error");
    const char *code_s = s_str(er, "code", "EBACKEND");
    const char *msg = s_str(er, "message", "");
    int code = bs_err_from_name(code_s);
    if (code > 0)
        code = BS_EBACKEND;
    if (code == BS_EBUSY) {
        /* The agent is still running something else (a job of an earlier searcher): not the
         * configuration's fault. Requeue without counting an attempt. */
        s_leased_remove(s, j);
        a->job = NULL;
        a->busy_until = bs_now_ms() + (uint64_t)s->hb_ms * 2;
        s_requeue(s, j);
        return;
    }
    s_attempt_failed(s, j, "error", code, msg);
}

static s_file_t *s_file_by_sha(s_searcher_t *s, const char *sha)
{
    for (int i = 0; i < s->n_files; i++)
        if (strcmp(s->files[i].sha, sha) == 0)
            return &s->files[i];
    return NULL;
}

static void s_on_fetch(s_searcher_t *s, s_agent_t *a, const cJSON *m)
{
    const char *sha = s_str(m, "sha256", "");
    double off_d = cJSON_GetObjectItemCaseSensitive(m, "offset")->valuedouble;
    double len_d = cJSON_GetObjectItemCaseSensitive(m, "length")->valuedouble;
    s_file_t *f = s_file_by_sha(s, sha);
    if (!f) {
        s_send_error(s, a->rid, a->rid_len, BS_ENOENT,
                     "no file with that sha256 in the running campaign", BS_MSG_FETCH);
        return;
    }
    uint64_t off = (uint64_t)off_d;
    if (off > f->size) {
        s_send_error(s, a->rid, a->rid_len, BS_EINVAL, "offset past the end of the file",
                     BS_MSG_FETCH);
        return;
    }
    size_t len = (size_t)len_d;
    if (len > BS_PROTO_CHUNK_SIZE)
        len = BS_PROTO_CHUNK_SIZE;
    if (len > f->size - off)
        len = (size_t)(f->size - off);
    unsigned char *buf = bs_malloc(len ? len : 1);
    if (!buf) {
        s_send_error(s, a->rid, a->rid_len, BS_ENOMEM, "searcher out of memory", BS_MSG_FETCH);
        return;
    }
    ssize_t n = len ? pread(f->fd, buf, len, (off_t)off) : 0;
    if (n != (ssize_t)len) {
        bs_free(buf);
        s_send_error(s, a->rid, a->rid_len, BS_EIO, "searcher could not read the file",
                     BS_MSG_FETCH);
        return;
    }
    cJSON *c = bs_msg_new(BS_MSG_CHUNK);
    if (c) {
        cJSON_AddStringToObject(c, "sha256", f->sha);
        cJSON_AddNumberToObject(c, "offset", (double)off);
        cJSON_AddNumberToObject(c, "total", (double)f->size);
    }
    s_send(s, a->rid, a->rid_len, c, buf, len);
    bs_free(buf);
}

static void s_handle(s_searcher_t *s, bs_wire_msg_t *w, int rc, const bs_err_t *e)
{
    if (rc) {
        BS_WARN(S_MOD, "bad message from a peer: %s: %s", bs_err_name(rc), e->msg);
        if (w->id_len && w->type != BS_MSG_ERROR)
            s_send_error(s, w->id, w->id_len, rc, e->msg, w->type);
        return;
    }
    if (w->type == BS_MSG_HELLO) {
        s_on_hello(s, w);
        return;
    }
    s_agent_t *a = s_agent_by_rid(s, w->id, w->id_len);
    if (!a) {
        if (w->type != BS_MSG_BYE && w->type != BS_MSG_ERROR)
            s_send_error(s, w->id, w->id_len, BS_EHELLO, "unknown agent: send HELLO first",
                         w->type);
        return;
    }
    a->last_seen = bs_now_ms();
    switch (w->type) {
    case BS_MSG_HEARTBEAT: {
        const cJSON *jid = cJSON_GetObjectItemCaseSensitive(w->msg, "job_id");
        if (jid && (!a->job || (int64_t)jid->valuedouble != a->job->id))
            a->busy_until = a->last_seen + (uint64_t)s->hb_ms * 2;
        else if (!jid)
            a->busy_until = 0;
        break;
    }
    case BS_MSG_RESULT:
        s_on_result(s, a, w->msg);
        break;
    case BS_MSG_FETCH:
        s_on_fetch(s, a, w->msg);
        break;
    case BS_MSG_BYE:
        s_agent_drop(s, a, "said BYE");
        break;
    case BS_MSG_ERROR:
        BS_WARN(S_MOD, "agent %s reports %s: %s", a->name, s_str(w->msg, "code", "?"),
                s_str(w->msg, "message", ""));
        break;
    default:
        s_send_error(s, a->rid, a->rid_len, BS_EPROTO, "message not expected by the searcher",
                     w->type);
        break;
    }
}

static void s_drain(s_searcher_t *s)
{
    if (s->in_drain)
        return;
    s->in_drain = 1;
    for (;;) {
        int events = 0;
        size_t sz = sizeof events;
        if (zmq_getsockopt(s->router, ZMQ_EVENTS, &events, &sz) != 0 || !(events & ZMQ_POLLIN))
            break;
        bs_wire_msg_t w;
        bs_err_t e = {0};
        memset(&w, 0, sizeof w);
        int rc = bs_wire_recv(s->router, 1, &w, &e);
        if (rc == BS_EAGAIN) {
            bs_wire_msg_free(&w);
            break;
        }
        if (rc == BS_EZMQ) {
            bs_wire_msg_free(&w);
            BS_ERROR(S_MOD, "receive failed: %s", zmq_strerror(zmq_errno()));
            break;
        }
        s_handle(s, &w, rc, &e);
        bs_wire_msg_free(&w);
    }
    s->in_drain = 0;
}

/* ---- dispatch ----------------------------------------------------------------------------- */

static int s_make_job(s_searcher_t *s, const int *cand, const char *assignment, int64_t cfg_id,
                      s_job_t **out)
{
    s_job_t *j = bs_calloc(1, sizeof *j);
    int n = s->space.n_layers;
    if (!j)
        return BS_ENOMEM;
    j->cand = bs_malloc(sizeof *j->cand * (size_t)(n ? n : 1));
    j->assignment = bs_strdup(assignment);
    if (!j->cand || !j->assignment) {
        s_job_free(j);
        return BS_ENOMEM;
    }
    memcpy(j->cand, cand, sizeof *cand * (size_t)n);
    j->config_id = cfg_id;
    *out = j;
    return 0;
}

static char *s_format_cand(s_searcher_t *s, const int *cand)
{
    bs_prec_t *p = s->precs;
    int n = s->space.n_layers;
    for (int i = 0; i < n; i++)
        p[i] = s->space.layers[i].choices[cand[i]];
    return bs_assign_format(s->space.names, p, n);
}

/* Walks the space in mixed-radix order from a random start for the first unknown candidate.
 * Used when the policy keeps proposing known configurations of a small space. */
static int s_fill_unknown(s_searcher_t *s, int *cand)
{
    double size = bs_space_size(&s->space);
    if (size > 2e6 || (double)s->known.n >= size)
        return BS_EEXHAUSTED;
    bs_rng_t rng;
    bs_rng_seed(&rng, (uint64_t)s->known.n * 7919u + s->cfg->seed);
    for (int i = 0; i < s->space.n_layers; i++)
        cand[i] = (int)bs_rng_below(&rng, (uint32_t)s->space.layers[i].n_choices);
    for (double step = 0; step < size; step++) {
        char *a = s_format_cand(s, cand);
        if (!a)
            return BS_ENOMEM;
        int known = s_set_has(&s->known, a);
        bs_free(a);
        if (!known)
            return 0;
        for (int i = 0; i < s->space.n_layers; i++) {
            if (++cand[i] < s->space.layers[i].n_choices)
                break;
            cand[i] = 0;
        }
    }
    return BS_EEXHAUSTED;
}

/* Asks the policy for a new configuration and queues it. 0, BS_EAGAIN, BS_EEXHAUSTED. */
static int s_new_job(s_searcher_t *s)
{
    int n = s->space.n_layers;
    int *cand = bs_malloc(sizeof *cand * (size_t)(n ? n : 1));
    char *assign = NULL;
    int rc = BS_ENOMEM;
    if (!cand)
        return rc;
    for (int tries = 0;; tries++) {
        if (tries == S_PROPOSE_TRIES) {
            rc = s_fill_unknown(s, cand);
        } else if (tries > S_PROPOSE_TRIES) {
            rc = BS_EEXHAUSTED;
        } else {
            rc = s->policy->propose(s->policy_state, cand);
        }
        if (rc)
            break;
        bs_free(assign);
        assign = s_format_cand(s, cand);
        if (!assign) {
            rc = BS_ENOMEM;
            break;
        }
        if (!s_set_has(&s->known, assign))
            break;
    }
    if (rc == 0) {
        int64_t cfg_id = 0;
        s_job_t *j = NULL;
        rc = bs_store_config_add(s->store, s->campaign_id, assign, s->policy->name, &cfg_id);
        if (rc == BS_EEXIST)
            rc = 0; /* stored by an earlier run that died before evaluating it */
        if (rc == 0)
            rc = s_set_add(&s->known, assign);
        if (rc == 0)
            rc = s_make_job(s, cand, assign, cfg_id, &j);
        if (rc == 0)
            s_queue_push(s, j, 0);
        else if (rc != BS_ENOMEM)
            s_fatal_store(s, rc, "config");
    }
    bs_free(cand);
    bs_free(assign);
    return rc;
}

static cJSON *s_job_msg(s_searcher_t *s, const s_job_t *j)
{
    cJSON *m = bs_msg_new(BS_MSG_JOB);
    cJSON *files = cJSON_CreateArray();
    cJSON *measure = cJSON_Duplicate(s->cfg->measure, 1);
    cJSON *data = cJSON_CreateObject();
    if (!m || !files || !measure || !data)
        goto fail;
    for (int i = 0; i < s->n_files; i++) {
        cJSON *f = cJSON_CreateObject();
        if (!f || !cJSON_AddItemToArray(files, f))
            goto fail;
        const char *base = strrchr(s->files[i].path, '/');
        cJSON_AddStringToObject(f, "role", s->files[i].role);
        cJSON_AddStringToObject(f, "sha256", s->files[i].sha);
        cJSON_AddNumberToObject(f, "size", (double)s->files[i].size);
        cJSON_AddStringToObject(f, "name", base ? base + 1 : s->files[i].path);
    }
    if (s->cfg->preprocess)
        cJSON_AddItemToObject(data, "preprocess", cJSON_Duplicate(s->cfg->preprocess, 1));
    cJSON_AddNumberToObject(data, "eval_count",
                            (double)(j->sens ? s->cfg->sens_eval_count : s->cfg->eval.count));
    cJSON_AddNumberToObject(data, "calib_count", (double)s->cfg->calibration.count);
    if (s->cfg->quantization)
        cJSON_AddItemToObject(data, "quantization", cJSON_Duplicate(s->cfg->quantization, 1));
    cJSON_AddStringToObject(m, "kind", j->sens ? "sensitivity" : "evaluate");
    if (j->sens) {
        cJSON *precs = cJSON_AddArrayToObject(m, "precisions");
        for (int i = 0; precs && i < s->cfg->n_sens_precs; i++) {
            char t[BS_PREC_TEXT_MAX];
            bs_prec_format(s->cfg->sens_precs[i], t);
            cJSON *it = cJSON_CreateString(t);
            if (!it || !cJSON_AddItemToArray(precs, it)) {
                cJSON_Delete(it);
                goto fail;
            }
        }
        if (!precs)
            goto fail;
    }
    cJSON_AddNumberToObject(m, "job_id", (double)j->id);
    cJSON_AddStringToObject(m, "campaign", s->cfg->name);
    cJSON_AddNumberToObject(m, "attempt", j->attempts + 1);
    cJSON_AddNumberToObject(m, "lease_ms", s->cfg->lease_ms);
    cJSON_AddStringToObject(m, "backend", s->cfg->backend);
    cJSON_AddStringToObject(m, "assignment", j->assignment);
    cJSON_AddItemToObject(m, "files", files);
    cJSON_AddItemToObject(m, "measure", measure);
    cJSON_AddItemToObject(m, "data", data);
    return m;
fail:
    cJSON_Delete(m);
    cJSON_Delete(files);
    cJSON_Delete(measure);
    cJSON_Delete(data);
    return NULL;
}

/* The sensitivity job for agent a, if its name still needs one: a queued retry for that name,
 * or a new job when none exists (queued or leased) and its rows are not stored. NULL: none
 * (taken off the retry queue when returned). */
static s_job_t *s_sens_take(s_searcher_t *s, const s_agent_t *a)
{
    if (!s->cfg->sensitivity || !a->name[0] || s_set_has(&s->sens_done, a->name))
        return NULL;
    for (s_job_t **pp = &s->sens_queue; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->sens_agent, a->name) == 0) {
            s_job_t *j = *pp;
            *pp = j->next;
            j->next = NULL;
            return j;
        }
    }
    for (const s_job_t *l = s->leased; l; l = l->next)
        if (l->sens && strcmp(l->sens_agent, a->name) == 0)
            return NULL; /* another agent of that name is measuring it */
    s_job_t *j = bs_calloc(1, sizeof *j);
    if (j && !(j->assignment = bs_strdup(s->sens_base))) {
        bs_free(j);
        j = NULL;
    }
    if (!j) {
        BS_ERROR(S_MOD, "out of memory creating the sensitivity job for %s", a->name);
        return NULL;
    }
    j->sens = 1;
    snprintf(j->sens_agent, sizeof j->sens_agent, "%s", a->name);
    BS_INFO(S_MOD, "sensitivity for agent %s: %d layers x %d precisions", a->name,
            s->space.n_layers, s->cfg->n_sens_precs);
    return j;
}

/* Leases job j to agent a and sends the JOB. 0, or the send error (then j is requeued and the
 * agent dropped: the caller must not touch a again). */
static int s_lease(s_searcher_t *s, s_agent_t *a, s_job_t *j, uint64_t now)
{
    j->next = s->leased;
    s->leased = j;
    s->n_leased++;
    if (j->sens)
        s->n_sens_leased++;
    j->agent = a;
    a->job = j;
    j->id = s->job_seq_base + ++s->job_seq;
    j->deadline = now + (uint64_t)s->cfg->lease_ms;
    j->lease_wall = bs_wall_ms();
    if (!j->first_wall)
        j->first_wall = j->lease_wall;
    int rc = s_send(s, a->rid, a->rid_len, s_job_msg(s, j), NULL, 0);
    if (rc) {
        /* The peer is gone (ROUTER_MANDATORY) or the queue is full: not the config's fault,
         * so the job goes back without counting an attempt. */
        BS_WARN(S_MOD, "could not send job to %s: %s", a->name, bs_strerror(rc));
        s_leased_remove(s, j);
        a->job = NULL;
        s_requeue(s, j);
        s_agent_drop(s, a, "unreachable");
        return rc;
    }
    char label[128];
    BS_DEBUG(S_MOD, "job %lld -> %s: %s", (long long)j->id, a->name,
             s_job_label(j, label, sizeof label));
    return 0;
}

static void s_dispatch(s_searcher_t *s)
{
    if (s->stopping || s->fatal)
        return;
    uint64_t now = bs_now_ms();
    int no_evals = 0; /* no evaluation to hand out this turn; sensitivity jobs may still go */
    for (int i = 0; i < s->n_agents; i++) {
        s_agent_t *a = s->agents[i];
        if (!a->eligible || a->job || a->busy_until > now)
            continue;
        s_job_t *j = s_sens_take(s, a);
        if (!j && no_evals)
            continue;
        if (!j && !s->queue) {
            if (s->exhausted || s->done + (s->n_leased - s->n_sens_leased) >= s->budget) {
                no_evals = 1;
                continue;
            }
            int rc = s_new_job(s);
            if (rc == BS_EEXHAUSTED) {
                BS_INFO(S_MOD, "search space exhausted: all %.0f configurations are known",
                        bs_space_size(&s->space));
                s->exhausted = 1;
                no_evals = 1;
                continue;
            }
            if (rc) {
                no_evals = 1;
                continue;
            }
        }
        if (!j) {
            j = s->queue;
            s->queue = j->next;
        }
        if (s_lease(s, a, j, now) != 0)
            i--; /* a was dropped: the next agent moved into its slot */
    }
}

/* ---- loop --------------------------------------------------------------------------------- */

static void s_stop_loop(s_searcher_t *s);

static void s_check_end(s_searcher_t *s)
{
    if (s->finished)
        return;
    int budget_done = s->done >= s->budget;
    int nothing_left = s->exhausted && !s->queue && s->n_leased == 0;
    if (!s->stopping && (budget_done || nothing_left)) {
        s->stopping = 1;
        s->stop_deadline = bs_now_ms();
        /* Sensitivity jobs in flight are not part of the budget: let them finish. */
        for (const s_job_t *j = s->leased; j; j = j->next)
            if (j->sens && j->deadline > s->stop_deadline)
                s->stop_deadline = j->deadline;
        if (s->n_sens_leased > 0)
            BS_INFO(S_MOD, "no evaluation left to run; waiting for %d sensitivity job(s) in "
                    "flight", s->n_sens_leased);
    }
    if (s->stopping && (s->n_leased == 0 || bs_now_ms() >= s->stop_deadline))
        s_stop_loop(s);
}

static void s_tick(uv_timer_t *t)
{
    s_searcher_t *s = t->data;
    uint64_t dead_after = (uint64_t)s->hb_ms * (uint64_t)s->liveness;
    s_drain(s);
    uint64_t now = bs_now_ms(); /* after the drain: last_seen may have just moved */
    for (int i = 0; i < s->n_agents; i++) {
        s_agent_t *a = s->agents[i];
        if (a->last_seen + dead_after < now) {
            s_agent_drop(s, a, "silent past its liveness");
            i--;
            continue;
        }
        if (now - a->last_hb_sent >= (uint64_t)s->hb_ms) {
            a->last_hb_sent = now;
            s_send(s, a->rid, a->rid_len, bs_msg_new(BS_MSG_HEARTBEAT), NULL, 0);
        }
    }
    for (s_job_t *j = s->leased, *next; j; j = next) {
        next = j->next;
        if (now >= j->deadline) {
            s_agent_t *a = j->agent;
            s_attempt_failed(s, j, "lease_expired", BS_ELEASE, "the lease deadline passed");
            if (a)
                a->busy_until = now + (uint64_t)s->hb_ms * 2;
        }
    }
    if (s->wall_deadline && now >= s->wall_deadline && !s->stopping) {
        BS_INFO(S_MOD, "wall-time budget reached; waiting for jobs in flight");
        s->stopping = 1;
        s->stop_deadline = now + (uint64_t)(s->opts->drain_s * 1000);
    }
    s_dispatch(s);
    s_drain(s);
    s_progress(s, 0);
    s_check_end(s);
}

static void s_on_poll(uv_poll_t *p, int status, int events)
{
    s_searcher_t *s = p->data;
    (void)status;
    (void)events;
    s_drain(s);
    s_dispatch(s);
    s_drain(s);
    s_check_end(s);
}

static void s_on_signal(uv_signal_t *h, int signum)
{
    s_searcher_t *s = h->data;
    if (s->interrupted) {
        BS_WARN(S_MOD, "second signal: stopping now");
        s->stop_deadline = 0;
        s_stop_loop(s);
        return;
    }
    s->interrupted = 1;
    s->stopping = 1;
    s->stop_deadline = bs_now_ms() + (uint64_t)(s->opts->drain_s * 1000);
    BS_INFO(S_MOD, "%s: no new jobs; waiting up to %.0f s for %d in flight", strsignal(signum),
            s->opts->drain_s, s->n_leased);
    s_check_end(s);
}

static void s_on_local_exit(uv_process_t *p, int64_t status, int sig)
{
    s_local_t *l = p->data ? p->data : NULL;
    s_searcher_t *s = p->loop->data;
    if (l) {
        l->running = 0;
        s->n_locals_running--;
        if (!s->finished)
            BS_WARN(S_MOD, "local agent %d exited (status %lld, signal %d)", l->index,
                    (long long)status, sig);
    }
    uv_close((uv_handle_t *)p, NULL);
}

static void s_stop_loop(s_searcher_t *s)
{
    if (s->finished)
        return;
    s->finished = 1;
    for (int i = 0; i < s->n_agents; i++) {
        cJSON *bye = bs_msg_new(BS_MSG_BYE);
        if (bye)
            cJSON_AddStringToObject(bye, "reason", "campaign stopped");
        s_send(s, s->agents[i]->rid, s->agents[i]->rid_len, bye, NULL, 0);
    }
    uv_timer_stop(&s->tick);
    uv_poll_stop(&s->poll);
    uv_signal_stop(&s->sigint);
    uv_signal_stop(&s->sigterm);
    for (int i = 0; i < s->opts->local_agents && s->locals; i++)
        if (s->locals[i].running)
            uv_process_kill(&s->locals[i].proc, SIGTERM);
    uv_stop(&s->loop);
}

/* ---- setup -------------------------------------------------------------------------------- */

static int s_add_file(s_searcher_t *s, const char *role, const char *path)
{
    if (!path)
        return 0;
    s_file_t *f = &s->files[s->n_files];
    snprintf(f->role, sizeof f->role, "%s", role);
    f->fd = -1;
    if (!(f->path = bs_strdup(path)))
        return bs_err_set(s->err, BS_ENOMEM, "out of memory");
    s->n_files++;
    int rc = bs_sha256_file(path, f->sha, &f->size, s->err);
    if (rc)
        return rc;
    f->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (f->fd < 0)
        return bs_err_set(s->err, BS_EIO, "%s: cannot open: %s", path, strerror(errno));
    return 0;
}

static int s_cand_from_assignment(s_searcher_t *s, const char *assignment, int *cand)
{
    bs_prec_t *p = s->precs;
    int n = s->space.n_layers;
    bs_err_t e = {0};
    for (int i = 0; i < n; i++)
        p[i] = BS_PREC_FP32;
    int rc = bs_spec_apply(assignment, s->space.names, n, p, &e);
    if (rc)
        return rc;
    for (int i = 0; i < n; i++) {
        const bs_space_layer_t *l = &s->space.layers[i];
        cand[i] = -1;
        for (int c = 0; c < l->n_choices; c++)
            if (bs_prec_eq(l->choices[c], p[i]))
                cand[i] = c;
        if (cand[i] < 0)
            return BS_EINVAL;
    }
    return 0;
}

typedef struct s_resume {
    s_searcher_t *s;
    int *cand;
    int64_t pending;
    int64_t state_eval_id;  /* evaluations up to this id are in the loaded policy state */
    int64_t replayed;
} s_resume_t;

static int s_resume_config(void *ud, int64_t config_id, const char *assignment, int evaluated)
{
    s_resume_t *r = ud;
    s_searcher_t *s = r->s;
    int rc = s_set_add(&s->known, assignment);
    if (rc || evaluated)
        return rc;
    if (s_cand_from_assignment(s, assignment, r->cand) != 0) {
        BS_WARN(S_MOD, "stored config %lld does not fit the search space; skipped",
                (long long)config_id);
        return 0;
    }
    s_job_t *j = NULL;
    if ((rc = s_make_job(s, r->cand, assignment, config_id, &j)) != 0)
        return rc;
    s_queue_push(s, j, 0);
    r->pending++;
    return 0;
}

static int s_resume_eval(void *ud, int64_t eval_id, int64_t config_id, const char *assignment,
                         int ok, const bs_metrics_t *m, const char *result_json)
{
    s_resume_t *r = ud;
    s_searcher_t *s = r->s;
    (void)config_id;
    s->done++;
    if (!ok)
        s->failed++;
    if (ok && bs_pareto_add(s->front, eval_id, m) < 0)
        return BS_ENOMEM;
    double v[BS_MAX_OBJECTIVES];
    if (eval_id <= r->state_eval_id) {
        /* in the loaded state already: only the hypervolume's normalisation needs it */
        if (ok && bs_pareto_feasible(s->front, m) && bs_pol_objectives(s->cfg, m, v))
            bs_hv_norm_include(&s->hv_norm, v);
        s->last_eval_id = eval_id;
        return 0;
    }
    if (s_cand_from_assignment(s, assignment, r->cand) == 0) {
        cJSON *result = result_json ? cJSON_Parse(result_json) : NULL;
        s_observe(s, eval_id, r->cand, ok, m, result);
        cJSON_Delete(result);
        r->replayed++;
    }
    return 0;
}

/* Restores the policy's saved state, if any. Returns the id of the last evaluation it holds
 * (0: none, every stored evaluation is replayed). A state that does not load is logged and
 * the policy starts afresh from the replayed results. */
static int64_t s_policy_restore(s_searcher_t *s)
{
    char *name = NULL, *text = NULL;
    int64_t last = 0;
    int rc = bs_store_policy_load(s->store, s->campaign_id, &name, &last, &text);
    if (rc == BS_ENOENT)
        return 0;
    if (rc) {
        BS_WARN(S_MOD, "cannot read the saved policy state (%s); replaying every result",
                bs_strerror(rc));
        return 0;
    }
    int64_t out = 0;
    cJSON *st = NULL;
    bs_err_t e = {0};
    if (strcmp(name, s->policy->name) != 0) {
        BS_INFO(S_MOD, "saved policy state is for policy %s, not %s: starting %s from the "
                "stored results", name, s->policy->name, s->policy->name);
    } else if (!s->policy->load || !(st = cJSON_Parse(text))) {
        BS_WARN(S_MOD, "saved policy state of %s is unreadable; replaying every result", name);
    } else if ((rc = s->policy->load(s->policy_state, st, &e)) != 0) {
        BS_WARN(S_MOD, "saved policy state of %s does not fit this campaign (%s); replaying "
                "every result", name, e.msg);
        /* a half-loaded state is not to be trusted: start afresh */
        s->policy->destroy(s->policy_state);
        s->policy_state = NULL;
        bs_err_t ce = {0};
        if (s_policy_create(s, &ce) != 0) {
            BS_ERROR(S_MOD, "%s", ce.msg);
            s->fatal = 1;
        }
    } else {
        out = last;
        s->saved_eval_id = last;
    }
    cJSON_Delete(st);
    bs_free(name);
    bs_free(text);
    return out;
}

static int s_open_campaign(s_searcher_t *s)
{
    const bs_config_t *c = s->cfg;
    char *space_json = bs_space_to_json(&s->space);
    if (!space_json)
        return bs_err_set(s->err, BS_ENOMEM, "out of memory");
    bs_campaign_rec_t rec = {
        .name = c->name,
        .config_path = c->path,
        .config_json = c->text,
        .model_sha256 = s->files[0].sha,
        .space_json = space_json,
        .policy = c->policy,
        .seed = c->seed,
        .budget = s->budget,
    };
    int resumed = 0;
    int rc = bs_store_campaign_open(s->store, &rec, &s->campaign_id, &resumed, s->err);
    bs_free(space_json);
    if (rc)
        return rc;
    s_resume_t r = {.s = s};
    r.cand = bs_malloc(sizeof *r.cand * (size_t)(s->space.n_layers + 1));
    if (!r.cand)
        return bs_err_set(s->err, BS_ENOMEM, "out of memory");
    if (resumed)
        r.state_eval_id = s_policy_restore(s);
    if (s->fatal) {
        bs_free(r.cand);
        return bs_err_set(s->err, BS_ECONFIG, "cannot recreate policy %s", s->policy->name);
    }
    rc = bs_store_each_eval(s->store, s->campaign_id, s_resume_eval, &r);
    if (rc == 0)
        rc = bs_store_each_config(s->store, s->campaign_id, s_resume_config, &r);
    bs_free(r.cand);
    if (rc)
        return bs_err_set(s->err, rc, "%s: cannot read back campaign '%s': %s",
                          s->opts->db_path, c->name, bs_strerror(rc));
    s_hv_update(s);
    if (resumed)
        BS_INFO(S_MOD, "resuming campaign %s: %lld of %lld evaluations stored (%lld failed), "
                       "%lld configs to re-run, front %d; policy %s %s%lld results replayed",
                c->name, (long long)s->done, (long long)s->budget, (long long)s->failed,
                (long long)r.pending, bs_pareto_size(s->front), s->policy->name,
                r.state_eval_id ? "state restored, " : "", (long long)r.replayed);
    if (s->front && bs_pareto_size(s->front))
        s_record_front(s);
    return bs_store_campaign_set_status(s->store, s->campaign_id, "running");
}

static int s_sens_seen(void *ud, const bs_sens_entry_t *e)
{
    return s_set_add(ud, e->agent);
}

/* Sensitivity setup: the all-fp32 assignment its jobs carry, and the agent names whose rows
 * are stored already (a resumed campaign does not measure them again). */
static int s_sens_setup(s_searcher_t *s)
{
    if (!s->cfg->sensitivity)
        return 0;
    for (int i = 0; i < s->space.n_layers; i++)
        s->precs[i] = BS_PREC_FP32;
    s->sens_base = bs_assign_format(s->space.names, s->precs, s->space.n_layers);
    if (!s->sens_base)
        return bs_err_set(s->err, BS_ENOMEM, "out of memory");
    int rc = bs_store_each_sensitivity(s->store, s->campaign_id, NULL, s_sens_seen,
                                       &s->sens_done);
    if (rc)
        return bs_err_set(s->err, rc, "%s: cannot read back the sensitivity rows of campaign "
                          "'%s': %s", s->opts->db_path ? s->opts->db_path : "results.db",
                          s->cfg->name, bs_strerror(rc));
    char count[32] = "all";
    if (s->cfg->sens_eval_count > 0)
        snprintf(count, sizeof count, "%lld", (long long)s->cfg->sens_eval_count);
    BS_INFO(S_MOD, "sensitivity: %d layers x %d precisions on each agent name (%s evaluation "
            "samples each); %zu agent name(s) measured already", s->space.n_layers,
            s->cfg->n_sens_precs, count, s->sens_done.n);
    if (s->sens_done.n)
        s_sens_feed(s, 0);
    return 0;
}

static int s_bind(s_searcher_t *s)
{
    const char *bind = s->opts->bind ? s->opts->bind : "tcp://*:5555";
    int one = 1, zero = 0;
    int64_t maxmsg = BS_PROTO_MAX_MSG;
    s->zctx = zmq_ctx_new();
    if (!s->zctx)
        return bs_err_set(s->err, BS_EZMQ, "zmq_ctx_new: %s", zmq_strerror(zmq_errno()));
    s->router = zmq_socket(s->zctx, ZMQ_ROUTER);
    if (!s->router)
        return bs_err_set(s->err, BS_EZMQ, "zmq_socket: %s", zmq_strerror(zmq_errno()));
    zmq_setsockopt(s->router, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    zmq_setsockopt(s->router, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(s->router, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    if (zmq_bind(s->router, bind) != 0)
        return bs_err_set(s->err, BS_EZMQ, "--bind %s: cannot bind: %s", bind,
                          zmq_strerror(zmq_errno()));
    size_t len = sizeof s->endpoint;
    zmq_getsockopt(s->router, ZMQ_LAST_ENDPOINT, s->endpoint, &len);
    BS_INFO(S_MOD, "listening on %s", s->endpoint);
    return 0;
}

/* The endpoint local agents connect to: the bound one with a wildcard host made loopback. */
static void s_local_endpoint(const s_searcher_t *s, char *out, size_t cap)
{
    const char *p = strstr(s->endpoint, "://");
    const char *colon = strrchr(s->endpoint, ':');
    if (p && colon && (strncmp(p + 3, "0.0.0.0", 7) == 0 || strncmp(p + 3, "*", 1) == 0 ||
                       strncmp(p + 3, "[::]", 4) == 0))
        snprintf(out, cap, "tcp://127.0.0.1%s", colon);
    else
        snprintf(out, cap, "%s", s->endpoint);
}

static int s_start_locals(s_searcher_t *s)
{
    int n = s->opts->local_agents;
    if (n <= 0)
        return 0;
    char *dir = s->opts->agent_bin ? NULL : bs_exe_dir();
    char bin[4096];
    if (s->opts->agent_bin)
        snprintf(bin, sizeof bin, "%s", s->opts->agent_bin);
    else
        snprintf(bin, sizeof bin, "%s/bitscout-agent", dir ? dir : ".");
    bs_free(dir);
    if (access(bin, X_OK) != 0)
        return bs_err_set(s->err, BS_ENOENT, "--local-agents: cannot run %s: %s", bin,
                          strerror(errno));
    s->locals = bs_calloc((size_t)n, sizeof *s->locals);
    if (!s->locals)
        return bs_err_set(s->err, BS_ENOMEM, "out of memory");
    char ep[300];
    s_local_endpoint(s, ep, sizeof ep);
    const char *cache = getenv("BITSCOUT_CACHE_DIR");
    char cache_base[4096];
    if (cache)
        snprintf(cache_base, sizeof cache_base, "%s", cache);
    else if (getenv("XDG_CACHE_HOME"))
        snprintf(cache_base, sizeof cache_base, "%s/bitscout", getenv("XDG_CACHE_HOME"));
    else
        snprintf(cache_base, sizeof cache_base, "%s/.cache/bitscout",
                 getenv("HOME") ? getenv("HOME") : "/tmp");
    for (int i = 0; i < n; i++) {
        char name[32], cdir[4200];
        snprintf(name, sizeof name, "local-%d", i + 1);
        snprintf(cdir, sizeof cdir, "%s/%s", cache_base, name);
        const char *level = s->opts->agent_log_level ? s->opts->agent_log_level : "warn";
        char *args[] = {bin,       "--connect",  ep,    "--name", name, "--cache-dir",
                        cdir,      "--log-level", (char *)level, NULL};
        uv_stdio_container_t stdio[3] = {{.flags = UV_IGNORE},
                                         {.flags = UV_INHERIT_FD, .data.fd = 1},
                                         {.flags = UV_INHERIT_FD, .data.fd = 2}};
        uv_process_options_t po = {
            .file = bin,
            .args = args,
            .exit_cb = s_on_local_exit,
            .stdio_count = 3,
            .stdio = stdio,
        };
        s->locals[i].index = i + 1;
        s->locals[i].proc.data = &s->locals[i];
        int rc = uv_spawn(&s->loop, &s->locals[i].proc, &po);
        if (rc != 0) {
            return bs_err_set(s->err, BS_EUV, "--local-agents: cannot start %s: %s", bin,
                              uv_strerror(rc));
        }
        s->locals[i].running = 1;
        s->n_locals_running++;
    }
    BS_INFO(S_MOD, "started %d local agents connecting to %s", n, ep);
    return 0;
}

static void s_close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void s_wait_locals(s_searcher_t *s)
{
    /* Give local agents a moment to exit on SIGTERM, then insist. */
    uint64_t until = bs_now_ms() + 3000;
    while (s->n_locals_running > 0 && bs_now_ms() < until)
        uv_run(&s->loop, UV_RUN_NOWAIT), usleep(10000);
    for (int i = 0; i < s->opts->local_agents && s->locals; i++)
        if (s->locals[i].running)
            uv_process_kill(&s->locals[i].proc, SIGKILL);
    until = bs_now_ms() + 2000;
    while (s->n_locals_running > 0 && bs_now_ms() < until)
        uv_run(&s->loop, UV_RUN_NOWAIT), usleep(10000);
}

int bs_search_run(const bs_search_opts_t *opts, bs_err_t *err)
{
    s_searcher_t *s = bs_calloc(1, sizeof *s);
    int rc;
    if (!s)
        return bs_err_set(err, BS_ENOMEM, "out of memory");
    s->opts = opts;
    s->err = err;
    if ((rc = uv_loop_init(&s->loop)) != 0) {
        bs_free(s);
        return bs_err_set(err, BS_EUV, "uv_loop_init: %s", uv_strerror(rc));
    }
    s->loop.data = s;
    int loop_used = 0;
    signal(SIGPIPE, SIG_IGN);

    if ((rc = bs_config_load(opts->config_path, &s->cfg, err)))
        goto done;
    s->hb_ms = s->cfg->heartbeat_ms;
    s->liveness = s->cfg->liveness;
    s->budget = opts->budget > 0 ? opts->budget : s->cfg->budget_evals;
    if ((rc = bs_model_info_load(s->cfg->model, &s->model, err)))
        goto done;
    if ((rc = bs_space_build(s->cfg, &s->model, &s->space, err)))
        goto done;
    s->precs = bs_calloc((size_t)s->space.n_layers + 1, sizeof *s->precs);
    if (!s->precs) {
        rc = bs_err_set(err, BS_ENOMEM, "out of memory");
        goto done;
    }
    if ((rc = s_add_file(s, "model", s->cfg->model)) ||
        (rc = s_add_file(s, "eval_images", s->cfg->eval.images)) ||
        (rc = s_add_file(s, "eval_labels", s->cfg->eval.labels)) ||
        (rc = s_add_file(s, "calib_images", s->cfg->calibration.images)))
        goto done;
    /* "seed_from": "sensitivity" wraps the named policy in the sensitivity seeder */
    s->policy = cJSON_GetObjectItemCaseSensitive(s->cfg->policy_params, "seed_from")
                    ? &bs_policy_sens
                    : bs_policy_find(s->cfg->policy);
    if (!s->policy) {
        rc = bs_err_set(err, BS_ECONFIG, "%s: policy.name: unknown policy \"%s\"",
                        s->cfg->path, s->cfg->policy);
        goto done;
    }
    bs_err_t de = {0};
    if (bs_space_describe(&s->space, s->cfg->model, &de) != 0)
        BS_WARN(S_MOD, "layer shapes unknown to the policies: %s", de.msg);
    s->layer_ms = bs_malloc(sizeof *s->layer_ms * (size_t)(s->space.n_layers + 1));
    if (!s->layer_ms) {
        rc = bs_err_set(err, BS_ENOMEM, "out of memory");
        goto done;
    }
    s->hv = NAN;
    bs_hv_norm_init(&s->hv_norm, s->cfg);
    if ((rc = s_policy_create(s, err)))
        goto done;
    s->front = bs_pareto_new(s->cfg->objectives, s->cfg->n_objectives, s->cfg->constraints,
                             s->cfg->n_constraints);
    if (!s->front) {
        rc = bs_err_set(err, BS_ENOMEM, "out of memory");
        goto done;
    }
    if ((rc = bs_store_open(opts->db_path ? opts->db_path : "results.db", 0, &s->store, err)))
        goto done;
    if ((rc = s_open_campaign(s)) || (rc = s_sens_setup(s)))
        goto done;
    BS_INFO(S_MOD, "campaign %s: %d layers, %.0f configurations, policy %s (seed %llu), "
                   "budget %lld, backend %s",
            s->cfg->name, s->space.n_layers, bs_space_size(&s->space), s->cfg->policy,
            (unsigned long long)s->cfg->seed, (long long)s->budget, s->cfg->backend);
    if (strcmp(s->cfg->backend, "sim") == 0)
        BS_WARN(S_MOD, "measure.backend is \"sim\": results are synthetic (a test and scale "
                       "tool), stored with simulated=1, not measurements");
    /* Job ids: a random per-process base (under 2^53 with room for 10^6 jobs), so a RESULT
     * for a job of an earlier searcher process never matches one of ours. */
    if (sodium_init() < 0) {
        rc = bs_err_set(err, BS_EIO, "libsodium failed to initialise");
        goto done;
    }
    s->job_seq_base = ((int64_t)randombytes_uniform(8000000u) + 1) * 1000000;
    if (s->cfg->budget_wall_s > 0)
        s->wall_deadline = bs_now_ms() + (uint64_t)(s->cfg->budget_wall_s * 1000);
    if ((rc = s_bind(s)))
        goto done;
    int fd = -1;
    size_t fdlen = sizeof fd;
    if (zmq_getsockopt(s->router, ZMQ_FD, &fd, &fdlen) != 0) {
        rc = bs_err_set(err, BS_EZMQ, "ZMQ_FD: %s", zmq_strerror(zmq_errno()));
        goto done;
    }
    loop_used = 1;
    uv_poll_init(&s->loop, &s->poll, fd);
    s->poll.data = s;
    uv_poll_start(&s->poll, UV_READABLE, s_on_poll);
    uv_timer_init(&s->loop, &s->tick);
    s->tick.data = s;
    uint64_t tick_ms = (uint64_t)(s->hb_ms / 4 < 20 ? 20 : s->hb_ms / 4 > 250 ? 250 : s->hb_ms / 4);
    uv_timer_start(&s->tick, s_tick, tick_ms, tick_ms);
    uv_signal_init(&s->loop, &s->sigint);
    uv_signal_init(&s->loop, &s->sigterm);
    s->sigint.data = s->sigterm.data = s;
    uv_signal_start(&s->sigint, s_on_signal, SIGINT);
    uv_signal_start(&s->sigterm, s_on_signal, SIGTERM);
    s->progress = bs_progress_new(opts->progress);
    if ((rc = s_start_locals(s)))
        goto done;

    s_check_end(s); /* a resumed campaign may already be complete */
    if (!s->finished)
        uv_run(&s->loop, UV_RUN_DEFAULT);
    s_progress(s, 1);

    if (s->fatal) {
        rc = BS_EDB;
    } else {
        const char *status = s->interrupted ? "interrupted"
                             : s->done >= s->budget ? "done"
                             : s->exhausted         ? "exhausted"
                                                    : "interrupted";
        s_policy_save(s, 1);
        bs_store_campaign_set_status(s->store, s->campaign_id, status);
        char hv[48] = "";
        if (isfinite(s->hv))
            snprintf(hv, sizeof hv, ", hypervolume %.4f", s->hv);
        BS_INFO(S_MOD, "campaign %s %s: %lld evaluations (%lld failed), front %d%s; results in "
                "%s", s->cfg->name, status, (long long)s->done, (long long)s->failed,
                bs_pareto_size(s->front), hv, opts->db_path ? opts->db_path : "results.db");
        if (s->interrupted) {
            BS_INFO(S_MOD, "rerun the same command to resume");
            rc = BS_ECANCELED;
        } else {
            rc = 0;
        }
    }
done:
    if (loop_used) {
        if (!s->finished) {
            s->finished = 1;
            for (int i = 0; i < opts->local_agents && s->locals; i++)
                if (s->locals[i].running)
                    uv_process_kill(&s->locals[i].proc, SIGTERM);
        }
        s_wait_locals(s);
        uv_walk(&s->loop, s_close_walk, NULL);
    }
    /* uv_run returns at once when uv_stop was called before it; loop until every close
     * callback has run and the loop can be closed. */
    for (int i = 0; i < 100 && uv_loop_close(&s->loop) == UV_EBUSY; i++)
        uv_run(&s->loop, UV_RUN_NOWAIT);
    bs_progress_destroy(&s->progress);
    while (s->queue) {
        s_job_t *j = s->queue;
        s->queue = j->next;
        s_job_free(j);
    }
    while (s->leased) {
        s_job_t *j = s->leased;
        s->leased = j->next;
        s_job_free(j);
    }
    while (s->sens_queue) {
        s_job_t *j = s->sens_queue;
        s->sens_queue = j->next;
        s_job_free(j);
    }
    s_set_free(&s->sens_done);
    bs_free(s->sens_base);
    for (int i = 0; i < s->n_agents; i++)
        bs_free(s->agents[i]);
    if (s->router)
        zmq_close(s->router);
    if (s->zctx)
        zmq_ctx_term(s->zctx);
    for (int i = 0; i < s->n_files; i++) {
        if (s->files[i].fd >= 0)
            close(s->files[i].fd);
        bs_free(s->files[i].path);
    }
    s_set_free(&s->known);
    if (s->policy && s->policy_state)
        s->policy->destroy(s->policy_state);
    bs_free(s->layer_ms);
    bs_pareto_destroy(&s->front);
    bs_store_close(&s->store);
    bs_free(s->precs);
    bs_space_free(&s->space);
    bs_model_info_free(&s->model);
    bs_config_free(&s->cfg);
    bs_free(s->locals);
    bs_free(s);
    return rc;
}

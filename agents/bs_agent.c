/*
 * bs_agent.c - the agent's client loop: session, jobs and file fetches (see bs_agent.h).
 *
 * One thread (the caller's) owns the ZeroMQ socket and runs a zmq_poll loop over two items:
 * the DEALER socket and the read end of a pipe through which a worker thread says that a job's
 * backend has finished. Every other event is a deadline computed each turn: the next HELLO,
 * the next HEARTBEAT, the searcher's liveness and a FETCH that went unanswered. The poll
 * timeout is capped at 50 ms so that a stop flag set by another thread is seen promptly (a
 * signal interrupts the poll anyway).
 *
 * Session. S_HELLO: HELLO is sent at once, then again after 500 ms, 1 s, 2 s, ... up to 10 s
 * until WELCOME arrives (the socket reconnects by itself: ZMQ_RECONNECT_IVL 100 ms growing to
 * ZMQ_RECONNECT_IVL_MAX 5 s). S_SESSION: HEARTBEAT every heartbeat_ms (with the job id while a
 * job is active); every message from the searcher counts as a sign of life, and
 * liveness * heartbeat_ms of silence means the searcher is lost: the socket is closed and a new
 * one opened (so the searcher sees a new routing id) and the agent says HELLO again. ERROR
 * EHELLO (the searcher does not know us, e.g. it restarted) sends HELLO at once; BYE from the
 * searcher (it is stopping) opens a new socket and says HELLO after the backoff.
 *
 * Jobs. One at a time; another JOB meanwhile gets RESULT EBUSY. For each file of the job not
 * already verified in the cache, FETCH asks for one chunk at a time (length <= the protocol's
 * chunk size); each CHUNK must match the asked sha256 and offset and announce the JOB's size,
 * else the job fails with EPROTO. The searcher may send fewer bytes than asked; the next FETCH
 * asks for the rest. A complete file is hashed and renamed into the cache (EHASH on a
 * mismatch). A FETCH unanswered for 10 s is sent again, at most three times in all (then
 * ETIMEOUT); while the session is down the timer is paused and the FETCH is re-sent after
 * WELCOME. Then the backend runs on a worker thread with the cache paths; its RESULT is sent
 * when it finishes, or kept and sent after the next WELCOME if the session is down. The
 * backend gets the campaign's measure.threads, or the agent's --threads when the campaign
 * does not say. A JOB of kind "sensitivity" goes the same way to the backend's sensitivity
 * entry (bs_backend_sensitivity: EUNSUPPORTED when it has none) with JOB.precisions parsed,
 * and its RESULT carries "sensitivity" instead of "metrics" (ETOOBIG when the rows would not
 * fit in one message).
 *
 * Bad input from the searcher never stops the loop: an undecodable message is logged and
 * answered with ERROR (unless it was itself an ERROR: never ERROR an ERROR).
 *
 * Stopping. When *stop is set the agent cancels a running job (the backend sees the cancel
 * flag), waits at most 300 ms for it, sends BYE and returns. A worker that does not finish in
 * time is detached and handed its own job record: it frees it when it returns and never
 * touches the pipe again (s_job_t.orphaned, under s_job_t.mu).
 */
#define _GNU_SOURCE
#include "bs_agent.h"
#include "bs_alloc.h"
#include "bs_backend.h"
#include "bs_cache.h"
#include "bs_device.h"
#include "bs_sensors.h"
#include "bs_log.h"
#include "bs_metrics.h"
#include "bs_proto.h"
#include "bs_util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>
#include <zmq.h>

#define S_HELLO_MAX_MS 10000
#define S_FETCH_TIMEOUT_MS 10000
#define S_FETCH_TRIES 3
#define S_POLL_CAP_MS 50
#define S_STOP_WAIT_MS 300
#define S_BYE_LINGER_MS 200
#define S_MAX_FILES 16
#define S_MAX_PENDING 16

typedef enum s_state { S_HELLO, S_SESSION } s_state_t;

/* One file of a job. Strings are borrowed from the JOB message. */
typedef struct s_file {
    const char *role; /* "model", "eval_images", "eval_labels", "calib_images", ... */
    const char *sha;  /* validated 64-hex by the codec */
    const char *name; /* the original file name, for log lines */
    int64_t size;
    char *path; /* owned: the cache path once the file is verified */
} s_file_t;

/* One job, from JOB to RESULT. Owned by the loop thread, except once orphaned (see above). */
typedef struct s_job {
    int64_t id;
    cJSON *msg; /* owned: the JOB message; its strings back files and spec */
    const bs_backend_ops_t *ops;
    s_file_t files[S_MAX_FILES];
    int n_files;
    int cur;               /* file being fetched */
    bs_cache_dl_t *dl;     /* download of files[cur], or NULL */
    uint64_t asked_offset; /* the outstanding FETCH */
    size_t asked_len;
    uint64_t fetch_sent_ms;
    int fetch_tries;
    uint64_t t_start_ms, fetch_ms;
    int running; /* the worker thread exists */
    int ran;     /* the backend ran (run_ms is meaningful) */

    /* Shared with the worker thread. */
    pthread_t thread;
    bs_job_spec_t spec;
    atomic_int cancel;
    int64_t load_ms;
    bs_metrics_t metrics;
    cJSON *profile;                         /* the backend's per-layer profile, or NULL */
    int sens;                               /* 1: JOB.kind "sensitivity" */
    bs_sens_fn sens_fn;                     /* the backend's sensitivity entry */
    bs_prec_t precs[BS_SENS_MAX_PRECS];     /* JOB.precisions */
    int n_precs;
    bs_sens_result_t sens_out;              /* what sens_fn measured */
    bs_err_t err;
    int rc;
    uint64_t run_ms;
    int done_fd;        /* write end of the agent's pipe (not owned) */
    pthread_mutex_t mu; /* guards orphaned and the write to done_fd */
    int orphaned;       /* 1: the loop gave the record up; the worker frees it */
} s_job_t;

typedef struct s_agent {
    const bs_agent_opts_t *opts;
    const char *name;
    char id[33];
    bs_cache_t *cache;
    void *zctx;
    void *sock;
    int pipe_rd, pipe_wr;
    s_state_t state;
    uint64_t hello_next_ms;
    int hello_backoff_ms;
    int64_t heartbeat_ms, liveness;
    uint64_t hb_next_ms, last_rx_ms;
    int fetch_timeout_ms;
    s_job_t *job;                  /* the active job, or NULL */
    cJSON *pending[S_MAX_PENDING]; /* RESULTs waiting for a session, oldest first */
    int n_pending;
    cJSON *hello; /* owned: the HELLO message, built once */
    bs_sensor_set_t *sensors; /* owned: energy sensors found at start, or NULL */
} s_agent_t;

/* ---- small helpers --------------------------------------------------------------------- */

static void s_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int64_t s_int(const cJSON *o, const char *key, int64_t dflt)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(it) ? (int64_t)it->valuedouble : dflt;
}

static const char *s_str(const cJSON *o, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

char *bs_agent_default_cache_dir(void)
{
    const char *d = getenv("BITSCOUT_CACHE_DIR");
    if (d && *d)
        return bs_strdup(d);
    bs_buf_t b = {0};
    d = getenv("XDG_CACHE_HOME");
    if (d && *d) {
        bs_buf_printf(&b, "%s/bitscout", d);
    } else {
        d = getenv("HOME");
        if (!d || !*d)
            return NULL;
        bs_buf_printf(&b, "%s/.cache/bitscout", d);
    }
    if (b.oom) {
        bs_buf_free(&b);
        return NULL;
    }
    return b.data;
}

/* One process per (cache dir, name): two agents sharing an id would keep replacing each
 * other's session at the searcher. The lock is an flock on agent-id-<name>.lock, released when
 * the agent stops (or dies). */
static int s_lock_name(const char *cache_dir, const char *name, int *fd_out, bs_err_t *err)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/agent-id-%s.lock", cache_dir, name) >= (int)sizeof path)
        return bs_err_set(err, BS_EINVAL, "%s: cache directory path too long", cache_dir);
    for (char *p = path + strlen(cache_dir) + 1; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '-'))
            *p = '_';
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return bs_err_set(err, BS_EIO, "%s: cannot open: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        return bs_err_set(err, BS_EBUSY,
                          "another bitscout-agent named '%s' is running with cache directory %s; "
                          "give each agent its own --name or --cache-dir", name, cache_dir);
    }
    *fd_out = fd;
    return 0;
}

int bs_agent_load_id(const char *cache_dir, const char *name, char out[33], bs_err_t *err)
{
    char safe[80];
    size_t n = 0;
    for (const char *p = name; *p && n < sizeof safe - 1; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == '-';
        safe[n++] = ok ? c : '_';
    }
    safe[n] = '\0';
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/agent-id-%s", cache_dir, safe) >= (int)sizeof path)
        return bs_err_set(err, BS_EINVAL, "%s: cache directory path too long", cache_dir);
    char *text = NULL;
    size_t len = 0;
    if (bs_read_file(path, 4096, &text, &len, NULL) == 0) {
        while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' '))
            text[--len] = '\0';
        int ok = len == 32;
        for (size_t i = 0; ok && i < len; i++)
            ok = (text[i] >= '0' && text[i] <= '9') || (text[i] >= 'a' && text[i] <= 'f');
        if (ok) {
            memcpy(out, text, 33);
            bs_free(text);
            return 0;
        }
        BS_WARN("agent", "%s: not a 32-hex-digit agent id; creating a new one", path);
        bs_free(text);
    }
    unsigned char raw[16];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex(out, 33, raw, sizeof raw);
    char line[34];
    snprintf(line, sizeof line, "%s\n", out);
    return bs_write_file(path, line, 33, err);
}

/* ---- sending --------------------------------------------------------------------------- */

/* Sends msg and deletes it. BS_EAGAIN (queue full) and other failures are logged. */
static int s_send(s_agent_t *a, cJSON *msg)
{
    if (!msg) {
        BS_ERROR("agent", "out of memory building a message");
        return BS_ENOMEM;
    }
    int rc = a->sock ? bs_wire_send(a->sock, NULL, 0, msg, NULL, 0) : BS_EAGAIN;
    if (rc)
        BS_WARN("agent", "could not send %s: %s", s_str(msg, "type"), bs_strerror(rc));
    cJSON_Delete(msg);
    return rc;
}

static void s_send_hello(s_agent_t *a, uint64_t now)
{
    cJSON *m = cJSON_Duplicate(a->hello, 1);
    if (s_send(a, m) == 0)
        BS_DEBUG("agent", "HELLO sent to %s", a->opts->endpoint);
    a->hello_next_ms = now + (uint64_t)a->hello_backoff_ms;
    a->hello_backoff_ms =
        a->hello_backoff_ms * 2 > S_HELLO_MAX_MS ? S_HELLO_MAX_MS : a->hello_backoff_ms * 2;
}

static void s_send_error(s_agent_t *a, int code, const char *message, int ref_type)
{
    const char *ref = ref_type >= 0 ? bs_msg_type_name((bs_msg_type_t)ref_type) : NULL;
    s_send(a, bs_msg_error(code, message, ref));
}

/* Sends the RESULTs kept while there was no session, oldest first; stops at a failure. */
static void s_flush_pending(s_agent_t *a)
{
    while (a->n_pending > 0 && a->state == S_SESSION) {
        if (bs_wire_send(a->sock, NULL, 0, a->pending[0], NULL, 0) != 0)
            return;
        BS_INFO("agent", "job %lld: RESULT sent after reconnecting",
                (long long)s_int(a->pending[0], "job_id", -1));
        cJSON_Delete(a->pending[0]);
        memmove(a->pending, a->pending + 1, sizeof a->pending[0] * (size_t)--a->n_pending);
    }
}

/* Sends a RESULT now, or keeps it for the next session. Takes ownership of r. */
static void s_send_result(s_agent_t *a, cJSON *r)
{
    if (!r) {
        BS_ERROR("agent", "out of memory building a RESULT");
        return;
    }
    if (a->state == S_SESSION && a->n_pending == 0 &&
        bs_wire_send(a->sock, NULL, 0, r, NULL, 0) == 0) {
        cJSON_Delete(r);
        return;
    }
    if (a->n_pending == S_MAX_PENDING) {
        BS_WARN("agent", "too many unsent RESULTs; dropping the oldest (job %lld)",
                (long long)s_int(a->pending[0], "job_id", -1));
        cJSON_Delete(a->pending[0]);
        memmove(a->pending, a->pending + 1, sizeof a->pending[0] * (S_MAX_PENDING - 1));
        a->n_pending--;
    }
    a->pending[a->n_pending++] = r;
    BS_INFO("agent", "job %lld: RESULT kept until the searcher is back",
            (long long)s_int(r, "job_id", -1));
}

static cJSON *s_result_new(int64_t job_id, int ok)
{
    cJSON *r = bs_msg_new(BS_MSG_RESULT);
    if (r && (!cJSON_AddNumberToObject(r, "job_id", (double)job_id) ||
              !cJSON_AddBoolToObject(r, "ok", ok))) {
        cJSON_Delete(r);
        return NULL;
    }
    return r;
}

static cJSON *s_result_error(int64_t job_id, int code, const char *message)
{
    cJSON *r = s_result_new(job_id, 0);
    cJSON *e = cJSON_CreateObject();
    if (!r || !e || !cJSON_AddStringToObject(e, "code", bs_err_name(code)) ||
        !cJSON_AddStringToObject(e, "message", message ? message : "")) {
        cJSON_Delete(r);
        cJSON_Delete(e);
        return NULL;
    }
    cJSON_AddItemToObject(r, "error", e);
    return r;
}

static void s_add_timings(cJSON *r, const s_job_t *j)
{
    if (r && cJSON_GetObjectItemCaseSensitive(r, "timings"))
        return; /* added already (a sensitivity RESULT, to measure its size) */
    cJSON *t = r ? cJSON_AddObjectToObject(r, "timings") : NULL;
    if (!t)
        return;
    cJSON_AddNumberToObject(t, "fetch_ms", (double)j->fetch_ms);
    if (j->load_ms >= 0)
        cJSON_AddNumberToObject(t, "load_ms", (double)j->load_ms);
    else
        cJSON_AddNullToObject(t, "load_ms");
    if (j->ran)
        cJSON_AddNumberToObject(t, "run_ms", (double)j->run_ms);
    else
        cJSON_AddNullToObject(t, "run_ms");
}

/* ---- jobs ------------------------------------------------------------------------------ */

static void s_job_free(s_job_t *j)
{
    if (!j)
        return;
    bs_cache_discard(&j->dl);
    for (int i = 0; i < j->n_files; i++)
        bs_free(j->files[i].path);
    cJSON_Delete(j->msg);
    cJSON_Delete(j->profile);
    bs_sens_result_free(&j->sens_out);
    pthread_mutex_destroy(&j->mu);
    bs_free(j);
}

/* Ends the active job during its fetch with an error RESULT. */
static void s_job_fail(s_agent_t *a, int code, const char *message)
{
    s_job_t *j = a->job;
    j->fetch_ms = bs_now_ms() - j->t_start_ms;
    BS_WARN("agent", "job %lld: failed: %s: %s", (long long)j->id, bs_err_name(code), message);
    cJSON *r = s_result_error(j->id, code, message);
    s_add_timings(r, j);
    s_send_result(a, r);
    a->job = NULL;
    s_job_free(j);
}

static void s_send_fetch(s_agent_t *a, uint64_t now)
{
    s_job_t *j = a->job;
    uint64_t size = bs_cache_dl_size(j->dl);
    j->asked_offset = bs_cache_dl_received(j->dl);
    uint64_t left = size - j->asked_offset;
    j->asked_len = left < BS_PROTO_CHUNK_SIZE ? (size_t)left : BS_PROTO_CHUNK_SIZE;
    j->fetch_sent_ms = now;
    j->fetch_tries++;
    cJSON *m = bs_msg_new(BS_MSG_FETCH);
    if (m && (!cJSON_AddStringToObject(m, "sha256", bs_cache_dl_sha(j->dl)) ||
              !cJSON_AddNumberToObject(m, "offset", (double)j->asked_offset) ||
              !cJSON_AddNumberToObject(m, "length", (double)j->asked_len))) {
        cJSON_Delete(m);
        m = NULL;
    }
    if (a->state == S_SESSION)
        s_send(a, m);
    else
        cJSON_Delete(m); /* re-sent after WELCOME */
}

static void *s_worker(void *arg)
{
    s_job_t *j = arg;
    uint64_t t0 = bs_now_ms();
    bs_metrics_init(&j->metrics);
    if (j->sens)
        j->rc = j->sens_fn(&j->spec, &j->sens_out, &j->err);
    else
        j->rc = j->ops->run(&j->spec, &j->metrics, &j->err);
    if (j->rc != 0 && j->err.code == 0)
        bs_err_set(&j->err, j->rc, "%s", bs_strerror(j->rc));
    j->run_ms = bs_now_ms() - t0;
    pthread_mutex_lock(&j->mu);
    if (j->orphaned) {
        pthread_mutex_unlock(&j->mu);
        s_job_free(j);
        return NULL;
    }
    char c = 1;
    ssize_t w = write(j->done_fd, &c, 1);
    (void)w; /* a full pipe already holds a wake-up */
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

/* All files are in the cache: start the backend on a worker thread. */
static void s_job_start(s_agent_t *a)
{
    s_job_t *j = a->job;
    j->fetch_ms = bs_now_ms() - j->t_start_ms;
    const cJSON *m = j->msg;
    j->spec.assignment = s_str(m, "assignment");
    j->spec.measure = cJSON_GetObjectItemCaseSensitive(m, "measure");
    j->spec.data = cJSON_GetObjectItemCaseSensitive(m, "data");
    /* The campaign's measure.threads, else the agent's --threads. */
    int64_t threads = s_int(j->spec.measure, "threads", a->opts->threads);
    j->spec.threads = threads >= 1 && threads <= 1024 ? (int)threads : 1;
    j->spec.cancel = &j->cancel;
    j->spec.load_ms = &j->load_ms;
    j->spec.profile = &j->profile;
    j->spec.precisions = j->n_precs ? j->precs : NULL;
    j->spec.n_precisions = j->n_precs;
    j->spec.sensors = a->sensors;
    for (int i = 0; i < j->n_files; i++) {
        const char *role = j->files[i].role, *path = j->files[i].path;
        if (!strcmp(role, "model"))
            j->spec.model_path = path;
        else if (!strcmp(role, "eval_images"))
            j->spec.eval_images = path;
        else if (!strcmp(role, "eval_labels"))
            j->spec.eval_labels = path;
        else if (!strcmp(role, "calib_images"))
            j->spec.calib_images = path;
        else
            BS_DEBUG("agent", "job %lld: file role '%s' is not used by backends", (long long)j->id,
                     role);
    }
    j->done_fd = a->pipe_wr;
    BS_DEBUG("agent", "job %lld: files ready in %llu ms; running backend %s", (long long)j->id,
             (unsigned long long)j->fetch_ms, j->ops->name);
    int rc = pthread_create(&j->thread, NULL, s_worker, j);
    if (rc != 0) {
        char msg[128];
        snprintf(msg, sizeof msg, "cannot start a worker thread: %s", strerror(rc));
        s_job_fail(a, BS_EBACKEND, msg);
        return;
    }
    j->running = 1;
}

/* Moves the active job on: skips files already verified in the cache, starts the download
 * of the next missing one, or starts the backend when every file is there. */
static void s_job_advance(s_agent_t *a, uint64_t now)
{
    s_job_t *j = a->job;
    bs_err_t err = {0};
    while (j->cur < j->n_files) {
        s_file_t *f = &j->files[j->cur];
        int rc = bs_cache_has_verified(a->cache, f->sha, f->size, &err);
        if (rc < 0) {
            s_job_fail(a, rc, err.msg);
            return;
        }
        if (rc == 1) {
            if ((rc = bs_cache_path(a->cache, f->sha, &f->path, &err)) != 0) {
                s_job_fail(a, rc, err.msg);
                return;
            }
            BS_DEBUG("agent", "job %lld: %s (%s) is in the cache", (long long)j->id, f->name,
                     f->role);
            j->cur++;
            continue;
        }
        if ((rc = bs_cache_begin(a->cache, f->sha, (uint64_t)f->size, &j->dl, &err)) != 0) {
            s_job_fail(a, rc, err.msg);
            return;
        }
        if (f->size == 0) { /* nothing to fetch: an empty file still has to hash right */
            if ((rc = bs_cache_finish(a->cache, &j->dl, &err)) != 0) {
                s_job_fail(a, rc, err.msg);
                return;
            }
            continue;
        }
        BS_INFO("agent", "job %lld: fetching %s (%s, %lld bytes)", (long long)j->id, f->name,
                f->role, (long long)f->size);
        j->fetch_tries = 0;
        s_send_fetch(a, now);
        return;
    }
    s_job_start(a);
}

static void s_on_job(s_agent_t *a, cJSON *msg, uint64_t now)
{
    int64_t id = s_int(msg, "job_id", -1);
    const char *backend = s_str(msg, "backend");
    if (a->job) {
        char text[128];
        snprintf(text, sizeof text, "agent is busy with job %lld", (long long)a->job->id);
        BS_WARN("agent", "job %lld refused: %s", (long long)id, text);
        s_send_result(a, s_result_error(id, BS_EBUSY, text));
        return;
    }
    const bs_backend_ops_t *ops = bs_backend_find(backend);
    if (!ops) {
        bs_buf_t b = {0};
        bs_buf_printf(&b, "no backend '%s' on this agent; it has:", backend);
        for (int i = 0; i < bs_backend_count(); i++)
            bs_buf_printf(&b, " %s", bs_backend_at(i)->name);
        BS_WARN("agent", "job %lld refused: %s", (long long)id, b.data ? b.data : "");
        s_send_result(a, s_result_error(id, BS_EUNSUPPORTED, b.data ? b.data : ""));
        bs_buf_free(&b);
        return;
    }
    const char *kind = s_str(msg, "kind");
    int sens = kind && strcmp(kind, "sensitivity") == 0;
    bs_sens_fn sens_fn = sens ? bs_backend_sensitivity(ops) : NULL;
    if (sens && !sens_fn) {
        char text[96];
        snprintf(text, sizeof text, "backend '%s' cannot run sensitivity jobs", ops->name);
        BS_WARN("agent", "job %lld refused: %s", (long long)id, text);
        s_send_result(a, s_result_error(id, BS_EUNSUPPORTED, text));
        return;
    }
    const cJSON *precs = cJSON_GetObjectItemCaseSensitive(msg, "precisions");
    if (sens && cJSON_GetArraySize(precs) > BS_SENS_MAX_PRECS) { /* distinct: cannot happen */
        s_send_result(a, s_result_error(id, BS_EPROTO, "JOB.precisions: too many"));
        return;
    }
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(msg, "files");
    if (cJSON_GetArraySize(files) > S_MAX_FILES) {
        char text[96];
        snprintf(text, sizeof text, "JOB.files: %d files, at most %d are supported",
                 cJSON_GetArraySize(files), S_MAX_FILES);
        s_send_result(a, s_result_error(id, BS_EPROTO, text));
        return;
    }
    s_job_t *j = bs_calloc(1, sizeof *j);
    if (!j) {
        s_send_result(a, s_result_error(id, BS_ENOMEM, "out of memory"));
        return;
    }
    pthread_mutex_init(&j->mu, NULL);
    atomic_init(&j->cancel, 0);
    j->id = id;
    j->msg = cJSON_Duplicate(msg, 1);
    j->ops = ops;
    j->load_ms = -1;
    j->t_start_ms = now;
    j->sens = sens;
    j->sens_fn = sens_fn;
    bs_sens_result_init(&j->sens_out);
    for (const cJSON *pr = sens && precs ? precs->child : NULL; pr; pr = pr->next)
        if (bs_prec_parse(pr->valuestring, &j->precs[j->n_precs]) == 0) /* checked by the codec */
            j->n_precs++;
    if (!j->msg) {
        s_job_free(j);
        s_send_result(a, s_result_error(id, BS_ENOMEM, "out of memory"));
        return;
    }
    const cJSON *f;
    cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(j->msg, "files"))
    {
        s_file_t *sf = &j->files[j->n_files++];
        sf->role = s_str(f, "role");
        sf->sha = s_str(f, "sha256");
        sf->name = s_str(f, "name");
        sf->size = s_int(f, "size", 0);
    }
    a->job = j;
    BS_INFO("agent", "job %lld: campaign %s, attempt %lld, backend %s, %d file(s): %s%.200s",
            (long long)id, s_str(msg, "campaign"), (long long)s_int(msg, "attempt", 0), ops->name,
            j->n_files, sens ? "sensitivity over " : "", s_str(msg, "assignment"));
    s_job_advance(a, now);
}

static void s_on_chunk(s_agent_t *a, const bs_wire_msg_t *w, uint64_t now)
{
    s_job_t *j = a->job;
    const char *sha = s_str(w->msg, "sha256");
    uint64_t offset = (uint64_t)s_int(w->msg, "offset", 0);
    uint64_t total = (uint64_t)s_int(w->msg, "total", 0);
    if (!j || !j->dl) {
        BS_DEBUG("agent", "CHUNK of %.16s... at %llu while no fetch is in progress: ignored", sha,
                 (unsigned long long)offset);
        return;
    }
    const char *want = bs_cache_dl_sha(j->dl);
    uint64_t received = bs_cache_dl_received(j->dl);
    char text[BS_ERR_MSG_MAX];
    if (strcmp(sha, want) == 0 && offset != j->asked_offset &&
        offset + w->payload_len <= received) {
        BS_DEBUG("agent", "job %lld: duplicate CHUNK at %llu ignored", (long long)j->id,
                 (unsigned long long)offset);
        return;
    }
    if (strcmp(sha, want) != 0) {
        /* A late duplicate of an earlier file's CHUNK (its FETCH was re-sent): harmless. */
        BS_DEBUG("agent", "job %lld: stale CHUNK of %.16s... ignored", (long long)j->id, sha);
        return;
    }
    if (offset != j->asked_offset) {
        snprintf(text, sizeof text,
                 "CHUNK of %s at offset %llu, but FETCH asked for %s at "
                 "offset %llu",
                 sha, (unsigned long long)offset, want, (unsigned long long)j->asked_offset);
        s_job_fail(a, BS_EPROTO, text);
        return;
    }
    if (total != bs_cache_dl_size(j->dl)) {
        snprintf(text, sizeof text, "CHUNK of %s: total %llu bytes, but the JOB says %llu", sha,
                 (unsigned long long)total, (unsigned long long)bs_cache_dl_size(j->dl));
        s_job_fail(a, BS_EPROTO, text);
        return;
    }
    if (w->payload_len == 0 || w->payload_len > j->asked_len) {
        snprintf(text, sizeof text, "CHUNK of %s at offset %llu: %zu bytes, expected 1 to %zu",
                 sha, (unsigned long long)offset, w->payload_len, j->asked_len);
        s_job_fail(a, BS_EPROTO, text);
        return;
    }
    bs_err_t err = {0};
    int rc = bs_cache_append(j->dl, offset, w->payload, w->payload_len, &err);
    if (rc) {
        s_job_fail(a, rc, err.msg);
        return;
    }
    if (bs_cache_dl_received(j->dl) < bs_cache_dl_size(j->dl)) {
        j->fetch_tries = 0;
        s_send_fetch(a, now);
        return;
    }
    char done_sha[BS_SHA256_HEX_LEN + 1];
    snprintf(done_sha, sizeof done_sha, "%s", want); /* want dies with j->dl below */
    if ((rc = bs_cache_finish(a->cache, &j->dl, &err)) != 0) {
        bs_err_prefix(&err, "%s (%s)", j->files[j->cur].name, j->files[j->cur].role);
        s_job_fail(a, rc, err.msg);
        return;
    }
    BS_DEBUG("agent", "job %lld: %s fetched and verified", (long long)j->id, done_sha);
    s_job_advance(a, now);
}

/* The RESULT of a sensitivity job that succeeded, timings included; an error RESULT when the
 * rows do not fit in one message. NULL on OOM. */
static cJSON *s_sens_result(const s_job_t *j)
{
    const bs_sens_result_t *sr = &j->sens_out;
    cJSON *r = s_result_new(j->id, 1);
    cJSON *sj = bs_sens_result_to_json(sr);
    if (!r || !sj) {
        cJSON_Delete(r);
        cJSON_Delete(sj);
        return NULL;
    }
    cJSON_AddItemToObject(r, "sensitivity", sj);
    s_add_timings(r, j);
    size_t len = 0;
    char *text = bs_msg_encode(r, &len);
    if (!text) {
        cJSON_Delete(r);
        return NULL;
    }
    bs_free(text);
    if (len > BS_PROTO_MAX_JSON) {
        char m[256];
        snprintf(m, sizeof m, "the sensitivity RESULT (%d rows) would be %zu bytes, more than "
                 "the %u-byte message limit; ask for fewer precisions", sr->n, len,
                 BS_PROTO_MAX_JSON);
        BS_WARN("agent", "job %lld: failed: %s", (long long)j->id, m);
        cJSON_Delete(r);
        return s_result_error(j->id, BS_ETOOBIG, m);
    }
    int unmeasured = 0;
    for (int i = 0; i < sr->n; i++)
        unmeasured += isnan(sr->items[i].value);
    BS_INFO("agent", "job %lld: sensitivity ok in %llu ms: %d rows (%d unmeasured), baseline "
            "%s %.4f%s", (long long)j->id, (unsigned long long)j->run_ms, sr->n, unmeasured,
            sr->metric, sr->baseline, sr->simulated ? " (simulated)" : "");
    return r;
}

/* The worker said it is done: join it and report. */
static void s_on_job_done(s_agent_t *a)
{
    char buf[16];
    while (read(a->pipe_rd, buf, sizeof buf) > 0) {
    }
    s_job_t *j = a->job;
    if (!j || !j->running)
        return;
    pthread_join(j->thread, NULL);
    j->running = 0;
    j->ran = 1;
    cJSON *r;
    if (j->rc == 0 && j->sens) {
        r = s_sens_result(j);
    } else if (j->rc == 0) {
        r = s_result_new(j->id, 1);
        cJSON *mj = bs_metrics_to_json(&j->metrics);
        if (r && mj) {
            if (j->profile) { /* the per-layer profile travels inside metrics */
                cJSON_AddItemToObject(mj, "profile", j->profile);
                j->profile = NULL;
            }
            cJSON_AddItemToObject(r, "metrics", mj);
        } else {
            cJSON_Delete(r);
            cJSON_Delete(mj);
            r = NULL;
        }
        BS_INFO("agent",
                "job %lld: ok in %llu ms: accuracy %.4f, median %.3f ms, "
                "weights %lld bytes%s",
                (long long)j->id, (unsigned long long)j->run_ms, j->metrics.accuracy,
                j->metrics.lat_median_ms, (long long)j->metrics.weight_bytes,
                j->metrics.simulated ? " (simulated)" : "");
    } else {
        r = s_result_error(j->id, j->rc, j->err.msg);
        BS_WARN("agent", "job %lld: failed: %s: %s", (long long)j->id, bs_err_name(j->rc),
                j->err.msg);
    }
    s_add_timings(r, j);
    s_send_result(a, r);
    a->job = NULL;
    s_job_free(j);
}

/* ---- session --------------------------------------------------------------------------- */

static int s_socket_open(s_agent_t *a)
{
    a->sock = zmq_socket(a->zctx, ZMQ_DEALER);
    if (!a->sock) {
        BS_ERROR("agent", "cannot create a ZeroMQ socket: %s", zmq_strerror(zmq_errno()));
        return BS_EZMQ;
    }
    int linger = 0, ivl = 100, ivl_max = 5000, immediate = 1;
    int64_t maxmsg = BS_PROTO_MAX_MSG;
    zmq_setsockopt(a->sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(a->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    zmq_setsockopt(a->sock, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl);
    zmq_setsockopt(a->sock, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof ivl_max);
    /* Queue nothing while disconnected: backoff HELLOs must not pile up and arrive all at
     * once when the searcher comes back. */
    zmq_setsockopt(a->sock, ZMQ_IMMEDIATE, &immediate, sizeof immediate);
    if (zmq_connect(a->sock, a->opts->endpoint) != 0) {
        BS_ERROR("agent", "cannot connect to '%s': %s", a->opts->endpoint,
                 zmq_strerror(zmq_errno()));
        zmq_close(a->sock);
        a->sock = NULL;
        return BS_EINVAL;
    }
    return 0;
}

/* Back to S_HELLO on a fresh socket; the first HELLO goes out after delay_ms. */
static int s_restart_session(s_agent_t *a, uint64_t now, int delay_ms)
{
    if (a->sock)
        zmq_close(a->sock);
    a->sock = NULL;
    a->state = S_HELLO;
    a->hello_backoff_ms = a->opts->hello_initial_ms > 0 ? a->opts->hello_initial_ms : 500;
    a->hello_next_ms = now + (uint64_t)delay_ms;
    return s_socket_open(a);
}

static void s_on_welcome(s_agent_t *a, const cJSON *msg, uint64_t now)
{
    a->heartbeat_ms = s_int(msg, "heartbeat_ms", 1000);
    a->liveness = s_int(msg, "liveness", 3);
    if (a->state == S_SESSION) {
        BS_DEBUG("agent", "WELCOME again (an earlier HELLO was answered): ignored");
        return;
    }
    a->state = S_SESSION;
    a->hb_next_ms = now + (uint64_t)a->heartbeat_ms;
    const char *who = s_str(msg, "searcher");
    BS_INFO("agent", "session open with searcher%s%s at %s (heartbeat %lld ms, liveness %lld)",
            who ? " " : "", who ? who : "", a->opts->endpoint, (long long)a->heartbeat_ms,
            (long long)a->liveness);
    s_flush_pending(a);
    if (a->job && a->job->dl) { /* a fetch was cut by the lost session: ask again */
        a->job->fetch_tries = 0;
        s_send_fetch(a, now);
    }
}

static void s_on_error(s_agent_t *a, const cJSON *msg, uint64_t now)
{
    const char *code = s_str(msg, "code");
    const char *text = s_str(msg, "message");
    const char *ref = s_str(msg, "ref");
    if (strcmp(code, "EHELLO") == 0) {
        BS_INFO("agent", "searcher does not know this agent (%s): saying HELLO", text);
        a->state = S_HELLO;
        a->hello_backoff_ms = a->opts->hello_initial_ms > 0 ? a->opts->hello_initial_ms : 500;
        s_send_hello(a, now);
        return;
    }
    BS_WARN("agent", "searcher refused %s: %s: %s", ref ? ref : "a message", code, text);
    if (ref && strcmp(ref, "FETCH") == 0 && a->job && a->job->dl) {
        int c = bs_err_from_name(code);
        char m[BS_ERR_MSG_MAX];
        snprintf(m, sizeof m, "FETCH of %s (%s) refused by the searcher: %s: %.300s",
                 a->job->files[a->job->cur].name, bs_cache_dl_sha(a->job->dl), code, text);
        s_job_fail(a, c < 0 ? c : BS_EPROTO, m);
    }
}

static void s_dispatch(s_agent_t *a, bs_wire_msg_t *w, uint64_t now)
{
    const cJSON *msg = w->msg;
    switch ((bs_msg_type_t)w->type) {
    case BS_MSG_WELCOME:
        s_on_welcome(a, msg, now);
        return;
    case BS_MSG_ERROR:
        s_on_error(a, msg, now);
        return;
    case BS_MSG_BYE: {
        const char *why = s_str(msg, "reason");
        BS_INFO("agent", "searcher said BYE%s%s: waiting for it to come back", why ? ": " : "",
                why ? why : "");
        int delay = a->opts->hello_initial_ms > 0 ? a->opts->hello_initial_ms : 500;
        if (s_restart_session(a, now, delay) != 0)
            BS_ERROR("agent", "cannot reopen the socket; retrying");
        return;
    }
    default:
        break;
    }
    if (a->state != S_SESSION) {
        BS_DEBUG("agent", "%s before WELCOME: ignored", bs_msg_type_name((bs_msg_type_t)w->type));
        return;
    }
    switch ((bs_msg_type_t)w->type) {
    case BS_MSG_HEARTBEAT:
        return;
    case BS_MSG_JOB:
        s_on_job(a, w->msg, now);
        return;
    case BS_MSG_CHUNK:
        s_on_chunk(a, w, now);
        return;
    default: {
        char text[96];
        snprintf(text, sizeof text, "an agent does not accept %s",
                 bs_msg_type_name((bs_msg_type_t)w->type));
        BS_WARN("agent", "searcher sent %s: ignored", bs_msg_type_name((bs_msg_type_t)w->type));
        s_send_error(a, BS_EPROTO, text, w->type);
        return;
    }
    }
}

/* Receives every waiting message. */
static void s_drain(s_agent_t *a)
{
    for (;;) {
        if (!a->sock)
            return;
        bs_wire_msg_t w;
        bs_err_t err = {0};
        int rc = bs_wire_recv(a->sock, 0, &w, &err);
        if (rc == BS_EAGAIN)
            return;
        if (rc == BS_EZMQ) {
            BS_WARN("agent", "%s", err.msg);
            bs_wire_msg_free(&w);
            return;
        }
        uint64_t now = bs_now_ms();
        a->last_rx_ms = now;
        if (rc != 0) {
            BS_WARN("agent", "undecodable message from the searcher: %s: %s", bs_err_name(rc),
                    err.msg);
            if (a->state == S_SESSION && w.type != BS_MSG_ERROR) /* never ERROR an ERROR */
                s_send_error(a, rc, err.msg, w.type);
        } else {
            BS_DEBUG("agent", "received %s", bs_msg_type_name((bs_msg_type_t)w.type));
            s_dispatch(a, &w, now);
        }
        bs_wire_msg_free(&w);
    }
}

static void s_timers(s_agent_t *a, uint64_t now)
{
    if (!a->sock) { /* reopening failed (out of file descriptors?): retry each second */
        if (now < a->hello_next_ms)
            return;
        if (s_socket_open(a) != 0) {
            a->hello_next_ms = now + 1000;
            return;
        }
    }
    if (a->state == S_HELLO) {
        if (now >= a->hello_next_ms)
            s_send_hello(a, now);
        return;
    }
    if ((int64_t)(now - a->last_rx_ms) > a->liveness * a->heartbeat_ms) {
        BS_WARN("agent", "searcher lost (silent for %llu ms): reconnecting",
                (unsigned long long)(now - a->last_rx_ms));
        if (s_restart_session(a, now, 0) != 0)
            BS_ERROR("agent", "cannot reopen the socket; retrying");
        return;
    }
    if (now >= a->hb_next_ms) {
        cJSON *hb = bs_msg_new(BS_MSG_HEARTBEAT);
        if (hb && a->job)
            cJSON_AddNumberToObject(hb, "job_id", (double)a->job->id);
        s_send(a, hb);
        a->hb_next_ms = now + (uint64_t)a->heartbeat_ms;
    }
    if (a->n_pending > 0)
        s_flush_pending(a);
    s_job_t *j = a->job;
    if (j && j->dl && now - j->fetch_sent_ms >= (uint64_t)a->fetch_timeout_ms) {
        if (j->fetch_tries >= S_FETCH_TRIES) {
            char m[BS_ERR_MSG_MAX];
            snprintf(m, sizeof m, "no CHUNK of %s (%s) after %d FETCHes %d ms apart",
                     j->files[j->cur].name, bs_cache_dl_sha(j->dl), S_FETCH_TRIES,
                     a->fetch_timeout_ms);
            s_job_fail(a, BS_ETIMEOUT, m);
        } else {
            BS_WARN("agent", "job %lld: no CHUNK for %d ms: asking again", (long long)j->id,
                    a->fetch_timeout_ms);
            s_send_fetch(a, now);
        }
    }
}

/* Milliseconds until the next deadline, capped. */
static int s_timeout(const s_agent_t *a, uint64_t now)
{
    uint64_t next = now + S_POLL_CAP_MS;
    if (a->state == S_HELLO) {
        if (a->hello_next_ms < next)
            next = a->hello_next_ms;
    } else {
        if (a->hb_next_ms < next)
            next = a->hb_next_ms;
        uint64_t dead = a->last_rx_ms + (uint64_t)(a->liveness * a->heartbeat_ms) + 1;
        if (dead < next)
            next = dead;
        if (a->job && a->job->dl) {
            uint64_t f = a->job->fetch_sent_ms + (uint64_t)a->fetch_timeout_ms;
            if (f < next)
                next = f;
        }
    }
    return next <= now ? 0 : (int)(next - now);
}

/* ---- start and stop -------------------------------------------------------------------- */

static cJSON *s_build_hello(const s_agent_t *a)
{
    cJSON *m = bs_msg_new(BS_MSG_HELLO);
    cJSON *tags = cJSON_CreateArray();
    cJSON *prec = cJSON_CreateObject();
    int ok = m && tags && prec;
    const char *t = a->opts->tags ? a->opts->tags : "";
    while (ok && *t) {
        size_t n = strcspn(t, ",");
        if (n > 0) {
            char *s = bs_strndup(t, n);
            cJSON *it = s ? cJSON_CreateString(s) : NULL;
            bs_free(s);
            ok = it && cJSON_AddItemToArray(tags, it);
        }
        t += n;
        if (*t == ',')
            t++;
    }
    static const int wbits[] = {32, 16, 8, 7, 6, 5, 4, 3, 2};
    static const int abits[] = {32, 8};
    cJSON *w = cJSON_CreateIntArray(wbits, 9), *ab = cJSON_CreateIntArray(abits, 2);
    ok = ok && w && ab;
    if (ok) {
        cJSON_AddItemToObject(prec, "weights", w);
        cJSON_AddItemToObject(prec, "activations", ab);
        w = ab = NULL;
    }
    cJSON_Delete(w);
    cJSON_Delete(ab);
    cJSON *dev = ok ? bs_device_describe() : NULL;
    cJSON *backends = ok ? bs_backend_names() : NULL;
    ok = ok && dev && backends;
    ok = ok && cJSON_AddStringToObject(m, "agent_id", a->id);
    ok = ok && cJSON_AddStringToObject(m, "name", a->name);
    ok = ok && cJSON_AddStringToObject(m, "version", BS_VERSION);
    if (ok) {
        cJSON_AddItemToObject(m, "device", dev);
        cJSON_AddItemToObject(m, "tags", tags);
        cJSON_AddItemToObject(m, "backends", backends);
        cJSON_AddItemToObject(m, "precisions", prec);
        dev = tags = backends = prec = NULL;
        cJSON *sens = cJSON_AddArrayToObject(m, "sensors");
        ok = sens != NULL;
        for (int i = 0; ok && i < bs_sensors_count(a->sensors); i++) {
            bs_sensor_info_t info; /* the readable ones: what energy can come from */
            if (bs_sensors_info(a->sensors, i, &info) == 0 && info.readable)
                ok = cJSON_AddItemToArray(sens, cJSON_CreateString(info.name));
        }
    }
    cJSON_Delete(dev);
    cJSON_Delete(tags);
    cJSON_Delete(backends);
    cJSON_Delete(prec);
    if (!ok) {
        cJSON_Delete(m);
        return NULL;
    }
    return m;
}

/* Cancels a running job and waits a little for it; detaches it if it does not finish. */
static void s_stop_job(s_agent_t *a)
{
    s_job_t *j = a->job;
    if (!j)
        return;
    a->job = NULL;
    if (!j->running) {
        BS_INFO("agent", "job %lld: abandoned while fetching (stopping)", (long long)j->id);
        s_job_free(j);
        return;
    }
    atomic_store(&j->cancel, 1);
    struct pollfd p = {a->pipe_rd, POLLIN, 0};
    uint64_t end = bs_now_ms() + S_STOP_WAIT_MS;
    uint64_t now;
    while ((now = bs_now_ms()) < end && poll(&p, 1, (int)(end - now)) == 0) {
    }
    pthread_mutex_lock(&j->mu);
    int finished = 0;
    char c;
    if (read(a->pipe_rd, &c, 1) == 1)
        finished = 1;
    else
        j->orphaned = 1;
    pthread_mutex_unlock(&j->mu);
    if (finished) {
        pthread_join(j->thread, NULL);
        BS_INFO("agent", "job %lld: canceled (stopping)", (long long)j->id);
        s_job_free(j);
    } else {
        pthread_detach(j->thread);
        BS_WARN("agent", "job %lld: backend still running; left behind (stopping)",
                (long long)j->id);
    }
}

static void s_shutdown(s_agent_t *a)
{
    s_stop_job(a);
    if (a->sock) {
        cJSON *bye = bs_msg_new(BS_MSG_BYE);
        if (bye)
            cJSON_AddStringToObject(bye, "reason", "agent stopping");
        if (a->state == S_SESSION && s_send(a, bye) == 0) {
            /* Give BYE a moment to leave; queued HELLOs otherwise go with the socket. */
            int linger = S_BYE_LINGER_MS;
            zmq_setsockopt(a->sock, ZMQ_LINGER, &linger, sizeof linger);
        } else if (a->state != S_SESSION) {
            cJSON_Delete(bye);
        }
        zmq_close(a->sock);
        a->sock = NULL;
    }
    for (int i = 0; i < a->n_pending; i++)
        cJSON_Delete(a->pending[i]);
    a->n_pending = 0;
}

int bs_agent_run(const bs_agent_opts_t *opts, volatile sig_atomic_t *stop)
{
    if (!opts || !opts->endpoint || !*opts->endpoint) {
        BS_ERROR("agent", "no searcher endpoint given (--connect tcp://HOST:PORT)");
        return BS_EINVAL;
    }
    if (sodium_init() < 0) {
        BS_ERROR("agent", "libsodium failed to initialise");
        return BS_EIO;
    }
    s_agent_t a;
    memset(&a, 0, sizeof a);
    a.opts = opts;
    a.pipe_rd = a.pipe_wr = -1;
    a.fetch_timeout_ms = opts->fetch_timeout_ms > 0 ? opts->fetch_timeout_ms : S_FETCH_TIMEOUT_MS;
    char host[256] = "agent";
    if (opts->name && *opts->name) {
        a.name = opts->name;
    } else {
        if (gethostname(host, sizeof host) != 0 || !host[0])
            snprintf(host, sizeof host, "agent");
        host[64] = '\0'; /* HELLO.name holds at most 64 bytes */
        a.name = host;
    }
    if (strlen(a.name) > 64) {
        BS_ERROR("agent", "agent name '%.70s...' is longer than 64 bytes", a.name);
        return BS_EINVAL;
    }
    char *dir = opts->cache_dir ? bs_strdup(opts->cache_dir) : bs_agent_default_cache_dir();
    if (!dir) {
        BS_ERROR("agent", "no cache directory: set --cache-dir, BITSCOUT_CACHE_DIR or HOME");
        return BS_EINVAL;
    }
    int rc, lock_fd = -1;
    bs_err_t err = {0};
    if ((rc = bs_cache_open(dir, &a.cache, &err)) != 0 ||
        (rc = s_lock_name(dir, a.name, &lock_fd, &err)) != 0 ||
        (rc = bs_agent_load_id(dir, a.name, a.id, &err)) != 0) {
        BS_ERROR("agent", "%s", err.msg);
        goto done;
    }
    if (!opts->no_sensors) {
        bs_sensor_opts_t so = {.command = opts->power_command};
        if ((rc = bs_sensors_discover(&so, &a.sensors, &err)) != 0) {
            BS_ERROR("agent", "energy sensors: %s", err.msg);
            goto done;
        }
        const char *why = NULL;
        int best = bs_sensors_best(a.sensors, &why);
        bs_sensor_info_t info;
        if (best >= 0 && bs_sensors_info(a.sensors, best, &info) == 0)
            BS_INFO("agent", "energy from %s (%s)", info.name, info.device);
        else
            BS_INFO("agent", "no energy sensor: %s (energy is stored as unknown)",
                    why ? why : "none found");
    }
    a.hello = s_build_hello(&a);
    int fds[2];
    if (!a.hello) {
        rc = BS_ENOMEM;
        BS_ERROR("agent", "out of memory building HELLO");
        goto done;
    }
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
        rc = BS_EIO;
        BS_ERROR("agent", "pipe: %s", strerror(errno));
        goto done;
    }
    a.pipe_rd = fds[0];
    a.pipe_wr = fds[1];
    a.zctx = zmq_ctx_new();
    if (!a.zctx) {
        rc = BS_EZMQ;
        BS_ERROR("agent", "cannot create a ZeroMQ context: %s", zmq_strerror(zmq_errno()));
        goto done;
    }
    if ((rc = s_restart_session(&a, bs_now_ms(), 0)) != 0)
        goto done;
    {
        cJSON *names = bs_backend_names();
        char *list = names ? cJSON_PrintUnformatted(names) : NULL;
        BS_INFO("agent", "agent %s (id %s) connecting to %s; cache %s; backends %s", a.name,
                a.id, opts->endpoint, dir, list ? list : "?");
        bs_free(list);
        cJSON_Delete(names);
    }

    while (!*stop) {
        uint64_t now = bs_now_ms();
        s_timers(&a, now);
        if (*stop)
            break;
        zmq_pollitem_t items[2] = {{a.sock, -1, ZMQ_POLLIN, 0}, {NULL, a.pipe_rd, ZMQ_POLLIN, 0}};
        if (!a.sock)
            items[0].events = 0; /* no socket for now: an fd of -1 is never ready */
        int n = zmq_poll(items, 2, s_timeout(&a, bs_now_ms()));
        if (n < 0 && zmq_errno() != EINTR) {
            BS_ERROR("agent", "zmq_poll: %s", zmq_strerror(zmq_errno()));
            s_sleep_ms(10);
        }
        if (*stop)
            break;
        s_drain(&a);
        if (n > 0 && (items[1].revents & ZMQ_POLLIN))
            s_on_job_done(&a);
    }
    BS_INFO("agent", "stopping");
    s_shutdown(&a);
    rc = 0;
done:
    if (a.sock)
        zmq_close(a.sock);
    if (a.zctx)
        zmq_ctx_term(a.zctx);
    if (a.pipe_rd >= 0)
        close(a.pipe_rd);
    if (a.pipe_wr >= 0)
        close(a.pipe_wr);
    cJSON_Delete(a.hello);
    bs_sensors_free(&a.sensors);
    bs_cache_close(&a.cache);
    if (lock_fd >= 0)
        close(lock_fd);
    bs_free(dir);
    return rc;
}

/*
 * bs_sensors.c - the sensor set, measurement windows and the self-test summary (bs_sensors.h).
 *
 * Discovery fills a set with one bs__source_t per kind found (the kinds live in
 * bs_sensor_sysfs.c, bs_sensor_nvml.c and bs_sensor_cmd.c). A window reads its source once at
 * begin, then a thread reads it every period - power sources to integrate (trapezoid between
 * consecutive CLOCK_MONOTONIC stamps, each the midpoint of its read), counters to accumulate
 * their deltas with wrap-around so no wrap goes unseen - and end stops the thread (a condition
 * variable on CLOCK_MONOTONIC wakes it at once) and reads once more, so the window is exactly
 * the span between the first and the last read. The command source instead runs a reader
 * thread that hands each line to the window; begin waits for its first reading, which is then
 * held from begin to the next reading, and the latest reading is held to end. A thread that
 * meets an error records it and stops; end reports it as the window's reason. The accumulators
 * belong to the sampling thread until it is joined, so only the error and the command's
 * samples need the window's mutex.
 */
#include "bs_sensor_internal.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bs_alloc.h"
#include "bs_log.h"
#include "bs_util.h"

struct bs_energy_window {
    bs__source_t *src; /* NULL: a "none" window */
    char none_reason[320];
    double t0;                            /* stamp of the first reading: the window's start */
    double last_t;                        /* stamp of the latest reading */
    uint64_t last_c[BS_SENSOR_MAX_PARTS]; /* counters: latest reading (counts) */
    uint64_t acc_c[BS_SENSOR_MAX_PARTS];  /* counters: counts since t0 */
    double last_w[BS_SENSOR_MAX_PARTS];   /* power: latest reading (W) */
    double acc_j[BS_SENSOR_MAX_PARTS];    /* power: joules since t0 */
    long samples;                         /* readings behind the figure */
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC; wakes the poller on stop, begin on a reading */
    int sync_ok;       /* mu and cv initialised */
    pthread_t thr;
    int has_thr;
    int stop;                 /* under mu: the poller should return */
    int err;                  /* under mu: the first error (a BS_E* code), 0 when none */
    char msg[BS_ERR_MSG_MAX]; /* under mu: its message */
    bs__cmd_run_t *cmd;       /* the command source's reader */
    int have_first;           /* under mu: the command printed its first reading */
    int started;              /* under mu: begin returned; readings now integrate */
    int closed;               /* under mu: end began; readings are ignored */
    double first_t;           /* command: stamp of the first reading after begin */
    long in_window;           /* command: readings after begin */
};

/* ---- the set ------------------------------------------------------------------------------- */

const char *bs_sensor_root(const char *override)
{
    if (override && *override)
        return override;
    const char *e = getenv("BITSCOUT_SENSOR_ROOT");
    return e && *e ? e : "/";
}

bs__source_t *bs__source_add(bs_sensor_set_t *set, int kind, const char *name)
{
    if (set->n == (int)(sizeof set->src / sizeof set->src[0]))
        return NULL;
    bs__source_t *s = bs_calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->kind = kind;
    s->name = name;
    set->src[set->n++] = s;
    return s;
}

void bs__copy(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

void bs__note(bs__source_t *src, const char *fmt, ...)
{
    size_t len = strlen(src->notes);
    if (len + 3 >= sizeof src->notes)
        return;
    if (len) {
        memcpy(src->notes + len, "; ", 3);
        len += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(src->notes + len, sizeof src->notes - len, fmt, ap);
    va_end(ap);
}

static int s_add_command(bs_sensor_set_t *set, const bs_sensor_opts_t *o)
{
    bs__source_t *src = bs__source_add(set, BS__COMMAND, "command");
    if (!src || !(src->command = bs_strdup(o->command)))
        return BS_ENOMEM;
    bs__copy(src->device, sizeof src->device, o->command);
    src->period_s = (o->period_ms ? o->period_ms : 200) / 1000.0;
    src->timeout_s = (o->command_timeout_ms ? o->command_timeout_ms : 3000) / 1000.0;
    src->readable = 1;
    src->nparts = 1;
    snprintf(src->part[0].name, sizeof src->part[0].name, "command");
    src->part[0].in_total = 1;
    snprintf(src->total_from, sizeof src->total_from, "command");
    return 0;
}

/* The order in which bs_sensors_best prefers the kinds: what the user named, then the device's
 * own whole-board rails, then the battery, the CPU package, the GPU. */
static const int s_pref[] = {BS__COMMAND, BS__INA3221, BS__IIO, BS__BATTERY, BS__RAPL, BS__NVML};

static void s_none_reason(bs_sensor_set_t *set)
{
    if (set->n == 0) {
        snprintf(set->none_reason, sizeof set->none_reason,
                 "no energy sensor found (RAPL, Jetson INA3221, battery, NVML, command) under "
                 "%.100s",
                 set->root_shown);
        return;
    }
    size_t len =
        (size_t)snprintf(set->none_reason, sizeof set->none_reason, "no readable energy sensor:");
    for (int i = 0; i < set->n && len < sizeof set->none_reason; i++) {
        int n = snprintf(set->none_reason + len, sizeof set->none_reason - len, "%s %s: %.120s",
                         i ? ";" : "", set->src[i]->name, set->src[i]->reason);
        len += n > 0 ? (size_t)n : 0;
    }
}

int bs_sensors_discover(const bs_sensor_opts_t *opts, bs_sensor_set_t **out, bs_err_t *err)
{
    bs_sensor_opts_t o = {0};
    if (opts)
        o = *opts;
    if (!out)
        return bs_err_set(err, BS_EINVAL, "sensors: no output");
    *out = NULL;
    if (o.period_ms < 0 || o.period_ms > 600000 || o.counter_poll_ms < 0 ||
        o.counter_poll_ms > 600000 || o.command_timeout_ms < 0 || o.command_timeout_ms > 600000)
        return bs_err_set(err, BS_EINVAL,
                          "sensors: period_ms, counter_poll_ms and command_timeout_ms must be "
                          "0 (default) .. 600000");
    if (o.battery_sign < -1 || o.battery_sign > 1)
        return bs_err_set(err, BS_EINVAL, "sensors: battery_sign must be -1, 0 or +1, not %d",
                          o.battery_sign);
    const char *root = bs_sensor_root(o.root);
    size_t len = strlen(root);
    if (len > BS__ROOT_MAX)
        return bs_err_set(err, BS_EINVAL, "sensors: root longer than %d bytes: %.60s...",
                          BS__ROOT_MAX, root);
    bs_sensor_set_t *set = bs_calloc(1, sizeof *set);
    if (!set)
        return bs_err_set(err, BS_ENOMEM, "sensors: out of memory");
    memcpy(set->root_shown, root, len + 1);
    while (len > 0 && root[len - 1] == '/')
        len--;
    memcpy(set->root, root, len);
    set->root[len] = '\0';
    int rc = bs__discover_rapl(set, &o);
    if (rc == 0)
        rc = bs__discover_jetson(set, &o);
    if (rc == 0)
        rc = bs__discover_battery(set, &o);
    if (rc == 0)
        rc = bs__discover_nvml(set, &o);
    if (rc == 0 && o.command && *o.command)
        rc = s_add_command(set, &o);
    if (rc < 0) {
        bs_sensors_free(&set);
        return bs_err_set(err, rc, "sensors: %s during discovery", bs_strerror(rc));
    }
    s_none_reason(set);
    for (int i = 0; i < set->n; i++)
        BS_DEBUG("sensors", "%s: %s%s%s", set->src[i]->name,
                 set->src[i]->readable ? "readable" : "unreadable: ", set->src[i]->reason,
                 set->src[i]->device);
    *out = set;
    return 0;
}

void bs_sensors_free(bs_sensor_set_t **pset)
{
    if (!pset || !*pset)
        return;
    bs_sensor_set_t *set = *pset;
    *pset = NULL;
    for (int i = 0; i < set->n; i++) {
        bs_free(set->src[i]->command);
        bs_free(set->src[i]);
    }
    bs__nvml_unload(set->nvml);
    bs_free(set);
}

int bs_sensors_count(const bs_sensor_set_t *set)
{
    return set ? set->n : 0;
}

int bs_sensors_info(const bs_sensor_set_t *set, int i, bs_sensor_info_t *info)
{
    if (!set || !info || i < 0 || i >= set->n)
        return BS_EINVAL;
    const bs__source_t *s = set->src[i];
    memset(info, 0, sizeof *info);
    info->name = s->name;
    info->device = s->device;
    info->readable = s->readable;
    info->reason = s->reason;
    info->notes = s->notes;
    info->counter = s->counter;
    info->nparts = s->nparts;
    for (int k = 0; k < s->nparts; k++) {
        info->parts[k] = s->part[k].name;
        info->in_total[k] = s->part[k].in_total;
    }
    info->total_from = s->total_from;
    info->period_s = s->counter ? s->update_s : s->period_s;
    info->battery_sign = s->kind == BS__BATTERY ? s->bat_sign : 0;
    return 0;
}

int bs_sensors_find(const bs_sensor_set_t *set, const char *name)
{
    for (int i = 0; set && name && i < set->n; i++)
        if (!strcmp(set->src[i]->name, name))
            return i;
    return BS_ENOENT;
}

int bs_sensors_best(const bs_sensor_set_t *set, const char **reason)
{
    if (reason)
        *reason = set ? set->none_reason : "no sensor set";
    for (size_t k = 0; set && k < sizeof s_pref / sizeof s_pref[0]; k++)
        for (int i = 0; i < set->n; i++)
            if (set->src[i]->kind == s_pref[k] && set->src[i]->readable) {
                if (reason)
                    *reason = "";
                return i;
            }
    return BS_ENOENT;
}

/* ---- time ---------------------------------------------------------------------------------- */

static void s_sleep(double seconds)
{
    if (!(seconds > 0))
        return;
    struct timespec ts;
    ts.tv_sec = (time_t)seconds;
    ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static void s_abs(double t, struct timespec *ts)
{
    ts->tv_sec = (time_t)t;
    ts->tv_nsec = (long)((t - (double)ts->tv_sec) * 1e9);
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static volatile double s_busy_sink;

/* Keeps one CPU busy until the monotonic clock reaches `until`. */
static void s_busy(double until)
{
    double x = s_busy_sink;
    while (bs_now_s() < until)
        for (int i = 0; i < 20000; i++)
            x = x * 1.0000001 + 1e-9;
    s_busy_sink = x;
}

/* ---- battery calibration ------------------------------------------------------------------- */

int bs_sensors_calibrate(bs_sensor_set_t *set, int source, double seconds, bs_err_t *err)
{
    if (!set || source < 0 || source >= set->n)
        return bs_err_set(err, BS_EINVAL, "sensors: no source %d", source);
    bs__source_t *src = set->src[source];
    if (src->kind != BS__BATTERY)
        return 0;
    if (!src->readable)
        return bs_err_set(err, BS_EUNSUPPORTED, "battery: %s", src->reason);
    if (!(seconds > 0) || seconds > 600)
        seconds = 0.5;
    int rc = bs__battery_check(src, err);
    if (rc < 0)
        return rc;
    double sum[2] = {0, 0};
    long n[2] = {0, 0};
    double t = bs_now_s();
    for (int phase = 0; phase < 2; phase++) { /* 0: idle, 1: a busy loop on this thread */
        double until = t + seconds * 0.5 * (phase + 1);
        do {
            double raw;
            if (phase == 0)
                s_sleep(0.01);
            else
                s_busy(bs_now_s() + 0.005);
            if ((rc = bs__battery_raw(src, &raw, err)) < 0)
                return rc;
            sum[phase] += raw;
            n[phase]++;
        } while (bs_now_s() < until);
    }
    if ((rc = bs__battery_check(src, err)) < 0)
        return rc;
    double idle = sum[0] / (double)n[0], load = sum[1] / (double)n[1], delta = load - idle;
    double thresh = 0.05 * fabs(idle) + 1000.0; /* 1 mA (or 1 mW) plus 5 %: gauge noise */
    int by_delta = fabs(delta) > thresh ? (delta < 0 ? -1 : 1) : 0;
    int by_mean = load < 0 ? -1 : load > 0 ? 1 : 0;
    if (by_delta && by_mean && by_delta != by_mean)
        return bs_err_set(err, BS_EIO,
                          "battery: inconsistent calibration (idle %.0f, busy %.0f %s): the "
                          "reading moved against its sign under load",
                          idle, load, src->bat_power_now ? "uW" : "uA");
    int sign = by_delta ? by_delta : by_mean;
    if (!sign)
        return bs_err_set(err, BS_EAGAIN,
                          "battery: no current flows (%s reads 0): cannot "
                          "tell the sign",
                          src->part[0].p1);
    src->bat_sign = sign;
    BS_INFO("sensors", "battery: sign %+d (idle %.0f, busy %.0f %s, decided by %s)", sign, idle,
            load, src->bat_power_now ? "uW" : "uA", by_delta ? "the load" : "the reading's sign");
    return 0;
}

/* ---- windows ------------------------------------------------------------------------------- */

static int s_delta(const bs__source_t *src, int i, uint64_t e0, uint64_t e1, uint64_t *d,
                   bs_err_t *err)
{
    if (e1 >= e0) {
        *d = e1 - e0;
        return 0;
    }
    uint64_t max = src->part[i].max;
    if (src->kind == BS__RAPL && max && e0 <= max) { /* wrapped at max_energy_range_uj */
        *d = (max - e0) + e1;
        return 0;
    }
    return bs_err_set(err, BS_EDATA, "%s %s: counter went back from %llu to %llu%s", src->name,
                      src->part[i].name, (unsigned long long)e0, (unsigned long long)e1,
                      src->kind == BS__RAPL ? " and max_energy_range_uj is unknown"
                                            : " (driver reloaded?)");
}

/* One reading of a sysfs or NVML source, integrated into the window. */
static int s_sample(bs_energy_window_t *w, bs_err_t *err)
{
    const bs__source_t *src = w->src;
    double a = bs_now_s(), t;
    int rc;
    if (src->counter) {
        uint64_t v[BS_SENSOR_MAX_PARTS];
        rc = src->kind == BS__NVML ? bs__nvml_read(src, v, err) : bs__rapl_read(src, v, err);
        if (rc < 0)
            return rc;
        t = 0.5 * (a + bs_now_s());
        for (int i = 0; w->samples && i < src->nparts; i++) {
            uint64_t d = 0;
            if ((rc = s_delta(src, i, w->last_c[i], v[i], &d, err)) < 0)
                return rc;
            w->acc_c[i] += d;
        }
        memcpy(w->last_c, v, sizeof v);
    } else {
        double p[BS_SENSOR_MAX_PARTS];
        if ((rc = bs__read_power(src, p, err)) < 0)
            return rc;
        t = 0.5 * (a + bs_now_s());
        for (int i = 0; w->samples && i < src->nparts; i++)
            w->acc_j[i] += 0.5 * (w->last_w[i] + p[i]) * (t - w->last_t);
        memcpy(w->last_w, p, sizeof p);
    }
    if (!w->samples)
        w->t0 = t;
    w->last_t = t;
    w->samples++;
    return 0;
}

static void s_fail(bs_energy_window_t *w, int code, const char *msg)
{
    if (!w->err) {
        w->err = code;
        bs__copy(w->msg, sizeof w->msg, msg);
    }
}

static void *s_poller(void *arg)
{
    bs_energy_window_t *w = arg;
    const double period = w->src->period_s;
    pthread_mutex_lock(&w->mu);
    double next = w->t0 + period;
    while (!w->stop) {
        struct timespec ts;
        s_abs(next, &ts);
        pthread_cond_timedwait(&w->cv, &w->mu, &ts);
        if (w->stop)
            break;
        if (bs_now_s() < next)
            continue;
        pthread_mutex_unlock(&w->mu);
        bs_err_t e = {0};
        int rc = s_sample(w, &e);
        pthread_mutex_lock(&w->mu);
        if (rc < 0) {
            s_fail(w, rc, e.msg);
            break;
        }
        double now = bs_now_s();
        next += period;
        if (next <= now)
            next = now + period;
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static void s_cmd_sample(void *ud, double t, double watts)
{
    bs_energy_window_t *w = ud;
    pthread_mutex_lock(&w->mu);
    if (!w->started) {
        w->last_w[0] = watts; /* held from begin until the next reading */
        w->have_first = 1;
        pthread_cond_broadcast(&w->cv);
    } else if (!w->closed) {
        if (t < w->last_t)
            t = w->last_t;
        w->acc_j[0] += 0.5 * (w->last_w[0] + watts) * (t - w->last_t);
        w->last_w[0] = watts;
        w->last_t = t;
        if (!w->in_window++)
            w->first_t = t;
        w->samples++;
    }
    pthread_mutex_unlock(&w->mu);
}

static void s_cmd_error(void *ud, int code, const char *msg)
{
    bs_energy_window_t *w = ud;
    pthread_mutex_lock(&w->mu);
    s_fail(w, code, msg);
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void s_window_free(bs_energy_window_t *w)
{
    if (w->sync_ok) {
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
    }
    bs_free(w);
}

static int s_sync_init(bs_energy_window_t *w)
{
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0)
        return BS_EIO;
    int rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (rc == 0 && (rc = pthread_mutex_init(&w->mu, NULL)) == 0) {
        if ((rc = pthread_cond_init(&w->cv, &ca)) != 0)
            pthread_mutex_destroy(&w->mu);
    }
    pthread_condattr_destroy(&ca);
    w->sync_ok = rc == 0;
    return rc == 0 ? 0 : BS_EIO;
}

/* Stops the window's poller, if any, and joins it. */
static void s_stop(bs_energy_window_t *w)
{
    if (w->has_thr) {
        pthread_mutex_lock(&w->mu);
        w->stop = 1;
        pthread_cond_broadcast(&w->cv);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->thr, NULL);
        w->has_thr = 0;
    }
    if (w->cmd) {
        pthread_mutex_lock(&w->mu);
        w->closed = 1;
        pthread_mutex_unlock(&w->mu);
        bs__cmd_stop(&w->cmd);
    }
}

static int s_begin_command(bs_energy_window_t *w, bs_err_t *err)
{
    bs__cmd_sink_t sink = {s_cmd_sample, s_cmd_error, w};
    int rc = bs__cmd_start(w->src, &sink, &w->cmd, err);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&w->mu);
    double deadline = bs_now_s() + w->src->timeout_s + 1.0; /* the reader times out first */
    while (!w->have_first && !w->err && bs_now_s() < deadline) {
        struct timespec ts;
        s_abs(deadline, &ts);
        pthread_cond_timedwait(&w->cv, &w->mu, &ts);
    }
    if (!w->have_first) {
        int code = w->err ? w->err : BS_ETIMEOUT;
        char msg[BS_ERR_MSG_MAX];
        bs__copy(msg, sizeof msg, w->err ? w->msg : "command: no first reading");
        pthread_mutex_unlock(&w->mu);
        bs__cmd_stop(&w->cmd);
        return bs_err_set(err, code, "%s", msg);
    }
    w->started = 1;
    w->t0 = w->last_t = bs_now_s();
    w->samples = 1;
    pthread_mutex_unlock(&w->mu);
    return 0;
}

int bs_energy_begin(bs_sensor_set_t *set, int source, bs_energy_window_t **out, bs_err_t *err)
{
    if (!out)
        return bs_err_set(err, BS_EINVAL, "sensors: no output window");
    *out = NULL;
    if (!set)
        return bs_err_set(err, BS_EINVAL, "sensors: no sensor set");
    const char *why = NULL;
    if (source == BS_SENSOR_BEST && (source = bs_sensors_best(set, &why)) < 0) {
        bs_energy_window_t *w = bs_calloc(1, sizeof *w);
        if (!w)
            return bs_err_set(err, BS_ENOMEM, "sensors: out of memory");
        bs__copy(w->none_reason, sizeof w->none_reason, why);
        w->t0 = bs_now_s();
        *out = w;
        return 0;
    }
    if (source < 0 || source >= set->n)
        return bs_err_set(err, BS_EINVAL, "sensors: no source %d (the set has %d)", source,
                          set->n);
    bs__source_t *src = set->src[source];
    if (!src->readable)
        return bs_err_set(err, BS_EUNSUPPORTED, "%s: %s", src->name, src->reason);
    int rc;
    if (src->kind == BS__BATTERY && src->bat_sign == 0 &&
        (rc = bs_sensors_calibrate(set, source, 0.5, err)) < 0)
        return rc;
    bs_energy_window_t *w = bs_calloc(1, sizeof *w);
    if (!w)
        return bs_err_set(err, BS_ENOMEM, "sensors: out of memory");
    w->src = src;
    if (s_sync_init(w) < 0) {
        s_window_free(w);
        return bs_err_set(err, BS_EIO, "sensors: cannot create a mutex");
    }
    if (src->kind == BS__COMMAND) {
        if ((rc = s_begin_command(w, err)) < 0) {
            s_window_free(w);
            return rc;
        }
        *out = w;
        return 0;
    }
    if ((rc = s_sample(w, err)) < 0) {
        s_window_free(w);
        return rc;
    }
    if ((rc = pthread_create(&w->thr, NULL, s_poller, w)) != 0) {
        s_window_free(w);
        return bs_err_set(err, BS_EIO, "sensors: cannot start the sampling thread: %s",
                          strerror(rc));
    }
    w->has_thr = 1;
    *out = w;
    return 0;
}

static void s_result_init(bs_energy_result_t *r)
{
    memset(r, 0, sizeof *r);
    r->joules = r->watts = r->idle_watts = r->dynamic_joules = NAN;
    snprintf(r->source, sizeof r->source, "none");
}

int bs_energy_end(bs_energy_window_t **pw, bs_energy_result_t *res)
{
    bs_energy_result_t scratch;
    if (!res)
        res = &scratch;
    s_result_init(res);
    if (!pw || !*pw) {
        snprintf(res->reason, sizeof res->reason, "no window to end");
        return BS_EINVAL;
    }
    bs_energy_window_t *w = *pw;
    *pw = NULL;
    double t_end = bs_now_s();
    const bs__source_t *src = w->src;
    if (!src) {
        res->seconds = t_end - w->t0;
        bs__copy(res->reason, sizeof res->reason, w->none_reason);
        s_window_free(w);
        return BS_EUNSUPPORTED;
    }
    if (w->cmd) { /* readings from now on are past the window */
        pthread_mutex_lock(&w->mu);
        w->closed = 1;
        t_end = bs_now_s();
        pthread_mutex_unlock(&w->mu);
    }
    s_stop(w);
    double period = src->counter ? src->update_s : src->period_s;
    if (src->kind == BS__COMMAND) {
        if (!w->err && t_end > w->last_t)
            w->acc_j[0] += w->last_w[0] * (t_end - w->last_t); /* hold the latest reading */
        if (w->in_window >= 2)
            period = (w->last_t - w->first_t) / (double)(w->in_window - 1);
    } else if (!w->err) {
        bs_err_t e = {0};
        int rc = s_sample(w, &e);
        if (rc < 0)
            s_fail(w, rc, e.msg);
        else
            t_end = w->last_t;
    }
    bs__copy(res->source, sizeof res->source, src->name);
    bs__copy(res->device, sizeof res->device, src->device);
    bs__copy(res->total_from, sizeof res->total_from, src->total_from);
    res->seconds = t_end - w->t0;
    res->samples = w->samples;
    res->period_s = period;
    res->min_seconds = 10.0 * period;
    res->too_short = res->seconds < res->min_seconds;
    res->nparts = src->nparts;
    double total = 0.0;
    for (int i = 0; i < src->nparts; i++) {
        bs__copy(res->parts[i].name, sizeof res->parts[i].name, src->part[i].name);
        double j = src->counter ? (double)w->acc_c[i] * src->unit_j : w->acc_j[i];
        res->parts[i].joules = w->err ? NAN : j;
        if (src->part[i].in_total)
            total += j;
    }
    int code = w->err;
    if (code) {
        bs__copy(res->reason, sizeof res->reason, w->msg);
    } else {
        res->ok = 1;
        res->joules = total;
        res->watts = res->seconds > 0 ? total / res->seconds : NAN;
    }
    s_window_free(w);
    return code;
}

void bs_energy_abort(bs_energy_window_t **pw)
{
    if (!pw || !*pw)
        return;
    bs_energy_window_t *w = *pw;
    *pw = NULL;
    if (w->src)
        s_stop(w);
    s_window_free(w);
}

int bs_energy_idle(bs_sensor_set_t *set, int source, double seconds, double *watts, bs_err_t *err)
{
    if (watts)
        *watts = NAN;
    if (!watts || !(seconds > 0) || seconds > 3600)
        return bs_err_set(err, BS_EINVAL, "sensors: idle needs 0 < seconds <= 3600");
    bs_energy_window_t *w;
    int rc = bs_energy_begin(set, source, &w, err);
    if (rc < 0)
        return rc;
    s_sleep(seconds);
    bs_energy_result_t r;
    if ((rc = bs_energy_end(&w, &r)) < 0)
        return bs_err_set(err, rc, "%s", r.reason);
    *watts = r.watts;
    return 0;
}

void bs_energy_apply_idle(bs_energy_result_t *res, double idle_watts)
{
    res->idle_watts = idle_watts;
    res->dynamic_joules = res->ok && isfinite(idle_watts) && isfinite(res->joules)
                              ? res->joules - idle_watts * res->seconds
                              : NAN;
}

/* ---- JSON ---------------------------------------------------------------------------------- */

static int s_num(cJSON *o, const char *key, double v)
{
    return (isfinite(v) ? cJSON_AddNumberToObject(o, key, v) : cJSON_AddNullToObject(o, key)) !=
           NULL;
}

cJSON *bs_energy_result_json(const bs_energy_result_t *r)
{
    cJSON *o = cJSON_CreateObject();
    if (!o || !r)
        goto fail;
    cJSON *parts = NULL;
    int ok = cJSON_AddStringToObject(o, "source", r->source) != NULL &&
             s_num(o, "joules", r->joules) && s_num(o, "seconds", r->seconds) &&
             s_num(o, "watts", r->watts) && s_num(o, "samples", (double)r->samples) &&
             s_num(o, "period_s", r->period_s) &&
             cJSON_AddBoolToObject(o, "too_short", r->too_short) != NULL &&
             cJSON_AddStringToObject(o, "total_from", r->total_from) != NULL &&
             (parts = cJSON_AddObjectToObject(o, "parts")) != NULL;
    for (int i = 0; ok && i < r->nparts; i++)
        ok = s_num(parts, r->parts[i].name, r->parts[i].joules);
    ok = ok && s_num(o, "idle_watts", r->idle_watts) &&
         s_num(o, "dynamic_joules", r->dynamic_joules) &&
         cJSON_AddStringToObject(o, "reason", r->reason) != NULL;
    if (ok)
        return o;
fail:
    cJSON_Delete(o);
    return NULL;
}

static cJSON *s_describe_source(bs_sensor_set_t *set, int i, int reading_ms)
{
    bs_sensor_info_t in;
    bs_sensors_info(set, i, &in);
    cJSON *o = cJSON_CreateObject(), *parts = NULL;
    int ok = o && cJSON_AddStringToObject(o, "name", in.name) &&
             cJSON_AddStringToObject(o, "device", in.device) &&
             cJSON_AddBoolToObject(o, "readable", in.readable) &&
             cJSON_AddStringToObject(o, "reason", in.reason) &&
             cJSON_AddStringToObject(o, "notes", in.notes) &&
             cJSON_AddStringToObject(o, "kind", in.counter ? "counter" : "power") &&
             (parts = cJSON_AddArrayToObject(o, "parts")) != NULL;
    for (int k = 0; ok && k < in.nparts; k++) {
        cJSON *p = cJSON_CreateObject();
        if (!p || !cJSON_AddItemToArray(parts, p)) {
            cJSON_Delete(p);
            ok = 0;
            break;
        }
        ok = cJSON_AddStringToObject(p, "name", in.parts[k]) &&
             cJSON_AddBoolToObject(p, "total", in.in_total[k]);
    }
    ok = ok && cJSON_AddStringToObject(o, "total_from", in.total_from) &&
         s_num(o, "period_ms", in.period_s * 1000.0);
    if (ok && set->src[i]->kind == BS__BATTERY)
        ok = cJSON_AddNumberToObject(o, "battery_sign", in.battery_sign) != NULL;
    if (ok && in.readable && reading_ms > 0) {
        bs_err_t e = {0};
        bs_energy_window_t *w;
        bs_energy_result_t r;
        int rc = bs_energy_begin(set, i, &w, &e);
        if (rc == 0) {
            s_sleep(reading_ms / 1000.0);
            rc = bs_energy_end(&w, &r);
            bs__copy(e.msg, sizeof e.msg, r.reason);
        }
        if (rc < 0) {
            ok = cJSON_AddStringToObject(o, "reading_error", e.msg) != NULL;
        } else {
            cJSON *rd = cJSON_AddObjectToObject(o, "reading");
            ok = rd && s_num(rd, "watts", r.watts) && s_num(rd, "joules", r.joules) &&
                 s_num(rd, "seconds", r.seconds) && s_num(rd, "samples", (double)r.samples) &&
                 cJSON_AddBoolToObject(rd, "too_short", r.too_short);
        }
        if (ok && set->src[i]->kind == BS__BATTERY) /* calibration may have set it */
            cJSON_ReplaceItemInObjectCaseSensitive(o, "battery_sign",
                                                   cJSON_CreateNumber(set->src[i]->bat_sign));
    }
    if (ok)
        return o;
    cJSON_Delete(o);
    return NULL;
}

int bs_sensors_describe(bs_sensor_set_t *set, int reading_ms, cJSON **out, bs_err_t *err)
{
    if (!out)
        return bs_err_set(err, BS_EINVAL, "sensors: no output");
    *out = NULL;
    if (!set || reading_ms < 0 || reading_ms > 60000)
        return bs_err_set(err, BS_EINVAL, "sensors: describe needs a set and 0..60000 ms");
    const char *why;
    int best = bs_sensors_best(set, &why);
    cJSON *o = cJSON_CreateObject(), *arr = NULL;
    int ok = o && cJSON_AddStringToObject(o, "root", set->root_shown) &&
             cJSON_AddStringToObject(o, "best", best >= 0 ? set->src[best]->name : "none") &&
             (best >= 0 || cJSON_AddStringToObject(o, "reason", why)) &&
             (arr = cJSON_AddArrayToObject(o, "sources")) != NULL;
    for (int i = 0; ok && i < set->n; i++) {
        cJSON *s = s_describe_source(set, i, reading_ms);
        ok = s && cJSON_AddItemToArray(arr, s);
        if (!ok)
            cJSON_Delete(s);
    }
    if (!ok) {
        cJSON_Delete(o);
        return bs_err_set(err, BS_ENOMEM, "sensors: out of memory describing the sensors");
    }
    *out = o;
    return 0;
}

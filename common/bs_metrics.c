/*
 * bs_metrics.c - the metric table, by-name access and the JSON codec for bs_metrics_t.
 */
#include "bs_metrics.h"

#include <math.h>
#include <string.h>

void bs_metrics_init(bs_metrics_t *m)
{
    memset(m, 0, sizeof *m);
    m->accuracy = NAN;
    m->lat_min_ms = m->lat_median_ms = m->lat_mean_ms = NAN;
    m->lat_p90_ms = m->lat_p99_ms = m->lat_std_ms = m->lat_cv = NAN;
    m->weight_bytes = m->arena_bytes = m->peak_rss_bytes = -1;
    m->energy_j = NAN;
    strcpy(m->energy_source, "none");
    m->unstable = m->throttled = -1;
    m->energy_dynamic_j = m->energy_idle_w = m->energy_window_s = NAN;
    m->temp_before_c = m->temp_after_c = m->freq_before_mhz = m->freq_after_mhz = NAN;
}

int bs_metric_default_goal(const char *name)
{
#define BS__GOAL(n, goal, desc)                                                                  \
    if (name && strcmp(name, #n) == 0)                                                           \
        return goal;
    BS_METRIC_MAP(BS__GOAL)
#undef BS__GOAL
    return 0;
}

int bs_metric_name_valid(const char *name)
{
    return bs_metric_default_goal(name) != 0;
}

const char *bs_metric_names_list(void)
{
#define BS__NAME(n, goal, desc) #n ", "
    static const char list[] = BS_METRIC_MAP(BS__NAME);
#undef BS__NAME
    static char trimmed[sizeof list];
    if (!trimmed[0]) {
        memcpy(trimmed, list, sizeof list);
        trimmed[sizeof list - 3] = '\0'; /* drop the last ", " */
    }
    return trimmed;
}

static int s_dbl(double v, double *out)
{
    if (isnan(v))
        return BS_ENOENT;
    *out = v;
    return 0;
}

static int s_i64(int64_t v, double *out)
{
    if (v < 0)
        return BS_ENOENT;
    *out = (double)v;
    return 0;
}

int bs_metrics_get(const bs_metrics_t *m, const char *name, double *out)
{
    if (!name)
        return BS_EINVAL;
    if (!strcmp(name, "accuracy"))
        return s_dbl(m->accuracy, out);
    if (!strcmp(name, "latency_min_ms"))
        return s_dbl(m->lat_min_ms, out);
    if (!strcmp(name, "latency_median_ms"))
        return s_dbl(m->lat_median_ms, out);
    if (!strcmp(name, "latency_mean_ms"))
        return s_dbl(m->lat_mean_ms, out);
    if (!strcmp(name, "latency_p90_ms"))
        return s_dbl(m->lat_p90_ms, out);
    if (!strcmp(name, "latency_p99_ms"))
        return s_dbl(m->lat_p99_ms, out);
    if (!strcmp(name, "weight_bytes"))
        return s_i64(m->weight_bytes, out);
    if (!strcmp(name, "arena_bytes"))
        return s_i64(m->arena_bytes, out);
    if (!strcmp(name, "peak_rss_bytes"))
        return s_i64(m->peak_rss_bytes, out);
    if (!strcmp(name, "energy_j"))
        return s_dbl(m->energy_j, out);
    return BS_EINVAL;
}

static int s_add_num(cJSON *o, const char *k, double v)
{
    cJSON *item = isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull();
    return item && cJSON_AddItemToObject(o, k, item) ? 0 : -1;
}

static int s_add_i64(cJSON *o, const char *k, int64_t v)
{
    return s_add_num(o, k, v < 0 ? NAN : (double)v);
}

cJSON *bs_metrics_to_json(const bs_metrics_t *m)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *lat = cJSON_CreateObject();
    cJSON *en = cJSON_CreateObject();
    int bad = !o || !lat || !en;
    bad = bad || s_add_num(o, "accuracy", m->accuracy);
    bad = bad || !cJSON_AddStringToObject(o, "metric", m->metric);
    bad = bad || s_add_num(lat, "min", m->lat_min_ms) || s_add_num(lat, "median", m->lat_median_ms);
    bad = bad || s_add_num(lat, "mean", m->lat_mean_ms) || s_add_num(lat, "p90", m->lat_p90_ms);
    bad = bad || s_add_num(lat, "p99", m->lat_p99_ms) || s_add_num(lat, "std", m->lat_std_ms);
    bad = bad || s_add_num(lat, "cv", m->lat_cv) || s_add_num(lat, "runs", (double)m->lat_runs);
    if (!bad) {
        cJSON_AddItemToObject(o, "latency_ms", lat);
        lat = NULL;
    }
    bad = bad || s_add_i64(o, "weight_bytes", m->weight_bytes);
    bad = bad || s_add_i64(o, "arena_bytes", m->arena_bytes);
    bad = bad || s_add_i64(o, "peak_rss_bytes", m->peak_rss_bytes);
    bad = bad || s_add_num(en, "joules", m->energy_j);
    bad = bad || !cJSON_AddStringToObject(en, "source", m->energy_source);
    bad = bad || !cJSON_AddStringToObject(en, "reason", m->energy_reason);
    bad = bad || s_add_num(en, "dynamic_joules", m->energy_dynamic_j);
    bad = bad || s_add_num(en, "idle_watts", m->energy_idle_w);
    bad = bad || s_add_num(en, "window_s", m->energy_window_s);
    bad = bad || s_add_num(en, "samples", (double)m->energy_samples);
    bad = bad || s_add_num(en, "runs", (double)m->energy_runs);
    if (!bad) {
        cJSON_AddItemToObject(o, "energy", en);
        en = NULL;
    }
    bad = bad || !cJSON_AddBoolToObject(o, "simulated", m->simulated);
    bad = bad || !cJSON_AddStringToObject(o, "backend", m->backend);
    cJSON *run = bad ? NULL : cJSON_AddObjectToObject(o, "run");
    bad = bad || !run;
    bad = bad || s_add_num(run, "threads", m->threads > 0 ? m->threads : NAN);
    bad = bad || !cJSON_AddStringToObject(run, "cpus", m->cpus);
    bad = bad || s_add_num(run, "remeasures", m->remeasures);
    bad = bad || !(m->unstable < 0 ? cJSON_AddNullToObject(run, "unstable")
                                   : cJSON_AddBoolToObject(run, "unstable", m->unstable));
    bad = bad || s_add_num(run, "temp_before_c", m->temp_before_c);
    bad = bad || s_add_num(run, "temp_after_c", m->temp_after_c);
    bad = bad || s_add_num(run, "freq_before_mhz", m->freq_before_mhz);
    bad = bad || s_add_num(run, "freq_after_mhz", m->freq_after_mhz);
    bad = bad || !(m->throttled < 0 ? cJSON_AddNullToObject(run, "throttled")
                                    : cJSON_AddBoolToObject(run, "throttled", m->throttled));
    bad = bad || !cJSON_AddStringToObject(run, "agent_version", m->agent_version);
    bad = bad || !cJSON_AddStringToObject(run, "engine", m->engine);
    cJSON_Delete(lat);
    cJSON_Delete(en);
    if (bad) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* Reads an optional number field: absent or null -> NAN; wrong type -> error. */
static int s_get_num(const cJSON *o, const char *k, const char *path, double lo, double hi,
                     double *out, bs_err_t *err)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);
    *out = NAN;
    if (!it || cJSON_IsNull(it))
        return 0;
    if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble))
        return bs_err_set(err, BS_EPROTO, "metrics.%s%s: expected a number or null", path, k);
    if (it->valuedouble < lo || it->valuedouble > hi)
        return bs_err_set(err, BS_EPROTO, "metrics.%s%s: %g is outside [%g, %g]", path, k,
                          it->valuedouble, lo, hi);
    *out = it->valuedouble;
    return 0;
}

static int s_get_str(const cJSON *o, const char *k, const char *path, char *out, size_t cap,
                     bs_err_t *err)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!it || cJSON_IsNull(it))
        return 0;
    if (!cJSON_IsString(it) || strlen(it->valuestring) >= cap)
        return bs_err_set(err, BS_EPROTO, "metrics.%s%s: expected a string under %zu bytes",
                          path, k, cap);
    strcpy(out, it->valuestring);
    return 0;
}

int bs_metrics_from_json(const cJSON *obj, bs_metrics_t *m, bs_err_t *err)
{
    const double big = 1e18;
    double v;
    int rc;
    bs_metrics_init(m);
    if (!cJSON_IsObject(obj))
        return bs_err_set(err, BS_EPROTO, "metrics: expected an object");
    if ((rc = s_get_num(obj, "accuracy", "", 0.0, 1.0, &m->accuracy, err)))
        return rc;
    if ((rc = s_get_str(obj, "metric", "", m->metric, sizeof m->metric, err)))
        return rc;
    const cJSON *lat = cJSON_GetObjectItemCaseSensitive(obj, "latency_ms");
    if (lat && !cJSON_IsNull(lat)) {
        if (!cJSON_IsObject(lat))
            return bs_err_set(err, BS_EPROTO, "metrics.latency_ms: expected an object");
        struct {
            const char *k;
            double *dst;
        } f[] = {{"min", &m->lat_min_ms}, {"median", &m->lat_median_ms},
                 {"mean", &m->lat_mean_ms}, {"p90", &m->lat_p90_ms},
                 {"p99", &m->lat_p99_ms}, {"std", &m->lat_std_ms}, {"cv", &m->lat_cv}};
        for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
            if ((rc = s_get_num(lat, f[i].k, "latency_ms.", 0.0, big, f[i].dst, err)))
                return rc;
        if ((rc = s_get_num(lat, "runs", "latency_ms.", 0.0, 1e12, &v, err)))
            return rc;
        m->lat_runs = isnan(v) ? 0 : (int64_t)v;
    }
    struct {
        const char *k;
        int64_t *dst;
    } b[] = {{"weight_bytes", &m->weight_bytes},
             {"arena_bytes", &m->arena_bytes},
             {"peak_rss_bytes", &m->peak_rss_bytes}};
    for (size_t i = 0; i < sizeof b / sizeof b[0]; i++) {
        if ((rc = s_get_num(obj, b[i].k, "", 0.0, big, &v, err)))
            return rc;
        *b[i].dst = isnan(v) ? -1 : (int64_t)v;
    }
    const cJSON *en = cJSON_GetObjectItemCaseSensitive(obj, "energy");
    if (en && !cJSON_IsNull(en)) {
        if (!cJSON_IsObject(en))
            return bs_err_set(err, BS_EPROTO, "metrics.energy: expected an object");
        if ((rc = s_get_num(en, "joules", "energy.", 0.0, big, &m->energy_j, err)))
            return rc;
        if ((rc = s_get_str(en, "source", "energy.", m->energy_source, sizeof m->energy_source,
                            err)))
            return rc;
        if ((rc = s_get_str(en, "reason", "energy.", m->energy_reason, sizeof m->energy_reason,
                            err)))
            return rc;
        if ((rc = s_get_num(en, "dynamic_joules", "energy.", -big, big, &m->energy_dynamic_j,
                            err)) ||
            (rc = s_get_num(en, "idle_watts", "energy.", 0.0, 1e6, &m->energy_idle_w, err)) ||
            (rc = s_get_num(en, "window_s", "energy.", 0.0, 1e6, &m->energy_window_s, err)))
            return rc;
        if ((rc = s_get_num(en, "samples", "energy.", 0.0, 1e12, &v, err)))
            return rc;
        m->energy_samples = isnan(v) ? 0 : (int64_t)v;
        if ((rc = s_get_num(en, "runs", "energy.", 0.0, 1e12, &v, err)))
            return rc;
        m->energy_runs = isnan(v) ? 0 : (int64_t)v;
    }
    if (!isnan(m->energy_j) && strcmp(m->energy_source, "none") == 0)
        return bs_err_set(err, BS_EPROTO, "metrics.energy: a value needs a source other than "
                                          "\"none\"");
    const cJSON *sim = cJSON_GetObjectItemCaseSensitive(obj, "simulated");
    if (sim && !cJSON_IsBool(sim))
        return bs_err_set(err, BS_EPROTO, "metrics.simulated: expected true or false");
    m->simulated = cJSON_IsTrue(sim);
    if ((rc = s_get_str(obj, "backend", "", m->backend, sizeof m->backend, err)))
        return rc;
    /* the per-layer profile (optional): checked here, kept only in the stored RESULT */
    const cJSON *prof = cJSON_GetObjectItemCaseSensitive(obj, "profile");
    if (prof && !cJSON_IsNull(prof)) {
        const cJSON *layers = cJSON_GetObjectItemCaseSensitive(prof, "layers"), *e;
        if (!cJSON_IsObject(prof) || !cJSON_IsArray(layers))
            return bs_err_set(err, BS_EPROTO,
                              "metrics.profile: expected an object with a \"layers\" array");
        if ((rc = s_get_num(prof, "runs", "profile.", 1, 1e6, &v, err)) ||
            (rc = s_get_num(prof, "total_ms", "profile.", 0, big, &v, err)) ||
            (rc = s_get_num(prof, "other_ms", "profile.", 0, big, &v, err)))
            return rc;
        int i = 0;
        cJSON_ArrayForEach(e, layers)
        {
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(e, "layer");
            const cJSON *ms = cJSON_GetObjectItemCaseSensitive(e, "ms");
            if (!cJSON_IsString(name) || !cJSON_IsNumber(ms) || !(ms->valuedouble >= 0) ||
                !isfinite(ms->valuedouble))
                return bs_err_set(err, BS_EPROTO,
                                  "metrics.profile.layers[%d]: expected {\"layer\": a name, "
                                  "\"ms\": a number >= 0, ...}",
                                  i);
            i++;
        }
    }
    const cJSON *run = cJSON_GetObjectItemCaseSensitive(obj, "run");
    if (!run || cJSON_IsNull(run))
        return 0;
    if (!cJSON_IsObject(run))
        return bs_err_set(err, BS_EPROTO, "metrics.run: expected an object");
    if ((rc = s_get_num(run, "threads", "run.", 1, 1024, &v, err)))
        return rc;
    m->threads = isnan(v) ? 0 : (int)v;
    if ((rc = s_get_num(run, "remeasures", "run.", 0, 1000, &v, err)))
        return rc;
    m->remeasures = isnan(v) ? 0 : (int)v;
    struct {
        const char *k;
        double lo, hi;
        double *dst;
    } d[] = {{"temp_before_c", -100, 300, &m->temp_before_c},
             {"temp_after_c", -100, 300, &m->temp_after_c},
             {"freq_before_mhz", 0, 1e6, &m->freq_before_mhz},
             {"freq_after_mhz", 0, 1e6, &m->freq_after_mhz}};
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++)
        if ((rc = s_get_num(run, d[i].k, "run.", d[i].lo, d[i].hi, d[i].dst, err)))
            return rc;
    struct {
        const char *k;
        int *dst;
    } f[] = {{"unstable", &m->unstable}, {"throttled", &m->throttled}};
    for (size_t i = 0; i < 2; i++) {
        const cJSON *it = cJSON_GetObjectItemCaseSensitive(run, f[i].k);
        if (it && !cJSON_IsNull(it) && !cJSON_IsBool(it))
            return bs_err_set(err, BS_EPROTO, "metrics.run.%s: expected true, false or null",
                              f[i].k);
        *f[i].dst = !it || cJSON_IsNull(it) ? -1 : cJSON_IsTrue(it);
    }
    if ((rc = s_get_str(run, "cpus", "run.", m->cpus, sizeof m->cpus, err)) ||
        (rc = s_get_str(run, "agent_version", "run.", m->agent_version, sizeof m->agent_version,
                        err)))
        return rc;
    return s_get_str(run, "engine", "run.", m->engine, sizeof m->engine, err);
}

/*
 * bs_config.c - campaign files: strict parsing and validation into a bs_config_t.
 *
 * The file is parsed by cJSON, then walked section by section (name, model, data,
 * search_space, objectives, constraints, policy, budget, measure, agents, quantization,
 * sensitivity). Every object is first checked for unknown and duplicate keys against a list of
 * the keys it may hold; then each key is read by a typed getter (s_int, s_num, s_str, s_enum,
 * s_path) that knows the key path ("objectives[1].metric"), the range and the default, so
 * every error comes out in one shape:
 *   <file>: <key.path>: expected <what was expected>; got <what was found>
 *   <file>: <key.path>: required key missing (<what is expected>)
 * and JSON syntax errors carry the line and column of the offending byte.
 *
 * Defaults are written into the struct, and into the JSON objects that travel to agents
 * (measure, preprocess, policy, quantization), so an agent always receives explicit values.
 * The sensitivity section's default precisions are derived from the search-space rules, so it
 * is read after them. Referenced files are resolved against the campaign file's directory and
 * must be readable regular files when the campaign is loaded. Any failure frees what was built
 * so far: the caller gets either a complete configuration or nothing.
 *
 * bs_sens_check, at the end, holds a sensitivity job's RESULT rows against the campaign (the
 * model's layers, the configured precisions) for the searcher, in the same spirit: each
 * refusal names the row and the field.
 */
#include "bs_config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bs_alloc.h"
#include "bs_metrics.h"
#include "bs_policy.h"
#include "bs_util.h"

#define S_INT53 9007199254740992LL /* 2^53: the largest integer a JSON double holds exactly */
#define S_PATH_MAX 160             /* key paths in messages; longer ones are truncated */
#define S_NAME_MAX 64              /* campaign names and agent tags */
#define S_PATTERN_MAX 256          /* search_space[i].layers */
#define S_VEC_MAX 64               /* entries of preprocess.mean / preprocess.std */

/* What a parse needs to report errors: the campaign file's name and the caller's bs_err_t. */
typedef struct s_ctx {
    const char *file;
    bs_err_t *err;
} s_ctx_t;

/* The parameter keys each policy accepts besides name and seed. Whether a name is a policy at
 * all is bs_policy_find()'s answer; a policy without a row here accepts no parameters, so a
 * new policy with parameters adds its row here as well as its ops in bs_policy.c. */
typedef struct s_policy_def {
    const char *name;
    const char *const *params; /* NULL-terminated */
} s_policy_def_t;

static const char *const s_random_params[] = {"seed_from", NULL};
static const char *const s_nsga2_params[] = {"seed_from", "population", "crossover",
                                             "mutation", "tournament", NULL};
static const char *const s_haq_params[] = {"seed_from", "warmup", "hidden", "lr_actor",
                                           "lr_critic", "batch", "replay", "noise",
                                           "noise_decay", "noise_min", "tau", "updates",
                                           "reward_scale", "fail_reward", NULL};
/* the sensitivity seeder accepts its own keys plus those of any policy it hands over to */
static const char *const s_sens_params[] = {"then", "levels", "method", "population",
                                            "crossover", "mutation", "tournament", "warmup",
                                            "hidden", "lr_actor", "lr_critic", "batch",
                                            "replay", "noise", "noise_decay", "noise_min", "tau",
                                            "updates", "reward_scale", "fail_reward", NULL};
static const s_policy_def_t s_policies[] = {
    {"random", s_random_params},
    {"nsga2", s_nsga2_params},
    {"haq", s_haq_params},
    {"sensitivity", s_sens_params},
};
#define S_N_POLICIES ((int)(sizeof s_policies / sizeof s_policies[0]))

/* ---- messages ------------------------------------------------------------------------------ */

/* Appends s to out as a JSON-ish quoted string, escaping what is not printable and cutting it
 * at 40 characters. */
static void s_quote(const char *s, char *out, size_t cap)
{
    size_t n = 0;
    int cut = 0;
    if (cap < 8) {
        if (cap)
            out[0] = '\0';
        return;
    }
    out[n++] = '"';
    for (size_t i = 0; s[i]; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (i >= 40 || n + 8 >= cap) {
            cut = 1;
            break;
        }
        if (ch == '"' || ch == '\\') {
            out[n++] = '\\';
            out[n++] = (char)ch;
        } else if (ch < 0x20 || ch == 0x7f) {
            n += (size_t)snprintf(out + n, cap - n, "\\x%02x", ch);
        } else {
            out[n++] = (char)ch;
        }
    }
    out[n++] = '"';
    if (cut && n + 4 < cap) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
}

/* What was found, for the "got ..." half of a message. */
static void s_describe(const cJSON *it, char *out, size_t cap)
{
    if (!it) {
        snprintf(out, cap, "nothing");
    } else if (cJSON_IsString(it)) {
        s_quote(it->valuestring ? it->valuestring : "", out, cap);
    } else if (cJSON_IsNumber(it)) {
        snprintf(out, cap, "%.15g", it->valuedouble);
    } else if (cJSON_IsTrue(it)) {
        snprintf(out, cap, "true");
    } else if (cJSON_IsFalse(it)) {
        snprintf(out, cap, "false");
    } else if (cJSON_IsNull(it)) {
        snprintf(out, cap, "null");
    } else if (cJSON_IsArray(it)) {
        int n = cJSON_GetArraySize(it);
        if (n == 0)
            snprintf(out, cap, "an empty array");
        else
            snprintf(out, cap, "an array of %d item%s", n, n == 1 ? "" : "s");
    } else if (cJSON_IsObject(it)) {
        snprintf(out, cap, "an object");
    } else {
        snprintf(out, cap, "an invalid value");
    }
}

/* "<file>: <path>: expected <fmt...>; got <description of it>" with code BS_ECONFIG. */
static int s_fail(s_ctx_t *c, const char *path, const cJSON *it, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int s_fail(s_ctx_t *c, const char *path, const cJSON *it, const char *fmt, ...)
{
    char expected[384];
    char got[96];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(expected, sizeof expected, fmt, ap);
    va_end(ap);
    s_describe(it, got, sizeof got);
    return bs_err_set(c->err, BS_ECONFIG, "%s: %s: expected %s; got %s", c->file, path, expected,
                      got);
}

static int s_missing(s_ctx_t *c, const char *path, const char *expected)
{
    return bs_err_set(c->err, BS_ECONFIG, "%s: %s: required key missing (%s)", c->file, path,
                      expected);
}

static int s_oom(s_ctx_t *c)
{
    return bs_err_set(c->err, BS_ENOMEM, "%s: out of memory", c->file);
}

/* out = parent.key, or key at the top level. */
static void s_join(char out[S_PATH_MAX], const char *parent, const char *key)
{
    if (parent[0])
        snprintf(out, S_PATH_MAX, "%.80s.%.70s", parent, key);
    else
        snprintf(out, S_PATH_MAX, "%.150s", key);
}

static void s_index(char out[S_PATH_MAX], const char *parent, int i)
{
    snprintf(out, S_PATH_MAX, "%.140s[%d]", parent, i);
}

/* "a, b, c" from a NULL-terminated list. */
static void s_list(const char *const *names, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    for (int i = 0; names[i] && n + 1 < cap; i++) {
        int w = snprintf(out + n, cap - n, "%s%s", i ? ", " : "", names[i]);
        if (w < 0)
            break;
        n += (size_t)w;
    }
}

/* ---- structure ----------------------------------------------------------------------------- */

/* Checks that obj holds only keys from allowed (NULL-terminated, at most 32), each once. */
static int s_check_keys(s_ctx_t *c, const cJSON *obj, const char *path,
                        const char *const *allowed)
{
    uint32_t seen = 0;
    char p[S_PATH_MAX];
    for (const cJSON *it = obj->child; it; it = it->next) {
        const char *key = it->string ? it->string : "";
        int k = 0;
        while (allowed[k] && strcmp(allowed[k], key) != 0)
            k++;
        s_join(p, path, key);
        if (!allowed[k]) {
            char list[320], q[64];
            s_list(allowed, list, sizeof list);
            s_quote(key, q, sizeof q);
            if (!allowed[0])
                return bs_err_set(c->err, BS_ECONFIG, "%s: %s: expected no keys here; got "
                                  "unknown key %s", c->file, p, q);
            return bs_err_set(c->err, BS_ECONFIG,
                              "%s: %s: expected one of the keys %s; got unknown key %s", c->file,
                              p, list, q);
        }
        if (seen & (1u << k))
            return bs_err_set(c->err, BS_ECONFIG, "%s: %s: expected each key once; got \"%s\" "
                              "twice", c->file, p, allowed[k]);
        seen |= 1u << k;
    }
    return 0;
}

/* Borrowed member of obj, or NULL. */
static const cJSON *s_get(const cJSON *obj, const char *key)
{
    return obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
}

/* An object member: *out = NULL when absent and optional. */
static int s_object(s_ctx_t *c, const cJSON *obj, const char *parent, const char *key,
                    int required, const char *what, const cJSON **out)
{
    char p[S_PATH_MAX];
    s_join(p, parent, key);
    const cJSON *it = s_get(obj, key);
    *out = NULL;
    if (!it)
        return required ? s_missing(c, p, what) : 0;
    if (!cJSON_IsObject(it))
        return s_fail(c, p, it, "%s", what);
    *out = it;
    return 0;
}

static int s_is_integral(double v, int64_t lo, int64_t hi)
{
    return isfinite(v) && floor(v) == v && v >= (double)lo && v <= (double)hi;
}

/* The range in words; the upper bound of open-ended ranges (2^53, INT_MAX) is only spelled out
 * for a value above it. */
static void s_int_what(int64_t lo, int64_t hi, const cJSON *it, char *out, size_t cap)
{
    int above = it && cJSON_IsNumber(it) && it->valuedouble > (double)hi;
    if ((hi >= S_INT53 || hi == INT_MAX) && !above)
        snprintf(out, cap, "an integer >= %lld", (long long)lo);
    else
        snprintf(out, cap, "an integer in %lld..%lld", (long long)lo, (long long)hi);
}

/* An integer in [lo, hi]; def when absent and optional. */
static int s_int(s_ctx_t *c, const cJSON *obj, const char *parent, const char *key, int required,
                 int64_t lo, int64_t hi, int64_t def, int64_t *out)
{
    char p[S_PATH_MAX], what[96];
    s_join(p, parent, key);
    const cJSON *it = s_get(obj, key);
    s_int_what(lo, hi, it, what, sizeof what);
    if (!it) {
        if (required)
            return s_missing(c, p, what);
        *out = def;
        return 0;
    }
    if (!cJSON_IsNumber(it) || !s_is_integral(it->valuedouble, lo, hi))
        return s_fail(c, p, it, "%s", what);
    *out = (int64_t)it->valuedouble;
    return 0;
}

/* Same for int fields. */
static int s_int32(s_ctx_t *c, const cJSON *obj, const char *parent, const char *key,
                   int64_t lo, int64_t hi, int64_t def, int *out)
{
    int64_t v = 0;
    int rc = s_int(c, obj, parent, key, 0, lo, hi, def, &v);
    if (rc == 0)
        *out = (int)v;
    return rc;
}

static void s_num_what(double lo, int lo_open, double hi, char *out, size_t cap)
{
    if (isinf(lo) && isinf(hi))
        snprintf(out, cap, "a number");
    else if (isinf(hi))
        snprintf(out, cap, "a number %s %g", lo_open ? ">" : ">=", lo);
    else
        snprintf(out, cap, "a number in %s%g, %g]", lo_open ? "(" : "[", lo, hi);
}

static int s_num_ok(const cJSON *it, double lo, int lo_open, double hi)
{
    if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble))
        return 0;
    double v = it->valuedouble;
    return (lo_open ? v > lo : v >= lo) && v <= hi;
}

/* A finite number in lo..hi (lo excluded when lo_open); def when absent and optional. */
static int s_num(s_ctx_t *c, const cJSON *obj, const char *parent, const char *key, int required,
                 double lo, int lo_open, double hi, double def, double *out)
{
    char p[S_PATH_MAX], what[96];
    s_join(p, parent, key);
    s_num_what(lo, lo_open, hi, what, sizeof what);
    const cJSON *it = s_get(obj, key);
    if (!it) {
        if (required)
            return s_missing(c, p, what);
        *out = def;
        return 0;
    }
    if (!s_num_ok(it, lo, lo_open, hi))
        return s_fail(c, p, it, "%s", what);
    *out = it->valuedouble;
    return 0;
}

/* A string that is one of choices (NULL-terminated); def when absent (def NULL: required). */
static int s_enum(s_ctx_t *c, const cJSON *obj, const char *parent, const char *key,
                  const char *const *choices, const char *def, const char **out)
{
    char p[S_PATH_MAX], list[256], what[300];
    s_join(p, parent, key);
    s_list(choices, list, sizeof list);
    snprintf(what, sizeof what, "one of %s", list);
    const cJSON *it = s_get(obj, key);
    if (!it) {
        if (!def)
            return s_missing(c, p, what);
        *out = def;
        return 0;
    }
    if (cJSON_IsString(it) && it->valuestring) {
        for (int i = 0; choices[i]; i++) {
            if (strcmp(choices[i], it->valuestring) == 0) {
                *out = choices[i];
                return 0;
            }
        }
    }
    return s_fail(c, p, it, "%s", what);
}

/* [A-Za-z0-9._-]{1,max} plus the characters in extra. */
static int s_name_ok(const char *s, size_t max, const char *extra)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!isalnum(ch) && ch != '.' && ch != '_' && ch != '-' && !(extra && strchr(extra, ch)))
            return 0;
    }
    return 1;
}

/* A path to a readable regular file, resolved against the campaign file's directory.
 * *out is owned by the caller; NULL when absent and optional. */
static int s_path(s_ctx_t *c, const cJSON *obj, const char *parent, const char *key,
                  int required, char **out)
{
    char p[S_PATH_MAX];
    s_join(p, parent, key);
    const char *what = "a path to a readable file, relative to the campaign file";
    const cJSON *it = s_get(obj, key);
    *out = NULL;
    if (!it)
        return required ? s_missing(c, p, what) : 0;
    if (!cJSON_IsString(it) || !it->valuestring || !it->valuestring[0])
        return s_fail(c, p, it, "%s", what);
    char *res = bs_path_resolve(c->file, it->valuestring);
    if (!res)
        return s_oom(c);
    struct stat st;
    const char *why = NULL;
    if (access(res, R_OK) != 0)
        why = strerror(errno);
    else if (stat(res, &st) != 0)
        why = strerror(errno);
    else if (!S_ISREG(st.st_mode))
        why = "not a regular file";
    if (why) {
        char got[96];
        s_describe(it, got, sizeof got);
        int rc = bs_err_set(c->err, BS_ECONFIG,
                            "%s: %s: expected a readable file; got %s (resolved to %s: %s)",
                            c->file, p, got, res, why);
        bs_free(res);
        return rc;
    }
    *out = res;
    return 0;
}

/* Adds a number to obj unless key is there already; 0 or BS_ENOMEM. */
static int s_default_num(cJSON *obj, const char *key, double v)
{
    if (cJSON_GetObjectItemCaseSensitive(obj, key))
        return 0;
    return cJSON_AddNumberToObject(obj, key, v) ? 0 : BS_ENOMEM;
}

static int s_default_str(cJSON *obj, const char *key, const char *v)
{
    if (cJSON_GetObjectItemCaseSensitive(obj, key))
        return 0;
    return cJSON_AddStringToObject(obj, key, v) ? 0 : BS_ENOMEM;
}

/* ---- sections ------------------------------------------------------------------------------ */

static int s_parse_name(s_ctx_t *c, const cJSON *root, bs_config_t *cfg)
{
    const char *what = "a name of 1 to 64 characters from A-Z a-z 0-9 . _ -";
    const cJSON *it = s_get(root, "name");
    if (!it)
        return s_missing(c, "name", what);
    if (!cJSON_IsString(it) || !it->valuestring || !s_name_ok(it->valuestring, S_NAME_MAX, NULL))
        return s_fail(c, "name", it, "%s", what);
    cfg->name = bs_strdup(it->valuestring);
    return cfg->name ? 0 : s_oom(c);
}

static int s_parse_data_set(s_ctx_t *c, const cJSON *data, const char *key, int required,
                            bs_data_cfg_t *out)
{
    static const char *const eval_keys[] = {"images", "labels", "count", NULL};
    static const char *const cal_keys[] = {"images", "count", NULL};
    int is_eval = strcmp(key, "eval") == 0;
    const cJSON *obj;
    char p[S_PATH_MAX];
    s_join(p, "data", key);
    int rc = s_object(c, data, "data", key, required, "an object with \"images\"", &obj);
    if (rc || !obj)
        return rc;
    if ((rc = s_check_keys(c, obj, p, is_eval ? eval_keys : cal_keys)))
        return rc;
    if ((rc = s_path(c, obj, p, "images", 1, &out->images)))
        return rc;
    if (is_eval && (rc = s_path(c, obj, p, "labels", 0, &out->labels)))
        return rc;
    return s_int(c, obj, p, "count", 0, 0, S_INT53, is_eval ? 0 : 256, &out->count);
}

/* A non-empty array of up to S_VEC_MAX numbers, each > 0 when positive. */
static int s_num_array(s_ctx_t *c, const cJSON *arr, const char *path, int positive)
{
    const char *what = positive ? "a non-empty array of numbers > 0 (one per channel)"
                                : "a non-empty array of numbers (one per channel)";
    int n = cJSON_IsArray(arr) ? cJSON_GetArraySize(arr) : -1;
    if (n < 1 || n > S_VEC_MAX)
        return s_fail(c, path, arr, "%s, at most %d", what, S_VEC_MAX);
    int i = 0;
    for (const cJSON *e = arr->child; e; e = e->next, i++) {
        if (!s_num_ok(e, positive ? 0 : -INFINITY, positive, INFINITY)) {
            char p[S_PATH_MAX];
            s_index(p, path, i);
            return s_fail(c, p, e, "%s", positive ? "a number > 0" : "a number");
        }
    }
    return 0;
}

static int s_parse_preprocess(s_ctx_t *c, const cJSON *data, bs_config_t *cfg)
{
    static const char *const keys[] = {"scale", "mean", "std", "layout", "resize", NULL};
    static const char *const layouts[] = {"NCHW", "NHWC", NULL};
    const cJSON *obj;
    int rc = s_object(c, data, "data", "preprocess", 0, "an object", &obj);
    if (rc)
        return rc;
    const char *p = "data.preprocess";
    if (obj && (rc = s_check_keys(c, obj, p, keys)))
        return rc;
    double scale;
    if ((rc = s_num(c, obj, p, "scale", 0, 0, 1, INFINITY, 1.0 / 255.0, &scale)))
        return rc;
    const cJSON *mean = s_get(obj, "mean"), *std = s_get(obj, "std");
    if (mean && (rc = s_num_array(c, mean, "data.preprocess.mean", 0)))
        return rc;
    if (std && (rc = s_num_array(c, std, "data.preprocess.std", 1)))
        return rc;
    if (mean && std && cJSON_GetArraySize(mean) != cJSON_GetArraySize(std))
        return s_fail(c, "data.preprocess.std", std, "an array as long as data.preprocess.mean "
                      "(%d items)", cJSON_GetArraySize(mean));
    const char *layout;
    if ((rc = s_enum(c, obj, p, "layout", layouts, "NCHW", &layout)))
        return rc;
    const cJSON *resize = s_get(obj, "resize");
    if (resize) {
        const char *what = "an array of two integers [H, W], each in 1..16384";
        if (!cJSON_IsArray(resize) || cJSON_GetArraySize(resize) != 2)
            return s_fail(c, "data.preprocess.resize", resize, "%s", what);
        int i = 0;
        for (const cJSON *e = resize->child; e; e = e->next, i++) {
            if (!cJSON_IsNumber(e) || !s_is_integral(e->valuedouble, 1, 16384)) {
                char ep[S_PATH_MAX];
                s_index(ep, "data.preprocess.resize", i);
                return s_fail(c, ep, e, "an integer in 1..16384");
            }
        }
    }
    cfg->preprocess = obj ? cJSON_Duplicate(obj, 1) : cJSON_CreateObject();
    if (!cfg->preprocess || s_default_num(cfg->preprocess, "scale", scale) ||
        s_default_str(cfg->preprocess, "layout", layout))
        return s_oom(c);
    return 0;
}

static int s_parse_data(s_ctx_t *c, const cJSON *root, bs_config_t *cfg)
{
    static const char *const keys[] = {"eval", "calibration", "preprocess", NULL};
    const cJSON *data;
    int rc = s_object(c, root, "", "data", 1, "an object with \"eval\"", &data);
    if (rc)
        return rc;
    if ((rc = s_check_keys(c, data, "data", keys)))
        return rc;
    if ((rc = s_parse_data_set(c, data, "eval", 1, &cfg->eval)))
        return rc;
    if ((rc = s_parse_data_set(c, data, "calibration", 0, &cfg->calibration)))
        return rc;
    return s_parse_preprocess(c, data, cfg);
}

/* rule.weights or rule.activations: a non-empty array of distinct precision names. */
static int s_parse_precs(s_ctx_t *c, const cJSON *rule, const char *path, const char *key,
                         int is_w, uint8_t *out, int *n_out)
{
    static const char *const wnames[] = {"fp32", "fp16", "int8", "int7", "int6",
                                         "int5", "int4", "int3", "int2", NULL};
    static const char *const anames[] = {"fp32", "int8", NULL};
    const char *const *names = is_w ? wnames : anames;
    int cap = is_w ? 9 : 2;
    char p[S_PATH_MAX], list[128];
    s_join(p, path, key);
    s_list(names, list, sizeof list);
    const cJSON *arr = s_get(rule, key);
    if (!arr) {
        if (is_w)
            return s_missing(c, p, "a non-empty array of weight precisions");
        out[0] = 32;
        *n_out = 1;
        return 0;
    }
    int n = cJSON_IsArray(arr) ? cJSON_GetArraySize(arr) : 0;
    if (n < 1)
        return s_fail(c, p, arr, "a non-empty array of precisions from %s", list);
    if (n > cap)
        return s_fail(c, p, arr, "at most %d distinct precisions from %s", cap, list);
    int i = 0;
    for (const cJSON *e = arr->child; e; e = e->next, i++) {
        char ep[S_PATH_MAX];
        s_index(ep, p, i);
        uint8_t bits = 0;
        int bad = !cJSON_IsString(e) || !e->valuestring;
        if (!bad)
            bad = is_w ? bs_wprec_from_name(e->valuestring, &bits) != 0
                       : bs_aprec_from_name(e->valuestring, &bits) != 0;
        if (bad)
            return s_fail(c, ep, e, "one of %s", list);
        for (int j = 0; j < i; j++)
            if (out[j] == bits)
                return s_fail(c, ep, e, "a precision not already listed in %s", p);
        out[i] = bits;
    }
    *n_out = n;
    return 0;
}

static int s_parse_space(s_ctx_t *c, const cJSON *root, bs_config_t *cfg)
{
    static const char *const keys[] = {"layers", "weights", "activations", NULL};
    const char *what = "a non-empty array of rules {\"layers\", \"weights\", \"activations\"}";
    const cJSON *arr = s_get(root, "search_space");
    if (!arr)
        return s_missing(c, "search_space", what);
    int n = cJSON_IsArray(arr) ? cJSON_GetArraySize(arr) : 0;
    if (n < 1)
        return s_fail(c, "search_space", arr, "%s", what);
    cfg->rules = bs_calloc((size_t)n, sizeof *cfg->rules);
    if (!cfg->rules)
        return s_oom(c);
    cfg->n_rules = n;
    int i = 0;
    for (const cJSON *r = arr->child; r; r = r->next, i++) {
        bs_space_rule_t *rule = &cfg->rules[i];
        char p[S_PATH_MAX], lp[S_PATH_MAX];
        s_index(p, "search_space", i);
        if (!cJSON_IsObject(r))
            return s_fail(c, p, r, "a rule object {\"layers\", \"weights\", \"activations\"}");
        int rc = s_check_keys(c, r, p, keys);
        if (rc)
            return rc;
        s_join(lp, p, "layers");
        const char *lwhat = "a layer name or glob pattern (\"*\", \"conv?\", \"fc[12]\"), "
                            "1 to 256 characters";
        const cJSON *l = s_get(r, "layers");
        if (!l)
            return s_missing(c, lp, lwhat);
        if (!cJSON_IsString(l) || !l->valuestring || !l->valuestring[0] ||
            strlen(l->valuestring) > S_PATTERN_MAX)
            return s_fail(c, lp, l, "%s", lwhat);
        if ((rc = s_parse_precs(c, r, p, "weights", 1, rule->w, &rule->n_w)))
            return rc;
        if ((rc = s_parse_precs(c, r, p, "activations", 0, rule->a, &rule->n_a)))
            return rc;
        rule->match = bs_strdup(l->valuestring);
        if (!rule->match)
            return s_oom(c);
    }
    return 0;
}

static int s_parse_metric(s_ctx_t *c, const cJSON *obj, const char *path, char out[32])
{
    char p[S_PATH_MAX];
    s_join(p, path, "metric");
    const cJSON *m = s_get(obj, "metric");
    if (!m) {
        char what[400];
        snprintf(what, sizeof what, "one of %s", bs_metric_names_list());
        return s_missing(c, p, what);
    }
    if (!cJSON_IsString(m) || !m->valuestring || !bs_metric_name_valid(m->valuestring))
        return s_fail(c, p, m, "one of %s", bs_metric_names_list());
    snprintf(out, 32, "%s", m->valuestring);
    return 0;
}

static int s_parse_objectives(s_ctx_t *c, const cJSON *root, bs_config_t *cfg)
{
    static const char *const keys[] = {"metric", "goal", NULL};
    static const char *const goals[] = {"max", "min", NULL};
    char what[128];
    snprintf(what, sizeof what, "an array of 1 to %d objectives {\"metric\", \"goal\"}",
             BS_MAX_OBJECTIVES);
    const cJSON *arr = s_get(root, "objectives");
    if (!arr)
        return s_missing(c, "objectives", what);
    int n = cJSON_IsArray(arr) ? cJSON_GetArraySize(arr) : 0;
    if (n < 1 || n > BS_MAX_OBJECTIVES)
        return s_fail(c, "objectives", arr, "%s", what);
    int i = 0;
    for (const cJSON *o = arr->child; o; o = o->next, i++) {
        bs_objective_t *obj = &cfg->objectives[i];
        char p[S_PATH_MAX], mp[S_PATH_MAX];
        s_index(p, "objectives", i);
        if (!cJSON_IsObject(o))
            return s_fail(c, p, o, "an object {\"metric\", \"goal\"}");
        int rc = s_check_keys(c, o, p, keys);
        if (rc || (rc = s_parse_metric(c, o, p, obj->metric)))
            return rc;
        for (int j = 0; j < i; j++) {
            if (strcmp(cfg->objectives[j].metric, obj->metric) == 0) {
                s_join(mp, p, "metric");
                return s_fail(c, mp, s_get(o, "metric"),
                              "a metric not already used by objectives[%d]", j);
            }
        }
        const char *def = bs_metric_default_goal(obj->metric) > 0 ? "max" : "min";
        const char *goal;
        if ((rc = s_enum(c, o, p, "goal", goals, def, &goal)))
            return rc;
        obj->goal = strcmp(goal, "max") == 0 ? +1 : -1;
        cfg->n_objectives = i + 1;
    }
    return 0;
}

static int s_parse_constraints(s_ctx_t *c, const cJSON *root, bs_config_t *cfg)
{
    static const char *const keys[] = {"metric", "min", "max", NULL};
    const cJSON *arr = s_get(root, "constraints");
    if (!arr)
        return 0;
    int n = cJSON_IsArray(arr) ? cJSON_GetArraySize(arr) : -1;
    if (n < 0 || n > BS_MAX_CONSTRAINTS)
        return s_fail(c, "constraints", arr, "an array of at most %d constraints "
                      "{\"metric\", \"min\", \"max\"}", BS_MAX_CONSTRAINTS);
    int i = 0;
    for (const cJSON *o = arr->child; o; o = o->next, i++) {
        bs_constraint_t *k = &cfg->constraints[i];
        char p[S_PATH_MAX];
        s_index(p, "constraints", i);
        if (!cJSON_IsObject(o))
            return s_fail(c, p, o, "an object {\"metric\", \"min\", \"max\"}");
        int rc = s_check_keys(c, o, p, keys);
        if (rc || (rc = s_parse_metric(c, o, p, k->metric)))
            return rc;
        if ((rc = s_num(c, o, p, "min", 0, -INFINITY, 0, INFINITY, NAN, &k->min)) ||
            (rc = s_num(c, o, p, "max", 0, -INFINITY, 0, INFINITY, NAN, &k->max)))
            return rc;
        if (isnan(k->min) && isnan(k->max))
            return bs_err_set(c->err, BS_ECONFIG, "%s: %s: expected \"min\", \"max\" or both; "
                              "got neither", c->file, p);
        if (!isnan(k->min) && !isnan(k->max) && k->min > k->max) {
            char mp[S_PATH_MAX];
            s_join(mp, p, "max");
            return s_fail(c, mp, s_get(o, "max"), "a number >= %s.min (%.15g)", p, k->min);
        }
        cfg->n_constraints = i + 1;
    }
    return 0;
}

static int s_parse_policy(s_ctx_t *c, const cJSON *root, bs_config_t *cfg)
{
    const cJSON *obj;
    int rc = s_object(c, root, "", "policy", 0, "an object {\"name\", \"seed\", ...}", &obj);
    if (rc)
        return rc;
    const char *name = "random";
    const cJSON *nm = s_get(obj, "name");
    if (nm) {
        if (!cJSON_IsString(nm) || !nm->valuestring || !bs_policy_find(nm->valuestring))
            return s_fail(c, "policy.name", nm, "one of %s", bs_policy_names_list());
        name = nm->valuestring;
    }
    const s_policy_def_t *def = NULL;
    for (int i = 0; i < S_N_POLICIES; i++)
        if (strcmp(s_policies[i].name, name) == 0)
            def = &s_policies[i];
    const char *keys[32] = {"name", "seed"};
    int nk = 2;
    for (int i = 0; def && def->params[i] && nk < 31; i++)
        keys[nk++] = def->params[i];
    keys[nk] = NULL;
    if (obj && (rc = s_check_keys(c, obj, "policy", keys)))
        return rc;
    int64_t seed;
    if ((rc = s_int(c, obj, "policy", "seed", 0, 0, S_INT53, 1, &seed)))
        return rc;
    snprintf(cfg->policy, sizeof cfg->policy, "%s", name);
    cfg->seed = (uint64_t)seed;
    cfg->policy_params = obj ? cJSON_Duplicate(obj, 1) : cJSON_CreateObject();
    if (!cfg->policy_params || s_default_str(cfg->policy_params, "name", name) ||
        s_default_num(cfg->policy_params, "seed", (double)seed))
        return s_oom(c);
    return 0;
}

static int s_parse_budget(s_ctx_t *c, const cJSON *root, bs_config_t *cfg)
{
    static const char *const keys[] = {"evaluations", "wall_time_s", NULL};
    const cJSON *obj;
    int rc = s_object(c, root, "", "budget", 1, "an object with \"evaluations\"", &obj);
    if (rc || (rc = s_check_keys(c, obj, "budget", keys)))
        return rc;
    if ((rc = s_int(c, obj, "budget", "evaluations", 1, 1, S_INT53, 0, &cfg->budget_evals)))
        return rc;
    return s_num(c, obj, "budget", "wall_time_s", 0, 0, 0, INFINITY, 0, &cfg->budget_wall_s);
}

static int s_parse_measure(s_ctx_t *c, const cJSON *root, bs_config_t *cfg)
{
    static const char *const keys[] = {"backend",       "warmup_runs",  "warmup_min_ms",
                                       "min_runs",      "min_time_ms",  "max_time_ms",
                                       "cv_max",        "remeasure_max", "cooldown_ms",
                                       "cpus",          "energy_ms",    "idle_ms",
                                       "profile_runs",  "energy_estimate_w",
                                       "threads",       "sim_delay_ms", "sim_fail_rate", NULL};
    static const char *const backends[] = {"engine", "sim", NULL};
    const cJSON *obj;
    int rc = s_object(c, root, "", "measure", 0, "an object", &obj);
    if (rc)
        return rc;
    const char *p = "measure";
    if (obj && (rc = s_check_keys(c, obj, p, keys)))
        return rc;
    const char *backend;
    if ((rc = s_enum(c, obj, p, "backend", backends, "engine", &backend)))
        return rc;
    int sim = strcmp(backend, "sim") == 0;
    int64_t warmup, min_runs, threads, remeasure, prof_runs, delay = 0;
    double min_t, max_t, warm_t, cv_max, cool, energy_t, idle_t, est_w, fail = 0;
    if ((rc = s_int(c, obj, p, "warmup_runs", 0, 0, 100000, 5, &warmup)) ||
        (rc = s_num(c, obj, p, "warmup_min_ms", 0, 0, 0, 1e9, 100, &warm_t)) ||
        (rc = s_int(c, obj, p, "min_runs", 0, 1, 100000, 20, &min_runs)) ||
        (rc = s_num(c, obj, p, "min_time_ms", 0, 0, 0, INFINITY, 500, &min_t)) ||
        (rc = s_num(c, obj, p, "max_time_ms", 0, 0, 1, INFINITY, 10000, &max_t)) ||
        (rc = s_num(c, obj, p, "cv_max", 0, 0, 1, 10, 0.05, &cv_max)) ||
        (rc = s_int(c, obj, p, "remeasure_max", 0, 0, 10, 2, &remeasure)) ||
        (rc = s_num(c, obj, p, "cooldown_ms", 0, 0, 0, 3.6e6, 0, &cool)) ||
        (rc = s_num(c, obj, p, "energy_ms", 0, 0, 0, 3.6e6, 2000, &energy_t)) ||
        (rc = s_num(c, obj, p, "idle_ms", 0, 0, 0, 3.6e6, 1000, &idle_t)) ||
        (rc = s_int(c, obj, p, "profile_runs", 0, 0, 10000, 10, &prof_runs)) ||
        (rc = s_num(c, obj, p, "energy_estimate_w", 0, 0, 0, 1e5, 0, &est_w)) ||
        (rc = s_int(c, obj, p, "threads", 0, 1, 1024, 1, &threads)))
        return rc;
    const cJSON *cpus = s_get(obj, "cpus");
    unsigned char cpumask[128];
    if (cpus && (!cJSON_IsString(cpus) || strlen(cpus->valuestring) >= 64 ||
                 bs_cpulist_parse(cpus->valuestring, cpumask) != 0))
        return s_fail(c, "measure.cpus", cpus,
                      "a CPU list such as \"4-7\" or \"0,2\" (CPUs 0..1023, under 64 "
                      "characters)");
    if (max_t < min_t) {
        const cJSON *it = s_get(obj, "max_time_ms");
        if (it)
            return s_fail(c, "measure.max_time_ms", it, "a number >= measure.min_time_ms (%g)",
                          min_t);
        return bs_err_set(c->err, BS_ECONFIG, "%s: measure.max_time_ms: expected a number >= "
                          "measure.min_time_ms (%g); got the default %g", c->file, min_t, max_t);
    }
    static const char *const sim_keys[] = {"sim_delay_ms", "sim_fail_rate"};
    for (int i = 0; i < 2 && !sim; i++) {
        const cJSON *it = s_get(obj, sim_keys[i]);
        if (it) {
            char sp[S_PATH_MAX];
            s_join(sp, p, sim_keys[i]);
            return s_fail(c, sp, it, "no %s unless measure.backend is \"sim\" (it is \"%s\")",
                          sim_keys[i], backend);
        }
    }
    if ((rc = s_int(c, obj, p, "sim_delay_ms", 0, 0, 3600000, 0, &delay)) ||
        (rc = s_num(c, obj, p, "sim_fail_rate", 0, 0, 0, 1, 0, &fail)))
        return rc;
    snprintf(cfg->backend, sizeof cfg->backend, "%s", backend);
    cJSON *m = cfg->measure = cJSON_CreateObject();
    if (!m || !cJSON_AddStringToObject(m, "backend", backend) ||
        !cJSON_AddNumberToObject(m, "warmup_runs", (double)warmup) ||
        !cJSON_AddNumberToObject(m, "min_runs", (double)min_runs) ||
        !cJSON_AddNumberToObject(m, "min_time_ms", min_t) ||
        !cJSON_AddNumberToObject(m, "max_time_ms", max_t) ||
        !cJSON_AddNumberToObject(m, "warmup_min_ms", warm_t) ||
        !cJSON_AddNumberToObject(m, "cv_max", cv_max) ||
        !cJSON_AddNumberToObject(m, "remeasure_max", (double)remeasure) ||
        !cJSON_AddNumberToObject(m, "cooldown_ms", cool) ||
        !cJSON_AddNumberToObject(m, "energy_ms", energy_t) ||
        !cJSON_AddNumberToObject(m, "idle_ms", idle_t) ||
        !cJSON_AddNumberToObject(m, "profile_runs", (double)prof_runs) ||
        (est_w > 0 && !cJSON_AddNumberToObject(m, "energy_estimate_w", est_w)) ||
        !cJSON_AddNumberToObject(m, "threads", (double)threads) ||
        (cpus && !cJSON_AddStringToObject(m, "cpus", cpus->valuestring)))
        return s_oom(c);
    if (sim && (!cJSON_AddNumberToObject(m, "sim_delay_ms", (double)delay) ||
                !cJSON_AddNumberToObject(m, "sim_fail_rate", fail)))
        return s_oom(c);
    return 0;
}

static int s_parse_agents(s_ctx_t *c, const cJSON *root, bs_config_t *cfg)
{
    static const char *const keys[] = {"tags", "heartbeat_ms", "liveness", "lease_ms",
                                       "max_attempts", NULL};
    const cJSON *obj;
    int rc = s_object(c, root, "", "agents", 0, "an object", &obj);
    if (rc)
        return rc;
    const char *p = "agents";
    if (obj && (rc = s_check_keys(c, obj, p, keys)))
        return rc;
    const cJSON *tags = s_get(obj, "tags");
    if (tags) {
        int n = cJSON_IsArray(tags) ? cJSON_GetArraySize(tags) : -1;
        if (n < 0 || n > BS_MAX_TAGS)
            return s_fail(c, "agents.tags", tags, "an array of at most %d tags", BS_MAX_TAGS);
        int i = 0;
        for (const cJSON *t = tags->child; t; t = t->next, i++) {
            if (!cJSON_IsString(t) || !t->valuestring ||
                !s_name_ok(t->valuestring, S_NAME_MAX, ":")) {
                char tp[S_PATH_MAX];
                s_index(tp, "agents.tags", i);
                return s_fail(c, tp, t, "a tag of 1 to 64 characters from A-Z a-z 0-9 . _ - :");
            }
            cfg->tags[i] = bs_strdup(t->valuestring);
            if (!cfg->tags[i])
                return s_oom(c);
            cfg->n_tags = i + 1;
        }
    }
    if ((rc = s_int32(c, obj, p, "heartbeat_ms", 10, 60000, 1000, &cfg->heartbeat_ms)) ||
        (rc = s_int32(c, obj, p, "liveness", 1, 100, 5, &cfg->liveness)) ||
        (rc = s_int32(c, obj, p, "lease_ms", 100, INT_MAX, 300000, &cfg->lease_ms)) ||
        (rc = s_int32(c, obj, p, "max_attempts", 1, 20, 3, &cfg->max_attempts)))
        return rc;
    return 0;
}

/* quantization: {"weights": "mse"|"minmax", "activations": "minmax"|"percentile"|"mse",
 * "percentile": (50, 100]}, normalised into cfg->quantization with every default filled in.
 * "percentile" is an error unless activations is "percentile" (it would be ignored). */
static int s_parse_quantization(s_ctx_t *c, const cJSON *root, bs_config_t *cfg)
{
    static const char *const keys[] = {"weights", "activations", "percentile", NULL};
    static const char *const wmethods[] = {"mse", "minmax", NULL};
    static const char *const amethods[] = {"minmax", "percentile", "mse", NULL};
    const cJSON *obj;
    int rc = s_object(c, root, "", "quantization", 0, "an object {\"weights\", "
                      "\"activations\", \"percentile\"}", &obj);
    if (rc)
        return rc;
    const char *p = "quantization";
    if (obj && (rc = s_check_keys(c, obj, p, keys)))
        return rc;
    const char *w, *a;
    double pct = 99.99;
    if ((rc = s_enum(c, obj, p, "weights", wmethods, "mse", &w)) ||
        (rc = s_enum(c, obj, p, "activations", amethods, "minmax", &a)))
        return rc;
    int is_pct = strcmp(a, "percentile") == 0;
    const cJSON *it = s_get(obj, "percentile");
    if (it && !is_pct)
        return s_fail(c, "quantization.percentile", it, "no percentile unless "
                      "quantization.activations is \"percentile\" (it is \"%s\")", a);
    if ((rc = s_num(c, obj, p, "percentile", 0, 50, 1, 100, 99.99, &pct)))
        return rc;
    cJSON *q = cfg->quantization = cJSON_CreateObject();
    if (!q || !cJSON_AddStringToObject(q, "weights", w) ||
        !cJSON_AddStringToObject(q, "activations", a) ||
        (is_pct && !cJSON_AddNumberToObject(q, "percentile", pct)))
        return s_oom(c);
    return 0;
}

/* Adds p to the list unless it is there already or is w32a32 (the baseline). */
static void s_sens_add(bs_config_t *cfg, bs_prec_t p)
{
    if (bs_prec_eq(p, BS_PREC_FP32))
        return;
    for (int i = 0; i < cfg->n_sens_precs; i++)
        if (bs_prec_eq(cfg->sens_precs[i], p))
            return;
    if (cfg->n_sens_precs < BS_MAX_CHOICES)
        cfg->sens_precs[cfg->n_sens_precs++] = p;
}

/* sensitivity: {"precisions": ["w8a8", ...], "eval_count": N}. Without "precisions", every
 * non-fp32 weight x activation choice of the search-space rules, in rule order (needs
 * cfg->rules and cfg->eval, so it runs after s_parse_space and s_parse_data). */
static int s_parse_sensitivity(s_ctx_t *c, const cJSON *root, bs_config_t *cfg)
{
    static const char *const keys[] = {"precisions", "eval_count", NULL};
    const cJSON *obj;
    int rc = s_object(c, root, "", "sensitivity", 0, "an object {\"precisions\", "
                      "\"eval_count\"}", &obj);
    if (rc || !obj)
        return rc;
    const char *p = "sensitivity";
    if ((rc = s_check_keys(c, obj, p, keys)))
        return rc;
    const cJSON *arr = s_get(obj, "precisions");
    const char *ewhat = "a precision wBaB other than w32a32 (weights 32, 16, 8, 7, 6, 5, 4, "
                        "3 or 2 bits; activations 32 or 8), e.g. \"w8a8\" or \"w4a32\"";
    if (arr) {
        int n = cJSON_IsArray(arr) ? cJSON_GetArraySize(arr) : 0;
        if (n < 1 || n > BS_MAX_CHOICES - 1) /* every wBaB but w32a32 at most */
            return s_fail(c, "sensitivity.precisions", arr, "an array of 1 to %d distinct "
                          "precisions such as \"w8a8\"", BS_MAX_CHOICES - 1);
        int i = 0;
        for (const cJSON *e = arr->child; e; e = e->next, i++) {
            char ep[S_PATH_MAX];
            s_index(ep, "sensitivity.precisions", i);
            bs_prec_t pr;
            if (!cJSON_IsString(e) || !e->valuestring ||
                bs_prec_parse(e->valuestring, &pr) != 0 || bs_prec_eq(pr, BS_PREC_FP32))
                return s_fail(c, ep, e, "%s", ewhat);
            int before = cfg->n_sens_precs;
            s_sens_add(cfg, pr);
            if (cfg->n_sens_precs == before)
                return s_fail(c, ep, e, "a precision not already listed in "
                              "sensitivity.precisions");
        }
    } else {
        for (int r = 0; r < cfg->n_rules; r++)
            for (int wi = 0; wi < cfg->rules[r].n_w; wi++)
                for (int ai = 0; ai < cfg->rules[r].n_a; ai++)
                    s_sens_add(cfg, (bs_prec_t){cfg->rules[r].w[wi], cfg->rules[r].a[ai]});
        if (cfg->n_sens_precs == 0)
            return s_missing(c, "sensitivity.precisions", "the search space offers no "
                             "precision but fp32, so name the precisions to measure, e.g. "
                             "[\"w8a8\", \"w4a32\"]");
    }
    if ((rc = s_int(c, obj, p, "eval_count", 0, 0, S_INT53, cfg->eval.count,
                    &cfg->sens_eval_count)))
        return rc;
    cfg->sensitivity = 1;
    return 0;
}

/* ---- entry points -------------------------------------------------------------------------- */

/* Line and column (1-based, in bytes) of pos within text. */
static void s_line_col(const char *text, const char *pos, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (const char *q = text; q < pos; q++) {
        if (*q == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

static int s_syntax_error(s_ctx_t *c, const char *text, size_t len, const char *pos)
{
    if (!pos || pos < text || pos > text + len)
        pos = text + len;
    int line, col;
    s_line_col(text, pos, &line, &col);
    char got[64];
    if (pos >= text + len) {
        snprintf(got, sizeof got, "the end of the file");
    } else {
        char frag[24];
        size_t n = 0;
        while (n + 1 < sizeof frag && pos + n < text + len && pos[n] != '\n' && pos[n] != '\r')
            n++;
        memcpy(frag, pos, n);
        frag[n] = '\0';
        s_quote(frag, got, sizeof got);
    }
    return bs_err_set(c->err, BS_ECONFIG,
                      "%s: line %d, column %d: expected valid JSON (a single object; no "
                      "comments or trailing commas); got %s", c->file, line, col, got);
}

/* policy.seed_from and the sensitivity policy need measurements to seed from: the campaign's
 * "sensitivity" section. (The sensitivity policy itself takes no seed_from: its key list
 * refuses it.) */
static int s_check_seeding(s_ctx_t *c, bs_config_t *cfg)
{
    const cJSON *sf = s_get(cfg->policy_params, "seed_from");
    if (sf && (!cJSON_IsString(sf) || strcmp(sf->valuestring, "sensitivity") != 0))
        return s_fail(c, "policy.seed_from", sf, "\"sensitivity\"");
    if ((sf || strcmp(cfg->policy, "sensitivity") == 0) && !cfg->sensitivity)
        return bs_err_set(c->err, BS_ECONFIG, "%s: policy: seeding from sensitivity needs "
                          "measurements: expected a \"sensitivity\" section in the campaign "
                          "(configs/README.md)", c->file);
    return 0;
}

/* "hypervolume": {"reference": {METRIC: number, ...}}: the reference point of the hypervolume
 * for some or all objectives (the others use the worst value seen). */
static int s_parse_hypervolume(s_ctx_t *c, const cJSON *root, bs_config_t *cfg)
{
    static const char *const keys[] = {"reference", NULL};
    for (int i = 0; i < BS_MAX_OBJECTIVES; i++)
        cfg->hv_ref[i] = NAN;
    const cJSON *obj;
    int rc = s_object(c, root, "", "hypervolume", 0, "an object {\"reference\"}", &obj);
    if (rc || !obj || (rc = s_check_keys(c, obj, "hypervolume", keys)))
        return rc;
    const cJSON *ref;
    if ((rc = s_object(c, obj, "hypervolume", "reference", 0,
                       "an object {METRIC: number} over the objectives' metrics", &ref)) ||
        !ref)
        return rc;
    for (const cJSON *it = ref->child; it; it = it->next) {
        char p[S_PATH_MAX];
        snprintf(p, sizeof p, "hypervolume.reference.%.64s", it->string ? it->string : "");
        int k = -1;
        for (int i = 0; i < cfg->n_objectives; i++)
            if (it->string && strcmp(cfg->objectives[i].metric, it->string) == 0)
                k = i;
        if (k < 0) {
            char list[256] = "";
            for (int i = 0; i < cfg->n_objectives; i++) {
                size_t l = strlen(list);
                snprintf(list + l, sizeof list - l, "%s%s", i ? ", " : "",
                         cfg->objectives[i].metric);
            }
            return bs_err_set(c->err, BS_ECONFIG, "%s: %s: expected the metric of an "
                              "objective (%s)", c->file, p, list);
        }
        if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble))
            return s_fail(c, p, it, "a finite number");
        cfg->hv_ref[k] = it->valuedouble;
    }
    return 0;
}

/* Parses cfg->text (already owned by cfg) and fills the rest of cfg. */
static int s_parse(s_ctx_t *c, size_t len, bs_config_t *cfg)
{
    static const char *const keys[] = {"name",   "model",  "data",    "search_space",
                                       "objectives", "constraints", "policy", "budget",
                                       "measure", "agents", "quantization", "sensitivity",
                                       "hypervolume", NULL};
    const char *text = cfg->text;
    const char *nul = memchr(text, '\0', len);
    if (nul)
        return s_syntax_error(c, text, len, nul);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root)
        return s_syntax_error(c, text, len, end);
    int rc = 0;
    if (end) {
        while (end < text + len && isspace((unsigned char)*end))
            end++;
        if (end < text + len) {
            rc = s_syntax_error(c, text, len, end);
            goto out;
        }
    }
    if (!cJSON_IsObject(root)) {
        rc = s_fail(c, "(top level)", root, "a JSON object");
        goto out;
    }
    if ((rc = s_check_keys(c, root, "", keys)) || (rc = s_parse_name(c, root, cfg)) ||
        (rc = s_path(c, root, "", "model", 1, &cfg->model)) ||
        (rc = s_parse_data(c, root, cfg)) || (rc = s_parse_space(c, root, cfg)) ||
        (rc = s_parse_objectives(c, root, cfg)) || (rc = s_parse_constraints(c, root, cfg)) ||
        (rc = s_parse_policy(c, root, cfg)) || (rc = s_parse_budget(c, root, cfg)) ||
        (rc = s_parse_measure(c, root, cfg)) || (rc = s_parse_agents(c, root, cfg)) ||
        (rc = s_parse_quantization(c, root, cfg)) || (rc = s_parse_sensitivity(c, root, cfg)) ||
        (rc = s_parse_hypervolume(c, root, cfg)) || (rc = s_check_seeding(c, cfg)))
        goto out;
out:
    cJSON_Delete(root);
    return rc;
}

static int s_parse_owned(char *text, size_t len, const char *path, bs_config_t **out,
                         bs_err_t *err)
{
    s_ctx_t c = {path ? path : "(campaign)", err};
    bs_config_t *cfg = bs_calloc(1, sizeof *cfg);
    if (!cfg) {
        bs_free(text);
        return s_oom(&c);
    }
    cfg->text = text;
    cfg->path = bs_strdup(c.file);
    int rc = cfg->path ? s_parse(&c, len, cfg) : s_oom(&c);
    if (rc) {
        bs_config_free(&cfg);
        return rc;
    }
    bs_err_clear(err);
    *out = cfg;
    return 0;
}

int bs_config_parse(const char *text, size_t len, const char *path, bs_config_t **out,
                    bs_err_t *err)
{
    s_ctx_t c = {path ? path : "(campaign)", err};
    if (!out || (!text && len))
        return bs_err_set(err, BS_EINVAL, "%s: no campaign text given", c.file);
    *out = NULL;
    if (len > BS_CONFIG_MAX_BYTES)
        return bs_err_set(err, BS_ETOOBIG, "%s: %zu bytes, more than the limit of %u", c.file,
                          len, BS_CONFIG_MAX_BYTES);
    char *copy = bs_malloc(len + 1);
    if (!copy)
        return s_oom(&c);
    if (len)
        memcpy(copy, text, len);
    copy[len] = '\0';
    return s_parse_owned(copy, len, path, out, err);
}

int bs_config_load(const char *path, bs_config_t **out, bs_err_t *err)
{
    if (!path || !out)
        return bs_err_set(err, BS_EINVAL, "bs_config_load: no path given");
    *out = NULL;
    char *text = NULL;
    size_t len = 0;
    int rc = bs_read_file(path, BS_CONFIG_MAX_BYTES, &text, &len, err);
    if (rc)
        return rc;
    return s_parse_owned(text, len, path, out, err);
}

void bs_config_free(bs_config_t **cfgp)
{
    if (!cfgp || !*cfgp)
        return;
    bs_config_t *cfg = *cfgp;
    bs_free(cfg->path);
    bs_free(cfg->text);
    bs_free(cfg->name);
    bs_free(cfg->model);
    bs_free(cfg->eval.images);
    bs_free(cfg->eval.labels);
    bs_free(cfg->calibration.images);
    bs_free(cfg->calibration.labels);
    cJSON_Delete(cfg->preprocess);
    for (int i = 0; i < cfg->n_rules; i++)
        bs_free(cfg->rules[i].match);
    bs_free(cfg->rules);
    cJSON_Delete(cfg->policy_params);
    cJSON_Delete(cfg->measure);
    cJSON_Delete(cfg->quantization);
    for (int i = 0; i < cfg->n_tags; i++)
        bs_free(cfg->tags[i]);
    bs_free(cfg);
    *cfgp = NULL;
}

/* ---- sensitivity results against the campaign ---------------------------------------------- */

/* "conv1, conv2, fc" (cut to fit), for messages naming the model's layers. */
static void s_layer_names(const bs_space_t *space, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    for (int i = 0; i < space->n_layers && n + 8 < cap; i++) {
        int w = snprintf(out + n, cap - n, "%s%s", i ? ", " : "", space->names[i]);
        if (w < 0 || (size_t)w >= cap - n) {
            snprintf(out + n, cap - n, "...");
            return;
        }
        n += (size_t)w;
    }
}

static int s_sens_num(const cJSON *it, double lo, double hi)
{
    return cJSON_IsNumber(it) && isfinite(it->valuedouble) && it->valuedouble >= lo &&
           it->valuedouble <= hi;
}

int bs_sens_check(const bs_config_t *cfg, const bs_space_t *space, const cJSON *sens,
                  bs_sens_row_t *rows, int n_rows, bs_err_t *err)
{
    const char *P = "RESULT.sensitivity";
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(sens, "baseline");
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(sens, "rows");
    if (!cJSON_IsObject(sens))
        return bs_err_set(err, BS_EPROTO, "%s: expected an object", P);
    if (!s_sens_num(b, 0, 1))
        return bs_err_set(err, BS_EPROTO, "%s.baseline: expected a number in [0, 1]", P);
    if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(sens, "metric")))
        return bs_err_set(err, BS_EPROTO, "%s.metric: expected a string", P);
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) != n_rows)
        return bs_err_set(err, BS_EPROTO, "%s.rows: expected an array of %d rows", P, n_rows);
    double baseline = b->valuedouble;
    int np = cfg->n_sens_precs;
    size_t cells = (size_t)space->n_layers * (size_t)np;
    unsigned char *seen = bs_calloc(cells ? cells : 1, 1);
    if (!seen)
        return bs_err_set(err, BS_ENOMEM, "out of memory");
    int rc = 0, i = 0;
    for (const cJSON *r = arr->child; r && rc == 0; r = r->next, i++) {
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(r, "layer");
        const cJSON *pr = cJSON_GetObjectItemCaseSensitive(r, "precision");
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(r, "value");
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(r, "delta");
        const cJSON *er = cJSON_GetObjectItemCaseSensitive(r, "error");
        const char *layer = cJSON_GetStringValue(l), *prec = cJSON_GetStringValue(pr);
        int li = -1, pi = -1;
        for (int k = 0; layer && k < space->n_layers && li < 0; k++)
            if (strcmp(space->names[k], layer) == 0)
                li = k;
        if (li < 0) {
            char names[400], got[96];
            s_layer_names(space, names, sizeof names);
            s_describe(l, got, sizeof got);
            rc = bs_err_set(err, BS_EPROTO, "%s.rows[%d].layer: expected a layer of the model "
                            "(%s), got %s", P, i, names, got);
            break;
        }
        bs_prec_t p;
        if (prec && bs_prec_parse(prec, &p) == 0)
            for (int k = 0; k < np && pi < 0; k++)
                if (bs_prec_eq(cfg->sens_precs[k], p))
                    pi = k;
        if (pi < 0) {
            char list[160], got[96];
            size_t n = 0;
            list[0] = '\0';
            for (int k = 0; k < np && n + 10 < sizeof list; k++) {
                char t[BS_PREC_TEXT_MAX];
                bs_prec_format(cfg->sens_precs[k], t);
                n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", k ? ", " : "", t);
            }
            s_describe(pr, got, sizeof got);
            rc = bs_err_set(err, BS_EPROTO, "%s.rows[%d].precision: expected one of the job's "
                            "precisions (%s), got %s", P, i, list, got);
            break;
        }
        unsigned char *cell = &seen[(size_t)li * (size_t)np + (size_t)pi];
        if (*cell) {
            rc = bs_err_set(err, BS_EPROTO, "%s.rows[%d]: expected each (layer, precision) "
                            "once, got %s at %s again", P, i, layer, prec);
            break;
        }
        *cell = 1;
        int vnull = cJSON_IsNull(v), dnull = cJSON_IsNull(d);
        if (!vnull && !s_sens_num(v, 0, 1)) {
            rc = bs_err_set(err, BS_EPROTO, "%s.rows[%d].value: expected a number in [0, 1] or "
                            "null", P, i);
        } else if (vnull != dnull || (!dnull && !s_sens_num(d, -1, 1))) {
            rc = bs_err_set(err, BS_EPROTO, "%s.rows[%d].delta: expected %s (value is %s)", P,
                            i, vnull ? "null" : "value - baseline, a number in [-1, 1]",
                            vnull ? "null" : "a number");
        } else if (!vnull && fabs(d->valuedouble - (v->valuedouble - baseline)) > 1e-6) {
            rc = bs_err_set(err, BS_EPROTO, "%s.rows[%d].delta: expected value - baseline "
                            "(%.9g), got %.9g", P, i, v->valuedouble - baseline,
                            d->valuedouble);
        } else if (er && !cJSON_IsString(er)) {
            rc = bs_err_set(err, BS_EPROTO, "%s.rows[%d].error: expected a string", P, i);
        }
        if (rc)
            break;
        rows[i].layer = layer;
        rows[i].precision = prec;
        rows[i].value = vnull ? NAN : v->valuedouble;
        rows[i].delta = dnull ? NAN : d->valuedouble;
        rows[i].error = er ? er->valuestring : NULL;
    }
    bs_free(seen);
    return rc;
}

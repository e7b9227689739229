/*
 * bs_polutil.c - shared policy pieces (see bs_polutil.h): objective vectors, constraint
 * violation, the candidate set, choice order, parameter reading and state codecs.
 *
 * The candidate set is open addressing with linear probing over FNV-1a hashes of the index
 * vector, grown at 50% load. Doubles are saved as base64 (libsodium's original variant) of
 * their little-endian binary64 bytes, so a loaded state is bit-identical to the saved one.
 */
#include "bs_polutil.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "bs_alloc.h"

/* ---- objectives and constraints ------------------------------------------------------------ */

int bs_pol_objectives(const bs_config_t *cfg, const bs_metrics_t *m, double *out)
{
    int all = 1;
    for (int i = 0; i < cfg->n_objectives; i++) {
        double v;
        if (!m || bs_metrics_get(m, cfg->objectives[i].metric, &v) != 0 || !isfinite(v)) {
            out[i] = INFINITY;
            all = 0;
            continue;
        }
        out[i] = cfg->objectives[i].goal > 0 ? -v : v;
    }
    return all;
}

double bs_pol_violation(const bs_config_t *cfg, const bs_metrics_t *m)
{
    double total = 0;
    for (int i = 0; i < cfg->n_constraints; i++) {
        const bs_constraint_t *c = &cfg->constraints[i];
        double v;
        if (!m || bs_metrics_get(m, c->metric, &v) != 0 || !isfinite(v)) {
            total += 1e9;
            continue;
        }
        if (!isnan(c->min) && v < c->min)
            total += (c->min - v) / (c->min != 0 ? fabs(c->min) : 1.0);
        if (!isnan(c->max) && v > c->max)
            total += (v - c->max) / (c->max != 0 ? fabs(c->max) : 1.0);
    }
    return total;
}

/* ---- candidate set ------------------------------------------------------------------------- */

static uint64_t s_hash(const int *c, int n)
{
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < n; i++) {
        uint32_t v = (uint32_t)c[i];
        for (int b = 0; b < 4; b++) {
            h ^= (v >> (8 * b)) & 0xffu;
            h *= 1099511628211ull;
        }
    }
    return h ^ (h >> 29);
}

static int s_alloc_slots(bs_candset_t *s, int64_t cap)
{
    size_t n = s->n ? (size_t)s->n : 1;
    s->keys = bs_malloc((size_t)cap * n * sizeof *s->keys);
    s->used = bs_calloc((size_t)cap, 1);
    if (!s->keys || !s->used) {
        bs_free(s->keys);
        bs_free(s->used);
        s->keys = NULL;
        s->used = NULL;
        return BS_ENOMEM;
    }
    s->cap = cap;
    return 0;
}

int bs_candset_init(bs_candset_t *s, int n_layers)
{
    memset(s, 0, sizeof *s);
    s->n = n_layers;
    return s_alloc_slots(s, 64);
}

static int64_t s_find(const bs_candset_t *s, const int *cand, int *found)
{
    size_t w = (size_t)s->n;
    int64_t i = (int64_t)(s_hash(cand, s->n) & (uint64_t)(s->cap - 1));
    while (s->used[i]) {
        if (memcmp(s->keys + (size_t)i * w, cand, w * sizeof *cand) == 0) {
            *found = 1;
            return i;
        }
        i = (i + 1) & (s->cap - 1);
    }
    *found = 0;
    return i;
}

int bs_candset_has(const bs_candset_t *s, const int *cand)
{
    int found;
    if (!s->cap)
        return 0;
    s_find(s, cand, &found);
    return found;
}

int bs_candset_add(bs_candset_t *s, const int *cand)
{
    int found;
    if (!s->cap)
        return BS_ENOMEM;
    if ((s->count + 1) * 2 > s->cap) {
        bs_candset_t big = *s;
        if (s_alloc_slots(&big, s->cap * 2))
            return BS_ENOMEM;
        big.count = 0;
        for (int64_t i = 0; i < s->cap; i++) {
            if (!s->used[i])
                continue;
            const int *k = s->keys + (size_t)i * (size_t)s->n;
            int64_t j = s_find(&big, k, &found);
            memcpy(big.keys + (size_t)j * (size_t)s->n, k, (size_t)s->n * sizeof *k);
            big.used[j] = 1;
            big.count++;
        }
        bs_free(s->keys);
        bs_free(s->used);
        *s = big;
    }
    int64_t i = s_find(s, cand, &found);
    if (found)
        return 0;
    memcpy(s->keys + (size_t)i * (size_t)s->n, cand, (size_t)s->n * sizeof *cand);
    s->used[i] = 1;
    s->count++;
    return 1;
}

void bs_candset_free(bs_candset_t *s)
{
    if (!s)
        return;
    bs_free(s->keys);
    bs_free(s->used);
    memset(s, 0, sizeof *s);
}

int bs_pol_put_candset(cJSON *obj, const char *key, const bs_candset_t *s)
{
    size_t w = s->n ? (size_t)s->n : 1;
    int *all = bs_malloc(sizeof *all * w * (size_t)(s->count + 1));
    if (!all)
        return BS_ENOMEM;
    int64_t k = 0;
    for (int64_t i = 0; i < s->cap; i++)
        if (s->used[i])
            memcpy(all + (size_t)(k++) * w, s->keys + (size_t)i * w, sizeof *all * (size_t)s->n);
    int rc = bs_pol_put_ints(obj, key, all, k * s->n);
    bs_free(all);
    return rc;
}

int bs_pol_get_candset(const cJSON *obj, const char *key, const bs_space_t *space,
                       bs_candset_t *s, bs_err_t *err)
{
    int n = space->n_layers;
    int64_t len;
    int rc = bs_pol_get_len(obj, key, &len, err);
    if (rc)
        return rc;
    if (n && len % n)
        return bs_err_set(err, BS_EPROTO, "policy state: key \"%s\": length %lld is not a "
                          "multiple of %d layers", key, (long long)len, n);
    int *all = bs_malloc(sizeof *all * (size_t)(len + 1));
    if (!all)
        return bs_err_set(err, BS_ENOMEM, "policy state: out of memory");
    if ((rc = bs_pol_get_ints(obj, key, all, len, err)))
        goto out;
    bs_candset_free(s);
    if (bs_candset_init(s, n)) {
        rc = bs_err_set(err, BS_ENOMEM, "policy state: out of memory");
        goto out;
    }
    for (int64_t i = 0; n && i < len / n; i++) {
        for (int l = 0; l < n; l++) {
            int c = all[i * n + l];
            if (c < 0 || c >= space->layers[l].n_choices) {
                rc = bs_err_set(err, BS_EPROTO, "policy state: key \"%s\": choice %d of layer "
                                "%d out of range", key, c, l);
                goto out;
            }
        }
        if (bs_candset_add(s, all + i * n) < 0) {
            rc = bs_err_set(err, BS_ENOMEM, "policy state: out of memory");
            goto out;
        }
    }
out:
    bs_free(all);
    return rc;
}

/* ---- choice order -------------------------------------------------------------------------- */

void bs_pol_choice_order(const bs_space_layer_t *l, int *order)
{
    int n = l->n_choices;
    for (int i = 0; i < n; i++)
        order[i] = i;
    for (int i = 1; i < n; i++) { /* insertion sort: at most 18 choices */
        int v = order[i], j = i;
        bs_prec_t pv = l->choices[v];
        while (j > 0) {
            bs_prec_t pj = l->choices[order[j - 1]];
            if (pj.w > pv.w || (pj.w == pv.w && pj.a >= pv.a))
                break;
            order[j] = order[j - 1];
            j--;
        }
        order[j] = v;
    }
}

/* ---- parameters ---------------------------------------------------------------------------- */

static void s_got(const cJSON *it, char *buf, size_t n)
{
    if (cJSON_IsNumber(it))
        snprintf(buf, n, "%.17g", it->valuedouble);
    else if (cJSON_IsString(it))
        snprintf(buf, n, "\"%.60s\"", it->valuestring);
    else if (cJSON_IsBool(it))
        snprintf(buf, n, "%s", cJSON_IsTrue(it) ? "true" : "false");
    else if (cJSON_IsNull(it))
        snprintf(buf, n, "null");
    else if (cJSON_IsArray(it))
        snprintf(buf, n, "an array");
    else
        snprintf(buf, n, "an object");
}

static const char *s_file(const bs_config_t *cfg)
{
    return cfg && cfg->path ? cfg->path : "campaign";
}

int bs_pol_param_int(const bs_config_t *cfg, const cJSON *params, const char *key, int64_t lo,
                     int64_t hi, int64_t def, int64_t *out, bs_err_t *err)
{
    const cJSON *it = params ? cJSON_GetObjectItemCaseSensitive(params, key) : NULL;
    if (!it) {
        *out = def;
        return 0;
    }
    double v = cJSON_IsNumber(it) ? it->valuedouble : NAN;
    if (!cJSON_IsNumber(it) || v != floor(v) || v < (double)lo || v > (double)hi) {
        char got[96];
        s_got(it, got, sizeof got);
        return bs_err_set(err, BS_ECONFIG,
                          "%s: policy.%s: expected an integer in %lld..%lld; got %s",
                          s_file(cfg), key, (long long)lo, (long long)hi, got);
    }
    *out = (int64_t)v;
    return 0;
}

int bs_pol_param_num(const bs_config_t *cfg, const cJSON *params, const char *key, double lo,
                     double hi, double def, double *out, bs_err_t *err)
{
    const cJSON *it = params ? cJSON_GetObjectItemCaseSensitive(params, key) : NULL;
    if (!it) {
        *out = def;
        return 0;
    }
    if (!cJSON_IsNumber(it) || !(it->valuedouble >= lo && it->valuedouble <= hi)) {
        char got[96];
        s_got(it, got, sizeof got);
        return bs_err_set(err, BS_ECONFIG, "%s: policy.%s: expected a number in %g..%g; got %s",
                          s_file(cfg), key, lo, hi, got);
    }
    *out = it->valuedouble;
    return 0;
}

int bs_pol_param_str(const bs_config_t *cfg, const cJSON *params, const char *key,
                     const char *const *allowed, const char *def, const char **out,
                     bs_err_t *err)
{
    const cJSON *it = params ? cJSON_GetObjectItemCaseSensitive(params, key) : NULL;
    if (!it) {
        *out = def;
        return 0;
    }
    if (cJSON_IsString(it) && it->valuestring)
        for (int i = 0; allowed[i]; i++)
            if (strcmp(allowed[i], it->valuestring) == 0) {
                *out = allowed[i];
                return 0;
            }
    char list[256] = "";
    for (int i = 0; allowed[i]; i++) {
        size_t l = strlen(list);
        snprintf(list + l, sizeof list - l, "%s%s", i ? ", " : "", allowed[i]);
    }
    char got[96];
    s_got(it, got, sizeof got);
    return bs_err_set(err, BS_ECONFIG, "%s: policy.%s: expected one of %s; got %s", s_file(cfg),
                      key, list, got);
}

/* ---- state codecs -------------------------------------------------------------------------- */

int bs_pol_put_f64s(cJSON *obj, const char *key, const double *v, int64_t n)
{
    size_t raw = (size_t)n * 8;
    unsigned char *bytes = bs_malloc(raw ? raw : 1);
    size_t b64len = sodium_base64_encoded_len(raw, sodium_base64_VARIANT_ORIGINAL);
    char *b64 = bs_malloc(b64len);
    int rc = BS_ENOMEM;
    if (bytes && b64) {
        for (int64_t i = 0; i < n; i++) {
            uint64_t u;
            memcpy(&u, &v[i], 8);
            for (int b = 0; b < 8; b++)
                bytes[i * 8 + b] = (unsigned char)(u >> (8 * b));
        }
        sodium_bin2base64(b64, b64len, bytes, raw, sodium_base64_VARIANT_ORIGINAL);
        if (cJSON_AddStringToObject(obj, key, b64))
            rc = 0;
    }
    bs_free(bytes);
    bs_free(b64);
    return rc;
}

static int s_b64_member(const cJSON *obj, const char *key, unsigned char **bytes, size_t *len,
                        bs_err_t *err)
{
    const cJSON *it = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    if (!cJSON_IsString(it) || !it->valuestring)
        return bs_err_set(err, BS_EPROTO, "policy state: key \"%s\": expected a base64 string",
                          key);
    size_t sl = strlen(it->valuestring);
    unsigned char *b = bs_malloc(sl ? sl : 1);
    if (!b)
        return bs_err_set(err, BS_ENOMEM, "policy state: out of memory");
    size_t got = 0;
    if (sodium_base642bin(b, sl ? sl : 1, it->valuestring, sl, NULL, &got, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        got % 8) {
        bs_free(b);
        return bs_err_set(err, BS_EPROTO,
                          "policy state: key \"%s\": expected base64 of 8-byte doubles", key);
    }
    *bytes = b;
    *len = got;
    return 0;
}

int bs_pol_get_len(const cJSON *obj, const char *key, int64_t *n, bs_err_t *err)
{
    const cJSON *it = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    if (cJSON_IsArray(it)) {
        *n = cJSON_GetArraySize(it);
        return 0;
    }
    unsigned char *b;
    size_t len;
    int rc = s_b64_member(obj, key, &b, &len, err);
    if (rc)
        return rc;
    bs_free(b);
    *n = (int64_t)(len / 8);
    return 0;
}

int bs_pol_get_f64s(const cJSON *obj, const char *key, double *v, int64_t n, bs_err_t *err)
{
    unsigned char *b;
    size_t len;
    int rc = s_b64_member(obj, key, &b, &len, err);
    if (rc)
        return rc;
    if (len != (size_t)n * 8) {
        bs_free(b);
        return bs_err_set(err, BS_EPROTO, "policy state: key \"%s\": expected %lld doubles, "
                          "got %zu", key, (long long)n, len / 8);
    }
    for (int64_t i = 0; i < n; i++) {
        uint64_t u = 0;
        for (int k = 0; k < 8; k++)
            u |= (uint64_t)b[i * 8 + k] << (8 * k);
        memcpy(&v[i], &u, 8);
    }
    bs_free(b);
    return 0;
}

int bs_pol_put_ints(cJSON *obj, const char *key, const int *v, int64_t n)
{
    cJSON *a = cJSON_AddArrayToObject(obj, key);
    if (!a)
        return BS_ENOMEM;
    for (int64_t i = 0; i < n; i++) {
        cJSON *it = cJSON_CreateNumber(v[i]);
        if (!it || !cJSON_AddItemToArray(a, it)) {
            cJSON_Delete(it);
            return BS_ENOMEM;
        }
    }
    return 0;
}

int bs_pol_get_ints(const cJSON *obj, const char *key, int *v, int64_t n, bs_err_t *err)
{
    const cJSON *a = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != n)
        return bs_err_set(err, BS_EPROTO, "policy state: key \"%s\": expected an array of %lld "
                          "integers", key, (long long)n);
    int64_t i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, a)
    {
        double d = cJSON_IsNumber(it) ? it->valuedouble : NAN;
        if (!(d == floor(d) && fabs(d) <= 2147483647.0))
            return bs_err_set(err, BS_EPROTO, "policy state: key \"%s\"[%lld]: expected an "
                              "integer", key, (long long)i);
        v[i++] = (int)d;
    }
    return 0;
}

int bs_pol_put_i64(cJSON *obj, const char *key, int64_t v)
{
    /* as a string: a JSON number loses integers above 2^53 */
    char t[24];
    snprintf(t, sizeof t, "%lld", (long long)v);
    return cJSON_AddStringToObject(obj, key, t) ? 0 : BS_ENOMEM;
}

int bs_pol_get_i64(const cJSON *obj, const char *key, int64_t lo, int64_t hi, int64_t *v,
                   bs_err_t *err)
{
    const cJSON *it = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    char *end = NULL;
    long long x = 0;
    if (cJSON_IsString(it) && it->valuestring && *it->valuestring)
        x = strtoll(it->valuestring, &end, 10);
    if (!end || *end || x < lo || x > hi)
        return bs_err_set(err, BS_EPROTO, "policy state: key \"%s\": expected an integer in "
                          "%lld..%lld", key, (long long)lo, (long long)hi);
    *v = x;
    return 0;
}

int bs_pol_put_rng(cJSON *obj, const char *key, const bs_rng_t *r)
{
    char t[4 * 17 + 1];
    for (int i = 0; i < 4; i++)
        snprintf(t + 16 * i, sizeof t - 16 * (size_t)i, "%016llx", (unsigned long long)r->s[i]);
    return cJSON_AddStringToObject(obj, key, t) ? 0 : BS_ENOMEM;
}

int bs_pol_get_rng(const cJSON *obj, const char *key, bs_rng_t *r, bs_err_t *err)
{
    const cJSON *it = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    const char *s = cJSON_IsString(it) ? it->valuestring : NULL;
    if (!s || strlen(s) != 64 || strspn(s, "0123456789abcdef") != 64)
        return bs_err_set(err, BS_EPROTO, "policy state: key \"%s\": expected 64 hex digits",
                          key);
    for (int i = 0; i < 4; i++) {
        char part[17];
        memcpy(part, s + 16 * i, 16);
        part[16] = 0;
        r->s[i] = strtoull(part, NULL, 16);
    }
    if (!(r->s[0] | r->s[1] | r->s[2] | r->s[3]))
        return bs_err_set(err, BS_EPROTO, "policy state: key \"%s\": all-zero generator", key);
    return 0;
}

double bs_pol_gauss(bs_rng_t *r)
{
    double u1 = bs_rng_uniform(r), u2 = bs_rng_uniform(r);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

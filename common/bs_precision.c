/*
 * bs_precision.c - parsing and formatting of precisions, specs and assignments.
 */
#include "bs_precision.h"
#include "bs_alloc.h"
#include "bs_util.h"

#include <stdio.h>
#include <string.h>

int bs_wbits_valid(int w)
{
    return w == 32 || w == 16 || (w >= 2 && w <= 8);
}

int bs_abits_valid(int a)
{
    return a == 32 || a == 8;
}

int bs_prec_valid(bs_prec_t p)
{
    return bs_wbits_valid(p.w) && bs_abits_valid(p.a);
}

int bs_prec_eq(bs_prec_t x, bs_prec_t y)
{
    return x.w == y.w && x.a == y.a;
}

static int s_uint(const char **s, int *out)
{
    int v = 0, digits = 0;
    while (**s >= '0' && **s <= '9' && digits < 3) {
        v = v * 10 + (**s - '0');
        (*s)++;
        digits++;
    }
    *out = v;
    return digits > 0;
}

int bs_prec_parse(const char *s, bs_prec_t *out)
{
    int w, a;
    if (!s || *s++ != 'w' || !s_uint(&s, &w) || *s++ != 'a' || !s_uint(&s, &a) || *s)
        return BS_EINVAL;
    bs_prec_t p = {(uint8_t)w, (uint8_t)a};
    if (!bs_prec_valid(p))
        return BS_EINVAL;
    *out = p;
    return 0;
}

void bs_prec_format(bs_prec_t p, char out[BS_PREC_TEXT_MAX])
{
    snprintf(out, BS_PREC_TEXT_MAX, "w%ua%u", (unsigned)p.w % 100u, (unsigned)p.a % 100u);
}

static const char *const s_wnames[33] = {
    [32] = "fp32", [16] = "fp16", [8] = "int8", [7] = "int7", [6] = "int6",
    [5] = "int5",  [4] = "int4",  [3] = "int3", [2] = "int2",
};

int bs_wprec_from_name(const char *name, uint8_t *w)
{
    for (int i = 0; i <= 32; i++) {
        if (s_wnames[i] && name && strcmp(s_wnames[i], name) == 0) {
            *w = (uint8_t)i;
            return 0;
        }
    }
    return BS_EINVAL;
}

int bs_aprec_from_name(const char *name, uint8_t *a)
{
    if (name && strcmp(name, "fp32") == 0)
        *a = 32;
    else if (name && strcmp(name, "int8") == 0)
        *a = 8;
    else
        return BS_EINVAL;
    return 0;
}

const char *bs_wprec_name(uint8_t w)
{
    return (w <= 32 && s_wnames[w]) ? s_wnames[w] : "?";
}

const char *bs_aprec_name(uint8_t a)
{
    return a == 32 ? "fp32" : a == 8 ? "int8" : "?";
}

char *bs_assign_format(const char *const *names, const bs_prec_t *precs, int n)
{
    bs_buf_t b = {0};
    for (int i = 0; i < n; i++) {
        char p[BS_PREC_TEXT_MAX];
        bs_prec_format(precs[i], p);
        bs_buf_printf(&b, "%s%s=%s", i ? "," : "", names[i], p);
    }
    if (b.oom) {
        bs_buf_free(&b);
        return NULL;
    }
    if (!b.data)
        return bs_strdup("");
    return b.data;
}

static void s_list_names(bs_err_t *err, const char *const *names, int n)
{
    if (!err)
        return;
    size_t len = strlen(err->msg);
    len += (size_t)snprintf(err->msg + len, sizeof err->msg - len, "; valid layer names:");
    for (int i = 0; i < n && len < sizeof err->msg - 1; i++)
        len += (size_t)snprintf(err->msg + len, sizeof err->msg - len, " %s", names[i]);
}

int bs_spec_apply(const char *spec, const char *const *names, int n, bs_prec_t *precs,
                  bs_err_t *err)
{
    if (!spec)
        return bs_err_set(err, BS_EINVAL, "empty precision spec");
    bs_prec_t *tmp = bs_malloc(sizeof *tmp * (size_t)(n > 0 ? n : 1));
    if (!tmp)
        return bs_err_set(err, BS_ENOMEM, "out of memory");
    memcpy(tmp, precs, sizeof *tmp * (size_t)n);
    int rc = 0;
    const char *p = spec;
    while (*p && rc == 0) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char entry[256];
        if (len == 0 || len >= sizeof entry) {
            rc = bs_err_set(err, BS_EINVAL, "precision spec: empty or overlong entry near '%.40s'",
                            p);
            break;
        }
        memcpy(entry, p, len);
        entry[len] = '\0';
        char *eq = strrchr(entry, '=');
        bs_prec_t prec;
        if (!eq || eq == entry) {
            rc = bs_err_set(err, BS_EINVAL,
                            "precision spec: entry '%s' is not PATTERN=wBaB (e.g. *=w8a8)", entry);
            break;
        }
        *eq = '\0';
        if (bs_prec_parse(eq + 1, &prec) != 0) {
            rc = bs_err_set(err, BS_EINVAL,
                            "precision spec: '%s' for '%s' is not a precision; expected wBaB "
                            "with B in 32,16,8..2 for weights and 32,8 for activations",
                            eq + 1, entry);
            break;
        }
        int matched = 0;
        for (int i = 0; i < n; i++) {
            if (strcmp(entry, names[i]) == 0 || bs_glob_match(entry, names[i])) {
                tmp[i] = prec;
                matched++;
            }
        }
        if (!matched) {
            rc = bs_err_set(err, BS_EINVAL, "precision spec: '%s' matches no layer", entry);
            s_list_names(err, names, n);
        }
        p = end ? end + 1 : p + len;
    }
    if (rc == 0)
        memcpy(precs, tmp, sizeof *tmp * (size_t)n);
    bs_free(tmp);
    return rc;
}

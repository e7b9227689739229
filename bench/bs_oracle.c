/*
 * bs_oracle.c - reading and writing oracle problem files (format in bs_oracle.h and
 * bench/README.md, "Oracle problem (issue 6)").
 *
 * Loading reads the whole file (bs_read_file) and walks it line by line with a line counter
 * for the messages. The first line must be the magic; then "# key: value" header lines, in
 * any order but each once (layer_ms once per layer, after "layers" and "choices"), then the
 * column line, which allocates the n_choices ^ n_layers rows; then exactly that many rows in
 * mixed-radix order. Each row is split into its five fields (the assignment in double quotes,
 * without escapes: assignments never hold a quote), and each field is checked against what its
 * position says it must be: the cand digits and the canonical assignment are rebuilt from the
 * row index and compared as text, numbers must parse completely and lie in range, and the
 * latency must equal base_ms + the chosen layer_ms entries within the rounding of the printed
 * digits. Anything else is BS_EDATA with "path:line: what was expected".
 *
 * Saving builds the text in a bs_buf_t and writes it atomically (bs_write_file). Accuracies
 * are printed with four decimals when that is exact (count / N with N dividing 10000), else
 * with ten significant digits; times with six decimals (nanoseconds).
 */
#include "bs_oracle.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bs_alloc.h"
#include "bs_util.h"

#define S_MAX_FILE ((size_t)512 << 20)
#define S_COLUMNS "cand,assignment,accuracy,latency_ms,weight_bytes"

void bs_oracle_free(bs_oracle_t *o)
{
    if (!o)
        return;
    for (int i = 0; o->layers && i < o->n_layers; i++)
        bs_free(o->layers[i]);
    bs_free(o->layers);
    bs_free(o->accuracy);
    bs_free(o->latency_ms);
    bs_free(o->weight_bytes);
    bs_free(o->layer_ms);
    bs_free(o->uniform_ms);
    bs_free(o->model);
    bs_free(o->data);
    bs_free(o->machine);
    memset(o, 0, sizeof *o);
}

int64_t bs_oracle_index(const bs_oracle_t *o, const int *cand)
{
    int64_t idx = 0;
    for (int i = 0; i < o->n_layers; i++) {
        if (cand[i] < 0 || cand[i] >= o->n_choices)
            return -1;
        idx = idx * o->n_choices + cand[i];
    }
    return idx;
}

int64_t bs_oracle_index_precs(const bs_oracle_t *o, const bs_prec_t *precs)
{
    int cand[BS_ORACLE_MAX_LAYERS];
    for (int i = 0; i < o->n_layers; i++) {
        cand[i] = -1;
        for (int k = 0; k < o->n_choices; k++)
            if (bs_prec_eq(o->choices[k], precs[i]))
                cand[i] = k;
        if (cand[i] < 0)
            return -1;
    }
    return bs_oracle_index(o, cand);
}

void bs_oracle_cand(const bs_oracle_t *o, int64_t index, int *cand)
{
    for (int i = o->n_layers - 1; i >= 0; i--) {
        cand[i] = (int)(index % o->n_choices);
        index /= o->n_choices;
    }
}

double bs_oracle_latency(const bs_oracle_t *o, const int *cand)
{
    double t = o->base_ms;
    for (int i = 0; i < o->n_layers; i++)
        t += o->layer_ms[i * o->n_choices + cand[i]];
    return t;
}

/* ---- text helpers --------------------------------------------------------------------------- */

/* "0-3-1" for cand into b. */
static void s_cand_text(bs_buf_t *b, const int *cand, int n)
{
    for (int i = 0; i < n; i++)
        bs_buf_printf(b, "%s%d", i ? "-" : "", cand[i]);
}

/* "conv1=w8a8,conv2=w4a8" for cand into b. */
static void s_assign_text(bs_buf_t *b, const bs_oracle_t *o, const int *cand)
{
    for (int i = 0; i < o->n_layers; i++) {
        char p[BS_PREC_TEXT_MAX];
        bs_prec_format(o->choices[cand[i]], p);
        bs_buf_printf(b, "%s%s=%s", i ? "," : "", o->layers[i], p);
    }
}

static void s_acc_text(bs_buf_t *b, double acc)
{
    double scaled = acc * 10000.0;
    if (fabs(scaled - nearbyint(scaled)) < 1e-6)
        bs_buf_printf(b, "%.4f", acc);
    else
        bs_buf_printf(b, "%.10g", acc);
}

static int s_name_ok(const char *s)
{
    if (!s || !*s)
        return 0;
    for (; *s; s++)
        if (isspace((unsigned char)*s) || *s == ',' || *s == '=' || *s == '"' || *s == '#')
            return 0;
    return 1;
}

/* ---- save ----------------------------------------------------------------------------------- */

static int s_check_struct(const bs_oracle_t *o, bs_err_t *err)
{
    if (!o || o->n_layers < 1 || o->n_layers > BS_ORACLE_MAX_LAYERS || o->n_choices < 1 ||
        o->n_choices > BS_ORACLE_MAX_CHOICES || !o->layers || !o->accuracy || !o->latency_ms ||
        !o->weight_bytes || !o->layer_ms)
        return bs_err_set(err, BS_EINVAL, "bs_oracle_save: incomplete oracle");
    int64_t n = 1;
    for (int i = 0; i < o->n_layers; i++) {
        if (!s_name_ok(o->layers[i]))
            return bs_err_set(err, BS_EINVAL, "bs_oracle_save: layer %d: a name without "
                              "spaces, ',', '=', '\"' or '#' expected", i);
        n *= o->n_choices;
        if (n > BS_ORACLE_MAX_CONFIGS)
            return bs_err_set(err, BS_EINVAL, "bs_oracle_save: more than %lld configurations",
                              (long long)BS_ORACLE_MAX_CONFIGS);
    }
    if (n != o->n_configs)
        return bs_err_set(err, BS_EINVAL, "bs_oracle_save: n_configs %lld, expected %lld",
                          (long long)o->n_configs, (long long)n);
    if (!o->model || !s_name_ok(o->model) || !bs_is_sha256_hex(o->sha256))
        return bs_err_set(err, BS_EINVAL, "bs_oracle_save: model name and sha256 expected");
    if (!o->data || !*o->data || strchr(o->data, '\n') || !o->machine || !*o->machine ||
        strchr(o->machine, '\n'))
        return bs_err_set(err, BS_EINVAL, "bs_oracle_save: data and machine: one line each");
    for (int k = 0; k < o->n_choices; k++)
        if (!bs_prec_valid(o->choices[k]))
            return bs_err_set(err, BS_EINVAL, "bs_oracle_save: choice %d is not a precision",
                              k);
    return 0;
}

int bs_oracle_save(const char *path, const bs_oracle_t *o, bs_err_t *err)
{
    int rc = s_check_struct(o, err);
    if (rc)
        return rc;
    bs_buf_t b = {0};
    bs_buf_printf(&b, "%s\n# model: %s sha256 %s\n# data: %s\n# machine: %s\n# layers:",
                  BS_ORACLE_MAGIC, o->model, o->sha256, o->data, o->machine);
    for (int i = 0; i < o->n_layers; i++)
        bs_buf_printf(&b, " %s", o->layers[i]);
    bs_buf_printf(&b, "\n# choices:");
    for (int k = 0; k < o->n_choices; k++) {
        char p[BS_PREC_TEXT_MAX];
        bs_prec_format(o->choices[k], p);
        bs_buf_printf(&b, " %s", p);
    }
    bs_buf_printf(&b, "\n# base_ms: %.6f\n", o->base_ms);
    for (int i = 0; i < o->n_layers; i++) {
        bs_buf_printf(&b, "# layer_ms: %s", o->layers[i]);
        for (int k = 0; k < o->n_choices; k++)
            bs_buf_printf(&b, " %.6f", o->layer_ms[i * o->n_choices + k]);
        bs_buf_printf(&b, "\n");
    }
    if (o->uniform_ms) {
        bs_buf_printf(&b, "# uniform_ms:");
        for (int k = 0; k < o->n_choices; k++)
            bs_buf_printf(&b, " %.6f", o->uniform_ms[k]);
        bs_buf_printf(&b, "\n");
    }
    bs_buf_printf(&b, "%s\n", S_COLUMNS);
    int cand[BS_ORACLE_MAX_LAYERS];
    for (int64_t r = 0; r < o->n_configs && !b.oom; r++) {
        bs_oracle_cand(o, r, cand);
        s_cand_text(&b, cand, o->n_layers);
        bs_buf_printf(&b, ",\"");
        s_assign_text(&b, o, cand);
        bs_buf_printf(&b, "\",");
        s_acc_text(&b, o->accuracy[r]);
        bs_buf_printf(&b, ",%.6f,%lld\n", o->latency_ms[r], (long long)o->weight_bytes[r]);
    }
    if (b.oom) {
        bs_buf_free(&b);
        return bs_err_set(err, BS_ENOMEM, "%s: out of memory writing the oracle", path);
    }
    rc = bs_write_file(path, b.data, b.len, err);
    bs_buf_free(&b);
    return rc;
}

/* ---- load ----------------------------------------------------------------------------------- */

typedef struct s_parser {
    const char *path;
    int line;
    bs_err_t *err;
    bs_oracle_t *o;
    int have_model, have_data, have_machine, have_base, have_columns;
    int n_layer_ms;
    char layer_seen[BS_ORACLE_MAX_LAYERS];
} s_parser_t;

static int s_bad(s_parser_t *p, const char *fmt, const char *what)
{
    return bs_err_set(p->err, BS_EDATA, "%s:%d: %s%s", p->path, p->line, fmt, what ? what : "");
}

/* A whole token (no surrounding text) as a finite double. */
static int s_parse_double(const char *s, size_t len, double *out)
{
    char tmp[64];
    if (len == 0 || len >= sizeof tmp)
        return -1;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    if (isspace((unsigned char)tmp[0]))
        return -1;
    char *end = NULL;
    errno = 0;
    double v = strtod(tmp, &end);
    if (errno || *end || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

/* Splits v (NUL-terminated, modified) on single spaces into at most max tokens. Returns the
 * count, or -1 when there are more than max or an empty token (two spaces, a trailing one). */
static int s_tokens(char *v, char **tok, int max)
{
    int n = 0;
    if (!*v)
        return 0;
    for (char *s = v;;) {
        char *sp = strchr(s, ' ');
        if (sp)
            *sp = '\0';
        if (!*s || n == max)
            return -1;
        tok[n++] = s;
        if (!sp)
            return n;
        s = sp + 1;
    }
}

static int s_floats(s_parser_t *p, const char *key, char **tok, int n, double *out)
{
    for (int k = 0; k < n; k++)
        if (s_parse_double(tok[k], strlen(tok[k]), &out[k]) || out[k] < 0)
            return bs_err_set(p->err, BS_EDATA, "%s:%d: %s: expected a number >= 0, got %s",
                              p->path, p->line, key, tok[k]);
    return 0;
}

static int s_dup(s_parser_t *p, const char *key)
{
    return bs_err_set(p->err, BS_EDATA, "%s:%d: \"%s\" given twice", p->path, p->line, key);
}

/* One "# key: value" line; v is the value, modifiable. */
static int s_header(s_parser_t *p, const char *key, char *v)
{
    bs_oracle_t *o = p->o;
    char *tok[BS_ORACLE_MAX_CHOICES + 2];
    int n;
    if (!strcmp(key, "model")) {
        if (p->have_model++)
            return s_dup(p, key);
        n = s_tokens(v, tok, 3);
        if (n != 3 || strcmp(tok[1], "sha256") || !s_name_ok(tok[0]) || !bs_is_sha256_hex(tok[2]))
            return s_bad(p, "model: expected \"<file> sha256 <64 lowercase hex digits>\"",
                         NULL);
        if (!(o->model = bs_strdup(tok[0])))
            return bs_err_set(p->err, BS_ENOMEM, "out of memory");
        memcpy(o->sha256, tok[2], 65);
    } else if (!strcmp(key, "data") || !strcmp(key, "machine")) {
        int *have = key[0] == 'd' ? &p->have_data : &p->have_machine;
        char **dst = key[0] == 'd' ? &o->data : &o->machine;
        if ((*have)++)
            return s_dup(p, key);
        if (!*v)
            return s_bad(p, key, ": expected a description");
        if (!(*dst = bs_strdup(v)))
            return bs_err_set(p->err, BS_ENOMEM, "out of memory");
    } else if (!strcmp(key, "layers")) {
        if (o->layers)
            return s_dup(p, key);
        char *names[BS_ORACLE_MAX_LAYERS + 1];
        n = s_tokens(v, names, BS_ORACLE_MAX_LAYERS);
        if (n < 1)
            return s_bad(p, "layers: expected 1 to 16 names separated by single spaces", NULL);
        if (!(o->layers = bs_calloc((size_t)n, sizeof *o->layers)))
            return bs_err_set(p->err, BS_ENOMEM, "out of memory");
        o->n_layers = n;
        for (int i = 0; i < n; i++) {
            if (!s_name_ok(names[i]))
                return s_bad(p, "layers: not a layer name: ", names[i]);
            for (int j = 0; j < i; j++)
                if (!strcmp(names[i], names[j]))
                    return s_bad(p, "layers: named twice: ", names[i]);
            if (!(o->layers[i] = bs_strdup(names[i])))
                return bs_err_set(p->err, BS_ENOMEM, "out of memory");
        }
    } else if (!strcmp(key, "choices")) {
        if (o->n_choices)
            return s_dup(p, key);
        n = s_tokens(v, tok, BS_ORACLE_MAX_CHOICES);
        if (n < 1)
            return s_bad(p, "choices: expected 1 to 18 precisions (w8a8 ...) separated by "
                            "single spaces", NULL);
        for (int k = 0; k < n; k++) {
            if (bs_prec_parse(tok[k], &o->choices[k]) != 0)
                return s_bad(p, "choices: not a precision (wBaB): ", tok[k]);
            for (int j = 0; j < k; j++)
                if (bs_prec_eq(o->choices[j], o->choices[k]))
                    return s_bad(p, "choices: listed twice: ", tok[k]);
        }
        o->n_choices = n;
    } else if (!strcmp(key, "base_ms")) {
        if (p->have_base++)
            return s_dup(p, key);
        if (s_parse_double(v, strlen(v), &o->base_ms))
            return s_bad(p, "base_ms: expected a number, got ", v);
    } else if (!strcmp(key, "layer_ms") || !strcmp(key, "uniform_ms")) {
        if (!o->layers || !o->n_choices)
            return s_bad(p, key, ": must come after \"layers\" and \"choices\"");
        int uni = key[0] == 'u';
        n = s_tokens(v, tok, o->n_choices + 1);
        if (n != o->n_choices + !uni) {
            char want[96];
            snprintf(want, sizeof want, "%s: expected %s%d numbers", key,
                     uni ? "" : "a layer name and ", o->n_choices);
            return s_bad(p, want, NULL);
        }
        if (uni) {
            if (o->uniform_ms)
                return s_dup(p, key);
            if (!(o->uniform_ms = bs_calloc((size_t)o->n_choices, sizeof *o->uniform_ms)))
                return bs_err_set(p->err, BS_ENOMEM, "out of memory");
            return s_floats(p, key, tok, n, o->uniform_ms);
        }
        int li = -1;
        for (int i = 0; i < o->n_layers; i++)
            if (!strcmp(o->layers[i], tok[0]))
                li = i;
        if (li < 0)
            return s_bad(p, "layer_ms: not one of the layers: ", tok[0]);
        if (p->layer_seen[li]++)
            return s_bad(p, "layer_ms: given twice for ", tok[0]);
        if (!o->layer_ms &&
            !(o->layer_ms = bs_calloc((size_t)(o->n_layers * o->n_choices), sizeof(double))))
            return bs_err_set(p->err, BS_ENOMEM, "out of memory");
        p->n_layer_ms++;
        return s_floats(p, key, tok + 1, o->n_choices, o->layer_ms + li * o->n_choices);
    } else {
        return s_bad(p, "unknown header key: ", key);
    }
    return 0;
}

/* The column line: everything in the header must be there; allocates the rows. */
static int s_columns(s_parser_t *p)
{
    bs_oracle_t *o = p->o;
    const char *missing = !p->have_model ? "model" : !p->have_data ? "data"
                          : !p->have_machine ? "machine" : !o->layers ? "layers"
                          : !o->n_choices ? "choices" : !p->have_base ? "base_ms"
                          : p->n_layer_ms < o->n_layers ? "layer_ms" : NULL;
    if (missing)
        return s_bad(p, "header incomplete before the column line: missing ", missing);
    int64_t n = 1;
    for (int i = 0; i < o->n_layers; i++) {
        n *= o->n_choices;
        if (n > BS_ORACLE_MAX_CONFIGS)
            return s_bad(p, "more configurations than the reader's limit of 4194304", NULL);
    }
    o->n_configs = n;
    o->accuracy = bs_malloc(sizeof *o->accuracy * (size_t)n);
    o->latency_ms = bs_malloc(sizeof *o->latency_ms * (size_t)n);
    o->weight_bytes = bs_malloc(sizeof *o->weight_bytes * (size_t)n);
    if (!o->accuracy || !o->latency_ms || !o->weight_bytes)
        return bs_err_set(p->err, BS_ENOMEM, "out of memory for %lld rows", (long long)n);
    p->have_columns = 1;
    return 0;
}

/* Row r (its text s, len bytes, no newline). */
static int s_row(s_parser_t *p, int64_t r, const char *s, size_t len)
{
    bs_oracle_t *o = p->o;
    if (r >= o->n_configs)
        return s_bad(p, "more rows than the header's layers and choices give", NULL);
    int cand[BS_ORACLE_MAX_LAYERS];
    bs_oracle_cand(o, r, cand);
    bs_buf_t want = {0};
    s_cand_text(&want, cand, o->n_layers);
    bs_buf_printf(&want, ",\"");
    s_assign_text(&want, o, cand);
    bs_buf_printf(&want, "\",");
    if (want.oom) {
        bs_buf_free(&want);
        return bs_err_set(p->err, BS_ENOMEM, "out of memory");
    }
    int rc = 0;
    if (len < want.len || memcmp(s, want.data, want.len) != 0) {
        rc = bs_err_set(p->err, BS_EDATA, "%s:%d: row %lld: expected it to start with %.300s",
                        p->path, p->line, (long long)r, want.data);
    }
    size_t off = want.len;
    bs_buf_free(&want);
    if (rc)
        return rc;
    const char *f[3];
    size_t fl[3];
    for (int k = 0; k < 3; k++) {
        const char *c = memchr(s + off, ',', len - off);
        size_t end = k < 2 ? (c ? (size_t)(c - s) : len) : len;
        if (k < 2 && !c)
            return s_bad(p, "expected 5 fields: cand,assignment,accuracy,latency_ms,"
                            "weight_bytes", NULL);
        f[k] = s + off;
        fl[k] = end - off;
        off = end + 1;
    }
    double acc, lat;
    if (s_parse_double(f[0], fl[0], &acc) || acc < 0 || acc > 1)
        return s_bad(p, "accuracy: expected a number in [0, 1]", NULL);
    if (s_parse_double(f[1], fl[1], &lat) || lat < 0)
        return s_bad(p, "latency_ms: expected a number >= 0", NULL);
    int64_t wb = 0;
    if (fl[2] == 0 || fl[2] > 18)
        return s_bad(p, "weight_bytes: expected an integer >= 0", NULL);
    for (size_t i = 0; i < fl[2]; i++) {
        if (!isdigit((unsigned char)f[2][i]))
            return s_bad(p, "weight_bytes: expected an integer >= 0", NULL);
        wb = wb * 10 + (f[2][i] - '0');
    }
    double model = bs_oracle_latency(o, cand);
    double tol = 1e-4 * (o->n_layers + 2) + 1e-6 * fabs(model);
    if (fabs(lat - model) > tol) {
        return bs_err_set(p->err, BS_EDATA, "%s:%d: latency_ms %.6f disagrees with base_ms + "
                          "layer_ms = %.6f", p->path, p->line, lat, model);
    }
    o->accuracy[r] = acc;
    o->latency_ms[r] = lat;
    o->weight_bytes[r] = wb;
    return 0;
}

static int s_parse(s_parser_t *p, char *text, size_t len)
{
    int64_t rows = 0;
    int rc = 0;
    char *s = text, *end = text + len;
    while (s < end && rc == 0) {
        char *nl = memchr(s, '\n', (size_t)(end - s));
        char *e = nl ? nl : end;
        p->line++;
        if (e > s && e[-1] == '\r')
            e--;
        *e = '\0';
        size_t n = (size_t)(e - s);
        if (p->line == 1) {
            if (strcmp(s, BS_ORACLE_MAGIC) != 0)
                rc = s_bad(p, "not an oracle file: expected the first line \"" BS_ORACLE_MAGIC
                              "\"", NULL);
        } else if (n == 0) {
            rc = s_bad(p, "empty line", NULL);
        } else if (!p->have_columns && s[0] == '#') {
            char *colon = strchr(s, ':');
            if (strncmp(s, "# ", 2) != 0 || !colon || (colon[1] != ' ' && colon[1] != '\0'))
                rc = s_bad(p, "expected a header line \"# key: value\"", NULL);
            else {
                *colon = '\0';
                rc = s_header(p, s + 2, colon[1] ? colon + 2 : colon + 1);
            }
        } else if (!p->have_columns) {
            if (strcmp(s, S_COLUMNS) != 0)
                rc = s_bad(p, "expected the column line \"" S_COLUMNS "\"", NULL);
            else
                rc = s_columns(p);
        } else {
            rc = s_row(p, rows++, s, n);
        }
        s = nl ? nl + 1 : end;
    }
    if (rc == 0 && p->line == 0)
        rc = bs_err_set(p->err, BS_EDATA, "%s: empty file", p->path);
    else if (rc == 0 && !p->have_columns)
        rc = s_bad(p, "no column line \"" S_COLUMNS "\" before the end", NULL);
    else if (rc == 0 && rows != p->o->n_configs)
        rc = bs_err_set(p->err, BS_EDATA, "%s:%d: %lld rows, expected %lld (%d choices ^ %d "
                        "layers)", p->path, p->line, (long long)rows,
                        (long long)p->o->n_configs, p->o->n_choices, p->o->n_layers);
    return rc;
}

int bs_oracle_load(const char *path, bs_oracle_t *o, bs_err_t *err)
{
    memset(o, 0, sizeof *o);
    char *text = NULL;
    size_t len = 0;
    int rc = bs_read_file(path, S_MAX_FILE, &text, &len, err);
    if (rc)
        return rc;
    if (memchr(text, '\0', len)) {
        bs_free(text);
        return bs_err_set(err, BS_EDATA, "%s: binary data (a NUL byte) in a text file", path);
    }
    s_parser_t p = {.path = path, .err = err, .o = o};
    rc = s_parse(&p, text, len);
    bs_free(text);
    if (rc)
        bs_oracle_free(o);
    return rc;
}

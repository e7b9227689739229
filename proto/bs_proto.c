/*
 * bs_proto.c - the message codec: type names, builders, and schema validation of JSON frames.
 *
 * Every message type in BS_MSG_MAP has one schema: a table of fields, each with a name, a kind
 * (string, one-of-these-strings, integer, number, number-or-null, boolean, object, array,
 * SHA-256 hex, array of strings), whether it is required, and its bounds (value range for
 * numbers, byte length for strings). Objects and arrays of objects may carry a nested schema
 * (JOB.files[], RESULT.error, RESULT.sensitivity.rows[]), validated the same way with a longer
 * path. A rule that ties fields together (a sensitivity JOB needs "precisions"; a good RESULT
 * carries "metrics" or "sensitivity") is a per-type check function run after the table.
 * proto/PROTOCOL.md documents exactly these tables; keep the two in step.
 *
 * bs_msg_decode() takes untrusted bytes: it checks the size, scans the text once for nesting
 * depth (before cJSON recurses into it), parses, rejects trailing bytes, then validates:
 * "type" first (so later errors can name it), then "v" (an unknown version is BS_EVERSION
 * before any other field is looked at, since another version may have other fields), then the
 * schema in table order. Keys the schema does not know are accepted and kept (a newer peer may
 * add fields); known keys must have their documented kind. Error messages name the message
 * type and the field path, say what was expected and what came: "JOB.files[2].sha256: expected
 * 64 lowercase hex digits, got a string".
 */
#include "bs_proto.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "bs_alloc.h"
#include "bs_precision.h"
#include "bs_util.h"

#define S_MAX_DEPTH 32               /* deeper JSON nesting is refused */
#define S_INT_MAX 9007199254740992.0 /* 2^53: the largest exactly representable integer */
#define S_PATH_MAX 96
#define S_TEXT_MAX 4096 /* ERROR.message, RESULT.error.message */

typedef enum s_kind {
    S_STRING,   /* JSON string; min/max bound its length in bytes */
    S_INT,      /* JSON number, integral, within [min, max] (never outside [0, 2^53]) */
    S_BOOL,     /* true or false */
    S_OBJECT,   /* JSON object; sub, if set, validates its members */
    S_ARRAY,    /* JSON array; sub, if set, makes each element an object validated by it */
    S_SHA256,   /* 64 lowercase hex digits */
    S_STRARRAY, /* array of strings; min/max bound each string's length */
    S_ENUM,     /* a string from choices */
    S_NUMBER,   /* finite JSON number within [min, max] */
    S_NUMNULL,  /* the same, or null (unknown) */
} s_kind_t;

typedef enum s_need {
    S_OPT,          /* may be absent */
    S_REQ,          /* must be present */
    S_REQ_IF_OK,    /* required when this message's "ok" is true (RESULT.metrics) */
    S_REQ_IF_NOTOK, /* required when this message's "ok" is false (RESULT.error) */
} s_need_t;

typedef struct s_field {
    const char *name; /* NULL ends a table */
    s_kind_t kind;
    s_need_t need;
    double min, max;           /* see s_kind_t */
    const struct s_field *sub; /* nested schema for S_OBJECT / S_ARRAY, or NULL */
    const char *const *choices; /* S_ENUM: the allowed strings, NULL-terminated */
} s_field_t;

/* Shorthands for the tables below. */
/* clang-format off */
#define S_STR(n, need, lo, hi) {n, S_STRING, need, lo, hi, NULL, NULL}
#define S_INTF(n, need, lo, hi) {n, S_INT, need, lo, hi, NULL, NULL}
#define S_U(n, need) {n, S_INT, need, 0, S_INT_MAX, NULL, NULL}
#define S_OBJ(n, need, sub) {n, S_OBJECT, need, 0, 0, sub, NULL}
#define S_ARR(n, need, sub) {n, S_ARRAY, need, 0, 0, sub, NULL}
#define S_SHA(n, need) {n, S_SHA256, need, 0, 0, NULL, NULL}
#define S_BOOLF(n, need) {n, S_BOOL, need, 0, 0, NULL, NULL}
#define S_STRS(n, need, lo, hi) {n, S_STRARRAY, need, lo, hi, NULL, NULL}
#define S_ENUMF(n, need, choices) {n, S_ENUM, need, 0, 0, NULL, choices}
#define S_NUM(n, need, lo, hi) {n, S_NUMBER, need, lo, hi, NULL, NULL}
#define S_NUMN(n, need, lo, hi) {n, S_NUMNULL, need, lo, hi, NULL, NULL}
#define S_END {NULL, S_STRING, S_OPT, 0, 0, NULL, NULL}

static const char *const s_job_kinds[] = {"evaluate", "sensitivity", NULL};

static const s_field_t s_hello[] = {
    S_STR("agent_id", S_REQ, 1, 64),
    S_STR("name", S_REQ, 0, 64),
    S_STR("version", S_REQ, 0, 32),
    S_OBJ("device", S_REQ, NULL),
    S_STRS("tags", S_REQ, 1, 64),
    S_STRS("backends", S_REQ, 1, 16),
    S_OBJ("precisions", S_OPT, NULL),
    S_STRS("sensors", S_OPT, 1, 64),
    S_END,
};

static const s_field_t s_welcome[] = {
    S_INTF("heartbeat_ms", S_REQ, 10, S_INT_MAX),
    S_INTF("liveness", S_REQ, 1, S_INT_MAX),
    S_STR("searcher", S_OPT, 0, 64),
    S_STR("campaign", S_OPT, 0, 64),
    S_END,
};

static const s_field_t s_heartbeat[] = {
    S_U("job_id", S_OPT),
    S_END,
};

static const s_field_t s_job_file[] = {
    S_STR("role", S_REQ, 1, 32),
    S_SHA("sha256", S_REQ),
    S_U("size", S_REQ),
    S_STR("name", S_REQ, 0, 255),
    S_END,
};

static const s_field_t s_job[] = {
    S_U("job_id", S_REQ),
    S_STR("campaign", S_REQ, 1, 64),
    S_U("attempt", S_REQ),
    S_U("lease_ms", S_REQ),
    S_STR("backend", S_REQ, 1, 15),
    S_STR("assignment", S_REQ, 1, 65536),
    S_ARR("files", S_REQ, s_job_file),
    S_OBJ("measure", S_REQ, NULL),
    S_OBJ("data", S_OPT, NULL),
    S_ENUMF("kind", S_OPT, s_job_kinds),
    S_STRS("precisions", S_OPT, 1, 7),
    S_END,
};

static const s_field_t s_result_error[] = {
    S_STR("code", S_REQ, 1, 32),
    S_STR("message", S_REQ, 0, S_TEXT_MAX),
    S_END,
};

static const s_field_t s_sens_row[] = {
    S_STR("layer", S_REQ, 1, 4096),
    S_STR("precision", S_REQ, 1, 7),
    S_NUMN("value", S_REQ, 0, 1),
    S_NUMN("delta", S_REQ, -1, 1),
    S_STR("error", S_OPT, 0, 1024),
    S_END,
};

static const s_field_t s_sens[] = {
    S_STR("metric", S_REQ, 0, 23),
    S_NUM("baseline", S_REQ, 0, 1),
    S_ARR("rows", S_REQ, s_sens_row),
    S_BOOLF("simulated", S_REQ),
    S_STR("backend", S_OPT, 0, 15),
    S_END,
};

/* "metrics" or "sensitivity" is required when ok is true: s_check_result. */
static const s_field_t s_result[] = {
    S_U("job_id", S_REQ),
    S_BOOLF("ok", S_REQ),
    S_OBJ("metrics", S_OPT, NULL),
    S_OBJ("sensitivity", S_OPT, s_sens),
    S_OBJ("error", S_REQ_IF_NOTOK, s_result_error),
    S_OBJ("timings", S_OPT, NULL),
    S_END,
};

static const s_field_t s_fetch[] = {
    S_SHA("sha256", S_REQ),
    S_U("offset", S_REQ),
    S_INTF("length", S_REQ, 1, BS_PROTO_CHUNK_SIZE),
    S_END,
};

static const s_field_t s_chunk[] = {
    S_SHA("sha256", S_REQ),
    S_U("offset", S_REQ),
    S_U("total", S_REQ),
    S_END,
};

static const s_field_t s_error[] = {
    S_STR("code", S_REQ, 1, 32),
    S_STR("message", S_REQ, 0, S_TEXT_MAX),
    S_STR("ref", S_OPT, 0, 32),
    S_U("job_id", S_OPT),
    S_END,
};

static const s_field_t s_bye[] = {
    S_STR("reason", S_OPT, 0, 256),
    S_END,
};

/* One schema per type, in BS_MSG_MAP order: s_schemas[BS_MSG_HELLO] is s_hello, etc. */
static const char *const s_names[] = {
#define BS__MSG_NAME(name) #name,
    BS_MSG_MAP(BS__MSG_NAME)
#undef BS__MSG_NAME
};

static const s_field_t *const s_schemas[] = {
    s_hello, s_welcome, s_heartbeat, s_job, s_result, s_fetch, s_chunk, s_error, s_bye,
};

/* clang-format on */

/* Rules between fields, run after a message's table has passed (so types are known good). */
typedef int (*s_check_fn)(const cJSON *msg, bs_err_t *err);

/* A JOB of kind "sensitivity" names the precisions to measure: 1 or more, each a valid wBaB
 * ("w8a8"), none twice. */
static int s_check_job(const cJSON *msg, bs_err_t *err)
{
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(msg, "kind");
    if (!kind || strcmp(kind->valuestring, "sensitivity") != 0)
        return 0;
    const cJSON *precs = cJSON_GetObjectItemCaseSensitive(msg, "precisions");
    if (!precs)
        return bs_err_set(err, BS_EPROTO, "JOB.precisions: required when kind is "
                          "\"sensitivity\"");
    if (cJSON_GetArraySize(precs) < 1)
        return bs_err_set(err, BS_EPROTO, "JOB.precisions: expected at least one precision "
                          "when kind is \"sensitivity\", got an empty array");
    int i = 0;
    for (const cJSON *p = precs->child; p; p = p->next, i++) {
        bs_prec_t pr;
        if (bs_prec_parse(p->valuestring, &pr) != 0)
            return bs_err_set(err, BS_EPROTO, "JOB.precisions[%d]: expected a precision such "
                              "as \"w8a8\" (weights 32, 16, 8..2; activations 32, 8), got "
                              "\"%.16s\"", i, p->valuestring);
        int j = 0;
        for (const cJSON *q = precs->child; q != p; q = q->next, j++)
            if (strcmp(q->valuestring, p->valuestring) == 0)
                return bs_err_set(err, BS_EPROTO, "JOB.precisions[%d]: expected each "
                                  "precision once, got \"%s\" again (as at [%d])", i,
                                  p->valuestring, j);
    }
    return 0;
}

/* ok: true needs what was measured: "metrics" (an evaluation) or "sensitivity" (a
 * sensitivity job), exactly one of them. */
static int s_check_result(const cJSON *msg, bs_err_t *err)
{
    if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(msg, "ok")))
        return 0;
    int m = cJSON_GetObjectItemCaseSensitive(msg, "metrics") != NULL;
    int s = cJSON_GetObjectItemCaseSensitive(msg, "sensitivity") != NULL;
    if (!m && !s)
        return bs_err_set(err, BS_EPROTO, "RESULT.metrics: required when ok is true (or "
                          "RESULT.sensitivity, for a sensitivity job)");
    if (m && s)
        return bs_err_set(err, BS_EPROTO, "RESULT.sensitivity: expected either metrics or "
                          "sensitivity, got both");
    return 0;
}

static const s_check_fn s_checks[] = {
    NULL, NULL, NULL, s_check_job, s_check_result, NULL, NULL, NULL, NULL,
};

_Static_assert(sizeof s_checks / sizeof s_checks[0] == BS_MSG__COUNT, "one check per type");
_Static_assert(sizeof s_names / sizeof s_names[0] == BS_MSG__COUNT, "one name per type");
_Static_assert(sizeof s_schemas / sizeof s_schemas[0] == BS_MSG__COUNT, "one schema per type");

const char *bs_msg_type_name(bs_msg_type_t t)
{
    if ((int)t < 0 || t >= BS_MSG__COUNT)
        return "?";
    return s_names[t];
}

int bs_msg_type_from_name(const char *name, bs_msg_type_t *out)
{
    if (!name)
        return BS_EPROTO;
    for (int i = 0; i < BS_MSG__COUNT; i++) {
        if (strcmp(name, s_names[i]) == 0) {
            if (out)
                *out = (bs_msg_type_t)i;
            return 0;
        }
    }
    return BS_EPROTO;
}

cJSON *bs_msg_new(bs_msg_type_t t)
{
    if ((int)t < 0 || t >= BS_MSG__COUNT)
        return NULL;
    cJSON *m = cJSON_CreateObject();
    if (!m)
        return NULL;
    if (!cJSON_AddStringToObject(m, "type", s_names[t]) ||
        !cJSON_AddNumberToObject(m, "v", BS_PROTO_VERSION)) {
        cJSON_Delete(m);
        return NULL;
    }
    return m;
}

cJSON *bs_msg_error(int code, const char *message, const char *ref_type)
{
    /* Longer texts are cut to what the schema allows, so the reply always validates. */
    char text[S_TEXT_MAX + 1];
    char ref[33];
    snprintf(text, sizeof text, "%s", message ? message : bs_strerror(code));
    cJSON *m = bs_msg_new(BS_MSG_ERROR);
    if (!m)
        return NULL;
    int bad = !cJSON_AddStringToObject(m, "code", bs_err_name(code));
    bad = bad || !cJSON_AddStringToObject(m, "message", text);
    if (!bad && ref_type) {
        snprintf(ref, sizeof ref, "%s", ref_type);
        bad = !cJSON_AddStringToObject(m, "ref", ref);
    }
    if (bad) {
        cJSON_Delete(m);
        return NULL;
    }
    return m;
}

/* What a JSON value is, for "got ..." in error messages. */
static void s_describe(const cJSON *it, char *out, size_t cap)
{
    if (cJSON_IsNumber(it))
        snprintf(out, cap, "%.15g", it->valuedouble);
    else if (cJSON_IsString(it))
        snprintf(out, cap, "a string");
    else if (cJSON_IsBool(it))
        snprintf(out, cap, "%s", cJSON_IsTrue(it) ? "true" : "false");
    else if (cJSON_IsNull(it))
        snprintf(out, cap, "null");
    else if (cJSON_IsArray(it))
        snprintf(out, cap, "an array");
    else if (cJSON_IsObject(it))
        snprintf(out, cap, "an object");
    else
        snprintf(out, cap, "an invalid value");
}

static int s_fail(bs_err_t *err, const char *path, const cJSON *it, const char *expected)
{
    char got[40];
    s_describe(it, got, sizeof got);
    return bs_err_set(err, BS_EPROTO, "%s: expected %s, got %s", path, expected, got);
}

static int s_is_int(const cJSON *it, double lo, double hi)
{
    if (!cJSON_IsNumber(it))
        return 0;
    double d = it->valuedouble;
    return isfinite(d) && d == floor(d) && d >= lo && d <= hi;
}

static int s_check_int(const cJSON *it, const char *path, double lo, double hi, bs_err_t *err)
{
    if (s_is_int(it, lo, hi))
        return 0;
    char what[80];
    if (hi >= S_INT_MAX)
        snprintf(what, sizeof what, "an integer >= %.0f", lo);
    else
        snprintf(what, sizeof what, "an integer in [%.0f, %.0f]", lo, hi);
    return s_fail(err, path, it, what);
}

static int s_check_str(const cJSON *it, const char *path, double lo, double hi, bs_err_t *err)
{
    if (cJSON_IsString(it) && it->valuestring) {
        size_t n = strlen(it->valuestring);
        if ((double)n >= lo && (double)n <= hi)
            return 0;
    }
    char what[80];
    snprintf(what, sizeof what, "a %sstring of at most %.0f bytes", lo > 0 ? "non-empty " : "",
             hi);
    if (cJSON_IsString(it) && it->valuestring) {
        return bs_err_set(err, BS_EPROTO, "%s: expected %s, got %zu bytes", path, what,
                          strlen(it->valuestring));
    }
    return s_fail(err, path, it, what);
}

/* Depth of a tree, counting the root as 1; stops counting past limit. */
static int s_tree_depth(const cJSON *it, int limit)
{
    if (!cJSON_IsObject(it) && !cJSON_IsArray(it))
        return 0;
    if (limit <= 0)
        return 1;
    int deepest = 0;
    for (const cJSON *c = it->child; c; c = c->next) {
        int d = s_tree_depth(c, limit - 1);
        if (d > deepest)
            deepest = d;
        if (deepest >= limit)
            break;
    }
    return 1 + deepest;
}

/* Field paths such as "JOB.files[2].sha256"; an absurdly long one is cut, never overrun. */
static void s_path(char out[S_PATH_MAX], const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void s_path(char out[S_PATH_MAX], const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, S_PATH_MAX, fmt, ap);
    va_end(ap);
}

static int s_validate_fields(const cJSON *obj, const s_field_t *schema, const char *prefix,
                             bs_err_t *err);

static int s_validate_field(const cJSON *obj, const s_field_t *f, const char *prefix,
                            bs_err_t *err)
{
    char path[S_PATH_MAX];
    s_path(path, "%s.%s", prefix, f->name);
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, f->name);
    if (!it) {
        int required = f->need == S_REQ;
        if (f->need == S_REQ_IF_OK || f->need == S_REQ_IF_NOTOK) {
            int ok = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(obj, "ok"));
            required = (f->need == S_REQ_IF_OK) == ok;
            if (required)
                return bs_err_set(err, BS_EPROTO, "%s: required when ok is %s", path,
                                  ok ? "true" : "false");
        }
        if (required)
            return bs_err_set(err, BS_EPROTO, "%s: required field is missing", path);
        return 0;
    }
    switch (f->kind) {
    case S_STRING:
        return s_check_str(it, path, f->min, f->max, err);
    case S_INT:
        return s_check_int(it, path, f->min, f->max, err);
    case S_BOOL:
        return cJSON_IsBool(it) ? 0 : s_fail(err, path, it, "true or false");
    case S_SHA256:
        if (cJSON_IsString(it) && bs_is_sha256_hex(it->valuestring))
            return 0;
        return s_fail(err, path, it, "64 lowercase hex digits");
    case S_OBJECT:
        if (!cJSON_IsObject(it))
            return s_fail(err, path, it, "an object");
        return f->sub ? s_validate_fields(it, f->sub, path, err) : 0;
    case S_ARRAY: {
        if (!cJSON_IsArray(it))
            return s_fail(err, path, it, "an array");
        if (!f->sub)
            return 0;
        int i = 0;
        for (const cJSON *el = it->child; el; el = el->next, i++) {
            char elpath[S_PATH_MAX];
            s_path(elpath, "%s[%d]", path, i);
            if (!cJSON_IsObject(el))
                return s_fail(err, elpath, el, "an object");
            int rc = s_validate_fields(el, f->sub, elpath, err);
            if (rc)
                return rc;
        }
        return 0;
    }
    case S_ENUM:
        if (cJSON_IsString(it) && it->valuestring)
            for (const char *const *c = f->choices; *c; c++)
                if (strcmp(*c, it->valuestring) == 0)
                    return 0;
        {
            char what[128];
            size_t n = 0;
            what[0] = '\0';
            for (const char *const *c = f->choices; *c && n + 1 < sizeof what; c++)
                n += (size_t)snprintf(what + n, sizeof what - n, "%s\"%s\"",
                                      c == f->choices ? "one of " : ", ", *c);
            if (cJSON_IsString(it) && it->valuestring)
                return bs_err_set(err, BS_EPROTO, "%s: expected %s, got \"%.32s\"", path,
                                  what, it->valuestring);
            return s_fail(err, path, it, what);
        }
    case S_NUMBER:
    case S_NUMNULL:
        if (f->kind == S_NUMNULL && cJSON_IsNull(it))
            return 0;
        if (cJSON_IsNumber(it) && isfinite(it->valuedouble) && it->valuedouble >= f->min &&
            it->valuedouble <= f->max)
            return 0;
        {
            char what[80];
            snprintf(what, sizeof what, "a number in [%g, %g]%s", f->min, f->max,
                     f->kind == S_NUMNULL ? " or null" : "");
            return s_fail(err, path, it, what);
        }
    case S_STRARRAY: {
        if (!cJSON_IsArray(it))
            return s_fail(err, path, it, "an array of strings");
        int i = 0;
        for (const cJSON *el = it->child; el; el = el->next, i++) {
            char elpath[S_PATH_MAX];
            s_path(elpath, "%s[%d]", path, i);
            int rc = s_check_str(el, elpath, f->min, f->max, err);
            if (rc)
                return rc;
        }
        return 0;
    }
    }
    return bs_err_set(err, BS_EPROTO, "%s: unknown field kind", path); /* not reached */
}

static int s_validate_fields(const cJSON *obj, const s_field_t *schema, const char *prefix,
                             bs_err_t *err)
{
    for (const s_field_t *f = schema; f->name; f++) {
        int rc = s_validate_field(obj, f, prefix, err);
        if (rc)
            return rc;
    }
    return 0;
}

int bs_msg_validate(const cJSON *msg, int *type, bs_err_t *err)
{
    if (type)
        *type = -1;
    if (!cJSON_IsObject(msg)) {
        char got[40];
        s_describe(msg, got, sizeof got);
        return bs_err_set(err, BS_EPROTO, "message: expected a JSON object, got %s",
                          msg ? got : "nothing");
    }
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(msg, "type");
    if (!t)
        return bs_err_set(err, BS_EPROTO, "message.type: required field is missing");
    if (!cJSON_IsString(t) || !t->valuestring)
        return s_fail(err, "message.type", t, "a string naming a message type");
    bs_msg_type_t mt;
    if (bs_msg_type_from_name(t->valuestring, &mt) != 0) {
        return bs_err_set(err, BS_EPROTO, "message.type: unknown message type \"%.40s\"",
                          t->valuestring);
    }
    if (type)
        *type = (int)mt;
    const char *name = s_names[mt];
    char path[S_PATH_MAX];
    s_path(path, "%s.v", name);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(msg, "v");
    if (!v)
        return bs_err_set(err, BS_EPROTO, "%s: required field is missing", path);
    if (!s_is_int(v, 0, S_INT_MAX))
        return s_fail(err, path, v, "an integer");
    if (v->valuedouble != BS_PROTO_VERSION) {
        return bs_err_set(err, BS_EVERSION,
                          "%s: protocol version %.0f is not supported (this build speaks %d)",
                          path, v->valuedouble, BS_PROTO_VERSION);
    }
    if (s_tree_depth(msg, S_MAX_DEPTH + 1) > S_MAX_DEPTH) {
        return bs_err_set(err, BS_EPROTO, "%s: JSON nested deeper than %d levels", name,
                          S_MAX_DEPTH);
    }
    int rc = s_validate_fields(msg, s_schemas[mt], name, err);
    if (rc == 0 && s_checks[mt])
        rc = s_checks[mt](msg, err);
    return rc;
}

/* Nesting depth of JSON text without parsing it: 1 when no object or array nests in the root.
 * Returns as soon as the depth exceeds limit. Brackets inside strings do not count; on
 * malformed text the count is meaningless, but then the parse fails anyway. */
static int s_text_too_deep(const char *p, size_t n, int limit)
{
    int depth = 0, in_str = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '{' || c == '[') {
            if (++depth > limit)
                return 1;
        } else if ((c == '}' || c == ']') && depth > 0) {
            depth--;
        }
    }
    return 0;
}

static int s_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int bs_msg_decode(const void *buf, size_t len, cJSON **out, int *type, bs_err_t *err)
{
    if (out)
        *out = NULL;
    if (type)
        *type = -1;
    if (len > BS_PROTO_MAX_JSON) {
        return bs_err_set(err, BS_ETOOBIG, "message: %zu bytes exceed the %u-byte limit", len,
                          BS_PROTO_MAX_JSON);
    }
    if (!buf || len == 0)
        return bs_err_set(err, BS_EPROTO, "message: empty frame, expected a JSON object");
    const char *text = buf;
    if (s_text_too_deep(text, len, S_MAX_DEPTH))
        return bs_err_set(err, BS_EPROTO, "message: JSON nested deeper than %d levels",
                          S_MAX_DEPTH);
    const char *end = NULL;
    cJSON *msg = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!msg) {
        /* cJSON does not tell OOM from a syntax error; the allocator does (once it fails,
         * the next request fails too, in practice and under bs_alloc_fail_after). */
        void *probe = bs_malloc(64);
        if (!probe)
            return bs_err_set(err, BS_ENOMEM, "message: out of memory while parsing");
        bs_free(probe);
        size_t at = end && end >= text && end <= text + len ? (size_t)(end - text) : 0;
        return bs_err_set(err, BS_EPROTO, "message: not valid JSON (error near byte %zu)", at);
    }
    size_t used = end && end >= text && end <= text + len ? (size_t)(end - text) : len;
    for (size_t i = used; i < len; i++) {
        if (!s_is_space(text[i])) {
            cJSON_Delete(msg);
            return bs_err_set(err, BS_EPROTO,
                              "message: unexpected bytes after the JSON value at byte %zu", i);
        }
    }
    int rc = bs_msg_validate(msg, type, err);
    if (rc || !out)
        cJSON_Delete(msg);
    else
        *out = msg;
    return rc;
}

char *bs_msg_encode(const cJSON *msg, size_t *len)
{
    char *text = msg ? cJSON_PrintUnformatted(msg) : NULL;
    if (len)
        *len = text ? strlen(text) : 0;
    return text;
}

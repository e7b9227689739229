/*
 * test_proto.c - the message codec and the ZeroMQ framing.
 *
 * Codec tests start from one valid sample per message type (the examples of PROTOCOL.md),
 * round-trip each, then break one thing at a time and check both the code and that the message
 * names the type and field. Wire tests run a real ROUTER and DEALER over inproc:// (and tcp://
 * on loopback where libzmq's size limit matters) and check routing ids, payload frames, and
 * that a malformed message is consumed whole so the next good one still arrives. The
 * examples in PROTOCOL.md are decoded too, so the document and the schema cannot drift apart.
 */
#include "bs_test.h"

#include <math.h>
#include <unistd.h>
#include <zmq.h>

#include "bs_alloc.h"
#include "bs_metrics.h"
#include "bs_proto.h"
#include "bs_util.h"

#define SHA_A "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
#define SHA_B "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"

/* One valid example per type; the PROTOCOL.md examples, abridged. */
static const char *const s_samples[] = {
    "{\"type\":\"HELLO\",\"v\":1,\"agent_id\":\"3f9c2a7e\",\"name\":\"orin-1\","
    "\"version\":\"0.1.0\",\"device\":{\"arch\":\"aarch64\",\"cpu\":\"Cortex-A78AE\","
    "\"cores\":12,\"mem_bytes\":68719476736,\"os\":\"Linux\",\"kernel\":\"5.15.0\"},"
    "\"tags\":[\"jetson\",\"orin\"],\"backends\":[\"engine\",\"sim\"],"
    "\"precisions\":{\"weights\":[32,16,8,4,2],\"activations\":[32,8]},"
    "\"sensors\":[\"ina3221\"]}",
    "{\"type\":\"WELCOME\",\"v\":1,\"heartbeat_ms\":1000,\"liveness\":5,"
    "\"searcher\":\"bitscout 0.1.0\",\"campaign\":\"resnet-orin\"}",
    "{\"type\":\"HEARTBEAT\",\"v\":1,\"job_id\":42}",
    "{\"type\":\"JOB\",\"v\":1,\"job_id\":42,\"campaign\":\"resnet-orin\",\"attempt\":1,"
    "\"lease_ms\":300000,\"backend\":\"sim\",\"assignment\":\"conv1=w8a8,fc=w4a32\","
    "\"files\":[{\"role\":\"model\",\"sha256\":\"" SHA_A "\",\"size\":1024,"
    "\"name\":\"m.onnx\"},{\"role\":\"eval_images\",\"sha256\":\"" SHA_B "\",\"size\":9,"
    "\"name\":\"x.npy\"},{\"role\":\"eval_labels\",\"sha256\":\"" SHA_B "\",\"size\":9,"
    "\"name\":\"y.npy\"}],"
    "\"measure\":{\"backend\":\"sim\",\"sim_delay_ms\":5,\"sim_fail_rate\":0.1},"
    "\"data\":{\"preprocess\":{\"scale\":0.0039},\"eval_count\":100,\"calib_count\":0}}",
    "{\"type\":\"RESULT\",\"v\":1,\"job_id\":42,\"ok\":true,\"metrics\":{\"accuracy\":0.75,"
    "\"metric\":\"top1\",\"latency_ms\":{\"min\":1.5,\"median\":1.6,\"mean\":1.7,\"p90\":1.9,"
    "\"p99\":2.5,\"std\":0.1,\"cv\":0.06,\"runs\":50},\"weight_bytes\":1000,"
    "\"arena_bytes\":2000,\"peak_rss_bytes\":null,\"energy\":{\"joules\":null,"
    "\"source\":\"none\",\"reason\":\"no sensor\"},\"simulated\":true,\"backend\":\"sim\"},"
    "\"timings\":{\"fetch_ms\":3,\"load_ms\":10,\"run_ms\":90}}",
    "{\"type\":\"FETCH\",\"v\":1,\"sha256\":\"" SHA_A "\",\"offset\":0,\"length\":524288}",
    "{\"type\":\"CHUNK\",\"v\":1,\"sha256\":\"" SHA_A "\",\"offset\":0,\"total\":1024}",
    "{\"type\":\"ERROR\",\"v\":1,\"code\":\"EHELLO\",\"message\":\"send HELLO first\","
    "\"ref\":\"HEARTBEAT\",\"job_id\":7}",
    "{\"type\":\"BYE\",\"v\":1,\"reason\":\"shutting down\"}",
};

/* A sensitivity JOB and its RESULT (PROTOCOL.md, "Sensitivity jobs"). */
static const char s_sens_job[] =
    "{\"type\":\"JOB\",\"v\":1,\"job_id\":43,\"campaign\":\"resnet-orin\",\"attempt\":1,"
    "\"lease_ms\":300000,\"backend\":\"sim\",\"kind\":\"sensitivity\","
    "\"precisions\":[\"w8a8\",\"w4a32\"],\"assignment\":\"conv1=w32a32,fc=w32a32\","
    "\"files\":[{\"role\":\"model\",\"sha256\":\"" SHA_A "\",\"size\":1024,"
    "\"name\":\"m.onnx\"}],\"measure\":{\"backend\":\"sim\"},"
    "\"data\":{\"eval_count\":50,\"calib_count\":0,"
    "\"quantization\":{\"weights\":\"mse\",\"activations\":\"minmax\"}}}";

static const char s_sens_result[] =
    "{\"type\":\"RESULT\",\"v\":1,\"job_id\":43,\"ok\":true,"
    "\"sensitivity\":{\"metric\":\"top1\",\"baseline\":0.91,\"simulated\":true,"
    "\"backend\":\"sim\",\"rows\":["
    "{\"layer\":\"conv1\",\"precision\":\"w8a8\",\"value\":0.905,\"delta\":-0.005},"
    "{\"layer\":\"conv1\",\"precision\":\"w4a32\",\"value\":null,\"delta\":null,"
    "\"error\":\"EMODEL: cannot quantize\"},"
    "{\"layer\":\"fc\",\"precision\":\"w8a8\",\"value\":0.91,\"delta\":0},"
    "{\"layer\":\"fc\",\"precision\":\"w4a32\",\"value\":0.87,\"delta\":-0.04}]},"
    "\"timings\":{\"fetch_ms\":3,\"load_ms\":10,\"run_ms\":900}}";

static const char s_result_fail[] =
    "{\"type\":\"RESULT\",\"v\":1,\"job_id\":42,\"ok\":false,"
    "\"error\":{\"code\":\"EBUSY\",\"message\":\"already running job 41\"}}";

static cJSON *s_parse(const char *text)
{
    cJSON *m = cJSON_Parse(text);
    if (!m)
        bs_test_fail(__FILE__, __LINE__, "test sample is not JSON: %s", text);
    return m;
}

static cJSON *s_sample(bs_msg_type_t t)
{
    return s_parse(s_samples[t]);
}

/* Encodes m, decodes the text; deletes m. Returns the decode code; err/type filled. */
static int s_check(cJSON *m, int *type, bs_err_t *err)
{
    size_t n = 0;
    char *text = bs_msg_encode(m, &n);
    ASSERT(text != NULL);
    cJSON *out = NULL;
    int t = -2;
    bs_err_clear(err);
    int rc = bs_msg_decode(text, n, &out, &t, err);
    if (rc == 0)
        ASSERT(out != NULL);
    else
        ASSERT(out == NULL);
    cJSON_Delete(out);
    bs_free(text);
    cJSON_Delete(m);
    if (type)
        *type = t;
    return rc;
}

static int s_decode_text(const char *text, int *type, bs_err_t *err)
{
    cJSON *out = NULL;
    bs_err_clear(err);
    int rc = bs_msg_decode(text, strlen(text), &out, type, err);
    cJSON_Delete(out);
    return rc;
}

/* Sets key of obj (replacing it) to a value given as JSON text. */
static void s_set(cJSON *obj, const char *key, const char *json)
{
    cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
    cJSON_AddItemToObject(obj, key, s_parse(json));
}

static void s_expect(cJSON *m, int code, const char *needle)
{
    bs_err_t err;
    int rc = s_check(m, NULL, &err);
    if (rc != code)
        bs_test_fail(__FILE__, __LINE__, "expected %s, got %s (%s); wanted \"%s\"",
                     bs_err_name(code), bs_err_name(rc), err.msg, needle);
    ASSERT_EQ(code, err.code);
    ASSERT_CONTAINS(err.msg, needle);
}

BS_TEST(type_names)
{
    for (int i = 0; i < BS_MSG__COUNT; i++) {
        bs_msg_type_t t;
        ASSERT_OK(bs_msg_type_from_name(bs_msg_type_name((bs_msg_type_t)i), &t));
        ASSERT_EQ(i, t);
    }
    ASSERT_STR_EQ("HELLO", bs_msg_type_name(BS_MSG_HELLO));
    ASSERT_STR_EQ("BYE", bs_msg_type_name(BS_MSG_BYE));
    ASSERT_STR_EQ("?", bs_msg_type_name(BS_MSG__COUNT));
    ASSERT_STR_EQ("?", bs_msg_type_name((bs_msg_type_t)-1));
    bs_msg_type_t t = BS_MSG_BYE;
    ASSERT_EQ(BS_EPROTO, bs_msg_type_from_name("hello", &t));
    ASSERT_EQ(BS_EPROTO, bs_msg_type_from_name(NULL, &t));
    ASSERT_EQ(BS_MSG_BYE, t);
    ASSERT(bs_msg_new(BS_MSG__COUNT) == NULL);
}

BS_TEST(roundtrip_every_type)
{
    ASSERT_EQ(BS_MSG__COUNT, (int)(sizeof s_samples / sizeof s_samples[0]));
    for (int i = 0; i <= BS_MSG__COUNT; i++) {
        const char *text = i < BS_MSG__COUNT ? s_samples[i] : s_result_fail;
        int want = i < BS_MSG__COUNT ? i : BS_MSG_RESULT;
        bs_err_t err;
        cJSON *a = NULL, *b = NULL;
        int type = -1;
        int rc = bs_msg_decode(text, strlen(text), &a, &type, &err);
        if (rc)
            bs_test_fail(__FILE__, __LINE__, "sample %d: %s", i, err.msg);
        ASSERT_EQ(want, type);
        size_t n1 = 0, n2 = 0;
        char *t1 = bs_msg_encode(a, &n1);
        ASSERT(t1 != NULL);
        ASSERT_EQ(strlen(t1), n1);
        type = -1;
        ASSERT_OK(bs_msg_decode(t1, n1, &b, &type, &err));
        ASSERT_EQ(want, type);
        ASSERT(cJSON_Compare(a, b, 1));
        char *t2 = bs_msg_encode(b, &n2);
        ASSERT_STR_EQ(t1, t2);
        /* The sample text is compact already, so the encoding reproduces it. */
        ASSERT_STR_EQ(text, t1);
        ASSERT_OK(bs_msg_validate(b, &type, &err));
        ASSERT_EQ(want, type);
        bs_free(t1);
        bs_free(t2);
        cJSON_Delete(a);
        cJSON_Delete(b);
    }
}

BS_TEST(build_and_read_back)
{
    cJSON *m = bs_msg_new(BS_MSG_FETCH);
    ASSERT(m != NULL);
    cJSON_AddStringToObject(m, "sha256", SHA_A);
    cJSON_AddNumberToObject(m, "offset", 1048576);
    cJSON_AddNumberToObject(m, "length", BS_PROTO_CHUNK_SIZE);
    bs_err_t err;
    int type = -1;
    ASSERT_OK(bs_msg_validate(m, &type, &err));
    ASSERT_EQ(BS_MSG_FETCH, type);
    size_t n = 0;
    char *text = bs_msg_encode(m, &n);
    cJSON *back = NULL;
    ASSERT_OK(bs_msg_decode(text, n, &back, &type, &err));
    ASSERT_STR_EQ("FETCH", cJSON_GetObjectItemCaseSensitive(back, "type")->valuestring);
    ASSERT_EQ(BS_PROTO_VERSION, cJSON_GetObjectItemCaseSensitive(back, "v")->valuedouble);
    ASSERT_STR_EQ(SHA_A, cJSON_GetObjectItemCaseSensitive(back, "sha256")->valuestring);
    ASSERT_EQ(1048576, cJSON_GetObjectItemCaseSensitive(back, "offset")->valuedouble);
    bs_free(text);
    cJSON_Delete(back);
    cJSON_Delete(m);

    /* A message with only type and v is complete for the types with no required field. */
    int empty_ok[] = {BS_MSG_HEARTBEAT, BS_MSG_BYE};
    for (int i = 0; i < 2; i++) {
        cJSON *e = bs_msg_new((bs_msg_type_t)empty_ok[i]);
        ASSERT_OK(bs_msg_validate(e, &type, &err));
        ASSERT_EQ(empty_ok[i], type);
        cJSON_Delete(e);
    }
    cJSON *w = bs_msg_new(BS_MSG_WELCOME);
    ASSERT_EQ(BS_EPROTO, bs_msg_validate(w, &type, &err));
    ASSERT_CONTAINS(err.msg, "WELCOME.heartbeat_ms: required field is missing");
    cJSON_Delete(w);
    ASSERT_EQ(BS_EPROTO, bs_msg_validate(NULL, &type, &err));
    ASSERT_EQ(-1, type);
}

BS_TEST(unknown_keys_are_kept)
{
    cJSON *m = s_sample(BS_MSG_HEARTBEAT);
    s_set(m, "load", "{\"cpu\":[0.5,0.25],\"note\":\"from a newer agent\"}");
    size_t n = 0;
    char *text = bs_msg_encode(m, &n);
    cJSON *out = NULL;
    bs_err_t err;
    ASSERT_OK(bs_msg_decode(text, n, &out, NULL, &err));
    ASSERT(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(out, "load")));
    bs_free(text);
    cJSON_Delete(out);
    cJSON_Delete(m);
    /* Optional fields may be absent. */
    m = s_sample(BS_MSG_JOB);
    cJSON_DeleteItemFromObjectCaseSensitive(m, "data");
    ASSERT_OK(s_check(m, NULL, &err));
    m = s_sample(BS_MSG_HELLO);
    cJSON_DeleteItemFromObjectCaseSensitive(m, "precisions");
    cJSON_DeleteItemFromObjectCaseSensitive(m, "sensors");
    s_set(m, "tags", "[]");
    ASSERT_OK(s_check(m, NULL, &err));
}

BS_TEST(job_missing_each_required_field)
{
    static const char *const req[] = {"job_id",     "campaign", "attempt", "lease_ms",
                                      "backend",    "assignment", "files", "measure"};
    for (size_t i = 0; i < sizeof req / sizeof req[0]; i++) {
        cJSON *m = s_sample(BS_MSG_JOB);
        cJSON_DeleteItemFromObjectCaseSensitive(m, req[i]);
        char needle[64];
        snprintf(needle, sizeof needle, "JOB.%s: required field is missing", req[i]);
        bs_err_t err;
        int type = -1;
        ASSERT_EQ(BS_EPROTO, s_check(m, &type, &err));
        ASSERT_EQ(BS_MSG_JOB, type);
        ASSERT_CONTAINS(err.msg, needle);
    }
    static const char *const file_req[] = {"role", "sha256", "size", "name"};
    for (size_t i = 0; i < 4; i++) {
        cJSON *m = s_sample(BS_MSG_JOB);
        cJSON *f1 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(m, "files"), 1);
        cJSON_DeleteItemFromObjectCaseSensitive(f1, file_req[i]);
        char needle[64];
        snprintf(needle, sizeof needle, "JOB.files[1].%s: required field is missing",
                 file_req[i]);
        s_expect(m, BS_EPROTO, needle);
    }
}

BS_TEST(result_missing_fields)
{
    static const char *const req[] = {"job_id", "ok"};
    for (size_t i = 0; i < 2; i++) {
        cJSON *m = s_sample(BS_MSG_RESULT);
        cJSON_DeleteItemFromObjectCaseSensitive(m, req[i]);
        char needle[64];
        snprintf(needle, sizeof needle, "RESULT.%s: required field is missing", req[i]);
        s_expect(m, BS_EPROTO, needle);
    }
    cJSON *m = s_sample(BS_MSG_RESULT);
    cJSON_DeleteItemFromObjectCaseSensitive(m, "metrics");
    s_expect(m, BS_EPROTO, "RESULT.metrics: required when ok is true");

    m = s_parse(s_result_fail);
    cJSON_DeleteItemFromObjectCaseSensitive(m, "error");
    s_expect(m, BS_EPROTO, "RESULT.error: required when ok is false");

    static const char *const ereq[] = {"code", "message"};
    for (size_t i = 0; i < 2; i++) {
        m = s_parse(s_result_fail);
        cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(m, "error"),
                                                ereq[i]);
        char needle[64];
        snprintf(needle, sizeof needle, "RESULT.error.%s: required field is missing", ereq[i]);
        s_expect(m, BS_EPROTO, needle);
    }
    /* A failed result may carry no metrics; a good one may carry no error. */
    bs_err_t err;
    ASSERT_OK(s_check(s_parse(s_result_fail), NULL, &err));
    m = s_parse(s_result_fail);
    s_set(m, "error", "{\"code\":\"EMODEL\",\"message\":\"\"}");
    ASSERT_OK(s_check(m, NULL, &err));
    m = s_parse(s_result_fail);
    s_set(m, "error", "{\"code\":\"\",\"message\":\"x\"}");
    s_expect(m, BS_EPROTO, "RESULT.error.code: expected a non-empty string");
    m = s_parse(s_result_fail);
    s_set(m, "error", "\"EBUSY\"");
    s_expect(m, BS_EPROTO, "RESULT.error: expected an object, got a string");
}

/* kind and precisions on JOB: absent kind is an evaluation; a sensitivity JOB needs a list
 * of distinct, valid precisions. */
BS_TEST(sensitivity_job)
{
    bs_err_t err;
    int type = -1;
    ASSERT_OK(s_decode_text(s_sens_job, &type, &err));
    ASSERT_EQ(BS_MSG_JOB, type);
    cJSON *m = s_sample(BS_MSG_JOB);
    s_set(m, "kind", "\"evaluate\"");
    ASSERT_OK(s_check(m, NULL, &err));
    m = s_sample(BS_MSG_JOB); /* an evaluation may carry precisions: they are ignored */
    s_set(m, "precisions", "[\"w8a8\"]");
    ASSERT_OK(s_check(m, NULL, &err));
    struct {
        const char *field, *value, *needle;
    } cases[] = {
        {"kind", "\"eval\"",
         "JOB.kind: expected one of \"evaluate\", \"sensitivity\", got \"eval\""},
        {"kind", "1", "JOB.kind: expected one of \"evaluate\", \"sensitivity\", got 1"},
        {"kind", "null", "JOB.kind: expected one of"},
        {"precisions", NULL, "JOB.precisions: required when kind is \"sensitivity\""},
        {"precisions", "[]", "JOB.precisions: expected at least one precision when kind is"},
        {"precisions", "\"w8a8\"", "JOB.precisions: expected an array of strings"},
        {"precisions", "[\"w8a8\", 8]", "JOB.precisions[1]: expected a non-empty string"},
        {"precisions", "[\"w8a8\", \"w8a8x\"]", "JOB.precisions[1]: expected a precision such "
                                               "as \"w8a8\""},
        {"precisions", "[\"w9a8\"]", "got \"w9a8\""},
        {"precisions", "[\"w8a16\"]", "JOB.precisions[0]: expected a precision"},
        {"precisions", "[\"w16a32-x\"]", "JOB.precisions[0]: expected a non-empty string of at "
                                         "most 7 bytes, got 8 bytes"},
        {"precisions", "[\"w8a8\", \"w4a8\", \"w8a8\"]",
         "JOB.precisions[2]: expected each precision once, got \"w8a8\" again (as at [0])"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        m = s_parse(s_sens_job);
        if (cases[i].value)
            s_set(m, cases[i].field, cases[i].value);
        else
            cJSON_DeleteItemFromObjectCaseSensitive(m, cases[i].field);
        s_expect(m, BS_EPROTO, cases[i].needle);
    }
}

/* RESULT.sensitivity: the rows' types and ranges, and "metrics or sensitivity" when ok. */
BS_TEST(sensitivity_result)
{
    bs_err_t err;
    int type = -1;
    ASSERT_OK(s_decode_text(s_sens_result, &type, &err));
    ASSERT_EQ(BS_MSG_RESULT, type);
    cJSON *m = s_parse(s_sens_result); /* no rows (a model without weight layers) is valid */
    s_set(cJSON_GetObjectItemCaseSensitive(m, "sensitivity"), "rows", "[]");
    ASSERT_OK(s_check(m, NULL, &err));
    m = s_parse(s_sens_result); /* a failed sensitivity job is an ordinary failed RESULT */
    cJSON_DeleteItemFromObjectCaseSensitive(m, "sensitivity");
    s_set(m, "ok", "false");
    s_set(m, "error", "{\"code\":\"EDATA\",\"message\":\"no labels\"}");
    ASSERT_OK(s_check(m, NULL, &err));

    m = s_parse(s_sens_result);
    cJSON_DeleteItemFromObjectCaseSensitive(m, "sensitivity");
    s_expect(m, BS_EPROTO, "RESULT.metrics: required when ok is true (or RESULT.sensitivity");
    m = s_parse(s_sens_result);
    cJSON *good = s_sample(BS_MSG_RESULT);
    cJSON_AddItemToObject(m, "metrics",
                          cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(good, "metrics"), 1));
    cJSON_Delete(good);
    s_expect(m, BS_EPROTO, "RESULT.sensitivity: expected either metrics or sensitivity, got "
                           "both");

    struct {
        int row; /* -1: the sensitivity object itself */
        const char *field, *value, *needle;
    } cases[] = {
        {-1, "metric", NULL, "RESULT.sensitivity.metric: required field is missing"},
        {-1, "metric", "\"top1_agreement_with_everything\"",
         "RESULT.sensitivity.metric: expected a string of at most 23 bytes"},
        {-1, "baseline", NULL, "RESULT.sensitivity.baseline: required field is missing"},
        {-1, "baseline", "null", "RESULT.sensitivity.baseline: expected a number in [0, 1], "
                                 "got null"},
        {-1, "baseline", "1.5", "RESULT.sensitivity.baseline: expected a number in [0, 1], "
                                "got 1.5"},
        {-1, "baseline", "\"0.9\"", "got a string"},
        {-1, "rows", NULL, "RESULT.sensitivity.rows: required field is missing"},
        {-1, "rows", "{}", "RESULT.sensitivity.rows: expected an array, got an object"},
        {-1, "rows", "[1]", "RESULT.sensitivity.rows[0]: expected an object, got 1"},
        {-1, "simulated", NULL, "RESULT.sensitivity.simulated: required field is missing"},
        {-1, "simulated", "0", "RESULT.sensitivity.simulated: expected true or false, got 0"},
        {-1, "backend", "7", "RESULT.sensitivity.backend: expected a string"},
        {1, "layer", NULL, "RESULT.sensitivity.rows[1].layer: required field is missing"},
        {1, "layer", "\"\"", "RESULT.sensitivity.rows[1].layer: expected a non-empty string"},
        {2, "precision", "8", "RESULT.sensitivity.rows[2].precision: expected a non-empty"},
        {3, "value", NULL, "RESULT.sensitivity.rows[3].value: required field is missing"},
        {3, "value", "1.01", "RESULT.sensitivity.rows[3].value: expected a number in [0, 1] or "
                             "null, got 1.01"},
        {3, "value", "-0.5", "got -0.5"},
        {3, "value", "\"0.8\"", "RESULT.sensitivity.rows[3].value: expected a number"},
        {0, "delta", NULL, "RESULT.sensitivity.rows[0].delta: required field is missing"},
        {0, "delta", "-2", "RESULT.sensitivity.rows[0].delta: expected a number in [-1, 1] or "
                           "null, got -2"},
        {0, "delta", "true", "got true"},
        {1, "error", "3", "RESULT.sensitivity.rows[1].error: expected a string"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        m = s_parse(s_sens_result);
        cJSON *obj = cJSON_GetObjectItemCaseSensitive(m, "sensitivity");
        if (cases[i].row >= 0)
            obj = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(obj, "rows"),
                                     cases[i].row);
        ASSERT(obj != NULL);
        if (cases[i].value)
            s_set(obj, cases[i].field, cases[i].value);
        else
            cJSON_DeleteItemFromObjectCaseSensitive(obj, cases[i].field);
        s_expect(m, BS_EPROTO, cases[i].needle);
    }
}

BS_TEST(other_types_missing_fields)
{
    struct {
        bs_msg_type_t t;
        const char *field;
    } cases[] = {
        {BS_MSG_HELLO, "agent_id"},  {BS_MSG_HELLO, "name"},     {BS_MSG_HELLO, "version"},
        {BS_MSG_HELLO, "device"},    {BS_MSG_HELLO, "tags"},     {BS_MSG_HELLO, "backends"},
        {BS_MSG_WELCOME, "heartbeat_ms"}, {BS_MSG_WELCOME, "liveness"},
        {BS_MSG_FETCH, "sha256"},    {BS_MSG_FETCH, "offset"},   {BS_MSG_FETCH, "length"},
        {BS_MSG_CHUNK, "sha256"},    {BS_MSG_CHUNK, "offset"},   {BS_MSG_CHUNK, "total"},
        {BS_MSG_ERROR, "code"},      {BS_MSG_ERROR, "message"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *m = s_sample(cases[i].t);
        cJSON_DeleteItemFromObjectCaseSensitive(m, cases[i].field);
        char needle[64];
        snprintf(needle, sizeof needle, "%s.%s: required field is missing",
                 bs_msg_type_name(cases[i].t), cases[i].field);
        s_expect(m, BS_EPROTO, needle);
    }
}

BS_TEST(wrong_kinds)
{
    struct {
        bs_msg_type_t t;
        const char *field;
        const char *value;
        const char *needle;
    } cases[] = {
        {BS_MSG_JOB, "job_id", "\"42\"", "JOB.job_id: expected an integer >= 0, got a string"},
        {BS_MSG_JOB, "job_id", "true", "JOB.job_id: expected an integer >= 0, got true"},
        {BS_MSG_JOB, "job_id", "null", "JOB.job_id: expected an integer >= 0, got null"},
        {BS_MSG_JOB, "campaign", "7", "JOB.campaign: expected a non-empty string"},
        {BS_MSG_JOB, "measure", "[]", "JOB.measure: expected an object, got an array"},
        {BS_MSG_JOB, "data", "\"x\"", "JOB.data: expected an object, got a string"},
        {BS_MSG_JOB, "files", "{}", "JOB.files: expected an array, got an object"},
        {BS_MSG_JOB, "files", "[\"m.onnx\"]", "JOB.files[0]: expected an object, got a string"},
        {BS_MSG_RESULT, "ok", "1", "RESULT.ok: expected true or false, got 1"},
        {BS_MSG_RESULT, "ok", "\"true\"", "RESULT.ok: expected true or false, got a string"},
        {BS_MSG_RESULT, "metrics", "[]", "RESULT.metrics: expected an object, got an array"},
        {BS_MSG_RESULT, "timings", "0", "RESULT.timings: expected an object, got 0"},
        {BS_MSG_HELLO, "tags", "\"jetson\"", "HELLO.tags: expected an array of strings"},
        {BS_MSG_HELLO, "tags", "[\"a\",3]", "HELLO.tags[1]: expected a non-empty string"},
        {BS_MSG_HELLO, "backends", "[\"\"]", "HELLO.backends[0]: expected a non-empty string"},
        {BS_MSG_HELLO, "device", "null", "HELLO.device: expected an object, got null"},
        {BS_MSG_HELLO, "sensors", "{}", "HELLO.sensors: expected an array of strings"},
        {BS_MSG_HELLO, "precisions", "[32]", "HELLO.precisions: expected an object"},
        {BS_MSG_WELCOME, "searcher", "{}", "WELCOME.searcher: expected a string"},
        {BS_MSG_ERROR, "ref", "1", "ERROR.ref: expected a string of at most 32 bytes, got 1"},
        {BS_MSG_BYE, "reason", "[]", "BYE.reason: expected a string"},
        {BS_MSG_HEARTBEAT, "job_id", "\"1\"", "HEARTBEAT.job_id: expected an integer"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *m = s_sample(cases[i].t);
        s_set(m, cases[i].field, cases[i].value);
        s_expect(m, BS_EPROTO, cases[i].needle);
    }
}

BS_TEST(bad_sha256)
{
    static const char *const bad[] = {
        "\"9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08\"",
        "\"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a0\"",
        "\"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a088\"",
        "\"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a0g\"",
        "\"\"",
        "12",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cJSON *m = s_sample(BS_MSG_JOB);
        cJSON *f2 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(m, "files"), 2);
        s_set(f2, "sha256", bad[i]);
        s_expect(m, BS_EPROTO, "JOB.files[2].sha256: expected 64 lowercase hex digits");
        m = s_sample(BS_MSG_FETCH);
        s_set(m, "sha256", bad[i]);
        s_expect(m, BS_EPROTO, "FETCH.sha256: expected 64 lowercase hex digits");
        m = s_sample(BS_MSG_CHUNK);
        s_set(m, "sha256", bad[i]);
        s_expect(m, BS_EPROTO, "CHUNK.sha256: expected 64 lowercase hex digits");
    }
}

BS_TEST(integer_ranges)
{
    struct {
        bs_msg_type_t t;
        const char *field;
        const char *value;
        const char *needle; /* NULL: accepted */
    } cases[] = {
        {BS_MSG_JOB, "lease_ms", "-5", "JOB.lease_ms: expected an integer >= 0, got -5"},
        {BS_MSG_JOB, "job_id", "1.5", "JOB.job_id: expected an integer >= 0, got 1.5"},
        {BS_MSG_JOB, "attempt", "-1", "JOB.attempt: expected an integer >= 0, got -1"},
        {BS_MSG_JOB, "job_id", "1e300", "JOB.job_id: expected an integer >= 0, got 1e+300"},
        {BS_MSG_JOB, "job_id", "9007199254740994", "JOB.job_id: expected an integer >= 0"},
        {BS_MSG_JOB, "job_id", "9007199254740992", NULL},
        {BS_MSG_JOB, "job_id", "0", NULL},
        {BS_MSG_JOB, "job_id", "-0", NULL},
        {BS_MSG_JOB, "job_id", "7.0", NULL},
        {BS_MSG_JOB, "job_id", "1e3", NULL},
        {BS_MSG_FETCH, "length", "0", "FETCH.length: expected an integer in [1, 524288], got 0"},
        {BS_MSG_FETCH, "length", "524289", "FETCH.length: expected an integer in [1, 524288]"},
        {BS_MSG_FETCH, "length", "1", NULL},
        {BS_MSG_WELCOME, "heartbeat_ms", "9", "WELCOME.heartbeat_ms: expected an integer >= 10"},
        {BS_MSG_WELCOME, "heartbeat_ms", "10", NULL},
        {BS_MSG_WELCOME, "liveness", "0", "WELCOME.liveness: expected an integer >= 1, got 0"},
        {BS_MSG_CHUNK, "total", "-1", "CHUNK.total: expected an integer >= 0"},
        {BS_MSG_ERROR, "job_id", "0.25", "ERROR.job_id: expected an integer >= 0, got 0.25"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        /* The value goes in as text, so the test controls exactly what is parsed. */
        cJSON *m = s_sample(cases[i].t);
        cJSON_DeleteItemFromObjectCaseSensitive(m, cases[i].field);
        char *base = bs_msg_encode(m, NULL);
        cJSON_Delete(m);
        char final_text[4096];
        snprintf(final_text, sizeof final_text, "%.*s,\"%s\":%s}", (int)(strlen(base) - 1),
                 base, cases[i].field, cases[i].value);
        bs_free(base);
        bs_err_t err;
        int rc = s_decode_text(final_text, NULL, &err);
        if (cases[i].needle) {
            if (rc != BS_EPROTO)
                bs_test_fail(__FILE__, __LINE__, "%s: expected EPROTO, got %d", final_text, rc);
            ASSERT_CONTAINS(err.msg, cases[i].needle);
        } else if (rc != 0) {
            bs_test_fail(__FILE__, __LINE__, "%s: expected success, got %s", final_text,
                         err.msg);
        }
    }
    /* Literal texts, without cJSON printing them back first. */
    bs_err_t err;
    ASSERT_EQ(BS_EPROTO, s_decode_text("{\"type\":\"HEARTBEAT\",\"v\":1,\"job_id\":-3}", NULL,
                                       &err));
    ASSERT_CONTAINS(err.msg, "HEARTBEAT.job_id: expected an integer >= 0, got -3");
    ASSERT_EQ(BS_EPROTO, s_decode_text("{\"type\":\"HEARTBEAT\",\"v\":1,\"job_id\":2.000001}",
                                       NULL, &err));
    ASSERT_OK(s_decode_text("{\"type\":\"HEARTBEAT\",\"v\":1,\"job_id\":2.0}", NULL, &err));
}

BS_TEST(string_lengths)
{
    char long65[70];
    memset(long65, 'a', 65);
    long65[65] = '\0';
    char json[80];
    snprintf(json, sizeof json, "\"%s\"", long65);
    cJSON *m = s_sample(BS_MSG_HELLO);
    s_set(m, "agent_id", "\"\"");
    s_expect(m, BS_EPROTO,
             "HELLO.agent_id: expected a non-empty string of at most 64 bytes, got 0 bytes");
    m = s_sample(BS_MSG_HELLO);
    s_set(m, "name", json);
    s_expect(m, BS_EPROTO, "HELLO.name: expected a string of at most 64 bytes, got 65 bytes");
    m = s_sample(BS_MSG_HELLO);
    s_set(m, "name", "\"\"");
    bs_err_t err;
    ASSERT_OK(s_check(m, NULL, &err));
    json[65] = '"';
    json[66] = '\0'; /* 64 a's */
    m = s_sample(BS_MSG_HELLO);
    s_set(m, "agent_id", json);
    ASSERT_OK(s_check(m, NULL, &err));
    m = s_sample(BS_MSG_JOB);
    s_set(m, "backend", "\"engine-with-a-long\"");
    s_expect(m, BS_EPROTO, "JOB.backend: expected a non-empty string of at most 15 bytes");
}

BS_TEST(versions)
{
    bs_err_t err;
    int type = -1;
    ASSERT_EQ(BS_EVERSION,
              s_decode_text("{\"type\":\"HEARTBEAT\",\"v\":2}", &type, &err));
    ASSERT_EQ(BS_MSG_HEARTBEAT, type);
    ASSERT_CONTAINS(err.msg, "HEARTBEAT.v: protocol version 2 is not supported");
    /* The version is checked before the fields: a v2 JOB may look different. */
    type = -1;
    ASSERT_EQ(BS_EVERSION, s_decode_text("{\"type\":\"JOB\",\"v\":99}", &type, &err));
    ASSERT_EQ(BS_MSG_JOB, type);
    ASSERT_EQ(BS_EVERSION, s_decode_text("{\"v\":0,\"type\":\"BYE\"}", &type, &err));
    ASSERT_EQ(BS_EPROTO, s_decode_text("{\"type\":\"BYE\"}", &type, &err));
    ASSERT_EQ(BS_MSG_BYE, type);
    ASSERT_CONTAINS(err.msg, "BYE.v: required field is missing");
    ASSERT_EQ(BS_EPROTO, s_decode_text("{\"type\":\"BYE\",\"v\":\"1\"}", &type, &err));
    ASSERT_CONTAINS(err.msg, "BYE.v: expected an integer, got a string");
    ASSERT_EQ(BS_EPROTO, s_decode_text("{\"type\":\"BYE\",\"v\":1.5}", &type, &err));
    ASSERT_CONTAINS(err.msg, "BYE.v: expected an integer, got 1.5");
    ASSERT_OK(s_decode_text("{\"v\":1,\"type\":\"BYE\"}", &type, &err));
}

BS_TEST(unknown_or_missing_type)
{
    bs_err_t err;
    int type = 5;
    ASSERT_EQ(BS_EPROTO, s_decode_text("{\"type\":\"NOPE\",\"v\":1}", &type, &err));
    ASSERT_EQ(-1, type);
    ASSERT_CONTAINS(err.msg, "message.type: unknown message type \"NOPE\"");
    ASSERT_EQ(BS_EPROTO, s_decode_text("{\"type\":\"hello\",\"v\":1}", &type, &err));
    ASSERT_CONTAINS(err.msg, "unknown message type \"hello\"");
    ASSERT_EQ(BS_EPROTO, s_decode_text("{\"v\":1}", &type, &err));
    ASSERT_CONTAINS(err.msg, "message.type: required field is missing");
    ASSERT_EQ(BS_EPROTO, s_decode_text("{\"type\":3,\"v\":1}", &type, &err));
    ASSERT_CONTAINS(err.msg, "message.type: expected a string naming a message type, got 3");
    ASSERT_EQ(-1, type);
    /* An unknown type with an unknown version is still an unknown type. */
    ASSERT_EQ(BS_EPROTO, s_decode_text("{\"type\":\"NOPE\",\"v\":9}", &type, &err));
}

BS_TEST(not_json_or_not_object)
{
    bs_err_t err;
    int type = 5;
    static const char *const bad[] = {
        "hello",        "{\"type\":",   "{\"type\":\"BYE\",\"v\":1",
        "{'type':'BYE'}", "\xff\xfe{}", "{\"type\":\"BYE\",\"v\":1,}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ASSERT_EQ(BS_EPROTO, s_decode_text(bad[i], &type, &err));
        ASSERT_EQ(-1, type);
        ASSERT_CONTAINS(err.msg, "message: not valid JSON");
    }
    ASSERT_EQ(BS_EPROTO, s_decode_text("{\"type\":\"BYE\",\"v\":1} {}", &type, &err));
    ASSERT_CONTAINS(err.msg, "unexpected bytes after the JSON value");
    ASSERT_OK(s_decode_text("  {\"type\":\"BYE\",\"v\":1} \r\n\t", &type, &err));
    ASSERT_EQ(BS_EPROTO, s_decode_text("[{\"type\":\"BYE\",\"v\":1}]", &type, &err));
    ASSERT_CONTAINS(err.msg, "message: expected a JSON object, got an array");
    ASSERT_EQ(BS_EPROTO, s_decode_text("\"BYE\"", &type, &err));
    ASSERT_CONTAINS(err.msg, "expected a JSON object, got a string");
    ASSERT_EQ(BS_EPROTO, s_decode_text("17", &type, &err));
    ASSERT_CONTAINS(err.msg, "expected a JSON object, got 17");
    ASSERT_EQ(BS_EPROTO, s_decode_text("null", &type, &err));
    ASSERT_EQ(BS_EPROTO, bs_msg_decode("", 0, NULL, &type, &err));
    ASSERT_CONTAINS(err.msg, "empty frame");
    ASSERT_EQ(BS_EPROTO, bs_msg_decode(NULL, 0, NULL, &type, &err));
    /* Not NUL-terminated: only len bytes are read. */
    const char framed[] = "{\"type\":\"BYE\",\"v\":1}XXXX";
    ASSERT_OK(bs_msg_decode(framed, sizeof framed - 5, NULL, &type, &err));
    ASSERT_EQ(BS_MSG_BYE, type);
    char nonul[20];
    memcpy(nonul, "{\"type\":\"BYE\",\"v\":1}", 20);
    ASSERT_OK(bs_msg_decode(nonul, 20, NULL, &type, &err));
    ASSERT_EQ(BS_EPROTO, bs_msg_decode(nonul, 19, NULL, &type, &err));
}

/* {"type":"BYE","v":1,"pad":"xxx..."} of exactly len bytes. */
static char *s_padded_bye(size_t len)
{
    const char head[] = "{\"type\":\"BYE\",\"v\":1,\"pad\":\"";
    char *text = bs_malloc(len + 1);
    size_t h = sizeof head - 1;
    memcpy(text, head, h);
    memset(text + h, 'x', len - h - 2);
    memcpy(text + len - 2, "\"}", 3);
    return text;
}

BS_TEST(oversized)
{
    bs_err_t err;
    int type = 5;
    char *at_limit = s_padded_bye(BS_PROTO_MAX_JSON);
    ASSERT_OK(bs_msg_decode(at_limit, BS_PROTO_MAX_JSON, NULL, &type, &err));
    ASSERT_EQ(BS_MSG_BYE, type);
    bs_free(at_limit);
    char *over = s_padded_bye(BS_PROTO_MAX_JSON + 1);
    ASSERT_EQ(BS_ETOOBIG, bs_msg_decode(over, BS_PROTO_MAX_JSON + 1, NULL, &type, &err));
    ASSERT_EQ(-1, type);
    ASSERT_CONTAINS(err.msg, "262145 bytes exceed the 262144-byte limit");
    bs_free(over);
    /* A JOB assignment is bounded on its own too. */
    cJSON *m = s_sample(BS_MSG_JOB);
    char *big = bs_malloc(65538);
    memset(big, 'a', 65537);
    big[65537] = '\0';
    cJSON_DeleteItemFromObjectCaseSensitive(m, "assignment");
    cJSON_AddStringToObject(m, "assignment", big);
    bs_free(big);
    s_expect(m, BS_EPROTO, "JOB.assignment: expected a non-empty string of at most 65536 bytes");
}

static char *s_nested(int depth, const char *open, const char *close, int in_key)
{
    size_t n = (size_t)depth * 8 + 64;
    char *t = bs_malloc(n);
    size_t at = 0;
    at += (size_t)snprintf(t + at, n - at, "{\"type\":\"BYE\",\"v\":1,\"x\":");
    for (int i = 1; i < depth; i++) /* the message object is level 1 */
        at += (size_t)snprintf(t + at, n - at, "%s", in_key ? "{\"k\":" : open);
    at += (size_t)snprintf(t + at, n - at, "0");
    for (int i = 1; i < depth; i++)
        at += (size_t)snprintf(t + at, n - at, "%s", in_key ? "}" : close);
    snprintf(t + at, n - at, "}");
    return t;
}

BS_TEST(deep_nesting)
{
    bs_err_t err;
    int type;
    char *ok32 = s_nested(32, "[", "]", 0);
    ASSERT_OK(s_decode_text(ok32, &type, &err));
    bs_free(ok32);
    char *ok32o = s_nested(32, NULL, NULL, 1);
    ASSERT_OK(s_decode_text(ok32o, &type, &err));
    bs_free(ok32o);
    char *bad33 = s_nested(33, "[", "]", 0);
    ASSERT_EQ(BS_EPROTO, s_decode_text(bad33, &type, &err));
    ASSERT_CONTAINS(err.msg, "JSON nested deeper than 32 levels");
    bs_free(bad33);
    char *bad33o = s_nested(33, NULL, NULL, 1);
    ASSERT_EQ(BS_EPROTO, s_decode_text(bad33o, &type, &err));
    bs_free(bad33o);
    /* 100000 open brackets: refused before cJSON recurses into them. */
    size_t n = 100000;
    char *deep = bs_malloc(n + 1);
    memset(deep, '[', n);
    deep[n] = '\0';
    ASSERT_EQ(BS_EPROTO, s_decode_text(deep, &type, &err));
    ASSERT_CONTAINS(err.msg, "nested deeper than 32");
    bs_free(deep);
    /* Brackets inside strings are text, not nesting. */
    char str[200];
    snprintf(str, sizeof str, "{\"type\":\"BYE\",\"v\":1,\"reason\":\"%s\"}",
             "[[[[[[[[[[{{{{{{{{{{[[[[[[[[[[{{{{{{{{{{[[[[[[[[[[ \\\" [[[[[[[[");
    ASSERT_OK(s_decode_text(str, &type, &err));
    /* A tree built in memory is held to the same limit. */
    cJSON *m = bs_msg_new(BS_MSG_BYE);
    cJSON *at = cJSON_CreateArray();
    cJSON_AddItemToObject(m, "x", at);
    for (int i = 0; i < 40; i++) {
        cJSON *c = cJSON_CreateArray();
        cJSON_AddItemToArray(at, c);
        at = c;
    }
    ASSERT_EQ(BS_EPROTO, bs_msg_validate(m, &type, &err));
    ASSERT_CONTAINS(err.msg, "BYE: JSON nested deeper than 32 levels");
    cJSON_Delete(m);
}

BS_TEST(error_builder)
{
    bs_err_t err;
    int type = -1;
    cJSON *m = bs_msg_error(BS_EHELLO, "unknown agent: send HELLO first", "HEARTBEAT");
    ASSERT(m != NULL);
    ASSERT_OK(bs_msg_validate(m, &type, &err));
    ASSERT_EQ(BS_MSG_ERROR, type);
    ASSERT_STR_EQ("EHELLO", cJSON_GetObjectItemCaseSensitive(m, "code")->valuestring);
    ASSERT_STR_EQ("unknown agent: send HELLO first",
                  cJSON_GetObjectItemCaseSensitive(m, "message")->valuestring);
    ASSERT_STR_EQ("HEARTBEAT", cJSON_GetObjectItemCaseSensitive(m, "ref")->valuestring);
    ASSERT_EQ(BS_EHELLO,
              bs_err_from_name(cJSON_GetObjectItemCaseSensitive(m, "code")->valuestring));
    cJSON_Delete(m);

    m = bs_msg_error(BS_ETOOBIG, NULL, NULL);
    ASSERT_OK(bs_msg_validate(m, &type, &err));
    ASSERT_STR_EQ("ETOOBIG", cJSON_GetObjectItemCaseSensitive(m, "code")->valuestring);
    ASSERT_STR_EQ(bs_strerror(BS_ETOOBIG),
                  cJSON_GetObjectItemCaseSensitive(m, "message")->valuestring);
    ASSERT(cJSON_GetObjectItemCaseSensitive(m, "ref") == NULL);
    cJSON_Delete(m);

    /* A long text is cut to fit the schema, so the reply always validates. */
    char longmsg[5000];
    memset(longmsg, 'e', sizeof longmsg - 1);
    longmsg[sizeof longmsg - 1] = '\0';
    m = bs_msg_error(BS_EPROTO, longmsg, "A-TYPE-NAME-FAR-LONGER-THAN-THIRTY-TWO-BYTES");
    ASSERT_OK(bs_msg_validate(m, &type, &err));
    ASSERT_EQ(4096, strlen(cJSON_GetObjectItemCaseSensitive(m, "message")->valuestring));
    cJSON_Delete(m);

    m = bs_msg_error(-999, "odd", NULL);
    ASSERT_STR_EQ("EUNKNOWN", cJSON_GetObjectItemCaseSensitive(m, "code")->valuestring);
    cJSON_Delete(m);
}

BS_TEST(out_of_memory)
{
    bs_err_t err;
    const char *text = s_samples[BS_MSG_JOB];
    int done = 0;
    for (long n = 0; n < 10000 && !done; n++) {
        cJSON *out = NULL;
        int type;
        bs_alloc_fail_after(n);
        int rc = bs_msg_decode(text, strlen(text), &out, &type, &err);
        bs_alloc_fail_after(-1);
        if (rc == 0) {
            done = 1;
            cJSON_Delete(out);
        } else {
            ASSERT_EQ(BS_ENOMEM, rc);
            ASSERT(out == NULL);
        }
    }
    ASSERT(done);
    for (long n = 0; n < 100; n++) {
        bs_alloc_fail_after(n);
        cJSON *m = bs_msg_error(BS_EPROTO, "bad", "JOB");
        bs_alloc_fail_after(-1);
        if (m) {
            cJSON_Delete(m);
            break;
        }
    }
    cJSON *m = s_sample(BS_MSG_RESULT);
    for (long n = 0; n < 100; n++) {
        bs_alloc_fail_after(n);
        char *t = bs_msg_encode(m, NULL);
        bs_alloc_fail_after(-1);
        if (t) {
            bs_free(t);
            break;
        }
    }
    cJSON_Delete(m);
}

/* Every ```json example in PROTOCOL.md decodes, every type has one, and every RESULT example's
 * metrics pass the metrics codec: the document cannot drift from the schema unnoticed. */
BS_TEST(protocol_md_examples)
{
    char *doc = NULL;
    size_t len = 0;
    bs_err_t err;
    int rc = bs_read_file(BS_PROTOCOL_MD, 1 << 20, &doc, &len, &err);
    if (rc)
        bs_test_fail(__FILE__, __LINE__, "%s", err.msg);
    int seen[BS_MSG__COUNT] = {0};
    int examples = 0;
    const char *open_tag = "```json\n";
    for (char *p = strstr(doc, open_tag); p; p = strstr(p, open_tag)) {
        p += strlen(open_tag);
        char *end = strstr(p, "```");
        ASSERT(end != NULL);
        cJSON *msg = NULL;
        int type = -1;
        rc = bs_msg_decode(p, (size_t)(end - p), &msg, &type, &err);
        if (rc)
            bs_test_fail(__FILE__, __LINE__, "PROTOCOL.md example %d: %s", examples + 1,
                         err.msg);
        seen[type]++;
        examples++;
        const cJSON *metrics = cJSON_GetObjectItemCaseSensitive(msg, "metrics");
        if (metrics) {
            bs_metrics_t m;
            ASSERT_OK(bs_metrics_from_json(metrics, &m, &err));
            /* and the metrics codec writes the same keys in the same order */
            cJSON *again = bs_metrics_to_json(&m);
            const cJSON *a = metrics->child, *b = again->child;
            for (; a && b; a = a->next, b = b->next)
                ASSERT_STR_EQ(b->string, a->string);
            ASSERT(a == NULL && b == NULL);
            cJSON_Delete(again);
        }
        cJSON_Delete(msg);
        p = end + 3;
    }
    for (int i = 0; i < BS_MSG__COUNT; i++)
        if (!seen[i])
            bs_test_fail(__FILE__, __LINE__, "PROTOCOL.md has no %s example",
                         bs_msg_type_name((bs_msg_type_t)i));
    ASSERT(examples >= BS_MSG__COUNT);
    bs_free(doc);
}

/* ---- ZeroMQ ---------------------------------------------------------------------------- */

typedef struct s_pair {
    void *ctx;
    void *router;
    void *dealer;
} s_pair_t;

static void s_pair_open(s_pair_t *p, const char *transport)
{
    p->ctx = zmq_ctx_new();
    ASSERT(p->ctx != NULL);
    p->router = zmq_socket(p->ctx, ZMQ_ROUTER);
    p->dealer = zmq_socket(p->ctx, ZMQ_DEALER);
    int zero = 0, one = 1;
    int64_t maxmsg = BS_PROTO_MAX_MSG;
    zmq_setsockopt(p->router, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(p->dealer, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(p->router, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    zmq_setsockopt(p->router, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    zmq_setsockopt(p->dealer, ZMQ_ROUTING_ID, "agent-7", 7);
    char ep[128];
    if (strcmp(transport, "tcp") == 0) {
        ASSERT_OK(zmq_bind(p->router, "tcp://127.0.0.1:*"));
        size_t len = sizeof ep;
        ASSERT_OK(zmq_getsockopt(p->router, ZMQ_LAST_ENDPOINT, ep, &len));
    } else {
        snprintf(ep, sizeof ep, "inproc://test-proto-%d", (int)getpid());
        ASSERT_OK(zmq_bind(p->router, ep));
    }
    ASSERT_OK(zmq_connect(p->dealer, ep));
}

static void s_pair_close(s_pair_t *p)
{
    zmq_close(p->dealer);
    zmq_close(p->router);
    zmq_ctx_term(p->ctx);
}

/* Waits (up to 10 s: a failed test, not a measured time) for a message, then receives it. */
static int s_recv(void *sock, int with_id, bs_wire_msg_t *out, bs_err_t *err)
{
    zmq_pollitem_t it = {sock, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&it, 1, 10000) != 1)
        bs_test_fail(__FILE__, __LINE__, "no message arrived");
    return bs_wire_recv(sock, with_id, out, err);
}

static void s_send_raw(void *sock, const char *const *frames, const size_t *lens, int n)
{
    for (int i = 0; i < n; i++)
        ASSERT_EQ((int)lens[i], zmq_send(sock, frames[i], lens[i], i + 1 < n ? ZMQ_SNDMORE : 0));
}

static void s_send_heartbeat(void *dealer, int job_id)
{
    cJSON *hb = bs_msg_new(BS_MSG_HEARTBEAT);
    cJSON_AddNumberToObject(hb, "job_id", job_id);
    ASSERT_OK(bs_wire_send(dealer, NULL, 0, hb, NULL, 0));
    cJSON_Delete(hb);
}

static void s_expect_heartbeat(void *router, int job_id)
{
    bs_wire_msg_t m;
    bs_err_t err;
    int rc = s_recv(router, 1, &m, &err);
    if (rc)
        bs_test_fail(__FILE__, __LINE__, "expected a good HEARTBEAT, got %s", err.msg);
    ASSERT_EQ(BS_MSG_HEARTBEAT, m.type);
    ASSERT_EQ(job_id, cJSON_GetObjectItemCaseSensitive(m.msg, "job_id")->valuedouble);
    ASSERT_EQ(7, m.id_len);
    bs_wire_msg_free(&m);
}

BS_TEST(wire_hello_and_chunk)
{
    s_pair_t p;
    s_pair_open(&p, "inproc");
    bs_err_t err;
    bs_wire_msg_t m;
    ASSERT_EQ(BS_EAGAIN, bs_wire_recv(p.router, 1, &m, &err));
    ASSERT(m.msg == NULL);

    cJSON *hello = s_sample(BS_MSG_HELLO);
    ASSERT_OK(bs_wire_send(p.dealer, NULL, 0, hello, NULL, 0));
    ASSERT_OK(s_recv(p.router, 1, &m, &err));
    ASSERT_EQ(BS_MSG_HELLO, m.type);
    ASSERT_EQ(7, m.id_len);
    ASSERT(memcmp(m.id, "agent-7", 7) == 0);
    ASSERT(m.payload == NULL);
    ASSERT(cJSON_Compare(hello, m.msg, 1));
    cJSON_Delete(hello);

    /* The searcher answers with a CHUNK carrying binary bytes, NULs included. */
    unsigned char bytes[3000];
    for (size_t i = 0; i < sizeof bytes; i++)
        bytes[i] = (unsigned char)(i * 7);
    cJSON *chunk = s_sample(BS_MSG_CHUNK);
    ASSERT_OK(bs_wire_send(p.router, m.id, m.id_len, chunk, bytes, sizeof bytes));
    bs_wire_msg_free(&m);
    ASSERT(m.msg == NULL);
    bs_wire_msg_t c;
    ASSERT_OK(s_recv(p.dealer, 0, &c, &err));
    ASSERT_EQ(BS_MSG_CHUNK, c.type);
    ASSERT_EQ(0, c.id_len);
    ASSERT_EQ(sizeof bytes, c.payload_len);
    ASSERT(memcmp(bytes, c.payload, sizeof bytes) == 0);
    bs_wire_msg_free(&c);

    /* A CHUNK with no bytes still has its (empty) binary frame. */
    ASSERT_OK(bs_wire_send(p.router, "agent-7", 7, chunk, NULL, 0));
    ASSERT_OK(s_recv(p.dealer, 0, &c, &err));
    ASSERT_EQ(BS_MSG_CHUNK, c.type);
    ASSERT_EQ(0, c.payload_len);
    bs_wire_msg_free(&c);
    cJSON_Delete(chunk);
    bs_wire_msg_free(&c); /* twice is harmless */
    s_pair_close(&p);
}

BS_TEST(wire_garbage_keeps_socket_in_step)
{
    s_pair_t p;
    s_pair_open(&p, "inproc");
    bs_err_t err;
    bs_wire_msg_t m;

    const char *garbage[] = {"xx{\x01\x02"};
    size_t glen[] = {5};
    s_send_raw(p.dealer, garbage, glen, 1);
    ASSERT_EQ(BS_EPROTO, s_recv(p.router, 1, &m, &err));
    ASSERT_CONTAINS(err.msg, "not valid JSON");
    ASSERT(m.msg == NULL);
    ASSERT_EQ(-1, m.type);
    ASSERT_EQ(7, m.id_len);
    ASSERT(memcmp(m.id, "agent-7", 7) == 0);
    bs_wire_msg_free(&m);
    s_send_heartbeat(p.dealer, 1);
    s_expect_heartbeat(p.router, 1);

    /* Three frames on a non-CHUNK type: refused, all three consumed. */
    const char *hb = "{\"type\":\"HEARTBEAT\",\"v\":1}";
    const char *three[] = {hb, "bin", "more"};
    size_t three_len[] = {strlen(hb), 3, 4};
    s_send_raw(p.dealer, three, three_len, 3);
    ASSERT_EQ(BS_EPROTO, s_recv(p.router, 1, &m, &err));
    ASSERT_CONTAINS(err.msg, "HEARTBEAT: unexpected extra frame");
    ASSERT_EQ(BS_MSG_HEARTBEAT, m.type);
    ASSERT(m.msg == NULL && m.payload == NULL);
    ASSERT_EQ(7, m.id_len);
    bs_wire_msg_free(&m);
    s_send_heartbeat(p.dealer, 2);
    s_expect_heartbeat(p.router, 2);

    /* Two frames on a non-CHUNK type. */
    s_send_raw(p.dealer, three, three_len, 2);
    ASSERT_EQ(BS_EPROTO, s_recv(p.router, 1, &m, &err));
    ASSERT_CONTAINS(err.msg, "HEARTBEAT: unexpected extra frame");
    bs_wire_msg_free(&m);

    /* A malformed JSON frame followed by extra frames: everything consumed too. */
    const char *bad3[] = {"{", "x", "y"};
    size_t bad3_len[] = {1, 1, 1};
    s_send_raw(p.dealer, bad3, bad3_len, 3);
    ASSERT_EQ(BS_EPROTO, s_recv(p.router, 1, &m, &err));
    bs_wire_msg_free(&m);

    /* Version and type errors over the wire keep the type for the ERROR reply. */
    const char *v9[] = {"{\"type\":\"RESULT\",\"v\":9}"};
    size_t v9_len[] = {strlen(v9[0])};
    s_send_raw(p.dealer, v9, v9_len, 1);
    ASSERT_EQ(BS_EVERSION, s_recv(p.router, 1, &m, &err));
    ASSERT_EQ(BS_MSG_RESULT, m.type);
    bs_wire_msg_free(&m);

    /* An empty frame. */
    const char *empty[] = {""};
    size_t empty_len[] = {0};
    s_send_raw(p.dealer, empty, empty_len, 1);
    ASSERT_EQ(BS_EPROTO, s_recv(p.router, 1, &m, &err));
    ASSERT_CONTAINS(err.msg, "empty frame");
    bs_wire_msg_free(&m);

    s_send_heartbeat(p.dealer, 3);
    s_expect_heartbeat(p.router, 3);

    /* CHUNK without its binary frame, and with two, on the DEALER side. */
    char chunk_json[200];
    snprintf(chunk_json, sizeof chunk_json,
             "{\"type\":\"CHUNK\",\"v\":1,\"sha256\":\"%s\",\"offset\":0,\"total\":3}", SHA_A);
    ASSERT_EQ(7, zmq_send(p.router, "agent-7", 7, ZMQ_SNDMORE));
    ASSERT_EQ((int)strlen(chunk_json), zmq_send(p.router, chunk_json, strlen(chunk_json), 0));
    ASSERT_EQ(BS_EPROTO, s_recv(p.dealer, 0, &m, &err));
    ASSERT_CONTAINS(err.msg, "CHUNK: expected exactly one binary frame");
    ASSERT_EQ(BS_MSG_CHUNK, m.type);
    bs_wire_msg_free(&m);
    ASSERT_EQ(7, zmq_send(p.router, "agent-7", 7, ZMQ_SNDMORE));
    ASSERT_EQ((int)strlen(chunk_json),
              zmq_send(p.router, chunk_json, strlen(chunk_json), ZMQ_SNDMORE));
    ASSERT_EQ(3, zmq_send(p.router, "abc", 3, ZMQ_SNDMORE));
    ASSERT_EQ(3, zmq_send(p.router, "def", 3, 0));
    ASSERT_EQ(BS_EPROTO, s_recv(p.dealer, 0, &m, &err));
    ASSERT_CONTAINS(err.msg, "got 2");
    ASSERT(m.payload == NULL);
    bs_wire_msg_free(&m);
    ASSERT_EQ(BS_EAGAIN, bs_wire_recv(p.dealer, 0, &m, &err));

    s_pair_close(&p);
}

BS_TEST(wire_send_refusals)
{
    s_pair_t p;
    s_pair_open(&p, "inproc");
    cJSON *hb = bs_msg_new(BS_MSG_HEARTBEAT);
    /* Only CHUNK carries a binary frame. */
    ASSERT_EQ(BS_EINVAL, bs_wire_send(p.dealer, NULL, 0, hb, "x", 1));
    ASSERT_EQ(BS_EINVAL, bs_wire_send(p.dealer, NULL, 0, hb, NULL, 5));
    ASSERT_EQ(BS_EINVAL, bs_wire_send(p.dealer, NULL, 3, hb, NULL, 0));
    /* An invalid message never reaches the wire. */
    cJSON *welcome = bs_msg_new(BS_MSG_WELCOME);
    ASSERT_EQ(BS_EPROTO, bs_wire_send(p.dealer, NULL, 0, welcome, NULL, 0));
    cJSON_Delete(welcome);
    /* A peer the ROUTER does not know (ZMQ_ROUTER_MANDATORY). */
    ASSERT_EQ(BS_EZMQ, bs_wire_send(p.router, "nobody", 6, hb, NULL, 0));
    cJSON_Delete(hb);
    bs_wire_msg_t m;
    bs_err_t err;
    ASSERT_EQ(BS_EAGAIN, bs_wire_recv(p.router, 1, &m, &err));
    ASSERT_EQ(BS_EINVAL, bs_wire_recv(NULL, 1, &m, &err));
    s_pair_close(&p);
}

BS_TEST(wire_tcp_oversized_json)
{
    s_pair_t p;
    s_pair_open(&p, "tcp");
    size_t n = 300 * 1024;
    char *big = s_padded_bye(n);
    ASSERT_EQ((int)n, zmq_send(p.dealer, big, n, 0));
    bs_free(big);
    bs_wire_msg_t m;
    bs_err_t err;
    ASSERT_EQ(BS_ETOOBIG, s_recv(p.router, 1, &m, &err));
    ASSERT_EQ(7, m.id_len);
    ASSERT(m.msg == NULL);
    bs_wire_msg_free(&m);
    s_send_heartbeat(p.dealer, 9);
    s_expect_heartbeat(p.router, 9);
    /* A full-size CHUNK fits ZMQ_MAXMSGSIZE. */
    unsigned char *bytes = bs_calloc(1, BS_PROTO_CHUNK_SIZE);
    cJSON *chunk = s_sample(BS_MSG_CHUNK);
    ASSERT_OK(bs_wire_send(p.router, "agent-7", 7, chunk, bytes, BS_PROTO_CHUNK_SIZE));
    ASSERT_OK(s_recv(p.dealer, 0, &m, &err));
    ASSERT_EQ(BS_PROTO_CHUNK_SIZE, m.payload_len);
    bs_wire_msg_free(&m);
    cJSON_Delete(chunk);
    bs_free(bytes);
    s_pair_close(&p);
}

#define TESTS(X)                                                                                 \
    X(type_names)                                                                                \
    X(roundtrip_every_type)                                                                      \
    X(build_and_read_back)                                                                       \
    X(unknown_keys_are_kept)                                                                     \
    X(job_missing_each_required_field)                                                           \
    X(result_missing_fields)                                                                     \
    X(sensitivity_job)                                                                           \
    X(sensitivity_result)                                                                        \
    X(other_types_missing_fields)                                                                \
    X(wrong_kinds)                                                                               \
    X(bad_sha256)                                                                                \
    X(integer_ranges)                                                                            \
    X(string_lengths)                                                                            \
    X(versions)                                                                                  \
    X(unknown_or_missing_type)                                                                   \
    X(not_json_or_not_object)                                                                    \
    X(oversized)                                                                                 \
    X(deep_nesting)                                                                              \
    X(error_builder)                                                                             \
    X(out_of_memory)                                                                             \
    X(protocol_md_examples)                                                                      \
    X(wire_hello_and_chunk)                                                                      \
    X(wire_garbage_keeps_socket_in_step)                                                         \
    X(wire_send_refusals)                                                                        \
    X(wire_tcp_oversized_json)

BS_TEST_MAIN(TESTS)

/*
 * test_common.c - errors, precision specs and assignments, metrics JSON, utilities, the RNG,
 * and the ONNX layer view on the bundled model and on corrupted bytes.
 */
#include <math.h>
#include <stdio.h>

#include "bs_alloc.h"
#include "bs_error.h"
#include "bs_metrics.h"
#include "bs_model.h"
#include "bs_precision.h"
#include "bs_test.h"
#include "bs_util.h"

BS_TEST(error_names)
{
    ASSERT_STR_EQ("EMODEL", bs_err_name(BS_EMODEL));
    ASSERT_EQ(BS_EHASH, bs_err_from_name("EHASH"));
    ASSERT_EQ(1, bs_err_from_name("ENOPE"));
    ASSERT_STR_EQ("EUNKNOWN", bs_err_name(-999));
    bs_err_t e;
    ASSERT_EQ(BS_EIO, bs_err_set(&e, BS_EIO, "read %d", 3));
    bs_err_prefix(&e, "file.bin");
    ASSERT_STR_EQ("file.bin: read 3", e.msg);
}

BS_TEST(precision_parse)
{
    bs_prec_t p;
    char buf[BS_PREC_TEXT_MAX];
    ASSERT_OK(bs_prec_parse("w4a8", &p));
    ASSERT_EQ(4, p.w);
    ASSERT_EQ(8, p.a);
    bs_prec_format(p, buf);
    ASSERT_STR_EQ("w4a8", buf);
    ASSERT_OK(bs_prec_parse("w16a32", &p));
    ASSERT_EQ(BS_EINVAL, bs_prec_parse("w1a8", &p));
    ASSERT_EQ(BS_EINVAL, bs_prec_parse("w8a16", &p));
    ASSERT_EQ(BS_EINVAL, bs_prec_parse("w8a8x", &p));
    ASSERT_EQ(BS_EINVAL, bs_prec_parse("8a8", &p));
    uint8_t w;
    ASSERT_OK(bs_wprec_from_name("int3", &w));
    ASSERT_EQ(3, w);
    ASSERT_STR_EQ("fp16", bs_wprec_name(16));
}

BS_TEST(spec_apply)
{
    const char *names[3] = {"conv1", "conv2", "fc"};
    bs_prec_t p[3] = {BS_PREC_FP32, BS_PREC_FP32, BS_PREC_FP32};
    bs_err_t e;
    ASSERT_OK(bs_spec_apply("*=w8a8,conv2=w4a32", names, 3, p, &e));
    ASSERT_EQ(8, p[0].w);
    ASSERT_EQ(4, p[1].w);
    ASSERT_EQ(32, p[1].a);
    ASSERT_EQ(8, p[2].a);
    char *a = bs_assign_format(names, p, 3);
    ASSERT_STR_EQ("conv1=w8a8,conv2=w4a32,fc=w8a8", a);
    bs_prec_t q[3] = {BS_PREC_FP32, BS_PREC_FP32, BS_PREC_FP32};
    ASSERT_OK(bs_spec_apply(a, names, 3, q, &e));
    for (int i = 0; i < 3; i++)
        ASSERT(bs_prec_eq(p[i], q[i]));
    bs_free(a);
    ASSERT_EQ(BS_EINVAL, bs_spec_apply("conv9=w8a8", names, 3, q, &e));
    ASSERT_CONTAINS(e.msg, "conv9");
    ASSERT_CONTAINS(e.msg, "conv1 conv2 fc");
    ASSERT_EQ(BS_EINVAL, bs_spec_apply("fc=w9a8", names, 3, q, &e));
    ASSERT_CONTAINS(e.msg, "w9a8");
    ASSERT_EQ(BS_EINVAL, bs_spec_apply("fc", names, 3, q, &e));
    ASSERT_EQ(BS_EINVAL, bs_spec_apply("fc=w8a8,,", names, 3, q, &e));
    ASSERT_EQ(8, q[0].w); /* unchanged by the failed calls */
}

BS_TEST(metrics_json_roundtrip)
{
    bs_metrics_t m, back;
    bs_metrics_init(&m);
    m.accuracy = 0.875;
    m.lat_median_ms = 1.5;
    m.lat_p90_ms = 1.75;
    m.lat_runs = 20;
    m.weight_bytes = 1234;
    m.simulated = 1;
    snprintf(m.backend, sizeof m.backend, "sim");
    cJSON *j = bs_metrics_to_json(&m);
    ASSERT(j);
    bs_err_t e;
    ASSERT_OK(bs_metrics_from_json(j, &back, &e));
    ASSERT_DBL_NEAR(0.875, back.accuracy, 0);
    ASSERT_DBL_NEAR(1.75, back.lat_p90_ms, 0);
    ASSERT(isnan(back.energy_j));
    ASSERT_EQ(-1, back.arena_bytes);
    ASSERT_EQ(1234, back.weight_bytes);
    ASSERT_EQ(20, back.lat_runs);
    ASSERT_EQ(1, back.simulated);
    ASSERT_STR_EQ("none", back.energy_source);
    double v;
    ASSERT_EQ(BS_ENOENT, bs_metrics_get(&back, "energy_j", &v));
    ASSERT_EQ(BS_EINVAL, bs_metrics_get(&back, "bogus", &v));
    ASSERT_OK(bs_metrics_get(&back, "weight_bytes", &v));
    ASSERT_DBL_NEAR(1234, v, 0);
    cJSON_Delete(j);
    /* An energy value without a source is refused; so is an accuracy of 2. */
    cJSON *bad = cJSON_Parse("{\"energy\":{\"joules\":1.0,\"source\":\"none\"}}");
    ASSERT_EQ(BS_EPROTO, bs_metrics_from_json(bad, &back, &e));
    cJSON_Delete(bad);
    bad = cJSON_Parse("{\"accuracy\":2}");
    ASSERT_EQ(BS_EPROTO, bs_metrics_from_json(bad, &back, &e));
    ASSERT_CONTAINS(e.msg, "metrics.accuracy");
    cJSON_Delete(bad);
    ASSERT(bs_metric_name_valid("latency_p90_ms"));
    ASSERT_CONTAINS(bs_metric_names_list(), "accuracy, latency_min_ms");
}

BS_TEST(sha_and_files)
{
    char hex[BS_SHA256_HEX_LEN + 1];
    bs_sha256_hex("abc", 3, hex);
    ASSERT_STR_EQ("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", hex);
    ASSERT(bs_is_sha256_hex(hex));
    ASSERT(!bs_is_sha256_hex("../etc/passwd"));
    char path[512];
    snprintf(path, sizeof path, "%s/f.bin", bs_test_tmpdir());
    bs_err_t e;
    ASSERT_OK(bs_write_file(path, "abc", 3, &e));
    char hex2[BS_SHA256_HEX_LEN + 1];
    uint64_t size;
    ASSERT_OK(bs_sha256_file(path, hex2, &size, &e));
    ASSERT_STR_EQ(hex, hex2);
    ASSERT_EQ(3, size);
    char *buf;
    size_t len;
    ASSERT_EQ(BS_ETOOBIG, bs_read_file(path, 2, &buf, &len, &e));
    ASSERT_EQ(BS_ENOENT, bs_read_file("/nonexistent/x", 10, &buf, &len, &e));
    ASSERT_CONTAINS(e.msg, "/nonexistent/x");
    char *r = bs_path_resolve("configs/a.json", "../models/m.onnx");
    ASSERT_STR_EQ("configs/../models/m.onnx", r);
    bs_free(r);
    r = bs_path_resolve("configs/a.json", "/abs");
    ASSERT_STR_EQ("/abs", r);
    bs_free(r);
}

BS_TEST(rng_reproducible)
{
    bs_rng_t a, b;
    bs_rng_seed(&a, 9);
    bs_rng_seed(&b, 9);
    int counts[5] = {0};
    for (int i = 0; i < 5000; i++) {
        uint32_t x = bs_rng_below(&a, 5);
        ASSERT_EQ(x, bs_rng_below(&b, 5));
        counts[x]++;
    }
    for (int i = 0; i < 5; i++)
        ASSERT(counts[i] > 800 && counts[i] < 1200);
}

BS_TEST(model_bundled)
{
    bs_model_info_t m;
    bs_err_t e = {0};
    int rc = bs_model_info_load(BS_SRC_DIR "/models/fmnist-cnn.onnx", &m, &e);
    if (rc)
        fprintf(stderr, "%s\n", e.msg);
    ASSERT_OK(rc);
    ASSERT_EQ(4, m.n_layers);
    ASSERT_STR_EQ("conv1", m.layers[0].name);
    ASSERT_STR_EQ("Conv", m.layers[0].op_type);
    ASSERT_STR_EQ("fc2", m.layers[3].name);
    ASSERT_STR_EQ("Gemm", m.layers[3].op_type);
    ASSERT_EQ(16 * 1 * 3 * 3 + 16, m.layers[0].n_params);
    ASSERT_EQ(10 * 64 + 10, m.layers[3].n_params);
    ASSERT_EQ(13, m.opset);
    bs_model_info_free(&m);
}

BS_TEST(model_corrupt)
{
    char *buf;
    size_t len;
    bs_err_t e;
    ASSERT_OK(bs_read_file(BS_SRC_DIR "/models/fmnist-cnn.onnx", 1 << 24, &buf, &len, &e));
    bs_model_info_t m;
    /* Truncations at many points: an error, never a crash. */
    for (size_t cut = 0; cut < len; cut += len / 97 + 1) {
        int rc = bs_model_info_parse(buf, cut, &m, &e);
        if (rc == 0)
            bs_model_info_free(&m);
        else
            ASSERT_EQ(BS_EMODEL, rc);
    }
    ASSERT_EQ(BS_EMODEL, bs_model_info_parse("garbage!", 8, &m, &e));
    bs_free(buf);
    ASSERT_EQ(BS_ENOENT, bs_model_info_load("/nonexistent.onnx", &m, &e));
}

BS_TEST(alloc_failure)
{
    bs_alloc_fail_after(0);
    ASSERT(bs_strdup("x") == NULL);
    bs_alloc_fail_after(-1);
    char *s = bs_strdup("x");
    ASSERT(s);
    bs_free(s);
}

#define TESTS(X)                                                                                 \
    X(error_names) X(precision_parse) X(spec_apply) X(metrics_json_roundtrip) X(sha_and_files)   \
    X(rng_reproducible) X(model_bundled) X(model_corrupt) X(alloc_failure)
BS_TEST_MAIN(TESTS)

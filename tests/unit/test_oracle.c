/*
 * test_oracle.c - the oracle problem file (bench/bs_oracle.c): a small oracle (two layers,
 * three choices, nine rows) written by bs_oracle_save and read back by bs_oracle_load field
 * for field; the index helpers; and the strict reader: the written text with one line
 * changed, removed or added must fail with BS_EDATA and a message naming "file:line" and
 * what was expected; and the committed bench/oracle/fmnist-cnn.csv: it parses, matches the
 * bundled model's SHA-256 and has sane figures.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bs_alloc.h"
#include "bs_oracle.h"
#include "bs_test.h"
#include "bs_util.h"

#define S_HEX "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* A 2-layer x 3-choice oracle; every array allocated. */
static void s_small(bs_oracle_t *o, int with_uniform)
{
    memset(o, 0, sizeof *o);
    o->n_layers = 2;
    o->layers = bs_calloc(2, sizeof *o->layers);
    ASSERT(o->layers);
    o->layers[0] = bs_strdup("conv1");
    o->layers[1] = bs_strdup("fc");
    o->n_choices = 3;
    ASSERT_OK(bs_prec_parse("w32a32", &o->choices[0]));
    ASSERT_OK(bs_prec_parse("w8a8", &o->choices[1]));
    ASSERT_OK(bs_prec_parse("w4a8", &o->choices[2]));
    o->n_configs = 9;
    o->accuracy = bs_calloc(9, sizeof *o->accuracy);
    o->latency_ms = bs_calloc(9, sizeof *o->latency_ms);
    o->weight_bytes = bs_calloc(9, sizeof *o->weight_bytes);
    o->layer_ms = bs_calloc(6, sizeof *o->layer_ms);
    o->model = bs_strdup("tiny.onnx");
    o->data = bs_strdup("t10k first 3 images, calibration 2 train images minmax, weights mse");
    o->machine = bs_strdup("Test CPU, engine test, date 2026-01-01T00:00:00.000Z");
    snprintf(o->sha256, sizeof o->sha256, "%s", S_HEX);
    o->base_ms = 0.012345;
    const double lm[6] = {0.100001, 0.050002, 0.040003, 0.020004, 0.010005, 0.008006};
    memcpy(o->layer_ms, lm, sizeof lm);
    if (with_uniform) {
        o->uniform_ms = bs_calloc(3, sizeof *o->uniform_ms);
        o->uniform_ms[0] = 0.1325;
        o->uniform_ms[1] = 0.0725;
        o->uniform_ms[2] = 0.0601;
    }
    int cand[2];
    for (int64_t r = 0; r < 9; r++) {
        bs_oracle_cand(o, r, cand);
        o->accuracy[r] = r == 4 ? 1.0 / 3.0 : 0.9 - 0.01 * (double)r;
        o->latency_ms[r] = bs_oracle_latency(o, cand);
        o->weight_bytes[r] = 1000 - 100 * r;
    }
}

static char *s_path(const char *name)
{
    static char p[1024];
    snprintf(p, sizeof p, "%s/%s", bs_test_tmpdir(), name);
    return p;
}

BS_TEST(round_trip)
{
    bs_oracle_t a, b;
    bs_err_t err = {0};
    s_small(&a, 1);
    const char *path = s_path("small.csv");
    ASSERT_OK(bs_oracle_save(path, &a, &err));
    ASSERT_OK(bs_oracle_load(path, &b, &err));
    ASSERT_EQ(2, b.n_layers);
    ASSERT_STR_EQ("conv1", b.layers[0]);
    ASSERT_STR_EQ("fc", b.layers[1]);
    ASSERT_EQ(3, b.n_choices);
    for (int k = 0; k < 3; k++)
        ASSERT(bs_prec_eq(a.choices[k], b.choices[k]));
    ASSERT_EQ(9, b.n_configs);
    ASSERT_STR_EQ("tiny.onnx", b.model);
    ASSERT_STR_EQ(S_HEX, b.sha256);
    ASSERT_STR_EQ(a.data, b.data);
    ASSERT_STR_EQ(a.machine, b.machine);
    ASSERT_DBL_NEAR(a.base_ms, b.base_ms, 1e-9);
    for (int i = 0; i < 6; i++)
        ASSERT_DBL_NEAR(a.layer_ms[i], b.layer_ms[i], 1e-9);
    ASSERT(b.uniform_ms);
    for (int k = 0; k < 3; k++)
        ASSERT_DBL_NEAR(a.uniform_ms[k], b.uniform_ms[k], 1e-9);
    for (int r = 0; r < 9; r++) {
        ASSERT_DBL_NEAR(a.accuracy[r], b.accuracy[r], 1e-9);
        ASSERT_DBL_NEAR(a.latency_ms[r], b.latency_ms[r], 1e-6);
        ASSERT_EQ(a.weight_bytes[r], b.weight_bytes[r]);
    }
    /* the text: header as documented, rows in mixed-radix order with quoted assignments */
    char *text = NULL;
    size_t len = 0;
    ASSERT_OK(bs_read_file(path, 1 << 20, &text, &len, &err));
    ASSERT(strncmp(text, "# bitscout oracle v1\n# model: tiny.onnx sha256 " S_HEX "\n", 86) == 0);
    ASSERT_CONTAINS(text, "\n# layers: conv1 fc\n# choices: w32a32 w8a8 w4a8\n"
                          "# base_ms: 0.012345\n# layer_ms: conv1 0.100001 0.050002 0.040003\n"
                          "# layer_ms: fc 0.020004 0.010005 0.008006\n");
    ASSERT_CONTAINS(text, "\ncand,assignment,accuracy,latency_ms,weight_bytes\n"
                          "0-0,\"conv1=w32a32,fc=w32a32\",0.9000,0.132350,1000\n"
                          "0-1,\"conv1=w32a32,fc=w8a8\",0.8900,");
    ASSERT_CONTAINS(text, "\n1-1,\"conv1=w8a8,fc=w8a8\",0.3333333333,");
    ASSERT_CONTAINS(text, "\n2-2,\"conv1=w4a8,fc=w4a8\",0.8200,0.060354,200\n");
    bs_free(text);
    bs_oracle_free(&a);
    bs_oracle_free(&b);
    ASSERT(b.layers == NULL && b.n_configs == 0);
}

BS_TEST(index_helpers)
{
    bs_oracle_t o;
    s_small(&o, 0);
    int cand[2] = {2, 1};
    ASSERT_EQ(7, bs_oracle_index(&o, cand));
    int back[2];
    bs_oracle_cand(&o, 7, back);
    ASSERT_EQ(2, back[0]);
    ASSERT_EQ(1, back[1]);
    cand[1] = 3;
    ASSERT_EQ(-1, bs_oracle_index(&o, cand));
    cand[1] = -1;
    ASSERT_EQ(-1, bs_oracle_index(&o, cand));
    bs_prec_t p[2];
    ASSERT_OK(bs_prec_parse("w8a8", &p[0]));
    ASSERT_OK(bs_prec_parse("w4a8", &p[1]));
    ASSERT_EQ(5, bs_oracle_index_precs(&o, p));
    ASSERT_OK(bs_prec_parse("w2a8", &p[1]));
    ASSERT_EQ(-1, bs_oracle_index_precs(&o, p));
    ASSERT_DBL_NEAR(0.012345 + 0.040003 + 0.010005, bs_oracle_latency(&o, (int[]){2, 1}),
                    1e-12);
    bs_oracle_free(&o);
}

BS_TEST(no_uniform_line)
{
    bs_oracle_t a, b;
    bs_err_t err = {0};
    s_small(&a, 0);
    const char *path = s_path("nouni.csv");
    ASSERT_OK(bs_oracle_save(path, &a, &err));
    ASSERT_OK(bs_oracle_load(path, &b, &err));
    ASSERT(b.uniform_ms == NULL);
    ASSERT_EQ(9, b.n_configs);
    bs_oracle_free(&a);
    bs_oracle_free(&b);
}

BS_TEST(save_refuses_inconsistent)
{
    bs_oracle_t a;
    bs_err_t err = {0};
    s_small(&a, 0);
    a.n_configs = 8;
    ASSERT_EQ(BS_EINVAL, bs_oracle_save(s_path("x.csv"), &a, &err));
    ASSERT_CONTAINS(err.msg, "n_configs");
    a.n_configs = 9;
    a.sha256[3] = 'X';
    ASSERT_EQ(BS_EINVAL, bs_oracle_save(s_path("x.csv"), &a, &err));
    bs_oracle_free(&a);
}

/* The good text as lines (at most 64), for mutating. */
typedef struct s_lines {
    int n;
    char *l[64];
    char *text;
} s_lines_t;

static void s_good_lines(s_lines_t *s)
{
    bs_oracle_t a;
    bs_err_t err = {0};
    s_small(&a, 1);
    const char *path = s_path("good.csv");
    ASSERT_OK(bs_oracle_save(path, &a, &err));
    bs_oracle_free(&a);
    size_t len = 0;
    memset(s, 0, sizeof *s);
    ASSERT_OK(bs_read_file(path, 1 << 20, &s->text, &len, &err));
    for (char *p = s->text; *p;) {
        char *nl = strchr(p, '\n');
        ASSERT(nl && s->n < 64);
        *nl = '\0';
        s->l[s->n++] = p;
        p = nl + 1;
    }
    ASSERT_EQ(20, s->n); /* 10 header lines, the column line, 9 rows */
}

/* Writes the good lines with line `at` (1-based) replaced by repl (NULL: removed; with
 * insert: repl goes before it), loads, and expects BS_EDATA naming "file:want_line:" and
 * hint. */
static void s_expect_bad(int at, const char *repl, int insert, int want_line, const char *hint)
{
    s_lines_t s;
    s_good_lines(&s);
    bs_buf_t b = {0};
    for (int i = 0; i < s.n; i++) {
        if (i + 1 == at && repl)
            bs_buf_printf(&b, "%s\n", repl);
        if (i + 1 != at || insert)
            bs_buf_printf(&b, "%s\n", s.l[i]);
    }
    if (at == s.n + 1 && repl)
        bs_buf_printf(&b, "%s\n", repl);
    const char *path = s_path("bad.csv");
    bs_err_t err = {0};
    ASSERT_OK(bs_write_file(path, b.data ? b.data : "", b.len, &err));
    bs_buf_free(&b);
    bs_free(s.text);
    bs_oracle_t o;
    int rc = bs_oracle_load(path, &o, &err);
    if (getenv("BS_TEST_VERBOSE"))
        fprintf(stderr, "  %s\n", err.msg);
    ASSERT_EQ(BS_EDATA, rc);
    char where[1100];
    snprintf(where, sizeof where, "%s:%d: ", path, want_line);
    ASSERT_CONTAINS(err.msg, where);
    ASSERT_CONTAINS(err.msg, hint);
    ASSERT(o.layers == NULL && o.accuracy == NULL && o.n_configs == 0);
}

BS_TEST(bad_header_lines)
{
    s_expect_bad(1, "# bitscout oracle v2", 0, 1, "not an oracle file");
    s_expect_bad(2, "# model: tiny.onnx sha256 abc", 0, 2, "sha256");
    s_expect_bad(2, "# model: tiny.onnx", 0, 2, "model:");
    s_expect_bad(3, "# data:", 0, 3, "data: expected a description");
    s_expect_bad(4, "# colour: blue", 1, 4, "unknown header key: colour");
    s_expect_bad(4, "#machine: x", 0, 4, "expected a header line");
    s_expect_bad(6, "# layers: conv1 fc", 1, 6, "\"layers\" given twice");
    s_expect_bad(5, "# layers: conv1 conv1", 0, 5, "named twice: conv1");
    s_expect_bad(5, "# layers: conv1  fc", 0, 5, "layers: expected");
    s_expect_bad(6, "# choices: w32a32 w8a8 w5a5", 0, 6, "not a precision (wBaB): w5a5");
    s_expect_bad(6, "# choices: w32a32 w8a8 w8a8", 0, 6, "listed twice: w8a8");
    s_expect_bad(7, "# base_ms: fast", 0, 7, "base_ms: expected a number, got fast");
    s_expect_bad(8, "# layer_ms: conv1 0.1 0.2", 0, 8, "expected a layer name and 3 numbers");
    s_expect_bad(8, "# layer_ms: conv9 0.1 0.2 0.3", 0, 8, "not one of the layers: conv9");
    s_expect_bad(9, "# layer_ms: conv1 0.1 0.2 0.3", 0, 9, "given twice for conv1");
    s_expect_bad(9, "# layer_ms: fc 0.1 -0.2 0.3", 0, 9,
                 "layer_ms: expected a number >= 0, got -0.2");
    s_expect_bad(10, "# uniform_ms: 0.1 nan 0.3", 0, 10,
                 "uniform_ms: expected a number >= 0, got nan");
    s_expect_bad(5, "# layer_ms: fc 0.1 0.2 0.3", 1, 5, "must come after");
    /* base_ms removed: the column line (now line 10) says what is missing */
    s_expect_bad(7, NULL, 0, 10, "missing base_ms");
    s_expect_bad(9, NULL, 0, 10, "missing layer_ms");
    s_expect_bad(11, "cand,assignment,accuracy,latency,weight_bytes", 0, 11, "column line");
    s_expect_bad(12, "", 1, 12, "empty line");
}

BS_TEST(bad_rows)
{
    /* row 0 is line 12, row r is line 12 + r */
    s_expect_bad(13, "0-0,\"conv1=w32a32,fc=w32a32\",0.9000,0.132350,1000", 0, 13,
                 "row 1: expected it to start with 0-1,\"conv1=w32a32,fc=w8a8\",");
    s_expect_bad(12, "0-0,\"conv1=w32a32,fc=w8a8\",0.9000,0.132350,1000", 0, 12,
                 "expected it to start with");
    s_expect_bad(12, "0-0,conv1=w32a32,fc=w32a32,0.9000,0.132350,1000", 0, 12,
                 "expected it to start with");
    s_expect_bad(12, "0-0,\"conv1=w32a32,fc=w32a32\",1.5,0.132350,1000", 0, 12,
                 "accuracy: expected a number in [0, 1]");
    s_expect_bad(12, "0-0,\"conv1=w32a32,fc=w32a32\",0.9,,1000", 0, 12,
                 "latency_ms: expected a number >= 0");
    s_expect_bad(12, "0-0,\"conv1=w32a32,fc=w32a32\",0.9,0.2,1000", 0, 12,
                 "latency_ms 0.200000 disagrees with base_ms + layer_ms = 0.132350");
    s_expect_bad(12, "0-0,\"conv1=w32a32,fc=w32a32\",0.9,0.132350,-3", 0, 12, "weight_bytes");
    s_expect_bad(12, "0-0,\"conv1=w32a32,fc=w32a32\",0.9,0.132350,12x", 0, 12, "weight_bytes");
    s_expect_bad(12, "0-0,\"conv1=w32a32,fc=w32a32\",0.9,0.132350,1000,7", 0, 12,
                 "weight_bytes");
    s_expect_bad(12, "0-0,\"conv1=w32a32,fc=w32a32\",0.9", 0, 12, "expected 5 fields");
    s_expect_bad(21, "3-0,\"conv1=w32a32,fc=w32a32\",0.9,0.132350,1000", 0, 21, "more rows");
    s_expect_bad(20, NULL, 0, 19, "8 rows, expected 9");
    s_expect_bad(15, "# layers: conv1 fc", 0, 15, "expected it to start with");
}

BS_TEST(unreadable_files)
{
    bs_oracle_t o;
    bs_err_t err = {0};
    const char *path = s_path("absent.csv");
    ASSERT_EQ(BS_ENOENT, bs_oracle_load(path, &o, &err));
    ASSERT_CONTAINS(err.msg, path);
    path = s_path("empty.csv");
    ASSERT_OK(bs_write_file(path, "", 0, &err));
    ASSERT_EQ(BS_EDATA, bs_oracle_load(path, &o, &err));
    ASSERT_CONTAINS(err.msg, "empty file");
    path = s_path("nul.csv");
    ASSERT_OK(bs_write_file(path, "# bitscout oracle v1\n\0x", 23, &err));
    ASSERT_EQ(BS_EDATA, bs_oracle_load(path, &o, &err));
    ASSERT_CONTAINS(err.msg, "NUL");
    path = s_path("headonly.csv");
    ASSERT_OK(bs_write_file(path, "# bitscout oracle v1\n", 21, &err));
    ASSERT_EQ(BS_EDATA, bs_oracle_load(path, &o, &err));
    ASSERT_CONTAINS(err.msg, ":1: no column line");
}

/* The committed oracle of the bundled model: it parses, belongs to models/fmnist-cnn.onnx as
 * it is now, and its figures are sane (bench/README.md, "Oracle problem (issue 6)"). */
BS_TEST(bundled_oracle)
{
    char path[1024], model[1024];
    snprintf(path, sizeof path, "%s/bench/oracle/fmnist-cnn.csv", BS_SRC_DIR);
    snprintf(model, sizeof model, "%s/models/fmnist-cnn.onnx", BS_SRC_DIR);
    bs_oracle_t o;
    bs_err_t err = {0};
    ASSERT_OK(bs_oracle_load(path, &o, &err));
    char hex[65];
    ASSERT_OK(bs_sha256_file(model, hex, NULL, &err));
    ASSERT_STR_EQ(hex, o.sha256);
    ASSERT_STR_EQ("fmnist-cnn.onnx", o.model);
    ASSERT_EQ(4, o.n_layers);
    ASSERT_STR_EQ("conv1", o.layers[0]);
    ASSERT_STR_EQ("conv2", o.layers[1]);
    ASSERT_STR_EQ("fc1", o.layers[2]);
    ASSERT_STR_EQ("fc2", o.layers[3]);
    static const char *const order[8] = {"w32a32", "w32a8", "w8a32", "w8a8",
                                         "w4a32",  "w4a8",  "w2a32", "w2a8"};
    ASSERT_EQ(8, o.n_choices);
    for (int k = 0; k < 8; k++) {
        char t[BS_PREC_TEXT_MAX];
        bs_prec_format(o.choices[k], t);
        ASSERT_STR_EQ(order[k], t);
    }
    ASSERT_EQ(4096, o.n_configs);
    ASSERT(o.uniform_ms);
    int u[4];
    int64_t row[8];
    for (int k = 0; k < 8; k++) {
        u[0] = u[1] = u[2] = u[3] = k;
        row[k] = bs_oracle_index(&o, u);
    }
    ASSERT_DBL_NEAR(0.917, o.accuracy[row[0]], 0.005); /* fp32 */
    ASSERT_DBL_NEAR(0.914, o.accuracy[row[3]], 0.005); /* w8a8 */
    ASSERT_EQ(429672, o.weight_bytes[row[0]]);
    ASSERT_EQ(108128, o.weight_bytes[row[3]]);
    ASSERT_EQ(28400, o.weight_bytes[row[7]]);
    ASSERT(o.accuracy[row[7]] < o.accuracy[row[5]] - 0.03); /* w2a8 well below w4a8 */
    ASSERT(o.latency_ms[row[3]] < o.latency_ms[row[0]]);    /* w8a8 faster than fp32 */
    /* fewer weight bits in one layer (same activations) never costs weight bytes */
    int c[4];
    for (int64_t r = 0; r < o.n_configs; r++) {
        ASSERT(o.latency_ms[r] > 0);
        bs_oracle_cand(&o, r, c);
        for (int l = 0; l < 4; l++) {
            if (c[l] + 2 >= 8)
                continue;
            int d[4] = {c[0], c[1], c[2], c[3]};
            d[l] += 2; /* same activation bits, the next lower weight bits */
            ASSERT(o.weight_bytes[bs_oracle_index(&o, d)] <= o.weight_bytes[r]);
        }
    }
    bs_oracle_free(&o);
}

#define TESTS(X)                                                                                 \
    X(round_trip)                                                                                \
    X(index_helpers)                                                                             \
    X(no_uniform_line)                                                                           \
    X(save_refuses_inconsistent)                                                                 \
    X(bad_header_lines)                                                                          \
    X(bad_rows)                                                                                  \
    X(unreadable_files)                                                                          \
    X(bundled_oracle)
BS_TEST_MAIN(TESTS)

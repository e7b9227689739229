/*
 * test_data.c - data files and metrics of the engine: IDX and .npy round trips on files the
 * tests write (raw and gzipped), truncated and corrupt files with the errors they must give,
 * .npy headers good and bad, the preprocessing arithmetic (scale, mean, std, layouts, resize),
 * and the metrics on hand-made logits. The bundled Fashion-MNIST test files are read too when
 * the Debian package is installed.
 */
#include "bs_alloc.h"
#include "bs_data.h"
#include "bs_idx.h"
#include "bs_npy.h"
#include "bs_test.h"
#include "bs_util.h"

#include <math.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static const char *s_path(const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", bs_test_tmpdir(), name);
    return buf[k];
}

static void s_write(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    ASSERT(f != NULL);
    ASSERT_EQ(n, fwrite(p, 1, n, f));
    ASSERT_EQ(0, fclose(f));
}

static void s_write_gz(const char *path, const void *p, size_t n)
{
    gzFile g = gzopen(path, "wb");
    ASSERT(g != NULL);
    ASSERT_EQ((int)n, gzwrite(g, p, (unsigned)n));
    ASSERT_EQ(Z_OK, gzclose(g));
}

static uint8_t *s_read(const char *path, size_t *n)
{
    char *buf;
    ASSERT_OK(bs_read_file(path, 1 << 26, &buf, n, NULL));
    return (uint8_t *)buf;
}

/* ---- IDX ----------------------------------------------------------------------------------- */

static void s_pattern(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 7 + 3);
}

BS_TEST(idx_roundtrip_raw)
{
    int64_t dims[3] = {3, 4, 5};
    uint8_t data[60];
    s_pattern(data, sizeof data);
    const char *p = s_path("a.idx");
    bs_err_t err = {0};
    ASSERT_OK(bs_idx_save(p, 3, dims, data, 0, &err));
    bs_idx_t x;
    ASSERT_OK(bs_idx_load(p, BS_IDX_MAX_BYTES, &x, &err));
    ASSERT_EQ(3, x.ndim);
    ASSERT_EQ(3, x.dims[0]);
    ASSERT_EQ(4, x.dims[1]);
    ASSERT_EQ(5, x.dims[2]);
    ASSERT_EQ(60, x.nbytes);
    ASSERT(memcmp(x.data, data, 60) == 0);
    bs_idx_free(&x);
    /* the file is the format exactly: magic, big-endian dims, data */
    size_t n;
    uint8_t *raw = s_read(p, &n);
    ASSERT_EQ(4 + 12 + 60, n);
    ASSERT_EQ(0x08, raw[2]);
    ASSERT_EQ(3, raw[3]);
    ASSERT_EQ(5, raw[15]);
    ASSERT_OK(bs_idx_parse(raw, n, "mem", BS_IDX_MAX_BYTES, &x, &err));
    ASSERT_EQ(60, x.nbytes);
    bs_idx_free(&x);
    bs_free(raw);
}

BS_TEST(idx_roundtrip_gzip)
{
    int64_t dims[1] = {1000};
    uint8_t data[1000];
    s_pattern(data, sizeof data);
    const char *p = s_path("labels.idx1.gz");
    bs_err_t err = {0};
    ASSERT_OK(bs_idx_save(p, 1, dims, data, 1, &err));
    size_t n;
    uint8_t *raw = s_read(p, &n);
    ASSERT_EQ(0x1f, raw[0]); /* really gzipped */
    bs_idx_t x;
    ASSERT_OK(bs_idx_load(p, BS_IDX_MAX_BYTES, &x, &err));
    ASSERT_EQ(1, x.ndim);
    ASSERT_EQ(1000, x.dims[0]);
    ASSERT(memcmp(x.data, data, 1000) == 0);
    bs_idx_free(&x);
    ASSERT_OK(bs_idx_parse(raw, n, "mem", BS_IDX_MAX_BYTES, &x, &err));
    ASSERT(memcmp(x.data, data, 1000) == 0);
    bs_idx_free(&x);
    bs_free(raw);
}

BS_TEST(idx_truncated)
{
    int64_t dims[3] = {10, 8, 8};
    uint8_t data[640];
    s_pattern(data, sizeof data);
    const char *p = s_path("t.idx");
    ASSERT_OK(bs_idx_save(p, 3, dims, data, 0, NULL));
    size_t n;
    uint8_t *raw = s_read(p, &n);
    bs_err_t err = {0};
    bs_idx_t x;

    /* data cut short */
    const char *q = s_path("short.idx");
    s_write(q, raw, n - 5);
    ASSERT_EQ(BS_EDATA, bs_idx_load(q, BS_IDX_MAX_BYTES, &x, &err));
    ASSERT_CONTAINS(err.msg, "short.idx");
    ASSERT_CONTAINS(err.msg, "truncated");
    ASSERT_CONTAINS(err.msg, "640");
    ASSERT(x.data == NULL);
    /* header cut short */
    s_write(q, raw, 9);
    ASSERT_EQ(BS_EDATA, bs_idx_load(q, BS_IDX_MAX_BYTES, &x, &err));
    ASSERT_CONTAINS(err.msg, "truncated header");
    s_write(q, raw, 2);
    ASSERT_EQ(BS_EDATA, bs_idx_load(q, BS_IDX_MAX_BYTES, &x, &err));
    ASSERT_CONTAINS(err.msg, "too short");
    s_write(q, raw, 0);
    ASSERT_EQ(BS_EDATA, bs_idx_load(q, BS_IDX_MAX_BYTES, &x, &err));
    /* gzip stream cut short: from a file and from memory */
    const char *gz = s_path("t.idx.gz");
    ASSERT_OK(bs_idx_save(gz, 3, dims, data, 1, NULL));
    size_t gn;
    uint8_t *graw = s_read(gz, &gn);
    const char *gq = s_path("short.idx.gz");
    s_write(gq, graw, gn / 2);
    int rc = bs_idx_load(gq, BS_IDX_MAX_BYTES, &x, &err);
    ASSERT_EQ(BS_EDATA, rc);
    ASSERT_CONTAINS(err.msg, "short.idx.gz");
    ASSERT_EQ(BS_EDATA, bs_idx_parse(graw, gn / 2, "mem.gz", BS_IDX_MAX_BYTES, &x, &err));
    ASSERT_CONTAINS(err.msg, "mem.gz");
    ASSERT_CONTAINS(err.msg, "truncated");
    /* a gzip file missing only its trailer (CRC and size) */
    s_write(gq, graw, gn - 4);
    ASSERT_EQ(BS_EDATA, bs_idx_load(gq, BS_IDX_MAX_BYTES, &x, &err));
    ASSERT_EQ(BS_EDATA, bs_idx_parse(graw, gn - 4, "mem.gz", BS_IDX_MAX_BYTES, &x, &err));
    bs_free(graw);
    bs_free(raw);
}

BS_TEST(idx_corrupt)
{
    bs_err_t err = {0};
    bs_idx_t x;
    const char *p = s_path("bad.idx");
    /* bad magic */
    uint8_t bad[] = {1, 0, 8, 1, 0, 0, 0, 1, 42};
    s_write(p, bad, sizeof bad);
    ASSERT_EQ(BS_EDATA, bs_idx_load(p, BS_IDX_MAX_BYTES, &x, &err));
    ASSERT_CONTAINS(err.msg, "bad.idx");
    ASSERT_CONTAINS(err.msg, "not an IDX file");
    /* float elements: a valid IDX type this reader refuses */
    uint8_t flt[] = {0, 0, 0x0D, 1, 0, 0, 0, 1, 0, 0, 0, 0};
    ASSERT_EQ(BS_EUNSUPPORTED, bs_idx_parse(flt, sizeof flt, "f.idx", 1 << 20, &x, &err));
    ASSERT_CONTAINS(err.msg, "float");
    uint8_t unk[] = {0, 0, 0x42, 1, 0, 0, 0, 1, 0};
    ASSERT_EQ(BS_EDATA, bs_idx_parse(unk, sizeof unk, "u.idx", 1 << 20, &x, &err));
    ASSERT_CONTAINS(err.msg, "0x42");
    /* no dimensions, a zero dimension, trailing bytes */
    uint8_t nodim[] = {0, 0, 8, 0};
    ASSERT_EQ(BS_EDATA, bs_idx_parse(nodim, sizeof nodim, "n.idx", 1 << 20, &x, &err));
    ASSERT_CONTAINS(err.msg, "0 dimensions");
    uint8_t zero[] = {0, 0, 8, 2, 0, 0, 0, 3, 0, 0, 0, 0};
    ASSERT_EQ(BS_EDATA, bs_idx_parse(zero, sizeof zero, "z.idx", 1 << 20, &x, &err));
    ASSERT_CONTAINS(err.msg, "dimension 1 is 0");
    uint8_t extra[] = {0, 0, 8, 1, 0, 0, 0, 2, 5, 6, 7};
    ASSERT_EQ(BS_EDATA, bs_idx_parse(extra, sizeof extra, "e.idx", 1 << 20, &x, &err));
    ASSERT_CONTAINS(err.msg, "1 unexpected bytes");
    /* the size cap: dims announcing 2^32 * 2^32 bytes, and a cap smaller than the data */
    uint8_t huge[] = {0, 0, 8, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    ASSERT_EQ(BS_ETOOBIG, bs_idx_parse(huge, sizeof huge, "h.idx", BS_IDX_MAX_BYTES, &x, &err));
    ASSERT_CONTAINS(err.msg, "limit");
    uint8_t ok[] = {0, 0, 8, 1, 0, 0, 0, 4, 1, 2, 3, 4};
    ASSERT_EQ(BS_ETOOBIG, bs_idx_parse(ok, sizeof ok, "ok.idx", 3, &x, &err));
    ASSERT_OK(bs_idx_parse(ok, sizeof ok, "ok.idx", 4, &x, &err));
    bs_idx_free(&x);
    /* a corrupt gzip stream: deflate data overwritten */
    int64_t dims[2] = {64, 64};
    uint8_t data[4096];
    s_pattern(data, sizeof data);
    const char *gz = s_path("c.idx.gz");
    ASSERT_OK(bs_idx_save(gz, 2, dims, data, 1, NULL));
    size_t gn;
    uint8_t *graw = s_read(gz, &gn);
    for (size_t i = 12; i < gn - 8 && i < 40; i++)
        graw[i] ^= 0x5a;
    s_write(gz, graw, gn);
    ASSERT_EQ(BS_EDATA, bs_idx_load(gz, BS_IDX_MAX_BYTES, &x, &err));
    ASSERT_CONTAINS(err.msg, "c.idx.gz");
    ASSERT_EQ(BS_EDATA, bs_idx_parse(graw, gn, "c.gz", BS_IDX_MAX_BYTES, &x, &err));
    bs_free(graw);
    /* a gzip bomb stays under the cap */
    uint8_t *zeros = bs_calloc(1, 1 << 20);
    ASSERT_OK(bs_idx_save(gz, 1, (int64_t[]){1 << 20}, zeros, 1, NULL));
    bs_free(zeros);
    ASSERT_EQ(BS_ETOOBIG, bs_idx_load(gz, 4096, &x, &err));
    ASSERT_CONTAINS(err.msg, "decompressed");
    graw = s_read(gz, &gn);
    ASSERT_EQ(BS_ETOOBIG, bs_idx_parse(graw, gn, "bomb.gz", 4096, &x, &err));
    bs_free(graw);
    /* missing file, directory */
    ASSERT_EQ(BS_ENOENT, bs_idx_load(s_path("nope.idx"), BS_IDX_MAX_BYTES, &x, &err));
    ASSERT_CONTAINS(err.msg, "nope.idx");
    ASSERT_EQ(BS_EIO, bs_idx_load(bs_test_tmpdir(), BS_IDX_MAX_BYTES, &x, &err));
    ASSERT_CONTAINS(err.msg, "not a regular file");
}

/* ---- NPY ----------------------------------------------------------------------------------- */

BS_TEST(npy_roundtrip)
{
    bs_err_t err = {0};
    float f[6] = {1.5f, -2.0f, 0.0f, 3.25f, 1e-7f, -1e30f};
    uint8_t u[5] = {0, 1, 128, 254, 255};
    int8_t i8[1] = {-7};
    int32_t i32[4] = {INT32_MIN, -1, 0, INT32_MAX};
    int64_t i64[3] = {INT64_MIN, 42, INT64_MAX};
    struct {
        int dtype, ndim;
        int64_t dims[3];
        const void *data;
        size_t nbytes;
        const char *descr;
    } cases[] = {
        {BS_DT_FLOAT, 2, {2, 3}, f, sizeof f, "'<f4'"},
        {BS_DT_UINT8, 1, {5}, u, sizeof u, "'|u1'"},
        {BS_DT_INT8, 0, {0}, i8, sizeof i8, "'|i1'"},
        {BS_DT_INT32, 3, {2, 1, 2}, i32, sizeof i32, "'<i4'"},
        {BS_DT_INT64, 1, {3}, i64, sizeof i64, "'<i8'"},
        {BS_DT_FLOAT, 2, {0, 3}, f, 0, "'<f4'"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const char *p = s_path("r.npy");
        ASSERT_OK(
            bs_npy_save(p, cases[c].dtype, cases[c].ndim, cases[c].dims, cases[c].data, &err));
        size_t n;
        uint8_t *raw = s_read(p, &n);
        size_t hlen = raw[8] | (raw[9] << 8);
        ASSERT_EQ(0, (10 + hlen) % 64);
        ASSERT_EQ('\n', raw[10 + hlen - 1]);
        ASSERT(strstr((char *)raw + 10, cases[c].descr) != NULL);
        bs_free(raw);
        bs_npy_t a;
        ASSERT_OK(bs_npy_load(p, BS_NPY_MAX_BYTES, &a, &err));
        ASSERT_EQ(cases[c].dtype, a.dtype);
        ASSERT_EQ(cases[c].ndim, a.ndim);
        for (int i = 0; i < a.ndim; i++)
            ASSERT_EQ(cases[c].dims[i], a.dims[i]);
        ASSERT_EQ(cases[c].nbytes, a.nbytes);
        ASSERT(a.data != NULL);
        ASSERT(cases[c].nbytes == 0 || memcmp(a.data, cases[c].data, a.nbytes) == 0);
        bs_npy_free(&a);
    }
    /* the 1-D shape is written as NumPy does, "(5,)" */
    uint8_t *buf;
    size_t len;
    ASSERT_OK(bs_npy_encode(BS_DT_UINT8, 1, (int64_t[]){5}, u, &buf, &len, &err));
    ASSERT(strstr((char *)buf + 10, "'shape': (5,)") != NULL);
    bs_free(buf);
    ASSERT_EQ(BS_EUNSUPPORTED,
              bs_npy_encode(BS_DT_DOUBLE, 1, (int64_t[]){1}, f, &buf, &len, &err));
}

/* Builds a .npy buffer with the given version and header text (padded as NumPy does) and n
 * data bytes of value 1. */
static uint8_t *s_npy(int major, const char *dict, size_t ndata, size_t *len)
{
    size_t pre = major == 1 ? 10 : 12, dl = strlen(dict);
    size_t total = (pre + dl + 1 + 63) / 64 * 64, hlen = total - pre;
    uint8_t *b = bs_malloc(total + ndata + 1);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (uint8_t)major;
    b[7] = 0;
    b[8] = (uint8_t)hlen;
    b[9] = (uint8_t)(hlen >> 8);
    if (major > 1)
        b[10] = b[11] = 0;
    memcpy(b + pre, dict, dl);
    memset(b + pre + dl, ' ', hlen - dl - 1);
    b[total - 1] = '\n';
    memset(b + total, 1, ndata);
    *len = total + ndata;
    return b;
}

BS_TEST(npy_versions)
{
    bs_err_t err = {0};
    bs_npy_t a;
    for (int v = 1; v <= 3; v++) {
        size_t len;
        uint8_t *b = s_npy(v, "{\"shape\": (2,2), 'fortran_order':False ,'descr':'|u1'}", 4, &len);
        ASSERT_OK(bs_npy_parse(b, len, "v.npy", BS_NPY_MAX_BYTES, &a, &err));
        ASSERT_EQ(BS_DT_UINT8, a.dtype);
        ASSERT_EQ(2, a.ndim);
        ASSERT_EQ(1, ((uint8_t *)a.data)[3]);
        bs_npy_free(&a);
        bs_free(b);
    }
    /* a scalar */
    size_t len;
    uint8_t *b = s_npy(1, "{'descr': '<i8', 'fortran_order': False, 'shape': (), }", 8, &len);
    ASSERT_OK(bs_npy_parse(b, len, "s.npy", BS_NPY_MAX_BYTES, &a, &err));
    ASSERT_EQ(0, a.ndim);
    ASSERT_EQ(8, a.nbytes);
    bs_npy_free(&a);
    bs_free(b);
}

BS_TEST(npy_bad_headers)
{
    static const struct {
        const char *dict;
        size_t ndata;
        int code;
        const char *msg;
    } cases[] = {
        {"{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 8, BS_EUNSUPPORTED, ">f4"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", 16, BS_EUNSUPPORTED,
         "'<f8' is not supported"},
        {"{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", 16, BS_EUNSUPPORTED,
         "fortran_order"},
        {"{'descr': '<f4', 'shape': (2,), }", 8, BS_EDATA, "missing key 'fortran_order'"},
        {"{'descr': '<f4', 'fortran_order': False}", 8, BS_EDATA, "missing key 'shape'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", 8, BS_EDATA,
         "unknown key 'x'"},
        {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", 8, BS_EDATA,
         "twice"},
        {"{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,)}", 8, BS_EDATA, "True or False"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, -1)}", 8, BS_EDATA, "shape"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': [2]}", 8, BS_EDATA, "tuple"},
        {"{'descr': '<f4, 'fortran_order': False, 'shape': (2,)}", 8, BS_EDATA, "malformed"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} x", 8, BS_EDATA,
         "after the dict"},
        {"'descr': '<f4'", 8, BS_EDATA, "expected '{'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (3,)}", 8, BS_EDATA, "truncated"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", 8, BS_EDATA,
         "4 unexpected bytes"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000, 100000)}", 0,
         BS_ETOOBIG, "limit"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1)}", 4,
         BS_EUNSUPPORTED, "dimensions"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}", 0, BS_EDATA,
         "too large"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        size_t len;
        uint8_t *b = s_npy(1, cases[c].dict, cases[c].ndata, &len);
        bs_err_t err = {0};
        bs_npy_t a;
        int rc = bs_npy_parse(b, len, "bad.npy", BS_NPY_MAX_BYTES, &a, &err);
        if (rc != cases[c].code || !strstr(err.msg, cases[c].msg) || !strstr(err.msg, "bad.npy"))
            bs_test_fail(__FILE__, __LINE__, "case %zu: rc %d, message \"%s\"", c, rc, err.msg);
        ASSERT(a.data == NULL);
        bs_free(b);
    }
    /* preamble problems */
    bs_err_t err = {0};
    bs_npy_t a;
    size_t len;
    uint8_t *b = s_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", 4, &len);
    ASSERT_EQ(BS_EDATA, bs_npy_parse(b, 8, "p.npy", BS_NPY_MAX_BYTES, &a, &err));
    ASSERT_EQ(BS_EDATA, bs_npy_parse(b, 40, "p.npy", BS_NPY_MAX_BYTES, &a, &err));
    ASSERT_CONTAINS(err.msg, "truncated .npy header");
    b[6] = 4;
    ASSERT_EQ(BS_EUNSUPPORTED, bs_npy_parse(b, len, "p.npy", BS_NPY_MAX_BYTES, &a, &err));
    ASSERT_CONTAINS(err.msg, "version 4.0");
    b[6] = 1;
    b[0] = 'x';
    ASSERT_EQ(BS_EDATA, bs_npy_parse(b, len, "p.npy", BS_NPY_MAX_BYTES, &a, &err));
    ASSERT_CONTAINS(err.msg, "not a .npy file");
    bs_free(b);
    ASSERT_EQ(BS_ENOENT, bs_npy_load(s_path("none.npy"), BS_NPY_MAX_BYTES, &a, &err));
    ASSERT_CONTAINS(err.msg, "none.npy");
}

/* ---- arrays: IDX or NPY by content, gzipped or not ----------------------------------------- */

BS_TEST(array_detects_format)
{
    bs_err_t err = {0};
    float f[4] = {1, 2, 3, 4};
    uint8_t *buf;
    size_t len;
    ASSERT_OK(bs_npy_encode(BS_DT_FLOAT, 2, (int64_t[]){2, 2}, f, &buf, &len, &err));
    const char *p = s_path("x.npy.gz");
    s_write_gz(p, buf, len);
    bs_array_t a;
    ASSERT_OK(bs_array_load(p, BS_DATA_MAX_BYTES, &a, &err));
    ASSERT_EQ(BS_DT_FLOAT, a.dtype);
    ASSERT_EQ(2, a.ndim);
    ASSERT(((float *)a.data)[3] == 4.0f);
    bs_array_free(&a);
    ASSERT_OK(bs_array_parse(buf, len, "mem", BS_DATA_MAX_BYTES, &a, &err));
    bs_array_free(&a);
    bs_free(buf);

    uint8_t d[6] = {1, 2, 3, 4, 5, 6};
    p = s_path("y.idx.gz");
    ASSERT_OK(bs_idx_save(p, 2, (int64_t[]){2, 3}, d, 1, &err));
    ASSERT_OK(bs_array_load(p, BS_DATA_MAX_BYTES, &a, &err));
    ASSERT_EQ(BS_DT_UINT8, a.dtype);
    ASSERT_EQ(3, a.dims[1]);
    bs_array_free(&a);

    s_write(p, "hello world", 11);
    ASSERT_EQ(BS_EDATA, bs_array_load(p, BS_DATA_MAX_BYTES, &a, &err));
    ASSERT_CONTAINS(err.msg, "neither an IDX nor a .npy file");
}

/* ---- preprocessing ------------------------------------------------------------------------- */

static int s_pre(const char *json, bs_preprocess_t *p, bs_err_t *err)
{
    cJSON *o = cJSON_Parse(json);
    ASSERT(o != NULL);
    int rc = bs_preprocess_from_json(o, "data.preprocess", p, err);
    cJSON_Delete(o);
    return rc;
}

BS_TEST(preprocess_json)
{
    bs_preprocess_t p;
    bs_err_t err = {0};
    ASSERT_OK(bs_preprocess_from_json(NULL, NULL, &p, &err));
    ASSERT_DBL_NEAR(1.0 / 255.0, p.scale, 1e-9);
    ASSERT_EQ(0, p.nhwc);
    ASSERT_OK(s_pre("{\"scale\": 0.5, \"mean\": [0.1, 0.2, 0.3], \"std\": [1, 2, 4], "
                    "\"layout\": \"NHWC\", \"resize\": [32, 48]}",
                    &p, &err));
    ASSERT_DBL_NEAR(0.5, p.scale, 0);
    ASSERT_EQ(3, p.n_mean);
    ASSERT_DBL_NEAR(0.3, p.mean[2], 1e-7);
    ASSERT_DBL_NEAR(4.0, p.std[2], 0);
    ASSERT_EQ(1, p.nhwc);
    ASSERT_EQ(32, p.resize_h);
    ASSERT_EQ(48, p.resize_w);
    static const struct {
        const char *json, *msg;
    } bad[] = {
        {"{\"scale\": -1}", "data.preprocess.scale: expected a number > 0"},
        {"{\"scale\": \"x\"}", "data.preprocess.scale"},
        {"{\"std\": [1, 0]}", "data.preprocess.std[1]: expected a number > 0"},
        {"{\"mean\": []}", "data.preprocess.mean: expected an array"},
        {"{\"mean\": [1, \"a\"]}", "data.preprocess.mean[1]"},
        {"{\"layout\": \"CHW\"}", "data.preprocess.layout"},
        {"{\"resize\": [0, 4]}", "data.preprocess.resize"},
        {"{\"resize\": [4.5, 4]}", "data.preprocess.resize"},
        {"{\"resize\": [4]}", "data.preprocess.resize"},
        {"{\"mean\": [1, 2], \"std\": [1, 2, 3]}", "must match"},
        {"{\"scal\": 1}", "unknown key \"scal\""},
        {"[1]", "expected an object"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = s_pre(bad[i].json, &p, &err);
        if (rc != BS_ECONFIG || !strstr(err.msg, bad[i].msg))
            bs_test_fail(__FILE__, __LINE__, "%s: rc %d, message \"%s\"", bad[i].json, rc,
                         err.msg);
    }
}

static bs_array_t s_arr(int dtype, int ndim, const int64_t *dims, void *data)
{
    bs_array_t a = {.dtype = dtype, .ndim = ndim, .data = data};
    size_t n = 1;
    for (int i = 0; i < ndim; i++) {
        a.dims[i] = dims[i];
        n *= (size_t)dims[i];
    }
    a.nbytes = n * bs_dtype_size(dtype);
    return a;
}

BS_TEST(dataset_numbers)
{
    /* 3 images of 2x2 pixels, one channel; model input [1,1,2,2] */
    uint8_t px[12] = {0, 51, 102, 255, 10, 20, 30, 40, 1, 2, 3, 4};
    uint8_t lab[3] = {7, 1, 2};
    bs_array_t img = s_arr(BS_DT_UINT8, 3, (int64_t[]){3, 2, 2}, px);
    bs_array_t labels = s_arr(BS_DT_UINT8, 1, (int64_t[]){3}, lab);
    bs_preprocess_t pre;
    bs_preprocess_default(&pre);
    pre.n_mean = pre.n_std = 1;
    pre.mean[0] = 0.2f;
    pre.std[0] = 0.5f;
    bs_shape_t in = {4, {1, 1, 2, 2}};
    bs_dataset_t ds;
    bs_err_t err = {0};
    ASSERT_OK(bs_dataset_build(&img, "img", &labels, "lab", 2, &pre, &in, &ds, &err));
    ASSERT_EQ(2, ds.count);
    ASSERT_EQ(4, ds.sample_numel);
    ASSERT_DBL_NEAR((0.0 - 0.2) / 0.5, ds.x[0], 1e-6);
    ASSERT_DBL_NEAR((0.2 - 0.2) / 0.5, ds.x[1], 1e-6);
    ASSERT_DBL_NEAR((0.4 - 0.2) / 0.5, ds.x[2], 1e-6);
    ASSERT_DBL_NEAR((1.0 - 0.2) / 0.5, ds.x[3], 1e-6);
    ASSERT_DBL_NEAR((40 / 255.0 - 0.2) / 0.5, ds.x[7], 1e-6);
    ASSERT_EQ(7, ds.labels[0]);
    ASSERT_EQ(1, ds.labels[1]);
    bs_dataset_free(&ds);
    /* count 0: all; no labels; a flat model input [1, 4] takes the same pixels in order */
    bs_shape_t flat = {2, {1, 4}};
    bs_preprocess_default(&pre);
    ASSERT_OK(bs_dataset_build(&img, "img", NULL, NULL, 0, &pre, &flat, &ds, &err));
    ASSERT_EQ(3, ds.count);
    ASSERT(ds.labels == NULL);
    ASSERT_DBL_NEAR(4 / 255.0, ds.x[11], 1e-7);
    bs_dataset_free(&ds);
    /* a batch of 2 in the model: a sample is still one image */
    bs_shape_t b2 = {4, {2, 1, 2, 2}};
    ASSERT_OK(bs_dataset_build(&img, "img", NULL, NULL, 0, &pre, &b2, &ds, &err));
    ASSERT_EQ(4, ds.sample_numel);
    bs_dataset_free(&ds);
    /* float32 and int8 images */
    float fx[4] = {255, 0, -255, 510};
    bs_array_t fimg = s_arr(BS_DT_FLOAT, 3, (int64_t[]){1, 2, 2}, fx);
    ASSERT_OK(bs_dataset_build(&fimg, "f", NULL, NULL, 0, &pre, &in, &ds, &err));
    ASSERT_DBL_NEAR(-1.0, ds.x[2], 1e-6);
    ASSERT_DBL_NEAR(2.0, ds.x[3], 1e-6);
    bs_dataset_free(&ds);
}

BS_TEST(dataset_layouts)
{
    /* one 2x2 image with 3 channels stored HWC: value = 100*c + 10*h + w */
    uint8_t hwc[12];
    for (int h = 0; h < 2; h++)
        for (int w = 0; w < 2; w++)
            for (int c = 0; c < 3; c++)
                hwc[(h * 2 + w) * 3 + c] = (uint8_t)(100 * c + 10 * h + w);
    bs_array_t img = s_arr(BS_DT_UINT8, 4, (int64_t[]){1, 2, 2, 3}, hwc);
    bs_preprocess_t pre;
    bs_preprocess_default(&pre);
    pre.scale = 1.0f;
    pre.n_mean = 3;
    pre.mean[0] = 0, pre.mean[1] = 1, pre.mean[2] = 2;
    bs_dataset_t ds;
    bs_err_t err = {0};
    /* NCHW model: transposed, per-channel mean */
    bs_shape_t nchw = {4, {1, 3, 2, 2}};
    ASSERT_OK(bs_dataset_build(&img, "img", NULL, NULL, 0, &pre, &nchw, &ds, &err));
    for (int c = 0; c < 3; c++)
        for (int h = 0; h < 2; h++)
            for (int w = 0; w < 2; w++)
                ASSERT_DBL_NEAR(100 * c + 10 * h + w - c, ds.x[(c * 2 + h) * 2 + w], 1e-4);
    bs_dataset_free(&ds);
    /* NHWC model: taken as is */
    pre.nhwc = 1;
    bs_shape_t nhwc = {4, {1, 2, 2, 3}};
    ASSERT_OK(bs_dataset_build(&img, "img", NULL, NULL, 0, &pre, &nhwc, &ds, &err));
    for (int i = 0; i < 12; i++)
        ASSERT_DBL_NEAR(hwc[i] - (i % 3), ds.x[i], 1e-4);
    bs_dataset_free(&ds);
    /* a CHW file into an NHWC model: transposed */
    uint8_t chw[12];
    for (int c = 0; c < 3; c++)
        for (int h = 0; h < 2; h++)
            for (int w = 0; w < 2; w++)
                chw[(c * 2 + h) * 2 + w] = (uint8_t)(100 * c + 10 * h + w);
    bs_array_t cimg = s_arr(BS_DT_UINT8, 4, (int64_t[]){1, 3, 2, 2}, chw);
    ASSERT_OK(bs_dataset_build(&cimg, "img", NULL, NULL, 0, &pre, &nhwc, &ds, &err));
    for (int i = 0; i < 12; i++)
        ASSERT_DBL_NEAR(hwc[i] - (i % 3), ds.x[i], 1e-4);
    bs_dataset_free(&ds);
    /* mismatches */
    bs_shape_t other = {4, {1, 3, 4, 4}};
    pre.nhwc = 0;
    ASSERT_EQ(BS_EDATA, bs_dataset_build(&img, "img.npy", NULL, NULL, 0, &pre, &other, &ds, &err));
    ASSERT_CONTAINS(err.msg, "img.npy: samples of shape [2,2,3] do not fit the model input "
                             "[1,3,4,4] (NCHW)");
    bs_shape_t gray = {4, {1, 1, 2, 2}};
    bs_array_t gimg = s_arr(BS_DT_UINT8, 3, (int64_t[]){3, 2, 2}, hwc);
    ASSERT_EQ(BS_ECONFIG, bs_dataset_build(&gimg, "img", NULL, NULL, 0, &pre, &gray, &ds, &err));
    ASSERT_CONTAINS(err.msg, "3 mean / 0 std entries for 1 channels");
    bs_shape_t vec = {2, {1, 5}};
    pre.n_mean = 0;
    ASSERT_EQ(BS_EDATA, bs_dataset_build(&img, "img", NULL, NULL, 0, &pre, &vec, &ds, &err));
    ASSERT_CONTAINS(err.msg, "12 elements");
}

BS_TEST(dataset_resize)
{
    float px[4] = {0, 1, 2, 3};
    bs_array_t img = s_arr(BS_DT_FLOAT, 3, (int64_t[]){1, 2, 2}, px);
    bs_preprocess_t pre;
    bs_preprocess_default(&pre);
    pre.scale = 1.0f;
    pre.resize_h = pre.resize_w = 4;
    bs_shape_t in = {4, {1, 1, 4, 4}};
    bs_dataset_t ds;
    bs_err_t err = {0};
    ASSERT_OK(bs_dataset_build(&img, "img", NULL, NULL, 0, &pre, &in, &ds, &err));
    /* PyTorch interpolate(mode="bilinear", align_corners=False) of [[0,1],[2,3]] to 4x4 */
    static const float want[16] = {0.0f, 0.25f, 0.75f, 1.0f, 0.5f, 0.75f, 1.25f, 1.5f,
                                   1.5f, 1.75f, 2.25f, 2.5f, 2.0f, 2.25f, 2.75f, 3.0f};
    for (int i = 0; i < 16; i++)
        ASSERT_DBL_NEAR(want[i], ds.x[i], 1e-6);
    bs_dataset_free(&ds);
    /* downscale 4x4 -> 2x2 averages 2x2 blocks' centres; [N,H,W,1] is single-channel too */
    float big[16];
    for (int i = 0; i < 16; i++)
        big[i] = (float)i;
    bs_array_t bimg = s_arr(BS_DT_FLOAT, 4, (int64_t[]){1, 4, 4, 1}, big);
    pre.resize_h = pre.resize_w = 2;
    bs_shape_t in2 = {4, {1, 1, 2, 2}};
    ASSERT_OK(bs_dataset_build(&bimg, "img", NULL, NULL, 0, &pre, &in2, &ds, &err));
    ASSERT_DBL_NEAR(2.5, ds.x[0], 1e-6);
    ASSERT_DBL_NEAR(4.5, ds.x[1], 1e-6);
    ASSERT_DBL_NEAR(10.5, ds.x[2], 1e-6);
    bs_dataset_free(&ds);
    /* colour images are refused */
    float col[12] = {0};
    bs_array_t cimg = s_arr(BS_DT_FLOAT, 4, (int64_t[]){1, 2, 2, 3}, col);
    ASSERT_EQ(BS_EDATA, bs_dataset_build(&cimg, "c", NULL, NULL, 0, &pre, &in2, &ds, &err));
    ASSERT_CONTAINS(err.msg, "single-channel");
}

BS_TEST(dataset_errors)
{
    uint8_t px[8] = {0};
    bs_array_t img = s_arr(BS_DT_UINT8, 3, (int64_t[]){2, 2, 2}, px);
    bs_preprocess_t pre;
    bs_preprocess_default(&pre);
    bs_shape_t in = {4, {1, 1, 2, 2}};
    bs_dataset_t ds;
    bs_err_t err = {0};
    ASSERT_EQ(BS_EDATA, bs_dataset_build(&img, "img", NULL, NULL, 3, &pre, &in, &ds, &err));
    ASSERT_CONTAINS(err.msg, "3 samples asked, the file holds 2");
    uint8_t one[1] = {1};
    bs_array_t lab = s_arr(BS_DT_UINT8, 1, (int64_t[]){1}, one);
    ASSERT_EQ(BS_EDATA, bs_dataset_build(&img, "img", &lab, "lab", 0, &pre, &in, &ds, &err));
    ASSERT_CONTAINS(err.msg, "lab has 1 labels but img has 2 samples");
    /* Even when fewer samples are used: a label file of another length is another data set. */
    ASSERT_EQ(BS_EDATA, bs_dataset_build(&img, "img", &lab, "lab", 1, &pre, &in, &ds, &err));
    uint8_t two[2] = {1, 0};
    bs_array_t lab_ok = s_arr(BS_DT_UINT8, 1, (int64_t[]){2}, two);
    ASSERT_OK(bs_dataset_build(&img, "img", &lab_ok, "lab", 1, &pre, &in, &ds, &err));
    bs_dataset_free(&ds);
    float fl[2] = {0, 1};
    bs_array_t flab = s_arr(BS_DT_FLOAT, 1, (int64_t[]){2}, fl);
    ASSERT_EQ(BS_EDATA, bs_dataset_build(&img, "img", &flab, "lab", 0, &pre, &in, &ds, &err));
    ASSERT_CONTAINS(err.msg, "integers");
    int32_t neg[2] = {0, -3};
    bs_array_t nlab = s_arr(BS_DT_INT32, 1, (int64_t[]){2}, neg);
    ASSERT_EQ(BS_EDATA, bs_dataset_build(&img, "img", &nlab, "lab", 0, &pre, &in, &ds, &err));
    ASSERT_CONTAINS(err.msg, "negative");
    bs_array_t lab2 = s_arr(BS_DT_UINT8, 2, (int64_t[]){2, 2}, px);
    ASSERT_EQ(BS_EDATA, bs_dataset_build(&img, "img", &lab2, "lab", 0, &pre, &in, &ds, &err));
    ASSERT_CONTAINS(err.msg, "[N] or [N, 1]");
    bs_array_t vec = s_arr(BS_DT_UINT8, 1, (int64_t[]){8}, px);
    ASSERT_EQ(BS_EDATA, bs_dataset_build(&vec, "img", NULL, NULL, 0, &pre, &in, &ds, &err));
    ASSERT_CONTAINS(err.msg, "at least 2 dimensions");
    bs_array_t empty = s_arr(BS_DT_UINT8, 3, (int64_t[]){0, 2, 2}, px);
    ASSERT_EQ(BS_EDATA, bs_dataset_build(&empty, "img", NULL, NULL, 0, &pre, &in, &ds, &err));
    ASSERT_CONTAINS(err.msg, "no samples");
    bs_array_t hollow = s_arr(BS_DT_UINT8, 4, (int64_t[]){2, 0, 5, 1}, px);
    pre.resize_h = pre.resize_w = 2;
    ASSERT_EQ(BS_EDATA, bs_dataset_build(&hollow, "img", NULL, NULL, 0, &pre, &in, &ds, &err));
    ASSERT_CONTAINS(err.msg, "no elements");
    ASSERT(ds.x == NULL);
}

BS_TEST(dataset_files)
{
    /* through files: gzipped IDX images and .npy int64 labels */
    uint8_t px[2 * 3 * 3];
    s_pattern(px, sizeof px);
    bs_err_t err = {0};
    const char *ip = s_path("img.gz"), *lp = s_path("lab.npy");
    ASSERT_OK(bs_idx_save(ip, 3, (int64_t[]){2, 3, 3}, px, 1, &err));
    int64_t lab[2] = {4, 9};
    ASSERT_OK(bs_npy_save(lp, BS_DT_INT64, 2, (int64_t[]){2, 1}, lab, &err));
    bs_preprocess_t pre;
    bs_preprocess_default(&pre);
    bs_shape_t in = {4, {1, 1, 3, 3}};
    bs_dataset_t ds;
    ASSERT_OK(bs_dataset_load(ip, lp, 0, &pre, &in, &ds, &err));
    ASSERT_EQ(2, ds.count);
    ASSERT_EQ(9, ds.labels[1]);
    ASSERT_DBL_NEAR(px[17] / 255.0, ds.x[17], 1e-6);
    bs_dataset_free(&ds);
    ASSERT_EQ(BS_ENOENT, bs_dataset_load(ip, s_path("missing"), 0, &pre, &in, &ds, &err));
    ASSERT_CONTAINS(err.msg, "missing");
}

BS_TEST(fashion_mnist)
{
    const char *img = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
    const char *lab = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz";
    if (access(img, R_OK) != 0 || access(lab, R_OK) != 0) {
        fprintf(stderr, "fashion_mnist: dataset-fashion-mnist not installed; skipped\n");
        return;
    }
    bs_idx_t x;
    bs_err_t err = {0};
    ASSERT_OK(bs_idx_load(img, BS_IDX_MAX_BYTES, &x, &err));
    ASSERT_EQ(3, x.ndim);
    ASSERT_EQ(10000, x.dims[0]);
    ASSERT_EQ(28, x.dims[1]);
    ASSERT_EQ(28, x.dims[2]);
    bs_idx_free(&x);
    bs_preprocess_t pre;
    bs_preprocess_default(&pre);
    bs_shape_t in = {4, {1, 1, 28, 28}};
    bs_dataset_t ds;
    ASSERT_OK(bs_dataset_load(img, lab, 1000, &pre, &in, &ds, &err));
    ASSERT_EQ(1000, ds.count);
    ASSERT_EQ(784, ds.sample_numel);
    int64_t hist[10] = {0};
    for (int i = 0; i < 1000; i++) {
        ASSERT(ds.labels[i] >= 0 && ds.labels[i] < 10);
        hist[ds.labels[i]]++;
    }
    for (int c = 0; c < 10; c++)
        ASSERT(hist[c] > 50);   /* the test set is balanced */
    ASSERT_EQ(9, ds.labels[0]); /* the first test image is an ankle boot */
    bs_dataset_free(&ds);
}

/* ---- metrics ------------------------------------------------------------------------------- */

BS_TEST(metrics)
{
    const float logits[4 * 3] = {
        0.1f, 0.7f, 0.2f, /* -> 1 */
        2.0f, -1.f, 2.0f, /* tie -> 0 */
        NAN,  0.5f, 0.4f, /* NaN never wins -> 1 */
        -3.f, -2.f, -1.f, /* -> 2 */
    };
    ASSERT_EQ(1, bs_argmax(logits, 3));
    ASSERT_EQ(0, bs_argmax(logits + 3, 3));
    ASSERT_EQ(1, bs_argmax(logits + 6, 3));
    ASSERT_EQ(2, bs_argmax(logits + 9, 3));
    const int64_t labels[4] = {1, 2, 1, 2};
    double acc = 0;
    bs_err_t err = {0};
    ASSERT_OK(bs_metric_top1(logits, 4, 3, labels, &acc, &err));
    ASSERT_DBL_NEAR(0.75, acc, 1e-12);
    const int64_t badl[2] = {1, 3};
    ASSERT_EQ(BS_EDATA, bs_metric_top1(logits, 2, 3, badl, &acc, &err));
    ASSERT_CONTAINS(err.msg, "label 3 of sample 1");

    const float ref[4 * 3] = {0, 1, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1};
    ASSERT_DBL_NEAR(1.0, bs_metric_agreement(logits, ref, 4, 3), 1e-12);
    const float ref2[4 * 3] = {1, 0, 0, 1, 0, 0, 0, 1, 0, 1, 0, 0};
    ASSERT_DBL_NEAR(0.5, bs_metric_agreement(logits, ref2, 4, 3), 1e-12);
    ASSERT_DBL_NEAR(1.0, bs_metric_agreement(logits, ref2, 0, 3), 0);

    const float r[2] = {3, 4}, o[2] = {3, 3};
    ASSERT_DBL_NEAR(10.0 * log10(25.0), bs_metric_sqnr_db(o, r, 2), 1e-9);
    ASSERT(isinf(bs_metric_sqnr_db(r, r, 2)) && bs_metric_sqnr_db(r, r, 2) > 0);
    const float r3[3] = {1, -1, 2}, o3[3] = {1.1f, -0.9f, 2.1f};
    ASSERT_DBL_NEAR(10.0 * log10(6.0 / 0.03), bs_metric_sqnr_db(o3, r3, 3), 1e-4);
}

#define TESTS(X)                                                                                  \
    X(idx_roundtrip_raw)                                                                          \
    X(idx_roundtrip_gzip)                                                                         \
    X(idx_truncated)                                                                              \
    X(idx_corrupt)                                                                                \
    X(npy_roundtrip)                                                                              \
    X(npy_versions)                                                                               \
    X(npy_bad_headers)                                                                            \
    X(array_detects_format)                                                                       \
    X(preprocess_json)                                                                            \
    X(dataset_numbers)                                                                            \
    X(dataset_layouts)                                                                            \
    X(dataset_resize)                                                                             \
    X(dataset_errors)                                                                             \
    X(dataset_files)                                                                              \
    X(fashion_mnist)                                                                              \
    X(metrics)

BS_TEST_MAIN(TESTS)

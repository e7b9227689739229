/*
 * test_quant.c - weight quantization, the packed layout, fp16 weights and activation
 * calibration (bs_quant.h).
 *
 * The layout tests pin bytes by hand (4-bit and 2-bit) and round-trip codes through every
 * width and awkward row lengths; the scale tests check min-max's half-step bound, that the MSE
 * search is never worse than min-max (and strictly better on a heavy-tailed row at low width),
 * and the bytes held. The last test quantizes the bundled model's fc1 weights at 8..2 bits
 * with both methods and prints the relative RMS errors (numbers compared, never timings).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "bs_alloc.h"
#include "bs_graph.h"
#include "bs_quant.h"
#include "bs_tensor.h"
#include "bs_test.h"
#include "bs_util.h"
#include "onnx.pb-c.h"

static const int s_widths[] = {8, 7, 6, 5, 4, 3, 2};
#define S_NW ((int)(sizeof s_widths / sizeof s_widths[0]))

/* A normal deviate (Box-Muller). */
static float s_gauss(bs_rng_t *r)
{
    double u = bs_rng_uniform(r), v = bs_rng_uniform(r);
    return (float)(sqrt(-2.0 * log(1.0 - u)) * cos(6.283185307179586 * v));
}

/* Squared error of row n of q against the row w (stride 1), from dequantized values. */
static double s_row_err(const bs_qweight_t *q, int n, const float *w)
{
    float *d = bs_malloc((size_t)q->K * sizeof(float));
    ASSERT(d);
    bs_qweight_dequant_row(q, n, 0, q->K, d);
    double e = 0.0;
    for (int k = 0; k < q->K; k++) {
        double x = (double)w[k] - (double)d[k];
        e += x * x;
    }
    bs_free(d);
    return e;
}

BS_TEST(pack_4bit_layout)
{
    const int8_t codes[5] = {1, -1, 2, -2, 7};
    uint8_t b[4] = {0xAA, 0xAA, 0xAA, 0xAA};
    bs_qpack_row(codes, 5, 4, b);
    ASSERT_EQ(0xF1, b[0]); /* element 0 low nibble, element 1 (-1 = 0xF) high nibble */
    ASSERT_EQ(0xE2, b[1]);
    ASSERT_EQ(0x07, b[2]); /* padding nibble zero */
    ASSERT_EQ(0xAA, b[3]); /* nothing past the row written */
    int8_t back[5];
    bs_qunpack_row(b, 4, 0, 5, back);
    ASSERT(memcmp(codes, back, 5) == 0);
    bs_qunpack_row(b, 4, 3, 5, back);
    ASSERT_EQ(-2, back[0]);
    ASSERT_EQ(7, back[1]);
}

BS_TEST(pack_2bit_and_3bit_layout)
{
    const int8_t c2[6] = {1, -1, 0, 1, -1, 1};
    uint8_t b[3] = {0};
    bs_qpack_row(c2, 6, 2, b);
    /* byte 0: q0 bits 0-1 = 01, q1 bits 2-3 = 11, q2 bits 4-5 = 00, q3 bits 6-7 = 01 */
    ASSERT_EQ(0x4D, b[0]);
    ASSERT_EQ(0x07, b[1]); /* q4 = 11, q5 = 01 */
    ASSERT_EQ(2u, BS_QROW_BYTES(6, 2));

    const int8_t c3[3] = {3, -3, -1}; /* 011, 101, 111 */
    uint8_t t[2] = {0};
    bs_qpack_row(c3, 3, 3, t);
    /* stream: bits 0-2 = 011, 3-5 = 101, 6-8 = 111 */
    ASSERT_EQ(0x03 | (0x5 << 3) | (0x3 << 6), t[0]);
    ASSERT_EQ(0x01, t[1]);
    int8_t back[3];
    bs_qunpack_row(t, 3, 0, 3, back);
    ASSERT(memcmp(c3, back, 3) == 0);

    const int8_t c8[2] = {-127, 127};
    uint8_t e[2];
    bs_qpack_row(c8, 2, 8, e);
    ASSERT_EQ(0x81, e[0]);
    ASSERT_EQ(0x7F, e[1]);
}

BS_TEST(pack_round_trip_all_widths)
{
    static const int Ks[] = {1, 3, 7, 31, 33, 100};
    bs_rng_t r;
    bs_rng_seed(&r, 7);
    for (int wi = 0; wi < S_NW; wi++) {
        int bits = s_widths[wi], qmax = BS_QMAX(bits);
        for (size_t ki = 0; ki < sizeof Ks / sizeof Ks[0]; ki++) {
            int K = Ks[ki];
            int8_t codes[100], back[100];
            uint8_t buf[100 + 1];
            for (int k = 0; k < K; k++)
                codes[k] = (int8_t)((int)bs_rng_below(&r, (uint32_t)(2 * qmax + 1)) - qmax);
            codes[0] = (int8_t)-qmax;
            codes[K - 1] = (int8_t)qmax;
            size_t rb = BS_QROW_BYTES(K, bits);
            buf[rb] = 0x5A;
            bs_qpack_row(codes, K, bits, buf);
            ASSERT_EQ(0x5A, buf[rb]);
            /* padding bits at the row's end are zero */
            unsigned used = (unsigned)((K * bits) % 8);
            if (used)
                ASSERT_EQ(0, buf[rb - 1] >> used);
            bs_qunpack_row(buf, bits, 0, K, back);
            for (int k = 0; k < K; k++)
                if (codes[k] != back[k])
                    bs_test_fail(__FILE__, __LINE__, "%d bits K=%d: code %d: %d != %d", bits, K, k,
                                 codes[k], back[k]);
            /* every sub-range */
            for (int k0 = 0; k0 <= K; k0 += 1 + K / 5)
                for (int k1 = k0; k1 <= K; k1 += 1 + K / 7) {
                    bs_qunpack_row(buf, bits, k0, k1, back);
                    ASSERT(k1 == k0 || memcmp(codes + k0, back, (size_t)(k1 - k0)) == 0);
                }
        }
    }
}

BS_TEST(minmax_half_step_bound)
{
    enum { N = 5, K = 33 };
    float W[N * K];
    bs_rng_t r;
    bs_rng_seed(&r, 11);
    for (int i = 0; i < N * K; i++)
        W[i] = s_gauss(&r) * (float)(1 + i / K);
    for (int wi = 0; wi < S_NW; wi++) {
        bs_qweight_t q;
        bs_err_t e;
        ASSERT_OK(bs_quantize_weights(W, K, 1, N, K, s_widths[wi], BS_QSCALE_MINMAX, &q, &e));
        ASSERT_EQ(s_widths[wi], q.bits);
        ASSERT_EQ(BS_QROW_BYTES(K, s_widths[wi]), q.row_bytes);
        for (int n = 0; n < N; n++) {
            float amax = 0.0f, d[K];
            int8_t c[K];
            for (int k = 0; k < K; k++)
                amax = fmaxf(amax, fabsf(W[n * K + k]));
            ASSERT_DBL_NEAR(amax / BS_QMAX(s_widths[wi]), q.scales[n], 1e-6 * amax);
            bs_qweight_dequant_row(&q, n, 0, K, d);
            bs_qweight_unpack_row(&q, n, 0, K, c);
            int hit_max = 0;
            for (int k = 0; k < K; k++) {
                double err = fabs((double)W[n * K + k] - (double)d[k]);
                ASSERT(err <= q.scales[n] * 0.5 * (1 + 1e-5));
                ASSERT(abs(c[k]) <= BS_QMAX(s_widths[wi]));
                ASSERT(d[k] == q.scales[n] * (float)c[k]);
                hit_max |= abs(c[k]) == BS_QMAX(s_widths[wi]);
            }
            ASSERT(hit_max); /* the largest weight uses the top code */
            /* a K-range of a row matches the whole row */
            float part[K];
            bs_qweight_dequant_row(&q, n, 5, 20, part);
            ASSERT(memcmp(part, d + 5, 15 * sizeof(float)) == 0);
        }
        bs_qweight_free(&q);
        ASSERT(q.data == NULL && q.scales == NULL);
        bs_qweight_free(&q); /* twice is fine */
    }
}

BS_TEST(mse_never_worse_than_minmax)
{
    enum { N = 8, K = 256 };
    float *W = bs_malloc(N * K * sizeof(float));
    ASSERT(W);
    bs_rng_t r;
    bs_rng_seed(&r, 3);
    for (int n = 0; n < N; n++)
        for (int k = 0; k < K; k++) {
            float g = s_gauss(&r);
            /* rows 0-3 Gaussian, 4-7 heavy-tailed (a cube of a Gaussian) */
            W[n * K + k] = n < 4 ? g : g * g * g;
        }
    W[4 * K + 17] = 30.0f; /* one big outlier */
    for (int wi = 0; wi < S_NW; wi++) {
        int bits = s_widths[wi];
        bs_qweight_t a, b;
        ASSERT_OK(bs_quantize_weights(W, K, 1, N, K, bits, BS_QSCALE_MINMAX, &a, NULL));
        ASSERT_OK(bs_quantize_weights(W, K, 1, N, K, bits, BS_QSCALE_MSE, &b, NULL));
        ASSERT_EQ(BS_QSCALE_MSE, b.method);
        for (int n = 0; n < N; n++) {
            double ea = s_row_err(&a, n, W + n * K), eb = s_row_err(&b, n, W + n * K);
            if (!(eb <= ea))
                bs_test_fail(__FILE__, __LINE__, "%d bits row %d: MSE %.9g > min-max %.9g", bits,
                             n, eb, ea);
            if (bits <= 3 && n >= 4 && !(eb < 0.9 * ea))
                bs_test_fail(__FILE__, __LINE__,
                             "%d bits heavy-tailed row %d: MSE %.9g not clearly below %.9g", bits,
                             n, eb, ea);
        }
        bs_qweight_free(&a);
        bs_qweight_free(&b);
    }
    bs_free(W);
}

BS_TEST(bytes_held)
{
    enum { N = 16, K = 100 };
    float *W = bs_calloc(N * K, sizeof(float));
    ASSERT(W);
    for (int i = 0; i < N * K; i++)
        W[i] = (float)((i * 37) % 19) - 9.0f;
    bs_qweight_t q;
    ASSERT_OK(bs_quantize_weights(W, K, 1, N, K, 4, BS_QSCALE_MSE, &q, NULL));
    ASSERT_EQ(16 * 50 + 16 * 4, bs_qweight_bytes(&q));
    bs_qweight_free(&q);
    ASSERT_OK(bs_quantize_weights(W, K, 1, N, K, 3, BS_QSCALE_MSE, &q, NULL));
    ASSERT_EQ(16 * 38 + 64, bs_qweight_bytes(&q)); /* ceil(300 / 8) = 38 */
    bs_qweight_free(&q);
    ASSERT_OK(bs_quantize_weights(W, K, 1, N, K, 2, BS_QSCALE_MSE, &q, NULL));
    ASSERT_EQ(16 * 25 + 64, bs_qweight_bytes(&q));
    bs_qweight_free(&q);
    ASSERT_OK(bs_quantize_weights(W, K, 1, N, K, 8, BS_QSCALE_MINMAX, &q, NULL));
    ASSERT_EQ(16 * 100 + 64, bs_qweight_bytes(&q));
    bs_qweight_free(&q);
    ASSERT_EQ(0, bs_qweight_bytes(&q));
    ASSERT_EQ(0, bs_qweight_bytes(NULL));
    bs_free(W);
}

BS_TEST(zero_rows)
{
    enum { N = 3, K = 7 };
    float W[N * K] = {0};
    W[1 * K + 3] = -2.5f; /* row 1 is not zero */
    W[2 * K + 0] = -0.0f;
    for (int wi = 0; wi < S_NW; wi++) {
        for (int m = 0; m < 2; m++) {
            bs_qweight_t q;
            ASSERT_OK(bs_quantize_weights(W, K, 1, N, K, s_widths[wi], m, &q, NULL));
            for (int n = 0; n < N; n++) {
                int8_t c[K];
                float d[K];
                ASSERT(q.scales[n] > 0.0f);
                bs_qweight_unpack_row(&q, n, 0, K, c);
                bs_qweight_dequant_row(&q, n, 0, K, d);
                for (int k = 0; k < K; k++) {
                    if (n == 1 && k == 3) {
                        ASSERT_EQ(-BS_QMAX(s_widths[wi]), c[k]);
                        ASSERT_DBL_NEAR(-2.5, d[k], 1e-6);
                    } else {
                        ASSERT_EQ(0, c[k]);
                        ASSERT(d[k] == 0.0f);
                    }
                }
            }
            ASSERT_EQ(1.0f, q.scales[0]);
            bs_qweight_free(&q);
        }
    }
}

BS_TEST(strided_views)
{
    /* A [K, N] matrix (MatMul / Gemm without transB) seen as N x K with sn = 1, sk = N, and
     * the same matrix reversed with negative strides: all give the same codes. */
    enum { N = 6, K = 13 };
    float A[N * K], T[K * N];
    bs_rng_t r;
    bs_rng_seed(&r, 5);
    for (int n = 0; n < N; n++)
        for (int k = 0; k < K; k++) {
            A[n * K + k] = s_gauss(&r);
            T[k * N + n] = A[n * K + k];
        }
    for (int wi = 0; wi < S_NW; wi++) {
        int bits = s_widths[wi];
        bs_qweight_t qa, qt, qr;
        ASSERT_OK(bs_quantize_weights(A, K, 1, N, K, bits, BS_QSCALE_MSE, &qa, NULL));
        ASSERT_OK(bs_quantize_weights(T, 1, N, N, K, bits, BS_QSCALE_MSE, &qt, NULL));
        /* rows reversed and columns reversed: start at the last element */
        ASSERT_OK(
            bs_quantize_weights(A + N * K - 1, -K, -1, N, K, bits, BS_QSCALE_MSE, &qr, NULL));
        ASSERT(memcmp(qa.data, qt.data, N * qa.row_bytes) == 0);
        ASSERT(memcmp(qa.scales, qt.scales, N * sizeof(float)) == 0);
        for (int n = 0; n < N; n++) {
            int8_t ca[K], cr[K];
            bs_qweight_unpack_row(&qa, n, 0, K, ca);
            bs_qweight_unpack_row(&qr, N - 1 - n, 0, K, cr);
            for (int k = 0; k < K; k++)
                ASSERT_EQ(ca[k], cr[K - 1 - k]);
            ASSERT(qa.scales[n] == qr.scales[N - 1 - n]);
        }
        bs_qweight_free(&qa);
        bs_qweight_free(&qt);
        bs_qweight_free(&qr);
    }
}

BS_TEST(bad_args)
{
    float W[4] = {1, 2, 3, 4};
    bs_qweight_t q;
    bs_err_t e;
    memset(&q, 0x55, sizeof q);
    ASSERT_EQ(BS_EINVAL, bs_quantize_weights(W, 2, 1, 2, 2, 1, BS_QSCALE_MSE, &q, &e));
    ASSERT_CONTAINS(e.msg, "1 bits");
    ASSERT(q.data == NULL && q.scales == NULL); /* zeroed on failure */
    ASSERT_EQ(BS_EINVAL, bs_quantize_weights(W, 2, 1, 2, 2, 9, BS_QSCALE_MSE, &q, &e));
    ASSERT_CONTAINS(e.msg, "9 bits, expected an integer width of 2 to 8");
    ASSERT_EQ(BS_EINVAL, bs_quantize_weights(W, 2, 1, 0, 2, 4, BS_QSCALE_MSE, &q, &e));
    ASSERT_CONTAINS(e.msg, "0 x 2 matrix");
    ASSERT_EQ(BS_EINVAL, bs_quantize_weights(W, 2, 1, 2, -1, 4, BS_QSCALE_MSE, &q, &e));
    ASSERT_CONTAINS(e.msg, "K > 0");
    ASSERT_EQ(BS_EINVAL, bs_quantize_weights(W, 2, 1, 2, 2, 4, 7, &q, &e));
    ASSERT_CONTAINS(e.msg, "scale method 7");
    ASSERT_EQ(BS_EINVAL, bs_quantize_weights(NULL, 2, 1, 2, 2, 4, BS_QSCALE_MSE, &q, &e));
    ASSERT_CONTAINS(e.msg, "no weight data");
    ASSERT_EQ(BS_EINVAL, bs_quantize_weights(W, 2, 1, 2, 2, 4, BS_QSCALE_MSE, NULL, NULL));
    W[3] = NAN;
    ASSERT_EQ(BS_EINVAL, bs_quantize_weights(W, 2, 1, 2, 2, 4, BS_QSCALE_MSE, &q, &e));
    ASSERT_CONTAINS(e.msg, "weight [1][1] is NaN");
    ASSERT(q.data == NULL);
    W[3] = -INFINITY;
    ASSERT_EQ(BS_EINVAL, bs_quantize_weights(W, 2, 1, 2, 2, 4, BS_QSCALE_MINMAX, &q, &e));
    ASSERT_CONTAINS(e.msg, "infinite");
    uint16_t dummy = 0, *h = &dummy; /* must be reset to NULL */
    ASSERT_EQ(BS_EINVAL, bs_f16_weights(W, 2, 1, 2, 0, &h, &e));
    ASSERT(h == NULL);
    ASSERT_CONTAINS(e.msg, "K > 0");
}

BS_TEST(out_of_memory)
{
    float W[12];
    for (int i = 0; i < 12; i++)
        W[i] = (float)i - 5.5f;
    for (long n = 0; n < 4; n++) {
        bs_qweight_t q;
        bs_err_t e;
        bs_alloc_fail_after(n);
        int rc = bs_quantize_weights(W, 4, 1, 3, 4, 4, BS_QSCALE_MSE, &q, &e);
        bs_alloc_fail_after(-1);
        ASSERT_EQ(BS_ENOMEM, rc);
        ASSERT(q.data == NULL);
    }
}

BS_TEST(fp16_round_trip)
{
    enum { N = 3, K = 5 };
    float W[N * K] = {0.0f,   -0.0f,   1.0f,    -2.5f,      65504.0f, 1e-8f,   0.1f,   3.14159265f,
                      -1e-3f, 6.1e-5f, 1000.5f, -0.333333f, 7.0f,     2048.0f, 2049.0f};
    uint16_t *h = NULL;
    bs_err_t e;
    ASSERT_OK(bs_f16_weights(W, K, 1, N, K, &h, &e));
    float d[N * K];
    bs_f16_dequant(h, N * K, d);
    for (int i = 0; i < N * K; i++) {
        ASSERT(fabsf(d[i] - W[i]) <= fabsf(W[i]) * (1.0f / 2048.0f) + 6e-8f);
        ASSERT_EQ(bs_f32_to_f16(d[i]), h[i]); /* exact in the other direction */
    }
    ASSERT_EQ(0x0000, h[0]);
    ASSERT_EQ(0x8000, h[1]);
    ASSERT_EQ(0x3C00, h[2]);
    ASSERT(d[14] == 2048.0f); /* 2049 is a tie between 2048 and 2050: to even */
    bs_free(h);
    /* transposed view */
    ASSERT_OK(bs_f16_weights(W, 1, K, K, N, &h, &e));
    ASSERT_EQ(bs_f32_to_f16(W[1 * K + 0]), h[0 * N + 1]);
    bs_free(h);
    W[7] = 70000.0f;
    ASSERT_EQ(BS_EINVAL, bs_f16_weights(W, K, 1, N, K, &h, &e));
    ASSERT_CONTAINS(e.msg, "weight [1][2] = 70000 does not fit fp16");
    ASSERT(h == NULL);
}

BS_TEST(rounding_half_even)
{
    ASSERT(bs_quant_round(0.5f) == 0.0f);
    ASSERT(bs_quant_round(1.5f) == 2.0f);
    ASSERT(bs_quant_round(2.5f) == 2.0f);
    ASSERT(bs_quant_round(-0.5f) == 0.0f);
    ASSERT(bs_quant_round(-1.5f) == -2.0f);
    ASSERT(bs_quant_round(-2.5f) == -2.0f);
    ASSERT(bs_quant_round(2.4999998f) == 2.0f);
    ASSERT(bs_quant_round(-7.6f) == -8.0f);
    ASSERT(bs_quant_round(8388609.0f) == 8388609.0f);
    /* weights exactly half a step apart: codes round to even (8 bits, min-max: s = 1) */
    bs_qweight_t q;
    float V[7] = {127.0f, 0.5f, 1.5f, 2.5f, -2.5f, -0.5f, -126.5f};
    const int8_t expect[7] = {127, 0, 2, 2, -2, 0, -126};
    ASSERT_OK(bs_quantize_weights(V, 7, 1, 1, 7, 8, BS_QSCALE_MINMAX, &q, NULL));
    ASSERT(q.scales[0] == 1.0f);
    int8_t c[7];
    bs_qweight_unpack_row(&q, 0, 0, 7, c);
    for (int k = 0; k < 7; k++)
        ASSERT_EQ(expect[k], c[k]);
    bs_qweight_free(&q);
}

BS_TEST(calib_minmax_ramp)
{
    bs_calib_t *c = bs_malloc(sizeof *c);
    ASSERT(c);
    bs_calib_init(c);
    float x[1001];
    for (int i = 0; i <= 1000; i++)
        x[i] = -1.0f + 3.0f * (float)i / 1000.0f; /* [-1, 2] */
    bs_calib_observe(c, x, 500);
    bs_calib_observe(c, x + 500, 501); /* range doubles upward */
    float nan_inf[2] = {NAN, INFINITY};
    bs_calib_observe(c, nan_inf, 2);
    ASSERT_DBL_NEAR(1001, c->count, 0);
    ASSERT_DBL_NEAR(2, c->n_nonfinite, 0);
    ASSERT_DBL_NEAR(-1.0, c->min, 0);
    ASSERT_DBL_NEAR(2.0, c->max, 1e-6);
    double total = 0;
    for (int i = 0; i < BS_CALIB_BINS; i++)
        total += c->hist[i];
    ASSERT_DBL_NEAR(1001, total, 0);
    float s;
    int32_t zp;
    bs_err_t e;
    ASSERT_OK(bs_calib_params(c, BS_CALIB_MINMAX, 0, BS_DT_UINT8, &s, &zp, &e));
    ASSERT_DBL_NEAR(3.0 / 255.0, s, 1e-7);
    ASSERT_EQ(85, zp); /* round(1 / (3 / 255)) */
    ASSERT_OK(bs_calib_params(c, BS_CALIB_MINMAX, 0, BS_DT_INT8, &s, &zp, &e));
    ASSERT_DBL_NEAR(3.0 / 255.0, s, 1e-7);
    ASSERT_EQ(-128 + 85, zp);
    /* a ramp is uniform: MSE keeps (nearly) the whole range */
    ASSERT_OK(bs_calib_params(c, BS_CALIB_MSE, 0, BS_DT_UINT8, &s, &zp, &e));
    ASSERT(s > 0.9 * 3.0 / 255.0 && s <= 3.0 / 255.0 * 1.0001);
    /* and percentile 100 is min-max */
    ASSERT_OK(bs_calib_params(c, BS_CALIB_PERCENTILE, 100.0, BS_DT_UINT8, &s, &zp, &e));
    ASSERT_DBL_NEAR(3.0 / 255.0, s, 1e-7);
    ASSERT_EQ(85, zp);
    /* range doubling downward keeps every count */
    float neg = -50.0f;
    bs_calib_observe(c, &neg, 1);
    total = 0;
    for (int i = 0; i < BS_CALIB_BINS; i++)
        total += c->hist[i];
    ASSERT_DBL_NEAR(1002, total, 0);
    ASSERT(c->lo <= -50.0 && c->lo + BS_CALIB_BINS * c->width >= 2.0);
    ASSERT(c->lo + BS_CALIB_BINS * c->width < 2.0 + 2 * 52.0);
    bs_free(c);
}

BS_TEST(calib_percentile_ignores_outliers)
{
    bs_calib_t *c = bs_malloc(sizeof *c);
    ASSERT(c);
    bs_calib_init(c);
    enum { M = 100000 };
    float *x = bs_malloc(M * sizeof(float));
    ASSERT(x);
    bs_rng_t r;
    bs_rng_seed(&r, 9);
    for (int i = 0; i < M; i++)
        x[i] = (float)bs_rng_uniform(&r); /* post-ReLU-like: [0, 1) */
    for (int i = 0; i < 5; i++)
        x[i * 977] = 1000.0f; /* a few outliers */
    bs_calib_observe(c, x, M / 2);
    bs_calib_observe(c, x + M / 2, M / 2);
    float s;
    int32_t zp;
    ASSERT_OK(bs_calib_params(c, BS_CALIB_MINMAX, 0, BS_DT_UINT8, &s, &zp, NULL));
    ASSERT_DBL_NEAR(1000.0 / 255.0, s, 1e-4);
    ASSERT_EQ(0, zp); /* all positive: zero point at the bottom */
    ASSERT_OK(bs_calib_params(c, BS_CALIB_PERCENTILE, 99.99, BS_DT_UINT8, &s, &zp, NULL));
    ASSERT(s * 255.0f < 1.6f); /* the top 10 values are dropped: range ~[0, 1] */
    ASSERT(s * 255.0f > 0.9f);
    ASSERT_EQ(0, zp);
    ASSERT_OK(bs_calib_params(c, BS_CALIB_PERCENTILE, 99.99, BS_DT_INT8, &s, &zp, NULL));
    ASSERT_EQ(-128, zp);
    /* MSE keeps them: clipping five values at 1000 costs more than rounding the rest to 0 */
    ASSERT_OK(bs_calib_params(c, BS_CALIB_MSE, 0, BS_DT_UINT8, &s, &zp, NULL));
    ASSERT_DBL_NEAR(1000.0 / 255.0, s, 1e-4);
    ASSERT_EQ(0, zp);
    bs_free(x);
    bs_free(c);
}

BS_TEST(calib_mse_clips_heavy_tail)
{
    /* Laplace values: the largest of 10^5 lies near 11.5 b; at 8 bits the MSE clip is near
     * 10 b, and at any width it is never wider than min-max */
    bs_calib_t *c = bs_malloc(sizeof *c);
    ASSERT(c);
    bs_calib_init(c);
    bs_rng_t r;
    bs_rng_seed(&r, 13);
    float x[1000];
    for (int b = 0; b < 100; b++) {
        for (int i = 0; i < 1000; i++) {
            double u = bs_rng_uniform(&r) - 0.5;
            x[i] = (float)(u < 0 ? log(1.0 + 2.0 * u) : -log(1.0 - 2.0 * u));
        }
        bs_calib_observe(c, x, 1000);
    }
    float s0, s1;
    int32_t z0, z1;
    ASSERT_OK(bs_calib_params(c, BS_CALIB_MINMAX, 0, BS_DT_INT8, &s0, &z0, NULL));
    ASSERT_OK(bs_calib_params(c, BS_CALIB_MSE, 0, BS_DT_INT8, &s1, &z1, NULL));
    ASSERT(s1 < s0);
    ASSERT(s1 > 0.5f * s0);
    ASSERT(z1 >= -128 && z1 <= 127);
    bs_free(c);
}

BS_TEST(calib_edge_cases)
{
    bs_calib_t c;
    bs_calib_init(&c);
    float s;
    int32_t zp;
    bs_err_t e;
    /* nothing observed */
    ASSERT_OK(bs_calib_params(&c, BS_CALIB_MSE, 0, BS_DT_UINT8, &s, &zp, &e));
    ASSERT(s == 1.0f);
    ASSERT_EQ(0, zp);
    /* constant values, then a wider batch */
    float k[4] = {3.0f, 3.0f, 3.0f, 3.0f};
    bs_calib_observe(&c, k, 4);
    ASSERT(c.width > 0.0);
    ASSERT_OK(bs_calib_params(&c, BS_CALIB_MINMAX, 0, BS_DT_UINT8, &s, &zp, &e));
    ASSERT_DBL_NEAR(3.0 / 255.0, s, 1e-7);
    ASSERT_EQ(0, zp);
    float m[2] = {-4.0f, 10.0f};
    bs_calib_observe(&c, m, 2);
    ASSERT_OK(bs_calib_params(&c, BS_CALIB_PERCENTILE, 99.0, BS_DT_INT8, &s, &zp, &e));
    ASSERT(s > 0.0f);
    ASSERT(zp >= -128 && zp <= 127);
    /* all negative: zero point at the top */
    bs_calib_init(&c);
    float neg[3] = {-1.0f, -2.0f, -0.5f};
    bs_calib_observe(&c, neg, 3);
    ASSERT_OK(bs_calib_params(&c, BS_CALIB_MINMAX, 0, BS_DT_UINT8, &s, &zp, &e));
    ASSERT_EQ(255, zp);
    ASSERT_OK(bs_calib_params(&c, BS_CALIB_MSE, 0, BS_DT_INT8, &s, &zp, &e));
    ASSERT_EQ(127, zp);
    /* bad arguments */
    ASSERT_EQ(BS_EINVAL, bs_calib_params(&c, 9, 0, BS_DT_UINT8, &s, &zp, &e));
    ASSERT_CONTAINS(e.msg, "method 9");
    ASSERT_EQ(BS_EINVAL, bs_calib_params(&c, BS_CALIB_MINMAX, 0, BS_DT_FLOAT, &s, &zp, &e));
    ASSERT_CONTAINS(e.msg, "expected uint8");
    ASSERT_EQ(BS_EINVAL, bs_calib_params(&c, BS_CALIB_PERCENTILE, 100.5, BS_DT_INT8, &s, &zp, &e));
    ASSERT_CONTAINS(e.msg, "percentile 100.5");
}

/* A float initializer's values as stored in the model file (raw_data); caller frees. */
static float *s_initializer_f32(const char *path, const char *name, size_t count)
{
    char *buf;
    size_t len;
    bs_err_t e;
    ASSERT_OK(bs_read_file(path, (size_t)1 << 26, &buf, &len, &e));
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, len, (const uint8_t *)buf);
    bs_free(buf);
    ASSERT(m && m->graph);
    float *out = NULL;
    for (size_t i = 0; i < m->graph->n_initializer && !out; i++) {
        const Onnx__TensorProto *t = m->graph->initializer[i];
        if (t->name && strcmp(t->name, name) == 0 && t->has_raw_data &&
            t->raw_data.len == count * sizeof(float)) {
            out = bs_malloc(t->raw_data.len);
            ASSERT(out);
            memcpy(out, t->raw_data.data, t->raw_data.len);
        }
    }
    onnx__model_proto__free_unpacked(m, NULL);
    ASSERT(out);
    return out;
}

/* fc1 of the bundled model: relative RMS error of the dequantized weights, per width and
 * method; it grows as the width shrinks and MSE is never worse than min-max. */
BS_TEST(fc1_error_table)
{
    bs_graph_t *g = NULL;
    bs_err_t e;
    int rc = bs_graph_load(BS_SRC_DIR "/models/fmnist-cnn.onnx", NULL, &g, &e);
    if (rc != 0)
        bs_test_fail(__FILE__, __LINE__, "load: %s", e.msg);
    const bs_node_t *fc1 = NULL;
    for (int i = 0; i < g->n_nodes; i++)
        if (strcmp(g->nodes[i].name, "fc1") == 0)
            fc1 = &g->nodes[i];
    ASSERT(fc1);
    ASSERT_STR_EQ("Gemm", fc1->op_type);
    const bs_tensor_t *B = bs_node_input(g, fc1, 1);
    ASSERT(B && B->kind == BS_TENSOR_CONST && B->dtype == BS_DT_FLOAT);
    ASSERT_EQ(2, B->shape.rank);
    /* The engine keeps only its packed copy of the weight: read the original from the file. */
    float *W_file = s_initializer_f32(BS_SRC_DIR "/models/fmnist-cnn.onnx", B->name,
                                      (size_t)bs_shape_numel(&B->shape));
    int tb = bs_attr_int(fc1, "transB", 0) != 0;
    /* Gemm: Y = A * B' where B' = transB ? B^T : B, so output channel n is row n of B with
     * transB and column n without. */
    int N = (int)B->shape.d[tb ? 0 : 1], K = (int)B->shape.d[tb ? 1 : 0];
    int64_t sn = tb ? K : 1, sk = tb ? 1 : N;
    const float *W = W_file;
    double ss = 0.0;
    for (int64_t i = 0; i < (int64_t)N * K; i++)
        ss += (double)W[i] * W[i];
    static const int widths[] = {8, 6, 4, 3, 2};
    double rel[5][2];
    float *d = bs_malloc((size_t)K * sizeof(float));
    ASSERT(d);
    printf("fc1 (%d x %d, %zu bytes fp32): relative RMS error of dequantized weights\n", N, K,
           (size_t)N * K * 4);
    printf("  bits   min-max      MSE   bytes held\n");
    for (int wi = 0; wi < 5; wi++) {
        size_t held = 0;
        for (int m = 0; m < 2; m++) {
            bs_qweight_t q;
            ASSERT_OK(bs_quantize_weights(W, sn, sk, N, K, widths[wi], m, &q, &e));
            double err = 0.0;
            for (int n = 0; n < N; n++) {
                bs_qweight_dequant_row(&q, n, 0, K, d);
                for (int k = 0; k < K; k++) {
                    double x = (double)W[n * sn + k * sk] - (double)d[k];
                    err += x * x;
                }
            }
            rel[wi][m] = sqrt(err / ss);
            held = bs_qweight_bytes(&q);
            bs_qweight_free(&q);
        }
        printf("  %4d  %8.5f  %8.5f  %10zu\n", widths[wi], rel[wi][0], rel[wi][1], held);
        ASSERT(rel[wi][1] <= rel[wi][0]);
        if (wi > 0) {
            ASSERT(rel[wi][0] > rel[wi - 1][0]);
            ASSERT(rel[wi][1] > rel[wi - 1][1]);
        }
    }
    ASSERT(rel[0][1] < 0.02);            /* 8 bits: about 1% */
    ASSERT(rel[4][1] < 0.9 * rel[4][0]); /* at 2 bits clipping clearly pays */
    bs_free(d);
    bs_free(W_file);
    bs_graph_free(&g);
}

#define TESTS(X)                                                                                  \
    X(pack_4bit_layout)                                                                           \
    X(pack_2bit_and_3bit_layout)                                                                  \
    X(pack_round_trip_all_widths)                                                                 \
    X(minmax_half_step_bound)                                                                     \
    X(mse_never_worse_than_minmax)                                                                \
    X(bytes_held)                                                                                 \
    X(zero_rows)                                                                                  \
    X(strided_views)                                                                              \
    X(bad_args)                                                                                   \
    X(out_of_memory)                                                                              \
    X(fp16_round_trip)                                                                            \
    X(rounding_half_even)                                                                         \
    X(calib_minmax_ramp)                                                                          \
    X(calib_percentile_ignores_outliers)                                                          \
    X(calib_mse_clips_heavy_tail)                                                                 \
    X(calib_edge_cases)                                                                           \
    X(fc1_error_table)
BS_TEST_MAIN(TESTS)

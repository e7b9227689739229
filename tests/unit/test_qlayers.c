/*
 * test_qlayers.c - weight layers at quantized precisions (bs_ops_quant.c and the Conv / Gemm /
 * MatMul paths that use it), the loader's precision and uint8-chaining passes (bs_graph.c), and
 * the bundled model at every uniform precision (bs_run.c: calibration, bs_run_load_prec).
 *
 * References are written here straight from the math in bs_qkernels.h and bs_ops_quant.c, using
 * only bs_quant.c's documented building blocks (bs_quantize_weights, bs_quant_round): integer
 * layers must match them exactly (integer sums are exact and the float epilogue is one
 * specified multiply), weight-only layers to float-summation tolerance. bs_gemm_wq must equal
 * bs_gemm on the dequantized weight bit for bit under every instruction set (same tiles, same
 * order). The Fashion-MNIST test prints the accuracy table of the issue and asserts that
 * all-w8a8 stays within one point of fp32 and that weight bytes shrink with the width.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "bs_alloc.h"
#include "bs_graph.h"
#include "bs_kernels.h"
#include "bs_qkernels.h"
#include "bs_quant.h"
#include "bs_run.h"
#include "bs_test.h"
#include "bs_tmodel.h"

#define S_MODEL BS_SRC_DIR "/models/fmnist-cnn.onnx"
#define S_IMAGES "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
#define S_LABELS "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"
#define S_TRAIN "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"

static uint64_t s_seed = 0x9e3779b97f4a7c15ull;

static float s_rand(void) /* [-1, 1) */
{
    s_seed ^= s_seed << 13;
    s_seed ^= s_seed >> 7;
    s_seed ^= s_seed << 17;
    return (float)((double)(s_seed >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static int s_randi(int lo, int hi)
{
    s_seed ^= s_seed << 13;
    s_seed ^= s_seed >> 7;
    s_seed ^= s_seed << 17;
    return lo + (int)(s_seed % (uint64_t)(hi - lo + 1));
}

static float *s_randv(int64_t n)
{
    float *v = bs_malloc(sizeof(float) * (size_t)(n ? n : 1));
    ASSERT(v);
    for (int64_t i = 0; i < n; i++)
        v[i] = s_rand();
    return v;
}

static bs_shape_t s_shape(int rank, const int64_t *d)
{
    bs_shape_t s = {.rank = rank};
    for (int i = 0; i < rank; i++)
        s.d[i] = d[i];
    return s;
}

/* ONNX QuantizeLinear to uint8. */
static int32_t s_q(float x, float s, int32_t z)
{
    float v = bs_quant_round(x / s) + (float)z;
    return v < 0.0f ? 0 : (v > 255.0f ? 255 : (int32_t)v);
}

static int32_t s_rne_i32(double v)
{
    if (v > 1073741824.0)
        return 1073741824;
    if (v < -1073741824.0)
        return -1073741824;
    return (int32_t)nearbyint(v);
}

/* ---- bs_gemm_wq ------------------------------------------------------------------------- */

/* M >= 2: the same tiles in the same order, so bit for bit. M == 1 is a GEMV straight from
 * the codes (the scale applied after the dot product, in the 16-lane order bs_kernels.c
 * specifies, which every ISA reproduces bit for bit: checked separately), so it equals the
 * tiled product to float rounding: |y1 - y2| <= 1e-5 * (1 + sum_k |x_k w_k|) (K <= 600 terms
 * in [-1, 1]). */
static void s_check_wq(const char *isa, int M, int N, int K, int bits, const float *X,
                       const float *deq, const float *y1, const float *y2)
{
    if (M >= 2) {
        if (memcmp(y1, y2, sizeof(float) * (size_t)M * N) != 0)
            bs_test_fail(__FILE__, __LINE__, "%s: M=%d N=%d K=%d bits=%d differ", isa, M, N, K,
                         bits);
        return;
    }
    for (int n = 0; n < N; n++) {
        double mag = 1.0;
        for (int k = 0; k < K; k++)
            mag += fabs((double)X[k] * deq[(size_t)n * K + k]);
        if (fabs((double)y1[n] - y2[n]) > 1e-5 * mag)
            bs_test_fail(__FILE__, __LINE__, "%s: GEMV N=%d K=%d bits=%d: y[%d] %.9g vs %.9g", isa,
                         N, K, bits, n, y1[n], y2[n]);
    }
}

BS_TEST(gemm_wq_equals_gemm_on_dequantized_weights)
{
    char isas[64];
    snprintf(isas, sizeof isas, "%s", bs_kernels_available());
    const char *prev = bs_kernels_isa();
    char prev_isa[16];
    snprintf(prev_isa, sizeof prev_isa, "%s", prev);
    for (char *tok = strtok(isas, ","); tok; tok = strtok(NULL, ",")) {
        ASSERT_OK(bs_kernels_select(tok));
        for (int it = 0; it < 24; it++) {
            int M = it % 4 == 0 ? 1 : s_randi(1, 40), N = s_randi(1, 37), K = s_randi(1, 600);
            int bits = it % 8 == 7 ? 16 : 2 + it % 7;
            float *W = s_randv((int64_t)N * K), *X = s_randv((int64_t)M * K);
            float *bias = s_randv(N);
            float *deq = bs_malloc(sizeof(float) * (size_t)N * (size_t)K);
            bs_qweight_t q = {0};
            uint16_t *h = NULL;
            bs_err_t err;
            if (bits == 16) {
                ASSERT_OK(bs_f16_weights(W, K, 1, N, K, &h, &err));
                bs_f16_dequant(h, (size_t)N * (size_t)K, deq);
            } else {
                ASSERT_OK(bs_quantize_weights(W, K, 1, N, K, bits, BS_QSCALE_MSE, &q, &err));
                for (int r = 0; r < N; r++)
                    bs_qweight_dequant_row(&q, r, 0, K, deq + (size_t)r * K);
            }
            int threads = 1 + it % 2;
            bs_threadpool_t *pool = threads > 1 ? bs_threadpool_new(threads) : NULL;
            void *wp = bs_malloc(bs_gemm_packed_size(N, K));
            bs_gemm_pack(deq, K, 1, N, K, wp);
            size_t sb = bs_gemm_scratch_size(M, N, K, threads);
            size_t sq = bs_gemm_wq_scratch_size(M, N, K, threads);
            void *s1 = bs_malloc(sb), *s2 = bs_malloc(sq);
            float *y1 = bs_malloc(sizeof(float) * (size_t)M * N);
            float *y2 = bs_malloc(sizeof(float) * (size_t)M * N);
            int act = it % 3;
            bs_gemm(M, N, K, X, K, 1, wp, bias, y1, N, 1, act, -0.5f, 0.5f, s1, pool);
            bs_gemm_wsrc_t ws = {.q = bits <= 8 ? &q : NULL, .f16 = h, .n0 = 0};
            bs_gemm_wq(M, N, K, X, K, 1, &ws, bias, y2, N, 1, act, -0.5f, 0.5f, s2, pool);
            s_check_wq(tok, M, N, K, bits, X, deq, y1, y2);
            if (M == 1) { /* the GEMV: every ISA bit for bit with the portable one */
                float *y3 = bs_malloc(sizeof(float) * (size_t)N);
                ASSERT_OK(bs_kernels_select("scalar"));
                bs_gemm_wq(M, N, K, X, K, 1, &ws, bias, y3, N, 1, act, -0.5f, 0.5f, s2, pool);
                ASSERT_OK(bs_kernels_select(tok));
                if (memcmp(y2, y3, sizeof(float) * (size_t)N) != 0)
                    bs_test_fail(__FILE__, __LINE__, "%s: GEMV N=%d K=%d bits=%d differs from "
                                 "the portable GEMV", tok, N, K, bits);
                bs_free(y3);
            }
            /* column (conv plane) layout too */
            bs_gemm(M, N, K, X, K, 1, wp, bias, y1, 1, M, act, -0.5f, 0.5f, s1, pool);
            bs_gemm_wq(M, N, K, X, K, 1, &ws, bias, y2, 1, M, act, -0.5f, 0.5f, s2, pool);
            s_check_wq(tok, M, N, K, bits, X, deq, y1, y2);
            bs_threadpool_free(&pool);
            bs_free(W);
            bs_free(X);
            bs_free(bias);
            bs_free(deq);
            bs_free(h);
            bs_qweight_free(&q);
            bs_free(wp);
            bs_free(s1);
            bs_free(s2);
            bs_free(y1);
            bs_free(y2);
        }
    }
    ASSERT_OK(bs_kernels_select(prev_isa));
}

/* ---- Conv at w{8,5,4,2}a8 against the math ------------------------------------------------ */

typedef struct qconv_case {
    int C, M, G, H, W, k, s, p, d, relu, bias, bits;
} qconv_case_t;

static void s_qconv_case(const qconv_case_t *c, int threads)
{
    int64_t Cg = c->C / c->G, Mg = c->M / c->G, K = Cg * c->k * c->k;
    int64_t OH = (c->H + 2 * c->p - c->d * (c->k - 1) - 1) / c->s + 1;
    int64_t OW = (c->W + 2 * c->p - c->d * (c->k - 1) - 1) / c->s + 1;
    int64_t xd[4] = {1, c->C, c->H, c->W}, wd[4] = {c->M, Cg, c->k, c->k}, bd[1] = {c->M};
    bs_shape_t xs = s_shape(4, xd), wsh = s_shape(4, wd), bsh = s_shape(1, bd);
    float *x = s_randv(bs_shape_numel(&xs)), *w = s_randv(bs_shape_numel(&wsh));
    float *b = s_randv(c->M);
    t_model_t *m = t_new(13);
    t_input(m, "X", &xs);
    t_init(m, "W", &wsh, w);
    if (c->bias)
        t_init(m, "B", &bsh, b);
    int k = t_node(m, "Conv", "conv", c->bias ? "X,W,B" : "X,W", c->relu ? "Z" : "Y");
    int64_t ks[2] = {c->k, c->k}, ss[2] = {c->s, c->s}, ds[2] = {c->d, c->d};
    int64_t ps[4] = {c->p, c->p, c->p, c->p};
    t_attr_ints(m, k, "kernel_shape", 2, ks);
    t_attr_ints(m, k, "strides", 2, ss);
    t_attr_ints(m, k, "dilations", 2, ds);
    t_attr_ints(m, k, "pads", 4, ps);
    t_attr_int(m, k, "group", c->G);
    if (c->relu)
        t_node(m, "Relu", "relu", "Z", "Y");
    t_output(m, "Y");
    char spec[32];
    snprintf(spec, sizeof spec, "conv=w%da8", c->bits);
    char *names[1] = {(char *)"X"};
    bs_qparam_t qp = {.scale = 2.0f / 255.0f, .zero_point = 128};
    bs_act_table_t act = {.n = 1, .names = names, .q = &qp};
    bs_graph_opts_t o = {.threads = threads, .free_dim = 1, .precision = spec, .act = &act};
    bs_graph_t *g = NULL;
    bs_err_t err;
    if (t_load_opts(m, &o, &g, &err))
        bs_test_fail(__FILE__, __LINE__, "load: %s", err.msg);
    ASSERT_OK(bs_graph_set_input(g, 0, BS_DT_FLOAT, x, bs_graph_input(g, 0)->nbytes, &err));
    ASSERT_OK(bs_graph_run(g, &err));
    const float *y = bs_graph_output(g, 0)->data;

    /* reference: the weight quantized as the engine does (MSE clipping, the default) */
    bs_qweight_t q;
    ASSERT_OK(bs_quantize_weights(w, K, 1, c->M, (int)K, c->bits, BS_QSCALE_MSE, &q, &err));
    int8_t *codes = bs_malloc((size_t)K);
    int64_t bad = 0;
    for (int64_t oc = 0; oc < c->M; oc++) {
        int64_t grp = oc / Mg;
        bs_qweight_unpack_row(&q, (int)oc, 0, (int)K, codes);
        double sc = (double)qp.scale * (double)q.scales[oc];
        int32_t bq = c->bias ? s_rne_i32((double)b[oc] / sc) : 0;
        float mult = (float)sc;
        for (int64_t oh = 0; oh < OH; oh++)
            for (int64_t ow = 0; ow < OW; ow++) {
                int64_t acc = 0;
                for (int64_t ci = 0; ci < Cg; ci++)
                    for (int kh = 0; kh < c->k; kh++)
                        for (int kw = 0; kw < c->k; kw++) {
                            int64_t ih = oh * c->s - c->p + kh * c->d;
                            int64_t iw = ow * c->s - c->p + kw * c->d;
                            int32_t xv = qp.zero_point;
                            if (ih >= 0 && ih < c->H && iw >= 0 && iw < c->W)
                                xv = s_q(x[((grp * Cg + ci) * c->H + ih) * c->W + iw], qp.scale,
                                         qp.zero_point);
                            acc += (int64_t)(xv - qp.zero_point) *
                                   codes[(ci * c->k + kh) * c->k + kw];
                        }
                float v = (float)(int32_t)(acc + bq) * mult;
                if (c->relu && v < 0.0f)
                    v = 0.0f;
                float got = y[(oc * OH + oh) * OW + ow];
                if (got != v && bad++ < 5)
                    fprintf(stderr, "conv C=%d M=%d G=%d k=%d s=%d p=%d w%d: y[%lld,%lld,%lld] = "
                                    "%.9g, expected %.9g\n",
                            c->C, c->M, c->G, c->k, c->s, c->p, c->bits, (long long)oc,
                            (long long)oh, (long long)ow, got, v);
            }
    }
    ASSERT_EQ(0, bad);
    bs_free(codes);
    bs_qweight_free(&q);
    bs_graph_free(&g);
    t_free(m);
    bs_free(x);
    bs_free(w);
    bs_free(b);
}

BS_TEST(conv_int8_matches_the_math)
{
    const qconv_case_t cases[] = {
        {.C = 3, .M = 8, .G = 1, .H = 9, .W = 11, .k = 3, .s = 1, .p = 1, .d = 1, .relu = 1,
         .bias = 1, .bits = 8},
        {.C = 4, .M = 6, .G = 2, .H = 7, .W = 5, .k = 3, .s = 2, .p = 1, .d = 1, .bias = 1,
         .bits = 4},
        {.C = 8, .M = 8, .G = 8, .H = 9, .W = 9, .k = 3, .s = 1, .p = 1, .d = 1, .relu = 1,
         .bias = 1, .bits = 8}, /* depthwise */
        {.C = 5, .M = 5, .G = 5, .H = 6, .W = 7, .k = 3, .s = 2, .p = 0, .d = 1, .bits = 3},
        {.C = 16, .M = 24, .G = 1, .H = 5, .W = 5, .k = 1, .s = 1, .p = 0, .d = 1, .bias = 1,
         .bits = 8}, /* 1x1 */
        {.C = 6, .M = 7, .G = 1, .H = 10, .W = 9, .k = 3, .s = 1, .p = 2, .d = 2, .bias = 1,
         .bits = 2},
        {.C = 33, .M = 17, .G = 1, .H = 4, .W = 4, .k = 3, .s = 1, .p = 1, .d = 1, .bias = 1,
         .bits = 5},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int t = 1; t <= 2; t++)
            s_qconv_case(&cases[i], t);
}

/* ---- Gemm -> Relu -> Gemm at w8a8: the middle tensor is uint8 --------------------------- */

BS_TEST(adjacent_int8_layers_pass_uint8)
{
    int M = 3, K = 21, H = 18, N = 5;
    int64_t xd[2] = {M, K}, w1d[2] = {H, K}, w2d[2] = {H, N}, b1d[1] = {H};
    bs_shape_t xs = s_shape(2, xd), w1s = s_shape(2, w1d), w2s = s_shape(2, w2d);
    bs_shape_t b1s = s_shape(1, b1d);
    float *x = s_randv(M * K), *w1 = s_randv(H * K), *w2 = s_randv(H * N), *b1 = s_randv(H);
    t_model_t *m = t_new(13);
    t_input(m, "X", &xs);
    t_init(m, "W1", &w1s, w1);
    t_init(m, "B1", &b1s, b1);
    t_init(m, "W2", &w2s, w2);
    int k = t_node(m, "Gemm", "fc1", "X,W1,B1", "Z");
    t_attr_int(m, k, "transB", 1);
    t_node(m, "Relu", "relu", "Z", "R");
    t_node(m, "MatMul", "fc2", "R,W2", "Y");
    t_output(m, "Y");
    char *names[2] = {(char *)"X", (char *)"R"};
    bs_qparam_t qp[2] = {{.scale = 2.0f / 255.0f, .zero_point = 127},
                         {.scale = 4.0f / 255.0f, .zero_point = 0}};
    bs_act_table_t act = {.n = 2, .names = names, .q = qp};
    bs_graph_opts_t o = {.threads = 1, .free_dim = 1, .precision = "*=w8a8", .act = &act};
    bs_graph_t *g = NULL;
    bs_err_t err;
    if (t_load_opts(m, &o, &g, &err))
        bs_test_fail(__FILE__, __LINE__, "load: %s", err.msg);
    int found = 0;
    for (int t = 0; t < g->n_tensors; t++)
        if (!strcmp(g->tensors[t].name, "R")) {
            found = 1;
            ASSERT_EQ(BS_DT_UINT8, g->tensors[t].dtype);
            ASSERT_EQ(1, g->tensors[t].quantized);
        }
    ASSERT(found);
    ASSERT_OK(bs_graph_set_input(g, 0, BS_DT_FLOAT, x, bs_graph_input(g, 0)->nbytes, &err));
    ASSERT_OK(bs_graph_run(g, &err));
    const float *y = bs_graph_output(g, 0)->data;

    bs_qweight_t q1, q2;
    ASSERT_OK(bs_quantize_weights(w1, K, 1, H, K, 8, BS_QSCALE_MSE, &q1, &err));
    ASSERT_OK(bs_quantize_weights(w2, 1, N, N, H, 8, BS_QSCALE_MSE, &q2, &err));
    int8_t c1[64], c2[64];
    int32_t r[3][18];
    for (int i = 0; i < M; i++)
        for (int h = 0; h < H; h++) {
            bs_qweight_unpack_row(&q1, h, 0, K, c1);
            int64_t acc = 0;
            for (int kk = 0; kk < K; kk++)
                acc += (int64_t)(s_q(x[i * K + kk], qp[0].scale, 127) - 127) * c1[kk];
            double sc = (double)qp[0].scale * q1.scales[h];
            float mult = (float)(sc / qp[1].scale);
            float v = (float)(int32_t)(acc + s_rne_i32(b1[h] / sc)) * mult;
            v = v < 0.0f ? 0.0f : (v > 255.0f ? 255.0f : v); /* Relu: code >= zo = 0 */
            r[i][h] = (int32_t)bs_quant_round(v);
        }
    for (int i = 0; i < M; i++)
        for (int n = 0; n < N; n++) {
            bs_qweight_unpack_row(&q2, n, 0, H, c2);
            int64_t acc = 0;
            for (int h = 0; h < H; h++)
                acc += (int64_t)r[i][h] * c2[h];
            float v = (float)(int32_t)acc * (float)((double)qp[1].scale * q2.scales[n]);
            if (y[i * N + n] != v)
                bs_test_fail(__FILE__, __LINE__, "y[%d,%d] = %.9g, expected %.9g", i, n,
                             y[i * N + n], v);
        }
    bs_qweight_free(&q1);
    bs_qweight_free(&q2);
    bs_graph_free(&g);
    t_free(m);
    bs_free(x);
    bs_free(w1);
    bs_free(w2);
    bs_free(b1);
}

/* ---- ConvTranspose: one scale per output channel ---------------------------------------- */

/* Runs ConvTranspose(X, W, B) at `spec` (act: the input's int8 parameters, or NULL) and
 * returns output 0 (caller frees). */
static float *s_convt_run(const float *x, const int64_t *xd, const float *w, const int64_t *wd,
                          const float *b, int G, const char *spec, const bs_act_table_t *act,
                          int64_t *ny)
{
    bs_shape_t xs = s_shape(4, xd), wsh = s_shape(4, wd);
    int64_t M = wd[1] * G;
    bs_shape_t bsh = s_shape(1, &M);
    t_model_t *m = t_new(13);
    t_input(m, "X", &xs);
    t_init(m, "W", &wsh, w);
    t_init(m, "B", &bsh, b);
    int k = t_node(m, "ConvTranspose", "up", "X,W,B", "Y");
    int64_t st[2] = {2, 2}, pads[4] = {1, 0, 0, 1};
    t_attr_ints(m, k, "strides", 2, st);
    t_attr_ints(m, k, "pads", 4, pads);
    t_attr_int(m, k, "group", G);
    t_output(m, "Y");
    bs_graph_opts_t o = {.threads = 1, .free_dim = 1, .precision = spec, .act = act};
    bs_graph_t *g = NULL;
    bs_err_t err;
    if (t_load_opts(m, &o, &g, &err))
        bs_test_fail(__FILE__, __LINE__, "load %s: %s", spec ? spec : "fp32", err.msg);
    ASSERT_OK(bs_graph_set_input(g, 0, BS_DT_FLOAT, x, bs_graph_input(g, 0)->nbytes, &err));
    ASSERT_OK(bs_graph_run(g, &err));
    const bs_tensor_t *y = bs_graph_output(g, 0);
    *ny = bs_shape_numel(&y->shape);
    float *out = bs_malloc(y->nbytes);
    memcpy(out, y->data, y->nbytes);
    bs_graph_free(&g);
    t_free(m);
    return out;
}

BS_TEST(conv_transpose_quantized_per_output_channel)
{
    for (int G = 1; G <= 2; G++)
        for (int bits = 3; bits <= 8; bits += 5) {
            int64_t C = 4, Mg = 3, M = Mg * G, Cg = C / G, KH = 3, KW = 2, taps = KH * KW;
            int64_t xd[4] = {1, C, 5, 4}, wd[4] = {C, Mg, KH, KW};
            float *x = s_randv(C * 20), *w = s_randv(C * Mg * taps), *b = s_randv(M);
            /* the engine's weight: W viewed per output channel as [taps][Cg] rows, quantized
             * with one scale per channel, dequantized back into W's layout */
            float *T = bs_malloc(sizeof(float) * (size_t)(M * taps * Cg));
            for (int64_t oc = 0; oc < M; oc++)
                for (int64_t k = 0; k < taps; k++)
                    for (int64_t c = 0; c < Cg; c++)
                        T[(oc * taps + k) * Cg + c] =
                            w[(((oc / Mg) * Cg + c) * Mg + oc % Mg) * taps + k];
            bs_qweight_t q;
            bs_err_t err;
            ASSERT_OK(bs_quantize_weights(T, taps * Cg, 1, (int)M, (int)(taps * Cg), bits,
                                          BS_QSCALE_MSE, &q, &err));
            float *wdq = bs_malloc(sizeof(float) * (size_t)(C * Mg * taps));
            float *row = bs_malloc(sizeof(float) * (size_t)(taps * Cg));
            for (int64_t oc = 0; oc < M; oc++) {
                bs_qweight_dequant_row(&q, (int)oc, 0, (int)(taps * Cg), row);
                for (int64_t k = 0; k < taps; k++)
                    for (int64_t c = 0; c < Cg; c++)
                        wdq[(((oc / Mg) * Cg + c) * Mg + oc % Mg) * taps + k] = row[k * Cg + c];
            }
            char spec[24];
            snprintf(spec, sizeof spec, "up=w%da32", bits);
            int64_t n1, n2;
            float *y1 = s_convt_run(x, xd, w, wd, b, G, spec, NULL, &n1);
            float *y2 = s_convt_run(x, xd, wdq, wd, b, G, NULL, NULL, &n2);
            ASSERT_EQ(n1, n2);
            for (int64_t i = 0; i < n1; i++)
                ASSERT(fabsf(y1[i] - y2[i]) <= 1e-4f * (1.0f + fabsf(y2[i])));
            bs_free(y1);
            bs_free(y2);
            /* int8 input: the float model on the input quantized and dequantized */
            char *names[1] = {(char *)"X"};
            bs_qparam_t qp = {.scale = 2.0f / 255.0f, .zero_point = 128};
            bs_act_table_t act = {.n = 1, .names = names, .q = &qp};
            snprintf(spec, sizeof spec, "up=w%da8", bits);
            float *xdq = bs_malloc(sizeof(float) * (size_t)(C * 20));
            for (int64_t i = 0; i < C * 20; i++)
                xdq[i] = (float)(s_q(x[i], qp.scale, qp.zero_point) - qp.zero_point) * qp.scale;
            y1 = s_convt_run(x, xd, w, wd, b, G, spec, &act, &n1);
            y2 = s_convt_run(xdq, xd, wdq, wd, b, G, NULL, NULL, &n2);
            for (int64_t i = 0; i < n1; i++)
                if (!(fabsf(y1[i] - y2[i]) <= 1e-4f * (1.0f + fabsf(y2[i]))))
                    bs_test_fail(__FILE__, __LINE__, "G=%d w%d a8: y[%lld] %.7g vs %.7g", G,
                                 bits, (long long)i, y1[i], y2[i]);
            bs_free(y1);
            bs_free(y2);
            bs_free(xdq);
            bs_free(row);
            bs_free(wdq);
            bs_free(T);
            bs_qweight_free(&q);
            bs_free(x);
            bs_free(w);
            bs_free(b);
        }
}

/* ---- one-row integer products from packed rows ------------------------------------------ */

/* Gemm(A [M, K], B^T) at spec with the input's int8 parameters; returns row 0 (N floats). */
static float *s_gemm_row0(int M, int K, int N, const float *a, const float *w, const float *b,
                          const char *spec)
{
    int64_t ad[2] = {M, K}, wd[2] = {N, K}, bd[1] = {N};
    bs_shape_t as = s_shape(2, ad), wsh = s_shape(2, wd), bsh = s_shape(1, bd);
    t_model_t *m = t_new(13);
    t_input(m, "A", &as);
    t_init(m, "W", &wsh, w);
    t_init(m, "B", &bsh, b);
    int k = t_node(m, "Gemm", "fc", "A,W,B", "Y");
    t_attr_int(m, k, "transB", 1);
    t_output(m, "Y");
    char *names[1] = {(char *)"A"};
    bs_qparam_t qp = {.scale = 2.0f / 255.0f, .zero_point = 128};
    bs_act_table_t act = {.n = 1, .names = names, .q = &qp};
    bs_graph_opts_t o = {.threads = 1, .free_dim = 1, .precision = spec, .act = &act};
    bs_graph_t *g = NULL;
    bs_err_t err;
    if (t_load_opts(m, &o, &g, &err))
        bs_test_fail(__FILE__, __LINE__, "load: %s", err.msg);
    ASSERT_OK(bs_graph_set_input(g, 0, BS_DT_FLOAT, a, bs_graph_input(g, 0)->nbytes, &err));
    ASSERT_OK(bs_graph_run(g, &err));
    float *y = bs_malloc(sizeof(float) * (size_t)N);
    memcpy(y, bs_graph_output(g, 0)->data, sizeof(float) * (size_t)N);
    bs_graph_free(&g);
    t_free(m);
    return y;
}

/* A batch-1 Gemm with sub-8-bit weights reads its packed rows in place (bs__qgemv_rows); a
 * batch of 2 goes through bs_qgemm's tiles. Row 0 must be the same, bit for bit, under every
 * float ISA (the in-place dot products are per ISA). */
BS_TEST(gemv_packed_rows_equal_the_tiled_product)
{
    char isas[64];
    snprintf(isas, sizeof isas, "%s", bs_kernels_available());
    char prev[16];
    snprintf(prev, sizeof prev, "%s", bs_kernels_isa());
    for (char *tok = strtok(isas, ","); tok; tok = strtok(NULL, ",")) {
        ASSERT_OK(bs_kernels_select(tok));
        for (int bits = 2; bits <= 7; bits++) {
            int K = 37 + 61 * bits, N = 5 + 3 * bits;
            float *a = s_randv(2 * K), *w = s_randv((int64_t)N * K), *b = s_randv(N);
            memcpy(a + K, a, sizeof(float) * (size_t)K);
            char spec[16];
            snprintf(spec, sizeof spec, "fc=w%da8", bits);
            float *y1 = s_gemm_row0(1, K, N, a, w, b, spec);
            float *y2 = s_gemm_row0(2, K, N, a, w, b, spec);
            if (memcmp(y1, y2, sizeof(float) * (size_t)N) != 0)
                bs_test_fail(__FILE__, __LINE__, "%s: w%da8 K=%d: one row differs from two", tok,
                             bits, K);
            bs_free(a);
            bs_free(w);
            bs_free(b);
            bs_free(y1);
            bs_free(y2);
        }
    }
    ASSERT_OK(bs_kernels_select(prev));
}

/* Gemm(A [M, K], W^T) + B at w{4,8,3}a8 against the math, every output: batch 1 (4-bit and
 * 8-bit panels read by one tile, other widths bs__qgemv_rows) and larger batches (several
 * tiles), K with an odd number of groups of 4 (a half-used last pair of a 4-bit panel), not a
 * multiple of 4, and two K blocks; 1 and 2 threads. */
BS_TEST(gemm_int8_matches_the_math)
{
    static const int Ms[] = {1, 3, 13}, Ks[] = {5, 12, 37, 100, 1540}, Ns[] = {3, 17, 33};
    static const int bitss[] = {4, 8, 3};
    int cnt = 0;
    for (int bi = 0; bi < 3; bi++)
        for (int mi = 0; mi < 3; mi++)
            for (int ki = 0; ki < 5; ki++) {
                int M = Ms[mi], K = Ks[ki], N = Ns[(mi + ki) % 3], bits = bitss[bi];
                int threads = 1 + cnt++ % 2;
                int64_t ad[2] = {M, K}, wd[2] = {N, K}, bd[1] = {N};
                bs_shape_t as = s_shape(2, ad), wsh = s_shape(2, wd), bsh = s_shape(1, bd);
                float *a = s_randv((int64_t)M * K), *w = s_randv((int64_t)N * K);
                float *b = s_randv(N);
                t_model_t *m = t_new(13);
                t_input(m, "A", &as);
                t_init(m, "W", &wsh, w);
                t_init(m, "B", &bsh, b);
                int k = t_node(m, "Gemm", "fc", "A,W,B", "Y");
                t_attr_int(m, k, "transB", 1);
                t_output(m, "Y");
                char spec[16];
                snprintf(spec, sizeof spec, "fc=w%da8", bits);
                char *names[1] = {(char *)"A"};
                bs_qparam_t qp = {.scale = 2.0f / 255.0f, .zero_point = 128};
                bs_act_table_t act = {.n = 1, .names = names, .q = &qp};
                bs_graph_opts_t o = {.threads = threads, .free_dim = 1, .precision = spec,
                                     .act = &act};
                bs_graph_t *g = NULL;
                bs_err_t err;
                if (t_load_opts(m, &o, &g, &err))
                    bs_test_fail(__FILE__, __LINE__, "load: %s", err.msg);
                ASSERT_OK(bs_graph_set_input(g, 0, BS_DT_FLOAT, a, bs_graph_input(g, 0)->nbytes,
                                             &err));
                ASSERT_OK(bs_graph_run(g, &err));
                const float *y = bs_graph_output(g, 0)->data;
                bs_qweight_t q;
                ASSERT_OK(bs_quantize_weights(w, K, 1, N, K, bits, BS_QSCALE_MSE, &q, &err));
                int8_t *codes = bs_malloc((size_t)K);
                int64_t bad = 0;
                for (int n = 0; n < N; n++) {
                    bs_qweight_unpack_row(&q, n, 0, K, codes);
                    double sc = (double)qp.scale * (double)q.scales[n];
                    int32_t bq = s_rne_i32((double)b[n] / sc);
                    for (int r = 0; r < M; r++) {
                        int64_t acc = 0;
                        for (int kk = 0; kk < K; kk++)
                            acc += (int64_t)(s_q(a[(int64_t)r * K + kk], qp.scale,
                                                 qp.zero_point) -
                                             qp.zero_point) *
                                   codes[kk];
                        float v = (float)(int32_t)(acc + bq) * (float)sc;
                        float got = y[(int64_t)r * N + n];
                        if (got != v && bad++ < 5)
                            fprintf(stderr, "gemm M=%d K=%d N=%d w%d: y[%d,%d] = %.9g, "
                                            "expected %.9g\n",
                                    M, K, N, bits, r, n, got, v);
                    }
                }
                ASSERT_EQ(0, bad);
                bs_free(codes);
                bs_qweight_free(&q);
                bs_graph_free(&g);
                t_free(m);
                bs_free(a);
                bs_free(w);
                bs_free(b);
            }
}

/* ---- errors ----------------------------------------------------------------------------- */

BS_TEST(precision_errors_name_layers)
{
    int64_t xd[2] = {2, 4}, wd[2] = {4, 3};
    bs_shape_t xs = s_shape(2, xd), wsh = s_shape(2, wd);
    float w[12] = {0};
    t_model_t *m = t_new(13);
    t_input(m, "X", &xs);
    t_init(m, "W", &wsh, w);
    t_node(m, "MatMul", "proj", "X,W", "Y");
    t_output(m, "Y");
    bs_graph_t *g = NULL;
    bs_err_t err;
    bs_graph_opts_t o = {.threads = 1, .free_dim = 1, .precision = "fc*=w4a32"};
    ASSERT_EQ(BS_EINVAL, t_load_opts(m, &o, &g, &err));
    ASSERT_CONTAINS(err.msg, "proj");
    o.precision = "proj=w4a8"; /* no calibration table */
    ASSERT_EQ(BS_EINVAL, t_load_opts(m, &o, &g, &err));
    ASSERT_CONTAINS(err.msg, "'X'");
    o.precision = "proj=w9a32";
    ASSERT_EQ(BS_EINVAL, t_load_opts(m, &o, &g, &err));
    o.precision = "proj=w4a32"; /* an all-zero weight quantizes fine */
    ASSERT_OK(t_load_opts(m, &o, &g, &err));
    bs_graph_free(&g);
    t_free(m);
}

/* ---- the bundled model at every uniform precision ------------------------------------------ */

BS_TEST(fmnist_uniform_precisions)
{
    FILE *f = fopen(S_IMAGES, "rb");
    if (!f) {
        fprintf(stderr, "dataset-fashion-mnist not installed; skipped\n");
        return;
    }
    fclose(f);
    bs_err_t err;
    bs_preprocess_t pre;
    bs_preprocess_default(&pre);
    pre.n_mean = pre.n_std = 1;
    pre.mean[0] = 0.2860f;
    pre.std[0] = 0.3530f;
    bs_quant_opts_t q;
    bs_quant_opts_default(&q);
    q.calib_images = S_TRAIN;
    q.calib_count = 256;
    q.pre = &pre;
    bs_act_table_t act;
    ASSERT_OK(bs_run_calibrate(S_MODEL, 1, &q, &act, &err));
    ASSERT(act.n >= 4);
    bs_dataset_t ds;
    int64_t shape1[4] = {1, 1, 28, 28};
    bs_shape_t in = s_shape(4, shape1);
    ASSERT_OK(bs_dataset_load(S_IMAGES, S_LABELS, 1000, &pre, &in, &ds, &err));
    static const char *const specs[] = {"*=w32a32", "*=w16a32", "*=w8a32", "*=w6a32",
                                        "*=w4a32",  "*=w3a32",  "*=w2a32", "*=w16a8",
                                        "*=w8a8",   "*=w6a8",   "*=w4a8",  "*=w3a8",
                                        "*=w2a8"};
    double acc[16];
    int64_t bytes[16];
    printf("precision  top1     weight_bytes\n");
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        bs_graph_t *g = NULL;
        if (bs_run_load_prec(S_MODEL, 1, specs[i], &q, &act, &g, &err))
            bs_test_fail(__FILE__, __LINE__, "%s: %s", specs[i], err.msg);
        bs_eval_t ev;
        ASSERT_OK(bs_run_evaluate(g, &ds, NULL, NULL, &ev, NULL, &err));
        acc[i] = ev.accuracy;
        bytes[i] = (int64_t)g->weight_bytes;
        printf("%-9s  %.4f   %lld\n", specs[i] + 2, acc[i], (long long)bytes[i]);
        bs_graph_free(&g);
    }
    ASSERT(acc[0] > 0.85);
    ASSERT(fabs(acc[8] - acc[0]) <= 0.01);  /* all-w8a8 within 1 point of fp32 */
    ASSERT(fabs(acc[1] - acc[0]) <= 0.002); /* fp16 weights: nearly identical */
    ASSERT(bytes[1] < bytes[0] && bytes[2] < bytes[1] && bytes[4] < bytes[2] &&
           bytes[6] < bytes[4]);
    ASSERT(bytes[10] < bytes[8]);
    bs_dataset_free(&ds);
    bs_act_table_free(&act);
}

#define TESTS(X)                                                                                   \
    X(gemm_wq_equals_gemm_on_dequantized_weights)                                                  \
    X(conv_int8_matches_the_math)                                                                  \
    X(adjacent_int8_layers_pass_uint8)                                                             \
    X(conv_transpose_quantized_per_output_channel)                                                 \
    X(gemv_packed_rows_equal_the_tiled_product)                                                    \
    X(gemm_int8_matches_the_math)                                                                  \
    X(precision_errors_name_layers)                                                                \
    X(fmnist_uniform_precisions)
BS_TEST_MAIN(TESTS)

/*
 * test_ops.c - the engine's neural-network operators (bs_ops_conv.c, bs_ops_nn.c), on what
 * ONNX's own test suite (tests/conformance) does not cover.
 *
 * Each test builds a small ONNX model in memory with the protobuf-c structs (t_model_t below:
 * graph inputs, float initializers, nodes with attributes), loads it with
 * bs_graph_load_buffer, runs it and compares with a naive double-precision reference written
 * here: Conv on random shapes through every path of the fast implementation (im2col with
 * groups, strides, dilations and asymmetric padding, 1x1 without im2col, depthwise, 1-D and
 * 3-D, const weights packed at load and weights fed at run time), under every instruction set
 * the build and CPU offer and with 1 and 2 threads; Gemm and MatMul (transposes, alpha/beta,
 * every broadcast of C, batch broadcasting, 1-D operands); the fused Relu / Clip; and the
 * load-time errors, which must name the node and say what is wrong.
 *
 * Tolerance: the reference sums in double; the engine sums K float products (K <= ~600 here,
 * inputs in [-1, 1]), so |error| <= 1e-4 * (1 + sum |terms|) is far above rounding noise and
 * far below what a wrong index or a lost tail produces (O(1)).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "bs_alloc.h"
#include "bs_graph.h"
#include "bs_kernels.h"
#include "bs_op.h"
#include "bs_test.h"
#include "bs_tmodel.h"
#include "onnx.pb-c.h"

/* ---- helpers ------------------------------------------------------------------------------ */

static uint64_t s_seed = 0x2545f4914f6cdd1dull;

static float s_rand(void)
{
    s_seed ^= s_seed << 13;
    s_seed ^= s_seed >> 7;
    s_seed ^= s_seed << 17;
    return (float)((double)(s_seed >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static int s_randi(int lo, int hi) /* [lo, hi] */
{
    s_seed ^= s_seed << 13;
    s_seed ^= s_seed >> 7;
    s_seed ^= s_seed << 17;
    return lo + (int)((s_seed >> 33) % (uint64_t)(hi - lo + 1));
}

static float *s_randv(int64_t n)
{
    float *v = bs_malloc((size_t)n * sizeof *v + 4);
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

static double s_actd(double v, int act, double lo, double hi)
{
    if (act == BS_ACT_RELU)
        return v > 0 ? v : 0;
    if (act == BS_ACT_CLIP)
        return v < lo ? lo : (v > hi ? hi : v);
    return v;
}

/* Compares got with want (double) within 1e-4 * (1 + mag[i]). */
static void s_check(const char *what, const float *got, const double *want, const double *mag,
                    int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        double tol = 1e-4 * (1.0 + (mag ? mag[i] : fabs(want[i])));
        if (!(fabs((double)got[i] - want[i]) <= tol))
            bs_test_fail(__FILE__, __LINE__, "%s: element %lld: got %.7g, expected %.7g", what,
                         (long long)i, (double)got[i], want[i]);
    }
}

/* ---- Conv: fast paths against a naive reference ------------------------------------------- */

typedef struct conv_case {
    int ns; /* spatial axes */
    int64_t N, C, M, G;
    int64_t in[3], k[3], s[3], d[3], pb[3], pe[3];
    const char *auto_pad;   /* NULL = explicit pads */
    int bias, w_input, act; /* w_input: W is a graph input (packed at run time) */
} conv_case_t;

/* Output size and begin pads (auto_pad resolved as ONNX says). */
static void s_conv_dims(const conv_case_t *c, int64_t *out, int64_t *pb)
{
    for (int i = 0; i < c->ns; i++) {
        int64_t ek = (c->k[i] - 1) * c->d[i] + 1;
        if (c->auto_pad && strcmp(c->auto_pad, "VALID") != 0) {
            out[i] = (c->in[i] + c->s[i] - 1) / c->s[i];
            int64_t tot = (out[i] - 1) * c->s[i] + ek - c->in[i];
            tot = tot < 0 ? 0 : tot;
            pb[i] = strcmp(c->auto_pad, "SAME_UPPER") == 0 ? tot / 2 : tot - tot / 2;
        } else if (c->auto_pad) {
            pb[i] = 0;
            out[i] = (c->in[i] - ek) / c->s[i] + 1;
        } else {
            pb[i] = c->pb[i];
            out[i] = (c->in[i] + c->pb[i] + c->pe[i] - ek) / c->s[i] + 1;
        }
    }
}

/* y[n][m][o...] = act(b[m] + sum over c in group, k... of x * w), 1 to 3 spatial axes. */
static void s_conv_ref(const conv_case_t *c, const float *x, const float *w, const float *b,
                       double lo, double hi, double *y, double *mag)
{
    int64_t out[3], pb[3], in3[3] = {1, 1, 1}, k3[3] = {1, 1, 1}, s3[3] = {1, 1, 1};
    int64_t d3[3] = {1, 1, 1}, p3[3] = {0, 0, 0}, o3[3] = {1, 1, 1};
    s_conv_dims(c, out, pb);
    int off = 3 - c->ns;
    for (int i = 0; i < c->ns; i++) {
        in3[off + i] = c->in[i];
        k3[off + i] = c->k[i];
        s3[off + i] = c->s[i];
        d3[off + i] = c->d[i];
        p3[off + i] = pb[i];
        o3[off + i] = out[i];
    }
    int64_t Cg = c->C / c->G, Mg = c->M / c->G;
    int64_t Pin = in3[0] * in3[1] * in3[2], Pout = o3[0] * o3[1] * o3[2];
    int64_t Kp = k3[0] * k3[1] * k3[2];
    for (int64_t n = 0; n < c->N; n++)
        for (int64_t m = 0; m < c->M; m++) {
            int64_t grp = m / Mg;
            for (int64_t od = 0; od < o3[0]; od++)
                for (int64_t oh = 0; oh < o3[1]; oh++)
                    for (int64_t ow = 0; ow < o3[2]; ow++) {
                        double acc = b ? b[m] : 0.0, am = b ? fabs(b[m]) : 0.0;
                        for (int64_t ci = 0; ci < Cg; ci++)
                            for (int64_t kd = 0; kd < k3[0]; kd++)
                                for (int64_t kh = 0; kh < k3[1]; kh++)
                                    for (int64_t kw = 0; kw < k3[2]; kw++) {
                                        int64_t id = od * s3[0] - p3[0] + kd * d3[0];
                                        int64_t ih = oh * s3[1] - p3[1] + kh * d3[1];
                                        int64_t iw = ow * s3[2] - p3[2] + kw * d3[2];
                                        if (id < 0 || id >= in3[0] || ih < 0 || ih >= in3[1] ||
                                            iw < 0 || iw >= in3[2])
                                            continue;
                                        double xv = x[(n * c->C + grp * Cg + ci) * Pin +
                                                      (id * in3[1] + ih) * in3[2] + iw];
                                        double wv =
                                            w[(m * Cg + ci) * Kp + (kd * k3[1] + kh) * k3[2] + kw];
                                        acc += xv * wv;
                                        am += fabs(xv * wv);
                                    }
                        int64_t o = (n * c->M + m) * Pout + (od * o3[1] + oh) * o3[2] + ow;
                        y[o] = s_actd(acc, c->act, lo, hi);
                        mag[o] = am;
                    }
        }
}

/* Builds the model for case c (plus a Relu or Clip after it when c->act), runs it with
 * `threads` threads and checks against the reference. */
static void s_conv_run_case(const conv_case_t *c, int threads)
{
    int64_t xd[5] = {c->N, c->C}, wd[5] = {c->M, c->C / c->G}, out[3], pb[3];
    for (int i = 0; i < c->ns; i++) {
        xd[2 + i] = c->in[i];
        wd[2 + i] = c->k[i];
    }
    s_conv_dims(c, out, pb);
    bs_shape_t xs = s_shape(c->ns + 2, xd), ws = s_shape(c->ns + 2, wd);
    bs_shape_t bsh = s_shape(1, &c->M);
    int64_t xn = bs_shape_numel(&xs), wn = bs_shape_numel(&ws);
    int64_t yn = c->N * c->M * (c->ns > 0 ? out[0] : 1) * (c->ns > 1 ? out[1] : 1) *
                 (c->ns > 2 ? out[2] : 1);
    float *x = s_randv(xn), *w = s_randv(wn), *b = s_randv(c->M);
    double *ref = bs_malloc((size_t)yn * sizeof *ref), *mag = bs_malloc((size_t)yn * sizeof *mag);
    ASSERT(ref && mag);
    float lo = -0.25f, hi = 0.5f;
    s_conv_ref(c, x, w, c->bias ? b : NULL, lo, hi, ref, mag);

    t_model_t *m = t_new(13);
    t_input(m, "X", &xs);
    if (c->w_input)
        t_input(m, "W", &ws);
    else
        t_init(m, "W", &ws, w);
    if (c->bias)
        t_init(m, "B", &bsh, b);
    int k = t_node(m, "Conv", "conv", c->bias ? "X,W,B" : "X,W", c->act ? "Z" : "Y");
    t_attr_int(m, k, "group", c->G);
    t_attr_ints(m, k, "kernel_shape", c->ns, c->k);
    t_attr_ints(m, k, "strides", c->ns, c->s);
    t_attr_ints(m, k, "dilations", c->ns, c->d);
    if (c->auto_pad) {
        t_attr_str(m, k, "auto_pad", c->auto_pad);
    } else {
        int64_t pads[6];
        for (int i = 0; i < c->ns; i++) {
            pads[i] = c->pb[i];
            pads[c->ns + i] = c->pe[i];
        }
        t_attr_ints(m, k, "pads", 2 * c->ns, pads);
    }
    if (c->act == BS_ACT_RELU) {
        t_node(m, "Relu", "relu", "Z", "Y");
    } else if (c->act == BS_ACT_CLIP) {
        bs_shape_t sc = {.rank = 0};
        t_init(m, "lo", &sc, &lo);
        t_init(m, "hi", &sc, &hi);
        t_node(m, "Clip", "clip", "Z,lo,hi", "Y");
    }
    t_output(m, "Y");

    bs_graph_t *g = NULL;
    bs_err_t err;
    int rc = t_load(m, threads, 0, &g, &err);
    if (rc)
        bs_test_fail(__FILE__, __LINE__, "load: %s", err.msg);
    /* The weight layer flag follows the weight's kind; the activation was fused. */
    const bs_node_t *cn = NULL;
    for (int i = 0; i < g->n_nodes; i++)
        if (!strcmp(g->nodes[i].op_type, "Conv"))
            cn = &g->nodes[i];
    ASSERT(cn);
    ASSERT_EQ(!c->w_input, cn->weight_layer);
    ASSERT_EQ(c->act, cn->act);
    ASSERT_OK(bs_graph_set_input(g, 0, BS_DT_FLOAT, x, (size_t)xn * 4, &err));
    if (c->w_input)
        ASSERT_OK(bs_graph_set_input(g, 1, BS_DT_FLOAT, w, (size_t)wn * 4, &err));
    for (int rep = 0; rep < 2; rep++) { /* a second run must not depend on the first */
        ASSERT_OK(bs_graph_run(g, &err));
        const bs_tensor_t *y = bs_graph_output(g, 0);
        ASSERT_EQ(yn, bs_shape_numel(&y->shape));
        s_check("conv", y->data, ref, mag, yn);
    }
    bs_graph_free(&g);
    t_free(m);
    bs_free(x);
    bs_free(w);
    bs_free(b);
    bs_free(ref);
    bs_free(mag);
}

static conv_case_t s_conv_case2(int64_t N, int64_t C, int64_t H, int64_t W, int64_t M, int64_t G,
                                int64_t K, int64_t s, int64_t d, int64_t p)
{
    conv_case_t c = {.ns = 2, .N = N, .C = C, .M = M, .G = G, .bias = 1};
    c.in[0] = H;
    c.in[1] = W;
    for (int i = 0; i < 2; i++) {
        c.k[i] = K;
        c.s[i] = s;
        c.d[i] = d;
        c.pb[i] = c.pe[i] = p;
    }
    return c;
}

/* Runs the case under every ISA this build and CPU offer, with 1 and 2 threads. */
static void s_conv_all_isas(const conv_case_t *c)
{
    char isas[64];
    snprintf(isas, sizeof isas, "%s", bs_kernels_available());
    for (char *save = NULL, *isa = strtok_r(isas, ",", &save); isa;
         isa = strtok_r(NULL, ",", &save)) {
        ASSERT_OK(bs_kernels_select(isa));
        s_conv_run_case(c, 1);
        s_conv_run_case(c, 2);
    }
}

BS_TEST(conv_paths_match_reference)
{
    conv_case_t cases[20];
    int n = 0;
    cases[n++] = s_conv_case2(1, 3, 9, 11, 8, 1, 3, 1, 1, 1);    /* im2col, padded */
    cases[n++] = s_conv_case2(2, 6, 10, 7, 9, 3, 3, 2, 1, 1);    /* groups, stride 2 */
    cases[n++] = s_conv_case2(1, 4, 12, 12, 5, 1, 3, 1, 2, 2);   /* dilation */
    cases[n++] = s_conv_case2(2, 16, 7, 9, 24, 1, 1, 1, 1, 0);   /* 1x1, no im2col */
    cases[n++] = s_conv_case2(1, 8, 6, 6, 12, 4, 1, 1, 1, 0);    /* grouped 1x1 */
    cases[n++] = s_conv_case2(1, 8, 6, 6, 12, 1, 1, 2, 1, 0);    /* 1x1 stride 2: im2col */
    cases[n++] = s_conv_case2(2, 7, 13, 10, 7, 7, 3, 1, 1, 1);   /* depthwise */
    cases[n++] = s_conv_case2(1, 5, 11, 9, 5, 5, 5, 2, 1, 2);    /* depthwise 5x5 stride 2 */
    cases[n++] = s_conv_case2(1, 4, 9, 9, 8, 4, 3, 1, 1, 1);     /* depthwise x2 multiplier */
    conv_case_t a = s_conv_case2(1, 3, 10, 8, 4, 1, 3, 2, 1, 0); /* asymmetric pads */
    a.pb[0] = 0;
    a.pe[0] = 2;
    a.pb[1] = 1;
    a.pe[1] = 0;
    a.bias = 0;
    cases[n++] = a;
    conv_case_t su = s_conv_case2(1, 3, 9, 10, 4, 1, 4, 2, 1, 0);
    su.auto_pad = "SAME_UPPER";
    cases[n++] = su;
    su.auto_pad = "SAME_LOWER";
    cases[n++] = su;
    conv_case_t c1 = {.ns = 1,
                      .N = 2,
                      .C = 4,
                      .M = 6,
                      .G = 2,
                      .bias = 1,
                      .in = {17},
                      .k = {3},
                      .s = {2},
                      .d = {2},
                      .pb = {1},
                      .pe = {2}};
    cases[n++] = c1;
    conv_case_t c3 = {.ns = 3,
                      .N = 1,
                      .C = 4,
                      .M = 6,
                      .G = 2,
                      .bias = 1,
                      .in = {5, 6, 7},
                      .k = {3, 2, 3},
                      .s = {1, 2, 2},
                      .d = {1, 1, 2},
                      .pb = {1, 0, 2},
                      .pe = {1, 1, 0}};
    cases[n++] = c3;
    conv_case_t wi = s_conv_case2(2, 6, 8, 8, 4, 2, 3, 1, 1, 1); /* weight fed at run time */
    wi.w_input = 1;
    cases[n++] = wi;
    /* Large enough for the 2-D im2col to go in bands of output rows (K * OW * rows is capped),
     * with a remainder band, and padding / stride / dilation crossing band edges. */
    cases[n++] = s_conv_case2(1, 32, 45, 70, 6, 1, 3, 1, 1, 1);
    conv_case_t bd = s_conv_case2(1, 24, 61, 75, 6, 2, 5, 2, 2, 3);
    bd.pb[0] = 1;
    bd.pe[0] = 4;
    cases[n++] = bd;
    for (int i = 0; i < n; i++)
        s_conv_all_isas(&cases[i]);
}

BS_TEST(conv_random_shapes)
{
    for (int it = 0; it < 24; it++) {
        conv_case_t c = {.ns = 2, .N = s_randi(1, 2), .bias = s_randi(0, 1)};
        int kind = s_randi(0, 3);
        c.G = kind == 1 ? s_randi(2, 3) : 1;
        c.C = c.G * s_randi(1, 5);
        c.M = c.G * s_randi(1, 6);
        if (kind == 2) { /* depthwise */
            c.C = c.M = c.G = s_randi(1, 9);
        }
        for (int i = 0; i < 2; i++) {
            c.in[i] = s_randi(4, 14);
            c.k[i] = kind == 3 ? 1 : s_randi(1, 4);
            c.s[i] = kind == 3 ? 1 : s_randi(1, 3);
            c.d[i] = s_randi(1, 2);
            c.pb[i] = kind == 3 ? 0 : s_randi(0, 2);
            c.pe[i] = kind == 3 ? 0 : s_randi(0, 2);
            if ((c.k[i] - 1) * c.d[i] + 1 > c.in[i] + c.pb[i] + c.pe[i])
                c.d[i] = 1;
        }
        c.w_input = s_randi(0, 4) == 0;
        s_conv_run_case(&c, s_randi(1, 2));
    }
}

BS_TEST(conv_fused_relu_and_clip)
{
    conv_case_t c = s_conv_case2(1, 4, 9, 9, 6, 1, 3, 1, 1, 1);
    c.act = BS_ACT_RELU;
    s_conv_all_isas(&c);
    c.act = BS_ACT_CLIP;
    s_conv_all_isas(&c);
    conv_case_t dw = s_conv_case2(1, 6, 9, 9, 6, 6, 3, 2, 1, 1); /* depthwise kernel's act */
    dw.act = BS_ACT_CLIP;
    s_conv_all_isas(&dw);
    conv_case_t one = s_conv_case2(1, 8, 5, 5, 8, 1, 1, 1, 1, 0);
    one.act = BS_ACT_RELU;
    s_conv_all_isas(&one);
}

/* ---- ConvTranspose against a scatter reference -------------------------------------------- */

BS_TEST(conv_transpose_groups)
{
    /* X [1,4,5,4], W [4,3,3,2] with group 2 -> M = 6, stride (2,3), dilation (1,2),
     * pads (1,0,0,1), output_padding (1,1). */
    int64_t xd[4] = {1, 4, 5, 4}, wd[4] = {4, 3, 3, 2}, G = 2, M = 6;
    int64_t st[2] = {2, 3}, dl[2] = {1, 2}, pads[4] = {1, 0, 0, 1}, op[2] = {1, 1};
    int64_t OH = st[0] * (xd[2] - 1) + op[0] + (wd[2] - 1) * dl[0] + 1 - pads[0] - pads[2];
    int64_t OW = st[1] * (xd[3] - 1) + op[1] + (wd[3] - 1) * dl[1] + 1 - pads[1] - pads[3];
    bs_shape_t xs = s_shape(4, xd), ws = s_shape(4, wd), bsh = s_shape(1, &M);
    float *x = s_randv(80), *w = s_randv(72), *b = s_randv(M);
    int64_t yn = M * OH * OW;
    double *ref = bs_calloc((size_t)yn, sizeof *ref);
    ASSERT(ref);
    for (int64_t c = 0; c < 4; c++) {
        int64_t grp = c / 2;
        for (int64_t oc = 0; oc < 3; oc++)
            for (int64_t ih = 0; ih < 5; ih++)
                for (int64_t iw = 0; iw < 4; iw++)
                    for (int64_t kh = 0; kh < 3; kh++)
                        for (int64_t kw = 0; kw < 2; kw++) {
                            int64_t oh = ih * st[0] - pads[0] + kh * dl[0];
                            int64_t ow = iw * st[1] - pads[1] + kw * dl[1];
                            if (oh < 0 || oh >= OH || ow < 0 || ow >= OW)
                                continue;
                            ref[((grp * 3 + oc) * OH + oh) * OW + ow] +=
                                (double)x[(c * 5 + ih) * 4 + iw] *
                                w[((c * 3 + oc) * 3 + kh) * 2 + kw];
                        }
    }
    for (int64_t i = 0; i < yn; i++)
        ref[i] = s_actd(ref[i] + b[i / (OH * OW)], BS_ACT_NONE, 0, 0);
    for (int wi = 0; wi < 2; wi++) {
        t_model_t *m = t_new(13);
        t_input(m, "X", &xs);
        if (wi)
            t_input(m, "W", &ws);
        else
            t_init(m, "W", &ws, w);
        t_init(m, "B", &bsh, b);
        int k = t_node(m, "ConvTranspose", "up", "X,W,B", "Y");
        t_attr_int(m, k, "group", G);
        t_attr_ints(m, k, "strides", 2, st);
        t_attr_ints(m, k, "dilations", 2, dl);
        t_attr_ints(m, k, "pads", 4, pads);
        t_attr_ints(m, k, "output_padding", 2, op);
        t_output(m, "Y");
        bs_graph_t *g = NULL;
        bs_err_t err;
        if (t_load(m, 1, 0, &g, &err))
            bs_test_fail(__FILE__, __LINE__, "load: %s", err.msg);
        ASSERT_EQ(!wi, g->nodes[0].weight_layer);
        ASSERT_OK(bs_graph_set_input(g, 0, BS_DT_FLOAT, x, 80 * 4, &err));
        if (wi)
            ASSERT_OK(bs_graph_set_input(g, 1, BS_DT_FLOAT, w, 72 * 4, &err));
        ASSERT_OK(bs_graph_run(g, &err));
        const bs_tensor_t *y = bs_graph_output(g, 0);
        ASSERT_EQ(4, y->shape.rank);
        ASSERT_EQ(M, y->shape.d[1]);
        ASSERT_EQ(OH, y->shape.d[2]);
        ASSERT_EQ(OW, y->shape.d[3]);
        s_check("convtranspose", y->data, ref, NULL, yn);
        bs_graph_free(&g);
        t_free(m);
    }
    bs_free(x);
    bs_free(w);
    bs_free(b);
    bs_free(ref);
}

/* ---- Gemm and MatMul ---------------------------------------------------------------------- */

typedef struct gemm_case {
    int64_t M, N, K;
    int ta, tb;
    float alpha, beta;
    int crank; /* -1: no C; 0: scalar; 1: [N]; 2: [M,N]; 3: [M,1] */
    int b_input, c_input, act;
} gemm_case_t;

static void s_gemm_case(const gemm_case_t *c, int threads)
{
    int64_t ad[2] = {c->ta ? c->K : c->M, c->ta ? c->M : c->K};
    int64_t bd[2] = {c->tb ? c->N : c->K, c->tb ? c->K : c->N};
    int64_t cd[2];
    bs_shape_t cs = {0};
    if (c->crank == 1) {
        cs = s_shape(1, &c->N);
    } else if (c->crank == 2) {
        cd[0] = c->M;
        cd[1] = c->N;
        cs = s_shape(2, cd);
    } else if (c->crank == 3) {
        cd[0] = c->M;
        cd[1] = 1;
        cs = s_shape(2, cd);
    }
    bs_shape_t as = s_shape(2, ad), bsh = s_shape(2, bd);
    float *a = s_randv(c->M * c->K), *b = s_randv(c->K * c->N), *cv = s_randv(c->M * c->N);
    double *ref = bs_malloc((size_t)(c->M * c->N) * sizeof *ref);
    double *mag = bs_malloc((size_t)(c->M * c->N) * sizeof *mag);
    ASSERT(ref && mag);
    float lo = -0.3f, hi = 0.6f;
    for (int64_t i = 0; i < c->M; i++)
        for (int64_t j = 0; j < c->N; j++) {
            double acc = 0, am = 0;
            for (int64_t k = 0; k < c->K; k++) {
                double av = a[c->ta ? k * c->M + i : i * c->K + k];
                double bv = b[c->tb ? j * c->K + k : k * c->N + j];
                acc += av * bv;
                am += fabs(av * bv);
            }
            acc *= c->alpha;
            am *= fabs(c->alpha);
            if (c->crank >= 0) {
                double cc = c->crank == 0   ? cv[0]
                            : c->crank == 1 ? cv[j]
                            : c->crank == 2 ? cv[i * c->N + j]
                                            : cv[i];
                acc += c->beta * cc;
                am += fabs(c->beta * cc);
            }
            ref[i * c->N + j] = s_actd(acc, c->act, lo, hi);
            mag[i * c->N + j] = am;
        }
    t_model_t *m = t_new(13);
    t_input(m, "A", &as);
    if (c->b_input)
        t_input(m, "B", &bsh);
    else
        t_init(m, "B", &bsh, b);
    if (c->crank >= 0) {
        if (c->c_input)
            t_input(m, "C", &cs);
        else
            t_init(m, "C", &cs, cv);
    }
    int k = t_node(m, "Gemm", "fc", c->crank >= 0 ? "A,B,C" : "A,B", c->act ? "Z" : "Y");
    t_attr_int(m, k, "transA", c->ta);
    t_attr_int(m, k, "transB", c->tb);
    t_attr_float(m, k, "alpha", c->alpha);
    t_attr_float(m, k, "beta", c->beta);
    if (c->act == BS_ACT_RELU) {
        t_node(m, "Relu", "relu", "Z", "Y");
    } else if (c->act == BS_ACT_CLIP) {
        bs_shape_t sc = {.rank = 0};
        t_init(m, "lo", &sc, &lo);
        t_init(m, "hi", &sc, &hi);
        t_node(m, "Clip", "clip", "Z,lo,hi", "Y");
    }
    t_output(m, "Y");
    bs_graph_t *g = NULL;
    bs_err_t err;
    if (t_load(m, threads, 0, &g, &err))
        bs_test_fail(__FILE__, __LINE__, "load: %s", err.msg);
    ASSERT_EQ(!c->b_input, g->nodes[0].weight_layer);
    ASSERT_EQ(c->act, g->nodes[0].act);
    int in = 0;
    ASSERT_OK(bs_graph_set_input(g, in++, BS_DT_FLOAT, a, (size_t)(c->M * c->K) * 4, &err));
    if (c->b_input)
        ASSERT_OK(bs_graph_set_input(g, in++, BS_DT_FLOAT, b, (size_t)(c->K * c->N) * 4, &err));
    if (c->crank >= 0 && c->c_input)
        ASSERT_OK(
            bs_graph_set_input(g, in++, BS_DT_FLOAT, cv, (size_t)bs_shape_numel(&cs) * 4, &err));
    ASSERT_OK(bs_graph_run(g, &err));
    const bs_tensor_t *y = bs_graph_output(g, 0);
    ASSERT_EQ(c->M, y->shape.d[0]);
    ASSERT_EQ(c->N, y->shape.d[1]);
    s_check("gemm", y->data, ref, mag, c->M * c->N);
    bs_graph_free(&g);
    t_free(m);
    bs_free(a);
    bs_free(b);
    bs_free(cv);
    bs_free(ref);
    bs_free(mag);
}

BS_TEST(gemm_attributes_and_broadcasts)
{
    gemm_case_t base = {.M = 7, .N = 13, .K = 19, .alpha = 1.0f, .beta = 1.0f, .crank = 1};
    for (int it = 0; it < 48; it++) {
        gemm_case_t c = base;
        c.M = s_randi(1, 20);
        c.N = s_randi(1, 20);
        c.K = s_randi(1, 40);
        c.ta = it & 1;
        c.tb = (it >> 1) & 1;
        c.crank = s_randi(-1, 3);
        c.alpha = s_randi(0, 1) ? 1.0f : 0.5f;
        c.beta = s_randi(0, 2) == 0 ? 1.0f : (s_randi(0, 1) ? 0.0f : -2.0f);
        c.b_input = s_randi(0, 2) == 0;
        c.c_input = s_randi(0, 2) == 0;
        c.act = s_randi(0, 2);
        s_gemm_case(&c, s_randi(1, 2));
    }
}

/* MatMul of shapes a and b (numpy rules) against a loop over the broadcast batch. */
static void s_matmul_case(int ra, const int64_t *ad, int rb, const int64_t *bd, int b_input,
                          int act)
{
    bs_shape_t as = s_shape(ra, ad), bsh = s_shape(rb, bd);
    int64_t M = ra == 1 ? 1 : ad[ra - 2], K = ad[ra - 1], N = rb == 1 ? 1 : bd[rb - 1];
    bs_shape_t ab = s_shape(ra > 2 ? ra - 2 : 0, ad), bb = s_shape(rb > 2 ? rb - 2 : 0, bd), ob;
    ASSERT_OK(bs_shape_broadcast(&ab, &bb, &ob));
    int64_t nb = bs_shape_numel(&ob), astr[BS_MAX_RANK], bstr[BS_MAX_RANK];
    bs_shape_bcast_strides(&ab, &ob, astr);
    bs_shape_bcast_strides(&bb, &ob, bstr);
    float *a = s_randv(bs_shape_numel(&as)), *b = s_randv(bs_shape_numel(&bsh));
    int64_t yn = nb * M * N;
    double *ref = bs_malloc((size_t)yn * sizeof *ref), *mag = bs_malloc((size_t)yn * sizeof *mag);
    ASSERT(ref && mag);
    for (int64_t o = 0; o < nb; o++) {
        int64_t ai = 0, bi = 0, rem = o;
        for (int i = ob.rank - 1; i >= 0; i--) {
            ai += (rem % ob.d[i]) * astr[i];
            bi += (rem % ob.d[i]) * bstr[i];
            rem /= ob.d[i];
        }
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double acc = 0, am = 0;
                for (int64_t k = 0; k < K; k++) {
                    double p = (double)a[ai * M * K + i * K + k] * b[bi * K * N + k * N + j];
                    acc += p;
                    am += fabs(p);
                }
                ref[(o * M + i) * N + j] = s_actd(acc, act, 0, 0);
                mag[(o * M + i) * N + j] = am;
            }
    }
    t_model_t *m = t_new(13);
    t_input(m, "A", &as);
    if (b_input)
        t_input(m, "B", &bsh);
    else
        t_init(m, "B", &bsh, b);
    t_node(m, "MatMul", "mm", "A,B", act ? "Z" : "Y");
    if (act)
        t_node(m, "Relu", "relu", "Z", "Y");
    t_output(m, "Y");
    bs_graph_t *g = NULL;
    bs_err_t err;
    if (t_load(m, 2, 0, &g, &err))
        bs_test_fail(__FILE__, __LINE__, "load: %s", err.msg);
    ASSERT_EQ(!b_input, g->nodes[0].weight_layer);
    ASSERT_OK(bs_graph_set_input(g, 0, BS_DT_FLOAT, a, (size_t)bs_shape_numel(&as) * 4, &err));
    if (b_input)
        ASSERT_OK(
            bs_graph_set_input(g, 1, BS_DT_FLOAT, b, (size_t)bs_shape_numel(&bsh) * 4, &err));
    ASSERT_OK(bs_graph_run(g, &err));
    const bs_tensor_t *y = bs_graph_output(g, 0);
    int yr = ob.rank + (ra > 1) + (rb > 1);
    ASSERT_EQ(yr, y->shape.rank);
    ASSERT_EQ(yn, bs_shape_numel(&y->shape));
    s_check("matmul", y->data, ref, mag, yn);
    bs_graph_free(&g);
    t_free(m);
    bs_free(a);
    bs_free(b);
    bs_free(ref);
    bs_free(mag);
}

BS_TEST(matmul_broadcasting_and_vectors)
{
    for (int bi = 0; bi < 2; bi++) {
        int64_t a1[3] = {2, 5, 7}, b1[2] = {7, 3}; /* weight: one flat product */
        s_matmul_case(3, a1, 2, b1, bi, bi);
        int64_t a2[4] = {2, 1, 4, 6}, b2[4] = {1, 3, 6, 5}; /* batch broadcast both ways */
        s_matmul_case(4, a2, 4, b2, bi, 0);
        int64_t a3[1] = {6}, b3[3] = {2, 6, 4}; /* 1-D A */
        s_matmul_case(1, a3, 3, b3, bi, 0);
        int64_t a4[3] = {3, 2, 6}, b4[1] = {6}; /* 1-D B */
        s_matmul_case(3, a4, 1, b4, bi, 0);
        int64_t a5[1] = {9}, b5[1] = {9}; /* dot product */
        s_matmul_case(1, a5, 1, b5, bi, 0);
        int64_t a6[2] = {4, 8}, b6[3] = {3, 8, 5}; /* A broadcast over B's batch */
        s_matmul_case(2, a6, 3, b6, bi, 1);
    }
}

/* ---- pools against a reference ------------------------------------------------------------- */

/* One random 1-D or 2-D MaxPool / AveragePool against a direct evaluation of the ONNX rule. */
static void s_pool_case(int is_max, int ns, int ceil_mode, int incl)
{
    int64_t N = s_randi(1, 2), C = s_randi(1, 3), in[2] = {1, 1}, k[2] = {1, 1};
    int64_t st[2] = {1, 1}, dl[2] = {1, 1}, pb[2] = {0, 0}, pe[2] = {0, 0}, out[2] = {1, 1};
    for (int i = 0; i < ns; i++) {
        k[i] = s_randi(1, 4);
        st[i] = s_randi(1, 3);
        dl[i] = is_max ? s_randi(1, 2) : 1;
        pb[i] = s_randi(0, (int)k[i] - 1 < 2 ? (int)k[i] - 1 : 2);
        pe[i] = s_randi(0, (int)k[i] - 1 < 2 ? (int)k[i] - 1 : 2);
        in[i] = s_randi((int)((k[i] - 1) * dl[i] + 1), 17);
        int64_t span = in[i] + pb[i] + pe[i] - (k[i] - 1) * dl[i] - 1;
        out[i] = (ceil_mode ? (span + st[i] - 1) / st[i] : span / st[i]) + 1;
        if (ceil_mode && (out[i] - 1) * st[i] >= in[i] + pb[i])
            out[i]--;
    }
    int64_t H = ns == 2 ? in[0] : 1, W = in[ns - 1], OH = ns == 2 ? out[0] : 1;
    int64_t OW = out[ns - 1];
    int64_t xd[4] = {N, C, in[0], in[1]};
    bs_shape_t xs = s_shape(ns + 2, xd);
    float *x = s_randv(N * C * H * W);
    int64_t yn = N * C * OH * OW;
    double *ref = bs_malloc((size_t)yn * sizeof *ref);
    ASSERT(ref);
    /* per axis (a = 0: rows, 1: columns), promoted to 2-D */
    int64_t K2[2] = {ns == 2 ? k[0] : 1, k[ns - 1]}, S2[2] = {ns == 2 ? st[0] : 1, st[ns - 1]};
    int64_t D2[2] = {ns == 2 ? dl[0] : 1, dl[ns - 1]}, B2[2] = {ns == 2 ? pb[0] : 0, pb[ns - 1]};
    int64_t E2[2] = {ns == 2 ? pe[0] : 0, pe[ns - 1]}, I2[2] = {H, W};
    for (int64_t nc = 0; nc < N * C; nc++)
        for (int64_t oh = 0; oh < OH; oh++)
            for (int64_t ow = 0; ow < OW; ow++) {
                double acc = is_max ? -INFINITY : 0.0;
                int64_t cnt = 0, padded[2] = {0, 0};
                int64_t o2[2] = {oh, ow};
                for (int a = 0; a < 2; a++)
                    for (int64_t t = 0; t < K2[a]; t++)
                        padded[a] += o2[a] * S2[a] - B2[a] + t * D2[a] < I2[a] + E2[a];
                for (int64_t kh = 0; kh < K2[0]; kh++)
                    for (int64_t kw = 0; kw < K2[1]; kw++) {
                        int64_t h = oh * S2[0] - B2[0] + kh * D2[0];
                        int64_t w = ow * S2[1] - B2[1] + kw * D2[1];
                        if (h < 0 || h >= H || w < 0 || w >= W)
                            continue;
                        double v = x[(nc * H + h) * W + w];
                        acc = is_max ? (v > acc ? v : acc) : acc + v;
                        cnt++;
                    }
                int64_t div = incl ? padded[0] * padded[1] : cnt;
                ref[(nc * OH + oh) * OW + ow] = is_max ? acc : (div ? acc / (double)div : 0.0);
            }
    t_model_t *m = t_new(12);
    t_input(m, "X", &xs);
    int kn = t_node(m, is_max ? "MaxPool" : "AveragePool", "pool", "X", "Y");
    int64_t pads[4] = {pb[0], ns == 2 ? pb[1] : pe[0], pe[0], pe[1]};
    if (ns == 1)
        pads[1] = pe[0];
    t_attr_ints(m, kn, "kernel_shape", ns, k);
    t_attr_ints(m, kn, "strides", ns, st);
    t_attr_ints(m, kn, "pads", 2 * ns, pads);
    if (is_max)
        t_attr_ints(m, kn, "dilations", ns, dl);
    else
        t_attr_int(m, kn, "count_include_pad", incl);
    t_attr_int(m, kn, "ceil_mode", ceil_mode);
    t_output(m, "Y");
    bs_graph_t *g = NULL;
    bs_err_t err;
    if (t_load(m, 1, 0, &g, &err))
        bs_test_fail(__FILE__, __LINE__, "load: %s", err.msg);
    ASSERT_OK(bs_graph_set_input(g, 0, BS_DT_FLOAT, x, (size_t)(N * C * H * W) * 4, &err));
    ASSERT_OK(bs_graph_run(g, &err));
    const bs_tensor_t *y = bs_graph_output(g, 0);
    ASSERT_EQ(yn, bs_shape_numel(&y->shape));
    s_check(is_max ? "maxpool" : "averagepool", y->data, ref, NULL, yn);
    bs_graph_free(&g);
    t_free(m);
    bs_free(x);
    bs_free(ref);
}

BS_TEST(pools_match_reference)
{
    for (int it = 0; it < 200; it++)
        s_pool_case(it & 1, 1 + ((it >> 1) & 1), (it >> 2) & 1, (it >> 3) & 1);
}

/* ---- opset-dependent semantics ---------------------------------------------------------------
 */

/* Loads a one-node model (built by the caller in m, input "X" of shape xs, output "Y"), runs it
 * on x and returns a copy of Y (bs_free) with its shape in *ys. */
static float *s_run_one(t_model_t *m, const float *x, const bs_shape_t *xs, bs_shape_t *ys)
{
    bs_graph_t *g = NULL;
    bs_err_t err;
    if (t_load(m, 1, 0, &g, &err))
        bs_test_fail(__FILE__, __LINE__, "load: %s", err.msg);
    ASSERT_OK(bs_graph_set_input(g, 0, BS_DT_FLOAT, x, (size_t)bs_shape_numel(xs) * 4, &err));
    ASSERT_OK(bs_graph_run(g, &err));
    const bs_tensor_t *y = bs_graph_output(g, 0);
    *ys = y->shape;
    float *out = bs_malloc(y->nbytes + 4);
    ASSERT(out);
    memcpy(out, y->data, y->nbytes);
    bs_graph_free(&g);
    t_free(m);
    return out;
}

BS_TEST(softmax_legacy_and_per_axis)
{
    int64_t d[3] = {2, 3, 4};
    bs_shape_t xs = s_shape(3, d), ys;
    float *x = s_randv(24);
    for (int legacy = 0; legacy < 2; legacy++) {
        t_model_t *m = t_new(legacy ? 11 : 13);
        t_input(m, "X", &xs);
        int k = t_node(m, "Softmax", "sm", "X", "Y");
        t_attr_int(m, k, "axis", 1);
        t_output(m, "Y");
        float *y = s_run_one(m, x, &xs, &ys);
        ASSERT_EQ(3, ys.rank);
        /* opset 11: softmax over the 12 values of [1, 2]; opset 13: over axis 1 only */
        for (int b = 0; b < 2; b++)
            for (int in = 0; in < (legacy ? 1 : 4); in++) {
                int len = legacy ? 12 : 3, str = legacy ? 1 : 4;
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j < len; j++)
                    mx = fmax(mx, x[b * 12 + in + j * str]);
                for (int j = 0; j < len; j++)
                    sum += exp(x[b * 12 + in + j * str] - mx);
                for (int j = 0; j < len; j++) {
                    double want = exp(x[b * 12 + in + j * str] - mx) / sum;
                    ASSERT_DBL_NEAR(want, y[b * 12 + in + j * str], 1e-6);
                }
            }
        bs_free(y);
    }
    bs_free(x);
}

BS_TEST(reduce_mean_axes_input_opset18)
{
    int64_t d[3] = {2, 3, 4}, one = 1;
    bs_shape_t xs = s_shape(3, d), as = s_shape(1, &one), ys;
    float *x = s_randv(24);
    int64_t ax = -2;
    t_model_t *m = t_new(18);
    t_input(m, "X", &xs);
    t_init_any(m, "axes", &as, NULL, &ax);
    int k = t_node(m, "ReduceMean", "rm", "X,axes", "Y");
    t_attr_int(m, k, "keepdims", 0);
    t_output(m, "Y");
    float *y = s_run_one(m, x, &xs, &ys);
    ASSERT_EQ(2, ys.rank);
    ASSERT_EQ(2, ys.d[0]);
    ASSERT_EQ(4, ys.d[1]);
    for (int b = 0; b < 2; b++)
        for (int j = 0; j < 4; j++) {
            double want = (x[b * 12 + j] + x[b * 12 + 4 + j] + x[b * 12 + 8 + j]) / 3.0;
            ASSERT_DBL_NEAR(want, y[b * 4 + j], 1e-6);
        }
    bs_free(y);
    /* no axes: every axis, unless noop_with_empty_axes */
    for (int noop = 0; noop < 2; noop++) {
        m = t_new(18);
        t_input(m, "X", &xs);
        k = t_node(m, "ReduceMean", "rm", "X", "Y");
        t_attr_int(m, k, "noop_with_empty_axes", noop);
        t_output(m, "Y");
        y = s_run_one(m, x, &xs, &ys);
        if (noop) {
            ASSERT_EQ(3, ys.rank);
            for (int i = 0; i < 24; i++)
                ASSERT_DBL_NEAR(x[i], y[i], 0.0);
        } else {
            ASSERT_EQ(1, bs_shape_numel(&ys));
            double sum = 0;
            for (int i = 0; i < 24; i++)
                sum += x[i];
            ASSERT_DBL_NEAR(sum / 24.0, y[0], 1e-6);
        }
        bs_free(y);
    }
    bs_free(x);
}

BS_TEST(resize_opset10_and_sizes)
{
    int64_t d[4] = {1, 1, 2, 2}, four = 4;
    bs_shape_t xs = s_shape(4, d), s4 = s_shape(1, &four), ys;
    float x[4] = {1, 2, 3, 4}, sc[4] = {1, 1, 2, 2};
    /* opset 10: X, scales; asymmetric coordinates */
    static const float lin[16] = {1, 1.5f, 2, 2, 2, 2.5f, 3, 3, 3, 3.5f, 4, 4, 3, 3.5f, 4, 4};
    static const float near[16] = {1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4};
    for (int mode = 0; mode < 2; mode++) {
        t_model_t *m = t_new(10);
        t_input(m, "X", &xs);
        t_init(m, "scales", &s4, sc);
        int k = t_node(m, "Resize", "up", "X,scales", "Y");
        t_attr_str(m, k, "mode", mode ? "linear" : "nearest");
        t_output(m, "Y");
        float *y = s_run_one(m, x, &xs, &ys);
        ASSERT_EQ(16, bs_shape_numel(&ys));
        for (int i = 0; i < 16; i++)
            ASSERT_DBL_NEAR(mode ? lin[i] : near[i], y[i], 1e-6);
        bs_free(y);
    }
    /* opset 13 with sizes: 2x2 -> 3x5, nearest floor, asymmetric */
    int64_t sizes[4] = {1, 1, 3, 5};
    t_model_t *m = t_new(13);
    t_input(m, "X", &xs);
    t_init_any(m, "sizes", &s4, NULL, sizes);
    int k = t_node(m, "Resize", "up", "X,,,sizes", "Y");
    t_attr_str(m, k, "coordinate_transformation_mode", "asymmetric");
    t_attr_str(m, k, "nearest_mode", "floor");
    t_output(m, "Y");
    float *y = s_run_one(m, x, &xs, &ys);
    ASSERT_EQ(3, ys.d[2]);
    ASSERT_EQ(5, ys.d[3]);
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 5; c++) {
            int sr = (int)floor(r * 2.0 / 3.0), scn = (int)floor(c * 2.0 / 5.0);
            ASSERT_DBL_NEAR(x[sr * 2 + scn], y[r * 5 + c], 0.0);
        }
    bs_free(y);
}

/* ---- errors ------------------------------------------------------------------------------- */

/* Loads a one-Conv model and returns the load error. */
static int s_conv_error(const int64_t *xd, int xr, const int64_t *wd, int wr, int64_t group,
                        bs_err_t *err)
{
    bs_shape_t xs = s_shape(xr, xd), ws = s_shape(wr, wd);
    float *w = s_randv(bs_shape_numel(&ws));
    t_model_t *m = t_new(13);
    t_input(m, "X", &xs);
    t_init(m, "W", &ws, w);
    int k = t_node(m, "Conv", "conv1", "X,W", "Y");
    t_attr_int(m, k, "group", group);
    t_output(m, "Y");
    bs_graph_t *g = NULL;
    int rc = t_load(m, 1, 0, &g, err);
    ASSERT(rc != 0);
    bs_graph_free(&g);
    t_free(m);
    bs_free(w);
    return rc;
}

BS_TEST(conv_errors_name_the_node)
{
    bs_err_t err;
    int64_t x[4] = {1, 16, 8, 8}, w[4] = {8, 16, 3, 3};
    s_conv_error(x, 4, w, 4, 3, &err);
    ASSERT_CONTAINS(err.msg, "node 'conv1' (Conv)");
    ASSERT_CONTAINS(err.msg, "attribute 'group' = 3 does not divide 16 input channels");
    int64_t w2[4] = {8, 5, 3, 3};
    s_conv_error(x, 4, w2, 4, 1, &err);
    ASSERT_CONTAINS(err.msg, "node 'conv1' (Conv)");
    ASSERT_CONTAINS(err.msg, "has 16 channels");
    int64_t x3[2] = {1, 16};
    s_conv_error(x3, 2, w, 4, 1, &err);
    ASSERT_CONTAINS(err.msg, "node 'conv1' (Conv)");
    ASSERT_CONTAINS(err.msg, "rank 2");
    int64_t w4[3] = {8, 16, 3};
    s_conv_error(x, 4, w4, 3, 1, &err);
    ASSERT_CONTAINS(err.msg, "weight 'W' has rank 3");
    int64_t xs[4] = {1, 16, 2, 2};
    s_conv_error(xs, 4, w, 4, 1, &err); /* 3x3 kernel on a 2x2 image, no padding */
    ASSERT_CONTAINS(err.msg, "node 'conv1' (Conv)");
    ASSERT_CONTAINS(err.msg, "exceeds the padded input");
    int64_t w5[4] = {9, 4, 3, 3};
    s_conv_error(x, 4, w5, 4, 4, &err); /* 9 output channels, 4 groups */
    ASSERT_CONTAINS(err.msg, "does not divide 9 output channels");
}

/* A one-node model with a float input of shape xs and the given op; returns the load rc. */
static int s_one_node_error(const char *op, const bs_shape_t *xs, const bs_shape_t *ws,
                            void (*attrs)(t_model_t *m, int k), bs_err_t *err)
{
    t_model_t *m = t_new(13);
    float *w = NULL;
    t_input(m, "X", xs);
    if (ws) {
        w = s_randv(bs_shape_numel(ws));
        t_init(m, "W", ws, w);
    }
    int k = t_node(m, op, "bad", ws ? "X,W" : "X", "Y");
    if (attrs)
        attrs(m, k);
    t_output(m, "Y");
    bs_graph_t *g = NULL;
    int rc = t_load(m, 1, 0, &g, err);
    bs_graph_free(&g);
    t_free(m);
    bs_free(w);
    return rc;
}

static void s_attr_training(t_model_t *m, int k)
{
    t_attr_int(m, k, "training_mode", 1);
}

static void s_attr_axis9(t_model_t *m, int k)
{
    t_attr_int(m, k, "axis", 9);
}

static void s_attr_pool_nokernel(t_model_t *m, int k)
{
    int64_t s[2] = {2, 2};
    t_attr_ints(m, k, "strides", 2, s);
}

static void s_attr_resize_cubic_bad(t_model_t *m, int k)
{
    t_attr_str(m, k, "mode", "bicubic");
}

BS_TEST(nn_errors_name_the_node)
{
    bs_err_t err;
    int64_t x4[4] = {2, 3, 8, 8}, m1[2] = {4, 5}, m2[2] = {6, 3};
    bs_shape_t xs = s_shape(4, x4), a = s_shape(2, m1), b = s_shape(2, m2);
    ASSERT(s_one_node_error("MatMul", &a, &b, NULL, &err) != 0);
    ASSERT_CONTAINS(err.msg, "node 'bad' (MatMul)");
    ASSERT_CONTAINS(err.msg, "do not multiply");
    ASSERT(s_one_node_error("Gemm", &a, &b, NULL, &err) != 0);
    ASSERT_CONTAINS(err.msg, "node 'bad' (Gemm)");
    ASSERT_CONTAINS(err.msg, "inner dimensions differ");
    ASSERT(s_one_node_error("Softmax", &xs, NULL, s_attr_axis9, &err) != 0);
    ASSERT_CONTAINS(err.msg, "node 'bad' (Softmax)");
    ASSERT_CONTAINS(err.msg, "'axis' = 9");
    ASSERT(s_one_node_error("MaxPool", &xs, NULL, s_attr_pool_nokernel, &err) != 0);
    ASSERT_CONTAINS(err.msg, "node 'bad' (MaxPool)");
    ASSERT_CONTAINS(err.msg, "kernel_shape");

    /* BatchNormalization in training mode is refused. */
    t_model_t *m = t_new(15);
    int64_t c3 = 3;
    bs_shape_t cs = s_shape(1, &c3);
    float ones[3] = {1, 1, 1};
    t_input(m, "X", &xs);
    t_init(m, "s", &cs, ones);
    t_init(m, "b", &cs, ones);
    t_init(m, "mu", &cs, ones);
    t_init(m, "var", &cs, ones);
    int k = t_node(m, "BatchNormalization", "bn", "X,s,b,mu,var", "Y");
    s_attr_training(m, k);
    t_output(m, "Y");
    bs_graph_t *g = NULL;
    ASSERT_EQ(BS_EUNSUPPORTED, t_load(m, 1, 0, &g, &err));
    ASSERT_CONTAINS(err.msg, "node 'bn' (BatchNormalization)");
    ASSERT_CONTAINS(err.msg, "training_mode");
    t_free(m);

    /* Resize: an unknown mode, and scales that are not a load-time constant. */
    m = t_new(13);
    int64_t four = 4;
    bs_shape_t s4 = s_shape(1, &four);
    float sc[4] = {1, 1, 2, 2};
    t_input(m, "X", &xs);
    t_init(m, "scales", &s4, sc);
    k = t_node(m, "Resize", "up", "X,,scales", "Y");
    s_attr_resize_cubic_bad(m, k);
    t_output(m, "Y");
    ASSERT(t_load(m, 1, 0, &g, &err) != 0);
    ASSERT_CONTAINS(err.msg, "node 'up' (Resize)");
    ASSERT_CONTAINS(err.msg, "'bicubic'");
    t_free(m);
    m = t_new(13);
    t_input(m, "X", &xs);
    t_input(m, "scales", &s4);
    t_node(m, "Resize", "up", "X,,scales", "Y");
    t_output(m, "Y");
    ASSERT(t_load(m, 1, 0, &g, &err) != 0);
    ASSERT_CONTAINS(err.msg, "node 'up' (Resize)");
    ASSERT_CONTAINS(err.msg, "must be a constant");
    t_free(m);
}

/* ---- hostile attributes: a clean error or a run, never a crash ------------------------------ */

/* Mostly a plausible value (1 to 3), one time in four a hostile one. */
static int64_t s_nasty(void)
{
    static const int64_t v[] = {-1, 0, 5, 7, (int64_t)1 << 40, INT64_MAX, INT64_MIN};
    if (s_randi(0, 3))
        return s_randi(1, 3);
    return v[s_randi(0, (int)(sizeof v / sizeof v[0]) - 1)];
}

/* 1 three times in four, else s_nasty(): group, storage_order, keepdims... */
static int64_t s_mostly(int64_t good)
{
    return s_randi(0, 3) ? good : s_nasty();
}

/* An ints attribute of cnt values: absent, or `good` (when given), or s_nasty() values, and
 * sometimes the wrong count. */
static void s_nasty_ints(t_model_t *m, int k, const char *name, int cnt, const int64_t *good)
{
    int64_t v[8];
    if (good && s_randi(0, 2)) {
        t_attr_ints(m, k, name, cnt, good);
        return;
    }
    if (!good && s_randi(0, 2) == 0)
        return;
    cnt += s_randi(0, 4) == 0 ? s_randi(-1, 1) : 0;
    cnt = cnt < 0 ? 0 : (cnt > 8 ? 8 : cnt);
    for (int i = 0; i < cnt; i++)
        v[i] = s_nasty();
    t_attr_ints(m, k, name, cnt, v);
}

BS_TEST(hostile_attributes_never_crash)
{
    static const char *const ops[] = {"Conv",        "ConvTranspose", "MaxPool",
                                      "AveragePool", "Resize",        "Softmax",
                                      "Gemm",        "ReduceMean",    "LayerNormalization"};
    static const char *const pads[] = {"NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID", "bogus"};
    static const char *const modes[] = {"nearest", "linear", "cubic", "area"};
    static const char *const ctms[] = {"half_pixel",           "align_corners",
                                       "pytorch_half_pixel",   "tf_crop_and_resize",
                                       "tf_half_pixel_for_nn", "x"};
    int loaded = 0;
    for (int it = 0; it < 1800; it++) {
        const char *op = ops[it % (int)(sizeof ops / sizeof ops[0])];
        int ns = s_randi(1, 3);
        int64_t xd[5] = {s_randi(1, 2), s_randi(1, 4)}, wd[5] = {s_randi(1, 4), s_randi(1, 4)};
        for (int i = 0; i < ns; i++) {
            xd[2 + i] = s_randi(1, 6);
            wd[2 + i] = s_randi(1, 3);
        }
        bs_shape_t xs = s_shape(ns + 2, xd), ws = s_shape(ns + 2, wd);
        t_model_t *m = t_new(strcmp(op, "Resize") || s_randi(0, 3) ? 13 : 10);
        t_input(m, "X", &xs);
        if (s_randi(0, 3)) /* channels usually agree */
            ws.d[!strcmp(op, "Conv")] = xd[1];
        float *w = s_randv(bs_shape_numel(&ws) + 16); /* + 16: Gemm's B is up to 4x4 */
        int k;
        if (!strcmp(op, "Conv") || !strcmp(op, "ConvTranspose")) {
            t_init(m, "W", &ws, w);
            k = t_node(m, op, "n", "X,W", "Y");
            t_attr_int(m, k, "group", s_mostly(1));
            s_nasty_ints(m, k, "kernel_shape", ns, wd + 2);
            s_nasty_ints(m, k, "strides", ns, NULL);
            s_nasty_ints(m, k, "dilations", ns, NULL);
            s_nasty_ints(m, k, "pads", 2 * ns, NULL);
            s_nasty_ints(m, k, "output_padding", ns, NULL);
            s_nasty_ints(m, k, "output_shape", ns, NULL);
            t_attr_str(m, k, "auto_pad", pads[s_randi(0, 4)]);
        } else if (!strcmp(op, "MaxPool") || !strcmp(op, "AveragePool")) {
            k = t_node(m, op, "n", "X", "Y");
            s_nasty_ints(m, k, "kernel_shape", ns, wd + 2);
            s_nasty_ints(m, k, "strides", ns, NULL);
            s_nasty_ints(m, k, "dilations", ns, NULL);
            s_nasty_ints(m, k, "pads", 2 * ns, NULL);
            t_attr_int(m, k, "ceil_mode", s_mostly(s_randi(0, 1)));
            t_attr_int(m, k, "storage_order", s_mostly(0));
            t_attr_str(m, k, "auto_pad", pads[s_randi(0, 4)]);
        } else if (!strcmp(op, "Resize")) {
            static const float fv[] = {0.0f, -1.0f, NAN, INFINITY, 1e30f, 0.5f, 1.0f, 2.0f, 3.0f};
            int64_t cnt = ns + 2 + (s_randi(0, 5) == 0), sz[8];
            float sc[16];
            bs_shape_t cs = s_shape(1, &cnt), rs;
            int64_t rn = 2 * cnt;
            rs = s_shape(1, &rn);
            for (int i = 0; i < 16; i++)
                sc[i] = i < 8 && s_randi(0, 1) ? 1.0f : fv[s_randi(0, 8)];
            for (int i = 0; i < 8; i++)
                sz[i] = s_randi(0, 3) ? s_randi(1, 5) : s_nasty();
            t_init(m, "roi", &rs, sc);
            if (s_randi(0, 1))
                t_init(m, "scales", &cs, sc + 8);
            else
                t_init_any(m, "sizes", &cs, NULL, sz);
            int has_scales = !strcmp(m->iname[m->gr.n_initializer - 1], "scales");
            k = t_node(m, op, "n", has_scales ? "X,roi,scales" : "X,roi,,sizes", "Y");
            t_attr_str(m, k, "mode", modes[s_randi(0, 3)]);
            t_attr_str(m, k, "coordinate_transformation_mode", ctms[s_randi(0, 5)]);
            t_attr_int(m, k, "exclude_outside", s_randi(0, 1));
        } else if (!strcmp(op, "Gemm")) {
            int64_t ad[2] = {s_randi(1, 4), s_randi(1, 4)}, bd[2] = {s_randi(1, 4), s_randi(1, 4)};
            bs_shape_t a2 = s_shape(2, ad), b2 = s_shape(2, bd);
            t_model_t *m2 = t_new(13);
            t_free(m);
            m = m2;
            t_input(m, "X", &a2);
            t_init(m, "W", &b2, w);
            k = t_node(m, op, "n", "X,W", "Y");
            t_attr_int(m, k, "transA", s_nasty());
            t_attr_int(m, k, "transB", s_nasty());
            xs = a2;
        } else {
            int64_t one = 1;
            bs_shape_t s1 = s_shape(1, &one);
            int ln = !strcmp(op, "LayerNormalization");
            if (ln)
                t_init(m, "S", &s1, w);
            k = t_node(m, op, "n", ln ? "X,S" : "X", "Y");
            t_attr_int(m, k, "axis", s_mostly(-1));
            s_nasty_ints(m, k, "axes", 2, NULL);
            t_attr_int(m, k, "keepdims", s_mostly(0));
        }
        t_output(m, "Y");
        bs_graph_t *g = NULL;
        bs_err_t err;
        if (t_load(m, 1, 0, &g, &err) == 0) {
            loaded++;
            float *x = s_randv(bs_shape_numel(&xs));
            ASSERT_OK(
                bs_graph_set_input(g, 0, BS_DT_FLOAT, x, (size_t)bs_shape_numel(&xs) * 4, &err));
            ASSERT_OK(bs_graph_run(g, &err));
            bs_free(x);
        } else {
            ASSERT_CONTAINS(err.msg, "node 'n'");
        }
        bs_graph_free(&g);
        t_free(m);
        bs_free(w);
    }
    ASSERT(loaded > 0);
}

/* ---- a small CNN: fused and unfused graphs agree ------------------------------------------- */

BS_TEST(cnn_fused_matches_unfused)
{
    /* Conv 3x3 -> BatchNorm -> Relu -> depthwise 3x3 s2 -> Clip(0,6) -> 1x1 -> GAP ->
     * Flatten -> Gemm -> Relu; unfused, then with BatchNorm folded and the activations fused */
    int64_t xd[4] = {2, 3, 12, 12}, w1d[4] = {8, 3, 3, 3}, w2d[4] = {8, 1, 3, 3};
    int64_t w3d[4] = {16, 8, 1, 1}, fcd[2] = {5, 16}, c8 = 8, c5 = 5;
    bs_shape_t xs = s_shape(4, xd), w1s = s_shape(4, w1d), w2s = s_shape(4, w2d);
    bs_shape_t w3s = s_shape(4, w3d), fcs = s_shape(2, fcd), s8 = s_shape(1, &c8);
    bs_shape_t s5 = s_shape(1, &c5), sc = {.rank = 0};
    float *x = s_randv(bs_shape_numel(&xs)), *w1 = s_randv(216), *w2 = s_randv(72);
    float *w3 = s_randv(128), *fc = s_randv(80), *fb = s_randv(5);
    float bn[4][8], lo = 0.0f, hi = 6.0f;
    for (int i = 0; i < 8; i++) {
        bn[0][i] = 1.0f + 0.5f * s_rand();
        bn[1][i] = s_rand();
        bn[2][i] = 0.1f * s_rand();
        bn[3][i] = 1.0f + 0.5f * s_rand();
    }
    float *out[2] = {NULL, NULL};
    for (int nf = 0; nf < 2; nf++) {
        t_model_t *m = t_new(13);
        t_input(m, "X", &xs);
        t_init(m, "w1", &w1s, w1);
        t_init(m, "w2", &w2s, w2);
        t_init(m, "w3", &w3s, w3);
        t_init(m, "fc", &fcs, fc);
        t_init(m, "fb", &s5, fb);
        t_init(m, "lo", &sc, &lo);
        t_init(m, "hi", &sc, &hi);
        t_init(m, "bn_s", &s8, bn[0]);
        t_init(m, "bn_b", &s8, bn[1]);
        t_init(m, "bn_m", &s8, bn[2]);
        t_init(m, "bn_v", &s8, bn[3]);
        int k = t_node(m, "Conv", "c1", "X,w1", "a");
        int64_t p1[4] = {1, 1, 1, 1}, s2[2] = {2, 2};
        t_attr_ints(m, k, "pads", 4, p1);
        t_node(m, "BatchNormalization", "bn1", "a,bn_s,bn_b,bn_m,bn_v", "b");
        t_node(m, "Relu", "r1", "b", "c");
        k = t_node(m, "Conv", "dw", "c,w2", "d");
        t_attr_int(m, k, "group", 8);
        t_attr_ints(m, k, "pads", 4, p1);
        t_attr_ints(m, k, "strides", 2, s2);
        t_node(m, "Clip", "r6", "d,lo,hi", "e");
        t_node(m, "Conv", "pw", "e,w3", "f");
        t_node(m, "GlobalAveragePool", "gap", "f", "h");
        t_node(m, "Flatten", "flat", "h", "i");
        k = t_node(m, "Gemm", "fc", "i,fc,fb", "j");
        t_attr_int(m, k, "transB", 1);
        t_node(m, "Relu", "r2", "j", "out");
        t_output(m, "out");
        bs_graph_t *g = NULL;
        bs_err_t err;
        if (t_load(m, 1, nf, &g, &err))
            bs_test_fail(__FILE__, __LINE__, "load: %s", err.msg);
        ASSERT_OK(bs_graph_set_input(g, 0, BS_DT_FLOAT, x, (size_t)bs_shape_numel(&xs) * 4, &err));
        ASSERT_OK(bs_graph_run(g, &err));
        const bs_tensor_t *y = bs_graph_output(g, 0);
        ASSERT_EQ(2 * 5, bs_shape_numel(&y->shape));
        if (!nf) { /* fused: BatchNorm folded, both Relus and the Clip absorbed */
            int live = 0;
            for (int i = 0; i < g->n_nodes; i++)
                live += !g->nodes[i].dead;
            ASSERT_EQ(6, live);
        }
        out[nf] = bs_malloc(10 * sizeof(float));
        ASSERT(out[nf]);
        memcpy(out[nf], y->data, 10 * sizeof(float));
        bs_graph_free(&g);
        t_free(m);
    }
    for (int i = 0; i < 10; i++)
        ASSERT_DBL_NEAR(out[1][i], out[0][i], 1e-4 * (1.0 + fabs(out[1][i])));
    bs_free(out[0]);
    bs_free(out[1]);
    bs_free(x);
    bs_free(w1);
    bs_free(w2);
    bs_free(w3);
    bs_free(fc);
    bs_free(fb);
}

#define TESTS(X)                                                                                  \
    X(conv_paths_match_reference)                                                                 \
    X(conv_random_shapes)                                                                         \
    X(conv_fused_relu_and_clip)                                                                   \
    X(conv_transpose_groups)                                                                      \
    X(gemm_attributes_and_broadcasts)                                                             \
    X(matmul_broadcasting_and_vectors)                                                            \
    X(pools_match_reference)                                                                      \
    X(softmax_legacy_and_per_axis)                                                                \
    X(reduce_mean_axes_input_opset18)                                                             \
    X(resize_opset10_and_sizes)                                                                   \
    X(hostile_attributes_never_crash)                                                             \
    X(conv_errors_name_the_node)                                                                  \
    X(nn_errors_name_the_node)                                                                    \
    X(cnn_fused_matches_unfused)

BS_TEST_MAIN(TESTS)

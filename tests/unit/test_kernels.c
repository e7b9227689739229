/*
 * test_kernels.c - the engine's compute kernels and thread pool.
 *
 * The scalar table is the reference: it is checked against a naive double-precision GEMM,
 * then every other instruction set this build and CPU can run (AVX2 on x86-64, NEON on
 * arm64 - see tools/cross-arm64.sh, which runs this file under qemu-aarch64) is compared
 * with it on random data over shapes with odd sizes and tails, every stride layout the
 * engine uses, with and without bias, and each activation. im2col must match bit for bit;
 * depthwise and GEMM within the tolerance below. The direct convolution (every ISA that has
 * one, the scalar table included) is compared with a naive convolution within the same
 * tolerance. Thread counts 1, 2 and 3 must give
 * bitwise identical results, since K is never split across threads.
 *
 * Tolerance. Every kernel sums each output over k in the same order and the same K blocks;
 * the SIMD paths differ from the scalar one only by fusing each multiply-add (one rounding
 * instead of two per step). Each step's rounding is at most eps/2 = 6e-8 of the running
 * sum; with inputs in [-1, 1] and K <= 257 the running sums stay O(sqrt(K)) ~ 16 and
 * the differences grow as a random walk, so they stay well under 1e-5 absolute, or 1e-5
 * relative for larger values (the tests print the largest seen: about a third of the
 * tolerance for GEMM with K up to 600, under a tenth for depthwise, on x86-64 and arm64).
 * A wrong index or a missed tail changes a value by O(1), many orders of magnitude above.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>

#include "bs_alloc.h"
#include "bs_error.h"
#include "bs_kernels.h"
#include "bs_quant.h"
#include "bs_test.h"
#include "bs_threadpool.h"

#define TOL_ABS 1e-5
#define TOL_REL 1e-5

/* ---- helpers -------------------------------------------------------------------------- */

static uint64_t s_rng = 0x9e3779b97f4a7c15ull;

static float s_rand(void)
{
    s_rng ^= s_rng << 13;
    s_rng ^= s_rng >> 7;
    s_rng ^= s_rng << 17;
    return (float)((double)(s_rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static float *s_randv(size_t n)
{
    float *v = bs_malloc(n * sizeof *v);
    ASSERT(v);
    for (size_t i = 0; i < n; i++)
        v[i] = s_rand();
    return v;
}

/* 64-byte aligned buffer (bs_malloc gives 16); free with s_afree. */
static void *s_aalloc(size_t n)
{
    char *raw = bs_malloc(n + 64 + sizeof(void *));
    ASSERT(raw);
    uintptr_t a = ((uintptr_t)raw + sizeof(void *) + 63) & ~(uintptr_t)63;
    ((void **)a)[-1] = raw;
    return (void *)a;
}

static void s_afree(void *p)
{
    if (p)
        bs_free(((void **)p)[-1]);
}

static double s_worst; /* largest |got - ref| / tolerance seen, printed by the ISA tests */

static int s_near(double ref, double got)
{
    double tol = TOL_ABS + TOL_REL * fabs(ref), d = fabs(ref - got);
    if (d / tol > s_worst)
        s_worst = d / tol;
    return d <= tol;
}

/* Every ISA but "scalar" in bs_kernels_available(), into names[]; returns the count. */
static int s_fast_isas(char names[][16], int cap)
{
    const char *av = bs_kernels_available();
    int n = 0;
    while (*av && n < cap) {
        size_t len = strcspn(av, ",");
        if (len < 16 && !(len == 6 && strncmp(av, "scalar", 6) == 0)) {
            memcpy(names[n], av, len);
            names[n][len] = '\0';
            n++;
        }
        av += len;
        if (*av == ',')
            av++;
    }
    return n;
}

/* ---- GEMM ----------------------------------------------------------------------------- */

/* One problem: shapes, layout, epilogue, and its buffers. */
typedef struct gemm_case {
    int M, N, K;
    int layout; /* 0 row-major X,Y; 1 X transposed; 2 sym == 1 (conv); 3 strided, padded */
    int has_bias, act;
    float lo, hi;
    int64_t sxm, sxk, sym, syn, sn, sk;
    size_t xlen, ylen;
    float *X, *W, *bias;
} gemm_case_t;

static void s_case_init(gemm_case_t *c, int M, int N, int K, int layout, int has_bias, int act)
{
    memset(c, 0, sizeof *c);
    c->M = M, c->N = N, c->K = K, c->layout = layout, c->has_bias = has_bias, c->act = act;
    c->lo = -0.25f, c->hi = 0.5f;
    c->sn = K, c->sk = 1; /* W row-major [N][K] */
    switch (layout) {
    case 0: c->sxm = K, c->sxk = 1, c->sym = N, c->syn = 1; break;
    case 1: c->sxm = 1, c->sxk = M, c->sym = N, c->syn = 1; break;
    case 2: c->sxm = 1, c->sxk = M, c->sym = 1, c->syn = M; break;
    default: /* padded rows, Y column-major-ish with a gap, W transposed (MatMul's B) */
        c->sxm = 2 * K + 3, c->sxk = 2, c->sym = 2, c->syn = 2 * M + 1;
        c->sn = 1, c->sk = N;
        break;
    }
    c->xlen = (size_t)((M - 1) * c->sxm + (K - 1) * c->sxk + 1);
    c->ylen = (size_t)((M - 1) * c->sym + (N - 1) * c->syn + 1);
    c->X = s_randv(c->xlen);
    c->W = s_randv((size_t)N * K);
    c->bias = has_bias ? s_randv((size_t)N) : NULL;
}

static void s_case_free(gemm_case_t *c)
{
    bs_free(c->X);
    bs_free(c->W);
    bs_free(c->bias);
}

/* Runs bs_gemm with the current ISA; returns Y (ylen floats, bs_free). Y starts as NaN so
 * that an element the kernel forgets to write fails every comparison; its gaps stay NaN. */
static float *s_gemm_run(const gemm_case_t *c, bs_threadpool_t *pool)
{
    void *wp = s_aalloc(bs_gemm_packed_size(c->N, c->K));
    bs_gemm_pack(c->W, c->sn, c->sk, c->N, c->K, wp);
    int threads = bs_threadpool_size(pool);
    void *scratch = bs_malloc(bs_gemm_scratch_size(c->M, c->N, c->K, threads));
    ASSERT(scratch);
    float *Y = bs_malloc(c->ylen * sizeof *Y);
    ASSERT(Y);
    for (size_t i = 0; i < c->ylen; i++)
        Y[i] = NAN;
    bs_gemm(c->M, c->N, c->K, c->X, c->sxm, c->sxk, wp, c->bias, Y, c->sym, c->syn, c->act,
            c->lo, c->hi, scratch, pool);
    bs_free(scratch);
    s_afree(wp);
    return Y;
}

static float s_act(double v, const gemm_case_t *c)
{
    if (c->act == BS_KACT_RELU)
        return v < 0 ? 0.0f : (float)v;
    if (c->act == BS_KACT_CLIP)
        return v < c->lo ? c->lo : v > c->hi ? c->hi : (float)v;
    return (float)v;
}

static void s_check(const gemm_case_t *c, const float *ref, const float *got, const char *what)
{
    for (int m = 0; m < c->M; m++)
        for (int n = 0; n < c->N; n++) {
            int64_t at = m * c->sym + n * c->syn;
            if (!s_near(ref[at], got[at]))
                bs_test_fail(__FILE__, __LINE__,
                             "%s: M=%d N=%d K=%d layout=%d bias=%d act=%d: Y[%d,%d] expected "
                             "%.9g, got %.9g",
                             what, c->M, c->N, c->K, c->layout, c->has_bias, c->act, m, n,
                             (double)ref[at], (double)got[at]);
        }
}

static const int s_dims[] = {1, 2, 3, 5, 7, 8, 15, 16, 17, 31, 33, 64, 100, 257};
#define NDIMS ((int)(sizeof s_dims / sizeof s_dims[0]))

/* The scalar reference against a naive double-precision sum. */
BS_TEST(gemm_scalar_matches_naive)
{
    ASSERT_OK(bs_kernels_select("scalar"));
    int idx = 0;
    for (int a = 0; a < NDIMS; a++)
        for (int b = 0; b < NDIMS; b += 2)
            for (int d = 0; d < NDIMS; d += 3, idx++) {
                gemm_case_t c;
                s_case_init(&c, s_dims[a], s_dims[b], s_dims[d], idx % 4, idx % 5 < 3, idx % 3);
                float *got = s_gemm_run(&c, NULL);
                float *ref = bs_malloc(c.ylen * sizeof *ref);
                ASSERT(ref);
                for (int m = 0; m < c.M; m++)
                    for (int n = 0; n < c.N; n++) {
                        double s = 0;
                        for (int k = 0; k < c.K; k++)
                            s += (double)c.X[m * c.sxm + k * c.sxk] *
                                 c.W[n * c.sn + k * c.sk];
                        if (c.bias)
                            s += c.bias[n];
                        ref[m * c.sym + n * c.syn] = s_act(s, &c);
                    }
                s_check(&c, ref, got, "scalar vs naive");
                bs_free(ref);
                bs_free(got);
                s_case_free(&c);
            }
    printf("  largest difference: %.3f of the tolerance\n", s_worst);
}

/* Every SIMD table against the scalar one, every combination of the listed M, N, K. */
BS_TEST(gemm_isa_matches_scalar)
{
    char isas[4][16];
    int nisa = s_fast_isas(isas, 4);
    printf("  fast ISAs: %d (%s)\n", nisa, bs_kernels_available());
    for (int t = 0; t < nisa; t++) {
        int idx = 0;
        for (int a = 0; a < NDIMS; a++)
            for (int b = 0; b < NDIMS; b++)
                for (int d = 0; d < NDIMS; d++, idx++) {
                    gemm_case_t c;
                    int layout = idx % 4, act = (idx / 4) % 3, bias = (idx / 12) % 2;
                    s_case_init(&c, s_dims[a], s_dims[b], s_dims[d], layout, bias, act);
                    ASSERT_OK(bs_kernels_select("scalar"));
                    float *ref = s_gemm_run(&c, NULL);
                    ASSERT_OK(bs_kernels_select(isas[t]));
                    float *got = s_gemm_run(&c, NULL);
                    s_check(&c, ref, got, isas[t]);
                    bs_free(ref);
                    bs_free(got);
                    s_case_free(&c);
                }
    }
    printf("  largest difference: %.3f of the tolerance\n", s_worst);
}

/* Each layout x bias x activation on a few shapes with every kind of tail. */
BS_TEST(gemm_isa_all_epilogues)
{
    static const int shapes[][3] = {{17, 33, 31}, {100, 17, 257}, {5, 100, 300}, {64, 16, 8},
                                    {33, 7, 600}};
    char isas[4][16];
    int nisa = s_fast_isas(isas, 4);
    for (int t = 0; t < nisa; t++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (int layout = 0; layout < 4; layout++)
                for (int bias = 0; bias < 2; bias++)
                    for (int act = 0; act < 3; act++) {
                        gemm_case_t c;
                        s_case_init(&c, shapes[s][0], shapes[s][1], shapes[s][2], layout, bias,
                                    act);
                        ASSERT_OK(bs_kernels_select("scalar"));
                        float *ref = s_gemm_run(&c, NULL);
                        ASSERT_OK(bs_kernels_select(isas[t]));
                        float *got = s_gemm_run(&c, NULL);
                        s_check(&c, ref, got, isas[t]);
                        bs_free(ref);
                        bs_free(got);
                        s_case_free(&c);
                    }
}

/* 1, 2 and 3 threads give bitwise identical results, for every ISA. */
BS_TEST(gemm_threads_bitwise)
{
    static const int shapes[][3] = {{257, 100, 33}, {3136, 24, 40}, {64, 1000, 520}, {7, 5, 3},
                                    {49, 160, 960}, {1, 1000, 64}};
    bs_threadpool_t *pools[3] = {NULL, bs_threadpool_new(2), bs_threadpool_new(3)};
    ASSERT(pools[1] && pools[2]);
    char isas[5][16] = {"scalar"};
    int nisa = 1 + s_fast_isas(isas + 1, 4);
    for (int t = 0; t < nisa; t++) {
        ASSERT_OK(bs_kernels_select(isas[t]));
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (int layout = 0; layout < 4; layout++) {
                gemm_case_t c;
                s_case_init(&c, shapes[s][0], shapes[s][1], shapes[s][2], layout, 1,
                            layout % 3);
                float *y1 = s_gemm_run(&c, pools[0]);
                for (int p = 1; p < 3; p++) {
                    float *yp = s_gemm_run(&c, pools[p]);
                    for (int m = 0; m < c.M; m++)
                        for (int n = 0; n < c.N; n++) {
                            int64_t at = m * c.sym + n * c.syn;
                            if (memcmp(&y1[at], &yp[at], sizeof(float)) != 0)
                                bs_test_fail(__FILE__, __LINE__,
                                             "%s %dx%dx%d layout %d: %d threads differ at "
                                             "[%d,%d]: %.9g vs %.9g",
                                             isas[t], c.M, c.N, c.K, layout, p + 1, m, n,
                                             (double)y1[at], (double)yp[at]);
                        }
                    bs_free(yp);
                }
                bs_free(y1);
                s_case_free(&c);
            }
    }
    bs_threadpool_free(&pools[1]);
    bs_threadpool_free(&pools[2]);
}

/* Degenerate sizes: K = 0 gives act(bias); M or N = 0 writes nothing. */
BS_TEST(gemm_degenerate)
{
    float bias[3] = {-1.0f, 0.25f, 2.0f}, Y[6];
    char scratch[256];
    for (int i = 0; i < 6; i++)
        Y[i] = 7.0f;
    ASSERT_OK(bs_kernels_select("scalar"));
    bs_gemm(2, 3, 0, NULL, 0, 1, NULL, bias, Y, 3, 1, BS_KACT_RELU, 0, 0, scratch, NULL);
    ASSERT(Y[0] == 0.0f && Y[1] == 0.25f && Y[2] == 2.0f && Y[3] == 0.0f && Y[5] == 2.0f);
    bs_gemm(0, 3, 4, NULL, 0, 1, NULL, bias, Y, 3, 1, 0, 0, 0, scratch, NULL);
    bs_gemm(3, 0, 4, NULL, 0, 1, NULL, bias, Y, 3, 1, 0, 0, 0, scratch, NULL);
    ASSERT(Y[1] == 0.25f);
}

/* The packed tail panel is zero-padded and the size covers whole panels. */
BS_TEST(gemm_pack_zero_pads_tail)
{
    char isas[5][16] = {"scalar"};
    int nisa = 1 + s_fast_isas(isas + 1, 4);
    for (int t = 0; t < nisa; t++) {
        ASSERT_OK(bs_kernels_select(isas[t]));
        int N = 5, K = 3;
        float W[15];
        for (int i = 0; i < 15; i++)
            W[i] = (float)(i + 1);
        size_t sz = bs_gemm_packed_size(N, K);
        ASSERT(sz >= (size_t)N * K * sizeof(float));
        ASSERT_EQ(0, sz % (K * sizeof(float)));
        size_t nr = sz / (K * sizeof(float)); /* panel width times panels */
        float *wp = s_aalloc(sz);
        memset(wp, 0xff, sz);
        bs_gemm_pack(W, K, 1, N, K, wp);
        double sum = 0;
        int zeros = 0;
        for (size_t i = 0; i < nr * K; i++) {
            ASSERT(!isnan(wp[i]));
            sum += wp[i];
            zeros += wp[i] == 0.0f;
        }
        ASSERT_DBL_NEAR(120.0, sum, 0); /* 1 + ... + 15, each once */
        ASSERT_EQ((long long)(nr * K - 15), zeros);
        s_afree(wp);
    }
}

/* ---- im2col and depthwise ------------------------------------------------------------- */

typedef struct conv_geo {
    int C, H, W, KH, KW, sh, sw, dh, dw, pt, pl, pb, pr;
} conv_geo_t;

static const conv_geo_t s_geos[] = {
    {3, 7, 9, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},      /* 3x3 same padding, odd sizes */
    {2, 8, 8, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1},      /* stride 2 */
    {2, 11, 13, 3, 3, 2, 2, 1, 1, 0, 1, 1, 0},    /* stride 2, asymmetric pads */
    {2, 9, 10, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2},     /* dilation 2 */
    {3, 13, 11, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2},    /* 5x5 */
    {2, 15, 17, 5, 5, 2, 2, 1, 1, 2, 2, 1, 2},    /* 5x5 stride 2 */
    {4, 5, 7, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0},      /* 1x1 */
    {2, 6, 5, 1, 1, 2, 2, 1, 1, 0, 0, 0, 0},      /* 1x1 stride 2 */
    {2, 4, 3, 3, 3, 1, 1, 1, 1, 3, 3, 3, 3},      /* padding wider than the kernel reach */
    {1, 33, 40, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},    /* several vectors per row */
    {1, 30, 47, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2},    /* stride 2 and dilation 2 */
    {2, 9, 31, 3, 2, 3, 3, 1, 3, 1, 2, 0, 1},     /* stride 3, non-square */
    {1, 20, 64, 5, 5, 2, 1, 1, 2, 4, 4, 4, 4},    /* mixed strides */
    {3, 1, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},      /* 1x1 image */
    {2, 5, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},      /* rows shorter than a vector, odd count */
    {2, 13, 13, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1},    /* stride 2 to 7x7 */
};
#define NGEOS ((int)(sizeof s_geos / sizeof s_geos[0]))

static bs_conv2d_t s_geo(const conv_geo_t *q)
{
    bs_conv2d_t g = {
        .C = q->C, .H = q->H, .W = q->W, .KH = q->KH, .KW = q->KW, .sh = q->sh, .sw = q->sw,
        .dh = q->dh, .dw = q->dw, .pt = q->pt, .pl = q->pl,
    };
    g.OH = (q->H + q->pt + q->pb - (q->dh * (q->KH - 1) + 1)) / q->sh + 1;
    g.OW = (q->W + q->pl + q->pr - (q->dw * (q->KW - 1) + 1)) / q->sw + 1;
    return g;
}

BS_TEST(im2col_fast_identical)
{
    char isas[4][16];
    int nisa = s_fast_isas(isas, 4);
    for (int t = 0; t < nisa; t++)
        for (int i = 0; i < NGEOS; i++) {
            bs_conv2d_t g = s_geo(&s_geos[i]);
            ASSERT(g.OH > 0 && g.OW > 0);
            float *x = s_randv((size_t)g.C * g.H * g.W);
            size_t n = (size_t)g.C * g.KH * g.KW * g.OH * g.OW;
            float *ref = bs_malloc(n * sizeof *ref), *got = bs_malloc(n * sizeof *got);
            ASSERT(ref && got);
            memset(got, 0xff, n * sizeof *got);
            ASSERT_OK(bs_kernels_select("scalar"));
            bs_im2col(&g, x, ref);
            ASSERT_OK(bs_kernels_select(isas[t]));
            bs_im2col(&g, x, got);
            if (memcmp(ref, got, n * sizeof *ref) != 0)
                bs_test_fail(__FILE__, __LINE__, "%s im2col differs on geometry %d", isas[t],
                             i);
            bs_free(x);
            bs_free(ref);
            bs_free(got);
        }
}

/* The scalar im2col against the definition, on one hand-checked case. */
BS_TEST(im2col_reference_values)
{
    ASSERT_OK(bs_kernels_select("scalar"));
    /* 1 channel 2x3, kernel 2x2, pad 1, stride 2: OH = (2+2-2)/2+1 = 2, OW = (3+2-2)/2+1 = 2 */
    bs_conv2d_t g = {.C = 1, .H = 2, .W = 3, .KH = 2, .KW = 2, .OH = 2, .OW = 2, .sh = 2,
                     .sw = 2, .dh = 1, .dw = 1, .pt = 1, .pl = 1};
    float x[6] = {1, 2, 3, 4, 5, 6}, col[16];
    bs_im2col(&g, x, col);
    /* (kh,kw)=(0,0): ih=-1,1; iw=-1,1 -> 0 0 0 5 */
    const float expect[16] = {0, 0, 0, 5, 0, 0, 4, 6, 0, 2, 0, 0, 1, 3, 0, 0};
    for (int i = 0; i < 16; i++)
        ASSERT_DBL_NEAR(expect[i], col[i], 0);
}

static void s_dw_compare(const bs_conv2d_t *g, const char *isa, int has_bias, int act,
                         bs_threadpool_t *pool, int bitwise_with_scalar_pool)
{
    float *x = s_randv((size_t)g->C * g->H * g->W);
    float *w = s_randv((size_t)g->C * g->KH * g->KW);
    float *bias = has_bias ? s_randv((size_t)g->C) : NULL;
    size_t n = (size_t)g->C * g->OH * g->OW;
    float *ref = bs_malloc(n * sizeof *ref), *got = bs_malloc(n * sizeof *got);
    ASSERT(ref && got);
    for (size_t i = 0; i < n; i++)
        got[i] = NAN;
    float lo = -0.3f, hi = 0.4f;
    ASSERT_OK(bs_kernels_select(bitwise_with_scalar_pool ? isa : "scalar"));
    bs_conv2d_depthwise(g, x, w, bias, ref, act, lo, hi, NULL);
    ASSERT_OK(bs_kernels_select(isa));
    bs_conv2d_depthwise(g, x, w, bias, got, act, lo, hi, pool);
    for (size_t i = 0; i < n; i++) {
        int ok = bitwise_with_scalar_pool ? memcmp(&ref[i], &got[i], sizeof(float)) == 0
                                          : s_near(ref[i], got[i]);
        if (!ok)
            bs_test_fail(__FILE__, __LINE__,
                         "%s depthwise C=%d %dx%d k%dx%d s%d,%d d%d,%d p%d,%d bias=%d act=%d: "
                         "y[%zu] expected %.9g, got %.9g",
                         isa, g->C, g->H, g->W, g->KH, g->KW, g->sh, g->sw, g->dh, g->dw, g->pt,
                         g->pl, has_bias, act, i, (double)ref[i], (double)got[i]);
    }
    bs_free(x);
    bs_free(w);
    bs_free(bias);
    bs_free(ref);
    bs_free(got);
}

BS_TEST(depthwise_scalar_values)
{
    ASSERT_OK(bs_kernels_select("scalar"));
    /* one 3x3 channel, 3x3 all-ones filter, pad 1: each output sums its neighbourhood */
    bs_conv2d_t g = {.C = 1, .H = 3, .W = 3, .KH = 3, .KW = 3, .OH = 3, .OW = 3, .sh = 1,
                     .sw = 1, .dh = 1, .dw = 1, .pt = 1, .pl = 1};
    float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, w[9], y[9], b = 0.5f;
    for (int i = 0; i < 9; i++)
        w[i] = 1.0f;
    bs_conv2d_depthwise(&g, x, w, &b, y, 0, 0, 0, NULL);
    const float expect[9] = {12, 21, 16, 27, 45, 33, 24, 39, 28};
    for (int i = 0; i < 9; i++)
        ASSERT_DBL_NEAR(expect[i] + 0.5, y[i], 0);
    bs_conv2d_depthwise(&g, x, w, NULL, y, BS_KACT_CLIP, 0.0f, 20.0f, NULL);
    ASSERT_DBL_NEAR(12.0, y[0], 0);
    ASSERT_DBL_NEAR(20.0, y[4], 0);
}

BS_TEST(depthwise_isa_matches_scalar)
{
    char isas[4][16];
    int nisa = s_fast_isas(isas, 4);
    for (int t = 0; t < nisa; t++)
        for (int i = 0; i < NGEOS; i++) {
            bs_conv2d_t g = s_geo(&s_geos[i]);
            for (int bias = 0; bias < 2; bias++)
                for (int act = 0; act < 3; act++)
                    s_dw_compare(&g, isas[t], bias, act, NULL, 0);
        }
    /* MobileNet-like planes: 3x3 stride 1 and 2 over wide rows */
    bs_conv2d_t big[] = {
        {.C = 3, .H = 56, .W = 56, .KH = 3, .KW = 3, .OH = 56, .OW = 56, .sh = 1, .sw = 1,
         .dh = 1, .dw = 1, .pt = 1, .pl = 1},
        {.C = 3, .H = 57, .W = 57, .KH = 3, .KW = 3, .OH = 28, .OW = 28, .sh = 2, .sw = 2,
         .dh = 1, .dw = 1, .pt = 0, .pl = 0},
        {.C = 2, .H = 112, .W = 112, .KH = 3, .KW = 3, .OH = 56, .OW = 56, .sh = 2, .sw = 2,
         .dh = 1, .dw = 1, .pt = 0, .pl = 0},
        /* tall planes the fast paths process in several bands of rows */
        {.C = 1, .H = 300, .W = 100, .KH = 3, .KW = 3, .OH = 300, .OW = 100, .sh = 1, .sw = 1,
         .dh = 1, .dw = 1, .pt = 1, .pl = 1},
        {.C = 1, .H = 301, .W = 90, .KH = 3, .KW = 3, .OH = 151, .OW = 45, .sh = 2, .sw = 2,
         .dh = 1, .dw = 1, .pt = 1, .pl = 1},
        {.C = 1, .H = 200, .W = 150, .KH = 5, .KW = 5, .OH = 96, .OW = 73, .sh = 2, .sw = 2,
         .dh = 2, .dw = 2, .pt = 0, .pl = 0}, /* OW 73: 4 columns of right padding */
        /* rows too wide for any band */
        {.C = 1, .H = 4, .W = 6000, .KH = 3, .KW = 3, .OH = 4, .OW = 6000, .sh = 1, .sw = 1,
         .dh = 1, .dw = 1, .pt = 1, .pl = 1},
    };
    for (int t = 0; t < nisa; t++)
        for (size_t i = 0; i < sizeof big / sizeof big[0]; i++)
            s_dw_compare(&big[i], isas[t], 1, BS_KACT_CLIP, NULL, 0);
    printf("  largest difference: %.3f of the tolerance\n", s_worst);
}

BS_TEST(depthwise_threads_bitwise)
{
    bs_threadpool_t *p2 = bs_threadpool_new(2), *p3 = bs_threadpool_new(3);
    ASSERT(p2 && p3);
    char isas[5][16] = {"scalar"};
    int nisa = 1 + s_fast_isas(isas + 1, 4);
    for (int t = 0; t < nisa; t++)
        for (int i = 0; i < NGEOS; i++) {
            bs_conv2d_t g = s_geo(&s_geos[i]);
            s_dw_compare(&g, isas[t], 1, BS_KACT_RELU, p2, 1);
            s_dw_compare(&g, isas[t], 1, BS_KACT_RELU, p3, 1);
        }
    bs_threadpool_free(&p2);
    bs_threadpool_free(&p3);
}

/* Geometries of the channel-interleaved depthwise path (small planes, 8 or more channels,
 * whole and partial blocks of 16) and of the phase-split flat path (stride 2 on either axis,
 * rows of up to 32 outputs): each ISA against the scalar reference, and bitwise across
 * 1, 2 and 3 threads. */
static const conv_geo_t s_dw_block_geos[] = {
    {16, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},    /* 3x3 planes, one whole block */
    {37, 6, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},    /* partial last block */
    {8, 6, 6, 3, 3, 2, 2, 1, 1, 0, 0, 1, 1},     /* stride 2, pad after only */
    {24, 12, 12, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1},  /* stride 2 to 6x6 */
    {20, 24, 24, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1},  /* 24x24 stride 2 to 12x12 */
    {18, 12, 12, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},  /* 12x12 stride 1 */
    {17, 7, 9, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2},    /* dilation 2 */
    {33, 9, 8, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2},    /* 5x5 */
    {19, 11, 10, 5, 5, 2, 2, 1, 1, 2, 2, 1, 2},  /* 5x5 stride 2, asymmetric pads */
    {9, 5, 7, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0},     /* 1x1 */
    {40, 4, 3, 3, 3, 1, 1, 1, 1, 3, 3, 3, 3},    /* padding wider than the kernel reach */
    {12, 9, 31, 3, 2, 3, 3, 1, 3, 1, 2, 0, 1},   /* stride 3, non-square */
    {3, 48, 48, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1},   /* phase-split flat: 48 -> 24 */
    {2, 31, 40, 3, 3, 2, 1, 1, 1, 1, 1, 1, 1},   /* row stride 2 only */
    {2, 29, 50, 3, 3, 1, 2, 1, 1, 0, 1, 1, 0},   /* column stride 2 only */
    {2, 40, 44, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2},   /* stride 2, dilation 2 */
    {2, 35, 37, 5, 5, 2, 2, 1, 1, 2, 2, 2, 2},   /* 5x5 stride 2, odd sizes */
};
#define NDWBLOCK ((int)(sizeof s_dw_block_geos / sizeof s_dw_block_geos[0]))

BS_TEST(depthwise_blocks_match_scalar)
{
    char isas[4][16];
    int nisa = s_fast_isas(isas, 4);
    for (int t = 0; t < nisa; t++)
        for (int i = 0; i < NDWBLOCK; i++) {
            bs_conv2d_t g = s_geo(&s_dw_block_geos[i]);
            ASSERT(g.OH > 0 && g.OW > 0);
            for (int bias = 0; bias < 2; bias++)
                for (int act = 0; act < 3; act++)
                    s_dw_compare(&g, isas[t], bias, act, NULL, 0);
        }
}

BS_TEST(depthwise_blocks_threads_bitwise)
{
    bs_threadpool_t *p2 = bs_threadpool_new(2), *p3 = bs_threadpool_new(3);
    ASSERT(p2 && p3);
    char isas[5][16] = {"scalar"};
    int nisa = 1 + s_fast_isas(isas + 1, 4);
    for (int t = 0; t < nisa; t++)
        for (int i = 0; i < NDWBLOCK; i++) {
            bs_conv2d_t g = s_geo(&s_dw_block_geos[i]);
            s_dw_compare(&g, isas[t], 1, BS_KACT_CLIP, p2, 1);
            s_dw_compare(&g, isas[t], 1, BS_KACT_CLIP, p3, 1);
            s_dw_compare(&g, isas[t], 0, BS_KACT_NONE, p3, 1);
        }
    bs_threadpool_free(&p2);
    bs_threadpool_free(&p3);
}

/* ---- direct convolution ----------------------------------------------------------------- */

/* Direct convolution of g (C input channels) to N channels under isa, against a naive
 * float sum in the same order (c, kh, kw, then bias, then act); with a pool, also bitwise
 * against the same ISA without one. Skipped where the ISA has no direct kernel. */
static void s_direct_compare(const bs_conv2d_t *g, int N, const char *isa, int has_bias, int act,
                             bs_threadpool_t *pool)
{
    ASSERT_OK(bs_kernels_select(isa));
    size_t sb = bs_conv2d_direct_scratch(g, N);
    if (sb == 0)
        return;
    int K = g->C * g->KH * g->KW;
    float *x = s_randv((size_t)g->C * g->H * g->W), *w = s_randv((size_t)N * K);
    float *bias = has_bias ? s_randv((size_t)N) : NULL;
    size_t n = (size_t)N * g->OH * g->OW;
    float *ref = bs_malloc(n * sizeof *ref), *got = bs_malloc(n * sizeof *got);
    float *one = bs_malloc(n * sizeof *one);
    void *wp = s_aalloc(bs_gemm_packed_size(N, K));
    void *scratch = bs_malloc(sb);
    ASSERT(ref && got && one && wp && scratch);
    memset(scratch, 0xff, sb); /* NaN everywhere the kernel would read without writing */
    float lo = -0.3f, hi = 0.4f;
    for (int m = 0; m < N; m++)
        for (int oh = 0; oh < g->OH; oh++)
            for (int ow = 0; ow < g->OW; ow++) {
                float acc = 0.0f;
                for (int c = 0; c < g->C; c++)
                    for (int kh = 0; kh < g->KH; kh++)
                        for (int kw = 0; kw < g->KW; kw++) {
                            int ih = oh * g->sh + kh * g->dh - g->pt;
                            int iw = ow * g->sw + kw * g->dw - g->pl;
                            if (ih < 0 || ih >= g->H || iw < 0 || iw >= g->W)
                                continue;
                            acc += x[((size_t)c * g->H + ih) * g->W + iw] *
                                   w[((size_t)m * g->C + c) * g->KH * g->KW + kh * g->KW + kw];
                        }
                if (bias)
                    acc += bias[m];
                if (act == BS_KACT_RELU)
                    acc = acc < 0.0f ? 0.0f : acc;
                else if (act == BS_KACT_CLIP)
                    acc = acc < lo ? lo : (acc > hi ? hi : acc);
                ref[((size_t)m * g->OH + oh) * g->OW + ow] = acc;
            }
    bs_gemm_pack(w, K, 1, N, K, wp);
    for (size_t i = 0; i < n; i++)
        got[i] = one[i] = NAN;
    bs_conv2d_direct(g, N, x, wp, bias, one, act, lo, hi, scratch, NULL);
    bs_conv2d_direct(g, N, x, wp, bias, got, act, lo, hi, scratch, pool);
    for (size_t i = 0; i < n; i++) {
        if (!s_near(ref[i], got[i]) || memcmp(&one[i], &got[i], sizeof(float)) != 0)
            bs_test_fail(__FILE__, __LINE__,
                         "%s direct conv C=%d %dx%d N=%d k%dx%d s%d,%d d%d,%d p%d,%d bias=%d "
                         "act=%d: y[%zu] expected %.9g, got %.9g (one thread: %.9g)",
                         isa, g->C, g->H, g->W, N, g->KH, g->KW, g->sh, g->sw, g->dh, g->dw,
                         g->pt, g->pl, has_bias, act, i, (double)ref[i], (double)got[i],
                         (double)one[i]);
    }
    bs_free(x);
    bs_free(w);
    bs_free(bias);
    bs_free(ref);
    bs_free(got);
    bs_free(one);
    s_afree(wp);
    bs_free(scratch);
}

BS_TEST(direct_conv_matches_naive)
{
    char isas[5][16] = {"scalar"};
    int nisa = 1 + s_fast_isas(isas + 1, 4);
    static const int ns[] = {1, 3, 8, 13, 32, 33, 70};
    for (int t = 0; t < nisa; t++)
        for (int i = 0; i < NGEOS; i++) {
            bs_conv2d_t g = s_geo(&s_geos[i]);
            for (size_t m = 0; m < sizeof ns / sizeof ns[0]; m++)
                s_direct_compare(&g, ns[m], isas[t], (int)(m & 1), (int)(m % 3), NULL);
        }
    /* the two CNNs' shapes: 3x3 same over 28x28 and 14x14, a stride-2 stem, and a 5x5 with
     * a row wider than three vectors */
    bs_conv2d_t big[] = {
        {.C = 1, .H = 28, .W = 28, .KH = 3, .KW = 3, .OH = 28, .OW = 28, .sh = 1, .sw = 1,
         .dh = 1, .dw = 1, .pt = 1, .pl = 1},
        {.C = 16, .H = 14, .W = 14, .KH = 3, .KW = 3, .OH = 14, .OW = 14, .sh = 1, .sw = 1,
         .dh = 1, .dw = 1, .pt = 1, .pl = 1},
        {.C = 3, .H = 96, .W = 96, .KH = 3, .KW = 3, .OH = 48, .OW = 48, .sh = 2, .sw = 2,
         .dh = 1, .dw = 1, .pt = 0, .pl = 0},
        {.C = 3, .H = 97, .W = 95, .KH = 3, .KW = 3, .OH = 49, .OW = 48, .sh = 2, .sw = 2,
         .dh = 1, .dw = 1, .pt = 1, .pl = 1},
        {.C = 2, .H = 20, .W = 60, .KH = 5, .KW = 5, .OH = 20, .OW = 60, .sh = 1, .sw = 1,
         .dh = 1, .dw = 1, .pt = 2, .pl = 2},
    };
    for (int t = 0; t < nisa; t++)
        for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
            s_direct_compare(&big[i], 16, isas[t], 1, BS_KACT_CLIP, NULL);
            s_direct_compare(&big[i], 32, isas[t], 0, BS_KACT_RELU, NULL);
        }
    printf("  largest difference: %.3f of the tolerance\n", s_worst);
}

BS_TEST(direct_conv_threads_bitwise)
{
    bs_threadpool_t *p2 = bs_threadpool_new(2), *p3 = bs_threadpool_new(3);
    ASSERT(p2 && p3);
    char isas[5][16] = {"scalar"};
    int nisa = 1 + s_fast_isas(isas + 1, 4);
    bs_conv2d_t g = {.C = 20, .H = 30, .W = 31, .KH = 3, .KW = 3, .OH = 30, .OW = 31, .sh = 1,
                     .sw = 1, .dh = 1, .dw = 1, .pt = 1, .pl = 1};
    for (int t = 0; t < nisa; t++) {
        s_direct_compare(&g, 40, isas[t], 1, BS_KACT_RELU, p2);
        s_direct_compare(&g, 40, isas[t], 1, BS_KACT_RELU, p3);
        for (int i = 0; i < NGEOS; i++) {
            bs_conv2d_t q = s_geo(&s_geos[i]);
            s_direct_compare(&q, 9, isas[t], 1, BS_KACT_NONE, p3);
        }
    }
    bs_threadpool_free(&p2);
    bs_threadpool_free(&p3);
}

/* ---- dispatch and thread pool --------------------------------------------------------- */

BS_TEST(isa_dispatch)
{
    const char *av = bs_kernels_available();
    ASSERT_CONTAINS(av, "scalar");
    const char *chosen = bs_kernels_isa();
    ASSERT_CONTAINS(av, chosen);
    ASSERT_EQ(BS_EUNSUPPORTED, bs_kernels_select("sse9"));
    ASSERT_EQ(BS_EINVAL, bs_kernels_select(NULL));
    ASSERT_OK(bs_kernels_select("scalar"));
    ASSERT_STR_EQ("scalar", bs_kernels_isa());
#if defined(__aarch64__)
    ASSERT_CONTAINS(av, "neon");
#endif
    char isas[4][16];
    int n = s_fast_isas(isas, 4);
    for (int i = 0; i < n; i++) {
        ASSERT_OK(bs_kernels_select(isas[i]));
        ASSERT_STR_EQ(isas[i], bs_kernels_isa());
    }
}

typedef struct pool_ctx {
    atomic_int hits[1000];
    atomic_int calls;
} pool_ctx_t;

static void s_count(void *ctx, int i)
{
    pool_ctx_t *c = ctx;
    atomic_fetch_add(&c->hits[i], 1);
    atomic_fetch_add(&c->calls, 1);
}

BS_TEST(threadpool_runs_each_item_once)
{
    ASSERT(bs_threadpool_new(0) == NULL);
    ASSERT_EQ(1, bs_threadpool_size(NULL));
    bs_threadpool_free(NULL);
    static pool_ctx_t ctx;
    static const int sizes[] = {0, 1, 2, 3, 7, 1000};
    for (int threads = 1; threads <= 4; threads++) {
        bs_threadpool_t *p = bs_threadpool_new(threads);
        ASSERT(p);
        ASSERT_EQ(threads, bs_threadpool_size(p));
        for (int rep = 0; rep < 50; rep++)
            for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
                int n = sizes[s];
                for (int i = 0; i < 1000; i++)
                    atomic_store(&ctx.hits[i], 0);
                atomic_store(&ctx.calls, 0);
                bs_threadpool_run(p, n, s_count, &ctx);
                ASSERT_EQ(n, atomic_load(&ctx.calls));
                for (int i = 0; i < n; i++)
                    ASSERT_EQ(1, atomic_load(&ctx.hits[i]));
            }
        bs_threadpool_free(&p);
        ASSERT(p == NULL);
    }
    /* NULL pool runs inline */
    atomic_store(&ctx.calls, 0);
    bs_threadpool_run(NULL, 5, s_count, &ctx);
    ASSERT_EQ(5, atomic_load(&ctx.calls));
}

/* Allocation failure while building a pool: NULL and no leak. */
BS_TEST(threadpool_alloc_failure)
{
    for (long n = 0; n < 2; n++) {
        bs_alloc_fail_after(n);
        bs_threadpool_t *p = bs_threadpool_new(3);
        bs_alloc_fail_after(-1);
        ASSERT(p == NULL);
    }
}

/* Weight-only GEMV (bs_gemm_wq with one row): the codes unpacked in the kernel (2..8 bits,
 * fp16), then the dot product in the 16-lane order bs_kernels.c specifies: every fast ISA
 * bit for bit with the portable one, and the portable one within float rounding of a double
 * sum over the dequantized weights. */
BS_TEST(gemv_wq_isa_matches_scalar)
{
    char names[8][16];
    int nisa = s_fast_isas(names, 8);
    for (int it = 0; it < 40; it++) {
        int N = 1 + it % 23, K = 1 + (it * 37) % 700;
        int bits = it % 8 == 7 ? 16 : 2 + it % 7;
        float *W = s_randv((size_t)N * K), *x = s_randv((size_t)K), *bias = s_randv((size_t)N);
        bs_qweight_t q = {0};
        uint16_t *h = NULL;
        bs_err_t err;
        if (bits == 16)
            ASSERT_OK(bs_f16_weights(W, K, 1, N, K, &h, &err));
        else
            ASSERT_OK(bs_quantize_weights(W, K, 1, N, K, bits, BS_QSCALE_MINMAX, &q, &err));
        bs_gemm_wsrc_t ws = {.q = bits <= 8 ? &q : NULL, .f16 = h};
        size_t sb = bs_gemm_wq_scratch_size(1, N, K, 1);
        void *scr = bs_malloc(sb);
        float *y0 = bs_malloc(sizeof(float) * (size_t)N), *y1 = bs_malloc(sizeof(float) * N);
        float *row = bs_malloc(sizeof(float) * (size_t)K);
        ASSERT_OK(bs_kernels_select("scalar"));
        bs_gemm_wq(1, N, K, x, K, 1, &ws, bias, y0, N, 1, BS_KACT_NONE, 0, 0, scr, NULL);
        for (int n = 0; n < N; n++) {
            if (h)
                bs_f16_dequant(h + (size_t)n * K, (size_t)K, row);
            else
                bs_qweight_dequant_row(&q, n, 0, K, row);
            double ref = bias[n], mag = fabs(bias[n]) + 1.0;
            for (int k = 0; k < K; k++) {
                ref += (double)x[k] * row[k];
                mag += fabs((double)x[k] * row[k]);
            }
            ASSERT(fabs(y0[n] - ref) <= 1e-5 * mag);
        }
        for (int i = 0; i < nisa; i++) {
            ASSERT_OK(bs_kernels_select(names[i]));
            bs_gemm_wq(1, N, K, x, K, 1, &ws, bias, y1, N, 1, BS_KACT_NONE, 0, 0, scr, NULL);
            if (memcmp(y0, y1, sizeof(float) * (size_t)N) != 0)
                bs_test_fail(__FILE__, __LINE__, "%s: GEMV N=%d K=%d bits=%d differs", names[i],
                             N, K, bits);
        }
        bs_free(W);
        bs_free(x);
        bs_free(bias);
        bs_qweight_free(&q);
        bs_free(h);
        bs_free(scr);
        bs_free(y0);
        bs_free(y1);
        bs_free(row);
    }
    ASSERT_OK(bs_kernels_select(nisa ? names[nisa - 1] : "scalar"));
}

#define TESTS(X)                                                                                 \
    X(isa_dispatch)                                                                              \
    X(threadpool_runs_each_item_once)                                                            \
    X(threadpool_alloc_failure)                                                                  \
    X(gemm_scalar_matches_naive)                                                                 \
    X(gemm_isa_matches_scalar)                                                                   \
    X(gemm_isa_all_epilogues)                                                                    \
    X(gemm_threads_bitwise)                                                                      \
    X(gemm_degenerate)                                                                           \
    X(gemm_pack_zero_pads_tail)                                                                  \
    X(im2col_reference_values)                                                                   \
    X(im2col_fast_identical)                                                                     \
    X(depthwise_scalar_values)                                                                   \
    X(depthwise_isa_matches_scalar)                                                              \
    X(depthwise_threads_bitwise)                                                                 \
    X(depthwise_blocks_match_scalar)                                                             \
    X(depthwise_blocks_threads_bitwise)                                                          \
    X(direct_conv_matches_naive)                                                                 \
    X(direct_conv_threads_bitwise)                                                               \
    X(gemv_wq_isa_matches_scalar)

BS_TEST_MAIN(TESTS)

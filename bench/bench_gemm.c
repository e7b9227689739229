/*
 * bench_gemm.c - GFLOP/s of the engine's GEMM kernels, per instruction set, one thread.
 *
 * A program that prints figures, not a test. For every ISA this build and CPU can run
 * (bs_kernels_available), it times bs_gemm on the shapes that dominate a MobileNet-v2-style
 * CNN and an MLP head:
 *   - 1x1 convolutions, NCHW: X = the input planes read transposed (M = H*W pixels, K = input
 *     channels), Y = the output planes (sym = 1);
 *   - 3x3 convolutions through im2col (timed with and without the im2col);
 *   - the 3x3 depthwise convolutions of the same network (bs_conv2d_depthwise);
 *   - a Gemm 64 x 1000 x 1280 with row-major X and Y (a classifier over a batch of 64).
 * Each figure is the median of several samples; a sample repeats the call for at least
 * 40 ms. Usage: bench_gemm [--quick] [--isa NAME]   (--quick: fewer, shorter samples;
 * --isa: that instruction set only)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bs_alloc.h"
#include "bs_kernels.h"

static int s_samples = 7;
static double s_sample_s = 0.04;

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int s_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct job {
    int kind; /* 0 gemm, 1 im2col + gemm, 2 depthwise */
    int M, N, K;
    const float *X;
    int64_t sxm, sxk;
    const void *Wp;
    const float *bias, *img, *dww;
    float *Y, *col;
    int64_t sym, syn;
    int act;
    void *scratch;
    bs_conv2d_t g;
} job_t;

static void s_once(const job_t *j)
{
    if (j->kind == 2) {
        bs_conv2d_depthwise(&j->g, j->img, j->dww, j->bias, j->Y, j->act, 0.0f, 6.0f, NULL);
        return;
    }
    if (j->kind == 1)
        bs_im2col(&j->g, j->img, j->col);
    bs_gemm(j->M, j->N, j->K, j->X, j->sxm, j->sxk, j->Wp, j->bias, j->Y, j->sym, j->syn,
            j->act, 0.0f, 6.0f, j->scratch, NULL);
}

static double s_best; /* fastest sample of the last s_time, seconds per call */

/* Median seconds per call. */
static double s_time(const job_t *j)
{
    double t[16];
    s_once(j); /* warm caches and pages */
    for (int s = 0; s < s_samples; s++) {
        int reps = 0;
        double t0 = s_now(), el;
        do {
            s_once(j);
            reps++;
            el = s_now() - t0;
        } while (el < s_sample_s);
        t[s] = el / reps;
    }
    qsort(t, (size_t)s_samples, sizeof t[0], s_cmp);
    s_best = t[0];
    return t[s_samples / 2];
}

/* One line: median GFLOP/s (the figure), best sample's, median time. */
static void s_report(const char *name, const char *dims, double flops, double t)
{
    printf("  %-34s %-22s %7.2f GFLOP/s (best %6.2f) %9.1f us", name, dims, flops / t * 1e-9,
           flops / s_best * 1e-9, t * 1e6);
}

static float *s_rand(size_t n)
{
    float *v = bs_malloc(n * sizeof *v);
    if (!v) {
        fprintf(stderr, "bench_gemm: out of memory\n");
        exit(1);
    }
    uint32_t s = 12345u;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        v[i] = (float)(s >> 8) / 16777216.0f - 0.5f;
    }
    return v;
}

static void *s_aligned(size_t n)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, n ? n : 64) != 0) {
        fprintf(stderr, "bench_gemm: out of memory\n");
        exit(1);
    }
    return p;
}

/* A convolution as GEMM: im2col unless it is 1x1 stride 1, then Y = W * col. */
static void s_conv(const char *name, int C, int H, int Wd, int OC, int k, int stride)
{
    int pad = k / 2;
    bs_conv2d_t g = {.C = C, .H = H, .W = Wd, .KH = k, .KW = k, .sh = stride, .sw = stride,
                     .dh = 1, .dw = 1, .pt = pad, .pl = pad};
    g.OH = (H + 2 * pad - k) / stride + 1;
    g.OW = (Wd + 2 * pad - k) / stride + 1;
    int M = g.OH * g.OW, N = OC, K = C * k * k;
    int direct = k == 1 && stride == 1;
    float *img = s_rand((size_t)C * H * Wd), *w = s_rand((size_t)N * K), *bias = s_rand(N);
    float *col = direct ? NULL : s_rand((size_t)K * M);
    float *Y = s_rand((size_t)N * M);
    void *wp = s_aligned(bs_gemm_packed_size(N, K));
    bs_gemm_pack(w, K, 1, N, K, wp);
    void *scratch = s_aligned(bs_gemm_scratch_size(M, N, K, 1));
    job_t j = {.kind = 0, .M = M, .N = N, .K = K, .X = direct ? img : col, .sxm = 1, .sxk = M,
               .Wp = wp, .bias = bias, .img = img, .Y = Y, .col = col, .sym = 1, .syn = M,
               .act = 2, .scratch = scratch, .g = g};
    if (!direct)
        bs_im2col(&g, img, col);
    char dims[64];
    snprintf(dims, sizeof dims, "M=%d N=%d K=%d", M, N, K);
    double t = s_time(&j), flops = 2.0 * M * N * K;
    s_report(name, dims, flops, t);
    if (!direct) {
        j.kind = 1;
        double t2 = s_time(&j);
        printf("  with im2col %6.2f GFLOP/s", flops / t2 * 1e-9);
    }
    printf("\n");
    free(wp);
    free(scratch);
    bs_free(img);
    bs_free(w);
    bs_free(bias);
    bs_free(col);
    bs_free(Y);
}

static void s_depthwise(const char *name, int C, int H, int stride)
{
    bs_conv2d_t g = {.C = C, .H = H, .W = H, .KH = 3, .KW = 3, .sh = stride, .sw = stride,
                     .dh = 1, .dw = 1, .pt = 1, .pl = 1};
    g.OH = (H + 2 - 3) / stride + 1;
    g.OW = g.OH;
    float *img = s_rand((size_t)C * H * H), *w = s_rand((size_t)C * 9), *bias = s_rand(C);
    float *Y = s_rand((size_t)C * g.OH * g.OW);
    job_t j = {.kind = 2, .img = img, .dww = w, .bias = bias, .Y = Y, .act = 2, .g = g};
    char dims[64];
    snprintf(dims, sizeof dims, "C=%d %dx%d s%d", C, H, H, stride);
    double t = s_time(&j), flops = 2.0 * C * g.OH * g.OW * 9;
    s_report(name, dims, flops, t);
    printf("\n");
    bs_free(img);
    bs_free(w);
    bs_free(bias);
    bs_free(Y);
}

static void s_fc(int M, int N, int K)
{
    float *X = s_rand((size_t)M * K), *w = s_rand((size_t)N * K), *bias = s_rand(N);
    float *Y = s_rand((size_t)M * N);
    void *wp = s_aligned(bs_gemm_packed_size(N, K));
    bs_gemm_pack(w, K, 1, N, K, wp);
    void *scratch = s_aligned(bs_gemm_scratch_size(M, N, K, 1));
    job_t j = {.M = M, .N = N, .K = K, .X = X, .sxm = K, .sxk = 1, .Wp = wp, .bias = bias,
               .Y = Y, .sym = N, .syn = 1, .scratch = scratch};
    char dims[64];
    snprintf(dims, sizeof dims, "M=%d N=%d K=%d", M, N, K);
    double t = s_time(&j), flops = 2.0 * M * N * K;
    s_report("Gemm (row-major X, Y)", dims, flops, t);
    printf("\n");
    free(wp);
    free(scratch);
    bs_free(X);
    bs_free(w);
    bs_free(bias);
    bs_free(Y);
}

int main(int argc, char **argv)
{
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            s_samples = 3;
            s_sample_s = 0.01;
        } else if (strcmp(argv[i], "--isa") == 0 && i + 1 < argc) {
            only = argv[++i];
        } else {
            fprintf(stderr, "usage: bench_gemm [--quick] [--isa scalar|avx2|avx512|neon]\n");
            return 2;
        }
    }
    bs_alloc_init();
    char isas[64];
    snprintf(isas, sizeof isas, "%s", only ? only : bs_kernels_available());
    printf("bench_gemm: ISAs available: %s; one thread, median of %d samples\n", isas,
           s_samples);
    for (char *save = NULL, *isa = strtok_r(isas, ",", &save); isa;
         isa = strtok_r(NULL, ",", &save)) {
        if (bs_kernels_select(isa) != 0) {
            printf("[%s] not available on this build and CPU\n", isa);
            continue;
        }
        printf("[%s]\n", isa);
        s_conv("1x1 conv 56x56 24->144 (expand)", 24, 56, 56, 144, 1, 1);
        s_conv("1x1 conv 56x56 144->24 (project)", 144, 56, 56, 24, 1, 1);
        s_conv("1x1 conv 112x112 32->16", 32, 112, 112, 16, 1, 1);
        s_conv("1x1 conv 112x112 16->96", 16, 112, 112, 96, 1, 1);
        s_conv("1x1 conv 28x28 32->192", 32, 28, 28, 192, 1, 1);
        s_conv("1x1 conv 28x28 192->32", 192, 28, 28, 32, 1, 1);
        s_conv("1x1 conv 14x14 64->384", 64, 14, 14, 384, 1, 1);
        s_conv("1x1 conv 14x14 384->96", 384, 14, 14, 96, 1, 1);
        s_conv("1x1 conv 7x7 160->960", 160, 7, 7, 960, 1, 1);
        s_conv("1x1 conv 7x7 320->1280", 320, 7, 7, 1280, 1, 1);
        s_conv("3x3 conv s2 224x224 3->32 (stem)", 3, 224, 224, 32, 3, 2);
        s_conv("3x3 conv 56x56 64->64", 64, 56, 56, 64, 3, 1);
        s_conv("3x3 conv 28x28 32->32", 32, 28, 28, 32, 3, 1);
        s_depthwise("3x3 depthwise 112x112", 32, 112, 1);
        s_depthwise("3x3 depthwise 56x56", 144, 56, 1);
        s_depthwise("3x3 depthwise s2 112x112", 96, 112, 2);
        s_depthwise("3x3 depthwise 14x14", 384, 14, 1);
        s_fc(64, 1000, 1280);
        s_fc(1, 1000, 1280);
    }
    return 0;
}

/*
 * bs_kernels.c - ISA dispatch, the GEMM / im2col / depthwise drivers, and the portable C
 * reference ("scalar") of every kernel.
 *
 * Dispatch: on first use (pthread_once) the best table the build and CPU allow is chosen:
 * on x86-64 AVX-512 (F, VL, BW) when __builtin_cpu_supports says so, else AVX2+FMA; NEON
 * always on arm64; else the scalar table. bs_kernels_select() forces one (tests and benchmarks).
 *
 * GEMM driver (layouts in bs_kernels_impl.h): Y = act(X W^T + bias).
 *   - K is cut in blocks of kc (a function of K alone, about 256), M in blocks of mc rows,
 *     N in chunks of whole panels. A work item is one (M block, N chunk) pair; it loops over
 *     the K blocks, packs its X block into the thread's scratch slot, and runs the
 *     micro-kernel over every (panel, micro-panel) pair, accumulating into Y after the first
 *     K block and applying bias and activation on the last.
 *   - Row-major Y (syn == 1), and any strides other than sym == 1, use the row kernel (tile
 *     mr x nr, vectorised along n); sym == 1 (NCHW conv planes, Y[n*P + m]) uses the column
 *     kernel (tile mt x nt, vectorised along m), whose stores are contiguous runs of m,
 *     unless M is at most the table's rows_max_m (planes of few pixels, where a vector of m
 *     would be mostly empty): then the row kernel again.
 *   - A single row (M block of one row) goes to the table's gemm_row1 when it has one: X is
 *     read in place and several panels run at once.
 *   - Threads: bs_threadpool_run hands out one item per scratch slot; each slot then takes
 *     work items from an atomic counter. K is never split and kc depends on K only, so every
 *     output element is summed in the same order whatever the thread count: results are
 *     bitwise identical for any number of threads.
 *
 * Direct convolution driver: builds the zero-padded phase-plane copy of the input (one
 * channel per item), the per-k offsets and the per-vector keep masks, then runs the table's
 * conv_tile over (block of positions, W panel) items; each output is computed by one item,
 * so results do not depend on the thread count. Tables without conv_tile (AVX2, NEON) make
 * bs_conv2d_direct_scratch return 0, and the conv op uses im2col + GEMM.
 *
 * The scalar table is the reference the tests compare every other table with: a 4x4 row
 * tile and a 4x4 column tile written as plain loops the compiler can vectorise, the
 * per-element im2col, and the per-pixel depthwise convolution.
 */
#include "bs_kernels.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "bs_error.h"
#include "bs_kernels_impl.h"
#include "bs_quant.h"
#include "bs_tensor.h"

#if defined(BS_HAVE_AVX2)
extern const bs__kernels_t bs__kernels_avx2;
#endif
#if defined(BS_HAVE_AVX512)
extern const bs__kernels_t bs__kernels_avx512;
#endif
#if defined(BS_HAVE_NEON)
extern const bs__kernels_t bs__kernels_neon;
#endif

/* ---- scalar reference kernels --------------------------------------------------------- */

enum { S_MR = 4, S_NR = 4 };

static void s_gemm_rows_scalar(int kc, const float *xp, const float *wp, float *y, int64_t sym,
                               int64_t syn, int mv, int nv, const bs__gemm_epi_t *e)
{
    float acc[S_MR][S_NR] = {{0}};
    for (int k = 0; k < kc; k++) {
        const float *a = xp + k * S_MR, *b = wp + k * S_NR;
        for (int i = 0; i < S_MR; i++)
            for (int j = 0; j < S_NR; j++)
                acc[i][j] += a[i] * b[j];
    }
    for (int i = 0; i < mv; i++)
        for (int j = 0; j < nv; j++)
            bs__gemm_store1(y + i * sym + j * syn, acc[i][j], e, j);
}

static void s_gemm_cols_scalar(int kc, const float *xp, const float *wp, float *y, int64_t syn,
                               int mv, int nv, const bs__gemm_epi_t *e)
{
    float acc[S_NR][S_MR] = {{0}};
    for (int k = 0; k < kc; k++) {
        const float *a = xp + k * S_MR, *b = wp + k * S_NR;
        for (int j = 0; j < S_NR; j++)
            for (int i = 0; i < S_MR; i++)
                acc[j][i] += b[j] * a[i];
    }
    for (int j = 0; j < nv; j++)
        for (int i = 0; i < mv; i++)
            bs__gemm_store1(y + i + j * syn, acc[j][i], e, j);
}

/* Reference im2col: one element at a time. */
static void s_im2col_scalar(const bs_conv2d_t *g, const float *x, float *col)
{
    int64_t P = (int64_t)g->OH * g->OW;
    for (int c = 0; c < g->C; c++)
        for (int kh = 0; kh < g->KH; kh++)
            for (int kw = 0; kw < g->KW; kw++) {
                float *row = col + ((int64_t)(c * g->KH + kh) * g->KW + kw) * P;
                for (int oh = 0; oh < g->OH; oh++)
                    for (int ow = 0; ow < g->OW; ow++) {
                        int ih = oh * g->sh + kh * g->dh - g->pt;
                        int iw = ow * g->sw + kw * g->dw - g->pl;
                        int in = ih >= 0 && ih < g->H && iw >= 0 && iw < g->W;
                        row[(int64_t)oh * g->OW + ow] =
                            in ? x[((int64_t)c * g->H + ih) * g->W + iw] : 0.0f;
                    }
            }
}

/* Reference depthwise plane: one output pixel at a time. */
static void s_dw_plane_scalar(const bs_conv2d_t *g, const float *x, const float *w, float b,
                              float *y, int act, float lo, float hi)
{
    for (int oh = 0; oh < g->OH; oh++)
        for (int ow = 0; ow < g->OW; ow++)
            y[(int64_t)oh * g->OW + ow] = bs__act1(bs__dw_point(g, x, w, b, oh, ow), act, lo, hi);
}

/* Reference direct-convolution tile (layout in bs_kernels_impl.h), W panels nr wide: one
 * output at a time, its sum over k in order, then bias, then act. */
static void s_conv_tile_ref(int nr, const bs__direct_t *d, const float *buf, int q0, int nq,
                            const float *wp, int nv, const float *bias, float *y, int64_t ys,
                            int act, float lo, float hi)
{
    for (int q = q0; q < q0 + nq && q < d->Mq; q++) {
        int oh = q / d->Wq, ow = q % d->Wq;
        if (ow >= d->OW)
            continue;
        const float *xq = buf + q;
        for (int j = 0; j < nv; j++) {
            float acc = 0.0f;
            for (int k = 0; k < d->K; k++)
                acc += xq[d->koff[k]] * wp[(int64_t)k * nr + j];
            if (bias)
                acc += bias[j];
            y[j * ys + (int64_t)oh * d->OW + ow] = bs__act1(acc, act, lo, hi);
        }
    }
}

static void s_conv_tile_scalar(const bs__direct_t *d, const float *buf, int q0, int nq,
                               const float *wp, int nv, const float *bias, float *y, int64_t ys,
                               int act, float lo, float hi)
{
    s_conv_tile_ref(S_NR, d, buf, q0, nq, wp, nv, bias, y, ys, act, lo, hi);
}

static const bs__kernels_t s_kernels_scalar = {
    .name = "scalar",
    .nr = S_NR,
    .mr = S_MR,
    .mt = S_MR,
    .nt = S_NR,
    .gemm_rows = s_gemm_rows_scalar,
    .gemm_cols = s_gemm_cols_scalar,
    .im2col = s_im2col_scalar,
    .dw_plane = s_dw_plane_scalar,
    .conv_tile = s_conv_tile_scalar,
    .dq = 16,
};

/* ---- portable fast im2col (used by the SIMD tables) ----------------------------------- */

void bs__im2col_rows(const bs_conv2d_t *g, const float *x, float *col)
{
    int64_t P = (int64_t)g->OH * g->OW;
    for (int c = 0; c < g->C; c++) {
        const float *xc = x + (int64_t)c * g->H * g->W;
        for (int kh = 0; kh < g->KH; kh++)
            for (int kw = 0; kw < g->KW; kw++) {
                float *row = col + ((int64_t)(c * g->KH + kh) * g->KW + kw) * P;
                /* ow in [a, b) read inside the row: 0 <= ow*sw + iw0 <= W - 1 */
                int iw0 = kw * g->dw - g->pl;
                int a = iw0 >= 0 ? 0 : (-iw0 + g->sw - 1) / g->sw;
                int b = g->W - 1 - iw0 < 0 ? 0 : (g->W - 1 - iw0) / g->sw + 1;
                if (b > g->OW)
                    b = g->OW;
                if (a > b)
                    a = b;
                for (int oh = 0; oh < g->OH; oh++) {
                    float *out = row + (int64_t)oh * g->OW;
                    int ih = oh * g->sh + kh * g->dh - g->pt;
                    if (ih < 0 || ih >= g->H) {
                        memset(out, 0, sizeof(float) * (size_t)g->OW);
                        continue;
                    }
                    const float *in = xc + (int64_t)ih * g->W + iw0;
                    memset(out, 0, sizeof(float) * (size_t)a);
                    if (g->sw == 1)
                        memcpy(out + a, in + a, sizeof(float) * (size_t)(b - a));
                    else
                        for (int ow = a; ow < b; ow++)
                            out[ow] = in[(int64_t)ow * g->sw];
                    memset(out + b, 0, sizeof(float) * (size_t)(g->OW - b));
                }
            }
    }
}

/* ---- dispatch ------------------------------------------------------------------------- */

static const bs__kernels_t *s_cur = &s_kernels_scalar;
static pthread_once_t s_once = PTHREAD_ONCE_INIT;
static char s_available[64];
/* The tables this build and CPU can run, worst first; s_tables[s_ntables - 1] is the best. */
static const bs__kernels_t *s_tables[4] = {&s_kernels_scalar};
static int s_ntables = 1;

static void s_init(void)
{
#if defined(BS_HAVE_AVX2) && (defined(__x86_64__) || defined(__i386__))
    __builtin_cpu_init();
    /* every CPU with AVX2 and FMA also has F16C (used by the AVX2 table's fp16 dot) */
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        s_tables[s_ntables++] = &bs__kernels_avx2;
#if defined(BS_HAVE_AVX512)
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
            __builtin_cpu_supports("avx512bw"))
            s_tables[s_ntables++] = &bs__kernels_avx512;
#endif
    }
#endif
#if defined(BS_HAVE_NEON)
    s_tables[s_ntables++] = &bs__kernels_neon;
#endif
    size_t at = 0;
    for (int i = 0; i < s_ntables; i++)
        at += (size_t)snprintf(s_available + at, sizeof s_available - at, "%s%s", i ? "," : "",
                               s_tables[i]->name);
    s_cur = s_tables[s_ntables - 1];
}

static const bs__kernels_t *s_k(void)
{
    pthread_once(&s_once, s_init);
    return s_cur;
}

const char *bs_kernels_isa(void)
{
    return s_k()->name;
}

const char *bs_kernels_available(void)
{
    s_k();
    return s_available;
}

int bs_kernels_select(const char *isa)
{
    pthread_once(&s_once, s_init);
    if (!isa)
        return BS_EINVAL;
    for (int i = 0; i < s_ntables; i++)
        if (strcmp(isa, s_tables[i]->name) == 0) {
            s_cur = s_tables[i];
            return 0;
        }
    return BS_EUNSUPPORTED;
}

/* ---- GEMM ----------------------------------------------------------------------------- */

enum {
    S_KC = 256,        /* K block target */
    S_KC_MAX1 = 384,   /* K up to this stays one block */
    S_MC = 192,        /* M block target (rows of X packed at once) */
    S_ALIGN = 64,
};

/* K block length: a function of K only, so the summation order never depends on threads
 * or instruction set. */
static int s_kc(int K)
{
    if (K <= S_KC_MAX1)
        return K < 1 ? 1 : K;
    int blocks = (K + S_KC - 1) / S_KC;
    return (K + blocks - 1) / blocks;
}

static int s_round_up(int v, int m)
{
    return (v + m - 1) / m * m;
}

/* M block length for micro-panels of w rows. */
static int s_mc(int M, int w)
{
    int mc = s_round_up(S_MC, w);
    int mm = s_round_up(M < 1 ? 1 : M, w);
    return mm < mc ? mm : mc;
}

static size_t s_slot_bytes(const bs__kernels_t *k, int M, int K)
{
    int mc = s_mc(M, k->mr), mc2 = s_mc(M, k->mt);
    if (mc2 > mc)
        mc = mc2;
    size_t b = sizeof(float) * (size_t)mc * (size_t)s_kc(K);
    return (b + S_ALIGN - 1) / S_ALIGN * S_ALIGN;
}

/* Per-slot weight tile of bs_gemm_wq: kc x nr floats, then kc codes of one row. */
static size_t s_tile_bytes(const bs__kernels_t *k, int K)
{
    size_t b = sizeof(float) * (size_t)k->nr * (size_t)s_kc(K) + (size_t)s_kc(K) + 64;
    return (b + S_ALIGN - 1) / S_ALIGN * S_ALIGN;
}

size_t bs_gemm_packed_size(int N, int K)
{
    const bs__kernels_t *k = s_k();
    if (N <= 0 || K <= 0)
        return S_ALIGN;
    size_t panels = (size_t)((N + k->nr - 1) / k->nr);
    return panels * (size_t)k->nr * (size_t)K * sizeof(float);
}

void bs_gemm_pack(const float *W, int64_t sn, int64_t sk, int N, int K, void *dst)
{
    const bs__kernels_t *k = s_k();
    int nr = k->nr;
    float *d = dst;
    if (N <= 0 || K <= 0)
        return;
    for (int n0 = 0; n0 < N; n0 += nr) {
        int nv = N - n0 < nr ? N - n0 : nr;
        float *panel = d + (int64_t)n0 * K;
        if (sn == 1) { /* W[k][n] (MatMul's B): each k's panel row is a contiguous run */
            for (int kk = 0; kk < K; kk++) {
                float *row = panel + (int64_t)kk * nr;
                const float *src = W + n0 + (int64_t)kk * sk;
                for (int j = 0; j < nr; j++)
                    row[j] = j < nv ? src[j] : 0.0f;
            }
            continue;
        }
        for (int j = 0; j < nr; j++) {
            if (j >= nv) {
                for (int kk = 0; kk < K; kk++)
                    panel[(int64_t)kk * nr + j] = 0.0f;
                continue;
            }
            const float *src = W + (int64_t)(n0 + j) * sn;
            for (int kk = 0; kk < K; kk++)
                panel[(int64_t)kk * nr + j] = src[(int64_t)kk * sk];
        }
    }
}

size_t bs_gemm_scratch_size(int M, int N, int K, int threads)
{
    (void)N;
    if (threads < 1)
        threads = 1;
    return S_ALIGN + (size_t)threads * s_slot_bytes(s_k(), M, K);
}

typedef struct s_gemm_job {
    const bs__kernels_t *k;
    int M, N, K;
    const float *X;
    int64_t sxm, sxk;
    const float *Wp;
    float *Y;
    int64_t sym, syn;
    int cols;                  /* 1: column kernel (sym == 1) */
    int w;                     /* micro-panel width in m: mr or mt */
    int kc, mc;                /* K block, M block */
    int ppc;                   /* W panels per N chunk */
    int nmb, nnb;              /* M blocks, N chunks */
    bs__gemm_epi_t epi;        /* bias (of column 0), act, lo, hi */
    const bs_gemm_wsrc_t *wq;  /* bs_gemm_wq: W dequantized per tile (Wp unused) */
    char *scratch;
    size_t slot;
    size_t tile;               /* bytes of the weight tile after X's panels in a slot */
    atomic_int next;           /* next work item */
} s_gemm_job_t;

/* Copies the w (4, 12, 16 or 32: constant sizes the compiler inlines) floats of one k of one
 * micro-panel. */
static inline void s_copy_w(float *d, const float *s, int w)
{
    if (w == 32)
        memcpy(d, s, 32 * sizeof(float));
    else if (w == 12)
        memcpy(d, s, 12 * sizeof(float));
    else if (w == 16)
        memcpy(d, s, 16 * sizeof(float));
    else if (w == 4)
        memcpy(d, s, 4 * sizeof(float));
    else
        memcpy(d, s, (size_t)w * sizeof(float));
}

/* Packs X rows [m0, m0+ml), columns [k0, k0+kl) into micro-panels of w rows, k-major.
 * With sxm == 1 (X read transposed, as from im2col) every k is a contiguous run of m: the
 * pack walks k outermost, reading each run once from start to end, which keeps the reads
 * sequential for the prefetcher however many k there are. */
static void s_pack_x(const s_gemm_job_t *j, int m0, int ml, int k0, int kl, float *xp)
{
    int w = j->w;
    int64_t sxm = j->sxm, sxk = j->sxk;
    int full = ml / w * w; /* rows in whole micro-panels */
    if (sxm == 1) {
        for (int k = 0; k < kl; k++) {
            const float *s = j->X + m0 + (int64_t)(k0 + k) * sxk;
            float *d = xp + (int64_t)k * w;
            for (int p = 0; p < full; p += w)
                s_copy_w(d + (int64_t)p * kl, s + p, w);
        }
    } else {
        for (int p = 0; p < full; p += w) {
            float *d = xp + (int64_t)p * kl;
            const float *s = j->X + (int64_t)(m0 + p) * sxm + (int64_t)k0 * sxk;
            if (sxk == 1) {
                for (int i = 0; i < w; i++)
                    for (int k = 0; k < kl; k++)
                        d[(int64_t)k * w + i] = s[(int64_t)i * sxm + k];
            } else {
                for (int k = 0; k < kl; k++)
                    for (int i = 0; i < w; i++)
                        d[(int64_t)k * w + i] = s[(int64_t)i * sxm + (int64_t)k * sxk];
            }
        }
    }
    if (full == ml)
        return;
    /* the last, partial micro-panel: rows past M are zero */
    int rows = ml - full;
    float *d = xp + (int64_t)full * kl;
    const float *s = j->X + (int64_t)(m0 + full) * sxm + (int64_t)k0 * sxk;
    memset(d, 0, sizeof(float) * (size_t)w * (size_t)kl);
    for (int k = 0; k < kl; k++)
        for (int i = 0; i < rows; i++)
            d[(int64_t)k * w + i] = s[(int64_t)i * sxm + (int64_t)k * sxk];
}

/* The dot products' summation order, which every instruction set reproduces: 16 lanes, lane j
 * the fused multiply-add chain over k = j, j + 16, ... below n16 = n - n % 16; then the lanes
 * reduced as two 8-lane vectors added, halves added, pairs added:
 *   s[i] = L[i] + L[i+8] (i < 8),  h[i] = s[i] + s[i+4] (i < 4),  (h0 + h2) + (h1 + h3);
 * then the tail k >= n16 added one product (unfused) at a time. */
static float s_dot_reduce(const float *L)
{
    float sv[8], hv[4];
    for (int i = 0; i < 8; i++)
        sv[i] = L[i] + L[i + 8];
    for (int i = 0; i < 4; i++)
        hv[i] = sv[i] + sv[i + 4];
    return (hv[0] + hv[2]) + (hv[1] + hv[3]);
}

float bs__dot_i8_ref(const int8_t *c, const float *x, int n)
{
    float L[16] = {0};
    int n16 = n - n % 16, k = 0;
    for (; k < n16; k++)
        L[k % 16] = fmaf((float)c[k], x[k], L[k % 16]);
    float acc = n16 ? s_dot_reduce(L) : 0.0f;
    for (; k < n; k++)
        acc += x[k] * (float)c[k];
    return acc;
}

float bs__dot_f16_ref(const uint16_t *h, const float *x, int n)
{
    float L[16] = {0};
    int n16 = n - n % 16, k = 0;
    for (; k < n16; k++)
        L[k % 16] = fmaf(bs_f16_to_f32(h[k]), x[k], L[k % 16]);
    float acc = n16 ? s_dot_reduce(L) : 0.0f;
    for (; k < n; k++)
        acc += x[k] * bs_f16_to_f32(h[k]);
    return acc;
}

/* Codes [k0, k0 + kl) of one packed row (bs_quant.h layout) into codes[], 8 fields at a time
 * from a 64-bit little-endian window (8 fields of <= 8 bits plus a shift of <= 7 fit in 64),
 * which may read up to 8 bytes past the row: inside the next row or the BS_QWEIGHT_TAIL. */
static inline __attribute__((always_inline)) int
s_unpack_windows(const uint8_t *row, const int bits, int k0, int k, int kl, int8_t *codes)
{
    const uint64_t mask = ((uint64_t)1 << bits) - 1, m = (uint64_t)1 << (bits - 1);
    for (; k + 8 <= kl; k += 8) {
        size_t bit = (size_t)(k0 + k) * (size_t)bits;
        uint64_t w;
        memcpy(&w, row + (bit >> 3), 8); /* little-endian hosts (x86-64, arm64) */
        w >>= bit & 7;
        for (int j = 0; j < 8; j++) {
            uint64_t v = (w >> (j * bits)) & mask;
            codes[k + j] = (int8_t)((int64_t)(v ^ m) - (int64_t)m);
        }
    }
    return k;
}

static void s_unpack_fast(const uint8_t *row, int bits, int k0, int kl, int8_t *codes)
{
    const uint64_t mask = ((uint64_t)1 << bits) - 1, m = (uint64_t)1 << (bits - 1);
    if (bits == 8) {
        memcpy(codes, row + k0, (size_t)kl);
        return;
    }
    const bs__kernels_t *isa = s_k();
    int k = isa->unpack ? isa->unpack(row, bits, k0, kl, codes) : 0;
    if (k) {
        k0 += k;
        kl -= k;
        codes += k;
        k = 0;
    }
    if (bits == 4 && k0 % 2 == 0) { /* whole bytes: loops the compiler vectorises */
        const uint8_t *b = row + k0 / 2;
        for (; k + 2 <= kl; k += 2) {
            uint8_t v = b[k / 2];
            codes[k] = (int8_t)(((v & 15) ^ 8) - 8);
            codes[k + 1] = (int8_t)(((v >> 4) ^ 8) - 8);
        }
    } else if (bits == 2 && k0 % 4 == 0) {
        const uint8_t *b = row + k0 / 4;
        for (; k + 4 <= kl; k += 4) {
            uint8_t v = b[k / 4];
            codes[k] = (int8_t)(((v & 3) ^ 2) - 2);
            codes[k + 1] = (int8_t)((((v >> 2) & 3) ^ 2) - 2);
            codes[k + 2] = (int8_t)((((v >> 4) & 3) ^ 2) - 2);
            codes[k + 3] = (int8_t)(((v >> 6) ^ 2) - 2);
        }
    }
    switch (bits) { /* constant widths, so the 8 shifts and masks unroll */
    case 2: k = s_unpack_windows(row, 2, k0, k, kl, codes); break;
    case 3: k = s_unpack_windows(row, 3, k0, k, kl, codes); break;
    case 4: k = s_unpack_windows(row, 4, k0, k, kl, codes); break;
    case 5: k = s_unpack_windows(row, 5, k0, k, kl, codes); break;
    case 6: k = s_unpack_windows(row, 6, k0, k, kl, codes); break;
    case 7: k = s_unpack_windows(row, 7, k0, k, kl, codes); break;
    default: break;
    }
    (void)mask;
    (void)m;
    if (k < kl)
        bs_qunpack_row(row, bits, k0 + k, k0 + kl, codes + k);
}

void bs_qunpack_fast(const uint8_t *row, int bits, int k0, int kl, int8_t *codes)
{
    s_unpack_fast(row, bits, k0, kl, codes);
}

int32_t bs_dot_u8s8(const uint8_t *x, const int8_t *c, int n)
{
    const bs__kernels_t *k = s_k();
    if (k->dot_u8s8)
        return k->dot_u8s8(x, c, n);
    int32_t acc = 0;
    for (int i = 0; i < n; i++)
        acc += (int32_t)x[i] * c[i];
    return acc;
}

void bs_split_phases(const uint8_t *x, int K, int p, uint8_t *out, int64_t stride)
{
    int nb = (K + p - 1) / p;
    for (int t = 0; t < p; t++) {
        uint8_t *o = out + (int64_t)t * stride;
        for (int j = 0; j < nb; j++)
            o[j] = j * p + t < K ? x[j * p + t] : 0;
        memset(o + nb, 0, (size_t)(stride - nb));
    }
}

int32_t bs_dot_u8_packed(const uint8_t *const *xs, int p, const uint8_t *row, int nbytes)
{
    const bs__kernels_t *k = s_k();
    if (k->dot_u8_packed)
        return k->dot_u8_packed(xs, p, row, nbytes);
    int bits = 8 / p, m = 1 << (bits - 1), mask = (1 << bits) - 1;
    int32_t acc = 0;
    for (int j = 0; j < nbytes; j++)
        for (int t = 0; t < p; t++)
            acc += (int32_t)xs[t][j] * ((((row[j] >> (t * bits)) & mask) ^ m) - m);
    return acc;
}

/* Weight-only GEMV: y[n] = act(scale[n] * dot(codes of row n, x) + bias[n]) (fp16: the halves'
 * dot), rows [n0, n1), x contiguous, K at a time in chunks of the codes buffer. */
typedef struct s_gemv_job {
    const bs__kernels_t *k;
    const bs_gemm_wsrc_t *w;
    int N, K, chunk;
    const float *x;
    const float *bias;
    float *y;
    int64_t syn;
    int act;
    float lo, hi;
    char *scratch;
    size_t slot;
    int per, items;            /* rows per work item, work items */
    atomic_int next;
} s_gemv_job_t;

static void s_gemv_item(const s_gemv_job_t *j, int item, int8_t *codes)
{
    int n0 = item * j->per, n1 = n0 + j->per < j->N ? n0 + j->per : j->N;
    bs__dot_i8_fn dot8 = j->k->dot_i8 ? j->k->dot_i8 : bs__dot_i8_ref;
    bs__dot_f16_fn dot16 = j->k->dot_f16 ? j->k->dot_f16 : bs__dot_f16_ref;
    const bs_qweight_t *q = j->w->q;
    for (int n = n0; n < n1; n++) {
        int64_t row = (int64_t)j->w->n0 + n;
        float v;
        if (q) {
            const uint8_t *r = q->data + (size_t)row * q->row_bytes;
            float acc = 0.0f;
            for (int k0 = 0; k0 < j->K; k0 += j->chunk) {
                int kl = j->K - k0 < j->chunk ? j->K - k0 : j->chunk;
                s_unpack_fast(r, q->bits, k0, kl, codes);
                acc += dot8(codes, j->x + k0, kl);
            }
            v = acc * q->scales[row];
        } else {
            v = dot16(j->w->f16 + row * j->K, j->x, j->K);
        }
        if (j->bias)
            v += j->bias[n];
        j->y[(int64_t)n * j->syn] = bs__act1(v, j->act, j->lo, j->hi);
    }
}

static void s_gemv_slot(void *ctx, int slot)
{
    s_gemv_job_t *j = ctx;
    int8_t *codes = (int8_t *)(j->scratch + (size_t)slot * j->slot);
    for (;;) {
        int it = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        if (it >= j->items)
            return;
        s_gemv_item(j, it, codes);
    }
}

/* Expands columns [n0, n0 + nv) (panel order, zero past nv) of a quantized W for k in
 * [k0, k0 + kl) into tile[k * nr + c]: the panel bs_gemm_pack would make of the dequantized
 * weight, K block k0 only. */
static void s_dequant_tile(const bs_gemm_wsrc_t *w, int K, int nr, int n0, int nv, int k0,
                           int kl, float *tile, int8_t *codes)
{
    for (int c = 0; c < nr; c++) {
        if (c >= nv) {
            for (int k = 0; k < kl; k++)
                tile[(int64_t)k * nr + c] = 0.0f;
            continue;
        }
        int64_t row = (int64_t)w->n0 + n0 + c;
        if (w->q) {
            const bs_qweight_t *q = w->q;
            s_unpack_fast(q->data + (size_t)row * q->row_bytes, q->bits, k0, kl, codes);
            float sc = q->scales[row];
            for (int k = 0; k < kl; k++)
                tile[(int64_t)k * nr + c] = sc * (float)codes[k];
        } else {
            const uint16_t *h = w->f16 + row * K + k0;
            for (int k = 0; k < kl; k++)
                tile[(int64_t)k * nr + c] = bs_f16_to_f32(h[k]);
        }
    }
}

static void s_gemm_item(s_gemm_job_t *j, int item, float *xp)
{
    const bs__kernels_t *k = j->k;
    int nr = k->nr;
    int mb = item / j->nnb, nb = item % j->nnb;
    int m0 = mb * j->mc;
    int ml = j->M - m0 < j->mc ? j->M - m0 : j->mc;
    int p0 = nb * j->ppc;
    int p1 = p0 + j->ppc;
    int npanels = (j->N + nr - 1) / nr;
    if (p1 > npanels)
        p1 = npanels;
    bs__gemm_epi_t e = j->epi;
    const float *bias = j->epi.bias;

    /* one row (a batch-1 Gemm / MatMul): X is read in place, all panels at once */
    int gemv = !j->cols && ml == 1 && k->gemm_row1;
    int nvl = j->N - (p1 - 1) * nr < nr ? j->N - (p1 - 1) * nr : nr;
    float *tile = j->wq ? (float *)((char *)xp + j->slot - j->tile) : NULL;
    int8_t *codes = j->wq ? (int8_t *)(tile + (size_t)nr * (size_t)j->kc) : NULL;
    for (int k0 = 0; k0 < j->K; k0 += j->kc) {
        int kl = j->K - k0 < j->kc ? j->K - k0 : j->kc;
        e.accumulate = k0 > 0;
        e.final = k0 + kl == j->K;
        if (gemv && tile) { /* one panel at a time through the tile */
            for (int p = p0; p < p1; p++) {
                int n0 = p * nr;
                int nv = j->N - n0 < nr ? j->N - n0 : nr;
                s_dequant_tile(j->wq, j->K, nr, n0, nv, k0, kl, tile, codes);
                e.bias = bias ? bias + n0 : NULL;
                k->gemm_row1(kl, j->X + (int64_t)m0 * j->sxm + (int64_t)k0 * j->sxk, j->sxk,
                             tile, (int64_t)nr * kl, 1,
                             j->Y + (int64_t)m0 * j->sym + (int64_t)n0 * j->syn, j->syn, nv,
                             &e);
            }
            continue;
        }
        if (gemv) {
            e.bias = bias ? bias + (int64_t)p0 * nr : NULL;
            k->gemm_row1(kl, j->X + (int64_t)m0 * j->sxm + (int64_t)k0 * j->sxk, j->sxk,
                         j->Wp + (int64_t)p0 * nr * j->K + (int64_t)k0 * nr, (int64_t)nr * j->K,
                         p1 - p0, j->Y + (int64_t)m0 * j->sym + (int64_t)p0 * nr * j->syn,
                         j->syn, nvl, &e);
            continue;
        }
        s_pack_x(j, m0, ml, k0, kl, xp);
        for (int p = p0; p < p1; p++) {
            int n0 = p * nr;
            int nv = j->N - n0 < nr ? j->N - n0 : nr;
            const float *wp = tile;
            if (tile)
                s_dequant_tile(j->wq, j->K, nr, n0, nv, k0, kl, tile, codes);
            else
                wp = j->Wp + (int64_t)n0 * j->K + (int64_t)k0 * nr;
            for (int i = 0; i < ml; i += j->w) {
                int mv = ml - i < j->w ? ml - i : j->w;
                const float *xs = xp + (int64_t)i * kl;
                float *y = j->Y + (int64_t)(m0 + i) * j->sym + (int64_t)n0 * j->syn;
                if (!j->cols) {
                    e.bias = bias ? bias + n0 : NULL;
                    k->gemm_rows(kl, xs, wp, y, j->sym, j->syn, mv, nv, &e);
                    continue;
                }
                for (int c = 0; c < nv; c += k->nt) {
                    int cv = nv - c < k->nt ? nv - c : k->nt;
                    e.bias = bias ? bias + n0 + c : NULL;
                    k->gemm_cols(kl, xs, wp + c, y + (int64_t)c * j->syn, j->syn, mv, cv, &e);
                }
            }
        }
    }
}

/* One scratch slot: takes work items until none are left. */
static void s_gemm_slot(void *ctx, int slot)
{
    s_gemm_job_t *j = ctx;
    float *xp = (float *)(j->scratch + (size_t)slot * j->slot);
    int items = j->nmb * j->nnb;
    for (;;) {
        int it = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        if (it >= items)
            return;
        s_gemm_item(j, it, xp);
    }
}

static void s_gemm_run(int M, int N, int K, const float *X, int64_t sxm, int64_t sxk,
                       const void *Wp, const bs_gemm_wsrc_t *wq, const float *bias, float *Y,
                       int64_t sym, int64_t syn, int act, float lo, float hi, void *scratch,
                       bs_threadpool_t *pool);

void bs_gemm(int M, int N, int K, const float *X, int64_t sxm, int64_t sxk, const void *Wp,
             const float *bias, float *Y, int64_t sym, int64_t syn, int act, float lo, float hi,
             void *scratch, bs_threadpool_t *pool)
{
    s_gemm_run(M, N, K, X, sxm, sxk, Wp, NULL, bias, Y, sym, syn, act, lo, hi, scratch, pool);
}

size_t bs_gemm_wq_scratch_size(int M, int N, int K, int threads)
{
    (void)N;
    if (threads < 1)
        threads = 1;
    const bs__kernels_t *k = s_k();
    return S_ALIGN + (size_t)threads * (s_slot_bytes(k, M, K) + s_tile_bytes(k, K));
}

void bs_gemm_wq(int M, int N, int K, const float *X, int64_t sxm, int64_t sxk,
                const bs_gemm_wsrc_t *W, const float *bias, float *Y, int64_t sym, int64_t syn,
                int act, float lo, float hi, void *scratch, bs_threadpool_t *pool)
{
    if (M == 1 && sxk == 1 && K > 0 && N > 0) { /* one row: a GEMV straight from the codes */
        const bs__kernels_t *k = s_k();
        int threads = bs_threadpool_size(pool);
        s_gemv_job_t j = {.k = k, .w = W, .N = N, .K = K, .chunk = s_kc(K), .x = X,
                          .bias = bias, .y = Y, .syn = syn, .act = act, .lo = lo, .hi = hi};
        uintptr_t base = ((uintptr_t)scratch + S_ALIGN - 1) / S_ALIGN * S_ALIGN;
        j.scratch = (char *)base;
        j.slot = s_slot_bytes(k, M, K) + s_tile_bytes(k, K);
        int items = threads > 1 ? 4 * threads : 1;
        j.per = (N + items - 1) / items;
        j.items = (N + j.per - 1) / j.per;
        atomic_init(&j.next, 0);
        bs_threadpool_run(pool, j.items < threads ? j.items : threads, s_gemv_slot, &j);
        return;
    }
    s_gemm_run(M, N, K, X, sxm, sxk, NULL, W, bias, Y, sym, syn, act, lo, hi, scratch, pool);
}

static void s_gemm_run(int M, int N, int K, const float *X, int64_t sxm, int64_t sxk,
                       const void *Wp, const bs_gemm_wsrc_t *wq, const float *bias, float *Y,
                       int64_t sym, int64_t syn, int act, float lo, float hi, void *scratch,
                       bs_threadpool_t *pool)
{
    const bs__kernels_t *k = s_k();
    if (M <= 0 || N <= 0)
        return;
    if (K <= 0) { /* empty sum: Y = act(bias) */
        for (int m = 0; m < M; m++)
            for (int n = 0; n < N; n++)
                Y[(int64_t)m * sym + (int64_t)n * syn] =
                    bs__act1(bias ? bias[n] : 0.0f, act, lo, hi);
        return;
    }
    s_gemm_job_t j = {
        .k = k, .M = M, .N = N, .K = K, .X = X, .sxm = sxm, .sxk = sxk, .Wp = Wp, .Y = Y,
        .sym = sym, .syn = syn,
        .epi = {.bias = bias, .act = act, .lo = lo, .hi = hi},
    };
    j.cols = sym == 1 && syn != 1 && M > k->rows_max_m;
    j.w = j.cols ? k->mt : k->mr;
    j.kc = s_kc(K);
    /* M blocks of about S_MC rows, of equal size; with threads, at least about 3 work items
     * per thread: split N into chunks of panels first (X is then packed once per chunk),
     * then M further. None of this changes any element's summation order. */
    int npanels = (N + k->nr - 1) / k->nr;
    int mpanels = (M + j.w - 1) / j.w;
    int threads = bs_threadpool_size(pool);
    j.nmb = (M + S_MC - 1) / S_MC;
    j.nnb = 1;
    if (threads > 1 && j.nmb < 3 * threads) {
        j.nnb = (3 * threads + j.nmb - 1) / j.nmb;
        if (j.nnb > npanels)
            j.nnb = npanels;
        if (j.nmb * j.nnb < 3 * threads)
            j.nmb = (3 * threads + j.nnb - 1) / j.nnb;
    }
    if (j.nmb > mpanels)
        j.nmb = mpanels;
    j.mc = s_round_up((M + j.nmb - 1) / j.nmb, j.w); /* <= s_mc(M, w): fits the slot */
    j.nmb = (M + j.mc - 1) / j.mc;
    j.ppc = (npanels + j.nnb - 1) / j.nnb;
    j.nnb = (npanels + j.ppc - 1) / j.ppc;
    uintptr_t base = ((uintptr_t)scratch + S_ALIGN - 1) / S_ALIGN * S_ALIGN;
    j.scratch = (char *)base;
    j.wq = wq;
    j.tile = wq ? s_tile_bytes(k, K) : 0;
    j.slot = s_slot_bytes(k, M, K) + j.tile;
    atomic_init(&j.next, 0);
    int slots = j.nmb * j.nnb < threads ? j.nmb * j.nnb : threads;
    bs_threadpool_run(pool, slots, s_gemm_slot, &j);
}

/* ---- im2col and depthwise ------------------------------------------------------------- */

void bs_im2col(const bs_conv2d_t *g, const float *x, float *col)
{
    s_k()->im2col(g, x, col);
}

typedef struct s_dw_job {
    const bs__kernels_t *k;
    const bs_conv2d_t *g;
    const float *x, *w, *bias;
    float *y;
    int act;
    float lo, hi;
    int per;  /* channels per item (dw_planes) */
} s_dw_job_t;

static void s_dw_channel(void *ctx, int c)
{
    const s_dw_job_t *j = ctx;
    const bs_conv2d_t *g = j->g;
    j->k->dw_plane(g, j->x + (int64_t)c * g->H * g->W, j->w + (int64_t)c * g->KH * g->KW,
                   j->bias ? j->bias[c] : 0.0f, j->y + (int64_t)c * g->OH * g->OW, j->act,
                   j->lo, j->hi);
}

static void s_dw_chunk(void *ctx, int i)
{
    const s_dw_job_t *j = ctx;
    int c0 = i * j->per, c1 = c0 + j->per < j->g->C ? c0 + j->per : j->g->C;
    j->k->dw_planes(j->g, j->x, j->w, j->bias, j->y, c0, c1, j->act, j->lo, j->hi);
}

/* Channels go one per item, or in chunks (per thread, about four each) to a table's
 * dw_planes; every channel is computed alone, so the split never changes a value. */
void bs_conv2d_depthwise(const bs_conv2d_t *g, const float *x, const float *w,
                         const float *bias, float *y, int act, float lo, float hi,
                         bs_threadpool_t *pool)
{
    if (g->OH <= 0 || g->OW <= 0)
        return;
    s_dw_job_t j = {s_k(), g, x, w, bias, y, act, lo, hi, 1};
    if (j.k->dw_planes) {
        int items = 4 * bs_threadpool_size(pool);
        if (items > g->C)
            items = g->C;
        if (items <= 1) {
            j.k->dw_planes(g, x, w, bias, y, 0, g->C, act, lo, hi);
            return;
        }
        j.per = (g->C + items - 1) / items;
        if (j.per > 16) /* whole blocks of 16 for kernels that work across channels */
            j.per = (j.per + 15) / 16 * 16;
        bs_threadpool_run(pool, (g->C + j.per - 1) / j.per, s_dw_chunk, &j);
        return;
    }
    bs_threadpool_run(pool, g->C, s_dw_channel, &j);
}

/* ---- direct convolution --------------------------------------------------------------- */

/* The phase-plane copy is at most this many floats (16 MiB); larger inputs use im2col, whose
 * window matrix goes in bands. */
enum { S_DIRECT_MAX_FLOATS = 1 << 22, S_DIRECT_PAR_MIN = 16384 };

typedef struct s_direct_lay {
    bs__direct_t d;
    int nvec;
    int64_t buf_floats;
    size_t off_koff, off_dst, off_keep, bytes; /* from the aligned base; the copy at 0 */
} s_direct_lay_t;

static size_t s_align_up(size_t v)
{
    return (v + S_ALIGN - 1) / S_ALIGN * S_ALIGN;
}

/* 0 when g does not fit the direct layout. */
static int s_direct_layout(const bs_conv2d_t *g, int N, s_direct_lay_t *L)
{
    memset(L, 0, sizeof *L);
    if (g->C < 1 || g->H < 1 || g->W < 1 || g->KH < 1 || g->KW < 1 || g->OH < 1 || g->OW < 1 ||
        g->sh < 1 || g->sw < 1 || g->dh < 1 || g->dw < 1 || N < 1)
        return 0;
    int64_t maxr = (int64_t)(g->KH - 1) * g->dh / g->sh;
    int64_t maxc = (int64_t)(g->KW - 1) * g->dw / g->sw;
    int64_t Hq = g->OH + maxr, Wq = g->OW + maxc;
    int64_t Sq = Hq * Wq, cstride = (int64_t)g->sh * g->sw * Sq;
    int64_t K = (int64_t)g->C * g->KH * g->KW;
    if (Hq > S_DIRECT_MAX_FLOATS || Wq > S_DIRECT_MAX_FLOATS || cstride > S_DIRECT_MAX_FLOATS ||
        cstride * g->C > S_DIRECT_MAX_FLOATS || K > S_DIRECT_MAX_FLOATS)
        return 0;
    L->d.sh = g->sh;
    L->d.sw = g->sw;
    L->d.OW = g->OW;
    L->d.Wq = (int)Wq;
    L->d.Hq = (int)Hq;
    L->d.Sq = Sq;
    L->d.cstride = cstride;
    L->d.Mq = (int)((g->OH - 1) * Wq + g->OW);
    L->d.K = (int)K;
    L->d.N = N;
    L->nvec = (L->d.Mq + 15) / 16;
    L->buf_floats = cstride * g->C + BS__DIRECT_TAIL;
    L->off_koff = s_align_up(sizeof(float) * (size_t)L->buf_floats);
    L->off_dst = L->off_koff + s_align_up(sizeof(int32_t) * (size_t)K);
    L->off_keep = L->off_dst + s_align_up(sizeof(int32_t) * (size_t)L->nvec);
    L->bytes = L->off_keep + s_align_up(sizeof(uint16_t) * (size_t)L->nvec);
    return 1;
}

size_t bs_conv2d_direct_scratch(const bs_conv2d_t *g, int N)
{
    s_direct_lay_t L;
    if (!s_k()->conv_tile || !s_direct_layout(g, N, &L))
        return 0;
    return S_ALIGN + L.bytes;
}

typedef struct s_direct_job {
    const bs__kernels_t *k;
    const bs_conv2d_t *g;
    const s_direct_lay_t *L;
    const float *x;
    float *buf;
    const float *Wp, *bias;
    float *y;
    int act;
    float lo, hi;
    int dq, npanels;
} s_direct_job_t;

/* The portable fill of one channel's phase planes (bc) from its input plane (xc). */
void bs__conv_fill_ref(const bs_conv2d_t *g, const bs__direct_t *d, const float *xc, float *bc)
{
    int sh = d->sh, sw = d->sw, Wq = d->Wq;
    for (int a = 0; a < sh; a++)
        for (int b = 0; b < sw; b++) {
            float *pl = bc + (int64_t)(a * sw + b) * d->Sq;
            /* columns s in [s0, s1) read inside the row: 0 <= s*sw + b - pl < W */
            int o = b - g->pl;
            int s0 = o >= 0 ? 0 : (-o + sw - 1) / sw;
            int s1 = g->W - 1 - o < 0 ? 0 : (g->W - 1 - o) / sw + 1;
            s1 = s1 > Wq ? Wq : s1;
            s0 = s0 > s1 ? s1 : s0;
            for (int r = 0; r < d->Hq; r++) {
                float *row = pl + (int64_t)r * Wq;
                int64_t ih = (int64_t)r * sh + a - g->pt;
                if (ih < 0 || ih >= g->H) {
                    memset(row, 0, sizeof(float) * (size_t)Wq);
                    continue;
                }
                const float *in = xc + ih * g->W + o;
                memset(row, 0, sizeof(float) * (size_t)s0);
                if (sw == 1)
                    memcpy(row + s0, in + s0, sizeof(float) * (size_t)(s1 - s0));
                else
                    for (int s = s0; s < s1; s++)
                        row[s] = in[(int64_t)s * sw];
                memset(row + s1, 0, sizeof(float) * (size_t)(Wq - s1));
            }
        }
}

/* Channel c's phase planes. */
static void s_direct_fill(void *ctx, int c)
{
    const s_direct_job_t *j = ctx;
    const bs__direct_t *d = &j->L->d;
    const float *xc = j->x + (int64_t)c * j->g->H * j->g->W;
    float *bc = j->buf + c * d->cstride;
    if (j->k->conv_fill)
        j->k->conv_fill(j->g, d, xc, bc);
    else
        bs__conv_fill_ref(j->g, d, xc, bc);
}

/* One (block of positions, W panel) pair. */
static void s_direct_item(void *ctx, int i)
{
    const s_direct_job_t *j = ctx;
    const bs__direct_t *d = &j->L->d;
    int nr = j->k->nr;
    int p = i % j->npanels, qb = i / j->npanels;
    int q0 = qb * j->dq, nq = d->Mq - q0 < j->dq ? d->Mq - q0 : j->dq;
    int n0 = p * nr, nv = d->N - n0 < nr ? d->N - n0 : nr;
    const float *wp = j->Wp + (int64_t)n0 * d->K;
    const float *bias = j->bias ? j->bias + n0 : NULL;
    int64_t ys = (int64_t)j->g->OH * j->g->OW;
    float *y = j->y + n0 * ys;
    if (j->k->conv_tile)
        j->k->conv_tile(d, j->buf, q0, nq, wp, nv, bias, y, ys, j->act, j->lo, j->hi);
    else
        s_conv_tile_ref(nr, d, j->buf, q0, nq, wp, nv, bias, y, ys, j->act, j->lo, j->hi);
}

void bs_conv2d_direct(const bs_conv2d_t *g, int N, const float *x, const void *Wp,
                      const float *bias, float *y, int act, float lo, float hi, void *scratch,
                      bs_threadpool_t *pool)
{
    const bs__kernels_t *k = s_k();
    s_direct_lay_t L;
    if (!s_direct_layout(g, N, &L))
        return;
    char *base = (char *)(((uintptr_t)scratch + S_ALIGN - 1) / S_ALIGN * S_ALIGN);
    float *buf = (float *)base;
    int32_t *koff = (int32_t *)(base + L.off_koff), *dst = (int32_t *)(base + L.off_dst);
    uint16_t *keep = (uint16_t *)(base + L.off_keep);
    bs__direct_t *d = &L.d;
    for (int c = 0, t = 0; c < g->C; c++)
        for (int kh = 0; kh < g->KH; kh++)
            for (int kw = 0; kw < g->KW; kw++, t++) {
                int rr = kh * g->dh, cc = kw * g->dw;
                koff[t] = (int32_t)(c * d->cstride + (rr % d->sh * d->sw + cc % d->sw) * d->Sq +
                                    (int64_t)(rr / d->sh) * d->Wq + cc / d->sw);
            }
    /* kept lanes: row oh's outputs are positions [oh*Wq, oh*Wq + OW) */
    memset(keep, 0, sizeof(uint16_t) * (size_t)L.nvec);
    memset(dst, 0, sizeof(int32_t) * (size_t)L.nvec);
    for (int oh = 0; oh < g->OH; oh++) {
        int q = oh * d->Wq, left = g->OW, out = oh * g->OW;
        while (left > 0) {
            int v = q >> 4, lane = q & 15, n = 16 - lane < left ? 16 - lane : left;
            if (!keep[v])
                dst[v] = out;
            keep[v] |= (uint16_t)(((1u << n) - 1u) << lane);
            q += n;
            out += n;
            left -= n;
        }
    }
    d->koff = koff;
    d->dst = dst;
    d->keep = keep;
    s_direct_job_t j = {
        .k = k, .g = g, .L = &L, .x = x, .buf = buf, .Wp = Wp, .bias = bias, .y = y,
        .act = act, .lo = lo, .hi = hi, .dq = k->conv_tile ? k->dq : 16,
        .npanels = (N + k->nr - 1) / k->nr,
    };
    memset(buf + d->cstride * g->C, 0, sizeof(float) * BS__DIRECT_TAIL);
    if (bs_threadpool_size(pool) > 1 && d->cstride * g->C >= S_DIRECT_PAR_MIN)
        bs_threadpool_run(pool, g->C, s_direct_fill, &j);
    else
        for (int c = 0; c < g->C; c++)
            s_direct_fill(&j, c);
    int nqb = (d->Mq + j.dq - 1) / j.dq;
    bs_threadpool_run(pool, nqb * j.npanels, s_direct_item, &j);
}

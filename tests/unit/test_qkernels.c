/*
 * test_qkernels.c - the integer kernels (bs_qkernels.h).
 *
 * The scalar table is the reference: it is checked against naive loops written straight from
 * the math in bs_qkernels.h (raw sums in int64, then the int32 wrap, one float multiply and
 * the epilogue, rounding with bs_quant_round), then every other instruction set this build
 * and CPU can run (AVX2 and AVX-VNNI on x86-64, NEON on arm64 - tools/cross-arm64.sh runs
 * this file under qemu-aarch64) must match it bit for bit: GEMM over random shapes with odd
 * M, N and K, K not a multiple of 4, several K and M blocks, M = 1, N below a panel, weights
 * of every width 2..8 given as rows, 8-bit weights prepacked and 4-bit panels (odd numbers
 * of groups of 4), float and uint8 outputs
 * with each activation, row-major, plane (conv) and gapped output strides, and 1 and 3
 * threads; quantization (ties, values a few ulps from half integers, saturation, NaN and
 * infinities), im2row (padding, stride, dilation) and depthwise convolution likewise, and
 * bs_qconv2d against naive loops and against im2row + bs_qgemm: fixed and random geometries
 * (strides 1 to 3, dilations, asymmetric padding, odd sizes, 1 to 3 groups), weights of every
 * width as rows, 8-bit prepacked and 4-bit panels, float and uint8 outputs with each
 * activation, 1 and 3 threads.
 *
 * Buffers handed to the kernels are allocated at their exact size, so ASan catches any read
 * or write past them; outputs start filled with a marker, and the gaps between strided
 * outputs must keep it.
 *
 * qgemm_throughput prints GOPS (2 * M * N * K per second) of a 64 x 576 x 196 (N x K x M)
 * conv-shaped GEMM per ISA beside the float GEMM's GFLOP/s; it asserts nothing about time.
 */
#include <math.h>
#include <stdint.h>
#include <time.h>

#include "bs_alloc.h"
#include "bs_error.h"
#include "bs_kernels.h"
#include "bs_qkernels.h"
#include "bs_quant.h"
#include "bs_test.h"
#include "bs_threadpool.h"

/* ---- helpers -------------------------------------------------------------------------- */

static uint64_t s_rng = 0x9e3779b97f4a7c15ull;

static uint32_t s_next(void)
{
    s_rng ^= s_rng << 13;
    s_rng ^= s_rng >> 7;
    s_rng ^= s_rng << 17;
    return (uint32_t)(s_rng >> 32);
}

/* Uniform in [lo, hi]. */
static int s_randi(int lo, int hi)
{
    return lo + (int)(s_next() % (uint32_t)(hi - lo + 1));
}

static float s_randf(float lo, float hi)
{
    return lo + (hi - lo) * (float)((double)s_next() / 4294967296.0);
}

static void *s_alloc(size_t n)
{
    void *p = bs_malloc(n ? n : 1);
    ASSERT(p);
    return p;
}

static uint8_t *s_randbytes(size_t n)
{
    uint8_t *p = s_alloc(n);
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)s_next();
    return p;
}

/* Every ISA but "scalar" in bs_qkernels_available(), into names[]; returns the count. */
static int s_fast_isas(char names[][16], int cap)
{
    const char *av = bs_qkernels_available();
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

/* A random N x K weight of `bits` (codes in [-qmax, qmax], the extremes often), packed as
 * bs_quant.h lays it out; codes[n*K + k] keeps the codes. */
static void s_qweight(bs_qweight_t *q, int N, int K, int bits, int8_t *codes)
{
    memset(q, 0, sizeof *q);
    q->bits = bits, q->N = N, q->K = K;
    q->row_bytes = BS_QROW_BYTES(K, bits);
    q->data = bs_calloc((size_t)N * q->row_bytes + BS_QWEIGHT_TAIL, 1);
    q->scales = bs_malloc(sizeof(float) * (size_t)N);
    ASSERT(q->data && q->scales);
    int qmax = BS_QMAX(bits);
    for (int n = 0; n < N; n++) {
        q->scales[n] = 1.0f;
        for (int k = 0; k < K; k++) {
            int r = s_randi(0, 9);
            codes[(int64_t)n * K + k] =
                (int8_t)(r == 0 ? qmax : (r == 1 ? -qmax : s_randi(-qmax, qmax)));
        }
        bs_qpack_row(codes + (int64_t)n * K, K, bits, q->data + (size_t)n * q->row_bytes);
    }
}

/* ---- GEMM ----------------------------------------------------------------------------- */

typedef struct qcase {
    int M, N, K, bits, prepack, layout;
    int64_t ldx, sym, syn;
    size_t ylen, esz;
    uint8_t *X;
    int8_t *codes;
    bs_qweight_t q;
    int32_t *off;
    float *mult;
    bs_qgemm_epi_t e;
} qcase_t;

/* layout: 0 row-major Y; 1 planes (sym == 1, as a convolution); 2 gaps between elements.
 * prepack: 0 rows, 1 8-bit panels, 2 4-bit panels (bits 4). */
static void s_qcase_init(qcase_t *c, int M, int N, int K, int bits, int prepack, int out_u8,
                         int act, int layout)
{
    memset(c, 0, sizeof *c);
    c->M = M, c->N = N, c->K = K, c->bits = bits, c->prepack = prepack, c->layout = layout;
    c->ldx = BS_QK_PAD(K) + (layout == 2 ? 5 : 0);
    /* X bytes past K are garbage the kernel must ignore */
    c->X = s_randbytes((size_t)(M * c->ldx));
    c->codes = s_alloc((size_t)N * K);
    s_qweight(&c->q, N, K, bits, c->codes);
    switch (layout) {
    case 0: c->sym = N, c->syn = 1; break;
    case 1: c->sym = 1, c->syn = M; break;
    default: c->sym = 2 * (int64_t)N + 1, c->syn = 2; break;
    }
    c->esz = out_u8 ? 1 : sizeof(float);
    c->ylen = (size_t)((M - 1) * c->sym + (N - 1) * c->syn + 1);
    /* raw sums have a standard deviation of about 10700 * sqrt(K) (8-bit weights); scale
     * them to about +-64, every third column by a power of two so that halves (ties) occur */
    double sd = 10700.0 * sqrt((double)K) * BS_QMAX(bits) / 127.0 + 1.0;
    c->off = s_alloc(sizeof(int32_t) * (size_t)N);
    c->mult = s_alloc(sizeof(float) * (size_t)N);
    for (int n = 0; n < N; n++) {
        c->off[n] = (int32_t)s_randf(-(float)sd, (float)sd);
        float m = (float)(64.0 / sd) * s_randf(0.5f, 1.5f);
        if (n % 3 == 0)
            m = ldexpf(1.0f, (int)lround(log2(64.0 / sd)));
        c->mult[n] = n % 7 == 5 ? -m : m;
    }
    c->e.off = c->off, c->e.mult = c->mult, c->e.out_u8 = out_u8, c->e.act = act;
    c->e.lo = -20.0f, c->e.hi = 30.0f;
    c->e.zo = s_randi(0, 255), c->e.qlo = 0, c->e.qhi = 255;
    if (act == BS_KACT_RELU)
        c->e.qlo = c->e.zo;
    else if (act == BS_KACT_CLIP)
        c->e.qlo = s_randi(0, 100), c->e.qhi = s_randi(c->e.qlo, 255);
}

static void s_qcase_free(qcase_t *c)
{
    bs_free(c->X);
    bs_free(c->codes);
    bs_qweight_free(&c->q);
    bs_free(c->off);
    bs_free(c->mult);
}

static const char *s_qcase_str(const qcase_t *c)
{
    static char buf[200];
    snprintf(buf, sizeof buf, "M=%d N=%d K=%d bits=%d prepack=%d layout=%d out_u8=%d act=%d",
             c->M, c->N, c->K, c->bits, c->prepack, c->layout, c->e.out_u8, c->e.act);
    return buf;
}

static void s_fill_marker(const qcase_t *c, void *Y)
{
    if (c->e.out_u8)
        memset(Y, 0xA5, c->ylen);
    else
        for (size_t i = 0; i < c->ylen; i++)
            ((float *)Y)[i] = NAN;
}

/* Runs bs_qgemm with the current ISA and a pool of `threads`; returns Y (bs_free). */
static void *s_qrun(const qcase_t *c, int threads)
{
    bs_threadpool_t *pool = threads > 1 ? bs_threadpool_new(threads) : NULL;
    ASSERT(threads == 1 || pool);
    bs_qgemm_w_t W = {.N = c->N, .K = c->K, .rows = &c->q};
    void *packed = NULL;
    if (c->prepack == 2) { /* 4-bit panels */
        packed = s_alloc(bs_qgemm_packed4_size(c->N, c->K));
        bs_qgemm_pack4(&c->q, packed);
        W.packed4 = packed;
    } else if (c->prepack) {
        packed = s_alloc(bs_qgemm_packed_size(c->N, c->K));
        bs_qgemm_pack(&c->q, packed);
        W.packed = packed;
    }
    void *scratch = s_alloc(bs_qgemm_scratch_size(c->M, c->N, c->K, threads, c->prepack != 1));
    void *Y = s_alloc(c->ylen * c->esz);
    s_fill_marker(c, Y);
    bs_qgemm(c->M, c->X, c->ldx, &W, &c->e, Y, c->sym, c->syn, scratch, pool);
    bs_free(scratch);
    bs_free(packed);
    bs_threadpool_free(&pool);
    return Y;
}

/* Straight from the math of bs_qkernels.h. */
static void *s_qnaive(const qcase_t *c)
{
    void *Y = s_alloc(c->ylen * c->esz);
    s_fill_marker(c, Y);
    const bs_qgemm_epi_t *e = &c->e;
    for (int m = 0; m < c->M; m++)
        for (int n = 0; n < c->N; n++) {
            int64_t raw = 0;
            for (int k = 0; k < c->K; k++)
                raw += (int64_t)c->X[m * c->ldx + k] * c->codes[(int64_t)n * c->K + k];
            int32_t acc = (int32_t)(uint32_t)(uint64_t)(raw + c->off[n]);
            float v = (float)acc * c->mult[n];
            int64_t at = m * c->sym + n * c->syn;
            if (!e->out_u8) {
                if (e->act == BS_KACT_RELU)
                    v = v < 0.0f ? 0.0f : v;
                else if (e->act == BS_KACT_CLIP)
                    v = v < e->lo ? e->lo : (v > e->hi ? e->hi : v);
                ((float *)Y)[at] = v;
            } else {
                /* NaN (from a non-finite mult) clamps to the lower bound */
                float lo = (float)(e->qlo - e->zo), hi = (float)(e->qhi - e->zo);
                v = isnan(v) || v < lo ? lo : (v > hi ? hi : v);
                ((uint8_t *)Y)[at] = (uint8_t)((int)bs_quant_round(v) + e->zo);
            }
        }
    return Y;
}

/* Bitwise comparison, the marker in the gaps included. */
static void s_qcompare(const qcase_t *c, const void *ref, const void *got, const char *what)
{
    if (memcmp(ref, got, c->ylen * c->esz) == 0)
        return;
    for (size_t i = 0; i < c->ylen; i++) {
        if (memcmp((const char *)ref + i * c->esz, (const char *)got + i * c->esz, c->esz) == 0)
            continue;
        double r = c->e.out_u8 ? ((const uint8_t *)ref)[i] : ((const float *)ref)[i];
        double g = c->e.out_u8 ? ((const uint8_t *)got)[i] : ((const float *)got)[i];
        bs_test_fail(__FILE__, __LINE__, "%s: %s: Y element %zu: expected %.9g, got %.9g",
                     what, s_qcase_str(c), i, r, g);
    }
}

static const int s_Ms[] = {1, 2, 3, 5, 6, 7, 13, 16, 17, 31, 64, 100, 197};
static const int s_Ns[] = {1, 3, 4, 8, 15, 16, 17, 24, 33, 64, 100};
static const int s_Ks[] = {1, 2, 3, 4, 5, 7, 8, 13, 31, 64, 65, 100, 257, 576, 1601};
#define NELEM(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* The i-th case of a fixed pseudo-random family covering every width, output and layout. */
static void s_qcase_pick(qcase_t *c, int i)
{
    int bits = 2 + i % 8; /* 2..8 from rows, "9" = 8-bit prepacked */
    int prepack = bits == 9;
    if (prepack)
        bits = 8;
    if (bits == 4 && (i / 8) % 2) /* every other 4-bit case as 4-bit panels */
        prepack = 2;
    int M = s_Ms[s_randi(0, NELEM(s_Ms) - 1)], N = s_Ns[s_randi(0, NELEM(s_Ns) - 1)];
    int K = s_Ks[s_randi(0, NELEM(s_Ks) - 1)];
    if (K > 1000 && M * N > 2000) /* keep the naive loops quick */
        M = 1 + M % 17;
    s_qcase_init(c, M, N, K, bits, prepack, (i / 8) % 2, (i / 16) % 3, (i / 3) % 3);
}

BS_TEST(qgemm_scalar_matches_naive)
{
    ASSERT_OK(bs_qkernels_select("scalar"));
    for (int i = 0; i < 96; i++) {
        qcase_t c;
        s_qcase_pick(&c, i);
        void *ref = s_qnaive(&c);
        void *got = s_qrun(&c, 1);
        s_qcompare(&c, ref, got, "scalar vs naive");
        bs_free(ref);
        bs_free(got);
        s_qcase_free(&c);
    }
}

/* Shapes that exercise several K blocks and M blocks, and a GEMV over many panels. */
BS_TEST(qgemm_scalar_blocks_match_naive)
{
    ASSERT_OK(bs_qkernels_select("scalar"));
    static const int shapes[][3] = {{400, 5, 3001}, {1, 300, 2000}, {1100, 3, 64}, {2, 1, 4},
                                    {3, 17, 1540}};
    for (int s = 0; s < NELEM(shapes); s++)
        for (int v = 0; v < 5; v++) { /* 8-bit packed, 8-bit rows, 3-bit rows, 4-bit panels */
            qcase_t c;
            s_qcase_init(&c, shapes[s][0], shapes[s][1], shapes[s][2],
                         v < 2 ? 8 : (v == 4 ? 4 : 3), v == 0 ? 1 : (v == 4 ? 2 : 0), v % 2,
                         v % 3, v % 2);
            void *ref = s_qnaive(&c);
            void *got = s_qrun(&c, 1);
            s_qcompare(&c, ref, got, "scalar blocks vs naive");
            bs_free(ref);
            bs_free(got);
            s_qcase_free(&c);
        }
}

BS_TEST(qgemm_isa_matches_scalar)
{
    char isas[8][16];
    int n = s_fast_isas(isas, 8);
    printf("qkernels: %s (default %s)\n", bs_qkernels_available(), bs_qkernels_isa());
    for (int i = 0; i < 160; i++) {
        qcase_t c;
        s_qcase_pick(&c, i);
        ASSERT_OK(bs_qkernels_select("scalar"));
        void *ref = s_qrun(&c, 1);
        for (int t = 0; t < n; t++) {
            ASSERT_OK(bs_qkernels_select(isas[t]));
            void *got = s_qrun(&c, 1);
            s_qcompare(&c, ref, got, isas[t]);
            bs_free(got);
            got = s_qrun(&c, 3);
            s_qcompare(&c, ref, got, isas[t]);
            bs_free(got);
        }
        bs_free(ref);
        s_qcase_free(&c);
    }
}

/* Every M from 1 to 20 against every N from 1 to 40 (every tile and panel tail), and the
 * multi-block shapes, for each ISA. */
BS_TEST(qgemm_isa_tails)
{
    char isas[8][16];
    int n = s_fast_isas(isas, 8);
    for (int M = 1; M <= 20; M++)
        for (int N = 1; N <= 40; N += (N < 20 ? 1 : 7)) {
            qcase_t c;
            int K = s_Ks[(M * 7 + N) % NELEM(s_Ks)];
            int bits = 2 + (M + N) % 7, pp = (M + N) % 5 == 0;
            if (bits == 4 && (M + N) % 2) /* some 4-bit cases as 4-bit panels */
                pp = 2;
            s_qcase_init(&c, M, N, K, bits, pp, N % 2, M % 3, (M + 2 * N) % 3);
            ASSERT_OK(bs_qkernels_select("scalar"));
            void *ref = s_qrun(&c, 1);
            for (int t = 0; t < n; t++) {
                ASSERT_OK(bs_qkernels_select(isas[t]));
                void *got = s_qrun(&c, 1);
                s_qcompare(&c, ref, got, isas[t]);
                bs_free(got);
            }
            bs_free(ref);
            s_qcase_free(&c);
        }
    static const int shapes[][3] = {{400, 37, 3001}, {1, 300, 2000}, {1100, 19, 64},
                                    {1, 33, 1540}, {5, 64, 1568}};
    for (int s = 0; s < NELEM(shapes); s++)
        for (int v = 0; v < 3; v++) { /* 8-bit packed, 5-bit rows, 4-bit panels */
            qcase_t c;
            s_qcase_init(&c, shapes[s][0], shapes[s][1], shapes[s][2], v == 2 ? 4 : (v ? 5 : 8),
                         v == 2 ? 2 : !v, v % 2, 2, v % 2);
            ASSERT_OK(bs_qkernels_select("scalar"));
            void *ref = s_qrun(&c, 1);
            for (int t = 0; t < n; t++) {
                ASSERT_OK(bs_qkernels_select(isas[t]));
                for (int th = 1; th <= 3; th += 2) {
                    void *got = s_qrun(&c, th);
                    s_qcompare(&c, ref, got, isas[t]);
                    bs_free(got);
                }
            }
            bs_free(ref);
            s_qcase_free(&c);
        }
}

/* 4-bit panels (bs_qgemm_pack4): tiles of every row count that reads them in place and
 * more, panel tails, K with an odd number of groups of 4 (a half-used last pair), K not a
 * multiple of 4, and two K blocks, against the naive loops, for every ISA, 1 and 3 threads. */
BS_TEST(qgemm_packed4_matches_naive)
{
    static const int Ms[] = {1, 2, 3, 5, 6, 7, 11, 12, 13, 25};
    static const int Ns[] = {1, 15, 16, 17, 33};
    static const int Ks[] = {1, 4, 5, 8, 12, 13, 31, 100, 1540};
    char isas[8][16];
    int n = s_fast_isas(isas, 8);
    for (int mi = 0; mi < NELEM(Ms); mi++)
        for (int ni = 0; ni < NELEM(Ns); ni++)
            for (int ki = 0; ki < NELEM(Ks); ki++) {
                int i = (mi * NELEM(Ns) + ni) * NELEM(Ks) + ki;
                qcase_t c;
                s_qcase_init(&c, Ms[mi], Ns[ni], Ks[ki], 4, 2, i % 2, i % 3, (i / 2) % 3);
                void *ref = s_qnaive(&c);
                for (int t = -1; t < n; t++) {
                    ASSERT_OK(bs_qkernels_select(t < 0 ? "scalar" : isas[t]));
                    for (int th = 1; th <= 3; th += 2) {
                        if (th == 3 && i % 4)
                            continue;
                        void *got = s_qrun(&c, th);
                        s_qcompare(&c, ref, got, t < 0 ? "scalar" : isas[t]);
                        bs_free(got);
                    }
                }
                bs_free(ref);
                s_qcase_free(&c);
            }
}

/* Special epilogue values: offsets that wrap the int32 sum, zero, negative, huge and
 * non-finite multipliers (NaN through Relu and Clip, infinities through the uint8 clamp). */
BS_TEST(qgemm_epilogue_special_values)
{
    char isas[8][16];
    int n = s_fast_isas(isas, 8);
    static const float mults[] = {0.0f, -0.0f, 1.0f, -0.5f, 0.5f, 1e30f, -1e30f, INFINITY,
                                  -INFINITY, NAN, 1e-30f, 0.25f};
    for (int out_u8 = 0; out_u8 < 2; out_u8++)
        for (int act = 0; act < 3; act++) {
            qcase_t c;
            s_qcase_init(&c, 9, 24, 13, 8, 0, out_u8, act, 0);
            for (int j = 0; j < c.N; j++) {
                c.off[j] = j % 4 == 0 ? INT32_MAX - 1000 : (j % 4 == 1 ? INT32_MIN + 5 : j);
                c.mult[j] = mults[j % NELEM(mults)];
            }
            ASSERT_OK(bs_qkernels_select("scalar"));
            void *ref = s_qrun(&c, 1);
            void *nv = s_qnaive(&c);
            if (out_u8) {
                for (int j = 0; j < c.N; j++)
                    if (isnan(c.mult[j]))
                        ASSERT_EQ(c.e.qlo, ((uint8_t *)ref)[j]);
                s_qcompare(&c, nv, ref, "scalar vs naive");
            } else {
                for (size_t i = 0; i < c.ylen; i++) /* NaN payloads aside */
                    if (isnan(((float *)nv)[i]) && isnan(((float *)ref)[i]))
                        ((float *)nv)[i] = ((float *)ref)[i];
                s_qcompare(&c, nv, ref, "scalar vs naive");
                for (int j = 0; j < c.N; j++)
                    if (isnan(c.mult[j]))
                        ASSERT(isnan(((float *)ref)[j]));
            }
            bs_free(nv);
            for (int t = 0; t < n; t++) {
                ASSERT_OK(bs_qkernels_select(isas[t]));
                void *got = s_qrun(&c, 1);
                /* NaN payloads may differ in sign bit only between scalar and vector units */
                if (!out_u8)
                    for (size_t i = 0; i < c.ylen; i++)
                        if (isnan(((float *)ref)[i]) && isnan(((float *)got)[i]))
                            ((float *)got)[i] = ((float *)ref)[i];
                s_qcompare(&c, ref, got, isas[t]);
                bs_free(got);
            }
            bs_free(ref);
            s_qcase_free(&c);
        }
}

BS_TEST(qgemm_degenerate)
{
    /* K = 0: raw = 0, Y = epilogue(off) */
    int32_t off[3] = {4, -6, 0};
    float mult[3] = {0.5f, 0.5f, 1.0f}, Y[6];
    bs_qgemm_epi_t e = {.off = off, .mult = mult, .act = BS_KACT_RELU};
    bs_qweight_t q = {.bits = 8, .N = 3, .K = 0};
    bs_qgemm_w_t W = {.N = 3, .K = 0, .rows = &q};
    uint8_t X[1] = {0};
    bs_qgemm(2, X, 0, &W, &e, Y, 3, 1, NULL, NULL);
    ASSERT_EQ(2, (int)Y[0]);
    ASSERT_EQ(0, (int)Y[1]);
    ASSERT_EQ(0, (int)Y[5]);
    /* M = 0 and N = 0 touch nothing */
    Y[0] = 7.0f;
    bs_qgemm(0, X, 4, &W, &e, Y, 3, 1, NULL, NULL);
    ASSERT_EQ(7, (int)Y[0]);
}

/* Row sums and every code, for each width. */
BS_TEST(qweight_row_sums)
{
    for (int bits = 2; bits <= 8; bits++) {
        int N = 7, K = 1 + s_randi(0, 3000);
        int8_t *codes = s_alloc((size_t)N * K);
        bs_qweight_t q;
        s_qweight(&q, N, K, bits, codes);
        int32_t sums[7];
        bs_qweight_row_sums(&q, sums);
        for (int n = 0; n < N; n++) {
            int32_t s = 0;
            for (int k = 0; k < K; k++)
                s += codes[n * K + k];
            ASSERT_EQ(s, sums[n]);
        }
        int8_t *got = s_alloc((size_t)N * K);
        bs_qweight_codes(&q, got);
        ASSERT(memcmp(codes, got, (size_t)N * K) == 0);
        bs_free(got);
        bs_qweight_free(&q);
        bs_free(codes);
    }
}

/* ---- quantization --------------------------------------------------------------------- */

static uint8_t s_quant_naive(float x, float scale, int32_t zp)
{
    float v = x / scale;
    if (isnan(v))
        return (uint8_t)zp;
    double r = (double)bs_quant_round(v) + zp;
    return (uint8_t)(r < 0 ? 0 : (r > 255 ? 255 : r));
}

BS_TEST(quantize_u8_values)
{
    static const float xs[] = {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 254.5f, 255.5f,
                               -3.0f, NAN, INFINITY, -INFINITY, 1e30f, -1e30f, 127.49f,
                               -128.5f, 126.5f, 0.0f, -0.0f};
    static const uint8_t zp0[] = {0, 2, 2, 0, 0, 0, 254, 255, 0, 0, 255, 0, 255, 0, 127, 0,
                                  126, 0, 0};
    static const uint8_t zp128[] = {128, 130, 130, 128, 126, 126, 255, 255, 125, 128, 255,
                                    0, 255, 0, 255, 0, 254, 128, 128};
    int n = NELEM(xs);
    char isas[8][16];
    int ni = s_fast_isas(isas, 8);
    for (int t = -1; t < ni; t++) {
        ASSERT_OK(bs_qkernels_select(t < 0 ? "scalar" : isas[t]));
        uint8_t q[32];
        bs_quantize_u8(xs, n, 1.0f, 0, q);
        for (int i = 0; i < n; i++)
            ASSERT_EQ(zp0[i], q[i]);
        bs_quantize_u8(xs, n, 1.0f, 128, q);
        for (int i = 0; i < n; i++)
            ASSERT_EQ(zp128[i], q[i]);
        /* x / scale is a division: 0.3 / 0.1 is 3 (2.9999998 by a reciprocal) */
        float x3 = 0.3f;
        bs_quantize_u8(&x3, 1, 0.1f, 0, q);
        ASSERT_EQ(s_quant_naive(0.3f, 0.1f, 0), q[0]);
    }
}

BS_TEST(quantize_u8_isa_matches_scalar)
{
    char isas[8][16];
    int ni = s_fast_isas(isas, 8);
    for (int rep = 0; rep < 60; rep++) {
        int64_t n = rep < 36 ? rep * 2 + 1 : 5000 + rep;
        float *x = s_alloc(sizeof(float) * (size_t)n);
        float scale = rep % 5 == 0 ? 0.5f : s_randf(0.001f, 0.1f);
        if (rep % 7 == 3) /* a tiny scale: 1 / scale is not a normal float */
            scale = 1e-39f;
        int32_t zp = s_randi(0, 255);
        for (int64_t i = 0; i < n; i++) {
            int r = s_randi(0, 40);
            x[i] = r == 0 ? NAN
                   : r == 1 ? INFINITY
                   : r == 2 ? -INFINITY
                   : r == 3 ? scale * (float)(s_randi(-300, 300) + 0.5)
                            : s_randf(-300.0f, 300.0f) * scale;
            if (r >= 4 && r < 12) { /* a few ulps from a half integer (times scale) */
                float h = scale * ((float)s_randi(-300, 300) + 0.5f);
                for (int u = s_randi(-3, 3); u != 0; u += u > 0 ? -1 : 1)
                    h = nextafterf(h, u > 0 ? INFINITY : -INFINITY);
                x[i] = h;
            }
        }
        uint8_t *ref = s_alloc((size_t)n), *got = s_alloc((size_t)n);
        ASSERT_OK(bs_qkernels_select("scalar"));
        bs_quantize_u8(x, n, scale, zp, ref);
        for (int64_t i = 0; i < n; i++)
            if (ref[i] != s_quant_naive(x[i], scale, zp))
                bs_test_fail(__FILE__, __LINE__, "scalar quantize: x=%.9g scale=%.9g zp=%d: "
                             "expected %d, got %d", (double)x[i], (double)scale, zp,
                             s_quant_naive(x[i], scale, zp), ref[i]);
        for (int t = 0; t < ni; t++) {
            ASSERT_OK(bs_qkernels_select(isas[t]));
            memset(got, 0x5A, (size_t)n);
            bs_quantize_u8(x, n, scale, zp, got);
            for (int64_t i = 0; i < n; i++)
                if (ref[i] != got[i])
                    bs_test_fail(__FILE__, __LINE__, "%s quantize: x=%.9g scale=%.9g zp=%d: "
                                 "expected %d, got %d", isas[t], (double)x[i], (double)scale,
                                 zp, ref[i], got[i]);
        }
        bs_free(x);
        bs_free(ref);
        bs_free(got);
    }
}

/* ---- im2row --------------------------------------------------------------------------- */

/* C, H, W, KH, KW, sh, sw, dh, dw, pt, pl, pb, pr; the last ones wide enough that the
 * depthwise kernels cannot copy the padded plane, and a stride of 3 */
static const int s_geoms[][13] = {
    {3, 9, 9, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},   {4, 8, 37, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
    {5, 11, 13, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1}, {16, 14, 14, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0},
    {7, 10, 33, 1, 1, 2, 2, 1, 1, 0, 0, 0, 0}, {2, 12, 19, 5, 5, 1, 1, 2, 2, 4, 4, 4, 4},
    {3, 17, 23, 7, 7, 2, 2, 1, 1, 3, 3, 3, 3}, {1, 1, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
    {2, 5, 6, 2, 3, 3, 2, 1, 1, 0, 2, 1, 0},   {3, 4, 40, 1, 5, 1, 1, 1, 3, 0, 6, 0, 6},
    {20, 6, 17, 3, 1, 1, 3, 2, 1, 2, 0, 2, 0}, {32, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
    {6, 3, 70, 1, 3, 1, 1, 1, 1, 0, 1, 0, 1},    {2, 9, 40, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1},
    {2, 40, 1100, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1}, {2, 30, 1300, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1},
};

static bs_conv2d_t s_geom(int i)
{
    const int *v = s_geoms[i];
    bs_conv2d_t g = {.C = v[0], .H = v[1], .W = v[2], .KH = v[3], .KW = v[4], .sh = v[5],
                     .sw = v[6], .dh = v[7], .dw = v[8], .pt = v[9], .pl = v[10]};
    g.OH = (g.H + v[9] + v[11] - (g.dh * (g.KH - 1) + 1)) / g.sh + 1;
    g.OW = (g.W + v[10] + v[12] - (g.dw * (g.KW - 1) + 1)) / g.sw + 1;
    return g;
}

/* A random geometry: odd sizes, strides 1 to 3, dilations 1 and 2, asymmetric padding. */
static bs_conv2d_t s_geom_rand(int cmax)
{
    for (;;) {
        bs_conv2d_t g = {.C = s_randi(1, cmax), .H = s_randi(1, 30), .W = s_randi(1, 45),
                         .KH = s_randi(1, 5), .KW = s_randi(1, 5), .sh = s_randi(1, 3),
                         .sw = s_randi(1, 3), .dh = s_randi(1, 2), .dw = s_randi(1, 2),
                         .pt = s_randi(0, 3), .pl = s_randi(0, 3)};
        int pb = s_randi(0, 3), pr = s_randi(0, 3);
        int eh = g.H + g.pt + pb - (g.dh * (g.KH - 1) + 1);
        int ew = g.W + g.pl + pr - (g.dw * (g.KW - 1) + 1);
        if (eh < 0 || ew < 0)
            continue;
        g.OH = eh / g.sh + 1;
        g.OW = ew / g.sw + 1;
        return g;
    }
}

/* Geometry i: the fixed list, then random ones. */
static bs_conv2d_t s_geom_at(int i, int cmax)
{
    return i < NELEM(s_geoms) ? s_geom(i) : s_geom_rand(cmax);
}

static const char *s_geom_str(const bs_conv2d_t *g)
{
    static char buf[160];
    snprintf(buf, sizeof buf, "C=%d H=%d W=%d K=%dx%d s=%d,%d d=%d,%d p=%d,%d out=%dx%d", g->C,
             g->H, g->W, g->KH, g->KW, g->sh, g->sw, g->dh, g->dw, g->pt, g->pl, g->OH, g->OW);
    return buf;
}

BS_TEST(im2row_matches_naive)
{
    char isas[8][16];
    int ni = s_fast_isas(isas, 8);
    for (int gi = 0; gi < NELEM(s_geoms); gi++)
        for (int extra = 0; extra <= 9; extra += 9) {
            bs_conv2d_t g = s_geom(gi);
            int64_t K = (int64_t)g.C * g.KH * g.KW, P = (int64_t)g.OH * g.OW;
            int64_t ldr = BS_QK_PAD(K) + extra;
            uint8_t *x = s_randbytes((size_t)g.C * g.H * g.W);
            uint8_t pad = (uint8_t)s_randi(0, 255);
            uint8_t *ref = s_alloc((size_t)(P * ldr));
            memset(ref, 0, (size_t)(P * ldr));
            for (int oh = 0; oh < g.OH; oh++)
                for (int ow = 0; ow < g.OW; ow++)
                    for (int c = 0; c < g.C; c++)
                        for (int kh = 0; kh < g.KH; kh++)
                            for (int kw = 0; kw < g.KW; kw++) {
                                int ih = oh * g.sh + kh * g.dh - g.pt;
                                int iw = ow * g.sw + kw * g.dw - g.pl;
                                int in = ih >= 0 && ih < g.H && iw >= 0 && iw < g.W;
                                ref[(oh * g.OW + ow) * ldr + (c * g.KH + kh) * g.KW + kw] =
                                    in ? x[(c * g.H + ih) * g.W + iw] : pad;
                            }
            uint8_t *got = s_alloc((size_t)(P * ldr));
            for (int t = -1; t < ni; t++) {
                ASSERT_OK(bs_qkernels_select(t < 0 ? "scalar" : isas[t]));
                memset(got, 0xEE, (size_t)(P * ldr));
                bs_im2row_u8(&g, x, pad, got, ldr);
                for (int64_t i = 0; i < P * ldr; i++)
                    if (ref[i] != got[i])
                        bs_test_fail(__FILE__, __LINE__, "%s im2row geometry %d: row %lld byte "
                                     "%lld: expected %d, got %d", t < 0 ? "scalar" : isas[t],
                                     gi, (long long)(i / ldr), (long long)(i % ldr), ref[i],
                                     got[i]);
            }
            bs_free(x);
            bs_free(ref);
            bs_free(got);
        }
}

/* ---- depthwise ------------------------------------------------------------------------ */

BS_TEST(depthwise_matches_naive)
{
    char isas[8][16];
    int ni = s_fast_isas(isas, 8);
    for (int gi = 0; gi < NELEM(s_geoms) + 40; gi++)
        for (int out_u8 = 0; out_u8 < 2; out_u8++) {
            bs_conv2d_t g = s_geom_at(gi, 40);
            int C = g.C, T = g.KH * g.KW;
            int64_t P = (int64_t)g.OH * g.OW;
            uint8_t *x = s_randbytes((size_t)C * g.H * g.W);
            int8_t *w = s_alloc((size_t)C * T);
            for (int i = 0; i < C * T; i++)
                w[i] = (int8_t)s_randi(-127, 127);
            int32_t zx = s_randi(0, 255);
            int32_t *off = s_alloc(sizeof(int32_t) * (size_t)C);
            float *mult = s_alloc(sizeof(float) * (size_t)C);
            double sd = 10700.0 * sqrt((double)T);
            for (int c = 0; c < C; c++) {
                off[c] = s_randi(-(int)sd, (int)sd);
                mult[c] = c % 2 ? (float)(64.0 / sd) : ldexpf(1.0f, (int)lround(log2(64 / sd)));
            }
            int act = gi % 3;
            bs_qgemm_epi_t e = {.off = off, .mult = mult, .out_u8 = out_u8, .act = act,
                                .lo = -20.0f, .hi = 30.0f, .zo = s_randi(0, 255), .qhi = 255};
            if (act == BS_KACT_RELU)
                e.qlo = e.zo;
            else if (act == BS_KACT_CLIP)
                e.qlo = 17, e.qhi = 201;
            size_t esz = out_u8 ? 1 : sizeof(float), bytes = (size_t)C * (size_t)P * esz;
            char *ref = s_alloc(bytes), *got = s_alloc(bytes);
            for (int c = 0; c < C; c++)
                for (int oh = 0; oh < g.OH; oh++)
                    for (int ow = 0; ow < g.OW; ow++) {
                        int64_t raw = 0;
                        for (int kh = 0; kh < g.KH; kh++)
                            for (int kw = 0; kw < g.KW; kw++) {
                                int ih = oh * g.sh + kh * g.dh - g.pt;
                                int iw = ow * g.sw + kw * g.dw - g.pl;
                                if (ih >= 0 && ih < g.H && iw >= 0 && iw < g.W)
                                    raw += (int64_t)(x[(c * g.H + ih) * g.W + iw] - zx) *
                                           w[c * T + kh * g.KW + kw];
                            }
                        float v = (float)(int32_t)(raw + off[c]) * mult[c];
                        int64_t at = c * P + oh * g.OW + ow;
                        if (out_u8) {
                            float lo = (float)(e.qlo - e.zo), hi = (float)(e.qhi - e.zo);
                            v = v < lo ? lo : (v > hi ? hi : v);
                            ((uint8_t *)ref)[at] = (uint8_t)((int)bs_quant_round(v) + e.zo);
                        } else {
                            if (act == BS_KACT_RELU)
                                v = v < 0 ? 0.0f : v;
                            else if (act == BS_KACT_CLIP)
                                v = v < e.lo ? e.lo : (v > e.hi ? e.hi : v);
                            ((float *)ref)[at] = v;
                        }
                    }
            bs_threadpool_t *pool = bs_threadpool_new(3);
            ASSERT(pool);
            for (int t = -1; t < ni; t++)
                for (int th = 0; th < 2; th++) {
                    ASSERT_OK(bs_qkernels_select(t < 0 ? "scalar" : isas[t]));
                    memset(got, 0xEE, bytes);
                    void *scr = s_alloc(bs_qconv_depthwise_scratch(&g, th ? 3 : 1));
                    bs_qconv_depthwise(&g, x, zx, w, &e, got, scr, th ? pool : NULL);
                    bs_free(scr);
                    if (memcmp(ref, got, bytes) != 0)
                        bs_test_fail(__FILE__, __LINE__, "%s depthwise geometry %d (%s) out_u8 "
                                     "%d threads %d differs from the naive sum",
                                     t < 0 ? "scalar" : isas[t], gi, s_geom_str(&g), out_u8,
                                     th ? 3 : 1);
                }
            bs_threadpool_free(&pool);
            bs_free(x);
            bs_free(w);
            bs_free(off);
            bs_free(mult);
            bs_free(ref);
            bs_free(got);
        }
}

/* ---- NCHW convolution ----------------------------------------------------------------- */

/* One convolution of G groups, the way the conv op runs it: per group, bs_qconv2d on the
 * group's input planes, its own weight (rows of `bits`, or 8-bit prepacked) and its slice of
 * the epilogue, into its output planes. */
typedef struct cvcase {
    bs_conv2d_t g;            /* one group's geometry (g.C = channels per group) */
    int G, Ng, bits, prepack;
    uint8_t *x, pad;          /* G * g.C input planes */
    int8_t *codes;            /* G * Ng rows of K */
    bs_qweight_t q[3];        /* per group */
    qcase_t ep;               /* off / mult / epilogue for G * Ng channels (ep.N) */
    size_t ylen;
} cvcase_t;

static void s_cvcase_init(cvcase_t *c, bs_conv2d_t g, int G, int Ng, int bits, int prepack,
                          int out_u8, int act)
{
    memset(c, 0, sizeof *c);
    c->g = g, c->G = G, c->Ng = Ng, c->bits = bits, c->prepack = prepack;
    int K = g.C * g.KH * g.KW;
    c->x = s_randbytes((size_t)G * g.C * g.H * g.W);
    c->pad = (uint8_t)s_randi(0, 255);
    c->codes = s_alloc((size_t)G * Ng * K);
    for (int grp = 0; grp < G; grp++)
        s_qweight(&c->q[grp], Ng, K, bits, c->codes + (size_t)grp * Ng * K);
    /* the epilogue terms of a 1-row GEMM of G * Ng columns and this K */
    s_qcase_init(&c->ep, 1, G * Ng, K, bits, 0, out_u8, act, 0);
    c->ylen = (size_t)G * Ng * g.OH * g.OW;
}

static void s_cvcase_free(cvcase_t *c)
{
    bs_free(c->x);
    bs_free(c->codes);
    for (int grp = 0; grp < c->G; grp++)
        bs_qweight_free(&c->q[grp]);
    s_qcase_free(&c->ep);
}

static const char *s_cvcase_str(const cvcase_t *c)
{
    static char buf[320];
    snprintf(buf, sizeof buf, "%s G=%d N=%d bits=%d prepack=%d out_u8=%d act=%d",
             s_geom_str(&c->g), c->G, c->Ng, c->bits, c->prepack, c->ep.e.out_u8, c->ep.e.act);
    return buf;
}

/* The epilogue of one raw sum, straight from the math, into Y[at]. */
static void s_epi_naive(const bs_qgemm_epi_t *e, int64_t raw, int32_t off, float mult, void *Y,
                        int64_t at)
{
    int32_t acc = (int32_t)(uint32_t)(uint64_t)(raw + off);
    float v = (float)acc * mult;
    if (!e->out_u8) {
        if (e->act == BS_KACT_RELU)
            v = v < 0.0f ? 0.0f : v;
        else if (e->act == BS_KACT_CLIP)
            v = v < e->lo ? e->lo : (v > e->hi ? e->hi : v);
        ((float *)Y)[at] = v;
    } else {
        float lo = (float)(e->qlo - e->zo), hi = (float)(e->qhi - e->zo);
        v = isnan(v) || v < lo ? lo : (v > hi ? hi : v);
        ((uint8_t *)Y)[at] = (uint8_t)((int)bs_quant_round(v) + e->zo);
    }
}

static void *s_cvnaive(const cvcase_t *c)
{
    const bs_conv2d_t *g = &c->g;
    int K = g->C * g->KH * g->KW;
    int64_t P = (int64_t)g->OH * g->OW;
    void *Y = s_alloc(c->ylen * c->ep.esz);
    for (int grp = 0; grp < c->G; grp++)
        for (int n = 0; n < c->Ng; n++)
            for (int oh = 0; oh < g->OH; oh++)
                for (int ow = 0; ow < g->OW; ow++) {
                    int64_t raw = 0;
                    const int8_t *w = c->codes + ((int64_t)grp * c->Ng + n) * K;
                    for (int ch = 0; ch < g->C; ch++)
                        for (int kh = 0; kh < g->KH; kh++)
                            for (int kw = 0; kw < g->KW; kw++) {
                                int ih = oh * g->sh + kh * g->dh - g->pt;
                                int iw = ow * g->sw + kw * g->dw - g->pl;
                                int in = ih >= 0 && ih < g->H && iw >= 0 && iw < g->W;
                                int xv = in ? c->x[(((int64_t)grp * g->C + ch) * g->H + ih) *
                                                       g->W + iw]
                                            : c->pad;
                                raw += (int64_t)xv * w[(ch * g->KH + kh) * g->KW + kw];
                            }
                    int nn = grp * c->Ng + n;
                    s_epi_naive(&c->ep.e, raw, c->ep.off[nn], c->ep.mult[nn], Y,
                                nn * P + oh * g->OW + ow);
                }
    return Y;
}

/* bs_qconv2d group by group with the current ISA and `threads`; returns Y (bs_free). */
static void *s_cvrun(const cvcase_t *c, int threads)
{
    const bs_conv2d_t *g = &c->g;
    int K = g->C * g->KH * g->KW;
    int64_t P = (int64_t)g->OH * g->OW;
    bs_threadpool_t *pool = threads > 1 ? bs_threadpool_new(threads) : NULL;
    ASSERT(threads == 1 || pool);
    size_t ss = bs_qconv2d_scratch(g, c->Ng, threads, c->prepack != 1);
    ASSERT(ss > 0);
    void *scratch = s_alloc(ss);
    void *Y = s_alloc(c->ylen * c->ep.esz);
    memset(Y, 0xA5, c->ylen * c->ep.esz);
    for (int grp = 0; grp < c->G; grp++) {
        bs_qgemm_w_t W = {.N = c->Ng, .K = K, .rows = &c->q[grp]};
        void *packed = NULL;
        if (c->prepack == 1) {
            packed = s_alloc(bs_qgemm_packed_size(c->Ng, K));
            bs_qgemm_pack(&c->q[grp], packed);
            W.packed = packed;
        } else if (c->prepack == 2) { /* 4-bit panels */
            packed = s_alloc(bs_qgemm_packed4_size(c->Ng, K));
            bs_qgemm_pack4(&c->q[grp], packed);
            W.packed4 = packed;
        }
        bs_qgemm_epi_t e = c->ep.e;
        e.off += grp * c->Ng;
        e.mult += grp * c->Ng;
        bs_qconv2d(g, c->x + (size_t)grp * g->C * g->H * g->W, c->pad, &W, &e,
                   (char *)Y + (size_t)((int64_t)grp * c->Ng * P) * c->ep.esz, scratch, pool);
        bs_free(packed);
    }
    bs_free(scratch);
    bs_threadpool_free(&pool);
    return Y;
}

static void s_cvcompare(const cvcase_t *c, const void *ref, const void *got, const char *what)
{
    if (memcmp(ref, got, c->ylen * c->ep.esz) == 0)
        return;
    int64_t P = (int64_t)c->g.OH * c->g.OW;
    for (size_t i = 0; i < c->ylen; i++) {
        size_t esz = c->ep.esz;
        if (memcmp((const char *)ref + i * esz, (const char *)got + i * esz, esz) == 0)
            continue;
        double r = esz == 1 ? ((const uint8_t *)ref)[i] : ((const float *)ref)[i];
        double v = esz == 1 ? ((const uint8_t *)got)[i] : ((const float *)got)[i];
        bs_test_fail(__FILE__, __LINE__, "%s: %s: channel %lld position %lld: expected %.9g, "
                     "got %.9g", what, s_cvcase_str(c), (long long)(i / (size_t)P),
                     (long long)(i % (size_t)P), r, v);
    }
}

/* Case i: the fixed geometries, then random ones; every width from rows, 8-bit prepacked and
 * 4-bit panels, float and uint8 outputs, each activation, 1 to 3 groups. */
static void s_cvcase_pick(cvcase_t *c, int i)
{
    bs_conv2d_t g = s_geom_at(i % (NELEM(s_geoms) + 60), 24);
    int bits = 2 + i % 8, prepack = bits == 9;
    bits = prepack ? 8 : bits;
    if (bits == 4 && (i / 8) % 2)
        prepack = 2;
    int G = 1 + (i / 5) % 3;
    if (g.C * g.H * g.W > 20000)
        G = 1;
    int Ng = s_randi(1, i % 4 == 0 ? 40 : 20);
    s_cvcase_init(c, g, G, Ng, bits, prepack, (i / 2) % 2, (i / 3) % 3);
}

BS_TEST(qconv2d_scalar_matches_naive)
{
    ASSERT_OK(bs_qkernels_select("scalar"));
    for (int i = 0; i < NELEM(s_geoms) + 60; i++) {
        cvcase_t c;
        s_cvcase_pick(&c, i);
        void *ref = s_cvnaive(&c);
        void *got = s_cvrun(&c, 1);
        s_cvcompare(&c, ref, got, "scalar vs naive");
        bs_free(ref);
        bs_free(got);
        s_cvcase_free(&c);
    }
}

BS_TEST(qconv2d_isa_matches_scalar)
{
    char isas[8][16];
    int n = s_fast_isas(isas, 8);
    for (int i = 0; i < 2 * (NELEM(s_geoms) + 60); i++) {
        cvcase_t c;
        s_cvcase_pick(&c, i);
        ASSERT_OK(bs_qkernels_select("scalar"));
        void *ref = s_cvrun(&c, 1);
        for (int t = 0; t < n; t++) {
            ASSERT_OK(bs_qkernels_select(isas[t]));
            for (int th = 1; th <= 3; th += 2) {
                void *got = s_cvrun(&c, th);
                s_cvcompare(&c, ref, got, isas[t]);
                bs_free(got);
            }
        }
        bs_free(ref);
        s_cvcase_free(&c);
    }
}

/* Convolutions shaped like real layers (1x1 over many channels, 3x3 stride 1 and 2, a 5x5
 * with wide K, more blocks than one work item holds, grids of one block with an odd number
 * of groups of 4 taps) and every output-channel count around the panel and tile sizes,
 * against im2row + bs_qgemm, for each ISA. */
BS_TEST(qconv2d_matches_im2row_qgemm)
{
    static const int shapes[][7] = {
        /* C, H, W, k, stride, pad, N */
        {96, 24, 24, 1, 1, 0, 16}, {16, 48, 48, 1, 1, 0, 48}, {160, 3, 3, 1, 1, 0, 100},
        {3, 96, 96, 3, 2, 1, 16},  {32, 14, 14, 3, 1, 1, 33}, {16, 14, 14, 5, 1, 2, 32},
        {64, 7, 9, 3, 2, 1, 17},   {1, 28, 28, 5, 1, 2, 16},  {700, 5, 5, 3, 1, 1, 9},
        {33, 3, 3, 1, 1, 0, 20},   {12, 2, 2, 3, 1, 1, 17}, /* one block, odd groups of 4 */
    };
    char isas[8][16];
    int ni = s_fast_isas(isas, 8);
    for (int s = 0; s < NELEM(shapes); s++)
        for (int v = 0; v < 4; v++) {
            const int *sh = shapes[s];
            bs_conv2d_t g = {.C = sh[0], .H = sh[1], .W = sh[2], .KH = sh[3], .KW = sh[3],
                             .sh = sh[4], .sw = sh[4], .dh = 1, .dw = 1, .pt = sh[5],
                             .pl = sh[5]};
            g.OH = (g.H + 2 * sh[5] - g.KH) / g.sh + 1;
            g.OW = (g.W + 2 * sh[5] - g.KW) / g.sw + 1;
            int N = sh[6] + (v == 2 ? 7 : 0);
            cvcase_t c; /* v: 8-bit packed, 4-bit rows, 8-bit packed, 4-bit panels */
            s_cvcase_init(&c, g, 1, N, v % 2 ? 4 : 8, v == 3 ? 2 : v != 1, v % 2, (s + v) % 3);
            int K = g.C * g.KH * g.KW;
            int64_t P = (int64_t)g.OH * g.OW, ldr = BS_QK_PAD(K);
            for (int t = -1; t < ni; t++) {
                ASSERT_OK(bs_qkernels_select(t < 0 ? "scalar" : isas[t]));
                /* the reference: the window matrix and the GEMM into planes */
                uint8_t *rows = s_alloc((size_t)(P * ldr));
                bs_im2row_u8(&g, c.x, c.pad, rows, ldr);
                bs_qgemm_w_t W = {.N = N, .K = K, .rows = &c.q[0]};
                void *packed = NULL;
                if (c.prepack == 1) {
                    packed = s_alloc(bs_qgemm_packed_size(N, K));
                    bs_qgemm_pack(&c.q[0], packed);
                    W.packed = packed;
                }
                void *scr = s_alloc(bs_qgemm_scratch_size((int)P, N, K, 1, c.prepack != 1));
                void *ref = s_alloc(c.ylen * c.ep.esz);
                bs_qgemm((int)P, rows, ldr, &W, &c.ep.e, ref, 1, P, scr, NULL);
                for (int th = 1; th <= 3; th += 2) {
                    void *got = s_cvrun(&c, th);
                    s_cvcompare(&c, ref, got, t < 0 ? "scalar" : isas[t]);
                    bs_free(got);
                }
                bs_free(ref);
                bs_free(scr);
                bs_free(packed);
                bs_free(rows);
            }
            s_cvcase_free(&c);
        }
}

/* ---- dispatch and throughput ---------------------------------------------------------- */

BS_TEST(qkernels_dispatch)
{
    const char *def = bs_qkernels_isa();
    ASSERT_CONTAINS(bs_qkernels_available(), "scalar");
    ASSERT_CONTAINS(bs_qkernels_available(), def);
    ASSERT_EQ(BS_EUNSUPPORTED, bs_qkernels_select("no-such-isa"));
    ASSERT_EQ(BS_EINVAL, bs_qkernels_select(NULL));
    ASSERT_OK(bs_qkernels_select("scalar"));
    ASSERT_STR_EQ("scalar", bs_qkernels_isa());
    ASSERT_OK(bs_qkernels_select(def));
    ASSERT_STR_EQ(def, bs_qkernels_isa());
}

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Prints figures only: a conv-shaped GEMM (N = 64 output planes, K = 576 = 64 x 3 x 3,
 * M = 196 = 14 x 14 positions, uint8 output), one thread, the weights prepacked 8-bit and
 * given as 4-bit rows, beside the float GEMM on the same shape. */
BS_TEST(qgemm_throughput)
{
    enum { M = 196, N = 64, K = 576 };
    char isas[8][16];
    int ni = s_fast_isas(isas, 8);
    qcase_t c4;
    s_qcase_init(&c4, M, N, K, 4, 0, 1, BS_KACT_RELU, 1);
    double ops = 2.0 * M * N * K;
    for (int t = -1; t < ni; t++)
        for (int v = 0; v < 2; v++) {
            const char *isa = t < 0 ? "scalar" : isas[t];
            ASSERT_OK(bs_qkernels_select(isa));
            qcase_t c;
            s_qcase_init(&c, M, N, K, 8, 1, 1, BS_KACT_RELU, 1);
            const qcase_t *cc = v ? &c4 : &c;
            bs_qgemm_w_t W = {.N = N, .K = K, .rows = &cc->q};
            void *packed = NULL;
            if (!v) {
                packed = s_alloc(bs_qgemm_packed_size(N, K));
                bs_qgemm_pack(&c.q, packed);
                W.packed = packed;
            }
            void *scratch = s_alloc(bs_qgemm_scratch_size(M, N, K, 1, v));
            uint8_t *Y = s_alloc((size_t)M * N);
            double best = 1e30; /* the fastest of several samples: the least disturbed */
            for (int sample = 0; sample < 7; sample++) {
                int reps = 0;
                double t0 = s_now(), t1;
                do {
                    bs_qgemm(M, cc->X, cc->ldx, &W, &cc->e, Y, 1, M, scratch, NULL);
                    reps++;
                    t1 = s_now();
                } while (t1 - t0 < 0.02);
                best = (t1 - t0) / reps < best ? (t1 - t0) / reps : best;
            }
            printf("qgemm %-10s %s: %.1f GOPS\n", isa, v ? "w4 rows  " : "w8 packed",
                   ops / best * 1e-9);
            bs_free(Y);
            bs_free(scratch);
            bs_free(packed);
            s_qcase_free(&c);
        }
    s_qcase_free(&c4);
    /* the float GEMM on the same shape: X read transposed (im2col), Y planes */
    float *X = s_alloc(sizeof(float) * M * K), *Wf = s_alloc(sizeof(float) * N * K);
    float *Y = s_alloc(sizeof(float) * M * N);
    for (int i = 0; i < M * K; i++)
        X[i] = s_randf(-1, 1);
    for (int i = 0; i < N * K; i++)
        Wf[i] = s_randf(-1, 1);
    void *wp = s_alloc(bs_gemm_packed_size(N, K));
    bs_gemm_pack(Wf, K, 1, N, K, wp);
    void *scratch = s_alloc(bs_gemm_scratch_size(M, N, K, 1));
    double best = 1e30;
    for (int sample = 0; sample < 7; sample++) {
        int reps = 0;
        double t0 = s_now(), t1;
        do {
            bs_gemm(M, N, K, X, 1, M, wp, NULL, Y, 1, M, BS_KACT_RELU, 0, 0, scratch, NULL);
            reps++;
            t1 = s_now();
        } while (t1 - t0 < 0.02);
        best = (t1 - t0) / reps < best ? (t1 - t0) / reps : best;
    }
    printf("gemm  f32 %-10s: %.1f GFLOP/s\n", bs_kernels_isa(), ops / best * 1e-9);
    bs_free(X);
    bs_free(Wf);
    bs_free(Y);
    bs_free(wp);
    bs_free(scratch);
}

#define TESTS(X)                                                                                 \
    X(qkernels_dispatch)                                                                         \
    X(qgemm_scalar_matches_naive)                                                                \
    X(qgemm_scalar_blocks_match_naive)                                                           \
    X(qgemm_isa_matches_scalar)                                                                  \
    X(qgemm_isa_tails)                                                                           \
    X(qgemm_packed4_matches_naive)                                                               \
    X(qgemm_epilogue_special_values)                                                             \
    X(qgemm_degenerate)                                                                          \
    X(qweight_row_sums)                                                                          \
    X(quantize_u8_values)                                                                        \
    X(quantize_u8_isa_matches_scalar)                                                            \
    X(im2row_matches_naive)                                                                      \
    X(depthwise_matches_naive)                                                                   \
    X(qconv2d_scalar_matches_naive)                                                              \
    X(qconv2d_isa_matches_scalar)                                                                \
    X(qconv2d_matches_im2row_qgemm)                                                              \
    X(qgemm_throughput)

BS_TEST_MAIN(TESTS)

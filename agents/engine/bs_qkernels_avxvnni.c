/*
 * bs_qkernels_avxvnni.c - the AVX-VNNI kernels (x86-64); the only file compiled with
 * -mavxvnni (with -mavx2, and no -mfma). Chosen at run time by bs_qkernels.c when cpuid
 * reports AVX-VNNI (leaf 7, subleaf 1, EAX bit 4): the VEX-encoded vpdpbusd on ymm.
 *
 * vpdpbusd multiplies 4 unsigned bytes by 4 signed bytes in each 32-bit lane and adds the
 * four products to the lane, with no intermediate saturation: exactly the sum the reference
 * computes. The panel layout (kq = 4, bs_qkernels_impl.h) holds, per group of 4 k, 16 columns
 * of 4 codes: two 32-byte loads. Each X row's 4 bytes are broadcast to every lane.
 *
 * GEMM tile 6 x 16: 12 accumulators, two panel loads and six broadcasts per group of 4 k,
 * twelve vpdpbusd (16 of the 16 ymm registers at most). Shorter tiles are the same code
 * specialised at compile time on their row count. On 4-bit panels (tile4) 64 bytes hold two
 * groups, whose codes times 16 are a mask and a shift and a mask away, so the same vpdpbusd
 * reads them (sums shifted back at the end).
 *
 * bs_qconv2d tile: 6 output channels by one block (two ymm of 8 positions), two vpdpbusd per
 * channel per group of 4 taps with the channel's word broadcast. Depthwise: the batch's
 * copies and words first, then per channel two X4-like vectors per block built by a word
 * permute and a byte shuffle from one load per tap group, and vpdpbusd. The epilogues,
 * quantization, im2row, X4 and the other helpers are the AVX2 table's
 * (bs_qkernels_avx2.c).
 */
#include <immintrin.h>
#include <string.h>

#include "bs_qkernels_impl.h"

#define S_INLINE static inline __attribute__((always_inline))

enum { V_NR = 16, V_MR = 6 };

S_INLINE __m256i s_bcast4(const uint8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

S_INLINE void s_store_acc(int32_t *acc, __m256i v, int accumulate)
{
    if (accumulate)
        v = _mm256_add_epi32(v, _mm256_loadu_si256((const __m256i *)acc));
    _mm256_storeu_si256((__m256i *)acc, v);
}

/* Written out row by row (the compiler keeps arrays of accumulators in memory); MR is a
 * constant after inlining, so the rows past it vanish. */
#define S_ROW_INIT(i)                                                                            \
    __m256i c##i##0 = _mm256_setzero_si256(), c##i##1 = _mm256_setzero_si256();                  \
    const uint8_t *x##i = x + (MR > i ? i : 0) * ldx;
#define S_ROW_STEP(i)                                                                            \
    if (MR > i) {                                                                                \
        __m256i xb = s_bcast4(x##i + 4 * g);                                                     \
        c##i##0 = _mm256_dpbusd_avx_epi32(c##i##0, xb, w0);                                      \
        c##i##1 = _mm256_dpbusd_avx_epi32(c##i##1, xb, w1);                                      \
    }
#define S_ROW_STORE(i)                                                                           \
    if (MR > i) {                                                                                \
        s_store_acc(acc + i * V_NR, c##i##0, accumulate);                                        \
        s_store_acc(acc + i * V_NR + 8, c##i##1, accumulate);                                    \
    }

S_INLINE void s_tile_n(int MR, int kg, const uint8_t *x, int64_t ldx, const int8_t *wp,
                       int32_t *acc, int accumulate)
{
    S_ROW_INIT(0) S_ROW_INIT(1) S_ROW_INIT(2) S_ROW_INIT(3) S_ROW_INIT(4) S_ROW_INIT(5)
    for (int g = 0; g < kg; g++) {
        __m256i w0 = _mm256_loadu_si256((const __m256i *)(wp + (int64_t)g * 64));
        __m256i w1 = _mm256_loadu_si256((const __m256i *)(wp + (int64_t)g * 64 + 32));
        S_ROW_STEP(0) S_ROW_STEP(1) S_ROW_STEP(2) S_ROW_STEP(3) S_ROW_STEP(4) S_ROW_STEP(5)
    }
    S_ROW_STORE(0) S_ROW_STORE(1) S_ROW_STORE(2) S_ROW_STORE(3) S_ROW_STORE(4) S_ROW_STORE(5)
}

static void s_tile_avxvnni(int kg, const uint8_t *x, int64_t ldx, int mv, const int8_t *wp,
                           int32_t *acc, int accumulate)
{
    switch (mv) {
    case 1: s_tile_n(1, kg, x, ldx, wp, acc, accumulate); break;
    case 2: s_tile_n(2, kg, x, ldx, wp, acc, accumulate); break;
    case 3: s_tile_n(3, kg, x, ldx, wp, acc, accumulate); break;
    case 4: s_tile_n(4, kg, x, ldx, wp, acc, accumulate); break;
    case 5: s_tile_n(5, kg, x, ldx, wp, acc, accumulate); break;
    default: s_tile_n(6, kg, x, ldx, wp, acc, accumulate); break;
    }
}

/* 4-bit panels, a pair of groups per 64 bytes (bs_qkernels_impl.h): (b << 4) & 0xF0 and
 * b & 0xF0 are 16 times the two groups' codes, read by the same vpdpbusd; the sums are
 * shifted back before they are stored. */
#define S_ROW4_STEP(i, gg, v0, v1)                                                               \
    if (MR > i) {                                                                                \
        __m256i xb = s_bcast4(x##i + 4 * (gg));                                                  \
        c##i##0 = _mm256_dpbusd_avx_epi32(c##i##0, xb, v0);                                      \
        c##i##1 = _mm256_dpbusd_avx_epi32(c##i##1, xb, v1);                                      \
    }
#define S_ROWS4(gg, v0, v1)                                                                      \
    S_ROW4_STEP(0, gg, v0, v1) S_ROW4_STEP(1, gg, v0, v1) S_ROW4_STEP(2, gg, v0, v1)             \
    S_ROW4_STEP(3, gg, v0, v1) S_ROW4_STEP(4, gg, v0, v1) S_ROW4_STEP(5, gg, v0, v1)
#define S_ROW4_STORE(i)                                                                          \
    if (MR > i) {                                                                                \
        s_store_acc(acc + i * V_NR, _mm256_srai_epi32(c##i##0, 4), accumulate);                  \
        s_store_acc(acc + i * V_NR + 8, _mm256_srai_epi32(c##i##1, 4), accumulate);              \
    }

S_INLINE void s_tile4_n(int MR, int kg, const uint8_t *x, int64_t ldx, const uint8_t *wp4,
                        int32_t *acc, int accumulate)
{
    S_ROW_INIT(0) S_ROW_INIT(1) S_ROW_INIT(2) S_ROW_INIT(3) S_ROW_INIT(4) S_ROW_INIT(5)
    const __m256i m = _mm256_set1_epi8((char)0xF0);
    int g = 0;
    for (; g < kg; g += 2) {
        const uint8_t *p = wp4 + (int64_t)g * 32;
        __m256i b0 = _mm256_loadu_si256((const __m256i *)p);
        __m256i b1 = _mm256_loadu_si256((const __m256i *)(p + 32));
        __m256i l0 = _mm256_and_si256(_mm256_slli_epi16(b0, 4), m);
        __m256i l1 = _mm256_and_si256(_mm256_slli_epi16(b1, 4), m);
        S_ROWS4(g, l0, l1)
        if (g + 1 < kg) {
            __m256i h0 = _mm256_and_si256(b0, m), h1 = _mm256_and_si256(b1, m);
            S_ROWS4(g + 1, h0, h1)
        }
    }
    S_ROW4_STORE(0) S_ROW4_STORE(1) S_ROW4_STORE(2) S_ROW4_STORE(3) S_ROW4_STORE(4)
    S_ROW4_STORE(5)
}

static void s_tile4_avxvnni(int kg, const uint8_t *x, int64_t ldx, int mv, const uint8_t *wp4,
                            int32_t *acc, int accumulate)
{
    switch (mv) {
    case 1: s_tile4_n(1, kg, x, ldx, wp4, acc, accumulate); break;
    case 2: s_tile4_n(2, kg, x, ldx, wp4, acc, accumulate); break;
    case 3: s_tile4_n(3, kg, x, ldx, wp4, acc, accumulate); break;
    case 4: s_tile4_n(4, kg, x, ldx, wp4, acc, accumulate); break;
    case 5: s_tile4_n(5, kg, x, ldx, wp4, acc, accumulate); break;
    default: s_tile4_n(6, kg, x, ldx, wp4, acc, accumulate); break;
    }
}

/* ---- NCHW convolution and depthwise ---------------------------------------------------- */

/* Conv tile: MR output channels (rows j0 .. of the panel) by one block (two ymm of 8
 * positions), 2 MR accumulators starting at off, two vpdpbusd per row per group of 4 taps
 * with the row's 4 codes broadcast; the epilogue is the AVX2 table's (bs__qepi16_avx2). */
#define V_CV_INIT(i)                                                                             \
    __m256i a##i##0 = _mm256_set1_epi32(MR > i ? e->off[n0 + i] : 0), a##i##1 = a##i##0;
#define V_CV_ROW(i)                                                                              \
    if (MR > i) {                                                                                \
        int32_t wv;                                                                              \
        memcpy(&wv, w + 4 * i, 4);                                                               \
        __m256i ww = _mm256_set1_epi32(wv);                                                      \
        a##i##0 = _mm256_dpbusd_avx_epi32(a##i##0, x0, ww);                                      \
        a##i##1 = _mm256_dpbusd_avx_epi32(a##i##1, x1, ww);                                      \
    }
#define V_CV_STORE(i)                                                                            \
    if (MR > i) {                                                                                \
        int32_t t[16];                                                                           \
        _mm256_storeu_si256((__m256i *)t, a##i##0);                                              \
        _mm256_storeu_si256((__m256i *)(t + 8), a##i##1);                                        \
        bs__qepi16_avx2(t, e->mult[n0 + i], e, gr, b0, y + (size_t)((int64_t)i * gr->ys) * esz); \
    }

S_INLINE void s_cv_n(int MR, int kg, const uint8_t *x4, const int8_t *wp,
                     const bs_qgemm_epi_t *e, int n0, const bs__qgrid_t *gr, int b0, char *y)
{
    size_t esz = e->out_u8 ? 1 : sizeof(float);
    V_CV_INIT(0) V_CV_INIT(1) V_CV_INIT(2) V_CV_INIT(3) V_CV_INIT(4) V_CV_INIT(5)
    for (int g = 0; g < kg; g++) {
        const int8_t *w = wp + (int64_t)g * V_NR * 4;
        __m256i x0 = _mm256_loadu_si256((const __m256i *)(x4 + (int64_t)g * 64));
        __m256i x1 = _mm256_loadu_si256((const __m256i *)(x4 + (int64_t)g * 64 + 32));
        V_CV_ROW(0) V_CV_ROW(1) V_CV_ROW(2) V_CV_ROW(3) V_CV_ROW(4) V_CV_ROW(5)
    }
    V_CV_STORE(0) V_CV_STORE(1) V_CV_STORE(2) V_CV_STORE(3) V_CV_STORE(4) V_CV_STORE(5)
}

#undef V_CV_INIT
#undef V_CV_ROW
#undef V_CV_STORE

static void s_cvtile_avxvnni(int kg, const uint8_t *x4, int64_t ldb, int nb, const int8_t *wp,
                             int nv, const bs_qgemm_epi_t *e, int n0, const bs__qgrid_t *gr,
                             int b0, void *y)
{
    size_t esz = e->out_u8 ? 1 : sizeof(float);
    (void)ldb, (void)nb; /* one block (cvb = 1) */
    for (int j0 = 0; j0 < nv; j0 += 6) {
        char *yj = (char *)y + (size_t)((int64_t)j0 * gr->ys) * esz;
        const int8_t *w = wp + 4 * j0;
        switch (nv - j0) {
        case 1: s_cv_n(1, kg, x4, w, e, n0 + j0, gr, b0, yj); break;
        case 2: s_cv_n(2, kg, x4, w, e, n0 + j0, gr, b0, yj); break;
        case 3: s_cv_n(3, kg, x4, w, e, n0 + j0, gr, b0, yj); break;
        case 4: s_cv_n(4, kg, x4, w, e, n0 + j0, gr, b0, yj); break;
        case 5: s_cv_n(5, kg, x4, w, e, n0 + j0, gr, b0, yj); break;
        default: s_cv_n(6, kg, x4, w, e, n0 + j0, gr, b0, yj); break;
        }
    }
}

/* Depthwise: every channel's copy and words first (bs__qdw_prep), then per channel 8
 * positions per vector: each lane's 4 window bytes gathered from one load by a word permute
 * (positions 0-3 | 4-7 need bytes 0-6 | 4-10 for stride 1, 0-9 | 8-17 for stride 2) and a
 * byte shuffle, then one vpdpbusd with the group's word. Two blocks (four vectors) at a
 * time. */
static void s_dw_avxvnni(const bs__qdwp_t *d, const uint8_t *x, const int8_t *w, int nch,
                         const int32_t *off, const float *mult, const bs_qgemm_epi_t *e,
                         uint8_t *buf, int32_t *wqb, int fresh, void *y)
{
    int sw = d->sw, ngr = d->ngr;
    if (sw > 2) {
        bs__qdw_ref(d, x, w, nch, off, mult, e, buf, wqb, fresh, y);
        return;
    }
    if (fresh) /* the padding of every copy: the channels only ever write the input's bytes */
        memset(buf, (int)d->zx, (size_t)(d->bufbytes / d->cbytes * d->cbytes));
    const bs__qgrid_t *gr = d->gr;
    const __m256i perm = sw == 1 ? _mm256_setr_epi32(0, 1, 2, 3, 1, 2, 3, 4)
                                 : _mm256_setr_epi32(0, 1, 2, 3, 2, 3, 4, 5);
    const __m256i shf = sw == 1 ? _mm256_setr_epi8(0, 1, 2, 3, 1, 2, 3, 4, 2, 3, 4, 5, 3, 4, 5, 6,
                                                   0, 1, 2, 3, 1, 2, 3, 4, 2, 3, 4, 5, 3, 4, 5, 6)
                                : _mm256_setr_epi8(0, 1, 2, 3, 2, 3, 4, 5, 4, 5, 6, 7, 6, 7, 8, 9,
                                                   0, 1, 2, 3, 2, 3, 4, 5, 4, 5, 6, 7, 6, 7, 8, 9);
    size_t esz = e->out_u8 ? 1 : sizeof(float);
    int64_t step = (int64_t)sw * 8;
    int32_t start[64];
    for (int i0 = 0; i0 < nch; i0 += 64) { /* copies first: their stores settle meanwhile */
        int n = nch - i0 < 64 ? nch - i0 : 64;
        for (int i = 0; i < n; i++)
            start[i] =
                bs__qdw_prep(d, x, w, i0 + i, off[i0 + i], buf, wqb + (int64_t)(i0 + i) * ngr);
        for (int i = 0; i < n; i++) {
            int ci = i0 + i;
            const int32_t *wq = wqb + (int64_t)ci * ngr;
            const uint8_t *xc = buf + ci * d->cbytes;
            char *yc = (char *)y + (size_t)(ci * gr->ys) * esz;
            for (int b = 0; b < gr->nblk; b += 2) {
                __m256i a0 = _mm256_set1_epi32(start[i]), a1 = a0, a2 = a0, a3 = a0;
                int two = gr->nblk - b > 1;
                for (int gi = 0; gi < ngr; gi++) {
                    __m256i ww = _mm256_set1_epi32(wq[gi]);
                    const uint8_t *p = xc + d->goff[gi] + (int64_t)b * 2 * step;
#define V_DW(h, a)                                                                               \
    a = _mm256_dpbusd_avx_epi32(                                                                 \
        a,                                                                                       \
        _mm256_shuffle_epi8(                                                                     \
            _mm256_permutevar8x32_epi32(_mm256_loadu_si256((const __m256i *)(p + h * step)),    \
                                        perm),                                                   \
            shf),                                                                                \
        ww);
                    V_DW(0, a0) V_DW(1, a1)
                    if (two) {
                        V_DW(2, a2) V_DW(3, a3)
                    }
#undef V_DW
                }
                int32_t t[16];
                _mm256_storeu_si256((__m256i *)t, a0);
                _mm256_storeu_si256((__m256i *)(t + 8), a1);
                bs__qepi16_avx2(t, mult[ci], e, gr, b, yc);
                if (two) {
                    _mm256_storeu_si256((__m256i *)t, a2);
                    _mm256_storeu_si256((__m256i *)(t + 8), a3);
                    bs__qepi16_avx2(t, mult[ci], e, gr, b + 1, yc);
                }
            }
        }
    }
}

const bs__qkernels_t bs__qkernels_avxvnni = {
    .name = "avxvnni",
    .nr = V_NR,
    .mr = V_MR,
    .kq = 4,
    .tile = s_tile_avxvnni,
    .epi = bs__qepi_avx2,
    .unpack = bs__qunpack_avx2,
    .quantize = bs__qquant_avx2,
    .im2row = bs__qim2row_avx2,
    .x4 = bs__qx4_avx2,
    .cvtile = s_cvtile_avxvnni,
    .cvb = 1,
    .dw = s_dw_avxvnni,
    .deint2 = bs__qdeint2_avx2,
    .exp4 = bs__qexp4_avx2,
    .tile4 = s_tile4_avxvnni,
};

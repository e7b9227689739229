/*
 * bs_qkernels_avx2.c - AVX2 integer kernels (x86-64); the only file compiled with -mavx2
 * (and no -mfma: nothing here may fuse a multiply with an add). Chosen at run time by
 * bs_qkernels.c when the CPU has AVX2 but no VNNI; the epilogue, weight unpacking,
 * quantization, im2row, the X4 interleave, the stride-2 row split and the 4-bit panel
 * expansion are shared with the AVX-VNNI and AVX512-VNNI tables, whose panels have the same
 * layout.
 *
 * GEMM tile 3 x 16 over panels of 16 columns in groups of 4 k (kq = 4, bs_qkernels_impl.h):
 * per group of 4 k the 64 bytes of the panel are sign-extended to 16 bits (four vectors, each
 * 4 columns x 4 k), the 4 bytes of each X row zero-extended and broadcast to every 64-bit
 * lane, and vpmaddwd sums the products in pairs into 32-bit lanes (exact: a u8 x s8 product
 * fits 16 bits, the sum of two fits 32). Each column thus has two lanes (k0 + k1, k2 + k3);
 * the 12 accumulators are folded with vphaddd only when the tile is stored.
 *
 * Epilogue: 8 columns per vector: vcvtdq2ps, vmulps, then vmaxps / vminps in the operand
 * order that makes them agree with the C comparisons of bs__qepi_f32 / bs__qepi_u8, and
 * vcvtps2dq (round half to even under the default MXCSR) for uint8. Row-major Y stores the
 * vectors; plane Y (sym == 1) takes 8 rows at a time and stores each column's 8 rows as one
 * run: uint8 results are packed to bytes and regrouped with one pshufb and one unpack,
 * float results go through an 8 x 8 transpose. Other strides store lane by lane.
 *
 * Weight unpacking (rows of 8, 4 or 2 bits into panel tiles): 32 codes of a row per vector
 * (nibbles and 2-bit fields sign-extended through pshufb tables), then an 8 x 8 transpose of
 * 32-bit words puts 8 rows' groups of 4 codes side by side. 4-bit panels (bs_qgemm_pack4)
 * expand 32 bytes of a pair of groups per step: the low nibbles are the first group's codes,
 * the high ones (a shift down) the second's.
 *
 * Quantization: 32 floats per step. x * (1 / scale) is within about 2^-23 (relative) of the
 * quotient, so it rounds to the same integer as x / scale wherever it lies farther than 2^-9
 * from a half integer (or beyond +-2048, clamped either way); a vector with a lane that does
 * not (ties, NaN) is divided. Then NaN lanes zeroed, clamped, converted and packed with
 * unsigned saturation.
 *
 * im2row: the window matrix is built in blocks of 16 taps k by 32 outputs ow of one output
 * row: each tap's 32 bytes are one load from the input (stride 1) or the even bytes of a
 * 64-byte load (stride 2) starting at the first output's input byte, the lanes that read
 * padding blended with the padding value; the block is transposed with four rounds of
 * unpacks (two 16 x 16 byte transposes, one per 128-bit lane) and stored as 16-byte pieces
 * of 32 rows. Taps are described 64 at a time, once for every output row. Loads that would
 * leave the input buffer fill their lanes one at a time; strides above 2 use the portable
 * im2row. A 1x1 convolution with stride 1 and no padding is one long output row (the
 * transposition of the input planes).
 *
 * bs_qconv2d (layouts in bs_qkernels_impl.h): X4 is built 32 positions at a time, each
 * source's 32 bytes permuted by words so that the byte and word unpacks (which stay within
 * 128-bit lanes) leave positions in order. The conv tile (4 output channels x one block of
 * 16 positions) has no vpdpbusd: each X4 vector is split into its even and odd bytes as
 * 16-bit values (and, shift), each broadcast weight word into its even and odd codes
 * (sign-extending shifts), and two vpmaddwd give the 4 products' sum per lane, exactly. The
 * epilogue of a block stores whole vectors, or through a buffer the kept lanes.
 *
 * Depthwise: the batch's copies and weight words first (bs__qdw_prep), then per channel 8
 * positions per vector: one load per tap group, a word permute and two byte shuffles give
 * each lane its 4 window bytes as even and odd 16-bit pairs, and vpmaddwd with the group's
 * split word sums them (the same exact emulation of vpdpbusd). Strides above 2 use the
 * portable kernel.
 */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "bs_qkernels_impl.h"

#define S_INLINE static inline __attribute__((always_inline))

enum { A_NR = 16, A_MR = 3 };

/* ---- micro-kernel --------------------------------------------------------------------- */

S_INLINE __m256i s_xbcast(const uint8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_broadcastq_epi64(_mm_cvtepu8_epi16(_mm_cvtsi32_si128(v)));
}

/* Folds the pair lanes of a (columns 0-3) and b (columns 4-7) into columns 0-7. */
S_INLINE __m256i s_fold(__m256i a, __m256i b)
{
    /* hadd: [a01 a23 b01 b23 | a45 a67 b45 b67] = columns [0 1 4 5 | 2 3 6 7] */
    __m256i h = _mm256_hadd_epi32(a, b);
    return _mm256_permute4x64_epi64(h, 0xD8);
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
    __m256i c##i##0 = _mm256_setzero_si256(), c##i##1 = c##i##0, c##i##2 = c##i##0,            \
            c##i##3 = c##i##0, xb##i = c##i##0;                                                  \
    const uint8_t *x##i = x + (MR > i ? i : 0) * ldx;
#define S_ROW_MADD(i, q)                                                                         \
    if (MR > i)                                                                                  \
        c##i##q = _mm256_add_epi32(c##i##q, _mm256_madd_epi16(wq, xb##i));
#define S_COL(q)                                                                                 \
    wq = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(w + 16 * q)));                  \
    S_ROW_MADD(0, q) S_ROW_MADD(1, q) S_ROW_MADD(2, q)
#define S_ROW_STORE(i)                                                                           \
    if (MR > i) {                                                                                \
        s_store_acc(acc + i * A_NR, s_fold(c##i##0, c##i##1), accumulate);                       \
        s_store_acc(acc + i * A_NR + 8, s_fold(c##i##2, c##i##3), accumulate);                   \
    }

S_INLINE void s_tile_n(int MR, int kg, const uint8_t *x, int64_t ldx, const int8_t *wp,
                       int32_t *acc, int accumulate)
{
    S_ROW_INIT(0) S_ROW_INIT(1) S_ROW_INIT(2)
    for (int g = 0; g < kg; g++) {
        const int8_t *w = wp + (int64_t)g * 64;
        __m256i wq;
        xb0 = s_xbcast(x0 + 4 * g);
        if (MR > 1)
            xb1 = s_xbcast(x1 + 4 * g);
        if (MR > 2)
            xb2 = s_xbcast(x2 + 4 * g);
        S_COL(0) S_COL(1) S_COL(2) S_COL(3)
    }
    S_ROW_STORE(0) S_ROW_STORE(1) S_ROW_STORE(2)
}

static void s_tile_avx2(int kg, const uint8_t *x, int64_t ldx, int mv, const int8_t *wp,
                        int32_t *acc, int accumulate)
{
    switch (mv) {
    case 1: s_tile_n(1, kg, x, ldx, wp, acc, accumulate); break;
    case 2: s_tile_n(2, kg, x, ldx, wp, acc, accumulate); break;
    default: s_tile_n(3, kg, x, ldx, wp, acc, accumulate); break;
    }
}

/* ---- epilogue ------------------------------------------------------------------------- */

static const int32_t s_mask_src[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

/* The first n lanes (0..8) set. */
S_INLINE __m256i s_mask(int n)
{
    return _mm256_loadu_si256((const __m256i *)(s_mask_src + 8 - n));
}

/* The epilogue's constants. */
typedef struct s_epc {
    __m256 lo, hi;  /* float: Clip bounds; uint8: qlo - zo, qhi - zo */
    __m256i zo;
    int act, out_u8;
} s_epc_t;

S_INLINE s_epc_t s_epc(const bs_qgemm_epi_t *e)
{
    s_epc_t c;
    c.act = e->act;
    c.out_u8 = e->out_u8;
    if (e->out_u8) {
        c.lo = _mm256_set1_ps((float)(e->qlo - e->zo));
        c.hi = _mm256_set1_ps((float)(e->qhi - e->zo));
    } else {
        c.lo = _mm256_set1_ps(e->lo);
        c.hi = _mm256_set1_ps(e->hi);
    }
    c.zo = _mm256_set1_epi32(e->zo);
    return c;
}

/* Float: bs__qepi_f32. _mm256_max_ps(a, b) is a > b ? a : b; min a < b ? a : b. */
S_INLINE __m256 s_act_f32(__m256 v, const s_epc_t *c)
{
    if (c->act == BS_KACT_RELU)
        return _mm256_max_ps(_mm256_setzero_ps(), v);
    if (c->act == BS_KACT_CLIP)
        return _mm256_min_ps(c->hi, _mm256_max_ps(c->lo, v));
    return v;
}

/* Uint8: bs__qepi_u8, as int32 lanes in [0, 255]. */
S_INLINE __m256i s_act_u8(__m256 v, const s_epc_t *c)
{
    v = _mm256_max_ps(v, c->lo);
    v = _mm256_min_ps(v, c->hi);
    return _mm256_add_epi32(_mm256_cvtps_epi32(v), c->zo);
}

/* 8 int32 lanes in [0, 255] as 8 bytes in the low half. */
S_INLINE __m128i s_pack8(__m256i v)
{
    __m128i w = _mm_packus_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    return _mm_packus_epi16(w, w);
}

S_INLINE __m256 s_value(__m256i raw, __m256i off, __m256 mult)
{
    return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(raw, off)), mult);
}

/* Stores the first n (1..8) results of v at contiguous y. */
S_INLINE void s_store_run(void *y, __m256 v, int n, const s_epc_t *c)
{
    if (c->out_u8) {
        __m128i b = s_pack8(s_act_u8(v, c));
        if (n == 8) {
            _mm_storel_epi64((__m128i *)y, b);
        } else {
            uint8_t t[16];
            _mm_storeu_si128((__m128i *)t, b);
            memcpy(y, t, (size_t)n);
        }
    } else {
        __m256 f = s_act_f32(v, c);
        if (n == 8)
            _mm256_storeu_ps((float *)y, f);
        else
            _mm256_maskstore_ps((float *)y, s_mask(n), f);
    }
}

/* Stores the first n results of v at y, elements s apart. */
S_INLINE void s_store_strided(void *y, int64_t s, __m256 v, int n, const s_epc_t *c)
{
    if (c->out_u8) {
        int32_t t[8];
        _mm256_storeu_si256((__m256i *)t, s_act_u8(v, c));
        for (int l = 0; l < n; l++)
            ((uint8_t *)y)[l * s] = (uint8_t)t[l];
    } else {
        float t[8];
        _mm256_storeu_ps(t, s_act_f32(v, c));
        for (int l = 0; l < n; l++)
            ((float *)y)[l * s] = t[l];
    }
}

/* 8 x 8 transpose of int32 rows r[0..7] (written out: no loop, so r stays in registers). */
S_INLINE void s_transpose8(__m256i r[8])
{
    __m256i a0 = _mm256_unpacklo_epi32(r[0], r[1]), a1 = _mm256_unpackhi_epi32(r[0], r[1]);
    __m256i a2 = _mm256_unpacklo_epi32(r[2], r[3]), a3 = _mm256_unpackhi_epi32(r[2], r[3]);
    __m256i a4 = _mm256_unpacklo_epi32(r[4], r[5]), a5 = _mm256_unpackhi_epi32(r[4], r[5]);
    __m256i a6 = _mm256_unpacklo_epi32(r[6], r[7]), a7 = _mm256_unpackhi_epi32(r[6], r[7]);
    __m256i b0 = _mm256_unpacklo_epi64(a0, a2), b1 = _mm256_unpackhi_epi64(a0, a2);
    __m256i b2 = _mm256_unpacklo_epi64(a1, a3), b3 = _mm256_unpackhi_epi64(a1, a3);
    __m256i b4 = _mm256_unpacklo_epi64(a4, a6), b5 = _mm256_unpackhi_epi64(a4, a6);
    __m256i b6 = _mm256_unpacklo_epi64(a5, a7), b7 = _mm256_unpackhi_epi64(a5, a7);
    r[0] = _mm256_permute2x128_si256(b0, b4, 0x20);
    r[1] = _mm256_permute2x128_si256(b1, b5, 0x20);
    r[2] = _mm256_permute2x128_si256(b2, b6, 0x20);
    r[3] = _mm256_permute2x128_si256(b3, b7, 0x20);
    r[4] = _mm256_permute2x128_si256(b0, b4, 0x31);
    r[5] = _mm256_permute2x128_si256(b1, b5, 0x31);
    r[6] = _mm256_permute2x128_si256(b2, b6, 0x31);
    r[7] = _mm256_permute2x128_si256(b3, b7, 0x31);
}

/* The results of one row vector of sums: uint8 as int32 lanes in [0, 255], or float bits. */
S_INLINE __m256i s_result(__m256i raw, __m256i off, __m256 mult, const s_epc_t *c)
{
    __m256 v = s_value(raw, off, mult);
    if (c->out_u8)
        return s_act_u8(v, c);
    return _mm256_castps_si256(s_act_f32(v, c));
}

/* Stores 8 x 8 results (t[i]: columns 0-7 of row i) to planes syn elements apart: column
 * j's 8 rows at y + j * syn. */
S_INLINE void s_store_planes8(char *y, int64_t syn, __m256i t[8], int out_u8)
{
    if (!out_u8) {
        s_transpose8(t);
        float *f = (float *)y;
#define S_F(j) _mm256_storeu_ps(f + j * syn, _mm256_castsi256_ps(t[j]));
        S_F(0) S_F(1) S_F(2) S_F(3) S_F(4) S_F(5) S_F(6) S_F(7)
#undef S_F
        return;
    }
    /* packed to bytes first: lane halves hold rows 0-3 (or 4-7) x columns 0-3 (4-7) as
     * row * 4 + col; pshufb makes that col * 4 + row, and unpacking the two row halves by
     * 32-bit words gives each column's 8 rows as one 64-bit word */
    const __m256i tr = _mm256_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15,
                                        0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    __m256i b0 = _mm256_packus_epi16(_mm256_packus_epi32(t[0], t[1]),
                                     _mm256_packus_epi32(t[2], t[3]));
    __m256i b1 = _mm256_packus_epi16(_mm256_packus_epi32(t[4], t[5]),
                                     _mm256_packus_epi32(t[6], t[7]));
    b0 = _mm256_shuffle_epi8(b0, tr);
    b1 = _mm256_shuffle_epi8(b1, tr);
    __m256i u0 = _mm256_unpacklo_epi32(b0, b1); /* columns 0, 1 | 4, 5 */
    __m256i u1 = _mm256_unpackhi_epi32(b0, b1); /* columns 2, 3 | 6, 7 */
    __m128i c01 = _mm256_castsi256_si128(u0), c45 = _mm256_extracti128_si256(u0, 1);
    __m128i c23 = _mm256_castsi256_si128(u1), c67 = _mm256_extracti128_si256(u1, 1);
    uint8_t *q = (uint8_t *)y;
    _mm_storel_epi64((__m128i *)q, c01);
    _mm_storeh_pi((__m64 *)(void *)(q + syn), _mm_castsi128_ps(c01));
    _mm_storel_epi64((__m128i *)(q + 2 * syn), c23);
    _mm_storeh_pi((__m64 *)(void *)(q + 3 * syn), _mm_castsi128_ps(c23));
    _mm_storel_epi64((__m128i *)(q + 4 * syn), c45);
    _mm_storeh_pi((__m64 *)(void *)(q + 5 * syn), _mm_castsi128_ps(c45));
    _mm_storel_epi64((__m128i *)(q + 6 * syn), c67);
    _mm_storeh_pi((__m64 *)(void *)(q + 7 * syn), _mm_castsi128_ps(c67));
}

void bs__qepi_avx2(const int32_t *acc, int64_t lda, int mv, int nv, const bs_qgemm_epi_t *e,
                   int n0, void *y, int64_t sym, int64_t syn)
{
    s_epc_t c = s_epc(e);
    int64_t esz = e->out_u8 ? 1 : (int64_t)sizeof(float);
    char *yb = y;
    int planes = sym == 1 && syn != 1 && mv > 1;
    for (int j0 = 0; j0 < nv; j0 += 8) {
        int jn = nv - j0 < 8 ? nv - j0 : 8;
        __m256i m = s_mask(jn);
        __m256i off = _mm256_maskload_epi32(e->off + n0 + j0, m);
        __m256 mult = _mm256_maskload_ps(e->mult + n0 + j0, m);
        if (planes) {
            /* 8 rows at a time, each row's results computed along n, then transposed so
             * that each column's 8 rows are one contiguous store */
            for (int i0 = 0; i0 < mv; i0 += 8) {
                int in = mv - i0 < 8 ? mv - i0 : 8;
                char *yi = yb + ((int64_t)i0 + (int64_t)j0 * syn) * esz;
                __m256i t[8];
                if (in == 8 && jn == 8) {
                    const int32_t *a = acc + i0 * lda + j0;
#define S_T(i) t[i] = s_result(_mm256_loadu_si256((const __m256i *)(a + i * lda)), off, mult, &c);
                    S_T(0) S_T(1) S_T(2) S_T(3) S_T(4) S_T(5) S_T(6) S_T(7)
#undef S_T
                    s_store_planes8(yi, syn, t, c.out_u8);
                    continue;
                }
                int32_t r[8][8];
                for (int i = 0; i < in; i++)
                    _mm256_storeu_si256(
                        (__m256i *)r[i],
                        s_result(_mm256_maskload_epi32((const int *)(acc + (i0 + i) * lda + j0),
                                                       m),
                                 off, mult, &c));
                for (int j = 0; j < jn; j++)
                    for (int i = 0; i < in; i++) {
                        if (c.out_u8)
                            ((uint8_t *)yi)[i + j * syn] = (uint8_t)r[i][j];
                        else
                            memcpy((float *)yi + i + j * syn, &r[i][j], sizeof(float));
                    }
            }
            continue;
        }
        for (int i = 0; i < mv; i++) {
            const int32_t *a = acc + i * lda + j0;
            __m256i raw = jn == 8 ? _mm256_loadu_si256((const __m256i *)a)
                                  : _mm256_maskload_epi32((const int *)a, m);
            __m256 v = s_value(raw, off, mult);
            char *yi = yb + (i * sym + (int64_t)j0 * syn) * esz;
            if (syn == 1)
                s_store_run(yi, v, jn, &c);
            else
                s_store_strided(yi, syn, v, jn, &c);
        }
    }
}

/* ---- weight unpacking ----------------------------------------------------------------- */

/* The 32 codes k .. k+31 of a packed row of BITS (8, 4 or 2) bits, as bytes. Reads up to 31
 * bytes past the row (the next row, or BS_QWEIGHT_TAIL). */
S_INLINE __m256i s_codes32(int BITS, const uint8_t *row, int k)
{
    if (BITS == 8)
        return _mm256_loadu_si256((const __m256i *)(row + k));
    const __m128i nib = _mm_set1_epi8(0x0F);
    if (BITS == 4) { /* lut[n]: the nibble n sign-extended */
        const __m128i lut = _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, -8, -7, -6, -5, -4, -3, -2, -1);
        __m128i b = _mm_loadu_si128((const __m128i *)(row + k / 2));
        __m128i lo = _mm_shuffle_epi8(lut, _mm_and_si128(b, nib));
        __m128i hi = _mm_shuffle_epi8(lut, _mm_and_si128(_mm_srli_epi16(b, 4), nib));
        return _mm256_set_m128i(_mm_unpackhi_epi8(lo, hi), _mm_unpacklo_epi8(lo, hi));
    }
    /* 2 bits: a nibble holds two codes, the low one (lut0) and the high one (lut1) */
    const __m128i lut0 = _mm_setr_epi8(0, 1, -2, -1, 0, 1, -2, -1, 0, 1, -2, -1, 0, 1, -2, -1);
    const __m128i lut1 = _mm_setr_epi8(0, 0, 0, 0, 1, 1, 1, 1, -2, -2, -2, -2, -1, -1, -1, -1);
    __m128i b = _mm_loadl_epi64((const __m128i *)(row + k / 4));
    __m128i lo = _mm_and_si128(b, nib), hi = _mm_and_si128(_mm_srli_epi16(b, 4), nib);
    __m128i p01 = _mm_unpacklo_epi8(_mm_shuffle_epi8(lut0, lo), _mm_shuffle_epi8(lut1, lo));
    __m128i p23 = _mm_unpacklo_epi8(_mm_shuffle_epi8(lut0, hi), _mm_shuffle_epi8(lut1, hi));
    return _mm256_set_m128i(_mm_unpackhi_epi16(p01, p23), _mm_unpacklo_epi16(p01, p23));
}

/* 32 k at a time: 8 rows of 32 codes (8 groups of 4) are one 8 x 8 transpose of 32-bit
 * words away from 8 groups of the panel's rows j0 .. j0 + 7. */
S_INLINE void s_unpack_bits(int BITS, const bs_qweight_t *q, int n0, int nv, int k0, int kl,
                            int8_t *dst)
{
    const __m256i lane = _mm256_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
                                          16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28,
                                          29, 30, 31);
    for (int kk = 0; kk < kl; kk += 32) {
        int k = k0 + kk, ng = kl - kk < 32 ? (kl - kk) / 4 : 8;
        int valid = q->K - k; /* codes of the row at k and after */
        valid = valid < 0 ? 0 : (valid > 32 ? 32 : valid);
        __m256i keep = _mm256_cmpgt_epi8(_mm256_set1_epi8((char)valid), lane);
        for (int j0 = 0; j0 < 16; j0 += 8) {
            __m256i r[8];
#define S_R(j)                                                                                   \
    r[j] = j0 + j < nv && valid > 0                                                              \
               ? _mm256_and_si256(                                                               \
                     s_codes32(BITS, q->data + (size_t)(n0 + j0 + j) * q->row_bytes, k), keep)   \
               : _mm256_setzero_si256();
            S_R(0) S_R(1) S_R(2) S_R(3) S_R(4) S_R(5) S_R(6) S_R(7)
#undef S_R
            s_transpose8(r);
            for (int g = 0; g < ng; g++)
                _mm256_storeu_si256((__m256i *)(dst + ((kk / 4 + g) * 16 + j0) * 4), r[g]);
        }
    }
}

/* The unpacking of the 16-column tables (kq = 4) for 8-, 4- and 2-bit rows. */
int bs__qunpack_avx2(const bs_qweight_t *q, int n0, int nv, int k0, int kl, int8_t *dst)
{
    switch (q->bits) {
    case 8: s_unpack_bits(8, q, n0, nv, k0, kl, dst); return 1;
    case 4: s_unpack_bits(4, q, n0, nv, k0, kl, dst); return 1;
    case 2: s_unpack_bits(2, q, n0, nv, k0, kl, dst); return 1;
    default: return 0;
    }
}

/* ---- quantization --------------------------------------------------------------------- */

/* The steps of s_quantize_scalar on 8 lanes, from v = x / scale; int32 results in [0, 255]. */
S_INLINE __m256i s_quant8v(__m256 v, __m256 lo, __m256 hi, __m256i zp)
{
    v = _mm256_and_ps(v, _mm256_cmp_ps(v, v, _CMP_ORD_Q)); /* NaN -> 0 */
    v = _mm256_max_ps(v, lo);
    v = _mm256_min_ps(v, hi);
    __m256i r = _mm256_add_epi32(_mm256_cvtps_epi32(v), zp);
    return _mm256_min_epi32(_mm256_max_epi32(r, _mm256_setzero_si256()), _mm256_set1_epi32(255));
}

/* x / scale as the division would give it, where that decides the result: x * (1 / scale)
 * is within about 2^-23 of the quotient (relative), so when every lane lies farther than
 * 2^-9 from a half integer (or beyond +-2048, clamped either way) it rounds to the same
 * integer as the exact quotient; otherwise (ties, NaN) the lanes are divided. rcp: 1 / scale,
 * or 0 when that is not a normal float (then always divide). */
S_INLINE __m256 s_quot8(__m256 x, __m256 scale, __m256 rcp, int fast)
{
    if (fast) {
        __m256 v = _mm256_mul_ps(x, rcp);
        const __m256 abs = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
        __m256 t = _mm256_sub_ps(v, _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT |
                                                           _MM_FROUND_NO_EXC));
        __m256 dist = _mm256_sub_ps(_mm256_set1_ps(0.5f), _mm256_and_ps(t, abs));
        __m256 ok = _mm256_or_ps(_mm256_cmp_ps(dist, _mm256_set1_ps(1.0f / 512), _CMP_GT_OQ),
                                 _mm256_cmp_ps(_mm256_and_ps(v, abs), _mm256_set1_ps(2048.0f),
                                               _CMP_GE_OQ));
        if (_mm256_movemask_ps(ok) == 0xFF)
            return v;
    }
    return _mm256_div_ps(x, scale);
}

void bs__qquant_avx2(const float *x, int64_t n, float scale, int32_t zp, uint8_t *q)
{
    __m256 vs = _mm256_set1_ps(scale);
    float r = 1.0f / scale;
    int fast = isnormal(r) && isnormal(scale);
    __m256 vr = _mm256_set1_ps(fast ? r : 0.0f);
    __m256 lo = _mm256_set1_ps(-1.0f - (float)zp), hi = _mm256_set1_ps(256.0f - (float)zp);
    __m256i vz = _mm256_set1_epi32(zp);
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i a = s_quant8v(s_quot8(_mm256_loadu_ps(x + i), vs, vr, fast), lo, hi, vz);
        __m256i b = s_quant8v(s_quot8(_mm256_loadu_ps(x + i + 8), vs, vr, fast), lo, hi, vz);
        __m256i c = s_quant8v(s_quot8(_mm256_loadu_ps(x + i + 16), vs, vr, fast), lo, hi, vz);
        __m256i d = s_quant8v(s_quot8(_mm256_loadu_ps(x + i + 24), vs, vr, fast), lo, hi, vz);
        /* packs work per 128-bit lane: bytes come out as a0-3 b0-3 c0-3 d0-3 | a4-7 ... */
        __m256i ab = _mm256_packus_epi32(a, b), cd = _mm256_packus_epi32(c, d);
        __m256i p = _mm256_packus_epi16(ab, cd);
        _mm256_storeu_si256((__m256i *)(q + i), _mm256_permutevar8x32_epi32(p, perm));
    }
    for (; i < n; i += 8) {
        int m = n - i < 8 ? (int)(n - i) : 8;
        __m256 v = _mm256_maskload_ps(x + i, s_mask(m));
        uint8_t t[16];
        _mm_storeu_si128((__m128i *)t, s_pack8(s_quant8v(s_quot8(v, vs, vr, fast), lo, hi, vz)));
        memcpy(q + i, t, (size_t)m);
    }
}

/* ---- im2row --------------------------------------------------------------------------- */

/* Two 16 x 16 byte transposes, one per 128-bit lane: c[k] holds 32 outputs of tap k (lane 0
 * outputs 0-15, lane 1 outputs 16-31); afterwards c[o] holds the 16 taps of output o in lane
 * 0 and of output 16 + o in lane 1. Written out (no loops) so that the intermediates stay in
 * registers. */
S_INLINE void s_transpose16x2(__m256i c[16])
{
    __m256i a[16], b[16];
#define S_U8(i)                                                                                  \
    a[i] = _mm256_unpacklo_epi8(c[i], c[i + 1]), a[i + 1] = _mm256_unpackhi_epi8(c[i], c[i + 1]);
    S_U8(0) S_U8(2) S_U8(4) S_U8(6) S_U8(8) S_U8(10) S_U8(12) S_U8(14)
    /* a[2p] = taps 2p, 2p+1 of outputs 0-7; a[2p+1]: outputs 8-15 */
#define S_U16(i, h)                                                                              \
    b[i + 2 * h] = _mm256_unpacklo_epi16(a[i + h], a[i + h + 2]),                                \
              b[i + 2 * h + 1] = _mm256_unpackhi_epi16(a[i + h], a[i + h + 2]);
    S_U16(0, 0) S_U16(0, 1) S_U16(4, 0) S_U16(4, 1) S_U16(8, 0) S_U16(8, 1) S_U16(12, 0)
    S_U16(12, 1)
    /* b[4p + 2h + l]: taps 4p..4p+3 of outputs 8h + 4l .. 8h + 4l + 3 */
#define S_U32(i, q)                                                                              \
    a[i + 2 * q] = _mm256_unpacklo_epi32(b[i + q], b[i + q + 4]),                                \
              a[i + 2 * q + 1] = _mm256_unpackhi_epi32(b[i + q], b[i + q + 4]);
    S_U32(0, 0) S_U32(0, 1) S_U32(0, 2) S_U32(0, 3) S_U32(8, 0) S_U32(8, 1) S_U32(8, 2)
    S_U32(8, 3)
    /* a[8r + 2q + s]: taps 8r..8r+7 of outputs 4q + 2s, 4q + 2s + 1 */
#define S_U64(q)                                                                                 \
    c[2 * q] = _mm256_unpacklo_epi64(a[q], a[q + 8]),                                            \
          c[2 * q + 1] = _mm256_unpackhi_epi64(a[q], a[q + 8]);
    S_U64(0) S_U64(1) S_U64(2) S_U64(3) S_U64(4) S_U64(5) S_U64(6) S_U64(7)
#undef S_U8
#undef S_U16
#undef S_U32
#undef S_U64
}

/* One tap (c, kh, kw): the input byte of output (0, 0) (an offset into x, possibly negative
 * or past the row: only outputs ow in [A, B) read inside the row, and only output rows whose
 * input row oh * sh + ihb lies in [0, H)). */
typedef struct s_tap {
    int64_t at0;
    int64_t ihb;
    int64_t A, B;
} s_tap_t;

/* The tap's 32 outputs ow0 .. ow0 + wb - 1 of output row oh (ohs = oh * sh, oshift =
 * ohs * W) (lanes past wb: anything), for stride SW (1 or 2, a constant after inlining). The
 * load starts at output ow0's input byte even when that is padding (the lanes outside
 * [a, b) are then replaced with the padding value); only a load that would leave the input
 * buffer (xlen bytes at x) goes one lane at a time. */
S_INLINE __m256i s_tap32(int SW, const s_tap_t *t, int64_t ohs, int64_t oshift, int H, int ow0,
                         int wb, __m256i vpad, const uint8_t *x, int64_t xlen)
{
    int64_t a = t->A - ow0, b = t->B - ow0, ih = ohs + t->ihb;
    a = a < 0 ? 0 : a;
    b = b > wb ? wb : b;
    if (a >= b || ih < 0 || ih >= H)
        return vpad;
    int64_t at = t->at0 + oshift + (int64_t)ow0 * SW;
    __m256i v;
    if (at < 0 || at + 32 * SW > xlen) {
        uint8_t tmp[32];
        _mm256_storeu_si256((__m256i *)tmp, vpad);
        for (int64_t o = a; o < b; o++)
            tmp[o] = x[at + o * SW];
        return _mm256_loadu_si256((const __m256i *)tmp);
    }
    if (SW == 1) {
        v = _mm256_loadu_si256((const __m256i *)(x + at));
    } else {
        /* even bytes: packus works per 128-bit lane, giving outputs 0-7 16-23 | 8-15 24-31 */
        __m256i m = _mm256_set1_epi16(0x00FF);
        __m256i l = _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(x + at)), m);
        __m256i h = _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(x + at + 32)), m);
        v = _mm256_permute4x64_epi64(_mm256_packus_epi16(l, h), 0xD8);
    }
    if (a == 0 && b == wb) /* lanes past wb are not stored */
        return v;
    const __m256i lane = _mm256_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
                                          16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28,
                                          29, 30, 31);
    __m256i out = _mm256_or_si256(_mm256_cmpgt_epi8(_mm256_set1_epi8((char)a), lane),
                                  _mm256_cmpgt_epi8(lane, _mm256_set1_epi8((char)(b - 1))));
    return _mm256_blendv_epi8(v, vpad, out);
}

/* Taps are described S_KCH at a time (a whole cache line of every row), then every output
 * row takes them in blocks of 16. */
enum { S_KCH = 64 };

S_INLINE void s_im2row_sw(int SW, const bs_conv2d_t *g, const uint8_t *x, uint8_t pad,
                          uint8_t *rows, int64_t ldr)
{
    int K = g->C * g->KH * g->KW, KW = g->KW, KH = g->KH, H = g->H, OW = g->OW;
    int64_t xlen = (int64_t)g->C * g->H * g->W;
    int64_t kdone = (K + 15) / 16 * 16; /* bytes the blocks write per row (then zero to ldr) */
    kdone = kdone > ldr ? ldr : kdone;
    __m256i vpad = _mm256_set1_epi8((char)pad);
    int c = 0, kh = 0, kw = 0; /* the tap of kc0 */
    for (int kc0 = 0; kc0 < K; kc0 += S_KCH) {
        int kn = K - kc0 < S_KCH ? K - kc0 : S_KCH;
        s_tap_t taps[S_KCH];
        for (int t = 0; t < kn; t++) {
            s_tap_t *tp = &taps[t];
            int64_t iw0 = (int64_t)kw * g->dw - g->pl;
            tp->ihb = (int64_t)kh * g->dh - g->pt;
            tp->at0 = ((int64_t)c * g->H + tp->ihb) * g->W + iw0;
            /* outputs whose column ow * SW + iw0 lies in [0, W) */
            tp->A = iw0 >= 0 ? 0 : (-iw0 + SW - 1) / SW;
            tp->B = g->W - 1 - iw0 < 0 ? 0 : (g->W - 1 - iw0) / SW + 1;
            if (++kw == KW) {
                kw = 0;
                if (++kh == KH)
                    kh = 0, c++;
            }
        }
        for (int oh = 0; oh < g->OH; oh++) {
            int64_t ohs = (int64_t)oh * g->sh, oshift = ohs * g->W;
            uint8_t *r0 = rows + (int64_t)oh * OW * ldr;
            for (int kb0 = 0; kb0 < kn; kb0 += 16) {
                int k0 = kc0 + kb0, kb = kn - kb0 < 16 ? kn - kb0 : 16;
                const s_tap_t *tb = taps + kb0;
                int nbytes = ldr - k0 < 16 ? (int)(ldr - k0) : 16;
                for (int ow0 = 0; ow0 < OW; ow0 += 32) {
                    int wb = OW - ow0 < 32 ? OW - ow0 : 32;
                    __m256i blk[16];
                    for (int t = 0; t < 16; t++)
                        blk[t] = t < kb ? s_tap32(SW, tb + t, ohs, oshift, H, ow0, wb, vpad, x,
                                                  xlen)
                                        : _mm256_setzero_si256();
                    s_transpose16x2(blk);
                    uint8_t *d = r0 + (int64_t)ow0 * ldr + k0;
                    int w0 = wb < 16 ? wb : 16; /* outputs in lane 0, then lane 1 */
                    if (nbytes == 16) {
                        for (int o = 0; o < w0; o++)
                            _mm_storeu_si128((__m128i *)(d + o * ldr),
                                             _mm256_castsi256_si128(blk[o]));
                        for (int o = 16; o < wb; o++)
                            _mm_storeu_si128((__m128i *)(d + o * ldr),
                                             _mm256_extracti128_si256(blk[o - 16], 1));
                    } else {
                        for (int o = 0; o < wb; o++) {
                            uint8_t t[32];
                            _mm256_storeu_si256((__m256i *)t, blk[o % 16]);
                            memcpy(d + o * ldr, t + (o < 16 ? 0 : 16), (size_t)nbytes);
                        }
                    }
                }
            }
        }
    }
    if (ldr > kdone) {
        int64_t P = (int64_t)g->OH * OW;
        for (int64_t m = 0; m < P; m++)
            memset(rows + m * ldr + kdone, 0, (size_t)(ldr - kdone));
    }
}

void bs__qim2row_avx2(const bs_conv2d_t *g0, const uint8_t *x, uint8_t pad, uint8_t *rows,
                      int64_t ldr)
{
    bs_conv2d_t g = *g0;
    if (g.KH == 1 && g.KW == 1 && g.sh == 1 && g.sw == 1 && g.pt == 0 && g.pl == 0 &&
        g.OH == g.H && g.OW == g.W) { /* one long row: the transposition of the planes */
        g.W = g.OW = g.H * g.W;
        g.H = g.OH = 1;
    }
    if (g.sw == 1)
        s_im2row_sw(1, &g, x, pad, rows, ldr);
    else if (g.sw == 2)
        s_im2row_sw(2, &g, x, pad, rows, ldr);
    else
        bs__qim2row_ref(g0, x, pad, rows, ldr);
}

/* ---- NCHW convolution and depthwise ---------------------------------------------------- */

/* X4: 32 positions of 4 taps per step. Each source's 32 bytes are first permuted by 32-bit
 * words (0, 2, 4, 6, 1, 3, 5, 7) so that the byte and word unpacks, which work per 128-bit
 * lane, leave positions 8j .. 8j + 7 in vector j. */
void bs__qx4_avx2(const uint8_t *const src[4], int n, uint8_t *dst, int64_t ldb)
{
    const __m256i perm = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    for (int i = 0; i < n; i += 32) {
        int m = n - i < 32 ? n - i : 32;
        __m256i v[4];
        for (int t = 0; t < 4; t++) {
            if (m == 32) {
                v[t] = _mm256_loadu_si256((const __m256i *)(src[t] + i));
            } else {
                uint8_t tmp[32] = {0};
                memcpy(tmp, src[t] + i, (size_t)m);
                v[t] = _mm256_loadu_si256((const __m256i *)tmp);
            }
            v[t] = _mm256_permutevar8x32_epi32(v[t], perm);
        }
        __m256i ab0 = _mm256_unpacklo_epi8(v[0], v[1]), ab1 = _mm256_unpackhi_epi8(v[0], v[1]);
        __m256i cd0 = _mm256_unpacklo_epi8(v[2], v[3]), cd1 = _mm256_unpackhi_epi8(v[2], v[3]);
        uint8_t *d = dst + (int64_t)(i / 16) * ldb;
        _mm256_storeu_si256((__m256i *)d, _mm256_unpacklo_epi16(ab0, cd0));
        _mm256_storeu_si256((__m256i *)(d + 32), _mm256_unpackhi_epi16(ab0, cd0));
        if (m > 16) {
            _mm256_storeu_si256((__m256i *)(d + ldb), _mm256_unpacklo_epi16(ab1, cd1));
            _mm256_storeu_si256((__m256i *)(d + ldb + 32), _mm256_unpackhi_epi16(ab1, cd1));
        }
    }
}

/* 4-bit panels (bs_qkernels_impl.h), a pair of groups per 64 bytes: the low nibbles are
 * the first group, the high ones (shifted down) the second, each sign-extended by a pshufb
 * table lookup. */
void bs__qexp4_avx2(const uint8_t *src, int64_t n, int8_t *dst)
{
    const __m256i m = _mm256_set1_epi8(0x0F);
    const __m256i t = _mm256_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, -8, -7, -6, -5, -4, -3, -2, -1, 0,
                                       1, 2, 3, 4, 5, 6, 7, -8, -7, -6, -5, -4, -3, -2, -1);
    for (int64_t i = 0; i < n; i += 128) {
        for (int h = 0; h < 2; h++) {
            __m256i b = _mm256_loadu_si256((const __m256i *)(src + i / 2 + 32 * h));
            _mm256_storeu_si256((__m256i *)(dst + i + 32 * h),
                                _mm256_shuffle_epi8(t, _mm256_and_si256(b, m)));
            if (i + 64 < n) {
                __m256i hi = _mm256_and_si256(_mm256_srli_epi16(b, 4), m);
                _mm256_storeu_si256((__m256i *)(dst + i + 64 + 32 * h),
                                    _mm256_shuffle_epi8(t, hi));
            }
        }
    }
}

/* 16 pairs per step (the last one overlapping the one before): pshufb puts each 128-bit
 * lane's even bytes before its odd ones, a qword permute joins the lanes' halves. */
void bs__qdeint2_avx2(const uint8_t *src, int n, uint8_t *dst0, uint8_t *dst1)
{
    const __m256i sh = _mm256_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15, 0,
                                        2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    if (n < 16) {
        for (int s = 0; s < n; s++) {
            dst0[s] = src[2 * s];
            dst1[s] = src[2 * s + 1];
        }
        return;
    }
    for (int s = 0;; s += 16) {
        s = s + 16 > n ? n - 16 : s; /* the last step overlaps the one before */
        __m256i v = _mm256_shuffle_epi8(_mm256_loadu_si256((const __m256i *)(src + 2 * s)), sh);
        v = _mm256_permute4x64_epi64(v, 0xD8);
        _mm_storeu_si128((__m128i *)(dst0 + s), _mm256_castsi256_si128(v));
        _mm_storeu_si128((__m128i *)(dst1 + s), _mm256_extracti128_si256(v, 1));
        if (s + 16 >= n)
            return;
    }
}

/* The epilogue of one block (a0: lanes 0-7, a1: lanes 8-15; raw sums plus off) into its
 * kept outputs of the plane y: whole vectors, or through a buffer lane by lane. */
S_INLINE void s_store_blk(__m256i a0, __m256i a1, __m256 mult, const s_epc_t *c,
                          const bs__qgrid_t *gr, int b, char *y)
{
    __m256 v0 = _mm256_mul_ps(_mm256_cvtepi32_ps(a0), mult);
    __m256 v1 = _mm256_mul_ps(_mm256_cvtepi32_ps(a1), mult);
    int64_t at;
    unsigned keep = bs__qkeep(gr, b, &at);
    if (c->out_u8) {
        __m256i p = _mm256_packus_epi32(s_act_u8(v0, c), s_act_u8(v1, c));
        p = _mm256_permute4x64_epi64(p, 0xD8);
        __m128i q = _mm_packus_epi16(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1));
        if (keep == 0xFFFFu) {
            _mm_storeu_si128((__m128i *)(y + at), q);
            return;
        }
        uint8_t t[16];
        _mm_storeu_si128((__m128i *)t, q);
        for (int l = 0; l < 16; l++)
            if (keep >> l & 1u)
                ((uint8_t *)y)[at++] = t[l];
        return;
    }
    __m256 f0 = s_act_f32(v0, c), f1 = s_act_f32(v1, c);
    float *d = (float *)y + at;
    if (keep == 0xFFFFu) {
        _mm256_storeu_ps(d, f0);
        _mm256_storeu_ps(d + 8, f1);
        return;
    }
    float t[16];
    _mm256_storeu_ps(t, f0);
    _mm256_storeu_ps(t + 8, f1);
    for (int l = 0; l < 16; l++)
        if (keep >> l & 1u)
            *d++ = t[l];
}

void bs__qepi16_avx2(const int32_t acc[16], float mult, const bs_qgemm_epi_t *e,
                     const bs__qgrid_t *gr, int b, void *y)
{
    s_epc_t c = s_epc(e);
    s_store_blk(_mm256_loadu_si256((const __m256i *)acc),
                _mm256_loadu_si256((const __m256i *)(acc + 8)), _mm256_set1_ps(mult), &c, gr,
                b, y);
}

/* acc + x . w for 4 unsigned bytes x and 4 signed codes w per 32-bit lane (what vpdpbusd
 * does), with vpmaddwd: xe, we hold bytes 0 and 2 of each lane as 16-bit values, xo, wo bytes
 * 1 and 3 (exact: each product fits 16 bits signed, each pair sum 32 bits). */
S_INLINE __m256i s_dp(__m256i acc, __m256i xe, __m256i xo, __m256i we, __m256i wo)
{
    return _mm256_add_epi32(acc, _mm256_add_epi32(_mm256_madd_epi16(xe, we),
                                                  _mm256_madd_epi16(xo, wo)));
}

#define S_CV_INIT(i)                                                                             \
    __m256i c##i##0 = _mm256_set1_epi32(MR > i ? e->off[n0 + i] : 0), c##i##1 = c##i##0;
#define S_CV_ROW(i)                                                                              \
    if (MR > i) {                                                                                \
        int32_t wv;                                                                              \
        memcpy(&wv, w + 4 * i, 4);                                                               \
        __m256i ww = _mm256_set1_epi32(wv);                                                      \
        __m256i we = _mm256_srai_epi16(_mm256_slli_epi16(ww, 8), 8);                             \
        __m256i wo = _mm256_srai_epi16(ww, 8);                                                   \
        c##i##0 = s_dp(c##i##0, xe0, xo0, we, wo);                                               \
        c##i##1 = s_dp(c##i##1, xe1, xo1, we, wo);                                               \
    }
#define S_CV_STORE(i)                                                                            \
    if (MR > i)                                                                                  \
        s_store_blk(c##i##0, c##i##1, _mm256_set1_ps(e->mult[n0 + i]), &c, gr, b0,               \
                    y + (size_t)((int64_t)i * gr->ys) * esz);

/* MR output channels (rows n0 .. of the panel at wp, already offset to row n0's word) of one
 * block. */
S_INLINE void s_cv_n(int MR, int kg, const uint8_t *x4, const int8_t *wp,
                     const bs_qgemm_epi_t *e, int n0, const bs__qgrid_t *gr, int b0, char *y)
{
    s_epc_t c = s_epc(e);
    size_t esz = e->out_u8 ? 1 : sizeof(float);
    const __m256i lo8 = _mm256_set1_epi16(0x00FF);
    S_CV_INIT(0) S_CV_INIT(1) S_CV_INIT(2) S_CV_INIT(3)
    for (int g = 0; g < kg; g++) {
        const uint8_t *xb = x4 + (int64_t)g * 64;
        const int8_t *w = wp + (int64_t)g * A_NR * 4;
        __m256i x0 = _mm256_loadu_si256((const __m256i *)xb);
        __m256i x1 = _mm256_loadu_si256((const __m256i *)(xb + 32));
        __m256i xe0 = _mm256_and_si256(x0, lo8), xo0 = _mm256_srli_epi16(x0, 8);
        __m256i xe1 = _mm256_and_si256(x1, lo8), xo1 = _mm256_srli_epi16(x1, 8);
        S_CV_ROW(0) S_CV_ROW(1) S_CV_ROW(2) S_CV_ROW(3)
    }
    S_CV_STORE(0) S_CV_STORE(1) S_CV_STORE(2) S_CV_STORE(3)
}

static void s_cvtile_avx2(int kg, const uint8_t *x4, int64_t ldb, int nb, const int8_t *wp,
                          int nv, const bs_qgemm_epi_t *e, int n0, const bs__qgrid_t *gr, int b0,
                          void *y)
{
    size_t esz = e->out_u8 ? 1 : sizeof(float);
    (void)ldb, (void)nb; /* one block (cvb = 1) */
    for (int j0 = 0; j0 < nv; j0 += 4) {
        char *yj = (char *)y + (size_t)((int64_t)j0 * gr->ys) * esz;
        const int8_t *w = wp + 4 * j0;
        switch (nv - j0) {
        case 1: s_cv_n(1, kg, x4, w, e, n0 + j0, gr, b0, yj); break;
        case 2: s_cv_n(2, kg, x4, w, e, n0 + j0, gr, b0, yj); break;
        case 3: s_cv_n(3, kg, x4, w, e, n0 + j0, gr, b0, yj); break;
        default: s_cv_n(4, kg, x4, w, e, n0 + j0, gr, b0, yj); break;
        }
    }
}

#undef S_CV_INIT
#undef S_CV_ROW
#undef S_CV_STORE

/* Depthwise: 8 positions per vector, each lane's 4 window bytes gathered from one load by a
 * word permute (positions 0-3 | 4-7 need bytes 0-6 | 4-10 for stride 1, 0-9 | 8-17 for
 * stride 2) and a byte shuffle that also zero-extends them to the even / odd 16-bit pairs of
 * s_dp. Two blocks (four vectors) at a time. */
/* Every channel's copy and words first, then the blocks. */
static void s_dw_avx2(const bs__qdwp_t *d, const uint8_t *x, const int8_t *w, int nch,
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
    const __m256i pe = sw == 1 ? _mm256_setr_epi8(0, -1, 2, -1, 1, -1, 3, -1, 2, -1, 4, -1, 3,
                                                  -1, 5, -1, 0, -1, 2, -1, 1, -1, 3, -1, 2, -1,
                                                  4, -1, 3, -1, 5, -1)
                               : _mm256_setr_epi8(0, -1, 2, -1, 2, -1, 4, -1, 4, -1, 6, -1, 6,
                                                  -1, 8, -1, 0, -1, 2, -1, 2, -1, 4, -1, 4, -1,
                                                  6, -1, 6, -1, 8, -1);
    const __m256i po = _mm256_add_epi8(pe, _mm256_setr_epi8(1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0,
                                                            1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0,
                                                            1, 0, 1, 0, 1, 0, 1, 0));
    s_epc_t c = s_epc(e);
    size_t esz = e->out_u8 ? 1 : sizeof(float);
    int64_t step = (int64_t)sw * 8;
    for (int i = 0; i < nch; i++)
        bs__qdw_prep(d, x, w, i, 0, buf, wqb + (int64_t)i * ngr);
    for (int i = 0; i < nch; i++) {
        const int32_t *wq = wqb + (int64_t)i * ngr;
        uint32_t corr = 0;
        for (int gi = 0; gi < ngr; gi++)
            for (int t = 0; t < 4; t++)
                corr += (uint32_t)d->zx * (uint32_t)(int32_t)(int8_t)(uint8_t)((uint32_t)wq[gi] >>
                                                                             (8 * t));
        int32_t start = (int32_t)((uint32_t)off[i] - corr);
        const uint8_t *xc = buf + i * d->cbytes;
        __m256 vm = _mm256_set1_ps(mult[i]);
        char *yc = (char *)y + (size_t)(i * gr->ys) * esz;
        for (int b = 0; b < gr->nblk; b += 2) {
            __m256i a[4];
            for (int h = 0; h < 4; h++)
                a[h] = _mm256_set1_epi32(start);
            int nh = gr->nblk - b > 1 ? 4 : 2;
            for (int gi = 0; gi < ngr; gi++) {
                __m256i ww = _mm256_set1_epi32(wq[gi]);
                __m256i we = _mm256_srai_epi16(_mm256_slli_epi16(ww, 8), 8);
                __m256i wo = _mm256_srai_epi16(ww, 8);
                const uint8_t *p = xc + d->goff[gi] + (int64_t)b * 2 * step;
                for (int h = 0; h < nh; h++) {
                    __m256i v = _mm256_permutevar8x32_epi32(
                        _mm256_loadu_si256((const __m256i *)(p + h * step)), perm);
                    a[h] = s_dp(a[h], _mm256_shuffle_epi8(v, pe), _mm256_shuffle_epi8(v, po),
                                we, wo);
                }
            }
            s_store_blk(a[0], a[1], vm, &c, gr, b, yc);
            if (nh == 4)
                s_store_blk(a[2], a[3], vm, &c, gr, b + 1, yc);
        }
    }
}

const bs__qkernels_t bs__qkernels_avx2 = {
    .name = "avx2",
    .nr = A_NR,
    .mr = A_MR,
    .kq = 4,
    .tile = s_tile_avx2,
    .epi = bs__qepi_avx2,
    .unpack = bs__qunpack_avx2,
    .quantize = bs__qquant_avx2,
    .im2row = bs__qim2row_avx2,
    .x4 = bs__qx4_avx2,
    .cvtile = s_cvtile_avx2,
    .cvb = 1,
    .dw = s_dw_avx2,
    .deint2 = bs__qdeint2_avx2,
    .exp4 = bs__qexp4_avx2,
};

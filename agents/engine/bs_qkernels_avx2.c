/*
 * bs_qkernels_avx2.c - AVX2 integer kernels (x86-64); the only file compiled with -mavx2
 * (and no -mfma: nothing here may fuse a multiply with an add). Chosen at run time by
 * bs_qkernels.c when the CPU has AVX2 but no VNNI; everything but the micro-kernel (the
 * epilogue, weight unpacking, quantization, im2row and depthwise) is shared with the
 * AVX-VNNI and AVX512-VNNI tables, whose panels have the same layout.
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
 * 32-bit words puts 8 rows' groups of 4 codes side by side.
 *
 * Quantization: 32 floats per step, divided (not multiplied by a reciprocal), NaN lanes
 * zeroed, clamped, converted and packed with unsigned saturation.
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
 * Depthwise: each channel's plane is copied with its padding (the zero point) into a buffer
 * on the stack when it fits, so that every tap of 16 outputs is one load, a 16-bit multiply
 * ((x - zx) * w fits 16 bits) and two widening adds into int32; larger planes mask the
 * lanes that read padding instead.
 */
#include <immintrin.h>
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

void bs__qrun_avx2(const int32_t *acc, int len, int32_t off, float mult,
                   const bs_qgemm_epi_t *e, void *y)
{
    s_epc_t c = s_epc(e);
    size_t esz = e->out_u8 ? 1 : sizeof(float);
    __m256i vo = _mm256_set1_epi32(off);
    __m256 vm = _mm256_set1_ps(mult);
    for (int i = 0; i < len; i += 8) {
        int n = len - i < 8 ? len - i : 8;
        __m256i raw = n == 8 ? _mm256_loadu_si256((const __m256i *)(acc + i))
                             : _mm256_maskload_epi32((const int *)(acc + i), s_mask(n));
        s_store_run((char *)y + (size_t)i * esz, s_value(raw, vo, vm), n, &c);
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

/* The steps of s_quantize_scalar on 8 lanes; int32 results in [0, 255]. */
S_INLINE __m256i s_quant8(__m256 x, __m256 scale, __m256 lo, __m256 hi, __m256i zp)
{
    __m256 v = _mm256_div_ps(x, scale);
    v = _mm256_and_ps(v, _mm256_cmp_ps(v, v, _CMP_ORD_Q)); /* NaN -> 0 */
    v = _mm256_max_ps(v, lo);
    v = _mm256_min_ps(v, hi);
    __m256i r = _mm256_add_epi32(_mm256_cvtps_epi32(v), zp);
    return _mm256_min_epi32(_mm256_max_epi32(r, _mm256_setzero_si256()), _mm256_set1_epi32(255));
}

void bs__qquant_avx2(const float *x, int64_t n, float scale, int32_t zp, uint8_t *q)
{
    __m256 vs = _mm256_set1_ps(scale);
    __m256 lo = _mm256_set1_ps(-1.0f - (float)zp), hi = _mm256_set1_ps(256.0f - (float)zp);
    __m256i vz = _mm256_set1_epi32(zp);
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i a = s_quant8(_mm256_loadu_ps(x + i), vs, lo, hi, vz);
        __m256i b = s_quant8(_mm256_loadu_ps(x + i + 8), vs, lo, hi, vz);
        __m256i c = s_quant8(_mm256_loadu_ps(x + i + 16), vs, lo, hi, vz);
        __m256i d = s_quant8(_mm256_loadu_ps(x + i + 24), vs, lo, hi, vz);
        /* packs work per 128-bit lane: bytes come out as a0-3 b0-3 c0-3 d0-3 | a4-7 ... */
        __m256i ab = _mm256_packus_epi32(a, b), cd = _mm256_packus_epi32(c, d);
        __m256i p = _mm256_packus_epi16(ab, cd);
        _mm256_storeu_si256((__m256i *)(q + i), _mm256_permutevar8x32_epi32(p, perm));
    }
    for (; i < n; i += 8) {
        int m = n - i < 8 ? (int)(n - i) : 8;
        __m256 v = _mm256_maskload_ps(x + i, s_mask(m));
        uint8_t t[16];
        _mm_storeu_si128((__m128i *)t, s_pack8(s_quant8(v, vs, lo, hi, vz)));
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

/* ---- depthwise ------------------------------------------------------------------------ */

/* 16 outputs ow0 .. ow0 + wb - 1 of one tap, as x - zx in 16-bit lanes, 0 where the tap
 * reads padding: input row `row` of a plane of `plane` bytes at xc, input column s0 for
 * output ow0. One load (stride 1 or 2) starting at output ow0's input byte, even when that is
 * padding (such lanes are then masked by comparing their columns with [0, W)), as long as it
 * stays inside the plane; else one lane at a time. */
S_INLINE __m256i s_dw_tap16(const uint8_t *xc, int64_t plane, const uint8_t *row, int64_t s0,
                            int sw, int W, int wb, __m256i vz)
{
    int64_t at = (row - xc) + s0;
    int inside = s0 >= 0 && s0 + (int64_t)(wb - 1) * sw < W;
    __m128i xv;
    if ((sw == 1 || sw == 2) && at >= 0 && at + 16 * sw <= plane && W < 16384) {
        if (sw == 1) {
            xv = _mm_loadu_si128((const __m128i *)(xc + at));
        } else {
            __m128i m = _mm_set1_epi16(0x00FF);
            __m128i l = _mm_and_si128(_mm_loadu_si128((const __m128i *)(xc + at)), m);
            __m128i h = _mm_and_si128(_mm_loadu_si128((const __m128i *)(xc + at + 16)), m);
            xv = _mm_packus_epi16(l, h);
        }
        __m256i d = _mm256_sub_epi16(_mm256_cvtepu8_epi16(xv), vz);
        if (inside)
            return d;
        const __m256i lane = _mm256_setr_epi16(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
                                               15);
        __m256i col = _mm256_add_epi16(_mm256_set1_epi16((int16_t)s0),
                                       _mm256_mullo_epi16(lane, _mm256_set1_epi16((int16_t)sw)));
        __m256i last = _mm256_set1_epi16((int16_t)(W - 1));
        __m256i out = _mm256_or_si256(_mm256_cmpgt_epi16(_mm256_setzero_si256(), col),
                                      _mm256_cmpgt_epi16(col, last));
        return _mm256_andnot_si256(out, d);
    }
    int16_t t[16] = {0};
    int16_t z = (int16_t)_mm256_extract_epi16(vz, 0);
    for (int o = 0; o < wb; o++) {
        int64_t c = s0 + (int64_t)o * sw;
        if (c >= 0 && c < W)
            t[o] = (int16_t)(row[c] - z);
    }
    return _mm256_loadu_si256((const __m256i *)t);
}

/* (x - zx) * w of 16 outputs of one tap, added to the int32 sums a0 (outputs 0-7), a1. */
S_INLINE void s_dw_mac(__m256i d, int16_t wv, __m256i *a0, __m256i *a1)
{
    __m256i p = _mm256_mullo_epi16(d, _mm256_set1_epi16(wv));
    *a0 = _mm256_add_epi32(*a0, _mm256_cvtepi16_epi32(_mm256_castsi256_si128(p)));
    *a1 = _mm256_add_epi32(*a1, _mm256_cvtepi16_epi32(_mm256_extracti128_si256(p, 1)));
}

/* The padded copy of a plane: Hb rows of Wb bytes, the input at rows [pt, pt + H), columns
 * [pl, pl + W), zx around it. */
enum { S_DW_PAD = 32768 };

/* One channel, 16 outputs of a row at a time, summed over every tap in two int32 vectors:
 * (x - zx) * w fits 16 bits (|x - zx| <= 255, |w| <= 128), so each tap is one vpmullw and
 * two widening adds. The epilogue is applied on the registers. When the plane with its
 * padding (and room for the loads of the last block) fits S_DW_PAD bytes (stride 1 or 2),
 * it is first copied into such a buffer, padded with zx, so that every tap is one plain
 * load; otherwise each tap masks the lanes that read padding (s_dw_tap16). */
void bs__qdw_avx2(const bs_conv2d_t *g, const uint8_t *xc, int32_t zx, const int8_t *wc,
                  int32_t off, float mult, const bs_qgemm_epi_t *e, void *yc)
{
    s_epc_t c = s_epc(e);
    const int H = g->H, W = g->W, KH = g->KH, KW = g->KW, OH = g->OH, OW = g->OW;
    const int sh = g->sh, sw = g->sw, dh = g->dh, dw = g->dw, pt = g->pt, pl = g->pl;
    int64_t esz = e->out_u8 ? 1 : (int64_t)sizeof(float), plane = (int64_t)H * W;
    __m256i vo = _mm256_set1_epi32(off), vz = _mm256_set1_epi16((int16_t)zx);
    __m256 vm = _mm256_set1_ps(mult);
    char *y = yc;
    /* padded copy: every load of the last block of a row stays inside its row */
    int64_t Wb = ((int64_t)OW + 16) * sw + (int64_t)(KW - 1) * dw + 16;
    int64_t Hb = (int64_t)(OH - 1) * sh + (int64_t)(KH - 1) * dh + 1;
    int padded = (sw == 1 || sw == 2) && Wb * Hb <= S_DW_PAD && (int64_t)pl + W <= Wb &&
                 pt >= 0 && pl >= 0;
    uint8_t buf[S_DW_PAD];
    if (padded) {
        memset(buf, zx, (size_t)(Wb * Hb));
        for (int ih = 0; ih < H; ih++)
            if (ih + pt < Hb)
                memcpy(buf + (ih + pt) * Wb + pl, xc + (int64_t)ih * W, (size_t)W);
    }
    for (int oh = 0; oh < OH; oh++)
        for (int ow0 = 0; ow0 < OW; ow0 += 16) {
            int wb = OW - ow0 < 16 ? OW - ow0 : 16;
            __m256i a0 = _mm256_setzero_si256(), a1 = a0;
            for (int kh = 0; kh < KH; kh++) {
                const int8_t *wr = wc + kh * KW;
                if (padded) {
                    const uint8_t *b = buf + ((int64_t)oh * sh + (int64_t)kh * dh) * Wb +
                                       (int64_t)ow0 * sw;
                    for (int kw = 0; kw < KW; kw++) {
                        const uint8_t *p = b + (int64_t)kw * dw;
                        __m128i xv;
                        if (sw == 1) {
                            xv = _mm_loadu_si128((const __m128i *)p);
                        } else {
                            __m128i m = _mm_set1_epi16(0x00FF);
                            xv = _mm_packus_epi16(
                                _mm_and_si128(_mm_loadu_si128((const __m128i *)p), m),
                                _mm_and_si128(_mm_loadu_si128((const __m128i *)(p + 16)), m));
                        }
                        s_dw_mac(_mm256_sub_epi16(_mm256_cvtepu8_epi16(xv), vz), wr[kw], &a0,
                                 &a1);
                    }
                    continue;
                }
                int64_t ih = (int64_t)oh * sh + (int64_t)kh * dh - pt;
                if (ih < 0 || ih >= H)
                    continue;
                const uint8_t *row = xc + ih * W;
                for (int kw = 0; kw < KW; kw++) {
                    int64_t s0 = (int64_t)ow0 * sw + (int64_t)kw * dw - pl;
                    s_dw_mac(s_dw_tap16(xc, plane, row, s0, sw, W, wb, vz), wr[kw], &a0, &a1);
                }
            }
            char *yo = y + ((int64_t)oh * OW + ow0) * esz;
            s_store_run(yo, s_value(a0, vo, vm), wb < 8 ? wb : 8, &c);
            if (wb > 8)
                s_store_run(yo + 8 * esz, s_value(a1, vo, vm), wb - 8, &c);
        }
}

const bs__qkernels_t bs__qkernels_avx2 = {
    .name = "avx2",
    .nr = A_NR,
    .mr = A_MR,
    .kq = 4,
    .tile = s_tile_avx2,
    .epi = bs__qepi_avx2,
    .run = bs__qrun_avx2,
    .unpack = bs__qunpack_avx2,
    .quantize = bs__qquant_avx2,
    .im2row = bs__qim2row_avx2,
    .dw = bs__qdw_avx2,
};

/*
 * bs_qkernels_avx512vnni.c - the AVX512-VNNI kernels (x86-64); the only file compiled with
 * -mavx512f -mavx512bw -mavx512vl -mavx512vnni. Chosen at run time by bs_qkernels.c when the
 * CPU has AVX512-F, -BW, -VL and -VNNI (cpuid leaf 7: EBX bits 16, 30, 31, ECX bit 11) and
 * the OS saves the zmm state: vpdpbusd on zmm, twice the work per instruction of the AVX-VNNI
 * table.
 *
 * vpdpbusd multiplies 4 unsigned bytes by 4 signed bytes in each 32-bit lane and adds the
 * four products to the lane, with no intermediate saturation: exactly the reference sum. The
 * panel layout is the AVX-VNNI table's (kq = 4, 16 columns: bs_qkernels_impl.h), so one
 * 64-byte load holds a whole group of 4 k of a panel (16 columns' words).
 *
 * GEMM tile 12 x 16: 12 accumulators (enough independent chains to cover vpdpbusd's latency
 * at two per cycle), one panel load and twelve broadcasts of 4 X bytes per group of 4 k.
 * Shorter tiles are the same code specialised at compile time on their row count. On 4-bit
 * panels (tile4) one 64-byte load holds two groups, whose codes times 16 are a mask (high
 * nibbles) or a mask and a pshufb (low nibbles) away, so the same vpdpbusd reads them (sums
 * shifted back at the end); tiles of up to 4 rows give each row two accumulators. The GEMM's
 * epilogue, quantization and im2row are the AVX2 table's.
 *
 * bs_qconv2d (grid, X4 and tile in bs_qkernels_impl.h): X4 64 positions at a time (each
 * source permuted by words so that the per-lane unpacks leave positions in order; tails
 * loaded under a byte mask). Conv tile: up to 3 blocks of 16 positions by 8 output channels
 * (24 accumulators; one block: 16 channels), per group of 4 taps one X4 load per block and
 * one broadcast weight word per channel; accumulators start at off. A grid of one block (16
 * positions or fewer) goes transposed instead: channels as lanes (one panel load per group),
 * each position's X4 word broadcast, then a 16 x 16 transpose; on 4-bit panels it reads
 * them in place, a pair of groups per load (cvtile4). Epilogue per block: whole, one masked
 * run, two masked runs (the end of an output row and the start of the next), or compressed,
 * as the block's kept lanes say, worked out once per tile for all its channels.
 *
 * Depthwise: planes of up to 64 outputs (144 at stride 1), kernels up to 4 wide, go 16
 * channels at a time with the channels as lanes (z_dwc): the planes are transposed into one
 * padded copy, each kernel row's 4 taps of every channel are turned into one 32-bit lane per
 * output column (a word permute and a byte shuffle), and each output is then one load and one
 * vpdpbusd per kernel row; 16 outputs at a time are transposed back. Other planes go channel
 * by channel on the row-phase copies: per tap group one load, a word permute and a byte
 * shuffle give each of 16 positions its 4 window bytes (stride 1 or 2), and one vpdpbusd.
 * Copies are made for a whole batch before any is read (a load of bytes just written by
 * narrower or masked stores waits for them), and zx * sum(w) comes from vpdpbusd too.
 */
#include <immintrin.h>
#include <string.h>

#include "bs_qkernels_impl.h"

#define S_INLINE static inline __attribute__((always_inline))

enum { Z_NR = 16, Z_MR = 12 };

S_INLINE __m512i s_bcast4(const uint8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

S_INLINE void s_store_acc(int32_t *acc, __m512i v, int accumulate)
{
    if (accumulate)
        v = _mm512_add_epi32(v, _mm512_loadu_si512((const void *)acc));
    _mm512_storeu_si512((void *)acc, v);
}

/* Written out row by row (the compiler keeps arrays of accumulators in memory); MR is a
 * constant after inlining, so the rows past it vanish. */
#define S_ROW_INIT(i)                                                                            \
    __m512i c##i = _mm512_setzero_si512();                                                       \
    const uint8_t *x##i = x + (MR > i ? i : 0) * ldx;
#define S_ROW_STEP(i)                                                                            \
    if (MR > i)                                                                                  \
        c##i = _mm512_dpbusd_epi32(c##i, s_bcast4(x##i + 4 * g), w);
#define S_ROW_STORE(i)                                                                           \
    if (MR > i)                                                                                  \
        s_store_acc(acc + i * Z_NR, c##i, accumulate);

S_INLINE void s_tile_n(int MR, int kg, const uint8_t *x, int64_t ldx, const int8_t *wp,
                       int32_t *acc, int accumulate)
{
    S_ROW_INIT(0) S_ROW_INIT(1) S_ROW_INIT(2) S_ROW_INIT(3) S_ROW_INIT(4) S_ROW_INIT(5)
    S_ROW_INIT(6) S_ROW_INIT(7) S_ROW_INIT(8) S_ROW_INIT(9) S_ROW_INIT(10) S_ROW_INIT(11)
    for (int g = 0; g < kg; g++) {
        __m512i w = _mm512_loadu_si512((const void *)(wp + (int64_t)g * 64));
        S_ROW_STEP(0) S_ROW_STEP(1) S_ROW_STEP(2) S_ROW_STEP(3) S_ROW_STEP(4) S_ROW_STEP(5)
        S_ROW_STEP(6) S_ROW_STEP(7) S_ROW_STEP(8) S_ROW_STEP(9) S_ROW_STEP(10) S_ROW_STEP(11)
    }
    S_ROW_STORE(0) S_ROW_STORE(1) S_ROW_STORE(2) S_ROW_STORE(3) S_ROW_STORE(4) S_ROW_STORE(5)
    S_ROW_STORE(6) S_ROW_STORE(7) S_ROW_STORE(8) S_ROW_STORE(9) S_ROW_STORE(10) S_ROW_STORE(11)
}

static void s_tile_avx512vnni(int kg, const uint8_t *x, int64_t ldx, int mv, const int8_t *wp,
                              int32_t *acc, int accumulate)
{
    switch (mv) {
    case 1: s_tile_n(1, kg, x, ldx, wp, acc, accumulate); break;
    case 2: s_tile_n(2, kg, x, ldx, wp, acc, accumulate); break;
    case 3: s_tile_n(3, kg, x, ldx, wp, acc, accumulate); break;
    case 4: s_tile_n(4, kg, x, ldx, wp, acc, accumulate); break;
    case 5: s_tile_n(5, kg, x, ldx, wp, acc, accumulate); break;
    case 6: s_tile_n(6, kg, x, ldx, wp, acc, accumulate); break;
    case 7: s_tile_n(7, kg, x, ldx, wp, acc, accumulate); break;
    case 8: s_tile_n(8, kg, x, ldx, wp, acc, accumulate); break;
    case 9: s_tile_n(9, kg, x, ldx, wp, acc, accumulate); break;
    case 10: s_tile_n(10, kg, x, ldx, wp, acc, accumulate); break;
    case 11: s_tile_n(11, kg, x, ldx, wp, acc, accumulate); break;
    default: s_tile_n(12, kg, x, ldx, wp, acc, accumulate); break;
    }
}

/* 16 times the low nibbles of b as signed bytes, (b << 4) & 0xF0, by a table lookup (port 5,
 * beside vpdpbusd's port 0, where a shift would go). */
S_INLINE __m512i s_lo16(__m512i b)
{
    const __m512i t = _mm512_broadcast_i32x4(_mm_setr_epi8(0x00, 0x10, 0x20, 0x30, 0x40, 0x50,
                                                           0x60, 0x70, (char)0x80, (char)0x90,
                                                           (char)0xA0, (char)0xB0, (char)0xC0,
                                                           (char)0xD0, (char)0xE0, (char)0xF0));
    return _mm512_shuffle_epi8(t, _mm512_and_si512(b, _mm512_set1_epi8(0x0F)));
}

/* 4-bit panels, a pair of groups per 64-byte load (bs_qkernels_impl.h): (b << 4) & 0xF0 and
 * b & 0xF0 are 16 times the two groups' codes, each one vpdpbusd per row; the sums are
 * shifted back before they are stored. */
#define S_ROW4_INIT(i) __m512i d##i = _mm512_setzero_si512();
#define S_ROW4_STEPD(i, gg, ww, hi)                                                              \
    if (MR > i) {                                                                                \
        __m512i *t = hi && MR <= 4 ? &d##i : &c##i;                                              \
        *t = _mm512_dpbusd_epi32(*t, s_bcast4(x##i + 4 * (gg)), ww);                             \
    }
#define S_ROW4_STEPC(i, gg, ww)                                                                  \
    if (MR > i)                                                                                  \
        c##i = _mm512_dpbusd_epi32(c##i, s_bcast4(x##i + 4 * (gg)), ww);
#define S_ROWS4(gg, ww, hi)                                                                      \
    S_ROW4_STEPD(0, gg, ww, hi) S_ROW4_STEPD(1, gg, ww, hi) S_ROW4_STEPD(2, gg, ww, hi)          \
    S_ROW4_STEPD(3, gg, ww, hi) S_ROW4_STEPC(4, gg, ww) S_ROW4_STEPC(5, gg, ww)                  \
    S_ROW4_STEPC(6, gg, ww) S_ROW4_STEPC(7, gg, ww) S_ROW4_STEPC(8, gg, ww)                      \
    S_ROW4_STEPC(9, gg, ww) S_ROW4_STEPC(10, gg, ww) S_ROW4_STEPC(11, gg, ww)
#define S_ROW4_STORE(i, sum)                                                                     \
    if (MR > i)                                                                                  \
        s_store_acc(acc + i * Z_NR, _mm512_srai_epi32(sum, 4), accumulate);

/* Rows 0..3 of tiles of up to 4 rows sum the high groups in d0..d3 (two dependency chains
 * per row); the other rows use one accumulator. */
S_INLINE void s_tile4_n(int MR, int kg, const uint8_t *x, int64_t ldx, const uint8_t *wp4,
                        int32_t *acc, int accumulate)
{
    S_ROW_INIT(0) S_ROW_INIT(1) S_ROW_INIT(2) S_ROW_INIT(3) S_ROW_INIT(4) S_ROW_INIT(5)
    S_ROW_INIT(6) S_ROW_INIT(7) S_ROW_INIT(8) S_ROW_INIT(9) S_ROW_INIT(10) S_ROW_INIT(11)
    S_ROW4_INIT(0) S_ROW4_INIT(1) S_ROW4_INIT(2) S_ROW4_INIT(3)
    const __m512i m = _mm512_set1_epi8((char)0xF0);
    int g = 0;
    for (; g + 2 <= kg; g += 2) {
        __m512i b = _mm512_loadu_si512((const void *)(wp4 + (int64_t)g * 32));
        __m512i wl = s_lo16(b);
        __m512i wh = _mm512_and_si512(b, m);
        S_ROWS4(g, wl, 0)
        S_ROWS4(g + 1, wh, 1)
    }
    if (g < kg) { /* the last pair's low groups only */
        __m512i b = _mm512_loadu_si512((const void *)(wp4 + (int64_t)g * 32));
        __m512i wl = s_lo16(b);
        S_ROWS4(g, wl, 0)
    }
    S_ROW4_STORE(0, _mm512_add_epi32(c0, d0)) S_ROW4_STORE(1, _mm512_add_epi32(c1, d1))
    S_ROW4_STORE(2, _mm512_add_epi32(c2, d2)) S_ROW4_STORE(3, _mm512_add_epi32(c3, d3))
    S_ROW4_STORE(4, c4) S_ROW4_STORE(5, c5) S_ROW4_STORE(6, c6) S_ROW4_STORE(7, c7)
    S_ROW4_STORE(8, c8) S_ROW4_STORE(9, c9) S_ROW4_STORE(10, c10) S_ROW4_STORE(11, c11)
}

static void s_tile4_avx512vnni(int kg, const uint8_t *x, int64_t ldx, int mv,
                               const uint8_t *wp4, int32_t *acc, int accumulate)
{
    switch (mv) {
    case 1: s_tile4_n(1, kg, x, ldx, wp4, acc, accumulate); break;
    case 2: s_tile4_n(2, kg, x, ldx, wp4, acc, accumulate); break;
    case 3: s_tile4_n(3, kg, x, ldx, wp4, acc, accumulate); break;
    case 4: s_tile4_n(4, kg, x, ldx, wp4, acc, accumulate); break;
    case 5: s_tile4_n(5, kg, x, ldx, wp4, acc, accumulate); break;
    case 6: s_tile4_n(6, kg, x, ldx, wp4, acc, accumulate); break;
    case 7: s_tile4_n(7, kg, x, ldx, wp4, acc, accumulate); break;
    case 8: s_tile4_n(8, kg, x, ldx, wp4, acc, accumulate); break;
    case 9: s_tile4_n(9, kg, x, ldx, wp4, acc, accumulate); break;
    case 10: s_tile4_n(10, kg, x, ldx, wp4, acc, accumulate); break;
    case 11: s_tile4_n(11, kg, x, ldx, wp4, acc, accumulate); break;
    default: s_tile4_n(12, kg, x, ldx, wp4, acc, accumulate); break;
    }
}

/* ---- NCHW convolution and depthwise ---------------------------------------------------- */

/* The epilogue's constants. */
typedef struct z_epc {
    __m512 lo, hi; /* float: Clip bounds; uint8: qlo - zo, qhi - zo */
    __m512i zo;
    int act, out_u8;
} z_epc_t;

S_INLINE z_epc_t z_epc(const bs_qgemm_epi_t *e)
{
    z_epc_t c;
    c.act = e->act;
    c.out_u8 = e->out_u8;
    c.lo = _mm512_set1_ps(e->out_u8 ? (float)(e->qlo - e->zo) : e->lo);
    c.hi = _mm512_set1_ps(e->out_u8 ? (float)(e->qhi - e->zo) : e->hi);
    c.zo = _mm512_set1_epi32(e->zo);
    return c;
}

/* Where a block's results go: its kept lanes and the output element of the first, and how
 * to store them: whole (how 0), as one masked run (1), as two masked runs (3: the end of one
 * output row and the start of the next; the second run's lanes, from lane l2 on, go to
 * at2 + lane), or compressed first (2: more runs). */
typedef struct z_blk {
    unsigned keep;
    int how;
    __mmask16 k1, k2;
    int64_t at, at2;
} z_blk_t;

S_INLINE z_blk_t z_blk(const bs__qgrid_t *gr, int b)
{
    z_blk_t o;
    o.keep = bs__qkeep(gr, b, &o.at);
    o.k1 = (__mmask16)o.keep, o.k2 = 0, o.at2 = 0;
    if (o.keep == 0xFFFFu) {
        o.how = 0;
    } else if ((o.keep & (o.keep + 1u)) == 0) { /* lanes 0 .. n - 1 (or none) */
        o.how = 1;
    } else {
        unsigned lo = o.keep & ~(o.keep + 1u);     /* the run from lane 0 (maybe empty) */
        unsigned rest = o.keep & ~lo;
        unsigned l2 = (unsigned)__builtin_ctz(rest);
        unsigned top = rest + (1u << l2);          /* clears the second run if it ends at 16 */
        if ((top & 0xFFFFu) == 0 || (top & rest) == 0) {
            o.how = 3;
            o.k1 = (__mmask16)lo;
            o.k2 = (__mmask16)rest;
            o.at2 = o.at + __builtin_popcount(lo) - (int64_t)l2;
        } else {
            o.how = 2;
            o.k1 = (__mmask16)((1u << __builtin_popcount(o.keep)) - 1u);
        }
    }
    return o;
}

/* The epilogue of one block (acc: raw sums plus off) into its kept outputs of the plane y:
 * bs__qepi_f32 / bs__qepi_u8 lane by lane (_mm512_max_ps(a, b) is a > b ? a : b and
 * _mm512_min_ps(a, b) a < b ? a : b, NaN: b, the operand orders of the AVX2 epilogue). U8:
 * the output kind, a constant after inlining. */
S_INLINE void z_put(int U8, __m512i acc, __m512 mult, const z_epc_t *c, const z_blk_t *bk,
                    char *y)
{
    __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), mult);
    if (U8) {
        v = _mm512_min_ps(_mm512_max_ps(v, c->lo), c->hi);
        __m512i r = _mm512_add_epi32(_mm512_cvtps_epi32(v), c->zo);
        if (bk->how == 2)
            r = _mm512_maskz_compress_epi32((__mmask16)bk->keep, r);
        __m128i q = _mm512_cvtepi32_epi8(r);
        if (bk->how == 0) {
            _mm_storeu_si128((__m128i *)(y + bk->at), q);
        } else {
            _mm_mask_storeu_epi8(y + bk->at, bk->k1, q);
            if (bk->how == 3)
                _mm_mask_storeu_epi8(y + bk->at2, bk->k2, q);
        }
        return;
    }
    if (c->act == BS_KACT_RELU)
        v = _mm512_max_ps(_mm512_setzero_ps(), v);
    else if (c->act == BS_KACT_CLIP)
        v = _mm512_min_ps(c->hi, _mm512_max_ps(c->lo, v));
    float *f = (float *)y;
    if (bk->how == 0) {
        _mm512_storeu_ps(f + bk->at, v);
    } else if (bk->how == 2) {
        _mm512_mask_storeu_ps(f + bk->at, bk->k1,
                              _mm512_maskz_compress_ps((__mmask16)bk->keep, v));
    } else {
        _mm512_mask_storeu_ps(f + bk->at, bk->k1, v);
        if (bk->how == 3)
            _mm512_mask_storeu_ps(f + bk->at2, bk->k2, v);
    }
}

S_INLINE void z_store_blk(__m512i acc, __m512 mult, const z_epc_t *c, const bs__qgrid_t *gr,
                          int b, char *y)
{
    z_blk_t bk = z_blk(gr, b);
    if (c->out_u8)
        z_put(1, acc, mult, c, &bk, y);
    else
        z_put(0, acc, mult, c, &bk, y);
}

/* X4: 64 positions of 4 taps per step. Each source's 64 bytes are first permuted by 32-bit
 * words (a 4 x 4 transpose of the words of the four 128-bit lanes) so that the byte and word
 * unpacks, which work per lane, leave positions 16j .. 16j + 15 in vector j. A tail is
 * loaded under a mask (zeros past n). */
static void z_x4(const uint8_t *const src[4], int n, uint8_t *dst, int64_t ldb)
{
    const __m512i perm = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    for (int i = 0; i < n; i += 64) {
        int m = n - i < 64 ? n - i : 64;
        __mmask64 k = m == 64 ? ~(__mmask64)0 : (((__mmask64)1 << m) - 1);
        __m512i a = _mm512_permutexvar_epi32(perm, _mm512_maskz_loadu_epi8(k, src[0] + i));
        __m512i b = _mm512_permutexvar_epi32(perm, _mm512_maskz_loadu_epi8(k, src[1] + i));
        __m512i c = _mm512_permutexvar_epi32(perm, _mm512_maskz_loadu_epi8(k, src[2] + i));
        __m512i d = _mm512_permutexvar_epi32(perm, _mm512_maskz_loadu_epi8(k, src[3] + i));
        __m512i ab0 = _mm512_unpacklo_epi8(a, b), ab1 = _mm512_unpackhi_epi8(a, b);
        __m512i cd0 = _mm512_unpacklo_epi8(c, d), cd1 = _mm512_unpackhi_epi8(c, d);
        uint8_t *o = dst + (int64_t)(i / 16) * ldb;
        _mm512_storeu_si512((void *)o, _mm512_unpacklo_epi16(ab0, cd0));
        if (m > 16)
            _mm512_storeu_si512((void *)(o + ldb), _mm512_unpackhi_epi16(ab0, cd0));
        if (m > 32)
            _mm512_storeu_si512((void *)(o + 2 * ldb), _mm512_unpacklo_epi16(ab1, cd1));
        if (m > 48)
            _mm512_storeu_si512((void *)(o + 3 * ldb), _mm512_unpackhi_epi16(ab1, cd1));
    }
}

S_INLINE int32_t z_word(const int8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* Conv tile: MR output channels (rows j0 .. of the panel; mv of them valid) by NB blocks,
 * MR * NB accumulators starting at off, one vpdpbusd per (row, block) per group of 4 taps
 * with the row's 4 codes broadcast. Written out row by row (MR, NB constants after
 * inlining). */
#define Z_CV_INIT(i)                                                                             \
    __m512i a##i##0 = _mm512_set1_epi32(MR > i && i < mv ? e->off[n0 + i] : 0);                  \
    __m512i a##i##1 = a##i##0, a##i##2 = a##i##0;
#define Z_CV_ROW(i)                                                                              \
    if (MR > i) {                                                                                \
        __m512i w = _mm512_set1_epi32(z_word(wg + 4 * i));                                       \
        a##i##0 = _mm512_dpbusd_epi32(a##i##0, x0, w);                                           \
        if (NB > 1)                                                                              \
            a##i##1 = _mm512_dpbusd_epi32(a##i##1, x1, w);                                       \
        if (NB > 2)                                                                              \
            a##i##2 = _mm512_dpbusd_epi32(a##i##2, x2, w);                                       \
    }
#define Z_CV_STORE(i)                                                                            \
    if (MR > i && i < mv) {                                                                      \
        __m512 m = _mm512_set1_ps(e->mult[n0 + i]);                                              \
        char *yi = y + (size_t)((int64_t)i * gr->ys) * esz;                                      \
        z_put(U8, a##i##0, m, &c, &bk0, yi);                                                     \
        if (NB > 1)                                                                              \
            z_put(U8, a##i##1, m, &c, &bk1, yi);                                                 \
        if (NB > 2)                                                                              \
            z_put(U8, a##i##2, m, &c, &bk2, yi);                                                 \
    }
#define Z_CV_ROWS(M)                                                                             \
    M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7) M(8) M(9) M(10) M(11) M(12) M(13) M(14) M(15)

S_INLINE void z_cv(int U8, int MR, int NB, int kg, const uint8_t *x4, int64_t ldb,
                   const int8_t *wp, int mv, const bs_qgemm_epi_t *e, int n0,
                   const bs__qgrid_t *gr, int b0, char *y)
{
    z_epc_t c = z_epc(e);
    size_t esz = U8 ? 1 : sizeof(float);
    Z_CV_ROWS(Z_CV_INIT)
    const uint8_t *xb0 = x4, *xb1 = x4 + (NB > 1 ? ldb : 0), *xb2 = x4 + (NB > 2 ? 2 * ldb : 0);
    for (int g = 0; g < kg; g++) {
        const int8_t *wg = wp + (int64_t)g * Z_NR * 4;
        __m512i x0 = _mm512_loadu_si512((const void *)(xb0 + (int64_t)g * 64));
        __m512i x1 = x0, x2 = x0;
        if (NB > 1)
            x1 = _mm512_loadu_si512((const void *)(xb1 + (int64_t)g * 64));
        if (NB > 2)
            x2 = _mm512_loadu_si512((const void *)(xb2 + (int64_t)g * 64));
        Z_CV_ROWS(Z_CV_ROW)
    }
    /* every row's block j goes where block b0 + j says */
    z_blk_t bk0 = z_blk(gr, b0), bk1 = bk0, bk2 = bk0;
    if (NB > 1)
        bk1 = z_blk(gr, b0 + 1);
    if (NB > 2)
        bk2 = z_blk(gr, b0 + 2);
    Z_CV_ROWS(Z_CV_STORE)
}

#undef Z_CV_INIT
#undef Z_CV_ROW
#undef Z_CV_STORE
#undef Z_CV_ROWS

/* Panels of 16 rows: one block goes 16 rows at a time (16 accumulators), two or three
 * blocks 8 rows at a time (16 or 24); a partial panel's last rows in steps of 4. */
S_INLINE void z_cvtile_u(int U8, int kg, const uint8_t *x4, int64_t ldb, int nb,
                         const int8_t *wp, int nv, const bs_qgemm_epi_t *e, int n0,
                         const bs__qgrid_t *gr, int b0, void *y)
{
    size_t esz = U8 ? 1 : sizeof(float);
    int step = nb == 1 ? 16 : 8;
    for (int j0 = 0; j0 < nv; j0 += step) {
        int mv = nv - j0 < step ? nv - j0 : step, mr = (mv + 3) / 4 * 4;
        const int8_t *w = wp + 4 * j0;
        char *yj = (char *)y + (size_t)((int64_t)j0 * gr->ys) * esz;
        int nj = n0 + j0;
        switch (nb * 32 + mr) {
        case 32 + 4: z_cv(U8, 4, 1, kg, x4, ldb, w, mv, e, nj, gr, b0, yj); break;
        case 32 + 8: z_cv(U8, 8, 1, kg, x4, ldb, w, mv, e, nj, gr, b0, yj); break;
        case 32 + 12: z_cv(U8, 12, 1, kg, x4, ldb, w, mv, e, nj, gr, b0, yj); break;
        case 32 + 16: z_cv(U8, 16, 1, kg, x4, ldb, w, mv, e, nj, gr, b0, yj); break;
        case 64 + 4: z_cv(U8, 4, 2, kg, x4, ldb, w, mv, e, nj, gr, b0, yj); break;
        case 64 + 8: z_cv(U8, 8, 2, kg, x4, ldb, w, mv, e, nj, gr, b0, yj); break;
        case 96 + 4: z_cv(U8, 4, 3, kg, x4, ldb, w, mv, e, nj, gr, b0, yj); break;
        default: z_cv(U8, 8, 3, kg, x4, ldb, w, mv, e, nj, gr, b0, yj); break;
        }
    }
}

static void z_cvtile1(int kg, const uint8_t *x4, const int8_t *wp, int nv,
                      const bs_qgemm_epi_t *e, int n0, const bs__qgrid_t *gr, void *y);

/* Panels of 16 rows: one block goes 16 rows at a time (16 accumulators), two or three
 * blocks 8 rows at a time (16 or 24); a partial panel's last rows in steps of 4. A grid of
 * one block goes transposed (z_cvtile1). */
static void z_cvtile(int kg, const uint8_t *x4, int64_t ldb, int nb, const int8_t *wp, int nv,
                     const bs_qgemm_epi_t *e, int n0, const bs__qgrid_t *gr, int b0, void *y)
{
    if (gr->nblk == 1) {
        z_cvtile1(kg, x4, wp, nv, e, n0, gr, y);
        return;
    }
    if (e->out_u8)
        z_cvtile_u(1, kg, x4, ldb, nb, wp, nv, e, n0, gr, b0, y);
    else
        z_cvtile_u(0, kg, x4, ldb, nb, wp, nv, e, n0, gr, b0, y);
}

/* Depthwise: 16 positions per vector; each lane's 4 window bytes come from one load by a
 * word permute (lane L of positions 4L .. 4L + 3 takes the words from L (stride 1) or 2L
 * (stride 2) on) and a byte shuffle within each lane; then one vpdpbusd with the group's 4
 * codes. NB blocks at a time (SW, NB constants after inlining). */
S_INLINE void z_dw_n(int SW, int NB, const uint8_t *xb, int ngr, const int32_t *goff,
                     const int32_t *wq, __m512i vo, __m512 vm, const z_epc_t *c,
                     const bs__qgrid_t *gr, int b, char *yc)
{
    const __m512i idx = SW == 1
                            ? _mm512_setr_epi32(0, 1, 2, 3, 1, 2, 3, 4, 2, 3, 4, 5, 3, 4, 5, 6)
                            : _mm512_setr_epi32(0, 1, 2, 3, 2, 3, 4, 5, 4, 5, 6, 7, 6, 7, 8, 9);
    const __m512i shf = SW == 1 ? _mm512_set4_epi32(0x06050403, 0x05040302, 0x04030201,
                                                    0x03020100)
                                : _mm512_set4_epi32(0x09080706, 0x07060504, 0x05040302,
                                                    0x03020100);
    __m512i a0 = vo, a1 = vo, a2 = vo, a3 = vo;
    const int64_t step = (int64_t)SW * 16;
    for (int g = 0; g < ngr; g++) {
        __m512i w = _mm512_set1_epi32(wq[g]);
        const uint8_t *p = xb + goff[g] + (int64_t)b * step;
#define Z_DW(h)                                                                                  \
    if (NB > h) {                                                                                \
        __m512i v = SW == 1 ? _mm512_castsi256_si512(                                            \
                                  _mm256_loadu_si256((const __m256i *)(p + h * step)))           \
                            : _mm512_loadu_si512((const void *)(p + h * step));                  \
        v = _mm512_shuffle_epi8(_mm512_permutexvar_epi32(idx, v), shf);                          \
        a##h = _mm512_dpbusd_epi32(a##h, v, w);                                                  \
    }
        Z_DW(0) Z_DW(1) Z_DW(2) Z_DW(3)
#undef Z_DW
    }
    z_store_blk(a0, vm, c, gr, b, yc);
    if (NB > 1)
        z_store_blk(a1, vm, c, gr, b + 1, yc);
    if (NB > 2)
        z_store_blk(a2, vm, c, gr, b + 2, yc);
    if (NB > 3)
        z_store_blk(a3, vm, c, gr, b + 3, yc);
}

/* One batch: first every channel's rows, copied with masked byte loads and stores, and its
 * weight words, loaded (n codes under a mask) when its groups' taps are consecutive codes;
 * then per channel the zero-point term zx * sum(w), summed by vpdpbusd from the words, and
 * its blocks. */
S_INLINE void z_dw_sw(int SW, const bs__qdwp_t *d, const uint8_t *x, const int8_t *w, int nch,
                      const int32_t *off, const float *mult, const z_epc_t *c, size_t esz,
                      uint8_t *buf, int32_t *wq, char *y)
{
    const bs__qgrid_t *gr = d->gr;
    int ngr = d->ngr, nrows = d->nrows, clen = d->clen, direct = clen <= 64;
    for (int g = 0; g < ngr; g++)
        direct &= d->gword[2 * g] >= 0;
    if (direct) {
        /* rows of up to 16 bytes in xmm (fewer loads split across cache lines) */
        __mmask64 krow = clen >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << clen) - 1);
        for (int i = 0; i < nch; i++) {
            const uint8_t *xc = x + i * d->xplane;
            uint8_t *bc = buf + i * d->cbytes;
            const int8_t *wc = w + (int64_t)i * d->T;
            if (clen <= 16)
                for (int r = 0; r < nrows; r++)
                    _mm_mask_storeu_epi8(bc + d->rows[2 * r], (__mmask16)krow,
                                         _mm_maskz_loadu_epi8((__mmask16)krow,
                                                              xc + d->rows[2 * r + 1]));
            else
                for (int r = 0; r < nrows; r++)
                    _mm512_mask_storeu_epi8(
                        bc + d->rows[2 * r], krow,
                        _mm512_maskz_loadu_epi8(krow, xc + d->rows[2 * r + 1]));
            for (int g = 0; g < ngr; g++)
                wq[(int64_t)i * ngr + g] = _mm_cvtsi128_si32(_mm_maskz_loadu_epi8(
                    (__mmask16)((1u << d->gword[2 * g + 1]) - 1u), wc + d->gword[2 * g]));
        }
    } else {
        for (int i = 0; i < nch; i++)
            bs__qdw_prep(d, x, w, i, 0, buf, wq + (int64_t)i * ngr);
    }
    const __m512i zx4 = _mm512_set1_epi32((int32_t)((uint32_t)d->zx * 0x01010101u));
    for (int i = 0; i < nch; i++) {
        const uint8_t *bc = buf + i * d->cbytes;
        const int32_t *wc = wq + (int64_t)i * ngr;
        __m512i corr = _mm512_setzero_si512();
        for (int g = 0; g < ngr; g++)
            corr = _mm512_dpbusd_epi32(corr, zx4, _mm512_set1_epi32(wc[g]));
        __m512i vo = _mm512_sub_epi32(_mm512_set1_epi32(off[i]), corr);
        __m512 vm = _mm512_set1_ps(mult[i]);
        char *yc = y + (size_t)(i * gr->ys) * esz;
        int b = 0;
        for (; b + 4 <= gr->nblk; b += 4)
            z_dw_n(SW, 4, bc, ngr, d->goff, wc, vo, vm, c, gr, b, yc);
        switch (gr->nblk - b) {
        case 1: z_dw_n(SW, 1, bc, ngr, d->goff, wc, vo, vm, c, gr, b, yc); break;
        case 2: z_dw_n(SW, 2, bc, ngr, d->goff, wc, vo, vm, c, gr, b, yc); break;
        case 3: z_dw_n(SW, 3, bc, ngr, d->goff, wc, vo, vm, c, gr, b, yc); break;
        default: break;
        }
    }
}

/* ---- depthwise, small planes: channels as lanes ---------------------------------------- */

/* Planes of at most Z_DWC_P output positions go 16 channels at a time, one channel per lane:
 * the 16 input planes are transposed (16 x 16 bytes at a time) into one zero-point-padded
 * copy P[row][col][16 channels]; for every row r and output column ow, the 4 positions
 * ow*sw + t*dw (t < 4) of P are turned into Q[r][ow], per channel the 4 bytes of one kernel
 * row's taps (a word permute and a byte shuffle: a 4 x 4 transpose of 4-byte words); each
 * output is then one load and one vpdpbusd per kernel row, with that row's codes per
 * channel. 16 outputs at a time are brought back to the channels' planes by a 16 x 16
 * transpose. Kernels at most 4 wide. */
enum { Z_DWC_P = 144 };

#define Z_R16(M)                                                                                 \
    M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7) M(8) M(9) M(10) M(11) M(12) M(13) M(14) M(15)

/* 16 x 16 bytes: r[i] byte j becomes r[j] byte i. */
S_INLINE void z_tr16b(__m128i r[16])
{
    __m128i a[16], b[16];
#define Z_T8(i)                                                                                  \
    a[2 * i] = _mm_unpacklo_epi8(r[2 * i], r[2 * i + 1]);                                        \
    a[2 * i + 1] = _mm_unpackhi_epi8(r[2 * i], r[2 * i + 1]);
    Z_T8(0) Z_T8(1) Z_T8(2) Z_T8(3) Z_T8(4) Z_T8(5) Z_T8(6) Z_T8(7)
    /* a[2i]: columns 0-7 of rows 2i, 2i+1 (pairs); a[2i+1]: columns 8-15 */
#define Z_T16(i)                                                                                 \
    b[4 * i] = _mm_unpacklo_epi16(a[4 * i], a[4 * i + 2]);                                       \
    b[4 * i + 1] = _mm_unpackhi_epi16(a[4 * i], a[4 * i + 2]);                                   \
    b[4 * i + 2] = _mm_unpacklo_epi16(a[4 * i + 1], a[4 * i + 3]);                               \
    b[4 * i + 3] = _mm_unpackhi_epi16(a[4 * i + 1], a[4 * i + 3]);
    Z_T16(0) Z_T16(1) Z_T16(2) Z_T16(3)
    /* b[4i+j]: columns 4j .. 4j+3, each the 4 bytes of rows 4i .. 4i+3 */
#define Z_T32(i, j)                                                                              \
    a[8 * i + 2 * j] = _mm_unpacklo_epi32(b[8 * i + j], b[8 * i + 4 + j]);                       \
    a[8 * i + 2 * j + 1] = _mm_unpackhi_epi32(b[8 * i + j], b[8 * i + 4 + j]);
    Z_T32(0, 0) Z_T32(0, 1) Z_T32(0, 2) Z_T32(0, 3) Z_T32(1, 0) Z_T32(1, 1) Z_T32(1, 2)
    Z_T32(1, 3)
    /* a[8i + 2j (+1)]: columns 4j, 4j+1 (4j+2, 4j+3), 8 bytes each: rows 8i .. 8i+7 */
#define Z_T64(j)                                                                                 \
    r[2 * j] = _mm_unpacklo_epi64(a[j], a[8 + j]);                                               \
    r[2 * j + 1] = _mm_unpackhi_epi64(a[j], a[8 + j]);
    Z_T64(0) Z_T64(1) Z_T64(2) Z_T64(3) Z_T64(4) Z_T64(5) Z_T64(6) Z_T64(7)
#undef Z_T8
#undef Z_T16
#undef Z_T32
#undef Z_T64
}

/* 16 x 16 dwords: r[i] lane j becomes r[j] lane i. */
S_INLINE void z_tr16d(__m512i r[16])
{
    __m512i a[16], b[16];
#define Z_D32(i)                                                                                 \
    a[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);                                    \
    a[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    Z_D32(0) Z_D32(1) Z_D32(2) Z_D32(3) Z_D32(4) Z_D32(5) Z_D32(6) Z_D32(7)
#define Z_D64(i)                                                                                 \
    b[4 * i] = _mm512_unpacklo_epi64(a[4 * i], a[4 * i + 2]);                                    \
    b[4 * i + 1] = _mm512_unpackhi_epi64(a[4 * i], a[4 * i + 2]);                                \
    b[4 * i + 2] = _mm512_unpacklo_epi64(a[4 * i + 1], a[4 * i + 3]);                            \
    b[4 * i + 3] = _mm512_unpackhi_epi64(a[4 * i + 1], a[4 * i + 3]);
    Z_D64(0) Z_D64(1) Z_D64(2) Z_D64(3)
    /* b[4i+j], 128-bit lane L: columns 4L + j of rows 4i .. 4i+3 */
#define Z_L1(i, j)                                                                               \
    a[8 * i + j] = _mm512_shuffle_i32x4(b[8 * i + j], b[8 * i + 4 + j], 0x88);                   \
    a[8 * i + 4 + j] = _mm512_shuffle_i32x4(b[8 * i + j], b[8 * i + 4 + j], 0xDD);
    Z_L1(0, 0) Z_L1(0, 1) Z_L1(0, 2) Z_L1(0, 3) Z_L1(1, 0) Z_L1(1, 1) Z_L1(1, 2) Z_L1(1, 3)
    /* a[8i + j]: lanes (rows 4(2i) .., 4(2i+1) ..) x columns j + {0, 8}; a[8i+4+j]: + {4, 12} */
#define Z_L2(j)                                                                                  \
    r[j] = _mm512_shuffle_i32x4(a[j], a[8 + j], 0x88);                                           \
    r[j + 8] = _mm512_shuffle_i32x4(a[j], a[8 + j], 0xDD);                                       \
    r[j + 4] = _mm512_shuffle_i32x4(a[4 + j], a[12 + j], 0x88);                                  \
    r[j + 12] = _mm512_shuffle_i32x4(a[4 + j], a[12 + j], 0xDD);
    Z_L2(0) Z_L2(1) Z_L2(2) Z_L2(3)
#undef Z_D32
#undef Z_D64
#undef Z_L1
#undef Z_L2
}

typedef struct z_dwcg {
    int Hp, Wp;          /* the padded copy P: rows, columns */
    int64_t pbytes;      /* bytes of one channel group's P */
    int64_t qbytes;      /* bytes of Q */
} z_dwcg_t;

static int z_dwc_fits(const bs__qdwp_t *d, z_dwcg_t *z)
{
    const bs_conv2d_t *g = d->g;
    int64_t P = (int64_t)g->OH * g->OW; /* past 64 outputs, strided planes do better */
    if (g->KW > 4 || g->KH > 64 || P > Z_DWC_P || (P > 64 && g->sw > 1) || g->pt < 0 ||
        g->pl < 0)
        return 0;
    int64_t Hp = (int64_t)(g->OH - 1) * g->sh + (int64_t)(g->KH - 1) * g->dh + 1;
    int64_t Wp = (int64_t)(g->OW - 1) * g->sw + 3 * (int64_t)g->dw + 1; /* whole quads */
    int64_t pb = Hp * Wp * 16, qb = Hp * g->OW * 64;
    if (Hp > 4096 || Wp > 4096 || pb + qb + 64 > d->bufbytes)
        return 0;
    z->Hp = (int)Hp, z->Wp = (int)Wp, z->pbytes = pb, z->qbytes = qb;
    return 1;
}

/* One round: outputs p0 .. p0 + np - 1 (np <= NP, 8 or 16) of 16 channels (nc valid) into
 * their planes y (channel 0's; planes ys elements apart). qp[i]: output p0 + i's row of Q.
 * Written out lane by lane (the compiler keeps arrays of vectors in memory unless every index
 * is a constant). */
S_INLINE void z_dwc_round(int U8, int NP, int KH, int64_t kstep, const uint8_t *const *qp,
                          int p0, int np, const __m512i *wk, __m512i start, __m512 vm,
                          const z_epc_t *c, int nc, int64_t ys, char *y)
{
    __m512i acc[16];
#define Z_AI(i) acc[i] = start;
    Z_R16(Z_AI)
#undef Z_AI
    for (int kh = 0; kh < KH; kh++) {
        __m512i w = wk[kh];
        int64_t o = kh * kstep;
#define Z_AC(i)                                                                                  \
    if (i < NP)                                                                                  \
        acc[i] = _mm512_dpbusd_epi32(acc[i], _mm512_loadu_si512((const void *)(qp[i] + o)), w);
        Z_R16(Z_AC)
#undef Z_AC
    }
    __mmask16 kp = (__mmask16)(np >= 16 ? 0xFFFFu : (1u << np) - 1u);
    if (U8) {
        __m128i r[16];
#define Z_EU(i)                                                                                  \
    if (i < NP) {                                                                                \
        __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(acc[i]), vm);                                \
        v = _mm512_min_ps(_mm512_max_ps(v, c->lo), c->hi);                                       \
        r[i] = _mm512_cvtepi32_epi8(_mm512_add_epi32(_mm512_cvtps_epi32(v), c->zo));             \
    } else {                                                                                     \
        r[i] = _mm_setzero_si128();                                                              \
    }
        Z_R16(Z_EU)
#undef Z_EU
        z_tr16b(r);
#define Z_SU(i)                                                                                  \
    if (i < nc)                                                                                  \
        _mm_mask_storeu_epi8(y + i * ys + p0, kp, r[i]);
        Z_R16(Z_SU)
#undef Z_SU
        return;
    }
#define Z_EF(i)                                                                                  \
    if (i < NP) {                                                                                \
        __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(acc[i]), vm);                                \
        if (c->act == BS_KACT_RELU)                                                              \
            v = _mm512_max_ps(_mm512_setzero_ps(), v);                                           \
        else if (c->act == BS_KACT_CLIP)                                                         \
            v = _mm512_min_ps(c->hi, _mm512_max_ps(c->lo, v));                                   \
        acc[i] = _mm512_castps_si512(v);                                                         \
    } else {                                                                                     \
        acc[i] = _mm512_setzero_si512();                                                         \
    }
    Z_R16(Z_EF)
#undef Z_EF
    z_tr16d(acc);
#define Z_SF(i)                                                                                  \
    if (i < nc)                                                                                  \
        _mm512_mask_storeu_ps((float *)y + i * ys + p0, kp, _mm512_castsi512_ps(acc[i]));
    Z_R16(Z_SF)
#undef Z_SF
}

/* The input of the 16 channels (nc valid) whose planes start at xg into P (whose padding
 * holds zx), transposed 16 positions of the planes at a time. */
static void z_dwc_fill(const z_dwcg_t *z, const bs__qdwp_t *d, const uint8_t *xg, int nc,
                       uint8_t *Pb)
{
    const bs_conv2d_t *g = d->g;
    const int Hp = z->Hp, Wp = z->Wp, W = g->W, pt = g->pt, pl = g->pl;
    const int64_t xplane = d->xplane;
    /* input rows [0, ih1) and columns [0, iw1) land inside P */
    int ih1 = g->H < Hp - pt ? g->H : Hp - pt, iw1 = W < Wp - pl ? W : Wp - pl;
    int n = ih1 * W;
    for (int p0 = 0, ih = 0, iw = 0; p0 < n; p0 += 16) {
        int m = n - p0 < 16 ? n - p0 : 16;
        __mmask16 km = (__mmask16)((1u << m) - 1u);
        __m128i r[16];
        const uint8_t *xr = xg + p0;
#define Z_LR(ch)                                                                                 \
    r[ch] = ch < nc ? _mm_maskz_loadu_epi8(km, xr + ch * xplane) : _mm_setzero_si128();
        Z_R16(Z_LR)
#undef Z_LR
        z_tr16b(r);
#define Z_SR(j)                                                                                  \
    if (j < m) {                                                                                 \
        if (iw < iw1)                                                                            \
            _mm_storeu_si128((__m128i *)(Pb + (((int64_t)ih + pt) * Wp + pl + iw) * 16), r[j]); \
        if (++iw == W)                                                                           \
            iw = 0, ih++;                                                                        \
    }
        Z_R16(Z_SR)
#undef Z_SR
    }
}

/* nch channels, 16 at a time (layout: z_dwc_fits): first every group's P, as many as buf
 * holds, then per group its Q, its codes and the rounds of 16 (or 8) outputs. */
static void z_dwc(const z_dwcg_t *z, const bs__qdwp_t *d, const uint8_t *x, const int8_t *w,
                  int nch, const int32_t *off, const float *mult, const z_epc_t *c,
                  uint8_t *buf, int fresh, char *y)
{
    const bs_conv2d_t *g = d->g;
    const int Hp = z->Hp, Wp = z->Wp, OW = g->OW, T = d->T, KW = g->KW, KH = g->KH;
    const int sw = g->sw, dw = g->dw;
    const int64_t ys = (int64_t)g->OH * g->OW, esz = c->out_u8 ? 1 : 4;
    const int P = g->OH * g->OW;
    const int64_t xplane = d->xplane, kstep = (int64_t)g->dh * OW * 64;
    const __m512i idx = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    const __m512i shf = _mm512_set4_epi32(0x0F0B0703, 0x0E0A0602, 0x0D090501, 0x0C080400);
    const __m512i zx4 = _mm512_set1_epi32((int32_t)((uint32_t)d->zx * 0x01010101u));
    const __m512i vbase = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32(T));
    const __m512i kwm =
        _mm512_set1_epi32((int32_t)(KW == 4 ? 0xFFFFFFFFu : (1u << (8 * KW)) - 1u));
    int64_t qoff[Z_DWC_P]; /* output p's row of Q, kernel row 0 */
    for (int p = 0, oh = 0, ow = 0; p < P; p++) {
        qoff[p] = ((int64_t)oh * g->sh * OW + ow) * 64;
        if (++ow == OW)
            ow = 0, oh++;
    }
    /* buf: gmax groups' P, Q, and (its last 64 bytes) how many P have their padding */
    int gmax = (int)((d->bufbytes - 64 - z->qbytes) / z->pbytes);
    uint8_t *Q = buf + (d->bufbytes - 64 - z->qbytes);
    int32_t *ready = (int32_t *)(buf + d->bufbytes - 64), nready = fresh ? 0 : *ready;
    int need = (nch + 15) / 16 < gmax ? (nch + 15) / 16 : gmax;
    if (need > nready) { /* the padding never changes: only the input's bytes are written */
        memset(buf + nready * z->pbytes, (int)d->zx, (size_t)((need - nready) * z->pbytes));
        *ready = nready = need;
    }
    __m512i wk[64];
    for (int cs = 0; cs < nch; cs += 16 * gmax) {
        int ns = nch - cs < 16 * gmax ? nch - cs : 16 * gmax;
        for (int c0 = 0; c0 < ns; c0 += 16) /* every P first: their stores settle meanwhile */
            z_dwc_fill(z, d, x + (cs + c0) * xplane, ns - c0 < 16 ? ns - c0 : 16,
                       buf + (int64_t)(c0 / 16) * z->pbytes);
        for (int c0 = 0; c0 < ns; c0 += 16) {
            int nc = ns - c0 < 16 ? ns - c0 : 16, cc = cs + c0;
            __mmask16 kc = (__mmask16)(nc >= 16 ? 0xFFFFu : (1u << nc) - 1u);
            const uint8_t *Pb = buf + (int64_t)(c0 / 16) * z->pbytes;
            /* Q: per row and output column, the 4 taps' bytes of each channel side by side */
            for (int r = 0; r < Hp; r++)
                for (int ow = 0; ow < OW; ow++) {
                    const uint8_t *s = Pb + ((int64_t)r * Wp + (int64_t)ow * sw) * 16;
                    __m512i v;
                    if (dw == 1) {
                        v = _mm512_loadu_si512((const void *)s);
                    } else {
                        int64_t st = (int64_t)dw * 16;
                        v = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)s));
                        v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(s + st)), 1);
                        v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(s + 2 * st)),
                                               2);
                        v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(s + 3 * st)),
                                               3);
                    }
                    v = _mm512_shuffle_epi8(_mm512_permutexvar_epi32(idx, v), shf);
                    _mm512_storeu_si512((void *)(Q + ((int64_t)r * OW + ow) * 64), v);
                }
            /* each kernel row's codes per channel (gathered as 4 bytes, the ones past the
             * row masked off; a word that would read past the batch's codes is built byte by
             * byte), and zx * sum(w) */
            __m512i corr = _mm512_setzero_si512();
            const int8_t *wg = w + (int64_t)cc * T;
            int64_t left = (int64_t)(nch - cc) * T; /* codes readable from wg on */
            for (int kh = 0; kh < KH; kh++) {
                __m512i ix = _mm512_add_epi32(vbase, _mm512_set1_epi32(kh * KW));
                __mmask16 ok = kc;
                int last = -1;
                if ((int64_t)(nc - 1) * T + kh * KW + 4 > left)
                    last = nc - 1, ok = (__mmask16)(ok & ~(1u << last));
                __m512i v = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), ok, ix, wg, 1);
                v = _mm512_and_si512(v, kwm);
                if (last >= 0) {
                    uint32_t word = 0;
                    for (int b = 0; b < KW; b++)
                        word |= (uint32_t)(uint8_t)wg[(int64_t)last * T + kh * KW + b]
                                << (8 * b);
                    v = _mm512_mask_set1_epi32(v, (__mmask16)(1u << last), (int32_t)word);
                }
                wk[kh] = v;
                corr = _mm512_dpbusd_epi32(corr, zx4, v);
            }
            __m512i start = _mm512_sub_epi32(_mm512_maskz_loadu_epi32(kc, off + cc), corr);
            __m512 vm = _mm512_maskz_loadu_ps(kc, mult + cc);
            char *yg = y + (size_t)(cc * ys) * (size_t)esz;
            for (int p0 = 0; p0 < P; p0 += 16) {
                int np = P - p0 < 16 ? P - p0 : 16;
                const uint8_t *qp[16];
                for (int i = 0; i < 16; i++) /* past np: any output's row */
                    qp[i] = Q + qoff[p0 + (i < np ? i : 0)];
                if (c->out_u8 && np > 8)
                    z_dwc_round(1, 16, KH, kstep, qp, p0, np, wk, start, vm, c, nc, ys, yg);
                else if (c->out_u8)
                    z_dwc_round(1, 8, KH, kstep, qp, p0, np, wk, start, vm, c, nc, ys, yg);
                else if (np > 8)
                    z_dwc_round(0, 16, KH, kstep, qp, p0, np, wk, start, vm, c, nc, ys, yg);
                else
                    z_dwc_round(0, 8, KH, kstep, qp, p0, np, wk, start, vm, c, nc, ys, yg);
            }
        }
    }
}

/* 4-bit panels (bs_qkernels_impl.h), a pair of groups per 64-byte load: the low nibbles
 * are the first group, the high ones (shifted down) the second, each sign-extended by a
 * pshufb table lookup. */
static void z_exp4(const uint8_t *src, int64_t n, int8_t *dst)
{
    const __m512i m = _mm512_set1_epi8(0x0F);
    const __m512i t = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, -8, -7, -6,
                                                           -5, -4, -3, -2, -1));
    for (int64_t i = 0; i < n; i += 128) {
        __m512i b = _mm512_loadu_si512((const void *)(src + i / 2));
        _mm512_storeu_si512((void *)(dst + i),
                            _mm512_shuffle_epi8(t, _mm512_and_si512(b, m)));
        if (i + 64 < n)
            _mm512_storeu_si512((void *)(dst + i + 64),
                                _mm512_shuffle_epi8(t, _mm512_and_si512(_mm512_srli_epi16(b, 4),
                                                                        m)));
    }
}

/* ---- convolution, grids of one block: output channels as lanes ------------------------ */

/* The whole grid (at most 16 positions, NP of them computed: 4, 8, 12 or 16) against one
 * panel of 16 output channels: per group of 4 taps one 64-byte load of the panel (16
 * channels' words: exactly vpdpbusd's signed operand) and, per position, its 4 X4 bytes
 * broadcast; accumulator p holds position p of every channel. The epilogue runs per
 * position on the 16 channels (their off and mult vectors), a 16 x 16 transpose brings each
 * channel's positions together, and each channel's are stored as the block says. */
S_INLINE void z_cv1(int U8, int NP, int W4, int kg, const uint8_t *x4, const void *wp, int nv,
                    const bs_qgemm_epi_t *e, int n0, const bs__qgrid_t *gr, char *y)
{
    z_epc_t c = z_epc(e);
    __mmask16 kn = (__mmask16)(nv >= 16 ? 0xFFFFu : (1u << nv) - 1u);
    __m512i vo = _mm512_maskz_loadu_epi32(kn, e->off + n0);
    __m512 vm = _mm512_maskz_loadu_ps(kn, e->mult + n0);
    __m512i acc[16];
#define Z_1I(i) acc[i] = W4 ? _mm512_setzero_si512() : vo;
    Z_R16(Z_1I)
#undef Z_1I
#define Z_1A(i)                                                                                  \
    if (i < NP)                                                                                  \
        acc[i] = _mm512_dpbusd_epi32(acc[i],                                                     \
                                     _mm512_set1_epi32(z_word((const int8_t *)xg + 4 * i)), w);
    if (W4) { /* a pair of groups per load, 16 times the codes; shifted back, plus off */
        const __m512i m = _mm512_set1_epi8((char)0xF0);
        int g = 0;
        for (; g + 2 <= kg; g += 2) {
            __m512i b = _mm512_loadu_si512((const void *)((const uint8_t *)wp + (int64_t)g * 32));
            __m512i w = s_lo16(b);
            const uint8_t *xg = x4 + (int64_t)g * 64;
            Z_R16(Z_1A)
            w = _mm512_and_si512(b, m);
            xg += 64;
            Z_R16(Z_1A)
        }
        if (g < kg) { /* the last pair's low groups only */
            __m512i b = _mm512_loadu_si512((const void *)((const uint8_t *)wp + (int64_t)g * 32));
            __m512i w = s_lo16(b);
            const uint8_t *xg = x4 + (int64_t)g * 64;
            Z_R16(Z_1A)
        }
#define Z_1O(i)                                                                                  \
    if (i < NP)                                                                                  \
        acc[i] = _mm512_add_epi32(vo, _mm512_srai_epi32(acc[i], 4));
        Z_R16(Z_1O)
#undef Z_1O
    } else {
        for (int g = 0; g < kg; g++) {
            __m512i w = _mm512_loadu_si512((const void *)((const int8_t *)wp + (int64_t)g * 64));
            const uint8_t *xg = x4 + (int64_t)g * 64;
            Z_R16(Z_1A)
        }
    }
#undef Z_1A
#define Z_1E(i)                                                                                  \
    if (i < NP) {                                                                                \
        __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(acc[i]), vm);                                \
        if (U8) {                                                                                \
            v = _mm512_min_ps(_mm512_max_ps(v, c.lo), c.hi);                                     \
            acc[i] = _mm512_add_epi32(_mm512_cvtps_epi32(v), c.zo);                              \
        } else {                                                                                 \
            if (c.act == BS_KACT_RELU)                                                           \
                v = _mm512_max_ps(_mm512_setzero_ps(), v);                                       \
            else if (c.act == BS_KACT_CLIP)                                                      \
                v = _mm512_min_ps(c.hi, _mm512_max_ps(c.lo, v));                                 \
            acc[i] = _mm512_castps_si512(v);                                                     \
        }                                                                                        \
    } else {                                                                                     \
        acc[i] = _mm512_setzero_si512();                                                         \
    }
    Z_R16(Z_1E)
#undef Z_1E
    z_tr16d(acc);
    z_blk_t bk = z_blk(gr, 0);
    size_t esz = U8 ? 1 : sizeof(float);
#define Z_1S(i)                                                                                  \
    if (i < nv) {                                                                                \
        char *yi = y + (size_t)((int64_t)i * gr->ys) * esz;                                      \
        __m512i r = acc[i];                                                                      \
        if (bk.how == 2)                                                                         \
            r = _mm512_maskz_compress_epi32((__mmask16)bk.keep, r);                              \
        if (U8) {                                                                                \
            __m128i q = _mm512_cvtepi32_epi8(r);                                                 \
            _mm_mask_storeu_epi8(yi + bk.at, bk.k1, q);                                          \
            if (bk.how == 3)                                                                     \
                _mm_mask_storeu_epi8(yi + bk.at2, bk.k2, q);                                     \
        } else {                                                                                 \
            _mm512_mask_storeu_epi32((float *)yi + bk.at, bk.k1, r);                             \
            if (bk.how == 3)                                                                     \
                _mm512_mask_storeu_epi32((float *)yi + bk.at2, bk.k2, r);                        \
        }                                                                                        \
    }
    Z_R16(Z_1S)
#undef Z_1S
}

static void z_cvtile1(int kg, const uint8_t *x4, const int8_t *wp, int nv,
                      const bs_qgemm_epi_t *e, int n0, const bs__qgrid_t *gr, void *y)
{
    int np = (gr->nq + 3) / 4 * 4;
    switch (np * 2 + (e->out_u8 != 0)) {
    case 8: z_cv1(0, 4, 0, kg, x4, wp, nv, e, n0, gr, y); break;
    case 9: z_cv1(1, 4, 0, kg, x4, wp, nv, e, n0, gr, y); break;
    case 16: z_cv1(0, 8, 0, kg, x4, wp, nv, e, n0, gr, y); break;
    case 17: z_cv1(1, 8, 0, kg, x4, wp, nv, e, n0, gr, y); break;
    case 24: z_cv1(0, 12, 0, kg, x4, wp, nv, e, n0, gr, y); break;
    case 25: z_cv1(1, 12, 0, kg, x4, wp, nv, e, n0, gr, y); break;
    case 32: z_cv1(0, 16, 0, kg, x4, wp, nv, e, n0, gr, y); break;
    default: z_cv1(1, 16, 0, kg, x4, wp, nv, e, n0, gr, y); break;
    }
}

/* bs__qcvtile4_fn: z_cvtile1 on a 4-bit panel, read in place. */
static void z_cvtile14(int kg, const uint8_t *x4, const uint8_t *wp4, int nv,
                       const bs_qgemm_epi_t *e, int n0, const bs__qgrid_t *gr, void *y)
{
    int np = (gr->nq + 3) / 4 * 4;
    switch (np * 2 + (e->out_u8 != 0)) {
    case 8: z_cv1(0, 4, 1, kg, x4, wp4, nv, e, n0, gr, y); break;
    case 9: z_cv1(1, 4, 1, kg, x4, wp4, nv, e, n0, gr, y); break;
    case 16: z_cv1(0, 8, 1, kg, x4, wp4, nv, e, n0, gr, y); break;
    case 17: z_cv1(1, 8, 1, kg, x4, wp4, nv, e, n0, gr, y); break;
    case 24: z_cv1(0, 12, 1, kg, x4, wp4, nv, e, n0, gr, y); break;
    case 25: z_cv1(1, 12, 1, kg, x4, wp4, nv, e, n0, gr, y); break;
    case 32: z_cv1(0, 16, 1, kg, x4, wp4, nv, e, n0, gr, y); break;
    default: z_cv1(1, 16, 1, kg, x4, wp4, nv, e, n0, gr, y); break;
    }
}

static void z_dw(const bs__qdwp_t *d, const uint8_t *x, const int8_t *w, int nch,
                 const int32_t *off, const float *mult, const bs_qgemm_epi_t *e, uint8_t *buf,
                 int32_t *wq, int fresh, void *y)
{
    z_epc_t c = z_epc(e);
    size_t esz = e->out_u8 ? 1 : sizeof(float);
    z_dwcg_t z;
    if (z_dwc_fits(d, &z)) {
        z_dwc(&z, d, x, w, nch, off, mult, &c, buf, fresh, y);
        return;
    }
    if (d->sw > 2) {
        bs__qdw_ref(d, x, w, nch, off, mult, e, buf, wq, fresh, y);
        return;
    }
    if (fresh) /* the padding of every copy: the channels only ever write the input's bytes */
        memset(buf, (int)d->zx, (size_t)(d->bufbytes / d->cbytes * d->cbytes));
    if (d->sw == 1)
        z_dw_sw(1, d, x, w, nch, off, mult, &c, esz, buf, wq, y);
    else
        z_dw_sw(2, d, x, w, nch, off, mult, &c, esz, buf, wq, y);
}

const bs__qkernels_t bs__qkernels_avx512vnni = {
    .name = "avx512vnni",
    .nr = Z_NR,
    .mr = Z_MR,
    .kq = 4,
    .tile = s_tile_avx512vnni,
    .epi = bs__qepi_avx2,
    .unpack = bs__qunpack_avx2,
    .quantize = bs__qquant_avx2,
    .im2row = bs__qim2row_avx2,
    .x4 = z_x4,
    .cvtile = z_cvtile,
    .cvb = 3,
    .dw = z_dw,
    .deint2 = bs__qdeint2_avx2,
    .exp4 = z_exp4,
    .tile4 = s_tile4_avx512vnni,
    .cvtile4 = z_cvtile14,
};

/*
 * bs_kernels_avx512.c - AVX-512 (F, VL, BW) + FMA kernels (x86-64); the only file compiled
 * with -mavx512f -mavx512vl -mavx512bw -mfma and the only one using their intrinsics. Chosen
 * at run time by bs_kernels.c when the CPU has them.
 *
 * GEMM (layouts in bs_kernels_impl.h; W panels 32 wide, X micro-panels 12 rows for the row
 * tile and 32 values of m for the column tile):
 *   - row tile 12 x 32: 24 zmm accumulators (12 rows of m, two vectors of 16 n), per k two
 *     loads of the W panel and twelve broadcasts of packed X; it also serves conv planes of
 *     few pixels (sym == 1, M <= rows_max_m: every lane does useful work, where the column
 *     tile would leave most of a vector of m empty), storing each column of the tile,
 *     gathered from a spill, as one run of m;
 *   - single-row GEMV (a micro-panel of one row, as in a batch-1 Gemm / MatMul): up to four
 *     panels at once, eight independent accumulator chains, so the FMA latency is hidden
 *     while each output is still one sequential sum over k;
 *   - column tile (sym == 1, NCHW conv planes), one call per 32-wide panel: with more than 16
 *     values of m, two vectors of m by up to 12 columns of n (24 accumulators) in chunks of
 *     12, 12, 8; with 16 or fewer (small feature maps), one vector of m by up to 16 columns
 *     in chunks of 16.
 * Each tile is specialised at compile time on its row (column) count; ragged edges on the
 * vector axis use masked loads and stores. Bias and the activation are applied on the
 * registers as they are stored. Every output is summed over k in order, as the reference.
 *
 * im2col: the same copies as bs__im2col_rows (bit for bit), but each run of 16 outputs of a
 * row is one masked load (zero outside the image) and one masked store; stride 2 loads 32
 * inputs and keeps the even ones with one permute.
 *
 * Depthwise: a channel-interleaved kernel (16 channels per vector) for small planes, a flat
 * kernel (see below) for planes with rows of up to 32 outputs, several channels per call;
 * otherwise the AVX2 band kernel (bs__dw_plane_avx2; the CPU has AVX2 whenever it has
 * AVX-512).
 *
 * Direct convolution (bs_conv2d_direct, layout in bs_kernels_impl.h): the phase-plane copy
 * is filled in runs of 16 (stride 2 splits even and odd columns with two permutes); a tile
 * is 48 positions (three vectors) by up to 8 output channels, per k three loads at that k's
 * offset and eight weight broadcasts, stored through each vector's keep mask.
 */
#include <immintrin.h>

#include "bs_kernels_impl.h"

#define S_INLINE static inline __attribute__((always_inline))

enum { Z_MR = 12, Z_NR = 32, Z_MT = 32, Z_NT = 32 };

/* The first n lanes (0..16) set. */
S_INLINE __mmask16 z_mask(int n)
{
    return (__mmask16)((1u << n) - 1u);
}

/* NaN-preserving like bs__act1: max/min return their second operand when one is NaN. */
S_INLINE __m512 z_act(__m512 v, int act, float lo, float hi)
{
    if (act == BS_KACT_RELU)
        return _mm512_max_ps(_mm512_setzero_ps(), v);
    if (act == BS_KACT_CLIP)
        return _mm512_min_ps(_mm512_set1_ps(hi), _mm512_max_ps(_mm512_set1_ps(lo), v));
    return v;
}

/* Stores the lanes of v under mask m at contiguous y, with the tile epilogue. */
S_INLINE void z_epi(float *y, __m512 v, __mmask16 m, const bs__gemm_epi_t *e, int has_bias,
                    __m512 bias)
{
    if (e->accumulate)
        v = _mm512_add_ps(_mm512_maskz_loadu_ps(m, y), v);
    if (e->final) {
        if (has_bias)
            v = _mm512_add_ps(v, bias);
        v = z_act(v, e->act, e->lo, e->hi);
    }
    _mm512_mask_storeu_ps(y, m, v);
}

/* ---- GEMM row tile: MV rows of m (1..12) x 32 columns of n ---------------------------- */

#define Z_ROW_FMA(i)                                                                             \
    if (MV > i) {                                                                                \
        __m512 a = _mm512_set1_ps(xp[i]);                                                        \
        c##i##0 = _mm512_fmadd_ps(a, b0, c##i##0);                                               \
        c##i##1 = _mm512_fmadd_ps(a, b1, c##i##1);                                               \
    }
#define Z_ROW_STORE(i)                                                                           \
    if (MV > i) {                                                                                \
        z_epi(y + i * sym, c##i##0, m0, e, hb, bb0);                                             \
        if (m1)                                                                                  \
            z_epi(y + i * sym + 16, c##i##1, m1, e, hb, bb1);                                    \
    }
#define Z_ROW_SPILL(i)                                                                           \
    if (MV > i) {                                                                                \
        _mm512_storeu_ps(t + i * Z_NR, c##i##0);                                                 \
        _mm512_storeu_ps(t + i * Z_NR + 16, c##i##1);                                            \
    }
#define Z_ROWS12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

S_INLINE void z_rows(const int MV, int kc, const float *xp, const float *wp, float *y,
                     int64_t sym, int64_t syn, int nv, const bs__gemm_epi_t *e)
{
    __m512 z = _mm512_setzero_ps();
    __m512 c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z, c30 = z, c31 = z;
    __m512 c40 = z, c41 = z, c50 = z, c51 = z, c60 = z, c61 = z, c70 = z, c71 = z;
    __m512 c80 = z, c81 = z, c90 = z, c91 = z, c100 = z, c101 = z, c110 = z, c111 = z;
    for (int k = 0; k < kc; k++) {
        __m512 b0 = _mm512_loadu_ps(wp), b1 = _mm512_loadu_ps(wp + 16);
        Z_ROWS12(Z_ROW_FMA)
        xp += Z_MR;
        wp += Z_NR;
    }
    if (syn == 1) {
        int n0 = nv < 16 ? nv : 16, n1 = nv > 16 ? nv - 16 : 0;
        __mmask16 m0 = z_mask(n0), m1 = z_mask(n1);
        __m512 bb0 = z, bb1 = z;
        int hb = e->final && e->bias;
        if (hb) {
            bb0 = _mm512_maskz_loadu_ps(m0, e->bias);
            bb1 = _mm512_maskz_loadu_ps(m1, e->bias + 16);
        }
        Z_ROWS12(Z_ROW_STORE)
        return;
    }
    float t[Z_MR * Z_NR];
    Z_ROWS12(Z_ROW_SPILL)
    if (sym == 1) { /* transposed store (conv planes of few pixels): column j of the tile */
        const __m512i idx = _mm512_mullo_epi32(
            _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
            _mm512_set1_epi32(Z_NR));
        __mmask16 mm = z_mask(MV);
        int hb = e->final && e->bias;
        for (int j = 0; j < nv; j++) {
            __m512 v = _mm512_mask_i32gather_ps(z, mm, idx, t + j, 4);
            z_epi(y + j * syn, v, mm, e, hb, hb ? _mm512_set1_ps(e->bias[j]) : z);
        }
        return;
    }
    for (int i = 0; i < MV; i++)
        for (int j = 0; j < nv; j++)
            bs__gemm_store1(y + i * sym + j * syn, t[i * Z_NR + j], e, j);
}

static void s_gemm_rows_avx512(int kc, const float *xp, const float *wp, float *y, int64_t sym,
                               int64_t syn, int mv, int nv, const bs__gemm_epi_t *e)
{
    switch (mv) {
    case 1: z_rows(1, kc, xp, wp, y, sym, syn, nv, e); break;
    case 2: z_rows(2, kc, xp, wp, y, sym, syn, nv, e); break;
    case 3: z_rows(3, kc, xp, wp, y, sym, syn, nv, e); break;
    case 4: z_rows(4, kc, xp, wp, y, sym, syn, nv, e); break;
    case 5: z_rows(5, kc, xp, wp, y, sym, syn, nv, e); break;
    case 6: z_rows(6, kc, xp, wp, y, sym, syn, nv, e); break;
    case 7: z_rows(7, kc, xp, wp, y, sym, syn, nv, e); break;
    case 8: z_rows(8, kc, xp, wp, y, sym, syn, nv, e); break;
    case 9: z_rows(9, kc, xp, wp, y, sym, syn, nv, e); break;
    case 10: z_rows(10, kc, xp, wp, y, sym, syn, nv, e); break;
    case 11: z_rows(11, kc, xp, wp, y, sym, syn, nv, e); break;
    default: z_rows(12, kc, xp, wp, y, sym, syn, nv, e); break;
    }
}

/* ---- single-row GEMV over several panels ---------------------------------------------- */

/* NP (1..4) panels of one row: panel q at wp + q*wps, its outputs at y + q*32*syn, bias at
 * e->bias + q*32; the last panel has nvl valid columns, the others 32. */
#define Z_GV_FMA(q)                                                                              \
    if (NP > q) {                                                                                \
        c##q##0 = _mm512_fmadd_ps(a, _mm512_loadu_ps(w##q + k * Z_NR), c##q##0);                 \
        c##q##1 = _mm512_fmadd_ps(a, _mm512_loadu_ps(w##q + k * Z_NR + 16), c##q##1);            \
    }
#define Z_GV_STORE(q)                                                                            \
    if (NP > q) {                                                                                \
        int nv = q == NP - 1 ? nvl : Z_NR;                                                       \
        int n0 = nv < 16 ? nv : 16, n1 = nv > 16 ? nv - 16 : 0;                                  \
        const float *bq = hb ? e->bias + q * Z_NR : NULL;                                        \
        float *yq = y + q * Z_NR;                                                                \
        if (syn == 1) {                                                                          \
            __mmask16 m0 = z_mask(n0), m1 = z_mask(n1);                                          \
            z_epi(yq, c##q##0, m0, e, hb, hb ? _mm512_maskz_loadu_ps(m0, bq) : z);               \
            if (n1)                                                                              \
                z_epi(yq + 16, c##q##1, m1, e, hb, hb ? _mm512_maskz_loadu_ps(m1, bq + 16) : z); \
        } else {                                                                                 \
            float t[Z_NR];                                                                       \
            _mm512_storeu_ps(t, c##q##0);                                                        \
            _mm512_storeu_ps(t + 16, c##q##1);                                                   \
            bs__gemm_epi_t eq = *e;                                                              \
            eq.bias = bq;                                                                        \
            for (int j = 0; j < nv; j++)                                                         \
                bs__gemm_store1(y + (int64_t)(q * Z_NR + j) * syn, t[j], &eq, j);                \
        }                                                                                        \
    }

S_INLINE void z_gemv(const int NP, int kc, const float *xp, int64_t xs, const float *wp,
                     int64_t wps, float *y, int64_t syn, int nvl, const bs__gemm_epi_t *e)
{
    __m512 z = _mm512_setzero_ps();
    __m512 c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z, c30 = z, c31 = z;
    const float *w0 = wp, *w1 = NP > 1 ? wp + wps : wp, *w2 = NP > 2 ? wp + 2 * wps : wp;
    const float *w3 = NP > 3 ? wp + 3 * wps : wp;
    for (int k = 0; k < kc; k++) {
        __m512 a = _mm512_set1_ps(xp[(int64_t)k * xs]);
        Z_GV_FMA(0) Z_GV_FMA(1) Z_GV_FMA(2) Z_GV_FMA(3)
    }
    int hb = e->final && e->bias;
    Z_GV_STORE(0) Z_GV_STORE(1) Z_GV_STORE(2) Z_GV_STORE(3)
}

static void s_gemm_row1_avx512(int kc, const float *xp, int64_t xs, const float *wp,
                               int64_t wps, int np, float *y, int64_t syn, int nvl,
                               const bs__gemm_epi_t *e)
{
    bs__gemm_epi_t eq = *e;
    for (int p = 0; p < np; p += 4) {
        int n = np - p < 4 ? np - p : 4;
        int last = p + n == np ? nvl : Z_NR;
        eq.bias = e->bias ? e->bias + p * Z_NR : NULL;
        const float *w = wp + p * wps;
        float *yp = y + (int64_t)p * Z_NR * syn;
        switch (n) {
        case 1: z_gemv(1, kc, xp, xs, w, wps, yp, syn, last, &eq); break;
        case 2: z_gemv(2, kc, xp, xs, w, wps, yp, syn, last, &eq); break;
        case 3: z_gemv(3, kc, xp, xs, w, wps, yp, syn, last, &eq); break;
        default: z_gemv(4, kc, xp, xs, w, wps, yp, syn, last, &eq); break;
        }
    }
}

/* ---- GEMM column tiles, for sym == 1 --------------------------------------------------- */

/* Two vectors of m (mv 17..32) x NV columns (1..12). */
#define Z_C2_FMA(j)                                                                              \
    if (NV > j) {                                                                                \
        __m512 b = _mm512_set1_ps(wp[j]);                                                        \
        c##j##0 = _mm512_fmadd_ps(b, a0, c##j##0);                                               \
        c##j##1 = _mm512_fmadd_ps(b, a1, c##j##1);                                               \
    }
#define Z_C2_STORE(j)                                                                            \
    if (NV > j) {                                                                                \
        __m512 bb = hb ? _mm512_set1_ps(e->bias[j]) : z;                                         \
        z_epi(y + j * syn, c##j##0, m0, e, hb, bb);                                              \
        z_epi(y + j * syn + 16, c##j##1, m1, e, hb, bb);                                         \
    }

S_INLINE void z_cols2(const int NV, int kc, const float *xp, const float *wp, float *y,
                      int64_t syn, int mv, const bs__gemm_epi_t *e)
{
    __m512 z = _mm512_setzero_ps();
    __m512 c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z, c30 = z, c31 = z;
    __m512 c40 = z, c41 = z, c50 = z, c51 = z, c60 = z, c61 = z, c70 = z, c71 = z;
    __m512 c80 = z, c81 = z, c90 = z, c91 = z, c100 = z, c101 = z, c110 = z, c111 = z;
    for (int k = 0; k < kc; k++) {
        __m512 a0 = _mm512_loadu_ps(xp), a1 = _mm512_loadu_ps(xp + 16);
        Z_ROWS12(Z_C2_FMA)
        xp += Z_MT;
        wp += Z_NR;
    }
    __mmask16 m0 = z_mask(16), m1 = z_mask(mv - 16);
    int hb = e->final && e->bias;
    Z_ROWS12(Z_C2_STORE)
}

/* One vector of m (mv 1..16) x NV columns (1..16). */
#define Z_C1_FMA(j)                                                                              \
    if (NV > j)                                                                                  \
        c##j = _mm512_fmadd_ps(_mm512_set1_ps(wp[j]), a0, c##j);
#define Z_C1_STORE(j)                                                                            \
    if (NV > j)                                                                                  \
        z_epi(y + j * syn, c##j, m0, e, hb, hb ? _mm512_set1_ps(e->bias[j]) : z);
#define Z_COLS16(X)                                                                              \
    X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15)

S_INLINE void z_cols1(const int NV, int kc, const float *xp, const float *wp, float *y,
                      int64_t syn, int mv, const bs__gemm_epi_t *e)
{
    __m512 z = _mm512_setzero_ps();
    __m512 c0 = z, c1 = z, c2 = z, c3 = z, c4 = z, c5 = z, c6 = z, c7 = z;
    __m512 c8 = z, c9 = z, c10 = z, c11 = z, c12 = z, c13 = z, c14 = z, c15 = z;
    for (int k = 0; k < kc; k++) {
        __m512 a0 = _mm512_loadu_ps(xp);
        Z_COLS16(Z_C1_FMA)
        xp += Z_MT;
        wp += Z_NR;
    }
    __mmask16 m0 = z_mask(mv);
    int hb = e->final && e->bias;
    Z_COLS16(Z_C1_STORE)
}

static void s_cols2(int nv, int kc, const float *xp, const float *wp, float *y, int64_t syn,
                    int mv, const bs__gemm_epi_t *e)
{
    switch (nv) {
    case 1: z_cols2(1, kc, xp, wp, y, syn, mv, e); break;
    case 2: z_cols2(2, kc, xp, wp, y, syn, mv, e); break;
    case 3: z_cols2(3, kc, xp, wp, y, syn, mv, e); break;
    case 4: z_cols2(4, kc, xp, wp, y, syn, mv, e); break;
    case 5: z_cols2(5, kc, xp, wp, y, syn, mv, e); break;
    case 6: z_cols2(6, kc, xp, wp, y, syn, mv, e); break;
    case 7: z_cols2(7, kc, xp, wp, y, syn, mv, e); break;
    case 8: z_cols2(8, kc, xp, wp, y, syn, mv, e); break;
    case 9: z_cols2(9, kc, xp, wp, y, syn, mv, e); break;
    case 10: z_cols2(10, kc, xp, wp, y, syn, mv, e); break;
    case 11: z_cols2(11, kc, xp, wp, y, syn, mv, e); break;
    default: z_cols2(12, kc, xp, wp, y, syn, mv, e); break;
    }
}

static void s_cols1(int nv, int kc, const float *xp, const float *wp, float *y, int64_t syn,
                    int mv, const bs__gemm_epi_t *e)
{
    switch (nv) {
    case 1: z_cols1(1, kc, xp, wp, y, syn, mv, e); break;
    case 2: z_cols1(2, kc, xp, wp, y, syn, mv, e); break;
    case 3: z_cols1(3, kc, xp, wp, y, syn, mv, e); break;
    case 4: z_cols1(4, kc, xp, wp, y, syn, mv, e); break;
    case 5: z_cols1(5, kc, xp, wp, y, syn, mv, e); break;
    case 6: z_cols1(6, kc, xp, wp, y, syn, mv, e); break;
    case 7: z_cols1(7, kc, xp, wp, y, syn, mv, e); break;
    case 8: z_cols1(8, kc, xp, wp, y, syn, mv, e); break;
    case 9: z_cols1(9, kc, xp, wp, y, syn, mv, e); break;
    case 10: z_cols1(10, kc, xp, wp, y, syn, mv, e); break;
    case 11: z_cols1(11, kc, xp, wp, y, syn, mv, e); break;
    case 12: z_cols1(12, kc, xp, wp, y, syn, mv, e); break;
    case 13: z_cols1(13, kc, xp, wp, y, syn, mv, e); break;
    case 14: z_cols1(14, kc, xp, wp, y, syn, mv, e); break;
    case 15: z_cols1(15, kc, xp, wp, y, syn, mv, e); break;
    default: z_cols1(16, kc, xp, wp, y, syn, mv, e); break;
    }
}

/* A whole panel (nv <= 32 columns) of mv values of m, in column chunks. */
static void s_gemm_cols_avx512(int kc, const float *xp, const float *wp, float *y, int64_t syn,
                               int mv, int nv, const bs__gemm_epi_t *e)
{
    bs__gemm_epi_t ec = *e;
    int step = mv > 16 ? 12 : 16;
    for (int c = 0; c < nv; c += step) {
        int cv = nv - c < step ? nv - c : step;
        ec.bias = e->bias ? e->bias + c : NULL;
        if (mv > 16)
            s_cols2(cv, kc, xp, wp + c, y + (int64_t)c * syn, syn, mv, &ec);
        else
            s_cols1(cv, kc, xp, wp + c, y + (int64_t)c * syn, syn, mv, &ec);
    }
}

/* ---- im2col --------------------------------------------------------------------------- */

/* Lanes [a, b) of 16 set (a, b clamped to 0..16). */
S_INLINE __mmask16 z_range(int a, int b)
{
    a = a < 0 ? 0 : a > 16 ? 16 : a;
    b = b < 0 ? 0 : b > 16 ? 16 : b;
    return (__mmask16)(z_mask(b) & ~z_mask(a));
}

static void s_im2col_avx512(const bs_conv2d_t *g, const float *x, float *col)
{
    int sw = g->sw;
    if (sw != 1 && sw != 2) {
        bs__im2col_rows(g, x, col);
        return;
    }
    int64_t P = (int64_t)g->OH * g->OW;
    int OW = g->OW;
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26,
                                           28, 30);
    for (int c = 0; c < g->C; c++) {
        const float *xc = x + (int64_t)c * g->H * g->W;
        for (int kh = 0; kh < g->KH; kh++)
            for (int kw = 0; kw < g->KW; kw++) {
                float *row = col + ((int64_t)(c * g->KH + kh) * g->KW + kw) * P;
                /* ow in [a, b) reads inside the row (as bs__im2col_rows) */
                int iw0 = kw * g->dw - g->pl;
                int a = iw0 >= 0 ? 0 : (-iw0 + sw - 1) / sw;
                int b = g->W - 1 - iw0 < 0 ? 0 : (g->W - 1 - iw0) / sw + 1;
                if (b > OW)
                    b = OW;
                if (a > b)
                    a = b;
                for (int oh = 0; oh < g->OH; oh++) {
                    float *out = row + (int64_t)oh * OW;
                    int ih = oh * g->sh + kh * g->dh - g->pt;
                    int inside = ih >= 0 && ih < g->H;
                    const float *in = xc + (int64_t)(inside ? ih : 0) * g->W + iw0;
                    for (int o = 0; o < OW; o += 16) {
                        __mmask16 st = z_mask(OW - o < 16 ? OW - o : 16);
                        __m512 v = _mm512_setzero_ps();
                        if (inside && sw == 1) {
                            v = _mm512_maskz_loadu_ps(z_range(a - o, b - o), in + o);
                        } else if (inside) {
                            /* inputs 2*ow for ow in [a, b): offsets [2a, 2b - 1) from in */
                            int lo = 2 * a - 2 * o, hi = 2 * b - 1 - 2 * o;
                            __m512 v0 = _mm512_maskz_loadu_ps(z_range(lo, hi), in + 2 * o);
                            __m512 v1 = _mm512_maskz_loadu_ps(z_range(lo - 16, hi - 16),
                                                              in + 2 * o + 16);
                            v = _mm512_permutex2var_ps(v0, even, v1);
                        }
                        _mm512_mask_storeu_ps(out + o, st, v);
                    }
                }
            }
    }
}

/* ---- depthwise -------------------------------------------------------------------------- */

/* The flat kernel. A plane is copied, zero-padded, into a buffer of rows Wp wide (just wide
 * enough for every tap); at stride 1 output (oh, ow) has its tap (0, 0) at q = oh*Wp + ow and
 * tap (kh, kw) at q + kh*dh*Wp + kw*dw, so the whole plane is one 1-D convolution over q:
 * 16 consecutive q per vector, one plain load per tap, with no row ends or borders. Strides
 * of 2 (either axis) split the copy by phase, as the direct convolution does (layout in
 * bs_kernels_impl.h; filled by s_conv_fill_avx512): phase planes of Hq x Wq, output (oh, ow)
 * at q = oh*Wq + ow and tap (kh, kw) at a fixed offset, so again every q of a vector is
 * computed from one plain load per tap. Lanes whose q is not an output (padding columns) are
 * then dropped by a compress, and the kept lanes stored, in order, at the next outputs.
 * Small planes thus fill whole vectors (a 3x3 plane is one vector), and wide ones waste only
 * the padding columns. Rows of up to 32 outputs take it (at stride 1 the AVX2 band kernel
 * measured faster on wider ones). The geometry (tap offsets, which lanes of each vector are
 * kept) is worked out once per call for all its channels. Every sum runs over kh, then kw. */
enum { Z_DW_BUF = 12288, Z_DW_TAPS = 25 };

typedef struct z_dw_geo {
    int64_t rows, Wp, L; /* padded rows and width (of each phase plane); q positions computed */
    int ntap, k3;
    bs__direct_t d; /* the phase planes (strided planes only) */
    int off[Z_DW_TAPS];
    __mmask16 keep[Z_DW_BUF / 16 + 1]; /* kept lanes of vector v (q0 = 16 v) */
} z_dw_geo_t;

/* 0 when the flat kernel does not apply to g. */
static int z_dw_setup(const bs_conv2d_t *g, z_dw_geo_t *z)
{
    int sh = g->sh, sw = g->sw;
    /* phase planes: rows Hq, width Wq, as the direct convolution's copy (bs_kernels_impl.h) */
    z->rows = (int64_t)g->OH + (int64_t)(g->KH - 1) * g->dh / sh;
    z->Wp = (int64_t)g->OW + (int64_t)(g->KW - 1) * g->dw / sw;
    z->ntap = g->KH * g->KW;
    /* measured: wide stride-1 rows (48) run faster in the AVX2 band kernel */
    int ok = sh <= 2 && sw <= 2 && g->OW <= 32;
    if (!ok || sh * sw * z->rows * z->Wp > Z_DW_BUF || z->ntap > Z_DW_TAPS)
        return 0;
    z->k3 = g->KH == 3 && g->KW == 3;
    int64_t Sq = z->rows * z->Wp;
    z->d = (bs__direct_t){.sh = sh, .sw = sw, .OW = g->OW, .Wq = (int)z->Wp,
                          .Hq = (int)z->rows, .Sq = Sq, .cstride = sh * sw * Sq};
    for (int kh = 0, t = 0; kh < g->KH; kh++)
        for (int kw = 0; kw < g->KW; kw++, t++) {
            int r = kh * g->dh, c = kw * g->dw;
            z->off[t] = (int)(((r % sh) * sw + c % sw) * Sq + (r / sh) * z->Wp + c / sw);
        }
    z->L = (int64_t)(g->OH - 1) * z->Wp + g->OW;
    /* column (cv) of each lane's q, advanced by 16 per vector */
    __m512i cv = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i vWp = _mm512_set1_epi32((int)z->Wp), v16 = _mm512_set1_epi32(16);
    const __m512i cend = _mm512_set1_epi32(g->OW);
    int64_t v = 0;
    for (int64_t q0 = 0; q0 < z->L; q0 += 16, v++) {
        __mmask16 wrap;
        while ((wrap = _mm512_cmpge_epi32_mask(cv, vWp)))
            cv = _mm512_mask_sub_epi32(cv, wrap, cv, vWp);
        __mmask16 keep = _mm512_cmplt_epi32_mask(cv, cend);
        if (z->L - q0 < 16)
            keep &= z_mask((int)(z->L - q0));
        z->keep[v] = keep;
        cv = _mm512_add_epi32(cv, v16);
    }
    return 1;
}

static void s_conv_fill_avx512(const bs_conv2d_t *g, const bs__direct_t *d, const float *xc,
                               float *bc);

static void z_dw_plane(const bs_conv2d_t *g, const z_dw_geo_t *z, float *buf, const float *x,
                       const float *w, float b, float *y, int act, float lo, float hi)
{
    int64_t rows = z->rows, Wp = z->Wp;
    if (g->sh * g->sw > 1) {
        s_conv_fill_avx512(g, &z->d, x, buf);
        _mm512_storeu_ps(buf + z->d.cstride, _mm512_setzero_ps()); /* the last overread */
        rows = 0;
    }
    /* padded plane: buffer row r, column c holds x[r - pt][c - pl] (zero outside) */
    for (int64_t r = 0; r < rows; r++) {
        float *d = buf + r * Wp;
        int64_t ih = r - g->pt;
        if (ih < 0 || ih >= g->H) {
            for (int64_t c = 0; c < Wp; c += 16)
                _mm512_storeu_ps(d + c, _mm512_setzero_ps());
            continue;
        }
        const float *xr = x + ih * g->W;
        for (int64_t c = 0; c < Wp; c += 16) { /* lanes whose column c + i - pl is inside */
            __mmask16 m = z_range((int)(g->pl - c), (int)(g->pl + g->W - c));
            __m512 v = m ? _mm512_maskz_loadu_ps(m, xr + (c - g->pl)) : _mm512_setzero_ps();
            _mm512_storeu_ps(d + c, v); /* masked-off lanes are not read */
        }
    }
    if (rows)
        _mm512_storeu_ps(buf + rows * Wp, _mm512_setzero_ps()); /* the last vector's overread */
    __m512 wv[Z_DW_TAPS];
    for (int t = 0; t < z->ntap; t++)
        wv[t] = _mm512_set1_ps(w[t]);
    __m512 vb = _mm512_set1_ps(b);
    float *yo = y;
    const int *off = z->off;
    int64_t o1 = off[1], o2 = off[2], r1 = off[3], r2 = off[6];
    for (int64_t q0 = 0, v = 0; q0 < z->L; q0 += 16, v++) {
        const float *p = buf + q0;
        __m512 a;
        if (z->k3) { /* weights in registers, one FMA chain in tap order */
            a = _mm512_mul_ps(_mm512_loadu_ps(p), wv[0]);
            a = _mm512_fmadd_ps(_mm512_loadu_ps(p + o1), wv[1], a);
            a = _mm512_fmadd_ps(_mm512_loadu_ps(p + o2), wv[2], a);
            a = _mm512_fmadd_ps(_mm512_loadu_ps(p + r1), wv[3], a);
            a = _mm512_fmadd_ps(_mm512_loadu_ps(p + r1 + o1), wv[4], a);
            a = _mm512_fmadd_ps(_mm512_loadu_ps(p + r1 + o2), wv[5], a);
            a = _mm512_fmadd_ps(_mm512_loadu_ps(p + r2), wv[6], a);
            a = _mm512_fmadd_ps(_mm512_loadu_ps(p + r2 + o1), wv[7], a);
            a = _mm512_fmadd_ps(_mm512_loadu_ps(p + r2 + o2), wv[8], a);
        } else {
            a = _mm512_setzero_ps();
            for (int t = 0; t < z->ntap; t++)
                a = _mm512_fmadd_ps(_mm512_loadu_ps(p + off[t]), wv[t], a);
        }
        a = z_act(_mm512_add_ps(a, vb), act, lo, hi);
        __mmask16 keep = z->keep[v];
        if (keep == 0xFFFF) {
            _mm512_storeu_ps(yo, a);
            yo += 16;
            continue;
        }
        int nk = __builtin_popcount(keep);
        _mm512_mask_storeu_ps(yo, z_mask(nk), _mm512_maskz_compress_ps(keep, a));
        yo += nk;
    }
}

/* The channel-interleaved kernel, for small planes (where one channel's plane fills few
 * lanes and per-channel setup dominates): 16 channels at a time, one per lane. Their planes
 * are gathered into a zero-padded copy of Hp x Wp positions, 16 channels per position (as
 * NCHW16c), each output position is then one vector of 16 channels, a sequential FMA chain
 * over the taps (kh, then kw) with the weights (gathered once per block) in registers, plus
 * the bias; the outputs go back to the 16 planes by 16 x 16 transposes, 16 positions at a
 * time (measured: faster than scatters; for the input, gathers measured faster than
 * transposes). Any stride and dilation; the last block of a call masks its missing channels.
 * Taken for inputs of up to 576 positions and outputs of up to 144 with 8 or more channels
 * (the choice depends on g only, never on the channel range, so that results do not depend
 * on the thread count): measured faster than the flat kernel there, and slower on 24 x 24
 * stride-1 planes. */
enum { Z_DWC_POS = 768, Z_DWC_MAXHW = 576, Z_DWC_MAXOHW = 144 };

/* In place: r[j] lane i becomes r[i] lane j (a 16 x 16 transpose). */
S_INLINE void z_transpose16(__m512 r[16])
{
    __m512 t[16], u[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) {
        u[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        u[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
        u[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        u[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
    for (int i = 0; i < 4; i++) { /* t: v0..v7 from u0..u7, v8..v15 from u8..u15 */
        t[i] = _mm512_shuffle_f32x4(u[i], u[i + 4], 0x88);
        t[i + 4] = _mm512_shuffle_f32x4(u[i], u[i + 4], 0xDD);
        t[i + 8] = _mm512_shuffle_f32x4(u[i + 8], u[i + 12], 0x88);
        t[i + 12] = _mm512_shuffle_f32x4(u[i + 8], u[i + 12], 0xDD);
    }
    for (int i = 0; i < 8; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
        r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xDD);
    }
}

typedef struct z_dwc_geo {
    int Hp, Wp;
} z_dwc_geo_t;

/* 0 when the channel-interleaved kernel does not apply to g (or is not the faster one). */
static int z_dwc_setup(const bs_conv2d_t *g, z_dwc_geo_t *z)
{
    int64_t Hp = (int64_t)(g->OH - 1) * g->sh + (int64_t)(g->KH - 1) * g->dh + 1;
    int64_t Wp = (int64_t)(g->OW - 1) * g->sw + (int64_t)(g->KW - 1) * g->dw + 1;
    int64_t hw = (int64_t)g->H * g->W, ohw = (int64_t)g->OH * g->OW;
    if (g->C < 8 || Hp * Wp > Z_DWC_POS || hw > Z_DWC_MAXHW || ohw > Z_DWC_MAXOHW ||
        g->KH * g->KW > Z_DW_TAPS)
        return 0;
    z->Hp = (int)Hp;
    z->Wp = (int)Wp;
    return 1;
}

/* Channels [c0, c0 + nc) (nc <= 16) of a depthwise convolution; x, w, bias, y: channel c0. */
static void z_dwc_block(const bs_conv2d_t *g, const z_dwc_geo_t *z, float *buf, float *obuf,
                        const float *x,
                        const float *w, const float *bias, float *y, int nc, int act, float lo,
                        float hi)
{
    const __mmask16 m = z_mask(nc);
    const int hw = g->H * g->W, ohw = g->OH * g->OW, kk = g->KH * g->KW;
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i wi = _mm512_mullo_epi32(lane, _mm512_set1_epi32(kk));
    const __m512 zero = _mm512_setzero_ps();
    const __m512i xi = _mm512_mullo_epi32(lane, _mm512_set1_epi32(hw));
    int Hp = z->Hp, Wp = z->Wp;
    for (int r = 0; r < Hp; r++) {
        float *d = buf + (int64_t)r * Wp * 16;
        int ih = r - g->pt;
        if (ih < 0 || ih >= g->H) {
            for (int s = 0; s < Wp; s++)
                _mm512_store_ps(d + s * 16, zero);
            continue;
        }
        const float *xr = x + (int64_t)ih * g->W;
        for (int s = 0; s < Wp; s++) {
            int iw = s - g->pl;
            __m512 v = zero;
            if (iw >= 0 && iw < g->W)
                v = _mm512_mask_i32gather_ps(zero, m, xi, xr + iw, 4);
            _mm512_store_ps(d + s * 16, v);
        }
    }
    __m512 r[16];
    __m512 wv[Z_DW_TAPS];
    for (int t = 0; t < kk; t++)
        wv[t] = _mm512_mask_i32gather_ps(zero, m, wi, w + t, 4);
    __m512 vb = bias ? _mm512_maskz_loadu_ps(m, bias) : zero;
    int64_t rs = (int64_t)g->dh * Wp * 16, cs = (int64_t)g->dw * 16;
    int k3 = g->KH == 3 && g->KW == 3;
    for (int oh = 0; oh < g->OH; oh++) {
        const float *pr = buf + (int64_t)oh * g->sh * Wp * 16;
        for (int ow = 0; ow < g->OW; ow++) {
            const float *p = pr + (int64_t)ow * g->sw * 16;
            __m512 a = zero;
            if (k3) {
                a = _mm512_fmadd_ps(_mm512_load_ps(p), wv[0], a);
                a = _mm512_fmadd_ps(_mm512_load_ps(p + cs), wv[1], a);
                a = _mm512_fmadd_ps(_mm512_load_ps(p + 2 * cs), wv[2], a);
                a = _mm512_fmadd_ps(_mm512_load_ps(p + rs), wv[3], a);
                a = _mm512_fmadd_ps(_mm512_load_ps(p + rs + cs), wv[4], a);
                a = _mm512_fmadd_ps(_mm512_load_ps(p + rs + 2 * cs), wv[5], a);
                a = _mm512_fmadd_ps(_mm512_load_ps(p + 2 * rs), wv[6], a);
                a = _mm512_fmadd_ps(_mm512_load_ps(p + 2 * rs + cs), wv[7], a);
                a = _mm512_fmadd_ps(_mm512_load_ps(p + 2 * rs + 2 * cs), wv[8], a);
            } else {
                for (int kh = 0, t = 0; kh < g->KH; kh++)
                    for (int kw = 0; kw < g->KW; kw++, t++)
                        a = _mm512_fmadd_ps(_mm512_load_ps(p + kh * rs + kw * cs), wv[t], a);
            }
            _mm512_store_ps(obuf + ((int64_t)oh * g->OW + ow) * 16,
                            z_act(_mm512_add_ps(a, vb), act, lo, hi));
        }
    }
    /* back to the planes: 16 output positions at a time */
    for (int p0 = 0; p0 < ohw; p0 += 16) {
        int np = ohw - p0 < 16 ? ohw - p0 : 16;
        for (int j = 0; j < 16; j++)
            r[j] = j < np ? _mm512_load_ps(obuf + (int64_t)(p0 + j) * 16) : zero;
        z_transpose16(r);
        for (int c = 0; c < nc; c++)
            _mm512_mask_storeu_ps(y + (int64_t)c * ohw + p0, z_mask(np), r[c]);
    }
}

/* Channels [c0, c1) of a depthwise convolution (x, w, y: channel 0 of each). */
static void s_dw_planes_avx512(const bs_conv2d_t *g, const float *x, const float *w,
                               const float *bias, float *y, int c0, int c1, int act, float lo,
                               float hi)
{
    float buf[Z_DW_BUF + 16] __attribute__((aligned(64)));
    z_dw_geo_t z;
    int64_t pin = (int64_t)g->H * g->W, pout = (int64_t)g->OH * g->OW;
    int kk = g->KH * g->KW;
    z_dwc_geo_t zc;
    if (z_dwc_setup(g, &zc)) {
        float cbuf[Z_DWC_POS * 16] __attribute__((aligned(64)));
        float obuf[Z_DWC_MAXOHW * 16] __attribute__((aligned(64)));
        for (int c = c0; c < c1; c += 16)
            z_dwc_block(g, &zc, cbuf, obuf, x + c * pin, w + c * kk, bias ? bias + c : NULL,
                        y + c * pout, c1 - c < 16 ? c1 - c : 16, act, lo, hi);
        return;
    }
    int flat = z_dw_setup(g, &z);
    for (int c = c0; c < c1; c++) {
        float b = bias ? bias[c] : 0.0f;
        if (flat)
            z_dw_plane(g, &z, buf, x + c * pin, w + c * kk, b, y + c * pout, act, lo, hi);
        else
            bs__dw_plane_avx2(g, x + c * pin, w + c * kk, b, y + c * pout, act, lo, hi);
    }
}

static void s_dw_plane_avx512(const bs_conv2d_t *g, const float *x, const float *w, float b,
                              float *y, int act, float lo, float hi)
{
    s_dw_planes_avx512(g, x, w, &b, y, 0, 1, act, lo, hi);
}

/* ---- direct convolution ---------------------------------------------------------------- */

/* Tile of MQ vectors of 16 positions (1..3) x NV channels (1..8) of one W panel: per k, MQ
 * loads of the phase-plane copy at that k's offset and NV broadcasts of the weights, 24
 * accumulators at most. Each output vector is then stored through its keep mask: whole,
 * as one masked run, or compressed when the vector holds the end of one row and the start
 * of the next. */
#define Z_DT_FMA(j)                                                                              \
    if (NV > j) {                                                                                \
        __m512 b = _mm512_set1_ps(w[j]);                                                         \
        c##j##0 = _mm512_fmadd_ps(b, a0, c##j##0);                                               \
        if (MQ > 1)                                                                              \
            c##j##1 = _mm512_fmadd_ps(b, a1, c##j##1);                                           \
        if (MQ > 2)                                                                              \
            c##j##2 = _mm512_fmadd_ps(b, a2, c##j##2);                                           \
    }
#define Z_DT_STORE(j)                                                                            \
    if (NV > j) {                                                                                \
        __m512 bb = bias ? _mm512_set1_ps(bias[j]) : z;                                          \
        float *yj = y + j * ys;                                                                  \
        z_dt_store(yj, z_act(_mm512_add_ps(c##j##0, bb), act, lo, hi), keep[0], dst[0]);         \
        if (MQ > 1)                                                                              \
            z_dt_store(yj, z_act(_mm512_add_ps(c##j##1, bb), act, lo, hi), keep[1], dst[1]);     \
        if (MQ > 2)                                                                              \
            z_dt_store(yj, z_act(_mm512_add_ps(c##j##2, bb), act, lo, hi), keep[2], dst[2]);     \
    }
#define Z_CH8(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)

/* Stores the lanes kp of v at y + dst, in order. */
S_INLINE void z_dt_store(float *y, __m512 v, unsigned kp, int32_t dst)
{
    if (kp == 0xFFFFu)
        _mm512_storeu_ps(y + dst, v);
    else if ((kp & (kp + 1u)) == 0) /* lanes 0 .. n-1 (or none) */
        _mm512_mask_storeu_ps(y + dst, (__mmask16)kp, v);
    else
        _mm512_mask_storeu_ps(y + dst, z_mask(__builtin_popcount(kp)),
                              _mm512_maskz_compress_ps((__mmask16)kp, v));
}

S_INLINE void z_dt(const int MQ, const int NV, int K, const float *xb, const int32_t *koff,
                   const float *w, const float *bias, float *y, int64_t ys,
                   const uint16_t *keep, const int32_t *dst, int act, float lo, float hi)
{
    __m512 z = _mm512_setzero_ps();
    __m512 c00 = z, c01 = z, c02 = z, c10 = z, c11 = z, c12 = z, c20 = z, c21 = z, c22 = z;
    __m512 c30 = z, c31 = z, c32 = z, c40 = z, c41 = z, c42 = z, c50 = z, c51 = z, c52 = z;
    __m512 c60 = z, c61 = z, c62 = z, c70 = z, c71 = z, c72 = z;
    for (int k = 0; k < K; k++) {
        const float *p = xb + koff[k];
        __m512 a0 = _mm512_loadu_ps(p);
        __m512 a1 = MQ > 1 ? _mm512_loadu_ps(p + 16) : z;
        __m512 a2 = MQ > 2 ? _mm512_loadu_ps(p + 32) : z;
        Z_CH8(Z_DT_FMA)
        w += Z_NR;
    }
    Z_CH8(Z_DT_STORE)
}

/* One channel's phase planes, row by row in runs of 16 of each plane row: at stride 1 one
 * load, at stride 2 two loads whose even inputs go to column phase 0 and odd ones to
 * phase 1 (two permutes). Loads are masked only where a run reaches outside the row;
 * zero outside the image. */
static void s_conv_fill_avx512(const bs_conv2d_t *g, const bs__direct_t *d, const float *xc,
                               float *bc)
{
    int sh = d->sh, sw = d->sw, Wq = d->Wq, W = g->W;
    if (sw > 2) {
        bs__conv_fill_ref(g, d, xc, bc);
        return;
    }
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26,
                                           28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    const __m512 zero = _mm512_setzero_ps();
    for (int a = 0; a < sh; a++) {
        float *p0 = bc + (int64_t)a * sw * d->Sq, *p1 = p0 + d->Sq;
        for (int r = 0; r < d->Hq; r++) {
            float *r0 = p0 + (int64_t)r * Wq, *r1 = p1 + (int64_t)r * Wq;
            int64_t ih = (int64_t)r * sh + a - g->pt;
            if (ih < 0 || ih >= g->H) {
                for (int s0 = 0; s0 < Wq; s0 += 16) {
                    __mmask16 st = z_mask(Wq - s0 < 16 ? Wq - s0 : 16);
                    _mm512_mask_storeu_ps(r0 + s0, st, zero);
                    if (sw == 2)
                        _mm512_mask_storeu_ps(r1 + s0, st, zero);
                }
                continue;
            }
            const float *in = xc + ih * W;
            for (int s0 = 0; s0 < Wq; s0 += 16) {
                __mmask16 st = z_mask(Wq - s0 < 16 ? Wq - s0 : 16);
                /* input column base + j for j < 16*sw; phase b's lane i is j = i*sw + b */
                int base = s0 * sw - g->pl;
                __m512 v0, v1 = zero;
                if (base >= 0 && base + 16 * sw <= W) {
                    v0 = _mm512_loadu_ps(in + base);
                    if (sw == 2)
                        v1 = _mm512_loadu_ps(in + base + 16);
                } else {
                    __mmask16 m0 = z_range(-base, W - base);
                    v0 = m0 ? _mm512_maskz_loadu_ps(m0, in + base) : zero;
                    if (sw == 2) {
                        __mmask16 m1 = z_range(-base - 16, W - base - 16);
                        v1 = m1 ? _mm512_maskz_loadu_ps(m1, in + base + 16) : zero;
                    }
                }
                if (sw == 1) {
                    _mm512_mask_storeu_ps(r0 + s0, st, v0);
                } else {
                    _mm512_mask_storeu_ps(r0 + s0, st, _mm512_permutex2var_ps(v0, even, v1));
                    _mm512_mask_storeu_ps(r1 + s0, st, _mm512_permutex2var_ps(v0, odd, v1));
                }
            }
        }
    }
}

#define Z_DT_CASE(MQ, NV)                                                                        \
    case MQ * 16 + NV:                                                                           \
        z_dt(MQ, NV, d->K, xb, d->koff, w, bc, yc, ys, keep, dst, act, lo, hi);                  \
        break;
#define Z_DT_CASES(MQ)                                                                           \
    Z_DT_CASE(MQ, 1) Z_DT_CASE(MQ, 2) Z_DT_CASE(MQ, 3) Z_DT_CASE(MQ, 4) Z_DT_CASE(MQ, 5)         \
    Z_DT_CASE(MQ, 6) Z_DT_CASE(MQ, 7) Z_DT_CASE(MQ, 8)

static void s_conv_tile_avx512(const bs__direct_t *d, const float *buf, int q0, int nq,
                               const float *wp, int nv, const float *bias, float *y, int64_t ys,
                               int act, float lo, float hi)
{
    int mq = (nq + 15) / 16;
    const float *xb = buf + q0;
    const uint16_t *keep = d->keep + q0 / 16;
    const int32_t *dst = d->dst + q0 / 16;
    for (int c = 0; c < nv; c += 8) {
        int cv = nv - c < 8 ? nv - c : 8;
        const float *w = wp + c, *bc = bias ? bias + c : NULL;
        float *yc = y + c * ys;
        switch (mq * 16 + cv) {
            Z_DT_CASES(1)
            Z_DT_CASES(2)
            Z_DT_CASES(3)
        default: break;
        }
    }
}

const bs__kernels_t bs__kernels_avx512 = {
    .name = "avx512",
    .nr = Z_NR,
    .mr = Z_MR,
    .mt = Z_MT,
    .nt = Z_NT,
    .rows_max_m = 48,
    .gemm_rows = s_gemm_rows_avx512,
    .gemm_row1 = s_gemm_row1_avx512,
    .gemm_cols = s_gemm_cols_avx512,
    .im2col = s_im2col_avx512,
    .dw_plane = s_dw_plane_avx512,
    .dw_planes = s_dw_planes_avx512,
    .conv_tile = s_conv_tile_avx512,
    .dq = 48,
    .conv_fill = s_conv_fill_avx512,
    .dot_i8 = bs__dot_i8_avx2,
    .dot_f16 = bs__dot_f16_avx2,
    .unpack = bs__unpack_avx2,
    .dot_u8s8 = bs__dot_u8s8_avx2,
    .dot_u8_packed = bs__dot_u8_packed_avx2,
};

/*
 * bs_kernels_avx2.c - AVX2 + FMA kernels (x86-64); the only file compiled with -mavx2 -mfma
 * and the only one using their intrinsics. Chosen at run time by bs_kernels.c when the CPU
 * has both.
 *
 * GEMM (layouts in bs_kernels_impl.h; W panels 16 wide):
 *   - row tile 6 x 16: 12 ymm accumulators (6 rows of m, two vectors of 8 n), per k two
 *     loads of the W panel and six broadcasts of packed X, twelve FMAs;
 *   - column tile 16 x 6: 12 accumulators (6 columns of n, two vectors of 8 m), per k two
 *     loads of packed X and six broadcasts from the W panel; an nr = 16 panel is covered by
 *     column tiles of 6, 6 and 4.
 * Each tile is specialised at compile time on its row (column) count, so short tiles do no
 * wasted FMAs; ragged edges on the vector axis use masked loads and stores. Bias and the
 * activation are applied on the registers as they are stored.
 *
 * Depthwise: each plane is processed in bands of output rows from a zero-padded copy of
 * their input rows on the stack (de-interleaved into even and odd columns for stride 2), so
 * no border case remains and every output runs the vector code: 8 outputs per vector, one
 * plain load per tap; 3x3 filters hold their nine weights in registers and run two vectors
 * at a time. Strides above 2 and rows too wide for a band use the reference per-pixel sum.
 * Every sum runs over kh, then kw, as the reference does. The AVX-512 table uses this
 * depthwise kernel too (bs__dw_plane_avx2).
 */
#include <immintrin.h>

#include "bs_kernels_impl.h"

#define S_INLINE static inline __attribute__((always_inline))

enum { A_MR = 6, A_NR = 16, A_MT = 16, A_NT = 6 };

static const int32_t s_mask_src[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

/* The first n lanes (0..8) set. */
S_INLINE __m256i s_mask(int n)
{
    return _mm256_loadu_si256((const __m256i *)(s_mask_src + 8 - n));
}

/* NaN-preserving like bs__act1: max/min return their second operand when one is NaN. */
S_INLINE __m256 s_act8(__m256 v, int act, float lo, float hi)
{
    if (act == BS_KACT_RELU)
        return _mm256_max_ps(_mm256_setzero_ps(), v);
    if (act == BS_KACT_CLIP)
        return _mm256_min_ps(_mm256_set1_ps(hi), _mm256_max_ps(_mm256_set1_ps(lo), v));
    return v;
}

/* Stores the first n (1..8) lanes of v at contiguous y, with the tile epilogue. */
S_INLINE void s_epi8(float *y, __m256 v, int n, const bs__gemm_epi_t *e, int has_bias,
                     __m256 bias)
{
    if (n == 8) {
        if (e->accumulate)
            v = _mm256_add_ps(_mm256_loadu_ps(y), v);
        if (e->final) {
            if (has_bias)
                v = _mm256_add_ps(v, bias);
            v = s_act8(v, e->act, e->lo, e->hi);
        }
        _mm256_storeu_ps(y, v);
        return;
    }
    __m256i m = s_mask(n);
    if (e->accumulate)
        v = _mm256_add_ps(_mm256_maskload_ps(y, m), v);
    if (e->final) {
        if (has_bias)
            v = _mm256_add_ps(v, bias);
        v = s_act8(v, e->act, e->lo, e->hi);
    }
    _mm256_maskstore_ps(y, m, v);
}

/* ---- GEMM row tile: MV rows of m (1..6) x 16 columns of n ----------------------------- */

/* The accumulators are named variables, not arrays: GCC keeps arrays of vectors in memory
 * and would store all twelve every iteration. MV is a constant in every expansion. */
#define S_ROW_FMA(i)                                                                             \
    if (MV > i) {                                                                                \
        __m256 a = _mm256_broadcast_ss(xp + i);                                                  \
        c##i##0 = _mm256_fmadd_ps(a, b0, c##i##0);                                               \
        c##i##1 = _mm256_fmadd_ps(a, b1, c##i##1);                                               \
    }
#define S_ROW_STORE(i)                                                                           \
    if (MV > i) {                                                                                \
        s_epi8(y + i * sym, c##i##0, n0, e, hb, bb0);                                            \
        if (n1)                                                                                  \
            s_epi8(y + i * sym + 8, c##i##1, n1, e, hb, bb1);                                    \
    }
#define S_ROW_SPILL(i)                                                                           \
    if (MV > i) {                                                                                \
        _mm256_storeu_ps(t + i * A_NR, c##i##0);                                                 \
        _mm256_storeu_ps(t + i * A_NR + 8, c##i##1);                                             \
    }

S_INLINE void s_rows(const int MV, int kc, const float *xp, const float *wp, float *y,
                     int64_t sym, int64_t syn, int nv, const bs__gemm_epi_t *e)
{
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (int k = 0; k < kc; k++) {
        __m256 b0 = _mm256_loadu_ps(wp), b1 = _mm256_loadu_ps(wp + 8);
        S_ROW_FMA(0) S_ROW_FMA(1) S_ROW_FMA(2) S_ROW_FMA(3) S_ROW_FMA(4) S_ROW_FMA(5)
        xp += A_MR;
        wp += A_NR;
    }
    if (syn == 1) {
        int n0 = nv < 8 ? nv : 8, n1 = nv > 8 ? nv - 8 : 0;
        __m256 bb0 = _mm256_setzero_ps(), bb1 = _mm256_setzero_ps();
        int hb = e->final && e->bias;
        if (hb) {
            bb0 = n0 == 8 ? _mm256_loadu_ps(e->bias) : _mm256_maskload_ps(e->bias, s_mask(n0));
            if (n1)
                bb1 = n1 == 8 ? _mm256_loadu_ps(e->bias + 8)
                              : _mm256_maskload_ps(e->bias + 8, s_mask(n1));
        }
        S_ROW_STORE(0) S_ROW_STORE(1) S_ROW_STORE(2) S_ROW_STORE(3) S_ROW_STORE(4)
        S_ROW_STORE(5)
        return;
    }
    float t[A_MR * A_NR];
    S_ROW_SPILL(0) S_ROW_SPILL(1) S_ROW_SPILL(2) S_ROW_SPILL(3) S_ROW_SPILL(4) S_ROW_SPILL(5)
    for (int i = 0; i < MV; i++)
        for (int j = 0; j < nv; j++)
            bs__gemm_store1(y + i * sym + j * syn, t[i * A_NR + j], e, j);
}

static void s_gemm_rows_avx2(int kc, const float *xp, const float *wp, float *y, int64_t sym,
                             int64_t syn, int mv, int nv, const bs__gemm_epi_t *e)
{
    switch (mv) {
    case 1: s_rows(1, kc, xp, wp, y, sym, syn, nv, e); break;
    case 2: s_rows(2, kc, xp, wp, y, sym, syn, nv, e); break;
    case 3: s_rows(3, kc, xp, wp, y, sym, syn, nv, e); break;
    case 4: s_rows(4, kc, xp, wp, y, sym, syn, nv, e); break;
    case 5: s_rows(5, kc, xp, wp, y, sym, syn, nv, e); break;
    default: s_rows(6, kc, xp, wp, y, sym, syn, nv, e); break;
    }
}

/* ---- GEMM column tile: 16 values of m x NV columns of n (1..6), for sym == 1 ----------- */

#define S_COL_FMA(j)                                                                             \
    if (NV > j) {                                                                                \
        __m256 b = _mm256_broadcast_ss(wp + j);                                                  \
        c##j##0 = _mm256_fmadd_ps(b, a0, c##j##0);                                               \
        c##j##1 = _mm256_fmadd_ps(b, a1, c##j##1);                                               \
    }
#define S_COL_STORE(j)                                                                           \
    if (NV > j) {                                                                                \
        int hb = e->final && e->bias;                                                            \
        __m256 bb = hb ? _mm256_broadcast_ss(e->bias + j) : _mm256_setzero_ps();                 \
        s_epi8(y + j * syn, c##j##0, m0, e, hb, bb);                                             \
        if (m1)                                                                                  \
            s_epi8(y + j * syn + 8, c##j##1, m1, e, hb, bb);                                     \
    }

S_INLINE void s_cols(const int NV, int kc, const float *xp, const float *wp, float *y,
                     int64_t syn, int mv, const bs__gemm_epi_t *e)
{
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (int k = 0; k < kc; k++) {
        __m256 a0 = _mm256_loadu_ps(xp), a1 = _mm256_loadu_ps(xp + 8);
        S_COL_FMA(0) S_COL_FMA(1) S_COL_FMA(2) S_COL_FMA(3) S_COL_FMA(4) S_COL_FMA(5)
        xp += A_MT;
        wp += A_NR;
    }
    int m0 = mv < 8 ? mv : 8, m1 = mv > 8 ? mv - 8 : 0;
    S_COL_STORE(0) S_COL_STORE(1) S_COL_STORE(2) S_COL_STORE(3) S_COL_STORE(4) S_COL_STORE(5)
}

static void s_gemm_cols_avx2(int kc, const float *xp, const float *wp, float *y, int64_t syn,
                             int mv, int nv, const bs__gemm_epi_t *e)
{
    switch (nv) {
    case 1: s_cols(1, kc, xp, wp, y, syn, mv, e); break;
    case 2: s_cols(2, kc, xp, wp, y, syn, mv, e); break;
    case 3: s_cols(3, kc, xp, wp, y, syn, mv, e); break;
    case 4: s_cols(4, kc, xp, wp, y, syn, mv, e); break;
    case 5: s_cols(5, kc, xp, wp, y, syn, mv, e); break;
    default: s_cols(6, kc, xp, wp, y, syn, mv, e); break;
    }
}

/* ---- depthwise ------------------------------------------------------------------------ */

/* A band is a zero-padded copy of the input rows under a run of output rows: band column c
 * holds input column c - pl, so every tap of every output is inside it and no border case
 * remains (padding taps add zeros where the reference skips them: the same sum). For
 * stride 2 each band row is stored de-interleaved, its even columns then its odd ones, so
 * that every tap is again one plain load. */
typedef struct s_band {
    const bs_conv2d_t *g;
    int64_t wb;    /* floats per band row: a multiple of 16 */
    int64_t half;  /* stride 2: offset of the odd columns (wb / 2) */
} s_band_t;

/* Address of tap (kh, kw) for the vector of outputs starting at ow, in band row r. */
S_INLINE const float *s_tap(const int SW, const s_band_t *b, const float *r, int ow, int kh,
                            int kw)
{
    const bs_conv2d_t *g = b->g;
    const float *row = r + (int64_t)kh * g->dh * b->wb;
    int c = kw * g->dw;
    if (SW == 1)
        return row + ow + c;
    return row + ((c & 1) ? b->half : 0) + ow + (c >> 1);
}

/* 8 outputs at ow of the output row whose first band row is r. */
S_INLINE __m256 s_dw_vec(const int SW, const s_band_t *b, const float *r, int ow,
                         const float *w)
{
    const bs_conv2d_t *g = b->g;
    __m256 acc = _mm256_setzero_ps();
    for (int kh = 0; kh < g->KH; kh++)
        for (int kw = 0; kw < g->KW; kw++)
            acc = _mm256_fmadd_ps(_mm256_loadu_ps(s_tap(SW, b, r, ow, kh, kw)),
                                  _mm256_broadcast_ss(w + kh * g->KW + kw), acc);
    return acc;
}

#define S_DW3_TAP(kh, kw)                                                                        \
    do {                                                                                         \
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(s_tap(SW, b, r0, o0, kh, kw)), w##kh##kw, a0);      \
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(s_tap(SW, b, r1, o1, kh, kw)), w##kh##kw, a1);      \
    } while (0)

/* Stores the first n lanes (1..8) of act(v + vb) at y. */
S_INLINE void s_dw_store(float *y, __m256 v, int n, __m256 vb, int act, float lo, float hi)
{
    v = s_act8(_mm256_add_ps(v, vb), act, lo, hi);
    if (n == 8)
        _mm256_storeu_ps(y, v);
    else
        _mm256_maskstore_ps(y, s_mask(n), v);
}

/* 3x3 filter, weights in registers: two vectors at once (two independent FMA chains), the
 * first at column o0 of the output row whose band row is r0, the second at (r1, o1). */
S_INLINE void s_dw3_pair(const int SW, const s_band_t *b, const float *w, const float *r0,
                         int o0, float *y0, int n0, const float *r1, int o1, float *y1, int n1,
                         __m256 vb, int act, float lo, float hi)
{
    __m256 w00 = _mm256_broadcast_ss(w + 0), w01 = _mm256_broadcast_ss(w + 1);
    __m256 w02 = _mm256_broadcast_ss(w + 2), w10 = _mm256_broadcast_ss(w + 3);
    __m256 w11 = _mm256_broadcast_ss(w + 4), w12 = _mm256_broadcast_ss(w + 5);
    __m256 w20 = _mm256_broadcast_ss(w + 6), w21 = _mm256_broadcast_ss(w + 7);
    __m256 w22 = _mm256_broadcast_ss(w + 8);
    __m256 a0 = _mm256_setzero_ps(), a1 = a0;
    S_DW3_TAP(0, 0);
    S_DW3_TAP(0, 1);
    S_DW3_TAP(0, 2);
    S_DW3_TAP(1, 0);
    S_DW3_TAP(1, 1);
    S_DW3_TAP(1, 2);
    S_DW3_TAP(2, 0);
    S_DW3_TAP(2, 1);
    S_DW3_TAP(2, 2);
    s_dw_store(y0, a0, n0, vb, act, lo, hi);
    s_dw_store(y1, a1, n1, vb, act, lo, hi);
}

/* Output rows [oh0, oh1) of a band whose first row is `band`, every output through vector
 * code. When OW is not a multiple of 8 the last vector of a row is moved back to end at OW,
 * recomputing a few outputs bit for bit; rows shorter than 8 store under a mask, and for
 * 3x3 go two rows at a time. */
S_INLINE void s_dw_rows(const int SW, const int K3, const s_band_t *b, const float *band,
                        int oh0, int oh1, const float *w, float *y, __m256 vb, int act,
                        float lo, float hi)
{
    const bs_conv2d_t *g = b->g;
    int OW = g->OW;
    int64_t rstep = (int64_t)g->sh * b->wb;
    if (OW < 8) {
        for (int oh = oh0; oh < oh1; oh += K3 ? 2 : 1) {
            const float *r0 = band + (oh - oh0) * rstep;
            float *y0 = y + (int64_t)oh * OW;
            if (K3) {
                int o = oh + 1 < oh1 ? 1 : 0; /* an odd last row pairs with itself */
                s_dw3_pair(SW, b, w, r0, 0, y0, OW, r0 + o * rstep, 0, y0 + o * OW, OW, vb,
                           act, lo, hi);
            } else {
                s_dw_store(y0, s_dw_vec(SW, b, r0, 0, w), OW, vb, act, lo, hi);
            }
        }
        return;
    }
    for (int oh = oh0; oh < oh1; oh++) {
        const float *r = band + (oh - oh0) * rstep;
        float *yr = y + (int64_t)oh * OW;
        if (K3) {
            for (int ow = 0; ow < OW; ow += 16) {
                /* the pair (o0, o1); the row's last pair ends exactly at OW */
                int o1 = ow + 8 > OW - 8 ? OW - 8 : ow + 8;
                int o0 = ow > o1 ? o1 : ow;
                s_dw3_pair(SW, b, w, r, o0, yr + o0, 8, r, o1, yr + o1, 8, vb, act, lo, hi);
            }
            continue;
        }
        for (int ow = 0;; ow += 8) {
            if (ow > OW - 8)
                ow = OW - 8;
            s_dw_store(yr + ow, s_dw_vec(SW, b, r, ow, w), 8, vb, act, lo, hi);
            if (ow == OW - 8)
                break;
        }
    }
}

/* xr[c .. c+8) where the columns are inside [c0, c1), zero elsewhere; reads nothing else. */
S_INLINE __m256 s_load_inside(const float *xr, int64_t c, int64_t c0, int64_t c1)
{
    if (c + 8 <= c0 || c >= c1)
        return _mm256_setzero_ps();
    int a = (int)(c0 > c ? c0 - c : 0), e = (int)(c1 - c < 8 ? c1 - c : 8);
    return _mm256_maskload_ps(xr + c, _mm256_andnot_si256(s_mask(a), s_mask(e)));
}

/* Band row for input row ih: zero-padded; for stride 2 de-interleaved (even band columns,
 * then odd ones), straight from x. */
static void s_band_fill(const s_band_t *b, const float *x, int ih, float *d)
{
    const bs_conv2d_t *g = b->g;
    int64_t wb = b->wb;
    const __m256 z = _mm256_setzero_ps();
    if (ih < 0 || ih >= g->H) {
        for (int64_t c = 0; c < wb; c += 8)
            _mm256_storeu_ps(d + c, z);
        return;
    }
    const float *xr = x + (int64_t)ih * g->W - g->pl; /* band column c is xr[c] */
    int64_t c0 = g->pl < wb ? g->pl : wb;             /* columns [c0, c1) are inside */
    int64_t c1 = g->pl + g->W < wb ? g->pl + g->W : wb;
    if (c1 < c0)
        c1 = c0;
    if (g->sw == 1) {
        for (int64_t c = 0; c < wb; c += 8)
            _mm256_storeu_ps(d + c, c >= c0 && c + 8 <= c1 ? _mm256_loadu_ps(xr + c)
                                                           : s_load_inside(xr, c, c0, c1));
        return;
    }
    /* vpermps puts a vector's even elements in its low half and odd ones in its high half;
     * 128-bit stores then place them, with no further shuffle */
    const __m256i eo = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    for (int64_t c = 0; c < wb; c += 16) {
        __m256 lo, hi;
        if (c >= c0 && c + 16 <= c1) {
            lo = _mm256_loadu_ps(xr + c);
            hi = _mm256_loadu_ps(xr + c + 8);
        } else {
            lo = s_load_inside(xr, c, c0, c1);
            hi = s_load_inside(xr, c + 8, c0, c1);
        }
        lo = _mm256_permutevar8x32_ps(lo, eo);
        hi = _mm256_permutevar8x32_ps(hi, eo);
        float *de = d + c / 2, *dd = d + b->half + c / 2;
        _mm_storeu_ps(de, _mm256_castps256_ps128(lo));
        _mm_storeu_ps(de + 4, _mm256_castps256_ps128(hi));
        _mm_storeu_ps(dd, _mm256_extractf128_ps(lo, 1));
        _mm_storeu_ps(dd + 4, _mm256_extractf128_ps(hi, 1));
    }
}

enum { S_DW_BUF = 16384 }; /* floats of band on the stack (64 KiB) */

/* Depthwise plane, in bands of output rows whose input rows fit S_DW_BUF. Strides other than
 * 1 and 2, or rows too wide for a band, take the reference per-pixel code. */
void bs__dw_plane_avx2(const bs_conv2d_t *g, const float *x, const float *w, float b, float *y,
                       int act, float lo, float hi)
{
    float buf[S_DW_BUF] __attribute__((aligned(32)));
    int owv = (g->OW + 7) / 8 * 8;
    int span = (g->KH - 1) * g->dh + 1; /* input rows under one output row */
    /* columns read by the last vector of a row, plus 16 for the de-interleaved halves */
    int64_t wb = ((int64_t)(owv - 1) * g->sw + (int64_t)(g->KW - 1) * g->dw + 1 + 16) / 16 * 16;
    int64_t rows_max = S_DW_BUF / wb;
    if ((g->sw != 1 && g->sw != 2) || rows_max < span) {
        for (int oh = 0; oh < g->OH; oh++)
            for (int ow = 0; ow < g->OW; ow++)
                y[(int64_t)oh * g->OW + ow] =
                    bs__act1(bs__dw_point(g, x, w, b, oh, ow), act, lo, hi);
        return;
    }
    s_band_t band = {.g = g, .wb = wb, .half = wb / 2};
    int rows_out = (int)((rows_max - span) / g->sh + 1); /* output rows per band */
    int k3 = g->KH == 3 && g->KW == 3;
    __m256 vb = _mm256_set1_ps(b);
    for (int oh0 = 0; oh0 < g->OH; oh0 += rows_out) {
        int oh1 = oh0 + rows_out < g->OH ? oh0 + rows_out : g->OH;
        int ih0 = oh0 * g->sh - g->pt;
        int nrows = (oh1 - 1 - oh0) * g->sh + span;
        for (int r = 0; r < nrows; r++)
            s_band_fill(&band, x, ih0 + r, buf + (int64_t)r * wb);
        if (g->sw == 1 && k3)
            s_dw_rows(1, 1, &band, buf, oh0, oh1, w, y, vb, act, lo, hi);
        else if (g->sw == 1)
            s_dw_rows(1, 0, &band, buf, oh0, oh1, w, y, vb, act, lo, hi);
        else if (k3)
            s_dw_rows(2, 1, &band, buf, oh0, oh1, w, y, vb, act, lo, hi);
        else
            s_dw_rows(2, 0, &band, buf, oh0, oh1, w, y, vb, act, lo, hi);
    }
}

/* ---- weight-only GEMV dot products (shared with the AVX-512 table) -----------------------
 * The order bs__dot_i8_ref specifies: lanes 0-7 in a0, 8-15 in a1 (fused multiply-adds), then
 * s = a0 + a1, halves added, pairs added (s_hsum), then the tail unfused. */

static float s_hsum(__m256 a)
{
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

float bs__dot_i8_avx2(const int8_t *c, const float *x, int n)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int k = 0;
    for (; k + 16 <= n; k += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(c + k));
        __m256 f0 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v));
        __m256 f1 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(v, 8)));
        a0 = _mm256_fmadd_ps(f0, _mm256_loadu_ps(x + k), a0);
        a1 = _mm256_fmadd_ps(f1, _mm256_loadu_ps(x + k + 8), a1);
    }
    float acc = k ? s_hsum(_mm256_add_ps(a0, a1)) : 0.0f;
    for (; k < n; k++)
        acc += x[k] * (float)c[k];
    return acc;
}

float bs__dot_f16_avx2(const uint16_t *h, const float *x, int n)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int k = 0;
    for (; k + 16 <= n; k += 16) {
        __m256 f0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + k)));
        __m256 f1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + k + 8)));
        a0 = _mm256_fmadd_ps(f0, _mm256_loadu_ps(x + k), a0);
        a1 = _mm256_fmadd_ps(f1, _mm256_loadu_ps(x + k + 8), a1);
    }
    float acc = k ? s_hsum(_mm256_add_ps(a0, a1)) : 0.0f;
    for (; k < n; k++)
        acc += x[k] * _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h[k])));
    return acc;
}

/* 4-bit and 2-bit rows to int8 codes, 32 at a time (bs_quant.h layout: element 2j in the low
 * nibble of byte j; element 4j+t in bits [2t, 2t+2) of byte j), from a field-aligned start.
 * Returns how many codes were written (a multiple of 32); the caller finishes the rest. */
int bs__unpack_avx2(const uint8_t *row, int bits, int k0, int kl, int8_t *codes)
{
    int k = 0;
    if (bits == 4 && k0 % 2 == 0) {
        const uint8_t *b = row + k0 / 2;
        const __m128i m = _mm_set1_epi8(15), e = _mm_set1_epi8(8);
        for (; k + 32 <= kl; k += 32) {
            __m128i v = _mm_loadu_si128((const __m128i *)(b + k / 2));
            __m128i lo = _mm_and_si128(v, m), hi = _mm_and_si128(_mm_srli_epi16(v, 4), m);
            __m128i c0 = _mm_sub_epi8(_mm_xor_si128(_mm_unpacklo_epi8(lo, hi), e), e);
            __m128i c1 = _mm_sub_epi8(_mm_xor_si128(_mm_unpackhi_epi8(lo, hi), e), e);
            _mm_storeu_si128((__m128i *)(codes + k), c0);
            _mm_storeu_si128((__m128i *)(codes + k + 16), c1);
        }
    } else if (bits == 2 && k0 % 4 == 0) {
        const uint8_t *b = row + k0 / 4;
        const __m128i m = _mm_set1_epi8(3), e = _mm_set1_epi8(2);
        for (; k + 32 <= kl; k += 32) {
            __m128i v = _mm_loadl_epi64((const __m128i *)(b + k / 4));
            __m128i t0 = _mm_and_si128(v, m), t1 = _mm_and_si128(_mm_srli_epi16(v, 2), m);
            __m128i t2 = _mm_and_si128(_mm_srli_epi16(v, 4), m);
            __m128i t3 = _mm_and_si128(_mm_srli_epi16(v, 6), m);
            __m128i p01 = _mm_unpacklo_epi8(t0, t1), p23 = _mm_unpacklo_epi8(t2, t3);
            __m128i c0 = _mm_unpacklo_epi16(p01, p23), c1 = _mm_unpackhi_epi16(p01, p23);
            c0 = _mm_sub_epi8(_mm_xor_si128(c0, e), e);
            c1 = _mm_sub_epi8(_mm_xor_si128(c1, e), e);
            _mm_storeu_si128((__m128i *)(codes + k), c0);
            _mm_storeu_si128((__m128i *)(codes + k + 16), c1);
        }
    }
    return k;
}

/* Exact for |c| <= 64: vpmaddubsw's pair sums stay within 2 * 255 * 64 < 32767. */
int32_t bs__dot_u8s8_avx2(const uint8_t *x, const int8_t *c, int n)
{
    __m256i acc = _mm256_setzero_si256();
    const __m256i ones = _mm256_set1_epi16(1);
    int k = 0;
    for (; k + 32 <= n; k += 32) {
        __m256i p = _mm256_maddubs_epi16(_mm256_loadu_si256((const __m256i *)(x + k)),
                                         _mm256_loadu_si256((const __m256i *)(c + k)));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, ones));
    }
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1));
    int32_t s = _mm_cvtsi128_si32(h);
    for (; k < n; k++)
        s += (int32_t)x[k] * c[k];
    return s;
}

/* 4-bit rows: 32 bytes = 64 codes per step, nibbles masked out in registers and signed by
 * (c ^ 8) - 8, each multiplied with its phase of x (vpmaddubsw pairs stay under 2 * 255 * 8);
 * 2-bit rows: four phases of 2-bit fields. Exact, like the portable loop. */
int32_t bs__dot_u8_packed_avx2(const uint8_t *const *xs, int p, const uint8_t *row, int nbytes)
{
    __m256i acc = _mm256_setzero_si256();
    const __m256i ones = _mm256_set1_epi16(1);
    int j = 0;
    if (p == 2) {
        const __m256i m = _mm256_set1_epi8(15), e = _mm256_set1_epi8(8);
        for (; j + 32 <= nbytes; j += 32) {
            __m256i v = _mm256_loadu_si256((const __m256i *)(row + j));
            __m256i lo = _mm256_and_si256(v, m);
            __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m);
            lo = _mm256_sub_epi8(_mm256_xor_si256(lo, e), e);
            hi = _mm256_sub_epi8(_mm256_xor_si256(hi, e), e);
            __m256i s0 = _mm256_maddubs_epi16(
                _mm256_loadu_si256((const __m256i *)(xs[0] + j)), lo);
            __m256i s1 = _mm256_maddubs_epi16(
                _mm256_loadu_si256((const __m256i *)(xs[1] + j)), hi);
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_add_epi16(s0, s1), ones));
        }
    } else if (p == 4) {
        const __m256i m = _mm256_set1_epi8(3), e = _mm256_set1_epi8(2);
        for (; j + 32 <= nbytes; j += 32) {
            __m256i v = _mm256_loadu_si256((const __m256i *)(row + j)), sum16 = _mm256_setzero_si256();
            for (int t = 0; t < 4; t++) {
                __m256i c = _mm256_and_si256(_mm256_srli_epi16(v, 2 * t), m);
                c = _mm256_sub_epi8(_mm256_xor_si256(c, e), e);
                sum16 = _mm256_add_epi16(
                    sum16,
                    _mm256_maddubs_epi16(_mm256_loadu_si256((const __m256i *)(xs[t] + j)), c));
            }
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(sum16, ones));
        }
    }
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1));
    int32_t s = _mm_cvtsi128_si32(h);
    int bits = 8 / p, sm = 1 << (bits - 1), mask = (1 << bits) - 1;
    for (; j < nbytes; j++)
        for (int t = 0; t < p; t++)
            s += (int32_t)xs[t][j] * ((((row[j] >> (t * bits)) & mask) ^ sm) - sm);
    return s;
}

const bs__kernels_t bs__kernels_avx2 = {
    .name = "avx2",
    .nr = A_NR,
    .mr = A_MR,
    .mt = A_MT,
    .nt = A_NT,
    .gemm_rows = s_gemm_rows_avx2,
    .gemm_cols = s_gemm_cols_avx2,
    .im2col = bs__im2col_rows,
    .dw_plane = bs__dw_plane_avx2,
    .dot_i8 = bs__dot_i8_avx2,
    .dot_f16 = bs__dot_f16_avx2,
    .unpack = bs__unpack_avx2,
    .dot_u8s8 = bs__dot_u8s8_avx2,
    .dot_u8_packed = bs__dot_u8_packed_avx2,
};

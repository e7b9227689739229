/*
 * bs_kernels_neon.c - NEON kernels (arm64, where NEON is always present); the only file
 * using NEON intrinsics. The tests compare it with the scalar reference under qemu-aarch64
 * (tools/cross-arm64.sh).
 *
 * GEMM (layouts in bs_kernels_impl.h; W panels 16 wide, as for AVX2):
 *   - row tile 6 x 16: 24 q-register accumulators (6 rows of m, four vectors of 4 n), per k
 *     four loads of the W panel and six load-and-duplicates of packed X;
 *   - column tile 16 x 6: 24 accumulators (6 columns of n, four vectors of 4 m), per k four
 *     loads of packed X and six load-and-duplicates from the W panel.
 * Tiles are specialised at compile time on their row (column) count; ragged vector edges
 * go through a small buffer and the scalar epilogue. Bias and activation are applied as the
 * tile is stored.
 *
 * Depthwise: as in the AVX2 file, each plane is processed in bands of output rows from a
 * zero-padded copy of their input rows (de-interleaved with vld2q for stride 2), so every
 * output runs the vector code; 3x3 filters hold their weights in registers and compute
 * four vectors at a time. Every sum runs over kh, then kw, as the reference does.
 */
#include <arm_neon.h>
#include <string.h>

#include "bs_kernels_impl.h"
#include "bs_tensor.h"

#define S_INLINE static inline __attribute__((always_inline))

enum { N_MR = 6, N_NR = 16, N_MT = 16, N_NT = 6 };

/* NaN-preserving like bs__act1 (FMAX/FMIN return NaN when an operand is NaN). */
S_INLINE float32x4_t s_act4(float32x4_t v, int act, float lo, float hi)
{
    if (act == BS_KACT_RELU)
        return vmaxq_f32(v, vdupq_n_f32(0.0f));
    if (act == BS_KACT_CLIP)
        return vminq_f32(vmaxq_f32(v, vdupq_n_f32(lo)), vdupq_n_f32(hi));
    return v;
}

/* Stores the first n (0..4) lanes of v at contiguous y with the tile epilogue; lane l takes
 * bias index bj + l * bstep (bstep 1 along n, 0 along m). */
S_INLINE void s_epi4(float *y, float32x4_t v, int n, const bs__gemm_epi_t *e, float32x4_t bias,
                     int bj, int bstep)
{
    if (n == 4) {
        if (e->accumulate)
            v = vaddq_f32(vld1q_f32(y), v);
        if (e->final) {
            if (e->bias)
                v = vaddq_f32(v, bias);
            v = s_act4(v, e->act, e->lo, e->hi);
        }
        vst1q_f32(y, v);
        return;
    }
    float t[4];
    vst1q_f32(t, v);
    for (int l = 0; l < n; l++)
        bs__gemm_store1(y + l, t[l], e, bj + l * bstep);
}

S_INLINE int s_clamp4(int v)
{
    return v < 0 ? 0 : v > 4 ? 4 : v;
}

/* ---- GEMM row tile: MV rows of m (1..6) x 16 columns of n ----------------------------- */

#define S_ROW_FMA(i)                                                                             \
    if (MV > i) {                                                                                \
        float32x4_t a = vld1q_dup_f32(xp + i);                                                   \
        c##i##0 = vfmaq_f32(c##i##0, b0, a);                                                     \
        c##i##1 = vfmaq_f32(c##i##1, b1, a);                                                     \
        c##i##2 = vfmaq_f32(c##i##2, b2, a);                                                     \
        c##i##3 = vfmaq_f32(c##i##3, b3, a);                                                     \
    }
#define S_ROW_STORE(i)                                                                           \
    if (MV > i) {                                                                                \
        float *yi = y + i * sym;                                                                 \
        s_epi4(yi, c##i##0, n0, e, bb0, 0, 1);                                                   \
        s_epi4(yi + 4, c##i##1, n1, e, bb1, 4, 1);                                               \
        s_epi4(yi + 8, c##i##2, n2, e, bb2, 8, 1);                                               \
        s_epi4(yi + 12, c##i##3, n3, e, bb3, 12, 1);                                             \
    }
#define S_ROW_SPILL(i)                                                                           \
    if (MV > i) {                                                                                \
        vst1q_f32(t + i * N_NR, c##i##0);                                                        \
        vst1q_f32(t + i * N_NR + 4, c##i##1);                                                    \
        vst1q_f32(t + i * N_NR + 8, c##i##2);                                                    \
        vst1q_f32(t + i * N_NR + 12, c##i##3);                                                   \
    }

S_INLINE void s_rows(const int MV, int kc, const float *xp, const float *wp, float *y,
                     int64_t sym, int64_t syn, int nv, const bs__gemm_epi_t *e)
{
    float32x4_t c00 = vdupq_n_f32(0.0f), c01 = c00, c02 = c00, c03 = c00;
    float32x4_t c10 = c00, c11 = c00, c12 = c00, c13 = c00;
    float32x4_t c20 = c00, c21 = c00, c22 = c00, c23 = c00;
    float32x4_t c30 = c00, c31 = c00, c32 = c00, c33 = c00;
    float32x4_t c40 = c00, c41 = c00, c42 = c00, c43 = c00;
    float32x4_t c50 = c00, c51 = c00, c52 = c00, c53 = c00;
    for (int k = 0; k < kc; k++) {
        float32x4_t b0 = vld1q_f32(wp), b1 = vld1q_f32(wp + 4);
        float32x4_t b2 = vld1q_f32(wp + 8), b3 = vld1q_f32(wp + 12);
        S_ROW_FMA(0) S_ROW_FMA(1) S_ROW_FMA(2) S_ROW_FMA(3) S_ROW_FMA(4) S_ROW_FMA(5)
        xp += N_MR;
        wp += N_NR;
    }
    if (syn == 1) {
        int n0 = s_clamp4(nv), n1 = s_clamp4(nv - 4), n2 = s_clamp4(nv - 8);
        int n3 = s_clamp4(nv - 12);
        float32x4_t bb0 = vdupq_n_f32(0.0f), bb1 = bb0, bb2 = bb0, bb3 = bb0;
        if (e->final && e->bias) {
            float bt[16] = {0};
            memcpy(bt, e->bias, sizeof(float) * (size_t)nv);
            bb0 = vld1q_f32(bt), bb1 = vld1q_f32(bt + 4);
            bb2 = vld1q_f32(bt + 8), bb3 = vld1q_f32(bt + 12);
        }
        S_ROW_STORE(0) S_ROW_STORE(1) S_ROW_STORE(2) S_ROW_STORE(3) S_ROW_STORE(4)
        S_ROW_STORE(5)
        return;
    }
    float t[N_MR * N_NR];
    S_ROW_SPILL(0) S_ROW_SPILL(1) S_ROW_SPILL(2) S_ROW_SPILL(3) S_ROW_SPILL(4) S_ROW_SPILL(5)
    for (int i = 0; i < MV; i++)
        for (int j = 0; j < nv; j++)
            bs__gemm_store1(y + i * sym + j * syn, t[i * N_NR + j], e, j);
}

static void s_gemm_rows_neon(int kc, const float *xp, const float *wp, float *y, int64_t sym,
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
        float32x4_t b = vld1q_dup_f32(wp + j);                                                   \
        c##j##0 = vfmaq_f32(c##j##0, b, a0);                                                     \
        c##j##1 = vfmaq_f32(c##j##1, b, a1);                                                     \
        c##j##2 = vfmaq_f32(c##j##2, b, a2);                                                     \
        c##j##3 = vfmaq_f32(c##j##3, b, a3);                                                     \
    }
#define S_COL_STORE(j)                                                                           \
    if (NV > j) {                                                                                \
        float *yj = y + j * syn;                                                                 \
        float32x4_t bb = e->final && e->bias ? vld1q_dup_f32(e->bias + j) : vdupq_n_f32(0.0f);   \
        s_epi4(yj, c##j##0, m0, e, bb, j, 0);                                                    \
        s_epi4(yj + 4, c##j##1, m1, e, bb, j, 0);                                                \
        s_epi4(yj + 8, c##j##2, m2, e, bb, j, 0);                                                \
        s_epi4(yj + 12, c##j##3, m3, e, bb, j, 0);                                               \
    }

S_INLINE void s_cols(const int NV, int kc, const float *xp, const float *wp, float *y,
                     int64_t syn, int mv, const bs__gemm_epi_t *e)
{
    float32x4_t c00 = vdupq_n_f32(0.0f), c01 = c00, c02 = c00, c03 = c00;
    float32x4_t c10 = c00, c11 = c00, c12 = c00, c13 = c00;
    float32x4_t c20 = c00, c21 = c00, c22 = c00, c23 = c00;
    float32x4_t c30 = c00, c31 = c00, c32 = c00, c33 = c00;
    float32x4_t c40 = c00, c41 = c00, c42 = c00, c43 = c00;
    float32x4_t c50 = c00, c51 = c00, c52 = c00, c53 = c00;
    for (int k = 0; k < kc; k++) {
        float32x4_t a0 = vld1q_f32(xp), a1 = vld1q_f32(xp + 4);
        float32x4_t a2 = vld1q_f32(xp + 8), a3 = vld1q_f32(xp + 12);
        S_COL_FMA(0) S_COL_FMA(1) S_COL_FMA(2) S_COL_FMA(3) S_COL_FMA(4) S_COL_FMA(5)
        xp += N_MT;
        wp += N_NR;
    }
    int m0 = s_clamp4(mv), m1 = s_clamp4(mv - 4), m2 = s_clamp4(mv - 8), m3 = s_clamp4(mv - 12);
    S_COL_STORE(0) S_COL_STORE(1) S_COL_STORE(2) S_COL_STORE(3) S_COL_STORE(4) S_COL_STORE(5)
}

static void s_gemm_cols_neon(int kc, const float *xp, const float *wp, float *y, int64_t syn,
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

/* The band (see bs_kernels_avx2.c): a zero-padded copy of the input rows under a run of
 * output rows, band column c = input column c - pl; for stride 2 each row is stored as its
 * even columns then its odd ones. */
typedef struct s_band {
    const bs_conv2d_t *g;
    int64_t wb;   /* floats per band row: a multiple of 16 */
    int64_t half; /* stride 2: offset of the odd columns */
} s_band_t;

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

/* 4 outputs at ow of the output row whose first band row is r. */
S_INLINE float32x4_t s_dw_vec(const int SW, const s_band_t *b, const float *r, int ow,
                              const float *w)
{
    const bs_conv2d_t *g = b->g;
    float32x4_t acc = vdupq_n_f32(0.0f);
    for (int kh = 0; kh < g->KH; kh++)
        for (int kw = 0; kw < g->KW; kw++)
            acc = vfmaq_f32(acc, vld1q_f32(s_tap(SW, b, r, ow, kh, kw)),
                            vld1q_dup_f32(w + kh * g->KW + kw));
    return acc;
}

/* Stores the first n lanes (1..4) of act(v + vb) at y. */
S_INLINE void s_dw_store(float *y, float32x4_t v, int n, float32x4_t vb, int act, float lo,
                         float hi)
{
    v = s_act4(vaddq_f32(v, vb), act, lo, hi);
    if (n == 4) {
        vst1q_f32(y, v);
        return;
    }
    float t[4];
    vst1q_f32(t, v);
    memcpy(y, t, sizeof(float) * (size_t)n);
}

#define S_DW3_TAP(kh, kw)                                                                        \
    do {                                                                                         \
        const float *q = s_tap(SW, b, r, 0, kh, kw);                                             \
        a0 = vfmaq_f32(a0, vld1q_f32(q + o0), w##kh##kw);                                        \
        a1 = vfmaq_f32(a1, vld1q_f32(q + o1), w##kh##kw);                                        \
        a2 = vfmaq_f32(a2, vld1q_f32(q + o2), w##kh##kw);                                        \
        a3 = vfmaq_f32(a3, vld1q_f32(q + o3), w##kh##kw);                                        \
    } while (0)

/* Output rows [oh0, oh1) of the band, every output through vector code; when OW is not a
 * multiple of 4 the last vector of a row is moved back to end at OW (recomputing a few
 * outputs bit for bit). 3x3 filters: weights in registers, four vectors at a time. */
S_INLINE void s_dw_rows(const int SW, const int K3, const s_band_t *b, const float *band,
                        int oh0, int oh1, const float *w, float *y, float32x4_t vb, int act,
                        float lo, float hi)
{
    const bs_conv2d_t *g = b->g;
    int OW = g->OW;
    int64_t rstep = (int64_t)g->sh * b->wb;
    for (int oh = oh0; oh < oh1; oh++) {
        const float *r = band + (oh - oh0) * rstep;
        float *yr = y + (int64_t)oh * OW;
        if (OW < 4) {
            s_dw_store(yr, s_dw_vec(SW, b, r, 0, w), OW, vb, act, lo, hi);
            continue;
        }
        if (K3) {
            float32x4_t w00 = vld1q_dup_f32(w + 0), w01 = vld1q_dup_f32(w + 1);
            float32x4_t w02 = vld1q_dup_f32(w + 2), w10 = vld1q_dup_f32(w + 3);
            float32x4_t w11 = vld1q_dup_f32(w + 4), w12 = vld1q_dup_f32(w + 5);
            float32x4_t w20 = vld1q_dup_f32(w + 6), w21 = vld1q_dup_f32(w + 7);
            float32x4_t w22 = vld1q_dup_f32(w + 8);
            for (int ow = 0; ow < OW; ow += 16) {
                int last = OW - 4;
                int o0 = ow > last ? last : ow, o1 = ow + 4 > last ? last : ow + 4;
                int o2 = ow + 8 > last ? last : ow + 8, o3 = ow + 12 > last ? last : ow + 12;
                float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, a2 = a0, a3 = a0;
                S_DW3_TAP(0, 0);
                S_DW3_TAP(0, 1);
                S_DW3_TAP(0, 2);
                S_DW3_TAP(1, 0);
                S_DW3_TAP(1, 1);
                S_DW3_TAP(1, 2);
                S_DW3_TAP(2, 0);
                S_DW3_TAP(2, 1);
                S_DW3_TAP(2, 2);
                s_dw_store(yr + o0, a0, 4, vb, act, lo, hi);
                s_dw_store(yr + o1, a1, 4, vb, act, lo, hi);
                s_dw_store(yr + o2, a2, 4, vb, act, lo, hi);
                s_dw_store(yr + o3, a3, 4, vb, act, lo, hi);
            }
            continue;
        }
        for (int ow = 0;; ow += 4) {
            if (ow > OW - 4)
                ow = OW - 4;
            s_dw_store(yr + ow, s_dw_vec(SW, b, r, ow, w), 4, vb, act, lo, hi);
            if (ow == OW - 4)
                break;
        }
    }
}

/* Band row for input row ih: zero-padded; for stride 2 de-interleaved, straight from x. */
static void s_band_fill(const s_band_t *b, const float *x, int ih, float *d)
{
    const bs_conv2d_t *g = b->g;
    int64_t wb = b->wb;
    if (ih < 0 || ih >= g->H) {
        memset(d, 0, sizeof(float) * (size_t)wb);
        return;
    }
    const float *xr = x + (int64_t)ih * g->W - g->pl; /* band column c is xr[c] */
    int64_t c0 = g->pl < wb ? g->pl : wb;             /* columns [c0, c1) are inside */
    int64_t c1 = g->pl + g->W < wb ? g->pl + g->W : wb;
    if (c1 < c0)
        c1 = c0;
    if (g->sw == 1) {
        for (int64_t c = 0; c < wb; c += 4) {
            if (c >= c0 && c + 4 <= c1) {
                vst1q_f32(d + c, vld1q_f32(xr + c));
                continue;
            }
            for (int64_t j = c; j < c + 4; j++)
                d[j] = j >= c0 && j < c1 ? xr[j] : 0.0f;
        }
        return;
    }
    for (int64_t c = 0; c < wb; c += 8) {
        if (c >= c0 && c + 8 <= c1) {
            float32x4x2_t v = vld2q_f32(xr + c);
            vst1q_f32(d + c / 2, v.val[0]);
            vst1q_f32(d + b->half + c / 2, v.val[1]);
            continue;
        }
        for (int64_t j = c; j < c + 8; j += 2) {
            d[j / 2] = j >= c0 && j < c1 ? xr[j] : 0.0f;
            d[b->half + j / 2] = j + 1 >= c0 && j + 1 < c1 ? xr[j + 1] : 0.0f;
        }
    }
}

enum { S_DW_BUF = 16384 }; /* floats of band on the stack (64 KiB) */

static void s_dw_plane_neon(const bs_conv2d_t *g, const float *x, const float *w, float b,
                            float *y, int act, float lo, float hi)
{
    float buf[S_DW_BUF] __attribute__((aligned(16)));
    int owv = (g->OW + 3) / 4 * 4;
    int span = (g->KH - 1) * g->dh + 1;
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
    int rows_out = (int)((rows_max - span) / g->sh + 1);
    int k3 = g->KH == 3 && g->KW == 3;
    float32x4_t vb = vdupq_n_f32(b);
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

/* ---- weight-only GEMV dot products ------------------------------------------------------
 * The order bs__dot_i8_ref specifies: lanes 0-3, 4-7, 8-11, 12-15 in a0..a3 (fused
 * multiply-adds), then s = (a0 + a2, a1 + a3) as the two halves of an 8-lane vector, halves
 * added, pairs added, then the tail unfused. */

static float s_dot_reduce_neon(float32x4_t a0, float32x4_t a1, float32x4_t a2, float32x4_t a3)
{
    float32x4_t s0 = vaddq_f32(a0, a2), s1 = vaddq_f32(a1, a3); /* s[0..3], s[4..7] */
    float32x4_t h = vaddq_f32(s0, s1);                           /* h[0..3] */
    float hv[4];
    vst1q_f32(hv, h);
    return (hv[0] + hv[2]) + (hv[1] + hv[3]);
}

static float s_dot_i8_neon(const int8_t *c, const float *x, int n)
{
    float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, a2 = a0, a3 = a0;
    int k = 0;
    for (; k + 16 <= n; k += 16) {
        int8x16_t v = vld1q_s8(c + k);
        int16x8_t lo = vmovl_s8(vget_low_s8(v)), hi = vmovl_s8(vget_high_s8(v));
        a0 = vfmaq_f32(a0, vcvtq_f32_s32(vmovl_s16(vget_low_s16(lo))), vld1q_f32(x + k));
        a1 = vfmaq_f32(a1, vcvtq_f32_s32(vmovl_s16(vget_high_s16(lo))), vld1q_f32(x + k + 4));
        a2 = vfmaq_f32(a2, vcvtq_f32_s32(vmovl_s16(vget_low_s16(hi))), vld1q_f32(x + k + 8));
        a3 = vfmaq_f32(a3, vcvtq_f32_s32(vmovl_s16(vget_high_s16(hi))), vld1q_f32(x + k + 12));
    }
    float acc = k ? s_dot_reduce_neon(a0, a1, a2, a3) : 0.0f;
    for (; k < n; k++)
        acc += x[k] * (float)c[k];
    return acc;
}

static float s_dot_f16_neon(const uint16_t *h, const float *x, int n)
{
    float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, a2 = a0, a3 = a0;
    int k = 0;
    for (; k + 16 <= n; k += 16) {
        float16x8_t v0 = vreinterpretq_f16_u16(vld1q_u16(h + k));
        float16x8_t v1 = vreinterpretq_f16_u16(vld1q_u16(h + k + 8));
        a0 = vfmaq_f32(a0, vcvt_f32_f16(vget_low_f16(v0)), vld1q_f32(x + k));
        a1 = vfmaq_f32(a1, vcvt_f32_f16(vget_high_f16(v0)), vld1q_f32(x + k + 4));
        a2 = vfmaq_f32(a2, vcvt_f32_f16(vget_low_f16(v1)), vld1q_f32(x + k + 8));
        a3 = vfmaq_f32(a3, vcvt_f32_f16(vget_high_f16(v1)), vld1q_f32(x + k + 12));
    }
    float acc = k ? s_dot_reduce_neon(a0, a1, a2, a3) : 0.0f;
    for (; k < n; k++)
        acc += x[k] * bs_f16_to_f32(h[k]);
    return acc;
}

const bs__kernels_t bs__kernels_neon = {
    .name = "neon",
    .nr = N_NR,
    .mr = N_MR,
    .mt = N_MT,
    .nt = N_NT,
    .gemm_rows = s_gemm_rows_neon,
    .gemm_cols = s_gemm_cols_neon,
    .im2col = bs__im2col_rows,
    .dw_plane = s_dw_plane_neon,
    .dot_i8 = s_dot_i8_neon,
    .dot_f16 = s_dot_f16_neon,
};

/*
 * bs_qkernels_neon.c - NEON integer kernels (arm64, baseline armv8-a: no dot-product
 * extension needed); the only file using NEON intrinsics in the integer kernels. The tests
 * compare it with the scalar reference under qemu-aarch64 (tools/cross-arm64.sh).
 *
 * GEMM tile 4 x 16 over panels of 16 columns, one k per panel row (kq = 1,
 * bs_qkernels_impl.h): per k the 16 codes are sign-extended to two int16x8 vectors and each
 * X row's byte, zero-extended to 16 bits, multiplies them by lane with vmlal_lane_s16 into
 * int32 lanes: 16 accumulators (4 rows x 4 vectors of 4 columns). Exact: a u8 x s8 product
 * fits 16 x 16 -> 32 bits and the sums stay in int32 (K <= BS_QGEMM_K_MAX). The 4 bytes of
 * each group of 4 k of an X row are loaded once and used by lane.
 *
 * Epilogue, run and quantization: 4 lanes per vector, written with compare-and-select
 * (vbslq) in exactly the comparisons of bs__qepi_f32 / bs__qepi_u8 - FMAX / FMIN would turn
 * -0.0 into +0.0 through Relu and NaN into NaN through the uint8 clamp - and FCVTNS
 * (vcvtnq_s32_f32: round half to even) for the uint8 conversion. im2row, bs_qconv2d (X4 and
 * the tile, which reads this table's kq = 1 panels) and the depthwise kernel are the portable
 * ones.
 */
#include <arm_neon.h>
#include <string.h>

#include "bs_qkernels_impl.h"

#define S_INLINE static inline __attribute__((always_inline))

enum { N_NR = 16, N_MR = 4 };

/* ---- micro-kernel --------------------------------------------------------------------- */

/* The 4 bytes of X at p, zero-extended to 16 bits. */
S_INLINE int16x4_t s_x4(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    uint8x8_t b = vreinterpret_u8_u32(vdup_n_u32(v));
    return vreinterpret_s16_u16(vget_low_u16(vmovl_u8(b)));
}

#define S_ROW_INIT(i)                                                                            \
    int32x4_t c##i##0 = vdupq_n_s32(0), c##i##1 = c##i##0, c##i##2 = c##i##0, c##i##3 = c##i##0; \
    int16x4_t xv##i = vdup_n_s16(0);                                                             \
    const uint8_t *x##i = x + (MR > i ? i : 0) * ldx;
#define S_ROW_K(i, t)                                                                            \
    if (MR > i) {                                                                                \
        c##i##0 = vmlal_lane_s16(c##i##0, vget_low_s16(wl), xv##i, t);                           \
        c##i##1 = vmlal_high_lane_s16(c##i##1, wl, xv##i, t);                                    \
        c##i##2 = vmlal_lane_s16(c##i##2, vget_low_s16(wh), xv##i, t);                           \
        c##i##3 = vmlal_high_lane_s16(c##i##3, wh, xv##i, t);                                    \
    }
#define S_K(t)                                                                                   \
    {                                                                                            \
        int8x16_t wb = vld1q_s8(w + 16 * t);                                                     \
        int16x8_t wl = vmovl_s8(vget_low_s8(wb)), wh = vmovl_high_s8(wb);                        \
        S_ROW_K(0, t) S_ROW_K(1, t) S_ROW_K(2, t) S_ROW_K(3, t)                                  \
    }
#define S_ROW_STORE(i)                                                                           \
    if (MR > i) {                                                                                \
        s_store_acc(acc + i * N_NR, c##i##0, accumulate);                                        \
        s_store_acc(acc + i * N_NR + 4, c##i##1, accumulate);                                    \
        s_store_acc(acc + i * N_NR + 8, c##i##2, accumulate);                                    \
        s_store_acc(acc + i * N_NR + 12, c##i##3, accumulate);                                   \
    }

S_INLINE void s_store_acc(int32_t *acc, int32x4_t v, int accumulate)
{
    if (accumulate)
        v = vaddq_s32(v, vld1q_s32(acc));
    vst1q_s32(acc, v);
}

/* Rows written out one by one (MR is a constant after inlining). */
S_INLINE void s_tile_n(int MR, int kg, const uint8_t *x, int64_t ldx, const int8_t *wp,
                       int32_t *acc, int accumulate)
{
    S_ROW_INIT(0) S_ROW_INIT(1) S_ROW_INIT(2) S_ROW_INIT(3)
    for (int g = 0; g < kg; g++) {
        const int8_t *w = wp + (int64_t)g * 4 * N_NR;
        xv0 = s_x4(x0 + 4 * g);
        if (MR > 1)
            xv1 = s_x4(x1 + 4 * g);
        if (MR > 2)
            xv2 = s_x4(x2 + 4 * g);
        if (MR > 3)
            xv3 = s_x4(x3 + 4 * g);
        S_K(0) S_K(1) S_K(2) S_K(3)
    }
    S_ROW_STORE(0) S_ROW_STORE(1) S_ROW_STORE(2) S_ROW_STORE(3)
}

static void s_tile_neon(int kg, const uint8_t *x, int64_t ldx, int mv, const int8_t *wp,
                        int32_t *acc, int accumulate)
{
    switch (mv) {
    case 1: s_tile_n(1, kg, x, ldx, wp, acc, accumulate); break;
    case 2: s_tile_n(2, kg, x, ldx, wp, acc, accumulate); break;
    case 3: s_tile_n(3, kg, x, ldx, wp, acc, accumulate); break;
    default: s_tile_n(4, kg, x, ldx, wp, acc, accumulate); break;
    }
}

/* ---- epilogue ------------------------------------------------------------------------- */

typedef struct s_epc {
    float32x4_t lo, hi; /* float: Clip bounds; uint8: qlo - zo, qhi - zo */
    int32x4_t zo;
    int act, out_u8;
} s_epc_t;

S_INLINE s_epc_t s_epc(const bs_qgemm_epi_t *e)
{
    s_epc_t c;
    c.act = e->act;
    c.out_u8 = e->out_u8;
    c.lo = vdupq_n_f32(e->out_u8 ? (float)(e->qlo - e->zo) : e->lo);
    c.hi = vdupq_n_f32(e->out_u8 ? (float)(e->qhi - e->zo) : e->hi);
    c.zo = vdupq_n_s32(e->zo);
    return c;
}

/* bs__qepi_f32: v < 0 ? 0 : v; v < lo ? lo : (v > hi ? hi : v). */
S_INLINE float32x4_t s_act_f32(float32x4_t v, const s_epc_t *c)
{
    if (c->act == BS_KACT_RELU) {
        float32x4_t z = vdupq_n_f32(0.0f);
        return vbslq_f32(vcltq_f32(v, z), z, v);
    }
    if (c->act == BS_KACT_CLIP) {
        float32x4_t t = vbslq_f32(vcgtq_f32(v, c->hi), c->hi, v);
        return vbslq_f32(vcltq_f32(v, c->lo), c->lo, t);
    }
    return v;
}

/* bs__qepi_u8: v > lo ? v : lo, then < hi ? v : hi, round half to even, plus zo. */
S_INLINE int32x4_t s_act_u8(float32x4_t v, const s_epc_t *c)
{
    v = vbslq_f32(vcgtq_f32(v, c->lo), v, c->lo);
    v = vbslq_f32(vcltq_f32(v, c->hi), v, c->hi);
    return vaddq_s32(vcvtnq_s32_f32(v), c->zo);
}

S_INLINE float32x4_t s_value(int32x4_t raw, int32x4_t off, float32x4_t mult)
{
    return vmulq_f32(vcvtq_f32_s32(vaddq_s32(raw, off)), mult);
}

/* Stores the first n (1..4) results of v at y, elements s apart. */
S_INLINE void s_store(void *y, int64_t s, float32x4_t v, int n, const s_epc_t *c)
{
    if (c->out_u8) {
        uint8_t t[8];
        vst1_u8(t, vqmovn_u16(vcombine_u16(vqmovun_s32(s_act_u8(v, c)), vdup_n_u16(0))));
        if (s == 1 && n == 4)
            memcpy(y, t, 4);
        else
            for (int l = 0; l < n; l++)
                ((uint8_t *)y)[l * s] = t[l];
    } else {
        float32x4_t f = s_act_f32(v, c);
        if (s == 1 && n == 4) {
            vst1q_f32((float *)y, f);
        } else {
            float t[4];
            vst1q_f32(t, f);
            for (int l = 0; l < n; l++)
                ((float *)y)[l * s] = t[l];
        }
    }
}

static void s_epi_neon(const int32_t *acc, int64_t lda, int mv, int nv, const bs_qgemm_epi_t *e,
                       int n0, void *y, int64_t sym, int64_t syn)
{
    s_epc_t c = s_epc(e);
    int64_t esz = e->out_u8 ? 1 : (int64_t)sizeof(float);
    char *yb = y;
    if (sym == 1 && syn != 1 && mv > 1) {
        /* planes: 4 rows of one column per vector */
        for (int j = 0; j < nv; j++) {
            int32x4_t off = vdupq_n_s32(e->off[n0 + j]);
            float32x4_t mult = vdupq_n_f32(e->mult[n0 + j]);
            for (int i0 = 0; i0 < mv; i0 += 4) {
                int in = mv - i0 < 4 ? mv - i0 : 4;
                int32_t t[4] = {0, 0, 0, 0};
                for (int l = 0; l < in; l++)
                    t[l] = acc[(i0 + l) * lda + j];
                s_store(yb + ((int64_t)i0 + (int64_t)j * syn) * esz, 1,
                        s_value(vld1q_s32(t), off, mult), in, &c);
            }
        }
        return;
    }
    for (int j0 = 0; j0 < nv; j0 += 4) {
        int jn = nv - j0 < 4 ? nv - j0 : 4;
        int32_t to[4] = {0, 0, 0, 0};
        float tm[4] = {0, 0, 0, 0};
        memcpy(to, e->off + n0 + j0, sizeof(int32_t) * (size_t)jn);
        memcpy(tm, e->mult + n0 + j0, sizeof(float) * (size_t)jn);
        int32x4_t off = vld1q_s32(to);
        float32x4_t mult = vld1q_f32(tm);
        for (int i = 0; i < mv; i++) {
            int32_t ta[4] = {0, 0, 0, 0};
            const int32_t *a = acc + i * lda + j0;
            if (jn < 4)
                memcpy(ta, a, sizeof(int32_t) * (size_t)jn), a = ta;
            s_store(yb + (i * sym + (int64_t)j0 * syn) * esz, syn,
                    s_value(vld1q_s32(a), off, mult), jn, &c);
        }
    }
}

/* ---- quantization --------------------------------------------------------------------- */

/* The steps of s_quantize_scalar on 4 lanes, saturated to uint16 lanes in [0, 255]. */
S_INLINE uint16x4_t s_quant4(float32x4_t x, float32x4_t scale, float32x4_t lo, float32x4_t hi,
                             int32x4_t zp)
{
    float32x4_t v = vdivq_f32(x, scale);
    v = vbslq_f32(vceqq_f32(v, v), v, vdupq_n_f32(0.0f)); /* NaN -> 0 */
    v = vbslq_f32(vcgtq_f32(v, lo), v, lo);
    v = vbslq_f32(vcltq_f32(v, hi), v, hi);
    int32x4_t r = vaddq_s32(vcvtnq_s32_f32(v), zp);
    return vmin_u16(vqmovun_s32(r), vdup_n_u16(255));
}

static void s_quant_neon(const float *x, int64_t n, float scale, int32_t zp, uint8_t *q)
{
    float32x4_t vs = vdupq_n_f32(scale);
    float32x4_t lo = vdupq_n_f32(-1.0f - (float)zp), hi = vdupq_n_f32(256.0f - (float)zp);
    int32x4_t vz = vdupq_n_s32(zp);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint16x4_t a = s_quant4(vld1q_f32(x + i), vs, lo, hi, vz);
        uint16x4_t b = s_quant4(vld1q_f32(x + i + 4), vs, lo, hi, vz);
        vst1_u8(q + i, vmovn_u16(vcombine_u16(a, b)));
    }
    for (; i < n; i += 4) {
        int m = n - i < 4 ? (int)(n - i) : 4;
        float t[4] = {0, 0, 0, 0};
        memcpy(t, x + i, sizeof(float) * (size_t)m);
        uint8_t r[8];
        uint16x4_t a = s_quant4(vld1q_f32(t), vs, lo, hi, vz);
        vst1_u8(r, vmovn_u16(vcombine_u16(a, a)));
        memcpy(q + i, r, (size_t)m);
    }
}

const bs__qkernels_t bs__qkernels_neon = {
    .name = "neon",
    .nr = N_NR,
    .mr = N_MR,
    .kq = 1,
    .tile = s_tile_neon,
    .epi = s_epi_neon,
    .quantize = s_quant_neon,
    .im2row = bs__qim2row_ref,
    .x4 = bs__qx4_ref,
    .cvb = 1,
    .dw = bs__qdw_ref,
};

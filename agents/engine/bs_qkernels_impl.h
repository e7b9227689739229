/*
 * bs_qkernels_impl.h - internal to the integer kernels: the table each instruction set fills,
 * and the per-element epilogue every table must reproduce bit for bit.
 *
 * bs_qkernels.c holds the dispatcher, the drivers (blocking, weight unpacking, threads) and
 * the portable C reference ("scalar") of every kernel; bs_qkernels_avx2.c,
 * bs_qkernels_avxvnni.c and bs_qkernels_neon.c each export one bs__qkernels_t. The drivers
 * only ever call through the table.
 *
 * Weight panel layout (bs_qgemm_pack and the per-tile unpacking of rows produce it; only the
 * micro-kernel reads it): W is cut in panels of nr output columns (n); with Kp = BS_QK_PAD(K),
 * panel p holds nr * Kp int8 codes, element (k, j) (n = p*nr + j) at
 *     panel + (k / kq) * nr * kq + j * kq + k % kq
 * i.e. groups of kq consecutive k of one column, the nr columns side by side, group after
 * group. kq is 4 (one vpdpbusd / sdot lane: 4 codes of one column in one 32-bit word) or 1
 * (one k row of nr codes). Codes at k >= K and columns past N are zero. A K block starting at
 * k0 (a multiple of 4) begins at panel + k0 * nr, so a micro-kernel sees the same layout in a
 * prepacked panel and in a tile unpacked into scratch.
 *
 * Micro-kernel (tile): int32 sums of mv <= mr rows of X against one panel's K block,
 * stored (or added, for later K blocks) into acc rows nr apart. Integer sums are exact, so
 * the order of the k terms never matters: any blocking, thread count or instruction set gives
 * the same raw sums. Everything that can differ lies in the epilogue, which is therefore
 * specified element by element here (bs__qepi_f32 / bs__qepi_u8) and reproduced exactly by
 * the vector epilogues: one int32 -> float conversion (round to nearest even), one float
 * multiply (never fused), compare-based min / max, and round-half-even conversion to int.
 */
#ifndef BS_QKERNELS_IMPL_H
#define BS_QKERNELS_IMPL_H

#include <math.h>
#include <stdint.h>

#include "bs_qkernels.h"

/* acc[i*nr + j] (=, or += when accumulate) sum over g < kg, t < 4 of
 * x[i*ldx + 4g + t] * Wp(4g + t, j), for i < mv, j < nr; wp is the panel at the block's first
 * k (layout above). Rows of x at i >= mv are not read. */
typedef void (*bs__qtile_fn)(int kg, const uint8_t *x, int64_t ldx, int mv, const int8_t *wp,
                             int32_t *acc, int accumulate);
/* The epilogue of a tile: element (i, j), i < mv, j < nv, from acc[i*lda + j], output column
 * n0 + j (e->off[n0 + j], e->mult[n0 + j]), written at y + (i*sym + j*syn) elements (float or
 * uint8 per e->out_u8). */
typedef void (*bs__qepi_fn)(const int32_t *acc, int64_t lda, int mv, int nv,
                            const bs_qgemm_epi_t *e, int n0, void *y, int64_t sym, int64_t syn);
/* The epilogue of a run of len raw sums of one channel (off, mult) into contiguous y. */
typedef void (*bs__qrun_fn)(const int32_t *acc, int len, int32_t off, float mult,
                            const bs_qgemm_epi_t *e, void *y);
/* Optional: the K block [k0, k0 + kl) (k0 a multiple of 4, kl a multiple of 4) of the panel
 * whose first column is n0 (nv <= nr valid columns) of q into dst in the table's layout,
 * zeros past K and past nv; returns 0 (writing nothing) for widths it does not handle, which
 * the portable unpacking then does. */
typedef int (*bs__qunpack_fn)(const bs_qweight_t *q, int n0, int nv, int k0, int kl,
                              int8_t *dst);
typedef void (*bs__qquant_fn)(const float *x, int64_t n, float scale, int32_t zp, uint8_t *q);
/* Optional: one channel of bs_qconv_depthwise: plane xc (H x W), filter wc (KH x KW), the
 * channel's off and mult, output plane yc (float or uint8 per e->out_u8). */
typedef void (*bs__qdw_fn)(const bs_conv2d_t *g, const uint8_t *xc, int32_t zx,
                           const int8_t *wc, int32_t off, float mult, const bs_qgemm_epi_t *e,
                           void *yc);
typedef void (*bs__qim2row_fn)(const bs_conv2d_t *g, const uint8_t *x, uint8_t pad,
                               uint8_t *rows, int64_t ldr);

typedef struct bs__qkernels {
    const char *name;       /* "scalar", "avx2", "avxvnni", "neon" */
    int nr;                 /* panel width (n) */
    int mr;                 /* rows of a tile (m) */
    int kq;                 /* k interleave of the panel layout: 4 or 1 */
    bs__qtile_fn tile;
    bs__qepi_fn epi;
    bs__qrun_fn run;
    bs__qunpack_fn unpack;  /* may be NULL */
    bs__qquant_fn quantize; /* bs_quantize_u8 */
    bs__qim2row_fn im2row;  /* bs_im2row_u8 */
    bs__qdw_fn dw;          /* may be NULL: the portable depthwise channel */
} bs__qkernels_t;

#define BS__QNR_MAX 32
#define BS__QMR_MAX 16

/* The portable im2row (bs_qkernels.c): the scalar table's, and the SIMD tables' fallback for
 * geometries their own does not handle. */
void bs__qim2row_ref(const bs_conv2d_t *g, const uint8_t *x, uint8_t pad, uint8_t *rows,
                     int64_t ldr);

/* The AVX2 epilogue, quantization and im2row (bs_qkernels_avx2.c), shared by the AVX-VNNI
 * table. */
void bs__qepi_avx2(const int32_t *acc, int64_t lda, int mv, int nv, const bs_qgemm_epi_t *e,
                   int n0, void *y, int64_t sym, int64_t syn);
void bs__qrun_avx2(const int32_t *acc, int len, int32_t off, float mult,
                   const bs_qgemm_epi_t *e, void *y);
void bs__qquant_avx2(const float *x, int64_t n, float scale, int32_t zp, uint8_t *q);
int bs__qunpack_avx2(const bs_qweight_t *q, int n0, int nv, int k0, int kl, int8_t *dst);
void bs__qim2row_avx2(const bs_conv2d_t *g, const uint8_t *x, uint8_t pad, uint8_t *rows,
                      int64_t ldr);
void bs__qdw_avx2(const bs_conv2d_t *g, const uint8_t *xc, int32_t zx, const int8_t *wc,
                  int32_t off, float mult, const bs_qgemm_epi_t *e, void *yc);

/* ---- the epilogue, one element (the reference every table reproduces) ---------------- */

/* (float)(raw + off) * mult; the int32 sum wraps (two's complement). */
static inline float bs__qv(int32_t raw, int32_t off, float mult)
{
    return (float)(int32_t)((uint32_t)raw + (uint32_t)off) * mult;
}

/* Float output: Relu max(v, 0), Clip min(max(v, lo), hi); NaN stays NaN, as v < 0 and
 * v < lo are false for it (_mm256_max_ps(bound, v) returns v, NEON's FMAX returns NaN). */
static inline float bs__qepi_f32(float v, const bs_qgemm_epi_t *e)
{
    if (e->act == BS_KACT_RELU)
        return v < 0.0f ? 0.0f : v;
    if (e->act == BS_KACT_CLIP)
        return v < e->lo ? e->lo : (v > e->hi ? e->hi : v);
    return v;
}

/* Uint8 output: v clamped to [qlo - zo, qhi - zo] (NaN -> the lower bound: v > lo is false,
 * as in _mm256_max_ps(v, lo) and NEON's FMAXNM), rounded half to even, plus zo. */
static inline uint8_t bs__qepi_u8(float v, const bs_qgemm_epi_t *e)
{
    float lo = (float)(e->qlo - e->zo), hi = (float)(e->qhi - e->zo);
    v = v > lo ? v : lo;
    v = v < hi ? v : hi;
    return (uint8_t)((int32_t)nearbyintf(v) + e->zo);
}

#endif

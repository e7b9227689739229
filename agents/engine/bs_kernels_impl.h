/*
 * bs_kernels_impl.h - internal to the kernels: the table each instruction set fills.
 *
 * bs_kernels.c holds the drivers (blocking, packing of X, threading) and the portable C
 * reference of every kernel; bs_kernels_avx2.c, bs_kernels_avx512.c and bs_kernels_neon.c
 * each export one
 * bs__kernels_t with their micro-kernels and layouts. The drivers only ever call through
 * the table, so an instruction set is added by writing one file and one table.
 *
 * GEMM layout shared by every table (see bs_kernels.h for the math):
 *   - W is packed in panels of nr columns (n), each panel K rows (k) of nr floats: panel p,
 *     element (k, j) at Wp[p*nr*K + k*nr + j]; the last panel is zero-padded.
 *   - X is packed per M block and K block (kc) into micro-panels, k-major: a row micro-panel
 *     holds mr values of m per k (xp[k*mr + i]), a column micro-panel mt values
 *     (xp[k*mt + i]); rows past M are zero.
 *   - gemm_rows computes an mr x nr tile (m rows, n columns), vectorised along n: the kernel
 *     for row-major Y (syn == 1) and for any other strides. gemm_cols computes a tile of mt
 *     values of m by nt of n, vectorised along m: the kernel for sym == 1 (NCHW conv planes),
 *     whose stores are then contiguous runs of m; it reads nt columns of an nr-wide panel.
 *   - Every output element is one sequential sum over k in each K block; a later K block adds
 *     its partial sum to what Y holds (accumulate), and the last one adds the bias and applies
 *     the activation (final). Every table follows the same order, so instruction sets differ
 *     only by the rounding of fused multiply-adds.
 */
#ifndef BS_KERNELS_IMPL_H
#define BS_KERNELS_IMPL_H

#include <stdint.h>

#include "bs_kernels.h"

/* What a GEMM tile does when it stores. */
typedef struct bs__gemm_epi {
    const float *bias; /* bias of the tile's first column (n), or NULL */
    int accumulate;    /* add Y's current value (the sum of the earlier K blocks) */
    int final;         /* last K block: add bias, then apply act */
    int act;           /* BS_KACT_* */
    float lo, hi;      /* Clip bounds */
} bs__gemm_epi_t;

/* Row tile: Y[i*sym + j*syn] for i < mv <= mr, j < nv <= nr. xp: kc x mr; wp: kc x nr. */
typedef void (*bs__gemm_rows_fn)(int kc, const float *xp, const float *wp, float *y,
                                 int64_t sym, int64_t syn, int mv, int nv,
                                 const bs__gemm_epi_t *e);
/* Optional single-row GEMV (NULL: the row tile is used): one row of X (xp[k*xs], k < kc)
 * times np whole panels (panel q at wp + q*wps, outputs at y + q*nr*syn, bias at
 * e->bias + q*nr); the last panel has nvl valid columns. Each output is one sequential sum
 * over k, as in the row tile. */
typedef void (*bs__gemm_row1_fn)(int kc, const float *xp, int64_t xs, const float *wp,
                                 int64_t wps, int np, float *y, int64_t syn, int nvl,
                                 const bs__gemm_epi_t *e);
/* Column tile: Y[i + j*syn] for i < mv <= mt, j < nv <= nt. xp: kc x mt; wp: the tile's first
 * column inside an nr-wide panel (k stride nr). */
typedef void (*bs__gemm_cols_fn)(int kc, const float *xp, const float *wp, float *y,
                                 int64_t syn, int mv, int nv, const bs__gemm_epi_t *e);
/* One depthwise plane: y = act(conv(x, w) + b), x one H x W plane, w one KH x KW filter. */
typedef void (*bs__dw_plane_fn)(const bs_conv2d_t *g, const float *x, const float *w, float b,
                                float *y, int act, float lo, float hi);
/* Optional: channels [c0, c1) of a depthwise convolution, x, w, bias and y pointing at
 * channel 0; the same values as dw_plane on each channel. */
typedef void (*bs__dw_planes_fn)(const bs_conv2d_t *g, const float *x, const float *w,
                                 const float *bias, float *y, int c0, int c1, int act, float lo,
                                 float hi);
typedef void (*bs__im2col_fn)(const bs_conv2d_t *g, const float *x, float *col);

/* Direct convolution (bs_conv2d_direct). The input is copied into a buffer of phase planes:
 * for strides sh, sw, channel c's phase (a, b) is the plane of Hq rows x Wq columns whose
 * (r, s) is the zero-padded input at row r*sh + a - pt, column s*sw + b - pl. Output (oh, ow)
 * is the grid position q = oh*Wq + ow, and its tap (c, kh, kw) reads the buffer at
 * q + koff[k], koff[k] = c*cstride + (a*sw + b)*Sq + (kh*dh/sh)*Wq + kw*dw/sw with
 * a = kh*dh % sh, b = kw*dw % sw: every k is one contiguous run of q. Positions with
 * q % Wq >= OW are computed and dropped. For each vector of 16 positions (q0 = 16 v),
 * keep[v] marks the lanes that are outputs and dst[v] is the output index of the first. */
typedef struct bs__direct {
    int sh, sw;          /* strides: sh*sw phase planes per channel */
    int OW, Wq, Hq;
    int64_t Sq, cstride; /* floats per phase plane, per channel */
    int Mq;              /* positions 0 .. Mq-1 hold every output */
    int K, N;
    const int32_t *koff;  /* K offsets */
    const int32_t *dst;   /* per vector of 16 positions */
    const uint16_t *keep; /* per vector of 16 positions */
} bs__direct_t;

/* Outputs at positions [q0, q0 + nq) (q0 a multiple of 16, nq <= the table's dq) of channels
 * [n0, n0 + nv) (one W panel: wp its k = 0 row, nv <= nr), bias and y pointing at channel
 * n0 (y: that channel's output plane, planes ys apart). buf: the phase-plane copy, readable
 * up to BS__DIRECT_TAIL floats past every run. Each output one sequential sum over k, then
 * bias, then act. */
typedef void (*bs__conv_tile_fn)(const bs__direct_t *d, const float *buf, int q0, int nq,
                                 const float *wp, int nv, const float *bias, float *y,
                                 int64_t ys, int act, float lo, float hi);
/* Optional: fills channel c's phase planes (bc) from its input plane (xc), as the portable
 * fill in bs_kernels.c does. */
typedef void (*bs__conv_fill_fn)(const bs_conv2d_t *g, const bs__direct_t *d, const float *xc,
                                 float *bc);
#define BS__DIRECT_TAIL 64

/* Optional dot products for weight-only GEMV (bs_gemm_wq with one row): sum_k x[k] * c[k] with
 * c int8 codes / fp16 halves, n >= 0. The order of the sum is the table's own (vector lanes),
 * so results differ from the reference by float rounding only. */
typedef float (*bs__dot_i8_fn)(const int8_t *c, const float *x, int n);
typedef float (*bs__dot_f16_fn)(const uint16_t *h, const float *x, int n);

typedef struct bs__kernels {
    const char *name;        /* "scalar", "avx2", "avx512", "neon" */
    int nr;                  /* W panel width (n); a multiple of nt is not required */
    int mr;                  /* m rows of a gemm_rows tile */
    int mt, nt;              /* m and n extent of a gemm_cols tile */
    int rows_max_m;          /* sym == 1 with M <= this uses gemm_rows too (0: never) */
    bs__gemm_rows_fn gemm_rows;
    bs__gemm_row1_fn gemm_row1; /* may be NULL */
    bs__gemm_cols_fn gemm_cols;
    bs__im2col_fn im2col;
    bs__dw_plane_fn dw_plane;
    bs__dw_planes_fn dw_planes; /* may be NULL */
    bs__conv_tile_fn conv_tile; /* may be NULL: no direct convolution (im2col instead) */
    int dq;                     /* positions per conv_tile call, a multiple of 16 */
    bs__conv_fill_fn conv_fill; /* may be NULL: the portable fill */
    bs__dot_i8_fn dot_i8;       /* may be NULL: the portable loop */
    bs__dot_f16_fn dot_f16;     /* may be NULL: the portable loop */
    /* may be NULL: unpacks a prefix of codes [k0, k0 + kl) of a packed row (bs_quant.h) into
     * int8 and returns its length; the portable unpacker does the rest */
    int (*unpack)(const uint8_t *row, int bits, int k0, int kl, int8_t *codes);
    /* may be NULL: bs_dot_u8s8 (codes within +-64, so pairwise sums never saturate 16 bits) */
    int32_t (*dot_u8s8)(const uint8_t *x, const int8_t *c, int n);
    /* may be NULL: bs_dot_u8_packed */
    int32_t (*dot_u8_packed)(const uint8_t *const *xs, int p, const uint8_t *row, int nbytes);
} bs__kernels_t;

/* The AVX2 dot products (bs_kernels_avx2.c, F16C), which the AVX-512 table shares. */
float bs__dot_i8_avx2(const int8_t *c, const float *x, int n);
float bs__dot_f16_avx2(const uint16_t *h, const float *x, int n);
int bs__unpack_avx2(const uint8_t *row, int bits, int k0, int kl, int8_t *codes);
int32_t bs__dot_u8s8_avx2(const uint8_t *x, const int8_t *c, int n);
int32_t bs__dot_u8_packed_avx2(const uint8_t *const *xs, int p, const uint8_t *row, int nbytes);
/* The portable dot products (bs_kernels.c). */
float bs__dot_i8_ref(const int8_t *c, const float *x, int n);
float bs__dot_f16_ref(const uint16_t *h, const float *x, int n);

#define BS__NR_MAX 32
#define BS__MR_MAX 16

/* The portable im2col of the fast paths (row copies), in bs_kernels.c. */
void bs__im2col_rows(const bs_conv2d_t *g, const float *x, float *col);

/* The portable fill of the direct convolution's phase planes (bs_kernels.c). */
void bs__conv_fill_ref(const bs_conv2d_t *g, const bs__direct_t *d, const float *xc, float *bc);

/* The AVX2 depthwise plane (bs_kernels_avx2.c), which the AVX-512 table shares. */
void bs__dw_plane_avx2(const bs_conv2d_t *g, const float *x, const float *w, float b, float *y,
                       int act, float lo, float hi);

/* One output of a depthwise plane, in the reference order (kh, then kw; bias after the
 * sum): the reference, and the fast paths' fallback. Returns the value before act. */
static inline float bs__dw_point(const bs_conv2d_t *g, const float *x, const float *w, float b,
                                 int oh, int ow)
{
    float acc = 0.0f;
    for (int kh = 0; kh < g->KH; kh++) {
        int ih = oh * g->sh + kh * g->dh - g->pt;
        if (ih < 0 || ih >= g->H)
            continue;
        for (int kw = 0; kw < g->KW; kw++) {
            int iw = ow * g->sw + kw * g->dw - g->pl;
            if (iw < 0 || iw >= g->W)
                continue;
            acc += x[(int64_t)ih * g->W + iw] * w[kh * g->KW + kw];
        }
    }
    return acc + b;
}

/* Activation of one value; NaN stays NaN (as in ONNX Relu and Clip). */
static inline float bs__act1(float v, int act, float lo, float hi)
{
    if (act == BS_KACT_RELU)
        return v < 0.0f ? 0.0f : v;
    if (act == BS_KACT_CLIP)
        return v < lo ? lo : (v > hi ? hi : v);
    return v;
}

/* Stores one element of a GEMM tile (column j of the tile): adds what the earlier K blocks
 * left in Y, then on the last block the bias and the activation. */
static inline void bs__gemm_store1(float *y, float v, const bs__gemm_epi_t *e, int j)
{
    if (e->accumulate)
        v = *y + v;
    if (e->final) {
        if (e->bias)
            v += e->bias[j];
        v = bs__act1(v, e->act, e->lo, e->hi);
    }
    *y = v;
}

#endif

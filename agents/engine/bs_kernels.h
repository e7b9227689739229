/*
 * bs_kernels.h - float32 compute kernels with run-time instruction-set dispatch.
 *
 * Every kernel has a portable C reference; AVX2+FMA (x86-64) and NEON (arm64) versions live in
 * their own files (one instruction set per file, compiled with that file's flags only) and are
 * chosen once, at first use, from CPU feature detection. Tests force each available ISA with
 * bs_kernels_select() and compare against the reference on random shapes including odd sizes
 * and tails. Kernels never allocate: callers ask for scratch sizes and pass buffers.
 *
 * GEMM convention (weights are the packed operand, fixed at prepare time):
 *     Y[m, n] = act( sum_k X[m, k] * W[n, k] + bias[n] ),   m < M, n < N, k < K
 * X and Y are addressed through strides, so one kernel serves Gemm/MatMul (X row-major,
 * Y row-major) and NCHW convolution through im2col (X = the column matrix read transposed,
 * Y = the output channel planes, i.e. Y strides (1, P)).
 */
#ifndef BS_KERNELS_H
#define BS_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "bs_threadpool.h"

/* "avx512", "avx2", "neon" or "scalar": what the dispatcher chose. */
const char *bs_kernels_isa(void);
/* Forces an ISA ("scalar" always works); BS_EUNSUPPORTED if this CPU or build lacks it. */
int bs_kernels_select(const char *isa);
/* Comma-separated ISAs this build and CPU can run, e.g. "scalar,avx2". */
const char *bs_kernels_available(void);

enum { BS_KACT_NONE = 0, BS_KACT_RELU = 1, BS_KACT_CLIP = 2 }; /* = BS_ACT_* */

/* Packed weight size in bytes for an N x K weight, for the currently selected ISA. */
size_t bs_gemm_packed_size(int N, int K);
/* Packs W, element (n, k) at W[n * sn + k * sk], into dst (bs_gemm_packed_size bytes,
 * 64-byte aligned). Pack again after bs_kernels_select changes the ISA. */
void bs_gemm_pack(const float *W, int64_t sn, int64_t sk, int N, int K, void *dst);
/* Scratch bytes bs_gemm needs for these sizes with this many threads. */
size_t bs_gemm_scratch_size(int M, int N, int K, int threads);
/* Y = act(X * W^T + bias). bias may be NULL. X element (m,k) at X[m*sxm + k*sxk]; Y element
 * (m,n) at Y[m*sym + n*syn]. lo/hi are the Clip bounds (act == BS_KACT_CLIP). */
void bs_gemm(int M, int N, int K, const float *X, int64_t sxm, int64_t sxk, const void *Wp,
             const float *bias, float *Y, int64_t sym, int64_t syn, int act, float lo, float hi,
             void *scratch, bs_threadpool_t *pool);

/* Weight-only quantized weights for bs_gemm_wq: the GEMM's column n is row n0 + n of either
 * integer codes (bs_quant.h rows of 2..8 bits with per-row scales) or fp16 halves (K per row,
 * row-major). */
typedef struct bs_gemm_wsrc {
    const struct bs_qweight *q; /* integer rows, or NULL */
    const uint16_t *f16;        /* fp16 rows when q is NULL */
    int n0;                     /* first row */
} bs_gemm_wsrc_t;

/* bs_gemm with W dequantized inside the kernel: each panel's K block is expanded to floats
 * (scale * code, or the half's value) in a small per-thread tile right before the micro-kernel
 * reads it, so the weight is never expanded in memory. Same results as bs_gemm on the
 * dequantized weight packed by bs_gemm_pack (the same tiles, the same summation order). */
size_t bs_gemm_wq_scratch_size(int M, int N, int K, int threads);
void bs_gemm_wq(int M, int N, int K, const float *X, int64_t sxm, int64_t sxk,
                const bs_gemm_wsrc_t *W, const float *bias, float *Y, int64_t sym, int64_t syn,
                int act, float lo, float hi, void *scratch, bs_threadpool_t *pool);

/* Codes [k0, k0 + kl) of one packed row of `bits` (bs_quant.h layout) into int8, with the
 * selected ISA's unpacker where it has one; may read up to 8 bytes past the row (inside the
 * next row or BS_QWEIGHT_TAIL). */
void bs_qunpack_fast(const uint8_t *row, int bits, int k0, int kl, int8_t *codes);
/* sum_k x[k] * c[k] for uint8 x and int8 codes with |c| <= 64 (weights of 2..7 bits), exact
 * in int32 (n <= 65536), with the selected ISA's kernel where it has one. */
int32_t bs_dot_u8s8(const uint8_t *x, const int8_t *c, int n);

/* The int8 dot product of a 4-bit (p = 2) or 2-bit (p = 4) packed row read in place, codes
 * never unpacked to memory: sum over bytes j < nbytes and phases t < p of
 * xs[t][j] * code(j*p + t), where xs[t] is the input's phase t (x[j*p + t], 0 past K; see
 * bs_split_phases) and code the signed field t of byte j. Exact in int32. */
int32_t bs_dot_u8_packed(const uint8_t *const *xs, int p, const uint8_t *row, int nbytes);
/* Splits x[0..K) into p phase arrays of nbytes = ceil(K / p) each, out[t*stride + j] =
 * x[j*p + t] (0 past K), stride >= nbytes + 32 (tails read ahead are zero). */
void bs_split_phases(const uint8_t *x, int K, int p, uint8_t *out, int64_t stride);

/* 2-D convolution geometry (NCHW, one image, one group's slice handled by the caller). */
typedef struct bs_conv2d {
    int C, H, W;              /* input channels (of this group), height, width */
    int KH, KW;
    int OH, OW;
    int sh, sw;               /* strides */
    int dh, dw;               /* dilations */
    int pt, pl;               /* top and left padding (bottom/right implied by OH/OW) */
} bs_conv2d_t;

/* im2col: col[(c*KH + kh)*KW + kw][oh*OW + ow], zero where the window reads padding.
 * col holds C*KH*KW * OH*OW floats. */
void bs_im2col(const bs_conv2d_t *g, const float *x, float *col);
/* Depthwise 2-D convolution: each of C channels convolved with its own KH x KW filter
 * w[c][kh][kw]; y[c][oh][ow] = act(sum + bias[c]). bias may be NULL. Parallel over
 * channels. */
void bs_conv2d_depthwise(const bs_conv2d_t *g, const float *x, const float *w,
                         const float *bias, float *y, int act, float lo, float hi,
                         bs_threadpool_t *pool);

/* Direct 2-D convolution of one group, for instruction sets with a direct kernel (no window
 * matrix): y[n][oh][ow] = act(sum over c, kh, kw of x[c][ih][iw] * W[n][c][kh][kw] + bias[n]),
 * n < N, each output one sequential sum over k = (c*KH + kh)*KW + kw (K = C*KH*KW). Wp is W
 * packed by bs_gemm_pack(W, K, 1, N, K, Wp) for the selected ISA; bias may be NULL. The input
 * is first copied, zero-padded (and split by stride phase), into scratch; every output is
 * then a run of the copy at a fixed offset per k, read in place by the micro-kernel.
 * bs_conv2d_direct_scratch returns the scratch bytes, or 0 when the selected ISA has no
 * direct kernel or the copy would be too large: the caller then uses im2col + bs_gemm.
 * Results do not depend on the thread count. */
size_t bs_conv2d_direct_scratch(const bs_conv2d_t *g, int N);
void bs_conv2d_direct(const bs_conv2d_t *g, int N, const float *x, const void *Wp,
                      const float *bias, float *y, int act, float lo, float hi, void *scratch,
                      bs_threadpool_t *pool);

#endif

/*
 * bs_qkernels.h - integer compute kernels: uint8 activations x int8 weights, accumulated in
 * int32, with the requantization fused with the bias and the following Relu / Clip.
 *
 * The math (every instruction set computes exactly this, bit for bit):
 *     raw[m, n]  = sum_k X[m, k] * Wq[n, k]                 (X uint8, Wq int8 codes, int32)
 *     acc[m, n]  = raw[m, n] + off[n]                       (int32, two's complement wrap)
 *     v[m, n]    = (float)acc[m, n] * mult[n]               (one float multiply, no FMA)
 *   float output (e->out_u8 == 0):  Y[m, n] = act(v)        (BS_KACT_*: Relu max(v, 0), Clip)
 *   uint8 output (e->out_u8 == 1):  Y[m, n] = (uint8)(rne(clamp(v, qlo - zo, qhi - zo)) + zo)
 * where rne is round-half-to-even (a NaN v, which only a non-finite mult can produce, gives
 * qlo; Relu and Clip keep it NaN). The caller folds everything else into off and mult: for an
 * input with zero point zx, off[n] = bias_q[n] - zx * sum_k Wq[n, k] (bias quantized to int32
 * at scale sx * sw[n], as ONNX QLinearConv does); mult[n] = sx * sw[n] for a float output, or
 * sx * sw[n] / s_out for a uint8 output with zero point zo, a fused Relu being qlo = zo and a
 * fused Clip [lo, hi] being qlo/qhi = the quantized bounds. K is at most BS_QGEMM_K_MAX so raw
 * cannot overflow.
 *
 * Weights: the N x K codes of a bs_qweight_t (bs_quant.h: packed rows of 2..8 bits). 8-bit
 * weights are repacked once, at prepare time, into the selected instruction set's panel order
 * (bs_qgemm_pack; the same N*K bytes plus padding to whole panels); 4-bit weights may be
 * repacked the same way two codes per byte (bs_qgemm_pack4, half the bytes), which the
 * micro-kernel expands in registers; other narrower weights stay in their packed rows, and
 * the kernel unpacks each panel's K block into a small tile in scratch just before the
 * micro-kernel reads it, so they are never expanded in memory.
 *
 * Activations: X is M rows of uint8, row m at X + m*ldx, ldx >= BS_QK_PAD(K); the bytes of a row
 * in [K, BS_QK_PAD(K)) may hold anything (their weights are zero). bs_im2row_u8 builds X from
 * uint8 NCHW planes (one row per output position, zero point where the window reads padding);
 * bs_quantize_u8 quantizes float activations first.
 *
 * Convolutions: bs_qconv2d computes the same sums and epilogue straight from the uint8 NCHW
 * planes into NCHW output planes, with the GEMM's roles swapped: output channels are the rows,
 * output positions the vector lanes. The input is copied once into zero-point-padded phase
 * planes (one per stride phase, none for a 1x1 stride-1 unpadded convolution, whose planes are
 * read in place), so that each tap k is one contiguous run of positions; groups of 4 taps are
 * interleaved byte-wise ("X4": the 4 bytes of one position side by side, vpdpbusd's unsigned
 * operand) one block of positions at a time, and each weight word (4 codes of one output
 * channel) is broadcast against them. The epilogue stores contiguous runs of each output
 * plane. The weight is the same operand as bs_qgemm's (panels of the selected ISA, or rows).
 * bs_qconv_depthwise vectorises each channel across its output positions the same way, taps
 * of one kernel row 4 at a time.
 *
 * Instruction sets: a portable C reference, AVX2 (vpmaddwd on sign-extended 16-bit values,
 * exact), AVX-VNNI (vpdpbusd on ymm), AVX512-VNNI (vpdpbusd on zmm), NEON (widening
 * multiply-accumulate); chosen once at first use from CPU features, forced by
 * bs_qkernels_select (tests compare every available one with the reference, bit for bit).
 * Independent of bs_kernels_select.
 */
#ifndef BS_QKERNELS_H
#define BS_QKERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "bs_kernels.h"
#include "bs_quant.h"
#include "bs_threadpool.h"

#define BS_QGEMM_K_MAX 65536
/* Row length X must have for K codes. */
#define BS_QK_PAD(K) (((int64_t)(K) + 3) / 4 * 4)

/* "scalar", "avx2", "avxvnni", "avx512vnni", "neon": what the dispatcher chose. */
const char *bs_qkernels_isa(void);
/* Forces one ("scalar" always works); BS_EUNSUPPORTED when this CPU or build lacks it. */
int bs_qkernels_select(const char *isa);
/* Comma-separated ISAs this build and CPU can run. */
const char *bs_qkernels_available(void);

/* The weight operand. Exactly one of packed / packed4 / rows is used, in that order. */
typedef struct bs_qgemm_w {
    int N, K;
    const void *packed;       /* bs_qgemm_pack of an 8-bit bs_qweight_t, for the ISA selected
                                 when it was packed; or NULL */
    const void *packed4;      /* bs_qgemm_pack4 of a 4-bit bs_qweight_t, likewise (expanded
                                 in registers, or a K block at a time into scratch); or
                                 NULL */
    const bs_qweight_t *rows; /* when both are NULL: rows of any width 2..8 */
} bs_qgemm_w_t;

typedef struct bs_qgemm_epi {
    const int32_t *off; /* N values added to raw */
    const float *mult;  /* N multipliers */
    int out_u8;         /* 0: Y is float; 1: Y is uint8 */
    int act;            /* float output: BS_KACT_*; lo, hi the Clip bounds */
    float lo, hi;
    int32_t zo, qlo, qhi; /* uint8 output: zero point and bounds, 0 <= qlo <= qhi <= 255 */
} bs_qgemm_epi_t;

/* Bytes bs_qgemm_pack writes for an N x K weight, for the selected ISA (any alignment
 * works; 64 bytes is best). */
size_t bs_qgemm_packed_size(int N, int K);
/* Repacks the 8-bit q into dst (narrower widths work too: each code becomes a byte). Pack
 * again after bs_qkernels_select. Like every reader of q here, it relies on the
 * BS_QWEIGHT_TAIL zero bytes after q's last row. */
void bs_qgemm_pack(const bs_qweight_t *q, void *dst);
/* The 4-bit form of bs_qgemm_pack: the same panels, two codes per byte (groups of 4 k
 * paired in the low and high nibbles, bs_qkernels_impl.h), half the size with K rounded up
 * to a multiple of 8; bs_qgemm reads them in registers (a single tile of rows) or expands a
 * K block at a time into scratch, bs_qconv2d likewise (in registers for a grid of one
 * block). q must hold 4-bit codes (within -8..7). */
size_t bs_qgemm_packed4_size(int N, int K);
void bs_qgemm_pack4(const bs_qweight_t *q, void *dst);
/* sum_k Wq[n, k] for each row n of q (any width), for the caller's off[]. */
void bs_qweight_row_sums(const bs_qweight_t *q, int32_t *sums);
/* Every code of q (any width) into codes[n*K + k] (N*K bytes, the caller's). */
void bs_qweight_codes(const bs_qweight_t *q, int8_t *codes);
/* Scratch bs_qgemm needs (from_rows: W given as rows or packed4, unpacked per tile);
 * threads: the pool's size. Any alignment. */
size_t bs_qgemm_scratch_size(int M, int N, int K, int threads, int from_rows);
/* Y element (m, n) at Y + (m*sym + n*syn) elements (float or uint8 per e->out_u8). Sums are
 * exact and each element's epilogue is computed once, so Y is bitwise identical for any
 * thread count and instruction set. Never allocates. */
void bs_qgemm(int M, const uint8_t *X, int64_t ldx, const bs_qgemm_w_t *W,
              const bs_qgemm_epi_t *e, void *Y, int64_t sym, int64_t syn, void *scratch,
              bs_threadpool_t *pool);

/* q[i] = clamp(rne(x[i] / scale) + zp, 0, 255), as ONNX QuantizeLinear to uint8 (NaN -> zp;
 * zp in [0, 255]). */
void bs_quantize_u8(const float *x, int64_t n, float scale, int32_t zp, uint8_t *q);

/* im2row of uint8 planes x[C][H][W] (one image, one group): row m = oh*OW + ow holds, at
 * k = (c*KH + kh)*KW + kw, the input under tap (c, kh, kw), or pad where the window reads
 * padding; rows ldr bytes apart (ldr >= BS_QK_PAD(C*KH*KW)), bytes past K zeroed. */
void bs_im2row_u8(const bs_conv2d_t *g, const uint8_t *x, uint8_t pad, uint8_t *rows,
                  int64_t ldr);

/* Convolution of one group: g->C uint8 input planes x[C][H][W] (pad: the value read where the
 * window leaves the input, normally the zero point), W an N x K weight with
 * K = C*KH*KW, k = (c*KH + kh)*KW + kw (as bs_qgemm's: packed for the selected ISA, or rows);
 * raw[n][oh][ow] = sum_k input under tap k * Wq[n, k], then the epilogue e of bs_qgemm (off
 * and mult of channel n) into y: N output planes of OH*OW elements (float or uint8). Exactly
 * bs_im2row_u8 followed by bs_qgemm with sym = 1, syn = OH*OW, bit for bit, for any thread
 * count. scratch: bs_qconv2d_scratch(g, W->N, threads, W given as rows or packed4) bytes, any
 * alignment (threads: the pool's size); 0 when the geometry is too large for bs_qconv2d (use
 * bs_im2row_u8 + bs_qgemm). Never allocates. */
size_t bs_qconv2d_scratch(const bs_conv2d_t *g, int N, int threads, int from_rows);
void bs_qconv2d(const bs_conv2d_t *g, const uint8_t *x, uint8_t pad, const bs_qgemm_w_t *W,
                const bs_qgemm_epi_t *e, void *y, void *scratch, bs_threadpool_t *pool);

/* Depthwise convolution of uint8 planes (zero point zx) with int8 codes w[c][KH*KW], each
 * channel one output n = c of the epilogue: raw = sum over the window of (x - zx) * w (padding
 * contributes 0; so off[c] holds only the bias, no zero-point term), then as above with
 * off/mult of channel c. y: C output planes (float or uint8). scratch:
 * bs_qconv_depthwise_scratch(g, threads) bytes, any alignment. Parallel over channels;
 * results do not depend on the thread count. Never allocates. */
size_t bs_qconv_depthwise_scratch(const bs_conv2d_t *g, int threads);
void bs_qconv_depthwise(const bs_conv2d_t *g, const uint8_t *x, int32_t zx, const int8_t *w,
                        const bs_qgemm_epi_t *e, void *y, void *scratch, bs_threadpool_t *pool);

#endif

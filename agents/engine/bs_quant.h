/*
 * bs_quant.h - weight quantization (packed low-bit integers, fp16) and activation calibration
 * for the engine's per-layer precisions.
 *
 * Weights. A weight tensor is seen as an N x K matrix (N output channels, K inputs per
 * channel) through element strides (sn, sk), so a Gemm's B with or without transB, a Conv's
 * [M, C/g, kh, kw] and a MatMul's [K, N] are all quantized in place of reading, without a
 * copy. Each row n gets its own scale s_n > 0 and signed symmetric codes
 *     q = clamp(round(w / s_n), -qmax, qmax),   qmax = 2^(bits-1) - 1,   w' = s_n * q
 * for bits in 2..8. The code -2^(bits-1) is never used, so the range is symmetric and zero is
 * exact. The scale is clip / qmax, the clip chosen per row by
 *   BS_QSCALE_MINMAX  clip = max |w| of the row;
 *   BS_QSCALE_MSE     clip = max |w| * r minimising the row's squared error
 *                     sum_k (w_k - s * q_k)^2 over r in [0.2, 1] on a coarse-to-fine grid
 *                     (steps of 0.05, then 0.01 and 0.001 around the best so far); r = 1
 *                     (min-max) is tried first and kept on ties, so MSE is never worse than
 *                     min-max (the default: it matters at 2 to 4 bits, where clipping a few
 *                     outliers buys resolution for the rest).
 * Rounding is round half to even everywhere in this file, as ONNX QuantizeLinear and the SIMD
 * conversion instructions do (under the default rounding mode, which bitscout never changes;
 * bs_quant_round() alone does not depend on it).
 * A row whose largest magnitude is 0 (or so small that its scale underflows to 0) gets
 * scale 1 and all codes 0. Weights that are NaN or infinite are refused (BS_EINVAL).
 * The dequantized value is the float product s_n * (float)q, rounded once; the search's error
 * and bs_qweight_dequant_row use that same product, so the error a test measures from
 * dequantized rows is the error the search minimised.
 *
 * Packed layout. Each row is a little-endian bit stream of K fields of `bits` bits: field k
 * holds the low `bits` bits of q_k in two's complement and occupies stream bits
 * [k*bits, k*bits + bits), stream bit j being bit (j % 8) of byte (j / 8). Rows are padded to a
 * whole byte, so row n starts at data + n * row_bytes, row_bytes = ceil(K * bits / 8).
 *
 *   8 bits   byte j = q_j (an int8)
 *              byte:  |  q0   |  q1   |  q2   | ...
 *   4 bits   two per byte, element 2j in the low nibble of byte j
 *              byte j: bit 7 ..  4 | 3 .. 0
 *                        q(2j+1)   |  q(2j)
 *   2 bits   four per byte, element 4j+t in bits [2t, 2t+2) of byte j
 *              byte j: 7 6 | 5 4 | 3 2 | 1 0
 *                     q4j+3 q4j+2 q4j+1 q4j
 *   3 bits (and 5, 6, 7) a stream whose fields may straddle bytes:
 *              byte 0: q2[1:0] q1[2:0] q0[2:0]   (bits 7..6 | 5..3 | 2..0)
 *              byte 1: q5[0] q4[2:0] q3[2:0] q2[2]
 *              byte 2: q7[2:0] q6[2:0] q5[2:1]
 * Padding bits at the end of a row are zero. A code is sign-extended from its field with
 * (v ^ m) - m, m = 2^(bits-1). The data buffer has BS_QWEIGHT_TAIL extra zero bytes after the
 * last row so vector kernels may load past a row's end; they are not part of the layout and
 * not counted by bs_qweight_bytes().
 *
 * Calibration. A bs_calib_t observes an activation tensor over the calibration samples
 * (bs_calib_observe per batch) and keeps its min, max and a 2048-bin histogram; it then gives a
 * per-tensor scale and zero point for uint8 or int8 (bs_calib_params) by min-max, percentile or
 * histogram MSE. See bs_calib_t for the histogram's range-doubling scheme.
 */
#ifndef BS_QUANT_H
#define BS_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "bs_error.h"

/* Scale methods for bs_quantize_weights. */
enum { BS_QSCALE_MINMAX = 0, BS_QSCALE_MSE = 1 };

#define BS_QBITS_MIN 2
#define BS_QBITS_MAX 8
/* Largest code at `bits`: 2^(bits-1) - 1 (127 at 8 bits, 1 at 2 bits). */
#define BS_QMAX(bits) ((1 << ((bits)-1)) - 1)
/* Bytes of one packed row of K codes. */
#define BS_QROW_BYTES(K, bits) (((size_t)(K) * (size_t)(bits) + 7) / 8)
/* Byte and bit offset of field k within its row. */
#define BS_QFIELD_BYTE(k, bits) (((size_t)(k) * (size_t)(bits)) >> 3)
#define BS_QFIELD_SHIFT(k, bits) ((unsigned)(((size_t)(k) * (size_t)(bits)) & 7u))
/* Zero bytes after the last row, for vector loads past a row's end. */
#define BS_QWEIGHT_TAIL 64

typedef struct bs_qweight {
    int bits;         /* 2..8 */
    int method;       /* BS_QSCALE_* used to choose the scales */
    int N, K;         /* rows (output channels) and codes per row */
    size_t row_bytes; /* BS_QROW_BYTES(K, bits) */
    uint8_t *data;    /* owned: N * row_bytes packed bytes (+ BS_QWEIGHT_TAIL zeros) */
    float *scales;    /* owned: N per-row scales, all > 0 */
} bs_qweight_t;

/* Quantizes W, element (n, k) at W[n * sn + k * sk] (strides in elements, any sign), into *out
 * (overwritten; free with bs_qweight_free; *out is zeroed on failure). Returns 0, BS_EINVAL
 * (bits outside 2..8, N or K <= 0, unknown method, a NaN or infinite weight: the message says
 * which) or BS_ENOMEM. */
int bs_quantize_weights(const float *W, int64_t sn, int64_t sk, int N, int K, int bits, int method,
                        bs_qweight_t *out, bs_err_t *err);
/* Frees what *q owns and zeroes it; NULL and zeroed structs are fine. */
void bs_qweight_free(bs_qweight_t *q);
/* Bytes the engine holds for q: N * row_bytes packed + N * 4 of scales. */
size_t bs_qweight_bytes(const bs_qweight_t *q);

/* The reference the fast kernels are tested against. For row n and k in [k0, k1)
 * (0 <= k0 <= k1 <= K): codes[k - k0] = q_k, and out[k - k0] = scales[n] * (float)q_k. */
void bs_qweight_unpack_row(const bs_qweight_t *q, int n, int k0, int k1, int8_t *codes);
void bs_qweight_dequant_row(const bs_qweight_t *q, int n, int k0, int k1, float *out);

/* The layout itself, one row: packs K codes (each within +-BS_QMAX(bits)) into
 * BS_QROW_BYTES(K, bits) bytes of dst (all of them written, padding zero), and unpacks the
 * fields [k0, k1) of a packed row. */
void bs_qpack_row(const int8_t *codes, int K, int bits, uint8_t *dst);
void bs_qunpack_row(const uint8_t *src, int bits, int k0, int k1, int8_t *codes);

/* Round half to even, independent of the floating-point environment. */
float bs_quant_round(float x);

/* fp16 weights: *out (caller's, bs_free) = N * K halves, row-major, element (n, k) of W at
 * W[n * sn + k * sk], rounded to nearest even by bs_f32_to_f16. Returns 0, BS_EINVAL (N or
 * K <= 0; a NaN weight or one whose magnitude exceeds the fp16 maximum 65504: the message
 * gives its row and column) or BS_ENOMEM. */
int bs_f16_weights(const float *W, int64_t sn, int64_t sk, int N, int K, uint16_t **out,
                   bs_err_t *err);
/* out[i] = the float value of h[i], i < count. */
void bs_f16_dequant(const uint16_t *h, size_t count, float *out);

/* ---- activation calibration ------------------------------------------------------------ */

enum { BS_CALIB_MINMAX = 0, BS_CALIB_PERCENTILE = 1, BS_CALIB_MSE = 2 };

#define BS_CALIB_BINS 2048

/* Observations of one tensor. The histogram covers [lo, lo + BS_CALIB_BINS * width): the first
 * batch with a finite value sets lo = its min and width = (max - min) / BS_CALIB_BINS (a tiny
 * positive width when all are equal). When a later value falls outside, the range doubles -
 * upward (lo kept: new bin i = old bins 2i and 2i+1) or downward (hi kept: new bin
 * BINS/2 + i = old bins 2i and 2i+1) - until it fits. Merges are exact, so one pass suffices,
 * no sample is stored, and the final range is less than twice the observed one (at least
 * 1024 bins across the data; outliers therefore coarsen the bins for everything else, which
 * bounds how finely percentile and MSE can clip). NaN and infinities are counted in
 * n_nonfinite and skipped. */
typedef struct bs_calib {
    double count; /* finite values observed */
    double n_nonfinite;
    float min, max;   /* of the finite values; valid when count > 0 */
    double lo, width; /* histogram range; width > 0 when count > 0 */
    double hist[BS_CALIB_BINS];
} bs_calib_t;

void bs_calib_init(bs_calib_t *c);
void bs_calib_observe(bs_calib_t *c, const float *x, size_t n);
/* Scale and zero point for dtype BS_DT_UINT8 ([0, 255]) or BS_DT_INT8 ([-128, 127]) with
 *   x ~ scale * (q - zero_point).
 * The range [a, b] is chosen by `method`:
 *   BS_CALIB_MINMAX      a = min, b = max;
 *   BS_CALIB_PERCENTILE  each tail loses (100 - percentile)% of the values, read from the
 *                        histogram with linear interpolation inside a bin (percentile in
 *                        (50, 100], e.g. 99.99; ignored by the other methods);
 *   BS_CALIB_MSE         the pair (min * r_lo, max * r_hi), each r in 2^(-j/6), j = 0..59
 *                        (1 down to about 0.001), minimising the squared error of the
 *                        histogram (bin centres weighted by counts); min-max kept on ties.
 * then widened to include 0 (so zero is exact): scale = (b - a) / (qmax - qmin),
 * zero_point = qmin - round(a / scale) clamped to [qmin, qmax]. So an all-positive tensor
 * (post-ReLU) gets zero_point = qmin, the bottom of the range; an all-zero or never-observed
 * one gets scale 1 and zero_point qmin. Returns 0 or BS_EINVAL (bad method, dtype or
 * percentile: the message says which). */
int bs_calib_params(const bs_calib_t *c, int method, double percentile, int dtype, float *scale,
                    int32_t *zero_point, bs_err_t *err);

#endif

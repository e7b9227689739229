/*
 * bs_qkernels_avxvnni.c - the AVX-VNNI GEMM micro-kernel (x86-64); the only file compiled with
 * -mavxvnni (with -mavx2, and no -mfma). Chosen at run time by bs_qkernels.c when cpuid
 * reports AVX-VNNI (leaf 7, subleaf 1, EAX bit 4): the VEX-encoded vpdpbusd on ymm.
 *
 * vpdpbusd multiplies 4 unsigned bytes by 4 signed bytes in each 32-bit lane and adds the
 * four products to the lane, with no intermediate saturation: exactly the sum the reference
 * computes. The panel layout (kq = 4, bs_qkernels_impl.h) holds, per group of 4 k, 16 columns
 * of 4 codes: two 32-byte loads. Each X row's 4 bytes are broadcast to every lane.
 *
 * Tile 6 x 16: 12 accumulators, two panel loads and six broadcasts per group of 4 k, twelve
 * vpdpbusd (16 of the 16 ymm registers at most). Shorter tiles are the same code specialised
 * at compile time on their row count. The epilogue, quantization and im2row are the AVX2
 * table's (bs_qkernels_avx2.c).
 */
#include <immintrin.h>
#include <string.h>

#include "bs_qkernels_impl.h"

#define S_INLINE static inline __attribute__((always_inline))

enum { V_NR = 16, V_MR = 6 };

S_INLINE __m256i s_bcast4(const uint8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

S_INLINE void s_store_acc(int32_t *acc, __m256i v, int accumulate)
{
    if (accumulate)
        v = _mm256_add_epi32(v, _mm256_loadu_si256((const __m256i *)acc));
    _mm256_storeu_si256((__m256i *)acc, v);
}

/* Written out row by row (the compiler keeps arrays of accumulators in memory); MR is a
 * constant after inlining, so the rows past it vanish. */
#define S_ROW_INIT(i)                                                                            \
    __m256i c##i##0 = _mm256_setzero_si256(), c##i##1 = _mm256_setzero_si256();                  \
    const uint8_t *x##i = x + (MR > i ? i : 0) * ldx;
#define S_ROW_STEP(i)                                                                            \
    if (MR > i) {                                                                                \
        __m256i xb = s_bcast4(x##i + 4 * g);                                                     \
        c##i##0 = _mm256_dpbusd_avx_epi32(c##i##0, xb, w0);                                      \
        c##i##1 = _mm256_dpbusd_avx_epi32(c##i##1, xb, w1);                                      \
    }
#define S_ROW_STORE(i)                                                                           \
    if (MR > i) {                                                                                \
        s_store_acc(acc + i * V_NR, c##i##0, accumulate);                                        \
        s_store_acc(acc + i * V_NR + 8, c##i##1, accumulate);                                    \
    }

S_INLINE void s_tile_n(int MR, int kg, const uint8_t *x, int64_t ldx, const int8_t *wp,
                       int32_t *acc, int accumulate)
{
    S_ROW_INIT(0) S_ROW_INIT(1) S_ROW_INIT(2) S_ROW_INIT(3) S_ROW_INIT(4) S_ROW_INIT(5)
    for (int g = 0; g < kg; g++) {
        __m256i w0 = _mm256_loadu_si256((const __m256i *)(wp + (int64_t)g * 64));
        __m256i w1 = _mm256_loadu_si256((const __m256i *)(wp + (int64_t)g * 64 + 32));
        S_ROW_STEP(0) S_ROW_STEP(1) S_ROW_STEP(2) S_ROW_STEP(3) S_ROW_STEP(4) S_ROW_STEP(5)
    }
    S_ROW_STORE(0) S_ROW_STORE(1) S_ROW_STORE(2) S_ROW_STORE(3) S_ROW_STORE(4) S_ROW_STORE(5)
}

static void s_tile_avxvnni(int kg, const uint8_t *x, int64_t ldx, int mv, const int8_t *wp,
                           int32_t *acc, int accumulate)
{
    switch (mv) {
    case 1: s_tile_n(1, kg, x, ldx, wp, acc, accumulate); break;
    case 2: s_tile_n(2, kg, x, ldx, wp, acc, accumulate); break;
    case 3: s_tile_n(3, kg, x, ldx, wp, acc, accumulate); break;
    case 4: s_tile_n(4, kg, x, ldx, wp, acc, accumulate); break;
    case 5: s_tile_n(5, kg, x, ldx, wp, acc, accumulate); break;
    default: s_tile_n(6, kg, x, ldx, wp, acc, accumulate); break;
    }
}

const bs__qkernels_t bs__qkernels_avxvnni = {
    .name = "avxvnni",
    .nr = V_NR,
    .mr = V_MR,
    .kq = 4,
    .tile = s_tile_avxvnni,
    .epi = bs__qepi_avx2,
    .run = bs__qrun_avx2,
    .unpack = bs__qunpack_avx2,
    .quantize = bs__qquant_avx2,
    .im2row = bs__qim2row_avx2,
    .dw = bs__qdw_avx2,
};

/*
 * bs_qkernels_avx512vnni.c - the AVX512-VNNI GEMM micro-kernel (x86-64); the only file
 * compiled with -mavx512f -mavx512bw -mavx512vl -mavx512vnni. Chosen at run time by
 * bs_qkernels.c when the CPU has AVX512-F, -VL and -VNNI (cpuid leaf 7: EBX bits 16, 31, ECX
 * bit 11) and the OS saves the zmm state: vpdpbusd on zmm, twice the work per instruction of
 * the AVX-VNNI table.
 *
 * vpdpbusd multiplies 4 unsigned bytes by 4 signed bytes in each 32-bit lane and adds the
 * four products to the lane, with no intermediate saturation: exactly the reference sum. The
 * panel layout is the AVX-VNNI table's (kq = 4, 16 columns: bs_qkernels_impl.h), so one
 * 64-byte load holds a whole group of 4 k of a panel, and the int32 sums land in the same
 * mc x 16 buffer: the epilogue, quantization and im2row are the AVX2 table's.
 *
 * Tile 12 x 16: 12 accumulators (enough independent chains to cover vpdpbusd's latency at
 * two per cycle), one panel load and twelve broadcasts of 4 X bytes per group of 4 k. Shorter
 * tiles are the same code specialised at compile time on their row count.
 */
#include <immintrin.h>
#include <string.h>

#include "bs_qkernels_impl.h"

#define S_INLINE static inline __attribute__((always_inline))

enum { Z_NR = 16, Z_MR = 12 };

S_INLINE __m512i s_bcast4(const uint8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

S_INLINE void s_store_acc(int32_t *acc, __m512i v, int accumulate)
{
    if (accumulate)
        v = _mm512_add_epi32(v, _mm512_loadu_si512((const void *)acc));
    _mm512_storeu_si512((void *)acc, v);
}

/* Written out row by row (the compiler keeps arrays of accumulators in memory); MR is a
 * constant after inlining, so the rows past it vanish. */
#define S_ROW_INIT(i)                                                                            \
    __m512i c##i = _mm512_setzero_si512();                                                       \
    const uint8_t *x##i = x + (MR > i ? i : 0) * ldx;
#define S_ROW_STEP(i)                                                                            \
    if (MR > i)                                                                                  \
        c##i = _mm512_dpbusd_epi32(c##i, s_bcast4(x##i + 4 * g), w);
#define S_ROW_STORE(i)                                                                           \
    if (MR > i)                                                                                  \
        s_store_acc(acc + i * Z_NR, c##i, accumulate);

S_INLINE void s_tile_n(int MR, int kg, const uint8_t *x, int64_t ldx, const int8_t *wp,
                       int32_t *acc, int accumulate)
{
    S_ROW_INIT(0) S_ROW_INIT(1) S_ROW_INIT(2) S_ROW_INIT(3) S_ROW_INIT(4) S_ROW_INIT(5)
    S_ROW_INIT(6) S_ROW_INIT(7) S_ROW_INIT(8) S_ROW_INIT(9) S_ROW_INIT(10) S_ROW_INIT(11)
    for (int g = 0; g < kg; g++) {
        __m512i w = _mm512_loadu_si512((const void *)(wp + (int64_t)g * 64));
        S_ROW_STEP(0) S_ROW_STEP(1) S_ROW_STEP(2) S_ROW_STEP(3) S_ROW_STEP(4) S_ROW_STEP(5)
        S_ROW_STEP(6) S_ROW_STEP(7) S_ROW_STEP(8) S_ROW_STEP(9) S_ROW_STEP(10) S_ROW_STEP(11)
    }
    S_ROW_STORE(0) S_ROW_STORE(1) S_ROW_STORE(2) S_ROW_STORE(3) S_ROW_STORE(4) S_ROW_STORE(5)
    S_ROW_STORE(6) S_ROW_STORE(7) S_ROW_STORE(8) S_ROW_STORE(9) S_ROW_STORE(10) S_ROW_STORE(11)
}

static void s_tile_avx512vnni(int kg, const uint8_t *x, int64_t ldx, int mv, const int8_t *wp,
                              int32_t *acc, int accumulate)
{
    switch (mv) {
    case 1: s_tile_n(1, kg, x, ldx, wp, acc, accumulate); break;
    case 2: s_tile_n(2, kg, x, ldx, wp, acc, accumulate); break;
    case 3: s_tile_n(3, kg, x, ldx, wp, acc, accumulate); break;
    case 4: s_tile_n(4, kg, x, ldx, wp, acc, accumulate); break;
    case 5: s_tile_n(5, kg, x, ldx, wp, acc, accumulate); break;
    case 6: s_tile_n(6, kg, x, ldx, wp, acc, accumulate); break;
    case 7: s_tile_n(7, kg, x, ldx, wp, acc, accumulate); break;
    case 8: s_tile_n(8, kg, x, ldx, wp, acc, accumulate); break;
    case 9: s_tile_n(9, kg, x, ldx, wp, acc, accumulate); break;
    case 10: s_tile_n(10, kg, x, ldx, wp, acc, accumulate); break;
    case 11: s_tile_n(11, kg, x, ldx, wp, acc, accumulate); break;
    default: s_tile_n(12, kg, x, ldx, wp, acc, accumulate); break;
    }
}

const bs__qkernels_t bs__qkernels_avx512vnni = {
    .name = "avx512vnni",
    .nr = Z_NR,
    .mr = Z_MR,
    .kq = 4,
    .tile = s_tile_avx512vnni,
    .epi = bs__qepi_avx2,
    .run = bs__qrun_avx2,
    .unpack = bs__qunpack_avx2,
    .quantize = bs__qquant_avx2,
    .im2row = bs__qim2row_avx2,
    .dw = bs__qdw_avx2,
};

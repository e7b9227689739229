/*
 * bs_qkernels_impl.h - internal to the integer kernels: the table each instruction set fills,
 * and the per-element epilogue every table must reproduce bit for bit.
 *
 * bs_qkernels.c holds the dispatcher, the drivers (blocking, weight unpacking, threads) and
 * the portable C reference ("scalar") of every kernel; bs_qkernels_avx2.c,
 * bs_qkernels_avxvnni.c, bs_qkernels_avx512vnni.c and bs_qkernels_neon.c each export one
 * bs__qkernels_t. The drivers only ever call through the table.
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
 * 4-bit panels (bs_qgemm_pack4): the same panels with Kp rounded up to a multiple of 8 (Kp8;
 * codes past K are zero), two codes per byte, groups of 4 k paired: with u = 4 * nr the bytes
 * of one group of 4 k in the layout above, pair h (groups 2h and 2h + 1) is the u bytes at
 * panel4 + h * u, byte i holding byte i of group 2h in its low nibble and byte i of group
 * 2h + 1 in its high nibble (4-bit two's complement). A panel is nr * Kp8 / 2 bytes and a K
 * block starting at k0 (a multiple of 8) begins at panel4 + k0 * nr / 2. Reading a whole byte
 * of a pair as a signed byte: (b & 0xF0) is 16 times the high code, (b << 4) & 0xF0 16 times
 * the low one, so a vpdpbusd on each gives 16 times the sums, exactly (|16 * sum| < 2^31 for
 * K up to BS_QGEMM_K_MAX), and an arithmetic shift by 4 the sums.
 *
 * Micro-kernel (tile): int32 sums of mv <= mr rows of X against one panel's K block,
 * stored (or added, for later K blocks) into acc rows nr apart. Integer sums are exact, so
 * the order of the k terms never matters: any blocking, thread count or instruction set gives
 * the same raw sums. Everything that can differ lies in the epilogue, which is therefore
 * specified element by element here (bs__qepi_f32 / bs__qepi_u8) and reproduced exactly by
 * the vector epilogues: one int32 -> float conversion (round to nearest even), one float
 * multiply (never fused), compare-based min / max, and round-half-even conversion to int.
 *
 * Convolution grid (bs_qconv2d, bs_qconv_depthwise): output (oh, ow) is the position
 * q = oh*Wq + ow of a grid Wq >= OW wide (the positions with q % Wq >= OW are computed and
 * dropped), so that every tap reads one contiguous (or stride-2) run of a padded copy of the
 * input. Positions go in blocks of 16 (a zmm of int32, or two ymm). The lanes of block b that
 * are outputs are the bits of keep[b]; in lane order they are consecutive outputs, the first
 * at element dst[b] of the output plane (so a block is stored whole, as a masked run, or
 * compressed first). A dense grid (Wq == OW) keeps lanes [0, min(16, nq - 16 b)) at 16 b.
 *
 * X4 (bs_qconv2d): for a chunk of blocks, group g of 4 taps (k = 4g .. 4g + 3) of block i is
 * 64 bytes at x4 + i*ldb + g*64: position l's 4 input bytes at l*4 (one vpdpbusd lane), blocks
 * ldb = kg*64 bytes apart. The conv tile broadcasts the panel's 4 codes of output channel j,
 * group g (kq = 4 tables: the 32-bit word at wp + g*nr*4 + j*4) against them. Raw sums start
 * at off[n] (the int32 sum wraps, so adding off first or last is the same).
 *
 * Depthwise: each channel is copied into row-phase planes padded with zx (phase a holds the
 * padded rows sh*r + a, Wp = sw*Wq bytes each) and its taps are cut into groups: taps of one
 * kernel row whose columns kw*dw fall in a window of 4 bytes [c0, c0 + 4). Position q of
 * group g reads the 4 bytes at xb + goff[g] + sw*q (taps outside the group have code 0 in
 * the group's weight word), so a stride-1 or -2 block is one load and one byte shuffle per
 * group. Raw sums start at off - zx * sum(w) (the padding holds zx, so this equals the sum of
 * (x - zx) * w over the taps inside the input). The kernel copies a batch of channels and
 * builds their weight words itself (bs__qdwp_t describes how), so that the per-channel work
 * of small planes stays in vector code.
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
/* The tile on a 4-bit panel (layout above): the same sums, wp4 the panel's K block (kg
 * groups from a pair boundary; when kg is odd the last pair's high nibbles are not read). */
typedef void (*bs__qtile4_fn)(int kg, const uint8_t *x, int64_t ldx, int mv,
                              const uint8_t *wp4, int32_t *acc, int accumulate);
/* The epilogue of a tile: element (i, j), i < mv, j < nv, from acc[i*lda + j], output column
 * n0 + j (e->off[n0 + j], e->mult[n0 + j]), written at y + (i*sym + j*syn) elements (float or
 * uint8 per e->out_u8). */
typedef void (*bs__qepi_fn)(const int32_t *acc, int64_t lda, int mv, int nv,
                            const bs_qgemm_epi_t *e, int n0, void *y, int64_t sym, int64_t syn);
/* Optional: the K block [k0, k0 + kl) (k0 a multiple of 4, kl a multiple of 4) of the panel
 * whose first column is n0 (nv <= nr valid columns) of q into dst in the table's layout,
 * zeros past K and past nv; returns 0 (writing nothing) for widths it does not handle, which
 * the portable unpacking then does. */
typedef int (*bs__qunpack_fn)(const bs_qweight_t *q, int n0, int nv, int k0, int kl,
                              int8_t *dst);
typedef void (*bs__qquant_fn)(const float *x, int64_t n, float scale, int32_t zp, uint8_t *q);
typedef void (*bs__qim2row_fn)(const bs_conv2d_t *g, const uint8_t *x, uint8_t pad,
                               uint8_t *rows, int64_t ldr);

/* The grid's blocks and where their results go (layout above). */
typedef struct bs__qgrid {
    int nq;               /* grid positions: (OH - 1) * Wq + OW */
    int nblk;             /* blocks of 16 positions */
    int dense;            /* Wq == OW: keep and dst are implied */
    const uint16_t *keep; /* unless dense: per block, the lanes kept */
    const int32_t *dst;   /* unless dense: per block, the first kept lane's output element */
    int64_t ys;           /* elements between output planes (OH * OW) */
} bs__qgrid_t;

/* X4 of one group: dst + (i / 16) * ldb + (i % 16) * 4 + t = src[t][i] for i < n, 0 for
 * n <= i < 16 * ceil(n / 16). Reads exactly n bytes of each source. */
typedef void (*bs__qx4_fn)(const uint8_t *const src[4], int n, uint8_t *dst, int64_t ldb);
/* Conv tile: output channels [n0, n0 + nv) of the panel wp (its group 0; nv <= nr) at the
 * grid blocks [b0, b0 + nb) (nb <= the table's cvb), x4 pointing at block b0 (layout above):
 * off[n] + the sums, then the epilogue through the blocks' kept lanes into y, channel n0's
 * output plane (planes gr->ys elements apart). */
typedef void (*bs__qcvtile_fn)(int kg, const uint8_t *x4, int64_t ldb, int nb, const int8_t *wp,
                               int nv, const bs_qgemm_epi_t *e, int n0, const bs__qgrid_t *gr,
                               int b0, void *y);
/* The conv tile of a grid of one block (gr->nblk == 1, x4 at block 0) on a 4-bit panel
 * (wp4: its group 0, layout above), read in place; otherwise as bs__qcvtile_fn. */
typedef void (*bs__qcvtile4_fn)(int kg, const uint8_t *x4, const uint8_t *wp4, int nv,
                                const bs_qgemm_epi_t *e, int n0, const bs__qgrid_t *gr, void *y);
/* Depthwise layout, channel independent (bs_qkernels.c builds it per call). */
typedef struct bs__qdwp {
    const bs_conv2d_t *g; /* the geometry (C: every channel, not just a batch's) */
    int64_t bufbytes;     /* bytes of buf, at least 48 KiB */
    int sw, T, ngr;
    const int32_t *goff;  /* ngr: group g's window of position 0 in a channel's copy */
    const int32_t *gtap;  /* T: tap t is byte gtap[t] % 4 of group gtap[t] / 4 */
    const int32_t *gword; /* 2 per group: f, n when its taps are codes f .. f + n - 1 at
                             bytes 0 .. n - 1 (the word is then n bytes of codes), else -1 */
    int nrows, clen;      /* input rows copied per channel, bytes each */
    const int64_t *rows;  /* per copied row: its offset in the copy, in the input plane */
    int64_t xplane;       /* bytes per input plane */
    int64_t cbytes;       /* bytes per channel copy, readable 64 bytes past every window */
    int32_t zx;
    const bs__qgrid_t *gr;
} bs__qdwp_t;

/* Depthwise, nch channels: channel i's input plane at x + i*d->xplane (rows copied into
 * buf + i*d->cbytes, whose padding holds zx, as the layout says), its codes at w + i*T, its
 * epilogue off[i], mult[i]; every block of the grid, sums starting at off[i] - zx * sum(w),
 * the epilogue through the kept lanes into its output plane, y + i*gr->ys elements. wq:
 * room for nch * ngr weight words. buf (d->bufbytes) belongs to the calling thread from one
 * call to the next of the same bs_qconv_depthwise; fresh: this is its first call, buf holds
 * anything (so set the padding). A kernel may use buf otherwise as it likes. (Copy every
 * channel first, then compute: a load of bytes just written by masked or narrower stores
 * waits for them to reach the cache.) */
typedef void (*bs__qdw_fn)(const bs__qdwp_t *d, const uint8_t *x, const int8_t *w, int nch,
                           const int32_t *off, const float *mult, const bs_qgemm_epi_t *e,
                           uint8_t *buf, int32_t *wq, int fresh, void *y);
/* n bytes (a multiple of 64 and of 4 * nr) of a panel from its 4-bit form from a pair
 * boundary (layout above): group 2h from the low nibbles of pair h, group 2h + 1 from the
 * high ones, each sign-extended; when n / (4 * nr) is odd, the last pair's high nibbles are
 * not expanded. */
typedef void (*bs__qexp4_fn)(const uint8_t *src, int64_t n, int8_t *dst);
/* dst0[s] = src[2s], dst1[s] = src[2s + 1] for s < n; reads src[0 .. 2n) only. */
typedef void (*bs__qdeint2_fn)(const uint8_t *src, int n, uint8_t *dst0, uint8_t *dst1);

typedef struct bs__qkernels {
    const char *name;       /* "scalar", "avx2", "avxvnni", "neon" */
    int nr;                 /* panel width (n) */
    int mr;                 /* rows of a tile (m) */
    int kq;                 /* k interleave of the panel layout: 4 or 1 */
    bs__qtile_fn tile;
    bs__qepi_fn epi;
    bs__qunpack_fn unpack;  /* may be NULL */
    bs__qquant_fn quantize; /* bs_quantize_u8 */
    bs__qim2row_fn im2row;  /* bs_im2row_u8 */
    bs__qx4_fn x4;          /* bs_qconv2d's interleave */
    bs__qcvtile_fn cvtile;  /* may be NULL: the portable tile, for this table's panels */
    int cvb;                /* blocks per cvtile call, 1..4 */
    bs__qdw_fn dw;          /* depthwise channel */
    bs__qdeint2_fn deint2;  /* may be NULL: the portable stride-2 row split */
    bs__qexp4_fn exp4;      /* may be NULL: the portable expansion */
    bs__qtile4_fn tile4;    /* may be NULL: bs_qgemm expands a 4-bit panel's K block with
                               exp4 into scratch and calls tile */
    bs__qcvtile4_fn cvtile4; /* may be NULL: bs_qconv2d expands 4-bit panels with exp4 */
} bs__qkernels_t;

#define BS__QNR_MAX 32
#define BS__QMR_MAX 16

/* The portable im2row (bs_qkernels.c): the scalar table's, and the SIMD tables' fallback for
 * geometries their own does not handle. */
void bs__qim2row_ref(const bs_conv2d_t *g, const uint8_t *x, uint8_t pad, uint8_t *rows,
                     int64_t ldr);
/* The portable interleave and depthwise channel (bs_qkernels.c); the SIMD depthwise falls
 * back to it for strides above 2. */
void bs__qx4_ref(const uint8_t *const src[4], int n, uint8_t *dst, int64_t ldb);
void bs__qdw_ref(const bs__qdwp_t *d, const uint8_t *x, const int8_t *w, int nch,
                 const int32_t *off, const float *mult, const bs_qgemm_epi_t *e, uint8_t *buf,
                 int32_t *wq, int fresh, void *y);
/* The portable preparation of channel i of such a batch: its rows into its copy (whose
 * padding holds zx), its ngr weight words into wq; returns the start of its sums,
 * off - zx * sum(w). */
int32_t bs__qdw_prep(const bs__qdwp_t *d, const uint8_t *x, const int8_t *w, int i,
                     int32_t off, uint8_t *buf, int32_t *wq);

/* The AVX2 epilogue, quantization and im2row (bs_qkernels_avx2.c), shared by the AVX-VNNI
 * table. */
void bs__qepi_avx2(const int32_t *acc, int64_t lda, int mv, int nv, const bs_qgemm_epi_t *e,
                   int n0, void *y, int64_t sym, int64_t syn);
void bs__qquant_avx2(const float *x, int64_t n, float scale, int32_t zp, uint8_t *q);
int bs__qunpack_avx2(const bs_qweight_t *q, int n0, int nv, int k0, int kl, int8_t *dst);
void bs__qim2row_avx2(const bs_conv2d_t *g, const uint8_t *x, uint8_t pad, uint8_t *rows,
                      int64_t ldr);
void bs__qx4_avx2(const uint8_t *const src[4], int n, uint8_t *dst, int64_t ldb);
void bs__qdeint2_avx2(const uint8_t *src, int n, uint8_t *dst0, uint8_t *dst1);
void bs__qexp4_avx2(const uint8_t *src, int64_t n, int8_t *dst);
/* The AVX2 epilogue of one block of 16 sums (raw plus off) through the grid's segments. */
void bs__qepi16_avx2(const int32_t acc[16], float mult, const bs_qgemm_epi_t *e,
                     const bs__qgrid_t *gr, int b, void *y);

/* Block b's kept lanes and the output element of the first. */
static inline __attribute__((always_inline)) unsigned bs__qkeep(const bs__qgrid_t *gr, int b,
                                                               int64_t *dst)
{
    if (gr->dense) {
        int n = gr->nq - 16 * b;
        *dst = 16 * (int64_t)b;
        return n >= 16 ? 0xFFFFu : (1u << n) - 1u;
    }
    *dst = gr->dst[b];
    return gr->keep[b];
}

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

/*
 * bs_qkernels.c - integer kernels: ISA dispatch, the GEMM and depthwise drivers, weight
 * packing and unpacking, and the portable C reference ("scalar") of every kernel.
 *
 * Dispatch: on first use (pthread_once) the best table the build and CPU allow is chosen,
 * independently of bs_kernels_select: on x86-64 AVX512-VNNI (with F, BW, VL and the OS
 * saving zmm), else AVX-VNNI (cpuid leaf 7 subleaf 1, EAX bit 4), else AVX2, else scalar;
 * NEON on arm64. bs_qkernels_select() forces one (tests, benchmarks).
 *
 * GEMM driver (layouts in bs_qkernels_impl.h):
 *   - K (padded to Kp = BS_QK_PAD(K)) is cut in blocks of kc (one block up to 1536, else
 *     about 1024; multiples of 8), M in blocks of mc rows (about 160 KiB of X per block, at
 *     most 480 rows), N in chunks of whole panels. A work item is one (M block, N chunk) pair;
 *     for each panel of its chunk it runs the micro-kernel over every K block and every tile
 *     of mr rows, summing into an int32 buffer of mc x nr in the thread's scratch slot, and
 *     then applies the epilogue to the whole buffer (int32 -> float, times mult, activation or
 *     requantization) as it stores into Y.
 *   - X is read in place (rows of Kp bytes, ldx apart). Prepacked weights are read in place
 *     too (4-bit panels by the table's tile4 when the item has one tile of rows, else each K
 *     block is expanded into the slot first); weights given as rows (any width 2..8, or
 *     8-bit not prepacked) are unpacked one panel K block at a time into a tile in the slot,
 *     right before the tiles that read it, so a work item unpacks each weight once per M
 *     block.
 *   - Threads: bs_threadpool_run hands out one call per scratch slot, each taking work items
 *     from an atomic counter. Integer sums are exact and every element's epilogue is computed
 *     once, by one item, so results are bitwise identical for any thread count, any blocking
 *     and any instruction set.
 *
 * NCHW convolution (bs_qconv2d; grid, X4 and tile layouts in bs_qkernels_impl.h): the input
 * planes are copied into zero-point-padded phase planes (one per stride phase some tap reads;
 * a 1x1, stride-1, unpadded convolution reads its planes in place), so that tap k is the run
 * at koff[k] + q of grid position q. A work item is a chunk of blocks (X4 about 96 KiB) by a
 * chunk of weight panels: it interleaves its blocks' X4 into its scratch slot, then runs the
 * table's tile over every (panel, tile of cvb blocks) pair, panel by panel (a weight given as
 * 4-bit panels or rows is expanded into the slot first, one panel at a time, or all of the
 * item's at once when they fit in L1), or tile by tile when the weight (packed, or expanded
 * at once) stays in L1. A grid of one block reads 4-bit panels in place where the table has
 * cvtile4. With threads, blocks are split into about 3 items per thread, then panels. Every
 * output is computed by one item from exact sums, so results do not depend on the thread
 * count.
 *
 * Depthwise (bs_qconv_depthwise): the taps are cut into groups of up to 4 of one kernel row
 * (goff, gtap), the rows each channel copies are listed once per call, and a work item (a
 * chunk of channels) hands the table's kernel batches of channels whose copies fill about
 * 48 KiB of its slot; the kernel copies, builds the weight words and computes.
 *
 * The scalar table: a 4 x 4 tile over panels of 4 columns (kq = 4), the per-element epilogue
 * of bs_qkernels_impl.h, the per-element quantization, the row-copy im2row, and plain loops
 * for X4, the conv tile (any table's panel layout: the NEON table uses it too) and the
 * depthwise kernel.
 */
#include "bs_qkernels.h"

#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "bs_error.h"
#include "bs_qkernels_impl.h"

#if defined(BS_HAVE_QAVX2) && (defined(__x86_64__) || defined(__i386__))
#include <cpuid.h>
#define S_X86 1
extern const bs__qkernels_t bs__qkernels_avx2;
#if defined(BS_HAVE_AVXVNNI)
extern const bs__qkernels_t bs__qkernels_avxvnni;
#endif
#if defined(BS_HAVE_AVX512VNNI)
extern const bs__qkernels_t bs__qkernels_avx512vnni;
#endif
#endif
#if defined(BS_HAVE_NEON)
extern const bs__qkernels_t bs__qkernels_neon;
#endif

/* ---- scalar reference kernels --------------------------------------------------------- */

enum { S_NR = 4, S_MR = 4 };

static void s_tile_scalar(int kg, const uint8_t *x, int64_t ldx, int mv, const int8_t *wp,
                          int32_t *acc, int accumulate)
{
    int32_t a[S_MR][S_NR];
    memset(a, 0, sizeof a);
    for (int i = 0; i < mv; i++) {
        const uint8_t *xi = x + i * ldx;
        for (int g = 0; g < kg; g++) {
            const int8_t *w = wp + (int64_t)g * S_NR * 4;
            for (int j = 0; j < S_NR; j++)
                for (int t = 0; t < 4; t++)
                    a[i][j] += xi[4 * g + t] * w[j * 4 + t];
        }
    }
    for (int i = 0; i < mv; i++)
        for (int j = 0; j < S_NR; j++)
            acc[i * S_NR + j] = accumulate ? acc[i * S_NR + j] + a[i][j] : a[i][j];
}

static void s_epi_scalar(const int32_t *acc, int64_t lda, int mv, int nv,
                         const bs_qgemm_epi_t *e, int n0, void *y, int64_t sym, int64_t syn)
{
    for (int i = 0; i < mv; i++)
        for (int j = 0; j < nv; j++) {
            float v = bs__qv(acc[i * lda + j], e->off[n0 + j], e->mult[n0 + j]);
            int64_t at = i * sym + j * syn;
            if (e->out_u8)
                ((uint8_t *)y)[at] = bs__qepi_u8(v, e);
            else
                ((float *)y)[at] = bs__qepi_f32(v, e);
        }
}

/* v = x / scale; NaN -> 0 (so zp); clamped to [-zp - 1, 256 - zp], which changes no result
 * (anything beyond saturates either way) but keeps the conversion in range; then
 * round-half-even, plus zp, saturated. The vector versions do exactly these steps. */
static void s_quantize_scalar(const float *x, int64_t n, float scale, int32_t zp, uint8_t *q)
{
    float lo = -1.0f - (float)zp, hi = 256.0f - (float)zp;
    for (int64_t i = 0; i < n; i++) {
        float v = x[i] / scale;
        if (v != v)
            v = 0.0f;
        v = v > lo ? v : lo;
        v = v < hi ? v : hi;
        int32_t r = (int32_t)nearbyintf(v) + zp;
        q[i] = (uint8_t)(r < 0 ? 0 : (r > 255 ? 255 : r));
    }
}

/* Row copies: for each tap k = (c, kh, kw) the outputs ow in [a, b) read inside the input
 * row, the others read padding. */
void bs__qim2row_ref(const bs_conv2d_t *g, const uint8_t *x, uint8_t pad, uint8_t *rows,
                     int64_t ldr)
{
    int64_t K = (int64_t)g->C * g->KH * g->KW, P = (int64_t)g->OH * g->OW;
    for (int64_t m = 0; m < P; m++)
        memset(rows + m * ldr + K, 0, (size_t)(ldr - K));
    int64_t k = 0;
    for (int c = 0; c < g->C; c++)
        for (int kh = 0; kh < g->KH; kh++)
            for (int kw = 0; kw < g->KW; kw++, k++) {
                int64_t iw0 = (int64_t)kw * g->dw - g->pl;
                int64_t a = iw0 >= 0 ? 0 : (-iw0 + g->sw - 1) / g->sw;
                int64_t b = g->W - 1 - iw0 < 0 ? 0 : (g->W - 1 - iw0) / g->sw + 1;
                b = b > g->OW ? g->OW : b;
                a = a > b ? b : a;
                for (int oh = 0; oh < g->OH; oh++) {
                    uint8_t *d = rows + (int64_t)oh * g->OW * ldr + k;
                    int64_t ih = (int64_t)oh * g->sh + (int64_t)kh * g->dh - g->pt;
                    if (ih < 0 || ih >= g->H) {
                        for (int ow = 0; ow < g->OW; ow++)
                            d[ow * ldr] = pad;
                        continue;
                    }
                    const uint8_t *s = x + ((int64_t)c * g->H + ih) * g->W; /* the row */
                    int64_t ow = 0;
                    for (; ow < a; ow++)
                        d[ow * ldr] = pad;
                    for (; ow < b; ow++)
                        d[ow * ldr] = s[ow * g->sw + iw0];
                    for (; ow < g->OW; ow++)
                        d[ow * ldr] = pad;
                }
            }
}

void bs__qx4_ref(const uint8_t *const src[4], int n, uint8_t *dst, int64_t ldb)
{
    int npad = (n + 15) / 16 * 16;
    for (int i = 0; i < npad; i++)
        for (int t = 0; t < 4; t++)
            dst[(int64_t)(i / 16) * ldb + (i % 16) * 4 + t] = i < n ? src[t][i] : 0;
}

/* The epilogue of block b (acc: raw sums plus off, as uint32 so that they wrap) into its
 * kept outputs of the plane y. */
static void s_store_blk(const uint32_t acc[16], float mult, const bs_qgemm_epi_t *e,
                        const bs__qgrid_t *gr, int b, void *y)
{
    int64_t at;
    unsigned keep = bs__qkeep(gr, b, &at);
    for (int l = 0; l < 16; l++) {
        if (!(keep >> l & 1u))
            continue;
        float v = bs__qv((int32_t)acc[l], 0, mult);
        if (e->out_u8)
            ((uint8_t *)y)[at++] = bs__qepi_u8(v, e);
        else
            ((float *)y)[at++] = bs__qepi_f32(v, e);
    }
}

/* The portable conv tile, for panels nr wide with k interleave kq (any table's layout). */
static void s_cvtile_ref(int nr, int kq, int kg, const uint8_t *x4, int64_t ldb, int nb,
                         const int8_t *wp, int nv, const bs_qgemm_epi_t *e, int n0,
                         const bs__qgrid_t *gr, int b0, void *y)
{
    size_t esz = e->out_u8 ? 1 : sizeof(float);
    for (int j = 0; j < nv; j++)
        for (int i = 0; i < nb; i++) {
            uint32_t acc[16];
            for (int l = 0; l < 16; l++)
                acc[l] = (uint32_t)e->off[n0 + j];
            const uint8_t *xb = x4 + i * ldb;
            for (int g = 0; g < kg; g++)
                for (int t = 0; t < 4; t++) {
                    int k = 4 * g + t;
                    int32_t w = wp[(int64_t)(k / kq) * nr * kq + j * kq + k % kq];
                    for (int l = 0; l < 16; l++)
                        acc[l] += (uint32_t)(xb[g * 64 + l * 4 + t] * w);
                }
            s_store_blk(acc, e->mult[n0 + j], e, gr, b0 + i,
                        (char *)y + (size_t)((int64_t)j * gr->ys) * esz);
        }
}

/* n bytes from src to dst, n small or large. */
static inline void s_copy(uint8_t *dst, const uint8_t *src, int n)
{
    if (n >= 16) {
        memcpy(dst, src, (size_t)n);
    } else if (n >= 8) {
        uint64_t a, b;
        memcpy(&a, src, 8);
        memcpy(&b, src + n - 8, 8);
        memcpy(dst, &a, 8);
        memcpy(dst + n - 8, &b, 8);
    } else if (n >= 4) {
        uint32_t a, b;
        memcpy(&a, src, 4);
        memcpy(&b, src + n - 4, 4);
        memcpy(dst, &a, 4);
        memcpy(dst + n - 4, &b, 4);
    } else {
        for (int i = 0; i < n; i++)
            dst[i] = src[i];
    }
}

/* Group g's weight word for channel codes wc. */
static uint32_t s_dw_word(const bs__qdwp_t *d, const int8_t *wc, int g)
{
    uint32_t word = 0;
    if (d->gword[2 * g] >= 0) {
        for (int b = 0; b < d->gword[2 * g + 1]; b++)
            word |= (uint32_t)(uint8_t)wc[d->gword[2 * g] + b] << (8 * b);
    } else {
        for (int t = 0; t < d->T; t++)
            if (d->gtap[t] / 4 == g)
                word |= (uint32_t)(uint8_t)wc[t] << (8 * (d->gtap[t] % 4));
    }
    return word;
}

int32_t bs__qdw_prep(const bs__qdwp_t *d, const uint8_t *x, const int8_t *w, int i,
                     int32_t off, uint8_t *buf, int32_t *wq)
{
    const uint8_t *xc = x + i * d->xplane;
    uint8_t *bc = buf + i * d->cbytes;
    if (d->clen > 0)
        for (int r = 0; r < d->nrows; r++)
            s_copy(bc + d->rows[2 * r], xc + d->rows[2 * r + 1], d->clen);
    const int8_t *wc = w + (int64_t)i * d->T;
    uint32_t sum = 0;
    for (int t = 0; t < d->T; t++)
        sum += (uint32_t)(int32_t)wc[t];
    /* whole words (byte stores would stall the kernel's word loads) */
    if (wq)
        for (int g = 0; g < d->ngr; g++)
            wq[g] = (int32_t)s_dw_word(d, wc, g);
    return (int32_t)((uint32_t)off - (uint32_t)d->zx * sum);
}

void bs__qdw_ref(const bs__qdwp_t *d, const uint8_t *x, const int8_t *w, int nch,
                 const int32_t *off, const float *mult, const bs_qgemm_epi_t *e, uint8_t *buf,
                 int32_t *wq, int fresh, void *y)
{
    const bs__qgrid_t *gr = d->gr;
    size_t esz = e->out_u8 ? 1 : sizeof(float);
    if (fresh) /* the padding of every copy: the channels only ever write the input's bytes */
        memset(buf, (int)d->zx, (size_t)(d->bufbytes / d->cbytes * d->cbytes));
    for (int i = 0; i < nch; i++) {
        int32_t start = bs__qdw_prep(d, x, w, i, off[i], buf, wq);
        const uint8_t *xb = buf + i * d->cbytes;
        for (int b = 0; b < gr->nblk; b++) {
            uint32_t acc[16];
            for (int l = 0; l < 16; l++)
                acc[l] = (uint32_t)start;
            for (int g = 0; g < d->ngr; g++) {
                uint32_t wv = (uint32_t)wq[g];
                const uint8_t *p = xb + d->goff[g] + (int64_t)d->sw * 16 * b;
                for (int t = 0; t < 4; t++) {
                    int32_t wt = (int8_t)(uint8_t)(wv >> (8 * t));
                    for (int l = 0; l < 16; l++)
                        acc[l] += (uint32_t)(p[(int64_t)d->sw * l + t] * wt);
                }
            }
            s_store_blk(acc, mult[i], e, gr, b, (char *)y + (size_t)(i * gr->ys) * esz);
        }
    }
}

static const bs__qkernels_t s_qkernels_scalar = {
    .name = "scalar",
    .nr = S_NR,
    .mr = S_MR,
    .kq = 4,
    .tile = s_tile_scalar,
    .epi = s_epi_scalar,
    .quantize = s_quantize_scalar,
    .im2row = bs__qim2row_ref,
    .x4 = bs__qx4_ref,
    .cvb = 1,
    .dw = bs__qdw_ref,
};

/* ---- dispatch ------------------------------------------------------------------------- */

static const bs__qkernels_t *s_cur = &s_qkernels_scalar;
static pthread_once_t s_once = PTHREAD_ONCE_INIT;
static char s_available[64];
/* The tables this build and CPU can run, worst first; the last is the default. */
static const bs__qkernels_t *s_tables[6] = {&s_qkernels_scalar};
static int s_ntables = 1;

#if defined(S_X86)
/* cpuid leaf 7, subleaf sub: its EAX, EBX, ECX (0 when the leaf is missing). */
static void s_cpuid7(unsigned sub, unsigned r[3])
{
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (__get_cpuid_max(0, NULL) >= 7)
        __cpuid_count(7, sub, a, b, c, d);
    (void)d;
    r[0] = a, r[1] = b, r[2] = c;
}
#endif

static void s_init(void)
{
#if defined(S_X86)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) {
        unsigned l0[3], l1[3];
        s_cpuid7(0, l0);
        s_cpuid7(1, l1);
        (void)l0, (void)l1;
        s_tables[s_ntables++] = &bs__qkernels_avx2;
#if defined(BS_HAVE_AVXVNNI)
        /* AVX-VNNI: leaf 7.1 EAX bit 4; the ymm state was checked with avx2 */
        if ((l1[0] >> 4) & 1u)
            s_tables[s_ntables++] = &bs__qkernels_avxvnni;
#endif
#if defined(BS_HAVE_AVX512VNNI)
        /* AVX512-F (EBX 16), -BW (EBX 30), -VL (EBX 31), -VNNI (ECX 11); the zmm state is
         * what __builtin_cpu_supports("avx512f") checks beyond the cpuid bit */
        if (__builtin_cpu_supports("avx512f") && ((l0[1] >> 16) & 1u) &&
            ((l0[1] >> 30) & 1u) && ((l0[1] >> 31) & 1u) && ((l0[2] >> 11) & 1u))
            s_tables[s_ntables++] = &bs__qkernels_avx512vnni;
#endif
    }
#endif
#if defined(BS_HAVE_NEON)
    s_tables[s_ntables++] = &bs__qkernels_neon;
#endif
    size_t at = 0;
    for (int i = 0; i < s_ntables; i++)
        at += (size_t)snprintf(s_available + at, sizeof s_available - at, "%s%s", i ? "," : "",
                               s_tables[i]->name);
    s_cur = s_tables[s_ntables - 1];
}

static const bs__qkernels_t *s_k(void)
{
    pthread_once(&s_once, s_init);
    return s_cur;
}

const char *bs_qkernels_isa(void)
{
    return s_k()->name;
}

const char *bs_qkernels_available(void)
{
    s_k();
    return s_available;
}

int bs_qkernels_select(const char *isa)
{
    pthread_once(&s_once, s_init);
    if (!isa)
        return BS_EINVAL;
    for (int i = 0; i < s_ntables; i++)
        if (strcmp(isa, s_tables[i]->name) == 0) {
            s_cur = s_tables[i];
            return 0;
        }
    return BS_EUNSUPPORTED;
}

/* ---- weights -------------------------------------------------------------------------- */

enum {
    S_KC = 1024,      /* K block target */
    S_KC_ONE = 1536,  /* Kp up to this stays one block; the largest block */
    S_XBLOCK = 160 * 1024, /* bytes of X per M block */
    S_MC_MAX = 480,   /* rows per M block */
    S_ALIGN = 64,
};

/* Codes [k0, k1) of row n of q into dst; k0 is a multiple of 4, k1 <= K. The generic
 * width reads a 16-bit window, whose second byte may lie past the row: it is the next row's
 * or BS_QWEIGHT_TAIL padding. */
static void s_unpack_codes(const bs_qweight_t *q, int n, int k0, int k1, int8_t *dst)
{
    const uint8_t *src = q->data + (size_t)n * q->row_bytes;
    int cnt = k1 - k0;
    if (q->bits == 8) {
        memcpy(dst, src + k0, (size_t)cnt);
        return;
    }
    if (q->bits == 4) {
        const uint8_t *s = src + k0 / 2;
        int i = 0;
        for (; i + 2 <= cnt; i += 2) {
            uint8_t b = s[i / 2];
            dst[i] = (int8_t)((int8_t)(uint8_t)(b << 4) >> 4);
            dst[i + 1] = (int8_t)((int8_t)b >> 4);
        }
        if (i < cnt)
            dst[i] = (int8_t)((int8_t)(uint8_t)(s[i / 2] << 4) >> 4);
        return;
    }
    if (q->bits == 2) {
        const uint8_t *s = src + k0 / 4;
        for (int i = 0; i < cnt; i++)
            dst[i] = (int8_t)((int8_t)(uint8_t)(s[i / 4] << (6 - 2 * (i % 4))) >> 6);
        return;
    }
    unsigned bits = (unsigned)q->bits, mask = (1u << bits) - 1u, sign = 1u << (bits - 1);
    for (int i = 0; i < cnt; i++) {
        size_t bit = (size_t)(k0 + i) * bits;
        unsigned v = ((unsigned)src[bit >> 3] | (unsigned)src[(bit >> 3) + 1] << 8) >> (bit & 7);
        v &= mask;
        dst[i] = (int8_t)((int)(v ^ sign) - (int)sign);
    }
}

/* The K block [k0, k0 + kl) (k0 a multiple of 4, kl <= S_KC_ONE) of the panel whose first
 * column is n0 (nv valid columns) into dst, in the table's layout. */
static void s_unpack_tile(const bs__qkernels_t *k, const bs_qweight_t *q, int n0, int nv,
                          int k0, int kl, int8_t *dst)
{
    int nr = k->nr, kq = k->kq;
    int8_t codes[S_KC_ONE];
    int kv = q->K - k0 < kl ? q->K - k0 : kl;
    assert(kl <= S_KC_ONE && kv >= 1);
    for (int j = 0; j < nr; j++) {
        if (j < nv) {
            s_unpack_codes(q, n0 + j, k0, k0 + kv, codes);
            memset(codes + kv, 0, (size_t)(kl - kv));
        } else {
            memset(codes, 0, (size_t)kl);
        }
        if (kq == 4)
            for (int g = 0; g < kl / 4; g++)
                memcpy(dst + ((int64_t)g * nr + j) * 4, codes + 4 * g, 4);
        else
            for (int kk = 0; kk < kl; kk++)
                dst[(int64_t)kk * nr + j] = codes[kk];
    }
}

size_t bs_qgemm_packed_size(int N, int K)
{
    const bs__qkernels_t *k = s_k();
    if (N <= 0 || K <= 0)
        return S_ALIGN;
    size_t panels = (size_t)((N + k->nr - 1) / k->nr);
    return panels * (size_t)k->nr * (size_t)BS_QK_PAD(K);
}

void bs_qgemm_pack(const bs_qweight_t *q, void *dst)
{
    const bs__qkernels_t *k = s_k();
    int nr = k->nr;
    if (q->N <= 0 || q->K <= 0)
        return;
    int64_t Kp = BS_QK_PAD(q->K);
    int8_t *d = dst;
    for (int n0 = 0; n0 < q->N; n0 += nr) {
        int nv = q->N - n0 < nr ? q->N - n0 : nr;
        for (int64_t k0 = 0; k0 < Kp; k0 += S_KC) {
            int kl = (int)(Kp - k0 < S_KC ? Kp - k0 : S_KC);
            int8_t *dk = d + (int64_t)n0 * Kp + k0 * nr;
            if (!k->unpack || !k->unpack(q, n0, nv, (int)k0, kl, dk))
                s_unpack_tile(k, q, n0, nv, (int)k0, kl, dk);
        }
    }
}

/* Codes of a 4-bit panel: Kp rounded up to whole pairs of groups. */
static int64_t s_kp8(int64_t Kp)
{
    return (Kp + 7) / 8 * 8;
}

size_t bs_qgemm_packed4_size(int N, int K)
{
    const bs__qkernels_t *k = s_k();
    if (N <= 0 || K <= 0)
        return S_ALIGN;
    size_t panels = (size_t)((N + k->nr - 1) / k->nr);
    return panels * (size_t)k->nr * (size_t)s_kp8(BS_QK_PAD(K)) / 2;
}

void bs_qgemm_pack4(const bs_qweight_t *q, void *dst)
{
    const bs__qkernels_t *k = s_k();
    int nr = k->nr;
    if (q->N <= 0 || q->K <= 0)
        return;
    int64_t Kp = BS_QK_PAD(q->K), Kp8 = s_kp8(Kp);
    int unit = 4 * nr; /* bytes of one group of 4 k in the 8-bit panel */
    uint8_t *d = dst;
    int8_t tile[BS__QNR_MAX * S_KC];
    for (int n0 = 0; n0 < q->N; n0 += nr) {
        int nv = q->N - n0 < nr ? q->N - n0 : nr;
        for (int64_t k0 = 0; k0 < Kp; k0 += S_KC) { /* S_KC: a whole number of pairs */
            int kl = (int)(Kp - k0 < S_KC ? Kp - k0 : S_KC);
            int kl8 = (int)s_kp8(kl);
            if (!k->unpack || !k->unpack(q, n0, nv, (int)k0, kl, tile))
                s_unpack_tile(k, q, n0, nv, (int)k0, kl, tile);
            memset(tile + (int64_t)kl * nr, 0, (size_t)(kl8 - kl) * (size_t)nr);
            uint8_t *dk = d + ((int64_t)n0 * Kp8 + k0 * nr) / 2;
            for (int h = 0; h < kl8 / 8; h++)
                for (int i = 0; i < unit; i++)
                    dk[h * unit + i] = (uint8_t)((tile[2 * h * unit + i] & 0x0F) |
                                                 (tile[(2 * h + 1) * unit + i] & 0x0F) << 4);
        }
    }
}

/* The portable bs__qexp4_fn, for panels nr columns wide. */
static void s_exp4_ref(int nr, const uint8_t *src, int64_t n, int8_t *dst)
{
    int64_t unit = 4 * (int64_t)nr;
    for (int64_t u = 0; u < n / unit; u++) {
        const uint8_t *b = src + u / 2 * unit;
        for (int64_t i = 0; i < unit; i++) {
            int v = u % 2 ? b[i] >> 4 : b[i] & 0x0F;
            dst[u * unit + i] = (int8_t)((v ^ 8) - 8);
        }
    }
}

void bs_qweight_codes(const bs_qweight_t *q, int8_t *codes)
{
    if (q->bits == 8 && q->row_bytes == (size_t)q->K) {
        memcpy(codes, q->data, (size_t)q->N * (size_t)q->K);
        return;
    }
    for (int n = 0; n < q->N; n++)
        for (int k0 = 0; k0 < q->K; k0 += S_KC) {
            int k1 = q->K - k0 < S_KC ? q->K : k0 + S_KC;
            s_unpack_codes(q, n, k0, k1, codes + (int64_t)n * q->K + k0);
        }
}

void bs_qweight_row_sums(const bs_qweight_t *q, int32_t *sums)
{
    int8_t codes[S_KC];
    for (int n = 0; n < q->N; n++) {
        int32_t s = 0;
        for (int k0 = 0; k0 < q->K; k0 += S_KC) {
            int k1 = q->K - k0 < S_KC ? q->K : k0 + S_KC;
            s_unpack_codes(q, n, k0, k1, codes);
            for (int i = 0; i < k1 - k0; i++)
                s += codes[i];
        }
        sums[n] = s;
    }
}

/* ---- GEMM ----------------------------------------------------------------------------- */

static int s_round_up(int v, int m)
{
    return (v + m - 1) / m * m;
}

static size_t s_align_up(size_t v)
{
    return (v + S_ALIGN - 1) / S_ALIGN * S_ALIGN;
}

/* K block length for Kp padded codes: Kp itself up to S_KC_ONE, else a multiple of 8 (the
 * blocks of a 4-bit panel start at pairs of groups) at most S_KC. */
static int s_kc(int Kp)
{
    if (Kp <= S_KC_ONE)
        return Kp < 4 ? 4 : Kp;
    int blocks = (Kp + S_KC - 1) / S_KC;
    return s_round_up((Kp + blocks - 1) / blocks, 8);
}

/* M block length: a multiple of mr. */
static int s_mc(const bs__qkernels_t *k, int M, int kc)
{
    int mc = S_XBLOCK / kc;
    mc = mc > S_MC_MAX ? S_MC_MAX : mc;
    mc = mc / k->mr * k->mr;
    mc = mc < k->mr ? k->mr : mc;
    int mm = s_round_up(M < 1 ? 1 : M, k->mr);
    return mm < mc ? mm : mc;
}

static size_t s_acc_bytes(const bs__qkernels_t *k, int mc)
{
    return s_align_up(sizeof(int32_t) * (size_t)mc * (size_t)k->nr);
}

static size_t s_slot_bytes(const bs__qkernels_t *k, int M, int K, int from_rows)
{
    int kc = s_kc((int)BS_QK_PAD(K));
    size_t b = s_acc_bytes(k, s_mc(k, M, kc));
    if (from_rows)
        b += s_align_up((size_t)k->nr * (size_t)kc);
    return b;
}

size_t bs_qgemm_scratch_size(int M, int N, int K, int threads, int from_rows)
{
    (void)N;
    if (threads < 1)
        threads = 1;
    if (M <= 0 || K <= 0)
        return S_ALIGN;
    return S_ALIGN + (size_t)threads * s_slot_bytes(s_k(), M, K, from_rows);
}

typedef struct s_qjob {
    const bs__qkernels_t *k;
    int M, N, K, Kp;
    const uint8_t *X;
    int64_t ldx;
    const int8_t *packed;     /* or NULL: packed4 or rows */
    const uint8_t *packed4;
    const bs_qweight_t *rows;
    const bs_qgemm_epi_t *e;
    char *Y;
    int64_t sym, syn;
    int esz;                  /* bytes per Y element */
    int kc, mc;               /* K block, M block */
    int ppc;                  /* panels per N chunk */
    int nmb, nnb, npanels;    /* M blocks, N chunks */
    char *scratch;
    size_t slot, acc_bytes;
    atomic_int next;          /* next work item */
} s_qjob_t;

static void s_qgemm_item(const s_qjob_t *j, int item, char *slot)
{
    const bs__qkernels_t *k = j->k;
    int nr = k->nr, mr = k->mr;
    int32_t *acc = (int32_t *)slot;
    int8_t *wt = (int8_t *)(slot + j->acc_bytes);
    int mb = item / j->nnb, nb = item % j->nnb;
    int m0 = mb * j->mc, ml = j->M - m0 < j->mc ? j->M - m0 : j->mc;
    int p0 = nb * j->ppc, p1 = p0 + j->ppc < j->npanels ? p0 + j->ppc : j->npanels;
    const uint8_t *X = j->X + (int64_t)m0 * j->ldx;
    /* 4-bit panels: a single tile of rows reads them in place (tile4), more rows share one
     * expansion of each K block into scratch */
    int in4 = j->packed4 && k->tile4 && ml <= mr;
    for (int p = p0; p < p1; p++) {
        int n0 = p * nr, nv = j->N - n0 < nr ? j->N - n0 : nr;
        for (int k0 = 0; k0 < j->Kp; k0 += j->kc) {
            int kl = j->Kp - k0 < j->kc ? j->Kp - k0 : j->kc;
            const int8_t *wp;
            if (j->packed) {
                wp = j->packed + (int64_t)n0 * j->Kp + (int64_t)k0 * nr;
            } else if (j->packed4) {
                const uint8_t *w4 = j->packed4 + (n0 * s_kp8(j->Kp) + (int64_t)k0 * nr) / 2;
                if (in4) {
                    k->tile4(kl / 4, X + k0, j->ldx, ml, w4, acc, k0 > 0);
                    continue;
                }
                if (k->exp4 && (int64_t)kl * nr % 64 == 0)
                    k->exp4(w4, (int64_t)kl * nr, wt);
                else
                    s_exp4_ref(nr, w4, (int64_t)kl * nr, wt);
                wp = wt;
            } else {
                if (!k->unpack || !k->unpack(j->rows, n0, nv, k0, kl, wt))
                    s_unpack_tile(k, j->rows, n0, nv, k0, kl, wt);
                wp = wt;
            }
            for (int i = 0; i < ml; i += mr) {
                int mv = ml - i < mr ? ml - i : mr;
                k->tile(kl / 4, X + (int64_t)i * j->ldx + k0, j->ldx, mv, wp, acc + i * nr,
                        k0 > 0);
            }
        }
        k->epi(acc, nr, ml, nv, j->e, n0,
               j->Y + ((int64_t)m0 * j->sym + (int64_t)n0 * j->syn) * j->esz, j->sym, j->syn);
    }
}

static void s_qgemm_slot(void *ctx, int slot)
{
    s_qjob_t *j = ctx;
    char *s = j->scratch + (size_t)slot * j->slot;
    int items = j->nmb * j->nnb;
    for (;;) {
        int it = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        if (it >= items)
            return;
        s_qgemm_item(j, it, s);
    }
}

void bs_qgemm(int M, const uint8_t *X, int64_t ldx, const bs_qgemm_w_t *W,
              const bs_qgemm_epi_t *e, void *Y, int64_t sym, int64_t syn, void *scratch,
              bs_threadpool_t *pool)
{
    const bs__qkernels_t *k = s_k();
    int N = W->N, K = W->K;
    if (M <= 0 || N <= 0)
        return;
    int esz = e->out_u8 ? 1 : (int)sizeof(float);
    if (K <= 0) { /* empty sum: raw = 0 */
        for (int m = 0; m < M; m++)
            for (int n = 0; n < N; n++) {
                float v = bs__qv(0, e->off[n], e->mult[n]);
                int64_t at = (int64_t)m * sym + (int64_t)n * syn;
                if (e->out_u8)
                    ((uint8_t *)Y)[at] = bs__qepi_u8(v, e);
                else
                    ((float *)Y)[at] = bs__qepi_f32(v, e);
            }
        return;
    }
    assert(K <= BS_QGEMM_K_MAX && ldx >= BS_QK_PAD(K));
    assert(W->packed || W->packed4 || (W->rows && W->rows->N == N && W->rows->K == K));
    s_qjob_t j = {
        .k = k, .M = M, .N = N, .K = K, .Kp = (int)BS_QK_PAD(K), .X = X, .ldx = ldx,
        .packed = W->packed, .packed4 = W->packed ? NULL : W->packed4,
        .rows = W->packed || W->packed4 ? NULL : W->rows, .e = e, .Y = Y,
        .sym = sym, .syn = syn, .esz = esz,
    };
    j.kc = s_kc(j.Kp);
    int mc = s_mc(k, M, j.kc);
    j.acc_bytes = s_acc_bytes(k, mc);
    j.slot = s_slot_bytes(k, M, K, W->packed == NULL);
    /* M blocks of equal size; with threads, at least about 3 work items per thread: N is
     * split into chunks of panels first, then M further. */
    int threads = bs_threadpool_size(pool);
    j.npanels = (N + k->nr - 1) / k->nr;
    int mpanels = (M + k->mr - 1) / k->mr;
    j.nmb = (M + mc - 1) / mc;
    j.nnb = 1;
    if (threads > 1 && j.nmb < 3 * threads) {
        j.nnb = (3 * threads + j.nmb - 1) / j.nmb;
        if (j.nnb > j.npanels)
            j.nnb = j.npanels;
        if (j.nmb * j.nnb < 3 * threads)
            j.nmb = (3 * threads + j.nnb - 1) / j.nnb;
    }
    if (j.nmb > mpanels)
        j.nmb = mpanels;
    j.mc = s_round_up((M + j.nmb - 1) / j.nmb, k->mr); /* <= mc: fits the slot */
    j.nmb = (M + j.mc - 1) / j.mc;
    j.ppc = (j.npanels + j.nnb - 1) / j.nnb;
    j.nnb = (j.npanels + j.ppc - 1) / j.ppc;
    j.scratch = (char *)(((uintptr_t)scratch + S_ALIGN - 1) / S_ALIGN * S_ALIGN);
    atomic_init(&j.next, 0);
    int items = j.nmb * j.nnb;
    bs_threadpool_run(pool, items < threads ? items : threads, s_qgemm_slot, &j);
}

/* ---- activations ---------------------------------------------------------------------- */

void bs_quantize_u8(const float *x, int64_t n, float scale, int32_t zp, uint8_t *q)
{
    if (n > 0)
        s_k()->quantize(x, n, scale, zp, q);
}

void bs_im2row_u8(const bs_conv2d_t *g, const uint8_t *x, uint8_t pad, uint8_t *rows,
                  int64_t ldr)
{
    if (g->OH <= 0 || g->OW <= 0)
        return;
    assert(ldr >= BS_QK_PAD((int64_t)g->C * g->KH * g->KW));
    s_k()->im2row(g, x, pad, rows, ldr);
}


/* ---- convolution grid ----------------------------------------------------------------- */

/* The kept lanes of a grid of OH rows Wq wide holding OW outputs each
 * (bs_qkernels_impl.h): row oh's outputs are the positions [oh*Wq, oh*Wq + OW). */
static void s_keep(int OH, int OW, int Wq, int nblk, uint16_t *keep, int32_t *dst)
{
    memset(keep, 0, sizeof(uint16_t) * (size_t)nblk);
    memset(dst, 0, sizeof(int32_t) * (size_t)nblk);
    int cv = -1; /* the block being filled (positions only grow), its lanes in ck */
    unsigned ck = 0;
    for (int oh = 0; oh < OH; oh++) {
        unsigned q = (unsigned)oh * (unsigned)Wq;
        int left = OW, out = oh * OW;
        while (left > 0) {
            int v = (int)(q >> 4), lane = (int)(q & 15u), n = 16 - lane < left ? 16 - lane : left;
            if (v != cv) {
                if (cv >= 0)
                    keep[cv] = (uint16_t)ck;
                cv = v, ck = 0, dst[v] = out;
            }
            ck |= ((1u << n) - 1u) << lane;
            q += (unsigned)n, out += n, left -= n;
        }
    }
    if (cv >= 0)
        keep[cv] = (uint16_t)ck;
}

/* Grids whose positions or buffers would not fit an int. */
enum { S_GRID_MAX = 1 << 30 };

/* ---- NCHW convolution ----------------------------------------------------------------- */

enum {
    S_X4_CHUNK = 96 * 1024, /* X4 bytes a work item builds, at most (unless one block is more) */
    S_CV_L1W = 48 * 1024,   /* weight panel bytes a work item keeps in L1 */
    S_CV_PAR_MIN = 16384,   /* phase-copy bytes worth filling on several threads */
};

typedef struct s_cvlay {
    int direct;             /* 1x1, stride 1, unpadded: the input planes are the runs */
    int sh, sw, Hq, Wq;
    int64_t Sq, cstride;    /* phase copy: bytes per plane and per channel */
    int nq, nblk, dense;
    int K, Kp, kg, bpc;     /* bpc: blocks per work item, at most */
    int wt_all;             /* a weight given as rows or 4-bit panels: every panel expanded
                               into the slot at once (they fit in L1), else one at a time */
    size_t off_koff, off_keep, off_dst, off_slots, slot_x4, slot;
} s_cvlay_t;

/* 0 when the grid is too large. */
static int s_cv_layout(const bs__qkernels_t *k, const bs_conv2d_t *g, int N, int from_rows,
                       s_cvlay_t *L)
{
    memset(L, 0, sizeof *L);
    if (g->C < 1 || g->KH < 1 || g->KW < 1 || g->OH < 1 || g->OW < 1 || g->sh < 1 ||
        g->sw < 1 || g->dh < 1 || g->dw < 1)
        return 0;
    int64_t K = (int64_t)g->C * g->KH * g->KW;
    if (K > BS_QGEMM_K_MAX)
        return 0;
    L->K = (int)K;
    L->Kp = (int)BS_QK_PAD(K);
    L->kg = L->Kp / 4;
    L->direct = g->KH == 1 && g->KW == 1 && g->sh == 1 && g->sw == 1 && g->pt == 0 &&
                g->pl == 0 && g->OH == g->H && g->OW == g->W;
    L->sh = L->direct ? 1 : g->sh;
    L->sw = L->direct ? 1 : g->sw;
    int64_t maxr = (int64_t)(g->KH - 1) * g->dh / L->sh;
    int64_t maxc = (int64_t)(g->KW - 1) * g->dw / L->sw;
    int64_t Hq = g->OH + maxr, Wq = g->OW + maxc, nq = (g->OH - 1) * Wq + g->OW;
    int64_t cstride = (int64_t)L->sh * L->sw * Hq * Wq;
    if (Hq > S_GRID_MAX || Wq > S_GRID_MAX || nq > S_GRID_MAX || cstride > S_GRID_MAX ||
        (!L->direct && cstride * g->C > ((int64_t)1 << 40)))
        return 0;
    L->Hq = (int)Hq;
    L->Wq = (int)Wq;
    L->Sq = Hq * Wq;
    L->cstride = cstride;
    L->nq = (int)nq;
    L->nblk = (int)((nq + 15) / 16);
    L->dense = Wq == g->OW;
    int cvb = k->cvb;
    int bpc = S_X4_CHUNK / (L->kg * 64);
    bpc = bpc >= cvb ? bpc / cvb * cvb : (bpc < 1 ? 1 : bpc);
    L->bpc = bpc < L->nblk ? bpc : L->nblk;
    size_t off = L->direct ? 0 : s_align_up((size_t)(cstride * g->C) + S_ALIGN);
    L->off_koff = off;
    off += s_align_up(sizeof(int64_t) * (size_t)K);
    L->off_keep = off;
    off += L->dense ? 0 : s_align_up(sizeof(uint16_t) * (size_t)L->nblk);
    L->off_dst = off;
    off += L->dense ? 0 : s_align_up(sizeof(int32_t) * (size_t)L->nblk);
    L->off_slots = off;
    L->slot_x4 = s_align_up((size_t)L->bpc * (size_t)L->kg * 64);
    size_t panel = (size_t)k->nr * (size_t)L->Kp;
    size_t all = (size_t)((N < 1 ? 1 : N) + k->nr - 1) / (size_t)k->nr * panel;
    L->wt_all = from_rows && all <= S_CV_L1W;
    L->slot = L->slot_x4 + (from_rows ? s_align_up(L->wt_all ? all : panel) : 0);
    return 1;
}

size_t bs_qconv2d_scratch(const bs_conv2d_t *g, int N, int threads, int from_rows)
{
    s_cvlay_t L;
    if (threads < 1)
        threads = 1;
    if (!s_cv_layout(s_k(), g, N, from_rows, &L))
        return 0;
    return S_ALIGN + L.off_slots + (size_t)threads * L.slot;
}

typedef struct s_cvjob {
    const bs__qkernels_t *k;
    const bs_conv2d_t *g;
    const s_cvlay_t *L;
    const uint8_t *x;         /* input planes */
    uint8_t *buf;             /* phase copy (or NULL: direct) */
    const uint8_t *runs;      /* buf, or x when direct */
    const int64_t *koff;      /* tap k's run at runs + koff[k] */
    uint8_t pad;
    int N, npanels;
    const int8_t *packed;     /* or NULL: packed4 or rows */
    const uint8_t *packed4;
    const bs_qweight_t *rows;
    const bs_qgemm_epi_t *e;
    char *y;
    size_t esz;
    bs__qgrid_t gr;
    int bpc, nbc, ppc, npc, tile_outer;
    char *slots;
    atomic_int next;
} s_cvjob_t;

/* Columns s in [*s0, *s1) of a phase plane Wq wide whose column s reads input column
 * s*sw + o: those inside [0, W). */
static void s_cols(int64_t o, int sw, int W, int Wq, int64_t *s0, int64_t *s1)
{
    int64_t a = o >= 0 ? 0 : (-o + sw - 1) / sw;
    int64_t b = W - 1 - o < 0 ? 0 : (W - 1 - o) / sw + 1;
    b = b > Wq ? Wq : b;
    *s0 = a > b ? b : a;
    *s1 = b;
}

/* Channel c's phase planes (only the phases some tap reads): each plane set to the padding
 * value at once, then the rows that read the input copied in; with stride 2, each input row
 * is split into the two column phases in one pass. */
static void s_cv_fill(void *ctx, int c)
{
    const s_cvjob_t *j = ctx;
    const bs_conv2d_t *g = j->g;
    const s_cvlay_t *L = j->L;
    const uint8_t *xc = j->x + (int64_t)c * g->H * g->W;
    uint8_t *bc = j->buf + c * L->cstride;
    int sh = L->sh, sw = L->sw, Wq = L->Wq;
    for (int a = 0; a < sh; a++) {
        int used = 0, usedb[2] = {0, 0};
        for (int kh = 0; kh < g->KH && !used; kh++)
            used = (int)((int64_t)kh * g->dh % sh) == a;
        if (!used)
            continue;
        for (int kw = 0; kw < g->KW && sw == 2; kw++)
            usedb[(int64_t)kw * g->dw % 2] = 1;
        /* rows r with 0 <= r*sh + a - pt < H */
        int64_t ra = (int64_t)a - g->pt;
        int64_t r0 = ra >= 0 ? 0 : (-ra + sh - 1) / sh;
        int64_t r1 = g->H - 1 - ra < 0 ? 0 : (g->H - 1 - ra) / sh + 1;
        r1 = r1 > L->Hq ? L->Hq : r1;
        r0 = r0 > r1 ? r1 : r0;
        if (sw == 2 && usedb[0] && usedb[1]) {
            uint8_t *p0 = bc + (int64_t)(a * 2) * L->Sq, *p1 = p0 + L->Sq;
            memset(p0, j->pad, (size_t)(2 * L->Sq));
            int64_t s00, s01, s10, s11; /* phase b's columns [sb0, sb1) */
            s_cols(-(int64_t)g->pl, 2, g->W, Wq, &s00, &s01);
            s_cols(1 - (int64_t)g->pl, 2, g->W, Wq, &s10, &s11);
            /* columns u of both: input 2u - pl and 2u + 1 - pl inside */
            int64_t u0 = s00 > s10 ? s00 : s10, u1 = s01 < s11 ? s01 : s11;
            u1 = u1 < u0 ? u0 : u1;
            for (int64_t r = r0; r < r1; r++) {
                const uint8_t *in = xc + (r * sh + ra) * g->W - g->pl; /* column s: in[2s+b] */
                uint8_t *d0 = p0 + r * Wq, *d1 = p1 + r * Wq;
                if (u1 > u0) {
                    if (j->k->deint2)
                        j->k->deint2(in + 2 * u0, (int)(u1 - u0), d0 + u0, d1 + u0);
                    else
                        for (int64_t u = u0; u < u1; u++)
                            d0[u] = in[2 * u], d1[u] = in[2 * u + 1];
                }
                for (int64_t u = s00; u < s01 && u < u0; u++) /* the edges, one phase only */
                    d0[u] = in[2 * u];
                for (int64_t u = u1 > s00 ? u1 : s00; u < s01; u++)
                    d0[u] = in[2 * u];
                for (int64_t u = s10; u < s11 && u < u0; u++)
                    d1[u] = in[2 * u + 1];
                for (int64_t u = u1 > s10 ? u1 : s10; u < s11; u++)
                    d1[u] = in[2 * u + 1];
            }
            continue;
        }
        for (int b = 0; b < sw; b++) {
            int ub = 0;
            for (int kw = 0; kw < g->KW && !ub; kw++)
                ub = (int)((int64_t)kw * g->dw % sw) == b;
            if (!ub)
                continue;
            uint8_t *pl = bc + (int64_t)(a * sw + b) * L->Sq;
            int64_t o = (int64_t)b - g->pl, s0, s1; /* column s reads input s*sw + o */
            s_cols(o, sw, g->W, Wq, &s0, &s1);
            memset(pl, j->pad, (size_t)L->Sq);
            if (s1 == s0)
                continue;
            for (int64_t r = r0; r < r1; r++) {
                uint8_t *row = pl + r * Wq;
                const uint8_t *in = xc + (r * sh + ra) * g->W + o; /* column s at in[s*sw] */
                if (sw == 1)
                    s_copy(row + s0, in + s0, (int)(s1 - s0));
                else
                    for (int64_t s = s0; s < s1; s++)
                        row[s] = in[s * sw];
            }
        }
    }
}

/* Panel p of a weight given as 4-bit panels or rows, expanded into wt (nr * Kp codes). */
static void s_cv_expand(const s_cvjob_t *j, int p, int8_t *wt)
{
    const bs__qkernels_t *k = j->k;
    const s_cvlay_t *L = j->L;
    int nr = k->nr, n0 = p * nr, nv = j->N - n0 < nr ? j->N - n0 : nr;
    if (j->packed4) {
        const uint8_t *src = j->packed4 + (int64_t)n0 * s_kp8(L->Kp) / 2;
        int64_t nb = (int64_t)nr * L->Kp;
        if (k->exp4 && nb % 64 == 0)
            k->exp4(src, nb, wt);
        else
            s_exp4_ref(nr, src, nb, wt);
        return;
    }
    for (int k0 = 0; k0 < L->Kp; k0 += S_KC) {
        int kl = L->Kp - k0 < S_KC ? L->Kp - k0 : S_KC;
        int8_t *d = wt + (int64_t)k0 * nr;
        if (!k->unpack || !k->unpack(j->rows, n0, nv, k0, kl, d))
            s_unpack_tile(k, j->rows, n0, nv, k0, kl, d);
    }
}

/* One (chunk of blocks, chunk of panels) work item: the chunk's X4, then every tile. */
static void s_cv_item(const s_cvjob_t *j, int item, char *slot)
{
    const bs__qkernels_t *k = j->k;
    const s_cvlay_t *L = j->L;
    int kg = L->kg, nr = k->nr, cvb = k->cvb;
    int64_t ldb = (int64_t)kg * 64;
    int bc = item / j->npc, pc = item % j->npc;
    int b0 = bc * j->bpc, nb = L->nblk - b0 < j->bpc ? L->nblk - b0 : j->bpc;
    uint8_t *x4 = (uint8_t *)slot;
    int8_t *wt = (int8_t *)(slot + L->slot_x4);
    int64_t q0 = (int64_t)b0 * 16;
    int n = (int)(L->nq - q0 < (int64_t)nb * 16 ? L->nq - q0 : (int64_t)nb * 16);
    for (int gi = 0; gi < kg; gi++) {
        const uint8_t *src[4];
        for (int t = 0; t < 4; t++) {
            int kk = 4 * gi + t < L->K ? 4 * gi + t : L->K - 1; /* past K: code 0 */
            src[t] = j->runs + j->koff[kk] + q0;
        }
        k->x4(src, n, x4 + gi * 64, ldb);
    }
    int p0 = pc * j->ppc, p1 = p0 + j->ppc < j->npanels ? p0 + j->ppc : j->npanels;
    int ntiles = (nb + cvb - 1) / cvb;
    int outer = j->tile_outer ? ntiles : 1, inner = j->tile_outer ? 1 : ntiles;
    int64_t pb = (int64_t)nr * L->Kp;
    if (j->packed4 && k->cvtile4 && L->nblk == 1) { /* a grid of one block: in place */
        for (int p = p0; p < p1; p++) {
            int n0 = p * nr, nv = j->N - n0 < nr ? j->N - n0 : nr;
            k->cvtile4(kg, x4, j->packed4 + (int64_t)n0 * s_kp8(L->Kp) / 2, nv, j->e, n0,
                       &j->gr, j->y + (size_t)((int64_t)n0 * j->gr.ys) * j->esz);
        }
        return;
    }
    if (!j->packed && L->wt_all) /* every panel of the chunk once, side by side */
        for (int p = p0; p < p1; p++)
            s_cv_expand(j, p, wt + (p - p0) * pb);
    for (int to = 0; to < outer; to++)
        for (int p = p0; p < p1; p++) {
            int n0 = p * nr, nv = j->N - n0 < nr ? j->N - n0 : nr;
            const int8_t *wp;
            if (j->packed) {
                wp = j->packed + (int64_t)n0 * L->Kp;
            } else if (L->wt_all) {
                wp = wt + (p - p0) * pb;
            } else {
                s_cv_expand(j, p, wt);
                wp = wt;
            }
            char *y = j->y + (size_t)((int64_t)n0 * j->gr.ys) * j->esz;
            for (int ti = 0; ti < inner; ti++) {
                int t = to + ti, tb = nb - t * cvb < cvb ? nb - t * cvb : cvb;
                const uint8_t *xt = x4 + (int64_t)t * cvb * ldb;
                if (k->cvtile)
                    k->cvtile(kg, xt, ldb, tb, wp, nv, j->e, n0, &j->gr, b0 + t * cvb, y);
                else
                    s_cvtile_ref(nr, k->kq, kg, xt, ldb, tb, wp, nv, j->e, n0, &j->gr,
                                 b0 + t * cvb, y);
            }
        }
}

static void s_cv_slot(void *ctx, int slot)
{
    s_cvjob_t *j = ctx;
    char *s = j->slots + (size_t)slot * j->L->slot;
    int items = j->nbc * j->npc;
    for (;;) {
        int it = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        if (it >= items)
            return;
        s_cv_item(j, it, s);
    }
}

void bs_qconv2d(const bs_conv2d_t *g, const uint8_t *x, uint8_t pad, const bs_qgemm_w_t *W,
                const bs_qgemm_epi_t *e, void *y, void *scratch, bs_threadpool_t *pool)
{
    const bs__qkernels_t *k = s_k();
    if (g->OH <= 0 || g->OW <= 0 || W->N <= 0)
        return;
    s_cvlay_t L;
    int ok = s_cv_layout(k, g, W->N, W->packed == NULL, &L);
    assert(ok && W->K == L.K);
    assert(W->packed || W->packed4 || (W->rows && W->rows->N == W->N && W->rows->K == W->K));
    if (!ok)
        return;
    char *base = (char *)(((uintptr_t)scratch + S_ALIGN - 1) / S_ALIGN * S_ALIGN);
    int64_t *koff = (int64_t *)(base + L.off_koff);
    uint16_t *keep = (uint16_t *)(base + L.off_keep);
    int32_t *dst = (int32_t *)(base + L.off_dst);
    int threads = bs_threadpool_size(pool);
    s_cvjob_t j = {
        .k = k, .g = g, .L = &L, .x = x, .buf = L.direct ? NULL : (uint8_t *)base,
        .runs = L.direct ? x : (const uint8_t *)base, .koff = koff, .pad = pad, .N = W->N,
        .npanels = (W->N + k->nr - 1) / k->nr, .packed = W->packed,
        .packed4 = W->packed ? NULL : W->packed4,
        .rows = W->packed || W->packed4 ? NULL : W->rows, .e = e, .y = y,
        .esz = e->out_u8 ? 1 : sizeof(float), .slots = base + L.off_slots,
    };
    j.gr.nq = L.nq;
    j.gr.nblk = L.nblk;
    j.gr.dense = L.dense;
    j.gr.keep = keep;
    j.gr.dst = dst;
    j.gr.ys = (int64_t)g->OH * g->OW;
    if (!L.dense)
        s_keep(g->OH, g->OW, L.Wq, L.nblk, keep, dst);
    if (L.direct) {
        for (int c = 0; c < g->C; c++)
            koff[c] = (int64_t)c * g->H * g->W;
    } else { /* channel 0's taps, then each channel's the same plus its stride */
        int T = g->KH * g->KW;
        for (int kh = 0, t = 0; kh < g->KH; kh++)
            for (int kw = 0; kw < g->KW; kw++, t++) {
                int64_t rr = (int64_t)kh * g->dh, cc = (int64_t)kw * g->dw;
                koff[t] = (rr % L.sh * L.sw + cc % L.sw) * L.Sq + rr / L.sh * L.Wq + cc / L.sw;
            }
        for (int c = 1; c < g->C; c++)
            for (int t = 0; t < T; t++)
                koff[(int64_t)c * T + t] = koff[t] + c * L.cstride;
    }
    if (!L.direct) {
        if (threads > 1 && L.cstride * g->C >= S_CV_PAR_MIN)
            bs_threadpool_run(pool, g->C, s_cv_fill, &j);
        else
            for (int c = 0; c < g->C; c++)
                s_cv_fill(&j, c);
    }
    /* work items: chunks of blocks (X4 cache-sized); with threads, at least about 3 items
     * per thread, splitting the blocks into tiles first, then the panels */
    int cvb = k->cvb, tiles = (L.nblk + cvb - 1) / cvb;
    j.bpc = L.bpc;
    j.nbc = (L.nblk + j.bpc - 1) / j.bpc;
    j.npc = 1;
    if (threads > 1 && j.nbc < 3 * threads) {
        int want = 3 * threads, nbc = tiles < want ? tiles : want;
        j.bpc = (tiles + nbc - 1) / nbc * cvb;
        j.bpc = j.bpc < L.bpc ? j.bpc : L.bpc;
        j.nbc = (L.nblk + j.bpc - 1) / j.bpc;
        if (j.nbc < want)
            j.npc = (want + j.nbc - 1) / j.nbc;
        j.npc = j.npc < j.npanels ? j.npc : j.npanels;
    }
    j.ppc = (j.npanels + j.npc - 1) / j.npc;
    j.npc = (j.npanels + j.ppc - 1) / j.ppc;
    /* packed weights that stay in L1 (or all expanded at once): every panel per tile, so the
     * tile's X4 stays too */
    j.tile_outer = W->packed ? (size_t)j.ppc * (size_t)k->nr * (size_t)L.Kp <= S_CV_L1W
                             : L.wt_all;
    atomic_init(&j.next, 0);
    int items = j.nbc * j.npc;
    bs_threadpool_run(pool, items < threads ? items : threads, s_cv_slot, &j);
}

/* ---- depthwise ------------------------------------------------------------------------ */

typedef struct s_dwlay {
    int sh, sw, Hq, Wq, Wp;
    int64_t Sq, cbytes;     /* bytes per phase plane; per channel copy, slack included */
    int nq, nblk, dense, ngr, T;
    int cb;                 /* channels per kernel call */
    int nrows;              /* input rows copied per channel */
    int64_t iw0, clen;      /* each copies input columns [iw0, iw0 + clen) */
    size_t off_goff, off_gtap, off_gword, off_rows, off_keep, off_dst, off_slots, off_wq,
        slot;
} s_dwlay_t;

enum { S_DW_BATCH = 48 * 1024 }; /* bytes of channel copies per kernel call, about */

/* Cuts the taps into groups (bs_qkernels_impl.h): goff[g] (or NULL), gtap[tap] = 4 g + byte
 * (or NULL); returns the number of groups. */
static int s_dw_groups(const bs_conv2d_t *g, int sh, int64_t Sq, int64_t Wp, int32_t *goff,
                       int32_t *gtap)
{
    int ng = 0;
    for (int kh = 0; kh < g->KH; kh++) {
        int64_t rr = (int64_t)kh * g->dh, c0 = -1;
        for (int kw = 0; kw < g->KW; kw++) {
            int64_t cc = (int64_t)kw * g->dw;
            if (c0 < 0 || cc - c0 >= 4) {
                c0 = cc;
                if (goff)
                    goff[ng] = (int32_t)(rr % sh * Sq + rr / sh * Wp + c0);
                ng++;
            }
            if (gtap)
                gtap[kh * g->KW + kw] = (int32_t)((ng - 1) * 4 + (cc - c0));
        }
    }
    return ng;
}

/* 0 when too large. */
static int s_dw_layout(const bs_conv2d_t *g, s_dwlay_t *L)
{
    memset(L, 0, sizeof *L);
    if (g->C < 1 || g->KH < 1 || g->KW < 1 || g->OH < 1 || g->OW < 1 || g->sh < 1 ||
        g->sw < 1 || g->dh < 1 || g->dw < 1)
        return 0;
    int sh = g->sh, sw = g->sw;
    int64_t maxr = (int64_t)(g->KH - 1) * g->dh / sh;
    int64_t maxc = ((int64_t)(g->KW - 1) * g->dw + sw - 1) / sw;
    int64_t Hq = g->OH + maxr, Wq = g->OW + maxc, Wp = Wq * sw, Sq = Hq * Wp;
    int64_t nq = (g->OH - 1) * Wq + g->OW, nblk = (nq + 15) / 16;
    int64_t maxoff = (sh - 1) * Sq + maxr * Wp + (int64_t)(g->KW - 1) * g->dw;
    int64_t need = maxoff + (int64_t)sw * 16 * nblk + 64;
    int64_t cb = (int64_t)sh * Sq > need ? (int64_t)sh * Sq : need;
    if (Wp > S_GRID_MAX || nq > S_GRID_MAX || cb > S_GRID_MAX ||
        (int64_t)g->KH * g->KW > BS_QGEMM_K_MAX)
        return 0;
    L->sh = sh, L->sw = sw;
    L->Hq = (int)Hq, L->Wq = (int)Wq, L->Wp = (int)Wp;
    L->Sq = Sq;
    L->cbytes = (cb + 15) / 16 * 16;
    L->nq = (int)nq, L->nblk = (int)nblk, L->dense = Wq == g->OW;
    L->T = g->KH * g->KW;
    L->ngr = s_dw_groups(g, sh, Sq, Wp, NULL, NULL);
    /* the input columns [iw0, iw1) that land inside the copy's rows, and the rows copied */
    int64_t iw0 = g->pl < 0 ? -(int64_t)g->pl : 0;
    int64_t iw1 = Wp - g->pl < g->W ? Wp - g->pl : g->W;
    L->iw0 = iw0;
    L->clen = iw1 > iw0 ? iw1 - iw0 : 0;
    for (int a = 0; a < sh; a++)
        for (int64_t r = 0; r < Hq; r++) {
            int64_t ih = r * sh + a - g->pt;
            L->nrows += ih >= 0 && ih < g->H;
        }
    int64_t nb = S_DW_BATCH / L->cbytes;
    nb = nb < 1 ? 1 : (nb > g->C ? g->C : nb);
    L->cb = (int)nb;
    size_t off = 0;
    L->off_goff = off;
    off += s_align_up(sizeof(int32_t) * (size_t)L->ngr);
    L->off_gtap = off;
    off += s_align_up(sizeof(int32_t) * (size_t)L->T);
    L->off_gword = off;
    off += s_align_up(2 * sizeof(int32_t) * (size_t)L->ngr);
    L->off_rows = off;
    off += s_align_up(2 * sizeof(int64_t) * (size_t)L->nrows);
    L->off_keep = off;
    off += L->dense ? 0 : s_align_up(sizeof(uint16_t) * (size_t)L->nblk);
    L->off_dst = off;
    off += L->dense ? 0 : s_align_up(sizeof(int32_t) * (size_t)L->nblk);
    L->off_slots = off;
    /* a slot: cb channel copies (at least S_DW_BATCH bytes, which a kernel may use
     * otherwise: bs__qdwp_t) and their weight words */
    L->off_wq = s_align_up((size_t)(L->cbytes * nb > S_DW_BATCH ? L->cbytes * nb : S_DW_BATCH));
    L->slot = L->off_wq + s_align_up(sizeof(int32_t) * (size_t)L->ngr * (size_t)nb);
    return 1;
}

size_t bs_qconv_depthwise_scratch(const bs_conv2d_t *g, int threads)
{
    s_dwlay_t L;
    if (threads < 1)
        threads = 1;
    if (!s_dw_layout(g, &L))
        return S_ALIGN;
    return S_ALIGN + L.off_slots + (size_t)threads * L.slot;
}

typedef struct s_dwjob {
    const bs__qkernels_t *k;
    const bs_conv2d_t *g;
    const s_dwlay_t *L;
    const bs__qdwp_t *d;
    const uint8_t *x;
    const int8_t *w;
    const bs_qgemm_epi_t *e;
    char *y;
    size_t esz;
    int cpi, items;         /* channels per work item */
    char *slots;
    atomic_int next;
} s_dwjob_t;

static void s_dw_slot(void *ctx, int slot)
{
    s_dwjob_t *j = ctx;
    const s_dwlay_t *L = j->L;
    const bs__qdwp_t *d = j->d;
    uint8_t *buf = (uint8_t *)(j->slots + (size_t)slot * L->slot);
    int32_t *wq = (int32_t *)((char *)buf + L->off_wq);
    int fresh = 1;
    for (;;) {
        int it = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        if (it >= j->items)
            return;
        int c0 = it * j->cpi, c1 = c0 + j->cpi < j->g->C ? c0 + j->cpi : j->g->C;
        for (int cb0 = c0; cb0 < c1; cb0 += L->cb) {
            int nch = c1 - cb0 < L->cb ? c1 - cb0 : L->cb;
            j->k->dw(d, j->x + cb0 * d->xplane, j->w + (int64_t)cb0 * L->T, nch,
                     j->e->off + cb0, j->e->mult + cb0, j->e, buf, wq, fresh,
                     j->y + (size_t)((int64_t)cb0 * d->gr->ys) * j->esz);
            fresh = 0;
        }
    }
}

void bs_qconv_depthwise(const bs_conv2d_t *g, const uint8_t *x, int32_t zx, const int8_t *w,
                        const bs_qgemm_epi_t *e, void *y, void *scratch, bs_threadpool_t *pool)
{
    if (g->C <= 0 || g->OH <= 0 || g->OW <= 0)
        return;
    s_dwlay_t L;
    int ok = s_dw_layout(g, &L);
    assert(ok);
    if (!ok)
        return;
    char *base = (char *)(((uintptr_t)scratch + S_ALIGN - 1) / S_ALIGN * S_ALIGN);
    int32_t *goff = (int32_t *)(base + L.off_goff), *gtap = (int32_t *)(base + L.off_gtap);
    int32_t *gword = (int32_t *)(base + L.off_gword), *dst = (int32_t *)(base + L.off_dst);
    int64_t *rows = (int64_t *)(base + L.off_rows);
    uint16_t *keep = (uint16_t *)(base + L.off_keep);
    s_dw_groups(g, L.sh, L.Sq, L.Wp, goff, gtap);
    for (int gi = 0; gi < L.ngr; gi++) { /* taps f .. f + n - 1 of group gi at bytes 0 .. ? */
        int f = 0, n = 0, ok1 = 1;
        while (gtap[f] / 4 != gi)
            f++;
        for (int i = f; i < L.T && gtap[i] / 4 == gi; i++, n++)
            ok1 &= gtap[i] % 4 == i - f;
        gword[2 * gi] = ok1 ? f : -1;
        gword[2 * gi + 1] = n;
    }
    for (int a = 0, r = 0; a < L.sh; a++)
        for (int q = 0; q < L.Hq; q++) {
            int64_t ih = (int64_t)q * L.sh + a - g->pt;
            if (ih < 0 || ih >= g->H)
                continue;
            rows[2 * r] = a * L.Sq + (int64_t)q * L.Wp + g->pl + L.iw0;
            rows[2 * r + 1] = ih * g->W + L.iw0;
            r++;
        }
    bs__qgrid_t gr = {
        .nq = L.nq, .nblk = L.nblk, .dense = L.dense, .keep = keep, .dst = dst,
        .ys = (int64_t)g->OH * g->OW,
    };
    if (!L.dense)
        s_keep(g->OH, g->OW, L.Wq, L.nblk, keep, dst);
    bs__qdwp_t d = {
        .g = g, .bufbytes = (int64_t)L.off_wq, .sw = L.sw, .T = L.T, .ngr = L.ngr,
        .goff = goff, .gtap = gtap, .gword = gword,
        .nrows = L.nrows, .clen = (int)L.clen, .rows = rows,
        .xplane = (int64_t)g->H * g->W, .cbytes = L.cbytes, .zx = zx, .gr = &gr,
    };
    s_dwjob_t j = {
        .k = s_k(), .g = g, .L = &L, .d = &d, .x = x, .w = w, .e = e, .y = y,
        .esz = e->out_u8 ? 1 : sizeof(float), .slots = base + L.off_slots,
    };
    int threads = bs_threadpool_size(pool);
    int want = threads > 1 ? 4 * threads : 1;
    j.cpi = (g->C + want - 1) / want;
    j.items = (g->C + j.cpi - 1) / j.cpi;
    atomic_init(&j.next, 0);
    bs_threadpool_run(pool, j.items < threads ? j.items : threads, s_dw_slot, &j);
}

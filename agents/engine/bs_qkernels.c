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
 *     about 1024; multiples of 4), M in blocks of mc rows (about 160 KiB of X per block, at
 *     most 480 rows), N in chunks of whole panels. A work item is one (M block, N chunk) pair;
 *     for each panel of its chunk it runs the micro-kernel over every K block and every tile
 *     of mr rows, summing into an int32 buffer of mc x nr in the thread's scratch slot, and
 *     then applies the epilogue to the whole buffer (int32 -> float, times mult, activation or
 *     requantization) as it stores into Y.
 *   - X is read in place (rows of Kp bytes, ldx apart). Prepacked weights are read in place
 *     too; weights given as rows (any width 2..8, or 8-bit not prepacked) are unpacked one
 *     panel K block at a time into a tile in the slot, right before the tiles that read it,
 *     so a work item unpacks each weight once per M block.
 *   - Threads: bs_threadpool_run hands out one call per scratch slot, each taking work items
 *     from an atomic counter. Integer sums are exact and every element's epilogue is computed
 *     once, by one item, so results are bitwise identical for any thread count, any blocking
 *     and any instruction set.
 *
 * Depthwise: one channel per work item; each output row is summed in int32 tap by tap over
 * the run of outputs whose window is inside the plane (a loop the compiler vectorises), then
 * stored through the table's run epilogue.
 *
 * The scalar table: a 4 x 4 tile over panels of 4 columns (kq = 4), the per-element epilogue
 * of bs_qkernels_impl.h, the per-element quantization and the row-copy im2row.
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

static void s_run_scalar(const int32_t *acc, int len, int32_t off, float mult,
                         const bs_qgemm_epi_t *e, void *y)
{
    for (int i = 0; i < len; i++) {
        float v = bs__qv(acc[i], off, mult);
        if (e->out_u8)
            ((uint8_t *)y)[i] = bs__qepi_u8(v, e);
        else
            ((float *)y)[i] = bs__qepi_f32(v, e);
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

static const bs__qkernels_t s_qkernels_scalar = {
    .name = "scalar",
    .nr = S_NR,
    .mr = S_MR,
    .kq = 4,
    .tile = s_tile_scalar,
    .epi = s_epi_scalar,
    .run = s_run_scalar,
    .quantize = s_quantize_scalar,
    .im2row = bs__qim2row_ref,
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

/* K block length for Kp padded codes: a multiple of 4, at most S_KC_ONE. */
static int s_kc(int Kp)
{
    if (Kp <= S_KC_ONE)
        return Kp < 4 ? 4 : Kp;
    int blocks = (Kp + S_KC - 1) / S_KC;
    return s_round_up((Kp + blocks - 1) / blocks, 4);
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
    const int8_t *packed;     /* or NULL: rows */
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
    for (int p = p0; p < p1; p++) {
        int n0 = p * nr, nv = j->N - n0 < nr ? j->N - n0 : nr;
        for (int k0 = 0; k0 < j->Kp; k0 += j->kc) {
            int kl = j->Kp - k0 < j->kc ? j->Kp - k0 : j->kc;
            const int8_t *wp;
            if (j->packed) {
                wp = j->packed + (int64_t)n0 * j->Kp + (int64_t)k0 * nr;
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
    assert(W->packed || (W->rows && W->rows->N == N && W->rows->K == K));
    s_qjob_t j = {
        .k = k, .M = M, .N = N, .K = K, .Kp = (int)BS_QK_PAD(K), .X = X, .ldx = ldx,
        .packed = W->packed, .rows = W->packed ? NULL : W->rows, .e = e, .Y = Y,
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

/* ---- depthwise ------------------------------------------------------------------------ */

typedef struct s_dw_job {
    const bs__qkernels_t *k;
    const bs_conv2d_t *g;
    const uint8_t *x;
    int32_t zx;
    const int8_t *w;
    const bs_qgemm_epi_t *e;
    char *y;
} s_dw_job_t;

enum { S_DW_RUN = 512 }; /* outputs summed at once */

static void s_dw_channel(void *ctx, int c)
{
    const s_dw_job_t *j = ctx;
    const bs_conv2d_t *g = j->g;
    int esz = j->e->out_u8 ? 1 : (int)sizeof(float);
    const uint8_t *xc = j->x + (int64_t)c * g->H * g->W;
    const int8_t *wc = j->w + (int64_t)c * g->KH * g->KW;
    char *yc = j->y + (int64_t)c * g->OH * g->OW * esz;
    int32_t off = j->e->off[c];
    float mult = j->e->mult[c];
    if (j->k->dw) {
        j->k->dw(g, xc, j->zx, wc, off, mult, j->e, yc);
        return;
    }
    uint32_t acc[S_DW_RUN];
    for (int oh = 0; oh < g->OH; oh++)
        for (int o0 = 0; o0 < g->OW; o0 += S_DW_RUN) {
            int len = g->OW - o0 < S_DW_RUN ? g->OW - o0 : S_DW_RUN;
            memset(acc, 0, sizeof(uint32_t) * (size_t)len);
            for (int kh = 0; kh < g->KH; kh++) {
                int64_t ih = (int64_t)oh * g->sh + (int64_t)kh * g->dh - g->pt;
                if (ih < 0 || ih >= g->H)
                    continue;
                const uint8_t *xr = xc + ih * g->W;
                for (int kw = 0; kw < g->KW; kw++) {
                    int32_t wv = wc[kh * g->KW + kw];
                    int64_t iw0 = (int64_t)kw * g->dw - g->pl;
                    /* outputs whose tap reads inside the row: 0 <= ow*sw + iw0 < W */
                    int64_t a = iw0 >= 0 ? 0 : (-iw0 + g->sw - 1) / g->sw;
                    int64_t b = g->W - 1 - iw0 < 0 ? 0 : (g->W - 1 - iw0) / g->sw + 1;
                    a = a < o0 ? o0 : a;
                    b = b > o0 + len ? o0 + len : b;
                    if (wv == 0 || a >= b)
                        continue;
                    /* acc[i] is output o0 + i, reading input column (o0 + i) * sw + iw0
                     * (indices, not pointers, since the first may lie before the row) */
                    int64_t s0 = (int64_t)o0 * g->sw + iw0, i0 = a - o0, i1 = b - o0;
                    if (g->sw == 1)
                        for (int64_t i = i0; i < i1; i++)
                            acc[i] += (uint32_t)(((int32_t)xr[s0 + i] - j->zx) * wv);
                    else
                        for (int64_t i = i0; i < i1; i++)
                            acc[i] += (uint32_t)(((int32_t)xr[s0 + i * g->sw] - j->zx) * wv);
                }
            }
            j->k->run((const int32_t *)acc, len, off, mult, j->e,
                      yc + ((int64_t)oh * g->OW + o0) * esz);
        }
}

void bs_qconv_depthwise(const bs_conv2d_t *g, const uint8_t *x, int32_t zx, const int8_t *w,
                        const bs_qgemm_epi_t *e, void *y, bs_threadpool_t *pool)
{
    if (g->C <= 0 || g->OH <= 0 || g->OW <= 0)
        return;
    s_dw_job_t j = {s_k(), g, x, zx, w, e, y};
    bs_threadpool_run(pool, g->C, s_dw_channel, &j);
}

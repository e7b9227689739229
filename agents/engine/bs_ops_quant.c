/*
 * bs_ops_quant.c - what every weight layer (Conv, Gemm, MatMul) needs to run at a precision
 * other than fp32: its weight held at that precision, its input quantized, its epilogue.
 *
 * A layer's weight is an N x K matrix (rows = output channels, G groups of N/G rows each) read
 * through strides from the float weight at prepare time, then held as one of:
 *   w16      fp16 rows (bs_f16_weights), dequantized per tile inside bs_gemm_wq;
 *   w2..w8   packed integer rows with per-row scales (bs_quantize_weights, MSE clipping search
 *            or min-max); with float inputs dequantized per tile inside bs_gemm_wq; with int8
 *            inputs the integer kernel bs_qgemm reads them (8-bit ones repacked once into its
 *            panel order per group, after which the rows are freed; 4-bit ones of a Gemm /
 *            MatMul likewise into the same panels two codes per byte, bs_qgemm_pack4,
 *            expanded in registers; the others unpacked per tile);
 *   w32      float panels (bs_gemm_pack), only for a w32a8 layer (float weight, int8 input).
 * The float originals are then freed by the loader (weight_packed), so the weight bytes a job
 * reports are the packed codes, scales, and the per-channel epilogue terms held here.
 *
 * Inputs at a8: the calibrated uint8 parameters (sx, zx) of the layer's input tensor. An
 * integer layer (w2..w8 a8) multiplies uint8 x int8 in int32 (bs_qkernels.h): its bias is
 * quantized to int32 at scale sx * sw[n] (round half to even, as ONNX QLinearConv does) and
 * folded with the zero-point term into off[n] = bias_q[n] - zx * sum_k Wq[n, k] (depthwise:
 * bias_q only, the kernel subtracts zx itself); mult[n] = sx * sw[n] for a float output, or
 * sx * sw[n] / s_out when the loader made the output a uint8 tensor for the next int8 layer
 * (bs_graph.c s_plan_u8), the fused Relu / Clip then being bounds on the uint8 code. A float
 * weight with an int8 input (w32a8, w16a8) is what an ONNX QDQ model means by it: the input is
 * quantized and dequantized (bs__qw_qdq), then the float product runs. A single row (a batch-1
 * Gemm / MatMul) against sub-8-bit rows (not 4-bit panels) goes through bs__qgemv_rows, which
 * unpacks each row a block at a time instead of whole panel tiles (the same values as
 * bs_qgemm, bit for bit).
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "bs_alloc.h"
#include "bs_ops_internal.h"
#include "bs_qkernels.h"
#include "bs_quant.h"
#include "bs_qkernels_impl.h"
#include "bs_threadpool.h"

#include <stdatomic.h>

int bs__qlayer_check(bs_graph_t *g, const bs_node_t *n, bs_err_t *err)
{
    char pt[BS_PREC_TEXT_MAX];
    bs_prec_format(n->prec, pt);
    if (!bs_prec_valid(n->prec))
        return bs_node_err(err, n, BS_EINVAL, "invalid precision %s", pt);
    const bs_tensor_t *x = bs_node_input(g, n, 0);
    if (!x || x->dtype != BS_DT_FLOAT)
        return bs_node_err(err, n, BS_EUNSUPPORTED, "%s: the input must be float32", pt);
    if (!strcmp(n->op_type, "Conv") || !strcmp(n->op_type, "ConvTranspose")) {
        if (x->shape.rank > 4)
            return bs_node_err(err, n, BS_EUNSUPPORTED,
                               "%s: quantized convolutions have 1 or 2 spatial axes; this one "
                               "has %d (run it at w32a32)",
                               pt, x->shape.rank - 2);
    }
    return 0;
}

void bs__qw_free(bs__qw_t *q)
{
    if (!q)
        return;
    bs_qweight_free(&q->q);
    bs_free(q->f16);
    bs_free(q->praw);
    bs_free(q->bias);
    bs_free(q->off);
    bs_free(q->mult);
    bs_free(q->wdw);
    memset(q, 0, sizeof *q);
}

/* Round half to even of a double, clamped to +-2^30 (int32 bias terms). */
static int32_t s_rne_i32(double v)
{
    if (!(v == v))
        return 0;
    if (v > 1073741824.0)
        return 1073741824;
    if (v < -1073741824.0)
        return -1073741824;
    return (int32_t)nearbyint(v);
}

static int32_t s_qbound(float v, float so, int32_t zo, int32_t dflt)
{
    if (!isfinite(v))
        return dflt;
    double q = nearbyint((double)v / so) + zo;
    return q < 0 ? 0 : (q > 255 ? 255 : (int32_t)q);
}

/* Quantizes N rows of K that share a scale r rows at a time: as N / r rows of K * r (so each
 * output channel gets one scale), then split back into N packed rows of K. */
static int s_quantize_shared(const float *W, int N, int K, int r, int bits, int method,
                             bs_qweight_t *out, bs_err_t *err)
{
    bs_qweight_t big;
    memset(out, 0, sizeof *out);
    int rc = bs_quantize_weights(W, (int64_t)K * r, 1, N / r, K * r, bits, method, &big, err);
    if (rc)
        return rc;
    out->bits = bits;
    out->method = method;
    out->N = N;
    out->K = K;
    out->row_bytes = BS_QROW_BYTES(K, bits);
    out->data = bs_calloc(1, (size_t)N * out->row_bytes + BS_QWEIGHT_TAIL);
    out->scales = bs_malloc(sizeof(float) * (size_t)N);
    int8_t *codes = bs_malloc((size_t)K);
    if (!out->data || !out->scales || !codes) {
        bs_free(codes);
        bs_qweight_free(&big);
        bs_qweight_free(out);
        return bs_err_set(err, BS_ENOMEM, "out of memory");
    }
    for (int i = 0; i < N; i++) {
        bs_qweight_unpack_row(&big, i / r, (i % r) * K, (i % r + 1) * K, codes);
        bs_qpack_row(codes, K, bits, out->data + (size_t)i * out->row_bytes);
        out->scales[i] = big.scales[i / r];
    }
    bs_free(codes);
    bs_qweight_free(&big);
    return 0;
}

int bs__qw_prepare(bs_graph_t *g, bs_node_t *n, const bs__qw_spec_t *sp, bs__qw_t *q,
                   bs_err_t *err)
{
    memset(q, 0, sizeof *q);
    q->prec = n->prec;
    q->N = sp->N;
    q->K = sp->K;
    q->G = sp->G < 1 ? 1 : sp->G;
    q->dw = sp->dw;
    q->int8 = n->prec.a == 8 && n->prec.w <= 8;
    int N = sp->N, K = sp->K, rc = 0;
    const float *W = sp->W;
    float *tmp = NULL;
    if (sp->alpha != 1.0f) { /* Gemm's alpha scales the weight before it is quantized */
        if (!(tmp = bs_malloc(sizeof(float) * (size_t)N * (size_t)K)))
            return bs_node_err(err, n, BS_ENOMEM, "out of memory");
        for (int64_t r = 0; r < N; r++)
            for (int64_t c = 0; c < K; c++)
                tmp[r * K + c] = sp->alpha * W[r * sp->sn + c * sp->sk];
        W = tmp;
    }
    int64_t sn = tmp ? K : sp->sn, sk = tmp ? 1 : sp->sk;
    size_t held = 0;
    if (q->int8 && K > BS_QGEMM_K_MAX) {
        rc = bs_node_err(err, n, BS_EUNSUPPORTED,
                         "int8 activations need at most %d inputs per output channel; this "
                         "layer has %d (use a32)",
                         BS_QGEMM_K_MAX, K);
        goto fail;
    }
    if (n->prec.w <= 8) {
        int method = g->opts.wscale_minmax ? BS_QSCALE_MINMAX : BS_QSCALE_MSE;
        if (sp->rows_per_scale > 1)
            rc = s_quantize_shared(W, N, K, sp->rows_per_scale, n->prec.w, method, &q->q, err);
        else
            rc = bs_quantize_weights(W, sn, sk, N, K, n->prec.w, method, &q->q, err);
        if (rc) {
            bs_err_prefix(err, "node '%s' (%s): weight", n->name, n->op_type);
            goto fail;
        }
        held += bs_qweight_bytes(&q->q);
    } else if (n->prec.w == 16) {
        if ((rc = bs_f16_weights(W, sn, sk, N, K, &q->f16, err))) {
            bs_err_prefix(err, "node '%s' (%s): weight", n->name, n->op_type);
            goto fail;
        }
        held += sizeof(uint16_t) * (size_t)N * (size_t)K;
    }
    /* depthwise float paths keep a float copy of the (tiny) filter: w32 as is, the others
     * dequantized per run into scratch */
    if (q->dw && n->prec.w == 32) {
        if (!(q->wdw = bs_malloc(sizeof(float) * (size_t)N * (size_t)K))) {
            rc = bs_node_err(err, n, BS_ENOMEM, "out of memory");
            goto fail;
        }
        for (int64_t r = 0; r < N; r++)
            for (int64_t c = 0; c < K; c++)
                q->wdw[r * K + c] = W[r * sn + c * sk];
        held += sizeof(float) * (size_t)N * (size_t)K;
    } else if (n->prec.w == 32) { /* w32a8: float panels per group */
        int Ng = N / q->G;
        q->pg_bytes = bs__align64(bs_gemm_packed_size(Ng, K));
        if (!(q->packed = bs__aligned_alloc(q->pg_bytes * (size_t)q->G, &q->praw))) {
            rc = bs_node_err(err, n, BS_ENOMEM, "out of memory");
            goto fail;
        }
        for (int grp = 0; grp < q->G; grp++)
            bs_gemm_pack(W + (int64_t)grp * Ng * sn, sn, sk, Ng, K,
                         q->packed + (size_t)grp * q->pg_bytes);
        held += q->pg_bytes * (size_t)q->G;
    }
    if (sp->bias) {
        if (!(q->bias = bs_malloc(sizeof(float) * (size_t)N))) {
            rc = bs_node_err(err, n, BS_ENOMEM, "out of memory");
            goto fail;
        }
        memcpy(q->bias, sp->bias, sizeof(float) * (size_t)N);
        held += sizeof(float) * (size_t)N;
    }
    if (n->prec.a == 8) {
        const bs_tensor_t *x = bs_node_input(g, n, 0);
        const bs_qparam_t *qp = bs_act_table_find(g->opts.act, x->name);
        if (!qp || !(qp->scale > 0.0f) || !isfinite(qp->scale) || qp->zero_point < 0 ||
            qp->zero_point > 255) {
            rc = bs_node_err(err, n, BS_EINVAL,
                             "no valid int8 parameters for input '%s' (scale > 0, zero point "
                             "0..255)",
                             x->name);
            goto fail;
        }
        q->in = *qp;
    }
    if (q->int8) {
        const bs_tensor_t *y = bs_node_output(g, n, 0);
        q->off = bs_malloc(sizeof(int32_t) * (size_t)N);
        q->mult = bs_malloc(sizeof(float) * (size_t)N);
        int32_t *sums = bs_malloc(sizeof(int32_t) * (size_t)N);
        if (!q->off || !q->mult || !sums) {
            bs_free(sums);
            rc = bs_node_err(err, n, BS_ENOMEM, "out of memory");
            goto fail;
        }
        bs_qweight_row_sums(&q->q, sums);
        q->epi.out_u8 = y->quantized;
        float so = y->quantized ? y->qscale : 1.0f;
        for (int r = 0; r < N; r++) {
            double s = (double)q->in.scale * (double)q->q.scales[r];
            int32_t bq = q->bias ? s_rne_i32((double)q->bias[r] / s) : 0;
            q->off[r] = q->dw ? bq : (int32_t)((uint32_t)bq - (uint32_t)(q->in.zero_point *
                                                                           sums[r]));
            q->mult[r] = (float)(s / (double)so);
        }
        bs_free(sums);
        held += 2 * sizeof(float) * (size_t)N;
        q->epi.off = q->off;
        q->epi.mult = q->mult;
        q->epi.act = n->act;
        q->epi.lo = n->act_lo;
        q->epi.hi = n->act_hi;
        if (y->quantized) {
            q->epi.zo = y->qzero;
            q->epi.qlo = 0;
            q->epi.qhi = 255;
            if (n->act == BS_ACT_RELU) {
                q->epi.qlo = y->qzero;
            } else if (n->act == BS_ACT_CLIP) {
                q->epi.qlo = s_qbound(n->act_lo, so, y->qzero, 0);
                q->epi.qhi = s_qbound(n->act_hi, so, y->qzero, 255);
                if (q->epi.qhi < q->epi.qlo)
                    q->epi.qhi = q->epi.qlo;
            }
        }
        if (n->prec.w == 8 && !q->dw) { /* repack per group for the kernel, drop the rows */
            int Ng = N / q->G;
            q->pg_bytes = bs__align64(bs_qgemm_packed_size(Ng, K));
            if (!(q->packed = bs__aligned_alloc(q->pg_bytes * (size_t)q->G, &q->praw))) {
                rc = bs_node_err(err, n, BS_ENOMEM, "out of memory");
                goto fail;
            }
            for (int grp = 0; grp < q->G; grp++) {
                bs_qweight_t v = bs__qw_group(q, grp);
                bs_qgemm_pack(&v, q->packed + (size_t)grp * q->pg_bytes);
            }
            held -= (size_t)N * q->q.row_bytes;
            held += q->pg_bytes * (size_t)q->G;
            bs_free(q->q.data);
            q->q.data = NULL;
        } else if (n->prec.w == 4 && !q->dw &&
                   (!strcmp(n->op_type, "Gemm") || !strcmp(n->op_type, "MatMul"))) {
            /* 4-bit panels per group (about the rows' bytes), expanded in registers by the
             * kernel; convolutions make their own (bs_ops_conv.c) */
            int Ng = N / q->G;
            q->pg_bytes = bs__align64(bs_qgemm_packed4_size(Ng, K));
            if (!(q->packed4 = bs__aligned_alloc(q->pg_bytes * (size_t)q->G, &q->praw))) {
                rc = bs_node_err(err, n, BS_ENOMEM, "out of memory");
                goto fail;
            }
            for (int grp = 0; grp < q->G; grp++) {
                bs_qweight_t v = bs__qw_group(q, grp);
                bs_qgemm_pack4(&v, q->packed4 + (size_t)grp * q->pg_bytes);
            }
            held -= (size_t)N * q->q.row_bytes;
            held += q->pg_bytes * (size_t)q->G;
            bs_free(q->q.data);
            q->q.data = NULL;
        }
    }
    q->held = held;
    bs_free(tmp);
    return 0;
fail:
    bs_free(tmp);
    bs__qw_free(q);
    return rc;
}

bs_qweight_t bs__qw_group(const bs__qw_t *q, int grp)
{
    bs_qweight_t v = q->q;
    int Ng = q->N / q->G;
    v.N = Ng;
    if (v.data)
        v.data += (size_t)grp * (size_t)Ng * v.row_bytes;
    v.scales += (size_t)grp * (size_t)Ng;
    return v;
}

enum { S_QGEMV_KB = 512 }; /* codes unpacked at a time by bs__qgemv_rows */

static size_t s_qgemv_scratch(int threads, int K)
{
    size_t phases = 4 * (((size_t)K / 2 + 1 + 32 + 63) / 64 * 64); /* at most 4 x ceil(K/2) */
    return 64 + (size_t)(threads < 1 ? 1 : threads) * (S_QGEMV_KB + 64) + phases;
}

size_t bs__qw_gemm_scratch(const bs__qw_t *q, int M, int threads)
{
    int Ng = q->N / q->G;
    if (q->int8) {
        size_t a = bs_qgemm_scratch_size(M, Ng, q->K, threads, q->packed == NULL);
        size_t b = M == 1 && !q->packed && !q->packed4 ? s_qgemv_scratch(threads, q->K) : 0;
        return a > b ? a : b;
    }
    if (q->prec.w == 32)
        return bs_gemm_scratch_size(M, Ng, q->K, threads);
    return bs_gemm_wq_scratch_size(M, Ng, q->K, threads);
}

void bs__qw_gemm_f(const bs__qw_t *q, int grp, int M, const float *X, int64_t sxm, int64_t sxk,
                   float *Y, int64_t sym, int64_t syn, int act, float lo, float hi,
                   void *scratch, bs_threadpool_t *pool)
{
    int Ng = q->N / q->G;
    const float *bias = q->bias ? q->bias + (size_t)grp * (size_t)Ng : NULL;
    if (q->prec.w == 32) {
        bs_gemm(M, Ng, q->K, X, sxm, sxk, q->packed + (size_t)grp * q->pg_bytes, bias, Y, sym,
                syn, act, lo, hi, scratch, pool);
        return;
    }
    bs_gemm_wsrc_t ws = {.q = q->prec.w <= 8 ? &q->q : NULL, .f16 = q->f16, .n0 = grp * Ng};
    bs_gemm_wq(M, Ng, q->K, X, sxm, sxk, &ws, bias, Y, sym, syn, act, lo, hi, scratch, pool);
}

/* One row of X against sub-8-bit rows (a batch-1 Gemm / MatMul): each output straight from
 * its packed row, unpacked a K block at a time into a small buffer (never the whole weight)
 * and multiplied in exact int32 (bs_dot_u8s8), then the epilogue bs_qgemm specifies
 * (bs_qkernels_impl.h), so the outputs equal bs_qgemm's bit for bit. Outputs split over the
 * pool; each thread's codes buffer is one slot of scratch. */
typedef struct s_qgemv {
    const bs_qweight_t *w;
    const uint8_t *x;
    const uint8_t *xs[4];  /* 4-bit / 2-bit rows: the input split into phases */
    int phases;            /* 2 (4-bit), 4 (2-bit), or 0: unpack and bs_dot_u8s8 */
    const bs_qgemm_epi_t *e;
    void *y;
    int64_t syn;
    char *scratch;
    int per, items;
    atomic_int next;
} s_qgemv_t;


static void s_qgemv_slot(void *ctx, int slot)
{
    s_qgemv_t *j = ctx;
    int8_t *codes = (int8_t *)(j->scratch + (size_t)slot * (S_QGEMV_KB + 64));
    const bs_qweight_t *w = j->w;
    for (;;) {
        int it = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        if (it >= j->items)
            return;
        int n1 = (it + 1) * j->per < w->N ? (it + 1) * j->per : w->N;
        for (int n = it * j->per; n < n1; n++) {
            const uint8_t *row = w->data + (size_t)n * w->row_bytes;
            int32_t raw = 0;
            if (j->phases) /* read in place: 4-bit and 2-bit codes never leave registers */
                raw = bs_dot_u8_packed(j->xs, j->phases, row, (int)w->row_bytes);
            for (int k0 = 0; !j->phases && k0 < w->K; k0 += S_QGEMV_KB) {
                int kl = w->K - k0 < S_QGEMV_KB ? w->K - k0 : S_QGEMV_KB;
                bs_qunpack_fast(row, w->bits, k0, kl, codes);
                raw += bs_dot_u8s8(j->x + k0, codes, kl);
            }
            float v = bs__qv(raw, j->e->off[n], j->e->mult[n]);
            if (j->e->out_u8)
                ((uint8_t *)j->y)[(int64_t)n * j->syn] = bs__qepi_u8(v, j->e);
            else
                ((float *)j->y)[(int64_t)n * j->syn] = bs__qepi_f32(v, j->e);
        }
    }
}

void bs__qgemv_rows(const bs_qweight_t *w, const uint8_t *x, const bs_qgemm_epi_t *e, void *y,
                    int64_t syn, void *scratch, bs_threadpool_t *pool)
{
    int threads = bs_threadpool_size(pool);
    s_qgemv_t j = {.w = w, .x = x, .e = e, .y = y, .syn = syn};
    j.scratch = (char *)(((uintptr_t)scratch + 63) / 64 * 64);
    j.phases = w->bits == 4 ? 2 : (w->bits == 2 ? 4 : 0);
    if (j.phases) { /* the phases live after the threads' code buffers */
        int64_t stride = ((int64_t)w->row_bytes + 32 + 63) / 64 * 64;
        uint8_t *ph = (uint8_t *)(j.scratch + (size_t)threads * (S_QGEMV_KB + 64));
        bs_split_phases(x, w->K, j.phases, ph, stride);
        for (int t = 0; t < j.phases; t++)
            j.xs[t] = ph + t * stride;
    }
    int items = threads > 1 ? 4 * threads : 1;
    j.per = (w->N + items - 1) / items;
    j.items = (w->N + j.per - 1) / j.per;
    atomic_init(&j.next, 0);
    bs_threadpool_run(pool, j.items < threads ? j.items : threads, s_qgemv_slot, &j);
}

void bs__qw_gemm_q(const bs__qw_t *q, int grp, int M, const uint8_t *X, int64_t ldx, void *Y,
                   int64_t sym, int64_t syn, void *scratch, bs_threadpool_t *pool)
{
    int Ng = q->N / q->G;
    bs_qweight_t v = bs__qw_group(q, grp);
    if (M == 1 && !q->packed && !q->packed4 && v.bits <= 7) {
        bs_qgemm_epi_t e1 = q->epi;
        e1.off = q->off + (size_t)grp * (size_t)Ng;
        e1.mult = q->mult + (size_t)grp * (size_t)Ng;
        bs__qgemv_rows(&v, X, &e1, Y, syn, scratch, pool);
        return;
    }
    bs_qgemm_w_t w = {.N = Ng, .K = q->K};
    if (q->packed)
        w.packed = q->packed + (size_t)grp * q->pg_bytes;
    else if (q->packed4)
        w.packed4 = q->packed4 + (size_t)grp * q->pg_bytes;
    else
        w.rows = &v;
    bs_qgemm_epi_t e = q->epi;
    e.off = q->off + (size_t)grp * (size_t)Ng;
    e.mult = q->mult + (size_t)grp * (size_t)Ng;
    bs_qgemm(M, X, ldx, &w, &e, Y, sym, syn, scratch, pool);
}

void bs__qw_qdq(const bs__qw_t *q, const float *x, int64_t n, float *out)
{
    float s = q->in.scale;
    int32_t z = q->in.zero_point;
    for (int64_t i = 0; i < n; i++) {
        float v = x[i] / s;
        float r = v != v ? 0.0f : bs_quant_round(v < -1e9f ? -1e9f : (v > 1e9f ? 1e9f : v));
        float c = r + (float)z;
        c = c < 0.0f ? 0.0f : (c > 255.0f ? 255.0f : c);
        out[i] = (c - (float)z) * s;
    }
}

void bs__qw_dequant_dw(const bs__qw_t *q, float *w)
{
    if (q->wdw) {
        memcpy(w, q->wdw, sizeof(float) * (size_t)q->N * (size_t)q->K);
        return;
    }
    for (int r = 0; r < q->N; r++) {
        if (q->f16)
            bs_f16_dequant(q->f16 + (size_t)r * (size_t)q->K, (size_t)q->K,
                           w + (size_t)r * (size_t)q->K);
        else
            bs_qweight_dequant_row(&q->q, r, 0, q->K, w + (size_t)r * (size_t)q->K);
    }
}

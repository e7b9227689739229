/*
 * bs_ops_nn.c - the neural-network operators other than convolution, float32, and the
 * bs_ops_nn[] table (which also lists Conv and ConvTranspose from bs_ops_conv.c).
 *
 * Gemm and MatMul go through the packed GEMM of bs_kernels.h with the right-hand operand as
 * the packed "weight": a const one is packed once in prepare() (Gemm's alpha folded in), a
 * computed one is packed into scratch on every run. Gemm's C becomes the kernel's bias when it
 * is one value per column; any other broadcast of C is added after the product. The fused
 * activation (n->act) is applied by the kernel or by that final pass.
 * The other ops are direct loops over static shapes: the pools promote 1-D and 2-D to 3-D
 * (leading axes of size 1) so one loop nest serves all; Softmax and the normalizations work on
 * an (outer, axis, inner) view; ReduceMean walks the input once with an odometer; Resize builds
 * per-axis tap tables (input index and weight per output coordinate) in prepare() and sums
 * their products at run time, which covers nearest, linear and cubic in every
 * coordinate_transformation_mode with one code path.
 * The helpers named bs__* are shared with bs_ops_conv.c.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "bs_alloc.h"
#include "bs_kernels.h"
#include "bs_op.h"
#include "bs_threadpool.h"

#include "bs_ops_internal.h"

/* ---- shared helpers ----------------------------------------------------------------------- */

/* Input k, required, float32 with an inferred shape; what names it in the error. */
int bs__input_f32(bs_graph_t *g, const bs_node_t *n, int k, const char *what, bs_tensor_t **out,
                  bs_err_t *err)
{
    bs_tensor_t *t = bs_node_input(g, n, k);
    *out = NULL;
    if (!t)
        return bs_node_err(err, n, BS_EMODEL, "input %d (%s) is missing", k, what);
    if (!t->has_shape)
        return bs_node_err(err, n, BS_EMODEL, "input '%s' (%s) has no inferred shape", t->name,
                           what);
    /* the loader's uint8 activations between int8 layers (bs_graph.c s_plan_u8) */
    int q8 = k == 0 && t->quantized && n->weight_layer && n->prec.a == 8;
    if (t->dtype != BS_DT_FLOAT && !q8)
        return bs_node_err(err, n, BS_EUNSUPPORTED,
                           "input '%s' (%s) is %s; only float32 is supported", t->name, what,
                           bs_dtype_name(t->dtype));
    *out = t;
    return 0;
}

int bs__output(bs_graph_t *g, const bs_node_t *n, int k, bs_tensor_t **out, bs_err_t *err)
{
    *out = bs_node_output(g, n, k);
    if (!*out)
        return bs_node_err(err, n, BS_EMODEL, "output %d is missing", k);
    return 0;
}

int bs__threads(const bs_graph_t *g)
{
    int t = g->opts.threads, p = bs_threadpool_size(g->pool);
    if (p > t)
        t = p;
    return t < 1 ? 1 : t;
}

size_t bs__align64(size_t n)
{
    return (n + 63) & ~(size_t)63;
}

/* bs_malloc'd block with a 64-byte aligned region of bytes; *raw is what to bs_free. */
void *bs__aligned_alloc(size_t bytes, void **raw)
{
    *raw = bs_malloc(bytes + 64);
    if (!*raw)
        return NULL;
    return (void *)(((uintptr_t)*raw + 63) & ~(uintptr_t)63);
}

/* Strides, dilations, pads (or auto_pad) and output size of ns spatial axes, for Conv and the
 * pools. in and k are the input and kernel sizes; ceil_mode rounds the output size up (pools). */
int bs__spatial_dims(const bs_node_t *n, int ns, const int64_t *in, const int64_t *k,
                     int ceil_mode, int64_t *s, int64_t *d, int64_t *ph, int64_t *pt, int64_t *out,
                     bs_err_t *err)
{
    const int64_t *v;
    int cnt = bs_attr_ints(n, "strides", &v);
    if (cnt >= 0 && cnt != ns)
        return bs_node_err(err, n, BS_EMODEL, "attribute 'strides' has %d values, expected %d",
                           cnt, ns);
    for (int i = 0; i < ns; i++)
        if ((s[i] = cnt >= 0 ? v[i] : 1) < 1 || s[i] > INT32_MAX)
            return bs_node_err(err, n, BS_EMODEL, "attribute 'strides'[%d] = %lld is out of range",
                               i, (long long)s[i]);
    cnt = bs_attr_ints(n, "dilations", &v);
    if (cnt >= 0 && cnt != ns)
        return bs_node_err(err, n, BS_EMODEL, "attribute 'dilations' has %d values, expected %d",
                           cnt, ns);
    for (int i = 0; i < ns; i++)
        if ((d[i] = cnt >= 0 ? v[i] : 1) < 1 || d[i] > INT32_MAX)
            return bs_node_err(err, n, BS_EMODEL,
                               "attribute 'dilations'[%d] = %lld is out of range", i,
                               (long long)d[i]);
    const char *ap = bs_attr_string(n, "auto_pad", "NOTSET");
    int notset = strcmp(ap, "NOTSET") == 0, valid = strcmp(ap, "VALID") == 0;
    int upper = strcmp(ap, "SAME_UPPER") == 0, lower = strcmp(ap, "SAME_LOWER") == 0;
    if (!notset && !valid && !upper && !lower)
        return bs_node_err(err, n, BS_EMODEL,
                           "attribute 'auto_pad' = '%s' is not NOTSET, SAME_UPPER, SAME_LOWER "
                           "or VALID",
                           ap);
    cnt = bs_attr_ints(n, "pads", &v);
    if (notset && cnt >= 0 && cnt != 2 * ns)
        return bs_node_err(err, n, BS_EMODEL, "attribute 'pads' has %d values, expected %d", cnt,
                           2 * ns);
    for (int i = 0; i < ns; i++) {
        if (in[i] < 1 || in[i] > INT32_MAX || k[i] < 1 || k[i] > INT32_MAX)
            return bs_node_err(err, n, BS_EUNSUPPORTED,
                               "spatial axis %d: input size %lld or kernel size %lld is out of "
                               "range",
                               i, (long long)in[i], (long long)k[i]);
        int64_t ek = (k[i] - 1) * d[i] + 1;
        if (upper || lower) {
            out[i] = (in[i] + s[i] - 1) / s[i];
            int64_t total = (out[i] - 1) * s[i] + ek - in[i];
            if (total < 0)
                total = 0;
            ph[i] = upper ? total / 2 : total - total / 2;
            pt[i] = total - ph[i];
            continue;
        }
        ph[i] = notset && cnt >= 0 ? v[i] : 0;
        pt[i] = notset && cnt >= 0 ? v[i + ns] : 0;
        if (ph[i] < 0 || pt[i] < 0 || ph[i] > INT32_MAX || pt[i] > INT32_MAX)
            return bs_node_err(err, n, BS_EMODEL, "attribute 'pads' has a value out of range");
        int64_t span = in[i] + ph[i] + pt[i] - ek;
        if (span < 0)
            return bs_node_err(err, n, BS_EMODEL,
                               "kernel extent %lld exceeds the padded input size %lld on spatial "
                               "axis %d",
                               (long long)ek, (long long)(in[i] + ph[i] + pt[i]), i);
        if (ceil_mode) {
            out[i] = (span + s[i] - 1) / s[i] + 1;
            if ((out[i] - 1) * s[i] >= in[i] + ph[i]) /* last window must start inside */
                out[i]--;
        } else {
            out[i] = span / s[i] + 1;
        }
    }
    return 0;
}

static int s_one_output(const bs_node_t *n, bs_err_t *err)
{
    if (n->n_out != 1)
        return bs_node_err(err, n, BS_EMODEL, "expected 1 output, got %d", n->n_out);
    return 0;
}

static float s_act(float v, int act, float lo, float hi)
{
    if (act == BS_ACT_RELU)
        return v > 0.0f ? v : 0.0f;
    if (act == BS_ACT_CLIP)
        return v < lo ? lo : (v > hi ? hi : v);
    return v;
}

/* Packed-weight holder for Gemm / MatMul with a const right-hand side. */
typedef struct s_mm {
    int M, N, K;   /* per product */
    int nb;        /* packed matrices (MatMul: B's batch count) */
    void *wraw;    /* allocation holding wpacked */
    char *wpacked; /* nb packed matrices, w_bytes apart; NULL: pack at run */
    size_t w_bytes;
    size_t off_w, off_gemm; /* scratch layout */
    /* Gemm only */
    int post;         /* 1: add alpha/C and apply act after the product */
    float alpha_post; /* alpha still to apply (1 when folded into the packing) */
    float *bias;      /* beta * C when C is one value per column; owned */
    /* MatMul only */
    int64_t nbatch; /* output batch count */
    int flat;       /* 1: B has no batch: one product with M = nbatch * M */
    int64_t a_str[BS_MAX_RANK], b_str[BS_MAX_RANK]; /* batch strides (in matrices) */
    bs_shape_t obatch;                              /* output batch shape */
    /* quantized (n->prec not w32a32): the weight as bs_ops_quant.c holds it */
    bs__qw_t *qw;
    size_t off_xq; /* scratch: the input's uint8 rows (int8) or QDQ copy (float weight, a8) */
} s_mm_t;

static void s_mm_release(bs_node_t *n)
{
    s_mm_t *st = n->state;
    if (!st)
        return;
    if (st->qw) {
        bs__qw_free(st->qw);
        bs_free(st->qw);
    }
    bs_free(st->wraw);
    bs_free(st->bias);
    bs_free(st);
    n->state = NULL;
}

/* ---- Gemm / MatMul at a quantized precision (see bs_ops_quant.c) ---------------------------
 * One product of M rows: Y[M, N] = act(A W^T + bias), W the N x K weight read through
 * (sn, sk). Integer layers quantize A's rows to uint8 (or read the previous int8 layer's uint8
 * rows in place when they are already laid out as the kernel wants) and call bs_qgemm; float
 * inputs go through bs_gemm_wq, after QDQ of A for a float weight at a8. */
static int s_qmm_prepare(bs_graph_t *g, bs_node_t *n, int M, int N, int K, const float *W,
                         int64_t sn, int64_t sk, const float *bias, float alpha, int ta,
                         bs_err_t *err)
{
    s_mm_release(n);
    s_mm_t *st = bs_calloc(1, sizeof *st);
    if (!st || !(st->qw = bs_calloc(1, sizeof *st->qw))) {
        bs_free(st);
        return bs_node_err(err, n, BS_ENOMEM, "out of memory");
    }
    n->state = st;
    st->M = M;
    st->N = N;
    st->K = K;
    st->nb = 1;
    st->flat = 1;
    bs__qw_spec_t sp = {.W = W, .sn = sn, .sk = sk, .N = N, .K = K, .G = 1, .bias = bias,
                        .alpha = alpha};
    int rc = bs__qw_prepare(g, n, &sp, st->qw, err);
    if (rc)
        return rc;
    n->weight_packed = 1;
    n->packed_bytes = st->qw->held;
    const bs_tensor_t *a = bs_node_input(g, n, 0);
    size_t off = 0;
    if (st->qw->int8 && (!a->quantized || ta || K % 4 != 0))
        off += bs__align64((size_t)M * (size_t)BS_QK_PAD(K));
    else if (!st->qw->int8 && n->prec.a == 8)
        off += bs__align64((size_t)M * (size_t)K * sizeof(float));
    st->off_gemm = off;
    off += bs__align64(bs__qw_gemm_scratch(st->qw, M, bs__threads(g)));
    n->scratch = off;
    return 0;
}

static int s_qmm_run(bs_graph_t *g, bs_node_t *n, bs_ctx_t *ctx, int ta)
{
    const s_mm_t *st = n->state;
    const bs__qw_t *q = st->qw;
    const bs_tensor_t *at = bs_node_input(g, n, 0);
    void *y = bs_node_output(g, n, 0)->data;
    char *scratch = ctx->scratch;
    int64_t M = st->M, K = st->K;
    if (q->int8) {
        const uint8_t *X = at->data;
        int64_t ldx = K;
        if (!at->quantized || ta || K % 4 != 0) {
            uint8_t *rows = (uint8_t *)(scratch + st->off_xq);
            ldx = BS_QK_PAD(K);
            for (int64_t m = 0; m < M; m++) {
                uint8_t *r = rows + m * ldx;
                if (at->quantized) {
                    const uint8_t *a = at->data;
                    for (int64_t k = 0; k < K; k++)
                        r[k] = ta ? a[k * M + m] : a[m * K + k];
                } else if (!ta) {
                    bs_quantize_u8((const float *)at->data + m * K, K, q->in.scale,
                                   q->in.zero_point, r);
                } else {
                    const float *a = at->data;
                    for (int64_t k = 0; k < K; k++)
                        bs_quantize_u8(a + k * M + m, 1, q->in.scale, q->in.zero_point, r + k);
                }
                memset(r + K, 0, (size_t)(ldx - K));
            }
            X = rows;
        }
        bs__qw_gemm_q(q, 0, (int)M, X, ldx, y, st->N, 1, scratch + st->off_gemm, ctx->pool);
        return 0;
    }
    const float *X = at->data;
    if (n->prec.a == 8) {
        bs__qw_qdq(q, X, M * K, (float *)(scratch + st->off_xq));
        X = (const float *)(scratch + st->off_xq);
    }
    bs__qw_gemm_f(q, 0, (int)M, X, ta ? 1 : K, ta ? M : 1, y, st->N, 1, n->act, n->act_lo,
                  n->act_hi, scratch + st->off_gemm, ctx->pool);
    return 0;
}

/* ---- Gemm --------------------------------------------------------------------------------- */

typedef struct s_gemm_dims {
    int64_t M, N, K;
    int ta, tb;
} s_gemm_dims_t;

static int s_gemm_check(bs_graph_t *g, const bs_node_t *n, s_gemm_dims_t *o, bs_err_t *err)
{
    bs_tensor_t *a, *b, *c = bs_node_input(g, n, 2);
    int rc;
    memset(o, 0, sizeof *o);
    if (n->n_in < 2 || n->n_in > 3)
        return bs_node_err(err, n, BS_EMODEL, "expected 2 or 3 inputs (A, B, optional C), got %d",
                           n->n_in);
    if ((rc = bs__input_f32(g, n, 0, "A", &a, err)) || (rc = bs__input_f32(g, n, 1, "B", &b, err)))
        return rc;
    if (a->shape.rank != 2 || b->shape.rank != 2)
        return bs_node_err(err, n, BS_EMODEL,
                           "inputs '%s' and '%s' must be 2-D matrices (ranks "
                           "%d and %d)",
                           a->name, b->name, a->shape.rank, b->shape.rank);
    o->ta = bs_attr_int(n, "transA", 0) != 0;
    o->tb = bs_attr_int(n, "transB", 0) != 0;
    o->M = a->shape.d[o->ta ? 1 : 0];
    o->K = a->shape.d[o->ta ? 0 : 1];
    int64_t kb = b->shape.d[o->tb ? 1 : 0];
    o->N = b->shape.d[o->tb ? 0 : 1];
    if (kb != o->K)
        return bs_node_err(err, n, BS_EMODEL,
                           "inner dimensions differ: A '%s' gives K = %lld, B '%s' gives %lld",
                           a->name, (long long)o->K, b->name, (long long)kb);
    if (o->M >= INT32_MAX || o->N >= INT32_MAX || o->K >= INT32_MAX)
        return bs_node_err(err, n, BS_EUNSUPPORTED, "matrix dimensions too large");
    if (c) {
        if (!c->has_shape || c->dtype != BS_DT_FLOAT)
            return bs_node_err(err, n, BS_EUNSUPPORTED, "input '%s' (C) must be float32", c->name);
        bs_shape_t mn = {.rank = 2, .d = {o->M, o->N}}, bc;
        if (c->shape.rank > 2 || bs_shape_broadcast(&c->shape, &mn, &bc) ||
            !bs_shape_eq(&bc, &mn)) {
            char buf[96];
            return bs_node_err(err, n, BS_EMODEL,
                               "input '%s' (C) of shape %s does not broadcast to [%lld,%lld]",
                               c->name, bs_shape_str(&c->shape, buf, sizeof buf), (long long)o->M,
                               (long long)o->N);
        }
    }
    return 0;
}

static int s_gemm_infer(bs_graph_t *g, bs_node_t *n, bs_err_t *err)
{
    s_gemm_dims_t o;
    bs_tensor_t *y;
    int rc = s_gemm_check(g, n, &o, err);
    if (rc || (rc = bs__output(g, n, 0, &y, err)) || (rc = s_one_output(n, err)))
        return rc;
    bs_shape_t ys = {.rank = 2, .d = {o.M, o.N}};
    bs_tensor_set(y, BS_DT_FLOAT, &ys);
    n->weight_layer = bs_node_input(g, n, 1)->kind == BS_TENSOR_CONST;
    return 0;
}

static int s_gemm_prepare(bs_graph_t *g, bs_node_t *n, bs_err_t *err)
{
    s_gemm_dims_t o;
    int rc = s_gemm_check(g, n, &o, err);
    if (rc)
        return rc;
    if (!bs_prec_eq(n->prec, BS_PREC_FP32)) {
        bs_tensor_t *b = bs_node_input(g, n, 1), *c = bs_node_input(g, n, 2);
        float alpha = bs_attr_float(n, "alpha", 1.0f), beta = bs_attr_float(n, "beta", 1.0f);
        float *bias = NULL;
        if (b->kind != BS_TENSOR_CONST || !b->data)
            return bs_node_err(err, n, BS_EINVAL, "a quantized precision needs a constant B");
        if (c && beta != 0.0f) {
            int64_t cn = bs_shape_numel(&c->shape);
            if (c->kind != BS_TENSOR_CONST || !c->data ||
                !(cn == 1 || (c->shape.d[c->shape.rank - 1] == o.N && cn == o.N)))
                return bs_node_err(err, n, BS_EUNSUPPORTED,
                                   "a quantized precision needs C '%s' to be a constant with "
                                   "one value per output column (or one value)",
                                   c->name);
            if (!(bias = bs_malloc(sizeof(float) * (size_t)o.N)))
                return bs_node_err(err, n, BS_ENOMEM, "out of memory");
            const float *cv = c->data;
            for (int64_t j = 0; j < o.N; j++)
                bias[j] = beta * cv[cn == 1 ? 0 : j];
        }
        rc = s_qmm_prepare(g, n, (int)o.M, (int)o.N, (int)o.K, b->data, o.tb ? o.K : 1,
                           o.tb ? 1 : o.N, bias, alpha, o.ta, err);
        bs_free(bias);
        n->bias_packed = c != NULL;
        return rc;
    }
    s_mm_release(n);
    s_mm_t *st = bs_calloc(1, sizeof *st);
    if (!st)
        return bs_node_err(err, n, BS_ENOMEM, "out of memory");
    n->state = st;
    st->M = (int)o.M;
    st->N = (int)o.N;
    st->K = (int)o.K;
    st->nb = 1;
    float alpha = bs_attr_float(n, "alpha", 1.0f), beta = bs_attr_float(n, "beta", 1.0f);
    bs_tensor_t *b = bs_node_input(g, n, 1), *c = bs_node_input(g, n, 2);
    int64_t sn = o.tb ? o.K : 1, sk = o.tb ? 1 : o.N;
    st->w_bytes = bs__align64(bs_gemm_packed_size(st->N, st->K));
    st->alpha_post = alpha;
    size_t off = 0;
    if (b->kind == BS_TENSOR_CONST && b->data) {
        st->wpacked = bs__aligned_alloc(st->w_bytes, &st->wraw);
        if (!st->wpacked)
            return bs_node_err(err, n, BS_ENOMEM, "out of memory packing '%s'", b->name);
        const float *src = b->data;
        float *tmp = NULL;
        if (alpha != 1.0f) {
            int64_t cnt = o.N * o.K;
            if (!(tmp = bs_malloc((size_t)cnt * sizeof(float))))
                return bs_node_err(err, n, BS_ENOMEM, "out of memory");
            for (int64_t i = 0; i < cnt; i++)
                tmp[i] = alpha * src[i];
            src = tmp;
        }
        bs_gemm_pack(src, sn, sk, st->N, st->K, st->wpacked);
        bs_free(tmp);
        n->weight_packed = 1;
        n->packed_bytes = st->w_bytes;
        st->alpha_post = 1.0f;
    } else {
        st->off_w = off;
        off += st->w_bytes;
    }
    st->post = st->alpha_post != 1.0f;
    if (c && beta != 0.0f) {
        int64_t cn = bs_shape_numel(&c->shape);
        int per_col = c->kind == BS_TENSOR_CONST && c->data &&
                      (cn == 1 || (c->shape.d[c->shape.rank - 1] == o.N && cn == o.N));
        if (per_col && !st->post) {
            if (!(st->bias = bs_malloc((size_t)o.N * sizeof(float))))
                return bs_node_err(err, n, BS_ENOMEM, "out of memory");
            const float *cv = c->data;
            for (int64_t j = 0; j < o.N; j++)
                st->bias[j] = beta * cv[cn == 1 ? 0 : j];
        } else {
            st->post = 1;
        }
    }
    st->off_gemm = off;
    off += bs__align64(bs_gemm_scratch_size(st->M, st->N, st->K, bs__threads(g)));
    n->scratch = off;
    return 0;
}

static int s_gemm_run(bs_graph_t *g, bs_node_t *n, bs_ctx_t *ctx)
{
    const s_mm_t *st = n->state;
    if (!st)
        return BS_EINVAL;
    if (st->qw)
        return s_qmm_run(g, n, ctx, bs_attr_int(n, "transA", 0) != 0);
    const bs_tensor_t *at = bs_node_input(g, n, 0), *bt = bs_node_input(g, n, 1);
    const bs_tensor_t *ct = bs_node_input(g, n, 2);
    float *y = bs_node_output(g, n, 0)->data;
    int ta = bs_attr_int(n, "transA", 0) != 0, tb = bs_attr_int(n, "transB", 0) != 0;
    char *scratch = ctx->scratch;
    const void *wp = st->wpacked;
    if (!wp) {
        bs_gemm_pack(bt->data, tb ? st->K : 1, tb ? 1 : st->N, st->N, st->K, scratch + st->off_w);
        wp = scratch + st->off_w;
    }
    int64_t sxm = ta ? 1 : st->K, sxk = ta ? st->M : 1;
    bs_gemm(st->M, st->N, st->K, at->data, sxm, sxk, wp, st->bias, y, st->N, 1,
            st->post ? BS_KACT_NONE : n->act, n->act_lo, n->act_hi, scratch + st->off_gemm,
            ctx->pool);
    if (!st->post)
        return 0;
    float beta = bs_attr_float(n, "beta", 1.0f), alpha = st->alpha_post;
    const float *c = ct && beta != 0.0f ? ct->data : NULL;
    int64_t cs[2] = {0, 0};
    bs_shape_t mn = {.rank = 2, .d = {st->M, st->N}};
    if (c)
        bs_shape_bcast_strides(&ct->shape, &mn, cs);
    for (int64_t i = 0; i < st->M; i++) {
        float *yr = y + i * st->N;
        for (int64_t j = 0; j < st->N; j++) {
            float v = alpha * yr[j];
            if (c)
                v += beta * c[i * cs[0] + j * cs[1]];
            yr[j] = s_act(v, n->act, n->act_lo, n->act_hi);
        }
    }
    return 0;
}

static const bs_op_t s_op_gemm = {
    .op_type = "Gemm",
    .infer = s_gemm_infer,
    .prepare = s_gemm_prepare,
    .run = s_gemm_run,
    .release = s_mm_release,
};

/* ---- MatMul ------------------------------------------------------------------------------- */

typedef struct s_mm_dims {
    int64_t M, N, K;
    bs_shape_t ab, bb, ob; /* batch shapes of A, B and the output */
    bs_shape_t out;
} s_mm_dims_t;

static int s_matmul_check(bs_graph_t *g, const bs_node_t *n, s_mm_dims_t *o, bs_err_t *err)
{
    bs_tensor_t *a, *b;
    int rc;
    memset(o, 0, sizeof *o);
    if (n->n_in != 2)
        return bs_node_err(err, n, BS_EMODEL, "expected 2 inputs, got %d", n->n_in);
    if ((rc = bs__input_f32(g, n, 0, "A", &a, err)) || (rc = bs__input_f32(g, n, 1, "B", &b, err)))
        return rc;
    int ra = a->shape.rank, rb = b->shape.rank;
    if (ra < 1 || rb < 1)
        return bs_node_err(err, n, BS_EMODEL,
                           "MatMul operands must have rank >= 1 ('%s' %d, "
                           "'%s' %d)",
                           a->name, ra, b->name, rb);
    o->M = ra == 1 ? 1 : a->shape.d[ra - 2];
    o->K = a->shape.d[ra - 1];
    int64_t kb = rb == 1 ? b->shape.d[0] : b->shape.d[rb - 2];
    o->N = rb == 1 ? 1 : b->shape.d[rb - 1];
    if (kb != o->K) {
        char s1[96], s2[96];
        return bs_node_err(err, n, BS_EMODEL,
                           "shapes %s ('%s') and %s ('%s') do not multiply: "
                           "%lld != %lld",
                           bs_shape_str(&a->shape, s1, sizeof s1), a->name,
                           bs_shape_str(&b->shape, s2, sizeof s2), b->name, (long long)o->K,
                           (long long)kb);
    }
    o->ab.rank = ra > 2 ? ra - 2 : 0;
    for (int i = 0; i < o->ab.rank; i++)
        o->ab.d[i] = a->shape.d[i];
    o->bb.rank = rb > 2 ? rb - 2 : 0;
    for (int i = 0; i < o->bb.rank; i++)
        o->bb.d[i] = b->shape.d[i];
    if (bs_shape_broadcast(&o->ab, &o->bb, &o->ob)) {
        char s1[96], s2[96];
        return bs_node_err(err, n, BS_EMODEL,
                           "batch dimensions of %s ('%s') and %s ('%s') do "
                           "not broadcast",
                           bs_shape_str(&a->shape, s1, sizeof s1), a->name,
                           bs_shape_str(&b->shape, s2, sizeof s2), b->name);
    }
    o->out = o->ob;
    if (ra > 1)
        o->out.d[o->out.rank++] = o->M;
    if (rb > 1)
        o->out.d[o->out.rank++] = o->N;
    if (o->M * bs_shape_numel(&o->ob) >= INT32_MAX || o->N >= INT32_MAX || o->K >= INT32_MAX)
        return bs_node_err(err, n, BS_EUNSUPPORTED, "matrix dimensions too large");
    return 0;
}

static int s_matmul_infer(bs_graph_t *g, bs_node_t *n, bs_err_t *err)
{
    s_mm_dims_t o;
    bs_tensor_t *y;
    int rc = s_matmul_check(g, n, &o, err);
    if (rc || (rc = bs__output(g, n, 0, &y, err)) || (rc = s_one_output(n, err)))
        return rc;
    bs_tensor_set(y, BS_DT_FLOAT, &o.out);
    n->weight_layer = bs_node_input(g, n, 1)->kind == BS_TENSOR_CONST;
    return 0;
}

static int s_matmul_prepare(bs_graph_t *g, bs_node_t *n, bs_err_t *err)
{
    s_mm_dims_t o;
    int rc = s_matmul_check(g, n, &o, err);
    if (rc)
        return rc;
    if (!bs_prec_eq(n->prec, BS_PREC_FP32)) {
        bs_tensor_t *b = bs_node_input(g, n, 1);
        if (b->kind != BS_TENSOR_CONST || !b->data || bs_shape_numel(&o.bb) != 1)
            return bs_node_err(err, n, BS_EUNSUPPORTED,
                               "a quantized precision needs B '%s' to be one constant matrix",
                               b->name);
        int64_t rows = o.M * bs_shape_numel(&o.ob);
        if (rows >= INT32_MAX)
            return bs_node_err(err, n, BS_EUNSUPPORTED, "too many rows");
        return s_qmm_prepare(g, n, (int)rows, (int)o.N, (int)o.K, b->data, 1, o.N, NULL, 1.0f,
                             0, err);
    }
    s_mm_release(n);
    s_mm_t *st = bs_calloc(1, sizeof *st);
    if (!st)
        return bs_node_err(err, n, BS_ENOMEM, "out of memory");
    n->state = st;
    st->N = (int)o.N;
    st->K = (int)o.K;
    st->nbatch = bs_shape_numel(&o.ob);
    st->obatch = o.ob;
    int64_t nbb = bs_shape_numel(&o.bb);
    st->flat = nbb == 1;
    st->M = (int)(st->flat ? o.M * st->nbatch : o.M);
    bs_shape_bcast_strides(&o.ab, &o.ob, st->a_str);
    bs_shape_bcast_strides(&o.bb, &o.ob, st->b_str);
    st->w_bytes = bs__align64(bs_gemm_packed_size(st->N, st->K));
    bs_tensor_t *b = bs_node_input(g, n, 1);
    size_t off = 0;
    if (b->kind == BS_TENSOR_CONST && b->data) {
        st->nb = (int)nbb;
        st->wpacked = bs__aligned_alloc(st->w_bytes * (size_t)nbb, &st->wraw);
        if (!st->wpacked)
            return bs_node_err(err, n, BS_ENOMEM, "out of memory packing '%s'", b->name);
        const float *bd = b->data;
        for (int64_t i = 0; i < nbb; i++)
            bs_gemm_pack(bd + i * o.K * o.N, 1, o.N, st->N, st->K, st->wpacked + i * st->w_bytes);
        n->weight_packed = 1;
        n->packed_bytes = st->w_bytes * (size_t)nbb;
    } else {
        st->off_w = off;
        off += st->w_bytes;
    }
    st->off_gemm = off;
    off += bs__align64(bs_gemm_scratch_size(st->M, st->N, st->K, bs__threads(g)));
    n->scratch = off;
    return 0;
}

static int s_matmul_run(bs_graph_t *g, bs_node_t *n, bs_ctx_t *ctx)
{
    const s_mm_t *st = n->state;
    if (!st)
        return BS_EINVAL;
    if (st->qw)
        return s_qmm_run(g, n, ctx, 0);
    const float *a = bs_node_input(g, n, 0)->data, *b = bs_node_input(g, n, 1)->data;
    float *y = bs_node_output(g, n, 0)->data;
    char *scratch = ctx->scratch;
    if (st->flat) { /* B is one matrix: every row of every batch of A in one product */
        const void *wp = st->wpacked;
        if (!wp) {
            bs_gemm_pack(b, 1, st->N, st->N, st->K, scratch + st->off_w);
            wp = scratch + st->off_w;
        }
        bs_gemm(st->M, st->N, st->K, a, st->K, 1, wp, NULL, y, st->N, 1, n->act, n->act_lo,
                n->act_hi, scratch + st->off_gemm, ctx->pool);
        return 0;
    }
    int r = st->obatch.rank;
    int64_t idx[BS_MAX_RANK] = {0};
    int64_t MK = (int64_t)st->M * st->K, KN = (int64_t)st->K * st->N;
    int64_t MN = (int64_t)st->M * st->N;
    for (int64_t ob = 0; ob < st->nbatch; ob++) {
        int64_t ai = 0, bi = 0;
        for (int i = 0; i < r; i++) {
            ai += idx[i] * st->a_str[i];
            bi += idx[i] * st->b_str[i];
        }
        const void *wp;
        if (st->wpacked) {
            wp = st->wpacked + bi * st->w_bytes;
        } else {
            bs_gemm_pack(b + bi * KN, 1, st->N, st->N, st->K, scratch + st->off_w);
            wp = scratch + st->off_w;
        }
        bs_gemm(st->M, st->N, st->K, a + ai * MK, st->K, 1, wp, NULL, y + ob * MN, st->N, 1,
                n->act, n->act_lo, n->act_hi, scratch + st->off_gemm, ctx->pool);
        for (int i = r - 1; i >= 0; i--) {
            if (++idx[i] < st->obatch.d[i])
                break;
            idx[i] = 0;
        }
    }
    return 0;
}

static const bs_op_t s_op_matmul = {
    .op_type = "MatMul",
    .infer = s_matmul_infer,
    .prepare = s_matmul_prepare,
    .run = s_matmul_run,
    .release = s_mm_release,
};

/* ---- BatchNormalization (inference) -------------------------------------------------------- */

static int s_bn_infer(bs_graph_t *g, bs_node_t *n, bs_err_t *err)
{
    static const char *const what[] = {"X", "scale", "B", "mean", "var"};
    bs_tensor_t *t[5], *y;
    int rc;
    if (n->n_in != 5)
        return bs_node_err(err, n, BS_EMODEL, "expected 5 inputs (X, scale, B, mean, var), got %d",
                           n->n_in);
    for (int i = 0; i < 5; i++)
        if ((rc = bs__input_f32(g, n, i, what[i], &t[i], err)))
            return rc;
    if (bs_attr_int(n, "training_mode", 0) != 0)
        return bs_node_err(err, n, BS_EUNSUPPORTED,
                           "training_mode = 1 is not supported (inference only)");
    if (bs_attr_int(n, "spatial", 1) != 1)
        return bs_node_err(err, n, BS_EUNSUPPORTED, "spatial = 0 is not supported");
    for (int k = 1; k < n->n_out; k++)
        if (bs_node_output(g, n, k))
            return bs_node_err(err, n, BS_EUNSUPPORTED,
                               "output %d (training statistics) is not supported", k);
    if (t[0]->shape.rank < 2)
        return bs_node_err(err, n, BS_EMODEL, "input '%s' must have rank >= 2 (N, C, ...)",
                           t[0]->name);
    int64_t C = t[0]->shape.d[1];
    for (int i = 1; i < 5; i++)
        if (bs_shape_numel(&t[i]->shape) != C || t[i]->shape.rank != 1)
            return bs_node_err(err, n, BS_EMODEL,
                               "input '%s' (%s) must have shape [%lld] (one per channel)",
                               t[i]->name, what[i], (long long)C);
    if ((rc = bs__output(g, n, 0, &y, err)))
        return rc;
    bs_tensor_set(y, BS_DT_FLOAT, &t[0]->shape);
    return 0;
}

static int s_bn_run(bs_graph_t *g, bs_node_t *n, bs_ctx_t *ctx)
{
    (void)ctx;
    const bs_tensor_t *xt = bs_node_input(g, n, 0);
    const float *x = xt->data, *sc = bs_node_input(g, n, 1)->data;
    const float *bb = bs_node_input(g, n, 2)->data, *mean = bs_node_input(g, n, 3)->data;
    const float *var = bs_node_input(g, n, 4)->data;
    float *y = bs_node_output(g, n, 0)->data;
    float eps = bs_attr_float(n, "epsilon", 1e-5f);
    int64_t N = xt->shape.d[0], C = xt->shape.d[1];
    int64_t P = bs_shape_numel(&xt->shape) / (N * C > 0 ? N * C : 1);
    for (int64_t c = 0; c < C; c++) {
        float a = sc[c] / sqrtf(var[c] + eps), b = bb[c] - mean[c] * a;
        for (int64_t i = 0; i < N; i++) {
            const float *xc = x + (i * C + c) * P;
            float *yc = y + (i * C + c) * P;
            for (int64_t p = 0; p < P; p++)
                yc[p] = xc[p] * a + b;
        }
    }
    return 0;
}

static const bs_op_t s_op_bn = {
    .op_type = "BatchNormalization",
    .infer = s_bn_infer,
    .run = s_bn_run,
    .foldable = 1,
};

/* ---- MaxPool, AveragePool ---------------------------------------------------------------- */

typedef struct s_pool {
    int ns;
    int64_t NC;
    int64_t in[3], k[3], s[3], d[3], ph[3], pt[3], out[3];
    int64_t Pin, Pout;
} s_pool_t;

static void s_promote3(int ns, const int64_t *v, int64_t fill, int64_t *out3)
{
    for (int i = 0; i < 3; i++)
        out3[i] = i < 3 - ns ? fill : v[i - (3 - ns)];
}

static int s_pool_geom(bs_graph_t *g, const bs_node_t *n, int is_max, s_pool_t *p,
                       bs_tensor_t **xout, bs_err_t *err)
{
    bs_tensor_t *x = bs_node_input(g, n, 0);
    memset(p, 0, sizeof *p);
    if (xout)
        *xout = x;
    if (n->n_in != 1 || !x)
        return bs_node_err(err, n, BS_EMODEL, "expected 1 input, got %d", n->n_in);
    if (!x->has_shape)
        return bs_node_err(err, n, BS_EMODEL, "input '%s' has no inferred shape", x->name);
    int okdt =
        x->dtype == BS_DT_FLOAT || (is_max && (x->dtype == BS_DT_UINT8 || x->dtype == BS_DT_INT8));
    if (!okdt)
        return bs_node_err(err, n, BS_EUNSUPPORTED, "input '%s' is %s; supported: float32%s",
                           x->name, bs_dtype_name(x->dtype), is_max ? ", uint8, int8" : "");
    int r = x->shape.rank;
    if (r < 3 || r > 5)
        return bs_node_err(err, n, BS_EUNSUPPORTED,
                           "input '%s' has rank %d; expected 3 to 5 (N, C and 1 to 3 spatial "
                           "axes)",
                           x->name, r);
    int ns = r - 2;
    const int64_t *ks;
    int nk = bs_attr_ints(n, "kernel_shape", &ks);
    if (nk != ns)
        return bs_node_err(err, n, BS_EMODEL,
                           nk < 0 ? "attribute 'kernel_shape' is required (%d values)"
                                  : "attribute 'kernel_shape' must have %d values",
                           ns);
    int64_t in[3], s[3], d[3], ph[3], pt[3], out[3];
    for (int i = 0; i < ns; i++) {
        in[i] = x->shape.d[2 + i];
        if (ks[i] < 1)
            return bs_node_err(err, n, BS_EMODEL,
                               "attribute 'kernel_shape'[%d] = %lld must be "
                               ">= 1",
                               i, (long long)ks[i]);
    }
    int ceil_mode = bs_attr_int(n, "ceil_mode", 0) != 0;
    int rc = bs__spatial_dims(n, ns, in, ks, ceil_mode, s, d, ph, pt, out, err);
    if (rc)
        return rc;
    p->ns = ns;
    p->NC = x->shape.d[0] * x->shape.d[1];
    s_promote3(ns, in, 1, p->in);
    s_promote3(ns, ks, 1, p->k);
    s_promote3(ns, s, 1, p->s);
    s_promote3(ns, d, 1, p->d);
    s_promote3(ns, ph, 0, p->ph);
    s_promote3(ns, pt, 0, p->pt);
    s_promote3(ns, out, 1, p->out);
    p->Pin = p->in[0] * p->in[1] * p->in[2];
    p->Pout = p->out[0] * p->out[1] * p->out[2];
    if (xout)
        *xout = x;
    return 0;
}

static int s_pool_infer(bs_graph_t *g, bs_node_t *n, int is_max, bs_err_t *err)
{
    s_pool_t p;
    bs_tensor_t *x, *y;
    int rc = s_pool_geom(g, n, is_max, &p, &x, err);
    if (rc || (rc = bs__output(g, n, 0, &y, err)))
        return rc;
    if (n->n_out > (is_max ? 2 : 1))
        return bs_node_err(err, n, BS_EMODEL, "expected at most %d output(s), got %d",
                           is_max ? 2 : 1, n->n_out);
    bs_shape_t ys = x->shape;
    for (int i = 0; i < p.ns; i++)
        ys.d[2 + i] = p.out[3 - p.ns + i];
    bs_tensor_set(y, x->dtype, &ys);
    bs_tensor_t *ind = n->n_out > 1 ? bs_node_output(g, n, 1) : NULL;
    if (ind)
        bs_tensor_set(ind, BS_DT_INT64, &ys);
    return 0;
}

static int s_maxpool_infer(bs_graph_t *g, bs_node_t *n, bs_err_t *err)
{
    int64_t so = bs_attr_int(n, "storage_order", 0);
    if (so != 0 && so != 1)
        return bs_node_err(err, n, BS_EMODEL, "attribute 'storage_order' = %lld must be 0 or 1",
                           (long long)so);
    return s_pool_infer(g, n, 1, err);
}

static int s_avgpool_infer(bs_graph_t *g, bs_node_t *n, bs_err_t *err)
{
    return s_pool_infer(g, n, 0, err);
}

/* Max over the window's in-range taps; ind (optional) gets the flat input index of the max:
 * row-major, or column-major over the spatial axes when colmajor. */
#define S_DEFINE_MAXPOOL(NAME, T, LOWEST)                                                         \
    static void NAME(const s_pool_t *p, const T *x, T *y, int64_t *ind, int colmajor)             \
    {                                                                                             \
        const int64_t ID = p->in[0], IH = p->in[1], IW = p->in[2];                                \
        for (int64_t nc = 0; nc < p->NC; nc++) {                                                  \
            const T *xc = x + nc * p->Pin;                                                        \
            int64_t o = nc * p->Pout;                                                             \
            for (int64_t od = 0; od < p->out[0]; od++)                                            \
                for (int64_t oh = 0; oh < p->out[1]; oh++)                                        \
                    for (int64_t ow = 0; ow < p->out[2]; ow++, o++) {                             \
                        int64_t d0 = od * p->s[0] - p->ph[0], h0 = oh * p->s[1] - p->ph[1];       \
                        int64_t w0 = ow * p->s[2] - p->ph[2];                                     \
                        T best = LOWEST;                                                          \
                        int64_t bd = 0, bh = 0, bw = 0;                                           \
                        int found = 0;                                                            \
                        for (int64_t kd = 0; kd < p->k[0]; kd++) {                                \
                            int64_t id = d0 + kd * p->d[0];                                       \
                            if (id < 0 || id >= ID)                                               \
                                continue;                                                         \
                            for (int64_t kh = 0; kh < p->k[1]; kh++) {                            \
                                int64_t ih = h0 + kh * p->d[1];                                   \
                                if (ih < 0 || ih >= IH)                                           \
                                    continue;                                                     \
                                const T *xr = xc + (id * IH + ih) * IW;                           \
                                for (int64_t kw = 0; kw < p->k[2]; kw++) {                        \
                                    int64_t iw = w0 + kw * p->d[2];                               \
                                    if (iw < 0 || iw >= IW)                                       \
                                        continue;                                                 \
                                    if (!found || xr[iw] > best) {                                \
                                        best = xr[iw];                                            \
                                        bd = id;                                                  \
                                        bh = ih;                                                  \
                                        bw = iw;                                                  \
                                        found = 1;                                                \
                                    }                                                             \
                                }                                                                 \
                            }                                                                     \
                        }                                                                         \
                        y[o] = best;                                                              \
                        if (ind)                                                                  \
                            ind[o] = nc * p->Pin + (colmajor ? bd + bh * ID + bw * ID * IH        \
                                                             : (bd * IH + bh) * IW + bw);         \
                    }                                                                             \
        }                                                                                         \
    }

S_DEFINE_MAXPOOL(s_maxpool_f32, float, -INFINITY)
S_DEFINE_MAXPOOL(s_maxpool_u8, uint8_t, 0)
S_DEFINE_MAXPOOL(s_maxpool_i8, int8_t, INT8_MIN)

/* Taps t in [0, k) with 0 <= s + t * d < n: [*t0, *t1). */
static void s_tap_range(int64_t s, int64_t k, int64_t d, int64_t n, int64_t *t0, int64_t *t1)
{
    int64_t a = s < 0 ? (-s + d - 1) / d : 0;
    int64_t b = n - s <= 0 ? 0 : (n - s + d - 1) / d;
    b = b > k ? k : b;
    *t0 = a;
    *t1 = b < a ? a : b;
}

/* Taps inside the padded extent (s >= -pad before always holds): count_include_pad. */
static int64_t s_tap_padded(int64_t s, int64_t k, int64_t d, int64_t n, int64_t pad_end)
{
    int64_t b = n + pad_end - s <= 0 ? 0 : (n + pad_end - s + d - 1) / d;
    return b > k ? k : b;
}

#define S_POOL_ACC(acc, v) ((is_max) ? ((v) > (acc) ? (v) : (acc)) : (acc) + (v))

/* Float max / average pooling over 1-D and 2-D planes (D == 1): per output row the valid
 * kernel rows are computed once, and the columns whose window lies inside the row (the
 * interior) run without bounds checks, 2x2 and 3x3 windows unrolled. incl:
 * count_include_pad. Inlined into s_maxpool2d / s_avgpool2d with is_max constant. */
static inline __attribute__((always_inline)) void
s_pool2d_f32(const s_pool_t *p, const float *x, float *y, const int is_max, int incl)
{
    const int64_t IH = p->in[1], IW = p->in[2], OH = p->out[1], OW = p->out[2];
    const int64_t KH = p->k[1], KW = p->k[2], sh = p->s[1], sw = p->s[2];
    const int64_t dh = p->d[1], dw = p->d[2], pt = p->ph[1], pl = p->ph[2];
    /* interior columns: ow * sw - pl >= 0 and ow * sw - pl + (KW - 1) * dw < IW */
    int64_t owa = (pl + sw - 1) / sw, lim = IW - 1 - (KW - 1) * dw + pl;
    int64_t owb = lim < 0 ? 0 : lim / sw + 1;
    owa = owa > OW ? OW : owa;
    owb = owb > OW ? OW : (owb < owa ? owa : owb);
    for (int64_t nc = 0; nc < p->NC; nc++) {
        const float *xc = x + nc * IH * IW;
        for (int64_t oh = 0; oh < OH; oh++) {
            float *yr = y + (nc * OH + oh) * OW;
            int64_t h0 = oh * sh - pt, kh0, kh1;
            s_tap_range(h0, KH, dh, IH, &kh0, &kh1);
            int64_t nh = kh1 - kh0, ph = incl ? s_tap_padded(h0, KH, dh, IH, p->pt[1]) : nh;
            const float *xr = xc + (h0 + kh0 * dh) * IW;
            for (int64_t ow = 0; ow < OW; ow++) {
                int64_t w0 = ow * sw - pl;
                if (ow == owa && owb > owa) {
                    float div = (float)(ph * KW), inv = div > 0.0f ? 1.0f / div : 0.0f;
                    const int64_t rs = dh * IW;
                    if (nh == 2 && KW == 2 && dw == 1) {
                        for (; ow < owb; ow++) {
                            const float *q = xr + ow * sw - pl;
                            float acc = q[0];
                            acc = S_POOL_ACC(acc, q[1]);
                            acc = S_POOL_ACC(acc, q[rs]);
                            acc = S_POOL_ACC(acc, q[rs + 1]);
                            yr[ow] = is_max ? acc : acc * inv;
                        }
                    } else if (nh == 3 && KW == 3 && dw == 1) {
                        for (; ow < owb; ow++) {
                            const float *q = xr + ow * sw - pl;
                            float acc = q[0];
                            acc = S_POOL_ACC(acc, q[1]);
                            acc = S_POOL_ACC(acc, q[2]);
                            acc = S_POOL_ACC(acc, q[rs]);
                            acc = S_POOL_ACC(acc, q[rs + 1]);
                            acc = S_POOL_ACC(acc, q[rs + 2]);
                            acc = S_POOL_ACC(acc, q[2 * rs]);
                            acc = S_POOL_ACC(acc, q[2 * rs + 1]);
                            acc = S_POOL_ACC(acc, q[2 * rs + 2]);
                            yr[ow] = is_max ? acc : acc * inv;
                        }
                    }
                    for (; ow < owb; ow++) {
                        const float *xp = xr + ow * sw - pl;
                        float acc = is_max ? -INFINITY : 0.0f;
                        for (int64_t kh = 0; kh < nh; kh++, xp += rs)
                            for (int64_t kw = 0; kw < KW; kw++)
                                acc = S_POOL_ACC(acc, xp[kw * dw]);
                        yr[ow] = is_max ? acc : (div > 0.0f ? acc / div : 0.0f);
                    }
                    if (ow >= OW)
                        break;
                    w0 = ow * sw - pl;
                }
                int64_t kw0, kw1;
                s_tap_range(w0, KW, dw, IW, &kw0, &kw1);
                float acc = is_max ? -INFINITY : 0.0f;
                for (int64_t kh = 0; kh < nh; kh++)
                    for (int64_t kw = kw0; kw < kw1; kw++)
                        acc = S_POOL_ACC(acc, xr[kh * dh * IW + w0 + kw * dw]);
                int64_t pw = incl ? s_tap_padded(w0, KW, dw, IW, p->pt[2]) : kw1 - kw0;
                float div = (float)(ph * pw);
                yr[ow] = is_max ? acc : (div > 0.0f ? acc / div : 0.0f);
            }
        }
    }
}

static void s_maxpool2d(const s_pool_t *p, const float *x, float *y)
{
    s_pool2d_f32(p, x, y, 1, 0);
}

static void s_avgpool2d(const s_pool_t *p, const float *x, float *y, int incl)
{
    s_pool2d_f32(p, x, y, 0, incl);
}

/* uint8 max pooling over 1-D / 2-D planes without indices (the int8 layers' tensors): per
 * output row the valid kernel rows once, and per output the valid columns, no index tracking;
 * the common 2x2 stride-2 window gets its own loop, which the compiler vectorises. */
static void s_maxpool2d_u8(const s_pool_t *p, const uint8_t *x, uint8_t *y)
{
    const int64_t IH = p->in[1], IW = p->in[2], OH = p->out[1], OW = p->out[2];
    const int64_t KH = p->k[1], KW = p->k[2], sh = p->s[1], sw = p->s[2];
    const int64_t dh = p->d[1], dw = p->d[2], pt = p->ph[1], pl = p->ph[2];
    for (int64_t nc = 0; nc < p->NC; nc++) {
        const uint8_t *xc = x + nc * IH * IW;
        for (int64_t oh = 0; oh < OH; oh++) {
            uint8_t *yr = y + (nc * OH + oh) * OW;
            int64_t h0 = oh * sh - pt, kh0, kh1;
            s_tap_range(h0, KH, dh, IH, &kh0, &kh1);
            const uint8_t *r0 = xc + (h0 + kh0 * dh) * IW;
            if (KH == 2 && KW == 2 && sw == 2 && dw == 1 && pl == 0 && kh1 - kh0 == 2 &&
                2 * OW <= IW) {
                const uint8_t *r1 = r0 + dh * IW;
                for (int64_t ow = 0; ow < OW; ow++) {
                    uint8_t a = r0[2 * ow] > r0[2 * ow + 1] ? r0[2 * ow] : r0[2 * ow + 1];
                    uint8_t b = r1[2 * ow] > r1[2 * ow + 1] ? r1[2 * ow] : r1[2 * ow + 1];
                    yr[ow] = a > b ? a : b;
                }
                continue;
            }
            for (int64_t ow = 0; ow < OW; ow++) {
                int64_t w0 = ow * sw - pl, kw0, kw1;
                s_tap_range(w0, KW, dw, IW, &kw0, &kw1);
                uint8_t best = 0;
                for (int64_t kh = kh0; kh < kh1; kh++) {
                    const uint8_t *xr = r0 + (kh - kh0) * dh * IW + w0;
                    for (int64_t kw = kw0; kw < kw1; kw++)
                        best = xr[kw * dw] > best ? xr[kw * dw] : best;
                }
                yr[ow] = best;
            }
        }
    }
}

static int s_maxpool_run(bs_graph_t *g, bs_node_t *n, bs_ctx_t *ctx)
{
    (void)ctx;
    s_pool_t p;
    bs_tensor_t *x;
    if (s_pool_geom(g, n, 1, &p, &x, NULL))
        return BS_EINVAL;
    bs_tensor_t *yt = bs_node_output(g, n, 0);
    bs_tensor_t *it = n->n_out > 1 ? bs_node_output(g, n, 1) : NULL;
    int64_t *ind = it ? it->data : NULL;
    int cm = bs_attr_int(n, "storage_order", 0) == 1;
    if (x->dtype == BS_DT_FLOAT && !ind && p.ns <= 2)
        s_maxpool2d(&p, x->data, yt->data);
    else if (x->dtype == BS_DT_FLOAT)
        s_maxpool_f32(&p, x->data, yt->data, ind, cm);
    else if (x->dtype == BS_DT_UINT8 && !ind && p.ns <= 2)
        s_maxpool2d_u8(&p, x->data, yt->data);
    else if (x->dtype == BS_DT_UINT8)
        s_maxpool_u8(&p, x->data, yt->data, ind, cm);
    else
        s_maxpool_i8(&p, x->data, yt->data, ind, cm);
    return 0;
}

static int s_avgpool_run(bs_graph_t *g, bs_node_t *n, bs_ctx_t *ctx)
{
    (void)ctx;
    s_pool_t p;
    bs_tensor_t *xt;
    if (s_pool_geom(g, n, 0, &p, &xt, NULL))
        return BS_EINVAL;
    const float *x = xt->data;
    float *y = bs_node_output(g, n, 0)->data;
    int incl = bs_attr_int(n, "count_include_pad", 0) != 0;
    if (p.ns <= 2) {
        s_avgpool2d(&p, x, y, incl);
        return 0;
    }
    const int64_t ID = p.in[0], IH = p.in[1], IW = p.in[2];
    for (int64_t nc = 0; nc < p.NC; nc++) {
        const float *xc = x + nc * p.Pin;
        int64_t o = nc * p.Pout;
        for (int64_t od = 0; od < p.out[0]; od++)
            for (int64_t oh = 0; oh < p.out[1]; oh++)
                for (int64_t ow = 0; ow < p.out[2]; ow++, o++) {
                    int64_t st[3] = {od * p.s[0] - p.ph[0], oh * p.s[1] - p.ph[1],
                                     ow * p.s[2] - p.ph[2]};
                    /* taps inside the padded extent, per axis (count_include_pad) */
                    int64_t padded = 1;
                    for (int a = 0; a < 3; a++) {
                        int64_t c = 0;
                        for (int64_t t = 0; t < p.k[a]; t++)
                            c += st[a] + t * p.d[a] < p.in[a] + p.pt[a];
                        padded *= c;
                    }
                    float sum = 0.0f;
                    int64_t cnt = 0;
                    for (int64_t kd = 0; kd < p.k[0]; kd++) {
                        int64_t id = st[0] + kd * p.d[0];
                        if (id < 0 || id >= ID)
                            continue;
                        for (int64_t kh = 0; kh < p.k[1]; kh++) {
                            int64_t ih = st[1] + kh * p.d[1];
                            if (ih < 0 || ih >= IH)
                                continue;
                            const float *xr = xc + (id * IH + ih) * IW;
                            for (int64_t kw = 0; kw < p.k[2]; kw++) {
                                int64_t iw = st[2] + kw * p.d[2];
                                if (iw < 0 || iw >= IW)
                                    continue;
                                sum += xr[iw];
                                cnt++;
                            }
                        }
                    }
                    int64_t div = incl ? padded : cnt;
                    y[o] = div > 0 ? sum / (float)div : 0.0f;
                }
    }
    return 0;
}

static const bs_op_t s_op_maxpool = {
    .op_type = "MaxPool",
    .infer = s_maxpool_infer,
    .run = s_maxpool_run,
    .foldable = 1,
};

static const bs_op_t s_op_avgpool = {
    .op_type = "AveragePool",
    .infer = s_avgpool_infer,
    .run = s_avgpool_run,
    .foldable = 1,
};

/* ---- GlobalAveragePool, GlobalMaxPool ------------------------------------------------------ */

static int s_global_infer(bs_graph_t *g, bs_node_t *n, bs_err_t *err)
{
    bs_tensor_t *x, *y;
    int rc;
    if (n->n_in != 1)
        return bs_node_err(err, n, BS_EMODEL, "expected 1 input, got %d", n->n_in);
    if ((rc = bs__input_f32(g, n, 0, "X", &x, err)) || (rc = bs__output(g, n, 0, &y, err)) ||
        (rc = s_one_output(n, err)))
        return rc;
    if (x->shape.rank < 2)
        return bs_node_err(err, n, BS_EMODEL, "input '%s' must have rank >= 2 (N, C, ...)",
                           x->name);
    bs_shape_t ys = x->shape;
    for (int i = 2; i < ys.rank; i++)
        ys.d[i] = 1;
    bs_tensor_set(y, BS_DT_FLOAT, &ys);
    return 0;
}

static int s_global_run(bs_graph_t *g, bs_node_t *n, int is_max)
{
    const bs_tensor_t *xt = bs_node_input(g, n, 0);
    const float *x = xt->data;
    float *y = bs_node_output(g, n, 0)->data;
    int64_t NC = xt->shape.d[0] * xt->shape.d[1];
    int64_t P = NC ? bs_shape_numel(&xt->shape) / NC : 0;
    for (int64_t i = 0; i < NC; i++) {
        const float *xc = x + i * P;
        if (is_max) {
            float m = -INFINITY;
            for (int64_t p = 0; p < P; p++)
                m = xc[p] > m ? xc[p] : m;
            y[i] = m;
        } else {
            float s = 0.0f;
            for (int64_t p = 0; p < P; p++)
                s += xc[p];
            y[i] = P ? s / (float)P : 0.0f;
        }
    }
    return 0;
}

static int s_gap_run(bs_graph_t *g, bs_node_t *n, bs_ctx_t *ctx)
{
    (void)ctx;
    return s_global_run(g, n, 0);
}

static int s_gmp_run(bs_graph_t *g, bs_node_t *n, bs_ctx_t *ctx)
{
    (void)ctx;
    return s_global_run(g, n, 1);
}

static const bs_op_t s_op_gap = {
    .op_type = "GlobalAveragePool",
    .infer = s_global_infer,
    .run = s_gap_run,
    .foldable = 1,
};

static const bs_op_t s_op_gmp = {
    .op_type = "GlobalMaxPool",
    .infer = s_global_infer,
    .run = s_gmp_run,
    .foldable = 1,
};

/* ---- Softmax, LogSoftmax ------------------------------------------------------------------ */

/* (outer, len, inner) view: opset < 13 flattens [axis, rank) into the softmax axis. */
static int s_softmax_view(bs_graph_t *g, const bs_node_t *n, int64_t *outer, int64_t *len,
                          int64_t *inner, bs_err_t *err)
{
    bs_tensor_t *x;
    int rc = bs__input_f32(g, n, 0, "input", &x, err);
    *outer = *len = *inner = 1;
    if (rc)
        return rc;
    if (n->n_in != 1)
        return bs_node_err(err, n, BS_EMODEL, "expected 1 input, got %d", n->n_in);
    int r = x->shape.rank, legacy = g->opset < 13;
    if (r < 1)
        return bs_node_err(err, n, BS_EMODEL, "input '%s' must have rank >= 1", x->name);
    int64_t axis = bs_attr_int(n, "axis", legacy ? 1 : -1);
    if (axis < -r || axis >= r)
        return bs_node_err(err, n, BS_EMODEL,
                           "attribute 'axis' = %lld is out of range for "
                           "rank %d",
                           (long long)axis, r);
    if (axis < 0)
        axis += r;
    *outer = *len = *inner = 1;
    for (int i = 0; i < r; i++) {
        if (i < axis)
            *outer *= x->shape.d[i];
        else if (i == axis || legacy)
            *len *= x->shape.d[i];
        else
            *inner *= x->shape.d[i];
    }
    return 0;
}

static int s_softmax_infer(bs_graph_t *g, bs_node_t *n, bs_err_t *err)
{
    int64_t o, l, i;
    bs_tensor_t *y;
    int rc = s_softmax_view(g, n, &o, &l, &i, err);
    if (rc || (rc = bs__output(g, n, 0, &y, err)) || (rc = s_one_output(n, err)))
        return rc;
    bs_tensor_set(y, BS_DT_FLOAT, &bs_node_input(g, n, 0)->shape);
    return 0;
}

static int s_softmax_any(bs_graph_t *g, bs_node_t *n, int is_log)
{
    int64_t outer, len, inner;
    if (s_softmax_view(g, n, &outer, &len, &inner, NULL))
        return BS_EINVAL;
    const float *x = bs_node_input(g, n, 0)->data;
    float *y = bs_node_output(g, n, 0)->data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t in = 0; in < inner; in++) {
            const float *xs = x + o * len * inner + in;
            float *ys = y + o * len * inner + in;
            float m = -INFINITY;
            for (int64_t j = 0; j < len; j++)
                m = xs[j * inner] > m ? xs[j * inner] : m;
            double sum = 0.0;
            for (int64_t j = 0; j < len; j++) {
                float e = expf(xs[j * inner] - m);
                sum += e;
                if (!is_log)
                    ys[j * inner] = e;
            }
            if (is_log) {
                float ls = (float)log(sum);
                for (int64_t j = 0; j < len; j++)
                    ys[j * inner] = xs[j * inner] - m - ls;
            } else {
                float inv = (float)(1.0 / sum);
                for (int64_t j = 0; j < len; j++)
                    ys[j * inner] *= inv;
            }
        }
    return 0;
}

static int s_softmax_run(bs_graph_t *g, bs_node_t *n, bs_ctx_t *ctx)
{
    (void)ctx;
    return s_softmax_any(g, n, 0);
}

static int s_logsoftmax_run(bs_graph_t *g, bs_node_t *n, bs_ctx_t *ctx)
{
    (void)ctx;
    return s_softmax_any(g, n, 1);
}

static const bs_op_t s_op_softmax = {
    .op_type = "Softmax",
    .infer = s_softmax_infer,
    .run = s_softmax_run,
    .foldable = 1,
};

static const bs_op_t s_op_logsoftmax = {
    .op_type = "LogSoftmax",
    .infer = s_softmax_infer,
    .run = s_logsoftmax_run,
    .foldable = 1,
};

/* ---- LayerNormalization -------------------------------------------------------------------- */

static int s_ln_axis(bs_graph_t *g, const bs_node_t *n, int *axis, bs_err_t *err)
{
    bs_tensor_t *x;
    int rc = bs__input_f32(g, n, 0, "X", &x, err);
    *axis = 0;
    if (rc)
        return rc;
    int r = x->shape.rank;
    int64_t a = bs_attr_int(n, "axis", -1);
    if (r < 1 || a < -r || a >= r)
        return bs_node_err(err, n, BS_EMODEL,
                           "attribute 'axis' = %lld is out of range for "
                           "rank %d",
                           (long long)a, r);
    *axis = (int)(a < 0 ? a + r : a);
    return 0;
}

static int s_ln_infer(bs_graph_t *g, bs_node_t *n, bs_err_t *err)
{
    int axis, rc;
    bs_tensor_t *x, *s, *b = bs_node_input(g, n, 2), *y;
    if (n->n_in < 2 || n->n_in > 3)
        return bs_node_err(err, n, BS_EMODEL,
                           "expected 2 or 3 inputs (X, Scale, optional B), got %d", n->n_in);
    if ((rc = s_ln_axis(g, n, &axis, err)) || (rc = bs__input_f32(g, n, 1, "Scale", &s, err)) ||
        (b && (rc = bs__input_f32(g, n, 2, "B", &b, err))) || (rc = bs__output(g, n, 0, &y, err)))
        return rc;
    if (n->n_out > 3)
        return bs_node_err(err, n, BS_EMODEL, "expected at most 3 outputs, got %d", n->n_out);
    if (bs_attr_int(n, "stash_type", 1) != 1)
        return bs_node_err(err, n, BS_EUNSUPPORTED, "attribute 'stash_type' must be 1 (float)");
    x = bs_node_input(g, n, 0);
    bs_shape_t tail = {.rank = x->shape.rank - axis};
    for (int i = 0; i < tail.rank; i++)
        tail.d[i] = x->shape.d[axis + i];
    for (int k = 1; k <= 2; k++) {
        bs_tensor_t *t = bs_node_input(g, n, k);
        bs_shape_t bc;
        if (t && (bs_shape_broadcast(&t->shape, &tail, &bc) || !bs_shape_eq(&bc, &tail))) {
            char s1[96], s2[96];
            return bs_node_err(err, n, BS_EMODEL,
                               "input '%s' of shape %s does not broadcast "
                               "to the normalized shape %s",
                               t->name, bs_shape_str(&t->shape, s1, sizeof s1),
                               bs_shape_str(&tail, s2, sizeof s2));
        }
    }
    bs_tensor_set(y, BS_DT_FLOAT, &x->shape);
    bs_shape_t st = x->shape;
    for (int i = axis; i < st.rank; i++)
        st.d[i] = 1;
    for (int k = 1; k < n->n_out; k++) {
        bs_tensor_t *o = bs_node_output(g, n, k);
        if (o)
            bs_tensor_set(o, BS_DT_FLOAT, &st);
    }
    return 0;
}

/* Index into a tensor broadcast over the normalized shape, for position j of it. */
static int64_t s_tail_index(int64_t j, const bs_shape_t *tail, const int64_t *str)
{
    int64_t off = 0;
    for (int i = tail->rank - 1; i >= 0; i--) {
        off += (j % tail->d[i]) * str[i];
        j /= tail->d[i];
    }
    return off;
}

static int s_ln_run(bs_graph_t *g, bs_node_t *n, bs_ctx_t *ctx)
{
    (void)ctx;
    int axis;
    if (s_ln_axis(g, n, &axis, NULL))
        return BS_EINVAL;
    const bs_tensor_t *xt = bs_node_input(g, n, 0), *st = bs_node_input(g, n, 1);
    const bs_tensor_t *bt = bs_node_input(g, n, 2);
    const float *x = xt->data, *sc = st->data, *bb = bt ? bt->data : NULL;
    float *y = bs_node_output(g, n, 0)->data;
    bs_tensor_t *mt = n->n_out > 1 ? bs_node_output(g, n, 1) : NULL;
    bs_tensor_t *it = n->n_out > 2 ? bs_node_output(g, n, 2) : NULL;
    float eps = bs_attr_float(n, "epsilon", 1e-5f);
    bs_shape_t tail = {.rank = xt->shape.rank - axis};
    for (int i = 0; i < tail.rank; i++)
        tail.d[i] = xt->shape.d[axis + i];
    int64_t inner = bs_shape_numel(&tail);
    int64_t outer = inner ? bs_shape_numel(&xt->shape) / inner : 0;
    int64_t ss[BS_MAX_RANK], bs[BS_MAX_RANK];
    bs_shape_bcast_strides(&st->shape, &tail, ss);
    if (bt)
        bs_shape_bcast_strides(&bt->shape, &tail, bs);
    int s_full = bs_shape_numel(&st->shape) == inner;
    int b_full = bt && bs_shape_numel(&bt->shape) == inner;
    for (int64_t o = 0; o < outer; o++) {
        const float *xr = x + o * inner;
        float *yr = y + o * inner;
        double sum = 0.0, sq = 0.0;
        for (int64_t j = 0; j < inner; j++)
            sum += xr[j];
        float mean = (float)(sum / (double)inner);
        for (int64_t j = 0; j < inner; j++) {
            double dv = (double)xr[j] - mean;
            sq += dv * dv;
        }
        float inv = (float)(1.0 / sqrt(sq / (double)inner + eps));
        for (int64_t j = 0; j < inner; j++) {
            float sv = sc[s_full ? j : s_tail_index(j, &tail, ss)];
            float bv = bt ? bb[b_full ? j : s_tail_index(j, &tail, bs)] : 0.0f;
            yr[j] = (xr[j] - mean) * inv * sv + bv;
        }
        if (mt)
            ((float *)mt->data)[o] = mean;
        if (it)
            ((float *)it->data)[o] = inv;
    }
    return 0;
}

static const bs_op_t s_op_layernorm = {
    .op_type = "LayerNormalization",
    .infer = s_ln_infer,
    .run = s_ln_run,
    .foldable = 1,
};

/* ---- ReduceMean --------------------------------------------------------------------------- */

/* Fills red[] (1 = reduced axis) and the output shape; *noop when the op is an identity. */
static int s_rmean_plan(bs_graph_t *g, const bs_node_t *n, int *red, bs_shape_t *ys, bs_err_t *err)
{
    bs_tensor_t *x;
    int rc = bs__input_f32(g, n, 0, "data", &x, err);
    ys->rank = 0;
    for (int i = 0; i < BS_MAX_RANK; i++)
        red[i] = 0;
    if (rc)
        return rc;
    int r = x->shape.rank, nax = 0;
    int64_t axes[BS_MAX_RANK];
    int from_input = g->opset >= 18;
    if (from_input) {
        bs_tensor_t *at = bs_node_input(g, n, 1);
        if (n->n_in > 2)
            return bs_node_err(err, n, BS_EMODEL, "expected 1 or 2 inputs, got %d", n->n_in);
        if (at) {
            if (at->kind != BS_TENSOR_CONST || !at->has_shape || at->dtype != BS_DT_INT64)
                return bs_node_err(err, n, BS_EUNSUPPORTED,
                                   "input 'axes' ('%s') must be a "
                                   "constant int64 tensor",
                                   at->name);
            int64_t cnt = bs_shape_numel(&at->shape);
            if (cnt > r)
                return bs_node_err(err, n, BS_EMODEL, "input 'axes' has %lld values for rank %d",
                                   (long long)cnt, r);
            for (int64_t i = 0; i < cnt; i++)
                if (bs_tensor_get_i64(at, i, &axes[nax++]))
                    return bs_node_err(err, n, BS_EMODEL, "cannot read input 'axes'");
        }
    } else {
        const int64_t *v;
        if (n->n_in != 1)
            return bs_node_err(err, n, BS_EMODEL, "expected 1 input, got %d", n->n_in);
        int cnt = bs_attr_ints(n, "axes", &v);
        if (cnt > r)
            return bs_node_err(err, n, BS_EMODEL, "attribute 'axes' has %d values for rank %d",
                               cnt, r);
        for (int i = 0; i < cnt; i++)
            axes[nax++] = v[i];
    }
    int keep = bs_attr_int(n, "keepdims", 1) != 0;
    int noop = from_input && nax == 0 && bs_attr_int(n, "noop_with_empty_axes", 0) != 0;
    for (int i = 0; i < r; i++)
        red[i] = nax == 0 && !noop;
    for (int i = 0; i < nax; i++) {
        int64_t a = axes[i];
        if (a < -r || a >= r)
            return bs_node_err(err, n, BS_EMODEL, "axis %lld is out of range for rank %d",
                               (long long)a, r);
        if (a < 0)
            a += r;
        if (red[a])
            return bs_node_err(err, n, BS_EMODEL, "axis %lld is listed twice", (long long)a);
        red[a] = 1;
    }
    ys->rank = 0;
    for (int i = 0; i < r; i++) {
        if (!red[i])
            ys->d[ys->rank++] = x->shape.d[i];
        else if (keep)
            ys->d[ys->rank++] = 1;
    }
    return 0;
}

static int s_rmean_infer(bs_graph_t *g, bs_node_t *n, bs_err_t *err)
{
    int red[BS_MAX_RANK];
    bs_shape_t ys;
    bs_tensor_t *y;
    int rc = s_rmean_plan(g, n, red, &ys, err);
    if (rc || (rc = bs__output(g, n, 0, &y, err)) || (rc = s_one_output(n, err)))
        return rc;
    bs_tensor_set(y, BS_DT_FLOAT, &ys);
    return 0;
}

static int s_rmean_run(bs_graph_t *g, bs_node_t *n, bs_ctx_t *ctx)
{
    (void)ctx;
    int red[BS_MAX_RANK];
    bs_shape_t ys;
    if (s_rmean_plan(g, n, red, &ys, NULL))
        return BS_EINVAL;
    const bs_tensor_t *xt = bs_node_input(g, n, 0);
    const float *x = xt->data;
    float *y = bs_node_output(g, n, 0)->data;
    int r = xt->shape.rank;
    int64_t ostr[BS_MAX_RANK], onum = 1, cnt = 1;
    for (int i = r - 1; i >= 0; i--) { /* output strides over the input's axes, 0 if reduced */
        ostr[i] = red[i] ? 0 : onum;
        if (!red[i])
            onum *= xt->shape.d[i];
        else
            cnt *= xt->shape.d[i];
    }
    memset(y, 0, (size_t)onum * sizeof(float));
    int64_t total = bs_shape_numel(&xt->shape);
    if (r == 0) {
        y[0] = x[0];
        return 0;
    }
    int64_t idx[BS_MAX_RANK] = {0}, off = 0;
    int64_t last = xt->shape.d[r - 1], ls = ostr[r - 1];
    for (int64_t i = 0; i < total; i += last) {
        const float *xr = x + i;
        if (ls == 0) {
            float s = 0.0f;
            for (int64_t j = 0; j < last; j++)
                s += xr[j];
            y[off] += s;
        } else {
            for (int64_t j = 0; j < last; j++)
                y[off + j] += xr[j];
        }
        for (int a = r - 2; a >= 0; a--) {
            off += ostr[a];
            if (++idx[a] < xt->shape.d[a])
                break;
            off -= ostr[a] * idx[a];
            idx[a] = 0;
        }
    }
    float inv = cnt ? 1.0f / (float)cnt : 0.0f;
    for (int64_t i = 0; i < onum; i++)
        y[i] *= inv;
    return 0;
}

static const bs_op_t s_op_rmean = {
    .op_type = "ReduceMean",
    .infer = s_rmean_infer,
    .run = s_rmean_run,
    .foldable = 1,
};

/* ---- Resize ------------------------------------------------------------------------------- */

enum { S_RS_NEAREST, S_RS_LINEAR, S_RS_CUBIC };
enum { S_CT_HALF, S_CT_ASYM, S_CT_ALIGN, S_CT_PYTORCH, S_CT_TFNN, S_CT_CROP };
enum { S_NM_RPF, S_NM_RPC, S_NM_FLOOR, S_NM_CEIL, S_NM_SIMPLE };

typedef struct s_rs_par {
    int rank, mode, ctm, nm, exclude;
    float cubic_a, extrap;
    int64_t in[BS_MAX_RANK], out[BS_MAX_RANK];
    double scale[BS_MAX_RANK];
    double roi[2 * BS_MAX_RANK];
} s_rs_par_t;

typedef struct s_resize {
    s_rs_par_t p;
    int64_t istr[BS_MAX_RANK];
    int64_t *idx[BS_MAX_RANK]; /* out[a] x 4 input indices */
    float *w[BS_MAX_RANK];     /* out[a] x 4 weights */
    uint8_t *nt[BS_MAX_RANK];  /* taps per output coordinate; 0 = outside (extrapolate) */
    void *mem;
} s_resize_t;

static int s_str_pick(const char *s, const char *const *names, int count)
{
    for (int i = 0; i < count; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

/* Const float values of an optional input; *cnt = -1 when absent or empty. */
static int s_rs_const(const bs_node_t *n, const bs_tensor_t *t, const char *what, double *v,
                      int max, int *cnt, bs_err_t *err)
{
    *cnt = -1;
    if (!t || !t->has_shape || bs_shape_numel(&t->shape) == 0)
        return 0;
    if (t->kind != BS_TENSOR_CONST)
        return bs_node_err(err, n, BS_EUNSUPPORTED,
                           "input '%s' (%s) must be a constant: the "
                           "engine needs static shapes",
                           t->name, what);
    int64_t num = bs_shape_numel(&t->shape);
    if (num > max)
        return bs_node_err(err, n, BS_EMODEL, "input '%s' (%s) has %lld values, expected %d",
                           t->name, what, (long long)num, max);
    for (int64_t i = 0; i < num; i++) {
        int rc;
        if (t->dtype == BS_DT_INT64 || t->dtype == BS_DT_INT32) {
            int64_t iv;
            rc = bs_tensor_get_i64(t, i, &iv);
            v[i] = (double)iv;
        } else {
            float fv;
            rc = bs_tensor_get_f32(t, i, &fv);
            v[i] = fv;
        }
        if (rc)
            return bs_node_err(err, n, BS_EMODEL, "cannot read input '%s' (%s)", t->name, what);
    }
    *cnt = (int)num;
    return 0;
}

static int s_rs_params(bs_graph_t *g, const bs_node_t *n, s_rs_par_t *p, bs_err_t *err)
{
    static const char *const modes[] = {"nearest", "linear", "cubic"};
    static const char *const ctms[] = {"half_pixel",           "asymmetric",
                                       "align_corners",        "pytorch_half_pixel",
                                       "tf_half_pixel_for_nn", "tf_crop_and_resize"};
    static const char *const nms[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
    bs_tensor_t *x;
    int rc = bs__input_f32(g, n, 0, "X", &x, err);
    memset(p, 0, sizeof *p);
    if (rc)
        return rc;
    int v10 = g->opset < 11;
    const char *s = bs_attr_string(n, "mode", "nearest");
    if ((p->mode = s_str_pick(s, modes, 3)) < 0)
        return bs_node_err(err, n, BS_EUNSUPPORTED,
                           "attribute 'mode' = '%s' is not nearest, "
                           "linear or cubic",
                           s);
    s = v10 ? "asymmetric" : bs_attr_string(n, "coordinate_transformation_mode", "half_pixel");
    if ((p->ctm = s_str_pick(s, ctms, 6)) < 0)
        return bs_node_err(err, n, BS_EUNSUPPORTED,
                           "attribute 'coordinate_transformation_mode' = '%s' is not supported",
                           s);
    if (v10) {
        p->nm = S_NM_SIMPLE;
    } else {
        s = bs_attr_string(n, "nearest_mode", "round_prefer_floor");
        if ((p->nm = s_str_pick(s, nms, 4)) < 0)
            return bs_node_err(err, n, BS_EUNSUPPORTED,
                               "attribute 'nearest_mode' = '%s' is not supported", s);
    }
    if (bs_node_attr(n, "axes") || bs_node_attr(n, "keep_aspect_ratio_policy"))
        return bs_node_err(err, n, BS_EUNSUPPORTED,
                           "attributes 'axes' and 'keep_aspect_ratio_policy' (opset 18) are not "
                           "supported");
    p->exclude = bs_attr_int(n, "exclude_outside", 0) != 0;
    p->cubic_a = bs_attr_float(n, "cubic_coeff_a", -0.75f);
    p->extrap = bs_attr_float(n, "extrapolation_value", 0.0f);
    int r = p->rank = x->shape.rank;
    if (r < 1)
        return bs_node_err(err, n, BS_EMODEL, "input '%s' must have rank >= 1", x->name);
    if (n->n_in > (v10 ? 2 : 4) || n->n_in < 2)
        return bs_node_err(err, n, BS_EMODEL, "expected %s inputs, got %d",
                           v10 ? "2 (X, scales)" : "2 to 4 (X, roi, scales, sizes)", n->n_in);
    double sc[BS_MAX_RANK], sz[BS_MAX_RANK];
    int nsc, nsz = -1, nroi = -1;
    bs_tensor_t *roi_t = v10 ? NULL : bs_node_input(g, n, 1);
    if ((rc = s_rs_const(n, bs_node_input(g, n, v10 ? 1 : 2), "scales", sc, r, &nsc, err)))
        return rc;
    if (!v10 && (rc = s_rs_const(n, bs_node_input(g, n, 3), "sizes", sz, r, &nsz, err)))
        return rc;
    if (p->ctm == S_CT_CROP &&
        (rc = s_rs_const(n, roi_t, "roi", p->roi, 2 * BS_MAX_RANK, &nroi, err)))
        return rc;
    if (p->ctm == S_CT_CROP && nroi != 2 * r)
        return bs_node_err(err, n, BS_EMODEL,
                           "tf_crop_and_resize needs input 'roi' with %d "
                           "values",
                           2 * r);
    if ((nsc < 0) == (nsz < 0))
        return bs_node_err(err, n, BS_EMODEL,
                           "exactly one of the inputs 'scales' and 'sizes' must be given");
    if ((nsc >= 0 && nsc != r) || (nsz >= 0 && nsz != r))
        return bs_node_err(err, n, BS_EMODEL, "input '%s' must have %d values (one per axis)",
                           nsc >= 0 ? "scales" : "sizes", r);
    for (int a = 0; a < r; a++) {
        p->in[a] = x->shape.d[a];
        if (nsc >= 0) {
            if (!(sc[a] > 0.0) || !isfinite(sc[a]))
                return bs_node_err(err, n, BS_EMODEL, "scales[%d] = %g must be > 0", a, sc[a]);
            double span = p->ctm == S_CT_CROP ? p->roi[r + a] - p->roi[a] : 1.0;
            p->scale[a] = sc[a];
            double ov = floor((double)p->in[a] * span * sc[a] + 1e-9);
            if (!(ov < (double)INT32_MAX))
                return bs_node_err(err, n, BS_EMODEL, "output axis %d would be too large", a);
            p->out[a] = ov < 0.0 ? 0 : (int64_t)ov;
        } else {
            if (sz[a] < 1 || sz[a] > (double)INT32_MAX)
                return bs_node_err(err, n, BS_EMODEL, "sizes[%d] = %g must be >= 1", a, sz[a]);
            p->out[a] = (int64_t)sz[a];
            p->scale[a] = (double)p->out[a] / (double)p->in[a];
        }
        if (p->out[a] < 1)
            return bs_node_err(err, n, BS_EMODEL, "output axis %d would be empty", a);
    }
    return 0;
}

static int s_resize_infer(bs_graph_t *g, bs_node_t *n, bs_err_t *err)
{
    s_rs_par_t p;
    bs_tensor_t *y;
    int rc = s_rs_params(g, n, &p, err);
    if (rc || (rc = bs__output(g, n, 0, &y, err)) || (rc = s_one_output(n, err)))
        return rc;
    bs_shape_t ys = {.rank = p.rank};
    for (int a = 0; a < p.rank; a++)
        ys.d[a] = p.out[a];
    bs_tensor_set(y, BS_DT_FLOAT, &ys);
    return 0;
}

static double s_cubic(double t, double A)
{
    t = fabs(t);
    if (t <= 1.0)
        return ((A + 2.0) * t - (A + 3.0)) * t * t + 1.0;
    if (t < 2.0)
        return ((A * t - 5.0 * A) * t + 8.0 * A) * t - 4.0 * A;
    return 0.0;
}

static int64_t s_clampi(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

/* Taps of output coordinate x on axis a: up to 4 (index, weight); returns the count, 0 when
 * the coordinate falls outside (tf_crop_and_resize: extrapolation value). */
static int s_rs_taps(const s_rs_par_t *p, int a, int64_t x, int64_t *idx, float *w)
{
    double in = (double)p->in[a], sc = p->scale[a], ow = sc * in, xo;
    switch (p->ctm) {
    case S_CT_ASYM:
        xo = (double)x / sc;
        break;
    case S_CT_ALIGN:
        xo = ow == 1.0 ? 0.0 : (double)x * (in - 1.0) / (ow - 1.0);
        break;
    case S_CT_PYTORCH:
        xo = ow == 1.0 ? -0.5 : ((double)x + 0.5) / sc - 0.5;
        break;
    case S_CT_TFNN:
        xo = ((double)x + 0.5) / sc;
        break;
    case S_CT_CROP: {
        double r0 = p->roi[a], r1 = p->roi[p->rank + a];
        xo = ow == 1.0 ? (r1 - r0) * (in - 1.0) / 2.0
                       : (double)x * (r1 - r0) * (in - 1.0) / (ow - 1.0);
        xo += r0 * (in - 1.0);
        if (xo < 0.0 || xo > in - 1.0)
            return 0;
        break;
    }
    default:
        xo = ((double)x + 0.5) / sc - 0.5;
        break;
    }
    if (!isfinite(xo)) /* a degenerate roi or scale: extrapolate rather than index */
        return 0;
    xo = xo < -1e12 ? -1e12 : (xo > 1e12 ? 1e12 : xo);
    int64_t hi = p->in[a] - 1;
    double fl = floor(xo), r = xo - fl;
    int64_t x0 = (int64_t)fl;
    if (p->mode == S_RS_NEAREST) {
        int64_t i;
        switch (p->nm) {
        case S_NM_RPC:
            i = r < 0.5 ? x0 : x0 + 1;
            break;
        case S_NM_FLOOR:
            i = x0;
            break;
        case S_NM_CEIL:
            i = (int64_t)ceil(xo);
            break;
        case S_NM_SIMPLE:
            i = sc < 1.0 ? (int64_t)ceil(xo) : x0;
            break;
        default:
            i = r <= 0.5 ? x0 : x0 + 1;
            break;
        }
        idx[0] = s_clampi(i, 0, hi);
        w[0] = 1.0f;
        return 1;
    }
    if (p->mode == S_RS_LINEAR) {
        idx[0] = s_clampi(x0, 0, hi);
        w[0] = (float)(1.0 - r);
        if (r == 0.0)
            return 1;
        idx[1] = s_clampi(x0 + 1, 0, hi);
        w[1] = (float)r;
        return 2;
    }
    double c[4] = {s_cubic(1.0 + r, p->cubic_a), s_cubic(r, p->cubic_a),
                   s_cubic(1.0 - r, p->cubic_a), s_cubic(2.0 - r, p->cubic_a)};
    double sum = 0.0;
    for (int t = 0; t < 4; t++) {
        int64_t i = x0 - 1 + t;
        if (p->exclude && (i < 0 || i > hi))
            c[t] = 0.0;
        sum += c[t];
    }
    int cnt = 0;
    for (int t = 0; t < 4; t++) {
        if (c[t] == 0.0)
            continue;
        idx[cnt] = s_clampi(x0 - 1 + t, 0, hi);
        w[cnt++] = (float)(p->exclude && sum != 0.0 ? c[t] / sum : c[t]);
    }
    if (cnt == 0) { /* cannot happen with a sane coefficient; keep run() well-defined */
        idx[0] = s_clampi(x0, 0, hi);
        w[0] = 0.0f;
        cnt = 1;
    }
    return cnt;
}

static void s_resize_release(bs_node_t *n)
{
    s_resize_t *st = n->state;
    if (!st)
        return;
    bs_free(st->mem);
    bs_free(st);
    n->state = NULL;
}

static int s_resize_prepare(bs_graph_t *g, bs_node_t *n, bs_err_t *err)
{
    s_rs_par_t p;
    int rc = s_rs_params(g, n, &p, err);
    if (rc)
        return rc;
    s_resize_release(n);
    s_resize_t *st = bs_calloc(1, sizeof *st);
    if (!st)
        return bs_node_err(err, n, BS_ENOMEM, "out of memory");
    n->state = st;
    st->p = p;
    int64_t tot = 0;
    for (int a = 0; a < p.rank; a++)
        tot += p.out[a];
    size_t per = 4 * sizeof(int64_t) + 4 * sizeof(float) + 1;
    char *mem = st->mem = bs_malloc((size_t)tot * per + 1);
    if (!mem)
        return bs_node_err(err, n, BS_ENOMEM, "out of memory");
    int64_t s = 1;
    for (int a = p.rank - 1; a >= 0; a--) {
        st->istr[a] = s;
        s *= p.in[a];
    }
    for (int a = 0; a < p.rank; a++) { /* all indices, then all weights, then the counts */
        st->idx[a] = (int64_t *)mem;
        mem += (size_t)p.out[a] * 4 * sizeof(int64_t);
    }
    for (int a = 0; a < p.rank; a++) {
        st->w[a] = (float *)mem;
        mem += (size_t)p.out[a] * 4 * sizeof(float);
    }
    for (int a = 0; a < p.rank; a++) {
        st->nt[a] = (uint8_t *)mem;
        mem += (size_t)p.out[a];
    }
    for (int a = 0; a < p.rank; a++) {
        for (int64_t x = 0; x < p.out[a]; x++)
            st->nt[a][x] = (uint8_t)s_rs_taps(&p, a, x, st->idx[a] + 4 * x, st->w[a] + 4 * x);
    }
    return 0;
}

static float s_rs_sum(const s_resize_t *st, const float *x, const int64_t *oc, int a, int64_t off)
{
    if (a == st->p.rank)
        return x[off];
    int nt = st->nt[a][oc[a]];
    const int64_t *ix = st->idx[a] + 4 * oc[a];
    const float *w = st->w[a] + 4 * oc[a];
    if (nt == 1)
        return w[0] * s_rs_sum(st, x, oc, a + 1, off + ix[0] * st->istr[a]);
    float acc = 0.0f;
    for (int t = 0; t < nt; t++)
        acc += w[t] * s_rs_sum(st, x, oc, a + 1, off + ix[t] * st->istr[a]);
    return acc;
}

static int s_resize_run(bs_graph_t *g, bs_node_t *n, bs_ctx_t *ctx)
{
    (void)ctx;
    const s_resize_t *st = n->state;
    if (!st)
        return BS_EINVAL;
    const float *x = bs_node_input(g, n, 0)->data;
    float *y = bs_node_output(g, n, 0)->data;
    int r = st->p.rank;
    int64_t oc[BS_MAX_RANK] = {0}, total = 1;
    for (int a = 0; a < r; a++)
        total *= st->p.out[a];
    for (int64_t i = 0; i < total; i++) {
        int outside = 0;
        for (int a = 0; a < r; a++)
            outside |= st->nt[a][oc[a]] == 0;
        y[i] = outside ? st->p.extrap : s_rs_sum(st, x, oc, 0, 0);
        for (int a = r - 1; a >= 0; a--) {
            if (++oc[a] < st->p.out[a])
                break;
            oc[a] = 0;
        }
    }
    return 0;
}

static const bs_op_t s_op_resize = {
    .op_type = "Resize",
    .infer = s_resize_infer,
    .prepare = s_resize_prepare,
    .run = s_resize_run,
    .release = s_resize_release,
};

/* ---- the table ---------------------------------------------------------------------------- */

const bs_op_t *const bs_ops_nn[] = {
    &bs__op_conv,     &bs__op_conv_transpose, &s_op_gemm,  &s_op_matmul, &s_op_bn,
    &s_op_maxpool,    &s_op_avgpool,          &s_op_gap,   &s_op_gmp,    &s_op_softmax,
    &s_op_logsoftmax, &s_op_layernorm,        &s_op_rmean, &s_op_resize,
    &bs__op_quantize_linear, &bs__op_dequantize_linear, NULL,
};

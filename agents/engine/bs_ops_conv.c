/*
 * bs_ops_conv.c - Conv and ConvTranspose, float32, NCHW, with 1 to 3 spatial axes.
 *
 * Both ops resolve their geometry (kernel, strides, dilations, pads or auto_pad, groups) into
 * one s_geom_t whose spatial arrays are always three long: a 1-D or 2-D op is the 3-D one with
 * leading axes of size 1, so one set of loops serves every rank. Everything heavy goes through
 * the packed GEMM of bs_kernels.h, with the weight as the packed operand:
 *   Conv, per image and group:  Y[oc][p] = act(sum_k col[k][p] * W[oc][k] + B[oc])
 *     - depthwise (group == C == M): bs_conv2d_depthwise on the raw weights, no packing;
 *     - 1x1, stride 1, no padding: the input planes are the GEMM's X read transposed, no copy;
 *     - 1-D/2-D where the selected ISA has a direct kernel (bs_conv2d_direct): no window
 *       matrix; the kernel reads a zero-padded copy of the input in place;
 *     - otherwise the window matrix: bs_im2col for 1-D/2-D, in bands of output rows so that
 *       the matrix stays cache-sized and the scratch stays bounded on large images; a local
 *       3-D im2col for 3-D.
 *   ConvTranspose, per image and group: col[oc,k][p] = sum_c W[c][oc,k] * X[c][p] by GEMM,
 *     then col2im scatters col into the output planes, then the bias.
 * prepare() packs a const weight once per group into n->state; a weight that is computed at
 * run time is packed into scratch on every run. The fused activation (n->act, set by the
 * fusion pass) goes to the kernel. Scratch layout: [packed weight][window matrix][GEMM], or
 * [packed weight][direct convolution's copy] on the direct path.
 */
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "bs_alloc.h"
#include "bs_kernels.h"
#include "bs_op.h"
#include "bs_threadpool.h"

#include "bs_ops_internal.h"

enum {
    S_PATH_DW = 1,
    S_PATH_1X1 = 2,
    S_PATH_IM2COL2D = 3,
    S_PATH_IM2COL3D = 4,
    S_PATH_DIRECT = 5,
};

typedef struct s_geom {
    int ns;             /* spatial axes in the model, 1..3 */
    int64_t N, C, M, G; /* batch, input channels, output channels, groups */
    int64_t Cg, Mg;     /* channels per group, in and out */
    int64_t in[3], k[3], s[3], d[3], ph[3], pt[3], out[3]; /* promoted to 3 axes */
    int64_t Pin, Pout, Kprod;                              /* spatial products */
} s_geom_t;

typedef struct s_conv {
    s_geom_t g;
    int path;
    int const_w;
    void *wraw;                      /* allocation holding wpacked (const weight), or NULL */
    char *wpacked;                   /* every group's packed weight, 64-byte aligned */
    size_t wg_bytes;                 /* bytes per group, multiple of 64 */
    size_t off_w, off_col, off_gemm; /* scratch layout */
    int gM, gN, gK;                  /* GEMM sizes per image and group (gM: per band for 2-D) */
    int band;                        /* 2-D im2col: output rows per band */
    bs__qw_t *qw;                    /* quantized layer (n->prec not w32a32), else NULL */
    size_t off_xq;                   /* quantized: input quantized (int8) or QDQ'd (float) */
} s_conv_t;

/* 2-D im2col goes in bands of output rows whose window matrix holds about this many floats
 * (256 KiB, cache-sized), but at least S_BAND_MIN_PIX output pixels: it bounds the scratch
 * for large images and keeps the matrix in cache between im2col and the GEMM. */
enum { S_BAND_FLOATS = 65536, S_BAND_MIN_PIX = 256 };

/* Places the model's ns spatial values at the end of a 3-array, padding the front with fill. */
static void s_promote(int ns, const int64_t *v, int64_t fill, int64_t *out3)
{
    for (int i = 0; i < 3; i++)
        out3[i] = i < 3 - ns ? fill : v[i - (3 - ns)];
}

/* Common checks of Conv / ConvTranspose inputs: X, W, optional B of [M]; fills N, C, kernel,
 * groups. transpose: W is [C, M/group, k...] instead of [M, C/group, k...]. */
static int s_geom_common(bs_graph_t *g, const bs_node_t *n, int transpose, s_geom_t *o,
                         int64_t *in, int64_t *k, bs_tensor_t **wout, bs_err_t *err)
{
    bs_tensor_t *x, *w, *b = bs_node_input(g, n, 2);
    int rc;
    memset(o, 0, sizeof *o);
    if (n->n_in < 2 || n->n_in > 3)
        return bs_node_err(err, n, BS_EMODEL, "expected 2 or 3 inputs (X, W, optional B), got %d",
                           n->n_in);
    if ((rc = bs__input_f32(g, n, 0, "X", &x, err)) || (rc = bs__input_f32(g, n, 1, "W", &w, err)))
        return rc;
    int r = x->shape.rank;
    if (r < 3 || r > 5)
        return bs_node_err(err, n, BS_EUNSUPPORTED,
                           "input '%s' has rank %d; expected 3 to 5 (N, C and 1 to 3 spatial "
                           "axes)",
                           x->name, r);
    if (w->shape.rank != r)
        return bs_node_err(err, n, BS_EMODEL, "weight '%s' has rank %d but input '%s' has rank %d",
                           w->name, w->shape.rank, x->name, r);
    int ns = r - 2;
    int64_t G = bs_attr_int(n, "group", 1);
    o->ns = ns;
    o->N = x->shape.d[0];
    o->C = x->shape.d[1];
    o->G = G;
    if (G < 1)
        return bs_node_err(err, n, BS_EMODEL, "attribute 'group' = %lld must be >= 1",
                           (long long)G);
    if (o->C % G)
        return bs_node_err(err, n, BS_EMODEL,
                           "attribute 'group' = %lld does not divide %lld input channels",
                           (long long)G, (long long)o->C);
    o->Cg = o->C / G;
    if (!transpose) {
        o->M = w->shape.d[0];
        if (w->shape.d[1] * G != o->C)
            return bs_node_err(err, n, BS_EMODEL,
                               "weight '%s' expects %lld input channels per group x %lld "
                               "group(s) but input '%s' has %lld channels",
                               w->name, (long long)w->shape.d[1], (long long)G, x->name,
                               (long long)o->C);
        if (o->M % G)
            return bs_node_err(err, n, BS_EMODEL,
                               "attribute 'group' = %lld does not divide %lld output channels",
                               (long long)G, (long long)o->M);
    } else {
        if (w->shape.d[0] != o->C)
            return bs_node_err(err, n, BS_EMODEL,
                               "weight '%s' has %lld input channels but input '%s' has %lld",
                               w->name, (long long)w->shape.d[0], x->name, (long long)o->C);
        o->M = w->shape.d[1] * G;
    }
    o->Mg = o->M / G;
    const int64_t *ks;
    int nk = bs_attr_ints(n, "kernel_shape", &ks);
    if (nk >= 0 && nk != ns)
        return bs_node_err(err, n, BS_EMODEL,
                           "attribute 'kernel_shape' has %d values, expected %d", nk, ns);
    for (int i = 0; i < ns; i++) {
        in[i] = x->shape.d[2 + i];
        k[i] = w->shape.d[2 + i];
        if (nk >= 0 && ks[i] != k[i])
            return bs_node_err(err, n, BS_EMODEL,
                               "attribute 'kernel_shape'[%d] = %lld but weight '%s' has %lld", i,
                               (long long)ks[i], w->name, (long long)k[i]);
        if (in[i] < 1 || k[i] < 1)
            return bs_node_err(err, n, BS_EMODEL, "empty spatial axis %d", i);
    }
    if (b) {
        if (!b->has_shape || b->dtype != BS_DT_FLOAT)
            return bs_node_err(err, n, BS_EUNSUPPORTED, "bias '%s' must be float32 with a shape",
                               b->name);
        if (b->shape.rank != 1 || b->shape.d[0] != o->M)
            return bs_node_err(err, n, BS_EMODEL,
                               "bias '%s' must have shape [%lld] (one per output channel)",
                               b->name, (long long)o->M);
    }
    if (wout)
        *wout = w;
    return 0;
}

/* a * b * c, or -1 when a factor is negative or the product passes 2^62 (hostile geometry). */
static int64_t s_mul3(int64_t a, int64_t b, int64_t c)
{
    int64_t ab, abc;
    if (a < 0 || b < 0 || c < 0 || __builtin_mul_overflow(a, b, &ab) ||
        __builtin_mul_overflow(ab, c, &abc) || abc > ((int64_t)1 << 62))
        return -1;
    return abc;
}

static int s_geom_finish(const bs_node_t *n, s_geom_t *o, bs_err_t *err)
{
    o->Pin = s_mul3(o->in[0], o->in[1], o->in[2]);
    o->Pout = s_mul3(o->out[0], o->out[1], o->out[2]);
    o->Kprod = s_mul3(o->k[0], o->k[1], o->k[2]);
    if (o->Pin < 0 || o->Pout < 0 || o->Kprod < 0 || o->Kprod >= INT_MAX / 4)
        return bs_node_err(err, n, BS_EUNSUPPORTED, "tensor dimensions too large");
    /* The kernels index with int: keep every GEMM dimension and buffer in range. */
    int64_t big = o->Pin > o->Pout ? o->Pin : o->Pout;
    int64_t kk = o->Cg * o->Kprod > o->Mg * o->Kprod ? o->Cg * o->Kprod : o->Mg * o->Kprod;
    if (big >= INT_MAX / 4 || kk >= INT_MAX / 4 || big * kk >= INT64_MAX / 64 / 4 ||
        o->M >= INT_MAX / 4)
        return bs_node_err(err, n, BS_EUNSUPPORTED, "tensor dimensions too large");
    return 0;
}

static int s_conv_geom(bs_graph_t *g, const bs_node_t *n, s_geom_t *o, bs_tensor_t **w,
                       bs_err_t *err)
{
    int64_t in[3], k[3], s[3], d[3], ph[3], pt[3], out[3];
    int rc = s_geom_common(g, n, 0, o, in, k, w, err);
    if (rc)
        return rc;
    int ns = o->ns;
    if ((rc = bs__spatial_dims(n, ns, in, k, 0, s, d, ph, pt, out, err)))
        return rc;
    s_promote(ns, in, 1, o->in);
    s_promote(ns, k, 1, o->k);
    s_promote(ns, s, 1, o->s);
    s_promote(ns, d, 1, o->d);
    s_promote(ns, ph, 0, o->ph);
    s_promote(ns, pt, 0, o->pt);
    s_promote(ns, out, 1, o->out);
    return s_geom_finish(n, o, err);
}

static void s_set_out(bs_tensor_t *y, const s_geom_t *o)
{
    bs_shape_t ys;
    ys.rank = o->ns + 2;
    ys.d[0] = o->N;
    ys.d[1] = o->M;
    for (int i = 0; i < o->ns; i++)
        ys.d[2 + i] = o->out[3 - o->ns + i];
    bs_tensor_set(y, BS_DT_FLOAT, &ys);
}

/* ---- Conv --------------------------------------------------------------------------------- */

static int s_conv_infer(bs_graph_t *g, bs_node_t *n, bs_err_t *err)
{
    s_geom_t o;
    bs_tensor_t *w, *y;
    int rc = s_conv_geom(g, n, &o, &w, err);
    if (rc || (rc = bs__output(g, n, 0, &y, err)))
        return rc;
    if (n->n_out != 1)
        return bs_node_err(err, n, BS_EMODEL, "expected 1 output, got %d", n->n_out);
    s_set_out(y, &o);
    n->weight_layer = w->kind == BS_TENSOR_CONST;
    return 0;
}

static void s_conv_release(bs_node_t *n)
{
    s_conv_t *st = n->state;
    if (!st)
        return;
    bs_free(st->wraw);
    if (st->qw) {
        bs__qw_free(st->qw);
        bs_free(st->qw);
    }
    bs_free(st);
    n->state = NULL;
}

/* Packs every group's slice of W, element (n, k) of group grp at
 * W[grp * gstride + n * sn + k * sk], into dst (wg_bytes apart). */
static void s_pack_groups(const s_conv_t *st, const float *w, int64_t gstride, int64_t sn,
                          int64_t sk, char *dst)
{
    for (int64_t grp = 0; grp < st->g.G; grp++)
        bs_gemm_pack(w + grp * gstride, sn, sk, st->gN, st->gK, dst + grp * st->wg_bytes);
}

static bs_conv2d_t s_conv2d(const s_geom_t *o, int64_t channels);

/* Scratch of the direct path for one group (0: the selected ISA has no direct kernel, or the
 * input is too large for it). */
static size_t s_direct_bytes(const s_geom_t *o)
{
    bs_conv2d_t cv = s_conv2d(o, o->Cg);
    return bs_conv2d_direct_scratch(&cv, (int)o->Mg);
}

/* ---- Conv at a quantized precision (see bs_ops_quant.c) ------------------------------------
 * Integer (w2..w8 a8), per image: the input quantized to uint8 (unless the previous int8 layer
 * already wrote uint8), then per group bs_qconv2d straight from the uint8 planes into the
 * output planes (float, or uint8 for the next int8 layer), with the weight bs__qw_prepare
 * holds (8-bit panels per group, or rows; 4-bit rows are repacked here into 4-bit panels per
 * group, st->wraw, replacing the rows); a geometry too large for its grid goes through
 * bs_im2row_u8 + bs_qgemm instead (st->band says which: 1 for bs_qconv2d). Depthwise:
 * bs_qconv_depthwise on the filter's codes (8-bit rows are the codes; narrower ones are
 * unpacked once at prepare into st->wraw, replacing the rows). Float input (w16 or w2..w8
 * at a32; w32/w16 at a8 after QDQ of the input): im2col + bs_gemm_wq (weights dequantized
 * per tile); depthwise: the filter dequantized into scratch.
 * Scratch: [input copy][float filter][window rows or matrix][GEMM, convolution or
 * depthwise]. */
static int s_qconv_prepare(bs_graph_t *g, bs_node_t *n, bs_err_t *err)
{
    s_geom_t o;
    bs_tensor_t *w;
    int rc = s_conv_geom(g, n, &o, &w, err);
    if (rc)
        return rc;
    s_conv_release(n);
    if (w->kind != BS_TENSOR_CONST || !w->data)
        return bs_node_err(err, n, BS_EINVAL, "a quantized precision needs a constant weight");
    s_conv_t *st = bs_calloc(1, sizeof *st);
    if (!st || !(st->qw = bs_calloc(1, sizeof *st->qw))) {
        bs_free(st);
        return bs_node_err(err, n, BS_ENOMEM, "out of memory");
    }
    n->state = st;
    st->g = o;
    st->const_w = 1;
    int pads0 = 1, ones = 1, strides1 = 1;
    for (int i = 0; i < 3; i++) {
        pads0 &= o.ph[i] == 0 && o.pt[i] == 0;
        ones &= o.k[i] == 1;
        strides1 &= o.s[i] == 1;
    }
    int dw = o.G == o.C && o.Cg == 1 && o.Mg == 1;
    st->path = dw ? S_PATH_DW : (ones && strides1 && pads0 ? S_PATH_1X1 : S_PATH_IM2COL2D);
    const bs_tensor_t *bt = bs_node_input(g, n, 2);
    if (bt && (bt->kind != BS_TENSOR_CONST || !bt->data))
        return bs_node_err(err, n, BS_EINVAL, "a quantized precision needs a constant bias");
    st->gM = (int)o.Pout;
    st->gN = (int)o.Mg;
    st->gK = (int)(o.Cg * o.Kprod);
    bs__qw_spec_t sp = {.W = w->data, .sn = st->gK, .sk = 1, .N = (int)o.M, .K = st->gK,
                        .G = (int)o.G, .dw = dw, .bias = bt ? bt->data : NULL, .alpha = 1.0f};
    bs__qw_t *q = st->qw;
    if ((rc = bs__qw_prepare(g, n, &sp, q, err)))
        return rc;
    n->weight_packed = 1;
    n->bias_packed = bt != NULL;
    n->packed_bytes = q->held;
    const bs_tensor_t *x = bs_node_input(g, n, 0);
    size_t off = 0, img = (size_t)(o.C * o.Pin);
    if (q->int8 && !x->quantized) {
        st->off_xq = off;
        off += bs__align64(img);
    } else if (!q->int8 && n->prec.a == 8) {
        st->off_xq = off;
        off += bs__align64(img * sizeof(float));
    }
    st->off_w = off;
    bs_conv2d_t cv = s_conv2d(&o, dw ? o.C : o.Cg);
    if (dw && q->int8 && !(q->q.bits == 8 && q->q.row_bytes == (size_t)q->K)) {
        /* the filter's codes, once (8-bit rows are the codes themselves): held instead of
         * the packed rows, which nothing reads afterwards */
        size_t nb = (size_t)q->N * (size_t)q->K;
        if (!(st->wraw = bs_malloc(nb)))
            return bs_node_err(err, n, BS_ENOMEM, "out of memory");
        bs_qweight_codes(&q->q, st->wraw);
        n->packed_bytes += nb;
        n->packed_bytes -= (size_t)q->N * q->q.row_bytes;
        bs_free(q->q.data);
        q->q.data = NULL;
    }
    if (dw) {
        if (!q->int8)
            off += bs__align64((size_t)(o.M * o.Kprod) * sizeof(float));
        st->off_gemm = off;
        if (q->int8)
            off += bs__align64(bs_qconv_depthwise_scratch(&cv, bs__threads(g)));
        n->scratch = off;
        return 0;
    }
    st->off_col = off;
    size_t direct = q->int8 ? bs_qconv2d_scratch(&cv, st->gN, bs__threads(g), !q->packed) : 0;
    st->band = direct > 0;
    if (direct && q->q.bits == 4 && q->q.data) {
        /* 4-bit panels per group (st->wraw, wg_bytes apart), expanded per panel by the
         * kernel: held instead of the rows, about as many bytes */
        st->wg_bytes = bs__align64(bs_qgemm_packed4_size(st->gN, st->gK));
        if (!(st->wraw = bs_malloc(st->wg_bytes * (size_t)o.G)))
            return bs_node_err(err, n, BS_ENOMEM, "out of memory");
        for (int grp = 0; grp < (int)o.G; grp++) {
            bs_qweight_t v = bs__qw_group(q, grp);
            bs_qgemm_pack4(&v, (char *)st->wraw + (size_t)grp * st->wg_bytes);
        }
        n->packed_bytes += st->wg_bytes * (size_t)o.G;
        n->packed_bytes -= (size_t)q->N * q->q.row_bytes;
        bs_free(q->q.data);
        q->q.data = NULL;
    }
    if (q->int8 && !direct)
        off += bs__align64((size_t)o.Pout * (size_t)BS_QK_PAD(st->gK));
    else if (!q->int8 && st->path != S_PATH_1X1)
        off += bs__align64((size_t)o.Pout * (size_t)st->gK * sizeof(float));
    st->off_gemm = off;
    off += bs__align64(direct ? direct : bs__qw_gemm_scratch(q, st->gM, bs__threads(g)));
    n->scratch = off;
    return 0;
}

static int s_qconv_run(bs_graph_t *g, bs_node_t *n, bs_ctx_t *ctx)
{
    const s_conv_t *st = n->state;
    const s_geom_t *o = &st->g;
    const bs__qw_t *q = st->qw;
    const bs_tensor_t *xt = bs_node_input(g, n, 0), *yt = bs_node_output(g, n, 0);
    char *scratch = ctx->scratch;
    size_t ysz = yt->quantized ? 1 : sizeof(float);
    int64_t cpin = o->C * o->Pin, mpout = o->M * o->Pout;
    if (q->int8) {
        const int8_t *codes = NULL;
        uint8_t *rows = (uint8_t *)(scratch + st->off_col);
        int64_t ldr = BS_QK_PAD(st->gK);
        if (st->path == S_PATH_DW) /* unpacked at prepare, or 8-bit rows */
            codes = st->wraw ? (const int8_t *)st->wraw : (const int8_t *)q->q.data;
        for (int64_t img = 0; img < o->N; img++) {
            const uint8_t *xq;
            if (xt->quantized) {
                xq = (const uint8_t *)xt->data + img * cpin;
            } else {
                bs_quantize_u8((const float *)xt->data + img * cpin, cpin, q->in.scale,
                               q->in.zero_point, (uint8_t *)(scratch + st->off_xq));
                xq = (const uint8_t *)(scratch + st->off_xq);
            }
            char *yi = (char *)yt->data + (size_t)(img * mpout) * ysz;
            if (st->path == S_PATH_DW) {
                bs_conv2d_t cv = s_conv2d(o, o->C);
                bs_qconv_depthwise(&cv, xq, q->in.zero_point, codes, &q->epi, yi,
                                   scratch + st->off_gemm, ctx->pool);
                continue;
            }
            bs_conv2d_t cv = s_conv2d(o, o->Cg);
            for (int grp = 0; grp < (int)o->G; grp++) {
                const uint8_t *xg = xq + grp * o->Cg * o->Pin;
                char *yg = yi + (size_t)(grp * o->Mg * o->Pout) * ysz;
                if (!st->band) {
                    bs_im2row_u8(&cv, xg, (uint8_t)q->in.zero_point, rows, ldr);
                    bs__qw_gemm_q(q, grp, st->gM, rows, ldr, yg, 1, o->Pout,
                                  scratch + st->off_gemm, ctx->pool);
                    continue;
                }
                /* the group's weight and epilogue, as bs__qw_gemm_q hands them to bs_qgemm */
                bs_qweight_t v = bs__qw_group(q, grp);
                bs_qgemm_w_t wg = {.N = st->gN, .K = st->gK};
                if (q->packed)
                    wg.packed = q->packed + (size_t)grp * q->pg_bytes;
                else if (st->wraw)
                    wg.packed4 = (const char *)st->wraw + (size_t)grp * st->wg_bytes;
                else
                    wg.rows = &v;
                bs_qgemm_epi_t e = q->epi;
                e.off = q->off + (size_t)grp * (size_t)st->gN;
                e.mult = q->mult + (size_t)grp * (size_t)st->gN;
                bs_qconv2d(&cv, xg, (uint8_t)q->in.zero_point, &wg, &e, yg,
                           scratch + st->off_gemm, ctx->pool);
            }
        }
        return 0;
    }
    float *wf = (float *)(scratch + st->off_w);
    float *col = (float *)(scratch + st->off_col);
    if (st->path == S_PATH_DW)
        bs__qw_dequant_dw(q, wf);
    for (int64_t img = 0; img < o->N; img++) {
        const float *xi = (const float *)xt->data + img * cpin;
        if (n->prec.a == 8) {
            bs__qw_qdq(q, xi, cpin, (float *)(scratch + st->off_xq));
            xi = (const float *)(scratch + st->off_xq);
        }
        float *yi = (float *)yt->data + img * mpout;
        if (st->path == S_PATH_DW) {
            bs_conv2d_t cv = s_conv2d(o, o->C);
            bs_conv2d_depthwise(&cv, xi, wf, q->bias, yi, n->act, n->act_lo, n->act_hi,
                                ctx->pool);
            continue;
        }
        bs_conv2d_t cv = s_conv2d(o, o->Cg);
        for (int grp = 0; grp < (int)o->G; grp++) {
            const float *xg = xi + grp * o->Cg * o->Pin;
            if (st->path != S_PATH_1X1) {
                bs_im2col(&cv, xg, col);
                xg = col;
            }
            bs__qw_gemm_f(q, grp, st->gM, xg, 1, o->Pout, yi + grp * o->Mg * o->Pout, 1,
                          o->Pout, n->act, n->act_lo, n->act_hi, scratch + st->off_gemm,
                          ctx->pool);
        }
    }
    return 0;
}

static int s_conv_prepare(bs_graph_t *g, bs_node_t *n, bs_err_t *err)
{
    if (!bs_prec_eq(n->prec, BS_PREC_FP32))
        return s_qconv_prepare(g, n, err);
    s_geom_t o;
    bs_tensor_t *w;
    int rc = s_conv_geom(g, n, &o, &w, err);
    if (rc)
        return rc;
    s_conv_release(n);
    s_conv_t *st = bs_calloc(1, sizeof *st);
    if (!st)
        return bs_node_err(err, n, BS_ENOMEM, "out of memory");
    st->g = o;
    st->const_w = w->kind == BS_TENSOR_CONST && w->data;
    int pads0 = 1, ones = 1, strides1 = 1;
    for (int i = 0; i < 3; i++) {
        pads0 &= o.ph[i] == 0 && o.pt[i] == 0;
        ones &= o.k[i] == 1;
        strides1 &= o.s[i] == 1;
    }
    if (o.ns <= 2 && o.G == o.C && o.Cg == 1 && o.Mg == 1)
        st->path = S_PATH_DW;
    else if (ones && strides1 && pads0)
        st->path = S_PATH_1X1;
    else if (o.ns <= 2 && s_direct_bytes(&o) > 0)
        st->path = S_PATH_DIRECT;
    else if (o.ns <= 2)
        st->path = S_PATH_IM2COL2D;
    else
        st->path = S_PATH_IM2COL3D;
    n->state = st;
    n->scratch = 0;
    if (st->path == S_PATH_DW)
        return 0;
    st->gM = (int)o.Pout;
    st->gN = (int)o.Mg;
    st->gK = (int)(o.Cg * o.Kprod);
    if (st->path == S_PATH_IM2COL2D) {
        int64_t OW = o.out[2], rows = S_BAND_FLOATS / ((int64_t)st->gK * OW);
        int64_t rmin = (S_BAND_MIN_PIX + OW - 1) / OW;
        rows = rows < rmin ? rmin : rows;
        st->band = (int)(rows < o.out[1] ? rows : o.out[1]);
        st->gM = (int)(st->band * OW);
    }
    st->wg_bytes = bs__align64(bs_gemm_packed_size(st->gN, st->gK));
    size_t off = 0;
    if (st->const_w) {
        st->wpacked = bs__aligned_alloc(st->wg_bytes * (size_t)o.G, &st->wraw);
        if (!st->wpacked)
            return bs_node_err(err, n, BS_ENOMEM, "out of memory packing weight '%s'", w->name);
        s_pack_groups(st, w->data, o.Mg * st->gK, st->gK, 1, st->wpacked);
        n->weight_packed = 1;
        n->packed_bytes = st->wg_bytes * (size_t)o.G;
    } else {
        st->off_w = off;
        off += st->wg_bytes * (size_t)o.G;
    }
    if (st->path == S_PATH_DIRECT) {
        st->off_gemm = off;
        n->scratch = off + bs__align64(s_direct_bytes(&o));
        return 0;
    }
    if (st->path != S_PATH_1X1) {
        st->off_col = off;
        off += bs__align64((size_t)st->gK * (size_t)st->gM * sizeof(float));
    }
    st->off_gemm = off;
    off += bs__align64(bs_gemm_scratch_size(st->gM, st->gN, st->gK, bs__threads(g)));
    n->scratch = off;
    return 0;
}

/* 3-D im2col: col[((c*KD + kd)*KH + kh)*KW + kw][(od*OH + oh)*OW + ow]. */
static void s_im2col3d(const s_geom_t *o, const float *x, float *col)
{
    const int64_t ID = o->in[0], IH = o->in[1], IW = o->in[2];
    const int64_t OD = o->out[0], OH = o->out[1], OW = o->out[2];
    for (int64_t c = 0; c < o->Cg; c++)
        for (int64_t kd = 0; kd < o->k[0]; kd++)
            for (int64_t kh = 0; kh < o->k[1]; kh++)
                for (int64_t kw = 0; kw < o->k[2]; kw++) {
                    float *row =
                        col + (((c * o->k[0] + kd) * o->k[1] + kh) * o->k[2] + kw) * o->Pout;
                    const float *xc = x + c * o->Pin;
                    for (int64_t od = 0; od < OD; od++) {
                        int64_t id = od * o->s[0] - o->ph[0] + kd * o->d[0];
                        for (int64_t oh = 0; oh < OH; oh++) {
                            int64_t ih = oh * o->s[1] - o->ph[1] + kh * o->d[1];
                            float *r = row + (od * OH + oh) * OW;
                            if (id < 0 || id >= ID || ih < 0 || ih >= IH) {
                                memset(r, 0, (size_t)OW * sizeof(float));
                                continue;
                            }
                            const float *xr = xc + (id * IH + ih) * IW;
                            for (int64_t ow = 0; ow < OW; ow++) {
                                int64_t iw = ow * o->s[2] - o->ph[2] + kw * o->d[2];
                                r[ow] = iw >= 0 && iw < IW ? xr[iw] : 0.0f;
                            }
                        }
                    }
                }
}

static bs_conv2d_t s_conv2d(const s_geom_t *o, int64_t channels)
{
    bs_conv2d_t cv;
    cv.C = (int)channels;
    cv.H = (int)o->in[1];
    cv.W = (int)o->in[2];
    cv.KH = (int)o->k[1];
    cv.KW = (int)o->k[2];
    cv.OH = (int)o->out[1];
    cv.OW = (int)o->out[2];
    cv.sh = (int)o->s[1];
    cv.sw = (int)o->s[2];
    cv.dh = (int)o->d[1];
    cv.dw = (int)o->d[2];
    cv.pt = (int)o->ph[1];
    cv.pl = (int)o->ph[2];
    return cv;
}

/* im2col of one channel per job, so a pool can share the window matrix's construction. */
typedef struct s_im2col_job {
    bs_conv2d_t b;   /* geometry of one channel (C = 1) */
    const float *x;  /* channel 0 */
    int64_t xstride; /* floats between channels */
    float *col;
    int64_t colstride; /* floats between channels' rows of col */
} s_im2col_job_t;

static void s_im2col_channel(void *ctx, int c)
{
    const s_im2col_job_t *j = ctx;
    bs_im2col(&j->b, j->x + c * j->xstride, j->col + c * j->colstride);
}

/* Below this many floats of window matrix, one thread builds it (waking the pool costs more). */
enum { S_IM2COL_PAR_MIN = 16384 };

/* 2-D im2col + GEMM of one image and group, band by band of output rows. A band reads input
 * rows [r0, r1) only: its geometry is the plane cut to those rows, with the padding above
 * shifted accordingly; channels go one by one (over the pool when there is enough work),
 * since the cut plane's channel stride is not H * W. */
static void s_conv2d_banded(const s_conv_t *st, const bs_node_t *n, const float *xg,
                            const void *wg, const float *bg, float *yg, float *col, void *gs,
                            bs_threadpool_t *pool)
{
    const s_geom_t *o = &st->g;
    bs_conv2d_t cv = s_conv2d(o, o->Cg);
    int par = bs_threadpool_size(pool) > 1;
    if (st->band >= cv.OH && (!par || (int64_t)st->gK * o->Pout < S_IM2COL_PAR_MIN)) {
        bs_im2col(&cv, xg, col);
        bs_gemm((int)o->Pout, st->gN, st->gK, col, 1, o->Pout, wg, bg, yg, 1, o->Pout, n->act,
                n->act_lo, n->act_hi, gs, pool);
        return;
    }
    int span = (cv.KH - 1) * cv.dh + 1;
    for (int oh0 = 0; oh0 < cv.OH; oh0 += st->band) {
        int oh1 = oh0 + st->band < cv.OH ? oh0 + st->band : cv.OH;
        int ih0 = oh0 * cv.sh - cv.pt, ih1 = (oh1 - 1) * cv.sh - cv.pt + span;
        int r0 = ih0 < 0 ? 0 : ih0, r1 = ih1 > cv.H ? cv.H : ih1;
        s_im2col_job_t j = {.b = cv, .x = xg + (int64_t)r0 * cv.W, .xstride = o->Pin, .col = col};
        j.b.C = 1;
        j.b.H = r1 > r0 ? r1 - r0 : 0;
        j.b.pt = r0 - ih0;
        j.b.OH = oh1 - oh0;
        int mb = j.b.OH * cv.OW;
        j.colstride = (int64_t)cv.KH * cv.KW * mb;
        if (par && (int64_t)st->gK * mb >= S_IM2COL_PAR_MIN)
            bs_threadpool_run(pool, cv.C, s_im2col_channel, &j);
        else
            for (int c = 0; c < cv.C; c++)
                s_im2col_channel(&j, c);
        bs_gemm(mb, st->gN, st->gK, col, 1, mb, wg, bg, yg + (int64_t)oh0 * cv.OW, 1, o->Pout,
                n->act, n->act_lo, n->act_hi, gs, pool);
    }
}

static int s_conv_run(bs_graph_t *g, bs_node_t *n, bs_ctx_t *ctx)
{
    const s_conv_t *st = n->state;
    if (!st)
        return BS_EINVAL;
    if (st->qw)
        return s_qconv_run(g, n, ctx);
    const s_geom_t *o = &st->g;
    const float *x = bs_node_input(g, n, 0)->data;
    const float *w = bs_node_input(g, n, 1)->data;
    const bs_tensor_t *bt = bs_node_input(g, n, 2);
    const float *b = bt ? bt->data : NULL;
    float *y = bs_node_output(g, n, 0)->data;
    char *scratch = ctx->scratch;

    if (st->path == S_PATH_DW) {
        bs_conv2d_t cv = s_conv2d(o, o->C);
        for (int64_t img = 0; img < o->N; img++)
            bs_conv2d_depthwise(&cv, x + img * o->C * o->Pin, w, b, y + img * o->M * o->Pout,
                                n->act, n->act_lo, n->act_hi, ctx->pool);
        return 0;
    }
    const char *wp = st->wpacked;
    if (!st->const_w) {
        s_pack_groups(st, w, o->Mg * st->gK, st->gK, 1, scratch + st->off_w);
        wp = scratch + st->off_w;
    }
    float *col = (float *)(scratch + st->off_col);
    void *gs = scratch + st->off_gemm;
    for (int64_t img = 0; img < o->N; img++)
        for (int64_t grp = 0; grp < o->G; grp++) {
            const float *xg = x + (img * o->C + grp * o->Cg) * o->Pin;
            float *yg = y + (img * o->M + grp * o->Mg) * o->Pout;
            const float *bg = b ? b + grp * o->Mg : NULL;
            const void *wg = wp + grp * st->wg_bytes;
            if (st->path == S_PATH_DIRECT) {
                bs_conv2d_t cv = s_conv2d(o, o->Cg);
                bs_conv2d_direct(&cv, st->gN, xg, wg, bg, yg, n->act, n->act_lo, n->act_hi, gs,
                                 ctx->pool);
                continue;
            }
            if (st->path == S_PATH_IM2COL2D) {
                s_conv2d_banded(st, n, xg, wg, bg, yg, col, gs, ctx->pool);
                continue;
            }
            const float *X = col;
            if (st->path == S_PATH_1X1)
                X = xg;
            else
                s_im2col3d(o, xg, col);
            bs_gemm(st->gM, st->gN, st->gK, X, 1, o->Pout, wg, bg, yg, 1, o->Pout, n->act,
                    n->act_lo, n->act_hi, gs, ctx->pool);
        }
    return 0;
}

const bs_op_t bs__op_conv = {
    .op_type = "Conv",
    .infer = s_conv_infer,
    .prepare = s_conv_prepare,
    .run = s_conv_run,
    .release = s_conv_release,
};

/* ---- ConvTranspose ------------------------------------------------------------------------- */

static int s_convt_geom(bs_graph_t *g, const bs_node_t *n, s_geom_t *o, bs_tensor_t **w,
                        bs_err_t *err)
{
    int64_t in[3], k[3];
    int rc = s_geom_common(g, n, 1, o, in, k, w, err);
    if (rc)
        return rc;
    int ns = o->ns;
    int64_t s[3], d[3], op[3], ph[3], pt[3], out[3];
    const int64_t *v;
    int cnt;
    static const char *const names[] = {"strides", "dilations", "output_padding"};
    int64_t *dst[] = {s, d, op};
    for (int a = 0; a < 3; a++) {
        cnt = bs_attr_ints(n, names[a], &v);
        if (cnt >= 0 && cnt != ns)
            return bs_node_err(err, n, BS_EMODEL, "attribute '%s' has %d values, expected %d",
                               names[a], cnt, ns);
        for (int i = 0; i < ns; i++) {
            dst[a][i] = cnt >= 0 ? v[i] : (a == 2 ? 0 : 1);
            if (dst[a][i] < (a == 2 ? 0 : 1) || dst[a][i] > INT32_MAX)
                return bs_node_err(err, n, BS_EMODEL, "attribute '%s'[%d] = %lld is out of range",
                                   names[a], i, (long long)dst[a][i]);
        }
    }
    const char *ap = bs_attr_string(n, "auto_pad", "NOTSET");
    int upper = strcmp(ap, "SAME_UPPER") == 0, lower = strcmp(ap, "SAME_LOWER") == 0;
    int valid = strcmp(ap, "VALID") == 0, notset = strcmp(ap, "NOTSET") == 0;
    if (!upper && !lower && !valid && !notset)
        return bs_node_err(err, n, BS_EMODEL,
                           "attribute 'auto_pad' = '%s' is not NOTSET, SAME_UPPER, SAME_LOWER "
                           "or VALID",
                           ap);
    const int64_t *os;
    int nos = bs_attr_ints(n, "output_shape", &os);
    if (nos >= 0 && nos != ns && nos != ns + 2)
        return bs_node_err(err, n, BS_EMODEL,
                           "attribute 'output_shape' has %d values, "
                           "expected %d",
                           nos, ns);
    if (nos == ns + 2)
        os += 2;
    const int64_t *pads;
    int np = bs_attr_ints(n, "pads", &pads);
    if (np >= 0 && np != 2 * ns)
        return bs_node_err(err, n, BS_EMODEL, "attribute 'pads' has %d values, expected %d", np,
                           2 * ns);
    for (int i = 0; i < ns; i++) {
        if (in[i] > INT32_MAX || k[i] > INT32_MAX ||
            (nos >= 0 && (os[i] < 1 || os[i] > INT32_MAX)))
            return bs_node_err(err, n, BS_EUNSUPPORTED,
                               "spatial axis %d: input, kernel or output size out of range", i);
        int64_t natural = s[i] * (in[i] - 1) + op[i] + (k[i] - 1) * d[i] + 1;
        int64_t total = 0;
        if (nos >= 0 || upper || lower) {
            out[i] = nos >= 0 ? os[i] : in[i] * s[i];
            total = natural - out[i];
            if (total < 0)
                total = 0;
            if (upper) { /* as the ONNX spec: an odd pixel of padding goes at the end */
                ph[i] = total / 2;
                pt[i] = total - total / 2;
            } else {
                ph[i] = total - total / 2;
                pt[i] = total / 2;
            }
        } else {
            ph[i] = notset && np >= 0 ? pads[i] : 0;
            pt[i] = notset && np >= 0 ? pads[i + ns] : 0;
            if (ph[i] < 0 || pt[i] < 0 || ph[i] > INT32_MAX || pt[i] > INT32_MAX)
                return bs_node_err(err, n, BS_EMODEL, "attribute 'pads' has a value out of range");
            out[i] = natural - ph[i] - pt[i];
        }
        if (out[i] < 1)
            return bs_node_err(err, n, BS_EMODEL,
                               "output spatial axis %d would be %lld (padding too large)", i,
                               (long long)out[i]);
    }
    s_promote(ns, in, 1, o->in);
    s_promote(ns, k, 1, o->k);
    s_promote(ns, s, 1, o->s);
    s_promote(ns, d, 1, o->d);
    s_promote(ns, ph, 0, o->ph);
    s_promote(ns, pt, 0, o->pt);
    s_promote(ns, out, 1, o->out);
    return s_geom_finish(n, o, err);
}

static int s_convt_infer(bs_graph_t *g, bs_node_t *n, bs_err_t *err)
{
    s_geom_t o;
    bs_tensor_t *w, *y;
    int rc = s_convt_geom(g, n, &o, &w, err);
    if (rc || (rc = bs__output(g, n, 0, &y, err)))
        return rc;
    if (n->n_out != 1)
        return bs_node_err(err, n, BS_EMODEL, "expected 1 output, got %d", n->n_out);
    s_set_out(y, &o);
    n->weight_layer = w->kind == BS_TENSOR_CONST;
    return 0;
}

/* ConvTranspose at a quantized precision: the GEMM rows are (output channel, kernel tap) of
 * Cg inputs each, all the taps of one output channel sharing its scale (bs__qw_spec_t
 * rows_per_scale), reordered from W [C][Mg][taps] into T[oc][tap][c] first. Integer layers
 * quantize the input planes (or read uint8 ones) and transpose them to rows (a 1x1 im2row);
 * the product is the float window matrix either way, then col2im, bias and act as in fp32. */
static int s_qconvt_prepare(bs_graph_t *g, bs_node_t *n, bs_err_t *err)
{
    s_geom_t o;
    bs_tensor_t *w;
    int rc = s_convt_geom(g, n, &o, &w, err);
    if (rc)
        return rc;
    s_conv_release(n);
    if (w->kind != BS_TENSOR_CONST || !w->data)
        return bs_node_err(err, n, BS_EINVAL, "a quantized precision needs a constant weight");
    s_conv_t *st = bs_calloc(1, sizeof *st);
    if (!st || !(st->qw = bs_calloc(1, sizeof *st->qw))) {
        bs_free(st);
        return bs_node_err(err, n, BS_ENOMEM, "out of memory");
    }
    n->state = st;
    st->g = o;
    st->const_w = 1;
    st->gM = (int)o.Pin;
    st->gN = (int)(o.Mg * o.Kprod);
    st->gK = (int)o.Cg;
    int64_t rows = o.M * o.Kprod;
    float *T = bs_malloc(sizeof(float) * (size_t)(rows * o.Cg));
    if (!T)
        return bs_node_err(err, n, BS_ENOMEM, "out of memory");
    const float *W = w->data;
    for (int64_t oc = 0; oc < o.M; oc++) {
        int64_t grp = oc / o.Mg, ocl = oc % o.Mg;
        for (int64_t k = 0; k < o.Kprod; k++)
            for (int64_t c = 0; c < o.Cg; c++)
                T[(oc * o.Kprod + k) * o.Cg + c] =
                    W[((grp * o.Cg + c) * o.Mg + ocl) * o.Kprod + k];
    }
    bs__qw_spec_t sp = {.W = T, .sn = o.Cg, .sk = 1, .N = (int)rows, .K = (int)o.Cg,
                        .G = (int)o.G, .alpha = 1.0f, .rows_per_scale = (int)o.Kprod};
    rc = bs__qw_prepare(g, n, &sp, st->qw, err);
    bs_free(T);
    if (rc)
        return rc;
    n->weight_packed = 1;
    n->packed_bytes = st->qw->held;
    const bs_tensor_t *x = bs_node_input(g, n, 0);
    size_t off = 0;
    st->off_xq = off;
    if (st->qw->int8 && !x->quantized)
        off += bs__align64((size_t)(o.C * o.Pin));
    else if (!st->qw->int8 && n->prec.a == 8)
        off += bs__align64((size_t)(o.C * o.Pin) * sizeof(float));
    st->off_w = off;
    if (st->qw->int8)
        off += bs__align64((size_t)o.Pin * (size_t)BS_QK_PAD(st->gK));
    st->off_col = off;
    off += bs__align64((size_t)st->gN * (size_t)st->gM * sizeof(float));
    st->off_gemm = off;
    off += bs__align64(bs__qw_gemm_scratch(st->qw, st->gM, bs__threads(g)));
    n->scratch = off;
    return 0;
}

static void s_col2im3d(const s_geom_t *o, const float *col, float *y);

static int s_qconvt_run(bs_graph_t *g, bs_node_t *n, bs_ctx_t *ctx)
{
    const s_conv_t *st = n->state;
    const s_geom_t *o = &st->g;
    const bs__qw_t *q = st->qw;
    const bs_tensor_t *xt = bs_node_input(g, n, 0), *bt = bs_node_input(g, n, 2);
    const float *b = bt ? bt->data : NULL;
    float *y = bs_node_output(g, n, 0)->data;
    char *scratch = ctx->scratch;
    float *col = (float *)(scratch + st->off_col);
    void *gs = scratch + st->off_gemm;
    int64_t cpin = o->C * o->Pin;
    memset(y, 0, (size_t)(o->N * o->M * o->Pout) * sizeof(float));
    for (int64_t img = 0; img < o->N; img++) {
        const uint8_t *xq = NULL;
        const float *xf = NULL;
        if (q->int8 && xt->quantized) {
            xq = (const uint8_t *)xt->data + img * cpin;
        } else if (q->int8) {
            bs_quantize_u8((const float *)xt->data + img * cpin, cpin, q->in.scale,
                           q->in.zero_point, (uint8_t *)(scratch + st->off_xq));
            xq = (const uint8_t *)(scratch + st->off_xq);
        } else if (n->prec.a == 8) {
            bs__qw_qdq(q, (const float *)xt->data + img * cpin, cpin,
                       (float *)(scratch + st->off_xq));
            xf = (const float *)(scratch + st->off_xq);
        } else {
            xf = (const float *)xt->data + img * cpin;
        }
        for (int64_t grp = 0; grp < o->G; grp++) {
            float *yg = y + (img * o->M + grp * o->Mg) * o->Pout;
            if (xq) {
                /* the input planes as rows of Cg channels: a 1x1 window */
                bs_conv2d_t cv = {.C = (int)o->Cg, .H = 1, .W = (int)o->Pin, .KH = 1, .KW = 1,
                                  .OH = 1, .OW = (int)o->Pin, .sh = 1, .sw = 1, .dh = 1,
                                  .dw = 1};
                uint8_t *rows = (uint8_t *)(scratch + st->off_w);
                int64_t ldr = BS_QK_PAD(st->gK);
                bs_im2row_u8(&cv, xq + grp * o->Cg * o->Pin, (uint8_t)q->in.zero_point, rows,
                             ldr);
                bs__qw_gemm_q(q, (int)grp, st->gM, rows, ldr, col, 1, o->Pin, gs, ctx->pool);
            } else {
                bs__qw_gemm_f(q, (int)grp, st->gM, xf + grp * o->Cg * o->Pin, 1, o->Pin, col, 1,
                              o->Pin, BS_KACT_NONE, 0.0f, 0.0f, gs, ctx->pool);
            }
            s_col2im3d(o, col, yg);
        }
    }
    for (int64_t img = 0; (b || n->act != BS_ACT_NONE) && img < o->N; img++)
        for (int64_t oc = 0; oc < o->M; oc++) {
            float *yc = y + (img * o->M + oc) * o->Pout, bv = b ? b[oc] : 0.0f;
            for (int64_t p = 0; p < o->Pout; p++) {
                float v = yc[p] + bv;
                if (n->act == BS_ACT_RELU)
                    v = v > 0.0f ? v : 0.0f;
                else if (n->act == BS_ACT_CLIP)
                    v = v < n->act_lo ? n->act_lo : (v > n->act_hi ? n->act_hi : v);
                yc[p] = v;
            }
        }
    return 0;
}

static int s_convt_prepare(bs_graph_t *g, bs_node_t *n, bs_err_t *err)
{
    if (!bs_prec_eq(n->prec, BS_PREC_FP32))
        return s_qconvt_prepare(g, n, err);
    s_geom_t o;
    bs_tensor_t *w;
    int rc = s_convt_geom(g, n, &o, &w, err);
    if (rc)
        return rc;
    s_conv_release(n);
    s_conv_t *st = bs_calloc(1, sizeof *st);
    if (!st)
        return bs_node_err(err, n, BS_ENOMEM, "out of memory");
    n->state = st;
    st->g = o;
    st->const_w = w->kind == BS_TENSOR_CONST && w->data;
    st->gM = (int)o.Pin;
    st->gN = (int)(o.Mg * o.Kprod);
    st->gK = (int)o.Cg;
    st->wg_bytes = bs__align64(bs_gemm_packed_size(st->gN, st->gK));
    size_t off = 0;
    /* W is [C][Mg*Kprod]: group grp's (n, k) at W[(grp*Cg + k) * Mg*Kprod + n]. */
    if (st->const_w) {
        st->wpacked = bs__aligned_alloc(st->wg_bytes * (size_t)o.G, &st->wraw);
        if (!st->wpacked)
            return bs_node_err(err, n, BS_ENOMEM, "out of memory packing weight '%s'", w->name);
        s_pack_groups(st, w->data, o.Cg * st->gN, 1, st->gN, st->wpacked);
        n->weight_packed = 1;
        n->packed_bytes = st->wg_bytes * (size_t)o.G;
    } else {
        st->off_w = off;
        off += st->wg_bytes * (size_t)o.G;
    }
    st->off_col = off;
    off += bs__align64((size_t)st->gN * (size_t)st->gM * sizeof(float));
    st->off_gemm = off;
    off += bs__align64(bs_gemm_scratch_size(st->gM, st->gN, st->gK, bs__threads(g)));
    n->scratch = off;
    return 0;
}

/* Adds col[(oc*Kprod + kidx)][p_in] into y[oc][p_out] where the kernel tap lands. */
static void s_col2im3d(const s_geom_t *o, const float *col, float *y)
{
    const int64_t ID = o->in[0], IH = o->in[1], IW = o->in[2];
    const int64_t OD = o->out[0], OH = o->out[1], OW = o->out[2];
    for (int64_t oc = 0; oc < o->Mg; oc++) {
        float *yc = y + oc * o->Pout;
        for (int64_t kd = 0; kd < o->k[0]; kd++)
            for (int64_t kh = 0; kh < o->k[1]; kh++)
                for (int64_t kw = 0; kw < o->k[2]; kw++) {
                    const float *row =
                        col + (((oc * o->k[0] + kd) * o->k[1] + kh) * o->k[2] + kw) * o->Pin;
                    for (int64_t id = 0; id < ID; id++) {
                        int64_t od = id * o->s[0] - o->ph[0] + kd * o->d[0];
                        if (od < 0 || od >= OD)
                            continue;
                        for (int64_t ih = 0; ih < IH; ih++) {
                            int64_t oh = ih * o->s[1] - o->ph[1] + kh * o->d[1];
                            if (oh < 0 || oh >= OH)
                                continue;
                            const float *r = row + (id * IH + ih) * IW;
                            float *yr = yc + (od * OH + oh) * OW;
                            for (int64_t iw = 0; iw < IW; iw++) {
                                int64_t ow = iw * o->s[2] - o->ph[2] + kw * o->d[2];
                                if (ow >= 0 && ow < OW)
                                    yr[ow] += r[iw];
                            }
                        }
                    }
                }
    }
}

static int s_convt_run(bs_graph_t *g, bs_node_t *n, bs_ctx_t *ctx)
{
    const s_conv_t *st = n->state;
    if (!st)
        return BS_EINVAL;
    if (st->qw)
        return s_qconvt_run(g, n, ctx);
    const s_geom_t *o = &st->g;
    const float *x = bs_node_input(g, n, 0)->data;
    const float *w = bs_node_input(g, n, 1)->data;
    const bs_tensor_t *bt = bs_node_input(g, n, 2);
    const float *b = bt ? bt->data : NULL;
    float *y = bs_node_output(g, n, 0)->data;
    char *scratch = ctx->scratch;
    const char *wp = st->wpacked;
    if (!st->const_w) {
        s_pack_groups(st, w, o->Cg * st->gN, 1, st->gN, scratch + st->off_w);
        wp = scratch + st->off_w;
    }
    float *col = (float *)(scratch + st->off_col);
    void *gs = scratch + st->off_gemm;
    memset(y, 0, (size_t)(o->N * o->M * o->Pout) * sizeof(float));
    for (int64_t img = 0; img < o->N; img++)
        for (int64_t grp = 0; grp < o->G; grp++) {
            const float *xg = x + (img * o->C + grp * o->Cg) * o->Pin;
            float *yg = y + (img * o->M + grp * o->Mg) * o->Pout;
            bs_gemm(st->gM, st->gN, st->gK, xg, 1, o->Pin, wp + grp * st->wg_bytes, NULL, col, 1,
                    o->Pin, BS_KACT_NONE, 0.0f, 0.0f, gs, ctx->pool);
            s_col2im3d(o, col, yg);
        }
    if (b || n->act != BS_ACT_NONE) {
        for (int64_t img = 0; img < o->N; img++)
            for (int64_t oc = 0; oc < o->M; oc++) {
                float *yc = y + (img * o->M + oc) * o->Pout, bv = b ? b[oc] : 0.0f;
                for (int64_t p = 0; p < o->Pout; p++) {
                    float v = yc[p] + bv;
                    if (n->act == BS_ACT_RELU)
                        v = v > 0.0f ? v : 0.0f;
                    else if (n->act == BS_ACT_CLIP)
                        v = v < n->act_lo ? n->act_lo : (v > n->act_hi ? n->act_hi : v);
                    yc[p] = v;
                }
            }
    }
    return 0;
}

const bs_op_t bs__op_conv_transpose = {
    .op_type = "ConvTranspose",
    .infer = s_convt_infer,
    .prepare = s_convt_prepare,
    .run = s_convt_run,
    .release = s_conv_release,
};

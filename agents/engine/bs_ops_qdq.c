/*
 * bs_ops_qdq.c - QuantizeLinear and DequantizeLinear (opsets 10 to 18): what a QDQ model, such
 * as the one `bitscout export` writes, is made of.
 *
 *   QuantizeLinear:   y = saturate(round_half_even(x / scale) + zero_point), x float32,
 *                     y uint8 (the default, or zero_point's type) or int8;
 *   DequantizeLinear: y = (x - zero_point) * scale, x uint8 / int8 / int32, y float32.
 * scale and zero_point are a scalar or one-element tensor (per tensor), or since opset 13 a
 * 1-D tensor along `axis` (per axis, default 1, negative counts from the end). zero_point is
 * optional (0). Both fold at load time when their inputs are const, so a DequantizeLinear of a
 * weight initializer becomes a float const the weight layer packs as usual. int32 inputs to
 * DequantizeLinear (quantized biases) take no zero point other than 0, as ONNX requires.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "bs_ops_internal.h"
#include "bs_quant.h"

/* Checks scale / zero point against x and the axis; *axis_len is 1 for per-tensor. */
static int s_qdq_check(bs_graph_t *g, bs_node_t *n, int quantize, int64_t *axis,
                       int64_t *axis_len, bs_err_t *err)
{
    bs_tensor_t *x = bs_node_input(g, n, 0), *s = bs_node_input(g, n, 1);
    bs_tensor_t *z = bs_node_input(g, n, 2);
    if (n->n_in < 2 || n->n_in > 3 || !x || !s)
        return bs_node_err(err, n, BS_EMODEL, "expected 2 or 3 inputs (x, scale, zero_point)");
    if (!x->has_shape || !s->has_shape)
        return bs_node_err(err, n, BS_EMODEL, "inputs need inferred shapes");
    if (s->dtype != BS_DT_FLOAT)
        return bs_node_err(err, n, BS_EUNSUPPORTED, "scale '%s' must be float32, got %s",
                           s->name, bs_dtype_name(s->dtype));
    if (quantize && x->dtype != BS_DT_FLOAT)
        return bs_node_err(err, n, BS_EUNSUPPORTED, "input '%s' must be float32, got %s",
                           x->name, bs_dtype_name(x->dtype));
    if (!quantize && x->dtype != BS_DT_UINT8 && x->dtype != BS_DT_INT8 &&
        x->dtype != BS_DT_INT32)
        return bs_node_err(err, n, BS_EUNSUPPORTED,
                           "input '%s' must be uint8, int8 or int32, got %s", x->name,
                           bs_dtype_name(x->dtype));
    int64_t sn = bs_shape_numel(&s->shape);
    *axis_len = 1;
    *axis = 0;
    if (s->shape.rank > 1 || (s->shape.rank == 1 && sn != 1)) {
        if (s->shape.rank != 1)
            return bs_node_err(err, n, BS_EMODEL, "scale '%s' must be a scalar or 1-D",
                               s->name);
        int64_t a = bs_attr_int(n, "axis", 1);
        if (a < 0)
            a += x->shape.rank;
        if (a < 0 || a >= x->shape.rank)
            return bs_node_err(err, n, BS_EMODEL, "axis %lld is out of range for rank %d",
                               (long long)bs_attr_int(n, "axis", 1), x->shape.rank);
        if (x->shape.d[a] != sn)
            return bs_node_err(err, n, BS_EMODEL,
                               "scale '%s' has %lld values; axis %lld of '%s' has %lld",
                               s->name, (long long)sn, (long long)a, x->name,
                               (long long)x->shape.d[a]);
        *axis = a;
        *axis_len = sn;
    }
    if (z) {
        if (!z->has_shape || bs_shape_numel(&z->shape) != sn)
            return bs_node_err(err, n, BS_EMODEL,
                               "zero_point '%s' must have as many values as scale (%lld)",
                               z->name, (long long)sn);
        int want = quantize ? z->dtype : x->dtype;
        if (z->dtype != want || (z->dtype != BS_DT_UINT8 && z->dtype != BS_DT_INT8 &&
                                 z->dtype != BS_DT_INT32))
            return bs_node_err(err, n, BS_EUNSUPPORTED,
                               "zero_point '%s' is %s; expected uint8 or int8%s", z->name,
                               bs_dtype_name(z->dtype), quantize ? "" : " matching the input");
        if (quantize && z->dtype == BS_DT_INT32)
            return bs_node_err(err, n, BS_EUNSUPPORTED, "QuantizeLinear to int32");
    }
    return 0;
}

static int s_quant_infer(bs_graph_t *g, bs_node_t *n, bs_err_t *err)
{
    int64_t axis, len;
    bs_tensor_t *y;
    int rc = s_qdq_check(g, n, 1, &axis, &len, err);
    if (rc || (rc = bs__output(g, n, 0, &y, err)))
        return rc;
    const bs_tensor_t *z = bs_node_input(g, n, 2);
    bs_tensor_set(y, z ? z->dtype : BS_DT_UINT8, &bs_node_input(g, n, 0)->shape);
    return 0;
}

static int s_dequant_infer(bs_graph_t *g, bs_node_t *n, bs_err_t *err)
{
    int64_t axis, len;
    bs_tensor_t *y;
    int rc = s_qdq_check(g, n, 0, &axis, &len, err);
    if (rc || (rc = bs__output(g, n, 0, &y, err)))
        return rc;
    bs_tensor_set(y, BS_DT_FLOAT, &bs_node_input(g, n, 0)->shape);
    return 0;
}

static int32_t s_zp(const bs_tensor_t *z, int64_t i)
{
    if (!z || !z->data)
        return 0;
    if (z->dtype == BS_DT_UINT8)
        return ((const uint8_t *)z->data)[i];
    if (z->dtype == BS_DT_INT8)
        return ((const int8_t *)z->data)[i];
    return ((const int32_t *)z->data)[i];
}

/* Elements before the axis (outer), along it (len) and after it (inner). */
static void s_split(const bs_tensor_t *x, int64_t axis, int64_t len, int64_t *outer,
                    int64_t *inner)
{
    *outer = 1;
    *inner = 1;
    if (len == 1) {
        *inner = bs_shape_numel(&x->shape);
        return;
    }
    for (int i = 0; i < axis; i++)
        *outer *= x->shape.d[i];
    for (int i = (int)axis + 1; i < x->shape.rank; i++)
        *inner *= x->shape.d[i];
}

static int s_quant_run(bs_graph_t *g, bs_node_t *n, bs_ctx_t *ctx)
{
    (void)ctx;
    int64_t axis, len, outer, inner;
    if (s_qdq_check(g, n, 1, &axis, &len, NULL))
        return BS_EINVAL;
    const bs_tensor_t *x = bs_node_input(g, n, 0), *s = bs_node_input(g, n, 1);
    const bs_tensor_t *z = bs_node_input(g, n, 2);
    bs_tensor_t *y = bs_node_output(g, n, 0);
    s_split(x, axis, len, &outer, &inner);
    int is_u8 = y->dtype == BS_DT_UINT8;
    float lo = is_u8 ? 0.0f : -128.0f, hi = is_u8 ? 255.0f : 127.0f;
    const float *xv = x->data, *sv = s->data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t a = 0; a < len; a++) {
            float sc = sv[a];
            float zp = (float)s_zp(z, a);
            int64_t base = (o * len + a) * inner;
            for (int64_t i = 0; i < inner; i++) {
                float v = xv[base + i] / sc;
                v = v != v ? 0.0f : bs_quant_round(v < -1e9f ? -1e9f : (v > 1e9f ? 1e9f : v));
                v += zp;
                v = v < lo ? lo : (v > hi ? hi : v);
                if (is_u8)
                    ((uint8_t *)y->data)[base + i] = (uint8_t)v;
                else
                    ((int8_t *)y->data)[base + i] = (int8_t)v;
            }
        }
    return 0;
}

static int s_dequant_run(bs_graph_t *g, bs_node_t *n, bs_ctx_t *ctx)
{
    (void)ctx;
    int64_t axis, len, outer, inner;
    if (s_qdq_check(g, n, 0, &axis, &len, NULL))
        return BS_EINVAL;
    const bs_tensor_t *x = bs_node_input(g, n, 0), *s = bs_node_input(g, n, 1);
    const bs_tensor_t *z = bs_node_input(g, n, 2);
    float *yv = bs_node_output(g, n, 0)->data;
    const float *sv = s->data;
    s_split(x, axis, len, &outer, &inner);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t a = 0; a < len; a++) {
            float sc = sv[a];
            int32_t zp = s_zp(z, a);
            int64_t base = (o * len + a) * inner;
            for (int64_t i = 0; i < inner; i++) {
                int64_t q;
                if (x->dtype == BS_DT_UINT8)
                    q = ((const uint8_t *)x->data)[base + i];
                else if (x->dtype == BS_DT_INT8)
                    q = ((const int8_t *)x->data)[base + i];
                else
                    q = ((const int32_t *)x->data)[base + i];
                yv[base + i] = (float)(q - zp) * sc;
            }
        }
    return 0;
}

const bs_op_t bs__op_quantize_linear = {
    .op_type = "QuantizeLinear",
    .infer = s_quant_infer,
    .run = s_quant_run,
    .foldable = 1,
};

const bs_op_t bs__op_dequantize_linear = {
    .op_type = "DequantizeLinear",
    .infer = s_dequant_infer,
    .run = s_dequant_run,
    .foldable = 1,
};

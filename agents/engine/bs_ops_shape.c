/*
 * bs_ops_shape.c - the operators that move bytes instead of computing on them: Reshape,
 * Flatten, Transpose, Concat, Split, Slice, Squeeze, Unsqueeze, Shape, Gather, Cast, Constant,
 * Identity, and the small helpers exporters emit around them (Expand, Range, Where, Equal,
 * Less, LessOrEqual, Greater, GreaterOrEqual, Not, And, Or, Xor, ConstantOfShape, Tile, Pad,
 * CastLike, Size, GatherElements).
 *
 * None of them looks at an element's value except Cast, Gather's indices, Where's condition
 * and the comparisons, so every fixed-size dtype works (bs_dtype_size > 0); strings are
 * refused. Values that decide an output's shape (Reshape's shape, Slice's starts/ends, Split's
 * sizes, Squeeze/Unsqueeze axes, Expand's shape, Tile's repeats, Pad's pads, Range's bounds,
 * ConstantOfShape's shape) must be constants at load time, since every shape in the engine is
 * static; the loader folds the Shape -> Gather -> Concat chains that compute them, and a value
 * still computed at run time gets an error naming the node and the input.
 *
 * run() never allocates and keeps no state between calls: what it needs beyond the tensors
 * (slice starts, steps, split sizes) it re-derives from the node's const inputs, attributes
 * and output shapes, so the same run() serves constant folding (before prepare) and the
 * graph's run. Most copies go through one strided-view copier (s_view_copy) that merges
 * contiguous dimensions and moves whole rows with memcpy: Transpose, Slice, Expand and Tile
 * are each a choice of shape and strides over the input.
 *
 * Reshape, Flatten, Squeeze, Unsqueeze and Identity are alias ops (the graph shares the input's
 * bytes and does not call run); their run() still copies, for folding and for graphs that
 * cannot alias (a graph output that is also a graph input).
 */
#include "bs_op.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

/* Views of up to twice the max rank (Tile splits every axis in two). */
#define S_VIEW_MAX (2 * BS_MAX_RANK)
/* Largest tensor an op here may declare from values in the model (bytes), so a hostile
 * shape cannot overflow size arithmetic: 2^40 = 1 TiB. */
#define S_MAX_BYTES ((int64_t)1 << 40)

/* ---- helpers ------------------------------------------------------------------------------ */

/* Input k, present, shaped and of a fixed-size dtype. */
static int s_in(bs_graph_t *g, const bs_node_t *n, int k, bs_tensor_t **out, bs_err_t *err)
{
    bs_tensor_t *t = bs_node_input(g, n, k);
    if (!t)
        return bs_node_err(err, n, BS_EMODEL, "input %d is missing", k);
    if (!t->has_shape)
        return bs_node_err(err, n, BS_EMODEL, "input %d '%s' has no known shape", k, t->name);
    if (bs_dtype_size(t->dtype) == 0)
        return bs_node_err(err, n, BS_EUNSUPPORTED, "input %d '%s' has unsupported type %s (%d)",
                           k, t->name, bs_dtype_name(t->dtype), t->dtype);
    *out = t;
    return 0;
}

static int s_need_inputs(const bs_node_t *n, int lo, int hi, bs_err_t *err)
{
    if (n->n_in < lo || n->n_in > hi)
        return bs_node_err(err, n, BS_EMODEL, "has %d inputs, expected %d to %d", n->n_in, lo,
                           hi);
    if (n->n_out < 1)
        return bs_node_err(err, n, BS_EMODEL, "has no outputs");
    return 0;
}

static int s_is_int_dtype(int dt)
{
    switch (dt) {
    case BS_DT_UINT8: case BS_DT_INT8: case BS_DT_UINT16: case BS_DT_INT16:
    case BS_DT_INT32: case BS_DT_INT64: case BS_DT_UINT32: case BS_DT_UINT64:
        return 1;
    default:
        return 0;
    }
}

static int s_is_float_dtype(int dt)
{
    return dt == BS_DT_FLOAT || dt == BS_DT_DOUBLE || dt == BS_DT_FLOAT16;
}

/* Element i of an integer or bool array, widened to int64 (uint64 wraps). */
static int64_t s_get_i64(const void *data, int dt, int64_t i)
{
    switch (dt) {
    case BS_DT_UINT8: return ((const uint8_t *)data)[i];
    case BS_DT_INT8: return ((const int8_t *)data)[i];
    case BS_DT_UINT16: return ((const uint16_t *)data)[i];
    case BS_DT_INT16: return ((const int16_t *)data)[i];
    case BS_DT_INT32: return ((const int32_t *)data)[i];
    case BS_DT_INT64: return ((const int64_t *)data)[i];
    case BS_DT_UINT32: return ((const uint32_t *)data)[i];
    case BS_DT_UINT64: return (int64_t)((const uint64_t *)data)[i];
    case BS_DT_BOOL: return ((const uint8_t *)data)[i] != 0;
    default: return 0;
    }
}

/* Element i of a float array as double. */
static double s_get_f64(const void *data, int dt, int64_t i)
{
    switch (dt) {
    case BS_DT_FLOAT: return ((const float *)data)[i];
    case BS_DT_DOUBLE: return ((const double *)data)[i];
    case BS_DT_FLOAT16: return bs_f16_to_f32(((const uint16_t *)data)[i]);
    default: return (double)s_get_i64(data, dt, i);
    }
}

static int s_is_const(const bs_tensor_t *t)
{
    return t->kind == BS_TENSOR_CONST && (t->data || t->nbytes == 0);
}

/* Reads a const integer tensor of at most `max` elements (1-D or scalar) into v; *count gets
 * its length. `what` names the input in errors ("shape", "axes"). */
static int s_const_ints(bs_graph_t *g, const bs_node_t *n, int k, const char *what, int64_t *v,
                        int max, int *count, bs_err_t *err)
{
    bs_tensor_t *t = NULL;
    int rc = s_in(g, n, k, &t, err);
    if (rc)
        return rc;
    if (t->dtype != BS_DT_INT64 && t->dtype != BS_DT_INT32)
        return bs_node_err(err, n, BS_EMODEL, "input '%s' (%s) must be int64 or int32, not %s",
                           t->name, what, bs_dtype_name(t->dtype));
    if (t->shape.rank > 1)
        return bs_node_err(err, n, BS_EMODEL, "input '%s' (%s) must be 1-D, has rank %d",
                           t->name, what, t->shape.rank);
    if (!s_is_const(t))
        return bs_node_err(err, n, BS_EUNSUPPORTED,
                           "input '%s' (%s) must be a constant known at load time; it is "
                           "computed at run time, which static shapes cannot follow",
                           t->name, what);
    int64_t len = bs_shape_numel(&t->shape);
    if (len > max)
        return bs_node_err(err, n, BS_EMODEL, "input '%s' (%s) has %lld values, at most %d "
                           "allowed", t->name, what, (long long)len, max);
    for (int64_t i = 0; i < len; i++)
        v[i] = s_get_i64(t->data, t->dtype, i);
    *count = (int)len;
    return 0;
}

/* Checks the input/output counts (s_need_inputs) and fetches input 0 (s_in): the preamble of
 * most infers here. */
static int s_in0(bs_graph_t *g, const bs_node_t *n, int lo, int hi, bs_tensor_t **x,
                 bs_err_t *err)
{
    int rc = s_need_inputs(n, lo, hi, err);
    return rc ? rc : s_in(g, n, 0, x, err);
}

/* Exactly `count` inputs, each fetched with s_in into in[0..count). */
static int s_in_all(bs_graph_t *g, const bs_node_t *n, int count, bs_tensor_t **in,
                    bs_err_t *err)
{
    int rc = s_need_inputs(n, count, count, err);
    for (int k = 0; !rc && k < count; k++)
        rc = s_in(g, n, k, &in[k], err);
    return rc;
}

/* The (data, ints) pair of Reshape, Expand and Tile: two inputs, the second a const integer
 * list of at most BS_MAX_RANK values (`what` names it) read into v, *cnt its length. */
static int s_in_ints(bs_graph_t *g, const bs_node_t *n, const char *what, bs_tensor_t **x,
                     int64_t *v, int *cnt, bs_err_t *err)
{
    int rc = s_in0(g, n, 2, 2, x, err);
    return rc ? rc : s_const_ints(g, n, 1, what, v, BS_MAX_RANK, cnt, err);
}

/* Input 0 of Shape and Size: any dtype (only its shape is read), but a known shape. */
static int s_in_shaped(bs_graph_t *g, const bs_node_t *n, bs_tensor_t **x, bs_err_t *err)
{
    int rc = s_need_inputs(n, 1, 1, err);
    if (rc)
        return rc;
    *x = bs_node_input(g, n, 0);
    if (!*x || !(*x)->has_shape)
        return bs_node_err(err, n, BS_EMODEL, "input has no known shape");
    return 0;
}

/* Normalizes axis into [0, rank); `what` names the attribute or input. */
static int s_axis(const bs_node_t *n, int64_t axis, int rank, const char *what, int *out,
                  bs_err_t *err)
{
    if (axis < -rank || axis >= rank)
        return bs_node_err(err, n, BS_EMODEL, "%s = %lld is out of range for rank %d", what,
                           (long long)axis, rank);
    *out = (int)(axis < 0 ? axis + rank : axis);
    return 0;
}

/* The 'axis' attribute (default 0) for run(), in [0, rank): infer has already checked it. */
static int s_run_axis(const bs_node_t *n, int rank)
{
    int axis = (int)bs_attr_int(n, "axis", 0);
    return axis < 0 ? axis + rank : axis;
}

/* Checks that a shape built from model values has a sane byte size. */
static int s_check_size(const bs_node_t *n, const bs_shape_t *s, int dtype, bs_err_t *err)
{
    int64_t total = (int64_t)bs_dtype_size(dtype);
    for (int i = 0; i < s->rank; i++) {
        if (s->d[i] < 0)
            return bs_node_err(err, n, BS_EMODEL, "output dimension %d is negative (%lld)", i,
                               (long long)s->d[i]);
        if (s->d[i] == 0)
            return 0;
    }
    for (int i = 0; i < s->rank; i++) {
        if (__builtin_mul_overflow(total, s->d[i], &total) || total > S_MAX_BYTES) {
            char buf[160];
            return bs_node_err(err, n, BS_EMODEL, "output shape %s is too large",
                               bs_shape_str(s, buf, sizeof buf));
        }
    }
    return 0;
}

static void s_copy_elems(void *dst, const void *src, int64_t count, size_t es)
{
    if (count > 0)
        memmove(dst, src, (size_t)count * es);
}

/* Copies the strided view (shape, strides in elements, from src) of rank r into contiguous
 * dst. Strides may be zero (broadcast) or negative (reversed slices). */
static void s_view_copy(void *dst, const void *src, size_t es, int r, const int64_t *shape,
                        const int64_t *stride)
{
    int64_t sh[S_VIEW_MAX], st[S_VIEW_MAX], idx[S_VIEW_MAX];
    int m = 0;
    for (int k = 0; k < r; k++) {
        if (shape[k] == 0)
            return;
        if (shape[k] == 1)
            continue;
        if (m > 0 && st[m - 1] == stride[k] * shape[k]) {
            sh[m - 1] *= shape[k];
            st[m - 1] = stride[k];
        } else {
            sh[m] = shape[k];
            st[m] = stride[k];
            m++;
        }
    }
    if (m == 0) {
        memcpy(dst, src, es);
        return;
    }
    int64_t inner = sh[m - 1], is = st[m - 1], outer = 1;
    for (int k = 0; k < m - 1; k++) {
        outer *= sh[k];
        idx[k] = 0;
    }
    char *d = dst;
    const char *s = src;
    int64_t off = 0;
    for (int64_t o = 0; o < outer; o++) {
        const char *row = s + off * (int64_t)es;
        if (is == 1) {
            memcpy(d, row, (size_t)inner * es);
        } else {
            switch (es) {
            case 1:
                for (int64_t i = 0; i < inner; i++)
                    ((uint8_t *)d)[i] = ((const uint8_t *)row)[i * is];
                break;
            case 2:
                for (int64_t i = 0; i < inner; i++)
                    ((uint16_t *)d)[i] = ((const uint16_t *)row)[i * is];
                break;
            case 4:
                for (int64_t i = 0; i < inner; i++)
                    ((uint32_t *)d)[i] = ((const uint32_t *)row)[i * is];
                break;
            case 8:
                for (int64_t i = 0; i < inner; i++)
                    ((uint64_t *)d)[i] = ((const uint64_t *)row)[i * is];
                break;
            default:
                for (int64_t i = 0; i < inner; i++)
                    memcpy(d + i * (int64_t)es, row + i * is * (int64_t)es, es);
            }
        }
        d += inner * (int64_t)es;
        for (int k = m - 2; k >= 0; k--) {
            off += st[k];
            if (++idx[k] < sh[k])
                break;
            off -= st[k] * sh[k];
            idx[k] = 0;
        }
    }
}

/* Output k with its data; NULL-safe shortcut for run(). */
static bs_tensor_t *s_out(bs_graph_t *g, const bs_node_t *n, int k)
{
    return bs_node_output(g, n, k);
}

/* run() of the alias ops: the output holds the input's bytes. */
static int s_run_copy(bs_graph_t *g, bs_node_t *n, bs_ctx_t *ctx)
{
    (void)ctx;
    bs_tensor_t *x = bs_node_input(g, n, 0), *y = s_out(g, n, 0);
    if (x->data != y->data && y->nbytes)
        memmove(y->data, x->data, y->nbytes);
    return 0;
}

/* ---- Identity ----------------------------------------------------------------------------- */

static int s_identity_infer(bs_graph_t *g, bs_node_t *n, bs_err_t *err)
{
    bs_tensor_t *x = NULL;
    int rc = s_in0(g, n, 1, 1, &x, err);
    if (rc)
        return rc;
    bs_tensor_set(bs_node_output(g, n, 0), x->dtype, &x->shape);
    return 0;
}

static const bs_op_t s_op_identity = {
    "Identity", s_identity_infer, NULL, s_run_copy, NULL, 1, 1,
};

/* ---- Reshape ------------------------------------------------------------------------------ */

static int s_reshape_infer(bs_graph_t *g, bs_node_t *n, bs_err_t *err)
{
    bs_tensor_t *x = NULL;
    int64_t v[BS_MAX_RANK];
    int cnt = 0, rc = s_in_ints(g, n, "shape", &x, v, &cnt, err);
    if (rc)
        return rc;
    int allowzero = (int)bs_attr_int(n, "allowzero", 0);
    bs_shape_t s = {.rank = cnt};
    int infer_at = -1;
    int64_t known = 1;
    for (int i = 0; i < cnt; i++) {
        if (v[i] == -1) {
            if (infer_at >= 0)
                return bs_node_err(err, n, BS_EMODEL, "shape has more than one -1");
            infer_at = i;
            continue;
        }
        if (v[i] < -1)
            return bs_node_err(err, n, BS_EMODEL, "shape[%d] = %lld is invalid", i,
                               (long long)v[i]);
        if (v[i] == 0 && !allowzero) {
            if (i >= x->shape.rank)
                return bs_node_err(err, n, BS_EMODEL, "shape[%d] = 0 copies a dimension the "
                                   "rank-%d input lacks", i, x->shape.rank);
            s.d[i] = x->shape.d[i];
        } else {
            s.d[i] = v[i];
        }
        if (__builtin_mul_overflow(known, s.d[i], &known))
            return bs_node_err(err, n, BS_EMODEL, "shape is too large");
    }
    int64_t numel = bs_shape_numel(&x->shape);
    char b1[160], b2[160];
    if (infer_at >= 0) {
        if (allowzero && known == 0)
            return bs_node_err(err, n, BS_EMODEL, "shape has both -1 and 0 with allowzero=1");
        if (known == 0 || numel % known != 0)
            return bs_node_err(err, n, BS_EMODEL, "cannot infer the -1 in the shape: %lld "
                               "elements do not divide into %lld", (long long)numel,
                               (long long)known);
        s.d[infer_at] = numel / known;
    } else if (known != numel) {
        return bs_node_err(err, n, BS_EMODEL, "cannot reshape %s (%lld elements) to %s",
                           bs_shape_str(&x->shape, b1, sizeof b1), (long long)numel,
                           bs_shape_str(&s, b2, sizeof b2));
    }
    bs_tensor_set(bs_node_output(g, n, 0), x->dtype, &s);
    return 0;
}

static const bs_op_t s_op_reshape = {
    "Reshape", s_reshape_infer, NULL, s_run_copy, NULL, 1, 1,
};

/* ---- Flatten ------------------------------------------------------------------------------ */

static int s_flatten_infer(bs_graph_t *g, bs_node_t *n, bs_err_t *err)
{
    bs_tensor_t *x = NULL;
    int rc = s_in0(g, n, 1, 1, &x, err);
    if (rc)
        return rc;
    int r = x->shape.rank;
    int64_t axis = bs_attr_int(n, "axis", 1);
    if (axis < -r || axis > r)
        return bs_node_err(err, n, BS_EMODEL, "attribute 'axis' = %lld is out of range for "
                           "rank %d", (long long)axis, r);
    if (axis < 0)
        axis += r;
    bs_shape_t s = {.rank = 2, .d = {1, 1}};
    for (int i = 0; i < r; i++)
        s.d[i < axis ? 0 : 1] *= x->shape.d[i];
    bs_tensor_set(bs_node_output(g, n, 0), x->dtype, &s);
    return 0;
}

static const bs_op_t s_op_flatten = {
    "Flatten", s_flatten_infer, NULL, s_run_copy, NULL, 1, 1,
};

/* ---- Squeeze / Unsqueeze ------------------------------------------------------------------ */

/* The axes of Squeeze/Unsqueeze: attribute before opset 13, input 1 from 13. *cnt = -1 when
 * absent. */
static int s_axes(bs_graph_t *g, const bs_node_t *n, int64_t *v, int *cnt, bs_err_t *err)
{
    *cnt = -1;
    if (g->opset < 13) {
        const int64_t *a;
        int k = bs_attr_ints(n, "axes", &a);
        if (k > BS_MAX_RANK)
            return bs_node_err(err, n, BS_EMODEL, "attribute 'axes' has %d values, at most %d",
                               k, BS_MAX_RANK);
        if (k >= 0)
            memcpy(v, a, (size_t)k * sizeof *v);
        *cnt = k;
        return 0;
    }
    if (n->n_in > 2)
        return bs_node_err(err, n, BS_EMODEL, "has %d inputs, expected at most 2", n->n_in);
    if (bs_node_input(g, n, 1))
        return s_const_ints(g, n, 1, "axes", v, BS_MAX_RANK, cnt, err);
    return 0;
}

static int s_squeeze_infer(bs_graph_t *g, bs_node_t *n, bs_err_t *err)
{
    bs_tensor_t *x = NULL;
    int64_t v[BS_MAX_RANK];
    int cnt = 0, rc = s_in0(g, n, 1, 2, &x, err);
    if (!rc)
        rc = s_axes(g, n, v, &cnt, err);
    if (rc)
        return rc;
    int r = x->shape.rank, drop[BS_MAX_RANK] = {0};
    if (cnt < 0) {
        for (int i = 0; i < r; i++)
            drop[i] = x->shape.d[i] == 1;
    } else {
        for (int i = 0; i < cnt; i++) {
            int a = 0;
            if ((rc = s_axis(n, v[i], r, "axes value", &a, err)))
                return rc;
            if (x->shape.d[a] != 1)
                return bs_node_err(err, n, BS_EMODEL, "cannot squeeze axis %d of size %lld",
                                   a, (long long)x->shape.d[a]);
            drop[a] = 1;
        }
    }
    bs_shape_t s = {0};
    for (int i = 0; i < r; i++)
        if (!drop[i])
            s.d[s.rank++] = x->shape.d[i];
    bs_tensor_set(bs_node_output(g, n, 0), x->dtype, &s);
    return 0;
}

static const bs_op_t s_op_squeeze = {
    "Squeeze", s_squeeze_infer, NULL, s_run_copy, NULL, 1, 1,
};

static int s_unsqueeze_infer(bs_graph_t *g, bs_node_t *n, bs_err_t *err)
{
    bs_tensor_t *x = NULL;
    int64_t v[BS_MAX_RANK];
    int cnt = 0, rc = s_in0(g, n, 1, 2, &x, err);
    if (!rc)
        rc = s_axes(g, n, v, &cnt, err);
    if (rc)
        return rc;
    if (cnt < 0)
        return bs_node_err(err, n, BS_EMODEL, "has no axes");
    int r = x->shape.rank + cnt, ins[BS_MAX_RANK] = {0};
    if (r > BS_MAX_RANK)
        return bs_node_err(err, n, BS_EUNSUPPORTED, "output rank %d exceeds the maximum %d", r,
                           BS_MAX_RANK);
    for (int i = 0; i < cnt; i++) {
        int a = 0;
        if ((rc = s_axis(n, v[i], r, "axes value", &a, err)))
            return rc;
        if (ins[a])
            return bs_node_err(err, n, BS_EMODEL, "axis %d appears twice in axes", a);
        ins[a] = 1;
    }
    bs_shape_t s = {.rank = r};
    for (int i = 0, j = 0; i < r; i++)
        s.d[i] = ins[i] ? 1 : x->shape.d[j++];
    bs_tensor_set(bs_node_output(g, n, 0), x->dtype, &s);
    return 0;
}

static const bs_op_t s_op_unsqueeze = {
    "Unsqueeze", s_unsqueeze_infer, NULL, s_run_copy, NULL, 1, 1,
};

/* ---- Transpose ---------------------------------------------------------------------------- */

static int s_perm(const bs_node_t *n, int r, int *perm, bs_err_t *err)
{
    const int64_t *p;
    int k = bs_attr_ints(n, "perm", &p);
    if (k < 0) {
        for (int i = 0; i < r; i++)
            perm[i] = r - 1 - i;
        return 0;
    }
    if (k != r)
        return bs_node_err(err, n, BS_EMODEL, "attribute 'perm' has %d values for a rank-%d "
                           "input", k, r);
    int seen[BS_MAX_RANK] = {0};
    for (int i = 0; i < r; i++) {
        int64_t a = p[i] < 0 ? p[i] + r : p[i];
        if (a < 0 || a >= r || seen[a])
            return bs_node_err(err, n, BS_EMODEL, "attribute 'perm' is not a permutation of "
                               "0..%d", r - 1);
        seen[a] = 1;
        perm[i] = (int)a;
    }
    return 0;
}

static int s_transpose_infer(bs_graph_t *g, bs_node_t *n, bs_err_t *err)
{
    bs_tensor_t *x = NULL;
    int perm[BS_MAX_RANK];
    int rc = s_in0(g, n, 1, 1, &x, err);
    if (!rc)
        rc = s_perm(n, x->shape.rank, perm, err);
    if (rc)
        return rc;
    bs_shape_t s = {.rank = x->shape.rank};
    for (int i = 0; i < s.rank; i++)
        s.d[i] = x->shape.d[perm[i]];
    bs_tensor_set(bs_node_output(g, n, 0), x->dtype, &s);
    return 0;
}

static int s_transpose_run(bs_graph_t *g, bs_node_t *n, bs_ctx_t *ctx)
{
    (void)ctx;
    bs_tensor_t *x = bs_node_input(g, n, 0), *y = s_out(g, n, 0);
    int perm[BS_MAX_RANK], r = x->shape.rank;
    if (s_perm(n, r, perm, NULL))
        return BS_EMODEL;
    int64_t xs[BS_MAX_RANK], st[BS_MAX_RANK];
    bs_shape_strides(&x->shape, xs);
    for (int i = 0; i < r; i++)
        st[i] = xs[perm[i]];
    s_view_copy(y->data, x->data, bs_dtype_size(x->dtype), r, y->shape.d, st);
    return 0;
}

static const bs_op_t s_op_transpose = {
    "Transpose", s_transpose_infer, NULL, s_transpose_run, NULL, 1, 0,
};

/* ---- Concat ------------------------------------------------------------------------------- */

static int s_concat_infer(bs_graph_t *g, bs_node_t *n, bs_err_t *err)
{
    bs_tensor_t *x0 = NULL;
    int rc = s_in0(g, n, 1, 1 << 20, &x0, err);
    if (rc)
        return rc;
    const bs_attr_t *aa = bs_node_attr(n, "axis");
    if (!aa || aa->type != BS_ATTR_INT)
        return bs_node_err(err, n, BS_EMODEL, "attribute 'axis' (int) is required");
    int r = x0->shape.rank, axis = 0;
    if (r == 0)
        return bs_node_err(err, n, BS_EMODEL, "cannot concatenate scalars");
    if ((rc = s_axis(n, aa->i, r, "attribute 'axis'", &axis, err)))
        return rc;
    bs_shape_t s = x0->shape;
    s.d[axis] = 0;
    for (int k = 0; k < n->n_in; k++) {
        bs_tensor_t *x = NULL;
        if ((rc = s_in(g, n, k, &x, err)))
            return rc;
        if (x->dtype != x0->dtype)
            return bs_node_err(err, n, BS_EMODEL, "input %d '%s' is %s, input 0 is %s", k,
                               x->name, bs_dtype_name(x->dtype), bs_dtype_name(x0->dtype));
        int ok = x->shape.rank == r;
        for (int i = 0; ok && i < r; i++)
            ok = i == axis || x->shape.d[i] == x0->shape.d[i];
        if (!ok) {
            char b1[160], b2[160];
            return bs_node_err(err, n, BS_EMODEL, "input %d '%s' has shape %s, which does not "
                               "fit input 0's %s along axis %d", k, x->name,
                               bs_shape_str(&x->shape, b1, sizeof b1),
                               bs_shape_str(&x0->shape, b2, sizeof b2), axis);
        }
        s.d[axis] += x->shape.d[axis];
    }
    bs_tensor_set(bs_node_output(g, n, 0), x0->dtype, &s);
    return 0;
}

/* Product of dims [from, to). */
static int64_t s_prod(const bs_shape_t *s, int from, int to)
{
    int64_t p = 1;
    for (int i = from; i < to; i++)
        p *= s->d[i];
    return p;
}

static int s_concat_run(bs_graph_t *g, bs_node_t *n, bs_ctx_t *ctx)
{
    (void)ctx;
    bs_tensor_t *y = s_out(g, n, 0);
    int r = y->shape.rank;
    int axis = s_run_axis(n, r);
    size_t es = bs_dtype_size(y->dtype);
    int64_t outer = s_prod(&y->shape, 0, axis), inner = s_prod(&y->shape, axis + 1, r);
    int64_t yrow = y->shape.d[axis] * inner, off = 0;
    for (int k = 0; k < n->n_in; k++) {
        bs_tensor_t *x = bs_node_input(g, n, k);
        int64_t xrow = x->shape.d[axis] * inner;
        if (xrow > 0) {
            for (int64_t o = 0; o < outer; o++)
                memcpy((char *)y->data + (o * yrow + off) * (int64_t)es,
                       (const char *)x->data + o * xrow * (int64_t)es, (size_t)xrow * es);
        }
        off += xrow;
    }
    return 0;
}

static const bs_op_t s_op_concat = {
    "Concat", s_concat_infer, NULL, s_concat_run, NULL, 1, 0,
};

/* ---- Split -------------------------------------------------------------------------------- */

/* Size of part k of n when a dim is split without explicit sizes: equal parts, the last one
 * smaller when num_outputs (opset 18) does not divide it. */
static int64_t s_split_chunk(int64_t dim, int nout, int k)
{
    int64_t chunk = (dim + nout - 1) / nout, left = dim - chunk * k;
    return left < 0 ? 0 : left < chunk ? left : chunk;
}

static int s_split_infer(bs_graph_t *g, bs_node_t *n, bs_err_t *err)
{
    bs_tensor_t *x = NULL;
    int rc = s_in0(g, n, 1, 2, &x, err);
    if (rc)
        return rc;
    int r = x->shape.rank, axis = 0, nout = n->n_out;
    if (r == 0)
        return bs_node_err(err, n, BS_EMODEL, "cannot split a scalar");
    if ((rc = s_axis(n, bs_attr_int(n, "axis", 0), r, "attribute 'axis'", &axis, err)))
        return rc;
    int64_t dim = x->shape.d[axis];
    const int64_t *a = NULL;
    int cnt = -1;
    bs_tensor_t *st = NULL;
    if (g->opset < 13) {
        cnt = bs_attr_ints(n, "split", &a);
    } else if ((st = bs_node_input(g, n, 1)) != NULL) {
        if (st->dtype != BS_DT_INT64 || st->shape.rank != 1)
            return bs_node_err(err, n, BS_EMODEL, "input 'split' must be a 1-D int64 tensor");
        if (!s_is_const(st))
            return bs_node_err(err, n, BS_EUNSUPPORTED, "input '%s' (split) must be a constant "
                               "known at load time", st->name);
        cnt = (int)st->shape.d[0];
        a = st->data;
    }
    int64_t total = 0, num = bs_attr_int(n, "num_outputs", 0);
    if (cnt >= 0) {
        if (cnt != nout)
            return bs_node_err(err, n, BS_EMODEL, "'split' has %d sizes for %d outputs", cnt,
                               nout);
        for (int k = 0; k < nout; k++) {
            if (a[k] < 0 || __builtin_add_overflow(total, a[k], &total))
                return bs_node_err(err, n, BS_EMODEL, "'split'[%d] = %lld is invalid", k,
                                   (long long)a[k]);
        }
        if (total != dim)
            return bs_node_err(err, n, BS_EMODEL, "'split' sizes add up to %lld, but axis %d "
                               "has %lld", (long long)total, axis, (long long)dim);
    } else if (num > 0 && num != nout) {
        return bs_node_err(err, n, BS_EMODEL, "attribute 'num_outputs' = %lld but the node "
                           "has %d outputs", (long long)num, nout);
    } else if (num == 0 && dim % nout != 0) {
        return bs_node_err(err, n, BS_EMODEL, "axis %d of size %lld does not split into %d "
                           "equal parts", axis, (long long)dim, nout);
    }
    for (int k = 0; k < nout; k++) {
        bs_tensor_t *y = bs_node_output(g, n, k);
        if (!y)
            continue;
        bs_shape_t s = x->shape;
        s.d[axis] = cnt >= 0 ? a[k] : s_split_chunk(dim, nout, k);
        bs_tensor_set(y, x->dtype, &s);
    }
    return 0;
}

static int s_split_run(bs_graph_t *g, bs_node_t *n, bs_ctx_t *ctx)
{
    (void)ctx;
    bs_tensor_t *x = bs_node_input(g, n, 0);
    int r = x->shape.rank;
    int axis = s_run_axis(n, r);
    size_t es = bs_dtype_size(x->dtype);
    int64_t outer = s_prod(&x->shape, 0, axis), inner = s_prod(&x->shape, axis + 1, r);
    int64_t xrow = x->shape.d[axis] * inner, off = 0;
    for (int k = 0; k < n->n_out; k++) {
        bs_tensor_t *y = s_out(g, n, k);
        int64_t part;
        if (y) {
            part = y->shape.d[axis];
        } else {
            /* an omitted output: skip the part infer's rule gave it */
            bs_tensor_t *st = g->opset >= 13 ? bs_node_input(g, n, 1) : NULL;
            const int64_t *a = NULL;
            if (st)
                part = ((const int64_t *)st->data)[k];
            else if (g->opset < 13 && bs_attr_ints(n, "split", &a) > k)
                part = a[k];
            else
                part = s_split_chunk(x->shape.d[axis], n->n_out, k);
        }
        int64_t yrow = part * inner;
        if (y && yrow > 0) {
            for (int64_t o = 0; o < outer; o++)
                memcpy((char *)y->data + o * yrow * (int64_t)es,
                       (const char *)x->data + (o * xrow + off) * (int64_t)es,
                       (size_t)yrow * es);
        }
        off += yrow;
    }
    return 0;
}

static const bs_op_t s_op_split = {
    "Split", s_split_infer, NULL, s_split_run, NULL, 1, 0,
};

/* ---- Slice -------------------------------------------------------------------------------- */

typedef struct s_slice {
    int64_t start[BS_MAX_RANK], step[BS_MAX_RANK], len[BS_MAX_RANK];
} s_slice_t;

/* Starts, lengths and steps of every axis of x, from attributes (opset < 10) or const inputs. */
static int s_slice_params(bs_graph_t *g, const bs_node_t *n, const bs_tensor_t *x, s_slice_t *p,
                          bs_err_t *err)
{
    int r = x->shape.rank, ns, ne, na = -1, nst = -1, rc;
    int64_t starts[BS_MAX_RANK], ends[BS_MAX_RANK], axes[BS_MAX_RANK], steps[BS_MAX_RANK];
    if (g->opset < 10) {
        const int64_t *a;
        ns = bs_attr_ints(n, "starts", &a);
        if (ns > BS_MAX_RANK)
            return bs_node_err(err, n, BS_EMODEL, "too many 'starts'");
        if (ns > 0)
            memcpy(starts, a, (size_t)ns * sizeof *a);
        ne = bs_attr_ints(n, "ends", &a);
        if (ne > BS_MAX_RANK)
            return bs_node_err(err, n, BS_EMODEL, "too many 'ends'");
        if (ne > 0)
            memcpy(ends, a, (size_t)ne * sizeof *a);
        na = bs_attr_ints(n, "axes", &a);
        if (na > BS_MAX_RANK)
            return bs_node_err(err, n, BS_EMODEL, "too many 'axes'");
        if (na > 0)
            memcpy(axes, a, (size_t)na * sizeof *a);
        if (ns < 0 || ne < 0)
            return bs_node_err(err, n, BS_EMODEL, "attributes 'starts' and 'ends' are "
                               "required");
    } else {
        if (n->n_in < 3 || n->n_in > 5)
            return bs_node_err(err, n, BS_EMODEL, "has %d inputs, expected 3 to 5", n->n_in);
        if ((rc = s_const_ints(g, n, 1, "starts", starts, BS_MAX_RANK, &ns, err)) ||
            (rc = s_const_ints(g, n, 2, "ends", ends, BS_MAX_RANK, &ne, err)))
            return rc;
        if (bs_node_input(g, n, 3) &&
            (rc = s_const_ints(g, n, 3, "axes", axes, BS_MAX_RANK, &na, err)))
            return rc;
        if (bs_node_input(g, n, 4) &&
            (rc = s_const_ints(g, n, 4, "steps", steps, BS_MAX_RANK, &nst, err)))
            return rc;
    }
    if (ne != ns || (na >= 0 && na != ns) || (nst >= 0 && nst != ns))
        return bs_node_err(err, n, BS_EMODEL, "starts, ends, axes and steps differ in length "
                           "(%d, %d, %d, %d)", ns, ne, na, nst);
    int seen[BS_MAX_RANK] = {0};
    for (int i = 0; i < r; i++) {
        p->start[i] = 0;
        p->step[i] = 1;
        p->len[i] = x->shape.d[i];
    }
    for (int i = 0; i < ns; i++) {
        int a = i;
        if (na >= 0 && (rc = s_axis(n, axes[i], r, "axes value", &a, err)))
            return rc;
        if (na < 0 && i >= r)
            return bs_node_err(err, n, BS_EMODEL, "has %d starts for a rank-%d input", ns, r);
        if (seen[a])
            return bs_node_err(err, n, BS_EMODEL, "axis %d is sliced twice", a);
        seen[a] = 1;
        int64_t d = x->shape.d[a], st = nst >= 0 ? steps[i] : 1, s = starts[i], e = ends[i];
        if (st == 0 || st == INT64_MIN)
            return bs_node_err(err, n, BS_EMODEL, "step of axis %d is %lld", a, (long long)st);
        if (s < 0)
            s += d;
        if (e < 0)
            e += d;
        int64_t len;
        if (st > 0) {
            s = s < 0 ? 0 : s > d ? d : s;
            e = e < 0 ? 0 : e > d ? d : e;
            len = e > s ? (e - s - 1) / st + 1 : 0;
        } else {
            s = s < 0 ? 0 : s > d - 1 ? d - 1 : s;
            e = e < -1 ? -1 : e > d - 1 ? d - 1 : e;
            len = s > e ? (s - e - 1) / -st + 1 : 0;
        }
        p->start[a] = len > 0 ? s : 0;
        p->step[a] = st;
        p->len[a] = len;
    }
    return 0;
}

static int s_slice_infer(bs_graph_t *g, bs_node_t *n, bs_err_t *err)
{
    bs_tensor_t *x = NULL;
    s_slice_t p;
    int rc = s_in0(g, n, 1, 5, &x, err);
    if (!rc)
        rc = s_slice_params(g, n, x, &p, err);
    if (rc)
        return rc;
    bs_shape_t s = {.rank = x->shape.rank};
    memcpy(s.d, p.len, sizeof p.len[0] * (size_t)s.rank);
    bs_tensor_set(bs_node_output(g, n, 0), x->dtype, &s);
    return 0;
}

static int s_slice_run(bs_graph_t *g, bs_node_t *n, bs_ctx_t *ctx)
{
    (void)ctx;
    bs_tensor_t *x = bs_node_input(g, n, 0), *y = s_out(g, n, 0);
    s_slice_t p;
    if (s_slice_params(g, n, x, &p, NULL))
        return BS_EMODEL;
    int r = x->shape.rank;
    int64_t xs[BS_MAX_RANK], st[BS_MAX_RANK], off = 0;
    bs_shape_strides(&x->shape, xs);
    for (int i = 0; i < r; i++) {
        st[i] = xs[i] * p.step[i];
        off += xs[i] * p.start[i];
    }
    if (y->nbytes == 0)
        return 0;
    size_t es = bs_dtype_size(x->dtype);
    s_view_copy(y->data, (const char *)x->data + off * (int64_t)es, es, r, y->shape.d, st);
    return 0;
}

static const bs_op_t s_op_slice = {
    "Slice", s_slice_infer, NULL, s_slice_run, NULL, 1, 0,
};

/* ---- Shape -------------------------------------------------------------------------------- */

static void s_shape_range(const bs_node_t *n, int r, int64_t *from, int64_t *to)
{
    int64_t s = bs_attr_int(n, "start", 0), e = bs_attr_int(n, "end", r);
    if (s < 0)
        s += r;
    if (e < 0)
        e += r;
    s = s < 0 ? 0 : s > r ? r : s;
    e = e < 0 ? 0 : e > r ? r : e;
    *from = s;
    *to = e > s ? e : s;
}

static int s_shape_infer(bs_graph_t *g, bs_node_t *n, bs_err_t *err)
{
    bs_tensor_t *x = NULL;
    int rc = s_in_shaped(g, n, &x, err);
    if (rc)
        return rc;
    int64_t from, to;
    s_shape_range(n, x->shape.rank, &from, &to);
    bs_shape_t s = {.rank = 1, .d = {to - from}};
    bs_tensor_set(bs_node_output(g, n, 0), BS_DT_INT64, &s);
    return 0;
}

static int s_shape_run(bs_graph_t *g, bs_node_t *n, bs_ctx_t *ctx)
{
    (void)ctx;
    bs_tensor_t *x = bs_node_input(g, n, 0), *y = s_out(g, n, 0);
    int64_t from, to;
    s_shape_range(n, x->shape.rank, &from, &to);
    for (int64_t i = from; i < to; i++)
        ((int64_t *)y->data)[i - from] = x->shape.d[i];
    return 0;
}

static const bs_op_t s_op_shape = {
    "Shape", s_shape_infer, NULL, s_shape_run, NULL, 1, 0,
};

/* ---- Gather ------------------------------------------------------------------------------- */

/* The (data, indices) inputs of Gather and GatherElements: exactly two, indices int32/int64. */
static int s_gather_in(bs_graph_t *g, const bs_node_t *n, bs_tensor_t **x, bs_tensor_t **ind,
                       bs_err_t *err)
{
    bs_tensor_t *in[2] = {NULL, NULL};
    int rc = s_in_all(g, n, 2, in, err);
    if (rc)
        return rc;
    if (in[1]->dtype != BS_DT_INT64 && in[1]->dtype != BS_DT_INT32)
        return bs_node_err(err, n, BS_EMODEL, "indices '%s' must be int32 or int64, not %s",
                           in[1]->name, bs_dtype_name(in[1]->dtype));
    *x = in[0];
    *ind = in[1];
    return 0;
}

/* Checks const indices against the gathered axis (of size dim); run-time ones are checked by
 * run(). */
static int s_gather_consts(const bs_node_t *n, const bs_tensor_t *ind, int axis, int64_t dim,
                           bs_err_t *err)
{
    if (!s_is_const(ind))
        return 0;
    int64_t cnt = bs_shape_numel(&ind->shape);
    for (int64_t i = 0; i < cnt; i++) {
        int64_t v = s_get_i64(ind->data, ind->dtype, i);
        if (v < -dim || v >= dim)
            return bs_node_err(err, n, BS_EMODEL, "index %lld is out of range for axis %d "
                               "of size %lld", (long long)v, axis, (long long)dim);
    }
    return 0;
}

static int s_gather_infer(bs_graph_t *g, bs_node_t *n, bs_err_t *err)
{
    bs_tensor_t *x = NULL, *ind = NULL;
    int rc = s_gather_in(g, n, &x, &ind, err);
    if (rc)
        return rc;
    int r = x->shape.rank, axis = 0;
    if (r == 0)
        return bs_node_err(err, n, BS_EMODEL, "cannot gather from a scalar");
    if ((rc = s_axis(n, bs_attr_int(n, "axis", 0), r, "attribute 'axis'", &axis, err)))
        return rc;
    int orank = r - 1 + ind->shape.rank;
    if (orank > BS_MAX_RANK)
        return bs_node_err(err, n, BS_EUNSUPPORTED, "output rank %d exceeds the maximum %d",
                           orank, BS_MAX_RANK);
    if ((rc = s_gather_consts(n, ind, axis, x->shape.d[axis], err)))
        return rc;
    bs_shape_t s = {.rank = orank};
    int j = 0;
    for (int i = 0; i < axis; i++)
        s.d[j++] = x->shape.d[i];
    for (int i = 0; i < ind->shape.rank; i++)
        s.d[j++] = ind->shape.d[i];
    for (int i = axis + 1; i < r; i++)
        s.d[j++] = x->shape.d[i];
    bs_tensor_set(bs_node_output(g, n, 0), x->dtype, &s);
    return 0;
}

static int s_gather_run(bs_graph_t *g, bs_node_t *n, bs_ctx_t *ctx)
{
    (void)ctx;
    bs_tensor_t *x = bs_node_input(g, n, 0), *ind = bs_node_input(g, n, 1);
    bs_tensor_t *y = s_out(g, n, 0);
    int r = x->shape.rank;
    int axis = s_run_axis(n, r);
    size_t es = bs_dtype_size(x->dtype);
    int64_t outer = s_prod(&x->shape, 0, axis), inner = s_prod(&x->shape, axis + 1, r);
    int64_t dim = x->shape.d[axis], cnt = bs_shape_numel(&ind->shape);
    size_t row = (size_t)inner * es;
    if (row == 0 || cnt == 0)
        return 0;
    char *d = y->data;
    for (int64_t i = 0; i < cnt; i++) {
        int64_t v = s_get_i64(ind->data, ind->dtype, i);
        if (v < -dim || v >= dim) { /* only reachable with run-time indices */
            if (ctx->err)
                bs_err_set(ctx->err, BS_EINVAL, "index %lld at position %lld is out of range "
                           "[%lld, %lld)", (long long)v, (long long)i, (long long)-dim,
                           (long long)dim);
            return BS_EINVAL;
        }
    }
    for (int64_t o = 0; o < outer; o++) {
        const char *base = (const char *)x->data + o * dim * (int64_t)row;
        for (int64_t i = 0; i < cnt; i++) {
            int64_t v = s_get_i64(ind->data, ind->dtype, i);
            if (v < 0)
                v += dim;
            memcpy(d, base + v * (int64_t)row, row);
            d += row;
        }
    }
    return 0;
}

static const bs_op_t s_op_gather = {
    "Gather", s_gather_infer, NULL, s_gather_run, NULL, 1, 0,
};

/* ---- Cast --------------------------------------------------------------------------------- */

static int s_cast_ok(int dt)
{
    return s_is_int_dtype(dt) || s_is_float_dtype(dt) || dt == BS_DT_BOOL;
}

static int s_cast_infer(bs_graph_t *g, bs_node_t *n, bs_err_t *err)
{
    bs_tensor_t *x = NULL;
    int rc = s_in0(g, n, 1, 1, &x, err);
    if (rc)
        return rc;
    const bs_attr_t *to = bs_node_attr(n, "to");
    if (!to || to->type != BS_ATTR_INT)
        return bs_node_err(err, n, BS_EMODEL, "attribute 'to' (int) is required");
    if (!s_cast_ok(x->dtype))
        return bs_node_err(err, n, BS_EUNSUPPORTED, "cannot cast from %s", bs_dtype_name(
                           x->dtype));
    if (to->i < 0 || to->i > 64 || !s_cast_ok((int)to->i))
        return bs_node_err(err, n, BS_EUNSUPPORTED, "cannot cast to type %s (%lld)",
                           bs_dtype_name((int)to->i), (long long)to->i);
    bs_tensor_set(bs_node_output(g, n, 0), (int)to->i, &x->shape);
    return 0;
}

/* Saturating double -> int64 (NaN -> 0), so out-of-range casts are defined. */
static int64_t s_f64_to_i64(double v)
{
    if (v != v)
        return 0;
    if (v >= 9223372036854775807.0)
        return INT64_MAX;
    if (v <= -9223372036854775808.0)
        return INT64_MIN;
    return (int64_t)v;
}

static uint64_t s_f64_to_u64(double v)
{
    if (v != v)
        return 0;
    if (v < 0)
        return (uint64_t)s_f64_to_i64(v); /* wraps, as numpy does on common hardware */
    if (v >= 18446744073709551615.0)
        return UINT64_MAX;
    return (uint64_t)v;
}

static void s_store_i64(void *data, int dt, int64_t i, int64_t v)
{
    switch (dt) {
    case BS_DT_UINT8: ((uint8_t *)data)[i] = (uint8_t)v; break;
    case BS_DT_INT8: ((int8_t *)data)[i] = (int8_t)(uint8_t)v; break;
    case BS_DT_UINT16: ((uint16_t *)data)[i] = (uint16_t)v; break;
    case BS_DT_INT16: ((int16_t *)data)[i] = (int16_t)(uint16_t)v; break;
    case BS_DT_INT32: ((int32_t *)data)[i] = (int32_t)(uint32_t)v; break;
    case BS_DT_INT64: ((int64_t *)data)[i] = v; break;
    case BS_DT_UINT32: ((uint32_t *)data)[i] = (uint32_t)v; break;
    case BS_DT_UINT64: ((uint64_t *)data)[i] = (uint64_t)v; break;
    case BS_DT_BOOL: ((uint8_t *)data)[i] = v != 0; break;
    default: break;
    }
}

static void s_store_f64(void *data, int dt, int64_t i, double v)
{
    switch (dt) {
    case BS_DT_FLOAT: ((float *)data)[i] = (float)v; break;
    case BS_DT_DOUBLE: ((double *)data)[i] = v; break;
    case BS_DT_FLOAT16: ((uint16_t *)data)[i] = bs_f32_to_f16((float)v); break;
    case BS_DT_BOOL: ((uint8_t *)data)[i] = v != 0; break;
    case BS_DT_UINT64: ((uint64_t *)data)[i] = s_f64_to_u64(v); break;
    default: s_store_i64(data, dt, i, s_f64_to_i64(v)); break;
    }
}

static int s_cast_run(bs_graph_t *g, bs_node_t *n, bs_ctx_t *ctx)
{
    (void)ctx;
    bs_tensor_t *x = bs_node_input(g, n, 0), *y = s_out(g, n, 0);
    int64_t cnt = bs_shape_numel(&x->shape);
    int from = x->dtype, to = y->dtype;
    if (from == to) {
        s_copy_elems(y->data, x->data, cnt, bs_dtype_size(from));
    } else if (from == BS_DT_FLOAT && to == BS_DT_FLOAT16) {
        for (int64_t i = 0; i < cnt; i++)
            ((uint16_t *)y->data)[i] = bs_f32_to_f16(((const float *)x->data)[i]);
    } else if (from == BS_DT_DOUBLE && to == BS_DT_FLOAT16) {
        /* float16 has 11 significant bits: rounding through float first can differ from a
         * direct rounding only on exact ties, which float keeps exact; fine in practice. */
        for (int64_t i = 0; i < cnt; i++)
            ((uint16_t *)y->data)[i] = bs_f32_to_f16((float)((const double *)x->data)[i]);
    } else if (s_is_float_dtype(from)) {
        for (int64_t i = 0; i < cnt; i++)
            s_store_f64(y->data, to, i, s_get_f64(x->data, from, i));
    } else if (s_is_float_dtype(to)) {
        for (int64_t i = 0; i < cnt; i++) {
            double v = from == BS_DT_UINT64 ? (double)((const uint64_t *)x->data)[i]
                                            : (double)s_get_i64(x->data, from, i);
            s_store_f64(y->data, to, i, v);
        }
    } else {
        for (int64_t i = 0; i < cnt; i++)
            s_store_i64(y->data, to, i, s_get_i64(x->data, from, i));
    }
    return 0;
}

static const bs_op_t s_op_cast = {
    "Cast", s_cast_infer, NULL, s_cast_run, NULL, 1, 0,
};

/* ---- Constant ----------------------------------------------------------------------------- */

/* The one value attribute of a Constant node, or an error. */
static int s_constant_attr(const bs_node_t *n, const bs_attr_t **out, bs_err_t *err)
{
    static const char *const names[] = {"value", "value_float", "value_floats", "value_int",
                                        "value_ints"};
    static const int types[] = {BS_ATTR_TENSOR, BS_ATTR_FLOAT, BS_ATTR_FLOATS, BS_ATTR_INT,
                                BS_ATTR_INTS};
    static const char *const refused[] = {"sparse_value", "value_string", "value_strings"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        if (bs_node_attr(n, refused[i]))
            return bs_node_err(err, n, BS_EUNSUPPORTED, "attribute '%s' is not supported",
                               refused[i]);
    const bs_attr_t *found = NULL;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const bs_attr_t *a = bs_node_attr(n, names[i]);
        if (!a)
            continue;
        if (found)
            return bs_node_err(err, n, BS_EMODEL, "has both '%s' and '%s'", found->name,
                               a->name);
        if (a->type != types[i])
            return bs_node_err(err, n, BS_EMODEL, "attribute '%s' has the wrong type (%d)",
                               a->name, a->type);
        found = a;
    }
    if (!found)
        return bs_node_err(err, n, BS_EMODEL, "has no value attribute");
    if (strcmp(found->name, "value") == 0) {
        if (found->type != BS_ATTR_TENSOR || !found->t)
            return bs_node_err(err, n, BS_EMODEL, "attribute 'value' is not a tensor");
        if (bs_dtype_size(found->t->dtype) == 0)
            return bs_node_err(err, n, BS_EUNSUPPORTED, "attribute 'value' has unsupported "
                               "type %s (%d)", bs_dtype_name(found->t->dtype), found->t->dtype);
    }
    *out = found;
    return 0;
}

static int s_constant_infer(bs_graph_t *g, bs_node_t *n, bs_err_t *err)
{
    const bs_attr_t *a;
    int rc = s_need_inputs(n, 0, 0, err);
    if (!rc)
        rc = s_constant_attr(n, &a, err);
    if (rc)
        return rc;
    bs_tensor_t *y = bs_node_output(g, n, 0);
    if (strcmp(a->name, "value") == 0) {
        bs_tensor_set(y, a->t->dtype, &a->t->shape);
    } else {
        int scalar = strcmp(a->name, "value_float") == 0 || strcmp(a->name, "value_int") == 0;
        int is_f = strncmp(a->name, "value_float", 11) == 0;
        bs_shape_t s = {.rank = scalar ? 0 : 1, .d = {scalar ? 1 : a->n}};
        bs_tensor_set(y, is_f ? BS_DT_FLOAT : BS_DT_INT64, &s);
    }
    return 0;
}

static int s_constant_run(bs_graph_t *g, bs_node_t *n, bs_ctx_t *ctx)
{
    (void)ctx;
    const bs_attr_t *a;
    if (s_constant_attr(n, &a, NULL))
        return BS_EMODEL;
    bs_tensor_t *y = s_out(g, n, 0);
    const void *src;
    if (strcmp(a->name, "value") == 0)
        src = a->t->data;
    else if (strcmp(a->name, "value_float") == 0)
        src = &a->f;
    else if (strcmp(a->name, "value_int") == 0)
        src = &a->i;
    else if (strcmp(a->name, "value_floats") == 0)
        src = a->floats;
    else
        src = a->ints;
    if (y->nbytes)
        memcpy(y->data, src, y->nbytes);
    return 0;
}

static const bs_op_t s_op_constant = {
    "Constant", s_constant_infer, NULL, s_constant_run, NULL, 1, 0,
};

/* ---- Expand ------------------------------------------------------------------------------- */

static int s_expand_infer(bs_graph_t *g, bs_node_t *n, bs_err_t *err)
{
    bs_tensor_t *x = NULL;
    int64_t v[BS_MAX_RANK];
    int cnt = 0, rc = s_in_ints(g, n, "shape", &x, v, &cnt, err);
    if (rc)
        return rc;
    bs_shape_t want = {.rank = cnt}, s;
    memcpy(want.d, v, (size_t)cnt * sizeof v[0]);
    char b1[160], b2[160];
    for (int i = 0; i < cnt; i++)
        if (v[i] < 0)
            return bs_node_err(err, n, BS_EMODEL, "shape %s has a negative dimension",
                               bs_shape_str(&want, b1, sizeof b1));
    if (bs_shape_broadcast(&x->shape, &want, &s) != 0)
        return bs_node_err(err, n, BS_EMODEL, "cannot expand %s to %s",
                           bs_shape_str(&x->shape, b1, sizeof b1),
                           bs_shape_str(&want, b2, sizeof b2));
    if ((rc = s_check_size(n, &s, x->dtype, err)))
        return rc;
    bs_tensor_set(bs_node_output(g, n, 0), x->dtype, &s);
    return 0;
}

static int s_expand_run(bs_graph_t *g, bs_node_t *n, bs_ctx_t *ctx)
{
    (void)ctx;
    bs_tensor_t *x = bs_node_input(g, n, 0), *y = s_out(g, n, 0);
    int64_t st[BS_MAX_RANK];
    bs_shape_bcast_strides(&x->shape, &y->shape, st);
    if (y->nbytes)
        s_view_copy(y->data, x->data, bs_dtype_size(x->dtype), y->shape.rank, y->shape.d, st);
    return 0;
}

static const bs_op_t s_op_expand = {
    "Expand", s_expand_infer, NULL, s_expand_run, NULL, 1, 0,
};

/* ---- Tile --------------------------------------------------------------------------------- */

static int s_tile_infer(bs_graph_t *g, bs_node_t *n, bs_err_t *err)
{
    bs_tensor_t *x = NULL;
    int64_t v[BS_MAX_RANK];
    int cnt = 0, rc = s_in_ints(g, n, "repeats", &x, v, &cnt, err);
    if (rc)
        return rc;
    if (cnt != x->shape.rank)
        return bs_node_err(err, n, BS_EMODEL, "has %d repeats for a rank-%d input", cnt,
                           x->shape.rank);
    bs_shape_t s = x->shape;
    for (int i = 0; i < cnt; i++) {
        if (v[i] < 0)
            return bs_node_err(err, n, BS_EMODEL, "repeats[%d] = %lld is negative", i,
                               (long long)v[i]);
        if (__builtin_mul_overflow(s.d[i], v[i], &s.d[i]))
            return bs_node_err(err, n, BS_EMODEL, "repeats[%d] is too large", i);
    }
    if ((rc = s_check_size(n, &s, x->dtype, err)))
        return rc;
    bs_tensor_set(bs_node_output(g, n, 0), x->dtype, &s);
    return 0;
}

static int s_tile_run(bs_graph_t *g, bs_node_t *n, bs_ctx_t *ctx)
{
    (void)ctx;
    bs_tensor_t *x = bs_node_input(g, n, 0), *y = s_out(g, n, 0);
    int r = x->shape.rank;
    int64_t xs[BS_MAX_RANK], sh[S_VIEW_MAX], st[S_VIEW_MAX];
    if (y->nbytes == 0)
        return 0;
    bs_shape_strides(&x->shape, xs);
    for (int i = 0; i < r; i++) {
        sh[2 * i] = y->shape.d[i] / x->shape.d[i];
        st[2 * i] = 0;
        sh[2 * i + 1] = x->shape.d[i];
        st[2 * i + 1] = xs[i];
    }
    s_view_copy(y->data, x->data, bs_dtype_size(x->dtype), 2 * r, sh, st);
    return 0;
}

static const bs_op_t s_op_tile = {
    "Tile", s_tile_infer, NULL, s_tile_run, NULL, 1, 0,
};

/* ---- ConstantOfShape ---------------------------------------------------------------------- */

static int s_cos_infer(bs_graph_t *g, bs_node_t *n, bs_err_t *err)
{
    int64_t v[BS_MAX_RANK];
    int cnt = 0, rc = s_need_inputs(n, 1, 1, err);
    if (!rc)
        rc = s_const_ints(g, n, 0, "shape", v, BS_MAX_RANK, &cnt, err);
    if (rc)
        return rc;
    const bs_attr_t *a = bs_node_attr(n, "value");
    int dt = BS_DT_FLOAT;
    if (a) {
        if (a->type != BS_ATTR_TENSOR || !a->t || bs_shape_numel(&a->t->shape) != 1)
            return bs_node_err(err, n, BS_EMODEL, "attribute 'value' must be a one-element "
                               "tensor");
        dt = a->t->dtype;
        if (bs_dtype_size(dt) == 0)
            return bs_node_err(err, n, BS_EUNSUPPORTED, "attribute 'value' has unsupported "
                               "type %s", bs_dtype_name(dt));
    }
    bs_shape_t s = {.rank = cnt};
    memcpy(s.d, v, (size_t)cnt * sizeof v[0]);
    if ((rc = s_check_size(n, &s, dt, err)))
        return rc;
    bs_tensor_set(bs_node_output(g, n, 0), dt, &s);
    return 0;
}

static int s_cos_run(bs_graph_t *g, bs_node_t *n, bs_ctx_t *ctx)
{
    (void)ctx;
    bs_tensor_t *y = s_out(g, n, 0);
    const bs_attr_t *a = bs_node_attr(n, "value");
    size_t es = bs_dtype_size(y->dtype);
    int64_t cnt = bs_shape_numel(&y->shape);
    if (!a || !a->t || !a->t->data) {
        if (y->nbytes)
            memset(y->data, 0, y->nbytes);
        return 0;
    }
    if (cnt > 0) {
        memcpy(y->data, a->t->data, es);
        /* doubling copies fill the rest in log(cnt) memcpys */
        for (int64_t done = 1; done < cnt;) {
            int64_t k = done < cnt - done ? done : cnt - done;
            memcpy((char *)y->data + done * (int64_t)es, y->data, (size_t)k * es);
            done += k;
        }
    }
    return 0;
}

static const bs_op_t s_op_constant_of_shape = {
    "ConstantOfShape", s_cos_infer, NULL, s_cos_run, NULL, 1, 0,
};

/* ---- Range -------------------------------------------------------------------------------- */

static int s_range_scalar(bs_graph_t *g, const bs_node_t *n, int k, bs_tensor_t **out,
                          bs_err_t *err)
{
    bs_tensor_t *t = NULL;
    int rc = s_in(g, n, k, &t, err);
    if (rc)
        return rc;
    if (bs_shape_numel(&t->shape) != 1 || t->shape.rank > 1)
        return bs_node_err(err, n, BS_EMODEL, "input '%s' must be a scalar", t->name);
    if (!s_is_const(t))
        return bs_node_err(err, n, BS_EUNSUPPORTED, "input '%s' must be a constant known at "
                           "load time", t->name);
    *out = t;
    return 0;
}

static int s_range_len(bs_graph_t *g, const bs_node_t *n, int64_t *len, bs_err_t *err)
{
    bs_tensor_t *t[3] = {NULL, NULL, NULL};
    int rc = s_need_inputs(n, 3, 3, err);
    for (int k = 0; !rc && k < 3; k++)
        rc = s_range_scalar(g, n, k, &t[k], err);
    if (rc)
        return rc;
    int dt = t[0]->dtype;
    if (t[1]->dtype != dt || t[2]->dtype != dt)
        return bs_node_err(err, n, BS_EMODEL, "start, limit and delta differ in type");
    if (dt != BS_DT_FLOAT && dt != BS_DT_DOUBLE && dt != BS_DT_INT16 && dt != BS_DT_INT32 &&
        dt != BS_DT_INT64)
        return bs_node_err(err, n, BS_EUNSUPPORTED, "type %s is not supported",
                           bs_dtype_name(dt));
    if (s_is_float_dtype(dt)) {
        double s = s_get_f64(t[0]->data, dt, 0), l = s_get_f64(t[1]->data, dt, 0);
        double d = s_get_f64(t[2]->data, dt, 0);
        double c = d == 0 ? 0 : ceil((l - s) / d);
        if (d == 0 || !(c < 1e12))
            return bs_node_err(err, n, BS_EMODEL, "delta is 0 or the range is too long");
        *len = c > 0 ? (int64_t)c : 0;
    } else {
        int64_t s = s_get_i64(t[0]->data, dt, 0), l = s_get_i64(t[1]->data, dt, 0);
        int64_t d = s_get_i64(t[2]->data, dt, 0);
        if (d == 0 || s > (1LL << 50) || s < -(1LL << 50) || l > (1LL << 50) ||
            l < -(1LL << 50) || d < -(1LL << 50) || d > (1LL << 50))
            return bs_node_err(err, n, BS_EMODEL, "delta is 0 or the bounds are too large");
        if (d > 0)
            *len = l > s ? (l - s + d - 1) / d : 0;
        else
            *len = s > l ? (s - l - d - 1) / -d : 0;
    }
    return 0;
}

static int s_range_infer(bs_graph_t *g, bs_node_t *n, bs_err_t *err)
{
    int64_t len = 0;
    int rc = s_range_len(g, n, &len, err);
    if (rc)
        return rc;
    bs_tensor_t *st = bs_node_input(g, n, 0);
    bs_shape_t s = {.rank = 1, .d = {len}};
    if ((rc = s_check_size(n, &s, st->dtype, err)))
        return rc;
    bs_tensor_set(bs_node_output(g, n, 0), st->dtype, &s);
    return 0;
}

static int s_range_run(bs_graph_t *g, bs_node_t *n, bs_ctx_t *ctx)
{
    (void)ctx;
    bs_tensor_t *t0 = bs_node_input(g, n, 0), *t2 = bs_node_input(g, n, 2);
    bs_tensor_t *y = s_out(g, n, 0);
    int dt = y->dtype;
    int64_t len = y->shape.d[0];
    if (s_is_float_dtype(dt)) {
        double s = s_get_f64(t0->data, dt, 0), d = s_get_f64(t2->data, dt, 0);
        for (int64_t i = 0; i < len; i++)
            s_store_f64(y->data, dt, i, s + (double)i * d);
    } else {
        int64_t s = s_get_i64(t0->data, dt, 0), d = s_get_i64(t2->data, dt, 0);
        for (int64_t i = 0; i < len; i++)
            s_store_i64(y->data, dt, i, s + i * d);
    }
    return 0;
}

static const bs_op_t s_op_range = {
    "Range", s_range_infer, NULL, s_range_run, NULL, 1, 0,
};

/* ---- broadcasting iteration (Where, comparisons) ------------------------------------------ */

/* Walks the output of rank r in row-major order, keeping the element offset of up to three
 * broadcast inputs. */
typedef struct s_biter {
    int r, m;
    int64_t idx[BS_MAX_RANK], shape[BS_MAX_RANK], st[3][BS_MAX_RANK], off[3];
} s_biter_t;

static void s_biter_init(s_biter_t *it, const bs_shape_t *out, int m, const bs_tensor_t **in)
{
    memset(it, 0, sizeof *it);
    it->r = out->rank;
    it->m = m;
    memcpy(it->shape, out->d, sizeof out->d);
    for (int k = 0; k < m; k++)
        bs_shape_bcast_strides(&in[k]->shape, out, it->st[k]);
}

static void s_biter_next(s_biter_t *it)
{
    for (int i = it->r - 1; i >= 0; i--) {
        for (int k = 0; k < it->m; k++)
            it->off[k] += it->st[k][i];
        if (++it->idx[i] < it->shape[i])
            return;
        for (int k = 0; k < it->m; k++)
            it->off[k] -= it->st[k][i] * it->shape[i];
        it->idx[i] = 0;
    }
}

static int s_bcast_shape(const bs_node_t *n, const bs_tensor_t *const *in, int m,
                         bs_shape_t *out, bs_err_t *err)
{
    bs_shape_t s = in[0]->shape;
    for (int k = 1; k < m; k++) {
        bs_shape_t t;
        if (bs_shape_broadcast(&s, &in[k]->shape, &t) != 0) {
            char b1[160], b2[160];
            return bs_node_err(err, n, BS_EMODEL, "input shapes %s and %s do not broadcast",
                               bs_shape_str(&s, b1, sizeof b1),
                               bs_shape_str(&in[k]->shape, b2, sizeof b2));
        }
        s = t;
    }
    *out = s;
    return 0;
}

/* ---- Where -------------------------------------------------------------------------------- */

static int s_where_infer(bs_graph_t *g, bs_node_t *n, bs_err_t *err)
{
    bs_tensor_t *in[3] = {NULL, NULL, NULL};
    int rc = s_in_all(g, n, 3, in, err);
    if (rc)
        return rc;
    if (in[0]->dtype != BS_DT_BOOL)
        return bs_node_err(err, n, BS_EMODEL, "condition '%s' must be bool, not %s",
                           in[0]->name, bs_dtype_name(in[0]->dtype));
    if (in[1]->dtype != in[2]->dtype)
        return bs_node_err(err, n, BS_EMODEL, "X is %s but Y is %s",
                           bs_dtype_name(in[1]->dtype), bs_dtype_name(in[2]->dtype));
    bs_shape_t s;
    if ((rc = s_bcast_shape(n, (const bs_tensor_t *const *)in, 3, &s, err)))
        return rc;
    bs_tensor_set(bs_node_output(g, n, 0), in[1]->dtype, &s);
    return 0;
}

static int s_where_run(bs_graph_t *g, bs_node_t *n, bs_ctx_t *ctx)
{
    (void)ctx;
    const bs_tensor_t *in[3] = {bs_node_input(g, n, 0), bs_node_input(g, n, 1),
                                bs_node_input(g, n, 2)};
    bs_tensor_t *y = s_out(g, n, 0);
    size_t es = bs_dtype_size(y->dtype);
    int64_t cnt = bs_shape_numel(&y->shape);
    s_biter_t it;
    s_biter_init(&it, &y->shape, 3, in);
    const uint8_t *c = in[0]->data;
    for (int64_t i = 0; i < cnt; i++) {
        int pick = c[it.off[0]] ? 1 : 2;
        memcpy((char *)y->data + i * (int64_t)es,
               (const char *)in[pick]->data + it.off[pick] * (int64_t)es, es);
        s_biter_next(&it);
    }
    return 0;
}

static const bs_op_t s_op_where = {
    "Where", s_where_infer, NULL, s_where_run, NULL, 1, 0,
};

/* ---- Equal, Less, LessOrEqual, Greater, GreaterOrEqual, Not ------------------------------- */

enum { S_CMP_EQ, S_CMP_LT, S_CMP_LE, S_CMP_GT, S_CMP_GE };

static int s_cmp_kind(const bs_node_t *n)
{
    const char *t = n->op_type;
    if (strcmp(t, "Equal") == 0)
        return S_CMP_EQ;
    if (strcmp(t, "Less") == 0)
        return S_CMP_LT;
    if (strcmp(t, "LessOrEqual") == 0)
        return S_CMP_LE;
    if (strcmp(t, "Greater") == 0)
        return S_CMP_GT;
    return S_CMP_GE;
}

static int s_cmp_infer(bs_graph_t *g, bs_node_t *n, bs_err_t *err)
{
    bs_tensor_t *in[2] = {NULL, NULL};
    int rc = s_in_all(g, n, 2, in, err);
    if (rc)
        return rc;
    int dt = in[0]->dtype;
    if (in[1]->dtype != dt)
        return bs_node_err(err, n, BS_EMODEL, "inputs are %s and %s", bs_dtype_name(dt),
                           bs_dtype_name(in[1]->dtype));
    if (dt == BS_DT_BOOL && s_cmp_kind(n) != S_CMP_EQ)
        return bs_node_err(err, n, BS_EUNSUPPORTED, "bool inputs are not supported");
    bs_shape_t s;
    if ((rc = s_bcast_shape(n, (const bs_tensor_t *const *)in, 2, &s, err)))
        return rc;
    bs_tensor_set(bs_node_output(g, n, 0), BS_DT_BOOL, &s);
    return 0;
}

#define S_CMP_LOOP(T, A, B)                                                                      \
    do {                                                                                         \
        for (int64_t i = 0; i < cnt; i++) {                                                      \
            T a = (A), b = (B);                                                                  \
            int v;                                                                               \
            switch (kind) {                                                                      \
            case S_CMP_EQ: v = a == b; break;                                                    \
            case S_CMP_LT: v = a < b; break;                                                     \
            case S_CMP_LE: v = a <= b; break;                                                    \
            case S_CMP_GT: v = a > b; break;                                                     \
            default: v = a >= b; break;                                                          \
            }                                                                                    \
            o[i] = (uint8_t)v;                                                                   \
            s_biter_next(&it);                                                                   \
        }                                                                                        \
    } while (0)

static int s_cmp_run(bs_graph_t *g, bs_node_t *n, bs_ctx_t *ctx)
{
    (void)ctx;
    const bs_tensor_t *in[2] = {bs_node_input(g, n, 0), bs_node_input(g, n, 1)};
    bs_tensor_t *y = s_out(g, n, 0);
    int kind = s_cmp_kind(n), dt = in[0]->dtype;
    int64_t cnt = bs_shape_numel(&y->shape);
    uint8_t *o = y->data;
    const void *pa = in[0]->data, *pb = in[1]->data;
    s_biter_t it;
    s_biter_init(&it, &y->shape, 2, in);
    if (s_is_float_dtype(dt))
        S_CMP_LOOP(double, s_get_f64(pa, dt, it.off[0]), s_get_f64(pb, dt, it.off[1]));
    else if (dt == BS_DT_UINT64)
        S_CMP_LOOP(uint64_t, ((const uint64_t *)pa)[it.off[0]],
                   ((const uint64_t *)pb)[it.off[1]]);
    else
        S_CMP_LOOP(int64_t, s_get_i64(pa, dt, it.off[0]), s_get_i64(pb, dt, it.off[1]));
    return 0;
}

static const bs_op_t s_op_equal = {"Equal", s_cmp_infer, NULL, s_cmp_run, NULL, 1, 0};
static const bs_op_t s_op_less = {"Less", s_cmp_infer, NULL, s_cmp_run, NULL, 1, 0};
static const bs_op_t s_op_less_eq = {"LessOrEqual", s_cmp_infer, NULL, s_cmp_run, NULL, 1, 0};
static const bs_op_t s_op_greater = {"Greater", s_cmp_infer, NULL, s_cmp_run, NULL, 1, 0};
static const bs_op_t s_op_greater_eq = {
    "GreaterOrEqual", s_cmp_infer, NULL, s_cmp_run, NULL, 1, 0,
};

static int s_not_infer(bs_graph_t *g, bs_node_t *n, bs_err_t *err)
{
    bs_tensor_t *x = NULL;
    int rc = s_in0(g, n, 1, 1, &x, err);
    if (rc)
        return rc;
    if (x->dtype != BS_DT_BOOL)
        return bs_node_err(err, n, BS_EMODEL, "input '%s' must be bool, not %s", x->name,
                           bs_dtype_name(x->dtype));
    bs_tensor_set(bs_node_output(g, n, 0), BS_DT_BOOL, &x->shape);
    return 0;
}

static int s_not_run(bs_graph_t *g, bs_node_t *n, bs_ctx_t *ctx)
{
    (void)ctx;
    bs_tensor_t *x = bs_node_input(g, n, 0), *y = s_out(g, n, 0);
    int64_t cnt = bs_shape_numel(&x->shape);
    for (int64_t i = 0; i < cnt; i++)
        ((uint8_t *)y->data)[i] = !((const uint8_t *)x->data)[i];
    return 0;
}

static const bs_op_t s_op_not = {"Not", s_not_infer, NULL, s_not_run, NULL, 1, 0};

/* ---- And, Or, Xor ------------------------------------------------------------------------- */

static int s_logic_infer(bs_graph_t *g, bs_node_t *n, bs_err_t *err)
{
    bs_tensor_t *in[2] = {NULL, NULL};
    int rc = s_in_all(g, n, 2, in, err);
    if (rc)
        return rc;
    for (int k = 0; k < 2; k++)
        if (in[k]->dtype != BS_DT_BOOL)
            return bs_node_err(err, n, BS_EMODEL, "input '%s' must be bool, not %s",
                               in[k]->name, bs_dtype_name(in[k]->dtype));
    bs_shape_t s;
    if ((rc = s_bcast_shape(n, (const bs_tensor_t *const *)in, 2, &s, err)))
        return rc;
    bs_tensor_set(bs_node_output(g, n, 0), BS_DT_BOOL, &s);
    return 0;
}

static int s_logic_run(bs_graph_t *g, bs_node_t *n, bs_ctx_t *ctx)
{
    (void)ctx;
    const bs_tensor_t *in[2] = {bs_node_input(g, n, 0), bs_node_input(g, n, 1)};
    bs_tensor_t *y = s_out(g, n, 0);
    int64_t cnt = bs_shape_numel(&y->shape);
    const uint8_t *a = in[0]->data, *b = in[1]->data;
    uint8_t *o = y->data;
    int op = n->op_type[0]; /* 'A'nd, 'O'r, 'X'or */
    s_biter_t it;
    s_biter_init(&it, &y->shape, 2, in);
    for (int64_t i = 0; i < cnt; i++) {
        int x = a[it.off[0]] != 0, z = b[it.off[1]] != 0;
        o[i] = (uint8_t)(op == 'A' ? x && z : op == 'O' ? x || z : x != z);
        s_biter_next(&it);
    }
    return 0;
}

static const bs_op_t s_op_and = {"And", s_logic_infer, NULL, s_logic_run, NULL, 1, 0};
static const bs_op_t s_op_or = {"Or", s_logic_infer, NULL, s_logic_run, NULL, 1, 0};
static const bs_op_t s_op_xor = {"Xor", s_logic_infer, NULL, s_logic_run, NULL, 1, 0};

/* ---- CastLike, Size ----------------------------------------------------------------------- */

static int s_castlike_infer(bs_graph_t *g, bs_node_t *n, bs_err_t *err)
{
    bs_tensor_t *in[2] = {NULL, NULL};
    int rc = s_in_all(g, n, 2, in, err);
    if (rc)
        return rc;
    bs_tensor_t *x = in[0], *like = in[1];
    if (!s_cast_ok(x->dtype) || !s_cast_ok(like->dtype))
        return bs_node_err(err, n, BS_EUNSUPPORTED, "cannot cast %s to %s",
                           bs_dtype_name(x->dtype), bs_dtype_name(like->dtype));
    bs_tensor_set(bs_node_output(g, n, 0), like->dtype, &x->shape);
    return 0;
}

static const bs_op_t s_op_castlike = {
    "CastLike", s_castlike_infer, NULL, s_cast_run, NULL, 1, 0,
};

static int s_size_infer(bs_graph_t *g, bs_node_t *n, bs_err_t *err)
{
    bs_tensor_t *x = NULL;
    int rc = s_in_shaped(g, n, &x, err);
    if (rc)
        return rc;
    bs_shape_t s = {.rank = 0};
    bs_tensor_set(bs_node_output(g, n, 0), BS_DT_INT64, &s);
    return 0;
}

static int s_size_run(bs_graph_t *g, bs_node_t *n, bs_ctx_t *ctx)
{
    (void)ctx;
    *(int64_t *)s_out(g, n, 0)->data = bs_shape_numel(&bs_node_input(g, n, 0)->shape);
    return 0;
}

static const bs_op_t s_op_size = {"Size", s_size_infer, NULL, s_size_run, NULL, 1, 0};

/* ---- GatherElements ----------------------------------------------------------------------- */

static int s_gather_el_infer(bs_graph_t *g, bs_node_t *n, bs_err_t *err)
{
    bs_tensor_t *x = NULL, *ind = NULL;
    int rc = s_gather_in(g, n, &x, &ind, err);
    if (rc)
        return rc;
    int r = x->shape.rank, axis = 0;
    if (r == 0 || ind->shape.rank != r)
        return bs_node_err(err, n, BS_EMODEL, "data has rank %d and indices rank %d; equal "
                           "non-zero ranks expected", r, ind->shape.rank);
    if ((rc = s_axis(n, bs_attr_int(n, "axis", 0), r, "attribute 'axis'", &axis, err)))
        return rc;
    for (int i = 0; i < r; i++)
        if (i != axis && ind->shape.d[i] > x->shape.d[i])
            return bs_node_err(err, n, BS_EMODEL, "indices dimension %d (%lld) exceeds the "
                               "data's (%lld)", i, (long long)ind->shape.d[i],
                               (long long)x->shape.d[i]);
    if ((rc = s_gather_consts(n, ind, axis, x->shape.d[axis], err)))
        return rc;
    bs_tensor_set(bs_node_output(g, n, 0), x->dtype, &ind->shape);
    return 0;
}

static int s_gather_el_run(bs_graph_t *g, bs_node_t *n, bs_ctx_t *ctx)
{
    (void)ctx;
    bs_tensor_t *x = bs_node_input(g, n, 0), *ind = bs_node_input(g, n, 1);
    bs_tensor_t *y = s_out(g, n, 0);
    int r = x->shape.rank;
    int axis = s_run_axis(n, r);
    size_t es = bs_dtype_size(x->dtype);
    int64_t xs[BS_MAX_RANK], idx[BS_MAX_RANK] = {0}, off = 0;
    int64_t cnt = bs_shape_numel(&ind->shape), dim = x->shape.d[axis];
    bs_shape_strides(&x->shape, xs);
    for (int64_t i = 0; i < cnt; i++) {
        int64_t v = s_get_i64(ind->data, ind->dtype, i);
        if (v < -dim || v >= dim)
            return BS_EINVAL; /* only reachable with run-time indices */
        if (v < 0)
            v += dim;
        memcpy((char *)y->data + i * (int64_t)es,
               (const char *)x->data + (off + v * xs[axis]) * (int64_t)es, es);
        for (int d = r - 1; d >= 0; d--) {
            int64_t st = d == axis ? 0 : xs[d];
            off += st;
            if (++idx[d] < ind->shape.d[d])
                break;
            off -= st * ind->shape.d[d];
            idx[d] = 0;
        }
    }
    return 0;
}

static const bs_op_t s_op_gather_elements = {
    "GatherElements", s_gather_el_infer, NULL, s_gather_el_run, NULL, 1, 0,
};

/* ---- Pad ---------------------------------------------------------------------------------- */

enum { S_PAD_CONSTANT, S_PAD_REFLECT, S_PAD_EDGE };

typedef struct s_pad {
    int mode;
    int64_t begin[BS_MAX_RANK]; /* may be negative (crop) */
} s_pad_t;

static int s_pad_params(bs_graph_t *g, const bs_node_t *n, const bs_tensor_t *x, s_pad_t *p,
                        bs_shape_t *out, bs_err_t *err)
{
    int r = x->shape.rank, np, rc;
    int64_t pads[2 * BS_MAX_RANK], axes[BS_MAX_RANK];
    int na = -1;
    const char *mode = bs_attr_string(n, "mode", "constant");
    if (strcmp(mode, "constant") == 0)
        p->mode = S_PAD_CONSTANT;
    else if (strcmp(mode, "reflect") == 0)
        p->mode = S_PAD_REFLECT;
    else if (strcmp(mode, "edge") == 0)
        p->mode = S_PAD_EDGE;
    else
        return bs_node_err(err, n, BS_EUNSUPPORTED, "mode '%s' is not supported (constant, "
                           "reflect, edge)", mode);
    if (g->opset < 11) {
        const int64_t *a;
        np = bs_attr_ints(n, "pads", &a);
        if (np < 0)
            return bs_node_err(err, n, BS_EMODEL, "attribute 'pads' is required");
        if (np > 2 * BS_MAX_RANK)
            return bs_node_err(err, n, BS_EMODEL, "too many pads");
        memcpy(pads, a, (size_t)np * sizeof *a);
    } else {
        if (n->n_in < 2 || n->n_in > 4)
            return bs_node_err(err, n, BS_EMODEL, "has %d inputs, expected 2 to 4", n->n_in);
        if ((rc = s_const_ints(g, n, 1, "pads", pads, 2 * BS_MAX_RANK, &np, err)))
            return rc;
        if (bs_node_input(g, n, 3) &&
            (rc = s_const_ints(g, n, 3, "axes", axes, BS_MAX_RANK, &na, err)))
            return rc;
    }
    int k = na >= 0 ? na : r;
    if (np != 2 * k)
        return bs_node_err(err, n, BS_EMODEL, "has %d pads, expected %d", np, 2 * k);
    bs_shape_t s = x->shape;
    memset(p->begin, 0, sizeof p->begin);
    int seen[BS_MAX_RANK] = {0};
    for (int i = 0; i < k; i++) {
        int a = i;
        if (na >= 0 && (rc = s_axis(n, axes[i], r, "axes value", &a, err)))
            return rc;
        if (seen[a])
            return bs_node_err(err, n, BS_EMODEL, "axis %d is padded twice", a);
        seen[a] = 1;
        int64_t b = pads[i], e = pads[i + k], d = x->shape.d[a];
        if (b > (1LL << 40) || e > (1LL << 40) || b < -d || e < -d || b + e + d < 0)
            return bs_node_err(err, n, BS_EMODEL, "pads %lld, %lld do not fit axis %d of size "
                               "%lld", (long long)b, (long long)e, a, (long long)d);
        if (p->mode != S_PAD_CONSTANT && d == 0 && b + e > 0)
            return bs_node_err(err, n, BS_EMODEL, "cannot pad the empty axis %d in mode '%s'",
                               a, mode);
        p->begin[a] = b;
        s.d[a] = d + b + e;
    }
    if ((rc = s_check_size(n, &s, x->dtype, err)))
        return rc;
    *out = s;
    return 0;
}

static int s_pad_infer(bs_graph_t *g, bs_node_t *n, bs_err_t *err)
{
    bs_tensor_t *x = NULL, *cv = NULL;
    s_pad_t p;
    bs_shape_t s;
    int rc = s_in0(g, n, 1, 4, &x, err);
    if (!rc)
        rc = s_pad_params(g, n, x, &p, &s, err);
    if (rc)
        return rc;
    if (g->opset >= 11 && (cv = bs_node_input(g, n, 2)) != NULL) {
        if ((rc = s_in(g, n, 2, &cv, err)))
            return rc;
        if (cv->dtype != x->dtype || bs_shape_numel(&cv->shape) != 1)
            return bs_node_err(err, n, BS_EMODEL, "constant_value '%s' must be one %s",
                               cv->name, bs_dtype_name(x->dtype));
    }
    bs_tensor_set(bs_node_output(g, n, 0), x->dtype, &s);
    return 0;
}

/* Maps output coordinate o on an axis of size d to the input coordinate, or -1 for the
 * constant. */
static int64_t s_pad_map(int mode, int64_t o, int64_t b, int64_t d)
{
    int64_t i = o - b;
    if (i >= 0 && i < d)
        return i;
    if (mode == S_PAD_CONSTANT)
        return -1;
    if (mode == S_PAD_EDGE)
        return i < 0 ? 0 : d - 1;
    if (d == 1)
        return 0;
    int64_t per = 2 * (d - 1);
    i %= per;
    if (i < 0)
        i += per;
    return i < d ? i : per - i;
}

static int s_pad_run(bs_graph_t *g, bs_node_t *n, bs_ctx_t *ctx)
{
    (void)ctx;
    bs_tensor_t *x = bs_node_input(g, n, 0), *y = s_out(g, n, 0);
    s_pad_t p;
    bs_shape_t s;
    if (s_pad_params(g, n, x, &p, &s, NULL))
        return BS_EMODEL;
    size_t es = bs_dtype_size(x->dtype);
    int64_t cnt = bs_shape_numel(&y->shape);
    if (cnt == 0)
        return 0;
    /* the constant, as one element of the tensor's type */
    uint64_t cbuf = 0;
    bs_tensor_t *cv = g->opset >= 11 ? bs_node_input(g, n, 2) : NULL;
    if (cv && cv->data)
        memcpy(&cbuf, cv->data, es);
    else if (!cv)
        s_store_f64(&cbuf, x->dtype, 0, bs_attr_float(n, "value", 0.0f));
    int r = y->shape.rank;
    int64_t xs[BS_MAX_RANK], idx[BS_MAX_RANK] = {0};
    bs_shape_strides(&x->shape, xs);
    if (r == 0) {
        memcpy(y->data, x->data, es);
        return 0;
    }
    int64_t inner = y->shape.d[r - 1], outer = cnt / inner;
    int64_t xd = x->shape.d[r - 1], b = p.begin[r - 1];
    char *d = y->data;
    for (int64_t o = 0; o < outer; o++) {
        int64_t off = 0;
        int fill = 0;
        for (int i = 0; i < r - 1; i++) {
            int64_t v = s_pad_map(p.mode, idx[i], p.begin[i], x->shape.d[i]);
            if (v < 0)
                fill = 1;
            else
                off += v * xs[i];
        }
        const char *row = (const char *)x->data + off * (int64_t)es;
        for (int64_t j = 0; j < inner; j++) {
            int64_t v = fill ? -1 : s_pad_map(p.mode, j, b, xd);
            memcpy(d + j * (int64_t)es, v < 0 ? (const char *)&cbuf : row + v * (int64_t)es,
                   es);
        }
        d += inner * (int64_t)es;
        for (int i = r - 2; i >= 0; i--) {
            if (++idx[i] < y->shape.d[i])
                break;
            idx[i] = 0;
        }
    }
    return 0;
}

static const bs_op_t s_op_pad = {"Pad", s_pad_infer, NULL, s_pad_run, NULL, 1, 0};

/* ---- table -------------------------------------------------------------------------------- */

const bs_op_t *const bs_ops_shape[] = {
    &s_op_reshape, &s_op_flatten, &s_op_transpose, &s_op_concat, &s_op_split, &s_op_slice,
    &s_op_squeeze, &s_op_unsqueeze, &s_op_shape, &s_op_gather, &s_op_cast, &s_op_constant,
    &s_op_identity, &s_op_expand, &s_op_range, &s_op_where, &s_op_equal, &s_op_less,
    &s_op_less_eq, &s_op_greater, &s_op_greater_eq, &s_op_not, &s_op_constant_of_shape,
    &s_op_tile, &s_op_pad, &s_op_and, &s_op_or, &s_op_xor, &s_op_castlike, &s_op_size,
    &s_op_gather_elements, NULL,
};

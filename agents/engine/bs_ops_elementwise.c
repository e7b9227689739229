/*
 * bs_ops_elementwise.c - element-wise operators: binary arithmetic with numpy broadcasting
 * (Add, Sub, Mul, Div, Pow, Min, Max, Sum, Mean, PRelu), activations and other unary maps
 * (Relu, LeakyRelu, Clip, Sigmoid, HardSigmoid, HardSwish, Tanh, Sqrt, Erf, Neg, Abs, Exp, Log,
 * Reciprocal, Floor, Ceil, Softplus, Elu, Selu). Dropout (inference: identity) is written but
 * not registered; see its comment.
 *
 * Compute is float32. Because exporters do shape arithmetic with integers (those nodes fold at
 * load) and ONNX's conformance tests use them, Add, Sub, Mul, Div, Min and Max also take
 * float64 and every integer type (Min / Max float16 too), Pow takes int32 / int64 bases and
 * integer exponents, Clip int8 / uint8 / int32 / int64, Neg and Abs signed integers. Integer
 * arithmetic wraps (two's complement, computed unsigned) instead of overflowing, and an
 * integer division by zero fails the run rather than trapping.
 *
 * Broadcasting. A binary op sees each operand as a view of the output shape with element
 * strides from bs_shape_bcast_strides (0 on broadcast axes). Before looping, the view is
 * coalesced: size-1 output axes are dropped and neighbouring axes merged wherever every
 * operand is contiguous across them. Same-shape operands become one flat run, a scalar becomes
 * a flat run with a stride-0 operand, and a per-channel operand ([C,1,1] against [N,C,H,W])
 * becomes N*C runs of H*W against one value. The innermost run is a tight loop specialised for
 * stride pairs (1,1), (1,0) and (0,1), which compilers vectorise; the outer axes are walked
 * with an odometer. Variadic ops (Sum, Mean, Min, Max) combine the first two inputs into the
 * output, then fold each further input into the output in place.
 *
 * Unary ops are one flat loop each, generated from an expression. Attributes are read in
 * run() (a few string compares per call; nothing to allocate).
 */
#include "bs_op.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* ---- shared checks ------------------------------------------------------------------------- */

/* Input k, required, with an inferred type and shape. */
static int s_input(bs_graph_t *g, bs_node_t *n, int k, bs_tensor_t **out, bs_err_t *err)
{
    bs_tensor_t *t = bs_node_input(g, n, k);
    if (!t)
        return bs_node_err(err, n, BS_EMODEL, "input %d is missing", k);
    if (!t->has_shape || t->dtype == BS_DT_UNDEFINED)
        return bs_node_err(err, n, BS_EMODEL, "input %d '%s' has no inferred type and shape", k,
                           t->name);
    *out = t;
    return 0;
}

static int s_output(bs_graph_t *g, bs_node_t *n, int k, bs_tensor_t **out, bs_err_t *err)
{
    bs_tensor_t *t = bs_node_output(g, n, k);
    if (!t)
        return bs_node_err(err, n, BS_EMODEL, "output %d is missing", k);
    *out = t;
    return 0;
}

static int s_count_inputs(bs_node_t *n, int lo, int hi, bs_err_t *err)
{
    if (n->n_in < lo || n->n_in > hi) {
        if (lo == hi)
            return bs_node_err(err, n, BS_EMODEL, "expected %d input%s, got %d", lo,
                               lo == 1 ? "" : "s", n->n_in);
        return bs_node_err(err, n, BS_EMODEL, "expected %d to %d inputs, got %d", lo, hi, n->n_in);
    }
    return 0;
}

static int s_need_float(bs_node_t *n, const bs_tensor_t *t, bs_err_t *err)
{
    if (t->dtype != BS_DT_FLOAT)
        return bs_node_err(err, n, BS_EUNSUPPORTED,
                           "input '%s' has type %s; only float32 is supported", t->name,
                           bs_dtype_name(t->dtype));
    return 0;
}

/* ---- broadcast iteration ------------------------------------------------------------------- */

/* Inner run: y[oy + i] = f(a[oa + i*sa], b[ob + i*sb]) for i < n (element offsets). */
typedef void (*s_bin_fn)(const void *a, int64_t oa, int64_t sa, const void *b, int64_t ob,
                         int64_t sb, void *y, int64_t oy, int64_t n);

typedef struct s_bcast {
    int rank;                /* >= 1 after coalescing */
    int64_t d[BS_MAX_RANK];  /* axis sizes */
    int64_t sa[BS_MAX_RANK]; /* element strides of a and b on each axis (y is contiguous) */
    int64_t sb[BS_MAX_RANK];
} s_bcast_t;

static void s_bcast_init(s_bcast_t *it, const bs_shape_t *a, const bs_shape_t *b,
                         const bs_shape_t *y)
{
    int64_t sa[BS_MAX_RANK], sb[BS_MAX_RANK];
    bs_shape_bcast_strides(a, y, sa);
    bs_shape_bcast_strides(b, y, sb);
    it->rank = 0;
    for (int i = 0; i < y->rank; i++) {
        if (y->d[i] == 1)
            continue;
        int k = it->rank - 1;
        if (k >= 0 && it->sa[k] == sa[i] * y->d[i] && it->sb[k] == sb[i] * y->d[i]) {
            it->d[k] *= y->d[i]; /* axis i continues axis k contiguously in every operand */
            it->sa[k] = sa[i];
            it->sb[k] = sb[i];
            continue;
        }
        it->d[it->rank] = y->d[i];
        it->sa[it->rank] = sa[i];
        it->sb[it->rank] = sb[i];
        it->rank++;
    }
    if (it->rank == 0) {
        it->rank = 1;
        it->d[0] = 1;
        it->sa[0] = it->sb[0] = 0;
    }
}

static void s_bcast_run(const s_bcast_t *it, const void *a, const void *b, void *y, s_bin_fn fn)
{
    int r = it->rank;
    int64_t inner = it->d[r - 1], outer = 1;
    for (int k = 0; k < r - 1; k++)
        outer *= it->d[k];
    if (inner == 0 || outer == 0)
        return;
    int64_t idx[BS_MAX_RANK] = {0};
    int64_t oa = 0, ob = 0, oy = 0;
    for (int64_t o = 0; o < outer; o++) {
        fn(a, oa, it->sa[r - 1], b, ob, it->sb[r - 1], y, oy, inner);
        oy += inner;
        for (int k = r - 2; k >= 0; k--) {
            oa += it->sa[k];
            ob += it->sb[k];
            if (++idx[k] < it->d[k])
                break;
            oa -= it->sa[k] * it->d[k];
            ob -= it->sb[k] * it->d[k];
            idx[k] = 0;
        }
    }
}

/* y (shape ys) = a (shape as) op b (shape bs), both broadcast to ys. */
static void s_binary(const void *a, const bs_shape_t *as, const void *b, const bs_shape_t *bs,
                     void *y, const bs_shape_t *ys, s_bin_fn fn)
{
    s_bcast_t it;
    s_bcast_init(&it, as, bs, ys);
    s_bcast_run(&it, a, b, y, fn);
}

/* Defines an inner run NAME over element types TA, TB -> TY computing EXPR from x (a's element)
 * and w (b's element). Y may be A (variadic ops fold inputs into the output in place), so there
 * is no restrict; compilers version the loops for aliasing. */
#define S_BIN_KERNEL(NAME, TA, TB, TY, EXPR)                                                      \
    static void NAME(const void *pa, int64_t oa, int64_t sa, const void *pb, int64_t ob,          \
                     int64_t sb, void *py, int64_t oy, int64_t n)                                 \
    {                                                                                             \
        const TA *A = (const TA *)pa + oa;                                                        \
        const TB *B = (const TB *)pb + ob;                                                        \
        TY *Y = (TY *)py + oy;                                                                    \
        if (sa == 1 && sb == 1) {                                                                 \
            for (int64_t i = 0; i < n; i++) {                                                     \
                TA x = A[i];                                                                      \
                TB w = B[i];                                                                      \
                Y[i] = (EXPR);                                                                    \
            }                                                                                     \
        } else if (sa == 1 && sb == 0) {                                                          \
            TB w = B[0];                                                                          \
            for (int64_t i = 0; i < n; i++) {                                                     \
                TA x = A[i];                                                                      \
                Y[i] = (EXPR);                                                                    \
            }                                                                                     \
        } else if (sa == 0 && sb == 1) {                                                          \
            TA x = A[0];                                                                          \
            for (int64_t i = 0; i < n; i++) {                                                     \
                TB w = B[i];                                                                      \
                Y[i] = (EXPR);                                                                    \
            }                                                                                     \
        } else {                                                                                  \
            for (int64_t i = 0; i < n; i++) {                                                     \
                TA x = A[i * sa];                                                                 \
                TB w = B[i * sb];                                                                 \
                Y[i] = (EXPR);                                                                    \
            }                                                                                     \
        }                                                                                         \
    }

/* Element types the kernel tables are indexed by. */
enum { S_F32, S_F64, S_F16, S_I8, S_U8, S_I16, S_U16, S_I32, S_U32, S_I64, S_U64, S_NT };

static int s_ti(int dtype)
{
    switch (dtype) {
    case BS_DT_FLOAT:
        return S_F32;
    case BS_DT_DOUBLE:
        return S_F64;
    case BS_DT_FLOAT16:
        return S_F16;
    case BS_DT_INT8:
        return S_I8;
    case BS_DT_UINT8:
        return S_U8;
    case BS_DT_INT16:
        return S_I16;
    case BS_DT_UINT16:
        return S_U16;
    case BS_DT_INT32:
        return S_I32;
    case BS_DT_UINT32:
        return S_U32;
    case BS_DT_INT64:
        return S_I64;
    case BS_DT_UINT64:
        return S_U64;
    default:
        return -1;
    }
}

/* Integer arithmetic wraps: computed in an unsigned type U at least as wide as T (so that no
 * promotion to int can overflow), then converted back. Division by zero is caught before the
 * kernel runs; MIN / -1 gives MIN. */
#define S_INT_KERNELS(sfx, T, U, MIN)                                                             \
    S_BIN_KERNEL(s_add_##sfx, T, T, T, (T)((U)x + (U)w))                                          \
    S_BIN_KERNEL(s_sub_##sfx, T, T, T, (T)((U)x - (U)w))                                          \
    S_BIN_KERNEL(s_mul_##sfx, T, T, T, (T)((U)x * (U)w))                                          \
    S_BIN_KERNEL(s_div_##sfx, T, T, T, (x == (MIN) && w == (T)-1) ? x : (T)(x / w))               \
    S_BIN_KERNEL(s_min_##sfx, T, T, T, w < x ? w : x)                                             \
    S_BIN_KERNEL(s_max_##sfx, T, T, T, w > x ? w : x)

/* clang-format off */
#define S_FLOAT_KERNELS(sfx, T)                                                                   \
    S_BIN_KERNEL(s_add_##sfx, T, T, T, x + w)                                                     \
    S_BIN_KERNEL(s_sub_##sfx, T, T, T, x - w)                                                     \
    S_BIN_KERNEL(s_mul_##sfx, T, T, T, x * w)                                                     \
    S_BIN_KERNEL(s_div_##sfx, T, T, T, x / w)                                                     \
    S_BIN_KERNEL(s_min_##sfx, T, T, T, w < x ? w : x)                                             \
    S_BIN_KERNEL(s_max_##sfx, T, T, T, w > x ? w : x)
/* clang-format on */

S_FLOAT_KERNELS(f32, float)
S_FLOAT_KERNELS(f64, double)
S_INT_KERNELS(i8, int8_t, uint32_t, INT8_MIN)
S_INT_KERNELS(u8, uint8_t, uint32_t, 0)
S_INT_KERNELS(i16, int16_t, uint32_t, INT16_MIN)
S_INT_KERNELS(u16, uint16_t, uint32_t, 0)
S_INT_KERNELS(i32, int32_t, uint32_t, INT32_MIN)
S_INT_KERNELS(u32, uint32_t, uint32_t, 0)
S_INT_KERNELS(i64, int64_t, uint64_t, INT64_MIN)
S_INT_KERNELS(u64, uint64_t, uint64_t, 0)
S_BIN_KERNEL(s_min_f16, uint16_t, uint16_t, uint16_t, bs_f16_to_f32(w) < bs_f16_to_f32(x) ? w : x)
S_BIN_KERNEL(s_max_f16, uint16_t, uint16_t, uint16_t, bs_f16_to_f32(w) > bs_f16_to_f32(x) ? w : x)
S_BIN_KERNEL(s_prelu_f32, float, float, float, x < 0.0f ? x * w : x)

enum { S_ADD, S_SUB, S_MUL, S_DIV, S_MIN, S_MAX, S_NOPS };

#define S_ROW(op)                                                                                 \
    {                                                                                             \
        [S_F32] = s_##op##_f32, [S_F64] = s_##op##_f64, [S_I8] = s_##op##_i8,                     \
        [S_U8] = s_##op##_u8, [S_I16] = s_##op##_i16, [S_U16] = s_##op##_u16,                     \
        [S_I32] = s_##op##_i32, [S_U32] = s_##op##_u32, [S_I64] = s_##op##_i64,                   \
        [S_U64] = s_##op##_u64,                                                                   \
    }
static const s_bin_fn s_arith[S_NOPS][S_NT] = {
    S_ROW(add), S_ROW(sub), S_ROW(mul), S_ROW(div), S_ROW(min), S_ROW(max),
};
#undef S_ROW

/* Pow: the result has the base's type. Float bases use powf; integer bases are computed in
 * double and converted back with saturation (numpy's astype of an exact power). */
static int32_t s_sat_i32(double v)
{
    return v != v ? 0 : v <= INT32_MIN ? INT32_MIN : v >= INT32_MAX ? INT32_MAX : (int32_t)v;
}

static int64_t s_sat_i64(double v)
{
    return v != v                       ? 0
           : v <= (double)INT64_MIN     ? INT64_MIN
           : v >= 9223372036854775807.0 ? INT64_MAX
                                        : (int64_t)v;
}

#define S_POW_F32(x, w) powf(x, (float)(w))
#define S_POW_I32(x, w) s_sat_i32(pow((double)(x), (double)(w)))
#define S_POW_I64(x, w) s_sat_i64(pow((double)(x), (double)(w)))
#define S_POW_KERNELS(bsfx, TA, F)                                                                \
    S_BIN_KERNEL(s_pow_##bsfx##_f32, TA, float, TA, F(x, w))                                      \
    S_BIN_KERNEL(s_pow_##bsfx##_i32, TA, int32_t, TA, F(x, w))                                    \
    S_BIN_KERNEL(s_pow_##bsfx##_i64, TA, int64_t, TA, F(x, w))                                    \
    S_BIN_KERNEL(s_pow_##bsfx##_u32, TA, uint32_t, TA, F(x, w))                                   \
    S_BIN_KERNEL(s_pow_##bsfx##_u64, TA, uint64_t, TA, F(x, w))
S_POW_KERNELS(f32, float, S_POW_F32)
S_POW_KERNELS(i32, int32_t, S_POW_I32)
S_POW_KERNELS(i64, int64_t, S_POW_I64)

/* s_pow[base][exponent]: bases float32 / int32 / int64; exponents float32 / int32 / int64 /
 * uint32 / uint64. */
static int s_pow_base(int dt)
{
    return dt == BS_DT_FLOAT ? 0 : dt == BS_DT_INT32 ? 1 : dt == BS_DT_INT64 ? 2 : -1;
}

static int s_pow_exp(int dt)
{
    switch (dt) {
    case BS_DT_FLOAT:
        return 0;
    case BS_DT_INT32:
        return 1;
    case BS_DT_INT64:
        return 2;
    case BS_DT_UINT32:
        return 3;
    case BS_DT_UINT64:
        return 4;
    default:
        return -1;
    }
}

#define S_POW_ROW(b)                                                                              \
    {                                                                                             \
        s_pow_##b##_f32, s_pow_##b##_i32, s_pow_##b##_i64, s_pow_##b##_u32, s_pow_##b##_u64       \
    }
static const s_bin_fn s_pow[3][5] = {S_POW_ROW(f32), S_POW_ROW(i32), S_POW_ROW(i64)};
#undef S_POW_ROW

/* ---- binary ops: Add, Sub, Mul, Div, Pow, PRelu ------------------------------------------- */

enum { S_KIND_POW = S_NOPS, S_KIND_PRELU };

/* PRelu before opset 7 took a slope of shape [C] for input [N, C, ...]: seen here as
 * [C, 1, ..., 1]. Returns 1 and sets *view when that legacy rule applies. */
static int s_prelu_legacy(const bs_graph_t *g, const bs_tensor_t *x, const bs_tensor_t *slope,
                          bs_shape_t *view)
{
    if (g->opset >= 7 || slope->shape.rank != 1 || x->shape.rank < 2 ||
        slope->shape.d[0] != x->shape.d[1])
        return 0;
    view->rank = x->shape.rank - 1;
    view->d[0] = slope->shape.d[0];
    for (int i = 1; i < view->rank; i++)
        view->d[i] = 1;
    return 1;
}

static int s_infer_binary(bs_graph_t *g, bs_node_t *n, int kind, bs_err_t *err)
{
    bs_tensor_t *a = NULL, *b = NULL, *y = NULL;
    int rc;
    if ((rc = s_count_inputs(n, 2, 2, err)) || (rc = s_input(g, n, 0, &a, err)) ||
        (rc = s_input(g, n, 1, &b, err)) || (rc = s_output(g, n, 0, &y, err)))
        return rc;
    if (kind == S_KIND_POW) {
        if (s_pow_base(a->dtype) < 0)
            return bs_node_err(err, n, BS_EUNSUPPORTED,
                               "base '%s' has type %s; float32, int32 or int64 expected", a->name,
                               bs_dtype_name(a->dtype));
        if (s_pow_exp(b->dtype) < 0)
            return bs_node_err(err, n, BS_EUNSUPPORTED,
                               "exponent '%s' has type %s; float32, int32, int64, uint32 or "
                               "uint64 expected",
                               b->name, bs_dtype_name(b->dtype));
    } else if (kind == S_KIND_PRELU) {
        if ((rc = s_need_float(n, a, err)) || (rc = s_need_float(n, b, err)))
            return rc;
    } else {
        int t = s_ti(a->dtype);
        if (t < 0 || !s_arith[kind][t])
            return bs_node_err(err, n, BS_EUNSUPPORTED,
                               "input '%s' has type %s; a float32, float64 or integer type "
                               "expected",
                               a->name, bs_dtype_name(a->dtype));
        if (b->dtype != a->dtype)
            return bs_node_err(err, n, BS_EMODEL, "inputs '%s' (%s) and '%s' (%s) differ in type",
                               a->name, bs_dtype_name(a->dtype), b->name, bs_dtype_name(b->dtype));
    }
    bs_shape_t out, legacy;
    char sa[128], sb[128];
    if (kind == S_KIND_PRELU && s_prelu_legacy(g, a, b, &legacy)) {
        out = a->shape;
    } else {
        if (bs_shape_broadcast(&a->shape, &b->shape, &out) != 0)
            return bs_node_err(err, n, BS_EMODEL, "shapes of '%s' %s and '%s' %s do not broadcast",
                               a->name, bs_shape_str(&a->shape, sa, sizeof sa), b->name,
                               bs_shape_str(&b->shape, sb, sizeof sb));
        if (kind == S_KIND_PRELU && !bs_shape_eq(&out, &a->shape))
            return bs_node_err(err, n, BS_EMODEL,
                               "slope '%s' %s does not broadcast to the input's shape %s", b->name,
                               bs_shape_str(&b->shape, sb, sizeof sb),
                               bs_shape_str(&a->shape, sa, sizeof sa));
    }
    bs_tensor_set(y, a->dtype, &out);
    return 0;
}

/* Integer Div: a zero divisor fails the run (checked before computing anything). */
static int s_has_zero(const bs_tensor_t *t)
{
    size_t es = bs_dtype_size(t->dtype);
    int64_t cnt = bs_shape_numel(&t->shape);
    const unsigned char *p = t->data;
    for (int64_t i = 0; i < cnt; i++, p += es) {
        size_t k = 0;
        while (k < es && p[k] == 0)
            k++;
        if (k == es)
            return 1;
    }
    return 0;
}

static int s_run_binary(bs_graph_t *g, bs_node_t *n, int kind)
{
    const bs_tensor_t *a = bs_node_input(g, n, 0), *b = bs_node_input(g, n, 1);
    bs_tensor_t *y = bs_node_output(g, n, 0);
    s_bin_fn fn = NULL;
    bs_shape_t bshape = b->shape;
    if (kind == S_KIND_POW) {
        int pb = s_pow_base(a->dtype), pe = s_pow_exp(b->dtype);
        if (pb < 0 || pe < 0)
            return BS_EUNSUPPORTED;
        fn = s_pow[pb][pe];
    } else if (kind == S_KIND_PRELU) {
        fn = s_prelu_f32;
        s_prelu_legacy(g, a, b, &bshape);
    } else {
        int t = s_ti(a->dtype);
        fn = t >= 0 ? s_arith[kind][t] : NULL;
        if (!fn)
            return BS_EUNSUPPORTED;
        if (kind == S_DIV && t >= S_I8 && s_has_zero(b))
            return BS_EINVAL;
    }
    s_binary(a->data, &a->shape, b->data, &bshape, y->data, &y->shape, fn);
    return 0;
}

#define S_BINARY_OP(ident, NAME, KIND)                                                            \
    static int s_infer_##ident(bs_graph_t *g, bs_node_t *n, bs_err_t *err)                        \
    {                                                                                             \
        return s_infer_binary(g, n, KIND, err);                                                   \
    }                                                                                             \
    static int s_run_##ident(bs_graph_t *g, bs_node_t *n, bs_ctx_t *ctx)                          \
    {                                                                                             \
        (void)ctx;                                                                                \
        return s_run_binary(g, n, KIND);                                                          \
    }                                                                                             \
    static const bs_op_t s_op_##ident = {                                                         \
        .op_type = NAME, .infer = s_infer_##ident, .run = s_run_##ident, .foldable = 1};

S_BINARY_OP(add, "Add", S_ADD)
S_BINARY_OP(sub, "Sub", S_SUB)
S_BINARY_OP(mul, "Mul", S_MUL)
S_BINARY_OP(div, "Div", S_DIV)
S_BINARY_OP(pow, "Pow", S_KIND_POW)
S_BINARY_OP(prelu, "PRelu", S_KIND_PRELU)

/* ---- variadic ops: Sum, Mean, Min, Max ----------------------------------------------------- */

enum { S_V_SUM, S_V_MEAN, S_V_MIN, S_V_MAX };

/* The kernel a variadic op folds its inputs with; NULL for an unsupported type. Sum and Mean
 * take float32 and float64; Min and Max every numeric type, float16 included. */
static s_bin_fn s_variadic_fn(int kind, int dtype)
{
    int t = s_ti(dtype);
    if (t < 0)
        return NULL;
    switch (kind) {
    case S_V_SUM:
    case S_V_MEAN:
        return t == S_F32 || t == S_F64 ? s_arith[S_ADD][t] : NULL;
    case S_V_MIN:
        return t == S_F16 ? s_min_f16 : s_arith[S_MIN][t];
    default:
        return t == S_F16 ? s_max_f16 : s_arith[S_MAX][t];
    }
}

static int s_infer_variadic(bs_graph_t *g, bs_node_t *n, int kind, bs_err_t *err)
{
    bs_tensor_t *first = NULL, *y = NULL;
    int rc;
    if (n->n_in < 1)
        return bs_node_err(err, n, BS_EMODEL, "expected at least 1 input, got 0");
    if ((rc = s_input(g, n, 0, &first, err)) || (rc = s_output(g, n, 0, &y, err)))
        return rc;
    if (!s_variadic_fn(kind, first->dtype))
        return bs_node_err(err, n, BS_EUNSUPPORTED, "input '%s' has type %s; %s expected",
                           first->name, bs_dtype_name(first->dtype),
                           kind <= S_V_MEAN ? "float32 or float64" : "a numeric type");
    bs_shape_t out = first->shape;
    for (int k = 1; k < n->n_in; k++) {
        bs_tensor_t *t = NULL;
        if ((rc = s_input(g, n, k, &t, err)))
            return rc;
        if (t->dtype != first->dtype)
            return bs_node_err(err, n, BS_EMODEL, "inputs '%s' (%s) and '%s' (%s) differ in type",
                               first->name, bs_dtype_name(first->dtype), t->name,
                               bs_dtype_name(t->dtype));
        char s1[128], s2[128];
        bs_shape_t next;
        if (bs_shape_broadcast(&out, &t->shape, &next) != 0)
            return bs_node_err(err, n, BS_EMODEL, "input '%s' %s does not broadcast with %s",
                               t->name, bs_shape_str(&t->shape, s1, sizeof s1),
                               bs_shape_str(&out, s2, sizeof s2));
        out = next;
    }
    bs_tensor_set(y, first->dtype, &out);
    return 0;
}

static int s_run_variadic(bs_graph_t *g, bs_node_t *n, int kind)
{
    const bs_tensor_t *a = bs_node_input(g, n, 0);
    bs_tensor_t *y = bs_node_output(g, n, 0);
    s_bin_fn fn = s_variadic_fn(kind, a->dtype);
    if (!fn)
        return BS_EUNSUPPORTED;
    if (n->n_in == 1) {
        if (y->data != a->data)
            memmove(y->data, a->data, y->nbytes);
    } else {
        const bs_tensor_t *b = bs_node_input(g, n, 1);
        s_binary(a->data, &a->shape, b->data, &b->shape, y->data, &y->shape, fn);
        for (int k = 2; k < n->n_in; k++) {
            const bs_tensor_t *c = bs_node_input(g, n, k);
            s_binary(y->data, &y->shape, c->data, &c->shape, y->data, &y->shape, fn);
        }
    }
    if (kind == S_V_MEAN) {
        int64_t m = bs_shape_numel(&y->shape);
        if (y->dtype == BS_DT_FLOAT) {
            float *p = y->data, cnt = (float)n->n_in;
            for (int64_t i = 0; i < m; i++)
                p[i] /= cnt;
        } else {
            double *p = y->data, cnt = (double)n->n_in;
            for (int64_t i = 0; i < m; i++)
                p[i] /= cnt;
        }
    }
    return 0;
}

#define S_VARIADIC_OP(ident, NAME, KIND)                                                          \
    static int s_infer_##ident(bs_graph_t *g, bs_node_t *n, bs_err_t *err)                        \
    {                                                                                             \
        return s_infer_variadic(g, n, KIND, err);                                                 \
    }                                                                                             \
    static int s_run_##ident(bs_graph_t *g, bs_node_t *n, bs_ctx_t *ctx)                          \
    {                                                                                             \
        (void)ctx;                                                                                \
        return s_run_variadic(g, n, KIND);                                                        \
    }                                                                                             \
    static const bs_op_t s_op_##ident = {                                                         \
        .op_type = NAME, .infer = s_infer_##ident, .run = s_run_##ident, .foldable = 1};

S_VARIADIC_OP(sum, "Sum", S_V_SUM)
S_VARIADIC_OP(mean, "Mean", S_V_MEAN)
S_VARIADIC_OP(min, "Min", S_V_MIN)
S_VARIADIC_OP(max, "Max", S_V_MAX)

/* ---- unary float ops ----------------------------------------------------------------------- */

static int s_infer_unary(bs_graph_t *g, bs_node_t *n, bs_err_t *err)
{
    bs_tensor_t *x = NULL, *y = NULL;
    int rc;
    if ((rc = s_count_inputs(n, 1, 1, err)) || (rc = s_input(g, n, 0, &x, err)) ||
        (rc = s_need_float(n, x, err)) || (rc = s_output(g, n, 0, &y, err)))
        return rc;
    bs_tensor_set(y, BS_DT_FLOAT, &x->shape);
    return 0;
}

static float s_softplus(float v)
{
    /* log(1 + e^v) without overflow for large v */
    return v > 0.0f ? v + log1pf(expf(-v)) : log1pf(expf(v));
}

/* Defines op NAME computing EXPR from v (the input element); PARAMS declares constants read
 * from the attributes (the node is `n`). */
#define S_UNARY_OP(ident, NAME, PARAMS, EXPR)                                                     \
    static int s_run_##ident(bs_graph_t *g, bs_node_t *n, bs_ctx_t *ctx)                          \
    {                                                                                             \
        (void)ctx;                                                                                \
        const bs_tensor_t *xt = bs_node_input(g, n, 0);                                           \
        bs_tensor_t *yt = bs_node_output(g, n, 0);                                                \
        const float *x = xt->data;                                                                \
        float *y = yt->data;                                                                      \
        int64_t cnt = bs_shape_numel(&yt->shape);                                                 \
        PARAMS;                                                                                   \
        for (int64_t i = 0; i < cnt; i++) {                                                       \
            float v = x[i];                                                                       \
            y[i] = (EXPR);                                                                        \
        }                                                                                         \
        return 0;                                                                                 \
    }                                                                                             \
    static const bs_op_t s_op_##ident = {                                                         \
        .op_type = NAME, .infer = s_infer_unary, .run = s_run_##ident, .foldable = 1};

#define S_NOPARAMS ((void)n)

/* clang-format reads "v * f(...)" in a macro argument as a declaration: keep it out */
/* clang-format off */
S_UNARY_OP(relu, "Relu", S_NOPARAMS, v < 0.0f ? 0.0f : v)
S_UNARY_OP(leakyrelu, "LeakyRelu", float alpha = bs_attr_float(n, "alpha", 0.01f),
           v < 0.0f ? v * alpha : v)
S_UNARY_OP(sigmoid, "Sigmoid", S_NOPARAMS, 1.0f / (1.0f + expf(-v)))
S_UNARY_OP(hardsigmoid, "HardSigmoid",
           float alpha = bs_attr_float(n, "alpha", 0.2f);
           float beta = bs_attr_float(n, "beta", 0.5f),
           fmaxf(0.0f, fminf(1.0f, alpha * v + beta)))
S_UNARY_OP(hardswish, "HardSwish", S_NOPARAMS,
           v * fmaxf(0.0f, fminf(1.0f, v * (1.0f / 6.0f) + 0.5f)))
S_UNARY_OP(tanh, "Tanh", S_NOPARAMS, tanhf(v))
S_UNARY_OP(sqrt, "Sqrt", S_NOPARAMS, sqrtf(v))
S_UNARY_OP(erf, "Erf", S_NOPARAMS, erff(v))
S_UNARY_OP(exp, "Exp", S_NOPARAMS, expf(v))
S_UNARY_OP(log, "Log", S_NOPARAMS, logf(v))
S_UNARY_OP(reciprocal, "Reciprocal", S_NOPARAMS, 1.0f / v)
S_UNARY_OP(floor, "Floor", S_NOPARAMS, floorf(v))
S_UNARY_OP(ceil, "Ceil", S_NOPARAMS, ceilf(v))
S_UNARY_OP(softplus, "Softplus", S_NOPARAMS, s_softplus(v))
S_UNARY_OP(elu, "Elu", float alpha = bs_attr_float(n, "alpha", 1.0f),
           v < 0.0f ? alpha * expm1f(v) : v)
S_UNARY_OP(selu, "Selu",
           float alpha = bs_attr_float(n, "alpha", 1.67326319217681884765625f);
           float gamma = bs_attr_float(n, "gamma", 1.05070102214813232421875f),
           v > 0.0f ? gamma * v : gamma * alpha * expm1f(v))
/* clang-format on */

/* ---- Neg and Abs: float32 and signed integers (exporters negate int64 axes) ----------------- */

static int s_neg_abs_type(int dtype, int is_abs)
{
    switch (dtype) {
    case BS_DT_FLOAT:
    case BS_DT_INT8:
    case BS_DT_INT16:
    case BS_DT_INT32:
    case BS_DT_INT64:
        return 1;
    case BS_DT_UINT8:
    case BS_DT_UINT16:
    case BS_DT_UINT32:
    case BS_DT_UINT64:
        return is_abs; /* |x| of an unsigned x is x; -x is not representable */
    default:
        return 0;
    }
}

static int s_infer_neg_abs(bs_graph_t *g, bs_node_t *n, int is_abs, bs_err_t *err)
{
    bs_tensor_t *x = NULL, *y = NULL;
    int rc;
    if ((rc = s_count_inputs(n, 1, 1, err)) || (rc = s_input(g, n, 0, &x, err)) ||
        (rc = s_output(g, n, 0, &y, err)))
        return rc;
    if (!s_neg_abs_type(x->dtype, is_abs))
        return bs_node_err(err, n, BS_EUNSUPPORTED,
                           "input '%s' has type %s; float32 or a %s "
                           "integer type expected",
                           x->name, bs_dtype_name(x->dtype), is_abs ? "n" : " signed");
    bs_tensor_set(y, x->dtype, &x->shape);
    return 0;
}

/* y = EXPR(v) over elements of type T (U: its unsigned counterpart, for wrapping negation). */
#define S_MAP(T, EXPR)                                                                            \
    do {                                                                                          \
        const T *xs = xt->data;                                                                   \
        T *ys = yt->data;                                                                         \
        for (int64_t i = 0; i < cnt; i++) {                                                       \
            T v = xs[i];                                                                          \
            ys[i] = (EXPR);                                                                       \
        }                                                                                         \
    } while (0)
#define S_INEG(T, U) ((T)((U)0 - (U)v))

static int s_run_neg_abs(bs_graph_t *g, bs_node_t *n, int is_abs)
{
    const bs_tensor_t *xt = bs_node_input(g, n, 0);
    bs_tensor_t *yt = bs_node_output(g, n, 0);
    int64_t cnt = bs_shape_numel(&yt->shape);
    switch (xt->dtype) {
    case BS_DT_FLOAT:
        if (is_abs)
            S_MAP(float, fabsf(v));
        else
            S_MAP(float, -v);
        return 0;
    case BS_DT_INT8:
        S_MAP(int8_t, is_abs && v >= 0 ? v : S_INEG(int8_t, uint32_t));
        return 0;
    case BS_DT_INT16:
        S_MAP(int16_t, is_abs && v >= 0 ? v : S_INEG(int16_t, uint32_t));
        return 0;
    case BS_DT_INT32:
        S_MAP(int32_t, is_abs && v >= 0 ? v : S_INEG(int32_t, uint32_t));
        return 0;
    case BS_DT_INT64:
        S_MAP(int64_t, is_abs && v >= 0 ? v : S_INEG(int64_t, uint64_t));
        return 0;
    default: /* unsigned Abs: a copy */
        if (yt->data != xt->data)
            memmove(yt->data, xt->data, yt->nbytes);
        return 0;
    }
}

static int s_infer_neg(bs_graph_t *g, bs_node_t *n, bs_err_t *err)
{
    return s_infer_neg_abs(g, n, 0, err);
}

static int s_infer_abs(bs_graph_t *g, bs_node_t *n, bs_err_t *err)
{
    return s_infer_neg_abs(g, n, 1, err);
}

static int s_run_neg(bs_graph_t *g, bs_node_t *n, bs_ctx_t *ctx)
{
    (void)ctx;
    return s_run_neg_abs(g, n, 0);
}

static int s_run_abs(bs_graph_t *g, bs_node_t *n, bs_ctx_t *ctx)
{
    (void)ctx;
    return s_run_neg_abs(g, n, 1);
}

static const bs_op_t s_op_neg = {
    .op_type = "Neg", .infer = s_infer_neg, .run = s_run_neg, .foldable = 1};
static const bs_op_t s_op_abs = {
    .op_type = "Abs", .infer = s_infer_abs, .run = s_run_abs, .foldable = 1};

/* ---- Clip ---------------------------------------------------------------------------------- */

/* Before opset 11 the bounds are float attributes (defaults: the float range); from 11 they
 * are optional scalar inputs of the input's type, possibly computed at run time. float32 and
 * the integer types of opset 12 (int8, uint8, int32, int64) are supported. */
static int s_infer_clip(bs_graph_t *g, bs_node_t *n, bs_err_t *err)
{
    bs_tensor_t *x = NULL, *y = NULL;
    int rc;
    if ((rc = s_count_inputs(n, 1, g->opset < 11 ? 1 : 3, err)) ||
        (rc = s_input(g, n, 0, &x, err)) || (rc = s_output(g, n, 0, &y, err)))
        return rc;
    int dt = x->dtype;
    if (g->opset < 11 ? dt != BS_DT_FLOAT
                      : (dt != BS_DT_FLOAT && dt != BS_DT_INT8 && dt != BS_DT_UINT8 &&
                         dt != BS_DT_INT32 && dt != BS_DT_INT64))
        return bs_node_err(err, n, BS_EUNSUPPORTED, "input '%s' has type %s; %s expected", x->name,
                           bs_dtype_name(dt),
                           g->opset < 11 ? "float32" : "float32, int8, uint8, int32 or int64");
    for (int k = 1; k < n->n_in; k++) {
        bs_tensor_t *t = bs_node_input(g, n, k);
        if (!t)
            continue; /* omitted */
        if ((rc = s_input(g, n, k, &t, err)))
            return rc;
        if (t->dtype != dt)
            return bs_node_err(err, n, BS_EMODEL,
                               "%s '%s' has type %s; %s (the input's) "
                               "expected",
                               k == 1 ? "min" : "max", t->name, bs_dtype_name(t->dtype),
                               bs_dtype_name(dt));
        if (bs_shape_numel(&t->shape) != 1) {
            char s[128];
            return bs_node_err(err, n, BS_EMODEL, "%s '%s' has shape %s; a scalar expected",
                               k == 1 ? "min" : "max", t->name,
                               bs_shape_str(&t->shape, s, sizeof s));
        }
    }
    bs_tensor_set(y, dt, &x->shape);
    return 0;
}

/* lo and hi default to T's range; min > max gives max everywhere, as ONNX specifies; NaN
 * stays NaN. */
#define S_CLIP(T, LO, HI)                                                                         \
    do {                                                                                          \
        T lo = (LO), hi = (HI);                                                                   \
        if (tl)                                                                                   \
            lo = *(const T *)tl->data;                                                            \
        if (th)                                                                                   \
            hi = *(const T *)th->data;                                                            \
        S_MAP(T, (v < lo ? lo : v) > hi ? hi : (v < lo ? lo : v));                                \
    } while (0)

static int s_run_clip(bs_graph_t *g, bs_node_t *n, bs_ctx_t *ctx)
{
    (void)ctx;
    const bs_tensor_t *xt = bs_node_input(g, n, 0);
    bs_tensor_t *yt = bs_node_output(g, n, 0);
    int64_t cnt = bs_shape_numel(&yt->shape);
    const bs_tensor_t *tl = NULL, *th = NULL;
    if (g->opset < 11) {
        float lo = bs_attr_float(n, "min", -FLT_MAX), hi = bs_attr_float(n, "max", FLT_MAX);
        S_MAP(float, (v < lo ? lo : v) > hi ? hi : (v < lo ? lo : v));
        return 0;
    }
    tl = bs_node_input(g, n, 1);
    th = bs_node_input(g, n, 2);
    switch (xt->dtype) {
    case BS_DT_FLOAT:
        S_CLIP(float, -INFINITY, INFINITY);
        return 0;
    case BS_DT_INT8:
        S_CLIP(int8_t, INT8_MIN, INT8_MAX);
        return 0;
    case BS_DT_UINT8:
        S_CLIP(uint8_t, 0, UINT8_MAX);
        return 0;
    case BS_DT_INT32:
        S_CLIP(int32_t, INT32_MIN, INT32_MAX);
        return 0;
    case BS_DT_INT64:
        S_CLIP(int64_t, INT64_MIN, INT64_MAX);
        return 0;
    default:
        return BS_EUNSUPPORTED;
    }
}

static const bs_op_t s_op_clip = {
    .op_type = "Clip", .infer = s_infer_clip, .run = s_run_clip, .foldable = 1};

/* ---- Dropout (inference) ------------------------------------------------------------------- */

/* Inference only: the output is the input and the optional mask is all true (bool from opset
 * 10, the input's type before). A training_mode input must be a constant false. */
static int s_infer_dropout(bs_graph_t *g, bs_node_t *n, bs_err_t *err)
{
    bs_tensor_t *x = NULL, *y = NULL;
    int rc;
    if ((rc = s_count_inputs(n, 1, g->opset < 12 ? 1 : 3, err)) ||
        (rc = s_input(g, n, 0, &x, err)) || (rc = s_need_float(n, x, err)) ||
        (rc = s_output(g, n, 0, &y, err)))
        return rc;
    bs_tensor_t *tm = n->n_in > 2 ? bs_node_input(g, n, 2) : NULL;
    if (tm) {
        int64_t v = 1;
        if (tm->kind != BS_TENSOR_CONST || bs_tensor_get_i64(tm, 0, &v) != 0 || v != 0)
            return bs_node_err(err, n, BS_EUNSUPPORTED,
                               "training_mode '%s' must be a constant false (inference only)",
                               tm->name);
    }
    if (n->n_out > 2)
        return bs_node_err(err, n, BS_EMODEL, "expected 1 or 2 outputs, got %d", n->n_out);
    bs_tensor_set(y, BS_DT_FLOAT, &x->shape);
    bs_tensor_t *mask = n->n_out > 1 ? bs_node_output(g, n, 1) : NULL;
    if (mask)
        bs_tensor_set(mask, g->opset >= 10 ? BS_DT_BOOL : BS_DT_FLOAT, &x->shape);
    return 0;
}

static int s_run_dropout(bs_graph_t *g, bs_node_t *n, bs_ctx_t *ctx)
{
    (void)ctx;
    const bs_tensor_t *x = bs_node_input(g, n, 0);
    bs_tensor_t *y = bs_node_output(g, n, 0);
    if (y->data != x->data)
        memmove(y->data, x->data, y->nbytes);
    bs_tensor_t *mask = n->n_out > 1 ? bs_node_output(g, n, 1) : NULL;
    if (mask && mask->data) {
        int64_t cnt = bs_shape_numel(&mask->shape);
        if (mask->dtype == BS_DT_BOOL) {
            memset(mask->data, 1, (size_t)cnt);
        } else {
            float *p = mask->data;
            for (int64_t i = 0; i < cnt; i++)
                p[i] = 1.0f;
        }
    }
    return 0;
}

/* Not registered: ONNX's test_training_dropout* tests (training mode, random masks drawn with
 * NumPy's generator) would count as supported and fail. Add &s_op_dropout to the table once the
 * conformance runner leaves training-mode tests out. */
__attribute__((unused)) static const bs_op_t s_op_dropout = {
    .op_type = "Dropout", .infer = s_infer_dropout, .run = s_run_dropout, .foldable = 1};

/* ---- the table ----------------------------------------------------------------------------- */

const bs_op_t *const bs_ops_elementwise[] = {
    &s_op_add,      &s_op_sub,         &s_op_mul,       &s_op_div,        &s_op_pow,
    &s_op_sqrt,     &s_op_erf,         &s_op_relu,      &s_op_leakyrelu,  &s_op_clip,
    &s_op_sigmoid,  &s_op_hardsigmoid, &s_op_hardswish, &s_op_tanh,       &s_op_neg,
    &s_op_abs,      &s_op_exp,         &s_op_log,       &s_op_reciprocal, &s_op_floor,
    &s_op_ceil,     &s_op_min,         &s_op_max,       &s_op_sum,        &s_op_mean,
    &s_op_softplus, &s_op_elu,         &s_op_selu,      &s_op_prelu,      NULL,
};

/*
 * test_shape_ops.c - the byte-moving operators of bs_ops_shape.c, one node at a time.
 *
 * Each test assembles a one-node bs_graph_t by hand (a fixture of tensors, one node and its
 * attributes, all borrowed from the test's stack), calls the op's infer() and run() directly,
 * and checks the output's type, shape and bytes, or the error message. This reaches what the
 * ONNX conformance suite does not: the errors for values known only at run time, dtypes other
 * than float, clamping corners, and the copying run() of the alias ops (which the graph never
 * calls, but constant folding does).
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "bs_alloc.h"
#include "bs_graph.h"
#include "bs_op.h"
#include "bs_test.h"

#define FX_T 8

typedef struct fx {
    bs_graph_t g;
    bs_tensor_t t[FX_T];
    bs_node_t n;
    int in[FX_T], out[FX_T];
    bs_attr_t attrs[4];
    bs_err_t err;
} fx_t;

static void fx_init(fx_t *f, const char *op, int64_t opset)
{
    memset(f, 0, sizeof *f);
    f->g.tensors = f->t;
    f->g.opset = opset;
    f->n.name = "node0";
    f->n.op_type = (char *)op;
    f->n.op = bs_op_find(op);
    f->n.in = f->in;
    f->n.out = f->out;
    f->n.attrs = f->attrs;
    ASSERT(f->n.op != NULL);
}

/* A tensor of the fixture; data is borrowed (never freed by the op). */
static int fx_tensor(fx_t *f, int kind, int dtype, int rank, const int64_t *dims, void *data)
{
    int i = f->g.n_tensors++;
    bs_tensor_t *t = &f->t[i];
    static char names[FX_T][8];
    snprintf(names[i], sizeof names[i], "t%d", i);
    t->name = names[i];
    t->kind = kind;
    t->data = data;
    t->arena_off = -1;
    t->producer = -1;
    t->alias_of = -1;
    bs_shape_t s = {.rank = rank};
    for (int k = 0; k < rank; k++)
        s.d[k] = dims[k];
    bs_tensor_set(t, dtype, &s);
    return i;
}

static void fx_in(fx_t *f, int kind, int dtype, int rank, const int64_t *dims, void *data)
{
    f->in[f->n.n_in++] = fx_tensor(f, kind, dtype, rank, dims, data);
}

static void fx_omit(fx_t *f)
{
    f->in[f->n.n_in++] = -1;
}

static void fx_outs(fx_t *f, int k)
{
    for (int i = 0; i < k; i++) {
        int idx = fx_tensor(f, BS_TENSOR_ACT, BS_DT_UNDEFINED, 0, NULL, NULL);
        f->t[idx].has_shape = 0;
        f->out[f->n.n_out++] = idx;
    }
}

static bs_attr_t *fx_attr(fx_t *f, const char *name, int type)
{
    bs_attr_t *a = &f->attrs[f->n.n_attrs++];
    a->name = (char *)name;
    a->type = type;
    return a;
}

static void fx_attr_int(fx_t *f, const char *name, int64_t v)
{
    fx_attr(f, name, BS_ATTR_INT)->i = v;
}

static void fx_attr_ints(fx_t *f, const char *name, int n, int64_t *v)
{
    bs_attr_t *a = fx_attr(f, name, BS_ATTR_INTS);
    a->n = n;
    a->ints = v;
}

static int fx_infer(fx_t *f)
{
    return f->n.op->infer(&f->g, &f->n, &f->err);
}

/* Allocates the outputs (the caller frees with fx_free) and runs the node. */
static int fx_run(fx_t *f)
{
    for (int k = 0; k < f->n.n_out; k++) {
        bs_tensor_t *t = &f->t[f->out[k]];
        t->data = bs_calloc(1, t->nbytes + 1);
        ASSERT(t->data != NULL);
    }
    bs_ctx_t ctx = {0};
    return f->n.op->run(&f->g, &f->n, &ctx);
}

static void fx_free(fx_t *f)
{
    for (int k = 0; k < f->n.n_out; k++) {
        bs_free(f->t[f->out[k]].data);
        f->t[f->out[k]].data = NULL;
    }
}

static bs_tensor_t *fx_out(fx_t *f, int k)
{
    return &f->t[f->out[k]];
}

static void assert_shape(const bs_tensor_t *t, int rank, const int64_t *dims)
{
    ASSERT_EQ(rank, t->shape.rank);
    for (int i = 0; i < rank; i++)
        ASSERT_EQ(dims[i], t->shape.d[i]);
}

/* ---- tests -------------------------------------------------------------------------------- */

BS_TEST(reshape_zero_and_minus_one)
{
    fx_t f;
    int64_t x[24], shape[] = {0, -1}, xd[] = {2, 3, 4}, sd[] = {2};
    for (int i = 0; i < 24; i++)
        x[i] = i * 1000000000000LL;
    fx_init(&f, "Reshape", 14);
    ASSERT_EQ(1, f.n.op->alias);
    fx_in(&f, BS_TENSOR_ACT, BS_DT_INT64, 3, xd, x);
    fx_in(&f, BS_TENSOR_CONST, BS_DT_INT64, 1, sd, shape);
    fx_outs(&f, 1);
    ASSERT_OK(fx_infer(&f));
    assert_shape(fx_out(&f, 0), 2, (int64_t[]){2, 12});
    ASSERT_EQ(BS_DT_INT64, fx_out(&f, 0)->dtype);
    ASSERT_OK(fx_run(&f)); /* the alias op's run copies, for folding */
    ASSERT(memcmp(fx_out(&f, 0)->data, x, sizeof x) == 0);
    fx_free(&f);

    /* allowzero: a 0 is a real zero, and with a -1 it is ambiguous */
    fx_init(&f, "Reshape", 14);
    fx_in(&f, BS_TENSOR_ACT, BS_DT_INT64, 3, xd, x);
    fx_in(&f, BS_TENSOR_CONST, BS_DT_INT64, 1, sd, shape);
    fx_attr_int(&f, "allowzero", 1);
    fx_outs(&f, 1);
    ASSERT_EQ(BS_EMODEL, fx_infer(&f));
    ASSERT_CONTAINS(f.err.msg, "allowzero");
}

BS_TEST(reshape_shape_computed_at_run_time_is_refused)
{
    fx_t f;
    float x[6] = {0};
    int64_t shape[] = {3, 2}, xd[] = {2, 3}, sd[] = {2};
    fx_init(&f, "Reshape", 13);
    fx_in(&f, BS_TENSOR_ACT, BS_DT_FLOAT, 2, xd, x);
    fx_in(&f, BS_TENSOR_ACT, BS_DT_INT64, 1, sd, shape);
    fx_outs(&f, 1);
    ASSERT_EQ(BS_EUNSUPPORTED, fx_infer(&f));
    ASSERT_CONTAINS(f.err.msg, "node 'node0' (Reshape)");
    ASSERT_CONTAINS(f.err.msg, "must be a constant known at load time");

    /* element counts that do not match name both shapes */
    int64_t bad[] = {4, 2};
    fx_init(&f, "Reshape", 13);
    fx_in(&f, BS_TENSOR_ACT, BS_DT_FLOAT, 2, xd, x);
    fx_in(&f, BS_TENSOR_CONST, BS_DT_INT64, 1, sd, bad);
    fx_outs(&f, 1);
    ASSERT_EQ(BS_EMODEL, fx_infer(&f));
    ASSERT_CONTAINS(f.err.msg, "cannot reshape [2,3] (6 elements) to [4,2]");
}

BS_TEST(transpose_moves_any_dtype)
{
    fx_t f;
    uint8_t x[24];
    int64_t xd[] = {2, 3, 4}, perm[] = {1, 2, 0};
    for (int i = 0; i < 24; i++)
        x[i] = (uint8_t)i;
    fx_init(&f, "Transpose", 13);
    fx_in(&f, BS_TENSOR_ACT, BS_DT_UINT8, 3, xd, x);
    fx_attr_ints(&f, "perm", 3, perm);
    fx_outs(&f, 1);
    ASSERT_OK(fx_infer(&f));
    assert_shape(fx_out(&f, 0), 3, (int64_t[]){3, 4, 2});
    ASSERT_OK(fx_run(&f));
    const uint8_t *y = fx_out(&f, 0)->data;
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 4; b++)
            for (int c = 0; c < 2; c++)
                ASSERT_EQ(x[c * 12 + a * 4 + b], y[(a * 4 + b) * 2 + c]);
    fx_free(&f);

    /* default perm reverses the axes; int64 */
    int64_t z[6] = {1, 2, 3, 4, 5, 6}, zd[] = {2, 3};
    fx_init(&f, "Transpose", 13);
    fx_in(&f, BS_TENSOR_ACT, BS_DT_INT64, 2, zd, z);
    fx_outs(&f, 1);
    ASSERT_OK(fx_infer(&f));
    ASSERT_OK(fx_run(&f));
    const int64_t *w = fx_out(&f, 0)->data;
    int64_t want[] = {1, 4, 2, 5, 3, 6};
    for (int i = 0; i < 6; i++)
        ASSERT_EQ(want[i], w[i]);
    fx_free(&f);

    int64_t dup[] = {0, 0, 1};
    fx_init(&f, "Transpose", 13);
    fx_in(&f, BS_TENSOR_ACT, BS_DT_UINT8, 3, xd, x);
    fx_attr_ints(&f, "perm", 3, dup);
    fx_outs(&f, 1);
    ASSERT_EQ(BS_EMODEL, fx_infer(&f));
    ASSERT_CONTAINS(f.err.msg, "not a permutation");
}

BS_TEST(slice_negative_steps_and_clamping)
{
    fx_t f;
    int32_t x[10];
    int64_t xd[] = {10}, one[] = {1}, st[] = {20}, en[] = {-100}, ax[] = {0}, sp[] = {-3};
    for (int i = 0; i < 10; i++)
        x[i] = i;
    fx_init(&f, "Slice", 13);
    fx_in(&f, BS_TENSOR_ACT, BS_DT_INT32, 1, xd, x);
    fx_in(&f, BS_TENSOR_CONST, BS_DT_INT64, 1, one, st);
    fx_in(&f, BS_TENSOR_CONST, BS_DT_INT64, 1, one, en);
    fx_in(&f, BS_TENSOR_CONST, BS_DT_INT64, 1, one, ax);
    fx_in(&f, BS_TENSOR_CONST, BS_DT_INT64, 1, one, sp);
    fx_outs(&f, 1);
    ASSERT_OK(fx_infer(&f));
    assert_shape(fx_out(&f, 0), 1, (int64_t[]){4});
    ASSERT_OK(fx_run(&f));
    const int32_t *y = fx_out(&f, 0)->data;
    ASSERT_EQ(9, y[0]);
    ASSERT_EQ(6, y[1]);
    ASSERT_EQ(3, y[2]);
    ASSERT_EQ(0, y[3]);
    fx_free(&f);

    /* a step of 0 is an error naming the axis */
    int64_t zero[] = {0};
    fx_init(&f, "Slice", 13);
    fx_in(&f, BS_TENSOR_ACT, BS_DT_INT32, 1, xd, x);
    fx_in(&f, BS_TENSOR_CONST, BS_DT_INT64, 1, one, st);
    fx_in(&f, BS_TENSOR_CONST, BS_DT_INT64, 1, one, en);
    fx_omit(&f);
    fx_in(&f, BS_TENSOR_CONST, BS_DT_INT64, 1, one, zero);
    fx_outs(&f, 1);
    ASSERT_EQ(BS_EMODEL, fx_infer(&f));
    ASSERT_CONTAINS(f.err.msg, "step of axis 0 is 0");
}

BS_TEST(slice_opset1_attributes)
{
    fx_t f;
    float x[12];
    int64_t xd[] = {3, 4}, st[] = {1, -3}, en[] = {INT64_MAX, -1};
    for (int i = 0; i < 12; i++)
        x[i] = (float)i;
    fx_init(&f, "Slice", 9);
    fx_in(&f, BS_TENSOR_ACT, BS_DT_FLOAT, 2, xd, x);
    fx_attr_ints(&f, "starts", 2, st);
    fx_attr_ints(&f, "ends", 2, en);
    fx_outs(&f, 1);
    ASSERT_OK(fx_infer(&f));
    assert_shape(fx_out(&f, 0), 2, (int64_t[]){2, 2});
    ASSERT_OK(fx_run(&f));
    const float *y = fx_out(&f, 0)->data;
    ASSERT_EQ(5, (int)y[0]);
    ASSERT_EQ(6, (int)y[1]);
    ASSERT_EQ(9, (int)y[2]);
    ASSERT_EQ(10, (int)y[3]);
    fx_free(&f);
}

BS_TEST(split_attribute_and_input)
{
    fx_t f;
    int16_t x[12];
    int64_t xd[] = {2, 6}, sizes[] = {1, 5}, sd[] = {2};
    for (int i = 0; i < 12; i++)
        x[i] = (int16_t)i;
    /* opset 11: attribute */
    fx_init(&f, "Split", 11);
    fx_in(&f, BS_TENSOR_ACT, BS_DT_INT16, 2, xd, x);
    fx_attr_int(&f, "axis", -1);
    fx_attr_ints(&f, "split", 2, sizes);
    fx_outs(&f, 2);
    ASSERT_OK(fx_infer(&f));
    assert_shape(fx_out(&f, 0), 2, (int64_t[]){2, 1});
    assert_shape(fx_out(&f, 1), 2, (int64_t[]){2, 5});
    ASSERT_OK(fx_run(&f));
    const int16_t *a = fx_out(&f, 0)->data, *b = fx_out(&f, 1)->data;
    ASSERT_EQ(0, a[0]);
    ASSERT_EQ(6, a[1]);
    ASSERT_EQ(1, b[0]);
    ASSERT_EQ(11, b[9]);
    fx_free(&f);

    /* opset 13: input; sizes that do not add up are named */
    int64_t wrong[] = {2, 5};
    fx_init(&f, "Split", 13);
    fx_in(&f, BS_TENSOR_ACT, BS_DT_INT16, 2, xd, x);
    fx_in(&f, BS_TENSOR_CONST, BS_DT_INT64, 1, sd, wrong);
    fx_attr_int(&f, "axis", 1);
    fx_outs(&f, 2);
    ASSERT_EQ(BS_EMODEL, fx_infer(&f));
    ASSERT_CONTAINS(f.err.msg, "add up to 7, but axis 1 has 6");

    /* no sizes: equal parts must divide */
    fx_init(&f, "Split", 13);
    fx_in(&f, BS_TENSOR_ACT, BS_DT_INT16, 2, xd, x);
    fx_attr_int(&f, "axis", 1);
    fx_outs(&f, 4);
    ASSERT_EQ(BS_EMODEL, fx_infer(&f));
    ASSERT_CONTAINS(f.err.msg, "does not split into 4 equal parts");
}

BS_TEST(squeeze_unsqueeze_axes)
{
    fx_t f;
    float x[3] = {1, 2, 3};
    int64_t xd[] = {1, 3, 1}, ax[] = {1}, one[] = {1};
    fx_init(&f, "Squeeze", 13);
    fx_in(&f, BS_TENSOR_ACT, BS_DT_FLOAT, 3, xd, x);
    fx_in(&f, BS_TENSOR_CONST, BS_DT_INT64, 1, one, ax);
    fx_outs(&f, 1);
    ASSERT_EQ(BS_EMODEL, fx_infer(&f));
    ASSERT_CONTAINS(f.err.msg, "cannot squeeze axis 1 of size 3");

    fx_init(&f, "Squeeze", 11); /* no axes: every 1 goes */
    fx_in(&f, BS_TENSOR_ACT, BS_DT_FLOAT, 3, xd, x);
    fx_outs(&f, 1);
    ASSERT_OK(fx_infer(&f));
    assert_shape(fx_out(&f, 0), 1, (int64_t[]){3});

    int64_t uax[] = {-1, 0};
    fx_init(&f, "Unsqueeze", 11);
    fx_in(&f, BS_TENSOR_ACT, BS_DT_FLOAT, 3, xd, x);
    fx_attr_ints(&f, "axes", 2, uax);
    fx_outs(&f, 1);
    ASSERT_OK(fx_infer(&f));
    assert_shape(fx_out(&f, 0), 5, (int64_t[]){1, 1, 3, 1, 1});

    int64_t many[] = {0, 1, 2, 3, 4, 5};
    fx_init(&f, "Unsqueeze", 11);
    fx_in(&f, BS_TENSOR_ACT, BS_DT_FLOAT, 3, xd, x);
    fx_attr_ints(&f, "axes", 6, many);
    fx_outs(&f, 1);
    ASSERT_EQ(BS_EUNSUPPORTED, fx_infer(&f));
    ASSERT_CONTAINS(f.err.msg, "output rank 9 exceeds the maximum 8");
}

BS_TEST(gather_int32_negative_indices)
{
    fx_t f;
    int64_t x[6] = {10, 11, 12, 20, 21, 22}, xd[] = {2, 3}, id[] = {2};
    int32_t ind[] = {-1, 0};
    fx_init(&f, "Gather", 13);
    fx_in(&f, BS_TENSOR_ACT, BS_DT_INT64, 2, xd, x);
    fx_in(&f, BS_TENSOR_ACT, BS_DT_INT32, 1, id, ind);
    fx_attr_int(&f, "axis", 1);
    fx_outs(&f, 1);
    ASSERT_OK(fx_infer(&f));
    assert_shape(fx_out(&f, 0), 2, (int64_t[]){2, 2});
    ASSERT_OK(fx_run(&f));
    const int64_t *y = fx_out(&f, 0)->data;
    ASSERT_EQ(12, y[0]);
    ASSERT_EQ(10, y[1]);
    ASSERT_EQ(22, y[2]);
    ASSERT_EQ(20, y[3]);
    /* run-time indices out of range: an error code, no read out of bounds */
    ind[0] = 3;
    ASSERT_EQ(BS_EINVAL, f.n.op->run(&f.g, &f.n, &(bs_ctx_t){0}));
    fx_free(&f);

    /* const indices are checked at load */
    fx_init(&f, "Gather", 13);
    fx_in(&f, BS_TENSOR_ACT, BS_DT_INT64, 2, xd, x);
    fx_in(&f, BS_TENSOR_CONST, BS_DT_INT32, 1, id, ind);
    fx_outs(&f, 1);
    ASSERT_EQ(BS_EMODEL, fx_infer(&f));
    ASSERT_CONTAINS(f.err.msg, "index 3 is out of range for axis 0 of size 2");
}

BS_TEST(cast_between_types)
{
    fx_t f;
    float x[5] = {-1.5f, 2.75f, NAN, 0.0f, 65504.0f};
    int64_t xd[] = {5};
    fx_init(&f, "Cast", 13);
    fx_in(&f, BS_TENSOR_ACT, BS_DT_FLOAT, 1, xd, x);
    fx_attr_int(&f, "to", BS_DT_INT32);
    fx_outs(&f, 1);
    ASSERT_OK(fx_infer(&f));
    ASSERT_EQ(BS_DT_INT32, fx_out(&f, 0)->dtype);
    ASSERT_OK(fx_run(&f));
    const int32_t *i32 = fx_out(&f, 0)->data;
    ASSERT_EQ(-1, i32[0]);
    ASSERT_EQ(2, i32[1]);
    ASSERT_EQ(0, i32[2]); /* NaN: defined here as 0 */
    ASSERT_EQ(65504, i32[4]);
    fx_free(&f);

    fx_init(&f, "Cast", 13);
    fx_in(&f, BS_TENSOR_ACT, BS_DT_FLOAT, 1, xd, x);
    fx_attr_int(&f, "to", BS_DT_BOOL);
    fx_outs(&f, 1);
    ASSERT_OK(fx_infer(&f));
    ASSERT_OK(fx_run(&f));
    const uint8_t *b = fx_out(&f, 0)->data;
    ASSERT_EQ(1, b[0]);
    ASSERT_EQ(1, b[2]);
    ASSERT_EQ(0, b[3]);
    fx_free(&f);

    /* int64 -> float16 -> back through float */
    int64_t big[2] = {-3, 2049};
    int64_t bd[] = {2};
    fx_init(&f, "Cast", 13);
    fx_in(&f, BS_TENSOR_ACT, BS_DT_INT64, 1, bd, big);
    fx_attr_int(&f, "to", BS_DT_FLOAT16);
    fx_outs(&f, 1);
    ASSERT_OK(fx_infer(&f));
    ASSERT_OK(fx_run(&f));
    const uint16_t *h = fx_out(&f, 0)->data;
    ASSERT_DBL_NEAR(-3.0, bs_f16_to_f32(h[0]), 0);
    ASSERT_DBL_NEAR(2048.0, bs_f16_to_f32(h[1]), 0); /* 2049 rounds to even */
    fx_free(&f);

    fx_init(&f, "Cast", 13);
    fx_in(&f, BS_TENSOR_ACT, BS_DT_FLOAT, 1, xd, x);
    fx_attr_int(&f, "to", BS_DT_STRING);
    fx_outs(&f, 1);
    ASSERT_EQ(BS_EUNSUPPORTED, fx_infer(&f));
    ASSERT_CONTAINS(f.err.msg, "cannot cast to type");
}

BS_TEST(constant_value_ints_and_float)
{
    fx_t f;
    int64_t v[] = {7, -8, 9};
    fx_init(&f, "Constant", 13);
    fx_attr_ints(&f, "value_ints", 3, v);
    fx_outs(&f, 1);
    ASSERT_OK(fx_infer(&f));
    ASSERT_EQ(BS_DT_INT64, fx_out(&f, 0)->dtype);
    assert_shape(fx_out(&f, 0), 1, (int64_t[]){3});
    ASSERT_OK(fx_run(&f));
    ASSERT(memcmp(fx_out(&f, 0)->data, v, sizeof v) == 0);
    fx_free(&f);

    fx_init(&f, "Constant", 13);
    fx_attr(&f, "value_float", BS_ATTR_FLOAT)->f = 2.5f;
    fx_outs(&f, 1);
    ASSERT_OK(fx_infer(&f));
    ASSERT_EQ(0, fx_out(&f, 0)->shape.rank);
    ASSERT_OK(fx_run(&f));
    ASSERT_DBL_NEAR(2.5, *(float *)fx_out(&f, 0)->data, 0);
    fx_free(&f);

    fx_init(&f, "Constant", 13);
    fx_attr(&f, "value_string", BS_ATTR_STRING)->s = "x";
    fx_outs(&f, 1);
    ASSERT_EQ(BS_EUNSUPPORTED, fx_infer(&f));
    ASSERT_CONTAINS(f.err.msg, "value_string");
}

BS_TEST(pad_crop_reflect_edge)
{
    fx_t f;
    int32_t x[4] = {1, 2, 3, 4};
    int64_t xd[] = {4}, pd[] = {2}, pads[] = {2, -1};
    fx_init(&f, "Pad", 13);
    fx_in(&f, BS_TENSOR_ACT, BS_DT_INT32, 1, xd, x);
    fx_in(&f, BS_TENSOR_CONST, BS_DT_INT64, 1, pd, pads);
    fx_attr(&f, "mode", BS_ATTR_STRING)->s = "reflect";
    fx_outs(&f, 1);
    ASSERT_OK(fx_infer(&f));
    assert_shape(fx_out(&f, 0), 1, (int64_t[]){5});
    ASSERT_OK(fx_run(&f));
    const int32_t *y = fx_out(&f, 0)->data;
    int32_t want[] = {3, 2, 1, 2, 3};
    for (int i = 0; i < 5; i++)
        ASSERT_EQ(want[i], y[i]);
    fx_free(&f);

    int64_t pads2[] = {1, 2};
    int32_t cv = -7;
    int64_t none[1] = {0};
    fx_init(&f, "Pad", 13);
    fx_in(&f, BS_TENSOR_ACT, BS_DT_INT32, 1, xd, x);
    fx_in(&f, BS_TENSOR_CONST, BS_DT_INT64, 1, pd, pads2);
    fx_in(&f, BS_TENSOR_ACT, BS_DT_INT32, 0, none, &cv); /* run-time constant_value is fine */
    fx_outs(&f, 1);
    ASSERT_OK(fx_infer(&f));
    ASSERT_OK(fx_run(&f));
    y = fx_out(&f, 0)->data;
    int32_t want2[] = {-7, 1, 2, 3, 4, -7, -7};
    for (int i = 0; i < 7; i++)
        ASSERT_EQ(want2[i], y[i]);
    fx_free(&f);

    fx_init(&f, "Pad", 13);
    fx_in(&f, BS_TENSOR_ACT, BS_DT_INT32, 1, xd, x);
    fx_in(&f, BS_TENSOR_CONST, BS_DT_INT64, 1, pd, pads2);
    fx_attr(&f, "mode", BS_ATTR_STRING)->s = "wrap";
    fx_outs(&f, 1);
    ASSERT_EQ(BS_EUNSUPPORTED, fx_infer(&f));
    ASSERT_CONTAINS(f.err.msg, "mode 'wrap'");
}

BS_TEST(expand_tile_where)
{
    fx_t f;
    uint16_t x[3] = {1, 2, 3};
    int64_t xd[] = {3, 1}, sd[] = {2}, shape[] = {2, 3, 2};
    int64_t s3[] = {3};
    fx_init(&f, "Expand", 13);
    fx_in(&f, BS_TENSOR_ACT, BS_DT_UINT16, 2, xd, x);
    fx_in(&f, BS_TENSOR_CONST, BS_DT_INT64, 1, s3, shape);
    fx_outs(&f, 1);
    ASSERT_OK(fx_infer(&f));
    assert_shape(fx_out(&f, 0), 3, (int64_t[]){2, 3, 2});
    ASSERT_OK(fx_run(&f));
    const uint16_t *y = fx_out(&f, 0)->data;
    for (int i = 0; i < 12; i++)
        ASSERT_EQ(x[(i / 2) % 3], y[i]);
    fx_free(&f);

    int64_t reps[] = {2, 2};
    fx_init(&f, "Tile", 13);
    fx_in(&f, BS_TENSOR_ACT, BS_DT_UINT16, 2, xd, x);
    fx_in(&f, BS_TENSOR_CONST, BS_DT_INT64, 1, sd, reps);
    fx_outs(&f, 1);
    ASSERT_OK(fx_infer(&f));
    assert_shape(fx_out(&f, 0), 2, (int64_t[]){6, 2});
    ASSERT_OK(fx_run(&f));
    y = fx_out(&f, 0)->data;
    for (int i = 0; i < 12; i++)
        ASSERT_EQ(x[(i / 2) % 3], y[i]);
    fx_free(&f);

    uint8_t c[2] = {1, 0};
    int64_t a[3] = {1, 2, 3}, b = -1, cd[] = {2, 1}, ad[] = {3}, none[1] = {0};
    fx_init(&f, "Where", 16);
    fx_in(&f, BS_TENSOR_ACT, BS_DT_BOOL, 2, cd, c);
    fx_in(&f, BS_TENSOR_ACT, BS_DT_INT64, 1, ad, a);
    fx_in(&f, BS_TENSOR_ACT, BS_DT_INT64, 0, none, &b);
    fx_outs(&f, 1);
    ASSERT_OK(fx_infer(&f));
    assert_shape(fx_out(&f, 0), 2, (int64_t[]){2, 3});
    ASSERT_OK(fx_run(&f));
    const int64_t *w = fx_out(&f, 0)->data;
    int64_t want[] = {1, 2, 3, -1, -1, -1};
    for (int i = 0; i < 6; i++)
        ASSERT_EQ(want[i], w[i]);
    fx_free(&f);
}

BS_TEST(identity_copies_and_every_op_folds)
{
    fx_t f;
    double x[2] = {1.25, -2.5};
    int64_t xd[] = {2};
    fx_init(&f, "Identity", 13);
    fx_in(&f, BS_TENSOR_ACT, BS_DT_DOUBLE, 1, xd, x);
    fx_outs(&f, 1);
    ASSERT_OK(fx_infer(&f));
    ASSERT_OK(fx_run(&f));
    ASSERT(memcmp(fx_out(&f, 0)->data, x, sizeof x) == 0);
    fx_free(&f);

    for (const bs_op_t *const *op = bs_ops_shape; *op; op++) {
        ASSERT_EQ(1, (*op)->foldable);
        ASSERT((*op)->run != NULL && (*op)->infer != NULL);
        ASSERT(bs_op_find((*op)->op_type) == *op);
    }
    const char *aliases[] = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity"};
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        ASSERT_EQ(1, bs_op_find(aliases[i])->alias);
    ASSERT_EQ(0, bs_op_find("Transpose")->alias);
}

BS_TEST(range_and_constant_of_shape)
{
    fx_t f;
    int32_t s = 10, l = 4, d = -3;
    int64_t none[1] = {0};
    fx_init(&f, "Range", 11);
    fx_in(&f, BS_TENSOR_CONST, BS_DT_INT32, 0, none, &s);
    fx_in(&f, BS_TENSOR_CONST, BS_DT_INT32, 0, none, &l);
    fx_in(&f, BS_TENSOR_CONST, BS_DT_INT32, 0, none, &d);
    fx_outs(&f, 1);
    ASSERT_OK(fx_infer(&f));
    assert_shape(fx_out(&f, 0), 1, (int64_t[]){2});
    ASSERT_OK(fx_run(&f));
    ASSERT_EQ(10, ((int32_t *)fx_out(&f, 0)->data)[0]);
    ASSERT_EQ(7, ((int32_t *)fx_out(&f, 0)->data)[1]);
    fx_free(&f);

    int64_t shape[] = {2, 3}, sd[] = {2}, one[] = {1};
    int8_t val = -5;
    bs_tensor_t vt = {.dtype = BS_DT_INT8, .has_shape = 1, .kind = BS_TENSOR_CONST,
                      .data = &val, .nbytes = 1, .shape = {.rank = 1, .d = {1}}};
    (void)one;
    fx_init(&f, "ConstantOfShape", 11);
    fx_in(&f, BS_TENSOR_CONST, BS_DT_INT64, 1, sd, shape);
    fx_attr(&f, "value", BS_ATTR_TENSOR)->t = &vt;
    fx_outs(&f, 1);
    ASSERT_OK(fx_infer(&f));
    ASSERT_EQ(BS_DT_INT8, fx_out(&f, 0)->dtype);
    ASSERT_OK(fx_run(&f));
    for (int i = 0; i < 6; i++)
        ASSERT_EQ(-5, ((int8_t *)fx_out(&f, 0)->data)[i]);
    fx_free(&f);

    /* a hostile shape is refused, not allocated */
    int64_t huge[] = {1LL << 40, 1LL << 40};
    fx_init(&f, "ConstantOfShape", 11);
    fx_in(&f, BS_TENSOR_CONST, BS_DT_INT64, 1, sd, huge);
    fx_outs(&f, 1);
    ASSERT_EQ(BS_EMODEL, fx_infer(&f));
    ASSERT_CONTAINS(f.err.msg, "too large");
}

#define TESTS(X)                                                                                 \
    X(reshape_zero_and_minus_one)                                                                \
    X(reshape_shape_computed_at_run_time_is_refused)                                             \
    X(transpose_moves_any_dtype)                                                                 \
    X(slice_negative_steps_and_clamping)                                                         \
    X(slice_opset1_attributes)                                                                   \
    X(split_attribute_and_input)                                                                 \
    X(squeeze_unsqueeze_axes)                                                                    \
    X(gather_int32_negative_indices)                                                             \
    X(cast_between_types)                                                                        \
    X(constant_value_ints_and_float)                                                             \
    X(pad_crop_reflect_edge)                                                                     \
    X(expand_tile_where)                                                                         \
    X(identity_copies_and_every_op_folds)                                                        \
    X(range_and_constant_of_shape)
BS_TEST_MAIN(TESTS)

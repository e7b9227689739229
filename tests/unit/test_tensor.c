/*
 * test_tensor.c - the engine's tensor helpers and graph loader: broadcasting, strides, half
 * floats, TensorProto files, refusal of bad or unsupported models with the node named, and on
 * the bundled model: BatchNormalization and Relu fused away, activation memory reused, and the
 * same logits fused and unfused.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bs_alloc.h"
#include "bs_graph.h"
#include "bs_test.h"
#include "bs_util.h"
#include "onnx.pb-c.h"

#define NODE_DIR "/usr/share/libonnx-testdata/data/node"

BS_TEST(broadcast)
{
    bs_shape_t a = {.rank = 3, .d = {2, 1, 4}}, b = {.rank = 2, .d = {3, 1}}, out;
    ASSERT_OK(bs_shape_broadcast(&a, &b, &out));
    ASSERT_EQ(3, out.rank);
    ASSERT_EQ(2, out.d[0]);
    ASSERT_EQ(3, out.d[1]);
    ASSERT_EQ(4, out.d[2]);
    int64_t st[BS_MAX_RANK];
    bs_shape_bcast_strides(&b, &out, st);
    ASSERT_EQ(0, st[0]);
    ASSERT_EQ(1, st[1]);
    ASSERT_EQ(0, st[2]);
    bs_shape_t c = {.rank = 1, .d = {5}};
    ASSERT_EQ(BS_EINVAL, bs_shape_broadcast(&a, &c, &out));
    char buf[64];
    ASSERT_STR_EQ("[2,1,4]", bs_shape_str(&a, buf, sizeof buf));
    bs_shape_t scalar = {0};
    ASSERT_EQ(1, bs_shape_numel(&scalar));
}

BS_TEST(half_floats)
{
    float vals[] = {0.0f, -0.0f, 1.0f, -2.5f, 65504.0f, 6.1035156e-05f, 5.96e-08f, 1e-3f};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        float back = bs_f16_to_f32(bs_f32_to_f16(vals[i]));
        ASSERT_DBL_NEAR(vals[i], back, fabsf(vals[i]) * 1e-3 + 1e-7);
    }
    ASSERT(isinf(bs_f16_to_f32(bs_f32_to_f16(1e6f))));
    ASSERT(isnan(bs_f16_to_f32(bs_f32_to_f16(NAN))));
    ASSERT_EQ(0x3c00, bs_f32_to_f16(1.0f));
    ASSERT_EQ(0x3c00, bs_f32_to_f16(1.0f + 1.0f / 4096)); /* ties to even */
}

BS_TEST(tensor_pb)
{
    bs_tensor_t t;
    bs_err_t e;
    int rc = bs_tensor_load_pb(NODE_DIR "/test_abs/test_data_set_0/input_0.pb", &t, &e);
    if (rc)
        fprintf(stderr, "%s\n", e.msg);
    ASSERT_OK(rc);
    ASSERT_EQ(BS_DT_FLOAT, t.dtype);
    ASSERT_EQ(3, t.shape.rank);
    ASSERT_EQ(60 * 4, t.nbytes);
    float v;
    ASSERT_OK(bs_tensor_get_f32(&t, 59, &v));
    ASSERT_EQ(BS_EINVAL, bs_tensor_get_f32(&t, 60, &v));
    bs_tensor_clear(&t);
    ASSERT_EQ(BS_ENOENT, bs_tensor_load_pb("/nonexistent.pb", &t, &e));
    char path[512];
    snprintf(path, sizeof path, "%s/bad.pb", bs_test_tmpdir());
    ASSERT_OK(bs_write_file(path, "\x08\x02\x08\x03\x10\x01\x4a\x04xxxx", 12, &e));
    ASSERT_EQ(BS_EMODEL, bs_tensor_load_pb(path, &t, &e)); /* 2x3 floats, 4 bytes */
    ASSERT_CONTAINS(e.msg, "bad.pb");
}

BS_TEST(unsupported_and_corrupt)
{
    bs_graph_t *g;
    bs_err_t e;
    ASSERT_EQ(BS_EUNSUPPORTED, bs_graph_load(NODE_DIR "/test_det_2d/model.onnx", NULL, &g, &e));
    ASSERT_CONTAINS(e.msg, "Det");
    ASSERT_CONTAINS(e.msg, "not supported");
    char *buf;
    size_t len;
    ASSERT_OK(bs_read_file(BS_SRC_DIR "/models/fmnist-cnn.onnx", 1 << 24, &buf, &len, &e));
    for (size_t cut = 1; cut < len; cut += len / 37 + 1) {
        int rc = bs_graph_load_buffer(buf, cut, ".", NULL, &g, &e);
        ASSERT(rc != 0);
        ASSERT(g == NULL);
    }
    bs_free(buf);
    ASSERT_EQ(BS_ENOENT, bs_graph_load("/nonexistent.onnx", NULL, &g, &e));
}

static void s_run_model(int no_fuse, float *logits, bs_graph_t **keep)
{
    bs_graph_opts_t o = {.threads = 1, .free_dim = 1, .no_fuse = no_fuse};
    bs_graph_t *g;
    bs_err_t e;
    int rc = bs_graph_load(BS_SRC_DIR "/models/fmnist-cnn.onnx", &o, &g, &e);
    if (rc)
        fprintf(stderr, "%s\n", e.msg);
    ASSERT_OK(rc);
    ASSERT_EQ(1, g->n_inputs);
    const bs_tensor_t *in = bs_graph_input(g, 0);
    ASSERT_EQ(4, in->shape.rank);
    float x[28 * 28];
    for (int i = 0; i < 28 * 28; i++)
        x[i] = (float)((i * 37) % 255) / 255.0f - 0.3f;
    ASSERT_EQ(BS_EINVAL, bs_graph_set_input(g, 0, BS_DT_FLOAT, x, 10, &e));
    ASSERT_CONTAINS(e.msg, "[1,1,28,28]");
    ASSERT_OK(bs_graph_set_input(g, 0, BS_DT_FLOAT, x, sizeof x, &e));
    ASSERT_OK(bs_graph_run(g, &e));
    const bs_tensor_t *out = bs_graph_output(g, 0);
    ASSERT_EQ(10, bs_shape_numel(&out->shape));
    memcpy(logits, out->data, 10 * sizeof(float));
    /* Inputs set once serve any number of runs (warm-up, timing): the planner must not hand
     * their bytes to an activation. */
    for (int r = 0; r < 3; r++) {
        ASSERT_OK(bs_graph_run(g, &e));
        ASSERT(memcmp(logits, bs_graph_output(g, 0)->data, 10 * sizeof(float)) == 0);
    }
    *keep = g;
}

BS_TEST(bundled_model_fused)
{
    float a[10], b[10];
    bs_graph_t *fused, *plain;
    s_run_model(0, a, &fused);
    s_run_model(1, b, &plain);
    for (int i = 0; i < 10; i++)
        ASSERT_DBL_NEAR(b[i], a[i], 1e-4 + 1e-4 * fabsf(b[i]));
    int live_fused = 0, live_plain = 0, bn = 0, act = 0;
    for (int i = 0; i < fused->n_nodes; i++) {
        live_fused += !fused->nodes[i].dead;
        bn += !fused->nodes[i].dead && !strcmp(fused->nodes[i].op_type, "BatchNormalization");
        act += !fused->nodes[i].dead && fused->nodes[i].act == BS_ACT_RELU;
    }
    for (int i = 0; i < plain->n_nodes; i++)
        live_plain += !plain->nodes[i].dead;
    ASSERT_EQ(0, bn);
    ASSERT(act >= 3); /* conv1, conv2 and fc1 carry their Relu */
    ASSERT(live_fused < live_plain);
    /* The arena reuses memory: smaller than every activation side by side. */
    size_t sum = 0;
    for (int t = 0; t < plain->n_tensors; t++)
        if (plain->tensors[t].kind != BS_TENSOR_CONST && plain->tensors[t].alias_of < 0)
            sum += plain->tensors[t].nbytes;
    ASSERT(plain->arena_bytes < sum);
    /* Weights: about 105k float parameters, BN folded away in the fused graph. */
    ASSERT(fused->weight_bytes > 400000 && fused->weight_bytes < 440000);
    bs_graph_free(&fused);
    bs_graph_free(&plain);
    ASSERT(fused == NULL);
}

/* Writes a one-node model Y = Gemm(X[1,3], W[2,3]^T) whose W lives in an external data file
 * "w.bin" (at byte offset 8) next to the model. */
static void s_write_external_model(const char *dir, const char *location, int64_t length)
{
    char path[512];
    float w[6] = {1, 2, 3, 4, 5, 6};
    unsigned char file[8 + sizeof w] = {0};
    memcpy(file + 8, w, sizeof w);
    bs_err_t e;
    snprintf(path, sizeof path, "%s/w.bin", dir);
    ASSERT_OK(bs_write_file(path, file, sizeof file, &e));

    char off_s[] = "8", len_s[32];
    snprintf(len_s, sizeof len_s, "%lld", (long long)length);
    Onnx__StringStringEntryProto loc = ONNX__STRING_STRING_ENTRY_PROTO__INIT,
                                 off = ONNX__STRING_STRING_ENTRY_PROTO__INIT,
                                 len = ONNX__STRING_STRING_ENTRY_PROTO__INIT;
    loc.key = "location";
    loc.value = (char *)location;
    off.key = "offset";
    off.value = off_s;
    len.key = "length";
    len.value = len_s;
    Onnx__StringStringEntryProto *ext[3] = {&loc, &off, &len};
    Onnx__TensorProto wt = ONNX__TENSOR_PROTO__INIT;
    int64_t wdims[2] = {2, 3};
    wt.name = "W";
    wt.n_dims = 2;
    wt.dims = wdims;
    wt.has_data_type = 1;
    wt.data_type = BS_DT_FLOAT;
    wt.has_data_location = 1;
    wt.data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    wt.n_external_data = 3;
    wt.external_data = ext;
    Onnx__TensorProto *inits[1] = {&wt};

    Onnx__TensorShapeProto__Dimension d0 = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT,
                                      d1 = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT;
    d0.value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
    d0.dim_value = 1;
    d1.value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
    d1.dim_value = 3;
    Onnx__TensorShapeProto__Dimension *dims[2] = {&d0, &d1};
    Onnx__TensorShapeProto shape = ONNX__TENSOR_SHAPE_PROTO__INIT;
    shape.n_dim = 2;
    shape.dim = dims;
    Onnx__TypeProto__Tensor tt = ONNX__TYPE_PROTO__TENSOR__INIT;
    tt.has_elem_type = 1;
    tt.elem_type = BS_DT_FLOAT;
    tt.shape = &shape;
    Onnx__TypeProto type = ONNX__TYPE_PROTO__INIT;
    type.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    type.tensor_type = &tt;
    Onnx__ValueInfoProto xin = ONNX__VALUE_INFO_PROTO__INIT, yout = ONNX__VALUE_INFO_PROTO__INIT;
    xin.name = "X";
    xin.type = &type;
    yout.name = "Y";
    Onnx__ValueInfoProto *ins[1] = {&xin}, *outs[1] = {&yout};

    Onnx__AttributeProto tb = ONNX__ATTRIBUTE_PROTO__INIT;
    tb.name = "transB";
    tb.has_type = 1;
    tb.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
    tb.has_i = 1;
    tb.i = 1;
    Onnx__AttributeProto *attrs[1] = {&tb};
    char *nin[2] = {"X", "W"}, *nout[1] = {"Y"};
    Onnx__NodeProto node = ONNX__NODE_PROTO__INIT;
    node.name = "fc";
    node.op_type = "Gemm";
    node.n_input = 2;
    node.input = nin;
    node.n_output = 1;
    node.output = nout;
    node.n_attribute = 1;
    node.attribute = attrs;
    Onnx__NodeProto *nodes[1] = {&node};
    Onnx__GraphProto graph = ONNX__GRAPH_PROTO__INIT;
    graph.name = "ext";
    graph.n_node = 1;
    graph.node = nodes;
    graph.n_initializer = 1;
    graph.initializer = inits;
    graph.n_input = 1;
    graph.input = ins;
    graph.n_output = 1;
    graph.output = outs;
    Onnx__OperatorSetIdProto opset = ONNX__OPERATOR_SET_ID_PROTO__INIT;
    opset.domain = "";
    opset.has_version = 1;
    opset.version = 13;
    Onnx__OperatorSetIdProto *opsets[1] = {&opset};
    Onnx__ModelProto model = ONNX__MODEL_PROTO__INIT;
    model.has_ir_version = 1;
    model.ir_version = 8;
    model.n_opset_import = 1;
    model.opset_import = opsets;
    model.graph = &graph;
    size_t n = onnx__model_proto__get_packed_size(&model);
    uint8_t *buf = bs_malloc(n);
    onnx__model_proto__pack(&model, buf);
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    ASSERT_OK(bs_write_file(path, buf, n, &e));
    bs_free(buf);
}

BS_TEST(external_data)
{
    char path[512];
    bs_graph_t *g;
    bs_err_t e;
    snprintf(path, sizeof path, "%s/model.onnx", bs_test_tmpdir());
    s_write_external_model(bs_test_tmpdir(), "w.bin", 24);
    int rc = bs_graph_load(path, NULL, &g, &e);
    if (rc)
        fprintf(stderr, "%s\n", e.msg);
    ASSERT_OK(rc);
    float x[3] = {1, 1, 2};
    ASSERT_OK(bs_graph_set_input(g, 0, BS_DT_FLOAT, x, sizeof x, &e));
    ASSERT_OK(bs_graph_run(g, &e));
    const float *y = bs_graph_output(g, 0)->data;
    ASSERT_DBL_NEAR(1 + 2 + 6, y[0], 1e-6);
    ASSERT_DBL_NEAR(4 + 5 + 12, y[1], 1e-6);
    bs_graph_free(&g);
    /* A wrong length, a file outside the model's directory, a missing file: clear errors. */
    s_write_external_model(bs_test_tmpdir(), "w.bin", 20);
    ASSERT_EQ(BS_EMODEL, bs_graph_load(path, NULL, &g, &e));
    ASSERT_CONTAINS(e.msg, "tensor 'W'");
    s_write_external_model(bs_test_tmpdir(), "../w.bin", 24);
    ASSERT_EQ(BS_EMODEL, bs_graph_load(path, NULL, &g, &e));
    ASSERT_CONTAINS(e.msg, "inside the model's directory");
    s_write_external_model(bs_test_tmpdir(), "nope.bin", 24);
    ASSERT_EQ(BS_EMODEL, bs_graph_load(path, NULL, &g, &e));
    ASSERT_CONTAINS(e.msg, "nope.bin");
}

#define TESTS(X)                                                                                 \
    X(broadcast) X(half_floats) X(tensor_pb) X(unsupported_and_corrupt)                        \
    X(bundled_model_fused) X(external_data)
BS_TEST_MAIN(TESTS)

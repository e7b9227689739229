/*
 * test_export.c - `bitscout export` (searcher/bs_export.c): the quantized ONNX model of an
 * assignment.
 *
 * The bundled Fashion-MNIST model is exported at several specs with a hand-made calibration
 * table, and the output re-parsed with protobuf-c: node structure (QuantizeLinear /
 * DequantizeLinear / Cast where the precision says, topological order, unique names),
 * initializer types and shapes, code ranges per width, scales, the int32 bias, metadata and
 * opset. The codes and scales are checked against bs_quantize_weights itself, bit for bit.
 * Then the engine runs the exported model in float32 (its QuantizeLinear / DequantizeLinear /
 * Cast operators) and the original at the same precision (bs_run_load_prec, its integer and
 * fp16 kernels) on Fashion-MNIST test images: the outputs must agree (tolerances at
 * s_compare); tests/integration/test_export.sh does the same with ONNX Runtime. Hostile and
 * unusual models from the tiny builder (bs_tmodel.h): a weight that is a Constant node, a
 * folded BatchNormalization, ConvTranspose, opset raising and refusals, external data,
 * garbage and truncated files, every allocation failing in turn.
 */
#include "bs_alloc.h"
#include "bs_data.h"
#include "bs_export.h"
#include "bs_model.h"
#include "bs_quant.h"
#include "bs_run.h"
#include "bs_test.h"
#include "bs_tmodel.h"
#include "bs_util.h"
#include "onnx.pb-c.h"

#include <math.h>
#include <unistd.h>

#define S_MODEL BS_SRC_DIR "/models/fmnist-cnn.onnx"
#define S_DATA "/usr/share/datasets/fashion-mnist/"
#define S_TEST_IMAGES S_DATA "t10k-images-idx3-ubyte.gz"
#define S_TEST_LABELS S_DATA "t10k-labels-idx1-ubyte.gz"
#define S_TRAIN_IMAGES S_DATA "train-images-idx3-ubyte.gz"

static const char *const s_layers[] = {"conv1", "conv2", "fc1", "fc2"};
/* each layer's input tensor in the bundled model */
static const char *const s_inputs[] = {"input", "/MaxPool_output_0", "/Flatten_output_0",
                                       "/Relu_2_output_0"};

/* ---- helpers ------------------------------------------------------------------------------ */

static int s_have_data(void)
{
    if (access(S_TEST_IMAGES, R_OK) == 0 && access(S_TEST_LABELS, R_OK) == 0 &&
        access(S_TRAIN_IMAGES, R_OK) == 0)
        return 1;
    fprintf(stderr, "dataset-fashion-mnist not installed; skipped\n");
    return 0;
}

static void s_pre(bs_preprocess_t *p)
{
    bs_preprocess_default(p);
    p->n_mean = p->n_std = 1;
    p->mean[0] = 0.2860f;
    p->std[0] = 0.3530f;
}

/* A hand-made table with plausible parameters for the four layer inputs. */
static void s_act(bs_act_table_t *t)
{
    static const float scale[] = {2.8f / 255.0f, 0.021f, 0.017f, 0.043f};
    static const int32_t zp[] = {73, 0, 0, 0};
    memset(t, 0, sizeof *t);
    t->n = 4;
    t->names = bs_calloc(4, sizeof *t->names);
    t->q = bs_calloc(4, sizeof *t->q);
    ASSERT(t->names && t->q);
    for (int i = 0; i < 4; i++) {
        ASSERT((t->names[i] = bs_strdup(s_inputs[i])));
        t->q[i].scale = scale[i];
        t->q[i].zero_point = zp[i];
    }
}

static void s_read(const char *path, char **buf, size_t *len)
{
    bs_err_t err = {0};
    int rc = bs_read_file(path, (size_t)1 << 30, buf, len, &err);
    if (rc)
        fprintf(stderr, "%s\n", err.msg);
    ASSERT_OK(rc);
}

static Onnx__ModelProto *s_unpack(const void *buf, size_t len)
{
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, len, buf);
    ASSERT(mp && mp->graph);
    return mp;
}

/* Exports buf at spec; returns the re-parsed output (free with free_unpacked). */
static Onnx__ModelProto *s_export_buf(const void *buf, size_t len, const char *spec,
                                      const bs_act_table_t *act, int minmax,
                                      bs_export_info_t *info)
{
    bs_quant_opts_t q;
    bs_quant_opts_default(&q);
    q.wscale_minmax = minmax;
    void *out = NULL;
    size_t out_len = 0;
    bs_err_t err = {0};
    int rc = bs_export_buffer(buf, len, bs_test_tmpdir(), spec, &q, act, &out, &out_len, info,
                              &err);
    if (rc)
        fprintf(stderr, "export %s: %s\n", spec, err.msg);
    ASSERT_OK(rc);
    Onnx__ModelProto *mp = s_unpack(out, out_len);
    bs_free(out);
    return mp;
}

static Onnx__ModelProto *s_export(const char *spec, const bs_act_table_t *act,
                                  bs_export_info_t *info)
{
    char *buf;
    size_t len;
    s_read(S_MODEL, &buf, &len);
    Onnx__ModelProto *mp = s_export_buf(buf, len, spec, act, 0, info);
    bs_free(buf);
    return mp;
}

static const Onnx__NodeProto *s_node(const Onnx__GraphProto *g, const char *name)
{
    for (size_t i = 0; i < g->n_node; i++)
        if (g->node[i]->name && !strcmp(g->node[i]->name, name))
            return g->node[i];
    return NULL;
}

static const Onnx__NodeProto *s_producer(const Onnx__GraphProto *g, const char *tensor)
{
    for (size_t i = 0; i < g->n_node; i++)
        for (size_t k = 0; k < g->node[i]->n_output; k++)
            if (!strcmp(g->node[i]->output[k], tensor))
                return g->node[i];
    return NULL;
}

static const Onnx__TensorProto *s_init(const Onnx__GraphProto *g, const char *name)
{
    for (size_t i = 0; i < g->n_initializer; i++)
        if (g->initializer[i]->name && !strcmp(g->initializer[i]->name, name))
            return g->initializer[i];
    return NULL;
}

static int s_count_op(const Onnx__GraphProto *g, const char *op)
{
    int n = 0;
    for (size_t i = 0; i < g->n_node; i++)
        n += !strcmp(g->node[i]->op_type, op);
    return n;
}

static int64_t s_attr_i(const Onnx__NodeProto *n, const char *name, int64_t dflt)
{
    for (size_t i = 0; i < n->n_attribute; i++)
        if (!strcmp(n->attribute[i]->name, name))
            return n->attribute[i]->i;
    return dflt;
}

static const char *s_meta(const Onnx__ModelProto *mp, const char *key)
{
    for (size_t i = 0; i < mp->n_metadata_props; i++)
        if (!strcmp(mp->metadata_props[i]->key, key))
            return mp->metadata_props[i]->value;
    return NULL;
}

static int64_t s_opset(const Onnx__ModelProto *mp)
{
    for (size_t i = 0; i < mp->n_opset_import; i++)
        if (!mp->opset_import[i]->domain || !mp->opset_import[i]->domain[0])
            return mp->opset_import[i]->version;
    return -1;
}

static int64_t s_numel(const Onnx__TensorProto *t)
{
    int64_t n = 1;
    for (size_t i = 0; i < t->n_dims; i++)
        n *= t->dims[i];
    return n;
}

/* Every node input is a graph input, an initializer or an earlier node's output; tensor,
 * initializer and node names are unique. */
static void s_check_graph(const Onnx__GraphProto *g)
{
    for (size_t i = 0; i < g->n_node; i++) {
        const Onnx__NodeProto *n = g->node[i];
        for (size_t k = 0; k < n->n_input; k++) {
            const char *t = n->input[k];
            int ok = !t[0] || s_init(g, t) != NULL;
            for (size_t j = 0; !ok && j < g->n_input; j++)
                ok = !strcmp(g->input[j]->name, t);
            for (size_t j = 0; !ok && j < i; j++)
                for (size_t o = 0; !ok && o < g->node[j]->n_output; o++)
                    ok = !strcmp(g->node[j]->output[o], t);
            if (!ok)
                fprintf(stderr, "node '%s' reads '%s' before it exists\n", n->name, t);
            ASSERT(ok);
        }
        for (size_t j = 0; j < i; j++)
            if (n->name && n->name[0])
                ASSERT(strcmp(n->name, g->node[j]->name) != 0);
        for (size_t o = 0; o < n->n_output; o++) {
            ASSERT(!s_init(g, n->output[o]));
            for (size_t j = 0; j < i; j++)
                for (size_t p = 0; p < g->node[j]->n_output; p++)
                    ASSERT(strcmp(n->output[o], g->node[j]->output[p]) != 0);
        }
    }
    for (size_t i = 0; i < g->n_initializer; i++)
        for (size_t j = 0; j < i; j++)
            ASSERT(strcmp(g->initializer[i]->name, g->initializer[j]->name) != 0);
    for (size_t i = 0; i < g->n_output; i++)
        ASSERT(s_producer(g, g->output[i]->name) || s_init(g, g->output[i]->name));
}

/* The float weight (input 1) of layer `name` in the original model; *t its tensor. */
static float *s_orig_weight(const Onnx__ModelProto *src, const char *name, int input,
                            const Onnx__TensorProto **t)
{
    const Onnx__NodeProto *n = s_node(src->graph, name);
    ASSERT(n);
    *t = s_init(src->graph, n->input[input]);
    ASSERT(*t && (*t)->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT);
    size_t cnt = (size_t)s_numel(*t);
    float *w = bs_malloc(cnt * sizeof *w);
    ASSERT(w);
    if ((*t)->has_raw_data) {
        ASSERT_EQ(cnt * 4, (*t)->raw_data.len);
        memcpy(w, (*t)->raw_data.data, cnt * 4);
    } else {
        ASSERT_EQ(cnt, (*t)->n_float_data);
        memcpy(w, (*t)->float_data, cnt * 4);
    }
    return w;
}

/* The DequantizeLinear feeding input `input` of node n: checks its operands and returns them. */
typedef struct s_dq {
    const Onnx__TensorProto *q, *scale, *zp;
    int64_t axis;
} s_dq_t;

static s_dq_t s_get_dq(const Onnx__GraphProto *g, const Onnx__NodeProto *n, int input)
{
    s_dq_t d;
    const Onnx__NodeProto *p = s_producer(g, n->input[input]);
    ASSERT(p);
    ASSERT_STR_EQ("DequantizeLinear", p->op_type);
    ASSERT_EQ(3, p->n_input);
    d.q = s_init(g, p->input[0]);
    d.scale = s_init(g, p->input[1]);
    d.zp = s_init(g, p->input[2]);
    ASSERT(d.q && d.scale && d.zp);
    d.axis = s_attr_i(p, "axis", 1);
    ASSERT_EQ(ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, d.scale->data_type);
    ASSERT_EQ(d.q->data_type, d.zp->data_type);
    ASSERT(d.scale->has_raw_data && d.q->has_raw_data && d.zp->has_raw_data);
    return d;
}

/* ---- the bundled model -------------------------------------------------------------------- */

BS_TEST(all_fp32_is_the_model)
{
    bs_export_info_t info;
    Onnx__ModelProto *mp = s_export(NULL, NULL, &info);
    char *buf;
    size_t len;
    s_read(S_MODEL, &buf, &len);
    Onnx__ModelProto *src = s_unpack(buf, len);
    ASSERT_EQ(src->graph->n_node, mp->graph->n_node);
    ASSERT_EQ(src->graph->n_initializer, mp->graph->n_initializer);
    for (size_t i = 0; i < src->graph->n_node; i++)
        ASSERT_STR_EQ(src->graph->node[i]->name, mp->graph->node[i]->name);
    ASSERT_STR_EQ("bitscout", mp->producer_name);
    ASSERT_STR_EQ("conv1=w32a32,conv2=w32a32,fc1=w32a32,fc2=w32a32",
                  s_meta(mp, "bitscout.precision"));
    ASSERT_STR_EQ(info.assignment, s_meta(mp, "bitscout.precision"));
    ASSERT_EQ(13, s_opset(mp));
    ASSERT_EQ(4, info.n_layers);
    ASSERT_EQ(0, info.n_int + info.n_f16 + info.n_a8);
    ASSERT_STR_EQ("", info.notes);
    s_check_graph(mp->graph);
    bs_export_info_free(&info);
    onnx__model_proto__free_unpacked(src, NULL);
    onnx__model_proto__free_unpacked(mp, NULL);
    bs_free(buf);
}

BS_TEST(w8a8_is_qdq_with_the_engines_codes)
{
    bs_act_table_t act;
    s_act(&act);
    bs_export_info_t info;
    Onnx__ModelProto *mp = s_export("*=w8a8", &act, &info);
    const Onnx__GraphProto *g = mp->graph;
    char *buf;
    size_t len;
    s_read(S_MODEL, &buf, &len);
    Onnx__ModelProto *src = s_unpack(buf, len);
    s_check_graph(g);
    ASSERT_EQ(13, s_opset(mp));
    ASSERT_STR_EQ("conv1=w8a8,conv2=w8a8,fc1=w8a8,fc2=w8a8", s_meta(mp, "bitscout.precision"));
    ASSERT_STR_EQ("mse", s_meta(mp, "bitscout.weight_scales"));
    ASSERT_EQ(4, info.n_int);
    ASSERT_EQ(4, info.n_a8);
    /* inputs, plus the uint8 chains conv1 -> MaxPool -> conv2 and conv2 -> MaxPool ->
     * Flatten -> fc1 (the pair on the Relu's output, with the reader's parameters) */
    ASSERT_EQ(4 + 2, s_count_op(g, "QuantizeLinear"));
    ASSERT_EQ(6 + 4 + 4, s_count_op(g, "DequantizeLinear")); /* + weights, biases */
    const Onnx__NodeProto *pool = s_node(g, "/MaxPool");
    ASSERT_STR_EQ("/Relu_output_0_dq", pool->input[0]);
    const Onnx__NodeProto *cq = s_producer(g, s_producer(g, pool->input[0])->input[0]);
    ASSERT_STR_EQ("QuantizeLinear", cq->op_type);
    ASSERT_STR_EQ("/Relu_output_0", cq->input[0]);
    ASSERT_STR_EQ("/MaxPool_output_0_scale", cq->input[1]);
    ASSERT_STR_EQ("/Relu_1_output_0_dq", s_node(g, "/MaxPool_1")->input[0]);
    for (int l = 0; l < 4; l++) {
        const Onnx__NodeProto *n = s_node(g, s_layers[l]);
        ASSERT(n);
        char name[64];
        /* input 0: x -> x_q -> x_dq */
        snprintf(name, sizeof name, "%s_dq", s_inputs[l]);
        ASSERT_STR_EQ(name, n->input[0]);
        const Onnx__NodeProto *dq = s_producer(g, n->input[0]);
        ASSERT(dq && !strcmp(dq->op_type, "DequantizeLinear"));
        const Onnx__NodeProto *qn = s_producer(g, dq->input[0]);
        ASSERT(qn && !strcmp(qn->op_type, "QuantizeLinear"));
        ASSERT_STR_EQ(s_inputs[l], qn->input[0]);
        const Onnx__TensorProto *xs = s_init(g, qn->input[1]), *xz = s_init(g, qn->input[2]);
        ASSERT(xs && xz);
        ASSERT_EQ(0, xs->n_dims);
        ASSERT_EQ(ONNX__TENSOR_PROTO__DATA_TYPE__UINT8, xz->data_type);
        float sx;
        memcpy(&sx, xs->raw_data.data, 4);
        ASSERT(sx == act.q[l].scale);
        ASSERT_EQ(act.q[l].zero_point, xz->raw_data.data[0]);
        ASSERT_STR_EQ(qn->input[1], dq->input[1]);
        ASSERT_STR_EQ(qn->input[2], dq->input[2]);

        /* the weight: INT8 codes of the original shape, per-channel scales on axis 0 */
        snprintf(name, sizeof name, "%s.weight_dq", s_layers[l]);
        ASSERT_STR_EQ(name, n->input[1]);
        s_dq_t w = s_get_dq(g, n, 1);
        const Onnx__TensorProto *ot;
        float *W = s_orig_weight(src, s_layers[l], 1, &ot);
        ASSERT(!s_init(g, ot->name)); /* the float weight is gone */
        ASSERT_EQ(ONNX__TENSOR_PROTO__DATA_TYPE__INT8, w.q->data_type);
        ASSERT_EQ(ot->n_dims, w.q->n_dims);
        for (size_t d = 0; d < ot->n_dims; d++)
            ASSERT_EQ(ot->dims[d], w.q->dims[d]);
        ASSERT_EQ(0, w.axis);
        int N = (int)ot->dims[0], K = (int)(s_numel(ot) / N);
        ASSERT_EQ(1, w.scale->n_dims);
        ASSERT_EQ(N, w.scale->dims[0]);
        ASSERT_EQ((size_t)N * 4, w.scale->raw_data.len);
        ASSERT_EQ((size_t)N, w.zp->raw_data.len);
        bs_qweight_t ref;
        bs_err_t err = {0};
        ASSERT_OK(bs_quantize_weights(W, K, 1, N, K, 8, BS_QSCALE_MSE, &ref, &err));
        int8_t *codes = bs_malloc((size_t)K);
        const int8_t *got = (const int8_t *)w.q->raw_data.data;
        float sw[64];
        ASSERT(N <= 64);
        memcpy(sw, w.scale->raw_data.data, (size_t)N * 4);
        for (int r = 0; r < N; r++) {
            ASSERT_EQ(0, (int8_t)w.zp->raw_data.data[r]);
            ASSERT(sw[r] > 0.0f && isfinite(sw[r]));
            ASSERT(sw[r] == ref.scales[r]); /* bit for bit */
            bs_qweight_unpack_row(&ref, r, 0, K, codes);
            for (int k = 0; k < K; k++) {
                ASSERT(got[(size_t)r * K + k] >= -127 && got[(size_t)r * K + k] <= 127);
                ASSERT_EQ(codes[k], got[(size_t)r * K + k]);
            }
        }
        /* the bias: int32 at sx * sw[n], rne of b / (sx * sw[n]) in double */
        snprintf(name, sizeof name, "%s.bias_dq", s_layers[l]);
        ASSERT_STR_EQ(name, n->input[2]);
        s_dq_t b = s_get_dq(g, n, 2);
        ASSERT_EQ(ONNX__TENSOR_PROTO__DATA_TYPE__INT32, b.q->data_type);
        ASSERT_EQ(0, b.axis);
        ASSERT_EQ(N, s_numel(b.q));
        const Onnx__TensorProto *obt;
        float *B = s_orig_weight(src, s_layers[l], 2, &obt);
        ASSERT(!s_init(g, obt->name));
        for (int r = 0; r < N; r++) {
            int32_t bq;
            float bsc;
            memcpy(&bq, b.q->raw_data.data + 4 * r, 4);
            memcpy(&bsc, b.scale->raw_data.data + 4 * r, 4);
            double s = (double)sx * (double)sw[r];
            ASSERT(bsc == (float)s);
            ASSERT_EQ((int32_t)nearbyint((double)B[r] / s), bq);
            ASSERT(fabs(bq * (double)bsc - B[r]) <= 0.51 * bsc + 1e-7);
        }
        bs_free(B);
        bs_free(codes);
        bs_qweight_free(&ref);
        bs_free(W);
    }
    bs_export_info_free(&info);
    bs_act_table_free(&act);
    onnx__model_proto__free_unpacked(src, NULL);
    onnx__model_proto__free_unpacked(mp, NULL);
    bs_free(buf);
}

BS_TEST(code_ranges_per_width)
{
    for (int bits = 2; bits <= 7; bits++) {
        char spec[32];
        snprintf(spec, sizeof spec, "*=w%da32", bits);
        bs_export_info_t info;
        Onnx__ModelProto *mp = s_export(spec, NULL, &info);
        const Onnx__GraphProto *g = mp->graph;
        s_check_graph(g);
        ASSERT_EQ(0, s_count_op(g, "QuantizeLinear"));
        ASSERT_EQ(4, s_count_op(g, "DequantizeLinear")); /* weights only; biases stay float */
        int qmax = (1 << (bits - 1)) - 1;
        for (int l = 0; l < 4; l++) {
            const Onnx__NodeProto *n = s_node(g, s_layers[l]);
            s_dq_t w = s_get_dq(g, n, 1);
            const int8_t *c = (const int8_t *)w.q->raw_data.data;
            int lo = 0, hi = 0;
            for (size_t i = 0; i < w.q->raw_data.len; i++) {
                lo = c[i] < lo ? c[i] : lo;
                hi = c[i] > hi ? c[i] : hi;
            }
            ASSERT(lo >= -qmax && hi <= qmax);
            ASSERT(lo == -qmax || hi == qmax); /* the range is used */
            ASSERT(s_init(g, n->input[2])); /* float bias */
        }
        bs_export_info_free(&info);
        onnx__model_proto__free_unpacked(mp, NULL);
    }
}

BS_TEST(w16_is_float16_and_cast)
{
    bs_export_info_t info;
    Onnx__ModelProto *mp = s_export("*=w16a32", NULL, &info);
    const Onnx__GraphProto *g = mp->graph;
    char *buf;
    size_t len;
    s_read(S_MODEL, &buf, &len);
    Onnx__ModelProto *src = s_unpack(buf, len);
    s_check_graph(g);
    ASSERT_EQ(4, s_count_op(g, "Cast"));
    ASSERT_EQ(4, info.n_f16);
    ASSERT_EQ(13, s_opset(mp));
    for (int l = 0; l < 4; l++) {
        const Onnx__NodeProto *n = s_node(g, s_layers[l]);
        const Onnx__NodeProto *c = s_producer(g, n->input[1]);
        ASSERT(c && !strcmp(c->op_type, "Cast"));
        ASSERT_EQ(ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, s_attr_i(c, "to", 0));
        const Onnx__TensorProto *h = s_init(g, c->input[0]), *ot;
        ASSERT(h);
        ASSERT_EQ(ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16, h->data_type);
        float *W = s_orig_weight(src, s_layers[l], 1, &ot);
        ASSERT_EQ((size_t)s_numel(ot) * 2, h->raw_data.len);
        for (int64_t i = 0; i < s_numel(ot); i++) {
            uint16_t v;
            memcpy(&v, h->raw_data.data + 2 * i, 2);
            ASSERT_EQ(bs_f32_to_f16(W[i]), v);
        }
        bs_free(W);
    }
    /* about half the bytes */
    size_t out = onnx__model_proto__get_packed_size(mp);
    ASSERT(out < len * 6 / 10);
    bs_export_info_free(&info);
    onnx__model_proto__free_unpacked(src, NULL);
    onnx__model_proto__free_unpacked(mp, NULL);
    bs_free(buf);
}

BS_TEST(mixed_spec_shares_nothing_it_should_not)
{
    bs_act_table_t act;
    s_act(&act);
    bs_export_info_t info;
    Onnx__ModelProto *mp = s_export("*=w32a32,conv*=w4a8,fc1=w16a8", &act, &info);
    const Onnx__GraphProto *g = mp->graph;
    s_check_graph(g);
    ASSERT_STR_EQ("conv1=w4a8,conv2=w4a8,fc1=w16a8,fc2=w32a32",
                  s_meta(mp, "bitscout.precision"));
    ASSERT_EQ(3 + 2, s_count_op(g, "QuantizeLinear")); /* inputs, conv output chains */
    ASSERT_EQ(1, s_count_op(g, "Cast"));
    ASSERT_EQ(5 + 2 + 2, s_count_op(g, "DequantizeLinear"));
    const Onnx__NodeProto *fc1 = s_node(g, "fc1"), *fc2 = s_node(g, "fc2");
    ASSERT_STR_EQ("/Flatten_output_0_dq", fc1->input[0]);
    ASSERT_STR_EQ("fc1.bias", fc1->input[2]); /* w16a8: the bias stays float */
    ASSERT_STR_EQ("/Relu_2_output_0", fc2->input[0]);
    ASSERT_STR_EQ("fc2.weight", fc2->input[1]);
    s_dq_t w = s_get_dq(g, s_node(g, "conv2"), 1);
    for (size_t i = 0; i < w.q->raw_data.len; i++)
        ASSERT(abs((int8_t)w.q->raw_data.data[i]) <= 7);
    bs_export_info_free(&info);
    bs_act_table_free(&act);
    onnx__model_proto__free_unpacked(mp, NULL);
}

BS_TEST(minmax_scales_follow_the_option)
{
    char *buf;
    size_t len;
    s_read(S_MODEL, &buf, &len);
    Onnx__ModelProto *src = s_unpack(buf, len);
    Onnx__ModelProto *mp = s_export_buf(buf, len, "fc2=w3a32", NULL, 1, NULL);
    ASSERT_STR_EQ("minmax", s_meta(mp, "bitscout.weight_scales"));
    s_dq_t w = s_get_dq(mp->graph, s_node(mp->graph, "fc2"), 1);
    const Onnx__TensorProto *ot;
    float *W = s_orig_weight(src, "fc2", 1, &ot);
    for (int r = 0; r < 10; r++) {
        float amax = 0, s;
        for (int k = 0; k < 64; k++)
            amax = fmaxf(amax, fabsf(W[r * 64 + k]));
        memcpy(&s, w.scale->raw_data.data + 4 * r, 4);
        ASSERT(s == amax / 3.0f);
    }
    bs_free(W);
    onnx__model_proto__free_unpacked(mp, NULL);
    onnx__model_proto__free_unpacked(src, NULL);
    bs_free(buf);
}

BS_TEST(bad_specs_and_missing_calibration)
{
    bs_err_t err = {0};
    const char *out = "bad.q.onnx";
    char path[512];
    snprintf(path, sizeof path, "%s/%s", bs_test_tmpdir(), out);
    ASSERT_EQ(BS_EINVAL, bs_export_model(S_MODEL, "conv9=w8a8", NULL, NULL, path, NULL, &err));
    ASSERT_CONTAINS(err.msg, "conv9");
    ASSERT_CONTAINS(err.msg, "conv1 conv2 fc1 fc2");
    ASSERT_CONTAINS(err.msg, "fmnist-cnn.onnx");
    ASSERT(access(path, F_OK) != 0);
    ASSERT_EQ(BS_EINVAL, bs_export_model(S_MODEL, "*=w9a8", NULL, NULL, path, NULL, &err));
    ASSERT_EQ(BS_EINVAL, bs_export_model(S_MODEL, "garbage", NULL, NULL, path, NULL, &err));
    /* a8 without a table, and with a table that lacks fc1's input */
    ASSERT_EQ(BS_EINVAL, bs_export_model(S_MODEL, "fc1=w8a8", NULL, NULL, path, NULL, &err));
    ASSERT_CONTAINS(err.msg, "layer 'fc1' is a8");
    ASSERT_CONTAINS(err.msg, "/Flatten_output_0");
    bs_act_table_t act;
    s_act(&act);
    bs_free(act.names[2]);
    ASSERT((act.names[2] = bs_strdup("something else")));
    ASSERT_EQ(BS_EINVAL, bs_export_model(S_MODEL, "*=w8a8", NULL, &act, path, NULL, &err));
    ASSERT_CONTAINS(err.msg, "calibration table has no entry");
    ASSERT_CONTAINS(err.msg, "'/Flatten_output_0'");
    act.q[0].scale = -1.0f;
    ASSERT_EQ(BS_EINVAL, bs_export_model(S_MODEL, "conv1=w8a8", NULL, &act, path, NULL, &err));
    ASSERT_CONTAINS(err.msg, "scale");
    ASSERT(access(path, F_OK) != 0);
    /* an unwritable destination: nothing is left behind */
    ASSERT_EQ(BS_EIO, bs_export_model(S_MODEL, "*=w8a32", NULL, NULL,
                                      "/nonexistent-dir/m.q.onnx", NULL, &err));
    ASSERT_CONTAINS(err.msg, "/nonexistent-dir/m.q.onnx");
    /* a missing model and a broken one */
    ASSERT_NE(0, bs_export_model("/nonexistent.onnx", NULL, NULL, NULL, path, NULL, &err));
    ASSERT_CONTAINS(err.msg, "/nonexistent.onnx");
    void *o = NULL;
    size_t ol = 0;
    ASSERT_EQ(BS_EMODEL, bs_export_buffer("not a model at all", 18, ".", NULL, NULL, NULL, &o,
                                          &ol, NULL, &err));
    ASSERT(!o && !ol);
    char *buf;
    size_t len;
    s_read(S_MODEL, &buf, &len);
    ASSERT_EQ(BS_EMODEL, bs_export_buffer(buf, len / 2, ".", "*=w8a32", NULL, NULL, &o, &ol,
                                          NULL, &err));
    bs_free(buf);
    bs_act_table_free(&act);
    ASSERT(access(path, F_OK) != 0);
}

BS_TEST(writes_the_file)
{
    char path[512];
    snprintf(path, sizeof path, "%s/m.q.onnx", bs_test_tmpdir());
    bs_err_t err = {0};
    bs_export_info_t info;
    ASSERT_OK(bs_export_model(S_MODEL, "fc*=w8a32", NULL, NULL, path, &info, &err));
    char *buf;
    size_t len;
    s_read(path, &buf, &len);
    ASSERT_EQ(info.bytes, len);
    ASSERT_STR_EQ("conv1=w32a32,conv2=w32a32,fc1=w8a32,fc2=w8a32", info.assignment);
    Onnx__ModelProto *mp = s_unpack(buf, len);
    ASSERT_STR_EQ(info.assignment, s_meta(mp, "bitscout.precision"));
    /* the model view reads it; the fc layers' weights now come out of DequantizeLinear
     * nodes, not initializers, so only the float layers are weight layers to it */
    bs_model_info_t mi;
    ASSERT_OK(bs_model_info_parse(buf, len, &mi, &err));
    ASSERT_EQ(2, mi.n_layers);
    ASSERT_STR_EQ("conv1", mi.layers[0].name);
    ASSERT_STR_EQ("conv2", mi.layers[1].name);
    bs_model_info_free(&mi);
    snprintf(path + strlen(path), 8, ".tmp");
    ASSERT(access(path, F_OK) != 0);
    onnx__model_proto__free_unpacked(mp, NULL);
    bs_export_info_free(&info);
    bs_free(buf);
}

/* ---- running the exported model ----------------------------------------------------------- */

/* Runs the first n test images through g; out gets n x 10 logits. */
static void s_run(bs_graph_t *g, const bs_dataset_t *ds, int64_t n, float *out)
{
    bs_err_t err = {0};
    for (int64_t i = 0; i < n; i++) {
        ASSERT_OK(bs_graph_set_input(g, 0, BS_DT_FLOAT, ds->x + i * ds->sample_numel,
                                     (size_t)ds->sample_numel * sizeof(float), &err));
        int rc = bs_graph_run(g, &err);
        if (rc)
            fprintf(stderr, "%s\n", err.msg);
        ASSERT_OK(rc);
        const bs_tensor_t *y = bs_graph_output(g, 0);
        ASSERT_EQ(10, bs_shape_numel(&y->shape));
        memcpy(out + i * 10, y->data, 10 * sizeof(float));
    }
}

/* The engine on the exported model (float32) against the engine on the original at the same
 * precision, over S_N test images. Tolerances:
 *   a32 specs: the exported weights are exactly the engine's dequantized ones, so only the
 *     order of float sums differs between the kernels (relative ~1e-6): SQNR >= 80 dB and
 *     top-1 identical on every sample (a flip would need two logits within ~1e-6).
 *   a8 specs: the engine accumulates in int32 and requantizes a layer's output straight to
 *     the next layer's uint8 input (one rounding of acc * (sx sw / s_out)), where the QDQ
 *     graph rounds the float product; a code can differ by one step near a rounding tie, and
 *     float sums differ in order. One-step flips in a few activations are ~60 dB or more
 *     below the logits (measured: 75 dB and up here; int weights at a8 are often bit
 *     identical): SQNR >= 50 dB and top-1 agreement >= 99% (at most 3 near-tie samples of
 *     300). Either would catch a wrong scale, axis, zero point or bias (~20-40 dB). */
#define S_N 300

static void s_compare(const char *spec, double min_sqnr, double min_agree)
{
    if (!s_have_data())
        return;
    bs_err_t err = {0};
    bs_preprocess_t pre;
    s_pre(&pre);
    bs_quant_opts_t q;
    bs_quant_opts_default(&q);
    q.calib_images = S_TRAIN_IMAGES;
    q.calib_count = 256;
    q.pre = &pre;
    bs_act_table_t act;
    memset(&act, 0, sizeof act);
    int rc = bs_run_calibrate(S_MODEL, 1, &q, &act, &err);
    if (rc)
        fprintf(stderr, "calibrate: %s\n", err.msg);
    ASSERT_OK(rc);
    char path[512];
    snprintf(path, sizeof path, "%s/m.q.onnx", bs_test_tmpdir());
    ASSERT_OK(bs_export_model(S_MODEL, spec, &q, &act, path, NULL, &err));

    bs_graph_t *ref = NULL, *exp = NULL;
    rc = bs_run_load_prec(S_MODEL, 1, spec, &q, &act, &ref, &err);
    if (rc)
        fprintf(stderr, "load_prec %s: %s\n", spec, err.msg);
    ASSERT_OK(rc);
    rc = bs_run_load(path, 1, &exp, &err); /* all float32: the engine's QDQ operators */
    if (rc)
        fprintf(stderr, "load exported %s: %s\n", spec, err.msg);
    ASSERT_OK(rc);
    bs_dataset_t ds;
    ASSERT_OK(bs_dataset_load(S_TEST_IMAGES, S_TEST_LABELS, S_N, &pre,
                              &bs_graph_input(ref, 0)->shape, &ds, &err));
    float *yr = bs_malloc(S_N * 10 * sizeof(float)), *ye = bs_malloc(S_N * 10 * sizeof(float));
    ASSERT(yr && ye);
    s_run(ref, &ds, S_N, yr);
    s_run(exp, &ds, S_N, ye);
    double agree = bs_metric_agreement(ye, yr, S_N, 10);
    double sqnr = bs_metric_sqnr_db(ye, yr, S_N * 10);
    double acc_r, acc_e;
    ASSERT_OK(bs_metric_top1(yr, S_N, 10, ds.labels, &acc_r, &err));
    ASSERT_OK(bs_metric_top1(ye, S_N, 10, ds.labels, &acc_e, &err));
    fprintf(stderr, "%-32s engine %.4f exported %.4f agreement %.4f SQNR %.1f dB\n", spec,
            acc_r, acc_e, agree, sqnr);
    ASSERT(sqnr >= min_sqnr);
    ASSERT(agree >= min_agree);
    bs_free(yr);
    bs_free(ye);
    bs_dataset_free(&ds);
    bs_graph_free(&ref);
    bs_graph_free(&exp);
    bs_act_table_free(&act);
}

BS_TEST(engine_agrees_a32)
{
    s_compare("*=w8a32", 80.0, 1.0);
    s_compare("*=w16a32", 80.0, 1.0);
    s_compare("conv1=w4a32,conv2=w3a32,fc1=w2a32,fc2=w6a32", 80.0, 1.0);
}

BS_TEST(engine_agrees_a8)
{
    s_compare("*=w8a8", 50.0, 0.99);
    s_compare("*=w32a8", 50.0, 0.99);
    s_compare("conv*=w4a8,fc1=w16a8,fc2=w8a8", 50.0, 0.99);
    s_compare("conv1=w3a8,conv2=w2a8,fc1=w5a8,fc2=w7a8", 50.0, 0.99);
}

/* ---- hostile and unusual models ----------------------------------------------------------- */

static void s_pack(t_model_t *m, void **buf, size_t *len)
{
    *len = onnx__model_proto__get_packed_size(&m->m);
    *buf = bs_malloc(*len + 1);
    ASSERT(*buf);
    ASSERT_EQ(*len, onnx__model_proto__pack(&m->m, *buf));
}

static const float s_w12[12] = {0.5f, -1.0f, 0.25f, 2.0f, -0.75f, 0.1f,
                                1.5f, -2.0f, 0.3f,  0.7f, -0.2f,  1.0f};

/* x [1,4] -> Gemm "g" (weight from a Constant node) -> MatMul "mm" (initializer [3,2]). */
static t_model_t *s_const_weight_model(int64_t opset, Onnx__TensorProto *ct)
{
    t_model_t *m = t_new(opset);
    t_input(m, "x", &(bs_shape_t){.rank = 2, .d = {1, 4}});
    int k = t_node(m, "Constant", "wconst", NULL, "W");
    m->node[k].n_input = 0;
    onnx__tensor_proto__init(ct);
    static int64_t dims[2] = {3, 4};
    ct->n_dims = 2;
    ct->dims = dims;
    ct->has_data_type = 1;
    ct->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    ct->n_float_data = 12;
    ct->float_data = (float *)s_w12;
    t_attr(m, k, "value", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR)->t = ct;
    k = t_node(m, "Gemm", "g", "x,W", "y");
    t_attr_int(m, k, "transB", 1);
    t_init(m, "M", &(bs_shape_t){.rank = 2, .d = {3, 2}}, s_w12);
    t_node(m, "MatMul", "mm", "y,M", "z");
    t_output(m, "z");
    return m;
}

BS_TEST(constant_weight_stays_float_with_a_note)
{
    Onnx__TensorProto ct;
    t_model_t *m = s_const_weight_model(13, &ct);
    void *buf;
    size_t len;
    s_pack(m, &buf, &len);
    bs_export_info_t info;
    Onnx__ModelProto *mp = s_export_buf(buf, len, "*=w8a32", NULL, 0, &info);
    const Onnx__GraphProto *g = mp->graph;
    s_check_graph(g);
    ASSERT_CONTAINS(info.notes, "layer 'g': weight 'W' is not an initializer");
    ASSERT_STR_EQ("g=w8a32,mm=w8a32", info.assignment);
    ASSERT_EQ(1, info.n_int);
    ASSERT_STR_EQ("W", s_node(g, "g")->input[1]);
    /* MatMul [K, N]: the output channels are axis 1 */
    s_dq_t w = s_get_dq(g, s_node(g, "mm"), 1);
    ASSERT_EQ(1, w.axis);
    ASSERT_EQ(2, s_numel(w.scale));
    ASSERT_EQ(3, w.q->dims[0]);
    ASSERT_EQ(2, w.q->dims[1]);
    bs_qweight_t ref;
    bs_err_t err = {0};
    ASSERT_OK(bs_quantize_weights(s_w12, 1, 2, 2, 3, 8, BS_QSCALE_MSE, &ref, &err));
    int8_t codes[3];
    for (int n = 0; n < 2; n++) {
        bs_qweight_unpack_row(&ref, n, 0, 3, codes);
        for (int k = 0; k < 3; k++)
            ASSERT_EQ(codes[k], (int8_t)w.q->raw_data.data[k * 2 + n]);
    }
    ASSERT(!s_init(g, "M"));
    bs_qweight_free(&ref);
    bs_export_info_free(&info);
    onnx__model_proto__free_unpacked(mp, NULL);
    bs_free(buf);
    t_free(m);
}

BS_TEST(odd_weights_are_refused_by_name)
{
    bs_err_t err = {0};
    void *buf, *o = NULL;
    size_t len, ol;
    /* an int64 weight: only float32 weights can go below 32 bits */
    t_model_t *m = t_new(13);
    t_input(m, "x", &(bs_shape_t){.rank = 2, .d = {1, 3}});
    t_init_any(m, "M", &(bs_shape_t){.rank = 2, .d = {3, 2}}, NULL,
               (const int64_t[]){1, 2, 3, 4, 5, 6});
    t_node(m, "MatMul", "mm", "x,M", "z");
    t_output(m, "z");
    s_pack(m, &buf, &len);
    ASSERT_EQ(BS_EUNSUPPORTED,
              bs_export_buffer(buf, len, ".", "*=w8a32", NULL, NULL, &o, &ol, NULL, &err));
    ASSERT_CONTAINS(err.msg, "tensor 'M' is int64");
    bs_free(buf);
    /* a weight with no elements, and one whose values do not fill its shape */
    m->init[0].data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    m->init[0].n_int64_data = 0;
    m->init[0].n_float_data = 0;
    m->idims[0][0] = 0;
    s_pack(m, &buf, &len);
    ASSERT_EQ(BS_EMODEL,
              bs_export_buffer(buf, len, ".", "*=w8a32", NULL, NULL, &o, &ol, NULL, &err));
    ASSERT_CONTAINS(err.msg, "layer 'mm': weight 'M' has no elements");
    bs_free(buf);
    m->idims[0][0] = 3;
    s_pack(m, &buf, &len);
    ASSERT_EQ(BS_EMODEL,
              bs_export_buffer(buf, len, ".", "*=w8a32", NULL, NULL, &o, &ol, NULL, &err));
    ASSERT_CONTAINS(err.msg, "tensor 'M'");
    bs_free(buf);
    /* a 3-D MatMul weight: refused below 32 bits, fine at w32 */
    m->init[0].n_dims = 3;
    m->idims[0][2] = 1;
    static float six[6] = {1, 2, 3, 4, 5, 6};
    m->init[0].n_float_data = 6;
    m->init[0].float_data = six;
    s_pack(m, &buf, &len);
    ASSERT_EQ(BS_EUNSUPPORTED,
              bs_export_buffer(buf, len, ".", "*=w4a32", NULL, NULL, &o, &ol, NULL, &err));
    ASSERT_CONTAINS(err.msg, "layer 'mm'");
    ASSERT_CONTAINS(err.msg, "rank 3");
    ASSERT(!o);
    Onnx__ModelProto *mp = s_export_buf(buf, len, "*=w32a32", NULL, 0, NULL);
    onnx__model_proto__free_unpacked(mp, NULL);
    bs_free(buf);
    m->init[0].float_data = NULL;
    m->init[0].n_float_data = 0;
    t_free(m);
}

BS_TEST(opset_raised_or_refused)
{
    Onnx__TensorProto ct;
    void *buf;
    size_t len;
    bs_err_t err = {0};
    void *o = NULL;
    size_t ol;
    /* 11 -> 13 for integer weights, with a note; a8 alone needs only 10 */
    t_model_t *m = s_const_weight_model(11, &ct);
    s_pack(m, &buf, &len);
    bs_export_info_t info;
    Onnx__ModelProto *mp = s_export_buf(buf, len, "mm=w8a32", NULL, 0, &info);
    ASSERT_EQ(13, s_opset(mp));
    ASSERT(mp->ir_version >= 7);
    ASSERT_CONTAINS(info.notes, "opset raised from 11 to 13");
    bs_export_info_free(&info);
    onnx__model_proto__free_unpacked(mp, NULL);
    bs_act_table_t act = {0};
    static char *names[] = {"y"};
    bs_qparam_t qp = {.scale = 0.1f, .zero_point = 128};
    act.n = 1;
    act.names = names;
    act.q = &qp;
    mp = s_export_buf(buf, len, "mm=w32a8", &act, 0, NULL);
    ASSERT_EQ(11, s_opset(mp));
    ASSERT_EQ(1, s_count_op(mp->graph, "QuantizeLinear"));
    onnx__model_proto__free_unpacked(mp, NULL);
    bs_free(buf);
    t_free(m);
    /* 11 with Softmax (changed at 13): refused */
    m = s_const_weight_model(11, &ct);
    t_node(m, "Softmax", "sm", "z", "p");
    s_pack(m, &buf, &len);
    ASSERT_EQ(BS_EUNSUPPORTED, bs_export_buffer(buf, len, ".", "mm=w8a32", NULL, NULL, &o, &ol,
                                                NULL, &err));
    ASSERT_CONTAINS(err.msg, "Softmax");
    ASSERT_CONTAINS(err.msg, "opset 11");
    ASSERT(!o);
    /* but fine where no integer weight needs it */
    mp = s_export_buf(buf, len, "mm=w16a32", NULL, 0, NULL);
    ASSERT_EQ(11, s_opset(mp));
    onnx__model_proto__free_unpacked(mp, NULL);
    bs_free(buf);
    t_free(m);
    /* below 11: refused */
    m = s_const_weight_model(9, &ct);
    s_pack(m, &buf, &len);
    ASSERT_EQ(BS_EUNSUPPORTED, bs_export_buffer(buf, len, ".", "mm=w4a32", NULL, NULL, &o, &ol,
                                                NULL, &err));
    ASSERT_CONTAINS(err.msg, "convert it first");
    bs_free(buf);
    t_free(m);
}

/* x [1,2,4,4] -> Conv "c" [3,2,3,3] + bias -> BatchNormalization -> Relu -> y */
static t_model_t *s_conv_bn_model(void)
{
    t_model_t *m = t_new(13);
    float w[54], b[3] = {0.1f, -0.2f, 0.3f}, sc[3] = {1.5f, 0.5f, -2.0f};
    float be[3] = {0.01f, 0.02f, -0.03f}, mu[3] = {0.2f, -0.1f, 0.05f};
    float var[3] = {0.9f, 1.7f, 0.3f};
    for (int i = 0; i < 54; i++)
        w[i] = sinf((float)i * 0.7f) * (i % 5 == 0 ? 3.0f : 1.0f);
    t_input(m, "x", &(bs_shape_t){.rank = 4, .d = {1, 2, 4, 4}});
    t_init(m, "W", &(bs_shape_t){.rank = 4, .d = {3, 2, 3, 3}}, w);
    t_init(m, "B", &(bs_shape_t){.rank = 1, .d = {3}}, b);
    t_init(m, "sc", &(bs_shape_t){.rank = 1, .d = {3}}, sc);
    t_init(m, "be", &(bs_shape_t){.rank = 1, .d = {3}}, be);
    t_init(m, "mu", &(bs_shape_t){.rank = 1, .d = {3}}, mu);
    t_init(m, "var", &(bs_shape_t){.rank = 1, .d = {3}}, var);
    int k = t_node(m, "Conv", "c", "x,W,B", "cy");
    t_attr_ints(m, k, "pads", 4, (const int64_t[]){1, 1, 1, 1});
    k = t_node(m, "BatchNormalization", "bn", "cy,sc,be,mu,var", "by");
    t_attr_float(m, k, "epsilon", 1e-3f);
    t_node(m, "Relu", "r", "by", "y");
    t_output(m, "y");
    return m;
}

BS_TEST(batchnorm_folded_as_the_engine_does)
{
    t_model_t *m = s_conv_bn_model();
    void *buf;
    size_t len;
    s_pack(m, &buf, &len);
    bs_export_info_t info;
    Onnx__ModelProto *mp = s_export_buf(buf, len, "c=w6a32", NULL, 0, &info);
    const Onnx__GraphProto *g = mp->graph;
    s_check_graph(g);
    ASSERT_EQ(1, info.n_bn_folded);
    ASSERT_EQ(0, s_count_op(g, "BatchNormalization"));
    const Onnx__NodeProto *c = s_node(g, "c");
    ASSERT_STR_EQ("by", c->output[0]);
    ASSERT_STR_EQ("c.bias_bn", c->input[2]);
    for (const char *const *n = (const char *const[]){"W", "B", "sc", "be", "mu", "var", NULL};
         *n; n++)
        ASSERT(!s_init(g, *n));
    /* the engine's load of the original at c=w6a32 against the export, all float32 */
    bs_graph_t *ge = NULL, *gr = NULL;
    bs_err_t err = {0};
    bs_graph_opts_t o;
    memset(&o, 0, sizeof o);
    o.precision = "c=w6a32";
    int rc = t_load_opts(m, &o, &gr, &err);
    if (rc)
        fprintf(stderr, "%s\n", err.msg);
    ASSERT_OK(rc);
    size_t n = onnx__model_proto__get_packed_size(mp);
    void *packed = bs_malloc(n + 1);
    ASSERT(packed);
    ASSERT_EQ(n, onnx__model_proto__pack(mp, packed));
    memset(&o, 0, sizeof o);
    rc = bs_graph_load_buffer(packed, n, ".", &o, &ge, &err);
    if (rc)
        fprintf(stderr, "%s\n", err.msg);
    ASSERT_OK(rc);
    bs_free(packed);
    float x[32];
    for (int i = 0; i < 32; i++)
        x[i] = cosf((float)i);
    ASSERT_OK(bs_graph_set_input(gr, 0, BS_DT_FLOAT, x, sizeof x, &err));
    ASSERT_OK(bs_graph_set_input(ge, 0, BS_DT_FLOAT, x, sizeof x, &err));
    ASSERT_OK(bs_graph_run(gr, &err));
    ASSERT_OK(bs_graph_run(ge, &err));
    const float *yr = bs_graph_output(gr, 0)->data, *ye = bs_graph_output(ge, 0)->data;
    for (int i = 0; i < 48; i++)
        ASSERT_DBL_NEAR(yr[i], ye[i], 1e-5 * (1 + fabs(yr[i])));
    bs_graph_free(&gr);
    bs_graph_free(&ge);
    bs_export_info_free(&info);
    onnx__model_proto__free_unpacked(mp, NULL);
    bs_free(buf);
    t_free(m);
}

/* The engine on m at spec against the engine on the export (all float32), on one input. */
static void s_engine_vs_export(t_model_t *m, const char *spec, const bs_act_table_t *act,
                               const float *xin, size_t xbytes, double tol)
{
    void *buf;
    size_t len;
    s_pack(m, &buf, &len);
    bs_quant_opts_t q;
    bs_quant_opts_default(&q);
    void *out = NULL;
    size_t out_len = 0;
    bs_err_t err = {0};
    ASSERT_OK(bs_export_buffer(buf, len, ".", spec, &q, act, &out, &out_len, NULL, &err));
    bs_graph_t *gr = NULL, *ge = NULL;
    bs_graph_opts_t o;
    memset(&o, 0, sizeof o);
    o.precision = spec;
    o.act = act;
    int rc = t_load_opts(m, &o, &gr, &err);
    if (rc)
        fprintf(stderr, "%s: %s\n", spec, err.msg);
    ASSERT_OK(rc);
    memset(&o, 0, sizeof o);
    rc = bs_graph_load_buffer(out, out_len, ".", &o, &ge, &err);
    if (rc)
        fprintf(stderr, "%s (exported): %s\n", spec, err.msg);
    ASSERT_OK(rc);
    ASSERT_OK(bs_graph_set_input(gr, 0, BS_DT_FLOAT, xin, xbytes, &err));
    ASSERT_OK(bs_graph_set_input(ge, 0, BS_DT_FLOAT, xin, xbytes, &err));
    ASSERT_OK(bs_graph_run(gr, &err));
    ASSERT_OK(bs_graph_run(ge, &err));
    const bs_tensor_t *yr = bs_graph_output(gr, 0), *ye = bs_graph_output(ge, 0);
    ASSERT_EQ(bs_shape_numel(&yr->shape), bs_shape_numel(&ye->shape));
    for (int64_t i = 0; i < bs_shape_numel(&yr->shape); i++) {
        float a = ((const float *)yr->data)[i], b = ((const float *)ye->data)[i];
        ASSERT_DBL_NEAR(a, b, tol * (1 + fabs(a)));
    }
    bs_graph_free(&gr);
    bs_graph_free(&ge);
    bs_free(out);
    bs_free(buf);
}

BS_TEST(conv_transpose)
{
    /* x [1,2,3,3] -> ConvTranspose "ct" W [2 (C), 3 (M), 2, 2] + bias */
    t_model_t *m = t_new(13);
    float w[24], bias[3] = {0.5f, -0.25f, 0.125f}, xin[18];
    for (int i = 0; i < 24; i++)
        w[i] = (float)((i * 7) % 11) - 5.0f + 0.1f * (float)i;
    for (int i = 0; i < 18; i++)
        xin[i] = sinf((float)i);
    t_input(m, "x", &(bs_shape_t){.rank = 4, .d = {1, 2, 3, 3}});
    t_init(m, "W", &(bs_shape_t){.rank = 4, .d = {2, 3, 2, 2}}, w);
    t_init(m, "B", &(bs_shape_t){.rank = 1, .d = {3}}, bias);
    int k = t_node(m, "ConvTranspose", "ct", "x,W,B", "y");
    t_output(m, "y");
    void *buf;
    size_t len;
    s_pack(m, &buf, &len);
    Onnx__ModelProto *mp = s_export_buf(buf, len, "*=w5a32", NULL, 0, NULL);
    s_dq_t d = s_get_dq(mp->graph, s_node(mp->graph, "ct"), 1);
    ASSERT_EQ(1, d.axis);
    ASSERT_EQ(3, s_numel(d.scale));
    /* row m = output channel m, in the engine's order: tap-major, then input channel c */
    for (int r = 0; r < 3; r++) {
        float row[8], s;
        for (int c = 0; c < 2; c++)
            for (int e = 0; e < 4; e++)
                row[e * 2 + c] = w[(c * 3 + r) * 4 + e];
        bs_qweight_t ref;
        bs_err_t err = {0};
        ASSERT_OK(bs_quantize_weights(row, 8, 1, 1, 8, 5, BS_QSCALE_MSE, &ref, &err));
        memcpy(&s, d.scale->raw_data.data + 4 * r, 4);
        ASSERT(s == ref.scales[0]);
        int8_t codes[8];
        bs_qweight_unpack_row(&ref, 0, 0, 8, codes);
        for (int c = 0; c < 2; c++)
            for (int e = 0; e < 4; e++)
                ASSERT_EQ(codes[e * 2 + c], (int8_t)d.q->raw_data.data[(c * 3 + r) * 4 + e]);
        bs_qweight_free(&ref);
    }
    onnx__model_proto__free_unpacked(mp, NULL);
    bs_free(buf);
    /* the engine agrees; at a8 the bias stays float (the engine adds it after col2im) */
    bs_act_table_t act = {0};
    static char *names[] = {"x"};
    bs_qparam_t qp = {.scale = 2.0f / 255.0f, .zero_point = 128};
    act.n = 1;
    act.names = names;
    act.q = &qp;
    s_engine_vs_export(m, "ct=w5a32", NULL, xin, sizeof xin, 1e-5);
    s_engine_vs_export(m, "ct=w8a8", &act, xin, sizeof xin, 1e-5);
    s_pack(m, &buf, &len);
    mp = s_export_buf(buf, len, "*=w8a8", &act, 0, NULL);
    ASSERT_STR_EQ("B", s_node(mp->graph, "ct")->input[2]);
    onnx__model_proto__free_unpacked(mp, NULL);
    bs_free(buf);
    /* group 2: per-channel scales do not fit one axis */
    t_attr_int(m, k, "group", 2);
    s_pack(m, &buf, &len);
    bs_err_t err = {0};
    void *o = NULL;
    size_t ol;
    ASSERT_EQ(BS_EUNSUPPORTED,
              bs_export_buffer(buf, len, ".", "*=w8a32", NULL, NULL, &o, &ol, NULL, &err));
    ASSERT_CONTAINS(err.msg, "layer 'ct'");
    ASSERT_CONTAINS(err.msg, "group 2");
    mp = s_export_buf(buf, len, "*=w16a32", NULL, 0, NULL); /* fp16 is fine */
    ASSERT_EQ(1, s_count_op(mp->graph, "Cast"));
    onnx__model_proto__free_unpacked(mp, NULL);
    bs_free(buf);
    t_free(m);
}

BS_TEST(gemm_alpha_beta_as_the_engine)
{
    /* x [2,4] -> Gemm (B [4,3], transB 0, C, alpha 0.7, beta 1.7) -> Relu */
    float xin[8], b[12], c[3] = {0.3f, -0.2f, 0.1f};
    for (int i = 0; i < 12; i++)
        b[i] = cosf((float)i * 1.3f) * (i == 5 ? 4.0f : 1.0f);
    for (int i = 0; i < 8; i++)
        xin[i] = sinf((float)i * 0.9f);
    bs_act_table_t act = {0};
    static char *names[] = {"x"};
    bs_qparam_t qp = {.scale = 2.0f / 255.0f, .zero_point = 127};
    act.n = 1;
    act.names = names;
    act.q = &qp;
    for (int bc = 0; bc < 2; bc++) { /* C per column, then one value broadcast */
        t_model_t *m = t_new(13);
        t_input(m, "x", &(bs_shape_t){.rank = 2, .d = {2, 4}});
        t_init(m, "B", &(bs_shape_t){.rank = 2, .d = {4, 3}}, b);
        t_init(m, "C", &(bs_shape_t){.rank = 1, .d = {bc ? 1 : 3}}, c);
        int k = t_node(m, "Gemm", "g", "x,B,C", "gy");
        t_attr_float(m, k, "alpha", 0.7f);
        t_attr_float(m, k, "beta", 1.7f);
        t_node(m, "Relu", "r", "gy", "y");
        t_output(m, "y");
        s_engine_vs_export(m, "g=w6a32", NULL, xin, sizeof xin, 1e-5);
        s_engine_vs_export(m, "g=w16a8", &act, xin, sizeof xin, 1e-5);
        s_engine_vs_export(m, "g=w4a8", &act, xin, sizeof xin, 1e-5);
        void *buf;
        size_t len;
        s_pack(m, &buf, &len);
        Onnx__ModelProto *mp = s_export_buf(buf, len, "g=w4a8", &act, 0, NULL);
        const Onnx__NodeProto *g = s_node(mp->graph, "g");
        ASSERT_STR_EQ("g.bias_dq", g->input[2]);
        for (size_t i = 0; i < g->n_attribute; i++) /* both folded into the values */
            ASSERT(strcmp(g->attribute[i]->name, "alpha") &&
                   strcmp(g->attribute[i]->name, "beta"));
        ASSERT_EQ(1, s_get_dq(mp->graph, g, 1).axis); /* B is [K, N] */
        onnx__model_proto__free_unpacked(mp, NULL);
        bs_free(buf);
        t_free(m);
    }
}

BS_TEST(external_data_is_inlined)
{
    const char *dir = bs_test_tmpdir();
    char path[512], wpath[512], out[512];
    snprintf(wpath, sizeof wpath, "%s/weights.bin", dir);
    snprintf(path, sizeof path, "%s/ext.onnx", dir);
    snprintf(out, sizeof out, "%s/ext.q.onnx", dir);
    bs_err_t err = {0};
    char blob[16 + 24];
    memset(blob, 0x55, 16);
    memcpy(blob + 16, s_w12, 24); /* the first 6 values, at offset 16 */
    ASSERT_OK(bs_write_file(wpath, blob, sizeof blob, &err));
    t_model_t *m = t_new(13);
    t_input(m, "x", &(bs_shape_t){.rank = 2, .d = {1, 3}});
    t_init(m, "M", &(bs_shape_t){.rank = 2, .d = {3, 2}}, s_w12);
    t_node(m, "MatMul", "mm", "x,M", "z");
    t_output(m, "z");
    Onnx__TensorProto *t = &m->init[0];
    Onnx__StringStringEntryProto e[3], *ep[3] = {&e[0], &e[1], &e[2]};
    for (int i = 0; i < 3; i++)
        onnx__string_string_entry_proto__init(&e[i]);
    e[0].key = "location";
    e[0].value = "weights.bin";
    e[1].key = "offset";
    e[1].value = "16";
    e[2].key = "length";
    e[2].value = "24";
    t->n_float_data = 0;
    t->has_data_location = 1;
    t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    t->n_external_data = 3;
    t->external_data = ep;
    void *buf;
    size_t len;
    s_pack(m, &buf, &len);
    ASSERT_OK(bs_write_file(path, buf, len, &err));
    /* w32: the weight is copied inline as it was */
    bs_export_info_t info;
    ASSERT_OK(bs_export_model(path, NULL, NULL, NULL, out, &info, &err));
    char *ob;
    size_t ol;
    s_read(out, &ob, &ol);
    Onnx__ModelProto *mp = s_unpack(ob, ol);
    const Onnx__TensorProto *it = s_init(mp->graph, "M");
    ASSERT(it && it->has_raw_data && !it->n_external_data);
    ASSERT(!it->has_data_location ||
           it->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__DEFAULT);
    ASSERT_EQ(24, it->raw_data.len);
    ASSERT(!memcmp(it->raw_data.data, s_w12, 24));
    onnx__model_proto__free_unpacked(mp, NULL);
    bs_free(ob);
    bs_export_info_free(&info);
    /* w8: quantized from the external values */
    ASSERT_OK(bs_export_model(path, "*=w8a32", NULL, NULL, out, NULL, &err));
    /* a location outside the model's directory, and a short file: refused */
    e[0].value = "../weights.bin";
    bs_free(buf);
    s_pack(m, &buf, &len);
    ASSERT_OK(bs_write_file(path, buf, len, &err));
    ASSERT_EQ(BS_EMODEL, bs_export_model(path, NULL, NULL, NULL, out, NULL, &err));
    ASSERT_CONTAINS(err.msg, "relative location");
    e[0].value = "weights.bin";
    e[1].value = "20";
    bs_free(buf);
    s_pack(m, &buf, &len);
    ASSERT_OK(bs_write_file(path, buf, len, &err));
    ASSERT_EQ(BS_EMODEL, bs_export_model(path, NULL, NULL, NULL, out, NULL, &err));
    ASSERT_CONTAINS(err.msg, "shorter");
    bs_free(buf);
    t->n_external_data = 0; /* the entries are on this stack frame */
    t_free(m);
}

BS_TEST(every_allocation_failure_is_clean)
{
    t_model_t *m = s_conv_bn_model();
    void *buf;
    size_t len;
    s_pack(m, &buf, &len);
    bs_act_table_t act = {0};
    static char *names[] = {"x"};
    bs_qparam_t qp = {.scale = 0.05f, .zero_point = 100};
    act.n = 1;
    act.names = names;
    act.q = &qp;
    int done = 0, failures = 0;
    for (long n = 0; n < 5000 && !done; n++) {
        void *o = NULL;
        size_t ol = 0;
        bs_export_info_t info;
        bs_err_t err = {0};
        bs_alloc_fail_after(n);
        int rc = bs_export_buffer(buf, len, ".", "c=w4a8", NULL, &act, &o, &ol, &info, &err);
        bs_alloc_fail_after(-1);
        if (rc == 0) {
            done = 1;
            ASSERT(o && ol > 0);
            bs_free(o);
            bs_export_info_free(&info);
        } else {
            ASSERT_EQ(BS_ENOMEM, rc);
            ASSERT(!o && !ol && !info.assignment);
            failures++;
        }
    }
    ASSERT(done);
    ASSERT(failures > 10);
    bs_free(buf);
    t_free(m);
}

#define TESTS(X)                                                                                 \
    X(all_fp32_is_the_model)                                                                     \
    X(w8a8_is_qdq_with_the_engines_codes)                                                        \
    X(code_ranges_per_width)                                                                     \
    X(w16_is_float16_and_cast)                                                                   \
    X(mixed_spec_shares_nothing_it_should_not)                                                   \
    X(minmax_scales_follow_the_option)                                                           \
    X(bad_specs_and_missing_calibration)                                                         \
    X(writes_the_file)                                                                           \
    X(engine_agrees_a32)                                                                         \
    X(engine_agrees_a8)                                                                          \
    X(constant_weight_stays_float_with_a_note)                                                   \
    X(odd_weights_are_refused_by_name)                                                           \
    X(opset_raised_or_refused)                                                                   \
    X(batchnorm_folded_as_the_engine_does)                                                       \
    X(conv_transpose)                                                                            \
    X(gemm_alpha_beta_as_the_engine)                                                             \
    X(external_data_is_inlined)                                                                  \
    X(every_allocation_failure_is_clean)
BS_TEST_MAIN(TESTS)

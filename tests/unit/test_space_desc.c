/*
 * test_space_desc.c - bs_space_describe (searcher/bs_space_desc.c) on the two bundled models.
 *
 * The expected descriptions are computed here without the engine: the ONNX file is unpacked
 * with protobuf-c, each weight's dimensions are read from its initializer, and a small shape
 * walker follows the spatial sizes through the graph (Conv and pooling by the ONNX output-size
 * formula from kernel, strides, pads and dilations; GlobalAveragePool to 1x1; Flatten and
 * Reshape to [N, rest]; every other op keeps its first input's shape). That is enough for
 * these two models, whose graphs are chains with residual Adds. fmnist-cnn is also checked
 * against figures from its training script (tools/train_fmnist_cnn.py: Conv2d(1, 16, 3,
 * padding=1), 2x2 max-pool, Conv2d(16, 32, 3, padding=1), pool, Linear(1568, 64),
 * Linear(64, 10)), and MobileNet's total against models/mobilenetv2-096.json (17,618,240 MACs,
 * counted by PyTorch hooks in tools/make_mobilenet.py). A missing or garbage model file fails
 * with the file named and leaves every description unknown.
 */
#include <stdio.h>
#include <string.h>

#include "bs_alloc.h"
#include "bs_config.h"
#include "bs_model.h"
#include "bs_test.h"
#include "bs_util.h"
#include "onnx.pb-c.h"

#define S_MAX_VALS 1024

typedef struct s_val {
    const char *name;
    int rank;
    int64_t d[4];
} s_val_t;

typedef struct s_expect {
    char name[128];
    bs_layer_desc_t d;
} s_expect_t;

typedef struct s_walk {
    int n;
    s_val_t v[S_MAX_VALS];
    int n_exp;
    s_expect_t exp[128];
} s_walk_t;

static s_val_t *s_find(s_walk_t *w, const char *name)
{
    for (int i = 0; i < w->n; i++)
        if (!strcmp(w->v[i].name, name))
            return &w->v[i];
    return NULL;
}

static const Onnx__TensorProto *s_init(const Onnx__GraphProto *g, const char *name)
{
    for (size_t i = 0; i < g->n_initializer; i++)
        if (!strcmp(g->initializer[i]->name, name))
            return g->initializer[i];
    return NULL;
}

static const Onnx__AttributeProto *s_attr(const Onnx__NodeProto *n, const char *name)
{
    for (size_t i = 0; i < n->n_attribute; i++)
        if (!strcmp(n->attribute[i]->name, name))
            return n->attribute[i];
    return NULL;
}

static int64_t s_attr_i(const Onnx__NodeProto *n, const char *name, int k, int64_t dflt)
{
    const Onnx__AttributeProto *a = s_attr(n, name);
    if (!a)
        return dflt;
    if (a->n_ints > 0)
        return (size_t)k < a->n_ints ? a->ints[k] : dflt;
    return a->has_i ? a->i : dflt;
}

/* Output spatial size of a window op along axis k (0 = H, 1 = W). */
static int64_t s_out_size(const Onnx__NodeProto *n, int64_t in, int64_t kernel, int k)
{
    int64_t s = s_attr_i(n, "strides", k, 1), dil = s_attr_i(n, "dilations", k, 1);
    int64_t p = s_attr_i(n, "pads", k, 0) + s_attr_i(n, "pads", k + 2, 0);
    return (in + p - dil * (kernel - 1) - 1) / s + 1;
}

static void s_walk_model(const char *path, s_walk_t *w)
{
    char *buf = NULL;
    size_t len = 0;
    bs_err_t err = {0};
    ASSERT_OK(bs_read_file(path, (size_t)64 << 20, &buf, &len, &err));
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, len, (const uint8_t *)buf);
    ASSERT(mp && mp->graph);
    const Onnx__GraphProto *g = mp->graph;
    memset(w, 0, sizeof *w);
    for (size_t i = 0; i < g->n_input; i++) {
        if (s_init(g, g->input[i]->name))
            continue;
        const Onnx__TensorShapeProto *sh = g->input[i]->type->tensor_type->shape;
        s_val_t *v = &w->v[w->n++];
        v->name = g->input[i]->name;
        v->rank = (int)sh->n_dim;
        for (int k = 0; k < v->rank && k < 4; k++)
            v->d[k] = sh->dim[k]->value_case ==
                              ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE
                          ? sh->dim[k]->dim_value
                          : 1;
    }
    for (size_t i = 0; i < g->n_node; i++) {
        const Onnx__NodeProto *n = g->node[i];
        if (n->n_input < 1 || n->n_output < 1 || !strcmp(n->op_type, "Constant"))
            continue;
        s_val_t *x = s_find(w, n->input[0]);
        if (!x)
            continue; /* shape arithmetic (Shape, Gather, ...): not followed */
        ASSERT(w->n < S_MAX_VALS);
        s_val_t y = {.name = n->output[0], .rank = x->rank};
        memcpy(y.d, x->d, sizeof y.d);
        const Onnx__TensorProto *wt = n->n_input > 1 ? s_init(g, n->input[1]) : NULL;
        char name[128];
        snprintf(name, sizeof name, "%s", n->name && n->name[0] ? n->name : "");
        if (!name[0])
            snprintf(name, sizeof name, "%.40s_%zu", n->op_type, i);
        if (!strcmp(n->op_type, "Conv")) {
            ASSERT(wt && wt->n_dims == 4 && x->rank == 4);
            int64_t kh = wt->dims[2], kw = wt->dims[3], group = s_attr_i(n, "group", 0, 1);
            y.d[1] = wt->dims[0];
            y.d[2] = s_out_size(n, x->d[2], kh, 0);
            y.d[3] = s_out_size(n, x->d[3], kw, 1);
            s_expect_t *e = &w->exp[w->n_exp++];
            snprintf(e->name, sizeof e->name, "%s", name);
            e->d.known = 1;
            e->d.kind = group > 1 && group == x->d[1] ? BS_LAYER_DEPTHWISE : BS_LAYER_CONV;
            e->d.in_ch = x->d[1];
            e->d.out_ch = wt->dims[0];
            e->d.kernel = kh * kw;
            e->d.stride = s_attr_i(n, "strides", 0, 1) > s_attr_i(n, "strides", 1, 1)
                              ? s_attr_i(n, "strides", 0, 1)
                              : s_attr_i(n, "strides", 1, 1);
            e->d.macs = y.d[1] * y.d[2] * y.d[3] * wt->dims[1] * kh * kw;
        } else if (!strcmp(n->op_type, "Gemm") || !strcmp(n->op_type, "MatMul")) {
            ASSERT(wt && wt->n_dims == 2 && x->rank == 2);
            int tb = !strcmp(n->op_type, "Gemm") && s_attr_i(n, "transB", 0, 0);
            int64_t k = tb ? wt->dims[1] : wt->dims[0], nn = tb ? wt->dims[0] : wt->dims[1];
            ASSERT_EQ(x->d[1], k);
            y.d[1] = nn;
            s_expect_t *e = &w->exp[w->n_exp++];
            snprintf(e->name, sizeof e->name, "%s", name);
            e->d.known = 1;
            e->d.kind = BS_LAYER_FC;
            e->d.in_ch = k;
            e->d.out_ch = nn;
            e->d.kernel = 1;
            e->d.stride = 1;
            e->d.macs = x->d[0] * k * nn;
        } else if (!strcmp(n->op_type, "MaxPool") || !strcmp(n->op_type, "AveragePool")) {
            y.d[2] = s_out_size(n, x->d[2], s_attr_i(n, "kernel_shape", 0, 1), 0);
            y.d[3] = s_out_size(n, x->d[3], s_attr_i(n, "kernel_shape", 1, 1), 1);
        } else if (!strcmp(n->op_type, "GlobalAveragePool")) {
            y.d[2] = y.d[3] = 1;
        } else if (!strcmp(n->op_type, "Flatten") || !strcmp(n->op_type, "Reshape")) {
            int64_t rest = 1;
            for (int k = 1; k < x->rank; k++)
                rest *= x->d[k];
            y.rank = 2;
            y.d[1] = rest;
        }
        w->v[w->n++] = y;
    }
    onnx__model_proto__free_unpacked(mp, NULL);
    bs_free(buf);
    /* names point into the freed model: only the expectations are used from here on */
    w->n = 0;
}

static void s_space(const char *path, bs_space_t *s)
{
    bs_model_info_t mi;
    bs_config_t cfg;
    bs_err_t err = {0};
    memset(&cfg, 0, sizeof cfg);
    ASSERT_OK(bs_model_info_load(path, &mi, &err));
    ASSERT_OK(bs_space_build(&cfg, &mi, s, &err));
    bs_model_info_free(&mi);
}

static void s_check_model(const char *rel, int64_t *total_macs)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", BS_SRC_DIR, rel);
    static s_walk_t w;
    s_walk_model(path, &w);
    bs_space_t s;
    bs_err_t err = {0};
    s_space(path, &s);
    ASSERT_EQ(w.n_exp, s.n_layers);
    ASSERT_OK(bs_space_describe(&s, path, &err));
    *total_macs = 0;
    for (int i = 0; i < s.n_layers; i++) {
        const bs_space_layer_t *l = &s.layers[i];
        const bs_layer_desc_t *e = &w.exp[i].d;
        ASSERT_STR_EQ(w.exp[i].name, l->name);
        ASSERT_EQ(1, l->desc.known);
        ASSERT_EQ(e->kind, l->desc.kind);
        ASSERT_EQ(e->in_ch, l->desc.in_ch);
        ASSERT_EQ(e->out_ch, l->desc.out_ch);
        ASSERT_EQ(e->kernel, l->desc.kernel);
        ASSERT_EQ(e->stride, l->desc.stride);
        ASSERT_EQ(e->macs, l->desc.macs);
        *total_macs += l->desc.macs;
    }
    bs_space_free(&s);
}

static const bs_space_layer_t *s_layer(const bs_space_t *s, const char *name)
{
    for (int i = 0; i < s->n_layers; i++)
        if (!strcmp(s->layers[i].name, name))
            return &s->layers[i];
    bs_test_fail(__FILE__, __LINE__, "no layer '%s' in the space", name);
}

BS_TEST(fmnist_matches_walker)
{
    int64_t total = 0;
    s_check_model("models/fmnist-cnn.onnx", &total);
    ASSERT_EQ(112896 + 903168 + 100352 + 640, total);
}

BS_TEST(fmnist_training_script_figures)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/models/fmnist-cnn.onnx", BS_SRC_DIR);
    bs_space_t s;
    bs_err_t err = {0};
    s_space(path, &s);
    ASSERT_EQ(4, s.n_layers);
    ASSERT_OK(bs_space_describe(&s, path, &err));
    const bs_space_layer_t *c1 = s_layer(&s, "conv1"), *c2 = s_layer(&s, "conv2");
    const bs_space_layer_t *f1 = s_layer(&s, "fc1"), *f2 = s_layer(&s, "fc2");
    ASSERT_EQ(BS_LAYER_CONV, c1->desc.kind);
    ASSERT_EQ(1, c1->desc.in_ch);
    ASSERT_EQ(16, c1->desc.out_ch);
    ASSERT_EQ(9, c1->desc.kernel);
    ASSERT_EQ(1, c1->desc.stride);
    ASSERT_EQ(28 * 28 * 16 * 1 * 9, c1->desc.macs);
    ASSERT_EQ(BS_LAYER_CONV, c2->desc.kind);
    ASSERT_EQ(16, c2->desc.in_ch);
    ASSERT_EQ(32, c2->desc.out_ch);
    ASSERT_EQ(14 * 14 * 32 * 16 * 9, c2->desc.macs);
    ASSERT_EQ(BS_LAYER_FC, f1->desc.kind);
    ASSERT_EQ(32 * 7 * 7, f1->desc.in_ch);
    ASSERT_EQ(64, f1->desc.out_ch);
    ASSERT_EQ(1, f1->desc.kernel);
    ASSERT_EQ(1, f1->desc.stride);
    ASSERT_EQ(1568 * 64, f1->desc.macs);
    ASSERT_EQ(BS_LAYER_FC, f2->desc.kind);
    ASSERT_EQ(64, f2->desc.in_ch);
    ASSERT_EQ(10, f2->desc.out_ch);
    ASSERT_EQ(640, f2->desc.macs);
    bs_space_free(&s);
}

BS_TEST(mobilenet_matches_walker)
{
    int64_t total = 0;
    s_check_model("models/mobilenetv2-096.onnx", &total);
    ASSERT_EQ(17618240, total); /* models/mobilenetv2-096.json "macs" */
    char path[1024];
    snprintf(path, sizeof path, "%s/models/mobilenetv2-096.onnx", BS_SRC_DIR);
    bs_space_t s;
    bs_err_t err = {0};
    s_space(path, &s);
    ASSERT_OK(bs_space_describe(&s, path, &err));
    int dw = 0, conv = 0, fc = 0, s2 = 0;
    for (int i = 0; i < s.n_layers; i++) {
        const bs_layer_desc_t *d = &s.layers[i].desc;
        dw += d->kind == BS_LAYER_DEPTHWISE;
        conv += d->kind == BS_LAYER_CONV;
        fc += d->kind == BS_LAYER_FC;
        s2 += d->stride == 2;
        if (d->kind == BS_LAYER_DEPTHWISE) {
            ASSERT_EQ(d->in_ch, d->out_ch);
            ASSERT_EQ(9, d->kernel);
        }
    }
    ASSERT_EQ(17, dw);   /* one per inverted residual block */
    ASSERT_EQ(35, conv); /* stem, 16 expansions (the first block has none), 17 projections,
                            the last 1x1 */
    ASSERT_EQ(1, fc);
    ASSERT_EQ(5, s2);    /* stem and four stride-2 blocks: 96 -> 3 */
    bs_space_free(&s);
}

static void s_check_failure(const char *path, int want, const char *hint)
{
    char good[1024];
    snprintf(good, sizeof good, "%s/models/fmnist-cnn.onnx", BS_SRC_DIR);
    bs_space_t s;
    s_space(good, &s);
    bs_err_t err = {0};
    ASSERT_OK(bs_space_describe(&s, good, &err));
    ASSERT_EQ(1, s.layers[0].desc.known);
    int rc = bs_space_describe(&s, path, &err);
    ASSERT_EQ(want, rc);
    ASSERT_EQ(want, err.code);
    ASSERT_CONTAINS(err.msg, path);
    ASSERT_CONTAINS(err.msg, hint);
    for (int i = 0; i < s.n_layers; i++) {
        ASSERT_EQ(0, s.layers[i].desc.known);
        ASSERT_EQ(0, s.layers[i].desc.macs);
    }
    bs_space_free(&s);
}

BS_TEST(missing_model)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/nothere.onnx", bs_test_tmpdir());
    s_check_failure(path, BS_EIO, "cannot open");
}

BS_TEST(garbage_model)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/garbage.onnx", bs_test_tmpdir());
    static const char junk[] = "\xff\xff\xff\xff this is not a protobuf \x01\x02";
    bs_err_t err = {0};
    ASSERT_OK(bs_write_file(path, junk, sizeof junk - 1, &err));
    s_check_failure(path, BS_EMODEL, "ONNX");
}

BS_TEST(bad_arguments)
{
    bs_err_t err = {0};
    ASSERT_EQ(BS_EINVAL, bs_space_describe(NULL, "x.onnx", &err));
    bs_space_t s;
    memset(&s, 0, sizeof s);
    ASSERT_EQ(BS_EINVAL, bs_space_describe(&s, NULL, &err));
}

#define TESTS(X)                                                                                 \
    X(fmnist_matches_walker)                                                                     \
    X(fmnist_training_script_figures)                                                            \
    X(mobilenet_matches_walker)                                                                  \
    X(missing_model)                                                                             \
    X(garbage_model)                                                                             \
    X(bad_arguments)
BS_TEST_MAIN(TESTS)

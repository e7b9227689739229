/*
 * bs_model.c - the searcher's thin view of an ONNX model: its weight-bearing layers.
 *
 * The file is unpacked with protobuf-c (code generated from Debian's onnx.proto at build
 * time). We collect the constant tensors (graph initializers and Constant nodes' "value"
 * attributes) by name, then walk the nodes in file order, which ONNX requires to be
 * topological, and keep every Conv, ConvTranspose and Gemm node, and every MatMul whose second
 * input is constant. A layer's parameter count is the element count of its constant inputs
 * (weight and bias). Dimensions are checked: a negative dimension or an element count past
 * 2^53 is a malformed model, reported with the tensor's name.
 */
#include "bs_model.h"
#include "bs_alloc.h"
#include "bs_util.h"

#include <stdio.h>
#include <string.h>

#include "onnx.pb-c.h"

typedef struct s_const {
    const char *name;
    int64_t elems;
} s_const_t;

static int s_tensor_elems(const Onnx__TensorProto *t, int64_t *out, bs_err_t *err)
{
    int64_t n = 1;
    for (size_t i = 0; i < t->n_dims; i++) {
        int64_t d = t->dims[i];
        if (d < 0 || (d > 0 && n > ((int64_t)1 << 53) / d))
            return bs_err_set(err, BS_EMODEL, "tensor '%s': bad dimension %lld at axis %zu",
                              t->name ? t->name : "", (long long)d, i);
        n *= d;
    }
    *out = n;
    return 0;
}

static int64_t s_lookup(const s_const_t *c, size_t n, const char *name)
{
    if (!name || !*name)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (c[i].name && strcmp(c[i].name, name) == 0)
            return c[i].elems;
    return -1;
}

static int s_is_weight_op(const char *op)
{
    return !strcmp(op, "Conv") || !strcmp(op, "ConvTranspose") || !strcmp(op, "Gemm") ||
           !strcmp(op, "MatMul");
}

void bs_model_info_free(bs_model_info_t *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->n_layers; i++) {
        bs_free(m->layers[i].name);
        bs_free(m->layers[i].op_type);
    }
    bs_free(m->layers);
    bs_free(m->graph_name);
    memset(m, 0, sizeof *m);
}

static int s_collect(const Onnx__GraphProto *g, bs_model_info_t *out, bs_err_t *err)
{
    size_t cap = g->n_initializer + g->n_node;
    s_const_t *consts = bs_calloc(cap ? cap : 1, sizeof *consts);
    size_t nc = 0;
    int rc = 0;
    if (!consts)
        return bs_err_set(err, BS_ENOMEM, "out of memory");
    for (size_t i = 0; i < g->n_initializer && rc == 0; i++) {
        const Onnx__TensorProto *t = g->initializer[i];
        int64_t e = 0;
        if ((rc = s_tensor_elems(t, &e, err)) == 0) {
            consts[nc].name = t->name;
            consts[nc++].elems = e;
            out->total_params += e;
        }
    }
    for (size_t i = 0; i < g->n_node && rc == 0; i++) {
        const Onnx__NodeProto *n = g->node[i];
        if (!n->op_type || strcmp(n->op_type, "Constant") != 0 || n->n_output < 1)
            continue;
        for (size_t a = 0; a < n->n_attribute; a++) {
            const Onnx__AttributeProto *at = n->attribute[a];
            int64_t e = 0;
            if (at->name && !strcmp(at->name, "value") && at->t &&
                (rc = s_tensor_elems(at->t, &e, err)) == 0) {
                consts[nc].name = n->output[0];
                consts[nc++].elems = e;
            }
        }
    }
    out->layers = bs_calloc(g->n_node ? g->n_node : 1, sizeof *out->layers);
    if (rc == 0 && !out->layers)
        rc = bs_err_set(err, BS_ENOMEM, "out of memory");
    for (size_t i = 0; i < g->n_node && rc == 0; i++) {
        const Onnx__NodeProto *n = g->node[i];
        if (!n->op_type)
            continue;
        if (!s_is_weight_op(n->op_type) || n->n_input < 2)
            continue;
        int64_t w = s_lookup(consts, nc, n->input[1]);
        if (w < 0)
            continue; /* a MatMul of two activations: not a weight-bearing layer */
        int64_t b = n->n_input >= 3 ? s_lookup(consts, nc, n->input[2]) : -1;
        bs_layer_info_t *l = &out->layers[out->n_layers];
        char fallback[64];
        snprintf(fallback, sizeof fallback, "%.40s_%zu", n->op_type, i);
        l->name = bs_strdup(n->name && n->name[0] ? n->name : fallback);
        l->op_type = bs_strdup(n->op_type);
        l->n_params = w + (b > 0 ? b : 0);
        out->n_layers++;
        if (!l->name || !l->op_type)
            rc = bs_err_set(err, BS_ENOMEM, "out of memory");
    }
    for (int i = 0; i < out->n_layers && rc == 0; i++)
        for (int j = 0; j < i && rc == 0; j++)
            if (strcmp(out->layers[i].name, out->layers[j].name) == 0)
                rc = bs_err_set(err, BS_EMODEL, "two weight-bearing nodes are named '%s'",
                                out->layers[i].name);
    bs_free(consts);
    return rc;
}

int bs_model_info_parse(const void *buf, size_t len, bs_model_info_t *out, bs_err_t *err)
{
    memset(out, 0, sizeof *out);
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, len, buf);
    if (!mp)
        return bs_err_set(err, BS_EMODEL, "not a valid ONNX model (protobuf decoding failed: "
                                          "truncated or corrupted file?)");
    int rc = 0;
    if (!mp->graph) {
        rc = bs_err_set(err, BS_EMODEL, "ONNX model has no graph");
        goto done;
    }
    for (size_t i = 0; i < mp->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = mp->opset_import[i];
        if ((!o->domain || !o->domain[0] || !strcmp(o->domain, "ai.onnx")) && o->has_version)
            out->opset = o->version;
    }
    out->n_nodes = (int)mp->graph->n_node;
    out->graph_name = bs_strdup(mp->graph->name ? mp->graph->name : "");
    if (!out->graph_name) {
        rc = bs_err_set(err, BS_ENOMEM, "out of memory");
        goto done;
    }
    rc = s_collect(mp->graph, out, err);
    if (rc == 0 && out->n_layers == 0)
        rc = bs_err_set(err, BS_EMODEL, "the model has no weight-bearing layer (Conv, "
                                        "ConvTranspose, Gemm, MatMul with a constant weight)");
done:
    onnx__model_proto__free_unpacked(mp, NULL);
    if (rc)
        bs_model_info_free(out);
    return rc;
}

int bs_model_info_load(const char *path, bs_model_info_t *out, bs_err_t *err)
{
    char *buf;
    size_t len;
    memset(out, 0, sizeof *out);
    int rc = bs_read_file(path, BS_MODEL_MAX_BYTES, &buf, &len, err);
    if (rc)
        return rc;
    rc = bs_model_info_parse(buf, len, out, err);
    bs_free(buf);
    if (rc)
        bs_err_prefix(err, "%s", path);
    return rc;
}

/*
 * bs_space_desc.c - what each layer of a search space is (kind, channels, kernel, stride,
 * multiply-accumulates), read from the engine's planned graph, for policies that learn from
 * layer shapes (HAQ's state vector).
 *
 * bs_space_describe loads the model with the engine at fp32 (bs_graph_load: every shape made
 * static from the model's declared input shapes, symbolic dimensions such as the batch set to
 * 1, BatchNormalization and activations fused), takes the engine's weight layers
 * (bs_graph_weight_layers, graph order) and matches them by name to the space's layers, which
 * common/bs_model.c names the same way (the node name, or "<op_type>_<index>"). For each match
 * it reads the shapes of the node's input, weight and output tensors, which the planner keeps
 * even where it freed a weight's float copy after packing:
 *   Conv           in_ch = x[1], out_ch = w[0], kernel = product of w[2..], MACs per sample =
 *                  output elements / batch x w[1] (= in_ch / group) x kernel; depthwise when
 *                  group == in_ch > 1, otherwise (group 1 or grouped) a plain Conv;
 *   ConvTranspose  in_ch = x[1], out_ch = w[1] x group, MACs per sample = input elements /
 *                  batch x w[1] x kernel (every input element meets out_ch / group filters);
 *   Gemm, MatMul   in_ch = K, out_ch = N (Gemm's transB read), kernel 1, stride 1, MACs =
 *                  output elements x K, i.e. M x K x N at the batch the graph was planned with
 *                  (1 where the model leaves the batch free).
 * stride is the largest of the "strides" attribute (1 when absent). A space layer with no
 * engine counterpart (a MatMul the engine folded away) keeps desc.known = 0. When the model
 * cannot be loaded or planned every desc is zeroed: BS_EIO for a file that cannot be read
 * (missing included), BS_EMODEL for one the engine rejects, err naming the file either way.
 */
#include "bs_config.h"

#include <stdio.h>
#include <string.h>

#include "bs_alloc.h"
#include "bs_graph.h"

/* Largest value of an ints attribute, or 1 when absent or empty. */
static int64_t s_max_attr(const bs_node_t *n, const char *name)
{
    const int64_t *v = NULL;
    int k = bs_attr_ints(n, name, &v);
    int64_t m = 1;
    for (int i = 0; i < k; i++)
        if (v[i] > m)
            m = v[i];
    return m;
}

/* Fills d from node n of g; 0 when the shapes are as expected, else BS_EMODEL (d untouched). */
static int s_describe_node(bs_graph_t *g, const bs_node_t *n, bs_layer_desc_t *d)
{
    const bs_tensor_t *x = bs_node_input(g, n, 0), *w = bs_node_input(g, n, 1);
    const bs_tensor_t *y = bs_node_output(g, n, 0);
    if (!x || !w || !y || !x->has_shape || !w->has_shape || !y->has_shape)
        return BS_EMODEL;
    bs_layer_desc_t r;
    memset(&r, 0, sizeof r);
    int conv = strcmp(n->op_type, "Conv") == 0, convt = strcmp(n->op_type, "ConvTranspose") == 0;
    if (conv || convt) {
        if (x->shape.rank < 3 || w->shape.rank != x->shape.rank || y->shape.rank != x->shape.rank)
            return BS_EMODEL;
        int64_t group = bs_attr_int(n, "group", 1), kernel = 1;
        for (int i = 2; i < w->shape.rank; i++)
            kernel *= w->shape.d[i];
        int64_t batch = x->shape.d[0] > 0 ? x->shape.d[0] : 1;
        r.in_ch = x->shape.d[1];
        r.kernel = kernel;
        r.stride = s_max_attr(n, "strides");
        if (conv) {
            r.kind = group > 1 && group == r.in_ch ? BS_LAYER_DEPTHWISE : BS_LAYER_CONV;
            r.out_ch = w->shape.d[0];
            r.macs = bs_shape_numel(&y->shape) / batch * w->shape.d[1] * kernel;
        } else {
            r.kind = BS_LAYER_CONVT;
            r.out_ch = w->shape.d[1] * (group > 0 ? group : 1);
            r.macs = bs_shape_numel(&x->shape) / batch * w->shape.d[1] * kernel;
        }
    } else if (strcmp(n->op_type, "Gemm") == 0 || strcmp(n->op_type, "MatMul") == 0) {
        int wr = w->shape.rank;
        if (wr < 1)
            return BS_EMODEL;
        int64_t k, nn;
        if (wr == 1) {
            k = w->shape.d[0];
            nn = 1;
        } else if (strcmp(n->op_type, "Gemm") == 0 && bs_attr_int(n, "transB", 0)) {
            k = w->shape.d[wr - 1];
            nn = w->shape.d[wr - 2];
        } else {
            k = w->shape.d[wr - 2];
            nn = w->shape.d[wr - 1];
        }
        r.kind = BS_LAYER_FC;
        r.in_ch = k;
        r.out_ch = nn;
        r.kernel = 1;
        r.stride = 1;
        r.macs = bs_shape_numel(&y->shape) * k;
    } else {
        return BS_EMODEL;
    }
    r.known = 1;
    *d = r;
    return 0;
}

int bs_space_describe(bs_space_t *s, const char *model_path, bs_err_t *err)
{
    if (!s || !model_path || (s->n_layers > 0 && !s->layers))
        return bs_err_set(err, BS_EINVAL, "bs_space_describe: bad arguments");
    for (int i = 0; i < s->n_layers; i++)
        memset(&s->layers[i].desc, 0, sizeof s->layers[i].desc);
    bs_graph_opts_t o;
    memset(&o, 0, sizeof o);
    o.threads = 1;
    o.free_dim = 1;
    bs_graph_t *g = NULL;
    int rc = bs_graph_load(model_path, &o, &g, err);
    if (rc == BS_ENOENT) {
        if (err)
            err->code = BS_EIO; /* the message already names the file and says why */
        return BS_EIO;
    }
    if (rc == BS_ENOMEM || rc == BS_EIO || rc == BS_ETOOBIG)
        return rc;
    if (rc) {
        if (err)
            err->code = BS_EMODEL; /* err: "<file>: node 'x' (Conv): ..." */
        return BS_EMODEL;
    }
    const char **names = NULL;
    int *nodes = NULL;
    int nl = bs_graph_weight_layers(g, &names, &nodes);
    if (nl < 0) {
        bs_graph_free(&g);
        return bs_err_set(err, nl, "%s: out of memory describing the layers", model_path);
    }
    for (int i = 0; i < s->n_layers; i++) {
        bs_space_layer_t *l = &s->layers[i];
        for (int j = 0; j < nl && l->name; j++) {
            if (strcmp(names[j], l->name) != 0)
                continue;
            const bs_node_t *n = &g->nodes[nodes[j]];
            if (s_describe_node(g, n, &l->desc) != 0) {
                rc = bs_err_set(err, BS_EMODEL, "%s: layer '%s' (%s): unexpected shapes for "
                                "its input, weight or output", model_path, n->name, n->op_type);
            }
            break;
        }
        if (rc)
            break;
    }
    if (rc)
        for (int i = 0; i < s->n_layers; i++)
            memset(&s->layers[i].desc, 0, sizeof s->layers[i].desc);
    bs_free(names);
    bs_free(nodes);
    bs_graph_free(&g);
    return rc;
}

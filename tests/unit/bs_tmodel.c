/*
 * bs_tmodel.c - the tiny ONNX model builder of bs_tmodel.h.
 */
#include "bs_tmodel.h"

#include <stdio.h>
#include <string.h>

#include "bs_alloc.h"
#include "bs_test.h"

t_model_t *t_new(int64_t opset)
{
    t_model_t *m = bs_calloc(1, sizeof *m);
    ASSERT(m);
    onnx__model_proto__init(&m->m);
    onnx__graph_proto__init(&m->gr);
    onnx__operator_set_id_proto__init(&m->ops);
    m->ops.has_version = 1;
    m->ops.version = opset;
    m->ops.domain = (char *)"";
    m->opsp = &m->ops;
    m->m.has_ir_version = 1;
    m->m.ir_version = 8;
    m->m.n_opset_import = 1;
    m->m.opset_import = &m->opsp;
    m->m.graph = &m->gr;
    m->gr.name = (char *)"test";
    m->gr.node = m->nodep;
    m->gr.input = m->inp;
    m->gr.output = m->outp;
    m->gr.initializer = m->initp;
    return m;
}

void t_free(t_model_t *m)
{
    for (int i = 0; i < T_MAX; i++) {
        bs_free(m->idata[i]);
        bs_free(m->i64data[i]);
    }
    bs_free(m);
}

void t_vi(t_vi_t *v, const char *name, int dtype, const bs_shape_t *s)
{
    onnx__value_info_proto__init(&v->vi);
    onnx__type_proto__init(&v->tp);
    onnx__type_proto__tensor__init(&v->tt);
    snprintf(v->name, sizeof v->name, "%s", name);
    v->vi.name = v->name;
    v->vi.type = &v->tp;
    v->tp.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    v->tp.tensor_type = &v->tt;
    v->tt.has_elem_type = 1;
    v->tt.elem_type = dtype;
    if (!s)
        return;
    onnx__tensor_shape_proto__init(&v->sh);
    v->tt.shape = &v->sh;
    v->sh.n_dim = (size_t)s->rank;
    v->sh.dim = v->dimp;
    for (int i = 0; i < s->rank; i++) {
        onnx__tensor_shape_proto__dimension__init(&v->dim[i]);
        v->dim[i].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
        v->dim[i].dim_value = s->d[i];
        v->dimp[i] = &v->dim[i];
    }
}

void t_input(t_model_t *m, const char *name, const bs_shape_t *s)
{
    size_t i = m->gr.n_input++;
    ASSERT(i < T_MAX);
    t_vi(&m->in[i], name, BS_DT_FLOAT, s);
    m->inp[i] = &m->in[i].vi;
}

void t_output(t_model_t *m, const char *name)
{
    size_t i = m->gr.n_output++;
    ASSERT(i < T_MAX);
    t_vi(&m->out[i], name, BS_DT_FLOAT, NULL);
    m->outp[i] = &m->out[i].vi;
}

/* A float initializer (data copied) or, with i64, an int64 one. */
void t_init_any(t_model_t *m, const char *name, const bs_shape_t *s, const float *data,
                       const int64_t *i64)
{
    size_t i = m->gr.n_initializer++;
    ASSERT(i < T_MAX);
    Onnx__TensorProto *t = &m->init[i];
    onnx__tensor_proto__init(t);
    snprintf(m->iname[i], T_NAME, "%s", name);
    t->name = m->iname[i];
    t->n_dims = (size_t)s->rank;
    t->dims = m->idims[i];
    for (int k = 0; k < s->rank; k++)
        m->idims[i][k] = s->d[k];
    t->has_data_type = 1;
    size_t cnt = (size_t)bs_shape_numel(s);
    if (i64) {
        t->data_type = BS_DT_INT64;
        m->i64data[i] = bs_malloc(cnt * sizeof(int64_t) + 8);
        ASSERT(m->i64data[i]);
        memcpy(m->i64data[i], i64, cnt * sizeof(int64_t));
        t->n_int64_data = cnt;
        t->int64_data = m->i64data[i];
    } else {
        t->data_type = BS_DT_FLOAT;
        m->idata[i] = bs_malloc(cnt * sizeof(float) + 4);
        ASSERT(m->idata[i]);
        memcpy(m->idata[i], data, cnt * sizeof(float));
        t->n_float_data = cnt;
        t->float_data = m->idata[i];
    }
    m->initp[i] = t;
}

void t_init(t_model_t *m, const char *name, const bs_shape_t *s, const float *data)
{
    t_init_any(m, name, s, data, NULL);
}

/* Adds a node; ins/outs are comma-separated names ("" for an omitted optional input). */
int t_node(t_model_t *m, const char *op, const char *name, const char *ins,
                  const char *outs)
{
    int k = (int)m->gr.n_node++;
    ASSERT(k < T_MAX);
    Onnx__NodeProto *n = &m->node[k];
    onnx__node_proto__init(n);
    m->nodep[k] = n;
    n->op_type = (char *)op;
    snprintf(m->nname[k], T_NAME, "%s", name);
    n->name = m->nname[k];
    n->attribute = m->attrp[k];
    const char *lists[2] = {ins, outs};
    for (int io = 0; io < 2; io++) {
        char **dst = io ? m->nout[k] : m->nin[k];
        size_t cnt = 0;
        const char *p = lists[io];
        while (p) {
            const char *c = strchr(p, ',');
            size_t len = c ? (size_t)(c - p) : strlen(p);
            ASSERT(cnt < T_MAX && len < T_NAME);
            memcpy(m->iobuf[k][io][cnt], p, len);
            m->iobuf[k][io][cnt][len] = 0;
            dst[cnt] = m->iobuf[k][io][cnt];
            cnt++;
            p = c ? c + 1 : NULL;
        }
        if (io) {
            n->n_output = cnt;
            n->output = dst;
        } else {
            n->n_input = cnt;
            n->input = dst;
        }
    }
    return k;
}

Onnx__AttributeProto *t_attr(t_model_t *m, int k, const char *name, int type)
{
    Onnx__NodeProto *n = &m->node[k];
    size_t a = n->n_attribute++;
    ASSERT(a < T_MAX);
    Onnx__AttributeProto *p = &m->attr[k][a];
    onnx__attribute_proto__init(p);
    snprintf(m->aname[k][a], T_NAME, "%s", name);
    p->name = m->aname[k][a];
    p->has_type = 1;
    p->type = type;
    m->attrp[k][a] = p;
    return p;
}

void t_attr_int(t_model_t *m, int k, const char *name, int64_t v)
{
    Onnx__AttributeProto *p = t_attr(m, k, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    p->has_i = 1;
    p->i = v;
}

void t_attr_float(t_model_t *m, int k, const char *name, float v)
{
    Onnx__AttributeProto *p = t_attr(m, k, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    p->has_f = 1;
    p->f = v;
}

void t_attr_ints(t_model_t *m, int k, const char *name, int cnt, const int64_t *v)
{
    Onnx__AttributeProto *p = t_attr(m, k, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    size_t a = m->node[k].n_attribute - 1;
    ASSERT(cnt <= 2 * BS_MAX_RANK);
    memcpy(m->aints[k][a], v, (size_t)cnt * sizeof *v);
    p->n_ints = (size_t)cnt;
    p->ints = m->aints[k][a];
}

void t_attr_str(t_model_t *m, int k, const char *name, const char *v)
{
    Onnx__AttributeProto *p = t_attr(m, k, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    size_t a = m->node[k].n_attribute - 1;
    snprintf(m->astr[k][a], T_NAME, "%s", v);
    p->has_s = 1;
    p->s.data = (uint8_t *)m->astr[k][a];
    p->s.len = strlen(v);
}

int t_load(t_model_t *m, int threads, int no_fuse, bs_graph_t **g, bs_err_t *err)
{
    size_t len = onnx__model_proto__get_packed_size(&m->m);
    uint8_t *buf = bs_malloc(len + 1);
    ASSERT(buf);
    onnx__model_proto__pack(&m->m, buf);
    bs_graph_opts_t o = {.threads = threads, .free_dim = 1, .no_fuse = no_fuse};
    bs_err_clear(err);
    int rc = bs_graph_load_buffer(buf, len, ".", &o, g, err);
    bs_free(buf);
    return rc;
}

int t_load_opts(t_model_t *m, const bs_graph_opts_t *o, bs_graph_t **g, bs_err_t *err)
{
    size_t len = onnx__model_proto__get_packed_size(&m->m);
    uint8_t *buf = bs_malloc(len + 1);
    ASSERT(buf);
    onnx__model_proto__pack(&m->m, buf);
    bs_err_clear(err);
    int rc = bs_graph_load_buffer(buf, len, ".", o, g, err);
    bs_free(buf);
    return rc;
}

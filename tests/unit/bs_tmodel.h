/*
 * bs_tmodel.h - a tiny ONNX model builder for the engine's unit tests (test_ops, test_qlayers):
 * graph inputs and outputs, float / int64 initializers, nodes with attributes, built with the
 * protobuf-c structs in one fixed-size struct (no allocation per field), packed and loaded with
 * bs_graph_load_buffer. Test code only: failures abort through the harness's ASSERT.
 */
#ifndef BS_TMODEL_H
#define BS_TMODEL_H

#include <stdint.h>

#include "bs_graph.h"
#include "onnx.pb-c.h"

/* ---- the builder ------------------------------------------------------------ */

#define T_MAX 12 /* nodes, inputs, outputs, initializers, attributes per node, names */
#define T_NAME 32

typedef struct t_vi {
    Onnx__ValueInfoProto vi;
    Onnx__TypeProto tp;
    Onnx__TypeProto__Tensor tt;
    Onnx__TensorShapeProto sh;
    Onnx__TensorShapeProto__Dimension dim[BS_MAX_RANK];
    Onnx__TensorShapeProto__Dimension *dimp[BS_MAX_RANK];
    char name[T_NAME];
} t_vi_t;

typedef struct t_model {
    Onnx__ModelProto m;
    Onnx__GraphProto gr;
    Onnx__OperatorSetIdProto ops;
    Onnx__OperatorSetIdProto *opsp;
    Onnx__NodeProto node[T_MAX];
    Onnx__NodeProto *nodep[T_MAX];
    char nname[T_MAX][T_NAME];
    char *nin[T_MAX][T_MAX], *nout[T_MAX][T_MAX];
    char iobuf[T_MAX][2][T_MAX][T_NAME];
    Onnx__AttributeProto attr[T_MAX][T_MAX];
    Onnx__AttributeProto *attrp[T_MAX][T_MAX];
    char aname[T_MAX][T_MAX][T_NAME];
    int64_t aints[T_MAX][T_MAX][2 * BS_MAX_RANK];
    char astr[T_MAX][T_MAX][T_NAME];
    t_vi_t in[T_MAX], out[T_MAX];
    Onnx__ValueInfoProto *inp[T_MAX], *outp[T_MAX];
    Onnx__TensorProto init[T_MAX];
    Onnx__TensorProto *initp[T_MAX];
    char iname[T_MAX][T_NAME];
    int64_t idims[T_MAX][BS_MAX_RANK];
    float *idata[T_MAX];
    int64_t *i64data[T_MAX];
} t_model_t;


t_model_t *t_new(int64_t opset);
void t_free(t_model_t *m);
void t_vi(t_vi_t *v, const char *name, int dtype, const bs_shape_t *s);
void t_input(t_model_t *m, const char *name, const bs_shape_t *s);
void t_output(t_model_t *m, const char *name);
void t_init_any(t_model_t *m, const char *name, const bs_shape_t *s, const float *data, const int64_t *i64);
void t_init(t_model_t *m, const char *name, const bs_shape_t *s, const float *data);
int t_node(t_model_t *m, const char *op, const char *name, const char *ins, const char *outs);
Onnx__AttributeProto *t_attr(t_model_t *m, int k, const char *name, int type);
void t_attr_int(t_model_t *m, int k, const char *name, int64_t v);
void t_attr_float(t_model_t *m, int k, const char *name, float v);
void t_attr_ints(t_model_t *m, int k, const char *name, int cnt, const int64_t *v);
void t_attr_str(t_model_t *m, int k, const char *name, const char *v);
int t_load(t_model_t *m, int threads, int no_fuse, bs_graph_t **g, bs_err_t *err);
/* t_load with options (precision, calibration table, ...); threads/free_dim/no_fuse in o. */
int t_load_opts(t_model_t *m, const bs_graph_opts_t *o, bs_graph_t **g, bs_err_t *err);

#endif

/*
 * bs_graph.h - the engine's graph: load an ONNX model, make every shape static, fold
 * constants, fuse, plan activation memory, and run.
 *
 * Loading (bs_graph.c) goes in passes over the nodes, which ONNX stores in topological order
 * (checked; a node reading a value nobody produced is an error naming both):
 *   1. parse: protobuf-c unpacks the file; initializers (inline and external data files next
 *      to the model) become const tensors; attributes are copied into bs_attr_t.
 *   2. infer + fold: in order, each node's op checks its attributes and input types and sets
 *      its outputs' types and shapes (bs_op_t.infer). When every input is const and the op is
 *      foldable, the node is executed right away and its outputs become const: the Shape ->
 *      Gather -> Unsqueeze -> Concat -> Reshape chains exporters emit vanish here.
 *   3. fuse: BatchNormalization into the Conv before it; Relu / Clip into the Conv or Gemm
 *      before it (bs_node_t.act); Identity and the reshaping ops become aliases.
 *   4. prepare: each op packs its weights and says how much scratch it needs.
 *   5. plan: activation tensors get arena offsets by liveness (first-fit on lifetimes), so
 *      buffers are reused; the arena and the largest scratch are allocated once.
 * Running copies the inputs into the arena and calls each live node's run(); kernels never
 * allocate.
 *
 * Precisions (between fuse and prepare): weight-bearing nodes (Conv, ConvTranspose, Gemm,
 * MatMul with a const weight) are the layers, named as common/bs_model.h names them; opts.precision
 * (a spec or an assignment) gives each its bs_prec_t, and a layer with int8 activations needs
 * its input's calibrated (scale, zero point) in opts.act. Then adjacent int8 layers are joined:
 * a tensor read only by integer int8 layers and produced by one, directly or through MaxPool and
 * reshaping ops, becomes a uint8 tensor (bs_tensor_t.quantized) with its readers' parameters, so
 * the producer requantizes into it and no float round trip happens. prepare() then quantizes
 * each layer's weight at its precision (bs_ops_quant.c) and frees the float original.
 */
#ifndef BS_GRAPH_H
#define BS_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "bs_error.h"
#include "bs_precision.h"
#include "bs_tensor.h"

struct bs_op;

#define BS_MAX_OPSET 18 /* newest default-domain opset the engine implements */
struct bs_threadpool;

enum {
    BS_ATTR_FLOAT = 1,
    BS_ATTR_INT = 2,
    BS_ATTR_STRING = 3,
    BS_ATTR_TENSOR = 4,
    BS_ATTR_FLOATS = 6,
    BS_ATTR_INTS = 7,
}; /* ONNX AttributeProto.AttributeType numbers */

typedef struct bs_attr {
    char *name;               /* owned */
    int type;                 /* BS_ATTR_* */
    int64_t i;
    float f;
    char *s;                  /* owned, NUL-terminated */
    int n;                    /* elements of ints / floats */
    int64_t *ints;            /* owned */
    float *floats;            /* owned */
    bs_tensor_t *t;           /* owned (BS_ATTR_TENSOR, e.g. Constant's value): const tensor */
} bs_attr_t;

enum { BS_ACT_NONE = 0, BS_ACT_RELU = 1, BS_ACT_CLIP = 2 };

typedef struct bs_node {
    char *name;               /* owned; "<op_type>_<index>" when the file has none */
    char *op_type;            /* owned */
    const struct bs_op *op;
    int n_in, n_out;
    int *in;                  /* owned: tensor indices; -1 for an omitted optional input */
    int *out;                 /* owned */
    int n_attrs;
    bs_attr_t *attrs;         /* owned */
    void *state;              /* op-private (prepare), freed by op->release */
    size_t scratch;           /* bytes of scratch run() needs (from prepare) */
    int act;                  /* fused activation BS_ACT_* */
    float act_lo, act_hi;     /* Clip bounds; Relu is [0, +inf) */
    int dead;                 /* folded or fused away: not run */
    int weight_layer;         /* Conv/ConvTranspose/Gemm/MatMul with a const weight */
    bs_prec_t prec;           /* precision assigned to a weight layer (default w32a32) */
    size_t packed_bytes;      /* weight bytes prepare() packed into n->state */
    int weight_packed;        /* 1: run() reads input 1 only from its packed copy, so the
                                 loader frees the original when no other node reads it */
    int bias_packed;          /* 1: the same for input 2 (a quantized layer's bias) */
    const char *bad_attr;     /* first attribute read with the wrong type (loader error) */
    char bad_attr_why[40];
} bs_node_t;

/* Activation quantization of one tensor as uint8: x ~ scale * (q - zero_point). */
typedef struct bs_qparam {
    float scale;              /* > 0, finite */
    int32_t zero_point;       /* 0..255 */
} bs_qparam_t;

/* Calibrated parameters of activation tensors, by ONNX value name (bs_run_calibrate fills one
 * for the input of every weight layer). */
typedef struct bs_act_table {
    int n;
    char **names;             /* owned */
    bs_qparam_t *q;           /* owned */
} bs_act_table_t;

void bs_act_table_free(bs_act_table_t *t); /* NULL-safe; zeroes *t */
/* The entry for a tensor name, or NULL. */
const bs_qparam_t *bs_act_table_find(const bs_act_table_t *t, const char *name);

typedef struct bs_graph_opts {
    int threads;              /* kernel threads, >= 1 */
    int64_t free_dim;         /* value for symbolic / unknown input dims (the batch), >= 1 */
    int n_input_shapes;       /* optional overrides of graph input shapes, by input position */
    const bs_shape_t *input_shapes;
    int no_fuse;              /* 1: skip fusions (for tests comparing fused and unfused) */
    const char *precision;    /* precision spec or assignment over the weight layers
                                 (bs_precision.h; names as common/bs_model.h gives them);
                                 NULL or "": every layer fp32 */
    int wscale_minmax;        /* 1: integer weight scales by min-max instead of the MSE search */
    const bs_act_table_t *act; /* activation parameters; needed when a layer has a8: its input
                                 tensor must be in the table (bs_run_calibrate makes one) */
} bs_graph_opts_t;

typedef struct bs_graph {
    int n_tensors, cap_tensors;
    bs_tensor_t *tensors;     /* owned */
    int n_nodes, cap_nodes;
    bs_node_t *nodes;         /* owned, topological */
    int n_inputs;
    int *inputs;              /* graph inputs that are not initializers (tensor indices) */
    int n_outputs;
    int *outputs;
    int64_t opset;            /* default-domain opset */
    char *base_dir;           /* owned: for external data files */
    bs_graph_opts_t opts;     /* input_shapes not retained */
    void *arena;              /* owned, 64-byte aligned */
    size_t arena_bytes;
    void *scratch;            /* owned, 64-byte aligned, max over nodes */
    size_t scratch_bytes;
    size_t weight_bytes;      /* bytes of const tensors used by live nodes */
    struct bs_threadpool *pool; /* owned */
} bs_graph_t;

/* Loads and prepares a model. *out is the caller's (bs_graph_free). Errors name the file, the
 * node (name and op type) or the tensor, and what was expected. */
int bs_graph_load(const char *path, const bs_graph_opts_t *opts, bs_graph_t **out,
                  bs_err_t *err);
int bs_graph_load_buffer(const void *buf, size_t len, const char *base_dir,
                         const bs_graph_opts_t *opts, bs_graph_t **out, bs_err_t *err);
void bs_graph_free(bs_graph_t **g);

/* Weight layers in graph order: *names (caller frees the array, not the strings, which are
 * the nodes' names, valid while g lives), *nodes node indices (may be NULL). Returns the count
 * or BS_ENOMEM. */
int bs_graph_weight_layers(const bs_graph_t *g, const char ***names, int **nodes);

/* The canonical assignment the graph runs at ("conv1=w8a8,...,fc=w32a32"); caller frees
 * (bs_free). NULL on OOM. */
char *bs_graph_assignment(const bs_graph_t *g);

/* Called during bs_graph_run_observed just before each weight layer runs, with its input 0
 * (float32 when the graph is all fp32). */
typedef void (*bs_graph_observe_fn)(void *ctx, const bs_graph_t *g, int node,
                                    const bs_tensor_t *input);
int bs_graph_run_observed(bs_graph_t *g, bs_graph_observe_fn fn, void *ctx, bs_err_t *err);

/* Copies input i (bytes must equal the tensor's nbytes and dtype must match). */
int bs_graph_set_input(bs_graph_t *g, int i, int dtype, const void *data, size_t bytes,
                       bs_err_t *err);
int bs_graph_run(bs_graph_t *g, bs_err_t *err);
/* Output i after a run: borrowed, valid until the next run or free. */
const bs_tensor_t *bs_graph_output(const bs_graph_t *g, int i);
const bs_tensor_t *bs_graph_input(const bs_graph_t *g, int i);

/* Reads a serialized ONNX TensorProto file (the test suite's input_0.pb / output_0.pb) into
 * a const tensor; base_dir resolves external data. Free with bs_tensor_clear. */
int bs_tensor_load_pb(const char *path, bs_tensor_t *out, bs_err_t *err);
void bs_tensor_clear(bs_tensor_t *t); /* frees name and const data; zeroes t */

/* ---- for ops ---------------------------------------------------------------------------- */

/* Tensor of a node's input k, or NULL when omitted / out of range. */
bs_tensor_t *bs_node_input(bs_graph_t *g, const bs_node_t *n, int k);
bs_tensor_t *bs_node_output(bs_graph_t *g, const bs_node_t *n, int k);
const bs_attr_t *bs_node_attr(const bs_node_t *n, const char *name);
int64_t bs_attr_int(const bs_node_t *n, const char *name, int64_t dflt);
float bs_attr_float(const bs_node_t *n, const char *name, float dflt);
const char *bs_attr_string(const bs_node_t *n, const char *name, const char *dflt);
/* ints/floats attribute: returns the count and sets *v (borrowed), or -1 if absent. */
int bs_attr_ints(const bs_node_t *n, const char *name, const int64_t **v);
int bs_attr_floats(const bs_node_t *n, const char *name, const float **v);
/* Sets an output's dtype and shape (and nbytes). */
void bs_tensor_set(bs_tensor_t *t, int dtype, const bs_shape_t *shape);
/* Fills err with "node 'NAME' (OP): <message>" and returns code. */
int bs_node_err(bs_err_t *err, const bs_node_t *n, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif

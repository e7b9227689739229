/*
 * bs_op.h - the operator interface and registry.
 *
 * An operator implements, for one ONNX op type:
 *   infer    checks attributes, input count, types and shapes; sets every output's dtype and
 *            shape with bs_tensor_set. May read the values of const inputs (Reshape's shape).
 *            Errors go through bs_node_err so they name the node.
 *   prepare  (optional) after shapes and fusions: precompute (pack weights into n->state) and
 *            set n->scratch to the scratch bytes run() will need. An op that packs its const
 *            weight (input 1) and never reads the original again sets n->weight_packed and
 *            n->packed_bytes: the loader then frees the original and counts the packed copy,
 *            so weight bytes are what the engine really holds.
 *   run      computes the outputs from the inputs. Never allocates: scratch is ctx->scratch.
 *            Returns 0 or a BS_E* code (only for conditions infer could not see).
 *   release  (optional) frees n->state.
 *   foldable 1 if the op may be run at load time when all its inputs are const.
 *   alias    1 if the output is the input's bytes reinterpreted (Reshape, Flatten, Squeeze,
 *            Unsqueeze, Identity): the graph then shares the buffer and run is not called.
 * Ops are looked up by op type (default ONNX domain only); an op type with no entry is refused
 * at load with the node's name and type.
 */
#ifndef BS_OP_H
#define BS_OP_H

#include "bs_graph.h"

typedef struct bs_ctx {
    void *scratch;                 /* at least n->scratch bytes, 64-byte aligned */
    struct bs_threadpool *pool;    /* kernels may split work over it; NULL = single thread */
    bs_err_t *err;                 /* optional detail for a failing run(), e.g. "index 7 is
                                      out of range [-3, 3)"; may be NULL (folding) */
} bs_ctx_t;

typedef struct bs_op {
    const char *op_type;
    int (*infer)(bs_graph_t *g, bs_node_t *n, bs_err_t *err);
    int (*prepare)(bs_graph_t *g, bs_node_t *n, bs_err_t *err);
    int (*run)(bs_graph_t *g, bs_node_t *n, bs_ctx_t *ctx);
    void (*release)(bs_node_t *n);
    int foldable;
    int alias;
} bs_op_t;

const bs_op_t *bs_op_find(const char *op_type);
/* Every supported op type, comma-separated, for messages and the conformance report. */
const char *bs_op_list(void);

/* Op tables, one per family file (bs_ops_*.c), NULL-terminated. */
extern const bs_op_t *const bs_ops_shape[];     /* bs_ops_shape.c */
extern const bs_op_t *const bs_ops_elementwise[]; /* bs_ops_elementwise.c */
extern const bs_op_t *const bs_ops_nn[];        /* bs_ops_nn.c, bs_ops_conv.c */

#endif

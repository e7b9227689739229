/*
 * bs_ops_internal.h - helpers shared by the operator files (bs_ops_nn.c defines them,
 * bs_ops_conv.c uses them too). Internal to the engine: names carry the bs__ prefix.
 */
#ifndef BS_OPS_INTERNAL_H
#define BS_OPS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "bs_op.h"

/* Input k, required, float32 with an inferred shape; `what` names it in the error. */
int bs__input_f32(bs_graph_t *g, const bs_node_t *n, int k, const char *what, bs_tensor_t **out,
                  bs_err_t *err);
/* Output k, which must be present. */
int bs__output(bs_graph_t *g, const bs_node_t *n, int k, bs_tensor_t **out, bs_err_t *err);
/* Output spatial sizes of a windowed op (conv, pools) from kernel, strides, dilations, pads and
 * auto_pad; ph/pt receive the head/tail padding per axis. */
int bs__spatial_dims(const bs_node_t *n, int ns, const int64_t *in, const int64_t *k,
                     int ceil_mode, int64_t *s, int64_t *d, int64_t *ph, int64_t *pt, int64_t *out,
                     bs_err_t *err);
int bs__threads(const bs_graph_t *g);        /* kernel threads of the graph's pool */
size_t bs__align64(size_t n);
/* 64-byte aligned block; *raw is what to free. NULL on failure. */
void *bs__aligned_alloc(size_t bytes, void **raw);

extern const bs_op_t bs__op_conv;           /* bs_ops_conv.c, listed in bs_ops_nn[] */
extern const bs_op_t bs__op_conv_transpose; /* bs_ops_conv.c */

#endif

/*
 * bs_model.h - what the searcher and the sim backend need to know of an ONNX model: its
 * weight-bearing layers (Conv, ConvTranspose, Gemm, MatMul with a constant weight), in graph
 * order, with their parameter counts.
 *
 * The file is parsed with protobuf-c from code generated at build time from the onnx.proto that
 * Debian's libonnx-dev installs; nothing here hand-parses protobuf. The full graph (shapes,
 * kernels) is the engine's business (issue 3); this is the thin view the search space needs.
 * A layer's name is its node name, or "<op_type>_<index>" when the exporter left it empty.
 */
#ifndef BS_MODEL_H
#define BS_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "bs_error.h"

typedef struct bs_layer_info {
    char *name;       /* owned */
    char *op_type;    /* owned: "Conv", "Gemm", ... */
    int64_t n_params; /* elements of the weight and bias initializers */
} bs_layer_info_t;

typedef struct bs_model_info {
    int n_layers;
    bs_layer_info_t *layers; /* owned, graph order */
    int n_nodes;             /* all nodes in the graph */
    int64_t total_params;    /* elements of all initializers */
    int64_t opset;           /* default-domain opset, 0 if absent */
    char *graph_name;        /* owned, may be "" */
} bs_model_info_t;

#define BS_MODEL_MAX_BYTES ((size_t)2 << 30)

/* Parses an ONNX model; err names the file and what is wrong. out is zeroed on failure. */
int bs_model_info_load(const char *path, bs_model_info_t *out, bs_err_t *err);
int bs_model_info_parse(const void *buf, size_t len, bs_model_info_t *out, bs_err_t *err);
void bs_model_info_free(bs_model_info_t *m);

#endif

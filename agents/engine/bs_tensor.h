/*
 * bs_tensor.h - tensors of the built-in engine: element types, static shapes, and where the
 * bytes live.
 *
 * Element types use ONNX's TensorProto.DataType numbers so a loaded tensor needs no mapping.
 * Every shape is static once the graph is loaded (a free batch dimension is fixed at load), so
 * a tensor's byte size is known before the first run and the activation-memory planner can lay
 * out one arena. A tensor lives in one of three places:
 *   BS_TENSOR_CONST  initializers, Constant outputs and folded values: owned heap buffer;
 *   BS_TENSOR_INPUT  graph inputs: a slot in the arena the caller's data is copied into;
 *   BS_TENSOR_ACT    everything computed at run time: a slot in the arena, by liveness.
 */
#ifndef BS_TENSOR_H
#define BS_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "bs_error.h"

typedef enum bs_dtype {
    BS_DT_UNDEFINED = 0,
    BS_DT_FLOAT = 1,
    BS_DT_UINT8 = 2,
    BS_DT_INT8 = 3,
    BS_DT_UINT16 = 4,
    BS_DT_INT16 = 5,
    BS_DT_INT32 = 6,
    BS_DT_INT64 = 7,
    BS_DT_STRING = 8, /* never supported: refused at load */
    BS_DT_BOOL = 9,
    BS_DT_FLOAT16 = 10,
    BS_DT_DOUBLE = 11,
    BS_DT_UINT32 = 12,
    BS_DT_UINT64 = 13,
} bs_dtype_t;

size_t bs_dtype_size(int dtype);        /* bytes per element; 0 for unsupported types */
const char *bs_dtype_name(int dtype);   /* "float32", "int64", ...; "?" otherwise */

#define BS_MAX_RANK 8

typedef struct bs_shape {
    int rank;                 /* 0 = scalar */
    int64_t d[BS_MAX_RANK];
} bs_shape_t;

int64_t bs_shape_numel(const bs_shape_t *s);   /* product of dims; 1 for a scalar */
int bs_shape_eq(const bs_shape_t *a, const bs_shape_t *b);
/* "[1,3,224,224]" into buf; returns buf. */
const char *bs_shape_str(const bs_shape_t *s, char *buf, size_t cap);
/* Numpy (multidirectional) broadcasting of a and b into out; BS_EINVAL if incompatible. */
int bs_shape_broadcast(const bs_shape_t *a, const bs_shape_t *b, bs_shape_t *out);
/* Row-major strides in elements; a broadcast view: strides of `in` seen as `out` (0 where
 * `in` has size 1 or lacks the axis). */
void bs_shape_strides(const bs_shape_t *s, int64_t *strides);
void bs_shape_bcast_strides(const bs_shape_t *in, const bs_shape_t *out, int64_t *strides);

enum { BS_TENSOR_CONST = 0, BS_TENSOR_INPUT = 1, BS_TENSOR_ACT = 2 };

typedef struct bs_tensor {
    char *name;               /* owned; ONNX value name */
    int dtype;                /* bs_dtype_t; BS_DT_UNDEFINED until inferred */
    bs_shape_t shape;         /* valid once inferred (has_shape) */
    int has_shape;
    int kind;                 /* BS_TENSOR_CONST / INPUT / ACT */
    void *data;               /* CONST: owned (bs_malloc); INPUT/ACT: inside the arena once
                                 planned, NULL before */
    size_t nbytes;            /* numel * dtype size, set with the shape */
    int64_t arena_off;        /* offset in the arena, -1 when not in it */
    int producer;             /* node index, -1 for consts and graph inputs */
    int first_use, last_use;  /* node indices, for the planner; -1 if unused */
    int is_graph_output;
    int bad_size;             /* the shape's byte size is negative or past 2^40 (loader error) */
    int alias_of;             /* -1, or the tensor whose bytes this one shares (Identity,
                                 Reshape, Flatten, Squeeze, Unsqueeze run in place) */
    int quantized;            /* 1: a uint8 activation the loader made (int8 layers passing
                                 int8 tensors): the values are qscale * (q - qzero) */
    float qscale;
    int32_t qzero;
} bs_tensor_t;

/* Typed accessors for const tensors (used by infer and fold). They convert any integer type
 * to int64 / any float type to float; BS_EINVAL if the tensor is not const or has no data. */
int bs_tensor_get_i64(const bs_tensor_t *t, int64_t idx, int64_t *out);
int bs_tensor_get_f32(const bs_tensor_t *t, int64_t idx, float *out);

/* IEEE half <-> float, round to nearest even. */
float bs_f16_to_f32(uint16_t h);
uint16_t bs_f32_to_f16(float f);

#endif

/*
 * bs_ops_internal.h - helpers shared by the operator files (bs_ops_nn.c defines them,
 * bs_ops_conv.c uses them too). Internal to the engine: names carry the bs__ prefix.
 */
#ifndef BS_OPS_INTERNAL_H
#define BS_OPS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "bs_op.h"

/* Input k, required, float32 with an inferred shape; `what` names it in the error. Input 0 of
 * an int8 weight layer may also be a uint8 activation the loader made (tensor->quantized). */
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

/* ---- quantized weight layers (bs_ops_quant.c) -------------------------------------------- */

#include "bs_kernels.h"
#include "bs_qkernels.h"
#include "bs_quant.h"

/* Whether node n (a weight layer) can run at n->prec; the loader calls it for every layer
 * whose precision is not w32a32. */
int bs__qlayer_check(bs_graph_t *g, const bs_node_t *n, bs_err_t *err);

/* The float weight of a layer as an N x K matrix: element (r, c) at W[r * sn + c * sk]; G
 * groups of N / G consecutive rows; bias N floats or NULL; alpha scales the weight (Gemm). */
typedef struct bs__qw_spec {
    const float *W;
    int64_t sn, sk;
    int N, K, G;
    int dw;            /* depthwise convolution (G == N, one input channel per group) */
    const float *bias;
    float alpha;
    int rows_per_scale; /* > 1: consecutive groups of this many rows share one scale (the
                           ConvTranspose rows (oc, tap) of one output channel); W must then be
                           contiguous (sn == K, sk == 1) */
} bs__qw_spec_t;

typedef struct bs__qw {
    bs_prec_t prec;
    int N, K, G, dw;
    int int8;                 /* integer kernel: w2..w8 with a8 */
    bs_qweight_t q;           /* w2..w8: rows (data NULL once repacked) and scales */
    uint16_t *f16;            /* w16: N x K halves */
    float *wdw;               /* depthwise w32: the float filter */
    void *praw;               /* allocation of packed */
    char *packed;             /* per group, pg_bytes apart: qgemm panels (w8 int8) or float
                                 panels (w32a8) */
    char *packed4;            /* or, for a w4 int8 Gemm / MatMul, bs_qgemm_pack4 panels (the
                                 rows freed), per group pg_bytes apart; in praw */
    size_t pg_bytes;
    float *bias;              /* N floats or NULL */
    bs_qparam_t in;           /* a8: the input's parameters */
    int32_t *off;             /* int8: N */
    float *mult;              /* int8: N */
    bs_qgemm_epi_t epi;       /* int8: output kind, bounds (off/mult of group 0) */
    size_t held;              /* bytes held for the weight (codes, scales, epilogue terms) */
} bs__qw_t;

int bs__qw_prepare(bs_graph_t *g, bs_node_t *n, const bs__qw_spec_t *sp, bs__qw_t *q,
                   bs_err_t *err);
void bs__qw_free(bs__qw_t *q);
/* Rows of group grp as a view (data NULL when repacked). */
bs_qweight_t bs__qw_group(const bs__qw_t *q, int grp);
/* Scratch of one group's product with M rows. */
size_t bs__qw_gemm_scratch(const bs__qw_t *q, int M, int threads);
/* Float-input product of group grp (w16, w2..w8 at a32; w32/w16 at a8 after bs__qw_qdq). */
void bs__qw_gemm_f(const bs__qw_t *q, int grp, int M, const float *X, int64_t sxm, int64_t sxk,
                   float *Y, int64_t sym, int64_t syn, int act, float lo, float hi,
                   void *scratch, bs_threadpool_t *pool);
/* Integer product of group grp: X uint8 rows ldx apart (BS_QK_PAD(K) or more). */
void bs__qw_gemm_q(const bs__qw_t *q, int grp, int M, const uint8_t *X, int64_t ldx, void *Y,
                   int64_t sym, int64_t syn, void *scratch, bs_threadpool_t *pool);
/* One row x (K uint8) times the rows of w (2..7 bits): y[n * syn] per the bs_qgemm epilogue e;
 * scratch from bs__qw_gemm_scratch with M = 1. */
void bs__qgemv_rows(const bs_qweight_t *w, const uint8_t *x, const bs_qgemm_epi_t *e, void *y,
                    int64_t syn, void *scratch, bs_threadpool_t *pool);
/* out = dequantize(quantize(x)) with the input's parameters (float weight, int8 input). */
void bs__qw_qdq(const bs__qw_t *q, const float *x, int64_t n, float *out);
/* Depthwise: the filter as floats (N x K). */
void bs__qw_dequant_dw(const bs__qw_t *q, float *w);

extern const bs_op_t bs__op_conv;           /* bs_ops_conv.c, listed in bs_ops_nn[] */
extern const bs_op_t bs__op_conv_transpose; /* bs_ops_conv.c */
extern const bs_op_t bs__op_quantize_linear;   /* bs_ops_qdq.c */
extern const bs_op_t bs__op_dequantize_linear; /* bs_ops_qdq.c */

#endif

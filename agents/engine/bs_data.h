/*
 * bs_data.h - the evaluation data of a job, and the metrics computed on it.
 *
 * Data files are IDX (the MNIST family) or .npy, raw or gzipped, told apart by their content
 * (agents receive files by hash, with no name to go by). Images are read as a raw array
 * [N, ...] and turned into float32 samples laid out exactly as the model's input wants them,
 * by the campaign's data.preprocess object:
 *     x = (pixel * scale - mean[c]) / std[c]
 * with mean / std of one entry applying to every channel. Sample layouts accepted from a file,
 * for a model input [B, C, H, W] (layout NCHW) or [B, H, W, C] (layout NHWC):
 *   [N, H, W]      one channel (C must be 1);
 *   the model's own sample dims ([N, C, H, W] for NCHW, [N, H, W, C] for NHWC): taken as is;
 *   the other layout ([N, H, W, C] for NCHW, [N, C, H, W] for NHWC): transposed.
 * A model input of another rank takes any file whose samples hold the same number of elements,
 * in file order (with a single mean / std). preprocess.resize [H, W] first resizes single-
 * channel images bilinearly (half-pixel centres, edges clamped, as PyTorch's
 * align_corners=False), then the rules above apply to the resized [N, H, W].
 *
 * Labels are IDX idx1 or .npy of integers, [N] or [N, 1]; the first `count` samples of both
 * files are used (count 0: all).
 *
 * Metrics: top-1 accuracy against labels; without labels, top-1 agreement with a reference
 * output set (the float32 model's outputs) and the signal-to-quantization-noise ratio
 * SQNR = 10 log10(sum ref^2 / sum (ref - out)^2) in dB (+inf when the outputs are identical).
 */
#ifndef BS_DATA_H
#define BS_DATA_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "bs_error.h"
#include "bs_tensor.h"

#define BS_PRE_MAX_CH 64
#define BS_DATA_MAX_BYTES ((size_t)1 << 30) /* cap on one data file, decompressed */

typedef struct bs_preprocess {
    float scale;       /* > 0; default 1/255 */
    int n_mean, n_std; /* 0 (none: mean 0, std 1), 1 (every channel) or C */
    float mean[BS_PRE_MAX_CH];
    float std[BS_PRE_MAX_CH]; /* each > 0 */
    int nhwc;                 /* layout of the model input: 0 NCHW (default), 1 NHWC */
    int resize_h, resize_w;   /* 0: no resize */
} bs_preprocess_t;

void bs_preprocess_default(bs_preprocess_t *p);
/* Reads a data.preprocess object (NULL: the defaults). Every error names where + the key,
 * e.g. "data.preprocess.std[1]: expected a number > 0". Unknown keys are errors. */
int bs_preprocess_from_json(const cJSON *obj, const char *where, bs_preprocess_t *out,
                            bs_err_t *err);

/* A raw array from a data file. */
typedef struct bs_array {
    int dtype; /* BS_DT_UINT8 (IDX), or a .npy type: FLOAT, UINT8, INT8, INT32, INT64 */
    int ndim;
    int64_t dims[BS_MAX_RANK];
    void *data; /* owned (bs_malloc) */
    size_t nbytes;
} bs_array_t;

/* Reads an IDX or .npy file, raw or gzipped (by content), at most max bytes decompressed.
 * out is the caller's (bs_array_free); err names the file. */
int bs_array_load(const char *path, size_t max, bs_array_t *out, bs_err_t *err);
/* The same from memory (the fuzz target); name is for messages. */
int bs_array_parse(const void *buf, size_t len, const char *name, size_t max, bs_array_t *out,
                   bs_err_t *err);
void bs_array_free(bs_array_t *a); /* NULL-safe; zeroes *a */

typedef struct bs_dataset {
    int64_t count;        /* samples */
    int64_t sample_numel; /* floats per sample: the model input's elements per batch entry */
    float *x;             /* owned: count * sample_numel floats, in the model's layout */
    int64_t *labels;      /* owned: count labels, or NULL without a label file */
} bs_dataset_t;

/* Builds the data set for a model input of shape `input` (batch first). count 0 takes every
 * sample. labels may be NULL. Errors (BS_EDATA, BS_ENOMEM, ...) name the file and what does
 * not fit, e.g. "images.npy: samples of shape [32,32,3] do not fit the model input
 * [1,1,28,28] (NCHW)". out is the caller's (bs_dataset_free). */
int bs_dataset_build(const bs_array_t *images, const char *images_name, const bs_array_t *labels,
                     const char *labels_name, int64_t count, const bs_preprocess_t *pre,
                     const bs_shape_t *input, bs_dataset_t *out, bs_err_t *err);
/* bs_array_load of both files, then bs_dataset_build. labels_path may be NULL. */
int bs_dataset_load(const char *images_path, const char *labels_path, int64_t count,
                    const bs_preprocess_t *pre, const bs_shape_t *input, bs_dataset_t *out,
                    bs_err_t *err);
void bs_dataset_free(bs_dataset_t *d); /* NULL-safe; zeroes *d */

/* Index of the largest of v[0..n) (the first on ties; NaN never wins), 0 when n <= 0. */
int64_t bs_argmax(const float *v, int64_t n);
/* Top-1 accuracy of n rows of `classes` logits against labels; BS_EDATA (naming the sample)
 * when a label is outside [0, classes). */
int bs_metric_top1(const float *logits, int64_t n, int64_t classes, const int64_t *labels,
                   double *acc, bs_err_t *err);
/* Fraction of the n rows whose top-1 class equals the reference's. 1.0 when n == 0. */
double bs_metric_agreement(const float *out, const float *ref, int64_t n, int64_t classes);
/* SQNR in dB over count values; +INFINITY when out equals ref exactly. */
double bs_metric_sqnr_db(const float *out, const float *ref, int64_t count);

#endif

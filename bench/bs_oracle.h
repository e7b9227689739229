/*
 * bs_oracle.h - oracle problems for benchmarking search policies (issue 6): every
 * configuration of a small search space evaluated in advance, in one text file, so a policy
 * can be run against it thousands of times without a device, and its result compared with the
 * true Pareto front.
 *
 * The file (bench/oracle/<model>.csv, written by bench/make_oracle.c; format in
 * bench/README.md, "Oracle problem (issue 6)") is a header of "# key: value" lines followed by
 * a CSV table:
 *
 *   # bitscout oracle v1
 *   # model: fmnist-cnn.onnx sha256 <64 hex>
 *   # data: <free text: evaluation and calibration data, weight quantization>
 *   # machine: <free text: CPU, engine version and ISA, date>
 *   # layers: conv1 conv2 fc1 fc2            (graph order)
 *   # choices: w32a32 w32a8 w8a32 ...        (the same list for every layer)
 *   # base_ms: <float>                       (the non-layer ops, fp32)
 *   # layer_ms: <layer> <one float per choice>   (one line per layer, in layer order)
 *   # uniform_ms: <one float per choice>     (optional: the whole model measured at each
 *                                             uniform choice, for judging the additive model)
 *   cand,assignment,accuracy,latency_ms,weight_bytes
 *   0-0-0-0,"conv1=w32a32,conv2=w32a32,fc1=w32a32,fc2=w32a32",0.9170,0.141234,429672
 *   ...
 *
 * Rows come in mixed-radix order of the candidate (layer 0 the most significant digit), one
 * row per configuration, n_choices ^ n_layers rows. cand is the choice index of each layer
 * joined by '-'; assignment is the canonical assignment (common/bs_precision.h), quoted
 * because it holds commas; latency_ms = base_ms + the sum of the chosen layer_ms entries.
 *
 * bs_oracle_load is strict: a missing or repeated header line, a row out of order, a cand or
 * assignment that does not match its position, a number that does not parse or is out of
 * range, or a latency that disagrees with the layer table (beyond the rounding of the
 * printed digits) is an error naming "file:line" and what was expected.
 */
#ifndef BS_ORACLE_H
#define BS_ORACLE_H

#include <stdint.h>

#include "bs_error.h"
#include "bs_precision.h"

#define BS_ORACLE_MAGIC "# bitscout oracle v1"
#define BS_ORACLE_MAX_LAYERS 16
#define BS_ORACLE_MAX_CHOICES 18
#define BS_ORACLE_MAX_CONFIGS ((int64_t)1 << 22) /* rows a file may hold */

typedef struct bs_oracle {
    int n_layers;
    char **layers;          /* owned: layer names, graph order */
    int n_choices;
    bs_prec_t choices[BS_ORACLE_MAX_CHOICES]; /* the same list for every layer */
    int64_t n_configs;      /* n_choices ^ n_layers */
    double *accuracy;       /* owned: n_configs, indexed by bs_oracle_index */
    double *latency_ms;     /* owned: n_configs */
    int64_t *weight_bytes;  /* owned: n_configs */
    double *layer_ms;       /* owned: n_layers x n_choices, [layer * n_choices + choice] */
    double *uniform_ms;     /* owned: n_choices, or NULL when the file has no uniform_ms */
    double base_ms;
    char *model;            /* owned: model file name as the header gives it */
    char sha256[65];        /* the model's SHA-256, lowercase hex */
    char *data;             /* owned: the "data:" header text */
    char *machine;          /* owned: the "machine:" header text */
} bs_oracle_t;

/* Reads and checks an oracle file. o is the caller's (bs_oracle_free), zeroed on failure.
 * BS_EIO / BS_ENOENT when the file cannot be read, BS_EDATA with err "path:line: ..." when
 * its content is wrong, BS_ENOMEM. */
int bs_oracle_load(const char *path, bs_oracle_t *o, bs_err_t *err);

/* Writes o in the format above (latency_ms as stored; callers keep it consistent with the
 * layer table). 0, BS_EINVAL for an inconsistent struct, BS_EIO naming the file, BS_ENOMEM. */
int bs_oracle_save(const char *path, const bs_oracle_t *o, bs_err_t *err);

/* Row of a candidate: cand[i] is layer i's choice index. -1 when an index is out of range. */
int64_t bs_oracle_index(const bs_oracle_t *o, const int *cand);
/* The same from precisions (one per layer): -1 when a precision is not among the choices. */
int64_t bs_oracle_index_precs(const bs_oracle_t *o, const bs_prec_t *precs);
/* The inverse: cand[0..n_layers) of a row. */
void bs_oracle_cand(const bs_oracle_t *o, int64_t index, int *cand);

/* The additive latency model: base_ms + sum of layer_ms over cand. */
double bs_oracle_latency(const bs_oracle_t *o, const int *cand);

void bs_oracle_free(bs_oracle_t *o); /* NULL-safe; zeroes *o */

#endif

/*
 * bs_config.h - campaign files: parse, validate, and build the search space from the model.
 *
 * A campaign file is JSON (configs/README.md explains every key). Parsing is strict: an unknown
 * key, a missing required key, a wrong type or a value out of range is an error whose message
 * names the file, the key path and what was expected, e.g.
 *   configs/x.json: objectives[1].metric: expected one of accuracy, latency_p90_ms, ...; got
 *   "latncy"
 * Relative paths resolve against the directory of the campaign file. Referenced files must
 * exist when the campaign is loaded.
 *
 * Two optional sections shape how agents run jobs rather than what is searched:
 * "quantization" (how weight scales and int8 activation ranges are found) is normalised with
 * every default filled in and sent to agents in JOB.data; "sensitivity" asks for one
 * sensitivity job per agent name (each layer alone at each precision, the rest at fp32) and
 * gives its precision list (default: every non-fp32 choice the search-space rules offer) and
 * evaluation sample count. bs_sens_check holds a sensitivity job's rows against them.
 *
 * bs_space_build() combines the campaign's search-space rules with the model's weight-bearing
 * layers: each rule selects layers by name pattern (later rules override earlier ones), layers
 * no rule selects stay at fp32 (a single choice), and a rule that selects no layer is an error
 * listing the valid layer names.
 */
#ifndef BS_CONFIG_H
#define BS_CONFIG_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "bs_error.h"
#include "bs_model.h"
#include "bs_precision.h"
#include "bs_store.h"

#define BS_CONFIG_MAX_BYTES (1u << 20)
#define BS_MAX_CHOICES 18 /* 9 weight x 2 activation precisions */
#define BS_MAX_OBJECTIVES 4
#define BS_MAX_CONSTRAINTS 8
#define BS_MAX_TAGS 16

typedef struct bs_space_rule {
    char *match;        /* owned: layer name or glob */
    int n_w;            /* weight choices */
    uint8_t w[9];
    int n_a;            /* activation choices */
    uint8_t a[2];
} bs_space_rule_t;

typedef struct bs_objective {
    char metric[32];    /* a name from BS_METRIC_MAP */
    int goal;           /* +1 maximise, -1 minimise */
} bs_objective_t;

typedef struct bs_constraint {
    char metric[32];
    double min;         /* NAN when absent */
    double max;         /* NAN when absent */
} bs_constraint_t;

typedef struct bs_data_cfg {
    char *images;       /* owned, resolved path, NULL if absent */
    char *labels;       /* owned, resolved path, NULL if absent (unlabelled data) */
    int64_t count;      /* samples to use, 0 = all */
} bs_data_cfg_t;

typedef struct bs_config {
    char *path;         /* owned: the file as given */
    char *text;         /* owned: the file's bytes (stored with the campaign) */
    char *name;         /* owned: campaign name, [A-Za-z0-9._-]{1,64} */
    char *model;        /* owned: resolved model path */
    bs_data_cfg_t eval;         /* data.eval */
    bs_data_cfg_t calibration;  /* data.calibration (images only) */
    cJSON *preprocess;  /* owned: data.preprocess, validated; sent to agents verbatim */
    int n_rules;
    bs_space_rule_t *rules;     /* owned */
    int n_objectives;
    bs_objective_t objectives[BS_MAX_OBJECTIVES];
    int n_constraints;
    bs_constraint_t constraints[BS_MAX_CONSTRAINTS];
    char policy[32];    /* "random", "nsga2", "haq", "sensitivity" */
    uint64_t seed;
    cJSON *policy_params; /* owned: the whole "policy" object */
    int64_t budget_evals;   /* budget.evaluations, >= 1 */
    double budget_wall_s;   /* budget.wall_time_s, 0 = unlimited */
    char backend[16];       /* measure.backend: "engine" (default) or "sim" */
    cJSON *measure;         /* owned: the whole "measure" object, sent to agents in JOB */
    int n_tags;
    char *tags[BS_MAX_TAGS]; /* owned: an agent must carry all of these */
    int heartbeat_ms;       /* agents.heartbeat_ms, default 1000 */
    int liveness;           /* agents.liveness, missed heartbeats before an agent is dropped,
                               default 5 */
    int lease_ms;           /* agents.lease_ms, a job's deadline, default 300000 */
    int max_attempts;       /* agents.max_attempts, default 3 */
    cJSON *quantization;    /* owned: the "quantization" object with every default filled in
                               ({"weights", "activations"}, plus "percentile" when activations
                               is "percentile"); sent to agents in JOB.data */
    int sensitivity;        /* 1: "sensitivity" is present: one sensitivity job per agent name */
    int n_sens_precs;       /* sensitivity.precisions: 1..BS_MAX_CHOICES - 1, distinct, none
                               of them w32a32 */
    bs_prec_t sens_precs[BS_MAX_CHOICES];
    int64_t sens_eval_count; /* sensitivity.eval_count, default data.eval.count (0 = all) */
    double hv_ref[BS_MAX_OBJECTIVES]; /* hypervolume.reference per objective, in the metric's
                                         units; NAN: the worst value seen */
} bs_config_t;

/* Loads and validates a campaign file. *out is the caller's (bs_config_free). */
int bs_config_load(const char *path, bs_config_t **out, bs_err_t *err);
/* Same from memory; path is used for messages and to resolve relative paths. */
int bs_config_parse(const char *text, size_t len, const char *path, bs_config_t **out,
                    bs_err_t *err);
void bs_config_free(bs_config_t **cfg); /* NULL-safe; clears *cfg */

/* What a layer is, for policies that learn from layer shapes (HAQ's state). Filled by
 * bs_space_describe from the engine's planned graph; zero where the model could not be
 * planned (then only n_params is known). */
typedef enum bs_layer_kind {
    BS_LAYER_CONV = 0,      /* Conv, group 1 (or grouped but not depthwise) */
    BS_LAYER_DEPTHWISE = 1, /* Conv with group == input channels */
    BS_LAYER_FC = 2,        /* Gemm, MatMul */
    BS_LAYER_CONVT = 3,     /* ConvTranspose */
} bs_layer_kind_t;

typedef struct bs_layer_desc {
    int known;          /* 1: the fields below come from the planned graph */
    bs_layer_kind_t kind;
    int64_t in_ch, out_ch;
    int64_t kernel;     /* kernel height x width (1 for FC) */
    int64_t stride;     /* the largest stride (1 for FC) */
    int64_t macs;       /* multiply-accumulates of one inference at batch 1 */
} bs_layer_desc_t;

typedef struct bs_space_layer {
    char *name;         /* owned */
    char *op_type;      /* owned */
    int64_t n_params;
    int n_choices;
    bs_prec_t choices[BS_MAX_CHOICES];
    bs_layer_desc_t desc;
} bs_space_layer_t;

typedef struct bs_space {
    int n_layers;
    bs_space_layer_t *layers;   /* owned, model graph order */
    const char **names;         /* owned array (strings borrowed from layers) */
} bs_space_t;

int bs_space_build(const bs_config_t *cfg, const bs_model_info_t *model, bs_space_t *out,
                   bs_err_t *err);
void bs_space_free(bs_space_t *s);
/* Fills every layer's desc from the engine's planned graph of the model file (shapes
 * inferred from the model's declared input shapes). BS_EMODEL with err when the engine cannot
 * plan the model: callers may go on without descriptions (desc.known stays 0). */
int bs_space_describe(bs_space_t *s, const char *model_path, bs_err_t *err);
double bs_space_size(const bs_space_t *s); /* number of configurations (a double: it can be
                                              astronomically large) */
/* JSON description of the space, stable across runs: [{"name":..,"choices":["w8a8",..]},..].
 * Caller frees. */
char *bs_space_to_json(const bs_space_t *s);

/* Checks a sensitivity job's RESULT.sensitivity object against the campaign (see
 * proto/PROTOCOL.md, "Sensitivity jobs"): "baseline" a number in [0, 1], "metric" a string,
 * "rows" an array of n_rows objects in which every layer is one of the space's layers, every
 * precision one of cfg->sens_precs, no (layer, precision) pair twice, value and delta both
 * numbers in range or both null, and delta = value - baseline (to 1e-6). Fills rows[0..n_rows)
 * with strings borrowed from sens. 0, BS_EPROTO with err naming the row and field
 * ("RESULT.sensitivity.rows[3].precision: ..."), or BS_ENOMEM. */
int bs_sens_check(const bs_config_t *cfg, const bs_space_t *space, const cJSON *sens,
                  bs_sens_row_t *rows, int n_rows, bs_err_t *err);

#endif

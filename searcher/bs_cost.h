/*
 * bs_cost.h - per-layer cost models learned from measurements, and budget enforcement.
 *
 * A budget is a campaign constraint with a "max" on a cost metric (latency_*_ms, weight_bytes,
 * arena_bytes, peak_rss_bytes, energy_j). For each such metric a model predicts a candidate's
 * value as an additive sum
 *     predict(cand) = base + sum over layers l of c[l][cand[l]]
 * which is exact for weight bytes and a good first-order model for latency and energy.
 *
 * Before any measurement the terms come from a prior: weight_bytes n_params * wbits / 8 (fp16
 * 2 bytes, fp32 4); latency and energy proportional to the layer's MACs (or n_params when the
 * layer has no description) times a relative cost per precision (fp32 1, fp16 1, int8 0.5,
 * lower widths 0.5), with an unknown overall scale; arena and RSS only a base. Each
 * observation then teaches the model:
 *  - a result with a per-layer profile (latency metrics) sets that layer's term for that
 *    choice to the running mean of the profiled times, and the base to the mean of what the
 *    profile does not cover (total - sum of layer terms);
 *  - every total updates the terms by ridge regression toward the prior (a few sweeps of
 *    coordinate descent over the observed candidates), so terms never seen keep the prior's
 *    shape scaled to the measurements.
 * Metrics with no observation yet predict from the prior only; the scale of a latency prior
 * is unknown until one result lands, so such a model reports bs_cost_ready() == 0 and budget
 * enforcement ignores it (a config is then only checked against the metrics it can predict).
 */
#ifndef BS_COST_H
#define BS_COST_H

#include <cjson/cJSON.h>

#include "bs_config.h"
#include "bs_error.h"

typedef struct bs_cost bs_cost_t;

/* 1 if metric is a cost a model can learn (see above). */
int bs_cost_metric_ok(const char *metric);
/* A model for metric over space (borrowed; outlives the model). NULL on OOM or a metric that
 * is not a cost. */
bs_cost_t *bs_cost_new(const bs_space_t *space, const char *metric);
void bs_cost_free(bs_cost_t **c); /* NULL-safe; clears *c */

const char *bs_cost_metric(const bs_cost_t *c);
/* Teaches the model one measured total (NAN: ignored) and optionally per-layer times
 * (layer_ms[n_layers], NAN where absent; only used by latency models). 0, or BS_EINVAL for a
 * choice index out of range (nothing learned). */
int bs_cost_observe(bs_cost_t *c, const int *cand, double total, const double *layer_ms);
int bs_cost_ready(const bs_cost_t *c);   /* 1 once it can predict in the metric's units */
int64_t bs_cost_count(const bs_cost_t *c); /* observations so far */
double bs_cost_predict(const bs_cost_t *c, const int *cand);
double bs_cost_term(const bs_cost_t *c, int layer, int choice); /* c[l][choice] */
double bs_cost_base(const bs_cost_t *c);

/* Saves/restores what the model learned. load: 0 or BS_EPROTO with err. */
cJSON *bs_cost_save(const bs_cost_t *c);
int bs_cost_load(bs_cost_t *c, const cJSON *saved, bs_err_t *err);
/* n models as a JSON array under key of obj (0 or BS_ENOMEM), and back (0, or BS_EPROTO with
 * err naming "policy state: key \"KEY\"[i]" when the array or a model does not fit). */
int bs_cost_put_list(cJSON *obj, const char *key, bs_cost_t *const *models, int n);
int bs_cost_get_list(const cJSON *obj, const char *key, bs_cost_t *const *models, int n,
                     bs_err_t *err);

/* Moves the candidate one layer at a time until every ready model's prediction fits its limit
 * (limits[i] for models[i]; models not ready are ignored), HAQ's "decrease the bitwidth until
 * the budget holds" generalised: a move may take a layer to ANY of its choices whose predicted
 * costs lower the summed excess (each model's excess relative to its limit), because cost is
 * not always monotone in precision (w4a8 runs faster than w2a32, w8a8 faster than w32a8).
 * Among the moves, the one with the most excess removed per unit of precision lost (log2 of the
 * weight bits ratio plus log2 of the activation bits ratio, at least 0.1, so a move to a more
 * precise choice counts 0.1). The summed excess falls strictly at every step, so the walk
 * ends. Returns 1 if the result fits, 0 if no move removes any more excess (cand is then the
 * cheapest the walk reaches), or BS_ENOMEM. */
int bs_cost_enforce(bs_cost_t *const *models, const double *limits, int n_models,
                    const bs_space_t *space, int *cand);

/* Builds one model per budget constraint of the campaign (constraints with a max on a cost
 * metric). *models (caller frees each with bs_cost_free, then the array with bs_free) and
 * *limits (bs_free) get n entries; 0 or BS_ENOMEM. */
int bs_cost_models_for(const bs_config_t *cfg, const bs_space_t *space, bs_cost_t ***models,
                       double **limits, int *n);

#endif

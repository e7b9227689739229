/*
 * bs_polutil.h - pieces every search policy shares: objective vectors and constraint
 * violation in one orientation, a set of candidates already proposed, the order of a layer's
 * choices from most to least precise, parameter reading with campaign-file error messages, and
 * JSON codecs for the arrays and generator a policy saves.
 *
 * Orientation: bs_pol_objectives() turns a result into a vector to MINIMISE (a maximised
 * metric is negated), so every policy compares with one dominance rule. Violation is the sum
 * over constraints of how far the metric lies outside its bound, relative to the bound
 * (|bound| or 1 when the bound is 0); an unknown constrained metric counts as violation 1e9,
 * as bs_pareto does (an unmeasured energy never passes an energy budget).
 *
 * Saved arrays of doubles are base64 of little-endian IEEE-754 binary64 (exact and compact:
 * network weights and replay buffers are the bulk of a saved state); small integer arrays are
 * JSON arrays.
 */
#ifndef BS_POLUTIL_H
#define BS_POLUTIL_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "bs_config.h"
#include "bs_error.h"
#include "bs_metrics.h"
#include "bs_util.h"

/* Minimisation vector of the campaign's objectives (out[cfg->n_objectives]). Returns 1 when
 * every objective is known, 0 when one is not (its entry is then +INFINITY). */
int bs_pol_objectives(const bs_config_t *cfg, const bs_metrics_t *m, double *out);
/* Total relative constraint violation, 0 when every constraint holds. */
double bs_pol_violation(const bs_config_t *cfg, const bs_metrics_t *m);

/* A set of candidates (choice-index vectors of n ints), open addressing. */
typedef struct bs_candset {
    int n;              /* layers per candidate */
    int64_t count, cap; /* cap: slots, a power of two */
    int *keys;          /* owned: cap * n ints */
    uint8_t *used;      /* owned: cap flags */
} bs_candset_t;
int bs_candset_init(bs_candset_t *s, int n_layers);       /* 0 or BS_ENOMEM */
int bs_candset_add(bs_candset_t *s, const int *cand);     /* 1 added, 0 present, BS_ENOMEM */
int bs_candset_has(const bs_candset_t *s, const int *cand);
void bs_candset_free(bs_candset_t *s);

/* A candidate set as a flat JSON integer array (n ints per candidate, slot order) under key;
 * get_candset empties *s and refills it, checking every choice against the space (BS_EPROTO
 * naming the key, BS_ENOMEM). */
int bs_pol_put_candset(cJSON *obj, const char *key, const bs_candset_t *s);
int bs_pol_get_candset(const cJSON *obj, const char *key, const bs_space_t *space,
                       bs_candset_t *s, bs_err_t *err);

/* Choices of layer l ordered from most to least precise (weight bits, then activation bits,
 * both descending): order[0..n_choices). */
void bs_pol_choice_order(const bs_space_layer_t *l, int *order);

/* Parameters, read from ctx->params with messages "FILE: policy.KEY: expected ..., got ...".
 * Absent keys take the default. Return 0 or BS_ECONFIG. */
int bs_pol_param_int(const bs_config_t *cfg, const cJSON *params, const char *key, int64_t lo,
                     int64_t hi, int64_t def, int64_t *out, bs_err_t *err);
int bs_pol_param_num(const bs_config_t *cfg, const cJSON *params, const char *key, double lo,
                     double hi, double def, double *out, bs_err_t *err);
/* One of a NULL-terminated list of names; *out borrows the list entry. */
int bs_pol_param_str(const bs_config_t *cfg, const cJSON *params, const char *key,
                     const char *const *allowed, const char *def, const char **out,
                     bs_err_t *err);

/* Saving. put_* add a member to obj and return 0 or BS_ENOMEM; get_* read a member and
 * return 0 or BS_EPROTO with err naming the key and what was expected ("policy state: key
 * \"population\": expected 96 doubles"). */
int bs_pol_put_f64s(cJSON *obj, const char *key, const double *v, int64_t n);
int bs_pol_get_f64s(const cJSON *obj, const char *key, double *v, int64_t n, bs_err_t *err);
int bs_pol_put_ints(cJSON *obj, const char *key, const int *v, int64_t n);
int bs_pol_get_ints(const cJSON *obj, const char *key, int *v, int64_t n, bs_err_t *err);
/* Counts of variable-length arrays: get_len says how many doubles / ints the member holds. */
int bs_pol_get_len(const cJSON *obj, const char *key, int64_t *n, bs_err_t *err);
int bs_pol_put_i64(cJSON *obj, const char *key, int64_t v);
int bs_pol_get_i64(const cJSON *obj, const char *key, int64_t lo, int64_t hi, int64_t *v,
                   bs_err_t *err);
int bs_pol_put_rng(cJSON *obj, const char *key, const bs_rng_t *r);
int bs_pol_get_rng(const cJSON *obj, const char *key, bs_rng_t *r, bs_err_t *err);

/* Standard normal deviate (Box-Muller on bs_rng_uniform). */
double bs_pol_gauss(bs_rng_t *r);

#endif

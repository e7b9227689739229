/*
 * bs_pareto.h - the campaign's Pareto front, updated as each result lands.
 *
 * A point is an evaluation's objective vector. Only feasible points can be on the front: a
 * point is feasible when every objective value is known and every constraint holds (a
 * constraint on an unknown metric fails: an unmeasured energy never passes an energy budget).
 * The front keeps the feasible points that no other feasible point dominates; among exact
 * ties the first one seen stays. Objectives are compared in their campaign direction
 * (maximise accuracy, minimise latency...).
 */
#ifndef BS_PARETO_H
#define BS_PARETO_H

#include <stdint.h>

#include "bs_config.h"
#include "bs_metrics.h"

typedef struct bs_pareto bs_pareto_t;

/* Copies the objectives and constraints; NULL on OOM. Destroy with bs_pareto_destroy. */
bs_pareto_t *bs_pareto_new(const bs_objective_t *obj, int n_obj, const bs_constraint_t *cons,
                           int n_cons);
void bs_pareto_destroy(bs_pareto_t **p);

int bs_pareto_feasible(const bs_pareto_t *p, const bs_metrics_t *m);
/* Offers an evaluation. Returns 1 if the front changed, 0 if not, BS_ENOMEM. */
int bs_pareto_add(bs_pareto_t *p, int64_t eval_id, const bs_metrics_t *m);
int bs_pareto_size(const bs_pareto_t *p);
/* Evaluation ids on the front, in insertion order; borrowed, valid until the next add. */
const int64_t *bs_pareto_ids(const bs_pareto_t *p);
/* Their minimisation vectors (maximised objectives negated), n_obj per member in the order of
 * bs_pareto_ids; borrowed, valid until the next add. */
const double *bs_pareto_vectors(const bs_pareto_t *p);
/* 1 if a dominates b (minimisation vectors of length n): no worse everywhere, better once. */
int bs_pareto_dominates(const double *a, const double *b, int n);

#endif

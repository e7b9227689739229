/*
 * bs_hv.h - exact hypervolume of a set of points, and the campaign's normalisation.
 *
 * bs_hv() takes points to MINIMISE and a reference point, and returns the volume of the region
 * dominated by the points and bounded by the reference: the usual measure of how good a Pareto
 * front is (larger is better). Points not strictly better than the reference in every
 * coordinate contribute nothing. It is exact for any dimension by slicing (HSO: sort on the
 * last coordinate, sweep the slabs, recurse on the rest) with a sweep-line base case in two
 * dimensions: O(n log n) for two objectives, O(n^2 log n) for three (0.3 s for 2000 points),
 * O(n^3 log n) for four (about 1 s for 400 points), so the searcher recomputes it only when
 * the front or the normalisation changed. Dominated points may be passed; they add nothing.
 *
 * bs_hv_norm_t maps raw objective values to the unit box so that objectives in milliseconds
 * and in bytes weigh alike: each objective i becomes (v - ideal_i) / (ref_i - ideal_i) in its
 * minimising direction, where the ideal is the best value seen and the reference is the
 * campaign's ("hypervolume": {"reference": {METRIC: value}}) or else the worst value seen among
 * the feasible results. A campaign reference no better than the best value seen gives 0 (no
 * point beats it). The hypervolume reported is then a fraction of the unit box, between 0
 * and 1. Because a "worst seen" reference moves as results land, the time series recorded per
 * campaign is each moment's value under that moment's normalisation.
 */
#ifndef BS_HV_H
#define BS_HV_H

#include "bs_config.h"
#include "bs_metrics.h"

/* Hypervolume of n points of dimension d (pts[i * d + k], minimised) bounded by ref[d].
 * Returns the volume (>= 0), or -1 on OOM. d >= 1. */
double bs_hv(const double *pts, int n, int d, const double *ref);

typedef struct bs_hv_norm {
    int d;
    double ideal[8];   /* best seen, minimising orientation */
    double ref[8];     /* reference, minimising orientation */
    int fixed[8];      /* 1: ref comes from the campaign */
} bs_hv_norm_t;

/* Starts a normalisation for the campaign's objectives: references from cfg (the campaign's
 * "hypervolume.reference", minimising orientation), ideals unknown. */
void bs_hv_norm_init(bs_hv_norm_t *nm, const bs_config_t *cfg);
/* Widens the ideal and the (non-fixed) reference to include point v (minimising). Returns 1
 * when either moved (the normalised hypervolume must be recomputed), 0 when not. */
int bs_hv_norm_include(bs_hv_norm_t *nm, const double *v);
/* Hypervolume of n minimising vectors under the normalisation, in [0, 1]; 0 when a campaign
 * reference is no better than the best value seen; NAN when it is not defined yet (no point, or
 * a worst-seen reference equal to the best value: a single value seen); -1 on OOM. */
double bs_hv_normalized(const bs_hv_norm_t *nm, const double *pts, int n);

#endif

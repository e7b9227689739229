/*
 * bs_stats.h - summary statistics of latency samples, shared by every backend.
 *
 * Percentiles use the nearest-rank method (the p-th percentile of n sorted samples is the one
 * at rank ceil(p/100 * n)), so every reported value is a sample that was actually observed.
 * The median is the middle sample, or the mean of the two middle samples when n is even. The
 * standard deviation is the sample one (divisor n - 1; 0 for a single sample); cv = std / mean.
 */
#ifndef BS_STATS_H
#define BS_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "bs_metrics.h"

typedef struct bs_latency_stats {
    double min, median, mean, p90, p99, std, cv; /* ms (cv: a ratio) */
    int64_t n;                                   /* samples behind the numbers */
} bs_latency_stats_t;

/* Computes the statistics of samples[0..n). Sorts samples in place. BS_EINVAL if n == 0 or a
 * sample is not a finite number >= 0 (out is then all NAN with n = 0). */
int bs_stats_compute(double *samples, size_t n, bs_latency_stats_t *out);
/* Copies the statistics into the latency fields of a metrics record. */
void bs_stats_to_metrics(const bs_latency_stats_t *s, bs_metrics_t *m);

#endif

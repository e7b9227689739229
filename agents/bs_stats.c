/*
 * bs_stats.c - latency statistics (see bs_stats.h): a sort, nearest-rank percentiles and a
 * two-pass mean and standard deviation (two passes: no catastrophic cancellation when the
 * spread is tiny next to the mean, which is the usual case for latency samples).
 */
#include "bs_stats.h"
#include "bs_error.h"

#include <math.h>
#include <stdlib.h>

static int s_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest rank: the sample at 1-based rank ceil(p/100 * n), at least rank 1. */
static double s_rank(const double *sorted, size_t n, double p)
{
    double r = ceil(p / 100.0 * (double)n);
    size_t rank = r < 1.0 ? 1 : (size_t)r;
    if (rank > n)
        rank = n;
    return sorted[rank - 1];
}

int bs_stats_compute(double *samples, size_t n, bs_latency_stats_t *out)
{
    out->min = out->median = out->mean = out->p90 = out->p99 = out->std = out->cv = NAN;
    out->n = 0;
    if (n == 0 || !samples)
        return BS_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(samples[i]) || samples[i] < 0.0)
            return BS_EINVAL;
    qsort(samples, n, sizeof *samples, s_cmp);
    double sum = 0.0;
    for (size_t i = 0; i < n; i++)
        sum += samples[i];
    double mean = sum / (double)n;
    double ss = 0.0;
    for (size_t i = 0; i < n; i++)
        ss += (samples[i] - mean) * (samples[i] - mean);
    out->min = samples[0];
    out->median = (n % 2) ? samples[n / 2] : 0.5 * (samples[n / 2 - 1] + samples[n / 2]);
    out->mean = mean;
    out->p90 = s_rank(samples, n, 90.0);
    out->p99 = s_rank(samples, n, 99.0);
    out->std = n > 1 ? sqrt(ss / (double)(n - 1)) : 0.0;
    out->cv = mean > 0.0 ? out->std / mean : 0.0;
    out->n = (int64_t)n;
    return 0;
}

void bs_stats_to_metrics(const bs_latency_stats_t *s, bs_metrics_t *m)
{
    m->lat_min_ms = s->min;
    m->lat_median_ms = s->median;
    m->lat_mean_ms = s->mean;
    m->lat_p90_ms = s->p90;
    m->lat_p99_ms = s->p99;
    m->lat_std_ms = s->std;
    m->lat_cv = s->cv;
    m->lat_runs = s->n;
}

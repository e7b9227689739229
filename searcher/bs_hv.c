/*
 * bs_hv.c - exact hypervolume by slicing (see bs_hv.h).
 *
 * s_hv(d) sorts the points on their last coordinate; between consecutive distinct values of it
 * (and finally the reference) lies a slab whose cross-section is the (d-1)-dimensional
 * hypervolume of the points seen so far, projected. In two dimensions the cross-section walk is
 * a sweep: sorted on y, the area grows by (ref_x - best x so far) for each y step. Points are
 * first clipped to those strictly inside the reference box.
 */
#include "bs_hv.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bs_alloc.h"

typedef struct s_sort {
    const double *p;
    double key;
} s_sort_t;

static int s_cmp(const void *a, const void *b)
{
    double x = ((const s_sort_t *)a)->key, y = ((const s_sort_t *)b)->key;
    return x < y ? -1 : x > y;
}

/* pts: n pointers to points of dimension >= d; returns the volume in the first d coords. */
static double s_hv(const double **pts, int n, int d, const double *ref)
{
    if (n == 0)
        return 0;
    if (d == 1) {
        double best = ref[0];
        for (int i = 0; i < n; i++)
            if (pts[i][0] < best)
                best = pts[i][0];
        return ref[0] - best;
    }
    s_sort_t *s = bs_malloc(sizeof *s * (size_t)n);
    if (!s)
        return -1;
    for (int i = 0; i < n; i++)
        s[i] = (s_sort_t){pts[i], pts[i][d - 1]};
    qsort(s, (size_t)n, sizeof *s, s_cmp);
    double vol = 0;
    if (d == 2) {
        double bestx = ref[0];
        for (int i = 0; i < n; i++) {
            if (s[i].p[0] < bestx)
                bestx = s[i].p[0];
            double next = i + 1 < n ? s[i + 1].key : ref[1];
            vol += (ref[0] - bestx) * (next - s[i].key);
        }
        bs_free(s);
        return vol;
    }
    const double **sub = bs_malloc(sizeof *sub * (size_t)n);
    if (!sub) {
        bs_free(s);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        sub[i] = s[i].p;
        double next = i + 1 < n ? s[i + 1].key : ref[d - 1];
        if (next <= s[i].key)
            continue; /* same slice as the next point: add it first */
        double a = s_hv(sub, i + 1, d - 1, ref);
        if (a < 0) {
            vol = -1;
            break;
        }
        vol += a * (next - s[i].key);
    }
    bs_free(sub);
    bs_free(s);
    return vol;
}

double bs_hv(const double *pts, int n, int d, const double *ref)
{
    if (d < 1 || n <= 0)
        return 0;
    const double **in = bs_malloc(sizeof *in * (size_t)n);
    if (!in)
        return -1;
    int m = 0;
    for (int i = 0; i < n; i++) {
        const double *p = pts + (size_t)i * (size_t)d;
        int inside = 1;
        for (int k = 0; k < d && inside; k++)
            inside = p[k] < ref[k]; /* also false for NAN */
        if (inside)
            in[m++] = p;
    }
    double v = s_hv(in, m, d, ref);
    bs_free(in);
    return v;
}

void bs_hv_norm_init(bs_hv_norm_t *nm, const bs_config_t *cfg)
{
    memset(nm, 0, sizeof *nm);
    nm->d = cfg->n_objectives;
    for (int i = 0; i < nm->d; i++) {
        nm->ideal[i] = INFINITY;
        nm->ref[i] = -INFINITY;
        if (isfinite(cfg->hv_ref[i])) {
            nm->fixed[i] = 1;
            nm->ref[i] = cfg->objectives[i].goal > 0 ? -cfg->hv_ref[i] : cfg->hv_ref[i];
        }
    }
}

int bs_hv_norm_include(bs_hv_norm_t *nm, const double *v)
{
    int moved = 0;
    for (int i = 0; i < nm->d; i++) {
        if (!isfinite(v[i]))
            continue;
        if (v[i] < nm->ideal[i]) {
            nm->ideal[i] = v[i];
            moved = 1;
        }
        if (!nm->fixed[i] && v[i] > nm->ref[i]) {
            nm->ref[i] = v[i];
            moved = 1;
        }
    }
    return moved;
}

double bs_hv_normalized(const bs_hv_norm_t *nm, const double *pts, int n)
{
    int d = nm->d;
    if (n <= 0 || d < 1)
        return NAN;
    for (int i = 0; i < d; i++) {
        if (!isfinite(nm->ideal[i]) || !isfinite(nm->ref[i]))
            return NAN;
        if (!(nm->ref[i] > nm->ideal[i]))
            return nm->fixed[i] ? 0.0 : NAN; /* a campaign reference nothing beats: 0 */
    }
    double *q = bs_malloc(sizeof *q * (size_t)n * (size_t)d);
    if (!q)
        return -1;
    double one[8];
    for (int k = 0; k < d; k++)
        one[k] = 1.0;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < d; k++) {
            double v = pts[(size_t)i * (size_t)d + k];
            /* a point on the reference (the worst seen) adds nothing, as it should */
            q[(size_t)i * (size_t)d + k] = (v - nm->ideal[k]) / (nm->ref[k] - nm->ideal[k]);
        }
    double v = bs_hv(q, n, d, one);
    bs_free(q);
    return v;
}

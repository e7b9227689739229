/*
 * bs_pareto.c - an incremental non-dominated set. Each objective is turned into a value to
 * minimise (maximised ones are negated); a new feasible point is rejected if a member
 * dominates or equals it, otherwise it evicts the members it dominates and joins. The front of
 * a real campaign holds tens of points, so a linear scan per result is the right structure.
 */
#include "bs_pareto.h"
#include "bs_alloc.h"

#include <math.h>
#include <string.h>

struct bs_pareto {
    int n_obj;
    bs_objective_t obj[BS_MAX_OBJECTIVES];
    int n_cons;
    bs_constraint_t cons[BS_MAX_CONSTRAINTS];
    int n;            /* members */
    int cap;
    int64_t *ids;     /* [cap] */
    double *vec;      /* [cap * n_obj] minimisation vectors */
};

bs_pareto_t *bs_pareto_new(const bs_objective_t *obj, int n_obj, const bs_constraint_t *cons,
                           int n_cons)
{
    if (n_obj < 1 || n_obj > BS_MAX_OBJECTIVES || n_cons < 0 || n_cons > BS_MAX_CONSTRAINTS)
        return NULL;
    bs_pareto_t *p = bs_calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->n_obj = n_obj;
    memcpy(p->obj, obj, sizeof *obj * (size_t)n_obj);
    p->n_cons = n_cons;
    if (n_cons)
        memcpy(p->cons, cons, sizeof *cons * (size_t)n_cons);
    return p;
}

void bs_pareto_destroy(bs_pareto_t **pp)
{
    if (!pp || !*pp)
        return;
    bs_free((*pp)->ids);
    bs_free((*pp)->vec);
    bs_free(*pp);
    *pp = NULL;
}

static int s_vector(const bs_pareto_t *p, const bs_metrics_t *m, double *v)
{
    for (int i = 0; i < p->n_obj; i++) {
        double x;
        if (bs_metrics_get(m, p->obj[i].metric, &x) != 0 || !isfinite(x))
            return 0;
        v[i] = p->obj[i].goal > 0 ? -x : x;
    }
    return 1;
}

int bs_pareto_feasible(const bs_pareto_t *p, const bs_metrics_t *m)
{
    double v[BS_MAX_OBJECTIVES];
    if (!s_vector(p, m, v))
        return 0;
    for (int i = 0; i < p->n_cons; i++) {
        double x;
        if (bs_metrics_get(m, p->cons[i].metric, &x) != 0)
            return 0;
        if (!isnan(p->cons[i].min) && x < p->cons[i].min)
            return 0;
        if (!isnan(p->cons[i].max) && x > p->cons[i].max)
            return 0;
    }
    return 1;
}

int bs_pareto_dominates(const double *a, const double *b, int n)
{
    int better = 0;
    for (int i = 0; i < n; i++) {
        if (a[i] > b[i])
            return 0;
        if (a[i] < b[i])
            better = 1;
    }
    return better;
}

int bs_pareto_add(bs_pareto_t *p, int64_t eval_id, const bs_metrics_t *m)
{
    double v[BS_MAX_OBJECTIVES];
    int k = p->n_obj;
    if (!bs_pareto_feasible(p, m) || !s_vector(p, m, v))
        return 0;
    for (int i = 0; i < p->n; i++) {
        const double *w = p->vec + (size_t)i * (size_t)k;
        if (bs_pareto_dominates(w, v, k) || memcmp(w, v, sizeof(double) * (size_t)k) == 0)
            return 0;
    }
    if (p->n == p->cap) {
        int cap = p->cap ? p->cap * 2 : 16;
        int64_t *ids = bs_realloc(p->ids, sizeof *ids * (size_t)cap);
        if (!ids)
            return BS_ENOMEM;
        p->ids = ids;
        double *vec = bs_realloc(p->vec, sizeof *vec * (size_t)cap * (size_t)k);
        if (!vec)
            return BS_ENOMEM;
        p->vec = vec;
        p->cap = cap;
    }
    int out = 0;
    for (int i = 0; i < p->n; i++) {
        const double *w = p->vec + (size_t)i * (size_t)k;
        if (bs_pareto_dominates(v, w, k))
            continue;
        p->ids[out] = p->ids[i];
        memmove(p->vec + (size_t)out * (size_t)k, w, sizeof(double) * (size_t)k);
        out++;
    }
    p->ids[out] = eval_id;
    memcpy(p->vec + (size_t)out * (size_t)k, v, sizeof(double) * (size_t)k);
    p->n = out + 1;
    return 1;
}

int bs_pareto_size(const bs_pareto_t *p)
{
    return p->n;
}

const int64_t *bs_pareto_ids(const bs_pareto_t *p)
{
    return p->ids;
}

const double *bs_pareto_vectors(const bs_pareto_t *p)
{
    return p->vec;
}

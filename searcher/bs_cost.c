/*
 * bs_cost.c - additive per-layer cost models and greedy budget enforcement (see bs_cost.h).
 *
 * A model keeps its terms in one flat array (layer l's choices start at off[l]), a prior of the
 * same shape (relative units for latency and energy), per-term profile sums and counts, and a
 * ring of the last BS_COST_MAX_OBS observations (candidate and total). After every observation
 * it refits from scratch, so the fit depends only on what was observed, never on the order of
 * refits:
 *  1. the prior's scale (latency, energy): the ratio of profiled means to their prior terms
 *     when any term was profiled, else a least-squares line total ~ b0 + s * prior(cand)
 *     (s > 0, b0 >= 0; a single observation gives s = total / prior(cand));
 *  2. every term starts at its anchor: the profile's running mean when the term was profiled,
 *     else s * prior; the base at b0;
 *  3. a few sweeps of coordinate descent on the ridge objective
 *       sum_i (y_i - base - sum_l c[l][cand_i[l]])^2 + BS_COST_RIDGE * sum (c - anchor)^2
 *     over the stored observations: the base is the mean residual (no penalty), a free term
 *     c[l][k] = (sum over observations with cand[l] = k of (residual + c) + ridge * anchor) /
 *     (count + ridge), and profiled terms stay at their means.
 * Weight bytes use the prior's scale 1 (n_params * wbits / 8 is exact for the weights; the
 * base and the ridge learn what a layer's scales and the layers outside the space add).
 *
 * Enforcement considers, for each layer, a move to ANY less precise choice (a later position
 * in bs_pol_choice_order), not only the next one: in the order w32a32, w32a8, w8a32, ... the
 * next step often saves nothing (w32a32 -> w32a8 holds the same bytes). A move's precision
 * lost is log2 of the weight bits ratio plus log2 of the activation bits ratio (at least 0.1,
 * so a move between equally precise choices is not free); the move with the most excess
 * removed per precision lost wins, and enforcement stops when no move removes any excess.
 */
#include "bs_cost.h"

#include <math.h>
#include <string.h>

#include "bs_alloc.h"
#include "bs_polutil.h"

#define BS_COST_MAX_OBS 4096
#define BS_COST_RIDGE 1.0
#define BS_COST_SWEEPS 4

enum { S_WEIGHTS, S_LATENCY, S_ENERGY, S_BASE };

struct bs_cost {
    const bs_space_t *space; /* borrowed */
    char metric[32];
    int kind; /* S_* */
    int n;    /* layers */
    int n_terms;
    int *off;            /* owned: [n + 1] */
    double *prior;       /* owned: [n_terms] relative shape */
    double *term;        /* owned: [n_terms] fitted terms */
    double *psum, *pcnt; /* owned: [n_terms] profile sums and counts */
    double base, scale;
    int64_t count; /* observations so far (all, not only those kept) */
    int64_t n_obs; /* kept: min(count, BS_COST_MAX_OBS) */
    int *obs_cand; /* owned: [BS_COST_MAX_OBS][n], a ring at count % max */
    double *obs_y; /* owned: [BS_COST_MAX_OBS] */
    double *resid; /* owned: scratch [BS_COST_MAX_OBS] */
};

int bs_cost_metric_ok(const char *metric)
{
    static const char *const ok[] = {"latency_min_ms",  "latency_median_ms",
                                     "latency_mean_ms", "latency_p90_ms",
                                     "latency_p99_ms",  "weight_bytes",
                                     "arena_bytes",     "peak_rss_bytes",
                                     "energy_j",        NULL};
    for (int i = 0; metric && ok[i]; i++)
        if (!strcmp(metric, ok[i]))
            return 1;
    return 0;
}

static double s_wbytes(int w)
{
    return w >= 32 ? 4.0 : w == 16 ? 2.0 : w / 8.0;
}

/* relative compute cost of a precision: fp32/fp16 1, integer weights with int8 activations
 * 0.5 (integer kernels), integer weights with fp32 activations 0.9 (dequantised on the fly) */
static double s_relcost(bs_prec_t p)
{
    if (p.w >= 16)
        return 1.0;
    return p.a <= 8 ? 0.5 : 0.9;
}

bs_cost_t *bs_cost_new(const bs_space_t *space, const char *metric)
{
    if (!bs_cost_metric_ok(metric) || strlen(metric) >= 32)
        return NULL;
    bs_cost_t *c = bs_calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->space = space;
    strcpy(c->metric, metric);
    c->kind = !strcmp(metric, "weight_bytes")   ? S_WEIGHTS
              : !strncmp(metric, "latency_", 8) ? S_LATENCY
              : !strcmp(metric, "energy_j")     ? S_ENERGY
                                                : S_BASE;
    c->n = space->n_layers;
    c->scale = 1.0;
    c->off = bs_calloc((size_t)c->n + 1, sizeof *c->off);
    if (!c->off)
        goto oom;
    for (int l = 0; l < c->n; l++)
        c->off[l + 1] = c->off[l] + space->layers[l].n_choices;
    c->n_terms = c->off[c->n];
    size_t nt = c->n_terms ? (size_t)c->n_terms : 1;
    c->prior = bs_calloc(nt, sizeof(double));
    c->term = bs_calloc(nt, sizeof(double));
    c->psum = bs_calloc(nt, sizeof(double));
    c->pcnt = bs_calloc(nt, sizeof(double));
    c->obs_cand = bs_malloc((size_t)BS_COST_MAX_OBS * (c->n ? (size_t)c->n : 1) * sizeof(int));
    c->obs_y = bs_malloc(BS_COST_MAX_OBS * sizeof(double));
    c->resid = bs_malloc(BS_COST_MAX_OBS * sizeof(double));
    if (!c->prior || !c->term || !c->psum || !c->pcnt || !c->obs_cand || !c->obs_y || !c->resid)
        goto oom;
    for (int l = 0; l < c->n; l++) {
        const bs_space_layer_t *L = &space->layers[l];
        double size =
            L->desc.known && L->desc.macs > 0 ? (double)L->desc.macs : (double)L->n_params;
        for (int k = 0; k < L->n_choices; k++) {
            double *p = &c->prior[c->off[l] + k];
            if (c->kind == S_WEIGHTS)
                *p = (double)L->n_params * s_wbytes(L->choices[k].w);
            else if (c->kind == S_LATENCY || c->kind == S_ENERGY)
                *p = size * s_relcost(L->choices[k]);
            else
                *p = 0;
        }
    }
    memcpy(c->term, c->prior, nt * sizeof(double));
    return c;
oom:
    bs_cost_free(&c);
    return NULL;
}

void bs_cost_free(bs_cost_t **c)
{
    if (!c || !*c)
        return;
    bs_cost_t *m = *c;
    bs_free(m->off);
    bs_free(m->prior);
    bs_free(m->term);
    bs_free(m->psum);
    bs_free(m->pcnt);
    bs_free(m->obs_cand);
    bs_free(m->obs_y);
    bs_free(m->resid);
    bs_free(m);
    *c = NULL;
}

const char *bs_cost_metric(const bs_cost_t *c)
{
    return c->metric;
}
int64_t bs_cost_count(const bs_cost_t *c)
{
    return c->count;
}
double bs_cost_base(const bs_cost_t *c)
{
    return c->base;
}

int bs_cost_ready(const bs_cost_t *c)
{
    return c->kind == S_WEIGHTS || c->count > 0;
}

double bs_cost_term(const bs_cost_t *c, int layer, int choice)
{
    return c->term[c->off[layer] + choice];
}

double bs_cost_predict(const bs_cost_t *c, const int *cand)
{
    double s = c->base;
    for (int l = 0; l < c->n; l++)
        s += c->term[c->off[l] + cand[l]];
    return s;
}

static double s_prior_sum(const bs_cost_t *c, const int *cand)
{
    double s = 0;
    for (int l = 0; l < c->n; l++)
        s += c->prior[c->off[l] + cand[l]];
    return s;
}

static double s_anchor(const bs_cost_t *c, int t)
{
    return c->pcnt[t] > 0 ? c->psum[t] / c->pcnt[t] : c->scale * c->prior[t];
}

static void s_fit(bs_cost_t *c)
{
    int64_t m = c->n_obs;
    if (m == 0)
        return;
    /* 1. scale and a starting base */
    double b0 = 0;
    if (c->kind == S_LATENCY || c->kind == S_ENERGY) {
        double pm = 0, pp = 0;
        for (int t = 0; t < c->n_terms; t++)
            if (c->pcnt[t] > 0) {
                pm += c->psum[t] / c->pcnt[t];
                pp += c->prior[t];
            }
        double sy = 0, sp = 0, syp = 0, spp = 0;
        for (int64_t i = 0; i < m; i++) {
            double p = s_prior_sum(c, c->obs_cand + i * c->n), y = c->obs_y[i];
            sy += y;
            sp += p;
            syp += y * p;
            spp += p * p;
        }
        double my = sy / (double)m, mp = sp / (double)m;
        double vp = spp / (double)m - mp * mp, cyp = syp / (double)m - my * mp;
        if (pp > 0 && pm > 0) {
            c->scale = pm / pp;
        } else if (m >= 3 && vp > 1e-12 * mp * mp && cyp > 0 && my - cyp / vp * mp >= 0) {
            c->scale = cyp / vp;
            b0 = my - c->scale * mp;
        } else if (sp > 0 && sy > 0) {
            c->scale = sy / sp;
        }
    }
    /* 2. anchors */
    for (int t = 0; t < c->n_terms; t++)
        c->term[t] = s_anchor(c, t);
    c->base = b0;
    for (int64_t i = 0; i < m; i++)
        c->resid[i] = c->obs_y[i] - bs_cost_predict(c, c->obs_cand + i * c->n);
    /* 3. coordinate descent */
    double sum_r[BS_MAX_CHOICES], cnt[BS_MAX_CHOICES];
    for (int sweep = 0; sweep < BS_COST_SWEEPS; sweep++) {
        double mr = 0;
        for (int64_t i = 0; i < m; i++)
            mr += c->resid[i];
        mr /= (double)m;
        c->base += mr;
        for (int64_t i = 0; i < m; i++)
            c->resid[i] -= mr;
        for (int l = 0; l < c->n; l++) {
            int nc = c->off[l + 1] - c->off[l];
            for (int k = 0; k < nc; k++)
                sum_r[k] = cnt[k] = 0;
            for (int64_t i = 0; i < m; i++) {
                int k = c->obs_cand[i * c->n + l];
                sum_r[k] += c->resid[i];
                cnt[k] += 1;
            }
            double delta[BS_MAX_CHOICES];
            for (int k = 0; k < nc; k++) {
                int t = c->off[l] + k;
                delta[k] = 0;
                if (c->pcnt[t] > 0 || cnt[k] == 0)
                    continue;
                double old = c->term[t];
                double nw = (sum_r[k] + cnt[k] * old + BS_COST_RIDGE * s_anchor(c, t)) /
                            (cnt[k] + BS_COST_RIDGE);
                delta[k] = nw - old;
                c->term[t] = nw;
            }
            for (int64_t i = 0; i < m; i++)
                c->resid[i] -= delta[c->obs_cand[i * c->n + l]];
        }
    }
}

int bs_cost_observe(bs_cost_t *c, const int *cand, double total, const double *layer_ms)
{
    if (!isfinite(total))
        return 0;
    for (int l = 0; l < c->n; l++)
        if (cand[l] < 0 || cand[l] >= c->off[l + 1] - c->off[l])
            return BS_EINVAL;
    int64_t slot = c->count % BS_COST_MAX_OBS;
    memcpy(c->obs_cand + slot * c->n, cand, (size_t)c->n * sizeof *cand);
    c->obs_y[slot] = total;
    c->count++;
    if (c->n_obs < BS_COST_MAX_OBS)
        c->n_obs++;
    if (layer_ms && c->kind == S_LATENCY)
        for (int l = 0; l < c->n; l++)
            if (isfinite(layer_ms[l]) && layer_ms[l] >= 0) {
                c->psum[c->off[l] + cand[l]] += layer_ms[l];
                c->pcnt[c->off[l] + cand[l]] += 1;
            }
    s_fit(c);
    return 0;
}

cJSON *bs_cost_save(const bs_cost_t *c)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    double bs[2] = {c->base, c->scale};
    int64_t kept = c->n_obs;
    if (!cJSON_AddStringToObject(o, "metric", c->metric) ||
        bs_pol_put_ints(o, "shape", c->off, c->n + 1) || bs_pol_put_i64(o, "count", c->count) ||
        bs_pol_put_f64s(o, "base_scale", bs, 2) ||
        bs_pol_put_f64s(o, "terms", c->term, c->n_terms) ||
        bs_pol_put_f64s(o, "psum", c->psum, c->n_terms) ||
        bs_pol_put_f64s(o, "pcnt", c->pcnt, c->n_terms) ||
        bs_pol_put_ints(o, "obs_cand", c->obs_cand, kept * c->n) ||
        bs_pol_put_f64s(o, "obs_y", c->obs_y, kept)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

int bs_cost_load(bs_cost_t *c, const cJSON *saved, bs_err_t *err)
{
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(saved, "metric");
    if (!cJSON_IsString(mt) || strcmp(mt->valuestring, c->metric))
        return bs_err_set(err, BS_EPROTO, "cost model: key \"metric\": expected \"%s\"",
                          c->metric);
    int *shape = bs_malloc(((size_t)c->n + 1) * sizeof *shape);
    if (!shape)
        return bs_err_set(err, BS_ENOMEM, "cost model: out of memory");
    int rc = bs_pol_get_ints(saved, "shape", shape, c->n + 1, err);
    if (!rc && memcmp(shape, c->off, ((size_t)c->n + 1) * sizeof *shape))
        rc = bs_err_set(err, BS_EPROTO, "cost model %s: key \"shape\": another search space",
                        c->metric);
    bs_free(shape);
    if (rc)
        return rc;
    int64_t count;
    double bsc[2];
    if ((rc = bs_pol_get_i64(saved, "count", 0, INT64_MAX, &count, err)) ||
        (rc = bs_pol_get_f64s(saved, "base_scale", bsc, 2, err)) ||
        (rc = bs_pol_get_f64s(saved, "terms", c->term, c->n_terms, err)) ||
        (rc = bs_pol_get_f64s(saved, "psum", c->psum, c->n_terms, err)) ||
        (rc = bs_pol_get_f64s(saved, "pcnt", c->pcnt, c->n_terms, err)))
        return rc;
    int64_t kept = count < BS_COST_MAX_OBS ? count : BS_COST_MAX_OBS;
    if ((rc = bs_pol_get_ints(saved, "obs_cand", c->obs_cand, kept * c->n, err)) ||
        (rc = bs_pol_get_f64s(saved, "obs_y", c->obs_y, kept, err)))
        return rc;
    for (int64_t i = 0; i < kept * c->n; i++) {
        int l = (int)(i % c->n);
        if (c->obs_cand[i] < 0 || c->obs_cand[i] >= c->off[l + 1] - c->off[l])
            return bs_err_set(err, BS_EPROTO,
                              "cost model %s: key \"obs_cand\"[%lld]: choice "
                              "out of range",
                              c->metric, (long long)i);
    }
    c->count = count;
    c->n_obs = kept;
    c->base = bsc[0];
    c->scale = bsc[1];
    return 0;
}

static double s_lost(bs_prec_t from, bs_prec_t to)
{
    double d = log2((double)from.w / to.w) + log2((double)from.a / to.a);
    return d > 0.1 ? d : 0.1;
}

/* Summed excess of the predictions over the limits, each relative to its limit; models that
 * are not ready (pred NAN) count nothing. */
static double s_excess(const double *pred, const double *limits, int n)
{
    double e = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(pred[i]) && pred[i] > limits[i])
            e += (pred[i] - limits[i]) / (limits[i] != 0 ? fabs(limits[i]) : 1.0);
    return e;
}

int bs_cost_enforce(bs_cost_t *const *models, const double *limits, int n_models,
                    const bs_space_t *space, int *cand)
{
    int n = space->n_layers;
    double *pred = bs_malloc(((size_t)n_models + 1) * 2 * sizeof *pred);
    if (!pred)
        return BS_ENOMEM;
    double *nxt = pred + n_models + 1;
    for (int i = 0; i < n_models; i++)
        pred[i] = bs_cost_ready(models[i]) ? bs_cost_predict(models[i], cand) : NAN;
    /* the summed excess falls strictly at every step, so the walk ends; the bound is a guard */
    for (int step = 0; step < 64 * (n + 1); step++) {
        double e0 = s_excess(pred, limits, n_models);
        if (!(e0 > 0))
            break;
        int best_l = -1, best_c = 0;
        double best = 0;
        for (int l = 0; l < n; l++) {
            const bs_space_layer_t *L = &space->layers[l];
            for (int c = 0; c < L->n_choices; c++) {
                if (c == cand[l])
                    continue;
                for (int i = 0; i < n_models; i++)
                    nxt[i] = pred[i] - bs_cost_term(models[i], l, cand[l]) +
                             bs_cost_term(models[i], l, c);
                double gain = e0 - s_excess(nxt, limits, n_models);
                if (!(gain > 1e-12 * (1 + e0)))
                    continue;
                gain /= s_lost(L->choices[cand[l]], L->choices[c]);
                if (gain > best) {
                    best = gain;
                    best_l = l;
                    best_c = c;
                }
            }
        }
        if (best_l < 0)
            break;
        for (int i = 0; i < n_models; i++)
            pred[i] += bs_cost_term(models[i], best_l, best_c) -
                       bs_cost_term(models[i], best_l, cand[best_l]);
        cand[best_l] = best_c;
    }
    int fits = !(s_excess(pred, limits, n_models) > 0);
    bs_free(pred);
    return fits;
}

int bs_cost_put_list(cJSON *obj, const char *key, bs_cost_t *const *models, int n)
{
    cJSON *a = cJSON_AddArrayToObject(obj, key);
    if (!a)
        return BS_ENOMEM;
    for (int i = 0; i < n; i++) {
        cJSON *j = bs_cost_save(models[i]);
        if (!j || !cJSON_AddItemToArray(a, j)) {
            cJSON_Delete(j);
            return BS_ENOMEM;
        }
    }
    return 0;
}

int bs_cost_get_list(const cJSON *obj, const char *key, bs_cost_t *const *models, int n,
                     bs_err_t *err)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != n)
        return bs_err_set(err, BS_EPROTO, "policy state: key \"%s\": expected %d cost models", key,
                          n);
    for (int i = 0; i < n; i++) {
        int rc = bs_cost_load(models[i], cJSON_GetArrayItem(a, i), err);
        if (rc) {
            bs_err_prefix(err, "policy state: key \"%s\"[%d]", key, i);
            return rc;
        }
    }
    return 0;
}

int bs_cost_models_for(const bs_config_t *cfg, const bs_space_t *space, bs_cost_t ***models,
                       double **limits, int *n)
{
    int k = 0;
    *models = bs_calloc((size_t)cfg->n_constraints + 1, sizeof **models);
    *limits = bs_calloc((size_t)cfg->n_constraints + 1, sizeof **limits);
    if (!*models || !*limits)
        goto oom;
    for (int i = 0; i < cfg->n_constraints; i++) {
        const bs_constraint_t *c = &cfg->constraints[i];
        if (isnan(c->max) || !bs_cost_metric_ok(c->metric))
            continue;
        (*models)[k] = bs_cost_new(space, c->metric);
        if (!(*models)[k])
            goto oom;
        (*limits)[k++] = c->max;
    }
    *n = k;
    return 0;
oom:
    for (int i = 0; *models && i < k; i++)
        bs_cost_free(&(*models)[i]);
    bs_free(*models);
    bs_free(*limits);
    *models = NULL;
    *limits = NULL;
    *n = 0;
    return BS_ENOMEM;
}

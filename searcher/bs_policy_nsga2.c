/*
 * bs_policy_nsga2.c - NSGA-II (Deb et al., 2002), steady state.
 *
 * The population holds up to `population` evaluated candidates. Until it is full (counting
 * candidates in flight) proposals are uniform random, so the first wave fills every free agent
 * at once. Afterwards each proposal is one child: two parents picked by binary tournaments
 * (lower non-domination rank wins, then larger crowding distance, then a coin), per-layer
 * uniform crossover with probability `crossover`, then per-layer mutation with probability
 * `mutation` (default 1 / layers): half of the mutations move the layer one step up or down its
 * precision order (choices are ordered, neighbours are alike), half jump to any other choice.
 * A child already proposed is mutated again, up to a bound, so the policy rarely repeats
 * itself and never needs a generation barrier.
 *
 * Each result lands as a (mu + 1) environmental selection: the population plus the newcomer
 * is sorted into fronts with constraint domination (a feasible point beats an infeasible one;
 * of two infeasible points the smaller total violation wins; feasible points compare by Pareto
 * dominance on the objectives), and the last front is cut by crowding distance so that
 * `population` remain. A failed evaluation or one with an unknown objective counts as
 * maximally infeasible. Rank and crowding are recomputed on the small population after every
 * arrival (O(N^2) per result for N in the tens).
 *
 * Saved state: the generator, the population (candidates, objective vectors, violations) and
 * every candidate proposed so far.
 */
#include <math.h>
#include <string.h>

#include "bs_alloc.h"
#include "bs_pareto.h"
#include "bs_policy.h"
#include "bs_polutil.h"

enum { S_MAX_RETRIES = 64, S_POP_MAX = 256 };

typedef struct s_ind {
    int *cand;          /* n_layers */
    double obj[BS_MAX_OBJECTIVES];
    double viol;
    int rank;
    double crowd;
} s_ind_t;

typedef struct s_nsga2 {
    const bs_space_t *space;
    const bs_config_t *cfg;
    int n;                  /* layers */
    int d;                  /* objectives */
    int pop_size;
    double p_cross, p_mut;
    int tour;               /* tournament size */
    bs_rng_t rng;
    int n_pop;
    s_ind_t *pop;           /* pop_size + 1 slots */
    int *cand_mem;          /* (pop_size + 1) * n */
    int **order;            /* per layer: choices most to least precise */
    int **rank_of;          /* per layer: position of each choice in order */
    bs_candset_t proposed;
    int64_t n_proposed;
    int64_t n_observed;
} s_nsga2_t;

/* a constraint-dominates b */
static int s_cdom(const s_nsga2_t *s, const s_ind_t *a, const s_ind_t *b)
{
    if (a->viol == 0 && b->viol > 0)
        return 1;
    if (a->viol > 0 && b->viol == 0)
        return 0;
    if (a->viol > 0)
        return a->viol < b->viol;
    return bs_pareto_dominates(a->obj, b->obj, s->d);
}

static void s_crowding(const s_nsga2_t *s, int *idx, int m)
{
    for (int i = 0; i < m; i++)
        s->pop[idx[i]].crowd = 0;
    if (m <= 2) {
        for (int i = 0; i < m; i++)
            s->pop[idx[i]].crowd = INFINITY;
        return;
    }
    for (int k = 0; k < s->d; k++) {
        for (int i = 1; i < m; i++) { /* insertion sort on objective k */
            int v = idx[i], j = i;
            while (j > 0 && s->pop[idx[j - 1]].obj[k] > s->pop[v].obj[k]) {
                idx[j] = idx[j - 1];
                j--;
            }
            idx[j] = v;
        }
        double lo = s->pop[idx[0]].obj[k], hi = s->pop[idx[m - 1]].obj[k];
        s->pop[idx[0]].crowd = INFINITY;
        s->pop[idx[m - 1]].crowd = INFINITY;
        if (!(hi > lo) || !isfinite(hi - lo))
            continue;
        for (int i = 1; i + 1 < m; i++)
            s->pop[idx[i]].crowd +=
                (s->pop[idx[i + 1]].obj[k] - s->pop[idx[i - 1]].obj[k]) / (hi - lo);
    }
}

/* Ranks pop[0..n_pop) into fronts and computes crowding per front; keeps the best pop_size. */
static void s_select(s_nsga2_t *s)
{
    int np = s->n_pop;
    int assigned[S_POP_MAX + 1], idx[S_POP_MAX + 1], keep[S_POP_MAX + 1];
    for (int i = 0; i < np; i++)
        assigned[i] = 0;
    int done = 0, rank = 0, kept = 0;
    while (done < np) {
        int m = 0;
        for (int i = 0; i < np; i++) {
            if (assigned[i])
                continue;
            int dominated = 0;
            for (int j = 0; j < np && !dominated; j++)
                if (j != i && !assigned[j] && s_cdom(s, &s->pop[j], &s->pop[i]))
                    dominated = 1;
            if (!dominated)
                idx[m++] = i;
        }
        if (m == 0) { /* cannot happen with a strict order; guard against NAN */
            for (int i = 0; i < np; i++)
                if (!assigned[i])
                    idx[m++] = i;
        }
        for (int i = 0; i < m; i++) {
            assigned[idx[i]] = 1;
            s->pop[idx[i]].rank = rank;
        }
        s_crowding(s, idx, m);
        if (kept + m <= s->pop_size) {
            for (int i = 0; i < m; i++)
                keep[kept++] = idx[i];
        } else if (kept < s->pop_size) {
            /* the last front that fits in part: the most crowded go (stable on index) */
            for (int i = 1; i < m; i++) {
                int v = idx[i], j = i;
                while (j > 0 && s->pop[idx[j - 1]].crowd < s->pop[v].crowd) {
                    idx[j] = idx[j - 1];
                    j--;
                }
                idx[j] = v;
            }
            for (int i = 0; kept < s->pop_size && i < m; i++)
                keep[kept++] = idx[i];
        }
        done += m;
        rank++;
    }
    if (kept == np)
        return;
    /* compact: move kept individuals to the front of pop, swapping candidate storage */
    s_ind_t tmp[S_POP_MAX + 1];
    int used[S_POP_MAX + 1] = {0};
    for (int i = 0; i < kept; i++) {
        tmp[i] = s->pop[keep[i]];
        used[keep[i]] = 1;
    }
    int k = kept;
    for (int i = 0; i < np; i++)
        if (!used[i])
            tmp[k++] = s->pop[i]; /* dropped ones keep their storage for reuse */
    memcpy(s->pop, tmp, sizeof *tmp * (size_t)np);
    s->n_pop = kept;
}

static int s_tournament(s_nsga2_t *s)
{
    int best = (int)bs_rng_below(&s->rng, (uint32_t)s->n_pop);
    for (int t = 1; t < s->tour; t++) {
        int c = (int)bs_rng_below(&s->rng, (uint32_t)s->n_pop);
        const s_ind_t *a = &s->pop[c], *b = &s->pop[best];
        if (a->rank < b->rank || (a->rank == b->rank && a->crowd > b->crowd))
            best = c;
    }
    return best;
}

static void s_mutate_layer(s_nsga2_t *s, int *cand, int l)
{
    int nc = s->space->layers[l].n_choices;
    if (nc < 2)
        return;
    if (bs_rng_uniform(&s->rng) < 0.5) {
        int pos = s->rank_of[l][cand[l]];
        int up = pos == 0 ? 0 : pos == nc - 1 ? 1 : (int)bs_rng_below(&s->rng, 2);
        cand[l] = s->order[l][up ? pos - 1 : pos + 1];
    } else {
        int c = (int)bs_rng_below(&s->rng, (uint32_t)(nc - 1));
        cand[l] = c >= cand[l] ? c + 1 : c;
    }
}

static void s_random(s_nsga2_t *s, int *out)
{
    for (int l = 0; l < s->n; l++)
        out[l] = (int)bs_rng_below(&s->rng, (uint32_t)s->space->layers[l].n_choices);
}

static int s_propose(void *state, int *out)
{
    s_nsga2_t *s = state;
    int tries = 0;
    for (;; tries++) {
        if (s->n_pop < 2 || s->n_proposed < s->pop_size) {
            s_random(s, out);
        } else {
            const int *a = s->pop[s_tournament(s)].cand;
            const int *b = s->pop[s_tournament(s)].cand;
            int cross = bs_rng_uniform(&s->rng) < s->p_cross;
            for (int l = 0; l < s->n; l++)
                out[l] = cross && bs_rng_below(&s->rng, 2) ? b[l] : a[l];
            for (int l = 0; l < s->n; l++)
                if (bs_rng_uniform(&s->rng) < s->p_mut)
                    s_mutate_layer(s, out, l);
            /* a child already proposed is mutated harder on each retry: one forced layer,
             * one more every 8 tries */
            int extra = tries ? 1 + tries / 8 : 0;
            for (int f = 0; f < extra && s->n; f++)
                s_mutate_layer(s, out, (int)bs_rng_below(&s->rng, (uint32_t)s->n));
        }
        if (!bs_candset_has(&s->proposed, out) || tries >= S_MAX_RETRIES)
            break;
    }
    int rc = bs_candset_add(&s->proposed, out);
    if (rc < 0)
        return rc;
    s->n_proposed++;
    return 0;
}

static void s_observe(void *state, const bs_policy_obs_t *obs)
{
    s_nsga2_t *s = state;
    s->n_observed++;
    if (bs_candset_add(&s->proposed, obs->cand) == 1)
        s->n_proposed++; /* a seed or a result this run never proposed */
    s_ind_t *x = &s->pop[s->n_pop];
    memcpy(x->cand, obs->cand, sizeof *x->cand * (size_t)s->n);
    int known = obs->ok && bs_pol_objectives(s->cfg, obs->m, x->obj);
    if (!obs->ok)
        for (int k = 0; k < s->d; k++)
            x->obj[k] = INFINITY;
    x->viol = obs->ok ? bs_pol_violation(s->cfg, obs->m) : 2e9;
    if (!known)
        x->viol += 1e9;
    for (int k = 0; k < s->d; k++)
        if (!isfinite(x->obj[k]))
            x->obj[k] = 1e300; /* keeps crowding arithmetic finite */
    s->n_pop++;
    s_select(s);
}

static void s_destroy(void *state)
{
    s_nsga2_t *s = state;
    if (!s)
        return;
    for (int l = 0; s->order && l < s->n; l++) {
        bs_free(s->order[l]);
        if (s->rank_of)
            bs_free(s->rank_of[l]);
    }
    bs_free(s->order);
    bs_free(s->rank_of);
    bs_free(s->pop);
    bs_free(s->cand_mem);
    bs_candset_free(&s->proposed);
    bs_free(s);
}

static int s_create(const bs_policy_ctx_t *ctx, void **state, bs_err_t *err)
{
    const bs_config_t *cfg = ctx->cfg;
    int n = ctx->space->n_layers;
    int64_t pop, tour;
    double pc, pm;
    int rc;
    if ((rc = bs_pol_param_int(cfg, ctx->params, "population", 4, S_POP_MAX, 20, &pop, err)) ||
        (rc = bs_pol_param_num(cfg, ctx->params, "crossover", 0, 1, 0.9, &pc, err)) ||
        (rc = bs_pol_param_num(cfg, ctx->params, "mutation", 0, 1, n ? 1.0 / n : 1, &pm, err)) ||
        (rc = bs_pol_param_int(cfg, ctx->params, "tournament", 2, 8, 2, &tour, err)))
        return rc;
    s_nsga2_t *s = bs_calloc(1, sizeof *s);
    if (!s)
        return bs_err_set(err, BS_ENOMEM, "nsga2: out of memory");
    s->space = ctx->space;
    s->cfg = cfg;
    s->n = n;
    s->d = cfg->n_objectives;
    s->pop_size = (int)pop;
    s->p_cross = pc;
    s->p_mut = pm;
    s->tour = (int)tour;
    bs_rng_seed(&s->rng, ctx->seed);
    size_t w = n ? (size_t)n : 1;
    s->pop = bs_calloc((size_t)pop + 1, sizeof *s->pop);
    s->cand_mem = bs_calloc(((size_t)pop + 1) * w, sizeof *s->cand_mem);
    s->order = bs_calloc(w, sizeof *s->order);
    s->rank_of = bs_calloc(w, sizeof *s->rank_of);
    if (!s->pop || !s->cand_mem || !s->order || !s->rank_of ||
        bs_candset_init(&s->proposed, n))
        goto oom;
    for (int i = 0; i <= s->pop_size; i++)
        s->pop[i].cand = s->cand_mem + (size_t)i * w;
    for (int l = 0; l < n; l++) {
        int nc = ctx->space->layers[l].n_choices;
        s->order[l] = bs_malloc(sizeof(int) * (size_t)nc);
        s->rank_of[l] = bs_malloc(sizeof(int) * (size_t)nc);
        if (!s->order[l] || !s->rank_of[l])
            goto oom;
        bs_pol_choice_order(&ctx->space->layers[l], s->order[l]);
        for (int i = 0; i < nc; i++)
            s->rank_of[l][s->order[l][i]] = i;
    }
    *state = s;
    return 0;
oom:
    s_destroy(s);
    return bs_err_set(err, BS_ENOMEM, "nsga2: out of memory");
}

static cJSON *s_save(void *state)
{
    s_nsga2_t *s = state;
    cJSON *o = cJSON_CreateObject();
    int ok = o && !bs_pol_put_rng(o, "rng", &s->rng) &&
             !bs_pol_put_i64(o, "layers", s->n) && !bs_pol_put_i64(o, "objectives", s->d) &&
             !bs_pol_put_i64(o, "n_pop", s->n_pop) &&
             !bs_pol_put_i64(o, "n_proposed", s->n_proposed) &&
             !bs_pol_put_i64(o, "n_observed", s->n_observed);
    int *cands = NULL;
    double *objs = NULL;
    size_t w = s->n ? (size_t)s->n : 1;
    if (ok) {
        cands = bs_malloc(sizeof *cands * w * (size_t)(s->n_pop + 1));
        objs = bs_malloc(sizeof *objs * (size_t)(s->d + 1) * (size_t)(s->n_pop + 1));
        ok = cands && objs;
    }
    if (ok) {
        for (int i = 0; i < s->n_pop; i++) {
            memcpy(cands + (size_t)i * w, s->pop[i].cand, sizeof *cands * (size_t)s->n);
            memcpy(objs + (size_t)i * (size_t)(s->d + 1), s->pop[i].obj,
                   sizeof *objs * (size_t)s->d);
            objs[(size_t)i * (size_t)(s->d + 1) + (size_t)s->d] = s->pop[i].viol;
        }
        ok = !bs_pol_put_ints(o, "pop_cands", cands, (int64_t)s->n_pop * s->n) &&
             !bs_pol_put_f64s(o, "pop_objs", objs, (int64_t)s->n_pop * (s->d + 1));
    }
    bs_free(cands);
    bs_free(objs);
    ok = ok && !bs_pol_put_candset(o, "proposed", &s->proposed);
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static int s_load(void *state, const cJSON *saved, bs_err_t *err)
{
    s_nsga2_t *s = state;
    int64_t layers, objectives, n_pop;
    int rc;
    if ((rc = bs_pol_get_i64(saved, "layers", s->n, s->n, &layers, err)) ||
        (rc = bs_pol_get_i64(saved, "objectives", s->d, s->d, &objectives, err)) ||
        (rc = bs_pol_get_i64(saved, "n_pop", 0, s->pop_size, &n_pop, err)) ||
        (rc = bs_pol_get_i64(saved, "n_proposed", 0, INT64_MAX, &s->n_proposed, err)) ||
        (rc = bs_pol_get_i64(saved, "n_observed", 0, INT64_MAX, &s->n_observed, err)) ||
        (rc = bs_pol_get_rng(saved, "rng", &s->rng, err)))
        return rc;
    size_t w = s->n ? (size_t)s->n : 1;
    int *cands = bs_malloc(sizeof *cands * w * (size_t)(n_pop + 1));
    double *objs = bs_malloc(sizeof *objs * (size_t)(s->d + 1) * (size_t)(n_pop + 1));
    if (!cands || !objs) {
        rc = bs_err_set(err, BS_ENOMEM, "nsga2: out of memory");
        goto out;
    }
    if ((rc = bs_pol_get_ints(saved, "pop_cands", cands, n_pop * s->n, err)) ||
        (rc = bs_pol_get_f64s(saved, "pop_objs", objs, n_pop * (s->d + 1), err)))
        goto out;
    for (int i = 0; i < n_pop; i++) {
        for (int l = 0; l < s->n; l++) {
            int c = cands[(size_t)i * w + (size_t)l];
            if (c < 0 || c >= s->space->layers[l].n_choices) {
                rc = bs_err_set(err, BS_EPROTO, "policy state: pop_cands: choice %d of layer "
                                "%d out of range", c, l);
                goto out;
            }
            s->pop[i].cand[l] = c;
        }
        memcpy(s->pop[i].obj, objs + (size_t)i * (size_t)(s->d + 1), sizeof *objs * (size_t)s->d);
        s->pop[i].viol = objs[(size_t)i * (size_t)(s->d + 1) + (size_t)s->d];
    }
    s->n_pop = (int)n_pop;
    if ((rc = bs_pol_get_candset(saved, "proposed", s->space, &s->proposed, err)))
        goto out;
    if (s->n_pop)
        s_select(s); /* recompute ranks and crowding */
out:
    bs_free(cands);
    bs_free(objs);
    return rc;
}

const bs_policy_ops_t bs_policy_nsga2 = {
    .name = "nsga2",
    .create = s_create,
    .propose = s_propose,
    .observe = s_observe,
    .save = s_save,
    .load = s_load,
    .destroy = s_destroy,
};

/*
 * bs_policy_sens.c - seeding from per-layer sensitivity (HAWQ-like), then handing over.
 *
 * Selected as "policy": {"name": "sensitivity", "then": "nsga2"} or as any policy with
 * "seed_from": "sensitivity" (the searcher then wraps that policy in this one). It waits
 * (BS_EAGAIN) for the sensitivity table: each layer alone at each precision, the rest fp32,
 * the change in accuracy, averaged over the agents stored when it arrives (the first table is
 * used; after a give-up, a later table still is while no seed has gone out). It then treats
 * accuracy loss as additive over layers (damage(l, c) = max(0, -delta)) and cost as additive
 * too (the per-layer terms of bs_cost: weight bytes exactly, latency and energy from the
 * MAC-based prior until results teach it, from the per-layer profiles where present), and
 * proposes seeds that trade one for the other, one "slot" at a time:
 *
 *  - a slot is a cost level, a weighting of the campaign's minimised cost objectives (each
 *    alone, and all equally when there are several; the scalar cost of a choice is the
 *    weighted sum of its terms, each relative to the all-fp32 total of that objective) and a
 *    method: a multiple-choice knapsack (dynamic programming over 256 buckets of the cost above
 *    each layer's cheapest choice, rounded up so a solution never exceeds its budget; the most
 *    precise level takes each layer's least damaging choice) that minimises the damage, or a
 *    greedy walk that lowers, from the most precise configuration, the step with the least
 *    damage per unit of cost saved until the budget holds (`method`: knapsack, greedy, both);
 *  - `levels` budgets lie evenly between the cheapest reachable configuration and the most
 *    precise one, visited in an order whose every prefix spans the range (the most precise,
 *    the cheapest, then midpoints by bisection);
 *  - each seed is computed when it is proposed, with the cost models as the results so far
 *    have taught them (so a latency that the prior got wrong stops misleading the later seeds),
 *    then passes the campaign's own budgets (bs_cost_enforce); a seed already proposed is
 *    skipped.
 * Choices whose sensitivity was not measured are not used by the seeds (except fp32).
 *
 * After the slots it proposes the inner policy's candidates; the inner policy observes every
 * result, seeds included, so NSGA-II starts from a population holding them and HAQ from a
 * replay buffer holding them. If no table can come (every sensitivity job failed) it hands
 * over at once without seeds. Saved state: the table, the next slot, the candidates proposed,
 * the cost models and the inner policy's state.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bs_alloc.h"
#include "bs_cost.h"
#include "bs_log.h"
#include "bs_policy.h"
#include "bs_polutil.h"

#define S_MOD "policy"

enum { S_BUCKETS = 256, S_MAX_WEIGHTINGS = BS_MAX_OBJECTIVES + 1 };

typedef struct s_sens {
    const bs_space_t *space;
    const bs_config_t *cfg;
    int n;
    const bs_policy_ops_t *inner;
    void *inner_state;
    int levels;
    int use_knapsack, use_greedy;
    int have;               /* the table arrived (or will never come) */
    int gave_up;            /* have came from "no table is coming" */
    int next_slot, n_slots; /* seeds still to come: slots [next_slot, n_slots) */
    int n_seeds;            /* seeds proposed */
    double *delta;          /* owned: the table, [l * BS_MAX_CHOICES + c] */
    bs_candset_t proposed;  /* every candidate proposed or observed */
    bs_cost_t *obj_cost[BS_MAX_OBJECTIVES]; /* minimised cost objectives */
    int n_obj_cost;
    bs_cost_t **budgets;    /* the campaign's budget constraints */
    double *limits;
    int n_budgets;
    /* scratch for one seed */
    double *cost, *damage, *dp, *next;
    int *dp_choice, *order, *cand;
} s_sens_t;

static void s_destroy(void *state)
{
    s_sens_t *s = state;
    if (!s)
        return;
    if (s->inner && s->inner_state)
        s->inner->destroy(s->inner_state);
    for (int i = 0; i < s->n_obj_cost; i++)
        bs_cost_free(&s->obj_cost[i]);
    for (int i = 0; i < s->n_budgets; i++)
        bs_cost_free(&s->budgets[i]);
    bs_free(s->budgets);
    bs_free(s->limits);
    bs_free(s->delta);
    bs_candset_free(&s->proposed);
    bs_free(s->cost);
    bs_free(s->damage);
    bs_free(s->dp);
    bs_free(s->next);
    bs_free(s->dp_choice);
    bs_free(s->order);
    bs_free(s->cand);
    bs_free(s);
}

static int s_create(const bs_policy_ctx_t *ctx, void **state, bs_err_t *err)
{
    static const char *const inners[] = {"nsga2", "haq", "random", NULL};
    static const char *const methods[] = {"both", "knapsack", "greedy", NULL};
    const bs_config_t *cfg = ctx->cfg;
    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(ctx->params, "name");
    const char *inner_name;
    const char *method;
    int64_t levels;
    int rc;
    if (cJSON_IsString(nm) && strcmp(nm->valuestring, "sensitivity") != 0) {
        inner_name = nm->valuestring; /* "name": "nsga2", "seed_from": "sensitivity" */
    } else if ((rc = bs_pol_param_str(cfg, ctx->params, "then", inners, "nsga2", &inner_name,
                                      err))) {
        return rc;
    }
    if ((rc = bs_pol_param_int(cfg, ctx->params, "levels", 2, 64, 8, &levels, err)) ||
        (rc = bs_pol_param_str(cfg, ctx->params, "method", methods, "both", &method, err)))
        return rc;
    const bs_policy_ops_t *inner = bs_policy_find(inner_name);
    if (!inner || inner->sensitivity)
        return bs_err_set(err, BS_ECONFIG, "%s: policy: cannot hand over from sensitivity "
                          "seeding to \"%s\"", cfg->path ? cfg->path : "campaign", inner_name);
    s_sens_t *s = bs_calloc(1, sizeof *s);
    if (!s)
        return bs_err_set(err, BS_ENOMEM, "sensitivity policy: out of memory");
    s->space = ctx->space;
    s->cfg = cfg;
    s->n = ctx->space->n_layers;
    s->inner = inner;
    s->levels = (int)levels;
    s->use_knapsack = strcmp(method, "greedy") != 0;
    s->use_greedy = strcmp(method, "knapsack") != 0;
    if ((rc = inner->create(ctx, &s->inner_state, err))) {
        s_destroy(s);
        return rc;
    }
    for (int i = 0; i < cfg->n_objectives; i++) {
        if (cfg->objectives[i].goal > 0 || !bs_cost_metric_ok(cfg->objectives[i].metric))
            continue;
        if (!(s->obj_cost[s->n_obj_cost] = bs_cost_new(ctx->space, cfg->objectives[i].metric)))
            goto oom;
        s->n_obj_cost++;
    }
    if (s->n_obj_cost == 0) { /* no cost objective: weight bytes as the proxy */
        if (!(s->obj_cost[0] = bs_cost_new(ctx->space, "weight_bytes")))
            goto oom;
        s->n_obj_cost = 1;
    }
    if (bs_cost_models_for(cfg, ctx->space, &s->budgets, &s->limits, &s->n_budgets))
        goto oom;
    size_t w = s->n ? (size_t)s->n : 1, cells = w * BS_MAX_CHOICES;
    s->delta = bs_malloc(sizeof *s->delta * cells);
    s->cost = bs_malloc(sizeof *s->cost * cells);
    s->damage = bs_malloc(sizeof *s->damage * cells);
    s->dp = bs_malloc(sizeof *s->dp * (S_BUCKETS + 1));
    s->next = bs_malloc(sizeof *s->next * (S_BUCKETS + 1));
    s->dp_choice = bs_malloc(sizeof *s->dp_choice * w * (S_BUCKETS + 1));
    s->order = bs_malloc(sizeof *s->order * cells);
    s->cand = bs_malloc(sizeof *s->cand * w);
    if (!s->delta || !s->cost || !s->damage || !s->dp || !s->next || !s->dp_choice ||
        !s->order || !s->cand || bs_candset_init(&s->proposed, s->n))
        goto oom;
    for (int l = 0; l < s->n; l++)
        bs_pol_choice_order(&ctx->space->layers[l], s->order + (size_t)l * BS_MAX_CHOICES);
    *state = s;
    return 0;
oom:
    s_destroy(s);
    return bs_err_set(err, BS_ENOMEM, "sensitivity policy: out of memory");
}

/* ---- seeding ------------------------------------------------------------------------------- */

typedef struct s_problem {
    int n;
    const bs_space_t *space;
    double *cost;           /* [l * BS_MAX_CHOICES + c]; NAN: not selectable */
    double *damage;
} s_problem_t;

static int s_usable(const s_problem_t *p, int l, int c)
{
    return !isnan(p->cost[l * BS_MAX_CHOICES + c]);
}

/* Multiple-choice knapsack: min summed damage with summed cost <= budget. 1 if found. */
static int s_knapsack(const s_problem_t *p, double budget, double cmax, int *out, int *dp_choice,
                      double *dp, double *next)
{
    double unit = cmax / S_BUCKETS; /* cmax: the span of the shifted costs */
    if (!(unit > 0))
        unit = 1; /* every choice costs the same: every shifted cost is 0 */
    int cap = (int)floor(budget / unit + 1e-9);
    if (cap > S_BUCKETS)
        cap = S_BUCKETS;
    if (cap < 0)
        return 0;
    for (int g = 0; g <= cap; g++)
        dp[g] = 0;
    for (int l = 0; l < p->n; l++) {
        for (int g = 0; g <= cap; g++) {
            next[g] = INFINITY;
            dp_choice[l * (S_BUCKETS + 1) + g] = -1;
        }
        for (int c = 0; c < p->space->layers[l].n_choices; c++) {
            if (!s_usable(p, l, c))
                continue;
            int w = (int)ceil(p->cost[l * BS_MAX_CHOICES + c] / unit - 1e-9);
            if (w < 0)
                w = 0;
            double dmg = p->damage[l * BS_MAX_CHOICES + c];
            for (int g = w; g <= cap; g++) {
                double v = dp[g - w] + dmg;
                if (v < next[g]) {
                    next[g] = v;
                    dp_choice[l * (S_BUCKETS + 1) + g] = c;
                }
            }
        }
        memcpy(dp, next, sizeof *dp * (size_t)(cap + 1));
    }
    if (!isfinite(dp[cap]))
        return 0;
    /* walk back: dp[g] is "cost <= g", so take the choice stored at the remaining capacity */
    int g = cap;
    for (int l = p->n - 1; l >= 0; l--) {
        int c = dp_choice[l * (S_BUCKETS + 1) + g];
        if (c < 0)
            return 0;
        out[l] = c;
        g -= (int)ceil(p->cost[l * BS_MAX_CHOICES + c] / unit - 1e-9);
        if (g < 0)
            g = 0;
    }
    return 1;
}

/* Greedy: from the most precise usable choices, lower the cheapest-damage-per-cost step until
 * the cost fits. 1 if it fits. */
static int s_greedy(const s_problem_t *p, double budget, int *out, const int *order)
{
    double total = 0;
    for (int l = 0; l < p->n; l++) {
        int nc = p->space->layers[l].n_choices;
        out[l] = -1;
        const int *ord = order + (size_t)l * BS_MAX_CHOICES;
        for (int i = 0; i < nc && out[l] < 0; i++)
            if (s_usable(p, l, ord[i]))
                out[l] = ord[i];
        if (out[l] < 0)
            return 0;
        total += p->cost[l * BS_MAX_CHOICES + out[l]];
    }
    while (total > budget * (1 + 1e-12)) {
        int bl = -1, bc = -1;
        double best = INFINITY;
        for (int l = 0; l < p->n; l++) {
            double c0 = p->cost[l * BS_MAX_CHOICES + out[l]];
            double d0 = p->damage[l * BS_MAX_CHOICES + out[l]];
            for (int c = 0; c < p->space->layers[l].n_choices; c++) {
                if (!s_usable(p, l, c))
                    continue;
                double saved = c0 - p->cost[l * BS_MAX_CHOICES + c];
                if (!(saved > 0))
                    continue;
                double r = (p->damage[l * BS_MAX_CHOICES + c] - d0) / saved;
                if (r < best) {
                    best = r;
                    bl = l;
                    bc = c;
                }
            }
        }
        if (bl < 0)
            return 0;
        total -= p->cost[bl * BS_MAX_CHOICES + out[bl]] - p->cost[bl * BS_MAX_CHOICES + bc];
        out[bl] = bc;
    }
    return 1;
}

/* Levels 0..n-1 in the order the seeds go out: the most precise, the cheapest, then midpoints
 * by breadth-first bisection, so that any prefix spans the range. out[n]. */
static void s_level_order(int n, int *out)
{
    int lo[64], hi[64], head = 0, tail = 0, k = 0;
    uint64_t done = 0;
    out[k++] = n - 1;
    out[k++] = 0;
    done |= (1ull << (n - 1)) | 1ull;
    lo[tail] = 0;
    hi[tail++] = n - 1;
    while (head < tail && k < n) {
        int a = lo[head], b = hi[head++];
        if (b - a < 2)
            continue;
        int m = (a + b) / 2;
        if (!(done & (1ull << m))) {
            done |= 1ull << m;
            out[k++] = m;
        }
        if (tail + 2 <= 64) {
            lo[tail] = a;
            hi[tail++] = m;
            lo[tail] = m;
            hi[tail++] = b;
        }
    }
    for (int i = 0; i < n && k < n; i++) /* cannot happen for n <= 64; kept total anyway */
        if (!(done & (1ull << i)))
            out[k++] = i;
}

/* The weightings of the cost objectives: each alone, then all equally. */
static int s_n_weightings(const s_sens_t *s)
{
    return s->n_obj_cost + (s->n_obj_cost > 1);
}

static int s_total_slots(const s_sens_t *s)
{
    return s->levels * s_n_weightings(s) * (s->use_knapsack + s->use_greedy);
}

/* Computes the seed of a slot into s->cand. 1 if the slot has one, 0 if not. */
static int s_seed(s_sens_t *s, int slot)
{
    int n = s->n, k = s->n_obj_cost, n_w = s_n_weightings(s);
    int methods = s->use_knapsack + s->use_greedy;
    int lvls[64];
    if (slot < 0 || slot / (methods * n_w) >= s->levels)
        return 0;
    s_level_order(s->levels, lvls);
    int method = slot % methods, wi = (slot / methods) % n_w;
    int level = lvls[slot / (methods * n_w)];
    int knapsack = s->use_knapsack && method == 0;
    double wts[BS_MAX_OBJECTIVES] = {0};
    if (wi < k)
        wts[wi] = 1;
    else
        for (int i = 0; i < k; i++)
            wts[i] = 1.0 / k;
    double fp32_total[BS_MAX_OBJECTIVES];
    for (int i = 0; i < k; i++) {
        fp32_total[i] = 0;
        for (int l = 0; l < n; l++)
            fp32_total[i] += bs_cost_term(s->obj_cost[i], l, s->order[l * BS_MAX_CHOICES]);
        if (!(fp32_total[i] > 0))
            fp32_total[i] = 1;
    }
    s_problem_t p = {.n = n, .space = s->space, .cost = s->cost, .damage = s->damage};
    double cmin = 0, cmax = 0;
    for (int l = 0; l < n; l++) {
        double lo = INFINITY, hi = 0;
        for (int c = 0; c < s->space->layers[l].n_choices; c++) {
            int cell = l * BS_MAX_CHOICES + c;
            double d = s->delta[cell];
            int fp32 = bs_prec_eq(s->space->layers[l].choices[c], BS_PREC_FP32);
            if (isnan(d) && !fp32) {
                p.cost[cell] = NAN;
                continue;
            }
            double cost = 0;
            for (int i = 0; i < k; i++)
                if (wts[i] > 0)
                    cost += wts[i] * bs_cost_term(s->obj_cost[i], l, c) / fp32_total[i];
            p.cost[cell] = cost > 0 ? cost : 0;
            p.damage[cell] = fp32 ? 0 : (d < 0 ? -d : 0);
            lo = fmin(lo, p.cost[cell]);
            hi = fmax(hi, p.cost[cell]);
        }
        if (!isfinite(lo)) { /* nothing usable: keep the layer at its most precise choice */
            int c0 = s->order[l * BS_MAX_CHOICES];
            p.cost[l * BS_MAX_CHOICES + c0] = 0;
            p.damage[l * BS_MAX_CHOICES + c0] = 0;
            lo = hi = 0;
        }
        /* costs above the layer's cheapest choice: the knapsack's rounding then only applies
         * to what a level adds over the cheapest configuration, which fits exactly */
        for (int c = 0; c < s->space->layers[l].n_choices; c++)
            if (!isnan(p.cost[l * BS_MAX_CHOICES + c]))
                p.cost[l * BS_MAX_CHOICES + c] -= lo;
        cmin += lo;
        cmax += hi;
    }
    double span = cmax - cmin;
    double budget = span * level / (s->levels - 1);
    int found;
    if (level == s->levels - 1) {
        /* no cost limit: the least damage per layer, ties to the more precise choice */
        for (int l = 0; l < n; l++) {
            const int *ord = s->order + (size_t)l * BS_MAX_CHOICES;
            int best = -1;
            for (int i = 0; i < s->space->layers[l].n_choices; i++)
                if (s_usable(&p, l, ord[i]) &&
                    (best < 0 || p.damage[l * BS_MAX_CHOICES + ord[i]] <
                                     p.damage[l * BS_MAX_CHOICES + best]))
                    best = ord[i];
            s->cand[l] = best;
        }
        found = 1;
    } else {
        found = knapsack ? s_knapsack(&p, budget, span, s->cand, s->dp_choice, s->dp, s->next)
                         : s_greedy(&p, budget, s->cand, s->order);
    }
    if (found && s->n_budgets &&
        bs_cost_enforce(s->budgets, s->limits, s->n_budgets, s->space, s->cand) < 0)
        found = 0;
    return found;
}

static void s_sensitivity(void *state, const bs_policy_sens_t *t)
{
    s_sens_t *s = state;
    /* the first table is used; a table after a give-up is used too while no seed went out */
    if (s->have && !(s->gave_up && t->n_agents > 0 && t->delta && s->n_seeds == 0))
        return;
    s->have = 1;
    s->gave_up = 0;
    if (t->n_agents == 0 || !t->delta) {
        s->gave_up = 1;
        BS_WARN(S_MOD, "no sensitivity measurements: handing over to %s without seeds",
                s->inner->name);
        return;
    }
    memcpy(s->delta, t->delta, sizeof *s->delta * (size_t)s->n * BS_MAX_CHOICES);
    s->next_slot = 0;
    s->n_slots = s_total_slots(s);
    BS_INFO(S_MOD, "sensitivity seeding: up to %d seeds from %d agent table(s), then %s",
            s->n_slots, t->n_agents, s->inner->name);
}

static int s_propose(void *state, int *out)
{
    s_sens_t *s = state;
    if (!s->have)
        return BS_EAGAIN;
    while (s->next_slot < s->n_slots) {
        int slot = s->next_slot++;
        if (!s_seed(s, slot))
            continue;
        int rc = bs_candset_add(&s->proposed, s->cand);
        if (rc < 0)
            return rc;
        if (rc == 0)
            continue; /* the same seed as an earlier slot */
        memcpy(out, s->cand, sizeof *out * (size_t)s->n);
        s->n_seeds++;
        if (s->next_slot == s->n_slots)
            BS_INFO(S_MOD, "sensitivity seeding done: %d seeds, handing over to %s", s->n_seeds,
                    s->inner->name);
        return 0;
    }
    int rc = s->inner->propose(s->inner_state, out);
    if (rc == 0 && bs_candset_add(&s->proposed, out) < 0)
        return BS_ENOMEM;
    return rc;
}

static void s_observe(void *state, const bs_policy_obs_t *obs)
{
    s_sens_t *s = state;
    (void)bs_candset_add(&s->proposed, obs->cand); /* OOM: a repeat the searcher drops */
    for (int i = 0; obs->ok && i < s->n_obj_cost + s->n_budgets; i++) {
        bs_cost_t *c = i < s->n_obj_cost ? s->obj_cost[i] : s->budgets[i - s->n_obj_cost];
        double v;
        if (bs_metrics_get(obs->m, bs_cost_metric(c), &v) == 0)
            (void)bs_cost_observe(c, obs->cand, v, obs->layer_ms);
    }
    s->inner->observe(s->inner_state, obs);
}

static cJSON *s_save(void *state)
{
    s_sens_t *s = state;
    cJSON *o = cJSON_CreateObject();
    cJSON *inner = s->inner->save ? s->inner->save(s->inner_state) : cJSON_CreateObject();
    int ok = o && inner && cJSON_AddItemToObject(o, "inner", inner);
    if (!ok)
        cJSON_Delete(inner);
    ok = ok && !bs_pol_put_i64(o, "layers", s->n) && !bs_pol_put_i64(o, "have", s->have) &&
         !bs_pol_put_i64(o, "gave_up", s->gave_up) &&
         !bs_pol_put_i64(o, "next_slot", s->next_slot) &&
         !bs_pol_put_i64(o, "n_slots", s->n_slots) && !bs_pol_put_i64(o, "n_seeds", s->n_seeds) &&
         !bs_pol_put_f64s(o, "delta", s->delta, (int64_t)s->n * BS_MAX_CHOICES) &&
         !bs_pol_put_candset(o, "proposed", &s->proposed) &&
         !bs_cost_put_list(o, "cost_objectives", s->obj_cost, s->n_obj_cost) &&
         !bs_cost_put_list(o, "cost_budgets", s->budgets, s->n_budgets);
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static int s_load(void *state, const cJSON *saved, bs_err_t *err)
{
    s_sens_t *s = state;
    int64_t layers, have, gave_up, next_slot, n_slots, n_seeds;
    int rc;
    if ((rc = bs_pol_get_i64(saved, "layers", s->n, s->n, &layers, err)) ||
        (rc = bs_pol_get_i64(saved, "have", 0, 1, &have, err)) ||
        (rc = bs_pol_get_i64(saved, "gave_up", 0, 1, &gave_up, err)) ||
        (rc = bs_pol_get_i64(saved, "n_slots", 0, s_total_slots(s), &n_slots, err)) ||
        (rc = bs_pol_get_i64(saved, "next_slot", 0, n_slots, &next_slot, err)) ||
        (rc = bs_pol_get_i64(saved, "n_seeds", 0, n_slots, &n_seeds, err)) ||
        (rc = bs_pol_get_f64s(saved, "delta", s->delta, (int64_t)s->n * BS_MAX_CHOICES, err)) ||
        (rc = bs_pol_get_candset(saved, "proposed", s->space, &s->proposed, err)))
        return rc;
    if (n_slots != 0 && n_slots != s_total_slots(s))
        return bs_err_set(err, BS_EPROTO, "policy state: n_slots %lld does not match this "
                          "campaign's levels and method (%d slots)", (long long)n_slots,
                          s_total_slots(s));
    s->have = (int)have;
    s->gave_up = (int)gave_up;
    s->next_slot = (int)next_slot;
    s->n_slots = (int)n_slots;
    s->n_seeds = (int)n_seeds;
    if ((rc = bs_cost_get_list(saved, "cost_objectives", s->obj_cost, s->n_obj_cost, err)) ||
        (rc = bs_cost_get_list(saved, "cost_budgets", s->budgets, s->n_budgets, err)))
        return rc;
    const cJSON *inner = cJSON_GetObjectItemCaseSensitive(saved, "inner");
    if (!cJSON_IsObject(inner))
        return bs_err_set(err, BS_EPROTO, "policy state: key \"inner\": expected an object");
    return s->inner->load ? s->inner->load(s->inner_state, inner, err) : 0;
}

const bs_policy_ops_t bs_policy_sens = {
    .name = "sensitivity",
    .create = s_create,
    .propose = s_propose,
    .observe = s_observe,
    .sensitivity = s_sensitivity,
    .save = s_save,
    .load = s_load,
    .destroy = s_destroy,
};

/*
 * bs_policy_haq.c - reinforcement learning in the manner of HAQ (Wang et al., CVPR 2019): a
 * DDPG actor-critic walks the layers one by one and picks each layer's precision.
 *
 * Episode. One proposal is one episode. It first draws cost targets t_k in (0, 1], one per
 * minimised cost objective (latency, weight bytes, ...; each relative to the all-fp32
 * prediction of its cost model): a Halton point (bases 2, 3, 5, 7) with a Cranley-Patterson
 * shift drawn from the seed, mapped onto [lo_k, 1], where lo_k is the least ratio any
 * configuration reaches by prediction (the base plus each layer's cheapest term: NOT the least
 * precise configuration's ratio, since latency is not monotone in precision: w2a32 or w32a8 can
 * run slower than fp32 while w4a8 is the fastest, so that floor would keep every latency target
 * near 1 and leave the fast end of the front to chance) and, after warm-up, no lower than 0.1
 * below the cheapest configuration seen to satisfy every constraint (targets below it only find
 * infeasible points). This is the epsilon-constraint method: each episode asks for the most
 * accurate configuration inside a box of costs, so the episodes sweep the whole trade-off and
 * the proposals form a front, not one point (a weighted sum of costs would miss non-convex
 * parts). At layer l the state is the layer's static features (index / n, kind one-hot, log
 * input and output channels, log kernel, stride, log parameters, log MACs; each min-max
 * normalised over the layers), the previous action and the targets. The actor (sigmoid output)
 * gives a in [0, 1], drawn from a normal around the actor's output truncated to [0, 1] with
 * sigma decaying per episode; a maps by rounding to the layer's choices ordered from most
 * precise (a = 1) to least precise (a = 0, bs_pol_choice_order). The candidate is then moved
 * toward the episode's targets (limit_k = t_k * fp32 prediction) as HAQ lowers bit widths until
 * its budget holds, by bs_cost_enforce (a move may go to any choice of a layer whose predicted
 * costs lower the summed excess: a less precise choice is not always the cheaper one), and
 * then bs_cost_enforce applies the campaign's budgets, so a proposal meets every budget by
 * prediction.
 *
 * Warm-up. The first `warmup` episodes (default: a tenth of the budget, at most 20, but at least
 * the most choices of any layer) ignore the actor and the targets: they are a Latin hypercube
 * over each layer's choices (every block of n_choices episodes gives each layer each of its
 * choices once, in an order hashed from the seed, the layer and the block). So the cost models
 * see every (layer, choice) term, with its profiled time, early, whatever the results HAQ did
 * not propose held; a term never observed keeps the prior's shape (w4a8 as fast as w8a8), and
 * the repair then prefers the more precise of two equally cheap-looking choices, so the truly
 * fastest choice of a layer could stay untried for hundreds of episodes.
 * Why seeding used to hurt: with the latency floor at the least precise configuration (0.93 of
 * fp32 on the bundled model) the latency targets were inert and the fast corner of the front
 * (w4a8 in conv2 and fc1) was found only by action noise. Unseeded, the first episodes are
 * near uniform (actor output about 0.5, sigma 0.5) and hit it; seeded, the actor is trained on
 * the 13 seeds' episodes before its first proposal (observe() counts every result toward the
 * warm-up), the seeds hold w8a8 where the front wants w4a8, and the prior cannot tell the two
 * apart, so the search circled the seeds. Both causes are removed above.
 * If a candidate was already proposed it is perturbed (a random walk moving one random layer
 * one step, then budgets again), then drawn at random, a bounded number of times; if nothing
 * new turns up it is proposed anyway and the searcher falls back.
 *
 * Learning. observe() finds the candidate's pending episode (proposals may be many while
 * results are in flight); a result for a candidate it did not propose (a seed, a replayed
 * result) or a perturbed one still makes an episode: its actions are the candidate's own
 * positions and its targets the candidate's predicted cost ratios, which enforcement would
 * leave unchanged. The episode goes into a replay ring with its reward, as HAQ does:
 * reward_scale * (quality - best quality seen) - reward_scale * constraint violation, where
 * quality is the first maximised objective (accuracy by default); a failed evaluation gets
 * fail_reward. The reference is applied when a batch is drawn, so old rewards stay comparable.
 * Every step of an episode is a transition; with gamma = 1 the critic's target is the reward
 * at the last layer and Q'(s', mu'(s')) of the target networks at the others (the final reward
 * is the only one, as in HAQ). After warm-up each observe() runs `updates` DDPG updates:
 * critic by mean squared error, actor by dQ/da through the critic, then soft target updates.
 * The cost models (bs_cost.c) learn from every result, from per-layer profiles when present.
 *
 * Persistence: networks, targets and Adam moments, the replay ring, pending episodes, the
 * proposed set, the cost models, the generator and the counters are all saved exactly, so a
 * loaded state proposes what the original would have.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bs_alloc.h"
#include "bs_cost.h"
#include "bs_nn.h"
#include "bs_policy.h"
#include "bs_polutil.h"
#include "bs_util.h"

#define S_NF 11 /* static features per layer */
#define S_MAX_PENDING 1024
#define S_TRIES 64 /* perturbations, then random draws, for a new candidate */
#define S_VERSION 1

typedef struct s_haq {
    const bs_space_t *space;
    const bs_config_t *cfg;
    int n;        /* layers */
    int *order;   /* owned: [n][BS_MAX_CHOICES] most to least precise */
    int *pos_of;  /* owned: [n][BS_MAX_CHOICES] choice -> position */
    int *fp32;    /* owned: [n] the most precise candidate */
    double *feat; /* owned: [n][S_NF] */
    double space_size;
    /* parameters */
    int64_t warmup, hidden, batch, replay, updates;
    double lr_actor, lr_critic, noise, noise_decay, noise_min, tau, reward_scale, fail_reward;
    /* objectives */
    char quality[32];                  /* the metric behind the reward */
    int n_cost;                        /* minimised cost objectives (target dimensions) */
    int n_t;                           /* max(1, n_cost): target slots in the state */
    bs_cost_t *obj[BS_MAX_OBJECTIVES]; /* owned: one model per cost objective */
    bs_cost_t **bud;                   /* owned: budget models (bs_cost_models_for) */
    double *bud_lim;                   /* owned */
    int n_bud;
    int sdim; /* state width */
    /* networks */
    bs_nn_t *actor, *critic, *actor_t, *critic_t; /* owned */
    bs_rng_t rng;
    double shift[BS_MAX_OBJECTIVES];   /* Cranley-Patterson shift of the targets */
    double feas_lo[BS_MAX_OBJECTIVES]; /* cheapest feasible ratio seen, 2 if none */
    int64_t episode;                   /* proposals made */
    int64_t observed;                  /* results observed */
    int has_ref;
    double q_ref; /* best quality seen */
    /* replay ring of episodes */
    int64_t rep_count; /* episodes ever stored; slot = count % replay */
    double *rep_act;   /* owned: [replay][n] */
    double *rep_t;     /* owned: [replay][n_t] */
    double *rep_r;     /* owned: [replay][3]: quality, violation, failed */
    /* pending episodes, oldest first */
    int n_pend;
    int *pend_cand;   /* owned: [S_MAX_PENDING][n] */
    double *pend_act; /* owned: [S_MAX_PENDING][n] */
    double *pend_t;   /* owned: [S_MAX_PENDING][n_t] */
    bs_candset_t proposed;
    /* scratch */
    double *sb, *ab, *s2b, *a2b, *yb, *xb, *db, *dxb; /* owned: batch buffers */
    int *termb;                                       /* owned: [batch] */
    double *pact;                                     /* owned: [n] the episode's actions */
} s_haq_t;

/* ---- small helpers ------------------------------------------------------------------------ */

static double s_clamp01(double x)
{
    return x < 0 ? 0 : x > 1 ? 1 : x;
}

static double s_halton(int64_t i, int base)
{
    double f = 1, r = 0;
    while (i > 0) {
        f /= base;
        r += f * (double)(i % base);
        i /= base;
    }
    return r;
}

static int s_choice(const s_haq_t *h, int l, double a)
{
    int nc = h->space->layers[l].n_choices;
    int pos = (int)lround((1.0 - s_clamp01(a)) * (nc - 1));
    return h->order[l * BS_MAX_CHOICES + pos];
}

static double s_action_of(const s_haq_t *h, int l, int choice)
{
    int nc = h->space->layers[l].n_choices;
    return nc > 1 ? 1.0 - (double)h->pos_of[l * BS_MAX_CHOICES + choice] / (nc - 1) : 1.0;
}

static void s_state(const s_haq_t *h, int l, double prev, const double *t, double *s)
{
    memcpy(s, h->feat + (size_t)l * S_NF, S_NF * sizeof *s);
    s[S_NF] = prev;
    for (int k = 0; k < h->n_t; k++)
        s[S_NF + 1 + k] = t[k];
}

/* predicted cost ratio of cand to all-fp32 for cost objective k */
static double s_ratio(const s_haq_t *h, int k, const int *cand)
{
    double full = bs_cost_predict(h->obj[k], h->fp32);
    double v = bs_cost_predict(h->obj[k], cand);
    return full > 0 ? v / full : 1.0;
}

/* the least predicted cost ratio any candidate reaches for cost objective k: the base plus each
 * layer's cheapest term (not the least precise candidate's: latency is not monotone in
 * precision, w2a32 runs slower than w4a8) */
static double s_min_ratio(const s_haq_t *h, int k)
{
    double full = bs_cost_predict(h->obj[k], h->fp32);
    double v = bs_cost_base(h->obj[k]);
    for (int l = 0; l < h->n; l++) {
        double m = INFINITY;
        for (int c = 0; c < h->space->layers[l].n_choices; c++) {
            double x = bs_cost_term(h->obj[k], l, c);
            m = x < m ? x : m;
        }
        v += m;
    }
    return full > 0 ? v / full : 1.0;
}

static double s_truncnorm(bs_rng_t *r, double mu, double sigma)
{
    for (int i = 0; i < 20; i++) {
        double x = mu + sigma * bs_pol_gauss(r);
        if (x >= 0 && x <= 1)
            return x;
    }
    return s_clamp01(mu);
}

/* ---- create / destroy --------------------------------------------------------------------- */

static void s_destroy(void *state)
{
    s_haq_t *h = state;
    if (!h)
        return;
    bs_free(h->order);
    bs_free(h->pos_of);
    bs_free(h->fp32);
    bs_free(h->feat);
    for (int k = 0; k < BS_MAX_OBJECTIVES; k++)
        bs_cost_free(&h->obj[k]);
    for (int i = 0; h->bud && i < h->n_bud; i++)
        bs_cost_free(&h->bud[i]);
    bs_free(h->bud);
    bs_free(h->bud_lim);
    bs_nn_free(&h->actor);
    bs_nn_free(&h->critic);
    bs_nn_free(&h->actor_t);
    bs_nn_free(&h->critic_t);
    bs_free(h->rep_act);
    bs_free(h->rep_t);
    bs_free(h->rep_r);
    bs_free(h->pend_cand);
    bs_free(h->pend_act);
    bs_free(h->pend_t);
    bs_candset_free(&h->proposed);
    bs_free(h->sb);
    bs_free(h->ab);
    bs_free(h->s2b);
    bs_free(h->a2b);
    bs_free(h->yb);
    bs_free(h->xb);
    bs_free(h->db);
    bs_free(h->dxb);
    bs_free(h->termb);
    bs_free(h->pact);
    bs_free(h);
}

static int s_params(s_haq_t *h, const bs_policy_ctx_t *ctx, bs_err_t *err)
{
    const bs_config_t *cfg = ctx->cfg;
    const cJSON *p = ctx->params;
    /* warm-up: a tenth of the budget, at most 20, and at least one Latin-hypercube block (the
     * most choices of any layer) so that every (layer, choice) term gets measured */
    int64_t wdef = cfg->budget_evals / 10, wmin = 1;
    for (int l = 0; l < h->n; l++)
        wmin = h->space->layers[l].n_choices > wmin ? h->space->layers[l].n_choices : wmin;
    wdef = wdef > 20 ? 20 : wdef;
    wdef = wdef < wmin ? wmin : wdef;
    int rc;
    if ((rc = bs_pol_param_int(cfg, p, "warmup", 0, 1000000, wdef, &h->warmup, err)) ||
        (rc = bs_pol_param_int(cfg, p, "hidden", 4, 512, 64, &h->hidden, err)) ||
        (rc = bs_pol_param_int(cfg, p, "batch", 1, 4096, 64, &h->batch, err)) ||
        (rc = bs_pol_param_int(cfg, p, "replay", 16, 100000, 2000, &h->replay, err)) ||
        (rc = bs_pol_param_int(cfg, p, "updates", 0, 1000, 4, &h->updates, err)) ||
        (rc = bs_pol_param_num(cfg, p, "lr_actor", 1e-7, 1, 1e-3, &h->lr_actor, err)) ||
        (rc = bs_pol_param_num(cfg, p, "lr_critic", 1e-7, 1, 1e-3, &h->lr_critic, err)) ||
        (rc = bs_pol_param_num(cfg, p, "noise", 0, 2, 0.5, &h->noise, err)) ||
        (rc = bs_pol_param_num(cfg, p, "noise_decay", 0, 1, 0.99, &h->noise_decay, err)) ||
        (rc = bs_pol_param_num(cfg, p, "noise_min", 0, 2, 0.05, &h->noise_min, err)) ||
        (rc = bs_pol_param_num(cfg, p, "tau", 0, 1, 0.01, &h->tau, err)) ||
        (rc = bs_pol_param_num(cfg, p, "reward_scale", 1e-6, 1e6, 10, &h->reward_scale, err)) ||
        (rc = bs_pol_param_num(cfg, p, "fail_reward", -1e6, 1e6, -2, &h->fail_reward, err)))
        return rc;
    return 0;
}

static void s_features(s_haq_t *h)
{
    int n = h->n;
    for (int l = 0; l < n; l++) {
        const bs_space_layer_t *L = &h->space->layers[l];
        double *f = h->feat + (size_t)l * S_NF;
        memset(f, 0, S_NF * sizeof *f);
        f[0] = n > 1 ? (double)l / (n - 1) : 0;
        if (L->desc.known) {
            int kind = (int)L->desc.kind;
            if (kind >= 0 && kind < 4)
                f[1 + kind] = 1;
            f[5] = log1p((double)L->desc.in_ch);
            f[6] = log1p((double)L->desc.out_ch);
            f[7] = log1p((double)L->desc.kernel);
            f[8] = (double)L->desc.stride;
            f[10] = log1p((double)L->desc.macs);
        }
        f[9] = log1p((double)L->n_params);
    }
    for (int j = 5; j < S_NF; j++) { /* min-max over the layers */
        double lo = INFINITY, hi = -INFINITY;
        for (int l = 0; l < n; l++) {
            double v = h->feat[(size_t)l * S_NF + j];
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
        for (int l = 0; l < n; l++) {
            double *v = &h->feat[(size_t)l * S_NF + j];
            *v = hi > lo ? (*v - lo) / (hi - lo) : 0;
        }
    }
}

static bs_nn_t *s_net(int in, int hidden, bs_nn_act_t last, bs_rng_t *rng)
{
    int widths[4] = {in, hidden, hidden, 1};
    bs_nn_act_t acts[3] = {BS_NN_RELU, BS_NN_RELU, last};
    bs_nn_t *nn = bs_nn_new(3, widths, acts, rng);
    if (nn)
        bs_nn_init_last(nn, 3e-3, rng);
    return nn;
}

static int s_create(const bs_policy_ctx_t *ctx, void **state, bs_err_t *err)
{
    const bs_space_t *sp = ctx->space;
    if (sp->n_layers < 1)
        return bs_err_set(err, BS_ECONFIG, "%s: policy haq: the search space has no layers",
                          ctx->cfg->path ? ctx->cfg->path : "campaign");
    s_haq_t *h = bs_calloc(1, sizeof *h);
    if (!h)
        return bs_err_set(err, BS_ENOMEM, "haq policy: out of memory");
    h->space = sp;
    h->cfg = ctx->cfg;
    h->n = sp->n_layers;
    int rc = s_params(h, ctx, err);
    if (rc) {
        s_destroy(h);
        return rc;
    }
    int n = h->n;
    size_t nn = (size_t)n;
    strcpy(h->quality, "accuracy");
    for (int i = 0; i < ctx->cfg->n_objectives; i++) {
        const bs_objective_t *o = &ctx->cfg->objectives[i];
        if (o->goal > 0) {
            snprintf(h->quality, sizeof h->quality, "%s", o->metric);
            break;
        }
    }
    h->order = bs_malloc(nn * BS_MAX_CHOICES * sizeof *h->order);
    h->pos_of = bs_malloc(nn * BS_MAX_CHOICES * sizeof *h->pos_of);
    h->fp32 = bs_malloc(nn * sizeof *h->fp32);
    h->pact = bs_malloc(nn * sizeof *h->pact);
    h->feat = bs_malloc(nn * S_NF * sizeof *h->feat);
    if (!h->order || !h->pos_of || !h->fp32 || !h->pact || !h->feat)
        goto oom;
    h->space_size = 1;
    for (int l = 0; l < n; l++) {
        const bs_space_layer_t *L = &sp->layers[l];
        int *o = h->order + (size_t)l * BS_MAX_CHOICES;
        bs_pol_choice_order(L, o);
        for (int k = 0; k < L->n_choices; k++)
            h->pos_of[(size_t)l * BS_MAX_CHOICES + o[k]] = k;
        h->fp32[l] = o[0];
        h->space_size *= L->n_choices;
    }
    s_features(h);
    for (int i = 0; i < ctx->cfg->n_objectives; i++) {
        const bs_objective_t *o = &ctx->cfg->objectives[i];
        if (o->goal < 0 && bs_cost_metric_ok(o->metric)) {
            h->obj[h->n_cost] = bs_cost_new(sp, o->metric);
            if (!h->obj[h->n_cost])
                goto oom;
            h->n_cost++;
        }
    }
    h->n_t = h->n_cost > 0 ? h->n_cost : 1;
    if (bs_cost_models_for(ctx->cfg, sp, &h->bud, &h->bud_lim, &h->n_bud))
        goto oom;
    h->sdim = S_NF + 1 + h->n_t;
    bs_rng_seed(&h->rng, ctx->seed ^ 0x6861712d64647067ull); /* "haq-ddpg" */
    for (int k = 0; k < BS_MAX_OBJECTIVES; k++) {
        h->shift[k] = bs_rng_uniform(&h->rng);
        h->feas_lo[k] = 2;
    }
    h->actor = s_net(h->sdim, (int)h->hidden, BS_NN_SIGMOID, &h->rng);
    h->critic = s_net(h->sdim + 1, (int)h->hidden, BS_NN_LINEAR, &h->rng);
    h->actor_t = s_net(h->sdim, (int)h->hidden, BS_NN_SIGMOID, &h->rng);
    h->critic_t = s_net(h->sdim + 1, (int)h->hidden, BS_NN_LINEAR, &h->rng);
    if (!h->actor || !h->critic || !h->actor_t || !h->critic_t)
        goto oom;
    bs_nn_copy(h->actor_t, h->actor, 0);
    bs_nn_copy(h->critic_t, h->critic, 0);
    size_t R = (size_t)h->replay, B = (size_t)h->batch, sd = (size_t)h->sdim;
    h->rep_act = bs_malloc(R * nn * sizeof(double));
    h->rep_t = bs_malloc(R * (size_t)h->n_t * sizeof(double));
    h->rep_r = bs_malloc(R * 3 * sizeof(double));
    h->pend_cand = bs_malloc(S_MAX_PENDING * nn * sizeof(int));
    h->pend_act = bs_malloc(S_MAX_PENDING * nn * sizeof(double));
    h->pend_t = bs_malloc(S_MAX_PENDING * (size_t)h->n_t * sizeof(double));
    h->sb = bs_malloc(B * sd * sizeof(double));
    h->s2b = bs_malloc(B * sd * sizeof(double));
    h->ab = bs_malloc(B * sizeof(double));
    h->a2b = bs_malloc(B * sizeof(double));
    h->yb = bs_malloc(B * sizeof(double));
    h->db = bs_malloc(B * sizeof(double));
    h->termb = bs_malloc(B * sizeof(int));
    h->xb = bs_malloc(B * (sd + 1) * sizeof(double));
    h->dxb = bs_malloc(B * (sd + 1) * sizeof(double));
    if (!h->rep_act || !h->rep_t || !h->rep_r || !h->pend_cand || !h->pend_act || !h->pend_t ||
        !h->sb || !h->s2b || !h->ab || !h->a2b || !h->yb || !h->db || !h->termb || !h->xb ||
        !h->dxb || bs_candset_init(&h->proposed, n))
        goto oom;
    *state = h;
    return 0;
oom:
    s_destroy(h);
    return bs_err_set(err, BS_ENOMEM, "haq policy: out of memory");
}

/* ---- proposing ---------------------------------------------------------------------------- */

static void s_targets(s_haq_t *h, double *t)
{
    static const int bases[BS_MAX_OBJECTIVES] = {2, 3, 5, 7};
    if (h->n_cost == 0) {
        t[0] = 1;
        return;
    }
    for (int k = 0; k < h->n_cost; k++) {
        double u = s_halton(h->episode + 1, bases[k]) + h->shift[k];
        u -= floor(u);
        double lo = s_min_ratio(h, k);
        if (h->episode >= h->warmup && h->feas_lo[k] <= 1) {
            double flo = h->feas_lo[k] - 0.1 * (1 - lo);
            lo = flo > lo ? flo : lo;
        }
        lo = s_clamp01(lo);
        t[k] = lo + (1 - lo) * u;
    }
}

/* toward the episode's targets, then the campaign's budgets */
static int s_enforce(s_haq_t *h, const double *t, int *cand)
{
    if (t && h->n_cost > 0) {
        double lim[BS_MAX_OBJECTIVES];
        for (int k = 0; k < h->n_cost; k++)
            lim[k] = t[k] * bs_cost_predict(h->obj[k], h->fp32);
        int rc = bs_cost_enforce(h->obj, lim, h->n_cost, h->space, cand);
        if (rc < 0)
            return rc;
    }
    if (h->n_bud > 0) {
        int rc = bs_cost_enforce(h->bud, h->bud_lim, h->n_bud, h->space, cand);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Position (0 = most precise) of layer l in warm-up episode e: a Latin hypercube over each
 * layer's choices, every block of n_choices episodes visiting each choice of each layer once in
 * an order of its own (a permutation hashed from the seed, the layer and the block), so that
 * the cost models see every (layer, choice) term, and its profiled time, within the first
 * max(n_choices) results, whatever the seeds before them held. */
static int s_warm_pos(const s_haq_t *h, int l, int64_t e)
{
    int nc = h->space->layers[l].n_choices, perm[BS_MAX_CHOICES];
    bs_rng_t r;
    uint64_t key = (uint64_t)(h->shift[0] * 9007199254740992.0);
    bs_rng_seed(&r, key ^ ((uint64_t)(l + 1) * 0x9e3779b97f4a7c15ull) ^
                        ((uint64_t)(e / nc + 1) * 0xc2b2ae3d27d4eb4full));
    for (int i = 0; i < nc; i++)
        perm[i] = i;
    for (int i = nc - 1; i > 0; i--) {
        int j = (int)bs_rng_below(&r, (uint32_t)(i + 1)), x = perm[i];
        perm[i] = perm[j];
        perm[j] = x;
    }
    return perm[e % nc];
}

static double s_sigma(const s_haq_t *h)
{
    double s = h->noise * pow(h->noise_decay, (double)(h->episode - h->warmup));
    return s > h->noise_min ? s : h->noise_min;
}

/* actions of a candidate, and its predicted cost ratios as targets */
static void s_reconstruct(const s_haq_t *h, const int *cand, double *act, double *t)
{
    for (int l = 0; l < h->n; l++)
        act[l] = s_action_of(h, l, cand[l]);
    if (h->n_cost == 0)
        t[0] = 1;
    for (int k = 0; k < h->n_cost; k++)
        t[k] = s_clamp01(s_ratio(h, k, cand));
}

static int s_pend_push(s_haq_t *h, const int *cand, const double *act, const double *t)
{
    size_t n = (size_t)h->n, nt = (size_t)h->n_t;
    if (h->n_pend == S_MAX_PENDING) { /* drop the oldest */
        memmove(h->pend_cand, h->pend_cand + n, (S_MAX_PENDING - 1) * n * sizeof(int));
        memmove(h->pend_act, h->pend_act + n, (S_MAX_PENDING - 1) * n * sizeof(double));
        memmove(h->pend_t, h->pend_t + nt, (S_MAX_PENDING - 1) * nt * sizeof(double));
        h->n_pend--;
    }
    size_t i = (size_t)h->n_pend++;
    memcpy(h->pend_cand + i * n, cand, n * sizeof(int));
    memcpy(h->pend_act + i * n, act, n * sizeof(double));
    memcpy(h->pend_t + i * nt, t, nt * sizeof(double));
    return 0;
}

static int s_propose(void *state, int *out)
{
    s_haq_t *h = state;
    int n = h->n;
    if ((double)h->proposed.count >= h->space_size)
        return BS_EEXHAUSTED;
    double t[BS_MAX_OBJECTIVES], s[S_NF + 1 + BS_MAX_OBJECTIVES];
    double *act = h->pact;
    s_targets(h, t);
    double prev = 0, sigma = s_sigma(h);
    for (int l = 0; l < n; l++) {
        double a;
        if (h->episode < h->warmup) {
            int nc = h->space->layers[l].n_choices;
            a = nc > 1 ? 1.0 - (double)s_warm_pos(h, l, h->episode) / (nc - 1) : 1.0;
        } else {
            s_state(h, l, prev, t, s);
            int rc = bs_nn_forward(h->actor, s, 1, NULL);
            if (rc)
                return rc;
            a = s_truncnorm(&h->rng, bs_nn_output(h->actor)[0], sigma);
        }
        act[l] = a;
        out[l] = s_choice(h, l, a);
        prev = a;
    }
    int warm = h->episode < h->warmup;
    h->episode++;
    int rc = s_enforce(h, warm ? NULL : t, out); /* warm-up keeps its stratified choices */
    int moved = warm;
    for (int tries = 0; !rc && tries < 2 * S_TRIES && bs_candset_has(&h->proposed, out); tries++) {
        moved = 1;
        if (tries < S_TRIES) { /* a random walk around the episode's candidate */
            int l = (int)bs_rng_below(&h->rng, (uint32_t)n);
            int nc = h->space->layers[l].n_choices;
            if (nc < 2)
                continue;
            int p = h->pos_of[(size_t)l * BS_MAX_CHOICES + out[l]];
            p += (p == 0 || (p < nc - 1 && bs_rng_below(&h->rng, 2))) ? 1 : -1;
            out[l] = h->order[(size_t)l * BS_MAX_CHOICES + p];
        } else { /* anywhere */
            for (int k = 0; k < n; k++)
                out[k] = (int)bs_rng_below(&h->rng, (uint32_t)h->space->layers[k].n_choices);
        }
        rc = s_enforce(h, NULL, out);
    }
    if (!rc && moved)
        s_reconstruct(h, out, act, t);
    if (!rc && bs_candset_add(&h->proposed, out) < 0)
        rc = BS_ENOMEM;
    if (!rc)
        rc = s_pend_push(h, out, act, t);
    return rc;
}

/* ---- learning ----------------------------------------------------------------------------- */

static double s_reward(const s_haq_t *h, const double *r)
{
    if (r[2] > 0)
        return h->fail_reward;
    double ref = h->has_ref ? h->q_ref : r[0];
    return h->reward_scale * (r[0] - ref) - h->reward_scale * r[1];
}

static int s_update(s_haq_t *h)
{
    int64_t kept = h->rep_count < h->replay ? h->rep_count : h->replay;
    if (kept < 1)
        return 0;
    int n = h->n, sd = h->sdim, B = (int)h->batch;
    double *s = h->sb, *s2 = h->s2b, *a = h->ab, *y = h->yb, *x = h->xb, *d = h->db;
    int *terminal = h->termb;
    /* a batch of transitions */
    for (int b = 0; b < B; b++) {
        int64_t e = (int64_t)bs_rng_below(&h->rng, (uint32_t)kept);
        int l = (int)bs_rng_below(&h->rng, (uint32_t)n);
        const double *act = h->rep_act + e * n, *t = h->rep_t + e * h->n_t;
        s_state(h, l, l > 0 ? act[l - 1] : 0, t, s + (size_t)b * sd);
        a[b] = act[l];
        terminal[b] = l == n - 1;
        y[b] = s_reward(h, h->rep_r + e * 3);
        s_state(h, l < n - 1 ? l + 1 : l, act[l], t, s2 + (size_t)b * sd);
    }
    /* critic target: r at the last layer, Q'(s', mu'(s')) elsewhere */
    int rc = bs_nn_forward(h->actor_t, s2, B, NULL);
    if (rc)
        return rc;
    const double *mu2 = bs_nn_output(h->actor_t);
    for (int b = 0; b < B; b++) {
        memcpy(x + (size_t)b * (sd + 1), s2 + (size_t)b * sd, (size_t)sd * sizeof *x);
        x[(size_t)b * (sd + 1) + sd] = mu2[b];
    }
    if ((rc = bs_nn_forward(h->critic_t, x, B, NULL)))
        return rc;
    const double *q2 = bs_nn_output(h->critic_t);
    for (int b = 0; b < B; b++)
        if (!terminal[b])
            y[b] = q2[b];
    /* critic step */
    for (int b = 0; b < B; b++) {
        memcpy(x + (size_t)b * (sd + 1), s + (size_t)b * sd, (size_t)sd * sizeof *x);
        x[(size_t)b * (sd + 1) + sd] = a[b];
    }
    if ((rc = bs_nn_forward(h->critic, x, B, NULL)))
        return rc;
    const double *q = bs_nn_output(h->critic);
    for (int b = 0; b < B; b++)
        d[b] = 2.0 * (q[b] - y[b]) / B;
    if ((rc = bs_nn_backward(h->critic, d, NULL)))
        return rc;
    bs_nn_adam(h->critic, h->lr_critic, 0, 0, 0);
    /* actor step: ascend Q(s, mu(s)) */
    if ((rc = bs_nn_forward(h->actor, s, B, NULL)))
        return rc;
    const double *mu = bs_nn_output(h->actor);
    for (int b = 0; b < B; b++) {
        memcpy(x + (size_t)b * (sd + 1), s + (size_t)b * sd, (size_t)sd * sizeof *x);
        x[(size_t)b * (sd + 1) + sd] = mu[b];
    }
    if ((rc = bs_nn_forward(h->critic, x, B, NULL)))
        return rc;
    for (int b = 0; b < B; b++)
        d[b] = -1.0 / B;
    if ((rc = bs_nn_backward(h->critic, d, h->dxb)))
        return rc;
    for (int b = 0; b < B; b++)
        d[b] = h->dxb[(size_t)b * (sd + 1) + sd];
    if ((rc = bs_nn_backward(h->actor, d, NULL)))
        return rc;
    bs_nn_adam(h->actor, h->lr_actor, 0, 0, 0);
    bs_nn_soft_update(h->actor_t, h->actor, h->tau);
    bs_nn_soft_update(h->critic_t, h->critic, h->tau);
    return 0;
}

static void s_learn_costs(s_haq_t *h, const bs_policy_obs_t *obs)
{
    if (!obs->ok || !obs->m)
        return;
    for (int pass = 0; pass < 2; pass++) {
        bs_cost_t **ms = pass ? h->bud : h->obj;
        int nm = pass ? h->n_bud : h->n_cost;
        for (int i = 0; i < nm; i++) {
            double v;
            if (bs_metrics_get(obs->m, bs_cost_metric(ms[i]), &v) == 0)
                bs_cost_observe(ms[i], obs->cand, v, obs->layer_ms);
        }
    }
}

static void s_observe(void *state, const bs_policy_obs_t *obs)
{
    s_haq_t *h = state;
    int n = h->n;
    for (int l = 0; l < n; l++) /* outside input: a candidate from the database */
        if (obs->cand[l] < 0 || obs->cand[l] >= h->space->layers[l].n_choices)
            return;
    s_learn_costs(h, obs);
    bs_candset_add(&h->proposed, obs->cand);
    int64_t slot = h->rep_count % h->replay;
    double *act = h->rep_act + slot * n, *t = h->rep_t + slot * h->n_t, *r = h->rep_r + slot * 3;
    int found = -1;
    for (int i = 0; i < h->n_pend && found < 0; i++)
        if (!memcmp(h->pend_cand + (size_t)i * n, obs->cand, (size_t)n * sizeof(int)))
            found = i;
    if (found >= 0) {
        size_t nt = (size_t)h->n_t, nn = (size_t)n, i = (size_t)found;
        memcpy(act, h->pend_act + i * nn, nn * sizeof *act);
        memcpy(t, h->pend_t + i * nt, nt * sizeof *t);
        size_t rest = (size_t)(h->n_pend - found - 1);
        memmove(h->pend_cand + i * nn, h->pend_cand + (i + 1) * nn, rest * nn * sizeof(int));
        memmove(h->pend_act + i * nn, h->pend_act + (i + 1) * nn, rest * nn * sizeof(double));
        memmove(h->pend_t + i * nt, h->pend_t + (i + 1) * nt, rest * nt * sizeof(double));
        h->n_pend--;
    } else {
        s_reconstruct(h, obs->cand, act, t);
    }
    double qv = NAN;
    int ok = obs->ok && obs->m && bs_metrics_get(obs->m, h->quality, &qv) == 0 && isfinite(qv);
    r[0] = ok ? qv : 0;
    r[1] = ok ? bs_pol_violation(h->cfg, obs->m) : 0;
    r[2] = ok ? 0 : 1;
    if (ok && (!h->has_ref || qv > h->q_ref)) {
        h->has_ref = 1;
        h->q_ref = qv;
    }
    if (ok && r[1] == 0)
        for (int k = 0; k < h->n_cost; k++) {
            double v = s_ratio(h, k, obs->cand);
            if (v < h->feas_lo[k])
                h->feas_lo[k] = v;
        }
    h->rep_count++;
    h->observed++;
    if (h->observed >= h->warmup)
        for (int64_t u = 0; u < h->updates; u++)
            if (s_update(h))
                break;
}

/* ---- persistence -------------------------------------------------------------------------- */

static int s_put_nn(cJSON *o, const char *key, const bs_nn_t *nn, int adam)
{
    cJSON *j = bs_nn_save(nn, adam);
    if (!j)
        return BS_ENOMEM;
    if (!cJSON_AddItemToObject(o, key, j)) {
        cJSON_Delete(j);
        return BS_ENOMEM;
    }
    return 0;
}

static cJSON *s_save(void *state)
{
    s_haq_t *h = state;
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    int64_t kept = h->rep_count < h->replay ? h->rep_count : h->replay;
    int64_t n = h->n, nt = h->n_t;
    double misc[2] = {(double)h->has_ref, h->q_ref};
    int rc = bs_pol_put_i64(o, "version", S_VERSION) || bs_pol_put_i64(o, "n_layers", h->n) ||
             bs_pol_put_i64(o, "sdim", h->sdim) || bs_pol_put_i64(o, "replay", h->replay) ||
             bs_pol_put_rng(o, "rng", &h->rng) || bs_pol_put_i64(o, "episode", h->episode) ||
             bs_pol_put_i64(o, "observed", h->observed) || bs_pol_put_f64s(o, "ref", misc, 2) ||
             bs_pol_put_f64s(o, "shift", h->shift, BS_MAX_OBJECTIVES) ||
             bs_pol_put_f64s(o, "feas_lo", h->feas_lo, BS_MAX_OBJECTIVES) ||
             s_put_nn(o, "actor", h->actor, 1) || s_put_nn(o, "critic", h->critic, 1) ||
             s_put_nn(o, "actor_target", h->actor_t, 0) ||
             s_put_nn(o, "critic_target", h->critic_t, 0) ||
             bs_pol_put_i64(o, "rep_count", h->rep_count) ||
             bs_pol_put_f64s(o, "rep_act", h->rep_act, kept * n) ||
             bs_pol_put_f64s(o, "rep_t", h->rep_t, kept * nt) ||
             bs_pol_put_f64s(o, "rep_r", h->rep_r, kept * 3) ||
             bs_pol_put_ints(o, "pend_cand", h->pend_cand, h->n_pend * n) ||
             bs_pol_put_f64s(o, "pend_act", h->pend_act, h->n_pend * n) ||
             bs_pol_put_f64s(o, "pend_t", h->pend_t, h->n_pend * nt) ||
             bs_cost_put_list(o, "cost_objectives", h->obj, h->n_cost) ||
             bs_cost_put_list(o, "cost_budgets", h->bud, h->n_bud);
    if (!rc)
        rc = bs_pol_put_candset(o, "proposed", &h->proposed);
    if (rc) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static int s_get_nn(const cJSON *o, const char *key, bs_nn_t *nn, int adam, bs_err_t *err)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsObject(j))
        return bs_err_set(err, BS_EPROTO, "policy state: key \"%s\": expected an object", key);
    int rc = bs_nn_load(nn, j, adam, err);
    if (rc)
        bs_err_prefix(err, "policy state: key \"%s\"", key);
    return rc;
}

static int s_load(void *state, const cJSON *saved, bs_err_t *err)
{
    s_haq_t *h = state;
    int64_t v, n = h->n, nt = h->n_t;
    int rc;
    if ((rc = bs_pol_get_i64(saved, "version", S_VERSION, S_VERSION, &v, err)) ||
        (rc = bs_pol_get_i64(saved, "n_layers", n, n, &v, err)) ||
        (rc = bs_pol_get_i64(saved, "sdim", h->sdim, h->sdim, &v, err)) ||
        (rc = bs_pol_get_i64(saved, "replay", h->replay, h->replay, &v, err)))
        return rc;
    double misc[2];
    int64_t kept, np, rep_count;
    if ((rc = bs_pol_get_rng(saved, "rng", &h->rng, err)) ||
        (rc = bs_pol_get_i64(saved, "episode", 0, INT64_MAX, &h->episode, err)) ||
        (rc = bs_pol_get_i64(saved, "observed", 0, INT64_MAX, &h->observed, err)) ||
        (rc = bs_pol_get_f64s(saved, "ref", misc, 2, err)) ||
        (rc = bs_pol_get_f64s(saved, "shift", h->shift, BS_MAX_OBJECTIVES, err)) ||
        (rc = bs_pol_get_f64s(saved, "feas_lo", h->feas_lo, BS_MAX_OBJECTIVES, err)) ||
        (rc = s_get_nn(saved, "actor", h->actor, 1, err)) ||
        (rc = s_get_nn(saved, "critic", h->critic, 1, err)) ||
        (rc = s_get_nn(saved, "actor_target", h->actor_t, 0, err)) ||
        (rc = s_get_nn(saved, "critic_target", h->critic_t, 0, err)) ||
        (rc = bs_pol_get_i64(saved, "rep_count", 0, INT64_MAX, &rep_count, err)))
        return rc;
    h->has_ref = misc[0] != 0;
    h->q_ref = misc[1];
    kept = rep_count < h->replay ? rep_count : h->replay;
    if ((rc = bs_pol_get_f64s(saved, "rep_act", h->rep_act, kept * n, err)) ||
        (rc = bs_pol_get_f64s(saved, "rep_t", h->rep_t, kept * nt, err)) ||
        (rc = bs_pol_get_f64s(saved, "rep_r", h->rep_r, kept * 3, err)) ||
        (rc = bs_pol_get_len(saved, "pend_cand", &np, err)))
        return rc;
    h->rep_count = rep_count;
    if (np % n || np / n > S_MAX_PENDING)
        return bs_err_set(err, BS_EPROTO,
                          "policy state: key \"pend_cand\": expected at most "
                          "%d candidates of %lld layers",
                          S_MAX_PENDING, (long long)n);
    h->n_pend = (int)(np / n);
    if ((rc = bs_pol_get_ints(saved, "pend_cand", h->pend_cand, np, err)) ||
        (rc = bs_pol_get_f64s(saved, "pend_act", h->pend_act, np, err)) ||
        (rc = bs_pol_get_f64s(saved, "pend_t", h->pend_t, h->n_pend * nt, err)) ||
        (rc = bs_cost_get_list(saved, "cost_objectives", h->obj, h->n_cost, err)) ||
        (rc = bs_cost_get_list(saved, "cost_budgets", h->bud, h->n_bud, err)))
        return rc;
    for (int64_t i = 0; i < h->n_pend * n; i++)
        if (h->pend_cand[i] < 0 || h->pend_cand[i] >= h->space->layers[i % n].n_choices)
            return bs_err_set(err, BS_EPROTO,
                              "policy state: key \"pend_cand\"[%lld]: choice "
                              "out of range",
                              (long long)i);
    return bs_pol_get_candset(saved, "proposed", h->space, &h->proposed, err);
}

const bs_policy_ops_t bs_policy_haq = {
    .name = "haq",
    .create = s_create,
    .propose = s_propose,
    .observe = s_observe,
    .sensitivity = NULL,
    .save = s_save,
    .load = s_load,
    .destroy = s_destroy,
};

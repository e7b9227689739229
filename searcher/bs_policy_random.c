/*
 * bs_policy_random.c - the baseline policy: every layer's choice drawn uniformly and
 * independently from a seeded generator. The sequence of proposals depends only on the seed
 * and the space, so a campaign is reproducible, and a resumed campaign re-walks the same
 * sequence while the searcher skips what is already stored. Its saved state is the generator,
 * so a resumed campaign draws on from where it stopped.
 */
#include "bs_policy.h"
#include "bs_alloc.h"
#include "bs_polutil.h"
#include "bs_util.h"

typedef struct s_random {
    const bs_space_t *space;
    bs_rng_t rng;
} s_random_t;

static int s_create(const bs_policy_ctx_t *ctx, void **state, bs_err_t *err)
{
    s_random_t *r = bs_calloc(1, sizeof *r);
    if (!r)
        return bs_err_set(err, BS_ENOMEM, "random policy: out of memory");
    r->space = ctx->space;
    bs_rng_seed(&r->rng, ctx->seed);
    *state = r;
    return 0;
}

static int s_propose(void *state, int *out)
{
    s_random_t *r = state;
    for (int i = 0; i < r->space->n_layers; i++)
        out[i] = (int)bs_rng_below(&r->rng, (uint32_t)r->space->layers[i].n_choices);
    return 0;
}

static void s_observe(void *state, const bs_policy_obs_t *obs)
{
    (void)state;
    (void)obs;
}

static cJSON *s_save(void *state)
{
    s_random_t *r = state;
    cJSON *o = cJSON_CreateObject();
    if (o && bs_pol_put_rng(o, "rng", &r->rng)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static int s_load(void *state, const cJSON *saved, bs_err_t *err)
{
    s_random_t *r = state;
    return bs_pol_get_rng(saved, "rng", &r->rng, err);
}

static void s_destroy(void *state)
{
    bs_free(state);
}

const bs_policy_ops_t bs_policy_random = {
    .name = "random",
    .create = s_create,
    .propose = s_propose,
    .observe = s_observe,
    .save = s_save,
    .load = s_load,
    .destroy = s_destroy,
};

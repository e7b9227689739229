/*
 * bs_policy.h - the interface every search policy implements.
 *
 * A policy proposes candidates one at a time and observes results as they land, in any order:
 * the searcher asks for a proposal whenever an agent is free, so no agent ever waits for a
 * generation to finish. A candidate is an index into each layer's choices (space->layers[i].
 * choices[cand[i]]). The searcher guarantees that no configuration is dispatched twice: it drops
 * proposals already evaluated or in flight and asks again; policies avoid proposing them in the
 * first place (bs_candset_t in bs_polutil.h) so that the searcher's fallback rarely runs.
 *
 * Persistence. After results land the searcher calls save() and stores the JSON in the
 * database (table policy_state) together with the id of the last evaluation the policy had
 * observed. On resume it creates the policy, calls load() with that JSON, and then replays
 * through observe() only the evaluations stored after it, so a resumed campaign continues the
 * same search (same population, networks, replay buffer and random generator) instead of
 * starting over. A policy whose load() fails (a state from another version, another space) is
 * recreated and fed every stored evaluation instead; the searcher logs why.
 *
 * Sensitivity. A policy that seeds from the per-layer sensitivity measurements implements
 * sensitivity(); the searcher calls it with the stored table (averaged over the agent names
 * stored so far) at start and again each time a sensitivity job's rows are stored, and with an
 * empty table (n_agents 0) when every sensitivity job has failed. Until it has a table such a
 * policy answers BS_EAGAIN; the seeder uses the first table it gets.
 */
#ifndef BS_POLICY_H
#define BS_POLICY_H

#include <cjson/cJSON.h>

#include "bs_config.h"
#include "bs_metrics.h"
#include "bs_precision.h"

typedef struct bs_policy_ctx {
    const bs_space_t *space;  /* borrowed; outlives the policy; layers carry desc */
    const bs_config_t *cfg;   /* objectives, constraints */
    const cJSON *params;      /* this policy's parameter object ({"name": ..., ...}); a wrapper
                                 policy passes its inner policy's object here */
    uint64_t seed;
} bs_policy_ctx_t;

/* One result as the policy sees it. */
typedef struct bs_policy_obs {
    const int *cand;          /* [n_layers] choice indices */
    int ok;                   /* 0: the evaluation failed (m is NULL) */
    const bs_metrics_t *m;
    /* [n_layers] per-layer latency in ms from the result's profile (RESULT metrics.profile,
     * summed over the nodes fused into the layer), NAN for a layer it did not cover; NULL when
     * the result had no profile. */
    const double *layer_ms;
} bs_policy_obs_t;

/* Per-layer sensitivity, averaged over the agents that measured it: delta[l * BS_MAX_CHOICES +
 * c] is the change in accuracy (value - baseline, usually <= 0) with layer l alone at choice c
 * and every other layer fp32; NAN where not measured. Choices equal to w32a32 have 0. */
typedef struct bs_policy_sens {
    int n_layers;
    const double *delta;      /* borrowed for the call */
    double baseline;          /* accuracy with every layer fp32 */
    int n_agents;             /* how many agents' tables were averaged */
} bs_policy_sens_t;

typedef struct bs_policy_ops {
    const char *name;
    /* Creates the policy's state; err says what is wrong with its parameters, naming the
     * campaign file and the key ("configs/x.json: policy.population: expected ..."). */
    int (*create)(const bs_policy_ctx_t *ctx, void **state, bs_err_t *err);
    /* Writes one candidate into out[n_layers].
     * Returns 0, BS_EAGAIN (nothing to propose until more results land) or BS_EEXHAUSTED. */
    int (*propose)(void *state, int *out);
    /* A result for a candidate this or an earlier run proposed (or a seed, or a baseline). */
    void (*observe)(void *state, const bs_policy_obs_t *obs);
    /* Optional (NULL): the sensitivity table, see above. */
    void (*sensitivity)(void *state, const bs_policy_sens_t *sens);
    /* The whole state as JSON (caller owns), NULL on OOM. */
    cJSON *(*save)(void *state);
    /* Restores a state save() wrote for the same space and parameters. On failure (BS_EPROTO
     * with err saying what did not fit) the state may be half-loaded: the caller destroys it. */
    int (*load)(void *state, const cJSON *saved, bs_err_t *err);
    void (*destroy)(void *state);
} bs_policy_ops_t;

/* Looks a policy up by name; NULL if unknown. */
const bs_policy_ops_t *bs_policy_find(const char *name);
/* "random, nsga2, haq, sensitivity" for error messages. */
const char *bs_policy_names_list(void);

extern const bs_policy_ops_t bs_policy_random;
extern const bs_policy_ops_t bs_policy_nsga2;
extern const bs_policy_ops_t bs_policy_haq;
extern const bs_policy_ops_t bs_policy_sens;

#endif

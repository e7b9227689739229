/*
 * bs_policy.h - the interface every search policy implements.
 *
 * A policy proposes candidates one at a time and observes results as they land, in any order:
 * the searcher asks for a proposal whenever an agent is free, so no agent ever waits for a
 * generation to finish. The searcher, not the policy, guarantees that no configuration is
 * dispatched twice: it drops proposals already evaluated or in flight and asks again.
 *
 * On resume the searcher replays every stored evaluation through observe() before asking for
 * proposals, so a policy's view of the world survives a restart.
 */
#ifndef BS_POLICY_H
#define BS_POLICY_H

#include <cjson/cJSON.h>

#include "bs_config.h"
#include "bs_metrics.h"
#include "bs_precision.h"

typedef struct bs_policy_ctx {
    const bs_space_t *space;
    const bs_config_t *cfg;   /* objectives, constraints, policy params */
    uint64_t seed;
} bs_policy_ctx_t;

typedef struct bs_policy_ops {
    const char *name;
    /* Creates the policy's state; err says what is wrong with its parameters. */
    int (*create)(const bs_policy_ctx_t *ctx, void **state, bs_err_t *err);
    /* Writes one candidate, an index into each layer's choices (out[n_layers]).
     * Returns 0, BS_EAGAIN (nothing to propose until more results land) or BS_EEXHAUSTED. */
    int (*propose)(void *state, int *out);
    /* A result for a candidate this or an earlier run proposed; ok = 0 for a failed eval. */
    void (*observe)(void *state, const int *cand, int ok, const bs_metrics_t *m);
    void (*destroy)(void *state);
} bs_policy_ops_t;

/* Looks a policy up by name; NULL if unknown. */
const bs_policy_ops_t *bs_policy_find(const char *name);
/* "random" ... for error messages. */
const char *bs_policy_names_list(void);

extern const bs_policy_ops_t bs_policy_random;

#endif

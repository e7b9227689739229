/*
 * fuzz_policy_state.c - libFuzzer target for the saved policy states a resumed campaign reads
 * back from the database (table policy_state: anyone can edit the file). Any bytes are parsed
 * as JSON and given to every policy's load() on a small fixed search space; a load must succeed
 * or fail with a message, never crash, leak or read out of bounds, and a state it accepts must
 * then propose valid candidates and take results. The valid states of every policy on that
 * space are the seeds (tests/fuzz/corpus/policy_state/); run the target with
 * BS_FUZZ_WRITE_CORPUS=DIR to write them afresh.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bs_alloc.h"
#include "bs_log.h"
#include "bs_policy.h"

enum { S_L = 3 };

static bs_space_layer_t s_layers[S_L];
static bs_space_t s_space;
static bs_config_t s_cfg;
static const bs_policy_ops_t *s_ops[] = {&bs_policy_random, &bs_policy_nsga2, &bs_policy_haq,
                                         &bs_policy_sens};
static const char *s_params[] = {"{}", "{\"population\": 6}", "{\"warmup\": 3, \"hidden\": 8}",
                                 "{\"name\": \"sensitivity\", \"levels\": 3, \"population\": 6}"};

static void s_setup(void)
{
    static char *names[S_L] = {"a", "b", "c"};
    static const uint8_t w[4] = {32, 8, 4, 2};
    for (int l = 0; l < S_L; l++) {
        s_layers[l].name = names[l];
        s_layers[l].op_type = "Conv";
        s_layers[l].n_params = 100 * (l + 1);
        s_layers[l].n_choices = 8;
        for (int c = 0; c < 8; c++)
            s_layers[l].choices[c] = (bs_prec_t){w[c / 2], c % 2 ? 8 : 32};
    }
    s_space.n_layers = S_L;
    s_space.layers = s_layers;
    s_cfg.path = "fuzz.json";
    s_cfg.n_objectives = 2;
    snprintf(s_cfg.objectives[0].metric, 32, "accuracy");
    s_cfg.objectives[0].goal = 1;
    snprintf(s_cfg.objectives[1].metric, 32, "weight_bytes");
    s_cfg.objectives[1].goal = -1;
    for (int i = 0; i < BS_MAX_OBJECTIVES; i++)
        s_cfg.hv_ref[i] = __builtin_nan("");
}

static void s_result(const int *c, bs_metrics_t *m)
{
    bs_metrics_init(m);
    m->accuracy = 0.9 - 0.01 * (c[0] + c[1] + c[2]);
    m->weight_bytes = 1000 - 10 * (c[0] + 2 * c[1] + 3 * c[2]);
}

/* Drives a policy a few steps: proposals must be valid, results go back in. */
static void s_drive(const bs_policy_ops_t *ops, void *st, int steps)
{
    for (int i = 0; i < steps; i++) {
        int c[S_L];
        if (ops->propose(st, c) != 0)
            return;
        for (int l = 0; l < S_L; l++)
            if (c[l] < 0 || c[l] >= 8)
                abort();
        bs_metrics_t m;
        s_result(c, &m);
        bs_policy_obs_t obs = {.cand = c, .ok = i % 5 != 4, .m = i % 5 != 4 ? &m : NULL};
        ops->observe(st, &obs);
    }
}

static void s_write_corpus(const char *dir)
{
    double delta[S_L * BS_MAX_CHOICES];
    for (int i = 0; i < S_L * BS_MAX_CHOICES; i++)
        delta[i] = -0.001 * (i % BS_MAX_CHOICES);
    bs_policy_sens_t sens = {.n_layers = S_L, .delta = delta, .baseline = 0.9, .n_agents = 1};
    for (size_t p = 0; p < sizeof s_ops / sizeof s_ops[0]; p++) {
        cJSON *params = cJSON_Parse(s_params[p]);
        bs_policy_ctx_t ctx = {.space = &s_space, .cfg = &s_cfg, .params = params, .seed = 1};
        void *st = NULL;
        bs_err_t e = {0};
        if (s_ops[p]->create(&ctx, &st, &e) == 0) {
            if (s_ops[p]->sensitivity)
                s_ops[p]->sensitivity(st, &sens);
            s_drive(s_ops[p], st, 12);
            cJSON *j = s_ops[p]->save(st);
            char *text = j ? cJSON_PrintUnformatted(j) : NULL;
            char path[512];
            snprintf(path, sizeof path, "%s/%s.json", dir, s_ops[p]->name);
            FILE *f = text ? fopen(path, "w") : NULL;
            if (f) {
                fputs(text, f);
                fclose(f);
            }
            cJSON_free(text);
            cJSON_Delete(j);
            s_ops[p]->destroy(st);
        }
        cJSON_Delete(params);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    bs_log_level = BS_LOG_ERROR;
    s_setup();
    const char *dir = getenv("BS_FUZZ_WRITE_CORPUS");
    if (dir) {
        s_write_corpus(dir);
        exit(0);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1u << 20))
        return 0;
    cJSON *saved = cJSON_ParseWithLength((const char *)data, size);
    if (!saved)
        return 0;
    for (size_t p = 0; p < sizeof s_ops / sizeof s_ops[0]; p++) {
        cJSON *params = cJSON_Parse(s_params[p]);
        bs_policy_ctx_t ctx = {.space = &s_space, .cfg = &s_cfg, .params = params, .seed = 1};
        void *st = NULL;
        bs_err_t e = {0};
        if (s_ops[p]->create(&ctx, &st, &e) == 0) {
            if (s_ops[p]->load(st, saved, &e) == 0)
                s_drive(s_ops[p], st, 3);
            s_ops[p]->destroy(st);
        }
        cJSON_Delete(params);
    }
    cJSON_Delete(saved);
    return 0;
}

/*
 * test_haq.c - the HAQ policy on a synthetic additive problem: valid and new proposals (also
 * with results in flight and results it never proposed), budgets held by prediction, an exact
 * resume from a saved state, parameter errors, and a behavioural check that learning beats
 * random actions and the random policy.
 *
 * The toy: 4 layers x {w32,w8,w4,w2} x {a32,a8}; accuracy = 0.95 minus per-layer penalties that
 * grow as bits shrink, scaled by a per-layer sensitivity; weight bytes exactly n_params * w / 8;
 * latency additive with int8 activations faster (or, for the non-monotone case, with 2-bit
 * weights slower than everything: s_w2_slow, as unpacking 2-bit rows costs on a real engine).
 */
#include <math.h>

#include "bs_alloc.h"
#include "bs_cost.h"
#include "bs_policy.h"
#include "bs_polutil.h"
#include "bs_test.h"

#define NL 4

static const uint8_t s_w[4] = {32, 8, 4, 2};
static const uint8_t s_a[2] = {32, 8};
static const int64_t s_params[NL] = {320, 4640, 9000, 1290};
static const double s_sens[NL] = {1.5, 0.3, 0.6, 1.0};
static int s_w2_slow; /* 2-bit weights run slower than fp32 */

typedef struct toy {
    bs_space_layer_t layers[NL];
    bs_space_t space;
    bs_config_t cfg;
    cJSON *params;
} toy_t;

static void s_toy(toy_t *t, const char *params_json)
{
    memset(t, 0, sizeof *t);
    for (int l = 0; l < NL; l++) {
        bs_space_layer_t *L = &t->layers[l];
        L->name = (char *)"layer";
        L->op_type = (char *)"Conv";
        L->n_params = s_params[l];
        L->n_choices = 8;
        for (int k = 0; k < 8; k++)
            L->choices[k] = (bs_prec_t){s_w[k / 2], s_a[k % 2]};
        L->desc.known = 1;
        L->desc.kind = l == NL - 1 ? BS_LAYER_FC : BS_LAYER_CONV;
        L->desc.in_ch = l == 0 ? 1 : 16 * l;
        L->desc.out_ch = 16 * (l + 1);
        L->desc.kernel = l == NL - 1 ? 1 : 9;
        L->desc.stride = 1 + (l == 1);
        L->desc.macs = s_params[l] * (l == NL - 1 ? 1 : 196);
    }
    t->space.n_layers = NL;
    t->space.layers = t->layers;
    t->cfg.path = (char *)"configs/toy.json";
    t->cfg.n_objectives = 3;
    t->cfg.objectives[0] = (bs_objective_t){"accuracy", +1};
    t->cfg.objectives[1] = (bs_objective_t){"latency_p90_ms", -1};
    t->cfg.objectives[2] = (bs_objective_t){"weight_bytes", -1};
    t->cfg.budget_evals = 400;
    t->params = cJSON_Parse(params_json ? params_json : "{\"name\": \"haq\"}");
    ASSERT(t->params);
}

static void s_constrain(toy_t *t, const char *metric, double min, double max)
{
    bs_constraint_t *c = &t->cfg.constraints[t->cfg.n_constraints++];
    snprintf(c->metric, sizeof c->metric, "%s", metric);
    c->min = min;
    c->max = max;
}

static double s_acc(const toy_t *t, const int *cand)
{
    double acc = 0.95;
    for (int l = 0; l < NL; l++) {
        bs_prec_t p = t->layers[l].choices[cand[l]];
        double pen = p.w == 32 ? 0 : p.w == 8 ? 0.002 : p.w == 4 ? 0.015 : 0.08;
        if (p.a == 8)
            pen += 0.004;
        acc -= s_sens[l] * pen;
    }
    return acc;
}

static double s_lat(const toy_t *t, const int *cand, double *layer_ms)
{
    double s = 0.02;
    for (int l = 0; l < NL; l++) {
        bs_prec_t p = t->layers[l].choices[cand[l]];
        double f = p.w == 32 ? 1.0 : p.a == 8 ? 0.25 + 0.02 * p.w : 0.85;
        if (s_w2_slow && p.w == 2)
            f = 1.3;
        double v = 1e-5 * (double)t->layers[l].desc.macs * f;
        if (layer_ms)
            layer_ms[l] = v;
        s += v;
    }
    return s;
}

static double s_wb(const toy_t *t, const int *cand)
{
    double s = 0;
    for (int l = 0; l < NL; l++) {
        int w = t->layers[l].choices[cand[l]].w;
        s += (double)t->layers[l].n_params * (w == 32 ? 4 : w / 8.0);
    }
    return s;
}

static void s_metrics(const toy_t *t, const int *cand, bs_metrics_t *m, double *layer_ms)
{
    bs_metrics_init(m);
    m->accuracy = s_acc(t, cand);
    m->lat_p90_ms = s_lat(t, cand, layer_ms);
    m->weight_bytes = (int64_t)s_wb(t, cand);
}

static void s_observe(const bs_policy_ops_t *ops, void *st, const toy_t *t, const int *cand,
                      int with_profile)
{
    bs_metrics_t m;
    double lm[NL];
    s_metrics(t, cand, &m, lm);
    bs_policy_obs_t obs = {cand, 1, &m, with_profile ? lm : NULL};
    ops->observe(st, &obs);
}

static void *s_make(const toy_t *t, uint64_t seed)
{
    bs_policy_ctx_t ctx = {&t->space, &t->cfg, t->params, seed};
    void *st = NULL;
    bs_err_t err = {0};
    int rc = bs_policy_haq.create(&ctx, &st, &err);
    if (rc)
        bs_test_fail(__FILE__, __LINE__, "create: %s", err.msg);
    return st;
}

static void s_valid(const int *cand)
{
    for (int l = 0; l < NL; l++)
        ASSERT(cand[l] >= 0 && cand[l] < 8);
}

BS_TEST(params)
{
    bs_alloc_init();
    toy_t t;
    s_toy(&t, "{\"name\": \"haq\", \"hidden\": \"wide\"}");
    bs_policy_ctx_t ctx = {&t.space, &t.cfg, t.params, 1};
    void *st = NULL;
    bs_err_t err = {0};
    ASSERT_EQ(BS_ECONFIG, bs_policy_haq.create(&ctx, &st, &err));
    ASSERT_CONTAINS(err.msg, "configs/toy.json: policy.hidden");
    ASSERT(st == NULL);
    cJSON_Delete(t.params);
    s_toy(&t, "{\"name\": \"haq\", \"noise_decay\": 1.5}");
    ctx.params = t.params;
    ASSERT_EQ(BS_ECONFIG, bs_policy_haq.create(&ctx, &st, &err));
    ASSERT_CONTAINS(err.msg, "policy.noise_decay");
    cJSON_Delete(t.params);
    ASSERT_STR_EQ("haq", bs_policy_haq.name);
}

BS_TEST(proposals_valid_and_new)
{
    bs_alloc_init();
    toy_t t;
    s_toy(&t, "{\"name\": \"haq\", \"hidden\": 16, \"batch\": 16, \"warmup\": 10}");
    void *st = s_make(&t, 42);
    bs_candset_t seen;
    ASSERT_OK(bs_candset_init(&seen, NL));
    int cand[8][NL];
    /* a seed result it never proposed, and a failed evaluation */
    int seed[NL] = {0, 0, 0, 0};
    s_observe(&bs_policy_haq, st, &t, seed, 0);
    ASSERT_EQ(1, bs_candset_add(&seen, seed));
    int failed[NL] = {7, 6, 5, 4};
    bs_policy_obs_t fobs = {failed, 0, NULL, NULL};
    bs_policy_haq.observe(st, &fobs);
    ASSERT_EQ(1, bs_candset_add(&seen, failed));
    for (int round = 0; round < 40; round++) {
        /* 5 in flight at once, observed out of order */
        for (int i = 0; i < 5; i++) {
            ASSERT_OK(bs_policy_haq.propose(st, cand[i]));
            s_valid(cand[i]);
            if (bs_candset_add(&seen, cand[i]) != 1)
                bs_test_fail(__FILE__, __LINE__, "round %d: proposed a candidate twice", round);
        }
        for (int i = 4; i >= 0; i--)
            s_observe(&bs_policy_haq, st, &t, cand[i], round % 2);
    }
    ASSERT_EQ(202, seen.count);
    bs_candset_free(&seen);
    bs_policy_haq.destroy(st);
    cJSON_Delete(t.params);
}

BS_TEST(exhausts_small_space)
{
    bs_alloc_init();
    toy_t t;
    s_toy(&t, "{\"name\": \"haq\", \"hidden\": 8, \"batch\": 8, \"warmup\": 4}");
    for (int l = 0; l < NL; l++)
        t.layers[l].n_choices = l < 2 ? 2 : 1; /* 4 configurations */
    void *st = s_make(&t, 3);
    bs_candset_t seen;
    ASSERT_OK(bs_candset_init(&seen, NL));
    int cand[NL];
    for (int i = 0; i < 4; i++) {
        ASSERT_OK(bs_policy_haq.propose(st, cand));
        s_valid(cand);
        ASSERT(cand[2] == 0 && cand[3] == 0);
        ASSERT_EQ(1, bs_candset_add(&seen, cand));
        s_observe(&bs_policy_haq, st, &t, cand, 0);
    }
    ASSERT_EQ(BS_EEXHAUSTED, bs_policy_haq.propose(st, cand));
    bs_candset_free(&seen);
    bs_policy_haq.destroy(st);
    cJSON_Delete(t.params);
}

/* The warm-up is a Latin hypercube: in its first 8 episodes every layer takes each of its 8
 * choices once (no budget here to move them), so every cost term gets measured. */
BS_TEST(warmup_covers_every_choice)
{
    bs_alloc_init();
    toy_t t;
    s_toy(&t, "{\"name\": \"haq\", \"hidden\": 8, \"batch\": 8, \"warmup\": 16}");
    void *st = s_make(&t, 7);
    /* results it did not propose (seeds) do not disturb the design */
    int seed1[NL] = {0, 0, 0, 0}, seed2[NL] = {1, 1, 1, 1};
    s_observe(&bs_policy_haq, st, &t, seed1, 1);
    s_observe(&bs_policy_haq, st, &t, seed2, 1);
    for (int block = 0; block < 2; block++) {
        int hit[NL][8] = {{0}};
        for (int e = 0; e < 8; e++) {
            int cand[NL];
            ASSERT_OK(bs_policy_haq.propose(st, cand));
            s_valid(cand);
            for (int l = 0; l < NL; l++)
                hit[l][cand[l]]++;
            s_observe(&bs_policy_haq, st, &t, cand, 1);
        }
        for (int l = 0; l < NL; l++)
            for (int c = 0; c < 8; c++)
                if (block == 0 && hit[l][c] != 1)
                    bs_test_fail(__FILE__, __LINE__, "block %d layer %d choice %d: %d times",
                                 block, l, c, hit[l][c]);
    }
    bs_policy_haq.destroy(st);
    cJSON_Delete(t.params);
}

/* Latency not monotone in precision (2-bit weights the slowest, w4a8 the fastest): the episodes'
 * latency targets must still reach down to the fastest configurations, which are neither the
 * least precise one nor reachable by only lowering precision from it. */
BS_TEST(finds_fastest_when_latency_not_monotone)
{
    bs_alloc_init();
    s_w2_slow = 1;
    toy_t t;
    s_toy(&t, "{\"name\": \"haq\", \"hidden\": 16, \"batch\": 16}");
    int fast[NL] = {5, 5, 5, 5}, low[NL] = {7, 7, 7, 7}, fp32[NL] = {0, 0, 0, 0};
    double best = s_lat(&t, fast, NULL);
    ASSERT(s_lat(&t, low, NULL) > s_lat(&t, fp32, NULL)); /* the toy is what it says */
    for (uint64_t seed = 1; seed <= 3; seed++) {
        void *st = s_make(&t, seed);
        double found = INFINITY;
        for (int i = 0; i < 60; i++) {
            int cand[NL];
            ASSERT_OK(bs_policy_haq.propose(st, cand));
            double v = s_lat(&t, cand, NULL);
            found = v < found ? v : found;
            s_observe(&bs_policy_haq, st, &t, cand, 1);
        }
        if (found > best * 1.02)
            bs_test_fail(__FILE__, __LINE__, "seed %llu: fastest proposal %.4f, best %.4f",
                         (unsigned long long)seed, found, best);
        bs_policy_haq.destroy(st);
    }
    s_w2_slow = 0;
    cJSON_Delete(t.params);
}

BS_TEST(budgets_hold_by_prediction)
{
    bs_alloc_init();
    toy_t t;
    s_toy(&t, "{\"name\": \"haq\", \"hidden\": 16, \"batch\": 16, \"warmup\": 10}");
    int fp32[NL] = {0, 0, 0, 0};
    double wb_lim = 0.4 * s_wb(&t, fp32), lat_lim = 0.6 * s_lat(&t, fp32, NULL);
    s_constrain(&t, "accuracy", 0.5, NAN);
    s_constrain(&t, "weight_bytes", NAN, wb_lim);
    s_constrain(&t, "latency_p90_ms", NAN, lat_lim);
    void *st = s_make(&t, 7);
    /* the same model the policy learns, fed the same results */
    bs_cost_t *lat = bs_cost_new(&t.space, "latency_p90_ms");
    ASSERT(lat);
    int cand[NL];
    for (int i = 0; i < 120; i++) {
        ASSERT_OK(bs_policy_haq.propose(st, cand));
        s_valid(cand);
        ASSERT(s_wb(&t, cand) <= wb_lim); /* the weight-bytes prior is exact here */
        if (bs_cost_ready(lat))
            ASSERT(bs_cost_predict(lat, cand) <= lat_lim * (1 + 1e-12));
        double lm[NL];
        double tot = s_lat(&t, cand, lm);
        ASSERT_OK(bs_cost_observe(lat, cand, tot, i % 3 ? NULL : lm));
        bs_metrics_t m;
        s_metrics(&t, cand, &m, NULL);
        bs_policy_obs_t obs = {cand, 1, &m, i % 3 ? NULL : lm};
        bs_policy_haq.observe(st, &obs);
    }
    bs_cost_free(&lat);
    bs_policy_haq.destroy(st);
    cJSON_Delete(t.params);
}

static cJSON *s_roundtrip(cJSON *j)
{
    ASSERT(j);
    char *text = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    ASSERT(text);
    cJSON *back = cJSON_Parse(text);
    cJSON_free(text);
    ASSERT(back);
    return back;
}

BS_TEST(resume_proposes_the_same)
{
    bs_alloc_init();
    toy_t t;
    s_toy(&t, "{\"name\": \"haq\", \"hidden\": 16, \"batch\": 16, \"warmup\": 10, "
              "\"replay\": 40}");
    s_constrain(&t, "accuracy", 0.8, NAN);
    s_constrain(&t, "weight_bytes", NAN, 0.5 * 4 * (320 + 4640 + 9000 + 1290));
    void *a = s_make(&t, 99);
    int cand[3][NL];
    /* 60 steps, 3 in flight, so that the replay ring wraps and updates run */
    for (int i = 0; i < 3; i++)
        ASSERT_OK(bs_policy_haq.propose(a, cand[i]));
    for (int i = 0; i < 60; i++) {
        s_observe(&bs_policy_haq, a, &t, cand[i % 3], i % 2);
        ASSERT_OK(bs_policy_haq.propose(a, cand[i % 3]));
    }
    cJSON *saved = s_roundtrip(bs_policy_haq.save(a));
    void *b = s_make(&t, 12345); /* another seed: everything must come from the state */
    bs_err_t err = {0};
    if (bs_policy_haq.load(b, saved, &err))
        bs_test_fail(__FILE__, __LINE__, "load: %s", err.msg);
    int cb[3][NL];
    memcpy(cb, cand, sizeof cb);
    for (int i = 60; i < 120; i++) {
        s_observe(&bs_policy_haq, a, &t, cand[i % 3], i % 2);
        s_observe(&bs_policy_haq, b, &t, cb[i % 3], i % 2);
        ASSERT_OK(bs_policy_haq.propose(a, cand[i % 3]));
        ASSERT_OK(bs_policy_haq.propose(b, cb[i % 3]));
        if (memcmp(cand[i % 3], cb[i % 3], sizeof cand[0]))
            bs_test_fail(__FILE__, __LINE__,
                         "step %d: the resumed policy proposed another "
                         "candidate",
                         i);
    }
    /* the saved states agree too */
    cJSON *sa = bs_policy_haq.save(a), *sb = bs_policy_haq.save(b);
    char *ta = cJSON_PrintUnformatted(sa), *tb = cJSON_PrintUnformatted(sb);
    ASSERT_STR_EQ(ta, tb);
    cJSON_free(ta);
    cJSON_free(tb);
    cJSON_Delete(sa);
    cJSON_Delete(sb);
    /* a state for another space is refused, naming what did not fit */
    toy_t t2;
    s_toy(&t2, NULL);
    t2.space.n_layers = NL - 1;
    void *c = s_make(&t2, 1);
    ASSERT_EQ(BS_EPROTO, bs_policy_haq.load(c, saved, &err));
    ASSERT_CONTAINS(err.msg, "n_layers");
    bs_policy_haq.destroy(c);
    cJSON_Delete(t2.params);
    cJSON_Delete(saved);
    bs_policy_haq.destroy(a);
    bs_policy_haq.destroy(b);
    cJSON_Delete(t.params);
}

/* mean accuracy of the proposals from..to under a weight and latency budget */
static double s_run(const bs_policy_ops_t *ops, const toy_t *t, uint64_t seed, int from, int to)
{
    bs_policy_ctx_t ctx = {&t->space, &t->cfg, t->params, seed};
    void *st = NULL;
    bs_err_t err = {0};
    if (ops->create(&ctx, &st, &err))
        bs_test_fail(__FILE__, __LINE__, "create: %s", err.msg);
    double sum = 0;
    int cnt = 0, cand[NL];
    for (int i = 0; i < to; i++) {
        ASSERT_OK(ops->propose(st, cand));
        if (i >= from) {
            sum += s_acc(t, cand);
            cnt++;
        }
        if (ops->observe)
            s_observe(ops, st, t, cand, 1);
    }
    ops->destroy(st);
    return sum / cnt;
}

BS_TEST(learning_beats_random)
{
    bs_alloc_init();
    toy_t t;
    s_toy(&t, "{\"name\": \"haq\", \"hidden\": 32, \"batch\": 32, \"warmup\": 20}");
    int fp32[NL] = {0, 0, 0, 0};
    s_constrain(&t, "weight_bytes", NAN, 0.3 * s_wb(&t, fp32));
    /* one cost objective: the budget is the trade-off, accuracy what is learned */
    t.cfg.n_objectives = 2;
    toy_t r;
    s_toy(&r, "{\"name\": \"haq\", \"hidden\": 32, \"batch\": 32, \"warmup\": 100000}");
    r.cfg = t.cfg;
    double learned = 0, random_actions = 0, random_policy = 0;
    for (uint64_t seed = 1; seed <= 3; seed++) {
        learned += s_run(&bs_policy_haq, &t, seed, 150, 300) / 3;
        random_actions += s_run(&bs_policy_haq, &r, seed, 150, 300) / 3;
        random_policy += s_run(&bs_policy_random, &t, seed, 150, 300) / 3;
    }
    fprintf(stderr, "mean accuracy: haq %.4f, haq with random actions %.4f, random %.4f\n",
            learned, random_actions, random_policy);
    ASSERT(learned > random_actions);
    ASSERT(learned > random_policy);
    cJSON_Delete(t.params);
    cJSON_Delete(r.params);
}

#define TESTS(X)                                                                                  \
    X(params)                                                                                     \
    X(proposals_valid_and_new) X(exhausts_small_space) X(budgets_hold_by_prediction)              \
        X(resume_proposes_the_same) X(learning_beats_random) X(warmup_covers_every_choice)        \
            X(finds_fastest_when_latency_not_monotone)
BS_TEST_MAIN(TESTS)

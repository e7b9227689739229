/*
 * test_cost.c - per-layer cost models: the weight-bytes prior, latency learned from per-layer
 * profiles and from totals alone, budget enforcement, and save/load.
 */
#include <math.h>

#include "bs_alloc.h"
#include "bs_cost.h"
#include "bs_polutil.h"
#include "bs_test.h"

#define NL 4

static const uint8_t s_w[4] = {32, 8, 4, 2};
static const uint8_t s_a[2] = {32, 8};
static const int64_t s_params[NL] = {320, 4640, 9000, 1290};

/* 4 layers x {w32,w8,w4,w2} x {a32,a8}, choices listed in an order unlike the precision
 * order so that enforcement must use bs_pol_choice_order */
static void s_space(bs_space_t *sp, bs_space_layer_t *layers)
{
    memset(layers, 0, NL * sizeof *layers);
    for (int l = 0; l < NL; l++) {
        layers[l].name = (char *)"layer";
        layers[l].op_type = (char *)"Conv";
        layers[l].n_params = s_params[l];
        layers[l].n_choices = 8;
        for (int k = 0; k < 8; k++) {
            int kk = 7 - k;
            layers[l].choices[k] = (bs_prec_t){s_w[kk / 2], s_a[kk % 2]};
        }
        layers[l].desc.known = 1;
        layers[l].desc.kind = l == NL - 1 ? BS_LAYER_FC : BS_LAYER_CONV;
        layers[l].desc.macs = s_params[l] * (l == NL - 1 ? 1 : 100);
    }
    sp->n_layers = NL;
    sp->layers = layers;
    sp->names = NULL;
}

static double s_wbytes(const bs_space_t *sp, const int *cand)
{
    double s = 100; /* what layers outside the space hold */
    for (int l = 0; l < NL; l++) {
        int w = sp->layers[l].choices[cand[l]].w;
        s += (double)sp->layers[l].n_params * (w == 32 ? 4 : w / 8.0);
    }
    return s;
}

/* a "true" latency: per-layer terms not proportional to the prior */
static double s_lat_term(const bs_space_t *sp, int l, int k)
{
    bs_prec_t p = sp->layers[l].choices[k];
    double size = 0.01 * (l + 1);
    double f = p.w == 32 ? 1.0 : (p.a == 8 ? 0.3 + 0.02 * p.w : 0.8 + 0.01 * p.w);
    return size * f;
}

static double s_lat(const bs_space_t *sp, const int *cand, double *layer_ms)
{
    double s = 0.05;
    for (int l = 0; l < NL; l++) {
        double t = s_lat_term(sp, l, cand[l]);
        if (layer_ms)
            layer_ms[l] = t;
        s += t;
    }
    return s;
}

BS_TEST(metric_ok)
{
    ASSERT_EQ(1, bs_cost_metric_ok("weight_bytes"));
    ASSERT_EQ(1, bs_cost_metric_ok("latency_p90_ms"));
    ASSERT_EQ(1, bs_cost_metric_ok("energy_j"));
    ASSERT_EQ(0, bs_cost_metric_ok("accuracy"));
    ASSERT_EQ(0, bs_cost_metric_ok(NULL));
    bs_space_layer_t layers[NL];
    bs_space_t sp;
    s_space(&sp, layers);
    ASSERT(bs_cost_new(&sp, "accuracy") == NULL);
}

BS_TEST(weight_bytes_prior_exact)
{
    bs_space_layer_t layers[NL];
    bs_space_t sp;
    s_space(&sp, layers);
    bs_cost_t *c = bs_cost_new(&sp, "weight_bytes");
    ASSERT(c);
    ASSERT_STR_EQ("weight_bytes", bs_cost_metric(c));
    ASSERT_EQ(1, bs_cost_ready(c)); /* the prior is in bytes already */
    int cand[NL] = {0, 3, 5, 7};
    ASSERT_DBL_NEAR(s_wbytes(&sp, cand) - 100, bs_cost_predict(c, cand), 1e-9);
    ASSERT_OK(bs_cost_observe(c, cand, s_wbytes(&sp, cand), NULL));
    ASSERT_EQ(1, bs_cost_count(c));
    ASSERT_DBL_NEAR(100, bs_cost_base(c), 1e-9);
    bs_rng_t rng;
    bs_rng_seed(&rng, 3);
    for (int it = 0; it < 50; it++) {
        for (int l = 0; l < NL; l++)
            cand[l] = (int)bs_rng_below(&rng, 8);
        ASSERT_DBL_NEAR(s_wbytes(&sp, cand), bs_cost_predict(c, cand), 1e-6);
        ASSERT_OK(bs_cost_observe(c, cand, s_wbytes(&sp, cand), NULL));
    }
    for (int l = 0; l < NL; l++)
        cand[l] = (int)bs_rng_below(&rng, 8);
    ASSERT_DBL_NEAR(s_wbytes(&sp, cand), bs_cost_predict(c, cand), 1e-6);
    ASSERT_OK(bs_cost_observe(c, cand, NAN, NULL)); /* ignored */
    ASSERT_EQ(51, bs_cost_count(c));
    bs_cost_free(&c);
    ASSERT(c == NULL);
    bs_cost_free(NULL);
}

BS_TEST(latency_from_profiles)
{
    bs_space_layer_t layers[NL];
    bs_space_t sp;
    s_space(&sp, layers);
    bs_cost_t *c = bs_cost_new(&sp, "latency_p90_ms");
    ASSERT(c);
    ASSERT_EQ(0, bs_cost_ready(c)); /* unknown scale */
    bs_rng_t rng;
    bs_rng_seed(&rng, 11);
    int cand[NL];
    double lm[NL];
    /* every choice of every layer profiled at least once */
    for (int k = 0; k < 8; k++) {
        for (int l = 0; l < NL; l++)
            cand[l] = (k + l) % 8;
        double tot = s_lat(&sp, cand, lm);
        lm[2] = NAN; /* a layer the profile did not cover */
        if (k < 4)
            lm[2] = s_lat_term(&sp, 2, cand[2]);
        ASSERT_OK(bs_cost_observe(c, cand, tot, lm));
    }
    for (int k = 0; k < 8; k++) {
        for (int l = 0; l < NL; l++)
            cand[l] = (k + l + 4) % 8;
        double tot = s_lat(&sp, cand, lm);
        ASSERT_OK(bs_cost_observe(c, cand, tot, lm));
    }
    ASSERT_EQ(1, bs_cost_ready(c));
    for (int l = 0; l < NL; l++)
        for (int k = 0; k < 8; k++)
            ASSERT_DBL_NEAR(s_lat_term(&sp, l, k), bs_cost_term(c, l, k), 1e-12);
    ASSERT_DBL_NEAR(0.05, bs_cost_base(c), 1e-9);
    for (int it = 0; it < 20; it++) {
        for (int l = 0; l < NL; l++)
            cand[l] = (int)bs_rng_below(&rng, 8);
        ASSERT_DBL_NEAR(s_lat(&sp, cand, NULL), bs_cost_predict(c, cand), 1e-9);
    }
    bs_cost_free(&c);
}

BS_TEST(latency_from_totals)
{
    bs_space_layer_t layers[NL];
    bs_space_t sp;
    s_space(&sp, layers);
    bs_cost_t *c = bs_cost_new(&sp, "latency_mean_ms");
    ASSERT(c);
    bs_rng_t rng;
    bs_rng_seed(&rng, 5);
    int cand[NL];
    /* one observation: the prior's shape at the measured scale */
    for (int l = 0; l < NL; l++)
        cand[l] = 0;
    ASSERT_OK(bs_cost_observe(c, cand, s_lat(&sp, cand, NULL), NULL));
    ASSERT_EQ(1, bs_cost_ready(c));
    ASSERT_DBL_NEAR(s_lat(&sp, cand, NULL), bs_cost_predict(c, cand), 1e-9);
    for (int it = 0; it < 300; it++) {
        for (int l = 0; l < NL; l++)
            cand[l] = (int)bs_rng_below(&rng, 8);
        ASSERT_OK(bs_cost_observe(c, cand, s_lat(&sp, cand, NULL), NULL));
    }
    double maxerr = 0;
    for (int it = 0; it < 200; it++) {
        for (int l = 0; l < NL; l++)
            cand[l] = (int)bs_rng_below(&rng, 8);
        double e = fabs(bs_cost_predict(c, cand) / s_lat(&sp, cand, NULL) - 1);
        if (e > maxerr)
            maxerr = e;
    }
    ASSERT(maxerr < 0.02);
    /* differences between a layer's choices are identifiable: learned to within 10% of the
     * layer's spread */
    for (int l = 0; l < NL; l++)
        for (int k = 1; k < 8; k++) {
            double want = s_lat_term(&sp, l, k) - s_lat_term(&sp, l, 0);
            double got = bs_cost_term(c, l, k) - bs_cost_term(c, l, 0);
            ASSERT_DBL_NEAR(want, got, 0.1 * 0.01 * (l + 1));
        }
    bs_cost_free(&c);
}

static int s_pos(const bs_space_layer_t *L, int choice)
{
    int order[BS_MAX_CHOICES];
    bs_pol_choice_order(L, order);
    for (int k = 0; k < L->n_choices; k++)
        if (order[k] == choice)
            return k;
    return -1;
}

BS_TEST(enforce)
{
    bs_space_layer_t layers[NL];
    bs_space_t sp;
    s_space(&sp, layers);
    bs_cost_t *wb = bs_cost_new(&sp, "weight_bytes"), *lat = bs_cost_new(&sp, "latency_p90_ms");
    ASSERT(wb && lat);
    int fp32[NL], cand[NL], low[NL];
    for (int l = 0; l < NL; l++) {
        int order[BS_MAX_CHOICES];
        bs_pol_choice_order(&layers[l], order);
        fp32[l] = order[0];
        low[l] = order[7];
    }
    double full = bs_cost_predict(wb, fp32);
    bs_cost_t *models[2] = {wb, lat};
    double limits[2] = {0.3 * full, 1e-9};
    /* the latency model has no observation: ignored */
    memcpy(cand, fp32, sizeof cand);
    ASSERT_EQ(1, bs_cost_enforce(models, limits, 2, &sp, cand));
    ASSERT(bs_cost_predict(wb, cand) <= limits[0]);
    /* minimal: raising any single layer one step breaks the budget */
    for (int l = 0; l < NL; l++) {
        int p = s_pos(&layers[l], cand[l]);
        ASSERT(p >= 0);
        if (p == 0)
            continue;
        int order[BS_MAX_CHOICES], up[NL];
        bs_pol_choice_order(&layers[l], order);
        memcpy(up, cand, sizeof up);
        up[l] = order[p - 1];
        /* equal-bytes steps (a32 <-> a8) may fit; a weight step must not */
        if (layers[l].choices[up[l]].w != layers[l].choices[cand[l]].w)
            ASSERT(bs_cost_predict(wb, up) > limits[0]);
    }
    /* already fitting: unchanged */
    int before[NL];
    memcpy(before, cand, sizeof before);
    ASSERT_EQ(1, bs_cost_enforce(models, limits, 1, &sp, cand));
    ASSERT(memcmp(before, cand, sizeof cand) == 0);
    /* impossible: 0, and the cheapest reachable */
    double tiny = 1;
    memcpy(cand, fp32, sizeof cand);
    ASSERT_EQ(0, bs_cost_enforce(models, &tiny, 1, &sp, cand));
    ASSERT_DBL_NEAR(bs_cost_predict(wb, low), bs_cost_predict(wb, cand), 1e-9);
    /* a ready latency model is enforced too */
    ASSERT_OK(bs_cost_observe(lat, fp32, s_lat(&sp, fp32, NULL), NULL));
    limits[0] = 2 * full;
    limits[1] = 0.7 * s_lat(&sp, fp32, NULL);
    memcpy(cand, fp32, sizeof cand);
    ASSERT_EQ(1, bs_cost_enforce(models, limits, 2, &sp, cand));
    ASSERT(bs_cost_predict(lat, cand) <= limits[1]);
    bs_cost_free(&wb);
    bs_cost_free(&lat);
}

BS_TEST(models_for_campaign)
{
    bs_space_layer_t layers[NL];
    bs_space_t sp;
    s_space(&sp, layers);
    bs_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.n_constraints = 3;
    cfg.constraints[0] = (bs_constraint_t){"accuracy", 0.8, NAN};
    cfg.constraints[1] = (bs_constraint_t){"weight_bytes", NAN, 5000};
    cfg.constraints[2] = (bs_constraint_t){"latency_p90_ms", 0.1, 2.5};
    bs_cost_t **models;
    double *limits;
    int n;
    ASSERT_OK(bs_cost_models_for(&cfg, &sp, &models, &limits, &n));
    ASSERT_EQ(2, n);
    ASSERT_STR_EQ("weight_bytes", bs_cost_metric(models[0]));
    ASSERT_STR_EQ("latency_p90_ms", bs_cost_metric(models[1]));
    ASSERT_DBL_NEAR(5000, limits[0], 0);
    ASSERT_DBL_NEAR(2.5, limits[1], 0);
    for (int i = 0; i < n; i++)
        bs_cost_free(&models[i]);
    bs_free(models);
    bs_free(limits);
}

BS_TEST(save_load)
{
    bs_alloc_init();
    bs_space_layer_t layers[NL];
    bs_space_t sp;
    s_space(&sp, layers);
    bs_cost_t *a = bs_cost_new(&sp, "latency_p90_ms");
    bs_rng_t rng;
    bs_rng_seed(&rng, 8);
    int cand[NL];
    double lm[NL];
    for (int it = 0; it < 40; it++) {
        for (int l = 0; l < NL; l++)
            cand[l] = (int)bs_rng_below(&rng, 8);
        double tot = s_lat(&sp, cand, lm);
        ASSERT_OK(bs_cost_observe(a, cand, tot, it % 3 ? NULL : lm));
    }
    cJSON *j = bs_cost_save(a);
    ASSERT(j);
    char *text = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    cJSON *back = cJSON_Parse(text);
    cJSON_free(text);
    bs_cost_t *b = bs_cost_new(&sp, "latency_p90_ms");
    bs_err_t err = {0};
    ASSERT_OK(bs_cost_load(b, back, &err));
    ASSERT_EQ(bs_cost_count(a), bs_cost_count(b));
    ASSERT_EQ(1, bs_cost_ready(b));
    for (int it = 0; it < 30; it++) {
        for (int l = 0; l < NL; l++)
            cand[l] = (int)bs_rng_below(&rng, 8);
        ASSERT(bs_cost_predict(a, cand) == bs_cost_predict(b, cand));
        double tot = s_lat(&sp, cand, lm) * 1.1;
        ASSERT_OK(bs_cost_observe(a, cand, tot, lm));
        ASSERT_OK(bs_cost_observe(b, cand, tot, lm));
    }
    /* another metric's state is refused */
    bs_cost_t *w = bs_cost_new(&sp, "weight_bytes");
    ASSERT_EQ(BS_EPROTO, bs_cost_load(w, back, &err));
    ASSERT_CONTAINS(err.msg, "metric");
    cJSON_Delete(back);
    bs_cost_free(&a);
    bs_cost_free(&b);
    bs_cost_free(&w);
}

#define TESTS(X)                                                                                  \
    X(metric_ok)                                                                                  \
    X(weight_bytes_prior_exact) X(latency_from_profiles) X(latency_from_totals) X(enforce)        \
        X(models_for_campaign) X(save_load)
BS_TEST_MAIN(TESTS)

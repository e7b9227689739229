/*
 * test_pareto.c - the Pareto front (dominance, ties, constraints, unknown metrics) and the
 * random policy's reproducibility.
 */
#include <math.h>

#include "bs_pareto.h"
#include "bs_policy.h"
#include "bs_test.h"
#include "bs_util.h"

static bs_metrics_t s_point(double acc, double lat)
{
    bs_metrics_t m;
    bs_metrics_init(&m);
    m.accuracy = acc;
    m.lat_p90_ms = lat;
    return m;
}

static const bs_objective_t s_obj[2] = {{"accuracy", +1}, {"latency_p90_ms", -1}};

static int s_on_front(bs_pareto_t *p, int64_t id)
{
    for (int i = 0; i < bs_pareto_size(p); i++)
        if (bs_pareto_ids(p)[i] == id)
            return 1;
    return 0;
}

BS_TEST(dominance)
{
    bs_pareto_t *p = bs_pareto_new(s_obj, 2, NULL, 0);
    ASSERT(p);
    bs_metrics_t a = s_point(0.90, 2.0), b = s_point(0.85, 1.0), c = s_point(0.80, 3.0);
    bs_metrics_t d = s_point(0.95, 0.5);
    ASSERT_EQ(1, bs_pareto_add(p, 1, &a));
    ASSERT_EQ(1, bs_pareto_add(p, 2, &b)); /* a trade-off: both stay */
    ASSERT_EQ(2, bs_pareto_size(p));
    ASSERT_EQ(0, bs_pareto_add(p, 3, &c)); /* dominated by a */
    ASSERT_EQ(2, bs_pareto_size(p));
    ASSERT_EQ(1, bs_pareto_add(p, 4, &d)); /* dominates both */
    ASSERT_EQ(1, bs_pareto_size(p));
    ASSERT_EQ(4, bs_pareto_ids(p)[0]);
    bs_pareto_destroy(&p);
    ASSERT(p == NULL);
}

BS_TEST(ties_keep_first)
{
    bs_pareto_t *p = bs_pareto_new(s_obj, 2, NULL, 0);
    bs_metrics_t a = s_point(0.9, 1.0);
    ASSERT_EQ(1, bs_pareto_add(p, 7, &a));
    ASSERT_EQ(0, bs_pareto_add(p, 8, &a));
    ASSERT_EQ(1, bs_pareto_size(p));
    ASSERT_EQ(7, bs_pareto_ids(p)[0]);
    bs_pareto_destroy(&p);
}

BS_TEST(constraints_and_unknowns)
{
    bs_constraint_t cons[2] = {{"latency_p90_ms", NAN, 2.0}, {"energy_j", NAN, 1.0}};
    bs_pareto_t *p = bs_pareto_new(s_obj, 2, cons, 1);
    bs_metrics_t slow = s_point(0.99, 3.0), ok = s_point(0.8, 1.5), unknown = s_point(NAN, 1.0);
    ASSERT_EQ(0, bs_pareto_feasible(p, &slow));
    ASSERT_EQ(0, bs_pareto_add(p, 1, &slow));
    ASSERT_EQ(0, bs_pareto_add(p, 2, &unknown));
    ASSERT_EQ(1, bs_pareto_add(p, 3, &ok));
    ASSERT(s_on_front(p, 3));
    bs_pareto_destroy(&p);
    /* A constraint on a metric nobody measured never passes. */
    p = bs_pareto_new(s_obj, 2, cons, 2);
    ASSERT_EQ(0, bs_pareto_feasible(p, &ok));
    bs_pareto_destroy(&p);
}

BS_TEST(front_matches_brute_force)
{
    bs_pareto_t *p = bs_pareto_new(s_obj, 2, NULL, 0);
    bs_rng_t rng;
    bs_rng_seed(&rng, 3);
    enum { N = 300 };
    bs_metrics_t pts[N];
    for (int i = 0; i < N; i++) {
        pts[i] = s_point((double)bs_rng_below(&rng, 50) / 50.0,
                         (double)bs_rng_below(&rng, 50) / 10.0);
        ASSERT(bs_pareto_add(p, i, &pts[i]) >= 0);
    }
    for (int i = 0; i < N; i++) {
        int dominated = 0, dup_earlier = 0;
        for (int j = 0; j < N; j++) {
            double a[2] = {-pts[j].accuracy, pts[j].lat_p90_ms};
            double b[2] = {-pts[i].accuracy, pts[i].lat_p90_ms};
            dominated |= bs_pareto_dominates(a, b, 2);
            dup_earlier |= j < i && a[0] == b[0] && a[1] == b[1];
        }
        ASSERT_EQ(!dominated && !dup_earlier, s_on_front(p, i));
    }
    bs_pareto_destroy(&p);
}

BS_TEST(random_policy_reproducible)
{
    bs_space_layer_t layers[3] = {{.n_choices = 4}, {.n_choices = 1}, {.n_choices = 7}};
    bs_space_t space = {.n_layers = 3, .layers = layers};
    const bs_policy_ops_t *ops = bs_policy_find("random");
    ASSERT(ops);
    ASSERT(bs_policy_find("nope") == NULL);
    bs_policy_ctx_t ctx = {.space = &space, .seed = 42};
    void *s1, *s2;
    bs_err_t err;
    ASSERT_OK(ops->create(&ctx, &s1, &err));
    ASSERT_OK(ops->create(&ctx, &s2, &err));
    int seen7[7] = {0};
    for (int k = 0; k < 200; k++) {
        int a[3], b[3];
        ASSERT_OK(ops->propose(s1, a));
        ASSERT_OK(ops->propose(s2, b));
        for (int i = 0; i < 3; i++) {
            ASSERT_EQ(a[i], b[i]);
            ASSERT(a[i] >= 0 && a[i] < layers[i].n_choices);
        }
        seen7[a[2]] = 1;
    }
    for (int i = 0; i < 7; i++)
        ASSERT_EQ(1, seen7[i]);
    ops->destroy(s1);
    ops->destroy(s2);
}

#define TESTS(X)                                                                                 \
    X(dominance) X(ties_keep_first) X(constraints_and_unknowns) X(front_matches_brute_force)     \
    X(random_policy_reproducible)
BS_TEST_MAIN(TESTS)

/*
 * test_policy.c - the pieces the search policies share and the policies written by the lead:
 * exact hypervolume (against inclusion-exclusion on random sets in 2, 3 and 4 dimensions),
 * the normalisation, the candidate set and state codecs, NSGA-II (valid and new proposals,
 * constraint handling, convergence on a toy problem against random, an exact save/load
 * continuation) and the sensitivity seeder (waits for its table, seeds span the trade-off,
 * the knapsack picks the least damaging layers, hands over, save/load).
 */
#include <math.h>
#include <string.h>

#include "bs_alloc.h"
#include "bs_hv.h"
#include "bs_policy.h"
#include "bs_polutil.h"
#include "bs_test.h"

/* ---- hypervolume --------------------------------------------------------------------------- */

/* Volume of the union of boxes [p_i, ref] by inclusion-exclusion (n <= 10). */
static double s_hv_brute(const double *pts, int n, int d, const double *ref)
{
    double total = 0;
    for (unsigned mask = 1; mask < (1u << n); mask++) {
        double lo[8], vol = 1;
        int bits = 0;
        for (int k = 0; k < d; k++)
            lo[k] = -INFINITY;
        for (int i = 0; i < n; i++) {
            if (!(mask & (1u << i)))
                continue;
            bits++;
            for (int k = 0; k < d; k++)
                lo[k] = fmax(lo[k], pts[i * d + k]);
        }
        for (int k = 0; k < d; k++)
            vol *= fmax(0, ref[k] - lo[k]);
        total += (bits & 1) ? vol : -vol;
    }
    return total;
}

BS_TEST(hv_matches_inclusion_exclusion)
{
    bs_rng_t r;
    bs_rng_seed(&r, 42);
    for (int d = 1; d <= 4; d++) {
        for (int trial = 0; trial < 40; trial++) {
            int n = 1 + (int)bs_rng_below(&r, 9);
            double pts[10 * 4], ref[4];
            for (int k = 0; k < d; k++)
                ref[k] = 1.0;
            for (int i = 0; i < n * d; i++) /* some points outside the box on purpose */
                pts[i] = bs_rng_uniform(&r) * 1.1;
            if (trial % 5 == 0 && n > 1) /* duplicates and shared coordinates */
                memcpy(pts + d, pts, sizeof *pts * (size_t)d);
            double want = 0;
            {
                double in[10 * 4];
                int m = 0;
                for (int i = 0; i < n; i++) {
                    int ok = 1;
                    for (int k = 0; k < d; k++)
                        ok &= pts[i * d + k] < ref[k];
                    if (ok)
                        memcpy(in + m++ * d, pts + i * d, sizeof *pts * (size_t)d);
                }
                want = m ? s_hv_brute(in, m, d, ref) : 0;
            }
            double got = bs_hv(pts, n, d, ref);
            ASSERT_DBL_NEAR(want, got, 1e-12);
        }
    }
}

BS_TEST(hv_known_values)
{
    double ref[3] = {1, 1, 1};
    double one[3] = {0, 0, 0};
    ASSERT_DBL_NEAR(1.0, bs_hv(one, 1, 3, ref), 1e-15);
    double two[4] = {0.0, 0.5, 0.5, 0.0}; /* 2-D staircase: 0.5 + 0.5 - 0.25 */
    ASSERT_DBL_NEAR(0.75, bs_hv(two, 2, 2, ref), 1e-15);
    double out[3] = {1.0, 0.0, 0.0}; /* on the reference: nothing */
    ASSERT_DBL_NEAR(0.0, bs_hv(out, 1, 3, ref), 0);
    double nan3[3] = {NAN, 0, 0};
    ASSERT_DBL_NEAR(0.0, bs_hv(nan3, 1, 3, ref), 0);
}

BS_TEST(hv_normalisation)
{
    bs_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.n_objectives = 2;
    snprintf(cfg.objectives[0].metric, sizeof cfg.objectives[0].metric, "accuracy");
    cfg.objectives[0].goal = +1;
    snprintf(cfg.objectives[1].metric, sizeof cfg.objectives[1].metric, "weight_bytes");
    cfg.objectives[1].goal = -1;
    cfg.hv_ref[0] = NAN;
    cfg.hv_ref[1] = NAN;
    bs_hv_norm_t nm;
    bs_hv_norm_init(&nm, &cfg);
    double a[2] = {-0.9, 100}, b[2] = {-0.8, 50};
    ASSERT(isnan(bs_hv_normalized(&nm, a, 1)));
    bs_hv_norm_include(&nm, a);
    ASSERT(isnan(bs_hv_normalized(&nm, a, 1))); /* one point: no extent yet */
    bs_hv_norm_include(&nm, b);
    double both[4] = {-0.9, 100, -0.8, 50};
    /* normalised: a = (0, 1), b = (1, 0): both on the reference box edge -> 0 */
    ASSERT_DBL_NEAR(0.0, bs_hv_normalized(&nm, both, 2), 1e-12);
    double c[2] = {-0.85, 60}; /* (0.5, 0.2) */
    bs_hv_norm_include(&nm, c);
    ASSERT_DBL_NEAR(0.5 * 0.8, bs_hv_normalized(&nm, c, 1), 1e-12);
    /* a campaign reference: accuracy 0.7 (orientation flipped), bytes from what is seen */
    cfg.hv_ref[0] = 0.7;
    bs_hv_norm_init(&nm, &cfg);
    bs_hv_norm_include(&nm, a);
    bs_hv_norm_include(&nm, b);
    double v = bs_hv_normalized(&nm, b, 1); /* b: acc (0.9-0.8)/(0.9-0.7) = 0.5, bytes 0 */
    ASSERT_DBL_NEAR(0.5, v, 1e-12);
    /* a campaign reference nothing beats: 0, not undefined */
    cfg.hv_ref[0] = 0.95;
    bs_hv_norm_init(&nm, &cfg);
    bs_hv_norm_include(&nm, a);
    ASSERT_EQ(0, bs_hv_norm_include(&nm, a)); /* nothing moved */
    bs_hv_norm_include(&nm, b);
    ASSERT_DBL_NEAR(0.0, bs_hv_normalized(&nm, both, 2), 0);
}

/* ---- shared pieces ------------------------------------------------------------------------- */

BS_TEST(candset_grows_and_finds)
{
    bs_candset_t s;
    ASSERT_OK(bs_candset_init(&s, 3));
    for (int i = 0; i < 1000; i++) {
        int c[3] = {i % 10, (i / 10) % 10, i / 100};
        ASSERT_EQ(1, bs_candset_add(&s, c));
        ASSERT_EQ(0, bs_candset_add(&s, c));
    }
    ASSERT_EQ(1000, s.count);
    int in[3] = {9, 9, 9}, out[3] = {10, 0, 0};
    ASSERT_EQ(1, bs_candset_has(&s, in));
    ASSERT_EQ(0, bs_candset_has(&s, out));
    bs_candset_free(&s);
}

BS_TEST(state_codecs_round_trip)
{
    cJSON *o = cJSON_CreateObject();
    double v[5] = {0.1, -1e-300, INFINITY, 3.141592653589793, -0.0};
    int iv[3] = {7, -2, 0};
    bs_rng_t r, r2;
    bs_rng_seed(&r, 99);
    bs_rng_next(&r);
    ASSERT_OK(bs_pol_put_f64s(o, "v", v, 5));
    ASSERT_OK(bs_pol_put_ints(o, "i", iv, 3));
    ASSERT_OK(bs_pol_put_i64(o, "big", INT64_MAX - 3));
    ASSERT_OK(bs_pol_put_rng(o, "rng", &r));
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    o = cJSON_Parse(text);
    cJSON_free(text);
    double w[5];
    int iw[3];
    int64_t big, n;
    bs_err_t e = {0};
    ASSERT_OK(bs_pol_get_f64s(o, "v", w, 5, &e));
    ASSERT(memcmp(v, w, sizeof v) == 0); /* bit for bit, -0.0 included */
    ASSERT_OK(bs_pol_get_len(o, "v", &n, &e));
    ASSERT_EQ(5, n);
    ASSERT_EQ(BS_EPROTO, bs_pol_get_f64s(o, "v", w, 4, &e));
    ASSERT_CONTAINS(e.msg, "\"v\"");
    ASSERT_OK(bs_pol_get_ints(o, "i", iw, 3, &e));
    ASSERT(memcmp(iv, iw, sizeof iv) == 0);
    ASSERT_OK(bs_pol_get_i64(o, "big", 0, INT64_MAX, &big, &e));
    ASSERT(big == INT64_MAX - 3);
    ASSERT_EQ(BS_EPROTO, bs_pol_get_i64(o, "big", 0, 10, &big, &e));
    ASSERT_OK(bs_pol_get_rng(o, "rng", &r2, &e));
    ASSERT(bs_rng_next(&r) == bs_rng_next(&r2));
    ASSERT_EQ(BS_EPROTO, bs_pol_get_rng(o, "missing", &r2, &e));
    cJSON_Delete(o);
}

/* ---- a toy problem ------------------------------------------------------------------------- */

enum { S_L = 6 };
static const uint8_t s_w[4] = {32, 8, 4, 2};

typedef struct s_toy {
    bs_space_layer_t layers[S_L];
    bs_space_t space;
    bs_config_t cfg;
    double pen[S_L][8];  /* accuracy loss per layer and choice */
    double bytes[S_L][8];
} s_toy_t;

/* 6 layers x 8 choices (w32/w8/w4/w2 x a32/a8); accuracy additive with a steep loss at 2
 * bits for some layers; weight bytes additive; latency from bits. */
static void s_toy_init(s_toy_t *t, int with_constraint)
{
    memset(t, 0, sizeof *t);
    static char *names[S_L] = {"l0", "l1", "l2", "l3", "l4", "l5"};
    for (int l = 0; l < S_L; l++) {
        bs_space_layer_t *L = &t->layers[l];
        L->name = names[l];
        L->op_type = "Conv";
        L->n_params = 1000 * (l + 1);
        L->n_choices = 8;
        for (int c = 0; c < 8; c++) {
            L->choices[c] = (bs_prec_t){s_w[c / 2], c % 2 ? 8 : 32};
            double w = s_w[c / 2];
            t->pen[l][c] = (w <= 2 ? 0.02 * (l % 3 + 1) : w <= 4 ? 0.004 * (l % 2 + 1) : 0) +
                           (c % 2 ? 0.001 : 0);
            t->bytes[l][c] = (double)L->n_params * w / 8;
        }
    }
    t->space.n_layers = S_L;
    t->space.layers = t->layers;
    t->cfg.path = "toy.json";
    t->cfg.n_objectives = 2;
    snprintf(t->cfg.objectives[0].metric, 32, "accuracy");
    t->cfg.objectives[0].goal = +1;
    snprintf(t->cfg.objectives[1].metric, 32, "weight_bytes");
    t->cfg.objectives[1].goal = -1;
    if (with_constraint) {
        t->cfg.n_constraints = 1;
        snprintf(t->cfg.constraints[0].metric, 32, "accuracy");
        t->cfg.constraints[0].min = 0.85;
        t->cfg.constraints[0].max = NAN;
    }
    for (int i = 0; i < BS_MAX_OBJECTIVES; i++)
        t->cfg.hv_ref[i] = NAN;
}

static void s_toy_eval(const s_toy_t *t, const int *cand, bs_metrics_t *m)
{
    bs_metrics_init(m);
    double acc = 0.92, bytes = 0;
    for (int l = 0; l < S_L; l++) {
        acc -= t->pen[l][cand[l]];
        bytes += t->bytes[l][cand[l]];
    }
    m->accuracy = acc;
    m->weight_bytes = (int64_t)bytes;
}

/* Runs a policy for n evaluations on the toy (in flight: 3 at a time) and returns the
 * hypervolume of the feasible front, with the normalisation of the whole space. */
static double s_toy_run(s_toy_t *t, const bs_policy_ops_t *ops, const cJSON *params,
                        uint64_t seed, int n)
{
    void *st = NULL;
    bs_err_t e = {0};
    bs_policy_ctx_t ctx = {.space = &t->space, .cfg = &t->cfg, .params = params, .seed = seed};
    if (ops->create(&ctx, &st, &e) != 0)
        return -1;
    double *pts = bs_malloc(sizeof *pts * 2 * (size_t)n);
    int (*fly)[S_L] = bs_malloc(sizeof *fly * 3);
    int n_pts = 0, n_fly = 0, done = 0;
    bs_candset_t seen;
    bs_candset_init(&seen, S_L);
    while (done < n) {
        while (n_fly < 3 && done + n_fly < n) {
            int c[S_L];
            if (ops->propose(st, c) != 0)
                break;
            for (int l = 0; l < S_L; l++)
                if (c[l] < 0 || c[l] >= 8)
                    return -2;
            if (bs_candset_add(&seen, c) == 0)
                continue; /* the searcher would drop a repeat */
            memcpy(fly[n_fly++], c, sizeof c);
        }
        if (!n_fly)
            break;
        bs_metrics_t m;
        s_toy_eval(t, fly[0], &m);
        bs_policy_obs_t obs = {.cand = fly[0], .ok = 1, .m = &m};
        ops->observe(st, &obs);
        if (bs_pol_violation(&t->cfg, &m) == 0) {
            pts[2 * n_pts] = -m.accuracy;
            pts[2 * n_pts + 1] = (double)m.weight_bytes;
            n_pts++;
        }
        memmove(fly[0], fly[1], sizeof *fly * (size_t)(--n_fly));
        done++;
    }
    ops->destroy(st);
    bs_candset_free(&seen);
    bs_free(fly);
    /* normalisation: the whole space's extremes */
    double ref[2] = {-0.85, 0}, ideal_acc = -0.92; /* bytes: ideal 0, reference all-fp32 */
    for (int l = 0; l < S_L; l++)
        ref[1] += t->bytes[l][0];
    for (int i = 0; i < n_pts; i++) {
        pts[2 * i] = (pts[2 * i] - ideal_acc) / (ref[0] - ideal_acc);
        pts[2 * i + 1] = pts[2 * i + 1] / ref[1];
    }
    double one[2] = {1, 1};
    double hv = bs_hv(pts, n_pts, 2, one);
    bs_free(pts);
    return hv;
}

BS_TEST(nsga2_beats_random_on_a_toy)
{
    s_toy_t t;
    s_toy_init(&t, 1);
    cJSON *p = cJSON_CreateObject();
    double hn = 0, hr = 0;
    for (uint64_t seed = 1; seed <= 5; seed++) {
        hn += s_toy_run(&t, &bs_policy_nsga2, p, seed, 150);
        hr += s_toy_run(&t, &bs_policy_random, p, seed, 150);
    }
    ASSERT(hn > 0 && hr > 0);
    ASSERT(hn > hr); /* 150 of 262144 configurations: search must beat chance */
    cJSON_Delete(p);
}

BS_TEST(nsga2_parameters_are_checked)
{
    s_toy_t t;
    s_toy_init(&t, 0);
    cJSON *p = cJSON_Parse("{\"name\": \"nsga2\", \"population\": 2}");
    void *st = NULL;
    bs_err_t e = {0};
    bs_policy_ctx_t ctx = {.space = &t.space, .cfg = &t.cfg, .params = p, .seed = 1};
    ASSERT_EQ(BS_ECONFIG, bs_policy_nsga2.create(&ctx, &st, &e));
    ASSERT_CONTAINS(e.msg, "toy.json: policy.population: expected an integer in 4..256; got 2");
    cJSON_Delete(p);
    p = cJSON_Parse("{\"mutation\": \"lots\"}");
    ctx.params = p;
    ASSERT_EQ(BS_ECONFIG, bs_policy_nsga2.create(&ctx, &st, &e));
    ASSERT_CONTAINS(e.msg, "policy.mutation: expected a number in 0..1; got \"lots\"");
    cJSON_Delete(p);
}

/* Drives a policy for n results, saving after k; a state loaded from that save must propose
 * exactly what the original proposes from then on. */
static void s_save_load_continues(const bs_policy_ops_t *ops, const char *params_json,
                                  const bs_policy_sens_t *sens, int space_checked)
{
    s_toy_t t;
    s_toy_init(&t, 1);
    cJSON *p = cJSON_Parse(params_json);
    bs_policy_ctx_t ctx = {.space = &t.space, .cfg = &t.cfg, .params = p, .seed = 11};
    void *a = NULL, *b = NULL;
    bs_err_t e = {0};
    ASSERT_OK(ops->create(&ctx, &a, &e));
    if (sens)
        ops->sensitivity(a, sens);
    int c[S_L];
    for (int i = 0; i < 40; i++) {
        ASSERT_OK(ops->propose(a, c));
        bs_metrics_t m;
        s_toy_eval(&t, c, &m);
        bs_policy_obs_t obs = {.cand = c, .ok = i % 7 != 3, .m = i % 7 != 3 ? &m : NULL};
        ops->observe(a, &obs);
    }
    cJSON *saved = ops->save(a);
    ASSERT(saved);
    char *text = cJSON_PrintUnformatted(saved);
    cJSON_Delete(saved);
    saved = cJSON_Parse(text);
    cJSON_free(text);
    ASSERT_OK(ops->create(&ctx, &b, &e));
    ASSERT_OK(ops->load(b, saved, &e));
    if (sens)
        ops->sensitivity(b, sens); /* a resumed searcher feeds the table again: ignored */
    for (int i = 0; i < 30; i++) {
        int ca[S_L], cb[S_L];
        ASSERT_OK(ops->propose(a, ca));
        ASSERT_OK(ops->propose(b, cb));
        ASSERT(memcmp(ca, cb, sizeof ca) == 0);
        bs_metrics_t m;
        s_toy_eval(&t, ca, &m);
        bs_policy_obs_t obs = {.cand = ca, .ok = 1, .m = &m};
        ops->observe(a, &obs);
        ops->observe(b, &obs);
    }
    /* a state for another space is refused with a reason */
    if (space_checked) {
        t.space.n_layers = S_L - 1;
        void *other = NULL;
        ASSERT_OK(ops->create(&ctx, &other, &e));
        ASSERT_EQ(BS_EPROTO, ops->load(other, saved, &e));
        ASSERT_CONTAINS(e.msg, "policy state");
        ops->destroy(other);
    }
    cJSON_Delete(saved);
    ops->destroy(a);
    ops->destroy(b);
    cJSON_Delete(p);
}

BS_TEST(nsga2_save_load_continues_the_same_search)
{
    s_save_load_continues(&bs_policy_nsga2, "{\"population\": 8}", NULL, 1);
}

BS_TEST(random_save_load_continues_the_same_search)
{
    s_save_load_continues(&bs_policy_random, "{}", NULL, 0);
}

BS_TEST(nsga2_avoids_repeats)
{
    s_toy_t t;
    s_toy_init(&t, 0);
    t.space.n_layers = 2; /* 64 configurations */
    cJSON *p = cJSON_Parse("{\"population\": 6}");
    bs_policy_ctx_t ctx = {.space = &t.space, .cfg = &t.cfg, .params = p, .seed = 3};
    void *st = NULL;
    bs_err_t e = {0};
    ASSERT_OK(bs_policy_nsga2.create(&ctx, &st, &e));
    bs_candset_t seen;
    bs_candset_init(&seen, 2);
    int repeats = 0;
    for (int i = 0; i < 48; i++) {
        int c[2];
        ASSERT_OK(bs_policy_nsga2.propose(st, c));
        repeats += bs_candset_add(&seen, c) == 0;
        bs_metrics_t m;
        int full[S_L] = {c[0], c[1], 0, 0, 0, 0};
        s_toy_eval(&t, full, &m);
        bs_policy_obs_t obs = {.cand = c, .ok = 1, .m = &m};
        bs_policy_nsga2.observe(st, &obs);
    }
    ASSERT_EQ(0, repeats); /* 48 of 64: retries find new ones */
    bs_candset_free(&seen);
    bs_policy_nsga2.destroy(st);
    cJSON_Delete(p);
}

/* ---- sensitivity seeding ------------------------------------------------------------------- */

static void s_toy_sens(const s_toy_t *t, double *delta)
{
    for (int l = 0; l < S_L; l++)
        for (int c = 0; c < BS_MAX_CHOICES; c++)
            delta[l * BS_MAX_CHOICES + c] = c < 8 ? -t->pen[l][c] : NAN;
}

BS_TEST(sens_waits_then_seeds_the_trade_off)
{
    s_toy_t t;
    s_toy_init(&t, 0);
    cJSON *p = cJSON_Parse("{\"name\": \"sensitivity\", \"then\": \"nsga2\", \"levels\": 6}");
    bs_policy_ctx_t ctx = {.space = &t.space, .cfg = &t.cfg, .params = p, .seed = 5};
    void *st = NULL;
    bs_err_t e = {0};
    ASSERT_OK(bs_policy_sens.create(&ctx, &st, &e));
    int c[S_L];
    ASSERT_EQ(BS_EAGAIN, bs_policy_sens.propose(st, c));
    double delta[S_L * BS_MAX_CHOICES];
    s_toy_sens(&t, delta);
    bs_policy_sens_t sens = {.n_layers = S_L, .delta = delta, .baseline = 0.92, .n_agents = 1};
    bs_policy_sens.sensitivity(st, &sens);
    /* the first seeds: the most precise, the cheapest, and the knapsack's middle */
    double min_bytes = 1e300, max_bytes = 0;
    int all_fp32 = 0;
    for (int i = 0; i < 6; i++) {
        ASSERT_OK(bs_policy_sens.propose(st, c));
        bs_metrics_t m;
        s_toy_eval(&t, c, &m);
        min_bytes = fmin(min_bytes, (double)m.weight_bytes);
        max_bytes = fmax(max_bytes, (double)m.weight_bytes);
        int z = 1;
        for (int l = 0; l < S_L; l++)
            z &= c[l] == 0;
        all_fp32 |= z;
    }
    ASSERT(all_fp32);
    ASSERT(min_bytes < 0.1 * max_bytes);
    bs_policy_sens.destroy(st);
    cJSON_Delete(p);
}

BS_TEST(sens_knapsack_spares_the_sensitive_layers)
{
    s_toy_t t;
    s_toy_init(&t, 0);
    cJSON *p = cJSON_Parse("{\"name\": \"sensitivity\", \"method\": \"knapsack\", "
                           "\"levels\": 5}");
    bs_policy_ctx_t ctx = {.space = &t.space, .cfg = &t.cfg, .params = p, .seed = 5};
    void *st = NULL;
    bs_err_t e = {0};
    ASSERT_OK(bs_policy_sens.create(&ctx, &st, &e));
    double delta[S_L * BS_MAX_CHOICES];
    s_toy_sens(&t, delta);
    bs_policy_sens_t sens = {.n_layers = S_L, .delta = delta, .baseline = 0.92, .n_agents = 1};
    bs_policy_sens.sensitivity(st, &sens);
    /* every seed is optimal for its bytes: no configuration of the space that is smaller by
     * more than the knapsack's rounding (6 layers x 1/256 of the all-fp32 bytes) is more
     * accurate */
    double fp32 = 0, cheapest = 0;
    for (int l = 0; l < S_L; l++) {
        fp32 += t.bytes[l][0];
        cheapest += t.bytes[l][6];
    }
    int saw_fp32 = 0, saw_cheapest = 0;
    for (int i = 0; i < 5; i++) {
        int c[S_L];
        ASSERT_OK(bs_policy_sens.propose(st, c));
        bs_metrics_t m;
        s_toy_eval(&t, c, &m);
        saw_fp32 |= (double)m.weight_bytes == fp32 && m.accuracy == 0.92;
        saw_cheapest |= (double)m.weight_bytes == cheapest;
        double best = -1;
        int x[S_L];
        for (int code = 0; code < 1 << (3 * S_L); code++) {
            for (int l = 0; l < S_L; l++)
                x[l] = (code >> (3 * l)) & 7;
            bs_metrics_t mx;
            s_toy_eval(&t, x, &mx);
            if ((double)mx.weight_bytes <= (double)m.weight_bytes - 6.0 / 256 * fp32)
                best = fmax(best, mx.accuracy);
        }
        ASSERT(m.accuracy >= best - 1e-12);
    }
    ASSERT(saw_fp32);     /* the most precise level: the least damage, fp32 on ties */
    ASSERT(saw_cheapest); /* the cheapest level fits exactly despite the bucket rounding */
    bs_policy_sens.destroy(st);
    cJSON_Delete(p);
}

BS_TEST(sens_hands_over_without_a_table)
{
    s_toy_t t;
    s_toy_init(&t, 0);
    cJSON *p = cJSON_Parse("{\"name\": \"sensitivity\", \"then\": \"random\"}");
    bs_policy_ctx_t ctx = {.space = &t.space, .cfg = &t.cfg, .params = p, .seed = 5};
    void *st = NULL;
    bs_err_t e = {0};
    ASSERT_OK(bs_policy_sens.create(&ctx, &st, &e));
    bs_policy_sens_t none = {.n_layers = S_L, .delta = NULL, .n_agents = 0};
    bs_policy_sens.sensitivity(st, &none);
    int c[S_L];
    ASSERT_OK(bs_policy_sens.propose(st, c)); /* the inner policy's */
    /* a table that lands after the give-up, before any seed went out, is still used */
    double delta[S_L * BS_MAX_CHOICES];
    s_toy_sens(&t, delta);
    bs_policy_sens_t late = {.n_layers = S_L, .delta = delta, .baseline = 0.92, .n_agents = 1};
    bs_policy_sens.sensitivity(st, &late);
    ASSERT_OK(bs_policy_sens.propose(st, c));
    int all_fp32 = 1;
    for (int l = 0; l < S_L; l++)
        all_fp32 &= c[l] == 0;
    ASSERT(all_fp32); /* the first seed: the most precise level */
    bs_policy_sens.destroy(st);
    cJSON_Delete(p);
    p = cJSON_Parse("{\"name\": \"sensitivity\", \"then\": \"sensitivity\"}");
    ctx.params = p;
    ASSERT_EQ(BS_ECONFIG, bs_policy_sens.create(&ctx, &st, &e));
    ASSERT_CONTAINS(e.msg, "toy.json: policy.then: expected one of nsga2, haq, random");
    cJSON_Delete(p);
}

BS_TEST(sens_save_load_continues_the_same_search)
{
    s_toy_t t;
    s_toy_init(&t, 0);
    static double delta[S_L * BS_MAX_CHOICES];
    s_toy_sens(&t, delta);
    bs_policy_sens_t sens = {.n_layers = S_L, .delta = delta, .baseline = 0.92, .n_agents = 1};
    s_save_load_continues(&bs_policy_sens, "{\"name\": \"sensitivity\", \"levels\": 4, "
                          "\"population\": 8}", &sens, 1);
    /* a state saved with other seeding parameters is refused, not misread */
    cJSON *p4 = cJSON_Parse("{\"name\": \"sensitivity\", \"levels\": 16}");
    cJSON *p2 = cJSON_Parse("{\"name\": \"sensitivity\", \"levels\": 2, \"method\": "
                            "\"knapsack\"}");
    bs_policy_ctx_t ctx = {.space = &t.space, .cfg = &t.cfg, .params = p4, .seed = 1};
    void *a = NULL, *b = NULL;
    bs_err_t e = {0};
    ASSERT_OK(bs_policy_sens.create(&ctx, &a, &e));
    bs_policy_sens.sensitivity(a, &sens);
    cJSON *saved = bs_policy_sens.save(a);
    ctx.params = p2;
    ASSERT_OK(bs_policy_sens.create(&ctx, &b, &e));
    ASSERT_EQ(BS_EPROTO, bs_policy_sens.load(b, saved, &e));
    ASSERT_CONTAINS(e.msg, "n_slots");
    bs_policy_sens.destroy(a);
    bs_policy_sens.destroy(b);
    cJSON_Delete(saved);
    cJSON_Delete(p4);
    cJSON_Delete(p2);
}

#define TESTS(X)                                                                                 \
    X(hv_matches_inclusion_exclusion)                                                            \
    X(hv_known_values)                                                                           \
    X(hv_normalisation)                                                                          \
    X(candset_grows_and_finds)                                                                   \
    X(state_codecs_round_trip)                                                                   \
    X(nsga2_beats_random_on_a_toy)                                                               \
    X(nsga2_parameters_are_checked)                                                              \
    X(nsga2_save_load_continues_the_same_search)                                                 \
    X(random_save_load_continues_the_same_search)                                                \
    X(nsga2_avoids_repeats)                                                                      \
    X(sens_waits_then_seeds_the_trade_off)                                                       \
    X(sens_knapsack_spares_the_sensitive_layers)                                                 \
    X(sens_hands_over_without_a_table)                                                           \
    X(sens_save_load_continues_the_same_search)

BS_TEST_MAIN(TESTS)

/*
 * bench_policies.c - how close each search policy gets to the true Pareto front for a given
 * number of evaluations, replayed against an oracle problem (issue 6).
 *
 * The oracle (bench/oracle/fmnist-cnn.csv, bench/make_oracle.c) holds every configuration of a
 * small search space of the bundled model measured once with the real engine: accuracy on the
 * test subset, weight bytes, and latency from per-layer measurements. This program builds the
 * same search space the searcher would (layer names, choices, parameter counts and shapes from
 * the model), the campaign's objectives (accuracy max, latency min, weight bytes min, or the
 * first two with --objectives 2) and its accuracy constraint, and then, for each policy and
 * seed, plays the searcher: `agents` evaluations in flight at once, proposals already
 * evaluated or in flight dropped and asked again (after 256 repeats the searcher's own
 * fallback: the next unknown configuration in mixed-radix order from a random start), each
 * result observed with the per-layer times as its profile. The seeded policies first pay for
 * the sensitivity table in evaluations (layers x (choices - 1), each layer alone at each
 * precision) and get it from the oracle; those measurements count against the budget but are
 * not points of the front (a sensitivity job reports no latency).
 *
 * The hypervolume of the feasible points found is compared with the true front's, both over
 * objectives normalised between the whole space's best feasible values and a reference point:
 * by default the campaign's natural one (the accuracy constraint, and the all-fp32 model's
 * latency and weight bytes: a configuration slower or bigger than fp32 is worth nothing), or
 * the worst feasible values (--reference worst), which reward any spread and so separate the
 * policies less. One run per (policy, seed) up to
 * the largest budget is sampled at every budget (policies do not know the budget, so a shorter
 * run is a prefix). It prints, per policy and budget,
 *   policy=NAME budget=N seeds=S hv_ratio_median=X hv_ratio_p25=.. hv_ratio_p75=..
 * then the evaluations each policy needed for a median of 0.95, and the goals.
 *
 *   bench_policies [--oracle FILE] [--model FILE] [--seeds S] [--agents A] [--objectives 2|3]
 *                  [--min-accuracy X] [--reference fp32|worst] [--policies a,b,..]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bs_alloc.h"
#include "bs_hv.h"
#include "bs_model.h"
#include "bs_oracle.h"
#include "bs_policy.h"
#include "bs_polutil.h"

#ifndef BS_SRC_DIR
#define BS_SRC_DIR "."
#endif

static const double s_fracs[] = {0.01, 0.025, 0.05, 0.075, 0.10, 0.15, 0.20};
enum { S_NB = sizeof s_fracs / sizeof s_fracs[0], S_TRIES = 256 };

typedef struct s_pol {
    const char *label;
    const char *params;  /* policy object JSON */
    int seeded;
} s_pol_t;

static const s_pol_t s_pols[] = {
    {"random", "{\"name\": \"random\"}", 0},
    {"nsga2", "{\"name\": \"nsga2\"}", 0},
    {"haq", "{\"name\": \"haq\"}", 0},
    {"nsga2+sensitivity", "{\"name\": \"nsga2\", \"seed_from\": \"sensitivity\"}", 1},
    {"haq+sensitivity", "{\"name\": \"haq\", \"seed_from\": \"sensitivity\"}", 1},
};
enum { S_NPOL = sizeof s_pols / sizeof s_pols[0] };

typedef struct s_bench {
    bs_oracle_t o;
    bs_space_t space;
    bs_config_t cfg;
    int d;               /* objectives */
    int agents;
    bs_hv_norm_t norm;   /* the whole space's feasible extremes */
    double hv_true;
    double *delta;       /* sensitivity table from the oracle */
} s_bench_t;

static void s_metrics(const s_bench_t *b, int64_t row, bs_metrics_t *m)
{
    bs_metrics_init(m);
    m->accuracy = b->o.accuracy[row];
    double l = b->o.latency_ms[row];
    m->lat_min_ms = m->lat_median_ms = m->lat_mean_ms = m->lat_p90_ms = m->lat_p99_ms = l;
    m->weight_bytes = b->o.weight_bytes[row];
    snprintf(m->backend, sizeof m->backend, "oracle");
}

static int s_feasible_vec(const s_bench_t *b, int64_t row, double *v)
{
    bs_metrics_t m;
    s_metrics(b, row, &m);
    return bs_pol_violation(&b->cfg, &m) == 0 && bs_pol_objectives(&b->cfg, &m, v);
}

/* Hypervolume ratio of the points found (rows[0..n)). */
static double s_ratio(const s_bench_t *b, const int64_t *rows, int n)
{
    double *pts = bs_malloc(sizeof *pts * (size_t)(n + 1) * (size_t)b->d);
    int m = 0;
    for (int i = 0; i < n; i++)
        if (s_feasible_vec(b, rows[i], pts + (size_t)m * (size_t)b->d))
            m++;
    double hv = m ? bs_hv_normalized(&b->norm, pts, m) : 0;
    bs_free(pts);
    return hv / b->hv_true;
}

/* The searcher's fallback: the first unknown configuration in mixed-radix order. */
static int s_fill(const s_bench_t *b, const bs_candset_t *known, bs_rng_t *r, int *cand)
{
    int n = b->space.n_layers;
    for (int i = 0; i < n; i++)
        cand[i] = (int)bs_rng_below(r, (uint32_t)b->space.layers[i].n_choices);
    for (int64_t step = 0; step < b->o.n_configs; step++) {
        if (!bs_candset_has(known, cand))
            return 0;
        for (int i = 0; i < n; i++) {
            if (++cand[i] < b->space.layers[i].n_choices)
                break;
            cand[i] = 0;
        }
    }
    return BS_EEXHAUSTED;
}

/* One run of a policy to max_evals; ratio[k] at each budget. */
static int s_run(s_bench_t *b, const s_pol_t *pol, uint64_t seed, const int *budgets,
                 double *ratio)
{
    int n = b->space.n_layers, max_evals = budgets[S_NB - 1];
    cJSON *params = cJSON_Parse(pol->params);
    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(params, "name");
    const bs_policy_ops_t *ops =
        pol->seeded ? &bs_policy_sens : bs_policy_find(nm ? nm->valuestring : "");
    bs_policy_ctx_t ctx = {.space = &b->space, .cfg = &b->cfg, .params = params, .seed = seed};
    void *st = NULL;
    bs_err_t e = {0};
    if (!ops || ops->create(&ctx, &st, &e) != 0) {
        fprintf(stderr, "bench_policies: %s: %s\n", pol->label, e.msg[0] ? e.msg : "unknown");
        cJSON_Delete(params);
        return -1;
    }
    int used = 0; /* evaluations spent, sensitivity included */
    if (pol->seeded) {
        used = n * (b->space.layers[0].n_choices - 1);
        bs_policy_sens_t t = {.n_layers = n, .delta = b->delta, .baseline = b->o.accuracy[0],
                              .n_agents = 1};
        ops->sensitivity(st, &t);
    }
    bs_candset_t known;
    bs_candset_init(&known, n);
    int64_t *rows = bs_malloc(sizeof *rows * (size_t)(max_evals + 1));
    int (*fly)[BS_ORACLE_MAX_LAYERS] = bs_malloc(sizeof *fly * (size_t)b->agents);
    int n_rows = 0, n_fly = 0, k = 0;
    bs_rng_t fr;
    bs_rng_seed(&fr, seed * 7919u + 1);
    double *layer_ms = bs_malloc(sizeof *layer_ms * (size_t)n);
    while (k < S_NB) {
        while (k < S_NB && used >= budgets[k])
            ratio[k++] = s_ratio(b, rows, n_rows);
        if (k == S_NB)
            break;
        /* fill the free agents */
        while (n_fly < b->agents && used + n_fly < max_evals) {
            int c[BS_ORACLE_MAX_LAYERS];
            int rc = 0, tries = 0;
            for (;; tries++) {
                rc = tries < S_TRIES ? ops->propose(st, c) : s_fill(b, &known, &fr, c);
                if (rc || !bs_candset_has(&known, c) || tries >= S_TRIES)
                    break;
            }
            if (rc)
                break; /* BS_EAGAIN or exhausted: wait for results */
            bs_candset_add(&known, c);
            memcpy(fly[n_fly++], c, sizeof c);
        }
        if (!n_fly) { /* nothing to run and nothing in flight: the rest stays as it is */
            while (k < S_NB)
                ratio[k++] = s_ratio(b, rows, n_rows);
            break;
        }
        /* the oldest job finishes */
        int64_t row = bs_oracle_index(&b->o, fly[0]);
        bs_metrics_t m;
        s_metrics(b, row, &m);
        for (int l = 0; l < n; l++)
            layer_ms[l] = b->o.layer_ms[l * b->o.n_choices + fly[0][l]];
        bs_policy_obs_t obs = {.cand = fly[0], .ok = 1, .m = &m, .layer_ms = layer_ms};
        ops->observe(st, &obs);
        rows[n_rows++] = row;
        used++;
        memmove(fly[0], fly[1], sizeof *fly * (size_t)(--n_fly));
    }
    ops->destroy(st);
    bs_candset_free(&known);
    bs_free(rows);
    bs_free(fly);
    bs_free(layer_ms);
    cJSON_Delete(params);
    return 0;
}

static int s_cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double s_quantile(double *v, int n, double q)
{
    qsort(v, (size_t)n, sizeof *v, s_cmp_dbl);
    double pos = q * (n - 1);
    int i = (int)floor(pos);
    if (i + 1 >= n)
        return v[n - 1];
    return v[i] + (pos - i) * (v[i + 1] - v[i]);
}

static int s_setup(s_bench_t *b, const char *oracle, const char *model, int d, double min_acc,
                   int ref_fp32, bs_err_t *e)
{
    int rc = bs_oracle_load(oracle, &b->o, e);
    if (rc)
        return rc;
    bs_model_info_t mi;
    if ((rc = bs_model_info_load(model, &mi, e)))
        return rc;
    int n = b->o.n_layers;
    b->space.n_layers = n;
    b->space.layers = bs_calloc((size_t)n, sizeof *b->space.layers);
    b->space.names = bs_calloc((size_t)n, sizeof *b->space.names);
    for (int l = 0; l < n; l++) {
        bs_space_layer_t *L = &b->space.layers[l];
        L->name = bs_strdup(b->o.layers[l]);
        L->op_type = bs_strdup("?");
        for (int i = 0; i < mi.n_layers; i++)
            if (strcmp(mi.layers[i].name, L->name) == 0) {
                L->n_params = mi.layers[i].n_params;
                bs_free(L->op_type);
                L->op_type = bs_strdup(mi.layers[i].op_type);
            }
        L->n_choices = b->o.n_choices;
        memcpy(L->choices, b->o.choices, sizeof *L->choices * (size_t)b->o.n_choices);
        b->space.names[l] = L->name;
    }
    bs_model_info_free(&mi);
    bs_err_t de = {0};
    if (bs_space_describe(&b->space, model, &de))
        fprintf(stderr, "bench_policies: layer shapes unknown: %s\n", de.msg);
    bs_config_t *c = &b->cfg;
    c->path = "bench_policies";
    c->n_objectives = d;
    snprintf(c->objectives[0].metric, 32, "accuracy");
    c->objectives[0].goal = +1;
    snprintf(c->objectives[1].metric, 32, "latency_p90_ms");
    c->objectives[1].goal = -1;
    if (d == 3) {
        snprintf(c->objectives[2].metric, 32, "weight_bytes");
        c->objectives[2].goal = -1;
    }
    c->n_constraints = 1;
    snprintf(c->constraints[0].metric, 32, "accuracy");
    c->constraints[0].min = min_acc;
    c->constraints[0].max = NAN;
    for (int i = 0; i < BS_MAX_OBJECTIVES; i++)
        c->hv_ref[i] = NAN;
    if (ref_fp32) { /* the campaign's natural reference: the constraint and the fp32 model */
        c->hv_ref[0] = min_acc;
        c->hv_ref[1] = b->o.latency_ms[0];
        if (d == 3)
            c->hv_ref[2] = (double)b->o.weight_bytes[0];
    }
    /* the true front and the normalisation */
    bs_hv_norm_init(&b->norm, c);
    double *pts = bs_malloc(sizeof *pts * (size_t)b->o.n_configs * (size_t)d);
    int m = 0;
    for (int64_t r = 0; r < b->o.n_configs; r++)
        if (s_feasible_vec(b, r, pts + (size_t)m * (size_t)d)) {
            bs_hv_norm_include(&b->norm, pts + (size_t)m * (size_t)d);
            m++;
        }
    b->hv_true = bs_hv_normalized(&b->norm, pts, m);
    bs_free(pts);
    /* the sensitivity table: each layer alone at each choice, the rest at choice 0 (w32a32) */
    b->delta = bs_malloc(sizeof *b->delta * (size_t)n * BS_MAX_CHOICES);
    int cand[BS_ORACLE_MAX_LAYERS] = {0};
    double base = b->o.accuracy[0];
    for (int l = 0; l < n; l++)
        for (int ch = 0; ch < BS_MAX_CHOICES; ch++) {
            if (ch >= b->o.n_choices) {
                b->delta[l * BS_MAX_CHOICES + ch] = NAN;
                continue;
            }
            cand[l] = ch;
            b->delta[l * BS_MAX_CHOICES + ch] = b->o.accuracy[bs_oracle_index(&b->o, cand)] - base;
            cand[l] = 0;
        }
    printf("oracle %s: %d layers x %d choices = %lld configurations, %d feasible (accuracy >= "
           "%.2f), %d objectives, reference point %s, true front hypervolume %.4f of the "
           "normalised box\n", oracle, n, b->o.n_choices, (long long)b->o.n_configs, m, min_acc,
           d, ref_fp32 ? "the accuracy constraint and the all-fp32 model's latency and bytes"
                       : "the worst feasible values", b->hv_true);
    return isfinite(b->hv_true) && b->hv_true > 0
               ? 0
               : bs_err_set(e, BS_EDATA, "%s: no feasible trade-off to measure", oracle);
}

int main(int argc, char **argv)
{
    const char *oracle = BS_SRC_DIR "/bench/oracle/fmnist-cnn.csv";
    const char *model = BS_SRC_DIR "/models/fmnist-cnn.onnx";
    const char *only = NULL;
    int seeds = 10, agents = 2, d = 3, ref_fp32 = 1;
    double min_acc = 0.80;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--oracle") && v)
            oracle = v, i++;
        else if (!strcmp(a, "--model") && v)
            model = v, i++;
        else if (!strcmp(a, "--seeds") && v)
            seeds = atoi(v), i++;
        else if (!strcmp(a, "--agents") && v)
            agents = atoi(v), i++;
        else if (!strcmp(a, "--objectives") && v)
            d = atoi(v), i++;
        else if (!strcmp(a, "--min-accuracy") && v)
            min_acc = atof(v), i++;
        else if (!strcmp(a, "--policies") && v)
            only = v, i++;
        else if (!strcmp(a, "--reference") && v && (!strcmp(v, "fp32") || !strcmp(v, "worst")))
            ref_fp32 = !strcmp(v, "fp32"), i++;
        else {
            fprintf(stderr, "usage: bench_policies [--oracle FILE] [--model FILE] [--seeds S] "
                            "[--agents A] [--objectives 2|3] [--min-accuracy X] "
                            "[--reference fp32|worst] [--policies random,nsga2,...]\n");
            return 2;
        }
    }
    if (seeds < 1 || seeds > 1000 || agents < 1 || agents > 64 || (d != 2 && d != 3)) {
        fprintf(stderr, "bench_policies: --seeds 1..1000, --agents 1..64, --objectives 2 or 3\n");
        return 2;
    }
    s_bench_t b;
    memset(&b, 0, sizeof b);
    b.d = d;
    b.agents = agents;
    bs_err_t e = {0};
    if (s_setup(&b, oracle, model, d, min_acc, ref_fp32, &e)) {
        fprintf(stderr, "bench_policies: %s\n", e.msg);
        return 1;
    }
    int budgets[S_NB];
    for (int k = 0; k < S_NB; k++)
        budgets[k] = (int)llround(s_fracs[k] * (double)b.o.n_configs);
    printf("budgets (evaluations):");
    for (int k = 0; k < S_NB; k++)
        printf(" %d (%.1f%%)", budgets[k], 100 * s_fracs[k]);
    printf("; %d seeds, %d agents in flight\n", seeds, agents);
    double med[S_NPOL][S_NB];
    double *r = bs_malloc(sizeof *r * (size_t)seeds * S_NB);
    double *col = bs_malloc(sizeof *col * (size_t)seeds);
    int ran[S_NPOL] = {0};
    for (int p = 0; p < S_NPOL; p++) {
        if (only) {
            char key[64];
            snprintf(key, sizeof key, ",%s,", s_pols[p].label);
            char list[512];
            snprintf(list, sizeof list, ",%s,", only);
            if (!strstr(list, key))
                continue;
        }
        if (!bs_policy_find(s_pols[p].label) && !s_pols[p].seeded &&
            strcmp(s_pols[p].label, "random") != 0) {
            printf("policy=%s not built in; skipped\n", s_pols[p].label);
            continue;
        }
        int fail = 0;
        for (int sd = 0; sd < seeds && !fail; sd++)
            fail = s_run(&b, &s_pols[p], (uint64_t)sd + 1, budgets, r + (size_t)sd * S_NB) != 0;
        if (fail)
            continue;
        ran[p] = 1;
        for (int k = 0; k < S_NB; k++) {
            for (int sd = 0; sd < seeds; sd++)
                col[sd] = r[(size_t)sd * S_NB + k];
            double q25 = s_quantile(col, seeds, 0.25), q50 = s_quantile(col, seeds, 0.5);
            double q75 = s_quantile(col, seeds, 0.75);
            med[p][k] = q50;
            printf("policy=%s budget=%d seeds=%d hv_ratio_median=%.4f hv_ratio_p25=%.4f "
                   "hv_ratio_p75=%.4f\n", s_pols[p].label, budgets[k], seeds, q50, q25, q75);
            fflush(stdout);
        }
    }
    printf("\n%-20s", "hv ratio (median)");
    for (int k = 0; k < S_NB; k++)
        printf(" %8d", budgets[k]);
    printf("\n");
    for (int p = 0; p < S_NPOL; p++) {
        if (!ran[p])
            continue;
        printf("%-20s", s_pols[p].label);
        for (int k = 0; k < S_NB; k++)
            printf(" %8.4f", med[p][k]);
        printf("\n");
    }
    /* goals: nsga2 and haq reach 0.95 within 10% of the space and beat random from 5% up;
     * seeding reaches 0.95 sooner */
    int k10 = 4, k5 = 2;
    printf("\ngoals (issue 6):\n");
    for (int p = 1; p < S_NPOL; p++) {
        if (!ran[p] || !ran[0])
            continue;
        int beats = 1;
        for (int k = k5; k < S_NB; k++)
            beats &= med[p][k] > med[0][k];
        int first = -1;
        for (int k = 0; k < S_NB && first < 0; k++)
            if (med[p][k] >= 0.95)
                first = k;
        char at[64] = "not within these budgets";
        if (first >= 0)
            snprintf(at, sizeof at, "first at %d evaluations", budgets[first]);
        printf("  %-18s median 0.95 within 10%% of the space: %s (%s); beats random at every "
               "budget from 5%%: %s\n", s_pols[p].label, med[p][k10] >= 0.95 ? "MET" : "NOT MET",
               at, beats ? "MET" : "NOT MET");
    }
    bs_free(r);
    bs_free(col);
    bs_free(b.delta);
    bs_space_free(&b.space);
    bs_oracle_free(&b.o);
    return 0;
}

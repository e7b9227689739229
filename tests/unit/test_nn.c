/*
 * test_nn.c - the small networks HAQ learns with: parameter and input gradients against
 * central finite differences for every activation, Adam fitting a small regression, soft
 * updates, and an exact save/load round trip.
 */
#include <math.h>

#include "bs_alloc.h"
#include "bs_nn.h"
#include "bs_test.h"

/* loss = sum_k c_k * y_k over the batch, with fixed random weights c */
static double s_loss(bs_nn_t *nn, const double *x, int batch, const double *c)
{
    ASSERT_OK(bs_nn_forward(nn, x, batch, NULL));
    const double *y = bs_nn_output(nn);
    double s = 0;
    for (int k = 0; k < batch * bs_nn_outputs(nn); k++)
        s += c[k] * y[k];
    return s;
}

static double s_relerr(double a, double b)
{
    double d = fabs(a - b), s = fabs(a) + fabs(b);
    return s < 1e-9 ? d : d / s;
}

static void s_gradcheck(bs_nn_act_t hidden, bs_nn_act_t last)
{
    enum { B = 3, IN = 4, OUT = 2 };
    int widths[4] = {IN, 5, 3, OUT};
    bs_nn_act_t acts[3] = {hidden, hidden, last};
    bs_rng_t rng;
    bs_rng_seed(&rng, 7 + (uint64_t)hidden * 10 + (uint64_t)last);
    bs_nn_t *nn = bs_nn_new(3, widths, acts, &rng);
    ASSERT(nn);
    double x[B * IN], c[B * OUT], dx[B * IN];
    for (int i = 0; i < B * IN; i++)
        x[i] = 2.0 * bs_rng_uniform(&rng) - 1.0;
    for (int i = 0; i < B * OUT; i++)
        c[i] = 2.0 * bs_rng_uniform(&rng) - 1.0;
    /* biases away from zero so relu kinks are not hit by the finite differences */
    double *p = bs_nn_params(nn);
    int64_t np = bs_nn_n_params(nn);
    for (int64_t i = 0; i < np; i++)
        p[i] += 0.05 * (2.0 * bs_rng_uniform(&rng) - 1.0);
    s_loss(nn, x, B, c);
    ASSERT_OK(bs_nn_backward(nn, c, dx));
    double *g = bs_calloc((size_t)np, sizeof *g);
    ASSERT(g);
    for (int64_t i = 0; i < np; i++)
        g[i] = bs_nn_grads(nn)[i];
    const double h = 1e-6;
    int checked = 0;
    for (int64_t i = 0; i < np; i++) {
        double keep = p[i];
        p[i] = keep + h;
        double lp = s_loss(nn, x, B, c);
        p[i] = keep - h;
        double lm = s_loss(nn, x, B, c);
        p[i] = keep;
        double num = (lp - lm) / (2 * h);
        if (fabs(num) < 1e-7 && fabs(g[i]) < 1e-7)
            continue;
        if (s_relerr(num, g[i]) >= 1e-6)
            bs_test_fail(__FILE__, __LINE__,
                         "act %d/%d param %lld: analytic %.12g, numeric "
                         "%.12g",
                         (int)hidden, (int)last, (long long)i, g[i], num);
        checked++;
    }
    ASSERT(checked > np / 3);
    for (int i = 0; i < B * IN; i++) {
        double keep = x[i];
        x[i] = keep + h;
        double lp = s_loss(nn, x, B, c);
        x[i] = keep - h;
        double lm = s_loss(nn, x, B, c);
        x[i] = keep;
        double num = (lp - lm) / (2 * h);
        if (s_relerr(num, dx[i]) >= 1e-6)
            bs_test_fail(__FILE__, __LINE__,
                         "act %d/%d input %d: analytic %.12g, numeric "
                         "%.12g",
                         (int)hidden, (int)last, i, dx[i], num);
    }
    bs_free(g);
    bs_nn_free(&nn);
    ASSERT(nn == NULL);
}

BS_TEST(gradcheck_relu)
{
    s_gradcheck(BS_NN_RELU, BS_NN_LINEAR);
}

BS_TEST(gradcheck_tanh)
{
    s_gradcheck(BS_NN_TANH, BS_NN_TANH);
}

BS_TEST(gradcheck_sigmoid)
{
    s_gradcheck(BS_NN_SIGMOID, BS_NN_SIGMOID);
}

BS_TEST(gradcheck_linear)
{
    s_gradcheck(BS_NN_LINEAR, BS_NN_RELU);
}

/* Adam fits y = sin(3 x0) + x1^2 on 64 points to a small mean squared error */
BS_TEST(adam_fits_regression)
{
    enum { N = 64 };
    int widths[4] = {2, 32, 32, 1};
    bs_nn_act_t acts[3] = {BS_NN_TANH, BS_NN_RELU, BS_NN_LINEAR};
    bs_rng_t rng;
    bs_rng_seed(&rng, 42);
    bs_nn_t *nn = bs_nn_new(3, widths, acts, &rng);
    ASSERT(nn);
    double x[N * 2], t[N], dy[N];
    for (int i = 0; i < N; i++) {
        x[2 * i] = 2.0 * bs_rng_uniform(&rng) - 1.0;
        x[2 * i + 1] = 2.0 * bs_rng_uniform(&rng) - 1.0;
        t[i] = sin(3 * x[2 * i]) + x[2 * i + 1] * x[2 * i + 1];
    }
    double first = -1, mse = 0;
    for (int it = 0; it < 2000; it++) {
        ASSERT_OK(bs_nn_forward(nn, x, N, NULL));
        const double *y = bs_nn_output(nn);
        mse = 0;
        for (int i = 0; i < N; i++) {
            mse += (y[i] - t[i]) * (y[i] - t[i]) / N;
            dy[i] = 2.0 * (y[i] - t[i]) / N;
        }
        if (first < 0)
            first = mse;
        ASSERT_OK(bs_nn_backward(nn, dy, NULL));
        bs_nn_adam(nn, 0.01, 0, 0, 0);
    }
    ASSERT_EQ(2000, bs_nn_adam_steps(nn));
    ASSERT(first > 0.1);
    ASSERT(mse < 0.01);
    bs_nn_free(&nn);
}

BS_TEST(soft_update_and_copy)
{
    int widths[3] = {3, 4, 2};
    bs_nn_act_t acts[2] = {BS_NN_RELU, BS_NN_SIGMOID};
    bs_rng_t rng;
    bs_rng_seed(&rng, 1);
    bs_nn_t *a = bs_nn_new(2, widths, acts, &rng), *b = bs_nn_new(2, widths, acts, &rng);
    ASSERT(a && b);
    int64_t n = bs_nn_n_params(a);
    double pa0 = bs_nn_params(a)[0], pb0 = bs_nn_params(b)[0];
    ASSERT_OK(bs_nn_soft_update(b, a, 0.25));
    ASSERT_DBL_NEAR(0.25 * pa0 + 0.75 * pb0, bs_nn_params(b)[0], 1e-15);
    ASSERT_OK(bs_nn_copy(b, a, 1));
    for (int64_t i = 0; i < n; i++)
        ASSERT(bs_nn_params(a)[i] == bs_nn_params(b)[i]);
    int w2[3] = {3, 5, 2};
    bs_nn_t *c = bs_nn_new(2, w2, acts, &rng);
    ASSERT(c);
    ASSERT_EQ(BS_EINVAL, bs_nn_copy(c, a, 0));
    ASSERT_EQ(BS_EINVAL, bs_nn_soft_update(c, a, 0.5));
    ASSERT(bs_nn_new(0, widths, acts, &rng) == NULL);
    int bad[3] = {3, 0, 2};
    ASSERT(bs_nn_new(2, bad, acts, &rng) == NULL);
    bs_nn_free(&a);
    bs_nn_free(&b);
    bs_nn_free(&c);
    bs_nn_free(NULL);
}

BS_TEST(save_load_exact)
{
    bs_alloc_init();
    int widths[4] = {3, 6, 4, 2};
    bs_nn_act_t acts[3] = {BS_NN_RELU, BS_NN_TANH, BS_NN_SIGMOID};
    bs_rng_t rng;
    bs_rng_seed(&rng, 99);
    bs_nn_t *a = bs_nn_new(3, widths, acts, &rng);
    ASSERT(a);
    double x[6] = {0.1, -0.2, 0.3, 0.7, 0.5, -0.9}, dy[4] = {0.3, -1, 0.2, 0.5};
    for (int it = 0; it < 5; it++) {
        ASSERT_OK(bs_nn_forward(a, x, 2, NULL));
        ASSERT_OK(bs_nn_backward(a, dy, NULL));
        bs_nn_adam(a, 1e-2, 0, 0, 0);
    }
    cJSON *j = bs_nn_save(a, 1);
    ASSERT(j);
    char *text = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    cJSON *back = cJSON_Parse(text);
    cJSON_free(text);
    ASSERT(back);
    bs_rng_seed(&rng, 5);
    bs_nn_t *b = bs_nn_new(3, widths, acts, &rng);
    bs_err_t err = {0};
    ASSERT_OK(bs_nn_load(b, back, 1, &err));
    ASSERT_EQ(bs_nn_adam_steps(a), bs_nn_adam_steps(b));
    /* identical futures: one more identical step gives bit-identical parameters */
    for (bs_nn_t *n2[2] = {a, b}, **p = n2; p < n2 + 2; p++) {
        ASSERT_OK(bs_nn_forward(*p, x, 2, NULL));
        ASSERT_OK(bs_nn_backward(*p, dy, NULL));
        bs_nn_adam(*p, 1e-2, 0, 0, 0);
    }
    ASSERT(memcmp(bs_nn_params(a), bs_nn_params(b), (size_t)bs_nn_n_params(a) * sizeof(double)) ==
           0);
    /* a state for another shape is refused with the key named */
    int w2[4] = {3, 7, 4, 2};
    bs_nn_t *c = bs_nn_new(3, w2, acts, &rng);
    ASSERT_EQ(BS_EPROTO, bs_nn_load(c, back, 1, &err));
    ASSERT_CONTAINS(err.msg, "shape");
    cJSON_Delete(back);
    bs_nn_free(&a);
    bs_nn_free(&b);
    bs_nn_free(&c);
}

#define TESTS(X)                                                                                  \
    X(gradcheck_relu)                                                                             \
    X(gradcheck_tanh) X(gradcheck_sigmoid) X(gradcheck_linear) X(adam_fits_regression)            \
        X(soft_update_and_copy) X(save_load_exact)
BS_TEST_MAIN(TESTS)

/*
 * bs_nn.c - dense networks, backpropagation, Adam, target updates and persistence (see
 * bs_nn.h).
 *
 * One parameter vector holds every layer (weights [out][in] then biases [out]); offsets[l]
 * says where layer l starts. Gradients and both Adam moments are parallel vectors. forward()
 * keeps act[l] = the input of layer l (act[0] a copy of x) and act[n_layers] = the output;
 * activation derivatives are taken from the outputs alone (relu: y > 0, tanh: 1 - y^2,
 * sigmoid: y (1 - y)), so no pre-activation is stored. The batch buffers grow to the largest
 * batch seen and are reused.
 */
#include "bs_nn.h"

#include <math.h>
#include <string.h>

#include "bs_alloc.h"
#include "bs_polutil.h"

struct bs_nn {
    int n_layers;
    int width[BS_NN_MAX_LAYERS + 1];
    bs_nn_act_t act[BS_NN_MAX_LAYERS];
    int64_t off[BS_NN_MAX_LAYERS + 1]; /* parameter offset of each layer; off[n] = total */
    double *p, *g, *m, *v;             /* owned: params, grads, Adam moments */
    int64_t t;                         /* Adam steps taken */
    int cap;                           /* rows the batch buffers hold */
    int batch;                         /* rows of the last forward */
    double *a[BS_NN_MAX_LAYERS + 1];   /* owned: layer inputs / output, [cap][width] */
    double *d0, *d1;                   /* owned: delta scratch, [cap][max width] */
    int max_w;
};

static void s_init_layer(bs_nn_t *nn, int l, bs_rng_t *rng)
{
    int in = nn->width[l], out = nn->width[l + 1];
    double *w = nn->p + nn->off[l];
    if (nn->act[l] == BS_NN_RELU) {
        double sd = sqrt(2.0 / in);
        for (int64_t i = 0; i < (int64_t)in * out; i++)
            w[i] = sd * bs_pol_gauss(rng);
    } else {
        double r = sqrt(6.0 / (in + out));
        for (int64_t i = 0; i < (int64_t)in * out; i++)
            w[i] = r * (2.0 * bs_rng_uniform(rng) - 1.0);
    }
    memset(w + (int64_t)in * out, 0, (size_t)out * sizeof *w);
}

bs_nn_t *bs_nn_new(int n_layers, const int *widths, const bs_nn_act_t *acts, bs_rng_t *rng)
{
    if (n_layers < 1 || n_layers > BS_NN_MAX_LAYERS)
        return NULL;
    for (int l = 0; l <= n_layers; l++)
        if (widths[l] < 1 || widths[l] > 1 << 16)
            return NULL;
    bs_nn_t *nn = bs_calloc(1, sizeof *nn);
    if (!nn)
        return NULL;
    nn->n_layers = n_layers;
    int64_t off = 0;
    for (int l = 0; l <= n_layers; l++) {
        nn->width[l] = widths[l];
        if (widths[l] > nn->max_w)
            nn->max_w = widths[l];
    }
    for (int l = 0; l < n_layers; l++) {
        nn->act[l] = acts[l];
        nn->off[l] = off;
        off += (int64_t)widths[l] * widths[l + 1] + widths[l + 1];
    }
    nn->off[n_layers] = off;
    nn->p = bs_calloc((size_t)off, sizeof *nn->p);
    nn->g = bs_calloc((size_t)off, sizeof *nn->g);
    nn->m = bs_calloc((size_t)off, sizeof *nn->m);
    nn->v = bs_calloc((size_t)off, sizeof *nn->v);
    if (!nn->p || !nn->g || !nn->m || !nn->v) {
        bs_nn_free(&nn);
        return NULL;
    }
    for (int l = 0; l < n_layers; l++)
        s_init_layer(nn, l, rng);
    return nn;
}

static void s_free_batch(bs_nn_t *nn)
{
    for (int l = 0; l <= BS_NN_MAX_LAYERS; l++) {
        bs_free(nn->a[l]);
        nn->a[l] = NULL;
    }
    bs_free(nn->d0);
    bs_free(nn->d1);
    nn->d0 = nn->d1 = NULL;
    nn->cap = 0;
}

void bs_nn_free(bs_nn_t **nn)
{
    if (!nn || !*nn)
        return;
    s_free_batch(*nn);
    bs_free((*nn)->p);
    bs_free((*nn)->g);
    bs_free((*nn)->m);
    bs_free((*nn)->v);
    bs_free(*nn);
    *nn = NULL;
}

int bs_nn_inputs(const bs_nn_t *nn)
{
    return nn->width[0];
}
int bs_nn_outputs(const bs_nn_t *nn)
{
    return nn->width[nn->n_layers];
}
int64_t bs_nn_n_params(const bs_nn_t *nn)
{
    return nn->off[nn->n_layers];
}
double *bs_nn_params(bs_nn_t *nn)
{
    return nn->p;
}
double *bs_nn_grads(bs_nn_t *nn)
{
    return nn->g;
}
int64_t bs_nn_adam_steps(const bs_nn_t *nn)
{
    return nn->t;
}

void bs_nn_init_last(bs_nn_t *nn, double range, bs_rng_t *rng)
{
    int l = nn->n_layers - 1;
    for (int64_t i = nn->off[l]; i < nn->off[l + 1]; i++)
        nn->p[i] = range * (2.0 * bs_rng_uniform(rng) - 1.0);
}

static int s_reserve(bs_nn_t *nn, int batch)
{
    if (batch <= nn->cap)
        return 0;
    s_free_batch(nn);
    for (int l = 0; l <= nn->n_layers; l++) {
        nn->a[l] = bs_malloc((size_t)batch * (size_t)nn->width[l] * sizeof(double));
        if (!nn->a[l])
            goto oom;
    }
    nn->d0 = bs_malloc((size_t)batch * (size_t)nn->max_w * sizeof(double));
    nn->d1 = bs_malloc((size_t)batch * (size_t)nn->max_w * sizeof(double));
    if (!nn->d0 || !nn->d1)
        goto oom;
    nn->cap = batch;
    return 0;
oom:
    s_free_batch(nn);
    return BS_ENOMEM;
}

static double s_act(bs_nn_act_t a, double x)
{
    switch (a) {
    case BS_NN_RELU:
        return x > 0 ? x : 0;
    case BS_NN_TANH:
        return tanh(x);
    case BS_NN_SIGMOID:
        return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x));
    case BS_NN_LINEAR:
    default:
        return x;
    }
}

/* derivative from the activation's output y */
static double s_dact(bs_nn_act_t a, double y)
{
    switch (a) {
    case BS_NN_RELU:
        return y > 0 ? 1.0 : 0.0;
    case BS_NN_TANH:
        return 1.0 - y * y;
    case BS_NN_SIGMOID:
        return y * (1.0 - y);
    case BS_NN_LINEAR:
    default:
        return 1.0;
    }
}

int bs_nn_forward(bs_nn_t *nn, const double *x, int batch, double *y)
{
    if (batch < 1)
        return BS_EINVAL;
    if (s_reserve(nn, batch))
        return BS_ENOMEM;
    nn->batch = batch;
    memcpy(nn->a[0], x, (size_t)batch * (size_t)nn->width[0] * sizeof *x);
    for (int l = 0; l < nn->n_layers; l++) {
        int in = nn->width[l], out = nn->width[l + 1];
        const double *w = nn->p + nn->off[l], *b = w + (int64_t)in * out;
        for (int r = 0; r < batch; r++) {
            const double *xi = nn->a[l] + (size_t)r * (size_t)in;
            double *yo = nn->a[l + 1] + (size_t)r * (size_t)out;
            for (int o = 0; o < out; o++) {
                const double *wr = w + (int64_t)o * in;
                double s = b[o];
                for (int i = 0; i < in; i++)
                    s += wr[i] * xi[i];
                yo[o] = s_act(nn->act[l], s);
            }
        }
    }
    if (y)
        memcpy(y, nn->a[nn->n_layers], (size_t)batch * (size_t)bs_nn_outputs(nn) * sizeof *y);
    return 0;
}

const double *bs_nn_output(const bs_nn_t *nn)
{
    return nn->a[nn->n_layers];
}

int bs_nn_backward(bs_nn_t *nn, const double *dy, double *dx)
{
    int batch = nn->batch, L = nn->n_layers;
    if (batch < 1 || batch > nn->cap)
        return BS_EINVAL;
    double *delta = nn->d0, *prev = nn->d1;
    int wl = nn->width[L];
    for (int64_t k = 0; k < (int64_t)batch * wl; k++)
        delta[k] = dy[k] * s_dact(nn->act[L - 1], nn->a[L][k]);
    memset(nn->g, 0, (size_t)nn->off[L] * sizeof *nn->g);
    for (int l = L - 1; l >= 0; l--) {
        int in = nn->width[l], out = nn->width[l + 1];
        const double *w = nn->p + nn->off[l];
        double *gw = nn->g + nn->off[l], *gb = gw + (int64_t)in * out;
        for (int r = 0; r < batch; r++) {
            const double *xi = nn->a[l] + (size_t)r * (size_t)in;
            const double *dr = delta + (size_t)r * (size_t)out;
            for (int o = 0; o < out; o++) {
                double d = dr[o];
                if (d == 0)
                    continue;
                double *gr = gw + (int64_t)o * in;
                for (int i = 0; i < in; i++)
                    gr[i] += d * xi[i];
                gb[o] += d;
            }
        }
        if (l == 0 && !dx)
            break;
        for (int r = 0; r < batch; r++) {
            const double *dr = delta + (size_t)r * (size_t)out;
            double *pr = prev + (size_t)r * (size_t)in;
            for (int i = 0; i < in; i++)
                pr[i] = 0;
            for (int o = 0; o < out; o++) {
                double d = dr[o];
                if (d == 0)
                    continue;
                const double *wr = w + (int64_t)o * in;
                for (int i = 0; i < in; i++)
                    pr[i] += d * wr[i];
            }
            if (l > 0) {
                const double *yl = nn->a[l] + (size_t)r * (size_t)in;
                for (int i = 0; i < in; i++)
                    pr[i] *= s_dact(nn->act[l - 1], yl[i]);
            }
        }
        if (l == 0) {
            memcpy(dx, prev, (size_t)batch * (size_t)in * sizeof *dx);
            break;
        }
        double *t = delta;
        delta = prev;
        prev = t;
    }
    return 0;
}

void bs_nn_adam(bs_nn_t *nn, double lr, double beta1, double beta2, double eps)
{
    if (beta1 <= 0)
        beta1 = 0.9;
    if (beta2 <= 0)
        beta2 = 0.999;
    if (eps <= 0)
        eps = 1e-8;
    nn->t++;
    double c1 = 1.0 - pow(beta1, (double)nn->t), c2 = 1.0 - pow(beta2, (double)nn->t);
    for (int64_t i = 0; i < nn->off[nn->n_layers]; i++) {
        double g = nn->g[i];
        nn->m[i] = beta1 * nn->m[i] + (1.0 - beta1) * g;
        nn->v[i] = beta2 * nn->v[i] + (1.0 - beta2) * g * g;
        double mh = nn->m[i] / c1, vh = nn->v[i] / c2;
        nn->p[i] -= lr * mh / (sqrt(vh) + eps);
    }
}

static int s_same_shape(const bs_nn_t *a, const bs_nn_t *b)
{
    if (a->n_layers != b->n_layers)
        return 0;
    for (int l = 0; l <= a->n_layers; l++)
        if (a->width[l] != b->width[l])
            return 0;
    return 1;
}

int bs_nn_soft_update(bs_nn_t *dst, const bs_nn_t *src, double tau)
{
    if (!s_same_shape(dst, src))
        return BS_EINVAL;
    for (int64_t i = 0; i < dst->off[dst->n_layers]; i++)
        dst->p[i] = tau * src->p[i] + (1.0 - tau) * dst->p[i];
    return 0;
}

int bs_nn_copy(bs_nn_t *dst, const bs_nn_t *src, int adam)
{
    if (!s_same_shape(dst, src))
        return BS_EINVAL;
    size_t n = (size_t)src->off[src->n_layers] * sizeof(double);
    memcpy(dst->p, src->p, n);
    if (adam) {
        memcpy(dst->m, src->m, n);
        memcpy(dst->v, src->v, n);
        dst->t = src->t;
    }
    return 0;
}

cJSON *bs_nn_save(const bs_nn_t *nn, int adam)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    int64_t n = nn->off[nn->n_layers];
    if (bs_pol_put_ints(o, "shape", nn->width, nn->n_layers + 1) ||
        bs_pol_put_f64s(o, "params", nn->p, n))
        goto oom;
    if (adam && (bs_pol_put_f64s(o, "m", nn->m, n) || bs_pol_put_f64s(o, "v", nn->v, n) ||
                 bs_pol_put_i64(o, "t", nn->t)))
        goto oom;
    return o;
oom:
    cJSON_Delete(o);
    return NULL;
}

int bs_nn_load(bs_nn_t *nn, const cJSON *saved, int adam, bs_err_t *err)
{
    int shape[BS_NN_MAX_LAYERS + 1];
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(saved, "shape");
    if (!cJSON_IsArray(sh) || cJSON_GetArraySize(sh) != nn->n_layers + 1 ||
        bs_pol_get_ints(saved, "shape", shape, nn->n_layers + 1, err))
        return bs_err_set(err, BS_EPROTO, "network: key \"shape\": expected %d widths",
                          nn->n_layers + 1);
    for (int l = 0; l <= nn->n_layers; l++)
        if (shape[l] != nn->width[l])
            return bs_err_set(err, BS_EPROTO, "network: key \"shape\"[%d]: expected %d, got %d", l,
                              nn->width[l], shape[l]);
    int64_t n = nn->off[nn->n_layers];
    int rc = bs_pol_get_f64s(saved, "params", nn->p, n, err);
    if (rc || !adam)
        return rc;
    int64_t t;
    if ((rc = bs_pol_get_f64s(saved, "m", nn->m, n, err)) ||
        (rc = bs_pol_get_f64s(saved, "v", nn->v, n, err)) ||
        (rc = bs_pol_get_i64(saved, "t", 0, INT64_MAX, &t, err)))
        return rc;
    nn->t = t;
    return 0;
}

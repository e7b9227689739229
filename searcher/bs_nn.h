/*
 * bs_nn.h - small dense neural networks in double precision, for the policies that learn
 * (HAQ's DDPG actor and critic).
 *
 * A network is a chain of fully connected layers of given widths, each followed by an
 * activation (linear, relu, tanh, sigmoid). Weights start from a seeded bs_rng_t: He-normal
 * for layers followed by relu, Xavier-uniform otherwise, biases zero, so a campaign's networks
 * depend only on its seed. forward() runs a batch (row-major [batch][width]) and keeps every
 * layer's outputs, so the backward() that follows it on the same batch gives the gradient of
 * the parameters (overwritten, summed over the batch: scale dy for a mean loss) and, when
 * asked, the gradient with respect to the input (what DDPG's actor update needs from the
 * critic: dQ/da). Adam (bias-corrected) steps on those gradients; soft_update() moves a target
 * network toward its source by tau. save()/load() keep parameters and Adam moments exactly
 * (base64 of binary64, bs_pol_put_f64s), so a resumed search continues bit for bit.
 *
 * Sizes are small (tens to a few hundred units); the code is plain loops, no BLAS.
 */
#ifndef BS_NN_H
#define BS_NN_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "bs_error.h"
#include "bs_util.h"

#define BS_NN_MAX_LAYERS 8

typedef enum bs_nn_act {
    BS_NN_LINEAR = 0,
    BS_NN_RELU = 1,
    BS_NN_TANH = 2,
    BS_NN_SIGMOID = 3,
} bs_nn_act_t;

typedef struct bs_nn bs_nn_t;

/* A network with n_layers weight layers: widths[0] inputs, widths[n_layers] outputs, acts[l]
 * after layer l. Initial weights from rng. NULL on OOM or bad shape (n_layers outside
 * 1..BS_NN_MAX_LAYERS, a width < 1). Caller frees with bs_nn_free. */
bs_nn_t *bs_nn_new(int n_layers, const int *widths, const bs_nn_act_t *acts, bs_rng_t *rng);
void bs_nn_free(bs_nn_t **nn); /* NULL-safe; clears *nn */

int bs_nn_inputs(const bs_nn_t *nn);
int bs_nn_outputs(const bs_nn_t *nn);
int64_t bs_nn_n_params(const bs_nn_t *nn);
/* The parameter and gradient vectors (borrowed; n_params each): for each layer, its weights
 * [out][in] row-major, then its biases [out]. */
double *bs_nn_params(bs_nn_t *nn);
double *bs_nn_grads(bs_nn_t *nn);
/* Redraws the last layer's weights and biases uniformly in [-range, range] (DDPG starts the
 * actor's and critic's output layers small). */
void bs_nn_init_last(bs_nn_t *nn, double range, bs_rng_t *rng);

/* Runs x[batch][inputs]; y[batch][outputs] may be NULL (then read bs_nn_output). Keeps the
 * activations for backward. 0 or BS_ENOMEM (the batch buffers grow on demand). */
int bs_nn_forward(bs_nn_t *nn, const double *x, int batch, double *y);
/* The outputs of the last forward (borrowed; [batch][outputs]). */
const double *bs_nn_output(const bs_nn_t *nn);
/* After forward on a batch: given dL/dy[batch][outputs], writes dL/dparams into the gradient
 * vector (overwriting it; summed over the batch) and, when dx is not NULL, dL/dx[batch][inputs].
 * 0 or BS_ENOMEM. */
int bs_nn_backward(bs_nn_t *nn, const double *dy, double *dx);

/* One Adam step on the current gradients (beta1 0.9, beta2 0.999, eps 1e-8 when given <= 0),
 * with bias correction. */
void bs_nn_adam(bs_nn_t *nn, double lr, double beta1, double beta2, double eps);
int64_t bs_nn_adam_steps(const bs_nn_t *nn);

/* dst = tau * src + (1 - tau) * dst over the parameters; same shapes (BS_EINVAL otherwise). */
int bs_nn_soft_update(bs_nn_t *dst, const bs_nn_t *src, double tau);
/* dst's parameters (and, with adam, its moments and step count) become src's. BS_EINVAL when
 * the shapes differ. */
int bs_nn_copy(bs_nn_t *dst, const bs_nn_t *src, int adam);

/* JSON {"shape": [...], "params": base64, and with adam "m", "v", "t"}; caller owns; NULL on
 * OOM. load() checks the shape matches nn's: 0 or BS_EPROTO with err naming the key. */
cJSON *bs_nn_save(const bs_nn_t *nn, int adam);
int bs_nn_load(bs_nn_t *nn, const cJSON *saved, int adam, bs_err_t *err);

#endif

/*
 * bs_precision.h - per-layer precisions and the precision spec used everywhere.
 *
 * A layer's precision is a pair: weight bits (32 = fp32, 16 = fp16, 8..2 = signed symmetric
 * integers) and activation bits at the layer's input (32 = fp32, 8 = int8). Its text form is
 * "w8a8", "w16a32", "w4a8".
 *
 * A precision spec is a comma-separated list of PATTERN=wBaB entries, PATTERN a layer name or
 * a glob, later entries overriding earlier ones: "*=w8a8,fc*=w4a32". An assignment is the
 * canonical, complete form of a spec: every layer in graph order, each by its exact name,
 * "conv1=w8a8,conv2=w4a8,fc=w32a32". Assignments are what jobs carry and what the database keys
 * configurations by (unique per campaign).
 */
#ifndef BS_PRECISION_H
#define BS_PRECISION_H

#include <stdint.h>

#include "bs_error.h"

typedef struct bs_prec {
    uint8_t w; /* 32, 16, 8, 7, 6, 5, 4, 3, 2 */
    uint8_t a; /* 32, 8 */
} bs_prec_t;

#define BS_PREC_FP32 ((bs_prec_t){32, 32})
#define BS_PREC_TEXT_MAX 8 /* "w16a32" + NUL fits */

int bs_wbits_valid(int w);
int bs_abits_valid(int a);
int bs_prec_valid(bs_prec_t p);
int bs_prec_eq(bs_prec_t x, bs_prec_t y);
/* "w8a8" -> {8,8}; returns 0 or BS_EINVAL. */
int bs_prec_parse(const char *s, bs_prec_t *out);
void bs_prec_format(bs_prec_t p, char out[BS_PREC_TEXT_MAX]);

/* Names used in campaign files: weights "fp32" "fp16" "int8".."int2"; activations "fp32"
 * "int8". Return 0 or BS_EINVAL. */
int bs_wprec_from_name(const char *name, uint8_t *w);
int bs_aprec_from_name(const char *name, uint8_t *a);
const char *bs_wprec_name(uint8_t w); /* "fp32", "int4", ...; "?" if invalid */
const char *bs_aprec_name(uint8_t a);

/* Canonical assignment text for n layers; caller frees (bs_free). NULL on OOM. */
char *bs_assign_format(const char *const *names, const bs_prec_t *precs, int n);
/* Applies a spec (or an assignment) to precs[0..n): entries in order, later ones override.
 * A pattern matching no layer, or a bad wBaB, fails with BS_EINVAL and a message that lists
 * the valid layer names. precs is modified only on success. */
int bs_spec_apply(const char *spec, const char *const *names, int n, bs_prec_t *precs,
                  bs_err_t *err);

#endif

/*
 * bs_quant.c - weight quantization, bit packing, fp16 weights and activation calibration.
 *
 * Everything here runs once per layer at load (or once per calibration batch), never in the
 * inference loop, so it favours being obviously right over being fast; it is the reference
 * the integer kernels are tested against. bs_quant.h describes the formats.
 *
 * Weights: each row is quantized on its own. s_row_sq_err() quantizes a row at a candidate
 * scale and returns its squared error, reconstructing values exactly as
 * bs_qweight_dequant_row() does (float product scale * code, error summed in double), so the
 * MSE search minimises the error a test measures from dequantized rows (up to the order of
 * the summation). The search costs about 43 passes over the weights: about 0.2 s for the
 * 3.3 million weights of a MobileNet-sized model on one core, against 0.03 s for min-max.
 *
 * Packing writes and reads one field at a time through BS_QFIELD_BYTE / BS_QFIELD_SHIFT: a
 * field of b <= 8 bits touches at most two bytes. One generic path serves every width, so the
 * 8-, 4- and 2-bit layouts are the same bit-stream rule as the odd widths.
 *
 * Calibration: see bs_calib_t. Quantile and MSE searches work on the histogram alone.
 */
#include "bs_quant.h"

#include <assert.h>
#include <math.h>
#include <string.h>

#include "bs_alloc.h"
#include "bs_tensor.h"

/* The layout the kernels rely on, pinned. */
_Static_assert(BS_QROW_BYTES(100, 4) == 50, "4-bit: two codes per byte");
_Static_assert(BS_QROW_BYTES(100, 2) == 25, "2-bit: four codes per byte");
_Static_assert(BS_QROW_BYTES(100, 3) == 38, "3-bit: ceil(300 / 8) bytes per row");
_Static_assert(BS_QROW_BYTES(1, 8) == 1 && BS_QROW_BYTES(3, 7) == 3, "rows end on a byte");
_Static_assert(BS_QFIELD_BYTE(6, 4) == 3 && BS_QFIELD_SHIFT(6, 4) == 0,
               "4-bit: element 2j in the low nibble of byte j");
_Static_assert(BS_QFIELD_BYTE(7, 4) == 3 && BS_QFIELD_SHIFT(7, 4) == 4,
               "4-bit: element 2j+1 in the high nibble of byte j");
_Static_assert(BS_QFIELD_BYTE(9, 2) == 2 && BS_QFIELD_SHIFT(9, 2) == 2,
               "2-bit: element 4j+t in bits [2t, 2t+2) of byte j");
_Static_assert(BS_QFIELD_BYTE(2, 3) == 0 && BS_QFIELD_SHIFT(2, 3) == 6,
               "3-bit: element 2 straddles bytes 0 and 1");
_Static_assert(BS_QMAX(8) == 127 && BS_QMAX(4) == 7 && BS_QMAX(2) == 1, "symmetric ranges");

/* ---- rounding --------------------------------------------------------------------------- */

static double s_round_even(double x)
{
    double r = floor(x);
    double d = x - r; /* exact: x and r are within a factor of two, or r is 0 */
    if (d > 0.5 || (d == 0.5 && fmod(r, 2.0) != 0.0))
        r += 1.0;
    return r;
}

float bs_quant_round(float x)
{
    if (!isfinite(x))
        return x;
    return (float)s_round_even((double)x);
}

/* Round half to even of |x| <= 2^51 in one addition and one subtraction: adding 1.5 * 2^52
 * leaves no bits below the units place, so the FPU's round-to-nearest-even does the rounding.
 * This relies on the default rounding mode, which nothing in bitscout changes (the SIMD
 * conversions the kernels use rely on it too); it vectorizes, unlike floor() on SSE2. */
static inline double s_rne(double x)
{
    const double magic = 6755399441055744.0; /* 1.5 * 2^52 */
    return (x + magic) - magic;
}

/* Code of w at scale s, given inv = 1 / (double)s: clamp(round(w * inv), -qmax, qmax). The
 * product is in double, so no float scale (even a subnormal one) overflows the reciprocal. */
static inline double s_code(float w, double inv, double qmax)
{
    double x = (double)w * inv;
    x = x > qmax ? qmax : x;
    x = x < -qmax ? -qmax : x;
    return s_rne(x);
}

/* ---- packing ---------------------------------------------------------------------------- */

void bs_qpack_row(const int8_t *codes, int K, int bits, uint8_t *dst)
{
    assert(bits >= BS_QBITS_MIN && bits <= BS_QBITS_MAX && K >= 0);
    unsigned mask = (1u << bits) - 1u;
    memset(dst, 0, BS_QROW_BYTES(K, bits));
    for (int k = 0; k < K; k++) {
        assert(codes[k] >= -BS_QMAX(bits) && codes[k] <= BS_QMAX(bits));
        unsigned v = (unsigned)(uint8_t)codes[k] & mask;
        size_t byte = BS_QFIELD_BYTE(k, bits);
        unsigned shift = BS_QFIELD_SHIFT(k, bits);
        dst[byte] |= (uint8_t)(v << shift);
        if (shift + (unsigned)bits > 8)
            dst[byte + 1] |= (uint8_t)(v >> (8 - shift));
    }
}

void bs_qunpack_row(const uint8_t *src, int bits, int k0, int k1, int8_t *codes)
{
    assert(bits >= BS_QBITS_MIN && bits <= BS_QBITS_MAX && 0 <= k0 && k0 <= k1);
    unsigned mask = (1u << bits) - 1u, sign = 1u << (bits - 1);
    for (int k = k0; k < k1; k++) {
        size_t byte = BS_QFIELD_BYTE(k, bits);
        unsigned shift = BS_QFIELD_SHIFT(k, bits);
        unsigned v = (unsigned)src[byte] >> shift;
        if (shift + (unsigned)bits > 8)
            v |= (unsigned)src[byte + 1] << (8 - shift);
        v &= mask;
        codes[k - k0] = (int8_t)((int)(v ^ sign) - (int)sign);
    }
}

/* ---- weights ---------------------------------------------------------------------------- */

/* Squared error of a row at scale s, each value reconstructed as bs_qweight_dequant_row
 * makes it (the float product s * q). Four interleaved partial sums keep the loop from
 * waiting on one long chain of additions. */
static double s_row_sq_err(const float *w, int K, float s, int qmax_i)
{
    double e[4] = {0.0, 0.0, 0.0, 0.0}, inv = 1.0 / (double)s, qmax = qmax_i;
    int k = 0;
    for (; k + 4 <= K; k += 4)
        for (int j = 0; j < 4; j++) {
            double d = (double)w[k + j] - (double)(s * (float)s_code(w[k + j], inv, qmax));
            e[j] += d * d;
        }
    for (; k < K; k++) {
        double d = (double)w[k] - (double)(s * (float)s_code(w[k], inv, qmax));
        e[0] += d * d;
    }
    return (e[0] + e[1]) + (e[2] + e[3]);
}

/* Scale for one row (gathered in w): 0 when the row is zero or its scale underflows.
 * MSE: clip = max|w| * i / 1000 for i on a coarse-to-fine grid - every 50 from 1000 down to
 * 200, then every 10 within 40 of the best, then every 1 within 9 of the best - keeping the
 * first of equal errors, so i = 1000 (min-max) wins ties. About 43 passes over the row. */
static float s_row_scale(const float *w, int K, int bits, int method)
{
    int qmax = BS_QMAX(bits);
    float amax = 0.0f;
    for (int k = 0; k < K; k++) {
        float a = fabsf(w[k]);
        if (a > amax)
            amax = a;
    }
    float best_s = amax / (float)qmax;
    if (!(best_s > 0.0f))
        return 0.0f;
    if (method == BS_QSCALE_MINMAX)
        return best_s;

    static const int steps[3] = {50, 10, 1}, spans[3] = {800, 40, 9};
    uint8_t tried[1001] = {0};
    double best_e = s_row_sq_err(w, K, best_s, qmax);
    int best_i = 1000;
    tried[1000] = 1;
    for (int lvl = 0; lvl < 3; lvl++) {
        int top = best_i + spans[lvl] < 1000 ? best_i + spans[lvl] : 1000;
        int bottom = best_i - spans[lvl] > 200 - 9 ? best_i - spans[lvl] : 200 - 9;
        int centre = best_i;
        for (int i = top; i >= bottom; i--) {
            if ((i - centre) % steps[lvl] != 0 || tried[i])
                continue;
            tried[i] = 1;
            float s = amax * ((float)i / 1000.0f) / (float)qmax;
            if (!(s > 0.0f))
                break;
            double e = s_row_sq_err(w, K, s, qmax);
            if (e < best_e) {
                best_e = e;
                best_s = s;
                best_i = i;
            }
        }
    }
    return best_s;
}

/* Final codes of a row at scale s. */
static void s_row_codes(const float *w, int K, float s, int qmax, int8_t *codes)
{
    double inv = 1.0 / (double)s;
    for (int k = 0; k < K; k++)
        codes[k] = (int8_t)(int)s_code(w[k], inv, qmax);
}

int bs_quantize_weights(const float *W, int64_t sn, int64_t sk, int N, int K, int bits, int method,
                        bs_qweight_t *out, bs_err_t *err)
{
    if (out)
        memset(out, 0, sizeof *out);
    if (!W || !out)
        return bs_err_set(err, BS_EINVAL, "quantize weights: no %s",
                          !W ? "weight data" : "output");
    if (bits < BS_QBITS_MIN || bits > BS_QBITS_MAX)
        return bs_err_set(err, BS_EINVAL,
                          "quantize weights: %d bits, expected an integer width of %d to %d", bits,
                          BS_QBITS_MIN, BS_QBITS_MAX);
    if (N <= 0 || K <= 0)
        return bs_err_set(err, BS_EINVAL,
                          "quantize weights: a %d x %d matrix, expected N > 0 rows and "
                          "K > 0 columns",
                          N, K);
    if (method != BS_QSCALE_MINMAX && method != BS_QSCALE_MSE)
        return bs_err_set(err, BS_EINVAL,
                          "quantize weights: scale method %d, expected min-max (%d) or MSE (%d)",
                          method, BS_QSCALE_MINMAX, BS_QSCALE_MSE);
    size_t row_bytes = BS_QROW_BYTES(K, bits);
    if ((size_t)N > (SIZE_MAX - BS_QWEIGHT_TAIL) / row_bytes)
        return bs_err_set(err, BS_EINVAL, "quantize weights: %d x %d is too large", N, K);

    bs_qweight_t q = {.bits = bits, .method = method, .N = N, .K = K, .row_bytes = row_bytes};
    q.data = bs_calloc(1, (size_t)N * row_bytes + BS_QWEIGHT_TAIL);
    q.scales = bs_malloc((size_t)N * sizeof(float));
    float *row = bs_malloc((size_t)K * sizeof(float));
    int8_t *codes = bs_malloc((size_t)K);
    int rc = 0;
    if (!q.data || !q.scales || !row || !codes) {
        rc = bs_err_set(err, BS_ENOMEM, "quantize weights: out of memory for %d x %d", N, K);
        goto done;
    }
    int qmax = BS_QMAX(bits);
    for (int n = 0; n < N; n++) {
        const float *base = W + (int64_t)n * sn;
        for (int k = 0; k < K; k++) {
            row[k] = base[(int64_t)k * sk];
            if (!isfinite(row[k])) {
                rc = bs_err_set(err, BS_EINVAL,
                                "quantize weights: weight [%d][%d] is %s, expected a finite "
                                "value",
                                n, k, isnan(row[k]) ? "NaN" : "infinite");
                goto done;
            }
        }
        float s = s_row_scale(row, K, bits, method);
        if (s > 0.0f) {
            s_row_codes(row, K, s, qmax, codes);
        } else {
            s = 1.0f;
            memset(codes, 0, (size_t)K);
        }
        q.scales[n] = s;
        bs_qpack_row(codes, K, bits, q.data + (size_t)n * row_bytes);
    }
done:
    bs_free(row);
    bs_free(codes);
    if (rc < 0) {
        bs_qweight_free(&q);
        return rc;
    }
    *out = q;
    return 0;
}

void bs_qweight_free(bs_qweight_t *q)
{
    if (!q)
        return;
    bs_free(q->data);
    bs_free(q->scales);
    memset(q, 0, sizeof *q);
}

size_t bs_qweight_bytes(const bs_qweight_t *q)
{
    if (!q || !q->data)
        return 0;
    return (size_t)q->N * q->row_bytes + (size_t)q->N * sizeof(float);
}

void bs_qweight_unpack_row(const bs_qweight_t *q, int n, int k0, int k1, int8_t *codes)
{
    assert(q && q->data && n >= 0 && n < q->N && 0 <= k0 && k0 <= k1 && k1 <= q->K);
    bs_qunpack_row(q->data + (size_t)n * q->row_bytes, q->bits, k0, k1, codes);
}

void bs_qweight_dequant_row(const bs_qweight_t *q, int n, int k0, int k1, float *out)
{
    assert(q && q->data && n >= 0 && n < q->N && 0 <= k0 && k0 <= k1 && k1 <= q->K);
    const uint8_t *src = q->data + (size_t)n * q->row_bytes;
    float s = q->scales[n];
    int8_t buf[256];
    for (int k = k0; k < k1; k += 256) {
        int m = k1 - k < 256 ? k1 - k : 256;
        bs_qunpack_row(src, q->bits, k, k + m, buf);
        for (int i = 0; i < m; i++)
            out[k - k0 + i] = s * (float)buf[i];
    }
}

/* ---- fp16 ------------------------------------------------------------------------------- */

int bs_f16_weights(const float *W, int64_t sn, int64_t sk, int N, int K, uint16_t **out,
                   bs_err_t *err)
{
    if (out)
        *out = NULL;
    if (!W || !out)
        return bs_err_set(err, BS_EINVAL, "fp16 weights: no %s", !W ? "weight data" : "output");
    if (N <= 0 || K <= 0)
        return bs_err_set(err, BS_EINVAL,
                          "fp16 weights: a %d x %d matrix, expected N > 0 rows and K > 0 "
                          "columns",
                          N, K);
    uint16_t *h = bs_malloc((size_t)N * (size_t)K * sizeof(uint16_t));
    if (!h)
        return bs_err_set(err, BS_ENOMEM, "fp16 weights: out of memory for %d x %d", N, K);
    for (int n = 0; n < N; n++) {
        for (int k = 0; k < K; k++) {
            float w = W[(int64_t)n * sn + (int64_t)k * sk];
            uint16_t v = bs_f32_to_f16(w);
            if (!isfinite(w) || (v & 0x7c00u) == 0x7c00u) { /* NaN, inf, or rounds to inf */
                bs_free(h);
                return bs_err_set(err, BS_EINVAL,
                                  "fp16 weights: weight [%d][%d] = %g does not fit fp16 "
                                  "(finite, magnitude at most 65504)",
                                  n, k, (double)w);
            }
            h[(size_t)n * (size_t)K + (size_t)k] = v;
        }
    }
    *out = h;
    return 0;
}

void bs_f16_dequant(const uint16_t *h, size_t count, float *out)
{
    for (size_t i = 0; i < count; i++)
        out[i] = bs_f16_to_f32(h[i]);
}

/* ---- calibration ------------------------------------------------------------------------ */

void bs_calib_init(bs_calib_t *c)
{
    memset(c, 0, sizeof *c);
}

/* Doubles the histogram's range; up = 1 keeps lo, up = 0 keeps the top edge. */
static void s_calib_double(bs_calib_t *c, int up)
{
    enum { H = BS_CALIB_BINS / 2 };
    double m[H];
    for (int i = 0; i < H; i++)
        m[i] = c->hist[2 * i] + c->hist[2 * i + 1];
    memset(c->hist, 0, sizeof c->hist);
    memcpy(up ? c->hist : c->hist + H, m, sizeof m);
    if (!up)
        c->lo -= BS_CALIB_BINS * c->width;
    c->width *= 2.0;
}

void bs_calib_observe(bs_calib_t *c, const float *x, size_t n)
{
    float bmin = INFINITY, bmax = -INFINITY;
    size_t finite = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i])) {
            c->n_nonfinite += 1.0;
            continue;
        }
        finite++;
        if (x[i] < bmin)
            bmin = x[i];
        if (x[i] > bmax)
            bmax = x[i];
    }
    if (finite == 0)
        return;
    if (c->count == 0.0) {
        c->min = bmin;
        c->max = bmax;
        c->lo = bmin;
        double w = ((double)bmax - (double)bmin) / BS_CALIB_BINS;
        double tiny = (fabs((double)bmin) > 1e-30 ? fabs((double)bmin) : 1.0) * 1e-7;
        c->width = w > 0.0 ? w : tiny / BS_CALIB_BINS;
    } else {
        if (bmin < c->min)
            c->min = bmin;
        if (bmax > c->max)
            c->max = bmax;
    }
    while ((double)bmin < c->lo)
        s_calib_double(c, 0);
    while ((double)bmax > c->lo + BS_CALIB_BINS * c->width)
        s_calib_double(c, 1);
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i]))
            continue;
        double f = floor(((double)x[i] - c->lo) / c->width);
        int b = f < 0.0 ? 0 : f >= BS_CALIB_BINS ? BS_CALIB_BINS - 1 : (int)f;
        c->hist[b] += 1.0;
    }
    c->count += (double)finite;
}

/* Scale and zero point for the range [a, b] widened to include 0. */
static void s_qparams(double a, double b, int qmin, int qmax, float *scale, int32_t *zp)
{
    if (a > 0.0)
        a = 0.0;
    if (b < 0.0)
        b = 0.0;
    float s = (float)((b - a) / (double)(qmax - qmin));
    if (!(s > 0.0f) || !isfinite(s)) {
        *scale = 1.0f;
        *zp = qmin;
        return;
    }
    double z = (double)qmin - s_rne(a / (double)s); /* |a / s| <= 255 */
    if (z < qmin)
        z = qmin;
    if (z > qmax)
        z = qmax;
    *scale = s;
    *zp = (int32_t)z;
}

/* Squared error of the histogram (bin centres) quantized with (s, zp). */
static double s_hist_err(const bs_calib_t *c, const int *nz, int n_nz, float s, int32_t zp,
                         int qmin, int qmax)
{
    double e = 0.0;
    for (int j = 0; j < n_nz; j++) {
        int i = nz[j];
        double x = c->lo + ((double)i + 0.5) * c->width;
        double q = s_rne(x / (double)s) + zp; /* |x / s| < 2^51: s >= max / 10^6 */
        if (q < qmin)
            q = qmin;
        if (q > qmax)
            q = qmax;
        double d = x - (q - zp) * (double)s;
        e += c->hist[i] * d * d;
    }
    return e;
}

/* MSE range candidates per side: max * 2^(-j/6), j < 60 (1 down to about 0.001). */
#define S_MSE_STEPS 60

int bs_calib_params(const bs_calib_t *c, int method, double percentile, int dtype, float *scale,
                    int32_t *zero_point, bs_err_t *err)
{
    int qmin, qmax;
    if (dtype == BS_DT_UINT8) {
        qmin = 0;
        qmax = 255;
    } else if (dtype == BS_DT_INT8) {
        qmin = -128;
        qmax = 127;
    } else {
        return bs_err_set(err, BS_EINVAL,
                          "calibration: dtype %d, expected uint8 (%d) or int8 "
                          "(%d)",
                          dtype, BS_DT_UINT8, BS_DT_INT8);
    }
    if (method != BS_CALIB_MINMAX && method != BS_CALIB_PERCENTILE && method != BS_CALIB_MSE)
        return bs_err_set(err, BS_EINVAL,
                          "calibration: method %d, expected min-max (%d), "
                          "percentile (%d) or MSE (%d)",
                          method, BS_CALIB_MINMAX, BS_CALIB_PERCENTILE, BS_CALIB_MSE);
    if (method == BS_CALIB_PERCENTILE && !(percentile > 50.0 && percentile <= 100.0))
        return bs_err_set(err, BS_EINVAL,
                          "calibration: percentile %g, expected a value in "
                          "(50, 100]",
                          percentile);
    if (c->count == 0.0) {
        s_qparams(0.0, 0.0, qmin, qmax, scale, zero_point);
        return 0;
    }
    double a = c->min, b = c->max;
    if (method == BS_CALIB_PERCENTILE) {
        double drop = (100.0 - percentile) / 100.0 * c->count, cum = 0.0;
        for (int i = 0; i < BS_CALIB_BINS; i++) {
            if (cum + c->hist[i] > drop) {
                double qa = c->lo + c->width * (i + (drop - cum) / c->hist[i]);
                a = qa > a ? qa : a;
                break;
            }
            cum += c->hist[i];
        }
        cum = 0.0;
        for (int i = BS_CALIB_BINS - 1; i >= 0; i--) {
            if (cum + c->hist[i] > drop) {
                double qb = c->lo + c->width * (i + 1 - (drop - cum) / c->hist[i]);
                b = qb < b ? qb : b;
                break;
            }
            cum += c->hist[i];
        }
        if (b < a)
            b = a;
    } else if (method == BS_CALIB_MSE) {
        int nz[BS_CALIB_BINS], n_nz = 0;
        for (int i = 0; i < BS_CALIB_BINS; i++)
            if (c->hist[i] > 0.0)
                nz[n_nz++] = i;
        double best_e = -1.0, best_a = a, best_b = b;
        double r[S_MSE_STEPS];
        for (int i = 0; i < S_MSE_STEPS; i++)
            r[i] = pow(0.5, i / 6.0);
        int lo_steps = c->min < 0.0f ? S_MSE_STEPS : 1;
        int hi_steps = c->max > 0.0f ? S_MSE_STEPS : 1;
        for (int i = 0; i < lo_steps; i++) {
            double ca = c->min < 0.0f ? (double)c->min * r[i] : 0.0;
            for (int j = 0; j < hi_steps; j++) {
                double cb = c->max > 0.0f ? (double)c->max * r[j] : 0.0;
                float s;
                int32_t zp;
                s_qparams(ca, cb, qmin, qmax, &s, &zp);
                double e = s_hist_err(c, nz, n_nz, s, zp, qmin, qmax);
                if (best_e < 0.0 || e < best_e) {
                    best_e = e;
                    best_a = ca;
                    best_b = cb;
                }
            }
        }
        a = best_a;
        b = best_b;
    }
    s_qparams(a, b, qmin, qmax, scale, zero_point);
    return 0;
}

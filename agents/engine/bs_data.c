/*
 * bs_data.c - data files, preprocessing and metrics (see bs_data.h).
 *
 * A data file is read whole (gunzipped through zlib when it is gzipped) and handed to the .npy
 * or IDX parser by its magic. Building a data set maps every sample onto the model input with
 * one loop over (c, h, w): the source offset is c*sc + h*sh + w*sw with strides chosen for the
 * file's sample layout ([H,W], [C,H,W] or [H,W,C]; a flat vector for inputs that are not 4-D),
 * the destination offset follows the model's layout. Resizing (single channel only) happens
 * first, into a per-sample scratch image, so the same loop serves both cases. Everything is
 * computed in float; the output buffer is sized (and checked for overflow) before the loop.
 */
#include "bs_data.h"

#include "bs_alloc.h"
#include "bs_idx.h"
#include "bs_npy.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- preprocess ---------------------------------------------------------------------------- */

void bs_preprocess_default(bs_preprocess_t *p)
{
    memset(p, 0, sizeof *p);
    p->scale = 1.0f / 255.0f;
}

static int s_num_array(const cJSON *a, const char *where, const char *key, int positive,
                       float *out, int *n, bs_err_t *err)
{
    int cnt = cJSON_GetArraySize(a);
    if (!cJSON_IsArray(a) || cnt < 1 || cnt > BS_PRE_MAX_CH)
        return bs_err_set(err, BS_ECONFIG, "%s.%s: expected an array of 1 to %d numbers", where,
                          key, BS_PRE_MAX_CH);
    int i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, a)
    {
        if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble) ||
            (positive && !(it->valuedouble > 0)))
            return bs_err_set(err, BS_ECONFIG, "%s.%s[%d]: expected a %s", where, key, i,
                              positive ? "number > 0" : "finite number");
        out[i++] = (float)it->valuedouble;
    }
    *n = cnt;
    return 0;
}

int bs_preprocess_from_json(const cJSON *obj, const char *where, bs_preprocess_t *out,
                            bs_err_t *err)
{
    bs_preprocess_default(out);
    if (!where)
        where = "preprocess";
    if (!obj || cJSON_IsNull(obj))
        return 0;
    if (!cJSON_IsObject(obj))
        return bs_err_set(err, BS_ECONFIG, "%s: expected an object", where);
    const cJSON *it;
    int rc;
    cJSON_ArrayForEach(it, obj)
    {
        const char *k = it->string ? it->string : "";
        if (!strcmp(k, "scale")) {
            if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble) || !(it->valuedouble > 0))
                return bs_err_set(err, BS_ECONFIG, "%s.scale: expected a number > 0", where);
            out->scale = (float)it->valuedouble;
        } else if (!strcmp(k, "mean")) {
            if ((rc = s_num_array(it, where, "mean", 0, out->mean, &out->n_mean, err)))
                return rc;
        } else if (!strcmp(k, "std")) {
            if ((rc = s_num_array(it, where, "std", 1, out->std, &out->n_std, err)))
                return rc;
        } else if (!strcmp(k, "layout")) {
            const char *s = cJSON_GetStringValue(it);
            if (!s || (strcmp(s, "NCHW") && strcmp(s, "NHWC")))
                return bs_err_set(err, BS_ECONFIG, "%s.layout: expected \"NCHW\" or \"NHWC\"",
                                  where);
            out->nhwc = !strcmp(s, "NHWC");
        } else if (!strcmp(k, "resize")) {
            const cJSON *h = cJSON_GetArrayItem(it, 0), *w = cJSON_GetArrayItem(it, 1);
            if (!cJSON_IsArray(it) || cJSON_GetArraySize(it) != 2 || !cJSON_IsNumber(h) ||
                !cJSON_IsNumber(w) || h->valuedouble != floor(h->valuedouble) ||
                w->valuedouble != floor(w->valuedouble) || h->valuedouble < 1 ||
                h->valuedouble > 16384 || w->valuedouble < 1 || w->valuedouble > 16384)
                return bs_err_set(err, BS_ECONFIG,
                                  "%s.resize: expected [H, W], integers in "
                                  "1..16384",
                                  where);
            out->resize_h = (int)h->valuedouble;
            out->resize_w = (int)w->valuedouble;
        } else {
            return bs_err_set(err, BS_ECONFIG,
                              "%s: unknown key \"%s\" (expected scale, mean, "
                              "std, layout, resize)",
                              where, k);
        }
    }
    if (out->n_mean && out->n_std && out->n_mean != out->n_std)
        return bs_err_set(err, BS_ECONFIG,
                          "%s: mean has %d entries and std %d; they must "
                          "match",
                          where, out->n_mean, out->n_std);
    return 0;
}

/* ---- arrays -------------------------------------------------------------------------------- */

void bs_array_free(bs_array_t *a)
{
    if (!a)
        return;
    bs_free(a->data);
    memset(a, 0, sizeof *a);
}

/* Parses an already decompressed buffer. */
static int s_array_raw(const uint8_t *p, size_t len, const char *name, size_t max, bs_array_t *out,
                       bs_err_t *err)
{
    if (bs_npy_is_npy(p, len)) {
        bs_npy_t a;
        int rc = bs_npy_parse(p, len, name, max, &a, err);
        if (rc)
            return rc;
        out->dtype = a.dtype;
        out->ndim = a.ndim;
        memcpy(out->dims, a.dims, sizeof a.dims);
        out->data = a.data;
        out->nbytes = a.nbytes;
        return 0;
    }
    bs_idx_t x;
    int rc = bs_idx_parse(p, len, name, max, &x, err);
    if (rc) {
        if (len >= 2 && (p[0] != 0 || p[1] != 0))
            bs_err_set(err, rc, "%s: neither an IDX nor a .npy file (first bytes %02x %02x)", name,
                       p[0], p[1]);
        return rc;
    }
    out->dtype = BS_DT_UINT8;
    out->ndim = x.ndim;
    memcpy(out->dims, x.dims, sizeof x.dims);
    out->data = x.data;
    out->nbytes = x.nbytes;
    return 0;
}

int bs_array_parse(const void *buf, size_t len, const char *name, size_t max, bs_array_t *out,
                   bs_err_t *err)
{
    memset(out, 0, sizeof *out);
    if (bs_idx_is_gzip(buf, len)) {
        uint8_t *raw;
        size_t n;
        int rc = bs_idx_gunzip(buf, len, name, max, &raw, &n, err);
        if (rc)
            return rc;
        rc = s_array_raw(raw, n, name, max, out, err);
        bs_free(raw);
        return rc;
    }
    return s_array_raw(buf, len, name, max, out, err);
}

int bs_array_load(const char *path, size_t max, bs_array_t *out, bs_err_t *err)
{
    memset(out, 0, sizeof *out);
    uint8_t *buf;
    size_t len;
    int rc = bs_idx_read_all(path, max, &buf, &len, err);
    if (rc)
        return rc;
    rc = s_array_raw(buf, len, path, max, out, err);
    bs_free(buf);
    return rc;
}

/* ---- data set ------------------------------------------------------------------------------ */

static float s_get(const bs_array_t *a, size_t i)
{
    switch (a->dtype) {
    case BS_DT_FLOAT:
        return ((const float *)a->data)[i];
    case BS_DT_UINT8:
        return (float)((const uint8_t *)a->data)[i];
    case BS_DT_INT8:
        return (float)((const int8_t *)a->data)[i];
    case BS_DT_INT32:
        return (float)((const int32_t *)a->data)[i];
    case BS_DT_INT64:
        return (float)((const int64_t *)a->data)[i];
    default:
        return 0.0f;
    }
}

/* One axis of the bilinear resize: output coordinate o at scale f (input/output size) over an
 * input of n samples. Sets the two source indices *i0 <= *i1 (clamped to the edges) and
 * returns the weight of *i1. */
static float s_taps(int o, float f, int64_t n, int64_t *i0, int64_t *i1)
{
    float src = ((float)o + 0.5f) * f - 0.5f;
    if (src < 0)
        src = 0;
    int64_t lo = (int64_t)src;
    if (lo > n - 1)
        lo = n - 1;
    *i0 = lo;
    *i1 = lo < n - 1 ? lo + 1 : lo;
    return src - (float)lo;
}

/* Bilinear resize of one single-channel image (source elements base .. base + ih*iw of a)
 * into dst [oh, ow]; half-pixel centres, coordinates clamped at the edges. */
static void s_resize(const bs_array_t *a, size_t base, int64_t ih, int64_t iw, float *dst, int oh,
                     int ow)
{
    float fy = (float)ih / (float)oh, fx = (float)iw / (float)ow;
    for (int y = 0; y < oh; y++) {
        int64_t y0, y1;
        float ly = s_taps(y, fy, ih, &y0, &y1);
        for (int x = 0; x < ow; x++) {
            int64_t x0, x1;
            float lx = s_taps(x, fx, iw, &x0, &x1);
            float p00 = s_get(a, base + (size_t)(y0 * iw + x0));
            float p01 = s_get(a, base + (size_t)(y0 * iw + x1));
            float p10 = s_get(a, base + (size_t)(y1 * iw + x0));
            float p11 = s_get(a, base + (size_t)(y1 * iw + x1));
            dst[y * ow + x] =
                (1 - ly) * ((1 - lx) * p00 + lx * p01) + ly * ((1 - lx) * p10 + lx * p11);
        }
    }
}

static const char *s_dims_str(int n, const int64_t *d, char *buf, size_t cap)
{
    bs_shape_t s = {.rank = n};
    for (int i = 0; i < n && i < BS_MAX_RANK; i++)
        s.d[i] = d[i];
    return bs_shape_str(&s, buf, cap);
}

static int s_labels(const bs_array_t *l, const char *name, int64_t count, int64_t **out,
                    bs_err_t *err)
{
    char sb[96];
    if (!(l->ndim == 1 || (l->ndim == 2 && l->dims[1] == 1)))
        return bs_err_set(err, BS_EDATA, "%s: labels must have shape [N] or [N, 1]; got %s", name,
                          s_dims_str(l->ndim, l->dims, sb, sizeof sb));
    if (l->dtype == BS_DT_FLOAT)
        return bs_err_set(err, BS_EDATA, "%s: labels must be integers; got float32", name);
    if (l->dims[0] < count)
        return bs_err_set(err, BS_EDATA, "%s: %lld labels for %lld samples", name,
                          (long long)l->dims[0], (long long)count);
    int64_t *lab = bs_malloc(sizeof *lab * (size_t)(count ? count : 1));
    if (!lab)
        return bs_err_set(err, BS_ENOMEM, "%s: out of memory", name);
    for (int64_t i = 0; i < count; i++) {
        int64_t v;
        switch (l->dtype) {
        case BS_DT_UINT8:
            v = ((const uint8_t *)l->data)[i];
            break;
        case BS_DT_INT8:
            v = ((const int8_t *)l->data)[i];
            break;
        case BS_DT_INT32:
            v = ((const int32_t *)l->data)[i];
            break;
        default:
            v = ((const int64_t *)l->data)[i];
            break;
        }
        if (v < 0) {
            bs_free(lab);
            return bs_err_set(err, BS_EDATA, "%s: label %lld of sample %lld is negative", name,
                              (long long)v, (long long)i);
        }
        lab[i] = v;
    }
    *out = lab;
    return 0;
}

int bs_dataset_build(const bs_array_t *img, const char *iname, const bs_array_t *labels,
                     const char *lname, int64_t count, const bs_preprocess_t *pre,
                     const bs_shape_t *input, bs_dataset_t *out, bs_err_t *err)
{
    char s1[96], s2[96];
    memset(out, 0, sizeof *out);
    if (!iname)
        iname = "images";
    if (!lname)
        lname = "labels";
    if (input->rank < 1 || input->d[0] < 1)
        return bs_err_set(err, BS_EMODEL, "model input %s has no batch dimension",
                          bs_shape_str(input, s1, sizeof s1));
    if (img->ndim < 2)
        return bs_err_set(err, BS_EDATA, "%s: images need at least 2 dimensions [N, ...]; got %s",
                          iname, s_dims_str(img->ndim, img->dims, s1, sizeof s1));
    int64_t N = img->dims[0];
    for (int i = 0; i < img->ndim; i++)
        if (img->dims[i] < 1)
            return bs_err_set(err, BS_EDATA, "%s: images of shape %s: %s", iname,
                              s_dims_str(img->ndim, img->dims, s1, sizeof s1),
                              i == 0 ? "the file holds no samples" : "a sample has no elements");
    if (count < 0)
        return bs_err_set(err, BS_EINVAL, "%s: sample count %lld is negative", iname,
                          (long long)count);
    if (count == 0)
        count = N;
    if (count > N)
        return bs_err_set(err, BS_EDATA, "%s: %lld samples asked, the file holds %lld", iname,
                          (long long)count, (long long)N);
    int64_t S = bs_shape_numel(input) / input->d[0];

    /* The file's sample dims, after an optional resize. */
    int gr = img->ndim - 1;
    int64_t G[BS_MAX_RANK];
    int64_t fnumel = 1;
    for (int i = 0; i < gr; i++) {
        G[i] = img->dims[i + 1];
        fnumel *= G[i];
    }
    int64_t ih = 0, iw = 0;
    int resize = pre->resize_h > 0 && pre->resize_w > 0;
    if (resize) {
        if (gr == 2) {
            ih = G[0];
            iw = G[1];
        } else if (gr == 3 && G[2] == 1) {
            ih = G[0];
            iw = G[1];
        } else if (gr == 3 && G[0] == 1) {
            ih = G[1];
            iw = G[2];
        } else {
            return bs_err_set(err, BS_EDATA,
                              "%s: resize needs single-channel images [N, H, W]; "
                              "got samples of shape %s",
                              iname, s_dims_str(gr, G, s1, sizeof s1));
        }
        gr = 2;
        G[0] = pre->resize_h;
        G[1] = pre->resize_w;
    }

    /* Geometry: C, H, W of the model input and the source strides. */
    int64_t C, H, W, sc, sh, sw;
    int nhwc = pre->nhwc;
    if (input->rank == 4) {
        if (nhwc) {
            H = input->d[1];
            W = input->d[2];
            C = input->d[3];
        } else {
            C = input->d[1];
            H = input->d[2];
            W = input->d[3];
        }
        int chw = gr == 3 && G[0] == C && G[1] == H && G[2] == W;
        int hwc = gr == 3 && G[0] == H && G[1] == W && G[2] == C;
        if (gr == 2 && C == 1 && G[0] == H && G[1] == W) {
            sc = 0, sh = W, sw = 1;
        } else if ((!nhwc && chw) || (nhwc && chw && !hwc)) {
            sc = H * W, sh = W, sw = 1;
        } else if (hwc) {
            sc = 1, sh = W * C, sw = C;
        } else {
            return bs_err_set(err, BS_EDATA,
                              "%s: samples of shape %s do not fit the model "
                              "input %s (%s)",
                              iname, s_dims_str(gr, G, s1, sizeof s1),
                              bs_shape_str(input, s2, sizeof s2), nhwc ? "NHWC" : "NCHW");
        }
        if ((pre->n_mean > 1 && pre->n_mean != C) || (pre->n_std > 1 && pre->n_std != C))
            return bs_err_set(err, BS_ECONFIG,
                              "preprocess: %d mean / %d std entries for %lld "
                              "channels",
                              pre->n_mean, pre->n_std, (long long)C);
    } else {
        int64_t gn = 1;
        for (int i = 0; i < gr; i++)
            gn *= G[i];
        if (gn != S)
            return bs_err_set(err, BS_EDATA,
                              "%s: samples of shape %s (%lld elements) do not "
                              "fit the model input %s (%lld elements a sample)",
                              iname, s_dims_str(gr, G, s1, sizeof s1), (long long)gn,
                              bs_shape_str(input, s2, sizeof s2), (long long)S);
        if (pre->n_mean > 1 || pre->n_std > 1)
            return bs_err_set(err, BS_ECONFIG,
                              "preprocess: per-channel mean / std need a 4-D "
                              "image input; the model input is %s",
                              bs_shape_str(input, s2, sizeof s2));
        C = 1, H = 1, W = S, sc = 0, sh = 0, sw = 1;
        nhwc = 0;
    }

    uint64_t max_floats = (uint64_t)BS_DATA_MAX_BYTES * 4 / sizeof(float); /* 4 GiB of floats */
    if (S <= 0 || (uint64_t)count > max_floats / (uint64_t)S)
        return bs_err_set(err, BS_ETOOBIG, "%s: %lld samples of %lld floats is too much data",
                          iname, (long long)count, (long long)S);
    int rc = 0;
    float *tmp = NULL;
    out->x = bs_malloc(sizeof(float) * (size_t)count * (size_t)S);
    if (resize)
        tmp = bs_malloc(sizeof(float) * (size_t)pre->resize_h * (size_t)pre->resize_w);
    if (!out->x || (resize && !tmp)) {
        rc = bs_err_set(err, BS_ENOMEM, "%s: out of memory for %lld samples", iname,
                        (long long)count);
        goto fail;
    }
    if (labels && labels->ndim >= 1 && labels->dims[0] != img->dims[0]) {
        /* A train/test mix-up shows as mismatched counts: refuse it, naming both files. */
        rc = bs_err_set(err, BS_EDATA, "%s has %lld labels but %s has %lld samples", lname,
                        (long long)labels->dims[0], iname, (long long)img->dims[0]);
        goto fail;
    }
    if (labels && (rc = s_labels(labels, lname, count, &out->labels, err)))
        goto fail;

    float scale = pre->scale;
    for (int64_t i = 0; i < count; i++) {
        size_t base = (size_t)i * (size_t)fnumel;
        float *dst = out->x + (size_t)i * (size_t)S;
        if (resize)
            s_resize(img, base, ih, iw, tmp, pre->resize_h, pre->resize_w);
        for (int64_t c = 0; c < C; c++) {
            float mean = pre->n_mean == 0 ? 0.0f : pre->mean[pre->n_mean == 1 ? 0 : c];
            float std = pre->n_std == 0 ? 1.0f : pre->std[pre->n_std == 1 ? 0 : c];
            float inv = 1.0f / std;
            for (int64_t h = 0; h < H; h++) {
                for (int64_t w = 0; w < W; w++) {
                    size_t so = (size_t)(c * sc + h * sh + w * sw);
                    float v = resize ? tmp[so] : s_get(img, base + so);
                    int64_t d = nhwc ? (h * W + w) * C + c : (c * H + h) * W + w;
                    dst[d] = (v * scale - mean) * inv;
                }
            }
        }
    }
    bs_free(tmp);
    out->count = count;
    out->sample_numel = S;
    return 0;
fail:
    bs_free(tmp);
    bs_dataset_free(out);
    return rc;
}

int bs_dataset_load(const char *images_path, const char *labels_path, int64_t count,
                    const bs_preprocess_t *pre, const bs_shape_t *input, bs_dataset_t *out,
                    bs_err_t *err)
{
    memset(out, 0, sizeof *out);
    bs_array_t img, lab;
    memset(&lab, 0, sizeof lab);
    int rc = bs_array_load(images_path, BS_DATA_MAX_BYTES, &img, err);
    if (rc)
        return rc;
    if (labels_path && (rc = bs_array_load(labels_path, BS_DATA_MAX_BYTES, &lab, err))) {
        bs_array_free(&img);
        return rc;
    }
    rc = bs_dataset_build(&img, images_path, labels_path ? &lab : NULL, labels_path, count, pre,
                          input, out, err);
    bs_array_free(&img);
    bs_array_free(&lab);
    return rc;
}

void bs_dataset_free(bs_dataset_t *d)
{
    if (!d)
        return;
    bs_free(d->x);
    bs_free(d->labels);
    memset(d, 0, sizeof *d);
}

/* ---- metrics ------------------------------------------------------------------------------- */

int64_t bs_argmax(const float *v, int64_t n)
{
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (v[i] > v[best] || (v[best] != v[best] && v[i] == v[i]))
            best = i;
    return best;
}

int bs_metric_top1(const float *logits, int64_t n, int64_t classes, const int64_t *labels,
                   double *acc, bs_err_t *err)
{
    int64_t hits = 0;
    for (int64_t i = 0; i < n; i++) {
        if (labels[i] < 0 || labels[i] >= classes)
            return bs_err_set(err, BS_EDATA,
                              "label %lld of sample %lld is outside the model's "
                              "%lld classes",
                              (long long)labels[i], (long long)i, (long long)classes);
        hits += bs_argmax(logits + i * classes, classes) == labels[i];
    }
    *acc = n > 0 ? (double)hits / (double)n : NAN;
    return 0;
}

double bs_metric_agreement(const float *out, const float *ref, int64_t n, int64_t classes)
{
    if (n <= 0)
        return 1.0;
    int64_t same = 0;
    for (int64_t i = 0; i < n; i++)
        same += bs_argmax(out + i * classes, classes) == bs_argmax(ref + i * classes, classes);
    return (double)same / (double)n;
}

double bs_metric_sqnr_db(const float *out, const float *ref, int64_t count)
{
    double sig = 0.0, noise = 0.0;
    for (int64_t i = 0; i < count; i++) {
        double r = ref[i], e = (double)ref[i] - (double)out[i];
        sig += r * r;
        noise += e * e;
    }
    if (noise == 0.0)
        return INFINITY;
    return 10.0 * log10(sig / noise);
}

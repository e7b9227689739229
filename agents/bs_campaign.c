/*
 * bs_campaign.c - reading the few campaign keys the engine's by-hand tools need (see
 * bs_campaign.h). Every key is optional here except where noted; the callers decide what they
 * require (a model, evaluation images).
 */
#include "bs_campaign.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bs_alloc.h"
#include "bs_util.h"

#define S_CONFIG_MAX ((size_t)1 << 20)

void bs_campaign_file_free(bs_campaign_file_t *c)
{
    if (!c)
        return;
    bs_free(c->name);
    bs_free(c->model);
    bs_free(c->images);
    bs_free(c->labels);
    bs_free(c->calib);
    cJSON_Delete(c->root);
    memset(c, 0, sizeof *c);
}

int bs_campaign_obj_key(const char *file, const cJSON *parent, const char *key,
                        const char *where, const cJSON **out, bs_err_t *err)
{
    *out = parent ? cJSON_GetObjectItemCaseSensitive(parent, key) : NULL;
    if (*out && !cJSON_IsObject(*out))
        return bs_err_set(err, BS_ECONFIG, "%s: %s: expected an object", file, where);
    return 0;
}

/* A path key: NULL when absent, else resolved against the campaign file's directory. */
static int s_path_key(const char *file, const cJSON *obj, const char *key, const char *where,
                      char **out, bs_err_t *err)
{
    *out = NULL;
    const cJSON *it = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    if (!it)
        return 0;
    const char *s = cJSON_GetStringValue(it);
    if (!s || !*s)
        return bs_err_set(err, BS_ECONFIG, "%s: %s: expected a file path (a string)", file, where);
    *out = bs_path_resolve(file, s);
    return *out ? 0 : bs_err_set(err, BS_ENOMEM, "out of memory");
}

int bs_campaign_count_key(const char *file, const cJSON *obj, const char *key, const char *where,
                          int64_t *out, int *present, bs_err_t *err)
{
    const cJSON *it = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    if (present)
        *present = it != NULL;
    if (!it)
        return 0;
    if (!cJSON_IsNumber(it) || !(it->valuedouble >= 0) || it->valuedouble > 9.0e15 ||
        it->valuedouble != floor(it->valuedouble))
        return bs_err_set(err, BS_ECONFIG, "%s: %s: expected an integer >= 0", file, where);
    *out = (int64_t)it->valuedouble;
    return 0;
}

int bs_campaign_file_load(const char *file, bs_campaign_file_t *c, bs_err_t *err)
{
    memset(c, 0, sizeof *c);
    bs_preprocess_default(&c->pre);
    bs_quant_opts_default(&c->quant);
    char *text;
    size_t len;
    int rc = bs_read_file(file, S_CONFIG_MAX, &text, &len, err);
    if (rc)
        return rc;
    c->root = cJSON_ParseWithLength(text, len);
    const cJSON *data, *eval, *cal, *it;
    if (!c->root) {
        const char *at = cJSON_GetErrorPtr();
        if (at && at >= text && at <= text + len)
            rc = bs_err_set(err, BS_ECONFIG, "%s: invalid JSON near byte %ld", file,
                            (long)(at - text));
        else
            rc = bs_err_set(err, BS_ECONFIG, "%s: invalid JSON", file);
        goto done;
    }
    if (!cJSON_IsObject(c->root)) {
        rc = bs_err_set(err, BS_ECONFIG, "%s: expected a JSON object", file);
        goto done;
    }
    if ((it = cJSON_GetObjectItemCaseSensitive(c->root, "name"))) {
        if (!cJSON_IsString(it)) {
            rc = bs_err_set(err, BS_ECONFIG, "%s: name: expected a string", file);
            goto done;
        }
        if (!(c->name = bs_strdup(it->valuestring))) {
            rc = bs_err_set(err, BS_ENOMEM, "out of memory");
            goto done;
        }
    }
    if ((rc = bs_campaign_obj_key(file, c->root, "data", "data", &data, err)) ||
        (rc = bs_campaign_obj_key(file, data, "eval", "data.eval", &eval, err)) ||
        (rc = bs_campaign_obj_key(file, data, "calibration", "data.calibration", &cal, err)) ||
        (rc = s_path_key(file, c->root, "model", "model", &c->model, err)) ||
        (rc = s_path_key(file, eval, "images", "data.eval.images", &c->images, err)) ||
        (rc = s_path_key(file, eval, "labels", "data.eval.labels", &c->labels, err)) ||
        (rc = s_path_key(file, cal, "images", "data.calibration.images", &c->calib, err)) ||
        (rc = bs_campaign_count_key(file, eval, "count", "data.eval.count", &c->count, NULL,
                                    err)))
        goto done;
    if (eval && !c->images) {
        rc = bs_err_set(err, BS_ECONFIG, "%s: data.eval.images: required key missing (a file "
                                         "path)", file);
        goto done;
    }
    if (cal && !c->calib) {
        rc = bs_err_set(err, BS_ECONFIG, "%s: data.calibration.images: required key missing "
                                         "(a file path)", file);
        goto done;
    }
    c->calib_count = cal ? 256 : 0;
    if ((rc = bs_campaign_count_key(file, cal, "count", "data.calibration.count",
                                    &c->calib_count, NULL, err)))
        goto done;
    char where[512];
    snprintf(where, sizeof where, "%s: data.preprocess", file);
    if ((rc = bs_preprocess_from_json(
             data ? cJSON_GetObjectItemCaseSensitive(data, "preprocess") : NULL, where, &c->pre,
             err)))
        goto done;
    if ((rc = bs_quant_opts_from_json(cJSON_GetObjectItemCaseSensitive(c->root, "quantization"),
                                      &c->quant, err))) {
        bs_err_prefix(err, "%s", file);
        goto done;
    }
    c->quant.calib_images = c->calib;
    c->quant.calib_count = c->calib_count;
    c->quant.pre = &c->pre;
done:
    bs_free(text);
    if (rc)
        bs_campaign_file_free(c);
    return rc;
}

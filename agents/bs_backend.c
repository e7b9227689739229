/*
 * bs_backend.c - the backend registry: one static array, searched by name. Adding a backend
 * is one line here plus its bs_backend_<name>.c (see bs_backend.h). Also the sensitivity
 * result every backend's sensitivity entry fills, and its JSON form for RESULT.
 */
#include "bs_backend.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bs_alloc.h"
#include "bs_sensitivity.h"

static const bs_backend_ops_t *const s_registry[] = {
    &bs_backend_sim,
    &bs_backend_engine,
};

#define S_N_BACKENDS ((int)(sizeof s_registry / sizeof s_registry[0]))

const bs_backend_ops_t *bs_backend_find(const char *name)
{
    if (!name)
        return NULL;
    for (int i = 0; i < S_N_BACKENDS; i++)
        if (strcmp(s_registry[i]->name, name) == 0)
            return s_registry[i];
    return NULL;
}

int bs_backend_count(void)
{
    return S_N_BACKENDS;
}

const bs_backend_ops_t *bs_backend_at(int i)
{
    return i >= 0 && i < S_N_BACKENDS ? s_registry[i] : NULL;
}

cJSON *bs_backend_names(void)
{
    cJSON *arr = cJSON_CreateArray();
    if (!arr)
        return NULL;
    for (int i = 0; i < S_N_BACKENDS; i++) {
        cJSON *s = cJSON_CreateString(s_registry[i]->name);
        if (!s || !cJSON_AddItemToArray(arr, s)) {
            cJSON_Delete(s);
            cJSON_Delete(arr);
            return NULL;
        }
    }
    return arr;
}

bs_sens_fn bs_backend_sensitivity(const bs_backend_ops_t *ops)
{
    if (!ops)
        return NULL;
    return ops->sensitivity;
}

/* ---- sensitivity results ------------------------------------------------------------------- */

void bs_sens_result_init(bs_sens_result_t *r)
{
    memset(r, 0, sizeof *r);
    r->baseline = NAN;
}

void bs_sens_result_free(bs_sens_result_t *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->n; i++) {
        bs_free(r->items[i].layer);
        bs_free(r->items[i].error);
    }
    bs_free(r->items);
    bs_sens_result_init(r);
}

int bs_sens_result_add(bs_sens_result_t *r, const char *layer, bs_prec_t prec, double value,
                       const char *error)
{
    if (r->n == r->cap) {
        int cap = r->cap ? r->cap * 2 : 32;
        bs_sens_item_t *items = bs_realloc(r->items, sizeof *items * (size_t)cap);
        if (!items)
            return BS_ENOMEM;
        r->items = items;
        r->cap = cap;
    }
    bs_sens_item_t it = {bs_strdup(layer ? layer : ""), prec, value,
                         error ? bs_strdup(error) : NULL};
    if (!it.layer || (error && !it.error)) {
        bs_free(it.layer);
        bs_free(it.error);
        return BS_ENOMEM;
    }
    r->items[r->n++] = it;
    return 0;
}

/* value, or null when it is not a number. */
static int s_add_num(cJSON *o, const char *key, double v)
{
    return (isfinite(v) ? cJSON_AddNumberToObject(o, key, v) : cJSON_AddNullToObject(o, key)) !=
           NULL;
}

cJSON *bs_sens_result_to_json(const bs_sens_result_t *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *rows = cJSON_CreateArray();
    int ok = o && rows && cJSON_AddStringToObject(o, "metric", r->metric) &&
             cJSON_AddNumberToObject(o, "baseline", r->baseline) &&
             cJSON_AddBoolToObject(o, "simulated", r->simulated) &&
             cJSON_AddStringToObject(o, "backend", r->backend);
    for (int i = 0; ok && i < r->n; i++) {
        const bs_sens_item_t *it = &r->items[i];
        char p[BS_PREC_TEXT_MAX];
        bs_prec_format(it->prec, p);
        cJSON *row = cJSON_CreateObject();
        ok = row && cJSON_AddItemToArray(rows, row);
        if (!ok) {
            cJSON_Delete(row);
            break;
        }
        int known = isfinite(it->value) && isfinite(r->baseline);
        ok = cJSON_AddStringToObject(row, "layer", it->layer) &&
             cJSON_AddStringToObject(row, "precision", p) &&
             s_add_num(row, "value", known ? it->value : NAN) &&
             s_add_num(row, "delta", known ? it->value - r->baseline : NAN);
        if (ok && (it->error || !known)) {
            char e[1025]; /* RESULT.sensitivity.rows[].error holds at most 1024 bytes */
            snprintf(e, sizeof e, "%s", it->error ? it->error : "not measured");
            ok = cJSON_AddStringToObject(row, "error", e) != NULL;
        }
    }
    if (!ok) {
        cJSON_Delete(o);
        cJSON_Delete(rows);
        return NULL;
    }
    cJSON_AddItemToObject(o, "rows", rows);
    return o;
}

/*
 * bs_backend.c - the backend registry: one static array, searched by name. Adding a backend
 * is one line here plus its bs_backend_<name>.c (see bs_backend.h).
 */
#include "bs_backend.h"

#include <string.h>

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

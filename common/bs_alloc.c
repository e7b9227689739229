/*
 * bs_alloc.c - wrappers over malloc with a countdown that simulates exhaustion for tests.
 * The countdown is process-wide and not thread-safe on purpose: fault tests run single-threaded.
 */
#include "bs_alloc.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

static long s_fail_after = -1;

static int s_should_fail(void)
{
    if (s_fail_after < 0)
        return 0;
    if (s_fail_after == 0)
        return 1;
    s_fail_after--;
    return 0;
}

void bs_alloc_fail_after(long n)
{
    s_fail_after = n;
}

void *bs_malloc(size_t n)
{
    if (s_should_fail())
        return NULL;
    return malloc(n ? n : 1);
}

void *bs_calloc(size_t count, size_t size)
{
    if (s_should_fail())
        return NULL;
    return calloc(count ? count : 1, size ? size : 1);
}

void *bs_realloc(void *p, size_t n)
{
    if (s_should_fail())
        return NULL;
    return realloc(p, n ? n : 1);
}

void bs_free(void *p)
{
    free(p);
}

char *bs_strdup(const char *s)
{
    return s ? bs_strndup(s, strlen(s)) : NULL;
}

char *bs_strndup(const char *s, size_t n)
{
    if (!s)
        return NULL;
    size_t len = strnlen(s, n);
    char *d = bs_malloc(len + 1);
    if (!d)
        return NULL;
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

static void *s_cjson_malloc(size_t n)
{
    return bs_malloc(n);
}

void bs_alloc_init(void)
{
    cJSON_Hooks hooks = {s_cjson_malloc, bs_free};
    cJSON_InitHooks(&hooks);
}

/*
 * bs_error.c - tables generated from BS_ERRNO_MAP and the bs_err_t helpers.
 */
#include "bs_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *bs_strerror(int code)
{
    switch (code) {
#define BS__ERR_STR(name, value, desc)                                                           \
    case (value):                                                                                \
        return desc;
        BS_ERRNO_MAP(BS__ERR_STR)
#undef BS__ERR_STR
    }
    return "unknown error";
}

const char *bs_err_name(int code)
{
    switch (code) {
#define BS__ERR_NAME(name, value, desc)                                                          \
    case (value):                                                                                \
        return #name;
        BS_ERRNO_MAP(BS__ERR_NAME)
#undef BS__ERR_NAME
    }
    return "EUNKNOWN";
}

int bs_err_from_name(const char *name)
{
    if (!name)
        return 1;
#define BS__ERR_FROM(n, value, desc)                                                             \
    if (strcmp(name, #n) == 0)                                                                   \
        return (value);
    BS_ERRNO_MAP(BS__ERR_FROM)
#undef BS__ERR_FROM
    return 1;
}

int bs_err_set(bs_err_t *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        err->code = code;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

int bs_err_prefix(bs_err_t *err, const char *fmt, ...)
{
    if (!err)
        return BS_EINVAL;
    char prefix[BS_ERR_MSG_MAX];
    char old[BS_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    size_t n = strnlen(prefix, sizeof err->msg - 3);
    memcpy(err->msg, prefix, n);
    memcpy(err->msg + n, ": ", 2);
    n += 2;
    size_t m = strnlen(old, sizeof err->msg - 1 - n);
    memcpy(err->msg + n, old, m);
    err->msg[n + m] = '\0';
    return err->code;
}

void bs_err_clear(bs_err_t *err)
{
    if (err) {
        err->code = 0;
        err->msg[0] = '\0';
    }
}

/*
 * bs_error.h - the one error vocabulary of bitscout.
 *
 * Every fallible function returns 0 or a negative BS_E* code. The codes come from one X-macro
 * table, which also generates bs_strerror() and bs_err_name(); the names double as the typed
 * error codes that travel in protocol messages ("EMODEL") and in the database's error_code
 * column, so a code means the same thing everywhere. Errors from errno, SQLite, ZeroMQ and libuv
 * are translated into these at the module boundary.
 *
 * Where a caller needs to know *what* went wrong (which file, key, node), functions also take a
 * bs_err_t: a code plus a human message filled by bs_err_set(). A NULL bs_err_t is allowed.
 */
#ifndef BS_ERROR_H
#define BS_ERROR_H

#include <stddef.h>

/* X(name, value, description) */
#define BS_ERRNO_MAP(X)                                                                          \
    X(OK, 0, "success")                                                                          \
    X(ENOMEM, -1, "out of memory")                                                               \
    X(EINVAL, -2, "invalid argument")                                                            \
    X(EIO, -3, "input/output error")                                                             \
    X(ENOENT, -4, "no such file or entry")                                                       \
    X(EPROTO, -5, "malformed protocol message")                                                  \
    X(EVERSION, -6, "unsupported protocol version")                                              \
    X(ETOOBIG, -7, "message or file too large")                                                  \
    X(EDB, -8, "database error")                                                                 \
    X(EZMQ, -9, "ZeroMQ error")                                                                  \
    X(EUV, -10, "event loop error")                                                              \
    X(ECONFIG, -11, "invalid campaign configuration")                                            \
    X(EMODEL, -12, "invalid or unsupported model")                                               \
    X(ETIMEOUT, -13, "timed out")                                                                \
    X(EBUSY, -14, "busy")                                                                        \
    X(EHASH, -15, "content hash mismatch")                                                       \
    X(EUNSUPPORTED, -16, "not supported")                                                        \
    X(EEXIST, -17, "already exists")                                                             \
    X(EAGAIN, -18, "nothing available now, try again")                                           \
    X(EEXHAUSTED, -19, "search space exhausted")                                                 \
    X(EDATA, -20, "invalid data file")                                                           \
    X(ELEASE, -21, "job lease expired")                                                          \
    X(EAGENT, -22, "agent lost")                                                                 \
    X(EHELLO, -23, "unknown agent: send HELLO first")                                            \
    X(EBACKEND, -24, "backend failure")                                                          \
    X(ECANCELED, -25, "canceled")

enum {
#define BS__ERR_ENUM(name, value, desc) BS_##name = (value),
    BS_ERRNO_MAP(BS__ERR_ENUM)
#undef BS__ERR_ENUM
};

/* Human description of a code; never NULL. */
const char *bs_strerror(int code);
/* Stable name of a code, e.g. "EMODEL"; "EUNKNOWN" for codes outside the table. */
const char *bs_err_name(int code);
/* Inverse of bs_err_name(); returns BS_EINVAL... for unknown names it returns 1 (not an error
 * code) so callers can tell "unknown" apart. */
int bs_err_from_name(const char *name);

#define BS_ERR_MSG_MAX 512

typedef struct bs_err {
    int code;                  /* a BS_E* code, 0 when nothing failed */
    char msg[BS_ERR_MSG_MAX];  /* what failed and what was expected */
} bs_err_t;

/* Fills *err (if not NULL) with code and a printf-style message; returns code. */
int bs_err_set(bs_err_t *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prefixes the existing message with "prefix: " (e.g. a file name); returns err->code. */
int bs_err_prefix(bs_err_t *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void bs_err_clear(bs_err_t *err);

#endif

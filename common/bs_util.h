/*
 * bs_util.h - small helpers shared by the searcher and the agent: clocks, whole-file I/O,
 * SHA-256 (libsodium), paths, a seeded random generator and a growable string buffer.
 */
#ifndef BS_UTIL_H
#define BS_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "bs_error.h"

#define BS_SHA256_HEX_LEN 64 /* hex digits; buffers are BS_SHA256_HEX_LEN + 1 */

uint64_t bs_now_ms(void);  /* CLOCK_MONOTONIC, milliseconds */
double bs_now_s(void);     /* CLOCK_MONOTONIC, seconds */
int64_t bs_wall_ms(void);  /* CLOCK_REALTIME, milliseconds since the epoch */
/* "2026-11-27T16:01:02.123Z"; out must hold 32 bytes. */
void bs_iso8601(int64_t wall_ms, char out[32]);

/* Reads a whole file; *out is the caller's (bs_free), NUL-terminated beyond *len.
 * Files larger than max bytes fail with BS_ETOOBIG. err names the path. */
int bs_read_file(const char *path, size_t max, char **out, size_t *len, bs_err_t *err);
/* Writes atomically: path.tmp then rename. */
int bs_write_file(const char *path, const void *buf, size_t len, bs_err_t *err);

/* SHA-256 of a buffer / a file, as lowercase hex. bs_sha256_file also returns the size. */
void bs_sha256_hex(const void *buf, size_t len, char hex[BS_SHA256_HEX_LEN + 1]);
int bs_sha256_file(const char *path, char hex[BS_SHA256_HEX_LEN + 1], uint64_t *size,
                   bs_err_t *err);
int bs_is_sha256_hex(const char *s); /* 64 lowercase hex digits */

/* Resolves rel against the directory of base_file (absolute rel is returned as is).
 * Caller frees. */
char *bs_path_resolve(const char *base_file, const char *rel);
int bs_mkdir_p(const char *path, bs_err_t *err);
/* Directory of the running executable (from /proc/self/exe); caller frees. */
char *bs_exe_dir(void);

/* FNV-1a hash of a NUL-terminated string, for the open-addressing name tables. */
uint64_t bs_hash_str(const char *s);

/* Glob match of a layer name ("*", "?", "[abc]") via fnmatch. */
int bs_glob_match(const char *pattern, const char *name);

/* splitmix64-seeded xoshiro256** generator: reproducible across platforms. */
typedef struct bs_rng {
    uint64_t s[4];
} bs_rng_t;
void bs_rng_seed(bs_rng_t *r, uint64_t seed);
uint64_t bs_rng_next(bs_rng_t *r);
uint32_t bs_rng_below(bs_rng_t *r, uint32_t n); /* uniform in [0, n), n > 0 */
double bs_rng_uniform(bs_rng_t *r);             /* [0, 1) */

/* Growable NUL-terminated string buffer. */
typedef struct bs_buf {
    char *data; /* owned; NULL until the first append */
    size_t len;
    size_t cap;
    int oom;    /* set once an append failed; later appends are no-ops */
} bs_buf_t;
void bs_buf_append(bs_buf_t *b, const char *s, size_t n);
void bs_buf_printf(bs_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void bs_buf_free(bs_buf_t *b);

/* Parses a CPU list ("0-3,6": numbers and ascending ranges, comma-separated) into mask (bit i:
 * CPU i, i < 1024). Returns 0, or BS_EINVAL for an empty or malformed list. */
int bs_cpulist_parse(const char *list, unsigned char mask[128]);

#endif

/*
 * bs_util.c - clocks, file I/O, hashing and the other helpers declared in bs_util.h.
 * Hashing uses libsodium's crypto_hash_sha256 (streaming for files, so a model of any size is
 * hashed in 64 KiB steps).
 */
#define _GNU_SOURCE
#include "bs_util.h"
#include "bs_alloc.h"

#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

uint64_t bs_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

double bs_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int64_t bs_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void bs_iso8601(int64_t wall_ms, char out[32])
{
    time_t t = (time_t)(wall_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03dZ", (int)(wall_ms % 1000));
}

int bs_read_file(const char *path, size_t max, char **out, size_t *len, bs_err_t *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return bs_err_set(err, errno == ENOENT ? BS_ENOENT : BS_EIO, "%s: cannot open: %s",
                          path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return bs_err_set(err, BS_EIO, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > (uint64_t)max) {
        fclose(f);
        return bs_err_set(err, BS_ETOOBIG, "%s: %lld bytes, more than the limit of %zu", path,
                          (long long)st.st_size, max);
    }
    size_t n = (size_t)st.st_size;
    char *buf = bs_malloc(n + 1);
    if (!buf) {
        fclose(f);
        return bs_err_set(err, BS_ENOMEM, "%s: out of memory", path);
    }
    if (n && fread(buf, 1, n, f) != n) {
        bs_free(buf);
        fclose(f);
        return bs_err_set(err, BS_EIO, "%s: read failed", path);
    }
    fclose(f);
    buf[n] = '\0';
    *out = buf;
    if (len)
        *len = n;
    return 0;
}

int bs_write_file(const char *path, const void *buf, size_t len, bs_err_t *err)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return bs_err_set(err, BS_EINVAL, "%s: path too long", path);
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return bs_err_set(err, BS_EIO, "%s: cannot create: %s", tmp, strerror(errno));
    int ok = fwrite(buf, 1, len, f) == len;
    ok = (fflush(f) == 0) && ok;
    ok = (fsync(fileno(f)) == 0) && ok;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return bs_err_set(err, BS_EIO, "%s: write failed: %s", path, strerror(errno));
    }
    return 0;
}

static void s_hex(const unsigned char *d, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[d[i] >> 4];
        out[2 * i + 1] = digits[d[i] & 15];
    }
    out[2 * n] = '\0';
}

void bs_sha256_hex(const void *buf, size_t len, char hex[BS_SHA256_HEX_LEN + 1])
{
    unsigned char d[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(d, buf, len);
    s_hex(d, sizeof d, hex);
}

int bs_sha256_file(const char *path, char hex[BS_SHA256_HEX_LEN + 1], uint64_t *size,
                   bs_err_t *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return bs_err_set(err, errno == ENOENT ? BS_ENOENT : BS_EIO, "%s: cannot open: %s",
                          path, strerror(errno));
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    unsigned char chunk[65536];
    uint64_t total = 0;
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        crypto_hash_sha256_update(&st, chunk, n);
        total += n;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad)
        return bs_err_set(err, BS_EIO, "%s: read failed", path);
    unsigned char d[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final(&st, d);
    s_hex(d, sizeof d, hex);
    if (size)
        *size = total;
    return 0;
}

int bs_is_sha256_hex(const char *s)
{
    if (!s)
        return 0;
    for (int i = 0; i < BS_SHA256_HEX_LEN; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return 0;
    }
    return s[BS_SHA256_HEX_LEN] == '\0';
}

char *bs_path_resolve(const char *base_file, const char *rel)
{
    if (!rel)
        return NULL;
    if (rel[0] == '/' || !base_file)
        return bs_strdup(rel);
    const char *slash = strrchr(base_file, '/');
    if (!slash)
        return bs_strdup(rel);
    size_t dlen = (size_t)(slash - base_file);
    size_t rlen = strlen(rel);
    char *out = bs_malloc(dlen + 1 + rlen + 1);
    if (!out)
        return NULL;
    memcpy(out, base_file, dlen);
    out[dlen] = '/';
    memcpy(out + dlen + 1, rel, rlen + 1);
    return out;
}

int bs_mkdir_p(const char *path, bs_err_t *err)
{
    char tmp[PATH_MAX];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof tmp)
        return bs_err_set(err, BS_EINVAL, "bad directory path '%s'", path);
    memcpy(tmp, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (tmp[i] == '/' || tmp[i] == '\0') {
            char c = tmp[i];
            tmp[i] = '\0';
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
                return bs_err_set(err, BS_EIO, "%s: cannot create directory: %s", tmp,
                                  strerror(errno));
            tmp[i] = c;
        }
    }
    return 0;
}

char *bs_exe_dir(void)
{
    char p[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", p, sizeof p - 1);
    if (n <= 0)
        return NULL;
    p[n] = '\0';
    char *slash = strrchr(p, '/');
    if (!slash)
        return NULL;
    *slash = '\0';
    return bs_strdup(p);
}

uint64_t bs_hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
    return h;
}

int bs_glob_match(const char *pattern, const char *name)
{
    return fnmatch(pattern, name, 0) == 0;
}

static uint64_t s_splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void bs_rng_seed(bs_rng_t *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = s_splitmix(&seed);
}

static uint64_t s_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t bs_rng_next(bs_rng_t *r)
{
    uint64_t *s = r->s;
    uint64_t result = s_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = s_rotl(s[3], 45);
    return result;
}

uint32_t bs_rng_below(bs_rng_t *r, uint32_t n)
{
    /* Lemire's multiply-shift with rejection: unbiased. */
    uint64_t m = (uint64_t)(uint32_t)(bs_rng_next(r) >> 32) * n;
    uint32_t low = (uint32_t)m;
    if (low < n) {
        uint32_t thresh = (uint32_t)(-n) % n;
        while (low < thresh) {
            m = (uint64_t)(uint32_t)(bs_rng_next(r) >> 32) * n;
            low = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

double bs_rng_uniform(bs_rng_t *r)
{
    return (double)(bs_rng_next(r) >> 11) * 0x1.0p-53;
}

void bs_buf_append(bs_buf_t *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = bs_realloc(b->data, cap);
        if (!d) {
            b->oom = 1;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void bs_buf_printf(bs_buf_t *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof small) {
        bs_buf_append(b, small, (size_t)n);
        return;
    }
    char *big = bs_malloc((size_t)n + 1);
    if (!big) {
        b->oom = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    bs_buf_append(b, big, (size_t)n);
    bs_free(big);
}

void bs_buf_free(bs_buf_t *b)
{
    bs_free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->oom = 0;
}

int bs_cpulist_parse(const char *list, unsigned char mask[128])
{
    memset(mask, 0, 128);
    const char *p = list;
    int any = 0;
    while (p && *p) {
        char *end;
        long a = strtol(p, &end, 10), b;
        if (end == p || a < 0 || a >= 1024)
            return BS_EINVAL;
        b = a;
        p = end;
        if (*p == '-') {
            b = strtol(p + 1, &end, 10);
            if (end == p + 1 || b < a || b >= 1024)
                return BS_EINVAL;
            p = end;
        }
        for (long i = a; i <= b; i++)
            mask[i / 8] |= (unsigned char)(1u << (i % 8));
        any = 1;
        if (*p == ',')
            p++;
        else if (*p)
            return BS_EINVAL;
    }
    return any ? 0 : BS_EINVAL;
}

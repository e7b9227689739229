/*
 * bs_cache.c - the content-addressed file cache of the agent (see bs_cache.h).
 *
 * The cache object keeps the directory name and a small growable list of hashes verified in
 * this process. A download holds an open file descriptor on "<dir>/<sha>.<pid>.<n>.part" and
 * the count of bytes written; bytes must arrive in order (the agent asks for one chunk at a
 * time). Finishing flushes and fsyncs the file, hashes it with bs_sha256_file, and renames it
 * to "<dir>/<sha>": rename() is atomic, so readers see either no file or the whole file.
 */
#include "bs_cache.h"
#include "bs_alloc.h"
#include "bs_log.h"
#include "bs_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct bs_cache {
    char *dir;       /* owned: the directory, without a trailing slash */
    char **verified; /* owned: hashes verified in this process (owned strings) */
    size_t n_verified;
    size_t cap_verified;
    unsigned seq; /* counter for unique .part names */
};

struct bs_cache_dl {
    char sha[BS_SHA256_HEX_LEN + 1];
    char *part_path;   /* owned: the .part file */
    char *final_path;  /* owned: "<dir>/<sha>" */
    int fd;            /* open on part_path, -1 once closed */
    uint64_t size;     /* announced size */
    uint64_t received; /* bytes written */
};

static int s_check_sha(const char *sha, bs_err_t *err)
{
    if (!bs_is_sha256_hex(sha))
        return bs_err_set(err, BS_EINVAL,
                          "cache: '%.80s' is not a sha256 (64 lowercase hex "
                          "digits)",
                          sha ? sha : "(null)");
    return 0;
}

int bs_cache_open(const char *dir, bs_cache_t **out, bs_err_t *err)
{
    *out = NULL;
    if (!dir || !*dir)
        return bs_err_set(err, BS_EINVAL, "cache: empty directory path");
    int rc = bs_mkdir_p(dir, err);
    if (rc)
        return rc;
    bs_cache_t *c = bs_calloc(1, sizeof *c);
    if (!c)
        return bs_err_set(err, BS_ENOMEM, "cache: out of memory");
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    c->dir = bs_strndup(dir, n);
    if (!c->dir) {
        bs_free(c);
        return bs_err_set(err, BS_ENOMEM, "cache: out of memory");
    }
    *out = c;
    return 0;
}

void bs_cache_close(bs_cache_t **cp)
{
    if (!cp || !*cp)
        return;
    bs_cache_t *c = *cp;
    for (size_t i = 0; i < c->n_verified; i++)
        bs_free(c->verified[i]);
    bs_free(c->verified);
    bs_free(c->dir);
    bs_free(c);
    *cp = NULL;
}

const char *bs_cache_dir(const bs_cache_t *c)
{
    return c->dir;
}

static char *s_join(const char *dir, const char *name, const char *suffix)
{
    size_t n = strlen(dir) + 1 + strlen(name) + strlen(suffix) + 1;
    char *p = bs_malloc(n);
    if (p)
        snprintf(p, n, "%s/%s%s", dir, name, suffix);
    return p;
}

int bs_cache_path(const bs_cache_t *c, const char *sha, char **out, bs_err_t *err)
{
    *out = NULL;
    int rc = s_check_sha(sha, err);
    if (rc)
        return rc;
    *out = s_join(c->dir, sha, "");
    return *out ? 0 : bs_err_set(err, BS_ENOMEM, "cache: out of memory");
}

static int s_is_verified(const bs_cache_t *c, const char *sha)
{
    for (size_t i = 0; i < c->n_verified; i++)
        if (strcmp(c->verified[i], sha) == 0)
            return 1;
    return 0;
}

static void s_forget(bs_cache_t *c, const char *sha)
{
    for (size_t i = 0; i < c->n_verified; i++) {
        if (strcmp(c->verified[i], sha) == 0) {
            bs_free(c->verified[i]);
            c->verified[i] = c->verified[--c->n_verified];
            return;
        }
    }
}

/* Remembers sha as verified; on OOM it is simply hashed again next time. */
static void s_remember(bs_cache_t *c, const char *sha)
{
    if (s_is_verified(c, sha))
        return;
    if (c->n_verified == c->cap_verified) {
        size_t cap = c->cap_verified ? c->cap_verified * 2 : 16;
        char **v = bs_realloc(c->verified, cap * sizeof *v);
        if (!v)
            return;
        c->verified = v;
        c->cap_verified = cap;
    }
    char *s = bs_strdup(sha);
    if (s)
        c->verified[c->n_verified++] = s;
}

int bs_cache_has_verified(bs_cache_t *c, const char *sha, int64_t expected_size, bs_err_t *err)
{
    char *path;
    int rc = bs_cache_path(c, sha, &path, err);
    if (rc)
        return rc;
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
        s_forget(c, sha);
        bs_free(path);
        return 0;
    }
    if (expected_size >= 0 && (int64_t)st.st_size != expected_size) {
        BS_WARN("agent", "cache: %s has %lld bytes, expected %lld: deleting it", path,
                (long long)st.st_size, (long long)expected_size);
        s_forget(c, sha);
        unlink(path);
        bs_free(path);
        return 0;
    }
    if (s_is_verified(c, sha)) {
        bs_free(path);
        return 1;
    }
    char hex[BS_SHA256_HEX_LEN + 1];
    rc = bs_sha256_file(path, hex, NULL, err);
    if (rc == BS_ENOENT) {
        bs_free(path);
        bs_err_clear(err);
        return 0;
    }
    if (rc) {
        bs_free(path);
        return rc;
    }
    if (strcmp(hex, sha) != 0) {
        BS_WARN("agent", "cache: %s hashes to %s: deleting it", path, hex);
        unlink(path);
        bs_free(path);
        return 0;
    }
    s_remember(c, sha);
    bs_free(path);
    return 1;
}

static void s_dl_free(bs_cache_dl_t *d)
{
    if (d->fd >= 0)
        close(d->fd);
    bs_free(d->part_path);
    bs_free(d->final_path);
    bs_free(d);
}

int bs_cache_begin(bs_cache_t *c, const char *sha, uint64_t size, bs_cache_dl_t **out,
                   bs_err_t *err)
{
    *out = NULL;
    int rc = s_check_sha(sha, err);
    if (rc)
        return rc;
    bs_cache_dl_t *d = bs_calloc(1, sizeof *d);
    if (!d)
        return bs_err_set(err, BS_ENOMEM, "cache: out of memory");
    d->fd = -1;
    memcpy(d->sha, sha, sizeof d->sha);
    d->size = size;
    char suffix[64];
    snprintf(suffix, sizeof suffix, ".%ld.%u.part", (long)getpid(), c->seq++);
    d->part_path = s_join(c->dir, sha, suffix);
    d->final_path = s_join(c->dir, sha, "");
    if (!d->part_path || !d->final_path) {
        s_dl_free(d);
        return bs_err_set(err, BS_ENOMEM, "cache: out of memory");
    }
    d->fd = open(d->part_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (d->fd < 0) {
        rc =
            bs_err_set(err, BS_EIO, "cache: %s: cannot create: %s", d->part_path, strerror(errno));
        s_dl_free(d);
        return rc;
    }
    *out = d;
    return 0;
}

int bs_cache_append(bs_cache_dl_t *d, uint64_t offset, const void *buf, size_t len, bs_err_t *err)
{
    if (offset != d->received)
        return bs_err_set(err, BS_EPROTO, "file %s: bytes at offset %llu, expected offset %llu",
                          d->sha, (unsigned long long)offset, (unsigned long long)d->received);
    if (len > d->size - d->received)
        return bs_err_set(err, BS_EPROTO,
                          "file %s: %zu bytes at offset %llu run past its "
                          "size of %llu bytes",
                          d->sha, len, (unsigned long long)offset, (unsigned long long)d->size);
    const unsigned char *p = buf;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(d->fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return bs_err_set(err, BS_EIO, "cache: %s: write failed: %s", d->part_path,
                              w < 0 ? strerror(errno) : "no progress");
        p += w;
        left -= (size_t)w;
    }
    d->received += len;
    return 0;
}

uint64_t bs_cache_dl_received(const bs_cache_dl_t *d)
{
    return d->received;
}

uint64_t bs_cache_dl_size(const bs_cache_dl_t *d)
{
    return d->size;
}

const char *bs_cache_dl_sha(const bs_cache_dl_t *d)
{
    return d->sha;
}

int bs_cache_finish(bs_cache_t *c, bs_cache_dl_t **dp, bs_err_t *err)
{
    bs_cache_dl_t *d = *dp;
    *dp = NULL;
    int rc = 0;
    if (d->received != d->size) {
        rc = bs_err_set(err, BS_EPROTO, "file %s: %llu of %llu bytes received", d->sha,
                        (unsigned long long)d->received, (unsigned long long)d->size);
        goto fail;
    }
    int bad = fsync(d->fd) != 0;
    bad = (close(d->fd) != 0) || bad;
    d->fd = -1;
    if (bad) {
        rc = bs_err_set(err, BS_EIO, "cache: %s: write failed: %s", d->part_path, strerror(errno));
        goto fail;
    }
    char hex[BS_SHA256_HEX_LEN + 1];
    if ((rc = bs_sha256_file(d->part_path, hex, NULL, err)) != 0)
        goto fail;
    if (strcmp(hex, d->sha) != 0) {
        rc = bs_err_set(err, BS_EHASH, "file %s: the %llu bytes received hash to %s", d->sha,
                        (unsigned long long)d->size, hex);
        goto fail;
    }
    if (rename(d->part_path, d->final_path) != 0) {
        rc = bs_err_set(err, BS_EIO, "cache: cannot rename %s to %s: %s", d->part_path,
                        d->final_path, strerror(errno));
        goto fail;
    }
    s_remember(c, d->sha);
    s_dl_free(d);
    return 0;
fail:
    unlink(d->part_path);
    s_dl_free(d);
    return rc;
}

void bs_cache_discard(bs_cache_dl_t **dp)
{
    if (!dp || !*dp)
        return;
    bs_cache_dl_t *d = *dp;
    if (d->fd >= 0) {
        close(d->fd);
        d->fd = -1;
    }
    unlink(d->part_path);
    s_dl_free(d);
    *dp = NULL;
}

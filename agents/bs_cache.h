/*
 * bs_cache.h - the agent's content-addressed file cache.
 *
 * Every file a job needs (model, evaluation and calibration data) travels by its SHA-256 and
 * lives in the cache directory under that hash: "<dir>/<sha256>". A download goes to a private
 * ".part" file next to it, is hashed when complete and renamed into place atomically, so a
 * crash or a wrong byte never leaves a file under a name it does not hash to. A file already in
 * the cache is hashed once per cache object (once per agent process) and remembered as
 * verified; a cached file that does not hash to its name is deleted and fetched again.
 *
 * Several agents (different --name) may share one directory: ".part" names carry the process
 * id and a counter, so two concurrent downloads of the same file never write the same file.
 *
 * A sha is accepted only as 64 lowercase hex digits: it becomes a file name, so anything else
 * ("../x", "a/b") is refused with BS_EINVAL before it touches the file system.
 *
 * Not thread-safe: one thread (the agent's loop thread) owns a cache object.
 */
#ifndef BS_CACHE_H
#define BS_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "bs_error.h"

typedef struct bs_cache bs_cache_t;
typedef struct bs_cache_dl bs_cache_dl_t; /* one download in progress */

/* Opens (creating with mkdir -p) the cache directory. *out is the caller's (bs_cache_close).
 * Errors: BS_EINVAL (empty path), BS_EIO (cannot create), BS_ENOMEM; err names the path. */
int bs_cache_open(const char *dir, bs_cache_t **out, bs_err_t *err);
/* Closes the cache and clears the caller's pointer; NULL and *c == NULL are fine. Downloads
 * still open must be discarded first. */
void bs_cache_close(bs_cache_t **c);
/* The cache directory, as given to bs_cache_open; borrowed. */
const char *bs_cache_dir(const bs_cache_t *c);

/* "<dir>/<sha>" in *out (the caller's, bs_free). BS_EINVAL if sha is not 64 lowercase hex,
 * BS_ENOMEM. */
int bs_cache_path(const bs_cache_t *c, const char *sha, char **out, bs_err_t *err);

/* 1: "<dir>/<sha>" exists, has expected_size bytes (any size if expected_size < 0) and hashes
 * to sha (hashed once per cache object, then remembered). 0: not there, or there but wrong
 * (a wrong file is deleted, with a warning). Negative BS_E* code: bad sha (BS_EINVAL), or an
 * I/O error while hashing (BS_EIO). */
int bs_cache_has_verified(bs_cache_t *c, const char *sha, int64_t expected_size, bs_err_t *err);

/* Starts a download of size bytes for sha into a fresh ".part" file. *out is the caller's: it
 * ends with bs_cache_finish or bs_cache_discard. Errors: BS_EINVAL (bad sha), BS_EIO. */
int bs_cache_begin(bs_cache_t *c, const char *sha, uint64_t size, bs_cache_dl_t **out,
                   bs_err_t *err);
/* Appends len bytes that belong at offset. BS_EPROTO if offset is not where the download
 * stands or the bytes would run past the announced size; BS_EIO on a write error. */
int bs_cache_append(bs_cache_dl_t *d, uint64_t offset, const void *buf, size_t len, bs_err_t *err);
uint64_t bs_cache_dl_received(const bs_cache_dl_t *d); /* bytes appended so far */
uint64_t bs_cache_dl_size(const bs_cache_dl_t *d);     /* bytes announced at begin */
const char *bs_cache_dl_sha(const bs_cache_dl_t *d);   /* borrowed */
/* Completes a download: the size must be complete (else BS_EPROTO), the bytes must hash to
 * the sha (else BS_EHASH: the .part file is deleted), then the file is renamed into place and
 * remembered as verified. Always frees the download and clears *d. */
int bs_cache_finish(bs_cache_t *c, bs_cache_dl_t **d, bs_err_t *err);
/* Abandons a download: closes and deletes its .part file, frees it, clears *d. NULL is fine. */
void bs_cache_discard(bs_cache_dl_t **d);

#endif

/*
 * bs_idx.h - IDX files, the format of MNIST and its family (Fashion-MNIST, KMNIST, EMNIST).
 *
 * An IDX file is a 4-byte magic (two zero bytes, a type code, the number of dimensions), one
 * big-endian uint32 per dimension, then the elements in row-major order. Images are
 * "idx3-ubyte" ([N, H, W] of uint8), labels "idx1-ubyte" ([N] of uint8). Only unsigned bytes
 * (type 0x08) are read; other type codes are refused by name. Files are raw or gzipped
 * (detected from the content, not the name); reading stops at a size cap so a hostile file
 * cannot exhaust memory. Every malformed file gets an error that names the file and says what
 * is wrong (bad magic, too many dimensions, a zero dimension, truncated data, trailing bytes,
 * a corrupt gzip stream).
 */
#ifndef BS_IDX_H
#define BS_IDX_H

#include <stddef.h>
#include <stdint.h>

#include "bs_error.h"

#define BS_IDX_MAX_DIMS 8
/* Default cap on the decompressed size of a data file. */
#define BS_IDX_MAX_BYTES ((size_t)1 << 30)

typedef struct bs_idx {
    int ndim;                      /* 1..BS_IDX_MAX_DIMS */
    int64_t dims[BS_IDX_MAX_DIMS]; /* each >= 1 */
    uint8_t *data;                 /* owned (bs_malloc): prod(dims) bytes */
    size_t nbytes;
} bs_idx_t;

/* Reads a whole file, gunzipping it when it is gzipped (raw files pass through). *out is the
 * caller's (bs_free), with *len bytes; BS_ETOOBIG past max bytes (decompressed), BS_EDATA for
 * a corrupt gzip stream, BS_ENOENT / BS_EIO when it cannot be read. err names the path. */
int bs_idx_read_all(const char *path, size_t max, uint8_t **out, size_t *len, bs_err_t *err);

/* Gunzips a gzip stream held in memory into a new buffer (*out, the caller's: bs_free), at
 * most max bytes. BS_EDATA (naming `name`) for a truncated or corrupt stream. */
int bs_idx_gunzip(const void *buf, size_t len, const char *name, size_t max, uint8_t **out,
                  size_t *out_len, bs_err_t *err);
/* 1 if buf starts with the gzip magic. */
int bs_idx_is_gzip(const void *buf, size_t len);

/* Parses an IDX file held in memory (raw or gzipped). name is used in messages only. out is
 * the caller's (bs_idx_free) on success and zeroed on failure. BS_EDATA for a malformed file,
 * BS_EUNSUPPORTED for a type other than unsigned bytes, BS_ETOOBIG past max bytes. */
int bs_idx_parse(const void *buf, size_t len, const char *name, size_t max, bs_idx_t *out,
                 bs_err_t *err);
/* Reads and parses the file at path (max as above). */
int bs_idx_load(const char *path, size_t max, bs_idx_t *out, bs_err_t *err);
void bs_idx_free(bs_idx_t *x); /* frees data, zeroes *x; NULL-safe */

/* Writes uint8 data of the given dims as an IDX file, gzipped when gzip is nonzero. */
int bs_idx_save(const char *path, int ndim, const int64_t *dims, const uint8_t *data, int gzip,
                bs_err_t *err);

#endif

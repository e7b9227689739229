/*
 * bs_npy.h - NumPy .npy files: read and write, for model inputs, outputs and data sets.
 *
 * A .npy file is the magic "\x93NUMPY", a version (1.0, 2.0 or 3.0), the header's length
 * (uint16 little-endian in v1, uint32 in v2/v3), a header that is a Python dict literal
 * {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } padded with spaces to a multiple
 * of 64 bytes and ended by '\n', then the elements in C order. Supported element types (descr)
 * are '<f4' (float32), '|u1' (uint8), '|i1' (int8), '<i4' (int32) and '<i8' (int64), with the
 * engine's dtype numbers (bs_tensor.h); fortran_order must be False. Everything else (big
 * endian, other types, Fortran order, a malformed header, truncated data, bytes after the data)
 * gets an error naming the file and what is wrong. Writing always produces v1: the header of
 * an array of at most 8 dimensions fits its 16-bit length.
 */
#ifndef BS_NPY_H
#define BS_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "bs_error.h"

#define BS_NPY_MAX_DIMS 8
#define BS_NPY_MAX_BYTES ((size_t)1 << 30) /* default cap on a file's size */

typedef struct bs_npy {
    int dtype;                     /* BS_DT_FLOAT, _UINT8, _INT8, _INT32 or _INT64 */
    int ndim;                      /* 0 (a scalar) .. BS_NPY_MAX_DIMS */
    int64_t dims[BS_NPY_MAX_DIMS]; /* each >= 0 */
    void *data;                    /* owned (bs_malloc), nbytes; not NULL on success */
    size_t nbytes;
} bs_npy_t;

/* Parses a .npy file held in memory. name is used in messages only. out is the caller's
 * (bs_npy_free) on success and zeroed on failure. BS_EDATA for a malformed file,
 * BS_EUNSUPPORTED for a valid file this reader does not take (type, byte order, Fortran
 * order), BS_ETOOBIG when the data exceeds max bytes. */
int bs_npy_parse(const void *buf, size_t len, const char *name, size_t max, bs_npy_t *out,
                 bs_err_t *err);
/* Reads and parses the file at path (at most max bytes). */
int bs_npy_load(const char *path, size_t max, bs_npy_t *out, bs_err_t *err);
void bs_npy_free(bs_npy_t *a); /* frees data, zeroes *a; NULL-safe */

/* Writes data (prod(dims) elements of dtype, C order) as a .npy file. */
int bs_npy_save(const char *path, int dtype, int ndim, const int64_t *dims, const void *data,
                bs_err_t *err);
/* Serialises into a new buffer (caller frees *out with bs_free). */
int bs_npy_encode(int dtype, int ndim, const int64_t *dims, const void *data, uint8_t **out,
                  size_t *len, bs_err_t *err);

/* 1 if buf starts with the .npy magic. */
int bs_npy_is_npy(const void *buf, size_t len);

#endif

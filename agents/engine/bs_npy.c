/*
 * bs_npy.c - .npy reader and writer (see bs_npy.h).
 *
 * The header dict is parsed by a small recursive-descent reader that accepts exactly what
 * NumPy writes (and what a careful hand would): single- or double-quoted keys, the three keys
 * descr / fortran_order / shape once each in any order, a trailing comma, whitespace anywhere
 * between tokens. The element count is computed with overflow checks against the cap before
 * anything is allocated, and the data is copied into its own (aligned) buffer.
 */
#include "bs_npy.h"

#include "bs_alloc.h"
#include "bs_tensor.h"
#include "bs_util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char s_magic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

static const struct {
    const char *descr;
    int dtype;
} s_types[] = {
    {"<f4", BS_DT_FLOAT}, {"|u1", BS_DT_UINT8}, {"|i1", BS_DT_INT8},
    {"<i4", BS_DT_INT32}, {"<i8", BS_DT_INT64},
};
#define S_N_TYPES (sizeof s_types / sizeof s_types[0])

int bs_npy_is_npy(const void *buf, size_t len)
{
    return len >= 6 && memcmp(buf, s_magic, 6) == 0;
}

/* ---- header dict --------------------------------------------------------------------------- */

typedef struct s_hdr {
    const char *p, *end;
    const char *name;
    bs_err_t *err;
} s_hdr_t;

static void s_ws(s_hdr_t *h)
{
    while (h->p < h->end && (*h->p == ' ' || *h->p == '\t' || *h->p == '\n' || *h->p == '\r'))
        h->p++;
}

static int s_bad(s_hdr_t *h, const char *what)
{
    return bs_err_set(h->err, BS_EDATA, "%s: malformed .npy header: %s", h->name, what);
}

/* A quoted string into out (at most cap - 1 bytes). */
static int s_str(s_hdr_t *h, char *out, size_t cap)
{
    s_ws(h);
    if (h->p >= h->end || (*h->p != '\'' && *h->p != '"'))
        return s_bad(h, "expected a quoted string");
    char q = *h->p++;
    size_t n = 0;
    while (h->p < h->end && *h->p != q) {
        if (n + 1 >= cap)
            return s_bad(h, "string too long");
        out[n++] = *h->p++;
    }
    if (h->p >= h->end)
        return s_bad(h, "unterminated string");
    h->p++;
    out[n] = '\0';
    return 0;
}

static int s_expect(s_hdr_t *h, char c, const char *what)
{
    s_ws(h);
    if (h->p >= h->end || *h->p != c)
        return s_bad(h, what);
    h->p++;
    return 0;
}

static int s_bool(s_hdr_t *h, int *out)
{
    s_ws(h);
    size_t left = (size_t)(h->end - h->p);
    if (left >= 4 && memcmp(h->p, "True", 4) == 0) {
        h->p += 4;
        *out = 1;
        return 0;
    }
    if (left >= 5 && memcmp(h->p, "False", 5) == 0) {
        h->p += 5;
        *out = 0;
        return 0;
    }
    return s_bad(h, "fortran_order: expected True or False");
}

static int s_shape(s_hdr_t *h, int *ndim, int64_t *dims)
{
    int rc;
    if ((rc = s_expect(h, '(', "shape: expected a tuple such as (2, 3)")))
        return rc;
    *ndim = 0;
    for (;;) {
        s_ws(h);
        if (h->p < h->end && *h->p == ')') {
            h->p++;
            return 0;
        }
        if (h->p >= h->end || *h->p < '0' || *h->p > '9')
            return s_bad(h, "shape: expected a non-negative integer");
        int64_t v = 0;
        while (h->p < h->end && *h->p >= '0' && *h->p <= '9') {
            if (v > (INT64_C(1) << 48))
                return s_bad(h, "shape: dimension too large");
            v = v * 10 + (*h->p++ - '0');
        }
        if (*ndim >= BS_NPY_MAX_DIMS)
            return bs_err_set(h->err, BS_EUNSUPPORTED, "%s: more than %d dimensions", h->name,
                              BS_NPY_MAX_DIMS);
        dims[(*ndim)++] = v;
        s_ws(h);
        if (h->p < h->end && *h->p == ',') {
            h->p++;
            continue;
        }
        if (h->p < h->end && *h->p == ')') {
            h->p++;
            return 0;
        }
        return s_bad(h, "shape: expected ',' or ')'");
    }
}

/* ---- reading ------------------------------------------------------------------------------- */

int bs_npy_parse(const void *buf, size_t len, const char *name, size_t max, bs_npy_t *out,
                 bs_err_t *err)
{
    const uint8_t *p = buf;
    memset(out, 0, sizeof *out);
    if (!bs_npy_is_npy(buf, len))
        return bs_err_set(err, BS_EDATA, "%s: not a .npy file (it must start with \\x93NUMPY)",
                          name);
    if (len < 10)
        return bs_err_set(err, BS_EDATA, "%s: truncated .npy preamble (%zu bytes)", name, len);
    int major = p[6], minor = p[7];
    if ((major != 1 && major != 2 && major != 3) || minor != 0)
        return bs_err_set(err, BS_EUNSUPPORTED,
                          "%s: .npy format version %d.%d is not "
                          "supported (1.0, 2.0 and 3.0 are)",
                          name, major, minor);
    size_t hlen, off;
    if (major == 1) {
        hlen = (size_t)p[8] | ((size_t)p[9] << 8);
        off = 10;
    } else {
        if (len < 12)
            return bs_err_set(err, BS_EDATA, "%s: truncated .npy preamble (%zu bytes)", name, len);
        hlen = (size_t)p[8] | ((size_t)p[9] << 8) | ((size_t)p[10] << 16) | ((size_t)p[11] << 24);
        off = 12;
    }
    if (hlen > len - off)
        return bs_err_set(err, BS_EDATA,
                          "%s: truncated .npy header: %zu bytes announced, %zu "
                          "present",
                          name, hlen, len - off);

    s_hdr_t h = {(const char *)p + off, (const char *)p + off + hlen, name, err};
    char descr[32] = "";
    int fortran = -1, ndim = -1, have_descr = 0, rc;
    int64_t dims[BS_NPY_MAX_DIMS];
    if ((rc = s_expect(&h, '{', "expected '{'")))
        return rc;
    for (;;) {
        s_ws(&h);
        if (h.p < h.end && *h.p == '}') {
            h.p++;
            break;
        }
        char key[32];
        if ((rc = s_str(&h, key, sizeof key)) || (rc = s_expect(&h, ':', "expected ':'")))
            return rc;
        if (!strcmp(key, "descr")) {
            if (have_descr)
                return s_bad(&h, "key 'descr' given twice");
            if ((rc = s_str(&h, descr, sizeof descr)))
                return rc;
            have_descr = 1;
        } else if (!strcmp(key, "fortran_order")) {
            if (fortran >= 0)
                return s_bad(&h, "key 'fortran_order' given twice");
            if ((rc = s_bool(&h, &fortran)))
                return rc;
        } else if (!strcmp(key, "shape")) {
            if (ndim >= 0)
                return s_bad(&h, "key 'shape' given twice");
            if ((rc = s_shape(&h, &ndim, dims)))
                return rc;
        } else {
            return bs_err_set(err, BS_EDATA,
                              "%s: malformed .npy header: unknown key '%s' "
                              "(expected descr, fortran_order, shape)",
                              name, key);
        }
        s_ws(&h);
        if (h.p < h.end && *h.p == ',') {
            h.p++;
            continue;
        }
        if (h.p < h.end && *h.p == '}') {
            h.p++;
            break;
        }
        return s_bad(&h, "expected ',' or '}' after a value");
    }
    s_ws(&h);
    if (h.p != h.end)
        return s_bad(&h, "unexpected text after the dict");
    if (!have_descr || fortran < 0 || ndim < 0)
        return bs_err_set(err, BS_EDATA, "%s: malformed .npy header: missing key '%s'", name,
                          !have_descr   ? "descr"
                          : fortran < 0 ? "fortran_order"
                                        : "shape");
    if (fortran)
        return bs_err_set(err, BS_EUNSUPPORTED,
                          "%s: fortran_order is True; only C-order "
                          "arrays are supported (save with np.ascontiguousarray)",
                          name);
    int dtype = 0;
    for (size_t i = 0; i < S_N_TYPES; i++)
        if (!strcmp(descr, s_types[i].descr))
            dtype = s_types[i].dtype;
    if (!dtype)
        return bs_err_set(err, BS_EUNSUPPORTED,
                          "%s: element type '%s' is not supported "
                          "(expected <f4, |u1, |i1, <i4 or <i8)",
                          name, descr);

    size_t esize = bs_dtype_size(dtype);
    uint64_t count = 1;
    for (int i = 0; i < ndim; i++) {
        if (dims[i] != 0 && count > (uint64_t)(max / esize) / (uint64_t)dims[i])
            return bs_err_set(err, BS_ETOOBIG,
                              "%s: the shape announces more than the limit "
                              "of %zu bytes",
                              name, max);
        count *= (uint64_t)dims[i];
    }
    size_t nbytes = (size_t)count * esize, avail = len - off - hlen;
    if (avail < nbytes)
        return bs_err_set(err, BS_EDATA,
                          "%s: truncated: the header announces %zu bytes of "
                          "data, the file holds %zu",
                          name, nbytes, avail);
    if (avail > nbytes)
        return bs_err_set(err, BS_EDATA, "%s: %zu unexpected bytes after the %zu bytes of data",
                          name, avail - nbytes, nbytes);
    void *data = bs_malloc(nbytes ? nbytes : 1);
    if (!data)
        return bs_err_set(err, BS_ENOMEM, "%s: out of memory", name);
    if (nbytes)
        memcpy(data, p + off + hlen, nbytes);
    out->dtype = dtype;
    out->ndim = ndim;
    memcpy(out->dims, dims, sizeof(int64_t) * (size_t)ndim);
    out->data = data;
    out->nbytes = nbytes;
    return 0;
}

int bs_npy_load(const char *path, size_t max, bs_npy_t *out, bs_err_t *err)
{
    memset(out, 0, sizeof *out);
    char *buf;
    size_t len;
    /* the header is small: a file at most max + 64 KiB holds at most max bytes of data */
    size_t cap = max > SIZE_MAX - 65536 ? SIZE_MAX : max + 65536;
    int rc = bs_read_file(path, cap, &buf, &len, err);
    if (rc)
        return rc;
    rc = bs_npy_parse(buf, len, path, max, out, err);
    bs_free(buf);
    return rc;
}

void bs_npy_free(bs_npy_t *a)
{
    if (!a)
        return;
    bs_free(a->data);
    memset(a, 0, sizeof *a);
}

/* ---- writing ------------------------------------------------------------------------------- */

int bs_npy_encode(int dtype, int ndim, const int64_t *dims, const void *data, uint8_t **out,
                  size_t *len, bs_err_t *err)
{
    *out = NULL;
    *len = 0;
    const char *descr = NULL;
    for (size_t i = 0; i < S_N_TYPES; i++)
        if (s_types[i].dtype == dtype)
            descr = s_types[i].descr;
    if (!descr)
        return bs_err_set(err, BS_EUNSUPPORTED, "npy: cannot write type %s", bs_dtype_name(dtype));
    if (ndim < 0 || ndim > BS_NPY_MAX_DIMS)
        return bs_err_set(err, BS_EINVAL, "npy: %d dimensions; 0 to %d expected", ndim,
                          BS_NPY_MAX_DIMS);
    char dict[512];
    int n =
        snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    size_t count = 1;
    for (int i = 0; i < ndim; i++) {
        if (dims[i] < 0)
            return bs_err_set(err, BS_EINVAL, "npy: dimension %d is negative", i);
        n += snprintf(dict + n, sizeof dict - (size_t)n, "%s%lld", i ? ", " : "",
                      (long long)dims[i]);
        count *= (size_t)dims[i];
    }
    n += snprintf(dict + n, sizeof dict - (size_t)n, "%s), }", ndim == 1 ? "," : "");
    size_t esize = bs_dtype_size(dtype), nbytes = count * esize;
    /* preamble 10 bytes (v1); header padded with spaces and ended by '\n' to a 64 multiple */
    size_t hlen = (size_t)n + 1;
    size_t total_hdr = (10 + hlen + 63) / 64 * 64;
    hlen = total_hdr - 10;
    uint8_t *buf = bs_malloc(total_hdr + nbytes);
    if (!buf)
        return bs_err_set(err, BS_ENOMEM, "npy: out of memory");
    memcpy(buf, s_magic, 6);
    buf[6] = 1;
    buf[7] = 0;
    buf[8] = (uint8_t)(hlen & 0xff);
    buf[9] = (uint8_t)(hlen >> 8);
    memcpy(buf + 10, dict, (size_t)n);
    memset(buf + 10 + n, ' ', hlen - (size_t)n - 1);
    buf[total_hdr - 1] = '\n';
    if (nbytes)
        memcpy(buf + total_hdr, data, nbytes);
    *out = buf;
    *len = total_hdr + nbytes;
    return 0;
}

int bs_npy_save(const char *path, int dtype, int ndim, const int64_t *dims, const void *data,
                bs_err_t *err)
{
    uint8_t *buf;
    size_t len;
    int rc = bs_npy_encode(dtype, ndim, dims, data, &buf, &len, err);
    if (rc) {
        if (err)
            bs_err_prefix(err, "%s", path);
        return rc;
    }
    FILE *f = fopen(path, "wb");
    if (!f) {
        bs_free(buf);
        return bs_err_set(err, BS_EIO, "%s: cannot create: %s", path, strerror(errno));
    }
    int ok = fwrite(buf, 1, len, f) == len;
    ok = (fclose(f) == 0) && ok;
    bs_free(buf);
    return ok ? 0 : bs_err_set(err, BS_EIO, "%s: write failed", path);
}

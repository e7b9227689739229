/*
 * bs_idx.c - IDX reader and writer (see bs_idx.h).
 *
 * Files are read whole through zlib's gzopen/gzread, which passes raw files through unchanged,
 * into a buffer that doubles up to the cap; a truncated gzip stream is caught from gzerror()
 * after the last read (zlib reports it as Z_BUF_ERROR, "unexpected end of file"). Buffers in
 * memory (the fuzz target's path) are gunzipped with inflate() when they start with the gzip
 * magic. The header is then checked field by field and the data moved to the front of the
 * buffer, so a loaded file costs one allocation of its own size.
 */
#include "bs_idx.h"

#include "bs_alloc.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define S_CHUNK ((size_t)1 << 16)

static const char *s_type_name(int t)
{
    switch (t) {
    case 0x08:
        return "unsigned byte";
    case 0x09:
        return "signed byte";
    case 0x0B:
        return "short";
    case 0x0C:
        return "int";
    case 0x0D:
        return "float";
    case 0x0E:
        return "double";
    default:
        return NULL;
    }
}

/* Grows *buf (capacity *cap, holding n bytes) so that at least one more byte fits, never past
 * max + 1 bytes (one over, so exceeding the cap is detected). */
static int s_grow(uint8_t **buf, size_t *cap, size_t n, size_t max)
{
    if (n < *cap)
        return 0;
    size_t limit = max < SIZE_MAX ? max + 1 : max;
    if (*cap >= limit)
        return BS_ETOOBIG;
    size_t nc = *cap ? *cap * 2 : S_CHUNK;
    if (nc > limit || nc < *cap)
        nc = limit;
    uint8_t *nb = bs_realloc(*buf, nc);
    if (!nb)
        return BS_ENOMEM;
    *buf = nb;
    *cap = nc;
    return 0;
}

int bs_idx_read_all(const char *path, size_t max, uint8_t **out, size_t *len, bs_err_t *err)
{
    *out = NULL;
    *len = 0;
    struct stat st;
    if (stat(path, &st) != 0)
        return bs_err_set(err, errno == ENOENT ? BS_ENOENT : BS_EIO, "%s: cannot open: %s", path,
                          strerror(errno));
    if (!S_ISREG(st.st_mode))
        return bs_err_set(err, BS_EIO, "%s: not a regular file", path);
    gzFile f = gzopen(path, "rb");
    if (!f)
        return bs_err_set(err, BS_EIO, "%s: cannot open: %s", path,
                          errno ? strerror(errno) : "out of memory");
    gzbuffer(f, 1u << 17);
    uint8_t *buf = NULL;
    size_t cap = 0, n = 0;
    int rc = 0;
    for (;;) {
        int g = s_grow(&buf, &cap, n, max);
        if (g == BS_ETOOBIG) {
            rc = bs_err_set(err, BS_ETOOBIG, "%s: more than the limit of %zu bytes%s", path, max,
                            gzdirect(f) ? "" : " once decompressed");
            break;
        }
        if (g) {
            rc = bs_err_set(err, BS_ENOMEM, "%s: out of memory", path);
            break;
        }
        size_t want = cap - n;
        if (want > (size_t)1 << 30)
            want = (size_t)1 << 30;
        int r = gzread(f, buf + n, (unsigned)want);
        if (r < 0) {
            int zerr;
            const char *msg = gzerror(f, &zerr);
            rc = bs_err_set(err, zerr == Z_ERRNO ? BS_EIO : BS_EDATA, "%s: %s: %s", path,
                            zerr == Z_ERRNO ? "read failed" : "corrupt gzip data",
                            zerr == Z_ERRNO ? strerror(errno) : msg);
            break;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (rc == 0) {
        int zerr;
        const char *msg = gzerror(f, &zerr);
        if (zerr != Z_OK)
            rc = bs_err_set(err, BS_EDATA, "%s: truncated or corrupt gzip stream: %s", path, msg);
    }
    gzclose(f);
    if (rc) {
        bs_free(buf);
        return rc;
    }
    *out = buf;
    *len = n;
    return 0;
}

int bs_idx_gunzip(const void *inbuf, size_t len, const char *name, size_t max, uint8_t **out,
                  size_t *out_len, bs_err_t *err)
{
    const uint8_t *in = inbuf;
    *out = NULL;
    *out_len = 0;
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
        return bs_err_set(err, BS_ENOMEM, "%s: cannot start gzip decompression", name);
    uint8_t *buf = NULL;
    size_t cap = 0, n = 0;
    int rc = 0;
    size_t fed = 0;
    for (;;) {
        int g = s_grow(&buf, &cap, n, max);
        if (g) {
            rc = g == BS_ETOOBIG ? bs_err_set(err, BS_ETOOBIG,
                                              "%s: more than the limit of %zu bytes once "
                                              "decompressed",
                                              name, max)
                                 : bs_err_set(err, BS_ENOMEM, "%s: out of memory", name);
            break;
        }
        if (zs.avail_in == 0 && fed < len) {
            size_t step = len - fed > UINT_MAX ? UINT_MAX : len - fed;
            zs.next_in = (Bytef *)(uintptr_t)(in + fed);
            zs.avail_in = (uInt)step;
            fed += step;
        }
        size_t room = cap - n > UINT_MAX ? UINT_MAX : cap - n;
        zs.next_out = buf + n;
        zs.avail_out = (uInt)room;
        int z = inflate(&zs, Z_NO_FLUSH);
        n += room - zs.avail_out;
        if (z == Z_STREAM_END)
            break;
        if (z == Z_BUF_ERROR && zs.avail_in == 0 && fed == len) {
            rc = bs_err_set(err, BS_EDATA, "%s: truncated gzip stream", name);
            break;
        }
        if (z != Z_OK && z != Z_BUF_ERROR) {
            rc = bs_err_set(err, z == Z_MEM_ERROR ? BS_ENOMEM : BS_EDATA,
                            "%s: corrupt gzip data: %s", name, zs.msg ? zs.msg : "inflate failed");
            break;
        }
        if (z == Z_OK && zs.avail_in == 0 && fed == len && zs.avail_out != 0) {
            rc = bs_err_set(err, BS_EDATA, "%s: truncated gzip stream", name);
            break;
        }
    }
    inflateEnd(&zs);
    if (rc) {
        bs_free(buf);
        return rc;
    }
    *out = buf;
    *out_len = n;
    return 0;
}

/* Parses raw IDX bytes. With own != NULL the parse takes over *own (the buffer buf points to):
 * the data is moved to its front and kept; otherwise the data is copied. */
static int s_parse_raw(const uint8_t *p, size_t len, const char *name, size_t max, uint8_t **own,
                       bs_idx_t *out, bs_err_t *err)
{
    memset(out, 0, sizeof *out);
    if (len < 4)
        return bs_err_set(err, BS_EDATA,
                          "%s: %zu bytes: too short for an IDX file (4-byte magic "
                          "number, then the dimensions)",
                          name, len);
    if (p[0] != 0 || p[1] != 0)
        return bs_err_set(err, BS_EDATA,
                          "%s: not an IDX file: its magic number must start "
                          "with two zero bytes; got %02x %02x",
                          name, p[0], p[1]);
    int type = p[2], ndim = p[3];
    if (type != 0x08) {
        const char *tn = s_type_name(type);
        if (tn)
            return bs_err_set(err, BS_EUNSUPPORTED,
                              "%s: IDX element type 0x%02x (%s) is not "
                              "supported; only unsigned bytes (0x08)",
                              name, type, tn);
        return bs_err_set(err, BS_EDATA, "%s: unknown IDX element type code 0x%02x", name, type);
    }
    if (ndim < 1 || ndim > BS_IDX_MAX_DIMS)
        return bs_err_set(err, BS_EDATA, "%s: %d dimensions; an IDX file here has 1 to %d", name,
                          ndim, BS_IDX_MAX_DIMS);
    size_t hdr = 4 + 4 * (size_t)ndim;
    if (len < hdr)
        return bs_err_set(err, BS_EDATA,
                          "%s: truncated header: %d dimensions need %zu bytes, "
                          "the file holds %zu",
                          name, ndim, hdr, len);
    uint64_t total = 1;
    int64_t dims[BS_IDX_MAX_DIMS];
    for (int i = 0; i < ndim; i++) {
        const uint8_t *q = p + 4 + 4 * i;
        uint64_t d =
            ((uint64_t)q[0] << 24) | ((uint64_t)q[1] << 16) | ((uint64_t)q[2] << 8) | q[3];
        if (d == 0)
            return bs_err_set(err, BS_EDATA, "%s: dimension %d is 0", name, i);
        dims[i] = (int64_t)d;
        if (total > (uint64_t)max / d)
            return bs_err_set(err, BS_ETOOBIG,
                              "%s: the dimensions announce more than the "
                              "limit of %zu bytes",
                              name, max);
        total *= d;
    }
    size_t avail = len - hdr;
    if (avail < total)
        return bs_err_set(err, BS_EDATA,
                          "%s: truncated: the header announces %llu bytes of data, "
                          "the file holds %zu",
                          name, (unsigned long long)total, avail);
    if (avail > total)
        return bs_err_set(err, BS_EDATA, "%s: %zu unexpected bytes after the %llu bytes of data",
                          name, avail - (size_t)total, (unsigned long long)total);
    if (own) {
        memmove(*own, p + hdr, (size_t)total);
        out->data = *own;
        *own = NULL;
    } else {
        out->data = bs_malloc((size_t)total);
        if (!out->data)
            return bs_err_set(err, BS_ENOMEM, "%s: out of memory", name);
        memcpy(out->data, p + hdr, (size_t)total);
    }
    out->ndim = ndim;
    memcpy(out->dims, dims, sizeof(int64_t) * (size_t)ndim);
    out->nbytes = (size_t)total;
    return 0;
}

int bs_idx_is_gzip(const void *buf, size_t len)
{
    const uint8_t *p = buf;
    return len >= 2 && p[0] == 0x1f && p[1] == 0x8b;
}

int bs_idx_parse(const void *buf, size_t len, const char *name, size_t max, bs_idx_t *out,
                 bs_err_t *err)
{
    const uint8_t *p = buf;
    memset(out, 0, sizeof *out);
    if (bs_idx_is_gzip(p, len)) {
        uint8_t *raw = NULL;
        size_t n = 0;
        int rc = bs_idx_gunzip(p, len, name, max, &raw, &n, err);
        if (rc)
            return rc;
        rc = s_parse_raw(raw, n, name, max, &raw, out, err);
        bs_free(raw); /* NULL once taken over */
        return rc;
    }
    return s_parse_raw(p, len, name, max, NULL, out, err);
}

int bs_idx_load(const char *path, size_t max, bs_idx_t *out, bs_err_t *err)
{
    memset(out, 0, sizeof *out);
    uint8_t *buf;
    size_t len;
    int rc = bs_idx_read_all(path, max, &buf, &len, err);
    if (rc)
        return rc;
    rc = s_parse_raw(buf, len, path, max, &buf, out, err);
    bs_free(buf);
    return rc;
}

void bs_idx_free(bs_idx_t *x)
{
    if (!x)
        return;
    bs_free(x->data);
    memset(x, 0, sizeof *x);
}

int bs_idx_save(const char *path, int ndim, const int64_t *dims, const uint8_t *data, int gzip,
                bs_err_t *err)
{
    if (ndim < 1 || ndim > BS_IDX_MAX_DIMS)
        return bs_err_set(err, BS_EINVAL, "%s: %d dimensions; 1 to %d expected", path, ndim,
                          BS_IDX_MAX_DIMS);
    uint8_t hdr[4 + 4 * BS_IDX_MAX_DIMS] = {0, 0, 0x08, (uint8_t)ndim};
    size_t total = 1;
    for (int i = 0; i < ndim; i++) {
        if (dims[i] < 1 || dims[i] > (int64_t)UINT32_MAX)
            return bs_err_set(err, BS_EINVAL, "%s: dimension %d = %lld is out of range", path, i,
                              (long long)dims[i]);
        uint32_t d = (uint32_t)dims[i];
        hdr[4 + 4 * i] = (uint8_t)(d >> 24);
        hdr[5 + 4 * i] = (uint8_t)(d >> 16);
        hdr[6 + 4 * i] = (uint8_t)(d >> 8);
        hdr[7 + 4 * i] = (uint8_t)d;
        total *= (size_t)d;
    }
    size_t hlen = 4 + 4 * (size_t)ndim;
    if (!gzip) {
        FILE *f = fopen(path, "wb");
        if (!f)
            return bs_err_set(err, BS_EIO, "%s: cannot create: %s", path, strerror(errno));
        int ok = fwrite(hdr, 1, hlen, f) == hlen && fwrite(data, 1, total, f) == total;
        ok = (fclose(f) == 0) && ok;
        return ok ? 0 : bs_err_set(err, BS_EIO, "%s: write failed", path);
    }
    gzFile g = gzopen(path, "wb");
    if (!g)
        return bs_err_set(err, BS_EIO, "%s: cannot create: %s", path, strerror(errno));
    int ok = gzwrite(g, hdr, (unsigned)hlen) == (int)hlen;
    for (size_t off = 0; ok && off < total;) {
        size_t step = total - off > ((size_t)1 << 30) ? ((size_t)1 << 30) : total - off;
        ok = gzwrite(g, data + off, (unsigned)step) == (int)step;
        off += step;
    }
    ok = (gzclose(g) == Z_OK) && ok;
    return ok ? 0 : bs_err_set(err, BS_EIO, "%s: write failed", path);
}

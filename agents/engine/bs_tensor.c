/*
 * bs_tensor.c - dtype table, shape arithmetic (numpy broadcasting, strides), typed reads of
 * const tensors, and IEEE half-precision conversion.
 */
#include "bs_tensor.h"

#include <stdio.h>
#include <string.h>

size_t bs_dtype_size(int dtype)
{
    switch (dtype) {
    case BS_DT_FLOAT:
    case BS_DT_INT32:
    case BS_DT_UINT32:
        return 4;
    case BS_DT_UINT8:
    case BS_DT_INT8:
    case BS_DT_BOOL:
        return 1;
    case BS_DT_UINT16:
    case BS_DT_INT16:
    case BS_DT_FLOAT16:
        return 2;
    case BS_DT_INT64:
    case BS_DT_DOUBLE:
    case BS_DT_UINT64:
        return 8;
    default:
        return 0;
    }
}

const char *bs_dtype_name(int dtype)
{
    switch (dtype) {
    case BS_DT_FLOAT:
        return "float32";
    case BS_DT_UINT8:
        return "uint8";
    case BS_DT_INT8:
        return "int8";
    case BS_DT_UINT16:
        return "uint16";
    case BS_DT_INT16:
        return "int16";
    case BS_DT_INT32:
        return "int32";
    case BS_DT_INT64:
        return "int64";
    case BS_DT_STRING:
        return "string";
    case BS_DT_BOOL:
        return "bool";
    case BS_DT_FLOAT16:
        return "float16";
    case BS_DT_DOUBLE:
        return "float64";
    case BS_DT_UINT32:
        return "uint32";
    case BS_DT_UINT64:
        return "uint64";
    default:
        return "?";
    }
}

int64_t bs_shape_numel(const bs_shape_t *s)
{
    /* Saturates instead of overflowing: callers validate sizes, this only must not be UB. */
    int64_t n = 1;
    for (int i = 0; i < s->rank; i++) {
        if (s->d[i] <= 0)
            return s->d[i] == 0 ? 0 : -1;
        if (n > INT64_MAX / s->d[i])
            return INT64_MAX;
        n *= s->d[i];
    }
    return n;
}

int bs_shape_eq(const bs_shape_t *a, const bs_shape_t *b)
{
    if (a->rank != b->rank)
        return 0;
    for (int i = 0; i < a->rank; i++)
        if (a->d[i] != b->d[i])
            return 0;
    return 1;
}

const char *bs_shape_str(const bs_shape_t *s, char *buf, size_t cap)
{
    size_t n = 0;
    if (cap == 0)
        return buf;
    n += (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < s->rank && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%lld", i ? "," : "", (long long)s->d[i]);
    if (n < cap)
        snprintf(buf + n, cap - n, "]");
    return buf;
}

int bs_shape_broadcast(const bs_shape_t *a, const bs_shape_t *b, bs_shape_t *out)
{
    int rank = a->rank > b->rank ? a->rank : b->rank;
    bs_shape_t r = {.rank = rank};
    for (int i = 0; i < rank; i++) {
        int ia = a->rank - rank + i, ib = b->rank - rank + i;
        int64_t da = ia >= 0 ? a->d[ia] : 1, db = ib >= 0 ? b->d[ib] : 1;
        if (da == db || db == 1)
            r.d[i] = da;
        else if (da == 1)
            r.d[i] = db;
        else
            return BS_EINVAL;
    }
    *out = r;
    return 0;
}

void bs_shape_strides(const bs_shape_t *s, int64_t *strides)
{
    int64_t st = 1;
    for (int i = s->rank - 1; i >= 0; i--) {
        strides[i] = st;
        st *= s->d[i];
    }
}

void bs_shape_bcast_strides(const bs_shape_t *in, const bs_shape_t *out, int64_t *strides)
{
    int64_t own[BS_MAX_RANK];
    bs_shape_strides(in, own);
    for (int i = 0; i < out->rank; i++) {
        int j = in->rank - out->rank + i;
        strides[i] = (j < 0 || in->d[j] == 1) ? 0 : own[j];
    }
}

int bs_tensor_get_i64(const bs_tensor_t *t, int64_t idx, int64_t *out)
{
    if (!t || t->kind != BS_TENSOR_CONST || !t->data || idx < 0 ||
        idx >= bs_shape_numel(&t->shape))
        return BS_EINVAL;
    const void *p = t->data;
    switch (t->dtype) {
    case BS_DT_INT64:
        *out = ((const int64_t *)p)[idx];
        return 0;
    case BS_DT_INT32:
        *out = ((const int32_t *)p)[idx];
        return 0;
    case BS_DT_INT16:
        *out = ((const int16_t *)p)[idx];
        return 0;
    case BS_DT_INT8:
        *out = ((const int8_t *)p)[idx];
        return 0;
    case BS_DT_UINT8:
    case BS_DT_BOOL:
        *out = ((const uint8_t *)p)[idx];
        return 0;
    case BS_DT_UINT16:
        *out = ((const uint16_t *)p)[idx];
        return 0;
    case BS_DT_UINT32:
        *out = ((const uint32_t *)p)[idx];
        return 0;
    case BS_DT_UINT64:
        *out = (int64_t)((const uint64_t *)p)[idx];
        return 0;
    default:
        return BS_EINVAL;
    }
}

int bs_tensor_get_f32(const bs_tensor_t *t, int64_t idx, float *out)
{
    if (!t || t->kind != BS_TENSOR_CONST || !t->data || idx < 0 ||
        idx >= bs_shape_numel(&t->shape))
        return BS_EINVAL;
    switch (t->dtype) {
    case BS_DT_FLOAT:
        *out = ((const float *)t->data)[idx];
        return 0;
    case BS_DT_DOUBLE:
        *out = (float)((const double *)t->data)[idx];
        return 0;
    case BS_DT_FLOAT16:
        *out = bs_f16_to_f32(((const uint16_t *)t->data)[idx]);
        return 0;
    default: {
        int64_t v;
        int rc = bs_tensor_get_i64(t, idx, &v);
        if (rc == 0)
            *out = (float)v;
        return rc;
    }
    }
}

float bs_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do {
                e++;
                mant <<= 1;
            } while (!(mant & 0x400u));
            bits = sign | (uint32_t)(127 - 15 - e) << 23 | (mant & 0x3ffu) << 13;
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | mant << 13;
    } else {
        bits = sign | (exp + 127 - 15) << 23 | mant << 13;
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

uint16_t bs_f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t exp = (x >> 23) & 0xffu;
    uint32_t mant = x & 0x7fffffu;
    if (exp == 0xff) /* inf or nan */
        return (uint16_t)(sign | 0x7c00u | (mant ? 0x200u : 0));
    int e = (int)exp - 127 + 15;
    if (e >= 31)
        return (uint16_t)(sign | 0x7c00u);
    if (e <= 0) {
        if (e < -10)
            return (uint16_t)sign;
        mant |= 0x800000u;
        int shift = 14 - e;
        uint32_t half = mant >> shift;
        uint32_t rem = mant & ((1u << shift) - 1);
        uint32_t mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1u)))
            half++;
        return (uint16_t)(sign | half);
    }
    uint32_t half = sign | (uint32_t)e << 10 | mant >> 13;
    uint32_t rem = mant & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (half & 1u)))
        half++; /* may carry into the exponent: still correct, up to inf */
    return (uint16_t)half;
}

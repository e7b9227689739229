/*
 * bs_export.c - `bitscout export`: an ONNX model rewritten at a precision assignment, in the
 * standard QDQ form, with the engine's own quantized values.
 *
 * How it works. The model is unpacked with protobuf-c (the code generated from Debian's
 * onnx.proto) and never modified in place: the rewrite builds new pointer arrays (nodes,
 * initializers, graph inputs, value_info, opset imports, metadata) and shallow copies of the
 * messages it changes, all allocated from a private arena (s_alloc), points a copy of the
 * ModelProto at them, packs that, then frees the arena and the unpacked original. What the
 * copies borrow from the original (strings, attributes, tensor bytes) stays owned by it.
 *
 * The weight layers and their names come from common/bs_model.h (node name, or
 * "<op_type>_<index>"), so an assignment means the same layers here as in the searcher and
 * the engine; s_find_layers walks the nodes with the same rule to find their indices and
 * checks that both agree. The spec is applied with bs_spec_apply. Per layer, mirroring what
 * the engine does at load (bs_graph.c, bs_ops_quant.c), so the exported values are the
 * engine's bit for bit:
 *   - weights below 32 bits: the float weight is read (raw_data, float_data or an external
 *     file), seen as N output channels x K inputs as the engine quantizes it (Conv
 *     [M, C/g, kh, kw] rows of C/g*kh*kw; Gemm's B with transB 1 [N, K] or 0 [K, N]; MatMul
 *     [K, N]; ConvTranspose, group 1 only, [C, M, kh, kw] rows m of (kh, kw, c) in the
 *     engine's order, through a transposed copy), and given to bs_quantize_weights (or
 *     bs_f16_weights); the codes (or halves) are scattered back into the weight's own layout
 *     for the new initializer, and the DequantizeLinear axis is that layout's output-channel
 *     axis (0, or 1 for [K, N] and ConvTranspose). Gemm's alpha is multiplied in first and
 *     dropped, as the engine quantizes alpha * B. A Conv whose only consumer is a
 *     BatchNormalization with initializer parameters has it folded first with the engine's
 *     arithmetic (s_fuse_bn), because the engine quantizes the fused weight; the
 *     BatchNormalization goes.
 *   - a8: QuantizeLinear -> DequantizeLinear on input 0 (uint8, per tensor, from the
 *     calibration table; one pair per tensor, before its first a8 reader). With integer
 *     weights the bias the engine adds in int32 (Conv: b, folded or not; Gemm: beta * C, C one
 *     value or one per column; ConvTranspose adds its bias in float, so it stays) becomes
 *     INT32 rne(b / (sx * sw[n])) computed in double and clamped to +-2^30, as
 *     bs__qw_prepare does, behind a per-channel DequantizeLinear at scale (float)(sx * sw[n]);
 *     Gemm's beta is then dropped.
 *   - uint8 chains (s_chain_qdq): where the engine hands an integer a8 layer's output to the
 *     next a8 layers as uint8 (through its Relu, MaxPool, reshapes), a QDQ pair with the
 *     readers' parameters goes on that output too: the same values, and ONNX Runtime then
 *     fuses the producer into QLinearConv / QGemm instead of leaving it in float.
 * A weight that is not an initializer (a Constant node's output) stays float, with a note.
 * Initializers no node uses any more (the replaced float weights) are dropped, with their
 * graph inputs. External data is read and stored inline (the output is one file; 2 GB cap).
 * Integer weights need opset 13 (per-axis DequantizeLinear): a model at 11 or 12 is raised
 * unless it uses an operator whose signature changed by 13 (then, and below 11, the export
 * refuses and says to convert the model first); a8 alone needs 10.
 * New names are "<layer>.weight_q", "<layer>.weight_dq", "<x>_q", "<x>_dq", ..., made unique
 * against every name in the graph.
 */
#include "bs_export.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "bs_alloc.h"
#include "bs_campaign.h"
#include "bs_data.h"
#include "bs_log.h"
#include "bs_model.h"
#include "bs_precision.h"
#include "bs_quant.h"
#include "bs_store.h"
#include "bs_util.h"
#include "onnx.pb-c.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "bs_export.c writes ONNX raw_data (little-endian) with memcpy"
#endif

#define S_MAX_BYTES ((size_t)INT32_MAX) /* protobuf's 2 GB limit on one message */
#define S_MAX_DEPTH 64                  /* subgraph nesting we follow */

enum {
    S_DT_FLOAT = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT,
    S_DT_UINT8 = ONNX__TENSOR_PROTO__DATA_TYPE__UINT8,
    S_DT_INT8 = ONNX__TENSOR_PROTO__DATA_TYPE__INT8,
    S_DT_INT32 = ONNX__TENSOR_PROTO__DATA_TYPE__INT32,
    S_DT_FLOAT16 = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16,
};

/* ---- arena, name sets, vectors ------------------------------------------------------------ */

typedef struct s_blk {
    struct s_blk *next;
    max_align_t data[]; /* the allocation */
} s_blk_t;

/* Open-addressing map from a name (borrowed or arena-owned) to an index. */
typedef struct s_map {
    const char **key;
    size_t *val;
    size_t cap, n;
} s_map_t;

typedef struct s_vec {
    void **v;
    size_t n, cap;
} s_vec_t;

/* A new node and the original node index it goes before. */
typedef struct s_pending {
    size_t before;
    size_t seq; /* order of creation, for a stable sort */
    Onnx__NodeProto *node;
} s_pending_t;

typedef struct s_layer {
    size_t node;      /* index in the graph's nodes */
    const char *name; /* borrowed from the bs_model_info_t */
    bs_prec_t p;
    long bn;          /* BatchNormalization node folded into this Conv, or -1 */
} s_layer_t;

/* The activation QDQ pair made for one tensor. */
typedef struct s_actq {
    const char *x, *x_dq;
    const char *sname, *zname; /* its scale and zero point initializers */
    float scale;
} s_actq_t;

typedef struct s_ex {
    Onnx__ModelProto *mp;     /* the unpacked source (protobuf-c's) */
    Onnx__GraphProto *g;      /* mp->graph */
    const char *base_dir;
    s_blk_t *blocks;          /* everything below that is not the source's */
    s_map_t tensors;          /* every tensor name in the graph, new ones included */
    s_map_t node_names;
    s_map_t inits;            /* original initializer name -> index */
    Onnx__TensorProto **init; /* copy of the initializer array; entries replaced when inlined */
    size_t n_init;
    char *init_cand;          /* per original initializer: replaced somewhere, drop if unused */
    s_vec_t new_inits;        /* Onnx__TensorProto * */
    s_vec_t pending;          /* s_pending_t * in increasing `before` order */
    Onnx__NodeProto **repl;   /* per original node: its rewritten copy, or NULL */
    char *drop;               /* per original node: 1 when folded away */
    s_vec_t gone;             /* const char *: tensor names that no longer exist */
    s_actq_t *actq;
    size_t n_actq;
    size_t inlined_bytes;     /* external data read into the model */
    bs_buf_t notes;
} s_ex_t;

static void *s_alloc(s_ex_t *x, size_t n)
{
    if (n > SIZE_MAX - sizeof(s_blk_t) - 1)
        return NULL;
    s_blk_t *b = bs_calloc(1, sizeof *b + (n ? n : 1));
    if (!b)
        return NULL;
    b->next = x->blocks;
    x->blocks = b;
    return b->data;
}

static void *s_alloc_n(s_ex_t *x, size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size)
        return NULL;
    return s_alloc(x, count * size);
}

static char *s_printf(s_ex_t *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *s_printf(s_ex_t *x, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *s = s_alloc(x, (size_t)n + 1);
    if (!s)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

static void s_map_free(s_map_t *m)
{
    bs_free(m->key);
    bs_free(m->val);
    memset(m, 0, sizeof *m);
}

static size_t s_map_slot(const s_map_t *m, const char *k)
{
    size_t i = (size_t)bs_hash_str(k) & (m->cap - 1);
    while (m->key[i] && strcmp(m->key[i], k) != 0)
        i = (i + 1) & (m->cap - 1);
    return i;
}

/* 1 and *v = the value stored for k, or 0 when k is absent. */
static int s_map_find(const s_map_t *m, const char *k, size_t *v)
{
    if (!k || !m->cap)
        return 0;
    size_t i = s_map_slot(m, k);
    if (!m->key[i])
        return 0;
    if (v)
        *v = m->val[i];
    return 1;
}

/* The index stored for k (maps whose values are indices below LONG_MAX), or -1. */
static long s_map_get(const s_map_t *m, const char *k)
{
    size_t v;
    return s_map_find(m, k, &v) && v < (size_t)LONG_MAX ? (long)v : -1;
}

/* Adds k -> v (k must outlive the map); an existing key keeps its value. 1 added, 0 present,
 * BS_ENOMEM. */
static int s_map_put(s_map_t *m, const char *k, size_t v)
{
    if (!k)
        return 0;
    if ((m->n + 1) * 2 > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        s_map_t nm = {.key = bs_calloc(cap, sizeof *nm.key), .val = bs_calloc(cap, sizeof *nm.val),
                      .cap = cap};
        if (!nm.key || !nm.val) {
            s_map_free(&nm);
            return BS_ENOMEM;
        }
        for (size_t i = 0; i < m->cap; i++) {
            if (m->key[i]) {
                size_t j = s_map_slot(&nm, m->key[i]);
                nm.key[j] = m->key[i];
                nm.val[j] = m->val[i];
                nm.n++;
            }
        }
        s_map_free(m);
        *m = nm;
    }
    size_t i = s_map_slot(m, k);
    if (m->key[i])
        return 0;
    m->key[i] = k;
    m->val[i] = v;
    m->n++;
    return 1;
}

static int s_vec_push(s_vec_t *v, void *p)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 16;
        void **nv = bs_realloc(v->v, cap * sizeof *nv);
        if (!nv)
            return BS_ENOMEM;
        v->v = nv;
        v->cap = cap;
    }
    v->v[v->n++] = p;
    return 0;
}

static void s_note(s_ex_t *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void s_note(s_ex_t *x, const char *fmt, ...)
{
    char line[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    bs_buf_printf(&x->notes, "%s\n", line);
}

static int s_oom(bs_err_t *err)
{
    return bs_err_set(err, BS_ENOMEM, "out of memory");
}

/* A name not yet in set, from base (base, base.1, base.2, ...), added to it. */
static const char *s_unique(s_ex_t *x, s_map_t *set, const char *base)
{
    if (!base)
        return NULL;
    char *name = s_printf(x, "%s", base);
    for (unsigned i = 1; name && s_map_find(set, name, NULL); i++)
        name = s_printf(x, "%s.%u", base, i);
    if (!name || s_map_put(set, name, 0) < 0)
        return NULL;
    return name;
}

/* ---- reading the source ------------------------------------------------------------------- */

static const char *s_str(const char *s)
{
    return s ? s : "";
}

static int s_numel(const Onnx__TensorProto *t, int64_t *out, bs_err_t *err)
{
    int64_t n = 1;
    for (size_t i = 0; i < t->n_dims; i++) {
        int64_t d = t->dims[i];
        if (d < 0 || (d > 0 && n > ((int64_t)1 << 53) / d))
            return bs_err_set(err, BS_EMODEL, "tensor '%s': bad dimension %lld at axis %zu",
                              s_str(t->name), (long long)d, i);
        n *= d;
    }
    *out = n;
    return 0;
}

static size_t s_dtype_size(int dt)
{
    switch (dt) {
    case 1: case 6: case 12: return 4;     /* FLOAT INT32 UINT32 */
    case 2: case 3: case 9: return 1;      /* UINT8 INT8 BOOL */
    case 4: case 5: case 10: case 16: return 2;
    case 7: case 11: case 13: case 14: return 8;
    case 15: return 16;
    default: return 0;
    }
}

static const char *s_dtype_name(int dt)
{
    static const char *const names[] = {"undefined", "float32", "uint8",  "int8",   "uint16",
                                        "int16",     "int32",   "int64",  "string", "bool",
                                        "float16",   "float64", "uint32", "uint64", "complex64",
                                        "complex128", "bfloat16"};
    return dt >= 0 && dt < (int)(sizeof names / sizeof names[0]) ? names[dt] : "an unknown type";
}

static int s_is_external(const Onnx__TensorProto *t)
{
    return t->has_data_location &&
           t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
}

/* Reads the external data of t into a new inline copy (*out, arena). */
static int s_inline_external(s_ex_t *x, const Onnx__TensorProto *t, Onnx__TensorProto **out,
                             bs_err_t *err)
{
    const char *name = s_str(t->name), *loc = NULL;
    long long off = 0, length = -1;
    for (size_t i = 0; i < t->n_external_data; i++) {
        const Onnx__StringStringEntryProto *e = t->external_data[i];
        const char *k = s_str(e->key), *v = s_str(e->value);
        char *end;
        if (!strcmp(k, "location")) {
            loc = v;
        } else if (!strcmp(k, "offset") || !strcmp(k, "length")) {
            errno = 0;
            long long n = strtoll(v, &end, 10);
            if (errno || end == v || *end || n < 0)
                return bs_err_set(err, BS_EMODEL, "tensor '%s': external data %s \"%s\" is not "
                                                  "a byte count", name, k, v);
            if (!strcmp(k, "offset"))
                off = n;
            else
                length = n;
        }
    }
    int64_t numel;
    int rc = s_numel(t, &numel, err);
    if (rc)
        return rc;
    size_t es = s_dtype_size(t->data_type);
    if (!es)
        return bs_err_set(err, BS_EUNSUPPORTED, "tensor '%s': external data of type %s",
                          name, s_dtype_name(t->data_type));
    if ((uint64_t)numel > S_MAX_BYTES / es)
        return bs_err_set(err, BS_ETOOBIG, "tensor '%s' holds %lld elements: past the 2 GB an "
                                           "inline ONNX model can hold", name, (long long)numel);
    size_t bytes = (size_t)numel * es;
    if (length >= 0 && (uint64_t)length != bytes)
        return bs_err_set(err, BS_EMODEL, "tensor '%s': external data length %lld, its shape "
                                          "and type need %zu bytes", name, length, bytes);
    if (!loc || !*loc || loc[0] == '/' || strstr(loc, ".."))
        return bs_err_set(err, BS_EMODEL, "tensor '%s': external data needs a relative "
                                          "location inside the model's directory, got \"%s\"",
                          name, s_str(loc));
    if (x->inlined_bytes + bytes > S_MAX_BYTES)
        return bs_err_set(err, BS_ETOOBIG, "the model's external data passes 2 GB (at tensor "
                                           "'%s'): bitscout export writes weights inline, and "
                                           "an inline ONNX model must stay under 2 GB", name);
    char *path = s_printf(x, "%s/%s", x->base_dir ? x->base_dir : ".", loc);
    Onnx__TensorProto *c = s_alloc(x, sizeof *c);
    uint8_t *d = s_alloc(x, bytes);
    if (!path || !c || !d)
        return s_oom(err);
    FILE *f = fopen(path, "rb");
    if (!f)
        return bs_err_set(err, BS_EMODEL, "tensor '%s': cannot open external data %s: %s", name,
                          path, strerror(errno));
    int ok = fseeko(f, (off_t)off, SEEK_SET) == 0 && fread(d, 1, bytes, f) == bytes;
    fclose(f);
    if (!ok)
        return bs_err_set(err, BS_EMODEL, "tensor '%s': external data file %s is shorter than "
                                          "offset %lld + %zu bytes", name, path, off, bytes);
    *c = *t;
    c->has_data_location = 0;
    c->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__DEFAULT;
    c->n_external_data = 0;
    c->external_data = NULL;
    c->has_raw_data = 1;
    c->raw_data.data = d;
    c->raw_data.len = bytes;
    x->inlined_bytes += bytes;
    *out = c;
    return 0;
}

/* The float32 values of (inline) initializer t, *numel of them, into *out (arena). */
static int s_read_f32(s_ex_t *x, const Onnx__TensorProto *t, float **out, int64_t *numel,
                      bs_err_t *err)
{
    const char *name = s_str(t->name);
    int rc = s_numel(t, numel, err);
    if (rc)
        return rc;
    if (!t->has_data_type || t->data_type != S_DT_FLOAT)
        return bs_err_set(err, BS_EUNSUPPORTED, "tensor '%s' is %s; only float32 weights can "
                                                "be exported at a lower precision", name,
                          s_dtype_name(t->has_data_type ? t->data_type : 0));
    if ((uint64_t)*numel > S_MAX_BYTES / 4)
        return bs_err_set(err, BS_ETOOBIG, "tensor '%s' is larger than 2 GB", name);
    size_t bytes = (size_t)*numel * 4;
    float *d = s_alloc(x, bytes);
    if (!d)
        return s_oom(err);
    if (t->has_raw_data) {
        if (t->raw_data.len != bytes)
            return bs_err_set(err, BS_EMODEL, "tensor '%s': raw_data has %zu bytes, its shape "
                                              "needs %zu", name, t->raw_data.len, bytes);
        if (bytes)
            memcpy(d, t->raw_data.data, bytes);
    } else if (t->n_float_data == (size_t)*numel) {
        if (bytes)
            memcpy(d, t->float_data, bytes);
    } else {
        return bs_err_set(err, BS_EMODEL, "tensor '%s': holds %zu float values, its shape needs "
                                          "%lld", name, t->n_float_data, (long long)*numel);
    }
    *out = d;
    return 0;
}

static const Onnx__AttributeProto *s_attr(const Onnx__NodeProto *n, const char *name)
{
    for (size_t i = 0; i < n->n_attribute; i++)
        if (n->attribute[i]->name && !strcmp(n->attribute[i]->name, name))
            return n->attribute[i];
    return NULL;
}

static int s_node_desc(const Onnx__NodeProto *n, char *buf, size_t cap)
{
    return snprintf(buf, cap, "%s node '%s'", s_str(n->op_type), s_str(n->name));
}

static int s_attr_int(const Onnx__NodeProto *n, const char *name, int64_t def, int64_t *out,
                      bs_err_t *err)
{
    const Onnx__AttributeProto *a = s_attr(n, name);
    *out = def;
    if (!a)
        return 0;
    if ((a->has_type && a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT) ||
        (!a->has_type && !a->has_i)) {
        char d[160];
        s_node_desc(n, d, sizeof d);
        return bs_err_set(err, BS_EMODEL, "%s: attribute '%s' is not an integer", d, name);
    }
    *out = a->i;
    return 0;
}

static float s_attr_float(const Onnx__NodeProto *n, const char *name, float def)
{
    const Onnx__AttributeProto *a = s_attr(n, name);
    return a && a->has_f ? a->f : def;
}

/* The source initializer called name (inline copy when it had external data), or NULL. */
static const Onnx__TensorProto *s_init(const s_ex_t *x, const char *name)
{
    long i = s_map_get(&x->inits, name);
    return i >= 0 ? x->init[i] : NULL;
}

static void s_mark_replaced(s_ex_t *x, const char *name)
{
    long i = s_map_get(&x->inits, name);
    if (i >= 0)
        x->init_cand[i] = 1;
}

/* ---- building new messages ---------------------------------------------------------------- */

/* A new initializer owning nothing but arena memory: data (bytes) must be arena-owned. */
static Onnx__TensorProto *s_tensor_new(s_ex_t *x, const char *name, int dtype,
                                       const int64_t *dims, size_t rank, void *data,
                                       size_t bytes)
{
    Onnx__TensorProto *t = s_alloc(x, sizeof *t);
    int64_t *d = s_alloc_n(x, rank, sizeof *d);
    if (!t || !d)
        return NULL;
    Onnx__TensorProto init = ONNX__TENSOR_PROTO__INIT;
    *t = init;
    if (rank)
        memcpy(d, dims, rank * sizeof *d);
    t->n_dims = rank;
    t->dims = rank ? d : NULL;
    t->has_data_type = 1;
    t->data_type = dtype;
    t->name = (char *)name;
    t->has_raw_data = 1;
    t->raw_data.data = data;
    t->raw_data.len = bytes;
    if (s_vec_push(&x->new_inits, t))
        return NULL;
    return t;
}

static Onnx__NodeProto *s_node_new(s_ex_t *x, const char *op, const char *name,
                                   const char *const *in, size_t n_in, const char *out)
{
    Onnx__NodeProto *n = s_alloc(x, sizeof *n);
    char **ins = s_alloc_n(x, n_in, sizeof *ins);
    char **outs = s_alloc(x, sizeof *outs);
    if (!n || !ins || !outs)
        return NULL;
    Onnx__NodeProto init = ONNX__NODE_PROTO__INIT;
    *n = init;
    for (size_t i = 0; i < n_in; i++)
        ins[i] = (char *)in[i];
    outs[0] = (char *)out;
    n->n_input = n_in;
    n->input = ins;
    n->n_output = 1;
    n->output = outs;
    n->name = (char *)name;
    n->op_type = (char *)op;
    return n;
}

static int s_node_set_int(s_ex_t *x, Onnx__NodeProto *n, const char *name, int64_t v)
{
    Onnx__AttributeProto *a = s_alloc(x, sizeof *a);
    Onnx__AttributeProto **arr = s_alloc_n(x, n->n_attribute + 1, sizeof *arr);
    if (!a || !arr)
        return BS_ENOMEM;
    Onnx__AttributeProto init = ONNX__ATTRIBUTE_PROTO__INIT;
    *a = init;
    a->name = (char *)name;
    a->has_type = 1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
    a->has_i = 1;
    a->i = v;
    for (size_t i = 0; i < n->n_attribute; i++)
        arr[i] = n->attribute[i];
    arr[n->n_attribute++] = a;
    n->attribute = arr;
    return 0;
}

static int s_pend(s_ex_t *x, size_t before, Onnx__NodeProto *n)
{
    s_pending_t *p = s_alloc(x, sizeof *p);
    if (!p || !n)
        return BS_ENOMEM;
    p->before = before;
    p->seq = x->pending.n;
    p->node = n;
    return s_vec_push(&x->pending, p);
}

/* The rewritable copy of original node i (made on first use). */
static Onnx__NodeProto *s_node_copy(s_ex_t *x, size_t i)
{
    if (x->repl[i])
        return x->repl[i];
    const Onnx__NodeProto *o = x->g->node[i];
    Onnx__NodeProto *n = s_alloc(x, sizeof *n);
    char **in = s_alloc_n(x, o->n_input, sizeof *in);
    char **out = s_alloc_n(x, o->n_output, sizeof *out);
    if (!n || !in || !out)
        return NULL;
    *n = *o;
    if (o->n_input)
        memcpy(in, o->input, o->n_input * sizeof *in);
    if (o->n_output)
        memcpy(out, o->output, o->n_output * sizeof *out);
    n->input = in;
    n->output = out;
    return x->repl[i] = n;
}

/* ---- the layers --------------------------------------------------------------------------- */

static int s_is_weight_op(const char *op)
{
    return !strcmp(op, "Conv") || !strcmp(op, "ConvTranspose") || !strcmp(op, "Gemm") ||
           !strcmp(op, "MatMul");
}

/* Finds the node of every layer of info, by bs_model.c's rule, and checks the names agree. */
static int s_find_layers(s_ex_t *x, const bs_model_info_t *info, s_layer_t *layers,
                         bs_err_t *err)
{
    s_map_t consts = {0};
    int rc = 0;
    const Onnx__GraphProto *g = x->g;
    for (size_t i = 0; i < g->n_initializer && rc >= 0; i++)
        if (g->initializer[i]->name && g->initializer[i]->name[0])
            rc = s_map_put(&consts, g->initializer[i]->name, i);
    for (size_t i = 0; i < g->n_node && rc >= 0; i++) {
        const Onnx__NodeProto *n = g->node[i];
        if (!n->op_type || strcmp(n->op_type, "Constant") || n->n_output < 1 ||
            !n->output[0] || !n->output[0][0])
            continue;
        const Onnx__AttributeProto *v = s_attr(n, "value");
        if (v && v->t)
            rc = s_map_put(&consts, n->output[0], 0);
    }
    if (rc < 0) {
        s_map_free(&consts);
        return s_oom(err);
    }
    int k = 0;
    for (size_t i = 0; i < g->n_node; i++) {
        const Onnx__NodeProto *n = g->node[i];
        if (!n->op_type || !s_is_weight_op(n->op_type) || n->n_input < 2 ||
            !n->input[1][0] || !s_map_find(&consts, n->input[1], NULL))
            continue;
        char fallback[64];
        snprintf(fallback, sizeof fallback, "%.40s_%zu", n->op_type, i);
        const char *name = n->name && n->name[0] ? n->name : fallback;
        if (k >= info->n_layers || strcmp(name, info->layers[k].name) != 0) {
            s_map_free(&consts);
            return bs_err_set(err, BS_EMODEL, "internal: weight layer %d is '%s' here and "
                                              "'%s' in the model view", k, name,
                              k < info->n_layers ? info->layers[k].name : "(none)");
        }
        layers[k].node = i;
        layers[k].name = info->layers[k].name;
        layers[k].bn = -1;
        k++;
    }
    s_map_free(&consts);
    if (k != info->n_layers)
        return bs_err_set(err, BS_EMODEL, "internal: %d weight layers here, %d in the model view",
                          k, info->n_layers);
    return 0;
}

/* The weight as the engine sees it: N output channels x K, element (n, k) of the weight's own
 * layout at s_index(). */
typedef struct s_geom {
    int N, K;
    int64_t sn, sk; /* strides, when !convt */
    int axis;       /* output-channel axis of the weight's layout */
    int convt;      /* ConvTranspose [C, M, S...]: (n, k = s*C + c) at (c*N + n)*S + s, the
                       engine's row order (bs_ops_conv.c s_qconvt_prepare: tap, then input) */
    int64_t S, C;
} s_geom_t;

static int64_t s_index(const s_geom_t *G, int n, int k)
{
    if (G->convt)
        return ((int64_t)(k % G->C) * G->N + n) * G->S + k / G->C;
    return (int64_t)n * G->sn + (int64_t)k * G->sk;
}

static int s_geom(const Onnx__NodeProto *node, const char *layer, const Onnx__TensorProto *w,
                  int bits, s_geom_t *G, bs_err_t *err)
{
    memset(G, 0, sizeof *G);
    const char *op = node->op_type;
    size_t r = w->n_dims;
    int64_t N = 0, K = 1;
    int rc;
    if (!strcmp(op, "Conv") || !strcmp(op, "ConvTranspose")) {
        if (r < 3)
            return bs_err_set(err, BS_EMODEL, "layer '%s': %s weight '%s' has rank %zu, "
                                              "expected 3 or more", layer, op, s_str(w->name), r);
        if (!strcmp(op, "ConvTranspose")) {
            int64_t group;
            if ((rc = s_attr_int(node, "group", 1, &group, err)))
                return rc;
            if (group != 1 && bits <= 8) /* (fp16 is per element: any view will do) */
                return bs_err_set(err, BS_EUNSUPPORTED,
                                  "layer '%s': ConvTranspose with group %lld: its per-output-"
                                  "channel scales cannot be written as one per-axis "
                                  "DequantizeLinear; export it at w32 or w16",
                                  layer, (long long)group);
            G->convt = 1;
            G->axis = 1;
            N = w->dims[1];
            G->S = 1;
            for (size_t i = 2; i < r; i++)
                G->S *= w->dims[i];
            G->C = w->dims[0];
            K = G->C * G->S;
        } else {
            N = w->dims[0];
            for (size_t i = 1; i < r; i++)
                K *= w->dims[i];
            G->sn = K;
            G->sk = 1;
        }
    } else {
        if (r != 2)
            return bs_err_set(err, BS_EUNSUPPORTED, "layer '%s': %s weight '%s' has rank %zu; "
                                                    "only 2-D weights can be exported below "
                                                    "32 bits", layer, op, s_str(w->name), r);
        int64_t transb = 0;
        if (!strcmp(op, "Gemm") && (rc = s_attr_int(node, "transB", 0, &transb, err)))
            return rc;
        if (transb) {
            N = w->dims[0];
            K = w->dims[1];
            G->sn = K;
            G->sk = 1;
        } else {
            K = w->dims[0];
            N = w->dims[1];
            G->sn = 1;
            G->sk = N;
            G->axis = 1;
        }
    }
    if (N < 1 || K < 1 || N > INT_MAX || K > INT_MAX)
        return bs_err_set(err, BS_EMODEL, "layer '%s': weight '%s' is %lld x %lld output "
                                          "channels x inputs; expected 1 to %d each", layer,
                          s_str(w->name), (long long)N, (long long)K, INT_MAX);
    G->N = (int)N;
    G->K = (int)K;
    return 0;
}

/* Conv -> BatchNormalization as bs_graph.c's s_fuse_bn would fuse it, with every operand an
 * initializer: the BatchNormalization's node index, or -1. */
static long s_bn_after(const s_ex_t *x, size_t ci, const s_map_t *consumers,
                       const s_map_t *outputs)
{
    const Onnx__GraphProto *g = x->g;
    const Onnx__NodeProto *c = g->node[ci];
    size_t j;
    if (strcmp(c->op_type, "Conv") || c->n_output < 1 || !c->output[0][0] ||
        s_map_find(outputs, c->output[0], NULL) || !s_map_find(consumers, c->output[0], &j) ||
        j == SIZE_MAX) /* a graph output, no consumer, or several */
        return -1;
    const Onnx__NodeProto *b = g->node[j];
    if (j <= ci || !b->op_type || strcmp(b->op_type, "BatchNormalization") ||
        b->n_input < 5 || b->n_output < 1 || strcmp(s_str(b->input[0]), c->output[0]))
        return -1;
    for (size_t k = 1; k < b->n_output; k++)
        if (b->output[k] && b->output[k][0])
            return -1;
    const Onnx__TensorProto *w = s_init(x, c->input[1]);
    if (!w || w->data_type != S_DT_FLOAT || w->n_dims < 3 || w->dims[0] <= 0)
        return -1;
    int64_t oc = w->dims[0];
    for (size_t k = 1; k < 5; k++) {
        const Onnx__TensorProto *p = s_init(x, b->input[k]);
        int64_t n;
        if (!p || p->data_type != S_DT_FLOAT || s_numel(p, &n, NULL) || n != oc)
            return -1;
    }
    if (c->n_input > 2 && c->input[2] && c->input[2][0]) {
        const Onnx__TensorProto *p = s_init(x, c->input[2]);
        int64_t n;
        if (!p || p->data_type != S_DT_FLOAT || s_numel(p, &n, NULL) || n != oc)
            return -1;
    }
    return (long)j;
}

/* Folds the BatchNormalization into W (oc x per, in place) and *bias (new, oc values), with
 * s_fuse_bn's arithmetic. */
static int s_fold_bn(s_ex_t *x, const s_layer_t *L, float *W, int64_t numel, float **bias,
                     bs_err_t *err)
{
    const Onnx__NodeProto *c = x->g->node[L->node], *b = x->g->node[L->bn];
    const float *p[4];
    int64_t oc = 0, n;
    for (int k = 0; k < 4; k++) {
        float *v;
        int rc = s_read_f32(x, s_init(x, b->input[k + 1]), &v, &oc, err);
        if (rc)
            return rc;
        p[k] = v;
    }
    const float *scale = p[0], *beta = p[1], *mean = p[2], *var = p[3];
    const float *cb = NULL;
    if (c->n_input > 2 && c->input[2] && c->input[2][0]) {
        float *v;
        int rc = s_read_f32(x, s_init(x, c->input[2]), &v, &n, err);
        if (rc)
            return rc;
        cb = v;
    }
    float *nb = s_alloc_n(x, (size_t)oc, sizeof *nb);
    if (!nb)
        return s_oom(err);
    float eps = s_attr_float(b, "epsilon", 1e-5f);
    int64_t per = numel / oc;
    for (int64_t o = 0; o < oc; o++) {
        float s = scale[o] / sqrtf(var[o] + eps);
        for (int64_t j = 0; j < per; j++)
            W[o * per + j] = W[o * per + j] * s;
        nb[o] = ((cb ? cb[o] : 0.0f) - mean[o]) * s + beta[o];
    }
    *bias = nb;
    return 0;
}

/* The QDQ pair on tensor xname (made once): the name of its DequantizeLinear output. */
static int s_act_qdq(s_ex_t *x, const s_layer_t *L, const char *xname, const bs_act_table_t *act,
                     const s_actq_t **out, bs_err_t *err)
{
    for (size_t i = 0; i < x->n_actq; i++) {
        if (!strcmp(x->actq[i].x, xname)) {
            *out = &x->actq[i];
            return 0;
        }
    }
    const bs_qparam_t *q = act ? bs_act_table_find(act, xname) : NULL;
    if (!q)
        return bs_err_set(err, BS_EINVAL, "layer '%s' is a8 but %s for its input tensor '%s' "
                                          "(calibrate on the campaign's data.calibration)",
                          L->name, act ? "the calibration table has no entry"
                                       : "there is no calibration table",
                          xname);
    if (!(q->scale > 0.0f) || !isfinite(q->scale) || q->zero_point < 0 || q->zero_point > 255)
        return bs_err_set(err, BS_EINVAL, "calibration of tensor '%s': scale %g, zero point %d; "
                                          "expected a finite scale > 0 and a zero point in "
                                          "0..255", xname, (double)q->scale, (int)q->zero_point);
    const char *sname = s_unique(x, &x->tensors, s_printf(x, "%s_scale", xname));
    const char *zname = s_unique(x, &x->tensors, s_printf(x, "%s_zero_point", xname));
    const char *qname = s_unique(x, &x->tensors, s_printf(x, "%s_q", xname));
    const char *dname = s_unique(x, &x->tensors, s_printf(x, "%s_dq", xname));
    const char *qnode = s_unique(x, &x->node_names, s_printf(x, "%s_q", xname));
    const char *dnode = s_unique(x, &x->node_names, s_printf(x, "%s_dq", xname));
    float *sv = s_alloc(x, sizeof *sv);
    uint8_t *zv = s_alloc(x, 1);
    s_actq_t *arr = s_alloc_n(x, x->n_actq + 1, sizeof *arr);
    if (!sname || !zname || !qname || !dname || !qnode || !dnode || !sv || !zv || !arr)
        return s_oom(err);
    *sv = q->scale;
    *zv = (uint8_t)q->zero_point;
    const char *qin[] = {xname, sname, zname}, *din[] = {qname, sname, zname};
    if (!s_tensor_new(x, sname, S_DT_FLOAT, NULL, 0, sv, 4) ||
        !s_tensor_new(x, zname, S_DT_UINT8, NULL, 0, zv, 1) ||
        s_pend(x, L->node, s_node_new(x, "QuantizeLinear", qnode, qin, 3, qname)) ||
        s_pend(x, L->node, s_node_new(x, "DequantizeLinear", dnode, din, 3, dname)))
        return s_oom(err);
    if (x->n_actq)
        memcpy(arr, x->actq, x->n_actq * sizeof *arr);
    arr[x->n_actq] =
        (s_actq_t){.x = xname, .x_dq = dname, .sname = sname, .zname = zname, .scale = q->scale};
    x->actq = arr;
    *out = &x->actq[x->n_actq++];
    return 0;
}

/* A DequantizeLinear of `data` (int8 or int32 codes of `dims`) by per-channel scales on axis:
 * "<layer>.<what>_q/_scale/_zero_point/_dq"; *dq_name the output. */
static int s_dq(s_ex_t *x, const s_layer_t *L, const char *what, int dtype, const int64_t *dims,
                size_t rank, void *data, size_t bytes, const float *scales, int N, int axis,
                const char **dq_name)
{
    const char *qn = s_unique(x, &x->tensors, s_printf(x, "%s.%s_q", L->name, what));
    const char *sn = s_unique(x, &x->tensors, s_printf(x, "%s.%s_scale", L->name, what));
    const char *zn = s_unique(x, &x->tensors, s_printf(x, "%s.%s_zero_point", L->name, what));
    const char *dn = s_unique(x, &x->tensors, s_printf(x, "%s.%s_dq", L->name, what));
    const char *node = s_unique(x, &x->node_names, s_printf(x, "%s.%s_dq", L->name, what));
    size_t zs = dtype == S_DT_INT32 ? 4 : 1;
    float *sv = s_alloc_n(x, (size_t)N, sizeof *sv);
    void *zv = s_alloc_n(x, (size_t)N, zs);
    if (!qn || !sn || !zn || !dn || !node || !sv || !zv)
        return BS_ENOMEM;
    memcpy(sv, scales, (size_t)N * sizeof *sv);
    int64_t nd = N;
    const char *in[] = {qn, sn, zn};
    Onnx__NodeProto *n = s_node_new(x, "DequantizeLinear", node, in, 3, dn);
    if (!s_tensor_new(x, qn, dtype, dims, rank, data, bytes) ||
        !s_tensor_new(x, sn, S_DT_FLOAT, &nd, 1, sv, (size_t)N * 4) ||
        !s_tensor_new(x, zn, dtype, &nd, 1, zv, (size_t)N * zs) || !n ||
        s_node_set_int(x, n, "axis", axis) || s_pend(x, L->node, n))
        return BS_ENOMEM;
    *dq_name = dn;
    return 0;
}

/* Round half to even of a double, clamped to +-2^30, NaN to 0: bs_ops_quant.c's int32 bias
 * terms, which the export must reproduce. */
static int32_t s_rne_i32(double v)
{
    if (!(v == v))
        return 0;
    if (v > 1073741824.0)
        return 1073741824;
    if (v < -1073741824.0)
        return -1073741824;
    return (int32_t)nearbyint(v);
}

/* Removes attribute `name` from the (copied) node n. */
static int s_node_drop_attr(s_ex_t *x, Onnx__NodeProto *n, const char *name)
{
    Onnx__AttributeProto **arr = s_alloc_n(x, n->n_attribute + 1, sizeof *arr);
    if (!arr)
        return BS_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n->n_attribute; i++)
        if (!n->attribute[i]->name || strcmp(n->attribute[i]->name, name))
            arr[k++] = n->attribute[i];
    n->attribute = arr;
    n->n_attribute = k;
    return 0;
}

/* Rewrites one layer. */
static int s_layer(s_ex_t *x, const s_layer_t *L, int wscale_minmax, const bs_act_table_t *act,
                   bs_export_info_t *info, bs_err_t *err)
{
    const Onnx__NodeProto *o = x->g->node[L->node];
    Onnx__NodeProto *n = NULL;
    const s_actq_t *aq = NULL;
    int rc;
    if (L->p.a == 8) {
        if (o->n_input < 1 || !o->input[0] || !o->input[0][0])
            return bs_err_set(err, BS_EMODEL, "layer '%s' has no input 0", L->name);
        if ((rc = s_act_qdq(x, L, o->input[0], act, &aq, err)))
            return rc;
        if (!(n = s_node_copy(x, L->node)))
            return s_oom(err);
        n->input[0] = (char *)aq->x_dq;
        info->n_a8++;
    }
    if (L->p.w == 32)
        return 0;
    const char *wname = o->input[1];
    const Onnx__TensorProto *w = s_init(x, wname);
    if (!w) {
        s_note(x, "layer '%s': weight '%s' is not an initializer (a Constant node's output); "
                  "it stays float32 instead of w%d", L->name, wname, L->p.w);
        return 0;
    }
    s_geom_t G;
    float *W;
    int64_t numel;
    /* read first: it checks the dimensions (none negative, product at most 2^53) */
    if ((rc = s_read_f32(x, w, &W, &numel, err)))
        return rc;
    if (numel == 0)
        return bs_err_set(err, BS_EMODEL, "layer '%s': weight '%s' has no elements", L->name,
                          wname);
    if ((rc = s_geom(o, L->name, w, L->p.w, &G, err)))
        return rc;
    if (numel != (int64_t)G.N * G.K)
        return bs_err_set(err, BS_EMODEL, "layer '%s': weight '%s' has %lld values, expected "
                                          "%d x %d", L->name, wname, (long long)numel, G.N, G.K);
    if (!(n = s_node_copy(x, L->node)))
        return s_oom(err);
    float alpha = !strcmp(o->op_type, "Gemm") ? s_attr_float(o, "alpha", 1.0f) : 1.0f;
    if (alpha != 1.0f) { /* the engine quantizes alpha * B (bs__qw_prepare) */
        for (int64_t i = 0; i < numel; i++)
            W[i] = alpha * W[i];
        if (s_node_drop_attr(x, n, "alpha"))
            return s_oom(err);
    }
    float *bias = NULL; /* the folded bias when a BatchNormalization was folded */
    if (L->bn >= 0) {
        if ((rc = s_fold_bn(x, L, W, numel, &bias, err)))
            return rc;
        info->n_bn_folded++;
    }
    /* The engine's view as a contiguous N x K copy for ConvTranspose; W itself otherwise. */
    const float *src = W;
    int64_t sn = G.sn, sk = G.sk;
    if (G.convt) {
        float *t = s_alloc_n(x, (size_t)numel, sizeof *t);
        if (!t)
            return s_oom(err);
        for (int r = 0; r < G.N; r++)
            for (int k = 0; k < G.K; k++)
                t[(int64_t)r * G.K + k] = W[s_index(&G, r, k)];
        src = t;
        sn = G.K;
        sk = 1;
    }
    size_t wrank = w->n_dims;
    const int64_t *wdims = w->dims;
    const char *wout = NULL;
    float *sw = NULL;
    if (L->p.w == 16) {
        uint16_t *h = NULL;
        if ((rc = bs_f16_weights(src, sn, sk, G.N, G.K, &h, err)))
            return bs_err_prefix(err, "layer '%s', weight '%s'", L->name, wname);
        uint16_t *hv = s_alloc_n(x, (size_t)numel, sizeof *hv);
        if (hv)
            for (int r = 0; r < G.N; r++)
                for (int k = 0; k < G.K; k++)
                    hv[s_index(&G, r, k)] = h[(size_t)r * (size_t)G.K + (size_t)k];
        bs_free(h);
        const char *hn = s_unique(x, &x->tensors, s_printf(x, "%s.weight_f16", L->name));
        const char *fn = s_unique(x, &x->tensors, s_printf(x, "%s.weight_f32", L->name));
        const char *cn = s_unique(x, &x->node_names, s_printf(x, "%s.weight_f32", L->name));
        Onnx__NodeProto *cast = hn && fn && cn ? s_node_new(x, "Cast", cn, &hn, 1, fn) : NULL;
        if (!hv || !cast ||
            !s_tensor_new(x, hn, S_DT_FLOAT16, wdims, wrank, hv, (size_t)numel * 2) ||
            s_node_set_int(x, cast, "to", S_DT_FLOAT) || s_pend(x, L->node, cast))
            return s_oom(err);
        wout = fn;
        info->n_f16++;
    } else {
        bs_qweight_t qw;
        rc = bs_quantize_weights(src, sn, sk, G.N, G.K, L->p.w,
                                 wscale_minmax ? BS_QSCALE_MINMAX : BS_QSCALE_MSE, &qw, err);
        if (rc)
            return bs_err_prefix(err, "layer '%s', weight '%s'", L->name, wname);
        int8_t *codes = s_alloc_n(x, (size_t)numel, 1);
        int8_t *row = s_alloc_n(x, (size_t)G.K, 1);
        sw = s_alloc_n(x, (size_t)G.N, sizeof *sw);
        if (codes && row && sw) {
            for (int r = 0; r < G.N; r++) {
                bs_qweight_unpack_row(&qw, r, 0, G.K, row);
                for (int k = 0; k < G.K; k++)
                    codes[s_index(&G, r, k)] = row[k];
            }
            memcpy(sw, qw.scales, (size_t)G.N * sizeof *sw);
        }
        bs_qweight_free(&qw);
        if (!codes || !row || !sw ||
            s_dq(x, L, "weight", S_DT_INT8, wdims, wrank, codes, (size_t)numel, sw, G.N, G.axis,
                 &wout))
            return s_oom(err);
        info->n_int++;
    }
    n->input[1] = (char *)wout;
    s_mark_replaced(x, wname);

    /* The bias: folded, quantized to int32, or left as it is. */
    const char *bname = o->n_input > 2 && o->input[2] && o->input[2][0] ? o->input[2] : NULL;
    if (L->bn >= 0) {
        const Onnx__NodeProto *b = x->g->node[L->bn];
        for (size_t k = 1; k < 5; k++)
            s_mark_replaced(x, b->input[k]);
        if (bname)
            s_mark_replaced(x, bname);
        if (s_vec_push(&x->gone, (void *)o->output[0]))
            return s_oom(err);
        n->output[0] = b->output[0];
        x->drop[L->bn] = 1;
        if (o->n_input < 3) {
            char **in = s_alloc_n(x, 3, sizeof *in);
            if (!in)
                return s_oom(err);
            memcpy(in, n->input, n->n_input * sizeof *in);
            n->input = in;
            n->n_input = 3;
        }
    }
    /* At a8 with integer weights the engine quantizes the bias it would add (Conv: the bias,
     * folded or not; Gemm: beta * C, C one value or one per output column) to int32. */
    const float *bv = bias;
    int is_gemm = !strcmp(o->op_type, "Gemm");
    int int_bias = is_gemm || !strcmp(o->op_type, "Conv"); /* ConvTranspose adds it in float */
    float beta = is_gemm ? s_attr_float(o, "beta", 1.0f) : 1.0f;
    if (aq && sw && int_bias && !bias && bname && beta != 0.0f) {
        const Onnx__TensorProto *bt = s_init(x, bname);
        float *v, *e;
        int64_t cn;
        if (!bt) {
            s_note(x, "layer '%s': bias '%s' is not an initializer; it stays float32",
                   L->name, bname);
        } else if (bt->has_data_type && bt->data_type == S_DT_FLOAT) {
            if ((rc = s_read_f32(x, bt, &v, &cn, err)))
                return rc;
            int per_col = cn == G.N && bt->n_dims >= 1 && bt->dims[bt->n_dims - 1] == G.N;
            if ((per_col && (is_gemm || bt->n_dims == 1)) || (is_gemm && cn == 1)) {
                if (!(e = s_alloc_n(x, (size_t)G.N, sizeof *e)))
                    return s_oom(err);
                for (int r = 0; r < G.N; r++)
                    e[r] = is_gemm ? beta * v[cn == 1 ? 0 : r] : v[r];
                bv = e;
            }
        }
    }
    if (aq && sw && int_bias && bv) {
        int32_t *bq = s_alloc_n(x, (size_t)G.N, sizeof *bq);
        float *bs = s_alloc_n(x, (size_t)G.N, sizeof *bs);
        if (!bq || !bs)
            return s_oom(err);
        int ok = 1;
        for (int r = 0; r < G.N; r++) { /* bs_ops_quant.c, bs__qw_prepare */
            double sc = (double)aq->scale * (double)sw[r];
            bq[r] = s_rne_i32((double)bv[r] / sc);
            bs[r] = (float)sc;
            ok &= bs[r] > 0.0f && isfinite(bs[r]);
        }
        if (ok) {
            const char *bout;
            int64_t d = G.N;
            if (s_dq(x, L, "bias", S_DT_INT32, &d, 1, bq, (size_t)G.N * 4, bs, G.N, 0, &bout))
                return s_oom(err);
            n->input[2] = (char *)bout;
            if (bname)
                s_mark_replaced(x, bname);
            if (is_gemm && s_node_drop_attr(x, n, "beta")) /* beta is in the values now */
                return s_oom(err);
            return 0;
        }
        s_note(x, "layer '%s': input scale x weight scale underflows float32; its bias stays "
                  "float32", L->name);
    }
    if (bias) { /* the folded bias, as float */
        const char *fb = s_unique(x, &x->tensors, s_printf(x, "%s.bias_bn", L->name));
        int64_t d = G.N;
        if (!fb || !s_tensor_new(x, fb, S_DT_FLOAT, &d, 1, bias, (size_t)G.N * 4))
            return s_oom(err);
        n->input[2] = (char *)fb;
    }
    return 0;
}

/* ---- uint8 chains between integer layers ------------------------------------------------- */

static int s_is_alias_op(const char *op)
{
    return !strcmp(op, "Reshape") || !strcmp(op, "Flatten") || !strcmp(op, "Squeeze") ||
           !strcmp(op, "Unsqueeze") || !strcmp(op, "Identity");
}

/* The engine passes uint8 tensors from an integer a8 layer (w2..w8 a8), through its fused
 * Relu / Clip, MaxPool and reshaping ops each read by nothing else, to a tensor read only by
 * a8 layers, quantizing the producer's output straight to the readers' parameters
 * (bs_graph.c s_plan_u8). The export says the same with a QuantizeLinear -> DequantizeLinear
 * pair, with the readers' parameters, on the producer's output (after its Relu / Clip): max
 * pooling and reshaping commute with the monotonic quantization, so the readers' values do
 * not change, and ONNX Runtime then sees the producer as a whole QDQ group (QLinearConv with
 * its Relu) instead of leaving it in float. */
static int s_chain_qdq(s_ex_t *x, const s_layer_t *layers, int nl, const s_map_t *producer,
                       const s_map_t *consumer, const s_map_t *outputs, bs_err_t *err)
{
    const Onnx__GraphProto *g = x->g;
    for (size_t a = 0; a < x->n_actq; a++) {
        const s_actq_t *q = &x->actq[a];
        /* every reader of x must be an a8 layer (they all read x_dq) */
        int readers_ok = !s_map_find(outputs, q->x, NULL);
        for (size_t i = 0; i < g->n_node && readers_ok; i++)
            for (size_t k = 0; k < g->node[i]->n_input && readers_ok; k++) {
                if (strcmp(g->node[i]->input[k], q->x))
                    continue;
                int is_a8 = 0;
                for (int l = 0; l < nl; l++)
                    is_a8 |= layers[l].node == i && k == 0 && layers[l].p.a == 8;
                readers_ok = is_a8;
            }
        if (!readers_ok)
            continue;
        const char *t = q->x, *ins = NULL;
        size_t p, c;
        int steps = 0, ok = 0;
        while (steps < 16 && s_map_find(producer, t, &p)) {
            const Onnx__NodeProto *pn = g->node[p];
            int layer = -1;
            for (int l = 0; l < nl; l++)
                if (layers[l].node == p || layers[l].bn == (long)p)
                    layer = l;
            if (layer >= 0) {
                const s_layer_t *L = &layers[layer];
                ok = L->p.a == 8 && L->p.w <= 8 && steps > 0 &&
                     s_init(x, g->node[L->node]->input[1]) != NULL;
                if (!ins)
                    ins = t;
                break;
            }
            if (pn->n_output < 1 || strcmp(pn->output[0], t) || pn->n_input < 1)
                break;
            int pool = !strcmp(pn->op_type, "MaxPool") &&
                       (pn->n_output == 1 || !pn->output[1][0]);
            int act = !strcmp(pn->op_type, "Relu") || !strcmp(pn->op_type, "Clip");
            if (!pool && !act && !s_is_alias_op(pn->op_type))
                break;
            if (act) {
                if (ins) /* only right after the layer */
                    break;
                ins = t;
            }
            const char *in = pn->input[0];
            if (!in[0] || s_map_find(outputs, in, NULL) || !s_map_find(consumer, in, &c) ||
                c != p)
                break;
            t = in;
            steps++;
        }
        if (!ok || !strcmp(ins, q->x))
            continue;
        /* Q/DQ on `ins`, before its only reader */
        if (!s_map_find(consumer, ins, &c) || c == SIZE_MAX)
            continue;
        const char *qname = s_unique(x, &x->tensors, s_printf(x, "%s_q", ins));
        const char *dname = s_unique(x, &x->tensors, s_printf(x, "%s_dq", ins));
        const char *qnode = s_unique(x, &x->node_names, s_printf(x, "%s_q", ins));
        const char *dnode = s_unique(x, &x->node_names, s_printf(x, "%s_dq", ins));
        Onnx__NodeProto *rn = s_node_copy(x, c);
        if (!qname || !dname || !qnode || !dnode || !rn)
            return s_oom(err);
        const char *qin[] = {ins, q->sname, q->zname}, *din[] = {qname, q->sname, q->zname};
        if (s_pend(x, c, s_node_new(x, "QuantizeLinear", qnode, qin, 3, qname)) ||
            s_pend(x, c, s_node_new(x, "DequantizeLinear", dnode, din, 3, dname)))
            return s_oom(err);
        for (size_t k = 0; k < rn->n_input; k++)
            if (!strcmp(rn->input[k], ins))
                rn->input[k] = (char *)dname;
    }
    return 0;
}

/* Producer and sole-consumer maps of the source graph (SIZE_MAX: several consumers). */
static int s_graph_maps(const Onnx__GraphProto *g, s_map_t *producer, s_map_t *consumer,
                        s_map_t *outputs)
{
    int rc = 0;
    for (size_t i = 0; i < g->n_output && rc >= 0; i++)
        rc = s_map_put(outputs, g->output[i]->name, i);
    for (size_t i = 0; i < g->n_node && rc >= 0; i++) {
        const Onnx__NodeProto *nd = g->node[i];
        for (size_t k = 0; k < nd->n_output && rc >= 0; k++)
            if (nd->output[k][0])
                rc = s_map_put(producer, nd->output[k], i);
        for (size_t k = 0; k < nd->n_input && rc >= 0; k++) {
            const char *t = nd->input[k];
            if (!t[0])
                continue;
            if (!s_map_find(consumer, t, NULL))
                rc = s_map_put(consumer, t, i);
            else /* a second use, as the engine counts them */
                consumer->val[s_map_slot(consumer, t)] = SIZE_MAX;
        }
    }
    return rc < 0 ? BS_ENOMEM : 0;
}

/* ---- opset -------------------------------------------------------------------------------- */

/* Operators whose signature or meaning changed between opset 11 and 13. */
static const char *const s_changed_by_13[] = {"Squeeze", "Unsqueeze", "Split", "ReduceSum",
                                              "Softmax", "LogSoftmax", "Hardmax", NULL};

static void s_find_changed(const Onnx__GraphProto *g, int depth, char *seen)
{
    if (!g || depth > S_MAX_DEPTH)
        return;
    for (size_t i = 0; i < g->n_node; i++) {
        const Onnx__NodeProto *n = g->node[i];
        if (n->domain && n->domain[0] && strcmp(n->domain, "ai.onnx"))
            continue;
        for (int k = 0; s_changed_by_13[k]; k++)
            if (n->op_type && !strcmp(n->op_type, s_changed_by_13[k]))
                seen[k] = 1;
        for (size_t a = 0; a < n->n_attribute; a++) {
            s_find_changed(n->attribute[a]->g, depth + 1, seen);
            for (size_t k = 0; k < n->attribute[a]->n_graphs; k++)
                s_find_changed(n->attribute[a]->graphs[k], depth + 1, seen);
        }
    }
}

/* Raises the default-domain opset to `need` in the copy *ops (n entries) when allowed. */
static int s_opset(s_ex_t *x, int64_t need, Onnx__OperatorSetIdProto **ops, size_t n,
                   int64_t *ir, bs_err_t *err)
{
    long at = -1;
    for (size_t i = 0; i < n; i++)
        if (!ops[i]->domain || !ops[i]->domain[0] || !strcmp(ops[i]->domain, "ai.onnx"))
            at = (long)i;
    if (at < 0)
        return bs_err_set(err, BS_EMODEL, "the model imports no default-domain (ai.onnx) opset");
    int64_t cur = ops[at]->has_version ? ops[at]->version : 1;
    if (cur >= need)
        return 0;
    const char *why = need >= 13 ? "per-channel DequantizeLinear of integer weights"
                                 : "QuantizeLinear / DequantizeLinear of a8 inputs";
    if (cur < 11)
        return bs_err_set(err, BS_EUNSUPPORTED, "the model is at opset %lld; the export needs "
                                                "opset %lld (%s) and does not raise a model "
                                                "from below 11: convert it first (e.g. "
                                                "onnx.version_converter to 13)",
                          (long long)cur, (long long)need, why);
    char seen[sizeof s_changed_by_13 / sizeof s_changed_by_13[0]] = {0};
    s_find_changed(x->g, 0, seen);
    bs_buf_t found = {0};
    for (int k = 0; s_changed_by_13[k]; k++)
        if (seen[k])
            bs_buf_printf(&found, "%s%s", found.len ? ", " : "", s_changed_by_13[k]);
    if (found.oom) {
        bs_buf_free(&found);
        return s_oom(err);
    }
    if (found.len) {
        int rc = bs_err_set(err, BS_EUNSUPPORTED, "the model is at opset %lld; the export needs "
                                                  "%lld (%s), and the model uses operators "
                                                  "that changed by then (%s): convert it to "
                                                  "opset %lld first",
                            (long long)cur, (long long)need, why, found.data, (long long)need);
        bs_buf_free(&found);
        return rc;
    }
    Onnx__OperatorSetIdProto *c = s_alloc(x, sizeof *c);
    if (!c)
        return s_oom(err);
    *c = *ops[at];
    c->has_version = 1;
    c->version = need;
    ops[at] = c;
    if (*ir < 7)
        *ir = 7;
    s_note(x, "opset raised from %lld to %lld (%s)", (long long)cur, (long long)need, why);
    return 0;
}

/* ---- assembling the graph ----------------------------------------------------------------- */

/* Adds every node input name in g (and its subgraphs) to counts (keyed by original
 * initializer index through x->inits). */
static void s_count_refs(const s_ex_t *x, Onnx__NodeProto *const *nodes, size_t n, int depth,
                         size_t *counts)
{
    if (depth > S_MAX_DEPTH)
        return;
    for (size_t i = 0; i < n; i++) {
        const Onnx__NodeProto *nd = nodes[i];
        for (size_t k = 0; k < nd->n_input; k++) {
            long j = s_map_get(&x->inits, nd->input[k]);
            if (j >= 0)
                counts[j]++;
        }
        for (size_t a = 0; a < nd->n_attribute; a++) {
            const Onnx__AttributeProto *at = nd->attribute[a];
            if (at->g)
                s_count_refs(x, at->g->node, at->g->n_node, depth + 1, counts);
            for (size_t k = 0; k < at->n_graphs; k++)
                s_count_refs(x, at->graphs[k]->node, at->graphs[k]->n_node, depth + 1, counts);
        }
    }
}

static int s_is_gone(const s_ex_t *x, const char *name)
{
    for (size_t i = 0; i < x->gone.n; i++)
        if (name && !strcmp(name, x->gone.v[i]))
            return 1;
    return 0;
}

static int s_pending_cmp(const void *a, const void *b)
{
    const s_pending_t *x = *(const s_pending_t *const *)a, *y = *(const s_pending_t *const *)b;
    if (x->before != y->before)
        return x->before < y->before ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int s_build(s_ex_t *x, const char *assignment, int64_t need_opset, int wscale_minmax,
                   void **out, size_t *out_len, bs_err_t *err)
{
    Onnx__GraphProto *g = x->g;
    Onnx__ModelProto *mp = x->mp;
    if (x->pending.n)
        qsort(x->pending.v, x->pending.n, sizeof *x->pending.v, s_pending_cmp);
    /* nodes: the pending new nodes before their consumer, rewritten copies, folded ones out */
    size_t cap = g->n_node + x->pending.n;
    Onnx__NodeProto **nodes = s_alloc_n(x, cap ? cap : 1, sizeof *nodes);
    if (!nodes)
        return s_oom(err);
    size_t nn = 0, p = 0;
    for (size_t i = 0; i < g->n_node; i++) {
        for (; p < x->pending.n && ((s_pending_t *)x->pending.v[p])->before == i; p++)
            nodes[nn++] = ((s_pending_t *)x->pending.v[p])->node;
        if (!x->drop[i])
            nodes[nn++] = x->repl[i] ? x->repl[i] : g->node[i];
    }
    /* initializers: the originals still used, then the new ones */
    size_t *counts = bs_calloc(x->n_init + 1, sizeof *counts);
    if (!counts)
        return s_oom(err);
    s_count_refs(x, nodes, nn, 0, counts);
    for (size_t i = 0; i < g->n_output; i++) {
        long j = s_map_get(&x->inits, g->output[i]->name);
        if (j >= 0)
            counts[j]++;
    }
    Onnx__TensorProto **inits = s_alloc_n(x, x->n_init + x->new_inits.n + 1, sizeof *inits);
    Onnx__ValueInfoProto **ins = s_alloc_n(x, g->n_input + 1, sizeof *ins);
    Onnx__ValueInfoProto **vis = s_alloc_n(x, g->n_value_info + 1, sizeof *vis);
    if (!inits || !ins || !vis) {
        bs_free(counts);
        return s_oom(err);
    }
    size_t ni = 0, nin = 0, nvi = 0;
    int rc = 0;
    for (size_t i = 0; i < x->n_init && rc == 0; i++) {
        if (x->init_cand[i] && counts[i] == 0)
            rc = s_vec_push(&x->gone, x->init[i]->name);
        else
            inits[ni++] = x->init[i];
    }
    bs_free(counts);
    if (rc)
        return s_oom(err);
    for (size_t i = 0; i < x->new_inits.n; i++)
        inits[ni++] = x->new_inits.v[i];
    for (size_t i = 0; i < g->n_input; i++)
        if (!s_is_gone(x, g->input[i]->name))
            ins[nin++] = g->input[i];
    for (size_t i = 0; i < g->n_value_info; i++)
        if (!s_is_gone(x, g->value_info[i]->name))
            vis[nvi++] = g->value_info[i];
    Onnx__GraphProto ng = *g;
    ng.node = nodes;
    ng.n_node = nn;
    ng.initializer = inits;
    ng.n_initializer = ni;
    ng.input = ins;
    ng.n_input = nin;
    ng.value_info = vis;
    ng.n_value_info = nvi;

    /* the model: opset, producer, metadata */
    Onnx__ModelProto nm = *mp;
    nm.graph = &ng;
    Onnx__OperatorSetIdProto **ops = s_alloc_n(x, mp->n_opset_import + 1, sizeof *ops);
    Onnx__StringStringEntryProto **meta = s_alloc_n(x, mp->n_metadata_props + 2, sizeof *meta);
    Onnx__StringStringEntryProto *e = s_alloc_n(x, 2, sizeof *e);
    char *pname = s_printf(x, "bitscout"), *pver = s_printf(x, "%s", BS_VERSION);
    char *k1 = s_printf(x, "bitscout.precision"), *v1 = s_printf(x, "%s", assignment);
    char *k2 = s_printf(x, "bitscout.weight_scales");
    char *v2 = s_printf(x, "%s", wscale_minmax ? "minmax" : "mse");
    if (!ops || !meta || !e || !pname || !pver || !k1 || !v1 || !k2 || !v2)
        return s_oom(err);
    if (mp->n_opset_import)
        memcpy(ops, mp->opset_import, mp->n_opset_import * sizeof *ops);
    int64_t ir = mp->has_ir_version ? mp->ir_version : 0;
    if (need_opset && (rc = s_opset(x, need_opset, ops, mp->n_opset_import, &ir, err)))
        return rc;
    nm.opset_import = ops;
    if (ir != mp->ir_version) {
        nm.has_ir_version = 1;
        nm.ir_version = ir;
    }
    nm.producer_name = pname;
    nm.producer_version = pver;
    size_t nmeta = 0;
    for (size_t i = 0; i < mp->n_metadata_props; i++) {
        const char *k = s_str(mp->metadata_props[i]->key);
        if (strcmp(k, k1) && strcmp(k, k2))
            meta[nmeta++] = mp->metadata_props[i];
    }
    Onnx__StringStringEntryProto ei = ONNX__STRING_STRING_ENTRY_PROTO__INIT;
    e[0] = e[1] = ei;
    e[0].key = k1;
    e[0].value = v1;
    e[1].key = k2;
    e[1].value = v2;
    meta[nmeta++] = &e[0];
    meta[nmeta++] = &e[1];
    nm.metadata_props = meta;
    nm.n_metadata_props = nmeta;

    size_t len = onnx__model_proto__get_packed_size(&nm);
    if (len > S_MAX_BYTES)
        return bs_err_set(err, BS_ETOOBIG, "the exported model would be %zu bytes; an inline "
                                           "ONNX model must stay under 2 GB", len);
    uint8_t *buf = bs_malloc(len ? len : 1);
    if (!buf)
        return bs_err_set(err, BS_ENOMEM, "out of memory for the %zu-byte model", len);
    size_t packed = onnx__model_proto__pack(&nm, buf);
    if (packed != len) {
        bs_free(buf);
        return bs_err_set(err, BS_EIO, "internal: packed %zu of %zu bytes", packed, len);
    }
    *out = buf;
    *out_len = len;
    return 0;
}

/* ---- the export ----------------------------------------------------------------------------- */

void bs_export_info_free(bs_export_info_t *info)
{
    if (!info)
        return;
    bs_free(info->assignment);
    bs_free(info->notes);
    memset(info, 0, sizeof *info);
}

static void s_ex_free(s_ex_t *x)
{
    while (x->blocks) {
        s_blk_t *b = x->blocks;
        x->blocks = b->next;
        bs_free(b);
    }
    s_map_free(&x->tensors);
    s_map_free(&x->node_names);
    s_map_free(&x->inits);
    bs_free(x->new_inits.v);
    bs_free(x->pending.v);
    bs_free(x->gone.v);
    bs_buf_free(&x->notes);
    if (x->mp)
        onnx__model_proto__free_unpacked(x->mp, NULL);
    memset(x, 0, sizeof *x);
}

/* Every name in the graph into the two sets; the initializer map and copies; inline data. */
static int s_index_graph(s_ex_t *x, bs_err_t *err)
{
    Onnx__GraphProto *g = x->g;
    int rc = 0;
    x->n_init = g->n_initializer;
    x->init = s_alloc_n(x, x->n_init + 1, sizeof *x->init);
    x->init_cand = s_alloc(x, x->n_init + 1);
    x->repl = s_alloc_n(x, g->n_node + 1, sizeof *x->repl);
    x->drop = s_alloc(x, g->n_node + 1);
    if (!x->init || !x->init_cand || !x->repl || !x->drop)
        return s_oom(err);
    for (size_t i = 0; i < g->n_initializer && rc >= 0; i++) {
        const Onnx__TensorProto *t = g->initializer[i];
        x->init[i] = (Onnx__TensorProto *)t;
        if (!t->name || !t->name[0])
            continue;
        if ((rc = s_map_put(&x->inits, t->name, i)) == 0)
            return bs_err_set(err, BS_EMODEL, "two initializers are named '%s'", t->name);
        if (rc > 0)
            rc = s_map_put(&x->tensors, t->name, 0);
        if (rc >= 0 && s_is_external(t)) {
            int r2 = s_inline_external(x, t, &x->init[i], err);
            if (r2)
                return r2;
        }
    }
    for (size_t i = 0; i < g->n_node && rc >= 0; i++) {
        const Onnx__NodeProto *n = g->node[i];
        if (!n->op_type)
            return bs_err_set(err, BS_EMODEL, "node %zu ('%s') has no op_type", i,
                              s_str(n->name));
        for (size_t k = 0; k < n->n_input && rc >= 0; k++)
            rc = s_map_put(&x->tensors, n->input[k], 0);
        for (size_t k = 0; k < n->n_output && rc >= 0; k++)
            rc = s_map_put(&x->tensors, n->output[k], 0);
        if (rc >= 0 && n->name)
            rc = s_map_put(&x->node_names, n->name, 0);
    }
    for (size_t i = 0; i < g->n_input && rc >= 0; i++)
        rc = s_map_put(&x->tensors, g->input[i]->name, 0);
    for (size_t i = 0; i < g->n_output && rc >= 0; i++)
        rc = s_map_put(&x->tensors, g->output[i]->name, 0);
    for (size_t i = 0; i < g->n_value_info && rc >= 0; i++)
        rc = s_map_put(&x->tensors, g->value_info[i]->name, 0);
    return rc < 0 ? s_oom(err) : 0;
}

/* Which Conv layers below 32 bits have a BatchNormalization to fold. */
static void s_plan_bn(s_ex_t *x, s_layer_t *layers, int n, const s_map_t *consumers,
                      const s_map_t *outputs)
{
    for (int i = 0; i < n; i++)
        if (layers[i].p.w != 32 && s_init(x, x->g->node[layers[i].node]->input[1]))
            layers[i].bn = s_bn_after(x, layers[i].node, consumers, outputs);
}

int bs_export_buffer(const void *buf, size_t len, const char *base_dir, const char *assignment,
                     const bs_quant_opts_t *q, const bs_act_table_t *act, void **out,
                     size_t *out_len, bs_export_info_t *info, bs_err_t *err)
{
    bs_export_info_t local;
    if (!info)
        info = &local;
    memset(info, 0, sizeof *info);
    *out = NULL;
    *out_len = 0;
    int wscale_minmax = q ? q->wscale_minmax : 0;
    bs_model_info_t mi;
    int rc = bs_model_info_parse(buf, len, &mi, err);
    if (rc)
        return rc;
    s_ex_t x;
    memset(&x, 0, sizeof x);
    x.base_dir = base_dir;
    s_map_t producer = {0}, consumer = {0}, outputs = {0};
    s_layer_t *layers = bs_calloc((size_t)mi.n_layers, sizeof *layers);
    bs_prec_t *precs = bs_calloc((size_t)mi.n_layers, sizeof *precs);
    const char **names = bs_calloc((size_t)mi.n_layers, sizeof *names);
    char *canon = NULL;
    if (!layers || !precs || !names) {
        rc = s_oom(err);
        goto done;
    }
    for (int i = 0; i < mi.n_layers; i++) {
        names[i] = mi.layers[i].name;
        precs[i] = BS_PREC_FP32;
    }
    if (assignment && *assignment &&
        (rc = bs_spec_apply(assignment, names, mi.n_layers, precs, err)))
        goto done;
    if (!(canon = bs_assign_format(names, precs, mi.n_layers))) {
        rc = s_oom(err);
        goto done;
    }
    x.mp = onnx__model_proto__unpack(NULL, len, buf);
    if (!x.mp || !x.mp->graph) { /* bs_model_info_parse accepted it: only memory is left */
        rc = s_oom(err);
        goto done;
    }
    x.g = x.mp->graph;
    if ((rc = s_index_graph(&x, err)) || (rc = s_find_layers(&x, &mi, layers, err)))
        goto done;
    int64_t need = 0;
    for (int i = 0; i < mi.n_layers; i++) {
        layers[i].p = precs[i];
        if (precs[i].a == 8 && need < 10)
            need = 10;
        if (precs[i].w <= 8)
            need = 13;
    }
    if (s_graph_maps(x.g, &producer, &consumer, &outputs)) {
        rc = s_oom(err);
        goto done;
    }
    s_plan_bn(&x, layers, mi.n_layers, &consumer, &outputs);
    for (int i = 0; i < mi.n_layers && rc == 0; i++)
        rc = s_layer(&x, &layers[i], wscale_minmax, act, info, err);
    if (rc == 0)
        rc = s_chain_qdq(&x, layers, mi.n_layers, &producer, &consumer, &outputs, err);
    if (rc == 0)
        rc = s_build(&x, canon, need, wscale_minmax, out, out_len, err);
    if (rc == 0 && x.notes.oom)
        rc = s_oom(err);
    if (rc == 0) {
        info->n_layers = mi.n_layers;
        info->bytes = *out_len;
        info->assignment = canon;
        info->notes = bs_strdup(x.notes.data ? x.notes.data : "");
        canon = NULL;
        if (!info->notes)
            rc = s_oom(err);
    }
done:
    if (rc) {
        bs_free(*out);
        *out = NULL;
        *out_len = 0;
        bs_export_info_free(info);
    } else if (info == &local) {
        bs_export_info_free(&local);
    }
    s_map_free(&producer);
    s_map_free(&consumer);
    s_map_free(&outputs);
    bs_free(canon);
    bs_free(layers);
    bs_free(precs);
    bs_free(names);
    s_ex_free(&x);
    bs_model_info_free(&mi);
    return rc;
}

int bs_export_model(const char *model_path, const char *assignment, const bs_quant_opts_t *q,
                    const bs_act_table_t *act, const char *out_path, bs_export_info_t *info,
                    bs_err_t *err)
{
    char *buf = NULL, *dir = bs_strdup(model_path);
    size_t len = 0;
    void *out = NULL;
    size_t out_len = 0;
    if (info)
        memset(info, 0, sizeof *info);
    if (!dir)
        return s_oom(err);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    int rc = bs_read_file(model_path, BS_MODEL_MAX_BYTES, &buf, &len, err);
    if (rc == 0) {
        rc = bs_export_buffer(buf, len, slash ? dir : ".", assignment, q, act, &out, &out_len,
                              info, err);
        if (rc)
            bs_err_prefix(err, "%s", model_path);
    }
    bs_free(buf);
    bs_free(dir);
    if (rc == 0 && (rc = bs_write_file(out_path, out, out_len, err)))
        bs_export_info_free(info);
    bs_free(out);
    return rc;
}

/* ---- the assignment of a stored evaluation ------------------------------------------------ */

static int s_db_err(sqlite3 *db, const char *path, bs_err_t *err)
{
    return bs_err_set(err, BS_EDB, "%s: %s", path, sqlite3_errmsg(db));
}

/* Says which of campaign / evaluation is missing, naming what exists. */
static int s_eval_missing(sqlite3 *db, const char *db_path, const char *campaign,
                          long long eval_id, bs_err_t *err)
{
    sqlite3_stmt *s = NULL;
    bs_buf_t names = {0};
    int rc;
    if (sqlite3_prepare_v2(db, "SELECT name FROM campaigns ORDER BY id", -1, &s, NULL))
        return s_db_err(db, db_path, err);
    int found = 0, n = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(s, 0);
        found |= name && !strcmp(name, campaign);
        if (n++ < 20)
            bs_buf_printf(&names, "%s%s", n > 1 ? ", " : "", name ? name : "");
    }
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE) {
        bs_buf_free(&names);
        return s_db_err(db, db_path, err);
    }
    if (!found) {
        rc = bs_err_set(err, BS_ENOENT, "%s: no campaign named '%s' (%s%s%s)", db_path, campaign,
                        n ? "campaigns: " : "the database has no campaign",
                        names.data ? names.data : "", n > 20 ? ", ..." : "");
        bs_buf_free(&names);
        return rc;
    }
    bs_buf_free(&names);
    if (sqlite3_prepare_v2(db, "SELECT count(*), min(eval_id), max(eval_id) FROM results "
                               "WHERE campaign = ?1", -1, &s, NULL) ||
        sqlite3_bind_text(s, 1, campaign, -1, SQLITE_STATIC) ||
        sqlite3_step(s) != SQLITE_ROW) {
        rc = s_db_err(db, db_path, err);
        sqlite3_finalize(s);
        return rc;
    }
    long long cnt = sqlite3_column_int64(s, 0), lo = sqlite3_column_int64(s, 1),
              hi = sqlite3_column_int64(s, 2);
    sqlite3_finalize(s);
    if (cnt == 0)
        return bs_err_set(err, BS_ENOENT, "%s: evaluation %lld not found: campaign '%s' has no "
                                          "evaluations yet", db_path, eval_id, campaign);
    return bs_err_set(err, BS_ENOENT, "%s: evaluation %lld not found in campaign '%s' (its %lld "
                                      "evaluations have ids %lld..%lld; `bitscout query evals "
                                      "--campaign %s` lists them)", db_path, eval_id, campaign,
                      cnt, lo, hi, campaign);
}

int bs_export_eval_assignment(const char *db_path, const char *campaign, long long eval_id,
                              const char *model_sha256, char **assignment, bs_err_t *err)
{
    *assignment = NULL;
    bs_store_t *st = NULL;
    int rc = bs_store_open(db_path, 1, &st, err);
    if (rc)
        return rc;
    sqlite3 *db = bs_store_db(st);
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db, "SELECT r.assignment, r.status, c.model_sha256 FROM results r "
                               "JOIN campaigns c ON c.name = r.campaign "
                               "WHERE r.campaign = ?1 AND r.eval_id = ?2", -1, &s, NULL) ||
        sqlite3_bind_text(s, 1, campaign, -1, SQLITE_STATIC) ||
        sqlite3_bind_int64(s, 2, eval_id)) {
        rc = s_db_err(db, db_path, err);
        goto done;
    }
    int step = sqlite3_step(s);
    if (step == SQLITE_DONE) {
        rc = s_eval_missing(db, db_path, campaign, eval_id, err);
        goto done;
    }
    if (step != SQLITE_ROW) {
        rc = s_db_err(db, db_path, err);
        goto done;
    }
    const char *a = (const char *)sqlite3_column_text(s, 0);
    const char *status = (const char *)sqlite3_column_text(s, 1);
    const char *sha = (const char *)sqlite3_column_text(s, 2);
    if (!a || !*a) {
        rc = bs_err_set(err, BS_EDB, "%s: evaluation %lld of campaign '%s' has no assignment",
                        db_path, eval_id, campaign);
        goto done;
    }
    if (model_sha256 && sha && strcmp(sha, model_sha256) != 0) {
        rc = bs_err_set(err, BS_EINVAL,
                        "%s: campaign '%s' searched a model with SHA-256 %.12s..., but the "
                        "campaign file's model has %.12s...: export from the model the "
                        "campaign ran on",
                        db_path, campaign, sha, model_sha256);
        goto done;
    }
    if (status && strcmp(status, "ok") != 0)
        BS_WARN("export", "evaluation %lld of campaign '%s' is '%s' (it was never measured); "
                          "exporting its assignment anyway", eval_id, campaign, status);
    if (!(*assignment = bs_strdup(a)))
        rc = s_oom(err);
done:
    sqlite3_finalize(s);
    bs_store_close(&st);
    return rc;
}

/* ---- the subcommand ----------------------------------------------------------------------- */

static void s_usage(FILE *f)
{
    fputs("usage:\n"
          "  bitscout export --config CAMPAIGN.json --precision SPEC --out M.q.onnx\n"
          "  bitscout export --config CAMPAIGN.json --db FILE [--campaign NAME] --eval ID\n"
          "                  --out M.q.onnx\n"
          "                  [--threads N] [--log-level error|warn|info|debug]\n"
          "\n"
          "Writes the campaign's model at one precision assignment as a standard ONNX model:\n"
          "fp16 weights as FLOAT16 + Cast, int8..int2 weights as INT8 codes + per-channel\n"
          "DequantizeLinear, int8 activations as QuantizeLinear/DequantizeLinear (calibrated on\n"
          "the campaign's data.calibration), with exactly the engine's quantized values.\n"
          "--precision takes a spec (\"*=w8a8,fc2=w32a32\") or an assignment; --eval takes the\n"
          "assignment of a stored evaluation (eval_id in `bitscout query evals`); --campaign\n"
          "defaults to the campaign file's name. --threads: threads for calibration.\n",
          f);
}

static int s_usage_err(const char *fmt, const char *arg)
{
    fprintf(stderr, "bitscout export: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n\n");
    s_usage(stderr);
    return 2;
}

/* Whether any layer of the model is a8 under spec (so calibration is needed); the a8 layers'
 * names into *which. */
static int s_any_a8(const char *model, const char *spec, bs_buf_t *which, bs_err_t *err)
{
    bs_model_info_t mi;
    int rc = bs_model_info_load(model, &mi, err);
    if (rc)
        return rc;
    bs_prec_t *p = bs_calloc((size_t)mi.n_layers, sizeof *p);
    const char **names = bs_calloc((size_t)mi.n_layers, sizeof *names);
    if (!p || !names) {
        rc = s_oom(err);
    } else {
        for (int i = 0; i < mi.n_layers; i++) {
            names[i] = mi.layers[i].name;
            p[i] = BS_PREC_FP32;
        }
        rc = spec && *spec ? bs_spec_apply(spec, names, mi.n_layers, p, err) : 0;
        int any = 0;
        for (int i = 0; rc == 0 && i < mi.n_layers; i++)
            if (p[i].a == 8)
                bs_buf_printf(which, "%s%s", any++ ? ", " : "", names[i]);
        if (rc == 0)
            rc = any;
    }
    bs_free(p);
    bs_free(names);
    bs_model_info_free(&mi);
    return rc;
}

/* --out's directory must exist and be writable, and --out must not be a directory. */
static int s_check_out(const char *out, bs_err_t *err)
{
    struct stat sb;
    if (!*out)
        return bs_err_set(err, BS_EINVAL, "--out: expected a file name");
    if (stat(out, &sb) == 0 && S_ISDIR(sb.st_mode))
        return bs_err_set(err, BS_EINVAL, "--out %s: is a directory", out);
    char *dir = bs_strdup(out);
    if (!dir)
        return s_oom(err);
    char *slash = strrchr(dir, '/');
    const char *d = slash ? (slash == dir ? "/" : (*slash = '\0', dir)) : ".";
    int rc = 0;
    if (stat(d, &sb) != 0 || !S_ISDIR(sb.st_mode))
        rc = bs_err_set(err, BS_EINVAL, "--out %s: directory %s does not exist", out, d);
    else if (access(d, W_OK) != 0)
        rc = bs_err_set(err, BS_EINVAL, "--out %s: directory %s is not writable: %s", out, d,
                        strerror(errno));
    bs_free(dir);
    return rc;
}

int bs_export_main(int argc, char **argv)
{
    const char *config = NULL, *precision = NULL, *db = NULL, *campaign = NULL, *out = NULL;
    long long eval_id = 0;
    long threads = 1;
    for (int i = 1; i < argc; i += 2) { /* every option takes a value */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            s_usage(stdout);
            return 0;
        }
        if (a[0] != '-')
            return s_usage_err("unexpected argument \"%s\"", a);
        if (!v)
            return s_usage_err("%s needs a value", a);
        if (!strcmp(a, "--config"))
            config = v;
        else if (!strcmp(a, "--precision"))
            precision = v;
        else if (!strcmp(a, "--db"))
            db = v;
        else if (!strcmp(a, "--campaign"))
            campaign = v;
        else if (!strcmp(a, "--out"))
            out = v;
        else if (!strcmp(a, "--eval")) {
            errno = 0;
            eval_id = strtoll(v, &end, 10);
            if (errno || !*v || *end || eval_id < 1)
                return s_usage_err("--eval \"%s\": expected an evaluation id (an integer >= 1)",
                                   v);
        } else if (!strcmp(a, "--threads")) {
            errno = 0;
            threads = strtol(v, &end, 10);
            if (errno || !*v || *end || threads < 1 || threads > 1024)
                return s_usage_err("--threads \"%s\": expected an integer from 1 to 1024", v);
        } else if (!strcmp(a, "--log-level")) {
            if (bs_log_parse_level(v, &bs_log_level))
                return s_usage_err("--log-level \"%s\": expected error, warn, info or debug", v);
        } else {
            return s_usage_err("unknown option %s", a);
        }
    }
    if (!config)
        return s_usage_err("missing --config CAMPAIGN.json (the campaign file: model, "
                           "calibration data)%s", "");
    if (!out)
        return s_usage_err("missing --out FILE (the ONNX model to write)%s", "");
    if (precision && (db || eval_id || campaign))
        return s_usage_err("give either --precision or --db/--eval, not both%s", "");
    if (!precision && !eval_id)
        return s_usage_err("missing --precision SPEC or --db FILE --eval ID (which assignment "
                           "to export)%s", "");
    if (eval_id && !db)
        return s_usage_err("--eval needs --db FILE (the results database)%s", "");
    if (db && !eval_id)
        return s_usage_err("--db needs --eval ID (which evaluation to export)%s", "");

    bs_err_t err = {0};
    bs_campaign_file_t c;
    memset(&c, 0, sizeof c);
    bs_act_table_t act;
    memset(&act, 0, sizeof act);
    bs_export_info_t info;
    memset(&info, 0, sizeof info);
    bs_buf_t a8 = {0};
    char *assignment = NULL;
    int rc = bs_campaign_file_load(config, &c, &err);
    if (rc == 0 && !c.model)
        rc = bs_err_set(&err, BS_ECONFIG, "%s: model: required key missing (the ONNX model)",
                        config);
    if (rc == 0)
        rc = s_check_out(out, &err);
    if (rc == 0 && eval_id) {
        const char *name = campaign ? campaign : c.name;
        char sha[BS_SHA256_HEX_LEN + 1];
        if (!name || !*name)
            rc = bs_err_set(&err, BS_ECONFIG, "%s: name: missing; give --campaign NAME", config);
        else if ((rc = bs_sha256_file(c.model, sha, NULL, &err)) == 0)
            rc = bs_export_eval_assignment(db, name, eval_id, sha, &assignment, &err);
        if (rc == 0)
            precision = assignment;
    }
    if (rc == 0 && (rc = s_any_a8(c.model, precision, &a8, &err)) > 0) {
        if (!c.calib) {
            rc = bs_err_set(&err, BS_ECONFIG, "%s: data.calibration: required to export int8 "
                                              "activations (layers %s): add data.calibration."
                                              "images", config, a8.data ? a8.data : "");
        } else {
            BS_INFO("export", "calibrating %s on %s", c.model, c.calib);
            rc = bs_run_calibrate(c.model, (int)threads, &c.quant, &act, &err);
        }
    }
    if (rc == 0)
        rc = bs_export_model(c.model, precision, &c.quant, act.n ? &act : NULL, out, &info, &err);
    if (rc == 0) {
        for (const char *l = info.notes; l && *l;) {
            const char *nl = strchr(l, '\n');
            int n = nl ? (int)(nl - l) : (int)strlen(l);
            fprintf(stderr, "bitscout export: note: %.*s\n", n, l);
            l += n + (nl ? 1 : 0);
        }
        printf("wrote %s (%zu bytes): %d layers, %d integer, %d fp16, %d with int8 inputs\n"
               "precision %s\n",
               out, info.bytes, info.n_layers, info.n_int, info.n_f16, info.n_a8,
               info.assignment);
    } else {
        fprintf(stderr, "bitscout export: %s\n", err.msg[0] ? err.msg : bs_strerror(rc));
    }
    bs_buf_free(&a8);
    bs_free(assignment);
    bs_export_info_free(&info);
    bs_act_table_free(&act);
    bs_campaign_file_free(&c);
    return rc ? 1 : 0;
}

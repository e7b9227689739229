/*
 * bs_graph.c - load an ONNX model into the engine's graph and run it.
 *
 * The passes are described in bs_graph.h: parse (protobuf-c), infer + fold, fuse, precisions
 * (and uint8 chaining), prepare, plan, and run. Notes on the less obvious parts:
 *
 * - Names: tensors are found by name through a small open-addressing hash (name -> index), so
 *   loading is linear in the model size. A node may only read values defined before it
 *   (initializers, graph inputs, outputs of earlier nodes): ONNX requires topological order.
 * - Folding runs an op on its const inputs at load time, with a temporary scratch buffer; the
 *   outputs become const tensors that own their bytes.
 * - BatchNormalization folding writes new const weight and bias tensors for the Conv (the
 *   originals may be shared with other nodes, so they are never modified in place).
 * - Aliases (Reshape, Flatten, Squeeze, Unsqueeze, Identity): the output shares the bytes of
 *   its input's root tensor, and the root's lifetime is extended to the alias's last use.
 * - The planner places every arena tensor (graph inputs and run-time values), largest first,
 *   at the lowest 64-byte-aligned offset that overlaps no already placed tensor whose lifetime
 *   [first_use, last_use] intersects its own. Graph outputs live to the end.
 * - Const tensors that no live node reads after folding and fusion are freed, so the weight
 *   bytes reported are the bytes the engine really holds for the model.
 */
#define _GNU_SOURCE
#include "bs_graph.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bs_alloc.h"
#include "bs_op.h"
#include "bs_ops_internal.h"
#include "bs_threadpool.h"
#include "bs_util.h"
#include "onnx.pb-c.h"

#define S_ALIGN 64
#define S_FOLD_MAX_BYTES ((size_t)256 << 20)

/* ---- small helpers ------------------------------------------------------------------------ */

static void *s_aligned_alloc(size_t n)
{
    void *p = NULL;
    if (posix_memalign(&p, S_ALIGN, n ? (n + S_ALIGN - 1) / S_ALIGN * S_ALIGN : S_ALIGN))
        return NULL;
    return p;
}

int bs_node_err(bs_err_t *err, const bs_node_t *n, int code, const char *fmt, ...)
{
    char msg[BS_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return bs_err_set(err, code, "node '%s' (%s): %s", n->name, n->op_type, msg);
}

bs_tensor_t *bs_node_input(bs_graph_t *g, const bs_node_t *n, int k)
{
    if (k < 0 || k >= n->n_in || n->in[k] < 0)
        return NULL;
    return &g->tensors[n->in[k]];
}

bs_tensor_t *bs_node_output(bs_graph_t *g, const bs_node_t *n, int k)
{
    if (k < 0 || k >= n->n_out || n->out[k] < 0)
        return NULL;
    return &g->tensors[n->out[k]];
}

const bs_attr_t *bs_node_attr(const bs_node_t *n, const char *name)
{
    for (int i = 0; i < n->n_attrs; i++)
        if (strcmp(n->attrs[i].name, name) == 0)
            return &n->attrs[i];
    return NULL;
}

/* An attribute present with another type than the op reads is a malformed model, not an
 * absent attribute: the accessor returns the default and records the mismatch on the node,
 * and the loader turns it into an error naming the node and the attribute after infer(). The
 * node is the graph's own mutable storage; the accessors take it const for the ops' sake. */
static void s_attr_mismatch(const bs_node_t *n, const bs_attr_t *a, const char *want)
{
    static const char *const names[] = {"?", "FLOAT", "INT", "STRING", "TENSOR", "GRAPH",
                                        "FLOATS", "INTS", "STRINGS"};
    bs_node_t *m = (bs_node_t *)n;
    if (m->bad_attr)
        return;
    m->bad_attr = a->name;
    snprintf(m->bad_attr_why, sizeof m->bad_attr_why, "%s, expected %s",
             a->type >= 0 && a->type <= 8 ? names[a->type] : "?", want);
}

int64_t bs_attr_int(const bs_node_t *n, const char *name, int64_t dflt)
{
    const bs_attr_t *a = bs_node_attr(n, name);
    if (a && a->type == BS_ATTR_INT)
        return a->i;
    if (a)
        s_attr_mismatch(n, a, "INT");
    return dflt;
}

float bs_attr_float(const bs_node_t *n, const char *name, float dflt)
{
    const bs_attr_t *a = bs_node_attr(n, name);
    if (a && a->type == BS_ATTR_FLOAT)
        return a->f;
    if (a && a->type == BS_ATTR_INT)
        return (float)a->i;
    if (a)
        s_attr_mismatch(n, a, "FLOAT");
    return dflt;
}

const char *bs_attr_string(const bs_node_t *n, const char *name, const char *dflt)
{
    const bs_attr_t *a = bs_node_attr(n, name);
    if (a && a->type == BS_ATTR_STRING)
        return a->s;
    if (a)
        s_attr_mismatch(n, a, "STRING");
    return dflt;
}

int bs_attr_ints(const bs_node_t *n, const char *name, const int64_t **v)
{
    const bs_attr_t *a = bs_node_attr(n, name);
    if (!a)
        return -1;
    if (a->type != BS_ATTR_INTS) {
        s_attr_mismatch(n, a, "INTS");
        return -1;
    }
    *v = a->ints;
    return a->n;
}

int bs_attr_floats(const bs_node_t *n, const char *name, const float **v)
{
    const bs_attr_t *a = bs_node_attr(n, name);
    if (!a)
        return -1;
    if (a->type != BS_ATTR_FLOATS) {
        s_attr_mismatch(n, a, "FLOATS");
        return -1;
    }
    *v = a->floats;
    return a->n;
}

/* Byte size of a shape, or -1 when a dimension is negative or the size passes
 * S_MAX_TENSOR_BYTES (also catches products that would overflow). */
#define S_MAX_TENSOR_BYTES ((int64_t)1 << 40)
static int64_t s_checked_bytes(const bs_shape_t *shape, int dtype)
{
    int64_t n = (int64_t)bs_dtype_size(dtype);
    if (shape->rank < 0 || shape->rank > BS_MAX_RANK)
        return -1;
    for (int i = 0; i < shape->rank; i++) {
        int64_t d = shape->d[i];
        if (d < 0 || (d > 0 && n > S_MAX_TENSOR_BYTES / d))
            return -1;
        n *= d;
    }
    return n;
}

void bs_tensor_set(bs_tensor_t *t, int dtype, const bs_shape_t *shape)
{
    t->dtype = dtype;
    t->shape = *shape;
    t->has_shape = 1;
    int64_t n = s_checked_bytes(shape, dtype);
    t->nbytes = n > 0 ? (size_t)n : 0;
    t->bad_size = n < 0;
}

void bs_tensor_clear(bs_tensor_t *t)
{
    if (!t)
        return;
    bs_free(t->name);
    if (t->kind == BS_TENSOR_CONST)
        free(t->data); /* const data comes from s_aligned_alloc */
    memset(t, 0, sizeof *t);
}

/* ---- tensors from protobuf ---------------------------------------------------------------- */

static int s_dims(const Onnx__TensorProto *tp, bs_shape_t *shape, bs_err_t *err)
{
    const char *name = tp->name ? tp->name : "";
    if (tp->n_dims > BS_MAX_RANK)
        return bs_err_set(err, BS_EMODEL, "tensor '%s': rank %zu exceeds the engine's %d",
                          name, tp->n_dims, BS_MAX_RANK);
    shape->rank = (int)tp->n_dims;
    int64_t numel = 1;
    for (size_t i = 0; i < tp->n_dims; i++) {
        int64_t d = tp->dims[i];
        if (d < 0 || (d > 0 && numel > ((int64_t)1 << 40) / d))
            return bs_err_set(err, BS_EMODEL, "tensor '%s': bad dimension %lld", name,
                              (long long)d);
        shape->d[i] = d;
        numel *= d;
    }
    return 0;
}

static int s_read_external(const Onnx__TensorProto *tp, const char *base_dir, void *dst,
                           size_t nbytes, bs_err_t *err)
{
    const char *loc = NULL;
    int64_t offset = 0, length = -1;
    const char *name = tp->name ? tp->name : "";
    for (size_t i = 0; i < tp->n_external_data; i++) {
        const Onnx__StringStringEntryProto *e = tp->external_data[i];
        if (!e->key || !e->value)
            continue;
        if (!strcmp(e->key, "location"))
            loc = e->value;
        else if (!strcmp(e->key, "offset"))
            offset = strtoll(e->value, NULL, 10);
        else if (!strcmp(e->key, "length"))
            length = strtoll(e->value, NULL, 10);
    }
    if (!loc || !*loc || loc[0] == '/' || strstr(loc, ".."))
        return bs_err_set(err, BS_EMODEL, "tensor '%s': external data needs a relative "
                                          "location inside the model's directory", name);
    if (offset < 0 || (length >= 0 && (size_t)length != nbytes))
        return bs_err_set(err, BS_EMODEL, "tensor '%s': external data offset/length do not "
                                          "match its %zu bytes", name, nbytes);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", base_dir ? base_dir : ".", loc);
    FILE *f = fopen(path, "rb");
    if (!f)
        return bs_err_set(err, BS_EMODEL, "tensor '%s': cannot open external data %s", name,
                          path);
    int ok = fseeko(f, (off_t)offset, SEEK_SET) == 0 && fread(dst, 1, nbytes, f) == nbytes;
    fclose(f);
    if (!ok)
        return bs_err_set(err, BS_EMODEL, "tensor '%s': external data file %s is shorter "
                                          "than offset %lld + %zu bytes",
                          name, path, (long long)offset, nbytes);
    return 0;
}

/* Fills t (dtype, shape, kind CONST, owned data) from a TensorProto. t->name is not set. */
static int s_tensor_from_proto(const Onnx__TensorProto *tp, const char *base_dir,
                               bs_tensor_t *t, bs_err_t *err)
{
    const char *name = tp->name ? tp->name : "";
    bs_shape_t shape;
    int rc = s_dims(tp, &shape, err);
    if (rc)
        return rc;
    int dt = tp->has_data_type ? tp->data_type : 0;
    size_t es = bs_dtype_size(dt);
    if (!es)
        return bs_err_set(err, BS_EMODEL, "tensor '%s': element type %s (%d) is not supported",
                          name, bs_dtype_name(dt), dt);
    t->kind = BS_TENSOR_CONST;
    t->arena_off = -1;
    t->producer = -1;
    t->alias_of = -1;
    bs_tensor_set(t, dt, &shape);
    if (t->bad_size)
        return bs_err_set(err, BS_EMODEL, "tensor '%s': larger than the engine's limit of 2^40 "
                                          "bytes", name);
    size_t n = (size_t)bs_shape_numel(&shape);
    int external = tp->has_data_location &&
                   tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    /* Check what the file holds before allocating what the shape claims. */
    if (!external && tp->has_raw_data && tp->raw_data.len != t->nbytes)
        return bs_err_set(err, BS_EMODEL, "tensor '%s': raw_data has %zu bytes, shape and "
                                          "type need %zu", name, tp->raw_data.len, t->nbytes);
    if (!external && !tp->has_raw_data) {
        size_t have = dt == BS_DT_FLOAT   ? tp->n_float_data
                      : dt == BS_DT_INT64  ? tp->n_int64_data
                      : dt == BS_DT_DOUBLE ? tp->n_double_data
                      : (dt == BS_DT_UINT32 || dt == BS_DT_UINT64) ? tp->n_uint64_data
                                                                  : tp->n_int32_data;
        if (have != n)
            return bs_err_set(err, BS_EMODEL, "tensor '%s': holds %zu values, its shape needs "
                                              "%zu", name, have, n);
    }
    void *d = s_aligned_alloc(t->nbytes);
    if (!d)
        return bs_err_set(err, BS_ENOMEM, "tensor '%s': out of memory for %zu bytes", name,
                          t->nbytes);
    t->data = d;
    if (tp->has_data_location && tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
        return s_read_external(tp, base_dir, d, t->nbytes, err);
    if (tp->has_raw_data) {
        if (tp->raw_data.len != t->nbytes)
            return bs_err_set(err, BS_EMODEL, "tensor '%s': raw_data has %zu bytes, shape and "
                                              "type need %zu", name, tp->raw_data.len,
                              t->nbytes);
        if (t->nbytes)
            memcpy(d, tp->raw_data.data, t->nbytes);
        return 0;
    }
    size_t have;
    switch (dt) {
    case BS_DT_FLOAT:
        have = tp->n_float_data;
        if (have == n && n)
            memcpy(d, tp->float_data, n * 4);
        break;
    case BS_DT_INT64:
        have = tp->n_int64_data;
        if (have == n && n)
            memcpy(d, tp->int64_data, n * 8);
        break;
    case BS_DT_DOUBLE:
        have = tp->n_double_data;
        if (have == n && n)
            memcpy(d, tp->double_data, n * 8);
        break;
    case BS_DT_UINT32:
    case BS_DT_UINT64:
        have = tp->n_uint64_data;
        for (size_t i = 0; have == n && i < n; i++) {
            if (dt == BS_DT_UINT32)
                ((uint32_t *)d)[i] = (uint32_t)tp->uint64_data[i];
            else
                ((uint64_t *)d)[i] = tp->uint64_data[i];
        }
        break;
    default: /* int32, int16, int8, uint8, uint16, bool, float16 travel in int32_data */
        have = tp->n_int32_data;
        for (size_t i = 0; have == n && i < n; i++) {
            int32_t v = tp->int32_data[i];
            switch (es) {
            case 4:
                ((int32_t *)d)[i] = v;
                break;
            case 2:
                ((uint16_t *)d)[i] = (uint16_t)v;
                break;
            default:
                ((uint8_t *)d)[i] = (uint8_t)v;
                break;
            }
        }
        break;
    }
    if (have != n)
        return bs_err_set(err, BS_EMODEL, "tensor '%s': holds %zu values, its shape needs %zu",
                          name, have, n);
    return 0;
}

int bs_tensor_load_pb(const char *path, bs_tensor_t *out, bs_err_t *err)
{
    char *buf;
    size_t len;
    memset(out, 0, sizeof *out);
    int rc = bs_read_file(path, (size_t)1 << 31, &buf, &len, err);
    if (rc)
        return rc;
    Onnx__TensorProto *tp = onnx__tensor_proto__unpack(NULL, len, (const uint8_t *)buf);
    bs_free(buf);
    if (!tp)
        return bs_err_set(err, BS_EMODEL, "%s: not a serialized ONNX TensorProto", path);
    char *dir = bs_strdup(path);
    char *slash = dir ? strrchr(dir, '/') : NULL;
    if (slash)
        *slash = '\0';
    rc = s_tensor_from_proto(tp, slash ? dir : ".", out, err);
    if (rc == 0 && !(out->name = bs_strdup(tp->name ? tp->name : "")))
        rc = bs_err_set(err, BS_ENOMEM, "out of memory");
    onnx__tensor_proto__free_unpacked(tp, NULL);
    bs_free(dir);
    if (rc) {
        bs_err_prefix(err, "%s", path);
        bs_tensor_clear(out);
    }
    return rc;
}

/* ---- the name table ----------------------------------------------------------------------- */

typedef struct s_names {
    int *slots; /* tensor index + 1; 0 = empty */
    size_t cap;
} s_names_t;

static int s_names_find(const s_names_t *nt, const bs_graph_t *g, const char *name)
{
    if (!nt->cap)
        return -1;
    for (size_t i = bs_hash_str(name) & (nt->cap - 1);; i = (i + 1) & (nt->cap - 1)) {
        if (!nt->slots[i])
            return -1;
        if (strcmp(g->tensors[nt->slots[i] - 1].name, name) == 0)
            return nt->slots[i] - 1;
    }
}

static int s_names_put(s_names_t *nt, const bs_graph_t *g, int idx)
{
    if ((size_t)(g->n_tensors + 1) * 2 > nt->cap) {
        size_t cap = nt->cap ? nt->cap * 2 : 256;
        while (cap < (size_t)(g->n_tensors + 1) * 2)
            cap *= 2;
        int *slots = bs_calloc(cap, sizeof *slots);
        if (!slots)
            return BS_ENOMEM;
        for (size_t i = 0; i < nt->cap; i++) {
            if (!nt->slots[i])
                continue;
            size_t j = bs_hash_str(g->tensors[nt->slots[i] - 1].name) & (cap - 1);
            while (slots[j])
                j = (j + 1) & (cap - 1);
            slots[j] = nt->slots[i];
        }
        bs_free(nt->slots);
        nt->slots = slots;
        nt->cap = cap;
    }
    size_t i = bs_hash_str(g->tensors[idx].name) & (nt->cap - 1);
    while (nt->slots[i])
        i = (i + 1) & (nt->cap - 1);
    nt->slots[i] = idx + 1;
    return 0;
}

/* Appends a tensor named name (copied); returns its index or a negative code. */
static int s_tensor_new(bs_graph_t *g, s_names_t *nt, const char *name)
{
    if (g->n_tensors == g->cap_tensors) {
        int cap = g->cap_tensors ? g->cap_tensors * 2 : 64;
        bs_tensor_t *t = bs_realloc(g->tensors, sizeof *t * (size_t)cap);
        if (!t)
            return BS_ENOMEM;
        g->tensors = t;
        g->cap_tensors = cap;
    }
    bs_tensor_t *t = &g->tensors[g->n_tensors];
    memset(t, 0, sizeof *t);
    t->arena_off = -1;
    t->producer = -1;
    t->first_use = t->last_use = -1;
    t->alias_of = -1;
    t->kind = BS_TENSOR_ACT;
    if (!(t->name = bs_strdup(name)))
        return BS_ENOMEM;
    int idx = g->n_tensors++;
    if (nt && name[0] && s_names_put(nt, g, idx))
        return BS_ENOMEM;
    return idx;
}

/* ---- parse -------------------------------------------------------------------------------- */

static int s_copy_attr(const Onnx__AttributeProto *ap, bs_attr_t *a, const char *base_dir,
                       bs_err_t *err)
{
    if (!(a->name = bs_strdup(ap->name ? ap->name : "")))
        return bs_err_set(err, BS_ENOMEM, "out of memory");
    a->type = ap->has_type ? (int)ap->type : 0;
    a->i = ap->i;
    a->f = ap->f;
    switch (a->type) {
    case BS_ATTR_STRING:
        if (!(a->s = bs_strndup((const char *)ap->s.data, ap->s.len)))
            return bs_err_set(err, BS_ENOMEM, "out of memory");
        break;
    case BS_ATTR_INTS:
        a->n = (int)ap->n_ints;
        a->ints = bs_malloc(sizeof *a->ints * (ap->n_ints + 1));
        if (!a->ints)
            return bs_err_set(err, BS_ENOMEM, "out of memory");
        if (ap->n_ints)
            memcpy(a->ints, ap->ints, sizeof *a->ints * ap->n_ints);
        break;
    case BS_ATTR_FLOATS:
        a->n = (int)ap->n_floats;
        a->floats = bs_malloc(sizeof *a->floats * (ap->n_floats + 1));
        if (!a->floats)
            return bs_err_set(err, BS_ENOMEM, "out of memory");
        if (ap->n_floats)
            memcpy(a->floats, ap->floats, sizeof *a->floats * ap->n_floats);
        break;
    case BS_ATTR_TENSOR:
        if (!ap->t)
            return bs_err_set(err, BS_EMODEL, "attribute '%s' has no tensor", a->name);
        if (!(a->t = bs_calloc(1, sizeof *a->t)))
            return bs_err_set(err, BS_ENOMEM, "out of memory");
        return s_tensor_from_proto(ap->t, base_dir, a->t, err);
    default:
        break; /* graphs, sparse tensors, strings lists: kept as type only; ops refuse them */
    }
    return 0;
}

static int s_node_new(bs_graph_t *g, bs_node_t **out)
{
    if (g->n_nodes == g->cap_nodes) {
        int cap = g->cap_nodes ? g->cap_nodes * 2 : 64;
        bs_node_t *n = bs_realloc(g->nodes, sizeof *n * (size_t)cap);
        if (!n)
            return BS_ENOMEM;
        g->nodes = n;
        g->cap_nodes = cap;
    }
    *out = &g->nodes[g->n_nodes++];
    memset(*out, 0, sizeof **out);
    (*out)->prec = BS_PREC_FP32;
    return 0;
}

static int s_value_shape(const Onnx__ValueInfoProto *vi, const bs_graph_opts_t *o, int pos,
                         bs_tensor_t *t, bs_err_t *err)
{
    const char *name = vi->name ? vi->name : "";
    if (!vi->type || vi->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE ||
        !vi->type->tensor_type)
        return bs_err_set(err, BS_EMODEL, "graph input '%s' is not a tensor", name);
    const Onnx__TypeProto__Tensor *tt = vi->type->tensor_type;
    int dt = tt->has_elem_type ? tt->elem_type : 0;
    if (!bs_dtype_size(dt))
        return bs_err_set(err, BS_EMODEL, "graph input '%s': element type %s is not supported",
                          name, bs_dtype_name(dt));
    bs_shape_t s = {0};
    if (o->input_shapes && pos < o->n_input_shapes) {
        s = o->input_shapes[pos];
    } else if (tt->shape) {
        if (tt->shape->n_dim > BS_MAX_RANK)
            return bs_err_set(err, BS_EMODEL, "graph input '%s': rank too high", name);
        s.rank = (int)tt->shape->n_dim;
        for (int i = 0; i < s.rank; i++) {
            const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[i];
            int fixed = d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            if (fixed && d->dim_value < 0)
                return bs_err_set(err, BS_EMODEL, "graph input '%s': negative dimension %lld "
                                  "at axis %d", name, (long long)d->dim_value, i);
            s.d[i] = fixed ? d->dim_value : o->free_dim;
        }
    } else {
        return bs_err_set(err, BS_EMODEL, "graph input '%s' has no shape; pass its shape",
                          name);
    }
    for (int i = 0; i < s.rank; i++)
        if (s.d[i] < 0 || s.d[i] > ((int64_t)1 << 31))
            return bs_err_set(err, BS_EMODEL, "graph input '%s': bad dimension %lld", name,
                              (long long)s.d[i]);
    bs_tensor_set(t, dt, &s);
    if (t->bad_size)
        return bs_err_set(err, BS_EMODEL, "graph input '%s' is larger than the engine's limit "
                                          "of 2^40 bytes", name);
    t->kind = BS_TENSOR_INPUT;
    return 0;
}

static int s_parse(bs_graph_t *g, const Onnx__ModelProto *mp, s_names_t *nt, bs_err_t *err)
{
    const Onnx__GraphProto *gp = mp->graph;
    int rc;
    if (!gp)
        return bs_err_set(err, BS_EMODEL, "the model has no graph");
    g->opset = 0;
    for (size_t i = 0; i < mp->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = mp->opset_import[i];
        if ((!o->domain || !o->domain[0] || !strcmp(o->domain, "ai.onnx")) && o->has_version)
            g->opset = o->version;
    }
    if (g->opset == 0)
        g->opset = 1;
    if (g->opset > BS_MAX_OPSET)
        return bs_err_set(err, BS_EUNSUPPORTED, "the model uses opset %lld; this engine "
                          "implements the default domain up to opset %d",
                          (long long)g->opset, BS_MAX_OPSET);
    for (size_t i = 0; i < gp->n_initializer; i++) {
        const Onnx__TensorProto *tp = gp->initializer[i];
        if (!tp->name || !tp->name[0])
            return bs_err_set(err, BS_EMODEL, "initializer %zu has no name", i);
        if (s_names_find(nt, g, tp->name) >= 0)
            return bs_err_set(err, BS_EMODEL, "initializer '%s' is defined twice", tp->name);
        int idx = s_tensor_new(g, nt, tp->name);
        if (idx < 0)
            return bs_err_set(err, BS_ENOMEM, "out of memory");
        if ((rc = s_tensor_from_proto(tp, g->base_dir, &g->tensors[idx], err)))
            return rc;
    }
    g->inputs = bs_calloc(gp->n_input + 1, sizeof *g->inputs);
    if (!g->inputs)
        return bs_err_set(err, BS_ENOMEM, "out of memory");
    int pos = 0;
    for (size_t i = 0; i < gp->n_input; i++) {
        const Onnx__ValueInfoProto *vi = gp->input[i];
        if (!vi->name || !vi->name[0])
            return bs_err_set(err, BS_EMODEL, "graph input %zu has no name", i);
        int known = s_names_find(nt, g, vi->name);
        if (known >= 0 && g->tensors[known].kind == BS_TENSOR_INPUT)
            return bs_err_set(err, BS_EMODEL, "graph input '%s' is listed twice", vi->name);
        if (known >= 0)
            continue; /* an initializer listed as input (older exporters): a constant */
        int idx = s_tensor_new(g, nt, vi->name);
        if (idx < 0)
            return bs_err_set(err, BS_ENOMEM, "out of memory");
        if ((rc = s_value_shape(vi, &g->opts, pos, &g->tensors[idx], err)))
            return rc;
        g->inputs[g->n_inputs++] = idx;
        pos++;
    }
    for (size_t i = 0; i < gp->n_node; i++) {
        const Onnx__NodeProto *np = gp->node[i];
        bs_node_t *n;
        if (s_node_new(g, &n))
            return bs_err_set(err, BS_ENOMEM, "out of memory");
        char fallback[80];
        snprintf(fallback, sizeof fallback, "%.40s_%zu", np->op_type ? np->op_type : "node", i);
        n->name = bs_strdup(np->name && np->name[0] ? np->name : fallback);
        n->op_type = bs_strdup(np->op_type ? np->op_type : "");
        n->in = bs_calloc(np->n_input + 1, sizeof *n->in);
        n->out = bs_calloc(np->n_output + 1, sizeof *n->out);
        n->attrs = bs_calloc(np->n_attribute + 1, sizeof *n->attrs);
        if (!n->name || !n->op_type || !n->in || !n->out || !n->attrs)
            return bs_err_set(err, BS_ENOMEM, "out of memory");
        if (np->domain && np->domain[0] && strcmp(np->domain, "ai.onnx") != 0)
            return bs_node_err(err, n, BS_EUNSUPPORTED, "operator domain '%s' is not "
                                                        "supported", np->domain);
        n->op = bs_op_find(n->op_type);
        if (!n->op)
            return bs_node_err(err, n, BS_EUNSUPPORTED, "operator %s is not supported by "
                                                        "the engine", n->op_type);
        for (size_t a = 0; a < np->n_attribute; a++) {
            n->n_attrs++;
            if ((rc = s_copy_attr(np->attribute[a], &n->attrs[a], g->base_dir, err)))
                return bs_err_prefix(err, "node '%s' (%s)", n->name, n->op_type);
        }
        n->n_in = (int)np->n_input;
        for (size_t k = 0; k < np->n_input; k++) {
            const char *nm = np->input[k];
            if (!nm || !nm[0]) {
                n->in[k] = -1;
                continue;
            }
            n->in[k] = s_names_find(nt, g, nm);
            if (n->in[k] < 0)
                return bs_node_err(err, n, BS_EMODEL, "input '%s' is not produced by an "
                                   "earlier node, an initializer or a graph input", nm);
        }
        n->n_out = (int)np->n_output;
        for (size_t k = 0; k < np->n_output; k++) {
            const char *nm = np->output[k];
            if (!nm || !nm[0]) {
                n->out[k] = -1;
                continue;
            }
            if (s_names_find(nt, g, nm) >= 0)
                return bs_node_err(err, n, BS_EMODEL, "output '%s' is defined twice", nm);
            int idx = s_tensor_new(g, nt, nm);
            if (idx < 0)
                return bs_err_set(err, BS_ENOMEM, "out of memory");
            n = &g->nodes[g->n_nodes - 1];
            g->tensors[idx].producer = g->n_nodes - 1;
            n->out[k] = idx;
        }
    }
    g->outputs = bs_calloc(gp->n_output + 1, sizeof *g->outputs);
    if (!g->outputs)
        return bs_err_set(err, BS_ENOMEM, "out of memory");
    for (size_t i = 0; i < gp->n_output; i++) {
        const char *nm = gp->output[i]->name ? gp->output[i]->name : "";
        int idx = s_names_find(nt, g, nm);
        if (idx < 0)
            return bs_err_set(err, BS_EMODEL, "graph output '%s' is produced by no node", nm);
        g->outputs[g->n_outputs++] = idx;
        g->tensors[idx].is_graph_output = 1;
    }
    if (g->n_outputs == 0)
        return bs_err_set(err, BS_EMODEL, "the graph has no output");
    return 0;
}

/* ---- infer + fold ------------------------------------------------------------------------- */

static int s_all_inputs_const(const bs_graph_t *g, const bs_node_t *n)
{
    for (int k = 0; k < n->n_in; k++)
        if (n->in[k] >= 0 && g->tensors[n->in[k]].kind != BS_TENSOR_CONST)
            return 0;
    return 1;
}

static int s_fold(bs_graph_t *g, int idx, bs_err_t *err)
{
    bs_node_t *n = &g->nodes[idx];
    size_t total = 0;
    for (int k = 0; k < n->n_out; k++) {
        bs_tensor_t *t = bs_node_output(g, n, k);
        if (t)
            total += t->nbytes;
    }
    if (total > S_FOLD_MAX_BYTES)
        return 0; /* leave it to run time */
    for (int k = 0; k < n->n_out; k++) {
        bs_tensor_t *t = bs_node_output(g, n, k);
        if (!t)
            continue;
        t->data = s_aligned_alloc(t->nbytes);
        if (!t->data)
            return bs_node_err(err, n, BS_ENOMEM, "out of memory while folding");
        t->kind = BS_TENSOR_CONST;
    }
    int rc = 0;
    n->scratch = 0;
    if (n->op->prepare)
        rc = n->op->prepare(g, n, err);
    void *scratch = NULL;
    if (rc == 0 && n->scratch && !(scratch = s_aligned_alloc(n->scratch)))
        rc = bs_node_err(err, n, BS_ENOMEM, "out of memory while folding");
    if (rc == 0) {
        bs_ctx_t ctx = {.scratch = scratch, .pool = NULL};
        rc = n->op->run(g, n, &ctx);
        if (rc)
            bs_node_err(err, n, rc, "failed while folding constants: %s", bs_strerror(rc));
    }
    free(scratch);
    if (n->op->release)
        n->op->release(n);
    n->state = NULL;
    n->scratch = 0;
    n->dead = 1;
    return rc;
}

static int s_infer_fold(bs_graph_t *g, bs_err_t *err)
{
    for (int i = 0; i < g->n_nodes; i++) {
        bs_node_t *n = &g->nodes[i];
        for (int k = 0; k < n->n_in; k++) {
            const bs_tensor_t *t = bs_node_input(g, n, k);
            if (t && !t->has_shape)
                return bs_node_err(err, n, BS_EMODEL, "input '%s' has no known shape",
                                   t->name);
        }
        if (n->n_out < 1 || n->out[0] < 0)
            return bs_node_err(err, n, BS_EMODEL, "its first output has no name");
        int rc = n->op->infer(g, n, err);
        if (n->bad_attr) /* the likelier cause of whatever infer() said */
            rc = bs_node_err(err, n, BS_EMODEL, "attribute '%s' has the wrong type (%s)",
                             n->bad_attr, n->bad_attr_why);
        if (rc)
            return rc;
        for (int k = 0; k < n->n_out; k++) {
            const bs_tensor_t *t = bs_node_output(g, n, k);
            char sh[160];
            if (t && !t->has_shape)
                return bs_node_err(err, n, BS_EMODEL, "output '%s' got no shape", t->name);
            if (t && t->bad_size)
                return bs_node_err(err, n, BS_EMODEL, "output '%s' of shape %s is larger than "
                                   "the engine's limit of 2^40 bytes",
                                   t->name, bs_shape_str(&t->shape, sh, sizeof sh));
        }
        /* Shape and Size read only their input's (static) shape: always foldable. */
        int shape_only = !strcmp(n->op_type, "Shape") || !strcmp(n->op_type, "Size");
        if (n->op->foldable && (shape_only || s_all_inputs_const(g, n)) &&
            (rc = s_fold(g, i, err)))
            return rc;
    }
    return 0;
}

/* ---- fuse --------------------------------------------------------------------------------- */

static void s_count_consumers(const bs_graph_t *g, int *count)
{
    memset(count, 0, sizeof *count * (size_t)g->n_tensors);
    for (int i = 0; i < g->n_nodes; i++) {
        const bs_node_t *n = &g->nodes[i];
        if (n->dead)
            continue;
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] >= 0)
                count[n->in[k]]++;
    }
}

/* The single live consumer of tensor t, or -1. */
static int s_sole_consumer(const bs_graph_t *g, int t, const int *count)
{
    if (count[t] != 1 || g->tensors[t].is_graph_output)
        return -1;
    for (int i = 0; i < g->n_nodes; i++) {
        const bs_node_t *n = &g->nodes[i];
        if (n->dead)
            continue;
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] == t)
                return i;
    }
    return -1;
}

static int s_const_f32(const bs_graph_t *g, int t)
{
    return t >= 0 && g->tensors[t].kind == BS_TENSOR_CONST && g->tensors[t].dtype == BS_DT_FLOAT;
}

/* Conv -> BatchNormalization: W'[oc] = W[oc] * s, b' = (b - mean) * s + beta with
 * s = scale / sqrt(var + eps). */
static int s_fuse_bn(bs_graph_t *g, int ci, int bi, bs_err_t *err)
{
    bs_node_t *c = &g->nodes[ci];
    bs_node_t *b = &g->nodes[bi];
    if (b->n_in < 5 || b->n_out < 1 || (b->n_out > 1 && b->out[1] >= 0))
        return 0;
    for (int k = 1; k < 5; k++)
        if (!s_const_f32(g, b->in[k]))
            return 0;
    if (c->n_in < 2 || !s_const_f32(g, c->in[1]) || (c->n_in > 2 && c->in[2] >= 0 &&
                                                      !s_const_f32(g, c->in[2])))
        return 0;
    const bs_tensor_t *w = &g->tensors[c->in[1]];
    int64_t oc = w->shape.d[0];
    if (w->shape.rank < 3 || oc <= 0 || bs_shape_numel(&g->tensors[b->in[1]].shape) != oc)
        return 0;
    for (int k = 2; k < 5; k++)
        if (bs_shape_numel(&g->tensors[b->in[k]].shape) != oc)
            return 0;
    float eps = bs_attr_float(b, "epsilon", 1e-5f);
    const float *scale = g->tensors[b->in[1]].data, *beta = g->tensors[b->in[2]].data;
    const float *mean = g->tensors[b->in[3]].data, *var = g->tensors[b->in[4]].data;
    const float *bias = (c->n_in > 2 && c->in[2] >= 0) ? g->tensors[c->in[2]].data : NULL;
    int64_t per = bs_shape_numel(&w->shape) / oc;

    char name[512];
    snprintf(name, sizeof name, "%s.bn_folded_weight", c->name);
    int wi = s_tensor_new(g, NULL, name);
    snprintf(name, sizeof name, "%s.bn_folded_bias", c->name);
    int bi2 = wi >= 0 ? s_tensor_new(g, NULL, name) : -1;
    if (wi < 0 || bi2 < 0)
        return bs_err_set(err, BS_ENOMEM, "out of memory");
    c = &g->nodes[ci]; /* (tensors moved, nodes did not; refresh for clarity) */
    w = &g->tensors[c->in[1]];
    bs_tensor_t *nw = &g->tensors[wi], *nb = &g->tensors[bi2];
    bs_shape_t bshape = {.rank = 1, .d = {oc}};
    bs_tensor_set(nw, BS_DT_FLOAT, &w->shape);
    bs_tensor_set(nb, BS_DT_FLOAT, &bshape);
    nw->kind = nb->kind = BS_TENSOR_CONST;
    nw->data = s_aligned_alloc(nw->nbytes);
    nb->data = s_aligned_alloc(nb->nbytes);
    if (!nw->data || !nb->data)
        return bs_err_set(err, BS_ENOMEM, "out of memory");
    const float *wd = w->data;
    float *nwd = nw->data, *nbd = nb->data;
    for (int64_t o = 0; o < oc; o++) {
        float s = scale[o] / sqrtf(var[o] + eps);
        for (int64_t j = 0; j < per; j++)
            nwd[o * per + j] = wd[o * per + j] * s;
        nbd[o] = ((bias ? bias[o] : 0.0f) - mean[o]) * s + beta[o];
    }
    if (c->n_in < 3) {
        int *in = bs_realloc(c->in, sizeof *in * 3);
        if (!in)
            return bs_err_set(err, BS_ENOMEM, "out of memory");
        c->in = in;
        c->n_in = 3;
    }
    c->in[1] = wi;
    c->in[2] = bi2;
    /* The Conv now writes the BatchNormalization's output. */
    int old = c->out[0];
    c->out[0] = b->out[0];
    g->tensors[b->out[0]].producer = ci;
    g->tensors[old].producer = -1;
    b->dead = 1;
    return 0;
}

static int s_fuse(bs_graph_t *g, bs_err_t *err)
{
    int *count = bs_malloc(sizeof *count * (size_t)(g->n_tensors + 1) * 2);
    if (!count)
        return bs_err_set(err, BS_ENOMEM, "out of memory");
    int rc = 0;
    for (int i = 0; i < g->n_nodes && rc == 0; i++) {
        bs_node_t *n = &g->nodes[i];
        if (n->dead || strcmp(n->op_type, "Conv") != 0 || n->n_out < 1)
            continue;
        s_count_consumers(g, count);
        int j = s_sole_consumer(g, n->out[0], count);
        if (j >= 0 && !strcmp(g->nodes[j].op_type, "BatchNormalization") &&
            g->nodes[j].in[0] == n->out[0])
            rc = s_fuse_bn(g, i, j, err);
    }
    /* count may be too small now: s_fuse_bn added tensors */
    bs_free(count);
    count = bs_malloc(sizeof *count * (size_t)(g->n_tensors + 1));
    if (!count)
        return rc ? rc : bs_err_set(err, BS_ENOMEM, "out of memory");
    for (int i = 0; i < g->n_nodes && rc == 0; i++) {
        bs_node_t *n = &g->nodes[i];
        if (n->dead || n->act || n->n_out < 1 ||
            (strcmp(n->op_type, "Conv") && strcmp(n->op_type, "Gemm") &&
             strcmp(n->op_type, "MatMul")))
            continue;
        if (g->tensors[n->out[0]].dtype != BS_DT_FLOAT)
            continue;
        s_count_consumers(g, count);
        int j = s_sole_consumer(g, n->out[0], count);
        if (j < 0)
            continue;
        bs_node_t *a = &g->nodes[j];
        if (a->n_out < 1 || a->out[0] < 0 || a->in[0] != n->out[0])
            continue;
        if (!strcmp(a->op_type, "Relu")) {
            n->act = BS_ACT_RELU;
            n->act_lo = 0.0f;
            n->act_hi = INFINITY;
        } else if (!strcmp(a->op_type, "Clip")) {
            float lo = -INFINITY, hi = INFINITY;
            if (g->opset < 11) {
                lo = bs_attr_float(a, "min", -INFINITY);
                hi = bs_attr_float(a, "max", INFINITY);
            } else {
                const bs_tensor_t *tl = bs_node_input(g, a, 1), *th = bs_node_input(g, a, 2);
                if ((tl && (tl->kind != BS_TENSOR_CONST || bs_tensor_get_f32(tl, 0, &lo))) ||
                    (th && (th->kind != BS_TENSOR_CONST || bs_tensor_get_f32(th, 0, &hi))))
                    continue;
            }
            n->act = BS_ACT_CLIP;
            n->act_lo = lo;
            n->act_hi = hi;
        } else {
            continue;
        }
        g->tensors[n->out[0]].producer = -1;
        n->out[0] = a->out[0];
        g->tensors[a->out[0]].producer = i;
        a->dead = 1;
    }
    bs_free(count);
    return rc;
}

/* ---- precisions -------------------------------------------------------------------------- */

void bs_act_table_free(bs_act_table_t *t)
{
    if (!t)
        return;
    for (int i = 0; i < t->n; i++)
        bs_free(t->names ? t->names[i] : NULL);
    bs_free(t->names);
    bs_free(t->q);
    memset(t, 0, sizeof *t);
}

const bs_qparam_t *bs_act_table_find(const bs_act_table_t *t, const char *name)
{
    if (!t || !name)
        return NULL;
    for (int i = 0; i < t->n; i++)
        if (t->names[i] && !strcmp(t->names[i], name))
            return &t->q[i];
    return NULL;
}

int bs_graph_weight_layers(const bs_graph_t *g, const char ***names, int **nodes)
{
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++)
        n += !g->nodes[i].dead && g->nodes[i].weight_layer;
    const char **nm = bs_malloc(sizeof *nm * (size_t)(n ? n : 1));
    int *ix = bs_malloc(sizeof *ix * (size_t)(n ? n : 1));
    if (!nm || !ix) {
        bs_free(nm);
        bs_free(ix);
        return BS_ENOMEM;
    }
    n = 0;
    for (int i = 0; i < g->n_nodes; i++)
        if (!g->nodes[i].dead && g->nodes[i].weight_layer) {
            nm[n] = g->nodes[i].name;
            ix[n++] = i;
        }
    *names = nm;
    if (nodes)
        *nodes = ix;
    else
        bs_free(ix);
    return n;
}

char *bs_graph_assignment(const bs_graph_t *g)
{
    const char **names = NULL;
    int *idx = NULL;
    int n = bs_graph_weight_layers(g, &names, &idx);
    if (n < 0)
        return NULL;
    bs_prec_t *p = bs_malloc(sizeof *p * (size_t)(n ? n : 1));
    char *out = NULL;
    if (p) {
        for (int i = 0; i < n; i++)
            p[i] = g->nodes[idx[i]].prec;
        out = bs_assign_format(names, p, n);
    }
    bs_free(p);
    bs_free(names);
    bs_free(idx);
    return out;
}

/* Sets every weight layer's precision from opts.precision and checks that each int8-input
 * layer has calibration for its input and that its op can run the precision. */
static int s_assign_precisions(bs_graph_t *g, bs_err_t *err)
{
    const char *spec = g->opts.precision;
    if (!spec || !*spec)
        return 0;
    const char **names = NULL;
    int *idx = NULL;
    int n = bs_graph_weight_layers(g, &names, &idx);
    if (n < 0)
        return bs_err_set(err, BS_ENOMEM, "out of memory");
    bs_prec_t *precs = bs_malloc(sizeof *precs * (size_t)(n ? n : 1));
    int rc = 0;
    if (!precs) {
        rc = bs_err_set(err, BS_ENOMEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++)
        precs[i] = BS_PREC_FP32;
    if ((rc = bs_spec_apply(spec, names, n, precs, err)))
        goto done;
    for (int i = 0; i < n && rc == 0; i++) {
        bs_node_t *nd = &g->nodes[idx[i]];
        nd->prec = precs[i];
        if (bs_prec_eq(nd->prec, BS_PREC_FP32))
            continue;
        const bs_tensor_t *x = bs_node_input(g, nd, 0);
        if (nd->prec.a == 8 && x && !bs_act_table_find(g->opts.act, x->name)) {
            char pt[BS_PREC_TEXT_MAX];
            bs_prec_format(nd->prec, pt);
            rc = bs_node_err(err, nd, BS_EINVAL,
                             "%s needs int8 parameters for its input '%s', and the calibration "
                             "has none (calibrate with data.calibration in the campaign)",
                             pt, x->name);
            break;
        }
        rc = bs__qlayer_check(g, nd, err);
    }
done:
    bs_free(precs);
    bs_free(names);
    bs_free(idx);
    return rc;
}

static int s_is_alias_op(const bs_node_t *n)
{
    return n->op && n->op->alias;
}

/* Live consumers of tensor t: the count, and whether every one reads it as input 0 of an int8
 * integer layer (w2..w8 a8). */
static int s_consumers_int8(const bs_graph_t *g, int t, int *all_int8)
{
    int c = 0;
    *all_int8 = 1;
    for (int i = 0; i < g->n_nodes; i++) {
        const bs_node_t *n = &g->nodes[i];
        if (n->dead)
            continue;
        for (int k = 0; k < n->n_in; k++) {
            if (n->in[k] != t)
                continue;
            c++;
            if (k != 0 || !n->weight_layer || n->prec.a != 8 || n->prec.w > 8)
                *all_int8 = 0;
        }
    }
    return c;
}

/* The single live consumer of t (reading it as input 0), or -1. */
static int s_only_consumer(const bs_graph_t *g, int t)
{
    int found = -1, count = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const bs_node_t *n = &g->nodes[i];
        if (n->dead)
            continue;
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] == t) {
                count++;
                found = k == 0 ? i : -2;
            }
    }
    return count == 1 && found >= 0 ? found : -1;
}

/* Adjacent int8 layers pass uint8 tensors: a tensor read only by integer a8 layers, produced
 * by an integer a8 layer either directly or through MaxPool and reshaping aliases (each read
 * by nothing else), becomes uint8 with the readers' calibrated parameters, and so does every
 * tensor on the way. Max pooling commutes with the (monotonic) quantization, so the values
 * are those the readers would have quantized themselves. */
static void s_plan_u8(bs_graph_t *g)
{
    enum { S_CHAIN_MAX = 16 };
    for (int t = 0; t < g->n_tensors; t++) {
        bs_tensor_t *x = &g->tensors[t];
        if (x->kind != BS_TENSOR_ACT || x->dtype != BS_DT_FLOAT || x->is_graph_output ||
            x->quantized)
            continue;
        int all8;
        if (s_consumers_int8(g, t, &all8) == 0 || !all8)
            continue;
        const bs_qparam_t *qp = bs_act_table_find(g->opts.act, x->name);
        if (!qp)
            continue;
        int chain[S_CHAIN_MAX], nc = 0, cur = t, ok = 0;
        chain[nc++] = t;
        while (nc < S_CHAIN_MAX) {
            int p = g->tensors[cur].producer;
            if (p < 0)
                break;
            const bs_node_t *pn = &g->nodes[p];
            if (pn->dead || pn->n_out < 1 || pn->out[0] != cur)
                break;
            if (pn->weight_layer && pn->prec.a == 8 && pn->prec.w <= 8) {
                /* ConvTranspose sums its window matrix in float: it cannot write uint8 */
                ok = pn->n_out == 1 && strcmp(pn->op_type, "ConvTranspose") != 0;
                break;
            }
            int pool = !strcmp(pn->op_type, "MaxPool") &&
                       (pn->n_out == 1 || pn->out[1] < 0);
            if (!pool && !s_is_alias_op(pn))
                break;
            int in = pn->in[0];
            if (in < 0 || g->tensors[in].kind != BS_TENSOR_ACT ||
                g->tensors[in].dtype != BS_DT_FLOAT || g->tensors[in].is_graph_output ||
                s_only_consumer(g, in) != p)
                break;
            chain[nc++] = in;
            cur = in;
        }
        if (!ok)
            continue;
        for (int i = 0; i < nc; i++) {
            bs_tensor_t *c = &g->tensors[chain[i]];
            bs_shape_t sh = c->shape;
            bs_tensor_set(c, BS_DT_UINT8, &sh);
            c->quantized = 1;
            c->qscale = qp->scale;
            c->qzero = qp->zero_point;
        }
    }
}

/* ---- plan --------------------------------------------------------------------------------- */

static int s_root(const bs_graph_t *g, int t)
{
    while (g->tensors[t].alias_of >= 0)
        t = g->tensors[t].alias_of;
    return t;
}

typedef struct s_slot {
    int t;
    size_t off, size;
    int lo, hi;
} s_slot_t;

static int s_cmp_size(const void *a, const void *b)
{
    const s_slot_t *x = a, *y = b;
    if (x->size != y->size)
        return x->size > y->size ? -1 : 1;
    return x->t - y->t;
}

static int s_plan(bs_graph_t *g, bs_err_t *err)
{
    /* Aliases first: an alias op's output shares its input's root. */
    for (int i = 0; i < g->n_nodes; i++) {
        bs_node_t *n = &g->nodes[i];
        if (n->dead || !n->op->alias || n->n_in < 1 || n->n_out < 1 || n->in[0] < 0 ||
            n->out[0] < 0)
            continue;
        bs_tensor_t *in = &g->tensors[n->in[0]], *out = &g->tensors[n->out[0]];
        if (in->kind == BS_TENSOR_CONST || in->nbytes != out->nbytes || out->is_graph_output ||
            in->is_graph_output)
            continue; /* run() copies instead */
        out->alias_of = n->in[0];
    }
    for (int t = 0; t < g->n_tensors; t++) {
        g->tensors[t].first_use = g->tensors[t].kind == BS_TENSOR_INPUT ? 0 : -1;
        g->tensors[t].last_use = -1;
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const bs_node_t *n = &g->nodes[i];
        if (n->dead)
            continue;
        for (int k = 0; k < n->n_out; k++) {
            if (n->out[k] < 0)
                continue;
            bs_tensor_t *r = &g->tensors[s_root(g, n->out[k])];
            if (r->first_use < 0 || r->first_use > i)
                r->first_use = i;
            if (r->last_use < i)
                r->last_use = i;
        }
        for (int k = 0; k < n->n_in; k++) {
            if (n->in[k] < 0)
                continue;
            bs_tensor_t *r = &g->tensors[s_root(g, n->in[k])];
            if (r->last_use < i)
                r->last_use = i;
        }
    }
    /* Graph inputs are set once and may be run many times (warm-up, timed runs): no
     * activation may take their bytes. Graph outputs must survive the run. */
    for (int i = 0; i < g->n_inputs; i++)
        g->tensors[g->inputs[i]].last_use = g->n_nodes;
    for (int i = 0; i < g->n_outputs; i++) {
        bs_tensor_t *r = &g->tensors[s_root(g, g->outputs[i])];
        if (r->kind != BS_TENSOR_CONST) {
            if (r->first_use < 0)
                r->first_use = 0;
            r->last_use = g->n_nodes;
        }
    }
    s_slot_t *slots = bs_calloc((size_t)g->n_tensors + 1, sizeof *slots);
    if (!slots)
        return bs_err_set(err, BS_ENOMEM, "out of memory");
    int ns = 0;
    for (int t = 0; t < g->n_tensors; t++) {
        bs_tensor_t *x = &g->tensors[t];
        if (x->kind == BS_TENSOR_CONST || x->alias_of >= 0 || x->first_use < 0)
            continue;
        if (x->last_use < x->first_use)
            x->last_use = x->first_use; /* produced, never read: still written */
        slots[ns++] = (s_slot_t){t, 0, (x->nbytes + S_ALIGN - 1) / S_ALIGN * S_ALIGN,
                                 x->first_use, x->last_use};
    }
    qsort(slots, (size_t)ns, sizeof *slots, s_cmp_size);
    size_t total = 0;
    for (int i = 0; i < ns; i++) {
        size_t off = 0;
        for (int moved = 1; moved;) {
            moved = 0;
            for (int j = 0; j < i; j++) {
                const s_slot_t *p = &slots[j];
                int overlap_time = p->lo <= slots[i].hi && slots[i].lo <= p->hi;
                int overlap_mem = off < p->off + p->size && p->off < off + slots[i].size;
                if (overlap_time && overlap_mem && slots[i].size && p->size) {
                    off = p->off + p->size;
                    moved = 1;
                }
            }
        }
        slots[i].off = off;
        if (off + slots[i].size > total)
            total = off + slots[i].size;
    }
    g->arena_bytes = total;
    g->arena = s_aligned_alloc(total);
    if (!g->arena) {
        bs_free(slots);
        return bs_err_set(err, BS_ENOMEM, "out of memory for a %zu-byte arena", total);
    }
    for (int i = 0; i < ns; i++) {
        bs_tensor_t *x = &g->tensors[slots[i].t];
        x->arena_off = (int64_t)slots[i].off;
        x->data = (char *)g->arena + slots[i].off;
    }
    bs_free(slots);
    for (int t = 0; t < g->n_tensors; t++) {
        bs_tensor_t *x = &g->tensors[t];
        if (x->alias_of >= 0) {
            const bs_tensor_t *r = &g->tensors[s_root(g, t)];
            x->data = r->data;
            x->arena_off = r->arena_off;
        }
    }
    return 0;
}

/* Frees const tensors no live node reads (a weight that every reader packed counts as not
 * read); the weight bytes are the consts kept plus the ops' packed copies. */
static void s_trim_consts(bs_graph_t *g)
{
    char *used = bs_calloc((size_t)g->n_tensors + 1, 1);
    if (!used)
        return;
    for (int i = 0; i < g->n_nodes; i++) {
        const bs_node_t *n = &g->nodes[i];
        if (n->dead)
            continue;
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] >= 0 && !(k == 1 && n->weight_packed) && !(k == 2 && n->bias_packed))
                used[n->in[k]] = 1;
    }
    for (int i = 0; i < g->n_outputs; i++)
        used[g->outputs[i]] = 1;
    g->weight_bytes = 0;
    for (int i = 0; i < g->n_nodes; i++)
        if (!g->nodes[i].dead)
            g->weight_bytes += g->nodes[i].packed_bytes;
    for (int t = 0; t < g->n_tensors; t++) {
        bs_tensor_t *x = &g->tensors[t];
        if (x->kind != BS_TENSOR_CONST)
            continue;
        if (!used[t]) {
            free(x->data);
            x->data = NULL;
        } else {
            g->weight_bytes += x->nbytes;
        }
    }
    bs_free(used);
}

/* ---- public ------------------------------------------------------------------------------- */

void bs_graph_free(bs_graph_t **gp)
{
    if (!gp || !*gp)
        return;
    bs_graph_t *g = *gp;
    for (int i = 0; i < g->n_nodes; i++) {
        bs_node_t *n = &g->nodes[i];
        if (n->op && n->op->release && n->state)
            n->op->release(n);
        for (int a = 0; a < n->n_attrs; a++) {
            bs_attr_t *at = &n->attrs[a];
            bs_free(at->name);
            bs_free(at->s);
            bs_free(at->ints);
            bs_free(at->floats);
            if (at->t) {
                bs_tensor_clear(at->t);
                bs_free(at->t);
            }
        }
        bs_free(n->attrs);
        bs_free(n->name);
        bs_free(n->op_type);
        bs_free(n->in);
        bs_free(n->out);
    }
    for (int t = 0; t < g->n_tensors; t++) {
        bs_tensor_t *x = &g->tensors[t];
        bs_free(x->name);
        if (x->kind == BS_TENSOR_CONST)
            free(x->data);
    }
    bs_free(g->nodes);
    bs_free(g->tensors);
    bs_free(g->inputs);
    bs_free(g->outputs);
    bs_free(g->base_dir);
    free(g->arena);
    free(g->scratch);
    bs_threadpool_free(&g->pool);
    bs_free(g);
    *gp = NULL;
}

int bs_graph_load_buffer(const void *buf, size_t len, const char *base_dir,
                         const bs_graph_opts_t *opts, bs_graph_t **out, bs_err_t *err)
{
    *out = NULL;
    bs_graph_t *g = bs_calloc(1, sizeof *g);
    if (!g)
        return bs_err_set(err, BS_ENOMEM, "out of memory");
    if (opts)
        g->opts = *opts;
    if (g->opts.threads < 1)
        g->opts.threads = 1;
    if (g->opts.free_dim < 1)
        g->opts.free_dim = 1;
    g->base_dir = bs_strdup(base_dir ? base_dir : ".");
    s_names_t nt = {0};
    int rc = 0;
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, len, buf);
    if (!g->base_dir)
        rc = bs_err_set(err, BS_ENOMEM, "out of memory");
    else if (!mp)
        rc = bs_err_set(err, BS_EMODEL, "not a valid ONNX model (protobuf decoding failed: "
                                        "truncated or corrupted file?)");
    if (rc == 0)
        rc = s_parse(g, mp, &nt, err);
    if (mp)
        onnx__model_proto__free_unpacked(mp, NULL);
    g->opts.input_shapes = NULL;
    g->opts.n_input_shapes = 0;

    bs_free(nt.slots);
    if (rc == 0)
        rc = s_infer_fold(g, err);
    if (rc == 0 && !g->opts.no_fuse)
        rc = s_fuse(g, err);
    if (rc == 0)
        rc = s_assign_precisions(g, err);
    if (rc == 0)
        s_plan_u8(g);
    for (int i = 0; i < g->n_nodes && rc == 0; i++) {
        bs_node_t *n = &g->nodes[i];
        if (n->dead || !n->op->prepare)
            continue;
        rc = n->op->prepare(g, n, err);
        if (rc == 0 && n->scratch > g->scratch_bytes)
            g->scratch_bytes = n->scratch;
    }
    if (rc == 0) {
        s_trim_consts(g);
        rc = s_plan(g, err);
    }
    if (rc == 0 && g->scratch_bytes && !(g->scratch = s_aligned_alloc(g->scratch_bytes)))
        rc = bs_err_set(err, BS_ENOMEM, "out of memory for %zu bytes of scratch",
                        g->scratch_bytes);
    if (rc == 0 && g->opts.threads > 1 && !(g->pool = bs_threadpool_new(g->opts.threads)))
        rc = bs_err_set(err, BS_ENOMEM, "cannot start %d threads", g->opts.threads);
    g->opts.precision = NULL; /* borrowed for the load only */
    g->opts.act = NULL;
    if (rc) {
        bs_graph_free(&g);
        return rc;
    }
    *out = g;
    return 0;
}

int bs_graph_load(const char *path, const bs_graph_opts_t *opts, bs_graph_t **out,
                  bs_err_t *err)
{
    char *buf;
    size_t len;
    *out = NULL;
    int rc = bs_read_file(path, (size_t)2 << 30, &buf, &len, err);
    if (rc)
        return rc;
    char *dir = bs_strdup(path);
    char *slash = dir ? strrchr(dir, '/') : NULL;
    if (slash)
        *slash = '\0';
    rc = bs_graph_load_buffer(buf, len, slash ? dir : ".", opts, out, err);
    bs_free(buf);
    bs_free(dir);
    if (rc)
        bs_err_prefix(err, "%s", path);
    return rc;
}

const bs_tensor_t *bs_graph_output(const bs_graph_t *g, int i)
{
    return i >= 0 && i < g->n_outputs ? &g->tensors[g->outputs[i]] : NULL;
}

const bs_tensor_t *bs_graph_input(const bs_graph_t *g, int i)
{
    return i >= 0 && i < g->n_inputs ? &g->tensors[g->inputs[i]] : NULL;
}

int bs_graph_set_input(bs_graph_t *g, int i, int dtype, const void *data, size_t bytes,
                       bs_err_t *err)
{
    if (i < 0 || i >= g->n_inputs)
        return bs_err_set(err, BS_EINVAL, "the model has %d input(s); there is no input %d",
                          g->n_inputs, i);
    bs_tensor_t *t = &g->tensors[g->inputs[i]];
    char s[96];
    if (dtype != t->dtype)
        return bs_err_set(err, BS_EINVAL, "input '%s' takes %s, got %s", t->name,
                          bs_dtype_name(t->dtype), bs_dtype_name(dtype));
    if (bytes != t->nbytes)
        return bs_err_set(err, BS_EINVAL, "input '%s' of shape %s takes %zu bytes, got %zu",
                          t->name, bs_shape_str(&t->shape, s, sizeof s), t->nbytes, bytes);
    if (bytes && t->data)
        memcpy(t->data, data, bytes);
    return 0;
}

int bs_graph_run(bs_graph_t *g, bs_err_t *err)
{
    return bs_graph_run_observed(g, NULL, NULL, err);
}

int bs_graph_run_observed(bs_graph_t *g, bs_graph_observe_fn fn, void *fctx, bs_err_t *err)
{
    bs_err_t op_err = {0};
    bs_ctx_t ctx = {.scratch = g->scratch, .pool = g->pool, .err = &op_err};
    for (int i = 0; i < g->n_nodes; i++) {
        bs_node_t *n = &g->nodes[i];
        if (n->dead)
            continue;
        if (n->op->alias && n->n_out > 0 && n->out[0] >= 0 &&
            g->tensors[n->out[0]].alias_of >= 0)
            continue; /* shares its input's bytes */
        if (fn && n->weight_layer && n->n_in > 0 && n->in[0] >= 0)
            fn(fctx, g, i, &g->tensors[n->in[0]]);
        int rc = n->op->run(g, n, &ctx);
        if (n->bad_attr) /* an attribute first read at run time had the wrong type */
            return bs_node_err(err, n, BS_EMODEL, "attribute '%s' has the wrong type (%s)",
                               n->bad_attr, n->bad_attr_why);
        if (rc)
            return bs_node_err(err, n, rc, "run failed: %s",
                               op_err.msg[0] ? op_err.msg : bs_strerror(rc));
    }
    return 0;
}

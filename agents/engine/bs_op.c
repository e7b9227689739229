/*
 * bs_op.c - the operator registry: one table per family file, searched by op type. The list
 * of supported ops (bs_op_list) is built from the same tables, so it can never disagree with
 * what the loader accepts.
 */
#include "bs_op.h"

#include <string.h>

static const bs_op_t *const *const s_families[] = {bs_ops_shape, bs_ops_elementwise, bs_ops_nn};

const bs_op_t *bs_op_find(const char *op_type)
{
    if (!op_type)
        return NULL;
    for (size_t f = 0; f < sizeof s_families / sizeof s_families[0]; f++)
        for (const bs_op_t *const *op = s_families[f]; *op; op++)
            if (strcmp((*op)->op_type, op_type) == 0)
                return *op;
    return NULL;
}

const char *bs_op_list(void)
{
    static char list[2048];
    if (list[0])
        return list;
    size_t n = 0;
    for (size_t f = 0; f < sizeof s_families / sizeof s_families[0]; f++) {
        for (const bs_op_t *const *op = s_families[f]; *op; op++) {
            size_t len = strlen((*op)->op_type);
            if (n + len + 3 >= sizeof list)
                return list;
            if (n) {
                memcpy(list + n, ", ", 2);
                n += 2;
            }
            memcpy(list + n, (*op)->op_type, len + 1);
            n += len;
        }
    }
    return list;
}

/* placeholder: being written */
#include "bs_op.h"
const bs_op_t *const bs_ops_shape[] = {NULL};

/*
 * fuzz_model.c - libFuzzer target for the ONNX layer view: any bytes must give a model or a
 * BS_EMODEL error, never a crash, a leak or undefined behaviour. Seeds: the bundled model
 * (tools/test.sh passes models/ as a read-only corpus).
 */
#include <stddef.h>
#include <stdint.h>

#include "bs_alloc.h"
#include "bs_model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) {
        bs_alloc_init();
        init = 1;
    }
    bs_model_info_t m;
    bs_err_t err;
    if (bs_model_info_parse(data, size, &m, &err) == 0)
        bs_model_info_free(&m);
    return 0;
}

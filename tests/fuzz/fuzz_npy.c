/*
 * fuzz_npy.c - libFuzzer target for the data readers: any bytes given to the .npy parser, the
 * IDX parser (raw or gzipped) and the format-detecting array reader must give an array or an
 * error, never a crash, a leak or undefined behaviour. An array that parses is also turned into
 * a data set for a small model input, with and without a resize, so the preprocessing's shape
 * checks and index arithmetic are fuzzed too. The size cap is small (4 MiB) so a hostile
 * header cannot make the fuzzer allocate much. Seeds: tests/fuzz/corpus/npy/.
 */
#include <stddef.h>
#include <stdint.h>

#include "bs_alloc.h"
#include "bs_data.h"
#include "bs_idx.h"
#include "bs_npy.h"

#define S_MAX ((size_t)4 << 20)

static void s_build(const bs_array_t *a)
{
    static const bs_shape_t shapes[] = {{4, {1, 1, 8, 8}}, {4, {1, 3, 4, 4}}, {2, {1, 16}}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        for (int resize = 0; resize < 2; resize++) {
            bs_preprocess_t pre;
            bs_preprocess_default(&pre);
            if (resize) {
                pre.resize_h = (int)shapes[i].d[2];
                pre.resize_w = (int)shapes[i].d[3];
                if (shapes[i].rank != 4)
                    continue;
            }
            bs_dataset_t ds;
            bs_err_t err;
            /* the array as images and as labels of itself */
            if (bs_dataset_build(a, "fuzz", a, "fuzz", 4, &pre, &shapes[i], &ds, &err) == 0)
                bs_dataset_free(&ds);
            if (bs_dataset_build(a, "fuzz", NULL, NULL, 0, &pre, &shapes[i], &ds, &err) == 0)
                bs_dataset_free(&ds);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) {
        bs_alloc_init();
        init = 1;
    }
    bs_err_t err;
    bs_npy_t n;
    if (bs_npy_parse(data, size, "fuzz.npy", S_MAX, &n, &err) == 0)
        bs_npy_free(&n);
    bs_idx_t x;
    if (bs_idx_parse(data, size, "fuzz.idx", S_MAX, &x, &err) == 0)
        bs_idx_free(&x);
    bs_array_t a;
    if (bs_array_parse(data, size, "fuzz", S_MAX, &a, &err) == 0) {
        if (a.nbytes <= ((size_t)1 << 16))
            s_build(&a);
        bs_array_free(&a);
    }
    return 0;
}

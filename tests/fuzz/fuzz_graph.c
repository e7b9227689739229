/*
 * fuzz_graph.c - libFuzzer target for the engine's loader: any bytes given as an ONNX model
 * must load (and then run once on zero inputs) or fail with an error, never crash, leak or
 * hit undefined behaviour. Seeds: the bundled models and a few ONNX test-suite models
 * (tools/test.sh passes them as read-only corpora).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "bs_alloc.h"
#include "bs_graph.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) {
        bs_alloc_init();
        init = 1;
    }
    bs_graph_opts_t o = {.threads = 1, .free_dim = 1};
    bs_graph_t *g = NULL;
    bs_err_t err;
    if (bs_graph_load_buffer(data, size, "/nonexistent", &o, &g, &err) != 0)
        return 0;
    /* Only run small graphs: the fuzzer is after parser and planner bugs, not slow models. */
    if (g->arena_bytes < ((size_t)16 << 20) && g->weight_bytes < ((size_t)16 << 20))
        bs_graph_run(g, &err);
    bs_graph_free(&g);
    return 0;
}

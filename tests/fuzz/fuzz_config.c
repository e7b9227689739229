/*
 * fuzz_config.c - libFuzzer target for campaign files (bs_config_parse) and the search space.
 *
 * Any byte string goes to bs_config_parse() under the name "fuzz.json". It must return 0 or a
 * clean error: BS_ECONFIG or BS_ETOOBIG with a message that starts with the file name, never a
 * crash, a leak or undefined behaviour (ASan and UBSan watch). A campaign it accepts is then
 * turned into a search space over a fixed three-layer model and printed as JSON, which must
 * succeed or fail with BS_ECONFIG (a rule that matches no layer).
 *
 * Paths in a campaign resolve against the campaign's directory; "fuzz.json" has none, so they
 * resolve against the working directory. The seeds in tests/fuzz/corpus/config/ name files of
 * the repository (CMakeLists.txt), so run it from the repository root to get past the
 * existence checks:
 *   build/fuzz_config -max_total_time=60 tests/fuzz/corpus/config
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bs_alloc.h"
#include "bs_config.h"

static void s_die(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_config: %s: %s\n", what, detail ? detail : "");
    abort();
}

static bs_layer_info_t s_layers[] = {
    {"conv1", "Conv", 80},
    {"conv2", "Conv", 1216},
    {"fc", "Gemm", 7850},
};
static const bs_model_info_t s_model = {3, s_layers, 7, 9146, 13, ""};

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    static int init;
    if (!init) {
        bs_alloc_init();
        init = 1;
    }
    bs_config_t *cfg = NULL;
    bs_err_t err = {0};
    int rc = bs_config_parse((const char *)d, n, "fuzz.json", &cfg, &err);
    if (rc != 0) {
        if (cfg)
            s_die("parse failed but returned a config", err.msg);
        if (rc != BS_ECONFIG && rc != BS_ETOOBIG)
            s_die("unexpected error code", err.msg);
        if (err.code != rc || strncmp(err.msg, "fuzz.json: ", 11) != 0)
            s_die("error message does not name the file", err.msg);
        return 0;
    }
    if (!cfg || !cfg->name || !cfg->model || !cfg->measure || !cfg->policy_params ||
        !cfg->preprocess || cfg->n_rules < 1 || cfg->n_objectives < 1 || cfg->budget_evals < 1)
        s_die("accepted an incomplete config", cfg ? cfg->name : "(null)");
    bs_space_t space;
    rc = bs_space_build(cfg, &s_model, &space, &err);
    if (rc == 0) {
        char *json = bs_space_to_json(&space);
        if (!json)
            s_die("bs_space_to_json failed", "");
        if (bs_space_size(&space) < 1)
            s_die("empty search space", json);
        bs_free(json);
        bs_space_free(&space);
    } else if (rc != BS_ECONFIG) {
        s_die("bs_space_build: unexpected error code", err.msg);
    }
    bs_config_free(&cfg);
    return 0;
}

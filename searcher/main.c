/*
 * main.c - the `bitscout` command: `search` runs a campaign, `query` reads the results
 * database, `export` writes a deployable quantized ONNX model (bs_export.c). Only this file
 * decides exit codes: 0 success, 1 failure, 2 usage error, 130 interrupted (the campaign can
 * be resumed).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bs_alloc.h"
#include "bs_export.h"
#include "bs_log.h"
#include "bs_query.h"
#include "bs_searcher.h"

static void s_usage(FILE *f)
{
    fputs("usage:\n"
          "  bitscout search CONFIG [--db FILE] [--bind ENDPOINT] [--local-agents N]\n"
          "                         [--budget N] [--drain-s S] [--progress auto|line|log]\n"
          "                         [--log-level error|warn|info|debug]\n"
          "  bitscout query campaigns|agents|evals|pareto|progress [--db FILE]\n"
          "                 [--campaign NAME] [--format table|csv|json]\n"
          "  bitscout export --config CONFIG --out M.q.onnx (--precision SPEC |\n"
          "                  --db FILE [--campaign NAME] --eval ID) [--threads N]\n"
          "  bitscout --version\n"
          "\n"
          "search runs the campaign in CONFIG (see configs/README.md), storing everything in\n"
          "--db (default results.db); rerunning it resumes. --bind defaults to tcp://*:5555;\n"
          "--local-agents N starts N agents on this machine over loopback.\n"
          "export writes the campaign's model at one assignment (a spec, or a stored\n"
          "evaluation) as a quantized ONNX model (`bitscout export --help`).\n",
          f);
}

static int s_parse_long(const char *flag, const char *v, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || errno || *end || x < lo || x > hi) {
        fprintf(stderr, "bitscout: %s: expected an integer in [%ld, %ld], got \"%s\"\n", flag,
                lo, hi, v ? v : "");
        return -1;
    }
    *out = x;
    return 0;
}

static int s_search(int argc, char **argv)
{
    bs_search_opts_t o = {.db_path = "results.db", .progress = -1, .drain_s = 10.0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n;
        if (a[0] != '-') {
            if (o.config_path) {
                fprintf(stderr, "bitscout search: unexpected argument \"%s\"\n", a);
                return 2;
            }
            o.config_path = a;
            continue;
        }
        if (!v && strcmp(a, "--help") != 0) {
            fprintf(stderr, "bitscout search: %s needs a value\n", a);
            return 2;
        }
        if (!strcmp(a, "--db"))
            o.db_path = v;
        else if (!strcmp(a, "--bind"))
            o.bind = v;
        else if (!strcmp(a, "--local-agents")) {
            if (s_parse_long(a, v, 0, 256, &n))
                return 2;
            o.local_agents = (int)n;
        } else if (!strcmp(a, "--budget")) {
            if (s_parse_long(a, v, 1, 100000000, &n))
                return 2;
            o.budget = n;
        } else if (!strcmp(a, "--drain-s")) {
            if (s_parse_long(a, v, 0, 86400, &n))
                return 2;
            o.drain_s = (double)n;
        } else if (!strcmp(a, "--progress")) {
            if (!strcmp(v, "auto"))
                o.progress = -1;
            else if (!strcmp(v, "line"))
                o.progress = 1;
            else if (!strcmp(v, "log"))
                o.progress = 0;
            else {
                fprintf(stderr, "bitscout search: --progress: expected auto, line or log\n");
                return 2;
            }
        } else if (!strcmp(a, "--log-level")) {
            if (bs_log_parse_level(v, &bs_log_level)) {
                fprintf(stderr, "bitscout search: --log-level: expected error, warn, info or "
                                "debug\n");
                return 2;
            }
        } else if (!strcmp(a, "--agent-bin")) {
            o.agent_bin = v;
        } else if (!strcmp(a, "--help")) {
            s_usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "bitscout search: unknown option %s\n", a);
            s_usage(stderr);
            return 2;
        }
        i++;
    }
    if (!o.config_path) {
        fprintf(stderr, "bitscout search: missing CONFIG (a campaign file)\n");
        s_usage(stderr);
        return 2;
    }
    bs_err_t err = {0};
    int rc = bs_search_run(&o, &err);
    if (rc == BS_ECANCELED)
        return 130;
    if (rc) {
        fprintf(stderr, "bitscout: %s\n", err.msg[0] ? err.msg : bs_strerror(rc));
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    bs_alloc_init();
    if (argc < 2) {
        s_usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("bitscout %s\n", BS_VERSION);
        return 0;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        s_usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "search"))
        return s_search(argc - 1, argv + 1);
    if (!strcmp(argv[1], "query"))
        return bs_query_main(argc - 1, argv + 1);
    if (!strcmp(argv[1], "export"))
        return bs_export_main(argc - 1, argv + 1);
    fprintf(stderr, "bitscout: unknown command \"%s\"\n", argv[1]);
    s_usage(stderr);
    return 2;
}

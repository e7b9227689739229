/*
 * main.c - bitscout-agent: parses the command line, installs SIGINT/SIGTERM handlers that set
 * a stop flag, and hands over to bs_agent_run() (bs_agent.c), which does all the work.
 *
 *   bitscout-agent --connect ENDPOINT [--name NAME] [--tags a,b] [--cache-dir DIR]
 *                  [--threads N] [--log-level error|warn|info|debug] [--version] [--help]
 *   bitscout-agent run --model FILE.onnx ...   (runs a model locally: bs_run_main, bs_run.c)
 *   bitscout-agent sensitivity --config CAMPAIGN.json ...   (each layer alone at each
 *                  precision, locally: bs_sensitivity_main, bs_sensitivity.c)
 *   bitscout-agent --selftest ...   (what the agent finds on this device: bs_selftest.c)
 *
 * Exit status: 0 after a signal stopped the agent, 1 when it could not start, 2 on bad usage.
 */
#include "bs_agent.h"
#include "bs_alloc.h"
#include "bs_log.h"
#include "bs_run.h"
#include "bs_selftest.h"
#include "bs_sensitivity.h"

#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t s_stop;

static void s_on_signal(int sig)
{
    (void)sig;
    s_stop = 1;
}

static void s_usage(FILE *out)
{
    fprintf(out,
            "usage: bitscout-agent --connect ENDPOINT [options]\n"
            "       bitscout-agent run --model FILE.onnx [options]   (bitscout-agent run --help)\n"
            "       bitscout-agent sensitivity --config CAMPAIGN.json [options]\n"
            "                                        (bitscout-agent sensitivity --help)\n"
            "       bitscout-agent --selftest [--format text|json] [--threads N]\n"
            "                                        (what this device offers; timing check)\n"
            "\n"
            "Connects to a bitscout searcher, receives jobs (a model, a per-layer precision\n"
            "assignment, data files), runs them on this device and reports the metrics.\n"
            "\n"
            "  --connect ENDPOINT   searcher endpoint, e.g. tcp://192.168.1.10:5555 (required)\n"
            "  --name NAME          agent name, at most 64 bytes (default: the host name)\n"
            "  --tags a,b           comma-separated tags the campaign may select agents by\n"
            "  --cache-dir DIR      file cache (default: $BITSCOUT_CACHE_DIR, else\n"
            "                       $XDG_CACHE_HOME/bitscout, else $HOME/.cache/bitscout)\n"
            "  --threads N          threads a job may use (default 1)\n"
            "  --log-level LEVEL    error, warn, info (default) or debug\n"
            "  --power-command CMD  a shell command printing watts, one number per line (a USB\n"
            "                       power meter); preferred over the sensors found\n"
            "  --no-sensors         measure no energy (stored as unknown)\n"
            "                       (sensor files are read under $BITSCOUT_SENSOR_ROOT, default /)\n"
            "  --version            print the version and exit\n"
            "  --help               print this help and exit\n");
}

static int s_bad(const char *fmt, const char *arg)
{
    return bs_run_bad_usage("bitscout-agent", s_usage, fmt, arg);
}

int main(int argc, char **argv)
{
    bs_alloc_init();
    if (argc > 1 && strcmp(argv[1], "run") == 0)
        return bs_run_main(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "sensitivity") == 0)
        return bs_sensitivity_main(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "--selftest") == 0)
        return bs_selftest_main(argc - 1, argv + 1);
    static const struct option longopts[] = {
        {"connect", required_argument, NULL, 'c'},
        {"name", required_argument, NULL, 'n'},
        {"tags", required_argument, NULL, 't'},
        {"cache-dir", required_argument, NULL, 'd'},
        {"threads", required_argument, NULL, 'j'},
        {"log-level", required_argument, NULL, 'l'},
        {"power-command", required_argument, NULL, 'p'},
        {"no-sensors", no_argument, NULL, 'N'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bs_agent_opts_t opts;
    memset(&opts, 0, sizeof opts);
    opts.threads = 1;
    int c, level;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            opts.endpoint = optarg;
            break;
        case 'n':
            if (!*optarg || strlen(optarg) > 64)
                return s_bad("--name '%s': expected 1 to 64 bytes", optarg);
            opts.name = optarg;
            break;
        case 't':
            opts.tags = optarg;
            break;
        case 'd':
            if (!*optarg)
                return s_bad("--cache-dir: expected a directory%s", "");
            opts.cache_dir = optarg;
            break;
        case 'j': {
            char *end;
            long n = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || n < 1 || n > 1024)
                return s_bad("--threads '%s': expected a whole number from 1 to 1024", optarg);
            opts.threads = (int)n;
            break;
        }
        case 'l':
            if (bs_log_parse_level(optarg, &level) != 0)
                return s_bad("--log-level '%s': expected error, warn, info or debug", optarg);
            bs_log_level = level;
            break;
        case 'p':
            if (!*optarg)
                return s_bad("--power-command: expected a shell command printing watts%s", "");
            opts.power_command = optarg;
            break;
        case 'N':
            opts.no_sensors = 1;
            break;
        case 'V':
            printf("bitscout-agent %s\n", BS_VERSION);
            return 0;
        case 'h':
            s_usage(stdout);
            return 0;
        case ':':
            return s_bad("%s needs a value", argv[optind - 1]);
        default:
            return s_bad("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return s_bad("unexpected argument '%s'", argv[optind]);
    if (!opts.endpoint || !*opts.endpoint)
        return s_bad("--connect ENDPOINT is required%s", "");
    if (opts.tags) {
        for (const char *t = opts.tags; *t;) {
            size_t n = strcspn(t, ",");
            if (n > 64)
                return s_bad("--tags '%s': each tag holds at most 64 bytes", opts.tags);
            t += n;
            if (*t == ',')
                t++;
        }
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    int rc = bs_agent_run(&opts, &s_stop);
    return rc == 0 ? 0 : 1;
}

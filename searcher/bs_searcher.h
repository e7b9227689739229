/*
 * bs_searcher.h - the searcher daemon: `bitscout search CONFIG`.
 *
 * One libuv loop owns everything: a ZeroMQ ROUTER socket whose file descriptor the loop polls
 * (edge-triggered, so every wake-up and every send is followed by receiving until ZMQ_EVENTS
 * has no POLLIN), a tick timer that sends heartbeats, drops silent agents, expires leases and
 * dispatches, the signal handlers, and the local agent processes. The store is written from
 * the loop thread only.
 */
#ifndef BS_SEARCHER_H
#define BS_SEARCHER_H

#include <stdint.h>

#include "bs_error.h"

typedef struct bs_search_opts {
    const char *config_path;
    const char *db_path;      /* default "results.db" */
    const char *bind;         /* default: tcp, all interfaces, port 5555 */
    int local_agents;         /* agents to start on this machine over loopback */
    int64_t budget;           /* total evaluations; 0 = the campaign's budget.evaluations */
    int progress;             /* 1 live line, 0 plain log lines, -1 decide by isatty */
    double drain_s;           /* on SIGINT/SIGTERM, wait this long for jobs in flight */
    const char *agent_bin;    /* NULL: bitscout-agent beside this executable */
    const char *agent_log_level; /* for local agents; default "warn" */
} bs_search_opts_t;

/* Runs a campaign to its end. Returns 0 when it finished (budget spent, space exhausted or
 * wall time reached), BS_ECANCELED when interrupted by a signal (the database is consistent
 * and a rerun resumes), or another BS_E* code with err filled. */
int bs_search_run(const bs_search_opts_t *opts, bs_err_t *err);

#endif

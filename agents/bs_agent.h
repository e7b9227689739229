/*
 * bs_agent.h - the device agent's client: its session with the searcher, its jobs and the
 * file fetches they need.
 *
 * bs_agent_run() is the whole agent: it opens the cache, loads (or creates) the agent's
 * identity, connects a ZeroMQ DEALER to the searcher and runs a zmq_poll loop until *stop
 * becomes nonzero. The loop says HELLO (resent with backoff until WELCOME), sends heartbeats,
 * notices a silent searcher and reconnects, fetches a job's files chunk by chunk into the
 * cache, runs the job's backend on a worker thread and reports the RESULT. See
 * proto/PROTOCOL.md for the messages and bs_agent.c for the state machine.
 *
 * It is a library function so that tests can run an agent in a thread of the test process
 * and play the searcher by hand; bitscout-agent's main() only parses flags, installs signal
 * handlers that set the stop flag, and calls it.
 */
#ifndef BS_AGENT_H
#define BS_AGENT_H

#include <signal.h>

#include "bs_error.h"

typedef struct bs_agent_opts {
    const char *endpoint;  /* searcher endpoint, "tcp://host:5555"; required */
    const char *name;      /* agent name (<= 64 bytes); NULL: the host name */
    const char *tags;      /* comma-separated tags ("jetson,orin"), or NULL */
    const char *cache_dir; /* NULL: bs_agent_default_cache_dir() */
    int threads;           /* threads a backend may use; < 1 means 1 */
    const char *power_command; /* a command printing watts (a USB power meter), or NULL */
    int no_sensors;        /* 1: look for no energy sensor (energy stays unknown) */
    /* Timing knobs, for tests; 0 means the documented default. */
    int fetch_timeout_ms; /* wait for a CHUNK before re-sending the FETCH; default 10000 */
    int hello_initial_ms; /* first HELLO resend delay (doubling to 10 s); default 500 */
} bs_agent_opts_t;

/* Runs the agent until *stop becomes nonzero (a signal handler or another thread sets it),
 * then sends BYE and returns 0 within about a second, canceling a running job. Returns a
 * negative BS_E* code, after logging why, only when it cannot start: bad options, an unusable
 * cache directory, an endpoint ZeroMQ refuses. Never exits the process. */
int bs_agent_run(const bs_agent_opts_t *opts, volatile sig_atomic_t *stop);

/* The default cache directory: $BITSCOUT_CACHE_DIR, else $XDG_CACHE_HOME/bitscout, else
 * $HOME/.cache/bitscout. Caller frees (bs_free); NULL when none of them is set, or on OOM. */
char *bs_agent_default_cache_dir(void);

/* The agent's persistent identity: 32 lowercase hex digits (128 random bits from libsodium),
 * created once and kept in "<cache_dir>/agent-id-<name>" (name with characters outside
 * [A-Za-z0-9._-] replaced by '_'), so a restarted agent keeps its id and agents with
 * different names can share a cache directory. A file with anything else in it is replaced by
 * a fresh id. out receives the id, NUL-terminated. BS_EIO if the file cannot be written. */
int bs_agent_load_id(const char *cache_dir, const char *name, char out[33], bs_err_t *err);

#endif

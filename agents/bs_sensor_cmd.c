/*
 * bs_sensor_cmd.c - the "command" source: an external program that prints watts.
 *
 * Inside a window a reader thread runs the command with the system shell (sh -c, in a process
 * group of its own, stdin /dev/null, stdout a pipe) and reads its lines: each line is one power
 * reading in watts, stamped with CLOCK_MONOTONIC on arrival and handed to the window's sink;
 * blank lines are ignored. A command that keeps printing is read until the window ends; one
 * that prints and exits 0 is run again a period after its last start. Everything else stops
 * the reader with an error for the window: a line that is not a finite number >= 0, a line
 * longer than 255 bytes, an exit with another status or before any reading, and no reading for
 * timeout_s (a hung meter). Stopping writes a byte to a wake pipe the reader polls with the
 * command's stdout, so it returns at once; the command's process group then gets SIGTERM and,
 * after 0.5 s, SIGKILL, and is always reaped.
 */
#define _GNU_SOURCE /* pipe2 */
#include "bs_sensor_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <paths.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bs_alloc.h"
#include "bs_util.h"

extern char **environ;

#define S_LINE_MAX 256

struct bs__cmd_run {
    const bs__source_t *src;
    bs__cmd_sink_t sink;
    pthread_t thr;
    int wake[2]; /* a byte on wake[1] stops the reader */
    pid_t pid;   /* the running command (leader of its process group); 0 when none */
    int fd;      /* read end of its stdout; -1 when none */
    char line[S_LINE_MAX];
    size_t len;     /* bytes of the current line */
    long lineno;    /* lines read over all runs */
    long run_lines; /* readings from the current run */
};

static void s_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Waits up to timeout_s for pid to exit, then kills its group and waits. *status is the wait
 * status, or -1 when it had to be killed or could not be waited for. */
static void s_reap(pid_t pid, double timeout_s, int *status)
{
    double end = bs_now_s() + timeout_s;
    int st = 0;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            *status = st;
            return;
        }
        if (r < 0 && errno != EINTR) { /* ECHILD: SIGCHLD ignored by the program */
            *status = -1;
            return;
        }
        if (bs_now_s() >= end)
            break;
        s_sleep_ms(5);
    }
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    *status = -1;
}

static void s_kill(bs__cmd_run_t *r)
{
    if (r->fd >= 0) {
        close(r->fd);
        r->fd = -1;
    }
    if (r->pid > 0) {
        int st;
        kill(-r->pid, SIGTERM);
        s_reap(r->pid, 0.5, &st);
        r->pid = 0;
    }
}

static int s_spawn(bs__cmd_run_t *r, char *msg, size_t cap)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) {
        snprintf(msg, cap, "command: pipe: %s", strerror(errno));
        return BS_EIO;
    }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    posix_spawn_file_actions_adddup2(&fa, p[1], STDOUT_FILENO);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    sigset_t none, dflt;
    sigemptyset(&none);
    sigemptyset(&dflt);
    sigaddset(&dflt, SIGPIPE);
    sigaddset(&dflt, SIGTERM);
    sigaddset(&dflt, SIGINT);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &dflt);
    posix_spawnattr_setpgroup(&at, 0);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                      POSIX_SPAWN_SETSIGDEF);
    char *argv[] = {"sh", "-c", r->src->command, NULL};
    pid_t pid;
    int rc = posix_spawn(&pid, _PATH_BSHELL, &fa, &at, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(p[1]);
    if (rc != 0) {
        close(p[0]);
        snprintf(msg, cap, "command: cannot run %s: %s", _PATH_BSHELL, strerror(rc));
        return BS_EIO;
    }
    r->pid = pid;
    r->fd = p[0];
    r->run_lines = 0;
    r->len = 0;
    return 0;
}

/* Handles one complete line: 0 (a reading or a blank line) or BS_EDATA with msg. */
static int s_line(bs__cmd_run_t *r, double now, char *msg, size_t cap)
{
    r->line[r->len] = '\0';
    r->len = 0;
    r->lineno++;
    char *s = r->line;
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    if (!n)
        return 0;
    char *end = NULL;
    double w = strtod(s, &end);
    if (end == s || *end || !isfinite(w) || w < 0) {
        char shown[48];
        size_t i = 0;
        for (; s[i] && i < 40; i++)
            shown[i] = (s[i] >= 32 && s[i] < 127) ? s[i] : '?';
        shown[i] = '\0';
        snprintf(msg, cap, "command: line %ld: \"%s%s\" is not %s", r->lineno, shown,
                 s[i] ? "..." : "",
                 (end != s && !*end && w < 0) ? "a power >= 0" : "a number of watts");
        return BS_EDATA;
    }
    r->run_lines++;
    r->sink.on_sample(r->sink.ud, now, w);
    return 0;
}

/* Describes how the command ended. */
static void s_exit_msg(bs__cmd_run_t *r, int st, char *msg, size_t cap)
{
    if (st == -1)
        snprintf(msg, cap, "command closed its output after %ld readings but did not exit",
                 r->run_lines);
    else if (WIFEXITED(st))
        snprintf(msg, cap, "command exited with status %d after %ld readings", WEXITSTATUS(st),
                 r->run_lines);
    else if (WIFSIGNALED(st))
        snprintf(msg, cap, "command killed by signal %d after %ld readings", WTERMSIG(st),
                 r->run_lines);
    else
        snprintf(msg, cap, "command ended after %ld readings", r->run_lines);
}

static void *s_reader(void *arg)
{
    bs__cmd_run_t *r = arg;
    const double timeout = r->src->timeout_s, period = r->src->period_s;
    char msg[BS_ERR_MSG_MAX];
    int code;
    if ((code = s_spawn(r, msg, sizeof msg)) < 0)
        goto fail;
    double started = bs_now_s(), deadline = started + timeout, rerun_at = 0;
    for (;;) {
        struct pollfd pf[2] = {{r->wake[0], POLLIN, 0}, {r->fd, POLLIN, 0}};
        nfds_t nf = r->fd >= 0 ? 2 : 1;
        double now = bs_now_s(), until = rerun_at > 0 ? rerun_at : deadline;
        int ms = until > now ? (int)ceil((until - now) * 1000.0) : 0;
        int pr = poll(pf, nf, ms);
        if (pr < 0 && errno != EINTR) {
            code = BS_EIO;
            snprintf(msg, sizeof msg, "command: poll: %s", strerror(errno));
            goto fail;
        }
        if (pr > 0 && pf[0].revents)
            break; /* stop */
        now = bs_now_s();
        if (pr > 0 && nf == 2 && pf[1].revents) {
            char buf[512];
            ssize_t n = read(r->fd, buf, sizeof buf);
            if (n < 0) {
                if (errno == EINTR || errno == EAGAIN)
                    continue;
                code = BS_EIO;
                snprintf(msg, sizeof msg, "command: read: %s", strerror(errno));
                goto fail;
            }
            for (ssize_t i = 0; i < n; i++) {
                if (buf[i] == '\n') {
                    if ((code = s_line(r, now, msg, sizeof msg)) < 0)
                        goto fail;
                    deadline = now + timeout;
                } else if (r->len < S_LINE_MAX - 1) {
                    r->line[r->len++] = buf[i];
                } else {
                    code = BS_EDATA;
                    snprintf(msg, sizeof msg, "command: line %ld longer than %d bytes",
                             r->lineno + 1, S_LINE_MAX - 1);
                    goto fail;
                }
            }
            if (n > 0)
                continue;
            /* end of output: a last line without a newline, then the exit status */
            if (r->len && (code = s_line(r, now, msg, sizeof msg)) < 0)
                goto fail;
            close(r->fd);
            r->fd = -1;
            int st;
            s_reap(r->pid, timeout < 1.0 ? timeout : 1.0, &st);
            r->pid = 0;
            if (st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0 && r->run_lines > 0) {
                rerun_at = started + period > now ? started + period : now;
                deadline = rerun_at + timeout;
                continue;
            }
            code = BS_EIO;
            s_exit_msg(r, st, msg, sizeof msg);
            goto fail;
        }
        if (rerun_at > 0 && now >= rerun_at) {
            if ((code = s_spawn(r, msg, sizeof msg)) < 0)
                goto fail;
            started = now;
            rerun_at = 0;
            deadline = now + timeout;
            continue;
        }
        if (rerun_at <= 0 && now >= deadline) {
            code = BS_ETIMEOUT;
            snprintf(msg, sizeof msg, "command: no reading for %.1f s (hung?)", timeout);
            goto fail;
        }
    }
    s_kill(r);
    return NULL;
fail:
    r->sink.on_error(r->sink.ud, code, msg);
    s_kill(r);
    return NULL;
}

int bs__cmd_start(const bs__source_t *src, const bs__cmd_sink_t *sink, bs__cmd_run_t **out,
                  bs_err_t *err)
{
    *out = NULL;
    bs__cmd_run_t *r = bs_calloc(1, sizeof *r);
    if (!r)
        return bs_err_set(err, BS_ENOMEM, "command: out of memory");
    r->src = src;
    r->sink = *sink;
    r->fd = -1;
    if (pipe2(r->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
        int e = errno;
        bs_free(r);
        return bs_err_set(err, BS_EIO, "command: pipe: %s", strerror(e));
    }
    int rc = pthread_create(&r->thr, NULL, s_reader, r);
    if (rc != 0) {
        close(r->wake[0]);
        close(r->wake[1]);
        bs_free(r);
        return bs_err_set(err, BS_EIO, "command: cannot start the reader thread: %s",
                          strerror(rc));
    }
    *out = r;
    return 0;
}

void bs__cmd_stop(bs__cmd_run_t **run)
{
    bs__cmd_run_t *r = *run;
    if (!r)
        return;
    *run = NULL;
    ssize_t w;
    do {
        w = write(r->wake[1], "x", 1);
    } while (w < 0 && errno == EINTR);
    pthread_join(r->thr, NULL);
    close(r->wake[0]);
    close(r->wake[1]);
    bs_free(r);
}

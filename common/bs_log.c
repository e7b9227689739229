/*
 * bs_log.c - formats a log line with a UTC timestamp and writes it to stderr in one call, so
 * lines from concurrent processes (the searcher and its local agents share a terminal) do not
 * interleave mid-line.
 */
#include "bs_log.h"
#include "bs_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

int bs_log_level = BS_LOG_INFO;

static void (*s_hook)(int after, void *ud);
static void *s_hook_ud;

static const char *const s_names[] = {"ERROR", "WARN ", "INFO ", "DEBUG"};

void bs_log_set_hook(void (*hook)(int after, void *ud), void *ud)
{
    s_hook = hook;
    s_hook_ud = ud;
}

int bs_log_parse_level(const char *s, int *level)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++) {
        if (s && strcasecmp(s, names[i]) == 0) {
            *level = i;
            return 0;
        }
    }
    return BS_EINVAL;
}

void bs_log_write(int level, const char *module, const char *fmt, ...)
{
    char line[2048];
    struct timespec ts;
    struct tm tm;
    size_t n;
    va_list ap;

    if (level < 0)
        level = 0;
    if (level > 3)
        level = 3;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(line + n, sizeof line - n, ".%03ldZ %s %s: ", ts.tv_nsec / 1000000L,
                          s_names[level], module ? module : "-");
    va_start(ap, fmt);
    if (n < sizeof line)
        vsnprintf(line + n, sizeof line - n, fmt, ap);
    va_end(ap);
    n = strlen(line);
    if (n > sizeof line - 2)
        n = sizeof line - 2;
    line[n++] = '\n';
    if (s_hook)
        s_hook(0, s_hook_ud);
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
    if (s_hook)
        s_hook(1, s_hook_ud);
}

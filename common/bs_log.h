/*
 * bs_log.h - leveled log lines on stderr.
 *
 * Lines look like "2026-11-27T16:01:02.123Z INFO  searcher: agent local-1 joined". The macros
 * test the level before evaluating their arguments, so a DEBUG line costs one comparison when
 * debugging is off. A "pre-write" hook lets the live progress line erase itself before a log
 * line is printed and redraw afterwards (see searcher/bs_progress.c).
 */
#ifndef BS_LOG_H
#define BS_LOG_H

enum { BS_LOG_ERROR = 0, BS_LOG_WARN = 1, BS_LOG_INFO = 2, BS_LOG_DEBUG = 3 };

extern int bs_log_level; /* lines above this level are skipped; default BS_LOG_INFO */

void bs_log_write(int level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Called before (after=0) and after (after=1) each line is written; NULL removes it. */
void bs_log_set_hook(void (*hook)(int after, void *ud), void *ud);
/* Parses "error|warn|info|debug"; returns 0 or BS_EINVAL. */
int bs_log_parse_level(const char *s, int *level);

#define BS_LOG(level, module, ...)                                                               \
    do {                                                                                         \
        if ((level) <= bs_log_level)                                                             \
            bs_log_write((level), (module), __VA_ARGS__);                                        \
    } while (0)

#define BS_ERROR(module, ...) BS_LOG(BS_LOG_ERROR, module, __VA_ARGS__)
#define BS_WARN(module, ...) BS_LOG(BS_LOG_WARN, module, __VA_ARGS__)
#define BS_INFO(module, ...) BS_LOG(BS_LOG_INFO, module, __VA_ARGS__)
#define BS_DEBUG(module, ...) BS_LOG(BS_LOG_DEBUG, module, __VA_ARGS__)

#endif

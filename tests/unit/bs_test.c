/*
 * bs_test.c - the runner behind bs_test.h: forks each test, enforces a timeout with alarm(),
 * gives each test its own temporary directory, and prints one line per test and the summary
 * line "N passed, N failed".
 */
#define _GNU_SOURCE
#include "bs_test.h"

#include <signal.h>
#include <stdarg.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bs_alloc.h"

static char s_tmpdir[256];

const char *bs_test_tmpdir(void)
{
    return s_tmpdir;
}

void bs_test_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    _exit(1);
}

static int s_run_one(const bs_test_case_t *tc)
{
    char tmpl[] = "/tmp/bs_test_XXXXXX";
    if (!mkdtemp(tmpl)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(s_tmpdir, sizeof s_tmpdir, "%s", tmpl);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        const char *t = getenv("BS_TEST_TIMEOUT");
        alarm(t ? (unsigned)atoi(t) : 60u);
        bs_alloc_init();
        tc->fn();
        exit(0); /* not _exit: LeakSanitizer runs its check at exit */
    }
    int status = 0;
    waitpid(pid, &status, 0);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpl);
    if (system(cmd) != 0)
        fprintf(stderr, "warning: could not remove %s\n", tmpl);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (WIFSIGNALED(status))
        fprintf(stderr, "  %s: killed by signal %d%s\n", tc->name, WTERMSIG(status),
                WTERMSIG(status) == SIGALRM ? " (timeout)" : "");
    return 1;
}

int bs_test_run_all(const bs_test_case_t *cases, int argc, char **argv)
{
    int passed = 0, failed = 0;
    for (const bs_test_case_t *tc = cases; tc->name; tc++) {
        if (argc > 1) {
            int wanted = 0;
            for (int i = 1; i < argc; i++)
                wanted |= strcmp(argv[i], tc->name) == 0;
            if (!wanted)
                continue;
        }
        int rc = s_run_one(tc);
        printf("%s %s\n", rc ? "FAIL" : "ok  ", tc->name);
        fflush(stdout);
        if (rc)
            failed++;
        else
            passed++;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

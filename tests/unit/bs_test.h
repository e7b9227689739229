/*
 * bs_test.h - a small unit-test harness in the manner of libuv's.
 *
 * A test file defines its tests with BS_TEST(name) and lists each once in BS_TEST_LIST, then
 * ends with BS_TEST_MAIN(). Every test runs in its own forked process with a timeout, so a
 * crash or a hang fails that test alone. Asserts are typed and print both values:
 *   ASSERT_EQ(10, calls);  ASSERT_STR_EQ("w8a8", text);  ASSERT_OK(rc);
 * The runner ends with the line "N passed, N failed" and exits non-zero on any failure.
 * Run one test: ./test_x NAME.
 */
#ifndef BS_TEST_H
#define BS_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*bs_test_fn)(void);
typedef struct bs_test_case {
    const char *name;
    bs_test_fn fn;
} bs_test_case_t;

int bs_test_run_all(const bs_test_case_t *cases, int argc, char **argv);
void bs_test_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));
/* A fresh temporary directory for this test (removed by the runner); static storage. */
const char *bs_test_tmpdir(void);

#define BS_TEST(name) static void test_##name(void)
#define BS_TEST_ENTRY(name) {#name, test_##name},
#define BS_TEST_MAIN(list)                                                                       \
    int main(int argc, char **argv)                                                              \
    {                                                                                            \
        static const bs_test_case_t cases[] = {list(BS_TEST_ENTRY){NULL, NULL}};                 \
        return bs_test_run_all(cases, argc, argv);                                               \
    }

#define ASSERT(cond)                                                                             \
    do {                                                                                         \
        if (!(cond))                                                                             \
            bs_test_fail(__FILE__, __LINE__, "assertion failed: %s", #cond);                     \
    } while (0)
#define ASSERT_EQ(expect, actual)                                                                \
    do {                                                                                         \
        long long bs__e = (long long)(expect), bs__a = (long long)(actual);                      \
        if (bs__e != bs__a)                                                                      \
            bs_test_fail(__FILE__, __LINE__, "%s == %s: expected %lld, got %lld", #expect,        \
                         #actual, bs__e, bs__a);                                                 \
    } while (0)
#define ASSERT_NE(a, b)                                                                          \
    do {                                                                                         \
        long long bs__x = (long long)(a), bs__y = (long long)(b);                                \
        if (bs__x == bs__y)                                                                      \
            bs_test_fail(__FILE__, __LINE__, "%s != %s: both %lld", #a, #b, bs__x);              \
    } while (0)
#define ASSERT_OK(rc) ASSERT_EQ(0, rc)
#define ASSERT_DBL_NEAR(expect, actual, tol)                                                     \
    do {                                                                                         \
        double bs__e = (expect), bs__a = (actual);                                               \
        if (!(bs__a >= bs__e - (tol) && bs__a <= bs__e + (tol)))                                 \
            bs_test_fail(__FILE__, __LINE__, "%s ~ %s: expected %.9g, got %.9g (tol %g)",        \
                         #expect, #actual, bs__e, bs__a, (double)(tol));                         \
    } while (0)
#define ASSERT_STR_EQ(expect, actual)                                                            \
    do {                                                                                         \
        const char *bs__e = (expect), *bs__a = (actual);                                         \
        if (!bs__e || !bs__a || strcmp(bs__e, bs__a) != 0)                                       \
            bs_test_fail(__FILE__, __LINE__, "%s == %s: expected \"%s\", got \"%s\"", #expect,   \
                         #actual, bs__e ? bs__e : "(null)", bs__a ? bs__a : "(null)");           \
    } while (0)
/* Substring check, for error messages: ASSERT_CONTAINS(err.msg, "objectives[1]") */
#define ASSERT_CONTAINS(haystack, needle)                                                        \
    do {                                                                                         \
        const char *bs__h = (haystack), *bs__n = (needle);                                       \
        if (!bs__h || !strstr(bs__h, bs__n))                                                     \
            bs_test_fail(__FILE__, __LINE__, "expected \"%s\" to contain \"%s\"",                \
                         bs__h ? bs__h : "(null)", bs__n);                                       \
    } while (0)

#endif

/*
 * bs_alloc.h - the one allocator every module uses, with a fault-injection hook.
 *
 * bs_malloc and friends wrap the C allocator; bs_alloc_fail_after(n) makes the (n+1)th
 * allocation from now fail, so a test can walk n = 0, 1, 2, ... and check that every caller
 * fails cleanly with BS_ENOMEM and leaks nothing (ASan reports leaks). cJSON is routed through
 * the same functions by bs_alloc_init().
 */
#ifndef BS_ALLOC_H
#define BS_ALLOC_H

#include <stddef.h>

void bs_alloc_init(void); /* installs the cJSON hooks; call once from main and tests */
void *bs_malloc(size_t n);
void *bs_calloc(size_t count, size_t size);
void *bs_realloc(void *p, size_t n);
void bs_free(void *p);
char *bs_strdup(const char *s);              /* NULL in, NULL out */
char *bs_strndup(const char *s, size_t n);

/* Test hook: -1 disables (default); n >= 0 lets n allocations succeed, then all fail. */
void bs_alloc_fail_after(long n);

#endif

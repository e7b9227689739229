/*
 * bs_selftest.h - `bitscout-agent --selftest`: what the agent finds on this device (see
 * bs_selftest.c).
 */
#ifndef BS_SELFTEST_H
#define BS_SELFTEST_H

/* argv[0] is "--selftest". Returns the exit status: 0 done, 2 bad usage, 1 out of memory. */
int bs_selftest_main(int argc, char **argv);

#endif

/*
 * bs_device.h - the description of this device that the agent sends in HELLO.
 *
 * Read from uname(), sysconf() and /proc; every field has a fallback ("unknown", -1) so a
 * missing or unusual /proc (containers, Android) never fails the description.
 */
#ifndef BS_DEVICE_H
#define BS_DEVICE_H

#include <cjson/cJSON.h>

/* {"arch", "cpu", "cores", "mem_bytes", "os", "kernel", "hostname", "os_release", "governor",
 * "cpu_max_mhz": [{"mhz", "cpus"}...], "engine": {"version", "float_kernels", "int8_kernels",
 * "float_available", "int8_available"}}: a new object the caller owns (cJSON_Delete); NULL on
 * OOM. Unknown values are left out, never made up. */
cJSON *bs_device_describe(void);

/* The CPU model from a /proc/cpuinfo-formatted file: the first "model name", else
 * "Hardware", else "Model", else "cpu model" line; "unknown" when none. out has cap bytes.
 * Exposed for tests. */
void bs_device_cpu_model(const char *cpuinfo_path, char *out, size_t cap);
/* PRETTY_NAME of an os-release file into out ("" when absent). Exposed for tests. */
void bs_device_os_release(const char *path, char *out, size_t cap);
/* MemTotal from a /proc/meminfo-formatted file, in bytes; -1 when unreadable. */
long long bs_device_mem_total(const char *meminfo_path);

#endif

/*
 * bs_device.c - the device description for HELLO (see bs_device.h).
 *
 * /proc/cpuinfo names the CPU differently per architecture: x86 has "model name" per core;
 * arm64 kernels print "Hardware" (older ones) or nothing at all, and some boards print
 * "Model". We take the first of those keys found, in that order of preference, and fall back
 * to the device-tree model (Jetson, Raspberry Pi) and finally "unknown". Beside the basics the
 * description carries the OS release, the frequency governor, each distinct maximum CPU
 * frequency with its CPU count (big.LITTLE shows as two entries), and the engine: its version
 * and the float / int8 kernel instruction sets it dispatches to and could use.
 */
#include "bs_device.h"

#include "bs_kernels.h"
#include "bs_qkernels.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

/* Copies the value of "key<spaces>: value" into out if line starts with key. */
static int s_match(const char *line, const char *key, char *out, size_t cap)
{
    size_t k = strlen(key);
    if (strncmp(line, key, k) != 0)
        return 0;
    const char *p = line + k;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p != ':')
        return 0;
    p++;
    while (*p == ' ' || *p == '\t')
        p++;
    size_t n = strcspn(p, "\r\n");
    while (n > 0 && isspace((unsigned char)p[n - 1]))
        n--;
    if (n == 0)
        return 0;
    if (n >= cap)
        n = cap - 1;
    memcpy(out, p, n);
    out[n] = '\0';
    return 1;
}

void bs_device_cpu_model(const char *cpuinfo_path, char *out, size_t cap)
{
    static const char *const keys[] = {"model name", "Hardware", "Model", "cpu model"};
    enum { S_NKEYS = sizeof keys / sizeof keys[0] };
    char found[S_NKEYS][256] = {{0}};
    snprintf(out, cap, "unknown");
    FILE *f = fopen(cpuinfo_path, "r");
    if (f) {
        char line[1024];
        while (fgets(line, sizeof line, f))
            for (int i = 0; i < S_NKEYS; i++)
                if (!found[i][0])
                    s_match(line, keys[i], found[i], sizeof found[i]);
        fclose(f);
        for (int i = 0; i < S_NKEYS; i++) {
            if (found[i][0]) {
                snprintf(out, cap, "%s", found[i]);
                return;
            }
        }
    }
}

/* Device-tree boards: "NVIDIA Jetson AGX Orin Developer Kit" (NUL-terminated). */
static void s_dt_model(char *out, size_t cap)
{
    FILE *f = fopen("/proc/device-tree/model", "r");
    if (!f)
        return;
    char buf[256];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    size_t len = strcspn(buf, "\r\n");
    buf[len] = '\0';
    if (len > 0)
        snprintf(out, cap, "%s", buf);
}

long long bs_device_mem_total(const char *meminfo_path)
{
    FILE *f = fopen(meminfo_path, "r");
    if (!f)
        return -1;
    char line[256];
    long long kb = -1;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "MemTotal: %lld kB", &kb) == 1)
            break;
        kb = -1;
    }
    fclose(f);
    return kb >= 0 ? kb * 1024 : -1;
}

/* First line of a small file, trimmed; "" when unreadable. */
static void s_read_line(const char *path, char *out, size_t cap)
{
    out[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    if (fgets(out, (int)cap, f))
        out[strcspn(out, "\r\n")] = '\0';
    fclose(f);
}

/* PRETTY_NAME from an os-release file ("Debian GNU/Linux 12 (bookworm)"); "" when absent. */
void bs_device_os_release(const char *path, char *out, size_t cap)
{
    out[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "PRETTY_NAME=", 12) != 0)
            continue;
        char *v = line + 12;
        v[strcspn(v, "\r\n")] = '\0';
        size_t n = strlen(v);
        if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
            v[n - 1] = '\0';
            v++;
        }
        snprintf(out, cap, "%s", v);
        break;
    }
    fclose(f);
}

/* The CPUs' maximum frequencies (cpuinfo_max_freq, MHz) as one entry per distinct value with
 * its CPU count, e.g. [{"mhz": 3000, "cpus": 4}, {"mhz": 1800, "cpus": 4}] on big.LITTLE. */
static cJSON *s_cpu_freqs(void)
{
    long long mhz[64];
    int count[64], n = 0;
    for (int cpu = 0; cpu < 1024; cpu++) {
        char path[128], line[64];
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/cpufreq/cpuinfo_max_freq",
                 cpu);
        s_read_line(path, line, sizeof line);
        long long khz;
        if (!line[0] || sscanf(line, "%lld", &khz) != 1 || khz <= 0)
            continue;
        int i = 0;
        while (i < n && mhz[i] != khz / 1000)
            i++;
        if (i == n && n < 64) {
            mhz[n] = khz / 1000;
            count[n++] = 0;
        }
        if (i < n)
            count[i]++;
    }
    if (n == 0)
        return NULL;
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; arr && i < n; i++) {
        cJSON *e = cJSON_CreateObject();
        if (!e || !cJSON_AddNumberToObject(e, "mhz", (double)mhz[i]) ||
            !cJSON_AddNumberToObject(e, "cpus", count[i]) || !cJSON_AddItemToArray(arr, e)) {
            cJSON_Delete(e);
            cJSON_Delete(arr);
            return NULL;
        }
    }
    return arr;
}

cJSON *bs_device_describe(void)
{
    struct utsname u;
    int have_uname = uname(&u) == 0;
    char cpu[256], host[256];
    bs_device_cpu_model("/proc/cpuinfo", cpu, sizeof cpu);
    if (strcmp(cpu, "unknown") == 0)
        s_dt_model(cpu, sizeof cpu);
    if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "unknown");
    host[sizeof host - 1] = '\0';
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    long long mem = bs_device_mem_total("/proc/meminfo");

    cJSON *o = cJSON_CreateObject();
    int ok = o != NULL;
    ok = ok && cJSON_AddStringToObject(o, "arch", have_uname ? u.machine : "unknown");
    ok = ok && cJSON_AddStringToObject(o, "cpu", cpu);
    if (ok && cores > 0) /* unknown numbers are left out, never made up */
        ok = cJSON_AddNumberToObject(o, "cores", (double)cores) != NULL;
    if (ok && mem > 0)
        ok = cJSON_AddNumberToObject(o, "mem_bytes", (double)mem) != NULL;
    ok = ok && cJSON_AddStringToObject(o, "os", have_uname ? u.sysname : "Linux");
    ok = ok && cJSON_AddStringToObject(o, "kernel", have_uname ? u.release : "unknown");
    ok = ok && cJSON_AddStringToObject(o, "hostname", host);
    char line[256];
    bs_device_os_release("/etc/os-release", line, sizeof line);
    if (ok && line[0])
        ok = cJSON_AddStringToObject(o, "os_release", line) != NULL;
    s_read_line("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor", line, sizeof line);
    if (ok && line[0])
        ok = cJSON_AddStringToObject(o, "governor", line) != NULL;
    cJSON *freqs = ok ? s_cpu_freqs() : NULL;
    if (freqs)
        cJSON_AddItemToObject(o, "cpu_max_mhz", freqs);
    /* what the engine will use on this machine: its version and the kernels it dispatches to */
    cJSON *eng = ok ? cJSON_AddObjectToObject(o, "engine") : NULL;
    ok = ok && eng && cJSON_AddStringToObject(eng, "version", BS_VERSION);
    ok = ok && cJSON_AddStringToObject(eng, "float_kernels", bs_kernels_isa());
    ok = ok && cJSON_AddStringToObject(eng, "int8_kernels", bs_qkernels_isa());
    ok = ok && cJSON_AddStringToObject(eng, "float_available", bs_kernels_available());
    ok = ok && cJSON_AddStringToObject(eng, "int8_available", bs_qkernels_available());
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

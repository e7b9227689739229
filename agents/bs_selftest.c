/*
 * bs_selftest.c - `bitscout-agent --selftest [--format text|json] [--threads N]`: what this
 * agent finds on the device it is about to measure, before any searcher is involved.
 *
 * It prints the device description HELLO will carry (bs_device.c: CPU, cores, frequency
 * governor and maximum frequencies, memory, OS and kernel, engine version and kernel
 * instruction sets), the CPUs this process may run on, every thermal zone with its current
 * temperature, the mean current CPU frequency, the energy sensors found with a short reading
 * of each (bs_sensors.h), and a timing-stability check: five passes of 200 runs of a fixed
 * 64 x 64 x 64 float GEMM on the engine's own kernels, each pass's median and coefficient of
 * variation, and the spread of the medians across passes. A user attaching a new phone or
 * Jetson sees at once what will be measured and whether the timing is steady enough (a spread
 * or CV above 5% says: pin the big cores with measure.cpus, set the performance governor, or
 * let the device cool down). The exit status is 0 when the check ran, whatever it found.
 */
#include "bs_selftest.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bs_alloc.h"
#include "bs_device.h"
#include "bs_kernels.h"
#include "bs_run.h"
#include "bs_sensors.h"
#include "bs_stats.h"
#include "bs_threadpool.h"

enum { S_PASSES = 5, S_RUNS = 200, S_N = 64 };

static double s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* [{"zone": "thermal_zone0", "type": "x86_pkg_temp", "temp_c": 45.0}, ...] */
static cJSON *s_thermal(void)
{
    cJSON *arr = cJSON_CreateArray();
    char path[4096];
    const char *root = bs_sensor_root(NULL);
    snprintf(path, sizeof path, "%s/sys/class/thermal", root);
    DIR *d = opendir(path);
    for (struct dirent *e; arr && d && (e = readdir(d));) {
        if (strncmp(e->d_name, "thermal_zone", 12) != 0)
            continue;
        char type[64] = "", temp[64] = "";
        FILE *f;
        snprintf(path, sizeof path, "%s/sys/class/thermal/%s/type", root, e->d_name);
        if ((f = fopen(path, "r"))) {
            if (fgets(type, sizeof type, f))
                type[strcspn(type, "\r\n")] = '\0';
            fclose(f);
        }
        snprintf(path, sizeof path, "%s/sys/class/thermal/%s/temp", root, e->d_name);
        if ((f = fopen(path, "r"))) {
            if (!fgets(temp, sizeof temp, f))
                temp[0] = '\0';
            fclose(f);
        }
        cJSON *z = cJSON_CreateObject();
        long long mc;
        if (!z)
            break;
        cJSON_AddStringToObject(z, "zone", e->d_name);
        cJSON_AddStringToObject(z, "type", type);
        if (sscanf(temp, "%lld", &mc) == 1)
            cJSON_AddNumberToObject(z, "temp_c", (double)mc / 1000.0);
        else
            cJSON_AddNullToObject(z, "temp_c");
        cJSON_AddItemToArray(arr, z);
    }
    if (d)
        closedir(d);
    return arr;
}

/* Five passes of S_RUNS timed 64^3 GEMMs: {"passes": [{"median_us", "cv"}...],
 * "median_spread": (max - min) / min of the pass medians, "stable": bool}. */
static cJSON *s_stability(int threads)
{
    float *a = bs_malloc(sizeof(float) * S_N * S_N), *b = bs_malloc(sizeof(float) * S_N * S_N);
    float *y = bs_malloc(sizeof(float) * S_N * S_N);
    size_t pb = bs_gemm_packed_size(S_N, S_N), sb = bs_gemm_scratch_size(S_N, S_N, S_N, threads);
    void *wp = bs_malloc(pb + 64), *scr = bs_malloc(sb + 64);
    double *t = bs_malloc(sizeof(double) * S_RUNS);
    bs_threadpool_t *pool = threads > 1 ? bs_threadpool_new(threads) : NULL;
    cJSON *o = cJSON_CreateObject(), *passes = o ? cJSON_AddArrayToObject(o, "passes") : NULL;
    if (!a || !b || !y || !wp || !scr || !t || !passes || (threads > 1 && !pool)) {
        cJSON_Delete(o);
        o = NULL;
        goto done;
    }
    for (int i = 0; i < S_N * S_N; i++) {
        a[i] = (float)((i * 37) % 101) / 101.0f - 0.5f;
        b[i] = (float)((i * 53) % 97) / 97.0f - 0.5f;
    }
    void *wpa = (void *)(((uintptr_t)wp + 63) / 64 * 64);
    bs_gemm_pack(b, S_N, 1, S_N, S_N, wpa);
    double lo = INFINITY, hi = 0, worst_cv = 0;
    for (int p = 0; p < S_PASSES; p++) {
        for (int r = 0; r < 20; r++) /* warm-up */
            bs_gemm(S_N, S_N, S_N, a, S_N, 1, wpa, NULL, y, S_N, 1, BS_KACT_NONE, 0, 0, scr, pool);
        for (int r = 0; r < S_RUNS; r++) {
            double t0 = s_now_ms();
            bs_gemm(S_N, S_N, S_N, a, S_N, 1, wpa, NULL, y, S_N, 1, BS_KACT_NONE, 0, 0, scr, pool);
            t[r] = s_now_ms() - t0;
        }
        bs_latency_stats_t st;
        if (bs_stats_compute(t, S_RUNS, &st) != 0)
            continue;
        cJSON *e = cJSON_CreateObject();
        if (!e)
            break;
        cJSON_AddNumberToObject(e, "median_us", st.median * 1e3);
        cJSON_AddNumberToObject(e, "cv", st.cv);
        cJSON_AddItemToArray(passes, e);
        lo = st.median < lo ? st.median : lo;
        hi = st.median > hi ? st.median : hi;
        worst_cv = st.cv > worst_cv ? st.cv : worst_cv;
    }
    double spread = lo > 0 && isfinite(lo) ? (hi - lo) / lo : NAN;
    cJSON_AddNumberToObject(o, "runs_per_pass", S_RUNS);
    if (isfinite(spread))
        cJSON_AddNumberToObject(o, "median_spread", spread);
    else
        cJSON_AddNullToObject(o, "median_spread");
    cJSON_AddNumberToObject(o, "worst_cv", worst_cv);
    cJSON_AddBoolToObject(o, "stable", isfinite(spread) && spread <= 0.05 && worst_cv <= 0.05);
done:
    bs_threadpool_free(&pool);
    bs_free(a);
    bs_free(b);
    bs_free(y);
    bs_free(wp);
    bs_free(scr);
    bs_free(t);
    return o;
}

/* The sensors found under the root, each read for 200 ms (bs_sensors_describe). */
static cJSON *s_sensors(void)
{
    bs_sensor_set_t *set = NULL;
    bs_err_t err = {0};
    cJSON *out = NULL;
    if (bs_sensors_discover(NULL, &set, &err) != 0 ||
        bs_sensors_describe(set, 200, &out, &err) != 0) {
        out = cJSON_CreateObject();
        if (out)
            cJSON_AddStringToObject(out, "error", err.msg);
    }
    bs_sensors_free(&set);
    return out;
}

static void s_usage(FILE *out)
{
    fprintf(out, "usage: bitscout-agent --selftest [--format text|json] [--threads N]\n"
                 "\n"
                 "Prints what this agent finds on this device (CPU, kernels, thermal zones,\n"
                 "energy sensors with a short reading) and runs a short timing-stability check.\n");
}

static void s_print_text(const cJSON *r)
{
    const cJSON *dev = cJSON_GetObjectItemCaseSensitive(r, "device");
    char *d = cJSON_Print(dev);
    printf("device        %s\n", d ? d : "?");
    cJSON_free(d);
    printf("cpus allowed  %s\n", cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "cpus")));
    const cJSON *z;
    cJSON_ArrayForEach(z, cJSON_GetObjectItemCaseSensitive(r, "thermal_zones"))
    {
        const cJSON *tc = cJSON_GetObjectItemCaseSensitive(z, "temp_c");
        char temp[32] = "unreadable";
        if (cJSON_IsNumber(tc))
            snprintf(temp, sizeof temp, "%.1f C", tc->valuedouble);
        printf("thermal       %-16s %-20s %s\n",
               cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(z, "zone")),
               cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(z, "type")), temp);
    }
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(r, "cpu_freq_mhz");
    if (cJSON_IsNumber(f))
        printf("cpu freq      %.0f MHz (mean current)\n", f->valuedouble);
    else
        printf("cpu freq      unknown (no cpufreq in sysfs)\n");
    char *s = cJSON_Print(cJSON_GetObjectItemCaseSensitive(r, "sensors"));
    printf("sensors       %s\n", s ? s : "?");
    cJSON_free(s);
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(r, "stability");
    const cJSON *p;
    int i = 0;
    cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(st, "passes"))
    {
        printf("timing pass %d  median %.2f us, cv %.3f (64x64x64 GEMM, %d runs)\n", ++i,
               cJSON_GetObjectItemCaseSensitive(p, "median_us")->valuedouble,
               cJSON_GetObjectItemCaseSensitive(p, "cv")->valuedouble, S_RUNS);
    }
    const cJSON *sp = cJSON_GetObjectItemCaseSensitive(st, "median_spread");
    printf("timing        %s: medians spread %.1f%%, worst cv %.3f\n",
           cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(st, "stable"))
               ? "stable"
               : "NOT stable (pin CPUs with measure.cpus, use the performance governor, cool down)",
           cJSON_IsNumber(sp) ? 100.0 * sp->valuedouble : NAN,
           cJSON_GetObjectItemCaseSensitive(st, "worst_cv")->valuedouble);
}

int bs_selftest_main(int argc, char **argv)
{
    int json = 0, threads = 1;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--format") && v && (!strcmp(v, "json") || !strcmp(v, "text"))) {
            json = !strcmp(v, "json");
            i++;
        } else if (!strcmp(argv[i], "--threads") && v && atoi(v) >= 1 && atoi(v) <= 1024) {
            threads = atoi(v);
            i++;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            s_usage(stdout);
            return 0;
        } else {
            return bs_run_bad_usage("bitscout-agent --selftest", s_usage,
                                    "unexpected argument '%s' (or a bad value)", argv[i]);
        }
    }
    cJSON *r = cJSON_CreateObject();
    if (!r) {
        fprintf(stderr, "bitscout-agent --selftest: out of memory\n");
        return 1;
    }
    cJSON_AddItemToObject(r, "device", bs_device_describe());
    char cpus[256];
    bs_run_affinity_str(cpus, sizeof cpus);
    cJSON_AddStringToObject(r, "cpus", cpus);
    cJSON_AddNumberToObject(r, "threads", threads);
    cJSON_AddItemToObject(r, "thermal_zones", s_thermal());
    bs_run_env_t env;
    bs_run_env_read("", &env);
    if (isfinite(env.freq_mhz))
        cJSON_AddNumberToObject(r, "cpu_freq_mhz", env.freq_mhz);
    else
        cJSON_AddNullToObject(r, "cpu_freq_mhz");
    cJSON_AddItemToObject(r, "sensors", s_sensors());
    cJSON_AddItemToObject(r, "stability", s_stability(threads));
    if (json) {
        char *text = cJSON_PrintUnformatted(r);
        printf("%s\n", text ? text : "{}");
        cJSON_free(text);
    } else {
        s_print_text(r);
    }
    cJSON_Delete(r);
    return 0;
}

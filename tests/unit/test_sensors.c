/*
 * test_sensors.c - the energy sensors (agents/bs_sensors.h) against fake sysfs trees.
 *
 * Each test builds the tree it needs under its own bs_test_tmpdir() and passes that directory
 * as the sensor root: RAPL counters that a helper thread advances or wraps, or that the test
 * moves by hand between begin and end for exact figures; Jetson hwmon (JetPack 5/6) and iio
 * (JetPack 4) rails with "NC" channels; an Android battery with a negative current, a charger
 * plugged in, a wrong sign; files removed or turned to garbage mid-window; watts commands
 * (small shell scripts) that stream, print once, print words, hang or exit; and NVML, absent or
 * played by a fake libnvidia-ml (tests/unit/sensors/fake_nvml.c). Figures from constant fake
 * power are checked against power x the window the API itself measured, so no assertion
 * depends on how fast this machine is. host_describe prints what this machine's real root
 * exposes.
 */
#include "bs_test.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bs_alloc.h"
#include "bs_sensors.h"
#include "bs_util.h"

/* ---- fake trees ---------------------------------------------------------------------------- */

static void s_mkdirs(const char *dir)
{
    bs_err_t e = {0};
    if (bs_mkdir_p(dir, &e) != 0)
        bs_test_fail(__FILE__, __LINE__, "mkdir %s: %s", dir, e.msg);
}

/* Writes ROOT/rel atomically (a temporary file renamed over it), creating its directories. */
static void s_put(const char *rel, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void s_put(const char *rel, const char *fmt, ...)
{
    char path[1024], tmp[1100], dir[1024], buf[512];
    snprintf(path, sizeof path, "%s/%s", bs_test_tmpdir(), rel);
    snprintf(dir, sizeof dir, "%s", path);
    *strrchr(dir, '/') = '\0';
    s_mkdirs(dir);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    snprintf(tmp, sizeof tmp, "%s.new", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, buf, strlen(buf)) != (ssize_t)strlen(buf) || close(fd) != 0 ||
        rename(tmp, path) != 0)
        bs_test_fail(__FILE__, __LINE__, "cannot write %s: %s", path, strerror(errno));
}

static void s_rm(const char *rel)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", bs_test_tmpdir(), rel);
    if (unlink(path) != 0)
        bs_test_fail(__FILE__, __LINE__, "unlink %s: %s", path, strerror(errno));
}

static void s_sleep(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static bs_sensor_opts_t s_opts(void)
{
    bs_sensor_opts_t o = {0};
    o.root = bs_test_tmpdir();
    o.period_ms = 10;
    o.counter_poll_ms = 20;
    return o;
}

static bs_sensor_set_t *s_discover(const bs_sensor_opts_t *o)
{
    bs_sensor_set_t *set = NULL;
    bs_err_t e = {0};
    int rc = bs_sensors_discover(o, &set, &e);
    if (rc != 0)
        bs_test_fail(__FILE__, __LINE__, "discover: %s", e.msg);
    return set;
}

static int s_find(const bs_sensor_set_t *set, const char *name)
{
    int i = bs_sensors_find(set, name);
    if (i < 0)
        bs_test_fail(__FILE__, __LINE__, "no source \"%s\"", name);
    return i;
}

/* Runs a window of `seconds` on source i; returns bs_energy_end's code. */
static int s_window(bs_sensor_set_t *set, int i, double seconds, bs_energy_result_t *r)
{
    bs_energy_window_t *w = NULL;
    bs_err_t e = {0};
    int rc = bs_energy_begin(set, i, &w, &e);
    if (rc != 0)
        bs_test_fail(__FILE__, __LINE__, "begin: %s (%s)", e.msg, bs_err_name(rc));
    s_sleep(seconds);
    return bs_energy_end(&w, r);
}

/* |actual / expect - 1| <= rel */
#define ASSERT_REL(expect, actual, rel)                                                           \
    do {                                                                                          \
        double bs__x = (expect), bs__y = (actual);                                                \
        if (!(fabs(bs__y - bs__x) <= (rel)*fabs(bs__x)))                                          \
            bs_test_fail(__FILE__, __LINE__, "%s ~ %s: expected %.6g, got %.6g (rel %g)",         \
                         #expect, #actual, bs__x, bs__y, (double)(rel));                          \
    } while (0)

#define RAPL "sys/class/powercap/"

/* Two packages with core and dram, a psys zone, and the entries RAPL discovery must ignore. */
static void s_rapl_tree(void)
{
    s_put(RAPL "intel-rapl/enabled", "1\n");
    s_put(RAPL "intel-rapl-mmio:0/name", "package-0\n");
    s_put(RAPL "intel-rapl-mmio:0/energy_uj", "1\n");
    const char *zone[] = {"intel-rapl:0", "intel-rapl:0:0", "intel-rapl:0:1",
                          "intel-rapl:1", "intel-rapl:1:0", "intel-rapl:10"};
    const char *name[] = {"package-0", "core", "dram", "package-1", "core", "psys"};
    for (int i = 0; i < 6; i++) {
        char rel[128];
        snprintf(rel, sizeof rel, RAPL "%s/name", zone[i]);
        s_put(rel, "%s\n", name[i]);
        snprintf(rel, sizeof rel, RAPL "%s/energy_uj", zone[i]);
        s_put(rel, "1000\n");
        snprintf(rel, sizeof rel, RAPL "%s/max_energy_range_uj", zone[i]);
        s_put(rel, "262143328850\n");
    }
}

/* ---- root ---------------------------------------------------------------------------------- */

BS_TEST(root_override_and_env)
{
    unsetenv("BITSCOUT_SENSOR_ROOT");
    ASSERT_STR_EQ("/", bs_sensor_root(NULL));
    setenv("BITSCOUT_SENSOR_ROOT", "", 1);
    ASSERT_STR_EQ("/", bs_sensor_root(NULL));
    setenv("BITSCOUT_SENSOR_ROOT", bs_test_tmpdir(), 1);
    ASSERT_STR_EQ(bs_test_tmpdir(), bs_sensor_root(NULL));
    ASSERT_STR_EQ("/elsewhere", bs_sensor_root("/elsewhere"));
    /* discovery without a root option reads the environment's tree */
    s_rapl_tree();
    bs_sensor_opts_t o = {0};
    bs_sensor_set_t *set = s_discover(&o);
    ASSERT(bs_sensors_find(set, "rapl") >= 0);
    bs_sensors_free(&set);
    ASSERT(set == NULL);
}

BS_TEST(none_when_nothing_found)
{
    bs_sensor_opts_t o = s_opts();
    bs_sensor_set_t *set = s_discover(&o);
    ASSERT_EQ(0, bs_sensors_count(set));
    const char *why = NULL;
    ASSERT_EQ(BS_ENOENT, bs_sensors_best(set, &why));
    ASSERT_CONTAINS(why, "no energy sensor found");
    bs_energy_window_t *w = NULL;
    ASSERT_OK(bs_energy_begin(set, BS_SENSOR_BEST, &w, NULL));
    bs_energy_result_t r;
    ASSERT_EQ(BS_EUNSUPPORTED, bs_energy_end(&w, &r));
    ASSERT(w == NULL);
    ASSERT_STR_EQ("none", r.source);
    ASSERT(isnan(r.joules) && isnan(r.watts));
    ASSERT_EQ(0, r.ok);
    ASSERT_CONTAINS(r.reason, "no energy sensor found");
    double idle = 0;
    bs_err_t e = {0};
    ASSERT_EQ(BS_EUNSUPPORTED, bs_energy_idle(set, BS_SENSOR_BEST, 0.01, &idle, &e));
    ASSERT(isnan(idle));
    ASSERT_CONTAINS(e.msg, "no energy sensor");
    bs_sensors_free(&set);
}

BS_TEST(invalid_arguments)
{
    bs_sensor_opts_t o = s_opts();
    bs_sensor_set_t *set = NULL;
    bs_err_t e = {0};
    o.battery_sign = 2;
    ASSERT_EQ(BS_EINVAL, bs_sensors_discover(&o, &set, &e));
    ASSERT_CONTAINS(e.msg, "battery_sign");
    o = s_opts();
    o.period_ms = -1;
    ASSERT_EQ(BS_EINVAL, bs_sensors_discover(&o, &set, &e));
    char longroot[400];
    memset(longroot, 'a', sizeof longroot - 1);
    longroot[0] = '/';
    longroot[sizeof longroot - 1] = '\0';
    o = s_opts();
    o.root = longroot;
    ASSERT_EQ(BS_EINVAL, bs_sensors_discover(&o, &set, &e));
    ASSERT_CONTAINS(e.msg, "root longer");
    ASSERT(set == NULL);
    o = s_opts();
    set = s_discover(&o);
    bs_energy_window_t *w = NULL;
    ASSERT_EQ(BS_EINVAL, bs_energy_begin(set, 7, &w, &e));
    ASSERT_CONTAINS(e.msg, "no source 7");
    bs_energy_result_t r;
    ASSERT_EQ(BS_EINVAL, bs_energy_end(&w, &r));
    ASSERT_EQ(BS_EINVAL, bs_energy_end(NULL, &r));
    bs_energy_abort(NULL);
    bs_energy_abort(&w);
    bs_sensor_info_t in;
    ASSERT_EQ(BS_EINVAL, bs_sensors_info(set, 0, &in));
    ASSERT_EQ(BS_EINVAL, bs_sensors_calibrate(set, 3, 0.1, &e));
    bs_sensors_free(&set);
    bs_sensors_free(&set);
    bs_sensors_free(NULL);
}

/* ---- RAPL ---------------------------------------------------------------------------------- */

BS_TEST(rapl_discovers_domains)
{
    s_rapl_tree();
    bs_sensor_opts_t o = s_opts();
    bs_sensor_set_t *set = s_discover(&o);
    ASSERT_EQ(1, bs_sensors_count(set));
    bs_sensor_info_t in;
    ASSERT_OK(bs_sensors_info(set, s_find(set, "rapl"), &in));
    ASSERT_EQ(1, in.readable);
    ASSERT_EQ(1, in.counter);
    ASSERT_EQ(6, in.nparts);
    const char *want[] = {"package-0", "core", "dram", "package-1", "core (intel-rapl:1:0)",
                          "psys"};
    const int total[] = {1, 0, 1, 1, 0, 0};
    for (int i = 0; i < 6; i++) {
        ASSERT_STR_EQ(want[i], in.parts[i]);
        ASSERT_EQ(total[i], in.in_total[i]);
    }
    ASSERT_STR_EQ("package-0+dram+package-1", in.total_from);
    ASSERT_DBL_NEAR(0.001, in.period_s, 1e-12);
    bs_sensors_free(&set);
}

BS_TEST(rapl_counts_exactly)
{
    s_rapl_tree();
    bs_sensor_opts_t o = s_opts();
    bs_sensor_set_t *set = s_discover(&o);
    bs_energy_window_t *w = NULL;
    bs_err_t e = {0};
    ASSERT_OK(bs_energy_begin(set, s_find(set, "rapl"), &w, &e));
    s_put(RAPL "intel-rapl:0/energy_uj", "2501000\n");   /* +2.5 J */
    s_put(RAPL "intel-rapl:0:0/energy_uj", "1001000\n"); /* +1 J, inside the package */
    s_put(RAPL "intel-rapl:0:1/energy_uj", "501000\n");  /* +0.5 J */
    s_put(RAPL "intel-rapl:1/energy_uj", "1001000\n");   /* +1 J */
    s_put(RAPL "intel-rapl:10/energy_uj", "4001000\n");  /* +4 J, overlaps the packages */
    bs_energy_result_t r;
    ASSERT_OK(bs_energy_end(&w, &r));
    ASSERT_EQ(1, r.ok);
    ASSERT_STR_EQ("rapl", r.source);
    ASSERT_DBL_NEAR(4.0, r.joules, 1e-9);
    ASSERT_DBL_NEAR(2.5, r.parts[0].joules, 1e-9);
    ASSERT_DBL_NEAR(1.0, r.parts[1].joules, 1e-9);
    ASSERT_DBL_NEAR(0.5, r.parts[2].joules, 1e-9);
    ASSERT_DBL_NEAR(4.0, r.parts[5].joules, 1e-9);
    ASSERT_STR_EQ("psys", r.parts[5].name);
    ASSERT_STR_EQ("package-0+dram+package-1", r.total_from);
    ASSERT(r.samples >= 2);
    ASSERT(r.seconds > 0);
    ASSERT_DBL_NEAR(0.01, r.min_seconds, 1e-12);
    ASSERT_DBL_NEAR(r.joules / r.seconds, r.watts, 1e-6 * r.watts);
    bs_sensors_free(&set);
}

BS_TEST(rapl_wraps_at_max_energy_range)
{
    s_put(RAPL "intel-rapl:0/name", "package-0\n");
    s_put(RAPL "intel-rapl:0/max_energy_range_uj", "1000000\n");
    s_put(RAPL "intel-rapl:0/energy_uj", "999000\n");
    bs_sensor_opts_t o = s_opts();
    o.counter_poll_ms = 60000; /* only the edges read */
    bs_sensor_set_t *set = s_discover(&o);
    bs_energy_window_t *w = NULL;
    ASSERT_OK(bs_energy_begin(set, 0, &w, NULL));
    s_put(RAPL "intel-rapl:0/energy_uj", "500\n");
    bs_energy_result_t r;
    ASSERT_OK(bs_energy_end(&w, &r));
    ASSERT_DBL_NEAR(1500e-6, r.joules, 1e-12); /* (max - e0) + e1 */
    ASSERT_EQ(2, r.samples);
    bs_sensors_free(&set);
}

BS_TEST(rapl_backwards_without_max_fails)
{
    s_put(RAPL "intel-rapl:0/name", "package-0\n");
    s_put(RAPL "intel-rapl:0/energy_uj", "999000\n");
    bs_sensor_opts_t o = s_opts();
    bs_sensor_set_t *set = s_discover(&o);
    bs_energy_window_t *w = NULL;
    ASSERT_OK(bs_energy_begin(set, 0, &w, NULL));
    s_put(RAPL "intel-rapl:0/energy_uj", "500\n");
    bs_energy_result_t r;
    ASSERT_EQ(BS_EDATA, bs_energy_end(&w, &r));
    ASSERT_EQ(0, r.ok);
    ASSERT(isnan(r.joules) && isnan(r.parts[0].joules));
    ASSERT_CONTAINS(r.reason, "went back from 999000 to 500");
    ASSERT_CONTAINS(r.reason, "max_energy_range_uj is unknown");
    ASSERT_STR_EQ("rapl", r.source);
    bs_sensors_free(&set);
}

/* A helper thread that keeps a counter (or rails) moving while a window is open. */
typedef struct s_pump {
    pthread_t thr;
    atomic_int stop;
    const char *rel;        /* the counter file */
    double watts;           /* advance rate */
    unsigned long long max; /* wrap modulus (uJ), 0: none */
} s_pump_t;

static void *s_pump_run(void *arg)
{
    s_pump_t *p = arg;
    double t0 = bs_now_s();
    unsigned long long e0 = 1000;
    while (!atomic_load(&p->stop)) {
        unsigned long long e = e0 + (unsigned long long)((bs_now_s() - t0) * p->watts * 1e6);
        if (p->max)
            e %= p->max + 1;
        s_put(p->rel, "%llu\n", e);
        s_sleep(0.001);
    }
    return NULL;
}

static void s_pump_start(s_pump_t *p)
{
    atomic_store(&p->stop, 0);
    if (pthread_create(&p->thr, NULL, s_pump_run, p) != 0)
        bs_test_fail(__FILE__, __LINE__, "pthread_create");
}

static void s_pump_stop(s_pump_t *p)
{
    atomic_store(&p->stop, 1);
    pthread_join(p->thr, NULL);
}

BS_TEST(rapl_counter_advanced_by_a_thread)
{
    s_put(RAPL "intel-rapl:0/name", "package-0\n");
    s_put(RAPL "intel-rapl:0/max_energy_range_uj", "262143328850\n");
    s_put(RAPL "intel-rapl:0/energy_uj", "1000\n");
    s_pump_t pump = {.rel = RAPL "intel-rapl:0/energy_uj", .watts = 20.0};
    s_pump_start(&pump);
    s_sleep(0.02);
    bs_sensor_opts_t o = s_opts();
    bs_sensor_set_t *set = s_discover(&o);
    bs_energy_result_t r;
    int rc = s_window(set, 0, 0.4, &r);
    s_pump_stop(&pump);
    ASSERT_OK(rc);
    ASSERT_REL(20.0 * r.seconds, r.joules, 0.2);
    ASSERT_EQ(0, r.too_short);
    ASSERT(r.samples >= 3); /* begin, polls, end */
    bs_sensors_free(&set);
}

BS_TEST(rapl_poll_catches_every_wrap)
{
    /* 20 W against a 2 J range: a wrap every 100 ms; the edges alone would miss most of them */
    s_put(RAPL "intel-rapl:0/name", "package-0\n");
    s_put(RAPL "intel-rapl:0/max_energy_range_uj", "2000000\n");
    s_put(RAPL "intel-rapl:0/energy_uj", "1000\n");
    s_pump_t pump = {.rel = RAPL "intel-rapl:0/energy_uj", .watts = 20.0, .max = 2000000};
    s_pump_start(&pump);
    s_sleep(0.02);
    bs_sensor_opts_t o = s_opts();
    o.counter_poll_ms = 10;
    bs_sensor_set_t *set = s_discover(&o);
    bs_energy_result_t r;
    int rc = s_window(set, 0, 0.5, &r);
    s_pump_stop(&pump);
    ASSERT_OK(rc);
    ASSERT(r.joules > 4.0); /* more than two wraps' worth */
    ASSERT_REL(20.0 * r.seconds, r.joules, 0.2);
    bs_sensors_free(&set);
}

BS_TEST(rapl_permission_denied)
{
    s_put(RAPL "intel-rapl:0/name", "package-0\n");
    s_put(RAPL "intel-rapl:0/energy_uj", "1000\n");
    char path[1024];
    snprintf(path, sizeof path, "%s/" RAPL "intel-rapl:0/energy_uj", bs_test_tmpdir());
    ASSERT_OK(chmod(path, 0));
    int fd = open(path, O_RDONLY);
    if (fd >= 0) { /* root (CAP_DAC_OVERRIDE) reads through mode 000 */
        close(fd);
        printf("  rapl_permission_denied: running as root, mode 000 does not deny reads; "
               "the permission assertion is skipped (rapl_unreadable covers unreadable)\n");
        return;
    }
    bs_sensor_opts_t o = s_opts();
    bs_sensor_set_t *set = s_discover(&o);
    bs_sensor_info_t in;
    ASSERT_OK(bs_sensors_info(set, s_find(set, "rapl"), &in));
    ASSERT_EQ(0, in.readable);
    ASSERT_CONTAINS(in.reason, "permission denied");
    ASSERT_CONTAINS(in.reason, "root-only since Linux 5.10");
    bs_energy_window_t *w = NULL;
    bs_err_t e = {0};
    ASSERT_EQ(BS_EUNSUPPORTED, bs_energy_begin(set, 0, &w, &e));
    ASSERT_CONTAINS(e.msg, "permission denied");
    bs_sensors_free(&set);
}

BS_TEST(rapl_unreadable)
{
    /* energy_uj is a directory: unreadable even for root */
    s_put(RAPL "intel-rapl:0/name", "package-0\n");
    s_put(RAPL "intel-rapl:0/energy_uj/x", "1\n");
    s_put(RAPL "intel-rapl:0:0/name", "core\n");
    s_put(RAPL "intel-rapl:0:0/energy_uj", "5\n");
    bs_sensor_opts_t o = s_opts();
    bs_sensor_set_t *set = s_discover(&o);
    bs_sensor_info_t in;
    ASSERT_OK(bs_sensors_info(set, 0, &in));
    ASSERT_STR_EQ("rapl", in.name);
    ASSERT_EQ(0, in.readable);
    ASSERT_CONTAINS(in.reason, "intel-rapl:0/energy_uj");
    ASSERT_EQ(BS_ENOENT, bs_sensors_best(set, NULL));
    bs_energy_window_t *w = NULL;
    bs_err_t e = {0};
    ASSERT_EQ(BS_EUNSUPPORTED, bs_energy_begin(set, 0, &w, &e));
    ASSERT(w == NULL);
    /* best: nothing usable, so a "none" window carrying the reason */
    ASSERT_OK(bs_energy_begin(set, BS_SENSOR_BEST, &w, &e));
    bs_energy_result_t r;
    ASSERT_EQ(BS_EUNSUPPORTED, bs_energy_end(&w, &r));
    ASSERT_STR_EQ("none", r.source);
    ASSERT_CONTAINS(r.reason, "rapl:");
    bs_sensors_free(&set);
}

BS_TEST(rapl_garbage)
{
    s_put(RAPL "intel-rapl:0/name", "package-0\n");
    s_put(RAPL "intel-rapl:0/energy_uj", "12abc\n");
    s_put(RAPL "intel-rapl:1/name", "psys\n");
    s_put(RAPL "intel-rapl:1/energy_uj", "-5\n");
    bs_sensor_opts_t o = s_opts();
    bs_sensor_set_t *set = s_discover(&o);
    bs_sensor_info_t in;
    ASSERT_OK(bs_sensors_info(set, 0, &in));
    ASSERT_EQ(0, in.readable);
    ASSERT_CONTAINS(in.reason, "\"12abc\" is not a counter value");
    ASSERT_CONTAINS(in.notes, "psys left out");
    bs_sensors_free(&set);
    /* garbage that appears mid-window */
    s_put(RAPL "intel-rapl:0/energy_uj", "100\n");
    set = s_discover(&o);
    bs_energy_window_t *w = NULL;
    ASSERT_OK(bs_energy_begin(set, 0, &w, NULL));
    s_put(RAPL "intel-rapl:0/energy_uj", "\x01\x02garbage\n");
    bs_energy_result_t r;
    ASSERT_EQ(BS_EDATA, bs_energy_end(&w, &r));
    ASSERT_CONTAINS(r.reason, "is not a counter value");
    bs_sensors_free(&set);
}

BS_TEST(rapl_vanishes_mid_window)
{
    s_rapl_tree();
    bs_sensor_opts_t o = s_opts();
    bs_sensor_set_t *set = s_discover(&o);
    bs_energy_window_t *w = NULL;
    ASSERT_OK(bs_energy_begin(set, 0, &w, NULL));
    s_rm(RAPL "intel-rapl:1/energy_uj");
    s_sleep(0.05); /* the poller meets it first */
    bs_energy_result_t r;
    ASSERT_EQ(BS_ENOENT, bs_energy_end(&w, &r));
    ASSERT_CONTAINS(r.reason, "intel-rapl:1/energy_uj: no such file");
    ASSERT(isnan(r.joules));
    ASSERT(r.seconds > 0);
    bs_sensors_free(&set);
}

/* ---- Jetson -------------------------------------------------------------------------------- */

#define INA "sys/bus/i2c/drivers/ina3221/"

static void s_rail(const char *chip, int ch, const char *label, long mv, long ma)
{
    char rel[256];
    snprintf(rel, sizeof rel, "%s/in%d_label", chip, ch);
    s_put(rel, "%s\n", label);
    snprintf(rel, sizeof rel, "%s/in%d_input", chip, ch);
    s_put(rel, "%ld\n", mv);
    snprintf(rel, sizeof rel, "%s/curr%d_input", chip, ch);
    s_put(rel, "%ld\n", ma);
}

/* Orin NX / Nano (JetPack 5/6): VDD_IN 5 W, VDD_CPU_GPU_CV 2 W, channel 3 not connected. */
static void s_orin_nx(void)
{
    const char *chip = INA "1-0040/hwmon/hwmon3";
    s_rail(chip, 1, "VDD_IN", 5000, 1000);
    s_rail(chip, 2, "VDD_CPU_GPU_CV", 5000, 400);
    s_rail(chip, 3, "NC", 0, 0);
    s_put(INA "1-0040/hwmon/hwmon3/in4_input", "120\n"); /* shunt voltage, uV: never a rail */
    s_put(INA "1-0040/hwmon/hwmon3/curr4_input", "1400\n");
    s_put(INA "1-0040/hwmon/hwmon3/in7_label", "sum of shunt voltages\n");
    s_put(INA "bind", "\n");
    s_put(INA "uevent", "\n");
}

BS_TEST(ina3221_orin_nx)
{
    s_orin_nx();
    bs_sensor_opts_t o = s_opts();
    bs_sensor_set_t *set = s_discover(&o);
    ASSERT_EQ(1, bs_sensors_count(set));
    int i = s_find(set, "ina3221");
    bs_sensor_info_t in;
    ASSERT_OK(bs_sensors_info(set, i, &in));
    ASSERT_EQ(1, in.readable);
    ASSERT_EQ(0, in.counter);
    ASSERT_EQ(2, in.nparts);
    ASSERT_STR_EQ("VDD_IN", in.parts[0]);
    ASSERT_STR_EQ("VDD_CPU_GPU_CV", in.parts[1]);
    ASSERT_STR_EQ("VDD_IN", in.total_from);
    ASSERT_CONTAINS(in.notes, "\"NC\": not connected");
    ASSERT_EQ(i, bs_sensors_best(set, NULL));
    bs_energy_result_t r;
    ASSERT_OK(s_window(set, i, 0.3, &r));
    ASSERT_STR_EQ("ina3221", r.source);
    ASSERT_REL(5.0 * r.seconds, r.joules, 0.01);
    ASSERT_REL(2.0 * r.seconds, r.parts[1].joules, 0.01);
    ASSERT_REL(5.0, r.watts, 0.01);
    ASSERT(r.samples >= 5);
    ASSERT_DBL_NEAR(0.01, r.period_s, 1e-12);
    ASSERT_DBL_NEAR(0.1, r.min_seconds, 1e-12);
    ASSERT_EQ(0, r.too_short);
    ASSERT_STR_EQ("", r.reason);
    bs_sensors_free(&set);
}

BS_TEST(ina3221_agx_orin_sums_its_rails)
{
    s_rail(INA "1-0040/hwmon/hwmon1", 1, "VDD_GPU_SOC", 5000, 2000); /* 10 W */
    s_rail(INA "1-0040/hwmon/hwmon1", 2, "VDD_CPU_CV", 5000, 1000);  /* 5 W */
    s_rail(INA "1-0040/hwmon/hwmon1", 3, "VIN_SYS_5V0", 5000, 600);  /* 3 W */
    s_rail(INA "1-0041/hwmon/hwmon2", 1, "NC", 0, 0);
    s_rail(INA "1-0041/hwmon/hwmon2", 2, "VDDQ_VDD2_1V8AO", 5000, 200); /* 1 W, not summed */
    s_rail(INA "1-0041/hwmon/hwmon2", 3, "NC", 0, 0);
    bs_sensor_opts_t o = s_opts();
    bs_sensor_set_t *set = s_discover(&o);
    bs_sensor_info_t in;
    ASSERT_OK(bs_sensors_info(set, s_find(set, "ina3221"), &in));
    ASSERT_EQ(4, in.nparts);
    ASSERT_STR_EQ("VDD_GPU_SOC+VDD_CPU_CV+VIN_SYS_5V0", in.total_from);
    ASSERT_EQ(0, in.in_total[3]);
    bs_energy_result_t r;
    ASSERT_OK(s_window(set, 0, 0.2, &r));
    ASSERT_REL(18.0, r.watts, 0.01);
    ASSERT_REL(1.0 * r.seconds, r.parts[3].joules, 0.01);
    bs_sensors_free(&set);
}

BS_TEST(ina3221_through_hwmon_class)
{
    s_put("sys/class/hwmon/hwmon0/name", "coretemp\n");
    s_put("sys/class/hwmon/hwmon0/in1_input", "900\n");
    s_put("sys/class/hwmon/hwmon4/name", "ina3221\n");
    s_rail("sys/class/hwmon/hwmon4", 1, "VDD_IN", 5000, 800);
    s_put("sys/class/hwmon/hwmon4/in2_input", "3300\n"); /* no label: named after the chip */
    s_put("sys/class/hwmon/hwmon4/curr2_input", "100\n");
    bs_sensor_opts_t o = s_opts();
    bs_sensor_set_t *set = s_discover(&o);
    bs_sensor_info_t in;
    ASSERT_OK(bs_sensors_info(set, s_find(set, "ina3221"), &in));
    ASSERT_EQ(2, in.nparts);
    ASSERT_STR_EQ("hwmon4:in2", in.parts[1]);
    ASSERT_STR_EQ("VDD_IN", in.total_from);
    bs_energy_result_t r;
    ASSERT_OK(s_window(set, 0, 0.1, &r));
    ASSERT_REL(4.0, r.watts, 0.01);
    bs_sensors_free(&set);
}

BS_TEST(ina3221_negative_and_disabled_rails)
{
    const char *chip = INA "1-0040/hwmon/hwmon3";
    s_rail(chip, 1, "VDD_IN", 5000, 1000);
    s_rail(chip, 2, "VDD_SOC", 5000, -5);        /* reverse current: left out */
    s_rail(chip, 3, "VDD_CPU_GPU_CV", 5000, 10); /* made unreadable below */
    char path[1024];
    snprintf(path, sizeof path, "%s/%s/curr3_input", bs_test_tmpdir(), chip);
    ASSERT_OK(unlink(path));
    ASSERT_OK(mkdir(path, 0755)); /* reads fail like a disabled channel's */
    bs_sensor_opts_t o = s_opts();
    bs_sensor_set_t *set = s_discover(&o);
    bs_sensor_info_t in;
    ASSERT_OK(bs_sensors_info(set, 0, &in));
    ASSERT_EQ(1, in.readable);
    ASSERT_EQ(1, in.nparts);
    ASSERT_CONTAINS(in.notes, "VDD_SOC left out: negative current (-5)");
    ASSERT_CONTAINS(in.notes, "VDD_CPU_GPU_CV left out");
    /* a current that turns negative mid-window */
    bs_energy_window_t *w = NULL;
    ASSERT_OK(bs_energy_begin(set, 0, &w, NULL));
    s_put(INA "1-0040/hwmon/hwmon3/curr1_input", "-3\n");
    bs_energy_result_t r;
    ASSERT_EQ(BS_EDATA, bs_energy_end(&w, &r));
    ASSERT_CONTAINS(r.reason, "rail VDD_IN: negative current (-3)");
    bs_sensors_free(&set);
}

BS_TEST(ina3221_only_nc_rails)
{
    s_rail(INA "1-0040/hwmon/hwmon0", 1, "NC", 0, 0);
    s_rail(INA "1-0040/hwmon/hwmon0", 2, "NC_2", 0, 0);
    bs_sensor_opts_t o = s_opts();
    bs_sensor_set_t *set = s_discover(&o);
    bs_sensor_info_t in;
    ASSERT_OK(bs_sensors_info(set, 0, &in));
    ASSERT_EQ(0, in.readable);
    ASSERT_CONTAINS(in.reason, "no readable INA3221 rail");
    bs_sensors_free(&set);
}

BS_TEST(ina3221_vanishes_mid_window)
{
    s_orin_nx();
    bs_sensor_opts_t o = s_opts();
    bs_sensor_set_t *set = s_discover(&o);
    bs_energy_window_t *w = NULL;
    ASSERT_OK(bs_energy_begin(set, 0, &w, NULL));
    s_sleep(0.03);
    s_rm(INA "1-0040/hwmon/hwmon3/curr2_input");
    s_sleep(0.03);
    bs_energy_result_t r;
    ASSERT_EQ(BS_ENOENT, bs_energy_end(&w, &r));
    ASSERT_CONTAINS(r.reason, "curr2_input: no such file (sensor removed?)");
    ASSERT(isnan(r.joules) && isnan(r.parts[0].joules));
    bs_sensors_free(&set);
}

BS_TEST(ina3221_too_short_window)
{
    s_orin_nx();
    bs_sensor_opts_t o = s_opts();
    o.period_ms = 50;
    bs_sensor_set_t *set = s_discover(&o);
    bs_energy_result_t r;
    ASSERT_OK(s_window(set, 0, 0.02, &r));
    ASSERT_EQ(1, r.ok);
    ASSERT_EQ(1, r.too_short);
    ASSERT_DBL_NEAR(0.5, r.min_seconds, 1e-12);
    ASSERT_REL(5.0 * r.seconds, r.joules, 0.01);
    bs_sensors_free(&set);
}

BS_TEST(iio_jetpack4_nano)
{
    const char *dev = "sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0/";
    char rel[256];
    snprintf(rel, sizeof rel, "%srail_name_0", dev);
    s_put(rel, "POM_5V_IN\n");
    snprintf(rel, sizeof rel, "%sin_power0_input", dev);
    s_put(rel, "3000\n");
    snprintf(rel, sizeof rel, "%srail_name_1", dev);
    s_put(rel, "POM_5V_GPU\n");
    snprintf(rel, sizeof rel, "%sin_power1_input", dev);
    s_put(rel, "1000\n");
    snprintf(rel, sizeof rel, "%srail_name_2", dev); /* no power file: V x I */
    s_put(rel, "POM_5V_CPU\n");
    snprintf(rel, sizeof rel, "%sin_voltage2_input", dev);
    s_put(rel, "5000\n");
    snprintf(rel, sizeof rel, "%sin_current2_input", dev);
    s_put(rel, "200\n");
    bs_sensor_opts_t o = s_opts();
    bs_sensor_set_t *set = s_discover(&o);
    ASSERT_EQ(1, bs_sensors_count(set));
    bs_sensor_info_t in;
    ASSERT_OK(bs_sensors_info(set, s_find(set, "iio"), &in));
    ASSERT_EQ(1, in.readable);
    ASSERT_EQ(3, in.nparts);
    ASSERT_STR_EQ("POM_5V_IN", in.total_from);
    bs_energy_result_t r;
    ASSERT_OK(s_window(set, 0, 0.2, &r));
    ASSERT_STR_EQ("iio", r.source);
    ASSERT_REL(3.0, r.watts, 0.01);
    ASSERT_REL(1.0 * r.seconds, r.parts[2].joules, 0.01);
    bs_sensors_free(&set);
}

/* ---- battery ------------------------------------------------------------------------------- */

#define PS "sys/class/power_supply/"

static void s_phone(long ua, const char *status, int usb_online)
{
    s_put(PS "battery/type", "Battery\n");
    s_put(PS "battery/status", "%s\n", status);
    s_put(PS "battery/current_now", "%ld\n", ua);
    s_put(PS "battery/voltage_now", "4000000\n");
    s_put(PS "usb/type", "USB\n");
    s_put(PS "usb/online", "%d\n", usb_online);
    s_put(PS "wireless/type", "Wireless\n");
    s_put(PS "wireless/online", "0\n");
}

BS_TEST(battery_discharging_negative_current)
{
    s_phone(-500000, "Discharging", 0); /* -0.5 A at 4 V: 2 W by the kernel's convention */
    bs_sensor_opts_t o = s_opts();
    bs_sensor_set_t *set = s_discover(&o);
    int i = s_find(set, "battery");
    bs_sensor_info_t in;
    ASSERT_OK(bs_sensors_info(set, i, &in));
    ASSERT_EQ(1, in.readable);
    ASSERT_EQ(0, in.battery_sign);
    bs_energy_result_t r;
    ASSERT_OK(s_window(set, i, 0.1, &r)); /* calibrates first */
    ASSERT_OK(bs_sensors_info(set, i, &in));
    ASSERT_EQ(-1, in.battery_sign);
    ASSERT_STR_EQ("battery", r.source);
    ASSERT_REL(2.0, r.watts, 0.01);
    ASSERT_REL(2.0 * r.seconds, r.joules, 0.01);
    bs_sensors_free(&set);
}

/* Moves current_now from `before` to `after` 150 ms after it starts (calibration's idle half
 * lasts 250 ms of a 0.5 s calibration). */
typedef struct s_step {
    pthread_t thr;
    long before, after;
} s_step_t;

static void *s_step_run(void *arg)
{
    s_step_t *s = arg;
    s_sleep(0.15);
    s_put(PS "battery/current_now", "%ld\n", s->after);
    return NULL;
}

BS_TEST(battery_calibrates_by_load)
{
    /* a driver reporting positive discharge: the reading rises under the busy loop */
    s_phone(300000, "Discharging", 0);
    bs_sensor_opts_t o = s_opts();
    bs_sensor_set_t *set = s_discover(&o);
    int i = s_find(set, "battery");
    s_step_t st = {.before = 300000, .after = 900000};
    ASSERT_OK(pthread_create(&st.thr, NULL, s_step_run, &st));
    bs_err_t e = {0};
    int rc = bs_sensors_calibrate(set, i, 0.5, &e);
    pthread_join(st.thr, NULL);
    ASSERT_OK(rc);
    bs_sensor_info_t in;
    ASSERT_OK(bs_sensors_info(set, i, &in));
    ASSERT_EQ(1, in.battery_sign);
    bs_energy_result_t r;
    ASSERT_OK(s_window(set, i, 0.05, &r));
    ASSERT_REL(3.6, r.watts, 0.01);
    /* a reading that moves against its own sign under load is refused */
    s_put(PS "battery/current_now", "-900000\n");
    st.after = -300000;
    ASSERT_OK(pthread_create(&st.thr, NULL, s_step_run, &st));
    rc = bs_sensors_calibrate(set, i, 0.5, &e);
    pthread_join(st.thr, NULL);
    ASSERT_EQ(BS_EIO, rc);
    ASSERT_CONTAINS(e.msg, "inconsistent calibration");
    ASSERT_OK(bs_sensors_info(set, i, &in));
    ASSERT_EQ(1, in.battery_sign); /* unchanged */
    /* no current at all: no sign */
    s_put(PS "battery/current_now", "0\n");
    ASSERT_EQ(BS_EAGAIN, bs_sensors_calibrate(set, i, 0.1, &e));
    ASSERT_CONTAINS(e.msg, "cannot tell the sign");
    bs_sensors_free(&set);
}

BS_TEST(battery_wrong_sign_is_negative_power)
{
    s_phone(-500000, "Discharging", 0);
    bs_sensor_opts_t o = s_opts();
    o.battery_sign = 1; /* stale: this gauge reports discharge as negative */
    bs_sensor_set_t *set = s_discover(&o);
    bs_energy_window_t *w = NULL;
    bs_err_t e = {0};
    ASSERT_EQ(BS_EDATA, bs_energy_begin(set, s_find(set, "battery"), &w, &e));
    ASSERT_CONTAINS(e.msg, "negative power -2.000 W");
    ASSERT(w == NULL);
    bs_sensors_free(&set);
}

BS_TEST(battery_charger_connected)
{
    s_phone(800000, "Charging", 1);
    bs_sensor_opts_t o = s_opts();
    bs_sensor_set_t *set = s_discover(&o);
    int i = s_find(set, "battery");
    bs_sensor_info_t in;
    ASSERT_OK(bs_sensors_info(set, i, &in));
    ASSERT_EQ(0, in.readable);
    ASSERT_CONTAINS(in.reason, "charger connected");
    ASSERT_CONTAINS(in.reason, "usb/online = 1");
    bs_energy_window_t *w = NULL;
    bs_err_t e = {0};
    ASSERT_EQ(BS_EUNSUPPORTED, bs_energy_begin(set, i, &w, &e));
    ASSERT_EQ(BS_EUNSUPPORTED, bs_sensors_calibrate(set, i, 0.1, &e));
    bs_sensors_free(&set);
    /* status alone (no online file says so) */
    s_put(PS "usb/online", "0\n");
    s_put(PS "battery/status", "Full\n");
    set = s_discover(&o);
    ASSERT_OK(bs_sensors_info(set, i, &in));
    ASSERT_EQ(0, in.readable);
    ASSERT_CONTAINS(in.reason, "battery status is \"Full\"");
    bs_sensors_free(&set);
}

BS_TEST(battery_charger_plugged_mid_window)
{
    s_phone(-500000, "Discharging", 0);
    bs_sensor_opts_t o = s_opts();
    o.battery_sign = -1;
    bs_sensor_set_t *set = s_discover(&o);
    bs_energy_window_t *w = NULL;
    ASSERT_OK(bs_energy_begin(set, s_find(set, "battery"), &w, NULL));
    s_put(PS "wireless/online", "1\n");
    s_sleep(0.03);
    bs_energy_result_t r;
    ASSERT_EQ(BS_EAGAIN, bs_energy_end(&w, &r));
    ASSERT_CONTAINS(r.reason, "wireless/online = 1");
    bs_sensors_free(&set);
}

BS_TEST(battery_power_now_and_peripherals)
{
    /* a mouse's battery (scope Device) is not the device's */
    s_put(PS "hidpp_battery_0/type", "Battery\n");
    s_put(PS "hidpp_battery_0/scope", "Device\n");
    s_put(PS "hidpp_battery_0/current_now", "1000\n");
    s_put(PS "hidpp_battery_0/voltage_now", "3000000\n");
    bs_sensor_opts_t o = s_opts();
    bs_sensor_set_t *set = s_discover(&o);
    ASSERT_EQ(0, bs_sensors_count(set));
    bs_sensors_free(&set);
    /* a laptop battery reporting power_now (uW) */
    s_put(PS "BAT0/type", "Battery\n");
    s_put(PS "BAT0/status", "Discharging\n");
    s_put(PS "BAT0/power_now", "7500000\n");
    s_put(PS "AC/type", "Mains\n");
    s_put(PS "AC/online", "0\n");
    o.battery_sign = 1;
    set = s_discover(&o);
    ASSERT_EQ(1, bs_sensors_count(set));
    bs_energy_result_t r;
    ASSERT_OK(s_window(set, s_find(set, "battery"), 0.05, &r));
    ASSERT_REL(7.5, r.watts, 0.01);
    ASSERT_STR_EQ("BAT0", r.parts[0].name);
    bs_sensors_free(&set);
}

/* ---- command ------------------------------------------------------------------------------- */

static bs_sensor_set_t *s_command_set(const char *script, int timeout_ms)
{
    char path[1024], cmd[1100];
    snprintf(path, sizeof path, "%s/meter.sh", bs_test_tmpdir());
    FILE *f = fopen(path, "w");
    ASSERT(f != NULL);
    fputs(script, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "sh '%s'", path);
    bs_sensor_opts_t o = s_opts();
    o.command = cmd;
    o.period_ms = 20;
    o.command_timeout_ms = timeout_ms;
    return s_discover(&o);
}

BS_TEST(command_streams_watts)
{
    bs_sensor_set_t *set = s_command_set("while :; do echo 7.5; sleep 0.01; done\n", 2000);
    int i = s_find(set, "command");
    ASSERT_EQ(i, bs_sensors_best(set, NULL));
    bs_energy_result_t r;
    ASSERT_OK(s_window(set, i, 0.3, &r));
    ASSERT_STR_EQ("command", r.source);
    ASSERT_REL(7.5 * r.seconds, r.joules, 0.01);
    ASSERT(r.samples >= 5);
    ASSERT(r.period_s > 0.005 && r.period_s < 0.2);
    bs_sensors_free(&set);
}

BS_TEST(command_prints_once_and_is_rerun)
{
    bs_sensor_set_t *set = s_command_set("echo ' 4 '\n", 2000);
    bs_energy_result_t r;
    ASSERT_OK(s_window(set, 0, 0.3, &r));
    ASSERT_REL(4.0 * r.seconds, r.joules, 0.01);
    ASSERT(r.samples >= 3);
    bs_sensors_free(&set);
}

BS_TEST(command_prints_garbage)
{
    bs_sensor_set_t *set = s_command_set("echo hello; sleep 5\n", 2000);
    bs_energy_window_t *w = NULL;
    bs_err_t e = {0};
    ASSERT_EQ(BS_EDATA, bs_energy_begin(set, 0, &w, &e));
    ASSERT_CONTAINS(e.msg, "line 1: \"hello\" is not a number of watts");
    ASSERT(w == NULL);
    bs_sensors_free(&set);
    set = s_command_set("echo 5; sleep 0.05; echo '5 W'; sleep 5\n", 2000);
    bs_energy_result_t r;
    ASSERT_EQ(BS_EDATA, s_window(set, 0, 0.3, &r));
    ASSERT_CONTAINS(r.reason, "line 2: \"5 W\"");
    ASSERT(isnan(r.joules));
    bs_sensors_free(&set);
    set = s_command_set("echo -3\n", 2000);
    ASSERT_EQ(BS_EDATA, bs_energy_begin(set, 0, &w, &e));
    ASSERT_CONTAINS(e.msg, "is not a power >= 0");
    bs_sensors_free(&set);
}

BS_TEST(command_hangs)
{
    bs_sensor_set_t *set = s_command_set("sleep 30\n", 300);
    bs_energy_window_t *w = NULL;
    bs_err_t e = {0};
    ASSERT_EQ(BS_ETIMEOUT, bs_energy_begin(set, 0, &w, &e));
    ASSERT_CONTAINS(e.msg, "no reading for 0.3 s");
    bs_sensors_free(&set);
    set = s_command_set("echo 5; sleep 30\n", 300);
    bs_energy_result_t r;
    ASSERT_EQ(BS_ETIMEOUT, s_window(set, 0, 0.6, &r));
    ASSERT_CONTAINS(r.reason, "no reading for 0.3 s (hung?)");
    bs_sensors_free(&set);
}

BS_TEST(command_exits)
{
    bs_sensor_set_t *set = s_command_set("echo 5; echo 5; exit 3\n", 2000);
    bs_energy_window_t *w = NULL;
    bs_err_t e = {0};
    int rc = bs_energy_begin(set, 0, &w, &e);
    bs_energy_result_t r;
    if (rc == 0) { /* the first reading came before the exit */
        s_sleep(0.1);
        rc = bs_energy_end(&w, &r);
        snprintf(e.msg, sizeof e.msg, "%s", r.reason);
    }
    ASSERT_EQ(BS_EIO, rc);
    ASSERT_CONTAINS(e.msg, "exited with status 3 after 2 readings");
    bs_sensors_free(&set);
    set = s_command_set("exit 0\n", 2000);
    ASSERT_EQ(BS_EIO, bs_energy_begin(set, 0, &w, &e));
    ASSERT_CONTAINS(e.msg, "exited with status 0 after 0 readings");
    bs_sensors_free(&set);
    bs_sensor_opts_t o = s_opts();
    o.command = "kill -9 $$"; /* the shell itself dies (a script would leave sh -c's 137) */
    set = s_discover(&o);
    ASSERT_EQ(BS_EIO, bs_energy_begin(set, 0, &w, &e));
    ASSERT_CONTAINS(e.msg, "killed by signal 9");
    bs_sensors_free(&set);
}

BS_TEST(command_stops_cleanly)
{
    bs_sensor_set_t *set = s_command_set("while :; do echo 1; sleep 0.005; done\n", 2000);
    for (int k = 0; k < 10; k++) {
        bs_energy_window_t *w = NULL;
        ASSERT_OK(bs_energy_begin(set, 0, &w, NULL));
        if (k % 2)
            bs_energy_abort(&w);
        else {
            bs_energy_result_t r;
            ASSERT_OK(bs_energy_end(&w, &r));
        }
        ASSERT(w == NULL);
    }
    bs_sensors_free(&set);
    /* no meter left running: every child was reaped */
    ASSERT_EQ(-1, waitpid(-1, NULL, WNOHANG));
    ASSERT_EQ(ECHILD, errno);
}

/* ---- NVML ---------------------------------------------------------------------------------- */

BS_TEST(nvml_absent_is_not_present)
{
    bs_sensor_opts_t o = s_opts();
    o.nvml_library = "/nonexistent/libnvidia-ml.so.1";
    bs_sensor_set_t *set = s_discover(&o);
    ASSERT_EQ(0, bs_sensors_count(set));
    ASSERT_EQ(BS_ENOENT, bs_sensors_find(set, "nvml"));
    bs_sensors_free(&set);
    o.nvml_library = NULL; /* a fake root never probes the host's NVML */
    set = s_discover(&o);
    ASSERT_EQ(0, bs_sensors_count(set));
    bs_sensors_free(&set);
}

BS_TEST(nvml_fake_library)
{
    bs_sensor_opts_t o = s_opts();
    o.nvml_library = BS_FAKE_NVML;
    bs_sensor_set_t *set = s_discover(&o);
    int i = s_find(set, "nvml");
    bs_sensor_info_t in;
    ASSERT_OK(bs_sensors_info(set, i, &in));
    ASSERT_EQ(1, in.readable);
    ASSERT_EQ(1, in.counter);
    ASSERT_EQ(1, in.nparts);
    ASSERT_STR_EQ("GPU0 Fake GPU 0", in.parts[0]);
    ASSERT_STR_EQ("GPU0", in.total_from);
    ASSERT_CONTAINS(in.notes, "GPU 1 left out: Not Supported (total energy needs Volta");
    bs_energy_result_t r;
    ASSERT_OK(s_window(set, i, 0.3, &r));
    ASSERT_STR_EQ("nvml", r.source);
    ASSERT_REL(10.0 * r.seconds, r.joules, 0.2);
    ASSERT_DBL_NEAR(1.0, r.min_seconds, 1e-12);
    ASSERT_EQ(1, r.too_short); /* NVML refreshes every 20-100 ms: 0.3 s is not enough */
    /* the GPU falls off the bus mid-window */
    bs_energy_window_t *w = NULL;
    ASSERT_OK(bs_energy_begin(set, i, &w, NULL));
    setenv("FAKE_NVML_LOST", "1", 1);
    ASSERT_EQ(BS_EIO, bs_energy_end(&w, &r));
    ASSERT_CONTAINS(r.reason, "GPU is lost");
    unsetenv("FAKE_NVML_LOST");
    bs_sensors_free(&set);
    setenv("FAKE_NVML_INIT_RC", "9", 1); /* NVML_ERROR_DRIVER_NOT_LOADED */
    set = s_discover(&o);
    ASSERT_OK(bs_sensors_info(set, s_find(set, "nvml"), &in));
    ASSERT_EQ(0, in.readable);
    ASSERT_CONTAINS(in.reason, "nvmlInit_v2: Unknown Error (9)");
    bs_sensors_free(&set);
}

/* ---- idle, JSON, self-test ----------------------------------------------------------------- */

BS_TEST(idle_and_dynamic_energy)
{
    s_orin_nx();
    bs_sensor_opts_t o = s_opts();
    bs_sensor_set_t *set = s_discover(&o);
    double idle = 0;
    bs_err_t e = {0};
    ASSERT_OK(bs_energy_idle(set, BS_SENSOR_BEST, 0.1, &idle, &e));
    ASSERT_REL(5.0, idle, 0.01);
    s_rail(INA "1-0040/hwmon/hwmon3", 1, "VDD_IN", 5000, 1600); /* the job: 8 W */
    bs_energy_result_t r;
    ASSERT_OK(s_window(set, BS_SENSOR_BEST, 0.2, &r));
    bs_energy_apply_idle(&r, idle);
    ASSERT_REL(5.0, r.idle_watts, 0.01);
    ASSERT_REL(3.0 * r.seconds, r.dynamic_joules, 0.02);
    bs_energy_result_t none;
    memset(&none, 0, sizeof none);
    none.joules = NAN;
    bs_energy_apply_idle(&none, idle);
    ASSERT(isnan(none.dynamic_joules));
    ASSERT_EQ(BS_EINVAL, bs_energy_idle(set, 0, -1, &idle, &e));
    bs_sensors_free(&set);
}

BS_TEST(result_json)
{
    s_orin_nx();
    bs_sensor_opts_t o = s_opts();
    bs_sensor_set_t *set = s_discover(&o);
    bs_energy_result_t r;
    ASSERT_OK(s_window(set, 0, 0.05, &r));
    bs_energy_apply_idle(&r, 5.0);
    cJSON *j = bs_energy_result_json(&r);
    ASSERT(j != NULL);
    ASSERT_STR_EQ("ina3221", cJSON_GetObjectItemCaseSensitive(j, "source")->valuestring);
    ASSERT(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(j, "joules")));
    ASSERT(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(j, "dynamic_joules")));
    cJSON *parts = cJSON_GetObjectItemCaseSensitive(j, "parts");
    ASSERT(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(parts, "VDD_CPU_GPU_CV")));
    ASSERT_STR_EQ("VDD_IN", cJSON_GetObjectItemCaseSensitive(j, "total_from")->valuestring);
    cJSON_Delete(j);
    bs_sensors_free(&set);
    /* unknown energy: null, with the reason */
    o.root = "/nonexistent-root";
    set = s_discover(&o);
    bs_energy_window_t *w = NULL;
    ASSERT_OK(bs_energy_begin(set, BS_SENSOR_BEST, &w, NULL));
    ASSERT_EQ(BS_EUNSUPPORTED, bs_energy_end(&w, &r));
    j = bs_energy_result_json(&r);
    ASSERT(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "joules")));
    ASSERT_STR_EQ("none", cJSON_GetObjectItemCaseSensitive(j, "source")->valuestring);
    ASSERT_CONTAINS(cJSON_GetObjectItemCaseSensitive(j, "reason")->valuestring,
                    "/nonexistent-root");
    cJSON_Delete(j);
    bs_sensors_free(&set);
}

static cJSON *s_source_json(cJSON *d, const char *name)
{
    cJSON *s;
    cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(d, "sources"))
    {
        cJSON *n = cJSON_GetObjectItemCaseSensitive(s, "name");
        if (cJSON_IsString(n) && !strcmp(n->valuestring, name))
            return s;
    }
    bs_test_fail(__FILE__, __LINE__, "describe: no source %s", name);
}

BS_TEST(describe_for_selftest)
{
    s_rapl_tree();
    s_orin_nx();
    s_phone(-100000, "Discharging", 1);
    bs_sensor_opts_t o = s_opts();
    o.nvml_library = BS_FAKE_NVML;
    bs_sensor_set_t *set = s_discover(&o);
    ASSERT_EQ(4, bs_sensors_count(set));
    cJSON *d = NULL;
    bs_err_t e = {0};
    ASSERT_OK(bs_sensors_describe(set, 50, &d, &e));
    char *text = cJSON_Print(d);
    printf("%s\n", text);
    cJSON_free(text);
    ASSERT_STR_EQ("ina3221", cJSON_GetObjectItemCaseSensitive(d, "best")->valuestring);
    ASSERT_STR_EQ(bs_test_tmpdir(), cJSON_GetObjectItemCaseSensitive(d, "root")->valuestring);
    ASSERT_EQ(4, cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(d, "sources")));
    cJSON *ina = s_source_json(d, "ina3221");
    ASSERT(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ina, "readable")));
    ASSERT_STR_EQ("power", cJSON_GetObjectItemCaseSensitive(ina, "kind")->valuestring);
    cJSON *rd = cJSON_GetObjectItemCaseSensitive(ina, "reading");
    ASSERT_REL(5.0, cJSON_GetObjectItemCaseSensitive(rd, "watts")->valuedouble, 0.01);
    cJSON *rapl = s_source_json(d, "rapl");
    ASSERT_STR_EQ("counter", cJSON_GetObjectItemCaseSensitive(rapl, "kind")->valuestring);
    ASSERT(cJSON_GetObjectItemCaseSensitive(rapl, "reading") != NULL);
    ASSERT_EQ(6, cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(rapl, "parts")));
    cJSON *bat = s_source_json(d, "battery");
    ASSERT(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(bat, "readable")));
    ASSERT_CONTAINS(cJSON_GetObjectItemCaseSensitive(bat, "reason")->valuestring, "charger");
    ASSERT(cJSON_GetObjectItemCaseSensitive(bat, "reading") == NULL);
    cJSON *nv = s_source_json(d, "nvml");
    rd = cJSON_GetObjectItemCaseSensitive(nv, "reading");
    ASSERT_REL(10.0, cJSON_GetObjectItemCaseSensitive(rd, "watts")->valuedouble, 0.5);
    cJSON_Delete(d);
    /* no reading asked: listing only */
    ASSERT_OK(bs_sensors_describe(set, 0, &d, &e));
    ASSERT(cJSON_GetObjectItemCaseSensitive(s_source_json(d, "rapl"), "reading") == NULL);
    cJSON_Delete(d);
    ASSERT_EQ(BS_EINVAL, bs_sensors_describe(set, -1, &d, &e));
    bs_sensors_free(&set);
}

BS_TEST(describe_reading_errors)
{
    bs_sensor_set_t *set = s_command_set("echo nonsense\n", 500);
    cJSON *d = NULL;
    ASSERT_OK(bs_sensors_describe(set, 20, &d, NULL));
    cJSON *c = s_source_json(d, "command");
    ASSERT_CONTAINS(cJSON_GetObjectItemCaseSensitive(c, "reading_error")->valuestring,
                    "not a number of watts");
    ASSERT_STR_EQ("command", cJSON_GetObjectItemCaseSensitive(d, "best")->valuestring);
    cJSON_Delete(d);
    bs_sensors_free(&set);
}

BS_TEST(out_of_memory_fails_cleanly)
{
    s_rapl_tree();
    s_orin_nx();
    s_phone(-500000, "Discharging", 0);
    bs_sensor_opts_t o = s_opts();
    o.battery_sign = -1;
    o.command = "echo 1";
    o.nvml_library = BS_FAKE_NVML;
    int done = 0;
    for (long n = 0; n < 400 && !done; n++) {
        bs_sensor_set_t *set = NULL;
        bs_err_t e = {0};
        bs_alloc_fail_after(n);
        int rc = bs_sensors_discover(&o, &set, &e);
        cJSON *d = NULL;
        int drc = rc == 0 ? bs_sensors_describe(set, 0, &d, &e) : 0;
        bs_energy_window_t *w = NULL;
        int brc = rc == 0 ? bs_energy_begin(set, 0, &w, &e) : 0;
        bs_alloc_fail_after(-1);
        if (rc != 0) {
            ASSERT_EQ(BS_ENOMEM, rc);
            ASSERT(set == NULL);
            continue;
        }
        ASSERT(drc == 0 || drc == BS_ENOMEM);
        ASSERT(brc == 0 || brc == BS_ENOMEM);
        if (drc == 0 && brc == 0) {
            ASSERT_EQ(5, bs_sensors_count(set));
            done = 1;
        }
        cJSON_Delete(d);
        bs_energy_abort(&w);
        bs_sensors_free(&set);
    }
    ASSERT(done);
}

/* What this machine's real root exposes (printed; only the call is checked). */
BS_TEST(host_describe)
{
    unsetenv("BITSCOUT_SENSOR_ROOT");
    bs_sensor_opts_t o = {0};
    o.root = "/";
    bs_sensor_set_t *set = s_discover(&o);
    cJSON *d = NULL;
    ASSERT_OK(bs_sensors_describe(set, 200, &d, NULL));
    char *text = cJSON_PrintUnformatted(d);
    printf("  host sensors: %s\n", text);
    cJSON_free(text);
    cJSON_Delete(d);
    bs_sensors_free(&set);
}

#define TESTS(X)                                                                                  \
    X(root_override_and_env)                                                                      \
    X(none_when_nothing_found)                                                                    \
    X(invalid_arguments)                                                                          \
    X(rapl_discovers_domains)                                                                     \
    X(rapl_counts_exactly)                                                                        \
    X(rapl_wraps_at_max_energy_range)                                                             \
    X(rapl_backwards_without_max_fails)                                                           \
    X(rapl_counter_advanced_by_a_thread)                                                          \
    X(rapl_poll_catches_every_wrap)                                                               \
    X(rapl_permission_denied)                                                                     \
    X(rapl_unreadable)                                                                            \
    X(rapl_garbage)                                                                               \
    X(rapl_vanishes_mid_window)                                                                   \
    X(ina3221_orin_nx)                                                                            \
    X(ina3221_agx_orin_sums_its_rails)                                                            \
    X(ina3221_through_hwmon_class)                                                                \
    X(ina3221_negative_and_disabled_rails)                                                        \
    X(ina3221_only_nc_rails)                                                                      \
    X(ina3221_vanishes_mid_window)                                                                \
    X(ina3221_too_short_window)                                                                   \
    X(iio_jetpack4_nano)                                                                          \
    X(battery_discharging_negative_current)                                                       \
    X(battery_calibrates_by_load)                                                                 \
    X(battery_wrong_sign_is_negative_power)                                                       \
    X(battery_charger_connected)                                                                  \
    X(battery_charger_plugged_mid_window)                                                         \
    X(battery_power_now_and_peripherals)                                                          \
    X(command_streams_watts)                                                                      \
    X(command_prints_once_and_is_rerun)                                                           \
    X(command_prints_garbage)                                                                     \
    X(command_hangs)                                                                              \
    X(command_exits)                                                                              \
    X(command_stops_cleanly)                                                                      \
    X(nvml_absent_is_not_present)                                                                 \
    X(nvml_fake_library)                                                                          \
    X(idle_and_dynamic_energy)                                                                    \
    X(result_json)                                                                                \
    X(describe_for_selftest)                                                                      \
    X(describe_reading_errors)                                                                    \
    X(out_of_memory_fails_cleanly)                                                                \
    X(host_describe)

BS_TEST_MAIN(TESTS)

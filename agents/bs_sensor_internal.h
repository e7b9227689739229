/*
 * bs_sensor_internal.h - what the sensor files share (bs__ names; not for other modules).
 *
 * bs_sensors.c owns the set, the windows and their sampling threads; each source kind lives
 * in its own file and provides discovery (adding a bs__source_t to the set) and one read
 * function: bs_sensor_sysfs.c (rapl, ina3221, iio, battery), bs_sensor_nvml.c (nvml, through
 * dlopen) and bs_sensor_cmd.c (the external watts command, which runs its own reader thread
 * inside a window). A source is plain data after discovery, so windows on other threads may
 * read it; only calibration writes it (the battery sign).
 */
#ifndef BS_SENSOR_INTERNAL_H
#define BS_SENSOR_INTERNAL_H

#include <stdint.h>
#include <sys/types.h>

#include "bs_sensors.h"

#define BS__SPATH 512    /* a sensor file path under the root */
#define BS__ROOT_MAX 255 /* longest root accepted */

enum {
    BS__RAPL,
    BS__INA3221,
    BS__IIO,
    BS__BATTERY,
    BS__NVML,
    BS__COMMAND,
};

typedef struct bs__part {
    char name[48];
    int in_total;       /* summed into the source's total */
    char p1[BS__SPATH]; /* rapl energy_uj; hwmon inN_input; iio in_powerN_input or
                           in_voltageN_input; battery current_now or power_now */
    char p2[BS__SPATH]; /* hwmon currN_input; iio in_currentN_input (when no power file);
                           battery voltage_now; "" when unused */
    uint64_t max;       /* rapl: max_energy_range_uj; 0 when unknown */
    void *handle;       /* nvml: the nvmlDevice_t */
} bs__part_t;

typedef struct bs__nvml bs__nvml_t; /* the loaded library (bs_sensor_nvml.c) */

typedef struct bs__source {
    int kind;         /* BS__RAPL ... */
    const char *name; /* static: "rapl" ... */
    char device[BS__SPATH];
    int readable;
    char reason[256];
    char notes[512];
    char total_from[128];
    int counter;     /* 1: cumulative counter read as uint64 counts */
    double unit_j;   /* counters: joules per count */
    double period_s; /* power: sampling period; counters: poll period */
    double update_s; /* counters: the sensor's own update interval */
    int nparts;
    bs__part_t part[BS_SENSOR_MAX_PARTS];
    /* battery */
    int bat_power_now;          /* 1: p1 is power_now (uW), no p2 */
    int bat_sign;               /* +1 / -1, 0 until calibrated */
    char bat_status[BS__SPATH]; /* the status file ("" when absent) */
    int nchargers;
    char charger[8][BS__SPATH]; /* the online files of the other supplies */
    /* nvml */
    bs__nvml_t *nvml; /* borrowed from the set */
    /* command */
    char *command; /* owned */
    double timeout_s;
} bs__source_t;

struct bs_sensor_set {
    char root[BS__ROOT_MAX + 1]; /* without a trailing slash; "" for "/" */
    char root_shown[BS__ROOT_MAX + 1];
    int n;
    bs__source_t *src[8];
    bs__nvml_t *nvml;      /* owned; NULL when not loaded */
    char none_reason[320]; /* why no source is usable (bs_sensors_best) */
};

/* Adds a zeroed source to the set; NULL on OOM or when the set is full. */
bs__source_t *bs__source_add(bs_sensor_set_t *set, int kind, const char *name);
/* Copies src into dst of cap bytes, truncating; always NUL-terminated. */
void bs__copy(char *dst, size_t cap, const char *src);
/* Appends "; " and a formatted note to src->notes (truncated silently). */
void bs__note(bs__source_t *src, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Small sysfs readers. Each fills err naming the path: BS_ENOENT (gone), BS_EIO (permission,
 * no data, read error), BS_EDATA (not a number). */
int bs__read_text(const char *path, char *buf, size_t cap, bs_err_t *err);
int bs__read_i64(const char *path, long long *v, bs_err_t *err);
int bs__read_u64(const char *path, uint64_t *v, bs_err_t *err);
/* Sorted (numbers compared as numbers) entries of dir starting with prefix; *names is the
 * caller's (bs__names_free). A missing directory gives 0 entries. BS_ENOMEM on OOM. */
int bs__list_dir(const char *dir, const char *prefix, char ***names, int *n);
void bs__names_free(char **names, int n);
/* 1 when path exists (any type). */
int bs__exists(const char *path);

/* Discovery of each kind; 0 or BS_ENOMEM (absence is not an error). */
int bs__discover_rapl(bs_sensor_set_t *set, const bs_sensor_opts_t *o);
int bs__discover_jetson(bs_sensor_set_t *set, const bs_sensor_opts_t *o);
int bs__discover_battery(bs_sensor_set_t *set, const bs_sensor_opts_t *o);
int bs__discover_nvml(bs_sensor_set_t *set, const bs_sensor_opts_t *o);

/* Reads every part of a counter source (counts: bs__rapl_read, bs__nvml_read) or a power
 * source (watts: ina3221, iio, battery). */
int bs__rapl_read(const bs__source_t *src, uint64_t *vals, bs_err_t *err);
int bs__nvml_read(const bs__source_t *src, uint64_t *vals, bs_err_t *err);
int bs__read_power(const bs__source_t *src, double *watts, bs_err_t *err);
/* Battery: BS_EAGAIN with the reason when a charger is connected or the status says the battery
 * is not discharging; 0 otherwise. */
int bs__battery_check(const bs__source_t *src, bs_err_t *err);
/* Battery: the raw reading (current_now uA or power_now uW) without the sign. */
int bs__battery_raw(const bs__source_t *src, double *raw, bs_err_t *err);

void bs__nvml_unload(bs__nvml_t *nv);

/* The command source's reader, run inside a window (bs_sensor_cmd.c). */
typedef struct bs__cmd_run bs__cmd_run_t;
typedef struct bs__cmd_sink {
    /* called from the reader thread for each reading (t: CLOCK_MONOTONIC seconds) */
    void (*on_sample)(void *ud, double t, double watts);
    /* called once when the reader stops on an error (code, message) */
    void (*on_error)(void *ud, int code, const char *msg);
    void *ud;
} bs__cmd_sink_t;
/* Starts the reader thread (which spawns the command). *out is the caller's. */
int bs__cmd_start(const bs__source_t *src, const bs__cmd_sink_t *sink, bs__cmd_run_t **out,
                  bs_err_t *err);
/* Stops the reader: kills the command's process group, reaps it, joins the thread. */
void bs__cmd_stop(bs__cmd_run_t **run);

#endif

/*
 * bs_sensors.h - the agent's energy sensors: discovery, measurement windows, self-test.
 *
 * Design. All sensor files are read under one root directory ("/" by default; the option
 * bs_sensor_opts_t.root, else the environment variable BITSCOUT_SENSOR_ROOT), so a test can run
 * every source against a fake tree (ROOT/sys/class/powercap/intel-rapl:0/energy_uj, ...).
 * bs_sensors_discover() looks for six kinds of source and lists each one it finds, readable or
 * not (an unreadable one carries the reason, e.g. "permission denied: energy_uj is root-only
 * since Linux 5.10"):
 *   "rapl"     Linux powercap RAPL counters, sys/class/powercap/intel-rapl:N[:M]/energy_uj (uJ);
 *              domains by their `name` file; a counter that wraps at max_energy_range_uj adds
 *              (max - e0) + e1 (the kernel's range is ENERGY_STATUS_MASK * unit, so this is
 *              short by one counter unit, a few tens of uJ, per wrap); a thread polls the
 *              counters (counter_poll_ms) so a long window cannot hide a double wrap.
 *              Total = package-* and dram domains (core/uncore lie inside a package; psys
 *              overlaps them and is reported as a part only).
 *   "ina3221"  NVIDIA Jetson, JetPack 5/6: sys/bus/i2c/drivers/ina3221/<dev>/hwmon/hwmonN/
 *              (else sys/class/hwmon/hwmonN with name "ina3221"), channels 1..3 only:
 *              inN_label, inN_input (mV), currN_input (mA); in4..in7 are shunt voltages and
 *              curr4 a sum, never paired. A label with an "NC" word is skipped.
 *   "iio"      NVIDIA Jetson, JetPack 4: sys/bus/i2c/drivers/ina3221x/<dev>/iio:deviceN/
 *              rail_name_N, in_powerN_input (mW), else in_voltageN_input (mV) and
 *              in_currentN_input (mA).
 *              Jetson total: the VDD_IN (or POM_5V_IN) rail where present; else, on AGX Orin,
 *              VDD_GPU_SOC + VDD_CPU_CV + VIN_SYS_5V0; else the sum of all rails.
 *   "battery"  Android / laptop fuel gauge, sys/class/power_supply/<name> of type "Battery"
 *              (scope "Device", a mouse's battery, is skipped; "battery" preferred):
 *              current_now (uA) x voltage_now (uV), else power_now (uW). Drivers disagree on
 *              the sign of current_now, so it is calibrated once under a known load (idle, then a
 *              busy loop: the direction the reading moves is discharge) and kept in the set;
 *              bs_sensor_opts_t.battery_sign presets it. A charger (any supply with online = 1,
 *              or a status other than "Discharging"/"Unknown") makes the reading meaningless:
 *              the source is then unreadable, and a window during which one appears fails.
 *   "nvml"     NVIDIA GPUs: nvmlDeviceGetTotalEnergyConsumption (mJ since the driver loaded,
 *              Volta and newer), libnvidia-ml.so.1 loaded with dlopen() only where it exists;
 *              probed under root "/" only, unless bs_sensor_opts_t.nvml_library names one.
 *   "command"  An external command (the agent's settings) run with /bin/sh -c, printing watts,
 *              one number per line: either it keeps printing (a USB power meter script) or it
 *              prints once and exits 0, and is run again every period.
 * Counters ("rapl", "nvml") are read at the edges of a window; the others are power sources,
 * sampled by a thread every period_ms with CLOCK_MONOTONIC stamps and integrated with the
 * trapezoid rule over exactly the window (a sample at begin and one at end; the command's
 * latest value is held at the edges). A result says when the window is shorter than ten
 * sampling periods (too_short) so the caller can extend it. Every failure - a file that
 * vanishes, permission denied, garbage, a negative reading, a command that exits, hangs or
 * prints words - ends as an error code with a reason, never a crash or a hang; sampling
 * threads stop within a period. Where no source is usable, a window still works and yields
 * energy NAN with source "none" and the reason.
 *
 * Threads: a set may serve several windows at once; calibration and bs_sensors_free must not
 * overlap an open window. The set must outlive its windows.
 */
#ifndef BS_SENSORS_H
#define BS_SENSORS_H

#include <cjson/cJSON.h>

#include "bs_error.h"

#define BS_SENSOR_MAX_PARTS 16 /* domains / rails / GPUs per source; more are left out */
#define BS_SENSOR_BEST (-1)    /* source argument: the best readable source, else "none" */

typedef struct bs_sensor_opts {
    const char *root;         /* NULL: $BITSCOUT_SENSOR_ROOT if set and non-empty, else "/" */
    const char *command;      /* watts command for the "command" source; NULL or "": none */
    int period_ms;            /* power sources' sampling period; 0: 50 (battery 250, command
                                 re-run 200) */
    int counter_poll_ms;      /* counters' wrap-tracking poll; 0: 1000 */
    int command_timeout_ms;   /* longest wait for a line from the command; 0: 3000 */
    int battery_sign;         /* +1 / -1: known sign of current_now for discharge; 0: calibrate
                                 on first use */
    const char *nvml_library; /* NULL: "libnvidia-ml.so.1", probed only when the root is "/" */
    int no_nvml;              /* 1: never load NVML */
} bs_sensor_opts_t;

typedef struct bs_sensor_set bs_sensor_set_t;
typedef struct bs_energy_window bs_energy_window_t;

/* What a source is, for listing. Strings are borrowed from the set. */
typedef struct bs_sensor_info {
    const char *name;   /* "rapl", "ina3221", "iio", "battery", "nvml", "command" */
    const char *device; /* where: the directory, library or command it reads */
    int readable;       /* 1: usable now; 0: see reason */
    const char *reason; /* why unreadable; "" when readable */
    const char *notes;  /* parts left out and why (e.g. "in3: NC"); "" when none */
    int counter;        /* 1: cumulative energy counter; 0: sampled power */
    int nparts;
    const char *parts[BS_SENSOR_MAX_PARTS]; /* domain / rail / GPU names */
    int in_total[BS_SENSOR_MAX_PARTS];      /* 1: part of the source's total */
    const char *total_from; /* how the total is formed, e.g. "VDD_IN", "package-0+dram" */
    double period_s;        /* sampling period (power) or the counter's update interval */
    int battery_sign;       /* battery: the calibrated sign (0: not yet); others 0 */
} bs_sensor_info_t;

typedef struct bs_energy_part {
    char name[48];
    double joules; /* NAN when the window failed */
} bs_energy_part_t;

/* The energy of one window. source is "none" when no sensor was usable. */
typedef struct bs_energy_result {
    int ok;          /* 1: joules is a measurement; 0: unavailable, reason says why */
    double joules;   /* total over the window; NAN unless ok */
    double seconds;  /* window length, CLOCK_MONOTONIC, measured by the API */
    double watts;    /* joules / seconds; NAN unless ok */
    char source[16]; /* "rapl", "ina3221", "iio", "battery", "nvml", "command", "none" */
    char device[128];
    char total_from[128];
    int nparts;
    bs_energy_part_t parts[BS_SENSOR_MAX_PARTS];
    long samples;          /* sensor reads (counters) or power samples behind the figure */
    double period_s;       /* sampling period (counters: update interval; command: observed) */
    double min_seconds;    /* 10 periods: the shortest window worth trusting */
    int too_short;         /* 1: seconds < min_seconds; extend the window */
    double idle_watts;     /* NAN until bs_energy_apply_idle */
    double dynamic_joules; /* joules - idle_watts * seconds; NAN until bs_energy_apply_idle */
    char reason[256];      /* why unavailable; "" when ok */
} bs_energy_result_t;

/* The root all sensor files are read under: override if non-NULL and non-empty, else
 * $BITSCOUT_SENSOR_ROOT if set and non-empty, else "/". Borrowed (static or the argument). */
const char *bs_sensor_root(const char *override);

/* Finds every source present under the root (opts may be NULL: defaults). *out is the
 * caller's (bs_sensors_free) and may hold no source at all. Errors: BS_ENOMEM, BS_EINVAL (a
 * root longer than 255 bytes, a bad option); err says which. Never loads anything but NVML. */
int bs_sensors_discover(const bs_sensor_opts_t *opts, bs_sensor_set_t **out, bs_err_t *err);
/* Frees the set (NULL allowed) and clears the caller's pointer; unloads NVML. */
void bs_sensors_free(bs_sensor_set_t **set);

int bs_sensors_count(const bs_sensor_set_t *set);
/* Fills *info for source i; BS_EINVAL when i is out of range. */
int bs_sensors_info(const bs_sensor_set_t *set, int i, bs_sensor_info_t *info);
/* Index of the first source called name, or BS_ENOENT. */
int bs_sensors_find(const bs_sensor_set_t *set, const char *name);
/* Index of the best readable source (command, ina3221, iio, battery, rapl, nvml in that
 * order), or BS_ENOENT when none is readable; then *reason (may be NULL) says why. */
int bs_sensors_best(const bs_sensor_set_t *set, const char **reason);

/* Battery only: sets the sign of current_now by sampling seconds/2 idle, then seconds/2 of a
 * busy loop on the calling thread (the reading moves towards discharge under load; where it
 * hardly moves, the sign of the reading while discharging decides). Other sources: 0, no-op.
 * Errors: BS_EAGAIN (charger connected, no current), BS_EIO / BS_ENOENT (unreadable). */
int bs_sensors_calibrate(bs_sensor_set_t *set, int source, double seconds, bs_err_t *err);

/* Starts a window on source (an index, or BS_SENSOR_BEST). *out is the caller's, ended by
 * bs_energy_end or bs_energy_abort. A battery not yet calibrated is calibrated first (0.5 s).
 * The command source waits for its first reading (at most command_timeout_ms). With
 * BS_SENSOR_BEST and nothing usable, a "none" window starts (returns 0). Errors: BS_EINVAL (bad
 * index), BS_EUNSUPPORTED (that source is unreadable), BS_EAGAIN (charger), BS_ENOENT / BS_EIO /
 * BS_EDATA (the first reading failed), BS_ETIMEOUT (the command printed nothing in time),
 * BS_ENOMEM; err says what. */
int bs_energy_begin(bs_sensor_set_t *set, int source, bs_energy_window_t **out, bs_err_t *err);
/* Ends the window, fills *res (always: source, seconds, reason) and frees the window, clearing
 * the caller's pointer. Returns 0 when res->joules is a measurement, else the error code of what
 * went wrong (BS_EUNSUPPORTED for "none") with res->ok = 0, joules NAN and the reason. */
int bs_energy_end(bs_energy_window_t **win, bs_energy_result_t *res);
/* Ends the window without a result (NULL allowed); stops its thread and command. */
void bs_energy_abort(bs_energy_window_t **win);

/* Mean power of source over `seconds` of sleep, measured before a job. *watts is NAN on error;
 * the code is bs_energy_end's, err carries the reason. */
int bs_energy_idle(bs_sensor_set_t *set, int source, double seconds, double *watts, bs_err_t *err);
/* Records idle power in a result: idle_watts, and dynamic_joules = joules - idle * seconds
 * (NAN when the result or idle_watts is unknown). */
void bs_energy_apply_idle(bs_energy_result_t *res, double idle_watts);

/* A result as JSON: {"source", "joules" (null when unknown), "seconds", "watts", "samples",
 * "period_s", "too_short", "total_from", "parts": {name: joules}, "idle_watts",
 * "dynamic_joules", "reason"}. New object, the caller's; NULL on OOM. */
cJSON *bs_energy_result_json(const bs_energy_result_t *res);

/* The self-test summary: {"root", "best" (a source name or "none"), "reason" (when none),
 * "sources": [{"name", "device", "readable", "reason", "notes", "kind" ("counter"|"power"),
 * "parts": [{"name", "total"}], "total_from", "period_ms", "battery_sign" (battery),
 * "reading": {"watts", "joules", "seconds", "samples", "too_short"} or "reading_error"}]}.
 * Each readable source is read for reading_ms (0: no reading). *out is the caller's. Errors:
 * BS_ENOMEM, BS_EINVAL. */
int bs_sensors_describe(bs_sensor_set_t *set, int reading_ms, cJSON **out, bs_err_t *err);

#endif

/*
 * bs_sensor_sysfs.c - the sources read from sysfs files: RAPL powercap counters, Jetson INA3221
 * rails (hwmon on JetPack 5/6, iio on JetPack 4) and the battery fuel gauge.
 *
 * Discovery walks the directories under the set's root, test-reads every file once and keeps
 * what reads back as numbers; what it leaves out goes into the source's notes, and a source whose
 * essential files fail is listed unreadable with the first reason. Every read opens, reads and
 * closes the file again (as sysfs expects; and a file removed mid-run then fails the next read
 * instead of answering from a stale descriptor). Units: RAPL uJ; hwmon mV and mA; iio mW, mV,
 * mA; power_supply uA, uV, uW. See bs_sensors.h for the facts behind each path.
 */
#include "bs_sensor_internal.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bs_alloc.h"

/* ---- small readers ------------------------------------------------------------------------- */

/* Copies at most 40 bytes of s into out, printable ASCII only, for error messages. */
static void s_shown(const char *s, char out[48])
{
    size_t i = 0;
    for (; s[i] && i < 40; i++)
        out[i] = isprint((unsigned char)s[i]) ? s[i] : '?';
    out[i] = '\0';
    if (s[i])
        strcpy(out + i, "...");
}

int bs__read_text(const char *path, char *buf, size_t cap, bs_err_t *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT || e == ENODEV || e == ENXIO || e == ENOTDIR)
            return bs_err_set(err, BS_ENOENT, "%s: no such file (sensor removed?)", path);
        if (e == EACCES || e == EPERM)
            return bs_err_set(err, BS_EIO, "%s: permission denied", path);
        return bs_err_set(err, BS_EIO, "%s: %s", path, strerror(e));
    }
    ssize_t n;
    do {
        n = read(fd, buf, cap - 1);
    } while (n < 0 && errno == EINTR);
    int e = errno;
    close(fd);
    if (n < 0) {
        if (e == ENODATA)
            return bs_err_set(err, BS_EIO, "%s: no data (channel disabled?)", path);
        if (e == ENODEV || e == ENXIO || e == ENOENT)
            return bs_err_set(err, BS_ENOENT, "%s: device gone (sensor removed?)", path);
        if (e == EACCES || e == EPERM)
            return bs_err_set(err, BS_EIO, "%s: permission denied", path);
        return bs_err_set(err, BS_EIO, "%s: %s", path, strerror(e));
    }
    buf[n] = '\0';
    while (n > 0 && isspace((unsigned char)buf[n - 1]))
        buf[--n] = '\0';
    size_t lead = 0;
    while (isspace((unsigned char)buf[lead]))
        lead++;
    if (lead)
        memmove(buf, buf + lead, (size_t)n - lead + 1);
    if (!buf[0])
        return bs_err_set(err, BS_EDATA, "%s: empty", path);
    return 0;
}

int bs__read_i64(const char *path, long long *v, bs_err_t *err)
{
    char buf[64], shown[48];
    int rc = bs__read_text(path, buf, sizeof buf, err);
    if (rc < 0)
        return rc;
    char *end = NULL;
    errno = 0;
    long long x = strtoll(buf, &end, 10);
    if (end == buf || *end || errno == ERANGE) {
        s_shown(buf, shown);
        return bs_err_set(err, BS_EDATA, "%s: \"%s\" is not an integer", path, shown);
    }
    *v = x;
    return 0;
}

int bs__read_u64(const char *path, uint64_t *v, bs_err_t *err)
{
    char buf[64], shown[48];
    int rc = bs__read_text(path, buf, sizeof buf, err);
    if (rc < 0)
        return rc;
    char *end = NULL;
    errno = 0;
    unsigned long long x = buf[0] == '-' ? 0 : strtoull(buf, &end, 10);
    if (buf[0] == '-' || end == buf || *end || errno == ERANGE) {
        s_shown(buf, shown);
        return bs_err_set(err, BS_EDATA, "%s: \"%s\" is not a counter value", path, shown);
    }
    *v = (uint64_t)x;
    return 0;
}

int bs__exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* Compares names with digit runs as numbers: intel-rapl:2 < intel-rapl:10. */
static int s_natcmp(const char *a, const char *b)
{
    while (*a && *b) {
        if (isdigit((unsigned char)*a) && isdigit((unsigned char)*b)) {
            while (*a == '0' && isdigit((unsigned char)a[1]))
                a++;
            while (*b == '0' && isdigit((unsigned char)b[1]))
                b++;
            const char *ea = a, *eb = b;
            while (isdigit((unsigned char)*ea))
                ea++;
            while (isdigit((unsigned char)*eb))
                eb++;
            if (ea - a != eb - b)
                return ea - a < eb - b ? -1 : 1;
            int c = strncmp(a, b, (size_t)(ea - a));
            if (c)
                return c;
            a = ea;
            b = eb;
        } else {
            if (*a != *b)
                return (unsigned char)*a - (unsigned char)*b;
            a++;
            b++;
        }
    }
    return (unsigned char)*a - (unsigned char)*b;
}

static int s_qnat(const void *x, const void *y)
{
    return s_natcmp(*(char *const *)x, *(char *const *)y);
}

int bs__list_dir(const char *dir, const char *prefix, char ***names, int *n)
{
    *names = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    char **v = NULL;
    int count = 0, cap = 0;
    size_t plen = strlen(prefix);
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (strncmp(e->d_name, prefix, plen) != 0)
            continue;
        if (count == cap) {
            int ncap = cap ? cap * 2 : 16;
            char **nv = bs_realloc(v, (size_t)ncap * sizeof *nv);
            if (!nv)
                goto oom;
            v = nv;
            cap = ncap;
        }
        if (!(v[count] = bs_strdup(e->d_name)))
            goto oom;
        count++;
    }
    closedir(d);
    if (count)
        qsort(v, (size_t)count, sizeof *v, s_qnat);
    *names = v;
    *n = count;
    return 0;
oom:
    closedir(d);
    bs__names_free(v, count);
    return BS_ENOMEM;
}

void bs__names_free(char **names, int n)
{
    for (int i = 0; i < n; i++)
        bs_free(names[i]);
    bs_free(names);
}

/* snprintf into a path buffer; 0, or -1 when it does not fit (the root is bounded, so only a
 * pathological directory entry name can overflow; such an entry is skipped). */
static int s_path(char out[BS__SPATH], const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int s_path(char out[BS__SPATH], const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, BS__SPATH, fmt, ap);
    va_end(ap);
    return n < 0 || n >= BS__SPATH ? -1 : 0;
}

/* Makes name unique among the source's parts by appending " (where)" when taken. */
static void s_part_name(bs__source_t *src, bs__part_t *p, const char *name, const char *where)
{
    int taken = 0;
    for (int i = 0; i < src->nparts; i++)
        taken |= strcmp(src->part[i].name, name) == 0;
    if (taken)
        snprintf(p->name, sizeof p->name, "%.20s (%.24s)", name, where);
    else
        bs__copy(p->name, sizeof p->name, name);
}

/* Joins the names of the parts in the total with '+' into src->total_from. */
static void s_total_from(bs__source_t *src)
{
    size_t len = 0;
    src->total_from[0] = '\0';
    for (int i = 0; i < src->nparts; i++) {
        if (!src->part[i].in_total)
            continue;
        int n = snprintf(src->total_from + len, sizeof src->total_from - len, "%s%s",
                         len ? "+" : "", src->part[i].name);
        if (n < 0 || (size_t)n >= sizeof src->total_from - len) {
            src->total_from[sizeof src->total_from - 1] = '\0';
            return;
        }
        len += (size_t)n;
    }
}

/* ---- RAPL ---------------------------------------------------------------------------------- */

/* "intel-rapl:N" (depth 1) or "intel-rapl:N:M" (depth 2); 0 for anything else. */
static int s_rapl_depth(const char *zone)
{
    const char *p = zone + strlen("intel-rapl:");
    int depth = 0;
    for (;;) {
        if (!isdigit((unsigned char)*p))
            return 0;
        while (isdigit((unsigned char)*p))
            p++;
        depth++;
        if (!*p)
            return depth <= 2 ? depth : 0;
        if (*p++ != ':')
            return 0;
    }
}

int bs__discover_rapl(bs_sensor_set_t *set, const bs_sensor_opts_t *o)
{
    char dir[BS__SPATH];
    char **names;
    int n, rc;
    snprintf(dir, sizeof dir, "%s/sys/class/powercap", set->root);
    if ((rc = bs__list_dir(dir, "intel-rapl:", &names, &n)) < 0)
        return rc;
    int zones = 0;
    for (int i = 0; i < n; i++)
        zones += s_rapl_depth(names[i]) > 0;
    if (!zones) {
        bs__names_free(names, n);
        return 0;
    }
    bs__source_t *src = bs__source_add(set, BS__RAPL, "rapl");
    if (!src) {
        bs__names_free(names, n);
        return BS_ENOMEM;
    }
    bs__copy(src->device, sizeof src->device, dir);
    src->counter = 1;
    src->unit_j = 1e-6;
    src->update_s = 0.001; /* RAPL counters update about every millisecond */
    src->period_s = (o->counter_poll_ms ? o->counter_poll_ms : 1000) / 1000.0;
    src->readable = 1;
    int depth1[BS_SENSOR_MAX_PARTS] = {0};
    for (int i = 0; i < n; i++) {
        int depth = s_rapl_depth(names[i]);
        if (!depth)
            continue;
        if (src->nparts == BS_SENSOR_MAX_PARTS) {
            bs__note(src, "%s: more than %d domains, left out", names[i], BS_SENSOR_MAX_PARTS);
            continue;
        }
        char path[BS__SPATH], dname[64];
        bs_err_t e = {0};
        if (s_path(path, "%s/%s/name", dir, names[i]) < 0)
            continue;
        if (bs__read_text(path, dname, sizeof dname, &e) < 0)
            bs__copy(dname, sizeof dname, names[i]);
        bs__part_t *p = &src->part[src->nparts];
        memset(p, 0, sizeof *p);
        s_part_name(src, p, dname, names[i]);
        p->in_total =
            (depth == 1 && strncmp(dname, "package", 7) == 0) || strcmp(dname, "dram") == 0;
        if (s_path(p->p1, "%s/%s/energy_uj", dir, names[i]) < 0 ||
            s_path(path, "%s/%s/max_energy_range_uj", dir, names[i]) < 0)
            continue;
        if (bs__exists(path) && bs__read_u64(path, &p->max, &e) < 0) {
            bs__note(src, "%s: %s", p->name, e.msg);
            p->max = 0;
        }
        uint64_t v;
        if (bs__read_u64(p->p1, &v, &e) < 0) {
            int perm = strstr(e.msg, "permission denied") != NULL;
            if (p->in_total && src->readable) {
                src->readable = 0;
                snprintf(src->reason, sizeof src->reason, "%.200s%s", e.msg,
                         perm ? " (energy_uj is root-only since Linux 5.10)" : "");
            } else if (!p->in_total) {
                bs__note(src, "%s left out: %s", p->name, e.msg);
                continue;
            }
        } else if (p->max && v > p->max) {
            bs__note(src, "%s: energy_uj %llu above max_energy_range_uj %llu", p->name,
                     (unsigned long long)v, (unsigned long long)p->max);
        }
        depth1[src->nparts] = depth == 1;
        src->nparts++;
    }
    bs__names_free(names, n);
    int any = 0;
    for (int i = 0; i < src->nparts; i++)
        any |= src->part[i].in_total;
    if (!any) /* no package or dram domain: psys, else every top-level zone */
        for (int i = 0; i < src->nparts; i++)
            any |= src->part[i].in_total = strcmp(src->part[i].name, "psys") == 0;
    if (!any)
        for (int i = 0; i < src->nparts; i++)
            src->part[i].in_total = depth1[i];
    if (src->readable && src->nparts == 0) {
        src->readable = 0;
        snprintf(src->reason, sizeof src->reason, "no readable RAPL domain (%.200s)",
                 src->notes[0] ? src->notes : "none listed");
    }
    s_total_from(src);
    return 0;
}

/* ---- Jetson INA3221 ------------------------------------------------------------------------ */

/* 1 when the label has a word "NC" (not connected): "NC", "NC_1", "VDD NC". */
static int s_is_nc(const char *label)
{
    const char *p = label;
    while (*p) {
        while (*p && !isalnum((unsigned char)*p))
            p++;
        const char *w = p;
        while (isalnum((unsigned char)*p))
            p++;
        if (p - w == 2 && w[0] == 'N' && w[1] == 'C')
            return 1;
    }
    return 0;
}

/* Test-reads a rail; 0 when its power reads back as a number >= 0, else notes why. */
static int s_rail_ok(bs__source_t *src, const bs__part_t *p, int power_file)
{
    bs_err_t e = {0};
    long long a, b = 1;
    if (bs__read_i64(p->p1, &a, &e) < 0 || (p->p2[0] && bs__read_i64(p->p2, &b, &e) < 0)) {
        bs__note(src, "%s left out: %s", p->name, e.msg);
        return -1;
    }
    if (a < 0 || b < 0) {
        bs__note(src, "%s left out: negative %s (%lld)", p->name,
                 power_file ? "power" : (a < 0 ? "voltage" : "current"), a < 0 ? a : b);
        return -1;
    }
    return 0;
}

/* Adds the rails of one hwmon chip directory (channels 1..3). */
static void s_hwmon_chip(bs__source_t *src, const char *chip, const char *dev)
{
    for (int ch = 1; ch <= 3; ch++) {
        char lpath[BS__SPATH], label[64];
        if (src->nparts == BS_SENSOR_MAX_PARTS) {
            bs__note(src, "%s: more than %d rails, left out", dev, BS_SENSOR_MAX_PARTS);
            return;
        }
        bs__part_t *p = &src->part[src->nparts];
        memset(p, 0, sizeof *p);
        if (s_path(p->p1, "%s/in%d_input", chip, ch) < 0 ||
            s_path(p->p2, "%s/curr%d_input", chip, ch) < 0 ||
            s_path(lpath, "%s/in%d_label", chip, ch) < 0)
            continue;
        if (!bs__exists(p->p1) && !bs__exists(p->p2))
            continue;
        bs_err_t e = {0};
        if (bs__read_text(lpath, label, sizeof label, &e) < 0)
            snprintf(label, sizeof label, "%.20s:in%d", dev, ch);
        if (s_is_nc(label)) {
            bs__note(src, "%s in%d \"%s\": not connected, skipped", dev, ch, label);
            continue;
        }
        s_part_name(src, p, label, dev);
        if (s_rail_ok(src, p, 0) == 0)
            src->nparts++;
    }
}

/* Adds the rails of one JetPack 4 iio device directory (rail_name_N, N = 0..7). */
static void s_iio_chip(bs__source_t *src, const char *chip, const char *dev)
{
    for (int ch = 0; ch < 8; ch++) {
        char lpath[BS__SPATH], label[64], pw[BS__SPATH];
        if (s_path(lpath, "%s/rail_name_%d", chip, ch) < 0 ||
            s_path(pw, "%s/in_power%d_input", chip, ch) < 0 || !bs__exists(lpath))
            continue;
        if (src->nparts == BS_SENSOR_MAX_PARTS) {
            bs__note(src, "%s: more than %d rails, left out", dev, BS_SENSOR_MAX_PARTS);
            return;
        }
        bs__part_t *p = &src->part[src->nparts];
        memset(p, 0, sizeof *p);
        bs_err_t e = {0};
        if (bs__read_text(lpath, label, sizeof label, &e) < 0) {
            bs__note(src, "%s channel %d left out: %s", dev, ch, e.msg);
            continue;
        }
        if (s_is_nc(label)) {
            bs__note(src, "%s channel %d \"%s\": not connected, skipped", dev, ch, label);
            continue;
        }
        s_part_name(src, p, label, dev);
        int power_file = bs__exists(pw);
        if (power_file) {
            memcpy(p->p1, pw, sizeof pw);
        } else if (s_path(p->p1, "%s/in_voltage%d_input", chip, ch) < 0 ||
                   s_path(p->p2, "%s/in_current%d_input", chip, ch) < 0) {
            continue;
        }
        if (s_rail_ok(src, p, power_file) == 0)
            src->nparts++;
    }
}

static int s_part_index(const bs__source_t *src, const char *name)
{
    for (int i = 0; i < src->nparts; i++)
        if (!strcmp(src->part[i].name, name))
            return i;
    return -1;
}

/* The Jetson total: VDD_IN or POM_5V_IN; else AGX Orin's three rails; else every rail. */
static void s_jetson_total(bs__source_t *src)
{
    static const char *const whole[] = {"VDD_IN", "POM_5V_IN"};
    static const char *const agx[] = {"VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0"};
    for (size_t k = 0; k < 2; k++) {
        int i = s_part_index(src, whole[k]);
        if (i >= 0) {
            src->part[i].in_total = 1;
            s_total_from(src);
            return;
        }
    }
    int idx[3], all = 1;
    for (int k = 0; k < 3; k++)
        all &= (idx[k] = s_part_index(src, agx[k])) >= 0;
    for (int i = 0; i < src->nparts; i++)
        src->part[i].in_total = !all;
    if (all)
        for (int k = 0; k < 3; k++)
            src->part[idx[k]].in_total = 1;
    s_total_from(src);
}

static void s_rails_done(bs__source_t *src, const char *what)
{
    if (src->nparts == 0) {
        src->readable = 0;
        snprintf(src->reason, sizeof src->reason, "no readable %s rail: %.200s", what,
                 src->notes[0] ? src->notes : "none found");
        return;
    }
    src->readable = 1;
    s_jetson_total(src);
}

int bs__discover_jetson(bs_sensor_set_t *set, const bs_sensor_opts_t *o)
{
    double period = (o->period_ms ? o->period_ms : 50) / 1000.0;
    char drv[BS__SPATH], sub[BS__SPATH], chip[BS__SPATH];
    char **devs = NULL, **hw = NULL;
    int ndev = 0, nhw = 0, rc;
    bs__source_t *src = NULL;

    /* JetPack 5/6: the ina3221 hwmon driver */
    snprintf(drv, sizeof drv, "%s/sys/bus/i2c/drivers/ina3221", set->root);
    if ((rc = bs__list_dir(drv, "", &devs, &ndev)) < 0)
        return rc;
    for (int i = 0; i < ndev; i++) {
        if (!strchr(devs[i], '-') || s_path(sub, "%s/%s/hwmon", drv, devs[i]) < 0)
            continue; /* i2c devices are "BUS-ADDR"; skip bind, unbind, uevent, module */
        if ((rc = bs__list_dir(sub, "hwmon", &hw, &nhw)) < 0)
            goto out;
        for (int j = 0; j < nhw; j++) {
            if (!src && !(src = bs__source_add(set, BS__INA3221, "ina3221"))) {
                rc = BS_ENOMEM;
                goto out;
            }
            if (s_path(chip, "%s/%s", sub, hw[j]) == 0)
                s_hwmon_chip(src, chip, devs[i]);
        }
        bs__names_free(hw, nhw);
        hw = NULL;
        nhw = 0;
    }
    bs__names_free(devs, ndev);
    devs = NULL;
    ndev = 0;
    if (!src) { /* the same chips seen through the hwmon class (no i2c driver directory) */
        snprintf(drv, sizeof drv, "%s/sys/class/hwmon", set->root);
        if ((rc = bs__list_dir(drv, "hwmon", &devs, &ndev)) < 0)
            return rc;
        for (int i = 0; i < ndev; i++) {
            char name[32];
            bs_err_t e = {0};
            if (s_path(chip, "%s/%s/name", drv, devs[i]) < 0 ||
                bs__read_text(chip, name, sizeof name, &e) < 0 || strcmp(name, "ina3221"))
                continue;
            if (!src && !(src = bs__source_add(set, BS__INA3221, "ina3221"))) {
                rc = BS_ENOMEM;
                goto out;
            }
            if (s_path(chip, "%s/%s", drv, devs[i]) == 0)
                s_hwmon_chip(src, chip, devs[i]);
        }
        bs__names_free(devs, ndev);
        devs = NULL;
        ndev = 0;
    }
    if (src) {
        bs__copy(src->device, sizeof src->device, drv);
        src->period_s = period;
        s_rails_done(src, "INA3221");
    }

    /* JetPack 4: the ina3221x iio driver */
    src = NULL;
    snprintf(drv, sizeof drv, "%s/sys/bus/i2c/drivers/ina3221x", set->root);
    if ((rc = bs__list_dir(drv, "", &devs, &ndev)) < 0)
        return rc;
    for (int i = 0; i < ndev; i++) {
        if (!strchr(devs[i], '-') || s_path(sub, "%s/%s", drv, devs[i]) < 0)
            continue;
        if ((rc = bs__list_dir(sub, "iio", &hw, &nhw)) < 0)
            goto out;
        for (int j = 0; j < nhw; j++) {
            if (strncmp(hw[j], "iio:device", 10) && strcmp(hw[j], "iio_device"))
                continue;
            if (!src && !(src = bs__source_add(set, BS__IIO, "iio"))) {
                rc = BS_ENOMEM;
                goto out;
            }
            if (s_path(chip, "%s/%s", sub, hw[j]) == 0)
                s_iio_chip(src, chip, devs[i]);
        }
        bs__names_free(hw, nhw);
        hw = NULL;
        nhw = 0;
    }
    if (src) {
        bs__copy(src->device, sizeof src->device, drv);
        src->period_s = period;
        s_rails_done(src, "iio INA3221");
    }
    rc = 0;
out:
    bs__names_free(hw, nhw);
    bs__names_free(devs, ndev);
    return rc;
}

/* ---- battery ------------------------------------------------------------------------------- */

int bs__discover_battery(bs_sensor_set_t *set, const bs_sensor_opts_t *o)
{
    char dir[BS__SPATH], path[BS__SPATH], text[64];
    char **names;
    int n, rc;
    snprintf(dir, sizeof dir, "%s/sys/class/power_supply", set->root);
    if ((rc = bs__list_dir(dir, "", &names, &n)) < 0)
        return rc;
    int pick = -1, any_battery = -1;
    char chargers[8][BS__SPATH];
    int nchargers = 0;
    for (int i = 0; i < n; i++) {
        bs_err_t e = {0};
        if (s_path(path, "%s/%s/type", dir, names[i]) < 0 ||
            bs__read_text(path, text, sizeof text, &e) < 0)
            continue;
        if (strcmp(text, "Battery") != 0) {
            if (nchargers < 8 && s_path(chargers[nchargers], "%s/%s/online", dir, names[i]) == 0 &&
                bs__exists(chargers[nchargers]))
                nchargers++;
            continue;
        }
        if (s_path(path, "%s/%s/scope", dir, names[i]) == 0 &&
            bs__read_text(path, text, sizeof text, &e) == 0 && strcmp(text, "Device") == 0)
            continue; /* a peripheral's battery (mouse, pen), not this device's */
        if (any_battery < 0)
            any_battery = i;
        char cur[BS__SPATH], pw[BS__SPATH];
        int has = (s_path(cur, "%s/%s/current_now", dir, names[i]) == 0 && bs__exists(cur)) ||
                  (s_path(pw, "%s/%s/power_now", dir, names[i]) == 0 && bs__exists(pw));
        if (has && (pick < 0 || strcmp(names[i], "battery") == 0))
            pick = i;
    }
    if (pick < 0 && any_battery < 0) {
        bs__names_free(names, n);
        return 0;
    }
    bs__source_t *src = bs__source_add(set, BS__BATTERY, "battery");
    if (!src) {
        bs__names_free(names, n);
        return BS_ENOMEM;
    }
    int at = pick >= 0 ? pick : any_battery;
    if (s_path(src->device, "%s/%s", dir, names[at]) < 0) { /* cannot happen: type fitted */
        bs__copy(src->reason, sizeof src->reason, "power_supply path too long");
        bs__names_free(names, n);
        return 0;
    }
    src->period_s = (o->period_ms ? o->period_ms : 250) / 1000.0;
    src->bat_sign = o->battery_sign;
    src->nchargers = nchargers;
    memcpy(src->charger, chargers, sizeof chargers);
    bs__part_t *p = &src->part[0];
    snprintf(p->name, sizeof p->name, "%.40s", names[at]);
    p->in_total = 1;
    src->nparts = 1;
    bs__copy(src->total_from, sizeof src->total_from, p->name);
    if (s_path(src->bat_status, "%s/status", src->device) < 0 || !bs__exists(src->bat_status))
        src->bat_status[0] = '\0';
    bs__names_free(names, n);
    if (pick < 0) {
        snprintf(src->reason, sizeof src->reason, "%.200s: neither current_now nor power_now",
                 src->device);
        return 0;
    }
    if (s_path(p->p1, "%s/current_now", src->device) == 0 && bs__exists(p->p1)) {
        if (s_path(p->p2, "%s/voltage_now", src->device) < 0 || !bs__exists(p->p2)) {
            snprintf(src->reason, sizeof src->reason, "%.200s: current_now without voltage_now",
                     src->device);
            return 0;
        }
    } else {
        s_path(p->p1, "%s/power_now", src->device);
        p->p2[0] = '\0';
        src->bat_power_now = 1;
    }
    bs_err_t e = {0};
    double raw;
    long long uv;
    if (bs__battery_raw(src, &raw, &e) < 0 || (p->p2[0] && bs__read_i64(p->p2, &uv, &e) < 0) ||
        bs__battery_check(src, &e) < 0) {
        bs__copy(src->reason, sizeof src->reason, e.msg);
        return 0;
    }
    src->readable = 1;
    return 0;
}

int bs__battery_check(const bs__source_t *src, bs_err_t *err)
{
    char text[64];
    for (int i = 0; i < src->nchargers; i++) {
        long long online;
        bs_err_t e = {0};
        if (bs__read_i64(src->charger[i], &online, &e) == 0 && online == 1)
            return bs_err_set(err, BS_EAGAIN,
                              "charger connected (%s = 1): the battery gauge does not measure "
                              "the device while it charges",
                              src->charger[i]);
    }
    bs_err_t e = {0};
    if (src->bat_status[0] && bs__read_text(src->bat_status, text, sizeof text, &e) == 0 &&
        strcmp(text, "Discharging") != 0 && strcmp(text, "Unknown") != 0)
        return bs_err_set(err, BS_EAGAIN,
                          "battery status is \"%.20s\", not \"Discharging\" (%s): a charger is "
                          "connected",
                          text, src->bat_status);
    return 0;
}

int bs__battery_raw(const bs__source_t *src, double *raw, bs_err_t *err)
{
    long long v;
    int rc = bs__read_i64(src->part[0].p1, &v, err);
    if (rc < 0)
        return rc;
    *raw = (double)v;
    return 0;
}

/* ---- reads --------------------------------------------------------------------------------- */

int bs__rapl_read(const bs__source_t *src, uint64_t *vals, bs_err_t *err)
{
    for (int i = 0; i < src->nparts; i++) {
        int rc = bs__read_u64(src->part[i].p1, &vals[i], err);
        if (rc < 0)
            return rc;
        if (src->part[i].max && vals[i] > src->part[i].max)
            return bs_err_set(err, BS_EDATA, "%s: %llu above max_energy_range_uj %llu",
                              src->part[i].p1, (unsigned long long)vals[i],
                              (unsigned long long)src->part[i].max);
    }
    return 0;
}

int bs__read_power(const bs__source_t *src, double *watts, bs_err_t *err)
{
    int rc;
    if (src->kind == BS__BATTERY) {
        if ((rc = bs__battery_check(src, err)) < 0)
            return rc;
        if (src->bat_sign == 0)
            return bs_err_set(err, BS_EINVAL, "battery: sign not calibrated");
        double raw, w;
        if ((rc = bs__battery_raw(src, &raw, err)) < 0)
            return rc;
        if (src->bat_power_now) {
            w = src->bat_sign * raw * 1e-6;
        } else {
            long long uv;
            if ((rc = bs__read_i64(src->part[0].p2, &uv, err)) < 0)
                return rc;
            if (uv <= 0)
                return bs_err_set(err, BS_EDATA, "%s: voltage %lld uV is not positive",
                                  src->part[0].p2, uv);
            w = src->bat_sign * raw * (double)uv * 1e-12;
        }
        if (w < 0)
            return bs_err_set(err, BS_EDATA,
                              "battery: negative power %.3f W (raw %.0f, calibrated sign %+d): "
                              "charging, or the sign calibration is stale",
                              w, raw, src->bat_sign);
        watts[0] = w;
        return 0;
    }
    if (src->kind != BS__INA3221 && src->kind != BS__IIO)
        return bs_err_set(err, BS_EINVAL, "%s is not a power source", src->name);
    for (int i = 0; i < src->nparts; i++) {
        const bs__part_t *p = &src->part[i];
        long long a, b = 0;
        if ((rc = bs__read_i64(p->p1, &a, err)) < 0)
            return rc;
        if (p->p2[0] && (rc = bs__read_i64(p->p2, &b, err)) < 0)
            return rc;
        if (a < 0 || b < 0)
            return bs_err_set(err, BS_EDATA, "rail %s: negative %s (%lld)", p->name,
                              a < 0 ? (p->p2[0] ? "voltage" : "power") : "current", a < 0 ? a : b);
        watts[i] = p->p2[0] ? (double)a * (double)b * 1e-6 : (double)a * 1e-3;
    }
    return 0;
}

/*
 * bs_sensor_nvml.c - the "nvml" source: each NVIDIA GPU's total-energy counter.
 *
 * NVML comes with the GPU driver, so it is loaded at run time with dlopen("libnvidia-ml.so.1")
 * and never linked: a machine without the library simply has no "nvml" source. The functions
 * used, with the signatures of nvml.h: nvmlInit_v2(void), nvmlShutdown(void),
 * nvmlDeviceGetCount_v2(unsigned int *), nvmlDeviceGetHandleByIndex_v2(unsigned int,
 * nvmlDevice_t *), nvmlDeviceGetName(nvmlDevice_t, char *, unsigned int),
 * nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t, unsigned long long *) - millijoules since
 * the driver was last reloaded, Volta and newer (older GPUs answer NVML_ERROR_NOT_SUPPORTED and
 * are left out) - and nvmlErrorString(nvmlReturn_t). nvmlReturn_t is an int-sized enum with
 * NVML_SUCCESS = 0; nvmlDevice_t is an opaque pointer. NVML refreshes the counter every 20 to
 * 100 ms, which is the update interval windows are judged against.
 */
#include "bs_sensor_internal.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "bs_alloc.h"
#include "bs_log.h"

#define S_NVML_SUCCESS 0
#define S_NVML_ERROR_NOT_SUPPORTED 3

struct bs__nvml {
    void *lib;  /* dlopen handle */
    int inited; /* nvmlInit_v2 succeeded: nvmlShutdown at unload */
    int (*init)(void);
    int (*shutdown)(void);
    int (*count)(unsigned int *);
    int (*handle)(unsigned int, void **);
    int (*name)(void *, char *, unsigned int);
    int (*energy)(void *, unsigned long long *);
    const char *(*errstr)(int);
};

static const char *s_errstr(const bs__nvml_t *nv, int rc)
{
    const char *s = nv->errstr ? nv->errstr(rc) : NULL;
    return s ? s : "NVML error";
}

/* dlsym into a function pointer (POSIX guarantees the conversion works). */
#define S_SYM(nv, field, sym) (*(void **)(&(nv)->field) = dlsym((nv)->lib, sym))

void bs__nvml_unload(bs__nvml_t *nv)
{
    if (!nv)
        return;
    if (nv->inited && nv->shutdown)
        nv->shutdown();
    if (nv->lib)
        dlclose(nv->lib);
    bs_free(nv);
}

int bs__discover_nvml(bs_sensor_set_t *set, const bs_sensor_opts_t *o)
{
    if (o->no_nvml)
        return 0;
    const char *libname = o->nvml_library;
    if (!libname) {
        if (set->root[0]) /* a fake root: the real GPU would make tests depend on the host */
            return 0;
        libname = "libnvidia-ml.so.1";
    }
    void *lib = dlopen(libname, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        const char *why = dlerror();
        BS_DEBUG("sensors", "nvml: %s not loaded: %s", libname, why ? why : "?");
        return 0;
    }
    bs__nvml_t *nv = bs_calloc(1, sizeof *nv);
    if (!nv) {
        dlclose(lib);
        return BS_ENOMEM;
    }
    nv->lib = lib;
    bs__source_t *src = bs__source_add(set, BS__NVML, "nvml");
    if (!src) {
        bs__nvml_unload(nv);
        return BS_ENOMEM;
    }
    set->nvml = nv;
    src->nvml = nv;
    bs__copy(src->device, sizeof src->device, libname);
    src->counter = 1;
    src->unit_j = 1e-3;
    src->update_s = 0.1;
    src->period_s = (o->counter_poll_ms ? o->counter_poll_ms : 1000) / 1000.0;
    S_SYM(nv, errstr, "nvmlErrorString");
    static const char *const need[] = {"nvmlInit_v2", "nvmlShutdown", "nvmlDeviceGetCount_v2",
                                       "nvmlDeviceGetHandleByIndex_v2",
                                       "nvmlDeviceGetTotalEnergyConsumption"};
    int ok = S_SYM(nv, init, need[0]) && S_SYM(nv, shutdown, need[1]) &&
             S_SYM(nv, count, need[2]) && S_SYM(nv, handle, need[3]) && S_SYM(nv, energy, need[4]);
    S_SYM(nv, name, "nvmlDeviceGetName");
    if (!ok) {
        snprintf(src->reason, sizeof src->reason, "%s lacks an NVML function this needs", libname);
        return 0;
    }
    int rc = nv->init();
    if (rc != S_NVML_SUCCESS) {
        snprintf(src->reason, sizeof src->reason, "nvmlInit_v2: %s (%d)", s_errstr(nv, rc), rc);
        return 0;
    }
    nv->inited = 1;
    unsigned int count = 0;
    if ((rc = nv->count(&count)) != S_NVML_SUCCESS) {
        snprintf(src->reason, sizeof src->reason, "nvmlDeviceGetCount_v2: %s (%d)",
                 s_errstr(nv, rc), rc);
        return 0;
    }
    for (unsigned int i = 0; i < count; i++) {
        void *dev = NULL;
        unsigned long long mj;
        if (src->nparts == BS_SENSOR_MAX_PARTS) {
            bs__note(src, "GPU %u and later: more than %d GPUs, left out", i, BS_SENSOR_MAX_PARTS);
            break;
        }
        if ((rc = nv->handle(i, &dev)) != S_NVML_SUCCESS) {
            bs__note(src, "GPU %u left out: %s", i, s_errstr(nv, rc));
            continue;
        }
        if ((rc = nv->energy(dev, &mj)) != S_NVML_SUCCESS) {
            bs__note(src, "GPU %u left out: %s%s", i, s_errstr(nv, rc),
                     rc == S_NVML_ERROR_NOT_SUPPORTED ? " (total energy needs Volta or newer)"
                                                      : "");
            continue;
        }
        char name[96] = "";
        if (!nv->name || nv->name(dev, name, sizeof name) != S_NVML_SUCCESS)
            name[0] = '\0';
        name[sizeof name - 1] = '\0';
        bs__part_t *p = &src->part[src->nparts++];
        memset(p, 0, sizeof *p);
        snprintf(p->name, sizeof p->name, "GPU%u%s%.32s", i, name[0] ? " " : "", name);
        p->handle = dev;
        p->in_total = 1;
        size_t len = strlen(src->total_from);
        snprintf(src->total_from + len, sizeof src->total_from - len, "%sGPU%u", len ? "+" : "",
                 i);
    }
    if (src->nparts == 0) {
        snprintf(src->reason, sizeof src->reason, "%s",
                 count ? "no GPU reports total energy" : "NVML sees no GPU");
        return 0;
    }
    src->readable = 1;
    return 0;
}

int bs__nvml_read(const bs__source_t *src, uint64_t *vals, bs_err_t *err)
{
    const bs__nvml_t *nv = src->nvml;
    if (!nv || !nv->inited)
        return bs_err_set(err, BS_EUNSUPPORTED, "nvml: not loaded");
    for (int i = 0; i < src->nparts; i++) {
        unsigned long long mj = 0;
        int rc = nv->energy(src->part[i].handle, &mj);
        if (rc != S_NVML_SUCCESS)
            return bs_err_set(err, BS_EIO, "nvml: %s: nvmlDeviceGetTotalEnergyConsumption: %s",
                              src->part[i].name, s_errstr(nv, rc));
        vals[i] = (uint64_t)mj;
    }
    return 0;
}

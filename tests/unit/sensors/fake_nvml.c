/*
 * fake_nvml.c - a stand-in for libnvidia-ml.so.1, loaded by test_sensors through the path in
 * bs_sensor_opts_t.nvml_library (never linked).
 *
 * It exports the NVML functions bs_sensor_nvml.c resolves, with nvml.h's signatures (an int
 * for nvmlReturn_t, void * for nvmlDevice_t). Two GPUs: GPU 0 draws a constant 10 W - its
 * total-energy counter is 10 mJ per millisecond of CLOCK_MONOTONIC - and GPU 1 is older than
 * Volta and answers NVML_ERROR_NOT_SUPPORTED (3). Environment knobs for the tests:
 * FAKE_NVML_INIT_RC makes nvmlInit_v2 return that code; FAKE_NVML_LOST makes the energy call
 * fail with NVML_ERROR_GPU_IS_LOST (15).
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static int s_gpu[2];

int nvmlInit_v2(void)
{
    const char *e = getenv("FAKE_NVML_INIT_RC");
    return e ? atoi(e) : 0;
}

int nvmlShutdown(void)
{
    return 0;
}

int nvmlDeviceGetCount_v2(unsigned int *count)
{
    *count = 2;
    return 0;
}

int nvmlDeviceGetHandleByIndex_v2(unsigned int index, void **device)
{
    if (index >= 2)
        return 2; /* NVML_ERROR_INVALID_ARGUMENT */
    *device = &s_gpu[index];
    return 0;
}

int nvmlDeviceGetName(void *device, char *name, unsigned int length)
{
    snprintf(name, length, "Fake GPU %d", device == &s_gpu[0] ? 0 : 1);
    return 0;
}

int nvmlDeviceGetTotalEnergyConsumption(void *device, unsigned long long *energy)
{
    if (device != &s_gpu[0])
        return 3; /* NVML_ERROR_NOT_SUPPORTED */
    if (getenv("FAKE_NVML_LOST"))
        return 15; /* NVML_ERROR_GPU_IS_LOST */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    unsigned long long ms =
        (unsigned long long)ts.tv_sec * 1000ULL + (unsigned long long)ts.tv_nsec / 1000000ULL;
    *energy = 5000000ULL + ms * 10ULL;
    return 0;
}

const char *nvmlErrorString(int result)
{
    switch (result) {
    case 0:
        return "Success";
    case 3:
        return "Not Supported";
    case 15:
        return "GPU is lost";
    default:
        return "Unknown Error";
    }
}

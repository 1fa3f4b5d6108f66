/* cpu_backend.c: the CPU backend: feature detection, the tactic list
** (optimized tactics from cpu_tactics.c, the reference kernel last as the
** always-available fallback) and lookup by name. */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include "../backend.h"
#include "cpu_gemm.h"
#include "cpu_tactics.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <unistd.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#endif
#if defined(__linux__)
#include <sys/syscall.h>
#endif

static int g_threads = 1;

/* Reads one integer from a sysfs file; -1 when it cannot. */
static long read_long(const char *path) {
    FILE *f = fopen(path, "r");
    long v = -1;
    if (!f) return -1;
    if (fscanf(f, "%ld", &v) != 1) v = -1;
    fclose(f);
    return v;
}

/* Physical cores this process may run on: the CPUs of its affinity mask
** (taskset, cgroup cpusets) counted once per (package, core) so SMT
** siblings, which share the FMA units, count once. Falls back to the mask's
** CPU count, then to the online count, when the topology is not readable. */
int cpu_physical_cores(void) {
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    if (online < 1) online = 1;
#if defined(__linux__)
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0) return (int)online;
    int allowed = CPU_COUNT(&set), n = 0;
    if (allowed < 1) return (int)online;
    long keys[CPU_SETSIZE];
    for (int c = 0; c < CPU_SETSIZE; c++) {
        if (!CPU_ISSET(c, &set)) continue;
        char path[128];
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/core_id", c);
        long core = read_long(path);
        snprintf(path, sizeof path,
                 "/sys/devices/system/cpu/cpu%d/topology/physical_package_id", c);
        long pkg = read_long(path);
        if (core < 0 || pkg < 0) return allowed;
        long key = pkg * 1048576 + core;
        bool seen = false;
        for (int k = 0; k < n && !seen; k++) seen = keys[k] == key;
        if (!seen) keys[n++] = key;
    }
    return n > 0 ? n : allowed;
#else
    return (int)online;
#endif
}

void kiln_set_num_threads(int n) {
    if (n <= 0) n = cpu_physical_cores();
    if (n < 1) n = 1;
    g_threads = n > 256 ? 256 : n;
}

int kiln_get_num_threads(void) { return g_threads; }

static int ref_run(ref_ctx *c) {
    ref_kernel_fn fn = ref_kernel_get(c->node->op);
    if (!fn) return ref_fail(c, "no reference kernel for %s", c->node->op_type);
    return fn(c);
}

static const kiln_tactic k_ref = {
    "ref", OP_NONE, 0, 0, NULL, NULL, ref_run, NULL,
};

/* KILN_CPU_ISA=avx2,fma (names as kiln_isa_names prints them, or
** "baseline") hides every other feature: builds and runs then behave as on
** a machine with only those, to measure or test the narrower kernels (an
** AVX2-only machine's INT8 path on a VNNI one, say). */
static unsigned isa_env_mask(void) {
    static const char *const names[] = {"avx2", "fma", "avx512f", "avx512bw", "avx512vnni",
                                        "amxint8"};
    const char *env = getenv("KILN_CPU_ISA");
    if (!env || !env[0]) return ~0u;
    unsigned mask = 0;
    for (unsigned i = 0; i < KILN_ARRAY_LEN(names); i++) {
        size_t n = strlen(names[i]);
        for (const char *p = env; (p = strstr(p, names[i])) != NULL; p += n)
            if ((p == env || p[-1] == ',') && (p[n] == 0 || p[n] == ','))
                mask |= 1u << i;
    }
    return mask;
}

/* AMX: the CPU has AMX-TILE and AMX-INT8 (CPUID.(7,0):EDX bits 24, 25),
** the OS saves the tile state (XCR0 bits 17, 18: XTILECFG, XTILEDATA), and
** Linux grants this process the tile data state, which it hands out only
** on request (ARCH_REQ_XCOMP_PERM); without the grant the first tile
** instruction faults. Asked once per process; the grant covers every
** thread. */
static bool g_amx;
static pthread_once_t g_amx_once = PTHREAD_ONCE_INIT;

static void amx_detect(void) {
#if defined(__x86_64__) && defined(__GNUC__) && defined(__linux__) && defined(SYS_arch_prctl)
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(d & (1u << 24)) || !(d & (1u << 25)))
        return;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return; /* OSXSAVE */
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    (void)hi;
    if ((lo & (3u << 17)) != (3u << 17)) return;
    enum { ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 };
    g_amx = syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
#endif
}

static unsigned cpu_host_isa(void) {
    unsigned isa = 0;
    pthread_once(&g_amx_once, amx_detect);
    if (g_amx) isa |= KILN_ISA_AMXINT8;
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) isa |= KILN_ISA_AVX2;
    if (__builtin_cpu_supports("fma")) isa |= KILN_ISA_FMA;
    if (__builtin_cpu_supports("avx512f")) isa |= KILN_ISA_AVX512F;
    if (__builtin_cpu_supports("avx512bw")) isa |= KILN_ISA_AVX512BW;
    if (__builtin_cpu_supports("avx512vnni")) isa |= KILN_ISA_AVX512VNNI;
#endif
    return isa & isa_env_mask();
}

static int cpu_tactics_for(const ir_node *n, const ir_type *const *in,
                           const kiln_tactic **out, int max) {
    int k = 0;
    unsigned host = cpu_host_isa();
    for (const kiln_tactic *const *t = cpu_tactic_table; *t && k < max - 1; t++) {
        if ((*t)->op != n->op || ((*t)->isa & ~host)) continue;
        if ((*t)->supports && !(*t)->supports(n, in)) continue;
        out[k++] = *t;
    }
    if (k < max && ref_kernel_get(n->op)) out[k++] = &k_ref;
    return k;
}

static const kiln_tactic *cpu_find(const char *name) {
    if (strcmp(name, "ref") == 0) return &k_ref;
    for (const kiln_tactic *const *t = cpu_tactic_table; *t; t++)
        if (strcmp((*t)->name, name) == 0) return *t;
    return NULL;
}

#ifdef CPU_HAVE_EVICT
#define CPU_EVICT cpu_evict
#else
#define CPU_EVICT NULL
#endif

static const kiln_backend_ops k_cpu = {
    "cpu", cpu_host_isa, cpu_tactics_for, cpu_find, NULL, CPU_EVICT,
};

const kiln_backend_ops *kiln_backend_cpu(void) { return &k_cpu; }

const char *kiln_isa_names(unsigned isa, char *buf, size_t n) {
    static const char *const names[] = {"avx2", "fma", "avx512f", "avx512bw",
                                         "avx512vnni", "amxint8"};
    size_t k = 0;
    buf[0] = 0;
    for (unsigned i = 0; i < KILN_ARRAY_LEN(names); i++)
        if (isa & (1u << i)) {
            int w = snprintf(buf + k, n - k, "%s%s", k ? " " : "", names[i]);
            if (w < 0 || (size_t)w >= n - k) break;
            k += (size_t)w;
        }
    if (!k) snprintf(buf, n, "baseline");
    return buf;
}

/* cpu_backend.c: the CPU backend: feature detection, the tactic list
** (optimized tactics from cpu_tactics.c, the reference kernel last as the
** always-available fallback) and lookup by name. */
#include "../backend.h"
#include "cpu_tactics.h"

#include <stdio.h>
#include <unistd.h>

static int g_threads = 1;

void kiln_set_num_threads(int n) {
    if (n <= 0) {
        long k = sysconf(_SC_NPROCESSORS_ONLN);
        n = k > 0 ? (int)k : 1;
    }
    g_threads = n > 256 ? 256 : n;
}

int kiln_get_num_threads(void) { return g_threads; }

static int ref_run(ref_ctx *c) {
    ref_kernel_fn fn = ref_kernel_get(c->node->op);
    if (!fn) return ref_fail(c, "no reference kernel for %s", c->node->op_type);
    return fn(c);
}

static const kiln_tactic k_ref = {
    "ref", OP_NONE, 0, 0, NULL, NULL, ref_run,
};

/* KILN_CPU_ISA=avx2,fma (names as kiln_isa_names prints them, or
** "baseline") hides every other feature: builds and runs then behave as on
** a machine with only those, to measure or test the narrower kernels (an
** AVX2-only machine's INT8 path on a VNNI one, say). */
static unsigned isa_env_mask(void) {
    static const char *const names[] = {"avx2", "fma", "avx512f", "avx512bw", "avx512vnni"};
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

static unsigned cpu_host_isa(void) {
    unsigned isa = 0;
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

static const kiln_backend_ops k_cpu = {
    "cpu", cpu_host_isa, cpu_tactics_for, cpu_find, NULL,
};

const kiln_backend_ops *kiln_backend_cpu(void) { return &k_cpu; }

const char *kiln_isa_names(unsigned isa, char *buf, size_t n) {
    static const char *const names[] = {"avx2", "fma", "avx512f", "avx512bw",
                                         "avx512vnni"};
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

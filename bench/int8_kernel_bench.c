/* int8_kernel_bench.c: CPU time of one QLinearConv layer on each INT8 conv
** tactic this machine can run (1 thread, CLOCK_THREAD_CPUTIME_ID, so a
** loaded machine disturbs it little), for the per-layer table in
** bench/RESULTS.md. Activations and weights are all 1 (7-bit weights, so
** the 7-bit AVX2 tactic runs too; speed does not depend on the values).
**
** build (after building the static library in build/):
**   cc -O2 -Isrc -Iinclude bench/int8_kernel_bench.c build/lib/libkiln.a \
**      -lm -lpthread -ldl -o build/int8_kernel_bench
** usage: build/int8_kernel_bench C H M K STRIDE [NAME_PART]   (square input,
** pad K/2; NAME_PART: only the tactics whose name contains it) */
#include "backends/cpu/cpu_int8.h"
#include "backends/cpu/cpu_tactics.h"
#include "ir/ir_edit.h"
#include "kiln.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double cpu_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static kiln_tensor *tens(kiln_dtype d, int rank, const int64_t *dims, int fill) {
    kiln_tensor *t;
    if (tensor_new(d, rank, dims, &t)) exit(1);
    memset(t->data, fill, t->nbytes);
    return t;
}

int main(int argc, char **argv) {
    if (argc != 6 && argc != 7) {
        fprintf(stderr, "usage: %s C H M K STRIDE [NAME_PART]\n", argv[0]);
        return 2;
    }
    int64_t C = atoll(argv[1]), H = atoll(argv[2]), M = atoll(argv[3]), k = atoll(argv[4]);
    int64_t s = atoll(argv[5]);
    kiln_set_num_threads(1);
    ir_model *m = ir_model_new();
    if (!m) return 1;
    m->opset = 17;
    ir_graph *g = ir_graph_new(m, NULL);
    m->graph = g;
    int64_t OH = (H + 2 * (k / 2) - k) / s + 1;
    int64_t xd[4] = {1, C, H, H}, wd[4] = {M, C, k, k}, yd[4] = {1, M, OH, OH};
    kiln_tensor *in[8] = {tens(KILN_DTYPE_UINT8, 4, xd, 1), tens(KILN_DTYPE_FLOAT32, 0, NULL, 0),
                          tens(KILN_DTYPE_UINT8, 0, NULL, 0), tens(KILN_DTYPE_INT8, 4, wd, 1),
                          tens(KILN_DTYPE_FLOAT32, 0, NULL, 0), tens(KILN_DTYPE_INT8, 0, NULL, 0),
                          tens(KILN_DTYPE_FLOAT32, 0, NULL, 0), tens(KILN_DTYPE_UINT8, 0, NULL, 0)};
    ((float *)in[1]->data)[0] = 0.01f;
    ((float *)in[4]->data)[0] = 0.01f;
    ((float *)in[6]->data)[0] = 0.1f;
    ir_node *n = ir_edit_add_node(g, OP_QLinearConv, 8, 1, NULL);
    int64_t st[2] = {s, s}, pd[4] = {k / 2, k / 2, k / 2, k / 2};
    if (!n || !ir_edit_set_ints(n, "strides", st, 2) || !ir_edit_set_ints(n, "pads", pd, 4))
        return 1;
    kiln_tensor *y = tens(KILN_DTYPE_UINT8, 4, yd, 0);
    const kiln_tactic *ts[8] = {&cpu_t_qconv_amx, &cpu_t_qconv_vnni, &cpu_t_qconv_vnni_c4,
                                &cpu_t_qconv_avx2_wino, &cpu_t_qconv_avx2_w16,
                                &cpu_t_qconv_avx2, &cpu_t_qconv_avx2_7bit, &cpu_t_qconv_c};
    unsigned host = kiln_backend_cpu()->host_isa();
    double macs = (double)M * (double)C * (double)(k * k) * (double)(OH * OH);
    for (int i = 0; i < 8; i++) {
        if ((ts[i]->isa & ~host) || (argc == 7 && !strstr(ts[i]->name, argv[6]))) continue;
        /* Winograd: 3x3 stride 1 only */
        if (ts[i] == &cpu_t_qconv_avx2_wino && (k != 3 || s != 1)) continue;
        const ir_type *tin[8];
        ir_type types[8];
        for (int j = 0; j < 8; j++) {
            types[j].dtype = in[j]->dtype;
            types[j].rank = in[j]->rank;
            memcpy(types[j].dims, in[j]->dims, sizeof types[j].dims);
            tin[j] = &types[j];
        }
        size_t wsz = ts[i]->workspace ? ts[i]->workspace(n, tin) : 0;
        void *ws = wsz ? kiln_aligned_alloc(wsz) : NULL;
        ref_ctx c;
        memset(&c, 0, sizeof c);
        c.node = n;
        c.n_in = 8;
        c.in = (const kiln_tensor *const *)in;
        c.n_out = 1;
        kiln_tensor *outs[1] = {y};
        c.out = outs;
        c.ws = ws;
        c.ws_size = wsz;
        /* prepared weights, as the engine stores them */
        void *blob = NULL;
        size_t blob_n = 0;
        const kiln_tensor *cin[8] = {0};
        cin[3] = in[3];
        if (ts[i]->prepare && ts[i]->prepare(n, tin, cin, &blob, &blob_n)) return 1;
        c.blob = blob;
        c.blob_size = blob_n;
        if (ts[i]->run(&c)) {
            fprintf(stderr, "%s: %s\n", ts[i]->name, c.err);
            return 1;
        }
        int reps = macs > 1e8 ? 5 : 20;
        if (argc == 7) reps *= 10;
        double t0 = cpu_ms();
        for (int r = 0; r < reps; r++) ts[i]->run(&c);
        double dt = (cpu_ms() - t0) / reps;
        printf("%-36s C%lld H%lld M%lld k%lld s%lld: %8.3f ms, %6.1f GMAC/s\n", ts[i]->name,
               (long long)C, (long long)H, (long long)M, (long long)k, (long long)s, dt,
               macs / dt / 1e6);
        kiln_aligned_free(ws);
        kiln_aligned_free(blob);
    }
    for (int j = 0; j < 8; j++) tensor_free(in[j]);
    tensor_free(y);
    ir_model_free(m);
    return 0;
}

/* nchwc_conv_bench.c: thread CPU time of one blocked (NchwcConv) layer on
** the AVX-512 tactics, 1 thread, under settings given as environment
** strings and taken in turn (interleaved rounds in one process, so a loaded
** machine shifts every setting alike; CLOCK_THREAD_CPUTIME_ID leaves out
** the time other processes hold the core). Prints, per setting, the least
** and the median over the rounds of the mean time of a call.
**
** build (after building the static library in build/):
**   cc -O2 -Isrc -Iinclude bench/nchwc_conv_bench.c build/lib/libkiln.a \
**      -lm -lpthread -ldl -o build/nchwc_conv_bench
** usage: build/nchwc_conv_bench C H W M K STRIDE DW ROUNDS [SETTING...]
**   (pad K/2 all round; DW 1: depthwise, M = C; a SETTING is
**   "VAR=VALUE,VAR=VALUE", "-" for none; default one setting "-")
** A setting picks the tactic: KILN_BENCH_TACTIC=NAME, else the tap-major
** direct tactic for convs of several taps (KILN_CPU_WTAP=0: the tactic on
** W as it is), run on its prepared blob as in an engine.
** KILN_BENCH_COLD=1 in a setting evicts the weights and the blob from the
** caches before every call (as the builder's cold timing does), each call
** timed alone. KILN_BENCH_AVX2=1 in the environment: block 8, the AVX2
** tactics; KILN_BENCH_N=8: batch 8. */
#include "backends/cpu/cpu_tactics.h"
#include "ir/ir_edit.h"
#include "kiln.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double cpu_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static kiln_tensor *tens(int rank, const int64_t *dims) {
    kiln_tensor *t;
    if (tensor_new(KILN_DTYPE_FLOAT32, rank, dims, &t)) exit(1);
    float *p = t->data;
    for (int64_t i = 0; i < tensor_numel(t); i++) p[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
    return t;
}

/* Applies "A=1,B=2" (or unsets what the previous setting set). */
static void apply(const char *set, bool on) {
    if (!strcmp(set, "-")) return;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", set);
    for (char *kv = strtok(buf, ","); kv; kv = strtok(NULL, ",")) {
        char *eq = strchr(kv, '=');
        if (!eq) continue;
        *eq = 0;
        if (on) setenv(kv, eq + 1, 1);
        else unsetenv(kv);
    }
}

static int cmpd(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc < 9) {
        fprintf(stderr, "usage: %s C H W M K STRIDE DW ROUNDS [SETTING...]\n", argv[0]);
        return 2;
    }
    int64_t C = atoll(argv[1]), H = atoll(argv[2]), W = atoll(argv[3]), M = atoll(argv[4]);
    int64_t k = atoll(argv[5]), s = atoll(argv[6]);
    bool dw = atoi(argv[7]) != 0;
    int rounds = atoi(argv[8]);
    if (dw) M = C;
    const bool avx2 = getenv("KILN_BENCH_AVX2") && !strcmp(getenv("KILN_BENCH_AVX2"), "1");
    const int64_t b = avx2 ? 8 : 16, Cb = (C + b - 1) / b, Mb = (M + b - 1) / b, p = k / 2;
    int64_t OH = (H + 2 * p - k) / s + 1, OW = (W + 2 * p - k) / s + 1;
    kiln_set_num_threads(1);
    ir_model *m = ir_model_new();
    if (!m) return 1;
    m->opset = 17;
    ir_graph *g = ir_graph_new(m, NULL);
    m->graph = g;
    const int64_t N = getenv("KILN_BENCH_N") ? atoll(getenv("KILN_BENCH_N")) : 1;
    int64_t xd[5] = {N, Cb, H, W, b}, wd[5] = {Mb, C, k, k, b}, wdd[4] = {Cb, k, k, b};
    int64_t bd[1] = {Mb * b}, yd[5] = {N, Mb, OH, OW, b};
    kiln_tensor *in[3] = {tens(5, xd), dw ? tens(4, wdd) : tens(5, wd), tens(1, bd)};
    kiln_tensor *y = tens(5, yd);
    ir_node *n = ir_edit_add_node(g, OP_NchwcConv, 3, 1, NULL);
    int64_t ks[2] = {k, k}, st[2] = {s, s}, pd[4] = {p, p, p, p};
    if (!n || !ir_edit_set_ints(n, "kernel_shape", ks, 2) || !ir_edit_set_ints(n, "strides", st, 2) ||
        !ir_edit_set_ints(n, "pads", pd, 4) || !ir_edit_set_int(n, "block", b) ||
        !ir_edit_set_int(n, "in_channels", C) || !ir_edit_set_int(n, "out_channels", M) ||
        !ir_edit_set_int(n, "group", dw ? C : 1))
        return 1;
    const kiln_tactic *tdef = dw ? (avx2 ? &cpu_t_nchwc_dwconv_avx2 : &cpu_t_nchwc_dwconv_avx512)
                               : (avx2 ? &cpu_t_nchwc_conv_avx2 : &cpu_t_nchwc_conv_avx512);
    ref_ctx c;
    memset(&c, 0, sizeof c);
    c.node = n;
    c.opset = 17;
    c.n_in = 3;
    c.in = (const kiln_tensor *const *)in;
    c.n_out = 1;
    kiln_tensor *outs[1] = {y};
    c.out = outs;
    if (tdef->run(&c)) {
        fprintf(stderr, "%s: %s\n", tdef->name, c.err);
        return 1;
    }
    double flops = 2.0 * (double)N * (double)(Mb * b) * (double)(OH * OW) * (double)(k * k) *
                   (double)(dw ? 1 : C);
    /* calls per round: about 2 ms */
    double t0 = cpu_ms();
    tdef->run(&c);
    double one = cpu_ms() - t0;
    int reps = one > 0 ? (int)(2.0 / one) + 1 : 100;
    int ns = argc - 9 > 0 ? argc - 9 : 1;
    const char *const *sets = argc - 9 > 0 ? (const char *const *)argv + 9 : (const char *[]){"-"};
    double *tm = calloc((size_t)(ns * rounds), sizeof *tm);
    const kiln_tactic **ts = calloc((size_t)ns, sizeof *ts);
    void **blobs = calloc((size_t)ns, sizeof *blobs);
    size_t *bsz = calloc((size_t)ns, sizeof *bsz);
    bool *cold = calloc((size_t)ns, sizeof *cold);
    if (!tm || !ts || !blobs || !bsz || !cold) return 1;
    const kiln_backend_ops *be = kiln_backend_cpu();
    for (int si = 0; si < ns; si++) { /* each setting's tactic and blob */
        apply(sets[si], true);
        const char *tn = getenv("KILN_BENCH_TACTIC"), *wt = getenv("KILN_CPU_WTAP");
        const kiln_tactic *tt = tdef;
        if (tn) tt = be->find_tactic(tn);
        else if (!dw && k > 1 && !(wt && !strcmp(wt, "0")))
            tt = avx2 ? &cpu_t_nchwc_conv_taps_avx2 : &cpu_t_nchwc_conv_taps_avx512;
        if (!tt) {
            fprintf(stderr, "no tactic %s\n", tn);
            return 1;
        }
        ts[si] = tt;
        cold[si] = getenv("KILN_BENCH_COLD") && !strcmp(getenv("KILN_BENCH_COLD"), "1");
        if (tt->prepare) {
            const ir_type *tin[3];
            ir_type ty[3];
            for (int i = 0; i < 3; i++) {
                ty[i].dtype = in[i]->dtype, ty[i].rank = in[i]->rank;
                memcpy(ty[i].dims, in[i]->dims, sizeof ty[i].dims);
                tin[i] = &ty[i];
            }
            if (tt->prepare(n, tin, (const kiln_tensor *const *)in, &blobs[si], &bsz[si])) {
                fprintf(stderr, "%s: prepare failed: %s\n", tt->name, kiln_last_error());
                return 1;
            }
        }
        apply(sets[si], false);
    }
    for (int r = 0; r < rounds; r++)
        for (int si = 0; si < ns; si++) {
            apply(sets[si], true);
            const kiln_tactic *t = ts[si];
            c.blob = blobs[si], c.blob_size = bsz[si];
            if (t->run(&c)) {
                fprintf(stderr, "%s: %s\n", t->name, c.err);
                return 1;
            }
            if (cold[si] && be->evict) {
                double sum = 0;
                int cr = reps < 5 ? 5 : reps;
                for (int i = 0; i < cr; i++) {
                    be->evict(in[1]->data, (size_t)in[1]->nbytes);
                    if (blobs[si]) be->evict(blobs[si], bsz[si]);
                    t0 = cpu_ms();
                    t->run(&c);
                    sum += cpu_ms() - t0;
                }
                tm[si * rounds + r] = sum / cr;
            } else {
                t0 = cpu_ms();
                for (int i = 0; i < reps; i++) t->run(&c);
                tm[si * rounds + r] = (cpu_ms() - t0) / reps;
            }
            apply(sets[si], false);
        }
    printf("C%lld %lldx%lld M%lld k%lld s%lld%s:", (long long)C, (long long)H, (long long)W,
           (long long)M, (long long)k, (long long)s, dw ? " dw" : "");
    for (int si = 0; si < ns; si++) {
        double *v = tm + si * rounds;
        qsort(v, (size_t)rounds, sizeof *v, cmpd);
        printf("  [%s %s] min %.4f med %.4f ms %.1f GF/s", sets[si], ts[si]->name, v[0],
               v[rounds / 2], flops / v[0] / 1e6);
    }
    printf("\n");
    for (int si = 0; si < ns; si++) kiln_aligned_free(blobs[si]);
    free(tm), free(ts), free(blobs), free(bsz), free(cold);
    for (int j = 0; j < 3; j++) tensor_free(in[j]);
    tensor_free(y);
    ir_model_free(m);
    return 0;
}

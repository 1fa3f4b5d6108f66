/* py_overhead_c.c: the C side of bench/py_overhead.py. Runs an engine
** built from MODEL (one float input, static shape) N times through the C
** API, doing per call what kiln.Context.run does (set the input shape, bind
** input and output, execute), and prints the nanoseconds per call of the
** fastest of 15 rounds of N calls, in CPU time of the calling thread (the
** machine is shared; wall time would mostly measure the other jobs).
** usage: py_overhead_c MODEL N */
#include <kiln.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    int n = atoi(argv[2]);
    kiln_model *m;
    kiln_builder_config *cfg;
    kiln_engine *e;
    kiln_context *c;
    void *blob;
    size_t size;
    kiln_io_info in, out;
    if (kiln_model_load(argv[1], &m) || kiln_builder_config_create(&cfg) ||
        kiln_build_engine(m, cfg, &blob, &size) || kiln_engine_load_memory(blob, size, &e) ||
        kiln_context_create(e, &c) || kiln_engine_input(e, 0, &in) || kiln_engine_output(e, 0, &out)) {
        fprintf(stderr, "%s\n", kiln_last_error());
        return 1;
    }
    size_t ni = 1, no = 1;
    for (int d = 0; d < in.rank; d++) ni *= (size_t)in.dims[d];
    for (int d = 0; d < out.rank; d++) no *= (size_t)out.dims[d];
    float *x = calloc(ni, sizeof *x), *y = calloc(no, sizeof *y);
    double rounds[15];
    for (int r = 0; r < 15; r++) {
        double t0 = now_ns();
        for (int i = 0; i < n; i++) {
            if (kiln_context_set_input_shape(c, in.name, in.rank, in.dims) ||
                kiln_context_set_tensor(c, in.name, x, ni * sizeof *x) ||
                kiln_context_set_tensor(c, out.name, y, no * sizeof *y) ||
                kiln_context_execute(c)) {
                fprintf(stderr, "%s\n", kiln_last_error());
                return 1;
            }
        }
        rounds[r] = (now_ns() - t0) / n;
    }
    qsort(rounds, 15, sizeof *rounds, cmp);
    printf("%.1f\n", rounds[0]);
    free(x);
    free(y);
    kiln_context_destroy(c);
    kiln_engine_free(e);
    kiln_free(blob);
    kiln_builder_config_destroy(cfg);
    kiln_model_free(m);
    return 0;
}

/* pool_bench.c: per-job cost of the CPU backend's thread pool
** (cpu_pool.c), the dispatch and join overhead every layer pays: jobs back
** to back (workers still spinning, as between the layers of a network),
** of nth empty tasks, nth tasks of about 2 us, or 8 such tasks a thread.
** Prints the mean and best microseconds per job at each thread count.
** On a machine with fewer cores than threads the numbers are scheduler
** noise: compare A/B at thread counts the cores can hold.
**   pool_bench [-n jobs] [threads...] */
#include "../src/backends/cpu/cpu_gemm.h"

#include <stdio.h>
#include <time.h>

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec * 1e-3;
}

static volatile double g_sink;

static void task(void *arg, int64_t t, int tid, void *scratch) {
    (void)tid, (void)scratch;
    int spin = *(const int *)arg;
    double s = (double)t;
    for (int i = 0; i < spin; i++) s = s * 1.0000001 + 1e-9;
    g_sink = s;
}

static void run(int nth, int per_thread, int spin, int jobs) {
    double best = 1e30, t0 = now_us();
    for (int j = 0; j < jobs; j++) {
        double a = now_us();
        cpu_parallel_for((int64_t)nth * per_thread, nth, 0, NULL, task, &spin);
        double d = now_us() - a;
        if (d < best) best = d;
    }
    double mean = (now_us() - t0) / jobs;
    printf("threads %2d  %2d tasks/thread  spin %5d: mean %8.2f us  best %8.2f us per job\n",
           nth, per_thread, spin, mean, best);
}

int main(int argc, char **argv) {
    int threads[16], n = 0, jobs = 20000;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-n") && i + 1 < argc) jobs = atoi(argv[++i]);
        else if (n < 16) threads[n++] = atoi(argv[i]);
    }
    if (!n) threads[n++] = 2;
    for (int i = 0; i < n; i++) {
        int th = threads[i] < 1 ? 1 : threads[i];
        run(th, 1, 0, jobs);         /* empty: the caller takes every task */
        run(th, 1, 2500, jobs);      /* one ~2 us task a thread: wake + join */
        run(th, 8, 2500, jobs / 8);  /* 8 a thread: claims and balance */
    }
    return 0;
}

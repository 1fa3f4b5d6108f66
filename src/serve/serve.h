/* serve.h: internals shared by the context pool and the dynamic batcher. */
#ifndef KILN_SERVE_H
#define KILN_SERVE_H

#include "../util/common.h"

#include <pthread.h>
#include <time.h>

const kiln_engine *serve_pool_engine(const kiln_pool *p);
int serve_pool_contexts(const kiln_pool *p);

/* Monotonic clock in microseconds. */
static inline uint64_t serve_now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Absolute CLOCK_REALTIME deadline us microseconds from now, for
** pthread_cond_timedwait (condition variables here use the default clock). */
static inline struct timespec serve_deadline(uint64_t us) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(us / 1000000u);
    ts.tv_nsec += (long)(us % 1000000u) * 1000;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

#endif

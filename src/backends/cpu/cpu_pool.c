/* cpu_pool.c: a small persistent thread pool for the CPU tactics. Workers
** sleep on a condition variable between jobs and take tasks from a shared
** atomic counter (guided: big claims first, single tasks at the end), so
** uneven tasks balance themselves. Each worker keeps a
** scratch buffer that grows to the largest request and lives as long as the
** worker. One job runs at a time; a second caller (another context, or a
** task calling back in) runs its job serially instead of waiting, so
** concurrent contexts never oversubscribe the cores (policy in kiln.h).
** Idle workers spin at most SPIN_US, then sleep. The caller waits only for
** the workers that joined its job before it ran out of tasks: one that
** wakes later (descheduled on a busy machine, or still asleep) stays out,
** so a small layer never waits for a scheduler time slice. Joining and
** leaving a job are atomic operations on one state word, not a mutex:
** the mutex is taken only to sleep and to wake sleepers. */
#include "cpu_gemm.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

enum { POOL_MAX = 256 };

/* The state word: workers in the job, and CLOSED once the caller has run
** out of tasks (no one joins after that). */
#define POOL_CLOSED (1 << 30)

/* The words every job touches sit on cache lines of their own: `next` is
** hammered by every claim, `gen` polled by every idle worker, `state`
** changed once per worker and job. Sharing a line, the spinning workers'
** reads of gen cost every claim of next a round of invalidations. */
static struct {
    _Alignas(64) atomic_llong next;  /* next unclaimed task */
    _Alignas(64) atomic_ullong gen;  /* bumped per job, after its fields are set */
    _Alignas(64) atomic_int state;   /* workers joined | POOL_CLOSED */
    /* the job, written by its caller before gen moves, read-only after */
    _Alignas(64) cpu_task_fn fn;
    void *arg;
    int64_t ntasks;
    atomic_int participants; /* workers 1..participants may take part */
    atomic_int sleepers;     /* workers waiting on `wake` (or about to) */
    bool stop;               /* under mu */
    pthread_mutex_t busy;    /* held by the caller whose job runs */
    pthread_mutex_t mu;      /* guards sleeping, waking, stop and the workers */
    pthread_cond_t wake, done_cv;
    pthread_t th[POOL_MAX];
    uint64_t gen0[POOL_MAX + 1];   /* generation a worker starts at */
    void *scratch[POOL_MAX + 1];   /* per worker id, kiln_aligned_alloc */
    size_t scratch_size[POOL_MAX + 1];
    int n_workers;
} P = {
    .state = POOL_CLOSED,
    .busy = PTHREAD_MUTEX_INITIALIZER,
    .mu = PTHREAD_MUTEX_INITIALIZER,
    .wake = PTHREAD_COND_INITIALIZER,
    .done_cv = PTHREAD_COND_INITIALIZER,
};

/* Guided claims: a thread takes 1/(2*nth) of the tasks still unclaimed
** (at least one), so claims start big and shrink to single tasks as the
** job drains. Fewer round trips of the shared counter's cache line between
** the cores than one task a claim, and neighbouring tasks (the same pixel
** chunk, the next rows) run on one core; the tail is still one task.
** MobileNetV2 b1, 2 threads, Zen 4: 0.97x the time (bench/RESULTS.md). */
static void run_tasks(cpu_task_fn fn, void *arg, int64_t ntasks, int nth, int tid,
                      void *scratch) {
    for (;;) {
        int64_t seen = (int64_t)atomic_load_explicit(&P.next, memory_order_relaxed);
        if (seen >= ntasks) break;
        int64_t c = (ntasks - seen) / (2 * (int64_t)nth);
        if (c < 1) c = 1;
        int64_t t = (int64_t)atomic_fetch_add(&P.next, c);
        if (t >= ntasks) break;
        int64_t end = ntasks - t < c ? ntasks : t + c;
        for (; t < end; t++) fn(arg, t, tid, scratch);
    }
}

/* Grows worker id's scratch to bytes (the caller holds busy: no job is
** open, so no worker reads it). */
static bool ensure_scratch(int id, size_t bytes) {
    if (P.scratch_size[id] >= bytes) return true;
    void *p = kiln_aligned_alloc(bytes);
    if (!p) return false;
    kiln_aligned_free(P.scratch[id]);
    P.scratch[id] = p;
    P.scratch_size[id] = bytes;
    return true;
}

/* A forked child has none of the workers: start it with an empty pool (the
** old scratch buffers are left alone; their owners are gone). */
static void pool_after_fork(void) {
    pthread_mutex_init(&P.busy, NULL);
    pthread_mutex_init(&P.mu, NULL);
    pthread_cond_init(&P.wake, NULL);
    pthread_cond_init(&P.done_cv, NULL);
    P.n_workers = 0;
    atomic_store(&P.participants, 0);
    atomic_store(&P.sleepers, 0);
    atomic_store(&P.state, POOL_CLOSED);
    for (int i = 0; i <= POOL_MAX; i++) P.scratch[i] = NULL, P.scratch_size[i] = 0;
}

static pthread_once_t g_atfork_once = PTHREAD_ONCE_INIT;
static void register_atfork(void) { pthread_atfork(NULL, NULL, pool_after_fork); }

/* Polls for a new job for a short while before a worker sleeps: layers
** come back to back, and a wake-up through the scheduler can take longer
** than a whole small layer. The spin is bounded by time (SPIN_US), not by
** pause count, whose cost varies tenfold between CPUs, so an idle pool
** goes to sleep within ~50 us whatever the machine. */
enum { SPIN_US = 50 };

static int64_t mono_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void spin_for_job(uint64_t seen) {
    int64_t end = mono_us() + SPIN_US;
    for (int i = 1; i < (1 << 20); i++) {
        if (atomic_load_explicit(&P.gen, memory_order_relaxed) != seen) return;
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
        if (!(i & 63) && mono_us() >= end) return;
    }
}

/* Joins the open job: false once the caller closed it. Without a lock:
** with 16 workers arriving at once, a mutex taken to join and again to
** leave made 30 hand-offs of one lock per layer, some through futex
** sleeps. */
static bool join_job(void) {
    int s = atomic_load(&P.state);
    do {
        if (s & POOL_CLOSED) return false;
    } while (!atomic_compare_exchange_weak(&P.state, &s, s + 1));
    return true;
}

/* Leaves the job; the last one out of a closed job wakes the caller if it
** went to sleep (it checks the state under mu before sleeping). */
static void leave_job(void) {
    if (atomic_fetch_sub(&P.state, 1) == (POOL_CLOSED | 1)) {
        pthread_mutex_lock(&P.mu);
        pthread_cond_signal(&P.done_cv);
        pthread_mutex_unlock(&P.mu);
    }
}

static void *worker(void *p) {
    int id = (int)(intptr_t)p;
    pthread_mutex_lock(&P.mu);
    uint64_t seen = P.gen0[id];
    pthread_mutex_unlock(&P.mu);
    for (;;) {
        spin_for_job(seen);
        if (atomic_load(&P.gen) == seen) {
            /* sleepers is raised before gen is read again; the caller bumps
            ** gen before it reads sleepers: one of the two sees the other */
            pthread_mutex_lock(&P.mu);
            atomic_fetch_add(&P.sleepers, 1);
            while (atomic_load(&P.gen) == seen && !P.stop) pthread_cond_wait(&P.wake, &P.mu);
            atomic_fetch_sub(&P.sleepers, 1);
            bool stop = P.stop;
            pthread_mutex_unlock(&P.mu);
            if (stop) break;
        }
        seen = atomic_load(&P.gen);
        /* a worker that wakes after the caller ran out of tasks stays out:
        ** the caller waits only for those that joined in time. One past
        ** the job's thread count stays out too (a stale count here only
        ** costs the job a thread: it is read again after joining). */
        if (id > atomic_load_explicit(&P.participants, memory_order_relaxed) || !join_job())
            continue;
        if (id <= atomic_load(&P.participants))
            run_tasks(P.fn, P.arg, P.ntasks, atomic_load(&P.participants) + 1, id,
                      P.scratch[id]);
        leave_job();
    }
    return NULL;
}

void cpu_parallel_for(int64_t ntasks, int nthreads, size_t scratch_bytes,
                      void *caller_scratch, cpu_task_fn fn, void *arg) {
    if (ntasks <= 0) return;
    if (nthreads > ntasks) nthreads = (int)ntasks;
    if (nthreads > POOL_MAX) nthreads = POOL_MAX;
    if (nthreads <= 1 || pthread_mutex_trylock(&P.busy) != 0) {
        for (int64_t t = 0; t < ntasks; t++) fn(arg, t, 0, caller_scratch);
        return;
    }
    pthread_once(&g_atfork_once, register_atfork);
    /* no job is open (state is CLOSED): the job's fields and the scratch
    ** buffers are the caller's to change until gen moves */
    if (P.n_workers < nthreads - 1) {
        pthread_mutex_lock(&P.mu);
        while (P.n_workers < nthreads - 1) {
            int id = P.n_workers + 1;
            P.gen0[id] = atomic_load(&P.gen);
            if (pthread_create(&P.th[P.n_workers], NULL, worker, (void *)(intptr_t)id))
                break;
            P.n_workers++;
        }
        pthread_mutex_unlock(&P.mu);
    }
    /* Workers 1..parts take part: as many as exist and got their scratch. */
    int parts = 0;
    while (parts < KILN_MIN(nthreads - 1, P.n_workers) &&
           (!scratch_bytes || ensure_scratch(parts + 1, scratch_bytes)))
        parts++;
    P.fn = fn;
    P.arg = arg;
    P.ntasks = ntasks;
    atomic_store(&P.participants, parts);
    atomic_store(&P.next, 0);
    atomic_store(&P.state, 0);  /* open */
    atomic_fetch_add(&P.gen, 1); /* publishes the fields above */
    if (atomic_load(&P.sleepers) > 0) {
        pthread_mutex_lock(&P.mu);
        pthread_cond_broadcast(&P.wake);
        pthread_mutex_unlock(&P.mu);
    }
    run_tasks(fn, arg, ntasks, parts + 1, 0, caller_scratch);
    if ((atomic_fetch_or(&P.state, POOL_CLOSED) & ~POOL_CLOSED) > 0) {
        /* the others are on their last tasks: poll a little before sleeping
        ** (a futex wake-up can cost as much as a small layer) */
        int64_t end = mono_us() + SPIN_US;
        for (int i = 1; atomic_load_explicit(&P.state, memory_order_acquire) != POOL_CLOSED;
             i++) {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
            if (!(i & 63) && mono_us() >= end) break;
        }
        pthread_mutex_lock(&P.mu);
        while (atomic_load(&P.state) != POOL_CLOSED) pthread_cond_wait(&P.done_cv, &P.mu);
        pthread_mutex_unlock(&P.mu);
    }
    pthread_mutex_unlock(&P.busy);
}

/* Joins the workers at exit (or unload) so leak checkers and dlclose see a
** clean process; skipped if a job is somehow still running. */
__attribute__((destructor)) static void pool_shutdown(void) {
    if (pthread_mutex_trylock(&P.busy) != 0) return;
    pthread_mutex_lock(&P.mu);
    P.stop = true;
    pthread_cond_broadcast(&P.wake);
    int n = P.n_workers;
    pthread_mutex_unlock(&P.mu);
    for (int i = 0; i < n; i++) pthread_join(P.th[i], NULL);
    pthread_mutex_lock(&P.mu);
    for (int i = 0; i <= POOL_MAX; i++) {
        kiln_aligned_free(P.scratch[i]);
        P.scratch[i] = NULL;
        P.scratch_size[i] = 0;
    }
    P.n_workers = 0;
    P.stop = false;
    pthread_mutex_unlock(&P.mu);
    pthread_mutex_unlock(&P.busy);
}

/* ---- cache eviction for cold timing: 256 KiB a task, on as many threads
** as the pool is set to use, so its workers are spinning when the builder's
** timed run starts (a worker asleep after a long eviction would join the
** timed run late). */
#ifdef CPU_HAVE_EVICT
#if defined(__aarch64__)
#define CPU_FLUSH_LINE(c) __asm__ volatile("dc civac, %0" : : "r"(c) : "memory")
#define CPU_FLUSH_FENCE() __asm__ volatile("dsb ish" : : : "memory")
#else
#define CPU_FLUSH_LINE(c) __builtin_ia32_clflush(c)
#define CPU_FLUSH_FENCE() __builtin_ia32_mfence()
#endif

enum { EVICT_CHUNK = 256 * 1024 };

typedef struct evict_job {
    const char *p;
    size_t n;
} evict_job;

static void evict_task(void *arg, int64_t t, int tid, void *scratch) {
    (void)tid, (void)scratch;
    const evict_job *j = arg;
    size_t lo = (size_t)t * EVICT_CHUNK, hi = KILN_MIN(j->n, lo + EVICT_CHUNK);
    const char *c = (const char *)((uintptr_t)(j->p + lo) & ~(uintptr_t)63);
    for (; c < j->p + hi; c += 64) CPU_FLUSH_LINE(c);
    CPU_FLUSH_FENCE();
}

void cpu_evict(const void *p, size_t bytes) {
    if (!p || !bytes) return;
    evict_job j = {p, bytes};
    int64_t n = (int64_t)((bytes + EVICT_CHUNK - 1) / EVICT_CHUNK);
    cpu_parallel_for(n, kiln_get_num_threads(), 0, NULL, evict_task, &j);
}
#endif

/* A thread is worth waking for about a million flops (tens of
** microseconds of work), the order of a wake-up's cost. */
int cpu_threads_for(double flops) {
    int t = kiln_get_num_threads();
    double cap = flops / (1 << 20);
    if (cap < t) t = cap < 1 ? 1 : (int)cap;
    return t < 1 ? 1 : t;
}

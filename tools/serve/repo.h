/* repo.h: the model repository in Triton's layout (<root>/<model>/
** config.pbtxt and numeric version folders holding model.kiln or
** model.onnx), with loading, atomic swaps on reload, and versions that are
** freed once the last request using them is done. */
#ifndef KILN_SERVE_REPO_H
#define KILN_SERVE_REPO_H

#include "config.h"
#include "json.h"

#include <pthread.h>
#include <stdatomic.h>

/* Failure reasons, as Triton labels nv_inference_request_failure. */
enum { FAIL_REJECTED, FAIL_CANCELED, FAIL_BACKEND, FAIL_OTHER, FAIL_N };

typedef struct serve_vstats {
    uint64_t success, fail, fail_by[FAIL_N];
    uint64_t success_us, fail_us, request_us;
    uint64_t queue_us, cin_us, cinf_us, cout_us;
    uint64_t inference_count;      /* rows answered */
    uint64_t last_inference_ms;    /* wall clock, ms since the epoch */
} serve_vstats;

typedef struct serve_version {
    char model[SERVE_NAME_MAX];
    int64_t version;
    serve_model_config cfg;        /* resolved: batch size and I/O from the engine */
    kiln_engine *engine;
    kiln_pool *pool;
    kiln_batcher *batcher;
    uint64_t file_bytes;
    char sig[256];                 /* engine source file: path size mtime */
    atomic_int refs;
    pthread_mutex_t mu;
    serve_vstats st;
    /* Warm-up inferences run before this version turned READY: through
    ** the batcher at load (batch 1 and config's model_warmup) and, at
    ** start-up, loopback HTTP requests from the server itself. They are
    ** not client traffic: statistics leave them out (warm_base). */
    atomic_ullong warmup_batcher, warmup_http;
    uint64_t warmup_request_us;    /* the load-time batch-1 warm-up request took */
    kiln_batcher_stats warm_base;  /* batcher counters when warm-up ended */
    struct serve_version *next_dead;
} serve_version;

typedef struct serve_repo_options {
    int build_opt_level;           /* for model.onnx builds */
    int poll_secs;                 /* 0: no polling */
} serve_repo_options;

typedef struct serve_repo serve_repo;

serve_repo *repo_create(const char *root, const serve_repo_options *o);
/* Stops the reaper after every version is freed (batchers drain). */
void repo_destroy(serve_repo *r);
/* Loads every model folder found (errors are logged and kept per model). */
void repo_load_all(serve_repo *r);
/* (Re)loads one model; new versions warm up beside the old ones, which keep
** serving until the swap. Returns 0, or an HTTP status with err. */
int repo_load_model(serve_repo *r, const char *name, char *err, size_t errlen);
int repo_unload_model(serve_repo *r, const char *name, char *err, size_t errlen);
/* Reloads models whose files changed, loads new folders, unloads removed. */
void repo_poll(serve_repo *r);
/* A ready version (version NULL or "": the highest), with a reference the
** caller gives back with repo_release. NULL with an HTTP status in *status
** and a message in err otherwise. */
serve_version *repo_acquire(serve_repo *r, const char *model, const char *version, int *status,
                            char *err, size_t errlen);
void repo_release(serve_repo *r, serve_version *v);
/* References to every ready version (model order, then version); release
** each, then free the array. */
int repo_snapshot(serve_repo *r, serve_version ***out);
/* The version's batcher counters less those of its warm-up. */
void repo_batcher_stats(serve_version *v, kiln_batcher_stats *out);
/* Marks the end of a version's warm-up (what repo_batcher_stats subtracts). */
void repo_warmup_done(serve_version *v);
/* Takes a model out of service after a failed warm-up: its versions are
** unloaded and the model is reported UNAVAILABLE with reason. */
void repo_fail_model(serve_repo *r, const char *name, const char *reason);
/* True when every model in the repository is ready. */
bool repo_all_ready(serve_repo *r);
/* Model metadata/readiness without a version being ready: state string. */
void repo_index_json(serve_repo *r, sbuf *b, bool ready_only);
/* Known model (loaded or failed). */
bool repo_has_model(serve_repo *r, const char *name);

void serve_log(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif

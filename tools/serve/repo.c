/* repo.c: model repository scanning, loading (model.onnx is built into an
** engine cached beside it), version policies, hot reload and the reaper
** thread that frees versions nobody uses any more. */
#include "repo.h"
#include "proto.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

typedef struct serve_model {
    char name[SERVE_NAME_MAX];
    serve_version **v;            /* ready versions, ascending */
    int nv;
    bool failed;                  /* the last load failed */
    bool unloaded;
    char reason[512];
    char sig[2048];               /* files at the last load attempt */
} serve_model;

struct serve_repo {
    char root[4096];
    serve_repo_options o;
    pthread_rwlock_t lock;        /* the model table */
    pthread_mutex_t load_mu;      /* one load at a time */
    serve_model **m;
    int n, cap;
    pthread_mutex_t dead_mu;
    pthread_cond_t dead_cv;
    serve_version *dead;
    int live_versions;
    bool stopping;
    pthread_t reaper;
};

void serve_log(const char *level, const char *fmt, ...) {
    char msg[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* One event per line: newlines inside a message would split it. */
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s\n", tm.tm_year + 1900,
            tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
            level, msg);
}

static void version_free(serve_version *v) {
    if (!v) return;
    kiln_batcher_destroy(v->batcher);
    kiln_pool_destroy(v->pool);
    kiln_engine_free(v->engine);
    pthread_mutex_destroy(&v->mu);
    free(v);
}

static void *reaper_main(void *arg) {
    serve_repo *r = arg;
    pthread_mutex_lock(&r->dead_mu);
    for (;;) {
        while (r->dead) {
            serve_version *v = r->dead;
            r->dead = v->next_dead;
            pthread_mutex_unlock(&r->dead_mu);
            serve_log("INFO", "model '%s' version %lld freed", v->model, (long long)v->version);
            version_free(v);
            pthread_mutex_lock(&r->dead_mu);
            r->live_versions--;
            pthread_cond_broadcast(&r->dead_cv);
        }
        if (r->stopping && r->live_versions == 0) break;
        pthread_cond_wait(&r->dead_cv, &r->dead_mu);
    }
    pthread_mutex_unlock(&r->dead_mu);
    return NULL;
}

void repo_release(serve_repo *r, serve_version *v) {
    if (!v) return;
    if (atomic_fetch_sub(&v->refs, 1) != 1) return;
    /* The last reference may be dropped on a batcher worker (inside a
    ** completion callback), which cannot join its own batcher: the reaper
    ** frees it. */
    pthread_mutex_lock(&r->dead_mu);
    v->next_dead = r->dead;
    r->dead = v;
    pthread_cond_broadcast(&r->dead_cv);
    pthread_mutex_unlock(&r->dead_mu);
}

serve_repo *repo_create(const char *root, const serve_repo_options *o) {
    serve_repo *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    snprintf(r->root, sizeof r->root, "%s", root);
    r->o = *o;
    pthread_rwlock_init(&r->lock, NULL);
    pthread_mutex_init(&r->load_mu, NULL);
    pthread_mutex_init(&r->dead_mu, NULL);
    pthread_cond_init(&r->dead_cv, NULL);
    if (pthread_create(&r->reaper, NULL, reaper_main, r)) {
        free(r);
        return NULL;
    }
    return r;
}

void repo_destroy(serve_repo *r) {
    if (!r) return;
    pthread_rwlock_wrlock(&r->lock);
    for (int i = 0; i < r->n; i++) {
        for (int k = 0; k < r->m[i]->nv; k++) repo_release(r, r->m[i]->v[k]);
        free(r->m[i]->v);
        free(r->m[i]);
    }
    free(r->m);
    r->m = NULL;
    r->n = 0;
    pthread_rwlock_unlock(&r->lock);
    pthread_mutex_lock(&r->dead_mu);
    r->stopping = true;
    pthread_cond_broadcast(&r->dead_cv);
    pthread_mutex_unlock(&r->dead_mu);
    pthread_join(r->reaper, NULL);
    pthread_rwlock_destroy(&r->lock);
    pthread_mutex_destroy(&r->load_mu);
    pthread_mutex_destroy(&r->dead_mu);
    pthread_cond_destroy(&r->dead_cv);
    free(r);
}

/* ---- files */
static bool valid_name(const char *s) {
    if (!s[0] || strlen(s) >= SERVE_NAME_MAX || !strcmp(s, ".") || !strcmp(s, "..")) return false;
    for (const char *p = s; *p; p++)
        if (*p == '/' || *p == '\\' || (unsigned char)*p < 0x20) return false;
    return true;
}

static bool file_sig(const char *path, char *out, size_t cap, uint64_t *size) {
    struct stat sb;
    if (stat(path, &sb) || !S_ISREG(sb.st_mode)) return false;
    /* Size and mtime (the path is implied by the caller): a changed file
    ** gives a different string. */
    snprintf(out, cap, "%c %lld %lld.%09ld", path[strlen(path) - 1], (long long)sb.st_size,
             (long long)sb.st_mtim.tv_sec, sb.st_mtim.tv_nsec);
    if (size) *size = (uint64_t)sb.st_size;
    return true;
}

static char *read_file(const char *path, size_t *len, size_t limit) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = malloc(limit + 1);
    size_t n = buf ? fread(buf, 1, limit + 1, f) : 0;
    fclose(f);
    if (!buf || n > limit) {
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

/* Numeric version folders holding a model file, ascending. */
static int list_versions(const char *dir, int64_t *out, int cap) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char *end;
        errno = 0;
        long long v = strtoll(e->d_name, &end, 10);
        if (!e->d_name[0] || *end || errno || v < 0 || e->d_name[0] == '-' || e->d_name[0] == '+')
            continue;
        char p[4400];
        struct stat sb;
        snprintf(p, sizeof p, "%s/%s/model.kiln", dir, e->d_name);
        bool has = !stat(p, &sb);
        snprintf(p, sizeof p, "%s/%s/model.onnx", dir, e->d_name);
        has = has || !stat(p, &sb);
        if (!has) continue;
        int i = n < cap ? n++ : cap - 1;
        out[i] = v;
    }
    closedir(d);
    for (int i = 1; i < n; i++) /* insertion sort: a handful of versions */
        for (int k = i; k > 0 && out[k] < out[k - 1]; k--) {
            int64_t t = out[k];
            out[k] = out[k - 1];
            out[k - 1] = t;
        }
    return n;
}

/* Everything a reload depends on, as one string. */
static void model_sig(const serve_repo *r, const char *name, char *out, size_t cap) {
    char dir[4400], p[4600], s[600];
    snprintf(dir, sizeof dir, "%s/%s", r->root, name);
    size_t len = 0;
    out[0] = 0;
    snprintf(p, sizeof p, "%s/config.pbtxt", dir);
    if (file_sig(p, s, sizeof s, NULL)) len += (size_t)snprintf(out + len, cap - len, "%s;", s);
    int64_t vs[SERVE_CFG_MAX_VERSIONS];
    int n = list_versions(dir, vs, SERVE_CFG_MAX_VERSIONS);
    for (int i = 0; i < n && len < cap - 1; i++) {
        for (int k = 0; k < 2 && len < cap - 1; k++) {
            snprintf(p, sizeof p, "%s/%lld/model.%s", dir, (long long)vs[i], k ? "onnx" : "kiln");
            if (file_sig(p, s, sizeof s, NULL))
                len += (size_t)snprintf(out + len, cap - len, "%s;", s);
        }
    }
}

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

/* Builds model.onnx into an engine: dim 0 spans 1..max_batch_size when the
** model batches; other symbolic dims take config.pbtxt's dims. */
static kiln_status build_onnx(const char *onnx, const serve_model_config *cfg, int opt_level,
                              void **blob, size_t *size, char *err, size_t errlen) {
    kiln_model *m = NULL;
    kiln_builder_config *bc = NULL;
    kiln_status s = kiln_model_load(onnx, &m);
    if (s) {
        snprintf(err, errlen, "%s: %s", onnx, kiln_last_error());
        return s;
    }
    if ((s = kiln_builder_config_create(&bc))) goto fail;
    kiln_builder_config_set_opt_level(bc, opt_level);
    if (cfg->device == SERVE_DEVICE_GPU &&
        ((s = kiln_builder_config_set_device(bc, KILN_DEVICE_CUDA)) ||
         (cfg->gpu_precision &&
          (s = kiln_builder_config_set_precisions(bc, KILN_PRECISION_FP32 | cfg->gpu_precision)))))
        goto fail;
    int prof = -1;
    for (int i = 0; i < kiln_model_num_inputs(m); i++) {
        kiln_io_info io;
        if ((s = kiln_model_input(m, i, &io))) goto fail;
        int64_t mn[KILN_MAX_RANK], op[KILN_MAX_RANK], mx[KILN_MAX_RANK];
        bool dynamic = false;
        const serve_tensor_cfg *tc = NULL;
        for (int k = 0; k < cfg->n_inputs; k++)
            if (!strcmp(cfg->inputs[k].name, io.name)) tc = &cfg->inputs[k];
        int off = cfg->max_batch_size > 0 ? 1 : 0;
        for (int d = 0; d < io.rank; d++) {
            if (io.dims[d] >= 0) {
                mn[d] = op[d] = mx[d] = io.dims[d];
            } else if (d == 0 && cfg->max_batch_size > 0) {
                int opt = cfg->max_batch_size;
                for (int k = 0; k < cfg->n_preferred; k++)
                    if (cfg->preferred[k] <= cfg->max_batch_size) opt = cfg->preferred[k];
                mn[d] = 1, op[d] = opt, mx[d] = cfg->max_batch_size;
                dynamic = true;
            } else if (tc && tc->rank == io.rank - off && tc->dims[d - off] > 0) {
                mn[d] = op[d] = mx[d] = tc->dims[d - off];
                dynamic = true;
            } else {
                snprintf(err, errlen, "%s: input '%s' dim %d ('%s') is symbolic; give it in "
                         "config.pbtxt's dims%s", onnx, io.name, d,
                         io.dim_names[d] ? io.dim_names[d] : "?",
                         d == 0 ? " or set max_batch_size" : "");
                s = KILN_INVALID_ARGUMENT;
                goto done;
            }
        }
        if (!dynamic) continue;
        if (prof < 0 && (s = kiln_builder_config_add_profile(bc, &prof))) goto fail;
        if ((s = kiln_builder_config_set_shape(bc, prof, io.name, io.rank, mn, op, mx))) goto fail;
    }
    s = kiln_build_engine(m, bc, blob, size);
    if (!s) goto done;
fail:
    snprintf(err, errlen, "building %s: %s", onnx, kiln_last_error());
done:
    kiln_builder_config_destroy(bc);
    kiln_model_free(m);
    return s;
}

/* The engine for one version folder: model.kiln, or model.onnx through the
** cache file model.onnx.<key>.kiln (key: kiln version, the onnx file's size
** and mtime, and the config fields the build uses). */
static kiln_engine *load_engine(serve_repo *r, const char *vdir, const serve_model_config *cfg,
                                char *sig, size_t sigcap, uint64_t *bytes, char *err, size_t errlen) {
    char p[4600];
    kiln_engine *e = NULL;
    snprintf(p, sizeof p, "%s/model.kiln", vdir);
    if (file_sig(p, sig, sigcap, bytes)) {
        if (kiln_engine_load_file(p, &e)) {
            snprintf(err, errlen, "%s: %s", p, kiln_last_error());
            return NULL;
        }
        return e;
    }
    snprintf(p, sizeof p, "%s/model.onnx", vdir);
    if (!file_sig(p, sig, sigcap, bytes)) {
        snprintf(err, errlen, "%s has neither model.kiln nor model.onnx", vdir);
        return NULL;
    }
    struct stat sb;
    stat(p, &sb);
    uint64_t h = 1469598103934665603ull;
    h = fnv(h, KILN_VERSION_STRING, strlen(KILN_VERSION_STRING));
    h = fnv(h, &sb.st_size, sizeof sb.st_size);
    h = fnv(h, &sb.st_mtim, sizeof sb.st_mtim);
    h = fnv(h, &cfg->max_batch_size, sizeof cfg->max_batch_size);
    h = fnv(h, cfg->preferred, sizeof cfg->preferred);
    h = fnv(h, cfg->inputs, sizeof cfg->inputs);
    h = fnv(h, &r->o.build_opt_level, sizeof r->o.build_opt_level);
    h = fnv(h, &cfg->device, sizeof cfg->device);
    h = fnv(h, &cfg->gpu_precision, sizeof cfg->gpu_precision);
    char cache[4700];
    snprintf(cache, sizeof cache, "%s/model.onnx.%016llx.kiln", vdir, (unsigned long long)h);
    /* An engine refused as incompatible (another kiln, another CPU) or
    ** damaged is rebuilt over. */
    if (!stat(cache, &sb) && !kiln_engine_load_file(cache, &e)) {
        serve_log("INFO", "%s: using cached engine %s", p, cache);
        return e;
    }
    void *blob = NULL;
    size_t n = 0;
    uint64_t t0 = (uint64_t)time(NULL);
    serve_log("INFO", "%s: building engine for the %s (max_batch_size %d)", p,
              cfg->device == SERVE_DEVICE_GPU ? "GPU" : "CPU", cfg->max_batch_size);
    if (build_onnx(p, cfg, r->o.build_opt_level, &blob, &n, err, errlen)) return NULL;
    if (kiln_engine_save_blob(blob, n, cache))
        serve_log("WARNING", "could not cache the engine at %s: %s", cache, kiln_last_error());
    else
        serve_log("INFO", "%s: engine built in %llus, cached at %s", p,
                  (unsigned long long)((uint64_t)time(NULL) - t0), cache);
    if (kiln_engine_load_memory(blob, n, &e)) {
        snprintf(err, errlen, "%s: built engine does not load: %s", p, kiln_last_error());
        e = NULL;
    }
    kiln_free(blob);
    return e;
}

/* Fills cfg's I/O from the engine (checking what config.pbtxt gave) and
** resolves max_batch_size. */
static int resolve_config(const kiln_engine *e, serve_model_config *cfg, char *err, size_t errlen) {
    int ni = kiln_engine_num_inputs(e), no = kiln_engine_num_outputs(e);
    if (ni > SERVE_CFG_MAX_IO || no > SERVE_CFG_MAX_IO) {
        snprintf(err, errlen, "the engine has too many inputs/outputs (%d/%d)", ni, no);
        return -1;
    }
    int64_t engine_max = -1;
    for (int i = 0; i < ni; i++) {
        kiln_io_info io;
        kiln_engine_input(e, i, &io);
        for (int p = 0; p < kiln_engine_num_profiles(e); p++) {
            int64_t mn[KILN_MAX_RANK], op[KILN_MAX_RANK], mx[KILN_MAX_RANK];
            if (io.rank < 1 || kiln_engine_profile_shape(e, p, io.name, mn, op, mx)) {
                engine_max = 0;
                break;
            }
            if (engine_max != 0 && (engine_max < 0 || mx[0] < engine_max)) engine_max = mx[0];
        }
    }
    if (cfg->max_batch_size < 0) cfg->max_batch_size = engine_max < 0 ? 0 : (int)(engine_max > (1 << 20) ? (1 << 20) : engine_max);
    if (cfg->max_batch_size > 0 && engine_max < cfg->max_batch_size) {
        snprintf(err, errlen, "config.pbtxt max_batch_size %d is more than the engine allows "
                 "(%lld in dim 0)", cfg->max_batch_size, (long long)engine_max);
        return -1;
    }
    serve_model_config given = *cfg;
    int off = cfg->max_batch_size > 0 ? 1 : 0;
    for (int pass = 0; pass < 2; pass++) {
        int n = pass ? no : ni;
        serve_tensor_cfg *dst = pass ? cfg->outputs : cfg->inputs;
        const serve_tensor_cfg *src = pass ? given.outputs : given.inputs;
        int nsrc = pass ? given.n_outputs : given.n_inputs;
        for (int k = 0; k < nsrc; k++) {
            bool found = false;
            for (int i = 0; i < n; i++) {
                kiln_io_info io;
                pass ? kiln_engine_output(e, i, &io) : kiln_engine_input(e, i, &io);
                if (strcmp(io.name, src[k].name)) continue;
                found = true;
                if (src[k].dtype && src[k].dtype != io.dtype) {
                    snprintf(err, errlen, "config.pbtxt says %s '%s' is %s; the engine has %s",
                             pass ? "output" : "input", io.name,
                             serve_dtype_name(src[k].dtype) ? serve_dtype_name(src[k].dtype) : "?",
                             kiln_dtype_name(io.dtype));
                    return -1;
                }
            }
            if (!found) {
                snprintf(err, errlen, "config.pbtxt names %s '%s', which the engine does not "
                         "have", pass ? "output" : "input", src[k].name);
                return -1;
            }
        }
        for (int i = 0; i < n; i++) {
            kiln_io_info io;
            pass ? kiln_engine_output(e, i, &io) : kiln_engine_input(e, i, &io);
            serve_tensor_cfg *t = &dst[i];
            memset(t, 0, sizeof *t);
            snprintf(t->name, sizeof t->name, "%s", io.name);
            t->dtype = io.dtype;
            t->rank = io.rank < 0 ? 0 : io.rank - (io.rank > 0 ? off : 0);
            for (int d = 0; d < t->rank; d++) t->dims[d] = io.dims[d + off] < 0 ? -1 : io.dims[d + off];
            if (!serve_dtype_name(io.dtype)) {
                snprintf(err, errlen, "%s '%s' has type %s, which the HTTP protocol cannot carry",
                         pass ? "output" : "input", io.name, kiln_dtype_name(io.dtype));
                return -1;
            }
        }
        if (pass) cfg->n_outputs = n;
        else cfg->n_inputs = n;
    }
    return 0;
}

/* One request of zeros through the version's batcher: batch rows (when the
** model batches; 0: the smallest batch profile 0 takes, 1 mostly), profile
** 0's opt for the other dims. */
static int warm_request(serve_version *v, int batch, char *err, size_t errlen) {
    int ni = kiln_engine_num_inputs(v->engine), no = kiln_engine_num_outputs(v->engine);
    kiln_batch_input in[SERVE_CFG_MAX_IO];
    int64_t dims[SERVE_CFG_MAX_IO][KILN_MAX_RANK];
    void *bufs[SERVE_CFG_MAX_IO] = {0};
    kiln_tensor *outs[SERVE_CFG_MAX_IO] = {0};
    int rc = 0;
    if (ni > SERVE_CFG_MAX_IO || no > SERVE_CFG_MAX_IO) {
        snprintf(err, errlen, "too many inputs or outputs");
        return -1;
    }
    for (int i = 0; i < ni && !rc; i++) {
        kiln_io_info io;
        int64_t mn[KILN_MAX_RANK], mx[KILN_MAX_RANK];
        kiln_engine_input(v->engine, i, &io);
        kiln_engine_profile_shape(v->engine, 0, io.name, mn, dims[i], mx);
        if (v->cfg.max_batch_size > 0 && io.rank > 0) dims[i][0] = batch ? batch : mn[0] > 1 ? mn[0] : 1;
        size_t nb = kiln_dtype_size(io.dtype);
        for (int d = 0; d < io.rank; d++) nb *= (size_t)dims[i][d];
        if (!(bufs[i] = calloc(1, nb ? nb : 1))) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
        }
        in[i] = (kiln_batch_input){io.name, io.dtype, io.rank, dims[i], bufs[i], nb};
    }
    if (!rc && kiln_batcher_infer(v->batcher, in, ni, -1, outs)) {
        snprintf(err, errlen, "%s", kiln_last_error());
        rc = -1;
    }
    for (int i = 0; i < ni; i++) free(bufs[i]);
    for (int i = 0; i < no; i++) kiln_tensor_destroy(outs[i]);
    return rc;
}

void repo_warmup_done(serve_version *v) {
    kiln_batcher_stats b = {.size = sizeof b};
    kiln_batcher_get_stats(v->batcher, &b);
    pthread_mutex_lock(&v->mu);
    v->warm_base = b;
    pthread_mutex_unlock(&v->mu);
}

void repo_batcher_stats(serve_version *v, kiln_batcher_stats *out) {
    out->size = sizeof *out;
    kiln_batcher_get_stats(v->batcher, out);
    pthread_mutex_lock(&v->mu);
    const kiln_batcher_stats *b = &v->warm_base;
    out->submitted -= b->submitted;
    out->succeeded -= b->succeeded;
    out->failed -= b->failed;
    out->batches -= b->batches;
    out->rows -= b->rows;
    for (int i = 0; i < KILN_BATCHER_HIST; i++) out->batch_size_hist[i] -= b->batch_size_hist[i];
    out->queue_us -= b->queue_us;
    out->compute_input_us -= b->compute_input_us;
    out->compute_infer_us -= b->compute_infer_us;
    out->compute_output_us -= b->compute_output_us;
    out->padded_rows -= b->padded_rows;
    out->staged_requests -= b->staged_requests;
    out->staged_batches -= b->staged_batches;
    pthread_mutex_unlock(&v->mu);
}

static serve_version *load_version(serve_repo *r, const char *model, int64_t ver,
                                   const serve_model_config *cfg0, char *err, size_t errlen) {
    serve_version *v = calloc(1, sizeof *v);
    if (!v) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&v->mu, NULL);
    snprintf(v->model, sizeof v->model, "%s", model);
    v->version = ver;
    v->cfg = *cfg0;
    atomic_init(&v->refs, 1);
    char vdir[4400];
    snprintf(vdir, sizeof vdir, "%s/%s/%lld", r->root, model, (long long)ver);
    uint64_t t0 = (uint64_t)clock();
    if (!(v->engine = load_engine(r, vdir, &v->cfg, v->sig, sizeof v->sig, &v->file_bytes, err, errlen)))
        goto fail;
    if (resolve_config(v->engine, &v->cfg, err, errlen)) goto fail;
    kiln_pool_options po;
    kiln_pool_options_init(&po);
    po.num_contexts = v->cfg.instance_count;
    /* Padded batches (CUDA engines by default): the batcher runs only the
    ** preferred sizes, max_batch_size and 1, and every context warms each
    ** of them, since a device engine's first run of a new shape builds
    ** library plans (cuDNN may compile kernels) and records a CUDA graph. */
    bool pad = v->cfg.pad_batches > 0 ||
               (v->cfg.pad_batches < 0 && !strcmp(kiln_engine_backend(v->engine), "cuda"));
    pad = pad && v->cfg.dynamic_batching && v->cfg.max_batch_size > 1 && v->cfg.n_preferred > 0;
    if (pad) {
        for (int i = 0; i < v->cfg.n_preferred && po.num_warmup_batch_sizes < 15; i++)
            if (v->cfg.preferred[i] > 1 && v->cfg.preferred[i] < v->cfg.max_batch_size)
                po.warmup_batch_sizes[po.num_warmup_batch_sizes++] = v->cfg.preferred[i];
        po.warmup_batch_sizes[po.num_warmup_batch_sizes++] = v->cfg.max_batch_size;
    }
    if (kiln_pool_create(v->engine, &po, &v->pool)) {
        snprintf(err, errlen, "%s: %s", vdir, kiln_last_error());
        goto fail;
    }
    kiln_batcher_options bo;
    kiln_batcher_options_init(&bo);
    bo.max_batch_size = v->cfg.max_batch_size;
    bo.dynamic_batching = v->cfg.dynamic_batching;
    memcpy(bo.preferred_batch_sizes, v->cfg.preferred, sizeof bo.preferred_batch_sizes);
    bo.num_preferred = v->cfg.n_preferred;
    bo.max_queue_delay_us = v->cfg.max_queue_delay_us;
    bo.max_queue_size = v->cfg.max_queue_size;
    bo.default_timeout_us = v->cfg.default_timeout_us;
    bo.pad_to_preferred = pad;
    if (kiln_batcher_create(v->pool, &bo, &v->batcher)) {
        snprintf(err, errlen, "%s: %s", vdir, kiln_last_error());
        goto fail;
    }
    /* Warm-up through the batcher, the path a request takes (its worker
    ** thread, the context at a lone request's shape, output tensors):
    ** the smallest batch, then config.pbtxt's model_warmup batch sizes. A version
    ** whose warm-up fails is not loaded, so never READY. */
    for (int w = -1; w < v->cfg.n_warmup; w++) {
        int batch = w < 0 ? 0 : v->cfg.warmup_batch[w] ? v->cfg.warmup_batch[w] : 1;
        struct timespec ta, tb;
        clock_gettime(CLOCK_MONOTONIC, &ta);
        int rc = warm_request(v, batch, err, errlen);
        clock_gettime(CLOCK_MONOTONIC, &tb);
        if (w < 0)
            v->warmup_request_us = (uint64_t)((tb.tv_sec - ta.tv_sec) * 1000000 +
                                              (tb.tv_nsec - ta.tv_nsec) / 1000);
        if (rc) {
            char why[1024];
            snprintf(why, sizeof why, "%s", err);
            if (batch) snprintf(err, errlen, "%s: warm-up request (batch %d, config.pbtxt "
                                "model_warmup) failed: %s", vdir, batch, why);
            else snprintf(err, errlen, "%s: warm-up request (smallest batch) failed: %s", vdir, why);
            goto fail;
        }
        atomic_fetch_add(&v->warmup_batcher, 1);
    }
    repo_warmup_done(v);
    kiln_pool_stats ps = {.size = sizeof ps};
    kiln_pool_get_stats(v->pool, &ps);
    serve_log("INFO", "model '%s' version %lld ready: %d context(s) warmed in %.1f ms, %llu "
              "warm-up request(s) through the batcher, max batch %d, dynamic batching %s%s",
              model, (long long)ver, ps.contexts, ps.warmup_us / 1000.0,
              (unsigned long long)atomic_load(&v->warmup_batcher), v->cfg.max_batch_size,
              v->cfg.dynamic_batching ? "on" : "off",
              pad ? " (batches padded to the preferred sizes)" : "");
    (void)t0;
    pthread_mutex_lock(&r->dead_mu);
    r->live_versions++;
    pthread_mutex_unlock(&r->dead_mu);
    return v;
fail:
    version_free(v);
    return NULL;
}

static serve_model *find_model(serve_repo *r, const char *name) {
    for (int i = 0; i < r->n; i++)
        if (!strcmp(r->m[i]->name, name)) return r->m[i];
    return NULL;
}

static serve_model *get_or_add(serve_repo *r, const char *name) {
    serve_model *m = find_model(r, name);
    if (m) return m;
    if (r->n == r->cap) {
        int cap = r->cap ? r->cap * 2 : 8;
        serve_model **nm = realloc(r->m, sizeof *nm * (size_t)cap);
        if (!nm) return NULL;
        r->m = nm;
        r->cap = cap;
    }
    m = calloc(1, sizeof *m);
    if (!m) return NULL;
    snprintf(m->name, sizeof m->name, "%s", name);
    r->m[r->n++] = m;
    return m;
}

static int load_model_locked(serve_repo *r, const char *name, char *err, size_t errlen) {
    char dir[4400], p[4600];
    snprintf(dir, sizeof dir, "%s/%s", r->root, name);
    char sig[2048];
    model_sig(r, name, sig, sizeof sig);
    serve_model_config cfg;
    serve_config_defaults(&cfg);
    serve_version *nv[SERVE_CFG_MAX_VERSIONS];
    int nnv = 0;
    int64_t all[SERVE_CFG_MAX_VERSIONS], want[SERVE_CFG_MAX_VERSIONS];
    int nall, nwant = 0;
    struct stat sb;
    if (stat(dir, &sb) || !S_ISDIR(sb.st_mode)) {
        snprintf(err, errlen, "no model folder '%s' in the repository", name);
        goto fail_nochange;
    }
    snprintf(p, sizeof p, "%s/config.pbtxt", dir);
    size_t len;
    char *text = read_file(p, &len, 1 << 20);
    if (text) {
        int rc = serve_config_parse(text, len, &cfg, err, errlen);
        free(text);
        if (rc) goto fail;
        if (cfg.name[0] && strcmp(cfg.name, name)) {
            snprintf(err, errlen, "config.pbtxt names the model '%s' but its folder is '%s'",
                     cfg.name, name);
            goto fail;
        }
    } else if (!stat(p, &sb)) {
        snprintf(err, errlen, "%s cannot be read (or is larger than 1 MiB)", p);
        goto fail;
    }
    snprintf(cfg.name, sizeof cfg.name, "%s", name);
    nall = list_versions(dir, all, SERVE_CFG_MAX_VERSIONS);
    if (cfg.policy == SERVE_POLICY_ALL) {
        for (int i = 0; i < nall; i++) want[nwant++] = all[i];
    } else if (cfg.policy == SERVE_POLICY_LATEST) {
        for (int i = nall - cfg.latest_n < 0 ? 0 : nall - cfg.latest_n; i < nall; i++) want[nwant++] = all[i];
    } else {
        for (int k = 0; k < cfg.n_specific; k++) {
            bool found = false;
            for (int i = 0; i < nall; i++) found |= all[i] == cfg.specific[k];
            if (!found) {
                snprintf(err, errlen, "version_policy asks for version %lld, which has no model "
                         "file", (long long)cfg.specific[k]);
                goto fail;
            }
            want[nwant++] = cfg.specific[k];
        }
    }
    if (!nwant) {
        snprintf(err, errlen, "model '%s' has no version folder with model.kiln or model.onnx", name);
        goto fail;
    }
    pthread_rwlock_rdlock(&r->lock);
    serve_model *old = find_model(r, name);
    /* A version whose file and config are unchanged keeps serving as is. */
    bool same_cfg = old && old->nv && !strncmp(old->sig, sig, strcspn(sig, ";"));
    for (int i = 0; i < nwant; i++) {
        serve_version *keep = NULL;
        for (int k = 0; old && same_cfg && k < old->nv; k++) {
            serve_version *ov = old->v[k];
            char vdir[4500], s[600];
            snprintf(vdir, sizeof vdir, "%s/%lld/model.kiln", dir, (long long)ov->version);
            if (!file_sig(vdir, s, sizeof s, NULL)) {
                snprintf(vdir, sizeof vdir, "%s/%lld/model.onnx", dir, (long long)ov->version);
                file_sig(vdir, s, sizeof s, NULL);
            }
            if (ov->version == want[i] && !strcmp(ov->sig, s)) keep = ov;
        }
        if (keep) {
            atomic_fetch_add(&keep->refs, 1);
            nv[nnv++] = keep;
        } else {
            nv[nnv] = NULL;
        }
        if (!keep) nnv++;
    }
    pthread_rwlock_unlock(&r->lock);
    for (int i = 0; i < nwant; i++) {
        if (nv[i]) continue;
        /* Loaded and warmed beside the version(s) still serving. */
        if (!(nv[i] = load_version(r, name, want[i], &cfg, err, errlen))) {
            for (int k = 0; k < nwant; k++) repo_release(r, nv[k]);
            goto fail;
        }
    }
    pthread_rwlock_wrlock(&r->lock);
    serve_model *m = get_or_add(r, name);
    if (!m) {
        pthread_rwlock_unlock(&r->lock);
        for (int k = 0; k < nwant; k++) repo_release(r, nv[k]);
        snprintf(err, errlen, "out of memory");
        return 500;
    }
    serve_version **oldv = m->v;
    int noldv = m->nv;
    m->v = malloc(sizeof *m->v * (size_t)nwant);
    if (!m->v) {
        m->v = oldv;
        pthread_rwlock_unlock(&r->lock);
        for (int k = 0; k < nwant; k++) repo_release(r, nv[k]);
        snprintf(err, errlen, "out of memory");
        return 500;
    }
    memcpy(m->v, nv, sizeof *nv * (size_t)nwant);
    m->nv = nwant;
    m->failed = false;
    m->unloaded = false;
    m->reason[0] = 0;
    snprintf(m->sig, sizeof m->sig, "%s", sig);
    pthread_rwlock_unlock(&r->lock);
    /* Old versions drain and are freed when their last request is done. */
    for (int k = 0; k < noldv; k++) repo_release(r, oldv[k]);
    free(oldv);
    serve_log("INFO", "model '%s' loaded (%d version(s))", name, nwant);
    return 0;
fail:
    pthread_rwlock_wrlock(&r->lock);
    {
        serve_model *fm = get_or_add(r, name);
        if (fm) {
            fm->failed = true;
            snprintf(fm->reason, sizeof fm->reason, "%s", err);
            snprintf(fm->sig, sizeof fm->sig, "%s", sig);
        }
        serve_log("ERROR", "model '%s' failed to load%s: %s", name,
                  fm && fm->nv ? " (the previous version keeps serving)" : "", err);
    }
    pthread_rwlock_unlock(&r->lock);
    return 400;
fail_nochange:
    serve_log("ERROR", "model '%s': %s", name, err);
    return 400;
}

int repo_load_model(serve_repo *r, const char *name, char *err, size_t errlen) {
    if (!valid_name(name)) {
        snprintf(err, errlen, "'%s' is not a valid model name", name);
        return 400;
    }
    pthread_mutex_lock(&r->load_mu);
    int rc = load_model_locked(r, name, err, errlen);
    pthread_mutex_unlock(&r->load_mu);
    return rc;
}

int repo_unload_model(serve_repo *r, const char *name, char *err, size_t errlen) {
    pthread_mutex_lock(&r->load_mu);
    pthread_rwlock_wrlock(&r->lock);
    serve_model *m = find_model(r, name);
    if (!m) {
        pthread_rwlock_unlock(&r->lock);
        pthread_mutex_unlock(&r->load_mu);
        snprintf(err, errlen, "unknown model '%s'", name);
        return 400;
    }
    serve_version **oldv = m->v;
    int n = m->nv;
    m->v = NULL;
    m->nv = 0;
    m->unloaded = true;
    snprintf(m->reason, sizeof m->reason, "unloaded");
    pthread_rwlock_unlock(&r->lock);
    pthread_mutex_unlock(&r->load_mu);
    for (int k = 0; k < n; k++) repo_release(r, oldv[k]);
    free(oldv);
    serve_log("INFO", "model '%s' unloaded", name);
    return 0;
}

void repo_load_all(serve_repo *r) {
    DIR *d = opendir(r->root);
    if (!d) {
        serve_log("ERROR", "cannot open the model repository %s: %s", r->root, strerror(errno));
        return;
    }
    char names[256][SERVE_NAME_MAX];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 256) {
        if (e->d_name[0] == '.' || !valid_name(e->d_name)) continue;
        char p[4400];
        struct stat sb;
        snprintf(p, sizeof p, "%s/%s", r->root, e->d_name);
        if (stat(p, &sb) || !S_ISDIR(sb.st_mode)) continue;
        memcpy(names[n++], e->d_name, strlen(e->d_name) + 1); /* valid_name: < 128 */
    }
    closedir(d);
    for (int i = 0; i < n; i++) {
        char err[1024];
        repo_load_model(r, names[i], err, sizeof err);
    }
}

void repo_poll(serve_repo *r) {
    /* New or changed folders are (re)loaded; vanished ones unloaded. A
    ** model unloaded through the API stays unloaded until its files change. */
    DIR *d = opendir(r->root);
    if (!d) return;
    char names[256][SERVE_NAME_MAX];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 256) {
        if (e->d_name[0] == '.' || !valid_name(e->d_name)) continue;
        char p[4400];
        struct stat sb;
        snprintf(p, sizeof p, "%s/%s", r->root, e->d_name);
        if (stat(p, &sb) || !S_ISDIR(sb.st_mode)) continue;
        memcpy(names[n++], e->d_name, strlen(e->d_name) + 1); /* valid_name: < 128 */
    }
    closedir(d);
    for (int i = 0; i < n; i++) {
        char sig[2048];
        model_sig(r, names[i], sig, sizeof sig);
        pthread_rwlock_rdlock(&r->lock);
        serve_model *m = find_model(r, names[i]);
        bool changed = !m || strcmp(m->sig, sig);
        pthread_rwlock_unlock(&r->lock);
        if (changed) {
            char err[1024];
            serve_log("INFO", "model '%s' changed on disk; reloading", names[i]);
            repo_load_model(r, names[i], err, sizeof err);
        }
    }
    pthread_rwlock_rdlock(&r->lock);
    char gone[64][SERVE_NAME_MAX];
    int ng = 0;
    for (int k = 0; k < r->n && ng < 64; k++) {
        bool present = false;
        for (int i = 0; i < n; i++) present |= !strcmp(names[i], r->m[k]->name);
        if (!present && r->m[k]->nv) snprintf(gone[ng++], SERVE_NAME_MAX, "%s", r->m[k]->name);
    }
    pthread_rwlock_unlock(&r->lock);
    for (int i = 0; i < ng; i++) {
        char err[256];
        repo_unload_model(r, gone[i], err, sizeof err);
    }
}

serve_version *repo_acquire(serve_repo *r, const char *model, const char *version, int *status,
                            char *err, size_t errlen) {
    pthread_rwlock_rdlock(&r->lock);
    serve_model *m = find_model(r, model);
    serve_version *v = NULL;
    if (!m) {
        *status = 400;
        snprintf(err, errlen, "Request for unknown model: '%s' is not found", model);
    } else if (!m->nv) {
        *status = 400;
        snprintf(err, errlen, "Request for unknown model: '%s' is not ready%s%s", model,
                 m->reason[0] ? ": " : "", m->reason);
    } else if (!version || !version[0]) {
        v = m->v[m->nv - 1];
    } else {
        char *end;
        long long want = strtoll(version, &end, 10);
        for (int k = 0; !*end && k < m->nv; k++)
            if (m->v[k]->version == want) v = m->v[k];
        if (!v) {
            *status = 400;
            snprintf(err, errlen, "Request for unknown model: '%s' version %s is not found",
                     model, version);
        }
    }
    if (v) atomic_fetch_add(&v->refs, 1);
    pthread_rwlock_unlock(&r->lock);
    return v;
}

int repo_snapshot(serve_repo *r, serve_version ***out) {
    pthread_rwlock_rdlock(&r->lock);
    int total = 0;
    for (int i = 0; i < r->n; i++) total += r->m[i]->nv;
    serve_version **a = malloc(sizeof *a * (size_t)(total + 1));
    int n = 0;
    for (int i = 0; a && i < r->n; i++)
        for (int k = 0; k < r->m[i]->nv; k++) {
            atomic_fetch_add(&r->m[i]->v[k]->refs, 1);
            a[n++] = r->m[i]->v[k];
        }
    pthread_rwlock_unlock(&r->lock);
    *out = a;
    return n;
}

void repo_fail_model(serve_repo *r, const char *name, const char *reason) {
    pthread_mutex_lock(&r->load_mu);
    pthread_rwlock_wrlock(&r->lock);
    serve_model *m = find_model(r, name);
    serve_version **oldv = NULL;
    int n = 0;
    if (m) {
        oldv = m->v;
        n = m->nv;
        m->v = NULL;
        m->nv = 0;
        m->failed = true;
        snprintf(m->reason, sizeof m->reason, "%s", reason);
    }
    pthread_rwlock_unlock(&r->lock);
    pthread_mutex_unlock(&r->load_mu);
    for (int k = 0; k < n; k++) repo_release(r, oldv[k]);
    free(oldv);
    serve_log("ERROR", "model '%s' is not ready: %s", name, reason);
}

bool repo_all_ready(serve_repo *r) {
    pthread_rwlock_rdlock(&r->lock);
    bool ok = true;
    for (int i = 0; i < r->n; i++)
        if (!r->m[i]->nv && !r->m[i]->unloaded) ok = false;
    pthread_rwlock_unlock(&r->lock);
    return ok;
}

bool repo_has_model(serve_repo *r, const char *name) {
    pthread_rwlock_rdlock(&r->lock);
    bool ok = find_model(r, name) != NULL;
    pthread_rwlock_unlock(&r->lock);
    return ok;
}

void repo_index_json(serve_repo *r, sbuf *b, bool ready_only) {
    pthread_rwlock_rdlock(&r->lock);
    sb_str(b, "[");
    bool first = true;
    for (int i = 0; i < r->n; i++) {
        serve_model *m = r->m[i];
        if (ready_only && !m->nv) continue;
        if (!m->nv) {
            sb_printf(b, "%s{\"name\":", first ? "" : ",");
            sb_json_str(b, m->name);
            sb_str(b, ",\"state\":\"UNAVAILABLE\",\"reason\":");
            sb_json_str(b, m->reason);
            sb_str(b, "}");
            first = false;
            continue;
        }
        for (int k = 0; k < m->nv; k++) {
            sb_printf(b, "%s{\"name\":", first ? "" : ",");
            sb_json_str(b, m->name);
            sb_printf(b, ",\"version\":\"%lld\",\"state\":\"READY\",\"reason\":",
                      (long long)m->v[k]->version);
            /* A failed reload is reported next to the version still serving. */
            sb_json_str(b, m->failed ? m->reason : "");
            sb_str(b, "}");
            first = false;
        }
    }
    sb_str(b, "]");
    pthread_rwlock_unlock(&r->lock);
}

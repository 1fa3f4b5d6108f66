/* builder.c: model + config -> engine. Re-imports the model into a private
** IR, pins dims that every profile fixes, runs the optimizer, picks a tactic
** per layer and profile (timed on this machine, remembered in the timing
** cache), plans activation memory at each profile's max shapes and
** serializes the result. */
#include "builder.h"
#include "../import/model.h"
#include "../ops/infer.h"
#include "../passes/passes.h"
#include "../quant/quant.h"
#include "../util/file.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

typedef struct cfg_shape {
    char *input;
    int rank;
    int64_t min[KILN_MAX_RANK], opt[KILN_MAX_RANK], max[KILN_MAX_RANK];
} cfg_shape;

typedef struct cfg_profile {
    int n;
    cfg_shape *shapes;
} cfg_profile;

struct kiln_builder_config {
    kiln_device device;
    unsigned precisions;
    unsigned flags;             /* KILN_BUILD_* */
    uint64_t workspace;
    int opt_level;
    char *timing_cache;
    kiln_log_fn log;
    void *log_user;
    int log_max;
    int n_profiles;
    cfg_profile *profiles;
    /* INT8 calibration and accuracy budget (src/quant) */
    char *calib_dir, *calib_cache, *validate_dir;
    int calib_method, calib_batches;
    double calib_percentile;
    int budget_metric;          /* KILN_METRIC_*, -1: none */
    double budget_value;
    kiln_progress_fn progress;
    void *progress_user;
};

kiln_status kiln_builder_config_create(kiln_builder_config **out) {
    if (!out) return kiln_error(KILN_INVALID_ARGUMENT, "out is NULL");
    kiln_builder_config *c = calloc(1, sizeof *c);
    if (!c) return kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
    c->device = KILN_DEVICE_CPU;
    c->precisions = KILN_PRECISION_FP32;
    c->workspace = (uint64_t)1 << 30;
    c->opt_level = 3;
    c->log_max = KILN_SEVERITY_WARNING;
    c->calib_percentile = 99.99;
    c->budget_metric = -1;
    *out = c;
    return KILN_OK;
}

void kiln_builder_config_destroy(kiln_builder_config *c) {
    if (!c) return;
    for (int p = 0; p < c->n_profiles; p++) {
        for (int i = 0; i < c->profiles[p].n; i++) free(c->profiles[p].shapes[i].input);
        free(c->profiles[p].shapes);
    }
    free(c->profiles);
    free(c->timing_cache);
    free(c->calib_dir);
    free(c->calib_cache);
    free(c->validate_dir);
    free(c);
}

/* Replaces *dst by a copy of src (NULL clears). */
static kiln_status set_path(char **dst, const char *src) {
    char *v = NULL;
    if (src && !(v = kiln_strdup(src))) return kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
    free(*dst);
    *dst = v;
    return KILN_OK;
}

kiln_status kiln_builder_config_set_int8_calibration(kiln_builder_config *c,
                                                     const char *calib_dir,
                                                     kiln_calib_method method,
                                                     double percentile, int max_batches,
                                                     const char *cache_path) {
    if (!c) return kiln_error(KILN_INVALID_ARGUMENT, "config is NULL");
    if ((int)method < KILN_CALIB_ENTROPY || (int)method > KILN_CALIB_PERCENTILE)
        return kiln_error(KILN_INVALID_ARGUMENT, "unknown calibration method %d", (int)method);
    if (!(percentile > 0 && percentile <= 100))
        return kiln_error(KILN_INVALID_ARGUMENT, "calibration percentile %g is not in "
                          "(0, 100]", percentile);
    if (max_batches < 0)
        return kiln_error(KILN_INVALID_ARGUMENT, "calibration batches %d < 0", max_batches);
    if (!calib_dir && !cache_path)
        return kiln_error(KILN_INVALID_ARGUMENT, "INT8 calibration needs a data folder or "
                          "a calibration cache");
    kiln_status st;
    if ((st = set_path(&c->calib_dir, calib_dir)) ||
        (st = set_path(&c->calib_cache, cache_path)))
        return st;
    c->calib_method = (int)method;
    c->calib_percentile = percentile;
    c->calib_batches = max_batches;
    return KILN_OK;
}

kiln_status kiln_builder_config_set_accuracy_budget(kiln_builder_config *c,
                                                    kiln_accuracy_metric metric,
                                                    double value,
                                                    const char *validate_dir) {
    if (!c) return kiln_error(KILN_INVALID_ARGUMENT, "config is NULL");
    if (!validate_dir)
        return kiln_error(KILN_INVALID_ARGUMENT, "an accuracy budget needs validation data");
    switch ((int)metric) {
    case KILN_METRIC_TOP1:
        if (!(value >= 0 && value <= 100))
            return kiln_error(KILN_INVALID_ARGUMENT, "top1 budget %g%% is not in 0..100",
                              value);
        break;
    case KILN_METRIC_REL_L2:
        if (!(value >= 0 && value < INFINITY))
            return kiln_error(KILN_INVALID_ARGUMENT, "rel-l2 budget %g must be >= 0", value);
        break;
    case KILN_METRIC_COSINE:
        if (!(value >= -1 && value <= 1))
            return kiln_error(KILN_INVALID_ARGUMENT, "cosine budget %g is not in -1..1", value);
        break;
    default: return kiln_error(KILN_INVALID_ARGUMENT, "unknown metric %d", (int)metric);
    }
    kiln_status st = set_path(&c->validate_dir, validate_dir);
    if (st) return st;
    c->budget_metric = (int)metric;
    c->budget_value = value;
    return KILN_OK;
}

kiln_status kiln_builder_config_set_progress(kiln_builder_config *c, kiln_progress_fn fn,
                                             void *user) {
    if (!c) return kiln_error(KILN_INVALID_ARGUMENT, "config is NULL");
    c->progress = fn;
    c->progress_user = user;
    return KILN_OK;
}

kiln_status kiln_builder_config_set_device(kiln_builder_config *c, kiln_device d) {
    if (!c) return kiln_error(KILN_INVALID_ARGUMENT, "config is NULL");
    if (d != KILN_DEVICE_CPU && d != KILN_DEVICE_CUDA)
        return kiln_error(KILN_INVALID_ARGUMENT, "unknown device %d", (int)d);
    c->device = d;
    return KILN_OK;
}

kiln_status kiln_builder_config_set_precisions(kiln_builder_config *c, unsigned f) {
    if (!c) return kiln_error(KILN_INVALID_ARGUMENT, "config is NULL");
    if (f & ~(unsigned)(KILN_PRECISION_FP32 | KILN_PRECISION_FP16 |
                        KILN_PRECISION_BF16 | KILN_PRECISION_INT8 | KILN_PRECISION_FP8))
        return kiln_error(KILN_INVALID_ARGUMENT, "unknown precision flags 0x%x", f);
    if ((f & KILN_PRECISION_INT8) && (f & KILN_PRECISION_FP8))
        return kiln_error(KILN_INVALID_ARGUMENT, "INT8 and FP8 quantization exclude each "
                          "other: choose one");
    c->precisions = f | KILN_PRECISION_FP32;
    return KILN_OK;
}

kiln_status kiln_builder_config_set_flags(kiln_builder_config *c, unsigned f) {
    if (!c) return kiln_error(KILN_INVALID_ARGUMENT, "config is NULL");
    if (f & ~(unsigned)(KILN_BUILD_TF32 | KILN_BUILD_STRICT_DEVICE))
        return kiln_error(KILN_INVALID_ARGUMENT, "unknown build flags 0x%x", f);
    c->flags = f;
    return KILN_OK;
}

kiln_status kiln_builder_config_set_workspace(kiln_builder_config *c, uint64_t b) {
    if (!c) return kiln_error(KILN_INVALID_ARGUMENT, "config is NULL");
    c->workspace = b;
    return KILN_OK;
}

kiln_status kiln_builder_config_set_opt_level(kiln_builder_config *c, int level) {
    if (!c) return kiln_error(KILN_INVALID_ARGUMENT, "config is NULL");
    if (level < 0 || level > 5)
        return kiln_error(KILN_INVALID_ARGUMENT, "optimization level %d is not in 0..5",
                          level);
    c->opt_level = level;
    return KILN_OK;
}

kiln_status kiln_builder_config_set_timing_cache(kiln_builder_config *c,
                                                 const char *path) {
    if (!c) return kiln_error(KILN_INVALID_ARGUMENT, "config is NULL");
    free(c->timing_cache);
    c->timing_cache = NULL;
    if (path && !(c->timing_cache = kiln_strdup(path)))
        return kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
    return KILN_OK;
}

kiln_status kiln_builder_config_set_logger(kiln_builder_config *c, kiln_log_fn fn,
                                           void *user, kiln_severity max) {
    if (!c) return kiln_error(KILN_INVALID_ARGUMENT, "config is NULL");
    c->log = fn;
    c->log_user = user;
    c->log_max = (int)max;
    return KILN_OK;
}

kiln_status kiln_builder_config_add_profile(kiln_builder_config *c, int *index_out) {
    if (!c) return kiln_error(KILN_INVALID_ARGUMENT, "config is NULL");
    if (c->n_profiles >= 64)
        return kiln_error(KILN_INVALID_ARGUMENT, "at most 64 profiles");
    cfg_profile *p = realloc(c->profiles, ((size_t)c->n_profiles + 1) * sizeof *p);
    if (!p) return kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
    c->profiles = p;
    memset(&p[c->n_profiles], 0, sizeof *p);
    if (index_out) *index_out = c->n_profiles;
    c->n_profiles++;
    return KILN_OK;
}

kiln_status kiln_builder_config_set_shape(kiln_builder_config *c, int profile,
                                          const char *input, int rank,
                                          const int64_t *min, const int64_t *opt,
                                          const int64_t *max) {
    if (!c || !input || (rank > 0 && (!min || !opt || !max)))
        return kiln_error(KILN_INVALID_ARGUMENT, "NULL argument");
    if (profile < 0 || profile >= c->n_profiles)
        return kiln_error(KILN_INVALID_ARGUMENT, "profile %d does not exist", profile);
    if (rank < 0 || rank > KILN_MAX_RANK)
        return kiln_error(KILN_INVALID_ARGUMENT, "rank %d is out of range", rank);
    for (int d = 0; d < rank; d++)
        if (min[d] < 0 || min[d] > opt[d] || opt[d] > max[d])
            return kiln_error(KILN_INVALID_ARGUMENT, "input '%s' dim %d: need 0 <= "
                              "min <= opt <= max, got %lld/%lld/%lld", input, d,
                              (long long)min[d], (long long)opt[d], (long long)max[d]);
    cfg_profile *p = &c->profiles[profile];
    cfg_shape *s = NULL;
    for (int i = 0; i < p->n; i++)
        if (!strcmp(p->shapes[i].input, input)) s = &p->shapes[i];
    if (!s) {
        cfg_shape *v = realloc(p->shapes, ((size_t)p->n + 1) * sizeof *v);
        if (!v) return kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
        p->shapes = v;
        s = &v[p->n];
        memset(s, 0, sizeof *s);
        if (!(s->input = kiln_strdup(input)))
            return kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
        p->n++;
    }
    s->rank = rank;
    for (int d = 0; d < rank; d++) {
        s->min[d] = min[d];
        s->opt[d] = opt[d];
        s->max[d] = max[d];
    }
    return KILN_OK;
}

void kiln_free(void *p) { free(p); }

/* ---------------------------------------------------------------- logging */
typedef struct build {
    const kiln_builder_config *cfg;
    kiln_engine e;
    ir_graph *g;
    const kiln_backend_ops *be;
    /* device backends: the device tactics are timed on, an execution state
    ** and stream for timing, and constants uploaded once per value id */
    void *dev, *exec, *stream, *ev[2];
    void **dconst;
    int n_host_layers;
    /* timing cache: parallel arrays of keys and "tactic<TAB>time_us" */
    int n_cache, cap_cache;
    char **cache_keys, **cache_vals;
    int cache_hits, cache_new;
    bool cache_stale;          /* the file exists but is for another device */
    double t_phase;            /* start of the current phase (ms) */
    /* layers left on the reference tactic because of the workspace limit */
    int n_ws_forced;
    char ws_forced[512];
    /* placement dry run (builder_placement): no device is opened, nothing
    ** is timed; each layer's device/host decision goes to place_cb */
    bool dry;
    builder_place_fn place_cb;
    void *place_user;
    /* device timing: random activations made once per float type and
    ** reused by every candidate (filling hundreds of MB per candidate on
    ** the host was a large part of a big build) */
    void *rnd[3];
    int64_t rnd_n[3];
    /* and their device copies, which every candidate reads (inputs are
    ** read-only, so two inputs of a layer may share one) */
    void *drnd[3];
    int64_t drnd_n[3];
    uint64_t blob_bytes;       /* prepared layer data, distinct buffers */
    /* layout comparison (KILN_CHANNELS_LAST_MIN_BATCH=auto): the channels-
    ** last decision forced (-1: the usual rule), every layer timed (also
    ** those with one candidate, the reformats) */
    int cl_force;
    bool time_all;
    /* cold-weight timing of host tactics (cold_timing_for), and the L2
    ** size it compares with, found once */
    bool cold_init, cold_on;
    uint64_t l2_bytes;
} build;

/* Host buffer of at least count random values of dt (float32, float16 or
** bfloat16) in [-0.5, 0.5), owned by b; NULL on out-of-memory or another
** type. The values are the same for every caller: timing data only. */
static const void *rand_host(build *b, kiln_dtype dt, int64_t count) {
    int k = dt == KILN_DTYPE_FLOAT32 ? 0 : dt == KILN_DTYPE_FLOAT16 ? 1
            : dt == KILN_DTYPE_BFLOAT16 ? 2 : -1;
    if (k < 0 || count < 0) return NULL;
    if (count <= b->rnd_n[k] && b->rnd[k]) return b->rnd[k];
    size_t es = k == 0 ? 4 : 2;
    int64_t n = count > 0 ? count : 1;
    void *p = realloc(b->rnd[k], (size_t)n * es);
    if (!p) return NULL;
    b->rnd[k] = p;
    uint64_t seed = 0x2545f4914f6cdd1dull + (uint64_t)b->rnd_n[k];
    for (int64_t i = b->rnd_n[k]; i < n; i++) {
        seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
        dt_set_f64(dt, p, (size_t)i, (double)(seed >> 11) / 9007199254740992.0 - 0.5);
    }
    b->rnd_n[k] = n;
    return p;
}

static void blog(const build *b, kiln_severity sev, const char *fmt, ...)
    KILN_PRINTF(3, 4);
static void blog(const build *b, kiln_severity sev, const char *fmt, ...) {
    if ((int)sev > b->cfg->log_max) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (b->cfg->log) b->cfg->log(b->cfg->log_user, sev, msg);
    else fprintf(stderr, "kiln: %s\n", msg);
}

/* ---------------------------------------------------------------- profiles */
/* The precision a Q or DQ layer reports: FP8 where its 8-bit side is a
** float8 type, else INT8. */
static unsigned qdq_precision(const ir_node *n) {
    const ir_value *v = n->op == OP_QuantizeLinear ? (n->n_out ? n->out[0] : NULL)
                                                   : (n->n_in ? n->in[0] : NULL);
    kiln_dtype t = v ? v->type.dtype : KILN_DTYPE_INT8;
    bool f8 = t == KILN_DTYPE_FLOAT8E4M3FN || t == KILN_DTYPE_FLOAT8E4M3FNUZ ||
              t == KILN_DTYPE_FLOAT8E5M2 || t == KILN_DTYPE_FLOAT8E5M2FNUZ;
    return f8 ? KILN_PRECISION_FP8 : KILN_PRECISION_INT8;
}

static kiln_status check_supported(const ir_graph *g) {
    char lab[256];
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *n = g->nodes[i];
        if (!n->schema || !ref_kernel_get(n->op))
            return kiln_error(KILN_UNSUPPORTED, "%s: operator '%s' is not supported",
                              ir_node_label(n, lab, sizeof lab), n->op_type);
        for (int a = 0; a < n->n_attrs; a++) {
            const ir_attr *at = &n->attrs[a];
            kiln_status st = KILN_OK;
            if (at->type == IR_ATTR_GRAPH) st = check_supported(at->g);
            for (int j = 0; !st && at->type == IR_ATTR_GRAPHS && j < at->n; j++)
                st = check_supported(at->graphs[j]);
            if (st) return st;
        }
    }
    return KILN_OK;
}

static kiln_status resolve_profiles(build *b) {
    const kiln_builder_config *c = b->cfg;
    ir_graph *g = b->g;
    int np = c->n_profiles ? c->n_profiles : 1, ni = g->n_inputs;
    b->e.n_profiles = np;
    b->e.profiles = calloc((size_t)np, sizeof *b->e.profiles);
    if (!b->e.profiles) return kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
    for (int p = 0; p < np; p++) {
        engine_profile *ep = &b->e.profiles[p];
        size_t n = (size_t)(ni ? ni : 1);
        ep->min = calloc(n, sizeof *ep->min);
        ep->opt = calloc(n, sizeof *ep->opt);
        ep->max = calloc(n, sizeof *ep->max);
        if (!ep->min || !ep->opt || !ep->max)
            return kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
        const cfg_profile *cp = c->n_profiles ? &c->profiles[p] : NULL;
        for (int k = 0; cp && k < cp->n; k++) {
            int i;
            for (i = 0; i < ni; i++)
                if (!strcmp(g->inputs[i]->name, cp->shapes[k].input)) break;
            if (i == ni)
                return kiln_error(KILN_INVALID_ARGUMENT, "profile %d names input '%s', "
                                  "which the model does not have", p, cp->shapes[k].input);
        }
        for (int i = 0; i < ni; i++) {
            const ir_value *v = g->inputs[i];
            const ir_type *t = &v->type;
            const cfg_shape *s = NULL;
            for (int k = 0; cp && k < cp->n; k++)
                if (!strcmp(cp->shapes[k].input, v->name)) s = &cp->shapes[k];
            if (t->rank < 0 && !s)
                return kiln_error(KILN_INVALID_ARGUMENT, "input '%s' has unknown rank: "
                                  "give its shape range (--shapes)", v->name);
            if (s && t->rank >= 0 && s->rank != t->rank)
                return kiln_error(KILN_INVALID_ARGUMENT, "input '%s' has rank %d, "
                                  "profile %d gives %d dims", v->name, t->rank, p, s->rank);
            int rank = s ? s->rank : t->rank;
            for (int d = 0; d < rank; d++) {
                int64_t decl = t->rank >= 0 ? t->dims[d] : -1;
                if (s) {
                    if (decl >= 0 && (s->min[d] != decl || s->max[d] != decl))
                        return kiln_error(KILN_INVALID_ARGUMENT, "input '%s' dim %d is "
                                          "fixed at %lld; profile %d gives %lld..%lld",
                                          v->name, d, (long long)decl, p,
                                          (long long)s->min[d], (long long)s->max[d]);
                    ep->min[i][d] = s->min[d];
                    ep->opt[i][d] = s->opt[d];
                    ep->max[i][d] = s->max[d];
                } else if (decl < 0) {
                    const char *nm = ir_dim_name(g->model, decl);
                    return kiln_error(KILN_INVALID_ARGUMENT, "input '%s' dim %d ('%s') "
                                      "is dynamic: give its range in %s (--shapes, or "
                                      "--min-shapes/--opt-shapes/--max-shapes)", v->name,
                                      d, nm ? nm : "?", c->n_profiles ? "every profile"
                                                                      : "a profile");
                } else {
                    ep->min[i][d] = ep->opt[i][d] = ep->max[i][d] = decl;
                }
            }
        }
    }
    /* Pin dims that every profile fixes to one value, so the optimizer sees
    ** them as constants (shape arithmetic then folds away). */
    for (int i = 0; i < ni; i++) {
        ir_type *t = &g->inputs[i]->type;
        if (t->rank < 0) { /* unknown rank: take the profile's */
            t->rank = b->e.profiles[0].max[i][0] >= 0 ? 0 : 0;
            const cfg_profile *cp = &c->profiles[0];
            for (int k = 0; k < cp->n; k++)
                if (!strcmp(cp->shapes[k].input, g->inputs[i]->name)) t->rank = cp->shapes[k].rank;
            for (int d = 0; d < t->rank; d++) t->dims[d] = ir_model_new_sym(g->model, NULL);
        }
        for (int d = 0; d < t->rank; d++) {
            bool fixed = true;
            int64_t v0 = b->e.profiles[0].min[i][d];
            for (int p = 0; p < np && fixed; p++)
                fixed = b->e.profiles[p].min[i][d] == v0 && b->e.profiles[p].max[i][d] == v0;
            if (fixed) t->dims[d] = v0;
        }
    }
    return KILN_OK;
}

static void profile_types(const build *b, int p, bool opt, ir_type *in) {
    const engine_profile *ep = &b->e.profiles[p];
    for (int i = 0; i < b->g->n_inputs; i++) {
        in[i] = b->g->inputs[i]->type;
        for (int d = 0; d < in[i].rank; d++)
            in[i].dims[d] = opt ? ep->opt[i][d] : ep->max[i][d];
    }
}

/* ---------------------------------------------------------------- timing cache */
static kiln_status cache_put(build *b, const char *key, const char *val) {
    for (int i = 0; i < b->n_cache; i++)
        if (!strcmp(b->cache_keys[i], key)) {
            char *v = kiln_strdup(val);
            if (!v) return kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
            free(b->cache_vals[i]);
            b->cache_vals[i] = v;
            return KILN_OK;
        }
    if (b->n_cache == b->cap_cache) {
        int cap = b->cap_cache ? b->cap_cache * 2 : 64;
        char **k = realloc(b->cache_keys, (size_t)cap * sizeof *k);
        if (k) b->cache_keys = k;
        char **v = realloc(b->cache_vals, (size_t)cap * sizeof *v);
        if (v) b->cache_vals = v;
        if (!k || !v) return kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
        b->cap_cache = cap;
    }
    b->cache_keys[b->n_cache] = kiln_strdup(key);
    b->cache_vals[b->n_cache] = kiln_strdup(val);
    if (!b->cache_keys[b->n_cache] || !b->cache_vals[b->n_cache]) {
        free(b->cache_keys[b->n_cache]);
        free(b->cache_vals[b->n_cache]);
        return kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
    }
    b->n_cache++;
    return KILN_OK;
}

static const char *cache_get(const build *b, const char *key) {
    for (int i = 0; i < b->n_cache; i++)
        if (!strcmp(b->cache_keys[i], key)) return b->cache_vals[i];
    return NULL;
}

static void fingerprint(const build *b, char *buf, size_t n) {
    char isa[64];
    snprintf(buf, n, "kiln-%s/%s/%s/%s%s%s", KILN_VERSION_STRING, b->be->name,
             kiln_host_arch(), kiln_isa_names(b->be->host_isa(), isa, sizeof isa),
             b->dev ? "/" : "", b->dev ? b->be->dev->fingerprint(b->dev) : "");
}

/* The cache file: a header line naming the format and device fingerprint,
** then "key<TAB>tactic<TAB>time_us" lines. The time rides along so that a
** build served from the cache records the very numbers the timed build
** did, and rebuilds are byte-identical. A cache from another device or
** version is ignored with a warning (its timings say nothing about this
** machine) and replaced when the build succeeds. A file that is not a
** timing cache at all was refused before the build (cache_check). */
#define CACHE_HEADER "kiln-timing-cache 2 "
/* An existing file at the cache path must be a Kiln timing cache (of any
** version or device): anything else is the user's data, never overwritten. */
static kiln_status cache_check(const char *path) {
    if (!path) return KILN_OK;
    FILE *f = fopen(path, "rb");
    if (!f) return KILN_OK; /* created on success */
    char head[18] = {0};
    size_t n = fread(head, 1, sizeof head - 1, f);
    fclose(f);
    if (n == 0 || strncmp(head, "kiln-timing-cache", 17) != 0)
        return kiln_error(KILN_INVALID_ARGUMENT, "timing cache '%s' exists and is not a "
                          "Kiln timing cache; refusing to overwrite it", path);
    return KILN_OK;
}

static void cache_load(build *b) {
    const char *path = b->cfg->timing_cache;
    if (!path) return;
    FILE *f = fopen(path, "r");
    if (!f) return;
    char line[4096], fp[1024];
    fingerprint(b, fp, sizeof fp);
    if (!fgets(line, sizeof line, f)) {
        fclose(f);
        return;
    }
    line[strcspn(line, "\n")] = 0;
    size_t hl = strlen(CACHE_HEADER);
    if (strncmp(line, CACHE_HEADER, hl) || strcmp(line + hl, fp)) {
        blog(b, KILN_SEVERITY_WARNING, "timing cache '%s' is from another device or "
             "kiln version; it will be replaced when this build succeeds", path);
        b->cache_stale = true;
        fclose(f);
        return;
    }
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        char *tab = strchr(line, '\t');
        if (!tab || !strchr(tab + 1, '\t')) continue;
        *tab = 0;
        if (cache_put(b, line, tab + 1)) break;
        n++;
    }
    fclose(f);
    blog(b, KILN_SEVERITY_INFO, "timing cache '%s': %d entries", path, n);
}

static void cache_save(build *b) {
    const char *path = b->cfg->timing_cache;
    if (!path || (!b->cache_new && !b->cache_stale)) return;
    size_t cap = 256, len = 0;
    for (int i = 0; i < b->n_cache; i++)
        cap += strlen(b->cache_keys[i]) + strlen(b->cache_vals[i]) + 2;
    char fp[1024];
    cap += sizeof fp;
    char *buf = malloc(cap);
    if (!buf) return;
    fingerprint(b, fp, sizeof fp);
    len += (size_t)snprintf(buf, cap, CACHE_HEADER "%s\n", fp);
    for (int i = 0; i < b->n_cache; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s\t%s\n", b->cache_keys[i],
                                b->cache_vals[i]);
    if (kiln_write_atomic(path, buf, len))
        blog(b, KILN_SEVERITY_WARNING, "cannot write timing cache '%s': %s", path,
             kiln_last_error());
    free(buf);
}

/* Layer signature: op, attributes, input types and which inputs are
** constant (with a digest of the constant bytes' size, not content). */
static void layer_key(const ir_node *n, const ir_type *const *in, unsigned prec,
                      char *buf, size_t cap) {
    size_t k = 0;
    uint64_t h = 1469598103934665603ull;
#define MIX(p, len)                                                            \
    do {                                                                       \
        const unsigned char *q_ = (const unsigned char *)(p);                  \
        for (size_t z_ = 0; z_ < (size_t)(len); z_++)                          \
            h = (h ^ q_[z_]) * 1099511628211ull;                               \
    } while (0)
    for (int a = 0; a < n->n_attrs; a++) {
        const ir_attr *at = &n->attrs[a];
        MIX(at->name, strlen(at->name));
        MIX(&at->type, sizeof at->type);
        switch (at->type) {
        case IR_ATTR_INT: MIX(&at->i, sizeof at->i); break;
        case IR_ATTR_FLOAT: MIX(&at->f, sizeof at->f); break;
        case IR_ATTR_STRING: MIX(at->s, at->s_len); break;
        case IR_ATTR_INTS: if (at->n) MIX(at->ints, (size_t)at->n * sizeof *at->ints); break;
        case IR_ATTR_FLOATS: if (at->n) MIX(at->floats, (size_t)at->n * sizeof *at->floats); break;
        default: break;
        }
    }
#undef MIX
    k += (size_t)snprintf(buf + k, cap - k, "%s:%016llx:p%u", n->op_type,
                          (unsigned long long)h, prec);
    for (int i = 0; i < n->n_in && k < cap; i++) {
        if (!in[i]) {
            k += (size_t)snprintf(buf + k, cap - k, ":-");
            continue;
        }
        char s[256];
        k += (size_t)snprintf(buf + k, cap - k, ":%s%s[%s]", n->in[i]->const_val ? "c" : "",
                              kiln_dtype_name(in[i]->dtype),
                              shape_str(in[i]->rank, in[i]->dims, s, sizeof s));
    }
}

/* ---------------------------------------------------------------- tactic timing */
static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static bool concrete(const ir_type *t) {
    uint64_t nb;
    return type_bytes(t, &nb);
}

/* ---- cold-weight timing. A layer timed alone, run after run, finds its
** weights in the caches; inside a network whose weights exceed the L3 it
** never does (ResNet-50: 100 MB), and a tactic that reads more weight
** bytes (Winograd's transformed weights are 16/9 or 4x the direct ones)
** looks better than it is. So a layer whose constants exceed the L2 has
** them evicted before every timed run (not timed itself) by the backend
** (kiln_backend_ops.evict), where it can.
** KILN_COLD_TIMING=0 turns this off. (Not only when the graph's constants
** exceed the L3: sysconf's L3 is the whole package's, 320 MB on a VM with
** 32 MB of its own here, and a shared L3 holds other tenants' data.) */

/* Whether n's host tactics are timed with its constants (and prepared
** blob) evicted before each run. */
static bool cold_timing_for(build *b, const ir_node *n) {
    if (!b->cold_init) {
        b->cold_init = true;
        const char *e = getenv("KILN_COLD_TIMING");
        b->cold_on = b->be->evict && !(e && !strcmp(e, "0"));
        b->l2_bytes = 1u << 20; /* per core; where sysconf does not say */
#if defined(_SC_LEVEL2_CACHE_SIZE)
        long v = sysconf(_SC_LEVEL2_CACHE_SIZE);
        if (v > 0) b->l2_bytes = (uint64_t)v;
#endif
    }
    if (!b->cold_on) return false;
    uint64_t mine = 0;
    for (int i = 0; i < n->n_in; i++)
        if (n->in[i] && n->in[i]->const_val) mine += n->in[i]->const_val->nbytes;
    return mine > b->l2_bytes;
}

/* Median time of a tactic on random activations (and the real constants)
** at the given types; < 0 when it cannot be timed. cold: its constants
** and blob are evicted from the caches before each timed run. */
static double time_tactic(const build *b, const ir_node *n, const kiln_tactic *t,
                          const ir_type *types, int reps, bool cold) {
    int ni = n->n_in, no = n->n_out;
    double result = -1;
    const kiln_tensor **in = calloc((size_t)ni + 1, sizeof *in);
    kiln_tensor **owned = calloc((size_t)ni + 1, sizeof *owned);
    kiln_tensor **out = calloc((size_t)no + 1, sizeof *out);
    double *samples = calloc((size_t)reps + 1, sizeof *samples);
    void *ws = NULL, *blob = NULL;
    size_t wsz = 0, blob_n = 0;
    ref_ctx *c = calloc(1, sizeof *c);
    const ir_type **tin = calloc((size_t)ni + 1, sizeof *tin);
    if (!in || !owned || !out || !samples || !c || !tin || n->n_implicit) goto done;
    uint64_t seed = 0x2545f4914f6cdd1dull;
    for (int i = 0; i < ni; i++) {
        const ir_value *v = n->in[i];
        if (!v) continue;
        tin[i] = &types[v->id];
        if (v->const_val) {
            in[i] = v->const_val;
            continue;
        }
        const ir_type *ty = &types[v->id];
        /* only float activations can be faked safely, and 8-bit quantized
        ** ones (any byte is a valid value), so INT8 layers are timed too */
        bool q8 = ty->dtype == KILN_DTYPE_INT8 || ty->dtype == KILN_DTYPE_UINT8;
        if (!concrete(ty) || (ty->dtype != KILN_DTYPE_FLOAT32 &&
                              ty->dtype != KILN_DTYPE_FLOAT16 &&
                              ty->dtype != KILN_DTYPE_FLOAT64 && !q8))
            goto done;
        if (tensor_new(ty->dtype, ty->rank, ty->dims, &owned[i])) goto done;
        int64_t cnt = tensor_numel(owned[i]);
        for (int64_t k = 0; k < cnt; k++) {
            seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
            if (q8) ((uint8_t *)owned[i]->data)[k] = (uint8_t)(seed >> 56);
            else dt_set_f64(ty->dtype, owned[i]->data, (size_t)k,
                            (double)(seed >> 11) / 9007199254740992.0 - 0.5);
        }
        in[i] = owned[i];
    }
    for (int o = 0; o < no; o++) {
        const ir_type *ty = &types[n->out[o]->id];
        if (!concrete(ty) || tensor_new(ty->dtype, ty->rank, ty->dims, &out[o])) goto done;
    }
    if (t->workspace) {
        wsz = t->workspace(n, tin);
        if (wsz > b->cfg->workspace) goto done;
        if (wsz && !(ws = kiln_aligned_alloc(wsz))) goto done;
    }
    c->node = n;
    c->opset = (int)n->graph->model->opset;
    c->n_in = ni;
    c->in = in;
    c->n_out = no;
    c->out = out;
    c->ws = ws;
    c->ws_size = wsz;
    if (t->prepare) { /* time it as it will run: on its prepared data */
        const kiln_tensor **cin = calloc((size_t)ni + 1, sizeof *cin);
        if (!cin) goto done;
        for (int i = 0; i < ni; i++) cin[i] = n->in[i] ? n->in[i]->const_val : NULL;
        const ir_type **tb = calloc((size_t)ni + 1, sizeof *tb);
        if (!tb) {
            free(cin);
            goto done;
        }
        for (int i = 0; i < ni; i++) tb[i] = n->in[i] ? &n->in[i]->type : NULL;
        kiln_status pst = t->prepare(n, tb, cin, &blob, &blob_n);
        free(cin);
        free(tb);
        if (pst) goto done;
        c->blob = blob;
        c->blob_size = blob_n;
    }
    if (t->run(c) != 0) goto done; /* warm-up, also proves it runs */
    for (int r = 0; r < reps; r++) {
        if (cold) { /* the backend's threads evict, then are ready to run */
            for (int i = 0; i < ni; i++)
                if (n->in[i] && n->in[i]->const_val && n->in[i]->const_val->data)
                    b->be->evict(n->in[i]->const_val->data, n->in[i]->const_val->nbytes);
            if (blob) b->be->evict(blob, blob_n);
        }
        double t0 = now_us();
        if (t->run(c) != 0) goto done;
        samples[r] = now_us() - t0;
    }
    qsort(samples, (size_t)reps, sizeof *samples, cmp_double);
    result = samples[reps / 2];
done:
    for (int i = 0; owned && i < ni; i++) tensor_free(owned[i]);
    for (int o = 0; out && o < no; o++) tensor_free(out[o]);
    kiln_aligned_free(ws);
    kiln_aligned_free(blob);
    free(in); free(owned); free(out); free(samples); free(c); free(tin);
    return result;
}

/* Device form of time_tactic: inputs are random on the device (constants
** uploaded once per build), the clock is the device's own (events around
** each repetition). < 0 when it cannot be timed. */
/* beat: the best median so far on this layer (< 0: none); a candidate
** whose first timed run is over twice that stops there (it cannot win, and
** the slow ones, FFT or GEMM convolutions at batch 256, cost the most). */
/* Device buffer of at least count random values of dt (rand_host's),
** owned by b; NULL on failure. Uploaded again only when it must grow. */
static void *rand_dev(build *b, kiln_dtype dt, int64_t count) {
    const kiln_device_ops *D = b->be->dev;
    int k = dt == KILN_DTYPE_FLOAT32 ? 0 : dt == KILN_DTYPE_FLOAT16 ? 1
            : dt == KILN_DTYPE_BFLOAT16 ? 2 : -1;
    if (k < 0 || count < 0) return NULL;
    if (b->drnd[k] && count <= b->drnd_n[k]) return b->drnd[k];
    int64_t n = count > 0 ? count : 1;
    size_t es = k == 0 ? 4 : 2;
    const void *src = rand_host(b, dt, n);
    if (!src) return NULL;
    if (b->drnd[k]) D->free(b->dev, b->drnd[k]);
    b->drnd[k] = NULL;
    b->drnd_n[k] = 0;
    void *p = NULL;
    if (D->alloc(b->dev, (size_t)n * es, &p)) return NULL;
    if (D->copy(b->dev, p, src, (size_t)n * es, DEV_H2D, b->stream) ||
        D->stream_sync(b->dev, b->stream)) {
        D->free(b->dev, p);
        return NULL;
    }
    b->drnd[k] = p;
    b->drnd_n[k] = n;
    return p;
}

static double time_tactic_dev(build *b, const ir_node *n, const kiln_tactic *t,
                              const ir_type *types, int reps, double beat) {
    const kiln_device_ops *D = b->be->dev;
    int ni = n->n_in, no = n->n_out;
    double result = -1;
    kiln_tensor *din = calloc((size_t)ni + 1, sizeof *din);
    const kiln_tensor **in = calloc((size_t)ni + 1, sizeof *in);
    kiln_tensor *dout = calloc((size_t)no + 1, sizeof *dout);
    kiln_tensor **out = calloc((size_t)no + 1, sizeof *out);
    double *samples = calloc((size_t)reps + 1, sizeof *samples);
    void **bufs = calloc((size_t)(ni + no + 2), sizeof *bufs);
    int nb = 0;
    const ir_type **tin = calloc((size_t)ni + 1, sizeof *tin);
    ref_ctx *c = calloc(1, sizeof *c);
    if (!din || !in || !dout || !out || !samples || !bufs || !tin || !c || n->n_implicit)
        goto done;
    for (int i = 0; i < ni; i++) {
        const ir_value *v = n->in[i];
        if (!v) continue;
        tin[i] = &types[v->id];
        if (v->const_val) {
            if (!b->dconst[v->id]) {
                if (D->alloc(b->dev, v->const_val->nbytes ? v->const_val->nbytes : 64,
                             &b->dconst[v->id]) ||
                    D->copy(b->dev, b->dconst[v->id], v->const_val->data,
                            v->const_val->nbytes, DEV_H2D, b->stream))
                    goto done;
            }
            din[i] = *v->const_val;
            din[i].flags = 0;
            din[i].data = b->dconst[v->id];
            in[i] = &din[i];
            continue;
        }
        const ir_type *ty = &types[v->id];
        /* Only float activations can be faked safely, and 8-bit quantized
        ** ones (any byte is a valid int8/uint8 value: the bytes of the
        ** float32 random buffer serve), so INT8 layers are timed too. */
        bool q8 = ty->dtype == KILN_DTYPE_INT8 || ty->dtype == KILN_DTYPE_UINT8;
        if (!concrete(ty) || (ty->dtype != KILN_DTYPE_FLOAT32 &&
                              ty->dtype != KILN_DTYPE_FLOAT16 &&
                              ty->dtype != KILN_DTYPE_BFLOAT16 && !q8))
            goto done;
        int64_t cnt = shape_numel(ty->rank, ty->dims);
        uint64_t bytes;
        void *src = cnt < 0 ? NULL
                    : q8    ? rand_dev(b, KILN_DTYPE_FLOAT32, (cnt + 3) / 4)
                            : rand_dev(b, ty->dtype, cnt);
        if (!src || !type_bytes(ty, &bytes)) goto done;
        memset(&din[i], 0, sizeof din[i]);
        din[i].dtype = ty->dtype;
        din[i].rank = ty->rank;
        memcpy(din[i].dims, ty->dims, sizeof din[i].dims);
        din[i].nbytes = (size_t)bytes;
        din[i].data = src;
        in[i] = &din[i];
    }
    for (int o = 0; o < no; o++) {
        const ir_type *ty = &types[n->out[o]->id];
        uint64_t bytes;
        if (!type_bytes(ty, &bytes)) goto done;
        dout[o].dtype = ty->dtype;
        dout[o].rank = ty->rank;
        memcpy(dout[o].dims, ty->dims, sizeof dout[o].dims);
        dout[o].nbytes = (size_t)bytes;
        if (D->alloc(b->dev, bytes ? (size_t)bytes : 64, &bufs[nb])) goto done;
        dout[o].data = bufs[nb++];
        out[o] = &dout[o];
    }
    size_t wsz = t->workspace ? t->workspace(n, tin) : 0;
    if (wsz > b->cfg->workspace) goto done;
    void *ws = NULL;
    if (wsz) {
        if (D->alloc(b->dev, wsz, &bufs[nb])) goto done;
        ws = bufs[nb++];
    }
    c->node = n;
    c->opset = (int)n->graph->model->opset;
    c->n_in = ni;
    c->in = in;
    c->n_out = no;
    c->out = out;
    c->ws = ws;
    c->ws_size = wsz;
    c->stream = b->stream;
    c->exec = b->exec;
    /* Warm-up proves it runs (and lets libraries pick and cache plans). */
    if (t->run(c) != 0 || D->stream_sync(b->dev, b->stream)) goto done;
    int done_reps = 0;
    for (int r = 0; r < reps; r++) {
        float ms = 0;
        if (D->event_record(b->dev, b->ev[0], b->stream) || t->run(c) != 0 ||
            D->event_record(b->dev, b->ev[1], b->stream) ||
            D->event_elapsed(b->dev, b->ev[0], b->ev[1], &ms))
            goto done;
        samples[done_reps++] = (double)ms * 1000.0;
        if (r == 0 && beat >= 0 && samples[0] > 2.0 * beat) break; /* a sure loser */
    }
    qsort(samples, (size_t)done_reps, sizeof *samples, cmp_double);
    result = samples[done_reps / 2];
done:
    if (result < 0) {
        char lab[256];
        blog(b, KILN_SEVERITY_VERBOSE, "tactic %s on %s cannot be timed%s%s", t->name,
             ir_node_label(n, lab, sizeof lab), c && c->err[0] ? ": " : "",
             c && c->err[0] ? c->err : "");
        kiln_error_clear();
    }
    if (D->stream_sync(b->dev, b->stream)) kiln_error_clear();
    for (int k = 0; bufs && k < nb; k++) D->free(b->dev, bufs[k]);
    free(din); free(in); free(dout); free(out); free(samples); free(bufs); free(tin); free(c);
    return result;
}

/* Device builds: layers that only compute shapes (small integer tensors
** derived from Shape/Size and constants) stay on the host, where the
** runtime reads their values to size later layers without a device round
** trip (TensorRT's "shape tensors"). */
static bool *shape_layers(const ir_graph *g) {
    bool *val = calloc((size_t)g->n_values + 1, sizeof *val);
    bool *lay = calloc((size_t)g->n_nodes + 1, sizeof *lay);
    if (!val || !lay) {
        free(val);
        free(lay);
        return NULL;
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *n = g->nodes[i];
        bool ok = n->n_out > 0 && n->n_implicit == 0;
        bool from_shape = n->op == OP_Shape || n->op == OP_Size;
        for (int k = 0; ok && !from_shape && k < n->n_in; k++) {
            const ir_value *v = n->in[k];
            if (!v || v->const_val) continue;
            if (!val[v->id]) ok = false;
        }
        for (int o = 0; ok && o < n->n_out; o++) {
            const ir_type *t = &n->out[o]->type;
            ok = (t->dtype == KILN_DTYPE_INT64 || t->dtype == KILN_DTYPE_INT32) &&
                 t->rank >= 0 && t->rank <= 1;
        }
        if (!ok) continue;
        lay[i] = true;
        for (int o = 0; o < n->n_out; o++) val[n->out[o]->id] = true;
    }
    free(val);
    return lay;
}

#define MAX_CANDIDATES 32

static kiln_status choose_tactics(build *b, int p, const ir_type *opt_types,
                                  const ir_type *max_types) {
    ir_graph *g = b->g;
    bool *on_host = b->dev ? shape_layers(g) : NULL;
    if (b->dev && !on_host) return kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
    int reps = b->cfg->opt_level <= 1 ? 3 : b->cfg->opt_level <= 3 ? 5 : 11;
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *n = g->nodes[i];
        engine_layer *L = &b->e.layers[i];
        /* device layers can offer many (cuDNN's legacy algorithms and its
        ** graph-API engine configs, cuBLASLt's heuristic picks) */
        const kiln_tactic *cand[MAX_CANDIDATES];
        const ir_type **tin = calloc((size_t)n->n_in + 1, sizeof *tin);
        const ir_type **tmax = calloc((size_t)n->n_in + 1, sizeof *tmax);
        if (!tin || !tmax) {
            free(tin);
            free(tmax);
            free(on_host);
            return kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
        }
        for (int k = 0; k < n->n_in; k++) {
            tin[k] = n->in[k] ? &n->in[k]->type : NULL;
            tmax[k] = n->in[k] ? &max_types[n->in[k]->id] : NULL;
        }
        int nc = b->be->tactics(n, tin, cand, MAX_CANDIDATES);
        /* Drop candidates whose scratch exceeds the workspace limit. A
        ** placement dry run keeps those that answer SIZE_MAX ("cannot
        ** tell"): cuDNN sizes its workspace only with a handle, which needs
        ** a GPU, and the dry run must place layers the same on a machine
        ** without one. */
        int kept = 0;
        for (int k = 0; k < nc; k++) {
            size_t w = cand[k]->workspace ? cand[k]->workspace(n, tmax) : 0;
            if (w <= b->cfg->workspace || (b->dry && w == SIZE_MAX) ||
                !strcmp(cand[k]->name, "ref"))
                cand[kept++] = cand[k];
        }
        /* The limit took every fast tactic away: say so, it costs a lot. */
        if (kept == 1 && nc > 1 && !strcmp(cand[0]->name, "ref") && p == 0) {
            char lab[256];
            ir_node_label(n, lab, sizeof lab);
            size_t used = strlen(b->ws_forced);
            if (used + strlen(lab) + 3 < sizeof b->ws_forced)
                snprintf(b->ws_forced + used, sizeof b->ws_forced - used, "%s%s",
                         used ? ", " : "", lab);
            b->n_ws_forced++;
        }
        nc = kept;
        free(tin);
        if (nc == 0) {
            free(tmax);
            free(on_host);
            char lab[256];
            return kiln_error(KILN_UNSUPPORTED, "%s: no tactic can run it",
                              ir_node_label(n, lab, sizeof lab));
        }
        builder_place where = BUILDER_PLACE_DEVICE;
        if (b->dev && on_host[i]) {
            where = BUILDER_PLACE_SHAPE_HOST;
            int nh = 0;
            for (int k = 0; k < nc; k++)
                if (!(cand[k]->flags & TACTIC_DEVICE)) cand[nh++] = cand[k];
            if (nh) nc = nh;
        } else if (b->dev) {
            /* A device kernel always beats copies to the host and back:
            ** host tactics compete only when no device tactic applies. */
            int ndev = 0;
            for (int k = 0; k < nc; k++)
                if (cand[k]->flags & TACTIC_DEVICE) cand[ndev++] = cand[k];
            if (ndev) {
                nc = ndev;
            } else if (p == 0) {
                where = BUILDER_PLACE_FALLBACK;
                char lab[256];
                ir_node_label(n, lab, sizeof lab);
                if (b->cfg->flags & KILN_BUILD_STRICT_DEVICE) {
                    free(tmax);
                    free(on_host);
                    return kiln_error(KILN_UNSUPPORTED, "%s: no %s kernel for this layer "
                                      "(--strict-device refuses host fallback)", lab,
                                      b->be->name);
                }
                b->n_host_layers++;
                blog(b, KILN_SEVERITY_WARNING, "%s: no %s kernel; it runs on the host "
                     "with copies around it", lab, b->be->name);
            }
        }
        if (b->dry) {
            if (p == 0) b->place_cb(b->place_user, n, where, tmax);
            free(tmax);
            L->tactic[p] = cand[0];
            continue;
        }
        const kiln_tactic *best = cand[0];
        double best_t = -1;
        if ((nc > 1 || b->time_all) && b->cfg->opt_level > 0) {
            char key[2048];
            const ir_type **topt = tmax;
            for (int k = 0; k < n->n_in; k++)
                topt[k] = n->in[k] ? &opt_types[n->in[k]->id] : NULL;
            layer_key(n, topt, KILN_PRECISION_FP32, key, sizeof key);
            /* host timing with cold weights: another cache entry */
            bool cold = !b->dev && cold_timing_for(b, n);
            if (cold && strlen(key) + 6 < sizeof key) strcat(key, ":cold");
            /* host tactics timed on more than one thread: their own entry
            ** (a split that wins at 16 threads may lose at 1) */
            int nth = b->dev ? 1 : kiln_get_num_threads();
            if (nth > 1 && strlen(key) + 16 < sizeof key)
                snprintf(key + strlen(key), sizeof key - strlen(key), ":t%d", nth);
            const char *hit = cache_get(b, key);
            const kiln_tactic *cached = NULL;
            size_t hl = hit ? strcspn(hit, "\t") : 0;
            for (int k = 0; hit && k < nc; k++)
                if (strlen(cand[k]->name) == hl && !strncmp(cand[k]->name, hit, hl))
                    cached = cand[k];
            if (cached) {
                best = cached;
                best_t = (float)strtod(hit + hl + (hit[hl] ? 1 : 0), NULL);
                b->cache_hits++;
            } else {
                double times[MAX_CANDIDATES];
                for (int k = 0; k < nc; k++) {
                    times[k] = (cand[k]->flags & TACTIC_DEVICE)
                                   ? time_tactic_dev(b, n, cand[k], opt_types, reps, best_t)
                                   : time_tactic(b, n, cand[k], opt_types, reps, cold);
                    if (times[k] >= 0 && (best_t < 0 || times[k] < best_t)) {
                        best_t = times[k];
                        best = cand[k];
                    }
                }
                char lab[256];
                ir_node_label(n, lab, sizeof lab);
                for (int k = 0; k < nc; k++) /* after timing, to mark the winner */
                    blog(b, KILN_SEVERITY_VERBOSE, "tactic %s on %s: %s%.1f us%s",
                         cand[k]->name, lab, times[k] < 0 ? "(cannot time) " : "",
                         times[k] < 0 ? 0.0 : times[k],
                         cand[k] == best && best_t >= 0 ? "  <- chosen" : "");
                if (best_t >= 0) {
                    /* Stored as the float the engine records, so a cached
                    ** rebuild writes the same bytes. */
                    char val[256];
                    snprintf(val, sizeof val, "%s\t%.9g", best->name, (double)(float)best_t);
                    kiln_status st = cache_put(b, key, val);
                    if (st) {
                        free(tmax);
                        free(on_host);
                        return st;
                    }
                    b->cache_new++;
                }
            }
        }
        free(tmax);
        L->tactic[p] = best;
        L->time_us[p] = (float)best_t;
        b->e.isa_required |= best->isa;
        /* progress: about ten lines per profile, and the last layer */
        int step = g->n_nodes >= 10 ? g->n_nodes / 10 : 1;
        if ((i + 1) % step == 0 || i + 1 == g->n_nodes)
            blog(b, KILN_SEVERITY_INFO, "tactic selection: profile %d: %d/%d layers",
                 p, i + 1, g->n_nodes);
    }
    free(on_host);
    return KILN_OK;
}

/* Asks each chosen tactic of profile p for its prepared data (packed
** weights) and keeps it in the layer; a profile whose bytes equal an
** earlier profile's shares that buffer. */
static kiln_status prepare_layers(build *b, int p) {
    ir_graph *g = b->g;
    int np = b->e.n_profiles;
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *n = g->nodes[i];
        engine_layer *L = &b->e.layers[i];
        const kiln_tactic *t = L->tactic[p];
        if (!t || !t->prepare) continue;
        const ir_type **tin = calloc((size_t)n->n_in + 1, sizeof *tin);
        const kiln_tensor **cin = calloc((size_t)n->n_in + 1, sizeof *cin);
        if (!tin || !cin) {
            free(tin);
            free(cin);
            return kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
        }
        for (int k = 0; k < n->n_in; k++) {
            tin[k] = n->in[k] ? &n->in[k]->type : NULL;
            cin[k] = n->in[k] ? n->in[k]->const_val : NULL;
        }
        void *blob = NULL;
        size_t bn = 0;
        kiln_status st = t->prepare(n, tin, cin, &blob, &bn);
        free(tin);
        free(cin);
        if (st) {
            char lab[256];
            kiln_error_prefix("%s: tactic %s: preparing its data",
                              ir_node_label(n, lab, sizeof lab), t->name);
            return st;
        }
        if (!blob || !bn) {
            kiln_aligned_free(blob);
            continue;
        }
        if (!L->blob) {
            L->blob = calloc((size_t)np, sizeof *L->blob);
            L->blob_size = calloc((size_t)np, sizeof *L->blob_size);
            if (!L->blob || !L->blob_size) {
                kiln_aligned_free(blob);
                return kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
            }
        }
        bool shared = false;
        for (int q = 0; q < p && !shared; q++)
            if (L->blob[q] && L->blob_size[q] == bn && !memcmp(L->blob[q], blob, bn)) {
                kiln_aligned_free(blob);
                blob = (void *)L->blob[q];
                shared = true;
            }
        L->blob[p] = blob;
        L->blob_size[p] = bn;
        if (!shared) b->blob_bytes += bn;
    }
    return KILN_OK;
}

/* ---------------------------------------------------------------- build */
/* Ends a phase: one INFO line with its time, so a long build shows where
** it is and where the time went. */
static void phase_done(build *b, const char *what) {
    double t = now_us() / 1e3;
    blog(b, KILN_SEVERITY_INFO, "%s: %.1f ms", what, t - b->t_phase);
    b->t_phase = t;
}

static kiln_status type_error_for_profile(kiln_status st, int p) {
    kiln_error_prefix("profile %d", p);
    return st;
}

/* Channel block of the CPU layout pass (passes/nchwc.c) for this host:
** 16 with AVX-512F, 8 with AVX2+FMA, else 0 (off). KILN_NCHWC=0 turns it
** off and KILN_NCHWC=8 forces block 8 (A/B measurements, tests). */
static int nchwc_block_for(unsigned isa) {
    int b = (isa & KILN_ISA_AVX512F) ? 16
            : ((isa & KILN_ISA_AVX2) && (isa & KILN_ISA_FMA)) ? 8 : 0;
    const char *e = getenv("KILN_NCHWC");
    if (e && !strcmp(e, "0")) b = 0;
    else if (e && !strcmp(e, "8") && (isa & KILN_ISA_AVX2) && (isa & KILN_ISA_FMA)) b = 8;
    return b;
}

/* Smallest batch (dim 0 of 4-D inputs at a profile's opt shape) from
** which device builds use channels-last convolutions. The environment
** variable KILN_CHANNELS_LAST_MIN_BATCH=k overrides it (1: channels-last at
** every batch, the default) so the layout can be A/B timed on a GPU. With
** cuDNN's graph-API tactics (cuda_conv_graph.c) NHWC wins at batch 1 too:
** ResNet-50 FP16 on an H100 (2026-12-07) ran 0.33 ms channels-last against
** 0.62 ms NCHW; without them (KILN_CONV_GRAPH=0) NHWC at batch 1 was 2.3 ms
** against 1.1 ms. KILN_CHANNELS_LAST=0/1 still forces the pass off/on.
** KILN_CHANNELS_LAST_MIN_BATCH=auto builds both layouts and keeps the
** faster (kiln_build_engine, build_both_layouts). */
#define CHANNELS_LAST_MIN_BATCH 1

static int64_t channels_last_min_batch(void) {
    const char *e = getenv("KILN_CHANNELS_LAST_MIN_BATCH");
    char *end = NULL;
    long long v = e ? strtoll(e, &end, 10) : 0;
    return e && end != e && *end == '\0' && v >= 1 ? (int64_t)v : CHANNELS_LAST_MIN_BATCH;
}

/* Largest dim 0 of any rank-4 graph input at any profile's opt shape (or
** its static dim when no profile names it). */
static int64_t largest_opt_batch(const kiln_builder_config *cfg, const ir_graph *g) {
    int64_t best = 0;
    for (int i = 0; i < g->n_inputs; i++) {
        const ir_value *v = g->inputs[i];
        if (v->type.rank != 4) continue;
        bool named = false;
        for (int p = 0; p < cfg->n_profiles; p++)
            for (int k = 0; k < cfg->profiles[p].n; k++) {
                const cfg_shape *sh = &cfg->profiles[p].shapes[k];
                if (sh->rank == 4 && v->name && !strcmp(sh->input, v->name)) {
                    named = true;
                    best = KILN_MAX(best, sh->opt[0]);
                }
            }
        if (!named && v->type.dims[0] > 0) best = KILN_MAX(best, v->type.dims[0]);
    }
    return best;
}

static kiln_status build_main(const kiln_model *m, const kiln_builder_config *cfg,
                              builder_place_fn place_cb, void *place_user,
                              void **blob_out, size_t *size_out, int cl_force,
                              double *sum_us_out) {
    build b;
    kiln_status st;
    ir_type *in_types = NULL, *opt_types = NULL, *max_types = NULL;
    uint8_t *blob = NULL;
    size_t blob_n = 0;
    if (!m || !cfg || !blob_out || !size_out)
        return kiln_error(KILN_INVALID_ARGUMENT, "NULL argument");
    *blob_out = NULL;
    *size_out = 0;
    memset(&b, 0, sizeof b);
    b.cfg = cfg;
    b.dry = place_cb != NULL;
    b.place_cb = place_cb;
    b.place_user = place_user;
    b.cl_force = cl_force;
    b.time_all = sum_us_out != NULL;
    if ((st = cache_check(cfg->timing_cache))) return st;
    double t_start = now_us() / 1e3;
    b.t_phase = t_start;
    if (cfg->device == KILN_DEVICE_CUDA) {
        if (!(b.be = kiln_backend_cuda()))
            return kiln_error(KILN_UNSUPPORTED, "this kiln was built without the CUDA "
                              "backend (no CUDA toolkit when it was compiled); build for "
                              "the CPU (--device cpu)");
    } else {
        b.be = kiln_backend_cpu();
    }
    static char dry_dev; /* stands for the device in a placement dry run */
    if (b.be->dev && b.dry) {
        b.dev = &dry_dev;
    } else if (b.be->dev) {
        const kiln_device_ops *D = b.be->dev;
        if ((st = D->open(&b.dev)) || (st = D->stream_create(b.dev, &b.stream)) ||
            (st = D->exec_create(b.dev, b.stream, &b.exec)) ||
            (st = D->event_create(b.dev, &b.ev[0])) || (st = D->event_create(b.dev, &b.ev[1])))
            goto fail;
        snprintf(b.e.dev_fingerprint, sizeof b.e.dev_fingerprint, "%s", D->fingerprint(b.dev));
        blog(&b, KILN_SEVERITY_INFO, "device: %s", b.e.dev_fingerprint);
    }
    if ((st = kiln_model_reimport(m, &b.e.ir))) goto fail;
    b.g = b.e.ir->graph;
    b.e.source_nodes = b.g->n_nodes;
    b.e.model_hash = kiln_model_hash(m);
    if ((st = check_supported(b.g))) goto fail;
    if ((st = resolve_profiles(&b))) goto fail;
    if ((st = ir_graph_infer(b.g))) goto fail;
    phase_done(&b, "import and shape inference");

    pass_ctx pc = {0};
    pc.m = b.e.ir;
    pc.g = b.g;
    pc.opt_level = cfg->opt_level;
    pc.nchwc_block = b.dev || cfg->opt_level < 1 ? 0 : nchwc_block_for(b.be->host_isa());
    pc.device_build = b.dev != NULL;
    /* the CUDA tactic of QFusedGemm is opt-in until it has run on a GPU
    ** (KILN_CUDA_Q8_FLOAT_OUT=1); without it the device graph stays as before */
    pc.no_q8_epilogue = b.dev && !(b.be->find_tactic && b.be->find_tactic(QFGEMM_DEVICE_TACTIC));
    pc.log = cfg->log;
    pc.log_user = cfg->log_user;
    /* per-pass statistics are detail: shown at VERBOSE, while INFO keeps
    ** to one line per build phase */
    pc.log_max = cfg->log_max >= KILN_SEVERITY_VERBOSE ? cfg->log_max : KILN_SEVERITY_WARNING;
    unsigned qprec = cfg->precisions & (KILN_PRECISION_INT8 | KILN_PRECISION_FP8);
    if (qprec && (cfg->calib_dir || cfg->calib_cache)) {
        /* Post-training INT8 (src/quant): after constant folding and
        ** Conv+BN folding, calibrate the FP32 graph and write ONNX Q/DQ into
        ** it as onnxruntime's quantize_static does, so the optimizer that
        ** follows treats it like any model that comes with Q/DQ (the Q/DQ
        ** fold into integer layers runs first in the pipeline). */
        static const char *const pre[] = {"fold", "noop", "dce", "conv_bn"};
        for (size_t k = 0; k < sizeof pre / sizeof *pre; k++)
            if ((st = passes_run_one(&pc, pre[k]))) goto fail;
        quant_opts qo = {cfg->calib_dir, cfg->calib_cache, (quant_method)cfg->calib_method,
                         cfg->calib_percentile, cfg->calib_batches, cfg->budget_metric,
                         cfg->budget_value, cfg->validate_dir, cfg->progress,
                         cfg->progress_user, cfg->log, cfg->log_user, cfg->log_max,
                         b.be->dev != NULL,
                         qprec == KILN_PRECISION_FP8 ? KILN_DTYPE_FLOAT8E4M3FN
                                                     : KILN_DTYPE_INT8};
        if ((st = quant_int8(&pc, &qo))) goto fail;
        phase_done(&b, qprec == KILN_PRECISION_FP8 ? "fp8 calibration" : "int8 calibration");
    } else if (cfg->budget_metric >= 0) {
        st = kiln_error(KILN_INVALID_ARGUMENT, "an accuracy budget needs an INT8 or FP8 build "
                        "with calibration");
        goto fail;
    }
    if ((st = passes_run_all(&pc))) goto fail;
    if (b.dev && (cfg->precisions & (KILN_PRECISION_FP16 | KILN_PRECISION_BF16)) &&
        (st = pass_reduced_precision(&pc, (cfg->precisions & KILN_PRECISION_FP16)
                                              ? KILN_DTYPE_FLOAT16 : KILN_DTYPE_BFLOAT16)))
        goto fail;
    /* NHWC for the tensor-core convolutions; channels padded to 8 (cuDNN's
    ** FP16/BF16 NHWC kernels want C % 8 == 0). Only for batched image
    ** inputs: on an H100 (2026-12-06) ResNet-50 FP16 ran 8.9 ms NHWC vs
    ** 23.6 ms NCHW at batch 256 but 2.30 ms vs 1.10 ms at batch 1, where
    ** cuDNN's NCHW kernels and the absent reformats win. */
    /* INT8 device builds (QLinearConv layers from the Q/DQ fold) too: the
    ** GPU's int8 convolutions are GEMMs over NHWC rows (cuda_qconv.c), so
    ** channels-last spares each one an im2col gather and a transpose. */
    bool cl_batch = largest_opt_batch(cfg, b.g) >= channels_last_min_batch();
    bool cl_half = b.dev && (cfg->precisions & (KILN_PRECISION_FP16 | KILN_PRECISION_BF16)) &&
                   cl_batch;
    /* KILN_CHANNELS_LAST_INT8=0 keeps them NCHW (A/B). On an H100
    ** (2026-12-08) ResNet-50 INT8 b256 ran 20.9 ms channels-last against
    ** 61.7 ms NCHW, and int8_e2e passed both ways. */
    const char *q8e = getenv("KILN_CHANNELS_LAST_INT8");
    bool cl_q8 = false;
    for (int i = 0; b.dev && cl_batch && !(q8e && q8e[0] == '0') && !cl_q8 && i < b.g->n_nodes;
         i++)
        cl_q8 = b.g->nodes[i]->op == OP_QLinearConv;
    bool want_cl = b.cl_force >= 0 ? b.cl_force > 0 : pass_channels_last_wanted(cl_half || cl_q8);
    unsigned cl_kinds = (cl_half ? CL_KIND_HALF : 0u) | (cl_q8 ? CL_KIND_Q8 : 0u);
    if (!cl_kinds) cl_kinds = CL_KIND_HALF | CL_KIND_Q8; /* forced on */
    if (want_cl && (st = pass_channels_last_kinds(&pc, pass_channels_last_align(), cl_kinds)))
        goto fail;
    blog(&b, KILN_SEVERITY_INFO, "optimizer: %d ONNX nodes -> %d layers",
         b.e.source_nodes, b.g->n_nodes);
    if (b.dev && (cfg->flags & KILN_BUILD_TF32))
        for (int i = 0; i < b.g->n_nodes; i++) {
            int op = b.g->nodes[i]->op;
            if ((op == OP_MatMul || op == OP_Gemm || op == OP_FusedGemm || op == OP_Conv ||
                 op == OP_FusedConv || op == OP_NhwcConv || op == OP_Attention) &&
                !ir_edit_set_int(b.g->nodes[i], "kiln_tf32", 1))
                goto oom;
        }
    /* Below the highest optimization level a device backend times only
    ** the convolution algorithms its library ranks best (cuda_conv.c reads
    ** this; the attribute is part of the timing-cache key). */
    if (b.dev && cfg->opt_level < 5)
        for (int i = 0; i < b.g->n_nodes; i++) {
            int op = b.g->nodes[i]->op;
            if ((op == OP_Conv || op == OP_FusedConv || op == OP_NhwcConv) &&
                !ir_edit_set_int(b.g->nodes[i], "kiln_algo_top", cfg->opt_level >= 4 ? 4 : 3))
                goto oom;
        }
    phase_done(&b, "optimizer passes");
    int nn = b.g->n_nodes, nv = b.g->n_values, np = b.e.n_profiles;
    b.e.layers = calloc((size_t)(nn ? nn : 1), sizeof *b.e.layers);
    b.e.owns_layer_blobs = true;
    b.e.plans = calloc((size_t)np, sizeof *b.e.plans);
    in_types = calloc((size_t)b.g->n_inputs + 1, sizeof *in_types);
    opt_types = calloc((size_t)nv + 1, sizeof *opt_types);
    max_types = calloc((size_t)nv + 1, sizeof *max_types);
    if (!b.e.layers || !b.e.plans || !in_types || !opt_types || !max_types) goto oom;
    if (b.dev && !(b.dconst = calloc((size_t)nv + 1, sizeof *b.dconst))) goto oom;
    for (int i = 0; i < nn; i++) {
        const ir_node *ln = b.g->nodes[i];
        kiln_dtype odt = ln->n_out && ln->out[0] ? ln->out[0]->type.dtype : KILN_DTYPE_FLOAT32;
        /* 8-bit compute layers (explicit quantization, passes/qdq.c) */
        bool q8 = (ln->op == OP_QLinearConv || ln->op == OP_NhwcQLinearConv ||
                   ln->op == OP_QLinearMatMul ||
                   ln->op == OP_QAdd) &&
                  (odt == KILN_DTYPE_INT8 || odt == KILN_DTYPE_UINT8);
        b.e.layers[i].precision = q8                           ? KILN_PRECISION_INT8
                                  : odt == KILN_DTYPE_FLOAT16  ? KILN_PRECISION_FP16
                                  : odt == KILN_DTYPE_BFLOAT16 ? KILN_PRECISION_BF16
                                                               : KILN_PRECISION_FP32;
        /* Q/DQ layers, and matrix layers that read a DequantizeLinear (fake
        ** quantization until a Q/DQ fold makes them integer layers) */
        bool mm = ln->op == OP_Conv || ln->op == OP_FusedConv || ln->op == OP_Gemm ||
                  ln->op == OP_FusedGemm || ln->op == OP_MatMul;
        for (int k = 0; mm && k < 2 && k < ln->n_in; k++)
            if (ln->in[k] && ln->in[k]->producer &&
                ln->in[k]->producer->op == OP_DequantizeLinear)
                b.e.layers[i].precision = qdq_precision(ln->in[k]->producer);
        if (ln->op == OP_QuantizeLinear || ln->op == OP_DequantizeLinear)
            b.e.layers[i].precision = qdq_precision(ln);
        b.e.layers[i].tactic = calloc((size_t)np, sizeof *b.e.layers[i].tactic);
        b.e.layers[i].time_us = calloc((size_t)np, sizeof *b.e.layers[i].time_us);
        if (!b.e.layers[i].tactic || !b.e.layers[i].time_us) goto oom;
    }
    cache_load(&b);
    double t_tactics = 0, t_plan = 0;
    for (int p = 0; p < np; p++) {
        profile_types(&b, p, true, in_types);
        if ((st = ir_graph_infer_types(b.g, in_types, opt_types))) {
            type_error_for_profile(st, p);
            goto fail;
        }
        profile_types(&b, p, false, in_types);
        if ((st = ir_graph_infer_types(b.g, in_types, max_types))) {
            type_error_for_profile(st, p);
            goto fail;
        }
        double t0 = now_us() / 1e3;
        if ((st = choose_tactics(&b, p, opt_types, max_types))) goto fail;
        if (b.dry) {
            st = KILN_OK;
            goto done;
        }
        if ((st = prepare_layers(&b, p))) goto fail;
        double t1 = now_us() / 1e3;
        t_tactics += t1 - t0;
        if ((st = plan_memory(b.g, max_types, &b.e.plans[p]))) goto fail;
        /* Scratch for the chosen tactics goes after the activations. */
        uint64_t ws = 0;
        for (int i = 0; i < nn; i++) {
            const ir_node *n = b.g->nodes[i];
            const kiln_tactic *t = b.e.layers[i].tactic[p];
            if (!t->workspace) continue;
            const ir_type **tin = calloc((size_t)n->n_in + 1, sizeof *tin);
            if (!tin) goto oom;
            for (int k = 0; k < n->n_in; k++)
                tin[k] = n->in[k] ? &max_types[n->in[k]->id] : NULL;
            size_t w = t->workspace(n, tin);
            free(tin);
            if (w > ws) ws = w;
        }
        b.e.plans[p].workspace_bytes = (ws + 63) & ~(uint64_t)63;
        t_plan += now_us() / 1e3 - t1;
        blog(&b, KILN_SEVERITY_INFO, "profile %d: activations %.2f MiB planned "
             "(naive %.2f MiB), workspace %.2f MiB", p,
             (double)b.e.plans[p].total_bytes / 1048576.0,
             (double)b.e.plans[p].naive_bytes / 1048576.0, (double)ws / 1048576.0);
    }
    blog(&b, KILN_SEVERITY_INFO, "tactic selection: %.1f ms (prepared weights %.2f MiB)",
         t_tactics, (double)b.blob_bytes / 1048576.0);
    blog(&b, KILN_SEVERITY_INFO, "memory planning: %.1f ms", t_plan);
    b.t_phase = now_us() / 1e3;
    if (b.n_ws_forced)
        blog(&b, KILN_SEVERITY_WARNING, "the workspace limit (%llu bytes) leaves only the "
             "slow reference tactic for %d layer(s) (%s); raise the workspace",
             (unsigned long long)cfg->workspace, b.n_ws_forced, b.ws_forced);
    if (cfg->timing_cache)
        blog(&b, KILN_SEVERITY_INFO, "timing cache: %d hits, %d new entries",
             b.cache_hits, b.cache_new);
    if (b.dev)
        blog(&b, b.n_host_layers ? KILN_SEVERITY_WARNING : KILN_SEVERITY_INFO,
             "%d of %d layers run on the %s device, %d on the host", nn - b.n_host_layers,
             nn, b.be->name, b.n_host_layers);
    b.e.precisions = cfg->precisions;
    b.e.opt_level = cfg->opt_level;
    b.e.workspace_limit = cfg->workspace;
    snprintf(b.e.lib_version, sizeof b.e.lib_version, "%s", KILN_VERSION_STRING);
    snprintf(b.e.backend, sizeof b.e.backend, "%s", b.be->name);
    snprintf(b.e.arch, sizeof b.e.arch, "%s", kiln_host_arch());
    b.e.ops = b.be;
    {
        /* constants the serializer stores without bytes (their readers
        ** all run on prepared copies: engine_const_unread) */
        uint8_t *unread = calloc((size_t)b.g->n_values + 1, 1);
        if (!unread) goto oom;
        engine_const_unread(&b.e, unread);
        int nu = 0;
        double mib = 0;
        for (int i = 0; i < b.g->n_values; i++)
            if (unread[i]) nu++, mib += (double)b.g->values[i]->const_val->nbytes / 1048576.0;
        free(unread);
        blog(&b, KILN_SEVERITY_INFO, "%d constants (%.2f MiB) stored only as prepared "
             "weights", nu, mib);
    }
    if ((st = engine_serialize(&b.e, &blob, &blob_n))) goto fail;
    phase_done(&b, "serialization");
    /* Only a successful build updates (or replaces a stale) cache. */
    cache_save(&b);
    blog(&b, KILN_SEVERITY_INFO, "build total: %.1f ms", now_us() / 1e3 - t_start);
    if (sum_us_out) {
        /* layers that cannot be timed (non-float activations) are left
        ** out: both layouts have them */
        double sum = 0;
        for (int i = 0; i < nn; i++)
            if (b.e.layers[i].time_us[0] > 0) sum += b.e.layers[i].time_us[0];
        *sum_us_out = sum;
    }
    *blob_out = blob;
    *size_out = blob_n;
    st = KILN_OK;
    goto done;
oom:
    st = kiln_error(KILN_OUT_OF_MEMORY, "out of memory while building");
fail:
done:
    for (int i = 0; i < b.n_cache; i++) {
        free(b.cache_keys[i]);
        free(b.cache_vals[i]);
    }
    free(b.cache_keys);
    free(b.cache_vals);
    for (int k = 0; k < 3; k++) free(b.rnd[k]);
    free(in_types);
    free(opt_types);
    free(max_types);
    if (b.dev && !b.dry) {
        const kiln_device_ops *D = b.be->dev;
        for (int v = 0; b.dconst && b.g && v < b.g->n_values; v++)
            if (b.dconst[v]) D->free(b.dev, b.dconst[v]);
        for (int k = 0; k < 3; k++)
            if (b.drnd[k]) D->free(b.dev, b.drnd[k]);
        free(b.dconst);
        for (int k = 0; k < 2; k++)
            if (b.ev[k]) D->event_destroy(b.dev, b.ev[k]);
        if (b.exec) D->exec_destroy(b.dev, b.exec);
        if (b.stream) D->stream_destroy(b.dev, b.stream);
        D->close(b.dev);
    } else {
        free(b.dconst); /* a placement dry run allocates only this */
    }
    engine_clear(&b.e);
    return st;
}

/* KILN_CHANNELS_LAST_MIN_BATCH=auto (half-precision device builds): builds
** the engine NCHW and channels-last, every layer timed, and keeps the one
** whose summed layer times (profile 0, at its opt shapes) are lower; the
** reformat layers count, launch gaps do not (CUDA graphs hide most). Twice
** the build time: a switch for measuring, until the rule is re-decided. */
static kiln_status build_both_layouts(const kiln_model *m, const kiln_builder_config *cfg,
                                      void **blob_out, size_t *size_out) {
    void *blob[2] = {NULL, NULL};
    size_t n[2] = {0, 0};
    double t[2] = {-1, -1};
    kiln_status st = build_main(m, cfg, NULL, NULL, &blob[0], &n[0], 0, &t[0]);
    if (st) return st;
    if (build_main(m, cfg, NULL, NULL, &blob[1], &n[1], 1, &t[1])) {
        kiln_error_clear();
        blob[1] = NULL;
    }
    int keep = blob[1] && t[1] >= 0 && (t[0] < 0 || t[1] < t[0]) ? 1 : 0;
    char msg[256];
    snprintf(msg, sizeof msg, "layout: NCHW %.1f us, channels-last %.1f us (summed layer "
             "times%s); keeping %s", t[0], t[1], blob[1] ? "" : ", channels-last build failed",
             keep ? "channels-last" : "NCHW");
    if (KILN_SEVERITY_INFO <= cfg->log_max) {
        if (cfg->log) cfg->log(cfg->log_user, KILN_SEVERITY_INFO, msg);
        else fprintf(stderr, "kiln: %s\n", msg);
    }
    kiln_free(blob[1 - keep]);
    *blob_out = blob[keep];
    *size_out = n[keep];
    return KILN_OK;
}

kiln_status kiln_build_engine(const kiln_model *m, const kiln_builder_config *cfg,
                              void **blob_out, size_t *size_out) {
    const char *e = getenv("KILN_CHANNELS_LAST_MIN_BATCH");
    if (m && cfg && blob_out && size_out && e && !strcmp(e, "auto") &&
        cfg->device == KILN_DEVICE_CUDA &&
        (cfg->precisions & (KILN_PRECISION_FP16 | KILN_PRECISION_BF16)))
        return build_both_layouts(m, cfg, blob_out, size_out);
    return build_main(m, cfg, NULL, NULL, blob_out, size_out, -1, NULL);
}

kiln_status builder_placement(const kiln_model *m, const kiln_builder_config *cfg,
                              builder_place_fn cb, void *user) {
    void *blob = NULL;
    size_t n = 0;
    if (!cb) return kiln_error(KILN_INVALID_ARGUMENT, "NULL callback");
    return build_main(m, cfg, cb, user, &blob, &n, -1, NULL);
}

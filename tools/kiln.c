/* kiln.c: the command-line tool (build, run, bench, check, inspect), in the
** spirit of trtexec. Uses only the public API in kiln.h. */
#include "kiln.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static int usage(void) {
    fprintf(stderr,
        "usage: kiln <command> [options]\n"
        "\n"
        "commands:\n"
        "  build MODEL.onnx -o FILE.kiln [--shapes N:DIMS,... | --min-shapes N:DIMS,...\n"
        "        --opt-shapes N:DIMS,... --max-shapes N:DIMS,...] [--workspace MiB]\n"
        "        [--opt-level 0-5] [--timing-cache FILE] [--verbose]\n"
        "      optimize the model for this CPU and write an engine file\n"
        "  run (MODEL.onnx | --engine FILE.kiln) [--input NAME=FILE.pb ...]\n"
        "        [--shapes N:DIMS,...] [--output-dir DIR] [--seed N] [--reference]\n"
        "      run once; without --input, inputs are random for the declared shapes;\n"
        "      a model is run by the reference interpreter unless --engine is given\n"
        "  check CASE_DIR... [--engine FILE.kiln] [--reference] [--rtol R] [--atol A]\n"
        "      run ONNX backend-test cases (model.onnx + test_data_set_N/) and\n"
        "      compare outputs like numpy.allclose; by default each model is built\n"
        "      into an engine in memory, serialized, reloaded and run; exits 0 only\n"
        "      if all pass\n"
        "  bench (MODEL.onnx | --engine FILE.kiln) [--shapes N:DIMS,...] [--warmup MS]\n"
        "        [--duration S] [--iterations N] [--threads N] [--percentile P] [--json]\n"
        "      measure latency and throughput\n"
        "  inspect (MODEL.onnx | FILE.kiln) [--json] [--profile-runs N]\n"
        "      model: producer, opsets, I/O, op histogram; engine: metadata, I/O\n"
        "      with profiles, layers (fused nodes, precision, tactic), memory plan\n"
        "  serve --model-repository DIR [--http-port N] [--metrics-port N] [--threads N]\n"
        "      KServe v2 / Triton HTTP server (kiln serve --help for all options)\n"
        "  version\n"
        "\n"
        "DIMS are like 1x3x224x224; several inputs are separated by commas.\n");
    return 2;
}

static void die_status(const char *what) {
    fprintf(stderr, "kiln: %s: %s\n", what, kiln_last_error());
}

static const char *dims_str(int rank, const int64_t *dims,
                            const char *const *names, char *buf, size_t n) {
    size_t k = 0;
    if (rank < 0) {
        snprintf(buf, n, "[?]");
        return buf;
    }
    k += (size_t)snprintf(buf + k, n - k, "[");
    for (int i = 0; i < rank && k < n; i++) {
        const char *sep = i ? ", " : "";
        if (dims[i] >= 0)
            k += (size_t)snprintf(buf + k, n - k, "%s%lld", sep, (long long)dims[i]);
        else
            k += (size_t)snprintf(buf + k, n - k, "%s%s", sep,
                                  names && names[i] ? names[i] : "?");
    }
    if (k < n) snprintf(buf + k, n - k, "]");
    return buf;
}

/* ------------------------------------------------------------ inspect */
static int inspect_model(const char *path) {
    kiln_model *m;
    if (kiln_model_load(path, &m)) {
        die_status("cannot load model");
        return 1;
    }
    char buf[512];
    printf("model:     %s\n", path);
    printf("producer:  %s\n", kiln_model_producer(m)[0] ? kiln_model_producer(m) : "(none)");
    printf("ir:        %lld\n", (long long)kiln_model_ir_version(m));
    printf("opsets:   ");
    for (int i = 0; i < kiln_model_num_opsets(m); i++) {
        const char *d;
        int64_t v;
        kiln_model_opset(m, i, &d, &v);
        printf(" %s:%lld", d[0] ? d : "ai.onnx", (long long)v);
    }
    printf("\ninputs:\n");
    for (int i = 0; i < kiln_model_num_inputs(m); i++) {
        kiln_io_info io;
        kiln_model_input(m, i, &io);
        printf("  %-24s %-8s %s\n", io.name, kiln_dtype_name(io.dtype),
               dims_str(io.rank, io.dims, io.dim_names, buf, sizeof buf));
    }
    printf("outputs:\n");
    for (int i = 0; i < kiln_model_num_outputs(m); i++) {
        kiln_io_info io;
        kiln_model_output(m, i, &io);
        printf("  %-24s %-8s %s\n", io.name, kiln_dtype_name(io.dtype),
               dims_str(io.rank, io.dims, io.dim_names, buf, sizeof buf));
    }
    printf("nodes:     %d\n", kiln_model_num_nodes(m));
    printf("ops:\n");
    int unsupported = 0;
    for (int i = 0; i < kiln_model_num_op_types(m); i++) {
        const char *op;
        int count, sup;
        kiln_model_op_type(m, i, &op, &count, &sup);
        printf("  %-28s %6d%s\n", op, count, sup ? "" : "  (unsupported)");
        unsupported += !sup;
    }
    if (unsupported) {
        printf("unsupported:");
        for (int i = 0; i < kiln_model_num_op_types(m); i++) {
            const char *op;
            int count, sup;
            kiln_model_op_type(m, i, &op, &count, &sup);
            if (!sup) printf(" %s", op);
        }
        printf("\n");
    } else {
        printf("unsupported: none\n");
    }
    kiln_model_free(m);
    return 0;
}

/* ------------------------------------------------------------ helpers */
static int parse_dims(const char *s, int64_t *dims, int *rank) {
    *rank = 0;
    if (!*s) return -1;
    while (*s) {
        char *end;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (end == s || v < 0 || errno || *rank >= KILN_MAX_RANK) return -1;
        dims[(*rank)++] = v;
        s = end;
        if (*s == 'x' || *s == 'X') s++;
        else if (*s) return -1;
    }
    return 0;
}

/* Looks NAME up in a "--shapes a:1x2,b:3x4" spec. */
static int find_shape(const char *spec, const char *name, int64_t *dims, int *rank) {
    if (!spec) return 0;
    char *copy = strdup(spec);
    if (!copy) return -1;
    int found = 0;
    for (char *tok = strtok(copy, ","); tok; tok = strtok(NULL, ",")) {
        char *colon = strrchr(tok, ':');
        if (!colon) continue;
        *colon = 0;
        if (strcmp(tok, name) == 0) {
            found = parse_dims(colon + 1, dims, rank) == 0 ? 1 : -1;
            break;
        }
    }
    free(copy);
    return found;
}

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static double rnd(void) { /* xorshift64*, uniform [0,1) */
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return (double)((g_rng * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}

static kiln_tensor *random_tensor(kiln_dtype dt, int rank, const int64_t *dims) {
    kiln_tensor *t;
    if (kiln_tensor_create(dt, rank, dims, &t)) return NULL;
    int64_t n = kiln_tensor_numel(t);
    void *d = kiln_tensor_data(t);
    for (int64_t i = 0; i < n; i++) {
        double u = rnd();
        switch (dt) {
        case KILN_DTYPE_FLOAT32: ((float *)d)[i] = (float)(u * 2 - 1); break;
        case KILN_DTYPE_FLOAT64: ((double *)d)[i] = u * 2 - 1; break;
        case KILN_DTYPE_INT64: ((int64_t *)d)[i] = (int64_t)(u * 10); break;
        case KILN_DTYPE_INT32: ((int32_t *)d)[i] = (int32_t)(u * 10); break;
        case KILN_DTYPE_BOOL: ((uint8_t *)d)[i] = u < 0.5; break;
        case KILN_DTYPE_UINT8: case KILN_DTYPE_INT8: ((uint8_t *)d)[i] = (uint8_t)(u * 100); break;
        default: break; /* zeros */
        }
    }
    return t;
}

/* ------------------------------------------------------------ shapes */
/* Per-input min/opt/max parsed from --shapes / --min-shapes / ... */
typedef struct shape_opts {
    const char *shapes, *min, *opt, *max;
} shape_opts;

static int apply_profile(kiln_builder_config *cfg, const kiln_model *m,
                         const shape_opts *so) {
    if (!so->shapes && !so->min && !so->opt && !so->max) return 0;
    int prof;
    if (kiln_builder_config_add_profile(cfg, &prof)) return -1;
    for (int i = 0; i < kiln_model_num_inputs(m); i++) {
        kiln_io_info io;
        kiln_model_input(m, i, &io);
        int64_t d[4][KILN_MAX_RANK];
        int r[4] = {0, 0, 0, 0}, f[4];
        const char *spec[4] = {so->shapes, so->min, so->opt, so->max};
        for (int k = 0; k < 4; k++) {
            f[k] = find_shape(spec[k], io.name, d[k], &r[k]);
            if (f[k] < 0) {
                fprintf(stderr, "kiln: bad shape for '%s'\n", io.name);
                return -1;
            }
        }
        if (!f[0] && !f[1] && !f[2] && !f[3]) continue;
        /* --shapes fixes min=opt=max; otherwise fill gaps from neighbours */
        int64_t *mn = f[1] ? d[1] : f[2] ? d[2] : f[3] ? d[3] : d[0];
        int64_t *op = f[2] ? d[2] : f[3] ? d[3] : f[1] ? d[1] : d[0];
        int64_t *mx = f[3] ? d[3] : f[2] ? d[2] : f[1] ? d[1] : d[0];
        int rank = f[0] ? r[0] : f[1] ? r[1] : f[2] ? r[2] : r[3];
        if (f[0]) mn = op = mx = d[0];
        for (int k = 1; k < 4; k++)
            if (f[k] && r[k] != rank) {
                fprintf(stderr, "kiln: shapes of '%s' disagree in rank\n", io.name);
                return -1;
            }
        if (kiln_builder_config_set_shape(cfg, prof, io.name, rank, mn, op, mx)) {
            die_status("bad profile");
            return -1;
        }
    }
    return 0;
}

static void log_to_stderr(void *user, kiln_severity sev, const char *msg) {
    static const char *const names[] = {"error", "warning", "info", "verbose"};
    (void)user;
    fprintf(stderr, "[kiln %s] %s\n", names[sev], msg);
}

/* Builds an engine from a model in memory and loads it back (the whole
** path: optimize, tune, serialize, validate, deserialize). */
static kiln_engine *build_and_load(const kiln_model *m, kiln_builder_config *cfg) {
    void *blob;
    size_t n;
    kiln_engine *e = NULL;
    if (kiln_build_engine(m, cfg, &blob, &n)) return NULL;
    kiln_status st = kiln_engine_load_memory(blob, n, &e);
    kiln_free(blob);
    return st ? NULL : e;
}

/* ------------------------------------------------------------ runners */
/* Something that maps input tensors (graph-input order) to new output
** tensors: the reference interpreter or an engine context. */
typedef struct runner {
    kiln_model *model;     /* reference mode */
    kiln_engine *engine;   /* engine mode */
    kiln_context *ctx;
} runner;

static int runner_num_inputs(const runner *r) {
    return r->engine ? kiln_engine_num_inputs(r->engine) : kiln_model_num_inputs(r->model);
}
static int runner_num_outputs(const runner *r) {
    return r->engine ? kiln_engine_num_outputs(r->engine) : kiln_model_num_outputs(r->model);
}
static void runner_input(const runner *r, int i, kiln_io_info *io) {
    if (r->engine) kiln_engine_input(r->engine, i, io);
    else kiln_model_input(r->model, i, io);
}
static void runner_output(const runner *r, int i, kiln_io_info *io) {
    if (r->engine) kiln_engine_output(r->engine, i, io);
    else kiln_model_output(r->model, i, io);
}

static kiln_status engine_bind(runner *r, kiln_tensor *const *ins) {
    for (int i = 0; i < kiln_engine_num_inputs(r->engine); i++) {
        kiln_io_info io;
        kiln_engine_input(r->engine, i, &io);
        kiln_status st = kiln_context_set_input_shape(r->ctx, io.name,
                                                      kiln_tensor_rank(ins[i]),
                                                      kiln_tensor_dims(ins[i]));
        if (st) return st;
        if (kiln_tensor_dtype(ins[i]) != io.dtype) {
            fprintf(stderr, "kiln: input '%s' is %s, the engine wants %s\n", io.name,
                    kiln_dtype_name(kiln_tensor_dtype(ins[i])), kiln_dtype_name(io.dtype));
            return KILN_INVALID_ARGUMENT;
        }
        st = kiln_context_set_tensor(r->ctx, io.name, kiln_tensor_data(ins[i]),
                                     kiln_tensor_nbytes(ins[i]));
        if (st) return st;
    }
    return KILN_OK;
}

static kiln_status runner_run(runner *r, kiln_tensor *const *ins, kiln_tensor **outs) {
    if (!r->engine)
        return kiln_model_run_reference(r->model, (const kiln_tensor *const *)ins, outs);
    kiln_status st = engine_bind(r, ins);
    if (!st) st = kiln_context_execute(r->ctx);
    for (int o = 0; !st && o < kiln_engine_num_outputs(r->engine); o++) {
        kiln_io_info io;
        const kiln_tensor *t;
        kiln_engine_output(r->engine, o, &io);
        if ((st = kiln_context_output(r->ctx, io.name, &t))) break;
        if ((st = kiln_tensor_create(kiln_tensor_dtype(t), kiln_tensor_rank(t),
                                     kiln_tensor_dims(t), &outs[o])))
            break;
        memcpy(kiln_tensor_data(outs[o]), kiln_tensor_cdata(t), kiln_tensor_nbytes(t));
    }
    return st;
}

static int runner_open_engine(runner *r, kiln_engine *e) {
    r->engine = e;
    if (kiln_context_create(e, &r->ctx)) {
        die_status("cannot create context");
        return -1;
    }
    return 0;
}

static void runner_close(runner *r) {
    kiln_context_destroy(r->ctx);
    kiln_engine_free(r->engine);
    kiln_model_free(r->model);
    memset(r, 0, sizeof *r);
}

/* Random inputs for every input not given, at --shapes or the declared or
** profile-opt shape. */
static int make_inputs(const runner *r, const char *shapes, kiln_tensor **ins) {
    for (int k = 0; k < runner_num_inputs(r); k++) {
        if (ins[k]) continue;
        kiln_io_info io;
        runner_input(r, k, &io);
        int64_t dims[KILN_MAX_RANK];
        int rank = io.rank;
        int f = find_shape(shapes, io.name, dims, &rank);
        if (f < 0) {
            fprintf(stderr, "kiln: bad --shapes entry for '%s'\n", io.name);
            return -1;
        }
        if (!f) {
            if (io.rank < 0) {
                fprintf(stderr, "kiln: input '%s' has unknown rank; give --shapes %s:DIMS\n",
                        io.name, io.name);
                return -1;
            }
            int64_t opt[KILN_MAX_RANK];
            bool have_opt = r->engine &&
                kiln_engine_profile_shape(r->engine, 0, io.name, NULL, opt, NULL) == KILN_OK;
            for (int d = 0; d < rank; d++) {
                dims[d] = io.dims[d];
                if (dims[d] >= 0) continue;
                if (have_opt) {
                    dims[d] = opt[d];
                    continue;
                }
                fprintf(stderr, "kiln: input '%s' dim '%s' is symbolic; using 1 "
                        "(set it with --shapes %s:DIMS)\n", io.name,
                        io.dim_names[d] ? io.dim_names[d] : "?", io.name);
                dims[d] = 1;
            }
        }
        ins[k] = random_tensor(io.dtype, rank, dims);
        if (!ins[k]) {
            die_status("cannot create input");
            return -1;
        }
    }
    return 0;
}

static bool has_suffix(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

/* ------------------------------------------------------------ build */
static int cmd_build(int argc, char **argv) {
    const char *model = NULL, *out = NULL, *cache = NULL;
    shape_opts so = {0};
    double workspace = -1;
    int level = 3, verbose = 0, rc = 1;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        bool more = i + 1 < argc;
        if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && more) out = argv[++i];
        else if (!strcmp(a, "--shapes") && more) so.shapes = argv[++i];
        else if (!strcmp(a, "--min-shapes") && more) so.min = argv[++i];
        else if (!strcmp(a, "--opt-shapes") && more) so.opt = argv[++i];
        else if (!strcmp(a, "--max-shapes") && more) so.max = argv[++i];
        else if (!strcmp(a, "--workspace") && more) workspace = atof(argv[++i]);
        else if (!strcmp(a, "--opt-level") && more) level = atoi(argv[++i]);
        else if (!strcmp(a, "--timing-cache") && more) cache = argv[++i];
        else if (!strcmp(a, "--verbose") || !strcmp(a, "-v")) verbose = 1;
        else if (a[0] == '-') {
            fprintf(stderr, "kiln build: unknown or incomplete option '%s'\n", a);
            return 2;
        } else if (!model) model = a;
        else return usage();
    }
    if (!model || !out) {
        fprintf(stderr, "kiln build: need MODEL.onnx and -o FILE.kiln\n");
        return 2;
    }
    kiln_model *m = NULL;
    kiln_builder_config *cfg = NULL;
    void *blob = NULL;
    size_t n = 0;
    if (kiln_model_load(model, &m)) {
        die_status("cannot load model");
        goto done;
    }
    if (kiln_builder_config_create(&cfg) ||
        kiln_builder_config_set_opt_level(cfg, level) ||
        (workspace >= 0 && kiln_builder_config_set_workspace(cfg, (uint64_t)(workspace * 1048576.0))) ||
        (cache && kiln_builder_config_set_timing_cache(cfg, cache)) ||
        kiln_builder_config_set_logger(cfg, log_to_stderr, NULL,
                                       verbose ? KILN_SEVERITY_VERBOSE : KILN_SEVERITY_WARNING)) {
        die_status("bad build settings");
        goto done;
    }
    if (apply_profile(cfg, m, &so)) goto done;
    if (kiln_build_engine(m, cfg, &blob, &n)) {
        die_status("build failed");
        goto done;
    }
    if (kiln_engine_save_blob(blob, n, out)) {
        die_status("cannot write engine");
        goto done;
    }
    printf("wrote %s (%zu bytes)\n", out, n);
    rc = 0;
done:
    kiln_free(blob);
    kiln_builder_config_destroy(cfg);
    kiln_model_free(m);
    return rc;
}

/* ------------------------------------------------------------ run */
static int cmd_run(int argc, char **argv) {
    const char *model = NULL, *engine = NULL, *outdir = NULL, *shapes = NULL;
    const char *in_spec[256];
    int n_spec = 0, rc = 1;
    runner r = {0};
    kiln_tensor **ins = NULL, **outs = NULL;
    int ni = 0, no = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--input") && i + 1 < argc) {
            if (n_spec < 256) in_spec[n_spec++] = argv[++i];
        } else if (!strcmp(argv[i], "--output-dir") && i + 1 < argc) {
            outdir = argv[++i];
        } else if (!strcmp(argv[i], "--shapes") && i + 1 < argc) {
            shapes = argv[++i];
        } else if (!strcmp(argv[i], "--engine") && i + 1 < argc) {
            engine = argv[++i];
        } else if (!strcmp(argv[i], "--reference")) {
            /* the default for a model */
        } else if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
            g_rng = strtoull(argv[++i], NULL, 10) * 2654435761ull + 1;
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "kiln run: unknown option '%s'\n", argv[i]);
            return 2;
        } else if (!model) {
            model = argv[i];
        } else {
            return usage();
        }
    }
    if (model && has_suffix(model, ".kiln") && !engine) {
        engine = model;
        model = NULL;
    }
    if (!model == !engine) return usage();
    if (engine) {
        kiln_engine *e;
        if (kiln_engine_load_file(engine, &e)) {
            die_status("cannot load engine");
            return 1;
        }
        if (runner_open_engine(&r, e)) goto done;
    } else if (kiln_model_load(model, &r.model)) {
        die_status("cannot load model");
        return 1;
    }
    ni = runner_num_inputs(&r);
    no = runner_num_outputs(&r);
    ins = calloc((size_t)ni + 1, sizeof *ins);
    outs = calloc((size_t)no + 1, sizeof *outs);
    if (!ins || !outs) goto done;
    for (int s = 0; s < n_spec; s++) {
        const char *eq = strchr(in_spec[s], '=');
        if (!eq) {
            fprintf(stderr, "kiln run: --input wants NAME=FILE.pb, got '%s'\n", in_spec[s]);
            goto done;
        }
        int k;
        for (k = 0; k < ni; k++) {
            kiln_io_info io;
            runner_input(&r, k, &io);
            if (strlen(io.name) == (size_t)(eq - in_spec[s]) &&
                !strncmp(io.name, in_spec[s], (size_t)(eq - in_spec[s])))
                break;
        }
        if (k == ni) {
            fprintf(stderr, "kiln run: the model has no input '%.*s'\n",
                    (int)(eq - in_spec[s]), in_spec[s]);
            goto done;
        }
        kiln_tensor_destroy(ins[k]);
        ins[k] = NULL;
        if (kiln_tensor_load_pb(eq + 1, &ins[k], NULL)) {
            die_status("cannot read input");
            goto done;
        }
    }
    if (make_inputs(&r, shapes, ins)) goto done;
    if (runner_run(&r, ins, outs)) {
        die_status("run failed");
        goto done;
    }
    if (outdir) mkdir(outdir, 0777);
    for (int k = 0; k < no; k++) {
        kiln_io_info io;
        char buf[256];
        runner_output(&r, k, &io);
        printf("output %d '%s': %s %s\n", k, io.name,
               kiln_dtype_name(kiln_tensor_dtype(outs[k])),
               dims_str(kiln_tensor_rank(outs[k]), kiln_tensor_dims(outs[k]), NULL,
                        buf, sizeof buf));
        if (outdir) {
            char path[4096];
            snprintf(path, sizeof path, "%s/output_%d.pb", outdir, k);
            if (kiln_tensor_save_pb(outs[k], io.name, path)) {
                die_status("cannot write output");
                goto done;
            }
        }
    }
    rc = 0;
done:
    for (int k = 0; ins && k < ni; k++) kiln_tensor_destroy(ins[k]);
    for (int k = 0; outs && k < no; k++) kiln_tensor_destroy(outs[k]);
    free(ins);
    free(outs);
    runner_close(&r);
    return rc;
}

/* ------------------------------------------------------------ check */
static double elem(const kiln_tensor *t, int64_t i) {
    const void *d = kiln_tensor_cdata(t);
    switch (kiln_tensor_dtype(t)) {
    case KILN_DTYPE_FLOAT32: return ((const float *)d)[i];
    case KILN_DTYPE_FLOAT64: return ((const double *)d)[i];
    case KILN_DTYPE_INT64: return (double)((const int64_t *)d)[i];
    case KILN_DTYPE_INT32: return ((const int32_t *)d)[i];
    case KILN_DTYPE_INT16: return ((const int16_t *)d)[i];
    case KILN_DTYPE_INT8: return ((const int8_t *)d)[i];
    case KILN_DTYPE_UINT8: case KILN_DTYPE_BOOL: return ((const uint8_t *)d)[i];
    case KILN_DTYPE_UINT16: return ((const uint16_t *)d)[i];
    case KILN_DTYPE_UINT32: return ((const uint32_t *)d)[i];
    case KILN_DTYPE_UINT64: return (double)((const uint64_t *)d)[i];
    case KILN_DTYPE_FLOAT16: {
        uint16_t h = ((const uint16_t *)d)[i];
        int e = (h >> 10) & 31, mnt = h & 1023;
        double v = e == 0 ? ldexp(mnt, -24) : e == 31 ? (mnt ? NAN : INFINITY)
                                                     : ldexp(mnt + 1024, e - 25);
        return (h & 0x8000) ? -v : v;
    }
    case KILN_DTYPE_BFLOAT16: {
        uint32_t b = (uint32_t)((const uint16_t *)d)[i] << 16;
        float f;
        memcpy(&f, &b, 4);
        return f;
    }
    default: { /* compare other encodings bytewise */
        return ((const uint8_t *)d)[i];
    }
    }
}

static int64_t elem_count(const kiln_tensor *t) {
    kiln_dtype dt = kiln_tensor_dtype(t);
    if (kiln_dtype_size(dt) == 0) return (int64_t)kiln_tensor_nbytes(t); /* 4-bit */
    return kiln_tensor_numel(t);
}

/* Compares like numpy.isclose with equal_nan. Returns 0 if close. */
static int compare(const kiln_tensor *got, const kiln_tensor *want, double rtol,
                   double atol, char *msg, size_t n, double *worst_abs) {
    char a[128], b[128];
    if (kiln_tensor_dtype(got) != kiln_tensor_dtype(want)) {
        snprintf(msg, n, "dtype %s, expected %s", kiln_dtype_name(kiln_tensor_dtype(got)),
                 kiln_dtype_name(kiln_tensor_dtype(want)));
        return 1;
    }
    int rg = kiln_tensor_rank(got), rw = kiln_tensor_rank(want);
    const int64_t *dg = kiln_tensor_dims(got), *dw = kiln_tensor_dims(want);
    bool same = rg == rw;
    for (int i = 0; same && i < rg; i++) same = dg[i] == dw[i];
    if (!same) {
        snprintf(msg, n, "shape %s, expected %s", dims_str(rg, dg, NULL, a, sizeof a),
                 dims_str(rw, dw, NULL, b, sizeof b));
        return 1;
    }
    int64_t cnt = elem_count(want), bad = 0, first = -1;
    double worst = 0;
    for (int64_t i = 0; i < cnt; i++) {
        double x = elem(got, i), y = elem(want, i);
        if (isnan(x) && isnan(y)) continue;
        if (isinf(x) || isinf(y)) {
            if (x != y) {
                bad++;
                if (first < 0) first = i;
            }
            continue;
        }
        double d = fabs(x - y);
        if (!(d <= atol + rtol * fabs(y))) {
            bad++;
            if (first < 0) first = i;
        }
        if (d > worst || d != d) worst = d;
    }
    *worst_abs = worst;
    if (bad) {
        snprintf(msg, n, "%lld of %lld elements differ (first at %lld: got %.9g, "
                 "expected %.9g; max abs err %.3g)", (long long)bad, (long long)cnt,
                 (long long)first, elem(got, first), elem(want, first), worst);
        return 1;
    }
    return 0;
}

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* How check runs a case: the reference interpreter, a given engine, or an
** engine built from the case's model in memory (the default). */
typedef enum { MODE_BUILD, MODE_REFERENCE, MODE_ENGINE } check_mode;

/* Loads test_data_set inputs (graph-input order). Returns 0 or -1 with msg. */
static int load_set(const char *dir, const char *set, int ni, kiln_tensor **ins,
                    char *msg, size_t n) {
    char path[4096];
    for (int k = 0; k < ni; k++) {
        snprintf(path, sizeof path, "%s/%s/input_%d.pb", dir, set, k);
        if (!file_exists(path)) {
            snprintf(msg, n, "%s: no data for input %d", set, k);
            return -1;
        }
        if (kiln_tensor_load_pb(path, &ins[k], NULL)) {
            snprintf(msg, n, "%s", kiln_last_error());
            return -1;
        }
    }
    return 0;
}

/* An engine for a case model: static inputs need no profile; dynamic ones
** get one profile spanning the shapes of the case's data sets. */
static kiln_engine *build_for_case(const kiln_model *m, const char *dir,
                                   char *const *sets, int n_sets, char *msg, size_t n) {
    kiln_builder_config *cfg = NULL;
    kiln_engine *e = NULL;
    int ni = kiln_model_num_inputs(m);
    bool dynamic = false;
    for (int i = 0; i < ni; i++) {
        kiln_io_info io;
        kiln_model_input(m, i, &io);
        if (io.rank < 0) dynamic = true;
        for (int d = 0; d < io.rank; d++)
            if (io.dims[d] < 0) dynamic = true;
    }
    if (kiln_builder_config_create(&cfg) ||
        kiln_builder_config_set_logger(cfg, log_to_stderr, NULL, KILN_SEVERITY_ERROR))
        goto fail;
    if (dynamic) {
        int prof;
        if (kiln_builder_config_add_profile(cfg, &prof)) goto fail;
        for (int i = 0; i < ni; i++) {
            kiln_io_info io;
            int64_t mn[KILN_MAX_RANK], mx[KILN_MAX_RANK];
            int rank = -1;
            kiln_model_input(m, i, &io);
            for (int s = 0; s < n_sets; s++) {
                char path[4096];
                kiln_tensor *t;
                snprintf(path, sizeof path, "%s/%s/input_%d.pb", dir, sets[s], i);
                if (kiln_tensor_load_pb(path, &t, NULL)) goto fail;
                int r = kiln_tensor_rank(t);
                const int64_t *d = kiln_tensor_dims(t);
                if (rank < 0) {
                    rank = r;
                    memcpy(mn, d, (size_t)r * sizeof *d);
                    memcpy(mx, d, (size_t)r * sizeof *d);
                } else if (r == rank) {
                    for (int k = 0; k < r; k++) {
                        if (d[k] < mn[k]) mn[k] = d[k];
                        if (d[k] > mx[k]) mx[k] = d[k];
                    }
                }
                kiln_tensor_destroy(t);
            }
            if (rank >= 0 && kiln_builder_config_set_shape(cfg, prof, io.name, rank, mn, mx, mx))
                goto fail;
        }
    }
    e = build_and_load(m, cfg);
    if (!e) goto fail;
    kiln_builder_config_destroy(cfg);
    return e;
fail:
    snprintf(msg, n, "engine: %s", kiln_last_error());
    kiln_builder_config_destroy(cfg);
    return NULL;
}

/* Runs one case dir; returns 0 on pass. Prints the line. */
static int check_case(const char *dir, check_mode mode, const char *engine_path,
                      double rtol, double atol) {
    char path[4096], msg[1024] = "";
    const char *name = strrchr(dir, '/');
    name = name && name[1] ? name + 1 : dir;
    runner r = {0};
    kiln_model *m = NULL;
    int rc = 1, n_sets = 0;
    double worst = 0;
    char *sets[4096];
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(msg, sizeof msg, "cannot open %s", dir);
        goto done;
    }
    struct dirent *ent;
    while ((ent = readdir(d)) && n_sets < 4096)
        if (!strncmp(ent->d_name, "test_data_set_", 14)) sets[n_sets++] = strdup(ent->d_name);
    closedir(d);
    qsort(sets, (size_t)n_sets, sizeof *sets, cmp_str);
    if (!n_sets) {
        snprintf(msg, sizeof msg, "no test_data_set_* folders");
        goto done;
    }
    if (mode == MODE_ENGINE) {
        kiln_engine *e;
        if (kiln_engine_load_file(engine_path, &e)) {
            snprintf(msg, sizeof msg, "%s", kiln_last_error());
            goto done;
        }
        if (runner_open_engine(&r, e)) goto done;
    } else {
        snprintf(path, sizeof path, "%s/model.onnx", dir);
        if (kiln_model_load(path, &m)) {
            snprintf(msg, sizeof msg, "%s", kiln_last_error());
            goto done;
        }
        if (mode == MODE_REFERENCE) {
            r.model = m;
            m = NULL;
        } else {
            kiln_engine *e = build_for_case(m, dir, sets, n_sets, msg, sizeof msg);
            if (!e || runner_open_engine(&r, e)) goto done;
        }
    }
    int ni = runner_num_inputs(&r), no = runner_num_outputs(&r);
    if (ni > 512 || no > 512) {
        snprintf(msg, sizeof msg, "too many inputs/outputs");
        goto done;
    }
    for (int s = 0; s < n_sets; s++) {
        kiln_tensor *ins[512] = {0}, *outs[512] = {0}, *want = NULL;
        int k, failed = load_set(dir, sets[s], ni, ins, msg, sizeof msg);
        if (!failed && runner_run(&r, ins, outs)) {
            snprintf(msg, sizeof msg, "%s", kiln_last_error());
            failed = 1;
        }
        for (k = 0; !failed && k < no; k++) {
            snprintf(path, sizeof path, "%s/%s/output_%d.pb", dir, sets[s], k);
            if (kiln_tensor_load_pb(path, &want, NULL)) {
                snprintf(msg, sizeof msg, "%s", kiln_last_error());
                failed = 1;
                break;
            }
            char cm[700];
            double w = 0;
            if (compare(outs[k], want, rtol, atol, cm, sizeof cm, &w)) {
                kiln_io_info io;
                runner_output(&r, k, &io);
                snprintf(msg, sizeof msg, "%s: output %d '%s': %s", sets[s], k, io.name, cm);
                failed = 1;
            }
            if (w > worst) worst = w;
            kiln_tensor_destroy(want);
            want = NULL;
        }
        for (k = 0; k < ni; k++) kiln_tensor_destroy(ins[k]);
        for (k = 0; k < no; k++) kiln_tensor_destroy(outs[k]);
        if (failed) goto done;
    }
    rc = 0;
done:
    for (int s = 0; s < n_sets; s++) free(sets[s]);
    if (rc) printf("FAIL %s: %s\n", name, msg);
    else printf("PASS %s (max abs err %.3g)\n", name, worst);
    fflush(stdout);
    runner_close(&r);
    kiln_model_free(m);
    return rc;
}

static int cmd_check(int argc, char **argv) {
    double rtol = 1e-3, atol = 1e-7;
    int passed = 0, failed = 0, ncase = 0;
    check_mode mode = MODE_BUILD;
    const char *engine = NULL;
    bool *is_opt = calloc((size_t)argc + 1, sizeof *is_opt);
    if (!is_opt) return 1;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--rtol") && i + 1 < argc) {
            rtol = atof(argv[++i]);
            is_opt[i - 1] = is_opt[i] = true;
        } else if (!strcmp(argv[i], "--atol") && i + 1 < argc) {
            atol = atof(argv[++i]);
            is_opt[i - 1] = is_opt[i] = true;
        } else if (!strcmp(argv[i], "--engine") && i + 1 < argc) {
            engine = argv[++i];
            mode = MODE_ENGINE;
            is_opt[i - 1] = is_opt[i] = true;
        } else if (!strcmp(argv[i], "--reference")) {
            mode = MODE_REFERENCE;
            is_opt[i] = true;
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "kiln check: unknown option '%s'\n", argv[i]);
            free(is_opt);
            return 2;
        }
    }
    for (int i = 0; i < argc; i++) {
        if (is_opt[i]) continue;
        if (!is_dir(argv[i])) {
            printf("FAIL %s: not a directory\n", argv[i]);
            failed++;
            continue;
        }
        ncase++;
        if (check_case(argv[i], mode, engine, rtol, atol)) failed++;
        else passed++;
    }
    free(is_opt);
    if (!ncase && !failed) return usage();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

/* ------------------------------------------------------------ bench */
static int cmp_dbl(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static double pct(const double *sorted, int n, double p) {
    if (n <= 0) return 0;
    double k = p / 100.0 * (n - 1);
    int lo = (int)k;
    int hi = lo + 1 < n ? lo + 1 : lo;
    return sorted[lo] + (sorted[hi] - sorted[lo]) * (k - lo);
}

static int cmd_bench(int argc, char **argv) {
    const char *model = NULL, *engine = NULL, *shapes = NULL;
    double warmup_ms = 200, duration_s = 3, percentile = 99;
    int iterations = 10, threads = 1, json = 0, rc = 1, level = 3;
    runner r = {0};
    kiln_tensor **ins = NULL;
    double *lat = NULL;
    int ni = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        bool more = i + 1 < argc;
        if (!strcmp(a, "--engine") && more) engine = argv[++i];
        else if (!strcmp(a, "--shapes") && more) shapes = argv[++i];
        else if (!strcmp(a, "--warmup") && more) warmup_ms = atof(argv[++i]);
        else if (!strcmp(a, "--duration") && more) duration_s = atof(argv[++i]);
        else if (!strcmp(a, "--iterations") && more) iterations = atoi(argv[++i]);
        else if (!strcmp(a, "--threads") && more) threads = atoi(argv[++i]);
        else if (!strcmp(a, "--percentile") && more) percentile = atof(argv[++i]);
        else if (!strcmp(a, "--opt-level") && more) level = atoi(argv[++i]);
        else if (!strcmp(a, "--json")) json = 1;
        else if (a[0] == '-') {
            fprintf(stderr, "kiln bench: unknown or incomplete option '%s'\n", a);
            return 2;
        } else if (!model) model = a;
        else return usage();
    }
    if (model && has_suffix(model, ".kiln") && !engine) {
        engine = model;
        model = NULL;
    }
    if (!model == !engine || iterations < 1 || duration_s < 0 || percentile < 0 ||
        percentile > 100)
        return usage();
    kiln_set_num_threads(threads);
    kiln_engine *e = NULL;
    double build_ms = 0;
    if (engine) {
        if (kiln_engine_load_file(engine, &e)) {
            die_status("cannot load engine");
            return 1;
        }
    } else {
        kiln_model *m;
        kiln_builder_config *cfg;
        if (kiln_model_load(model, &m)) {
            die_status("cannot load model");
            return 1;
        }
        if (kiln_builder_config_create(&cfg)) {
            kiln_model_free(m);
            return 1;
        }
        kiln_builder_config_set_opt_level(cfg, level);
        shape_opts so = {shapes, NULL, NULL, NULL};
        double t0 = now_ms();
        if (!apply_profile(cfg, m, &so)) e = build_and_load(m, cfg);
        build_ms = now_ms() - t0;
        kiln_builder_config_destroy(cfg);
        kiln_model_free(m);
        if (!e) {
            die_status("build failed");
            return 1;
        }
    }
    if (runner_open_engine(&r, e)) goto done;
    ni = runner_num_inputs(&r);
    ins = calloc((size_t)ni + 1, sizeof *ins);
    if (!ins || make_inputs(&r, shapes, ins)) goto done;
    if (engine_bind(&r, ins)) {
        die_status("cannot bind inputs");
        goto done;
    }
    double t_end = now_ms() + warmup_ms;
    int warm = 0;
    do {
        if (kiln_context_execute(r.ctx)) {
            die_status("run failed");
            goto done;
        }
        warm++;
    } while (now_ms() < t_end);
    int cap = 1024, n = 0;
    lat = malloc((size_t)cap * sizeof *lat);
    if (!lat) goto done;
    double start = now_ms();
    while (n < iterations || now_ms() - start < duration_s * 1000.0) {
        double t0 = now_ms();
        if (kiln_context_execute(r.ctx)) {
            die_status("run failed");
            goto done;
        }
        if (n == cap) {
            cap *= 2;
            double *p = realloc(lat, (size_t)cap * sizeof *lat);
            if (!p) goto done;
            lat = p;
        }
        lat[n++] = now_ms() - t0;
    }
    double wall = now_ms() - start, sum = 0;
    for (int i = 0; i < n; i++) sum += lat[i];
    qsort(lat, (size_t)n, sizeof *lat, cmp_dbl);
    double qps = n / (wall / 1000.0);
    int64_t batch = kiln_tensor_rank(ins[0]) > 0 ? kiln_tensor_dims(ins[0])[0] : 1;
    if (json) {
        printf("{\"engine\":\"%s\",\"threads\":%d,\"iterations\":%d,\"warmup_runs\":%d,"
               "\"wall_s\":%.4f,\"build_ms\":%.1f,\"batch\":%lld,\"throughput_qps\":%.4f,"
               "\"throughput_items_per_s\":%.4f,\"latency_ms\":{\"min\":%.4f,\"mean\":%.4f,"
               "\"median\":%.4f,\"p90\":%.4f,\"p95\":%.4f,\"p99\":%.4f,\"max\":%.4f,"
               "\"percentile\":%g,\"at_percentile\":%.4f}}\n",
               engine ? engine : model, threads, n, warm, wall / 1000.0, build_ms,
               (long long)batch, qps, qps * (double)batch, lat[0], sum / n,
               pct(lat, n, 50), pct(lat, n, 90), pct(lat, n, 95), pct(lat, n, 99),
               lat[n - 1], percentile, pct(lat, n, percentile));
    } else {
        printf("=== Performance summary ===\n");
        printf("Engine: %s (threads %d, batch %lld)\n", engine ? engine : model, threads,
               (long long)batch);
        if (!engine) printf("Build time: %.1f ms\n", build_ms);
        printf("Warm-up: %d runs in %.0f ms\n", warm, warmup_ms);
        printf("Throughput: %.3f qps, %.3f items/s (%d queries in %.3f s)\n", qps,
               qps * (double)batch, n, wall / 1000.0);
        printf("Latency: min = %.4f ms, max = %.4f ms, mean = %.4f ms, median = %.4f ms,"
               " percentile(90%%) = %.4f ms, percentile(95%%) = %.4f ms,"
               " percentile(99%%) = %.4f ms, percentile(%g%%) = %.4f ms\n",
               lat[0], lat[n - 1], sum / n, pct(lat, n, 50), pct(lat, n, 90),
               pct(lat, n, 95), pct(lat, n, 99), percentile, pct(lat, n, percentile));
        printf("(CPU backend: enqueue, H2D, compute and D2H are one synchronous step;"
               " latency above is the compute time)\n");
    }
    rc = 0;
done:
    for (int k = 0; ins && k < ni; k++) kiln_tensor_destroy(ins[k]);
    free(ins);
    free(lat);
    runner_close(&r);
    return rc;
}

/* ------------------------------------------------------------ inspect */
static int inspect_engine(const char *path, int json, int runs) {
    kiln_engine *e;
    kiln_context *ctx = NULL;
    char *doc = NULL;
    int rc = 1;
    if (kiln_engine_load_file(path, &e)) {
        die_status("cannot load engine");
        return 1;
    }
    if (runs > 0) { /* profile the layers on random inputs at opt shapes */
        runner r = {0};
        kiln_tensor **ins = NULL;
        int ni = kiln_engine_num_inputs(e);
        r.engine = e;
        if (kiln_context_create(e, &r.ctx)) goto fail;
        ins = calloc((size_t)ni + 1, sizeof *ins);
        if (!ins || make_inputs(&r, NULL, ins) || engine_bind(&r, ins)) goto fail;
        kiln_context_execute(r.ctx); /* warm-up */
        kiln_context_set_profiling(r.ctx, 1);
        for (int i = 0; i < runs; i++)
            if (kiln_context_execute(r.ctx)) goto fail;
        ctx = r.ctx;
        for (int k = 0; k < ni; k++) kiln_tensor_destroy(ins[k]);
        free(ins);
        goto described;
    fail:
        die_status("profiling failed");
        for (int k = 0; ins && k < ni; k++) kiln_tensor_destroy(ins[k]);
        free(ins);
        kiln_context_destroy(r.ctx);
        kiln_engine_free(e);
        return 1;
    }
described:
    if (kiln_engine_describe_json(e, ctx, &doc)) {
        die_status("cannot describe engine");
        goto done;
    }
    if (json) {
        printf("%s\n", doc);
        rc = 0;
        goto done;
    }
    printf("engine:      %s\n", path);
    printf("layers:      %d (from %d ONNX nodes)\n", kiln_engine_num_layers(e),
           kiln_engine_source_nodes(e));
    printf("profiles:    %d\n", kiln_engine_num_profiles(e));
    char buf[512], b2[512], b3[512];
    printf("inputs:\n");
    for (int i = 0; i < kiln_engine_num_inputs(e); i++) {
        kiln_io_info io;
        kiln_engine_input(e, i, &io);
        printf("  %-24s %-8s %s\n", io.name, kiln_dtype_name(io.dtype),
               dims_str(io.rank, io.dims, io.dim_names, buf, sizeof buf));
        for (int p = 0; p < kiln_engine_num_profiles(e); p++) {
            int64_t mn[KILN_MAX_RANK], op[KILN_MAX_RANK], mx[KILN_MAX_RANK];
            kiln_engine_profile_shape(e, p, io.name, mn, op, mx);
            printf("    profile %d: min %s opt %s max %s\n", p,
                   dims_str(io.rank, mn, NULL, buf, sizeof buf),
                   dims_str(io.rank, op, NULL, b2, sizeof b2),
                   dims_str(io.rank, mx, NULL, b3, sizeof b3));
        }
    }
    printf("outputs:\n");
    for (int i = 0; i < kiln_engine_num_outputs(e); i++) {
        kiln_io_info io;
        kiln_engine_output(e, i, &io);
        printf("  %-24s %-8s %s\n", io.name, kiln_dtype_name(io.dtype),
               dims_str(io.rank, io.dims, io.dim_names, buf, sizeof buf));
    }
    for (int p = 0; p < kiln_engine_num_profiles(e); p++)
        printf("memory:      profile %d: %.2f MiB activations + workspace\n", p,
               (double)kiln_engine_activation_bytes(e, p) / 1048576.0);
    printf("layers:\n");
    for (int i = 0; i < kiln_engine_num_layers(e); i++) {
        kiln_layer_info li;
        kiln_engine_layer(e, i, &li);
        printf("  %4d %-32.32s %-18s %-4s %-28s", i, li.name, li.op_type,
               li.precision == KILN_PRECISION_FP32 ? "fp32" : "?", li.tactic);
        if (ctx) {
            const char *nm;
            double ms;
            int runs2;
            kiln_context_layer_time(ctx, i, &nm, &ms, &runs2);
            printf(" %9.4f ms", runs2 ? ms / runs2 : 0.0);
        }
        if (strchr(li.fused_from, ',')) printf("  <- %s", li.fused_from);
        printf("\n");
    }
    rc = 0;
done:
    kiln_free(doc);
    kiln_context_destroy(ctx);
    kiln_engine_free(e);
    return rc;
}

static int cmd_inspect(int argc, char **argv) {
    const char *path = NULL;
    int json = 0, runs = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) json = 1;
        else if (!strcmp(argv[i], "--profile-runs") && i + 1 < argc) runs = atoi(argv[++i]);
        else if (argv[i][0] == '-') {
            fprintf(stderr, "kiln inspect: unknown option '%s'\n", argv[i]);
            return 2;
        } else path = argv[i];
    }
    if (!path) return usage();
    /* An engine starts with its magic; anything else is read as ONNX. */
    FILE *f = fopen(path, "rb");
    char magic[8] = {0};
    if (f) {
        size_t got = fread(magic, 1, sizeof magic, f);
        (void)got;
        fclose(f);
    }
    if (!memcmp(magic, "KILN", 4) || has_suffix(path, ".kiln")) return inspect_engine(path, json, runs);
    return inspect_model(path);
}

int kiln_serve_main(int argc, char **argv); /* tools/kiln_serve.c */

int main(int argc, char **argv) {
    if (argc < 2) return usage();
    if (!strcmp(argv[1], "serve")) return kiln_serve_main(argc - 2, argv + 2);
    const char *cmd = argv[1];
    if (!strcmp(cmd, "build")) return cmd_build(argc - 2, argv + 2);
    if (!strcmp(cmd, "bench")) return cmd_bench(argc - 2, argv + 2);
    if (!strcmp(cmd, "run")) return cmd_run(argc - 2, argv + 2);
    if (!strcmp(cmd, "check")) return cmd_check(argc - 2, argv + 2);
    if (!strcmp(cmd, "inspect")) return cmd_inspect(argc - 2, argv + 2);
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("kiln %s\n", kiln_version());
        return 0;
    }
    return usage();
}

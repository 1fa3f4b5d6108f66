/* cli_io.c: getting data into a model: input files (.pb, .npy, a
** test_data_set folder), random inputs the model accepts (token ids within
** their table, masks of ones, shapes refused), engines built in memory for
** commands given a model, and the runner that executes either. */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- sources */
static int src_num_inputs(cli_input_src s) {
    return s.engine ? kiln_engine_num_inputs(s.engine) : kiln_model_num_inputs(s.model);
}
static void src_input(cli_input_src s, int i, kiln_io_info *io) {
    if (s.engine) kiln_engine_input(s.engine, i, io);
    else kiln_model_input(s.model, i, io);
}
static void src_hint(cli_input_src s, int i, kiln_input_hint *h) {
    kiln_status st = s.engine ? kiln_engine_input_hint(s.engine, i, h)
                              : kiln_model_input_hint(s.model, i, h);
    if (st) {
        memset(h, 0, sizeof *h);
        h->consumer = "";
    }
}

/* ---------------------------------------------------------------- npy */
static kiln_dtype npy_dtype(const char *d) {
    static const struct { const char *s; kiln_dtype t; } map[] = {
        {"<f4", KILN_DTYPE_FLOAT32}, {"<f8", KILN_DTYPE_FLOAT64}, {"<f2", KILN_DTYPE_FLOAT16},
        {"<i8", KILN_DTYPE_INT64}, {"<i4", KILN_DTYPE_INT32}, {"<i2", KILN_DTYPE_INT16},
        {"|i1", KILN_DTYPE_INT8}, {"|u1", KILN_DTYPE_UINT8}, {"<u2", KILN_DTYPE_UINT16},
        {"<u4", KILN_DTYPE_UINT32}, {"<u8", KILN_DTYPE_UINT64}, {"|b1", KILN_DTYPE_BOOL},
        {NULL, KILN_DTYPE_UNDEFINED}};
    for (int i = 0; map[i].s; i++)
        if (!strcmp(d, map[i].s)) return map[i].t;
    return KILN_DTYPE_UNDEFINED;
}

/* Finds 'key': in the header dict and returns the text after it. */
static const char *npy_field(const char *h, const char *key) {
    char pat[32];
    snprintf(pat, sizeof pat, "'%s':", key);
    const char *p = strstr(h, pat);
    if (!p) return NULL;
    p += strlen(pat);
    while (*p == ' ') p++;
    return p;
}

static kiln_status npy_fail(const char *path, const char *why) {
    fprintf(stderr, "kiln: %s: not a usable .npy file: %s\n", path, why);
    return KILN_INVALID_ARGUMENT;
}

kiln_status cli_load_npy(const char *path, kiln_tensor **out) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "kiln: cannot open '%s': %s\n", path, strerror(errno));
        return KILN_IO_ERROR;
    }
    unsigned char pre[12];
    char *h = NULL;
    kiln_status st = KILN_INVALID_ARGUMENT;
    size_t got = fread(pre, 1, 10, f);
    if (got < 10 || memcmp(pre, "\x93NUMPY", 6)) {
        st = npy_fail(path, "bad magic");
        goto done;
    }
    size_t hlen = (size_t)pre[8] | (size_t)pre[9] << 8;
    if (pre[6] >= 2) { /* v2/v3: 4-byte header length */
        if (fread(pre + 10, 1, 2, f) != 2) {
            st = npy_fail(path, "truncated header");
            goto done;
        }
        hlen |= (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
    }
    if (hlen > (1u << 20)) {
        st = npy_fail(path, "header too long");
        goto done;
    }
    h = calloc(hlen + 1, 1);
    if (!h || fread(h, 1, hlen, f) != hlen) {
        st = npy_fail(path, "truncated header");
        goto done;
    }
    const char *descr = npy_field(h, "descr"), *fo = npy_field(h, "fortran_order"),
               *shape = npy_field(h, "shape");
    char d[8] = {0};
    if (!descr || !fo || !shape || descr[0] != '\'' || sscanf(descr + 1, "%7[^']", d) != 1) {
        st = npy_fail(path, "header lacks descr, fortran_order or shape");
        goto done;
    }
    kiln_dtype dt = npy_dtype(d);
    if (dt == KILN_DTYPE_UNDEFINED) {
        char why[64];
        snprintf(why, sizeof why, "element type '%s' is not supported", d);
        st = npy_fail(path, why);
        goto done;
    }
    if (strncmp(fo, "False", 5)) {
        st = npy_fail(path, "Fortran order is not supported (save with C order)");
        goto done;
    }
    int64_t dims[KILN_MAX_RANK];
    int rank = 0;
    const char *p = shape;
    if (*p++ != '(') {
        st = npy_fail(path, "malformed shape");
        goto done;
    }
    for (;;) {
        while (*p == ' ' || *p == ',') p++;
        if (*p == ')') break;
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (end == p || v < 0 || errno || rank >= KILN_MAX_RANK) {
            st = npy_fail(path, "malformed shape");
            goto done;
        }
        dims[rank++] = v;
        p = end;
        if (*p == 'L') p++;
    }
    double bytes = (double)kiln_dtype_size(dt);
    for (int i = 0; i < rank; i++) bytes *= (double)dims[i];
    if (bytes > 1099511627776.0) {
        st = npy_fail(path, "shape too large");
        goto done;
    }
    if ((st = kiln_tensor_create(dt, rank, dims, out))) {
        fprintf(stderr, "kiln: %s: %s\n", path, kiln_last_error());
        goto done;
    }
    size_t nb = kiln_tensor_nbytes(*out);
    if (fread(kiln_tensor_data(*out), 1, nb, f) != nb || fgetc(f) != EOF) {
        st = npy_fail(path, "data size does not match the shape");
        kiln_tensor_destroy(*out);
        *out = NULL;
        goto done;
    }
    st = KILN_OK;
done:
    free(h);
    fclose(f);
    return st;
}

/* ---------------------------------------------------------------- given inputs */
static int load_one(const cli_args *a, const char *what, const char *file,
                    const kiln_io_info *io, kiln_tensor **out) {
    cli_file_kind k = cli_file_kind_of(file);
    if (k == FILE_MISSING) return cli_usage_error(a, "%s: file '%s' does not exist", what, file);
    if (k == FILE_DIR) return cli_usage_error(a, "%s: '%s' is a folder, not a file", what, file);
    if (k == FILE_ENGINE || k == FILE_TIMING_CACHE)
        return cli_usage_error(a, "%s: '%s' is %s, not a tensor (.pb or .npy)", what, file,
                               cli_file_kind_name(k));
    kiln_status st = k == FILE_NPY ? cli_load_npy(file, out)
                                   : kiln_tensor_load_pb(file, out, NULL);
    if (st) {
        if (k != FILE_NPY)
            return cli_usage_error(a, "%s: '%s' is not a TensorProto (.pb) or .npy file: %s",
                                   what, file, kiln_last_error());
        return cli_usage_error(a, "%s: cannot read '%s'", what, file);
    }
    if (kiln_tensor_dtype(*out) != io->dtype)
        return cli_usage_error(a, "%s: '%s' holds %s, input '%s' is %s", what, file,
                               kiln_dtype_name(kiln_tensor_dtype(*out)), io->name,
                               kiln_dtype_name(io->dtype));
    int r = kiln_tensor_rank(*out);
    const int64_t *d = kiln_tensor_dims(*out);
    bool ok = io->rank < 0 || io->rank == r;
    for (int i = 0; ok && io->rank >= 0 && i < r; i++) ok = io->dims[i] < 0 || io->dims[i] == d[i];
    if (!ok) {
        char b1[256], b2[256];
        return cli_usage_error(a, "%s: '%s' has shape %s, input '%s' is %s", what, file,
                               cli_dims_str(r, d, NULL, b1, sizeof b1), io->name,
                               cli_dims_str(io->rank, io->dims, io->dim_names, b2, sizeof b2));
    }
    return CLI_OK;
}

int cli_load_given_inputs(const cli_args *a, cli_input_src src, kiln_tensor **given) {
    int ni = src_num_inputs(src);
    const char *dir = cli_str(a, "--load-inputs", NULL);
    if (dir) {
        if (cli_file_kind_of(dir) != FILE_DIR)
            return cli_usage_error(a, "--load-inputs: '%s' is not a folder", dir);
        for (int k = 0; k < ni; k++) {
            kiln_io_info io;
            char path[4096], what[64];
            src_input(src, k, &io);
            snprintf(path, sizeof path, "%s/input_%d.pb", dir, k);
            snprintf(what, sizeof what, "--load-inputs (input %d '%.20s')", k, io.name);
            if (cli_file_kind_of(path) == FILE_MISSING)
                return cli_usage_error(a, "--load-inputs: '%s' has no input_%d.pb for input "
                                       "'%s'", dir, k, io.name);
            int rc = load_one(a, what, path, &io, &given[k]);
            if (rc) return rc;
        }
    }
    const cli_val *v = cli_get(a, "--input");
    for (int s = 0; s < v->given; s++) {
        const char *spec = v->all[s], *eq = strchr(spec, '=');
        if (!eq || eq == spec || !eq[1])
            return cli_usage_error(a, "--input: expected NAME=FILE, got '%s'", spec);
        int k;
        kiln_io_info io;
        for (k = 0; k < ni; k++) {
            src_input(src, k, &io);
            if (strlen(io.name) == (size_t)(eq - spec) &&
                !strncmp(io.name, spec, (size_t)(eq - spec)))
                break;
        }
        if (k == ni)
            return cli_usage_error(a, "--input: the model has no input '%.*s'",
                                   (int)(eq - spec), spec);
        for (int t = 0; t < s; t++)
            if (!strncmp(v->all[t], spec, (size_t)(eq - spec) + 1))
                return cli_usage_error(a, "--input: input '%s' is given twice", io.name);
        if (given[k] && dir)
            return cli_usage_error(a, "--input: input '%s' also comes from --load-inputs",
                                   io.name);
        int rc = load_one(a, "--input", eq + 1, &io, &given[k]);
        if (rc) return rc;
    }
    return CLI_OK;
}

/* ---------------------------------------------------------------- shapes */
int cli_input_shapes(const cli_args *a, cli_input_src src, const cli_shapes *sh,
                     kiln_tensor *const *given, int64_t (*dims)[KILN_MAX_RANK], int *ranks,
                     bool quiet) {
    int ni = src_num_inputs(src);
    const cli_val *batch = cli_get(a, "--batch");
    char note[1024] = "";
    size_t note_len = 0;
    for (int k = 0; k < ni; k++) {
        kiln_io_info io;
        src_input(src, k, &io);
        if (given && given[k]) {
            ranks[k] = kiln_tensor_rank(given[k]);
            memcpy(dims[k], kiln_tensor_dims(given[k]), (size_t)ranks[k] * sizeof(int64_t));
            continue;
        }
        const cli_shape *s = cli_find_shape(sh, io.name);
        if (s) {
            ranks[k] = s->rank;
            memcpy(dims[k], s->dims, (size_t)s->rank * sizeof(int64_t));
            continue;
        }
        if (io.rank < 0)
            return cli_usage_error(a, "input '%s' has unknown rank: give --shapes %s:DIMS or "
                                   "--input %s=FILE", io.name, io.name, io.name);
        ranks[k] = io.rank;
        int64_t opt[KILN_MAX_RANK];
        bool have_opt = src.engine && kiln_engine_profile_shape(src.engine, 0, io.name, NULL,
                                                                opt, NULL) == KILN_OK;
        for (int d = 0; d < io.rank; d++) {
            dims[k][d] = io.dims[d];
            if (d == 0 && batch->given) {
                if (io.dims[0] >= 0 && io.dims[0] != batch->i)
                    return cli_usage_error(a, "--batch %lld: input '%s' has a fixed first dim "
                                           "of %lld", batch->i, io.name, (long long)io.dims[0]);
                dims[k][0] = batch->i;
                continue;
            }
            if (dims[k][d] >= 0) continue;
            if (have_opt) {
                dims[k][d] = opt[d];
                continue;
            }
            if (!quiet && note_len < sizeof note - 64) {
                const char *dn = io.dim_names[d] ? io.dim_names[d] : "?";
                int w = snprintf(note + note_len, sizeof note - note_len, "%s%s.%s", note_len ? ", " : "",
                                 io.name, dn);
                if (w > 0) note_len += (size_t)w < sizeof note - note_len ? (size_t)w : 0;
            }
            dims[k][d] = 1;
        }
        double bytes = (double)(kiln_dtype_size(io.dtype) ? kiln_dtype_size(io.dtype) : 1);
        for (int d = 0; d < io.rank; d++) bytes *= (double)dims[k][d];
        if (bytes > 1099511627776.0) {
            char b[256];
            fprintf(stderr, "kiln: cannot create input '%s': shape %s is too large\n",
                    io.name, cli_dims_str(io.rank, dims[k], NULL, b, sizeof b));
            return CLI_FAIL;
        }
    }
    if (note_len) /* one line, not one per dim: BERT has six */
        fprintf(stderr, "kiln: symbolic dims set to 1: %s%s (set them with --shapes or "
                "--batch)\n", note, note_len >= sizeof note - 64 ? ", ..." : "");
    return CLI_OK;
}

/* ---------------------------------------------------------------- random */
static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static double rnd(void) { /* xorshift64*, uniform [0,1) */
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return (double)((g_rng * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}

static void fill_random(kiln_tensor *t, const kiln_input_hint *h) {
    int64_t n = kiln_tensor_numel(t);
    void *d = kiln_tensor_data(t);
    kiln_dtype dt = kiln_tensor_dtype(t);
    for (int64_t i = 0; i < n; i++) {
        double u = rnd();
        if (h->role == KILN_INPUT_MASK) u = -1; /* marks "one" below */
        else if (h->role == KILN_INPUT_INDEX) u = (double)(int64_t)(u * (double)h->index_bound);
        else if (dt != KILN_DTYPE_FLOAT32 && dt != KILN_DTYPE_FLOAT64 && dt != KILN_DTYPE_BOOL)
            u = (double)(int64_t)(u * 10);
        switch (dt) {
        case KILN_DTYPE_FLOAT32: ((float *)d)[i] = u < 0 ? 1.0f : (float)(u * 2 - 1); break;
        case KILN_DTYPE_FLOAT64: ((double *)d)[i] = u < 0 ? 1.0 : u * 2 - 1; break;
        case KILN_DTYPE_INT64: ((int64_t *)d)[i] = u < 0 ? 1 : (int64_t)u; break;
        case KILN_DTYPE_INT32: ((int32_t *)d)[i] = u < 0 ? 1 : (int32_t)u; break;
        case KILN_DTYPE_BOOL: ((uint8_t *)d)[i] = u < 0 ? 1 : u < 0.5; break;
        case KILN_DTYPE_UINT8:
        case KILN_DTYPE_INT8: ((uint8_t *)d)[i] = u < 0 ? 1 : (uint8_t)u; break;
        default: break; /* zeros */
        }
    }
}

int cli_make_inputs(const cli_args *a, cli_input_src src, const cli_shapes *sh,
                    kiln_tensor **ins) {
    int ni = src_num_inputs(src);
    const cli_val *seed = cli_get(a, "--seed");
    if (seed->given) g_rng = (uint64_t)seed->i * 2654435761ull + 1;
    int64_t (*dims)[KILN_MAX_RANK] = calloc((size_t)ni + 1, sizeof *dims);
    int *ranks = calloc((size_t)ni + 1, sizeof *ranks);
    int rc = CLI_FAIL;
    if (!dims || !ranks) goto done;
    /* shape tensors first: no random value would mean anything */
    for (int k = 0; k < ni; k++) {
        kiln_input_hint h;
        kiln_io_info io;
        if (ins[k]) continue;
        src_hint(src, k, &h);
        if (h.role == KILN_INPUT_SHAPE) {
            src_input(src, k, &io);
            rc = cli_usage_error(a, "input '%s' holds shape values (it feeds a %s); give it "
                                 "with --input %s=FILE", io.name, h.consumer, io.name);
            goto done;
        }
    }
    if ((rc = cli_input_shapes(a, src, sh, ins, dims, ranks, false))) goto done;
    rc = CLI_FAIL;
    for (int k = 0; k < ni; k++) {
        if (ins[k]) continue;
        kiln_io_info io;
        kiln_input_hint h;
        src_input(src, k, &io);
        src_hint(src, k, &h);
        if (kiln_tensor_create(io.dtype, ranks[k], dims[k], &ins[k])) {
            fprintf(stderr, "kiln: cannot create input '%s': %s\n", io.name, kiln_last_error());
            goto done;
        }
        fill_random(ins[k], &h);
    }
    rc = CLI_OK;
done:
    free(dims);
    free(ranks);
    return rc;
}

/* ---------------------------------------------------------------- engines */
bool cli_target_is_device(const cli_args *a) {
    return !strcmp(cli_str(a, "--device", "cpu"), "cuda");
}

kiln_status cli_target_apply(const cli_args *a, kiln_builder_config *cfg) {
    unsigned prec = KILN_PRECISION_FP32 | (cli_has(a, "--fp16") ? KILN_PRECISION_FP16 : 0) |
                    (cli_has(a, "--bf16") ? KILN_PRECISION_BF16 : 0);
    unsigned flags = (cli_has(a, "--tf32") ? KILN_BUILD_TF32 : 0) |
                     (cli_has(a, "--strict-device") ? KILN_BUILD_STRICT_DEVICE : 0);
    kiln_status st = kiln_builder_config_set_device(cfg, cli_target_is_device(a)
                                                             ? KILN_DEVICE_CUDA
                                                             : KILN_DEVICE_CPU);
    if (!st) st = kiln_builder_config_set_precisions(cfg, prec);
    if (!st) st = kiln_builder_config_set_flags(cfg, flags);
    return st;
}
kiln_engine *cli_engine_for(const cli_args *a, const kiln_model *m, kiln_tensor *const *given,
                            const cli_shapes *sh, double *build_ms, int *rc) {
    int ni = kiln_model_num_inputs(m);
    cli_input_src src = {m, NULL};
    kiln_builder_config *cfg = NULL;
    kiln_engine *e = NULL;
    void *blob = NULL;
    size_t n = 0;
    int64_t (*dims)[KILN_MAX_RANK] = calloc((size_t)ni + 1, sizeof *dims);
    int *ranks = calloc((size_t)ni + 1, sizeof *ranks);
    *rc = CLI_FAIL;
    if (!dims || !ranks) goto done;
    if ((*rc = cli_input_shapes(a, src, sh, given, dims, ranks, false))) goto done;
    *rc = CLI_FAIL;
    int prof;
    if (kiln_builder_config_create(&cfg) || kiln_builder_config_add_profile(cfg, &prof) ||
        kiln_builder_config_set_logger(cfg, cli_log_stderr, NULL, KILN_SEVERITY_WARNING)) {
        cli_lib_error(a->cmd->name, "build settings");
        goto done;
    }
    if ((cli_has(a, "--opt-level") &&
         kiln_builder_config_set_opt_level(cfg, (int)cli_get(a, "--opt-level")->i)) ||
        cli_target_apply(a, cfg)) {
        cli_lib_error(a->cmd->name, "build settings");
        goto done;
    }
    /* The engine is built for exactly the shapes it will run. */
    for (int k = 0; k < ni; k++) {
        kiln_io_info io;
        kiln_model_input(m, k, &io);
        if (kiln_builder_config_set_shape(cfg, prof, io.name, ranks[k], dims[k], dims[k],
                                          dims[k])) {
            cli_lib_error(a->cmd->name, "bad shape");
            goto done;
        }
    }
    double t0 = cli_now_ms();
    if (kiln_build_engine(m, cfg, &blob, &n)) {
        cli_lib_error(a->cmd->name, "build failed");
        goto done;
    }
    if (kiln_engine_load_memory(blob, n, &e)) {
        cli_lib_error(a->cmd->name, "cannot load the engine built");
        goto done;
    }
    if (build_ms) *build_ms = cli_now_ms() - t0;
    *rc = CLI_OK;
done:
    kiln_free(blob);
    kiln_builder_config_destroy(cfg);
    free(dims);
    free(ranks);
    return e;
}

/* ---------------------------------------------------------------- runner */
int cli_runner_num_inputs(const cli_runner *r) {
    return r->engine ? kiln_engine_num_inputs(r->engine) : kiln_model_num_inputs(r->model);
}
int cli_runner_num_outputs(const cli_runner *r) {
    return r->engine ? kiln_engine_num_outputs(r->engine) : kiln_model_num_outputs(r->model);
}
void cli_runner_input(const cli_runner *r, int i, kiln_io_info *io) {
    if (r->engine) kiln_engine_input(r->engine, i, io);
    else kiln_model_input(r->model, i, io);
}
void cli_runner_output(const cli_runner *r, int i, kiln_io_info *io) {
    if (r->engine) kiln_engine_output(r->engine, i, io);
    else kiln_model_output(r->model, i, io);
}

kiln_status cli_runner_bind(cli_runner *r, kiln_tensor *const *ins) {
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

kiln_status cli_runner_run(cli_runner *r, kiln_tensor *const *ins, kiln_tensor **outs) {
    if (!r->engine)
        return kiln_model_run_reference(r->model, (const kiln_tensor *const *)ins, outs);
    kiln_status st = cli_runner_bind(r, ins);
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

int cli_runner_open_engine(cli_runner *r, kiln_engine *e, const char *cmd) {
    r->engine = e;
    if (kiln_context_create(e, &r->ctx)) {
        cli_lib_error(cmd, "cannot create context");
        return -1;
    }
    return 0;
}

void cli_runner_close(cli_runner *r) {
    kiln_context_destroy(r->ctx);
    kiln_engine_free(r->engine);
    kiln_model_free(r->model);
    memset(r, 0, sizeof *r);
}

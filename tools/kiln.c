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

static int usage(void) {
    fprintf(stderr,
        "usage: kiln <command> [options]\n"
        "\n"
        "commands:\n"
        "  run MODEL.onnx [--input NAME=FILE.pb ...] [--shapes NAME:1x3x224x224,...]\n"
        "                 [--output-dir DIR] [--seed N]\n"
        "      run a model on the reference backend; without --input, inputs are\n"
        "      random for the declared shapes (symbolic dims set with --shapes)\n"
        "  check CASE_DIR... [--rtol R] [--atol A]\n"
        "      run ONNX backend-test cases (model.onnx + test_data_set_N/) and\n"
        "      compare outputs like numpy.allclose; exits 0 only if all pass\n"
        "  inspect MODEL.onnx\n"
        "      producer, opsets, inputs/outputs, node count, op histogram\n"
        "  version\n");
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
static int cmd_inspect(int argc, char **argv) {
    if (argc < 1) return usage();
    kiln_model *m;
    if (kiln_model_load(argv[0], &m)) {
        die_status("cannot load model");
        return 1;
    }
    char buf[512];
    printf("model:     %s\n", argv[0]);
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

/* ------------------------------------------------------------ run */
static int cmd_run(int argc, char **argv) {
    const char *model = NULL, *outdir = NULL, *shapes = NULL;
    const char *in_spec[256];
    int n_spec = 0, rc = 1;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--input") && i + 1 < argc) {
            if (n_spec < 256) in_spec[n_spec++] = argv[++i];
        } else if (!strcmp(argv[i], "--output-dir") && i + 1 < argc) {
            outdir = argv[++i];
        } else if (!strcmp(argv[i], "--shapes") && i + 1 < argc) {
            shapes = argv[++i];
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
    if (!model) return usage();
    kiln_model *m;
    if (kiln_model_load(model, &m)) {
        die_status("cannot load model");
        return 1;
    }
    int ni = kiln_model_num_inputs(m), no = kiln_model_num_outputs(m);
    kiln_tensor **ins = calloc((size_t)ni + 1, sizeof *ins);
    kiln_tensor **outs = calloc((size_t)no + 1, sizeof *outs);
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
            kiln_model_input(m, k, &io);
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
    for (int k = 0; k < ni; k++) {
        if (ins[k]) continue;
        kiln_io_info io;
        kiln_model_input(m, k, &io);
        int64_t dims[KILN_MAX_RANK];
        int rank = io.rank;
        int f = find_shape(shapes, io.name, dims, &rank);
        if (f < 0) {
            fprintf(stderr, "kiln run: bad --shapes entry for '%s'\n", io.name);
            goto done;
        }
        if (!f) {
            if (io.rank < 0) {
                fprintf(stderr, "kiln run: input '%s' has unknown rank; give --shapes %s:DIMS\n",
                        io.name, io.name);
                goto done;
            }
            for (int d = 0; d < rank; d++) {
                dims[d] = io.dims[d];
                if (dims[d] < 0) {
                    fprintf(stderr, "kiln run: input '%s' dim '%s' is symbolic; using 1 "
                            "(set it with --shapes %s:DIMS)\n", io.name,
                            io.dim_names[d] ? io.dim_names[d] : "?", io.name);
                    dims[d] = 1;
                }
            }
        }
        ins[k] = random_tensor(io.dtype, rank, dims);
        if (!ins[k]) {
            die_status("cannot create input");
            goto done;
        }
    }
    if (kiln_model_run_reference(m, (const kiln_tensor *const *)ins, outs)) {
        die_status("run failed");
        goto done;
    }
    if (outdir) mkdir(outdir, 0777);
    for (int k = 0; k < no; k++) {
        kiln_io_info io;
        char buf[256];
        kiln_model_output(m, k, &io);
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
    kiln_model_free(m);
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

/* Runs one case dir; returns 0 on pass. Prints the line. */
static int check_case(const char *dir, double rtol, double atol) {
    char path[4096], msg[1024] = "";
    const char *name = strrchr(dir, '/');
    name = name && name[1] ? name + 1 : dir;
    kiln_model *m = NULL;
    int rc = 1, n_sets = 0;
    double worst = 0;
    char *sets[4096];
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    if (kiln_model_load(path, &m)) {
        snprintf(msg, sizeof msg, "%s", kiln_last_error());
        goto done;
    }
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(msg, sizeof msg, "cannot open %s", dir);
        goto done;
    }
    struct dirent *e;
    while ((e = readdir(d)) && n_sets < 4096)
        if (!strncmp(e->d_name, "test_data_set_", 14)) sets[n_sets++] = strdup(e->d_name);
    closedir(d);
    qsort(sets, (size_t)n_sets, sizeof *sets, cmp_str);
    if (!n_sets) {
        snprintf(msg, sizeof msg, "no test_data_set_* folders");
        goto done;
    }
    int ni = kiln_model_num_inputs(m), no = kiln_model_num_outputs(m);
    for (int s = 0; s < n_sets; s++) {
        kiln_tensor *ins[512] = {0}, *outs[512] = {0}, *want = NULL;
        int k, failed = 0;
        if (ni > 512 || no > 512) {
            snprintf(msg, sizeof msg, "too many inputs/outputs");
            goto done;
        }
        for (k = 0; k < ni; k++) {
            snprintf(path, sizeof path, "%s/%s/input_%d.pb", dir, sets[s], k);
            if (!file_exists(path)) {
                kiln_io_info io;
                kiln_model_input(m, k, &io);
                snprintf(msg, sizeof msg, "%s: no data for input %d '%s'", sets[s], k, io.name);
                failed = 1;
                break;
            }
            if (kiln_tensor_load_pb(path, &ins[k], NULL)) {
                snprintf(msg, sizeof msg, "%s", kiln_last_error());
                failed = 1;
                break;
            }
        }
        if (!failed && kiln_model_run_reference(m, (const kiln_tensor *const *)ins, outs)) {
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
                kiln_model_output(m, k, &io);
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
    kiln_model_free(m);
    return rc;
}

static int cmd_check(int argc, char **argv) {
    double rtol = 1e-3, atol = 1e-7;
    int passed = 0, failed = 0, ncase = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--rtol") && i + 1 < argc) rtol = atof(argv[++i]);
        else if (!strcmp(argv[i], "--atol") && i + 1 < argc) atol = atof(argv[++i]);
        else if (argv[i][0] == '-') {
            fprintf(stderr, "kiln check: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--rtol") || !strcmp(argv[i], "--atol")) {
            i++;
            continue;
        }
        if (!is_dir(argv[i])) {
            printf("FAIL %s: not a directory\n", argv[i]);
            failed++;
            continue;
        }
        ncase++;
        if (check_case(argv[i], rtol, atol)) failed++;
        else passed++;
    }
    if (!ncase && !failed) return usage();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc < 2) return usage();
    const char *cmd = argv[1];
    if (!strcmp(cmd, "run")) return cmd_run(argc - 2, argv + 2);
    if (!strcmp(cmd, "check")) return cmd_check(argc - 2, argv + 2);
    if (!strcmp(cmd, "inspect")) return cmd_inspect(argc - 2, argv + 2);
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("kiln %s\n", kiln_version());
        return 0;
    }
    return usage();
}

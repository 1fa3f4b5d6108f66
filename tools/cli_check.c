/* cli_check.c: `kiln check`, ONNX backend-test cases (model.onnx plus
** test_data_set_N folders) run and compared like numpy.allclose, with the
** tolerances, relative L2 error and worst element printed per output. */
#include "cli.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

/* Compares like numpy.isclose with equal_nan and reports what a reader
** needs to judge a failure: the count of elements out of tolerance, the
** relative L2 error, and the worst element (by excess over its tolerance)
** with its index. Returns 0 if close. */
static int compare(const kiln_tensor *got, const kiln_tensor *want, double rtol,
                   double atol, char *msg, size_t n, double *worst_abs, double *rel_l2) {
    char a[128], b[128];
    *worst_abs = 0;
    *rel_l2 = 0;
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
        snprintf(msg, n, "shape %s, expected %s", cli_dims_str(rg, dg, NULL, a, sizeof a),
                 cli_dims_str(rw, dw, NULL, b, sizeof b));
        return 1;
    }
    int64_t cnt = elem_count(want), bad = 0, worst_i = -1;
    double worst = 0, excess = -INFINITY, num = 0, den = 0;
    for (int64_t i = 0; i < cnt; i++) {
        double x = elem(got, i), y = elem(want, i);
        if (isnan(x) && isnan(y)) continue;
        if (isinf(x) || isinf(y)) {
            if (x != y) {
                bad++;
                if (excess < INFINITY) worst_i = i;
                excess = INFINITY;
            }
            continue;
        }
        double d = fabs(x - y), tol = atol + rtol * fabs(y);
        num += d * d;
        den += y * y;
        if (!(d <= tol)) bad++;
        if (d != d || d - tol > excess) {
            excess = d != d ? INFINITY : d - tol;
            worst_i = i;
        }
        if (d > worst || d != d) worst = d;
    }
    *worst_abs = worst;
    *rel_l2 = den > 0 ? sqrt(num / den) : sqrt(num);
    char idx[160] = "";
    if (worst_i >= 0) { /* flat index -> [i, j, ...] */
        int64_t rem = worst_i, pos[KILN_MAX_RANK];
        for (int d = rw - 1; d >= 0; d--) {
            pos[d] = dw[d] ? rem % dw[d] : 0;
            rem = dw[d] ? rem / dw[d] : 0;
        }
        cli_dims_str(rw, pos, NULL, idx, sizeof idx);
    }
    if (bad) {
        snprintf(msg, n, "%lld of %lld elements out of tolerance; rel-L2 %.3g; worst at %s: "
                 "got %.9g, expected %.9g (abs err %.3g)", (long long)bad, (long long)cnt, *rel_l2,
                 idx, elem(got, worst_i), elem(want, worst_i), fabs(elem(got, worst_i) -
                                                               elem(want, worst_i)));
        return 1;
    }
    if (worst_i >= 0)
        snprintf(msg, n, "rel-L2 %.3g; worst at %s: got %.9g, expected %.9g (abs err %.3g)",
                 *rel_l2, idx, elem(got, worst_i), elem(want, worst_i), worst);
    else
        snprintf(msg, n, "rel-L2 0 (%lld elements)", (long long)cnt);
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
static const cli_args *g_check_args; /* the target options of this run */

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
        kiln_builder_config_set_logger(cfg, cli_log_stderr, NULL, KILN_SEVERITY_ERROR) ||
        (g_check_args && cli_target_apply(g_check_args, cfg)))
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
    void *blob = NULL;
    size_t nb = 0;
    if (kiln_build_engine(m, cfg, &blob, &nb)) goto fail;
    kiln_status lst = kiln_engine_load_memory(blob, nb, &e);
    kiln_free(blob);
    if (lst) goto fail;
    kiln_builder_config_destroy(cfg);
    return e;
fail:
    snprintf(msg, n, "engine: %s", kiln_last_error());
    kiln_builder_config_destroy(cfg);
    return NULL;
}

/* Runs one case dir; returns 0 on pass. Prints the PASS/FAIL line, then
** one indented line per output and data set. */
static int check_case(const char *dir, check_mode mode, const char *engine_path,
                      double rtol, double atol) {
    char path[4096], msg[1024] = "";
    const char *name = strrchr(dir, '/');
    name = name && name[1] ? name + 1 : dir;
    cli_runner r = {0};
    kiln_model *m = NULL;
    int rc = 1, n_sets = 0;
    double worst = 0, worst_l2 = 0;
    int host_layers = 0;
    bool device = false;
    char *sets[4096];
    char *detail = NULL;
    size_t dlen = 0, dcap = 0;
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(msg, sizeof msg, "cannot open %s", dir);
        goto done;
    }
    struct dirent *ent;
    while ((ent = readdir(d)) && n_sets < 4096)
        if (!strncmp(ent->d_name, "test_data_set_", 14)) {
            if (!(sets[n_sets] = strdup(ent->d_name))) break;
            n_sets++;
        }
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
        if (cli_runner_open_engine(&r, e, "check")) goto done;
        /* The engine must come from this case's model, or the comparison
        ** says nothing. */
        snprintf(path, sizeof path, "%s/model.onnx", dir);
        kiln_model *cm = NULL;
        if (file_exists(path) && kiln_model_load(path, &cm) == KILN_OK) {
            uint64_t mh = kiln_model_hash(cm), eh = kiln_engine_model_hash(e);
            kiln_model_free(cm);
            if (mh != eh) {
                snprintf(msg, sizeof msg, "engine '%.400s' was built from a different model than "
                         "%.400s (model digest %016llx, the engine records %016llx); rebuild it",
                         engine_path, path, (unsigned long long)mh, (unsigned long long)eh);
                goto done;
            }
        }
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
            if (!e || cli_runner_open_engine(&r, e, "check")) goto done;
            for (int l = 0; l < kiln_engine_num_layers(e); l++)
                host_layers += !kiln_engine_layer_on_device(e, l);
            device = strcmp(kiln_engine_backend(e), "cpu") != 0;
        }
    }
    int ni = cli_runner_num_inputs(&r), no = cli_runner_num_outputs(&r);
    if (ni > 512 || no > 512) {
        snprintf(msg, sizeof msg, "too many inputs/outputs");
        goto done;
    }
    for (int s = 0; s < n_sets; s++) {
        kiln_tensor *ins[512] = {0}, *outs[512] = {0}, *want = NULL;
        int k, failed = load_set(dir, sets[s], ni, ins, msg, sizeof msg);
        if (!failed && cli_runner_run(&r, ins, outs)) {
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
            double w = 0, l2 = 0;
            kiln_io_info io;
            cli_runner_output(&r, k, &io);
            int bad = compare(outs[k], want, rtol, atol, cm, sizeof cm, &w, &l2);
            if (bad) {
                snprintf(msg, sizeof msg, "%s: output %d '%s': %s", sets[s], k, io.name, cm);
                failed = 1;
            } else {
                char line[1024];
                int len = snprintf(line, sizeof line, "    %s output %d '%s': %s\n", sets[s], k,
                                   io.name, cm);
                if (len > 0 && (size_t)len < sizeof line) {
                    if (dlen + (size_t)len + 1 > dcap) {
                        size_t nc = (dcap + (size_t)len + 1) * 2;
                        char *p = realloc(detail, nc);
                        if (p) {
                            detail = p;
                            dcap = nc;
                        }
                    }
                    if (dlen + (size_t)len + 1 <= dcap) {
                        memcpy(detail + dlen, line, (size_t)len + 1);
                        dlen += (size_t)len;
                    }
                }
            }
            if (w > worst) worst = w;
            if (l2 > worst_l2) worst_l2 = l2;
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
    else if (device)
        printf("PASS %s (max abs err %.3g, max rel-L2 %.3g, %d host-fallback layers)\n%s", name,
               worst, worst_l2, host_layers, detail ? detail : "");
    else printf("PASS %s (max abs err %.3g, max rel-L2 %.3g)\n%s", name, worst, worst_l2,
                detail ? detail : "");
    fflush(stdout);
    free(detail);
    cli_runner_close(&r);
    kiln_model_free(m);
    return rc;
}

/* Defaults accept float32 reordering noise, like onnxruntime's runner for
** real models; the ONNX node tests pass their own stricter atol. */
#define CHECK_RTOL 1e-3
#define CHECK_ATOL 1e-5

static const cli_opt check_opts[] = {
    {"--engine", NULL, OPT_STR, "FILE", "run every case on this engine (it must be built from "
     "the case's model)", NULL, 0, 0, false, NULL},
    {"--reference", NULL, OPT_FLAG, NULL, "run on the reference interpreter instead of a "
     "built engine", NULL, 0, 0, false, NULL},
    {"--rtol", NULL, OPT_NUM, "R", "relative tolerance", "1e-3", 0, 1e300, false, NULL},
    {"--atol", NULL, OPT_NUM, "A", "absolute tolerance", "1e-5", 0, 1e300, false, NULL},
    CLI_TARGET_OPTS,
    {NULL, NULL, OPT_FLAG, NULL, NULL, NULL, 0, 0, false, NULL},
};

static int run_check(cli_args *a) {
    double rtol = cli_has(a, "--rtol") ? cli_get(a, "--rtol")->num : CHECK_RTOL;
    double atol = cli_has(a, "--atol") ? cli_get(a, "--atol")->num : CHECK_ATOL;
    const char *engine = cli_str(a, "--engine", NULL);
    check_mode mode = engine ? MODE_ENGINE : cli_has(a, "--reference") ? MODE_REFERENCE
                                                                        : MODE_BUILD;
    if (engine && cli_has(a, "--reference"))
        return cli_usage_error(a, "--engine and --reference exclude each other");
    if (engine) {
        cli_file_kind k = cli_file_kind_of(engine);
        if (k != FILE_ENGINE)
            return cli_usage_error(a, "--engine: '%s' is %s, not a Kiln engine", engine,
                                   k == FILE_MISSING ? "missing" : cli_file_kind_name(k));
    }
    for (int i = 0; i < a->n_pos; i++)
        if (!is_dir(a->pos[i]))
            return cli_usage_error(a, "'%s' is not a case folder (model.onnx + "
                                   "test_data_set_N/)", a->pos[i]);
    printf("tolerance: rtol %g, atol %g (an element passes when |got - expected| <= "
           "atol + rtol * |expected|)\n", rtol, atol);
    int passed = 0, failed = 0;
    g_check_args = a;
    for (int i = 0; i < a->n_pos; i++) {
        if (check_case(a->pos[i], mode, engine, rtol, atol)) failed++;
        else passed++;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? CLI_FAIL : CLI_OK;
}

const cli_cmd cli_cmd_check = {
    "check", "CASE_DIR... [options]",
    "Runs ONNX backend-test cases (model.onnx + test_data_set_N/) and compares the\n"
    "outputs like numpy.allclose. By default each model is built into an engine\n"
    "in memory, serialized, reloaded and run. Exits 0 only if all pass.",
    check_opts, 1, -1, "CASE_DIR...", run_check,
};

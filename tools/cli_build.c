/* cli_build.c: `kiln build`, model -> engine file. Every output is checked
** against the inputs and for writability before any work, so a typo in a
** path can never cost a file. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const cli_opt build_opts[] = {
    {"--output", "-o", OPT_STR, "FILE", "engine file to write (required)", NULL, 0, 0, false, NULL},
    {"--shapes", NULL, OPT_STR, "NAME:DIMS,...", "fixed shapes (min = opt = max)", NULL, 0, 0,
     false, NULL},
    {"--min-shapes", NULL, OPT_STR, "NAME:DIMS,...", "smallest shapes of the profile", NULL, 0,
     0, false, NULL},
    {"--opt-shapes", NULL, OPT_STR, "NAME:DIMS,...", "shapes tactics are timed at", NULL, 0, 0,
     false, NULL},
    {"--max-shapes", NULL, OPT_STR, "NAME:DIMS,...", "largest shapes (memory is planned for "
     "them)", NULL, 0, 0, false, NULL},
    {"--workspace", NULL, OPT_NUM, "MiB", "largest scratch memory one layer may use", "1024", 0,
     1048576, false, NULL},
    {"--opt-level", NULL, OPT_INT, "L", "0: no tactic timing; 1-5: more timing repetitions",
     "3", 0, 5, false, NULL},
    {"--timing-cache", NULL, OPT_STR, "FILE", "read and update this tactic timing cache; "
     "rebuilds with the same cache give identical bytes", "none", 0, 0, false, NULL},
    CLI_TARGET_OPTS,
    {"--int8", NULL, OPT_FLAG, NULL, "quantize Conv/Gemm/MatMul layers to INT8 after "
     "calibration (needs --calib or --calib-cache)", "off", 0, 0, false, NULL},
    {"--fp8", NULL, OPT_FLAG, NULL, "quantize Conv/Gemm/MatMul layers to FP8 E4M3 after "
     "calibration (needs --calib or --calib-cache; not with --int8)", "off", 0, 0, false,
     NULL},
    {"--calib", NULL, OPT_STR, "DIR", "calibration inputs: test_data_set_*/input_*.pb "
     "folders or NAME.npy files (one per input)", NULL, 0, 0, false, NULL},
    {"--calib-method", NULL, OPT_CHOICE, "entropy|minmax|percentile", "how activation "
     "ranges are picked from the histograms", "entropy (--fp8: minmax)", 0, 0, false,
     "entropy|minmax|percentile"},
    {"--calib-percentile", NULL, OPT_NUM, "P", "percentile of |x| kept (with "
     "--calib-method percentile)", "99.99", 1e-9, 100, false, NULL},
    {"--calib-batches", NULL, OPT_INT, "N", "use at most N calibration sets (0: all)", "0",
     0, 1000000000, false, NULL},
    {"--calib-cache", NULL, OPT_STR, "FILE", "calibration cache: read when it exists (no "
     "calibration runs), else written; text, one 'tensor scale' per line", "none", 0, 0,
     false, NULL},
    {"--accuracy-budget", NULL, OPT_STR, "METRIC:VALUE", "INT8/FP8 accuracy budget vs FP32 on "
     "--validate data: top1:0.5% (argmax disagreement), rel-l2:1e-2, cosine:0.999; layers "
     "that hurt most go back to FP32 until it holds", NULL, 0, 0, false, NULL},
    {"--validate", NULL, OPT_STR, "DIR", "validation inputs for --accuracy-budget (same "
     "layout as --calib)", NULL, 0, 0, false, NULL},
    {"--threads", NULL, OPT_INT, "N", "CPU threads per run while timing tactics (match the "
     "thread count the engine will run at)", "1", 1, 256, false, NULL},
    {"--verbose", "-v", OPT_FLAG, NULL, "log every timed tactic, marking the chosen one", "off",
     0, 0, false, NULL},
    {"--quiet", "-q", OPT_FLAG, NULL, "only warnings and errors (no progress lines)", "off", 0,
     0, false, NULL},
    {NULL, NULL, OPT_FLAG, NULL, NULL, NULL, 0, 0, false, NULL},
};

/* Applies --shapes or --min/--opt/--max-shapes as one profile; a missing
** one of min/opt/max takes its neighbour's value. */
static int apply_profile(const cli_args *a, kiln_builder_config *cfg, const kiln_model *m) {
    static const char *const names[4] = {"--shapes", "--min-shapes", "--opt-shapes",
                                         "--max-shapes"};
    int ni = kiln_model_num_inputs(m), rc = CLI_OK;
    kiln_io_info *ios = calloc((size_t)ni + 1, sizeof *ios);
    cli_shapes sh[4];
    memset(sh, 0, sizeof sh);
    if (!ios) return CLI_FAIL;
    for (int i = 0; i < ni; i++) kiln_model_input(m, i, &ios[i]);
    bool any = false;
    for (int k = 0; k < 4; k++) {
        const char *spec = cli_str(a, names[k], NULL);
        any |= spec != NULL;
        if (!cli_parse_shapes(a, names[k], spec, ios, ni, &sh[k])) {
            rc = CLI_USAGE;
            goto done;
        }
    }
    if (sh[0].n && (sh[1].n || sh[2].n || sh[3].n)) {
        rc = cli_usage_error(a, "--shapes fixes min, opt and max; do not combine it with "
                             "--min-shapes/--opt-shapes/--max-shapes");
        goto done;
    }
    if (!any) goto done;
    int prof;
    if (kiln_builder_config_add_profile(cfg, &prof)) {
        rc = CLI_FAIL;
        goto done;
    }
    for (int i = 0; i < ni; i++) {
        const cli_shape *f[4];
        for (int k = 0; k < 4; k++) f[k] = cli_find_shape(&sh[k], ios[i].name);
        if (!f[0] && !f[1] && !f[2] && !f[3]) continue;
        const cli_shape *mn = f[1] ? f[1] : f[2] ? f[2] : f[3] ? f[3] : f[0];
        const cli_shape *op = f[2] ? f[2] : f[3] ? f[3] : f[1] ? f[1] : f[0];
        const cli_shape *mx = f[3] ? f[3] : f[2] ? f[2] : f[1] ? f[1] : f[0];
        if (f[0]) mn = op = mx = f[0];
        if (mn->rank != op->rank || op->rank != mx->rank) {
            rc = cli_usage_error(a, "input '%s': min, opt and max shapes differ in rank",
                                 ios[i].name);
            goto done;
        }
        for (int d = 0; d < mn->rank; d++)
            if (mn->dims[d] > op->dims[d] || op->dims[d] > mx->dims[d]) {
                rc = cli_usage_error(a, "input '%s' dim %d: need min <= opt <= max, got "
                                     "%lld, %lld, %lld", ios[i].name, d,
                                     (long long)mn->dims[d], (long long)op->dims[d],
                                     (long long)mx->dims[d]);
                goto done;
            }
        if (kiln_builder_config_set_shape(cfg, prof, ios[i].name, mn->rank, mn->dims, op->dims,
                                          mx->dims)) {
            rc = cli_usage_error(a, "bad profile: %s", kiln_last_error());
            goto done;
        }
    }
done:
    for (int k = 0; k < 4; k++) cli_shapes_free(&sh[k]);
    free(ios);
    return rc;
}

/* The model argument must be something that can be an ONNX model. */
int cli_check_model_arg(const cli_args *a, const char *path) {
    cli_file_kind k = cli_file_kind_of(path);
    switch (k) {
    case FILE_MISSING: return cli_usage_error(a, "model '%s' does not exist", path);
    case FILE_DIR: return cli_usage_error(a, "model '%s' is a folder", path);
    case FILE_UNREADABLE: return cli_usage_error(a, "model '%s' cannot be read", path);
    case FILE_ENGINE:
    case FILE_TIMING_CACHE:
    case FILE_NPY:
        return cli_usage_error(a, "'%s' is %s, not an ONNX model", path, cli_file_kind_name(k));
    default: return CLI_OK;
    }
}

/* Draws a one-line progress bar on stderr for the long INT8 phases. */
static void progress_bar(void *user, const char *phase, int done, int total) {
    (void)user;
    int w = 30, f = total > 0 ? (int)((long long)done * w / total) : w;
    char bar[32];
    for (int i = 0; i < w; i++) bar[i] = i < f ? '#' : '.';
    bar[w] = 0;
    fprintf(stderr, "\r[kiln] %-16s [%s] %d/%d", phase, bar, done, total);
    if (done >= total) fputc('\n', stderr);
    fflush(stderr);
}

static int check_dir_arg(const cli_args *a, const char *opt, const char *dir) {
    cli_file_kind k = cli_file_kind_of(dir);
    if (k == FILE_MISSING) return cli_usage_error(a, "%s: folder '%s' does not exist", opt, dir);
    if (k != FILE_DIR) return cli_usage_error(a, "%s: '%s' is not a folder", opt, dir);
    return CLI_OK;
}

/* --int8 or --fp8 and their companions: checks and applies them. */
static int apply_int8(const cli_args *a, kiln_builder_config *cfg, const char *model,
                      const char *out, const char *tcache) {
    static const char *const deps[] = {"--calib", "--calib-method", "--calib-percentile",
                                       "--calib-batches", "--calib-cache",
                                       "--accuracy-budget", "--validate"};
    bool int8 = cli_has(a, "--int8"), fp8 = cli_has(a, "--fp8");
    if (int8 && fp8)
        return cli_usage_error(a, "--int8 and --fp8 exclude each other: choose one");
    if (!int8 && !fp8) {
        for (size_t i = 0; i < sizeof deps / sizeof *deps; i++)
            if (cli_has(a, deps[i]))
                return cli_usage_error(a, "%s needs --int8 or --fp8", deps[i]);
        return CLI_OK;
    }
    const char *flag = fp8 ? "--fp8" : "--int8";
    const char *dir = cli_str(a, "--calib", NULL), *cc = cli_str(a, "--calib-cache", NULL);
    const char *mname = cli_str(a, "--calib-method", fp8 ? "minmax" : "entropy");
    int rc;
    if (!dir && !cc)
        return cli_usage_error(a, "%s needs calibration data (--calib DIR) or an "
                               "existing --calib-cache FILE", flag);
    if (fp8 && !strcmp(mname, "entropy"))
        return cli_usage_error(a, "--calib-method entropy picks a threshold for the 8-bit "
                               "integer grid; with --fp8 use minmax (the default) or "
                               "percentile");
    if (dir && (rc = check_dir_arg(a, "--calib", dir))) return rc;
    if (cli_has(a, "--calib-percentile") && strcmp(mname, "percentile"))
        return cli_usage_error(a, "--calib-percentile goes with --calib-method percentile");
    if (cc) {
        cli_file_kind k = cli_file_kind_of(cc);
        if (!dir && k == FILE_MISSING)
            return cli_usage_error(a, "--calib-cache '%s' does not exist and no --calib DIR "
                                   "was given to make it", cc);
        if (k != FILE_MISSING && k != FILE_CALIB_CACHE)
            return cli_usage_error(a, "--calib-cache: '%s' is %s, not a Kiln calibration "
                                   "cache", cc, cli_file_kind_name(k));
        if (cli_same_file(cc, model) || cli_same_file(cc, out) || !strcmp(cc, out) ||
            (tcache && (!strcmp(cc, tcache) || cli_same_file(cc, tcache))))
            return cli_usage_error(a, "--calib-cache names the model, the engine or the "
                                   "timing cache");
        const char *ins[3] = {model, out, tcache};
        if (k == FILE_MISSING &&
            !cli_check_output(a, "--calib-cache", cc, ins, tcache ? 3 : 2, FILE_CALIB_CACHE))
            return CLI_USAGE;
    }
    kiln_calib_method m = !strcmp(mname, "minmax")       ? KILN_CALIB_MINMAX
                          : !strcmp(mname, "percentile") ? KILN_CALIB_PERCENTILE
                                                         : KILN_CALIB_ENTROPY;
    double pct = cli_has(a, "--calib-percentile") ? cli_get(a, "--calib-percentile")->num
                                                  : 99.99;
    int nb = cli_has(a, "--calib-batches") ? (int)cli_get(a, "--calib-batches")->i : 0;
    unsigned prec = (fp8 ? KILN_PRECISION_FP8 : KILN_PRECISION_INT8) | KILN_PRECISION_FP32 |
                    (cli_has(a, "--fp16") ? KILN_PRECISION_FP16 : 0u) |
                    (cli_has(a, "--bf16") ? KILN_PRECISION_BF16 : 0u);
    if (kiln_builder_config_set_precisions(cfg, prec) ||
        kiln_builder_config_set_int8_calibration(cfg, dir, m, pct, nb, cc))
        return cli_usage_error(a, "%s", kiln_last_error());
    const char *budget = cli_str(a, "--accuracy-budget", NULL);
    const char *vdir = cli_str(a, "--validate", NULL);
    if (!budget != !vdir)
        return cli_usage_error(a, "--accuracy-budget and --validate go together");
    if (budget) {
        if ((rc = check_dir_arg(a, "--validate", vdir))) return rc;
        const char *colon = strchr(budget, ':');
        kiln_accuracy_metric metric;
        size_t ml = colon ? (size_t)(colon - budget) : 0;
        if (ml == 4 && !strncmp(budget, "top1", 4)) metric = KILN_METRIC_TOP1;
        else if (ml == 6 && !strncmp(budget, "rel-l2", 6)) metric = KILN_METRIC_REL_L2;
        else if (ml == 6 && !strncmp(budget, "cosine", 6)) metric = KILN_METRIC_COSINE;
        else
            return cli_usage_error(a, "--accuracy-budget '%s': want top1:X%%, rel-l2:X or "
                                   "cosine:X", budget);
        char *end = NULL;
        double v = strtod(colon + 1, &end);
        bool num = end != colon + 1;
        if (num && metric == KILN_METRIC_TOP1 && *end == '%') end++;
        if (!num || *end || !(v == v))
            return cli_usage_error(a, "--accuracy-budget '%s': '%s' is not a number", budget,
                                   colon + 1);
        if (kiln_builder_config_set_accuracy_budget(cfg, metric, v, vdir))
            return cli_usage_error(a, "--accuracy-budget: %s", kiln_last_error());
    }
    if (isatty(2)) kiln_builder_config_set_progress(cfg, progress_bar, NULL);
    return CLI_OK;
}

static int run_build(cli_args *a) {
    const char *model = a->pos[0], *out = cli_str(a, "--output", NULL);
    const char *cache = cli_str(a, "--timing-cache", NULL);
    int rc;
    if ((rc = cli_check_model_arg(a, model))) return rc;
    if (!out) return cli_usage_error(a, "missing -o FILE (the engine to write)");
    if ((cache && !strcmp(cache, out)) || cli_same_file(cache, out))
        return cli_usage_error(a, "-o and --timing-cache name the same file '%s'", out);
    const char *ins[2] = {model, cache};
    if (!cli_check_output(a, "-o", out, ins, 2, FILE_ENGINE)) return CLI_USAGE;
    const char *ins2[2] = {model, out};
    if (cache && !cli_check_output(a, "--timing-cache", cache, ins2, 2, FILE_TIMING_CACHE))
        return CLI_USAGE;

    kiln_severity sev = cli_has(a, "--verbose") ? KILN_SEVERITY_VERBOSE
                      : cli_has(a, "--quiet") ? KILN_SEVERITY_WARNING : KILN_SEVERITY_INFO;
    if (cli_has(a, "--threads")) kiln_set_num_threads((int)cli_get(a, "--threads")->i);
    kiln_model *m = NULL;
    kiln_builder_config *cfg = NULL;
    void *blob = NULL;
    size_t n = 0;
    rc = CLI_FAIL;
    double t0 = cli_now_ms();
    if (kiln_model_load(model, &m)) {
        cli_lib_error("build", "cannot load model");
        goto done;
    }
    if (sev >= KILN_SEVERITY_INFO)
        fprintf(stderr, "[kiln info] model load: %.1f ms (%d nodes)\n", cli_now_ms() - t0,
                kiln_model_num_nodes(m));
    if (kiln_builder_config_create(&cfg) || cli_target_apply(a, cfg) ||
        (cli_has(a, "--opt-level") &&
         kiln_builder_config_set_opt_level(cfg, (int)cli_get(a, "--opt-level")->i)) ||
        (cli_has(a, "--workspace") &&
         kiln_builder_config_set_workspace(
             cfg, (uint64_t)(cli_get(a, "--workspace")->num * 1048576.0))) ||
        (cache && kiln_builder_config_set_timing_cache(cfg, cache)) ||
        kiln_builder_config_set_logger(cfg, cli_log_stderr, NULL, sev)) {
        cli_lib_error("build", "bad build settings");
        goto done;
    }
    if ((rc = apply_profile(a, cfg, m))) goto done;
    if ((rc = apply_int8(a, cfg, model, out, cache))) goto done;
    rc = CLI_FAIL;
    if (kiln_build_engine(m, cfg, &blob, &n)) {
        cli_lib_error("build", "build failed");
        goto done;
    }
    if (kiln_engine_save_blob(blob, n, out)) {
        cli_lib_error("build", "cannot write engine");
        goto done;
    }
    printf("wrote %s (%zu bytes) in %.2f s\n", out, n, (cli_now_ms() - t0) / 1000.0);
    rc = CLI_OK;
done:
    kiln_free(blob);
    kiln_builder_config_destroy(cfg);
    kiln_model_free(m);
    return rc;
}

const cli_cmd cli_cmd_build = {
    "build", "MODEL.onnx -o FILE [options]",
    "Optimizes the model for this machine and writes an engine file. Inputs with\n"
    "symbolic dims need a shape range (--shapes, or --min/--opt/--max-shapes).\n"
    "Progress goes to stderr, one line per phase with its time.\n"
    "--int8 calibrates on --calib data and writes ONNX Q/DQ into the graph as\n"
    "onnxruntime's quantize_static does: activations one scale per tensor with\n"
    "zero point 0 (uint8 where never negative, else int8 symmetric), int8\n"
    "symmetric weights with one scale per output channel.\n"
    "--fp8 does the same with FP8 E4M3 Q/DQ (every tensor symmetric, scale\n"
    "amax/448; minmax or percentile calibration). Layers without an FP8 kernel\n"
    "run it as simulated quantization (float math on E4M3-rounded values).",
    build_opts, 1, 1, "MODEL.onnx", run_build,
};

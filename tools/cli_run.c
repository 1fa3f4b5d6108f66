/* cli_run.c: `kiln run` (one execution, outputs to files) and `kiln bench`
** (latency and throughput, reported like trtexec: one line per statistic,
** spread, and a warning when the numbers cannot be trusted). */
#include "cli.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* What a running command works on: positional MODEL-or-ENGINE (by magic)
** or --engine FILE. */
int cli_resolve_target(const cli_args *a, const char **path, bool *is_engine) {
    const char *eng = cli_str(a, "--engine", NULL);
    if (eng && a->n_pos)
        return cli_usage_error(a, "give MODEL or --engine FILE, not both ('%s' and '%s')",
                               a->pos[0], eng);
    if (!eng && !a->n_pos) return cli_usage_error(a, "missing MODEL.onnx or --engine FILE");
    if (eng) {
        cli_file_kind k = cli_file_kind_of(eng);
        if (k == FILE_MISSING) return cli_usage_error(a, "--engine: '%s' does not exist", eng);
        if (k == FILE_DIR) return cli_usage_error(a, "--engine: '%s' is a folder", eng);
        if (k == FILE_EMPTY) return cli_usage_error(a, "--engine: '%s' is an empty file", eng);
        if (k != FILE_ENGINE && k != FILE_UNREADABLE)
            return cli_usage_error(a, "--engine: '%s' is not a Kiln engine (it lacks the "
                                   "engine magic%s)", eng,
                                   k == FILE_TIMING_CACHE ? "; it is a timing cache" : "");
        *path = eng;
        *is_engine = true;
        return CLI_OK;
    }
    *path = a->pos[0];
    *is_engine = cli_file_kind_of(*path) == FILE_ENGINE;
    return *is_engine ? CLI_OK : cli_check_model_arg(a, *path);
}

static void free_tensors(kiln_tensor **t, int n) {
    for (int k = 0; t && k < n; k++) kiln_tensor_destroy(t[k]);
    free(t);
}

/* Parses --shapes against the inputs of src. */
static int parse_input_shapes(const cli_args *a, cli_input_src src, cli_shapes *sh) {
    int ni = src.engine ? kiln_engine_num_inputs(src.engine) : kiln_model_num_inputs(src.model);
    kiln_io_info *ios = calloc((size_t)ni + 1, sizeof *ios);
    if (!ios) return CLI_FAIL;
    for (int i = 0; i < ni; i++) {
        if (src.engine) kiln_engine_input(src.engine, i, &ios[i]);
        else kiln_model_input(src.model, i, &ios[i]);
    }
    bool ok = cli_parse_shapes(a, "--shapes", cli_str(a, "--shapes", NULL), ios, ni, sh);
    free(ios);
    return ok ? CLI_OK : CLI_USAGE;
}

/* ---------------------------------------------------------------- run */
static const cli_opt run_opts[] = {
    {"--engine", NULL, OPT_STR, "FILE", "run this engine (else MODEL runs on the reference "
     "interpreter)", NULL, 0, 0, false, NULL},
    {"--reference", NULL, OPT_FLAG, NULL, "run MODEL on the reference interpreter (the default "
     "for a model)", NULL, 0, 0, false, NULL},
    {"--output-dir", NULL, OPT_STR, "DIR", "write output_K.pb files here (created if missing)",
     NULL, 0, 0, false, NULL},
    CLI_INPUT_OPTS,
    {NULL, NULL, OPT_FLAG, NULL, NULL, NULL, 0, 0, false, NULL},
};

/* The output folder may be created or reused, but writing output_K.pb must
** not replace any input (a test_data_set's expected outputs included). */
static int check_output_dir(const cli_args *a, const char *dir, int no, const char *target) {
    cli_file_kind k = cli_file_kind_of(dir);
    if (k != FILE_DIR && k != FILE_MISSING)
        return cli_usage_error(a, "--output-dir '%s' exists and is not a folder", dir);
    const char *load = cli_str(a, "--load-inputs", NULL);
    if (load && cli_same_file(load, dir))
        return cli_usage_error(a, "--output-dir '%s' is the --load-inputs folder; its "
                               "output_K.pb files would be replaced", dir);
    const cli_val *in = cli_get(a, "--input");
    for (int o = 0; o < no; o++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/output_%d.pb", dir, o);
        bool clash = cli_same_file(path, target);
        for (int s = 0; !clash && s < in->given; s++)
            clash = cli_same_file(path, strchr(in->all[s], '=') + 1);
        if (clash)
            return cli_usage_error(a, "--output-dir: writing '%s' would replace an input file",
                                   path);
        cli_file_kind ok = cli_file_kind_of(path);
        if (ok == FILE_DIR || ok == FILE_ENGINE || ok == FILE_TIMING_CACHE || ok == FILE_NPY)
            return cli_usage_error(a, "--output-dir: '%s' exists and is %s; refusing to "
                                   "overwrite it", path, cli_file_kind_name(ok));
    }
    if (k == FILE_MISSING && mkdir(dir, 0777) != 0)
        return cli_usage_error(a, "--output-dir: cannot create folder '%s'", dir);
    return CLI_OK;
}

static int run_run(cli_args *a) {
    const char *path;
    bool is_engine;
    int rc = cli_resolve_target(a, &path, &is_engine);
    if (rc) return rc;
    if (is_engine && cli_has(a, "--reference"))
        return cli_usage_error(a, "--reference runs a model; '%s' is an engine", path);
    cli_runner r = {0};
    kiln_tensor **ins = NULL, **outs = NULL;
    cli_shapes sh = {0};
    int ni = 0, no = 0;
    rc = CLI_FAIL;
    if (is_engine) {
        kiln_engine *e;
        if (kiln_engine_load_file(path, &e)) {
            cli_lib_error("run", "cannot load engine");
            return CLI_FAIL;
        }
        if (cli_runner_open_engine(&r, e, "run")) goto done;
    } else if (kiln_model_load(path, &r.model)) {
        cli_lib_error("run", "cannot load model");
        return CLI_FAIL;
    }
    cli_input_src src = {r.model, r.engine};
    ni = cli_runner_num_inputs(&r);
    no = cli_runner_num_outputs(&r);
    ins = calloc((size_t)ni + 1, sizeof *ins);
    outs = calloc((size_t)no + 1, sizeof *outs);
    if (!ins || !outs) goto done;
    if ((rc = cli_load_given_inputs(a, src, ins))) goto done;
    if ((rc = parse_input_shapes(a, src, &sh))) goto done;
    const char *outdir = cli_str(a, "--output-dir", NULL);
    if (outdir && (rc = check_output_dir(a, outdir, no, path))) goto done;
    if ((rc = cli_make_inputs(a, src, &sh, ins))) goto done;
    rc = CLI_FAIL;
    if (cli_runner_run(&r, ins, outs)) {
        cli_lib_error("run", "run failed");
        goto done;
    }
    for (int k = 0; k < no; k++) {
        kiln_io_info io;
        char buf[256];
        cli_runner_output(&r, k, &io);
        printf("output %d '%s': %s %s\n", k, io.name, kiln_dtype_name(kiln_tensor_dtype(outs[k])),
               cli_dims_str(kiln_tensor_rank(outs[k]), kiln_tensor_dims(outs[k]), NULL, buf,
                            sizeof buf));
        if (outdir) {
            char p[4096];
            snprintf(p, sizeof p, "%s/output_%d.pb", outdir, k);
            if (kiln_tensor_save_pb(outs[k], io.name, p)) {
                cli_lib_error("run", "cannot write output");
                goto done;
            }
        }
    }
    rc = CLI_OK;
done:
    free_tensors(ins, ni);
    free_tensors(outs, no);
    cli_shapes_free(&sh);
    cli_runner_close(&r);
    return rc;
}

const cli_cmd cli_cmd_run = {
    "run", "(MODEL.onnx | ENGINE | --engine ENGINE) [options]",
    "Runs once and prints the output shapes (and writes them with --output-dir).\n"
    "Inputs not given as files are random for the declared shapes, shaped by\n"
    "what the model does with them (token ids within the embedding table, masks\n"
    "of ones). A model runs on the reference interpreter, an engine as built.",
    run_opts, 0, 1, "MODEL.onnx or an engine", run_run,
};

/* ---------------------------------------------------------------- bench */
static const cli_opt bench_opts[] = {
    {"--engine", NULL, OPT_STR, "FILE", "benchmark this engine (else MODEL is built in memory)",
     NULL, 0, 0, false, NULL},
    CLI_INPUT_OPTS,
    {"--warmup", NULL, OPT_NUM, "MS", "warm-up time before timing", "200", 0, 3.6e6, false, NULL},
    {"--duration", NULL, OPT_NUM, "S", "least timed duration", "3", 0, 86400, false, NULL},
    {"--iterations", NULL, OPT_INT, "N", "least timed runs", "10", 1, 1e9, false, NULL},
    {"--threads", NULL, OPT_INT, "N", "CPU threads per run", "physical cores", 1, 256, false,
     NULL},
    {"--percentile", NULL, OPT_NUM, "P", "an extra latency percentile to report", "99", 0, 100,
     false, NULL},
    {"--opt-level", NULL, OPT_INT, "L", "optimization level when building MODEL", "3", 0, 5,
     false, NULL},
    CLI_TARGET_OPTS,
    {"--json", NULL, OPT_FLAG, NULL, "print the report as one JSON object", "off", 0, 0, false,
     NULL},
    {"--no-data-transfers", NULL, OPT_FLAG, NULL, "GPU engines: time only runs with inputs and "
     "outputs in device memory", "off", 0, 0, false, NULL},
    {"--streams", NULL, OPT_INT, "N", "GPU engines: N contexts on N streams (threads) at once",
     "1", 1, 64, false, NULL},
    {"--no-cuda-graph", NULL, OPT_FLAG, NULL, "GPU engines: launch layer by layer instead of "
     "replaying a CUDA graph", "off", 0, 0, false, NULL},
    {NULL, NULL, OPT_FLAG, NULL, NULL, NULL, 0, 0, false, NULL},
};

static int cmp_dbl(const void *x, const void *y) {
    double p = *(const double *)x, q = *(const double *)y;
    return p < q ? -1 : p > q;
}

static double pct(const double *sorted, int n, double p) {
    if (n <= 0) return 0;
    double k = p / 100.0 * (n - 1);
    int lo = (int)k;
    int hi = lo + 1 < n ? lo + 1 : lo;
    return sorted[lo] + (sorted[hi] - sorted[lo]) * (k - lo);
}

/* A run is flagged unstable when its spread would make a comparison
** meaningless: CoV over 10%, or a max over 5x the median (something else
** ran, or the machine throttled). */
#define UNSTABLE_COV 0.10
#define UNSTABLE_MAX_OVER_MEDIAN 5.0

static int run_bench(cli_args *a) {
    const char *path;
    bool is_engine;
    int rc = cli_resolve_target(a, &path, &is_engine);
    if (rc) return rc;
    int threads = cli_has(a, "--threads") ? (int)cli_get(a, "--threads")->i
                                          : cli_physical_cores();
    kiln_set_num_threads(threads);
    int used = kiln_get_num_threads();
    double host_t0 = cli_now_ms(), build_ms = 0;
    cli_runner r = {0};
    kiln_model *m = NULL;
    kiln_tensor **ins = NULL;
    cli_shapes sh = {0};
    double *lat = NULL;
    int ni = 0;
    kiln_engine *e = NULL;
    rc = CLI_FAIL;
    if (is_engine) {
        if (kiln_engine_load_file(path, &e)) {
            cli_lib_error("bench", "cannot load engine");
            return CLI_FAIL;
        }
        cli_input_src src = {NULL, e};
        ni = kiln_engine_num_inputs(e);
        if (!(ins = calloc((size_t)ni + 1, sizeof *ins))) goto done;
        if ((rc = cli_load_given_inputs(a, src, ins))) goto done;
        if ((rc = parse_input_shapes(a, src, &sh))) goto done;
    } else {
        if (kiln_model_load(path, &m)) {
            cli_lib_error("bench", "cannot load model");
            return CLI_FAIL;
        }
        cli_input_src src = {m, NULL};
        ni = kiln_model_num_inputs(m);
        if (!(ins = calloc((size_t)ni + 1, sizeof *ins))) goto done;
        if ((rc = cli_load_given_inputs(a, src, ins))) goto done;
        if ((rc = parse_input_shapes(a, src, &sh))) goto done;
        /* refuse shape inputs before spending a build on them */
        for (int k = 0; k < ni; k++) {
            kiln_input_hint h;
            kiln_io_info io;
            if (ins[k] || kiln_model_input_hint(m, k, &h) || h.role != KILN_INPUT_SHAPE) continue;
            kiln_model_input(m, k, &io);
            rc = cli_usage_error(a, "input '%s' holds shape values (it feeds a %s); give it "
                                 "with --input %s=FILE", io.name, h.consumer, io.name);
            goto done;
        }
        if (!(e = cli_engine_for(a, m, ins, &sh, &build_ms, &rc))) goto done;
    }
    rc = CLI_FAIL;
    if (cli_runner_open_engine(&r, e, "bench")) {
        e = NULL;
        goto done;
    }
    e = NULL; /* owned by the runner now */
    cli_input_src esrc = {NULL, r.engine};
    if ((rc = cli_make_inputs(a, esrc, &sh, ins))) goto done;
    rc = CLI_FAIL;
    if (cli_runner_bind(&r, ins)) {
        cli_lib_error("bench", "cannot bind inputs");
        goto done;
    }
    if (strcmp(kiln_engine_backend(r.engine), "cpu") != 0) {
        rc = cli_bench_device(a, path, r.engine, r.ctx, ins, ni);
        goto done;
    }
    if (cli_has(a, "--no-data-transfers") || cli_has(a, "--streams") ||
        cli_has(a, "--no-cuda-graph")) {
        rc = cli_usage_error(a, "--no-data-transfers, --streams and --no-cuda-graph apply to "
                             "GPU engines; this one runs on the CPU");
        goto done;
    }
    double warmup_ms = cli_has(a, "--warmup") ? cli_get(a, "--warmup")->num : 200;
    double duration_s = cli_has(a, "--duration") ? cli_get(a, "--duration")->num : 3;
    long long iterations = cli_has(a, "--iterations") ? cli_get(a, "--iterations")->i : 10;
    double percentile = cli_has(a, "--percentile") ? cli_get(a, "--percentile")->num : 99;
    double t_end = cli_now_ms() + warmup_ms;
    int warm = 0;
    do {
        if (kiln_context_execute(r.ctx)) {
            cli_lib_error("bench", "run failed");
            goto done;
        }
        warm++;
    } while (cli_now_ms() < t_end);
    long long cap = 1024, n = 0;
    lat = malloc((size_t)cap * sizeof *lat);
    if (!lat) goto done;
    double start = cli_now_ms();
    while (n < iterations || cli_now_ms() - start < duration_s * 1000.0) {
        double t0 = cli_now_ms();
        if (kiln_context_execute(r.ctx)) {
            cli_lib_error("bench", "run failed");
            goto done;
        }
        if (n == cap) {
            cap *= 2;
            double *p = realloc(lat, (size_t)cap * sizeof *lat);
            if (!p) goto done;
            lat = p;
        }
        lat[n++] = cli_now_ms() - t0;
    }
    double wall = cli_now_ms() - start, sum = 0, sq = 0;
    for (long long i = 0; i < n; i++) sum += lat[i];
    double mean = sum / (double)n;
    for (long long i = 0; i < n; i++) sq += (lat[i] - mean) * (lat[i] - mean);
    double sd = n > 1 ? sqrt(sq / (double)(n - 1)) : 0, cov = mean > 0 ? sd / mean : 0;
    qsort(lat, (size_t)n, sizeof *lat, cmp_dbl);
    int nn = (int)(n > 2000000000 ? 2000000000 : n);
    double med = pct(lat, nn, 50), mx = lat[n - 1];
    bool unstable = cov > UNSTABLE_COV || (med > 0 && mx > UNSTABLE_MAX_OVER_MEDIAN * med);
    double qps = (double)n / (wall / 1000.0), host_s = (cli_now_ms() - host_t0) / 1000.0;
    int64_t batch = ni && kiln_tensor_rank(ins[0]) > 0 ? kiln_tensor_dims(ins[0])[0] : 1;
    static const double ps[] = {50, 90, 95, 99};
    if (cli_has(a, "--json")) {
        printf("{\"engine\":");
        cli_json_str(path);
        printf(",\"built_in_memory\":%s,\"threads\":%d,\"iterations\":%lld,\"warmup_runs\":%d,"
               "\"wall_s\":%.4f,\"host_wall_s\":%.4f,\"build_ms\":%.1f,\"batch\":%lld,"
               "\"throughput_qps\":%.4f,\"throughput_items_per_s\":%.4f,\"unstable\":%s,"
               "\"latency_ms\":{\"min\":%.4f,\"mean\":%.4f,\"median\":%.4f,\"stddev\":%.4f,"
               "\"cov\":%.4f,\"p90\":%.4f,\"p95\":%.4f,\"p99\":%.4f,\"max\":%.4f,"
               "\"percentile\":%g,\"at_percentile\":%.4f}}\n",
               is_engine ? "false" : "true", used, n, warm, wall / 1000.0, host_s,
               build_ms, (long long)batch, qps, qps * (double)batch, unstable ? "true" : "false",
               lat[0], mean, med, sd, cov, pct(lat, nn, 90), pct(lat, nn, 95), pct(lat, nn, 99),
               mx, percentile, pct(lat, nn, percentile));
    } else {
        char b[256];
        printf("=== Performance summary ===\n");
        printf("%-12s %s (%s)\n", "Target:", path, is_engine ? "engine" : "model built in memory");
        printf("%-12s %d (default: %d physical cores)\n", "Threads:", used, cli_physical_cores());
        for (int k = 0; k < ni; k++) {
            kiln_io_info io;
            kiln_engine_input(r.engine, k, &io);
            printf("%-12s %s %s %s\n", k ? "" : "Inputs:", io.name,
                   kiln_dtype_name(io.dtype),
                   cli_dims_str(kiln_tensor_rank(ins[k]), kiln_tensor_dims(ins[k]), NULL, b,
                                sizeof b));
        }
        printf("%-12s %lld\n", "Batch:", (long long)batch);
        if (!is_engine) printf("%-12s %.1f ms\n", "Build:", build_ms);
        printf("%-12s %d runs in %.0f ms\n", "Warm-up:", warm, warmup_ms);
        printf("%-12s %.3f qps, %.3f items/s (%lld runs in %.3f s)\n", "Throughput:", qps,
               qps * (double)batch, n, wall / 1000.0);
        printf("%-12s %.3f s (load, build, warm-up and timed runs)\n", "Host wall:", host_s);
        printf("Latency:\n");
        printf("  %-14s %10.4f ms\n", "min", lat[0]);
        printf("  %-14s %10.4f ms\n", "max", mx);
        printf("  %-14s %10.4f ms\n", "mean", mean);
        printf("  %-14s %10.4f ms\n", "median", med);
        for (int i = 1; i < 4; i++) {
            char lab[32];
            snprintf(lab, sizeof lab, "p%g", ps[i]);
            printf("  %-14s %10.4f ms\n", lab, pct(lat, nn, ps[i]));
        }
        bool listed = false;
        for (int i = 0; i < 4; i++) listed |= ps[i] == percentile;
        if (!listed) {
            char lab[32];
            snprintf(lab, sizeof lab, "p%g", percentile);
            printf("  %-14s %10.4f ms\n", lab, pct(lat, nn, percentile));
        }
        printf("  %-14s %10.4f ms\n", "stddev", sd);
        printf("  %-14s %9.2f %%\n", "CoV", cov * 100);
        if (unstable)
            printf("Warning: unstable measurement (CoV %.1f%%, max %.1fx the median); close other "
                   "work, pin threads or raise --duration before comparing numbers\n",
                   cov * 100, med > 0 ? mx / med : 0.0);
        printf("(CPU backend: enqueue, H2D, compute and D2H are one synchronous step;"
               " latency above is the compute time)\n");
    }
    rc = CLI_OK;
done:
    free_tensors(ins, ni);
    free(lat);
    cli_shapes_free(&sh);
    kiln_engine_free(e);
    kiln_model_free(m);
    cli_runner_close(&r);
    return rc;
}

const cli_cmd cli_cmd_bench = {
    "bench", "(MODEL.onnx | ENGINE | --engine ENGINE) [options]",
    "Measures latency and throughput. A model is first built in memory for the\n"
    "input shapes (symbolic dims default to 1; set them with --shapes or --batch).\n"
    "Inputs not given as files are random values the model accepts.",
    bench_opts, 0, 1, "MODEL.onnx or an engine", run_bench,
};

/* cli_inspect.c: `kiln inspect`, what a file is and holds: an ONNX model
** (producer, opsets, I/O with symbolic dim names, op histogram), an engine
** (settings, I/O with profiles, layers, memory plan, optionally a per-layer
** profile sorted by time) or a timing cache. Text or JSON. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const cli_opt inspect_opts[] = {
    {"--json", NULL, OPT_FLAG, NULL, "print one JSON document", "off", 0, 0, false, NULL},
    {"--profile-runs", NULL, OPT_INT, "N", "time each layer over N runs (a model is built in "
     "memory first)", "0: no profile", 1, 1e6, false, NULL},
    {"--sort", NULL, OPT_CHOICE, "time|order", "order of the profiled layers", "time", 0, 0,
     false, "time|order"},
    {"--opt-level", NULL, OPT_INT, "L", "optimization level when building a model to profile",
     "3", 0, 5, false, NULL},
    {"--threads", NULL, OPT_INT, "N", "CPU threads per run while profiling", "physical cores", 1, 256, false,
     NULL},
    CLI_INPUT_OPTS,
    {NULL, NULL, OPT_FLAG, NULL, NULL, NULL, 0, 0, false, NULL},
};

/* ---------------------------------------------------------------- model */
static void json_dims(const kiln_io_info *io) {
    if (io->rank < 0) {
        printf("null");
        return;
    }
    printf("[");
    for (int d = 0; d < io->rank; d++) {
        if (d) printf(",");
        if (io->dims[d] >= 0) printf("%lld", (long long)io->dims[d]);
        else if (io->dim_names[d]) cli_json_str(io->dim_names[d]);
        else printf("null");
    }
    printf("]");
}

static int inspect_model_json(const kiln_model *m, const char *path) {
    printf("{\"model\":");
    cli_json_str(path);
    printf(",\"producer\":");
    cli_json_str(kiln_model_producer(m));
    printf(",\"ir_version\":%lld,\"model_hash\":\"%016llx\",\"opsets\":[",
           (long long)kiln_model_ir_version(m), (unsigned long long)kiln_model_hash(m));
    for (int i = 0; i < kiln_model_num_opsets(m); i++) {
        const char *d;
        int64_t v;
        kiln_model_opset(m, i, &d, &v);
        printf("%s{\"domain\":", i ? "," : "");
        cli_json_str(d[0] ? d : "ai.onnx");
        printf(",\"version\":%lld}", (long long)v);
    }
    for (int side = 0; side < 2; side++) {
        int n = side ? kiln_model_num_outputs(m) : kiln_model_num_inputs(m);
        printf("],\"%s\":[", side ? "outputs" : "inputs");
        for (int i = 0; i < n; i++) {
            kiln_io_info io;
            if (side) kiln_model_output(m, i, &io);
            else kiln_model_input(m, i, &io);
            printf("%s{\"name\":", i ? "," : "");
            cli_json_str(io.name);
            printf(",\"dtype\":");
            cli_json_str(kiln_dtype_name(io.dtype));
            printf(",\"shape\":");
            json_dims(&io);
            if (!side) {
                kiln_input_hint h;
                static const char *const roles[] = {"data", "index", "mask", "shape"};
                if (kiln_model_input_hint(m, i, &h) == KILN_OK) {
                    printf(",\"role\":\"%s\"", roles[h.role]);
                    if (h.role == KILN_INPUT_INDEX)
                        printf(",\"index_bound\":%lld", (long long)h.index_bound);
                }
            }
            printf("}");
        }
    }
    printf("],\"nodes\":%d,\"ops\":[", kiln_model_num_nodes(m));
    for (int i = 0; i < kiln_model_num_op_types(m); i++) {
        const char *op;
        int count, sup;
        kiln_model_op_type(m, i, &op, &count, &sup);
        printf("%s{\"op\":", i ? "," : "");
        cli_json_str(op);
        printf(",\"count\":%d,\"supported\":%s}", count, sup ? "true" : "false");
    }
    printf("]}\n");
    return CLI_OK;
}

static int inspect_model(const kiln_model *m, const char *path, bool json) {
    if (json) return inspect_model_json(m, path);
    char buf[512];
    printf("model:     %s\n", path);
    printf("producer:  %s\n", kiln_model_producer(m)[0] ? kiln_model_producer(m) : "(none)");
    printf("ir:        %lld\n", (long long)kiln_model_ir_version(m));
    printf("digest:    %016llx\n", (unsigned long long)kiln_model_hash(m));
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
        kiln_input_hint h;
        kiln_model_input(m, i, &io);
        printf("  %-24s %-8s %s", io.name, kiln_dtype_name(io.dtype),
               cli_dims_str(io.rank, io.dims, io.dim_names, buf, sizeof buf));
        if (kiln_model_input_hint(m, i, &h) == KILN_OK) {
            if (h.role == KILN_INPUT_INDEX)
                printf("  (indices into a %s table of %lld)", h.consumer,
                       (long long)h.index_bound);
            else if (h.role == KILN_INPUT_MASK) printf("  (mask)");
            else if (h.role == KILN_INPUT_SHAPE) printf("  (shape values for a %s)", h.consumer);
        }
        printf("\n");
    }
    printf("outputs:\n");
    for (int i = 0; i < kiln_model_num_outputs(m); i++) {
        kiln_io_info io;
        kiln_model_output(m, i, &io);
        printf("  %-24s %-8s %s\n", io.name, kiln_dtype_name(io.dtype),
               cli_dims_str(io.rank, io.dims, io.dim_names, buf, sizeof buf));
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
    return CLI_OK;
}

/* ---------------------------------------------------------------- profile */
typedef struct layer_time {
    int index;
    double ms;
} layer_time;

static int cmp_time(const void *x, const void *y) {
    const layer_time *p = x, *q = y;
    return p->ms > q->ms ? -1 : p->ms < q->ms ? 1 : p->index - q->index;
}

/* Profiles e over runs executions on inputs built from the options. */
static int profile(const cli_args *a, kiln_engine *e, kiln_tensor **ins, const cli_shapes *sh,
                   int runs, kiln_context **ctx_out) {
    kiln_context *ctx = NULL;
    cli_runner r = {0};
    cli_input_src src = {NULL, e};
    int rc = cli_make_inputs(a, src, sh, ins);
    if (rc) return rc;
    r.engine = e;
    if (kiln_context_create(e, &r.ctx)) {
        cli_lib_error("inspect", "cannot create context");
        return CLI_FAIL;
    }
    ctx = r.ctx;
    if (cli_runner_bind(&r, ins) || kiln_context_execute(ctx) /* warm-up */ ||
        kiln_context_set_profiling(ctx, 1)) {
        cli_lib_error("inspect", "profiling failed");
        kiln_context_destroy(ctx);
        return CLI_FAIL;
    }
    for (int i = 0; i < runs; i++)
        if (kiln_context_execute(ctx)) {
            cli_lib_error("inspect", "profiling failed");
            kiln_context_destroy(ctx);
            return CLI_FAIL;
        }
    *ctx_out = ctx;
    return CLI_OK;
}

static void print_profile(const cli_args *a, const kiln_engine *e, const kiln_context *ctx) {
    int n = kiln_engine_num_layers(e);
    layer_time *t = calloc((size_t)n + 1, sizeof *t);
    if (!t) return;
    double total = 0;
    int runs = 0;
    for (int i = 0; i < n; i++) {
        const char *nm;
        double ms;
        int r;
        t[i].index = i;
        if (kiln_context_layer_time(ctx, i, &nm, &ms, &r) == KILN_OK && r > 0) {
            t[i].ms = ms / r;
            runs = r;
        }
        total += t[i].ms;
    }
    bool by_time = strcmp(cli_str(a, "--sort", "time"), "order") != 0;
    if (by_time) qsort(t, (size_t)n, sizeof *t, cmp_time);
    printf("profile: %d runs, %.4f ms per run in %d layers (sorted by %s)\n", runs, total, n,
           by_time ? "time" : "execution order");
    printf("  %4s %-32s %-18s %-32s %10s %7s %7s\n", "#", "layer", "op", "tactic", "ms/run",
           "%", "cum %");
    double cum = 0;
    for (int k = 0; k < n; k++) {
        kiln_layer_info li;
        kiln_engine_layer(e, t[k].index, &li);
        double pc = total > 0 ? 100.0 * t[k].ms / total : 0;
        cum += pc;
        printf("  %4d %-32.32s %-18.18s %-32.32s %10.4f %6.2f%% %6.1f%%\n", t[k].index, li.name,
               li.op_type, li.tactic, t[k].ms, pc, cum);
    }
    printf("  %4s %-32s %-18s %-32s %10.4f %6.2f%%\n", "", "total", "", "", total, 100.0);
    free(t);
}

/* ---------------------------------------------------------------- engine */
static int inspect_engine(const cli_args *a, kiln_engine *e, const char *path, bool json,
                          const kiln_context *ctx) {
    char *doc = NULL;
    if (kiln_engine_describe_json(e, ctx, &doc)) {
        cli_lib_error("inspect", "cannot describe engine");
        return CLI_FAIL;
    }
    if (json) {
        /* the description, plus the source model's digest */
        size_t len = strlen(doc);
        while (len && doc[len - 1] != '}') len--;
        if (len) {
            printf("%.*s,\"model_hash\":\"%016llx\"}\n", (int)(len - 1), doc,
                   (unsigned long long)kiln_engine_model_hash(e));
        } else {
            printf("%s\n", doc);
        }
        kiln_free(doc);
        return CLI_OK;
    }
    kiln_free(doc);
    printf("engine:      %s\n", path);
    printf("model:       digest %016llx\n", (unsigned long long)kiln_engine_model_hash(e));
    printf("layers:      %d (from %d ONNX nodes)\n", kiln_engine_num_layers(e),
           kiln_engine_source_nodes(e));
    printf("profiles:    %d\n", kiln_engine_num_profiles(e));
    char buf[512], b2[512], b3[512];
    printf("inputs:\n");
    for (int i = 0; i < kiln_engine_num_inputs(e); i++) {
        kiln_io_info io;
        kiln_engine_input(e, i, &io);
        printf("  %-24s %-8s %s\n", io.name, kiln_dtype_name(io.dtype),
               cli_dims_str(io.rank, io.dims, io.dim_names, buf, sizeof buf));
        for (int p = 0; p < kiln_engine_num_profiles(e); p++) {
            int64_t mn[KILN_MAX_RANK], op[KILN_MAX_RANK], mx[KILN_MAX_RANK];
            kiln_engine_profile_shape(e, p, io.name, mn, op, mx);
            printf("    profile %d: min %s opt %s max %s\n", p,
                   cli_dims_str(io.rank, mn, NULL, buf, sizeof buf),
                   cli_dims_str(io.rank, op, NULL, b2, sizeof b2),
                   cli_dims_str(io.rank, mx, NULL, b3, sizeof b3));
        }
    }
    printf("outputs:\n");
    for (int i = 0; i < kiln_engine_num_outputs(e); i++) {
        kiln_io_info io;
        kiln_engine_output(e, i, &io);
        printf("  %-24s %-8s %s\n", io.name, kiln_dtype_name(io.dtype),
               cli_dims_str(io.rank, io.dims, io.dim_names, buf, sizeof buf));
    }
    for (int p = 0; p < kiln_engine_num_profiles(e); p++)
        printf("memory:      profile %d: %.2f MiB activations + workspace\n", p,
               (double)kiln_engine_activation_bytes(e, p) / 1048576.0);
    bool dev = strcmp(kiln_engine_backend(e), "cpu") != 0;
    if (dev) {
        int host = 0;
        for (int i = 0; i < kiln_engine_num_layers(e); i++) host += !kiln_engine_layer_on_device(e, i);
        printf("device:      %s (%s)\n", kiln_engine_backend(e), kiln_engine_device_fingerprint(e));
        printf("             %d layer(s) on the host (marked HOST below; their inputs and outputs "
               "are copied)\n", host);
    }
    printf("layers:\n");
    for (int i = 0; i < kiln_engine_num_layers(e); i++) {
        kiln_layer_info li;
        kiln_engine_layer(e, i, &li);
        printf("  %4d %s%-32.32s %-18s %-4s %-28s", i,
               !dev ? "" : kiln_engine_layer_on_device(e, i) ? "     " : "HOST ", li.name,
               li.op_type,
               li.precision == KILN_PRECISION_FP32 ? "fp32"
               : li.precision == KILN_PRECISION_FP16 ? "fp16"
               : li.precision == KILN_PRECISION_BF16 ? "bf16"
               : li.precision == KILN_PRECISION_INT8 ? "int8"
               : li.precision == KILN_PRECISION_FP8 ? "fp8" : "?",
               li.tactic);
        /* channels-last layers and their reformats (passes/layout.c) */
        const char *lay = kiln_engine_layer_layout(e, i);
        if (!strcmp(lay, "NHWC")) printf("  [NHWC]");
        else if (lay[0]) printf("  [reformat %s]", lay);
        if (strchr(li.fused_from, ',')) printf("  <- %s", li.fused_from);
        kiln_layer_quant lq;
        if (!kiln_engine_layer_quant(e, i, &lq) && lq.quantized) {
            if (lq.input_scale > 0) printf("  scale %.6g", (double)lq.input_scale);
            if (lq.n_weight_scales == 1)
                printf("  w-scale %.6g", (double)lq.weight_scale_min);
            else if (lq.n_weight_scales > 1)
                printf("  w-scales %d in [%.4g, %.4g]", lq.n_weight_scales,
                       (double)lq.weight_scale_min, (double)lq.weight_scale_max);
        }
        printf("\n");
    }
    if (ctx) print_profile(a, e, ctx);
    return CLI_OK;
}

/* ---------------------------------------------------------------- cache */
static int inspect_cache(const char *path, bool json) {
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "kiln inspect: cannot open '%s'\n", path);
        return CLI_FAIL;
    }
    char line[4096], head[4096] = "";
    long entries = 0;
    if (fgets(head, sizeof head, f)) head[strcspn(head, "\n")] = 0;
    while (fgets(line, sizeof line, f)) entries += strchr(line, '\t') != NULL;
    fclose(f);
    if (json) {
        printf("{\"timing_cache\":");
        cli_json_str(path);
        printf(",\"header\":");
        cli_json_str(head);
        printf(",\"entries\":%ld}\n", entries);
    } else {
        printf("timing cache: %s\nheader:       %s\nentries:      %ld\n", path, head, entries);
    }
    return CLI_OK;
}

static int run_inspect(cli_args *a) {
    const char *path = a->pos[0];
    bool json = cli_has(a, "--json");
    int runs = cli_has(a, "--profile-runs") ? (int)cli_get(a, "--profile-runs")->i : 0;
    cli_file_kind k = cli_file_kind_of(path);
    bool wants_inputs = cli_has(a, "--input") || cli_has(a, "--load-inputs") ||
                        cli_has(a, "--shapes") || cli_has(a, "--batch") ||
                        cli_has(a, "--sort") || cli_has(a, "--opt-level") ||
                        cli_has(a, "--threads") || cli_has(a, "--seed");
    if (wants_inputs && !runs)
        return cli_usage_error(a, "input, shape and profiling options need --profile-runs N");
    if (k == FILE_TIMING_CACHE) {
        if (runs) return cli_usage_error(a, "'%s' is a timing cache; nothing to profile", path);
        return inspect_cache(path, json);
    }
    if (k != FILE_ENGINE) {
        int rc = cli_check_model_arg(a, path);
        if (rc) return rc;
    }
    kiln_set_num_threads(cli_has(a, "--threads") ? (int)cli_get(a, "--threads")->i
                                                : cli_physical_cores());
    kiln_model *m = NULL;
    kiln_engine *e = NULL;
    kiln_context *ctx = NULL;
    kiln_tensor **ins = NULL;
    cli_shapes sh = {0};
    int rc = CLI_FAIL, ni = 0;
    if (k == FILE_ENGINE) {
        if (kiln_engine_load_file(path, &e)) {
            cli_lib_error("inspect", "cannot load engine");
            return CLI_FAIL;
        }
    } else {
        if (kiln_model_load(path, &m)) {
            cli_lib_error("inspect", "cannot load model");
            return CLI_FAIL;
        }
        if (!runs) {
            rc = inspect_model(m, path, json);
            goto done;
        }
    }
    /* profiling: inputs are checked against what is profiled */
    cli_input_src src = {m, e};
    ni = m ? kiln_model_num_inputs(m) : kiln_engine_num_inputs(e);
    if (!(ins = calloc((size_t)ni + 1, sizeof *ins))) goto done;
    if (runs) {
        kiln_io_info *ios = calloc((size_t)ni + 1, sizeof *ios);
        if (!ios) goto done;
        for (int i = 0; i < ni; i++) {
            if (m) kiln_model_input(m, i, &ios[i]);
            else kiln_engine_input(e, i, &ios[i]);
        }
        bool ok = cli_parse_shapes(a, "--shapes", cli_str(a, "--shapes", NULL), ios, ni, &sh);
        free(ios);
        if (!ok) {
            rc = CLI_USAGE;
            goto done;
        }
        if ((rc = cli_load_given_inputs(a, src, ins))) goto done;
        if (m) {
            for (int i = 0; i < ni; i++) { /* shape inputs: refuse before a build */
                kiln_input_hint h;
                kiln_io_info io;
                if (ins[i] || kiln_model_input_hint(m, i, &h) || h.role != KILN_INPUT_SHAPE)
                    continue;
                kiln_model_input(m, i, &io);
                rc = cli_usage_error(a, "input '%s' holds shape values (it feeds a %s); give "
                                     "it with --input %s=FILE", io.name, h.consumer, io.name);
                goto done;
            }
            if (!(e = cli_engine_for(a, m, ins, &sh, NULL, &rc))) goto done;
        }
        if ((rc = profile(a, e, ins, &sh, runs, &ctx))) goto done;
    }
    rc = inspect_engine(a, e, path, json, ctx);
done:
    for (int i = 0; ins && i < ni; i++) kiln_tensor_destroy(ins[i]);
    free(ins);
    cli_shapes_free(&sh);
    kiln_context_destroy(ctx);
    kiln_engine_free(e);
    kiln_model_free(m);
    return rc;
}

const cli_cmd cli_cmd_inspect = {
    "inspect", "(MODEL.onnx | ENGINE | TIMING_CACHE) [options]",
    "Describes a file, recognized by its content: a model (producer, opsets, I/O\n"
    "with symbolic dim names and input roles, op histogram), an engine (settings,\n"
    "I/O with profiles, layers with tactics, memory plan) or a timing cache.\n"
    "--profile-runs N times every layer (a model is built in memory first) and\n"
    "prints totals and percentages, slowest first.",
    inspect_opts, 1, 1, "a model, engine or timing cache", run_inspect,
};

/* ---------------------------------------------------------------- version */
static const cli_opt version_opts[] = {
    {NULL, NULL, OPT_FLAG, NULL, NULL, NULL, 0, 0, false, NULL},
};

static int run_version(cli_args *a) {
    (void)a;
    printf("kiln %s\n", kiln_version());
    return CLI_OK;
}

const cli_cmd cli_cmd_version = {
    "version", "", "Prints the kiln version.", version_opts, 0, 0, "nothing", run_version,
};

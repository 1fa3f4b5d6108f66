/* cli.h: what the kiln tool's subcommand files share: the table-driven
** option parser, argument checks that refuse bad input by name, file kinds
** by magic bytes, and the runner/input helpers. Only kiln.h is used from
** the library. */
#ifndef KILN_CLI_H
#define KILN_CLI_H

#include "kiln.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Exit codes: 0 success, 1 the work failed (a model that does not build, a
** check that does not pass), 2 the command line was refused. */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

/* ---------------------------------------------------------------- options */
typedef enum cli_opt_type {
    OPT_FLAG,    /* no value */
    OPT_STR,     /* any non-empty string */
    OPT_INT,     /* integer in [lo, hi] */
    OPT_NUM,     /* finite real number in [lo, hi] */
    OPT_CHOICE   /* one of the '|'-separated words in choices */
} cli_opt_type;

typedef struct cli_opt {
    const char *name;     /* "--threads" */
    const char *alias;    /* "-o", or NULL */
    cli_opt_type type;
    const char *metavar;  /* "N", "FILE" */
    const char *help;
    const char *def;      /* default as shown by --help, NULL: none */
    double lo, hi;        /* range of OPT_INT / OPT_NUM, inclusive */
    bool repeat;          /* may be given more than once (--input) */
    const char *choices;  /* OPT_CHOICE: "cpu|cuda" */
} cli_opt;

/* Value of one option after parsing. */
typedef struct cli_val {
    int given;            /* times given */
    const char *str;      /* last value as written */
    const char **all;     /* every value of a repeatable option */
    long long i;
    double num;
} cli_val;

typedef struct cli_cmd cli_cmd;
typedef struct cli_args {
    const cli_cmd *cmd;
    cli_val *v;           /* parallel to cmd->opts */
    int n_pos;
    const char **pos;     /* positional arguments */
} cli_args;

/* One subcommand. Another subcommand (serve, compare, ...) lives in its own
** file, defines one of these and adds X(name) to KILN_COMMANDS in kiln.c. */
struct cli_cmd {
    const char *name;
    const char *synopsis;  /* "MODEL.onnx -o FILE.kiln [options]" */
    const char *summary;   /* one paragraph for --help */
    const cli_opt *opts;   /* terminated by a {NULL} entry */
    int min_pos, max_pos;  /* positional argument count (max -1: any) */
    const char *pos_what;  /* "MODEL.onnx", for errors */
    int (*run)(cli_args *a);
};

/* Parses argv against cmd's table. Returns CLI_OK, CLI_USAGE (after
** printing "kiln CMD: --opt: reason"), or -1 when --help was printed (exit
** 0). a is released with cli_args_free in every case. */
int cli_parse(const cli_cmd *cmd, int argc, char **argv, cli_args *a);
void cli_args_free(cli_args *a);
void cli_print_help(const cli_cmd *cmd);
/* The option's value slot by name (the name must be in the table). */
const cli_val *cli_get(const cli_args *a, const char *name);
bool cli_has(const cli_args *a, const char *name);
const char *cli_str(const cli_args *a, const char *name, const char *def);

/* "kiln CMD: " + message on stderr; returns CLI_USAGE. */
int cli_usage_error(const cli_args *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* "kiln: what: <library message>" on stderr. */
void cli_lib_error(const char *cmd, const char *what);

/* ---------------------------------------------------------------- files */
typedef enum cli_file_kind {
    FILE_MISSING,       /* does not exist */
    FILE_DIR,
    FILE_ENGINE,        /* starts with the engine magic */
    FILE_TIMING_CACHE,  /* starts with "kiln-timing-cache " */
    FILE_NPY,
    FILE_EMPTY,
    FILE_OTHER,         /* anything else: read as ONNX where a model is due */
    FILE_UNREADABLE,
    FILE_CALIB_CACHE    /* starts with "kiln-calibration-cache " */
} cli_file_kind;

cli_file_kind cli_file_kind_of(const char *path);
const char *cli_file_kind_name(cli_file_kind k);
/* True when both paths name the same existing file (device and inode). */
bool cli_same_file(const char *a, const char *b);
/* Checks that an output file can be written at path without destroying
** anything: it must not be any of the inputs, must not be a folder, its
** folder must exist and be writable, and an existing file must be of the
** kind 'keep' (FILE_ENGINE, FILE_TIMING_CACHE...; FILE_MISSING: never
** overwrite). Prints the error and returns false when refused. */
bool cli_check_output(const cli_args *a, const char *opt, const char *path,
                      const char *const *inputs, int n_inputs, cli_file_kind keep);

/* ---------------------------------------------------------------- shapes */
typedef struct cli_shape {
    const char *name;     /* points into the spec copy */
    int rank;
    int64_t dims[KILN_MAX_RANK];
} cli_shape;

typedef struct cli_shapes {
    char *copy;
    int n;
    cli_shape *s;
} cli_shapes;

/* Parses "a:1x3x224x224,b:4" given to option opt. Refuses malformed
** entries, duplicate names, names not in the I/O list (inputs, n) and
** shapes whose byte size overflows. Prints the error naming opt; returns
** false. */
bool cli_parse_shapes(const cli_args *a, const char *opt, const char *spec,
                      const kiln_io_info *inputs, int n, cli_shapes *out);
const cli_shape *cli_find_shape(const cli_shapes *s, const char *name);
void cli_shapes_free(cli_shapes *s);

/* ---------------------------------------------------------------- misc */
double cli_now_ms(void);
int cli_physical_cores(void);
const char *cli_dims_str(int rank, const int64_t *dims, const char *const *names,
                         char *buf, size_t n);
/* Logger that prints "[kiln LEVEL] msg" to stderr. */
void cli_log_stderr(void *user, kiln_severity sev, const char *msg);

/* ---------------------------------------------------------------- runner
** Something that maps input tensors (graph-input order) to new output
** tensors: the reference interpreter or an engine context. */
typedef struct cli_runner {
    kiln_model *model;     /* reference mode (owned) */
    kiln_engine *engine;   /* engine mode (owned) */
    kiln_context *ctx;
} cli_runner;

int cli_runner_num_inputs(const cli_runner *r);
int cli_runner_num_outputs(const cli_runner *r);
void cli_runner_input(const cli_runner *r, int i, kiln_io_info *io);
void cli_runner_output(const cli_runner *r, int i, kiln_io_info *io);
kiln_status cli_runner_bind(cli_runner *r, kiln_tensor *const *ins);
kiln_status cli_runner_run(cli_runner *r, kiln_tensor *const *ins, kiln_tensor **outs);
void cli_runner_close(cli_runner *r);

/* The input options every running command shares (--input, --load-inputs,
** --shapes, --batch, --seed); the table entries are spliced into each
** command's table with CLI_INPUT_OPTS. */
#define CLI_INPUT_OPTS                                                          \
    {"--input", NULL, OPT_STR, "NAME=FILE", "an input from a .pb (TensorProto) "  \
     "or .npy file; repeatable", NULL, 0, 0, true, NULL},                        \
    {"--load-inputs", NULL, OPT_STR, "DIR", "inputs from a test_data_set folder " \
     "(input_K.pb in graph-input order)", NULL, 0, 0, false, NULL},              \
    {"--shapes", NULL, OPT_STR, "NAME:DIMS,...", "shapes of random inputs, "      \
     "e.g. input_ids:1x128", NULL, 0, 0, false, NULL},                           \
    {"--batch", NULL, OPT_INT, "N", "first dim of every input not in --shapes",   \
     NULL, 1, 1048576, false, NULL},                                             \
    {"--seed", NULL, OPT_INT, "N", "seed of the random inputs", "1", 0,           \
     9007199254740992.0, false, NULL}

/* Target options of commands that build engines (build, check, bench): the
** device, reduced precisions and the GPU switches. */
#define CLI_TARGET_OPTS                                                         \
    {"--device", NULL, OPT_CHOICE, "cpu|cuda", "device the engine is built for", \
     "cpu", 0, 0, false, "cpu|cuda"},                                            \
    {"--fp16", NULL, OPT_FLAG, NULL, "allow float16 layers where the backend has " \
     "kernels", "off", 0, 0, false, NULL},                                       \
    {"--bf16", NULL, OPT_FLAG, NULL, "allow bfloat16 layers where the backend has " \
     "kernels", "off", 0, 0, false, NULL},                                       \
    {"--tf32", NULL, OPT_FLAG, NULL, "GPU: FP32 matrix products may use TF32 "   \
     "tensor cores", "off", 0, 0, false, NULL},                                  \
    {"--strict-device", NULL, OPT_FLAG, NULL, "GPU: fail instead of running "    \
     "layers without a device kernel on the host", "off", 0, 0, false, NULL}
/* Applies the CLI_TARGET_OPTS a command was given (if it has them) to a
** builder config; commands without them build for the CPU in FP32. */
kiln_status cli_target_apply(const cli_args *a, kiln_builder_config *cfg);
/* Whether the command asked for a device backend (--device cuda). */
bool cli_target_is_device(const cli_args *a);
/* Loads --input and --load-inputs files into ins (graph-input order) and
** fills the rest with random data the model accepts (token ids within the
** embedding table, masks of ones); refuses shape-tensor inputs that were
** not given. hints may come from a model or an engine. Prints errors. */
typedef struct cli_input_src {
    const kiln_model *model;   /* one of these two is set */
    const kiln_engine *engine;
} cli_input_src;

/* Concrete shapes for every input (given[k] set: its shape): --shapes,
** then --batch for the first dim, then the engine profile's opt or the
** declared dims; symbolic dims left over become 1 (with a note naming
** them unless quiet). Returns CLI_OK or the exit code after an error. */
int cli_input_shapes(const cli_args *a, cli_input_src src, const cli_shapes *sh,
                     kiln_tensor *const *given, int64_t (*dims)[KILN_MAX_RANK],
                     int *ranks, bool quiet);
/* Reads the --input/--load-inputs files into given[] (graph-input order,
** NULL for the others), checking names, dtypes and fixed dims. */
int cli_load_given_inputs(const cli_args *a, cli_input_src src, kiln_tensor **given);
/* Fills every NULL slot of ins with random data at the shapes above,
** shaped by kiln_*_input_hint: token ids within their table, masks of
** ones; inputs that hold shapes are refused unless given. */
int cli_make_inputs(const cli_args *a, cli_input_src src, const cli_shapes *sh,
                    kiln_tensor **ins);
/* Reads a .npy file (little-endian numeric types, C order). */
kiln_status cli_load_npy(const char *path, kiln_tensor **out);

/* Builds m in memory for commands given a model: one profile fixed at the
** shapes the inputs will have (given files, --shapes, --batch, else 1 for
** symbolic dims), the command's --opt-level if it has one. *rc receives
** the exit code on failure. */
kiln_engine *cli_engine_for(const cli_args *a, const kiln_model *m, kiln_tensor *const *given,
                            const cli_shapes *sh, double *build_ms, int *rc);
int cli_runner_open_engine(cli_runner *r, kiln_engine *e, const char *cmd);

/* CLI_OK when path can be an ONNX model (exists, not a folder, not an
** engine or cache by its magic); else prints why and returns CLI_USAGE. */
int cli_check_model_arg(const cli_args *a, const char *path);

/* Target of run/bench/inspect: the positional MODEL-or-engine (told
** apart by magic) or --engine FILE. */
int cli_resolve_target(const cli_args *a, const char **path, bool *is_engine);
/* bench on a device engine (cli_bench_gpu.c); ctx is bound to ins. */
int cli_bench_device(cli_args *a, const char *path, kiln_engine *e, kiln_context *ctx,
                     kiln_tensor *const *ins, int ni);
/* Prints s as a JSON string literal. */
void cli_json_str(const char *s);

/* The commands themselves (const cli_cmd cli_cmd_NAME, one per
** tools/cli_*.c file) are registered by the X-list in kiln.c. */

#endif

/* kiln.c: the command-line tool, in the spirit of trtexec: entry point and
** subcommand table. Each subcommand lives in its own tools/cli_*.c file
** with its option table; only the public API in kiln.h is used. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

/* The subcommands, in --help order. To add one (serve, compare, ...):
** define `const cli_cmd cli_cmd_NAME` in its own tools/cli_NAME.c and add
** X(NAME) here; that one line declares and registers it. */
#define KILN_COMMANDS X(build) X(run) X(bench) X(check) X(inspect) X(version)

#define X(name) extern const cli_cmd cli_cmd_##name;
KILN_COMMANDS
#undef X

static const cli_cmd *const commands[] = {
#define X(name) &cli_cmd_##name,
    KILN_COMMANDS
#undef X
    NULL,
};

static void overview(FILE *f) {
    fprintf(f, "usage: kiln <command> [options]\n\ncommands:\n");
    for (int i = 0; commands[i]; i++)
        fprintf(f, "  %-8s %s\n", commands[i]->name, commands[i]->synopsis);
    fprintf(f, "  %-8s %s\n", "serve", "--model-repository DIR [--http-port N] "
            "[--metrics-port N] [--threads N] (KServe v2 / Triton HTTP server)");
    fprintf(f, "  %-8s %s\n", "compare", "MODEL.onnx [--engine E | --kiln-model M] [options] "
            "(Python package; onnxruntime vs Kiln, --bisect)");
    fprintf(f, "\n'kiln <command> --help' describes a command, its options and their "
               "defaults.\nFiles are recognized by their content (engines, timing caches, "
               ".npy),\nnot by their extension. Exit status: 0 success, 1 the work failed,\n"
               "2 the command line was refused.\n");
}

int kiln_cli_compare(int argc, char **argv); /* tools/kiln_compare.c */

int kiln_serve_main(int argc, char **argv); /* tools/kiln_serve.c */

int main(int argc, char **argv) {
    if (argc < 2) {
        overview(stderr);
        return CLI_USAGE;
    }
    /* serve lives in tools/kiln_serve.c with its HTTP library */
    if (!strcmp(argv[1], "serve")) return kiln_serve_main(argc - 2, argv + 2);
    /* compare forwards to the Python package (tools/kiln_compare.c) */
    if (!strcmp(argv[1], "compare")) return kiln_cli_compare(argc - 2, argv + 2);
    const char *name = argv[1];
    if (!strcmp(name, "--help") || !strcmp(name, "-h") || !strcmp(name, "help")) {
        if (argc > 2)
            for (int i = 0; commands[i]; i++)
                if (!strcmp(commands[i]->name, argv[2])) {
                    cli_print_help(commands[i]);
                    return CLI_OK;
                }
        overview(stdout);
        return CLI_OK;
    }
    if (!strcmp(name, "--version")) name = "version";
    for (int i = 0; commands[i]; i++) {
        if (strcmp(commands[i]->name, name)) continue;
        cli_args a;
        int rc = cli_parse(commands[i], argc - 2, argv + 2, &a);
        if (rc == CLI_OK) rc = commands[i]->run(&a);
        else if (rc < 0) rc = CLI_OK; /* --help */
        cli_args_free(&a);
        return rc;
    }
    fprintf(stderr, "kiln: unknown command '%s' (commands:", name);
    for (int i = 0; commands[i]; i++) fprintf(stderr, " %s", commands[i]->name);
    fprintf(stderr, "; see 'kiln --help')\n");
    return CLI_USAGE;
}

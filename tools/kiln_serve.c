/* kiln_serve.c: the `kiln serve` subcommand: options, then the server in
** tools/serve/ (built only when libmicrohttpd is present). */
#include "kiln.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef KILN_HAVE_SERVE
#include "serve/server.h"

static int serve_usage_to(FILE *f, int rc) {
    fprintf(f,
        "usage: kiln serve --model-repository DIR [--http-port 8000] [--metrics-port 8002]\n"
        "        [--host 127.0.0.1] [--threads N] [--repository-poll-secs N]\n"
        "        [--build-opt-level 0-5] [--max-request-mib 64] [--max-inflight-mib 1024]\n"
        "        [--idle-timeout-secs 10] [--drain-secs 30] [--compute-threads N]\n"
        "        [--access-log]\n"
        "  serve a Triton-layout model repository over the KServe v2 HTTP protocol;\n"
        "  --metrics-port 0 turns the Prometheus endpoint off\n");
    return rc;
}

static int serve_usage(void) { return serve_usage_to(stderr, 2); }

static int int_arg(const char *s, int lo, int hi, int *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi) return -1;
    *out = (int)v;
    return 0;
}

int kiln_serve_main(int argc, char **argv) {
    serve_options o = {0};
    o.host = "127.0.0.1";
    o.http_port = 8000;
    o.metrics_port = 8002;
    o.threads = 2;
    o.build_opt_level = 1;
    o.idle_timeout_secs = 10;
    o.drain_secs = 30;
    int req_mib = 64, inflight_mib = 1024, compute_threads = -1;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (!strcmp(a, "--access-log")) {
            o.access_log = 1;
            continue;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) return serve_usage_to(stdout, 0);
        if (strncmp(a, "--", 2) != 0) {
            fprintf(stderr, "kiln serve: unexpected argument '%s' (options start with --)\n", a);
            return serve_usage();
        }
        static const char *const known[] = {
            "--model-repository", "--host", "--http-port", "--metrics-port", "--threads",
            "--repository-poll-secs", "--build-opt-level", "--max-request-mib",
            "--max-inflight-mib", "--idle-timeout-secs", "--drain-secs", "--compute-threads"};
        bool is_known = false;
        for (size_t k = 0; k < sizeof known / sizeof *known; k++) is_known |= !strcmp(a, known[k]);
        if (!is_known) {
            fprintf(stderr, "kiln serve: unknown option '%s'\n", a);
            return serve_usage();
        }
        if (!v) {
            fprintf(stderr, "kiln serve: %s needs a value\n", a);
            return serve_usage();
        }
        if (!strcmp(a, "--model-repository")) o.repository = v;
        else if (!strcmp(a, "--host")) o.host = v;
        else if (!strcmp(a, "--http-port")) bad = int_arg(v, 0, 65535, &o.http_port);
        else if (!strcmp(a, "--metrics-port")) bad = int_arg(v, 0, 65535, &o.metrics_port);
        else if (!strcmp(a, "--threads")) bad = int_arg(v, 1, 256, &o.threads);
        else if (!strcmp(a, "--repository-poll-secs")) bad = int_arg(v, 0, 86400, &o.poll_secs);
        else if (!strcmp(a, "--build-opt-level")) bad = int_arg(v, 0, 5, &o.build_opt_level);
        else if (!strcmp(a, "--max-request-mib")) bad = int_arg(v, 1, 4096, &req_mib);
        else if (!strcmp(a, "--max-inflight-mib")) bad = int_arg(v, 1, 1 << 20, &inflight_mib);
        else if (!strcmp(a, "--idle-timeout-secs")) bad = int_arg(v, 1, 3600, &o.idle_timeout_secs);
        else if (!strcmp(a, "--drain-secs")) bad = int_arg(v, 0, 3600, &o.drain_secs);
        else if (!strcmp(a, "--compute-threads")) bad = int_arg(v, 0, 1024, &compute_threads);
        else return serve_usage();
        if (bad) {
            fprintf(stderr, "kiln serve: bad value '%s' for %s\n", v, a);
            return 2;
        }
        i++;
    }
    if (!o.repository) {
        fprintf(stderr, "kiln serve: --model-repository DIR is required\n");
        return serve_usage();
    }
    /* Threads per execution (the CPU backend's setting is process-wide). */
    if (compute_threads >= 0) kiln_set_num_threads(compute_threads);
    o.max_body_bytes = (size_t)req_mib << 20;
    o.max_inflight_bytes = (size_t)inflight_mib << 20;
    return serve_run(&o);
}
#else
int kiln_serve_main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "kiln serve: this kiln was built without libmicrohttpd "
                    "(install libmicrohttpd-dev and rebuild)\n");
    return 2;
}
#endif

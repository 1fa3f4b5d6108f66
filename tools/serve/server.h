/* server.h: `kiln serve`, the KServe v2 / Triton REST front end over the
** model repository (libmicrohttpd; not part of libkiln). */
#ifndef KILN_SERVE_SERVER_H
#define KILN_SERVE_SERVER_H

#include <stddef.h>

typedef struct serve_options {
    const char *repository;
    const char *host;             /* listen address (default 127.0.0.1... see kiln_serve.c) */
    int http_port, metrics_port;  /* metrics_port 0: no metrics listener */
    int threads;                  /* HTTP worker threads */
    int poll_secs;                /* repository polling; 0: off */
    int build_opt_level;
    size_t max_body_bytes;        /* largest request body */
    size_t max_inflight_bytes;    /* all bodies held at once */
    int idle_timeout_secs;        /* idle/slow connections are closed after this */
    int drain_secs;               /* SIGTERM: longest wait for in-flight requests */
    int access_log;
} serve_options;

/* Runs until SIGTERM/SIGINT; returns the process exit status. */
int serve_run(const serve_options *o);

#endif

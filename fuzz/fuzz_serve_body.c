/* fuzz_serve_body.c: drives the pure parsers of `kiln serve`
** (tools/serve/proto.c, config.c) and checks what they return: every input
** tensor lies inside the body or its own buffer with exactly shape x dtype
** bytes, names are NUL-terminated, a refusal leaves a message. */
#include "fuzz_serve_body.h"
#include "config.h"
#include "proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void die(const char *what) {
    fprintf(stderr, "kiln_fuzz_serve: invariant broken: %s\n", what);
    abort();
}

int kiln_fuzz_serve_one(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int mode = data[0] % 3;
    char err[1024];
    err[0] = 0;
    if (mode == 2) {
        /* An exact-size copy so reads past the end are caught. */
        char *text = malloc(size - 1 ? size - 1 : 1);
        if (!text) return 0;
        memcpy(text, data + 1, size - 1);
        serve_model_config *c = malloc(sizeof *c);
        int rc = c ? serve_config_parse(text, size - 1, c, err, sizeof err) : -1;
        if (c && rc && !err[0]) die("config refused without a message");
        if (c && !rc) {
            if (c->n_inputs < 0 || c->n_inputs > SERVE_CFG_MAX_IO) die("n_inputs");
            for (int i = 0; i < c->n_inputs; i++)
                if (c->inputs[i].rank > KILN_MAX_RANK || strlen(c->inputs[i].name) >= SERVE_NAME_MAX)
                    die("input cfg");
        }
        free(c);
        free(text);
        return rc == 0;
    }
    int64_t header_len = -1;
    size_t off = 1;
    if (mode == 1) {
        if (size < 3) return 0;
        header_len = data[1] | (int64_t)data[2] << 8;
        off = 3;
    }
    size_t len = size - off;
    char *body = malloc(len ? len : 1);
    if (!body) return 0;
    memcpy(body, data + off, len);
    serve_infer_req req;
    int rc = serve_parse_infer(body, len, header_len, &req, err, sizeof err);
    if (rc && !err[0]) die("request refused without a message");
    if (!rc) {
        unsigned sum = 0;
        for (int i = 0; i < req.n_in; i++) {
            const serve_in *in = &req.in[i];
            size_t numel = 1;
            for (int d = 0; d < in->rank; d++) numel *= (size_t)in->dims[d];
            if (numel * serve_dtype_size(in->dtype) != in->nbytes) die("nbytes != numel * size");
            const char *p = in->data;
            bool in_body = p >= body && p + in->nbytes <= body + len;
            if (!in_body && p != in->owned) die("input data outside the body");
            for (size_t k = 0; k < in->nbytes; k++) sum += (unsigned char)p[k];
            sum += (unsigned)strlen(in->name);
        }
        for (int i = 0; i < req.n_out; i++) sum += (unsigned)strlen(req.out[i].name);
        if (req.id) sum += (unsigned)strlen(req.id);
        (void)sum;
        serve_infer_req_free(&req);
    }
    free(body);
    return rc == 0;
}

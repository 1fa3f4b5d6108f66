/* proto.h: the KServe v2 / Triton inference request as bytes arrive over
** HTTP (JSON, optionally followed by the binary tensor extension's raw
** tensors), parsed by one pure function so a fuzz target can drive it. */
#ifndef KILN_SERVE_PROTO_H
#define KILN_SERVE_PROTO_H

#include "json.h"
#include "kiln.h"

#define SERVE_MAX_IO 64

typedef struct serve_in {
    const char *name;
    kiln_dtype dtype;
    int rank;
    int64_t dims[KILN_MAX_RANK];
    const void *data;     /* into the body (binary) or into owned (JSON) */
    size_t nbytes;
    void *owned;
} serve_in;

typedef struct serve_out_req {
    const char *name;
    bool binary;
} serve_out_req;

typedef struct serve_infer_req {
    jdoc *doc;            /* names and the id point into it */
    const char *id;       /* NULL when absent */
    int n_in, n_out;      /* n_out 0: every output */
    serve_in in[SERVE_MAX_IO];
    serve_out_req out[SERVE_MAX_IO];
    bool binary_output;   /* parameters.binary_data_output */
    int64_t timeout_us;   /* parameters.timeout (0: none) */
} serve_infer_req;

/* Parses an infer request body. header_len is the value of the
** Inference-Header-Content-Length header, or -1 when absent (then the
** whole body is JSON). Binary input data stays in body, which must outlive
** req. Returns 0, or 400 with a message in err (req then holds nothing). */
int serve_parse_infer(const char *body, size_t len, int64_t header_len, serve_infer_req *req,
                      char *err, size_t errlen);
void serve_infer_req_free(serve_infer_req *req);

/* Triton datatype names ("FP32", ...) and back; KILN_DTYPE_UNDEFINED /
** NULL when there is none. */
kiln_dtype serve_dtype_parse(const char *name);
const char *serve_dtype_name(kiln_dtype t);
size_t serve_dtype_size(kiln_dtype t);
/* IEEE half from float (round to nearest even) and back. */
uint16_t serve_f32_to_f16(float f);
float serve_f16_to_f32(uint16_t h);

#endif

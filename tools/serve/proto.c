/* proto.c: parsing of KServe v2 inference requests (JSON tensors and the
** binary tensor extension). Pure: no I/O, no globals; every size is checked
** before it is used, so hostile bodies end in a 400 and a message. */
#include "proto.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    kiln_dtype t;
    size_t size;
} k_types[] = {
    {"BOOL", KILN_DTYPE_BOOL, 1},     {"UINT8", KILN_DTYPE_UINT8, 1},
    {"UINT16", KILN_DTYPE_UINT16, 2}, {"UINT32", KILN_DTYPE_UINT32, 4},
    {"UINT64", KILN_DTYPE_UINT64, 8}, {"INT8", KILN_DTYPE_INT8, 1},
    {"INT16", KILN_DTYPE_INT16, 2},   {"INT32", KILN_DTYPE_INT32, 4},
    {"INT64", KILN_DTYPE_INT64, 8},   {"FP16", KILN_DTYPE_FLOAT16, 2},
    {"FP32", KILN_DTYPE_FLOAT32, 4},  {"FP64", KILN_DTYPE_FLOAT64, 8},
    {"BF16", KILN_DTYPE_BFLOAT16, 2},
};

kiln_dtype serve_dtype_parse(const char *name) {
    for (size_t i = 0; name && i < sizeof k_types / sizeof *k_types; i++)
        if (!strcmp(name, k_types[i].name)) return k_types[i].t;
    return KILN_DTYPE_UNDEFINED;
}

const char *serve_dtype_name(kiln_dtype t) {
    for (size_t i = 0; i < sizeof k_types / sizeof *k_types; i++)
        if (k_types[i].t == t) return k_types[i].name;
    return NULL;
}

size_t serve_dtype_size(kiln_dtype t) {
    for (size_t i = 0; i < sizeof k_types / sizeof *k_types; i++)
        if (k_types[i].t == t) return k_types[i].size;
    return 0;
}

uint16_t serve_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u, exp = (x >> 23) & 0xffu, man = x & 0x7fffffu;
    if (exp == 0xff) return (uint16_t)(sign | 0x7c00u | (man ? 0x200u : 0));
    int e = (int)exp - 127 + 15;
    if (e >= 0x1f) return (uint16_t)(sign | 0x7c00u);
    if (e <= 0) {
        if (e < -10) return (uint16_t)sign;
        man |= 0x800000u;
        int shift = 14 - e;
        uint32_t h = man >> shift, rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1))) h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = ((uint32_t)e << 10) | (man >> 13), rem = man & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++; /* may carry into inf: correct */
    return (uint16_t)(sign | h);
}

float serve_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, x;
    if (exp == 0) {
        if (!man) x = sign;
        else {
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400u));
            x = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ffu) << 13);
        }
    } else if (exp == 0x1f) {
        x = sign | 0x7f800000u | (man << 13);
    } else {
        x = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &x, 4);
    return f;
}

void serve_infer_req_free(serve_infer_req *req) {
    if (!req) return;
    /* All slots: a refusal can leave a buffer in the slot being filled. */
    for (int i = 0; i < SERVE_MAX_IO; i++) free(req->in[i].owned);
    json_free(req->doc);
    memset(req, 0, sizeof *req);
}

typedef struct flat {
    unsigned char *dst;
    size_t n, cap;   /* elements written / expected */
    kiln_dtype t;
    size_t es;
    const char *why;
} flat;

/* Writes one JSON scalar as element n of the tensor, checking its kind and
** range against the dtype. */
static bool put_scalar(flat *f, const jv *v) {
    if (f->n >= f->cap) {
        f->why = "more data elements than the shape holds";
        return false;
    }
    unsigned char *d = f->dst + f->n * f->es;
    f->n++;
    if (f->t == KILN_DTYPE_BOOL) {
        if (v->kind != JV_BOOL) return (f->why = "BOOL data must be true/false"), false;
        *d = v->b;
        return true;
    }
    if (v->kind != JV_NUM) return (f->why = "data elements must be numbers"), false;
    switch (f->t) {
    case KILN_DTYPE_FLOAT32: {
        float x = (float)v->num;
        memcpy(d, &x, 4);
        return true;
    }
    case KILN_DTYPE_FLOAT64: memcpy(d, &v->num, 8); return true;
    case KILN_DTYPE_FLOAT16: {
        uint16_t h = serve_f32_to_f16((float)v->num);
        memcpy(d, &h, 2);
        return true;
    }
    default: break;
    }
    if (!v->is_int) return (f->why = "integer data must be integers"), false;
    int64_t x = v->i;
    switch (f->t) {
#define INT_CASE(T, ctype, lo, hi)                                              \
    case T: {                                                                   \
        if (x < (int64_t)(lo) || (hi > 0 && (uint64_t)x > (uint64_t)(hi)))     \
            return (f->why = "integer out of the dtype's range"), false;        \
        ctype y = (ctype)x;                                                     \
        memcpy(d, &y, sizeof y);                                                \
        return true;                                                            \
    }
        INT_CASE(KILN_DTYPE_INT8, int8_t, INT8_MIN, INT8_MAX)
        INT_CASE(KILN_DTYPE_INT16, int16_t, INT16_MIN, INT16_MAX)
        INT_CASE(KILN_DTYPE_INT32, int32_t, INT32_MIN, INT32_MAX)
        INT_CASE(KILN_DTYPE_UINT8, uint8_t, 0, UINT8_MAX)
        INT_CASE(KILN_DTYPE_UINT16, uint16_t, 0, UINT16_MAX)
        INT_CASE(KILN_DTYPE_UINT32, uint32_t, 0, UINT32_MAX)
        INT_CASE(KILN_DTYPE_UINT64, uint64_t, 0, INT64_MAX)
#undef INT_CASE
    case KILN_DTYPE_INT64: memcpy(d, &x, 8); return true;
    default: break;
    }
    f->why = "this datatype cannot be sent as JSON";
    return false;
}

static bool flatten(flat *f, const jv *v) {
    if (v->kind == JV_ARR) {
        for (const jv *c = v->child; c; c = c->next)
            if (!flatten(f, c)) return false;
        return true;
    }
    return put_scalar(f, v);
}

#define BAD(...)                                  \
    do {                                          \
        snprintf(err, errlen, __VA_ARGS__);       \
        goto fail;                                \
    } while (0)

int serve_parse_infer(const char *body, size_t len, int64_t header_len, serve_infer_req *req,
                      char *err, size_t errlen) {
    memset(req, 0, sizeof *req);
    size_t jlen = len;
    if (header_len >= 0) {
        if ((uint64_t)header_len > len)
            BAD("Inference-Header-Content-Length %lld is larger than the body (%zu bytes)",
                (long long)header_len, len);
        jlen = (size_t)header_len;
    }
    char jerr[160];
    req->doc = json_parse(body, jlen, jerr, sizeof jerr);
    if (!req->doc) BAD("failed to parse the request JSON: %s", jerr);
    const jv *root = json_root(req->doc);
    if (root->kind != JV_OBJ) BAD("the request must be a JSON object");
    const jv *id = json_get(root, "id");
    if (id) {
        if (id->kind != JV_STR) BAD("'id' must be a string");
        req->id = id->s;
    }
    const jv *params = json_get(root, "parameters");
    if (params) {
        if (params->kind != JV_OBJ) BAD("'parameters' must be an object");
        const jv *bo = json_get(params, "binary_data_output");
        if (bo) {
            if (bo->kind != JV_BOOL) BAD("'binary_data_output' must be a boolean");
            req->binary_output = bo->b;
        }
        const jv *to = json_get(params, "timeout");
        if (to) {
            if (to->kind != JV_NUM || !to->is_int || to->i < 0)
                BAD("'timeout' must be a non-negative integer (microseconds)");
            req->timeout_us = to->i;
        }
    }
    const jv *inputs = json_get(root, "inputs");
    if (!inputs || inputs->kind != JV_ARR || !inputs->len)
        BAD("'inputs' must be a non-empty array");
    if (inputs->len > SERVE_MAX_IO) BAD("too many inputs (%zu)", inputs->len);
    size_t bin_off = jlen, bin_end = len;
    for (const jv *in = inputs->child; in; in = in->next) {
        serve_in *si = &req->in[req->n_in];
        if (in->kind != JV_OBJ) BAD("input %d must be an object", req->n_in);
        const jv *name = json_get(in, "name"), *shape = json_get(in, "shape"),
                 *dt = json_get(in, "datatype"), *data = json_get(in, "data"),
                 *ip = json_get(in, "parameters");
        if (!name || name->kind != JV_STR) BAD("input %d has no 'name' string", req->n_in);
        si->name = name->s;
        for (int k = 0; k < req->n_in; k++)
            if (!strcmp(req->in[k].name, si->name)) BAD("input '%s' is given twice", si->name);
        if (!dt || dt->kind != JV_STR) BAD("input '%s' has no 'datatype' string", si->name);
        if (!strcmp(dt->s, "BYTES")) BAD("input '%s': BYTES tensors are not supported", si->name);
        si->dtype = serve_dtype_parse(dt->s);
        if (!si->dtype) BAD("input '%s' has an unknown datatype '%s'", si->name, dt->s);
        if (!shape || shape->kind != JV_ARR) BAD("input '%s' has no 'shape' array", si->name);
        if (shape->len > KILN_MAX_RANK) BAD("input '%s' has rank %zu (at most %d)", si->name,
                                             shape->len, KILN_MAX_RANK);
        size_t numel = 1;
        for (const jv *d = shape->child; d; d = d->next) {
            if (d->kind != JV_NUM || !d->is_int || d->i < 0)
                BAD("input '%s' has a shape entry that is not a non-negative integer", si->name);
            if (__builtin_mul_overflow(numel, (uint64_t)d->i, &numel) || numel > ((size_t)1 << 40))
                BAD("input '%s' has an impossibly large shape", si->name);
            si->dims[si->rank++] = d->i;
        }
        size_t es = serve_dtype_size(si->dtype), nbytes;
        if (__builtin_mul_overflow(numel, es, &nbytes)) BAD("input '%s' is too large", si->name);
        const jv *bsz = NULL;
        if (ip) {
            if (ip->kind != JV_OBJ) BAD("input '%s': 'parameters' must be an object", si->name);
            bsz = json_get(ip, "binary_data_size");
        }
        if (bsz) {
            if (data) BAD("input '%s' has both 'data' and binary_data_size", si->name);
            if (header_len < 0)
                BAD("input '%s' has binary_data_size but the request has no "
                    "Inference-Header-Content-Length header", si->name);
            if (bsz->kind != JV_NUM || !bsz->is_int || bsz->i < 0)
                BAD("input '%s': binary_data_size must be a non-negative integer", si->name);
            if ((uint64_t)bsz->i > bin_end - bin_off)
                BAD("input '%s': binary_data_size %lld runs past the end of the body (%zu "
                    "bytes left)", si->name, (long long)bsz->i, bin_end - bin_off);
            if ((uint64_t)bsz->i != nbytes)
                BAD("input '%s': binary_data_size %lld does not match shape and datatype "
                    "(%zu bytes)", si->name, (long long)bsz->i, nbytes);
            si->data = body + bin_off;
            si->nbytes = nbytes;
            bin_off += nbytes;
        } else {
            if (!data) BAD("input '%s' has neither 'data' nor binary_data_size", si->name);
            if (si->dtype == KILN_DTYPE_BFLOAT16)
                BAD("input '%s': BF16 must be sent as binary data", si->name);
            /* Each element takes at least two bytes of JSON, which bounds
            ** the allocation by the body size. */
            if (numel > jlen / 2 + 1)
                BAD("input '%s': shape needs %zu elements, the JSON cannot hold them", si->name,
                    numel);
            si->owned = malloc(nbytes ? nbytes : 1);
            if (!si->owned) BAD("out of memory decoding input '%s'", si->name);
            flat f = {si->owned, 0, numel, si->dtype, es, NULL};
            if (!flatten(&f, data)) BAD("input '%s': %s", si->name, f.why);
            if (f.n != numel)
                BAD("input '%s': 'data' has %zu elements, the shape needs %zu", si->name, f.n,
                    numel);
            si->data = si->owned;
            si->nbytes = nbytes;
        }
        req->n_in++;
    }
    if (bin_off != bin_end)
        BAD("%zu bytes of binary data are not claimed by any input", bin_end - bin_off);
    const jv *outputs = json_get(root, "outputs");
    if (outputs) {
        if (outputs->kind != JV_ARR) BAD("'outputs' must be an array");
        if (outputs->len > SERVE_MAX_IO) BAD("too many outputs requested (%zu)", outputs->len);
        for (const jv *o = outputs->child; o; o = o->next) {
            serve_out_req *so = &req->out[req->n_out];
            const jv *name = json_get(o, "name"), *op = json_get(o, "parameters");
            if (o->kind != JV_OBJ || !name || name->kind != JV_STR)
                BAD("output %d has no 'name' string", req->n_out);
            so->name = name->s;
            so->binary = req->binary_output;
            if (op) {
                if (op->kind != JV_OBJ) BAD("output '%s': 'parameters' must be an object", so->name);
                const jv *bd = json_get(op, "binary_data"), *cc = json_get(op, "classification");
                if (bd) {
                    if (bd->kind != JV_BOOL) BAD("output '%s': binary_data must be a boolean", so->name);
                    so->binary = bd->b;
                }
                if (cc && !(cc->kind == JV_NUM && cc->is_int && cc->i == 0))
                    BAD("output '%s': the classification extension is not supported", so->name);
            }
            for (int k = 0; k < req->n_out; k++)
                if (!strcmp(req->out[k].name, so->name)) BAD("output '%s' is requested twice", so->name);
            req->n_out++;
        }
    }
    return 0;
fail:
    serve_infer_req_free(req);
    return 400;
}

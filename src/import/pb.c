/* pb.c: protobuf wire-format primitives. */
#include "pb.h"

int pb_varint(pb_reader *r, uint64_t *v) {
    uint64_t x = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (r->p >= r->end) return -1;
        uint8_t b = *r->p++;
        if (shift == 63 && b > 1) return -1;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -1;
}

int pb_next(pb_reader *r, uint32_t *field, int *wt) {
    if (r->p >= r->end) return 0;
    uint64_t key;
    if (pb_varint(r, &key)) return -1;
    uint64_t f = key >> 3;
    int w = (int)(key & 7);
    if (f == 0 || f > 0x1fffffff) return -1;
    if (w != PB_VARINT && w != PB_I64 && w != PB_LEN && w != PB_I32) return -1;
    *field = (uint32_t)f;
    *wt = w;
    return 1;
}

int pb_fixed32(pb_reader *r, uint32_t *v) {
    if (r->end - r->p < 4) return -1;
    *v = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 |
         (uint32_t)r->p[3] << 24;
    r->p += 4;
    return 0;
}

int pb_fixed64(pb_reader *r, uint64_t *v) {
    uint32_t lo, hi;
    if (pb_fixed32(r, &lo) || pb_fixed32(r, &hi)) return -1;
    *v = (uint64_t)hi << 32 | lo;
    return 0;
}

int pb_bytes(pb_reader *r, const uint8_t **p, size_t *n) {
    uint64_t len;
    if (pb_varint(r, &len)) return -1;
    if (len > (uint64_t)(r->end - r->p)) return -1;
    *p = r->p;
    *n = (size_t)len;
    r->p += len;
    return 0;
}

int pb_skip(pb_reader *r, int wt) {
    uint64_t v;
    const uint8_t *p;
    size_t n;
    switch (wt) {
    case PB_VARINT: return pb_varint(r, &v);
    case PB_I64: return pb_fixed64(r, &v);
    case PB_I32: {
        uint32_t u;
        return pb_fixed32(r, &u);
    }
    case PB_LEN: return pb_bytes(r, &p, &n);
    default: return -1;
    }
}

/* pb.h: a small, bounds-checked reader for the protobuf wire format. Every
** read checks the remaining length; nothing is allocated. */
#ifndef KILN_PB_H
#define KILN_PB_H

#include <stddef.h>
#include <stdint.h>

enum { PB_VARINT = 0, PB_I64 = 1, PB_LEN = 2, PB_I32 = 5 };

typedef struct pb_reader {
    const uint8_t *p, *end;
} pb_reader;

static inline pb_reader pb_init(const void *data, size_t n) {
    pb_reader r = {(const uint8_t *)data, (const uint8_t *)data + n};
    return r;
}

/* Next field key. Returns 1 with the field number and wire type set, 0 at the end, -1 on a
** malformed key (bad varint, field 0, group wire types). */
int pb_next(pb_reader *r, uint32_t *field, int *wt);
/* The readers return 0 on success, -1 on malformed input. */
int pb_varint(pb_reader *r, uint64_t *v);
int pb_fixed32(pb_reader *r, uint32_t *v);
int pb_fixed64(pb_reader *r, uint64_t *v);
int pb_bytes(pb_reader *r, const uint8_t **p, size_t *n); /* a PB_LEN body */
int pb_skip(pb_reader *r, int wt);

#endif

/* checksum.c: kiln_checksum64, the seal at the end of every engine file.
**
** Construction. The input is read as little-endian 64-bit words; the last
** partial word is zero-padded. Four lanes a,b,c,d take the words of each
** 32-byte block in turn (independent chains, so the CPU overlaps them:
** several GB/s), then the lane states, the leftover words, the padded tail
** and the byte count are absorbed one after another into a fifth state h,
** which a final avalanche step mixes. One absorption is
**     s' = rotl((s ^ w) * K, 31)        K odd
**
** Why any change confined to one 8-byte word (in particular any change of a
** single byte) is always detected, not just with high probability:
**  - For a fixed state s, w -> s' is a bijection of w: xor with s, product
**    by an odd constant modulo 2^64 and a rotation are each invertible. So
**    the changed word puts its lane (or h) into a different state.
**  - For a fixed word w, s -> s' is a bijection of s, for the same reasons.
**    Every later step of that chain absorbs unchanged words, so the
**    difference survives to the end of the chain; the other chains are
**    untouched.
**  - The merge absorbs lane states into h one at a time: exactly one
**    absorbed value differs, and by the two facts above h differs after it
**    and after every later absorption. The avalanche step (xorshifts and
**    odd products) is a bijection too.
** A different length is caught by the explicit length field in the file
** header and, here, by absorbing the byte count. Changes spread over
** several words are caught with the usual ~2^-64 odds of a 64-bit hash. */
#include "checksum.h"

#include <string.h>

#define CK_K 0x9E3779B97F4A7C15ull

static inline uint64_t ck_load(const unsigned char *p) {
    uint64_t w;
    memcpy(&w, p, 8); /* little-endian host (checked in common.h) */
    return w;
}

static inline uint64_t ck_absorb(uint64_t s, uint64_t w) {
    uint64_t x = (s ^ w) * CK_K;
    return (x << 31) | (x >> 33);
}

uint64_t kiln_checksum64(const void *data, size_t n) {
    const unsigned char *p = data;
    uint64_t a = 0x243F6A8885A308D3ull, b = 0x13198A2E03707344ull,
             c = 0xA4093822299F31D0ull, d = 0x082EFA98EC4E6C89ull;
    size_t i = 0;
    for (; n - i >= 32; i += 32) {
        a = ck_absorb(a, ck_load(p + i));
        b = ck_absorb(b, ck_load(p + i + 8));
        c = ck_absorb(c, ck_load(p + i + 16));
        d = ck_absorb(d, ck_load(p + i + 24));
    }
    uint64_t h = 0x452821E638D01377ull;
    h = ck_absorb(h, a);
    h = ck_absorb(h, b);
    h = ck_absorb(h, c);
    h = ck_absorb(h, d);
    for (; n - i >= 8; i += 8) h = ck_absorb(h, ck_load(p + i));
    if (i < n) {
        uint64_t w = 0;
        memcpy(&w, p + i, n - i);
        h = ck_absorb(h, w);
    }
    h = ck_absorb(h, (uint64_t)n);
    h ^= h >> 33;
    h *= 0xFF51AFD7ED558CCDull;
    h ^= h >> 33;
    h *= 0xC4CEB9FE1A85EC53ull;
    h ^= h >> 33;
    return h;
}

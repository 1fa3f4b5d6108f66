/* test_image.c: the hand-written parts of ImageDecoder (util/image.c) on
** inputs built here byte by byte, with the pixels worked out by hand: BMP
** (4-bit and 1-bit palettes at odd widths, a palette index past the
** palette, 32-bit bit fields with an alpha mask, the core header), PNM
** (comments between tokens, P1 digits without spaces, 16-bit samples, a
** maxval rounding half to even), the pixel limit at its exact boundary,
** the gray/BGR conversions, and refusals with their messages. Pillow-backed
** comparisons over real encodings are in tests/engine/test_image_decoder.py. */
#include "../../src/util/image.h"
#include "test_util.h"

typedef struct buf {
    uint8_t d[4096];
    size_t n;
} buf;

static void put(buf *b, const void *p, size_t k) {
    if (!k) return;
    memcpy(b->d + b->n, p, k);
    b->n += k;
}
static void u16(buf *b, unsigned v) {
    uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    put(b, x, 2);
}
static void u32(buf *b, uint32_t v) {
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(b, x, 4);
}

/* A BITMAPINFOHEADER BMP; pal has ncolors BGRX entries; extra (masks) goes
** between header and palette. rows are given bottom-up, already padded. */
static void bmp(buf *b, int32_t w, int32_t h, unsigned bpp, unsigned comp, const uint8_t *extra,
                size_t nextra, const uint8_t *pal, unsigned ncolors, const uint8_t *rows,
                size_t nrows) {
    b->n = 0;
    uint32_t off = 14 + 40 + (uint32_t)nextra + ncolors * 4;
    put(b, "BM", 2);
    u32(b, off + (uint32_t)nrows);
    u32(b, 0);
    u32(b, off);
    u32(b, 40);
    u32(b, (uint32_t)w);
    u32(b, (uint32_t)h);
    u16(b, 1);
    u16(b, bpp);
    u32(b, comp);
    u32(b, (uint32_t)nrows);
    u32(b, 2835);
    u32(b, 2835);
    u32(b, ncolors);
    u32(b, 0);
    put(b, extra, nextra);
    put(b, pal, ncolors * 4);
    put(b, rows, nrows);
}

static int decode(const buf *b, img_pixel_format f, int64_t limit, uint8_t **px, int64_t *h,
                  int64_t *w, char *err) {
    return img_decode(b->d, b->n, f, limit, px, h, w, err, 256);
}

static void test_bmp_4bit(void) {
    /* 3 x 2, 4-bit: palette 0 red, 1 green, 2 blue; index 7 is past the
    ** three-color palette and reads black. Rows of 4 bytes. */
    const uint8_t pal[] = {0, 0, 255, 0, 0, 255, 0, 0, 255, 0, 0, 0};
    const uint8_t rows[] = {0x01, 0x20, 0, 0,   /* bottom: 0 1 2 */
                            0x27, 0x10, 0, 0};  /* top:    2 7 1 */
    buf b;
    bmp(&b, 3, 2, 4, 0, NULL, 0, pal, 3, rows, sizeof rows);
    uint8_t *px;
    int64_t h, w;
    char err[256];
    CHECK(decode(&b, IMG_RGB, 0, &px, &h, &w, err) == 0, "4-bit BMP: %s", err);
    if (!px) return;
    const uint8_t want[] = {0, 0, 255, 0, 0, 0, 0, 255, 0,
                            255, 0, 0, 0, 255, 0, 0, 0, 255};
    CHECK(h == 2 && w == 3 && !memcmp(px, want, sizeof want), "4-bit BMP pixels");
    free(px);
    /* the same as BGR and as luma */
    CHECK(decode(&b, IMG_BGR, 0, &px, &h, &w, err) == 0 && px[0] == 255 && px[2] == 0,
          "4-bit BMP as BGR");
    free(px);
    CHECK(decode(&b, IMG_GRAY, 0, &px, &h, &w, err) == 0, "gray: %s", err);
    if (!px) return;
    /* (19595 * 0 + 38470 * 0 + 7471 * 255 + 32768) >> 16 = 29 for blue */
    CHECK(px[0] == 29 && px[1] == 0 && px[2] == 150 && px[3] == 76, "luma %d %d %d %d",
          px[0], px[1], px[2], px[3]);
    free(px);
}

static void test_bmp_1bit_odd(void) {
    /* 9 x 1, 1-bit: bits 1 0 1 1 0 0 0 1 | 1, palette black / white */
    const uint8_t pal[] = {0, 0, 0, 0, 255, 255, 255, 0};
    const uint8_t rows[] = {0xb1, 0x80, 0, 0};
    buf b;
    bmp(&b, 9, 1, 1, 0, NULL, 0, pal, 2, rows, sizeof rows);
    uint8_t *px;
    int64_t h, w;
    char err[256];
    CHECK(decode(&b, IMG_GRAY, 0, &px, &h, &w, err) == 0, "1-bit BMP: %s", err);
    if (!px) return;
    const uint8_t want[] = {255, 0, 255, 255, 0, 0, 0, 255, 255};
    CHECK(w == 9 && !memcmp(px, want, 9), "1-bit BMP pixels");
    free(px);
}

static void test_bmp_bitfields_alpha(void) {
    /* 2 x 1, 32-bit BITFIELDS with masks R 0xff00, G 0xff0000, B 0xff000000
    ** (an unusual order) and the low byte unused */
    uint8_t masks[12];
    buf mb = {{0}, 0};
    u32(&mb, 0x0000ff00u);
    u32(&mb, 0x00ff0000u);
    u32(&mb, 0xff000000u);
    memcpy(masks, mb.d, 12);
    const uint8_t rows[] = {0x11, 10, 20, 30, 0x22, 40, 50, 60};
    buf b;
    bmp(&b, 2, -1, 32, 3, masks, 12, NULL, 0, rows, sizeof rows);
    uint8_t *px;
    int64_t h, w;
    char err[256];
    CHECK(decode(&b, IMG_RGB, 0, &px, &h, &w, err) == 0, "bitfield BMP: %s", err);
    if (!px) return;
    const uint8_t want[] = {10, 20, 30, 40, 50, 60};
    CHECK(!memcmp(px, want, 6), "bitfield BMP pixels %d %d %d", px[0], px[1], px[2]);
    free(px);
}

static void test_bmp_refusals(void) {
    const uint8_t pal[] = {0, 0, 0, 0, 255, 255, 255, 0};
    const uint8_t rows[] = {0, 0, 0, 0, 0, 0, 0, 0};
    buf b;
    uint8_t *px;
    int64_t h, w;
    char err[256];
    bmp(&b, 1, 3, 8, 0, NULL, 0, pal, 2, rows, sizeof rows); /* 3 rows of 4, 8 given */
    CHECK(decode(&b, IMG_RGB, 0, &px, &h, &w, err) && strstr(err, "truncated") && !px,
          "short BMP: %s", err);
    bmp(&b, 1, 1, 8, 1, NULL, 0, pal, 2, rows, 4);
    CHECK(decode(&b, IMG_RGB, 0, &px, &h, &w, err) && strstr(err, "run-length"),
          "RLE BMP: %s", err);
    bmp(&b, 70000, 70000, 24, 0, NULL, 0, NULL, 0, rows, 8);
    CHECK(decode(&b, IMG_RGB, 0, &px, &h, &w, err) && strstr(err, "limit"), "BMP bomb: %s",
          err);
    bmp(&b, 0, 5, 24, 0, NULL, 0, NULL, 0, rows, 8);
    CHECK(decode(&b, IMG_RGB, 0, &px, &h, &w, err) && strstr(err, "empty"), "0-wide BMP: %s",
          err);
}

static void pnm(buf *b, const char *s, const uint8_t *raw, size_t nraw) {
    b->n = 0;
    put(b, s, strlen(s));
    put(b, raw, nraw);
}

static void test_pnm(void) {
    buf b;
    uint8_t *px;
    int64_t h, w;
    char err[256];
    /* comments anywhere between tokens; P1 digits may touch */
    pnm(&b, "P1\n# c1\n3 # c2\n2\n010\n1 1 0", NULL, 0);
    CHECK(decode(&b, IMG_GRAY, 0, &px, &h, &w, err) == 0, "P1: %s", err);
    if (px) {
        const uint8_t want[] = {255, 0, 255, 0, 0, 255};
        CHECK(h == 2 && w == 3 && !memcmp(px, want, 6), "P1 pixels");
        free(px);
    }
    /* 16-bit P6: samples scaled to 8 bits (v * 255 / 1000, half to even) */
    const uint8_t raw[] = {0x03, 0xe8, 0x00, 0x00, 0x01, 0xf4}; /* 1000, 0, 500 */
    pnm(&b, "P6 1 1 1000\n", raw, sizeof raw);
    CHECK(decode(&b, IMG_RGB, 0, &px, &h, &w, err) == 0, "P6/16: %s", err);
    if (px) {
        /* 500 * 255 / 1000 = 127.5 -> 128 (even) */
        CHECK(px[0] == 255 && px[1] == 0 && px[2] == 128, "P6/16 pixels %d %d %d", px[0],
              px[1], px[2]);
        free(px);
    }
    /* maxval 10: 3 * 255 / 10 = 76.5 -> 76 (even), 1 -> 25.5 -> 26 */
    pnm(&b, "P2 2 1 10 3 1", NULL, 0);
    CHECK(decode(&b, IMG_GRAY, 0, &px, &h, &w, err) == 0, "P2: %s", err);
    if (px) {
        CHECK(px[0] == 76 && px[1] == 26, "P2 rounding %d %d", px[0], px[1]);
        free(px);
    }
    pnm(&b, "P5 4 4 255\n", raw, 6);
    CHECK(decode(&b, IMG_GRAY, 0, &px, &h, &w, err) && strstr(err, "truncated"), "P5 short: %s",
          err);
    pnm(&b, "P3 2 1 255 1 2 3 4 5", NULL, 0);
    CHECK(decode(&b, IMG_GRAY, 0, &px, &h, &w, err) && strstr(err, "sample 5 of 6"),
          "P3 short: %s", err);
    pnm(&b, "P5 2 1 70000\n", raw, 4);
    CHECK(decode(&b, IMG_GRAY, 0, &px, &h, &w, err) && strstr(err, "maxval"), "maxval: %s", err);
}

static void test_limit_boundary(void) {
    buf b;
    uint8_t raw[12] = {0};
    uint8_t *px;
    int64_t h, w;
    char err[256];
    pnm(&b, "P5 4 3 255\n", raw, 12);
    CHECK(decode(&b, IMG_GRAY, 12, &px, &h, &w, err) == 0, "12 pixels at limit 12: %s", err);
    free(px);
    CHECK(decode(&b, IMG_GRAY, 11, &px, &h, &w, err) && strstr(err, "limit") && !px,
          "12 pixels at limit 11: %s", err);
}

static void test_unknown(void) {
    buf b;
    uint8_t *px;
    int64_t h, w;
    char err[256];
    pnm(&b, "GIF89a....", NULL, 0);
    CHECK(decode(&b, IMG_RGB, 0, &px, &h, &w, err) && strstr(err, "no image format"),
          "GIF: %s", err);
    CHECK(img_decode(NULL, 0, IMG_RGB, 0, &px, &h, &w, err, sizeof err) && strstr(err, "empty"),
          "empty: %s", err);
    /* a JPEG/PNG/TIFF/WebP/JPEG 2000 signature with nothing behind it goes
    ** to its library (or says which package is missing) and is refused */
    static const char *const sig[] = {"\xff\xd8\xff\xe0", "\x89PNG\r\n\x1a\n", "II*\0",
                                      "RIFF\0\0\0\0WEBP", "\xff\x4f\xff\x51"};
    static const size_t len[] = {4, 8, 4, 12, 4};
    for (int i = 0; i < 5; i++) {
        b.n = 0;
        put(&b, sig[i], len[i]);
        err[0] = 0;
        CHECK(decode(&b, IMG_RGB, 0, &px, &h, &w, err) && err[0] && !px, "signature %d: %s", i,
              err);
    }
}

int main(void) {
    test_bmp_4bit();
    test_bmp_1bit_odd();
    test_bmp_bitfields_alpha();
    test_bmp_refusals();
    test_pnm();
    test_limit_boundary();
    test_unknown();
    return test_summary();
}

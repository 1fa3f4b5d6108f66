/* image.h: decoding of encoded images (JPEG, PNG, BMP, PNM, TIFF, WebP,
** JPEG 2000) into 8-bit interleaved pixels, for the ImageDecoder operator.
** The bytes come from outside (a tensor a user feeds), so every decoder
** checks sizes and truncation and refuses images above a pixel limit
** before it allocates for them. BMP and PNM are parsed here; the others
** go through the system's libraries (image_codecs.c), opened with dlopen at
** first use so libkiln gains no hard dependency: a missing library is an
** error naming the Debian package that provides it. */
#ifndef KILN_IMAGE_H
#define KILN_IMAGE_H

#include "common.h"

typedef enum img_pixel_format {
    IMG_RGB = 0, /* H x W x 3, R G B */
    IMG_BGR,     /* H x W x 3, B G R */
    IMG_GRAY,    /* H x W x 1, luma as Pillow's convert("L") computes it */
} img_pixel_format;

/* Pixel limit used when the caller passes 0: Pillow's own refusal bound
** (twice its MAX_IMAGE_PIXELS warning bound). KILN_IMAGE_MAX_PIXELS in the
** environment overrides it for ImageDecoder. */
#define IMG_DEFAULT_MAX_PIXELS ((int64_t)178956970)

/* Decodes data[0..size) into *pixels (malloc'ed, h*w*channels bytes, rows
** top to bottom; free() it), channels 3 for RGB/BGR and 1 for GRAY. A zero
** max_pixels means IMG_DEFAULT_MAX_PIXELS. Returns 0, or -1 with a message in
** err (never NULL; *pixels left NULL). Thread-safe. */
int img_decode(const uint8_t *data, size_t size, img_pixel_format fmt,
               int64_t max_pixels, uint8_t **pixels, int64_t *h, int64_t *w,
               char *err, size_t err_len);

/* ---- between image.c and image_codecs.c */

/* An image as a decoder produces it: 8 bits per sample, ch interleaved
** channels: 1 L, 2 LA, 3 RGB, 4 RGBA. */
typedef struct img_raw {
    uint8_t *pix; /* malloc'ed */
    int64_t h, w;
    int ch;
} img_raw;

typedef struct img_src {
    const uint8_t *data;
    size_t size;
    int64_t max_pixels; /* > 0 */
    char *err;
    size_t err_len;
} img_src;

int img_fail(const img_src *s, const char *fmt, ...) KILN_PRINTF(2, 3);
/* 0 when w x h is a positive size within the limit, else -1 via img_fail. */
int img_check_size(const img_src *s, const char *fmt_name, int64_t w, int64_t h);

int img_decode_jpeg(const img_src *s, img_raw *out);
int img_decode_png(const img_src *s, img_raw *out);
int img_decode_tiff(const img_src *s, img_raw *out);
int img_decode_webp(const img_src *s, img_raw *out);
int img_decode_jp2(const img_src *s, img_raw *out, bool codestream);

#endif

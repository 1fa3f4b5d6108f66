/* fuzz_image_body.c: one input through img_decode (util/image.c and the
** dlopened codecs behind it) with a pixel limit of 2^20, so a header that
** declares a huge image is refused before anything is allocated for it.
** A decoded image must have a sane size, and every byte of it is read (so
** ASan sees a short buffer); a refusal must leave a message. */
#include "fuzz_image_body.h"

#include "util/image.h"

#include <stdio.h>
#include <stdlib.h>

#define FUZZ_IMAGE_MAX_PIXELS ((int64_t)1 << 20)

static volatile unsigned g_sink; /* keeps the read loop */

int kiln_fuzz_image_one(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    img_pixel_format fmt = (img_pixel_format)(data[0] % 3);
    uint8_t *pix = NULL;
    int64_t h = -1, w = -1;
    char err[384];
    if (img_decode(data + 1, size - 1, fmt, FUZZ_IMAGE_MAX_PIXELS, &pix, &h, &w, err,
                   sizeof err)) {
        if (!err[0] || pix) {
            fprintf(stderr, "fuzz_image: refusal without a message or with pixels\n");
            abort();
        }
        return 0;
    }
    if (!pix || h < 1 || w < 1 || h * w > FUZZ_IMAGE_MAX_PIXELS) {
        fprintf(stderr, "fuzz_image: decoded %lld x %lld\n", (long long)h, (long long)w);
        abort();
    }
    size_t n = (size_t)(h * w) * (fmt == IMG_GRAY ? 1 : 3);
    unsigned acc = 0;
    for (size_t i = 0; i < n; i++) acc += pix[i];
    free(pix);
    g_sink = acc;
    return 1;
}

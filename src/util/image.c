/* image.c: ImageDecoder's front end: format sniffing by magic bytes, the
** hand-written BMP and PNM readers, the pixel limit, and the conversion of
** a decoded image to RGB, BGR or grayscale as Pillow does it (the ONNX
** reference implementation decodes with Pillow): alpha dropped, gray
** replicated, luma L = (19595 R + 38470 G + 7471 B + 2^15) >> 16. The
** library-backed formats are in image_codecs.c. */
#include "image.h"

#include <stdio.h>

int img_fail(const img_src *s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err, s->err_len, fmt, ap);
    va_end(ap);
    return -1;
}

int img_check_size(const img_src *s, const char *fmt_name, int64_t w, int64_t h) {
    if (w <= 0 || h <= 0)
        return img_fail(s, "%s image has an empty or negative size %lld x %lld",
                        fmt_name, (long long)w, (long long)h);
    /* w, h < 2^31 wherever they come from, so the product fits */
    if (w > INT32_MAX || h > INT32_MAX || w * h > s->max_pixels)
        return img_fail(s, "%s image of %lld x %lld pixels is above the limit "
                           "of %lld pixels (a decompression bomb?; "
                           "KILN_IMAGE_MAX_PIXELS raises it)",
                        fmt_name, (long long)w, (long long)h,
                        (long long)s->max_pixels);
    return 0;
}

static int raw_alloc(const img_src *s, img_raw *r, int64_t w, int64_t h, int ch) {
    r->pix = malloc((size_t)w * (size_t)h * (size_t)ch);
    if (!r->pix) return img_fail(s, "out of memory for a %lld x %lld image",
                                 (long long)w, (long long)h);
    r->w = w;
    r->h = h;
    r->ch = ch;
    return 0;
}

static uint32_t rd16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

/* ---------------------------------------------------------------- BMP */

/* One channel of a bitfield pixel scaled to 8 bits, as Pillow's unpackers
** do: v * 255 / max, truncated. */
typedef struct bmp_field {
    uint32_t mask;
    int shift;
    uint32_t max;
} bmp_field;

static void field_init(bmp_field *f, uint32_t mask) {
    f->mask = mask;
    f->shift = 0;
    f->max = 0;
    if (!mask) return;
    while (!((mask >> f->shift) & 1)) f->shift++;
    f->max = mask >> f->shift;
}

static uint8_t field_get(const bmp_field *f, uint32_t px) {
    if (!f->max) return 0;
    uint64_t v = (px & f->mask) >> f->shift;
    return (uint8_t)(v * 255 / f->max);
}

static int decode_bmp(const img_src *s, img_raw *out) {
    const uint8_t *d = s->data;
    size_t n = s->size;
    if (n < 26) return img_fail(s, "BMP file is truncated (%zu bytes)", n);
    uint32_t off = rd32(d + 10), hs = rd32(d + 14);
    int64_t w, h;
    uint32_t bpp, comp = 0, nclr = 0;
    size_t pal_entry = 4;
    if (hs == 12) {
        w = rd16(d + 18);
        h = (int16_t)rd16(d + 20);
        bpp = rd16(d + 24);
        pal_entry = 3;
    } else if (hs >= 40 && hs <= 124) {
        if (n < 14 + (size_t)hs) return img_fail(s, "BMP header is truncated");
        w = (int32_t)rd32(d + 18);
        h = (int32_t)rd32(d + 22);
        bpp = rd16(d + 28);
        comp = rd32(d + 30);
        nclr = rd32(d + 46);
    } else {
        return img_fail(s, "BMP header size %u is not one Kiln reads", (unsigned)hs);
    }
    bool top_down = h < 0;
    if (top_down) h = -h;
    if (img_check_size(s, "BMP", w, h)) return -1;
    /* masks: in the header (size >= 52) or right after a 40-byte one */
    uint32_t mask[4] = {0, 0, 0, 0};
    size_t pal_at = 14 + (size_t)hs;
    if (comp == 3 || comp == 6) {
        int nm = comp == 6 ? 4 : 3;
        size_t at = 14 + 40;
        if (hs == 40) pal_at += (size_t)nm * 4;
        if (n < at + (size_t)nm * 4) return img_fail(s, "BMP bit masks are truncated");
        for (int i = 0; i < nm; i++) mask[i] = rd32(d + at + 4 * (size_t)i);
        if (hs >= 56 && comp == 3) mask[3] = rd32(d + at + 12);
        if (bpp != 16 && bpp != 32)
            return img_fail(s, "BMP bit fields with %u bits per pixel", (unsigned)bpp);
    } else if (comp == 1 || comp == 2) {
        return img_fail(s, "run-length compressed BMP is not supported");
    } else if (comp != 0) {
        return img_fail(s, "BMP compression %u is not supported (embedded JPEG/PNG?)",
                        (unsigned)comp);
    } else if (bpp == 16) {
        mask[0] = 0x7c00;
        mask[1] = 0x03e0;
        mask[2] = 0x001f;
    } else if (bpp == 32) {
        mask[0] = 0xff0000;
        mask[1] = 0xff00;
        mask[2] = 0xff;
    }
    if (bpp != 1 && bpp != 4 && bpp != 8 && bpp != 16 && bpp != 24 && bpp != 32)
        return img_fail(s, "BMP with %u bits per pixel is not supported", (unsigned)bpp);
    uint8_t pal[256][3];
    memset(pal, 0, sizeof pal);
    if (bpp <= 8) {
        uint32_t maxc = 1u << bpp;
        if (nclr == 0 || nclr > maxc) nclr = maxc;
        if (pal_at > n || (n - pal_at) / pal_entry < nclr)
            return img_fail(s, "BMP palette is truncated");
        for (uint32_t i = 0; i < nclr; i++) { /* stored B G R (X) */
            const uint8_t *p = d + pal_at + i * pal_entry;
            pal[i][0] = p[2];
            pal[i][1] = p[1];
            pal[i][2] = p[0];
        }
    }
    size_t stride = (((size_t)w * bpp + 31) / 32) * 4;
    if (off > n || (n - off) / stride < (size_t)h)
        return img_fail(s, "BMP pixel data is truncated (%zu bytes for %lld rows "
                           "of %zu)", off > n ? 0 : n - off, (long long)h, stride);
    bmp_field f[4];
    for (int i = 0; i < 4; i++) field_init(&f[i], mask[i]);
    if (raw_alloc(s, out, w, h, 3)) return -1;
    for (int64_t y = 0; y < h; y++) {
        const uint8_t *row = d + off + stride * (size_t)(top_down ? y : h - 1 - y);
        uint8_t *o = out->pix + (size_t)y * (size_t)w * 3;
        for (int64_t x = 0; x < w; x++, o += 3) {
            if (bpp <= 8) {
                size_t bit = (size_t)x * bpp;
                unsigned idx = (row[bit / 8] >> (8 - bpp - bit % 8)) & ((1u << bpp) - 1);
                memcpy(o, pal[idx], 3);
            } else if (bpp == 24) {
                const uint8_t *p = row + (size_t)x * 3;
                o[0] = p[2];
                o[1] = p[1];
                o[2] = p[0];
            } else {
                uint32_t px = bpp == 16 ? rd16(row + (size_t)x * 2) : rd32(row + (size_t)x * 4);
                for (int c = 0; c < 3; c++) o[c] = field_get(&f[c], px);
            }
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- PNM */

typedef struct pnm_rd {
    const uint8_t *d;
    size_t n, i;
} pnm_rd;

static bool pnm_space(uint8_t ch) {
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f';
}

/* Skips whitespace and comments; reads an unsigned decimal (at most
** max_digits digits when > 0, for P1's packed bits). -1 at end or junk. */
static int64_t pnm_uint(pnm_rd *r, int max_digits) {
    for (;;) {
        while (r->i < r->n && pnm_space(r->d[r->i])) r->i++;
        if (r->i < r->n && r->d[r->i] == '#') {
            while (r->i < r->n && r->d[r->i] != '\n' && r->d[r->i] != '\r') r->i++;
            continue;
        }
        break;
    }
    int64_t v = 0;
    int k = 0;
    while (r->i < r->n && r->d[r->i] >= '0' && r->d[r->i] <= '9') {
        if (v > (INT64_C(1) << 40)) return -1;
        v = v * 10 + (r->d[r->i++] - '0');
        if (++k == max_digits) break;
    }
    return k ? v : -1;
}

/* v * top / maxval rounded half to even, as Pillow's PPM decoder rounds. */
static int64_t pnm_scale_to(int64_t v, int64_t maxval, int64_t top) {
    if (v >= maxval) return top;
    int64_t q = v * top / maxval, r2 = 2 * (v * top % maxval);
    if (r2 > maxval || (r2 == maxval && (q & 1))) q++;
    return q;
}

/* One sample as Pillow reads it: color samples scaled to 8 bits; gray ones
** with maxval above 255 become a 32-bit "I" image scaled to 16 bits, which
** Pillow's convert("L") then clips at 255 (the ONNX reference decodes with
** Pillow, so a 16-bit PGM comes out nearly white; kept for parity). */
static uint8_t pnm_scale(int64_t v, int64_t maxval, bool gray) {
    if (gray && maxval > 255) return (uint8_t)KILN_MIN(pnm_scale_to(v, maxval, 65535), 255);
    return (uint8_t)pnm_scale_to(v, maxval, 255);
}

static int decode_pnm(const img_src *s, img_raw *out) {
    pnm_rd r = {s->data, s->size, 2};
    int kind = s->data[1] - '0';
    int64_t w = pnm_uint(&r, 0), h = pnm_uint(&r, 0), maxval = 1;
    if (w < 0 || h < 0) return img_fail(s, "PNM header is truncated or malformed");
    bool bitmap = kind == 1 || kind == 4;
    if (!bitmap) {
        maxval = pnm_uint(&r, 0);
        if (maxval < 1 || maxval > 65535)
            return img_fail(s, "PNM maxval %lld is outside 1..65535", (long long)maxval);
    }
    if (img_check_size(s, "PNM", w, h)) return -1;
    int ch = (kind == 3 || kind == 6) ? 3 : 1;
    size_t count = (size_t)w * (size_t)h * (size_t)ch;
    bool binary = kind >= 4;
    if (binary) {
        if (r.i >= r.n || !pnm_space(r.d[r.i]))
            return img_fail(s, "PNM header does not end in whitespace");
        r.i++;
        size_t need = kind == 4 ? ((size_t)w + 7) / 8 * (size_t)h
                                : count * (maxval > 255 ? 2 : 1);
        if (r.n - r.i < need)
            return img_fail(s, "PNM pixel data is truncated (%zu bytes, %zu needed)",
                            r.n - r.i, need);
    }
    if (raw_alloc(s, out, w, h, ch)) return -1;
    uint8_t *o = out->pix;
    if (kind == 4) {
        size_t rowb = ((size_t)w + 7) / 8;
        for (int64_t y = 0; y < h; y++)
            for (int64_t x = 0; x < w; x++) {
                uint8_t b = r.d[r.i + (size_t)y * rowb + (size_t)x / 8];
                *o++ = (b >> (7 - x % 8)) & 1 ? 0 : 255; /* 1 is black */
            }
        return 0;
    }
    for (size_t k = 0; k < count; k++) {
        int64_t v;
        if (binary) {
            if (maxval > 255) {
                v = (int64_t)r.d[r.i] << 8 | r.d[r.i + 1];
                r.i += 2;
            } else {
                v = r.d[r.i++];
            }
        } else {
            v = pnm_uint(&r, kind == 1 ? 1 : 0);
            if (v < 0) {
                free(out->pix);
                out->pix = NULL;
                return img_fail(s, "PNM pixel data is truncated or malformed "
                                   "(sample %zu of %zu)", k, count);
            }
        }
        if (kind == 1) *o++ = v ? 0 : 255;
        else *o++ = maxval == 255 ? (uint8_t)KILN_MIN(v, 255) : pnm_scale(v, maxval, ch == 1);
    }
    return 0;
}

/* ---------------------------------------------------------------- front */

static bool starts(const img_src *s, const void *magic, size_t k) {
    return s->size >= k && !memcmp(s->data, magic, k);
}

static int decode_any(const img_src *s, img_raw *raw) {
    static const uint8_t jp2[] = {0, 0, 0, 0x0c, 'j', 'P', ' ', ' ', 0x0d, 0x0a, 0x87, 0x0a};
    static const uint8_t j2k[] = {0xff, 0x4f, 0xff, 0x51};
    if (starts(s, "\xff\xd8\xff", 3)) return img_decode_jpeg(s, raw);
    if (starts(s, "\x89PNG\r\n\x1a\n", 8)) return img_decode_png(s, raw);
    if (starts(s, "BM", 2)) return decode_bmp(s, raw);
    if (s->size >= 3 && s->data[0] == 'P' && s->data[1] >= '1' && s->data[1] <= '6' &&
        (pnm_space(s->data[2]) || s->data[2] == '#'))
        return decode_pnm(s, raw);
    if (starts(s, "II*\0", 4) || starts(s, "MM\0*", 4)) return img_decode_tiff(s, raw);
    if (s->size >= 12 && !memcmp(s->data, "RIFF", 4) && !memcmp(s->data + 8, "WEBP", 4))
        return img_decode_webp(s, raw);
    if (starts(s, jp2, sizeof jp2)) return img_decode_jp2(s, raw, false);
    if (starts(s, j2k, sizeof j2k)) return img_decode_jp2(s, raw, true);
    return img_fail(s, "the %zu bytes are no image format Kiln decodes (JPEG, PNG, "
                       "BMP, PNM, TIFF, WebP, JPEG 2000)", s->size);
}

/* Pillow's RGB -> L (Convert.c, rounding fixed point). */
static uint8_t luma(const uint8_t *p) {
    return (uint8_t)(((uint32_t)p[0] * 19595 + (uint32_t)p[1] * 38470 +
                      (uint32_t)p[2] * 7471 + 0x8000) >> 16);
}

int img_decode(const uint8_t *data, size_t size, img_pixel_format fmt,
               int64_t max_pixels, uint8_t **pixels, int64_t *h, int64_t *w,
               char *err, size_t err_len) {
    img_src s = {data, size, max_pixels > 0 ? max_pixels : IMG_DEFAULT_MAX_PIXELS,
                 err, err_len};
    img_raw raw = {NULL, 0, 0, 0};
    *pixels = NULL;
    if (err_len) err[0] = 0;
    if (!data || size == 0) return img_fail(&s, "the encoded image is empty");
    if (fmt != IMG_RGB && fmt != IMG_BGR && fmt != IMG_GRAY)
        return img_fail(&s, "unknown pixel format %d", (int)fmt);
    if (decode_any(&s, &raw)) {
        free(raw.pix);
        return -1;
    }
    int oc = fmt == IMG_GRAY ? 1 : 3;
    size_t np = (size_t)raw.w * (size_t)raw.h;
    uint8_t *o = malloc(np * (size_t)oc);
    if (!o) {
        free(raw.pix);
        return img_fail(&s, "out of memory for a %lld x %lld image",
                        (long long)raw.w, (long long)raw.h);
    }
    for (size_t i = 0; i < np; i++) {
        const uint8_t *p = raw.pix + i * (size_t)raw.ch;
        uint8_t *q = o + i * (size_t)oc;
        bool color = raw.ch >= 3;
        if (fmt == IMG_GRAY) {
            q[0] = color ? luma(p) : p[0];
        } else {
            uint8_t r = p[0], g = color ? p[1] : p[0], b = color ? p[2] : p[0];
            q[0] = fmt == IMG_RGB ? r : b;
            q[1] = g;
            q[2] = fmt == IMG_RGB ? b : r;
        }
    }
    free(raw.pix);
    *pixels = o;
    *h = raw.h;
    *w = raw.w;
    return 0;
}

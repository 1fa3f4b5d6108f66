/* image_codecs.c: the ImageDecoder formats that need a real codec (JPEG,
** PNG, TIFF, WebP, JPEG 2000), through Debian's libraries: libjpeg-turbo,
** libpng16, libtiff, libwebp and libopenjp2. Each library is opened with
** dlopen the first time an image of its format arrives, so libkiln has no
** link-time dependency on any of them; a missing one is an error that names
** the package to install. The headers are needed at build time (CMake
** detects them, KILN_HAVE_*); a codec built without its header says so.
** Every decoder decodes as Pillow does (what the ONNX reference uses):
** JPEG to RGB with libjpeg's default (islow, fancy upsampling), 16-bit PNG
** samples cut to their high byte, TIFF through libtiff's RGBA reader, WebP
** unpremultiplied RGBA. Sizes are checked against the pixel limit from the
** header, before any pixel buffer exists. */
#include "image.h"

#include <dlfcn.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdio.h>

/* ---------------------------------------------------------- loading */

typedef struct codec_lib {
    pthread_once_t once;
    void *h;            /* NULL when unavailable */
    char why[320];      /* why it is unavailable */
} codec_lib;

static void *lib_open(codec_lib *L, const char *const *names, const char *pkg) {
    const char *why = "not found";
    for (int i = 0; names[i]; i++) {
        void *h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (h) return h;
        why = dlerror();
    }
    snprintf(L->why, sizeof L->why, "cannot load %s (%s); install the Debian package %s",
             names[0], why ? why : "not found", pkg);
    return NULL;
}

/* Fills a function pointer from the open library; on a missing symbol the
** library counts as unavailable. */
#define SYM(L, field, name)                                                    \
    do {                                                                       \
        if ((L).h) {                                                           \
            *(void **)&(field) = dlsym((L).h, name);                           \
            if (!(field)) {                                                    \
                snprintf((L).why, sizeof (L).why, "%s lacks %s", #L, name);    \
                dlclose((L).h);                                                \
                (L).h = NULL;                                                  \
            }                                                                  \
        }                                                                      \
    } while (0)

typedef struct mem_rd {
    const uint8_t *d;
    size_t n, pos;
} mem_rd;

/* ---------------------------------------------------------------- JPEG */

#ifdef KILN_HAVE_JPEGLIB_H
#include <jpeglib.h>
#include <jerror.h>

static codec_lib g_jpeg = {PTHREAD_ONCE_INIT, NULL, ""};
static struct {
    __typeof__(&jpeg_std_error) std_error;
    __typeof__(&jpeg_CreateDecompress) create;
    __typeof__(&jpeg_mem_src) mem_src;
    __typeof__(&jpeg_read_header) read_header;
    __typeof__(&jpeg_start_decompress) start;
    __typeof__(&jpeg_read_scanlines) read_scanlines;
    __typeof__(&jpeg_destroy_decompress) destroy;
} J;

static void jpeg_load(void) {
    /* the header's ABI (JPEG_LIB_VERSION 62) is the libjpeg.so.62 one */
    static const char *const names[] = {"libjpeg.so.62", NULL};
    g_jpeg.h = lib_open(&g_jpeg, names, "libjpeg62-turbo");
    SYM(g_jpeg, J.std_error, "jpeg_std_error");
    SYM(g_jpeg, J.create, "jpeg_CreateDecompress");
    SYM(g_jpeg, J.mem_src, "jpeg_mem_src");
    SYM(g_jpeg, J.read_header, "jpeg_read_header");
    SYM(g_jpeg, J.start, "jpeg_start_decompress");
    SYM(g_jpeg, J.read_scanlines, "jpeg_read_scanlines");
    SYM(g_jpeg, J.destroy, "jpeg_destroy_decompress");
}

/* Lives on the heap, outside the frame that calls setjmp, so nothing it
** holds is indeterminate after the longjmp. */
typedef struct jpg_job {
    struct jpeg_decompress_struct ci;
    struct jpeg_error_mgr em;
    struct jpeg_progress_mgr pm;
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX + 32];
    bool created;
    JSAMPLE *row; /* CMYK scanline, freed by the caller */
} jpg_job;

static void jpg_error_exit(j_common_ptr ci) {
    jpg_job *j = ci->client_data;
    char m[JMSG_LENGTH_MAX];
    ci->err->format_message(ci, m);
    snprintf(j->msg, sizeof j->msg, "%s", m);
    longjmp(j->jb, 1);
}

/* Warnings are ignored as Pillow ignores them, except running out of data:
** Pillow refuses a truncated JPEG, libjpeg would pad it with gray. */
static void jpg_emit(j_common_ptr ci, int level) {
    if (level < 0 && ci->err->msg_code == JWRN_JPEG_EOF) {
        jpg_job *j = ci->client_data;
        snprintf(j->msg, sizeof j->msg, "the JPEG data is truncated");
        longjmp(j->jb, 1);
    }
}

/* A progressive JPEG of many tiny scans costs a full pass per scan: bound
** them (libjpeg-turbo's own tools do the same). */
static void jpg_progress(j_common_ptr ci) {
    if (!ci->is_decompressor) return;
    j_decompress_ptr d = (j_decompress_ptr)ci;
    if (d->input_scan_number > 1000) {
        jpg_job *j = ci->client_data;
        snprintf(j->msg, sizeof j->msg, "the JPEG has more than 1000 scans");
        longjmp(j->jb, 1);
    }
}

/* Pillow's CMYK -> RGB: r = (255 - k) - (c (255 - k) / 255), rounded. */
static uint8_t cmyk_ch(unsigned c, unsigned k) {
    unsigned nk = 255 - k, t = c * nk + 128;
    t = (t + (t >> 8)) >> 8;
    return (uint8_t)(nk - t);
}

static int jpg_run(jpg_job *j, const img_src *s, img_raw *out) {
    if (setjmp(j->jb)) return img_fail(s, "JPEG: %s", j->msg);
    j->ci.err = J.std_error(&j->em);
    j->em.error_exit = jpg_error_exit;
    j->em.emit_message = jpg_emit;
    j->ci.client_data = j;
    J.create(&j->ci, JPEG_LIB_VERSION, sizeof j->ci);
    j->created = true;
    j->pm.progress_monitor = jpg_progress;
    j->ci.progress = &j->pm;
    J.mem_src(&j->ci, s->data, (unsigned long)s->size);
    J.read_header(&j->ci, TRUE);
    if (img_check_size(s, "JPEG", j->ci.image_width, j->ci.image_height)) return -1;
    int ch = 3;
    bool cmyk = false;
    if (j->ci.jpeg_color_space == JCS_GRAYSCALE) {
        j->ci.out_color_space = JCS_GRAYSCALE;
        ch = 1;
    } else if (j->ci.jpeg_color_space == JCS_CMYK || j->ci.jpeg_color_space == JCS_YCCK) {
        j->ci.out_color_space = JCS_CMYK;
        cmyk = true;
    } else {
        j->ci.out_color_space = JCS_RGB;
    }
    J.start(&j->ci);
    size_t w = j->ci.output_width, h = j->ci.output_height;
    int comps = j->ci.output_components;
    if (comps != (cmyk ? 4 : ch) || w != j->ci.image_width || h != j->ci.image_height)
        return img_fail(s, "JPEG: unexpected output layout (%d components)", comps);
    out->pix = malloc(w * h * (size_t)ch);
    if (cmyk) j->row = malloc(w * 4);
    if (!out->pix || (cmyk && !j->row))
        return img_fail(s, "out of memory for a %zu x %zu JPEG", w, h);
    out->w = (int64_t)w;
    out->h = (int64_t)h;
    out->ch = ch;
    /* Adobe CMYK JPEGs store inverted ink; Pillow reads them as "CMYK;I" */
    bool inv = cmyk && j->ci.saw_Adobe_marker;
    while (j->ci.output_scanline < h) {
        size_t y = j->ci.output_scanline;
        JSAMPROW dst = cmyk ? j->row : out->pix + y * w * (size_t)ch;
        if (J.read_scanlines(&j->ci, &dst, 1) != 1)
            return img_fail(s, "JPEG: no progress at row %zu", y);
        if (cmyk) {
            const JSAMPLE *row = j->row;
            uint8_t *o = out->pix + y * w * 3;
            for (size_t x = 0; x < w; x++) {
                unsigned v[4];
                for (int k = 0; k < 4; k++) v[k] = inv ? 255u - row[4 * x + k] : row[4 * x + k];
                for (int k = 0; k < 3; k++) o[3 * x + k] = cmyk_ch(v[k], v[3]);
            }
        }
    }
    return 0;
}

int img_decode_jpeg(const img_src *s, img_raw *out) {
    pthread_once(&g_jpeg.once, jpeg_load);
    if (!g_jpeg.h) return img_fail(s, "JPEG: %s", g_jpeg.why);
    jpg_job *j = calloc(1, sizeof *j);
    if (!j) return img_fail(s, "out of memory");
    int rc = jpg_run(j, s, out);
    if (j->created) J.destroy(&j->ci);
    free(j->row);
    free(j);
    return rc;
}
#else
int img_decode_jpeg(const img_src *s, img_raw *out) {
    (void)out;
    return img_fail(s, "JPEG: this Kiln was built without jpeglib.h; install "
                       "libjpeg62-turbo-dev and rebuild");
}
#endif

/* ----------------------------------------------------------------- PNG */

#ifdef KILN_HAVE_PNG_H
#include <png.h>

static codec_lib g_png = {PTHREAD_ONCE_INIT, NULL, ""};
static struct {
    __typeof__(&png_create_read_struct) create_read;
    __typeof__(&png_create_info_struct) create_info;
    __typeof__(&png_destroy_read_struct) destroy_read;
    __typeof__(&png_set_read_fn) set_read_fn;
    __typeof__(&png_get_io_ptr) get_io_ptr;
    __typeof__(&png_get_error_ptr) get_error_ptr;
    __typeof__(&png_error) error;
    __typeof__(&png_set_user_limits) set_user_limits;
    __typeof__(&png_set_chunk_malloc_max) set_chunk_malloc_max;
    __typeof__(&png_read_info) read_info;
    __typeof__(&png_get_IHDR) get_IHDR;
    __typeof__(&png_set_strip_16) set_strip_16;
    __typeof__(&png_set_palette_to_rgb) set_palette_to_rgb;
    __typeof__(&png_set_expand_gray_1_2_4_to_8) set_expand_gray;
    __typeof__(&png_set_interlace_handling) set_interlace_handling;
    __typeof__(&png_read_update_info) read_update_info;
    __typeof__(&png_get_rowbytes) get_rowbytes;
    __typeof__(&png_get_channels) get_channels;
    __typeof__(&png_read_image) read_image;
} P;

static void png_load(void) {
    static const char *const names[] = {"libpng16.so.16", NULL};
    g_png.h = lib_open(&g_png, names, "libpng16-16");
    SYM(g_png, P.create_read, "png_create_read_struct");
    SYM(g_png, P.create_info, "png_create_info_struct");
    SYM(g_png, P.destroy_read, "png_destroy_read_struct");
    SYM(g_png, P.set_read_fn, "png_set_read_fn");
    SYM(g_png, P.get_io_ptr, "png_get_io_ptr");
    SYM(g_png, P.get_error_ptr, "png_get_error_ptr");
    SYM(g_png, P.error, "png_error");
    SYM(g_png, P.set_user_limits, "png_set_user_limits");
    SYM(g_png, P.set_chunk_malloc_max, "png_set_chunk_malloc_max");
    SYM(g_png, P.read_info, "png_read_info");
    SYM(g_png, P.get_IHDR, "png_get_IHDR");
    SYM(g_png, P.set_strip_16, "png_set_strip_16");
    SYM(g_png, P.set_palette_to_rgb, "png_set_palette_to_rgb");
    SYM(g_png, P.set_expand_gray, "png_set_expand_gray_1_2_4_to_8");
    SYM(g_png, P.set_interlace_handling, "png_set_interlace_handling");
    SYM(g_png, P.read_update_info, "png_read_update_info");
    SYM(g_png, P.get_rowbytes, "png_get_rowbytes");
    SYM(g_png, P.get_channels, "png_get_channels");
    SYM(g_png, P.read_image, "png_read_image");
}

typedef struct png_job {
    png_structp p;
    png_infop info;
    mem_rd rd;
    jmp_buf jb;
    char msg[256];
    png_bytep *rows;
} png_job;

static void png_err_cb(png_structp p, png_const_charp m) {
    png_job *j = P.get_error_ptr(p);
    snprintf(j->msg, sizeof j->msg, "%s", m ? m : "error");
    longjmp(j->jb, 1);
}

static void png_warn_cb(png_structp p, png_const_charp m) {
    (void)p;
    (void)m;
}

static void png_read_cb(png_structp p, png_bytep dst, size_t n) {
    png_job *j = P.get_io_ptr(p);
    if (j->rd.n - j->rd.pos < n) P.error(p, "the PNG data is truncated");
    memcpy(dst, j->rd.d + j->rd.pos, n);
    j->rd.pos += n;
}

static int png_run(png_job *j, const img_src *s, img_raw *out) {
    if (setjmp(j->jb)) return img_fail(s, "PNG: %s", j->msg);
    j->p = P.create_read(PNG_LIBPNG_VER_STRING, j, png_err_cb, png_warn_cb);
    if (!j->p) return img_fail(s, "PNG: cannot create a reader");
    j->info = P.create_info(j->p);
    if (!j->info) return img_fail(s, "PNG: cannot create a reader");
    P.set_read_fn(j->p, j, png_read_cb);
    /* ancillary chunks (text, ICC) cannot make libpng allocate more than the
    ** file holds times a little; the image itself is bounded below */
    P.set_chunk_malloc_max(j->p, 64u << 20);
    P.set_user_limits(j->p, 0x7fffffff, 0x7fffffff);
    P.read_info(j->p, j->info);
    png_uint_32 w, h;
    int depth, ctype, interlace;
    P.get_IHDR(j->p, j->info, &w, &h, &depth, &ctype, &interlace, NULL, NULL);
    if (img_check_size(s, "PNG", w, h)) return -1;
    /* 16-bit gray is Pillow's "I;16", which its convert("L") clips at 255;
    ** other 16-bit samples keep their high byte, as Pillow's unpackers do */
    bool gray16 = depth == 16 && ctype == PNG_COLOR_TYPE_GRAY;
    if (depth == 16 && !gray16) P.set_strip_16(j->p);
    if (ctype == PNG_COLOR_TYPE_PALETTE) P.set_palette_to_rgb(j->p);
    if (ctype == PNG_COLOR_TYPE_GRAY && depth < 8) P.set_expand_gray(j->p);
    P.set_interlace_handling(j->p);
    P.read_update_info(j->p, j->info);
    size_t ch = P.get_channels(j->p, j->info), rb = P.get_rowbytes(j->p, j->info);
    size_t bps = gray16 ? 2 : 1;
    if (ch < 1 || ch > 4 || rb != (size_t)w * ch * bps)
        return img_fail(s, "PNG: unexpected row layout (%zu channels, %zu bytes)", ch, rb);
    out->pix = malloc((size_t)w * h * ch * bps);
    j->rows = malloc((size_t)h * sizeof *j->rows);
    if (!out->pix || !j->rows) return img_fail(s, "out of memory for a %u x %u PNG", w, h);
    out->w = w;
    out->h = h;
    out->ch = (int)ch;
    for (size_t y = 0; y < h; y++) j->rows[y] = out->pix + y * rb;
    P.read_image(j->p, j->rows);
    if (gray16) /* big-endian samples, clipped, packed in place */
        for (size_t i = 0; i < (size_t)w * h; i++) {
            unsigned v = (unsigned)out->pix[2 * i] << 8 | out->pix[2 * i + 1];
            out->pix[i] = (uint8_t)(v > 255 ? 255 : v);
        }
    return 0;
}

int img_decode_png(const img_src *s, img_raw *out) {
    pthread_once(&g_png.once, png_load);
    if (!g_png.h) return img_fail(s, "PNG: %s", g_png.why);
    png_job *j = calloc(1, sizeof *j);
    if (!j) return img_fail(s, "out of memory");
    j->rd = (mem_rd){s->data, s->size, 0};
    int rc = png_run(j, s, out);
    if (j->p) P.destroy_read(&j->p, j->info ? &j->info : NULL, NULL);
    free(j->rows);
    free(j);
    return rc;
}
#else
int img_decode_png(const img_src *s, img_raw *out) {
    (void)out;
    return img_fail(s, "PNG: this Kiln was built without png.h; install "
                       "libpng-dev and rebuild");
}
#endif

/* ---------------------------------------------------------------- TIFF */

#ifdef KILN_HAVE_TIFFIO_H
#include <tiffio.h>

static codec_lib g_tiff = {PTHREAD_ONCE_INIT, NULL, ""};
static struct {
    __typeof__(&TIFFClientOpen) client_open;
    __typeof__(&TIFFGetField) get_field;
    __typeof__(&TIFFGetFieldDefaulted) get_field_defaulted;
    __typeof__(&TIFFIsTiled) is_tiled;
    __typeof__(&TIFFScanlineSize) scanline_size;
    __typeof__(&TIFFReadScanline) read_scanline;
    __typeof__(&TIFFReadRGBAImageOriented) read_rgba;
    __typeof__(&TIFFClose) close;
    __typeof__(&TIFFSetErrorHandler) set_error_handler;
    __typeof__(&TIFFSetWarningHandler) set_warning_handler;
    /* libtiff >= 4.5: per-handle handlers and an allocation bound */
    __typeof__(&TIFFClientOpenExt) client_open_ext;
    __typeof__(&TIFFOpenOptionsAlloc) opts_alloc;
    __typeof__(&TIFFOpenOptionsFree) opts_free;
    __typeof__(&TIFFOpenOptionsSetErrorHandlerExtR) opts_error;
    __typeof__(&TIFFOpenOptionsSetWarningHandlerExtR) opts_warning;
    __typeof__(&TIFFOpenOptionsSetMaxSingleMemAlloc) opts_max_alloc;
} T;

static void tiff_load(void) {
    static const char *const names[] = {"libtiff.so.6", "libtiff.so.5", NULL};
    g_tiff.h = lib_open(&g_tiff, names, "libtiff6");
    SYM(g_tiff, T.client_open, "TIFFClientOpen");
    SYM(g_tiff, T.get_field, "TIFFGetField");
    SYM(g_tiff, T.get_field_defaulted, "TIFFGetFieldDefaulted");
    SYM(g_tiff, T.is_tiled, "TIFFIsTiled");
    SYM(g_tiff, T.scanline_size, "TIFFScanlineSize");
    SYM(g_tiff, T.read_scanline, "TIFFReadScanline");
    SYM(g_tiff, T.read_rgba, "TIFFReadRGBAImageOriented");
    SYM(g_tiff, T.close, "TIFFClose");
    SYM(g_tiff, T.set_error_handler, "TIFFSetErrorHandler");
    SYM(g_tiff, T.set_warning_handler, "TIFFSetWarningHandler");
    if (!g_tiff.h) return;
    *(void **)&T.client_open_ext = dlsym(g_tiff.h, "TIFFClientOpenExt");
    *(void **)&T.opts_alloc = dlsym(g_tiff.h, "TIFFOpenOptionsAlloc");
    *(void **)&T.opts_free = dlsym(g_tiff.h, "TIFFOpenOptionsFree");
    *(void **)&T.opts_error = dlsym(g_tiff.h, "TIFFOpenOptionsSetErrorHandlerExtR");
    *(void **)&T.opts_warning = dlsym(g_tiff.h, "TIFFOpenOptionsSetWarningHandlerExtR");
    *(void **)&T.opts_max_alloc = dlsym(g_tiff.h, "TIFFOpenOptionsSetMaxSingleMemAlloc");
    if (!T.client_open_ext || !T.opts_alloc || !T.opts_free || !T.opts_error ||
        !T.opts_warning || !T.opts_max_alloc) {
        /* an older libtiff prints to stderr through process-wide handlers:
        ** silence them (the status carries a generic message instead) */
        T.client_open_ext = NULL;
        T.set_error_handler(NULL);
        T.set_warning_handler(NULL);
    }
}

typedef struct tiff_job {
    mem_rd rd;
    char msg[256];
} tiff_job;

static tmsize_t tiff_read(thandle_t h, void *buf, tmsize_t n) {
    tiff_job *j = h;
    if (n < 0) return -1;
    size_t k = KILN_MIN((size_t)n, j->rd.n - j->rd.pos);
    memcpy(buf, j->rd.d + j->rd.pos, k);
    j->rd.pos += k;
    return (tmsize_t)k;
}

static tmsize_t tiff_write(thandle_t h, void *buf, tmsize_t n) {
    (void)h;
    (void)buf;
    (void)n;
    return -1;
}

static toff_t tiff_seek(thandle_t h, toff_t off, int whence) {
    tiff_job *j = h;
    uint64_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? j->rd.pos : j->rd.n;
    if (whence != SEEK_SET && whence != SEEK_CUR && whence != SEEK_END) return (toff_t)-1;
    uint64_t p;
    if (__builtin_add_overflow(base, (uint64_t)off, &p) || p > j->rd.n) return (toff_t)-1;
    j->rd.pos = (size_t)p;
    return p;
}

static int tiff_close(thandle_t h) {
    (void)h;
    return 0;
}

static toff_t tiff_size(thandle_t h) { return ((tiff_job *)h)->rd.n; }

static int tiff_map(thandle_t h, void **base, toff_t *size) {
    (void)h;
    (void)base;
    (void)size;
    return 0;
}

static void tiff_unmap(thandle_t h, void *base, toff_t size) {
    (void)h;
    (void)base;
    (void)size;
}

static int tiff_err_cb(TIFF *t, void *user, const char *module, const char *fmt, va_list ap) {
    (void)t;
    tiff_job *j = user;
    if (!j->msg[0]) {
        char m[200];
        vsnprintf(m, sizeof m, fmt, ap);
        snprintf(j->msg, sizeof j->msg, "%s%s%s", module ? module : "", module ? ": " : "", m);
    }
    return 1;
}

static int tiff_warn_cb(TIFF *t, void *user, const char *module, const char *fmt, va_list ap) {
    (void)t;
    (void)user;
    (void)module;
    (void)fmt;
    (void)ap;
    return 1;
}

int img_decode_tiff(const img_src *s, img_raw *out) {
    pthread_once(&g_tiff.once, tiff_load);
    if (!g_tiff.h) return img_fail(s, "TIFF: %s", g_tiff.why);
    tiff_job j = {{s->data, s->size, 0}, ""};
    TIFF *t;
    if (T.client_open_ext) {
        TIFFOpenOptions *o = T.opts_alloc();
        if (!o) return img_fail(s, "out of memory");
        T.opts_error(o, tiff_err_cb, &j);
        T.opts_warning(o, tiff_warn_cb, &j);
        /* strips and tiles beyond what the pixel limit allows are refused */
        T.opts_max_alloc(o, (tmsize_t)KILN_MIN(s->max_pixels * 16, (int64_t)1 << 40));
        t = T.client_open_ext("image", "rm", &j, tiff_read, tiff_write, tiff_seek,
                              tiff_close, tiff_size, tiff_map, tiff_unmap, o);
        T.opts_free(o);
    } else {
        t = T.client_open("image", "rm", &j, tiff_read, tiff_write, tiff_seek,
                          tiff_close, tiff_size, tiff_map, tiff_unmap);
    }
    if (!t) return img_fail(s, "TIFF: cannot read the header%s%s", j.msg[0] ? ": " : "", j.msg);
    uint32_t w = 0, h = 0;
    int rc = -1;
    uint32_t *px = NULL;
    if (!T.get_field(t, TIFFTAG_IMAGEWIDTH, &w) || !T.get_field(t, TIFFTAG_IMAGELENGTH, &h)) {
        img_fail(s, "TIFF: the image has no width or length");
        goto done;
    }
    if (img_check_size(s, "TIFF", w, h)) goto done;
    /* 8-bit gray or RGB (with or without alpha) in strips: the samples as
    ** stored, as Pillow unpacks them (libtiff's RGBA reader would
    ** premultiply an unassociated alpha). Anything else goes through it. */
    uint16_t bps = 0, spp = 0, planar = 0, photo = 0;
    if (!T.is_tiled(t) && T.get_field_defaulted(t, TIFFTAG_BITSPERSAMPLE, &bps) &&
        T.get_field_defaulted(t, TIFFTAG_SAMPLESPERPIXEL, &spp) &&
        T.get_field_defaulted(t, TIFFTAG_PLANARCONFIG, &planar) &&
        T.get_field(t, TIFFTAG_PHOTOMETRIC, &photo) && bps == 8 &&
        planar == PLANARCONFIG_CONTIG &&
        ((photo == PHOTOMETRIC_MINISBLACK && spp >= 1 && spp <= 2) ||
         (photo == PHOTOMETRIC_RGB && spp >= 3 && spp <= 4)) &&
        T.scanline_size(t) == (tmsize_t)w * spp) {
        out->pix = malloc((size_t)w * h * spp);
        if (!out->pix) {
            img_fail(s, "out of memory for a %u x %u TIFF", w, h);
            goto done;
        }
        for (uint32_t y = 0; y < h; y++)
            if (T.read_scanline(t, out->pix + (size_t)y * w * spp, y, 0) < 0) {
                img_fail(s, "TIFF: %s", j.msg[0] ? j.msg : "row cannot be decoded");
                goto done;
            }
        out->w = w;
        out->h = h;
        out->ch = spp;
        rc = 0;
        goto done;
    }
    px = malloc((size_t)w * h * 4);
    out->pix = malloc((size_t)w * h * 4);
    if (!px || !out->pix) {
        img_fail(s, "out of memory for a %u x %u TIFF", w, h);
        goto done;
    }
    if (!T.read_rgba(t, w, h, px, ORIENTATION_TOPLEFT, 1)) {
        img_fail(s, "TIFF: %s", j.msg[0] ? j.msg : "the image cannot be decoded");
        goto done;
    }
    for (size_t i = 0; i < (size_t)w * h; i++) {
        out->pix[4 * i + 0] = (uint8_t)TIFFGetR(px[i]);
        out->pix[4 * i + 1] = (uint8_t)TIFFGetG(px[i]);
        out->pix[4 * i + 2] = (uint8_t)TIFFGetB(px[i]);
        out->pix[4 * i + 3] = (uint8_t)TIFFGetA(px[i]);
    }
    out->w = w;
    out->h = h;
    out->ch = 4;
    rc = 0;
done:
    free(px);
    T.close(t);
    return rc;
}
#else
int img_decode_tiff(const img_src *s, img_raw *out) {
    (void)out;
    return img_fail(s, "TIFF: this Kiln was built without tiffio.h; install "
                       "libtiff-dev and rebuild");
}
#endif

/* ---------------------------------------------------------------- WebP */

#ifdef KILN_HAVE_WEBP_DECODE_H
#include <webp/decode.h>

static codec_lib g_webp = {PTHREAD_ONCE_INIT, NULL, ""};
static struct {
    __typeof__(&WebPGetInfo) get_info;
    __typeof__(&WebPDecodeRGBA) decode_rgba;
    __typeof__(&WebPFree) free;
} W;

static void webp_load(void) {
    static const char *const names[] = {"libwebp.so.7", "libwebp.so.6", NULL};
    g_webp.h = lib_open(&g_webp, names, "libwebp7");
    SYM(g_webp, W.get_info, "WebPGetInfo");
    SYM(g_webp, W.decode_rgba, "WebPDecodeRGBA");
    SYM(g_webp, W.free, "WebPFree");
}

int img_decode_webp(const img_src *s, img_raw *out) {
    pthread_once(&g_webp.once, webp_load);
    if (!g_webp.h) return img_fail(s, "WebP: %s", g_webp.why);
    int w = 0, h = 0;
    if (!W.get_info(s->data, s->size, &w, &h))
        return img_fail(s, "WebP: the header is malformed or not a still image");
    if (img_check_size(s, "WebP", w, h)) return -1;
    int dw = 0, dh = 0;
    uint8_t *d = W.decode_rgba(s->data, s->size, &dw, &dh);
    if (!d) return img_fail(s, "WebP: the image cannot be decoded (truncated, "
                               "corrupt or animated)");
    if (dw != w || dh != h) {
        W.free(d);
        return img_fail(s, "WebP: decoded size differs from the header's");
    }
    out->pix = malloc((size_t)w * (size_t)h * 4);
    if (!out->pix) {
        W.free(d);
        return img_fail(s, "out of memory for a %d x %d WebP", w, h);
    }
    memcpy(out->pix, d, (size_t)w * (size_t)h * 4);
    W.free(d);
    out->w = w;
    out->h = h;
    out->ch = 4;
    return 0;
}
#else
int img_decode_webp(const img_src *s, img_raw *out) {
    (void)out;
    return img_fail(s, "WebP: this Kiln was built without webp/decode.h; install "
                       "libwebp-dev and rebuild");
}
#endif

/* ----------------------------------------------------------- JPEG 2000 */

#ifdef KILN_HAVE_OPENJPEG_H
#include <openjpeg.h>

static codec_lib g_opj = {PTHREAD_ONCE_INIT, NULL, ""};
static struct {
    __typeof__(&opj_stream_create) stream_create;
    __typeof__(&opj_stream_destroy) stream_destroy;
    __typeof__(&opj_stream_set_read_function) set_read;
    __typeof__(&opj_stream_set_skip_function) set_skip;
    __typeof__(&opj_stream_set_seek_function) set_seek;
    __typeof__(&opj_stream_set_user_data) set_user_data;
    __typeof__(&opj_stream_set_user_data_length) set_user_data_length;
    __typeof__(&opj_create_decompress) create;
    __typeof__(&opj_destroy_codec) destroy;
    __typeof__(&opj_set_default_decoder_parameters) default_params;
    __typeof__(&opj_setup_decoder) setup;
    __typeof__(&opj_set_error_handler) set_error_handler;
    __typeof__(&opj_set_warning_handler) set_warning_handler;
    __typeof__(&opj_read_header) read_header;
    __typeof__(&opj_decode) decode;
    __typeof__(&opj_end_decompress) end;
    __typeof__(&opj_image_destroy) image_destroy;
} O;

static void opj_load(void) {
    static const char *const names[] = {"libopenjp2.so.7", NULL};
    g_opj.h = lib_open(&g_opj, names, "libopenjp2-7");
    SYM(g_opj, O.stream_create, "opj_stream_create");
    SYM(g_opj, O.stream_destroy, "opj_stream_destroy");
    SYM(g_opj, O.set_read, "opj_stream_set_read_function");
    SYM(g_opj, O.set_skip, "opj_stream_set_skip_function");
    SYM(g_opj, O.set_seek, "opj_stream_set_seek_function");
    SYM(g_opj, O.set_user_data, "opj_stream_set_user_data");
    SYM(g_opj, O.set_user_data_length, "opj_stream_set_user_data_length");
    SYM(g_opj, O.create, "opj_create_decompress");
    SYM(g_opj, O.destroy, "opj_destroy_codec");
    SYM(g_opj, O.default_params, "opj_set_default_decoder_parameters");
    SYM(g_opj, O.setup, "opj_setup_decoder");
    SYM(g_opj, O.set_error_handler, "opj_set_error_handler");
    SYM(g_opj, O.set_warning_handler, "opj_set_warning_handler");
    SYM(g_opj, O.read_header, "opj_read_header");
    SYM(g_opj, O.decode, "opj_decode");
    SYM(g_opj, O.end, "opj_end_decompress");
    SYM(g_opj, O.image_destroy, "opj_image_destroy");
}

typedef struct opj_job {
    mem_rd rd;
    char msg[256];
} opj_job;

static OPJ_SIZE_T opj_read_cb(void *buf, OPJ_SIZE_T n, void *user) {
    opj_job *j = user;
    size_t k = KILN_MIN((size_t)n, j->rd.n - j->rd.pos);
    if (k == 0) return (OPJ_SIZE_T)-1;
    memcpy(buf, j->rd.d + j->rd.pos, k);
    j->rd.pos += k;
    return k;
}

static OPJ_OFF_T opj_skip_cb(OPJ_OFF_T n, void *user) {
    opj_job *j = user;
    if (n < 0) {
        if ((uint64_t)-n > j->rd.pos) return -1;
        j->rd.pos -= (size_t)-n;
        return n;
    }
    size_t k = KILN_MIN((uint64_t)n, j->rd.n - j->rd.pos);
    j->rd.pos += k;
    return (OPJ_OFF_T)k;
}

static OPJ_BOOL opj_seek_cb(OPJ_OFF_T p, void *user) {
    opj_job *j = user;
    if (p < 0 || (uint64_t)p > j->rd.n) return OPJ_FALSE;
    j->rd.pos = (size_t)p;
    return OPJ_TRUE;
}

static void opj_err_cb(const char *m, void *user) {
    opj_job *j = user;
    if (!j->msg[0]) {
        snprintf(j->msg, sizeof j->msg, "%s", m ? m : "error");
        size_t k = strlen(j->msg); /* openjpeg ends messages with a newline */
        if (k && j->msg[k - 1] == '\n') j->msg[k - 1] = 0;
    }
}

static void opj_warn_cb(const char *m, void *user) {
    (void)m;
    (void)user;
}

/* Pillow's j2k unpack: signed samples offset to unsigned, then the
** precision shifted to 8 bits. */
static uint8_t opj_sample(OPJ_INT32 v, const opj_image_comp_t *c) {
    int64_t x = (int64_t)v + (c->sgnd ? (INT64_C(1) << (c->prec - 1)) : 0);
    int sh = (int)c->prec - 8;
    x = sh > 0 ? x >> sh : x << -sh;
    return (uint8_t)(x < 0 ? 0 : x > 255 ? 255 : x);
}

int img_decode_jp2(const img_src *s, img_raw *out, bool codestream) {
    pthread_once(&g_opj.once, opj_load);
    if (!g_opj.h) return img_fail(s, "JPEG 2000: %s", g_opj.why);
    opj_job j = {{s->data, s->size, 0}, ""};
    opj_stream_t *st = O.stream_create(1 << 16, OPJ_TRUE);
    opj_codec_t *codec = O.create(codestream ? OPJ_CODEC_J2K : OPJ_CODEC_JP2);
    opj_image_t *img = NULL;
    int rc = -1;
    if (!st || !codec) {
        img_fail(s, "out of memory");
        goto done;
    }
    O.set_user_data(st, &j, NULL);
    O.set_user_data_length(st, s->size);
    O.set_read(st, opj_read_cb);
    O.set_skip(st, opj_skip_cb);
    O.set_seek(st, opj_seek_cb);
    O.set_error_handler(codec, opj_err_cb, &j);
    O.set_warning_handler(codec, opj_warn_cb, &j);
    opj_dparameters_t prm;
    O.default_params(&prm);
    if (!O.setup(codec, &prm) || !O.read_header(st, codec, &img) || !img) {
        img_fail(s, "JPEG 2000: cannot read the header%s%s", j.msg[0] ? ": " : "", j.msg);
        goto done;
    }
    if (img->x1 < img->x0 || img->y1 < img->y0) {
        img_fail(s, "JPEG 2000: the image area is inverted");
        goto done;
    }
    int64_t w = (int64_t)img->x1 - img->x0, h = (int64_t)img->y1 - img->y0;
    if (img_check_size(s, "JPEG 2000", w, h)) goto done;
    unsigned nc = img->numcomps;
    if (nc < 1 || nc > 4) {
        img_fail(s, "JPEG 2000 with %u components is not supported", nc);
        goto done;
    }
    for (unsigned k = 0; k < nc; k++)
        if (img->comps[k].dx != 1 || img->comps[k].dy != 1) {
            img_fail(s, "JPEG 2000 with subsampled components is not supported");
            goto done;
        }
    if (!O.decode(codec, st, img) || !O.end(codec, st)) {
        img_fail(s, "JPEG 2000: %s", j.msg[0] ? j.msg : "the image cannot be decoded");
        goto done;
    }
    for (unsigned k = 0; k < nc; k++) {
        const opj_image_comp_t *c = &img->comps[k];
        if (!c->data || c->w != (OPJ_UINT32)w || c->h != (OPJ_UINT32)h || c->prec < 1 ||
            c->prec > 31) {
            img_fail(s, "JPEG 2000: component %u has an unexpected layout", k);
            goto done;
        }
    }
    out->pix = malloc((size_t)w * (size_t)h * nc);
    if (!out->pix) {
        img_fail(s, "out of memory for a %lld x %lld JPEG 2000", (long long)w, (long long)h);
        goto done;
    }
    for (size_t i = 0; i < (size_t)w * (size_t)h; i++)
        for (unsigned k = 0; k < nc; k++)
            out->pix[i * nc + k] = opj_sample(img->comps[k].data[i], &img->comps[k]);
    out->w = w;
    out->h = h;
    out->ch = (int)nc;
    rc = 0;
done:
    if (img) O.image_destroy(img);
    if (codec) O.destroy(codec);
    if (st) O.stream_destroy(st);
    return rc;
}
#else
int img_decode_jp2(const img_src *s, img_raw *out, bool codestream) {
    (void)out;
    (void)codestream;
    return img_fail(s, "JPEG 2000: this Kiln was built without openjpeg.h; install "
                       "libopenjp2-7-dev and rebuild");
}
#endif

/* onnx_tensor.c: TensorProto <-> kiln_tensor, including the typed data
** fields, raw_data used in place, and external data files. */
#include "onnx.h"
#include "pb.h"
#include "../util/file.h"

#include <stdio.h>
#include <sys/stat.h>

#define BAD(...) kiln_error(KILN_INVALID_MODEL, __VA_ARGS__)

/* Which typed field carries each dtype, and how. */
static int typed_field_for(kiln_dtype t) {
    switch (t) {
    case KILN_DTYPE_FLOAT32: case KILN_DTYPE_COMPLEX64:
        return ONNX_TENSOR_FLOAT_DATA;
    case KILN_DTYPE_INT64: return ONNX_TENSOR_INT64_DATA;
    case KILN_DTYPE_FLOAT64: case KILN_DTYPE_COMPLEX128:
        return ONNX_TENSOR_DOUBLE_DATA;
    case KILN_DTYPE_UINT32: case KILN_DTYPE_UINT64:
        return ONNX_TENSOR_UINT64_DATA;
    case KILN_DTYPE_STRING: return ONNX_TENSOR_STRING_DATA;
    default: return ONNX_TENSOR_INT32_DATA;
    }
}

/* Counts or extracts the elements of a repeated scalar field that may be
** packed or not. vals==NULL only counts. Returns -1 on malformed data. */
static int64_t read_repeated(const uint8_t *p, size_t n, uint32_t want,
                             uint64_t *vals) {
    pb_reader r = pb_init(p, n);
    uint32_t f;
    int wt, rc;
    int64_t k = 0;
    while ((rc = pb_next(&r, &f, &wt)) == 1) {
        if (f != want) {
            if (pb_skip(&r, wt)) return -1;
            continue;
        }
        bool fixed32 = want == ONNX_TENSOR_FLOAT_DATA;
        bool fixed64 = want == ONNX_TENSOR_DOUBLE_DATA;
        if (wt == PB_LEN) {
            const uint8_t *q;
            size_t m;
            if (pb_bytes(&r, &q, &m)) return -1;
            pb_reader s = pb_init(q, m);
            while (s.p < s.end) {
                uint64_t v = 0;
                uint32_t v32;
                if (fixed32) {
                    if (pb_fixed32(&s, &v32)) return -1;
                    v = v32;
                } else if (fixed64) {
                    if (pb_fixed64(&s, &v)) return -1;
                } else if (pb_varint(&s, &v)) {
                    return -1;
                }
                if (vals) vals[k] = v;
                k++;
            }
        } else {
            uint64_t v = 0;
            uint32_t v32;
            if (fixed32 && wt == PB_I32) {
                if (pb_fixed32(&r, &v32)) return -1;
                v = v32;
            } else if (fixed64 && wt == PB_I64) {
                if (pb_fixed64(&r, &v)) return -1;
            } else if (!fixed32 && !fixed64 && wt == PB_VARINT) {
                if (pb_varint(&r, &v)) return -1;
            } else {
                return -1;
            }
            if (vals) vals[k] = v;
            k++;
        }
    }
    return rc < 0 ? -1 : k;
}

/* Copies an untrusted string for a message (truncated to n - 1 bytes),
** replacing control characters (terminal escapes, newlines) with '?'. */
static char *tame(char *dst, size_t n, const char *src) {
    size_t k = 0;
    for (; *src && k + 1 < n; src++)
        dst[k++] = ((unsigned char)*src < 32 || *src == 127) ? '?' : *src;
    dst[k] = 0;
    return dst;
}

static bool path_is_safe(const char *loc) {
    if (!loc[0] || loc[0] == '/') return false;
    const char *s = loc;
    while (*s) {
        const char *e = strchr(s, '/');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (len == 2 && s[0] == '.' && s[1] == '.') return false;
        if (!e) break;
        s = e + 1;
    }
    return true;
}

static kiln_status read_external(const uint8_t *p, size_t n, const char *dir,
                                 size_t want, void **out) {
    pb_reader r = pb_init(p, n);
    uint32_t f;
    int wt, rc;
    char loc[4096] = "";
    uint64_t offset = 0, length = UINT64_MAX;
    while ((rc = pb_next(&r, &f, &wt)) == 1) {
        const uint8_t *q;
        size_t m;
        if (f != ONNX_TENSOR_EXTERNAL_DATA || wt != PB_LEN) {
            if (pb_skip(&r, wt)) return BAD("malformed tensor");
            continue;
        }
        if (pb_bytes(&r, &q, &m)) return BAD("malformed external_data");
        pb_reader e = pb_init(q, m);
        const uint8_t *k = NULL, *v = NULL;
        size_t kn = 0, vn = 0;
        uint32_t ef;
        int ewt, erc;
        while ((erc = pb_next(&e, &ef, &ewt)) == 1) {
            if (ewt == PB_LEN && ef == ONNX_ENTRY_KEY) {
                if (pb_bytes(&e, &k, &kn)) return BAD("malformed external_data");
            } else if (ewt == PB_LEN && ef == ONNX_ENTRY_VALUE) {
                if (pb_bytes(&e, &v, &vn)) return BAD("malformed external_data");
            } else if (pb_skip(&e, ewt)) {
                return BAD("malformed external_data");
            }
        }
        if (erc < 0 || !k || !v) return BAD("malformed external_data entry");
        char val[4096];
        if (vn >= sizeof val) return BAD("external_data value too long");
        memcpy(val, v, vn);
        val[vn] = 0;
        if (kn == 8 && !memcmp(k, "location", 8)) {
            if (memchr(v, 0, vn)) return BAD("external_data location has a NUL");
            memcpy(loc, val, vn + 1);
        } else if ((kn == 6 && !memcmp(k, "offset", 6)) ||
                   (kn == 6 && !memcmp(k, "length", 6))) {
            char *end;
            unsigned long long x = strtoull(val, &end, 10);
            if (!vn || *end || val[0] == '-') {
                char shown[64];
                return BAD("external_data %.6s '%s' is not a number",
                           (const char *)k, tame(shown, sizeof shown, val));
            }
            if (k[0] == 'o') offset = x;
            else length = x;
        }
    }
    if (rc < 0) return BAD("malformed tensor");
    if (!loc[0]) return BAD("external data has no location");
    char shown[200]; /* loc as messages show it */
    tame(shown, sizeof shown, loc);
    if (!dir)
        return kiln_error(KILN_INVALID_ARGUMENT,
                          "tensor has external data '%s' but no model folder "
                          "is known to resolve it", shown);
    if (!path_is_safe(loc))
        return BAD("external data location '%s' must be a relative path "
                   "inside the model's folder", shown);
    if (length != UINT64_MAX && length != want)
        return BAD("external data '%s' has length %llu, the tensor needs %zu "
                   "bytes", shown, (unsigned long long)length, want);
    size_t plen = strlen(dir) + strlen(loc) + 2;
    char *path = malloc(plen);
    if (!path) return kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
    snprintf(path, plen, "%s/%s", dir, loc);
    /* Opening a FIFO (or a device) blocks or never ends: refuse anything
    ** but a regular file before opening it. */
    struct stat sb;
    if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode)) {
        kiln_status e = BAD("external data '%s' is not a regular file", shown);
        free(path);
        return e;
    }
    kiln_status s = kiln_read_range(path, offset, want, out);
    free(path);
    return s;
}

kiln_status onnx_decode_tensor(const uint8_t *p, size_t n, const char *dir,
                               bool borrow, kiln_tensor **out) {
    pb_reader r = pb_init(p, n);
    uint32_t f;
    int wt, rc;
    int64_t dims[KILN_MAX_RANK];
    int rank = 0;
    uint64_t dtype = 0, location = 0;
    const uint8_t *raw = NULL, *name = NULL;
    size_t raw_n = 0, name_n = 0;
    bool has_raw = false, has_segment = false;
    kiln_tensor *t = NULL;
    kiln_status s;
    *out = NULL;
    while ((rc = pb_next(&r, &f, &wt)) == 1) {
        uint64_t v;
        if (f == ONNX_TENSOR_DIMS) {
            if (wt == PB_LEN) {
                const uint8_t *q;
                size_t m;
                if (pb_bytes(&r, &q, &m)) return BAD("malformed tensor dims");
                pb_reader d = pb_init(q, m);
                while (d.p < d.end) {
                    if (pb_varint(&d, &v)) return BAD("malformed tensor dims");
                    if (rank >= KILN_MAX_RANK)
                        return kiln_error(KILN_UNSUPPORTED,
                                          "tensor rank exceeds %d", KILN_MAX_RANK);
                    dims[rank++] = (int64_t)v;
                }
            } else if (wt == PB_VARINT) {
                if (pb_varint(&r, &v)) return BAD("malformed tensor dims");
                if (rank >= KILN_MAX_RANK)
                    return kiln_error(KILN_UNSUPPORTED, "tensor rank exceeds %d",
                                      KILN_MAX_RANK);
                dims[rank++] = (int64_t)v;
            } else {
                return BAD("tensor dims have wire type %d", wt);
            }
        } else if (f == ONNX_TENSOR_DATA_TYPE) {
            if (wt != PB_VARINT || pb_varint(&r, &dtype))
                return BAD("malformed tensor data_type");
        } else if (f == ONNX_TENSOR_RAW_DATA) {
            if (wt != PB_LEN || pb_bytes(&r, &raw, &raw_n))
                return BAD("malformed tensor raw_data");
            has_raw = true;
        } else if (f == ONNX_TENSOR_NAME) {
            if (wt != PB_LEN || pb_bytes(&r, &name, &name_n))
                return BAD("malformed tensor name");
        } else if (f == ONNX_TENSOR_DATA_LOCATION) {
            if (wt != PB_VARINT || pb_varint(&r, &location))
                return BAD("malformed tensor data_location");
        } else if (f == ONNX_TENSOR_SEGMENT) {
            has_segment = true;
            if (pb_skip(&r, wt)) return BAD("malformed tensor");
        } else if (pb_skip(&r, wt)) {
            return BAD("malformed tensor");
        }
    }
    if (rc < 0) return BAD("malformed tensor (bad field key)");
    char nm[160], raw_nm[128];
    snprintf(raw_nm, sizeof raw_nm, "%.*s", (int)KILN_MIN(name_n, 120),
             name ? (const char *)name : "");
    tame(nm, sizeof nm, raw_nm);
    if (has_segment)
        return kiln_error(KILN_UNSUPPORTED, "tensor '%s' is segmented", nm);
    if (!dtype_is_valid((int)dtype) || dtype > INT32_MAX)
        return BAD("tensor '%s' has invalid data_type %llu", nm,
                   (unsigned long long)dtype);
    kiln_dtype dt = (kiln_dtype)dtype;
    if (dt == KILN_DTYPE_STRING || dt == KILN_DTYPE_COMPLEX64 ||
        dt == KILN_DTYPE_COMPLEX128)
        return kiln_error(KILN_UNSUPPORTED, "tensor '%s' has type %s, which "
                          "Kiln does not support", nm, kiln_dtype_name(dt));
    for (int i = 0; i < rank; i++)
        if (dims[i] < 0)
            return BAD("tensor '%s' has negative dim %lld", nm,
                       (long long)dims[i]);
    int64_t numel = shape_numel(rank, dims);
    size_t nbytes;
    if (numel < 0 || !dtype_nbytes(dt, numel, &nbytes))
        return BAD("tensor '%s' is too large", nm);

    if (location == 1) {
        void *buf;
        s = read_external(p, n, dir, nbytes, &buf);
        if (s) {
            kiln_error_prefix("tensor '%s'", nm);
            return s;
        }
        s = tensor_wrap(dt, rank, dims, buf, &t);
        if (s) {
            kiln_aligned_free(buf);
            return s;
        }
        t->flags |= TENSOR_OWNS_DATA;
    } else if (location != 0) {
        return BAD("tensor '%s' has unknown data_location %llu", nm,
                   (unsigned long long)location);
    } else if (has_raw) {
        if (raw_n != nbytes)
            return BAD("tensor '%s' of type %s and %lld elements needs %zu "
                       "bytes of raw_data, found %zu", nm, kiln_dtype_name(dt),
                       (long long)numel, nbytes, raw_n);
        size_t es = kiln_dtype_size(dt);
        if (borrow && ((uintptr_t)raw % (es ? es : 1)) == 0 && nbytes) {
            s = tensor_wrap(dt, rank, dims, (void *)(uintptr_t)raw, &t);
            if (s) return s;
        } else {
            s = tensor_new(dt, rank, dims, &t);
            if (s) return s;
            if (nbytes) memcpy(t->data, raw, nbytes);
        }
    } else {
        int field = typed_field_for(dt);
        int64_t cnt = read_repeated(p, n, (uint32_t)field, NULL);
        bool packed4 = dt == KILN_DTYPE_INT4 || dt == KILN_DTYPE_UINT4 ||
                       dt == KILN_DTYPE_FLOAT4E2M1;
        bool packed2 = dt == KILN_DTYPE_INT2 || dt == KILN_DTYPE_UINT2;
        int64_t want = packed2 ? numel / 4 + ((numel & 3) != 0)
                       : packed4 ? numel / 2 + (numel & 1) : numel; /* no numel + 1: it may be INT64_MAX */
        if (cnt < 0) return BAD("tensor '%s' has malformed typed data", nm);
        if (cnt != want)
            return BAD("tensor '%s' has %lld elements but %lld data values",
                       nm, (long long)want, (long long)cnt);
        s = tensor_new(dt, rank, dims, &t);
        if (s) return s;
        if (cnt) {
            uint64_t *vals = malloc((size_t)cnt * sizeof *vals);
            if (!vals) {
                tensor_free(t);
                return kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
            }
            read_repeated(p, n, (uint32_t)field, vals);
            uint8_t *d = t->data;
            for (int64_t i = 0; i < cnt; i++) {
                uint64_t v = vals[i];
                switch (dt) {
                case KILN_DTYPE_FLOAT32: {
                    uint32_t b = (uint32_t)v;
                    memcpy(d + 4 * i, &b, 4);
                    break;
                }
                case KILN_DTYPE_FLOAT64: case KILN_DTYPE_INT64:
                case KILN_DTYPE_UINT64:
                    memcpy(d + 8 * i, &v, 8);
                    break;
                case KILN_DTYPE_UINT32: {
                    uint32_t b = (uint32_t)v;
                    memcpy(d + 4 * i, &b, 4);
                    break;
                }
                case KILN_DTYPE_INT32: {
                    int32_t b = (int32_t)(uint32_t)v;
                    memcpy(d + 4 * i, &b, 4);
                    break;
                }
                case KILN_DTYPE_FLOAT16: case KILN_DTYPE_BFLOAT16:
                case KILN_DTYPE_INT16: case KILN_DTYPE_UINT16: {
                    uint16_t b = (uint16_t)v;
                    memcpy(d + 2 * i, &b, 2);
                    break;
                }
                case KILN_DTYPE_BOOL:
                    d[i] = v != 0;
                    break;
                default: /* 8-bit and packed 4/2-bit types: one byte each */
                    d[i] = (uint8_t)v;
                    break;
                }
            }
            free(vals);
        } else if (numel > 0) {
            tensor_free(t);
            return BAD("tensor '%s' has no data", nm);
        }
    }
    if (name_n) {
        t->name = kiln_strndup((const char *)name, name_n);
        if (!t->name) {
            tensor_free(t);
            return kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
        }
    }
    *out = t;
    return KILN_OK;
}

/* ---- encoding */
typedef struct pb_writer {
    uint8_t *buf;
    size_t n, cap;
    bool oom;
} pb_writer;

static void pw_put(pb_writer *w, const void *p, size_t n) {
    if (w->oom) return;
    if (w->n + n > w->cap) {
        size_t cap = w->cap ? w->cap : 256;
        while (cap < w->n + n) cap *= 2;
        uint8_t *b = realloc(w->buf, cap);
        if (!b) {
            w->oom = true;
            return;
        }
        w->buf = b;
        w->cap = cap;
    }
    memcpy(w->buf + w->n, p, n);
    w->n += n;
}

static void pw_varint(pb_writer *w, uint64_t v) {
    uint8_t b[10];
    int k = 0;
    do {
        b[k] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v) b[k] |= 0x80;
        k++;
    } while (v);
    pw_put(w, b, (size_t)k);
}

static void pw_len(pb_writer *w, uint32_t field, const void *p, size_t n) {
    pw_varint(w, (uint64_t)field << 3 | PB_LEN);
    pw_varint(w, n);
    pw_put(w, p, n);
}

kiln_status onnx_encode_tensor(const kiln_tensor *t, const char *name,
                               uint8_t **out, size_t *out_size) {
    pb_writer w = {0};
    for (int i = 0; i < t->rank; i++) {
        pw_varint(&w, ONNX_TENSOR_DIMS << 3 | PB_VARINT);
        pw_varint(&w, (uint64_t)t->dims[i]);
    }
    pw_varint(&w, ONNX_TENSOR_DATA_TYPE << 3 | PB_VARINT);
    pw_varint(&w, (uint64_t)t->dtype);
    if (name && name[0]) pw_len(&w, ONNX_TENSOR_NAME, name, strlen(name));
    pw_len(&w, ONNX_TENSOR_RAW_DATA, t->data, t->nbytes);
    if (w.oom) {
        free(w.buf);
        return kiln_error(KILN_OUT_OF_MEMORY, "out of memory encoding tensor");
    }
    *out = w.buf;
    *out_size = w.n;
    return KILN_OK;
}

/* ---- public wrappers */
/* An OptionalProto of a tensor (the backend tests store optional inputs
** so): elem_type (field 2) 1 = TENSOR and tensor_value (field 3). A
** TensorProto has its data type in field 2 too, but field 3 there is the
** long-deprecated segment, which no writer of test data uses; so field 2
** == 1 with a field 3 message and nothing else but a name (field 1) reads
** as an optional. Sets *body to the tensor and returns true. (An empty
** optional is not recognized: it reads as a tensor and fails as one.) */
static bool optional_tensor_value(const uint8_t *p, size_t n, const uint8_t **body,
                                  size_t *body_n) {
    pb_reader r = pb_init(p, n);
    uint32_t f;
    int wt, rc;
    uint64_t elem = 0;
    bool has_elem = false, other = false;
    const uint8_t *v = NULL;
    size_t vn = 0;
    while ((rc = pb_next(&r, &f, &wt)) == 1) {
        if (f == 2 && wt == PB_VARINT) {
            if (pb_varint(&r, &elem)) return false;
            has_elem = true;
        } else if (f == 3 && wt == PB_LEN) {
            if (pb_bytes(&r, &v, &vn)) return false;
        } else {
            if (f != 1) other = true;
            if (pb_skip(&r, wt)) return false;
        }
    }
    if (rc < 0 || !has_elem || elem != 1 || other || !v) return false;
    *body = v;
    *body_n = vn;
    return true;
}

kiln_status kiln_tensor_load_pb(const char *path, kiln_tensor **out,
                                const char **name_out) {
    void *base;
    size_t size;
    if (!path || !out) return kiln_error(KILN_INVALID_ARGUMENT, "NULL argument");
    kiln_status s = kiln_map_file(path, &base, &size);
    if (s) return s;
    char *dir = kiln_dirname(path);
    const uint8_t *body = base;
    size_t body_n = size;
    optional_tensor_value(base, size, &body, &body_n);
    s = dir ? onnx_decode_tensor(body, body_n, dir, false, out)
            : kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
    free(dir);
    kiln_unmap_file(base, size);
    if (s) {
        kiln_error_prefix("'%s'", path);
        return s;
    }
    if (name_out) *name_out = (*out)->name ? (*out)->name : "";
    return KILN_OK;
}

kiln_status kiln_tensor_save_pb(const kiln_tensor *t, const char *name,
                                const char *path) {
    uint8_t *buf;
    size_t n;
    if (!t || !path) return kiln_error(KILN_INVALID_ARGUMENT, "NULL argument");
    kiln_status s = onnx_encode_tensor(t, name, &buf, &n);
    if (s) return s;
    s = kiln_write_atomic(path, buf, n);
    free(buf);
    return s;
}

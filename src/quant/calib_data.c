/* calib_data.c: what calibration and validation read: input sets from a
** folder (ONNX test-data layout or .npy files named after the inputs) and
** the calibration cache, a small hand-editable text file of per-tensor
** scales. Everything read from disk is checked with messages naming the
** file. */
#include "quant.h"
#include "../util/file.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <sys/stat.h>

/* ---------------------------------------------------------------- npy */
static kiln_dtype npy_dtype(const char *d) {
    static const struct { const char *s; kiln_dtype t; } map[] = {
        {"<f4", KILN_DTYPE_FLOAT32}, {"<f8", KILN_DTYPE_FLOAT64}, {"<f2", KILN_DTYPE_FLOAT16},
        {"<i8", KILN_DTYPE_INT64},   {"<i4", KILN_DTYPE_INT32},   {"|i1", KILN_DTYPE_INT8},
        {"|u1", KILN_DTYPE_UINT8},   {"|b1", KILN_DTYPE_BOOL},    {NULL, KILN_DTYPE_UNDEFINED}};
    for (int i = 0; map[i].s; i++)
        if (!strcmp(d, map[i].s)) return map[i].t;
    return KILN_DTYPE_UNDEFINED;
}

static kiln_status npy_load(const char *path, kiln_tensor **out) {
    *out = NULL;
    void *base = NULL;
    size_t size = 0;
    kiln_status st = kiln_map_file(path, &base, &size);
    if (st) return st;
    const unsigned char *b = base;
    char h[4096];
    size_t hlen = 0, off = 10;
    if (size < 10 || memcmp(b, "\x93NUMPY", 6)) goto bad;
    hlen = (size_t)b[8] | (size_t)b[9] << 8;
    if (b[6] >= 2) {
        if (size < 12) goto bad;
        hlen |= (size_t)b[10] << 16 | (size_t)b[11] << 24;
        off = 12;
    }
    if (hlen >= sizeof h || off + hlen > size) goto bad;
    memcpy(h, b + off, hlen);
    h[hlen] = 0;
    const char *d = strstr(h, "'descr':"), *fo = strstr(h, "'fortran_order':"),
               *sh = strstr(h, "'shape':");
    char ds[8] = {0};
    if (!d || !fo || !sh || sscanf(d + 8, " '%7[^']", ds) != 1) goto bad;
    const char *fv = fo + 16;
    while (*fv == ' ') fv++;
    if (!strncmp(fv, "True", 4)) {
        kiln_unmap_file(base, size);
        return kiln_error(KILN_INVALID_ARGUMENT, "%s: Fortran-order .npy is not supported "
                          "(save with C order)", path);
    }
    kiln_dtype dt = npy_dtype(ds);
    if (dt == KILN_DTYPE_UNDEFINED) {
        kiln_unmap_file(base, size);
        return kiln_error(KILN_INVALID_ARGUMENT, "%s: .npy element type '%s' is not "
                          "supported", path, ds);
    }
    int64_t dims[KILN_MAX_RANK];
    int rank = 0;
    const char *p = strchr(sh, '(');
    if (!p) goto bad;
    p++;
    for (;;) {
        while (*p == ' ' || *p == ',') p++;
        if (*p == ')') break;
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p || v < 0 || rank >= KILN_MAX_RANK) goto bad;
        dims[rank++] = v;
        p = end;
    }
    /* the data must be in the file before anything is allocated for it */
    int64_t numel = shape_numel(rank, dims);
    size_t need = 0;
    off += hlen;
    if (numel < 0 || !dtype_nbytes(dt, numel, &need) || need > size - off) goto bad;
    kiln_tensor *t = NULL;
    if ((st = tensor_new(dt, rank, dims, &t))) {
        kiln_unmap_file(base, size);
        return st;
    }
    memcpy(t->data, b + off, t->nbytes);
    kiln_unmap_file(base, size);
    *out = t;
    return KILN_OK;
bad:
    kiln_unmap_file(base, size);
    return kiln_error(KILN_INVALID_ARGUMENT, "%s: not a usable .npy file (bad header or "
                      "truncated)", path);
}

/* ---------------------------------------------------------------- dataset */
static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted entries of dir whose names start with prefix and end with suffix. */
static kiln_status list_dir(const char *dir, const char *prefix, const char *suffix,
                            char ***out, int *n_out) {
    *out = NULL;
    *n_out = 0;
    DIR *d = opendir(dir);
    if (!d) return kiln_error(KILN_INVALID_ARGUMENT, "cannot open folder '%s': %s", dir,
                              strerror(errno));
    char **v = NULL;
    int n = 0, cap = 0;
    struct dirent *e;
    size_t lp = strlen(prefix), ls = strlen(suffix);
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (e->d_name[0] == '.' || l < lp + ls || strncmp(e->d_name, prefix, lp) ||
            strcmp(e->d_name + l - ls, suffix))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **nv = realloc(v, (size_t)cap * sizeof *nv);
            if (!nv) goto oom;
            v = nv;
        }
        if (!(v[n] = kiln_strdup(e->d_name))) goto oom;
        n++;
    }
    closedir(d);
    if (n) qsort(v, (size_t)n, sizeof *v, cmp_str);
    *out = v;
    *n_out = n;
    return KILN_OK;
oom:
    closedir(d);
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
    return kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
}

static void free_list(char **v, int n) {
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
}

void quant_dataset_free(quant_dataset *d) {
    if (!d) return;
    for (int i = 0; d->t && i < d->n_sets * d->n_inputs; i++) tensor_free(d->t[i]);
    free(d->t);
    memset(d, 0, sizeof *d);
}

static kiln_status check_tensor(const ir_value *v, const kiln_tensor *t, const char *file) {
    char a[128], b[128];
    if (t->dtype != v->type.dtype)
        return kiln_error(KILN_INVALID_ARGUMENT, "%s: input '%s' must be %s, the file holds "
                          "%s", file, v->name, kiln_dtype_name(v->type.dtype),
                          kiln_dtype_name(t->dtype));
    bool ok = v->type.rank < 0 || t->rank == v->type.rank;
    for (int d = 0; ok && v->type.rank >= 0 && d < t->rank; d++)
        if (v->type.dims[d] >= 0 && v->type.dims[d] != t->dims[d]) ok = false;
    if (!ok)
        return kiln_error(KILN_INVALID_ARGUMENT, "%s: input '%s' must have shape %s, the "
                          "file holds %s", file, v->name,
                          shape_str(v->type.rank, v->type.dims, a, sizeof a),
                          shape_str(t->rank, t->dims, b, sizeof b));
    return KILN_OK;
}

static kiln_status grow_sets(quant_dataset *d, int n_sets) {
    size_t n = (size_t)n_sets * (size_t)(d->n_inputs ? d->n_inputs : 1);
    kiln_tensor **t = realloc(d->t, n * sizeof *t);
    if (!t) return kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
    size_t old = (size_t)d->n_sets * (size_t)(d->n_inputs ? d->n_inputs : 1);
    for (size_t i = old; i < n; i++) t[i] = NULL;
    d->t = t;
    d->n_sets = n_sets;
    return KILN_OK;
}

/* test_data_set_* folders with input_<k>.pb files. */
static kiln_status load_pb_sets(const char *dir, char **sets, int n_sets, const ir_graph *g,
                                quant_dataset *d) {
    kiln_status st;
    char path[4096];
    for (int s = 0; s < n_sets; s++) {
        if ((st = grow_sets(d, s + 1))) return st;
        snprintf(path, sizeof path, "%s/%s", dir, sets[s]);
        char **files;
        int nf;
        if ((st = list_dir(path, "input_", ".pb", &files, &nf))) return st;
        for (int f = 0; f < nf; f++) {
            char fp[4200];
            snprintf(fp, sizeof fp, "%.3000s/%.1000s", path, files[f]);
            kiln_tensor *t = NULL;
            const char *name = NULL;
            if ((st = kiln_tensor_load_pb(fp, &t, &name))) {
                free_list(files, nf);
                kiln_error_prefix("%s", fp);
                return st;
            }
            int k = -1;
            for (int i = 0; name && *name && i < g->n_inputs; i++)
                if (!strcmp(g->inputs[i]->name, name)) k = i;
            if (k < 0 && (!name || !*name)) k = atoi(files[f] + 6);
            if (k < 0 || k >= g->n_inputs || d->t[s * d->n_inputs + k]) {
                st = kiln_error(KILN_INVALID_ARGUMENT, "%s: holds '%s', which is not an "
                                "input of the model (or given twice)", fp,
                                name && *name ? name : "?");
                tensor_free(t);
                free_list(files, nf);
                return st;
            }
            d->t[s * d->n_inputs + k] = t;
            if ((st = check_tensor(g->inputs[k], t, fp))) {
                free_list(files, nf);
                return st;
            }
        }
        free_list(files, nf);
        for (int i = 0; i < d->n_inputs; i++)
            if (!d->t[s * d->n_inputs + i])
                return kiln_error(KILN_INVALID_ARGUMENT, "%s: no file for input '%s'", path,
                                  g->inputs[i]->name);
    }
    return KILN_OK;
}

/* NAME.npy per input. A fixed first dim B with a file holding k*B rows
** gives k sets; a symbolic first dim gives sets of up to 32 rows. */
static kiln_status load_npy_sets(const char *dir, const ir_graph *g, quant_dataset *d) {
    kiln_status st = KILN_OK;
    kiln_tensor **whole = calloc((size_t)g->n_inputs + 1, sizeof *whole);
    if (!whole) return kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
    int64_t rows = -1, per = 0;
    char path[4096];
    for (int i = 0; i < g->n_inputs; i++) {
        const ir_value *v = g->inputs[i];
        snprintf(path, sizeof path, "%s/%s.npy", dir, v->name);
        struct stat sb;
        if (stat(path, &sb)) {
            st = kiln_error(KILN_INVALID_ARGUMENT, "'%s' has no file for input '%s' (want "
                            "%s.npy)", dir, v->name, v->name);
            goto done;
        }
        if ((st = npy_load(path, &whole[i]))) goto done;
        kiln_tensor *t = whole[i];
        if (v->type.rank >= 0 && t->rank != v->type.rank) {
            char a[128], b[128];
            st = kiln_error(KILN_INVALID_ARGUMENT, "%s: input '%s' must have shape %s, the "
                            "file holds %s", path, v->name,
                            shape_str(v->type.rank, v->type.dims, a, sizeof a),
                            shape_str(t->rank, t->dims, b, sizeof b));
            goto done;
        }
        int64_t b0 = t->rank ? t->dims[0] : 1;
        int64_t want = (t->rank && v->type.rank > 0 && v->type.dims[0] >= 0) ? v->type.dims[0] : 0;
        int64_t p = want ? want : (b0 < 32 ? (b0 ? b0 : 1) : 32);
        if (want && b0 % want) {
            st = kiln_error(KILN_INVALID_ARGUMENT, "%s: input '%s' has a fixed batch of %lld; "
                            "the file's %lld rows are not a multiple of it", path, v->name,
                            (long long)want, (long long)b0);
            goto done;
        }
        int64_t r = t->rank ? (b0 + p - 1) / p : 1;
        if (rows >= 0 && r != rows) {
            st = kiln_error(KILN_INVALID_ARGUMENT, "'%s': the .npy files hold different "
                            "numbers of samples", dir);
            goto done;
        }
        rows = r;
        if (i == 0) per = p;
        else if (p != per) {
            st = kiln_error(KILN_INVALID_ARGUMENT, "'%s': inputs disagree on the batch size",
                            dir);
            goto done;
        }
    }
    if (rows <= 0) rows = 1;
    if ((st = grow_sets(d, (int)rows))) goto done;
    for (int i = 0; i < g->n_inputs; i++) {
        kiln_tensor *t = whole[i];
        size_t rowbytes = t->rank && t->dims[0] ? t->nbytes / (size_t)t->dims[0] : t->nbytes;
        for (int64_t s = 0; s < rows; s++) {
            int64_t dims[KILN_MAX_RANK];
            memcpy(dims, t->dims, sizeof dims);
            int64_t r0 = s * per, r1 = t->rank ? KILN_MIN(t->dims[0], r0 + per) : 1;
            if (t->rank) dims[0] = r1 - r0;
            kiln_tensor *c = NULL;
            if ((st = tensor_new(t->dtype, t->rank, dims, &c))) goto done;
            memcpy(c->data, (char *)t->data + (size_t)r0 * rowbytes, c->nbytes);
            d->t[s * d->n_inputs + i] = c;
            snprintf(path, sizeof path, "%s/%s.npy", dir, g->inputs[i]->name);
            if ((st = check_tensor(g->inputs[i], c, path))) goto done;
        }
    }
done:
    for (int i = 0; i < g->n_inputs; i++) tensor_free(whole[i]);
    free(whole);
    return st;
}

kiln_status quant_dataset_load(const char *dir, const ir_graph *g, int max_sets,
                               quant_dataset *d) {
    memset(d, 0, sizeof *d);
    d->n_inputs = g->n_inputs;
    struct stat sb;
    if (!dir || stat(dir, &sb))
        return kiln_error(KILN_INVALID_ARGUMENT, "data folder '%s' does not exist",
                          dir ? dir : "(null)");
    if (!S_ISDIR(sb.st_mode))
        return kiln_error(KILN_INVALID_ARGUMENT, "'%s' is not a folder", dir);
    char **sets;
    int n;
    kiln_status st = list_dir(dir, "test_data_set_", "", &sets, &n);
    if (st) return st;
    if (n) {
        if (max_sets > 0 && n > max_sets) n = max_sets;
        st = load_pb_sets(dir, sets, n, g, d);
        free_list(sets, n);
    } else {
        free_list(sets, n);
        char **npys;
        int nn;
        if ((st = list_dir(dir, "", ".npy", &npys, &nn))) return st;
        free_list(npys, nn);
        if (!nn)
            return kiln_error(KILN_INVALID_ARGUMENT, "'%s' holds neither test_data_set_* "
                              "folders nor .npy files", dir);
        st = load_npy_sets(dir, g, d);
        if (!st && max_sets > 0 && d->n_sets > max_sets) {
            for (int i = max_sets * d->n_inputs; i < d->n_sets * d->n_inputs; i++)
                tensor_free(d->t[i]);
            d->n_sets = max_sets;
        }
    }
    if (st) quant_dataset_free(d);
    return st;
}

/* ---------------------------------------------------------------- cache */
#define CACHE_MAGIC "kiln-calibration-cache"

void quant_cache_clear(quant_cache *c) {
    for (int i = 0; i < c->n; i++) free(c->e[i].name);
    free(c->e);
    memset(c, 0, sizeof *c);
}

const quant_cache_entry *quant_cache_find(const quant_cache *c, const char *name) {
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->e[i].name, name)) return &c->e[i];
    return NULL;
}

kiln_status quant_cache_read(const char *path, quant_cache *c) {
    memset(c, 0, sizeof *c);
    FILE *f = fopen(path, "r");
    if (!f) return kiln_error(KILN_IO_ERROR, "cannot open calibration cache '%s': %s", path,
                              strerror(errno));
    char line[8192];
    int ln = 0, cap = 0;
    kiln_status st = KILN_OK;
    while (fgets(line, sizeof line, f)) {
        ln++;
        size_t l = strlen(line);
        if (l == sizeof line - 1 && line[l - 1] != '\n') {
            st = kiln_error(KILN_INVALID_ARGUMENT, "%s:%d: line too long", path, ln);
            break;
        }
        while (l && (line[l - 1] == '\n' || line[l - 1] == '\r' || line[l - 1] == ' '))
            line[--l] = 0;
        if (ln == 1) {
            int ver = 0;
            if (strncmp(line, CACHE_MAGIC " ", sizeof CACHE_MAGIC) ||
                sscanf(line + sizeof CACHE_MAGIC, "%d", &ver) != 1 || ver != 1) {
                st = kiln_error(KILN_INVALID_ARGUMENT, "'%s' is not a Kiln calibration "
                                "cache (first line must be '" CACHE_MAGIC " 1')", path);
                break;
            }
            continue;
        }
        if (!l || line[0] == '#') continue;
        if (!strncmp(line, "method ", 7)) {
            snprintf(c->method, sizeof c->method, "%.31s", line + 7);
            continue;
        }
        if (!strncmp(line, "kiln ", 5)) {
            snprintf(c->version, sizeof c->version, "%.31s", line + 5);
            continue;
        }
        char *sp = strrchr(line, ' ');
        char *end = NULL;
        double s = sp ? strtod(sp + 1, &end) : 0;
        if (!sp || sp == line || !end || *end || !(s > 0) || s > 3.4e38) {
            st = kiln_error(KILN_INVALID_ARGUMENT, "%s:%d: expected 'TENSOR_NAME SCALE' with "
                            "a positive scale, got '%.200s'", path, ln, line);
            break;
        }
        *sp = 0;
        if (quant_cache_find(c, line)) {
            st = kiln_error(KILN_INVALID_ARGUMENT, "%s:%d: tensor '%s' is given twice", path,
                            ln, line);
            break;
        }
        if (c->n == cap) {
            cap = cap ? cap * 2 : 64;
            quant_cache_entry *e = realloc(c->e, (size_t)cap * sizeof *e);
            if (!e) {
                st = kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
                break;
            }
            c->e = e;
        }
        if (!(c->e[c->n].name = kiln_strdup(line))) {
            st = kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
            break;
        }
        c->e[c->n++].scale = (float)s;
    }
    if (!st && ln == 0)
        st = kiln_error(KILN_INVALID_ARGUMENT, "calibration cache '%s' is empty", path);
    fclose(f);
    if (st) quant_cache_clear(c);
    return st;
}

kiln_status quant_cache_write(const char *path, const quant_cache *c) {
    size_t cap = 256, n = 0;
    for (int i = 0; i < c->n; i++) cap += strlen(c->e[i].name) + 32;
    char *buf = malloc(cap);
    if (!buf) return kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
    n += (size_t)snprintf(buf + n, cap - n, CACHE_MAGIC " 1\nmethod %s\nkiln %s\n"
                          "# tensor_name scale (x = q * scale; q int8 with zero point 0, "
                          "or uint8 from 0 for tensors never negative such as Relu "
                          "outputs)\n", c->method, c->version);
    for (int i = 0; i < c->n; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s %.9g\n", c->e[i].name,
                              (double)c->e[i].scale);
    kiln_status st = kiln_write_atomic(path, buf, n);
    free(buf);
    return st;
}

/* tensor.c: tensor allocation, public tensor accessors and broadcasting. */
#include "tensor.h"

#include <stdio.h>

int64_t shape_numel(int rank, const int64_t *dims) {
    int64_t n = 1;
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 0) return -1;
        if (__builtin_mul_overflow(n, dims[i], &n)) return -1;
    }
    return n;
}

int64_t tensor_numel(const kiln_tensor *t) {
    return shape_numel(t->rank, t->dims);
}

kiln_status tensor_alloc(kiln_tensor *t, kiln_dtype dtype, int rank,
                         const int64_t *dims) {
    if (rank < 0 || rank > KILN_MAX_RANK)
        return kiln_error(KILN_UNSUPPORTED, "tensor rank %d exceeds %d", rank,
                          KILN_MAX_RANK);
    int64_t n = shape_numel(rank, dims);
    size_t nb;
    if (n < 0)
        return kiln_error(KILN_INVALID_ARGUMENT, "invalid tensor shape");
    if (!dtype_nbytes(dtype, n, &nb))
        return kiln_error(dtype_is_valid((int)dtype) ? KILN_OUT_OF_MEMORY
                                                     : KILN_UNSUPPORTED,
                          "cannot allocate %lld elements of %s",
                          (long long)n, kiln_dtype_name(dtype));
    void *p = kiln_aligned_alloc(nb);
    if (!p)
        return kiln_error(KILN_OUT_OF_MEMORY, "out of memory (%zu bytes)", nb);
    memset(p, 0, nb ? nb : 1);
    if (t->flags & TENSOR_OWNS_DATA) kiln_aligned_free(t->data);
    t->dtype = dtype;
    t->rank = rank;
    if (rank) memcpy(t->dims, dims, (size_t)rank * sizeof *dims);
    t->data = p;
    t->nbytes = nb;
    t->flags |= TENSOR_OWNS_DATA;
    return KILN_OK;
}

kiln_status tensor_new(kiln_dtype dtype, int rank, const int64_t *dims,
                       kiln_tensor **out) {
    kiln_tensor *t = calloc(1, sizeof *t);
    *out = NULL;
    if (!t) return kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
    kiln_status s = tensor_alloc(t, dtype, rank, dims);
    if (s) {
        free(t);
        return s;
    }
    *out = t;
    return KILN_OK;
}

kiln_status tensor_wrap(kiln_dtype dtype, int rank, const int64_t *dims,
                        void *data, kiln_tensor **out) {
    int64_t n = shape_numel(rank, dims);
    size_t nb;
    *out = NULL;
    if (rank < 0 || rank > KILN_MAX_RANK || n < 0 || !dtype_nbytes(dtype, n, &nb))
        return kiln_error(KILN_INVALID_ARGUMENT, "invalid tensor to wrap");
    kiln_tensor *t = calloc(1, sizeof *t);
    if (!t) return kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
    t->dtype = dtype;
    t->rank = rank;
    if (rank) memcpy(t->dims, dims, (size_t)rank * sizeof *dims);
    t->data = data;
    t->nbytes = nb;
    *out = t;
    return KILN_OK;
}

kiln_status tensor_clone(const kiln_tensor *src, kiln_tensor **out) {
    kiln_status s = tensor_new(src->dtype, src->rank, src->dims, out);
    if (s) return s;
    if (src->nbytes) memcpy((*out)->data, src->data, src->nbytes);
    return KILN_OK;
}

void tensor_free(kiln_tensor *t) {
    if (!t) return;
    if (t->flags & TENSOR_OWNS_DATA) kiln_aligned_free(t->data);
    free(t->name);
    free(t);
}

void shape_strides(int rank, const int64_t *dims, int64_t *strides) {
    int64_t s = 1;
    for (int i = rank - 1; i >= 0; i--) {
        strides[i] = s;
        s *= dims[i];
    }
}

bool shape_equal(int ra, const int64_t *a, int rb, const int64_t *b) {
    if (ra != rb) return false;
    for (int i = 0; i < ra; i++)
        if (a[i] != b[i]) return false;
    return true;
}

const char *shape_str(int rank, const int64_t *dims, char *buf, size_t n) {
    size_t k = 0;
    if (rank == 0) {
        snprintf(buf, n, "scalar");
        return buf;
    }
    buf[0] = 0;
    for (int i = 0; i < rank && k < n; i++) {
        int w;
        if (dims[i] >= 0)
            w = snprintf(buf + k, n - k, "%s%lld", i ? "x" : "",
                         (long long)dims[i]);
        else
            w = snprintf(buf + k, n - k, "%s?", i ? "x" : "");
        if (w < 0) break;
        k += (size_t)w;
    }
    return buf;
}

float *tensor_to_f32(const kiln_tensor *t) {
    int64_t n = tensor_numel(t);
    if (n < 0) return NULL;
    float *r = malloc((size_t)(n ? n : 1) * sizeof(float));
    if (!r) return NULL;
    if (t->dtype == KILN_DTYPE_FLOAT32) {
        if (n) memcpy(r, t->data, (size_t)n * sizeof(float));
    } else {
        for (int64_t i = 0; i < n; i++)
            r[i] = (float)dt_get_f64(t->dtype, t->data, (size_t)i);
    }
    return r;
}

void tensor_from_f32(kiln_tensor *t, const float *src) {
    int64_t n = tensor_numel(t);
    if (t->dtype == KILN_DTYPE_FLOAT32) {
        if (n > 0) memcpy(t->data, src, (size_t)n * sizeof(float));
        return;
    }
    for (int64_t i = 0; i < n; i++)
        dt_set_f64(t->dtype, t->data, (size_t)i, src[i]);
}

bool shape_broadcast(int ra, const int64_t *a, int rb, const int64_t *b,
                     int *rc, int64_t *c) {
    int r = ra > rb ? ra : rb;
    for (int i = 0; i < r; i++) {
        int64_t da = i < r - ra ? 1 : a[i - (r - ra)];
        int64_t db = i < r - rb ? 1 : b[i - (r - rb)];
        if (da == db || db == 1) c[i] = da;
        else if (da == 1) c[i] = db;
        else return false;
    }
    *rc = r;
    return true;
}

void bcast_strides(int rin, const int64_t *din, int rout,
                   int64_t *strides_out) {
    int64_t s = 1;
    for (int i = rout - 1; i >= 0; i--) {
        int j = i - (rout - rin);
        if (j < 0 || din[j] == 1) {
            strides_out[i] = 0;
        } else {
            strides_out[i] = s;
        }
        if (j >= 0) s *= din[j];
    }
}

void bcast_iter_init(bcast_iter *it, int rank, const int64_t *dims, int n,
                     const int64_t *const *strides) {
    memset(it, 0, sizeof *it);
    it->rank = rank;
    it->n = n;
    if (rank) memcpy(it->dims, dims, (size_t)rank * sizeof *dims);
    for (int j = 0; j < n; j++)
        if (rank) memcpy(it->strides[j], strides[j], (size_t)rank * sizeof(int64_t));
}

void bcast_iter_next(bcast_iter *it) {
    for (int d = it->rank - 1; d >= 0; d--) {
        it->idx[d]++;
        for (int j = 0; j < it->n; j++) it->off[j] += it->strides[j][d];
        if (it->idx[d] < it->dims[d]) return;
        for (int j = 0; j < it->n; j++)
            it->off[j] -= it->strides[j][d] * it->dims[d];
        it->idx[d] = 0;
    }
}

/* ---- public accessors */
kiln_status kiln_tensor_create(kiln_dtype dtype, int rank, const int64_t *dims,
                               kiln_tensor **out) {
    if (!out) return kiln_error(KILN_INVALID_ARGUMENT, "out is NULL");
    if (rank > 0 && !dims)
        return kiln_error(KILN_INVALID_ARGUMENT, "dims is NULL");
    if (!dtype_is_valid((int)dtype) || dtype == KILN_DTYPE_STRING)
        return kiln_error(KILN_UNSUPPORTED, "unsupported dtype %d", (int)dtype);
    return tensor_new(dtype, rank, dims, out);
}
void kiln_tensor_destroy(kiln_tensor *t) { tensor_free(t); }
kiln_dtype kiln_tensor_dtype(const kiln_tensor *t) { return t->dtype; }
int kiln_tensor_rank(const kiln_tensor *t) { return t->rank; }
const int64_t *kiln_tensor_dims(const kiln_tensor *t) { return t->dims; }
int64_t kiln_tensor_numel(const kiln_tensor *t) { return tensor_numel(t); }
size_t kiln_tensor_nbytes(const kiln_tensor *t) { return t->nbytes; }
void *kiln_tensor_data(kiln_tensor *t) { return t->data; }
const void *kiln_tensor_cdata(const kiln_tensor *t) { return t->data; }

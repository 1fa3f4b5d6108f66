/* device.c: attaching an engine of a device backend to its device. After
** the file is decoded, the device is opened (a clear error when there is no
** GPU or driver), the engine's fingerprint is checked against it, and every
** constant a device layer reads is uploaded once into one block that all
** contexts of the engine share. */
#include "runtime.h"

#define DEV_ALIGN 256 /* what cuBLASLt / cuDNN / vector loads like */

bool runtime_layer_on_device(const kiln_engine *e, int layer, int profile) {
    return (e->layers[layer].tactic[profile]->flags & TACTIC_DEVICE) != 0;
}

kiln_status runtime_attach_device(kiln_engine *e) {
    const kiln_device_ops *D = e->ops->dev;
    if (!D) return KILN_OK;
    const ir_graph *g = e->ir->graph;
    kiln_status st = D->open(&e->dev);
    if (st) return st;
    if ((st = D->check_fingerprint(e->dev, e->dev_fingerprint))) return st;
    e->dconst = calloc((size_t)g->n_values + 1, sizeof *e->dconst);
    uint64_t *off = calloc((size_t)g->n_values + 1, sizeof *off);
    if (!e->dconst || !off) {
        free(off);
        return kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
    }
    /* Constants read by a device layer of any profile. */
    uint64_t total = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *n = g->nodes[i];
        bool dev = false;
        for (int p = 0; p < e->n_profiles; p++) dev |= runtime_layer_on_device(e, i, p);
        if (!dev) continue;
        for (int k = 0; k < n->n_in; k++) {
            const ir_value *v = n->in[k];
            if (!v || !v->const_val || off[v->id]) continue;
            off[v->id] = total + 1; /* +1: 0 means "not placed" */
            total += (v->const_val->nbytes + DEV_ALIGN - 1) / DEV_ALIGN * DEV_ALIGN;
            if (!v->const_val->nbytes) total += DEV_ALIGN;
        }
    }
    e->dweights_bytes = total;
    if (total && !(st = D->alloc(e->dev, (size_t)total, &e->dweights))) {
        void *s = NULL;
        st = D->stream_create(e->dev, &s);
        for (int v = 0; !st && v < g->n_values; v++) {
            if (!off[v]) continue;
            const kiln_tensor *t = g->values[v]->const_val;
            e->dconst[v] = (uint8_t *)e->dweights + (off[v] - 1);
            st = D->copy(e->dev, e->dconst[v], t->data, t->nbytes, DEV_H2D, s);
        }
        if (!st) st = D->stream_sync(e->dev, s);
        if (s) D->stream_destroy(e->dev, s);
        if (st) kiln_error_prefix("uploading %.1f MiB of weights", (double)total / 1048576.0);
    }
    free(off);
    return st;
}

void runtime_detach_device(kiln_engine *e) {
    if (!e || !e->dev) return;
    const kiln_device_ops *D = e->ops->dev;
    if (e->dweights) D->free(e->dev, e->dweights);
    free(e->dconst);
    D->close(e->dev);
    e->dev = NULL;
    e->dweights = NULL;
    e->dconst = NULL;
}

/* ---- public device-memory helpers */
static kiln_status need_dev(const kiln_engine *e) {
    if (!e) return kiln_error(KILN_INVALID_ARGUMENT, "engine is NULL");
    if (!e->dev)
        return kiln_error(KILN_INVALID_ARGUMENT, "the engine runs on the CPU; it has no "
                          "device memory");
    return KILN_OK;
}

kiln_status kiln_engine_device_alloc(const kiln_engine *e, size_t bytes, void **out) {
    if (!out) return kiln_error(KILN_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    kiln_status st = need_dev(e);
    return st ? st : e->ops->dev->alloc(e->dev, bytes, out);
}

void kiln_engine_device_free(const kiln_engine *e, void *p) {
    if (e && e->dev && p) e->ops->dev->free(e->dev, p);
}

kiln_status kiln_engine_host_alloc(const kiln_engine *e, size_t bytes, void **out) {
    if (!out) return kiln_error(KILN_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    if (!e) return kiln_error(KILN_INVALID_ARGUMENT, "engine is NULL");
    if (!bytes) return KILN_OK;
    if (e->dev && e->ops->dev && e->ops->dev->host_alloc)
        return e->ops->dev->host_alloc(e->dev, bytes, out);
    if (!(*out = kiln_aligned_alloc(bytes)))
        return kiln_error(KILN_OUT_OF_MEMORY, "cannot allocate %zu bytes", bytes);
    return KILN_OK;
}

void kiln_engine_host_free(const kiln_engine *e, void *p) {
    if (!p) return;
    if (e && e->dev && e->ops->dev && e->ops->dev->host_free) e->ops->dev->host_free(e->dev, p);
    else kiln_aligned_free(p);
}

static kiln_status copy_sync(const kiln_engine *e, void *dst, const void *src, size_t n,
                             dev_copy_kind kind) {
    kiln_status st = need_dev(e);
    if (st) return st;
    if (n && (!dst || !src)) return kiln_error(KILN_INVALID_ARGUMENT, "NULL buffer");
    const kiln_device_ops *D = e->ops->dev;
    void *s = NULL;
    if ((st = D->stream_create(e->dev, &s))) return st;
    st = D->copy(e->dev, dst, src, n, kind, s);
    kiln_status st2 = D->stream_sync(e->dev, s);
    D->stream_destroy(e->dev, s);
    return st ? st : st2;
}

kiln_status kiln_engine_copy_to_device(const kiln_engine *e, void *dst, const void *src,
                                       size_t n) {
    return copy_sync(e, dst, src, n, DEV_H2D);
}

kiln_status kiln_engine_copy_to_host(const kiln_engine *e, void *dst, const void *src,
                                     size_t n) {
    return copy_sync(e, dst, src, n, DEV_D2H);
}

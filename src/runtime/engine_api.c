/* engine_api.c: loading engines and describing them (the public engine
** calls other than execution). */
#include "runtime.h"
#include "../ops/infer.h"
#include "../ops/layout.h"
#include "../util/file.h"

#include <stdio.h>
#include <sys/mman.h>

const char *runtime_layer_name(const ir_node *n) {
    return n->name && n->name[0] ? n->name : n->op_type;
}

static kiln_status finish_load(kiln_engine *e, kiln_engine **out) {
    kiln_status st = engine_deserialize(e->blob, e->blob_size, e);
    /* Inference at run time folds shape chains with the reference kernels,
    ** as it did when the engine was built. */
    if (!st) e->ir->eval = &ref_evaluator;
    if (!st) st = runtime_attach_device(e);
    if (st) {
        kiln_engine_free(e);
        return st;
    }
    *out = e;
    return KILN_OK;
}

kiln_status kiln_engine_load_file(const char *path, kiln_engine **out) {
    if (!path || !out) return kiln_error(KILN_INVALID_ARGUMENT, "NULL argument");
    *out = NULL;
    kiln_engine *e = calloc(1, sizeof *e);
    if (!e) return kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
    kiln_status st = kiln_map_file(path, &e->blob, &e->blob_size);
    if (st) {
        free(e);
        return st;
    }
    e->blob_mapped = true;
    st = finish_load(e, out);
    if (st) kiln_error_prefix("%s", path);
    return st;
}

kiln_status kiln_engine_load_memory(const void *data, size_t size, kiln_engine **out) {
    if (!data || !out) return kiln_error(KILN_INVALID_ARGUMENT, "NULL argument");
    *out = NULL;
    kiln_engine *e = calloc(1, sizeof *e);
    if (!e) return kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
    e->blob = kiln_aligned_alloc(size);
    if (!e->blob) {
        free(e);
        return kiln_error(KILN_OUT_OF_MEMORY, "out of memory copying the engine");
    }
    if (size) memcpy(e->blob, data, size);
    e->blob_size = size;
    return finish_load(e, out);
}

kiln_status kiln_engine_save_blob(const void *blob, size_t size, const char *path) {
    if (!blob || !path) return kiln_error(KILN_INVALID_ARGUMENT, "NULL argument");
    return kiln_write_atomic(path, blob, size);
}

void kiln_engine_free(kiln_engine *e) {
    if (!e) return;
    runtime_detach_device(e);
    engine_clear(e);
    if (e->blob_mapped) kiln_unmap_file(e->blob, e->blob_size);
    else kiln_aligned_free(e->blob);
    free(e);
}

int kiln_engine_num_inputs(const kiln_engine *e) { return e->ir->graph->n_inputs; }
int kiln_engine_num_outputs(const kiln_engine *e) { return e->ir->graph->n_outputs; }
int kiln_engine_num_profiles(const kiln_engine *e) { return e->n_profiles; }
int kiln_engine_num_layers(const kiln_engine *e) { return e->ir->graph->n_nodes; }
int kiln_engine_source_nodes(const kiln_engine *e) { return e->source_nodes; }
const char *kiln_engine_backend(const kiln_engine *e) { return e ? e->backend : ""; }
const char *kiln_engine_device_fingerprint(const kiln_engine *e) {
    return e ? e->dev_fingerprint : "";
}
int kiln_engine_layer_on_device(const kiln_engine *e, int i) {
    if (!e || i < 0 || i >= e->ir->graph->n_nodes) return 0;
    return !e->ops->dev || runtime_layer_on_device(e, i, 0);
}

const char *kiln_engine_layer_layout(const kiln_engine *e, int i) {
    if (!e || i < 0 || i >= e->ir->graph->n_nodes) return "";
    return layout_of_node(e->ir->graph->nodes[i]);
}

kiln_status kiln_engine_input(const kiln_engine *e, int i, kiln_io_info *out) {
    if (!e || !out || i < 0 || i >= e->ir->graph->n_inputs)
        return kiln_error(KILN_INVALID_ARGUMENT, "input %d out of range", i);
    ir_value_io_info(e->ir, e->ir->graph->inputs[i], out);
    return KILN_OK;
}

kiln_status kiln_engine_output(const kiln_engine *e, int i, kiln_io_info *out) {
    if (!e || !out || i < 0 || i >= e->ir->graph->n_outputs)
        return kiln_error(KILN_INVALID_ARGUMENT, "output %d out of range", i);
    ir_value_io_info(e->ir, e->ir->graph->outputs[i], out);
    return KILN_OK;
}

kiln_status kiln_engine_profile_shape(const kiln_engine *e, int profile,
                                      const char *input, int64_t *min, int64_t *opt,
                                      int64_t *max) {
    if (!e || !input) return kiln_error(KILN_INVALID_ARGUMENT, "NULL argument");
    if (profile < 0 || profile >= e->n_profiles)
        return kiln_error(KILN_INVALID_ARGUMENT, "profile %d does not exist", profile);
    const ir_graph *g = e->ir->graph;
    for (int i = 0; i < g->n_inputs; i++) {
        if (strcmp(g->inputs[i]->name, input)) continue;
        const engine_profile *p = &e->profiles[profile];
        for (int d = 0; d < g->inputs[i]->type.rank; d++) {
            if (min) min[d] = p->min[i][d];
            if (opt) opt[d] = p->opt[i][d];
            if (max) max[d] = p->max[i][d];
        }
        return KILN_OK;
    }
    return kiln_error(KILN_INVALID_ARGUMENT, "the engine has no input '%s'", input);
}

uint64_t kiln_engine_activation_bytes(const kiln_engine *e, int profile) {
    if (!e || profile < 0 || profile >= e->n_profiles) return 0;
    return e->plans[profile].total_bytes + e->plans[profile].workspace_bytes;
}

kiln_status kiln_engine_layer(const kiln_engine *e, int i, kiln_layer_info *out) {
    if (!e || !out || i < 0 || i >= e->ir->graph->n_nodes)
        return kiln_error(KILN_INVALID_ARGUMENT, "layer %d out of range", i);
    const ir_node *n = e->ir->graph->nodes[i];
    out->name = runtime_layer_name(n);
    out->op_type = n->op_type;
    out->fused_from = n->fused_from ? n->fused_from : (n->name ? n->name : "");
    out->tactic = e->layers[i].tactic[0]->name;
    out->precision = e->layers[i].precision;
    out->build_time_us = e->layers[i].time_us[0];
    return KILN_OK;
}

/* The scale tensor of a QuantizeLinear/DequantizeLinear node (float32
** constant), or NULL. */
static const kiln_tensor *qdq_scale(const ir_node *n) {
    if (!n || (n->op != OP_QuantizeLinear && n->op != OP_DequantizeLinear) || n->n_in < 2 ||
        !n->in[1] || !n->in[1]->const_val || n->in[1]->const_val->dtype != KILN_DTYPE_FLOAT32)
        return NULL;
    return n->in[1]->const_val;
}

static void quant_fill(const kiln_tensor *s, kiln_layer_quant *out, bool weight) {
    int64_t k = tensor_numel(s);
    const float *v = s->data;
    if (k <= 0) return;
    if (!weight && k == 1) {
        out->input_scale = v[0];
        return;
    }
    out->n_weight_scales = (int)KILN_MIN(k, INT32_MAX);
    out->weight_scale_min = out->weight_scale_max = v[0];
    for (int64_t j = 1; j < k; j++) {
        out->weight_scale_min = KILN_MIN(out->weight_scale_min, v[j]);
        out->weight_scale_max = KILN_MAX(out->weight_scale_max, v[j]);
    }
}

kiln_status kiln_engine_layer_quant(const kiln_engine *e, int i, kiln_layer_quant *out) {
    if (!e || !out || i < 0 || i >= e->ir->graph->n_nodes)
        return kiln_error(KILN_INVALID_ARGUMENT, "layer %d out of range", i);
    memset(out, 0, sizeof *out);
    const ir_node *n = e->ir->graph->nodes[i];
    const kiln_tensor *s = qdq_scale(n);
    if (s) {
        out->quantized = 1;
        quant_fill(s, out, tensor_numel(s) > 1);
        return KILN_OK;
    }
    for (int k = 0; k < n->n_in && k < 2; k++) {
        const ir_value *v = n->in[k];
        if (!v || !(s = qdq_scale(v->producer))) continue;
        out->quantized = 1;
        quant_fill(s, out, k == 1 && (tensor_numel(s) > 1 || (v->producer->in[0] &&
                                                             v->producer->in[0]->const_val)));
    }
    return KILN_OK;
}

/* ---- JSON */
typedef struct sbuf {
    char *p;
    size_t n, cap;
    bool oom;
} sbuf;

static void sb_put(sbuf *s, const char *str, size_t len) {
    if (s->oom) return;
    if (s->n + len + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->n + len + 1) cap *= 2;
        char *p = realloc(s->p, cap);
        if (!p) {
            s->oom = true;
            return;
        }
        s->p = p;
        s->cap = cap;
    }
    memcpy(s->p + s->n, str, len);
    s->n += len;
    s->p[s->n] = 0;
}

static void sb_printf(sbuf *s, const char *fmt, ...) KILN_PRINTF(2, 3);
static void sb_printf(sbuf *s, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (k < 0) return;
    sb_put(s, buf, (size_t)k < sizeof buf ? (size_t)k : sizeof buf - 1);
}

static void sb_str(sbuf *s, const char *str) {
    sb_put(s, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)(str ? str : ""); *p; p++) {
        if (*p == '"' || *p == '\\') {
            char esc[2] = {'\\', (char)*p};
            sb_put(s, esc, 2);
        } else if (*p < 0x20 || *p >= 0x7f) {
            sb_printf(s, "\\u%04x", *p);
        } else {
            sb_put(s, (const char *)p, 1);
        }
    }
    sb_put(s, "\"", 1);
}

static void sb_dims(sbuf *s, const ir_model *m, int rank, const int64_t *dims) {
    sb_put(s, "[", 1);
    for (int d = 0; d < rank; d++) {
        if (d) sb_put(s, ",", 1);
        if (dims[d] >= 0) sb_printf(s, "%lld", (long long)dims[d]);
        else sb_str(s, m ? (ir_dim_name(m, dims[d]) ? ir_dim_name(m, dims[d]) : "?") : "?");
    }
    sb_put(s, "]", 1);
}

static const char *precision_name(unsigned p) {
    return p == KILN_PRECISION_FP16 ? "fp16" : p == KILN_PRECISION_BF16 ? "bf16"
         : p == KILN_PRECISION_INT8 ? "int8" : p == KILN_PRECISION_FP8 ? "fp8" : "fp32";
}

kiln_status kiln_engine_describe_json(const kiln_engine *e, const kiln_context *prof,
                                      char **json_out) {
    if (!e || !json_out) return kiln_error(KILN_INVALID_ARGUMENT, "NULL argument");
    *json_out = NULL;
    const ir_graph *g = e->ir->graph;
    sbuf s = {0};
    char isa[64];
    ir_type *in = calloc((size_t)g->n_inputs + 1, sizeof *in);
    ir_type *opt = calloc((size_t)g->n_values + 1, sizeof *opt);
    if (!in || !opt) {
        free(in);
        free(opt);
        return kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
    }
    for (int i = 0; i < g->n_inputs; i++) {
        in[i] = g->inputs[i]->type;
        for (int d = 0; d < in[i].rank; d++) in[i].dims[d] = e->profiles[0].opt[i][d];
    }
    if (ir_graph_infer_types(g, in, opt)) {
        kiln_error_clear();
        for (int v = 0; v < g->n_values; v++) opt[v] = g->values[v]->type;
    }
    sb_printf(&s, "{\"kiln_version\":");
    sb_str(&s, e->lib_version);
    sb_printf(&s, ",\"format_version\":%d,\"backend\":", KILN_ENGINE_FORMAT_VERSION);
    sb_str(&s, e->backend);
    sb_printf(&s, ",\"arch\":");
    sb_str(&s, e->arch);
    sb_printf(&s, ",\"isa_required\":");
    sb_str(&s, kiln_isa_names(e->isa_required, isa, sizeof isa));
    if (e->dev_fingerprint[0]) {
        sb_printf(&s, ",\"device_fingerprint\":");
        sb_str(&s, e->dev_fingerprint);
        sb_printf(&s, ",\"device_weight_bytes\":%llu",
                  (unsigned long long)e->dweights_bytes);
        int host = 0;
        for (int i = 0; i < g->n_nodes; i++) host += !runtime_layer_on_device(e, i, 0);
        sb_printf(&s, ",\"host_fallback_layers\":%d", host);
    }
    sb_printf(&s, ",\"settings\":{\"opt_level\":%d,\"workspace_bytes\":%llu,"
              "\"precisions\":[", e->opt_level, (unsigned long long)e->workspace_limit);
    bool first = true;
    for (unsigned bit = 1; bit <= KILN_PRECISION_FP8; bit <<= 1)
        if (e->precisions & bit) {
            sb_printf(&s, "%s", first ? "" : ",");
            sb_str(&s, precision_name(bit));
            first = false;
        }
    sb_printf(&s, "]},\"source_nodes\":%d,\"num_layers\":%d,\"inputs\":[",
              e->source_nodes, g->n_nodes);
    for (int i = 0; i < g->n_inputs; i++) {
        const ir_value *v = g->inputs[i];
        sb_printf(&s, "%s{\"name\":", i ? "," : "");
        sb_str(&s, v->name);
        sb_printf(&s, ",\"dtype\":");
        sb_str(&s, kiln_dtype_name(v->type.dtype));
        sb_printf(&s, ",\"shape\":");
        sb_dims(&s, e->ir, v->type.rank, v->type.dims);
        sb_printf(&s, ",\"profiles\":[");
        for (int p = 0; p < e->n_profiles; p++) {
            sb_printf(&s, "%s{\"min\":", p ? "," : "");
            sb_dims(&s, NULL, v->type.rank, e->profiles[p].min[i]);
            sb_printf(&s, ",\"opt\":");
            sb_dims(&s, NULL, v->type.rank, e->profiles[p].opt[i]);
            sb_printf(&s, ",\"max\":");
            sb_dims(&s, NULL, v->type.rank, e->profiles[p].max[i]);
            sb_printf(&s, "}");
        }
        sb_printf(&s, "]}");
    }
    sb_printf(&s, "],\"outputs\":[");
    for (int o = 0; o < g->n_outputs; o++) {
        const ir_value *v = g->outputs[o];
        sb_printf(&s, "%s{\"name\":", o ? "," : "");
        sb_str(&s, v->name);
        sb_printf(&s, ",\"dtype\":");
        sb_str(&s, kiln_dtype_name(v->type.dtype));
        sb_printf(&s, ",\"shape\":");
        sb_dims(&s, e->ir, v->type.rank, v->type.dims);
        sb_printf(&s, "}");
    }
    sb_printf(&s, "],\"layers\":[");
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *n = g->nodes[i];
        sb_printf(&s, "%s{\"name\":", i ? "," : "");
        sb_str(&s, runtime_layer_name(n));
        sb_printf(&s, ",\"op\":");
        sb_str(&s, n->op_type);
        const char *act = ir_attr_str(n, "activation", NULL);
        if (act && act[0]) {
            sb_printf(&s, ",\"activation\":");
            sb_str(&s, act);
        }
        sb_printf(&s, ",\"fused\":[");
        const char *f = n->fused_from ? n->fused_from : n->name;
        int k = 0;
        while (f && *f) {
            const char *comma = strchr(f, ',');
            size_t len = comma ? (size_t)(comma - f) : strlen(f);
            char part[256];
            snprintf(part, sizeof part, "%.*s", (int)KILN_MIN(len, 255), f);
            sb_printf(&s, "%s", k++ ? "," : "");
            sb_str(&s, part);
            f = comma ? comma + 1 : NULL;
        }
        sb_printf(&s, "],\"precision\":");
        sb_str(&s, precision_name(e->layers[i].precision));
        if (layout_of_node(n)[0]) {
            sb_printf(&s, ",\"layout\":");
            sb_str(&s, layout_of_node(n));
        }
        sb_printf(&s, ",\"tactic\":");
        sb_str(&s, e->layers[i].tactic[0]->name);
        kiln_layer_quant lq;
        if (!kiln_engine_layer_quant(e, i, &lq) && lq.quantized) {
            sb_printf(&s, ",\"quant\":{\"input_scale\":%.9g,\"weight_scales\":%d",
                      (double)lq.input_scale, lq.n_weight_scales);
            if (lq.n_weight_scales)
                sb_printf(&s, ",\"weight_scale_min\":%.9g,\"weight_scale_max\":%.9g",
                          (double)lq.weight_scale_min, (double)lq.weight_scale_max);
            sb_printf(&s, "}");
        }
        if (e->ops->dev)
            sb_printf(&s, ",\"device\":\"%s\"",
                      runtime_layer_on_device(e, i, 0) ? e->backend : "host");
        if (e->layers[i].time_us[0] >= 0)
            sb_printf(&s, ",\"build_time_us\":%.3f", e->layers[i].time_us[0]);
        if (e->layers[i].blob && e->layers[i].blob[0])
            sb_printf(&s, ",\"prepared_bytes\":%llu",
                      (unsigned long long)e->layers[i].blob_size[0]);
        sb_printf(&s, ",\"inputs\":[");
        for (int k2 = 0; k2 < n->n_in; k2++) {
            if (k2) sb_put(&s, ",", 1);
            if (!n->in[k2]) {
                sb_printf(&s, "null");
                continue;
            }
            const ir_type *t = &opt[n->in[k2]->id];
            sb_printf(&s, "{\"name\":");
            sb_str(&s, n->in[k2]->name);
            sb_printf(&s, ",\"shape\":");
            sb_dims(&s, e->ir, t->rank < 0 ? 0 : t->rank, t->dims);
            sb_printf(&s, "%s}", n->in[k2]->const_val ? ",\"constant\":true" : "");
        }
        sb_printf(&s, "],\"outputs\":[");
        for (int o = 0; o < n->n_out; o++) {
            const ir_type *t = &opt[n->out[o]->id];
            sb_printf(&s, "%s{\"name\":", o ? "," : "");
            sb_str(&s, n->out[o]->name);
            sb_printf(&s, ",\"shape\":");
            sb_dims(&s, e->ir, t->rank < 0 ? 0 : t->rank, t->dims);
            sb_printf(&s, "}");
        }
        sb_printf(&s, "]");
        if (prof) {
            const char *nm;
            double ms;
            int runs;
            if (!kiln_context_layer_time(prof, i, &nm, &ms, &runs) && runs > 0)
                sb_printf(&s, ",\"time_ms\":%.6f", ms / runs);
        }
        sb_printf(&s, "}");
    }
    sb_printf(&s, "],\"memory\":{\"activation_bytes\":%llu,\"naive_activation_bytes\":%llu,"
              "\"workspace_bytes\":%llu,\"profiles\":[",
              (unsigned long long)e->plans[0].total_bytes,
              (unsigned long long)e->plans[0].naive_bytes,
              (unsigned long long)e->plans[0].workspace_bytes);
    for (int p = 0; p < e->n_profiles; p++)
        sb_printf(&s, "%s{\"activation_bytes\":%llu,\"naive_activation_bytes\":%llu,"
                  "\"workspace_bytes\":%llu}", p ? "," : "",
                  (unsigned long long)e->plans[p].total_bytes,
                  (unsigned long long)e->plans[p].naive_bytes,
                  (unsigned long long)e->plans[p].workspace_bytes);
    sb_printf(&s, "]}}");
    free(in);
    free(opt);
    if (s.oom) {
        free(s.p);
        return kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
    }
    *json_out = s.p;
    return KILN_OK;
}

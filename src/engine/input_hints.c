/* input_hints.c: what a graph input is for (token ids, masks, shapes), so
** tools can invent inputs a model accepts, and the source-model digest
** engines carry. Works on the IR of a model or of an engine alike. */
#include "engine.h"
#include "checksum.h"
#include "../import/model.h"

#include <ctype.h>

/* Ops whose first input reaches an output with its values unchanged (only
** the layout or type changes): an index stays an index through them. */
static bool passes_values(const char *op) {
    static const char *const ops[] = {"Cast", "Unsqueeze", "Squeeze", "Reshape",
                                      "Flatten", "Identity", "Expand", "Slice",
                                      "Transpose", NULL};
    for (int i = 0; ops[i]; i++)
        if (!strcmp(op, ops[i])) return true;
    return false;
}

/* Is input k of op a shape, axes, sizes or count operand? */
static bool shape_operand(const char *op, int k) {
    static const struct { const char *op; unsigned mask; } t[] = {
        {"Reshape", 1u << 1}, {"Expand", 1u << 1}, {"ConstantOfShape", 1u << 0},
        {"Tile", 1u << 1}, {"Range", 7u}, {"Slice", 0x1Eu}, {"Pad", 1u << 1},
        {"Resize", 0xEu}, {"Upsample", 1u << 1}, {"TopK", 1u << 1},
        {"OneHot", 1u << 1}, {"Squeeze", 1u << 1}, {"Unsqueeze", 1u << 1},
        {"Split", 1u << 1}, {"ReduceSum", 1u << 1}, {"ReduceMean", 1u << 1},
        {"ReduceMax", 1u << 1}, {"ReduceMin", 1u << 1}, {NULL, 0}};
    for (int i = 0; t[i].op; i++)
        if (!strcmp(op, t[i].op)) return k < 32 && (t[i].mask >> k & 1u);
    return false;
}

static bool name_is_mask(const char *name) {
    for (const char *p = name; *p; p++) {
        const char *w = "mask";
        int j = 0;
        while (w[j] && p[j] && tolower((unsigned char)p[j]) == w[j]) j++;
        if (!w[j]) return true;
    }
    return false;
}

static bool is_integer(kiln_dtype t) {
    return t == KILN_DTYPE_INT64 || t == KILN_DTYPE_INT32 || t == KILN_DTYPE_INT16 ||
           t == KILN_DTYPE_INT8 || t == KILN_DTYPE_UINT8 || t == KILN_DTYPE_UINT16 ||
           t == KILN_DTYPE_UINT32 || t == KILN_DTYPE_UINT64;
}

/* One pass over the (topologically ordered) main graph: which values carry
** input `which` unchanged; the first Gather or shape operand they reach
** decides. Linear in the graph's size. */
static kiln_status hint_for(const ir_model *m, int which, kiln_input_hint *out) {
    const ir_graph *g = m->graph;
    memset(out, 0, sizeof *out);
    out->consumer = "";
    if (which < 0 || which >= g->n_inputs)
        return kiln_error(KILN_INVALID_ARGUMENT, "input index %d out of range", which);
    const ir_value *in = g->inputs[which];
    if (name_is_mask(in->name)) {
        out->role = KILN_INPUT_MASK;
        return KILN_OK;
    }
    if (!is_integer(in->type.dtype)) return KILN_OK;
    bool *carries = calloc((size_t)g->n_values + 1, sizeof *carries);
    if (!carries) return kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
    carries[in->id] = true;
    int64_t bound = -1;
    const char *gather = NULL;
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *n = g->nodes[i];
        for (int k = 0; k < n->n_in; k++) {
            const ir_value *v = n->in[k];
            if (!v || v->id < 0 || v->id >= g->n_values || !carries[v->id]) continue;
            if (shape_operand(n->op_type, k)) {
                out->role = KILN_INPUT_SHAPE;
                out->consumer = n->op_type;
                free(carries);
                return KILN_OK;
            }
            if (!strcmp(n->op_type, "Gather") && k == 1 && n->in[0]) {
                const ir_type *t = &n->in[0]->type;
                int64_t axis = ir_attr_int(n, "axis", 0);
                if (axis < 0) axis += t->rank;
                if (axis >= 0 && axis < t->rank && t->dims[axis] > 0 &&
                    (bound < 0 || t->dims[axis] < bound)) {
                    bound = t->dims[axis];
                    gather = n->op_type;
                }
            } else if (k == 0 && passes_values(n->op_type)) {
                for (int o = 0; o < n->n_out; o++)
                    if (n->out[o]->id >= 0 && n->out[o]->id < g->n_values)
                        carries[n->out[o]->id] = true;
            }
        }
    }
    free(carries);
    if (bound > 0) {
        out->role = KILN_INPUT_INDEX;
        out->index_bound = bound;
        out->consumer = gather;
    }
    return KILN_OK;
}

kiln_status kiln_model_input_hint(const kiln_model *m, int i, kiln_input_hint *out) {
    if (!m || !out) return kiln_error(KILN_INVALID_ARGUMENT, "NULL argument");
    return hint_for(m->ir, i, out);
}

kiln_status kiln_engine_input_hint(const kiln_engine *e, int i, kiln_input_hint *out) {
    if (!e || !out) return kiln_error(KILN_INVALID_ARGUMENT, "NULL argument");
    return hint_for(e->ir, i, out);
}

uint64_t kiln_model_hash(const kiln_model *m) {
    return m && m->bytes ? kiln_checksum64(m->bytes, m->nbytes) : 0;
}

uint64_t kiln_engine_model_hash(const kiln_engine *e) { return e ? e->model_hash : 0; }

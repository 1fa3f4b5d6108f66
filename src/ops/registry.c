/* registry.c: op names, lookup and the schema table built from the families. */
#include "op.h"

extern const op_schema op_schemas_elementwise[];
extern const op_schema op_schemas_linalg[];
extern const op_schema op_schemas_norm[];
extern const op_schema op_schemas_conv[];
extern const op_schema op_schemas_reduce[];
extern const op_schema op_schemas_shape[];
extern const op_schema op_schemas_index[];
extern const op_schema op_schemas_rnn[];
extern const op_schema op_schemas_quant[];
extern const op_schema op_schemas_detect[];
extern const op_schema op_schemas_control[];
extern const op_schema op_schemas_fused[];
extern const op_schema op_schemas_extra[];
extern const op_schema op_schemas_layout[];

static const op_schema *const k_families[] = {
    op_schemas_elementwise,
    op_schemas_linalg,
    op_schemas_norm,
    op_schemas_conv,
    op_schemas_reduce,
    op_schemas_shape,
    op_schemas_index,
    op_schemas_rnn,
    op_schemas_quant,
    op_schemas_detect,
    op_schemas_control,
    op_schemas_fused,
    op_schemas_extra,
    op_schemas_layout,
};

static const char *const k_names[OP_COUNT_] = {
    [OP_NONE] = "<none>",
#define KILN_OP(name) [OP_##name] = #name,
#include "op_list.h"
#undef KILN_OP
};

const char *op_name(int op) {
    return op > 0 && op < OP_COUNT_ ? k_names[op] : "<none>";
}

int op_lookup_any(const char *op_type) {
    for (int i = 1; i < OP_COUNT_; i++)
        if (strcmp(k_names[i], op_type) == 0) return i;
    return OP_NONE;
}

int op_lookup(const char *op_type) {
    int op = op_lookup_any(op_type);
    return op_is_internal(op) ? OP_NONE : op;
}

const op_schema *op_schema_get(int op) {
    if (op <= 0 || op >= OP_COUNT_) return NULL;
    for (size_t f = 0; f < KILN_ARRAY_LEN(k_families); f++)
        for (const op_schema *s = k_families[f]; s->op != OP_NONE; s++)
            if (s->op == op) return s;
    return NULL;
}

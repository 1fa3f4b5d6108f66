/* ir.h: Kiln's graph IR. A model owns a main graph; graphs own values and
** nodes (kept in topological order). Values carry a dtype and a shape whose
** dims are concrete (>= 0) or symbolic (< 0, see IR_SYM). Subgraphs (If/Loop
** bodies) reference enclosing values through captures. */
#ifndef KILN_IR_H
#define KILN_IR_H

#include "../util/arena.h"
#include "../util/tensor.h"

/* A symbolic dim is stored as -(id + 1); its name is model->sym_names[id]. */
#define IR_SYM(id) (-(int64_t)(id)-1)
#define IR_SYM_ID(d) ((int)(-(d)-1))

typedef struct ir_type {
    kiln_dtype dtype; /* KILN_DTYPE_UNDEFINED while unknown */
    int rank;         /* -1 while unknown */
    int64_t dims[KILN_MAX_RANK];
} ir_type;

/* ONNX AttributeProto.AttributeType values. */
enum {
    IR_ATTR_UNDEFINED = 0, IR_ATTR_FLOAT = 1, IR_ATTR_INT = 2,
    IR_ATTR_STRING = 3, IR_ATTR_TENSOR = 4, IR_ATTR_GRAPH = 5,
    IR_ATTR_FLOATS = 6, IR_ATTR_INTS = 7, IR_ATTR_STRINGS = 8,
    IR_ATTR_TENSORS = 9, IR_ATTR_GRAPHS = 10, IR_ATTR_SPARSE_TENSOR = 11,
    IR_ATTR_SPARSE_TENSORS = 12, IR_ATTR_TYPE_PROTO = 13,
    IR_ATTR_TYPE_PROTOS = 14
};

typedef struct ir_graph ir_graph;
typedef struct ir_node ir_node;
/* Evaluates nodes on constants for folding; declared in ops/eval.h and
** handed down by the layer that creates the model. */
typedef struct op_evaluator op_evaluator;
typedef struct ir_model ir_model;

typedef struct ir_attr {
    const char *name;
    int type;          /* IR_ATTR_* */
    float f;
    int64_t i;
    const char *s;     /* NUL-terminated; s_len excludes the NUL */
    size_t s_len;
    kiln_tensor *t;
    ir_graph *g;
    int n;             /* element count of the list forms */
    float *floats;
    int64_t *ints;
    const char **strings;
    kiln_tensor **tensors;
    ir_graph **graphs;
} ir_attr;

enum {
    IR_VALUE_INPUT = 1,       /* graph input fed by the caller */
    IR_VALUE_OUTPUT = 2,      /* graph output */
    IR_VALUE_INITIALIZER = 4, /* const_val comes from an initializer */
    IR_VALUE_CAPTURE = 8      /* subgraph-local stand-in for an outer value */
};

typedef struct ir_value {
    int id;            /* index in graph->values */
    const char *name;  /* "" never: empty names mean "absent" at import */
    ir_type type;
    kiln_tensor *const_val; /* known constant contents (owned by model) */
    int64_t *sym_val;  /* symbolic contents of a small int tensor, or NULL */
    int sym_len;
    ir_node *producer;
    int producer_out;
    int n_uses;
    unsigned flags;
} ir_value;

struct ir_node {
    int index;           /* position in the graph's node list at import */
    const char *name;
    const char *op_type;
    const char *domain;
    int op;              /* OP_* from ops/op_list.h, OP_NONE if unknown */
    const struct op_schema *schema;
    int n_in;            /* explicit inputs; in[i] NULL when absent */
    int n_implicit;      /* outer values captured by subgraphs: in[n_in..] */
    ir_value **in;
    int n_out;
    ir_value **out;      /* out[i] is never NULL (absent ones get a value) */
    int n_attrs;
    ir_attr *attrs;
    ir_graph *graph;     /* owning graph */
    const char *fused_from; /* optimizer: names of the ONNX nodes this node
                               replaces, comma-separated (NULL: itself) */
    bool dead;           /* optimizer: removed, awaiting compaction */
};

struct ir_graph {
    const char *name;
    ir_model *model;
    ir_graph *parent;
    ir_node *owner;      /* node whose attribute holds this subgraph */
    int n_values, cap_values;
    ir_value **values;
    int n_nodes, cap_nodes;
    ir_node **nodes;
    int n_inputs;        /* graph inputs without initializers */
    ir_value **inputs;
    int n_outputs;
    ir_value **outputs;
    int n_captures;      /* capture_local[k] stands for capture_outer[k] */
    ir_value **capture_outer;
    ir_value **capture_local;
    /* Set by ir_graph_infer when this is an If branch that cannot be
    ** typed at the shapes in effect (the other branch could): the If takes
    ** the other branch's types, and running this branch fails at run time
    ** with its own message, as in onnxruntime, which never looks at an
    ** untaken branch. */
    bool infer_failed;
};

typedef struct ir_opset {
    const char *domain;
    int64_t version;
} ir_opset;

struct ir_model {
    kiln_arena arena;
    const char *producer;
    const char *producer_version;
    int64_t ir_version;
    int n_opsets;
    ir_opset *opsets;
    int64_t opset;      /* ai.onnx opset in effect */
    ir_graph *graph;
    int n_syms, cap_syms;
    const char **sym_names; /* NULL entries for anonymous symbols */
    int n_tensors, cap_tensors;
    kiln_tensor **tensors;  /* every tensor the model owns */
    void *map_base;     /* file mapping, if any */
    size_t map_size;
    char *dir;          /* folder for external data */
    const op_evaluator *eval; /* folds constants (inference, fold pass);
                                 NULL: nothing is folded */
};

/* ---- construction (all memory from the model's arena unless noted) */
ir_model *ir_model_new(void);
void ir_model_free(ir_model *m);
ir_graph *ir_graph_new(ir_model *m, ir_graph *parent);
ir_value *ir_value_new(ir_graph *g, const char *name);
ir_node *ir_node_new(ir_graph *g, int n_in, int n_out);
/* Registers a tensor to be freed with the model. false when out of memory
** (the tensor is freed). */
bool ir_model_own_tensor(ir_model *m, kiln_tensor *t);
/* New symbol; name may be NULL. Returns the dim value (< 0), or 0 on OOM. */
int64_t ir_model_new_sym(ir_model *m, const char *name);
/* Symbol id for a name, creating it if needed. */
int64_t ir_model_sym_named(ir_model *m, const char *name);
const char *ir_dim_name(const ir_model *m, int64_t dim);
/* The public description of v (graph input/output queries of the API):
** symbolic dims become -1, with their names in dim_names. */
void ir_value_io_info(const ir_model *m, const ir_value *v, kiln_io_info *o);

/* ---- attributes */
const ir_attr *ir_attr_find(const ir_node *n, const char *name);
int64_t ir_attr_int(const ir_node *n, const char *name, int64_t def);
float ir_attr_float(const ir_node *n, const char *name, float def);
/* NUL-terminated string, def when absent. */
const char *ir_attr_str(const ir_node *n, const char *name, const char *def);
/* List attributes: NULL (and *count 0) when absent. */
const int64_t *ir_attr_ints(const ir_node *n, const char *name, int *count);
const float *ir_attr_floats(const ir_node *n, const char *name, int *count);
const kiln_tensor *ir_attr_tensor(const ir_node *n, const char *name);
ir_graph *ir_attr_graph(const ir_node *n, const char *name);

/* ---- analysis */
/* Sorts g->nodes topologically (stable for already-sorted input). Fails with
** a message naming a node on the cycle. Recomputes use counts. */
kiln_status ir_graph_toposort(ir_graph *g);
/* Runs shape/type inference over the graph (and its subgraphs), setting
** every value's type, const_val for cheaply foldable constants, and
** sym_val. Errors name the node. */
kiln_status ir_graph_infer(ir_graph *g);
/* "node 12 'Conv_3' (Conv)" style label for messages. */
const char *ir_node_label(const ir_node *n, char *buf, size_t size);

#endif

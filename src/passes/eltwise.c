/* eltwise.c: fuses maximal trees of elementwise float ops, linked through
** intermediates that only the next op reads, into one FusedElementwise
** (program encoding in ops/fused.h). Scalar constants that do not change a
** result's shape become program constants; every other outside value is an
** input. Two ops at least; the last op keeps its name and output. */
#include "passes_util.h"
#include "../ops/fused.h"

#include <float.h>

#define MAX_INPUTS 16

/* Operand encoding while building: the register file layout is only known
** once all inputs and constants are collected. */
enum { TAG_IN = 0, TAG_CONST = 1 << 20, TAG_RES = 2 << 20, TAG_MASK = (1 << 20) - 1 };

typedef struct prog {
    ir_value *in[MAX_INPUTS];
    int n_in;
    float *k;
    int n_k, cap_k;
    int64_t *code;
    int n_code, cap_code;
} prog;

static bool fe_eligible_op(int op) {
    switch (op) {
    case OP_Add: case OP_Sub: case OP_Mul: case OP_Div: case OP_Pow:
    case OP_Max: case OP_Min: case OP_Neg: case OP_Abs: case OP_Sqrt:
    case OP_Exp: case OP_Log: case OP_Tanh: case OP_Sigmoid: case OP_Relu:
    case OP_Erf: case OP_Reciprocal: case OP_Floor: case OP_Ceil: case OP_Sin:
    case OP_Cos: case OP_Softplus: case OP_Softsign: case OP_HardSwish:
    case OP_Gelu: case OP_LeakyRelu: case OP_Elu: case OP_HardSigmoid:
    case OP_Clip:
        return true;
    default:
        return false;
    }
}

static bool is_binary(int op) {
    return op == OP_Add || op == OP_Sub || op == OP_Mul || op == OP_Div ||
           op == OP_Pow || op == OP_Max || op == OP_Min;
}

/* A one-element constant whose value float holds exactly. */
static bool scalar_const(const ir_value *v, float *out) {
    double d;
    if (!v || !v->const_val || tensor_numel(v->const_val) != 1 ||
        !ir_edit_const_uniform(v, &d) || (double)(float)d != d)
        return false;
    *out = (float)d;
    return true;
}

/* Whether n can be part of a chain (types, arity, parameter forms). */
static bool eligible(const ir_node *n, int opset) {
    if (n->dead || n->n_implicit || n->n_out != 1 || !fe_eligible_op(n->op)) return false;
    const ir_type *y = &n->out[0]->type;
    if (!pu_is_float(y->dtype) || y->rank < 0) return false;
    if (n->n_in < 1 || !n->in[0] || n->in[0]->type.dtype != y->dtype) return false;
    float f;
    if (is_binary(n->op)) {
        return opset >= 7 && n->n_in == 2 && n->in[1] &&
               n->in[1]->type.dtype == y->dtype;
    }
    if (n->op == OP_Clip) {
        if (opset < 11) return n->n_in == 1;
        for (int k = 1; k < n->n_in; k++)
            if (n->in[k] && !scalar_const(n->in[k], &f)) return false;
        return n->n_in <= 3;
    }
    if (n->op == OP_Gelu) {
        const char *ap = ir_attr_str(n, "approximate", "none");
        if (strcmp(ap, "none") && strcmp(ap, "tanh")) return false;
    }
    return n->n_in == 1;
}

static int add_const(prog *p, float v) {
    if (p->n_k == p->cap_k) {
        int cap = p->cap_k ? p->cap_k * 2 : 8;
        float *k = realloc(p->k, (size_t)cap * sizeof *k);
        if (!k) return -1;
        p->k = k;
        p->cap_k = cap;
    }
    p->k[p->n_k] = v;
    return TAG_CONST | p->n_k++;
}

static int add_input(prog *p, ir_value *v) {
    for (int i = 0; i < p->n_in; i++)
        if (p->in[i] == v) return TAG_IN | i;
    if (p->n_in == MAX_INPUTS) return -2;
    p->in[p->n_in] = v;
    return TAG_IN | p->n_in++;
}

static bool emit(prog *p, int64_t opc, int64_t a, int64_t b, int64_t c) {
    if (p->n_code + 4 > p->cap_code) {
        int cap = p->cap_code ? p->cap_code * 2 : 32;
        int64_t *code = realloc(p->code, (size_t)cap * sizeof *code);
        if (!code) return false;
        p->code = code;
        p->cap_code = cap;
    }
    int64_t *w = p->code + p->n_code;
    w[0] = opc;
    w[1] = a;
    w[2] = b;
    w[3] = c;
    p->n_code += 4;
    return true;
}

/* Register of data operand k of member n: an earlier member's result, a
** scalar constant that leaves the shape alone, or an input. <0 on failure
** (-1 OOM, -2 too many inputs). */
static int operand(prog *p, const ir_node *n, int k, const int *res_of,
                   const ir_graph *g) {
    ir_value *v = n->in[k];
    if (v->producer && v->producer->graph == g && !v->producer->dead &&
        res_of[v->producer->index] >= 0)
        return TAG_RES | res_of[v->producer->index];
    float f;
    const ir_value *other = n->n_in == 2 && is_binary(n->op) ? n->in[1 - k] : NULL;
    if (other && scalar_const(v, &f) && other->type.rank >= v->const_val->rank)
        return add_const(p, f);
    return add_input(p, v);
}

/* Program for the members (node indices, topological order). 0 ok, -1 OOM,
** -2 not expressible. */
static int build(prog *p, const ir_graph *g, const int *members, int nm,
                 int *res_of, int opset) {
    for (int t = 0; t < nm; t++) {
        const ir_node *n = g->nodes[members[t]];
        int op = n->op;
        bool tanh = op == OP_Gelu && strcmp(ir_attr_str(n, "approximate", "none"), "tanh") == 0;
        int opc = fe_op_opcode(op, tanh);
        int r[3] = {-1, -1, -1};
        if (!opc) return -2;
        r[0] = operand(p, n, 0, res_of, g);
        if (r[0] < 0) return r[0];
        if (is_binary(op)) {
            r[1] = operand(p, n, 1, res_of, g);
            if (r[1] < 0) return r[1];
        } else if (op == OP_LeakyRelu || op == OP_Elu) {
            r[1] = add_const(p, ir_attr_float(n, "alpha", op == OP_Elu ? 1.0f : 0.01f));
        } else if (op == OP_HardSigmoid) {
            r[1] = add_const(p, ir_attr_float(n, "alpha", 0.2f));
            r[2] = add_const(p, ir_attr_float(n, "beta", 0.5f));
        } else if (op == OP_Clip) {
            float f;
            if (opset < 11) {
                r[1] = add_const(p, ir_attr_float(n, "min", -FLT_MAX));
                r[2] = add_const(p, ir_attr_float(n, "max", FLT_MAX));
            } else {
                if (n->n_in >= 2 && n->in[1] && scalar_const(n->in[1], &f))
                    r[1] = add_const(p, f);
                if (n->n_in >= 3 && n->in[2] && scalar_const(n->in[2], &f))
                    r[2] = add_const(p, f);
            }
        }
        for (int k = 1; k < 3; k++)
            if (r[k] < -1) return -1; /* add_const failed (-1 means absent) */
        if (!emit(p, opc, r[0], r[1], r[2])) return -1;
        res_of[members[t]] = t;
    }
    /* final register numbers */
    int nk = p->n_k, ni = p->n_in;
    for (int i = 0; i < p->n_code; i++) {
        if (i % 4 == 0 || p->code[i] < 0) continue;
        int64_t v = p->code[i], idx = v & TAG_MASK;
        switch (v & ~(int64_t)TAG_MASK) {
        case TAG_IN: p->code[i] = idx; break;
        case TAG_CONST: p->code[i] = ni + idx; break;
        default: p->code[i] = ni + nk + idx; break;
        }
    }
    return 0;
}

static int find(int *parent, int x) {
    while (parent[x] != x) x = parent[x] = parent[parent[x]];
    return x;
}

static kiln_status run(pass_ctx *p) {
    ir_graph *g = p->g;
    int nn = g->n_nodes, nv = g->n_values, opset = (int)p->m->opset;
    kiln_status st = KILN_OK;
    int *readers = calloc((size_t)nv + 1, sizeof *readers); /* consumer nodes */
    int *parent = malloc(((size_t)nn + 1) * sizeof *parent);
    int *res_of = malloc(((size_t)nn + 1) * sizeof *res_of);
    int *members = malloc(((size_t)nn + 1) * sizeof *members);
    bool *ok = calloc((size_t)nn + 1, sizeof *ok);
    prog pr;
    memset(&pr, 0, sizeof pr);
    if (!readers || !parent || !res_of || !members || !ok) {
        st = pu_oom();
        goto done;
    }
    for (int i = 0; i < nn; i++) {
        ir_node *n = g->nodes[i];
        n->index = i;
        parent[i] = i;
        res_of[i] = -1;
        ok[i] = eligible(n, opset);
        if (n->dead) continue;
        for (int k = 0; k < n->n_in + n->n_implicit; k++) {
            ir_value *v = n->in[k];
            bool again = false;
            for (int j = 0; j < k && !again; j++) again = n->in[j] == v;
            if (v && !again && v->id >= 0 && v->id < nv && g->values[v->id] == v)
                readers[v->id]++;
        }
    }
    /* link each eligible producer into its only, eligible consumer */
    for (int i = 0; i < nn; i++) {
        ir_node *n = g->nodes[i];
        if (!ok[i]) continue;
        for (int k = 0; k < n->n_in; k++) {
            ir_value *v = n->in[k];
            ir_node *q = v ? v->producer : NULL;
            if (!q || q->graph != g || q->dead || !ok[q->index] ||
                readers[v->id] != 1 || ir_edit_is_graph_output(g, v) ||
                q->out[0]->type.dtype != n->out[0]->type.dtype)
                continue;
            if (is_binary(n->op) || k == 0) parent[find(parent, q->index)] = find(parent, i);
        }
    }
    for (int i = 0; i < nn; i++) {
        ir_node *root = g->nodes[i];
        if (!ok[i] || find(parent, i) != i) continue;
        int nm = 0;
        for (int j = 0; j <= i; j++)
            if (ok[j] && find(parent, j) == i) members[nm++] = j;
        if (nm < 2) continue;
        free(pr.k);
        free(pr.code);
        memset(&pr, 0, sizeof pr);
        for (int j = 0; j < nm; j++) res_of[members[j]] = -1;
        int rc = build(&pr, g, members, nm, res_of, opset);
        for (int j = 0; j < nm; j++) res_of[members[j]] = -1;
        if (rc == -1) {
            st = pu_oom();
            goto done;
        }
        if (rc < 0) continue;
        ir_node **srcs = malloc((size_t)nm * sizeof *srcs);
        if (!srcs) {
            st = pu_oom();
            goto done;
        }
        for (int j = 0; j < nm; j++) srcs[j] = g->nodes[members[j]];
        /* the root becomes the fused node: it keeps its name and output */
        ir_edit_set_op(root, OP_FusedElementwise);
        root->n_attrs = 0;
        bool good = ir_edit_resize_inputs(root, pr.n_in) &&
                    ir_edit_set_ints(root, "program", pr.code, pr.n_code) &&
                    ir_edit_set_floats(root, "constants", pr.k, pr.n_k);
        if (!good) {
            free(srcs);
            st = pu_oom();
            goto done;
        }
        for (int k = 0; k < pr.n_in; k++) root->in[k] = pr.in[k];
        for (int j = 0; j < nm - 1; j++) ir_edit_kill(srcs[j]);
        ir_edit_note_fused(g, root, srcs, nm);
        pass_note(p, "fused %d elementwise ops ending in '%s' (%d inputs, %d "
                  "constants)", nm, pu_name(root), pr.n_in, pr.n_k);
        free(srcs);
    }
done:
    free(pr.k);
    free(pr.code);
    free(readers);
    free(parent);
    free(res_of);
    free(members);
    free(ok);
    return st;
}

const kiln_pass pass_eltwise = {"eltwise", run};

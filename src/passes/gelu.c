/* gelu.c: recognizes GELU spelled out in elementary ops and replaces it
** with one Gelu node:
**   erf form   0.5 * x * (1 + Erf(x / sqrt(2)))               -> Gelu
**   tanh form  0.5 * x * (1 + Tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))
**                                                   -> Gelu(approximate=tanh)
** Products are matched as trees of Mul (and Div by a constant) in any
** association and operand order, with their one-element constants
** multiplied together (x / sqrt(2) or x * 0.7071..., 0.5 anywhere, x^3 as
** Pow(x, 3), x * x * x or Pow(x, 2) * x; sums as Add or two-input Sum).
** Constants must have the required values within the rounding of x's type;
** every intermediate must be read only inside the pattern and keep x's
** shape. */
#include "patterns.h"

#define SQRT1_2 0.70710678118654752440
#define SQRT_2_PI 0.79788456080286535588
#define GELU_KAPPA 0.044715

#define MAX_LEAVES 8
#define MAX_NODES 12

typedef struct {
    ir_value *leaf[MAX_LEAVES];
    ir_node *reader[MAX_LEAVES]; /* the tree node reading each leaf */
    int nl;
    ir_node *nodes[MAX_NODES];
    int nn;
    double k;       /* product of the constant factors */
    bool overflow;
} prod;

static void flatten_node(const ir_graph *g, ir_node *n, const ir_value *stop, prod *P);

/* One factor read by `reader`: a sub-product only it reads, a constant, or
** a leaf. */
static void factor(const ir_graph *g, ir_value *v, ir_node *reader, const ir_value *stop,
                   prod *P) {
    ir_node *pn = v != stop ? pt_prod(g, v) : NULL;
    double c;
    if (pn && (pn->op == OP_Mul || pn->op == OP_Div) && v->producer_out == 0 &&
        !pn->n_implicit && pt_only(g, v, reader)) {
        flatten_node(g, pn, stop, P);
    } else if (v != stop && pt_scalar(v, &c)) {
        P->k *= c;
    } else if (P->nl < MAX_LEAVES) {
        P->leaf[P->nl] = v;
        P->reader[P->nl++] = reader;
    } else {
        P->overflow = true;
    }
}

static void flatten_node(const ir_graph *g, ir_node *n, const ir_value *stop, prod *P) {
    if (P->nn >= MAX_NODES || n->n_in != 2 || !n->in[0] || !n->in[1]) {
        P->overflow = true;
        return;
    }
    P->nodes[P->nn++] = n;
    if (n->op == OP_Mul) {
        factor(g, n->in[0], n, stop, P);
        factor(g, n->in[1], n, stop, P);
        return;
    }
    /* Div: only by a constant */
    double c;
    if (!pt_scalar(n->in[1], &c) || c == 0) {
        P->overflow = true;
        return;
    }
    P->k /= c;
    factor(g, n->in[0], n, stop, P);
}

/* The product rooted at node n (a Mul, or a Div by a constant). */
static bool flatten(const ir_graph *g, ir_node *n, const ir_value *stop, prod *P) {
    memset(P, 0, sizeof *P);
    P->k = 1.0;
    if (!n || n->dead || n->n_implicit || (n->op != OP_Mul && n->op != OP_Div)) return false;
    flatten_node(g, n, stop, P);
    return !P->overflow;
}

typedef struct {
    ir_node *nodes[40];
    int n;
    bool overflow;
} node_set;

static void set_add(node_set *s, ir_node *n) {
    for (int i = 0; i < s->n; i++)
        if (s->nodes[i] == n) return;
    if (s->n < (int)KILN_ARRAY_LEN(s->nodes)) s->nodes[s->n++] = n;
    else s->overflow = true;
}

static void set_add_prod(node_set *s, const prod *P) {
    for (int i = 0; i < P->nn; i++) set_add(s, P->nodes[i]);
}

/* An Add, or a two-input Sum (ONNX's own function bodies use it). */
static bool is_add2(const ir_node *n) {
    return n && !n->n_implicit && n->n_in == 2 && (n->op == OP_Add || n->op == OP_Sum);
}

/* v = 1 + c_in(v) (Add with a constant 1 in either order): the other input. */
static ir_value *plus_one(const ir_node *add, const ir_value *v, kiln_dtype dt) {
    if (!is_add2(add)) return NULL;
    ir_value *o = pu_other_input(add, v, NULL);
    double one;
    return o && pt_scalar(o, &one) && pt_near(one, 1.0, dt) ? o : NULL;
}

/* Finds the product 0.5 * x * a above a (a read by one Mul chain): the
** node computing it, with its product in *P. */
static ir_node *find_root(const ir_graph *g, ir_value *a, const ir_value *x, prod *P) {
    ir_value *cur = a;
    for (int depth = 0; depth < 4; depth++) {
        ir_node *n = ir_edit_sole_consumer(g, cur);
        if (!n || n->n_out != 1 || (n->op != OP_Mul && n->op != OP_Div)) return NULL;
        if (n->op == OP_Div && n->in[0] != cur) return NULL;
        if (!flatten(g, n, x, P)) return NULL;
        int nx = 0, na = 0;
        for (int i = 0; i < P->nl; i++) {
            if (P->leaf[i] == x) nx++;
            else if (P->leaf[i] == a) na++;
        }
        if (P->nl == 2 && nx == 1 && na == 1 && pt_near(P->k, 0.5, x->type.dtype)) return n;
        if (nx + na != P->nl) return NULL; /* a foreign factor: not GELU */
        cur = n->out[0];
    }
    return NULL;
}

/* v = x^3 spelled as a product of x and Pow(x, integer) leaves, times
** GELU_KAPPA: adds its nodes to S. */
static bool kappa_cube(const ir_graph *g, ir_value *v, ir_node *reader, const ir_value *x,
                       node_set *S) {
    if (!pt_only(g, v, reader)) return false;
    prod P;
    if (!flatten(g, pt_prod(g, v), x, &P) || !pt_near(P.k, GELU_KAPPA, x->type.dtype))
        return false;
    int power = 0;
    for (int i = 0; i < P.nl; i++) {
        ir_value *l = P.leaf[i];
        if (l == x) {
            power++;
            continue;
        }
        ir_node *pw = pt_prod_op(g, l, OP_Pow);
        double e;
        if (!pw || pw->in[0] != x || !pt_scalar(pw->in[1], &e) || e != floor(e) || e < 1 ||
            e > 3 || !pt_only(g, l, P.reader[i]))
            return false;
        power += (int)e;
        set_add(S, pw);
    }
    if (power != 3) return false;
    set_add_prod(S, &P);
    return true;
}

/* The GELU around the Erf or Tanh node f. 1: rewritten, 0: no match, <0:
** error. */
static int try_match(pass_ctx *p, ir_node *f) {
    ir_graph *g = p->g;
    bool tanh_form = f->op == OP_Tanh;
    node_set S = {{0}, 0, false};
    ir_value *t = f->in[0];
    if (!t || f->n_implicit || !pt_only(g, t, f)) return 0;
    prod P;
    if (!flatten(g, pt_prod(g, t), NULL, &P) || P.nl != 1) return 0;
    ir_value *x = NULL;
    const ir_type *xt;
    if (!tanh_form) {
        /* Erf(x * 1/sqrt(2)) */
        x = P.leaf[0];
        if (!pu_is_float(x->type.dtype) || !pt_near(P.k, SQRT1_2, x->type.dtype)) return 0;
        set_add_prod(&S, &P);
    } else {
        /* Tanh(sqrt(2/pi) * (x + kappa * x^3)) */
        ir_value *w = P.leaf[0];
        ir_node *wadd = pt_prod(g, w);
        if (!is_add2(wadd) || w->producer_out || !pt_only(g, w, P.reader[0])) return 0;
        for (int side = 0; side < 2 && !x; side++) {
            ir_value *cx = wadd->in[side], *cv = wadd->in[1 - side];
            if (!cx || !cv || cx == cv || !pu_is_float(cx->type.dtype) ||
                !pt_near(P.k, SQRT_2_PI, cx->type.dtype))
                continue;
            node_set T = S;
            if (kappa_cube(g, cv, wadd, cx, &T)) {
                x = cx;
                S = T;
            }
        }
        if (!x) return 0;
        set_add_prod(&S, &P);
        set_add(&S, wadd);
    }
    xt = &x->type;
    set_add(&S, f);
    /* 1 + f(...) */
    ir_node *add1 = ir_edit_sole_consumer(g, f->out[0]);
    if (!plus_one(add1, f->out[0], xt->dtype)) return 0;
    set_add(&S, add1);
    ir_value *a = add1->out[0];
    /* 0.5 * x * a */
    prod R;
    ir_node *root = find_root(g, a, x, &R);
    if (!root) return 0;
    for (int i = 0; i < R.nl; i++)
        if (R.leaf[i] == a && !pt_only(g, a, R.reader[i])) return 0;
    set_add_prod(&S, &R);
    if (S.overflow) return 0;
    /* nothing may broadcast x's shape or change its type */
    for (int i = 0; i < S.n; i++) {
        const ir_type *o = &S.nodes[i]->out[0]->type;
        if (S.nodes[i]->n_out != 1 || o->dtype != xt->dtype || !pt_same_dims(o, xt)) return 0;
    }

    char name[256];
    pt_name(name, sizeof name, root, "Gelu");
    ir_node *gn = ir_edit_add_node(g, OP_Gelu, 1, 1, name);
    if (!gn) return -1;
    gn->in[0] = x;
    if (tanh_form && !ir_edit_set_str(gn, "approximate", "tanh")) return -1;
    ir_edit_set_output(gn, 0, root->out[0]);
    ir_edit_note_fused(g, gn, S.nodes, S.n);
    for (int i = 0; i < S.n; i++) ir_edit_kill(S.nodes[i]);
    char list[512];
    pass_note(p, "Gelu%s '%s' replaces %s", tanh_form ? "(tanh)" : "", gn->name,
              pt_list(list, sizeof list, S.nodes, S.n));
    return 1;
}

static kiln_status run(pass_ctx *p) {
    ir_graph *g = p->g;
    int n0 = g->n_nodes;
    for (int i = 0; i < n0; i++) {
        ir_node *n = g->nodes[i];
        if (n->dead || (n->op != OP_Erf && n->op != OP_Tanh) || n->n_in != 1 || n->n_out != 1)
            continue;
        if (try_match(p, n) < 0) return pu_oom();
    }
    return KILN_OK;
}

const kiln_pass pass_gelu = {"gelu", run};

/* layernorm.c: recognizes normalizations that exporters spell out in
** elementary ops and replaces each with one node:
**  - LayerNorm (PyTorch before opset 17, TF):
**      d = x - ReduceMean(x); v = ReduceMean(d^2)   (Pow(d, 2) or d*d)
**      n = d / Sqrt(v + eps)                        (or d * Reciprocal(...),
**                                                    or d * (1 / Sqrt(...)))
**      y = n [* gamma] [+ beta]                     -> LayerNormalization
**    and TensorFlow's batch-norm style (tf.nn.batch_normalization):
**      inv = Reciprocal(Sqrt(v + eps)) [* gamma]
**      y = x * inv + (beta - mean * inv)  or  x * inv - mean * inv
**  - RMSNorm (T5, LLaMA): the same without the mean, optionally computed in
**    float32 between Casts:  y = x / Sqrt(ReduceMean(x^2) + eps) [* gamma]
**                                                   -> RMSNormalization
** The reductions must cover the trailing axes (from `axis` on) with
** keepdims; eps must be a one-element constant added inside the Sqrt; gamma
** and beta may vary only along the normalized axes. Every intermediate must
** be read only inside the pattern, and every elementwise step must keep x's
** shape (no broadcasting that grows it). */
#include "patterns.h"

/* Trailing-axes check of a ReduceMean over a rank-r input: the first
** reduced axis in *first. */
static bool trailing_mean(const ir_node *n, int r, int *first) {
    if (n->op != OP_ReduceMean || n->n_implicit || r < 1 ||
        ir_attr_int(n, "keepdims", 1) == 0)
        return false;
    int64_t ax[KILN_MAX_RANK];
    int na = 0;
    if (n->n_in >= 2 && n->in[1]) {
        const kiln_tensor *t = n->in[1]->const_val;
        if (!t || t->dtype != KILN_DTYPE_INT64 || t->rank > 1) return false;
        int64_t cnt = tensor_numel(t);
        if (cnt > r) return false;
        for (int64_t i = 0; i < cnt; i++) ax[na++] = ((const int64_t *)t->data)[i];
    } else {
        int cnt;
        const int64_t *a = ir_attr_ints(n, "axes", &cnt);
        if (cnt > r) return false;
        for (int i = 0; i < cnt; i++) ax[na++] = a[i];
    }
    bool red[KILN_MAX_RANK] = {false};
    if (na == 0) {
        if (ir_attr_int(n, "noop_with_empty_axes", 0)) return false;
        for (int i = 0; i < r; i++) red[i] = true;
    }
    for (int i = 0; i < na; i++) {
        int64_t a = ax[i] < 0 ? ax[i] + r : ax[i];
        if (a < 0 || a >= r || red[a]) return false;
        red[a] = true;
    }
    int k = r;
    while (k > 0 && red[k - 1]) k--;
    for (int i = 0; i < k; i++)
        if (red[i]) return false;
    if (k == r) return false;
    *first = k;
    return true;
}

/* v = s^2 as Pow(s, 2) or Mul(s, s): the node, with s in *s. */
static ir_node *square_of(const ir_graph *g, const ir_value *v, ir_value **s) {
    ir_node *n = pt_prod(g, v);
    if (!n || n->n_implicit || n->n_in != 2 || !n->in[0] || !n->in[1] || v->producer_out)
        return NULL;
    double e;
    if (n->op == OP_Pow && pt_scalar(n->in[1], &e) && e == 2.0) {
        *s = n->in[0];
        return n;
    }
    if (n->op == OP_Mul && n->in[0] == n->in[1]) {
        *s = n->in[0];
        return n;
    }
    return NULL;
}

/* A constant (or value) used as gamma/beta: dims 1 outside the normalized
** axes [k, r) of x, rank at most r, same dtype as want. */
static bool affine_ok(const ir_value *w, const ir_type *x, int k, kiln_dtype want) {
    const ir_type *t = &w->type;
    if (t->dtype != want || t->rank < 0 || t->rank > x->rank) return false;
    for (int j = 0; j < t->rank; j++) {
        int axis = x->rank - t->rank + j;
        if (axis < k && t->dims[j] != 1) return false;
    }
    return true;
}

/* Float-to-float Cast producing v (the node), or NULL. */
static ir_node *float_cast(const ir_graph *g, const ir_value *v) {
    ir_node *c = pt_prod_op(g, v, OP_Cast);
    if (!c || !c->in[0] || !pu_is_float(c->in[0]->type.dtype) || !pu_is_float(v->type.dtype))
        return NULL;
    return c;
}

typedef struct {
    ir_node *nodes[16];
    int n;
} node_list;

static void add_node(node_list *l, ir_node *n) {
    if (n && l->n < (int)KILN_ARRAY_LEN(l->nodes)) l->nodes[l->n++] = n;
}

/* What a match found; emit() builds the node. */
typedef struct {
    node_list L;         /* the nodes replaced */
    bool ln;             /* LayerNorm (else RMSNorm) */
    ir_value *x, *gamma, *beta, *y;
    ir_node *last;       /* the node whose output y is */
    ir_node *in_cast;    /* RMS: a Cast of x that may have other readers */
    double eps;
    int k, r;            /* normalized axes [k, r) */
    const ir_type *dt;   /* the normalized tensor's type */
} norm_match;

/* Replaces the match with one LayerNormalization / RMSNormalization. 1:
** rewritten, 0: no match after all, <0: out of memory. */
static int emit(pass_ctx *p, norm_match *M) {
    ir_graph *g = p->g;
    kiln_dtype odt = M->y->type.dtype;
    int k = M->k, r = M->r;
    /* LayerNormalization: X, Scale, B share one type; RMSNormalization's
    ** output takes the scale's (gamma, or ones of the output type) */
    if (M->ln && (M->x->type.dtype != odt || (M->gamma && M->gamma->type.dtype != odt)))
        return 0;
    if (!M->gamma) { /* ones over the normalized dims (or one broadcast 1) */
        int64_t dims[KILN_MAX_RANK];
        int nr = r - k;
        bool stat = true;
        for (int i = 0; i < nr; i++) {
            dims[i] = M->dt->dims[k + i];
            if (dims[i] < 0) stat = false;
        }
        if (!stat) {
            nr = 1;
            dims[0] = 1;
        }
        int64_t cnt = shape_numel(nr, dims);
        if (cnt <= 0) return 0;
        double *ones = malloc((size_t)cnt * sizeof *ones);
        if (!ones) return -1;
        for (int64_t i = 0; i < cnt; i++) ones[i] = 1.0;
        M->gamma = pu_const_f64(g, odt, nr, dims, ones, M->ln ? "ln_ones" : "rms_ones");
        free(ones);
        if (!M->gamma) return -1;
    }
    char name[256];
    pt_name(name, sizeof name, M->last, M->ln ? "LayerNormalization" : "RMSNormalization");
    ir_node *fn = ir_edit_add_node(g, M->ln ? OP_LayerNormalization : OP_RMSNormalization,
                                   M->ln && M->beta ? 3 : 2, 1, name);
    if (!fn) return -1;
    fn->in[0] = M->x;
    fn->in[1] = M->gamma;
    if (M->ln && M->beta) fn->in[2] = M->beta;
    if (!ir_edit_set_int(fn, "axis", k - r) || !ir_edit_set_float(fn, "epsilon", (float)M->eps))
        return -1;
    ir_edit_set_output(fn, 0, M->y);
    node_list *L = &M->L;
    if (M->in_cast) add_node(L, M->in_cast);
    ir_edit_note_fused(g, fn, L->nodes, L->n);
    for (int i = 0; i < L->n; i++)
        if (L->nodes[i] != M->in_cast) ir_edit_kill(L->nodes[i]);
    if (M->in_cast) pt_kill_unused(g, &M->in_cast, 1);
    char list[512];
    pass_note(p, "%s '%s' (axis %d, epsilon %g) replaces %s", fn->op_type, fn->name, k - r,
              M->eps, pt_list(list, sizeof list, L->nodes, L->n));
    return 1;
}

/* The two distinct readers of v (false unless exactly two, v not a graph
** output). */
static bool two_readers(const ir_graph *g, const ir_value *v, ir_node **a, ir_node **b) {
    ir_node *cons[3];
    if (ir_edit_is_graph_output(g, v) || ir_edit_consumers(g, v, cons, 3) != 2) return false;
    *a = cons[0];
    *b = cons[1];
    return true;
}

/* TensorFlow's batch-norm style (tf.nn.batch_normalization):
**   inv = Reciprocal(Sqrt(var + eps)) [* gamma]
**   y = x * inv + (beta - mean * inv)        (or x * inv - mean * inv)
** with d = x - mean read only by the square. r: the reciprocal's output. */
static int tf_form(pass_ctx *p, norm_match *M, ir_node *sq, ir_value *d, ir_value *mean,
                   ir_value *rv) {
    ir_graph *g = p->g;
    const ir_type *dt = M->dt;
    ir_node *a, *b, *m1, *m2;
    if (ir_edit_sole_consumer(g, d) != sq) return 0;
    /* inv = r, or r * gamma when that is what the two Muls read */
    ir_value *inv = rv;
    ir_node *gm = ir_edit_sole_consumer(g, rv);
    if (gm && gm->op == OP_Mul) {
        ir_value *w = pu_other_input(gm, rv, NULL);
        if (!w || !affine_ok(w, dt, M->k, dt->dtype)) return 0;
        M->gamma = w;
        inv = gm->out[0];
        add_node(&M->L, gm);
    }
    if (!two_readers(g, inv, &a, &b) || a->op != OP_Mul || b->op != OP_Mul) return 0;
    if (pu_other_input(a, inv, NULL) == M->x && pu_other_input(b, inv, NULL) == mean) {
        m1 = a;
        m2 = b;
    } else if (pu_other_input(b, inv, NULL) == M->x && pu_other_input(a, inv, NULL) == mean) {
        m1 = b;
        m2 = a;
    } else {
        return 0;
    }
    /* mean: read by the Sub and by mean * inv */
    ir_node *c1, *c2;
    if (!two_readers(g, mean, &c1, &c2) || (c1 != m2 && c2 != m2)) return 0;
    if (!pt_same_dims(&m1->out[0]->type, dt)) return 0;
    ir_node *fin = ir_edit_sole_consumer(g, m1->out[0]);
    ir_node *t = ir_edit_sole_consumer(g, m2->out[0]);
    if (!fin || !t) return 0;
    if (fin == t && fin->op == OP_Sub && fin->n_in == 2 && fin->in[0] == m1->out[0] &&
        fin->in[1] == m2->out[0]) {
        /* x * inv - mean * inv */
    } else if (t->op == OP_Sub && t->n_in == 2 && t->in[1] == m2->out[0] && t->in[0] &&
               affine_ok(t->in[0], dt, M->k, dt->dtype) && fin->op == OP_Add &&
               pu_other_input(fin, m1->out[0], NULL) == t->out[0] &&
               pt_only(g, t->out[0], fin)) {
        M->beta = t->in[0];
        add_node(&M->L, t);
    } else {
        return 0;
    }
    if (!pt_same_dims(&fin->out[0]->type, dt) || fin->out[0]->type.dtype != dt->dtype) return 0;
    add_node(&M->L, m1);
    add_node(&M->L, m2);
    add_node(&M->L, fin);
    M->y = fin->out[0];
    M->last = fin;
    return emit(p, M);
}

/* Tries the pattern whose variance reduction is r2. 1: rewritten, 0: no
** match, <0: error. */
static int try_match(pass_ctx *p, ir_node *r2) {
    ir_graph *g = p->g;
    norm_match M;
    memset(&M, 0, sizeof M);
    node_list *L = &M.L;
    ir_value *d = NULL;
    ir_node *sq = square_of(g, r2->in[0], &d);
    if (!sq || !pt_only(g, r2->in[0], r2) || !d) return 0;
    const ir_type *dt = &d->type;
    kiln_dtype cdt = dt->dtype; /* computation type */
    int r = dt->rank, k;
    if (!pu_is_float(cdt) || !trailing_mean(r2, r, &k)) return 0;
    M.dt = dt;
    M.k = k;
    M.r = r;
    add_node(L, sq);
    add_node(L, r2);

    /* the epsilon and the square root */
    ir_value *var = r2->out[0];
    ir_node *add = ir_edit_sole_consumer(g, var);
    ir_value *ev = add && add->op == OP_Add ? pu_other_input(add, var, NULL) : NULL;
    if (!ev || !pt_scalar(ev, &M.eps) || ev->type.rank > r ||
        !pt_same_dims(&add->out[0]->type, &var->type))
        return 0;
    ir_node *sqrt_n = ir_edit_sole_consumer(g, add->out[0]);
    if (!sqrt_n || sqrt_n->op != OP_Sqrt) return 0;
    add_node(L, add);
    add_node(L, sqrt_n);

    /* LayerNorm when d = x - ReduceMean(x) over the same axes; else RMS */
    ir_node *sub = pt_prod_op(g, d, OP_Sub), *r1 = NULL;
    ir_value *mean = NULL;
    M.x = d;
    if (sub && sub->n_in == 2 && sub->in[0] && sub->in[1]) {
        r1 = pt_prod_op(g, sub->in[1], OP_ReduceMean);
        int k1;
        if (r1 && r1->in[0] == sub->in[0] && trailing_mean(r1, r, &k1) && k1 == k &&
            pt_same_dims(&sub->in[0]->type, dt) && sub->in[0]->type.dtype == cdt &&
            !ir_edit_is_graph_output(g, d)) {
            M.ln = true;
            M.x = sub->in[0];
            mean = sub->in[1];
        }
    }

    /* normalization: d / s, d * Reciprocal(s), d * (1 / s) */
    ir_value *s = sqrt_n->out[0];
    ir_node *norm = ir_edit_sole_consumer(g, s), *recip = NULL;
    if (!norm) return 0;
    if (norm->op == OP_Div) {
        double one;
        if (norm->n_in == 2 && norm->in[1] == s && norm->in[0] == d) {
            /* d / s */
        } else if (norm->n_in == 2 && norm->in[1] == s && pt_scalar(norm->in[0], &one) &&
                   one == 1.0 && norm->in[0]->type.rank <= r) {
            recip = norm; /* 1 / s */
        } else {
            return 0;
        }
    } else if (norm->op == OP_Reciprocal) {
        recip = norm;
    } else {
        return 0;
    }
    if (recip) {
        add_node(L, recip);
        norm = ir_edit_sole_consumer(g, recip->out[0]);
        if (!norm || norm->op != OP_Mul || pu_other_input(norm, recip->out[0], NULL) != d) {
            if (!M.ln) return 0;
            add_node(L, sub);
            add_node(L, r1);
            return tf_form(p, &M, sq, d, mean, recip->out[0]);
        }
    }
    add_node(L, norm);
    if (!pt_same_dims(&norm->out[0]->type, dt) || norm->out[0]->type.dtype != cdt) return 0;
    if (M.ln) {
        /* d must be read by the square and the normalization only, the
        ** mean by the Sub only */
        ir_node *c1, *c2;
        if (!two_readers(g, d, &c1, &c2) || !((c1 == sq && c2 == norm) || (c1 == norm && c2 == sq)) ||
            !pt_only(g, mean, sub))
            return 0;
        add_node(L, sub);
        add_node(L, r1);
    } else {
        /* RMS over a float32 copy of a narrower tensor: read the original */
        M.in_cast = float_cast(g, M.x);
        if (M.in_cast) M.x = M.in_cast->in[0];
    }

    /* optional (Cast), gamma, beta */
    ir_value *y = norm->out[0];
    M.last = norm;
    ir_node *nx = ir_edit_sole_consumer(g, y), *out_cast = NULL;
    if (!M.ln && nx && nx->op == OP_Cast && (out_cast = float_cast(g, nx->out[0]))) {
        add_node(L, out_cast);
        M.last = out_cast;
        y = out_cast->out[0];
        nx = ir_edit_sole_consumer(g, y);
    }
    kiln_dtype odt = y->type.dtype;
    if (nx && nx->op == OP_Mul) {
        ir_value *w = pu_other_input(nx, y, NULL);
        if (w && affine_ok(w, dt, k, odt) && pt_same_dims(&nx->out[0]->type, dt)) {
            M.gamma = w;
            M.last = nx;
            add_node(L, nx);
            y = nx->out[0];
            nx = ir_edit_sole_consumer(g, y);
        }
    }
    if (M.ln && nx && nx->op == OP_Add) {
        ir_value *b = pu_other_input(nx, y, NULL);
        if (b && affine_ok(b, dt, k, odt) && pt_same_dims(&nx->out[0]->type, dt)) {
            M.beta = b;
            M.last = nx;
            add_node(L, nx);
            y = nx->out[0];
        }
    }
    M.y = y;
    return emit(p, &M);
}

static kiln_status run(pass_ctx *p) {
    ir_graph *g = p->g;
    int n0 = g->n_nodes; /* nodes added by the pass are not anchors */
    for (int i = 0; i < n0; i++) {
        ir_node *n = g->nodes[i];
        if (n->dead || n->op != OP_ReduceMean || !n->in[0] || n->n_out != 1) continue;
        int rc = try_match(p, n);
        if (rc < 0) return pu_oom();
    }
    return KILN_OK;
}

const kiln_pass pass_layernorm = {"layernorm", run};

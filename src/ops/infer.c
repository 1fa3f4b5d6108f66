/* infer.c: drives per-op inference over a graph: types, shapes (symbolic
** where unknown), symbolic contents of shape tensors, and folding of small
** all-constant nodes so shape-computing chains become static. */
#include "infer.h"
#include "eval.h"

#include <stdio.h>

/* Node outputs up to this many elements are folded at load time. Larger
** constant subgraphs are left to the optimizer, which knows the budget. */
#define FOLD_MAX_ELEMS 65536
/* Total bytes one inference pass may fold (Constant nodes excepted: their
** data is in the file already). Each fold is small, but a few bytes of
** ConstantOfShape make up to 512 KiB, so without a total a 1 MB model could
** ask for tens of GiB. Past the budget nodes are simply not folded. */
#define FOLD_BUDGET_BYTES ((size_t)256 << 20)

/* Bytes node n's folded outputs will take, or SIZE_MAX if unknown. */
static size_t fold_bytes(const ir_node *n, const ir_type *out) {
    size_t total = 0, b;
    for (int i = 0; i < n->n_out; i++) {
        int64_t k = out[i].rank < 0 ? -1 : shape_numel(out[i].rank, out[i].dims);
        if (k < 0 || !dtype_nbytes(out[i].dtype, k, &b) || kiln_add_overflow(total, b, &total))
            return SIZE_MAX;
    }
    return total;
}

/* Charges a fold to the budget; false when it does not fit. */
static bool fold_charge(size_t *spent, const ir_node *n, const ir_type *out) {
    if (n->op == OP_Constant) return true;
    size_t b = fold_bytes(n, out);
    if (b == SIZE_MAX || b > FOLD_BUDGET_BYTES - *spent) return false;
    *spent += b;
    return true;
}

static int64_t model_new_sym(void *env) {
    return ir_model_new_sym((ir_model *)env, NULL);
}

kiln_status op_infer_node(const ir_node *n, int opset, const ir_type *const *in,
                          const kiln_tensor *const *cval,
                          const int64_t *const *sval, const int *slen,
                          ir_type *out, int64_t **out_sval, int *out_slen,
                          bool runtime, void *env, int64_t (*new_sym)(void *)) {
    char lab[256];
    const op_schema *s = n->schema;
    if (!s || !s->infer)
        return kiln_error(KILN_UNSUPPORTED, "%s: this operator is not supported",
                          ir_node_label(n, lab, sizeof lab));
    if (n->n_in < s->min_in || (s->max_in >= 0 && n->n_in > s->max_in))
        return kiln_error(KILN_INVALID_MODEL, "%s: has %d inputs, the operator "
                          "takes %d to %d", ir_node_label(n, lab, sizeof lab),
                          n->n_in, s->min_in, s->max_in);
    if (n->n_out < s->min_out || (s->max_out >= 0 && n->n_out > s->max_out))
        return kiln_error(KILN_INVALID_MODEL, "%s: has %d outputs, the operator "
                          "gives %d to %d", ir_node_label(n, lab, sizeof lab),
                          n->n_out, s->min_out, s->max_out);
    ir_type **outp = calloc((size_t)(n->n_out ? n->n_out : 1), sizeof *outp);
    if (!outp) return kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
    infer_ctx c = {0};
    for (int i = 0; i < n->n_out; i++) {
        memset(&out[i], 0, sizeof out[i]);
        out[i].rank = -1;
        outp[i] = &out[i];
        if (out_sval) {
            out_sval[i] = NULL;
            out_slen[i] = 0;
        }
    }
    c.node = n;
    c.opset = opset;
    c.n_in = n->n_in;
    c.in = in;
    c.cval = cval;
    c.sval = sval;
    c.slen = slen;
    c.n_out = n->n_out;
    c.out = outp;
    c.out_sval = out_sval;
    c.out_slen = out_slen;
    c.runtime = runtime;
    c.env = env;
    c.new_sym = new_sym;
    int rc = s->infer(&c);
    free(outp);
    if (rc != 0)
        return kiln_error(runtime ? KILN_RUNTIME_ERROR : KILN_INVALID_MODEL,
                          "%s: %s", ir_node_label(n, lab, sizeof lab),
                          c.err[0] ? c.err : "shape inference failed");
    for (int i = 0; i < n->n_out; i++)
        if (out[i].rank > KILN_MAX_RANK)
            return kiln_error(KILN_UNSUPPORTED, "%s: output rank above %d",
                              ir_node_label(n, lab, sizeof lab), KILN_MAX_RANK);
    return KILN_OK;
}

/* Ops whose kernel cost is not bounded by their input and output sizes:
** windows, contractions and recurrences sized by attributes or by products
** of dims (a 250-byte model with one Conv of two ConstantOfShape inputs
** takes 1.5e9 MACs; an Einsum chain never finishes). Load-time folding is
** for shape-computing chains; these are left to the optimizer's fold pass. */
bool op_fold_cost_unbounded(int op) {
    switch (op) {
    case OP_Conv: case OP_ConvTranspose: case OP_ConvInteger:
    case OP_QLinearConv: case OP_DeformConv: case OP_CausalConvWithState:
    case OP_MaxPool: case OP_AveragePool: case OP_LpPool: case OP_MaxRoiPool:
    case OP_MaxUnpool: case OP_Col2Im: case OP_RoiAlign: case OP_LRN:
    case OP_Einsum: case OP_Det: case OP_NonMaxSuppression: case OP_Unique:
    case OP_LSTM: case OP_GRU: case OP_RNN: case OP_Scan: case OP_Attention:
    case OP_LinearAttention: case OP_DFT: case OP_STFT: case OP_TfIdfVectorizer:
    case OP_NhwcConv: case OP_NhwcMaxPool: case OP_NhwcAveragePool:
        return true;
    default:
        return false;
    }
}

/* The evaluator that folds n (its inputs all constant, it and its result
** small), or NULL when n is not folded. */
static const op_evaluator *foldable(const ir_model *m, const ir_node *n,
                                    const ir_type *out) {
    for (int i = 0; i < n->n_out; i++) { /* the result must be small too */
        int64_t k = out[i].rank < 0 ? -1 : shape_numel(out[i].rank, out[i].dims);
        if (k < 0 || (k > FOLD_MAX_ELEMS && n->op != OP_Constant)) return NULL;
    }
    if (n->n_implicit || n->op == OP_If || n->op == OP_Loop) return NULL;
    if (op_fold_cost_unbounded(n->op)) return NULL;
    /* Dropout in training mode is random. */
    if (n->op == OP_Dropout && n->n_in >= 3 && n->in[2]) return NULL;
    const op_evaluator *ev = op_evaluator_for(m, n);
    if (!ev) return NULL;
    int64_t total = 0;
    for (int i = 0; i < n->n_in; i++) {
        if (!n->in[i]) continue;
        if (!n->in[i]->const_val) return NULL;
        total += tensor_numel(n->in[i]->const_val);
    }
    return n->op == OP_Constant || total <= FOLD_MAX_ELEMS ? ev : NULL;
}

static kiln_status infer_graph(ir_graph *g, size_t *spent);

static kiln_status infer_subgraphs(ir_node *n, size_t *spent) {
    ir_graph *failed = NULL; /* an If branch that could not be typed */
    for (int k = 0; k < n->n_attrs; k++) {
        ir_attr *a = &n->attrs[k];
        int ng = a->type == IR_ATTR_GRAPH ? 1 : a->type == IR_ATTR_GRAPHS ? a->n : 0;
        for (int j = 0; j < ng; j++) {
            ir_graph *sg = a->type == IR_ATTR_GRAPH ? a->g : a->graphs[j];
            /* Loop bodies may leave their input types to the node. */
            if (n->op == OP_Loop && sg->n_inputs == n->n_in) {
                for (int i = 0; i < sg->n_inputs; i++) {
                    ir_type *bt = &sg->inputs[i]->type;
                    if (bt->dtype != KILN_DTYPE_UNDEFINED) continue;
                    if (i == 0) bt->dtype = KILN_DTYPE_INT64, bt->rank = 0;
                    else if (i == 1) bt->dtype = KILN_DTYPE_BOOL, bt->rank = 0;
                    else if (n->in[i]) *bt = n->in[i]->type;
                }
            }
            for (int c = 0; c < sg->n_captures; c++) {
                ir_value *o = sg->capture_outer[c], *l = sg->capture_local[c];
                l->type = o->type;
                l->const_val = o->const_val;
            }
            kiln_status st = infer_graph(sg, spent);
            sg->infer_failed = false;
            if (st) {
                char lab[256];
                kiln_error_prefix("in subgraph '%s' of %s", a->name,
                                  ir_node_label(n, lab, sizeof lab));
                /* An If branch that cannot be typed here is deferred to run
                ** time (see ir_graph.infer_failed), unless both are. */
                if (n->op != OP_If || st == KILN_OUT_OF_MEMORY || failed) return st;
                failed = sg;
                kiln_error_clear();
            }
        }
    }
    if (failed) failed->infer_failed = true;
    return KILN_OK;
}

static kiln_status infer_node(ir_graph *g, ir_node *n, size_t *spent) {
    ir_model *m = g->model;
    size_t ni = (size_t)(n->n_in ? n->n_in : 1), no = (size_t)(n->n_out ? n->n_out : 1);
    kiln_status st;
    /* Heap, not VLAs: a hostile node may list millions of inputs. */
    const ir_type **in = calloc(ni, sizeof *in);
    const kiln_tensor **cval = calloc(ni, sizeof *cval);
    const int64_t **sval = calloc(ni, sizeof *sval);
    int *slen = calloc(ni, sizeof *slen);
    ir_type *out = calloc(no, sizeof *out);
    int64_t **osval = calloc(no, sizeof *osval);
    int *oslen = calloc(no, sizeof *oslen);
    kiln_tensor **res = calloc(no, sizeof *res);
    if (!in || !cval || !sval || !slen || !out || !osval || !oslen || !res) {
        st = kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    for (int i = 0; i < n->n_in; i++) {
        ir_value *v = n->in[i];
        in[i] = v ? &v->type : NULL;
        cval[i] = v ? v->const_val : NULL;
        sval[i] = v ? v->sym_val : NULL;
        slen[i] = v ? v->sym_len : 0;
    }
    if ((st = infer_subgraphs(n, spent))) goto done;
    if (!n->schema) { /* unsupported: leave outputs unknown; run refuses */
        for (int i = 0; i < n->n_out; i++) n->out[i]->type.rank = -1;
        goto done;
    }
    st = op_infer_node(n, (int)m->opset, in, cval, sval, slen, out, osval,
                       oslen, false, m, model_new_sym);
    if (st) goto done;
    const op_evaluator *ev = foldable(m, n, out);
    bool fold = ev && fold_charge(spent, n, out);
    for (int i = 0; i < n->n_out; i++) {
        n->out[i]->type = out[i];
        free(n->out[i]->sym_val);
        n->out[i]->sym_val = osval[i];
        n->out[i]->sym_len = oslen[i];
        osval[i] = NULL;
    }
    if (!fold) goto done;
    if (ev->run(n, cval, res) != KILN_OK) {
        /* Not fatal here: the executor reports it with the inputs it gets. */
        kiln_error_clear();
        goto done;
    }
    for (int i = 0; i < n->n_out; i++) {
        kiln_tensor *t = res[i];
        res[i] = NULL;
        if (!ir_model_own_tensor(m, t)) {
            st = kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
            goto done;
        }
        ir_value *v = n->out[i];
        v->const_val = t;
        v->type.dtype = t->dtype;
        v->type.rank = t->rank;
        memcpy(v->type.dims, t->dims, sizeof t->dims);
    }
done:
    if (osval)
        for (size_t i = 0; i < no; i++) free(osval[i]);
    if (res)
        for (size_t i = 0; i < no; i++) tensor_free(res[i]);
    free(in); free(cval); free(sval); free(slen); free(out); free(osval);
    free(oslen); free(res);
    return st;
}

static kiln_status infer_graph(ir_graph *g, size_t *spent) {
    for (int i = 0; i < g->n_nodes; i++) {
        kiln_status st = infer_node(g, g->nodes[i], spent);
        if (st) return st;
    }
    return KILN_OK;
}

kiln_status ir_graph_infer(ir_graph *g) {
    size_t spent = 0;
    return infer_graph(g, &spent);
}

static int64_t local_sym(void *env) {
    int64_t *counter = env;
    return --*counter;
}

kiln_status ir_graph_infer_types(const ir_graph *g, const ir_type *in_types,
                                 ir_type *types) {
    int nv = g->n_values;
    kiln_status st = KILN_OK;
    const kiln_tensor **cval = calloc((size_t)nv + 1, sizeof *cval);
    bool *owned = calloc((size_t)nv + 1, sizeof *owned);
    int64_t **sval = calloc((size_t)nv + 1, sizeof *sval);
    int *slen = calloc((size_t)nv + 1, sizeof *slen);
    int64_t counter = -1;
    size_t spent = 0; /* fold budget, as in ir_graph_infer */
    int max_io = 1;
    for (int i = 0; i < g->n_nodes; i++)
        max_io = KILN_MAX(max_io, KILN_MAX(g->nodes[i]->n_in + g->nodes[i]->n_implicit,
                                           g->nodes[i]->n_out));
    const ir_type **in = calloc((size_t)max_io, sizeof *in);
    const kiln_tensor **icv = calloc((size_t)max_io, sizeof *icv);
    const int64_t **isv = calloc((size_t)max_io, sizeof *isv);
    int *isl = calloc((size_t)max_io, sizeof *isl);
    ir_type *out = calloc((size_t)max_io, sizeof *out);
    int64_t **osv = calloc((size_t)max_io, sizeof *osv);
    int *osl = calloc((size_t)max_io, sizeof *osl);
    kiln_tensor **res = calloc((size_t)max_io, sizeof *res);
    if (!cval || !owned || !sval || !slen || !in || !icv || !isv || !isl || !out ||
        !osv || !osl || !res) {
        st = kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    for (int v = 0; v < nv; v++) {
        const ir_value *val = g->values[v];
        types[v] = val->type;
        cval[v] = val->const_val;
    }
    for (int i = 0; i < g->n_inputs; i++) types[g->inputs[i]->id] = in_types[i];
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *n = g->nodes[i];
        bool all_const = n->n_implicit == 0;
        int64_t total = 0;
        for (int k = 0; k < n->n_in; k++) {
            const ir_value *v = n->in[k];
            in[k] = v ? &types[v->id] : NULL;
            icv[k] = v ? cval[v->id] : NULL;
            isv[k] = v ? sval[v->id] : NULL;
            isl[k] = v ? slen[v->id] : 0;
            if (v && !icv[k]) all_const = false;
            if (v && icv[k]) total += tensor_numel(icv[k]);
        }
        bool have_all = true;
        for (int o = 0; o < n->n_out; o++)
            if (!cval[n->out[o]->id]) have_all = false;
        if (have_all) continue; /* constant already */
        if (!n->schema) {
            for (int o = 0; o < n->n_out; o++) types[n->out[o]->id].rank = -1;
            continue;
        }
        st = op_infer_node(n, (int)g->model->opset, in, icv, isv, isl, out, osv,
                           osl, false, &counter, local_sym);
        if (st) goto done;
        for (int o = 0; o < n->n_out; o++) {
            int id = n->out[o]->id;
            types[id] = out[o];
            free(sval[id]);
            sval[id] = osv[o];
            slen[id] = osl[o];
            osv[o] = NULL;
        }
        const op_evaluator *ev = all_const ? foldable(g->model, n, out) : NULL;
        if (ev && total <= FOLD_MAX_ELEMS && fold_charge(&spent, n, out) &&
            ev->run(n, icv, res) == KILN_OK) {
            for (int o = 0; o < n->n_out; o++) {
                int id = n->out[o]->id;
                cval[id] = res[o];
                owned[id] = true;
                res[o] = NULL;
            }
        } else {
            kiln_error_clear();
        }
    }
done:
    if (owned)
        for (int v = 0; v < nv; v++)
            if (owned[v]) tensor_free((kiln_tensor *)cval[v]);
    if (sval)
        for (int v = 0; v < nv; v++) free(sval[v]);
    if (osv)
        for (int k = 0; k < max_io; k++) free(osv[k]);
    free(cval); free(owned); free(sval); free(slen); free(in); free(icv);
    free(isv); free(isl); free(out); free(osv); free(osl); free(res);
    return st;
}

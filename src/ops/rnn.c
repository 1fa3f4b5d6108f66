/* rnn.c: schemas and shape inference for the recurrent ops LSTM, GRU and RNN
** (all directions, layout 0/1, optional inputs and outputs). */
#include "op.h"

#include <strings.h>

/* Activation names the spec lists for the recurrent ops. Matched without
** regard to case, as runtimes commonly do. */
static const char *const k_rnn_acts[] = {
    "Relu", "Tanh", "Sigmoid", "Affine", "LeakyRelu", "ThresholdedRelu",
    "ScaledTanh", "HardSigmoid", "Elu", "Softsign", "Softplus",
};

/* Fails unless input i's dim k equals want (checked only when both are
** concrete: static analysis may see symbols). */
static int rnn_check_dim(infer_ctx *c, int i, const char *name, int k,
                         int64_t want) {
    const ir_type *t = ic_in(c, i);
    if (!t || t->rank <= k || want < 0 || t->dims[k] < 0) return 0;
    if (t->dims[k] != want)
        return ic_fail(c, "%s dim %d is %lld, expected %lld", name, k,
                       (long long)t->dims[k], (long long)want);
    return 0;
}

static int rnn_check_input(infer_ctx *c, int i, const char *name, int rank,
                           kiln_dtype dt) {
    const ir_type *t = ic_in(c, i);
    if (!t) return 0;
    if (t->rank >= 0 && t->rank != rank)
        return ic_fail(c, "%s must have rank %d, got %d", name, rank, t->rank);
    if (dt != KILN_DTYPE_UNDEFINED && t->dtype != KILN_DTYPE_UNDEFINED &&
        t->dtype != dt)
        return ic_fail(c, "%s must be %s, got %s", name, kiln_dtype_name(dt),
                       kiln_dtype_name(t->dtype));
    return 0;
}

/* gates: weight blocks per direction (LSTM 4, GRU 3, RNN 1); nacts:
** activations per direction (LSTM 3, GRU 2, RNN 1). */
static int rnn_infer(infer_ctx *c, int gates, int nacts) {
    const ir_node *n = c->node;
    const ir_type *x = ic_in(c, 0);
    if (!x || !ic_has(c, 1) || !ic_has(c, 2))
        return ic_fail(c, "inputs X, W and R are required");
    if (ic_require_float(c, 0)) return -1;
    kiln_dtype dt = x->dtype;
    if (rnn_check_input(c, 0, "X", 3, dt) || rnn_check_input(c, 1, "W", 3, dt) ||
        rnn_check_input(c, 2, "R", 3, dt) || rnn_check_input(c, 3, "B", 2, dt) ||
        rnn_check_input(c, 4, "sequence_lens", 1, KILN_DTYPE_INT32) ||
        rnn_check_input(c, 5, "initial_h", 3, dt))
        return -1;
    if (gates == 4 && (rnn_check_input(c, 6, "initial_c", 3, dt) ||
                       rnn_check_input(c, 7, "P", 2, dt)))
        return -1;

    const char *dir = ir_attr_str(n, "direction", "forward");
    int ndir;
    if (strcmp(dir, "forward") == 0 || strcmp(dir, "reverse") == 0) ndir = 1;
    else if (strcmp(dir, "bidirectional") == 0) ndir = 2;
    else return ic_fail(c, "unknown direction '%s'", dir);

    int64_t layout = ir_attr_int(n, "layout", 0);
    if (layout != 0 && layout != 1)
        return ic_fail(c, "layout must be 0 or 1, got %lld", (long long)layout);

    int na = 0;
    const ir_attr *acts = ir_attr_find(n, "activations");
    if (acts) {
        if (acts->type != IR_ATTR_STRINGS)
            return ic_fail(c, "activations must be a list of strings");
        na = acts->n;
        /* A single direction's list is accepted for both directions. */
        if (na != nacts * ndir && na != nacts)
            return ic_fail(c, "activations has %d entries, expected %d", na,
                           nacts * ndir);
        for (int k = 0; k < na; k++) {
            bool ok = false;
            for (size_t j = 0; j < KILN_ARRAY_LEN(k_rnn_acts); j++)
                if (acts->strings[k] && strcasecmp(acts->strings[k], k_rnn_acts[j]) == 0)
                    ok = true;
            if (!ok)
                return ic_fail(c, "unsupported activation '%s'",
                               acts->strings[k] ? acts->strings[k] : "");
        }
    }
    if (gates == 4) {
        int64_t inf = ir_attr_int(n, "input_forget", 0);
        if (inf != 0 && inf != 1)
            return ic_fail(c, "input_forget must be 0 or 1");
    }

    /* hidden size: attribute, else R's last dim, else W's rows / gates. */
    const ir_type *w = ic_in(c, 1), *r = ic_in(c, 2);
    int64_t hidden = -1;
    const ir_attr *hs = ir_attr_find(n, "hidden_size");
    if (hs) {
        if (hs->i <= 0 || hs->i > ((int64_t)1 << 40))
            return ic_fail(c, "hidden_size must be positive, got %lld",
                           (long long)hs->i);
        hidden = hs->i;
    } else if (r->rank == 3 && r->dims[2] >= 0) {
        hidden = r->dims[2];
    } else if (w->rank == 3 && w->dims[1] >= 0) {
        if (w->dims[1] % gates)
            return ic_fail(c, "W dim 1 (%lld) is not a multiple of %d",
                           (long long)w->dims[1], gates);
        hidden = w->dims[1] / gates;
    }

    int64_t seq = -1, batch = -1, isz = -1;
    if (x->rank == 3) {
        seq = x->dims[layout ? 1 : 0];
        batch = x->dims[layout ? 0 : 1];
        isz = x->dims[2];
    }
    int64_t gh = -1, gh2 = -1, h3 = -1;
    if (hidden >= 0 && (ic_dim_mul(c, gates, hidden, &gh, "gates x hidden_size") ||
                        ic_dim_mul(c, 2, gh, &gh2, "bias length") ||
                        ic_dim_mul(c, 3, hidden, &h3, "peephole length")))
        return -1;
    if (rnn_check_dim(c, 1, "W", 0, ndir) || rnn_check_dim(c, 1, "W", 1, gh) ||
        rnn_check_dim(c, 1, "W", 2, isz) || rnn_check_dim(c, 2, "R", 0, ndir) ||
        rnn_check_dim(c, 2, "R", 1, gh) || rnn_check_dim(c, 2, "R", 2, hidden) ||
        rnn_check_dim(c, 3, "B", 0, ndir) ||
        rnn_check_dim(c, 3, "B", 1, gh2) ||
        rnn_check_dim(c, 4, "sequence_lens", 0, batch))
        return -1;
    int hd0 = layout ? 1 : 0, hd1 = layout ? 0 : 1; /* dir, batch axes */
    for (int i = 5; i <= (gates == 4 ? 6 : 5); i++) {
        const char *nm = i == 5 ? "initial_h" : "initial_c";
        if (rnn_check_dim(c, i, nm, hd0, ndir) ||
            rnn_check_dim(c, i, nm, hd1, batch) ||
            rnn_check_dim(c, i, nm, 2, hidden))
            return -1;
    }
    if (gates == 4 && (rnn_check_dim(c, 7, "P", 0, ndir) ||
                       rnn_check_dim(c, 7, "P", 1, h3)))
        return -1;

    /* Unknown dims become fresh symbols shared by all outputs. */
    if (hidden < 0) hidden = ic_new_sym(c);
    if (seq < 0 && x->rank != 3) seq = ic_new_sym(c);
    if (batch < 0 && x->rank != 3) batch = ic_new_sym(c);
    int64_t y[4], yh[3];
    if (layout == 0) {
        y[0] = seq; y[1] = ndir; y[2] = batch; y[3] = hidden;
        yh[0] = ndir; yh[1] = batch; yh[2] = hidden;
    } else {
        y[0] = batch; y[1] = seq; y[2] = ndir; y[3] = hidden;
        yh[0] = batch; yh[1] = ndir; yh[2] = hidden;
    }
    ic_set_out(c, 0, dt, 4, y);
    for (int i = 1; i < c->n_out; i++) ic_set_out(c, i, dt, 3, yh);
    return 0;
}

static int infer_lstm(infer_ctx *c) { return rnn_infer(c, 4, 3); }
static int infer_gru(infer_ctx *c) {
    int64_t lbr = ir_attr_int(c->node, "linear_before_reset", 0);
    if (lbr != 0 && lbr != 1)
        return ic_fail(c, "linear_before_reset must be 0 or 1");
    return rnn_infer(c, 3, 2);
}
static int infer_rnn(infer_ctx *c) { return rnn_infer(c, 1, 1); }

const op_schema op_schemas_rnn[] = {
    {OP_LSTM, 3, 8, 0, 3, infer_lstm},
    {OP_GRU, 3, 6, 0, 2, infer_gru},
    {OP_RNN, 3, 6, 0, 2, infer_rnn},
    {OP_NONE, 0, 0, 0, 0, NULL},
};

/* ref_rnn.c: reference kernels for LSTM, GRU and RNN. One driver serves all
** three cells: input projections for every step are computed up front, then
** each direction walks its time steps, honouring per-batch sequence_lens. */
#include "ref.h"

#include <math.h>
#include <strings.h>

enum { CELL_RNN, CELL_GRU, CELL_LSTM };

enum {
    ACT_RELU, ACT_TANH, ACT_SIGMOID, ACT_AFFINE, ACT_LEAKYRELU,
    ACT_THRESHOLDEDRELU, ACT_SCALEDTANH, ACT_HARDSIGMOID, ACT_ELU,
    ACT_SOFTSIGN, ACT_SOFTPLUS
};

/* name, how many of (alpha, beta) it takes, and their defaults (those of
** the corresponding ONNX operators; Affine/ScaledTanh follow the old
** experimental ops). */
static const struct {
    const char *name;
    int nparams;
    float alpha, beta;
} k_acts[] = {
    [ACT_RELU] = {"Relu", 0, 0, 0},
    [ACT_TANH] = {"Tanh", 0, 0, 0},
    [ACT_SIGMOID] = {"Sigmoid", 0, 0, 0},
    [ACT_AFFINE] = {"Affine", 2, 1.0f, 0.0f},
    [ACT_LEAKYRELU] = {"LeakyRelu", 1, 0.01f, 0},
    [ACT_THRESHOLDEDRELU] = {"ThresholdedRelu", 1, 1.0f, 0},
    [ACT_SCALEDTANH] = {"ScaledTanh", 2, 1.0f, 1.0f},
    [ACT_HARDSIGMOID] = {"HardSigmoid", 2, 0.2f, 0.5f},
    [ACT_ELU] = {"Elu", 1, 1.0f, 0},
    [ACT_SOFTSIGN] = {"Softsign", 0, 0, 0},
    [ACT_SOFTPLUS] = {"Softplus", 0, 0, 0},
};

typedef struct rnn_act {
    int kind;
    float alpha, beta;
} rnn_act;

static void act_apply(const rnn_act *a, float *v, int64_t n) {
    float al = a->alpha, be = a->beta;
    switch (a->kind) {
    case ACT_RELU:
        for (int64_t i = 0; i < n; i++) v[i] = v[i] > 0 ? v[i] : 0.0f;
        break;
    case ACT_TANH:
        for (int64_t i = 0; i < n; i++) v[i] = tanhf(v[i]);
        break;
    case ACT_SIGMOID:
        /* Written to avoid exp overflow for large |x|. */
        for (int64_t i = 0; i < n; i++) {
            float x = v[i];
            if (x >= 0) v[i] = 1.0f / (1.0f + expf(-x));
            else { float e = expf(x); v[i] = e / (1.0f + e); }
        }
        break;
    case ACT_AFFINE:
        for (int64_t i = 0; i < n; i++) v[i] = al * v[i] + be;
        break;
    case ACT_LEAKYRELU:
        for (int64_t i = 0; i < n; i++) v[i] = v[i] >= 0 ? v[i] : al * v[i];
        break;
    case ACT_THRESHOLDEDRELU:
        for (int64_t i = 0; i < n; i++) v[i] = v[i] > al ? v[i] : 0.0f;
        break;
    case ACT_SCALEDTANH:
        for (int64_t i = 0; i < n; i++) v[i] = al * tanhf(be * v[i]);
        break;
    case ACT_HARDSIGMOID:
        for (int64_t i = 0; i < n; i++) {
            float y = al * v[i] + be;
            v[i] = y < 0 ? 0.0f : y > 1 ? 1.0f : y;
        }
        break;
    case ACT_ELU:
        for (int64_t i = 0; i < n; i++)
            v[i] = v[i] >= 0 ? v[i] : al * (expf(v[i]) - 1.0f);
        break;
    case ACT_SOFTSIGN:
        for (int64_t i = 0; i < n; i++) v[i] = v[i] / (1.0f + fabsf(v[i]));
        break;
    case ACT_SOFTPLUS:
        /* log(1+e^x) computed stably: max(x,0) + log1p(e^-|x|). */
        for (int64_t i = 0; i < n; i++) {
            float x = v[i];
            v[i] = (x > 0 ? x : 0.0f) + log1pf(expf(-fabsf(x)));
        }
        break;
    }
}

/* Parses activations / activation_alpha / activation_beta into acts[dir *
** nacts + k]. alpha and beta lists are consumed in order by the functions
** that take them; missing values fall back to the defaults. */
static int parse_acts(ref_ctx *c, int cell, int ndir, rnn_act *acts) {
    static const int defaults[3][3] = {
        [CELL_RNN] = {ACT_TANH},
        [CELL_GRU] = {ACT_SIGMOID, ACT_TANH},
        [CELL_LSTM] = {ACT_SIGMOID, ACT_TANH, ACT_TANH},
    };
    int nacts = cell == CELL_LSTM ? 3 : cell == CELL_GRU ? 2 : 1;
    const ir_attr *a = ir_attr_find(c->node, "activations");
    int na = 0, nal = 0, nbe = 0;
    const float *al = ir_attr_floats(c->node, "activation_alpha", &nal);
    const float *be = ir_attr_floats(c->node, "activation_beta", &nbe);
    if (a && a->type == IR_ATTR_STRINGS) na = a->n;
    if (na && na != nacts && na != nacts * ndir)
        return ref_fail(c, "activations has %d entries, expected %d", na,
                        nacts * ndir);
    int ia = 0, ib = 0;
    for (int k = 0; k < nacts * ndir; k++) {
        rnn_act *r = &acts[k];
        if (na) {
            const char *s = a->strings[k % na];
            r->kind = -1;
            for (size_t j = 0; j < KILN_ARRAY_LEN(k_acts); j++)
                if (s && strcasecmp(s, k_acts[j].name) == 0) r->kind = (int)j;
            if (r->kind < 0)
                return ref_fail(c, "unsupported activation '%s'", s ? s : "");
        } else {
            r->kind = defaults[cell][k % nacts];
        }
        r->alpha = k_acts[r->kind].alpha;
        r->beta = k_acts[r->kind].beta;
        if (k_acts[r->kind].nparams >= 1 && ia < nal) r->alpha = al[ia++];
        if (k_acts[r->kind].nparams >= 2 && ib < nbe) r->beta = be[ib++];
    }
    return 0;
}

/* Dot product with several accumulators so the compiler can pipeline. */
static float dotf(const float *a, const float *b, int64_t n) {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
    }
    for (; i < n; i++) s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

/* out[j] = v . M[j, :] for rows j0..j1 of a row-major M with n columns. */
static void matvec(const float *m, const float *v, int64_t n, int64_t j0,
                   int64_t j1, float *out) {
    for (int64_t j = j0; j < j1; j++) out[j - j0] = dotf(v, m + j * n, n);
}

static void clip_vec(float *v, int64_t n, float clip) {
    for (int64_t i = 0; i < n; i++)
        v[i] = v[i] > clip ? clip : v[i] < -clip ? -clip : v[i];
}

typedef struct rnn_job {
    int cell, ndir, layout;
    int64_t seq, batch, isz, hid, gates;
    bool reverse; /* single direction running backwards */
    bool has_clip, input_forget, lbr;
    float clip;
    const float *x, *w, *r, *b, *h0, *c0, *p;
    const int64_t *lens;
    float *y, *yh, *yc;
    rnn_act acts[6];
} rnn_job;

/* Offsets into X / Y / state tensors, which depend on layout. */
static int64_t x_off(const rnn_job *j, int64_t t, int64_t b) {
    return (j->layout ? b * j->seq + t : t * j->batch + b) * j->isz;
}
static int64_t y_off(const rnn_job *j, int64_t t, int d, int64_t b) {
    return j->layout ? ((b * j->seq + t) * j->ndir + d) * j->hid
                     : ((t * j->ndir + d) * j->batch + b) * j->hid;
}
static int64_t s_off(const rnn_job *j, int d, int64_t b) {
    return j->layout ? (b * j->ndir + d) * j->hid : ((int64_t)d * j->batch + b) * j->hid;
}

/* Runs direction d. xw holds seq*batch*G*H input projections; work holds
** the state (h, c), the gate pre-activations and a temporary (2H + 2GH). */
static void run_dir(rnn_job *j, int d, float *xw, float *work) {
    const int64_t H = j->hid, GH = j->gates * H, I = j->isz;
    const float *W = j->w + (int64_t)d * GH * I;
    const float *R = j->r + (int64_t)d * GH * H;
    const float *Wb = j->b ? j->b + (int64_t)d * 2 * GH : NULL;
    const float *Rb = Wb ? Wb + GH : NULL;
    const float *P = j->p ? j->p + (int64_t)d * 3 * H : NULL;
    const rnn_act *acts = j->acts + d * (j->cell == CELL_LSTM ? 3 : j->cell == CELL_GRU ? 2 : 1);
    bool reverse = j->ndir == 2 ? d == 1 : j->reverse;

    /* Input projections: xw[t, b, :] = x[t, b, :] . W^T + Wb (+ Rb where the
    ** recurrence bias is not gated by r). */
    for (int64_t t = 0; t < j->seq; t++)
        for (int64_t b = 0; b < j->batch; b++) {
            float *o = xw + (t * j->batch + b) * GH;
            matvec(W, j->x + x_off(j, t, b), I, 0, GH, o);
            if (Wb)
                for (int64_t g = 0; g < GH; g++) {
                    bool rb_inside = j->cell == CELL_GRU && g >= 2 * H;
                    o[g] += Wb[g] + (rb_inside ? 0.0f : Rb[g]);
                }
        }

    for (int64_t b = 0; b < j->batch; b++) {
        float *h = work, *cst = h + H, *hr = cst + H, *tmp = hr + GH;
        int64_t len = j->lens ? j->lens[b] : j->seq;
        if (j->h0) memcpy(h, j->h0 + s_off(j, d, b), (size_t)H * sizeof *h);
        else memset(h, 0, (size_t)H * sizeof *h);
        if (j->c0) memcpy(cst, j->c0 + s_off(j, d, b), (size_t)H * sizeof *h);
        else memset(cst, 0, (size_t)H * sizeof *h);
        for (int64_t s = 0; s < len; s++) {
            int64_t t = reverse ? len - 1 - s : s;
            const float *xg = xw + (t * j->batch + b) * GH;
            if (j->cell == CELL_RNN) {
                matvec(R, h, H, 0, H, hr);
                for (int64_t k = 0; k < H; k++) hr[k] += xg[k];
                if (j->has_clip) clip_vec(hr, H, j->clip);
                act_apply(&acts[0], hr, H);
                memcpy(h, hr, (size_t)H * sizeof *h);
            } else if (j->cell == CELL_GRU) {
                /* gates z, r, h */
                float *z = hr, *rg = hr + H, *hh = hr + 2 * H;
                matvec(R, h, H, 0, 2 * H, hr);
                for (int64_t k = 0; k < 2 * H; k++) hr[k] += xg[k];
                if (j->has_clip) clip_vec(hr, 2 * H, j->clip);
                act_apply(&acts[0], hr, 2 * H);
                if (j->lbr) {
                    matvec(R, h, H, 2 * H, 3 * H, hh);
                    for (int64_t k = 0; k < H; k++)
                        hh[k] = xg[2 * H + k] +
                                rg[k] * (hh[k] + (Rb ? Rb[2 * H + k] : 0.0f));
                } else {
                    for (int64_t k = 0; k < H; k++) tmp[k] = rg[k] * h[k];
                    matvec(R, tmp, H, 2 * H, 3 * H, hh);
                    for (int64_t k = 0; k < H; k++)
                        hh[k] += xg[2 * H + k] + (Rb ? Rb[2 * H + k] : 0.0f);
                }
                if (j->has_clip) clip_vec(hh, H, j->clip);
                act_apply(&acts[1], hh, H);
                for (int64_t k = 0; k < H; k++)
                    h[k] = (1.0f - z[k]) * hh[k] + z[k] * h[k];
            } else {
                /* gates i, o, f, c */
                float *ig = hr, *og = hr + H, *fg = hr + 2 * H, *cg = hr + 3 * H;
                matvec(R, h, H, 0, GH, hr);
                for (int64_t k = 0; k < GH; k++) hr[k] += xg[k];
                if (P)
                    for (int64_t k = 0; k < H; k++) {
                        ig[k] += P[k] * cst[k];
                        fg[k] += P[2 * H + k] * cst[k];
                    }
                if (j->has_clip) {
                    clip_vec(ig, H, j->clip);
                    clip_vec(fg, 2 * H, j->clip); /* f and c */
                }
                act_apply(&acts[0], ig, H);
                if (j->input_forget)
                    for (int64_t k = 0; k < H; k++) fg[k] = 1.0f - ig[k];
                else
                    act_apply(&acts[0], fg, H);
                act_apply(&acts[1], cg, H);
                for (int64_t k = 0; k < H; k++)
                    cst[k] = fg[k] * cst[k] + ig[k] * cg[k];
                if (P)
                    for (int64_t k = 0; k < H; k++) og[k] += P[H + k] * cst[k];
                if (j->has_clip) clip_vec(og, H, j->clip);
                act_apply(&acts[0], og, H);
                memcpy(tmp, cst, (size_t)H * sizeof *tmp);
                act_apply(&acts[2], tmp, H);
                for (int64_t k = 0; k < H; k++) h[k] = og[k] * tmp[k];
            }
            if (j->y) memcpy(j->y + y_off(j, t, d, b), h, (size_t)H * sizeof *h);
        }
        if (j->yh) memcpy(j->yh + s_off(j, d, b), h, (size_t)H * sizeof *h);
        if (j->yc) memcpy(j->yc + s_off(j, d, b), cst, (size_t)H * sizeof *h);
    }
}

/* Converts optional input i to float32 (NULL when absent); *err set on
** allocation failure. */
static float *opt_f32(ref_ctx *c, int i, bool *err) {
    if (!ref_has(c, i) || tensor_numel(c->in[i]) == 0) return NULL;
    float *p = tensor_to_f32(c->in[i]);
    if (!p) *err = true;
    return p;
}

static int expect_shape(ref_ctx *c, int i, const char *name, int rank,
                        const int64_t *dims) {
    const kiln_tensor *t = c->in[i];
    if (shape_equal(t->rank, t->dims, rank, dims)) return 0;
    char a[96], b[96];
    return ref_fail(c, "%s has shape %s, expected %s", name,
                    shape_str(t->rank, t->dims, a, sizeof a),
                    shape_str(rank, dims, b, sizeof b));
}

static int run_cell(ref_ctx *c, int cell) {
    const ir_node *n = c->node;
    rnn_job j;
    memset(&j, 0, sizeof j);
    j.cell = cell;
    j.gates = cell == CELL_LSTM ? 4 : cell == CELL_GRU ? 3 : 1;
    const char *dir = ir_attr_str(n, "direction", "forward");
    j.reverse = strcmp(dir, "reverse") == 0;
    j.ndir = strcmp(dir, "bidirectional") == 0 ? 2 : 1;
    j.layout = (int)ir_attr_int(n, "layout", 0);
    const ir_attr *ca = ir_attr_find(n, "clip");
    if (ca) {
        j.has_clip = true;
        j.clip = ca->f;
    }
    j.input_forget = cell == CELL_LSTM && ir_attr_int(n, "input_forget", 0);
    j.lbr = cell == CELL_GRU && ir_attr_int(n, "linear_before_reset", 0);
    if (parse_acts(c, cell, j.ndir, j.acts)) return -1;

    const kiln_tensor *X = c->in[0], *W = c->in[1], *R = c->in[2];
    if (X->rank != 3 || W->rank != 3 || R->rank != 3)
        return ref_fail(c, "X, W and R must have rank 3");
    j.seq = X->dims[j.layout ? 1 : 0];
    j.batch = X->dims[j.layout ? 0 : 1];
    j.isz = X->dims[2];
    j.hid = R->dims[2];
    int64_t GH = j.gates * j.hid;
    {
        int64_t wd[3] = {j.ndir, GH, j.isz}, rd[3] = {j.ndir, GH, j.hid};
        int64_t bd[2] = {j.ndir, 2 * GH}, ld[1] = {j.batch};
        int64_t hd[3] = {j.layout ? j.batch : j.ndir, j.layout ? j.ndir : j.batch,
                         j.hid};
        int64_t pd[2] = {j.ndir, 3 * j.hid};
        if (expect_shape(c, 1, "W", 3, wd) || expect_shape(c, 2, "R", 3, rd) ||
            (ref_has(c, 3) && expect_shape(c, 3, "B", 2, bd)) ||
            (ref_has(c, 4) && expect_shape(c, 4, "sequence_lens", 1, ld)) ||
            (ref_has(c, 5) && expect_shape(c, 5, "initial_h", 3, hd)) ||
            (cell == CELL_LSTM && ref_has(c, 6) &&
             expect_shape(c, 6, "initial_c", 3, hd)) ||
            (cell == CELL_LSTM && ref_has(c, 7) && expect_shape(c, 7, "P", 2, pd)))
            return -1;
    }

    int64_t *lens = NULL;
    if (ref_has(c, 4)) {
        const kiln_tensor *L = c->in[4];
        lens = malloc((size_t)(j.batch ? j.batch : 1) * sizeof *lens);
        if (!lens) return ref_fail(c, "out of memory");
        for (int64_t b = 0; b < j.batch; b++) {
            lens[b] = dt_get_i64(L->dtype, L->data, (size_t)b);
            if (lens[b] < 0 || lens[b] > j.seq) {
                int64_t v = lens[b];
                free(lens);
                return ref_fail(c, "sequence_lens[%lld] = %lld is outside [0, %lld]",
                                (long long)b, (long long)v, (long long)j.seq);
            }
        }
    }
    j.lens = lens;

    int64_t dy[4] = {j.seq, j.ndir, j.batch, j.hid}, dxw[3] = {j.seq, j.batch, GH};
    int64_t ny = shape_numel(4, dy), ns = shape_numel(3, dy + 1);
    int64_t nx = shape_numel(3, dxw);
    size_t nxw = (size_t)nx, nwork = (size_t)(4 * GH + 4 * j.hid);
    /* X may be empty with a huge seq*batch; bound the scratch sizes. */
    if (ny < 0 || ns < 0 || nx < 0 || (uint64_t)ny > KILN_MAX_ALLOC / 4 ||
        (uint64_t)nx > KILN_MAX_ALLOC / 4 || (uint64_t)GH > KILN_MAX_ALLOC / 64) {
        free(lens);
        return ref_fail(c, "recurrent state too large");
    }
    bool err = false;
    float *x = opt_f32(c, 0, &err), *w = opt_f32(c, 1, &err),
          *r = opt_f32(c, 2, &err), *bb = opt_f32(c, 3, &err),
          *h0 = opt_f32(c, 5, &err);
    float *c0 = cell == CELL_LSTM ? opt_f32(c, 6, &err) : NULL;
    float *p = cell == CELL_LSTM ? opt_f32(c, 7, &err) : NULL;
    float *y = calloc((size_t)(ny ? ny : 1), sizeof *y);
    float *yh = calloc((size_t)(ns ? ns : 1), sizeof *yh);
    float *yc = calloc((size_t)(ns ? ns : 1), sizeof *yc);
    float *xw = malloc((nxw ? nxw : 1) * sizeof *xw);
    float *work = malloc((nwork ? nwork : 1) * sizeof *work);
    int rc = 0;
    if (err || !y || !yh || !yc || !xw || !work) {
        rc = ref_fail(c, "out of memory");
        goto done;
    }
    /* Empty weights (zero hidden or input size) still work: dot products
    ** of length zero are zero. An empty X gives no steps. */
    j.x = x; j.w = w; j.r = r; j.b = bb; j.h0 = h0; j.c0 = c0; j.p = p;
    j.y = y; j.yh = yh; j.yc = yc;
    static const float zero1 = 0.0f;
    if (!j.x) j.x = &zero1;
    if (!j.w) j.w = &zero1;
    if (!j.r) j.r = &zero1;
    for (int d = 0; d < j.ndir; d++) run_dir(&j, d, xw, work);

    if (c->n_out > 0 && c->out[0]->data) tensor_from_f32(c->out[0], y);
    if (c->n_out > 1 && c->out[1]->data) tensor_from_f32(c->out[1], yh);
    if (c->n_out > 2 && c->out[2]->data) tensor_from_f32(c->out[2], yc);
done:
    free(lens); free(x); free(w); free(r); free(bb); free(h0); free(c0); free(p);
    free(y); free(yh); free(yc); free(xw); free(work);
    return rc;
}

static int ref_lstm(ref_ctx *c) { return run_cell(c, CELL_LSTM); }
static int ref_gru(ref_ctx *c) { return run_cell(c, CELL_GRU); }
static int ref_rnn(ref_ctx *c) { return run_cell(c, CELL_RNN); }

const ref_kernel ref_kernels_rnn[] = {
    {OP_LSTM, ref_lstm},
    {OP_GRU, ref_gru},
    {OP_RNN, ref_rnn},
    {OP_NONE, NULL},
};

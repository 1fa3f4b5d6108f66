/* qkv.c: one packed Q/K/V projection per attention block. The attention
** pass leaves a 3-D Attention(Q, K, V) whose Q, K and V are usually three
** FusedGemm layers of the same hidden state (BERT, ViT: h W_q + b_q, ...).
** Here they become ONE FusedGemm with the weights and biases concatenated
** along N (a new constant each), whose output [.., Nq + Nk + Nv] is the
** Attention's input 0; inputs 1 and 2 go empty and the node gets
** kiln_qkv_packed = [Nq, Nk, Nv] (ops/attn_qkv.h). One GEMM of N = 3 x 768
** runs faster than three of 768 on a GPU (fewer launches, fuller waves) and
** threads better on a CPU, and every Attention kernel reads the blocks in
** place (row stride Nq + Nk + Nv), so no copy comes back.
** The three GEMMs must: be FusedGemm (MatMul by constant weights is one by
** now), read the same A with transA 0, have constant 2-D weights of one
** layout (transB), the same K and dtype, the same alpha and activation,
** optional constant per-column biases (a missing one is zeros; beta the
** same), no residual; and each output must be read by the Attention alone.
** Grouped-query widths (Nk = Nv < Nq) are fine. Only the 3-D form without a
** KV cache is packed: in the 4-D form the GEMM outputs are not the
** Attention's inputs. Q, K and V that a Split cut out of one tensor along
** its last dim (GPT-2's c_attn) are packed too: the Split goes. Every
** backend's Attention takes the packed form (the reference always; tactics
** that cannot refuse it in supports()).
** KILN_QKV=0 turns the pass off, for A/B timing. */
#include "patterns.h"
#include "../ops/attn_qkv.h"

#include <stdlib.h>
#include <string.h>

/* Same attribute (absent on both counts as the same). */
static bool same_attr(const ir_node *a, const ir_node *b, const char *name) {
    const ir_attr *x = ir_attr_find(a, name), *y = ir_attr_find(b, name);
    if (!x || !y) return !x && !y;
    if (x->type != y->type) return false;
    switch (x->type) {
    case IR_ATTR_INT: return x->i == y->i;
    case IR_ATTR_FLOAT: return x->f == y->f;
    case IR_ATTR_STRING: return x->s_len == y->s_len && memcmp(x->s, y->s, x->s_len) == 0;
    default: return false;
    }
}

static const char *const k_gemm_attrs[] = {"transA", "transB", "alpha", "beta", "activation",
                                           "activation_alpha", "activation_beta"};

/* The GEMM producing v (an input of at) when it can be merged, else NULL:
** its C absent or a constant of one value per column (or one value); *N
** its output width. */
static ir_node *proj_of(const ir_graph *g, const ir_node *at, const ir_value *v, int64_t *N) {
    ir_node *p = pt_prod_op(g, v, OP_FusedGemm);
    if (!p || p->n_out != 1 ||
        p->n_in < 2 || !p->in[0] || !p->in[1])
        return NULL;
    if (p->n_in > 3 && p->in[3]) return NULL; /* residual */
    if (ir_edit_sole_consumer(g, v) != at) return NULL;
    if (ir_attr_int(p, "transA", 0) != 0) return NULL;
    const kiln_tensor *w = p->in[1]->const_val;
    const ir_type *y = &v->type;
    if (!w || !w->data || w->rank != 2 || w->dtype != y->dtype || y->rank != 3 ||
        p->in[0]->type.dtype != y->dtype || !pu_is_float(y->dtype))
        return NULL;
    bool tb = ir_attr_int(p, "transB", 0) != 0;
    int64_t n = w->dims[tb ? 0 : 1];
    if (n < 1 || y->dims[2] != n) return NULL;
    if (p->n_in > 2 && p->in[2]) {
        const kiln_tensor *c = p->in[2]->const_val;
        if (!c || !c->data || c->dtype != y->dtype) return NULL;
        int64_t cn = tensor_numel(c);
        if (cn != 1 && cn != n) return NULL;
        for (int i = 0; i + 1 < c->rank; i++)
            if (c->dims[i] != 1) return NULL;
        if (cn == n && c->rank >= 1 && c->dims[c->rank - 1] != n) return NULL;
    }
    *N = n;
    return p;
}

/* Q, K, V already one tensor cut in three by a Split along its last dim
** (GPT-2's c_attn: one GEMM of 3 x E, then Split): the Attention reads the
** Split's input packed and the Split (a copy of every element) goes.
** 1: done, 0: not this form, <0: out of memory. */
static int split_pack(pass_ctx *p, ir_node *at) {
    ir_graph *g = p->g;
    ir_node *sp = pt_prod(g, at->in[0]);
    if (!sp || sp->op != OP_Split || sp->n_implicit || sp->n_out != 3 || !sp->in[0]) return 0;
    const ir_type *x = &sp->in[0]->type;
    int64_t axis = ir_attr_int(sp, "axis", 0);
    if (x->rank != 3 || (axis != 2 && axis != -1) || x->dims[2] < 3) return 0;
    int64_t w[3], sum = 0;
    for (int i = 0; i < 3; i++) {
        const ir_value *o = sp->out[i];
        if (at->in[i] != o || o->producer_out != i || o->type.rank != 3 || o->type.dims[2] < 1 ||
            o->type.dtype != x->dtype || ir_edit_sole_consumer(g, o) != at)
            return 0;
        w[i] = o->type.dims[2];
        sum += w[i];
    }
    if (sum != x->dims[2]) return 0;
    if (!ir_edit_set_ints(at, ATTN_QKV_ATTR, w, 3)) return -1;
    at->in[0] = sp->in[0];
    at->in[1] = at->in[2] = NULL;
    ir_edit_kill(sp);
    ir_node *src[2] = {at, sp};
    ir_edit_note_fused(g, at, src, 2);
    pass_note(p, "Split '%s' (%lld + %lld + %lld) absorbed: Attention '%s' reads Q/K/V packed",
              pu_name(sp), (long long)w[0], (long long)w[1], (long long)w[2], pu_name(at));
    return 1;
}

/* 1: merged, 0: no match, <0: out of memory. */
static int try_pack(pass_ctx *p, ir_node *at) {
    ir_graph *g = p->g;
    int64_t w0[3];
    if (at->n_in < 3 || at->n_out != 1 || at->n_implicit || attn_qkv_widths(at, w0) != 0 ||
        !at->in[0] || !at->in[1] || !at->in[2] || (at->n_in > 4 && at->in[4]) ||
        (at->n_in > 5 && at->in[5]) || ir_attr_int(at, "q_num_heads", 0) <= 0)
        return 0;
    if (at->in[0] == at->in[1] || at->in[0] == at->in[2] || at->in[1] == at->in[2]) return 0;
    int r = split_pack(p, at);
    if (r) return r;
    ir_node *pr[3];
    int64_t N[3];
    for (int i = 0; i < 3; i++)
        if (!(pr[i] = proj_of(g, at, at->in[i], &N[i]))) return 0;
    const ir_value *A = pr[0]->in[0];
    const kiln_tensor *w0t = pr[0]->in[1]->const_val;
    bool tb = ir_attr_int(pr[0], "transB", 0) != 0;
    int64_t K = w0t->dims[tb ? 1 : 0];
    bool any_bias = false;
    for (int i = 0; i < 3; i++) {
        const kiln_tensor *w = pr[i]->in[1]->const_val;
        if (pr[i]->in[0] != A || w->dtype != w0t->dtype || w->dims[tb ? 1 : 0] != K) return 0;
        for (size_t a = 0; a < KILN_ARRAY_LEN(k_gemm_attrs); a++)
            if (!same_attr(pr[i], pr[0], k_gemm_attrs[a])) return 0;
        if (pr[i]->n_in > 2 && pr[i]->in[2]) any_bias = true;
    }
    int64_t Nt = N[0] + N[1] + N[2];
    kiln_dtype dt = w0t->dtype;
    size_t es = 0;
    if (!dtype_nbytes(dt, 1, &es) || !es) return 0;

    /* packed weights: [K, Nt] (row k: the three rows side by side), or with
    ** transB [Nt, K] (the three matrices one after the other) */
    kiln_tensor *W;
    int64_t wd[2] = {tb ? Nt : K, tb ? K : Nt};
    if (tensor_new(dt, 2, wd, &W)) return -1;
    int64_t col = 0;
    for (int i = 0; i < 3; i++) {
        const char *src = pr[i]->in[1]->const_val->data;
        char *dst = W->data;
        if (tb) {
            memcpy(dst + (size_t)(col * K) * es, src, (size_t)(N[i] * K) * es);
        } else {
            for (int64_t k = 0; k < K; k++)
                memcpy(dst + (size_t)(k * Nt + col) * es, src + (size_t)(k * N[i]) * es,
                       (size_t)N[i] * es);
        }
        col += N[i];
    }
    char name[256];
    snprintf(name, sizeof name, "%.200s_qkv_w", pr[0]->in[1]->name ? pr[0]->in[1]->name : "");
    ir_value *wv = ir_edit_add_const(g, W, name);
    if (!wv) return -1;
    ir_value *bv = NULL;
    if (any_bias) {
        kiln_tensor *Bt;
        if (tensor_new(dt, 1, &Nt, &Bt)) return -1;
        col = 0;
        for (int i = 0; i < 3; i++) {
            const kiln_tensor *c = pr[i]->n_in > 2 && pr[i]->in[2] ? pr[i]->in[2]->const_val : NULL;
            int64_t cn = c ? tensor_numel(c) : 0;
            for (int64_t j = 0; j < N[i]; j++)
                dt_set_f64(dt, Bt->data, (size_t)(col + j),
                           c ? dt_get_f64(dt, c->data, (size_t)(cn == 1 ? 0 : j)) : 0.0);
            col += N[i];
        }
        snprintf(name, sizeof name, "%.200s_qkv_b", pu_name(pr[0]));
        if (!(bv = ir_edit_add_const(g, Bt, name))) return -1;
    }
    snprintf(name, sizeof name, "%.200s_qkv", pu_name(pr[0]));
    ir_node *gm = ir_edit_add_node(g, OP_FusedGemm, bv ? 3 : 2, 1, name);
    if (!gm || !ir_edit_copy_attrs(gm, pr[0])) return -1;
    gm->in[0] = pr[0]->in[0];
    gm->in[1] = wv;
    if (bv) gm->in[2] = bv;
    int64_t widths[3] = {N[0], N[1], N[2]};
    if (!ir_edit_set_ints(at, ATTN_QKV_ATTR, widths, 3)) return -1;
    at->in[0] = gm->out[0];
    at->in[1] = at->in[2] = NULL;
    for (int i = 0; i < 3; i++) ir_edit_kill(pr[i]);
    ir_edit_note_fused(g, gm, pr, 3);
    pass_note(p, "FusedGemm '%s' + '%s' + '%s' -> '%s' (N %lld + %lld + %lld), packed into "
              "Attention '%s'", pu_name(pr[0]), pu_name(pr[1]), pu_name(pr[2]), gm->name,
              (long long)N[0], (long long)N[1], (long long)N[2], pu_name(at));
    return 1;
}

static kiln_status run(pass_ctx *p) {
    ir_graph *g = p->g;
    int n0 = g->n_nodes;
    /* KILN_QKV=0 keeps the three GEMMs (A/B timing of the packed form) */
    const char *env = getenv("KILN_QKV");
    if (env && !strcmp(env, "0")) return KILN_OK;
    /* Device builds pack too: the CUDA tactics' packed path passed
    ** test_cuda_attn on an H100 (2026-12-07), and BERT-base FP16 went from
    ** 7.13 to 6.93 ms at b128 and 0.60 to 0.52 ms at b1 (with the
    ** elementwise fast paths; bench/RESULTS.md). */
    for (int i = 0; i < n0; i++) {
        ir_node *n = g->nodes[i];
        if (n->dead || n->op != OP_Attention) continue;
        if (try_pack(p, n) < 0) return pu_oom();
    }
    return KILN_OK;
}

const kiln_pass pass_qkv = {"qkv", run};

/* test_patterns.c: the pattern-recognition passes (layernorm, gelu,
** attention). Each runs on small models (tests/data/patterns, made by
** make_pattern_models.py): the test checks that the rewrite happened (op
** counts, attributes), that near misses stay as they are, and that the
** outputs are unchanged on random inputs (reference executor on the
** original vs the rewritten IR). Run from the repository root.
** Extra arguments are real models (BERT, GPT-2, ViT exports): the
** recognition passes run after fold/noop/dce and the counts are printed,
** then the whole pipeline runs and the outputs are compared with the
** original graph's; `--io DIR` before a model also compares with
** DIR/input_N.pb -> DIR/output_N.pb (e.g. written by onnxruntime).
** Prints `N passed, M failed`. */
#define TEST_RNG_SEED 0x2545f4914f6cdd1dull
#include "test_util.h"

#include <dirent.h>

#define DATA "tests/data/patterns/"

/* ------------------------------------------------------------ helpers */
/* Runs both graphs on the same random inputs; the outputs must agree. */
static void same_outputs(const char *what, const ir_graph *ga, const ir_graph *gb,
                         int64_t sym_dim, const char *one_dim, double rtol) {
    CHECK(ga->n_outputs == gb->n_outputs && ga->n_inputs == gb->n_inputs,
          "%s: inputs/outputs changed", what);
    if (ga->n_outputs != gb->n_outputs || ga->n_inputs != gb->n_inputs) return;
    for (int o = 0; o < ga->n_outputs; o++)
        CHECK(!strcmp(ga->outputs[o]->name, gb->outputs[o]->name),
              "%s: output %d renamed '%s' -> '%s'", what, o, ga->outputs[o]->name,
              gb->outputs[o]->name);
    same_run(what, ga, gb, sym_dim, one_dim, 1e-5, rtol);
}

/* Loads DATA/file, runs the passes, checks the op counts and compares the
** outputs (two input sizes). Returns the rewritten model (and the original
** in *km_out) when km_out is given. */
static ir_model *pattern_case(const char *file, const char *passes, const char *spec,
                              double rtol, kiln_model **km_out) {
    char path[512], what[256];
    snprintf(path, sizeof path, DATA "%s", file);
    snprintf(what, sizeof what, "%s [%s]", file, passes);
    kiln_model *km;
    ir_model *opt;
    if (!load2(path, &km, &opt)) {
        CHECK(0, "%s: cannot load", what);
        return NULL;
    }
    if (g_verbose) fprintf(stderr, "%s:\n", what);
    kiln_status st = run_passes(opt, passes);
    CHECK(!st, "%s: passes failed: %s", what, st ? kiln_last_error() : "");
    if (!st) {
        expect_ops(what, opt->graph, spec);
        same_outputs(what, km->ir->graph, opt->graph, 2, NULL, rtol);
        same_outputs(what, km->ir->graph, opt->graph, 3, NULL, rtol);
    }
    if (km_out && !st) {
        *km_out = km;
        return opt;
    }
    ir_model_free(opt);
    kiln_model_free(km);
    return NULL;
}

/* The node producing output `out`, of op type `op`. */
static ir_node *node_for(const ir_graph *g, const char *out, const char *op) {
    ir_node *n = producer_of(g, out);
    return n && !strcmp(n->op_type, op) ? n : NULL;
}

static bool input_is(const ir_node *n, int i, const char *name) {
    return n && i < n->n_in && n->in[i] && !strcmp(n->in[i]->name, name);
}

/* ------------------------------------------------------------ layernorm */
static void test_layernorm(void) {
    kiln_model *km;
    ir_model *m = pattern_case("ln_basic.onnx", "layernorm",
                               "LayerNormalization=1 total=1", 1e-4, &km);
    if (m) {
        ir_node *n = node_for(m->graph, "y", "LayerNormalization");
        CHECK(n && n->n_in == 3 && input_is(n, 0, "x") && input_is(n, 1, "ga") &&
                  input_is(n, 2, "ba") && ir_attr_int(n, "axis", 0) == -1 &&
                  ir_attr_float(n, "epsilon", 0) == 1e-5f,
              "ln_basic: LayerNormalization inputs/attributes");
        CHECK(n && n->fused_from && strstr(n->fused_from, "a_mean") &&
                  strstr(n->fused_from, "a_var") && strstr(n->fused_from, "y"),
              "ln_basic: fused_from '%s'", n && n->fused_from ? n->fused_from : "(null)");
        ir_model_free(m);
        kiln_model_free(km);
    }
    m = pattern_case("ln_variants.onnx", "layernorm", "LayerNormalization=3 total=3", 1e-4,
                     &km);
    if (m) {
        ir_node *n1 = node_for(m->graph, "y1", "LayerNormalization");
        ir_node *n2 = node_for(m->graph, "y2", "LayerNormalization");
        ir_node *n3 = node_for(m->graph, "y3", "LayerNormalization");
        CHECK(n1 && ir_attr_int(n1, "axis", 0) == -2 && input_is(n1, 1, "ga") &&
                  ir_attr_float(n1, "epsilon", 0) == 1e-6f,
              "ln_variants: two normalized axes");
        CHECK(n2 && n2->n_in == 2 && n2->in[1]->const_val &&
                  ir_attr_float(n2, "epsilon", 0) == 1e-12f,
              "ln_variants: no affine (ones scale, no bias)");
        CHECK(n3 && ir_attr_int(n3, "axis", 0) == -2 && n3->n_in == 2,
              "ln_variants: axes (1, 2) of rank 3");
        ir_model_free(m);
        kiln_model_free(km);
    }
    /* TensorFlow's batch-norm style spelling */
    m = pattern_case("ln_tf.onnx", "layernorm", "LayerNormalization=2 total=2", 1e-4, &km);
    if (m) {
        ir_node *a = node_for(m->graph, "ya", "LayerNormalization");
        ir_node *b = node_for(m->graph, "yb", "LayerNormalization");
        CHECK(a && a->n_in == 3 && input_is(a, 1, "gamma") && input_is(a, 2, "beta") &&
                  ir_attr_float(a, "epsilon", 0) == 1e-3f && b && b->n_in == 2,
              "ln_tf: x * inv + (beta - mean * inv)");
        ir_model_free(m);
        kiln_model_free(km);
    }
    /* near misses: only the LN whose gamma varies along a kept axis
    ** matches, without that gamma */
    m = pattern_case("ln_negative.onnx", "layernorm",
                     "LayerNormalization=1 RMSNormalization=0 ReduceMean=10 Sqrt=5", 1e-4,
                     &km);
    if (m) {
        ir_node *n = node_for(m->graph, "yf", "Mul");
        CHECK(n && (node_for(m->graph, n->in[0]->name, "LayerNormalization") ||
                    node_for(m->graph, n->in[1]->name, "LayerNormalization")),
              "ln_negative: gamma [5,16] must stay a Mul after the LayerNormalization");
        ir_model_free(m);
        kiln_model_free(km);
    }
}

static void test_rmsnorm(void) {
    kiln_model *km;
    ir_model *m = pattern_case("rms.onnx", "layernorm", "RMSNormalization=2 total=2", 1e-4,
                               &km);
    if (m) {
        ir_node *n1 = node_for(m->graph, "y1", "RMSNormalization");
        ir_node *n2 = node_for(m->graph, "y2", "RMSNormalization");
        CHECK(n1 && input_is(n1, 0, "x") && input_is(n1, 1, "ga") &&
                  ir_attr_float(n1, "epsilon", 0) == 1e-6f && ir_attr_int(n1, "axis", 0) == -1,
              "rms: LLaMA form");
        CHECK(n2 && input_is(n2, 0, "x") && n2->in[1]->const_val, "rms: x / Sqrt form");
        ir_model_free(m);
        kiln_model_free(km);
    }
    /* float16 in, float32 inside: reads the float16 x, scale float16 */
    m = pattern_case("rms_cast.onnx", "layernorm", "RMSNormalization=1 Cast=0 total=1", 2e-3,
                     &km);
    if (m) {
        ir_node *n = node_for(m->graph, "y", "RMSNormalization");
        CHECK(n && input_is(n, 0, "x") && input_is(n, 1, "g16") &&
                  n->out[0]->type.dtype == KILN_DTYPE_FLOAT16,
              "rms_cast: RMSNormalization(x16, g16)");
        ir_model_free(m);
        kiln_model_free(km);
    }
}

/* ------------------------------------------------------------ gelu */
static void test_gelu(void) {
    kiln_model *km;
    ir_model *m = pattern_case("gelu.onnx", "gelu", "Gelu=7 Mul=1 total=8", 1e-4, &km);
    if (m) {
        static const char *const outs[] = {"ya", "yb", "yc", "yd", "ye", "yf", "g_m"};
        for (int i = 0; i < 7; i++) {
            ir_node *n = node_for(m->graph, outs[i], "Gelu");
            const char *ap = n ? ir_attr_str(n, "approximate", "none") : "";
            bool tanh_form = i == 4 || i == 5;
            CHECK(n && input_is(n, 0, "x") && !strcmp(ap, tanh_form ? "tanh" : "none"),
                  "gelu: %s is not Gelu(x, %s)", outs[i], tanh_form ? "tanh" : "none");
        }
        ir_model_free(m);
        kiln_model_free(km);
    }
    pattern_case("gelu_negative.onnx", "gelu", "Gelu=0 Erf=4 Tanh=2", 1e-4, NULL);
    /* then bias_act fuses it into the GEMM before it */
}

/* ------------------------------------------------------------ attention */
static void test_attention(void) {
    kiln_model *km;
    /* BERT: the 3-D form, head reshapes absorbed */
    ir_model *m = pattern_case("attn_bert.onnx", "attention",
                               "Attention=1 Softmax=0 Transpose=0 Reshape=0 MatMul=3 total=7",
                               1e-4, &km);
    if (m) {
        ir_node *n = node_for(m->graph, "y", "Attention");
        const ir_attr *sc = n ? ir_attr_find(n, "scale") : NULL;
        CHECK(n && n->n_in == 4 && input_is(n, 0, "q_3") && input_is(n, 1, "k_3") &&
                  input_is(n, 2, "v_3") && input_is(n, 3, "mask") &&
                  ir_attr_int(n, "q_num_heads", 0) == 4 &&
                  ir_attr_int(n, "kv_num_heads", 0) == 4 && sc &&
                  fabs(sc->f - 1 / sqrt(8.0)) < 1e-6,
              "attn_bert: 3-D Attention(q, k, v, mask), 4 heads, scale 1/sqrt(8)");
        ir_model_free(m);
        kiln_model_free(km);
    }
    /* torch sdpa: scale split over Q and K^T, causal mask -> is_causal;
    ** the NaN cleaner absorbed (kiln_masked_rows_zero), boolean mask
    ** expanded to the keys */
    m = pattern_case("attn_sdpa.onnx", "attention",
                     "Attention=2 Softmax=0 MatMul=0 Transpose=0 Trilu=0 IsNaN=0 Where=0 "
                     "Expand=1 Shape=1 total=4",
                     1e-4, &km);
    if (m) {
        ir_node *n = node_for(m->graph, "y", "Attention");
        const ir_attr *sc = n ? ir_attr_find(n, "scale") : NULL;
        CHECK(n && n->n_in == 3 && input_is(n, 0, "q") && input_is(n, 1, "k") &&
                  ir_attr_int(n, "is_causal", 0) == 1 && sc && fabs(sc->f - 1 / sqrt(8.0)) < 1e-6,
              "attn_sdpa: causal 4-D Attention(q, k, v)");
        ir_node *a2 = node_for(m->graph, "y2", "Attention");
        CHECK(a2 && a2->n_in == 4 && a2->in[3] && a2->in[3]->type.dtype == KILN_DTYPE_BOOL &&
                  ir_attr_int(a2, "kiln_masked_rows_zero", 0) == 1 &&
                  ir_attr_int(n, "kiln_masked_rows_zero", 0) == 0,
              "attn_sdpa: the NaN cleaner absorbed into an Attention with a boolean mask");
        /* the mask's length is its own symbol: check a [B,1,1,1] mask
        ** broadcast over the keys too */
        same_outputs("attn_sdpa (mask [B,1,1,1])", km->ir->graph, m->graph, 3, "M",
                     1e-4);
        /* --fp16: the Attention with the boolean mask computes in float16
        ** (Q, K, V cast, the mask kept bool) */
        pass_ctx pc;
        memset(&pc, 0, sizeof pc);
        pc.m = m, pc.g = m->graph, pc.opt_level = 3;
        kiln_status pst = pass_reduced_precision(&pc, KILN_DTYPE_FLOAT16);
        CHECK(!pst, "attn_sdpa: precision pass failed: %s", pst ? kiln_last_error() : "");
        a2 = NULL;
        for (int i = 0; !pst && i < m->graph->n_nodes; i++) {
            ir_node *c = m->graph->nodes[i];
            if (c->op == OP_Attention && c->n_in == 4 && c->in[3]) a2 = c;
        }
        CHECK(a2 && a2->in[0]->type.dtype == KILN_DTYPE_FLOAT16 &&
                  a2->in[1]->type.dtype == KILN_DTYPE_FLOAT16 &&
                  a2->in[2]->type.dtype == KILN_DTYPE_FLOAT16 &&
                  a2->in[3]->type.dtype == KILN_DTYPE_BOOL &&
                  a2->out[0]->type.dtype == KILN_DTYPE_FLOAT16,
              "attn_sdpa --fp16: the masked Attention computes in float16, mask kept bool");
        ir_model_free(m);
        kiln_model_free(km);
    }
    /* --fp16 without the attention pass: the cleaner's IsNaN reads the
    ** float16 Softmax output as it is (no cast), its output stays bool */
    m = pattern_case("attn_sdpa.onnx", "dce", "IsNaN=1 Softmax=2", 1e-4, &km);
    if (m) {
        pass_ctx pc;
        memset(&pc, 0, sizeof pc);
        pc.m = m, pc.g = m->graph, pc.opt_level = 3;
        kiln_status pst = pass_reduced_precision(&pc, KILN_DTYPE_FLOAT16);
        CHECK(!pst, "attn_sdpa: precision pass failed: %s", pst ? kiln_last_error() : "");
        ir_node *isn = NULL;
        for (int i = 0; !pst && i < m->graph->n_nodes; i++)
            if (m->graph->nodes[i]->op == OP_IsNaN) isn = m->graph->nodes[i];
        CHECK(isn && isn->in[0]->type.dtype == KILN_DTYPE_FLOAT16 && isn->in[0]->producer &&
                  isn->in[0]->producer->op == OP_Softmax &&
                  isn->out[0]->type.dtype == KILN_DTYPE_BOOL,
              "attn_sdpa --fp16: IsNaN reads the float16 Softmax output directly");
        ir_model_free(m);
        kiln_model_free(km);
    }
    /* K given transposed (a Transpose is added), Where(cond, scores,
    ** finfo.min) -> float mask, a merge the 3-D form cannot take */
    m = pattern_case("attn_kt.onnx", "attention",
                     "Attention=1 Softmax=0 Transpose=2 Reshape=1 Where=1 total=5", 1e-4, &km);
    if (m) {
        ir_node *rs = node_for(m->graph, "y", "Reshape");
        ir_node *tr = rs ? rs->in[0]->producer : NULL;
        ir_node *n = tr ? tr->in[0]->producer : NULL;
        CHECK(n && n->op == OP_Attention && n->n_in == 4 && n->in[1]->producer &&
                  n->in[1]->producer->op == OP_Transpose &&
                  n->in[3]->type.dtype == KILN_DTYPE_FLOAT32,
              "attn_kt: 4-D Attention with K transposed back and a float mask");
        ir_model_free(m);
        kiln_model_free(km);
    }
    /* GPT-2: the merge target computed from Shape readers of the merged
    ** value; everything but the projection and the split goes */
    m = pattern_case("attn_gpt2.onnx", "attention",
                     "Attention=1 MatMul=1 Split=1 Mul=1 Softmax=0 Transpose=0 Shape=0 Concat=0 "
                     "total=4",
                     1e-4, &km);
    if (m) {
        ir_node *n = node_for(m->graph, "y", "Attention");
        const ir_attr *sc = n ? ir_attr_find(n, "scale") : NULL;
        CHECK(n && input_is(n, 0, "q_3") && input_is(n, 2, "v_3") && sc &&
                  fabs(sc->f - 2 / sqrt(8.0)) < 1e-6,
              "attn_gpt2: the factor on Q goes into the scale, the one on V stays");
        ir_model_free(m);
        kiln_model_free(km);
    }
    m = pattern_case("attn_bcast.onnx", "attention", "Attention=1 Softmax=1", 1e-4, &km);
    if (m) {
        CHECK(node_for(m->graph, "y1", "Attention") && node_for(m->graph, "y2", "MatMul"),
              "attn_bcast: multi-query matches, a batch-broadcast K does not");
        ir_model_free(m);
        kiln_model_free(km);
    }
    pattern_case("attn_negative.onnx", "attention", "Attention=0 Softmax=4 MatMul=8", 1e-4,
                 NULL);
    /* a key-padding mask widened by And(all true)/Or(all false)/Expand:
    ** the Attention reads the narrow [B,1,1,S] mask; a partly false
    ** constant keeps its And */
    m = pattern_case("attn_widen.onnx", "attention",
                     "Attention=3 Softmax=0 And=1 Or=0 Expand=0 Where=1", 1e-4, &km);
    if (m) {
        ir_node *a = node_for(m->graph, "ya", "Attention");
        ir_node *b = node_for(m->graph, "yb", "Attention");
        ir_node *c = node_for(m->graph, "yc", "Attention");
        ir_node *cw = c && c->n_in == 4 && c->in[3] ? c->in[3]->producer : NULL;
        CHECK(a && a->n_in == 4 && input_is(a, 3, "cond"),
              "attn_widen: And(all true) + Expand: the Attention reads the [B,1,1,S] mask");
        CHECK(b && b->n_in == 4 && b->in[3] && b->in[3]->type.rank == 4 &&
                  b->in[3]->type.dims[2] == 1,
              "attn_widen: Or(all false): the Attention's mask is [B,1,1,S]");
        CHECK(cw && cw->op == OP_And && c->in[3]->type.dims[2] == 6,
              "attn_widen: a partly false constant keeps its And");
        ir_model_free(m);
        kiln_model_free(km);
    }
}

/* ------------------------------------------------------------ qkv packing */
/* Attention `out` of g is packed: input 0 a FusedGemm, inputs 1 and 2
** absent, kiln_qkv_packed = w; the GEMM's weights and bias are the three
** projections' side by side (checked against the original model's
** initializers named pre+"q_w" ... when pre is given). */
static void check_packed(const char *what, const ir_graph *g, const ir_graph *orig,
                         const char *out, const int64_t *w, const char *pre) {
    ir_node *at = node_for(g, out, "Attention");
    int cnt = 0;
    const int64_t *pw = at ? ir_attr_ints(at, "kiln_qkv_packed", &cnt) : NULL;
    CHECK(at && pw && cnt == 3 && pw[0] == w[0] && pw[1] == w[1] && pw[2] == w[2] &&
              at->in[0] && !at->in[1] && !at->in[2],
          "%s: Attention '%s' reads packed Q/K/V of widths %lld/%lld/%lld", what, out,
          (long long)w[0], (long long)w[1], (long long)w[2]);
    if (!at || !at->in[0]) return;
    ir_node *gm = at->in[0]->producer;
    int64_t nt = w[0] + w[1] + w[2];
    const kiln_tensor *W = gm && gm->op == OP_FusedGemm ? gm->in[1]->const_val : NULL;
    CHECK(W && W->rank == 2 && W->dims[1] == nt && at->in[0]->type.dims[2] == nt,
          "%s: one FusedGemm of N %lld feeds '%s'", what, (long long)nt, out);
    if (!W || !pre) return;
    static const char *const parts[3] = {"q", "k", "v"};
    int64_t col = 0;
    for (int i = 0; i < 3; i++) {
        char nm[64];
        snprintf(nm, sizeof nm, "%s%s_w", pre, parts[i]);
        const ir_value *ow = NULL, *ob = NULL;
        for (int v = 0; v < orig->n_values; v++)
            if (!strcmp(orig->values[v]->name, nm)) ow = orig->values[v];
        snprintf(nm, sizeof nm, "%s%s_b", pre, parts[i]);
        for (int v = 0; v < orig->n_values; v++)
            if (!strcmp(orig->values[v]->name, nm)) ob = orig->values[v];
        bool ok = ow && ow->const_val && ow->const_val->dims[1] == w[i];
        const float *src = ok ? ow->const_val->data : NULL, *dst = W->data;
        for (int64_t k = 0; ok && k < W->dims[0]; k++)
            for (int64_t j = 0; j < w[i]; j++)
                ok &= dst[k * nt + col + j] == src[k * w[i] + j];
        const kiln_tensor *B = gm->n_in > 2 && gm->in[2] ? gm->in[2]->const_val : NULL;
        for (int64_t j = 0; ok && B && j < w[i]; j++) {
            float want = ob ? ((const float *)ob->const_val->data)[j] : 0.0f;
            ok &= ((const float *)B->data)[col + j] == want;
        }
        CHECK(ok && (B || !ob), "%s: packed weights/bias of %s match the original", what, nm);
        col += w[i];
    }
}

/* An engine of a packed model (public API: build, serialize, load, run):
** n_layers layers, outputs equal to the reference's at several shapes.
** Inputs: x [B, S, 32], then masks [B, 1, S, S] (bool) / [B, 1, 1, S]. */
static void qkv_engine_case(const char *file, int n_layers) {
    char path[512];
    snprintf(path, sizeof path, DATA "%s", file);
    kiln_model *m = NULL;
    kiln_builder_config *cfg = NULL;
    kiln_engine *e = NULL;
    kiln_context *c = NULL;
    void *blob = NULL;
    size_t nb = 0;
    int prof;
    CHECK(!kiln_model_load(path, &m), "%s: load", file);
    if (!m) return;
    int ni = kiln_model_num_inputs(m);
    kiln_builder_config_create(&cfg);
    kiln_builder_config_set_logger(cfg, NULL, NULL, KILN_SEVERITY_ERROR);
    kiln_builder_config_add_profile(cfg, &prof);
    for (int i = 0; i < ni; i++) {
        kiln_io_info io;
        kiln_model_input(m, i, &io);
        int64_t mn[4] = {1, 1, 1, 1}, op[4] = {2, 1, 9, 9}, mx[4] = {3, 1, 20, 20};
        if (io.rank == 3) mn[2] = op[2] = mx[2] = 32, op[1] = 9, mx[1] = 20;
        if (!strcmp(io.name, "fmask")) mn[2] = op[2] = mx[2] = 1;
        kiln_builder_config_set_shape(cfg, prof, io.name, io.rank, mn, op, mx);
    }
    kiln_status st = kiln_build_engine(m, cfg, &blob, &nb);
    CHECK(!st, "%s: build: %s", file, st ? kiln_last_error() : "");
    if (!st) st = kiln_engine_load_memory(blob, nb, &e);
    CHECK(!st, "%s: load engine: %s", file, st ? kiln_last_error() : "");
    if (e) {
        CHECK(kiln_engine_num_layers(e) == n_layers, "%s: %d layers, expected %d", file,
              kiln_engine_num_layers(e), n_layers);
        kiln_context_create(e, &c);
    }
    static const int64_t shapes[][2] = {{1, 1}, {3, 17}, {2, 9}, {3, 20}};
    for (int sh = 0; c && sh < 4; sh++) {
        int64_t B = shapes[sh][0], S = shapes[sh][1];
        kiln_tensor *in[4] = {NULL}, *want[4] = {NULL};
        for (int i = 0; i < ni && i < 4; i++) {
            kiln_io_info io;
            kiln_model_input(m, i, &io);
            int64_t d[4] = {B, 1, S, S};
            if (io.rank == 3) d[1] = S, d[2] = 32;
            if (!strcmp(io.name, "fmask")) d[2] = 1;
            tensor_new(io.dtype, io.rank, d, &in[i]);
            int64_t n = tensor_numel(in[i]);
            for (int64_t k = 0; k < n; k++) {
                if (io.dtype == KILN_DTYPE_BOOL) /* the diagonal always live */
                    ((uint8_t *)in[i]->data)[k] = rnd() < 0.7 || k % S == (k / S) % S;
                else
                    ((float *)in[i]->data)[k] = (float)(rnd() * 2 - 1);
            }
            kiln_context_set_input_shape(c, io.name, io.rank, d);
            kiln_context_set_tensor(c, io.name, in[i]->data, in[i]->nbytes);
        }
        st = kiln_context_execute(c);
        CHECK(!st, "%s: run at B %lld S %lld: %s", file, (long long)B, (long long)S,
              st ? kiln_last_error() : "");
        if (!st && !kiln_model_run_reference(m, (const kiln_tensor *const *)in, want)) {
            for (int o = 0; o < kiln_model_num_outputs(m); o++) {
                kiln_io_info io;
                const kiln_tensor *got = NULL;
                kiln_model_output(m, o, &io);
                kiln_context_output(c, io.name, &got);
                double wa, err = diff(got, want[o], 1e-5, 1e-4, &wa);
                CHECK(err >= 0 && err <= 1, "%s: output %s at B %lld S %lld differs (max %g)",
                      file, io.name, (long long)B, (long long)S, wa);
            }
        }
        for (int i = 0; i < 4; i++) tensor_free(in[i]), tensor_free(want[i]);
    }
    kiln_context_destroy(c);
    kiln_engine_free(e);
    kiln_free(blob);
    kiln_builder_config_destroy(cfg);
    kiln_model_free(m);
}

static void test_qkv(void) {
    kiln_model *km;
    const char *ps = "attention matmul_add bias_act qkv";
    ir_model *m = pattern_case("attn_bert.onnx", ps, "Attention=1 FusedGemm=1 total=2", 1e-4,
                               &km);
    if (m) {
        int64_t w[3] = {32, 32, 32};
        check_packed("attn_bert", m->graph, km->ir->graph, "y", w, "");
        ir_model_free(m);
        kiln_model_free(km);
    }
    /* grouped-query widths, a missing K bias (zeros), bool and float masks,
    ** causal */
    m = pattern_case("attn_qkv_gqa.onnx", "matmul_add bias_act qkv",
                     "Attention=2 FusedGemm=2 total=4", 1e-4, &km);
    if (m) {
        int64_t w[3] = {32, 16, 16};
        check_packed("attn_qkv_gqa", m->graph, km->ir->graph, "ya", w, "a");
        check_packed("attn_qkv_gqa", m->graph, km->ir->graph, "yb", w, "b");
        /* the schema refuses broken packed forms (an engine file could hold
        ** them): widths not adding up, a wrong count, a K input as well */
        ir_node *at = node_for(m->graph, "ya", "Attention");
        if (at && at->in[0]) {
            int64_t bad[3] = {32, 16, 17}, two[2] = {32, 32};
            CHECK(ir_edit_set_ints(at, "kiln_qkv_packed", bad, 3) && ir_graph_infer(m->graph),
                  "attn_qkv_gqa: widths 32+16+17 on a 64-wide input must fail inference");
            CHECK(ir_edit_set_ints(at, "kiln_qkv_packed", two, 2) && ir_graph_infer(m->graph),
                  "attn_qkv_gqa: two widths must fail inference");
            CHECK(ir_edit_set_ints(at, "kiln_qkv_packed", w, 3) && !ir_graph_infer(m->graph),
                  "attn_qkv_gqa: restored widths infer again: %s", kiln_last_error());
            at->in[1] = at->in[0];
            CHECK(ir_graph_infer(m->graph), "attn_qkv_gqa: packed plus a K input must fail");
            at->in[1] = NULL;
        }
        ir_model_free(m);
        kiln_model_free(km);
    }
    /* near misses: a projection read twice, another A (and K), another
    ** activation: nothing merges */
    m = pattern_case("attn_qkv_negative.onnx", "matmul_add bias_act qkv",
                     "Attention=3 FusedGemm=9 total=12", 1e-4, &km);
    if (m) {
        for (int i = 0; i < m->graph->n_nodes; i++)
            CHECK(!ir_attr_find(m->graph->nodes[i], "kiln_qkv_packed"),
                  "attn_qkv_negative: node %d must not be packed", i);
        ir_model_free(m);
        kiln_model_free(km);
    }
    /* Q/K/V cut by a Split of one projection: the Split goes (not where
    ** its K output is also a graph output) */
    m = pattern_case("attn_qkv_split.onnx", "matmul_add bias_act qkv",
                     "Attention=3 FusedGemm=3 Split=1 total=7", 1e-4, &km);
    if (m) {
        int64_t wa[3] = {32, 32, 32}, wb[3] = {32, 16, 16};
        check_packed("attn_qkv_split", m->graph, km->ir->graph, "ya", wa, NULL);
        check_packed("attn_qkv_split", m->graph, km->ir->graph, "yb", wb, NULL);
        ir_node *c = node_for(m->graph, "yc", "Attention");
        CHECK(c && !ir_attr_find(c, "kiln_qkv_packed") && c->in[1] && c->in[2],
              "attn_qkv_split: yc keeps its Split (K is a graph output)");
        ir_model_free(m);
        kiln_model_free(km);
    }
    /* the whole pipeline packs too */
    pattern_case("attn_bert.onnx", "all", "Attention=1 FusedGemm=1 total=2", 1e-4, NULL);
    pattern_case("attn_qkv_gqa.onnx", "all", "Attention=2 FusedGemm=2 total=4", 1e-4, NULL);
    pattern_case("attn_qkv_split.onnx", "all", "Attention=3 FusedGemm=3 Split=1 total=7", 1e-4,
                 NULL);
    /* engines: the packed layers serialize, load and run (dynamic B, S) */
    qkv_engine_case("attn_qkv_gqa.onnx", 4);
    qkv_engine_case("attn_qkv_split.onnx", 7);
}

/* The recognitions must survive the rest of the pipeline. */
static void test_pipeline(void) {
    pattern_case("attn_bert.onnx", "all", "Attention=1 Softmax=0", 1e-4, NULL);
    pattern_case("ln_basic.onnx", "all", "LayerNormalization=1 total=1", 1e-4, NULL);
    pattern_case("gelu.onnx", "all", "Erf=0 Tanh=0", 1e-4, NULL);
    pattern_case("rms.onnx", "all", "RMSNormalization=2 total=2", 1e-4, NULL);
}

/* ------------------------------------------------------------ node tests */
/* The whole pipeline on an ONNX backend node test (the function-expanded
** attention / GELU / norm graphs): outputs vs the expected ones. Returns
** the number of recognized nodes, -1 when the case could not run. */
static int node_case(const char *name) {
    char path[1500];
    snprintf(path, sizeof path, NODE_DIR "%s/model.onnx", name);
    kiln_model *km;
    ir_model *m;
    if (!load2(path, &km, &m)) {
        CHECK(0, "%s: cannot load", name);
        return -1;
    }
    kiln_status st = run_passes(m, "all");
    CHECK(!st, "%s: pipeline failed: %s", name, st ? kiln_last_error() : "");
    const ir_graph *g = m->graph;
    int found = count_op(g, "Attention") + count_op(g, "Gelu") +
                count_op(g, "LayerNormalization") + count_op(g, "RMSNormalization");
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i]->op == OP_FusedGemm &&
            strncmp(ir_attr_str(g->nodes[i], "activation", ""), "Gelu", 4) == 0)
            found++;
    for (int set = 0; !st; set++) {
        char dir[1300];
        snprintf(dir, sizeof dir, NODE_DIR "%s/test_data_set_%d", name, set);
        if (!file_exists(dir)) break;
        node_data_set(name, g, dir, true);
    }
    ir_model_free(m);
    kiln_model_free(km);
    return st ? -1 : found;
}

static void test_node_cases(void) {
    static const char *const prefixes[] = {"test_attention_", "test_gelu_",
                                           "test_layer_normalization_",
                                           "test_rms_normalization_"};
    DIR *d = opendir(NODE_DIR);
    if (!d) {
        fprintf(stderr, "skip node tests (no %s)\n", NODE_DIR);
        return;
    }
    int cases = 0, hit = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        bool want = strstr(e->d_name, "_expanded") != NULL;
        bool pre = false;
        for (size_t i = 0; i < KILN_ARRAY_LEN(prefixes); i++)
            pre |= !strncmp(e->d_name, prefixes[i], strlen(prefixes[i]));
        if (!want || !pre) continue;
        int f = node_case(e->d_name);
        cases++;
        if (f > 0) hit++;
        if (g_verbose) fprintf(stderr, "%s: %d recognized\n", e->d_name, f);
    }
    closedir(d);
    printf("node tests (function-expanded attention/GELU/norms, whole pipeline): %d cases, "
           "%d with a recognized node\n", cases, hit);
}

/* ------------------------------------------------------------ real models */
/* Optimized outputs vs the ones stored in dir (onnxruntime's). */
static void compare_io(const char *path, const ir_graph *g, const char *dir) {
    int ni = g->n_inputs, no = g->n_outputs;
    kiln_tensor **in = calloc((size_t)ni + 1, sizeof *in);
    kiln_tensor **out = calloc((size_t)no + 1, sizeof *out);
    char f[1200];
    bool ok = in && out;
    for (int i = 0; ok && i < ni; i++) {
        snprintf(f, sizeof f, "%s/input_%d.pb", dir, i);
        ok = !kiln_tensor_load_pb(f, &in[i], NULL);
    }
    CHECK(ok, "%s: cannot read inputs from %s", path, dir);
    kiln_status st = ok ? ref_run_graph(g, (const kiln_tensor *const *)in, NULL, out) : 1;
    if (ok) CHECK(!st, "%s: run failed: %s", path, st ? kiln_last_error() : "");
    for (int o = 0; ok && !st && o < no; o++) {
        kiln_tensor *want;
        snprintf(f, sizeof f, "%s/output_%d.pb", dir, o);
        if (kiln_tensor_load_pb(f, &want, NULL)) {
            CHECK(0, "%s: cannot read %s", path, f);
            continue;
        }
        double wa, e = diff(out[o], want, 1e-4, 1e-3, &wa);
        printf("  vs onnxruntime: output '%s' max abs diff %.3g\n", g->outputs[o]->name, wa);
        CHECK(e >= 0 && e <= 1, "%s: output %d differs from %s (err %g, max abs %g)", path, o,
              f, e, wa);
        tensor_free(want);
    }
    free_tensors(in, ni);
    free_tensors(out, no);
}

static void real_model(const char *path, const char *io_dir) {
    kiln_model *km;
    ir_model *m;
    if (!load2(path, &km, &m)) {
        CHECK(0, "%s: cannot load", path);
        return;
    }
    int before = m->graph->n_nodes;
    kiln_status st = run_passes(m, "fold noop dce layernorm gelu attention");
    CHECK(!st, "%s: passes failed: %s", path, st ? kiln_last_error() : "");
    if (!st) {
        const ir_graph *g = m->graph;
        printf("%s: %d nodes; recognized LayerNormalization %d, RMSNormalization %d, "
               "Gelu %d, Attention %d (left: Softmax %d, Erf %d, Tanh %d, ReduceMean %d)\n",
               path, before, count_op(g, "LayerNormalization"), count_op(g, "RMSNormalization"),
               count_op(g, "Gelu"), count_op(g, "Attention"), count_op(g, "Softmax"),
               count_op(g, "Erf"), count_op(g, "Tanh"), count_op(g, "ReduceMean"));
        int three = 0;
        for (int i = 0; i < g->n_nodes; i++)
            if (g->nodes[i]->op == OP_Attention && g->nodes[i]->in[0]->type.rank == 3) three++;
        printf("  Attention nodes in the 3-D form (head reshapes absorbed): %d\n", three);
        st = run_passes(m, "all");
        CHECK(!st, "%s: pipeline failed: %s", path, st ? kiln_last_error() : "");
    }
    if (!st) {
        printf("  after the whole pipeline: %d layers\n", m->graph->n_nodes);
        same_outputs(path, km->ir->graph, m->graph, 7, NULL, 1e-3);
        if (io_dir) compare_io(path, m->graph, io_dir);
    }
    ir_model_free(m);
    kiln_model_free(km);
}

int main(int argc, char **argv) {
    g_verbose = getenv("KILN_TEST_VERBOSE") != NULL;
    if (argc > 1) {
        const char *io = NULL;
        for (int i = 1; i < argc; i++) {
            if (!strcmp(argv[i], "--io") && i + 1 < argc) {
                io = argv[++i];
                continue;
            }
            real_model(argv[i], io);
            io = NULL;
        }
        return test_summary();
    }
    if (!file_exists(DATA "ln_basic.onnx")) {
        fprintf(stderr, "run from the repository root (no " DATA ")\n");
        return 1;
    }
    test_layernorm();
    test_rmsnorm();
    test_gelu();
    test_attention();
    test_qkv();
    test_pipeline();
    test_node_cases();
    return test_summary();
}

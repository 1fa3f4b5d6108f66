/* test_passes.c: the graph optimizer's structural passes and the IR-edit
** API. Each pass runs on a small model (tests/data/passes, made by
** make_pass_models.py); the test checks that the rewrite happened (op
** counts, attributes) and that the graph's outputs are unchanged on random
** inputs (reference executor on the original vs the rewritten IR). The whole
** pipeline then runs on ONNX backend node-test models against their expected
** outputs. Run from the repository root. Extra arguments are model paths to
** push through the whole pipeline (node counts and output check printed).
** Prints `N passed, M failed`. */
#include "../../src/ops/fused.h"
#include "test_util.h"

#include <dirent.h>

#define DATA "tests/data/passes/"

/* ------------------------------------------------------------ helpers */
/* Runs both graphs on the same random inputs (two sizes); outputs must
** agree (same names too). */
static double g_rtol = 1e-4, g_atol = 1e-5;

static void same_outputs(const char *what, const ir_graph *ga, const ir_graph *gb,
                         int64_t sym_dim) {
    CHECK(ga->n_outputs == gb->n_outputs, "%s: %d outputs vs %d", what, ga->n_outputs,
          gb->n_outputs);
    CHECK(ga->n_inputs == gb->n_inputs, "%s: input counts differ", what);
    if (ga->n_outputs != gb->n_outputs || ga->n_inputs != gb->n_inputs) return;
    for (int o = 0; o < ga->n_outputs; o++)
        CHECK(!strcmp(ga->outputs[o]->name, gb->outputs[o]->name),
              "%s: output %d renamed '%s' -> '%s'", what, o, ga->outputs[o]->name,
              gb->outputs[o]->name);
    for (int trial = 0; trial < 2; trial++)
        same_run(what, ga, gb, sym_dim + trial, NULL, g_atol, g_rtol);
}

/* Loads DATA/file, runs the passes, checks the op counts, compares. */
static ir_model *pass_case(const char *file, const char *passes, const char *spec,
                           kiln_model **km_out) {
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
        same_outputs(what, km->ir->graph, opt->graph, 2);
    }
    if (km_out) {
        *km_out = km;
        return opt;
    }
    ir_model_free(opt);
    kiln_model_free(km);
    return NULL;
}

static const char *act_of(const ir_graph *g, const char *out) {
    ir_node *n = producer_of(g, out);
    return n ? ir_attr_str(n, "activation", "") : "(none)";
}

/* ------------------------------------------------------------ the passes */
static void test_fold(void) {
    kiln_model *km;
    ir_model *m = pass_case("fold.onnx", "fold",
                            "Shape=0 Gather=0 Concat=0 Range=0 Mul=0 ReduceSum=0 "
                            "Reshape=1 Add=1 total=2", &km);
    if (m) {
        ir_node *r = producer_of(m->graph, "xr");
        CHECK(r && r->in[1] && r->in[1]->const_val, "fold: Reshape shape not constant");
        ir_model_free(m);
        kiln_model_free(km);
    }
    /* the training-mode Dropout must stay (the reference cannot run it, so
    ** no numeric comparison) */
    kiln_model *k2;
    ir_model *o2;
    if (load2(DATA "fold_dropout_train.onnx", &k2, &o2)) {
        CHECK(!run_passes(o2, "fold"), "fold_dropout_train: %s", kiln_last_error());
        CHECK(count_op(o2->graph, "Dropout") == 1, "training Dropout was folded");
        ir_model_free(o2);
        kiln_model_free(k2);
    }
}

/* fold: pads computed from shapes twice in a row (torchvision's Swin): the
** second round's Shape reads the first Pad's output, static only once the
** first round folded; the pass sweeps again after re-inferring types. */
static void test_fold_chain(void) {
    pass_case("fold_chain.onnx", "fold",
              "Shape=0 Gather=0 Mod=0 ConstantOfShape=0 Slice=0 Transpose=0 Pad=2 Reshape=1 "
              "total=3", NULL);
}

/* fold: a constant of copies of one row, read by an Add whose other input
** has the full shape, keeps one row; constants whose readers need their
** dims, that a MatMul reads, or that repeat along the last dim only keep
** their shapes. Exact (same values read). */
static void test_fold_repeat(void) {
    kiln_model *km;
    ir_model *m = pass_case("fold_repeat.onnx", "fold", "Add=4 Mul=1 MatMul=1 total=6", &km);
    if (!m) return;
    const ir_graph *g = m->graph;
    ir_node *a = producer_of(g, "a"), *mu = producer_of(g, "m"), *a3 = producer_of(g, "a3");
    ir_node *mm = producer_of(g, "mm");
    const ir_value *rep = a ? a->in[1] : NULL;
    CHECK(rep && rep->const_val && rep->type.rank == 3 && rep->type.dims[0] == 1 &&
              rep->type.dims[1] == 1 && rep->type.dims[2] == 64,
          "fold_repeat: the broadcast constant keeps one row");
    CHECK(mu && mu->in[0]->type.dims[0] == 4 && mu->in[0]->type.dims[1] == 32,
          "fold_repeat: the constant that sizes the Mul's output keeps its shape");
    CHECK(a3 && a3->in[1]->type.dims[0] == 4 && a3->in[1]->type.dims[1] == 32 &&
              a3->in[1]->type.dims[2] == 64,
          "fold_repeat: the constant repeated along the last dim keeps its shape");
    CHECK(mm && mm->in[1]->type.dims[0] == 64 && mm->in[1]->type.dims[1] == 64,
          "fold_repeat: the constant a MatMul reads keeps its shape");
    double ra = g_rtol, aa = g_atol;
    g_rtol = 0, g_atol = 0;
    same_outputs("fold_repeat exact", km->ir->graph, g, 2);
    g_rtol = ra, g_atol = aa;
    ir_model_free(m);
    kiln_model_free(km);
}

static void test_noop(void) {
    kiln_model *km;
    ir_model *m = pass_case("noop.onnx", "noop",
                            "Relu=1 Identity=1 Expand=1 Mul=1 total=4", &km);
    if (!m) return;
    ir_node *r = producer_of(m->graph, "y");
    CHECK(r && !strcmp(r->op_type, "Relu"), "noop: 'y' is not produced by the Relu");
    ir_node *id = producer_of(m->graph, "y2");
    CHECK(id && !strcmp(id->op_type, "Identity"), "noop: input->output Identity removed");
    ir_model_free(m);
    kiln_model_free(km);
}

static void test_dce(void) {
    pass_case("dce.onnx", "dce", "Relu=1 total=1", NULL);
}

static void test_conv_bn(void) {
    kiln_model *km;
    ir_model *m = pass_case("conv_bn.onnx", "conv_bn",
                            "Conv=3 ConvTranspose=1 BatchNormalization=1 Relu=1 total=6",
                            &km);
    if (!m) return;
    ir_node *c = producer_of(m->graph, "b1");
    CHECK(c && c->op == OP_Conv && c->n_in == 3 && c->in[2],
          "conv_bn: conv without bias did not get one");
    c = producer_of(m->graph, "y3");
    CHECK(c && c->op == OP_BatchNormalization, "conv_bn: shared conv output was folded");
    ir_model_free(m);
    kiln_model_free(km);
    /* and with the rest of the pipeline: Conv+BN+Relu is one FusedConv */
    pass_case("conv_bn.onnx", "conv_bn bias_act",
              "FusedConv=3 ConvTranspose=1 BatchNormalization=1 total=5", NULL);
}

static void test_matmul_add(void) {
    kiln_model *km;
    ir_model *m = pass_case("matmul_add.onnx", "matmul_add",
                            "FusedGemm=5 Add=2 MatMul=1 total=8", &km);
    if (!m) return;
    const ir_graph *g = m->graph;
    ir_node *n = producer_of(g, "y");
    CHECK(n && n->op == OP_FusedGemm && n->n_in == 3, "matmul_add: bias not fused");
    n = producer_of(g, "y2");
    CHECK(n && n->op == OP_FusedGemm && n->n_in == 3 && n->in[2]->type.rank == 1,
          "matmul_add: [1,1,16] bias not fused as a vector");
    n = producer_of(g, "y3");
    CHECK(n && n->op == OP_Add, "matmul_add: a [5,1] bias was fused");
    n = producer_of(g, "y5");
    CHECK(n && n->op == OP_Add, "matmul_add: Add on a shared output was fused");
    n = producer_of(g, "y6");
    CHECK(n && n->op == OP_FusedGemm && ir_attr_int(n, "transB", 0) == 1 &&
              ir_attr_float(n, "alpha", 1) == 0.5f && ir_attr_float(n, "beta", 1) == 2.0f,
          "matmul_add: Gemm attributes lost");
    ir_model_free(m);
    kiln_model_free(km);
}

/* quantize_dynamic's Cast -> Mul(scale) [-> Add(bias)] after MatMulInteger
** folds into MatMulIntegerToFloat (qdyn.c); a full-shape Mul and a Cast read
** twice stay. */
static void test_qdyn(void) {
    kiln_model *km;
    ir_model *m = pass_case("qdyn.onnx", "qdyn",
                            "MatMulIntegerToFloat=2 MatMulInteger=2 ConvIntegerToFloat=2 Cast=2",
                            &km);
    if (!m) return;
    const ir_graph *g = m->graph;
    ir_node *n = producer_of(g, "y");
    CHECK(n && n->op == OP_MatMulIntegerToFloat && n->n_in == 6 && n->in[5] &&
              n->in[5]->const_val && n->in[4] && !n->in[2],
          "qdyn: y is not MatMulIntegerToFloat with scale and bias");
    n = producer_of(g, "y2");
    CHECK(n && n->op == OP_MatMulIntegerToFloat && n->n_in == 5 && n->in[2] && n->in[3],
          "qdyn: y2 (zero points, per-column scale, no bias) not folded");
    n = producer_of(g, "y3");
    CHECK(n && n->op == OP_Mul, "qdyn: a full-shape Mul was folded");
    n = producer_of(g, "y4");
    CHECK(n && n->op == OP_Mul, "qdyn: a Cast with two readers was folded");
    n = producer_of(g, "y6");
    CHECK(n && n->op == OP_ConvIntegerToFloat && n->n_in == 6 && n->in[5] &&
              tensor_numel(n->in[5]->const_val) == 4,
          "qdyn: y6 (ConvInteger, [1,4,1,1] bias) not folded with its bias");
    n = producer_of(g, "y7");
    CHECK(n && n->op == OP_Add, "qdyn: a bias broadcast along W was folded as per channel");
    ir_model_free(m);
    kiln_model_free(km);
}

/* DQ -> MatMul / Gemm with no Q after it folds into QFusedGemm (qdq.c);
** its bias Add, GELU, residual Add (an 8-bit DQ operand read as int8) and
** the next layer's Q fold into its epilogue (qepi.c); a graph output keeps
** its readers. Outputs as before (the int32 product scaled once against
** the float sum of dequantized products: float32 rounding apart). */
static void test_qdq_epi(void) {
    kiln_model *km;
    ir_model *m = pass_case("qdq_epi.onnx", "qdq gelu qepi",
                            "QFusedGemm=4 MatMul=0 Gemm=0 Gelu=0 Add=0 Relu=1 Erf=0 "
                            "QuantizeLinear=2 DequantizeLinear=0",
                            &km);
    if (!m) return;
    const ir_graph *g = m->graph;
    ir_node *n = producer_of(g, "gq");
    CHECK(n && n->op == OP_QFusedGemm && !strcmp(ir_attr_str(n, "activation", ""), "Gelu") &&
              n->n_in == 11 && n->in[5] && !n->in[6] && n->in[9] && n->in[10] &&
              n->out[0]->type.dtype == KILN_DTYPE_INT8,
          "qdq_epi: the FFN-in product is not QFusedGemm + bias + Gelu + Q");
    n = producer_of(g, "y");
    CHECK(n && n->op == OP_QFusedGemm && n->n_in >= 9 && n->in[5] && n->in[6] &&
              n->in[6]->type.dtype == KILN_DTYPE_INT8 && n->in[7] &&
              !ir_attr_str(n, "activation", "")[0] &&
              n->in[0]->producer && n->in[0]->producer->op == OP_QFusedGemm,
          "qdq_epi: the FFN-out product is not QFusedGemm + bias + int8 residual on the "
          "FFN-in's int8 output");
    n = producer_of(g, "y2");
    CHECK(n && n->op == OP_QFusedGemm && !strcmp(ir_attr_str(n, "activation", ""), "Relu") &&
              n->in[5] && n->in[1]->const_val && n->in[1]->const_val->dims[0] == 16 &&
              tensor_numel(n->in[4]->const_val) == 1,
          "qdq_epi: the Gemm (transB, per-tensor scale) is not QFusedGemm + bias + Relu");
    n = producer_of(g, "y3");
    CHECK(n && n->op == OP_QFusedGemm && n->n_in == 5,
          "qdq_epi: a product that is a graph output took its reader");
    ir_model_free(m);
    kiln_model_free(km);
}

/* LayerNorm -> Q (its only reader) becomes QLayerNormalization (qepi.c),
** outputs as before; in an FP16 build the product between the two writes
** float16 for the second QLayerNormalization (precision.c), which then
** normalizes in float16, with no Cast anywhere (the first one reads the
** float32 graph input, the last product writes the float32 output). */
static void test_qdq_ln(void) {
    kiln_model *km;
    ir_model *m = pass_case("qdq_ln.onnx", "qdq gelu qepi",
                            "QLayerNormalization=2 QFusedGemm=2 LayerNormalization=0 Add=0 "
                            "QuantizeLinear=0 DequantizeLinear=0",
                            &km);
    if (!m) return;
    ir_graph *g = m->graph;
    ir_node *n = producer_of(g, "ln2q");
    CHECK(n && n->op == OP_QLayerNormalization && n->in[0]->producer &&
              n->in[0]->producer->op == OP_QFusedGemm,
          "qdq_ln: the second LayerNorm + Q is not a QLayerNormalization after the product");
    pass_ctx pc;
    memset(&pc, 0, sizeof pc);
    pc.m = m, pc.g = g, pc.opt_level = 3;
    kiln_status st = pass_reduced_precision(&pc, KILN_DTYPE_FLOAT16);
    CHECK(!st, "qdq_ln: precision pass failed: %s", st ? kiln_last_error() : "");
    int casts = 0;
    for (int i = 0; !st && i < g->n_nodes; i++) casts += g->nodes[i]->op == OP_Cast;
    n = producer_of(g, "ln2q");
    CHECK(!st && n && n->in[0]->type.dtype == KILN_DTYPE_FLOAT16 &&
              n->in[1]->type.dtype == KILN_DTYPE_FLOAT16 &&
              n->out[0]->type.dtype == KILN_DTYPE_INT8 &&
              ir_attr_int(n->in[0]->producer, "output_dtype", 0) == KILN_DTYPE_FLOAT16,
          "qdq_ln: the product does not write float16 for the QLayerNormalization");
    n = producer_of(g, "y");
    CHECK(n && n->op == OP_QFusedGemm && n->out[0]->type.dtype == KILN_DTYPE_FLOAT32,
          "qdq_ln: the graph output's product does not keep float32");
    CHECK(casts == 0, "qdq_ln: %d Cast layers, expected none", casts);
    ir_model_free(m);
    kiln_model_free(km);
}

static void test_bias_act(void) {
    kiln_model *km;
    ir_model *m = pass_case("bias_act_conv.onnx", "bias_act",
                            "FusedConv=8 Conv=0 Add=2 Relu=2 Tanh=1 HardSigmoid=1 "
                            "HardSwish=1 Sigmoid=0 Clip=0 LeakyRelu=0 total=15", &km);
    if (m) {
        const ir_graph *g = m->graph;
        ir_node *n = producer_of(g, "y");
        CHECK(n && n->op == OP_FusedConv && n->n_in == 4 && n->in[3] &&
                  !strcmp(n->in[3]->name, "x") && !strcmp(act_of(g, "y"), "Relu"),
              "bias_act: ResNet block not fused (bias, residual, Relu)");
        n = producer_of(g, "y2");
        CHECK(n && !strcmp(act_of(g, "y2"), "Clip") &&
                  ir_attr_float(n, "activation_alpha", 0) == 0.1f &&
                  isinf(ir_attr_float(n, "activation_beta", 0)),
              "bias_act: Clip(min only) not fused");
        CHECK(!strcmp(act_of(g, "y3"), "SiLU"), "bias_act: SiLU not fused");
        n = producer_of(g, "y4");
        CHECK(n && n->op == OP_Add, "bias_act: non-per-channel bias was fused");
        CHECK(!strcmp(act_of(g, "y5"), ""), "bias_act: fused into a graph output");
        CHECK(!strcmp(act_of(g, "l6"), "LeakyRelu"), "bias_act: LeakyRelu not fused");
        n = producer_of(g, "c7");
        CHECK(n && n->op == OP_FusedConv && !strcmp(act_of(g, "c7"), ""),
              "bias_act: shared conv output was fused");
        n = producer_of(g, "a8");
        CHECK(n && n->op == OP_FusedConv && n->n_in == 4,
              "bias_act: residual not fused into the first Add");
        ir_model_free(m);
        kiln_model_free(km);
    }
    m = pass_case("bias_act_gemm.onnx", "matmul_add bias_act",
                  "FusedGemm=5 Add=0 Gelu=0 Relu=0 Tanh=0 Sigmoid=0 total=5", &km);
    if (m) {
        const ir_graph *g = m->graph;
        CHECK(!strcmp(act_of(g, "y"), "Gelu"), "bias_act: Gelu not fused");
        CHECK(!strcmp(act_of(g, "y2"), "GeluTanh"), "bias_act: Gelu(tanh) not fused");
        ir_node *n = producer_of(g, "y3");
        CHECK(n && !strcmp(act_of(g, "y3"), "Relu") && ir_attr_float(n, "beta", 0) == 1.0f,
              "bias_act: Gemm + bias + Relu");
        CHECK(!strcmp(act_of(g, "y4"), "Tanh"), "bias_act: Tanh not fused");
        CHECK(!strcmp(act_of(g, "y5"), "Sigmoid"), "bias_act: Sigmoid not fused");
        ir_model_free(m);
        kiln_model_free(km);
    }
    /* residual Adds into FusedGemm (R, input 3), before the activation */
    m = pass_case("bias_act_gemm_res.onnx", "matmul_add bias_act",
                  "FusedGemm=7 Add=3 Relu=0 Gelu=0 Sigmoid=1 total=11", &km);
    if (m) {
        const ir_graph *g = m->graph;
        const ir_value *r = value_named(g, "r");
        ir_node *n = producer_of(g, "y");
        CHECK(n && n->op == OP_FusedGemm && n->n_in == 4 && n->in[2] && n->in[3] == r &&
                  !strcmp(act_of(g, "y"), ""),
              "bias_act: Gemm + bias + residual not fused");
        n = producer_of(g, "y2");
        CHECK(n && n->op == OP_FusedGemm && n->n_in == 4 && n->in[3] == r &&
                  !strcmp(act_of(g, "y2"), "Relu"),
              "bias_act: residual (left operand) + Relu not fused");
        n = producer_of(g, "y3");
        CHECK(n && n->op == OP_Add, "bias_act: residual after the activation was fused");
        CHECK(n && n->in[0]->producer && !strcmp(act_of(g, n->in[0]->name), "Gelu"),
              "bias_act: Gelu before the residual not fused");
        n = producer_of(g, "y4");
        CHECK(n && n->op == OP_FusedGemm && n->n_in == 4 && !n->in[2] && n->in[3] == r,
              "bias_act: residual without bias not fused");
        n = producer_of(g, "y5");
        CHECK(n && n->op == OP_Add, "bias_act: a broadcast residual was fused");
        n = producer_of(g, "y6");
        CHECK(n && n->op == OP_FusedGemm && n->n_in == 4 &&
                  n->in[3] == value_named(g, "r2") && ir_attr_float(n, "beta", 1) == 2.0f,
              "bias_act: Gemm with C + residual not fused");
        n = producer_of(g, "y7");
        CHECK(n && n->op == OP_Add, "bias_act: residual on a shared output was fused");
        ir_model_free(m);
        kiln_model_free(km);
    }
    /* --fp16 (device builds): R is data of the layer's type, cast with A */
    m = pass_case("bias_act_gemm_res.onnx", "all", "FusedGemm=7 total=11", &km);
    if (m) {
        pass_ctx pc;
        memset(&pc, 0, sizeof pc);
        pc.m = m, pc.g = m->graph, pc.opt_level = 3;
        kiln_status st = pass_reduced_precision(&pc, KILN_DTYPE_FLOAT16);
        CHECK(!st, "bias_act_gemm_res: precision pass failed: %s", st ? kiln_last_error() : "");
        int n16 = 0;
        for (int i = 0; !st && i < m->graph->n_nodes; i++) {
            const ir_node *n = m->graph->nodes[i];
            if (n->op != OP_FusedGemm || n->n_in < 4 || !n->in[3]) continue;
            CHECK(n->in[0]->type.dtype == KILN_DTYPE_FLOAT16 &&
                      n->in[3]->type.dtype == KILN_DTYPE_FLOAT16 &&
                      n->out[0]->type.dtype == KILN_DTYPE_FLOAT16,
                  "bias_act_gemm_res --fp16: FusedGemm '%s' with R not in float16", n->name);
            n16++;
        }
        CHECK(n16 == 4, "bias_act_gemm_res --fp16: %d FusedGemm layers with R", n16);
        g_rtol = 1e-2;
        g_atol = 1e-2;
        if (!st) same_outputs("bias_act_gemm_res --fp16", km->ir->graph, m->graph, 2);
        g_rtol = 1e-4;
        g_atol = 1e-5;
        ir_model_free(m);
        kiln_model_free(km);
    }
}

static void test_transpose(void) {
    kiln_model *km;
    ir_model *m = pass_case("transpose.onnx", "transpose",
                            "Transpose=3 Reshape=2 Relu=1 Sigmoid=1 Tanh=1 Neg=1 "
                            "Unsqueeze=0 Flatten=0 total=9", &km);
    if (!m) return;
    const ir_graph *g = m->graph;
    ir_node *n = producer_of(g, "y");
    CHECK(n && n->op == OP_Sigmoid && n->in[0] == value_named(g, "r"),
          "transpose: cancelling pair not removed");
    n = producer_of(g, "y4");
    CHECK(n && n->op == OP_Tanh && n->in[0] == value_named(g, "r"),
          "transpose: reshape round trip not removed");
    n = producer_of(g, "y2");
    CHECK(n && n->op == OP_Transpose && n->in[0] == value_named(g, "r"),
          "transpose: pair not merged");
    n = producer_of(g, "y7");
    CHECK(n && n->op == OP_Reshape && n->in[0] == value_named(g, "r"),
          "transpose: Unsqueeze/Transpose/Flatten not collapsed");
    ir_model_free(m);
    kiln_model_free(km);
}

static void test_eltwise(void) {
    kiln_model *km;
    ir_model *m = pass_case("eltwise.onnx", "eltwise",
                            "FusedElementwise=6 Sigmoid=1 Sqrt=1 total=8", &km);
    if (!m) return;
    const ir_graph *g = m->graph;
    ir_node *n = producer_of(g, "y");
    int cnt = 0;
    if (n) ir_attr_ints(n, "program", &cnt);
    CHECK(n && n->op == OP_FusedElementwise && cnt == 5 * 4 && n->n_in == 2,
          "eltwise: first chain (%d program ints, %d inputs)", cnt, n ? n->n_in : -1);
    n = producer_of(g, "y4");
    CHECK(n && n->op == OP_Sigmoid, "eltwise: fused across a graph output");
    ir_model_free(m);
    kiln_model_free(km);
}

static void test_half_and_old(void) {
    /* float16: the fused kernels round once where the graph rounded after
    ** every op */
    g_rtol = 1e-2;
    g_atol = 2e-3;
    kiln_model *km;
    ir_model *m = pass_case("half.onnx", "all", "FusedConv=1 FusedGemm=1 "
                            "FusedElementwise=1 total=3", &km);
    g_rtol = 1e-4;
    g_atol = 1e-5;
    if (m) {
        CHECK(!strcmp(act_of(m->graph, "y"), "Relu") && !strcmp(act_of(m->graph, "y2"), "Tanh"),
              "half: activations not fused");
        ir_model_free(m);
        kiln_model_free(km);
    }
    m = pass_case("opset10.onnx", "all", "FusedConv=1 FusedElementwise=1 total=2", &km);
    if (m) {
        ir_node *n = producer_of(m->graph, "y");
        CHECK(n && !strcmp(act_of(m->graph, "y"), "Clip") &&
                  ir_attr_float(n, "activation_alpha", 0) == -0.5f &&
                  ir_attr_float(n, "activation_beta", 0) == 0.75f,
              "opset10: Clip attributes not carried");
        ir_model_free(m);
        kiln_model_free(km);
    }
}

/* --fp16 device builds: a QuantizeLinear behind a float16 layer reads the
** float16 value itself (no Cast back to float32 in front of it) and keeps
** its uint8 output; the DequantizeLinear stays float32. */
static void test_qdq_half(void) {
    kiln_model *km;
    ir_model *m;
    if (!load2(DATA "qdq_half.onnx", &km, &m)) {
        CHECK(0, "qdq_half: cannot load");
        return;
    }
    pass_ctx pc;
    memset(&pc, 0, sizeof pc);
    pc.m = m, pc.g = m->graph, pc.opt_level = 3;
    kiln_status st = pass_reduced_precision(&pc, KILN_DTYPE_FLOAT16);
    CHECK(!st, "qdq_half: precision pass failed: %s", st ? kiln_last_error() : "");
    ir_node *q = NULL;
    int casts = 0;
    for (int i = 0; !st && i < m->graph->n_nodes; i++) {
        ir_node *n = m->graph->nodes[i];
        if (n->op == OP_QuantizeLinear) q = n;
        casts += n->op == OP_Cast;
    }
    CHECK(q && q->in[0]->type.dtype == KILN_DTYPE_FLOAT16 && q->in[0]->producer &&
              q->in[0]->producer->op == OP_Relu && q->out[0]->type.dtype == KILN_DTYPE_UINT8,
          "qdq_half: QuantizeLinear reads the float16 Relu output directly");
    CHECK(casts == 1, "qdq_half: %d Cast layers, expected 1 (the input's)", casts);
    ir_node *dq = producer_of(m->graph, "y");
    CHECK(dq && dq->op == OP_DequantizeLinear && dq->out[0]->type.dtype == KILN_DTYPE_FLOAT32,
          "qdq_half: DequantizeLinear keeps float32");
    ir_model_free(m);
    kiln_model_free(km);
    /* a DequantizeLinear read by a float16 Add writes float16 itself; the
    ** result equals the float32 graph's within float16 rounding (x reaches
    ** the QuantizeLinear in float32 in both graphs, so the integers agree) */
    if (!load2(DATA "qdq_half2.onnx", &km, &m)) {
        CHECK(0, "qdq_half2: cannot load");
        return;
    }
    memset(&pc, 0, sizeof pc);
    pc.m = m, pc.g = m->graph, pc.opt_level = 3;
    st = pass_reduced_precision(&pc, KILN_DTYPE_FLOAT16);
    CHECK(!st, "qdq_half2: precision pass failed: %s", st ? kiln_last_error() : "");
    ir_node *add = NULL;
    casts = 0;
    for (int i = 0; !st && i < m->graph->n_nodes; i++) {
        ir_node *n = m->graph->nodes[i];
        if (n->op == OP_Add) add = n;
        casts += n->op == OP_Cast;
    }
    dq = add && add->in[0]->producer ? add->in[0]->producer : NULL;
    CHECK(dq && dq->op == OP_DequantizeLinear && dq->out[0]->type.dtype == KILN_DTYPE_FLOAT16 &&
              ir_attr_int(dq, "output_dtype", 0) == KILN_DTYPE_FLOAT16 &&
              add->out[0]->type.dtype == KILN_DTYPE_FLOAT16,
          "qdq_half2: DequantizeLinear writes float16 for the float16 Add");
    CHECK(casts == 1, "qdq_half2: %d Cast layers, expected 1 (the output's)", casts);
    if (!st) {
        g_rtol = 1e-2;
        g_atol = 2e-3;
        same_outputs("qdq_half2 --fp16", km->ir->graph, m->graph, 2);
        g_rtol = 1e-4;
        g_atol = 1e-5;
    }
    ir_model_free(m);
    kiln_model_free(km);
}

/* --fp16 device builds: a Gather from a float32 constant table whose reader
** computes in float16 gathers from a float16 copy of the table (no Cast
** after it); a Gather that is a graph output, or read by a float32 layer,
** keeps the float32 table; a Shape reads the float16 value as it is. Exact:
** the float16 graph's y equals relu(float16(float16(table[ids]) +
** float16(x))) element for element. */
static void test_gather_half(void) {
    kiln_model *km;
    ir_model *m;
    if (!load2(DATA "gather_half.onnx", &km, &m)) {
        CHECK(0, "gather_half: cannot load");
        return;
    }
    pass_ctx pc;
    memset(&pc, 0, sizeof pc);
    pc.m = m, pc.g = m->graph, pc.opt_level = 3;
    kiln_status st = pass_reduced_precision(&pc, KILN_DTYPE_FLOAT16);
    CHECK(!st, "gather_half: precision pass failed: %s", st ? kiln_last_error() : "");
    const ir_graph *g = m->graph;
    int casts = 0;
    for (int i = 0; !st && i < g->n_nodes; i++) casts += g->nodes[i]->op == OP_Cast;
    ir_node *add = producer_of(g, "s");
    ir_node *ga = add && add->op == OP_Add ? add->in[0]->producer : NULL;
    CHECK(ga && ga->op == OP_Gather && ga->in[0]->const_val &&
              ga->in[0]->type.dtype == KILN_DTYPE_FLOAT16 &&
              ga->out[0]->type.dtype == KILN_DTYPE_FLOAT16,
          "gather_half: the Add reads a Gather from a float16 table");
    ir_node *g2 = producer_of(g, "y2");
    CHECK(g2 && g2->op == OP_Gather && g2->in[0]->type.dtype == KILN_DTYPE_FLOAT32 &&
              g2->out[0]->type.dtype == KILN_DTYPE_FLOAT32,
          "gather_half: the Gather writing a graph output keeps float32");
    ir_node *ex = producer_of(g, "y3");
    ir_node *g3 = ex && ex->op == OP_Exp ? ex->in[0]->producer : NULL;
    CHECK(g3 && g3->op == OP_Gather && g3->in[0]->type.dtype == KILN_DTYPE_FLOAT32,
          "gather_half: the Gather read by a float32 Exp keeps float32");
    ir_node *sh = producer_of(g, "shp");
    CHECK(sh && sh->op == OP_Shape && add && sh->in[0] == add->out[0] &&
              sh->in[0]->type.dtype == KILN_DTYPE_FLOAT16,
          "gather_half: the Shape reads the float16 sum (no Cast for it)");
    /* x's Cast to float16 and y's back to float32; none after a Gather or
    ** for the Shape */
    CHECK(casts == 2, "gather_half: %d Cast layers, expected 2", casts);
    if (!st) {
        /* exact check on the reference backend */
        int64_t idd[2] = {2, 5}, xd[3] = {2, 5, 16};
        kiln_tensor *in[2] = {NULL, NULL}, *out[4] = {NULL, NULL, NULL, NULL};
        CHECK(!tensor_new(KILN_DTYPE_INT64, 2, idd, &in[0]) &&
                  !tensor_new(KILN_DTYPE_FLOAT32, 3, xd, &in[1]),
              "gather_half: inputs");
        if (in[0] && in[1]) {
            for (int k = 0; k < 10; k++) ((int64_t *)in[0]->data)[k] = (k * 7) % 10;
            for (int k = 0; k < 160; k++) ((float *)in[1]->data)[k] = (float)(rnd() * 4 - 2);
            const ir_value *tv = value_named(km->ir->graph, "table");
            st = ref_run_graph(g, (const kiln_tensor *const *)in, NULL, out);
            CHECK(!st, "gather_half: run failed: %s", st ? kiln_last_error() : "");
            bool exact = !st && tv && tv->const_val && out[0]->dtype == KILN_DTYPE_FLOAT32;
            for (int k = 0; exact && k < 160; k++) {
                int64_t id = ((int64_t *)in[0]->data)[k / 16];
                float t = ((const float *)tv->const_val->data)[id * 16 + k % 16];
                float x = ((float *)in[1]->data)[k];
                float want = f16_to_f32(f32_to_f16(f16_to_f32(f32_to_f16(t)) +
                                                   f16_to_f32(f32_to_f16(x))));
                want = want < 0 ? 0.0f : want;
                float got = ((float *)out[0]->data)[k];
                float y2 = ((float *)out[1]->data)[k];
                exact = got == want && y2 == t;
                CHECK(exact, "gather_half: element %d: %g, expected %g (y2 %g vs %g)", k, got,
                      want, y2, t);
            }
            const int64_t *shp = !st && out[3] ? (const int64_t *)out[3]->data : NULL;
            CHECK(shp && shp[0] == 2 && shp[1] == 5 && shp[2] == 16, "gather_half: Shape output");
        }
        for (int k = 0; k < 2; k++) tensor_free(in[k]);
        for (int k = 0; k < 4; k++) tensor_free(out[k]);
        g_rtol = 1e-2;
        g_atol = 2e-3;
        same_outputs("gather_half --fp16", km->ir->graph, m->graph, 2);
        g_rtol = 1e-4;
        g_atol = 1e-5;
    }
    ir_model_free(m);
    kiln_model_free(km);
}

static void test_pipeline_models(void) {
    pass_case("resnet_block.onnx", "all", "FusedConv=3 total=3", NULL);
    pass_case("bias_act_conv.onnx", "all", "FusedConv=8 FusedElementwise=1 total=14",
              NULL);
    pass_case("eltwise.onnx", "all", "total=8", NULL);
    pass_case("transpose.onnx", "all", "total=9", NULL);
    pass_case("matmul_add.onnx", "all", "FusedGemm=5 total=8", NULL);
    pass_case("bias_act_gemm_res.onnx", "all", "FusedGemm=7 total=11", NULL);
    pass_case("noop.onnx", "all", "total=4", NULL);
}

/* FusedGemm with transA/transB, alpha/beta, batch broadcasting and an
** activation, written by hand over an equivalent unfused graph. */
static void test_fused_gemm_kernel(void) {
    kiln_model *km;
    ir_model *m;
    if (!load2(DATA "gemm_trans.onnx", &km, &m)) {
        CHECK(0, "gemm_trans: cannot load");
        return;
    }
    ir_graph *g = m->graph;
    ir_node *n = ir_edit_add_node(g, OP_FusedGemm, 3, 1, "fg");
    CHECK(n && !strcmp(n->domain, "kiln") && n->schema, "add_node: internal op");
    if (!n) goto done;
    n->in[0] = value_named(g, "a");
    n->in[1] = value_named(g, "b");
    n->in[2] = value_named(g, "cc");
    fused_act silu = {FUSED_ACT_SILU, 0, 0};
    CHECK(ir_edit_set_int(n, "transA", 1) && ir_edit_set_int(n, "transB", 1) &&
              ir_edit_set_float(n, "alpha", 0.75f) && ir_edit_set_float(n, "beta", 1.5f) &&
              ir_edit_set_str(n, "activation", fused_act_name(silu.kind)),
          "attribute setters");
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i] != n) ir_edit_kill(g->nodes[i]);
    ir_edit_set_output(n, 0, value_named(g, "y"));
    kiln_status st = ir_graph_compact(g);
    if (!st) st = ir_graph_infer(g);
    CHECK(!st, "gemm_trans: %s", st ? kiln_last_error() : "");
    CHECK(g->n_nodes == 1, "gemm_trans: %d nodes", g->n_nodes);
    if (!st) same_outputs("FusedGemm kernel", km->ir->graph, g, 1);
done:
    ir_model_free(m);
    kiln_model_free(km);
}

/* The IR-edit API directly. */
static void test_ir_edit(void) {
    kiln_model *km;
    ir_model *m;
    if (!load2(DATA "dce.onnx", &km, &m)) {
        CHECK(0, "dce.onnx: cannot load");
        return;
    }
    ir_graph *g = m->graph;
    ir_value *v = ir_edit_new_value(g, "x");
    CHECK(v && strcmp(v->name, "x") != 0, "new_value: name '%s' not unique",
          v ? v->name : "");
    ir_value *v2 = ir_edit_new_value(g, "x");
    CHECK(v2 && v && strcmp(v2->name, v->name) != 0, "new_value: repeated name");
    ir_node *relu = producer_of(g, "y"), *sig = producer_of(g, "s");
    CHECK(ir_edit_set_int(relu, "k", 1) && ir_edit_set_int(relu, "k", 2) &&
              relu->n_attrs == 1 && ir_attr_int(relu, "k", 0) == 2,
          "set_int replaces");
    int64_t iv[3] = {1, 2, 3};
    float fv[2] = {0.5f, -1};
    CHECK(ir_edit_set_ints(relu, "is", iv, 3) && ir_edit_set_floats(relu, "fs", fv, 2) &&
              ir_edit_set_str(relu, "s", "abc"),
          "list setters");
    int c1, c2;
    const int64_t *gi = ir_attr_ints(relu, "is", &c1);
    const float *gf = ir_attr_floats(relu, "fs", &c2);
    CHECK(gi && c1 == 3 && gi[2] == 3 && gf && c2 == 2 && gf[1] == -1 &&
              !strcmp(ir_attr_str(relu, "s", ""), "abc"),
          "list attributes read back");
    ir_node *t = producer_of(g, "t");
    CHECK(ir_edit_sole_consumer(g, value_named(g, "s")) == t, "sole_consumer");
    CHECK(ir_edit_sole_consumer(g, value_named(g, "x")) == NULL, "x has two consumers");
    CHECK(ir_edit_sole_consumer(g, value_named(g, "y")) == NULL, "graph output");
    CHECK(ir_edit_num_consumers(g, value_named(g, "x")) == 2, "num_consumers");
    ir_node *srcs[2] = {sig, t};
    ir_edit_note_fused(g, relu, srcs, 2);
    ir_edit_note_fused(g, relu, srcs, 2);
    CHECK(relu->fused_from && !strcmp(relu->fused_from, "s,t"), "note_fused: '%s'",
          relu->fused_from ? relu->fused_from : "(null)");
    kiln_tensor *k;
    int64_t d = 3;
    double u;
    if (!tensor_new(KILN_DTYPE_FLOAT32, 1, &d, &k)) {
        float *p = k->data;
        p[0] = p[1] = p[2] = 1.5f;
        ir_value *cv = ir_edit_add_const(g, k, "k");
        CHECK(cv && ir_edit_const_uniform(cv, &u) && u == 1.5, "const_uniform");
        p[2] = 2;
        CHECK(cv && !ir_edit_const_uniform(cv, &u), "const_uniform (not uniform)");
    }
    /* bypass of a node whose output is a graph output: the input takes the
    ** name; the graph still computes the same */
    ir_node *tn = ir_edit_add_node(g, OP_Identity, 1, 1, "id");
    tn->in[0] = value_named(g, "y");
    g->outputs[0]->flags &= ~(unsigned)IR_VALUE_OUTPUT;
    ir_value *old_y = g->outputs[0];
    g->outputs[0] = tn->out[0];
    CHECK(ir_edit_bypass(g, tn, 0, 0) && g->outputs[0] == old_y &&
              !strcmp(old_y->name, "id"),
          "bypass renames the input to the output's name");
    kiln_status st = ir_graph_compact(g);
    CHECK(!st, "compact: %s", st ? kiln_last_error() : "");
    CHECK(value_named(g, "k") == NULL, "compact drops unreferenced values");
    /* a killed producer of a value still read is an error */
    ir_edit_kill(sig);
    st = ir_graph_compact(g);
    CHECK(st == KILN_INTERNAL, "compact must refuse a dangling read");
    ir_model_free(m);
    kiln_model_free(km);
}

/* --------------------------------------------------------- node tests */
/* The whole pipeline on a node-test case: outputs vs the expected ones. */
static void node_case(const char *name) {
    char path[1200];
    snprintf(path, sizeof path, NODE_DIR "%s/model.onnx", name);
    if (!file_exists(path)) {
        fprintf(stderr, "skip %s (no node test data)\n", name);
        return;
    }
    kiln_model *km;
    ir_model *m;
    if (!load2(path, &km, &m)) {
        CHECK(0, "%s: cannot load", name);
        return;
    }
    int before = m->graph->n_nodes;
    kiln_status st = run_passes(m, "all");
    CHECK(!st, "%s: pipeline failed: %s", name, st ? kiln_last_error() : "");
    if (g_verbose) fprintf(stderr, "%s: %d -> %d nodes\n", name, before, m->graph->n_nodes);
    for (int set = 0; !st; set++) {
        char dir[900];
        snprintf(dir, sizeof dir, NODE_DIR "%s/test_data_set_%d", name, set);
        if (!file_exists(dir)) break;
        st = node_data_set(name, m->graph, dir, false);
    }
    ir_model_free(m);
    kiln_model_free(km);
}

static const char *const k_node_cases[] = {
    "test_conv_with_strides_padding", "test_conv_with_autopad_same",
    "test_conv_with_strides_and_asymmetric_padding", "test_basic_conv_with_padding",
    "test_convtranspose", "test_convtranspose_1d", "test_batchnorm_epsilon",
    "test_batchnorm_example", "test_gemm_all_attributes", "test_gemm_alpha",
    "test_gemm_beta", "test_gemm_default_matrix_bias", "test_gemm_default_no_bias",
    "test_gemm_default_scalar_bias", "test_gemm_default_single_elem_vector_bias",
    "test_gemm_default_vector_bias", "test_gemm_default_zero_bias",
    "test_gemm_transposeA", "test_gemm_transposeB", "test_matmul_2d", "test_matmul_3d",
    "test_matmul_4d", "test_relu", "test_identity", "test_dropout_default",
    "test_dropout_default_ratio", "test_dropout_random_old", "test_cast_FLOAT_to_DOUBLE",
    "test_reshape_extended_dims", "test_reshape_negative_dim", "test_reshape_zero_dim",
    "test_reshape_reduced_dims", "test_transpose_default", "test_transpose_all_permutations_3",
    "test_squeeze", "test_unsqueeze_axis_0", "test_flatten_axis2", "test_shape",
    "test_shape_start_1", "test_size", "test_constant", "test_constant_pad",
    "test_clip", "test_clip_default_min", "test_clip_default_max", "test_clip_splitbounds",
    "test_gelu_default_1_expanded", "test_gelu_tanh_1_expanded", 
    "test_hardswish_expanded", "test_leakyrelu_expanded",
    "test_mish_expanded",
    "test_celu_expanded",
    "test_layer_normalization_4d_axis0_expanded", "test_layer_normalization_2d_axis1_expanded",
    "test_group_normalization_epsilon_expanded", "test_softmax_axis_1_expanded",
    "test_logsoftmax_axis_1_expanded", "test_range_float_type_positive_delta_expanded",
    "test_range_int32_type_negative_delta_expanded", "test_if", "test_loop11",
    "test_nllloss_NCd1_expanded",
    "test_expand_dim_changed", "test_expand_dim_unchanged", "test_pow",
    "test_add_bcast", "test_mul_bcast", "test_sub_bcast", "test_div_bcast",
    "test_attention_4d_expanded", "test_attention_4d_gqa_expanded",
    "test_rms_normalization_2d_axis1_expanded", "test_mvn_expanded",
    "test_swish_expanded", "test_prelu_broadcast_expanded",
};

/* --------------------------------------------------------- real models */
static void real_model(const char *path) {
    kiln_model *km;
    ir_model *m;
    if (!load2(path, &km, &m)) {
        CHECK(0, "%s: cannot load", path);
        return;
    }
    int before = m->graph->n_nodes;
    kiln_status st = run_passes(m, "all");
    CHECK(!st, "%s: pipeline failed: %s", path, st ? kiln_last_error() : "");
    if (!st) {
        int n = m->graph->n_nodes;
        printf("%s: %d ONNX nodes -> %d layers (%.0f%%)\n", path, before, n,
               before ? 100.0 * n / before : 0.0);
        const ir_graph *g = m->graph;
        for (int i = 0; i < g->n_nodes; i++) { /* op histogram, first seen order */
            bool seen = false;
            for (int j = 0; j < i && !seen; j++)
                seen = !strcmp(g->nodes[j]->op_type, g->nodes[i]->op_type);
            if (!seen)
                printf("  %-18s %d\n", g->nodes[i]->op_type,
                       count_op(g, g->nodes[i]->op_type));
        }
        same_outputs(path, km->ir->graph, m->graph, 1);
    }
    ir_model_free(m);
    kiln_model_free(km);
}

int main(int argc, char **argv) {
    g_verbose = getenv("KILN_TEST_VERBOSE") != NULL;
    if (argc > 1) {
        for (int i = 1; i < argc; i++) real_model(argv[i]);
        return test_summary();
    }
    test_ir_edit();
    test_fold();
    test_fold_repeat();
    test_fold_chain();
    test_noop();
    test_dce();
    test_conv_bn();
    test_matmul_add();
    test_qdyn();
    test_qdq_epi();
    test_qdq_ln();
    test_bias_act();
    test_transpose();
    test_eltwise();
    test_fused_gemm_kernel();
    test_half_and_old();
    test_qdq_half();
    test_gather_half();
    test_pipeline_models();
    for (size_t i = 0; i < KILN_ARRAY_LEN(k_node_cases); i++) node_case(k_node_cases[i]);
    return test_summary();
}

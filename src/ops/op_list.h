/* op_list.h: every ai.onnx operator Kiln knows by name (X-macro). An op is
** supported when it has a schema (ops/) and a reference kernel
** (backends/ref/). Append only; the enum value is not persisted. */
/* elementwise math and activations */
KILN_OP(Add) KILN_OP(Sub) KILN_OP(Mul) KILN_OP(Div) KILN_OP(Pow) KILN_OP(Mod)
KILN_OP(Neg) KILN_OP(Abs) KILN_OP(Sign) KILN_OP(Reciprocal) KILN_OP(Sqrt)
KILN_OP(Exp) KILN_OP(Log) KILN_OP(Erf) KILN_OP(Floor) KILN_OP(Ceil)
KILN_OP(Round) KILN_OP(Sin) KILN_OP(Cos) KILN_OP(Tan) KILN_OP(Asin)
KILN_OP(Acos) KILN_OP(Atan) KILN_OP(Sinh) KILN_OP(Cosh) KILN_OP(Asinh)
KILN_OP(Acosh) KILN_OP(Atanh) KILN_OP(Min) KILN_OP(Max) KILN_OP(Mean)
KILN_OP(Sum) KILN_OP(Clip) KILN_OP(IsNaN) KILN_OP(IsInf) KILN_OP(Relu)
KILN_OP(LeakyRelu) KILN_OP(PRelu) KILN_OP(Elu) KILN_OP(Selu) KILN_OP(Celu)
KILN_OP(Sigmoid) KILN_OP(HardSigmoid) KILN_OP(HardSwish) KILN_OP(Tanh)
KILN_OP(Softplus) KILN_OP(Softsign) KILN_OP(Mish) KILN_OP(Gelu)
KILN_OP(ThresholdedRelu) KILN_OP(Shrink) KILN_OP(Softmax) KILN_OP(LogSoftmax)
KILN_OP(Hardmax) KILN_OP(Swish) KILN_OP(BitwiseAnd) KILN_OP(BitwiseOr)
KILN_OP(BitwiseXor) KILN_OP(BitwiseNot)
/* logic */
KILN_OP(Equal) KILN_OP(Less) KILN_OP(LessOrEqual) KILN_OP(Greater)
KILN_OP(GreaterOrEqual) KILN_OP(And) KILN_OP(Or) KILN_OP(Xor) KILN_OP(Not)
KILN_OP(Where) KILN_OP(BitShift)
/* casts */
KILN_OP(Cast) KILN_OP(CastLike)
/* linear algebra */
KILN_OP(MatMul) KILN_OP(Gemm) KILN_OP(Einsum) KILN_OP(Det)
/* convolution and pooling */
KILN_OP(Conv) KILN_OP(ConvTranspose) KILN_OP(MaxPool) KILN_OP(AveragePool)
KILN_OP(GlobalAveragePool) KILN_OP(GlobalMaxPool) KILN_OP(LpPool)
KILN_OP(GlobalLpPool) KILN_OP(LpNormalization) KILN_OP(MaxUnpool)
KILN_OP(Col2Im) KILN_OP(MaxRoiPool)
/* normalization */
KILN_OP(BatchNormalization) KILN_OP(InstanceNormalization)
KILN_OP(LayerNormalization) KILN_OP(GroupNormalization)
KILN_OP(MeanVarianceNormalization) KILN_OP(LRN) KILN_OP(RMSNormalization)
/* reductions */
KILN_OP(ReduceSum) KILN_OP(ReduceMean) KILN_OP(ReduceMax) KILN_OP(ReduceMin)
KILN_OP(ReduceProd) KILN_OP(ReduceL1) KILN_OP(ReduceL2) KILN_OP(ReduceLogSum)
KILN_OP(ReduceLogSumExp) KILN_OP(ReduceSumSquare) KILN_OP(ArgMax)
KILN_OP(ArgMin)
/* shape and data movement */
KILN_OP(Reshape) KILN_OP(Flatten) KILN_OP(Transpose) KILN_OP(Squeeze)
KILN_OP(Unsqueeze) KILN_OP(Concat) KILN_OP(Split) KILN_OP(Slice)
KILN_OP(Gather) KILN_OP(GatherElements) KILN_OP(GatherND)
KILN_OP(ScatterElements) KILN_OP(ScatterND) KILN_OP(Scatter) KILN_OP(Expand)
KILN_OP(Tile) KILN_OP(Pad) KILN_OP(Resize) KILN_OP(Upsample)
KILN_OP(DepthToSpace) KILN_OP(SpaceToDepth) KILN_OP(Shape) KILN_OP(Size)
KILN_OP(ConstantOfShape) KILN_OP(Constant) KILN_OP(Range) KILN_OP(Identity)
KILN_OP(Dropout) KILN_OP(Trilu) KILN_OP(CumSum) KILN_OP(OneHot) KILN_OP(TopK)
KILN_OP(NonZero) KILN_OP(EyeLike) KILN_OP(Compress) KILN_OP(ReverseSequence)
KILN_OP(Unique) KILN_OP(CenterCropPad) KILN_OP(GridSample)
KILN_OP(AffineGrid)
/* sequence models */
KILN_OP(LSTM) KILN_OP(GRU) KILN_OP(RNN)
/* control flow */
KILN_OP(If) KILN_OP(Loop)
/* quantization */
KILN_OP(QuantizeLinear) KILN_OP(DequantizeLinear)
KILN_OP(DynamicQuantizeLinear) KILN_OP(MatMulInteger) KILN_OP(ConvInteger)
KILN_OP(QLinearConv) KILN_OP(QLinearMatMul)
/* detection */
KILN_OP(NonMaxSuppression) KILN_OP(RoiAlign)
/* attention-era ops */
KILN_OP(Attention) KILN_OP(RotaryEmbedding)
/* extra: losses, Scan, signal processing, misc (family "extra") */
KILN_OP(NegativeLogLikelihoodLoss) KILN_OP(SoftmaxCrossEntropyLoss)
KILN_OP(Scan) KILN_OP(CumProd) KILN_OP(BitCast) KILN_OP(TensorScatter)
KILN_OP(DFT) KILN_OP(STFT) KILN_OP(HannWindow) KILN_OP(HammingWindow)
KILN_OP(BlackmanWindow) KILN_OP(MelWeightMatrix) KILN_OP(DeformConv)
KILN_OP(CausalConvWithState) KILN_OP(LinearAttention) KILN_OP(TfIdfVectorizer)
KILN_OP(OptionalHasElement) KILN_OP(OptionalGetElement) KILN_OP(ImageDecoder)
/* ai.onnx.ml operators with their own kernels (ops/ml.c); the importer maps
** them only from that domain (op_is_ml). Keep them together, in this order. */
KILN_OP(TreeEnsemble) KILN_OP(TreeEnsembleClassifier) KILN_OP(TreeEnsembleRegressor)
KILN_OP(SVMClassifier) KILN_OP(SVMRegressor)
/* ---- Kiln-internal ops (domain "kiln"), created only by the optimizer.
** op_lookup() never returns them for model nodes. Keep them last. */
KILN_OP(FusedConv) KILN_OP(FusedGemm) KILN_OP(FusedElementwise)
/* channels-last (ops/layout.h) */
KILN_OP(ToNhwc) KILN_OP(ToNchw) KILN_OP(NhwcConv) KILN_OP(NhwcMaxPool)
KILN_OP(NhwcAveragePool) KILN_OP(NhwcGlobalAveragePool) KILN_OP(NhwcQLinearConv)
/* quantized internal ops (qfused.c: QAdd, QFusedGemm, QLayerNormalization;
** MatMulIntegerToFloat,
** ConvIntegerToFloat: quant.c) */
KILN_OP(QAdd) KILN_OP(MatMulIntegerToFloat) KILN_OP(ConvIntegerToFloat)
KILN_OP(QFusedGemm) KILN_OP(QLayerNormalization)
/* channel-blocked (NCHWc) layout, made by passes/nchwc.c (ops/nchwc.c) */
KILN_OP(NchwcReorderIn) KILN_OP(NchwcReorderOut) KILN_OP(NchwcConv)
KILN_OP(NchwcPool)

/* cuda_libs.h: cuBLASLt and cuDNN loaded at run time with dlopen, so a
** Kiln built with the CUDA backend still loads and runs CPU engines on a
** machine without those libraries (or without any GPU). Only the entry
** points Kiln uses are resolved; the real headers give their types. */
#ifndef KILN_CUDA_LIBS_H
#define KILN_CUDA_LIBS_H

#include <cublasLt.h>
#include <cudnn.h>

typedef struct cuda_libs {
    /* cuBLASLt (NULL members when libcublasLt could not be loaded) */
    void *lt_so;
    size_t lt_version;
    char lt_path[256];
    cublasStatus_t (*ltCreate)(cublasLtHandle_t *);
    cublasStatus_t (*ltDestroy)(cublasLtHandle_t);
    const char *(*ltGetStatusString)(cublasStatus_t);
    size_t (*ltGetVersion)(void);
    cublasStatus_t (*ltMatmul)(cublasLtHandle_t, cublasLtMatmulDesc_t, const void *,
                               const void *, cublasLtMatrixLayout_t, const void *,
                               cublasLtMatrixLayout_t, const void *, const void *,
                               cublasLtMatrixLayout_t, void *, cublasLtMatrixLayout_t,
                               const cublasLtMatmulAlgo_t *, void *, size_t, cudaStream_t);
    cublasStatus_t (*ltMatmulDescCreate)(cublasLtMatmulDesc_t *, cublasComputeType_t,
                                         cudaDataType_t);
    cublasStatus_t (*ltMatmulDescDestroy)(cublasLtMatmulDesc_t);
    cublasStatus_t (*ltMatmulDescSetAttribute)(cublasLtMatmulDesc_t,
                                               cublasLtMatmulDescAttributes_t,
                                               const void *, size_t);
    cublasStatus_t (*ltMatrixLayoutCreate)(cublasLtMatrixLayout_t *, cudaDataType,
                                           uint64_t, uint64_t, int64_t);
    cublasStatus_t (*ltMatrixLayoutDestroy)(cublasLtMatrixLayout_t);
    cublasStatus_t (*ltMatrixLayoutSetAttribute)(cublasLtMatrixLayout_t,
                                                 cublasLtMatrixLayoutAttribute_t,
                                                 const void *, size_t);
    cublasStatus_t (*ltMatmulPreferenceCreate)(cublasLtMatmulPreference_t *);
    cublasStatus_t (*ltMatmulPreferenceDestroy)(cublasLtMatmulPreference_t);
    cublasStatus_t (*ltMatmulPreferenceSetAttribute)(cublasLtMatmulPreference_t,
                                                     cublasLtMatmulPreferenceAttributes_t,
                                                     const void *, size_t);
    cublasStatus_t (*ltMatmulAlgoGetHeuristic)(cublasLtHandle_t, cublasLtMatmulDesc_t,
                                               cublasLtMatrixLayout_t,
                                               cublasLtMatrixLayout_t,
                                               cublasLtMatrixLayout_t,
                                               cublasLtMatrixLayout_t,
                                               cublasLtMatmulPreference_t, int,
                                               cublasLtMatmulHeuristicResult_t *, int *);
    /* cuDNN (NULL members when libcudnn could not be loaded) */
    void *dnn_so;
    size_t dnn_version;
    char dnn_path[256];
    size_t (*dnnGetVersion)(void);
    const char *(*dnnGetErrorString)(cudnnStatus_t);
    cudnnStatus_t (*dnnCreate)(cudnnHandle_t *);
    cudnnStatus_t (*dnnDestroy)(cudnnHandle_t);
    cudnnStatus_t (*dnnSetStream)(cudnnHandle_t, cudaStream_t);
    /* legacy convolution API (cuda_conv.c); resolved together with the
    ** handle functions above: a library without them counts as missing */
    cudnnStatus_t (*dnnCreateTensorDescriptor)(cudnnTensorDescriptor_t *);
    cudnnStatus_t (*dnnDestroyTensorDescriptor)(cudnnTensorDescriptor_t);
    cudnnStatus_t (*dnnSetTensorNdDescriptor)(cudnnTensorDescriptor_t, cudnnDataType_t, int,
                                              const int *, const int *);
    cudnnStatus_t (*dnnCreateFilterDescriptor)(cudnnFilterDescriptor_t *);
    cudnnStatus_t (*dnnDestroyFilterDescriptor)(cudnnFilterDescriptor_t);
    cudnnStatus_t (*dnnSetFilterNdDescriptor)(cudnnFilterDescriptor_t, cudnnDataType_t,
                                              cudnnTensorFormat_t, int, const int *);
    cudnnStatus_t (*dnnCreateConvolutionDescriptor)(cudnnConvolutionDescriptor_t *);
    cudnnStatus_t (*dnnDestroyConvolutionDescriptor)(cudnnConvolutionDescriptor_t);
    cudnnStatus_t (*dnnSetConvolutionNdDescriptor)(cudnnConvolutionDescriptor_t, int,
                                                   const int *, const int *, const int *,
                                                   cudnnConvolutionMode_t, cudnnDataType_t);
    cudnnStatus_t (*dnnSetConvolutionGroupCount)(cudnnConvolutionDescriptor_t, int);
    cudnnStatus_t (*dnnSetConvolutionMathType)(cudnnConvolutionDescriptor_t, cudnnMathType_t);
    cudnnStatus_t (*dnnGetConvolutionNdForwardOutputDim)(cudnnConvolutionDescriptor_t,
                                                         cudnnTensorDescriptor_t,
                                                         cudnnFilterDescriptor_t, int, int *);
    cudnnStatus_t (*dnnGetConvolutionForwardWorkspaceSize)(cudnnHandle_t,
                                                           cudnnTensorDescriptor_t,
                                                           cudnnFilterDescriptor_t,
                                                           cudnnConvolutionDescriptor_t,
                                                           cudnnTensorDescriptor_t,
                                                           cudnnConvolutionFwdAlgo_t, size_t *);
    cudnnStatus_t (*dnnConvolutionForward)(cudnnHandle_t, const void *, cudnnTensorDescriptor_t,
                                           const void *, cudnnFilterDescriptor_t, const void *,
                                           cudnnConvolutionDescriptor_t,
                                           cudnnConvolutionFwdAlgo_t, void *, size_t,
                                           const void *, cudnnTensorDescriptor_t, void *);
    cudnnStatus_t (*dnnConvolutionBiasActivationForward)(
        cudnnHandle_t, const void *, cudnnTensorDescriptor_t, const void *,
        cudnnFilterDescriptor_t, const void *, cudnnConvolutionDescriptor_t,
        cudnnConvolutionFwdAlgo_t, void *, size_t, const void *, cudnnTensorDescriptor_t,
        const void *, cudnnTensorDescriptor_t, const void *, cudnnActivationDescriptor_t,
        cudnnTensorDescriptor_t, void *);
    cudnnStatus_t (*dnnCreateActivationDescriptor)(cudnnActivationDescriptor_t *);
    cudnnStatus_t (*dnnDestroyActivationDescriptor)(cudnnActivationDescriptor_t);
    cudnnStatus_t (*dnnSetActivationDescriptor)(cudnnActivationDescriptor_t,
                                                cudnnActivationMode_t, cudnnNanPropagation_t,
                                                double);
    /* optional (NULL when absent, the library still counts as loaded):
    ** cuDNN's ranked forward algorithms, which prune the build's search */
    cudnnStatus_t (*dnnGetConvolutionForwardAlgorithm_v7)(
        cudnnHandle_t, cudnnTensorDescriptor_t, cudnnFilterDescriptor_t,
        cudnnConvolutionDescriptor_t, cudnnTensorDescriptor_t, int, int *,
        cudnnConvolutionFwdAlgoPerf_t *);
    /* optional (NULL when absent): the graph ("backend descriptor") API of
    ** cuda_conv_graph.c, resolved all or none (dnnBackendExecute non-NULL
    ** says the set is there) */
    cudnnStatus_t (*dnnBackendCreateDescriptor)(cudnnBackendDescriptorType_t,
                                                cudnnBackendDescriptor_t *);
    cudnnStatus_t (*dnnBackendDestroyDescriptor)(cudnnBackendDescriptor_t);
    cudnnStatus_t (*dnnBackendSetAttribute)(cudnnBackendDescriptor_t, cudnnBackendAttributeName_t,
                                            cudnnBackendAttributeType_t, int64_t, const void *);
    cudnnStatus_t (*dnnBackendGetAttribute)(cudnnBackendDescriptor_t const,
                                            cudnnBackendAttributeName_t,
                                            cudnnBackendAttributeType_t, int64_t, int64_t *,
                                            void *);
    cudnnStatus_t (*dnnBackendFinalize)(cudnnBackendDescriptor_t);
    cudnnStatus_t (*dnnBackendExecute)(cudnnHandle_t, cudnnBackendDescriptor_t,
                                       cudnnBackendDescriptor_t);
} cuda_libs;

/* Loads both libraries once per process (thread-safe); never fails: a
** missing library leaves its members NULL and its reason in *_path. */
const cuda_libs *cuda_libs_get(void);

#endif

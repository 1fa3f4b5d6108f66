/* cuda_libs.c: dlopen of cuBLASLt and cuDNN (see cuda_libs.h). The sonames
** are tried first, then the unversioned names; the path actually loaded is
** recorded for the engine fingerprint and `kiln inspect`. */
#include "cuda_internal.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

static cuda_libs g_libs;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void *open_first(const char *const *names, char *path, size_t n) {
    const char *why = "not found";
    for (int i = 0; names[i]; i++) {
        void *h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (h) {
            /* Record the file the loader picked (dladdr on a symbol would
            ** need one; the soname is what users recognise). */
            snprintf(path, n, "%s", names[i]);
            return h;
        }
        why = dlerror();
    }
    snprintf(path, n, "unavailable (%s)", why ? why : "not found");
    return NULL;
}

#define SYM(so, field, name)                                            \
    do {                                                                \
        *(void **)&g_libs.field = dlsym(so, name);                      \
        if (!g_libs.field) ok = false;                                  \
    } while (0)

static void load(void) {
    static const char *const lt_names[] = {"libcublasLt.so.13", "libcublasLt.so.12",
                                           "libcublasLt.so", NULL};
    static const char *const dnn_names[] = {"libcudnn.so.9", "libcudnn.so", NULL};
    void *lt = open_first(lt_names, g_libs.lt_path, sizeof g_libs.lt_path);
    if (lt) {
        bool ok = true;
        SYM(lt, ltCreate, "cublasLtCreate");
        SYM(lt, ltDestroy, "cublasLtDestroy");
        SYM(lt, ltGetStatusString, "cublasLtGetStatusString");
        SYM(lt, ltGetVersion, "cublasLtGetVersion");
        SYM(lt, ltMatmul, "cublasLtMatmul");
        SYM(lt, ltMatmulDescCreate, "cublasLtMatmulDescCreate");
        SYM(lt, ltMatmulDescDestroy, "cublasLtMatmulDescDestroy");
        SYM(lt, ltMatmulDescSetAttribute, "cublasLtMatmulDescSetAttribute");
        SYM(lt, ltMatrixLayoutCreate, "cublasLtMatrixLayoutCreate");
        SYM(lt, ltMatrixLayoutDestroy, "cublasLtMatrixLayoutDestroy");
        SYM(lt, ltMatrixLayoutSetAttribute, "cublasLtMatrixLayoutSetAttribute");
        SYM(lt, ltMatmulPreferenceCreate, "cublasLtMatmulPreferenceCreate");
        SYM(lt, ltMatmulPreferenceDestroy, "cublasLtMatmulPreferenceDestroy");
        SYM(lt, ltMatmulPreferenceSetAttribute, "cublasLtMatmulPreferenceSetAttribute");
        SYM(lt, ltMatmulAlgoGetHeuristic, "cublasLtMatmulAlgoGetHeuristic");
        if (ok) {
            g_libs.lt_so = lt;
            g_libs.lt_version = g_libs.ltGetVersion();
        } else {
            snprintf(g_libs.lt_path, sizeof g_libs.lt_path, "unusable (missing symbols)");
            dlclose(lt);
            memset(&g_libs.ltCreate, 0, (size_t)((char *)&g_libs.dnn_so - (char *)&g_libs.ltCreate));
        }
    }
    void *dnn = open_first(dnn_names, g_libs.dnn_path, sizeof g_libs.dnn_path);
    if (dnn) {
        bool ok = true;
        SYM(dnn, dnnGetVersion, "cudnnGetVersion");
        SYM(dnn, dnnGetErrorString, "cudnnGetErrorString");
        SYM(dnn, dnnCreate, "cudnnCreate");
        SYM(dnn, dnnDestroy, "cudnnDestroy");
        SYM(dnn, dnnSetStream, "cudnnSetStream");
        SYM(dnn, dnnCreateTensorDescriptor, "cudnnCreateTensorDescriptor");
        SYM(dnn, dnnDestroyTensorDescriptor, "cudnnDestroyTensorDescriptor");
        SYM(dnn, dnnSetTensorNdDescriptor, "cudnnSetTensorNdDescriptor");
        SYM(dnn, dnnCreateFilterDescriptor, "cudnnCreateFilterDescriptor");
        SYM(dnn, dnnDestroyFilterDescriptor, "cudnnDestroyFilterDescriptor");
        SYM(dnn, dnnSetFilterNdDescriptor, "cudnnSetFilterNdDescriptor");
        SYM(dnn, dnnCreateConvolutionDescriptor, "cudnnCreateConvolutionDescriptor");
        SYM(dnn, dnnDestroyConvolutionDescriptor, "cudnnDestroyConvolutionDescriptor");
        SYM(dnn, dnnSetConvolutionNdDescriptor, "cudnnSetConvolutionNdDescriptor");
        SYM(dnn, dnnSetConvolutionGroupCount, "cudnnSetConvolutionGroupCount");
        SYM(dnn, dnnSetConvolutionMathType, "cudnnSetConvolutionMathType");
        SYM(dnn, dnnGetConvolutionNdForwardOutputDim, "cudnnGetConvolutionNdForwardOutputDim");
        SYM(dnn, dnnGetConvolutionForwardWorkspaceSize,
            "cudnnGetConvolutionForwardWorkspaceSize");
        SYM(dnn, dnnConvolutionForward, "cudnnConvolutionForward");
        SYM(dnn, dnnConvolutionBiasActivationForward, "cudnnConvolutionBiasActivationForward");
        SYM(dnn, dnnCreateActivationDescriptor, "cudnnCreateActivationDescriptor");
        SYM(dnn, dnnDestroyActivationDescriptor, "cudnnDestroyActivationDescriptor");
        SYM(dnn, dnnSetActivationDescriptor, "cudnnSetActivationDescriptor");
        if (ok) {
            g_libs.dnn_so = dnn;
            g_libs.dnn_version = g_libs.dnnGetVersion();
            *(void **)&g_libs.dnnGetConvolutionForwardAlgorithm_v7 =
                dlsym(dnn, "cudnnGetConvolutionForwardAlgorithm_v7");
            /* the graph API, all six or none */
            void *gs[6];
            static const char *const gnames[6] = {
                "cudnnBackendCreateDescriptor", "cudnnBackendDestroyDescriptor",
                "cudnnBackendSetAttribute",     "cudnnBackendGetAttribute",
                "cudnnBackendFinalize",         "cudnnBackendExecute"};
            bool all = true;
            for (int i = 0; i < 6; i++) all &= (gs[i] = dlsym(dnn, gnames[i])) != NULL;
            if (all) {
                *(void **)&g_libs.dnnBackendCreateDescriptor = gs[0];
                *(void **)&g_libs.dnnBackendDestroyDescriptor = gs[1];
                *(void **)&g_libs.dnnBackendSetAttribute = gs[2];
                *(void **)&g_libs.dnnBackendGetAttribute = gs[3];
                *(void **)&g_libs.dnnBackendFinalize = gs[4];
                *(void **)&g_libs.dnnBackendExecute = gs[5];
            }
        } else {
            snprintf(g_libs.dnn_path, sizeof g_libs.dnn_path, "unusable (missing symbols)");
            dlclose(dnn);
            /* every cuDNN member after dnn_path back to NULL */
            memset(&g_libs.dnnGetVersion, 0,
                   sizeof g_libs - offsetof(cuda_libs, dnnGetVersion));
        }
    }
}

const cuda_libs *cuda_libs_get(void) {
    pthread_once(&g_once, load);
    return &g_libs;
}

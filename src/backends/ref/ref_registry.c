/* ref_registry.c: kernel lookup over the family tables. */
#include "ref.h"

extern const ref_kernel ref_kernels_elementwise[];
extern const ref_kernel ref_kernels_linalg[];
extern const ref_kernel ref_kernels_norm[];
extern const ref_kernel ref_kernels_conv[];
extern const ref_kernel ref_kernels_reduce[];
extern const ref_kernel ref_kernels_shape[];
extern const ref_kernel ref_kernels_index[];
extern const ref_kernel ref_kernels_rnn[];
extern const ref_kernel ref_kernels_quant[];
extern const ref_kernel ref_kernels_detect[];
extern const ref_kernel ref_kernels_control[];
extern const ref_kernel ref_kernels_fused[];
extern const ref_kernel ref_kernels_extra[];
extern const ref_kernel ref_kernels_layout[];

static const ref_kernel *const k_families[] = {
    ref_kernels_elementwise,
    ref_kernels_linalg,
    ref_kernels_norm,
    ref_kernels_conv,
    ref_kernels_reduce,
    ref_kernels_shape,
    ref_kernels_index,
    ref_kernels_rnn,
    ref_kernels_quant,
    ref_kernels_detect,
    ref_kernels_control,
    ref_kernels_fused,
    ref_kernels_extra,
    ref_kernels_layout,
};

ref_kernel_fn ref_kernel_get(int op) {
    for (size_t f = 0; f < KILN_ARRAY_LEN(k_families); f++)
        for (const ref_kernel *k = k_families[f]; k->op != OP_NONE; k++)
            if (k->op == op) return k->run;
    return NULL;
}

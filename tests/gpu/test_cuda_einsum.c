/* test_cuda_einsum.c: the general CUDA Einsum tactic (cuda_gemm.c,
** kernels/einsum.cu) against the reference kernel: matrix and batched
** products, inner and outer products, traces and (batch) diagonals, sums,
** transposes, implicit output, "..." broadcasting (including size-1
** broadcast dims), three operands, a scalar, size-1 and odd dims;
** float64, float32, float16, bfloat16 (1e-5, 1e-5, 2e-3, 2e-2 of the
** reference run on absolute values). Ends with `N passed, M failed`;
** without a GPU it prints "0 passed, 0 failed (no GPU)" (KILN_GPU_TEST_DRY=1:
** checks the cases and that the tactic takes each, without running it). */
#include "gpu_tactic_harness.h"

typedef struct ein_case {
    const char *eq;
    int n;
    int rank[3];
    int64_t dims[3][5];
} ein_case;

static const ein_case k_cases[] = {
    {"ij,jk->ik", 2, {2, 2}, {{3, 5}, {5, 4}}},
    {"bij, bjk -> bik", 2, {3, 3}, {{5, 2, 3}, {5, 3, 4}}},
    {"i,i", 2, {1, 1}, {{7}, {7}}},
    {"i,j->ij", 2, {1, 1}, {{3}, {6}}},
    {"ii->i", 1, {2}, {{6, 6}}},
    {"ii", 1, {2}, {{5, 5}}},
    {"...ii ->...i", 1, {3}, {{3, 5, 5}}},
    {"ij->i", 1, {2}, {{3, 4}}},
    {"ij->", 1, {2}, {{9, 7}}},
    {"ij->ji", 1, {2}, {{3, 4}}},
    {"->", 1, {0}, {{0}}},
    {"ij,kj", 2, {2, 2}, {{4, 6}, {3, 6}}},
    {"...ij,...jk->...ik", 2, {4, 3}, {{2, 3, 4, 5}, {3, 5, 2}}},
    {"...ij,...jk->...ik", 2, {4, 4}, {{2, 1, 4, 5}, {1, 3, 5, 2}}},
    {"abc,cd,de->abe", 3, {3, 2, 2}, {{2, 3, 4}, {4, 5}, {5, 3}}},
    {"bhid,bhjd->bhij", 2, {4, 4}, {{2, 3, 7, 16}, {2, 3, 9, 16}}},
    {"ij,ij->ij", 2, {2, 2}, {{1, 7}, {5, 7}}},
    {"iij->ji", 1, {3}, {{4, 4, 3}}},
    {"i,i,i->", 3, {1, 1, 1}, {{33}, {33}, {33}}},
    {"ab,ab->", 2, {2, 2}, {{1, 1}, {1, 1}}},
};

static const kiln_dtype k_types[] = {KILN_DTYPE_FLOAT64, KILN_DTYPE_FLOAT32, KILN_DTYPE_FLOAT16,
                                     KILN_DTYPE_BFLOAT16};

int main(void) {
    if (h_open(18)) {
        printf("0 passed, 0 failed (no GPU)\n");
        return 0;
    }
    g_verbose = getenv("KILN_TEST_VERBOSE") != NULL;
    for (int t = 0; t < 4; t++)
        for (size_t c = 0; c < sizeof k_cases / sizeof k_cases[0]; c++) {
            const ein_case *ec = &k_cases[c];
            kiln_dtype dt = k_types[t];
            kiln_tensor *in[3] = {0}, *mag[3] = {0};
            ir_node *n = h_node(OP_Einsum, ec->n, 1);
            for (int i = 0; i < ec->n; i++) {
                in[i] = h_rand(dt, ec->rank[i], ec->dims[i]);
                mag[i] = h_abs(in[i]);
                n->in[i] = h_rt();
            }
            ir_edit_set_str(n, "equation", ec->eq);
            char desc[128];
            snprintf(desc, sizeof desc, "Einsum '%s' %s (case %zu)", ec->eq, kiln_dtype_name(dt),
                     c);
            h_check(n, in, CMP_FLOAT, mag, true, desc);
            for (int i = 0; i < ec->n; i++) {
                tensor_free(in[i]);
                tensor_free(mag[i]);
            }
        }
    printf("(%d cases skipped: invalid random configurations or no device tactic)\n", g_skipped);
    h_close();
    return h_summary();
}

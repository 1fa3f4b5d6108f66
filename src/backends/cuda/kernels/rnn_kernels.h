/* rnn_kernels.h: the C seam of the recurrent layers' kernel (rnn.cu):
** LSTM, GRU and RNN, one thread block per (direction, batch row) walking
** its time steps with the state in shared memory (the gate rows' dot
** products spread over the block's threads), every option the reference
** has: directions, layouts, sequence_lens, initial states, clip,
** input_forget, peepholes, linear_before_reset, the eleven activation
** functions. Float32 math for float32/16/bf16 storage. Latency-bound (one
** step after another), meant for the small recurrent models we meet. */
#ifndef KILN_CUDA_RNN_KERNELS_H
#define KILN_CUDA_RNN_KERNELS_H

#include <cuda_runtime_api.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { KC_CELL_RNN, KC_CELL_GRU, KC_CELL_LSTM };
/* Activation kinds, in the reference's order (ref_rnn.c). */
enum {
    KC_RA_RELU, KC_RA_TANH, KC_RA_SIGMOID, KC_RA_AFFINE, KC_RA_LEAKYRELU,
    KC_RA_THRESHOLDEDRELU, KC_RA_SCALEDTANH, KC_RA_HARDSIGMOID, KC_RA_ELU,
    KC_RA_SOFTSIGN, KC_RA_SOFTPLUS
};

typedef struct kc_rnn_act {
    int kind;
    float alpha, beta;
} kc_rnn_act;

/* Largest hidden size the kernel takes (its state lives in shared memory). */
#define KC_RNN_MAX_HIDDEN 1024

typedef struct kc_rnn_args {
    int cell, ndir, layout, reverse, has_clip, input_forget, lbr;
    float clip;
    int64_t seq, batch, isz, hid;
    const void *x, *w, *r, *b, *h0, *c0, *p; /* b, h0, c0, p may be NULL */
    const int32_t *lens;                      /* NULL: all seq (clamped to [0, seq]) */
    void *y, *yh, *yc;                        /* any may be NULL */
    kc_rnn_act acts[6];                       /* [dir * nacts + k] */
} kc_rnn_args;

/* dtype: KC_F32/F16/BF16 (gemm_kernels.h) of every float tensor. */
cudaError_t kc_rnn(int dtype, const kc_rnn_args *a, cudaStream_t s);

#ifdef __cplusplus
}
#endif
#endif

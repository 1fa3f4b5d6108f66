/* ref_extra.h: kernels of the "extra" family shared between its files, and
** the small helpers they have in common. */
#ifndef KILN_REF_EXTRA_H
#define KILN_REF_EXTRA_H

#include "ref.h"

/* ref_extra_signal.c */
int ref_extra_dft(ref_ctx *c);
int ref_extra_stft(ref_ctx *c);
int ref_extra_hann(ref_ctx *c);
int ref_extra_hamming(ref_ctx *c);
int ref_extra_blackman(ref_ctx *c);
int ref_extra_mel(ref_ctx *c);

/* ref_extra_nn.c */
int ref_extra_deform_conv(ref_ctx *c);
int ref_extra_causal_conv(ref_ctx *c);
int ref_extra_linear_attention(ref_ctx *c);

/* Elements of t as a new double array (malloc'ed; caller frees), NULL when
** out of memory. Any numeric dtype. */
double *rx_to_f64(const kiln_tensor *t);
/* Stores n doubles into t (allocated, numeric dtype). */
void rx_from_f64(kiln_tensor *t, const double *v, int64_t n);
/* The single value of a one-element integer tensor; -1 via ref_fail. */
int rx_scalar_int(ref_ctx *c, const kiln_tensor *t, const char *what, int64_t *v);

#endif

/* ref_extra_signal.c: reference kernels for the signal-processing ops: DFT,
** STFT, the Hann/Hamming/Blackman windows and MelWeightMatrix. Transforms
** run in double precision. */
#include "ref_extra.h"

#include <math.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* A transform of one length and direction. Power-of-two lengths use a
** radix-2 FFT; short other lengths a direct sum with an exact twiddle table;
** long ones Bluestein's chirp-z method over a power-of-two FFT, so that a
** large prime length stays O(L log L). */
enum { PLAN_POW2, PLAN_DIRECT, PLAN_BLUESTEIN };
#define DIRECT_MAX 128

typedef struct fft_plan {
    int64_t L, M;      /* M: FFT size (L, or Bluestein's power of two) */
    int kind, sign;    /* sign -1 forward, +1 inverse (unscaled) */
    double *cs, *sn;   /* cos / sin of 2 pi j / M */
    double *tr, *ti;   /* scratch of M */
    double *cr, *ci;   /* Bluestein chirp of L */
    double *br, *bi;   /* Bluestein: FFT of the chirp filter, M */
} fft_plan;

static void plan_free(fft_plan *p) {
    free(p->cs); free(p->sn); free(p->tr); free(p->ti);
    free(p->cr); free(p->ci); free(p->br); free(p->bi);
}

/* In-place radix-2 FFT of length M (a power of two) with M's twiddles. */
static void fft_pow2(int64_t M, const double *cs, const double *sn, double *re,
                     double *im, int sign) {
    for (int64_t i = 1, j = 0; i < M; i++) { /* bit reversal */
        int64_t bit = M >> 1;
        for (; j & bit; bit >>= 1) j ^= bit;
        j ^= bit;
        if (i < j) {
            double t = re[i]; re[i] = re[j]; re[j] = t;
            t = im[i]; im[i] = im[j]; im[j] = t;
        }
    }
    for (int64_t len = 2; len <= M; len <<= 1) {
        int64_t half = len >> 1, step = M / len;
        for (int64_t s = 0; s < M; s += len)
            for (int64_t k = 0; k < half; k++) {
                double wr = cs[k * step], wi = sign * sn[k * step];
                int64_t a = s + k, b = a + half;
                double xr = re[b] * wr - im[b] * wi, xi = re[b] * wi + im[b] * wr;
                re[b] = re[a] - xr;
                im[b] = im[a] - xi;
                re[a] += xr;
                im[a] += xi;
            }
    }
}

static int plan_init(ref_ctx *c, fft_plan *p, int64_t L, int sign) {
    memset(p, 0, sizeof *p);
    p->L = L;
    p->sign = sign;
    if (L < 1 || (uint64_t)L > KILN_MAX_ALLOC / (16 * sizeof(double)))
        return ref_fail(c, "transform length %lld is out of range", (long long)L);
    p->kind = (L & (L - 1)) == 0 ? PLAN_POW2 : L <= DIRECT_MAX ? PLAN_DIRECT : PLAN_BLUESTEIN;
    p->M = L;
    if (p->kind == PLAN_BLUESTEIN)
        for (p->M = 1; p->M < 2 * L - 1;) p->M <<= 1;
    size_t m = (size_t)p->M + 1;
    p->cs = malloc(m * sizeof *p->cs);
    p->sn = malloc(m * sizeof *p->sn);
    p->tr = malloc(m * sizeof *p->tr);
    p->ti = malloc(m * sizeof *p->ti);
    if (p->kind == PLAN_BLUESTEIN) {
        p->cr = malloc(((size_t)L + 1) * sizeof *p->cr);
        p->ci = malloc(((size_t)L + 1) * sizeof *p->ci);
        p->br = calloc(m, sizeof *p->br);
        p->bi = calloc(m, sizeof *p->bi);
    }
    if (!p->cs || !p->sn || !p->tr || !p->ti ||
        (p->kind == PLAN_BLUESTEIN && (!p->cr || !p->ci || !p->br || !p->bi))) {
        plan_free(p);
        return ref_fail(c, "out of memory");
    }
    for (int64_t j = 0; j < p->M; j++) {
        double a = 2.0 * M_PI * (double)j / (double)p->M;
        p->cs[j] = cos(a);
        p->sn[j] = sin(a);
    }
    if (p->kind == PLAN_BLUESTEIN) {
        /* chirp c[m] = exp(-sign * i pi m^2 / L), m^2 reduced mod 2L exactly */
        for (int64_t j = 0, q = 0; j < L; j++) {
            if (j) q = (q + 2 * j - 1) % (2 * L);
            double a = M_PI * (double)q / (double)L;
            p->cr[j] = cos(a);
            p->ci[j] = -sign * sin(a);
        }
        for (int64_t j = 0; j < L; j++) {
            p->br[j] = p->cr[j];
            p->bi[j] = p->ci[j];
            if (j) {
                p->br[p->M - j] = p->cr[j];
                p->bi[p->M - j] = p->ci[j];
            }
        }
        fft_pow2(p->M, p->cs, p->sn, p->br, p->bi, -1);
    }
    return 0;
}

/* In-place unscaled transform of (re, im), length p->L. */
static void transform(fft_plan *p, double *re, double *im) {
    int64_t L = p->L, M = p->M;
    int sign = p->sign;
    if (p->kind == PLAN_POW2) {
        fft_pow2(L, p->cs, p->sn, re, im, sign);
    } else if (p->kind == PLAN_DIRECT) {
        for (int64_t k = 0; k < L; k++) {
            double sr = 0, si = 0;
            int64_t idx = 0; /* k * t mod L, kept exact */
            for (int64_t t = 0; t < L; t++) {
                double wr = p->cs[idx], wi = sign * p->sn[idx];
                sr += re[t] * wr - im[t] * wi;
                si += re[t] * wi + im[t] * wr;
                idx += k;
                if (idx >= L) idx -= L;
            }
            p->tr[k] = sr;
            p->ti[k] = si;
        }
        memcpy(re, p->tr, (size_t)L * sizeof *re);
        memcpy(im, p->ti, (size_t)L * sizeof *im);
    } else {
        /* X = conj(c) * ((x * conj(c)) convolved with c), the convolution
        ** done as a cyclic one of length M through the FFT */
        double *ar = p->tr, *ai = p->ti;
        for (int64_t j = 0; j < M; j++) {
            if (j < L) {
                ar[j] = re[j] * p->cr[j] + im[j] * p->ci[j];
                ai[j] = im[j] * p->cr[j] - re[j] * p->ci[j];
            } else {
                ar[j] = ai[j] = 0;
            }
        }
        fft_pow2(M, p->cs, p->sn, ar, ai, -1);
        for (int64_t j = 0; j < M; j++) {
            double xr = ar[j] * p->br[j] - ai[j] * p->bi[j];
            double xi = ar[j] * p->bi[j] + ai[j] * p->br[j];
            ar[j] = xr;
            ai[j] = xi;
        }
        fft_pow2(M, p->cs, p->sn, ar, ai, 1);
        double sc = 1.0 / (double)M;
        for (int64_t k = 0; k < L; k++) {
            double vr = ar[k] * sc, vi = ai[k] * sc;
            re[k] = vr * p->cr[k] + vi * p->ci[k];
            im[k] = vi * p->cr[k] - vr * p->ci[k];
        }
    }
}

/* ------------------------------------------------------------ DFT */

int ref_extra_dft(ref_ctx *c) {
    const kiln_tensor *x = c->in[0];
    kiln_tensor *y = c->out[0];
    bool inv = ir_attr_int(c->node, "inverse", 0) != 0;
    bool one = ir_attr_int(c->node, "onesided", 0) != 0;
    int r = x->rank;
    int64_t axis = c->opset >= 20 ? -2 : ir_attr_int(c->node, "axis", 1);
    if (c->opset >= 20 && ref_has(c, 2) && rx_scalar_int(c, c->in[2], "axis", &axis))
        return -1;
    if (r < 2 || axis < -r || axis > r - 2 || axis == -1)
        return ref_fail(c, "axis %lld is invalid for rank %d", (long long)axis, r);
    int ax = (int)(axis < 0 ? axis + r : axis);
    int64_t n = x->dims[ax], cin = x->dims[r - 1], L;
    if (ref_has(c, 1)) {
        if (rx_scalar_int(c, c->in[1], "dft_length", &L)) return -1;
    } else {
        L = inv && one ? 2 * (n - 1) : n;
    }
    if (L < 1 && (ref_has(c, 1) || tensor_numel(y) != 0))
        return ref_fail(c, "dft_length %lld must be positive", (long long)L);
    int64_t lout = !inv && one ? L / 2 + 1 : L, cout = inv && one ? 1 : 2;
    if (y->rank != r || y->dims[ax] != lout || y->dims[r - 1] != cout)
        return ref_fail(c, "output shape does not match the transform");
    if (tensor_numel(y) == 0) return 0; /* an empty signal axis */
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < ax; d++) outer *= x->dims[d];
    for (int d = ax + 1; d < r - 1; d++) inner *= x->dims[d];
    fft_plan p;
    if (plan_init(c, &p, L, inv ? 1 : -1)) return -1;
    int rc = -1;
    double *xv = rx_to_f64(x);
    double *yv = malloc(((size_t)tensor_numel(y) + 1) * sizeof *yv);
    double *re = malloc(((size_t)L + 1) * sizeof *re), *im = malloc(((size_t)L + 1) * sizeof *im);
    if (!xv || !yv || !re || !im) {
        ref_fail(c, "out of memory");
        goto done;
    }
    for (int64_t o = 0; o < outer; o++)
        for (int64_t in = 0; in < inner; in++) {
            memset(re, 0, (size_t)L * sizeof *re);
            memset(im, 0, (size_t)L * sizeof *im);
            if (inv && one) {
                /* rebuild the full spectrum from its conjugate-symmetric half */
                int64_t half = L / 2 + 1, m = KILN_MIN(n, half);
                for (int64_t k = 0; k < m; k++) {
                    const double *e = xv + ((o * n + k) * inner + in) * cin;
                    re[k] = e[0];
                    im[k] = cin > 1 ? e[1] : 0;
                }
                for (int64_t k = half; k < L; k++) {
                    re[k] = re[L - k];
                    im[k] = -im[L - k];
                }
            } else {
                for (int64_t t = 0; t < KILN_MIN(n, L); t++) {
                    const double *e = xv + ((o * n + t) * inner + in) * cin;
                    re[t] = e[0];
                    im[t] = cin > 1 ? e[1] : 0;
                }
            }
            transform(&p, re, im);
            double sc = inv ? 1.0 / (double)L : 1.0;
            for (int64_t k = 0; k < lout; k++) {
                double *e = yv + ((o * lout + k) * inner + in) * cout;
                e[0] = re[k] * sc;
                if (cout > 1) e[1] = im[k] * sc;
            }
        }
    rx_from_f64(y, yv, tensor_numel(y));
    rc = 0;
done:
    plan_free(&p);
    free(xv);
    free(yv);
    free(re);
    free(im);
    return rc;
}

/* ------------------------------------------------------------ STFT */

int ref_extra_stft(ref_ctx *c) {
    const kiln_tensor *s = c->in[0];
    const kiln_tensor *w = ref_has(c, 2) ? c->in[2] : NULL;
    kiln_tensor *y = c->out[0];
    bool one = ir_attr_int(c->node, "onesided", 1) != 0;
    int64_t step = 0, fl = 0;
    if (rx_scalar_int(c, c->in[1], "frame_step", &step)) return -1;
    if (s->rank != 3 && s->rank != 2) return ref_fail(c, "signal must have rank 2 or 3");
    if (ref_has(c, 3)) {
        if (rx_scalar_int(c, c->in[3], "frame_length", &fl)) return -1;
    } else {
        fl = w ? tensor_numel(w) : s->dims[1];
    }
    if (w && (w->rank != 1 || w->dims[0] != fl))
        return ref_fail(c, "window must have frame_length (%lld) entries", (long long)fl);
    int64_t B = s->dims[0], len = s->dims[1], cin = s->rank == 3 ? s->dims[2] : 1;
    if (step < 1 || fl < 1 || fl > len)
        return ref_fail(c, "frame_step %lld / frame_length %lld do not fit signal length "
                        "%lld", (long long)step, (long long)fl, (long long)len);
    int64_t frames = 1 + (len - fl) / step, bins = one ? fl / 2 + 1 : fl;
    if (y->rank != 4 || y->dims[0] != B || y->dims[1] != frames || y->dims[2] != bins)
        return ref_fail(c, "output shape does not match the transform");
    fft_plan p;
    if (plan_init(c, &p, fl, -1)) return -1;
    int rc = -1;
    double *sv = rx_to_f64(s), *wv = w ? rx_to_f64(w) : NULL;
    double *yv = malloc(((size_t)tensor_numel(y) + 1) * sizeof *yv);
    double *re = malloc(((size_t)fl + 1) * sizeof *re), *im = malloc(((size_t)fl + 1) * sizeof *im);
    if (!sv || (w && !wv) || !yv || !re || !im) {
        ref_fail(c, "out of memory");
        goto done;
    }
    for (int64_t b = 0; b < B; b++)
        for (int64_t f = 0; f < frames; f++) {
            for (int64_t t = 0; t < fl; t++) {
                const double *e = sv + (b * len + f * step + t) * cin;
                double g = wv ? wv[t] : 1.0;
                re[t] = e[0] * g;
                im[t] = cin > 1 ? e[1] * g : 0;
            }
            transform(&p, re, im);
            for (int64_t k = 0; k < bins; k++) {
                double *e = yv + ((b * frames + f) * bins + k) * 2;
                e[0] = re[k];
                e[1] = im[k];
            }
        }
    rx_from_f64(y, yv, tensor_numel(y));
    rc = 0;
done:
    plan_free(&p);
    free(sv);
    free(wv);
    free(yv);
    free(re);
    free(im);
    return rc;
}

/* ------------------------------------------------------------ windows */

enum { WIN_HANN, WIN_HAMMING, WIN_BLACKMAN };

static int k_window(ref_ctx *c, int kind) {
    int64_t n = 0;
    if (rx_scalar_int(c, c->in[0], "size", &n)) return -1;
    kiln_tensor *y = c->out[0];
    if (tensor_numel(y) != n) return ref_fail(c, "output size mismatch");
    bool periodic = ir_attr_int(c->node, "periodic", 1) != 0;
    double N1 = (double)(periodic ? n : n - 1);
    double *v = malloc(((size_t)n + 1) * sizeof *v);
    if (!v) return ref_fail(c, "out of memory");
    for (int64_t i = 0; i < n; i++) {
        double a = N1 > 0 ? 2.0 * M_PI * (double)i / N1 : 0;
        if (N1 <= 0) v[i] = 1.0; /* a one-point symmetric window */
        else if (kind == WIN_HANN) v[i] = 0.5 - 0.5 * cos(a);
        else if (kind == WIN_HAMMING) v[i] = 25.0 / 46.0 - (21.0 / 46.0) * cos(a);
        else v[i] = 0.42 - 0.5 * cos(a) + 0.08 * cos(2 * a);
    }
    rx_from_f64(y, v, n);
    free(v);
    return 0;
}

int ref_extra_hann(ref_ctx *c) { return k_window(c, WIN_HANN); }
int ref_extra_hamming(ref_ctx *c) { return k_window(c, WIN_HAMMING); }
int ref_extra_blackman(ref_ctx *c) { return k_window(c, WIN_BLACKMAN); }

/* ------------------------------------------------------------ MelWeightMatrix */

static int scalar_f64(ref_ctx *c, const kiln_tensor *t, const char *what, double *v) {
    if (!t || tensor_numel(t) != 1) return ref_fail(c, "%s must be a scalar", what);
    *v = dt_get_f64(t->dtype, t->data, 0);
    return 0;
}

int ref_extra_mel(ref_ctx *c) {
    int64_t mel = 0, L = 0, sr = 0;
    double lo = 0, hi = 0;
    if (rx_scalar_int(c, c->in[0], "num_mel_bins", &mel) ||
        rx_scalar_int(c, c->in[1], "dft_length", &L) ||
        rx_scalar_int(c, c->in[2], "sample_rate", &sr) ||
        scalar_f64(c, c->in[3], "lower_edge_hertz", &lo) ||
        scalar_f64(c, c->in[4], "upper_edge_hertz", &hi))
        return -1;
    if (mel < 1 || L < 1 || sr < 1 || !(lo >= 0) || !(hi > lo) || !isfinite(hi))
        return ref_fail(c, "invalid MelWeightMatrix parameters");
    int64_t nb = L / 2 + 1;
    kiln_tensor *y = c->out[0];
    if (y->rank != 2 || y->dims[0] != nb || y->dims[1] != mel)
        return ref_fail(c, "output shape mismatch");
    int64_t *bin = malloc(((size_t)mel + 3) * sizeof *bin);
    double *v = calloc((size_t)(nb * mel) + 1, sizeof *v);
    if (!bin || !v) {
        free(bin);
        free(v);
        return ref_fail(c, "out of memory");
    }
    /* mel-spaced edges over [lo, hi] in mel+2 steps, mapped to DFT bins */
    double lm = 2595.0 * log10(1.0 + lo / 700.0), hm = 2595.0 * log10(1.0 + hi / 700.0);
    double step = (hm - lm) / (double)(mel + 2);
    for (int64_t i = 0; i < mel + 2; i++) {
        double hz = 700.0 * (pow(10.0, ((double)i * step + lm) / 2595.0) - 1.0);
        bin[i] = f64_to_i64_sat(floor((double)(L + 1) * hz / (double)sr));
    }
    int rc = 0;
    for (int64_t i = 0; i < mel && !rc; i++) {
        int64_t l = bin[i], m = bin[i + 1], h = bin[i + 2];
        if (l < 0 || h >= nb + (h > m ? 1 : 0) || m >= nb) {
            rc = ref_fail(c, "mel band %lld falls outside the %lld spectrogram bins",
                          (long long)i, (long long)nb);
            break;
        }
        if (m == l) v[m * mel + i] = 1;
        else
            for (int64_t j = l; j <= m; j++) v[j * mel + i] = (double)(j - l) / (double)(m - l);
        for (int64_t j = m; j < h; j++) v[j * mel + i] = (double)(h - j) / (double)(h - m);
    }
    if (!rc) rx_from_f64(y, v, nb * mel);
    free(bin);
    free(v);
    return rc;
}

/* calib_math.c: the numbers behind calibration: |x| histograms that grow
** their range by merging bins, and the three ways to pick a clipping
** threshold from them (minmax, percentile, and entropy: the threshold whose
** clipped distribution loses least information, in the KL sense, when
** squeezed into the 128 magnitudes int8 can hold). Pure functions, tested
** on known distributions in tests/unit/test_quant.c. */
#include "quant.h"

#include <math.h>

const char *quant_method_name(int m) {
    switch (m) {
    case QUANT_ENTROPY: return "entropy";
    case QUANT_MINMAX: return "minmax";
    case QUANT_PERCENTILE: return "percentile";
    default: return "?";
    }
}

/* Doubles the range k times: bin i of the new histogram holds old bins
** i*2^k .. (i+1)*2^k - 1. */
static void hist_grow(quant_hist *h, int k) {
    int f = 1 << k;
    for (int i = 0; i < QUANT_HIST_BINS; i++) {
        double s = 0;
        for (int j = 0; j < f && i * f + j < QUANT_HIST_BINS; j++) s += h->bins[i * f + j];
        h->bins[i] = s;
        if (i * f >= QUANT_HIST_BINS) h->bins[i] = 0;
    }
    h->range *= f;
}

void quant_hist_add(quant_hist *h, const float *x, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) {
        double a = fabs((double)x[i]);
        if (a > m && a == a && a < INFINITY) m = a;
    }
    if (m > h->absmax) h->absmax = m;
    if (m > 0 && h->range == 0) {
        /* a little headroom so the first batch's max lands inside */
        h->range = m * (1.0 + 1.0 / QUANT_HIST_BINS);
    } else if (m >= h->range && h->range > 0) {
        int k = 0;
        double r = h->range;
        while (m >= r && k < 60) r *= 2, k++;
        if (k >= 11) { /* everything collapses into bin 0 */
            double s = 0;
            for (int i = 0; i < QUANT_HIST_BINS; i++) s += h->bins[i], h->bins[i] = 0;
            h->bins[0] = s;
            h->range = r;
        } else {
            hist_grow(h, k);
        }
    }
    h->count += (double)n;
    if (h->range == 0) { /* all zeros so far */
        h->bins[0] += (double)n;
        return;
    }
    double inv = QUANT_HIST_BINS / h->range;
    for (int64_t i = 0; i < n; i++) {
        double a = fabs((double)x[i]);
        if (!(a == a) || a == INFINITY) continue;
        int b = (int)(a * inv);
        if (b >= QUANT_HIST_BINS) b = QUANT_HIST_BINS - 1;
        h->bins[b] += 1;
    }
}

/* KL(p || q) of two unnormalized histograms of n bins; q is zero only where
** p is (guaranteed by the caller's expansion), others are skipped. */
static double kl_div(const double *p, const double *q, int n) {
    double sp = 0, sq = 0;
    for (int i = 0; i < n; i++) sp += p[i], sq += q[i];
    if (sp <= 0 || sq <= 0) return INFINITY;
    double kl = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] <= 0) continue;
        double pi = p[i] / sp, qi = q[i] / sq;
        if (qi <= 0) qi = 1e-12; /* smoothing: a mass q cannot express */
        kl += pi * log(pi / qi);
    }
    return kl;
}

int quant_entropy_bins(const double *hist_in, int n, int levels) {
    /* Ignore empty trailing bins: thresholds past the data all look alike. */
    int last = n;
    while (last > 0 && hist_in[last - 1] == 0) last--;
    if (last <= levels) return levels;
    /* A tensor with no more occupied bins than int8 has magnitudes (image
    ** pixels in steps of 1/255, one-hot inputs) is discrete: every
    ** threshold at one of its values makes p and q agree, so the
    ** divergence cannot choose; clipping it only loses information. */
    int occupied = 0;
    for (int j = 1; j < last; j++) occupied += hist_in[j] != 0;
    if (occupied <= levels) return last;
    double *h = malloc((size_t)n * 3 * sizeof *h);
    if (!h) return last;
    double *p = h + n, *q = h + 2 * n;
    memcpy(h, hist_in, (size_t)n * sizeof *h);
    /* Exact zeros (half of every ReLU output) are exact at any scale; left
    ** as they are, that one spike dominates the divergence and drives the
    ** threshold far too low. Weigh bin 0 like its neighbour. */
    if (n > 1) h[0] = h[1];
    /* suffix sums: the mass clipped into the last bin of a threshold */
    double beyond = 0;
    for (int j = levels; j < last; j++) beyond += h[j];
    int best = last;
    double best_kl = INFINITY;
    for (int i = levels; i <= last; i++) {
        if (i > levels) beyond -= h[i - 1];
        /* p: the first i bins, everything beyond folded into the last one
        ** (values clipped to the threshold land there) */
        memcpy(p, h, (size_t)i * sizeof *p);
        p[i - 1] += beyond;
        /* q: the first i bins (without the clipped mass) merged into
        ** `levels` groups, each group's mass spread evenly over the bins
        ** where p is nonzero */
        for (int g = 0; g < levels; g++) {
            int s = (int)((int64_t)g * i / levels), e = (int)((int64_t)(g + 1) * i / levels);
            double sum = 0;
            int nz = 0;
            for (int j = s; j < e; j++) {
                sum += h[j];
                nz += p[j] != 0;
            }
            for (int j = s; j < e; j++) q[j] = (p[j] != 0 && nz) ? sum / nz : 0;
        }
        double kl = kl_div(p, q, i);
        if (kl < best_kl) { /* strict: ties keep the smaller threshold */
            best_kl = kl;
            best = i;
        }
    }
    free(h);
    return best;
}

double quant_hist_amax(const quant_hist *h, quant_method m, double percentile) {
    return quant_hist_amax_levels(h, m, percentile, 128);
}

double quant_hist_amax_levels(const quant_hist *h, quant_method m, double percentile,
                              int levels) {
    if (h->absmax <= 0 || h->range <= 0) return 0;
    double w = h->range / QUANT_HIST_BINS;
    switch (m) {
    case QUANT_MINMAX: return h->absmax;
    case QUANT_PERCENTILE: {
        double total = 0;
        for (int i = 0; i < QUANT_HIST_BINS; i++) total += h->bins[i];
        double want = total * percentile / 100.0, cum = 0;
        for (int i = 0; i < QUANT_HIST_BINS; i++) {
            cum += h->bins[i];
            if (cum >= want) {
                double t = (i + 1) * w;
                return t < h->absmax ? t : h->absmax;
            }
        }
        return h->absmax;
    }
    case QUANT_ENTROPY:
    default: {
        int b = quant_entropy_bins(h->bins, QUANT_HIST_BINS, levels);
        double t = b * w;
        return t < h->absmax ? t : h->absmax;
    }
    }
}

float quant_scale_u8(double amax) {
    if (!(amax > 0) || amax == INFINITY) return 1.0f;
    float s = (float)(amax / 255.0);
    return s > 0 ? s : 1.0f;
}

float quant_scale_fp8(double amax) {
    if (!(amax > 0) || amax == INFINITY) return 1.0f;
    float s = (float)(amax / 448.0);
    return s > 0 ? s : 1.0f;
}

float quant_scale_for(double amax) {
    if (!(amax > 0) || amax == INFINITY) return 1.0f;
    float s = (float)(amax / 127.0);
    return s > 0 ? s : 1.0f;
}

/* ref_conv_tmpl.h: element-type-generic bodies of the conv family kernels,
** included by ref_conv.c once per type. The includer defines CT (element
** type), CT_FN(name) (type-suffixed function name) and CT_IS_FLOAT (0 for
** the wrapping integer type Col2Im accumulates integers in). No include
** guard on purpose. */

/* Image coordinate ranges hit by one row of grid positions: tap offset off
** (= t*d - pb) along the last dim touches o*s + off for o in [lo, hi). */
static inline void CT_FN(row_range)(int64_t off, int64_t s, int64_t img,
                                    int64_t gl, int64_t *lo, int64_t *hi) {
    int64_t l = off >= 0 ? 0 : (-off + s - 1) / s;
    int64_t h = img - off <= 0 ? 0 : (img - off + s - 1) / s;
    if (l > gl) l = gl;
    if (h > gl) h = gl;
    if (h < l) h = l;
    *lo = l;
    *hi = h;
}

/* Walks rows (channel, tap) x grid positions [q0*gl, q1*gl), gl being the
** last grid dim, calling the gather (im2col) or scatter-add (col2im) for
** each contiguous row segment. col rows have length (q1-q0)*gl. */
static void CT_FN(cols_walk)(CT *img, CT *col, int64_t chans,
                             const conv_geom *g, int64_t q0, int64_t q1,
                             bool gather) {
    int nsp = g->nsp, L = nsp - 1;
    int64_t istr[KILN_MAX_RANK], plane = 1, ksz = 1;
    for (int i = nsp - 1; i >= 0; i--) {
        istr[i] = plane;
        plane *= g->img[i];
        ksz *= g->k[i];
    }
    int64_t gl = g->grid[L], ld = (q1 - q0) * gl, sL = g->s[L];
    for (int64_t ch = 0; ch < chans; ch++) {
        CT *ic = img + ch * plane;
        int64_t tap[KILN_MAX_RANK] = {0};
        for (int64_t t = 0; t < ksz; t++) {
            CT *row = col + (ch * ksz + t) * ld;
            int64_t off = tap[L] * g->d[L] - g->pb[L], lo, hi;
            CT_FN(row_range)(off, sL, g->img[L], gl, &lo, &hi);
            /* Outer grid coordinates of q0. */
            int64_t oq[KILN_MAX_RANK], rem = q0;
            for (int j = L - 1; j >= 0; j--) {
                oq[j] = rem % g->grid[j];
                rem /= g->grid[j];
            }
            for (int64_t q = q0; q < q1; q++) {
                CT *seg = row + (q - q0) * gl;
                bool ok = true;
                int64_t base = off;
                for (int j = 0; j < L; j++) {
                    int64_t ii = oq[j] * g->s[j] - g->pb[j] + tap[j] * g->d[j];
                    if (ii < 0 || ii >= g->img[j]) {
                        ok = false;
                        break;
                    }
                    base += ii * istr[j];
                }
                if (gather) {
                    if (!ok) {
                        memset(seg, 0, (size_t)gl * sizeof *seg);
                    } else {
                        /* base + o*sL is in range for o in [lo, hi). */
                        if (lo) memset(seg, 0, (size_t)lo * sizeof *seg);
                        if (sL == 1) {
                            if (hi > lo)
                                memcpy(seg + lo, ic + base + lo,
                                       (size_t)(hi - lo) * sizeof *seg);
                        } else {
                            for (int64_t o = lo; o < hi; o++)
                                seg[o] = ic[base + o * sL];
                        }
                        if (hi < gl)
                            memset(seg + hi, 0, (size_t)(gl - hi) * sizeof *seg);
                    }
                } else if (ok) {
                    for (int64_t o = lo; o < hi; o++) ic[base + o * sL] += seg[o];
                }
                for (int j = L - 1; j >= 0; j--) {
                    if (++oq[j] < g->grid[j]) break;
                    oq[j] = 0;
                }
            }
            for (int j = nsp - 1; j >= 0; j--) {
                if (++tap[j] < g->k[j]) break;
                tap[j] = 0;
            }
        }
    }
}

/* Col2Im: x [N, C*prod(k), prod(grid)] summed into y [N, C, img...]
** (zero-filled by the caller). */
static void CT_FN(col2im_op)(const CT *x, CT *y, int64_t N, int64_t C,
                             const conv_geom *g) {
    int64_t P = 1, plane = 1, ksz = 1, nq = 1;
    for (int i = 0; i < g->nsp; i++) {
        P *= g->grid[i];
        plane *= g->img[i];
        ksz *= g->k[i];
        if (i < g->nsp - 1) nq *= g->grid[i];
    }
    if (P == 0) return;
    for (int64_t n = 0; n < N; n++)
        CT_FN(cols_walk)(y + n * C * plane, (CT *)(x + n * C * ksz * P), C, g,
                         0, nq, false);
}

#if CT_IS_FLOAT

/* c_r[j] += a_r * b[j] for four rows at once: one load of b feeds four
** accumulating rows, which is what makes the i-k-j loop compute-bound. */
static inline void CT_FN(axpy4)(int64_t n, const CT *restrict b, CT a0, CT a1,
                                CT a2, CT a3, CT *restrict c0,
                                CT *restrict c1, CT *restrict c2,
                                CT *restrict c3) {
    for (int64_t j = 0; j < n; j++) {
        CT bj = b[j];
        c0[j] += a0 * bj;
        c1[j] += a1 * bj;
        c2[j] += a2 * bj;
        c3[j] += a3 * bj;
    }
}

static inline void CT_FN(axpy1)(int64_t n, const CT *restrict b, CT a,
                                CT *restrict c) {
    for (int64_t j = 0; j < n; j++) c[j] += a * b[j];
}

/* C[M x N] += A[M x K] * B[K x N], row-major with leading dims. Blocked so
** a 4-row strip of C and a K-block of B stay in cache (GEMM_NB, GEMM_KB). */
static void CT_FN(gemm)(int64_t M, int64_t N, int64_t K, const CT *A,
                        int64_t lda, const CT *B, int64_t ldb, CT *C,
                        int64_t ldc) {
    for (int64_t j0 = 0; j0 < N; j0 += GEMM_NB) {
        int64_t nb = KILN_MIN((int64_t)GEMM_NB, N - j0);
        for (int64_t k0 = 0; k0 < K; k0 += GEMM_KB) {
            int64_t kb = KILN_MIN((int64_t)GEMM_KB, K - k0);
            int64_t i = 0;
            for (; i + 4 <= M; i += 4) {
                CT *c0 = C + i * ldc + j0;
                const CT *a = A + i * lda + k0;
                for (int64_t k = 0; k < kb; k++)
                    CT_FN(axpy4)(nb, B + (k0 + k) * ldb + j0, a[k],
                                 a[lda + k], a[2 * lda + k], a[3 * lda + k],
                                 c0, c0 + ldc, c0 + 2 * ldc, c0 + 3 * ldc);
            }
            for (; i < M; i++) {
                const CT *a = A + i * lda + k0;
                for (int64_t k = 0; k < kb; k++)
                    if (a[k] != 0)
                        CT_FN(axpy1)(nb, B + (k0 + k) * ldb + j0, a[k],
                                     C + i * ldc + j0);
            }
        }
    }
}

/* Conv: y [N, M, grid] = x [N, C, img] (*) w [M, C/G, k] + b. */
static int CT_FN(conv)(const CT *x, const CT *w, const CT *b, CT *y,
                       int64_t N, int64_t C, int64_t M, int64_t G,
                       const conv_geom *g, ref_ctx *c) {
    int nsp = g->nsp, L = nsp - 1;
    int64_t Cg = C / G, Mg = M / G, ksz = 1, P = 1, plane = 1, nq = 1;
    bool pointwise = true;
    for (int i = 0; i < nsp; i++) {
        ksz *= g->k[i];
        P *= g->grid[i];
        plane *= g->img[i];
        if (i < L) nq *= g->grid[i];
        if (g->k[i] != 1 || g->s[i] != 1 || g->pb[i] != 0 ||
            g->grid[i] != g->img[i])
            pointwise = false;
    }
    int64_t Kg = Cg * ksz;
    if (P == 0 || N == 0 || M == 0) return 0;
    /* Output starts as the bias; the GEMM accumulates onto it. */
    for (int64_t n = 0; n < N; n++)
        for (int64_t m = 0; m < M; m++) {
            CT *row = y + (n * M + m) * P;
            CT v = b ? b[m] : 0;
            for (int64_t p = 0; p < P; p++) row[p] = v;
        }
    if (Kg == 0) return 0;
    CT *col = NULL;
    int64_t gl = g->grid[L], qc = nq;
    if (!pointwise) {
        qc = COL_BUDGET / KILN_MAX(Kg * gl, 1);
        qc = KILN_MAX(qc, 1);
        qc = KILN_MIN(qc, nq);
        size_t bytes;
        if (kiln_mul_overflow((size_t)(Kg * gl), (size_t)qc, &bytes) ||
            kiln_mul_overflow(bytes, sizeof(CT), &bytes) ||
            bytes > KILN_MAX_ALLOC || !(col = malloc(bytes ? bytes : 1)))
            return ref_fail(c, "out of memory for the conv column buffer");
    }
    for (int64_t n = 0; n < N; n++)
        for (int64_t gi = 0; gi < G; gi++) {
            const CT *xg = x + (n * C + gi * Cg) * plane;
            const CT *wg = w + gi * Mg * Kg;
            CT *yg = y + (n * M + gi * Mg) * P;
            if (pointwise) {
                CT_FN(gemm)(Mg, P, Kg, wg, Kg, xg, P, yg, P);
                continue;
            }
            for (int64_t q0 = 0; q0 < nq; q0 += qc) {
                int64_t q1 = KILN_MIN(q0 + qc, nq), cols = (q1 - q0) * gl;
                CT_FN(cols_walk)((CT *)xg, col, Cg, g, q0, q1, true);
                CT_FN(gemm)(Mg, cols, Kg, wg, Kg, col, cols, yg + q0 * gl, P);
            }
        }
    free(col);
    return 0;
}

/* ConvTranspose: y [N, M, img] from x [N, C, grid] and w [C, M/G, k]:
** per group, cols = w_g^T x_g then scattered into the image (col2im). */
static int CT_FN(conv_transpose)(const CT *x, const CT *w, const CT *b, CT *y,
                                 int64_t N, int64_t C, int64_t M, int64_t G,
                                 const conv_geom *g, ref_ctx *c) {
    int nsp = g->nsp, L = nsp - 1;
    int64_t Cg = C / G, Mg = M / G, ksz = 1, Pin = 1, Pout = 1, nq = 1;
    for (int i = 0; i < nsp; i++) {
        ksz *= g->k[i];
        Pin *= g->grid[i];
        Pout *= g->img[i];
        if (i < L) nq *= g->grid[i];
    }
    if (Pout == 0 || N == 0 || M == 0) return 0;
    for (int64_t n = 0; n < N; n++)
        for (int64_t m = 0; m < M; m++) {
            CT *row = y + (n * M + m) * Pout;
            CT v = b ? b[m] : 0;
            for (int64_t p = 0; p < Pout; p++) row[p] = v;
        }
    int64_t Kt = Mg * ksz; /* rows of the column buffer per group */
    if (Pin == 0 || Kt == 0 || Cg == 0) return 0;
    int64_t gl = g->grid[L];
    int64_t qc = KILN_MIN(KILN_MAX(COL_BUDGET / KILN_MAX(Kt * gl, 1), 1), nq);
    size_t wbytes, cbytes;
    CT *wt = NULL, *col = NULL;
    if (kiln_mul_overflow((size_t)(Kt * gl), (size_t)qc, &cbytes) ||
        kiln_mul_overflow(cbytes, sizeof(CT), &cbytes) ||
        kiln_mul_overflow((size_t)(C * Kt), sizeof(CT), &wbytes) ||
        cbytes > KILN_MAX_ALLOC || !(col = malloc(cbytes ? cbytes : 1)) ||
        !(wt = malloc(wbytes ? wbytes : 1))) {
        free(col);
        return ref_fail(c, "out of memory for the conv column buffer");
    }
    /* w_g is [Cg][Kt]; the GEMM wants its transpose [Kt][Cg]. */
    for (int64_t gi = 0; gi < G; gi++)
        for (int64_t ci = 0; ci < Cg; ci++)
            for (int64_t r = 0; r < Kt; r++)
                wt[gi * Kt * Cg + r * Cg + ci] = w[(gi * Cg + ci) * Kt + r];
    for (int64_t n = 0; n < N; n++)
        for (int64_t gi = 0; gi < G; gi++) {
            const CT *xg = x + (n * C + gi * Cg) * Pin;
            CT *yg = y + (n * M + gi * Mg) * Pout;
            for (int64_t q0 = 0; q0 < nq; q0 += qc) {
                int64_t q1 = KILN_MIN(q0 + qc, nq), cols = (q1 - q0) * gl;
                memset(col, 0, (size_t)(Kt * cols) * sizeof *col);
                CT_FN(gemm)(Kt, cols, Cg, wt + gi * Kt * Cg, Cg, xg + q0 * gl,
                            Pin, col, cols);
                CT_FN(cols_walk)(yg, col, Mg, g, q0, q1, false);
            }
        }
    free(col);
    free(wt);
    return 0;
}

/* ---- pooling over a plan chunk (see pool_plan in ref_conv.c) */

static void CT_FN(pool_max)(const CT *x, CT *y, int64_t *ind, int64_t planes,
                            const pool_plan *pl, bool col_major) {
    const conv_geom *g = pl->g;
    for (int64_t pc = 0; pc < planes; pc++) {
        const CT *xp = x + pc * pl->plane_in;
        for (int64_t p = pl->p0; p < pl->p1; p++) {
            const int64_t *o = pl->off + pl->first[p - pl->p0];
            int64_t cnt = pl->first[p - pl->p0 + 1] - pl->first[p - pl->p0];
            int64_t out = pc * pl->plane_out + p;
            if (cnt == 0) {
                y[out] = 0;
                if (ind) ind[out] = -1;
                continue;
            }
            CT best = xp[o[0]];
            int64_t bi = o[0];
            for (int64_t t = 1; t < cnt; t++)
                if (xp[o[t]] > best) {
                    best = xp[o[t]];
                    bi = o[t];
                }
            y[out] = best;
            if (!ind) continue;
            if (col_major) {
                /* Re-express the row-major offset column-major. */
                int64_t cm = 0, cs = 1, rem = bi;
                int64_t coord[KILN_MAX_RANK];
                for (int i = g->nsp - 1; i >= 0; i--) {
                    coord[i] = rem % g->img[i];
                    rem /= g->img[i];
                }
                for (int i = 0; i < g->nsp; i++) {
                    cm += coord[i] * cs;
                    cs *= g->img[i];
                }
                bi = cm;
            }
            ind[out] = pc * pl->plane_in + bi;
        }
    }
}

/* AveragePool (lp == 0) or LpPool with exponent lp. */
static void CT_FN(pool_sum)(const CT *x, CT *y, int64_t planes,
                            const pool_plan *pl, bool include_pad, CT lp) {
    for (int64_t pc = 0; pc < planes; pc++) {
        const CT *xp = x + pc * pl->plane_in;
        for (int64_t p = pl->p0; p < pl->p1; p++) {
            const int64_t *o = pl->off + pl->first[p - pl->p0];
            int64_t cnt = pl->first[p - pl->p0 + 1] - pl->first[p - pl->p0];
            CT acc = 0, r;
            if (lp == 0) {
                for (int64_t t = 0; t < cnt; t++) acc += xp[o[t]];
                int64_t div = include_pad ? pl->padcnt[p - pl->p0] : cnt;
                r = div ? acc / (CT)div : 0;
            } else if (lp == 1) {
                for (int64_t t = 0; t < cnt; t++) acc += CT_ABS(xp[o[t]]);
                r = acc;
            } else if (lp == 2) {
                for (int64_t t = 0; t < cnt; t++) acc += xp[o[t]] * xp[o[t]];
                r = CT_SQRT(acc);
            } else {
                for (int64_t t = 0; t < cnt; t++)
                    acc += CT_POW(CT_ABS(xp[o[t]]), lp);
                r = CT_POW(acc, 1 / lp);
            }
            y[pc * pl->plane_out + p] = r;
        }
    }
}

/* Global pools: kind 0 average, 1 max, 2 Lp with exponent lp. */
static void CT_FN(global_pool)(const CT *x, CT *y, int64_t planes, int64_t n,
                               int kind, CT lp) {
    for (int64_t pc = 0; pc < planes; pc++) {
        const CT *xp = x + pc * n;
        CT acc = 0;
        if (n == 0) {
            y[pc] = 0;
            continue;
        }
        if (kind == 0) {
            for (int64_t i = 0; i < n; i++) acc += xp[i];
            acc /= (CT)n;
        } else if (kind == 1) {
            acc = xp[0];
            for (int64_t i = 1; i < n; i++)
                if (xp[i] > acc) acc = xp[i];
        } else if (lp == 2) {
            for (int64_t i = 0; i < n; i++) acc += xp[i] * xp[i];
            acc = CT_SQRT(acc);
        } else {
            for (int64_t i = 0; i < n; i++) acc += CT_POW(CT_ABS(xp[i]), lp);
            acc = CT_POW(acc, 1 / lp);
        }
        y[pc] = acc;
    }
}

/* LpNormalization along an axis of length len with inner stride. */
static void CT_FN(lp_norm)(const CT *x, CT *y, int64_t outer, int64_t len,
                           int64_t inner, int p) {
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            const CT *xs = x + o * len * inner + i;
            CT *ys = y + o * len * inner + i;
            CT acc = 0;
            for (int64_t a = 0; a < len; a++) {
                CT v = xs[a * inner];
                acc += p == 1 ? CT_ABS(v) : v * v;
            }
            CT norm = p == 1 ? acc : CT_SQRT(acc);
            /* A zero vector stays zero rather than becoming NaN. */
            for (int64_t a = 0; a < len; a++)
                ys[a * inner] = norm == 0 ? 0 : xs[a * inner] / norm;
        }
}

/* MaxRoiPool with Caffe's rounding and bin rules. */
static int CT_FN(max_roi_pool)(const CT *x, const CT *rois, CT *y, int64_t N,
                               int64_t C, int64_t H, int64_t W, int64_t nroi,
                               int64_t ph, int64_t pw, double scale,
                               ref_ctx *c) {
    const int64_t lim = (int64_t)1 << 40;
    for (int64_t r = 0; r < nroi; r++) {
        const CT *roi = rois + r * 5;
        double bd = (double)roi[0];
        if (!(bd >= 0) || bd >= (double)N || bd != (double)(int64_t)bd)
            return ref_fail(c, "roi %lld has batch index %g outside [0, %lld)",
                            (long long)r, bd, (long long)N);
        int64_t bi = (int64_t)bd;
        int64_t v[4];
        for (int k = 0; k < 4; k++) {
            int64_t q = f64_to_i64_sat(round((double)(roi[1 + k] * (CT)scale)));
            v[k] = q < -lim ? -lim : q > lim ? lim : q;
        }
        int64_t sw = v[0], sh = v[1], ew = v[2], eh = v[3];
        int64_t rh = KILN_MAX(eh - sh + 1, 1), rw = KILN_MAX(ew - sw + 1, 1);
        CT bh = (CT)rh / (CT)ph, bw = (CT)rw / (CT)pw;
        for (int64_t ch = 0; ch < C; ch++) {
            const CT *xp = x + (bi * C + ch) * H * W;
            CT *yp = y + (r * C + ch) * ph * pw;
            for (int64_t i = 0; i < ph; i++) {
                int64_t hs = (int64_t)CT_FLOOR((CT)i * bh) + sh;
                int64_t he = (int64_t)CT_CEIL((CT)(i + 1) * bh) + sh;
                hs = KILN_MIN(KILN_MAX(hs, 0), H);
                he = KILN_MIN(KILN_MAX(he, 0), H);
                for (int64_t j = 0; j < pw; j++) {
                    int64_t ws = (int64_t)CT_FLOOR((CT)j * bw) + sw;
                    int64_t we = (int64_t)CT_CEIL((CT)(j + 1) * bw) + sw;
                    ws = KILN_MIN(KILN_MAX(ws, 0), W);
                    we = KILN_MIN(KILN_MAX(we, 0), W);
                    CT best = 0;
                    bool any = false;
                    for (int64_t h = hs; h < he; h++)
                        for (int64_t w2 = ws; w2 < we; w2++) {
                            CT val = xp[h * W + w2];
                            if (!any || val > best) best = val;
                            any = true;
                        }
                    yp[i * pw + j] = best;
                }
            }
        }
    }
    return 0;
}

#endif /* CT_IS_FLOAT */

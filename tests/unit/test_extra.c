/* test_extra.c: what the ONNX node tests cannot show for the extra family:
** Scan with scan axes, directions and opset-8 sequence lengths; DFT lengths
** that take the Bluestein path (checked against a direct sum) and an
** rfft/irfft round trip; DeformConv with zero offsets equal to Conv; static
** inference keeping symbolic dims. */
#include "test_util.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

static ir_model *m;
static ir_graph *g;

/* Deterministic float32 test data. */
static kiln_tensor *tf32(int rank, const int64_t *dims, int seed) {
    kiln_tensor *t = tensor_with(KILN_DTYPE_FLOAT32, rank, dims, NULL);
    float *p = t->data;
    for (int64_t i = 0; i < tensor_numel(t); i++)
        p[i] = (float)sin(0.37 * (double)(i + 1) * (seed + 1) + seed);
    return t;
}

static bool close_f(float a, double b, double tol) {
    return fabs((double)a - b) <= tol * (1 + fabs(b));
}

/* Body with states s (and optionally none) and scan inputs a, b:
**   s2 = s + a; o1 = a * b; o2 = s2; returns s2, o1, o2.
** With two_inputs false it takes (s, a) and returns (s2, s2). */
static ir_graph *sum_body(ir_node *owner, bool two_inputs, int64_t width) {
    ir_graph *b = ir_graph_new(m, g);
    if (!b) exit(1);
    b->owner = owner;
    ir_value *s = input(b, "s", KILN_DTYPE_FLOAT32, 1, &width);
    ir_value *a = input(b, "a", KILN_DTYPE_FLOAT32, 1, &width);
    ir_value *bb = two_inputs ? input(b, "b", KILN_DTYPE_FLOAT32, 1, &width) : NULL;
    ir_node *add = node(b, "Add", 2, (ir_value *[]){s, a}, 1, "s2");
    b->n_inputs = two_inputs ? 3 : 2;
    b->inputs = arena_zalloc(m, 3 * sizeof *b->inputs);
    b->inputs[0] = s, b->inputs[1] = a, b->inputs[2] = bb;
    b->outputs = arena_zalloc(m, 3 * sizeof *b->outputs);
    b->outputs[0] = add->out[0];
    if (two_inputs) {
        ir_node *mul = node(b, "Mul", 2, (ir_value *[]){a, bb}, 1, "o1");
        ir_node *id = node(b, "Identity", 1, (ir_value *[]){add->out[0]}, 1, "o2");
        b->outputs[1] = mul->out[0];
        b->outputs[2] = id->out[0];
        b->n_outputs = 3;
    } else {
        ir_node *id = node(b, "Identity", 1, (ir_value *[]){add->out[0]}, 1, "o");
        b->outputs[1] = id->out[0];
        b->n_outputs = 2;
    }
    for (int i = 0; i < b->n_outputs; i++) b->outputs[i]->flags |= IR_VALUE_OUTPUT;
    if (ir_graph_toposort(b)) exit(1);
    return b;
}

static void set_body(ir_node *n, ir_graph *b) {
    add_attr(n, "body", IR_ATTR_GRAPH)->g = b;
}

static void new_model(int opset) {
    m = model_new(opset);
    g = m->graph;
}

/* Scan (opset 16): x scanned backwards along axis 1, y forwards along axis
** 0; o1 stacked on axis 1, o2 on the last axis in reverse order. */
static void test_scan9(void) {
    new_model(16);
    int64_t w = 3;
    ir_value *s0 = input(g, "s0", KILN_DTYPE_FLOAT32, 1, &w);
    ir_value *x = input(g, "x", KILN_DTYPE_FLOAT32, 2, (const int64_t[]){3, 4});
    ir_value *y = input(g, "y", KILN_DTYPE_FLOAT32, 2, (const int64_t[]){4, 3});
    ir_node *n = node(g, "Scan", 3, (ir_value *[]){s0, x, y}, 3, "z");
    set_body(n, sum_body(n, true, 3));
    attr_int(n, "num_scan_inputs", 2);
    attr_ints(n, "scan_input_axes", 2, (const int64_t[]){1, 0});
    attr_ints(n, "scan_input_directions", 2, (const int64_t[]){1, 0});
    attr_ints(n, "scan_output_axes", 2, (const int64_t[]){1, -1});
    attr_ints(n, "scan_output_directions", 2, (const int64_t[]){0, 1});
    kiln_tensor *ts = tf32(1, (const int64_t[]){3}, 1);
    kiln_tensor *tx = tf32(2, (const int64_t[]){3, 4}, 2);
    kiln_tensor *ty = tf32(2, (const int64_t[]){4, 3}, 3);
    kiln_tensor *out[3] = {NULL, NULL, NULL};
    kiln_status st = ref_run_node(n, (const kiln_tensor *[]){ts, tx, ty}, out);
    CHECK(st == KILN_OK, "Scan9 failed: %s", kiln_last_error());
    if (st == KILN_OK) {
        const float *X = tx->data, *Y = ty->data;
        double s[3];
        for (int i = 0; i < 3; i++) s[i] = ((const float *)ts->data)[i];
        CHECK(out[1]->rank == 2 && out[1]->dims[0] == 3 && out[1]->dims[1] == 4 &&
                  out[2]->rank == 2 && out[2]->dims[0] == 3 && out[2]->dims[1] == 4,
              "Scan9 output shapes");
        for (int t = 0; t < 4; t++)
            for (int i = 0; i < 3; i++) {
                double a = X[i * 4 + (3 - t)], b = Y[t * 3 + i];
                s[i] += a;
                CHECK(close_f(((float *)out[1]->data)[i * 4 + t], a * b, 1e-6),
                      "Scan9 o1[%d][%d]", i, t);
                CHECK(close_f(((float *)out[2]->data)[i * 4 + (3 - t)], s[i], 1e-6),
                      "Scan9 o2[%d][%d]", i, 3 - t);
            }
        for (int i = 0; i < 3; i++)
            CHECK(close_f(((float *)out[0]->data)[i], s[i], 1e-6), "Scan9 state %d", i);
    }
    for (int i = 0; i < 3; i++) tensor_free(out[i]);
    tensor_free(ts), tensor_free(tx), tensor_free(ty);
    ir_model_free(m);
}

/* Scan (opset 8): batch of 3 with sequence lengths 3, 0, 1, scanned
** backwards; scan outputs zero-padded to the longest sequence. */
static void test_scan8(void) {
    new_model(8);
    ir_value *sl = input(g, "sl", KILN_DTYPE_INT64, 1, (const int64_t[]){3});
    ir_value *i0 = input(g, "i0", KILN_DTYPE_FLOAT32, 2, (const int64_t[]){3, 2});
    ir_value *x = input(g, "x", KILN_DTYPE_FLOAT32, 3, (const int64_t[]){3, 3, 2});
    ir_node *n = node(g, "Scan", 3, (ir_value *[]){sl, i0, x}, 2, "z");
    set_body(n, sum_body(n, false, 2));
    attr_int(n, "num_scan_inputs", 1);
    attr_ints(n, "directions", 1, (const int64_t[]){1});
    kiln_tensor *tl = tensor_with(KILN_DTYPE_INT64, 1, (const int64_t[]){3}, NULL);
    int64_t lens[3] = {3, 0, 1};
    memcpy(tl->data, lens, sizeof lens);
    kiln_tensor *ti = tf32(2, (const int64_t[]){3, 2}, 4);
    kiln_tensor *tx = tf32(3, (const int64_t[]){3, 3, 2}, 5);
    kiln_tensor *out[2] = {NULL, NULL};
    kiln_status st = ref_run_node(n, (const kiln_tensor *[]){tl, ti, tx}, out);
    CHECK(st == KILN_OK, "Scan8 failed: %s", kiln_last_error());
    if (st == KILN_OK) {
        CHECK(out[0]->rank == 2 && out[1]->rank == 3 && out[1]->dims[0] == 3 &&
                  out[1]->dims[1] == 3 && out[1]->dims[2] == 2,
              "Scan8 output shapes");
        const float *X = tx->data, *I = ti->data;
        const float *S = out[0]->data, *Z = out[1]->data;
        for (int b = 0; b < 3; b++)
            for (int k = 0; k < 2; k++) {
                double s = I[b * 2 + k];
                for (int t = 0; t < 3; t++) {
                    double want = 0;
                    if (t < lens[b]) {
                        s += X[(b * 3 + (lens[b] - 1 - t)) * 2 + k];
                        want = s;
                    }
                    CHECK(close_f(Z[(b * 3 + t) * 2 + k], want, 1e-6), "Scan8 z[%d][%d][%d]",
                          b, t, k);
                }
                CHECK(close_f(S[b * 2 + k], s, 1e-6), "Scan8 state[%d][%d]", b, k);
            }
    }
    for (int i = 0; i < 2; i++) tensor_free(out[i]);
    tensor_free(tl), tensor_free(ti), tensor_free(tx);
    ir_model_free(m);
}

/* Runs a one-node DFT (opset 20) on x; NULL on failure. */
static kiln_tensor *run_dft(kiln_tensor *x, int64_t len, bool inverse, bool onesided) {
    ir_value *vx = input(g, "x", x->dtype, x->rank, x->dims);
    ir_value *vl = len ? const_scalar(g, "len", len) : NULL;
    ir_node *n = node(g, "DFT", 2, (ir_value *[]){vx, vl}, 1, "y");
    attr_int(n, "inverse", inverse);
    attr_int(n, "onesided", onesided);
    kiln_tensor *out[1] = {NULL};
    kiln_tensor *len_t = NULL;
    if (len) {
        len_t = tensor_with(KILN_DTYPE_INT64, 0, NULL, NULL);
        *(int64_t *)len_t->data = len;
    }
    kiln_status st = ref_run_node(n, (const kiln_tensor *[]){x, len_t}, out);
    tensor_free(len_t);
    CHECK(st == KILN_OK, "DFT failed: %s", kiln_last_error());
    return out[0];
}

/* Lengths that use the Bluestein path, against a direct double sum. */
static void test_dft(void) {
    new_model(20);
    static const int64_t lens[] = {257, 300};
    for (int li = 0; li < 2; li++) {
        int64_t L = lens[li];
        for (int inv = 0; inv < 2; inv++) {
            kiln_tensor *x = tf32(3, (const int64_t[]){1, L, 2}, (int)(L + inv));
            kiln_tensor *y = run_dft(x, 0, inv, false);
            if (!y) {
                tensor_free(x);
                continue;
            }
            const float *X = x->data, *Y = y->data;
            double worst = 0;
            for (int64_t k = 0; k < L; k++) {
                double sr = 0, si = 0, sg = inv ? 1 : -1;
                for (int64_t t = 0; t < L; t++) {
                    double a = 2 * M_PI * (double)((k * t) % L) / (double)L;
                    double c = cos(a), s = sg * sin(a);
                    sr += X[2 * t] * c - X[2 * t + 1] * s;
                    si += X[2 * t] * s + X[2 * t + 1] * c;
                }
                if (inv) sr /= (double)L, si /= (double)L;
                worst = fmax(worst, fmax(fabs(Y[2 * k] - sr), fabs(Y[2 * k + 1] - si)));
            }
            CHECK(worst < (inv ? 1e-6 : 1e-4), "DFT length %lld inverse %d: error %g",
                  (long long)L, inv, worst);
            tensor_free(x);
            tensor_free(y);
        }
    }
    /* rfft then irfft of an odd length gives the signal back */
    kiln_tensor *x = tf32(3, (const int64_t[]){2, 301, 1}, 9);
    kiln_tensor *f = run_dft(x, 0, false, true);
    kiln_tensor *r = f ? run_dft(f, 301, true, true) : NULL;
    CHECK(f && f->dims[1] == 151 && f->dims[2] == 2, "rfft shape");
    CHECK(r && r->dims[1] == 301 && r->dims[2] == 1, "irfft shape");
    if (r) {
        double worst = 0;
        for (int64_t i = 0; i < 602; i++)
            worst = fmax(worst, fabs(((float *)r->data)[i] - ((float *)x->data)[i]));
        CHECK(worst < 1e-5, "rfft/irfft round trip error %g", worst);
    }
    tensor_free(x), tensor_free(f), tensor_free(r);
    ir_model_free(m);
}

/* DeformConv with zero offsets and no mask is Conv. */
static void test_deform_is_conv(void) {
    new_model(22);
    const int64_t xd[4] = {2, 4, 7, 6}, wd[4] = {6, 2, 3, 2};
    kiln_tensor *x = tf32(4, xd, 11), *w = tf32(4, wd, 12);
    kiln_tensor *b = tf32(1, (const int64_t[]){6}, 13);
    const int64_t st[2] = {2, 1}, dl[2] = {1, 2}, pd[4] = {1, 0, 0, 1};
    int64_t oh = (7 + 1 - 3) / 2 + 1, ow = (6 + 1 - 3) / 1 + 1;
    kiln_tensor *off =
        tensor_with(KILN_DTYPE_FLOAT32, 4, (const int64_t[]){2, 2 * 6 * 2, oh, ow}, NULL);
    ir_value *vx = input(g, "x", KILN_DTYPE_FLOAT32, 4, xd);
    ir_value *vw = input(g, "w", KILN_DTYPE_FLOAT32, 4, wd);
    ir_value *vb = input(g, "b", KILN_DTYPE_FLOAT32, 1, (const int64_t[]){6});
    ir_value *vo = input(g, "o", KILN_DTYPE_FLOAT32, 4, off->dims);
    ir_node *dc = node(g, "DeformConv", 4, (ir_value *[]){vx, vw, vo, vb}, 1, "d");
    ir_node *cv = node(g, "Conv", 3, (ir_value *[]){vx, vw, vb}, 1, "c");
    ir_node *both[2] = {dc, cv};
    for (int i = 0; i < 2; i++) {
        attr_ints(both[i], "strides", 2, st);
        attr_ints(both[i], "dilations", 2, dl);
        attr_ints(both[i], "pads", 4, pd);
        attr_int(both[i], "group", 2);
    }
    attr_int(dc, "offset_group", 2);
    kiln_tensor *o1[1] = {NULL}, *o2[1] = {NULL};
    kiln_status s1 = ref_run_node(dc, (const kiln_tensor *[]){x, w, off, b}, o1);
    CHECK(s1 == KILN_OK, "DeformConv failed: %s", kiln_last_error());
    kiln_status s2 = ref_run_node(cv, (const kiln_tensor *[]){x, w, b}, o2);
    CHECK(s2 == KILN_OK, "Conv failed: %s", kiln_last_error());
    if (!s1 && !s2) {
        CHECK(shape_equal(o1[0]->rank, o1[0]->dims, o2[0]->rank, o2[0]->dims),
              "DeformConv and Conv shapes differ");
        double worst = 0;
        for (int64_t i = 0; i < tensor_numel(o2[0]); i++)
            worst = fmax(worst, fabs(((float *)o1[0]->data)[i] - ((float *)o2[0]->data)[i]));
        CHECK(worst < 1e-5, "DeformConv with zero offsets differs from Conv by %g", worst);
    }
    tensor_free(o1[0]), tensor_free(o2[0]);
    tensor_free(x), tensor_free(w), tensor_free(b), tensor_free(off);
    ir_model_free(m);
}

/* Symbolic dims survive Scan, DFT and STFT inference. */
static void test_static(void) {
    new_model(20);
    int64_t S = ir_model_sym_named(m, "seq"), B = ir_model_sym_named(m, "batch");
    int64_t N = ir_model_sym_named(m, "n");
    int64_t w = 3;
    ir_value *s0 = input(g, "s0", KILN_DTYPE_FLOAT32, 1, &w);
    ir_value *x = input(g, "x", KILN_DTYPE_FLOAT32, 2, (const int64_t[]){S, 3});
    ir_value *y = input(g, "y", KILN_DTYPE_FLOAT32, 2, (const int64_t[]){S, 3});
    ir_node *sc = node(g, "Scan", 3, (ir_value *[]){s0, x, y}, 3, "z");
    set_body(sc, sum_body(sc, true, 3));
    attr_int(sc, "num_scan_inputs", 2);
    attr_ints(sc, "scan_output_axes", 2, (const int64_t[]){0, 1});
    ir_value *sig = input(g, "sig", KILN_DTYPE_FLOAT32, 3, (const int64_t[]){B, N, 1});
    ir_node *d1 = node(g, "DFT", 1, &sig, 1, "d1");
    ir_node *d2 =
        node(g, "DFT", 2, (ir_value *[]){sig, const_scalar(g, "l16", 16)}, 1, "d2");
    attr_int(d2, "onesided", 1);
    ir_value *au = input(g, "au", KILN_DTYPE_FLOAT32, 3, (const int64_t[]){B, 1000, 1});
    ir_node *st = node(g, "STFT", 4,
                       (ir_value *[]){au, const_scalar(g, "step", 100), NULL,
                                      const_scalar(g, "fl", 400)},
                       1, "st");
    kiln_status stt = ir_graph_infer(g);
    CHECK(stt == KILN_OK, "inference failed: %s", kiln_last_error());
    if (stt == KILN_OK) {
        CHECK(dims_are(sc->out[0], 1, &w), "Scan state type");
        CHECK(dims_are(sc->out[1], 2, (const int64_t[]){S, 3}), "Scan output on axis 0");
        CHECK(dims_are(sc->out[2], 2, (const int64_t[]){3, S}), "Scan output on axis 1");
        CHECK(dims_are(d1->out[0], 3, (const int64_t[]){B, N, 2}), "DFT keeps symbols");
        CHECK(dims_are(d2->out[0], 3, (const int64_t[]){B, 9, 2}), "one-sided DFT of 16");
        CHECK(dims_are(st->out[0], 4, (const int64_t[]){B, 7, 201, 2}), "STFT frames");
    }
    ir_model_free(m);
}

int main(void) {
    test_scan9();
    test_scan8();
    test_dft();
    test_deform_is_conv();
    test_static();
    return test_all_passed("test_extra");
}

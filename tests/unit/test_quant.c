/* test_quant.c: the calibration math (histograms that grow, minmax,
** percentile and entropy thresholds on known distributions), the
** calibration cache (round trip, every malformed line refused with its
** number) and the calibration data folders (.npy and test_data_set
** layouts, wrong shapes and dtypes refused by name). */
#include "test_util.h"
#include "../../src/quant/quant.h"

#include <unistd.h>

static double gauss(void) { /* Box-Muller */
    double u = rnd(), v = rnd();
    if (u < 1e-300) u = 1e-300;
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

static quant_hist *hist_of(const float *x, int64_t n, int chunks) {
    quant_hist *h = calloc(1, sizeof *h);
    if (!h) exit(1);
    int64_t per = n / chunks;
    for (int c = 0; c < chunks; c++)
        quant_hist_add(h, x + c * per, c == chunks - 1 ? n - c * per : per);
    return h;
}

static double bins_sum(const quant_hist *h) {
    double s = 0;
    for (int i = 0; i < QUANT_HIST_BINS; i++) s += h->bins[i];
    return s;
}

static void test_hist(void) {
    enum { N = 100000 };
    float *x = malloc(N * sizeof *x);
    if (!x) exit(1);
    /* growing data: each chunk reaches further, the range must follow */
    for (int i = 0; i < N; i++) x[i] = (float)(-((double)i / N) * 7.5 * (i % 2 ? 1 : -1));
    quant_hist *h = hist_of(x, N, 10);
    CHECK(h->count == N, "count %g", h->count);
    CHECK(bins_sum(h) == N, "bins hold every value: %g", bins_sum(h));
    CHECK(fabs(h->absmax - 7.5 * (N - 1) / N) < 1e-5, "absmax %g", h->absmax);
    CHECK(h->range >= h->absmax, "range %g covers absmax %g", h->range, h->absmax);
    /* |x| uniform on [0, 7.5): bins below absmax roughly equal */
    double w = h->range / QUANT_HIST_BINS;
    int last = (int)(h->absmax / w);
    double lo = 1e30, hi = 0;
    for (int i = 1; i < last - 1; i++) {
        lo = fmin(lo, h->bins[i]);
        hi = fmax(hi, h->bins[i]);
    }
    CHECK(hi <= 2.2 * lo + 4, "uniform data stays flat after merging bins: %g..%g", lo, hi);
    /* minmax and percentile */
    CHECK(quant_hist_amax(h, QUANT_MINMAX, 0) == h->absmax, "minmax is absmax");
    double p99 = quant_hist_amax(h, QUANT_PERCENTILE, 99.0);
    CHECK(fabs(p99 - 0.99 * 7.5) < 0.01 * 7.5, "99th percentile of U(0,7.5): %g", p99);
    CHECK(quant_hist_amax(h, QUANT_PERCENTILE, 100.0) == h->absmax, "100th percentile");
    double ent = quant_hist_amax(h, QUANT_ENTROPY, 0);
    CHECK(ent > 0.9 * h->absmax && ent <= h->absmax,
          "entropy keeps (nearly) the whole range of uniform data: %g of %g", ent, h->absmax);
    free(h);
    /* all zeros: no range, scale 1 */
    memset(x, 0, N * sizeof *x);
    h = hist_of(x, N, 3);
    CHECK(quant_hist_amax(h, QUANT_ENTROPY, 0) == 0 &&
          quant_hist_amax(h, QUANT_MINMAX, 0) == 0, "all-zero tensor has amax 0");
    CHECK(quant_scale_for(0) == 1.0f, "scale for amax 0 is 1");
    CHECK(quant_scale_for(127) == 1.0f, "scale for amax 127 is 1");
    CHECK(fabsf(quant_scale_for(1.0) - 1.0f / 127) < 1e-9f, "scale for amax 1");
    free(h);
    /* NaN and inf are skipped, not binned */
    x[0] = NAN;
    x[1] = INFINITY;
    x[2] = 2.0f;
    h = hist_of(x, 3, 1);
    CHECK(h->absmax == 2.0 && bins_sum(h) == 1, "NaN/inf ignored (absmax %g)", h->absmax);
    free(h);
    free(x);
}

static void test_entropy(void) {
    enum { N = 400000 };
    float *x = malloc(N * sizeof *x);
    if (!x) exit(1);
    /* Gaussian with a few far outliers: entropy must clip the outliers
    ** (minmax cannot) yet keep the bulk, about 3..6 sigma for 8 bits. */
    for (int i = 0; i < N; i++) x[i] = (float)gauss();
    for (int i = 0; i < 20; i++) x[i * 997] = 40.0f;
    quant_hist *h = hist_of(x, N, 8);
    double ent = quant_hist_amax(h, QUANT_ENTROPY, 0);
    CHECK(ent > 2.5 && ent < 8.0, "Gaussian + outliers: entropy threshold %g sigma", ent);
    CHECK(quant_hist_amax(h, QUANT_MINMAX, 0) == 40.0, "minmax keeps the outlier");
    double p = quant_hist_amax(h, QUANT_PERCENTILE, 99.99);
    CHECK(p > 3.0 && p < 5.0, "99.99th percentile of |N(0,1)| is about 3.9: %g", p);
    free(h);
    /* ReLU output: half exact zeros, half |N(0,1)|; the zero spike must not
    ** drag the threshold down */
    for (int i = 0; i < N; i++) x[i] = i % 2 ? (float)fabs(gauss()) : 0.0f;
    h = hist_of(x, N, 4);
    ent = quant_hist_amax(h, QUANT_ENTROPY, 0);
    CHECK(ent > 2.5, "ReLU(Gaussian): entropy threshold %g not dragged to 0 by zeros", ent);
    free(h);
    /* Laplace (heavy tail): clips relative to its max more than Gaussian */
    for (int i = 0; i < N; i++) {
        double u = rnd() - 0.5;
        x[i] = (float)(-(u < 0 ? -1 : 1) * log(1 - 2 * fabs(u) + 1e-300));
    }
    h = hist_of(x, N, 4);
    ent = quant_hist_amax(h, QUANT_ENTROPY, 0);
    /* the MSE-optimal 8-bit clip of Laplace(b = 1) is about 9.9 b (Banner
    ** et al., ACIQ); KL lands near it, below the sample max (about 13) */
    CHECK(ent > 7.0 && ent < 12.0 && ent < h->absmax, "Laplace: entropy %g of absmax %g",
          ent, h->absmax);
    free(h);
    /* discrete data (17 levels, like 4-bit pixels): full range */
    for (int i = 0; i < N; i++) x[i] = (float)(i % 17) / 16.0f;
    h = hist_of(x, N, 4);
    CHECK(quant_hist_amax(h, QUANT_ENTROPY, 0) == 1.0, "discrete data keeps its range: %g",
          quant_hist_amax(h, QUANT_ENTROPY, 0));
    free(h);
    free(x);
    /* raw histogram: data inside the first `levels` bins gives `levels` */
    double hist[512] = {0};
    for (int i = 0; i < 100; i++) hist[i] = 1 + i % 3;
    CHECK(quant_entropy_bins(hist, 512, 128) == 128, "short histogram -> levels");
    /* a smooth bulk and one far outlier: the outlier is clipped */
    for (int i = 0; i < 512; i++) hist[i] = i < 300 ? 1000.0 - 3 * i : 0;
    hist[500] = 1;
    int b = quant_entropy_bins(hist, 512, 128);
    CHECK(b >= 128 && b <= 300, "bulk + outlier: %d bins", b);
}

static void test_cache(void) {
    const char *path = "/tmp/kiln_test_quant_cache.txt";
    quant_cache c = {0};
    snprintf(c.method, sizeof c.method, "entropy");
    snprintf(c.version, sizeof c.version, "%s", KILN_VERSION_STRING);
    quant_cache_entry e[3] = {{"x", 0.00787401572f}, {"a name with spaces", 1e-30f},
                              {"/2/Relu_output_0", 3.14159274f}};
    c.e = e;
    c.n = 3;
    CHECK(quant_cache_write(path, &c) == KILN_OK, "write: %s", kiln_last_error());
    quant_cache r;
    CHECK(quant_cache_read(path, &r) == KILN_OK, "read: %s", kiln_last_error());
    CHECK(r.n == 3 && !strcmp(r.method, "entropy") && !strcmp(r.version, KILN_VERSION_STRING),
          "header and count");
    for (int i = 0; i < 3 && r.n == 3; i++) {
        const quant_cache_entry *f = quant_cache_find(&r, e[i].name);
        CHECK(f && f->scale == e[i].scale, "entry '%s' round-trips bit-exactly", e[i].name);
    }
    quant_cache_clear(&r);
    static const struct { const char *text, *want; } bad[] = {
        {"", "empty"},
        {"kiln-timing-cache 1\n", "not a Kiln calibration cache"},
        {"kiln-calibration-cache 2\n", "not a Kiln calibration cache"},
        {"kiln-calibration-cache 1\nx\n", ":2:"},
        {"kiln-calibration-cache 1\nmethod minmax\nx -1\n", ":3:"},
        {"kiln-calibration-cache 1\nx 0\n", "positive"},
        {"kiln-calibration-cache 1\nx 1e39\n", ":2:"},
        {"kiln-calibration-cache 1\nx abc\n", ":2:"},
        {"kiln-calibration-cache 1\nx 1\nx 2\n", "twice"},
        {"kiln-calibration-cache 1\nx nan\n", ":2:"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        FILE *f = fopen(path, "w");
        if (!f) exit(1);
        fputs(bad[i].text, f);
        fclose(f);
        kiln_status st = quant_cache_read(path, &r);
        CHECK(st == KILN_INVALID_ARGUMENT && strstr(kiln_last_error(), bad[i].want),
              "bad cache %zu refused with '%s': got %d '%s'", i, bad[i].want, (int)st,
              kiln_last_error());
    }
    unlink(path);
    CHECK(quant_cache_read(path, &r) == KILN_IO_ERROR, "missing cache is an I/O error");
}

/* Writes a float32 .npy file. */
static void write_npy(const char *path, int rank, const int64_t *dims, const float *v) {
    char hdr[256], shape[128] = "";
    int64_t n = 1;
    for (int d = 0; d < rank; d++) {
        size_t u = strlen(shape);
        snprintf(shape + u, sizeof shape - u, "%lld,%s", (long long)dims[d], d + 1 < rank ? " " : "");
        n *= dims[d];
    }
    int len = snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }",
                       shape);
    int total = 10 + len + 1, pad = (64 - total % 64) % 64;
    FILE *f = fopen(path, "wb");
    if (!f) exit(1);
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0, 0};
    pre[8] = (unsigned char)((len + pad + 1) & 255);
    pre[9] = (unsigned char)((len + pad + 1) >> 8);
    fwrite(pre, 1, 10, f);
    fwrite(hdr, 1, (size_t)len, f);
    for (int i = 0; i < pad; i++) fputc(' ', f);
    fputc('\n', f);
    fwrite(v, sizeof *v, (size_t)n, f);
    fclose(f);
}

static void test_dataset(void) {
    ir_model *m = model_new(17);
    ir_graph *g = m->graph;
    int64_t dims[4] = {2, 3, 1, 1};
    g->inputs = arena_zalloc(m, sizeof *g->inputs);
    g->inputs[0] = input(g, "x", KILN_DTYPE_FLOAT32, 2, dims);
    g->n_inputs = 1;
    char dir[] = "/tmp/kiln_test_quant_XXXXXX";
    if (!mkdtemp(dir)) exit(1);
    char path[256];
    float v[24];
    for (int i = 0; i < 24; i++) v[i] = (float)i;
    /* 8 rows with a fixed batch of 2: 4 sets */
    snprintf(path, sizeof path, "%s/x.npy", dir);
    int64_t d8[2] = {8, 3};
    write_npy(path, 2, d8, v);
    quant_dataset ds;
    CHECK(quant_dataset_load(dir, g, 0, &ds) == KILN_OK, "npy: %s", kiln_last_error());
    CHECK(ds.n_sets == 4 && ds.t[3]->dims[0] == 2 && ((float *)ds.t[3]->data)[0] == 18.0f,
          "8 rows / batch 2 = 4 sets, in order");
    quant_dataset_free(&ds);
    CHECK(quant_dataset_load(dir, g, 3, &ds) == KILN_OK && ds.n_sets == 3, "max_sets");
    quant_dataset_free(&ds);
    /* 7 rows cannot split into batches of 2 */
    int64_t d7[2] = {7, 3};
    write_npy(path, 2, d7, v);
    CHECK(quant_dataset_load(dir, g, 0, &ds) == KILN_INVALID_ARGUMENT &&
          strstr(kiln_last_error(), "not a multiple"), "7 rows refused: %s", kiln_last_error());
    /* wrong inner dim */
    int64_t d4[2] = {4, 4};
    write_npy(path, 2, d4, v);
    CHECK(quant_dataset_load(dir, g, 0, &ds) == KILN_INVALID_ARGUMENT &&
          strstr(kiln_last_error(), "must have shape"), "wrong shape refused: %s",
          kiln_last_error());
    /* wrong rank */
    write_npy(path, 1, d4, v);
    CHECK(quant_dataset_load(dir, g, 0, &ds) == KILN_INVALID_ARGUMENT, "wrong rank refused");
    /* truncated file */
    FILE *f = fopen(path, "r+b");
    if (f) {
        if (ftruncate(fileno(f), 70)) {
        }
        fclose(f);
    }
    CHECK(quant_dataset_load(dir, g, 0, &ds) == KILN_INVALID_ARGUMENT, "truncated npy");
    unlink(path);
    /* no data at all / missing folder */
    CHECK(quant_dataset_load(dir, g, 0, &ds) == KILN_INVALID_ARGUMENT &&
          strstr(kiln_last_error(), "neither"), "empty folder: %s", kiln_last_error());
    CHECK(quant_dataset_load("/nonexistent/kiln", g, 0, &ds) == KILN_INVALID_ARGUMENT &&
          strstr(kiln_last_error(), "does not exist"), "missing folder");
    /* test_data_set layout, the name in the .pb picks the input */
    for (int s = 0; s < 2; s++) {
        snprintf(path, sizeof path, "%s/test_data_set_%d", dir, s);
        mkdir(path, 0755);
        kiln_tensor *t = tensor_with(KILN_DTYPE_FLOAT32, 2, dims, v + s * 6);
        snprintf(path, sizeof path, "%s/test_data_set_%d/input_0.pb", dir, s);
        CHECK(kiln_tensor_save_pb(t, "x", path) == KILN_OK, "save pb");
        tensor_free(t);
    }
    CHECK(quant_dataset_load(dir, g, 0, &ds) == KILN_OK && ds.n_sets == 2 &&
          ((float *)ds.t[1]->data)[0] == 6.0f, "pb sets: %s", kiln_last_error());
    quant_dataset_free(&ds);
    /* an input the model does not have */
    int64_t dd[2] = {2, 3};
    kiln_tensor *t = tensor_with(KILN_DTYPE_FLOAT32, 2, dd, v);
    snprintf(path, sizeof path, "%s/test_data_set_1/input_0.pb", dir);
    kiln_tensor_save_pb(t, "y", path);
    tensor_free(t);
    CHECK(quant_dataset_load(dir, g, 0, &ds) == KILN_INVALID_ARGUMENT &&
          strstr(kiln_last_error(), "'y'"), "unknown input name: %s", kiln_last_error());
    /* wrong dtype */
    t = tensor_with(KILN_DTYPE_INT64, 2, dd, NULL);
    kiln_tensor_save_pb(t, "x", path);
    tensor_free(t);
    CHECK(quant_dataset_load(dir, g, 0, &ds) == KILN_INVALID_ARGUMENT &&
          strstr(kiln_last_error(), "must be float32"), "wrong dtype: %s", kiln_last_error());
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) {
    }
    ir_model_free(m);
}

/* Mutated caches and .npy files (byte flips, truncations, insertions):
** every one is read or refused with a status, never a crash (the ASan
** build checks the memory side). A cheap stand-in for a fuzz target. */
static void write_bytes(const char *path, const unsigned char *b, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) exit(1);
    if (n) fwrite(b, 1, n, f);
    fclose(f);
}

static size_t read_bytes(const char *path, unsigned char *b, size_t cap) {
    FILE *f = fopen(path, "rb");
    if (!f) exit(1);
    size_t n = fread(b, 1, cap, f);
    fclose(f);
    return n;
}

static size_t mutate(unsigned char *b, size_t n, size_t cap) {
    int kind = (int)(rnd() * 4);
    size_t at = n ? (size_t)(rnd() * (double)n) : 0;
    static const unsigned char special[] = {0, ' ', '\n', '\'', '(', ')', ',', '-', '9', 0xff};
    switch (kind) {
    case 0: b[at] = (unsigned char)(rnd() * 256); return n;
    case 1: return at; /* truncate */
    case 2:
        if (n + 1 < cap) {
            memmove(b + at + 1, b + at, n - at);
            b[at] = special[(int)(rnd() * sizeof special)];
            return n + 1;
        }
        return n;
    default: b[at] = special[(int)(rnd() * sizeof special)]; return n;
    }
}

static void test_hostile(void) {
    char dir[] = "/tmp/kiln_test_quant_h_XXXXXX";
    if (!mkdtemp(dir)) exit(1);
    char cpath[256], npath[256];
    snprintf(cpath, sizeof cpath, "%s/c.txt", dir);
    snprintf(npath, sizeof npath, "%s/x.npy", dir);
    quant_cache c = {0};
    snprintf(c.method, sizeof c.method, "entropy");
    snprintf(c.version, sizeof c.version, "0.1.0");
    quant_cache_entry e[2] = {{"x", 0.5f}, {"/a/b c", 0.25f}};
    c.e = e;
    c.n = 2;
    if (quant_cache_write(cpath, &c)) exit(1);
    unsigned char orig_c[1024], orig_n[1024], b[1100];
    size_t nc = read_bytes(cpath, orig_c, sizeof orig_c);
    ir_model *m = model_new(17);
    int64_t dims[2] = {2, 3};
    m->graph->inputs = arena_zalloc(m, sizeof *m->graph->inputs);
    m->graph->inputs[0] = input(m->graph, "x", KILN_DTYPE_FLOAT32, 2, dims);
    m->graph->n_inputs = 1;
    float v[12] = {0};
    int64_t d4[2] = {4, 3};
    write_npy(npath, 2, d4, v);
    size_t nn = read_bytes(npath, orig_n, sizeof orig_n);
    int ok = 0, refused = 0, other = 0;
    for (int it = 0; it < 3000; it++) {
        bool npy = it % 2;
        size_t n = npy ? nn : nc;
        memcpy(b, npy ? orig_n : orig_c, n);
        for (int k = 1 + (int)(rnd() * 3); k > 0; k--) n = mutate(b, n, sizeof b);
        write_bytes(npy ? npath : cpath, b, n);
        kiln_status st;
        if (npy) {
            quant_dataset ds;
            st = quant_dataset_load(dir, m->graph, 0, &ds);
            if (!st) quant_dataset_free(&ds);
        } else {
            quant_cache r;
            st = quant_cache_read(cpath, &r);
            if (!st) quant_cache_clear(&r);
        }
        if (st == KILN_OK) ok++;
        else if (st == KILN_INVALID_ARGUMENT) refused++;
        else other++;
    }
    CHECK(other == 0, "mutated inputs: %d read, %d refused, %d other statuses", ok, refused,
          other);
    CHECK(refused > 100, "mutations get refused (%d)", refused);
    unlink(cpath);
    unlink(npath);
    rmdir(dir);
    ir_model_free(m);
}

/* quant_opts.weights_only (device builds): the MatMul of two activations
** is no quantized layer (its input z stays float; a, the weight MatMul's
** quantized output, reaches it through that layer's DQ as it reaches
** every reader); without it both of its inputs are quantized. */
static int dq_inputs(const ir_graph *g, const char *out) {
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *n = g->nodes[i];
        if (n->dead || n->op != OP_MatMul || strcmp(n->out[0]->name, out)) continue;
        int k = 0;
        for (int j = 0; j < n->n_in; j++)
            k += n->in[j] && n->in[j]->producer && n->in[j]->producer->op == OP_DequantizeLinear;
        return k;
    }
    return -1;
}

/* Number of DequantizeLinear nodes reading a tensor of type t. */
static int dq_of_type(const ir_graph *g, kiln_dtype t) {
    int k = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *n = g->nodes[i];
        k += !n->dead && n->op == OP_DequantizeLinear && n->in[0] && n->in[0]->type.dtype == t;
    }
    return k;
}

/* quant_int8 on quant_mm2.onnx (two MatMuls: one with a constant weight,
** one of two activations), INT8 and FP8, weights_only off and on. */
static void test_weights_only(void) {
    char dir[] = "/tmp/kiln_quant_wo_XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0, "mkdtemp");
        return;
    }
    float xv[2 * 4 * 8], zv[2 * 8 * 4];
    for (int i = 0; i < 64; i++) xv[i] = (float)gauss(), zv[i] = (float)gauss();
    char path[512];
    int64_t xd[3] = {2, 4, 8}, zd[3] = {2, 8, 4};
    snprintf(path, sizeof path, "%s/x.npy", dir);
    write_npy(path, 3, xd, xv);
    snprintf(path, sizeof path, "%s/z.npy", dir);
    write_npy(path, 3, zd, zv);
    for (int k = 0; k < 6; k++) {
        /* k 5: INT8, weights_only, every product's output quantized (the
        ** graph before QFusedGemm) */
        int qout = k == 5, wo = (k & 1) || qout, fp8 = k >= 2 && !qout, entropy = k == 4;
        kiln_model *km;
        ir_model *m;
        if (!load2("tests/data/passes/quant_mm2.onnx", &km, &m)) {
            CHECK(0, "quant_mm2.onnx: cannot load");
            break;
        }
        pass_ctx pc;
        memset(&pc, 0, sizeof pc);
        pc.m = m, pc.g = m->graph, pc.opt_level = 3;
        quant_opts o;
        memset(&o, 0, sizeof o);
        o.calib_dir = dir;
        o.method = QUANT_MINMAX;
        o.budget_metric = -1;
        o.log_max = KILN_SEVERITY_ERROR;
        o.weights_only = wo != 0;
        o.qtype = fp8 ? KILN_DTYPE_FLOAT8E4M3FN : KILN_DTYPE_INT8;
        o.quantize_outputs = qout != 0;
        if (entropy) o.method = QUANT_ENTROPY;
        kiln_status st = quant_int8(&pc, &o);
        if (entropy) { /* FP8 refuses entropy calibration, saying why */
            CHECK(st == KILN_INVALID_ARGUMENT && strstr(kiln_last_error(), "entropy"),
                  "fp8 with entropy calibration: status %d, '%s'", st, kiln_last_error());
            ir_model_free(m);
            kiln_model_free(km);
            continue;
        }
        CHECK(!st, "weights_only %d fp8 %d: quant_int8 failed: %s", wo, fp8,
              st ? kiln_last_error() : "");
        if (!st) {
            /* every DQ reads the chosen 8-bit type: 2 weights (one MatMul
            ** and its constant; the other side) and the activations */
            int nf8 = dq_of_type(m->graph, KILN_DTYPE_FLOAT8E4M3FN);
            int ni8 = dq_of_type(m->graph, KILN_DTYPE_INT8) +
                      dq_of_type(m->graph, KILN_DTYPE_UINT8);
            CHECK(fp8 ? nf8 >= 2 && ni8 == 0 : ni8 >= 2 && nf8 == 0,
                  "weights_only %d fp8 %d: %d float8 and %d 8-bit integer DQ nodes", wo, fp8,
                  nf8, ni8);
            CHECK(dq_inputs(m->graph, "a") == 2, "weights_only %d: the weight MatMul reads "
                  "%d DQ inputs, expected 2", wo, dq_inputs(m->graph, "a"));
            /* weights_only keeps the activation MatMul in float: the first
            ** product's output, which only it reads, is quantized only
            ** with quantize_outputs (no 8-bit reader takes it) */
            int want = wo ? qout : 2;
            CHECK(dq_inputs(m->graph, "y") == want, "weights_only %d quantize_outputs %d: "
                  "the activation MatMul reads %d DQ inputs, expected %d", wo, qout,
                  dq_inputs(m->graph, "y"), want);
        }
        ir_model_free(m);
        kiln_model_free(km);
    }
    snprintf(path, sizeof path, "%s/x.npy", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/z.npy", dir);
    unlink(path);
    rmdir(dir);
}

static void test_fp8_scale(void) {
    CHECK(quant_scale_fp8(448.0) == 1.0f, "fp8 scale of amax 448: %g", quant_scale_fp8(448.0));
    CHECK(quant_scale_fp8(0.0) == 1.0f, "fp8 scale of amax 0: %g", quant_scale_fp8(0.0));
    CHECK(quant_scale_fp8(INFINITY) == 1.0f, "fp8 scale of amax inf");
    CHECK(quant_scale_fp8(3.5) == (float)(3.5 / 448.0), "fp8 scale of amax 3.5");
}

int main(void) {
    test_fp8_scale();
    test_hist();
    test_entropy();
    test_cache();
    test_dataset();
    test_hostile();
    test_weights_only();
    return test_summary();
}

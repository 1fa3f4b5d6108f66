/* fuzz_onnx_body.c: shared body of the ONNX reader fuzz target and replayer.
** A refused input must leave a non-empty message; a loaded one must answer
** every introspection call consistently. Violations abort so both drivers
** report them as crashes. */
#include "fuzz_onnx_body.h"

#include "kiln.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Internal knob from src/util/common.h (the library is linked statically). */
extern size_t kiln_max_alloc;

/* A scratch folder standing in for the model's folder, so external-data
** references are resolved for real: a data file, one in a subfolder, a
** subfolder itself and a FIFO (opening it would block forever). */
static char g_dir[64];

static void write_file(const char *rel, size_t n) {
    char path[128];
    snprintf(path, sizeof path, "%s/%s", g_dir, rel);
    FILE *f = fopen(path, "wb");
    if (!f) return;
    for (size_t i = 0; i < n; i++) fputc((int)(i * 37 + 11) & 0xff, f);
    fclose(f);
}

static void remove_dir(void) {
    static const char *const names[] = {"weights.bin", "w.bin", "sub/w.bin",
                                        "fifo.bin", "sub", ""};
    char path[128];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", g_dir, names[i]);
        remove(path);
    }
}

void kiln_fuzz_init(void) {
    kiln_max_alloc = KILN_FUZZ_MAX_ALLOC;
    snprintf(g_dir, sizeof g_dir, "/tmp/kiln-fuzz-XXXXXX");
    if (!mkdtemp(g_dir)) {
        g_dir[0] = 0; /* external data is then refused for lack of a folder */
        return;
    }
    char path[128];
    write_file("weights.bin", 4096);
    write_file("w.bin", 64);
    snprintf(path, sizeof path, "%s/sub", g_dir);
    mkdir(path, 0700);
    write_file("sub/w.bin", 256);
    snprintf(path, sizeof path, "%s/fifo.bin", g_dir);
    mkfifo(path, 0600);
    atexit(remove_dir);
}

static void fail(const char *what) {
    fprintf(stderr, "kiln_fuzz: contract violation: %s\n", what);
    abort();
}

static void check_str(const char *s, const char *what) {
    if (!s) fail(what);
    (void)strlen(s); /* lets ASan see a dangling or unterminated string */
}

static void check_warning(void *user, kiln_severity sev, const char *msg) {
    (void)user;
    if (sev != KILN_SEVERITY_WARNING) fail("import logged a non-warning");
    check_str(msg, "warning message");
    if (!msg[0]) fail("empty warning message");
}

static void check_io(const kiln_model *m, const kiln_io_info *io) {
    check_str(io->name, "io name is NULL");
    (void)kiln_dtype_name(io->dtype);
    if (io->rank < -1 || io->rank > KILN_MAX_RANK) fail("io rank out of range");
    for (int d = 0; d < io->rank; d++) {
        if (io->dims[d] < -1) fail("io dim below -1");
        if (io->dim_names[d]) check_str(io->dim_names[d], "dim name");
    }
    (void)m;
}

int kiln_fuzz_one(const uint8_t *data, size_t size) {
    kiln_model *m = NULL;
    /* An empty input still needs a valid pointer: the API refuses NULL. */
    static const uint8_t empty[1];
    /* Import warnings go to a logger that checks them instead of stderr. */
    kiln_model_load_options opt;
    kiln_model_load_options_init(&opt);
    opt.log = check_warning;
    kiln_status st = kiln_model_load_memory_v2(size ? (const void *)data : empty,
                                               size, g_dir[0] ? g_dir : NULL, &opt, &m);
    if (st != KILN_OK) {
        if (m) fail("failed load returned a model");
        const char *e = kiln_last_error();
        if (!e || !e[0]) fail("failed load left no error message");
        (void)kiln_status_name(st);
        return 0;
    }
    if (!m) fail("successful load returned no model");
    int nw = kiln_model_num_warnings(m);
    if (nw < 0 || nw > 65) fail("warning count out of range");
    for (int i = 0; i < nw; i++) check_str(kiln_model_warning(m, i), "warning");
    if (kiln_model_warning(m, nw) != NULL) fail("warning past the end");
    check_str(kiln_model_producer(m), "producer");
    (void)kiln_model_ir_version(m);
    int no = kiln_model_num_opsets(m);
    if (no < 0) fail("negative opset count");
    for (int i = 0; i < no; i++) {
        const char *dom = NULL;
        int64_t ver = 0;
        kiln_model_opset(m, i, &dom, &ver);
        check_str(dom, "opset domain");
    }
    if (kiln_model_num_nodes(m) < 0) fail("negative node count");
    int nt = kiln_model_num_op_types(m), prev = -1;
    for (int i = 0; i < nt; i++) {
        const char *op = NULL;
        int count = 0, sup = 0;
        kiln_model_op_type(m, i, &op, &count, &sup);
        check_str(op, "op type");
        if (count <= 0) fail("op histogram count not positive");
        if (prev >= 0 && count > prev) fail("op histogram not sorted");
        prev = count;
    }
    kiln_io_info io;
    for (int i = 0; i < kiln_model_num_inputs(m); i++) {
        if (kiln_model_input(m, i, &io) != KILN_OK) fail("input lookup failed");
        check_io(m, &io);
    }
    for (int i = 0; i < kiln_model_num_outputs(m); i++) {
        if (kiln_model_output(m, i, &io) != KILN_OK) fail("output lookup failed");
        check_io(m, &io);
    }
    if (kiln_model_input(m, -1, &io) == KILN_OK ||
        kiln_model_output(m, kiln_model_num_outputs(m), &io) == KILN_OK)
        fail("out-of-range io index accepted");
    kiln_model_free(m);
    return 1;
}

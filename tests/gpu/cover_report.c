/* cover_report.c: offline CUDA coverage of the ONNX node tests. For every
** case folder (onnx's backend test data, input shapes from its data sets as
** `kiln check` builds them) it runs the builder's placement dry run
** (builder_placement: the same import, passes, inference and tactic filter
** as `kiln build --device cuda`, FP32, without opening a GPU) and lists the
** layers the engine would run on the host: shape arithmetic kept there on
** purpose, and fallbacks (no CUDA tactic for the op at all, or one exists
** and declines the layer: parameter input not constant, dtype, other). It
** prints a histogram of fallback reasons by the number of cases they keep
** off the device, and the totals `run.sh` reports. Needs no GPU.
**
** usage: cover_report NODE_DIR [--xfail DIR] [--cases FILE] [--filter S]
**   --xfail DIR: skip cases listed in DIR/ *.txt (they fail on the CPU too)
**   --cases FILE: write "case fallback shape_host op(reason)..." per case */
#include "../../src/backends/cuda/cuda_internal.h"
#include "../../src/builder/builder.h"
#include "../../src/ir/ir.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const kiln_tactic *const *const k_fam[] = {
    cuda_tactics_eltwise, cuda_tactics_data, cuda_tactics_reduce, cuda_tactics_norm,
    cuda_tactics_pool, cuda_tactics_gemm, cuda_tactics_conv, cuda_tactics_attn,
    cuda_tactics_qconv,
};

static bool op_has_cuda_tactic(int op) {
    for (size_t f = 0; f < sizeof k_fam / sizeof k_fam[0]; f++)
        for (const kiln_tactic *const *t = k_fam[f]; *t; t++)
            if ((*t)->op == op) return true;
    return false;
}

/* Why a CUDA tactic that exists for the op declined this layer: a guess
** from the layer's inputs (the tactics' supports() say only yes or no). */
static void decline_reason(const ir_node *n, const ir_type *const *in, char *buf, size_t bn) {
    for (int k = 1; k < n->n_in; k++) {
        const ir_value *v = n->in[k];
        /* a small integer input unlike the data input: axes, pads, sizes... */
        if (v && !v->const_val && in[k] && dtype_is_int(in[k]->dtype) && in[k]->rank <= 1 &&
            (!in[0] || in[0]->dtype != in[k]->dtype)) {
            snprintf(buf, bn, "param input %d not constant", k);
            return;
        }
    }
    kiln_dtype dt = in[0] ? in[0]->dtype : KILN_DTYPE_UNDEFINED;
    kiln_dtype odt = n->n_out && n->out[0] ? n->out[0]->type.dtype : KILN_DTYPE_UNDEFINED;
    if (dt != KILN_DTYPE_FLOAT32) {
        snprintf(buf, bn, "dtype %s", kiln_dtype_name(dt));
        return;
    }
    if (odt != KILN_DTYPE_FLOAT32 && odt != KILN_DTYPE_UNDEFINED) {
        snprintf(buf, bn, "out dtype %s", kiln_dtype_name(odt));
        return;
    }
    snprintf(buf, bn, "declined (attribute/shape)");
}

/* ------------------------------------------------------------ histogram */
typedef struct {
    char key[160];
    int cases, layers, last_case;
} bucket;

static bucket *g_b;
static int g_nb, g_cap;

static void count(const char *key, int case_id) {
    for (int i = 0; i < g_nb; i++)
        if (!strcmp(g_b[i].key, key)) {
            g_b[i].layers++;
            if (g_b[i].last_case != case_id) g_b[i].cases++;
            g_b[i].last_case = case_id;
            return;
        }
    if (g_nb == g_cap) {
        g_cap = g_cap ? 2 * g_cap : 64;
        bucket *nb = realloc(g_b, (size_t)g_cap * sizeof *nb);
        if (!nb) exit(2);
        g_b = nb;
    }
    snprintf(g_b[g_nb].key, sizeof g_b[g_nb].key, "%s", key);
    g_b[g_nb].cases = g_b[g_nb].layers = 1;
    g_b[g_nb].last_case = case_id;
    g_nb++;
}

static int cmp_bucket(const void *a, const void *b) {
    const bucket *x = a, *y = b;
    if (x->cases != y->cases) return y->cases - x->cases;
    return strcmp(x->key, y->key);
}

/* ------------------------------------------------------------ one case */
typedef struct {
    int case_id, fallback, shape_host, layers;
    char detail[2048];
} case_state;

static void on_layer(void *user, const ir_node *n, builder_place where, const ir_type *const *in) {
    case_state *s = user;
    s->layers++;
    if (where == BUILDER_PLACE_DEVICE) return;
    if (where == BUILDER_PLACE_SHAPE_HOST) {
        s->shape_host++;
        return;
    }
    s->fallback++;
    char why[96], key[160];
    if (!op_has_cuda_tactic(n->op))
        snprintf(why, sizeof why, "no CUDA tactic");
    else
        decline_reason(n, in, why, sizeof why);
    snprintf(key, sizeof key, "%s: %s", n->op_type ? n->op_type : "?", why);
    count(key, s->case_id);
    size_t l = strlen(s->detail);
    if (l + strlen(key) + 4 < sizeof s->detail)
        snprintf(s->detail + l, sizeof s->detail - l, " [%s]", key);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Builds the dry-run config for a case exactly as kiln check does. */
static int run_case(const char *dir, case_state *s) {
    char path[8192];
    kiln_model *m = NULL;
    kiln_builder_config *cfg = NULL;
    int rc = -1;
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    if (kiln_model_load(path, &m)) return -1;
    int ni = kiln_model_num_inputs(m);
    bool dynamic = false;
    for (int i = 0; i < ni; i++) {
        kiln_io_info io;
        kiln_model_input(m, i, &io);
        if (io.rank < 0) dynamic = true;
        for (int d = 0; d < io.rank; d++)
            if (io.dims[d] < 0) dynamic = true;
    }
    if (kiln_builder_config_create(&cfg) ||
        kiln_builder_config_set_logger(cfg, NULL, NULL, KILN_SEVERITY_ERROR) ||
        kiln_builder_config_set_device(cfg, KILN_DEVICE_CUDA))
        goto done;
    if (dynamic) {
        char *sets[256];
        int n_sets = 0;
        DIR *d = opendir(dir);
        struct dirent *ent;
        while (d && (ent = readdir(d)) && n_sets < 256)
            if (!strncmp(ent->d_name, "test_data_set_", 14)) sets[n_sets++] = strdup(ent->d_name);
        if (d) closedir(d);
        qsort(sets, (size_t)n_sets, sizeof *sets, cmp_str);
        int prof;
        bool bad = kiln_builder_config_add_profile(cfg, &prof) != KILN_OK;
        for (int i = 0; i < ni && !bad; i++) {
            kiln_io_info io;
            int64_t mn[KILN_MAX_RANK], mx[KILN_MAX_RANK];
            int rank = -1;
            kiln_model_input(m, i, &io);
            for (int k = 0; k < n_sets && !bad; k++) {
                kiln_tensor *t;
                snprintf(path, sizeof path, "%s/%s/input_%d.pb", dir, sets[k], i);
                if (kiln_tensor_load_pb(path, &t, NULL)) {
                    bad = true;
                    break;
                }
                int r = kiln_tensor_rank(t);
                const int64_t *dd = kiln_tensor_dims(t);
                if (rank < 0) {
                    rank = r;
                    memcpy(mn, dd, (size_t)r * sizeof *dd);
                    memcpy(mx, dd, (size_t)r * sizeof *dd);
                } else if (r == rank) {
                    for (int q = 0; q < r; q++) {
                        if (dd[q] < mn[q]) mn[q] = dd[q];
                        if (dd[q] > mx[q]) mx[q] = dd[q];
                    }
                }
                kiln_tensor_destroy(t);
            }
            if (!bad && rank >= 0 &&
                kiln_builder_config_set_shape(cfg, prof, io.name, rank, mn, mx, mx))
                bad = true;
        }
        for (int k = 0; k < n_sets; k++) free(sets[k]);
        if (bad) goto done;
    }
    rc = builder_placement(m, cfg, on_layer, s) == KILN_OK ? 0 : -1;
done:
    kiln_builder_config_destroy(cfg);
    kiln_model_free(m);
    return rc;
}

/* ------------------------------------------------------------ xfail */
static char **g_xf;
static int g_nxf;

static void load_xfail(const char *dirp) {
    DIR *d = opendir(dirp);
    struct dirent *ent;
    if (!d) {
        fprintf(stderr, "cannot open %s\n", dirp);
        exit(2);
    }
    while ((ent = readdir(d))) {
        size_t l = strlen(ent->d_name);
        if (l < 4 || strcmp(ent->d_name + l - 4, ".txt")) continue;
        char path[8192], line[4096];
        snprintf(path, sizeof path, "%.4000s/%.4000s", dirp, ent->d_name);
        FILE *f = fopen(path, "r");
        while (f && fgets(line, sizeof line, f)) {
            char name[1024];
            if (line[0] == '#' || sscanf(line, "%1023s", name) != 1) continue;
            char **nx = realloc(g_xf, (size_t)(g_nxf + 1) * sizeof *nx);
            if (!nx) exit(2);
            g_xf = nx;
            g_xf[g_nxf++] = strdup(name);
        }
        if (f) fclose(f);
    }
    closedir(d);
}

static bool is_xfail(const char *name) {
    for (int i = 0; i < g_nxf; i++)
        if (!strcmp(g_xf[i], name)) return true;
    return false;
}

int main(int argc, char **argv) {
    const char *root = NULL, *cases_path = NULL, *filter = "";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--xfail") && i + 1 < argc) load_xfail(argv[++i]);
        else if (!strcmp(argv[i], "--cases") && i + 1 < argc) cases_path = argv[++i];
        else if (!strcmp(argv[i], "--filter") && i + 1 < argc) filter = argv[++i];
        else if (argv[i][0] != '-' && !root) root = argv[i];
        else {
            fprintf(stderr, "usage: %s NODE_DIR [--xfail DIR] [--cases FILE] [--filter S]\n",
                    argv[0]);
            return 2;
        }
    }
    if (!root) {
        fprintf(stderr, "usage: %s NODE_DIR [--xfail DIR] [--cases FILE] [--filter S]\n", argv[0]);
        return 2;
    }
    DIR *d = opendir(root);
    if (!d) {
        fprintf(stderr, "cannot open %s\n", root);
        return 2;
    }
    char **names = NULL;
    int nn = 0;
    struct dirent *ent;
    while ((ent = readdir(d))) {
        if (ent->d_name[0] == '.' || !strstr(ent->d_name, filter)) continue;
        char **nx = realloc(names, (size_t)(nn + 1) * sizeof *nx);
        if (!nx) return 2;
        names = nx;
        names[nn++] = strdup(ent->d_name);
    }
    closedir(d);
    qsort(names, (size_t)nn, sizeof *names, cmp_str);
    FILE *cf = cases_path ? fopen(cases_path, "w") : NULL;
    int built = 0, failed = 0, skipped = 0, all_dev = 0, no_fallback = 0;
    for (int i = 0; i < nn; i++) {
        if (is_xfail(names[i])) {
            skipped++;
            continue;
        }
        char dir[2048];
        if (snprintf(dir, sizeof dir, "%s/%s", root, names[i]) >= (int)sizeof dir) continue;
        case_state s;
        memset(&s, 0, sizeof s);
        s.case_id = i;
        if (run_case(dir, &s)) {
            failed++;
            if (cf) fprintf(cf, "%s BUILD-FAILED %s\n", names[i], kiln_last_error());
            continue;
        }
        built++;
        all_dev += s.fallback == 0 && s.shape_host == 0;
        no_fallback += s.fallback == 0;
        if (cf) fprintf(cf, "%s %d %d%s\n", names[i], s.fallback, s.shape_host, s.detail);
    }
    if (cf) fclose(cf);
    qsort(g_b, (size_t)g_nb, sizeof *g_b, cmp_bucket);
    printf("host-fallback layers by op and reason (cases kept off the device, layers):\n");
    for (int i = 0; i < g_nb; i++)
        printf("  %5d %5d  %s\n", g_b[i].cases, g_b[i].layers, g_b[i].key);
    printf("cuda coverage (offline dry run, FP32): %d cases built (%d listed as expected "
           "failures skipped, %d did not build); %d with every layer on the device; %d with no "
           "host-fallback layer (shape-arithmetic layers kept on the host allowed)\n",
           built, skipped, failed, all_dev, no_fallback);
    for (int i = 0; i < nn; i++) free(names[i]);
    free(names);
    return 0;
}

/* ref_ml.c: reference kernels for the ai.onnx.ml tree ensembles:
** TreeEnsemble (ai.onnx.ml opset 5: roots, node arrays, leaf arrays, set
** membership) and TreeEnsembleClassifier/Regressor (opsets 1-3: nodes named
** by (tree id, node id), LEAF nodes carrying weight lists). Both spellings are
** compiled into one flat form (nodes with a child code per branch, leaves
** with a list of (target, weight)) and walked per sample. Every index in the
** attributes is checked, and a walk longer than the node count (a cycle) is
** an error, since the attributes come from the file.
** Also the support vector machines (SVMClassifier, SVMRegressor) with
** onnxruntime's conventions: pairwise one-vs-one votes and scores, libsvm's
** Platt scaling and pairwise coupling for probabilities, a binary
** classifier's one score written as [-s, s]. Math in double. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ref.h"

enum { M_LEQ, M_LT, M_GTE, M_GT, M_EQ, M_NEQ, M_MEMBER, M_LEAF };
enum { AGG_AVERAGE, AGG_SUM, AGG_MIN, AGG_MAX };
enum { PT_NONE, PT_SOFTMAX, PT_LOGISTIC, PT_SOFTMAX_ZERO, PT_PROBIT };

/* A child code c >= 0 is node c; c < 0 is leaf -c - 1. */
typedef struct forest {
    int64_t n_nodes, n_leaves, n_roots, n_targets, n_trees;
    int64_t *feature, *tchild, *fchild, *roots;
    int64_t *mem_first, *mem_count; /* MEMBER sets in members[] */
    double *split, *members;
    uint8_t *mode, *miss_true;
    int64_t *leaf_first, *leaf_count; /* entries of each leaf */
    int64_t *ent_target;
    double *ent_weight;
    int64_t n_ent;
} forest;

static void forest_free(forest *f) {
    free(f->feature); free(f->tchild); free(f->fchild); free(f->roots);
    free(f->mem_first); free(f->mem_count); free(f->split); free(f->members);
    free(f->mode); free(f->miss_true); free(f->leaf_first); free(f->leaf_count);
    free(f->ent_target); free(f->ent_weight);
}

static void *zalloc(int64_t n, size_t sz) {
    if (n < 0 || (uint64_t)n > SIZE_MAX / sz / 2) return NULL;
    return calloc(n ? (size_t)n : 1, sz);
}

/* A float-valued attribute given as floats or as a tensor (any float
** type); *n gets the count, -1 when absent. Returns NULL on OOM only. */
static double *attr_doubles(const ir_node *nd, const char *name, const char *tname,
                            int64_t *n, bool *oom) {
    int k = 0;
    const float *fl = ir_attr_floats(nd, name, &k);
    const kiln_tensor *t = tname ? ir_attr_tensor(nd, tname) : NULL;
    *n = -1;
    if (!fl && !t) return NULL;
    int64_t cnt = t ? tensor_numel(t) : k;
    double *d = zalloc(cnt, sizeof *d);
    if (!d) {
        *oom = true;
        return NULL;
    }
    for (int64_t i = 0; i < cnt; i++)
        d[i] = t ? dt_get_f64(t->dtype, t->data, (size_t)i) : fl[i];
    *n = cnt;
    return d;
}

static int mode_from_str(const char *s) {
    static const char *const k[] = {"BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT",
                                    "BRANCH_EQ", "BRANCH_NEQ", "BRANCH_MEMBER", "LEAF"};
    for (int i = 0; i < 8; i++)
        if (!strcmp(s, k[i])) return i;
    return -1;
}

static int post_from_str(const char *s) {
    static const char *const k[] = {"NONE", "SOFTMAX", "LOGISTIC", "SOFTMAX_ZERO", "PROBIT"};
    for (int i = 0; i < 5; i++)
        if (!strcmp(s, k[i])) return i;
    return -1;
}

static bool alloc_nodes(forest *f) {
    int64_t n = f->n_nodes;
    f->feature = zalloc(n, sizeof(int64_t));
    f->tchild = zalloc(n, sizeof(int64_t));
    f->fchild = zalloc(n, sizeof(int64_t));
    f->mem_first = zalloc(n, sizeof(int64_t));
    f->mem_count = zalloc(n, sizeof(int64_t));
    f->split = zalloc(n, sizeof(double));
    f->mode = zalloc(n, 1);
    f->miss_true = zalloc(n, 1);
    return f->feature && f->tchild && f->fchild && f->mem_first && f->mem_count &&
           f->split && f->mode && f->miss_true;
}

/* ai.onnx.ml opset 5 TreeEnsemble. */
static int compile_v5(ref_ctx *c, forest *f) {
    const ir_node *nd = c->node;
    int nf = 0, nt = 0, nfn = 0, ntl = 0, nfl = 0, nlt = 0, nr = 0, nm = 0;
    const int64_t *feat = ir_attr_ints(nd, "nodes_featureids", &nf);
    const int64_t *tn = ir_attr_ints(nd, "nodes_truenodeids", &nt);
    const int64_t *fn = ir_attr_ints(nd, "nodes_falsenodeids", &nfn);
    const int64_t *tl = ir_attr_ints(nd, "nodes_trueleafs", &ntl);
    const int64_t *fl = ir_attr_ints(nd, "nodes_falseleafs", &nfl);
    const int64_t *lt = ir_attr_ints(nd, "leaf_targetids", &nlt);
    const int64_t *roots = ir_attr_ints(nd, "tree_roots", &nr);
    const int64_t *miss = ir_attr_ints(nd, "nodes_missing_value_tracks_true", &nm);
    const kiln_tensor *modes = ir_attr_tensor(nd, "nodes_modes");
    bool oom = false;
    int64_t ns, nw, nmem;
    double *splits = attr_doubles(nd, "", "nodes_splits", &ns, &oom);
    double *w = attr_doubles(nd, "", "leaf_weights", &nw, &oom);
    double *mem = attr_doubles(nd, "", "membership_values", &nmem, &oom);
    int rc = -1;
    f->n_targets = ir_attr_int(nd, "n_targets", -1);
    if (oom) {
        rc = ref_fail(c, "out of memory");
        goto done;
    }
    if (!feat || !tn || !fn || !tl || !fl || !lt || !roots || !modes || !splits || !w ||
        nt != nf || nfn != nf || ntl != nf || nfl != nf || ns != nf ||
        tensor_numel(modes) != nf || nw != nlt || (miss && nm != nf) || nr < 1) {
        rc = ref_fail(c, "TreeEnsemble needs nodes_featureids, nodes_modes, nodes_splits, "
                      "nodes_truenodeids, nodes_falsenodeids, nodes_trueleafs, "
                      "nodes_falseleafs (one per node), leaf_targetids and leaf_weights "
                      "(one per leaf) and tree_roots");
        goto done;
    }
    f->n_nodes = nf;
    f->n_leaves = nlt;
    f->n_roots = f->n_trees = nr;
    f->n_ent = nlt;
    f->roots = zalloc(nr, sizeof(int64_t));
    f->leaf_first = zalloc(nlt, sizeof(int64_t));
    f->leaf_count = zalloc(nlt, sizeof(int64_t));
    f->ent_target = zalloc(nlt, sizeof(int64_t));
    f->members = mem;
    mem = NULL;
    if (!alloc_nodes(f) || !f->roots || !f->leaf_first || !f->leaf_count || !f->ent_target) {
        rc = ref_fail(c, "out of memory");
        goto done;
    }
    f->ent_weight = w;
    w = NULL;
    for (int64_t k = 0; k < nlt; k++) {
        if (lt[k] < 0 || lt[k] >= f->n_targets) {
            rc = ref_fail(c, "leaf_targetids[%lld] = %lld is outside [0, n_targets)",
                          (long long)k, (long long)lt[k]);
            goto done;
        }
        f->leaf_first[k] = k;
        f->leaf_count[k] = 1;
        f->ent_target[k] = lt[k];
    }
    int64_t mpos = 0;
    for (int64_t i = 0; i < nf; i++) {
        int64_t m = dt_get_i64(modes->dtype, modes->data, (size_t)i);
        if (m < M_LEQ || m > M_MEMBER) {
            rc = ref_fail(c, "nodes_modes[%lld] = %lld is not a branch mode", (long long)i,
                          (long long)m);
            goto done;
        }
        f->mode[i] = (uint8_t)m;
        f->feature[i] = feat[i];
        f->split[i] = splits[i];
        f->miss_true[i] = miss && miss[i];
        if (m == M_MEMBER) { /* the next NaN-terminated run of membership_values */
            if (nmem < 0) {
                rc = ref_fail(c, "a BRANCH_MEMBER node needs membership_values");
                goto done;
            }
            f->mem_first[i] = mpos;
            while (mpos < nmem && !isnan(f->members[mpos])) mpos++;
            f->mem_count[i] = mpos - f->mem_first[i];
            mpos++; /* past the NaN (the last set may end without one) */
        }
        for (int b = 0; b < 2; b++) {
            int64_t id = b ? fn[i] : tn[i], leaf = b ? fl[i] : tl[i];
            if (id < 0 || id >= (leaf ? nlt : nf)) {
                rc = ref_fail(c, "node %lld: %s %s id %lld is out of range", (long long)i,
                              b ? "false" : "true", leaf ? "leaf" : "node", (long long)id);
                goto done;
            }
            (b ? f->fchild : f->tchild)[i] = leaf ? -id - 1 : id;
        }
    }
    for (int64_t r = 0; r < nr; r++) {
        int64_t i = roots[r];
        if (i < 0 || i >= nf) {
            rc = ref_fail(c, "tree_roots[%lld] = %lld is out of range", (long long)r,
                          (long long)i);
            goto done;
        }
        /* a tree that is one leaf: both branches name the same leaf */
        f->roots[r] = tl[i] && fl[i] && tn[i] == fn[i] ? -tn[i] - 1 : i;
    }
    rc = 0;
done:
    free(splits);
    free(w);
    free(mem);
    return rc;
}

typedef struct key3 { int64_t tree, node, idx; } key3;

static int key_cmp(const void *a, const void *b) {
    const key3 *x = a, *y = b;
    if (x->tree != y->tree) return x->tree < y->tree ? -1 : 1;
    if (x->node != y->node) return x->node < y->node ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int64_t key_find(const key3 *keys, int64_t n, int64_t tree, int64_t node) {
    int64_t lo = 0, hi = n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (keys[mid].tree < tree || (keys[mid].tree == tree && keys[mid].node < node))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && keys[lo].tree == tree && keys[lo].node == node ? keys[lo].idx : -1;
}

/* TreeEnsembleClassifier/Regressor (opsets 1-3). pre is "class" or "target". */
static int compile_v3(ref_ctx *c, forest *f, bool cls) {
    const ir_node *nd = c->node;
    const char *pre = cls ? "class" : "target";
    char b1[32], b2[32], b3[32], b4[32], b5[48];
    snprintf(b1, sizeof b1, "%s_ids", pre);
    snprintf(b2, sizeof b2, "%s_nodeids", pre);
    snprintf(b3, sizeof b3, "%s_treeids", pre);
    snprintf(b4, sizeof b4, "%s_weights", pre);
    snprintf(b5, sizeof b5, "%s_weights_as_tensor", pre);
    int nti = 0, nni = 0, nf = 0, nt = 0, nfn = 0, nm = 0, nei = 0, nen = 0, net = 0;
    const int64_t *tid = ir_attr_ints(nd, "nodes_treeids", &nti);
    const int64_t *nid = ir_attr_ints(nd, "nodes_nodeids", &nni);
    const int64_t *feat = ir_attr_ints(nd, "nodes_featureids", &nf);
    const int64_t *tn = ir_attr_ints(nd, "nodes_truenodeids", &nt);
    const int64_t *fn = ir_attr_ints(nd, "nodes_falsenodeids", &nfn);
    const int64_t *miss = ir_attr_ints(nd, "nodes_missing_value_tracks_true", &nm);
    const ir_attr *modes = ir_attr_find(nd, "nodes_modes");
    const int64_t *eid = ir_attr_ints(nd, b1, &nei);
    const int64_t *enode = ir_attr_ints(nd, b2, &nen);
    const int64_t *etree = ir_attr_ints(nd, b3, &net);
    bool oom = false;
    int64_t nv, nw;
    double *vals = attr_doubles(nd, "nodes_values", "nodes_values_as_tensor", &nv, &oom);
    double *w = attr_doubles(nd, b4, b5, &nw, &oom);
    key3 *keys = NULL;
    int rc = -1;
    if (oom) {
        rc = ref_fail(c, "out of memory");
        goto done;
    }
    if (!tid || !nid || !feat || !modes || modes->type != IR_ATTR_STRINGS || nni != nti ||
        nf != nti || modes->n != nti || (tn && nt != nti) || (fn && nfn != nti) ||
        (miss && nm != nti) || (vals && nv != nti) || nti < 1 ||
        nen != nei || net != nei || (nei && (!w || nw != nei))) {
        rc = ref_fail(c, "needs nodes_treeids, nodes_nodeids, nodes_featureids, nodes_modes "
                      "(and nodes_values, nodes_truenodeids, nodes_falsenodeids) with one "
                      "entry per node, and %s_ids/_nodeids/_treeids/_weights of one length",
                      pre);
        goto done;
    }
    f->n_nodes = f->n_leaves = nti;
    f->n_ent = nei;
    f->roots = zalloc(nti, sizeof(int64_t));
    f->leaf_first = zalloc(nti, sizeof(int64_t));
    f->leaf_count = zalloc(nti, sizeof(int64_t));
    f->ent_target = zalloc(nei, sizeof(int64_t));
    f->ent_weight = zalloc(nei, sizeof(double));
    keys = zalloc(nti + nei, sizeof *keys);
    if (!alloc_nodes(f) || !f->roots || !f->leaf_first || !f->leaf_count || !f->ent_target ||
        !f->ent_weight || !keys) {
        rc = ref_fail(c, "out of memory");
        goto done;
    }
    for (int64_t i = 0; i < nti; i++) keys[i] = (key3){tid[i], nid[i], i};
    qsort(keys, (size_t)nti, sizeof *keys, key_cmp);
    for (int64_t i = 1; i < nti; i++)
        if (keys[i].tree == keys[i - 1].tree && keys[i].node == keys[i - 1].node) {
            rc = ref_fail(c, "node (tree %lld, node %lld) appears twice",
                          (long long)keys[i].tree, (long long)keys[i].node);
            goto done;
        }
    /* roots: the first node listed of each tree */
    for (int64_t i = 0; i < nti; i++) {
        bool seen = false;
        for (int64_t r = 0; r < f->n_roots && !seen; r++) seen = tid[f->roots[r]] == tid[i];
        if (!seen) {
            f->roots[f->n_roots++] = i;
            if (f->n_roots > 1 << 20) break;
        }
    }
    f->n_trees = f->n_roots;
    for (int64_t i = 0; i < nti; i++) {
        int m = mode_from_str(modes->strings[i]);
        if (m < 0 || m == M_MEMBER) {
            rc = ref_fail(c, "nodes_modes[%lld] '%s' is not a branch mode or LEAF",
                          (long long)i, modes->strings[i]);
            goto done;
        }
        f->mode[i] = (uint8_t)m;
        f->feature[i] = feat[i];
        f->split[i] = vals ? vals[i] : 0.0;
        f->miss_true[i] = miss && miss[i];
        if (m == M_LEAF) continue;
        if (!tn || !fn) {
            rc = ref_fail(c, "branch nodes need nodes_truenodeids and nodes_falsenodeids");
            goto done;
        }
        for (int b = 0; b < 2; b++) {
            int64_t j = key_find(keys, nti, tid[i], b ? fn[i] : tn[i]);
            if (j < 0) {
                rc = ref_fail(c, "node (tree %lld, node %lld): %s child %lld does not exist",
                              (long long)tid[i], (long long)nid[i], b ? "false" : "true",
                              (long long)(b ? fn[i] : tn[i]));
                goto done;
            }
            (b ? f->fchild : f->tchild)[i] = j;
        }
    }
    /* leaf entries grouped per node (counting sort, order kept) */
    for (int64_t e = 0; e < nei; e++) {
        int64_t j = key_find(keys, nti, etree[e], enode[e]);
        if (j < 0 || f->mode[j] != M_LEAF || eid[e] < 0 || eid[e] >= (int64_t)1 << 31) {
            rc = ref_fail(c, "%s entry %lld names no LEAF node or has a bad id", pre,
                          (long long)e);
            goto done;
        }
        keys[nti + e].idx = j;
        f->leaf_count[j]++;
    }
    for (int64_t i = 0, s = 0; i < nti; i++) {
        f->leaf_first[i] = s;
        s += f->leaf_count[i];
        f->leaf_count[i] = 0;
    }
    for (int64_t e = 0; e < nei; e++) {
        int64_t j = keys[nti + e].idx, p = f->leaf_first[j] + f->leaf_count[j]++;
        f->ent_target[p] = eid[e];
        f->ent_weight[p] = w[e];
    }
    /* a leaf child is coded as a leaf; roots too */
    for (int64_t i = 0; i < nti; i++) {
        if (f->mode[i] == M_LEAF) continue;
        if (f->mode[f->tchild[i]] == M_LEAF) f->tchild[i] = -f->tchild[i] - 1;
        if (f->mode[f->fchild[i]] == M_LEAF) f->fchild[i] = -f->fchild[i] - 1;
    }
    for (int64_t r = 0; r < f->n_roots; r++)
        if (f->mode[f->roots[r]] == M_LEAF) f->roots[r] = -f->roots[r] - 1;
    rc = 0;
done:
    free(vals);
    free(w);
    free(keys);
    return rc;
}

static bool branch(const forest *f, int64_t i, double x) {
    if (isnan(x) && f->miss_true[i]) return true;
    double s = f->split[i];
    switch (f->mode[i]) {
    case M_LEQ: return x <= s;
    case M_LT: return x < s;
    case M_GTE: return x >= s;
    case M_GT: return x > s;
    case M_EQ: return x == s;
    case M_NEQ: return x != s;
    default:
        for (int64_t k = 0; k < f->mem_count[i]; k++)
            if (f->members[f->mem_first[i] + k] == x) return true;
        return false;
    }
}

/* Accumulates every tree's leaf entries for one sample into acc (n_targets
** wide, zeroed by the caller); hit[t] records which targets a leaf wrote
** (MIN/MAX of no value is 0, as in onnxruntime). */
static int walk(ref_ctx *c, const forest *f, const kiln_tensor *X, int64_t row, int64_t nfeat,
                int agg, double *acc, uint8_t *hit) {
    for (int64_t r = 0; r < f->n_roots; r++) {
        int64_t code = f->roots[r], steps = 0;
        while (code >= 0) {
            int64_t ft = f->feature[code];
            if (ft < 0 || ft >= nfeat)
                return ref_fail(c, "node %lld reads feature %lld; X has %lld", (long long)code,
                                (long long)ft, (long long)nfeat);
            double x = dt_get_f64(X->dtype, X->data, (size_t)(row * nfeat + ft));
            code = branch(f, code, x) ? f->tchild[code] : f->fchild[code];
            if (++steps > f->n_nodes) return ref_fail(c, "the trees contain a cycle");
        }
        int64_t leaf = -code - 1;
        for (int64_t k = 0; k < f->leaf_count[leaf]; k++) {
            int64_t p = f->leaf_first[leaf] + k, t = f->ent_target[p];
            double v = f->ent_weight[p];
            if (t < 0 || t >= f->n_targets)
                return ref_fail(c, "leaf target/class id %lld is outside [0, %lld)",
                                (long long)t, (long long)f->n_targets);
            if (agg == AGG_MIN) acc[t] = !hit[t] || v < acc[t] ? v : acc[t];
            else if (agg == AGG_MAX) acc[t] = !hit[t] || v > acc[t] ? v : acc[t];
            else acc[t] += v;
            hit[t] = 1;
        }
    }
    return 0;
}

/* Winitzki's closed-form approximation of erf^-1, unrefined: onnxruntime
** and the ONNX reference both compute PROBIT with it (|x| > 1 gives NaN). */
static double erf_inv(double x) {
    double sgn = x < 0 ? -1.0 : 1.0, a = 0.147;
    double l = log((1.0 - x) * (1.0 + x)), t = 2.0 / (3.14159 * a) + 0.5 * l;
    return sgn * sqrt(-t + sqrt(t * t - l / a));
}

static void post_transform(int pt, double *v, int64_t n) {
    if (pt == PT_LOGISTIC) {
        for (int64_t i = 0; i < n; i++) v[i] = 1.0 / (1.0 + exp(-v[i]));
    } else if (pt == PT_PROBIT) {
        for (int64_t i = 0; i < n; i++) v[i] = 1.41421356237309504880 * erf_inv(2.0 * v[i] - 1.0);
    } else if (pt == PT_SOFTMAX || pt == PT_SOFTMAX_ZERO) {
        double mx = -INFINITY, sum = 0;
        for (int64_t i = 0; i < n; i++)
            if (!(pt == PT_SOFTMAX_ZERO && v[i] == 0) && v[i] > mx) mx = v[i];
        for (int64_t i = 0; i < n; i++) {
            if (pt == PT_SOFTMAX_ZERO && v[i] == 0) continue; /* zeros stay zero */
            v[i] = exp(v[i] - mx);
            sum += v[i];
        }
        for (int64_t i = 0; i < n; i++) v[i] = sum > 0 ? v[i] / sum : v[i];
    }
}

static int64_t n_features(const kiln_tensor *X) {
    return X->rank == 2 ? X->dims[1] : X->dims[0];
}

static int run_trees(ref_ctx *c, int kind) { /* 0 TreeEnsemble, 1 regressor, 2 classifier */
    const kiln_tensor *X = c->in[0];
    forest f = {0};
    int rc = -1, agg = AGG_SUM, pt = PT_NONE;
    double *acc = NULL, *base = NULL;
    uint8_t *hit = NULL;
    int64_t nb = -1;
    bool oom = false;
    int nl = 0;
    const int64_t *labels = NULL;
    if (kind == 0) {
        if (compile_v5(c, &f)) goto done;
        agg = (int)ir_attr_int(c->node, "aggregate_function", AGG_SUM);
        pt = (int)ir_attr_int(c->node, "post_transform", PT_NONE);
        if (agg < AGG_AVERAGE || agg > AGG_MAX || pt < PT_NONE || pt > PT_PROBIT) {
            rc = ref_fail(c, "bad aggregate_function or post_transform");
            goto done;
        }
    } else {
        if (kind == 2) {
            labels = ir_attr_ints(c->node, "classlabels_int64s", &nl);
            f.n_targets = nl == 1 ? 2 : nl;
        } else {
            f.n_targets = ir_attr_int(c->node, "n_targets", 1);
        }
        if (compile_v3(c, &f, kind == 2)) goto done;
        const char *a = kind == 1 ? ir_attr_str(c->node, "aggregate_function", "SUM") : "SUM";
        agg = !strcmp(a, "AVERAGE") ? AGG_AVERAGE : !strcmp(a, "SUM") ? AGG_SUM
              : !strcmp(a, "MIN") ? AGG_MIN : !strcmp(a, "MAX") ? AGG_MAX : -1;
        pt = post_from_str(ir_attr_str(c->node, "post_transform", "NONE"));
        if (agg < 0 || pt < 0) {
            rc = ref_fail(c, "bad aggregate_function or post_transform");
            goto done;
        }
        base = attr_doubles(c->node, "base_values", "base_values_as_tensor", &nb, &oom);
        if (oom) {
            rc = ref_fail(c, "out of memory");
            goto done;
        }
        /* a binary classifier may carry one base value for its one score */
        if (base && nb != f.n_targets && !(kind == 2 && nb == 1)) {
            rc = ref_fail(c, "base_values has %lld values for %lld %s", (long long)nb,
                          (long long)f.n_targets, kind == 2 ? "classes" : "targets");
            goto done;
        }
    }
    int64_t N = X->rank == 2 ? X->dims[0] : 1, F = n_features(X), T = f.n_targets;
    kiln_tensor *Y = kind < 2 ? c->out[0] : c->n_out > 1 ? c->out[1] : NULL;
    if ((Y && tensor_numel(Y) != N * T) || (kind == 2 && tensor_numel(c->out[0]) != N)) {
        rc = ref_fail(c, "output shape mismatch");
        goto done;
    }
    acc = zalloc(T, sizeof *acc);
    hit = zalloc(T, 1);
    if (!acc || !hit) {
        rc = ref_fail(c, "out of memory");
        goto done;
    }
    /* binary classifier: every class id is the same (one score column s).
    ** As onnxruntime does it: with no negative weight, s is a probability
    ** (scores [1 - s, s], label s > 0.5); else a margin (scores [-s, s] before
    ** the transform, label s > 0). */
    bool binary = false, continue_post = true, all_pos = true;
    if (kind == 2) {
        binary = f.n_ent > 0;
        for (int64_t e = 1; e < f.n_ent; e++) binary &= f.ent_target[e] == f.ent_target[0];
        binary &= T == 2;
        for (int64_t e = 0; e < f.n_ent; e++) all_pos &= f.ent_weight[e] >= 0;
    }
    for (int64_t n = 0; n < N; n++) {
        memset(acc, 0, (size_t)T * sizeof *acc);
        memset(hit, 0, (size_t)T);
        if (walk(c, &f, X, n, F, agg, acc, hit)) goto done;
        if (kind == 2 && base)
            for (int64_t t = 0; t < T; t++) acc[t] += base[nb == 1 ? 0 : t];
        if (agg == AGG_AVERAGE)
            for (int64_t t = 0; t < T; t++) acc[t] /= (double)f.n_trees;
        if (kind == 1 && base)
            for (int64_t t = 0; t < T; t++) acc[t] += base[t];
        int64_t bin_best = -1;
        if (binary) {
            double s = acc[f.ent_target[0]];
            acc[1] = s;
            acc[0] = (pt == PT_NONE && all_pos) || pt == PT_PROBIT ? 1.0 - s : -s;
            bin_best = s > (all_pos ? 0.5 : 0.0);
        }
        /* one-target regressions: onnxruntime applies PROBIT only */
        if (kind < 2 && T == 1 && pt != PT_PROBIT) continue_post = false;
        if (continue_post) post_transform(pt, acc, T);
        continue_post = true;
        if (kind == 2) {
            int64_t best = 0;
            for (int64_t t = 1; t < T; t++)
                if (acc[t] > acc[best]) best = t;
            if (bin_best >= 0) best = bin_best;
            int64_t lab = nl == 1 ? (best == 1 ? labels[0] : 0) : labels[best];
            ((int64_t *)c->out[0]->data)[n] = lab;
            if (!Y) continue;
        }
        for (int64_t t = 0; t < T; t++) dt_set_f64(Y->dtype, Y->data, (size_t)(n * T + t), acc[t]);
    }
    rc = 0;
done:
    free(acc);
    free(hit);
    free(base);
    forest_free(&f);
    return rc;
}

static int k_tree_ensemble(ref_ctx *c) { return run_trees(c, 0); }
static int k_tree_regressor(ref_ctx *c) { return run_trees(c, 1); }
static int k_tree_classifier(ref_ctx *c) { return run_trees(c, 2); }

/* ---------------------------------------------------------------- SVM */

enum { K_LINEAR, K_POLY, K_RBF, K_SIGMOID };

typedef struct svm_kernel {
    int type;
    double gamma, coef0;
    int64_t degree;
} svm_kernel;

static int svm_kernel_get(ref_ctx *c, svm_kernel *k) {
    const char *t = ir_attr_str(c->node, "kernel_type", "LINEAR");
    k->type = !strcmp(t, "LINEAR") ? K_LINEAR : !strcmp(t, "POLY") ? K_POLY
            : !strcmp(t, "RBF") ? K_RBF : !strcmp(t, "SIGMOID") ? K_SIGMOID : -1;
    if (k->type < 0) return ref_fail(c, "kernel_type '%s' is not LINEAR, POLY, RBF or SIGMOID", t);
    int np = 0;
    const float *p = ir_attr_floats(c->node, "kernel_params", &np);
    k->gamma = np > 0 ? p[0] : 0.0;
    k->coef0 = np > 1 ? p[1] : 0.0;
    k->degree = np > 2 ? (int64_t)p[2] : 0;
    return 0;
}

/* K(x, v) over F features; v is float (attributes). */
static double svm_dot(const svm_kernel *k, const double *x, const float *v, int64_t F) {
    double s = 0;
    if (k->type == K_RBF) {
        for (int64_t i = 0; i < F; i++) {
            double d = x[i] - v[i];
            s += d * d;
        }
        return exp(-k->gamma * s);
    }
    for (int64_t i = 0; i < F; i++) s += x[i] * v[i];
    if (k->type == K_POLY) return pow(k->gamma * s + k->coef0, (double)k->degree);
    if (k->type == K_SIGMOID) return tanh(k->gamma * s + k->coef0);
    return s;
}

static const float *svm_floats(ref_ctx *c, const char *name, int64_t want, int64_t *n) {
    int k = 0;
    const float *v = ir_attr_floats(c->node, name, &k);
    *n = v ? k : 0;
    if (want >= 0 && *n != want) {
        ref_fail(c, "%s has %lld values, expected %lld", name, (long long)*n, (long long)want);
        return NULL;
    }
    static const float none[1] = {0};
    return v ? v : none;
}

/* libsvm's pairwise coupling (Wu, Lin and Weng 2004, method 2): class
** probabilities p from pairwise estimates r[i][j] ~ P(i | i or j), by the
** fixed-point iteration on Q p = (p'Qp) 1. Q, qp are k*k and k scratch. */
static void svm_coupling(int64_t k, const double *r, double *p, double *Q, double *qp) {
    for (int64_t t = 0; t < k; t++) {
        p[t] = 1.0 / (double)k;
        Q[t * k + t] = 0;
        for (int64_t j = 0; j < k; j++) {
            if (j == t) continue;
            Q[t * k + t] += r[j * k + t] * r[j * k + t];
            Q[t * k + j] = -r[j * k + t] * r[t * k + j];
        }
    }
    int64_t iters = k > 100 ? k : 100;
    double eps = 0.005 / (double)k;
    for (int64_t it = 0; it < iters; it++) {
        double pqp = 0, err = 0;
        for (int64_t t = 0; t < k; t++) {
            qp[t] = 0;
            for (int64_t j = 0; j < k; j++) qp[t] += Q[t * k + j] * p[j];
            pqp += p[t] * qp[t];
        }
        for (int64_t t = 0; t < k; t++) err = fmax(err, fabs(qp[t] - pqp));
        if (err < eps) break;
        for (int64_t t = 0; t < k; t++) {
            double diff = (-qp[t] + pqp) / Q[t * k + t];
            p[t] += diff;
            pqp = (pqp + diff * (diff * Q[t * k + t] + 2 * qp[t])) / (1 + diff) / (1 + diff);
            for (int64_t j = 0; j < k; j++) {
                qp[j] = (qp[j] + diff * Q[t * k + j]) / (1 + diff);
                p[j] /= 1 + diff;
            }
        }
    }
}

static int k_svm_classifier(ref_ctx *c) {
    const kiln_tensor *X = c->in[0];
    int nl = 0, nv = 0;
    const int64_t *labels = ir_attr_ints(c->node, "classlabels_ints", &nl);
    const int64_t *vpc = ir_attr_ints(c->node, "vectors_per_class", &nv);
    int64_t C = nl > 1 ? nl : 1, N = X->rank == 2 ? X->dims[0] : 1, F = n_features(X);
    int64_t vc = 0;
    for (int i = 0; i < nv; i++) vc += vpc[i];
    svm_kernel k;
    if (svm_kernel_get(c, &k)) return -1;
    int64_t want_sv, want_coef, want_lin;
    if (C > (1 << 24) || vc > ((int64_t)1 << 31) || __builtin_mul_overflow(vc, F, &want_sv) ||
        __builtin_mul_overflow(C - 1, vc, &want_coef) || __builtin_mul_overflow(C, F, &want_lin))
        return ref_fail(c, "%lld classes and %lld support vectors are out of range",
                        (long long)C, (long long)vc);
    int pt = post_from_str(ir_attr_str(c->node, "post_transform", "NONE"));
    if (pt < 0) return ref_fail(c, "bad post_transform");
    int64_t npairs = C * (C - 1) / 2, ncoef, nrho, nsv, npa, npb;
    const float *coef, *rho, *sv = NULL, *pa = NULL, *pb = NULL;
    if (!(rho = svm_floats(c, "rho", -1, &nrho))) return -1;
    if (vc > 0) {
        if (!(coef = svm_floats(c, "coefficients", want_coef, &ncoef)) ||
            !(sv = svm_floats(c, "support_vectors", want_sv, &nsv)))
            return -1;
        if (!(pa = svm_floats(c, "prob_a", -1, &npa)) || !(pb = svm_floats(c, "prob_b", npa, &npb)))
            return -1;
        if (nrho < npairs || (npa > 0 && npa < npairs))
            return ref_fail(c, "rho (%lld) and prob_a (%lld) need one value per class pair (%lld)",
                            (long long)nrho, (long long)npa, (long long)npairs);
    } else {
        if (!(coef = svm_floats(c, "coefficients", want_lin, &ncoef))) return -1;
        k.type = K_LINEAR; /* liblinear mode: a plain dot product */
        npa = 0;
        if (nrho < 1) return ref_fail(c, "rho needs a value");
    }
    bool proba = vc > 0 && npa > 0;
    int64_t ns = vc == 0 ? C : proba ? C : npairs; /* raw scores per sample */
    kiln_tensor *Y = c->n_out > 1 ? c->out[1] : NULL;
    int64_t cols = Y ? (Y->rank == 2 ? Y->dims[1] : 0) : 0;
    bool all_pos = true;
    for (int64_t i = 0; i < ncoef; i++) all_pos &= coef[i] >= 0;
    double *x = zalloc(F, sizeof *x), *kv = zalloc(vc, sizeof *kv);
    double *sc = zalloc(npairs + C + 2, sizeof *sc), *votes = zalloc(C, sizeof *votes);
    double *R = proba ? zalloc(C * C, sizeof *R) : NULL, *Q = proba ? zalloc(C * C, sizeof *Q) : NULL;
    double *qp = zalloc(C, sizeof *qp), *pr = zalloc(C + 2, sizeof *pr);
    int rc = -1;
    if (!x || !kv || !sc || !votes || !qp || !pr || (proba && (!R || !Q))) {
        rc = ref_fail(c, "out of memory");
        goto done;
    }
    for (int64_t n = 0; n < N; n++) {
        for (int64_t f = 0; f < F; f++) x[f] = dt_get_f64(X->dtype, X->data, (size_t)(n * F + f));
        int64_t best;
        double best_w;
        if (vc > 0) {
            for (int64_t j = 0; j < vc; j++) kv[j] = svm_dot(&k, x, sv + j * F, F);
            memset(votes, 0, (size_t)C * sizeof *votes);
            int64_t e = 0, si = 0;
            for (int64_t i = 0; i < C; i++) {
                int64_t sj = si + vpc[i];
                for (int64_t j = i + 1; j < C; j++) {
                    double s = rho[e];
                    for (int64_t q = 0; q < vpc[i]; q++) s += coef[(j - 1) * vc + si + q] * kv[si + q];
                    for (int64_t q = 0; q < vpc[j]; q++) s += coef[i * vc + sj + q] * kv[sj + q];
                    sc[e++] = s;
                    votes[s > 0 ? i : j] += 1;
                    sj += vpc[j];
                }
                si += vpc[i];
            }
            best = 0;
            for (int64_t i = 1; i < C; i++)
                if (votes[i] > votes[best]) best = i;
            best_w = votes[best];
            if (proba) {
                e = 0;
                for (int64_t i = 0; i < C; i++)
                    for (int64_t j = i + 1; j < C; j++, e++) {
                        double v = 1.0 / (1.0 + exp(sc[e] * pa[e] + pb[e])); /* Platt */
                        v = fmin(fmax(v, 1e-7), 1 - 1e-7);
                        R[i * C + j] = v;
                        R[j * C + i] = 1 - v;
                    }
                svm_coupling(C, R, pr, Q, qp);
                memcpy(sc, pr, (size_t)C * sizeof *sc);
            }
        } else {
            for (int64_t j = 0; j < C; j++) sc[j] = rho[0] + svm_dot(&k, x, coef + j * F, F);
            best = 0;
            for (int64_t i = 1; i < C; i++)
                if (sc[i] > sc[best]) best = i;
            best_w = sc[best];
        }
        /* the label: the top vote (or score); a binary classifier with
        ** only positive coefficients reads its vote as a probability */
        int64_t lab;
        if (nrho == 1 && nl == 2)
            lab = !proba && all_pos && best_w >= 0.5 ? labels[1] : labels[best];
        else
            lab = nl > 0 ? labels[best < nl ? best : 0] : best;
        ((int64_t *)c->out[0]->data)[n] = lab;
        if (!Y) continue;
        /* the scores */
        double out[2];
        double *o = sc;
        int64_t no = ns;
        if (ns == 1 && pt == PT_PROBIT) {
            post_transform(pt, sc, 1);
        } else if (ns == 1 && vc > 0) {
            out[0] = -sc[0];
            out[1] = sc[0];
            o = out;
            no = 2;
            post_transform(pt, o, 2);
        } else {
            post_transform(pt, sc, ns);
        }
        if (no != cols) {
            rc = ref_fail(c, "scores have %lld columns, the output %lld", (long long)no,
                          (long long)cols);
            goto done;
        }
        for (int64_t t = 0; t < no; t++) dt_set_f64(Y->dtype, Y->data, (size_t)(n * no + t), o[t]);
    }
    rc = 0;
done:
    free(x); free(kv); free(sc); free(votes); free(R); free(Q); free(qp); free(pr);
    return rc;
}

static int k_svm_regressor(ref_ctx *c) {
    const kiln_tensor *X = c->in[0];
    int64_t N = X->rank == 2 ? X->dims[0] : 1, F = n_features(X);
    int64_t ns = ir_attr_int(c->node, "n_supports", 0), ncoef, nrho, nsv;
    bool one_class = ir_attr_int(c->node, "one_class", 0) != 0;
    svm_kernel k;
    if (svm_kernel_get(c, &k)) return -1;
    int64_t want_sv;
    if (ns < 0 || ns > ((int64_t)1 << 31) || __builtin_mul_overflow(ns, F, &want_sv))
        return ref_fail(c, "n_supports is out of range");
    const float *coef, *rho, *sv = NULL;
    if (!(rho = svm_floats(c, "rho", -1, &nrho))) return -1;
    if (nrho < 1) return ref_fail(c, "rho needs a value");
    if (ns > 0) {
        if (!(coef = svm_floats(c, "coefficients", ns, &ncoef)) ||
            !(sv = svm_floats(c, "support_vectors", want_sv, &nsv)))
            return -1;
    } else {
        if (!(coef = svm_floats(c, "coefficients", F, &ncoef))) return -1;
        k.type = K_LINEAR;
    }
    double *x = zalloc(F, sizeof *x);
    if (!x) return ref_fail(c, "out of memory");
    for (int64_t n = 0; n < N; n++) {
        for (int64_t f = 0; f < F; f++) x[f] = dt_get_f64(X->dtype, X->data, (size_t)(n * F + f));
        double s = rho[0];
        if (ns > 0)
            for (int64_t j = 0; j < ns; j++) s += coef[j] * svm_dot(&k, x, sv + j * F, F);
        else
            s += svm_dot(&k, x, coef, F);
        if (one_class) s = s > 0 ? 1.0 : -1.0;
        dt_set_f64(c->out[0]->dtype, c->out[0]->data, (size_t)n, s);
    }
    free(x);
    return 0;
}

const ref_kernel ref_kernels_ml[] = {
    {OP_TreeEnsemble, k_tree_ensemble},
    {OP_TreeEnsembleRegressor, k_tree_regressor},
    {OP_TreeEnsembleClassifier, k_tree_classifier},
    {OP_SVMClassifier, k_svm_classifier},
    {OP_SVMRegressor, k_svm_regressor},
    {OP_NONE, NULL},
};

/* linalg_einsum.c: Einsum equation parser (numpy conventions: implicit
** output is the ellipsis dims then the labels used once, in ASCII order). */
#include "linalg_einsum.h"

#include <stdio.h>

static int label_id(char ch) {
    if (ch >= 'A' && ch <= 'Z') return ch - 'A';
    if (ch >= 'a' && ch <= 'z') return 26 + (ch - 'a');
    return -1;
}

/* One written term: its letter ids in order and where "..." sits. */
typedef struct {
    int n;        /* letters */
    int ell;      /* index among letters where "..." is, -1 if none */
    int ids[EIN_MAX_LABELS];
} ein_term;

/* Parses the term in s[0..len) (spaces already skipped by the caller's
** loop). */
static int parse_term(const char *s, size_t len, ein_term *t, char *err,
                      size_t errn) {
    t->n = 0;
    t->ell = -1;
    for (size_t i = 0; i < len;) {
        char ch = s[i];
        if (ch == ' ') {
            i++;
            continue;
        }
        if (ch == '.') {
            if (i + 3 > len || s[i + 1] != '.' || s[i + 2] != '.') {
                snprintf(err, errn, "Einsum: stray '.' in equation");
                return -1;
            }
            if (t->ell >= 0) {
                snprintf(err, errn, "Einsum: more than one '...' in a term");
                return -1;
            }
            t->ell = t->n;
            i += 3;
            continue;
        }
        int id = label_id(ch);
        if (id < 0) {
            snprintf(err, errn, "Einsum: invalid character '%c' in equation",
                     ch);
            return -1;
        }
        if (t->n >= EIN_MAX_LABELS) {
            snprintf(err, errn, "Einsum: term has too many labels");
            return -1;
        }
        t->ids[t->n++] = id;
        i++;
    }
    return 0;
}

int einsum_count_terms(const char *eq) {
    if (!eq) return -1;
    int n = 1;
    for (const char *p = eq; *p; p++) {
        if (p[0] == '-' && p[1] == '>') break;
        if (*p == ',') n++;
    }
    return n;
}

int einsum_parse(const char *eq, int n_ops, const int *ranks,
                 einsum_spec *sp, char *err, size_t errn) {
    memset(sp, 0, sizeof *sp);
    if (!eq) {
        snprintf(err, errn, "Einsum: missing 'equation' attribute");
        return -1;
    }
    if (n_ops < 1 || n_ops > EIN_MAX_OPS) {
        snprintf(err, errn, "Einsum: %d operands (1..%d supported)", n_ops,
                 EIN_MAX_OPS);
        return -1;
    }
    const char *arrow = strstr(eq, "->");
    size_t lhs_len = arrow ? (size_t)(arrow - eq) : strlen(eq);
    if (arrow && strstr(arrow + 2, "->")) {
        snprintf(err, errn, "Einsum: more than one '->' in equation");
        return -1;
    }
    if (einsum_count_terms(eq) != n_ops) {
        snprintf(err, errn, "Einsum: equation has %d terms but the node has %d "
                 "inputs", einsum_count_terms(eq), n_ops);
        return -1;
    }
    sp->n_ops = n_ops;
    int count[EIN_LETTERS] = {0};
    int ell_ranks[EIN_MAX_OPS];
    ein_term terms[1];
    /* First pass: ellipsis ranks; second pass assigns labels (needs the
    ** maximum ellipsis rank for right alignment). */
    for (int pass = 0; pass < 2; pass++) {
        const char *p = eq;
        for (int k = 0; k < n_ops; k++) {
            const char *end = p;
            while (end < eq + lhs_len && *end != ',') end++;
            if (parse_term(p, (size_t)(end - p), terms, err, errn)) return -1;
            ein_term *t = terms;
            int r = ranks[k];
            if (pass == 0) {
                if (r < 0 || r > KILN_MAX_RANK) {
                    snprintf(err, errn, "Einsum: input %d has unsupported rank %d",
                             k, r);
                    return -1;
                }
                if (t->ell < 0 && t->n != r) {
                    snprintf(err, errn, "Einsum: term %d has %d labels but input "
                             "%d has rank %d", k, t->n, k, r);
                    return -1;
                }
                if (t->ell >= 0 && t->n > r) {
                    snprintf(err, errn, "Einsum: term %d has %d labels but input "
                             "%d has rank %d", k, t->n, k, r);
                    return -1;
                }
                ell_ranks[k] = t->ell >= 0 ? r - t->n : 0;
                if (ell_ranks[k] > sp->ell_rank) sp->ell_rank = ell_ranks[k];
                for (int j = 0; j < t->n; j++) count[t->ids[j]]++;
            } else {
                int ax = 0;
                for (int j = 0; j <= t->n; j++) {
                    if (j == t->ell)
                        for (int e = 0; e < ell_ranks[k]; e++)
                            sp->lab[k][ax++] = (signed char)(
                                EIN_LETTERS + sp->ell_rank - ell_ranks[k] + e);
                    if (j < t->n) sp->lab[k][ax++] = (signed char)t->ids[j];
                }
                sp->rank[k] = r;
            }
            p = end + 1;
        }
    }
    if (arrow) {
        ein_term *t = terms;
        if (parse_term(arrow + 2, strlen(arrow + 2), t, err, errn)) return -1;
        if (t->ell < 0 && sp->ell_rank > 0) {
            snprintf(err, errn, "Einsum: inputs use '...' with %d dims but the "
                     "output does not", sp->ell_rank);
            return -1;
        }
        int rank = t->n + (t->ell >= 0 ? sp->ell_rank : 0);
        if (rank > KILN_MAX_RANK) {
            snprintf(err, errn, "Einsum: output rank %d exceeds %d", rank,
                     KILN_MAX_RANK);
            return -1;
        }
        bool seen[EIN_LETTERS] = {false};
        int ax = 0;
        for (int j = 0; j <= t->n; j++) {
            if (j == t->ell)
                for (int e = 0; e < sp->ell_rank; e++)
                    sp->out[ax++] = (signed char)(EIN_LETTERS + e);
            if (j == t->n) break;
            int id = t->ids[j];
            if (seen[id]) {
                snprintf(err, errn, "Einsum: output label repeated");
                return -1;
            }
            if (!count[id]) {
                snprintf(err, errn, "Einsum: output label not in any input");
                return -1;
            }
            seen[id] = true;
            sp->out[ax++] = (signed char)id;
        }
        sp->out_rank = rank;
    } else {
        int ax = 0;
        for (int e = 0; e < sp->ell_rank; e++)
            sp->out[ax++] = (signed char)(EIN_LETTERS + e);
        for (int id = 0; id < EIN_LETTERS; id++) {
            if (count[id] != 1) continue;
            if (ax >= KILN_MAX_RANK) {
                snprintf(err, errn, "Einsum: output rank exceeds %d",
                         KILN_MAX_RANK);
                return -1;
            }
            sp->out[ax++] = (signed char)id;
        }
        sp->out_rank = ax;
    }
    return 0;
}

/* cli_args.c: the option parser every subcommand uses (one table per
** command, so --help and the checks come from the same place), argument
** checks that name what is wrong, file kinds by magic bytes and the guard
** that keeps outputs from overwriting inputs. */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------- errors */
int cli_usage_error(const cli_args *a, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "kiln %s: ", a && a->cmd ? a->cmd->name : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see 'kiln %s --help')\n", a && a->cmd ? a->cmd->name : "");
    return CLI_USAGE;
}

void cli_lib_error(const char *cmd, const char *what) {
    (void)cmd; /* "kiln: " like every library failure, whatever the command */
    fprintf(stderr, "kiln: %s: %s\n", what, kiln_last_error());
}

/* ---------------------------------------------------------------- help */
void cli_print_help(const cli_cmd *cmd) {
    printf("usage: kiln %s %s\n\n%s\n\noptions:\n", cmd->name, cmd->synopsis, cmd->summary);
    for (const cli_opt *o = cmd->opts; o && o->name; o++) {
        char head[96];
        snprintf(head, sizeof head, "%s%s%s%s%s", o->alias ? o->alias : "",
                 o->alias ? ", " : "", o->name, o->metavar ? " " : "",
                 o->metavar ? o->metavar : "");
        printf("  %-30s %s", head, o->help);
        if (o->def) printf(" (default: %s)", o->def);
        printf("\n");
    }
    printf("  %-30s %s\n", "-h, --help", "print this help and exit");
}

/* ---------------------------------------------------------------- parsing */
static const cli_opt *find_opt(const cli_cmd *cmd, const char *name, size_t len) {
    for (const cli_opt *o = cmd->opts; o && o->name; o++)
        if ((strlen(o->name) == len && !strncmp(o->name, name, len)) ||
            (o->alias && strlen(o->alias) == len && !strncmp(o->alias, name, len)))
            return o;
    return NULL;
}

/* Closest option name, for "did you mean" (edit distance <= 2). */
static const char *suggest(const cli_cmd *cmd, const char *name) {
    const char *best = NULL;
    int best_d = 3;
    for (const cli_opt *o = cmd->opts; o && o->name; o++) {
        const char *s = o->name;
        size_t n = strlen(name), m = strlen(s);
        if (n > 64 || m > 64) continue;
        int row[65], prev[65];
        for (size_t j = 0; j <= m; j++) prev[j] = (int)j;
        for (size_t i = 1; i <= n; i++) {
            row[0] = (int)i;
            for (size_t j = 1; j <= m; j++) {
                int c = prev[j - 1] + (name[i - 1] != s[j - 1]);
                if (prev[j] + 1 < c) c = prev[j] + 1;
                if (row[j - 1] + 1 < c) c = row[j - 1] + 1;
                row[j] = c;
            }
            memcpy(prev, row, sizeof row);
        }
        if (prev[m] < best_d) {
            best_d = prev[m];
            best = s;
        }
    }
    return best;
}

static void fmt_num(double v, char *buf, size_t n) {
    if (v >= 9e15) snprintf(buf, n, "inf");
    else snprintf(buf, n, "%.15g", v);
}

/* Parses and range-checks one value; prints the error and returns false. */
static bool parse_value(const cli_args *a, const cli_opt *o, const char *s, cli_val *v) {
    char lo[32], hi[32];
    fmt_num(o->lo, lo, sizeof lo);
    fmt_num(o->hi, hi, sizeof hi);
    switch (o->type) {
    case OPT_FLAG: return true;
    case OPT_STR:
        if (!*s) {
            cli_usage_error(a, "%s: expected %s, got an empty string", o->name,
                            o->metavar ? o->metavar : "a value");
            return false;
        }
        return true;
    case OPT_CHOICE: {
        size_t n = strlen(s);
        for (const char *c = o->choices; *c;) {
            size_t k = strcspn(c, "|");
            if (k == n && n && !strncmp(c, s, n)) return true;
            c += k + (c[k] == '|');
        }
        cli_usage_error(a, "%s: expected one of %s, got '%s'", o->name, o->choices, s);
        return false;
    }
    case OPT_INT: {
        char *end;
        errno = 0;
        long long x = strtoll(s, &end, 10);
        bool ok = *s && !errno && end != s && !*end && !(s[0] == ' ' || s[0] == '\t');
        if (!ok || (double)x < o->lo || (double)x > o->hi) {
            if (o->lo == 1 && o->hi >= 1e6)
                cli_usage_error(a, "%s: expected a positive integer%s%s, got '%s'", o->name,
                                o->hi < 9e15 ? " up to " : "", o->hi < 9e15 ? hi : "", s);
            else if (o->lo == 0 && o->hi >= 9e15)
                cli_usage_error(a, "%s: expected a non-negative integer, got '%s'", o->name, s);
            else
                cli_usage_error(a, "%s: expected an integer from %s to %s, got '%s'", o->name,
                                lo, hi, s);
            return false;
        }
        v->i = x;
        v->num = (double)x;
        return true;
    }
    case OPT_NUM: {
        char *end;
        errno = 0;
        double x = strtod(s, &end);
        bool ok = *s && end != s && !*end && !errno && isfinite(x) &&
                  !(s[0] == ' ' || s[0] == '\t');
        if (!ok || x < o->lo || x > o->hi) {
            if (o->lo > 0 && o->hi >= 9e15)
                cli_usage_error(a, "%s: expected a number greater than 0, got '%s'", o->name, s);
            else if (o->lo == 0 && o->hi >= 9e15)
                cli_usage_error(a, "%s: expected a non-negative number, got '%s'", o->name, s);
            else
                cli_usage_error(a, "%s: expected a number from %s to %s, got '%s'", o->name,
                                lo, hi, s);
            return false;
        }
        v->num = x;
        return true;
    }
    }
    return false;
}

void cli_args_free(cli_args *a) {
    if (!a) return;
    if (a->v && a->cmd)
        for (int i = 0; a->cmd->opts[i].name; i++) free(a->v[i].all);
    free(a->v);
    free(a->pos);
    a->v = NULL;
    a->pos = NULL;
}

int cli_parse(const cli_cmd *cmd, int argc, char **argv, cli_args *a) {
    int n_opts = 0;
    while (cmd->opts[n_opts].name) n_opts++;
    memset(a, 0, sizeof *a);
    a->cmd = cmd;
    a->v = calloc((size_t)n_opts + 1, sizeof *a->v);
    a->pos = calloc((size_t)argc + 1, sizeof *a->pos);
    if (!a->v || !a->pos) {
        fprintf(stderr, "kiln %s: out of memory\n", cmd->name);
        return CLI_FAIL;
    }
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            cli_print_help(cmd);
            return -1;
        }
    bool only_pos = false;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (only_pos || arg[0] != '-' || !arg[1]) {
            a->pos[a->n_pos++] = arg;
            continue;
        }
        if (!strcmp(arg, "--")) {
            only_pos = true;
            continue;
        }
        const char *eq = !strncmp(arg, "--", 2) ? strchr(arg, '=') : NULL;
        size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
        const cli_opt *o = find_opt(cmd, arg, len);
        if (!o) {
            const char *s = suggest(cmd, arg);
            if (s) return cli_usage_error(a, "unknown option '%.*s'; did you mean '%s'?",
                                          (int)len, arg, s);
            return cli_usage_error(a, "unknown option '%.*s'", (int)len, arg);
        }
        cli_val *v = &a->v[o - cmd->opts];
        /* errors name the option the way it was typed (-o, not --output) */
        char typed[64];
        snprintf(typed, sizeof typed, "%.*s", (int)(len < 63 ? len : 63), arg);
        cli_opt shown = *o;
        shown.name = typed;
        o = &shown;
        if (v->given && !o->repeat)
            return cli_usage_error(a, "%s: given more than once", o->name);
        const char *val = NULL;
        if (o->type == OPT_FLAG) {
            if (eq) return cli_usage_error(a, "%s: takes no value, got '%s'", o->name, eq + 1);
        } else if (eq) {
            val = eq + 1;
        } else {
            if (i + 1 >= argc)
                return cli_usage_error(a, "%s: missing its value (%s)", o->name,
                                       o->metavar ? o->metavar : "a value");
            val = argv[++i];
            /* "--engine --shapes" or "-o -v" is a forgotten value, not a file
            ** name; negative numbers stay possible for numeric options. */
            bool looks_opt = val[0] == '-' && val[1] &&
                             (val[1] == '-' || find_opt(cmd, val, strcspn(val, "=")));
            if (looks_opt && o->type != OPT_NUM && o->type != OPT_INT)
                return cli_usage_error(a, "%s: missing its value (%s); got the option '%s'",
                                       o->name, o->metavar ? o->metavar : "a value", val);
        }
        if (val && !parse_value(a, o, val, v)) return CLI_USAGE;
        if (o->repeat && val) {
            const char **all = realloc(v->all, ((size_t)v->given + 1) * sizeof *all);
            if (!all) return CLI_FAIL;
            v->all = all;
            all[v->given] = val;
        }
        v->given++;
        v->str = val;
    }
    if (a->n_pos < cmd->min_pos) {
        if (a->n_pos == 0)
            return cli_usage_error(a, "missing %s", cmd->pos_what);
        return cli_usage_error(a, "expected %s", cmd->pos_what);
    }
    if (cmd->max_pos >= 0 && a->n_pos > cmd->max_pos)
        return cli_usage_error(a, "unexpected argument '%s' (takes %s)", a->pos[cmd->max_pos],
                               cmd->pos_what);
    return CLI_OK;
}

const cli_val *cli_get(const cli_args *a, const char *name) {
    for (int i = 0; a->cmd->opts[i].name; i++)
        if (!strcmp(a->cmd->opts[i].name, name)) return &a->v[i];
    static const cli_val none;
    return &none;
}

bool cli_has(const cli_args *a, const char *name) { return cli_get(a, name)->given > 0; }

const char *cli_str(const cli_args *a, const char *name, const char *def) {
    const cli_val *v = cli_get(a, name);
    return v->given ? v->str : def;
}

/* ---------------------------------------------------------------- files */
cli_file_kind cli_file_kind_of(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) return errno == ENOENT || errno == ENOTDIR ? FILE_MISSING
                                                                         : FILE_UNREADABLE;
    if (S_ISDIR(st.st_mode)) return FILE_DIR;
    /* Never open a FIFO or device to peek at it (that can block forever);
    ** the loaders refuse what is not a regular file with their own words. */
    if (!S_ISREG(st.st_mode)) return FILE_OTHER;
    FILE *f = fopen(path, "rb");
    if (!f) return FILE_UNREADABLE;
    unsigned char m[24] = {0};
    size_t n = fread(m, 1, sizeof m, f);
    fclose(f);
    if (n == 0) return FILE_EMPTY;
    /* The engine magic, whatever the format version behind it. */
    if (n >= 8 && !memcmp(m, "\x89KILN\r\n\x1a", 8)) return FILE_ENGINE;
    if (n >= 17 && !memcmp(m, "kiln-timing-cache", 17)) return FILE_TIMING_CACHE;
    if (n >= 6 && !memcmp(m, "\x93NUMPY", 6)) return FILE_NPY;
    if (n >= 22 && !memcmp(m, "kiln-calibration-cache", 22)) return FILE_CALIB_CACHE;
    return FILE_OTHER;
}

const char *cli_file_kind_name(cli_file_kind k) {
    switch (k) {
    case FILE_MISSING: return "missing";
    case FILE_DIR: return "a folder";
    case FILE_ENGINE: return "a Kiln engine";
    case FILE_TIMING_CACHE: return "a Kiln timing cache";
    case FILE_NPY: return "a .npy array";
    case FILE_EMPTY: return "an empty file";
    case FILE_OTHER: return "a file";
    case FILE_UNREADABLE: return "unreadable";
    case FILE_CALIB_CACHE: return "a Kiln calibration cache";
    }
    return "?";
}

bool cli_same_file(const char *x, const char *y) {
    struct stat a, b;
    if (!x || !y || stat(x, &a) != 0 || stat(y, &b) != 0) return false;
    return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

bool cli_check_output(const cli_args *a, const char *opt, const char *path,
                      const char *const *inputs, int n_inputs, cli_file_kind keep) {
    for (int i = 0; i < n_inputs; i++)
        if (inputs[i] && cli_same_file(path, inputs[i])) {
            cli_usage_error(a, "%s '%s' is the input file '%s'; refusing to overwrite it",
                            opt, path, inputs[i]);
            return false;
        }
    cli_file_kind k = cli_file_kind_of(path);
    if (k == FILE_DIR) {
        cli_usage_error(a, "%s '%s' is a folder", opt, path);
        return false;
    }
    if (k != FILE_MISSING && k != keep && !(keep == FILE_ENGINE && k == FILE_EMPTY)) {
        cli_usage_error(a, "%s '%s' exists and is %s, not %s; refusing to overwrite it",
                        opt, path, cli_file_kind_name(k),
                        keep == FILE_MISSING ? "new" : cli_file_kind_name(keep));
        return false;
    }
    /* The folder must be there and writable: find out now, not after a
    ** ten-minute build. */
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == path) snprintf(dir, sizeof dir, "/");
    else snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        cli_usage_error(a, "%s '%s': folder '%s' does not exist", opt, path, dir);
        return false;
    }
    if (access(dir, W_OK) != 0) {
        cli_usage_error(a, "%s '%s': folder '%s' is not writable", opt, path, dir);
        return false;
    }
    if (k != FILE_MISSING && access(path, W_OK) != 0) {
        cli_usage_error(a, "%s '%s' is not writable", opt, path);
        return false;
    }
    return true;
}

/* ---------------------------------------------------------------- shapes */
void cli_shapes_free(cli_shapes *s) {
    free(s->copy);
    free(s->s);
    memset(s, 0, sizeof *s);
}

const cli_shape *cli_find_shape(const cli_shapes *s, const char *name) {
    for (int i = 0; s && i < s->n; i++)
        if (!strcmp(s->s[i].name, name)) return &s->s[i];
    return NULL;
}

/* Refuses shapes whose element count or byte size does not fit: 2^40
** bytes is far beyond any machine this runs on and far below overflow. */
static bool shape_fits(int rank, const int64_t *dims, kiln_dtype dt) {
    double bytes = (double)(kiln_dtype_size(dt) ? kiln_dtype_size(dt) : 1);
    for (int d = 0; d < rank; d++) bytes *= (double)dims[d];
    return bytes <= 1099511627776.0;
}

bool cli_parse_shapes(const cli_args *a, const char *opt, const char *spec,
                      const kiln_io_info *inputs, int n, cli_shapes *out) {
    memset(out, 0, sizeof *out);
    if (!spec) return true;
    size_t cap = 1;
    for (const char *p = spec; *p; p++) cap += *p == ',';
    out->copy = strdup(spec);
    out->s = calloc(cap, sizeof *out->s);
    if (!out->copy || !out->s) {
        cli_shapes_free(out);
        return false;
    }
    char *save = NULL;
    for (char *tok = strtok_r(out->copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *colon = strrchr(tok, ':');
        if (!colon || colon == tok) {
            cli_usage_error(a, "%s: expected NAME:DIMS (like x:1x3x224x224), got '%s'", opt, tok);
            goto fail;
        }
        *colon = 0;
        cli_shape *s = &out->s[out->n];
        s->name = tok;
        const char *p = colon + 1;
        if (!*p) {
            cli_usage_error(a, "%s: '%s' has no dims (like %s:1x3x224x224)", opt, tok, tok);
            goto fail;
        }
        if (!strcmp(p, "scalar")) p = ""; /* rank 0 */
        while (*p) {
            char *end;
            errno = 0;
            long long v = strtoll(p, &end, 10);
            if (end == p || *p == '-' || *p == '+' || *p == ' ' || errno || v < 0) {
                cli_usage_error(a, "%s: '%s': dims must be non-negative integers separated "
                                "by 'x', got '%s'", opt, tok, colon + 1);
                goto fail;
            }
            if (s->rank >= KILN_MAX_RANK) {
                cli_usage_error(a, "%s: '%s' has more than %d dims", opt, tok, KILN_MAX_RANK);
                goto fail;
            }
            s->dims[s->rank++] = v;
            p = end;
            if ((*p == 'x' || *p == 'X') && p[1]) p++;
            else if (*p) {
                cli_usage_error(a, "%s: '%s': dims must be non-negative integers separated "
                                "by 'x', got '%s'", opt, tok, colon + 1);
                goto fail;
            }
        }
        for (int k = 0; k < out->n; k++)
            if (!strcmp(out->s[k].name, tok)) {
                cli_usage_error(a, "%s: input '%s' is given twice", opt, tok);
                goto fail;
            }
        int found = -1;
        for (int k = 0; k < n; k++)
            if (!strcmp(inputs[k].name, tok)) found = k;
        if (found < 0) {
            char names[512];
            size_t used = 0;
            names[0] = 0;
            for (int k = 0; k < n && used + 4 < sizeof names; k++)
                used += (size_t)snprintf(names + used, sizeof names - used, "%s'%s'",
                                         k ? ", " : "", inputs[k].name);
            if (used >= sizeof names) used = sizeof names - 1;
            cli_usage_error(a, "%s: the model has no input '%s' (its inputs: %s)", opt, tok,
                            n ? names : "none");
            goto fail;
        }
        const kiln_io_info *io = &inputs[found];
        if (io->rank >= 0 && io->rank != s->rank) {
            char b[256];
            cli_usage_error(a, "%s: input '%s' has rank %d %s, got %d dims", opt, tok,
                            io->rank, cli_dims_str(io->rank, io->dims, io->dim_names, b,
                                                   sizeof b), s->rank);
            goto fail;
        }
        for (int d = 0; io->rank >= 0 && d < s->rank; d++)
            if (io->dims[d] >= 0 && io->dims[d] != s->dims[d]) {
                char b[256];
                cli_usage_error(a, "%s: input '%s' dim %d is fixed at %lld %s, got %lld", opt,
                                tok, d, (long long)io->dims[d],
                                cli_dims_str(io->rank, io->dims, io->dim_names, b, sizeof b),
                                (long long)s->dims[d]);
                goto fail;
            }
        if (!shape_fits(s->rank, s->dims, io->dtype)) {
            cli_usage_error(a, "%s: input '%s' shape %s is too large (over 1 TiB)", opt, tok,
                            colon + 1);
            goto fail;
        }
        out->n++;
    }
    return true;
fail:
    cli_shapes_free(out);
    return false;
}

/* ---------------------------------------------------------------- misc */
double cli_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Physical cores available to this process, which is what a compute-bound
** benchmark should use (SMT siblings share the FMA units): the library's
** count (kiln_set_num_threads(0): affinity mask, one per core). */
int cli_physical_cores(void) {
    int saved = kiln_get_num_threads();
    kiln_set_num_threads(0);
    int n = kiln_get_num_threads();
    kiln_set_num_threads(saved);
    return n;
}

const char *cli_dims_str(int rank, const int64_t *dims, const char *const *names,
                         char *buf, size_t n) {
    size_t k = 0;
    if (rank < 0) {
        snprintf(buf, n, "[?]");
        return buf;
    }
    k += (size_t)snprintf(buf + k, n - k, "[");
    for (int i = 0; i < rank && k < n; i++) {
        const char *sep = i ? ", " : "";
        if (dims[i] >= 0)
            k += (size_t)snprintf(buf + k, n - k, "%s%lld", sep, (long long)dims[i]);
        else
            k += (size_t)snprintf(buf + k, n - k, "%s%s", sep,
                                  names && names[i] ? names[i] : "?");
    }
    if (k < n) snprintf(buf + k, n - k, "]");
    return buf;
}

void cli_log_stderr(void *user, kiln_severity sev, const char *msg) {
    static const char *const names[] = {"error", "warning", "info", "verbose"};
    (void)user;
    fprintf(stderr, "[kiln %s] %s\n", names[sev], msg);
}

void cli_json_str(const char *s) {
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') printf("\\%c", *p);
        else if (*p < 0x20) printf("\\u%04x", *p);
        else putchar(*p);
    }
    putchar('"');
}

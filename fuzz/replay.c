/* replay.c: runs every file in the given folders (or the given files)
** through the fuzz body, without libFuzzer, so CI can replay the corpus and
** the regression inputs under gcc + ASan/UBSan.
** Usage: kiln_fuzz_replay DIR_OR_FILE...   Exit 0 when every input was
** handled (loaded or cleanly refused); sanitizer reports abort the run. */
#include "fuzz_onnx_body.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KILN_REPLAY_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define KILN_REPLAY_ASAN 1
#endif

static const char *g_current = "";

#ifdef KILN_REPLAY_ASAN
#include <sanitizer/common_interface_defs.h>
/* Names the input a sanitizer report was about. */
static void on_death(void) {
    fprintf(stderr, "kiln_fuzz_replay: died on input '%s'\n", g_current);
}
#endif

static int read_file(const char *path, uint8_t **data, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    size_t cap = 4096, n = 0;
    uint8_t *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap) break;
        uint8_t *p = realloc(buf, cap * 2);
        if (!p) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = p;
        cap *= 2;
    }
    int err = ferror(f);
    fclose(f);
    if (!buf || err) {
        free(buf);
        return -1;
    }
    /* An exact-size copy so ASan flags any read past the end. */
    uint8_t *exact = malloc(n ? n : 1);
    if (!exact) {
        free(buf);
        return -1;
    }
    memcpy(exact, buf, n);
    free(buf);
    *data = exact;
    *size = n;
    return 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_file(const char *path, int *loaded, int *refused) {
    uint8_t *data;
    size_t size;
    if (read_file(path, &data, &size)) {
        fprintf(stderr, "kiln_fuzz_replay: cannot read '%s': %s\n", path,
                strerror(errno));
        return -1;
    }
    g_current = path;
    if (getenv("KILN_REPLAY_VERBOSE")) fprintf(stderr, "%s\n", path);
    if (kiln_fuzz_one(data, size)) (*loaded)++;
    else (*refused)++;
    free(data);
    return 0;
}

static int run_dir(const char *dir, int *loaded, int *refused) {
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "kiln_fuzz_replay: cannot open '%s': %s\n", dir,
                strerror(errno));
        return -1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue; /* ., .., hidden notes */
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            char **p = realloc(names, cap * sizeof *p);
            if (!p) {
                rc = -1;
                break;
            }
            names = p;
        }
        if (!(names[n] = strdup(e->d_name))) {
            rc = -1;
            break;
        }
        n++;
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n && rc == 0; i++) {
        size_t len = strlen(dir) + strlen(names[i]) + 2;
        char *path = malloc(len);
        if (!path) {
            rc = -1;
            break;
        }
        snprintf(path, len, "%s/%s", dir, names[i]);
        struct stat st;
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
            rc = run_file(path, loaded, refused);
        free(path);
    }
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    if (rc) fprintf(stderr, "kiln_fuzz_replay: error while reading '%s'\n", dir);
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: kiln_fuzz_replay DIR_OR_FILE...\n");
        return 2;
    }
#ifdef KILN_REPLAY_ASAN
    __sanitizer_set_death_callback(on_death);
#endif
    kiln_fuzz_init();
    int loaded = 0, refused = 0, rc = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "kiln_fuzz_replay: '%s' does not exist\n", argv[i]);
            rc = 1;
        } else if (S_ISDIR(st.st_mode)) {
            if (run_dir(argv[i], &loaded, &refused)) rc = 1;
        } else if (run_file(argv[i], &loaded, &refused)) {
            rc = 1;
        }
    }
    printf("kiln_fuzz_replay: %d inputs, %d loaded, %d refused\n",
           loaded + refused, loaded, refused);
    return rc;
}

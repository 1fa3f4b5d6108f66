/* file.c: mapping, ranged reads and atomic writes of files. */
#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_empty_map[1];

kiln_status kiln_map_file(const char *path, void **base, size_t *size) {
    /* O_NONBLOCK: opening a FIFO must not wait for a writer; regular files
    ** are checked right after. */
    int fd = open(path, O_RDONLY | O_NONBLOCK);
    *base = NULL;
    *size = 0;
    if (fd < 0)
        return kiln_error(KILN_IO_ERROR, "cannot open '%s': %s", path,
                          strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return kiln_error(KILN_IO_ERROR, "'%s' is not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        *base = g_empty_map;
        return KILN_OK;
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED)
        return kiln_error(KILN_IO_ERROR, "cannot map '%s': %s", path,
                          strerror(errno));
    *base = p;
    *size = (size_t)st.st_size;
    return KILN_OK;
}

void kiln_unmap_file(void *base, size_t size) {
    if (base && base != g_empty_map) munmap(base, size);
}

kiln_status kiln_read_range(const char *path, uint64_t offset, uint64_t n,
                            void **out) {
    *out = NULL;
    int fd = open(path, O_RDONLY | O_NONBLOCK);
    if (fd < 0)
        return kiln_error(KILN_IO_ERROR, "cannot open '%s': %s", path,
                          strerror(errno));
    struct stat st;
    kiln_status s = KILN_OK;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        s = kiln_error(KILN_IO_ERROR, "'%s' is not a regular file", path);
        goto done;
    }
    if (offset > (uint64_t)st.st_size || n > (uint64_t)st.st_size - offset) {
        s = kiln_error(KILN_INVALID_MODEL,
                       "'%s' holds %lld bytes; cannot read %llu bytes at %llu",
                       path, (long long)st.st_size, (unsigned long long)n,
                       (unsigned long long)offset);
        goto done;
    }
    unsigned char *buf = kiln_aligned_alloc((size_t)n);
    if (!buf) {
        s = kiln_error(KILN_OUT_OF_MEMORY, "out of memory reading '%s'", path);
        goto done;
    }
    uint64_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, buf + got, (size_t)(n - got), (off_t)(offset + got));
        if (r <= 0) {
            if (r < 0 && errno == EINTR) continue;
            kiln_aligned_free(buf);
            s = kiln_error(KILN_IO_ERROR, "read of '%s' failed", path);
            goto done;
        }
        got += (uint64_t)r;
    }
    *out = buf;
done:
    close(fd);
    return s;
}

kiln_status kiln_write_atomic(const char *path, const void *data, size_t n) {
    size_t len = strlen(path);
    char *tmp = malloc(len + 32);
    if (!tmp) return kiln_error(KILN_OUT_OF_MEMORY, "out of memory");
    snprintf(tmp, len + 32, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    kiln_status s = KILN_OK;
    if (!f) {
        s = kiln_error(KILN_IO_ERROR, "cannot create '%s': %s", tmp,
                       strerror(errno));
        free(tmp);
        return s;
    }
    if ((n && fwrite(data, 1, n, f) != n) || fflush(f) != 0 ||
        fsync(fileno(f)) != 0) {
        s = kiln_error(KILN_IO_ERROR, "cannot write '%s': %s", tmp,
                       strerror(errno));
    }
    if (fclose(f) != 0 && !s)
        s = kiln_error(KILN_IO_ERROR, "cannot write '%s'", tmp);
    if (!s && rename(tmp, path) != 0)
        s = kiln_error(KILN_IO_ERROR, "cannot rename '%s' to '%s': %s", tmp,
                       path, strerror(errno));
    if (s) remove(tmp);
    free(tmp);
    return s;
}

char *kiln_dirname(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return kiln_strdup(".");
    if (slash == path) return kiln_strdup("/");
    return kiln_strndup(path, (size_t)(slash - path));
}

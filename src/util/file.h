/* file.h: whole-file mapping and atomic writes. */
#ifndef KILN_FILE_H
#define KILN_FILE_H

#include "common.h"

/* Maps a file read-only-shared as private copy-on-write memory. An empty
** file maps to a non-NULL dummy of size 0. */
kiln_status kiln_map_file(const char *path, void **base, size_t *size);
void kiln_unmap_file(void *base, size_t size);
/* Reads n bytes at offset of path into a new 64-byte aligned buffer. */
kiln_status kiln_read_range(const char *path, uint64_t offset, uint64_t n,
                            void **out);
/* Writes data to path through a temporary file and rename. */
kiln_status kiln_write_atomic(const char *path, const void *data, size_t n);
/* Folder part of a path ("." when none); malloc'ed. */
char *kiln_dirname(const char *path);

#endif

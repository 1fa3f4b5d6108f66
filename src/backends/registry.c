/* registry.c: the backends compiled into this build, by engine name. */
#include "backend.h"

#include <string.h>

const kiln_backend_ops *kiln_backend_by_name(const char *name) {
    const kiln_backend_ops *all[] = {kiln_backend_cpu(), kiln_backend_cuda()};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (all[i] && name && strcmp(all[i]->name, name) == 0) return all[i];
    return NULL;
}

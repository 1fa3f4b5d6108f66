/* cuda_absent.c: compiled instead of the CUDA backend when the build has
** no CUDA toolkit (or KILN_CUDA=OFF): the core asks and gets NULL. */
#include "../backend.h"

const kiln_backend_ops *kiln_backend_cuda(void) { return NULL; }

/* placement_args.h: the NAME:DIMS arguments (e.g. x:2x16x32) of the
** offline placement tools (int8_placement.c, qkv_placement.c), set as one
** fixed shape each in profile prof. Arguments without a colon are skipped
** (the tools' flags). 0, or 2 after printing why. */
#ifndef KILN_PLACEMENT_ARGS_H
#define KILN_PLACEMENT_ARGS_H

#include "kiln.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int placement_shapes(kiln_builder_config *cfg, int prof, int argc, char **argv,
                            int first) {
    for (int i = first; i < argc; i++) {
        char *colon = strchr(argv[i], ':');
        if (!colon) continue;
        *colon = 0;
        int64_t d[KILN_MAX_RANK];
        int r = 0;
        for (char *p = colon + 1; *p && r < KILN_MAX_RANK; r++) {
            d[r] = strtoll(p, &p, 10);
            if (*p == 'x') p++;
        }
        if (kiln_builder_config_set_shape(cfg, prof, argv[i], r, d, d, d)) {
            fprintf(stderr, "shape %s: %s\n", argv[i], kiln_last_error());
            return 2;
        }
    }
    return 0;
}

#endif

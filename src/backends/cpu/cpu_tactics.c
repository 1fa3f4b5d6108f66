/* cpu_tactics.c: table of the optimized CPU tactics. */
#include "cpu_tactics.h"

const kiln_tactic *const cpu_tactic_table[] = {
    NULL,
};

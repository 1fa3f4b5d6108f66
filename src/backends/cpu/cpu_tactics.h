/* cpu_tactics.h: the optimized CPU tactics (NULL-terminated). */
#ifndef KILN_CPU_TACTICS_H
#define KILN_CPU_TACTICS_H

#include "../backend.h"

extern const kiln_tactic *const cpu_tactic_table[];

#endif

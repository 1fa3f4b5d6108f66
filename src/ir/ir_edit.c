/* ir_edit.c: graph rewriting helpers (placeholder until implemented). */
#include "ir_edit.h"

kiln_status ir_graph_compact(ir_graph *g) { return ir_graph_toposort(g); }

/* model_api.c: the public kiln_model calls that need the reference backend:
** loading (the backend's evaluator is handed down to the import layer, which
** folds constants with it but may not call a backend itself) and reference
** execution. The model object itself is in import/model.c. */
#include "../import/model.h"
#include "../backends/ref/ref.h"

kiln_status kiln_model_load_v2(const char *path, const kiln_model_load_options *o,
                               kiln_model **out) {
    return kiln_model_load_ev(path, o, &ref_evaluator, out);
}

kiln_status kiln_model_load(const char *path, kiln_model **out) {
    return kiln_model_load_v2(path, NULL, out);
}

kiln_status kiln_model_load_memory_v2(const void *data, size_t size,
                                      const char *external_dir,
                                      const kiln_model_load_options *o,
                                      kiln_model **out) {
    return kiln_model_load_memory_ev(data, size, external_dir, o,
                                     &ref_evaluator, out);
}

kiln_status kiln_model_load_memory(const void *data, size_t size,
                                   const char *external_dir, kiln_model **out) {
    return kiln_model_load_memory_v2(data, size, external_dir, NULL, out);
}

kiln_status kiln_model_run_reference(const kiln_model *m,
                                     const kiln_tensor *const *inputs,
                                     kiln_tensor **outputs) {
    if (!m || !outputs || (m->ir->graph->n_inputs && !inputs))
        return kiln_error(KILN_INVALID_ARGUMENT, "NULL argument");
    return ref_run_graph(m->ir->graph, inputs, NULL, outputs);
}

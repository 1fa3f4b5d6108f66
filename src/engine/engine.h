/* engine.h: the in-memory engine (what a .kiln file holds) and its
** serialization. The optimized graph is an ordinary IR model whose constant
** tensors borrow the file's bytes; per-layer annotations (precision, tactic
** per profile) and per-profile memory plans sit beside it. See
** docs/ENGINE_FORMAT.md for the byte layout. */
#ifndef KILN_ENGINE_H
#define KILN_ENGINE_H

#include "../backends/backend.h"

/* v2: the build section records the source model's digest and the device
** fingerprint. v3: per layer and profile, the chosen tactic's prepared
** data (kiln_tactic.prepare: packed weights) in the weights section. v4:
** a tensor flags word; a constant only read through layers' prepared data
** is stored without its bytes (engine_const_unread). */
#define KILN_ENGINE_FORMAT_VERSION 4

typedef struct engine_profile {
    /* Per main-graph input i: rank dims each (rank of the input). */
    int64_t (*min)[KILN_MAX_RANK];
    int64_t (*opt)[KILN_MAX_RANK];
    int64_t (*max)[KILN_MAX_RANK];
} engine_profile;

typedef struct engine_layer { /* parallel to ir->graph->nodes */
    unsigned precision;          /* one KILN_PRECISION_* */
    const kiln_tactic **tactic;  /* per profile */
    float *time_us;              /* per profile: build-time median, or -1 */
    /* per profile: the tactic's prepared data (kiln_tactic.prepare) and
    ** its size, NULL and 0 when none. Profiles with the same bytes share
    ** one pointer. Loaded engines borrow the file; built ones own them
    ** (kiln_engine.owns_layer_blobs). NULL arrays: no layer blobs at all. */
    const void **blob;
    uint64_t *blob_size;
} engine_layer;

typedef struct engine_plan { /* per profile */
    uint64_t total_bytes;        /* activation block size */
    uint64_t naive_bytes;        /* sum of all planned tensors' sizes */
    uint64_t workspace_bytes;    /* largest tactic scratch, after total */
    int64_t *offset;             /* per main-graph value id; -1: not in the
                                    block (input, constant, data-dependent
                                    size, or produced in a subgraph) */
    uint64_t *size;              /* planned bytes per value id */
} engine_plan;

struct kiln_engine {
    ir_model *ir;                /* the optimized graph */
    engine_layer *layers;
    int n_profiles;
    engine_profile *profiles;
    engine_plan *plans;
    /* builder settings, for inspect and compatibility checks */
    unsigned precisions;
    int opt_level;
    uint64_t workspace_limit;
    int source_nodes;            /* node count of the ONNX graph */
    uint64_t model_hash;         /* kiln_model_hash of the source model */
    char lib_version[32];        /* kiln version that built it */
    char backend[16];            /* "cpu" */
    char arch[16];               /* "x86_64" */
    unsigned isa_required;       /* KILN_ISA_* the chosen tactics need */
    char dev_fingerprint[768];   /* device backends: the GPU and libraries
                                    the engine was built and tuned on ("" on
                                    the CPU) */
    const kiln_backend_ops *ops;
    /* device backends, after loading: the opened device, the constants
    ** uploaded once and shared by every context (one block), and each
    ** constant value's device address by value id (NULL when not uploaded) */
    void *dev;
    void *dweights;
    uint64_t dweights_bytes;
    void **dconst;
    /* engine_clear frees the layer blobs (kiln_aligned_free) */
    bool owns_layer_blobs;
    /* backing bytes of borrowed constants */
    void *blob;
    size_t blob_size;
    bool blob_mapped;            /* munmap vs kiln_aligned_free */
};

/* Serializes e (everything above but blob*) into a new 64-byte aligned
** buffer released with kiln_aligned_free. */
kiln_status engine_serialize(const kiln_engine *e, uint8_t **out, size_t *size);
/* Validates and decodes data into e (zeroed by the caller). Constants
** borrow data, which must stay valid and 64-byte aligned while e lives.
** Any malformation is KILN_CORRUPT_ENGINE; another format version, kiln
** version, backend, architecture, missing CPU feature or unknown tactic is
** KILN_INCOMPATIBLE_ENGINE with a message saying what to do. Never crashes
** on hostile input. */
kiln_status engine_deserialize(const uint8_t *data, size_t size, kiln_engine *e);
/* Which main-graph constants no reader needs the bytes of. Constant v
** qualifies when v is not a
** graph input or output, has at least one use, every use is an explicit
** input k of a main-graph layer (never an implicit input of a subgraph
** node) that also reads a non-constant input, and that layer, in every
** profile, runs a host tactic with a prepared blob and bit k in
** blob_replaces. Engines of a device backend (or with a device
** fingerprint, or no backend ops) keep every constant: the device attach
** step uploads them all. The serializer stores such a
** constant without bytes; the loader accepts a constant without bytes only
** where this holds. Sets unread[id] to 1 or 0 for every main-graph value
** id (the caller's array of graph->n_values bytes). */
void engine_const_unread(const kiln_engine *e, uint8_t *unread);
/* Frees everything e owns except the blob. */
void engine_clear(kiln_engine *e);

/* Host architecture name ("x86_64", "aarch64", ...). */
const char *kiln_host_arch(void);

#endif

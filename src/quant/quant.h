/* quant.h: post-training INT8 quantization inside the builder. Calibration
** runs the FP32 graph (before the optimizer, after constant and Conv+BN
** folding) on user data, collects |x| histograms of the tensors entering
** and leaving Conv/Gemm/MatMul layers, picks a range per tensor (entropy,
** minmax or percentile) and writes the result into the graph as standard
** ONNX Q/DQ, as onnxruntime's quantize_static does: QuantizeLinear ->
** DequantizeLinear on activations (one scale per tensor, zero point 0:
** uint8 where never negative, int8 symmetric otherwise) and DequantizeLinear on weights (int8 constants, symmetric,
** one scale per output channel). That graph runs correctly as fake
** quantization on every backend; the optimizer's Q/DQ fold turns it into
** integer layers. An accuracy budget measured on validation data moves the
** most harmful layers back to FP32. Lives between the passes and the
** builder: it uses passes, IR, ops and the backends, and the builder calls
** it. */
#ifndef KILN_QUANT_H
#define KILN_QUANT_H

#include "../passes/passes.h"

/* ---------------------------------------------------------------- math */
#define QUANT_HIST_BINS 2048

/* Histogram of |x| over [0, range) in QUANT_HIST_BINS equal bins. The range
** grows by powers of two as larger values arrive (adjacent bins merge), so
** one pass over the data suffices. */
typedef struct quant_hist {
    double range;   /* 0 until a nonzero value is seen */
    double absmax;  /* exact largest |x| */
    double count;   /* values seen (all, zeros included) */
    double bins[QUANT_HIST_BINS];
} quant_hist;

void quant_hist_add(quant_hist *h, const float *x, int64_t n);

typedef enum quant_method {
    QUANT_ENTROPY = 0,
    QUANT_MINMAX = 1,
    QUANT_PERCENTILE = 2
} quant_method;

const char *quant_method_name(int m);
/* The clipping threshold (amax) the method picks for int8 (128
** magnitudes). percentile in (0, 100] is used by QUANT_PERCENTILE only. 0
** for an all-zero tensor. */
double quant_hist_amax(const quant_hist *h, quant_method m, double percentile);
/* Same for a grid of `levels` magnitudes (256 for uint8 on x >= 0). */
double quant_hist_amax_levels(const quant_hist *h, quant_method m, double percentile,
                              int levels);
/* Entropy calibration on a raw histogram (exposed for tests): returns the
** number of leading bins (in [levels, n]) whose clipped distribution loses
** least information (KL divergence) when quantized to levels bins. */
int quant_entropy_bins(const double *hist, int n, int levels);

/* int8 symmetric scale for a threshold (amax / 127; 1 for amax = 0), as
** the float the graph stores. */
float quant_scale_for(double amax);
/* uint8 with zero point 0 for tensors that are never negative (Relu
** outputs): amax / 255. */
float quant_scale_u8(double amax);
/* FP8 E4M3, symmetric: amax / 448 (1 for amax = 0). */
float quant_scale_fp8(double amax);

/* The calibration cache's method line ends with this word for FP8 scales. */
#define FP8_CACHE_TAG "e4m3"

/* ---------------------------------------------------------------- cache */
typedef struct quant_cache_entry {
    char *name;
    float scale;
} quant_cache_entry;

typedef struct quant_cache {
    char method[32];
    char version[32];
    int n;
    quant_cache_entry *e;
} quant_cache;

/* Reads a calibration cache; KILN_INVALID_ARGUMENT with the line number
** for anything malformed. */
kiln_status quant_cache_read(const char *path, quant_cache *c);
kiln_status quant_cache_write(const char *path, const quant_cache *c);
void quant_cache_clear(quant_cache *c);
const quant_cache_entry *quant_cache_find(const quant_cache *c, const char *name);

/* ---------------------------------------------------------------- data */
/* A list of input sets, each binding every graph input (graph-input order). */
typedef struct quant_dataset {
    int n_sets, n_inputs;
    kiln_tensor **t;   /* n_sets * n_inputs */
} quant_dataset;

/* Loads DIR: test_data_set_*\/input_*.pb folders (the tensor's name, else
** its index, picks the input), or .npy files named after the inputs (one set;
** DIR/NAME/ *.npy folders or NAME_0.npy... give several sets). At most
** max_sets sets (0: all). Shapes and dtypes are checked against g's inputs. */
kiln_status quant_dataset_load(const char *dir, const ir_graph *g, int max_sets,
                               quant_dataset *d);
void quant_dataset_free(quant_dataset *d);

/* ---------------------------------------------------------------- builder */
typedef void (*quant_progress_fn)(void *user, const char *phase, int done, int total);

typedef struct quant_opts {
    const char *calib_dir;    /* NULL: the cache must have every scale */
    const char *cache_path;   /* NULL: no cache */
    quant_method method;
    double percentile;
    int max_batches;          /* 0: every set */
    int budget_metric;        /* KILN_METRIC_*, or -1: no budget */
    double budget_value;
    const char *validate_dir;
    quant_progress_fn progress;
    void *progress_user;
    kiln_log_fn log;          /* NULL: stderr */
    void *log_user;
    int log_max;
    /* Only layers with a constant weight (device builds): no GPU kernel
    ** takes a quantized MatMul of two activations, so its Q/DQ would only
    ** cost, and leaving attention's Q K^T and P V in float keeps the
    ** attention fusion. */
    bool weights_only;
    /* KILN_DTYPE_INT8 or UNDEFINED (0) (uint8 where never negative) or
    ** KILN_DTYPE_FLOAT8E4M3FN (FP8: minmax or percentile only). */
    kiln_dtype qtype;
    /* Quantize every product's output as onnxruntime's quantize_static
    ** does, also where only float layers read it (the behaviour before
    ** QFusedGemm; tests compare against it). Off: a MatMul/Gemm output is
    ** quantized only where an 8-bit reader may take it (quantize.c). */
    bool quantize_outputs;
} quant_opts;

/* Calibrates (or reads the cache), applies the accuracy budget and inserts
** Q/DQ into p->g. The graph must have concrete input shapes at run time
** (the data gives them). */
kiln_status quant_int8(pass_ctx *p, const quant_opts *o);

#endif

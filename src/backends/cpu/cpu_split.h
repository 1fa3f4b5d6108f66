/* cpu_split.h: how a convolution's work is cut into tasks for the pool
** when its weights outweigh its pixels (small maps at batch 1: ResNet-50's
** 7x7 and 14x14 layers). The usual partitions (cpu_wino.c, cpu_nchwc.c)
** cut the pixel side first, so every pixel chunk streams all the weights
** and a weight slice is read by as many tasks as there are chunks; at
** 16 threads on a 7x7 map that doubled the memory traffic of a layer bound
** by it. The weights-first partition gives each task a disjoint slice of
** output blocks (its weights, read once) and cuts the pixel side only as
** far as the thread count still needs. Pure functions of their arguments,
** unit-tested in tests/unit/test_wino.c. */
#ifndef KILN_CPU_SPLIT_H
#define KILN_CPU_SPLIT_H

#include <stdbool.h>
#include <stdint.h>

/* oc_parts x px_parts tasks: task (o, p) takes output blocks
** [o * oc_per, min(Mb, (o + 1) * oc_per)) and the p-th of px_parts
** near-equal ranges of the pixel units (Winograd tiles, output rows). */
typedef struct cpu_split {
    int64_t oc_per;   /* output blocks per task (the last part may have fewer) */
    int64_t oc_parts; /* ceil(Mb / oc_per) */
    int64_t px_parts; /* 1 <= px_parts <= px_units */
} cpu_split;

/* The weights-first partition for nth threads, px_units pixel-side units
** of which a task may take at most px_cap (a scratch limit: px_parts >=
** ceil(px_units / px_cap)), Mb output blocks that the kernels take ob at a
** time. Output blocks are spread first (in whole multiples of ob when there
** are enough for every thread), then the pixel side is cut where that
** shortens the run: the least rounds of the pool times the largest task,
** a task costing (its pixel units + w_units) per output block plus x_units
** per pixel unit. The unit of cost is one output block computed over one
** pixel unit; w_units is the time to read one output block's weights (so
** cutting the pixels, which reads each weight slice once per part, has its
** price), x_units the time to prepare one pixel unit's input, which every
** output-block part does again (Winograd's input transform; 0 for the
** direct kernels). Ties go to fewer pixel parts. */
cpu_split cpu_split_weights_first(int nth, int64_t px_units, int64_t px_cap, int64_t Mb,
                                  int64_t ob, double w_units, double x_units);

/* w_units for units of px pixels (a Winograd tile counts as 1: its
** weights are P-fold too): reading a weight takes about as long as 16
** multiply-adds with it, at the 4-8 bytes a cycle a core gets from memory
** with all cores reading and 2 vector FMAs a cycle. A guess from those
** figures, not a measurement. */
static inline double cpu_split_w_units(double px) { return 16.0 / (px > 1 ? px : 1); }

/* x_units of a Winograd tile: its input transform over all the input
** channels takes about 6 vector operations per transformed value, against
** 16 FMAs per transformed value for one output block of the GEMM: 0.4 of
** the tile's GEMM for one output block. */
enum { CPU_SPLIT_WINO_X_TENTHS = 4 };

/* Whether the weights-first partition is the one to use: at least as many
** weight bytes as pixel-side bytes (input and output the tasks would
** otherwise share). One thread too: the row-first order of a 1x1 strided
** conv reads all its weights once per output row (ResNet-50's layer4.0
** downsample, 8 MB of weights over 7 rows, 3.7 -> 2.6 ms a run on one
** thread; bench/RESULTS.md, session 9). KILN_CPU_SPLIT=old turns it off,
** for A/B runs of the earlier partitions in one binary. */
bool cpu_split_weights_pay(int nth, double weight_bytes, double pixel_bytes);

#endif

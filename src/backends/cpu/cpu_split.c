/* cpu_split.c: the weights-first task partition of the blocked and
** Winograd convolutions (cpu_split.h says why). */
#include "cpu_split.h"

#include <stdlib.h>
#include <string.h>

static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* Makespan of a partition in (output block x pixel unit) steps: rounds of
** the pool times the largest task, which prepares its pixel units' input
** (x_units each), reads its output blocks' weights (w_units each) and
** computes the blocks over the units. */
static double makespan(int nth, int64_t px_units, int64_t Mb, int64_t oc_per, int64_t px_parts,
                       double w_units, double x_units) {
    int64_t oc_parts = cdiv(Mb, oc_per);
    int64_t rounds = cdiv(oc_parts * px_parts, nth);
    double px = (double)cdiv(px_units, px_parts);
    return (double)rounds * ((double)oc_per * (px + w_units) + x_units * px);
}

/* Best pixel-side cut for a given oc_per: from the fewest parts the scratch
** and the thread count allow, up to 4 times that (evening out rounds). */
static int64_t best_px(int nth, int64_t px_units, int64_t px_min, int64_t Mb, int64_t oc_per,
                       double w_units, double x_units, double *cost) {
    int64_t oc_parts = cdiv(Mb, oc_per);
    int64_t lo = cdiv(nth, oc_parts);
    if (lo > px_units) lo = px_units;
    int64_t hi = 4 * lo < px_units ? 4 * lo : px_units, best = px_min;
    if (hi < px_min) hi = px_min;
    double bc = makespan(nth, px_units, Mb, oc_per, px_min, w_units, x_units);
    for (int64_t p = px_min + 1; p <= hi; p++) {
        double c = makespan(nth, px_units, Mb, oc_per, p, w_units, x_units);
        if (c < bc) bc = c, best = p;
    }
    *cost = bc;
    return best;
}

cpu_split cpu_split_weights_first(int nth, int64_t px_units, int64_t px_cap, int64_t Mb,
                                  int64_t ob, double w_units, double x_units) {
    cpu_split s = {1, 1, 1};
    if (nth < 1) nth = 1;
    if (px_units < 1) px_units = 1;
    if (px_cap < 1) px_cap = 1;
    if (ob < 1) ob = 1;
    if (Mb < 1) return s;
    if (!(w_units >= 0)) w_units = 0;
    if (!(x_units >= 0)) x_units = 0;
    int64_t px_min = cdiv(px_units, px_cap);
    /* output-block parts wanted once the scratch's pixel cut is made */
    int64_t want = cdiv(nth, px_min);
    if (want > Mb) want = Mb;
    int64_t groups = cdiv(Mb, ob);
    double best_cost = -1;
    /* output-block parts: as many as wanted, then half, a quarter... (where
    ** preparing the input again costs more than cutting the pixels); for
    ** each, whole register tiles per task and the exact share. Most parts
    ** first, so ties go to fewer pixel parts. */
    for (int64_t parts = want;; parts = cdiv(parts, 2)) {
        int64_t cand[2] = {groups >= parts ? cdiv(groups, parts) * ob : 0, cdiv(Mb, parts)};
        for (int i = 0; i < 2; i++) {
            if (cand[i] < 1) continue;
            double cost;
            int64_t px = best_px(nth, px_units, px_min, Mb, cand[i], w_units, x_units, &cost);
            if (best_cost < 0 || cost < best_cost) {
                best_cost = cost;
                s.oc_per = cand[i], s.oc_parts = cdiv(Mb, cand[i]), s.px_parts = px;
            }
        }
        if (parts == 1) break;
    }
    return s;
}

static bool split_old(void) {
    const char *e = getenv("KILN_CPU_SPLIT");
    return e && !strcmp(e, "old");
}

bool cpu_split_weights_pay(int nth, double weight_bytes, double pixel_bytes) {
    return nth >= 1 && weight_bytes >= pixel_bytes && !split_old();
}

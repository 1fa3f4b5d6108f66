/* cpu_split.c: the weights-first task partition of the blocked and
** Winograd convolutions (cpu_split.h says why). */
#include "cpu_split.h"

#include <stdlib.h>
#include <string.h>

static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* Makespan of a partition in (output block x pixel unit) steps: rounds of
** the pool times the largest task, which reads its output blocks' weights
** (w_units each) and computes them over its pixel units. */
static double makespan(int nth, int64_t px_units, int64_t Mb, int64_t oc_per, int64_t px_parts,
                       double w_units) {
    int64_t oc_parts = cdiv(Mb, oc_per);
    int64_t rounds = cdiv(oc_parts * px_parts, nth);
    return (double)rounds * (double)oc_per * ((double)cdiv(px_units, px_parts) + w_units);
}

/* Best pixel-side cut for a given oc_per: from the fewest parts the scratch
** and the thread count allow, up to 4 times that (evening out rounds). */
static int64_t best_px(int nth, int64_t px_units, int64_t px_min, int64_t Mb, int64_t oc_per,
                       double w_units, double *cost) {
    int64_t oc_parts = cdiv(Mb, oc_per);
    int64_t lo = cdiv(nth, oc_parts);
    if (lo > px_units) lo = px_units;
    int64_t hi = 4 * lo < px_units ? 4 * lo : px_units, best = px_min;
    if (hi < px_min) hi = px_min;
    double bc = makespan(nth, px_units, Mb, oc_per, px_min, w_units);
    for (int64_t p = px_min + 1; p <= hi; p++) {
        double c = makespan(nth, px_units, Mb, oc_per, p, w_units);
        if (c < bc) bc = c, best = p;
    }
    *cost = bc;
    return best;
}

cpu_split cpu_split_weights_first(int nth, int64_t px_units, int64_t px_cap, int64_t Mb,
                                  int64_t ob, double w_units) {
    cpu_split s = {1, 1, 1};
    if (nth < 1) nth = 1;
    if (px_units < 1) px_units = 1;
    if (px_cap < 1) px_cap = 1;
    if (ob < 1) ob = 1;
    if (Mb < 1) return s;
    if (!(w_units >= 0)) w_units = 0;
    int64_t px_min = cdiv(px_units, px_cap);
    /* output-block parts wanted once the scratch's pixel cut is made */
    int64_t want = cdiv(nth, px_min);
    if (want > Mb) want = Mb;
    int64_t groups = cdiv(Mb, ob);
    /* candidates: whole register tiles per task, and the exact share */
    int64_t cand[2] = {groups >= want ? cdiv(groups, want) * ob : 0, cdiv(Mb, want)};
    double best_cost = -1;
    for (int i = 0; i < 2; i++) {
        if (cand[i] < 1) continue;
        double cost;
        int64_t px = best_px(nth, px_units, px_min, Mb, cand[i], w_units, &cost);
        /* ties: the whole register tiles (listed first) */
        if (best_cost < 0 || cost < best_cost) {
            best_cost = cost;
            s.oc_per = cand[i], s.oc_parts = cdiv(Mb, cand[i]), s.px_parts = px;
        }
    }
    return s;
}

static bool split_old(void) {
    const char *e = getenv("KILN_CPU_SPLIT");
    return e && !strcmp(e, "old");
}

bool cpu_split_weights_pay(int nth, double weight_bytes, double pixel_bytes) {
    return nth > 1 && weight_bytes >= pixel_bytes && !split_old();
}

// fe_geo_check.cu: offline check (host code only, no GPU) of how the
// FusedElementwise fast path (kernels/eltwise.cu) classifies its inputs. Random
// broadcast shapes are coalesced as cuda_eltwise.c's bshape_make does; for
// every group size V the classifier accepts, each input's offset (i / a) % b
// must equal the general per-dim offset for every output element, inputs
// loaded as vectors must be consecutive within a whole group and broadcast
// ones constant. Registered with ctest where the CUDA backend is built.
#include "../../src/backends/cuda/kernels/eltwise.cu"

#include <stdio.h>
#include <stdlib.h>

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static int rnd(int n) {
    g_rng ^= g_rng << 13, g_rng ^= g_rng >> 7, g_rng ^= g_rng << 17;
    return (int)(g_rng % (uint64_t)n);
}

// The general offset of input j for output element i (kc_offsets' loop).
static int64_t ref_off(const kc_bshape &s, int j, int64_t i) {
    int64_t off = 0;
    for (int d = s.rank - 1; d >= 0; d--) {
        off += (i % s.dims[d]) * s.st[j][d];
        i /= s.dims[d];
    }
    return off;
}

// cuda_eltwise.c's bshape_make: output dims of size 1 dropped, neighbours
// merged where every input walks them as one run.
static void coalesce(int R, const int64_t *yd, int nin, const int *rk, int64_t (*dd)[8],
                     kc_bshape *s) {
    memset(s, 0, sizeof *s);
    s->nin = nin;
    int64_t st[KC_MAX_IN][KC_MAX_RANK];
    for (int j = 0; j < nin; j++) {
        int64_t run = 1;
        for (int d = R - 1; d >= 0; d--) {
            int k = d - (R - rk[j]);
            int64_t dim = k >= 0 ? dd[j][k] : 1;
            st[j][d] = dim == 1 ? 0 : run;
            run *= dim;
        }
    }
    int r = 0;
    for (int d = 0; d < R; d++) {
        if (yd[d] == 1) continue;
        bool merge = r > 0;
        for (int j = 0; j < nin && merge; j++)
            if (s->st[j][r - 1] != st[j][d] * yd[d]) merge = false;
        if (merge) {
            s->dims[r - 1] *= yd[d];
            for (int j = 0; j < nin; j++) s->st[j][r - 1] = st[j][d];
            continue;
        }
        s->dims[r] = yd[d];
        for (int j = 0; j < nin; j++) s->st[j][r] = st[j][d];
        r++;
    }
    s->rank = r;
}

int main() {
    static const int64_t pick[] = {1, 2, 3, 4, 5, 7, 8, 12, 16, 17, 24, 32, 36, 40, 64};
    static const int vs[] = {8, 4, 1};
    alignas(16) static char buf[64];
    int checked = 0, fast[9] = {0}, bad = 0;
    for (int it = 0; it < 100000 && bad < 5; it++) {
        int R = rnd(6);
        int64_t yd[KC_MAX_RANK], n = 1;
        for (int d = 0; d < R; d++) n *= (yd[d] = pick[rnd(15)]);
        if (n > 20000) continue;
        int nin = 1 + rnd(3), rk[3];
        int64_t dd[3][8];
        for (int j = 0; j < nin; j++) { // the same, a scalar, leading dims dropped, dims set to 1
            int mode = rnd(5);
            rk[j] = mode == 1 ? 0 : mode == 2 && R ? rnd(R + 1) : R;
            for (int d = 0; d < rk[j]; d++) dd[j][d] = yd[R - rk[j] + d];
            if (mode >= 3)
                for (int d = 0; d < rk[j]; d++)
                    if (rnd(2)) dd[j][d] = 1;
        }
        kc_fe_prog p;
        memset(&p, 0, sizeof p);
        p.n_in = nin;
        coalesce(R, yd, nin, rk, dd, &p.s);
        for (int j = 0; j < nin; j++) p.in[j] = buf;
        for (int V : vs) {
            kc_fe_geo g;
            memset(&g, 0, sizeof g);
            if (!fe_geo_make(&p, V, 2, buf, n, &g)) continue;
            fast[V]++;
            checked++;
            for (int j = 0; j < nin; j++)
                for (int64_t i = 0; i < n; i++) {
                    int64_t got = fe_off(g, j, (uint32_t)i), want = ref_off(p.s, j, i);
                    int64_t i0 = i / V * V, first = fe_off(g, j, (uint32_t)i0);
                    bool group = n - i0 < V || (g.mode[j] == FE_LD_VEC ? got == first + (i - i0)
                                                                       : got == first);
                    if (got == want && group) continue;
                    if (bad++ < 5)
                        printf("FAIL case %d V %d input %d element %lld: offset %lld, expected "
                               "%lld%s\n", it, V, j, (long long)i, (long long)got,
                               (long long)want, group ? "" : " (group not consecutive/constant)");
                    break;
                }
        }
    }
    printf("fe_geo_check: %d classifications (groups of 8: %d, 4: %d, 1: %d), %d failed\n",
           checked, fast[8], fast[4], fast[1], bad);
    return bad != 0;
}

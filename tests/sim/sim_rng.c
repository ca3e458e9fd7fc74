/* sim_rng.c — splitmix64; see sim_rng.h. */
#include "sim_rng.h"

uint64_t sim_mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

void sim_rng_seed(struct sim_rng *g, uint64_t seed)
{
    g->state = seed;
}

uint64_t sim_rng_next(struct sim_rng *g)
{
    g->state += 0x9e3779b97f4a7c15ULL;
    return sim_mix64(g->state);
}

uint64_t sim_rng_below(struct sim_rng *g, uint64_t n)
{
    /* The modulo bias is below 2^-40 for the small n used here. */
    return n == 0 ? 0 : sim_rng_next(g) % n;
}

uint64_t sim_rng_range(struct sim_rng *g, uint64_t lo, uint64_t hi)
{
    if (hi <= lo)
        return lo;
    return lo + sim_rng_below(g, hi - lo + 1);
}

bool sim_rng_chance(struct sim_rng *g, unsigned per_mille)
{
    if (per_mille == 0)
        return false;
    return sim_rng_below(g, 1000) < per_mille;
}

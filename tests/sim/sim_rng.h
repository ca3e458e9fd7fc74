/*
 * sim_rng.h — the simulator's only source of randomness.
 *
 * A splitmix64 generator.  Every random choice of a run (delays, drops,
 * faults, client operations, the cores' own seeds) is drawn from one of
 * these, so a run is a pure function of its seed and replays exactly.
 */
#ifndef SIM_RNG_H
#define SIM_RNG_H

#include <stdbool.h>
#include <stdint.h>

struct sim_rng {
    uint64_t state;
};

/* Start the sequence for `seed`; any value, including 0, is valid. */
void sim_rng_seed(struct sim_rng *g, uint64_t seed);

/* Next 64 uniformly distributed bits. */
uint64_t sim_rng_next(struct sim_rng *g);

/* Uniform in [0, n); returns 0 when n is 0. */
uint64_t sim_rng_below(struct sim_rng *g, uint64_t n);

/* Uniform in [lo, hi]; returns lo when hi <= lo. */
uint64_t sim_rng_range(struct sim_rng *g, uint64_t lo, uint64_t hi);

/* True with probability per_mille / 1000 (0 never, >= 1000 always). */
bool sim_rng_chance(struct sim_rng *g, unsigned per_mille);

/* The splitmix64 finaliser: a cheap, well-mixing 64-bit bijection, used to
 * derive independent seeds and to hash. */
uint64_t sim_mix64(uint64_t x);

#endif /* SIM_RNG_H */

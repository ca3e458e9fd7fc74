/*
 * sim_run.h — one randomized simulation run.
 *
 * A run derives its parameters from (seed, nodes), then goes through two
 * phases.  Fault phase: clients issue operations while nodes crash (also
 * inside ready handling), restart, get partitioned (symmetric and one-way),
 * lose, duplicate and reorder messages, and leaders are asked to hand over.
 * Heal phase: every link is restored, loss stops, crashed nodes restart,
 * and a fresh proposal must commit on every node within
 * recover_bound_ticks.  Safety invariants are checked after every event,
 * the full log matching and the linearizability of the client history at
 * the end.
 */
#ifndef SIM_RUN_H
#define SIM_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim.h"

/* The parameters of run (seed, n_nodes). */
void sim_params_for_seed(uint64_t seed, unsigned n_nodes,
                         struct sim_params *p);

/* Run one seed.  Returns 0 when every check passed, -1 otherwise with the
 * first failure in msg.  *stats receives the run's figures either way.
 * With trace set, every event is printed to stdout. */
int sim_run(uint64_t seed, unsigned n_nodes, bool trace,
            struct sim_stats *stats, char *msg, size_t msg_len);

#endif /* SIM_RUN_H */

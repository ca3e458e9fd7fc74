/*
 * sim_workload.h — simulated clients and the outcome of their operations.
 *
 * Each client runs one operation at a time, PUT or GET on a random key,
 * against the node it believes leads; it retries elsewhere while the node
 * refuses (not leader, transferring, busy) and gives up after a timeout.
 * Once a node accepted an operation it is never retried, so every PUT value
 * can be applied at most once.  Outcomes come back from sim_cluster.c as
 * the nodes apply entries and serve reads.
 */
#ifndef SIM_WORKLOAD_H
#define SIM_WORKLOAD_H

#include "sim.h"

/* Aux value of a SIM_EV_CLIENT event that starts a new operation. */
#define SIM_CLIENT_NEW UINT64_MAX

/* Start the clients: each schedules its first operation. */
void sim_clients_start(struct sim *s);

/* SIM_EV_CLIENT: start a new operation or retry op `aux`. */
void sim_client_event(struct sim *s, unsigned client, uint64_t aux);

/* SIM_EV_CLIENT_TIMEOUT: the client stops waiting for op `op`. */
void sim_client_timeout(struct sim *s, unsigned client, size_t op);

/* Outcomes of op `op`; each is ignored unless the op is still pending.
 * done: completed, with `value` read for a GET.  unknown: a PUT that may
 * or may not take effect.  dropped: certainly without effect. */
void sim_op_done(struct sim *s, size_t op, uint64_t value);
void sim_op_unknown(struct sim *s, size_t op);
void sim_op_dropped(struct sim *s, size_t op);

#endif /* SIM_WORKLOAD_H */

/*
 * sim_cluster.h — the simulated nodes: start, crash, ready handling,
 * message delivery and per-step observation.
 *
 * These functions are the only code that calls into the Raft core.  After
 * every input to a node they drain its ready batches, following raft.h's
 * protocol and the crash model of sim_disk.h, and report everything they
 * see to the invariant checker.  Failures land in s->inv (sim_failed()).
 */
#ifndef SIM_CLUSTER_H
#define SIM_CLUSTER_H

#include "sim.h"

/* Set up a run: all nodes started from empty disks.  In manual mode no
 * event is ever scheduled and sent messages go to s->outbox.  Returns 0,
 * or -1 with the reason in s->inv.msg. */
int sim_init(struct sim *s, uint64_t seed, const struct sim_params *p,
             bool trace, bool manual);

/* Release everything the run holds (nodes, queued messages, outbox). */
void sim_free(struct sim *s);

bool sim_failed(const struct sim *s);

/* Schedule an event `delay` time units from now; takes ownership of x. */
void sim_schedule(struct sim *s, uint64_t delay, uint8_t type, raft_id node,
                  uint64_t aux, struct sim_xfer *x);

/* (Re)start node id from its disk: a new incarnation.  No-op if it is up. */
void sim_node_start(struct sim *s, raft_id id);

/* Crash node id: its struct raft and all volatile state are dropped, its
 * clients' pending operations end (PUTs unknown, GETs dropped).  Outside
 * manual mode a restart is scheduled. */
void sim_node_crash(struct sim *s, raft_id id, const char *why);

bool sim_node_up(const struct sim *s, raft_id id);

/* Drain node id's ready batches. */
void sim_node_process(struct sim *s, raft_id id);

/* Hand x to its destination now (takes ownership): the node steps the
 * message, a snapshot's data is staged first and the sender is told of
 * the outcome.  A crashed destination loses the message. */
void sim_deliver(struct sim *s, struct sim_xfer *x);

/* The transport gave up on snapshot transfer x (takes ownership). */
void sim_snapshot_failed(struct sim *s, struct sim_xfer *x);

/* Per-step checks on every live node's status: election safety, leader
 * completeness for new leaders, commit index monotonic. */
void sim_observe(struct sim *s);

/* Log matching over the whole overlap of every pair of durable logs. */
void sim_check_all_logs(struct sim *s);

/* The node leading the highest term among live nodes, or RAFT_NONE. */
raft_id sim_leader(const struct sim *s);

#endif /* SIM_CLUSTER_H */

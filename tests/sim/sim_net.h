/*
 * sim_net.h — the simulated network: links, loss, duplication, delay.
 *
 * Messages captured from a ready batch are deep-copied into a struct
 * sim_xfer (ready memory is only valid until raft_advance()).  A snapshot
 * message travels with a copy of the sender's snapshot data, as the real
 * transport streams the LMDB copy before the follower steps the message.
 *
 * Time is in the simulator's logical units (SIM_TIME_PER_TICK per tick).
 */
#ifndef SIM_NET_H
#define SIM_NET_H

#include <stdbool.h>
#include <stdint.h>

#include "raft.h"
#include "sim_kv.h"
#include "sim_rng.h"

struct sim_xfer {
    struct raft_msg *m;       /* one allocation with its entries and data */
    bool has_kv;              /* a snapshot message carries its data */
    struct sim_kv kv;
    unsigned from_incarnation; /* sender's incarnation when sent */
};

/* Deep copy of m (entries and their data) in a single block that free()
 * releases.  NULL when memory runs out. */
struct raft_msg *sim_msg_clone(const struct raft_msg *m);

/* A new transfer owning a clone of m and, if kv is not NULL, a copy of it.
 * NULL when memory runs out. */
struct sim_xfer *sim_xfer_new(const struct raft_msg *m, const struct sim_kv *kv,
                              unsigned from_incarnation);
void sim_xfer_free(struct sim_xfer *x);

struct sim_net {
    unsigned n_nodes;
    bool cut[RAFT_MAX_NODES + 1][RAFT_MAX_NODES + 1]; /* [from][to] */
    unsigned drop_pm;      /* per-mille chance a message is lost */
    unsigned dup_pm;       /* per-mille chance it is delivered twice */
    unsigned reorder_pm;   /* per-mille chance of a long extra delay */
    unsigned delay_min;    /* normal delay bounds, logical time units */
    unsigned delay_max;
    unsigned reorder_max;  /* extra delay bound for reordered messages */
};

/* All links up, no loss, no duplication; delays of 1-10 time units. */
void sim_net_init(struct sim_net *net, unsigned n_nodes);

/* Restore every link and stop loss and duplication (delays unchanged). */
void sim_net_heal(struct sim_net *net);

bool sim_net_up(const struct sim_net *net, raft_id from, raft_id to);

/* Delay for one message copy. */
uint64_t sim_net_delay(const struct sim_net *net, struct sim_rng *g);

/* Number of copies the network delivers: 0 (lost or link cut), 1 or 2. */
unsigned sim_net_copies(const struct sim_net *net, struct sim_rng *g,
                        raft_id from, raft_id to);

/* Split the nodes into two random sides, cutting links both ways. */
void sim_net_partition(struct sim_net *net, struct sim_rng *g);

/* Cut all links to and from one node. */
void sim_net_isolate(struct sim_net *net, raft_id id);

/* Cut a random one-way link. */
void sim_net_cut_one_way(struct sim_net *net, struct sim_rng *g);

#endif /* SIM_NET_H */

/*
 * sim.h — the state of one deterministic simulation run.
 *
 * A run is a cluster of nodes (a struct raft each, over a struct sim_disk),
 * a simulated network, clients and a fault schedule, all driven by one
 * event queue and one seeded generator.  Nothing reads a clock or does I/O
 * (except the optional trace on stdout), so (seed, parameters) determines
 * the run completely.
 *
 * In "manual" mode (scripted scenarios) nothing is scheduled: messages a
 * node sends collect in the outbox, and the script decides what to deliver.
 */
#ifndef SIM_H
#define SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "history.h"
#include "invariants.h"
#include "raft.h"
#include "sim_disk.h"
#include "sim_net.h"
#include "sim_queue.h"
#include "sim_rng.h"

#define SIM_TIME_PER_TICK 10u
#define SIM_MAX_CLIENTS 4

enum sim_ev_type {
    SIM_EV_TICK = 1,     /* node ticks, then schedules its next tick */
    SIM_EV_MSG,          /* xfer arrives at its destination */
    SIM_EV_SNAP_FAIL,    /* transport gave up streaming xfer's snapshot */
    SIM_EV_CLIENT,       /* client `node` acts on op aux (or a new op) */
    SIM_EV_CLIENT_TIMEOUT, /* client `node` gives up op aux */
    SIM_EV_FAULT,        /* inject a random fault */
    SIM_EV_RESTART,      /* node restarts from its disk */
    SIM_EV_HEAL,         /* end of the fault phase */
    SIM_EV_PROBE         /* liveness probe step */
};

/* Everything about a run that is chosen up front (from the seed). */
struct sim_params {
    unsigned n_nodes;
    unsigned election_tick;
    unsigned heartbeat_tick;
    unsigned max_inflight;
    size_t max_msg_bytes;
    bool pre_vote;
    bool check_quorum;
    unsigned compact_every;    /* entries applied between snapshots; 0 never */
    unsigned fault_ticks;      /* length of the fault phase */
    unsigned fault_gap_max;    /* at most this many ticks between faults */
    unsigned ready_crash_pm;   /* per-mille chance to crash inside a ready */
    unsigned n_clients;
    unsigned n_keys;           /* client keys 1..n_keys (< SIM_KV_KEYS) */
    unsigned ops_per_key;
    unsigned client_timeout_ticks;
    unsigned recover_bound_ticks; /* liveness bound after healing */
};

struct sim_stats {
    uint64_t ops;            /* client operations invoked */
    uint64_t ops_checked;    /* operations the linearizability check used */
    uint64_t elections;      /* distinct (term, leader) pairs */
    uint64_t snapshots_sent; /* snapshot transfers started */
    uint64_t crashes;        /* node crashes, including inside a ready */
    uint64_t recover_ticks;  /* ticks from heal to a commit on every node */
    uint64_t steps;          /* events processed */
};

/* A client PUT waiting for its entry to be applied at the proposing node. */
struct sim_prop {
    size_t op;
    raft_index index;
    raft_term term;
};

/* A client GET waiting for its read state, then for the applied index. */
struct sim_read {
    size_t op;
    bool ready;
    raft_index index;
    raft_index floor;  /* highest index applied anywhere when requested */
};

struct sim_node {
    raft_id id;
    struct raft *r;            /* NULL while crashed */
    struct sim_disk disk;      /* survives crashes */
    unsigned incarnation;      /* starts at 1, +1 per restart */
    uint64_t tick_phase;       /* offset of this node's ticks */
    uint64_t tick_period;      /* clock skew: time units per tick */
    /* what the simulator last observed of the live incarnation */
    enum raft_role role;
    raft_term term;
    raft_index commit;
    uint64_t leader_since;     /* step it was first seen leading `term` */
    /* client work, volatile */
    struct sim_prop *props;
    size_t n_props, cap_props;
    struct sim_read *reads;
    size_t n_reads, cap_reads;
    /* snapshot data streamed by the transport, awaiting install */
    bool has_snap_in;
    struct raft_snapshot_meta snap_in_meta;
    struct sim_kv snap_in_kv;
};

struct sim_client {
    bool busy;
    size_t op;                 /* current op when busy */
    bool proposed;             /* a node accepted the current op */
    raft_id target;            /* node the client believes leads */
};

struct sim {
    uint64_t seed;
    struct sim_params p;
    struct sim_rng rng;
    bool trace;
    bool manual;
    bool faults_on;            /* fault phase: crashes inside readies etc. */
    bool clients_on;           /* clients start new operations */
    uint64_t now;              /* logical time */
    uint64_t step;             /* events processed so far */
    struct sim_queue q;
    struct sim_net net;
    struct sim_node nodes[RAFT_MAX_NODES + 1]; /* by id, 1..n_nodes */
    struct sim_inv inv;
    struct sim_history hist;
    struct sim_client clients[SIM_MAX_CLIENTS];
    unsigned key_ops[SIM_KV_KEYS]; /* ops invoked per key */
    uint64_t next_value;       /* next unique PUT value */
    struct sim_xfer **outbox;  /* manual mode */
    size_t n_outbox, cap_outbox;
    struct sim_stats stats;
};

#endif /* SIM_H */

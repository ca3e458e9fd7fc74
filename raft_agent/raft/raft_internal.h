/*
 * raft_internal.h — the node's state, shared by the core's files only.
 */
#ifndef RAFT_INTERNAL_H
#define RAFT_INTERNAL_H

#include "raft.h"
#include "raft_arena.h"
#include "raft_log.h"

/* How the leader replicates to one follower (etcd's progress states). */
enum raft_pr_state {
    RAFT_PR_PROBE = 0,  /* one APPEND at a time until the match is found */
    RAFT_PR_REPLICATE,  /* pipelined, up to max_inflight messages */
    RAFT_PR_SNAPSHOT    /* waiting for a snapshot to be installed */
};

#define RAFT_MAX_INFLIGHT 1024

struct raft_progress {
    raft_id id;
    raft_index match;
    raft_index next;
    enum raft_pr_state state;
    bool probe_sent;           /* PROBE: an APPEND is outstanding */
    bool recent_active;        /* heard from since the last quorum check */
    raft_index pending_snapshot;
    /* ring of the last index carried by each in-flight APPEND */
    raft_index *inflight;
    unsigned infl_start;
    unsigned infl_count;
};

/* A linearizable read waiting for a heartbeat quorum. */
struct raft_pending_read {
    uint64_t ctx;
    uint64_t seq;       /* heartbeat round that confirms it */
    raft_index index;   /* commit index when the read arrived */
    uint32_t acks;      /* bit per peer slot */
};

struct raft_vec {
    void *p;
    size_t n;
    size_t cap;
};

struct raft {
    struct raft_config cfg;
    struct raft_log log;
    struct raft_arena arena;

    enum raft_role role;
    raft_term term;
    raft_id vote;
    raft_id leader;

    unsigned elapsed;          /* ticks since last reset */
    unsigned heartbeat_elapsed;
    unsigned randomized_timeout;
    uint64_t rng;

    struct raft_progress prs[RAFT_MAX_NODES]; /* index = slot of peer */
    unsigned self_slot;
    uint32_t votes_granted;    /* bit per slot */
    uint32_t votes_rejected;

    raft_id transferee;
    unsigned transfer_elapsed;

    size_t uncommitted_bytes;
    bool pending_bcast;        /* proposals not yet sent to followers */

    /* ReadIndex */
    uint64_t read_seq;
    struct raft_vec reads_pending;  /* struct raft_pending_read */
    struct raft_vec reads_waiting;  /* uint64_t ctx: before first commit */
    struct raft_vec reads_ready;    /* struct raft_read_state */
    struct raft_vec reads_failed;   /* struct raft_read_fail */

    struct raft_vec msgs;           /* struct raft_msg; entries in arena */

    struct raft_hard_state prev_hs; /* last hard state handed out */
    struct raft_ready ready;
    bool ready_taken;
    raft_index ready_last_entry;    /* last index in ready.entries, or 0 */
    raft_index ready_applied;       /* last index in ready.committed */
    bool ready_snapshot;
    struct raft_snapshot_meta ready_snap;
};

/* raft_vec.c */
void *raft_vec_push(struct raft_vec *v, size_t elem);
void raft_vec_free(struct raft_vec *v);

/* raft_progress.c */
int raft_progress_init(struct raft_progress *pr, raft_id id,
                       unsigned max_inflight);
void raft_progress_free(struct raft_progress *pr);
void raft_progress_reset(struct raft_progress *pr, raft_index next);
void raft_progress_become_probe(struct raft_progress *pr);
void raft_progress_become_replicate(struct raft_progress *pr);
void raft_progress_become_snapshot(struct raft_progress *pr,
                                   raft_index snap_index);
bool raft_progress_maybe_update(struct raft_progress *pr, raft_index n);
bool raft_progress_maybe_decr(struct raft_progress *pr, raft_index rejected,
                              raft_index probe_hint);
bool raft_progress_paused(const struct raft_progress *pr, unsigned max);
void raft_progress_sent(struct raft_progress *pr, raft_index last,
                        unsigned n_entries, unsigned max);
void raft_progress_free_le(struct raft_progress *pr, raft_index index,
                           unsigned max);

/* raft.c helpers used by raft_ready.c */
unsigned raft_quorum(const struct raft *r);
void raft_maybe_commit_and_broadcast(struct raft *r);
void raft_flush_proposals(struct raft *r);
int raft_ready_build(struct raft *r);
void raft_ready_clear(struct raft *r);

#endif /* RAFT_INTERNAL_H */

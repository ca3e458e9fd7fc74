/*
 * invariants.h — the Raft safety properties, checked as the run goes.
 *
 * The simulator reports what it observes (leaders, votes, appended and
 * applied entries, installed snapshots) and these functions compare it with
 * everything recorded earlier in the run.  The first violation is kept in
 * inv->msg and inv->failed is set; later reports are ignored, so the message
 * always names the first thing that went wrong.  Every check function
 * returns 0 when the property holds and -1 otherwise.
 *
 * "Committed" here means: handed to some node's state machine in a ready's
 * committed list.  The committed map (index -> term, content hash, KV digest
 * after applying, and the step it was first applied at) is the run's ground
 * truth for state machine safety and leader completeness.
 */
#ifndef SIM_INVARIANTS_H
#define SIM_INVARIANTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft.h"
#include "sim_disk.h"

struct sim_inv_term {
    raft_id leader;                     /* RAFT_NONE if none seen */
    raft_id vote[RAFT_MAX_NODES + 1];   /* granted vote of each voter */
};

struct sim_inv_commit {
    bool set;
    raft_term term;
    uint64_t hash;    /* sim_entry_hash of the entry */
    uint64_t digest;  /* sim_kv_digest after applying it */
    uint64_t step;    /* step at which it was first applied */
    raft_id by;       /* first node that applied it */
};

struct sim_inv_slot {
    uint64_t value;   /* 0: empty */
    raft_index index;
};

struct sim_inv {
    bool failed;
    char msg[1024];
    struct sim_inv_term *terms;   /* indexed by term */
    size_t n_terms;
    struct sim_inv_commit *committed; /* indexed by raft index */
    size_t cap_committed;
    raft_index max_committed;
    struct sim_inv_slot *values;  /* open addressing: written value -> index */
    size_t cap_values;
    size_t n_values;
    uint64_t elections;           /* distinct (term, leader) pairs seen */
};

void sim_inv_init(struct sim_inv *inv);
void sim_inv_free(struct sim_inv *inv);

/* Record a failure (only the first one is kept).  Always returns -1. */
int sim_inv_fail(struct sim_inv *inv, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Election safety: `id` acts as leader of `term` (seen in its status or in
 * a leader-only message, described by `how`).  At most one per term. */
int sim_inv_leader(struct sim_inv *inv, raft_term term, raft_id id,
                   const char *how);

/* A voter granted its vote to candidate in term: at most once per term,
 * across crashes. */
int sim_inv_vote(struct sim_inv *inv, raft_term term, raft_id voter,
                 raft_id candidate);

/* State machine safety: node applied e (content hash `hash`) and its KV map
 * then has digest `digest`.  Every node must apply the same entry at an
 * index and reach the same map; a written value is applied at one index
 * only. `value` is the PUT's value, 0 for a no-op. */
int sim_inv_applied(struct sim_inv *inv, raft_id node,
                    const struct raft_entry *e, uint64_t hash,
                    uint64_t value, uint64_t digest, uint64_t step);

/* node installed a snapshot at meta with KV digest `digest`: it must match
 * the committed entry and map recorded at meta->index. */
int sim_inv_snapshot(struct sim_inv *inv, raft_id node,
                     const struct raft_snapshot_meta *meta, uint64_t digest);

/* node is about to durably append e[0..n) to its log d, which deletes
 * every stored entry from e[0].index on: no stored entry that matches the
 * committed record may be deleted or replaced by a different one.  (A
 * stale log may still receive a divergent entry at a committed index; that
 * is harmless as long as it is never applied, which sim_inv_applied
 * checks.) */
int sim_inv_append(struct sim_inv *inv, raft_id node,
                   const struct sim_disk *d, const struct raft_entry *e,
                   size_t n);

/* Leader completeness: node, leader of term since step `since`, must hold
 * in its durable log (or cover by its snapshot) every entry committed
 * before `since`. */
int sim_inv_leader_complete(struct sim_inv *inv, raft_id node,
                            raft_term term, const struct sim_disk *d,
                            uint64_t since);

/* Log matching between two durable logs: if both hold an entry with the
 * same index and term, the entries and all preceding ones are identical.
 * window 0 checks the whole overlap; otherwise only the `window` highest
 * indexes of the overlap are searched and compared. */
int sim_inv_log_matching(struct sim_inv *inv, raft_id ida,
                         const struct sim_disk *a, raft_id idb,
                         const struct sim_disk *b, raft_index window);

/* The committed record at index, or NULL if nothing was applied there. */
const struct sim_inv_commit *sim_inv_committed(const struct sim_inv *inv,
                                               raft_index index);

#endif /* SIM_INVARIANTS_H */

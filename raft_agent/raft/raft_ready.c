/*
 * raft_ready.c — handing output to the caller in ready batches and taking
 * back the acknowledgement (raft_advance).  See raft.h for the protocol.
 */
#include "raft_internal.h"

#include <string.h>

/* Committed entries handed out per batch; bounded so that one batch cannot
 * hold the whole log in memory after a long outage. */
#define RAFT_MAX_APPLY_BYTES (16u << 20)
/* Stable entries kept in memory for replication and apply. */
#define RAFT_WINDOW_CACHE_BYTES (64u << 20)

static struct raft_hard_state current_hs(const struct raft *r)
{
    struct raft_hard_state hs = {
        .term = r->term, .vote = r->vote, .commit = r->log.committed};
    return hs;
}

static bool hs_equal(const struct raft_hard_state *a,
                     const struct raft_hard_state *b)
{
    return a->term == b->term && a->vote == b->vote && a->commit == b->commit;
}

bool raft_has_ready(const struct raft *r)
{
    if (r->ready_taken)
        return false;
    struct raft_hard_state hs = current_hs(r);
    return (r->pending_bcast && r->role == RAFT_LEADER) || r->msgs.n > 0 ||
           r->log.unstable <= raft_log_last(&r->log) ||
           !hs_equal(&hs, &r->prev_hs) || r->log.committed > r->log.applied ||
           r->reads_ready.n > 0 || r->reads_failed.n > 0 || r->ready_snapshot;
}

const struct raft_ready *raft_ready(struct raft *r)
{
    if (r->ready_taken)
        return NULL;
    raft_flush_proposals(r);

    struct raft_ready *rd = &r->ready;
    memset(rd, 0, sizeof(*rd));
    rd->hard_state = current_hs(r);
    rd->hard_state_changed = !hs_equal(&rd->hard_state, &r->prev_hs);
    if (r->ready_snapshot)
        rd->snapshot = &r->ready_snap;

    raft_index last = raft_log_last(&r->log);
    r->ready_last_entry = 0;
    if (r->log.unstable <= last) {
        /* Invariant: every unstable entry is in the window. */
        rd->entries = &r->log.win[r->log.unstable - r->log.win_first];
        rd->n_entries = (size_t)(last - r->log.unstable + 1);
        r->ready_last_entry = last;
    }

    r->ready_applied = r->log.applied;
    if (r->log.committed > r->log.applied) {
        struct raft_entry_sink sink = {.arena = &r->arena};
        int rv = raft_log_entries(&r->log, r->log.applied + 1,
                                  r->log.committed + 1, RAFT_MAX_APPLY_BYTES,
                                  &sink);
        if (rv != RAFT_OK)
            return NULL;
        rd->committed = sink.ents;
        rd->n_committed = sink.n;
        r->ready_applied = r->log.applied + sink.n;
    }

    rd->msgs = r->msgs.p;
    rd->n_msgs = r->msgs.n;
    rd->reads = r->reads_ready.p;
    rd->n_reads = r->reads_ready.n;
    rd->read_fails = r->reads_failed.p;
    rd->n_read_fails = r->reads_failed.n;
    r->ready_taken = true;
    return rd;
}

int raft_advance(struct raft *r)
{
    if (!r->ready_taken)
        return RAFT_ERR_INVALID;
    const struct raft_ready *rd = &r->ready;

    if (rd->snapshot != NULL)
        r->ready_snapshot = false;
    if (rd->hard_state_changed)
        r->prev_hs = rd->hard_state;
    r->log.applied = r->ready_applied;

    r->msgs.n = 0;
    r->reads_ready.n = 0;
    r->reads_failed.n = 0;
    raft_arena_reset(&r->arena);
    memset(&r->ready, 0, sizeof(r->ready));
    r->ready_taken = false;

    if (r->ready_last_entry != 0) {
        raft_log_stable_to(&r->log, r->ready_last_entry);
        if (r->role == RAFT_LEADER &&
            r->prs[r->self_slot].match < r->ready_last_entry) {
            /* Our own copy is durable only now: count it. */
            r->prs[r->self_slot].match = r->ready_last_entry;
            raft_maybe_commit_and_broadcast(r);
        }
        r->ready_last_entry = 0;
    }

    /* Keep in memory what slow followers still need, within a budget. */
    raft_index keep = r->log.applied + 1;
    if (r->role == RAFT_LEADER) {
        for (unsigned i = 0; i < r->cfg.n_peers; i++)
            if (i != r->self_slot && r->prs[i].match + 1 < keep)
                keep = r->prs[i].match + 1;
    }
    raft_log_trim(&r->log, keep, RAFT_WINDOW_CACHE_BYTES);
    return RAFT_OK;
}

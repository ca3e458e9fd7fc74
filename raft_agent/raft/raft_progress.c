/*
 * raft_progress.c — the leader's replication state for one follower.
 *
 * PROBE sends one APPEND and waits for the answer, walking next_index back
 * with the follower's hint on rejection; REPLICATE advances next_index
 * optimistically and keeps up to max_inflight APPENDs on the wire (the ring
 * records the last index of each, freed as acknowledgements arrive);
 * SNAPSHOT sends nothing until the transport reports the snapshot outcome.
 */
#include "raft_internal.h"

#include <stdlib.h>

int raft_progress_init(struct raft_progress *pr, raft_id id,
                       unsigned max_inflight)
{
    pr->id = id;
    pr->inflight = calloc(max_inflight, sizeof(*pr->inflight));
    return pr->inflight == NULL ? RAFT_ERR_NOMEM : RAFT_OK;
}

void raft_progress_free(struct raft_progress *pr)
{
    free(pr->inflight);
    pr->inflight = NULL;
}

void raft_progress_reset(struct raft_progress *pr, raft_index next)
{
    pr->match = 0;
    pr->next = next;
    pr->state = RAFT_PR_PROBE;
    pr->probe_sent = false;
    pr->recent_active = false;
    pr->pending_snapshot = 0;
    pr->infl_start = 0;
    pr->infl_count = 0;
}

static void reset_state(struct raft_progress *pr, enum raft_pr_state s)
{
    pr->state = s;
    pr->probe_sent = false;
    pr->pending_snapshot = 0;
    pr->infl_start = 0;
    pr->infl_count = 0;
}

void raft_progress_become_probe(struct raft_progress *pr)
{
    if (pr->state == RAFT_PR_SNAPSHOT) {
        /* Resume right after the snapshot the follower (probably) has. */
        raft_index after = pr->pending_snapshot + 1;
        reset_state(pr, RAFT_PR_PROBE);
        pr->next = pr->match + 1 > after ? pr->match + 1 : after;
    } else {
        reset_state(pr, RAFT_PR_PROBE);
        pr->next = pr->match + 1;
    }
}

void raft_progress_become_replicate(struct raft_progress *pr)
{
    reset_state(pr, RAFT_PR_REPLICATE);
    pr->next = pr->match + 1;
}

void raft_progress_become_snapshot(struct raft_progress *pr,
                                   raft_index snap_index)
{
    reset_state(pr, RAFT_PR_SNAPSHOT);
    pr->pending_snapshot = snap_index;
}

/* The follower acknowledged entries up to n.  Returns true when that is
 * news (match moved). */
bool raft_progress_maybe_update(struct raft_progress *pr, raft_index n)
{
    bool updated = false;
    if (pr->match < n) {
        pr->match = n;
        updated = true;
        pr->probe_sent = false;
    }
    if (pr->next < n + 1)
        pr->next = n + 1;
    return updated;
}

/* The follower rejected an APPEND whose previous index was `rejected`.
 * Returns false when the rejection is stale and must be ignored. */
bool raft_progress_maybe_decr(struct raft_progress *pr, raft_index rejected,
                              raft_index probe_hint)
{
    if (pr->state == RAFT_PR_REPLICATE) {
        if (rejected <= pr->match)
            return false;
        /* Pipelined entries after the mismatch are lost anyway. */
        pr->next = pr->match + 1;
        return true;
    }
    if (pr->next == 0 || pr->next - 1 != rejected)
        return false;
    raft_index n = rejected < probe_hint + 1 ? rejected : probe_hint + 1;
    pr->next = n > pr->match + 1 ? n : pr->match + 1;
    pr->probe_sent = false;
    return true;
}

bool raft_progress_paused(const struct raft_progress *pr, unsigned max)
{
    switch (pr->state) {
    case RAFT_PR_PROBE:
        return pr->probe_sent;
    case RAFT_PR_REPLICATE:
        return pr->infl_count >= max;
    case RAFT_PR_SNAPSHOT:
    default:
        return true;
    }
}

void raft_progress_sent(struct raft_progress *pr, raft_index last,
                        unsigned n_entries, unsigned max)
{
    if (pr->state == RAFT_PR_REPLICATE) {
        if (n_entries > 0) {
            pr->next = last + 1;
            unsigned pos = (pr->infl_start + pr->infl_count) % max;
            pr->inflight[pos] = last;
            pr->infl_count++;
        }
    } else if (pr->state == RAFT_PR_PROBE) {
        pr->probe_sent = true;
    }
}

void raft_progress_free_le(struct raft_progress *pr, raft_index index,
                           unsigned max)
{
    while (pr->infl_count > 0 && pr->inflight[pr->infl_start] <= index) {
        pr->infl_start = (pr->infl_start + 1) % max;
        pr->infl_count--;
    }
}

/*
 * compaction.h — how far a replica compacts its log (node.c).
 *
 * Past snapshot_threshold applied entries, a replica keeps the most recent
 * half of them and drops the rest (a snapshot stands for them).  A leader
 * keeps more while followers need them: entries after the match of every
 * follower still in touch, so that a follower a little behind catches up
 * from the log, and entries after the snapshot it is streaming, so that
 * the follower installing it can go on from there.  Without that, a write
 * rate that outruns a transfer made the leader compact past the snapshot
 * while it was sent, the follower needed another one as soon as it had
 * installed it, and so on: it never rejoined.  The same holds from the
 * moment the follower has the whole file until its match shows the
 * install (installing).  What a leader keeps for
 * followers is bounded (COMPACTION_KEEP_MAX thresholds), so one that stays
 * slow cannot make the log grow without end: past that it gets a snapshot.
 *
 * Pure: the caller passes what the core and the snapshot sender know.
 */
#ifndef AGENDA_COMPACTION_H
#define AGENDA_COMPACTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft.h"

/* At most this many thresholds of applied entries are kept for
 * followers. */
#define COMPACTION_KEEP_MAX 4

struct compaction_peer {
    raft_index match;   /* what the follower is known to hold (0: none
                         * known, and then it is not counted) */
    bool active;        /* heard from recently */
    bool snapshotting;  /* being sent a snapshot (see streaming) */
    raft_index installing; /* a snapshot the follower has received whole
                            * and not yet shown to hold (match below it):
                            * it goes on from there once installed; 0:
                            * none */
};

/*
 * The first index to keep, given the applied index, the log's first
 * index, the threshold, the followers (n 0 on a follower) and the index
 * of the snapshot being streamed (0: none); 0 when nothing is to be
 * compacted now.
 */
raft_index agenda_compaction_upto(raft_index applied, raft_index first,
                                  uint64_t threshold,
                                  const struct compaction_peer *peers,
                                  size_t n, raft_index streaming);

#endif /* AGENDA_COMPACTION_H */

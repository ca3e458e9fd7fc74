/* compaction.c — how far a replica compacts its log; see compaction.h. */
#include "compaction.h"

raft_index agenda_compaction_upto(raft_index applied, raft_index first,
                                  uint64_t threshold,
                                  const struct compaction_peer *peers,
                                  size_t n, raft_index streaming)
{
    if (threshold == 0 || applied < first || applied - first < threshold)
        return 0;
    /* the most recent half, so a briefly slow follower catches up from
     * the log rather than with a snapshot */
    raft_index upto = applied + 1 - threshold / 2;
    raft_index need = upto;
    /* a follower that never acknowledged anything (match 0) is not one
     * in touch, whatever the core's recent_active says: a new leader
     * counts every peer active until its first check, and a replica that
     * never started would keep the whole log */
    for (size_t i = 0; i < n; i++) {
        if (peers[i].active && !peers[i].snapshotting &&
            peers[i].match > 0 && peers[i].match + 1 < need)
            need = peers[i].match + 1;
        if (peers[i].installing > peers[i].match &&
            peers[i].installing + 1 < need)
            need = peers[i].installing + 1;
    }
    if (streaming != 0 && streaming + 1 < need)
        need = streaming + 1;
    if (need < upto) {
        raft_index floor = applied + 1 > COMPACTION_KEEP_MAX * threshold
                               ? applied + 1 - COMPACTION_KEEP_MAX * threshold
                               : 0;
        upto = need > floor ? need : floor;
    }
    return upto > first ? upto : 0;
}

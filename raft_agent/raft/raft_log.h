/*
 * raft_log.h — the core's view of the log (internal to the core).
 *
 * The log is: a snapshot (everything up to snap.index), the stable entries in
 * storage, and an in-memory window that always ends at the last index.  The
 * window holds the unstable entries (index >= unstable: not yet persisted) and
 * a cache of recent stable ones, so that a leader replicates fresh entries and
 * a node applies them without reading storage.  Entries below the window are
 * read through struct raft_storage.
 *
 * Each windowed entry owns a malloc'd copy of its data.  Between raft_ready()
 * and raft_advance() the window does not change (the caller may not feed the
 * core then), so pointers into it may be handed out in a ready batch.
 */
#ifndef RAFT_LOG_H
#define RAFT_LOG_H

#include "raft.h"

struct raft_log {
    const struct raft_storage *st;
    void *st_ctx;

    struct raft_snapshot_meta snap; /* compaction point */

    struct raft_entry *win;         /* window entries, data owned */
    size_t n_win;
    size_t cap_win;
    raft_index win_first;           /* index of win[0] when n_win > 0 */
    size_t win_bytes;               /* data bytes in the window */

    raft_index stable_last;         /* last index durable in storage */
    raft_index unstable;            /* first index not yet persisted */
    raft_index committed;
    raft_index applied;             /* highest index handed out to apply */
};

int raft_log_init(struct raft_log *l, const struct raft_storage *st,
                  void *ctx, raft_index applied);
void raft_log_free(struct raft_log *l);

raft_index raft_log_last(const struct raft_log *l);
raft_index raft_log_first(const struct raft_log *l); /* snap.index + 1 */
raft_term raft_log_last_term(const struct raft_log *l);

/* Term of entry i.  Returns RAFT_OK, RAFT_ERR_COMPACTED when i < snap.index,
 * RAFT_ERR_INVALID when i > last, or a storage error.  term(snap.index) is
 * the snapshot's term; term(0) is 0. */
int raft_log_term(const struct raft_log *l, raft_index i, raft_term *out);

/* True when entry i exists with term t (false on any error). */
bool raft_log_match(const struct raft_log *l, raft_index i, raft_term t);

/* Append entries after truncating the log at ents[0].index.  Copies data.
 * The caller guarantees ents[0].index in (committed, last + 1]. */
int raft_log_append(struct raft_log *l, const struct raft_entry *ents,
                    size_t n);

/* Index of the first entry of ents that is not already in the log with the
 * same term (0 if all match).  Entries must be contiguous. */
raft_index raft_log_find_conflict(const struct raft_log *l,
                                  const struct raft_entry *ents, size_t n);

/* Largest index <= index whose term is <= term (fast backtracking). */
raft_index raft_log_find_conflict_by_term(const struct raft_log *l,
                                          raft_index index, raft_term term);

/* True when (last_index, last_term) is at least as up to date as ours. */
bool raft_log_up_to_date(const struct raft_log *l, raft_index last_index,
                         raft_term last_term);

/* Copy entries lo..hi-1 (at most max_bytes of data, at least one entry)
 * into sink.  RAFT_ERR_COMPACTED when lo < first. */
int raft_log_entries(const struct raft_log *l, raft_index lo, raft_index hi,
                     size_t max_bytes, struct raft_entry_sink *sink);

/* Replace the whole log by a received snapshot. */
void raft_log_restore(struct raft_log *l, const struct raft_snapshot_meta *m);

/* Entries up to `index` are durable now. */
void raft_log_stable_to(struct raft_log *l, raft_index index);

/* Storage dropped entries before meta.index + 1. */
void raft_log_compacted(struct raft_log *l,
                        const struct raft_snapshot_meta *meta);

/* Drop stable cached entries below `keep_from` while the window holds more
 * than `max_bytes` of data, or all below min(keep_from, applied + 1). */
void raft_log_trim(struct raft_log *l, raft_index keep_from,
                   size_t max_bytes);

/* A sink that collects entries into an arena (raft_ready.c). */
struct raft_arena;
struct raft_entry_sink {
    struct raft_arena *arena;
    struct raft_entry *ents;
    size_t n;
    size_t cap;
    size_t bytes;
    size_t max_bytes;
    raft_index next; /* index expected next, for validation */
    int err;
};

#endif /* RAFT_LOG_H */

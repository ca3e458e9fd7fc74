/*
 * session_index.h — the in-memory index of remembered request ids: which
 * times a request id may be stored under in the time-ordered sessions
 * table (session.h).
 *
 * The table on disk is sorted by (time, request id), so remembering an id
 * appends at the end and forgetting one deletes at the start: sequential
 * pages, whatever the ids look like (random client keys included).  Finding
 * an id then needs this index: a multiset of (hash of the id, time) pairs
 * in an open-addressing table.
 *
 * Every row of the table has one pair here.  A pair may stand for another
 * id with the same hash, so every candidate time is checked against LMDB;
 * the index must never miss a row, or a retry would be applied twice.  So
 * additions take effect at once (a later command of the same transaction
 * must see them) and are taken back if the transaction aborts, and removals
 * wait until it commits: the caller reports each transaction's fate
 * (agenda_session_index_commit / _abort).  The hash is keyed per process,
 * so no client can choose ids that collide.
 */
#ifndef AGENDA_SESSION_INDEX_H
#define AGENDA_SESSION_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct agenda_session_slot {
    uint64_t hash; /* 0: empty (hashes are never 0) */
    uint64_t time;
};

/* What the current transaction did, to undo or to complete. */
struct agenda_session_change {
    uint64_t hash;
    uint64_t time;
    bool added; /* else a removal waiting for the commit */
};

struct agenda_session_index {
    struct agenda_session_slot *slots;
    size_t cap;     /* a power of two, or 0 */
    size_t count;
    uint64_t key[2];                           /* the hash's secret */
    struct agenda_session_change *changes;     /* of the current txn */
    size_t n_changes, cap_changes;
};

/* An empty index with a fresh secret.  Returns 0 or -1 (no randomness). */
int agenda_session_index_init(struct agenda_session_index *x);

/* Releases the memory.  The index may be initialised again. */
void agenda_session_index_free(struct agenda_session_index *x);

/* Forgets every pair and every pending change (the secret stays). */
void agenda_session_index_clear(struct agenda_session_index *x);

/* The keyed hash of a request id (never 0). */
uint64_t agenda_session_index_hash(const struct agenda_session_index *x,
                                   const void *id, size_t len);

/* Adds (hash, time) now; taken back if the transaction aborts.  Returns 0
 * or -1 (out of memory: nothing added). */
int agenda_session_index_add(struct agenda_session_index *x, uint64_t hash,
                             uint64_t time);

/* Adds the pair of a row already committed (rebuilding the index after
 * agenda_session_index_clear): not a change of the current transaction.
 * Returns 0 or -1 (out of memory). */
int agenda_session_index_load(struct agenda_session_index *x, uint64_t hash,
                              uint64_t time);

/* Removes one (hash, time) pair once the current transaction commits.
 * Returns 0 or -1 (out of memory). */
int agenda_session_index_remove_later(struct agenda_session_index *x,
                                      uint64_t hash, uint64_t time);

/* The transaction committed: carry out its removals. */
void agenda_session_index_commit(struct agenda_session_index *x);

/* The transaction aborted: take back its additions, drop its removals. */
void agenda_session_index_abort(struct agenda_session_index *x);

/*
 * Iterates over the times stored with hash: start with *pos = 0; each call
 * stores the next time in *time and returns 1, or returns 0 at the end.
 * The index must not change during the iteration.
 */
int agenda_session_index_next(const struct agenda_session_index *x,
                              uint64_t hash, size_t *pos, uint64_t *time);

/* Pairs held, and the memory of their table. */
size_t agenda_session_index_count(const struct agenda_session_index *x);
size_t agenda_session_index_bytes(const struct agenda_session_index *x);

#endif /* AGENDA_SESSION_INDEX_H */

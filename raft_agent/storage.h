/*
 * storage.h — the durable state of one raft_agent: an LMDB environment.
 *
 * One environment (a directory holding data.mdb and lock.mdb) per agent
 * holds both the Raft log and the state machine, so that a snapshot is
 * simply a compacted copy of the whole environment.  Named databases:
 *
 *   "log"   MDB_INTEGERKEY: native uint64 index -> term (u64 LE), type (u8),
 *           command bytes.  Holds first_index .. last_index, no gaps.
 *   "meta"  "version"    u32 LE format version (AGENDA_STORAGE_FORMAT)
 *           "hard_state" term u64, vote u32, commit u64 (LE)
 *           "snapshot"   index u64, term u64: what lies before first_index
 *           "applied"    index u64, term u64 of the state machine
 *   others  opened by the state machine (sm.h) in the same environment.
 *
 * Every record read from disk is validated; a malformed one yields
 * AGENDA_STORAGE_CORRUPT (or RAFT_ERR_STORAGE through struct raft_storage),
 * never a crash.  Every write transaction is committed with a full sync,
 * but for batches that only apply (see agenda_storage_batch_begin()).
 *
 * Threads: one thread (the event loop) owns the handle and calls every
 * function, except agenda_storage_snapshot_create() which may run in one
 * worker thread at a time while the owner keeps writing (see there).  The
 * environment is opened with MDB_NOTLS, so read transactions are not tied
 * to a thread and the owner may hold read transactions while it writes.
 * LMDB allows a single write transaction at a time: while an apply
 * transaction is open, persist/compact/install return AGENDA_STORAGE_BUSY
 * instead of deadlocking.
 */
#ifndef AGENDA_STORAGE_H
#define AGENDA_STORAGE_H

#include <stddef.h>
#include <stdint.h>

#include <lmdb.h>

#include "raft.h"

#define AGENDA_STORAGE_FORMAT 1u
#define AGENDA_STORAGE_MAXDBS 32

/* Errors: 0 or one of these negative values; agenda_storage_strerror()
 * gives a sentence for each. */
enum agenda_storage_err {
    AGENDA_STORAGE_OK = 0,
    AGENDA_STORAGE_IO = -1,          /* I/O or unexpected LMDB failure */
    AGENDA_STORAGE_FULL = -2,        /* map or disk full: refuse writes */
    AGENDA_STORAGE_CORRUPT = -3,     /* malformed record or file */
    AGENDA_STORAGE_INVALID = -4,     /* bad argument; nothing was done */
    AGENDA_STORAGE_COMPACTED = -5,   /* index below the first log index */
    AGENDA_STORAGE_UNAVAILABLE = -6, /* index above the last log index */
    AGENDA_STORAGE_NOMEM = -7,       /* allocation failed */
    AGENDA_STORAGE_VERSION = -8,     /* unknown format or LMDB version */
    AGENDA_STORAGE_BUSY = -9,        /* a transaction or copy is open */
    AGENDA_STORAGE_CLOSED = -10,     /* environment lost by failed install */
    AGENDA_STORAGE_ERR__COUNT = 11
};

/* A sentence for err (0 or a negative enum value); never NULL. */
const char *agenda_storage_strerror(int err);

/* Maps an LMDB or errno code to an enum agenda_storage_err value (for
 * callers that run their own LMDB work in a storage transaction). */
int agenda_storage_map_mdb(int rc);

struct agenda_storage;

/*
 * Open (creating if missing) the environment in directory dir with a map
 * of map_size bytes (the largest the files may grow; 0: 1 GiB).  Clears
 * stale reader slots left by crashed processes (count kept for the caller
 * to log, see agenda_storage_stale_readers()), creates or checks the format
 * version, checks that data.mdb is as long as its meta page says and loads
 * the caches (first/last index, snapshot, hard state, applied).
 * On success *out owns the environment: release it with
 * agenda_storage_close().  On failure returns a negative error, *out is
 * NULL and err (errlen bytes, may be NULL) holds a sentence naming the
 * directory and the cause.  Another process holding the environment open
 * is not detected here: one agent per directory.
 */
int agenda_storage_open(const char *dir, size_t map_size,
                        struct agenda_storage **out, char *err,
                        size_t errlen);

/* Close the environment and free s (NULL is a no-op).  Every transaction
 * obtained from s must have been ended, and no snapshot copy may run. */
void agenda_storage_close(struct agenda_storage *s);

/* The environment, borrowed: valid until agenda_storage_close() or
 * agenda_storage_snapshot_install(), which replaces it (and invalidates
 * every MDB_dbi opened in it).  NULL after a failed install. */
MDB_env *agenda_storage_env(struct agenda_storage *s);

/* Stale reader slots cleared by mdb_reader_check() at open. */
int agenda_storage_stale_readers(const struct agenda_storage *s);

/* Bytes of zeros the last open added to a data.mdb that ended before the
 * last page its meta page counts, as LMDB may leave it (storage.c). */
uint64_t agenda_storage_mended_bytes(const struct agenda_storage *s);

/* A sentence describing the last failure of a call on s (the LMDB call and
 * its message), "" if none yet.  Borrowed until the next call on s. */
const char *agenda_storage_last_error(const struct agenda_storage *s);

/*
 * The struct raft_storage callbacks; ctx is the struct agenda_storage *.
 * first/last index, the snapshot meta, the hard state and the term of the
 * last entry are cached in memory; term() of other entries and entries()
 * read through one long-lived read transaction that is reset after each
 * call (so it does not pin old pages).  A malformed record gives
 * RAFT_ERR_STORAGE and agenda_storage_last_error() says which.  The table
 * is static: never freed.
 */
const struct raft_storage *agenda_storage_raft_ops(void);

/*
 * Durably append entries and save the hard state in one synced write
 * transaction (the group commit).  Stored entries with an index >=
 * ents[0].index are deleted first.  ents[0..n) must be contiguous with
 * non-decreasing terms, valid types, ents[0].index in
 * (snapshot index, last index + 1]; hs may be NULL (unchanged), n may be 0.
 * ents and their data are borrowed for the call.
 * Returns 0, AGENDA_STORAGE_INVALID (bad batch), AGENDA_STORAGE_FULL (map
 * or disk full: the caller must refuse further writes and report it),
 * AGENDA_STORAGE_BUSY (an apply transaction is open), AGENDA_STORAGE_IO
 * (the caller should stop: LMDB may refuse every later write after a
 * failed sync) or another negative error.  On failure nothing was written.
 */
int agenda_storage_persist(struct agenda_storage *s,
                           const struct raft_hard_state *hs,
                           const struct raft_entry *ents, size_t n);

/*
 * Begin the write transaction in which the state machine applies a batch
 * of committed entries.  *txn is borrowed until apply_commit() or
 * apply_abort(), exactly one of which must follow.  Returns 0,
 * AGENDA_STORAGE_BUSY if a write transaction is open, or an error.
 */
int agenda_storage_apply_begin(struct agenda_storage *s, MDB_txn **txn);

/*
 * Record (applied, applied_term) in txn and commit it with a sync, so the
 * state machine's changes and the applied index become durable together.
 * applied must not be below the current applied index (else the txn is
 * aborted and AGENDA_STORAGE_INVALID returned).  The txn is always ended,
 * except when it is NULL or no apply txn is open (AGENDA_STORAGE_INVALID,
 * nothing done).  Returns 0, AGENDA_STORAGE_FULL, AGENDA_STORAGE_IO, ...;
 * on failure nothing of the batch was stored.
 */
int agenda_storage_apply_commit(struct agenda_storage *s, MDB_txn *txn,
                                raft_index applied, raft_term applied_term);

/*
 * Begin one write transaction that first does what agenda_storage_persist()
 * does (same checks and errors; hs may be NULL and n 0) and is then handed
 * to the state machine to apply committed entries into; finish it with
 * agenda_storage_apply_commit() (which commits the log, the hard state,
 * the state machine's changes and the applied index with a single sync)
 * or agenda_storage_apply_abort().  This is how the agent makes one synced
 * commit per ready batch.  The log caches change only at the commit.
 *
 * A batch that stores no log entry and no new term or vote (it applies
 * committed entries, perhaps with a higher commit index) is committed
 * without the synchronous write of LMDB's meta page (MDB_NOMETASYNC): its
 * data pages are still synced before the meta page is written, so a
 * crash of the machine can only undo that whole transaction, never the
 * database's integrity, and what it undoes is redone from the log, which
 * was synced when its entries were stored.  Nothing a node acknowledges
 * depends on such a batch: acknowledgements promise entries, terms and
 * votes.  The next synced commit makes it durable.  Counted in
 * agenda_storage_sync_stats.lazy.
 */
int agenda_storage_batch_begin(struct agenda_storage *s,
                               const struct raft_hard_state *hs,
                               const struct raft_entry *ents, size_t n,
                               MDB_txn **txn);

/*
 * The shard identity (shard_identity.h) the stored state was applied
 * under, in txn (any transaction of s).  get: 1 with *data and *len
 * borrowed from txn, 0 when none is stored (older data), or an error.
 * put: in an apply transaction, 0 or an error.  Snapshots carry it.
 */
int agenda_storage_identity_get(struct agenda_storage *s, MDB_txn *txn,
                                const uint8_t **data, size_t *len);
int agenda_storage_identity_put(struct agenda_storage *s, MDB_txn *txn,
                                const uint8_t *data, size_t len);

/* Abandon an apply transaction: nothing of it is stored. */
void agenda_storage_apply_abort(struct agenda_storage *s, MDB_txn *txn);

/* The applied index and term (cached; 0 before any apply). */
int agenda_storage_applied(struct agenda_storage *s, raft_index *index,
                           raft_term *term);

/*
 * A read-only transaction for queries, borrowed until read_end().  It sees
 * the state at the time of the call; keep it short, it pins old pages.
 * Every read transaction must be ended before close or install.
 */
int agenda_storage_read_begin(struct agenda_storage *s, MDB_txn **txn);
void agenda_storage_read_end(struct agenda_storage *s, MDB_txn *txn);

/*
 * Delete log entries with index < upto and record the snapshot meta
 * (upto - 1, term(upto - 1)) in one synced transaction.  Needs
 * upto <= applied + 1 and upto <= last + 1 (AGENDA_STORAGE_INVALID
 * otherwise); upto <= first index is a no-op.  Then tell the core with
 * raft_compacted().
 */
int agenda_storage_compact(struct agenda_storage *s, raft_index upto);

/*
 * Write a compacted, consistent copy of the whole environment to path
 * (through path.tmp: written, fsynced, renamed, directory fsynced) and set
 * *meta to the applied index/term recorded inside that copy, which is what
 * the snapshot covers.  The copy also holds the log tail; install drops it.
 *
 * Thread safety: may run in a worker thread while the owner thread keeps
 * reading and writing through s (LMDB copies from its own read
 * transaction; this function touches no cached field of s).  At most one
 * copy at a time; the owner must not close s or install a snapshot while
 * a copy runs (install returns AGENDA_STORAGE_BUSY).  A long copy pins the
 * pages of its read transaction, so the file may grow meanwhile.
 * Returns 0 or a negative error; on failure path is not created and
 * path.tmp removed.
 */
int agenda_storage_snapshot_create(struct agenda_storage *s,
                                   const char *path,
                                   struct raft_snapshot_meta *meta);

/*
 * Validate a received snapshot file without touching any environment: the
 * same checks as agenda_storage_snapshot_install() (LMDB format, length,
 * format version, every record walked and every page of its key and value
 * read, applied meta present).  *meta gets the applied index/term the file
 * covers.  Returns 0, AGENDA_STORAGE_CORRUPT, AGENDA_STORAGE_VERSION or
 * another negative error.  The receiver runs agenda_storage_snapshot_vet()
 * on what it received (in a child process, snapshot_vet.h: pages LMDB
 * cannot parse can crash whoever reads them), which rebuilds the records
 * into a new file and checks that file with this.
 */
int agenda_storage_snapshot_check(const char *path,
                                  struct raft_snapshot_meta *meta);

/*
 * What the receiver of a snapshot does before it acknowledges the file (in
 * a child process, see snapshot_vet.h): check in as snapshot_check() does,
 * then put its records, database by database and in order, into a new
 * environment at out (synced; the log's records are left out, as install
 * empties the log), and check that too.  out is what gets
 * installed: nothing of the peer's file but its records (no free list,
 * branch page or page header of its: LMDB would trust them when writing;
 * see storage_snapshot_vet.c).  *meta gets the applied index/term.
 * Returns 0 or the first error; on failure neither out nor out.tmp exists.
 */
int agenda_storage_snapshot_vet(const char *in, const char *out,
                                struct raft_snapshot_meta *meta);

/*
 * Replace the environment by the snapshot file at path (as written by
 * snapshot_create on the leader, received from a peer: untrusted).  path
 * must be on the same file system as the environment directory (put it
 * inside; it is renamed into place) and is consumed on success.
 *
 * The file must be what agenda_storage_snapshot_vet() wrote (whose
 * process walked every record): here only its LMDB format, length,
 * format version and applied meta are checked; garbage there gives
 * AGENDA_STORAGE_CORRUPT (or _VERSION) and the live environment is not
 * touched.  Then, in the copy, this node's hard state is written (term and
 * vote kept, commit = max(own commit, applied)), the log emptied and the
 * snapshot meta set to the copy's applied index/term, synced; only then is
 * it renamed over data.mdb (directory fsynced), so a crash at any point
 * leaves either the old or the new state, both with our own vote.  The
 * environment is reopened: MDB_env and all MDB_dbi handles change, the
 * caller must call the state machine's open() again.
 *
 * *meta_out (may be NULL) gets the snapshot meta; the caller compares it
 * with the one the core asked for.  A snapshot older than our applied
 * index is refused (AGENDA_STORAGE_INVALID, nothing touched): installing
 * it would drop applied entries with the log.  Requires no open
 * transaction and no running copy (AGENDA_STORAGE_BUSY).  If reopening
 * fails after the swap, AGENDA_STORAGE_CLOSED is returned and every later
 * call fails the same way: the caller should exit (a restart opens the
 * new environment).
 */
int agenda_storage_snapshot_install(struct agenda_storage *s,
                                    const char *path,
                                    struct raft_snapshot_meta *meta_out);

struct agenda_storage_stat {
    uint64_t map_size;     /* bytes the map may grow to */
    uint64_t used_bytes;   /* (last page + 1) * page size */
    uint64_t page_size;
    uint64_t log_entries;  /* last_index - first_index + 1, or 0 */
    raft_index first_index;
    raft_index last_index;
    struct raft_snapshot_meta snapshot;
    raft_index applied;
    raft_term applied_term;
};

/* Fill *out (for /metrics).  Returns 0 or a negative error. */
int agenda_storage_stat(struct agenda_storage *s,
                        struct agenda_storage_stat *out);

/* Durations of synced commits (persist, apply, compact, install). */
struct agenda_storage_sync_stats {
    uint64_t count;
    uint64_t lazy; /* of which without a meta-page sync (see batch_begin) */
    uint64_t total_ns;
    uint64_t max_ns;
};

/* Copy the commit latency counters (cumulative since open). */
void agenda_storage_sync_stats(const struct agenda_storage *s,
                               struct agenda_storage_sync_stats *out);

#endif /* AGENDA_STORAGE_H */

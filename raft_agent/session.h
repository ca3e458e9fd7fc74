/*
 * session.h — exactly-once application of client commands.
 *
 * Every command carries a request id (command.h).  The first time an id is
 * applied, its result (status and body) is stored with it; a later entry
 * with the same id — a client retry after a timeout or a failover, proposed
 * again to a new leader — is not applied again but answered with the stored
 * result.  Ids are remembered for `retention_ms` of leader time (the time
 * stamped in the commands, so every replica forgets the same ids at the same
 * log position; it follows the wall clock only at a bounded rate, see
 * leader_clock.h), and up to a quarter of a second longer: ids are forgotten
 * in batches, bounded per command so apply stays cheap (session.c).
 *
 * Database (in the agent's environment): "sessions_log", big-endian time ‖
 * request id → result, so remembering appends and forgetting deletes from
 * the start, whatever the ids look like.  An id is found through an
 * in-memory index rebuilt when the sessions are opened (session_index.h),
 * which costs 32 to 128 bytes per remembered id (16-byte slots, between a
 * half and an eighth full).  Agents before this layout kept "sessions"
 * (request id → result), where random ids cost random page writes, and
 * "sessions_time"; opening moves them into "sessions_log", in the opening
 * transaction: that needs free map space about the size of what is
 * remembered (at most five minutes of writes), and a replica without it
 * refuses to start with "storage is full" until the map is made bigger.
 *
 * The index learns of removals only when they are durable: the caller
 * reports the fate of every write transaction that applied commands with
 * agenda_sessions_committed() or agenda_sessions_aborted().
 */
#ifndef AGENDA_SESSION_H
#define AGENDA_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include <lmdb.h>

#include "session_index.h"
#include "sm.h"

/* Results bigger than this are remembered without their body. */
#define AGENDA_SESSION_BODY_MAX (64 * 1024)
#define AGENDA_SESSION_RETENTION_MS (300 * 1000)

struct agenda_sessions {
    MDB_dbi log;
    uint64_t retention_ms;
    bool index_ready;
    struct agenda_session_index index;
};

/* Open or create the database in txn (after start and after a snapshot
 * install), moving an older layout into it, and rebuild the index from it.
 * s is zeroed before the first call.  Returns 0, an LMDB error, or ENOMEM
 * (ENOSYS: no randomness for the index's key). */
int agenda_sessions_open(struct agenda_sessions *s, MDB_txn *txn);

/* The write transaction that last applied commands committed / aborted. */
void agenda_sessions_committed(struct agenda_sessions *s);
void agenda_sessions_aborted(struct agenda_sessions *s);

/* Releases the index.  s may be opened again. */
void agenda_sessions_close(struct agenda_sessions *s);

/*
 * Apply one NORMAL entry: decode the envelope, answer a known request id
 * from its stored result (*duplicate = true), or run ops->apply and store
 * the result.  A malformed envelope yields status 400 in res and changes
 * nothing.  res->body is appended to (the caller owns it).
 * Returns 0, or an LMDB error that must abort the whole apply batch:
 * MDB_VERSION_MISMATCH for an envelope of a newer agent (command.h), which
 * this replica must not apply.
 */
int agenda_sessions_apply(struct agenda_sessions *s, const struct sm_ops *ops,
                          void *sm, MDB_txn *txn, uint64_t index,
                          const uint8_t *entry, size_t len,
                          struct sm_result *res, bool *duplicate);

/* Look up a remembered result without applying (for tests and tools).
 * Returns 0, MDB_NOTFOUND or an LMDB error. */
int agenda_sessions_lookup(struct agenda_sessions *s, MDB_txn *txn,
                           const char *request_id, struct sm_result *res);

/* Feed every remembered id and result into a SHA-256 context, in the
 * order they expire (ctx is an EVP_MD_CTX *).  Returns 0 or an LMDB
 * error. */
int agenda_sessions_digest(struct agenda_sessions *s, MDB_txn *txn,
                           void *evp_md_ctx);

#endif /* AGENDA_SESSION_H */

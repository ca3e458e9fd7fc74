/*
 * session.h — exactly-once application of client commands.
 *
 * Every command carries a request id (command.h).  The first time an id is
 * applied, its result (status and body) is stored with it; a later entry
 * with the same id — a client retry after a timeout or a failover, proposed
 * again to a new leader — is not applied again but answered with the stored
 * result.  Ids are remembered for `retention_ms` of leader time (the time
 * stamped in the commands, so every replica forgets the same ids at the same
 * log position); forgetting is bounded per command so apply stays cheap.
 *
 * Databases (in the agent's environment): "sessions" (request id → result)
 * and "sessions_time" (big-endian time ‖ request id → empty), the order in
 * which ids expire.
 */
#ifndef AGENDA_SESSION_H
#define AGENDA_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include <lmdb.h>

#include "sm.h"

/* Results bigger than this are remembered without their body. */
#define AGENDA_SESSION_BODY_MAX (64 * 1024)
#define AGENDA_SESSION_RETENTION_MS (300 * 1000)

struct agenda_sessions {
    MDB_dbi ids;
    MDB_dbi by_time;
    uint64_t retention_ms;
};

/* Open or create the databases in txn (after start and after a snapshot
 * install).  Returns 0 or an LMDB error. */
int agenda_sessions_open(struct agenda_sessions *s, MDB_txn *txn);

/*
 * Apply one NORMAL entry: decode the envelope, answer a known request id
 * from its stored result (*duplicate = true), or run ops->apply and store
 * the result.  A malformed envelope yields status 400 in res and changes
 * nothing.  res->body is appended to (the caller owns it).
 * Returns 0, or an LMDB error that must abort the whole apply batch.
 */
int agenda_sessions_apply(struct agenda_sessions *s, const struct sm_ops *ops,
                          void *sm, MDB_txn *txn, uint64_t index,
                          const uint8_t *entry, size_t len,
                          struct sm_result *res, bool *duplicate);

/* Look up a remembered result without applying (for tests and tools).
 * Returns 0, MDB_NOTFOUND or an LMDB error. */
int agenda_sessions_lookup(struct agenda_sessions *s, MDB_txn *txn,
                           const char *request_id, struct sm_result *res);

/* Feed every remembered id and result into a SHA-256 context, in key
 * order (ctx is an EVP_MD_CTX *).  Returns 0 or an LMDB error. */
int agenda_sessions_digest(struct agenda_sessions *s, MDB_txn *txn,
                           void *evp_md_ctx);

#endif /* AGENDA_SESSION_H */

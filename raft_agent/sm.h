/*
 * sm.h — the state-machine interface of raft_agent.
 *
 * A state machine keeps its data in named LMDB databases inside the agent's
 * single environment (storage.h).  The agent owns every transaction: the state
 * machine only reads or writes through the MDB_txn it is handed and never
 * commits, aborts or keeps it.  Because the whole environment is the snapshot
 * (a compacting LMDB copy), a state machine needs no snapshot code of its own:
 * after a snapshot is installed the agent calls open() again.
 *
 * Determinism: apply() must depend only on the stored data and the command
 * bytes.  Time and ids are stamped into the command by the leader before it is
 * proposed; apply() never reads a clock or a random source.
 *
 * Exactly-once delivery (request ids) is handled by the agent around apply()
 * (see session.h); a state machine sees each committed command once.
 */
#ifndef AGENDA_SM_H
#define AGENDA_SM_H

#include <stddef.h>
#include <stdint.h>

#include <lmdb.h>

#include "buf.h"

/* Outcome of apply() and query(): an HTTP-like status plus a body. */
struct sm_result {
    int status;            /* 200, 201, 400, 404, 409, ... */
    struct agenda_buf body; /* JSON text, owned by the caller */
};

struct sm_query {
    const char *method;  /* "GET", "POST" */
    const char *path;    /* path below the state machine's prefix */
    const char *query;   /* raw query string or NULL */
    const uint8_t *body; /* request body (may be NULL), borrowed */
    size_t body_len;
};

/* What the log says about the command being applied (all borrowed). */
struct sm_apply_info {
    uint64_t index;         /* its log index */
    uint64_t time_ms;       /* the leader's clock when it was proposed */
    const char *request_id; /* its exactly-once id */
    /* the rules it was written under (command.h): a rule that changes
     * reads it, so that entries logged before the change apply as they
     * did */
    unsigned command_version;
};

struct sm_ops {
    const char *name;
    /* Open or create the databases in txn.  Called at start and after a
     * snapshot was installed.  Returns 0 or an LMDB error code. */
    int (*open)(void *sm, MDB_txn *txn);
    /* Apply one committed command.  A returned LMDB error (MDB_MAP_FULL, ...)
     * aborts the whole apply batch, which is retried later; a command that
     * is merely invalid must return 0 with an error status in res. */
    int (*apply)(void *sm, MDB_txn *txn, const struct sm_apply_info *info,
                 const uint8_t *cmd, size_t len, struct sm_result *res);
    /* Serve a read from a read-only txn. */
    int (*query)(void *sm, MDB_txn *txn, const struct sm_query *q,
                 struct sm_result *res);
    /* Hash every record the state machine stores (order-independent of
     * history) into out[32], for comparing replicas. */
    int (*digest)(void *sm, MDB_txn *txn, uint8_t out[32]);
};

#endif /* AGENDA_SM_H */

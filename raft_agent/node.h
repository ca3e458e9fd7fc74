/*
 * node.h — one replica: the Raft core driven by an event loop, with LMDB
 * storage, the peer transport, snapshot streaming and a state machine.
 *
 * The node turns asynchronous inputs (peer messages, ticks, client writes
 * and reads) into core calls, and processes the core's ready batches at the
 * end of each event-loop turn (a low-priority event), so that everything
 * that arrived in one turn shares one synced LMDB commit: group commit.
 *
 * Client operations complete through callbacks, always from the event
 * loop and never from inside the submitting call.  A write's callback gets
 * the state machine's result once the command is applied locally; a
 * "status 0" completion means the outcome is unknown (leadership lost or
 * timeout) and the client must retry with the same request id, which the
 * session table (session.h) makes safe.
 */
#ifndef AGENDA_NODE_H
#define AGENDA_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "buf.h"
#include "raft.h"
#include "sm.h"

struct agenda_tls;

struct agenda_node_peer {
    raft_id id;
    const char *name;               /* replica name (TLS identity) */
    const char *host;
    uint16_t raft_port;
    uint16_t http_port;
};

struct agenda_node_config {
    const char *cluster;
    const char *shard;
    raft_id id;
    struct agenda_node_peer peers[RAFT_MAX_NODES]; /* including this node */
    unsigned n_peers;
    const char *data_dir;           /* LMDB environment and snapshots */
    size_t map_size;
    const char *listen_host;        /* for the peer transport */
    unsigned tick_ms;
    unsigned election_ticks;
    unsigned heartbeat_ticks;
    uint64_t snapshot_threshold;    /* applied entries kept before compaction */
    unsigned request_timeout_ms;    /* pending write/read give up after */
    const struct sm_ops *sm_ops;
    void *sm;                       /* state machine instance */
    struct agenda_tls *tls;         /* peer links over TLS, or NULL */
    /* This shard's identity (shard_identity.h): in the no-op of every
     * term this node leads, and compared with other leaders'.  Borrowed:
     * must outlive the node.  NULL with 0: empty no-ops, nothing
     * compared. */
    const uint8_t *identity;
    size_t identity_len;
};

/* Failure classes reported to completion callbacks. */
enum agenda_node_fail {
    AGENDA_NODE_OK = 0,
    AGENDA_NODE_NOT_LEADER,   /* 421: go to the leader */
    AGENDA_NODE_UNKNOWN,      /* 503: outcome unknown; retry same id */
    AGENDA_NODE_UNAVAILABLE,  /* 503: no leader / transferring / busy */
    AGENDA_NODE_STORAGE_FULL, /* 507: the disk or map is full */
    AGENDA_NODE_TOO_BIG,      /* 413 */
    AGENDA_NODE_SHUTDOWN      /* 503: the node is stopping */
};

const char *agenda_node_fail_message(enum agenda_node_fail f);

struct agenda_node;
struct agenda_node_op;

/* Write completion: fail == AGENDA_NODE_OK and res holds the state
 * machine's result (borrowed for the call); otherwise res is NULL.  OK
 * comes once the entry is committed (durable on a majority) and applied,
 * possibly before this replica's commit of that apply is synced: a crash
 * cannot change the result (node.c, commit_batch). */
typedef void (*agenda_node_write_cb)(void *arg, enum agenda_node_fail fail,
                                     const struct sm_result *res,
                                     bool duplicate);
/* Read barrier completion: when fail == AGENDA_NODE_OK the local state
 * is at least as new as every write acknowledged before the read began. */
typedef void (*agenda_node_read_cb)(void *arg, enum agenda_node_fail fail);

/* Open storage, restart from it and start the transport.  Returns NULL
 * with a sentence in err. */
struct agenda_node *agenda_node_new(struct event_base *base,
                                    const struct agenda_node_config *cfg,
                                    char *err, size_t errlen);
/* Complete every pending operation with AGENDA_NODE_SHUTDOWN and free. */
void agenda_node_free(struct agenda_node *n);

/* Propose payload under request_id (validated by the caller).  Returns
 * AGENDA_NODE_OK and later calls cb exactly once, unless *op is cancelled
 * first; or returns a failure at once (cb is not called). */
enum agenda_node_fail agenda_node_write(struct agenda_node *n,
                                        const char *request_id,
                                        const void *payload, size_t len,
                                        agenda_node_write_cb cb, void *arg,
                                        struct agenda_node_op **op);
/* Ask for a linearizable read barrier (ReadIndex). */
enum agenda_node_fail agenda_node_read(struct agenda_node *n,
                                       agenda_node_read_cb cb, void *arg,
                                       struct agenda_node_op **op);
/* The client went away: cb will not be called.  Only valid before the
 * callback ran (after it, op is already freed). */
void agenda_node_cancel(struct agenda_node *n, struct agenda_node_op *op);

/* Serve a read from the local state (after a barrier, or stale). */
int agenda_node_query(struct agenda_node *n, const struct sm_query *q,
                      struct sm_result *res);

/* Start handing leadership to the most up-to-date follower (graceful
 * shutdown, operators).  Returns false when this node is not the leader.
 * The core abandons a transfer that does not finish within an election
 * timeout; poll agenda_node_is_leader() to see it complete. */
bool agenda_node_start_transfer(struct agenda_node *n);
bool agenda_node_is_leader(struct agenda_node *n);

/* Status for /status, /health and /metrics. */
struct agenda_node_info {
    struct raft_status raft;
    const struct agenda_node_peer *leader_peer; /* NULL when unknown */
    bool storage_full;
    bool healthy;            /* has a leader, storage OK, not stuck */
    raft_index first_index;
    struct raft_snapshot_meta snapshot;
    uint64_t elections;      /* times this node became a candidate */
    uint64_t leader_changes; /* times the known leader changed */
    uint64_t commits;        /* entries applied */
    uint64_t proposals;
    uint64_t apply_batches;
    uint64_t apply_ns_total;
    uint64_t apply_ns_max;
    uint64_t sync_count;
    uint64_t sync_lazy;      /* commits without a meta-page sync */
    uint64_t sync_ns_total;
    uint64_t sync_ns_max;
    uint64_t snapshots_sent;
    uint64_t snapshots_received;
    uint64_t snapshots_failed;
    uint64_t compactions;
    uint64_t duplicates;     /* retried commands answered from sessions */
    uint64_t sessions_remembered;   /* request ids in the sessions index */
    uint64_t sessions_index_bytes;  /* the index's memory */
    uint64_t answered_before_sync; /* writers answered before the commit
                                    * of their apply (node.c) */
    uint64_t queries;        /* answered from the local state: stale ones,
                              * and linearizable ones after their barrier */
    uint64_t read_index;     /* linearizable reads accepted as leader */
    uint64_t storage_used;
    uint64_t storage_map;
    uint64_t transport_drops;
    uint64_t transport_bad_frames;
};

void agenda_node_info(struct agenda_node *n, struct agenda_node_info *out);
const struct agenda_node_config *agenda_node_config(
    const struct agenda_node *n);

/* The SHA-256 of the state machine and the session table (hex) and the
 * applied index it describes, computed on a thread (node_digest.c): cb
 * runs on the loop with rc 0 and both, or a storage error. */
typedef void (*agenda_node_digest_cb)(void *arg, int rc, const char *hex,
                                      raft_index applied);
/* Returns 0 (cb will run), AGENDA_STORAGE_BUSY while another digest runs,
 * or a storage error (cb will not run). */
int agenda_node_digest_start(struct agenda_node *n, agenda_node_digest_cb cb,
                             void *arg);
/* The caller arg of the digest in progress is gone: cb will not run. */
void agenda_node_digest_forget(struct agenda_node *n, void *arg);

#endif /* AGENDA_NODE_H */

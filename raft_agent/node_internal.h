/*
 * node_internal.h — the replica's state, shared by node*.c only.
 */
#ifndef AGENDA_NODE_INTERNAL_H
#define AGENDA_NODE_INTERNAL_H

#include <pthread.h>
#include <stdio.h>

#include "leader_clock.h"
#include "node.h"
#include "session.h"
#include "snapshot_vet.h"
#include "storage.h"
#include "transport.h"

enum node_op_kind { NODE_OP_WRITE = 1, NODE_OP_READ };

/* A client operation waiting for the log.  Writes sit in n->writes sorted
 * by index; reads wait in n->reads_batch (not yet sent to the core), then
 * n->reads_sent with their ctx, then for the applied index to reach
 * read_index. */
struct agenda_node_op {
    enum node_op_kind kind;
    struct agenda_node_op *prev, *next;
    raft_index index;       /* write: entry index; read: read index */
    raft_term term;         /* write: entry term */
    uint64_t ctx;           /* read: core ctx of its batch */
    bool index_known;       /* read: ReadIndex answered */
    uint64_t deadline_ms;
    agenda_node_write_cb wcb;
    agenda_node_read_cb rcb;
    void *arg;
};

struct node_list {
    struct agenda_node_op *head, *tail;
    size_t n;
};

enum snap_send_state {
    SNAP_SEND_IDLE = 0,
    SNAP_SEND_WAIT_FILE,  /* waiting for the copy thread */
    SNAP_SEND_STREAMING,
    SNAP_SEND_WAIT_DONE,  /* all sent, waiting for the follower's ack */
    SNAP_SEND_BACKOFF     /* asked for, after failures: waiting to begin */
};

/* How a transfer ended, kept while the core may not be told (a ready
 * batch is taken) until the next tick without one. */
enum snap_report {
    SNAP_REPORT_NONE = 0,
    SNAP_REPORT_DONE,       /* the follower has the file */
    SNAP_REPORT_FAILED
};

struct snap_send {
    enum snap_send_state state;
    raft_term term;         /* leader term of the core's SNAPSHOT message */
    raft_index want;        /* the snapshot index that message asked for */
    uint64_t offset;
    uint64_t last_progress_ms;
    enum snap_report report;
    struct raft_snapshot_meta report_meta; /* SNAP_REPORT_DONE: what */
    unsigned failures;      /* transfers failed in a row */
    uint64_t not_before_ms; /* after them, no new one before this */
    /* the snapshot the follower has whole and is installing: the log
     * after it is kept (compaction.h) until its match shows it, or
     * until this time */
    raft_index installing;
    uint64_t installing_until_ms;
};

/* The snapshot file this leader streams (shared by all followers). */
struct snap_file {
    bool valid;
    int fd;
    struct raft_snapshot_meta meta;
    uint64_t size;
    uint32_t crc;
    unsigned users;         /* followers streaming from it */
};

/* A snapshot being received from the leader. */
struct snap_recv {
    bool active;
    bool complete;          /* whole file here and checked */
    bool taken;             /* and the core must install it (stepped) */
    raft_id from;
    struct raft_snapshot_meta meta;
    uint64_t total;
    uint64_t next_offset;
    uint32_t crc;
    int fd;
};

/* The ready batch being carried out, and how far it got. */
struct node_batch {
    const struct raft_ready *rd; /* NULL: none taken */
    bool early_sent;
    bool installed;
    bool committed;  /* entries, hard state and applies are durable */
    bool late_sent;
};

/* A digest being computed on its thread (node_digest.c). */
struct node_digest {
    bool running;
    pthread_t thread;
    int pipe[2];              /* thread → loop: done */
    struct event *ev;
    MDB_txn *txn;             /* begun and ended on the loop */
    raft_index applied;       /* what txn's state has applied */
    int rc;                   /* the thread's outcome */
    char hex[65];
    agenda_node_digest_cb cb; /* the caller waiting; NULL: none */
    void *arg;
};

struct agenda_node {
    struct agenda_node_config cfg;
    char *data_dir;
    /* The leader and term whose no-op said this shard is something else:
     * everything they send is dropped (see refuse_other_identity). */
    raft_id refused_leader;
    raft_term refused_term;
    struct event_base *base;
    struct agenda_storage *st;
    struct raft *raft;
    struct agenda_transport *tr;
    struct agenda_sessions sessions;
    struct agenda_leader_clock clock; /* the time stamped on writes */

    struct event *tick_ev;
    struct event *ready_ev;   /* lowest priority: end of the loop turn */
    struct event *retry_ev;   /* retry a failed persist/apply */
    bool ready_pending;
    struct node_batch batch;
    bool frozen;              /* the batch failed; retry timer armed */
    bool failing;             /* since the last failure, not yet mended */
    bool storage_full;
    bool closing;

    struct node_list writes;
    struct node_list reads_batch;
    struct node_list reads_sent;
    uint64_t next_read_ctx;

    raft_id last_leader;
    enum raft_role last_role;

    /* snapshots */
    struct snap_send send[RAFT_MAX_NODES];   /* by peer slot */
    struct snap_file file;
    struct snap_recv recv;
    struct snapshot_vet vet;  /* recv's whole file, being checked */
    pthread_t copy_thread;
    bool copy_running;
    int copy_pipe[2];         /* copy thread → loop: done */
    struct event *copy_ev;
    int copy_rc;
    struct raft_snapshot_meta copy_meta;
    int copy_fd;              /* the copy, open for streaming; -1: none */
    int copy_errno;           /* why copy_fd is -1 after a made copy */
    uint64_t copy_size;
    uint32_t copy_crc;

    struct node_digest digest;  /* GET /digest (node_digest.c) */

    struct agenda_buf scratch;
    struct sm_result result;

    /* counters */
    uint64_t elections, leader_changes, commits, proposals, duplicates;
    uint64_t apply_batches, apply_ns_total, apply_ns_max;
    uint64_t answered_before_sync; /* writers answered ahead of the commit */
    uint64_t snapshots_sent, snapshots_received, snapshots_failed;
    uint64_t compactions;
    uint64_t queries;     /* answered from the local state, any consistency */
    uint64_t read_index;  /* linearizable reads accepted (leader only) */
};

uint64_t agenda_node_now_ms(void);
/* Monotonic milliseconds, for timeouts. */
uint64_t node_mono_ms(void);
int node_peer_slot(const struct agenda_node *n, raft_id id);
void node_schedule_ready(struct agenda_node *n);

/* node_snapshot.c */
int node_snapshot_init(struct agenda_node *n);
void node_snapshot_free(struct agenda_node *n);

/* node_digest.c: the digest thread's pipe and event (node_digest_free
 * first waits for a digest in progress); node_digest_join() waits for it
 * and answers its caller, as the state is about to be replaced. */
int node_digest_init(struct agenda_node *n);
void node_digest_free(struct agenda_node *n);
void node_digest_join(struct agenda_node *n);
void node_snapshot_request(struct agenda_node *n, const struct raft_msg *m);
void node_snapshot_on_chunk(struct agenda_node *n, raft_id from,
                            const struct agenda_snap_chunk *c);
void node_snapshot_on_ack(struct agenda_node *n, raft_id from,
                          const struct agenda_snap_ack *a);
void node_snapshot_on_drain(struct agenda_node *n, raft_id peer);
/* A SNAPSHOT raft message arrived: step it if its file is here. */
void node_snapshot_on_msg(struct agenda_node *n, const struct raft_msg *m);
/* The core asks to install: returns 0 or a storage error. */
int node_snapshot_install(struct agenda_node *n,
                          const struct raft_snapshot_meta *meta);
void node_snapshot_tick(struct agenda_node *n);
/* node.c: reopen the state machine after a snapshot install */
int node_reopen_state_machine(struct agenda_node *n);
void node_snapshot_file_path(const struct agenda_node *n, char *buf,
                             size_t len, const char *name);

#endif /* AGENDA_NODE_INTERNAL_H */

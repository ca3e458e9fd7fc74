/*
 * raft.h — the Raft consensus core of raft_agent.
 *
 * The core is a pure, deterministic state machine in the style of etcd's raft
 * package: it performs no I/O, reads no clock, starts no thread and draws its
 * randomness from a seeded generator.  The caller (the agent, or the
 * simulator in tests/sim) drives it:
 *
 *   1. feed it input: raft_tick() on every logical tick, raft_step() for every
 *      message received from a peer, raft_propose() for client commands,
 *      raft_read_index() for linearizable reads, raft_transfer_leader();
 *   2. while raft_has_ready(), take raft_ready() and, in this order:
 *        a. if ready->snapshot is set, install that snapshot (its data was
 *           streamed by the transport beforehand);
 *        b. durably append ready->entries (deleting any stored entry with an
 *           index >= ready->entries[0].index first) and durably save
 *           ready->hard_state when ready->hard_state_changed — one synced
 *           write for both is the group commit;
 *        c. send ready->msgs (messages whose raft_msg_may_send_early() is
 *           true may be sent before step b);
 *        d. apply ready->committed in order, and serve ready->reads once the
 *           applied index reaches each read's index;
 *      Steps b and d may be one atomic write (the agent does so: one sync
 *      per batch), since nothing is applied unless the entries persist.
 *      Then call raft_advance().  The leader counts its own copy of an entry
 *      towards the commit quorum only in raft_advance(), i.e. after the sync.
 *
 * Stable log access goes through struct raft_storage (read only).  Everything
 * the core writes reaches storage through the ready batch.
 *
 * Ownership: every pointer inside a struct raft_ready (entries, messages,
 * their entries, entry data, reads) belongs to the core and stays valid until
 * the next raft_advance() or raft_free(), whichever comes first.  Messages
 * passed to raft_step() and data passed to raft_propose() are borrowed for the
 * duration of the call only; the core copies what it keeps.
 */
#ifndef RAFT_H
#define RAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef uint64_t raft_index;
typedef uint64_t raft_term;
typedef uint32_t raft_id; /* 0 means "none" */

#define RAFT_NONE 0u
#define RAFT_MAX_NODES 7

/* Errors returned by the core.  raft_strerror() gives a sentence for each. */
enum raft_err {
    RAFT_OK = 0,
    RAFT_ERR_NOT_LEADER,    /* proposal/read/transfer on a non-leader */
    RAFT_ERR_TRANSFERRING,  /* leader is handing over leadership */
    RAFT_ERR_NOMEM,         /* allocation failed; nothing was changed */
    RAFT_ERR_INVALID,       /* bad argument or malformed message */
    RAFT_ERR_STORAGE,       /* a storage callback failed */
    RAFT_ERR_COMPACTED,     /* requested entries are below the first index */
    RAFT_ERR_TOO_BIG,       /* proposal larger than max_entry_bytes */
    RAFT_ERR_BUSY,          /* too many uncommitted bytes at the leader */
    RAFT_ERR__COUNT
};

const char *raft_strerror(enum raft_err err);

enum raft_entry_type {
    RAFT_ENTRY_NORMAL = 1, /* a client command for the state machine */
    RAFT_ENTRY_NOOP = 2    /* appended by a new leader; apply does nothing */
};

struct raft_entry {
    raft_term term;
    raft_index index;
    uint8_t type;        /* enum raft_entry_type */
    uint32_t len;
    const uint8_t *data; /* len bytes; see ownership notes above */
};

/* What a snapshot covers: every entry up to and including index. */
struct raft_snapshot_meta {
    raft_index index;
    raft_term term;
};

/* Durable per-node state: must survive crashes. */
struct raft_hard_state {
    raft_term term;
    raft_id vote;
    raft_index commit;
};

enum raft_msg_type {
    RAFT_MSG_APPEND = 1,     /* leader → follower: entries after (index, log_term) */
    RAFT_MSG_APPEND_RESP,    /* follower → leader: index = last matching index */
    RAFT_MSG_VOTE,           /* candidate → all: index/log_term = its last entry */
    RAFT_MSG_VOTE_RESP,
    RAFT_MSG_PREVOTE,        /* term = the term the sender would campaign in */
    RAFT_MSG_PREVOTE_RESP,
    RAFT_MSG_HEARTBEAT,      /* leader → follower: commit, context (ReadIndex) */
    RAFT_MSG_HEARTBEAT_RESP, /* echoes context */
    RAFT_MSG_SNAPSHOT,       /* leader → follower: install snapshot */
    RAFT_MSG_TIMEOUT_NOW,    /* leader → transferee: campaign now */
    RAFT_MSG__COUNT
};

struct raft_msg {
    uint8_t type; /* enum raft_msg_type */
    raft_id from;
    raft_id to;
    raft_term term;
    raft_index index;    /* APPEND: prev index; *_RESP: see type; VOTE: last index */
    raft_term log_term;  /* APPEND: prev term; VOTE: last term */
    raft_index commit;   /* APPEND/HEARTBEAT: leader's commit index */
    uint64_t context;    /* HEARTBEAT(_RESP): ReadIndex round; 0 for none */
    bool reject;         /* *_RESP: request refused */
    raft_index reject_hint; /* APPEND_RESP reject: follower's hint index */
    raft_term hint_term;    /* APPEND_RESP reject: term at reject_hint */
    struct raft_snapshot_meta snapshot; /* SNAPSHOT */
    uint32_t n_entries;
    struct raft_entry *entries; /* APPEND */
};

/* True when the message may go out before the ready batch is persisted:
 * leader-to-follower traffic, which does not depend on the sender's own
 * durable state (Raft thesis §10.2.1). */
bool raft_msg_may_send_early(const struct raft_msg *m);

const char *raft_msg_type_name(uint8_t type);

/* A linearizable read became ready: serve it once applied >= index. */
struct raft_read_state {
    uint64_t ctx;     /* the ctx passed to raft_read_index() */
    raft_index index; /* commit index at the time the read was accepted */
};

/* A read refused because leadership was lost before it was confirmed. */
struct raft_read_fail {
    uint64_t ctx;
};

enum raft_role {
    RAFT_FOLLOWER = 0,
    RAFT_PRE_CANDIDATE,
    RAFT_CANDIDATE,
    RAFT_LEADER
};

const char *raft_role_name(enum raft_role role);

struct raft_ready {
    bool hard_state_changed;
    struct raft_hard_state hard_state;

    const struct raft_snapshot_meta *snapshot; /* install first, if set */

    const struct raft_entry *entries; /* append (after truncating) */
    size_t n_entries;

    const struct raft_msg *msgs;
    size_t n_msgs;

    const struct raft_entry *committed; /* apply in order */
    size_t n_committed;

    const struct raft_read_state *reads;
    size_t n_reads;
    const struct raft_read_fail *read_fails;
    size_t n_read_fails;
};

/*
 * Read-only access to the stable log.  Every callback returns RAFT_OK or an
 * error; the core never retains pointers returned by a callback: entries()
 * must copy data into memory from the buffer the core supplies through
 * raft_entries_push().
 *
 * The stable log holds entries first_index() .. last_index(); the snapshot
 * covers everything before first_index().  An empty log has
 * last_index() == first_index() - 1 == snapshot index.
 */
struct raft_entry_sink;
int raft_entries_push(struct raft_entry_sink *sink, const struct raft_entry *e);

struct raft_storage {
    int (*initial_state)(void *ctx, struct raft_hard_state *hs,
                         struct raft_snapshot_meta *snap);
    int (*first_index)(void *ctx, raft_index *out);
    int (*last_index)(void *ctx, raft_index *out);
    /* term of entry i, for snapshot.index <= i <= last_index */
    int (*term)(void *ctx, raft_index i, raft_term *out);
    /* push entries lo..hi-1, stopping early (but after at least one) once
     * max_bytes of data were pushed */
    int (*entries)(void *ctx, raft_index lo, raft_index hi, size_t max_bytes,
                   struct raft_entry_sink *sink);
};

struct raft_config {
    raft_id id;                  /* this node, nonzero, one of peers[] */
    raft_id peers[RAFT_MAX_NODES];
    unsigned n_peers;            /* voters including this node */
    unsigned election_tick;      /* base timeout; actual is [t, 2t) */
    unsigned heartbeat_tick;     /* < election_tick */
    size_t max_msg_bytes;        /* entry bytes per APPEND message */
    unsigned max_inflight;       /* APPEND messages in flight per peer */
    size_t max_entry_bytes;      /* largest proposal accepted */
    size_t max_uncommitted_bytes; /* leader refuses proposals beyond (0: none) */
    bool pre_vote;
    bool check_quorum;           /* leader steps down without a quorum */
    uint64_t seed;               /* randomized election timeouts */
    raft_index applied;          /* state machine's applied index at start */
    const struct raft_storage *storage;
    void *storage_ctx;
    /* Data of the no-op entry a new leader appends, at most
     * max_entry_bytes; the core never reads it.  The agent puts its
     * shard's identity there for the followers to compare with theirs.
     * NULL with 0: an empty no-op.  Borrowed: must outlive the node. */
    const void *noop_data;
    size_t noop_len;
};

/* Fill defaults: election 10, heartbeat 1, 1 MiB messages, 256 in flight,
 * 1 MiB entries, 64 MiB uncommitted, pre-vote and check-quorum on. */
void raft_config_defaults(struct raft_config *c);

struct raft;

/* Create a node from the state in storage.  Returns NULL and sets *err. */
struct raft *raft_new(const struct raft_config *c, enum raft_err *err);
void raft_free(struct raft *r);

int raft_tick(struct raft *r);
int raft_step(struct raft *r, const struct raft_msg *m);

/* Append a command.  On success, index and term identify the entry: it was
 * committed iff the entry applied at *index has term *term. */
int raft_propose(struct raft *r, const void *data, size_t len,
                 raft_index *index, raft_term *term);

/* Ask for a linearizable read.  ctx is the caller's handle (nonzero); the
 * answer arrives as a raft_read_state or raft_read_fail in a later ready. */
int raft_read_index(struct raft *r, uint64_t ctx);

/* Hand leadership to `to` (RAFT_NONE: the most up-to-date follower). */
int raft_transfer_leader(struct raft *r, raft_id to);

/* Force an election now (tests, tools). */
int raft_campaign(struct raft *r);

/* The transport could not deliver the snapshot to `peer`, or did. */
void raft_report_snapshot(struct raft *r, raft_id peer, bool ok);
/* The transport lost the connection to `peer`: stop pipelining to it. */
void raft_report_unreachable(struct raft *r, raft_id peer);

/* The caller compacted the stable log: entries below first_index are gone
 * and a snapshot at meta exists.  Needed so the core sends snapshots. */
void raft_compacted(struct raft *r, const struct raft_snapshot_meta *meta);

bool raft_has_ready(const struct raft *r);
const struct raft_ready *raft_ready(struct raft *r);
/* Mark the last ready batch as handled; see the protocol above. */
int raft_advance(struct raft *r);

struct raft_peer_status {
    raft_id id;
    raft_index match;
    raft_index next;
    bool recent_active;
    bool snapshotting;
};

struct raft_status {
    raft_id id;
    enum raft_role role;
    raft_term term;
    raft_id vote;
    raft_id leader;
    raft_index commit;
    raft_index applied;      /* highest index handed out in committed */
    raft_index last_index;
    raft_id transferee;
    /* a stepped SNAPSHOT message was taken: the log now starts after it,
     * and a ready batch asks to install it (until raft_advance) */
    bool snapshot_pending;
    unsigned n_peers;
    struct raft_peer_status peers[RAFT_MAX_NODES]; /* leader only */
};

void raft_status(const struct raft *r, struct raft_status *out);

#endif /* RAFT_H */

/*
 * transport.h — the peer transport of raft_agent: framed messages between
 * the replicas of one shard over TCP, on a libevent 2.1 event loop.
 *
 * Topology: for every configured peer the transport keeps one outbound
 * connection, used only to send to that peer, and re-establishes it with
 * exponential backoff (with jitter) whenever it drops.  It also listens and
 * accepts inbound connections, used only to receive.  The first frame on
 * every connection is a HELLO naming cluster, shard and node id; the
 * receiver closes a connection whose HELLO names another cluster or shard
 * or an unconfigured node, and any connection that sends a bad frame.  Raft
 * tolerates lost messages, so the transport drops rather than blocks: a
 * message for a peer that is not connected, or whose output queue is over
 * its limit, is dropped and counted.
 *
 * Single-threaded: every function must be called from the thread running
 * the event_base, and callbacks run on it.  Callbacks may call the send
 * functions (the received frame stays valid until the callback returns),
 * but must not call agenda_transport_free().
 *
 * Everything a peer sends is untrusted: frames are checked by codec.h and
 * a peer is never able to make the transport crash or buffer without
 * bound.  SIGPIPE must be ignored by the process (main does it).
 *
 * TLS is not implemented yet; all bufferevents are created in one place
 * (transport_bev_new() in transport.c) so bufferevent_openssl can be
 * plugged in there.
 */
#ifndef AGENDA_TRANSPORT_H
#define AGENDA_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "codec.h"
#include "raft.h"

struct agenda_transport;
struct agenda_tls;

/* Results of the send functions; agenda_transport_strerror() describes
 * each. */
enum agenda_transport_err {
    AGENDA_TRANSPORT_OK = 0,
    AGENDA_TRANSPORT_ERR_UNKNOWN_PEER,  /* destination not configured */
    AGENDA_TRANSPORT_ERR_NOT_CONNECTED, /* no connection now; dropped */
    AGENDA_TRANSPORT_ERR_QUEUE_FULL,    /* output queue over its limit */
    AGENDA_TRANSPORT_ERR_TOO_BIG,       /* frame above max_payload */
    AGENDA_TRANSPORT_ERR_INVALID,       /* value the codec cannot encode */
    AGENDA_TRANSPORT_ERR_NOMEM,
    AGENDA_TRANSPORT_ERR__COUNT
};

const char *agenda_transport_strerror(int err);

struct agenda_transport_peer {
    raft_id id;       /* nonzero, distinct; an entry equal to self is skipped */
    /* The replica's name: with TLS its certificate must name
     * <name>.<shard>.agenda (tls.h).  Unused without TLS. */
    const char *name;
    /* An IP literal, or a DNS name resolved again before every connection
     * attempt, off the event loop (glibc getaddrinfo_a, which uses a
     * helper thread of its own); the first address returned is used. */
    const char *host;
    uint16_t port;
};

/*
 * Configuration.  Strings are borrowed for the duration of
 * agenda_transport_new(); the transport copies what it keeps.
 */
struct agenda_transport_config {
    const char *cluster;     /* HELLO names, see struct agenda_hello */
    const char *shard;
    raft_id id;              /* this node */
    const char *listen_host; /* e.g. "0.0.0.0", "::", "127.0.0.1" */
    uint16_t listen_port;    /* 0: any free port, see _listen_port() */
    struct agenda_transport_peer peers[RAFT_MAX_NODES];
    unsigned n_peers;
    size_t max_payload;      /* largest frame payload sent or accepted */
    unsigned backoff_min_ms; /* first reconnect delay */
    unsigned backoff_max_ms; /* delay doubles up to this */
    size_t queue_limit;      /* bytes queued per peer before dropping */
    unsigned hello_timeout_ms; /* inbound connection must say HELLO */
    uint64_t seed;           /* jitter of the reconnect delays */
    /* Mutually authenticated TLS on every connection (tls.h), or NULL for
     * plain TCP.  Borrowed: it must outlive the transport. */
    struct agenda_tls *tls;
};

/* Fill the tunables with defaults: max_payload
 * AGENDA_CODEC_DEFAULT_MAX_PAYLOAD, backoff 50 ms .. 2 s, queue limit
 * 16 MiB, HELLO timeout 5 s, listen host "0.0.0.0" port 0.  Names, id and
 * peers are cleared and must be set by the caller. */
void agenda_transport_config_defaults(struct agenda_transport_config *cfg);

struct agenda_transport_callbacks {
    /* A message from a connected peer, checked by the codec and with
     * m->from equal to the sender's HELLO id and m->to our id.  m, its
     * entries and their data point into the input buffer and are valid
     * only during the call. */
    void (*on_msg)(void *arg, const struct raft_msg *m);
    /* A snapshot chunk from `from`; c->data is valid during the call. */
    void (*on_snap_chunk)(void *arg, raft_id from,
                          const struct agenda_snap_chunk *c);
    /* A snapshot acknowledgement from `from`. */
    void (*on_snap_ack)(void *arg, raft_id from,
                        const struct agenda_snap_ack *a);
    /* Our outbound connection to `peer` came up or went down (reported on
     * changes only).  Down is the moment to call raft_report_unreachable.
     * May be NULL, like every callback here. */
    void (*on_peer_state)(void *arg, raft_id peer, bool connected);
    /* The output queue to `peer` became empty: time to send the next
     * snapshot chunk. */
    void (*on_drain)(void *arg, raft_id peer);
};

/* Counters for /metrics; monotonic since agenda_transport_new(). */
struct agenda_transport_stats {
    uint64_t frames_in;      /* valid frames received (HELLO included) */
    uint64_t frames_out;     /* frames queued for sending */
    uint64_t bytes_in;       /* bytes of valid frames received */
    uint64_t bytes_out;      /* bytes of frames queued for sending */
    uint64_t bad_frames;     /* connections closed for a codec error */
    uint64_t rejected;       /* connections refused: bad HELLO, timeout,
                              * too many unidentified connections */
    uint64_t drops;          /* messages not queued (see send functions) */
    uint64_t connects;       /* outbound connections established */
    uint64_t reconnects;     /* outbound attempts after a failure or close */
    uint64_t accepted;       /* inbound connections accepted */
};

/*
 * Create a transport on base: bind and listen, and start connecting to
 * every peer (from the event loop, not within this call).  cb is copied;
 * cb_arg is passed to every callback.  Returns NULL on a bad configuration
 * (logged), when the address cannot be bound, or without memory.
 */
struct agenda_transport *
agenda_transport_new(struct event_base *base,
                     const struct agenda_transport_config *cfg,
                     const struct agenda_transport_callbacks *cb,
                     void *cb_arg);

/* Close every connection and the listener, free everything.  Queued
 * output is discarded.  Not from within a callback.  NULL is ignored. */
void agenda_transport_free(struct agenda_transport *t);

/* The port actually listened on (useful with listen_port 0). */
uint16_t agenda_transport_listen_port(const struct agenda_transport *t);

/*
 * Queue m for m->to.  m is borrowed for the call (the frame is copied).
 * Returns AGENDA_TRANSPORT_OK, or an error when the message was dropped and
 * counted: ERR_UNKNOWN_PEER, ERR_NOT_CONNECTED (no outbound connection,
 * e.g. during backoff; a connection being established does accept
 * messages), ERR_QUEUE_FULL (something is queued and this frame would take
 * the queue over queue_limit — an empty queue always takes one frame),
 * ERR_TOO_BIG, ERR_INVALID (see agenda_codec_msg_valid()), ERR_NOMEM.
 * The sender's own id must be m->from.
 */
int agenda_transport_send_msg(struct agenda_transport *t,
                              const struct raft_msg *m);

/* Queue a snapshot chunk / acknowledgement for `to`; same results as
 * agenda_transport_send_msg().  Snapshot streaming should wait for
 * on_drain (or agenda_transport_queued() == 0) before the next chunk. */
int agenda_transport_send_snap_chunk(struct agenda_transport *t, raft_id to,
                                     const struct agenda_snap_chunk *c);
int agenda_transport_send_snap_ack(struct agenda_transport *t, raft_id to,
                                   const struct agenda_snap_ack *a);

/* Write what is queued for every connected peer now instead of when the
 * loop next finds their sockets writable (bev_flush.h): call before
 * blocking in a sync, so that the peers work meanwhile.  on_drain still
 * comes from the loop, as for a queue the loop emptied. */
void agenda_transport_flush(struct agenda_transport *t);

/* Bytes queued on the outbound connection to peer (0 when none). */
size_t agenda_transport_queued(const struct agenda_transport *t,
                               raft_id peer);

/* Whether the outbound connection to peer is established. */
bool agenda_transport_connected(const struct agenda_transport *t,
                                raft_id peer);

void agenda_transport_stats(const struct agenda_transport *t,
                            struct agenda_transport_stats *out);

#endif /* AGENDA_TRANSPORT_H */

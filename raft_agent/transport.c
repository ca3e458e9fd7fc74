/* transport.c — peer connections over libevent bufferevents; see
 * transport.h. */
#include "transport.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "bev_flush.h"
#include "log.h"
#include "tls.h"

/* A HELLO is small; until one arrives a connection may not make us buffer
 * more than this (header included). */
#define HELLO_MAX_PAYLOAD (2 + 2 * AGENDA_NAME_MAX + 4)

/* Inbound connections that have not said HELLO yet, at most: a flood of
 * idle connections must not use up our file descriptors. */
#define MAX_UNIDENTIFIED 32

/* Pause after accept() fails (typically EMFILE) before accepting again,
 * so the loop does not spin on a listener it cannot serve. */
#define ACCEPT_PAUSE_MS 100

/* Working buffers above these sizes are released after use, so one large
 * message does not pin megabytes for the life of the process. */
#define SCRATCH_KEEP_BYTES ((size_t)1 << 20)
#define ENTS_KEEP 4096

/* How often a running DNS lookup is polled for completion. */
#define RESOLVE_POLL_MS 10

/*
 * A DNS lookup through glibc's getaddrinfo_a(), which resolves on a helper
 * thread of its own, so the event loop never blocks on a slow resolver.
 * libevent's evdns was tried first; it cannot be torn down safely while a
 * lookup is in flight.  The block is on the heap because a lookup that
 * cannot be cancelled still writes into it: it is then abandoned (it stays
 * reachable from glibc's request list) rather than freed under glibc.
 */
struct lookup {
    struct gaicb cb;
    struct addrinfo hints;
    char port[8];
};

/* An inbound connection: we only receive on it. */
struct conn {
    struct agenda_transport *t;
    struct bufferevent *bev;
    struct event *deadline; /* until its HELLO: closed when it fires */
    raft_id peer;         /* RAFT_NONE until its HELLO */
    bool busy;            /* delivering frames: freeing must wait */
    bool closing;         /* close once no longer busy */
    char addr[80];        /* "address:port (node N)", for log lines */
    struct conn *prev, *next;
};

/* A configured peer and our outbound connection to it: we only send on
 * it. */
struct peer {
    struct agenda_transport *t;
    raft_id id;
    char *host;
    uint16_t port;
    struct bufferevent *bev; /* NULL while waiting to reconnect */
    bool connected;          /* bev finished connecting */
    bool attempted;          /* a connection was tried before */
    bool fail_logged;        /* one log line per run of failures */
    unsigned backoff_ms;     /* upper bound of the next delay */
    struct timeval up_since;
    struct event *retry;
    struct lookup *lookup;   /* DNS lookup in flight, or NULL */
    unsigned addr_turn;      /* which of a name's addresses to try next */
    struct event *resolve;   /* polls the lookup */
    /* with TLS: the name its certificate must carry, both ways */
    char cert_name[AGENDA_TLS_NAME_MAX + 1];
};

struct agenda_transport {
    struct event_base *base;
    struct evconnlistener *listener;
    struct event *accept_pause;
    uint16_t port;

    struct agenda_hello hello; /* ours, sent on every outbound connection */
    raft_id id;
    struct agenda_tls *tls;    /* borrowed; NULL: plain TCP */
    struct peer peers[RAFT_MAX_NODES];
    unsigned n_peers;

    size_t max_payload;
    size_t queue_limit;
    unsigned backoff_min_ms;
    unsigned backoff_max_ms;
    unsigned hello_timeout_ms;
    uint64_t rng;

    struct agenda_transport_callbacks cb;
    void *cb_arg;

    struct conn *conns;
    unsigned n_unidentified;

    struct agenda_buf scratch; /* frames being encoded */
    struct raft_entry *ents;   /* entries of the message being delivered */
    size_t ents_cap;

    struct agenda_transport_stats stats;
};

static const char *const transport_errors[AGENDA_TRANSPORT_ERR__COUNT] = {
    [AGENDA_TRANSPORT_OK] = "success",
    [AGENDA_TRANSPORT_ERR_UNKNOWN_PEER] =
        "destination is not a configured peer",
    [AGENDA_TRANSPORT_ERR_NOT_CONNECTED] =
        "peer not connected; message dropped",
    [AGENDA_TRANSPORT_ERR_QUEUE_FULL] =
        "output queue to the peer is full; message dropped",
    [AGENDA_TRANSPORT_ERR_TOO_BIG] =
        "frame larger than the configured max payload",
    [AGENDA_TRANSPORT_ERR_INVALID] = "value cannot be encoded",
    [AGENDA_TRANSPORT_ERR_NOMEM] = "out of memory",
};

const char *agenda_transport_strerror(int err)
{
    if (err < 0 || err >= AGENDA_TRANSPORT_ERR__COUNT)
        return "unknown transport error";
    return transport_errors[err];
}

void agenda_transport_config_defaults(struct agenda_transport_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->listen_host = "0.0.0.0";
    cfg->max_payload = AGENDA_CODEC_DEFAULT_MAX_PAYLOAD;
    cfg->backoff_min_ms = 50;
    cfg->backoff_max_ms = 2000;
    cfg->queue_limit = (size_t)16 * 1024 * 1024;
    cfg->hello_timeout_ms = 5000;
}

/* --- helpers ------------------------------------------------------------- */

/* splitmix64: enough for jitter, and reproducible from the seed. */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static struct timeval ms_to_tv(unsigned ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

static struct peer *peer_find(struct agenda_transport *t, raft_id id)
{
    for (unsigned i = 0; i < t->n_peers; i++)
        if (t->peers[i].id == id)
            return &t->peers[i];
    return NULL;
}

static void set_nodelay(struct bufferevent *bev)
{
    /* Raft messages are small and latency-bound: do not let Nagle hold
     * them back.  Failure only costs latency. */
    evutil_socket_t fd = bufferevent_getfd(bev);
    int one = 1;
    if (fd >= 0)
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/*
 * The one place bufferevents are made.  With TLS the socket is wrapped in
 * a TLS bufferevent: outbound, the handshake requires the certificate of
 * the peer dialled (to); inbound, conn_hello checks the client's against
 * the node its HELLO names.  Nothing else in this file depends on the
 * bufferevent being a plain socket (with TLS, agenda_transport_flush()
 * leaves the writing to libevent: bev_flush.h).
 */
static struct bufferevent *transport_bev_new(struct agenda_transport *t,
                                             evutil_socket_t fd,
                                             const struct peer *to)
{
    if (t->tls != NULL)
        return agenda_tls_bev_new(t->tls, t->base, fd, to != NULL,
                                  to != NULL ? to->cert_name : NULL);
    return bufferevent_socket_new(t->base, fd, BEV_OPT_CLOSE_ON_FREE);
}

/* Why a connection failed: the TLS reason when there is one. */
static const char *bev_failure(struct bufferevent *bev)
{
    const char *tls = bev != NULL && bufferevent_openssl_get_ssl(bev)
                          ? agenda_tls_error(bev) : "";
    return tls[0] != '\0' ? tls
                           : evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR());
}

/* Free a bufferevent without any callback reaching us afterwards (freeing
 * may complete later inside libevent, e.g. after a DNS lookup ends). */
static void bev_close(struct bufferevent *bev)
{
    bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
    bufferevent_free(bev);
}

/* --- inbound connections ------------------------------------------------ */

static void conn_free(struct conn *c)
{
    struct agenda_transport *t = c->t;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        t->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    if (c->peer == RAFT_NONE)
        t->n_unidentified--;
    if (c->deadline != NULL)
        event_free(c->deadline);
    bev_close(c->bev);
    free(c);
}

/* Close c now, or as soon as the frame being delivered is done with. */
static void conn_close(struct conn *c)
{
    if (c->busy)
        c->closing = true;
    else
        conn_free(c);
}

static void conn_bad(struct conn *c, const char *what, int err)
{
    c->t->stats.bad_frames++;
    agenda_log(AGENDA_LOG_WARN,
               "transport: closing connection from %s: %s: %s", c->addr,
               what, agenda_codec_strerror(err));
    conn_close(c);
}

static void conn_reject(struct conn *c, const char *why)
{
    c->t->stats.rejected++;
    agenda_log(AGENDA_LOG_WARN, "transport: rejecting connection from %s: %s",
               c->addr, why);
    conn_close(c);
}

static void conn_hello(struct conn *c, const struct agenda_frame *f)
{
    struct agenda_transport *t = c->t;
    struct agenda_hello h;
    int rc = agenda_codec_decode_hello(f->payload, f->len, &h);
    if (rc != AGENDA_CODEC_OK) {
        conn_bad(c, "HELLO", rc);
        return;
    }
    char why[320];
    if (strcmp(h.cluster, t->hello.cluster) != 0 ||
        strcmp(h.shard, t->hello.shard) != 0) {
        snprintf(why, sizeof why,
                 "it belongs to cluster %s shard %s, we are %s shard %s",
                 h.cluster, h.shard, t->hello.cluster, t->hello.shard);
        conn_reject(c, why);
        return;
    }
    const struct peer *p = peer_find(t, h.node_id);
    if (p == NULL) {
        snprintf(why, sizeof why, "node %u is not a configured peer",
                 (unsigned)h.node_id);
        conn_reject(c, why);
        return;
    }
    if (t->tls != NULL && !agenda_tls_peer_is(c->bev, p->cert_name)) {
        snprintf(why, sizeof why, "it says it is node %u but its "
                 "certificate does not name %s", (unsigned)h.node_id,
                 p->cert_name);
        conn_reject(c, why);
        return;
    }

    c->peer = h.node_id;
    t->n_unidentified--;
    size_t used = strlen(c->addr);
    snprintf(c->addr + used, sizeof c->addr - used, " (node %u)",
             (unsigned)c->peer);
    event_free(c->deadline);
    c->deadline = NULL;

    /* One inbound connection per peer: a new HELLO means the peer
     * reconnected (say, after a restart) and an older connection is dead
     * even if TCP has not noticed yet. */
    for (struct conn *o = t->conns, *next; o != NULL; o = next) {
        next = o->next;
        if (o != c && o->peer == c->peer)
            conn_close(o);
    }
    agenda_log(AGENDA_LOG_INFO, "transport: inbound connection from %s",
               c->addr);
}

/* Make room for n decoded entries; the array is reused across messages
 * and n is bounded by the payload size (see agenda_codec_msg_n_entries). */
static bool ents_reserve(struct agenda_transport *t, size_t n)
{
    if (n <= t->ents_cap)
        return true;
    struct raft_entry *e = realloc(t->ents, n * sizeof *e);
    if (e == NULL)
        return false;
    t->ents = e;
    t->ents_cap = n;
    return true;
}

static void conn_raft_msg(struct conn *c, const struct agenda_frame *f)
{
    struct agenda_transport *t = c->t;
    uint32_t n;
    int rc = agenda_codec_msg_n_entries(f->payload, f->len, &n);
    if (rc != AGENDA_CODEC_OK) {
        conn_bad(c, "RAFT_MSG", rc);
        return;
    }
    if (!ents_reserve(t, n)) {
        agenda_log(AGENDA_LOG_ERROR,
                   "transport: out of memory for %u entries from node %u",
                   (unsigned)n, (unsigned)c->peer);
        conn_close(c);
        return;
    }
    struct raft_msg m;
    rc = agenda_codec_decode_msg(f->payload, f->len, &m, t->ents,
                                 t->ents_cap);
    if (rc != AGENDA_CODEC_OK) {
        conn_bad(c, "RAFT_MSG", rc);
        return;
    }
    if (m.from != c->peer || m.to != t->id) {
        t->stats.bad_frames++;
        agenda_log(AGENDA_LOG_WARN,
                   "transport: closing connection from %s: it carried a "
                   "message from %u to %u",
                   c->addr, (unsigned)m.from, (unsigned)m.to);
        conn_close(c);
        return;
    }
    if (t->cb.on_msg != NULL)
        t->cb.on_msg(t->cb_arg, &m);
    if (t->ents_cap > ENTS_KEEP) {
        free(t->ents);
        t->ents = NULL;
        t->ents_cap = 0;
    }
}

static void conn_frame(struct conn *c, const struct agenda_frame *f)
{
    struct agenda_transport *t = c->t;
    int rc;

    if (c->peer == RAFT_NONE) {
        if (f->type != AGENDA_FRAME_HELLO)
            conn_reject(c, "first frame is not a HELLO");
        else
            conn_hello(c, f);
        return;
    }
    switch (f->type) {
    case AGENDA_FRAME_RAFT_MSG:
        conn_raft_msg(c, f);
        break;
    case AGENDA_FRAME_SNAP_CHUNK: {
        struct agenda_snap_chunk ch;
        rc = agenda_codec_decode_snap_chunk(f->payload, f->len, &ch);
        if (rc != AGENDA_CODEC_OK)
            conn_bad(c, "SNAP_CHUNK", rc);
        else if (t->cb.on_snap_chunk != NULL)
            t->cb.on_snap_chunk(t->cb_arg, c->peer, &ch);
        break;
    }
    case AGENDA_FRAME_SNAP_ACK: {
        struct agenda_snap_ack a;
        rc = agenda_codec_decode_snap_ack(f->payload, f->len, &a);
        if (rc != AGENDA_CODEC_OK)
            conn_bad(c, "SNAP_ACK", rc);
        else if (t->cb.on_snap_ack != NULL)
            t->cb.on_snap_ack(t->cb_arg, c->peer, &a);
        break;
    }
    default: /* a second HELLO: the parser knows no other type */
        conn_bad(c, "second HELLO", AGENDA_CODEC_ERR_PAYLOAD);
        break;
    }
}

static size_t conn_max_payload(const struct conn *c)
{
    return c->peer == RAFT_NONE ? HELLO_MAX_PAYLOAD : c->t->max_payload;
}

/*
 * Deliver every complete frame in the input.  The payload is made
 * contiguous with evbuffer_pullup() and drained only after the callbacks
 * return, which is what keeps pointers handed to them valid.  While a
 * frame is incomplete the read low watermark is set to its full size, so a
 * large frame costs one callback rather than one per read.
 */
static void conn_readcb(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    struct agenda_transport *t = c->t;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t want = 0;

    c->busy = true;
    while (!c->closing) {
        size_t avail = evbuffer_get_length(in);
        if (avail == 0)
            break;
        uint8_t hdr[AGENDA_FRAME_HEADER_SIZE];
        size_t n = avail < sizeof hdr ? avail : sizeof hdr;
        if (evbuffer_copyout(in, hdr, n) != (ev_ssize_t)n) {
            conn_bad(c, "reading input", AGENDA_CODEC_ERR_NOMEM);
            break;
        }
        struct agenda_frame f;
        size_t need;
        size_t max = conn_max_payload(c);
        int rc = agenda_frame_parse(hdr, n, max, &f, &need);
        if (rc != AGENDA_CODEC_OK && rc != AGENDA_CODEC_NEED_MORE) {
            conn_bad(c, "frame", rc);
            break;
        }
        if (need > avail) {
            want = need;
            break;
        }
        const uint8_t *p = evbuffer_pullup(in, (ev_ssize_t)need);
        if (p == NULL) {
            conn_bad(c, "reading input", AGENDA_CODEC_ERR_NOMEM);
            break;
        }
        rc = agenda_frame_parse(p, need, max, &f, &need);
        if (rc != AGENDA_CODEC_OK) {
            conn_bad(c, "frame", rc);
            break;
        }
        t->stats.frames_in++;
        t->stats.bytes_in += need;
        conn_frame(c, &f);
        evbuffer_drain(in, need);
    }
    c->busy = false;
    if (c->closing) {
        conn_free(c);
        return;
    }
    bufferevent_setwatermark(bev, EV_READ, want,
                             AGENDA_FRAME_HEADER_SIZE + conn_max_payload(c));
}

static void conn_eventcb(struct bufferevent *bev, short what, void *arg)
{
    struct conn *c = arg;
    if (what & BEV_EVENT_ERROR)
        agenda_log(AGENDA_LOG_INFO,
                   "transport: connection from %s failed: %s", c->addr,
                   bev_failure(bev));
    else if (what & BEV_EVENT_EOF)
        agenda_log(AGENDA_LOG_INFO,
                   "transport: connection from %s closed", c->addr);
    if (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF))
        conn_close(c);
}

static void format_addr(const struct sockaddr *sa, char *out, size_t size)
{
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        evutil_inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        port = ntohs(in->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        evutil_inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        port = ntohs(in6->sin6_port);
    }
    snprintf(out, size, "%s:%u", host, port);
}

/* A connection that has not said HELLO within hello_timeout_ms of its
 * accept.  A deadline, not a read timeout: one byte now and then (of a TLS
 * handshake, say) must not keep a connection that never names itself. */
static void conn_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    (void)fd;
    (void)what;
    conn_reject(c, "no HELLO in time");
}

/* The unidentified connection accepted first (the list is newest first),
 * if one can be freed now. */
static struct conn *oldest_unidentified(struct agenda_transport *t)
{
    struct conn *oldest = NULL;
    for (struct conn *c = t->conns; c != NULL; c = c->next)
        if (c->peer == RAFT_NONE && !c->busy)
            oldest = c;
    return oldest;
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd,
                      struct sockaddr *sa, int socklen, void *arg)
{
    struct agenda_transport *t = arg;
    (void)l;
    (void)socklen;

    /* Full: the oldest waiting connection makes room.  Refusing the new
     * one instead would let anyone who holds MAX_UNIDENTIFIED idle
     * connections keep every peer out; now they must open that many
     * between a peer's connect and its HELLO, a few milliseconds. */
    if (t->n_unidentified >= MAX_UNIDENTIFIED) {
        struct conn *oldest = oldest_unidentified(t);
        t->stats.rejected++;
        if (oldest == NULL) {
            evutil_closesocket(fd);
            return;
        }
        conn_free(oldest);
    }
    struct conn *c = calloc(1, sizeof *c);
    struct bufferevent *bev = c ? transport_bev_new(t, fd, NULL) : NULL;
    struct event *deadline = bev ? evtimer_new(t->base, conn_deadline_cb, c)
                                 : NULL;
    struct timeval hello_tv = ms_to_tv(t->hello_timeout_ms);
    if (deadline == NULL || evtimer_add(deadline, &hello_tv) != 0) {
        agenda_log(AGENDA_LOG_ERROR, "transport: out of memory on accept");
        if (deadline != NULL)
            event_free(deadline);
        if (bev != NULL)
            bufferevent_free(bev);
        else
            evutil_closesocket(fd);
        free(c);
        return;
    }
    c->deadline = deadline;
    c->t = t;
    c->bev = bev;
    format_addr(sa, c->addr, sizeof c->addr);
    c->next = t->conns;
    if (t->conns != NULL)
        t->conns->prev = c;
    t->conns = c;
    t->n_unidentified++;
    t->stats.accepted++;

    set_nodelay(bev);
    bufferevent_setcb(bev, conn_readcb, NULL, conn_eventcb, c);
    bufferevent_setwatermark(bev, EV_READ, 0,
                             AGENDA_FRAME_HEADER_SIZE + HELLO_MAX_PAYLOAD);
    bufferevent_enable(bev, EV_READ);
}

static void accept_resume_cb(evutil_socket_t fd, short what, void *arg)
{
    struct agenda_transport *t = arg;
    (void)fd;
    (void)what;
    evconnlistener_enable(t->listener);
}

static void accept_error_cb(struct evconnlistener *l, void *arg)
{
    struct agenda_transport *t = arg;
    agenda_log(AGENDA_LOG_ERROR, "transport: accept failed: %s; pausing",
               evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    evconnlistener_disable(l);
    struct timeval tv = ms_to_tv(ACCEPT_PAUSE_MS);
    evtimer_add(t->accept_pause, &tv);
}

/* --- outbound connections ----------------------------------------------- */

static void peer_schedule(struct peer *p)
{
    struct agenda_transport *t = p->t;
    /* Jitter in [delay/2, delay] keeps restarted replicas from
     * reconnecting in lockstep. */
    unsigned delay = p->backoff_ms;
    unsigned half = delay / 2;
    unsigned ms = half + (unsigned)(rng_next(&t->rng) % (delay - half + 1));
    struct timeval tv = ms_to_tv(ms);
    evtimer_add(p->retry, &tv);
    p->backoff_ms = delay > t->backoff_max_ms / 2 ? t->backoff_max_ms
                                                  : delay * 2;
}

/* The outbound connection is gone (failed, closed, or misbehaved). */
static void peer_down(struct peer *p, const char *why)
{
    struct agenda_transport *t = p->t;
    bool was_connected = p->connected;

    if (p->bev != NULL) {
        bev_close(p->bev);
        p->bev = NULL;
    }
    p->connected = false;
    /* an attempt that never connected moves on to the name's next
     * address (see peer_resolve_cb) */
    if (!was_connected)
        p->addr_turn++;

    if (was_connected) {
        /* A connection that stayed up for a while proves the peer healthy:
         * start again from the shortest delay.  One that dies at once
         * (say, the peer rejects our HELLO) keeps backing off. */
        struct timeval now, up;
        event_base_gettimeofday_cached(t->base, &now);
        evutil_timersub(&now, &p->up_since, &up);
        long up_ms = (long)up.tv_sec * 1000 + (long)(up.tv_usec / 1000);
        if (up_ms >= (long)t->backoff_max_ms)
            p->backoff_ms = t->backoff_min_ms;
        agenda_log(AGENDA_LOG_WARN, "transport: lost node %u (%s:%u): %s",
                   (unsigned)p->id, p->host, (unsigned)p->port, why);
        p->fail_logged = true;
    } else if (!p->fail_logged) {
        agenda_log(AGENDA_LOG_WARN,
                   "transport: cannot connect to node %u (%s:%u): %s; "
                   "retrying",
                   (unsigned)p->id, p->host, (unsigned)p->port, why);
        p->fail_logged = true;
    }
    peer_schedule(p);
    if (was_connected && t->cb.on_peer_state != NULL)
        t->cb.on_peer_state(t->cb_arg, p->id, false);
}

static void peer_readcb(struct bufferevent *bev, void *arg)
{
    struct peer *p = arg;
    (void)bev;
    /* We never expect bytes on a connection we send on. */
    p->t->stats.bad_frames++;
    peer_down(p, "unexpected data from the peer");
}

static void peer_writecb(struct bufferevent *bev, void *arg)
{
    struct peer *p = arg;
    struct agenda_transport *t = p->t;
    (void)bev;
    /* Called when the output drains to the low watermark, 0. */
    if (p->connected && t->cb.on_drain != NULL)
        t->cb.on_drain(t->cb_arg, p->id);
}

static void peer_eventcb(struct bufferevent *bev, short what, void *arg)
{
    struct peer *p = arg;
    struct agenda_transport *t = p->t;

    if (what & BEV_EVENT_CONNECTED) {
        struct timeval io_tv = ms_to_tv(t->hello_timeout_ms);
        bufferevent_set_timeouts(bev, NULL, &io_tv);
        p->connected = true;
        p->fail_logged = false;
        event_base_gettimeofday_cached(t->base, &p->up_since);
        t->stats.connects++;
        set_nodelay(bev);
        agenda_log(AGENDA_LOG_INFO, "transport: connected to node %u (%s:%u)",
                   (unsigned)p->id, p->host, (unsigned)p->port);
        if (t->cb.on_peer_state != NULL)
            t->cb.on_peer_state(t->cb_arg, p->id, true);
        return;
    }
    if (what & BEV_EVENT_TIMEOUT) {
        peer_down(p, "timed out");
    } else if (what & BEV_EVENT_EOF) {
        peer_down(p, "closed by the peer");
    } else if (what & BEV_EVENT_ERROR) {
        peer_down(p, bev_failure(bev));
    }
}

/* Fill a sockaddr when host is an IP literal; false for DNS names. */
static bool parse_ip(const char *host, uint16_t port,
                     struct sockaddr_storage *ss, int *len)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (evutil_inet_pton(AF_INET, host, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons(port);
        *len = (int)sizeof *in;
        return true;
    }
    if (evutil_inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        *len = (int)sizeof *in6;
        return true;
    }
    return false;
}

/* Open the outbound connection to an address: HELLO first, then connect
 * (libevent keeps the output until the connection is up). */
static void peer_open(struct peer *p, const struct sockaddr *sa, int len)
{
    struct agenda_transport *t = p->t;
    struct bufferevent *bev = transport_bev_new(t, -1, p);
    if (bev == NULL) {
        peer_down(p, "out of memory");
        return;
    }
    p->bev = bev;
    bufferevent_setcb(bev, peer_readcb, peer_writecb, peer_eventcb, p);
    bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
    /* The write timeout bounds both connecting (HELLO is pending) and a
     * peer that stops reading while we have output for it.  The read one
     * bounds a TLS handshake, which waits for the server's answers with
     * nothing to write (a host that froze after its kernel accepted us
     * would hold the link for good); it ends once connected, since a peer
     * never writes on this connection. */
    struct timeval io_tv = ms_to_tv(t->hello_timeout_ms);
    bufferevent_set_timeouts(bev, &io_tv, &io_tv);

    agenda_buf_reset(&t->scratch);
    if (agenda_codec_encode_hello(&t->scratch, &t->hello) != 0 ||
        bufferevent_write(bev, t->scratch.data, t->scratch.len) != 0) {
        peer_down(p, "out of memory");
        return;
    }
    t->stats.frames_out++;
    t->stats.bytes_out += t->scratch.len;

    if (bufferevent_socket_connect(bev, sa, len) != 0) {
        peer_down(p, "connect failed to start");
        return;
    }
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

/* Release the lookup of p; see struct lookup for why it may be left to
 * glibc instead of freed. */
static void lookup_drop(struct peer *p)
{
    struct lookup *l = p->lookup;
    if (l == NULL)
        return;
    p->lookup = NULL;
    evtimer_del(p->resolve);
    if (gai_error(&l->cb) == EAI_INPROGRESS &&
        gai_cancel(&l->cb) != EAI_CANCELED)
        return; /* still running: abandoned to glibc */
    if (l->cb.ar_result != NULL)
        freeaddrinfo(l->cb.ar_result);
    free(l);
}

static void peer_resolve_cb(evutil_socket_t fd, short what, void *arg)
{
    struct peer *p = arg;
    (void)fd;
    (void)what;
    int rc = gai_error(&p->lookup->cb);
    if (rc == EAI_INPROGRESS) {
        struct timeval tv = ms_to_tv(RESOLVE_POLL_MS);
        evtimer_add(p->resolve, &tv);
        return;
    }
    if (rc != 0 || p->lookup->cb.ar_result == NULL) {
        char why[160];
        snprintf(why, sizeof why, "cannot resolve: %s",
                 rc != 0 ? gai_strerror(rc) : "no address");
        lookup_drop(p);
        peer_down(p, why);
        return;
    }
    /* One address per attempt, the next one after an attempt that did not
     * connect: a name may have several (Debian's "localhost" is ::1 and
     * 127.0.0.1) while the peer listens on one.  Every attempt resolves
     * again (containers move). */
    struct sockaddr_storage ss;
    const struct addrinfo *ai = p->lookup->cb.ar_result;
    unsigned n = 0;
    for (const struct addrinfo *a = ai; a != NULL; a = a->ai_next)
        n++;
    for (unsigned skip = p->addr_turn % n; skip > 0; skip--)
        ai = ai->ai_next;
    int len = (int)ai->ai_addrlen;
    if (ai->ai_addrlen > sizeof ss) {
        lookup_drop(p);
        peer_down(p, "resolver returned an oversized address");
        return;
    }
    memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
    lookup_drop(p);
    peer_open(p, (const struct sockaddr *)&ss, len);
}

/* Start a lookup of p->host; false when it cannot be started. */
static bool peer_resolve(struct peer *p)
{
    struct lookup *l = calloc(1, sizeof *l);
    if (l == NULL)
        return false;
    snprintf(l->port, sizeof l->port, "%u", (unsigned)p->port);
    l->hints.ai_family = AF_UNSPEC;
    l->hints.ai_socktype = SOCK_STREAM;
    l->hints.ai_protocol = IPPROTO_TCP;
    l->hints.ai_flags = AI_ADDRCONFIG | AI_NUMERICSERV;
    l->cb.ar_name = p->host;
    l->cb.ar_service = l->port;
    l->cb.ar_request = &l->hints;
    struct gaicb *list[1] = {&l->cb};
    if (getaddrinfo_a(GAI_NOWAIT, list, 1, NULL) != 0) {
        free(l);
        return false;
    }
    p->lookup = l;
    struct timeval tv = ms_to_tv(RESOLVE_POLL_MS);
    evtimer_add(p->resolve, &tv);
    return true;
}

static void peer_connect(struct peer *p)
{
    struct agenda_transport *t = p->t;

    if (p->attempted)
        t->stats.reconnects++;
    p->attempted = true;

    struct sockaddr_storage ss;
    int sslen;
    if (parse_ip(p->host, p->port, &ss, &sslen))
        peer_open(p, (const struct sockaddr *)&ss, sslen);
    else if (!peer_resolve(p))
        peer_down(p, "cannot start a DNS lookup");
}

static void peer_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    peer_connect(arg);
}

/* --- sending ------------------------------------------------------------ */

/* Queue the frame in t->scratch on p's outbound connection. */
static int peer_queue(struct agenda_transport *t, struct peer *p)
{
    if (t->scratch.len - AGENDA_FRAME_HEADER_SIZE > t->max_payload)
        return AGENDA_TRANSPORT_ERR_TOO_BIG;
    if (p->bev == NULL)
        return AGENDA_TRANSPORT_ERR_NOT_CONNECTED;
    struct evbuffer *out = bufferevent_get_output(p->bev);
    size_t queued = evbuffer_get_length(out);
    /* An empty queue takes any frame, so a frame larger than the limit
     * can still go out; otherwise the queue never exceeds the limit. */
    if (queued > 0 && (queued >= t->queue_limit ||
                       t->scratch.len > t->queue_limit - queued))
        return AGENDA_TRANSPORT_ERR_QUEUE_FULL;
    if (bufferevent_write(p->bev, t->scratch.data, t->scratch.len) != 0)
        return AGENDA_TRANSPORT_ERR_NOMEM;
    t->stats.frames_out++;
    t->stats.bytes_out += t->scratch.len;
    return AGENDA_TRANSPORT_OK;
}

static int codec_to_transport(int rc)
{
    return rc == AGENDA_CODEC_ERR_NOMEM ? AGENDA_TRANSPORT_ERR_NOMEM
                                        : AGENDA_TRANSPORT_ERR_INVALID;
}

/* Common tail of the send functions: count a drop on failure. */
static int send_done(struct agenda_transport *t, int rc)
{
    if (rc != AGENDA_TRANSPORT_OK)
        t->stats.drops++;
    if (t->scratch.cap > SCRATCH_KEEP_BYTES)
        agenda_buf_free(&t->scratch);
    return rc;
}

int agenda_transport_send_msg(struct agenda_transport *t,
                              const struct raft_msg *m)
{
    struct peer *p = peer_find(t, m->to);
    if (p == NULL)
        return send_done(t, AGENDA_TRANSPORT_ERR_UNKNOWN_PEER);
    if (m->from != t->id)
        return send_done(t, AGENDA_TRANSPORT_ERR_INVALID);
    if (p->bev == NULL) /* skip encoding what would be dropped anyway */
        return send_done(t, AGENDA_TRANSPORT_ERR_NOT_CONNECTED);
    agenda_buf_reset(&t->scratch);
    int rc = agenda_codec_encode_msg(&t->scratch, m);
    if (rc != AGENDA_CODEC_OK)
        return send_done(t, codec_to_transport(rc));
    return send_done(t, peer_queue(t, p));
}

void agenda_transport_flush(struct agenda_transport *t)
{
    for (unsigned i = 0; i < t->n_peers; i++) {
        struct peer *p = &t->peers[i];
        if (p->bev != NULL && p->connected)
            agenda_bev_write_now(p->bev);
    }
}

int agenda_transport_send_snap_chunk(struct agenda_transport *t, raft_id to,
                                     const struct agenda_snap_chunk *c)
{
    struct peer *p = peer_find(t, to);
    if (p == NULL)
        return send_done(t, AGENDA_TRANSPORT_ERR_UNKNOWN_PEER);
    if (p->bev == NULL)
        return send_done(t, AGENDA_TRANSPORT_ERR_NOT_CONNECTED);
    if (c->len > t->max_payload)
        return send_done(t, AGENDA_TRANSPORT_ERR_TOO_BIG);
    agenda_buf_reset(&t->scratch);
    int rc = agenda_codec_encode_snap_chunk(&t->scratch, c);
    if (rc != AGENDA_CODEC_OK)
        return send_done(t, codec_to_transport(rc));
    return send_done(t, peer_queue(t, p));
}

int agenda_transport_send_snap_ack(struct agenda_transport *t, raft_id to,
                                   const struct agenda_snap_ack *a)
{
    struct peer *p = peer_find(t, to);
    if (p == NULL)
        return send_done(t, AGENDA_TRANSPORT_ERR_UNKNOWN_PEER);
    agenda_buf_reset(&t->scratch);
    int rc = agenda_codec_encode_snap_ack(&t->scratch, a);
    if (rc != AGENDA_CODEC_OK)
        return send_done(t, codec_to_transport(rc));
    return send_done(t, peer_queue(t, p));
}

size_t agenda_transport_queued(const struct agenda_transport *t,
                               raft_id peer)
{
    for (unsigned i = 0; i < t->n_peers; i++) {
        const struct peer *p = &t->peers[i];
        if (p->id == peer && p->bev != NULL)
            return evbuffer_get_length(bufferevent_get_output(p->bev));
    }
    return 0;
}

bool agenda_transport_connected(const struct agenda_transport *t,
                                raft_id peer)
{
    for (unsigned i = 0; i < t->n_peers; i++)
        if (t->peers[i].id == peer)
            return t->peers[i].connected;
    return false;
}

void agenda_transport_stats(const struct agenda_transport *t,
                            struct agenda_transport_stats *out)
{
    *out = t->stats;
}

uint16_t agenda_transport_listen_port(const struct agenda_transport *t)
{
    return t->port;
}

/* --- life cycle ---------------------------------------------------------- */

static bool copy_name(char dst[AGENDA_NAME_MAX + 1], const char *src,
                      const char *what)
{
    if (src == NULL || strlen(src) > AGENDA_NAME_MAX) {
        agenda_log(AGENDA_LOG_ERROR,
                   "transport: %s name missing or longer than %u bytes",
                   what, AGENDA_NAME_MAX);
        return false;
    }
    strcpy(dst, src);
    return true;
}

static bool config_valid(struct agenda_transport *t,
                         const struct agenda_transport_config *cfg)
{
    if (!copy_name(t->hello.cluster, cfg->cluster, "cluster") ||
        !copy_name(t->hello.shard, cfg->shard, "shard"))
        return false;
    t->hello.node_id = cfg->id;
    struct agenda_buf probe = {0};
    int rc = agenda_codec_encode_hello(&probe, &t->hello);
    agenda_buf_free(&probe);
    if (rc != AGENDA_CODEC_OK) {
        agenda_log(AGENDA_LOG_ERROR,
                   "transport: invalid node id or cluster/shard name (use "
                   "printable characters without spaces)");
        return false;
    }
    if (cfg->n_peers > RAFT_MAX_NODES || cfg->backoff_min_ms == 0 ||
        cfg->backoff_max_ms < cfg->backoff_min_ms ||
        cfg->backoff_max_ms > 3600u * 1000u || cfg->queue_limit == 0 ||
        cfg->hello_timeout_ms == 0 || cfg->listen_host == NULL ||
        cfg->max_payload < HELLO_MAX_PAYLOAD ||
        cfg->max_payload > UINT32_MAX) {
        agenda_log(AGENDA_LOG_ERROR, "transport: invalid configuration "
                                     "(peers, backoff, limits or timeouts)");
        return false;
    }
    return true;
}

static bool add_peers(struct agenda_transport *t,
                      const struct agenda_transport_config *cfg)
{
    for (unsigned i = 0; i < cfg->n_peers; i++) {
        const struct agenda_transport_peer *cp = &cfg->peers[i];
        if (cp->id == t->id)
            continue;
        if (cp->id == RAFT_NONE || cp->host == NULL || cp->port == 0 ||
            peer_find(t, cp->id) != NULL) {
            agenda_log(AGENDA_LOG_ERROR,
                       "transport: peer %u: missing or duplicate id, host "
                       "or port", i);
            return false;
        }
        struct peer *p = &t->peers[t->n_peers];
        if (t->tls != NULL &&
            (cp->name == NULL ||
             !agenda_tls_replica_name(p->cert_name, sizeof p->cert_name,
                                      t->hello.shard, cp->name))) {
            agenda_log(AGENDA_LOG_ERROR, "transport: peer %u: TLS needs "
                       "its replica name", i);
            return false;
        }
        p->t = t;
        p->id = cp->id;
        p->port = cp->port;
        p->backoff_ms = t->backoff_min_ms;
        p->host = strdup(cp->host);
        p->retry = evtimer_new(t->base, peer_retry_cb, p);
        p->resolve = evtimer_new(t->base, peer_resolve_cb, p);
        t->n_peers++; /* before checking, so free() releases them */
        if (p->host == NULL || p->retry == NULL || p->resolve == NULL)
            return false;
    }
    return true;
}

static bool listen_on(struct agenda_transport *t,
                      const struct agenda_transport_config *cfg)
{
    char port[8];
    snprintf(port, sizeof port, "%u", (unsigned)cfg->listen_port);
    struct evutil_addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    hints.ai_flags = EVUTIL_AI_PASSIVE | EVUTIL_AI_ADDRCONFIG;
    int rc = evutil_getaddrinfo(cfg->listen_host, port, &hints, &ai);
    if (rc != 0) {
        agenda_log(AGENDA_LOG_ERROR, "transport: listen address %s: %s",
                   cfg->listen_host, evutil_gai_strerror(rc));
        return false;
    }
    t->listener = evconnlistener_new_bind(
        t->base, accept_cb, t,
        LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
        -1, ai->ai_addr, (int)ai->ai_addrlen);
    evutil_freeaddrinfo(ai);
    if (t->listener == NULL) {
        agenda_log(AGENDA_LOG_ERROR, "transport: cannot listen on %s:%u: %s",
                   cfg->listen_host, (unsigned)cfg->listen_port,
                   evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        return false;
    }
    evconnlistener_set_error_cb(t->listener, accept_error_cb);

    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    evutil_socket_t fd = evconnlistener_get_fd(t->listener);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return false;
    if (ss.ss_family == AF_INET)
        t->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    else
        t->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return true;
}

struct agenda_transport *
agenda_transport_new(struct event_base *base,
                     const struct agenda_transport_config *cfg,
                     const struct agenda_transport_callbacks *cb,
                     void *cb_arg)
{
    struct agenda_transport *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    t->base = base;
    t->id = cfg->id;
    t->tls = cfg->tls;
    t->cb = *cb;
    t->cb_arg = cb_arg;
    t->max_payload = cfg->max_payload;
    t->queue_limit = cfg->queue_limit;
    t->backoff_min_ms = cfg->backoff_min_ms;
    t->backoff_max_ms = cfg->backoff_max_ms;
    t->hello_timeout_ms = cfg->hello_timeout_ms;
    t->rng = cfg->seed ^ ((uint64_t)cfg->id << 32);

    if (!config_valid(t, cfg) || !add_peers(t, cfg))
        goto fail;
    t->accept_pause = evtimer_new(base, accept_resume_cb, t);
    if (t->accept_pause == NULL || !listen_on(t, cfg))
        goto fail;

    /* First attempts run from the loop, so no callback fires inside
     * agenda_transport_new(). */
    struct timeval now = {0, 0};
    for (unsigned i = 0; i < t->n_peers; i++)
        evtimer_add(t->peers[i].retry, &now);
    return t;

fail:
    agenda_transport_free(t);
    return NULL;
}

void agenda_transport_free(struct agenda_transport *t)
{
    if (t == NULL)
        return;
    while (t->conns != NULL)
        conn_free(t->conns);
    for (unsigned i = 0; i < t->n_peers; i++) {
        struct peer *p = &t->peers[i];
        if (p->bev != NULL)
            bev_close(p->bev);
        if (p->resolve != NULL) {
            lookup_drop(p);
            event_free(p->resolve);
        }
        if (p->retry != NULL)
            event_free(p->retry);
        free(p->host);
    }
    if (t->listener != NULL)
        evconnlistener_free(t->listener);
    if (t->accept_pause != NULL)
        event_free(t->accept_pause);
    agenda_buf_free(&t->scratch);
    free(t->ents);
    free(t);
}

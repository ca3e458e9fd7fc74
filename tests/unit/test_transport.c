/*
 * test_transport.c — the peer transport over real loopback sockets.
 *
 * Every test runs its own event_base; run_until() drives it until a
 * condition holds or a deadline passes, so a broken transport fails a test
 * instead of hanging it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "buf.h"
#include "codec.h"
#include "crc32c.h"
#include "log.h"
#include "transport.h"

#define CLUSTER "agenda-test"
#define SHARD "events_am"

/* --- fixture -------------------------------------------------------------- */

struct node {
    struct agenda_transport *t;
    raft_id id;
    uint16_t port;

    unsigned n_msgs;
    struct raft_msg last;          /* fields only; entries summarised: */
    uint32_t last_n_entries;
    uint64_t last_entry_index;
    uint32_t last_data_crc;        /* CRC of all entry data, in order */
    uint64_t last_data_len;

    bool reply;                    /* answer APPEND from inside on_msg */

    unsigned n_chunks;
    struct agenda_snap_chunk last_chunk;
    uint8_t chunk_data[64];
    unsigned n_acks;
    struct agenda_snap_ack last_ack;
    raft_id last_snap_from;

    unsigned ups, downs, drains;
    bool up[RAFT_MAX_NODES + 1];
};

static void on_msg(void *arg, const struct raft_msg *m)
{
    struct node *n = arg;
    n->n_msgs++;
    n->last = *m;
    n->last.entries = NULL; /* not valid after the callback */
    n->last_n_entries = m->n_entries;
    uint32_t crc = 0;
    uint64_t len = 0;
    for (uint32_t i = 0; i < m->n_entries; i++) {
        crc = agenda_crc32c(crc, m->entries[i].data, m->entries[i].len);
        len += m->entries[i].len;
        n->last_entry_index = m->entries[i].index;
    }
    n->last_data_crc = crc;
    n->last_data_len = len;

    if (n->reply && m->type == RAFT_MSG_APPEND) {
        /* Sending from inside the callback must be safe. */
        struct raft_msg r;
        memset(&r, 0, sizeof r);
        r.type = RAFT_MSG_APPEND_RESP;
        r.from = n->id;
        r.to = m->from;
        r.term = m->term;
        r.index = m->index + m->n_entries;
        assert_int_equal(agenda_transport_send_msg(n->t, &r),
                         AGENDA_TRANSPORT_OK);
    }
}

static void on_snap_chunk(void *arg, raft_id from,
                          const struct agenda_snap_chunk *c)
{
    struct node *n = arg;
    n->n_chunks++;
    n->last_snap_from = from;
    n->last_chunk = *c;
    assert_true(c->len <= sizeof n->chunk_data);
    memcpy(n->chunk_data, c->data, c->len);
    n->last_chunk.data = NULL;
}

static void on_snap_ack(void *arg, raft_id from,
                        const struct agenda_snap_ack *a)
{
    struct node *n = arg;
    n->n_acks++;
    n->last_snap_from = from;
    n->last_ack = *a;
}

static void on_peer_state(void *arg, raft_id peer, bool connected)
{
    struct node *n = arg;
    assert_true(peer >= 1 && peer <= RAFT_MAX_NODES);
    assert_int_not_equal(n->up[peer], connected); /* changes only */
    n->up[peer] = connected;
    if (connected)
        n->ups++;
    else
        n->downs++;
}

static void on_drain(void *arg, raft_id peer)
{
    struct node *n = arg;
    (void)peer;
    n->drains++;
}

static const struct agenda_transport_callbacks callbacks = {
    on_msg, on_snap_chunk, on_snap_ack, on_peer_state, on_drain,
};

/* A port nobody listens on right now. */
static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    socklen_t len = sizeof sin;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    close(fd);
    return ntohs(sin.sin_port);
}

static void base_config(struct agenda_transport_config *cfg, raft_id id,
                        uint16_t port)
{
    agenda_transport_config_defaults(cfg);
    cfg->cluster = CLUSTER;
    cfg->shard = SHARD;
    cfg->id = id;
    cfg->listen_host = "127.0.0.1";
    cfg->listen_port = port;
    cfg->backoff_min_ms = 10;
    cfg->backoff_max_ms = 100;
    cfg->seed = id;
}

static void add_peer(struct agenda_transport_config *cfg, raft_id id,
                     uint16_t port)
{
    cfg->peers[cfg->n_peers].id = id;
    cfg->peers[cfg->n_peers].host = "127.0.0.1";
    cfg->peers[cfg->n_peers].port = port;
    cfg->n_peers++;
}

static void node_start(struct node *n, struct event_base *base,
                       const struct agenda_transport_config *cfg)
{
    n->t = agenda_transport_new(base, cfg, &callbacks, n);
    assert_non_null(n->t);
    assert_int_equal(agenda_transport_listen_port(n->t), cfg->listen_port);
}

/* Two nodes, 1 and 2, each configured with the other and with a node 3
 * that never runs (raw clients in the tests speak for it). */
static void pair_start(struct event_base *base, struct node *a,
                       struct node *b)
{
    struct agenda_transport_config ca, cb;
    memset(a, 0, sizeof *a);
    memset(b, 0, sizeof *b);
    a->id = 1;
    b->id = 2;
    a->port = free_port();
    b->port = free_port();
    base_config(&ca, 1, a->port);
    add_peer(&ca, 1, a->port); /* self: skipped */
    add_peer(&ca, 2, b->port);
    base_config(&cb, 2, b->port);
    add_peer(&cb, 1, a->port);
    uint16_t dead = free_port();
    add_peer(&ca, 3, dead);
    add_peer(&cb, 3, dead);
    node_start(a, base, &ca);
    node_start(b, base, &cb);
}

struct waiter {
    struct event_base *base;
    bool (*pred)(void *);
    void *arg;
    int ticks_left;
};

static void waiter_tick(evutil_socket_t fd, short what, void *arg)
{
    struct waiter *w = arg;
    (void)fd;
    (void)what;
    if (w->pred(w->arg) || --w->ticks_left <= 0)
        event_base_loopbreak(w->base);
}

/* Run the loop until pred(arg) holds or timeout_ms pass; returns pred. */
static bool run_until(struct event_base *base, bool (*pred)(void *),
                      void *arg, unsigned timeout_ms)
{
    if (pred(arg))
        return true;
    struct waiter w = {base, pred, arg, (int)(timeout_ms / 5) + 1};
    struct event *ev = event_new(base, -1, EV_PERSIST, waiter_tick, &w);
    assert_non_null(ev);
    struct timeval tick = {0, 5000};
    event_add(ev, &tick);
    event_base_loop(base, 0);
    event_free(ev);
    return pred(arg);
}

static bool never(void *arg)
{
    (void)arg;
    return false;
}

/* Let the loop run for ms milliseconds. */
static void run_for(struct event_base *base, unsigned ms)
{
    (void)run_until(base, never, NULL, ms);
}

static bool pair_connected(void *arg)
{
    struct node *n = arg; /* n[0], n[1] */
    return n[0].up[2] && n[1].up[1];
}

/* pair_start() on n[0] and n[1], then the loop until both are up. */
static void pair_connect(struct event_base *base, struct node n[2])
{
    pair_start(base, &n[0], &n[1]);
    assert_true(run_until(base, pair_connected, n, 3000));
}

/* Both transports (either may be gone already), then the loop. */
static void pair_free(struct event_base *base, struct node n[2])
{
    agenda_transport_free(n[0].t);
    agenda_transport_free(n[1].t);
    event_base_free(base);
}

static bool got_msgs_1(void *arg)
{
    return ((struct node *)arg)->n_msgs >= 1;
}

static bool got_msgs_2(void *arg)
{
    return ((struct node *)arg)->n_msgs >= 2;
}

static void make_append(struct raft_msg *m, struct raft_entry *ents,
                        unsigned n, const uint8_t *data, uint32_t len)
{
    memset(m, 0, sizeof *m);
    m->type = RAFT_MSG_APPEND;
    m->from = 1;
    m->to = 2;
    m->term = 5;
    m->index = 100;
    m->log_term = 4;
    m->commit = 99;
    for (unsigned i = 0; i < n; i++) {
        ents[i].term = 5;
        ents[i].index = 101 + i;
        ents[i].type = RAFT_ENTRY_NORMAL;
        ents[i].len = len;
        ents[i].data = data;
    }
    m->n_entries = n;
    m->entries = n > 0 ? ents : NULL;
}

/* --- tests ---------------------------------------------------------------- */

static void messages_flow_both_ways_with_entries(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct node n[2];
    pair_connect(base, n);

    n[1].reply = true;
    static const uint8_t cmd[] = "create event 42";
    struct raft_entry ents[3];
    struct raft_msg m;
    make_append(&m, ents, 3, cmd, sizeof cmd);
    assert_int_equal(agenda_transport_send_msg(n[0].t, &m),
                     AGENDA_TRANSPORT_OK);

    /* Node 2 receives the APPEND and answers from its callback. */
    assert_true(run_until(base, got_msgs_1, &n[0], 3000));
    assert_int_equal(n[1].n_msgs, 1);
    assert_int_equal(n[1].last.type, RAFT_MSG_APPEND);
    assert_int_equal(n[1].last.from, 1);
    assert_int_equal(n[1].last.to, 2);
    assert_true(n[1].last.commit == 99);
    assert_int_equal(n[1].last_n_entries, 3);
    assert_true(n[1].last_entry_index == 103);
    uint32_t crc = 0;
    for (int i = 0; i < 3; i++)
        crc = agenda_crc32c(crc, cmd, sizeof cmd);
    assert_int_equal(n[1].last_data_crc, crc);

    assert_int_equal(n[0].last.type, RAFT_MSG_APPEND_RESP);
    assert_int_equal(n[0].last.from, 2);
    assert_true(n[0].last.index == 103);

    /* Snapshot chunk one way, acknowledgement back. */
    static const uint8_t snap[] = "lmdb bytes";
    struct agenda_snap_chunk c = {9, 5, sizeof snap, 0, 0x1234, true,
                                  sizeof snap, snap};
    assert_int_equal(agenda_transport_send_snap_chunk(n[0].t, 2, &c), 0);
    struct agenda_snap_ack a = {9, sizeof snap, AGENDA_SNAP_DONE};
    assert_int_equal(agenda_transport_send_snap_ack(n[1].t, 1, &a), 0);
    run_for(base, 100);
    assert_int_equal(n[1].n_chunks, 1);
    assert_int_equal(n[1].last_snap_from, 1);
    assert_true(n[1].last_chunk.index == 9);
    assert_int_equal(n[1].last_chunk.len, sizeof snap);
    assert_memory_equal(n[1].chunk_data, snap, sizeof snap);
    assert_int_equal(n[0].n_acks, 1);
    assert_int_equal(n[0].last_snap_from, 2);
    assert_int_equal(n[0].last_ack.status, AGENDA_SNAP_DONE);

    /* Unknown destination and a forged sender are refused locally. */
    m.to = 7;
    assert_int_equal(agenda_transport_send_msg(n[0].t, &m),
                     AGENDA_TRANSPORT_ERR_UNKNOWN_PEER);
    m.to = 2;
    m.from = 2;
    assert_int_equal(agenda_transport_send_msg(n[0].t, &m),
                     AGENDA_TRANSPORT_ERR_INVALID);

    struct agenda_transport_stats s;
    agenda_transport_stats(n[1].t, &s);
    assert_true(s.frames_in == 3); /* HELLO, APPEND, SNAP_CHUNK */
    assert_int_equal(s.bad_frames, 0);
    assert_int_equal(s.accepted, 1);
    agenda_transport_stats(n[0].t, &s);
    assert_int_equal(s.drops, 2);

    pair_free(base, n);
}

static void large_messages_arrive_whole(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct node n[2];
    pair_connect(base, n);

    /* 3 MiB in one entry: the kernel delivers it in many reads. */
    const uint32_t big = 3u << 20;
    uint8_t *data = malloc(big);
    assert_non_null(data);
    for (uint32_t i = 0; i < big; i++)
        data[i] = (uint8_t)(i * 2654435761u >> 24);
    struct raft_entry ents[2];
    struct raft_msg m;
    make_append(&m, ents, 1, data, big);
    assert_int_equal(agenda_transport_send_msg(n[0].t, &m), 0);
    make_append(&m, ents, 2, data, big / 2);
    assert_int_equal(agenda_transport_send_msg(n[0].t, &m), 0);

    assert_true(run_until(base, got_msgs_2, &n[1], 10000));
    assert_int_equal(n[1].last_n_entries, 2);
    assert_true(n[1].last_data_len == big);
    uint32_t crc = agenda_crc32c(0, data, big / 2);
    crc = agenda_crc32c(crc, data, big / 2);
    assert_int_equal(n[1].last_data_crc, crc);

    /* Larger than max_payload: refused by the sender. */
    struct raft_entry huge;
    make_append(&m, &huge, 1, data, 1);
    huge.len = (uint32_t)AGENDA_CODEC_DEFAULT_MAX_PAYLOAD;
    uint8_t *hd = calloc(1, huge.len);
    assert_non_null(hd);
    huge.data = hd;
    assert_int_equal(agenda_transport_send_msg(n[0].t, &m),
                     AGENDA_TRANSPORT_ERR_TOO_BIG);
    free(hd);
    free(data);

    pair_free(base, n);
}

/* A raw TCP client towards a transport. */
static int raw_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons(port);
    assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    return fd;
}

static void raw_send(int fd, const void *p, size_t n)
{
    assert_int_equal(send(fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

static bool raw_closed(void *arg)
{
    int fd = *(int *)arg;
    char c;
    ssize_t r = recv(fd, &c, 1, MSG_DONTWAIT);
    return r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

static void raw_send_hello(int fd, const char *cluster, const char *shard,
                           raft_id id)
{
    struct agenda_hello h;
    memset(&h, 0, sizeof h);
    strcpy(h.cluster, cluster);
    strcpy(h.shard, shard);
    h.node_id = id;
    struct agenda_buf b = {0};
    assert_int_equal(agenda_codec_encode_hello(&b, &h), 0);
    raw_send(fd, b.data, b.len);
    agenda_buf_free(&b);
}

/* Messages still go from 1 to 2 (after whatever a test did to node 2). */
static void assert_pair_still_works(struct event_base *base, struct node *n)
{
    unsigned before = n[1].n_msgs;
    struct raft_msg m;
    make_append(&m, NULL, 0, NULL, 0);
    m.type = RAFT_MSG_HEARTBEAT;
    assert_int_equal(agenda_transport_send_msg(n[0].t, &m), 0);
    unsigned want = before + 1;
    struct node *b = &n[1];
    for (int i = 0; i < 600 && b->n_msgs < want; i++)
        run_for(base, 5);
    assert_int_equal(b->n_msgs, want);
    assert_int_equal(b->last.type, RAFT_MSG_HEARTBEAT);
}

static void bad_peers_are_disconnected(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct node n[2];
    pair_connect(base, n);
    struct agenda_transport_stats s;

    /* Garbage instead of a frame. */
    int fd = raw_connect(n[1].port);
    raw_send(fd, "GET / HTTP/1.0\r\n\r\n", 18);
    assert_true(run_until(base, raw_closed, &fd, 3000));
    close(fd);
    agenda_transport_stats(n[1].t, &s);
    assert_int_equal(s.bad_frames, 1);

    /* HELLO from another cluster, another shard, an unknown node. */
    const char *cl[] = {"other", CLUSTER, CLUSTER};
    const char *sh[] = {SHARD, "users", SHARD};
    const raft_id ids[] = {1, 1, 9};
    for (int i = 0; i < 3; i++) {
        fd = raw_connect(n[1].port);
        raw_send_hello(fd, cl[i], sh[i], ids[i]);
        assert_true(run_until(base, raw_closed, &fd, 3000));
        close(fd);
        agenda_transport_stats(n[1].t, &s);
        assert_int_equal(s.rejected, (uint64_t)i + 1);
    }

    /* A frame other than HELLO first. */
    fd = raw_connect(n[1].port);
    struct agenda_buf b = {0};
    struct agenda_snap_ack a = {1, 0, 0};
    assert_int_equal(agenda_codec_encode_snap_ack(&b, &a), 0);
    raw_send(fd, b.data, b.len);
    assert_true(run_until(base, raw_closed, &fd, 3000));
    close(fd);
    agenda_transport_stats(n[1].t, &s);
    assert_int_equal(s.rejected, 4);

    /* A correct HELLO is accepted and the connection kept... */
    fd = raw_connect(n[1].port);
    raw_send_hello(fd, CLUSTER, SHARD, 3);
    run_for(base, 100);
    assert_false(raw_closed(&fd));
    /* ...until a corrupted frame follows. */
    b.data[b.len - 1] ^= 0x40;
    raw_send(fd, b.data, b.len);
    assert_true(run_until(base, raw_closed, &fd, 3000));
    close(fd);
    agenda_transport_stats(n[1].t, &s);
    assert_int_equal(s.bad_frames, 2);

    /* A message whose sender is not the node that said HELLO. */
    fd = raw_connect(n[1].port);
    raw_send_hello(fd, CLUSTER, SHARD, 3);
    struct raft_msg m;
    make_append(&m, NULL, 0, NULL, 0);
    m.from = 1;
    agenda_buf_reset(&b);
    assert_int_equal(agenda_codec_encode_msg(&b, &m), 0);
    raw_send(fd, b.data, b.len);
    assert_true(run_until(base, raw_closed, &fd, 3000));
    close(fd);
    agenda_transport_stats(n[1].t, &s);
    assert_int_equal(s.bad_frames, 3);
    agenda_buf_free(&b);

    /* None of that was delivered, and node 2 keeps working. */
    assert_int_equal(n[1].n_msgs, 0);
    assert_pair_still_works(base, n);

    pair_free(base, n);
}

/* Node 2 alone (its peer 1 never runs), waiting hello_timeout_ms for a
 * HELLO. */
static void lone_node(struct node *n, struct event_base *base,
                      unsigned hello_timeout_ms)
{
    struct agenda_transport_config cfg;
    memset(n, 0, sizeof *n);
    n->port = free_port();
    base_config(&cfg, 2, n->port);
    add_peer(&cfg, 1, free_port());
    cfg.hello_timeout_ms = hello_timeout_ms;
    node_start(n, base, &cfg);
}

static void silent_connections_time_out(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct node n;
    lone_node(&n, base, 100);

    int fd = raw_connect(n.port);
    assert_true(run_until(base, raw_closed, &fd, 3000));
    close(fd);
    struct agenda_transport_stats s;
    agenda_transport_stats(n.t, &s);
    assert_int_equal(s.rejected, 1);
    assert_int_equal(s.accepted, 1);

    agenda_transport_free(n.t);
    event_base_free(base);
}

struct trickle {
    int fd;
    struct agenda_buf hello; /* a valid HELLO frame, sent byte by byte */
    size_t sent;
};

static void trickle_byte(evutil_socket_t fd, short what, void *arg)
{
    struct trickle *tr = arg;
    (void)fd;
    (void)what;
    if (tr->sent < tr->hello.len &&
        send(tr->fd, tr->hello.data + tr->sent, 1,
             MSG_NOSIGNAL | MSG_DONTWAIT) == 1)
        tr->sent++;
}

/* A byte now and then is not a HELLO: the connection still ends when
 * hello_timeout_ms has passed since its accept (a read timeout, restarted
 * by every byte, let such a connection hold its slot for good). */
static void trickling_connections_time_out(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct node n;
    lone_node(&n, base, 300);

    /* a HELLO of node 1, one byte per 200 ms: its header alone (12
     * bytes) would take 2.4 s */
    struct trickle tr = {.fd = raw_connect(n.port)};
    struct agenda_hello h;
    memset(&h, 0, sizeof h);
    strcpy(h.cluster, CLUSTER);
    strcpy(h.shard, SHARD);
    h.node_id = 1;
    assert_int_equal(agenda_codec_encode_hello(&tr.hello, &h), 0);
    struct event *ev = event_new(base, -1, EV_PERSIST, trickle_byte, &tr);
    assert_non_null(ev);
    struct timeval every = {0, 200000};
    event_add(ev, &every);
    assert_true(run_until(base, raw_closed, &tr.fd, 1500));
    assert_true(tr.sent >= 1 && tr.sent < tr.hello.len);
    event_free(ev);
    close(tr.fd);
    agenda_buf_free(&tr.hello);
    struct agenda_transport_stats s;
    agenda_transport_stats(n.t, &s);
    assert_int_equal(s.rejected, 1);

    agenda_transport_free(n.t);
    event_base_free(base);
}

struct flooded {
    struct node *n; /* n[0] sends to n[1] */
    unsigned calls;
};

/* Node 1's message reached node 2 (sent again now and then until it
 * does: node 1's connection may be closed under it). */
static bool reached_node2(void *arg)
{
    struct flooded *f = arg;
    if (f->n[1].n_msgs > 0)
        return true;
    if (f->n[0].up[2] && f->calls++ % 10 == 0) {
        struct raft_msg m;
        memset(&m, 0, sizeof m);
        m.type = RAFT_MSG_HEARTBEAT;
        m.from = 1;
        m.to = 2;
        m.term = 1;
        (void)agenda_transport_send_msg(f->n[0].t, &m);
    }
    return false;
}

/* More idle connections than MAX_UNIDENTIFIED (32) must not keep a peer
 * out: its connection takes the place of the oldest one.  Refusing the
 * newest instead let 32 idle connections, renewed every few seconds,
 * refuse every peer. */
static void idle_connections_do_not_keep_peers_out(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct node n[2];
    struct agenda_transport_config ca, cb;
    memset(n, 0, sizeof n);
    n[0].id = 1;
    n[1].id = 2;
    n[0].port = free_port();
    n[1].port = free_port();
    base_config(&cb, 2, n[1].port);
    add_peer(&cb, 1, n[0].port);
    node_start(&n[1], base, &cb);
    int idle[40];
    for (int i = 0; i < 40; i++)
        idle[i] = raw_connect(n[1].port);
    run_for(base, 200);

    base_config(&ca, 1, n[0].port);
    add_peer(&ca, 2, n[1].port);
    node_start(&n[0], base, &ca);
    struct flooded f = {n, 0};
    assert_true(run_until(base, reached_node2, &f, 3000));
    struct agenda_transport_stats s;
    agenda_transport_stats(n[1].t, &s);
    assert_true(s.rejected >= 8);
    for (int i = 0; i < 40; i++)
        close(idle[i]);
    pair_free(base, n);
}

static bool node1_down(void *arg)
{
    return ((struct node *)arg)->downs >= 1;
}

static bool node1_up_again(void *arg)
{
    return ((struct node *)arg)->ups >= 2;
}

static void restarted_peer_is_reconnected(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct node n[2];
    pair_connect(base, n);
    assert_pair_still_works(base, n);

    /* Node 2 goes away: node 1 notices and drops what it sends. */
    agenda_transport_free(n[1].t);
    n[1].t = NULL;
    assert_true(run_until(base, node1_down, &n[0], 3000));
    assert_false(n[0].up[2]);
    assert_false(agenda_transport_connected(n[0].t, 2));
    run_for(base, 50);
    struct agenda_transport_stats s0, s1;
    agenda_transport_stats(n[0].t, &s0);
    assert_true(s0.reconnects >= 1); /* kept trying while it was down */

    /* Node 2 comes back on the same port. */
    struct agenda_transport_config cb;
    base_config(&cb, 2, n[1].port);
    add_peer(&cb, 1, n[0].port);
    unsigned old_msgs = n[1].n_msgs;
    memset(&n[1].up, 0, sizeof n[1].up);
    node_start(&n[1], base, &cb);
    assert_true(run_until(base, node1_up_again, &n[0], 5000));
    assert_true(agenda_transport_connected(n[0].t, 2));
    n[1].n_msgs = old_msgs;
    assert_pair_still_works(base, n);

    agenda_transport_stats(n[0].t, &s1);
    assert_int_equal(s1.connects, 2);
    assert_true(s1.reconnects > s0.reconnects);

    pair_free(base, n);
}

static bool node_up_2(void *arg)
{
    return ((struct node *)arg)->up[2];
}

static bool node_drained(void *arg)
{
    struct node *n = arg;
    return n->drains > 0 && agenda_transport_queued(n->t, 2) == 0;
}

static void full_queue_drops_instead_of_growing(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();

    /* A peer that accepts TCP connections (in the kernel backlog) but
     * never reads: whatever we queue can only pile up. */
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(lfd >= 0);
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sin, sizeof sin), 0);
    assert_int_equal(listen(lfd, 4), 0);
    socklen_t len = sizeof sin;
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&sin, &len), 0);

    struct node n;
    memset(&n, 0, sizeof n);
    n.id = 1;
    struct agenda_transport_config cfg;
    base_config(&cfg, 1, free_port());
    add_peer(&cfg, 2, ntohs(sin.sin_port));
    const size_t limit = 64 * 1024;
    cfg.queue_limit = limit;
    node_start(&n, base, &cfg);
    assert_true(run_until(base, node_up_2, &n, 3000));

    /* Without the loop running nothing leaves the queue. */
    static uint8_t payload[10000];
    struct raft_entry ent;
    struct raft_msg m;
    make_append(&m, &ent, 1, payload, sizeof payload);
    unsigned ok = 0, full = 0;
    for (int i = 0; i < 100; i++) {
        int rc = agenda_transport_send_msg(n.t, &m);
        if (rc == AGENDA_TRANSPORT_OK)
            ok++;
        else if (rc == AGENDA_TRANSPORT_ERR_QUEUE_FULL)
            full++;
        assert_true(agenda_transport_queued(n.t, 2) <= limit);
    }
    size_t frame = AGENDA_FRAME_HEADER_SIZE + AGENDA_CODEC_MSG_FIXED_SIZE +
                   AGENDA_CODEC_ENTRY_HEADER_SIZE + sizeof payload;
    assert_int_equal(ok, limit / frame);
    assert_int_equal(ok + full, 100);
    struct agenda_transport_stats s;
    agenda_transport_stats(n.t, &s);
    assert_int_equal(s.drops, full);

    /* The kernel takes the 60 KiB; the queue drains and says so. */
    assert_true(run_until(base, node_drained, &n, 3000));
    assert_int_equal(agenda_transport_send_msg(n.t, &m), 0);

    agenda_transport_free(n.t);
    close(lfd);
    event_base_free(base);
}

static bool got_msg_and_drained(void *arg)
{
    struct node *n = arg; /* n[0] sends, n[1] receives */
    return n[1].n_msgs >= 1 && n[0].drains >= 1;
}

/* agenda_transport_flush() puts queued frames on the wire at once, where
 * they would otherwise wait for the loop (a replica calls it before
 * blocking in fsync); on_drain still comes, from the loop. */
static void flush_writes_without_the_loop(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct node n[2];
    pair_connect(base, n);
    run_for(base, 20);
    unsigned drains = n[0].drains;

    static const uint8_t data[] = "flushed before the loop runs";
    struct raft_entry ent;
    struct raft_msg m;
    make_append(&m, &ent, 1, data, sizeof data);
    assert_int_equal(agenda_transport_send_msg(n[0].t, &m),
                     AGENDA_TRANSPORT_OK);
    assert_true(agenda_transport_queued(n[0].t, 2) > 0);
    agenda_transport_flush(n[0].t);
    assert_int_equal(agenda_transport_queued(n[0].t, 2), 0);
    assert_int_equal(n[0].drains, drains); /* not from inside the call */
    agenda_transport_flush(n[0].t);        /* nothing queued: nothing */

    assert_true(run_until(base, got_msg_and_drained, n, 3000));
    assert_int_equal(n[0].drains, drains + 1);
    assert_int_equal(n[1].last_n_entries, 1);
    assert_int_equal(n[1].last_data_crc,
                     agenda_crc32c(0, data, sizeof data));

    pair_free(base, n);
}

static void dns_names_are_resolved(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct node n[2];
    memset(n, 0, sizeof n);
    n[0].id = 1;
    n[1].id = 2;
    struct agenda_transport_config ca, cb;
    base_config(&cb, 2, free_port());
    add_peer(&cb, 1, free_port());
    node_start(&n[1], base, &cb);
    base_config(&ca, 1, free_port());
    add_peer(&ca, 2, cb.listen_port);
    ca.peers[0].host = "localhost";
    /* A name that resolves nowhere: its lookup may still be running when
     * the transport is freed, which must not leak or crash. */
    add_peer(&ca, 3, 9);
    ca.peers[1].host = "no-such-host.invalid";
    node_start(&n[0], base, &ca);
    assert_true(run_until(base, node_up_2, &n[0], 5000));
    assert_false(n[0].up[3]);

    pair_free(base, n);
}

static void bad_configurations_are_refused(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct agenda_transport_config cfg;
    struct node n;
    memset(&n, 0, sizeof n);

    base_config(&cfg, 1, 0);
    cfg.cluster = "has space";
    assert_null(agenda_transport_new(base, &cfg, &callbacks, &n));
    base_config(&cfg, 0, 0);
    assert_null(agenda_transport_new(base, &cfg, &callbacks, &n));
    base_config(&cfg, 1, 0);
    add_peer(&cfg, 2, 1000);
    add_peer(&cfg, 2, 1001);
    assert_null(agenda_transport_new(base, &cfg, &callbacks, &n));
    base_config(&cfg, 1, 0);
    cfg.backoff_max_ms = 1;
    assert_null(agenda_transport_new(base, &cfg, &callbacks, &n));

    /* A port in use. */
    base_config(&cfg, 1, 0);
    struct agenda_transport *t = agenda_transport_new(base, &cfg, &callbacks,
                                                      &n);
    assert_non_null(t);
    assert_int_not_equal(agenda_transport_listen_port(t), 0);
    cfg.listen_port = agenda_transport_listen_port(t);
    assert_null(agenda_transport_new(base, &cfg, &callbacks, &n));
    agenda_transport_free(t);

    assert_string_equal(agenda_transport_strerror(99),
                        "unknown transport error");
    assert_string_not_equal(
        agenda_transport_strerror(AGENDA_TRANSPORT_ERR_QUEUE_FULL),
        agenda_transport_strerror(AGENDA_TRANSPORT_ERR_NOT_CONNECTED));
    event_base_free(base);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    agenda_log_set_level(AGENDA_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(messages_flow_both_ways_with_entries),
        cmocka_unit_test(large_messages_arrive_whole),
        cmocka_unit_test(bad_peers_are_disconnected),
        cmocka_unit_test(silent_connections_time_out),
        cmocka_unit_test(trickling_connections_time_out),
        cmocka_unit_test(idle_connections_do_not_keep_peers_out),
        cmocka_unit_test(restarted_peer_is_reconnected),
        cmocka_unit_test(full_queue_drops_instead_of_growing),
        cmocka_unit_test(flush_writes_without_the_loop),
        cmocka_unit_test(dns_names_are_resolved),
        cmocka_unit_test(bad_configurations_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

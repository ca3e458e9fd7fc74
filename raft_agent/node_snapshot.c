/*
 * node_snapshot.c — streaming a snapshot to a follower that fell behind the
 * compacted log, and receiving one.
 *
 * A snapshot is a compacted copy of the leader's whole LMDB environment,
 * made by a worker thread (the only thread besides the event loop; it
 * touches nothing but LMDB and its own file) and streamed in chunks of
 * SNAP_CHUNK bytes, one more chunk whenever the peer's output queue drains,
 * so memory stays bounded whatever the snapshot size.  The follower writes
 * chunks at their offsets and checks the CRC-32C of the whole file; a chunk
 * at an unexpected offset is answered with the offset it needs, so a
 * transfer interrupted by a reconnection resumes where it stopped.  Then a
 * child process reads the whole file (snapshot_vet.h) before this one
 * does, and the follower acknowledges it or refuses it by its verdict.
 *
 * Only when the follower acknowledges the complete file (SNAP_ACK DONE)
 * does the leader send the core's SNAPSHOT message (with its term); the
 * follower steps it into its core, which asks in its next ready batch to
 * install the file: storage swaps the environment (keeping this node's own
 * term and vote) and the state machine reopens its databases.
 */
#include "node_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "log.h"

#define SNAP_CHUNK (256u * 1024u)
#define SNAP_QUEUE_LOW (1u << 20)      /* send more below this backlog */
#define SNAP_STALL_MS 15000            /* give up on a silent transfer */
/* After a failed transfer the next one to that follower waits 0.5 s,
 * doubling with each failure in a row up to 30 s: a follower that keeps
 * refusing (its disk full, a file it cannot write) is not sent the whole
 * snapshot again at every heartbeat. */
#define SNAP_BACKOFF_MS 500
#define SNAP_BACKOFF_MAX_MS 30000
#define SNAP_SEND_FILE "snapshot-send.mdb"
#define SNAP_RECV_FILE "snapshot-recv.mdb"
#define SNAP_VETTED_FILE "snapshot-vetted.mdb" /* what gets installed */

void node_snapshot_file_path(const struct agenda_node *n, char *buf,
                             size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", n->cfg.data_dir, name);
}

/* ---- the copy thread ------------------------------------------------------- */

struct copy_job {
    struct agenda_node *n;
    char path[1024];
};

static int file_crc(int fd, uint64_t *size, uint32_t *crc)
{
    uint8_t *buf = malloc(SNAP_CHUNK);
    if (buf == NULL)
        return -1;
    uint32_t c = 0;
    uint64_t total = 0;
    for (;;) {
        ssize_t r = pread(fd, buf, SNAP_CHUNK, (off_t)total);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            free(buf);
            return -1;
        }
        if (r == 0)
            break;
        c = agenda_crc32c(c, buf, (size_t)r);
        total += (uint64_t)r;
    }
    free(buf);
    *size = total;
    *crc = c;
    return 0;
}

static void *copy_main(void *arg)
{
    struct copy_job *job = arg;
    struct agenda_node *n = job->n;
    /* copy_fd is -1 here: every join and the init leave it so */
    n->copy_rc = agenda_storage_snapshot_create(n->st, job->path,
                                                &n->copy_meta);
    if (n->copy_rc == 0) {
        /* its checksum here too: reading the whole file on the event loop
         * would hold the leader's heartbeats for as long as that takes */
        int f = open(job->path, O_RDONLY | O_CLOEXEC);
        if (f < 0 || file_crc(f, &n->copy_size, &n->copy_crc) != 0) {
            n->copy_errno = errno;
            if (f >= 0)
                close(f);
            f = -1;
        }
        n->copy_fd = f;
    }
    free(job);
    char one = 1;
    while (write(n->copy_pipe[1], &one, 1) < 0 && errno == EINTR)
        ;
    return NULL;
}

static void stream_more(struct agenda_node *n, unsigned slot);

/* Wait for the copy thread; a copy nobody took is closed. */
static void copy_join(struct agenda_node *n)
{
    if (!n->copy_running)
        return;
    pthread_join(n->copy_thread, NULL);
    n->copy_running = false;
    if (n->copy_fd >= 0)
        close(n->copy_fd);
    n->copy_fd = -1;
}

static void copy_done_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct agenda_node *n = arg;
    char buf[16];
    while (read(fd, buf, sizeof(buf)) > 0)
        ;
    if (!n->copy_running)
        return;
    pthread_join(n->copy_thread, NULL);
    n->copy_running = false;
    int f = n->copy_fd;
    n->copy_fd = -1;
    if (n->copy_rc != 0) {
        agenda_log(AGENDA_LOG_ERROR, "shard %s node %u: snapshot copy "
                   "failed: %s", n->cfg.shard, n->cfg.id,
                   agenda_storage_strerror(n->copy_rc));
        return; /* waiting streams time out and the core retries */
    }
    if (f < 0) {
        char path[1024];
        node_snapshot_file_path(n, path, sizeof(path), SNAP_SEND_FILE);
        agenda_log(AGENDA_LOG_ERROR, "cannot read snapshot %s: %s", path,
                   strerror(n->copy_errno));
        return;
    }
    n->file.fd = f;
    n->file.size = n->copy_size;
    n->file.crc = n->copy_crc;
    n->file.valid = true;
    n->file.meta = n->copy_meta;
    agenda_log(AGENDA_LOG_INFO, "shard %s node %u: snapshot at index %"
               PRIu64 " ready (%" PRIu64 " bytes)", n->cfg.shard, n->cfg.id,
               n->file.meta.index, n->file.size);
    for (unsigned i = 0; i < n->cfg.n_peers; i++) {
        if (n->send[i].state != SNAP_SEND_WAIT_FILE)
            continue;
        /* the copy began before this follower's request, and the log was
         * compacted past it since: this follower would be sent back to
         * where the log no longer reaches.  It keeps waiting: the next
         * tick starts a newer copy once no stream reads this one. */
        if (n->file.meta.index < n->send[i].want)
            continue;
        n->send[i].state = SNAP_SEND_STREAMING;
        n->send[i].offset = 0;
        n->send[i].last_progress_ms = node_mono_ms();
        n->file.users++;
        stream_more(n, i);
    }
}

static void start_copy(struct agenda_node *n)
{
    if (n->copy_running || n->file.users > 0)
        return;
    if (n->file.fd >= 0) {
        close(n->file.fd);
        n->file.fd = -1;
    }
    n->file.valid = false;
    struct copy_job *job = malloc(sizeof(*job));
    if (job == NULL)
        return;
    job->n = n;
    node_snapshot_file_path(n, job->path, sizeof(job->path), SNAP_SEND_FILE);
    if (pthread_create(&n->copy_thread, NULL, copy_main, job) != 0) {
        free(job);
        return;
    }
    n->copy_running = true;
}

/* ---- leader side ------------------------------------------------------------ */

/* Tell the core how the transfer to slot ended: done (the follower has
 * the file of meta: it is told to install it) or failed.  Nothing when
 * this node no longer leads the term the core asked in. */
static void tell_core(struct agenda_node *n, unsigned slot, bool done,
                      const struct raft_snapshot_meta *meta)
{
    struct snap_send *s = &n->send[slot];
    raft_id peer = n->cfg.peers[slot].id;
    struct raft_status st;
    raft_status(n->raft, &st);
    if (st.role != RAFT_LEADER || st.term != s->term)
        return;
    if (done) {
        struct raft_msg m = {
            .type = RAFT_MSG_SNAPSHOT,
            .from = n->cfg.id,
            .to = peer,
            .term = s->term,
            .snapshot = *meta,
            .commit = st.commit,
        };
        agenda_transport_send_msg(n->tr, &m);
        n->snapshots_sent++;
    } else {
        n->snapshots_failed++;
    }
    raft_report_snapshot(n->raft, peer, done);
}

/* tell_core() now, or at the next tick when a ready batch is taken (the
 * core may not be called then; the outcome was lost before, leaving the
 * follower paused until the term changed). */
static void report(struct agenda_node *n, unsigned slot, bool done)
{
    struct snap_send *s = &n->send[slot];
    if (n->batch.rd == NULL) {
        s->report = SNAP_REPORT_NONE;
        tell_core(n, slot, done, &n->file.meta);
        return;
    }
    s->report = done ? SNAP_REPORT_DONE : SNAP_REPORT_FAILED;
    s->report_meta = n->file.meta;
}

static void stream_abort(struct agenda_node *n, unsigned slot, bool failed)
{
    struct snap_send *s = &n->send[slot];
    if (s->state == SNAP_SEND_STREAMING || s->state == SNAP_SEND_WAIT_DONE)
        n->file.users--;
    s->state = SNAP_SEND_IDLE;
    if (failed) {
        /* 0.5 s << 6 is past the most already */
        unsigned doublings = s->failures < 6 ? s->failures : 6;
        uint64_t wait = (uint64_t)SNAP_BACKOFF_MS << doublings;
        if (wait > SNAP_BACKOFF_MAX_MS)
            wait = SNAP_BACKOFF_MAX_MS;
        s->failures++;
        s->not_before_ms = node_mono_ms() + wait;
        report(n, slot, false);
    }
}

static void stream_more(struct agenda_node *n, unsigned slot)
{
    struct snap_send *s = &n->send[slot];
    raft_id peer = n->cfg.peers[slot].id;
    uint8_t *buf = NULL;
    while (s->state == SNAP_SEND_STREAMING &&
           agenda_transport_queued(n->tr, peer) < SNAP_QUEUE_LOW) {
        if (buf == NULL && (buf = malloc(SNAP_CHUNK)) == NULL)
            break;
        uint64_t left = n->file.size - s->offset;
        size_t len = left < SNAP_CHUNK ? (size_t)left : SNAP_CHUNK;
        ssize_t r = pread(n->file.fd, buf, len, (off_t)s->offset);
        if (r != (ssize_t)len) {
            agenda_log(AGENDA_LOG_ERROR, "snapshot read failed at %" PRIu64,
                       s->offset);
            stream_abort(n, slot, true);
            break;
        }
        struct agenda_snap_chunk c = {
            .index = n->file.meta.index,
            .term = n->file.meta.term,
            .total_size = n->file.size,
            .offset = s->offset,
            .file_crc = n->file.crc,
            .last = s->offset + len == n->file.size,
            .len = (uint32_t)len,
            .data = buf,
        };
        if (agenda_transport_send_snap_chunk(n->tr, peer, &c) !=
            AGENDA_TRANSPORT_OK)
            break; /* not connected: the stall timer or a resume recovers */
        s->offset += len;
        s->last_progress_ms = node_mono_ms();
        if (c.last)
            s->state = SNAP_SEND_WAIT_DONE;
    }
    free(buf);
}

/* Begin the transfer the core asked for (s->term, s->want): from the
 * snapshot file at hand when it is recent enough, else a new copy. */
static void send_begin(struct agenda_node *n, unsigned slot)
{
    struct snap_send *s = &n->send[slot];
    s->last_progress_ms = node_mono_ms();
    if (n->file.valid && n->file.meta.index >= s->want) {
        s->state = SNAP_SEND_STREAMING;
        s->offset = 0;
        n->file.users++;
        stream_more(n, slot);
        return;
    }
    s->state = SNAP_SEND_WAIT_FILE;
    start_copy(n);
}

void node_snapshot_request(struct agenda_node *n, const struct raft_msg *m)
{
    int slot = node_peer_slot(n, m->to);
    if (slot < 0)
        return;
    struct snap_send *s = &n->send[slot];
    if (s->state != SNAP_SEND_IDLE)
        return;
    s->term = m->term;
    s->want = m->snapshot.index;
    s->report = SNAP_REPORT_NONE; /* asked again: that outcome is moot */
    if (node_mono_ms() < s->not_before_ms) {
        s->state = SNAP_SEND_BACKOFF; /* node_snapshot_tick begins it */
        return;
    }
    agenda_log(AGENDA_LOG_INFO, "shard %s node %u: follower %u needs a "
               "snapshot (log starts after %" PRIu64 ")", n->cfg.shard,
               n->cfg.id, m->to, m->snapshot.index);
    send_begin(n, (unsigned)slot);
}

void node_snapshot_on_drain(struct agenda_node *n, raft_id peer)
{
    int slot = node_peer_slot(n, peer);
    if (slot >= 0 && n->send[slot].state == SNAP_SEND_STREAMING)
        stream_more(n, (unsigned)slot);
}

void node_snapshot_on_ack(struct agenda_node *n, raft_id from,
                          const struct agenda_snap_ack *a)
{
    int slot = node_peer_slot(n, from);
    if (slot < 0)
        return;
    struct snap_send *s = &n->send[slot];
    if ((s->state != SNAP_SEND_STREAMING && s->state != SNAP_SEND_WAIT_DONE) ||
        a->index != n->file.meta.index)
        return;
    s->last_progress_ms = node_mono_ms();
    switch (a->status) {
    case AGENDA_SNAP_CONTINUE:
        if (a->next_offset > n->file.size)
            return;
        s->offset = a->next_offset; /* resume where the follower is */
        s->state = SNAP_SEND_STREAMING;
        stream_more(n, (unsigned)slot);
        break;
    case AGENDA_SNAP_FAILED:
        agenda_log(AGENDA_LOG_WARN, "follower %u rejected the snapshot",
                   from);
        stream_abort(n, (unsigned)slot, true);
        break;
    case AGENDA_SNAP_DONE:
        n->file.users--;
        s->state = SNAP_SEND_IDLE;
        s->failures = 0;
        s->not_before_ms = 0;
        s->installing = n->file.meta.index;
        s->installing_until_ms = s->last_progress_ms + SNAP_STALL_MS;
        report(n, (unsigned)slot, true);
        break;
    default:
        break;
    }
}

/* ---- follower side --------------------------------------------------------- */

/* Remove what a transfer leaves in the data directory. */
static void recv_unlink(const struct agenda_node *n)
{
    static const char *const files[] = {
        SNAP_RECV_FILE, SNAP_VETTED_FILE, SNAP_VETTED_FILE ".tmp"};
    char path[1024];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        node_snapshot_file_path(n, path, sizeof(path), files[i]);
        unlink(path);
    }
}

static void recv_reset(struct agenda_node *n)
{
    snapshot_vet_cancel(&n->vet);
    if (n->recv.fd >= 0)
        close(n->recv.fd);
    recv_unlink(n);
    memset(&n->recv, 0, sizeof(n->recv));
    n->recv.fd = -1;
}

static void send_ack(struct agenda_node *n, raft_id to, raft_index index,
                     uint64_t next, uint8_t status)
{
    struct agenda_snap_ack a = {
        .index = index, .next_offset = next, .status = status};
    agenda_transport_send_snap_ack(n->tr, to, &a);
}

static void recv_checked(const struct snapshot_vet_result *res, void *arg);

static bool recv_start(struct agenda_node *n, raft_id from,
                       const struct agenda_snap_chunk *c)
{
    recv_reset(n);
    char path[1024];
    node_snapshot_file_path(n, path, sizeof(path), SNAP_RECV_FILE);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        agenda_log(AGENDA_LOG_ERROR, "cannot create %s: %s", path,
                   strerror(errno));
        return false;
    }
    n->recv.active = true;
    n->recv.fd = fd;
    n->recv.from = from;
    n->recv.meta.index = c->index;
    n->recv.meta.term = c->term;
    n->recv.total = c->total_size;
    return true;
}

void node_snapshot_on_chunk(struct agenda_node *n, raft_id from,
                            const struct agenda_snap_chunk *c)
{
    struct snap_recv *r = &n->recv;
    if (c->total_size == 0 || c->total_size > n->cfg.map_size ||
        c->offset > c->total_size || c->len > c->total_size - c->offset ||
        c->last != (c->offset + c->len == c->total_size)) {
        agenda_log(AGENDA_LOG_WARN, "bad snapshot chunk from %u", from);
        send_ack(n, from, c->index, 0, AGENDA_SNAP_FAILED);
        return;
    }
    bool same = r->active && r->from == from && r->meta.index == c->index &&
                r->meta.term == c->term && r->total == c->total_size;
    if (same && r->complete) {
        send_ack(n, from, c->index, r->total, AGENDA_SNAP_DONE);
        return;
    }
    if (same && snapshot_vet_running(&n->vet))
        return; /* the file is whole: the answer comes with the check's */
    if (!same) {
        /* the received file is waiting to be installed (the core took its
         * SNAPSHOT message, and the install comes with the next ready
         * batch, or its batch is kept to be retried after a full disk):
         * another transfer must not replace it, or the install finds no
         * file and the agent stops */
        if (r->taken) {
            send_ack(n, from, c->index, 0, AGENDA_SNAP_FAILED);
            return;
        }
        if (c->offset != 0) {
            /* Joining in the middle of an unknown transfer: restart. */
            send_ack(n, from, c->index, 0, AGENDA_SNAP_CONTINUE);
            return;
        }
        if (!recv_start(n, from, c)) {
            send_ack(n, from, c->index, 0, AGENDA_SNAP_FAILED);
            return;
        }
    }
    if (c->offset != r->next_offset) {
        send_ack(n, from, c->index, r->next_offset, AGENDA_SNAP_CONTINUE);
        return;
    }
    size_t done = 0;
    while (done < c->len) {
        ssize_t w = pwrite(r->fd, c->data + done, c->len - done,
                           (off_t)(c->offset + done));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            agenda_log(AGENDA_LOG_ERROR, "cannot write snapshot: %s",
                       strerror(errno));
            recv_reset(n);
            send_ack(n, from, c->index, 0, AGENDA_SNAP_FAILED);
            return;
        }
        done += (size_t)w;
    }
    r->crc = agenda_crc32c(r->crc, c->data, c->len);
    r->next_offset += c->len;
    if (!c->last)
        return;
    /* not synced: only the vet reads it, and what it writes is */
    if (r->crc != c->file_crc) {
        agenda_log(AGENDA_LOG_WARN, "snapshot from %u failed its checksum",
                   from);
        recv_reset(n);
        send_ack(n, from, c->index, 0, AGENDA_SNAP_FAILED);
        return;
    }
    /* Check the file now, while refusing it costs nothing: once the core
     * has stepped the SNAPSHOT message it has dropped its log in memory,
     * and a failed install can only be undone by a restart.  A child
     * reads it first and writes the copy to install (snapshot_vet.h);
     * recv_checked() answers. */
    char in[1024], out[1024];
    node_snapshot_file_path(n, in, sizeof(in), SNAP_RECV_FILE);
    node_snapshot_file_path(n, out, sizeof(out), SNAP_VETTED_FILE);
    if (snapshot_vet_start(&n->vet, n->base, in, out,
                           snapshot_vet_limit_ms(r->total), recv_checked,
                           n) != 0) {
        agenda_log(AGENDA_LOG_ERROR, "cannot check the snapshot from %u: "
                   "%s", from, strerror(errno));
        recv_reset(n);
        send_ack(n, from, c->index, 0, AGENDA_SNAP_FAILED);
    }
}

/* The child's verdict on the received file (node_snapshot_on_chunk). */
static void recv_checked(const struct snapshot_vet_result *res, void *arg)
{
    struct agenda_node *n = arg;
    struct snap_recv *r = &n->recv;
    char why[160] = "";

    if (res->outcome == SNAPSHOT_VET_TIMEOUT)
        snprintf(why, sizeof why, "reading it took too long");
    else if (res->outcome == SNAPSHOT_VET_CRASHED)
        snprintf(why, sizeof why, "reading it crashed the checking process "
                 "(signal %d)", res->signal);
    else if (res->rc == AGENDA_STORAGE_CORRUPT ||
             res->rc == AGENDA_STORAGE_VERSION ||
             res->rc == AGENDA_STORAGE_INVALID)
        snprintf(why, sizeof why, "%s", agenda_storage_strerror(res->rc));
    else if (res->rc != 0) /* this node's side: disk full, I/O */
        snprintf(why, sizeof why, "the check could not write its copy "
                 "here (storage error %d); the sender tries again later",
                 res->rc);
    else if (res->meta.index != r->meta.index ||
             res->meta.term != r->meta.term)
        snprintf(why, sizeof why, "its content does not match its header");
    if (why[0] != '\0') {
        raft_id from = r->from;
        raft_index index = r->meta.index;
        agenda_log(AGENDA_LOG_WARN, "snapshot from %u refused: %s", from,
                   why);
        n->snapshots_failed++;
        recv_reset(n);
        send_ack(n, from, index, 0, AGENDA_SNAP_FAILED);
        return;
    }
    /* the vetted copy is what gets installed: the received file goes */
    close(r->fd);
    r->fd = -1;
    char in[1024];
    node_snapshot_file_path(n, in, sizeof(in), SNAP_RECV_FILE);
    unlink(in);
    r->complete = true;
    send_ack(n, r->from, r->meta.index, r->total, AGENDA_SNAP_DONE);
}

void node_snapshot_on_msg(struct agenda_node *n, const struct raft_msg *m)
{
    struct snap_recv *r = &n->recv;
    if (!r->complete || r->from != m->from ||
        r->meta.index != m->snapshot.index || r->meta.term != m->snapshot.term)
        return; /* stale: the leader starts over when its stream fails */
    int rv = raft_step(n->raft, m);
    if (rv != RAFT_OK) {
        agenda_log(AGENDA_LOG_WARN, "snapshot message refused: %s",
                   raft_strerror(rv));
        return;
    }
    struct raft_status st;
    raft_status(n->raft, &st);
    if (st.snapshot_pending)
        r->taken = true; /* until node_snapshot_install's recv_reset */
}

int node_snapshot_install(struct agenda_node *n,
                          const struct raft_snapshot_meta *meta)
{
    struct snap_recv *r = &n->recv;
    if (!r->complete || r->meta.index != meta->index ||
        r->meta.term != meta->term)
        return AGENDA_STORAGE_INVALID;
    copy_join(n); /* rare: we led recently and a copy is still running */
    node_digest_join(n); /* rarer: someone asks for /digest meanwhile */
    if (n->file.fd >= 0) {
        close(n->file.fd);
        n->file.fd = -1;
        n->file.valid = false;
    }
    char path[1024];
    node_snapshot_file_path(n, path, sizeof(path), SNAP_VETTED_FILE);
    /* The file is the child's vetted copy (recv_checked), so a failure
     * here is an I/O problem: the caller exits and a restart recovers
     * from the untouched durable state. */
    int rc = agenda_storage_snapshot_install(n->st, path, NULL);
    if (rc == AGENDA_STORAGE_FULL || rc == AGENDA_STORAGE_BUSY) {
        /* refused before the swap, the file kept: the batch is retried
         * (node.c), and installs it then (on_chunk keeps other transfers
         * off it meanwhile) */
        n->snapshots_failed++;
        return rc;
    }
    if (rc == 0) {
        rc = node_reopen_state_machine(n);
        /* The snapshot is in place but cannot be opened (an older format
         * whose upgrade needs more room, a newer one): installing it again
         * would not help, so this is fatal whatever the reason, and the
         * restart opens it again or says why not. */
        if (rc != 0) {
            agenda_log(AGENDA_LOG_ERROR, "shard %s node %u: cannot open "
                       "the installed snapshot: %s", n->cfg.shard,
                       n->cfg.id, agenda_storage_strerror(rc));
            rc = AGENDA_STORAGE_IO;
        }
    }
    recv_reset(n);
    if (rc != 0) {
        n->snapshots_failed++;
        return rc;
    }
    n->snapshots_received++;
    agenda_log(AGENDA_LOG_INFO, "shard %s node %u: installed snapshot at "
               "index %" PRIu64, n->cfg.shard, n->cfg.id, meta->index);
    return 0;
}

/* ---- housekeeping ------------------------------------------------------------ */

void node_snapshot_tick(struct agenda_node *n)
{
    struct raft_status st;
    raft_status(n->raft, &st);
    uint64_t now = node_mono_ms();
    snapshot_vet_reap(&n->vet, false);
    for (unsigned i = 0; i < n->cfg.n_peers; i++) {
        struct snap_send *s = &n->send[i];
        if (s->report != SNAP_REPORT_NONE && n->batch.rd == NULL) {
            bool done = s->report == SNAP_REPORT_DONE;
            s->report = SNAP_REPORT_NONE;
            tell_core(n, i, done, &s->report_meta);
        }
        if (s->state == SNAP_SEND_IDLE)
            continue;
        if (st.role != RAFT_LEADER || st.term != s->term) {
            stream_abort(n, i, false);
            continue;
        }
        if (s->state == SNAP_SEND_BACKOFF) {
            if (now >= s->not_before_ms)
                send_begin(n, i);
            continue;
        }
        /* once all is sent, the follower checks the file before it
         * answers, for up to snapshot_vet_limit_ms() */
        uint64_t stall = SNAP_STALL_MS;
        if (s->state == SNAP_SEND_WAIT_DONE)
            stall += snapshot_vet_limit_ms(n->file.size);
        if (now - s->last_progress_ms > stall) {
            agenda_log(AGENDA_LOG_WARN, "snapshot to %u stalled",
                       n->cfg.peers[i].id);
            stream_abort(n, i, true);
        } else if (s->state == SNAP_SEND_STREAMING) {
            stream_more(n, i);
        } else if (s->state == SNAP_SEND_WAIT_FILE) {
            start_copy(n);
        }
    }
}

int node_snapshot_init(struct agenda_node *n)
{
    n->copy_fd = -1;
    if (pipe2(n->copy_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
        return -1;
    n->copy_ev = event_new(n->base, n->copy_pipe[0], EV_READ | EV_PERSIST,
                           copy_done_cb, n);
    if (n->copy_ev == NULL || event_add(n->copy_ev, NULL) != 0)
        return -1;
    /* Leftovers of a transfer cut short by a crash are useless, and a
     * copy made to send may be as large as the database. */
    recv_unlink(n);
    static const char *const sent[] = {SNAP_SEND_FILE, SNAP_SEND_FILE ".tmp"};
    for (size_t i = 0; i < sizeof sent / sizeof sent[0]; i++) {
        char path[1024];
        node_snapshot_file_path(n, path, sizeof(path), sent[i]);
        unlink(path);
    }
    return 0;
}

void node_snapshot_free(struct agenda_node *n)
{
    copy_join(n);
    if (n->copy_ev != NULL)
        event_free(n->copy_ev);
    n->copy_ev = NULL;
    for (int i = 0; i < 2; i++)
        if (n->copy_pipe[i] >= 0)
            close(n->copy_pipe[i]);
    if (n->file.fd >= 0)
        close(n->file.fd);
    n->file.fd = -1;
    recv_reset(n);
    snapshot_vet_reap(&n->vet, true);
}

/*
 * node.c — drives the Raft core for one replica; see node.h.
 *
 * The ready batch is handled in this order (raft.h): messages that may go
 * early (leader → follower) are sent first, so replication overlaps our own
 * sync; a received snapshot is installed; then ONE synced LMDB commit holds
 * the new log entries, the hard state, the state machine's changes for the
 * committed entries and the applied index (group commit: one fsync per
 * batch, however many clients it serves; the clients of the applied
 * entries are answered just before it, see commit_batch); then the
 * remaining messages (acknowledgements, votes) go out.  A
 * batch that cannot be stored (disk or map full) is kept and retried: the
 * core stays frozen meanwhile, so this node acknowledges nothing, and a
 * leader that cannot write stops heartbeating and is replaced.
 */
#include "compaction.h"
#include "node_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>


#include "command.h"
#include "log.h"
#include "shard_identity.h"

#define NODE_READY_PRIORITY 2 /* of 3: after all I/O of the turn */
#define NODE_MAX_READY_ROUNDS 16
#define NODE_RETRY_MS 200
#define NODE_MAX_QUEUED_OPS 100000
#define NODE_APPEND_BYTES (256 * 1024) /* entry bytes per APPEND message */

static const char *const fail_messages[] = {
    [AGENDA_NODE_OK] = "ok",
    [AGENDA_NODE_NOT_LEADER] = "this replica is not the leader",
    [AGENDA_NODE_UNKNOWN] = ("the outcome is unknown (leadership changed "
                             "or the request timed out); retry with the "
                             "same Idempotency-Key"),
    [AGENDA_NODE_UNAVAILABLE] = ("the shard has no leader right now or is "
                                 "overloaded; retry"),
    [AGENDA_NODE_STORAGE_FULL] = ("the replica's storage is full; writes "
                                  "are refused"),
    [AGENDA_NODE_TOO_BIG] = "the command is too large",
    [AGENDA_NODE_SHUTDOWN] = "the replica is shutting down; retry",
};

const char *agenda_node_fail_message(enum agenda_node_fail f)
{
    if ((unsigned)f >= sizeof(fail_messages) / sizeof(fail_messages[0]))
        return "unknown failure";
    return fail_messages[f];
}

uint64_t agenda_node_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t node_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int node_peer_slot(const struct agenda_node *n, raft_id id)
{
    for (unsigned i = 0; i < n->cfg.n_peers; i++)
        if (n->cfg.peers[i].id == id)
            return (int)i;
    return -1;
}

/* ---- op lists ------------------------------------------------------------- */

static void list_remove(struct node_list *l, struct agenda_node_op *op)
{
    if (op->prev != NULL)
        op->prev->next = op->next;
    else
        l->head = op->next;
    if (op->next != NULL)
        op->next->prev = op->prev;
    else
        l->tail = op->prev;
    op->prev = op->next = NULL;
    l->n--;
}

static void list_push_tail(struct node_list *l, struct agenda_node_op *op)
{
    op->next = NULL;
    op->prev = l->tail;
    if (l->tail != NULL)
        l->tail->next = op;
    else
        l->head = op;
    l->tail = op;
    l->n++;
}

/* Writes are kept sorted by index; new ones almost always go last. */
static void list_insert_sorted(struct node_list *l, struct agenda_node_op *op)
{
    struct agenda_node_op *at = l->tail;
    while (at != NULL && at->index > op->index)
        at = at->prev;
    if (at == NULL) {
        op->prev = NULL;
        op->next = l->head;
        if (l->head != NULL)
            l->head->prev = op;
        else
            l->tail = op;
        l->head = op;
        l->n++;
        return;
    }
    op->prev = at;
    op->next = at->next;
    if (at->next != NULL)
        at->next->prev = op;
    else
        l->tail = op;
    at->next = op;
    l->n++;
}

static struct node_list *list_of(struct agenda_node *n,
                                 struct agenda_node_op *op)
{
    if (op->kind == NODE_OP_WRITE)
        return &n->writes;
    return op->ctx == 0 ? &n->reads_batch : &n->reads_sent;
}

static void complete_write(struct agenda_node *n, struct agenda_node_op *op,
                           enum agenda_node_fail fail,
                           const struct sm_result *res, bool dup)
{
    list_remove(&n->writes, op);
    agenda_node_write_cb cb = op->wcb;
    void *arg = op->arg;
    free(op);
    cb(arg, fail, res, dup);
}

static void complete_read(struct agenda_node *n, struct agenda_node_op *op,
                          enum agenda_node_fail fail)
{
    list_remove(list_of(n, op), op);
    agenda_node_read_cb cb = op->rcb;
    void *arg = op->arg;
    free(op);
    cb(arg, fail);
}

void agenda_node_cancel(struct agenda_node *n, struct agenda_node_op *op)
{
    list_remove(list_of(n, op), op);
    free(op);
}

static void fail_all(struct agenda_node *n, enum agenda_node_fail fail)
{
    while (n->writes.head != NULL)
        complete_write(n, n->writes.head, fail, NULL, false);
    while (n->reads_batch.head != NULL)
        complete_read(n, n->reads_batch.head, fail);
    while (n->reads_sent.head != NULL)
        complete_read(n, n->reads_sent.head, fail);
}

/* ---- client operations ----------------------------------------------------- */

static enum agenda_node_fail map_raft_err(int rv)
{
    switch (rv) {
    case RAFT_OK:
        return AGENDA_NODE_OK;
    case RAFT_ERR_NOT_LEADER:
        return AGENDA_NODE_NOT_LEADER;
    case RAFT_ERR_TOO_BIG:
        return AGENDA_NODE_TOO_BIG;
    default:
        return AGENDA_NODE_UNAVAILABLE;
    }
}

static enum agenda_node_fail can_accept(struct agenda_node *n)
{
    if (n->closing)
        return AGENDA_NODE_SHUTDOWN;
    if (n->storage_full)
        return AGENDA_NODE_STORAGE_FULL;
    if (n->frozen)
        return AGENDA_NODE_UNAVAILABLE;
    if (n->writes.n + n->reads_batch.n + n->reads_sent.n >=
        NODE_MAX_QUEUED_OPS)
        return AGENDA_NODE_UNAVAILABLE;
    return AGENDA_NODE_OK;
}

enum agenda_node_fail agenda_node_write(struct agenda_node *n,
                                        const char *request_id,
                                        const void *payload, size_t len,
                                        agenda_node_write_cb cb, void *arg,
                                        struct agenda_node_op **opp)
{
    enum agenda_node_fail f = can_accept(n);
    if (f != AGENDA_NODE_OK)
        return f;
    agenda_buf_reset(&n->scratch);
    /* a stamp counts only once proposed (a follower refuses the write) */
    struct agenda_leader_clock clock = n->clock;
    uint64_t stamp = agenda_leader_clock_stamp(&clock, agenda_node_now_ms(),
                                               node_mono_ms());
    if (agenda_command_encode(&n->scratch, request_id, stamp, payload,
                              len) != 0)
        return AGENDA_NODE_UNAVAILABLE;
    struct agenda_node_op *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return AGENDA_NODE_UNAVAILABLE;
    int rv = raft_propose(n->raft, n->scratch.data, n->scratch.len,
                          &op->index, &op->term);
    if (rv != RAFT_OK) {
        free(op);
        return map_raft_err(rv);
    }
    n->clock = clock;
    n->proposals++;
    op->kind = NODE_OP_WRITE;
    op->wcb = cb;
    op->arg = arg;
    op->deadline_ms = node_mono_ms() + n->cfg.request_timeout_ms;
    list_insert_sorted(&n->writes, op);
    *opp = op;
    node_schedule_ready(n);
    return AGENDA_NODE_OK;
}

enum agenda_node_fail agenda_node_read(struct agenda_node *n,
                                       agenda_node_read_cb cb, void *arg,
                                       struct agenda_node_op **opp)
{
    enum agenda_node_fail f = can_accept(n);
    if (f != AGENDA_NODE_OK && f != AGENDA_NODE_STORAGE_FULL)
        return f;
    struct raft_status st;
    raft_status(n->raft, &st);
    if (st.role != RAFT_LEADER)
        return AGENDA_NODE_NOT_LEADER;
    struct agenda_node_op *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return AGENDA_NODE_UNAVAILABLE;
    op->kind = NODE_OP_READ;
    op->rcb = cb;
    op->arg = arg;
    op->deadline_ms = node_mono_ms() + n->cfg.request_timeout_ms;
    /* Reads of one loop turn share one ReadIndex round (sent with the
     * ready batch), instead of a heartbeat round each. */
    list_push_tail(&n->reads_batch, op);
    n->read_index++;
    *opp = op;
    node_schedule_ready(n);
    return AGENDA_NODE_OK;
}

static void send_read_batch(struct agenda_node *n)
{
    if (n->reads_batch.head == NULL)
        return;
    uint64_t ctx = ++n->next_read_ctx;
    int rv = raft_read_index(n->raft, ctx);
    enum agenda_node_fail f = map_raft_err(rv);
    while (n->reads_batch.head != NULL) {
        struct agenda_node_op *op = n->reads_batch.head;
        if (f != AGENDA_NODE_OK) {
            complete_read(n, op, f);
            continue;
        }
        list_remove(&n->reads_batch, op);
        op->ctx = ctx;
        list_push_tail(&n->reads_sent, op);
    }
}

static void serve_reads(struct agenda_node *n, raft_index applied)
{
    struct agenda_node_op *op = n->reads_sent.head;
    while (op != NULL) {
        struct agenda_node_op *next = op->next;
        if (op->index_known && op->index <= applied)
            complete_read(n, op, AGENDA_NODE_OK);
        op = next;
    }
}

static void reads_answered(struct agenda_node *n, const struct raft_ready *rd)
{
    for (size_t i = 0; i < rd->n_reads; i++)
        for (struct agenda_node_op *op = n->reads_sent.head; op != NULL;
             op = op->next)
            if (op->ctx == rd->reads[i].ctx) {
                op->index_known = true;
                op->index = rd->reads[i].index;
            }
    for (size_t i = 0; i < rd->n_read_fails; i++) {
        struct agenda_node_op *op = n->reads_sent.head;
        while (op != NULL) {
            struct agenda_node_op *next = op->next;
            if (op->ctx == rd->read_fails[i].ctx)
                complete_read(n, op, AGENDA_NODE_NOT_LEADER);
            op = next;
        }
    }
}

static void expire_ops(struct agenda_node *n)
{
    uint64_t now = node_mono_ms();
    struct node_list *lists[] = {&n->writes, &n->reads_batch, &n->reads_sent};
    for (size_t l = 0; l < 3; l++) {
        struct agenda_node_op *op = lists[l]->head;
        while (op != NULL) {
            struct agenda_node_op *next = op->next;
            if (op->deadline_ms <= now) {
                if (op->kind == NODE_OP_WRITE)
                    complete_write(n, op, AGENDA_NODE_UNKNOWN, NULL, false);
                else
                    complete_read(n, op, AGENDA_NODE_UNAVAILABLE);
            }
            op = next;
        }
    }
}

/* ---- the ready batch ---------------------------------------------------- */

static void send_msgs(struct agenda_node *n, const struct raft_ready *rd,
                      bool early)
{
    for (size_t i = 0; i < rd->n_msgs; i++) {
        const struct raft_msg *m = &rd->msgs[i];
        if (raft_msg_may_send_early(m) != early)
            continue;
        if (m->type == RAFT_MSG_SNAPSHOT) {
            node_snapshot_request(n, m);
            continue;
        }
        /* A dropped message is recovered by Raft's retries. */
        agenda_transport_send_msg(n->tr, m);
    }
}

/* What applying one entry answered, kept until the batch is durable. */
struct apply_result {
    raft_index index;
    raft_term term;
    int status;
    bool dup;
    size_t off, len; /* body in the batch's body buffer */
};

/* What to tell an operator whose replica's identity differs. */
#define IDENTITY_ADVICE                                                     \
    "every replica of a shard must have the same kind and range: "         \
    "regenerate the configs from one topology (config/gen-agents)"

/* How data (a no-op's, or the stored record) compares with this replica's
 * identity (UNKNOWN when it has none); for DIFFERENT, what data says goes
 * to theirs (AGENDA_SHARD_IDENTITY_WHY_MAX bytes) when not NULL. */
static enum agenda_identity_match compare_identity(
    const struct agenda_node *n, const uint8_t *data, size_t len,
    char *theirs)
{
    return agenda_shard_identity_compare(data, len, n->cfg.identity,
                                         n->cfg.identity_len, theirs,
                                         theirs != NULL
                                             ? AGENDA_SHARD_IDENTITY_WHY_MAX
                                             : 0);
}

/* On a follower, the newest command the leader of this term stamped in
 * the batch anchors this node's own stamps (leader_clock.h) should it
 * lead next; one per batch is enough, the latest.  Entries of earlier
 * terms (a log replayed, a follower catching up) were stamped long ago; a
 * leader knows its own stamps. */
static void observe_stamps(struct agenda_node *n, const struct raft_ready *rd)
{
    struct raft_status st;
    raft_status(n->raft, &st);
    if (st.role == RAFT_LEADER)
        return;
    for (size_t i = rd->n_committed; i-- > 0;) {
        const struct raft_entry *e = &rd->committed[i];
        struct agenda_command cmd;
        if (e->term != st.term)
            return;
        if (e->type == RAFT_ENTRY_NORMAL &&
            agenda_command_decode(e->data, e->len, &cmd) == 0) {
            agenda_leader_clock_observe(&n->clock, cmd.time_ms,
                                        node_mono_ms());
            return;
        }
    }
}

/* Apply the committed entries of the batch into txn.  Returns 0 or an
 * LMDB/storage error (the caller aborts the transaction). */
static int apply_entries(struct agenda_node *n, const struct raft_ready *rd,
                         MDB_txn *txn, struct apply_result *results,
                         size_t *n_results, struct agenda_buf *bodies)
{
    observe_stamps(n, rd);
    *n_results = 0;
    for (size_t i = 0; i < rd->n_committed; i++) {
        const struct raft_entry *e = &rd->committed[i];
        if (e->type == RAFT_ENTRY_NOOP && e->len > 0 &&
            compare_identity(n, e->data, e->len, NULL) ==
                AGENDA_IDENTITY_SAME) {
            /* the state is now this shard's by a leader's word too;
             * snapshots carry the record to replicas that never see
             * this no-op (check_stored_identity) */
            int rc = agenda_storage_identity_put(n->st, txn,
                                                 n->cfg.identity,
                                                 n->cfg.identity_len);
            if (rc != 0)
                return rc;
        }
        if (e->type != RAFT_ENTRY_NORMAL)
            continue;
        bool dup = false;
        n->result.status = 0;
        int rc = agenda_sessions_apply(&n->sessions, n->cfg.sm_ops, n->cfg.sm,
                                       txn, e->index, e->data, e->len,
                                       &n->result, &dup);
        if (rc == MDB_VERSION_MISMATCH)
            agenda_log(AGENDA_LOG_ERROR, "shard %s node %u: entry %" PRIu64
                       " was written by a newer agent (command version %u, "
                       "this one applies up to %u): upgrade this replica; "
                       "it applies nothing more until then", n->cfg.shard,
                       n->cfg.id, (uint64_t)e->index,
                       e->len > 0 ? e->data[0] : 0, AGENDA_COMMAND_VERSION);
        if (rc != 0)
            return agenda_storage_map_mdb(rc);
        struct apply_result *r = &results[(*n_results)++];
        r->index = e->index;
        r->term = e->term;
        r->status = n->result.status;
        r->dup = dup;
        r->off = bodies->len;
        r->len = n->result.body.len;
        if (agenda_buf_append(bodies, n->result.body.data,
                              n->result.body.len) != 0)
            return AGENDA_STORAGE_NOMEM;
    }
    return 0;
}

/* Answer the writers whose entries were applied up to `applied`: results in
 * index order, writes sorted by index. */
static void answer_writers(struct agenda_node *n, raft_index applied,
                           const struct apply_result *results,
                           size_t n_results, const struct agenda_buf *bodies)
{
    size_t k = 0;
    while (n->writes.head != NULL && n->writes.head->index <= applied) {
        struct agenda_node_op *op = n->writes.head;
        while (k < n_results && results[k].index < op->index)
            k++;
        if (k < n_results && results[k].index == op->index &&
            results[k].term == op->term) {
            struct sm_result res = {.status = results[k].status};
            res.body.data = bodies->data + results[k].off;
            res.body.len = results[k].len;
            complete_write(n, op, AGENDA_NODE_OK, &res, results[k].dup);
        } else {
            /* Another entry took its place: it was never committed. */
            complete_write(n, op, AGENDA_NODE_UNKNOWN, NULL, false);
        }
    }
}

/* Make the batch durable with one synced commit: the new log entries and
 * hard state, the state machine's changes for the committed entries and
 * the applied index (raft.h allows applying in the same atomic step that
 * persists).
 *
 * The writers of the committed entries are answered between applying and
 * that commit, and their answers are written to the sockets right away
 * (http_reply.c, send_now): a client does not wait for the apply's fsync.
 * No crash can undo what they were told: the entries are committed, that
 * is durable on a majority, and applying them is deterministic, so
 * whichever replica applies them again after a crash (this one from its
 * log, or the next leader) reaches the same state and the same answers,
 * which the sessions table keeps for retries.  A commit that fails (disk
 * full) keeps the batch to retry it: applying again answers nobody twice,
 * the writers were taken off the list, and what they were told stands,
 * applied here once there is room (stale reads here miss it meanwhile).
 * Linearizable reads still wait for the commit: they are served once the
 * applied index, advanced by it, reaches their read index. */
static int commit_batch(struct agenda_node *n, const struct raft_ready *rd)
{
    bool persist = rd->n_entries > 0 || rd->hard_state_changed;
    if (!persist && rd->n_committed == 0)
        return 0;
    uint64_t t0 = mono_ns();
    MDB_txn *txn;
    int rc = agenda_storage_batch_begin(
        n->st, rd->hard_state_changed ? &rd->hard_state : NULL, rd->entries,
        rd->n_entries, &txn);
    if (rc != 0)
        return rc;
    struct apply_result *results = NULL;
    struct agenda_buf bodies = {0};
    size_t n_results = 0;
    if (rd->n_committed > 0) {
        results = calloc(rd->n_committed, sizeof(*results));
        rc = results == NULL ? AGENDA_STORAGE_NOMEM
                             : apply_entries(n, rd, txn, results, &n_results,
                                             &bodies);
    }
    raft_index applied;
    raft_term applied_term;
    agenda_storage_applied(n->st, &applied, &applied_term);
    if (rd->n_committed > 0) {
        applied = rd->committed[rd->n_committed - 1].index;
        applied_term = rd->committed[rd->n_committed - 1].term;
    }
    if (rc == 0 && rd->n_committed > 0) {
        size_t waiting = n->writes.n;
        answer_writers(n, applied, results, n_results, &bodies);
        n->answered_before_sync += waiting - n->writes.n;
    }
    if (rc != 0)
        agenda_storage_apply_abort(n->st, txn);
    else
        rc = agenda_storage_apply_commit(n->st, txn, applied, applied_term);
    /* a failed commit aborted the transaction too */
    if (rc == 0)
        agenda_sessions_committed(&n->sessions);
    else
        agenda_sessions_aborted(&n->sessions);
    if (rc == 0 && rd->n_committed > 0) {
        for (size_t i = 0; i < n_results; i++)
            n->duplicates += results[i].dup;
        n->commits += rd->n_committed;
        n->apply_batches++;
        uint64_t dt = mono_ns() - t0;
        n->apply_ns_total += dt;
        if (dt > n->apply_ns_max)
            n->apply_ns_max = dt;
    }
    free(results);
    agenda_buf_free(&bodies);
    return rc;
}

static void note_role_changes(struct agenda_node *n)
{
    struct raft_status st;
    raft_status(n->raft, &st);
    if (st.role == RAFT_CANDIDATE && n->last_role != RAFT_CANDIDATE)
        n->elections++;
    if (st.leader != n->last_leader) {
        if (st.leader != RAFT_NONE)
            n->leader_changes++;
        agenda_log(AGENDA_LOG_INFO, "shard %s node %u: term %" PRIu64
                   " leader %u (%s)", n->cfg.shard, n->cfg.id, st.term,
                   st.leader, raft_role_name(st.role));
        n->last_leader = st.leader;
    }
    if (n->last_role == RAFT_LEADER && st.role != RAFT_LEADER) {
        /* Reads waiting for their batch can no longer be confirmed here;
         * writes stay: they may still commit under the next leader. */
        while (n->reads_batch.head != NULL)
            complete_read(n, n->reads_batch.head, AGENDA_NODE_NOT_LEADER);
    }
    n->last_role = st.role;
}

/* Compaction as compaction.h says: a leader keeps what its followers in
 * touch and the snapshot it streams still need. */
static void maybe_compact(struct agenda_node *n)
{
    raft_index applied;
    raft_term applied_term;
    struct agenda_storage_stat ss;
    if (n->cfg.snapshot_threshold == 0 ||
        agenda_storage_applied(n->st, &applied, &applied_term) != 0 ||
        agenda_storage_stat(n->st, &ss) != 0)
        return;
    /* after every ready batch: below the threshold, nothing more to ask */
    if (applied < ss.first_index ||
        applied - ss.first_index < n->cfg.snapshot_threshold)
        return;
    struct compaction_peer peers[RAFT_MAX_NODES];
    size_t n_peers = 0;
    raft_index streaming = 0;
    struct raft_status st;
    raft_status(n->raft, &st);
    if (st.role == RAFT_LEADER) {
        uint64_t now = node_mono_ms();
        for (unsigned i = 0; i < st.n_peers && i < RAFT_MAX_NODES; i++) {
            if (st.peers[i].id == n->cfg.id)
                continue;
            int slot = node_peer_slot(n, st.peers[i].id);
            struct snap_send *s = slot >= 0 ? &n->send[slot] : NULL;
            if (s != NULL && s->installing != 0 &&
                (st.peers[i].match >= s->installing ||
                 now > s->installing_until_ms))
                s->installing = 0;
            peers[n_peers++] = (struct compaction_peer){
                .match = st.peers[i].match,
                .active = st.peers[i].recent_active,
                .snapshotting = st.peers[i].snapshotting,
                .installing = s != NULL ? s->installing : 0,
            };
        }
        /* every transfer streams the one file */
        for (unsigned i = 0; i < n->cfg.n_peers && n->file.valid; i++)
            if (n->send[i].state == SNAP_SEND_STREAMING ||
                n->send[i].state == SNAP_SEND_WAIT_DONE)
                streaming = n->file.meta.index;
    }
    raft_index upto = agenda_compaction_upto(
        applied, ss.first_index, n->cfg.snapshot_threshold, peers, n_peers,
        streaming);
    if (upto == 0)
        return;
    if (agenda_storage_compact(n->st, upto) != 0 ||
        agenda_storage_stat(n->st, &ss) != 0)
        return;
    raft_compacted(n->raft, &ss.snapshot);
    n->compactions++;
}

/* Carry out the kept batch, resuming after the steps already done, so a
 * batch that failed half-way (disk full) is retried without redoing its
 * snapshot install or resending its messages. */
static int process_batch(struct agenda_node *n)
{
    struct node_batch *b = &n->batch;
    const struct raft_ready *rd = b->rd;
    if (!b->early_sent) {
        send_msgs(n, rd, true);
        /* out before our own sync: the followers append meanwhile */
        agenda_transport_flush(n->tr);
        b->early_sent = true;
    }
    if (rd->snapshot != NULL && !b->installed) {
        int rc = node_snapshot_install(n, rd->snapshot);
        if (rc != 0)
            return rc;
        b->installed = true;
    }
    if (!b->committed) {
        int rc = commit_batch(n, rd);
        if (rc != 0)
            return rc;
        b->committed = true;
    }
    if (!b->late_sent) {
        send_msgs(n, rd, false);
        /* not held back by the sync of the next batch of this turn */
        agenda_transport_flush(n->tr);
        b->late_sent = true;
    }
    reads_answered(n, rd);
    return 0;
}

static void run_ready(struct agenda_node *n)
{
    n->ready_pending = false;
    if (n->frozen)
        return; /* the retry timer resumes */
    send_read_batch(n);
    for (int round = 0; round < NODE_MAX_READY_ROUNDS; round++) {
        if (n->batch.rd == NULL) {
            if (!raft_has_ready(n->raft))
                break;
            memset(&n->batch, 0, sizeof(n->batch));
            n->batch.rd = raft_ready(n->raft);
            if (n->batch.rd == NULL) {
                agenda_log(AGENDA_LOG_ERROR, "shard %s node %u: the log "
                           "cannot be read; exiting", n->cfg.shard,
                           n->cfg.id);
                exit(2);
            }
        }
        int rc = process_batch(n);
        if (rc != 0) {
            if (rc != AGENDA_STORAGE_FULL && rc != AGENDA_STORAGE_BUSY) {
                agenda_log(AGENDA_LOG_ERROR, "shard %s node %u: %s; exiting "
                           "so that a restart recovers from synced state",
                           n->cfg.shard, n->cfg.id,
                           agenda_storage_strerror(rc));
                exit(2);
            }
            /* Keep the batch and retry it later; meanwhile the core is
             * frozen, so this node acknowledges nothing. */
            if (!n->failing)
                agenda_log(AGENDA_LOG_ERROR, "shard %s node %u: %s; writes "
                           "refused until it can be stored", n->cfg.shard,
                           n->cfg.id, agenda_storage_strerror(rc));
            n->frozen = true;
            n->failing = true;
            n->storage_full = rc == AGENDA_STORAGE_FULL;
            struct timeval tv = {0, NODE_RETRY_MS * 1000};
            event_add(n->retry_ev, &tv);
            return;
        }
        if (n->failing)
            agenda_log(AGENDA_LOG_INFO, "shard %s node %u: storage writable "
                       "again", n->cfg.shard, n->cfg.id);
        n->failing = false;
        n->storage_full = false;
        n->batch.rd = NULL;
        raft_advance(n->raft);
        raft_index applied;
        raft_term at;
        agenda_storage_applied(n->st, &applied, &at);
        serve_reads(n, applied);
        note_role_changes(n);
    }
    maybe_compact(n);
    if (raft_has_ready(n->raft))
        node_schedule_ready(n);
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct agenda_node *n = arg;
    n->frozen = false;
    run_ready(n);
}

void node_schedule_ready(struct agenda_node *n)
{
    if (n->ready_pending || n->closing)
        return;
    n->ready_pending = true;
    event_active(n->ready_ev, EV_TIMEOUT, 0);
}

static void ready_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    run_ready(arg);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct agenda_node *n = arg;
    if (n->batch.rd == NULL)
        raft_tick(n->raft);
    expire_ops(n);
    node_snapshot_tick(n);
    node_schedule_ready(n);
}

/* ---- transport callbacks ------------------------------------------------- */

/* A new leader's no-op says what the shard is by its config
 * (shard_identity.h).  A replica whose own config says otherwise would
 * apply the same commands differently: it neither appends nor answers
 * anything of that leader's term.  Checked on arrival, not on apply, so
 * that the odd one out never helps commit anything: when it is a follower
 * the others go on without it; when it leads, it hears from no quorum,
 * steps down (check-quorum) and the others elect one of their own.
 * Returns true when m is to be dropped. */
static bool refuse_other_identity(struct agenda_node *n,
                                  const struct raft_msg *m)
{
    if (m->term == n->refused_term && m->from == n->refused_leader &&
        m->term != 0)
        return true;
    if (m->type != RAFT_MSG_APPEND || n->cfg.identity_len == 0)
        return false;
    for (uint32_t i = 0; i < m->n_entries; i++) {
        const struct raft_entry *e = &m->entries[i];
        char theirs[AGENDA_SHARD_IDENTITY_WHY_MAX];
        if (e->type != RAFT_ENTRY_NOOP ||
            compare_identity(n, e->data, e->len, theirs) !=
                AGENDA_IDENTITY_DIFFERENT)
            continue; /* ours, or an agent's that does not say (upgrades) */
        agenda_log(AGENDA_LOG_ERROR, "shard %s node %u: node %u, leader of "
                   "term %" PRIu64 ", sends the no-op of term %" PRIu64
                   ", whose leader ran this shard as %s, and this replica's "
                   "config says otherwise; refusing everything it sends in "
                   "that term.  " IDENTITY_ADVICE, n->cfg.shard, n->cfg.id,
                   m->from, m->term, e->term, theirs);
        n->refused_leader = m->from;
        n->refused_term = m->term;
        return true;
    }
    return false;
}

static void on_msg(void *arg, const struct raft_msg *m)
{
    struct agenda_node *n = arg;
    if (n->batch.rd != NULL)
        return; /* frozen: Raft recovers the lost message */
    if (refuse_other_identity(n, m))
        return;
    if (m->type == RAFT_MSG_SNAPSHOT) {
        node_snapshot_on_msg(n, m);
    } else {
        int rv = raft_step(n->raft, m);
        if (rv != RAFT_OK)
            agenda_log(AGENDA_LOG_DEBUG, "dropped %s from %u: %s",
                       raft_msg_type_name(m->type), m->from,
                       raft_strerror(rv));
    }
    node_schedule_ready(n);
}

static void on_snap_chunk(void *arg, raft_id from,
                          const struct agenda_snap_chunk *c)
{
    node_snapshot_on_chunk(arg, from, c);
}

static void on_snap_ack(void *arg, raft_id from,
                        const struct agenda_snap_ack *a)
{
    node_snapshot_on_ack(arg, from, a);
    node_schedule_ready(arg);
}

static void on_peer_state(void *arg, raft_id peer, bool connected)
{
    struct agenda_node *n = arg;
    if (!connected && n->batch.rd == NULL)
        raft_report_unreachable(n->raft, peer);
}

static void on_drain(void *arg, raft_id peer)
{
    node_snapshot_on_drain(arg, peer);
}

/* ---- lifecycle -------------------------------------------------------------- */

/* Whether the stored state was applied as the shard this replica's config
 * describes (shard_identity.h): data restored or copied from another
 * shard, a config edited since, or a snapshot from a leader whose
 * identity this replica never saw in a no-op, are refused here. */
static int check_stored_identity(struct agenda_node *n, MDB_txn *txn)
{
    const uint8_t *stored;
    size_t len;
    char theirs[AGENDA_SHARD_IDENTITY_WHY_MAX];
    int rc = agenda_storage_identity_get(n->st, txn, &stored, &len);
    if (rc <= 0)
        return rc;
    if (compare_identity(n, stored, len, theirs) != AGENDA_IDENTITY_DIFFERENT)
        return 0;
    agenda_log(AGENDA_LOG_ERROR, "shard %s node %u: the state in %s was "
               "applied as a shard of %s, and this replica's config says "
               "otherwise; " IDENTITY_ADVICE, n->cfg.shard, n->cfg.id,
               n->cfg.data_dir, theirs);
    return AGENDA_STORAGE_INVALID;
}

static int open_state_machine(struct agenda_node *n)
{
    MDB_txn *txn;
    int rc = agenda_storage_apply_begin(n->st, &txn);
    if (rc != 0)
        return rc;
    rc = check_stored_identity(n, txn);
    if (rc != 0) {
        agenda_storage_apply_abort(n->st, txn);
        return rc;
    }
    rc = n->cfg.sm_ops->open(n->cfg.sm, txn);
    if (rc == 0)
        rc = agenda_sessions_open(&n->sessions, txn);
    if (rc != 0) {
        /* an upgrade (upgrade.c, session.c) rewrites in this one
         * transaction, and may need more room than the map has left */
        agenda_log(AGENDA_LOG_ERROR, "shard %s node %u: opening the state "
                   "machine failed: %s", n->cfg.shard, n->cfg.id,
                   mdb_strerror(rc));
        agenda_storage_apply_abort(n->st, txn);
        return agenda_storage_map_mdb(rc);
    }
    raft_index applied;
    raft_term term;
    agenda_storage_applied(n->st, &applied, &term);
    return agenda_storage_apply_commit(n->st, txn, applied, term);
}

int node_reopen_state_machine(struct agenda_node *n)
{
    return open_state_machine(n);
}

struct agenda_node *agenda_node_new(struct event_base *base,
                                    const struct agenda_node_config *cfg,
                                    char *err, size_t errlen)
{
    struct agenda_node *n = calloc(1, sizeof(*n));
    if (n == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    n->cfg = *cfg;
    n->base = base;
    n->copy_pipe[0] = n->copy_pipe[1] = -1;
    n->digest.pipe[0] = n->digest.pipe[1] = -1;
    n->file.fd = -1;
    n->recv.fd = -1;
    snapshot_vet_init(&n->vet);
    n->data_dir = strdup(cfg->data_dir);
    if (n->data_dir == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    n->cfg.data_dir = n->data_dir;
    char serr[256];
    int rc = agenda_storage_open(cfg->data_dir, cfg->map_size, &n->st, serr,
                                 sizeof(serr));
    if (rc != 0) {
        snprintf(err, errlen, "%s", serr);
        goto fail;
    }
    if (agenda_storage_stale_readers(n->st) > 0)
        agenda_log(AGENDA_LOG_WARN, "cleared %d stale LMDB reader slots",
                   agenda_storage_stale_readers(n->st));
    if (agenda_storage_mended_bytes(n->st) > 0)
        agenda_log(AGENDA_LOG_INFO, "data.mdb ended %" PRIu64 " bytes "
                   "before its last page, as LMDB leaves pages it freed "
                   "unwritten; every record is within it: extended with "
                   "zeros", agenda_storage_mended_bytes(n->st));
    rc = open_state_machine(n);
    if (rc != 0) {
        snprintf(err, errlen, "cannot open the state machine: %s",
                 agenda_storage_strerror(rc));
        goto fail;
    }

    struct raft_config rc_cfg;
    struct agenda_transport_config tc;
    agenda_transport_config_defaults(&tc);
    raft_config_defaults(&rc_cfg);
    /* What may be in flight to one follower fits what the transport
     * queues for it: the core copies every APPEND it sends, and with the
     * defaults (256 of 1 MiB) a follower far behind made the leader copy
     * up to 256 MiB, past 16 MiB only to be dropped. */
    rc_cfg.max_msg_bytes = NODE_APPEND_BYTES;
    rc_cfg.max_inflight = (unsigned)(tc.queue_limit / NODE_APPEND_BYTES);
    rc_cfg.id = cfg->id;
    for (unsigned i = 0; i < cfg->n_peers; i++)
        rc_cfg.peers[i] = cfg->peers[i].id;
    rc_cfg.n_peers = cfg->n_peers;
    rc_cfg.election_tick = cfg->election_ticks;
    rc_cfg.heartbeat_tick = cfg->heartbeat_ticks;
    rc_cfg.seed = agenda_node_now_ms() ^ ((uint64_t)getpid() << 20);
    rc_cfg.storage = agenda_storage_raft_ops();
    rc_cfg.storage_ctx = n->st;
    rc_cfg.noop_data = cfg->identity;
    rc_cfg.noop_len = cfg->identity_len;
    raft_term applied_term;
    agenda_storage_applied(n->st, &rc_cfg.applied, &applied_term);
    enum raft_err rerr;
    n->raft = raft_new(&rc_cfg, &rerr);
    if (n->raft == NULL) {
        snprintf(err, errlen, "cannot restart raft from %s: %s (%s)",
                 cfg->data_dir, raft_strerror(rerr),
                 agenda_storage_last_error(n->st));
        goto fail;
    }

    tc.cluster = cfg->cluster;
    tc.shard = cfg->shard;
    tc.id = cfg->id;
    tc.listen_host = cfg->listen_host;
    tc.seed = rc_cfg.seed;
    tc.tls = cfg->tls;
    for (unsigned i = 0; i < cfg->n_peers; i++) {
        const struct agenda_node_peer *p = &cfg->peers[i];
        if (p->id == cfg->id) {
            tc.listen_port = p->raft_port;
            continue;
        }
        tc.peers[tc.n_peers].id = p->id;
        tc.peers[tc.n_peers].name = p->name;
        tc.peers[tc.n_peers].host = p->host;
        tc.peers[tc.n_peers].port = p->raft_port;
        tc.n_peers++;
    }
    static const struct agenda_transport_callbacks cbs = {
        .on_msg = on_msg,
        .on_snap_chunk = on_snap_chunk,
        .on_snap_ack = on_snap_ack,
        .on_peer_state = on_peer_state,
        .on_drain = on_drain,
    };
    n->tr = agenda_transport_new(base, &tc, &cbs, n);
    if (n->tr == NULL) {
        snprintf(err, errlen, "cannot start the peer transport on %s:%u",
                 cfg->listen_host, tc.listen_port);
        goto fail;
    }

    n->ready_ev = event_new(base, -1, 0, ready_cb, n);
    n->retry_ev = evtimer_new(base, retry_cb, n);
    n->tick_ev = event_new(base, -1, EV_PERSIST, tick_cb, n);
    if (n->ready_ev == NULL || n->retry_ev == NULL || n->tick_ev == NULL ||
        event_priority_set(n->ready_ev, NODE_READY_PRIORITY) != 0 ||
        node_snapshot_init(n) != 0 || node_digest_init(n) != 0) {
        snprintf(err, errlen, "cannot create events");
        goto fail;
    }
    struct timeval tv = {cfg->tick_ms / 1000, (cfg->tick_ms % 1000) * 1000};
    event_add(n->tick_ev, &tv);
    n->last_role = RAFT_FOLLOWER;
    node_schedule_ready(n);
    return n;
fail:
    agenda_node_free(n);
    return NULL;
}

void agenda_node_free(struct agenda_node *n)
{
    if (n == NULL)
        return;
    n->closing = true;
    fail_all(n, AGENDA_NODE_SHUTDOWN);
    node_digest_free(n);
    node_snapshot_free(n);
    if (n->tick_ev != NULL)
        event_free(n->tick_ev);
    if (n->ready_ev != NULL)
        event_free(n->ready_ev);
    if (n->retry_ev != NULL)
        event_free(n->retry_ev);
    agenda_transport_free(n->tr);
    raft_free(n->raft);
    agenda_storage_close(n->st);
    agenda_sessions_close(&n->sessions);
    agenda_buf_free(&n->scratch);
    agenda_buf_free(&n->result.body);
    free(n->data_dir);
    free(n);
}

bool agenda_node_start_transfer(struct agenda_node *n)
{
    struct raft_status st;
    raft_status(n->raft, &st);
    if (st.role != RAFT_LEADER || n->cfg.n_peers < 2 || n->batch.rd != NULL)
        return false;
    if (raft_transfer_leader(n->raft, RAFT_NONE) != RAFT_OK)
        return false;
    agenda_log(AGENDA_LOG_INFO, "shard %s node %u: handing leadership over",
               n->cfg.shard, n->cfg.id);
    node_schedule_ready(n);
    return true;
}

bool agenda_node_is_leader(struct agenda_node *n)
{
    struct raft_status st;
    raft_status(n->raft, &st);
    return st.role == RAFT_LEADER;
}

/* ---- queries and status ------------------------------------------------------ */

int agenda_node_query(struct agenda_node *n, const struct sm_query *q,
                      struct sm_result *res)
{
    MDB_txn *txn;
    int rc = agenda_storage_read_begin(n->st, &txn);
    if (rc != 0)
        return rc;
    rc = n->cfg.sm_ops->query(n->cfg.sm, txn, q, res);
    agenda_storage_read_end(n->st, txn);
    if (rc == 0)
        n->queries++;
    return rc;
}

void agenda_node_info(struct agenda_node *n, struct agenda_node_info *out)
{
    memset(out, 0, sizeof(*out));
    raft_status(n->raft, &out->raft);
    int s = node_peer_slot(n, out->raft.leader);
    out->leader_peer = s >= 0 ? &n->cfg.peers[s] : NULL;
    out->storage_full = n->storage_full;
    out->healthy = out->raft.leader != RAFT_NONE && !n->frozen &&
                   !n->storage_full && !n->closing;
    struct agenda_storage_stat ss;
    if (agenda_storage_stat(n->st, &ss) == 0) {
        out->first_index = ss.first_index;
        out->snapshot = ss.snapshot;
        out->storage_used = ss.used_bytes;
        out->storage_map = ss.map_size;
    }
    out->elections = n->elections;
    out->leader_changes = n->leader_changes;
    out->commits = n->commits;
    out->proposals = n->proposals;
    out->apply_batches = n->apply_batches;
    out->apply_ns_total = n->apply_ns_total;
    out->apply_ns_max = n->apply_ns_max;
    struct agenda_storage_sync_stats sy;
    agenda_storage_sync_stats(n->st, &sy);
    out->sync_count = sy.count;
    out->sync_lazy = sy.lazy;
    out->sync_ns_total = sy.total_ns;
    out->sync_ns_max = sy.max_ns;
    out->snapshots_sent = n->snapshots_sent;
    out->snapshots_received = n->snapshots_received;
    out->snapshots_failed = n->snapshots_failed;
    out->compactions = n->compactions;
    out->duplicates = n->duplicates;
    const struct agenda_session_index *ix = &n->sessions.index;
    out->sessions_remembered = agenda_session_index_count(ix);
    out->sessions_index_bytes = agenda_session_index_bytes(ix);
    out->answered_before_sync = n->answered_before_sync;
    out->queries = n->queries;
    out->read_index = n->read_index;
    struct agenda_transport_stats ts;
    agenda_transport_stats(n->tr, &ts);
    out->transport_drops = ts.drops;
    out->transport_bad_frames = ts.bad_frames;
}

const struct agenda_node_config *agenda_node_config(
    const struct agenda_node *n)
{
    return &n->cfg;
}

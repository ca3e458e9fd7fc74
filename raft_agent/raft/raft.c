/*
 * raft.c — the Raft protocol: roles, elections (with pre-vote), replication,
 * commitment, ReadIndex, check-quorum and leadership transfer.
 *
 * Everything here is a reaction to raft_tick(), raft_step() or a local call;
 * output accumulates in r->msgs and in the log, and leaves through
 * raft_ready() (raft_ready.c).  See raft.h for the driving protocol.
 */
#include "raft_internal.h"

#include <stdlib.h>
#include <string.h>

/* VOTE carrying this context comes from a leadership transfer and may
 * disrupt a leader lease (the leader asked for it). */
#define RAFT_CTX_TRANSFER 1u

static const char *const err_names[RAFT_ERR__COUNT] = {
    [RAFT_OK] = "ok",
    [RAFT_ERR_NOT_LEADER] = "this node is not the leader",
    [RAFT_ERR_TRANSFERRING] = "leadership is being transferred; retry",
    [RAFT_ERR_NOMEM] = "out of memory",
    [RAFT_ERR_INVALID] = "invalid argument or message",
    [RAFT_ERR_STORAGE] = "the log storage failed",
    [RAFT_ERR_COMPACTED] = "entries were compacted into a snapshot",
    [RAFT_ERR_TOO_BIG] = "the command is larger than the entry limit",
    [RAFT_ERR_BUSY] = "too many uncommitted commands; retry later",
};

const char *raft_strerror(enum raft_err err)
{
    if ((unsigned)err >= RAFT_ERR__COUNT)
        return "unknown raft error";
    return err_names[err];
}

static const char *const msg_names[RAFT_MSG__COUNT] = {
    [0] = "invalid",
    [RAFT_MSG_APPEND] = "append",
    [RAFT_MSG_APPEND_RESP] = "append_resp",
    [RAFT_MSG_VOTE] = "vote",
    [RAFT_MSG_VOTE_RESP] = "vote_resp",
    [RAFT_MSG_PREVOTE] = "prevote",
    [RAFT_MSG_PREVOTE_RESP] = "prevote_resp",
    [RAFT_MSG_HEARTBEAT] = "heartbeat",
    [RAFT_MSG_HEARTBEAT_RESP] = "heartbeat_resp",
    [RAFT_MSG_SNAPSHOT] = "snapshot",
    [RAFT_MSG_TIMEOUT_NOW] = "timeout_now",
};

const char *raft_msg_type_name(uint8_t type)
{
    if (type == 0 || type >= RAFT_MSG__COUNT)
        return "invalid";
    return msg_names[type];
}

const char *raft_role_name(enum raft_role role)
{
    switch (role) {
    case RAFT_FOLLOWER:
        return "follower";
    case RAFT_PRE_CANDIDATE:
        return "pre_candidate";
    case RAFT_CANDIDATE:
        return "candidate";
    case RAFT_LEADER:
        return "leader";
    }
    return "unknown";
}

bool raft_msg_may_send_early(const struct raft_msg *m)
{
    return m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT ||
           m->type == RAFT_MSG_SNAPSHOT || m->type == RAFT_MSG_TIMEOUT_NOW;
}

void raft_config_defaults(struct raft_config *c)
{
    memset(c, 0, sizeof(*c));
    c->election_tick = 10;
    c->heartbeat_tick = 1;
    c->max_msg_bytes = 1u << 20;
    c->max_inflight = 256;
    c->max_entry_bytes = 1u << 20;
    c->max_uncommitted_bytes = 64u << 20;
    c->pre_vote = true;
    c->check_quorum = true;
}

/* ---- small helpers ------------------------------------------------------ */

static uint64_t rng_next(struct raft *r)
{
    /* splitmix64: deterministic for a given seed, good enough spread */
    uint64_t z = (r->rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

unsigned raft_quorum(const struct raft *r)
{
    return r->cfg.n_peers / 2 + 1;
}

static int slot_of(const struct raft *r, raft_id id)
{
    for (unsigned i = 0; i < r->cfg.n_peers; i++)
        if (r->cfg.peers[i] == id)
            return (int)i;
    return -1;
}

static unsigned popcount32(uint32_t v)
{
    unsigned n = 0;
    for (; v != 0; v &= v - 1)
        n++;
    return n;
}

static struct raft_msg *new_msg(struct raft *r, uint8_t type, raft_id to)
{
    struct raft_msg *m = raft_vec_push(&r->msgs, sizeof(*m));
    if (m == NULL)
        return NULL;
    memset(m, 0, sizeof(*m));
    m->type = type;
    m->from = r->cfg.id;
    m->to = to;
    m->term = r->term;
    return m;
}

static void reset_randomized_timeout(struct raft *r)
{
    unsigned t = r->cfg.election_tick;
    r->randomized_timeout = t + (unsigned)(rng_next(r) % t);
}

static bool past_election_timeout(const struct raft *r)
{
    return r->elapsed >= r->randomized_timeout;
}

/* ---- read index --------------------------------------------------------- */

static void reads_fail_all(struct raft *r)
{
    struct raft_pending_read *pend = r->reads_pending.p;
    for (size_t i = 0; i < r->reads_pending.n; i++) {
        struct raft_read_fail *f = raft_vec_push(&r->reads_failed,
                                                 sizeof(*f));
        if (f != NULL)
            f->ctx = pend[i].ctx;
    }
    r->reads_pending.n = 0;
    uint64_t *wait = r->reads_waiting.p;
    for (size_t i = 0; i < r->reads_waiting.n; i++) {
        struct raft_read_fail *f = raft_vec_push(&r->reads_failed,
                                                 sizeof(*f));
        if (f != NULL)
            f->ctx = wait[i];
    }
    r->reads_waiting.n = 0;
}

/* Move confirmed reads (a quorum acknowledged their round) to ready. */
static void reads_release(struct raft *r)
{
    struct raft_pending_read *pend = r->reads_pending.p;
    size_t done = 0;
    /* Reads are in seq order; once one is confirmed every earlier one is
     * too, since the same leadership was confirmed after they arrived. */
    size_t last_ok = 0;
    bool any = false;
    for (size_t i = 0; i < r->reads_pending.n; i++) {
        if (popcount32(pend[i].acks) >= raft_quorum(r)) {
            last_ok = i;
            any = true;
        }
    }
    if (!any)
        return;
    for (size_t i = 0; i <= last_ok; i++) {
        struct raft_read_state *s = raft_vec_push(&r->reads_ready,
                                                  sizeof(*s));
        if (s == NULL)
            break;
        s->ctx = pend[i].ctx;
        s->index = pend[i].index;
        done++;
    }
    memmove(pend, pend + done, (r->reads_pending.n - done) * sizeof(*pend));
    r->reads_pending.n -= done;
}

static bool committed_in_current_term(const struct raft *r)
{
    raft_term t = 0;
    return raft_log_term(&r->log, r->log.committed, &t) == RAFT_OK &&
           t == r->term;
}

static void send_heartbeat(struct raft *r, unsigned slot, uint64_t ctx)
{
    struct raft_progress *pr = &r->prs[slot];
    struct raft_msg *m = new_msg(r, RAFT_MSG_HEARTBEAT, pr->id);
    if (m == NULL)
        return;
    /* A follower may lack entries up to our commit; it must not commit
     * beyond what it is known to hold. */
    m->commit = pr->match < r->log.committed ? pr->match : r->log.committed;
    m->context = ctx;
}

static void broadcast_heartbeat(struct raft *r, uint64_t ctx)
{
    for (unsigned i = 0; i < r->cfg.n_peers; i++)
        if (i != r->self_slot)
            send_heartbeat(r, i, ctx);
}

static int read_index_confirm(struct raft *r, uint64_t ctx)
{
    if (r->cfg.n_peers == 1) {
        struct raft_read_state *s = raft_vec_push(&r->reads_ready,
                                                  sizeof(*s));
        if (s == NULL)
            return RAFT_ERR_NOMEM;
        s->ctx = ctx;
        s->index = r->log.committed;
        return RAFT_OK;
    }
    struct raft_pending_read *p = raft_vec_push(&r->reads_pending,
                                                sizeof(*p));
    if (p == NULL)
        return RAFT_ERR_NOMEM;
    p->ctx = ctx;
    p->seq = ++r->read_seq;
    p->index = r->log.committed;
    p->acks = 1u << r->self_slot;
    broadcast_heartbeat(r, p->seq);
    return RAFT_OK;
}

static void reads_on_first_commit(struct raft *r)
{
    if (r->reads_waiting.n == 0 || !committed_in_current_term(r))
        return;
    uint64_t *wait = r->reads_waiting.p;
    size_t n = r->reads_waiting.n;
    r->reads_waiting.n = 0;
    for (size_t i = 0; i < n; i++)
        if (read_index_confirm(r, wait[i]) != RAFT_OK) {
            struct raft_read_fail *f = raft_vec_push(&r->reads_failed,
                                                     sizeof(*f));
            if (f != NULL)
                f->ctx = wait[i];
        }
}

/* ---- role changes ------------------------------------------------------- */

static void reset(struct raft *r, raft_term term)
{
    if (r->term != term) {
        r->term = term;
        r->vote = RAFT_NONE;
    }
    r->leader = RAFT_NONE;
    r->elapsed = 0;
    r->heartbeat_elapsed = 0;
    reset_randomized_timeout(r);
    r->transferee = RAFT_NONE;
    r->transfer_elapsed = 0;
    r->votes_granted = 0;
    r->votes_rejected = 0;
    r->uncommitted_bytes = 0;
    raft_index last = raft_log_last(&r->log);
    for (unsigned i = 0; i < r->cfg.n_peers; i++) {
        raft_progress_reset(&r->prs[i], last + 1);
        if (i == r->self_slot)
            r->prs[i].match = r->log.unstable - 1;
    }
    reads_fail_all(r);
}

static void become_follower(struct raft *r, raft_term term, raft_id leader)
{
    reset(r, term);
    r->role = RAFT_FOLLOWER;
    r->leader = leader;
}

static void become_pre_candidate(struct raft *r)
{
    /* Pre-vote changes neither term nor vote: a node that cannot win does
     * not disturb the cluster (thesis §9.6). */
    r->role = RAFT_PRE_CANDIDATE;
    r->leader = RAFT_NONE;
    r->votes_granted = 0;
    r->votes_rejected = 0;
    r->elapsed = 0;
    reset_randomized_timeout(r);
}

static void become_candidate(struct raft *r)
{
    reset(r, r->term + 1);
    r->vote = r->cfg.id;
    r->role = RAFT_CANDIDATE;
}

static int append_local(struct raft *r, uint8_t type, const void *data,
                        size_t len, raft_index *index)
{
    struct raft_entry e = {
        .term = r->term,
        .index = raft_log_last(&r->log) + 1,
        .type = type,
        .len = (uint32_t)len,
        .data = data,
    };
    int rv = raft_log_append(&r->log, &e, 1);
    if (rv != RAFT_OK)
        return rv;
    r->uncommitted_bytes += len;
    if (index != NULL)
        *index = e.index;
    return RAFT_OK;
}

static void broadcast_append(struct raft *r, bool send_empty);

static void become_leader(struct raft *r)
{
    reset(r, r->term);
    r->role = RAFT_LEADER;
    r->leader = r->cfg.id;
    for (unsigned i = 0; i < r->cfg.n_peers; i++)
        r->prs[i].recent_active = true;
    /* The no-op lets the leader commit entries of earlier terms through an
     * entry of its own term (figure 8) and serve reads soon. */
    if (append_local(r, RAFT_ENTRY_NOOP, r->cfg.noop_data, r->cfg.noop_len,
                     NULL) != RAFT_OK) {
        become_follower(r, r->term, RAFT_NONE);
        return;
    }
    broadcast_append(r, true);
}

static void campaign(struct raft *r, bool pre, bool transfer)
{
    if (pre) {
        become_pre_candidate(r);
    } else {
        become_candidate(r);
    }
    raft_term term = pre ? r->term + 1 : r->term;
    r->votes_granted = 1u << r->self_slot;
    if (popcount32(r->votes_granted) >= raft_quorum(r)) {
        if (pre)
            campaign(r, false, false);
        else
            become_leader(r);
        return;
    }
    for (unsigned i = 0; i < r->cfg.n_peers; i++) {
        if (i == r->self_slot)
            continue;
        struct raft_msg *m = new_msg(r, pre ? RAFT_MSG_PREVOTE : RAFT_MSG_VOTE,
                                     r->cfg.peers[i]);
        if (m == NULL)
            return;
        m->term = term;
        m->index = raft_log_last(&r->log);
        m->log_term = raft_log_last_term(&r->log);
        m->context = transfer ? RAFT_CTX_TRANSFER : 0;
    }
}

static void start_election(struct raft *r, bool transfer)
{
    if (r->role == RAFT_LEADER)
        return;
    campaign(r, r->cfg.pre_vote && !transfer, transfer);
}

/* ---- replication -------------------------------------------------------- */

static void send_snapshot(struct raft *r, struct raft_progress *pr)
{
    if (!pr->recent_active)
        return; /* do not stream a snapshot to a node we cannot reach */
    struct raft_msg *m = new_msg(r, RAFT_MSG_SNAPSHOT, pr->id);
    if (m == NULL)
        return;
    m->snapshot = r->log.snap;
    m->commit = r->log.committed;
    raft_progress_become_snapshot(pr, r->log.snap.index);
}

/* Send the next APPEND to one follower.  Returns true when it sent one that
 * carried entries (so the caller may pipeline another). */
static bool send_append(struct raft *r, unsigned slot, bool send_empty)
{
    struct raft_progress *pr = &r->prs[slot];
    unsigned max = r->cfg.max_inflight;
    if (raft_progress_paused(pr, max))
        return false;
    raft_index prev = pr->next - 1;
    raft_term prev_term;
    int rv = raft_log_term(&r->log, prev, &prev_term);
    if (rv == RAFT_ERR_COMPACTED) {
        send_snapshot(r, pr);
        return false;
    }
    if (rv != RAFT_OK)
        return false;
    raft_index last = raft_log_last(&r->log);
    struct raft_entry_sink sink = {.arena = &r->arena};
    if (pr->next <= last) {
        rv = raft_log_entries(&r->log, pr->next, last + 1,
                              r->cfg.max_msg_bytes, &sink);
        if (rv == RAFT_ERR_COMPACTED) {
            send_snapshot(r, pr);
            return false;
        }
        if (rv != RAFT_OK)
            return false;
    }
    if (sink.n == 0 && !send_empty)
        return false;
    struct raft_msg *m = new_msg(r, RAFT_MSG_APPEND, pr->id);
    if (m == NULL)
        return false;
    m->index = prev;
    m->log_term = prev_term;
    m->commit = r->log.committed;
    m->entries = sink.ents;
    m->n_entries = (uint32_t)sink.n;
    raft_progress_sent(pr, prev + sink.n, (unsigned)sink.n, max);
    return sink.n > 0;
}

static void send_append_all(struct raft *r, unsigned slot)
{
    /* Pipeline: keep sending while the window and the log allow. */
    while (send_append(r, slot, false))
        ;
}

static void broadcast_append(struct raft *r, bool send_empty)
{
    for (unsigned i = 0; i < r->cfg.n_peers; i++) {
        if (i == r->self_slot)
            continue;
        if (!send_append(r, i, send_empty))
            continue;
        send_append_all(r, i);
    }
}

static int cmp_index_desc(const void *a, const void *b)
{
    raft_index x = *(const raft_index *)a, y = *(const raft_index *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

static void commit_to(struct raft *r, raft_index index)
{
    if (index <= r->log.committed)
        return;
    if (r->role == RAFT_LEADER && r->log.n_win > 0) {
        /* Account what is no longer uncommitted (proposal flow control). */
        for (raft_index i = r->log.committed + 1; i <= index; i++) {
            if (i < r->log.win_first)
                continue;
            size_t len = r->log.win[i - r->log.win_first].len;
            r->uncommitted_bytes -= len < r->uncommitted_bytes
                                        ? len : r->uncommitted_bytes;
        }
    }
    r->log.committed = index;
}

/* Commit the highest index held by a quorum — but only an entry of the
 * current term (Raft §5.4.2, figure 8): earlier entries get committed
 * indirectly through it, never by counting their replicas. */
static bool maybe_commit(struct raft *r)
{
    raft_index m[RAFT_MAX_NODES];
    for (unsigned i = 0; i < r->cfg.n_peers; i++)
        m[i] = r->prs[i].match;
    qsort(m, r->cfg.n_peers, sizeof(m[0]), cmp_index_desc);
    raft_index q = m[raft_quorum(r) - 1];
    if (q <= r->log.committed)
        return false;
    raft_term t;
    if (raft_log_term(&r->log, q, &t) != RAFT_OK || t != r->term)
        return false;
    commit_to(r, q);
    return true;
}

void raft_maybe_commit_and_broadcast(struct raft *r)
{
    if (r->role != RAFT_LEADER)
        return;
    if (maybe_commit(r)) {
        reads_on_first_commit(r);
        broadcast_append(r, true);
    }
}

void raft_flush_proposals(struct raft *r)
{
    if (!r->pending_bcast)
        return;
    r->pending_bcast = false;
    if (r->role == RAFT_LEADER)
        broadcast_append(r, false);
}

/* ---- message handlers --------------------------------------------------- */

static void respond(struct raft *r, const struct raft_msg *req, uint8_t type,
                    raft_index index, bool reject)
{
    struct raft_msg *m = new_msg(r, type, req->from);
    if (m == NULL)
        return;
    m->index = index;
    m->reject = reject;
}

static void handle_append(struct raft *r, const struct raft_msg *m)
{
    if (m->index < r->log.committed) {
        respond(r, m, RAFT_MSG_APPEND_RESP, r->log.committed, false);
        return;
    }
    if (!raft_log_match(&r->log, m->index, m->log_term)) {
        /* Fast backtracking: point the leader at the last index whose term
         * is <= the term it offered, skipping a whole divergent term. */
        raft_index hint = raft_log_find_conflict_by_term(
            &r->log, m->index, m->log_term);
        raft_term ht = 0;
        raft_log_term(&r->log, hint, &ht);
        struct raft_msg *resp = new_msg(r, RAFT_MSG_APPEND_RESP, m->from);
        if (resp == NULL)
            return;
        resp->index = m->index;
        resp->reject = true;
        resp->reject_hint = hint;
        resp->hint_term = ht;
        return;
    }
    raft_index last_new = m->index + m->n_entries;
    raft_index ci = raft_log_find_conflict(&r->log, m->entries, m->n_entries);
    if (ci != 0) {
        if (ci <= r->log.committed)
            return; /* a leader never rewrites committed entries: drop */
        const struct raft_entry *from = &m->entries[ci - (m->index + 1)];
        if (raft_log_append(&r->log, from, last_new - ci + 1) != RAFT_OK)
            return; /* no answer: the leader retries */
    }
    commit_to(r, m->commit < last_new ? m->commit : last_new);
    respond(r, m, RAFT_MSG_APPEND_RESP, last_new, false);
}

static void handle_heartbeat(struct raft *r, const struct raft_msg *m)
{
    raft_index last = raft_log_last(&r->log);
    commit_to(r, m->commit < last ? m->commit : last);
    struct raft_msg *resp = new_msg(r, RAFT_MSG_HEARTBEAT_RESP, m->from);
    if (resp != NULL)
        resp->context = m->context;
}

static void handle_snapshot(struct raft *r, const struct raft_msg *m)
{
    const struct raft_snapshot_meta *s = &m->snapshot;
    if (s->index <= r->log.committed) {
        respond(r, m, RAFT_MSG_APPEND_RESP, r->log.committed, false);
        return;
    }
    if (raft_log_match(&r->log, s->index, s->term)) {
        /* We already hold everything the snapshot covers.  Only that much
         * is known to match the leader's log: the entries after it were
         * never compared with the leader's, so acknowledging them (our last
         * index) would let the leader count them as replicated here and
         * tell us to commit entries of an older term it does not have. */
        commit_to(r, s->index);
        respond(r, m, RAFT_MSG_APPEND_RESP, r->log.committed, false);
        return;
    }
    raft_log_restore(&r->log, s);
    r->ready_snapshot = true;
    r->ready_snap = *s;
    respond(r, m, RAFT_MSG_APPEND_RESP, s->index, false);
}

static void handle_vote(struct raft *r, const struct raft_msg *m)
{
    bool pre = m->type == RAFT_MSG_PREVOTE;
    bool can_vote = r->vote == m->from ||
                    (r->vote == RAFT_NONE && r->leader == RAFT_NONE) ||
                    (pre && m->term > r->term);
    uint8_t rtype = pre ? RAFT_MSG_PREVOTE_RESP : RAFT_MSG_VOTE_RESP;
    struct raft_msg *resp;
    if (can_vote && raft_log_up_to_date(&r->log, m->index, m->log_term)) {
        resp = new_msg(r, rtype, m->from);
        if (resp == NULL)
            return;
        /* A pre-vote answer carries the term it was asked about so the
         * pre-candidate can tell it from a stale answer. */
        resp->term = m->term;
        if (!pre) {
            r->vote = m->from;
            r->elapsed = 0;
        }
    } else {
        resp = new_msg(r, rtype, m->from);
        if (resp == NULL)
            return;
        resp->reject = true;
    }
}

static void handle_vote_resp(struct raft *r, const struct raft_msg *m)
{
    int s = slot_of(r, m->from);
    bool pre = m->type == RAFT_MSG_PREVOTE_RESP;
    if (s < 0 || (pre && r->role != RAFT_PRE_CANDIDATE) ||
        (!pre && r->role != RAFT_CANDIDATE))
        return;
    if (m->reject)
        r->votes_rejected |= 1u << s;
    else
        r->votes_granted |= 1u << s;
    if (popcount32(r->votes_granted) >= raft_quorum(r)) {
        if (pre)
            campaign(r, false, false);
        else
            become_leader(r);
    } else if (popcount32(r->votes_rejected) >= raft_quorum(r)) {
        become_follower(r, r->term, RAFT_NONE);
    }
}

static void maybe_send_timeout_now(struct raft *r, unsigned slot)
{
    struct raft_progress *pr = &r->prs[slot];
    if (r->transferee == pr->id && pr->match == raft_log_last(&r->log))
        new_msg(r, RAFT_MSG_TIMEOUT_NOW, pr->id);
}

static void handle_append_resp(struct raft *r, unsigned slot,
                               const struct raft_msg *m)
{
    struct raft_progress *pr = &r->prs[slot];
    /* an acknowledgement of entries this leader does not have comes from a
     * confused (or lying) peer: counted, it would commit entries only this
     * leader holds */
    if (!m->reject && m->index > raft_log_last(&r->log))
        return;
    pr->recent_active = true;
    if (m->reject) {
        raft_index hint = m->reject_hint;
        if (m->hint_term > 0)
            hint = raft_log_find_conflict_by_term(&r->log, m->reject_hint,
                                                  m->hint_term);
        if (raft_progress_maybe_decr(pr, m->index, hint)) {
            if (pr->state == RAFT_PR_REPLICATE)
                raft_progress_become_probe(pr);
            send_append(r, slot, true);
        }
        return;
    }
    bool probe_answered = pr->state == RAFT_PR_PROBE && m->index == pr->match;
    if (!raft_progress_maybe_update(pr, m->index) && !probe_answered)
        return; /* duplicate or stale acknowledgement */
    switch (pr->state) {
    case RAFT_PR_PROBE:
        raft_progress_become_replicate(pr);
        break;
    case RAFT_PR_SNAPSHOT:
        if (pr->match >= pr->pending_snapshot) {
            raft_progress_become_probe(pr);
            raft_progress_become_replicate(pr);
        }
        break;
    case RAFT_PR_REPLICATE:
        raft_progress_free_le(pr, m->index, r->cfg.max_inflight);
        break;
    }
    if (maybe_commit(r)) {
        reads_on_first_commit(r);
        broadcast_append(r, true);
    } else {
        send_append_all(r, slot);
    }
    maybe_send_timeout_now(r, slot);
}

static void handle_heartbeat_resp(struct raft *r, unsigned slot,
                                  const struct raft_msg *m)
{
    struct raft_progress *pr = &r->prs[slot];
    pr->recent_active = true;
    pr->probe_sent = false;
    if (pr->state == RAFT_PR_REPLICATE &&
        pr->infl_count >= r->cfg.max_inflight) {
        /* Free one slot so a pipeline whose acks were lost restarts. */
        pr->infl_start = (pr->infl_start + 1) % r->cfg.max_inflight;
        pr->infl_count--;
    }
    /* Send even an empty APPEND: if pipelined entries were lost (a
     * rejection arrived after a later ack and was rightly ignored), next
     * is past the last index and only a rejection of this one brings the
     * follower back to probing. */
    if (pr->match < raft_log_last(&r->log) && send_append(r, slot, true))
        send_append_all(r, slot);
    if (m->context == 0)
        return;
    struct raft_pending_read *pend = r->reads_pending.p;
    for (size_t i = 0; i < r->reads_pending.n; i++)
        if (pend[i].seq <= m->context)
            pend[i].acks |= 1u << slot;
    reads_release(r);
}

static void step_leader(struct raft *r, const struct raft_msg *m)
{
    int s = slot_of(r, m->from);
    if (s < 0 || (unsigned)s == r->self_slot)
        return;
    switch (m->type) {
    case RAFT_MSG_APPEND_RESP:
        handle_append_resp(r, (unsigned)s, m);
        break;
    case RAFT_MSG_HEARTBEAT_RESP:
        handle_heartbeat_resp(r, (unsigned)s, m);
        break;
    case RAFT_MSG_VOTE:
    case RAFT_MSG_PREVOTE:
        handle_vote(r, m);
        break;
    default:
        break;
    }
}

static void step_follower(struct raft *r, const struct raft_msg *m)
{
    switch (m->type) {
    case RAFT_MSG_APPEND:
        r->elapsed = 0;
        r->leader = m->from;
        handle_append(r, m);
        break;
    case RAFT_MSG_HEARTBEAT:
        r->elapsed = 0;
        r->leader = m->from;
        handle_heartbeat(r, m);
        break;
    case RAFT_MSG_SNAPSHOT:
        r->elapsed = 0;
        r->leader = m->from;
        handle_snapshot(r, m);
        break;
    case RAFT_MSG_TIMEOUT_NOW:
        start_election(r, true);
        break;
    case RAFT_MSG_VOTE:
    case RAFT_MSG_PREVOTE:
        handle_vote(r, m);
        break;
    default:
        break;
    }
}

static void step_candidate(struct raft *r, const struct raft_msg *m)
{
    switch (m->type) {
    case RAFT_MSG_APPEND:
    case RAFT_MSG_HEARTBEAT:
    case RAFT_MSG_SNAPSHOT:
        /* A leader of our term exists. */
        become_follower(r, m->term, m->from);
        step_follower(r, m);
        break;
    case RAFT_MSG_VOTE_RESP:
    case RAFT_MSG_PREVOTE_RESP:
        handle_vote_resp(r, m);
        break;
    case RAFT_MSG_VOTE:
    case RAFT_MSG_PREVOTE:
        handle_vote(r, m);
        break;
    default:
        break;
    }
}

/* Terms above this are refused: no election ever gets near it, and a
 * term adopted near 2^64 would leave no room for a candidate's term + 1
 * (the shard could never elect a leader again, restarts included). */
#define TERM_MAX (UINT64_MAX / 2)

static bool valid_msg(const struct raft *r, const struct raft_msg *m)
{
    if (m->type == 0 || m->type >= RAFT_MSG__COUNT || m->to != r->cfg.id ||
        slot_of(r, m->from) < 0 || m->from == r->cfg.id ||
        m->term > TERM_MAX)
        return false;
    if (m->n_entries > 0 && (m->type != RAFT_MSG_APPEND || m->entries == NULL ||
                             m->index > UINT64_MAX - 1 - m->n_entries))
        return false;
    if (m->type == RAFT_MSG_APPEND && m->log_term > m->term)
        return false;
    for (uint32_t i = 0; i < m->n_entries; i++) {
        const struct raft_entry *e = &m->entries[i];
        if (e->index != m->index + 1 + i || e->term > m->term ||
            (e->type != RAFT_ENTRY_NORMAL && e->type != RAFT_ENTRY_NOOP) ||
            (e->len > 0 && e->data == NULL))
            return false;
        if (i == 0 ? e->term < m->log_term : e->term < m->entries[i - 1].term)
            return false;
    }
    return true;
}

static bool in_lease(const struct raft *r)
{
    return r->cfg.check_quorum && r->leader != RAFT_NONE &&
           r->elapsed < r->cfg.election_tick;
}

int raft_step(struct raft *r, const struct raft_msg *m)
{
    if (r->ready_taken)
        return RAFT_ERR_INVALID;
    if (!valid_msg(r, m))
        return RAFT_ERR_INVALID;

    if (m->term > r->term) {
        bool is_vote = m->type == RAFT_MSG_VOTE || m->type == RAFT_MSG_PREVOTE;
        if (is_vote && m->context != RAFT_CTX_TRANSFER && in_lease(r))
            return RAFT_OK; /* a leader is alive: ignore the disruptor */
        if (m->type == RAFT_MSG_PREVOTE ||
            (m->type == RAFT_MSG_PREVOTE_RESP && !m->reject)) {
            /* pre-vote traffic never moves terms */
        } else {
            bool from_leader = m->type == RAFT_MSG_APPEND ||
                               m->type == RAFT_MSG_HEARTBEAT ||
                               m->type == RAFT_MSG_SNAPSHOT;
            become_follower(r, m->term, from_leader ? m->from : RAFT_NONE);
        }
    } else if (m->term < r->term) {
        if ((r->cfg.check_quorum || r->cfg.pre_vote) &&
            (m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT)) {
            /* Tell a stale leader about the new term, or it would never
             * learn it while our pre-votes keep failing. */
            new_msg(r, RAFT_MSG_APPEND_RESP, m->from);
        } else if (m->type == RAFT_MSG_PREVOTE) {
            struct raft_msg *resp = new_msg(r, RAFT_MSG_PREVOTE_RESP, m->from);
            if (resp != NULL)
                resp->reject = true;
        }
        return RAFT_OK;
    }

    switch (r->role) {
    case RAFT_LEADER:
        step_leader(r, m);
        break;
    case RAFT_FOLLOWER:
        step_follower(r, m);
        break;
    case RAFT_PRE_CANDIDATE:
    case RAFT_CANDIDATE:
        step_candidate(r, m);
        break;
    }
    return RAFT_OK;
}

/* ---- ticks ---------------------------------------------------------------- */

static void check_quorum_now(struct raft *r)
{
    unsigned active = 0;
    for (unsigned i = 0; i < r->cfg.n_peers; i++) {
        if (i == r->self_slot || r->prs[i].recent_active)
            active++;
        if (i != r->self_slot)
            r->prs[i].recent_active = false;
    }
    if (active < raft_quorum(r))
        become_follower(r, r->term, RAFT_NONE);
}

int raft_tick(struct raft *r)
{
    if (r->ready_taken)
        return RAFT_ERR_INVALID;
    r->elapsed++;
    if (r->role != RAFT_LEADER) {
        if (past_election_timeout(r))
            start_election(r, false);
        return RAFT_OK;
    }
    r->heartbeat_elapsed++;
    if (r->transferee != RAFT_NONE &&
        ++r->transfer_elapsed >= r->cfg.election_tick) {
        r->transferee = RAFT_NONE; /* abandon a transfer that stalls */
        r->transfer_elapsed = 0;
    }
    if (r->elapsed >= r->cfg.election_tick) {
        r->elapsed = 0;
        if (r->cfg.check_quorum) {
            check_quorum_now(r);
            if (r->role != RAFT_LEADER)
                return RAFT_OK;
        }
    }
    if (r->heartbeat_elapsed >= r->cfg.heartbeat_tick) {
        r->heartbeat_elapsed = 0;
        broadcast_heartbeat(r, 0);
    }
    return RAFT_OK;
}

/* ---- local requests ------------------------------------------------------ */

int raft_propose(struct raft *r, const void *data, size_t len,
                 raft_index *index, raft_term *term)
{
    if (r->ready_taken || (len > 0 && data == NULL))
        return RAFT_ERR_INVALID;
    if (r->role != RAFT_LEADER)
        return RAFT_ERR_NOT_LEADER;
    if (r->transferee != RAFT_NONE)
        return RAFT_ERR_TRANSFERRING;
    if (len > r->cfg.max_entry_bytes)
        return RAFT_ERR_TOO_BIG;
    if (r->cfg.max_uncommitted_bytes > 0 && r->uncommitted_bytes > 0 &&
        r->uncommitted_bytes + len > r->cfg.max_uncommitted_bytes)
        return RAFT_ERR_BUSY;
    raft_index i;
    int rv = append_local(r, RAFT_ENTRY_NORMAL, data, len, &i);
    if (rv != RAFT_OK)
        return rv;
    if (index != NULL)
        *index = i;
    if (term != NULL)
        *term = r->term;
    /* Replicate when the ready batch is built, so every proposal of one
     * event-loop turn travels in the same APPEND (batching). */
    r->pending_bcast = true;
    return RAFT_OK;
}

int raft_read_index(struct raft *r, uint64_t ctx)
{
    if (r->ready_taken || ctx == 0)
        return RAFT_ERR_INVALID;
    if (r->role != RAFT_LEADER)
        return RAFT_ERR_NOT_LEADER;
    if (!committed_in_current_term(r)) {
        /* Our commit index is only known to be current once our no-op
         * committed; hold the read until then. */
        uint64_t *w = raft_vec_push(&r->reads_waiting, sizeof(*w));
        if (w == NULL)
            return RAFT_ERR_NOMEM;
        *w = ctx;
        return RAFT_OK;
    }
    return read_index_confirm(r, ctx);
}

int raft_transfer_leader(struct raft *r, raft_id to)
{
    if (r->ready_taken)
        return RAFT_ERR_INVALID;
    if (r->role != RAFT_LEADER)
        return RAFT_ERR_NOT_LEADER;
    int best = -1;
    if (to == RAFT_NONE) {
        for (unsigned i = 0; i < r->cfg.n_peers; i++)
            if (i != r->self_slot &&
                (best < 0 || r->prs[i].match > r->prs[best].match))
                best = (int)i;
    } else {
        best = slot_of(r, to);
    }
    if (best < 0 || (unsigned)best == r->self_slot)
        return RAFT_ERR_INVALID;
    r->transferee = r->cfg.peers[best];
    r->transfer_elapsed = 0;
    if (r->prs[best].match == raft_log_last(&r->log))
        maybe_send_timeout_now(r, (unsigned)best);
    else
        send_append_all(r, (unsigned)best);
    return RAFT_OK;
}

int raft_campaign(struct raft *r)
{
    if (r->ready_taken)
        return RAFT_ERR_INVALID;
    start_election(r, false);
    return RAFT_OK;
}

void raft_report_snapshot(struct raft *r, raft_id peer, bool ok)
{
    int s = slot_of(r, peer);
    if (r->role != RAFT_LEADER || s < 0 ||
        r->prs[s].state != RAFT_PR_SNAPSHOT)
        return;
    struct raft_progress *pr = &r->prs[s];
    if (!ok)
        pr->pending_snapshot = 0;
    raft_progress_become_probe(pr);
    /* Wait for the follower's answer before probing again. */
    pr->probe_sent = true;
}

void raft_report_unreachable(struct raft *r, raft_id peer)
{
    int s = slot_of(r, peer);
    if (r->role != RAFT_LEADER || s < 0)
        return;
    if (r->prs[s].state == RAFT_PR_REPLICATE)
        raft_progress_become_probe(&r->prs[s]);
}

void raft_compacted(struct raft *r, const struct raft_snapshot_meta *meta)
{
    raft_log_compacted(&r->log, meta);
}

/* ---- lifecycle ------------------------------------------------------------ */

struct raft *raft_new(const struct raft_config *c, enum raft_err *err)
{
    enum raft_err e = RAFT_ERR_INVALID;
    struct raft *r = NULL;
    if (c == NULL || c->storage == NULL || c->id == RAFT_NONE ||
        c->n_peers == 0 || c->n_peers > RAFT_MAX_NODES ||
        c->election_tick < 2 || c->heartbeat_tick == 0 ||
        c->heartbeat_tick >= c->election_tick || c->max_inflight == 0 ||
        c->max_inflight > RAFT_MAX_INFLIGHT || c->max_msg_bytes == 0 ||
        c->noop_len > c->max_entry_bytes ||
        (c->noop_len > 0 && c->noop_data == NULL))
        goto fail;
    r = calloc(1, sizeof(*r));
    if (r == NULL) {
        e = RAFT_ERR_NOMEM;
        goto fail;
    }
    r->cfg = *c;
    int self = -1;
    for (unsigned i = 0; i < c->n_peers; i++) {
        if (c->peers[i] == RAFT_NONE)
            goto fail;
        for (unsigned j = 0; j < i; j++)
            if (c->peers[j] == c->peers[i])
                goto fail;
        if (c->peers[i] == c->id)
            self = (int)i;
    }
    if (self < 0)
        goto fail;
    r->self_slot = (unsigned)self;
    r->rng = c->seed ^ ((uint64_t)c->id << 32);
    for (unsigned i = 0; i < c->n_peers; i++) {
        if (raft_progress_init(&r->prs[i], c->peers[i], c->max_inflight)) {
            e = RAFT_ERR_NOMEM;
            goto fail;
        }
    }
    int rv = raft_log_init(&r->log, c->storage, c->storage_ctx, c->applied);
    if (rv != RAFT_OK) {
        e = (enum raft_err)rv;
        goto fail;
    }
    struct raft_hard_state hs;
    struct raft_snapshot_meta snap;
    if (c->storage->initial_state(c->storage_ctx, &hs, &snap) != RAFT_OK) {
        e = RAFT_ERR_STORAGE;
        goto fail;
    }
    if (hs.vote != RAFT_NONE && slot_of(r, hs.vote) < 0)
        goto fail;
    become_follower(r, hs.term, RAFT_NONE);
    r->vote = hs.vote;
    r->prev_hs.term = r->term;
    r->prev_hs.vote = r->vote;
    r->prev_hs.commit = r->log.committed;
    *err = RAFT_OK;
    return r;
fail:
    if (r != NULL)
        raft_free(r);
    *err = e;
    return NULL;
}

void raft_free(struct raft *r)
{
    if (r == NULL)
        return;
    raft_log_free(&r->log);
    for (unsigned i = 0; i < RAFT_MAX_NODES; i++)
        raft_progress_free(&r->prs[i]);
    raft_vec_free(&r->reads_pending);
    raft_vec_free(&r->reads_waiting);
    raft_vec_free(&r->reads_ready);
    raft_vec_free(&r->reads_failed);
    raft_vec_free(&r->msgs);
    raft_arena_free(&r->arena);
    free(r);
}

void raft_status(const struct raft *r, struct raft_status *out)
{
    memset(out, 0, sizeof(*out));
    out->id = r->cfg.id;
    out->role = r->role;
    out->term = r->term;
    out->vote = r->vote;
    out->leader = r->leader;
    out->commit = r->log.committed;
    out->applied = r->log.applied;
    out->last_index = raft_log_last(&r->log);
    out->transferee = r->transferee;
    out->snapshot_pending = r->ready_snapshot;
    out->n_peers = r->cfg.n_peers;
    for (unsigned i = 0; i < r->cfg.n_peers; i++) {
        const struct raft_progress *pr = &r->prs[i];
        out->peers[i].id = pr->id;
        if (r->role != RAFT_LEADER)
            continue;
        out->peers[i].match = pr->match;
        out->peers[i].next = pr->next;
        out->peers[i].recent_active = pr->recent_active;
        out->peers[i].snapshotting = pr->state == RAFT_PR_SNAPSHOT;
    }
}

/* sim_cluster.c — simulated nodes driving the Raft core (sim_cluster.h). */
#include "sim_cluster.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "sim_trace.h"
#include "sim_workload.h"

/* Where a crash may interrupt the handling of a ready batch. */
enum crash_point {
    CP_NONE = 0,
    CP_TAKEN,          /* ready taken, nothing done */
    CP_EARLY_SENT,     /* leader messages sent early, nothing written */
    CP_SNAP_INSTALLED, /* snapshot written, entries + hard state not */
    CP_PERSISTED,      /* entries + hard state synced, messages not sent */
    CP_MID_APPLY,      /* some committed entries applied */
    CP_APPLIED,        /* everything done but raft_advance() */
    CP__COUNT
};

#define LOG_MATCH_WINDOW 8

static struct raft_config node_config(const struct sim *s,
                                      struct sim_node *n);
static void drop_event(struct sim_event *ev);
static void send_msg(struct sim *s, struct sim_node *n,
                     const struct raft_msg *m);
static int handle_ready(struct sim *s, struct sim_node *n);
static int persist(struct sim *s, struct sim_node *n,
                   const struct raft_ready *rd);
static int install_snapshot(struct sim *s, struct sim_node *n,
                            const struct raft_snapshot_meta *meta);
static int apply_entry(struct sim *s, struct sim_node *n,
                       const struct raft_entry *e);
static int take_reads(struct sim *s, struct sim_node *n,
                      const struct raft_ready *rd);
static void serve_reads(struct sim *s, struct sim_node *n);
static void maybe_compact(struct sim *s, struct sim_node *n);
static void end_props_upto(struct sim *s, struct sim_node *n,
                           raft_index upto);
static bool leader_only(uint8_t type);
static int check_durable(struct sim *s, const struct sim_node *n,
                         const struct raft_msg *m);
static int check_commit_quorum(struct sim *s, const struct sim_node *n,
                               raft_term term, raft_index commit);

bool sim_failed(const struct sim *s)
{
    return s->inv.failed;
}

bool sim_node_up(const struct sim *s, raft_id id)
{
    return id >= 1 && id <= s->p.n_nodes && s->nodes[id].r != NULL;
}

/* What every simulated leader puts in its no-op (raft_config.noop_data),
 * as the agent puts its shard's identity: followers check it arrives
 * whole, through crashes, truncations and snapshots. */
static const char sim_noop_data[] = "sim shard identity";

static struct raft_config node_config(const struct sim *s,
                                      struct sim_node *n)
{
    struct raft_config c;
    raft_config_defaults(&c);
    c.id = n->id;
    for (unsigned i = 0; i < s->p.n_nodes; i++)
        c.peers[i] = (raft_id)(i + 1);
    c.n_peers = s->p.n_nodes;
    c.election_tick = s->p.election_tick;
    c.heartbeat_tick = s->p.heartbeat_tick;
    c.max_msg_bytes = s->p.max_msg_bytes;
    c.max_inflight = s->p.max_inflight;
    c.pre_vote = s->p.pre_vote;
    c.check_quorum = s->p.check_quorum;
    c.seed = sim_mix64(s->seed ^ sim_mix64(((uint64_t)n->id << 32) |
                                           n->incarnation));
    c.applied = n->disk.applied;
    c.storage = &sim_disk_storage;
    c.storage_ctx = &n->disk;
    c.noop_data = sim_noop_data;
    c.noop_len = sizeof(sim_noop_data) - 1;
    return c;
}

int sim_init(struct sim *s, uint64_t seed, const struct sim_params *p,
             bool trace, bool manual)
{
    memset(s, 0, sizeof(*s));
    s->seed = seed;
    s->p = *p;
    s->trace = trace;
    s->manual = manual;
    s->next_value = 1;
    sim_rng_seed(&s->rng, sim_mix64(seed ^ 0x5eed5eed5eedULL));
    sim_queue_init(&s->q);
    sim_net_init(&s->net, p->n_nodes);
    sim_inv_init(&s->inv);
    sim_history_init(&s->hist);
    if (p->n_nodes < 1 || p->n_nodes > RAFT_MAX_NODES)
        return sim_inv_fail(&s->inv, "bad node count %u", p->n_nodes);
    for (raft_id id = 1; id <= p->n_nodes; id++) {
        struct sim_node *n = &s->nodes[id];
        n->id = id;
        sim_disk_init(&n->disk);
        n->tick_phase = sim_rng_below(&s->rng, SIM_TIME_PER_TICK);
        /* Clocks run at different rates: safety must not depend on time,
         * so a leader lease that assumed equal clocks would show. */
        n->tick_period = SIM_TIME_PER_TICK;
        if (!manual && sim_rng_chance(&s->rng, 500))
            n->tick_period = sim_rng_range(&s->rng, SIM_TIME_PER_TICK * 6 / 10,
                                           SIM_TIME_PER_TICK * 14 / 10);
    }
    for (raft_id id = 1; id <= p->n_nodes && !sim_failed(s); id++)
        sim_node_start(s, id);
    return sim_failed(s) ? -1 : 0;
}

static void drop_event(struct sim_event *ev)
{
    sim_xfer_free(ev->xfer);
}

void sim_free(struct sim *s)
{
    for (raft_id id = 1; id <= s->p.n_nodes && id <= RAFT_MAX_NODES; id++) {
        struct sim_node *n = &s->nodes[id];
        if (n->r != NULL)
            raft_free(n->r);
        n->r = NULL;
        sim_disk_free(&n->disk);
        free(n->props);
        free(n->reads);
    }
    sim_queue_free(&s->q, drop_event);
    for (size_t i = 0; i < s->n_outbox; i++)
        sim_xfer_free(s->outbox[i]);
    free(s->outbox);
    sim_inv_free(&s->inv);
    sim_history_free(&s->hist);
}

void sim_schedule(struct sim *s, uint64_t delay, uint8_t type, raft_id node,
                  uint64_t aux, struct sim_xfer *x)
{
    struct sim_event ev = {
        .time = s->now + delay, .type = type, .node = node, .aux = aux,
        .xfer = x,
    };
    if (sim_queue_push(&s->q, &ev) != 0) {
        sim_xfer_free(x);
        sim_inv_fail(&s->inv, "out of memory scheduling an event");
    }
}

void sim_node_start(struct sim *s, raft_id id)
{
    struct sim_node *n = &s->nodes[id];
    if (n->r != NULL)
        return;
    n->incarnation++;
    struct raft_config c = node_config(s, n);
    enum raft_err err = RAFT_OK;
    n->r = raft_new(&c, &err);
    if (n->r == NULL) {
        sim_inv_fail(&s->inv,
                     "raft_new failed for n%u (incarnation %u, term %" PRIu64
                     ", commit %" PRIu64 ", applied %" PRIu64
                     ", log %" PRIu64 "..%" PRIu64 "): %s",
                     id, n->incarnation, n->disk.hs.term, n->disk.hs.commit,
                     n->disk.applied, sim_disk_first_index(&n->disk),
                     sim_disk_last_index(&n->disk), raft_strerror(err));
        return;
    }
    struct raft_status st;
    raft_status(n->r, &st);
    n->role = st.role;
    n->term = st.term;
    n->commit = st.commit;
    n->has_snap_in = false;
    SIM_TRACE(s, "n%u start (incarnation %u) term %" PRIu64 " commit %"
              PRIu64 " applied %" PRIu64 " log %" PRIu64 "..%" PRIu64,
              id, n->incarnation, st.term, st.commit, n->disk.applied,
              sim_disk_first_index(&n->disk), sim_disk_last_index(&n->disk));
}

void sim_node_crash(struct sim *s, raft_id id, const char *why)
{
    struct sim_node *n = &s->nodes[id];
    if (n->r == NULL)
        return;
    raft_free(n->r);
    n->r = NULL;
    s->stats.crashes++;
    SIM_TRACE(s, "n%u CRASH (%s)", id, why);
    /* Pending work ends with the volatile state; the outcome callbacks may
     * schedule client events but never touch this node. */
    size_t n_props = n->n_props, n_reads = n->n_reads;
    n->n_props = 0;
    n->n_reads = 0;
    for (size_t i = 0; i < n_props; i++)
        sim_op_unknown(s, n->props[i].op);
    for (size_t i = 0; i < n_reads; i++)
        sim_op_dropped(s, n->reads[i].op);
    n->has_snap_in = false;
    n->role = RAFT_FOLLOWER;
    n->commit = 0;
    if (!s->manual) {
        /* A quick restart lets the node rejoin the term it crashed in. */
        uint64_t ticks = sim_rng_chance(&s->rng, 400)
                             ? sim_rng_range(&s->rng, 0, 2)
                             : sim_rng_range(&s->rng, 3, 40);
        sim_schedule(s, SIM_TIME_PER_TICK * ticks + 1, SIM_EV_RESTART, id, 0,
                     NULL);
    }
}

static bool leader_only(uint8_t type)
{
    return type == RAFT_MSG_APPEND || type == RAFT_MSG_HEARTBEAT ||
           type == RAFT_MSG_SNAPSHOT || type == RAFT_MSG_TIMEOUT_NOW;
}

/* A message may only promise what the sender's disk already holds: its
 * term, its vote (asked for or granted), the entries it acknowledges.
 * Otherwise a crash right after sending makes the promise a lie. */
static int check_durable(struct sim *s, const struct sim_node *n,
                         const struct raft_msg *m)
{
    const struct sim_disk *d = &n->disk;
    const char *type = raft_msg_type_name(m->type);
    if (m->type == RAFT_MSG_PREVOTE || m->type == RAFT_MSG_PREVOTE_RESP)
        return 0; /* pre-vote terms are hypothetical */
    if (m->term > d->hs.term)
        return sim_inv_fail(&s->inv, "durability: n%u sends %s in term %"
                            PRIu64 " while its stored term is %" PRIu64,
                            n->id, type, m->term, d->hs.term);
    if (m->type == RAFT_MSG_VOTE && d->hs.vote != n->id)
        return sim_inv_fail(&s->inv, "durability: n%u asks for votes in "
                            "term %" PRIu64 " before its own vote is stored "
                            "(stored vote n%u)", n->id, m->term, d->hs.vote);
    if (m->type == RAFT_MSG_VOTE_RESP && !m->reject &&
        (d->hs.term != m->term || d->hs.vote != m->to))
        return sim_inv_fail(&s->inv, "durability: n%u grants its vote to "
                            "n%u in term %" PRIu64 " before storing it "
                            "(stored term %" PRIu64 ", vote n%u)", n->id,
                            m->to, m->term, d->hs.term, d->hs.vote);
    raft_index held = sim_disk_last_index(d);
    if (m->type == RAFT_MSG_APPEND_RESP && !m->reject && m->index > held)
        return sim_inv_fail(&s->inv, "durability: n%u acknowledges index %"
                            PRIu64 " but its stored log ends at %" PRIu64,
                            n->id, m->index, held);
    return 0;
}

static void send_msg(struct sim *s, struct sim_node *n,
                     const struct raft_msg *m)
{
    char desc[160];
    if (m->from != n->id || m->to < 1 || m->to > s->p.n_nodes ||
        m->to == n->id || m->type < RAFT_MSG_APPEND ||
        m->type >= RAFT_MSG__COUNT) {
        sim_inv_fail(&s->inv, "n%u emitted a malformed message: type %u "
                     "from n%u to n%u", n->id, m->type, m->from, m->to);
        return;
    }
    if (check_durable(s, n, m) != 0)
        return;
    if (leader_only(m->type) &&
        sim_inv_leader(&s->inv, m->term, m->from,
                       raft_msg_type_name(m->type)) != 0)
        return;
    if (m->type == RAFT_MSG_VOTE_RESP && !m->reject &&
        sim_inv_vote(&s->inv, m->term, m->from, m->to) != 0)
        return;
    const struct sim_kv *kv = NULL;
    if (m->type == RAFT_MSG_SNAPSHOT) {
        if (m->snapshot.index != n->disk.snap.index ||
            m->snapshot.term != n->disk.snap.term) {
            sim_inv_fail(&s->inv,
                         "n%u sends snapshot %" PRIu64 "/%" PRIu64
                         " but its stored snapshot is %" PRIu64 "/%" PRIu64,
                         n->id, m->snapshot.index, m->snapshot.term,
                         n->disk.snap.index, n->disk.snap.term);
            return;
        }
        kv = &n->disk.snap_kv;
        s->stats.snapshots_sent++;
    }
    struct sim_xfer *x = sim_xfer_new(m, kv, n->incarnation);
    if (x == NULL) {
        sim_inv_fail(&s->inv, "out of memory copying a message");
        return;
    }
    if (s->trace)
        sim_msg_describe(m, desc, sizeof(desc));
    if (s->manual) {
        if (s->n_outbox == s->cap_outbox) {
            size_t cap = s->cap_outbox ? s->cap_outbox * 2 : 32;
            struct sim_xfer **p = realloc(s->outbox, cap * sizeof(*p));
            if (p == NULL) {
                sim_xfer_free(x);
                sim_inv_fail(&s->inv, "out of memory in the outbox");
                return;
            }
            s->outbox = p;
            s->cap_outbox = cap;
        }
        s->outbox[s->n_outbox++] = x;
        SIM_TRACE(s, "send %s", desc);
        return;
    }
    unsigned copies = sim_net_copies(&s->net, &s->rng, m->from, m->to);
    if (m->type == RAFT_MSG_SNAPSHOT) {
        /* Streaming a snapshot takes a while; one copy, or a failure the
         * transport notices some time later. */
        uint64_t delay = SIM_TIME_PER_TICK * sim_rng_range(&s->rng, 1, 5);
        SIM_TRACE(s, "send %s%s", desc, copies ? "" : " (will FAIL)");
        sim_schedule(s, delay, copies ? SIM_EV_MSG : SIM_EV_SNAP_FAIL,
                     m->to, 0, x);
        return;
    }
    if (copies == 0) {
        SIM_TRACE(s, "drop %s", desc);
        sim_xfer_free(x);
        return;
    }
    SIM_TRACE(s, "send %s%s", desc, copies > 1 ? " (duplicated)" : "");
    if (copies > 1) {
        struct sim_xfer *y = sim_xfer_new(m, NULL, n->incarnation);
        if (y == NULL) {
            sim_xfer_free(x);
            sim_inv_fail(&s->inv, "out of memory copying a message");
            return;
        }
        sim_schedule(s, sim_net_delay(&s->net, &s->rng), SIM_EV_MSG, m->to,
                     0, y);
    }
    sim_schedule(s, sim_net_delay(&s->net, &s->rng), SIM_EV_MSG, m->to, 0, x);
}

void sim_deliver(struct sim *s, struct sim_xfer *x)
{
    const struct raft_msg *m = x->m;
    struct sim_node *n = &s->nodes[m->to];
    char desc[160];
    if (s->trace)
        sim_msg_describe(m, desc, sizeof(desc));
    bool link = s->manual || sim_net_up(&s->net, m->from, m->to);
    if (n->r == NULL || !link) {
        SIM_TRACE(s, "lost %s (%s)", desc,
                  n->r == NULL ? "destination down" : "link cut");
        if (x->has_kv)
            sim_snapshot_failed(s, x);
        else
            sim_xfer_free(x);
        return;
    }
    SIM_TRACE(s, "deliver %s", desc);
    if (x->has_kv) {
        n->has_snap_in = true;
        n->snap_in_meta = m->snapshot;
        n->snap_in_kv = x->kv;
    }
    int rc = raft_step(n->r, m);
    if (rc != RAFT_OK) {
        sim_inv_fail(&s->inv, "raft_step(n%u, %s) failed: %s", m->to,
                     raft_msg_type_name(m->type),
                     raft_strerror((enum raft_err)rc));
        sim_xfer_free(x);
        return;
    }
    sim_node_process(s, m->to);
    if (x->has_kv) {
        struct sim_node *from = &s->nodes[m->from];
        if (from->r != NULL && from->incarnation == x->from_incarnation) {
            raft_report_snapshot(from->r, m->to, true);
            sim_node_process(s, m->from);
        }
    }
    sim_xfer_free(x);
}

void sim_snapshot_failed(struct sim *s, struct sim_xfer *x)
{
    const struct raft_msg *m = x->m;
    struct sim_node *from = &s->nodes[m->from];
    SIM_TRACE(s, "snapshot n%u->n%u FAILED", m->from, m->to);
    if (from->r != NULL && from->incarnation == x->from_incarnation) {
        raft_report_snapshot(from->r, m->to, false);
        sim_node_process(s, m->from);
    }
    sim_xfer_free(x);
}

void sim_node_process(struct sim *s, raft_id id)
{
    struct sim_node *n = &s->nodes[id];
    while (n->r != NULL && !sim_failed(s) && raft_has_ready(n->r)) {
        if (handle_ready(s, n) != 0)
            return;
        maybe_compact(s, n);
    }
}

/* Handle one ready batch in raft.h's order.  Returns 0, or -1 when the
 * node crashed on the way (by the crash model) or the run failed. */
static int handle_ready(struct sim *s, struct sim_node *n)
{
    const struct raft_ready *rd = raft_ready(n->r);
    if (rd == NULL)
        return sim_inv_fail(&s->inv, "n%u: raft_ready() returned NULL "
                            "while raft_has_ready() is true", n->id);
    enum crash_point cp = CP_NONE;
    size_t crash_after = 0;
    /* Batches that change the hard state (votes, terms) are where unsynced
     * state hurts most: crash inside them more often. */
    unsigned crash_pm = s->p.ready_crash_pm;
    if (rd->hard_state_changed && crash_pm > 0)
        crash_pm *= 10;
    if (s->faults_on && sim_rng_chance(&s->rng, crash_pm)) {
        cp = (enum crash_point)sim_rng_range(&s->rng, CP_TAKEN,
                                             CP__COUNT - 1);
        if (cp == CP_MID_APPLY)
            crash_after = (size_t)sim_rng_below(&s->rng, rd->n_committed);
    }
    bool early = !s->manual && sim_rng_chance(&s->rng, 500);

    if (cp == CP_TAKEN) {
        sim_node_crash(s, n->id, "ready taken, nothing written");
        return -1;
    }
    if (early)
        for (size_t i = 0; i < rd->n_msgs && !sim_failed(s); i++)
            if (raft_msg_may_send_early(&rd->msgs[i]))
                send_msg(s, n, &rd->msgs[i]);
    if (cp == CP_EARLY_SENT) {
        sim_node_crash(s, n->id, "early messages sent, nothing written");
        return -1;
    }
    if (rd->snapshot != NULL) {
        if (install_snapshot(s, n, rd->snapshot) != 0)
            return -1;
        if (cp == CP_SNAP_INSTALLED) {
            sim_node_crash(s, n->id, "snapshot installed, entries and "
                           "hard state not written");
            return -1;
        }
    }
    if (persist(s, n, rd) != 0)
        return -1;
    if (cp == CP_PERSISTED) {
        sim_node_crash(s, n->id, "entries and hard state synced, "
                       "messages not sent");
        return -1;
    }
    for (size_t i = 0; i < rd->n_msgs && !sim_failed(s); i++)
        if (!(early && raft_msg_may_send_early(&rd->msgs[i])))
            send_msg(s, n, &rd->msgs[i]);
    for (size_t i = 0; i < rd->n_committed && !sim_failed(s); i++) {
        if (cp == CP_MID_APPLY && i == crash_after) {
            sim_node_crash(s, n->id, "crash in the middle of applying");
            return -1;
        }
        if (apply_entry(s, n, &rd->committed[i]) != 0)
            return -1;
    }
    if (sim_failed(s) || take_reads(s, n, rd) != 0)
        return -1;
    serve_reads(s, n);
    if (cp == CP_APPLIED) {
        sim_node_crash(s, n->id, "ready handled, raft_advance not called");
        return -1;
    }
    int rc = raft_advance(n->r);
    if (rc != RAFT_OK)
        return sim_inv_fail(&s->inv, "raft_advance(n%u) failed: %s", n->id,
                            raft_strerror((enum raft_err)rc));
    return 0;
}

static int persist(struct sim *s, struct sim_node *n,
                   const struct raft_ready *rd)
{
    struct sim_disk *d = &n->disk;
    if (rd->n_entries > 0) {
        const struct raft_entry *e = rd->entries;
        struct raft_status st;
        raft_status(n->r, &st);
        if (st.role == RAFT_LEADER && e[0].index <= sim_disk_last_index(d))
            return sim_inv_fail(&s->inv,
                                "leader n%u (term %" PRIu64 ") overwrites "
                                "its own log from index %" PRIu64
                                " (last %" PRIu64 ")",
                                n->id, st.term, e[0].index,
                                sim_disk_last_index(d));
        if (sim_inv_append(&s->inv, n->id, d, e, rd->n_entries) != 0)
            return -1;
        enum sim_disk_err err = sim_disk_append(d, e, rd->n_entries);
        if (err != SIM_DISK_OK)
            return sim_inv_fail(&s->inv,
                                "n%u cannot persist entries %" PRIu64
                                "..%" PRIu64 " (log %" PRIu64 "..%" PRIu64
                                "): %s",
                                n->id, e[0].index,
                                e[rd->n_entries - 1].index,
                                sim_disk_first_index(d),
                                sim_disk_last_index(d),
                                sim_disk_strerror(err));
        SIM_TRACE(s, "n%u persist %" PRIu64 "..%" PRIu64 " (terms %" PRIu64
                  "..%" PRIu64 ")", n->id, e[0].index,
                  e[rd->n_entries - 1].index, e[0].term,
                  e[rd->n_entries - 1].term);
    }
    if (rd->hard_state_changed) {
        const struct raft_hard_state *hs = &rd->hard_state;
        if (hs->term < d->hs.term)
            return sim_inv_fail(&s->inv, "n%u persists term %" PRIu64
                                " below its stored term %" PRIu64,
                                n->id, hs->term, d->hs.term);
        if (hs->term == d->hs.term && d->hs.vote != RAFT_NONE &&
            hs->vote != d->hs.vote)
            return sim_inv_fail(&s->inv, "n%u changes its vote in term %"
                                PRIu64 " from n%u to n%u", n->id, hs->term,
                                d->hs.vote, hs->vote);
        if (hs->commit < d->hs.commit)
            return sim_inv_fail(&s->inv, "n%u persists commit %" PRIu64
                                " below its stored commit %" PRIu64,
                                n->id, hs->commit, d->hs.commit);
        d->hs = *hs;
    }
    raft_index last = sim_disk_last_index(d);
    if (d->hs.commit > last)
        return sim_inv_fail(&s->inv, "n%u's durable commit %" PRIu64
                            " is beyond its durable log (last %" PRIu64 ")",
                            n->id, d->hs.commit, last);
    if (rd->n_entries > 0)
        for (raft_id o = 1; o <= s->p.n_nodes; o++)
            if (o != n->id &&
                sim_inv_log_matching(&s->inv, n->id, d, o,
                                     &s->nodes[o].disk,
                                     LOG_MATCH_WINDOW) != 0)
                return -1;
    return 0;
}

static int install_snapshot(struct sim *s, struct sim_node *n,
                            const struct raft_snapshot_meta *meta)
{
    if (!n->has_snap_in || n->snap_in_meta.index != meta->index ||
        n->snap_in_meta.term != meta->term)
        return sim_inv_fail(&s->inv,
                            "n%u's ready installs snapshot %" PRIu64
                            "/%" PRIu64 " whose data the transport did not "
                            "deliver", n->id, meta->index, meta->term);
    if (meta->index <= n->disk.applied)
        return sim_inv_fail(&s->inv,
                            "n%u's ready installs snapshot %" PRIu64
                            " at or below its applied index %" PRIu64,
                            n->id, meta->index, n->disk.applied);
    if (sim_inv_snapshot(&s->inv, n->id, meta,
                         sim_kv_digest(&n->snap_in_kv)) != 0)
        return -1;
    end_props_upto(s, n, meta->index);
    sim_disk_install(&n->disk, meta, &n->snap_in_kv);
    n->has_snap_in = false;
    SIM_TRACE(s, "n%u install snapshot %" PRIu64 "/%" PRIu64, n->id,
              meta->index, meta->term);
    return 0;
}

/* Proposals at or below `upto` that were never seen applied (skipped by a
 * snapshot) have an unknown outcome. */
static void end_props_upto(struct sim *s, struct sim_node *n,
                           raft_index upto)
{
    size_t keep = 0;
    for (size_t i = 0; i < n->n_props; i++) {
        if (n->props[i].index <= upto)
            sim_op_unknown(s, n->props[i].op);
        else
            n->props[keep++] = n->props[i];
    }
    n->n_props = keep;
}

static int apply_entry(struct sim *s, struct sim_node *n,
                       const struct raft_entry *e)
{
    struct sim_disk *d = &n->disk;
    if (e->index != d->applied + 1)
        return sim_inv_fail(&s->inv, "n%u applies index %" PRIu64
                            " right after %" PRIu64, n->id, e->index,
                            d->applied);
    uint64_t hash = sim_entry_hash(e->type, e->data, e->len);
    const struct sim_entry *stored = sim_disk_entry(d, e->index);
    if (stored == NULL || stored->term != e->term || stored->hash != hash)
        return sim_inv_fail(&s->inv, "n%u applies index %" PRIu64 " term %"
                            PRIu64 " which is not in its durable log",
                            n->id, e->index, e->term);
    struct sim_cmd cmd = { 0, 0 };
    if (e->type == RAFT_ENTRY_NORMAL) {
        if (!sim_cmd_decode(e->data, e->len, &cmd))
            return sim_inv_fail(&s->inv, "n%u applies a corrupt command at "
                                "index %" PRIu64, n->id, e->index);
        d->kv.val[cmd.key] = cmd.value;
    } else if (e->type != RAFT_ENTRY_NOOP) {
        return sim_inv_fail(&s->inv, "n%u applies entry type %u at %" PRIu64,
                            n->id, e->type, e->index);
    } else if (e->len != sizeof(sim_noop_data) - 1 ||
               memcmp(e->data, sim_noop_data, e->len) != 0) {
        return sim_inv_fail(&s->inv, "n%u applies a no-op at %" PRIu64
                            " without the leader's data", n->id, e->index);
    }
    d->applied = e->index;
    d->applied_term = e->term;
    if (sim_inv_applied(&s->inv, n->id, e, hash, cmd.value,
                        sim_kv_digest(&d->kv), s->step) != 0)
        return -1;
    if (e->type == RAFT_ENTRY_NORMAL)
        SIM_TRACE(s, "n%u apply %" PRIu64 " term %" PRIu64 ": put k%u=%"
                  PRIu64, n->id, e->index, e->term, cmd.key, cmd.value);
    else
        SIM_TRACE(s, "n%u apply %" PRIu64 " term %" PRIu64 ": no-op", n->id,
                  e->index, e->term);

    size_t keep = 0;
    for (size_t i = 0; i < n->n_props; i++) {
        struct sim_prop pr = n->props[i];
        if (pr.index > e->index) {
            n->props[keep++] = pr;
            continue;
        }
        if (pr.index == e->index && pr.term == e->term) {
            const struct sim_op *op = &s->hist.ops[pr.op];
            if (cmd.value != op->value || cmd.key != op->key)
                return sim_inv_fail(&s->inv,
                                    "n%u: raft_propose returned (%" PRIu64
                                    ", %" PRIu64 ") for put k%u=%" PRIu64
                                    " but that entry holds other data",
                                    n->id, pr.index, pr.term, op->key,
                                    op->value);
            sim_op_done(s, pr.op, 0);
        } else {
            /* Another entry took the slot: this proposal is lost. */
            sim_op_unknown(s, pr.op);
        }
    }
    n->n_props = keep;
    return 0;
}

static int take_reads(struct sim *s, struct sim_node *n,
                      const struct raft_ready *rd)
{
    for (size_t i = 0; i < rd->n_reads; i++) {
        uint64_t ctx = rd->reads[i].ctx;
        size_t k = 0;
        while (k < n->n_reads && n->reads[k].op + 1 != ctx)
            k++;
        if (k == n->n_reads || n->reads[k].ready)
            return sim_inv_fail(&s->inv, "n%u: read state for ctx %" PRIu64
                                " that is not awaiting one", n->id, ctx);
        /* ReadIndex: the read must see every entry committed before it
         * was requested. */
        if (rd->reads[i].index < n->reads[k].floor)
            return sim_inv_fail(&s->inv, "read index: n%u answers read ctx %"
                                PRIu64 " at index %" PRIu64 " but index %"
                                PRIu64 " was applied before the read began",
                                n->id, ctx, rd->reads[i].index,
                                n->reads[k].floor);
        n->reads[k].ready = true;
        n->reads[k].index = rd->reads[i].index;
        SIM_TRACE(s, "n%u read ctx %" PRIu64 " confirmed at index %" PRIu64,
                  n->id, ctx, rd->reads[i].index);
    }
    for (size_t i = 0; i < rd->n_read_fails; i++) {
        uint64_t ctx = rd->read_fails[i].ctx;
        size_t k = 0;
        while (k < n->n_reads && n->reads[k].op + 1 != ctx)
            k++;
        if (k == n->n_reads || n->reads[k].ready)
            return sim_inv_fail(&s->inv, "n%u: read failure for ctx %" PRIu64
                                " that is not awaiting one", n->id, ctx);
        size_t op = n->reads[k].op;
        n->reads[k] = n->reads[--n->n_reads];
        SIM_TRACE(s, "n%u read ctx %" PRIu64 " failed", n->id, ctx);
        sim_op_dropped(s, op);
    }
    return 0;
}

static void serve_reads(struct sim *s, struct sim_node *n)
{
    size_t keep = 0;
    for (size_t i = 0; i < n->n_reads; i++) {
        struct sim_read rq = n->reads[i];
        if (!rq.ready || rq.index > n->disk.applied) {
            n->reads[keep++] = rq;
            continue;
        }
        uint64_t v = n->disk.kv.val[s->hist.ops[rq.op].key];
        SIM_TRACE(s, "n%u serve read ctx %zu: k%u=%" PRIu64, n->id,
                  rq.op + 1, s->hist.ops[rq.op].key, v);
        sim_op_done(s, rq.op, v);
    }
    n->n_reads = keep;
}

static void maybe_compact(struct sim *s, struct sim_node *n)
{
    struct sim_disk *d = &n->disk;
    if (n->r == NULL || s->p.compact_every == 0 ||
        d->applied < d->snap.index + s->p.compact_every)
        return;
    sim_disk_compact(d);
    raft_compacted(n->r, &d->snap);
    SIM_TRACE(s, "n%u compact: snapshot %" PRIu64 "/%" PRIu64, n->id,
              d->snap.index, d->snap.term);
}

/* A leader may count an entry committed only once a quorum stores it. */
static int check_commit_quorum(struct sim *s, const struct sim_node *n,
                               raft_term term, raft_index commit)
{
    raft_term t = 0;
    if (!sim_disk_term(&n->disk, commit, &t) && n->disk.snap.index < commit)
        return sim_inv_fail(&s->inv, "leader n%u (term %" PRIu64 ") commits "
                            "index %" PRIu64 " that its own disk lacks",
                            n->id, term, commit);
    if (n->disk.snap.index >= commit)
        return 0; /* only committed state is ever snapshotted */
    unsigned copies = 0;
    for (raft_id o = 1; o <= s->p.n_nodes; o++) {
        const struct sim_disk *d = &s->nodes[o].disk;
        raft_term ot = 0;
        if (d->snap.index >= commit ||
            (sim_disk_term(d, commit, &ot) && ot == t))
            copies++;
    }
    if (copies <= s->p.n_nodes / 2)
        return sim_inv_fail(&s->inv, "leader n%u (term %" PRIu64 ") commits "
                            "index %" PRIu64 " stored on only %u of %u disks",
                            n->id, term, commit, copies, s->p.n_nodes);
    return 0;
}

void sim_observe(struct sim *s)
{
    for (raft_id id = 1; id <= s->p.n_nodes && !sim_failed(s); id++) {
        struct sim_node *n = &s->nodes[id];
        if (n->r == NULL)
            continue;
        struct raft_status st;
        raft_status(n->r, &st);
        if (st.commit < n->commit) {
            sim_inv_fail(&s->inv, "n%u's commit index went back from %"
                         PRIu64 " to %" PRIu64, id, n->commit, st.commit);
            return;
        }
        if (st.commit != n->commit) {
            SIM_TRACE(s, "n%u commit %" PRIu64, id, st.commit);
            if (st.role == RAFT_LEADER &&
                check_commit_quorum(s, n, st.term, st.commit) != 0)
                return;
        }
        n->commit = st.commit;
        if (st.role != n->role || st.term != n->term) {
            SIM_TRACE(s, "n%u %s -> %s, term %" PRIu64, id,
                      raft_role_name(n->role), raft_role_name(st.role),
                      st.term);
            if (st.role == RAFT_LEADER) {
                n->leader_since = s->step;
                if (sim_inv_leader(&s->inv, st.term, id, "status") != 0 ||
                    sim_inv_leader_complete(&s->inv, id, st.term, &n->disk,
                                            s->step) != 0)
                    return;
            }
        }
        n->role = st.role;
        n->term = st.term;
    }
}

void sim_check_all_logs(struct sim *s)
{
    for (raft_id a = 1; a <= s->p.n_nodes; a++)
        for (raft_id b = a + 1; b <= s->p.n_nodes; b++)
            if (sim_inv_log_matching(&s->inv, a, &s->nodes[a].disk, b,
                                     &s->nodes[b].disk, 0) != 0)
                return;
}

raft_id sim_leader(const struct sim *s)
{
    raft_id best = RAFT_NONE;
    raft_term term = 0;
    for (raft_id id = 1; id <= s->p.n_nodes; id++) {
        const struct sim_node *n = &s->nodes[id];
        if (n->r != NULL && n->role == RAFT_LEADER && n->term >= term) {
            best = id;
            term = n->term;
        }
    }
    return best;
}

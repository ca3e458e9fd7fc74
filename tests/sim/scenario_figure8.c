/* scenario_figure8.c — the Raft paper's figure 8; see scenario_figure8.h. */
#include "scenario_figure8.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_cluster.h"
#include "sim_trace.h"

#define FIG8_NODES 5
#define FIG8_PUMP_LIMIT 10000

/* Which messages the script lets through.  A message travels only between
 * nodes in `nodes` (bit per id).  An APPEND that the receiver would accept
 * (its log matches the previous index) and that carries entries beyond
 * hold_above[to] (0: no limit) is split: the receiver gets the prefix up to
 * the limit (possibly no entries, so it still acknowledges what it holds)
 * and the rest is held back, as a slow network would delay it.  Both parts
 * are messages the leader could have sent itself.  An APPEND the receiver
 * would reject goes through whole, so the leader learns where logs
 * diverge.  APPENDs to the nodes in no_append are dropped. */
struct filter {
    unsigned nodes;
    unsigned no_append;
    raft_index hold_above[RAFT_MAX_NODES + 1];
};

struct fig8 {
    struct sim s;
    const char *branch;
    bool failed;
    struct sim_xfer **held;
    size_t n_held, cap_held;
    raft_term t1, t2, t3; /* the paper's terms 2, 3 and 4 */
    uint64_t x_value;     /* S1's old-term entry at index 2 */
};

static int expect(struct fig8 *f, bool cond, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static unsigned all_but(raft_id a, raft_id b);
static void filter_open(struct filter *flt, unsigned nodes);
static int hold(struct fig8 *f, struct sim_xfer *x);
static int split(struct fig8 *f, struct sim_xfer *x, raft_index limit);
static void pump(struct fig8 *f, const struct filter *flt);
static void release_held(struct fig8 *f);
static void drop_held(struct fig8 *f);
static const struct sim_node *node(const struct fig8 *f, raft_id id);
static raft_term term_at(const struct fig8 *f, raft_id id, raft_index i);
static bool elect(struct fig8 *f, raft_id id, const struct filter *flt);
static int prologue(struct fig8 *f, bool trace);
static int branch_a(struct fig8 *f);
static int branch_b(struct fig8 *f);
static int run_branch(bool trace, bool a);

static int expect(struct fig8 *f, bool cond, const char *fmt, ...)
{
    if (cond || f->failed)
        return cond ? 0 : -1;
    f->failed = true;
    va_list ap;
    va_start(ap, fmt);
    printf("figure8 %s: FAILED: ", f->branch);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    return -1;
}

static unsigned all_but(raft_id a, raft_id b)
{
    unsigned m = 0;
    for (raft_id id = 1; id <= FIG8_NODES; id++)
        if (id != a && id != b)
            m |= 1u << id;
    return m;
}

static void filter_open(struct filter *flt, unsigned nodes)
{
    memset(flt, 0, sizeof(*flt));
    flt->nodes = nodes;
}

static const struct sim_node *node(const struct fig8 *f, raft_id id)
{
    return &f->s.nodes[id];
}

/* Term of the durable entry at i on node id, 0 if it has none. */
static raft_term term_at(const struct fig8 *f, raft_id id, raft_index i)
{
    raft_term t = 0;
    if (!sim_disk_term(&node(f, id)->disk, i, &t))
        return 0;
    return t;
}

static int hold(struct fig8 *f, struct sim_xfer *x)
{
    if (f->n_held == f->cap_held) {
        size_t cap = f->cap_held ? f->cap_held * 2 : 16;
        struct sim_xfer **p = realloc(f->held, cap * sizeof(*p));
        if (p == NULL) {
            sim_xfer_free(x);
            return expect(f, false, "out of memory");
        }
        f->held = p;
        f->cap_held = cap;
    }
    f->held[f->n_held++] = x;
    return 0;
}

/* Cut APPEND x down to its entries up to `limit` and hold the rest as an
 * APPEND of its own. */
static int split(struct fig8 *f, struct sim_xfer *x, raft_index limit)
{
    struct sim_xfer *tail = sim_xfer_new(x->m, NULL, x->from_incarnation);
    if (tail == NULL)
        return expect(f, false, "out of memory");
    struct raft_msg *t = tail->m;
    uint32_t keep = limit > x->m->index ? (uint32_t)(limit - x->m->index) : 0;
    if (keep > 0) {
        t->index = t->entries[keep - 1].index;
        t->log_term = t->entries[keep - 1].term;
        t->entries += keep;
        t->n_entries -= keep;
    }
    x->m->n_entries = keep;
    return hold(f, tail);
}

/* Deliver, drop or hold every queued message, including those the
 * deliveries produce, until the network is quiet. */
static void pump(struct fig8 *f, const struct filter *flt)
{
    struct sim *s = &f->s;
    for (unsigned guard = 0; s->n_outbox > 0 && !sim_failed(s); guard++) {
        if (expect(f, guard < FIG8_PUMP_LIMIT, "the network never went "
                   "quiet") != 0)
            return;
        struct sim_xfer *x = s->outbox[0];
        s->n_outbox--;
        memmove(s->outbox, s->outbox + 1, s->n_outbox * sizeof(*s->outbox));
        const struct raft_msg *m = x->m;
        char desc[160];
        if (s->trace)
            sim_msg_describe(m, desc, sizeof(desc));
        bool link = (flt->nodes & (1u << m->from)) &&
                    (flt->nodes & (1u << m->to));
        if (m->type == RAFT_MSG_APPEND && (flt->no_append & (1u << m->to)))
            link = false;
        if (!link) {
            SIM_TRACE(s, "script drops %s", desc);
            if (x->has_kv)
                sim_snapshot_failed(s, x);
            else
                sim_xfer_free(x);
            continue;
        }
        raft_index limit = flt->hold_above[m->to];
        raft_term prev_term = 0;
        bool accept = m->index == 0 ||
                      (sim_disk_term(&s->nodes[m->to].disk, m->index,
                                     &prev_term) &&
                       prev_term == m->log_term);
        if (m->type == RAFT_MSG_APPEND && limit > 0 && m->n_entries > 0 &&
            accept && m->entries[m->n_entries - 1].index > limit) {
            if (split(f, x, limit) != 0)
                return;
            SIM_TRACE(s, "script holds entries after %" PRIu64 " of %s",
                      limit, desc);
        }
        s->step++;
        sim_deliver(s, x);
        sim_observe(s);
    }
}

static void release_held(struct fig8 *f)
{
    struct sim *s = &f->s;
    for (size_t i = 0; i < f->n_held; i++) {
        if (s->n_outbox == s->cap_outbox) {
            size_t cap = s->cap_outbox ? s->cap_outbox * 2 : 32;
            struct sim_xfer **p = realloc(s->outbox, cap * sizeof(*p));
            if (p == NULL) {
                expect(f, false, "out of memory");
                drop_held(f);
                return;
            }
            s->outbox = p;
            s->cap_outbox = cap;
        }
        s->outbox[s->n_outbox++] = f->held[i];
    }
    f->n_held = 0;
}

static void drop_held(struct fig8 *f)
{
    for (size_t i = 0; i < f->n_held; i++)
        sim_xfer_free(f->held[i]);
    f->n_held = 0;
}

/* Campaign on `id` until it leads, pumping under flt between tries. */
static bool elect(struct fig8 *f, raft_id id, const struct filter *flt)
{
    struct sim *s = &f->s;
    for (int attempt = 0; attempt < 5 && !sim_failed(s); attempt++) {
        struct sim_node *n = &s->nodes[id];
        int rc = raft_campaign(n->r);
        if (expect(f, rc == RAFT_OK, "raft_campaign(n%u): %s", id,
                   raft_strerror((enum raft_err)rc)) != 0)
            return false;
        s->step++;
        sim_node_process(s, id);
        sim_observe(s);
        pump(f, flt);
        if (n->r != NULL && n->role == RAFT_LEADER)
            return true;
    }
    return false;
}

/* Figure 8 (a) to (c): returns 0 with S1 leading term t3, its term-t1
 * entry at index 2 on S1, S2, S3 and its term-t3 no-op only on S1. */
static int prologue(struct fig8 *f, bool trace)
{
    struct sim_params p;
    memset(&p, 0, sizeof(p));
    p.n_nodes = FIG8_NODES;
    p.election_tick = 10;
    p.heartbeat_tick = 1;
    p.max_inflight = 256;
    p.max_msg_bytes = 1; /* one entry per APPEND: index 2 and 3 apart */
    /* Without ticks nobody's lease or pre-vote would ever let a scripted
     * campaign through; the scenario is about the commit rule. */
    p.pre_vote = false;
    p.check_quorum = false;
    if (sim_init(&f->s, 8, &p, trace, true) != 0)
        return expect(f, false, "setup: %s", f->s.inv.msg);
    struct sim *s = &f->s;
    struct filter flt;

    /* (a) S1 leads t1; its no-op (index 1) commits everywhere. */
    filter_open(&flt, all_but(0, 0));
    if (expect(f, elect(f, 1, &flt), "S1 did not win the first election")
        != 0)
        return -1;
    f->t1 = node(f, 1)->term;
    if (expect(f, node(f, 1)->commit >= 1, "S1 did not commit its no-op")
        != 0)
        return -1;

    /* S1 appends X at index 2 and replicates it to S2 only, then crashes. */
    uint8_t buf[SIM_CMD_LEN];
    struct sim_cmd cmd = { 1, f->x_value };
    raft_index idx = 0;
    raft_term term = 0;
    sim_cmd_encode(&cmd, buf);
    int rc = raft_propose(s->nodes[1].r, buf, sizeof(buf), &idx, &term);
    if (expect(f, rc == RAFT_OK && idx == 2 && term == f->t1,
               "S1's proposal: %s, index %" PRIu64 " term %" PRIu64,
               raft_strerror((enum raft_err)rc), idx, term) != 0)
        return -1;
    sim_node_process(s, 1);
    filter_open(&flt, (1u << 1) | (1u << 2));
    pump(f, &flt);
    if (expect(f, term_at(f, 2, 2) == f->t1 && term_at(f, 3, 2) == 0,
               "index 2 should be on S1 and S2 only") != 0 ||
        expect(f, node(f, 1)->commit == 1, "S1 committed index %" PRIu64
               " with 2 of 5 replicas", node(f, 1)->commit) != 0)
        return -1;
    sim_node_crash(s, 1, "script: figure 8 (a)");

    /* (b) S5 wins t2 with S3 and S4, appends its own index 2, crashes
     * before sending it anywhere. */
    filter_open(&flt, (1u << 3) | (1u << 4) | (1u << 5));
    flt.hold_above[3] = 1;
    flt.hold_above[4] = 1;
    if (expect(f, elect(f, 5, &flt), "S5 did not win with S3, S4") != 0)
        return -1;
    f->t2 = node(f, 5)->term;
    if (expect(f, f->t2 > f->t1 && term_at(f, 5, 2) == f->t2,
               "S5 should hold index 2 of its term %" PRIu64, f->t2) != 0)
        return -1;
    sim_node_crash(s, 5, "script: figure 8 (b)");
    drop_held(f);

    /* (c) S1 restarts and wins t3 with S2, S3, S4; index 2 (term t1)
     * reaches S3 while the t3 no-op at index 3 stays on S1. */
    sim_node_start(s, 1);
    filter_open(&flt, all_but(5, 0));
    flt.hold_above[2] = 2;
    flt.hold_above[3] = 2;
    flt.no_append = 1u << 4; /* S4 only votes */
    if (expect(f, elect(f, 1, &flt), "S1 did not win again") != 0)
        return -1;
    f->t3 = node(f, 1)->term;
    if (expect(f, f->t3 > f->t2, "S1's new term %" PRIu64 " is not above %"
               PRIu64, f->t3, f->t2) != 0 ||
        expect(f, term_at(f, 1, 3) == f->t3, "S1 has no no-op at index 3")
        != 0 ||
        expect(f, term_at(f, 2, 2) == f->t1 && term_at(f, 3, 2) == f->t1,
               "index 2 of term %" PRIu64 " should be on S1, S2, S3",
               f->t1) != 0 ||
        expect(f, term_at(f, 2, 3) == 0 && term_at(f, 3, 3) == 0,
               "index 3 should be on S1 only") != 0)
        return -1;
    /* The figure-8 rule: a majority holds index 2, but it is from an older
     * term, so it must not count as committed. */
    struct raft_status st;
    raft_status(s->nodes[1].r, &st);
    if (expect(f, st.commit < 2, "S1 committed index 2 of term %" PRIu64
               " by counting replicas (commit %" PRIu64 ")", f->t1,
               st.commit) != 0 ||
        expect(f, sim_inv_committed(&s->inv, 2) == NULL,
               "some node applied index 2 before a term-%" PRIu64
               " entry committed", f->t3) != 0)
        return -1;
    return sim_failed(s) ? expect(f, false, "%s", s->inv.msg) : 0;
}

/* Figure 8 (e): the t3 no-op reaches a majority; index 2 commits with it. */
static int branch_a(struct fig8 *f)
{
    struct sim *s = &f->s;
    struct filter flt;
    filter_open(&flt, all_but(5, 0));
    release_held(f);
    pump(f, &flt);
    const struct sim_inv_commit *c2 = sim_inv_committed(&s->inv, 2);
    const struct sim_inv_commit *c3 = sim_inv_committed(&s->inv, 3);
    if (expect(f, node(f, 1)->commit >= 3, "S1 did not commit index 3 "
               "(commit %" PRIu64 ")", node(f, 1)->commit) != 0 ||
        expect(f, c2 != NULL && c2->term == f->t1,
               "index 2 was not committed with term %" PRIu64, f->t1) != 0 ||
        expect(f, c3 != NULL && c3->term == f->t3,
               "index 3 was not committed with term %" PRIu64, f->t3) != 0)
        return -1;
    /* S5 comes back; the leader's heartbeats bring it up to date and its
     * own index 2 (term t2) is replaced. */
    sim_node_start(s, 5);
    filter_open(&flt, all_but(0, 0));
    for (int i = 0; i < 5 && !sim_failed(s); i++) {
        raft_tick(s->nodes[1].r);
        sim_node_process(s, 1);
        pump(f, &flt);
    }
    if (expect(f, term_at(f, 5, 2) == f->t1 && term_at(f, 5, 3) == f->t3,
               "S5's log was not repaired (index 2 term %" PRIu64 ")",
               term_at(f, 5, 2)) != 0 ||
        expect(f, node(f, 5)->disk.applied >= 3, "S5 did not apply index 3")
        != 0)
        return -1;
    return sim_failed(s) ? expect(f, false, "%s", s->inv.msg) : 0;
}

/* Figure 8 (d): S1 crashes instead; S5 wins a later term and overwrites
 * index 2 everywhere, which is safe only because it never committed. */
static int branch_b(struct fig8 *f)
{
    struct sim *s = &f->s;
    struct filter flt;
    sim_node_crash(s, 1, "script: figure 8 (d)");
    drop_held(f);
    sim_node_start(s, 5);
    filter_open(&flt, all_but(1, 0));
    if (expect(f, elect(f, 5, &flt), "S5 did not win after S1 crashed")
        != 0)
        return -1;
    raft_term t4 = node(f, 5)->term;
    const struct sim_inv_commit *c2 = sim_inv_committed(&s->inv, 2);
    if (expect(f, t4 > f->t3, "S5's term %" PRIu64 " is not above %" PRIu64,
               t4, f->t3) != 0 ||
        expect(f, c2 != NULL && c2->term == f->t2,
               "index 2 was not committed with S5's term %" PRIu64, f->t2)
        != 0)
        return -1;
    for (raft_id id = 2; id <= FIG8_NODES; id++)
        if (expect(f, term_at(f, id, 2) == f->t2, "S%u's index 2 has term %"
                   PRIu64 ", not %" PRIu64, id, term_at(f, id, 2), f->t2)
            != 0)
            return -1;
    /* S1 comes back: its index 2 (t1) and 3 (t3) must be replaced. */
    sim_node_start(s, 1);
    filter_open(&flt, all_but(0, 0));
    for (int i = 0; i < 5 && !sim_failed(s); i++) {
        raft_tick(s->nodes[5].r);
        sim_node_process(s, 5);
        pump(f, &flt);
    }
    if (expect(f, term_at(f, 1, 2) == f->t2 && term_at(f, 1, 3) == t4,
               "S1's log was not repaired (index 2 term %" PRIu64
               ", index 3 term %" PRIu64 ")", term_at(f, 1, 2),
               term_at(f, 1, 3)) != 0)
        return -1;
    for (raft_index i = 1; i <= s->inv.max_committed; i++) {
        const struct sim_inv_commit *c = sim_inv_committed(&s->inv, i);
        if (c != NULL && expect(f, c->term != f->t1 || i < 2,
                                "S1's term-%" PRIu64 " entry at %" PRIu64
                                " was applied", f->t1, i) != 0)
            return -1;
    }
    return sim_failed(s) ? expect(f, false, "%s", s->inv.msg) : 0;
}

static int run_branch(bool trace, bool a)
{
    struct fig8 *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        printf("figure8: out of memory\n");
        return -1;
    }
    f->branch = a ? "(e: S1 commits index 2 with its term-4 entry)"
                  : "(d: S5 overwrites the uncommitted index 2)";
    f->x_value = 4242;
    if (trace)
        printf("== figure8 %s\n", f->branch);
    int rc = prologue(f, trace);
    if (rc == 0 && !f->failed)
        rc = a ? branch_a(f) : branch_b(f);
    if (f->failed)
        rc = -1;
    if (rc == 0 && sim_failed(&f->s))
        rc = expect(f, false, "%s", f->s.inv.msg);
    if (rc == 0) {
        sim_check_all_logs(&f->s);
        if (sim_failed(&f->s))
            rc = expect(f, false, "%s", f->s.inv.msg);
    }
    if (rc == 0)
        printf("figure8 %s: passed (terms %" PRIu64 ", %" PRIu64 ", %"
               PRIu64 ")\n", f->branch, f->t1, f->t2, f->t3);
    drop_held(f);
    free(f->held);
    sim_free(&f->s);
    free(f);
    return rc;
}

int scenario_figure8(bool trace)
{
    int failed = 0;
    failed += run_branch(trace, true) != 0;
    failed += run_branch(trace, false) != 0;
    printf("%d passed, %d failed\n", 2 - failed, failed);
    return failed ? -1 : 0;
}

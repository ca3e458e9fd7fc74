/* sim_run.c — one randomized simulation run; see sim_run.h. */
#include "sim_run.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lincheck.h"
#include "sim_cluster.h"
#include "sim_trace.h"
#include "sim_workload.h"

#define PROBE_VALUE_BASE (UINT64_C(1) << 48)

/* The liveness probe: a proposal made after healing that must commit. */
struct probe {
    bool pending;
    bool done;
    raft_id node;
    raft_index index;
    raft_term term;
    uint64_t heal_time;
    uint64_t attempts;
};

static void on_fault(struct sim *s);
static void on_heal(struct sim *s, struct probe *pr);
static void on_probe(struct sim *s, struct probe *pr);
static void dispatch(struct sim *s, struct sim_event *ev, struct probe *pr);
static void describe_state(const struct sim *s, char *buf, size_t len);

void sim_params_for_seed(uint64_t seed, unsigned n_nodes,
                         struct sim_params *p)
{
    struct sim_rng g;
    sim_rng_seed(&g, sim_mix64(seed) ^ 0x9a7a3e7e5ULL);
    memset(p, 0, sizeof(*p));
    p->n_nodes = n_nodes;
    p->election_tick = 10;
    p->heartbeat_tick = (unsigned)sim_rng_range(&g, 1, 2);
    p->max_inflight = sim_rng_chance(&g, 400) ? 4 : 256;
    /* Small messages force entries to be batched over several APPENDs. */
    p->max_msg_bytes = sim_rng_chance(&g, 300) ? 2 * SIM_CMD_LEN : 1 << 20;
    p->pre_vote = true;
    p->check_quorum = true;
    p->compact_every = sim_rng_chance(&g, 150)
                           ? 0 : (unsigned)sim_rng_range(&g, 4, 30);
    p->fault_ticks = (unsigned)sim_rng_range(&g, 300, 700);
    p->fault_gap_max = (unsigned)sim_rng_range(&g, 5, 25);
    p->ready_crash_pm = sim_rng_chance(&g, 300) ? 0 : 5;
    p->n_clients = (unsigned)sim_rng_range(&g, 2, SIM_MAX_CLIENTS);
    /* Few keys: more contention per key; many keys: longer runs. */
    p->n_keys = (unsigned)sim_rng_range(&g, 3, SIM_KV_KEYS - 1);
    p->ops_per_key = 20;
    p->client_timeout_ticks = 40;
    p->recover_bound_ticks = 50 * p->election_tick;
}

static void on_fault(struct sim *s)
{
    if (!s->faults_on)
        return;
    raft_id leader = sim_leader(s);
    unsigned roll = (unsigned)sim_rng_below(&s->rng, 100);
    if (roll < 20) {
        raft_id id = (raft_id)sim_rng_range(&s->rng, 1, s->p.n_nodes);
        if (roll < 8 && leader != RAFT_NONE)
            id = leader;
        sim_node_crash(s, id, "fault");
    } else if (roll < 30) {
        sim_net_partition(&s->net, &s->rng);
        SIM_TRACE(s, "fault: random partition");
    } else if (roll < 42) {
        if (leader != RAFT_NONE) {
            sim_net_isolate(&s->net, leader);
            SIM_TRACE(s, "fault: isolate leader n%u", leader);
        }
    } else if (roll < 52) {
        sim_net_cut_one_way(&s->net, &s->rng);
        SIM_TRACE(s, "fault: cut a one-way link");
    } else if (roll < 68) {
        memset(s->net.cut, 0, sizeof(s->net.cut));
        SIM_TRACE(s, "fault: links restored");
    } else if (roll < 80) {
        s->net.drop_pm = sim_rng_chance(&s->rng, 300)
                             ? 0 : (unsigned)sim_rng_range(&s->rng, 10, 250);
        s->net.dup_pm = (unsigned)sim_rng_range(&s->rng, 0, 100);
        s->net.reorder_pm = (unsigned)sim_rng_range(&s->rng, 0, 200);
        SIM_TRACE(s, "fault: drop %u%% dup %u%% reorder %u%%",
                  s->net.drop_pm / 10, s->net.dup_pm / 10,
                  s->net.reorder_pm / 10);
    } else if (roll < 92) {
        if (leader != RAFT_NONE) {
            raft_id to = sim_rng_chance(&s->rng, 300)
                             ? RAFT_NONE
                             : (raft_id)sim_rng_range(&s->rng, 1,
                                                      s->p.n_nodes);
            int rc = raft_transfer_leader(s->nodes[leader].r, to);
            SIM_TRACE(s, "fault: n%u transfer leadership to n%u: %s", leader,
                      to, raft_strerror((enum raft_err)rc));
            sim_node_process(s, leader);
        }
    }
    sim_schedule(s, SIM_TIME_PER_TICK *
                        sim_rng_range(&s->rng, 1, s->p.fault_gap_max),
                 SIM_EV_FAULT, 0, 0, NULL);
}

static void on_heal(struct sim *s, struct probe *pr)
{
    s->faults_on = false;
    s->clients_on = false;
    sim_net_heal(&s->net);
    s->net.reorder_pm = 0;
    SIM_TRACE(s, "HEAL: all links up, no loss, crashed nodes restart");
    for (raft_id id = 1; id <= s->p.n_nodes && !sim_failed(s); id++)
        sim_node_start(s, id);
    pr->heal_time = s->now;
    sim_schedule(s, SIM_TIME_PER_TICK, SIM_EV_PROBE, 0, 0, NULL);
}

static void describe_state(const struct sim *s, char *buf, size_t len)
{
    size_t off = 0;
    for (raft_id id = 1; id <= s->p.n_nodes && off < len; id++) {
        const struct sim_node *n = &s->nodes[id];
        off += (size_t)snprintf(buf + off, len - off,
                                " n%u:%s/t%" PRIu64 "/c%" PRIu64 "/a%" PRIu64
                                "/last%" PRIu64, id,
                                n->r ? raft_role_name(n->role) : "down",
                                n->term, n->commit, n->disk.applied,
                                sim_disk_last_index(&n->disk));
    }
}

static void on_probe(struct sim *s, struct probe *pr)
{
    uint64_t elapsed = (s->now - pr->heal_time) / SIM_TIME_PER_TICK;
    if (pr->pending) {
        const struct sim_inv_commit *c = sim_inv_committed(&s->inv,
                                                           pr->index);
        const struct sim_node *pn = &s->nodes[pr->node];
        if (c != NULL && c->term != pr->term) {
            pr->pending = false; /* overwritten: propose again */
        } else if (c == NULL && (pn->r == NULL || pn->role != RAFT_LEADER ||
                                 pn->term != pr->term)) {
            pr->pending = false; /* its leader is gone: it may be lost */
        } else if (c != NULL) {
            bool all = true;
            for (raft_id id = 1; id <= s->p.n_nodes; id++)
                if (s->nodes[id].disk.applied < pr->index)
                    all = false;
            if (all) {
                pr->done = true;
                s->stats.recover_ticks = elapsed;
                SIM_TRACE(s, "LIVENESS ok: probe %" PRIu64 "/%" PRIu64
                          " applied everywhere %" PRIu64 " ticks after heal",
                          pr->index, pr->term, elapsed);
                return;
            }
        }
    }
    if (elapsed > s->p.recover_bound_ticks) {
        char state[400];
        describe_state(s, state, sizeof(state));
        sim_inv_fail(&s->inv,
                     "liveness: %" PRIu64 " ticks after healing, %s;%s",
                     elapsed,
                     pr->pending ? "the probe is not applied on every node"
                                 : "no leader accepted the probe",
                     state);
        return;
    }
    if (!pr->pending) {
        raft_id l = sim_leader(s);
        if (l != RAFT_NONE) {
            uint8_t buf[SIM_CMD_LEN];
            struct sim_cmd cmd = { SIM_KV_PROBE_KEY,
                                   PROBE_VALUE_BASE + ++pr->attempts };
            sim_cmd_encode(&cmd, buf);
            int rc = raft_propose(s->nodes[l].r, buf, sizeof(buf),
                                  &pr->index, &pr->term);
            SIM_TRACE(s, "probe proposed at n%u: %s index %" PRIu64, l,
                      raft_strerror((enum raft_err)rc), pr->index);
            if (rc == RAFT_OK) {
                pr->pending = true;
                pr->node = l;
            }
            sim_node_process(s, l);
        }
    }
    sim_schedule(s, SIM_TIME_PER_TICK, SIM_EV_PROBE, 0, 0, NULL);
}

static void dispatch(struct sim *s, struct sim_event *ev, struct probe *pr)
{
    switch (ev->type) {
    case SIM_EV_TICK: {
        struct sim_node *n = &s->nodes[ev->node];
        if (n->r != NULL) {
            int rc = raft_tick(n->r);
            if (rc != RAFT_OK) {
                sim_inv_fail(&s->inv, "raft_tick(n%u) failed: %s", n->id,
                             raft_strerror((enum raft_err)rc));
                break;
            }
            sim_node_process(s, n->id);
        }
        sim_schedule(s, n->tick_period, SIM_EV_TICK, ev->node, 0, NULL);
        break;
    }
    case SIM_EV_MSG:
        sim_deliver(s, ev->xfer);
        break;
    case SIM_EV_SNAP_FAIL:
        sim_snapshot_failed(s, ev->xfer);
        break;
    case SIM_EV_CLIENT:
        sim_client_event(s, ev->node, ev->aux);
        break;
    case SIM_EV_CLIENT_TIMEOUT:
        sim_client_timeout(s, ev->node, (size_t)ev->aux);
        break;
    case SIM_EV_FAULT:
        on_fault(s);
        break;
    case SIM_EV_RESTART:
        if (s->faults_on)
            sim_node_start(s, ev->node);
        break;
    case SIM_EV_HEAL:
        on_heal(s, pr);
        break;
    case SIM_EV_PROBE:
        on_probe(s, pr);
        break;
    default:
        sim_xfer_free(ev->xfer);
        sim_inv_fail(&s->inv, "unknown event type %u", ev->type);
        break;
    }
}

int sim_run(uint64_t seed, unsigned n_nodes, bool trace,
            struct sim_stats *stats, char *msg, size_t msg_len)
{
    struct sim_params p;
    sim_params_for_seed(seed, n_nodes, &p);
    struct sim *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(msg, msg_len, "out of memory");
        return -1;
    }
    if (trace)
        printf("seed %" PRIu64 ": %u nodes, heartbeat %u, inflight %u, "
               "msg bytes %zu, compact every %u, fault phase %u ticks, "
               "ready crashes %u/1000, %u clients, %u keys\n",
               seed, n_nodes, p.heartbeat_tick, p.max_inflight,
               p.max_msg_bytes, p.compact_every, p.fault_ticks,
               p.ready_crash_pm, p.n_clients, p.n_keys);
    struct probe pr;
    memset(&pr, 0, sizeof(pr));
    if (sim_init(s, seed, &p, trace, false) == 0) {
        s->faults_on = true;
        s->clients_on = true;
        for (raft_id id = 1; id <= n_nodes; id++)
            sim_schedule(s, s->nodes[id].tick_phase, SIM_EV_TICK, id, 0,
                         NULL);
        sim_clients_start(s);
        sim_schedule(s, SIM_TIME_PER_TICK *
                            sim_rng_range(&s->rng, 5, p.fault_gap_max + 5),
                     SIM_EV_FAULT, 0, 0, NULL);
        sim_schedule(s, (uint64_t)p.fault_ticks * SIM_TIME_PER_TICK,
                     SIM_EV_HEAL, 0, 0, NULL);
        sim_observe(s);
        struct sim_event ev;
        while (!sim_failed(s) && !pr.done && sim_queue_pop(&s->q, &ev)) {
            s->now = ev.time;
            s->step++;
            dispatch(s, &ev, &pr);
            if (!sim_failed(s))
                sim_observe(s);
        }
        if (!sim_failed(s) && !pr.done)
            sim_inv_fail(&s->inv, "the event queue ran dry");
    }
    if (!sim_failed(s))
        sim_check_all_logs(s);
    struct sim_lin_stats ls = { 0, 0 };
    if (!sim_failed(s)) {
        char lmsg[sizeof(s->inv.msg)];
        if (sim_lincheck(&s->hist, lmsg, sizeof(lmsg), &ls) != 0)
            sim_inv_fail(&s->inv, "%s", lmsg);
    }
    s->stats.ops_checked = ls.ops_checked;
    s->stats.elections = s->inv.elections;
    s->stats.steps = s->step;
    *stats = s->stats;
    int rc = 0;
    if (sim_failed(s)) {
        snprintf(msg, msg_len, "step %" PRIu64 ", tick %" PRIu64 ": %s",
                 s->step, s->now / SIM_TIME_PER_TICK, s->inv.msg);
        rc = -1;
    }
    if (trace)
        printf("seed %" PRIu64 ": %s\n", seed, rc ? msg : "passed");
    sim_free(s);
    free(s);
    return rc;
}

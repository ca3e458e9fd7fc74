/* sim_workload.c — simulated clients; see sim_workload.h. */
#include "sim_workload.h"

#include <inttypes.h>
#include <stdlib.h>

#include "sim_cluster.h"
#include "sim_trace.h"

static void attempt(struct sim *s, unsigned c);
static void retry_elsewhere(struct sim *s, unsigned c, raft_id hint);
static void release(struct sim *s, size_t op);
static int push_prop(struct sim_node *n, size_t op, raft_index index,
                     raft_term term);
static int push_read(struct sim_node *n, size_t op, raft_index floor);

void sim_clients_start(struct sim *s)
{
    for (unsigned c = 0; c < s->p.n_clients && c < SIM_MAX_CLIENTS; c++) {
        s->clients[c].target =
            (raft_id)sim_rng_range(&s->rng, 1, s->p.n_nodes);
        sim_schedule(s, sim_rng_below(&s->rng, 2 * SIM_TIME_PER_TICK),
                     SIM_EV_CLIENT, (raft_id)c, SIM_CLIENT_NEW, NULL);
    }
}

static int push_prop(struct sim_node *n, size_t op, raft_index index,
                     raft_term term)
{
    if (n->n_props == n->cap_props) {
        size_t cap = n->cap_props ? n->cap_props * 2 : 8;
        struct sim_prop *p = realloc(n->props, cap * sizeof(*p));
        if (p == NULL)
            return -1;
        n->props = p;
        n->cap_props = cap;
    }
    n->props[n->n_props++] = (struct sim_prop){ op, index, term };
    return 0;
}

static int push_read(struct sim_node *n, size_t op, raft_index floor)
{
    if (n->n_reads == n->cap_reads) {
        size_t cap = n->cap_reads ? n->cap_reads * 2 : 8;
        struct sim_read *p = realloc(n->reads, cap * sizeof(*p));
        if (p == NULL)
            return -1;
        n->reads = p;
        n->cap_reads = cap;
    }
    n->reads[n->n_reads++] = (struct sim_read){ op, false, 0, floor };
    return 0;
}

void sim_client_event(struct sim *s, unsigned c, uint64_t aux)
{
    struct sim_client *cl = &s->clients[c];
    if (aux != SIM_CLIENT_NEW) {
        /* A retry is stale once its op ended or a node accepted it. */
        if (cl->busy && cl->op == aux && !cl->proposed)
            attempt(s, c);
        return;
    }
    if (cl->busy || !s->clients_on)
        return;
    /* Several keys keep each key's history small enough to check. */
    unsigned n_keys = s->p.n_keys;
    unsigned start = (unsigned)sim_rng_range(&s->rng, 1, n_keys);
    unsigned key = 0;
    for (unsigned k = 0; k < n_keys && key == 0; k++) {
        unsigned cand = 1 + (start - 1 + k) % n_keys;
        if (s->key_ops[cand] < s->p.ops_per_key)
            key = cand;
    }
    if (key == 0)
        return; /* every key has its share: this client is done */
    bool put = sim_rng_chance(&s->rng, 550);
    uint64_t value = put ? s->next_value++ : 0;
    size_t op;
    if (sim_history_invoke(&s->hist, put ? SIM_OP_PUT : SIM_OP_GET,
                           (uint8_t)key, (uint8_t)c, value, &op) != 0) {
        sim_inv_fail(&s->inv, "out of memory recording the history");
        return;
    }
    s->key_ops[key]++;
    s->stats.ops++;
    cl->busy = true;
    cl->op = op;
    cl->proposed = false;
    if (put)
        SIM_TRACE(s, "client %u invokes op %zu: put k%u=%" PRIu64, c, op,
                  key, value);
    else
        SIM_TRACE(s, "client %u invokes op %zu: get k%u", c, op, key);
    sim_schedule(s, (uint64_t)s->p.client_timeout_ticks * SIM_TIME_PER_TICK,
                 SIM_EV_CLIENT_TIMEOUT, (raft_id)c, op, NULL);
    attempt(s, c);
}

static void retry_elsewhere(struct sim *s, unsigned c, raft_id hint)
{
    struct sim_client *cl = &s->clients[c];
    if (hint != RAFT_NONE && hint != cl->target) {
        cl->target = hint;
    } else {
        raft_id t = (raft_id)sim_rng_range(&s->rng, 1, s->p.n_nodes - 1);
        cl->target = t >= cl->target ? t + 1 : t;
        if (s->p.n_nodes == 1)
            cl->target = 1;
    }
    sim_schedule(s, SIM_TIME_PER_TICK * sim_rng_range(&s->rng, 1, 3),
                 SIM_EV_CLIENT, (raft_id)c, cl->op, NULL);
}

static void attempt(struct sim *s, unsigned c)
{
    struct sim_client *cl = &s->clients[c];
    const struct sim_op *op = &s->hist.ops[cl->op];
    struct sim_node *n = &s->nodes[cl->target];
    if (n->r == NULL) {
        retry_elsewhere(s, c, RAFT_NONE);
        return;
    }
    int rc;
    if (op->kind == SIM_OP_PUT) {
        uint8_t buf[SIM_CMD_LEN];
        struct sim_cmd cmd = { op->key, op->value };
        raft_index index = 0;
        raft_term term = 0;
        sim_cmd_encode(&cmd, buf);
        rc = raft_propose(n->r, buf, sizeof(buf), &index, &term);
        if (rc == RAFT_OK) {
            if (push_prop(n, cl->op, index, term) != 0) {
                sim_inv_fail(&s->inv, "out of memory");
                return;
            }
            SIM_TRACE(s, "client %u op %zu proposed at n%u: index %" PRIu64
                      " term %" PRIu64, c, cl->op, n->id, index, term);
        }
    } else {
        raft_index floor = s->inv.max_committed;
        rc = raft_read_index(n->r, cl->op + 1);
        if (rc == RAFT_OK) {
            if (push_read(n, cl->op, floor) != 0) {
                sim_inv_fail(&s->inv, "out of memory");
                return;
            }
            SIM_TRACE(s, "client %u op %zu read_index at n%u", c, cl->op,
                      n->id);
        }
    }
    if (rc == RAFT_OK) {
        cl->proposed = true;
        sim_node_process(s, n->id);
        return;
    }
    if (rc != RAFT_ERR_NOT_LEADER && rc != RAFT_ERR_TRANSFERRING &&
        rc != RAFT_ERR_BUSY) {
        sim_inv_fail(&s->inv, "n%u refused a client %s: %s", n->id,
                     op->kind == SIM_OP_PUT ? "proposal" : "read",
                     raft_strerror((enum raft_err)rc));
        return;
    }
    struct raft_status st;
    raft_status(n->r, &st);
    SIM_TRACE(s, "client %u op %zu refused by n%u (%s), leader hint n%u", c,
              cl->op, n->id, raft_strerror((enum raft_err)rc), st.leader);
    retry_elsewhere(s, c, rc == RAFT_ERR_NOT_LEADER ? st.leader : RAFT_NONE);
}

void sim_client_timeout(struct sim *s, unsigned c, size_t op)
{
    struct sim_client *cl = &s->clients[c];
    if (!cl->busy || cl->op != op)
        return;
    SIM_TRACE(s, "client %u gives up op %zu", c, op);
    const struct sim_op *o = &s->hist.ops[op];
    if (o->kind == SIM_OP_PUT && cl->proposed)
        sim_op_unknown(s, op);
    else
        sim_op_dropped(s, op);
}

/* The op ended: its client is free for the next one. */
static void release(struct sim *s, size_t op)
{
    unsigned c = s->hist.ops[op].client;
    struct sim_client *cl = &s->clients[c];
    if (!cl->busy || cl->op != op)
        return;
    cl->busy = false;
    if (s->manual)
        return;
    sim_schedule(s, sim_rng_below(&s->rng, 3 * SIM_TIME_PER_TICK),
                 SIM_EV_CLIENT, (raft_id)c, SIM_CLIENT_NEW, NULL);
}

void sim_op_done(struct sim *s, size_t op, uint64_t value)
{
    struct sim_op *o = &s->hist.ops[op];
    if (o->status != SIM_OP_PENDING)
        return;
    o->status = SIM_OP_OK;
    o->complete = sim_history_stamp(&s->hist);
    if (o->kind == SIM_OP_GET)
        o->value = value;
    SIM_TRACE(s, "client %u op %zu done: %s k%u %" PRIu64, o->client, op,
              o->kind == SIM_OP_PUT ? "put" : "get ->", o->key, o->value);
    release(s, op);
}

void sim_op_unknown(struct sim *s, size_t op)
{
    struct sim_op *o = &s->hist.ops[op];
    if (o->status != SIM_OP_PENDING)
        return;
    o->status = SIM_OP_UNKNOWN;
    SIM_TRACE(s, "client %u op %zu outcome unknown", o->client, op);
    release(s, op);
}

void sim_op_dropped(struct sim *s, size_t op)
{
    struct sim_op *o = &s->hist.ops[op];
    if (o->status != SIM_OP_PENDING)
        return;
    o->status = SIM_OP_DROPPED;
    SIM_TRACE(s, "client %u op %zu dropped", o->client, op);
    release(s, op);
}

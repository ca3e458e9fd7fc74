/* sim_net.c — simulated links and message copies; see sim_net.h. */
#include "sim_net.h"

#include <stdlib.h>
#include <string.h>

struct raft_msg *sim_msg_clone(const struct raft_msg *m)
{
    size_t data = 0;
    for (uint32_t i = 0; i < m->n_entries; i++)
        data += m->entries[i].len;
    /* raft_msg's size is a multiple of its 8-byte alignment, so the entry
     * array right behind it is aligned. */
    size_t head = sizeof(struct raft_msg);
    size_t ents = (size_t)m->n_entries * sizeof(struct raft_entry);
    unsigned char *block = malloc(head + ents + data);
    if (block == NULL)
        return NULL;
    struct raft_msg *c = (struct raft_msg *)(void *)block;
    *c = *m;
    c->entries = NULL;
    if (m->n_entries > 0) {
        struct raft_entry *e = (struct raft_entry *)(void *)(block + head);
        uint8_t *p = block + head + ents;
        for (uint32_t i = 0; i < m->n_entries; i++) {
            e[i] = m->entries[i];
            if (e[i].len > 0) {
                memcpy(p, m->entries[i].data, e[i].len);
                e[i].data = p;
                p += e[i].len;
            } else {
                e[i].data = NULL;
            }
        }
        c->entries = e;
    }
    return c;
}

struct sim_xfer *sim_xfer_new(const struct raft_msg *m, const struct sim_kv *kv,
                              unsigned from_incarnation)
{
    struct sim_xfer *x = calloc(1, sizeof(*x));
    if (x == NULL)
        return NULL;
    x->m = sim_msg_clone(m);
    if (x->m == NULL) {
        free(x);
        return NULL;
    }
    if (kv != NULL) {
        x->has_kv = true;
        x->kv = *kv;
    }
    x->from_incarnation = from_incarnation;
    return x;
}

void sim_xfer_free(struct sim_xfer *x)
{
    if (x == NULL)
        return;
    free(x->m);
    free(x);
}

void sim_net_init(struct sim_net *net, unsigned n_nodes)
{
    memset(net, 0, sizeof(*net));
    net->n_nodes = n_nodes;
    net->delay_min = 1;
    net->delay_max = 10;
    net->reorder_max = 40;
}

void sim_net_heal(struct sim_net *net)
{
    memset(net->cut, 0, sizeof(net->cut));
    net->drop_pm = 0;
    net->dup_pm = 0;
}

bool sim_net_up(const struct sim_net *net, raft_id from, raft_id to)
{
    if (from == 0 || to == 0 || from > net->n_nodes || to > net->n_nodes)
        return false;
    return !net->cut[from][to];
}

uint64_t sim_net_delay(const struct sim_net *net, struct sim_rng *g)
{
    uint64_t d = sim_rng_range(g, net->delay_min, net->delay_max);
    if (sim_rng_chance(g, net->reorder_pm))
        d += sim_rng_range(g, 1, net->reorder_max);
    return d;
}

unsigned sim_net_copies(const struct sim_net *net, struct sim_rng *g,
                        raft_id from, raft_id to)
{
    if (!sim_net_up(net, from, to) || sim_rng_chance(g, net->drop_pm))
        return 0;
    return sim_rng_chance(g, net->dup_pm) ? 2 : 1;
}

void sim_net_partition(struct sim_net *net, struct sim_rng *g)
{
    bool side[RAFT_MAX_NODES + 1];
    for (raft_id i = 1; i <= net->n_nodes; i++)
        side[i] = sim_rng_chance(g, 500);
    for (raft_id a = 1; a <= net->n_nodes; a++)
        for (raft_id b = 1; b <= net->n_nodes; b++)
            net->cut[a][b] = side[a] != side[b];
}

void sim_net_isolate(struct sim_net *net, raft_id id)
{
    for (raft_id o = 1; o <= net->n_nodes; o++) {
        if (o == id)
            continue;
        net->cut[id][o] = true;
        net->cut[o][id] = true;
    }
}

void sim_net_cut_one_way(struct sim_net *net, struct sim_rng *g)
{
    raft_id a = (raft_id)sim_rng_range(g, 1, net->n_nodes);
    raft_id b = (raft_id)sim_rng_range(g, 1, net->n_nodes - 1);
    if (b >= a)
        b++;
    net->cut[a][b] = true;
}

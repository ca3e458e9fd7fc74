/* history.c — client history storage; see history.h. */
#include "history.h"

#include <stdlib.h>
#include <string.h>

void sim_history_init(struct sim_history *h)
{
    memset(h, 0, sizeof(*h));
}

void sim_history_free(struct sim_history *h)
{
    free(h->ops);
    sim_history_init(h);
}

uint64_t sim_history_stamp(struct sim_history *h)
{
    return ++h->clock;
}

int sim_history_invoke(struct sim_history *h, uint8_t kind, uint8_t key,
                       uint8_t client, uint64_t value, size_t *op_out)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        struct sim_op *p = realloc(h->ops, cap * sizeof(*p));
        if (p == NULL)
            return -1;
        h->ops = p;
        h->cap = cap;
    }
    struct sim_op *op = &h->ops[h->n];
    memset(op, 0, sizeof(*op));
    op->kind = kind;
    op->status = SIM_OP_PENDING;
    op->key = key;
    op->client = client;
    op->value = value;
    op->invoke = sim_history_stamp(h);
    *op_out = h->n++;
    return 0;
}

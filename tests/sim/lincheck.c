/* lincheck.c — per-key register linearizability search; see lincheck.h. */
#include "lincheck.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_rng.h"

#define LIN_NEVER UINT64_MAX
#define LIN_STATE_BUDGET 4000000u

/* One key's operations, in the search's terms. */
struct lin {
    size_t n;
    const struct sim_op *op[SIM_LIN_MAX_OPS];
    uint64_t ret[SIM_LIN_MAX_OPS];  /* completion, LIN_NEVER if unknown */
    uint32_t required;              /* ops that must be linearized */
    uint64_t *seen;                 /* failed states: open addressing */
    size_t cap;
    size_t n_seen;
    size_t states;
    bool out_of_budget;
};

static bool seen_has(const struct lin *L, uint64_t key);
static int seen_add(struct lin *L, uint64_t key);
static bool search(struct lin *L, uint32_t mask, unsigned writer);
static int check_key(const struct sim_history *h, unsigned key,
                     char *msg, size_t msg_len, struct sim_lin_stats *st);
static void describe(const struct lin *L, unsigned key, const char *why,
                     char *msg, size_t msg_len);

/* State keys are stored +1 so that 0 marks an empty slot. */
static bool seen_has(const struct lin *L, uint64_t key)
{
    if (L->cap == 0)
        return false;
    size_t mask = L->cap - 1;
    for (size_t h = sim_mix64(key) & mask; L->seen[h] != 0;
         h = (h + 1) & mask)
        if (L->seen[h] == key + 1)
            return true;
    return false;
}

static int seen_add(struct lin *L, uint64_t key)
{
    if (2 * (L->n_seen + 1) > L->cap) {
        size_t cap = L->cap ? L->cap * 2 : 1024;
        uint64_t *t = calloc(cap, sizeof(*t));
        if (t == NULL)
            return -1;
        for (size_t i = 0; i < L->cap; i++) {
            if (L->seen[i] == 0)
                continue;
            size_t h = sim_mix64(L->seen[i] - 1) & (cap - 1);
            while (t[h] != 0)
                h = (h + 1) & (cap - 1);
            t[h] = L->seen[i];
        }
        free(L->seen);
        L->seen = t;
        L->cap = cap;
    }
    size_t h = sim_mix64(key) & (L->cap - 1);
    while (L->seen[h] != 0)
        h = (h + 1) & (L->cap - 1);
    L->seen[h] = key + 1;
    L->n_seen++;
    return 0;
}

/* Can the ops outside `mask` be linearized after those in it, starting
 * from the register written by op writer-1 (0: never written)? */
static bool search(struct lin *L, uint32_t mask, unsigned writer)
{
    if ((mask & L->required) == L->required)
        return true;
    uint64_t key = (uint64_t)mask | ((uint64_t)writer << 32);
    if (seen_has(L, key))
        return false;
    if (++L->states > LIN_STATE_BUDGET) {
        L->out_of_budget = true;
        return false;
    }
    /* An op may go next only if no pending op completed before it began. */
    uint64_t min_ret = LIN_NEVER;
    for (size_t i = 0; i < L->n; i++)
        if (!(mask & (1u << i)) && L->ret[i] < min_ret)
            min_ret = L->ret[i];
    uint64_t current = writer ? L->op[writer - 1]->value : 0;
    for (size_t i = 0; i < L->n && !L->out_of_budget; i++) {
        if (mask & (1u << i) || L->op[i]->invoke > min_ret)
            continue;
        const struct sim_op *o = L->op[i];
        bool ok;
        if (o->kind == SIM_OP_GET)
            ok = o->value == current && search(L, mask | (1u << i), writer);
        else
            ok = search(L, mask | (1u << i), (unsigned)i + 1);
        if (ok)
            return true;
    }
    if (seen_add(L, key) != 0)
        L->out_of_budget = true;
    return false;
}

static void describe(const struct lin *L, unsigned key, const char *why,
                     char *msg, size_t msg_len)
{
    size_t off = (size_t)snprintf(msg, msg_len,
                                  "linearizability: key %u %s; ops:", key,
                                  why);
    for (size_t i = 0; i < L->n && off < msg_len; i++) {
        const struct sim_op *o = L->op[i];
        char ret[24];
        if (L->ret[i] == LIN_NEVER)
            snprintf(ret, sizeof(ret), "?");
        else
            snprintf(ret, sizeof(ret), "%" PRIu64, L->ret[i]);
        off += (size_t)snprintf(msg + off, msg_len - off,
                                " [c%u %s %" PRIu64 " %" PRIu64 "..%s]",
                                o->client,
                                o->kind == SIM_OP_PUT ? "put" : "get",
                                o->value, o->invoke, ret);
    }
}

static int check_key(const struct sim_history *h, unsigned key,
                     char *msg, size_t msg_len, struct sim_lin_stats *st)
{
    struct lin L;
    memset(&L, 0, sizeof(L));
    for (size_t i = 0; i < h->n; i++) {
        const struct sim_op *o = &h->ops[i];
        if (o->key != key)
            continue;
        bool done = o->status == SIM_OP_OK;
        bool maybe = o->kind == SIM_OP_PUT &&
                     (o->status == SIM_OP_UNKNOWN ||
                      o->status == SIM_OP_PENDING);
        if (!done && !maybe)
            continue;
        if (L.n == SIM_LIN_MAX_OPS) {
            snprintf(msg, msg_len,
                     "linearizability: key %u has more than %d operations",
                     key, SIM_LIN_MAX_OPS);
            return -1;
        }
        L.op[L.n] = o;
        L.ret[L.n] = done ? o->complete : LIN_NEVER;
        if (done)
            L.required |= 1u << L.n;
        L.n++;
    }
    bool ok = search(&L, 0, 0);
    if (st != NULL) {
        st->ops_checked += L.n;
        st->states += L.states;
    }
    if (!ok)
        describe(&L, key,
                 L.out_of_budget ? "exhausted the search budget"
                                 : "is not linearizable",
                 msg, msg_len);
    free(L.seen);
    return ok ? 0 : -1;
}

int sim_lincheck(const struct sim_history *h, char *msg, size_t msg_len,
                 struct sim_lin_stats *st)
{
    bool keys[256] = { false };
    for (size_t i = 0; i < h->n; i++)
        keys[h->ops[i].key] = true;
    for (unsigned k = 0; k < 256; k++)
        if (keys[k] && check_key(h, k, msg, msg_len, st) != 0)
            return -1;
    return 0;
}

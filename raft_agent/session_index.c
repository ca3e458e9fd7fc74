/*
 * session_index.c — the in-memory index of remembered request ids (see
 * session_index.h).
 *
 * Linear probing over a power-of-two table at most half full, deletion by
 * shifting the rest of the cluster back (no tombstones, so a probe ends at
 * the first empty slot).  The hash is SipHash-2-4 (Aumasson and Bernstein)
 * under a random per-process key: request ids derive from what clients
 * send, and a public hash would let them fill one probe chain.
 */
#include "session_index.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define INITIAL_CAP 1024

static uint64_t rotl(uint64_t v, int n)
{
    return (v << n) | (v >> (64 - n));
}

static void sip_round(uint64_t v[4])
{
    v[0] += v[1];
    v[1] = rotl(v[1], 13) ^ v[0];
    v[0] = rotl(v[0], 32);
    v[2] += v[3];
    v[3] = rotl(v[3], 16) ^ v[2];
    v[0] += v[3];
    v[3] = rotl(v[3], 21) ^ v[0];
    v[2] += v[1];
    v[1] = rotl(v[1], 17) ^ v[2];
    v[2] = rotl(v[2], 32);
}

static uint64_t load_le(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static uint64_t siphash24(const uint64_t key[2], const uint8_t *p,
                          size_t len)
{
    uint64_t v[4] = {key[0] ^ 0x736f6d6570736575ULL,
                     key[1] ^ 0x646f72616e646f6dULL,
                     key[0] ^ 0x6c7967656e657261ULL,
                     key[1] ^ 0x7465646279746573ULL};
    size_t full = len & ~(size_t)7;
    for (size_t i = 0; i < full; i += 8) {
        uint64_t m = load_le(p + i, 8);
        v[3] ^= m;
        sip_round(v);
        sip_round(v);
        v[0] ^= m;
    }
    uint64_t last = load_le(p + full, len - full) | ((uint64_t)len << 56);
    v[3] ^= last;
    sip_round(v);
    sip_round(v);
    v[0] ^= last;
    v[2] ^= 0xff;
    for (int i = 0; i < 4; i++)
        sip_round(v);
    return v[0] ^ v[1] ^ v[2] ^ v[3];
}

uint64_t agenda_session_index_hash(const struct agenda_session_index *x,
                                   const void *id, size_t len)
{
    uint64_t h = siphash24(x->key, id, len);
    return h != 0 ? h : 1; /* 0 marks an empty slot */
}

int agenda_session_index_init(struct agenda_session_index *x)
{
    memset(x, 0, sizeof(*x));
    if (getrandom(x->key, sizeof(x->key), 0) != (ssize_t)sizeof(x->key))
        return -1;
    return 0;
}

void agenda_session_index_free(struct agenda_session_index *x)
{
    free(x->slots);
    free(x->changes);
    x->slots = NULL;
    x->changes = NULL;
    x->cap = x->count = x->n_changes = x->cap_changes = 0;
}

void agenda_session_index_clear(struct agenda_session_index *x)
{
    /* the table is rebuilt at the size of what it is rebuilt from */
    free(x->slots);
    x->slots = NULL;
    x->cap = x->count = 0;
    x->n_changes = 0;
}

static size_t home(const struct agenda_session_index *x, uint64_t hash)
{
    return (size_t)hash & (x->cap - 1);
}

static void put(struct agenda_session_index *x, uint64_t hash, uint64_t time)
{
    size_t i = home(x, hash);
    while (x->slots[i].hash != 0)
        i = (i + 1) & (x->cap - 1);
    x->slots[i].hash = hash;
    x->slots[i].time = time;
    x->count++;
}

/* Moves every pair into a new table of cap slots (a power of two). */
static int resize(struct agenda_session_index *x, size_t cap)
{
    struct agenda_session_slot *old = x->slots;
    size_t old_cap = x->cap;
    x->slots = calloc(cap, sizeof(*x->slots));
    if (x->slots == NULL) {
        x->slots = old;
        return -1;
    }
    x->cap = cap;
    x->count = 0;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].hash != 0)
            put(x, old[i].hash, old[i].time);
    free(old);
    return 0;
}

static int grow(struct agenda_session_index *x)
{
    return resize(x, x->cap == 0 ? INITIAL_CAP : x->cap * 2);
}

/* After a burst the table would keep its peak size for good: give memory
 * back once it is less than an eighth full (then a quarter full). */
static void maybe_shrink(struct agenda_session_index *x)
{
    if (x->cap <= INITIAL_CAP || x->count * 8 >= x->cap)
        return;
    size_t cap = x->cap;
    while (cap > INITIAL_CAP && x->count * 4 <= cap / 2)
        cap /= 2;
    (void)resize(x, cap); /* out of memory: keep the bigger table */
}

/* The slot holding exactly (hash, time), or cap when there is none. */
static size_t find(const struct agenda_session_index *x, uint64_t hash,
                   uint64_t time)
{
    if (x->cap == 0)
        return 0;
    for (size_t i = home(x, hash); x->slots[i].hash != 0;
         i = (i + 1) & (x->cap - 1))
        if (x->slots[i].hash == hash && x->slots[i].time == time)
            return i;
    return x->cap;
}

/* Empties slot i and moves back the entries after it that would no longer
 * be reachable from their home slot. */
static void delete_at(struct agenda_session_index *x, size_t i)
{
    size_t mask = x->cap - 1;
    for (size_t j = (i + 1) & mask; x->slots[j].hash != 0;
         j = (j + 1) & mask) {
        size_t k = home(x, x->slots[j].hash);
        /* j's entry may move to i when its home is not in (i, j] */
        bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (!stays) {
            x->slots[i] = x->slots[j];
            i = j;
        }
    }
    x->slots[i].hash = 0;
    x->slots[i].time = 0;
    x->count--;
}

static int note_change(struct agenda_session_index *x, uint64_t hash,
                       uint64_t time, bool added)
{
    if (x->n_changes == x->cap_changes) {
        size_t cap = x->cap_changes == 0 ? 64 : x->cap_changes * 2;
        struct agenda_session_change *c =
            realloc(x->changes, cap * sizeof(*c));
        if (c == NULL)
            return -1;
        x->changes = c;
        x->cap_changes = cap;
    }
    struct agenda_session_change *c = &x->changes[x->n_changes++];
    c->hash = hash;
    c->time = time;
    c->added = added;
    return 0;
}

int agenda_session_index_load(struct agenda_session_index *x, uint64_t hash,
                              uint64_t time)
{
    if ((x->count + 1) * 2 > x->cap && grow(x) != 0)
        return -1;
    put(x, hash, time);
    return 0;
}

int agenda_session_index_add(struct agenda_session_index *x, uint64_t hash,
                             uint64_t time)
{
    /* noted first: a change whose pair never got in is harmless (an abort
     * finds no pair to take back, a commit ignores additions) */
    if (note_change(x, hash, time, true) != 0)
        return -1;
    return agenda_session_index_load(x, hash, time);
}

int agenda_session_index_remove_later(struct agenda_session_index *x,
                                      uint64_t hash, uint64_t time)
{
    return note_change(x, hash, time, false);
}

/* Removes one (hash, time) pair, if there is one. */
static void remove_pair(struct agenda_session_index *x, uint64_t hash,
                        uint64_t time)
{
    size_t i = find(x, hash, time);
    if (i != x->cap)
        delete_at(x, i);
}

void agenda_session_index_commit(struct agenda_session_index *x)
{
    for (size_t n = 0; n < x->n_changes; n++)
        if (!x->changes[n].added)
            remove_pair(x, x->changes[n].hash, x->changes[n].time);
    x->n_changes = 0;
    maybe_shrink(x);
}

void agenda_session_index_abort(struct agenda_session_index *x)
{
    for (size_t n = x->n_changes; n-- > 0;)
        if (x->changes[n].added)
            remove_pair(x, x->changes[n].hash, x->changes[n].time);
    x->n_changes = 0;
}

int agenda_session_index_next(const struct agenda_session_index *x,
                              uint64_t hash, size_t *pos, uint64_t *time)
{
    if (x->cap == 0)
        return 0;
    size_t mask = x->cap - 1;
    for (size_t i = (home(x, hash) + *pos) & mask; x->slots[i].hash != 0;
         i = (i + 1) & mask) {
        ++*pos;
        if (x->slots[i].hash == hash) {
            *time = x->slots[i].time;
            return 1;
        }
    }
    return 0;
}

size_t agenda_session_index_count(const struct agenda_session_index *x)
{
    return x->count;
}

size_t agenda_session_index_bytes(const struct agenda_session_index *x)
{
    return x->cap * sizeof(*x->slots);
}

/* sim_disk.c — in-memory durable storage of one simulated node. */
#include "sim_disk.h"

#include <stdlib.h>
#include <string.h>

#include "sim_rng.h"

static int disk_initial_state(void *ctx, struct raft_hard_state *hs,
                              struct raft_snapshot_meta *snap);
static int disk_first_index(void *ctx, raft_index *out);
static int disk_last_index(void *ctx, raft_index *out);
static int disk_term(void *ctx, raft_index i, raft_term *out);
static int disk_entries(void *ctx, raft_index lo, raft_index hi,
                        size_t max_bytes, struct raft_entry_sink *sink);
static void drop_from(struct sim_disk *d, size_t pos);

const struct raft_storage sim_disk_storage = {
    .initial_state = disk_initial_state,
    .first_index = disk_first_index,
    .last_index = disk_last_index,
    .term = disk_term,
    .entries = disk_entries,
};

const char *sim_disk_strerror(enum sim_disk_err err)
{
    switch (err) {
    case SIM_DISK_OK: return "ok";
    case SIM_DISK_NOMEM: return "out of memory";
    case SIM_DISK_BELOW_SNAPSHOT:
        return "entries at or below the stored snapshot";
    case SIM_DISK_GAP: return "entries leave a gap after the last index";
    case SIM_DISK_NOT_CONSECUTIVE: return "entry indexes not consecutive";
    }
    return "unknown disk error";
}

void sim_disk_init(struct sim_disk *d)
{
    memset(d, 0, sizeof(*d));
}

void sim_disk_free(struct sim_disk *d)
{
    drop_from(d, 0);
    free(d->ents);
    sim_disk_init(d);
}

raft_index sim_disk_first_index(const struct sim_disk *d)
{
    return d->snap.index + 1;
}

raft_index sim_disk_last_index(const struct sim_disk *d)
{
    return d->snap.index + d->n_ents;
}

const struct sim_entry *sim_disk_entry(const struct sim_disk *d, raft_index i)
{
    if (i <= d->snap.index || i > sim_disk_last_index(d))
        return NULL;
    return &d->ents[i - d->snap.index - 1];
}

bool sim_disk_term(const struct sim_disk *d, raft_index i, raft_term *out)
{
    if (i == d->snap.index) {
        *out = d->snap.term;
        return true;
    }
    const struct sim_entry *e = sim_disk_entry(d, i);
    if (e == NULL)
        return false;
    *out = e->term;
    return true;
}

uint64_t sim_entry_hash(uint8_t type, const uint8_t *data, uint32_t len)
{
    return sim_mix64(sim_hash_bytes(data, len) ^ type);
}

/* Free the entries at positions >= pos. */
static void drop_from(struct sim_disk *d, size_t pos)
{
    for (size_t k = pos; k < d->n_ents; k++)
        free(d->ents[k].data);
    if (pos < d->n_ents)
        d->n_ents = pos;
}

enum sim_disk_err sim_disk_append(struct sim_disk *d,
                                  const struct raft_entry *e, size_t n)
{
    if (n == 0)
        return SIM_DISK_OK;
    if (e[0].index <= d->snap.index)
        return SIM_DISK_BELOW_SNAPSHOT;
    if (e[0].index > sim_disk_last_index(d) + 1)
        return SIM_DISK_GAP;
    for (size_t k = 1; k < n; k++)
        if (e[k].index != e[0].index + k)
            return SIM_DISK_NOT_CONSECUTIVE;

    size_t pos = (size_t)(e[0].index - d->snap.index - 1);
    if (pos + n > d->cap_ents) {
        size_t cap = d->cap_ents ? d->cap_ents : 64;
        while (cap < pos + n)
            cap *= 2;
        struct sim_entry *p = realloc(d->ents, cap * sizeof(*p));
        if (p == NULL)
            return SIM_DISK_NOMEM;
        d->ents = p;
        d->cap_ents = cap;
    }
    /* Copy first so that a failed allocation changes nothing. */
    uint8_t **copies = calloc(n, sizeof(*copies));
    if (copies == NULL)
        return SIM_DISK_NOMEM;
    for (size_t k = 0; k < n; k++) {
        if (e[k].len == 0)
            continue;
        copies[k] = malloc(e[k].len);
        if (copies[k] == NULL) {
            for (size_t j = 0; j < k; j++)
                free(copies[j]);
            free(copies);
            return SIM_DISK_NOMEM;
        }
        memcpy(copies[k], e[k].data, e[k].len);
    }
    drop_from(d, pos);
    for (size_t k = 0; k < n; k++) {
        struct sim_entry *s = &d->ents[pos + k];
        s->term = e[k].term;
        s->index = e[k].index;
        s->type = e[k].type;
        s->len = e[k].len;
        s->data = copies[k];
        s->hash = sim_entry_hash(e[k].type, copies[k], e[k].len);
    }
    d->n_ents = pos + n;
    free(copies);
    return SIM_DISK_OK;
}

void sim_disk_install(struct sim_disk *d,
                      const struct raft_snapshot_meta *meta,
                      const struct sim_kv *kv)
{
    drop_from(d, 0);
    d->snap = *meta;
    d->snap_kv = *kv;
    d->kv = *kv;
    d->applied = meta->index;
    d->applied_term = meta->term;
}

void sim_disk_compact(struct sim_disk *d)
{
    if (d->applied <= d->snap.index)
        return;
    size_t drop = (size_t)(d->applied - d->snap.index);
    if (drop > d->n_ents)
        drop = d->n_ents;
    for (size_t k = 0; k < drop; k++)
        free(d->ents[k].data);
    memmove(d->ents, d->ents + drop, (d->n_ents - drop) * sizeof(*d->ents));
    d->n_ents -= drop;
    d->snap.index = d->applied;
    d->snap.term = d->applied_term;
    d->snap_kv = d->kv;
}

static int disk_initial_state(void *ctx, struct raft_hard_state *hs,
                              struct raft_snapshot_meta *snap)
{
    const struct sim_disk *d = ctx;
    *hs = d->hs;
    *snap = d->snap;
    return RAFT_OK;
}

static int disk_first_index(void *ctx, raft_index *out)
{
    *out = sim_disk_first_index(ctx);
    return RAFT_OK;
}

static int disk_last_index(void *ctx, raft_index *out)
{
    *out = sim_disk_last_index(ctx);
    return RAFT_OK;
}

static int disk_term(void *ctx, raft_index i, raft_term *out)
{
    const struct sim_disk *d = ctx;
    if (i < d->snap.index)
        return RAFT_ERR_COMPACTED;
    if (!sim_disk_term(d, i, out))
        return RAFT_ERR_INVALID;
    return RAFT_OK;
}

static int disk_entries(void *ctx, raft_index lo, raft_index hi,
                        size_t max_bytes, struct raft_entry_sink *sink)
{
    const struct sim_disk *d = ctx;
    if (lo < sim_disk_first_index(d))
        return RAFT_ERR_COMPACTED;
    if (hi < lo || hi > sim_disk_last_index(d) + 1)
        return RAFT_ERR_INVALID;
    size_t bytes = 0;
    for (raft_index i = lo; i < hi; i++) {
        const struct sim_entry *s = sim_disk_entry(d, i);
        /* Like etcd's limitSize: the first entry always goes. */
        if (i > lo && bytes + s->len > max_bytes)
            break;
        struct raft_entry e = {
            .term = s->term, .index = s->index, .type = s->type,
            .len = s->len, .data = s->data,
        };
        int rc = raft_entries_push(sink, &e);
        if (rc != RAFT_OK)
            return rc;
        bytes += s->len;
    }
    return RAFT_OK;
}

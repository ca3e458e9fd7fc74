/*
 * raft_mem_log.h — a stable log kept in memory, the storage of the Raft
 * core for the tests that drive it directly through raft.h.
 */
#ifndef AGENDA_TEST_RAFT_MEM_LOG_H
#define AGENDA_TEST_RAFT_MEM_LOG_H

#include "raft.h"

#define LOG_MAX 32

/* The stable log: what the test persisted from ready batches. */
struct mem_log {
    raft_term terms[LOG_MAX + 1]; /* by index; 0 unused */
    raft_index last;
    struct raft_hard_state hs;
};

static inline int mem_initial_state(void *ctx, struct raft_hard_state *hs,
                                    struct raft_snapshot_meta *snap)
{
    struct mem_log *m = ctx;
    *hs = m->hs;
    snap->index = 0;
    snap->term = 0;
    return RAFT_OK;
}

static inline int mem_first_index(void *ctx, raft_index *out)
{
    (void)ctx;
    *out = 1;
    return RAFT_OK;
}

static inline int mem_last_index(void *ctx, raft_index *out)
{
    *out = ((struct mem_log *)ctx)->last;
    return RAFT_OK;
}

static inline int mem_term(void *ctx, raft_index i, raft_term *out)
{
    struct mem_log *m = ctx;
    if (i > m->last)
        return RAFT_ERR_STORAGE;
    *out = m->terms[i];
    return RAFT_OK;
}

static inline int mem_entries(void *ctx, raft_index lo, raft_index hi,
                              size_t max_bytes, struct raft_entry_sink *sink)
{
    struct mem_log *m = ctx;
    (void)max_bytes;
    for (raft_index i = lo; i < hi && i <= m->last; i++) {
        struct raft_entry e = {.term = m->terms[i], .index = i,
                               .type = RAFT_ENTRY_NORMAL};
        int rc = raft_entries_push(sink, &e);
        if (rc != RAFT_OK)
            return rc;
    }
    return RAFT_OK;
}

static const struct raft_storage mem_ops = {
    mem_initial_state, mem_first_index, mem_last_index, mem_term,
    mem_entries,
};

/* Node 1 of a shard of three (1, 2, 3) with its log in m; cmocka's
 * assertions (the includer has cmocka.h). */
static inline struct raft *mem_node1(struct mem_log *m)
{
    struct raft_config c;
    enum raft_err err;
    raft_config_defaults(&c);
    c.id = 1;
    c.peers[0] = 1;
    c.peers[1] = 2;
    c.peers[2] = 3;
    c.n_peers = 3;
    c.storage = &mem_ops;
    c.storage_ctx = m;
    struct raft *r = raft_new(&c, &err);
    assert_non_null(r);
    return r;
}

#endif /* AGENDA_TEST_RAFT_MEM_LOG_H */

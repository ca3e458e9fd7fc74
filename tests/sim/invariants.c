/* invariants.c — Raft safety properties; see invariants.h. */
#include "invariants.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_rng.h"

static struct sim_inv_term *term_slot(struct sim_inv *inv, raft_term term);
static struct sim_inv_commit *commit_slot(struct sim_inv *inv,
                                          raft_index index);
static int value_record(struct sim_inv *inv, uint64_t value,
                        raft_index index, raft_index *prev);

void sim_inv_init(struct sim_inv *inv)
{
    memset(inv, 0, sizeof(*inv));
}

void sim_inv_free(struct sim_inv *inv)
{
    free(inv->terms);
    free(inv->committed);
    free(inv->values);
    sim_inv_init(inv);
}

int sim_inv_fail(struct sim_inv *inv, const char *fmt, ...)
{
    if (inv->failed)
        return -1;
    inv->failed = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(inv->msg, sizeof(inv->msg), fmt, ap);
    va_end(ap);
    return -1;
}

/* Grow-on-demand per-term record; NULL (and a failure) without memory or
 * for an absurd term, which would itself be a bug worth reporting. */
static struct sim_inv_term *term_slot(struct sim_inv *inv, raft_term term)
{
    if (term >= 1000000) {
        sim_inv_fail(inv, "term %" PRIu64 " is implausibly large", term);
        return NULL;
    }
    if (term >= inv->n_terms) {
        size_t n = inv->n_terms ? inv->n_terms : 64;
        while (n <= term)
            n *= 2;
        struct sim_inv_term *p = realloc(inv->terms, n * sizeof(*p));
        if (p == NULL) {
            sim_inv_fail(inv, "out of memory recording terms");
            return NULL;
        }
        memset(p + inv->n_terms, 0, (n - inv->n_terms) * sizeof(*p));
        inv->terms = p;
        inv->n_terms = n;
    }
    return &inv->terms[term];
}

static struct sim_inv_commit *commit_slot(struct sim_inv *inv,
                                          raft_index index)
{
    if (index >= 100000000) {
        sim_inv_fail(inv, "index %" PRIu64 " is implausibly large", index);
        return NULL;
    }
    if (index >= inv->cap_committed) {
        size_t n = inv->cap_committed ? inv->cap_committed : 256;
        while (n <= index)
            n *= 2;
        struct sim_inv_commit *p = realloc(inv->committed, n * sizeof(*p));
        if (p == NULL) {
            sim_inv_fail(inv, "out of memory recording commits");
            return NULL;
        }
        memset(p + inv->cap_committed, 0,
               (n - inv->cap_committed) * sizeof(*p));
        inv->committed = p;
        inv->cap_committed = n;
    }
    return &inv->committed[index];
}

const struct sim_inv_commit *sim_inv_committed(const struct sim_inv *inv,
                                               raft_index index)
{
    if (index >= inv->cap_committed || !inv->committed[index].set)
        return NULL;
    return &inv->committed[index];
}

/* Record value -> index; if the value was recorded before, *prev gets the
 * earlier index and 1 is returned.  -1 without memory. */
static int value_record(struct sim_inv *inv, uint64_t value,
                        raft_index index, raft_index *prev)
{
    if (2 * (inv->n_values + 1) > inv->cap_values) {
        size_t cap = inv->cap_values ? inv->cap_values * 2 : 1024;
        struct sim_inv_slot *t = calloc(cap, sizeof(*t));
        if (t == NULL)
            return -1;
        for (size_t i = 0; i < inv->cap_values; i++) {
            if (inv->values[i].value == 0)
                continue;
            size_t h = sim_mix64(inv->values[i].value) & (cap - 1);
            while (t[h].value != 0)
                h = (h + 1) & (cap - 1);
            t[h] = inv->values[i];
        }
        free(inv->values);
        inv->values = t;
        inv->cap_values = cap;
    }
    size_t mask = inv->cap_values - 1;
    size_t h = sim_mix64(value) & mask;
    while (inv->values[h].value != 0) {
        if (inv->values[h].value == value) {
            *prev = inv->values[h].index;
            return 1;
        }
        h = (h + 1) & mask;
    }
    inv->values[h].value = value;
    inv->values[h].index = index;
    inv->n_values++;
    return 0;
}

int sim_inv_leader(struct sim_inv *inv, raft_term term, raft_id id,
                   const char *how)
{
    struct sim_inv_term *t = term_slot(inv, term);
    if (t == NULL)
        return -1;
    if (t->leader == RAFT_NONE) {
        t->leader = id;
        inv->elections++;
        return 0;
    }
    if (t->leader != id)
        return sim_inv_fail(inv,
                            "election safety: two leaders in term %" PRIu64
                            ": n%u, and n%u (%s)",
                            term, t->leader, id, how);
    return 0;
}

int sim_inv_vote(struct sim_inv *inv, raft_term term, raft_id voter,
                 raft_id candidate)
{
    struct sim_inv_term *t = term_slot(inv, term);
    if (t == NULL || voter > RAFT_MAX_NODES)
        return -1;
    if (t->vote[voter] == RAFT_NONE) {
        t->vote[voter] = candidate;
        return 0;
    }
    if (t->vote[voter] != candidate)
        return sim_inv_fail(inv,
                            "vote safety: n%u granted its vote in term %"
                            PRIu64 " to n%u and to n%u",
                            voter, term, t->vote[voter], candidate);
    return 0;
}

int sim_inv_applied(struct sim_inv *inv, raft_id node,
                    const struct raft_entry *e, uint64_t hash,
                    uint64_t value, uint64_t digest, uint64_t step)
{
    struct sim_inv_commit *c = commit_slot(inv, e->index);
    if (c == NULL)
        return -1;
    if (!c->set) {
        c->set = true;
        c->term = e->term;
        c->hash = hash;
        c->digest = digest;
        c->step = step;
        c->by = node;
        if (e->index > inv->max_committed)
            inv->max_committed = e->index;
        if (value != 0) {
            raft_index prev = 0;
            int rc = value_record(inv, value, e->index, &prev);
            if (rc < 0)
                return sim_inv_fail(inv, "out of memory recording values");
            if (rc > 0)
                return sim_inv_fail(inv,
                                    "state machine safety: value %" PRIu64
                                    " applied at index %" PRIu64
                                    " and again at %" PRIu64
                                    " (a command executed twice)",
                                    value, prev, e->index);
        }
        return 0;
    }
    if (c->term != e->term || c->hash != hash)
        return sim_inv_fail(inv,
                            "state machine safety: n%u applied index %" PRIu64
                            " term %" PRIu64 " but n%u applied term %" PRIu64
                            "%s at that index",
                            node, e->index, e->term, c->by, c->term,
                            c->term == e->term ? " with other data" : "");
    if (c->digest != digest)
        return sim_inv_fail(inv,
                            "state machine divergence: after applying index %"
                            PRIu64 " n%u's KV map differs from n%u's",
                            e->index, node, c->by);
    return 0;
}

int sim_inv_snapshot(struct sim_inv *inv, raft_id node,
                     const struct raft_snapshot_meta *meta, uint64_t digest)
{
    const struct sim_inv_commit *c = sim_inv_committed(inv, meta->index);
    if (c == NULL)
        return sim_inv_fail(inv,
                            "snapshot: n%u installed a snapshot at index %"
                            PRIu64 " that no node ever applied",
                            node, meta->index);
    if (c->term != meta->term)
        return sim_inv_fail(inv,
                            "snapshot: n%u installed snapshot (%" PRIu64
                            ", term %" PRIu64 ") but index %" PRIu64
                            " was committed with term %" PRIu64,
                            node, meta->index, meta->term, meta->index,
                            c->term);
    if (c->digest != digest)
        return sim_inv_fail(inv,
                            "snapshot: n%u installed data at index %" PRIu64
                            " that differs from the state n%u reached there",
                            node, meta->index, c->by);
    return 0;
}

int sim_inv_append(struct sim_inv *inv, raft_id node,
                   const struct sim_disk *d, const struct raft_entry *e,
                   size_t n)
{
    if (n == 0)
        return 0;
    raft_index last = sim_disk_last_index(d);
    for (raft_index i = e[0].index; i <= last; i++) {
        const struct sim_entry *old = sim_disk_entry(d, i);
        const struct sim_inv_commit *c = sim_inv_committed(inv, i);
        if (old == NULL || c == NULL || old->term != c->term ||
            old->hash != c->hash)
            continue;
        if (i > e[n - 1].index)
            return sim_inv_fail(inv,
                                "committed entry deleted: n%u truncates its "
                                "log from index %" PRIu64 ", dropping "
                                "committed index %" PRIu64 " term %" PRIu64,
                                node, e[0].index, i, c->term);
        const struct raft_entry *ne = &e[i - e[0].index];
        if (ne->term != c->term ||
            sim_entry_hash(ne->type, ne->data, ne->len) != c->hash)
            return sim_inv_fail(inv,
                                "committed entry overwritten: n%u replaces "
                                "index %" PRIu64 " term %" PRIu64
                                " (committed, first applied by n%u) with "
                                "term %" PRIu64,
                                node, i, c->term, c->by, ne->term);
    }
    return 0;
}

int sim_inv_leader_complete(struct sim_inv *inv, raft_id node,
                            raft_term term, const struct sim_disk *d,
                            uint64_t since)
{
    raft_index last = sim_disk_last_index(d);
    for (raft_index i = d->snap.index + 1; i <= inv->max_committed; i++) {
        const struct sim_inv_commit *c = sim_inv_committed(inv, i);
        if (c == NULL || c->step >= since)
            continue;
        if (i > last)
            return sim_inv_fail(inv,
                                "leader completeness: n%u, leader of term %"
                                PRIu64 ", lacks committed index %" PRIu64
                                " (its log ends at %" PRIu64 ")",
                                node, term, i, last);
        const struct sim_entry *e = sim_disk_entry(d, i);
        if (e->term != c->term || e->hash != c->hash)
            return sim_inv_fail(inv,
                                "leader completeness: n%u, leader of term %"
                                PRIu64 ", holds index %" PRIu64 " term %"
                                PRIu64 " but term %" PRIu64
                                " was committed there",
                                node, term, i, e->term, c->term);
    }
    /* A snapshot covers only committed state: its term must agree. */
    const struct sim_inv_commit *c = sim_inv_committed(inv, d->snap.index);
    if (d->snap.index > 0 && c != NULL && c->term != d->snap.term)
        return sim_inv_fail(inv,
                            "leader completeness: n%u's snapshot at %" PRIu64
                            " has term %" PRIu64 ", committed term %" PRIu64,
                            node, d->snap.index, d->snap.term, c->term);
    return 0;
}

int sim_inv_log_matching(struct sim_inv *inv, raft_id ida,
                         const struct sim_disk *a, raft_id idb,
                         const struct sim_disk *b, raft_index window)
{
    raft_index lo = sim_disk_first_index(a);
    if (sim_disk_first_index(b) > lo)
        lo = sim_disk_first_index(b);
    raft_index hi = sim_disk_last_index(a);
    if (sim_disk_last_index(b) < hi)
        hi = sim_disk_last_index(b);
    if (hi < lo)
        return 0;
    raft_index floor = lo;
    if (window > 0 && hi - lo + 1 > window)
        floor = hi - window + 1;

    /* The highest index where the terms agree anchors the check. */
    raft_index i = hi;
    while (i >= floor) {
        if (sim_disk_entry(a, i)->term == sim_disk_entry(b, i)->term)
            break;
        if (i == floor)
            return 0;
        i--;
    }
    raft_index anchor = i;
    if (window > 0 && anchor - lo + 1 > window)
        floor = anchor - window + 1;
    else
        floor = lo;
    for (i = anchor;; i--) {
        const struct sim_entry *ea = sim_disk_entry(a, i);
        const struct sim_entry *eb = sim_disk_entry(b, i);
        if (ea->term != eb->term || ea->hash != eb->hash)
            return sim_inv_fail(inv,
                                "log matching: n%u and n%u agree at index %"
                                PRIu64 " (term %" PRIu64 ") but differ at %"
                                PRIu64 " (n%u term %" PRIu64 ", n%u term %"
                                PRIu64 "%s)",
                                ida, idb, anchor,
                                sim_disk_entry(a, anchor)->term, i, ida,
                                ea->term, idb, eb->term,
                                ea->term == eb->term ? ", other data" : "");
        if (i == floor)
            break;
    }
    return 0;
}

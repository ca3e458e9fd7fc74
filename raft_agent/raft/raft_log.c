/* raft_log.c — snapshot + stable storage + in-memory window; see raft_log.h. */
#include "raft_log.h"

#include <stdlib.h>
#include <string.h>

#include "raft_arena.h"

int raft_entries_push(struct raft_entry_sink *sink, const struct raft_entry *e)
{
    if (sink->err != RAFT_OK)
        return sink->err;
    if (e->index != sink->next ||
        (e->type != RAFT_ENTRY_NORMAL && e->type != RAFT_ENTRY_NOOP) ||
        (e->len > 0 && e->data == NULL)) {
        sink->err = RAFT_ERR_STORAGE;
        return sink->err;
    }
    if (sink->n == sink->cap) {
        size_t cap = sink->cap ? sink->cap * 2 : 16;
        struct raft_entry *ne = raft_arena_alloc(sink->arena,
                                                 cap * sizeof(*ne));
        if (ne == NULL) {
            sink->err = RAFT_ERR_NOMEM;
            return sink->err;
        }
        if (sink->n > 0)
            memcpy(ne, sink->ents, sink->n * sizeof(*ne));
        sink->ents = ne;
        sink->cap = cap;
    }
    struct raft_entry *d = &sink->ents[sink->n];
    *d = *e;
    d->data = NULL;
    if (e->len > 0) {
        d->data = raft_arena_dup(sink->arena, e->data, e->len);
        if (d->data == NULL) {
            sink->err = RAFT_ERR_NOMEM;
            return sink->err;
        }
    }
    sink->n++;
    sink->next++;
    sink->bytes += e->len;
    return RAFT_OK;
}

int raft_log_init(struct raft_log *l, const struct raft_storage *st,
                  void *ctx, raft_index applied)
{
    memset(l, 0, sizeof(*l));
    l->st = st;
    l->st_ctx = ctx;
    struct raft_hard_state hs;
    int rv = st->initial_state(ctx, &hs, &l->snap);
    if (rv != RAFT_OK)
        return RAFT_ERR_STORAGE;
    raft_index first, last;
    if (st->first_index(ctx, &first) != RAFT_OK ||
        st->last_index(ctx, &last) != RAFT_OK)
        return RAFT_ERR_STORAGE;
    if (first != l->snap.index + 1 || last + 1 < first)
        return RAFT_ERR_STORAGE;
    /* The state machine persists its applied index with its data, so it can
     * be ahead of the durable commit index but never behind the snapshot. */
    if (applied < l->snap.index || applied > last)
        return RAFT_ERR_INVALID;
    l->stable_last = last;
    l->unstable = last + 1;
    l->applied = applied;
    l->committed = hs.commit > applied ? hs.commit : applied;
    if (l->committed > last)
        return RAFT_ERR_STORAGE;
    return RAFT_OK;
}

static void win_drop_front(struct raft_log *l, size_t k)
{
    for (size_t i = 0; i < k; i++) {
        l->win_bytes -= l->win[i].len;
        free((void *)(uintptr_t)l->win[i].data);
    }
    memmove(l->win, l->win + k, (l->n_win - k) * sizeof(*l->win));
    l->n_win -= k;
    l->win_first += k;
}

static void win_drop_from(struct raft_log *l, size_t pos)
{
    for (size_t i = pos; i < l->n_win; i++) {
        l->win_bytes -= l->win[i].len;
        free((void *)(uintptr_t)l->win[i].data);
    }
    l->n_win = pos;
}

void raft_log_free(struct raft_log *l)
{
    win_drop_from(l, 0);
    free(l->win);
    l->win = NULL;
    l->cap_win = 0;
}

raft_index raft_log_last(const struct raft_log *l)
{
    if (l->n_win > 0)
        return l->win_first + l->n_win - 1;
    return l->stable_last;
}

raft_index raft_log_first(const struct raft_log *l)
{
    return l->snap.index + 1;
}

int raft_log_term(const struct raft_log *l, raft_index i, raft_term *out)
{
    if (i == l->snap.index) {
        *out = l->snap.term;
        return RAFT_OK;
    }
    if (i < l->snap.index)
        return RAFT_ERR_COMPACTED;
    if (i > raft_log_last(l))
        return RAFT_ERR_INVALID;
    if (l->n_win > 0 && i >= l->win_first) {
        *out = l->win[i - l->win_first].term;
        return RAFT_OK;
    }
    int rv = l->st->term(l->st_ctx, i, out);
    if (rv == RAFT_ERR_COMPACTED)
        return rv;
    return rv == RAFT_OK ? RAFT_OK : RAFT_ERR_STORAGE;
}

raft_term raft_log_last_term(const struct raft_log *l)
{
    raft_term t = 0;
    if (raft_log_term(l, raft_log_last(l), &t) != RAFT_OK)
        return 0;
    return t;
}

bool raft_log_match(const struct raft_log *l, raft_index i, raft_term t)
{
    raft_term have;
    return raft_log_term(l, i, &have) == RAFT_OK && have == t;
}

bool raft_log_up_to_date(const struct raft_log *l, raft_index last_index,
                         raft_term last_term)
{
    raft_term my = raft_log_last_term(l);
    return last_term > my ||
           (last_term == my && last_index >= raft_log_last(l));
}

raft_index raft_log_find_conflict(const struct raft_log *l,
                                  const struct raft_entry *ents, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        if (!raft_log_match(l, ents[k].index, ents[k].term))
            return ents[k].index;
    }
    return 0;
}

raft_index raft_log_find_conflict_by_term(const struct raft_log *l,
                                          raft_index index, raft_term term)
{
    raft_index last = raft_log_last(l);
    if (index > last)
        index = last;
    for (;;) {
        raft_term t;
        if (raft_log_term(l, index, &t) != RAFT_OK)
            return index; /* compacted: the snapshot point is the floor */
        if (t <= term || index == 0)
            return index;
        index--;
    }
}

static int win_reserve(struct raft_log *l, size_t extra)
{
    if (l->n_win + extra <= l->cap_win)
        return RAFT_OK;
    size_t cap = l->cap_win ? l->cap_win : 64;
    while (cap < l->n_win + extra)
        cap *= 2;
    struct raft_entry *w = realloc(l->win, cap * sizeof(*w));
    if (w == NULL)
        return RAFT_ERR_NOMEM;
    l->win = w;
    l->cap_win = cap;
    return RAFT_OK;
}

int raft_log_append(struct raft_log *l, const struct raft_entry *ents,
                    size_t n)
{
    if (n == 0)
        return RAFT_OK;
    raft_index at = ents[0].index;
    if (at <= l->snap.index || at > raft_log_last(l) + 1)
        return RAFT_ERR_INVALID;

    /* Copy the data first so a failed allocation changes nothing. */
    uint8_t **copies = calloc(n, sizeof(*copies));
    if (copies == NULL)
        return RAFT_ERR_NOMEM;
    for (size_t k = 0; k < n; k++) {
        if (ents[k].len == 0)
            continue;
        copies[k] = malloc(ents[k].len);
        if (copies[k] == NULL) {
            for (size_t j = 0; j < k; j++)
                free(copies[j]);
            free(copies);
            return RAFT_ERR_NOMEM;
        }
        memcpy(copies[k], ents[k].data, ents[k].len);
    }

    if (l->n_win > 0 && at >= l->win_first) {
        win_drop_from(l, at - l->win_first);
    } else {
        /* The new entries start at or before the window: it restarts. */
        win_drop_from(l, 0);
    }
    if (l->n_win == 0)
        l->win_first = at;
    if (win_reserve(l, n) != RAFT_OK) {
        for (size_t j = 0; j < n; j++)
            free(copies[j]);
        free(copies);
        return RAFT_ERR_NOMEM;
    }
    for (size_t k = 0; k < n; k++) {
        struct raft_entry *e = &l->win[l->n_win++];
        *e = ents[k];
        e->index = at + k;
        e->data = copies[k];
        l->win_bytes += e->len;
    }
    free(copies);
    if (at < l->unstable)
        l->unstable = at;
    return RAFT_OK;
}

int raft_log_entries(const struct raft_log *l, raft_index lo, raft_index hi,
                     size_t max_bytes, struct raft_entry_sink *sink)
{
    if (lo <= l->snap.index)
        return RAFT_ERR_COMPACTED;
    if (hi > raft_log_last(l) + 1 || lo > hi)
        return RAFT_ERR_INVALID;
    sink->next = lo;
    sink->max_bytes = max_bytes;
    raft_index win_lo = l->n_win > 0 ? l->win_first : raft_log_last(l) + 1;
    if (lo < win_lo) {
        raft_index shi = hi < win_lo ? hi : win_lo;
        int rv = l->st->entries(l->st_ctx, lo, shi, max_bytes, sink);
        if (rv == RAFT_ERR_COMPACTED)
            return rv;
        if (rv != RAFT_OK || sink->err != RAFT_OK)
            return sink->err != RAFT_OK ? sink->err : RAFT_ERR_STORAGE;
        if (sink->n == 0)
            return RAFT_ERR_STORAGE;
        if (sink->next < shi || sink->bytes >= max_bytes)
            return RAFT_OK; /* storage stopped at the byte budget */
    }
    for (raft_index i = sink->next; i < hi; i++) {
        if (sink->n > 0 && sink->bytes + l->win[i - win_lo].len > max_bytes)
            break;
        int rv = raft_entries_push(sink, &l->win[i - win_lo]);
        if (rv != RAFT_OK)
            return rv;
    }
    return RAFT_OK;
}

void raft_log_restore(struct raft_log *l, const struct raft_snapshot_meta *m)
{
    win_drop_from(l, 0);
    l->snap = *m;
    l->stable_last = m->index;
    l->unstable = m->index + 1;
    l->committed = m->index;
    /* The snapshot itself is what gets "applied" in the next batch. */
    l->applied = m->index;
}

void raft_log_stable_to(struct raft_log *l, raft_index index)
{
    /* Called from raft_advance() with the last entry of the batch just
     * persisted; nothing was appended or truncated since raft_ready(). */
    l->unstable = index + 1;
    l->stable_last = index;
}

void raft_log_compacted(struct raft_log *l,
                        const struct raft_snapshot_meta *meta)
{
    if (meta->index <= l->snap.index)
        return;
    l->snap = *meta;
    if (l->n_win > 0 && l->win_first <= meta->index) {
        raft_index last = raft_log_last(l);
        size_t k = meta->index < last ? meta->index + 1 - l->win_first
                                      : l->n_win;
        win_drop_front(l, k);
        if (l->n_win == 0)
            l->win_first = meta->index + 1;
    }
}

void raft_log_trim(struct raft_log *l, raft_index keep_from, size_t max_bytes)
{
    if (l->n_win == 0)
        return;
    /* Only durable, applied entries may leave memory. */
    raft_index limit = l->unstable < l->applied + 1 ? l->unstable
                                                    : l->applied + 1;
    raft_index soft = keep_from < limit ? keep_from : limit;
    size_t k = 0, bytes = l->win_bytes;
    while (k < l->n_win && l->win_first + k < limit &&
           (l->win_first + k < soft || bytes > max_bytes)) {
        bytes -= l->win[k].len;
        k++;
    }
    if (k > 0)
        win_drop_front(l, k);
}

/*
 * storage_log.c — the Raft log in LMDB: loading, the struct raft_storage
 * callbacks, the group-commit append and compaction; see storage.h.
 */
#include <stdio.h>
#include <string.h>

#include "storage.h"
#include "storage_internal.h"

/* The long-lived read txn: renewed for each use, reset after, so it holds
 * a reader slot but no snapshot between calls. */
static int rtxn_get(struct agenda_storage *s, MDB_txn **txn)
{
    if (s->env == NULL)
        return AGENDA_STORAGE_CLOSED;
    if (s->rtxn != NULL) {
        int rc = mdb_txn_renew(s->rtxn);
        if (rc == MDB_SUCCESS) {
            *txn = s->rtxn;
            return AGENDA_STORAGE_OK;
        }
        mdb_txn_abort(s->rtxn);
        s->rtxn = NULL;
    }
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &s->rtxn);
    if (rc != MDB_SUCCESS) {
        s->rtxn = NULL;
        return storage_fail(s, "mdb_txn_begin (log read)", rc);
    }
    *txn = s->rtxn;
    return AGENDA_STORAGE_OK;
}

static void rtxn_done(struct agenda_storage *s)
{
    mdb_txn_reset(s->rtxn);
}

static int corrupt(struct agenda_storage *s, raft_index i, const char *what)
{
    snprintf(s->errmsg, sizeof(s->errmsg), "log entry %llu: %s",
             (unsigned long long)i, what);
    return AGENDA_STORAGE_CORRUPT;
}

int storage_entry_decode(const MDB_val *key, const MDB_val *val,
                         struct raft_entry *e)
{
    uint64_t index;
    if (key->mv_size != sizeof(index) || val->mv_size < STORAGE_ENTRY_HDR ||
        val->mv_size - STORAGE_ENTRY_HDR > UINT32_MAX)
        return AGENDA_STORAGE_CORRUPT;
    memcpy(&index, key->mv_data, sizeof(index));
    const uint8_t *p = val->mv_data;
    uint8_t type = p[8];
    if (type != RAFT_ENTRY_NORMAL && type != RAFT_ENTRY_NOOP)
        return AGENDA_STORAGE_CORRUPT;
    e->index = index;
    e->term = storage_get_u64(p);
    e->type = type;
    e->len = (uint32_t)(val->mv_size - STORAGE_ENTRY_HDR);
    e->data = e->len > 0 ? p + STORAGE_ENTRY_HDR : NULL;
    return AGENDA_STORAGE_OK;
}

/* Read entry i in txn (which must see it): 0, or CORRUPT for a missing or
 * malformed record. */
static int log_get(struct agenda_storage *s, MDB_txn *txn, raft_index i,
                   struct raft_entry *e)
{
    uint64_t k = i;
    MDB_val key = { sizeof(k), &k };
    MDB_val val;
    int rc = mdb_get(txn, s->log_dbi, &key, &val);
    if (rc == MDB_NOTFOUND)
        return corrupt(s, i, "missing inside first..last");
    if (rc != MDB_SUCCESS)
        return storage_fail(s, "mdb_get log", rc);
    if (storage_entry_decode(&key, &val, e) != AGENDA_STORAGE_OK ||
        e->index != i)
        return corrupt(s, i, "malformed record");
    return AGENDA_STORAGE_OK;
}

/* Bounds of the stored log: *n == 0 when empty. */
static int log_bounds(struct agenda_storage *s, MDB_txn *txn,
                      raft_index *lo, struct raft_entry *hi, size_t *n)
{
    MDB_cursor *cur;
    MDB_val k, v;
    MDB_stat st;
    int rc = mdb_stat(txn, s->log_dbi, &st);
    if (rc != MDB_SUCCESS)
        return storage_fail(s, "mdb_stat log", rc);
    *n = st.ms_entries;
    if (*n == 0)
        return AGENDA_STORAGE_OK;
    rc = mdb_cursor_open(txn, s->log_dbi, &cur);
    if (rc != MDB_SUCCESS)
        return storage_fail(s, "mdb_cursor_open log", rc);
    rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    if (rc == MDB_SUCCESS && k.mv_size != sizeof(*lo))
        rc = MDB_CORRUPTED;
    if (rc == MDB_SUCCESS) {
        memcpy(lo, k.mv_data, sizeof(*lo));
        rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    }
    int r = AGENDA_STORAGE_OK;
    if (rc != MDB_SUCCESS)
        r = storage_fail(s, "reading log bounds", rc);
    else if (storage_entry_decode(&k, &v, hi) != AGENDA_STORAGE_OK)
        r = corrupt(s, 0, "last record malformed");
    mdb_cursor_close(cur);
    return r;
}

int storage_load(struct agenda_storage *s)
{
    MDB_txn *txn;
    struct storage_meta m;
    struct raft_entry hi = { 0 };
    raft_index lo = 0;
    size_t n = 0;
    int rc = rtxn_get(s, &txn);
    if (rc != AGENDA_STORAGE_OK)
        return rc;
    rc = storage_meta_read(txn, s->meta_dbi, &m);
    if (rc != AGENDA_STORAGE_OK) {
        snprintf(s->errmsg, sizeof(s->errmsg), "reading meta: %s",
                 agenda_storage_strerror(rc));
        goto out;
    }
    if ((rc = log_bounds(s, txn, &lo, &hi, &n)) != AGENDA_STORAGE_OK)
        goto out;
    if (m.snap.index == UINT64_MAX || m.applied < m.snap.index) {
        rc = AGENDA_STORAGE_CORRUPT;
        snprintf(s->errmsg, sizeof(s->errmsg),
                 "meta: applied %llu below snapshot %llu",
                 (unsigned long long)m.applied,
                 (unsigned long long)m.snap.index);
        goto out;
    }
    if (n > 0 && (lo != m.snap.index + 1 || hi.index < lo ||
                  hi.index - lo + 1 != n || hi.term < m.snap.term)) {
        rc = AGENDA_STORAGE_CORRUPT;
        snprintf(s->errmsg, sizeof(s->errmsg),
                 "log %llu..%llu (%zu records) does not follow snapshot "
                 "%llu without gaps", (unsigned long long)lo,
                 (unsigned long long)hi.index, n,
                 (unsigned long long)m.snap.index);
        goto out;
    }
    s->hs = m.hs;
    s->snap = m.snap;
    s->applied = m.applied;
    s->applied_term = m.applied_term;
    s->first = m.snap.index + 1;
    s->last = n > 0 ? hi.index : m.snap.index;
    s->last_term = n > 0 ? hi.term : m.snap.term;
out:
    rtxn_done(s);
    return rc;
}

/* --- struct raft_storage ------------------------------------------------ */

static int to_raft(int err)
{
    switch (err) {
    case AGENDA_STORAGE_OK:
        return RAFT_OK;
    case AGENDA_STORAGE_COMPACTED:
        return RAFT_ERR_COMPACTED;
    case AGENDA_STORAGE_NOMEM:
        return RAFT_ERR_NOMEM;
    case AGENDA_STORAGE_INVALID:
    case AGENDA_STORAGE_UNAVAILABLE:
        return RAFT_ERR_INVALID;
    default:
        return RAFT_ERR_STORAGE;
    }
}

static int ops_initial_state(void *ctx, struct raft_hard_state *hs,
                             struct raft_snapshot_meta *snap)
{
    struct agenda_storage *s = ctx;
    if (s->env == NULL)
        return RAFT_ERR_STORAGE;
    *hs = s->hs;
    *snap = s->snap;
    return RAFT_OK;
}

static int ops_first_index(void *ctx, raft_index *out)
{
    struct agenda_storage *s = ctx;
    if (s->env == NULL)
        return RAFT_ERR_STORAGE;
    *out = s->first;
    return RAFT_OK;
}

static int ops_last_index(void *ctx, raft_index *out)
{
    struct agenda_storage *s = ctx;
    if (s->env == NULL)
        return RAFT_ERR_STORAGE;
    *out = s->last;
    return RAFT_OK;
}

static int storage_term(struct agenda_storage *s, raft_index i,
                        raft_term *out)
{
    if (s->env == NULL)
        return AGENDA_STORAGE_CLOSED;
    if (i == s->snap.index) {
        *out = s->snap.term;
        return AGENDA_STORAGE_OK;
    }
    if (i < s->snap.index)
        return AGENDA_STORAGE_COMPACTED;
    if (i > s->last)
        return AGENDA_STORAGE_UNAVAILABLE;
    if (i == s->last) {
        *out = s->last_term;
        return AGENDA_STORAGE_OK;
    }
    MDB_txn *txn;
    struct raft_entry e;
    int rc = rtxn_get(s, &txn);
    if (rc != AGENDA_STORAGE_OK)
        return rc;
    rc = log_get(s, txn, i, &e);
    rtxn_done(s);
    if (rc == AGENDA_STORAGE_OK)
        *out = e.term;
    return rc;
}

static int ops_term(void *ctx, raft_index i, raft_term *out)
{
    return to_raft(storage_term(ctx, i, out));
}

static int ops_entries(void *ctx, raft_index lo, raft_index hi,
                       size_t max_bytes, struct raft_entry_sink *sink)
{
    struct agenda_storage *s = ctx;
    if (s->env == NULL)
        return RAFT_ERR_STORAGE;
    if (lo <= s->snap.index)
        return RAFT_ERR_COMPACTED;
    if (hi > s->last + 1 || lo > hi)
        return RAFT_ERR_INVALID;
    if (lo == hi)
        return RAFT_OK;

    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = rtxn_get(s, &txn);
    if (rc != AGENDA_STORAGE_OK)
        return to_raft(rc);
    rc = mdb_cursor_open(txn, s->log_dbi, &cur);
    if (rc != MDB_SUCCESS) {
        rtxn_done(s);
        return to_raft(storage_fail(s, "mdb_cursor_open log", rc));
    }
    uint64_t k = lo;
    MDB_val key = { sizeof(k), &k };
    MDB_val val;
    MDB_cursor_op op = MDB_SET_KEY;
    size_t bytes = 0;
    int r = RAFT_OK;
    for (raft_index i = lo; i < hi; i++, op = MDB_NEXT) {
        struct raft_entry e;
        rc = mdb_cursor_get(cur, &key, &val, op);
        if (rc == MDB_NOTFOUND) {
            r = to_raft(corrupt(s, i, "missing inside first..last"));
            break;
        }
        if (rc != MDB_SUCCESS) {
            r = to_raft(storage_fail(s, "mdb_cursor_get log", rc));
            break;
        }
        if (storage_entry_decode(&key, &val, &e) != AGENDA_STORAGE_OK ||
            e.index != i) {
            r = to_raft(corrupt(s, i, "malformed record"));
            break;
        }
        /* Stay within the byte budget, but always return one entry so
         * that a large entry still makes progress. */
        if (i > lo && e.len > max_bytes - bytes)
            break;
        r = raft_entries_push(sink, &e);
        if (r != RAFT_OK)
            break;
        bytes += e.len;
        if (bytes >= max_bytes)
            break;
    }
    mdb_cursor_close(cur);
    rtxn_done(s);
    return r;
}

static const struct raft_storage storage_raft_ops = {
    .initial_state = ops_initial_state,
    .first_index = ops_first_index,
    .last_index = ops_last_index,
    .term = ops_term,
    .entries = ops_entries,
};

const struct raft_storage *agenda_storage_raft_ops(void)
{
    return &storage_raft_ops;
}

/* --- writes --------------------------------------------------------------- */

static int check_batch(struct agenda_storage *s,
                       const struct raft_hard_state *hs,
                       const struct raft_entry *ents, size_t n)
{
    if (hs != NULL && hs->term < s->hs.term) {
        snprintf(s->errmsg, sizeof(s->errmsg),
                 "persist: hard state term %llu below stored %llu",
                 (unsigned long long)hs->term,
                 (unsigned long long)s->hs.term);
        return AGENDA_STORAGE_INVALID;
    }
    if (n == 0)
        return AGENDA_STORAGE_OK;
    if (ents == NULL)
        return AGENDA_STORAGE_INVALID;
    raft_index first = ents[0].index;
    const char *why = NULL;
    if (first <= s->snap.index)
        why = "first entry is inside the snapshot";
    else if (first > s->last + 1)
        why = "first entry leaves a gap after the last index";
    else if (first <= s->last && first <= s->hs.commit)
        why = "would truncate committed entries";
    else if (first - 1 == s->last && ents[0].term < s->last_term)
        why = "term below the term of the preceding entry";
    for (size_t i = 0; why == NULL && i < n; i++) {
        const struct raft_entry *e = &ents[i];
        if (e->index != first + i)
            why = "entries are not contiguous";
        else if (e->type != RAFT_ENTRY_NORMAL && e->type != RAFT_ENTRY_NOOP)
            why = "unknown entry type";
        else if (e->len > 0 && e->data == NULL)
            why = "entry data missing";
        else if (i > 0 && e->term < ents[i - 1].term)
            why = "terms decrease";
    }
    if (why != NULL) {
        snprintf(s->errmsg, sizeof(s->errmsg), "persist at %llu: %s",
                 (unsigned long long)first, why);
        return AGENDA_STORAGE_INVALID;
    }
    return AGENDA_STORAGE_OK;
}

/* Delete stored entries with index >= from, from the end backwards. */
static int log_truncate(MDB_cursor *cur, raft_index from)
{
    MDB_val k, v;
    for (;;) {
        int rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
        if (rc == MDB_NOTFOUND)
            return MDB_SUCCESS;
        if (rc != MDB_SUCCESS)
            return rc;
        uint64_t idx;
        if (k.mv_size != sizeof(idx))
            return MDB_CORRUPTED;
        memcpy(&idx, k.mv_data, sizeof(idx));
        if (idx < from)
            return MDB_SUCCESS;
        if ((rc = mdb_cursor_del(cur, 0)) != MDB_SUCCESS)
            return rc;
    }
}

static int log_append(MDB_cursor *cur, const struct raft_entry *ents,
                      size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t k = ents[i].index;
        MDB_val key = { sizeof(k), &k };
        MDB_val val = { STORAGE_ENTRY_HDR + (size_t)ents[i].len, NULL };
        /* Keys only grow after the truncation, so MDB_APPEND fills pages
         * sequentially; MDB_RESERVE lets us encode in place. */
        int rc = mdb_cursor_put(cur, &key, &val, MDB_APPEND | MDB_RESERVE);
        if (rc != MDB_SUCCESS)
            return rc;
        uint8_t *p = val.mv_data;
        storage_put_u64(p, ents[i].term);
        p[8] = ents[i].type;
        if (ents[i].len > 0)
            memcpy(p + STORAGE_ENTRY_HDR, ents[i].data, ents[i].len);
    }
    return MDB_SUCCESS;
}

/* Write a checked batch (log suffix and hard state) into txn. */
static int persist_into(struct agenda_storage *s, MDB_txn *txn,
                        const struct raft_hard_state *hs,
                        const struct raft_entry *ents, size_t n)
{
    MDB_cursor *cur = NULL;
    const char *what = "persist: mdb_cursor_open";
    int rc = MDB_SUCCESS;
    if (n > 0) {
        rc = mdb_cursor_open(txn, s->log_dbi, &cur);
        if (rc == MDB_SUCCESS && ents[0].index <= s->last) {
            what = "persist: truncating log";
            rc = log_truncate(cur, ents[0].index);
        }
        if (rc == MDB_SUCCESS) {
            what = "persist: appending";
            rc = log_append(cur, ents, n);
        }
    }
    if (rc == MDB_SUCCESS && hs != NULL) {
        what = "persist: saving hard state";
        rc = storage_meta_put_hs(txn, s->meta_dbi, hs);
    }
    if (cur != NULL)
        mdb_cursor_close(cur);
    if (rc != MDB_SUCCESS)
        return storage_fail(s, what, rc);
    /* The caches follow once the transaction commits. */
    s->pending.active = true;
    s->pending.has_entries = n > 0;
    if (n > 0) {
        s->pending.last = ents[n - 1].index;
        s->pending.last_term = ents[n - 1].term;
    }
    s->pending.has_hs = hs != NULL;
    if (hs != NULL)
        s->pending.hs = *hs;
    return AGENDA_STORAGE_OK;
}

void storage_pending_apply(struct agenda_storage *s)
{
    if (s->pending.active) {
        if (s->pending.has_entries) {
            s->last = s->pending.last;
            s->last_term = s->pending.last_term;
        }
        if (s->pending.has_hs)
            s->hs = s->pending.hs;
    }
    /* nothing of this transaction (its batch flag included) outlives it */
    memset(&s->pending, 0, sizeof(s->pending));
}

int agenda_storage_persist(struct agenda_storage *s,
                           const struct raft_hard_state *hs,
                           const struct raft_entry *ents, size_t n)
{
    if (s->env == NULL)
        return AGENDA_STORAGE_CLOSED;
    if (s->wtxn_open)
        return AGENDA_STORAGE_BUSY;
    if (n == 0 && hs == NULL)
        return AGENDA_STORAGE_OK;
    int rc = check_batch(s, hs, ents, n);
    if (rc != AGENDA_STORAGE_OK)
        return rc;

    MDB_txn *txn;
    rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc != MDB_SUCCESS)
        return storage_fail(s, "mdb_txn_begin (persist)", rc);
    rc = persist_into(s, txn, hs, ents, n);
    if (rc != AGENDA_STORAGE_OK) {
        memset(&s->pending, 0, sizeof(s->pending));
        mdb_txn_abort(txn);
        return rc;
    }
    rc = storage_commit(s, txn);
    if (rc != AGENDA_STORAGE_OK) {
        memset(&s->pending, 0, sizeof(s->pending));
        return rc;
    }
    storage_pending_apply(s);
    return AGENDA_STORAGE_OK;
}

int agenda_storage_batch_begin(struct agenda_storage *s,
                               const struct raft_hard_state *hs,
                               const struct raft_entry *ents, size_t n,
                               MDB_txn **txn)
{
    if (txn == NULL)
        return AGENDA_STORAGE_INVALID;
    *txn = NULL;
    if (s->env == NULL)
        return AGENDA_STORAGE_CLOSED;
    if (s->wtxn_open)
        return AGENDA_STORAGE_BUSY;
    int rc = (n == 0 && hs == NULL) ? AGENDA_STORAGE_OK
                                    : check_batch(s, hs, ents, n);
    if (rc != AGENDA_STORAGE_OK)
        return rc;
    rc = agenda_storage_apply_begin(s, txn);
    if (rc != AGENDA_STORAGE_OK)
        return rc;
    s->pending.batch = true;
    if (n == 0 && hs == NULL)
        return rc;
    rc = persist_into(s, *txn, hs, ents, n);
    if (rc != AGENDA_STORAGE_OK) {
        agenda_storage_apply_abort(s, *txn);
        *txn = NULL;
    }
    return rc;
}

int agenda_storage_compact(struct agenda_storage *s, raft_index upto)
{
    if (s->env == NULL)
        return AGENDA_STORAGE_CLOSED;
    if (s->wtxn_open)
        return AGENDA_STORAGE_BUSY;
    if (upto <= s->first)
        return AGENDA_STORAGE_OK;
    if (upto > s->applied + 1 || upto > s->last + 1) {
        snprintf(s->errmsg, sizeof(s->errmsg),
                 "compact to %llu: beyond applied %llu or last %llu",
                 (unsigned long long)upto, (unsigned long long)s->applied,
                 (unsigned long long)s->last);
        return AGENDA_STORAGE_INVALID;
    }
    raft_term t;
    int rc = storage_term(s, upto - 1, &t);
    if (rc != AGENDA_STORAGE_OK)
        return rc;

    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc != MDB_SUCCESS)
        return storage_fail(s, "mdb_txn_begin (compact)", rc);
    rc = mdb_cursor_open(txn, s->log_dbi, &cur);
    while (rc == MDB_SUCCESS) {
        uint64_t idx;
        rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
        if (rc != MDB_SUCCESS)
            break;
        if (k.mv_size != sizeof(idx)) {
            rc = MDB_CORRUPTED;
            break;
        }
        memcpy(&idx, k.mv_data, sizeof(idx));
        if (idx >= upto)
            break;
        rc = mdb_cursor_del(cur, 0);
    }
    if (rc == MDB_NOTFOUND)
        rc = MDB_SUCCESS;
    if (rc == MDB_SUCCESS)
        mdb_cursor_close(cur);
    if (rc == MDB_SUCCESS)
        rc = storage_meta_put_pair(txn, s->meta_dbi, STORAGE_KEY_SNAPSHOT,
                                   upto - 1, t);
    if (rc != MDB_SUCCESS) {
        mdb_txn_abort(txn);
        return storage_fail(s, "compact", rc);
    }
    rc = storage_commit(s, txn);
    if (rc != AGENDA_STORAGE_OK)
        return rc;
    s->snap.index = upto - 1;
    s->snap.term = t;
    s->first = upto;
    return AGENDA_STORAGE_OK;
}

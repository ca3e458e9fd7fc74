/* session.c — exactly-once application of client commands; see session.h. */
#include "session.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "command.h"

/* Stored result: u64 index, u64 time, u16 status, body (LE). */
#define RESULT_HDR 18

/* A key of sessions_log: big-endian time (sorts by time) ‖ request id. */
#define TIME_KEY_MAX (8 + AGENDA_REQUEST_ID_MAX)

/* Expired ids are forgotten in batches: a command forgets the ids older
 * than its cutoff rounded down to a multiple of EXPIRE_STEP_MS, at most
 * EXPIRE_BATCH of them (bounded work per apply), so the commands of one
 * step after the first find nothing to forget.  Forgetting up to 16 ids
 * per command (about one) rewrote the first pages of sessions_log in
 * every commit; a batch rewrites them once a step.  The cutoff is the
 * leader's time in the command, the same on every replica: replicas
 * forget the same ids whatever they forgot before (an older agent, during
 * a rolling upgrade, forgot at every command). */
#define EXPIRE_STEP_MS 250
#define EXPIRE_BATCH 1024

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static int decode_result(const MDB_val *v, struct sm_result *res)
{
    if (v->mv_size < RESULT_HDR)
        return MDB_CORRUPTED;
    const uint8_t *p = v->mv_data;
    res->status = p[16] | (p[17] << 8);
    agenda_buf_reset(&res->body);
    if (agenda_buf_append(&res->body, p + RESULT_HDR,
                          v->mv_size - RESULT_HDR) != 0)
        return ENOMEM;
    return 0;
}

static size_t time_key(uint8_t *out, uint64_t t, const void *id,
                       size_t id_len)
{
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)(t >> (8 * (7 - i)));
    memcpy(out + 8, id, id_len);
    return 8 + id_len;
}

/* Whether k can be a key of sessions_log (read from disk: untrusted). */
static bool time_key_valid(const MDB_val *k)
{
    return k->mv_size > 8 && k->mv_size <= TIME_KEY_MAX;
}

static uint64_t key_time(const MDB_val *k)
{
    const uint8_t *p = k->mv_data;
    uint64_t t = 0;
    for (int i = 0; i < 8; i++)
        t = (t << 8) | p[i];
    return t;
}

/* The index's hash of the request id in a valid sessions_log key. */
static uint64_t key_hash(const struct agenda_sessions *s, const MDB_val *k)
{
    return agenda_session_index_hash(&s->index, (uint8_t *)k->mv_data + 8,
                                     k->mv_size - 8);
}

/* Moves the layout of older agents ("sessions" by id, "sessions_time")
 * into sessions_log, in txn, and drops it. */
static int migrate_old_layout(struct agenda_sessions *s, MDB_txn *txn)
{
    MDB_dbi ids, by_time;
    int rc = mdb_dbi_open(txn, "sessions", 0, &ids);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return rc;
    rc = mdb_dbi_open(txn, "sessions_time", 0, &by_time);
    if (rc != 0)
        return rc; /* one without the other: not a layout we wrote */
    MDB_cursor *cur;
    rc = mdb_cursor_open(txn, by_time, &cur);
    if (rc != 0)
        return rc;
    MDB_val k, v;
    while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
        if (!time_key_valid(&k)) {
            rc = MDB_CORRUPTED;
            break;
        }
        MDB_val id = {k.mv_size - 8, (uint8_t *)k.mv_data + 8}, res;
        rc = mdb_get(txn, ids, &id, &res);
        if (rc == MDB_NOTFOUND)
            continue; /* forgotten already */
        if (rc == 0)
            rc = mdb_put(txn, s->log, &k, &res, 0);
        if (rc != 0)
            break;
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND)
        return rc;
    rc = mdb_drop(txn, ids, 1);
    return rc == 0 ? mdb_drop(txn, by_time, 1) : rc;
}

static int rebuild_index(struct agenda_sessions *s, MDB_txn *txn)
{
    agenda_session_index_clear(&s->index);
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, s->log, &cur);
    if (rc != 0)
        return rc;
    MDB_val k, v;
    while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
        if (!time_key_valid(&k)) {
            rc = MDB_CORRUPTED;
            break;
        }
        uint64_t h = key_hash(s, &k);
        if (agenda_session_index_load(&s->index, h, key_time(&k)) != 0) {
            rc = ENOMEM;
            break;
        }
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int agenda_sessions_open(struct agenda_sessions *s, MDB_txn *txn)
{
    if (!s->index_ready) {
        if (agenda_session_index_init(&s->index) != 0)
            return ENOSYS;
        s->index_ready = true;
    }
    if (s->retention_ms == 0)
        s->retention_ms = AGENDA_SESSION_RETENTION_MS;
    int rc = mdb_dbi_open(txn, "sessions_log", MDB_CREATE, &s->log);
    if (rc == 0)
        rc = migrate_old_layout(s, txn);
    if (rc == 0)
        rc = rebuild_index(s, txn);
    return rc;
}

void agenda_sessions_committed(struct agenda_sessions *s)
{
    agenda_session_index_commit(&s->index);
}

void agenda_sessions_aborted(struct agenda_sessions *s)
{
    agenda_session_index_abort(&s->index);
}

void agenda_sessions_close(struct agenda_sessions *s)
{
    if (s->index_ready)
        agenda_session_index_free(&s->index);
    s->index_ready = false;
}

/* The stored result of id (at most AGENDA_REQUEST_ID_MAX bytes), found
 * through the index.  Returns 0 (in *v), MDB_NOTFOUND or an LMDB error. */
static int find_result(struct agenda_sessions *s, MDB_txn *txn,
                       const void *id, size_t id_len, uint64_t hash,
                       MDB_val *v)
{
    uint8_t key[TIME_KEY_MAX];
    uint64_t t;
    size_t pos = 0;
    while (agenda_session_index_next(&s->index, hash, &pos, &t)) {
        MDB_val k = {time_key(key, t, id, id_len), key};
        int rc = mdb_get(txn, s->log, &k, v);
        if (rc != MDB_NOTFOUND)
            return rc;
    }
    return MDB_NOTFOUND;
}

int agenda_sessions_lookup(struct agenda_sessions *s, MDB_txn *txn,
                           const char *request_id, struct sm_result *res)
{
    size_t len = strlen(request_id);
    MDB_val v;
    if (len > AGENDA_REQUEST_ID_MAX) /* decoded commands never are */
        return MDB_NOTFOUND;
    int rc = find_result(s, txn, request_id, len,
                         agenda_session_index_hash(&s->index, request_id,
                                                   len), &v);
    return rc != 0 ? rc : decode_result(&v, res);
}

/* Forgets at most EXPIRE_BATCH ids older than the retention, rounded down
 * to a step, oldest first: the first rows of sessions_log. */
static int expire_old(struct agenda_sessions *s, MDB_txn *txn, uint64_t now)
{
    if (now < s->retention_ms)
        return 0;
    uint64_t cutoff = now - s->retention_ms;
    cutoff -= cutoff % EXPIRE_STEP_MS;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, s->log, &cur);
    if (rc != 0)
        return rc;
    MDB_val k, v;
    MDB_cursor_op op = MDB_FIRST; /* then MDB_NEXT: see feed.c trimming */
    for (int n = 0; n < EXPIRE_BATCH; n++) {
        rc = mdb_cursor_get(cur, &k, &v, op);
        op = MDB_NEXT;
        if (rc == MDB_NOTFOUND) {
            rc = 0;
            break;
        }
        if (rc != 0)
            break;
        if (!time_key_valid(&k)) {
            rc = MDB_CORRUPTED;
            break;
        }
        uint64_t t = key_time(&k);
        if (t >= cutoff)
            break;
        uint64_t h = key_hash(s, &k);
        if (agenda_session_index_remove_later(&s->index, h, t) != 0) {
            rc = ENOMEM;
            break;
        }
        rc = mdb_cursor_del(cur, 0);
        if (rc != 0)
            break;
    }
    mdb_cursor_close(cur);
    return rc;
}

int agenda_sessions_apply(struct agenda_sessions *s, const struct sm_ops *ops,
                          void *sm, MDB_txn *txn, uint64_t index,
                          const uint8_t *entry, size_t len,
                          struct sm_result *res, bool *duplicate)
{
    struct agenda_command cmd;
    *duplicate = false;
    agenda_buf_reset(&res->body);
    int drc = agenda_command_decode(entry, len, &cmd);
    if (drc == AGENDA_COMMAND_NEWER)
        return MDB_VERSION_MISMATCH; /* stop here: see command.h */
    if (drc != 0) {
        res->status = 400;
        return agenda_buf_printf(&res->body,
                                 "{\"error\":{\"code\":\"bad_command\","
                                 "\"message\":\"malformed command "
                                 "envelope\"}}") == 0 ? 0 : ENOMEM;
    }
    uint64_t hash = agenda_session_index_hash(&s->index, cmd.request_id,
                                              cmd.request_id_len);
    MDB_val v;
    int rc = find_result(s, txn, cmd.request_id, cmd.request_id_len, hash,
                         &v);
    if (rc == 0) {
        *duplicate = true;
        return decode_result(&v, res);
    }
    if (rc != MDB_NOTFOUND)
        return rc;

    struct sm_apply_info info = {
        .index = index, .time_ms = cmd.time_ms,
        .request_id = cmd.request_id, .command_version = cmd.version};
    rc = ops->apply(sm, txn, &info, cmd.payload, cmd.payload_len, res);
    if (rc != 0)
        return rc;

    size_t body = res->body.len <= AGENDA_SESSION_BODY_MAX ? res->body.len
                                                           : 0;
    uint8_t key[TIME_KEY_MAX];
    MDB_val k = {time_key(key, cmd.time_ms, cmd.request_id,
                          cmd.request_id_len), key};
    v.mv_size = RESULT_HDR + body;
    rc = mdb_put(txn, s->log, &k, &v, MDB_RESERVE);
    if (rc != 0)
        return rc;
    uint8_t *p = v.mv_data;
    put_u64(p, index);
    put_u64(p + 8, cmd.time_ms);
    p[16] = (uint8_t)(res->status & 0xff);
    p[17] = (uint8_t)((res->status >> 8) & 0xff);
    if (body > 0)
        memcpy(p + RESULT_HDR, res->body.data, body);
    /* at once: a later command of this batch may retry the same id */
    if (agenda_session_index_add(&s->index, hash, cmd.time_ms) != 0)
        return ENOMEM;
    return expire_old(s, txn, cmd.time_ms);
}

int agenda_sessions_digest(struct agenda_sessions *s, MDB_txn *txn,
                           void *evp_md_ctx)
{
    EVP_MD_CTX *ctx = evp_md_ctx;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, s->log, &cur);
    if (rc != 0)
        return rc;
    MDB_val k, v;
    while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
        uint8_t lens[16];
        put_u64(lens, k.mv_size);
        put_u64(lens + 8, v.mv_size);
        EVP_DigestUpdate(ctx, lens, sizeof(lens));
        EVP_DigestUpdate(ctx, k.mv_data, k.mv_size);
        EVP_DigestUpdate(ctx, v.mv_data, v.mv_size);
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

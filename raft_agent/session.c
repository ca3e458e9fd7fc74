/* session.c — exactly-once application of client commands; see session.h. */
#include "session.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "command.h"

/* Stored result: u64 index, u64 time, u16 status, body (LE). */
#define RESULT_HDR 18

/* How many expired ids one command may forget (bounded work per apply). */
#define EXPIRE_PER_APPLY 16

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

int agenda_sessions_open(struct agenda_sessions *s, MDB_txn *txn)
{
    int rc = mdb_dbi_open(txn, "sessions", MDB_CREATE, &s->ids);
    if (rc == 0)
        rc = mdb_dbi_open(txn, "sessions_time", MDB_CREATE, &s->by_time);
    if (s->retention_ms == 0)
        s->retention_ms = AGENDA_SESSION_RETENTION_MS;
    return rc;
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

int agenda_sessions_lookup(struct agenda_sessions *s, MDB_txn *txn,
                           const char *request_id, struct sm_result *res)
{
    MDB_val k = {strlen(request_id), (void *)(uintptr_t)request_id}, v;
    int rc = mdb_get(txn, s->ids, &k, &v);
    if (rc != 0)
        return rc;
    return decode_result(&v, res);
}

static void time_key(uint8_t *out, uint64_t t, const struct agenda_command *c)
{
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)(t >> (8 * (7 - i))); /* big-endian: sorts by time */
    memcpy(out + 8, c->request_id, c->request_id_len);
}

static int expire_old(struct agenda_sessions *s, MDB_txn *txn, uint64_t now)
{
    if (now < s->retention_ms)
        return 0;
    uint64_t cutoff = now - s->retention_ms;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, s->by_time, &cur);
    if (rc != 0)
        return rc;
    MDB_val k, v;
    for (int n = 0; n < EXPIRE_PER_APPLY; n++) {
        rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
        if (rc == MDB_NOTFOUND) {
            rc = 0;
            break;
        }
        if (rc != 0)
            break;
        if (k.mv_size < 8) {
            rc = MDB_CORRUPTED;
            break;
        }
        const uint8_t *p = k.mv_data;
        uint64_t t = 0;
        for (int i = 0; i < 8; i++)
            t = (t << 8) | p[i];
        if (t >= cutoff)
            break;
        MDB_val id = {k.mv_size - 8, (uint8_t *)k.mv_data + 8};
        rc = mdb_del(txn, s->ids, &id, NULL);
        if (rc != 0 && rc != MDB_NOTFOUND)
            break;
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
    if (agenda_command_decode(entry, len, &cmd) != 0) {
        res->status = 400;
        return agenda_buf_printf(&res->body,
                                 "{\"error\":{\"code\":\"bad_command\","
                                 "\"message\":\"malformed command "
                                 "envelope\"}}") == 0 ? 0 : ENOMEM;
    }
    MDB_val k = {cmd.request_id_len, cmd.request_id}, v;
    int rc = mdb_get(txn, s->ids, &k, &v);
    if (rc == 0) {
        *duplicate = true;
        return decode_result(&v, res);
    }
    if (rc != MDB_NOTFOUND)
        return rc;

    struct sm_apply_info info = {
        .index = index, .time_ms = cmd.time_ms,
        .request_id = cmd.request_id};
    rc = ops->apply(sm, txn, &info, cmd.payload, cmd.payload_len, res);
    if (rc != 0)
        return rc;

    size_t body = res->body.len <= AGENDA_SESSION_BODY_MAX ? res->body.len
                                                           : 0;
    v.mv_size = RESULT_HDR + body;
    rc = mdb_put(txn, s->ids, &k, &v, MDB_RESERVE);
    if (rc != 0)
        return rc;
    uint8_t *p = v.mv_data;
    put_u64(p, index);
    put_u64(p + 8, cmd.time_ms);
    p[16] = (uint8_t)(res->status & 0xff);
    p[17] = (uint8_t)((res->status >> 8) & 0xff);
    if (body > 0)
        memcpy(p + RESULT_HDR, res->body.data, body);

    uint8_t tk[8 + AGENDA_REQUEST_ID_MAX];
    time_key(tk, cmd.time_ms, &cmd);
    MDB_val tkv = {8 + cmd.request_id_len, tk}, empty = {0, NULL};
    rc = mdb_put(txn, s->by_time, &tkv, &empty, 0);
    if (rc != 0)
        return rc;
    return expire_old(s, txn, cmd.time_ms);
}

int agenda_sessions_digest(struct agenda_sessions *s, MDB_txn *txn,
                           void *evp_md_ctx)
{
    EVP_MD_CTX *ctx = evp_md_ctx;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, s->ids, &cur);
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

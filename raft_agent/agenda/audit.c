/*
 * audit.c — the hash-chained audit log of a shard.
 *
 * The dispatcher appends one record per command, accepted or rejected, in
 * the command's apply transaction, so the log is replicated through Raft
 * like everything else:
 *
 *   audit  seq (8B BE) -> {"seq","time","actor","role","action","object",
 *                          "outcome","request_id","prev_hash","hash"}
 *   meta "audit_head"   -> seq (8B BE) then the hash (64 hex characters)
 *
 * hash = SHA-256 (lowercase hex) of the canonical JSON (jansson, compact,
 * sorted keys, UTF-8) of the record without "hash"; prev_hash is the hash
 * of the previous record, 64 zeros for the first.  A record is stored as
 * that canonical text with "hash" appended last, so writing one costs a
 * single serialisation; readers do not depend on the member order.  Changing, removing or
 * reordering a record therefore breaks the chain (audit.verify), and the
 * head stored in meta exposes a truncated tail.  The log is never trimmed.
 */
#include "agenda.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "buf.h"
#include "json_text.h"
#include "render.h"

#define AUDIT_HASH_HEX 64
/* action, object and outcome given to audit.record */
#define AUDIT_FIELD_MAX 100

static const char meta_head[] = "audit_head";
static const char zero_hash[AUDIT_HASH_HEX + 1] =
    "0000000000000000000000000000000000000000000000000000000000000000";

static int handle_list(struct agenda_ctx *c);
static int handle_verify(struct agenda_ctx *c);
static int handle_record(struct agenda_ctx *c);

const struct agenda_op agenda_audit_ops[] = {
    {"audit.list", false, AGENDA_ON_ALL, handle_list},
    {"audit.verify", false, AGENDA_ON_ALL, handle_verify},
    {"audit.record", true, AGENDA_ON_ALL, handle_record},
    {NULL, false, 0, NULL},
};

/* ---- the chain ----------------------------------------------------------- */

#define HEAD_LEN (8 + AUDIT_HASH_HEX)

static bool hex_lower(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
            return false;
    return true;
}

/* The stored head in its binary form: seq (8 B BE, 1..INT64_MAX) and the
 * hash in lowercase hex. */
static bool head_binary(const MDB_val *v)
{
    const uint8_t *b = v->mv_data;
    return v->mv_size == HEAD_LEN && agenda_key_u64_decode(b) >= 1 &&
           agenda_key_u64_decode(b) <= INT64_MAX &&
           hex_lower(b + 8, AUDIT_HASH_HEX);
}

/* Format 1 stored the head as {"seq": N, "hash": "<hex>"}: rewrite it in
 * today's binary form (see agenda_format_upgrade).  Agents of the time
 * between the binary head and the format key wrote the binary form with
 * no format key: that head is kept as it is. */
int agenda_audit_upgrade_head(MDB_txn *txn, const struct agenda_db *db)
{
    MDB_val k = {sizeof(meta_head) - 1, (void *)(uintptr_t)meta_head}, v;
    int rc = mdb_get(txn, db->meta, &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return rc;
    if (head_binary(&v))
        return 0;
    json_t *head = json_loadb(v.mv_data, v.mv_size, 0, NULL);
    json_t *js = json_object_get(head, "seq");
    const char *h = json_string_value(json_object_get(head, "hash"));
    if (!json_is_integer(js) || json_integer_value(js) < 1 || h == NULL ||
        strlen(h) != AUDIT_HASH_HEX ||
        !hex_lower((const uint8_t *)h, AUDIT_HASH_HEX)) {
        json_decref(head);
        return MDB_CORRUPTED;
    }
    uint8_t bin[HEAD_LEN];
    agenda_key_u64(bin, (uint64_t)json_integer_value(js));
    memcpy(bin + 8, h, AUDIT_HASH_HEX);
    json_decref(head);
    MDB_val nv = {sizeof(bin), bin};
    return mdb_put(txn, db->meta, &k, &nv, 0);
}

/* Lowercase hex SHA-256 of len bytes of text.  Returns 0, or ENOMEM. */
static int sha256_hex(const char *text, size_t len,
                      char out[AUDIT_HASH_HEX + 1])
{
    uint8_t d[32];
    unsigned int n = sizeof(d);
    if (EVP_Digest(text, len, d, &n, EVP_sha256(), NULL) != 1)
        return ENOMEM;
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[AUDIT_HASH_HEX] = '\0';
    return 0;
}

/* SHA-256 hex of the canonical JSON of rec without its "hash" member.
 * Returns 0, or ENOMEM. */
static int audit_hash(json_t *rec, char out[AUDIT_HASH_HEX + 1])
{
    json_t *copy = json_copy(rec);
    if (copy == NULL)
        return ENOMEM;
    json_object_del(copy, "hash");
    char *text = json_dumps(copy, AGENDA_JSON_FLAGS);
    json_decref(copy);
    if (text == NULL)
        return ENOMEM;
    int rc = sha256_hex(text, strlen(text), out);
    free(text);
    return rc;
}

/* The last record's seq and hash (0 and zeros for an empty log). */
static int audit_head(struct agenda_ctx *c, uint64_t *seq,
                      char hash[AUDIT_HASH_HEX + 1])
{
    MDB_val k = {sizeof(meta_head) - 1, (void *)(uintptr_t)meta_head}, v;
    int rc = mdb_get(c->txn, c->db->meta, &k, &v);
    if (rc == MDB_NOTFOUND) {
        *seq = 0;
        memcpy(hash, zero_hash, sizeof(zero_hash));
        return 0;
    }
    if (rc != 0)
        return rc;
    if (!head_binary(&v))
        return MDB_CORRUPTED;
    const uint8_t *b = v.mv_data;
    *seq = agenda_key_u64_decode(b);
    memcpy(hash, b + 8, AUDIT_HASH_HEX);
    hash[AUDIT_HASH_HEX] = '\0';
    return 0;
}

/* The record's fields as json_dumps(AGENDA_JSON_FLAGS) writes them, keys in
 * sorted order; the time as RFC 3339 when it can be rendered, else the
 * raw milliseconds (a leader clock gone mad must not stop the shard). */
static int record_text(struct agenda_buf *b, const struct agenda_ctx *c,
                       uint64_t seq, const char *action, const char *object,
                       const char *outcome, const char *prev)
{
    const struct {
        const char *key, *value;
    } before_seq[] = {
        {"action", action},
        {"actor", c->actor.user},
        {"object", object},
        {"outcome", outcome},
        {"prev_hash", prev},
        {"request_id", c->request_id != NULL ? c->request_id : ""},
        {"role", c->actor.role != 0 ? agenda_role_name(c->actor.role) : ""},
    };
    bool ok = agenda_buf_append(b, "{", 1) == 0;
    for (size_t i = 0; ok && i < sizeof(before_seq) / sizeof(before_seq[0]);
         i++)
        ok = before_seq[i].value != NULL &&
             agenda_json_text_key(b, before_seq[i].key) == 0 &&
             agenda_json_text_str(b, before_seq[i].value) == 0 &&
             agenda_buf_append(b, ",", 1) == 0;
    ok = ok && agenda_json_text_key(b, "seq") == 0 &&
         agenda_json_text_int(b, (int64_t)seq) == 0 &&
         agenda_buf_append(b, ",", 1) == 0 &&
         agenda_json_text_key(b, "time") == 0 &&
         agenda_render_time_text(b, c->now_ms) == 0 &&
         agenda_buf_append(b, "}", 1) == 0;
    return ok ? 0 : ENOMEM;
}

/* Append one record with the given fields to the chain in c->txn. */
static int audit_write(struct agenda_ctx *c, const char *action,
                       const char *object, const char *outcome)
{
    uint64_t seq;
    char prev[AUDIT_HASH_HEX + 1], hash[AUDIT_HASH_HEX + 1];
    int rc = audit_head(c, &seq, prev);
    if (rc != 0)
        return rc;
    seq++;
    /* the canonical text of the record without "hash" (what audit_hash
     * computes from a stored record), written directly (json_text.h):
     * what is hashed, and, with the hash appended in place of its closing
     * brace, what is stored */
    struct agenda_buf stored = {0};
    rc = record_text(&stored, c, seq, action, object, outcome, prev);
    if (rc == 0)
        rc = sha256_hex((const char *)stored.data, stored.len, hash);
    if (rc == 0) {
        stored.len--; /* the closing brace */
        if (agenda_buf_append(&stored, ",\"hash\":\"", 9) != 0 ||
            agenda_buf_append(&stored, hash, AUDIT_HASH_HEX) != 0 ||
            agenda_buf_append(&stored, "\"}", 2) != 0)
            rc = ENOMEM;
    }
    uint8_t kb[8];
    agenda_key_u64(kb, seq);
    MDB_val k = {sizeof(kb), kb};
    MDB_val v = {stored.len, stored.data};
    if (rc == 0)
        rc = agenda_put_last(c->txn, c->db->audit, &k, &v);
    agenda_buf_free(&stored);
    if (rc != 0)
        return rc;
    uint8_t head[HEAD_LEN];
    agenda_key_u64(head, seq);
    memcpy(head + 8, hash, AUDIT_HASH_HEX);
    MDB_val hk = {sizeof(meta_head) - 1, (void *)(uintptr_t)meta_head};
    MDB_val hv = {sizeof(head), head};
    return mdb_put(c->txn, c->db->meta, &hk, &hv, 0);
}

/*
 * The dispatcher's hook (agenda.h).  A successful audit.record has already
 * written the record it carries (action, object and outcome of the edge's
 * event), which replaces the generic record of the command itself.
 */
int agenda_audit_append(struct agenda_ctx *c, const char *outcome)
{
    const char *op = c->op != NULL ? c->op : "";
    if (strcmp(op, "audit.record") == 0 && strcmp(outcome, "ok") == 0)
        return 0;
    return audit_write(c, op, c->audit_object, outcome);
}

/* ---- audit.record -------------------------------------------------------- */

/* 1..AUDIT_FIELD_MAX bytes of printable ASCII (spaces allowed). */
static bool audit_field_valid(const char *s)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++)
        if (n >= AUDIT_FIELD_MAX || (unsigned char)s[n] < 0x20 ||
            (unsigned char)s[n] >= 0x7f)
            return false;
    return n > 0;
}

/*
 * audit.record {action, object, outcome} -> {"seq": N}
 * A security event seen by the edge (login, failed login, ...) put into
 * the replicated chain as it is.  Role system only (403 otherwise); each
 * field 1..100 bytes of printable ASCII (400 invalid_field).
 */
static int handle_record(struct agenda_ctx *c)
{
    static const char *const allowed[] = {"action", "object", "outcome",
                                          NULL};
    static const char *const names[] = {"action", "object", "outcome"};
    const char *v[3];
    if (c->actor.role != AGENDA_ROLE_SYSTEM)
        return agenda_fail(c, 403, "forbidden",
                           "audit.record is reserved to the edge (role "
                           "system)");
    if (!agenda_args_only(c, allowed))
        return 0;
    for (int i = 0; i < 3; i++) {
        if (!agenda_arg_str(c, names[i], true, &v[i]))
            return 0;
        if (!audit_field_valid(v[i]))
            return agenda_fail(c, 400, "invalid_field",
                               "'%s' must be 1 to %d printable ASCII "
                               "characters", names[i], AUDIT_FIELD_MAX);
    }
    snprintf(c->audit_object, sizeof(c->audit_object), "%s", v[1]);
    int rc = audit_write(c, v[0], v[1], v[2]);
    uint64_t seq;
    char hash[AUDIT_HASH_HEX + 1];
    if (rc == 0)
        rc = audit_head(c, &seq, hash);
    if (rc != 0)
        return rc;
    json_t *body = json_pack("{s:I}", "seq", (json_int_t)seq);
    return body != NULL ? agenda_reply(c, 200, body) : ENOMEM;
}

/* ---- queries ------------------------------------------------------------- */

static bool audit_reader(struct agenda_ctx *c)
{
    if (c->actor.role == AGENDA_ROLE_ADMIN ||
        c->actor.role == AGENDA_ROLE_SYSTEM)
        return true;
    agenda_fail(c, 403, "forbidden", "%s is reserved to administrators",
                c->op);
    return false;
}

/*
 * audit.list {after?, limit?} -> {"records": [...], "next_after": S,
 *                                 "more": bool}
 * Records with seq > after (default 0) in order, at most limit (default
 * AGENDA_PAGE_DEFAULT, at most AGENDA_AUDIT_PAGE_MAX), exactly as stored
 * and hashed.  next_after is the last seq returned (after when none).
 * Admins and the edge only.
 */
static int handle_list(struct agenda_ctx *c)
{
    static const char *const allowed[] = {"after", "limit", NULL};
    int64_t after = 0, limit = AGENDA_PAGE_DEFAULT;
    if (!audit_reader(c) || !agenda_args_only(c, allowed))
        return 0;
    agenda_arg_int(c, "after", false, &after);
    agenda_arg_int(c, "limit", false, &limit);
    if (agenda_failed(c))
        return 0;
    if (after < 0)
        return agenda_fail(c, 400, "invalid_field",
                           "after must be a record number (0 or more)");
    if (limit < 1 || limit > AGENDA_AUDIT_PAGE_MAX)
        return agenda_fail(c, 400, "invalid_field",
                           "limit must be between 1 and %d",
                           AGENDA_AUDIT_PAGE_MAX);
    json_t *records = json_array();
    if (records == NULL)
        return ENOMEM;
    uint8_t kb[8];
    agenda_key_u64(kb, (uint64_t)after + 1);
    MDB_val k = {sizeof(kb), kb}, v;
    MDB_cursor *cur = NULL;
    int rc = mdb_cursor_open(c->txn, c->db->audit, &cur);
    MDB_cursor_op op = MDB_SET_RANGE;
    int64_t next = after;
    bool more = false;
    while (rc == 0 && (rc = mdb_cursor_get(cur, &k, &v, op)) == 0) {
        op = MDB_NEXT;
        if ((int64_t)json_array_size(records) == limit) {
            more = true;
            break;
        }
        json_t *rec = json_loadb(v.mv_data, v.mv_size, 0, NULL);
        if (rec == NULL || k.mv_size != 8) {
            json_decref(rec);
            rc = MDB_CORRUPTED;
            break;
        }
        next = (int64_t)agenda_key_u64_decode(k.mv_data);
        if (json_array_append_new(records, rec) != 0)
            rc = ENOMEM;
    }
    if (cur != NULL)
        mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        json_decref(records);
        return rc;
    }
    json_t *body = json_pack("{s:o,s:I,s:b}", "records", records,
                             "next_after", (json_int_t)next, "more", more);
    return body != NULL ? agenda_reply(c, 200, body) : ENOMEM;
}

/* Why record seq (stored as k/v) does not continue the chain after prev,
 * or NULL when it does; *hash receives its hash. */
static const char *audit_check(const MDB_val *k, const MDB_val *v,
                               uint64_t seq, const char *prev,
                               char hash[AUDIT_HASH_HEX + 1], int *err)
{
    *err = 0;
    if (k->mv_size != 8)
        return "a key of the audit database is not a record number";
    uint64_t at = agenda_key_u64_decode(k->mv_data);
    if (at != seq)
        return at > seq ? "the record is missing" : "unexpected record";
    json_t *rec = json_loadb(v->mv_data, v->mv_size, JSON_REJECT_DUPLICATES,
                             NULL);
    json_t *js = json_object_get(rec, "seq");
    const char *stored = json_string_value(json_object_get(rec, "hash"));
    const char *p = json_string_value(json_object_get(rec, "prev_hash"));
    const char *why = NULL;
    if (!json_is_object(rec) || stored == NULL || p == NULL)
        why = "the record is not an audit record";
    else if (!json_is_integer(js) || json_integer_value(js) != (json_int_t)seq)
        why = "the record carries another number";
    else if (strcmp(p, prev) != 0)
        why = "prev_hash does not match the previous record's hash";
    else if ((*err = audit_hash(rec, hash)) != 0)
        why = NULL;
    else if (strcmp(hash, stored) != 0)
        why = "the record's content does not match its hash";
    json_decref(rec);
    return why;
}

/*
 * audit.verify {} -> {"ok": true, "records": N, "head": "<hash>"}
 *                 or {"ok": false, "first_bad_seq": S, "reason": "..."}
 * Walks the whole chain recomputing every hash, and checks that it ends at
 * the head stored in meta.  Admins and the edge only.
 */
static int handle_verify(struct agenda_ctx *c)
{
    static const char *const allowed[] = {NULL};
    if (!audit_reader(c) || !agenda_args_only(c, allowed))
        return 0;
    uint64_t head_seq;
    char head_hash[AUDIT_HASH_HEX + 1];
    int rc = audit_head(c, &head_seq, head_hash);
    if (rc == MDB_CORRUPTED) {
        json_t *body = json_pack("{s:b,s:I,s:s}", "ok", false,
                                 "first_bad_seq", (json_int_t)1, "reason",
                                 "the stored head of the chain is unreadable");
        return body != NULL ? agenda_reply(c, 200, body) : ENOMEM;
    }
    if (rc != 0)
        return rc;
    char prev[AUDIT_HASH_HEX + 1], hash[AUDIT_HASH_HEX + 1];
    memcpy(prev, zero_hash, sizeof(zero_hash));
    MDB_cursor *cur = NULL;
    rc = mdb_cursor_open(c->txn, c->db->audit, &cur);
    MDB_val k, v;
    MDB_cursor_op op = MDB_FIRST;
    uint64_t seq = 0;
    const char *why = NULL;
    while (rc == 0 && (rc = mdb_cursor_get(cur, &k, &v, op)) == 0) {
        op = MDB_NEXT;
        int err;
        why = audit_check(&k, &v, seq + 1, prev, hash, &err);
        if (err != 0)
            rc = err;
        if (why != NULL || rc != 0)
            break;
        seq++;
        memcpy(prev, hash, sizeof(hash));
    }
    if (cur != NULL)
        mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return rc;
    uint64_t bad = seq + 1;
    if (why == NULL && seq < head_seq) {
        why = "records at the end of the chain are missing";
    } else if (why == NULL && seq > head_seq) {
        why = "the chain goes beyond its stored head";
        bad = head_seq + 1;
    } else if (why == NULL && strcmp(prev, head_hash) != 0) {
        why = "the last record's hash differs from the stored head";
        bad = seq;
    }
    json_t *body;
    if (why != NULL)
        body = json_pack("{s:b,s:I,s:s}", "ok", false, "first_bad_seq",
                         (json_int_t)bad, "reason", why);
    else
        body = json_pack("{s:b,s:I,s:s}", "ok", true, "records",
                         (json_int_t)seq, "head", prev);
    return body != NULL ? agenda_reply(c, 200, body) : ENOMEM;
}

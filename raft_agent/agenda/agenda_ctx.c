/*
 * agenda_ctx.c — helpers shared by the handlers: database opening, key
 * encoding, answers, argument access and JSON records; see agenda.h.
 */
#include "agenda.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Records are stored in the canonical serialisation (AGENDA_JSON_FLAGS):
 * replicas must store byte-identical records. */
#include "json_text.h"

#include "validate.h"

/* Answers are built in a fixed order by the same code on every replica,
 * so insertion order is already deterministic (and answers of commands are
 * stored by the session table): skip the cost of sorting big lists. */
#define REPLY_SORTED false

int agenda_db_open(struct agenda_db *db, MDB_txn *txn)
{
    static const struct {
        const char *name;
        size_t off;
    } dbs[] = {
        {"ag_users", offsetof(struct agenda_db, users)},
        {"ag_groups", offsetof(struct agenda_db, groups)},
        {"ag_group_members", offsetof(struct agenda_db, group_members)},
        {"ag_events", offsetof(struct agenda_db, events)},
        {"ag_ev_by_cal", offsetof(struct agenda_db, ev_by_cal)},
        {"ag_ev_by_part", offsetof(struct agenda_db, ev_by_part)},
        {"ag_cal_meta", offsetof(struct agenda_db, cal_meta)},
        {"ag_feed", offsetof(struct agenda_db, feed)},
        {"ag_feed_by_target", offsetof(struct agenda_db, feed_by_target)},
        {"ag_audit", offsetof(struct agenda_db, audit)},
        {"ag_meta", offsetof(struct agenda_db, meta)},
    };
    for (size_t i = 0; i < sizeof(dbs) / sizeof(dbs[0]); i++) {
        MDB_dbi *d = (MDB_dbi *)(void *)((char *)db + dbs[i].off);
        int rc = mdb_dbi_open(txn, dbs[i].name, MDB_CREATE, d);
        if (rc != 0)
            return rc;
    }
    return 0;
}

void agenda_key_u64(uint8_t out[8], uint64_t v)
{
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)(v >> (8 * (7 - i)));
}

uint64_t agenda_key_u64_decode(const uint8_t in[8])
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | in[i];
    return v;
}

void agenda_key_time(uint8_t out[8], int64_t ms)
{
    /* Flipping the sign bit maps signed order onto unsigned byte order. */
    agenda_key_u64(out, (uint64_t)ms ^ (1ull << 63));
}

int64_t agenda_key_time_decode(const uint8_t in[8])
{
    return (int64_t)(agenda_key_u64_decode(in) ^ (1ull << 63));
}

void agenda_key_reset(struct agenda_key *k)
{
    k->len = 0;
    k->bad = false;
}

void agenda_key_raw(struct agenda_key *k, const void *p, size_t n)
{
    if (k->bad || n > AGENDA_KEY_MAX - k->len) {
        k->bad = true;
        return;
    }
    memcpy(k->b + k->len, p, n);
    k->len += n;
}

void agenda_key_str(struct agenda_key *k, const char *s)
{
    agenda_key_raw(k, s, strlen(s) + 1);
}

MDB_val agenda_key_val(const struct agenda_key *k)
{
    MDB_val v = {k->len, (void *)(uintptr_t)k->b};
    return v;
}

int agenda_reply(struct agenda_ctx *c, int status, json_t *body)
{
    if (body == NULL)
        body = json_object();
    agenda_buf_reset(&c->res->body);
    int rc = body != NULL
                 ? agenda_json_text_value(&c->res->body, body, REPLY_SORTED)
                 : -1;
    json_decref(body);
    if (rc != 0)
        return ENOMEM;
    c->res->status = status;
    return 0;
}

int agenda_fail(struct agenda_ctx *c, int status, const char *code,
                const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    agenda_utf8_cut(msg); /* a quoted field name cut mid-character */
    json_t *j = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message",
                          msg);
    int rc = agenda_reply(c, status, j);
    if (rc != 0) {
        /* keep the status even without a body: the error is what matters */
        c->res->status = status;
        agenda_buf_reset(&c->res->body);
    }
    return 0;
}

bool agenda_failed(const struct agenda_ctx *c)
{
    return c->res->status >= 400;
}

bool agenda_args_only(struct agenda_ctx *c, const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach(c->args, key, v) {
        bool ok = false;
        for (size_t i = 0; allowed[i] != NULL && !ok; i++)
            ok = strcmp(key, allowed[i]) == 0;
        if (!ok) {
            agenda_fail(c, 400, "unknown_field",
                        "unknown field '%.64s' in %s; remove it", key, c->op);
            return false;
        }
    }
    return true;
}

static json_t *arg(struct agenda_ctx *c, const char *key, bool required)
{
    json_t *v = json_object_get(c->args, key);
    if ((v == NULL || json_is_null(v)) && required)
        agenda_fail(c, 400, "missing_field", "%s needs the field '%s'",
                    c->op, key);
    return json_is_null(v) ? NULL : v;
}

json_t *agenda_arg_json(struct agenda_ctx *c, const char *key)
{
    return arg(c, key, false);
}

bool agenda_arg_str(struct agenda_ctx *c, const char *key, bool required,
                    const char **out)
{
    json_t *v = arg(c, key, required);
    if (v == NULL)
        return false;
    if (!json_is_string(v) || strlen(json_string_value(v)) !=
                                  json_string_length(v)) {
        agenda_fail(c, 400, "invalid_field", "'%s' must be a string", key);
        return false;
    }
    *out = json_string_value(v);
    return true;
}

bool agenda_arg_int(struct agenda_ctx *c, const char *key, bool required,
                    int64_t *out)
{
    json_t *v = arg(c, key, required);
    if (v == NULL)
        return false;
    if (!json_is_integer(v)) {
        agenda_fail(c, 400, "invalid_field", "'%s' must be an integer", key);
        return false;
    }
    *out = json_integer_value(v);
    return true;
}

bool agenda_arg_bool(struct agenda_ctx *c, const char *key, bool required,
                     bool *out)
{
    json_t *v = arg(c, key, required);
    if (v == NULL)
        return false;
    if (!json_is_boolean(v)) {
        agenda_fail(c, 400, "invalid_field", "'%s' must be true or false",
                    key);
        return false;
    }
    *out = json_is_true(v);
    return true;
}

int agenda_get_json(struct agenda_ctx *c, MDB_dbi dbi, MDB_val key,
                    json_t **out)
{
    MDB_val v;
    int rc = mdb_get(c->txn, dbi, &key, &v);
    if (rc != 0)
        return rc;
    json_error_t jerr;
    *out = json_loadb(v.mv_data, v.mv_size, JSON_REJECT_DUPLICATES, &jerr);
    return *out != NULL ? 0 : MDB_CORRUPTED;
}

int agenda_put_last(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *val)
{
    int rc = mdb_put(txn, dbi, key, val, MDB_APPEND);
    if (rc == MDB_KEYEXIST)
        rc = mdb_put(txn, dbi, key, val, 0);
    return rc;
}

int agenda_put_json(struct agenda_ctx *c, MDB_dbi dbi, MDB_val key,
                    const json_t *v)
{
    struct agenda_buf text = {0};
    if (agenda_buf_reserve(&text, 1024) != 0 ||
        agenda_json_text_value(&text, v, true) != 0) {
        agenda_buf_free(&text);
        return ENOMEM;
    }
    MDB_val val = {text.len, text.data};
    int rc = mdb_put(c->txn, dbi, &key, &val, 0);
    agenda_buf_free(&text);
    return rc;
}

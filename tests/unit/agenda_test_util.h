/*
 * agenda_test_util.h — helpers shared by the tests of the users and groups
 * modules: building operations, reading answers and change feeds, and a
 * signature of the data a rejected command must not change.  Included by
 * test files only (after cmocka.h and agenda_fixture.h); all static.
 */
#ifndef AGENDA_TEST_UTIL_H
#define AGENDA_TEST_UTIL_H

#include <inttypes.h>

#include "agenda_fixture.h"

#define TU_FN static __attribute__((unused))

/* A valid argon2id PHC string and a second, different one. */
#define TU_HASH1                                                           \
    "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0c2FsdA$"               \
    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
#define TU_HASH2                                                           \
    "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0c2FsdA$"               \
    "ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoM"

/* Actors (JSON text). */
#define TU_ANON "{\"user\":\"\",\"role\":\"user\"}"
#define TU_SYSTEM "{\"user\":\"\",\"role\":\"system\"}"

/* A user actor for name (static rotating buffers: a few per statement). */
TU_FN const char *tu_actor(const char *name, const char *role)
{
    static char bufs[4][128];
    static int i;
    char *b = bufs[i++ % 4];
    snprintf(b, sizeof(bufs[0]), "{\"user\":\"%s\",\"role\":\"%s\"}", name,
             role);
    return b;
}

TU_FN const char *tu_user(const char *name)
{
    return tu_actor(name, "user");
}

TU_FN const char *tu_admin(const char *name)
{
    return tu_actor(name, "admin");
}

TU_FN int tu_cmd(struct agenda_fx *fx, const char *op, const char *actor,
                 const char *args)
{
    return agenda_fx_cmdf(fx, "{\"op\":\"%s\",\"actor\":%s,\"args\":%s}", op,
                          actor, args);
}

TU_FN int tu_cmd_id(struct agenda_fx *fx, const char *id, const char *op,
                    const char *actor, const char *args)
{
    char buf[16384];
    snprintf(buf, sizeof(buf), "{\"op\":\"%s\",\"actor\":%s,\"args\":%s}",
             op, actor, args);
    return agenda_fx_cmd_id(fx, id, buf);
}

TU_FN int tu_query(struct agenda_fx *fx, const char *op, const char *actor,
                   const char *args)
{
    return agenda_fx_queryf(fx, "{\"op\":\"%s\",\"actor\":%s,\"args\":%s}",
                            op, actor, args);
}

/* The last answer's body as canonical text (static buffer). */
TU_FN const char *tu_body_text(struct agenda_fx *fx)
{
    static char text[65536];
    snprintf(text, sizeof(text), "%.*s", (int)fx->res.body.len,
             (const char *)fx->res.body.data);
    return text;
}

/* A string inside the last answer: path is keys separated by '.', e.g.
 * "user.email".  Returns "" when absent or not a string (static buffer). */
TU_FN const char *tu_str(struct agenda_fx *fx, const char *path)
{
    static char out[4096];
    char p[256];
    snprintf(p, sizeof(p), "%s", path);
    json_t *b = agenda_fx_body(fx), *v = b;
    for (char *save = NULL, *k = strtok_r(p, ".", &save); k != NULL && v;
         k = strtok_r(NULL, ".", &save))
        v = json_object_get(v, k);
    snprintf(out, sizeof(out), "%s",
             json_is_string(v) ? json_string_value(v) : "");
    json_decref(b);
    return out;
}

/* An integer inside the last answer, or -1 when absent. */
TU_FN int64_t tu_int(struct agenda_fx *fx, const char *path)
{
    char p[256];
    snprintf(p, sizeof(p), "%s", path);
    json_t *b = agenda_fx_body(fx), *v = b;
    for (char *save = NULL, *k = strtok_r(p, ".", &save); k != NULL && v;
         k = strtok_r(NULL, ".", &save))
        v = json_object_get(v, k);
    int64_t r = json_is_integer(v) ? json_integer_value(v) : -1;
    json_decref(b);
    return r;
}

/* Whether the last answer has the key path at all. */
TU_FN bool tu_has(struct agenda_fx *fx, const char *path)
{
    char p[256];
    snprintf(p, sizeof(p), "%s", path);
    json_t *b = agenda_fx_body(fx), *v = b;
    for (char *save = NULL, *k = strtok_r(p, ".", &save); k != NULL && v;
         k = strtok_r(NULL, ".", &save))
        v = json_object_get(v, k);
    bool r = v != NULL;
    json_decref(b);
    return r;
}

/* The change types recorded for target, comma-separated, oldest first
 * (read through changes.list as the edge; static buffer). */
TU_FN const char *tu_feed(struct agenda_fx *fx, const char *target)
{
    static char out[8192];
    char args[256];
    snprintf(args, sizeof(args), "{\"target\":\"%s\",\"since\":0,"
             "\"limit\":500}", target);
    out[0] = '\0';
    if (tu_query(fx, "changes.list", TU_SYSTEM, args) != 200)
        return "(feed error)";
    json_t *b = agenda_fx_body(fx);
    size_t i;
    json_t *ch;
    json_array_foreach(json_object_get(b, "changes"), i, ch) {
        size_t n = strlen(out);
        snprintf(out + n, sizeof(out) - n, "%s%s", n ? "," : "",
                 json_string_value(json_object_get(ch, "type")));
    }
    json_decref(b);
    return out;
}

/* The "object" of the newest audit record (static buffer). */
TU_FN const char *tu_last_audit_object(struct agenda_fx *fx)
{
    static char out[256];
    out[0] = '\0';
    int64_t after = 0;
    for (;;) {
        char args[64];
        snprintf(args, sizeof(args), "{\"after\":%" PRId64 ",\"limit\":500}",
                 after);
        if (tu_query(fx, "audit.list", TU_SYSTEM, args) != 200)
            return "(audit error)";
        json_t *b = agenda_fx_body(fx);
        json_t *recs = json_object_get(b, "records");
        size_t n = json_array_size(recs);
        if (n > 0)
            snprintf(out, sizeof(out), "%s", json_string_value(json_object_get(
                         json_array_get(recs, n - 1), "object")));
        after = json_integer_value(json_object_get(b, "next_after"));
        bool more = json_is_true(json_object_get(b, "more"));
        json_decref(b);
        if (!more)
            return out;
    }
}

/* FNV-1a over every key and value of one database. */
TU_FN void tu_hash_db(MDB_txn *txn, MDB_dbi dbi, uint64_t *h)
{
    MDB_cursor *cur;
    MDB_val k, v;
    if (mdb_cursor_open(txn, dbi, &cur) != 0)
        abort();
    while (mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0) {
        const MDB_val parts[2] = {k, v};
        for (int p = 0; p < 2; p++) {
            for (size_t i = 0; i < parts[p].mv_size; i++)
                *h = (*h ^ ((const uint8_t *)parts[p].mv_data)[i]) *
                     1099511628211ull;
            *h = (*h ^ 0xffu) * 1099511628211ull; /* separator */
        }
    }
    mdb_cursor_close(cur);
}

/* A signature of everything a command may change except the audit log
 * (which records rejected commands too): users, groups, the membership
 * index, the change feed. */
TU_FN uint64_t tu_state_sig(struct agenda_fx *fx)
{
    MDB_txn *txn;
    uint64_t h = 14695981039346656037ull;
    const struct agenda_db *d = &fx->sm.db;
    if (mdb_txn_begin(fx->env, NULL, MDB_RDONLY, &txn) != 0)
        abort();
    tu_hash_db(txn, d->users, &h);
    tu_hash_db(txn, d->groups, &h);
    tu_hash_db(txn, d->group_members, &h);
    tu_hash_db(txn, d->feed, &h);
    tu_hash_db(txn, d->feed_by_target, &h);
    mdb_txn_abort(txn);
    return h;
}

#endif /* AGENDA_TEST_UTIL_H */

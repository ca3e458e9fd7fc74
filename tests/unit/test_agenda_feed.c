/*
 * test_agenda_feed.c — the change feed: appends (driven directly through
 * agenda_feed_append() in a command transaction, as handlers do), listing,
 * paging, sync-token semantics, expiry of old changes, authorization of
 * every target kind, argument validation, and tokens surviving a reopen of
 * the environment.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "agenda_fixture.h"

#define GID "0123456789abcdef"
#define GID2 "fedcba9876543210"

static int setup(void **state)
{
    *state = agenda_fx_new(AGENDA_SHARD_EVENTS, "", "");
    return 0;
}

static int teardown(void **state)
{
    agenda_fx_free(*state);
    return 0;
}

/* Open a command context on a fresh write transaction of fx. */
static void cmd_begin(struct agenda_fx *fx, struct agenda_ctx *c,
                      const char *user)
{
    memset(c, 0, sizeof(*c));
    c->db = &fx->sm.db;
    c->shard = &fx->sm.shard;
    c->is_command = true;
    c->now_ms = fx->now_ms;
    c->op = "test";
    c->res = &fx->res;
    c->actor.role = AGENDA_ROLE_USER;
    snprintf(c->actor.user, sizeof(c->actor.user), "%s", user);
    assert_int_equal(mdb_txn_begin(fx->env, NULL, 0, &c->txn), 0);
}

static void cmd_end(struct agenda_fx *fx, struct agenda_ctx *c)
{
    assert_int_equal(mdb_txn_commit(c->txn), 0);
    fx->now_ms += 1000;
}

/* Append one change in its own transaction; returns its sequence number. */
static uint64_t append(struct agenda_fx *fx, const char *target,
                       const char *type, const char *id)
{
    struct agenda_ctx c;
    cmd_begin(fx, &c, "alice");
    json_t *data = json_pack("{s:s}", "note", type);
    assert_int_equal(agenda_feed_append(&c, target, type, id, data), 0);
    json_decref(data);
    uint64_t head;
    assert_int_equal(agenda_feed_head(&c, &head), 0);
    cmd_end(fx, &c);
    return head;
}

/* Query as an actor; returns the status. */
static int query_as(struct agenda_fx *fx, const char *user, const char *role,
                    const char *cal_role, const char *args)
{
    return agenda_fx_queryf(fx,
                            "{\"op\":\"changes.list\",\"actor\":{\"user\":"
                            "\"%s\",\"role\":\"%s\",\"calendar_role\":\"%s\"},"
                            "\"args\":%s}",
                            user, role, cal_role, args);
}

static int list(struct agenda_fx *fx, const char *target, long long since,
                int limit)
{
    char args[256];
    if (limit > 0)
        snprintf(args, sizeof(args),
                 "{\"target\":\"%s\",\"since\":%lld,\"limit\":%d}", target,
                 since, limit);
    else
        snprintf(args, sizeof(args), "{\"target\":\"%s\",\"since\":%lld}",
                 target, since);
    return query_as(fx, "root", "admin", "none", args);
}

/* seq of the i-th change of the last answer */
static json_int_t change_seq(json_t *body, size_t i)
{
    return json_integer_value(json_object_get(
        json_array_get(json_object_get(body, "changes"), i), "seq"));
}

static size_t count_entries(struct agenda_fx *fx, MDB_dbi dbi)
{
    MDB_txn *txn;
    MDB_stat st;
    assert_int_equal(mdb_txn_begin(fx->env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(mdb_stat(txn, dbi, &st), 0);
    mdb_txn_abort(txn);
    return st.ms_entries;
}

static void test_head_starts_at_zero(void **state)
{
    struct agenda_fx *fx = *state;
    assert_int_equal(agenda_fx_query(fx, "{\"op\":\"changes.head\",\"actor\":"
                                         "{\"user\":\"bob\",\"role\":\"user\"}"
                                         ",\"args\":{}}"),
                     200);
    json_t *b = agenda_fx_body(fx);
    assert_int_equal(json_integer_value(json_object_get(b, "sync_token")), 0);
    json_decref(b);
    assert_int_equal(list(fx, "calendar:alice", 0, 0), 200);
    b = agenda_fx_body(fx);
    assert_int_equal(json_array_size(json_object_get(b, "changes")), 0);
    assert_int_equal(json_integer_value(json_object_get(b, "sync_token")), 0);
    assert_true(json_is_false(json_object_get(b, "more")));
    json_decref(b);
}

static void test_append_and_list(void **state)
{
    struct agenda_fx *fx = *state;
    assert_int_equal(append(fx, "calendar:alice", "event.created", "e1"), 1);
    assert_int_equal(append(fx, "calendar:bob", "event.created", "e2"), 2);
    assert_int_equal(append(fx, "calendar:alice", "event.updated", "e1"), 3);
    assert_int_equal(append(fx, "user:alice", "user.updated", NULL), 4);

    assert_int_equal(agenda_fx_query(fx, "{\"op\":\"changes.head\",\"actor\":"
                                         "{\"user\":\"bob\",\"role\":\"user\"}"
                                         ",\"args\":{}}"),
                     200);
    json_t *b = agenda_fx_body(fx);
    assert_int_equal(json_integer_value(json_object_get(b, "sync_token")), 4);
    json_decref(b);

    assert_int_equal(list(fx, "calendar:alice", 0, 0), 200);
    b = agenda_fx_body(fx);
    json_t *ch = json_object_get(b, "changes");
    assert_int_equal(json_array_size(ch), 2);
    json_t *c0 = json_array_get(ch, 0);
    assert_int_equal(json_integer_value(json_object_get(c0, "seq")), 1);
    assert_string_equal(json_string_value(json_object_get(c0, "target")),
                        "calendar:alice");
    assert_string_equal(json_string_value(json_object_get(c0, "type")),
                        "event.created");
    assert_string_equal(json_string_value(json_object_get(c0, "id")), "e1");
    assert_string_equal(json_string_value(json_object_get(c0, "actor")),
                        "alice");
    assert_string_equal(json_string_value(json_object_get(c0, "time")),
                        "2026-11-18T11:06:40Z");
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(c0, "data"), "note")),
                        "event.created");
    assert_int_equal(change_seq(b, 1), 3);
    /* no more changes for this target: the token is the shard's head */
    assert_int_equal(json_integer_value(json_object_get(b, "sync_token")), 4);
    assert_true(json_is_false(json_object_get(b, "more")));
    json_decref(b);

    /* a change without an id has none */
    assert_int_equal(list(fx, "user:alice", 0, 0), 200);
    b = agenda_fx_body(fx);
    c0 = json_array_get(json_object_get(b, "changes"), 0);
    assert_null(json_object_get(c0, "id"));
    assert_int_equal(json_integer_value(json_object_get(c0, "seq")), 4);
    json_decref(b);
}

static void test_paging_and_since(void **state)
{
    struct agenda_fx *fx = *state;
    for (int i = 0; i < 7; i++) {
        append(fx, "calendar:alice", "event.created", "e");
        append(fx, "calendar:bob", "event.created", "e");
    }
    /* alice's changes are the odd numbers 1..13 */
    long long since = 0;
    json_int_t seen[16];
    size_t n = 0;
    bool more = true;
    int pages = 0;
    while (more) {
        assert_int_equal(list(fx, "calendar:alice", since, 3), 200);
        json_t *b = agenda_fx_body(fx);
        json_t *ch = json_object_get(b, "changes");
        for (size_t i = 0; i < json_array_size(ch); i++)
            seen[n++] = change_seq(b, i);
        more = json_is_true(json_object_get(b, "more"));
        json_int_t tok = json_integer_value(json_object_get(b, "sync_token"));
        if (more)
            assert_int_equal(tok, seen[n - 1]);
        else
            assert_int_equal(tok, 14);
        since = tok;
        pages++;
        json_decref(b);
    }
    assert_int_equal(pages, 3);
    assert_int_equal(n, 7);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(seen[i], 2 * (json_int_t)i + 1);

    /* since excludes its own change */
    assert_int_equal(list(fx, "calendar:alice", 5, 0), 200);
    json_t *b = agenda_fx_body(fx);
    assert_int_equal(change_seq(b, 0), 7);
    json_decref(b);
    /* since == head: nothing, token unchanged */
    assert_int_equal(list(fx, "calendar:alice", 14, 0), 200);
    b = agenda_fx_body(fx);
    assert_int_equal(json_array_size(json_object_get(b, "changes")), 0);
    assert_int_equal(json_integer_value(json_object_get(b, "sync_token")), 14);
    json_decref(b);
    /* a token never issued */
    assert_int_equal(list(fx, "calendar:alice", 15, 0), 400);
    assert_string_equal(agenda_fx_error(fx), "invalid_sync_token");
    assert_int_equal(list(fx, "calendar:alice", -1, 0), 400);
    assert_string_equal(agenda_fx_error(fx), "invalid_sync_token");
    /* a page exactly full is not "more" when nothing follows */
    assert_int_equal(list(fx, "calendar:bob", 8, 3), 200);
    b = agenda_fx_body(fx);
    assert_int_equal(json_array_size(json_object_get(b, "changes")), 3);
    assert_true(json_is_false(json_object_get(b, "more")));
    json_decref(b);
}

static void test_old_changes_expire(void **state)
{
    struct agenda_fx *fx = *state;
    fx->sm.shard.feed_keep = 5;
    for (int i = 0; i < 20; i++)
        append(fx, i % 2 ? "calendar:alice" : "calendar:bob", "event.created",
               "e");
    assert_int_equal(count_entries(fx, fx->sm.db.feed), 5);
    assert_int_equal(count_entries(fx, fx->sm.db.feed_by_target), 5);
    /* floor is 15: tokens 15..20 valid, 14 expired */
    assert_int_equal(list(fx, "calendar:alice", 14, 0), 410);
    assert_string_equal(agenda_fx_error(fx), "sync_token_expired");
    json_t *b = agenda_fx_body(fx);
    assert_non_null(strstr(json_string_value(json_object_get(
                               json_object_get(b, "error"), "message")),
                           "full sync"));
    json_decref(b);
    assert_int_equal(list(fx, "calendar:alice", 0, 0), 410);
    assert_int_equal(list(fx, "calendar:alice", 15, 0), 200);
    b = agenda_fx_body(fx);
    assert_int_equal(json_array_size(json_object_get(b, "changes")), 3);
    assert_int_equal(change_seq(b, 0), 16);
    assert_int_equal(change_seq(b, 2), 20);
    json_decref(b);

    /* several changes per command: trimming still catches up */
    struct agenda_ctx c;
    cmd_begin(fx, &c, "alice");
    for (int i = 0; i < 3; i++)
        assert_int_equal(agenda_feed_append(&c, "calendar:alice",
                                            "invitation.created", "e", NULL),
                         0);
    cmd_end(fx, &c);
    for (int i = 0; i < 3; i++)
        append(fx, "calendar:alice", "event.created", "e");
    assert_int_equal(count_entries(fx, fx->sm.db.feed), 5);
    assert_int_equal(list(fx, "calendar:alice", 20, 0), 410);
    assert_int_equal(list(fx, "calendar:alice", 21, 0), 200);
    b = agenda_fx_body(fx);
    assert_int_equal(json_array_size(json_object_get(b, "changes")), 5);
    json_decref(b);
}

/* Store text as the change seq (as a damaged or differently written
 * record would be). */
static void put_change(struct agenda_fx *fx, uint64_t seq, const char *text)
{
    MDB_txn *txn;
    uint8_t kb[8];
    agenda_key_u64(kb, seq);
    MDB_val k = {sizeof(kb), kb};
    MDB_val v = {strlen(text), (void *)(uintptr_t)text};
    assert_int_equal(mdb_txn_begin(fx->env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_put(txn, fx->sm.db.feed, &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
}

/* Trimming reads the target of each change it deletes, however it is
 * stored: spelled with escapes (parsed, not scanned), in a record damaged
 * elsewhere (scanned), and missing (the append fails: corrupt). */
static void test_trimming_reads_any_stored_target(void **state)
{
    struct agenda_fx *fx = *state;
    fx->sm.shard.feed_keep = 3; /* no slack: trims at every append */
    for (int i = 0; i < 3; i++)
        append(fx, "calendar:bob", "event.created", "e");
    put_change(fx, 1, "{\"actor\":\"alice\",\"seq\":1,\"target\":"
                      "\"calendar:\\u0062ob\",\"type\":\"event.created\"}");
    put_change(fx, 2, "{\"actor\":\"alice\",\"data\":{\"x\":[1,]},\"seq\":2,"
                      "\"target\":\"calendar:bob\",\"type\":\"t\"}");
    /* each deletion finds the index row of the decoded target */
    append(fx, "calendar:bob", "event.created", "e");
    assert_int_equal(count_entries(fx, fx->sm.db.feed), 3);
    assert_int_equal(count_entries(fx, fx->sm.db.feed_by_target), 3);
    append(fx, "calendar:bob", "event.created", "e");
    assert_int_equal(count_entries(fx, fx->sm.db.feed), 3);
    assert_int_equal(count_entries(fx, fx->sm.db.feed_by_target), 3);
    put_change(fx, 3, "{\"actor\":\"alice\",\"seq\":3}");
    struct agenda_ctx c;
    cmd_begin(fx, &c, "alice");
    assert_int_equal(agenda_feed_append(&c, "calendar:bob", "event.created",
                                        "e", NULL),
                     MDB_CORRUPTED);
    mdb_txn_abort(c.txn);
}

/* A large limit has a slack (a 128th of it): the feed grows past the limit
 * by up to that much, and the append whose sequence number is a multiple
 * of slack + 1 deletes the oldest down to the limit. */
static void test_trimming_waits_for_the_slack(void **state)
{
    struct agenda_fx *fx = *state;
    fx->sm.shard.feed_keep = 256; /* slack 2: trims at multiples of 3 */
    for (int i = 0; i < 257; i++)
        append(fx, i % 2 ? "calendar:alice" : "calendar:bob", "event.created",
               "e");
    assert_int_equal(count_entries(fx, fx->sm.db.feed), 257);
    assert_int_equal(list(fx, "calendar:bob", 0, 1), 200);
    assert_int_equal(append(fx, "calendar:alice", "event.created", "e"), 258);
    assert_int_equal(count_entries(fx, fx->sm.db.feed), 256);
    assert_int_equal(count_entries(fx, fx->sm.db.feed_by_target), 256);
    /* the two oldest went at once: tokens below 2 expired */
    assert_int_equal(list(fx, "calendar:bob", 1, 0), 410);
    assert_int_equal(list(fx, "calendar:bob", 2, 1), 200);
    json_t *b = agenda_fx_body(fx);
    assert_int_equal(change_seq(b, 0), 3);
    json_decref(b);
    /* nothing more until the next multiple */
    for (int i = 0; i < 2; i++)
        append(fx, "calendar:alice", "event.created", "e");
    assert_int_equal(count_entries(fx, fx->sm.db.feed), 258);
    append(fx, "calendar:alice", "event.created", "e");
    assert_int_equal(count_entries(fx, fx->sm.db.feed), 256);
}

/* Replicas whose feeds were trimmed differently (an older agent trimmed at
 * every append; here: a lower limit for a while) agree again once both
 * pass a multiple of slack + 1 with more than the limit kept. */
static void test_differently_trimmed_feeds_converge(void **state)
{
    struct agenda_fx *a = *state;
    struct agenda_fx *b = agenda_fx_new(AGENDA_SHARD_EVENTS, "", "");
    char da[65], db[65];
    a->sm.shard.feed_keep = 256;
    b->sm.shard.feed_keep = 10;
    for (int i = 0; i < 360; i++) {
        if (i == 101) /* b's count passes the slack out of a's step */
            b->sm.shard.feed_keep = 256;
        const char *t = i % 2 ? "calendar:alice" : "calendar:bob";
        append(a, t, "event.created", "e");
        append(b, t, "event.created", "e");
        if (i == 299) {
            agenda_fx_digest(a, da);
            agenda_fx_digest(b, db);
            assert_string_not_equal(da, db);
        }
    }
    agenda_fx_digest(a, da);
    agenda_fx_digest(b, db);
    assert_string_equal(da, db);
    assert_int_equal(count_entries(b, b->sm.db.feed), 256);
    agenda_fx_free(b);
}

/* Who may read which target. */
static void test_authorization(void **state)
{
    struct agenda_fx *fx = *state;
    append(fx, "calendar:alice", "event.created", "e");
    static const struct {
        const char *user, *role, *cal_role, *target;
        int status;
    } cases[] = {
        {"alice", "user", "none", "user:alice", 200},
        {"alice", "user", "none", "user:ALICE", 200},
        {"bob", "user", "none", "user:alice", 403},
        {"bob", "user", "leader", "user:alice", 403},
        {"root", "admin", "none", "user:alice", 200},
        {"", "system", "none", "user:alice", 200},
        {"alice", "user", "none", "calendar:alice", 200},
        {"bob", "user", "none", "calendar:alice", 403},
        {"bob", "user", "member", "calendar:alice", 403},
        {"root", "admin", "none", "calendar:alice", 200},
        {"bob", "user", "member", "calendar:g:" GID, 200},
        {"bob", "user", "leader", "calendar:g:" GID, 200},
        {"bob", "user", "none", "calendar:g:" GID, 403},
        {"root", "admin", "none", "calendar:g:" GID, 200},
        {"bob", "user", "member", "group:" GID, 200},
        {"bob", "user", "leader", "group:" GID2, 200},
        {"bob", "user", "none", "group:" GID, 403},
        {"root", "admin", "none", "group:" GID, 200},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char args[200];
        snprintf(args, sizeof(args), "{\"target\":\"%s\",\"since\":0}",
                 cases[i].target);
        int st = query_as(fx, cases[i].user, cases[i].role,
                          cases[i].cal_role, args);
        if (st != cases[i].status)
            fail_msg("case %zu (%s as %s/%s/%s): %d, want %d", i,
                     cases[i].target, cases[i].user, cases[i].role,
                     cases[i].cal_role, st, cases[i].status);
        if (st == 403)
            assert_string_equal(agenda_fx_error(fx), "forbidden");
    }
    /* a folded target finds the stored changes */
    assert_int_equal(query_as(fx, "alice", "user", "none",
                              "{\"target\":\"calendar:Alice\",\"since\":0}"),
                     200);
    json_t *b = agenda_fx_body(fx);
    assert_int_equal(json_array_size(json_object_get(b, "changes")), 1);
    json_decref(b);
    /* an anonymous actor is refused before any handler */
    assert_int_equal(agenda_fx_query(fx, "{\"op\":\"changes.head\",\"actor\":"
                                         "{\"role\":\"user\"},\"args\":{}}"),
                     401);
}

static void test_invalid_arguments(void **state)
{
    struct agenda_fx *fx = *state;
    append(fx, "calendar:alice", "event.created", "e");
    char long_target[200];
    snprintf(long_target, sizeof(long_target),
             "{\"target\":\"calendar:%0101d\",\"since\":0}", 0);
    const struct {
        const char *args;
        const char *code;
    } cases[] = {
        {"{\"since\":0}", "missing_field"},
        {"{\"target\":\"calendar:alice\"}", "missing_field"},
        {"{\"target\":\"calendar:alice\",\"since\":0,\"x\":1}",
         "unknown_field"},
        {"{\"target\":7,\"since\":0}", "invalid_field"},
        {"{\"target\":\"calendar:alice\",\"since\":\"3\"}", "invalid_field"},
        {"{\"target\":\"calendar:alice\",\"since\":0,\"limit\":0}",
         "invalid_field"},
        {"{\"target\":\"calendar:alice\",\"since\":0,\"limit\":501}",
         "invalid_field"},
        {"{\"target\":\"calendar:alice\",\"since\":0,\"limit\":true}",
         "invalid_field"},
        {"{\"target\":\"alice\",\"since\":0}", "invalid_target"},
        {"{\"target\":\"\",\"since\":0}", "invalid_target"},
        {"{\"target\":\"user:a\",\"since\":0}", "invalid_target"},
        {"{\"target\":\"user:al ice\",\"since\":0}", "invalid_target"},
        {"{\"target\":\"calendar:g:xyz\",\"since\":0}", "invalid_target"},
        {"{\"target\":\"group:0123\",\"since\":0}", "invalid_target"},
        {"{\"target\":\"group:0123456789ABCDEF\",\"since\":0}",
         "invalid_target"},
        {"{\"target\":\"event:alice\",\"since\":0}", "invalid_target"},
        {"{\"target\":\"user:alice\\u0000x\",\"since\":0}", "bad_json"},
        {long_target, "invalid_target"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int st = query_as(fx, "root", "admin", "none", cases[i].args);
        const char *code = agenda_fx_error(fx);
        if (st != 400 || strcmp(code, cases[i].code) != 0)
            fail_msg("case %zu %s: %d %s, want 400 %s", i, cases[i].args, st,
                     code, cases[i].code);
    }
    assert_int_equal(agenda_fx_query(fx, "{\"op\":\"changes.head\",\"actor\":"
                                         "{\"user\":\"bob\",\"role\":\"user\"}"
                                         ",\"args\":{\"since\":1}}"),
                     400);
    assert_string_equal(agenda_fx_error(fx), "unknown_field");
    /* queries are not commands */
    assert_int_equal(agenda_fx_cmd(fx, "{\"op\":\"changes.list\",\"actor\":"
                                       "{\"user\":\"bob\",\"role\":\"user\"},"
                                       "\"args\":{}}"),
                     400);
    assert_string_equal(agenda_fx_error(fx), "wrong_kind");
}

/* Handlers' mistakes are caught: nothing is appended. */
static void test_append_rejects_bad_arguments(void **state)
{
    struct agenda_fx *fx = *state;
    char long_target[120];
    memset(long_target, 'a', sizeof(long_target) - 1);
    long_target[sizeof(long_target) - 1] = '\0';
    memcpy(long_target, "user:", 5);
    json_t *str = json_string("x");
    static const char *const bad_targets[] = {"", "user: x", "user:\x7f",
                                              "user:\xc3\xa9"};
    struct agenda_ctx c;
    cmd_begin(fx, &c, "alice");
    assert_int_equal(agenda_feed_append(&c, NULL, "t", "i", NULL), EINVAL);
    assert_int_equal(agenda_feed_append(&c, long_target, "t", "i", NULL),
                     EINVAL);
    for (size_t i = 0; i < sizeof(bad_targets) / sizeof(bad_targets[0]); i++)
        assert_int_equal(agenda_feed_append(&c, bad_targets[i], "t", "i",
                                            NULL),
                         EINVAL);
    assert_int_equal(agenda_feed_append(&c, "user:alice", NULL, "i", NULL),
                     EINVAL);
    assert_int_equal(agenda_feed_append(&c, "user:alice", "t", "", NULL),
                     EINVAL);
    assert_int_equal(agenda_feed_append(&c, "user:alice", "t", "i", str),
                     EINVAL);
    /* exactly 100 bytes is fine */
    long_target[100] = '\0';
    assert_int_equal(agenda_feed_append(&c, long_target, "t", NULL, NULL), 0);
    uint64_t head;
    assert_int_equal(agenda_feed_head(&c, &head), 0);
    assert_int_equal(head, 1);
    /* not from a query */
    c.is_command = false;
    assert_int_equal(agenda_feed_append(&c, "user:alice", "t", "i", NULL),
                     EINVAL);
    mdb_txn_abort(c.txn);
    json_decref(str);
}

/* Tokens are data: closing and reopening the environment keeps them. */
static void test_tokens_survive_reopen(void **state)
{
    struct agenda_fx *fx = *state;
    fx->sm.shard.feed_keep = 3;
    for (int i = 0; i < 6; i++)
        append(fx, "calendar:alice", "event.created", "e");
    char before[65], after[65];
    agenda_fx_digest(fx, before);
    mdb_env_close(fx->env);
    memset(&fx->sm.db, 0, sizeof(fx->sm.db));
    MDB_txn *txn;
    assert_int_equal(mdb_env_create(&fx->env), 0);
    assert_int_equal(mdb_env_set_maxdbs(fx->env, 32), 0);
    assert_int_equal(mdb_env_set_mapsize(fx->env, 256u << 20), 0);
    assert_int_equal(mdb_env_open(fx->env, fx->dir, MDB_NOSYNC, 0600), 0);
    assert_int_equal(mdb_txn_begin(fx->env, NULL, 0, &txn), 0);
    assert_int_equal(agenda_sm_ops.open(&fx->sm, txn), 0);
    assert_int_equal(agenda_sessions_open(&fx->sessions, txn), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    agenda_sessions_committed(&fx->sessions);
    agenda_fx_digest(fx, after);
    assert_string_equal(before, after);
    assert_int_equal(list(fx, "calendar:alice", 2, 0), 410);
    assert_int_equal(list(fx, "calendar:alice", 4, 0), 200);
    json_t *b = agenda_fx_body(fx);
    assert_int_equal(change_seq(b, 0), 5);
    assert_int_equal(json_integer_value(json_object_get(b, "sync_token")), 6);
    json_decref(b);
    assert_int_equal(append(fx, "calendar:alice", "event.created", "e"), 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_head_starts_at_zero, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_append_and_list, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_paging_and_since, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_trimming_waits_for_the_slack,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_trimming_reads_any_stored_target, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_differently_trimmed_feeds_converge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_old_changes_expire, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_authorization, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_arguments, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_append_rejects_bad_arguments,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_tokens_survive_reopen, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_agenda_audit.c — the hash-chained audit log: one record per command
 * (accepted or rejected), the chain's hashes, verification catching a
 * rewritten, re-hashed, deleted or truncated record, access reserved to
 * admins, and the edge's audit.record command.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "agenda_fixture.h"

#define SYSTEM "{\"user\":\"edge\",\"role\":\"system\"}"
#define ADMIN "{\"user\":\"root\",\"role\":\"admin\"}"
#define USER "{\"user\":\"alice\",\"role\":\"user\"}"

static int setup(void **state)
{
    *state = agenda_fx_new(AGENDA_SHARD_USERS, "", "");
    return 0;
}

static int teardown(void **state)
{
    agenda_fx_free(*state);
    return 0;
}

static int record(struct agenda_fx *fx, const char *actor, const char *action,
                  const char *object, const char *outcome)
{
    return agenda_fx_cmdf(fx,
                          "{\"op\":\"audit.record\",\"actor\":%s,\"args\":"
                          "{\"action\":\"%s\",\"object\":\"%s\",\"outcome\":"
                          "\"%s\"}}",
                          actor, action, object, outcome);
}

/* A mix of accepted and rejected commands: 5 records. */
static void five_records(struct agenda_fx *fx)
{
    assert_int_equal(record(fx, SYSTEM, "login", "user:alice", "ok"), 200);
    assert_int_equal(record(fx, USER, "login", "user:alice", "ok"), 403);
    assert_int_equal(agenda_fx_cmd(fx, "{\"op\":\"no.such\",\"actor\":" USER
                                       ",\"args\":{}}"),
                     400);
    assert_int_equal(agenda_fx_cmd(fx, "not json"), 400);
    assert_int_equal(record(fx, SYSTEM, "login_failed", "user:bob",
                            "bad password"),
                     200);
}

/* The answer of audit.verify, parsed (caller frees). */
static json_t *verify(struct agenda_fx *fx)
{
    assert_int_equal(agenda_fx_query(fx, "{\"op\":\"audit.verify\",\"actor\":"
                                     ADMIN ",\"args\":{}}"),
                     200);
    json_t *b = agenda_fx_body(fx);
    assert_non_null(b);
    return b;
}

static json_t *list_all(struct agenda_fx *fx)
{
    assert_int_equal(agenda_fx_query(fx, "{\"op\":\"audit.list\",\"actor\":"
                                     ADMIN ",\"args\":{}}"),
                     200);
    json_t *b = agenda_fx_body(fx);
    json_t *r = json_incref(json_object_get(b, "records"));
    json_decref(b);
    return r;
}

static void expect_bad(struct agenda_fx *fx, json_int_t seq,
                       const char *reason_part)
{
    json_t *b = verify(fx);
    assert_true(json_is_false(json_object_get(b, "ok")));
    assert_int_equal(json_integer_value(json_object_get(b, "first_bad_seq")),
                     seq);
    const char *reason = json_string_value(json_object_get(b, "reason"));
    if (reason == NULL || strstr(reason, reason_part) == NULL)
        fail_msg("reason '%s', want '%s'", reason ? reason : "(none)",
                 reason_part);
    json_decref(b);
}

/* Raw access to a record, as an attacker with the files would have. */
static void raw_put(struct agenda_fx *fx, uint64_t seq, const json_t *rec)
{
    MDB_txn *txn;
    uint8_t kb[8];
    agenda_key_u64(kb, seq);
    MDB_val k = {8, kb};
    char *text = json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS);
    MDB_val v = {strlen(text), text};
    assert_int_equal(mdb_txn_begin(fx->env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_put(txn, fx->sm.db.audit, &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    free(text);
}

static void raw_del(struct agenda_fx *fx, uint64_t seq)
{
    MDB_txn *txn;
    uint8_t kb[8];
    agenda_key_u64(kb, seq);
    MDB_val k = {8, kb};
    assert_int_equal(mdb_txn_begin(fx->env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_del(txn, fx->sm.db.audit, &k, NULL), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
}

/* SHA-256 hex of the canonical record without "hash", computed here
 * independently of audit.c. */
static void hash_of(const json_t *rec, char out[65])
{
    json_t *copy = json_deep_copy(rec);
    json_object_del(copy, "hash");
    char *text = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS);
    uint8_t d[32];
    unsigned int n = 32;
    assert_int_equal(EVP_Digest(text, strlen(text), d, &n, EVP_sha256(),
                                NULL),
                     1);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
    free(text);
    json_decref(copy);
}

static void test_every_command_is_recorded(void **state)
{
    struct agenda_fx *fx = *state;
    five_records(fx);
    json_t *r = list_all(fx);
    assert_int_equal(json_array_size(r), 5);
    static const struct {
        const char *actor, *role, *action, *object, *outcome;
    } want[] = {
        {"edge", "system", "login", "user:alice", "ok"},
        {"alice", "user", "audit.record", "", "error:403:forbidden"},
        /* decoding stops at the unknown op, before the actor */
        {"", "", "no.such", "", "error:400:unknown_op"},
        {"", "", "", "", "error:400:bad_json"},
        {"edge", "system", "login_failed", "user:bob", "bad password"},
    };
    char prev[65];
    memset(prev, '0', 64);
    prev[64] = '\0';
    for (size_t i = 0; i < 5; i++) {
        json_t *rec = json_array_get(r, i);
        assert_int_equal(json_integer_value(json_object_get(rec, "seq")),
                         i + 1);
        assert_string_equal(json_string_value(json_object_get(rec, "actor")),
                            want[i].actor);
        assert_string_equal(json_string_value(json_object_get(rec, "role")),
                            want[i].role);
        assert_string_equal(json_string_value(json_object_get(rec, "action")),
                            want[i].action);
        assert_string_equal(json_string_value(json_object_get(rec, "object")),
                            want[i].object);
        assert_string_equal(
            json_string_value(json_object_get(rec, "outcome")),
            want[i].outcome);
        char id[32];
        snprintf(id, sizeof(id), "fx-%zu", i + 1);
        assert_string_equal(
            json_string_value(json_object_get(rec, "request_id")), id);
        assert_non_null(json_string_value(json_object_get(rec, "time")));
        assert_string_equal(
            json_string_value(json_object_get(rec, "prev_hash")), prev);
        char h[65];
        hash_of(rec, h);
        assert_string_equal(json_string_value(json_object_get(rec, "hash")),
                            h);
        memcpy(prev, h, sizeof(h));
        assert_int_equal(json_object_size(rec), 10);
    }
    json_decref(r);

    json_t *b = verify(fx);
    assert_true(json_is_true(json_object_get(b, "ok")));
    assert_int_equal(json_integer_value(json_object_get(b, "records")), 5);
    assert_string_equal(json_string_value(json_object_get(b, "head")), prev);
    json_decref(b);
}

static void test_empty_chain_verifies(void **state)
{
    struct agenda_fx *fx = *state;
    json_t *b = verify(fx);
    assert_true(json_is_true(json_object_get(b, "ok")));
    assert_int_equal(json_integer_value(json_object_get(b, "records")), 0);
    json_decref(b);
}

static void test_rewritten_record_is_detected(void **state)
{
    struct agenda_fx *fx = *state;
    five_records(fx);
    json_t *r = list_all(fx);
    json_t *rec = json_deep_copy(json_array_get(r, 1));
    json_object_set_new(rec, "outcome", json_string("ok"));
    raw_put(fx, 2, rec);
    expect_bad(fx, 2, "does not match its hash");

    /* re-hashing the forged record moves the break to the next link */
    char h[65];
    hash_of(rec, h);
    json_object_set_new(rec, "hash", json_string(h));
    raw_put(fx, 2, rec);
    expect_bad(fx, 3, "prev_hash");

    /* putting the original back heals the chain */
    raw_put(fx, 2, json_array_get(r, 1));
    json_t *b = verify(fx);
    assert_true(json_is_true(json_object_get(b, "ok")));
    json_decref(b);
    json_decref(rec);
    json_decref(r);
}

static void test_moved_record_is_detected(void **state)
{
    struct agenda_fx *fx = *state;
    five_records(fx);
    json_t *r = list_all(fx);
    /* a record copied over another number */
    raw_put(fx, 3, json_array_get(r, 1));
    expect_bad(fx, 3, "another number");
    /* restoring it heals the chain */
    raw_put(fx, 3, json_array_get(r, 2));
    json_t *b = verify(fx);
    assert_true(json_is_true(json_object_get(b, "ok")));
    json_decref(b);
    /* garbage in place of a record */
    json_t *junk = json_pack("{s:i}", "seq", 4);
    raw_put(fx, 4, junk);
    expect_bad(fx, 4, "not an audit record");
    json_decref(junk);
    json_decref(r);
}

static void test_deleted_record_is_detected(void **state)
{
    struct agenda_fx *fx = *state;
    five_records(fx);
    raw_del(fx, 2);
    expect_bad(fx, 2, "missing");
}

static void test_truncated_tail_is_detected(void **state)
{
    struct agenda_fx *fx = *state;
    five_records(fx);
    raw_del(fx, 5);
    expect_bad(fx, 5, "end of the chain");
    raw_del(fx, 4);
    expect_bad(fx, 4, "end of the chain");
}

/* The head in meta is read from disk like everything else: a head of the
 * wrong size, seq 0 or a non-hex hash is corruption: the next command's
 * apply fails rather than chain onto garbage, and verify reports it. */
static void test_damaged_head_is_corruption(void **state)
{
    struct agenda_fx *fx = *state;
    five_records(fx);
    static const char *const heads[] = {
        "short",
        "\0\0\0\0\0\0\0\5"
        "ZZZZ000000000000000000000000000000000000000000000000000000000000",
        "\0\0\0\0\0\0\0\0"
        "0000000000000000000000000000000000000000000000000000000000000000",
    };
    static const size_t lens[] = {5, 72, 72};
    for (size_t i = 0; i < 3; i++) {
        MDB_txn *txn;
        MDB_val k = {10, (void *)(uintptr_t)"audit_head"};
        MDB_val v = {lens[i], (void *)(uintptr_t)heads[i]};
        assert_int_equal(mdb_txn_begin(fx->env, NULL, 0, &txn), 0);
        assert_int_equal(mdb_put(txn, fx->sm.db.meta, &k, &v, 0), 0);

        const char *q = "{\"op\":\"audit.verify\",\"actor\":" ADMIN
                        ",\"args\":{}}";
        struct sm_query sq = {.method = "POST", .path = "v1/queries",
                              .body = (const uint8_t *)q,
                              .body_len = strlen(q)};
        assert_int_equal(agenda_sm_ops.query(&fx->sm, txn, &sq, &fx->res),
                         0);
        assert_int_equal(fx->res.status, 200);
        json_t *b = agenda_fx_body(fx);
        assert_true(json_is_false(json_object_get(b, "ok")));
        assert_non_null(strstr(json_string_value(json_object_get(b, "reason")),
                               "head"));
        json_decref(b);

        const char *cmd = "{\"op\":\"audit.record\",\"actor\":" SYSTEM
                          ",\"args\":{\"action\":\"login\",\"object\":"
                          "\"user:al\",\"outcome\":\"ok\"}}";
        struct agenda_buf entry = {0};
        assert_int_equal(agenda_command_encode(&entry, "damaged", 1, cmd,
                                               strlen(cmd)),
                         0);
        bool dup = false;
        assert_int_equal(agenda_sessions_apply(&fx->sessions, &agenda_sm_ops,
                                               &fx->sm, txn, ++fx->index,
                                               entry.data, entry.len,
                                               &fx->res, &dup),
                         MDB_CORRUPTED);
        agenda_buf_free(&entry);
        mdb_txn_abort(txn);
        agenda_sessions_aborted(&fx->sessions);
    }
    /* untouched, the chain is whole */
    json_t *b = verify(fx);
    assert_true(json_is_true(json_object_get(b, "ok")));
    json_decref(b);
}

static void test_appends_continue_the_chain(void **state)
{
    struct agenda_fx *fx = *state;
    five_records(fx);
    json_t *b = verify(fx);
    char head[65];
    snprintf(head, sizeof(head), "%s",
             json_string_value(json_object_get(b, "head")));
    json_decref(b);
    /* queries are not audited; commands are */
    assert_int_equal(record(fx, SYSTEM, "logout", "user:alice", "ok"), 200);
    b = agenda_fx_body(fx);
    assert_int_equal(json_integer_value(json_object_get(b, "seq")), 6);
    json_decref(b);
    json_t *r = list_all(fx);
    assert_int_equal(json_array_size(r), 6);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(r, 5), "prev_hash")),
                        head);
    json_decref(r);
    b = verify(fx);
    assert_true(json_is_true(json_object_get(b, "ok")));
    assert_int_equal(json_integer_value(json_object_get(b, "records")), 6);
    json_decref(b);
}

static void test_retry_is_not_recorded_twice(void **state)
{
    struct agenda_fx *fx = *state;
    const char *cmd = "{\"op\":\"audit.record\",\"actor\":" SYSTEM ",\"args\":"
                      "{\"action\":\"login\",\"object\":\"user:al\","
                      "\"outcome\":\"ok\"}}";
    assert_int_equal(agenda_fx_cmd_id(fx, "r-1", cmd), 200);
    assert_false(fx->duplicate);
    assert_int_equal(agenda_fx_cmd_id(fx, "r-1", cmd), 200);
    assert_true(fx->duplicate);
    json_t *b = agenda_fx_body(fx);
    assert_int_equal(json_integer_value(json_object_get(b, "seq")), 1);
    json_decref(b);
    json_t *r = list_all(fx);
    assert_int_equal(json_array_size(r), 1);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(r, 0), "request_id")),
                        "r-1");
    json_decref(r);
}

static void test_only_admins_read(void **state)
{
    struct agenda_fx *fx = *state;
    five_records(fx);
    static const struct {
        const char *actor;
        int status;
    } cases[] = {
        {ADMIN, 200},
        {SYSTEM, 200},
        {USER, 403},
        {"{\"user\":\"alice\",\"role\":\"user\",\"calendar_role\":"
         "\"leader\"}",
         403},
        {"{\"role\":\"user\"}", 401},
    };
    static const char *const ops[] = {"audit.list", "audit.verify"};
    for (size_t o = 0; o < 2; o++) {
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            int st = agenda_fx_queryf(fx,
                                      "{\"op\":\"%s\",\"actor\":%s,"
                                      "\"args\":{}}",
                                      ops[o], cases[i].actor);
            if (st != cases[i].status)
                fail_msg("%s as %s: %d, want %d", ops[o], cases[i].actor, st,
                         cases[i].status);
            json_t *b = agenda_fx_body(fx);
            if (st != 200)
                assert_null(json_object_get(b, "records"));
            json_decref(b);
        }
    }
}

static void test_list_paging(void **state)
{
    struct agenda_fx *fx = *state;
    five_records(fx);
    long long after = 0;
    json_int_t next_seq = 1;
    bool more = true;
    int pages = 0;
    while (more) {
        assert_int_equal(agenda_fx_queryf(fx,
                                          "{\"op\":\"audit.list\",\"actor\":"
                                          ADMIN ",\"args\":{\"after\":%lld,"
                                          "\"limit\":2}}",
                                          after),
                         200);
        json_t *b = agenda_fx_body(fx);
        json_t *r = json_object_get(b, "records");
        for (size_t i = 0; i < json_array_size(r); i++)
            assert_int_equal(json_integer_value(json_object_get(
                                 json_array_get(r, i), "seq")),
                             next_seq++);
        more = json_is_true(json_object_get(b, "more"));
        after = json_integer_value(json_object_get(b, "next_after"));
        pages++;
        json_decref(b);
    }
    assert_int_equal(pages, 3);
    assert_int_equal(next_seq, 6);
    assert_int_equal(after, 5);
    static const char *const bad[] = {
        "{\"after\":-1}", "{\"limit\":0}", "{\"limit\":501}",
        "{\"after\":\"1\"}", "{\"x\":1}",
    };
    static const char *const codes[] = {
        "invalid_field", "invalid_field", "invalid_field", "invalid_field",
        "unknown_field",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int st = agenda_fx_queryf(fx,
                                  "{\"op\":\"audit.list\",\"actor\":" ADMIN
                                  ",\"args\":%s}",
                                  bad[i]);
        if (st != 400 || strcmp(agenda_fx_error(fx), codes[i]) != 0)
            fail_msg("%s: %d %s, want 400 %s", bad[i], st,
                     agenda_fx_error(fx), codes[i]);
    }
    assert_int_equal(agenda_fx_query(fx, "{\"op\":\"audit.verify\",\"actor\":"
                                     ADMIN ",\"args\":{\"all\":true}}"),
                     400);
}

static void test_record_validation(void **state)
{
    struct agenda_fx *fx = *state;
    char hundred[101], long_one[102];
    memset(hundred, 'a', 100);
    hundred[100] = '\0';
    memset(long_one, 'a', 101);
    long_one[101] = '\0';
    char ok_args[400], long_args[400];
    snprintf(ok_args, sizeof(ok_args),
             "{\"action\":\"%s\",\"object\":\"%s\",\"outcome\":\"a b\"}",
             hundred, hundred);
    snprintf(long_args, sizeof(long_args),
             "{\"action\":\"%s\",\"object\":\"u\",\"outcome\":\"ok\"}",
             long_one);
    const struct {
        const char *actor;
        const char *args;
        int status;
        const char *code;
    } cases[] = {
        {SYSTEM, ok_args, 200, ""},
        {SYSTEM, long_args, 400, "invalid_field"},
        {SYSTEM, "{\"object\":\"u\",\"outcome\":\"ok\"}", 400,
         "missing_field"},
        {SYSTEM, "{\"action\":\"l\",\"outcome\":\"ok\"}", 400,
         "missing_field"},
        {SYSTEM, "{\"action\":\"l\",\"object\":\"u\"}", 400,
         "missing_field"},
        {SYSTEM, "{\"action\":\"l\",\"object\":\"u\",\"outcome\":\"ok\","
                 "\"actor\":\"x\"}",
         400, "unknown_field"},
        {SYSTEM, "{\"action\":\"\",\"object\":\"u\",\"outcome\":\"ok\"}", 400,
         "invalid_field"},
        {SYSTEM, "{\"action\":\"l\\n\",\"object\":\"u\",\"outcome\":\"ok\"}",
         400, "invalid_field"},
        {SYSTEM, "{\"action\":\"l\",\"object\":\"\\u00e9\",\"outcome\":"
                 "\"ok\"}",
         400, "invalid_field"},
        {SYSTEM, "{\"action\":\"l\",\"object\":\"u\",\"outcome\":\"\\u007f\"}",
         400, "invalid_field"},
        {SYSTEM, "{\"action\":1,\"object\":\"u\",\"outcome\":\"ok\"}", 400,
         "invalid_field"},
        {ADMIN, "{\"action\":\"l\",\"object\":\"u\",\"outcome\":\"ok\"}", 403,
         "forbidden"},
        {USER, "{\"action\":\"l\",\"object\":\"u\",\"outcome\":\"ok\"}", 403,
         "forbidden"},
    };
    size_t n = sizeof(cases) / sizeof(cases[0]);
    for (size_t i = 0; i < n; i++) {
        int st = agenda_fx_cmdf(fx,
                                "{\"op\":\"audit.record\",\"actor\":%s,"
                                "\"args\":%s}",
                                cases[i].actor, cases[i].args);
        const char *code = agenda_fx_error(fx);
        if (st != cases[i].status || strcmp(code, cases[i].code) != 0)
            fail_msg("case %zu: %d %s, want %d %s", i, st, code,
                     cases[i].status, cases[i].code);
    }
    /* every attempt left exactly one record, and the chain holds */
    json_t *r = list_all(fx);
    assert_int_equal(json_array_size(r), n);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(r, 0), "action")),
                        hundred);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(r, 1), "outcome")),
                        "error:400:invalid_field");
    json_decref(r);
    json_t *b = verify(fx);
    assert_true(json_is_true(json_object_get(b, "ok")));
    json_decref(b);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_every_command_is_recorded),
        T(test_empty_chain_verifies),
        T(test_rewritten_record_is_detected),
        T(test_moved_record_is_detected),
        T(test_deleted_record_is_detected),
        T(test_truncated_tail_is_detected),
        T(test_damaged_head_is_corruption),
        T(test_appends_continue_the_chain),
        T(test_retry_is_not_recorded_twice),
        T(test_only_admins_read),
        T(test_list_paging),
        T(test_record_validation),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}

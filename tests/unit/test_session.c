/*
 * test_session.c — the command envelope, exactly-once sessions and the
 * diagnostic key-value state machine, on a real LMDB environment.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "command.h"
#include "kv_sm.h"
#include "session.h"
#include "../env_dir.h"

struct fixture {
    char dir[64];
    MDB_env *env;
    struct agenda_kv_sm kv;
    struct agenda_sessions sessions;
    struct sm_result res;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    strcpy(f->dir, "/tmp/agenda-test-session-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    assert_int_equal(mdb_env_create(&f->env), 0);
    assert_int_equal(mdb_env_set_maxdbs(f->env, 8), 0);
    assert_int_equal(mdb_env_set_mapsize(f->env, 16u << 20), 0);
    assert_int_equal(mdb_env_open(f->env, f->dir, 0, 0600), 0);
    MDB_txn *txn;
    assert_int_equal(mdb_txn_begin(f->env, NULL, 0, &txn), 0);
    assert_int_equal(agenda_kv_sm_ops.open(&f->kv, txn), 0);
    assert_int_equal(agenda_sessions_open(&f->sessions, txn), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    agenda_sessions_committed(&f->sessions);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    agenda_sessions_close(&f->sessions);
    mdb_env_close(f->env);
    test_env_dir_remove(f->dir);
    agenda_buf_free(&f->res.body);
    free(f);
    return 0;
}

/* Build an envelope around a kv command. */
static void make_cmd(struct agenda_buf *out, const char *id, uint64_t t,
                     int op, const char *key, const char *value)
{
    struct agenda_buf kv = {0};
    assert_int_equal(agenda_kv_encode(&kv, op, key, strlen(key), value,
                                      value ? strlen(value) : 0), 0);
    agenda_buf_reset(out);
    assert_int_equal(agenda_command_encode(out, id, t, kv.data, kv.len), 0);
    agenda_buf_free(&kv);
}

/* Apply one entry in its own committed transaction. */
static bool apply(struct fixture *f, uint64_t index, const struct agenda_buf *e)
{
    MDB_txn *txn;
    bool dup = false;
    assert_int_equal(mdb_txn_begin(f->env, NULL, 0, &txn), 0);
    assert_int_equal(agenda_sessions_apply(&f->sessions, &agenda_kv_sm_ops,
                                           &f->kv, txn, index, e->data,
                                           e->len, &f->res, &dup), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    agenda_sessions_committed(&f->sessions);
    return dup;
}

/* Apply one entry into an open transaction (a batch of several). */
static bool apply_in(struct fixture *f, MDB_txn *txn, uint64_t index,
                     const struct agenda_buf *e)
{
    bool dup = false;
    assert_int_equal(agenda_sessions_apply(&f->sessions, &agenda_kv_sm_ops,
                                           &f->kv, txn, index, e->data,
                                           e->len, &f->res, &dup), 0);
    return dup;
}

static int lookup(struct fixture *f, const char *id)
{
    MDB_txn *txn;
    assert_int_equal(mdb_txn_begin(f->env, NULL, MDB_RDONLY, &txn), 0);
    int rc = agenda_sessions_lookup(&f->sessions, txn, id, &f->res);
    mdb_txn_abort(txn);
    return rc;
}

/* Close the sessions and open them again: an agent's restart. */
static void reopen(struct fixture *f)
{
    MDB_txn *txn;
    agenda_sessions_close(&f->sessions);
    memset(&f->sessions, 0, sizeof(f->sessions));
    assert_int_equal(mdb_txn_begin(f->env, NULL, 0, &txn), 0);
    assert_int_equal(agenda_sessions_open(&f->sessions, txn), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    agenda_sessions_committed(&f->sessions);
}

static int query(struct fixture *f, const char *key, char *out, size_t len)
{
    char path[300];
    snprintf(path, sizeof(path), "kv/%s", key);
    struct sm_query q = {.method = "GET", .path = path};
    MDB_txn *txn;
    assert_int_equal(mdb_txn_begin(f->env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(agenda_kv_sm_ops.query(&f->kv, txn, &q, &f->res), 0);
    mdb_txn_abort(txn);
    size_t n = f->res.body.len < len - 1 ? f->res.body.len : len - 1;
    memcpy(out, f->res.body.data, n);
    out[n] = '\0';
    return f->res.status;
}

static void test_envelope_round_trip(void **state)
{
    (void)state;
    struct agenda_buf b = {0};
    assert_int_equal(agenda_command_encode(&b, "req-1:a.b_C", 1234567890123ull,
                                           "xyz", 3), 0);
    struct agenda_command c;
    assert_int_equal(agenda_command_decode(b.data, b.len, &c), 0);
    assert_int_equal(c.version, AGENDA_COMMAND_VERSION);
    assert_string_equal(c.request_id, "req-1:a.b_C");
    assert_int_equal(c.time_ms, 1234567890123ull);
    assert_int_equal(c.payload_len, 3);
    assert_memory_equal(c.payload, "xyz", 3);
    /* every truncation is rejected except the ones that only cut payload */
    size_t header = 2 + strlen("req-1:a.b_C") + 8;
    for (size_t len = 0; len < header; len++)
        assert_int_equal(agenda_command_decode(b.data, len, &c), -1);
    /* a newer agent's envelope, whatever follows its version byte */
    for (unsigned v = AGENDA_COMMAND_VERSION + 1; v <= 255; v++) {
        b.data[0] = (uint8_t)v;
        assert_int_equal(agenda_command_decode(b.data, b.len, &c),
                         AGENDA_COMMAND_NEWER);
        assert_int_equal(agenda_command_decode(b.data, 1, &c),
                         AGENDA_COMMAND_NEWER);
    }
    b.data[0] = 0; /* no version is 0 */
    assert_int_equal(agenda_command_decode(b.data, b.len, &c), -1);
    agenda_buf_free(&b);
}

static void test_request_id_rules(void **state)
{
    (void)state;
    struct agenda_buf b = {0};
    static const char *const bad[] = {"", "has space", "slash/", "quote\"",
                                      "nul\x01", "é"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(agenda_command_encode(&b, bad[i], 0, NULL, 0), -1);
    char longid[AGENDA_REQUEST_ID_MAX + 2];
    memset(longid, 'a', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    assert_int_equal(agenda_command_encode(&b, longid, 0, NULL, 0), -1);
    longid[AGENDA_REQUEST_ID_MAX] = '\0';
    assert_int_equal(agenda_command_encode(&b, longid, 0, NULL, 0), 0);
    agenda_buf_free(&b);
}

static void test_put_then_get(void **state)
{
    struct fixture *f = *state;
    struct agenda_buf e = {0};
    char v[64];
    make_cmd(&e, "r1", 1000, AGENDA_KV_OP_PUT, "k", "one");
    assert_false(apply(f, 1, &e));
    assert_int_equal(f->res.status, 200);
    assert_int_equal(query(f, "k", v, sizeof(v)), 200);
    assert_string_equal(v, "one");
    assert_int_equal(query(f, "missing", v, sizeof(v)), 404);
    agenda_buf_free(&e);
}

static void test_retry_is_applied_once(void **state)
{
    struct fixture *f = *state;
    struct agenda_buf e = {0};
    char first[128], v[64];
    make_cmd(&e, "same-id", 1000, AGENDA_KV_OP_PUT, "k", "first");
    assert_false(apply(f, 1, &e));
    snprintf(first, sizeof(first), "%.*s", (int)f->res.body.len,
             (const char *)f->res.body.data);
    /* the same id proposed again with another value (a confused client or
     * a retry through another leader) changes nothing */
    make_cmd(&e, "same-id", 1500, AGENDA_KV_OP_PUT, "k", "second");
    assert_true(apply(f, 2, &e));
    assert_int_equal(f->res.status, 200);
    assert_int_equal(f->res.body.len, strlen(first));
    assert_memory_equal(f->res.body.data, first, strlen(first));
    assert_int_equal(query(f, "k", v, sizeof(v)), 200);
    assert_string_equal(v, "first");
    agenda_buf_free(&e);
}

static void test_failed_result_is_remembered(void **state)
{
    struct fixture *f = *state;
    struct agenda_buf e = {0};
    make_cmd(&e, "del-1", 1000, AGENDA_KV_OP_DELETE, "nothing", NULL);
    assert_false(apply(f, 1, &e));
    assert_int_equal(f->res.status, 404);
    /* the key appears later; the retry still reports the first answer */
    struct agenda_buf p = {0};
    make_cmd(&p, "put-1", 1001, AGENDA_KV_OP_PUT, "nothing", "now");
    apply(f, 2, &p);
    assert_true(apply(f, 3, &e));
    assert_int_equal(f->res.status, 404);
    agenda_buf_free(&e);
    agenda_buf_free(&p);
}

static void test_ids_expire_after_retention(void **state)
{
    struct fixture *f = *state;
    struct agenda_buf e = {0};
    make_cmd(&e, "old", 1000, AGENDA_KV_OP_PUT, "a", "1");
    apply(f, 1, &e);
    /* a command stamped past the retention window and one step of the
     * batches (250 ms, session.c) forgets "old" */
    make_cmd(&e, "new", 1000 + AGENDA_SESSION_RETENTION_MS + 251,
             AGENDA_KV_OP_PUT, "b", "2");
    apply(f, 2, &e);
    MDB_txn *txn;
    assert_int_equal(mdb_txn_begin(f->env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(agenda_sessions_lookup(&f->sessions, txn, "old",
                                            &f->res), MDB_NOTFOUND);
    assert_int_equal(agenda_sessions_lookup(&f->sessions, txn, "new",
                                            &f->res), 0);
    mdb_txn_abort(txn);
    agenda_buf_free(&e);
}

/* Apply a put under request id at time t, as the next log entry. */
static void put_at(struct fixture *f, uint64_t *index, const char *id,
                   uint64_t t)
{
    struct agenda_buf e = {0};
    make_cmd(&e, id, t, AGENDA_KV_OP_PUT, "k", "v");
    apply(f, (*index)++, &e);
    agenda_buf_free(&e);
}

/* Ids are forgotten in batches: the cutoff (command time less the
 * retention) moves in steps of 250 ms, so ids up to a step past the
 * retention are still remembered; then one command forgets every expired
 * one, up to 1,024 of them, the next ones the rest, and never the
 * unexpired. */
static void test_ids_are_forgotten_in_batches(void **state)
{
    struct fixture *f = *state;
    const uint64_t r = AGENDA_SESSION_RETENTION_MS;
    char id[32];
    uint64_t index = 1;
    for (int i = 0; i < 1100; i++) {
        snprintf(id, sizeof(id), "old-%d", i);
        put_at(f, &index, id, 1000 + (uint64_t)i / 100);
    }
    put_at(f, &index, "young", 5000);
    /* 240 ms past the retention of the oldest: the cutoff is still 1000 */
    put_at(f, &index, "t1", 1240 + r);
    assert_int_equal(lookup(f, "old-0"), 0);
    assert_int_equal(lookup(f, "old-1099"), 0);
    /* the cutoff steps to 1250: 1,024 go at once, oldest first */
    put_at(f, &index, "t2", 1250 + r);
    assert_int_equal(lookup(f, "old-0"), MDB_NOTFOUND);
    assert_int_equal(lookup(f, "old-1023"), MDB_NOTFOUND);
    assert_int_equal(lookup(f, "old-1024"), 0);
    /* the next command, in the same step, forgets the rest */
    put_at(f, &index, "t3", 1251 + r);
    assert_int_equal(lookup(f, "old-1024"), MDB_NOTFOUND);
    assert_int_equal(lookup(f, "old-1099"), MDB_NOTFOUND);
    assert_int_equal(lookup(f, "young"), 0);
    assert_int_equal(lookup(f, "t1"), 0);
}

static void test_malformed_entries_change_nothing(void **state)
{
    struct fixture *f = *state;
    static const uint8_t garbage[][12] = {
        {0},
        {1, 0},
        {1, 3, 'a', 'b'},
        {1, 1, ' ', 0, 0, 0, 0, 0, 0, 0, 0, 1},
    };
    uint8_t before[32], after[32];
    MDB_txn *txn;
    assert_int_equal(mdb_txn_begin(f->env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(agenda_kv_sm_ops.digest(&f->kv, txn, before), 0);
    mdb_txn_abort(txn);
    for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
        struct agenda_buf e = {0};
        agenda_buf_append(&e, garbage[i], sizeof(garbage[i]));
        assert_false(apply(f, i + 1, &e));
        assert_int_equal(f->res.status, 400);
        agenda_buf_free(&e);
    }
    /* a valid envelope around a malformed kv command: 400 too */
    struct agenda_buf e = {0};
    uint8_t badkv[] = {AGENDA_KV_OP_PUT, 200, 0, 'k'};
    agenda_command_encode(&e, "bad-kv", 5, badkv, sizeof(badkv));
    apply(f, 9, &e);
    assert_int_equal(f->res.status, 400);
    agenda_buf_free(&e);
    assert_int_equal(mdb_txn_begin(f->env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(agenda_kv_sm_ops.digest(&f->kv, txn, after), 0);
    mdb_txn_abort(txn);
    assert_memory_equal(before, after, 32);
}

/*
 * An entry a newer agent wrote under rules this one does not have
 * (command.h) is not applied at all: the apply stops with
 * MDB_VERSION_MISMATCH, and the batch's transaction, aborted, keeps what
 * came before it only as the caller decides.  Answering it 400 and going
 * on, as for a malformed entry, would leave this replica without a change
 * its newer peers made.
 */
static void test_a_newer_agents_entry_stops_the_apply(void **state)
{
    struct fixture *f = *state;
    struct agenda_buf e = {0};
    uint8_t before[32], after[32];
    MDB_txn *txn;
    bool dup = false;

    make_cmd(&e, "newer", 5, AGENDA_KV_OP_PUT, "k", "v");
    e.data[0] = AGENDA_COMMAND_VERSION + 1;
    assert_int_equal(mdb_txn_begin(f->env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(agenda_kv_sm_ops.digest(&f->kv, txn, before), 0);
    mdb_txn_abort(txn);
    assert_int_equal(mdb_txn_begin(f->env, NULL, 0, &txn), 0);
    assert_int_equal(agenda_sessions_apply(&f->sessions, &agenda_kv_sm_ops,
                                           &f->kv, txn, 1, e.data, e.len,
                                           &f->res, &dup),
                     MDB_VERSION_MISMATCH);
    /* nothing written, in the transaction the caller would abort: the
     * stop is not left to the abort alone */
    assert_int_equal(agenda_kv_sm_ops.digest(&f->kv, txn, after), 0);
    assert_memory_equal(before, after, 32);
    mdb_txn_abort(txn);
    agenda_sessions_aborted(&f->sessions);
    assert_int_equal(lookup(f, "newer"), MDB_NOTFOUND);
    /* the same command under this agent's version applies */
    e.data[0] = AGENDA_COMMAND_VERSION;
    assert_false(apply(f, 1, &e));
    assert_int_equal(f->res.status, 200);
    agenda_buf_free(&e);
}

static void test_digest_depends_on_content_only(void **state)
{
    struct fixture *f = *state;
    struct agenda_buf e = {0};
    uint8_t d1[32], d2[32];
    make_cmd(&e, "x1", 1, AGENDA_KV_OP_PUT, "a", "1");
    apply(f, 1, &e);
    make_cmd(&e, "x2", 2, AGENDA_KV_OP_PUT, "b", "2");
    apply(f, 2, &e);
    MDB_txn *txn;
    assert_int_equal(mdb_txn_begin(f->env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(agenda_kv_sm_ops.digest(&f->kv, txn, d1), 0);
    mdb_txn_abort(txn);
    make_cmd(&e, "x3", 3, AGENDA_KV_OP_PUT, "b", "3");
    apply(f, 3, &e);
    assert_int_equal(mdb_txn_begin(f->env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(agenda_kv_sm_ops.digest(&f->kv, txn, d2), 0);
    mdb_txn_abort(txn);
    assert_memory_not_equal(d1, d2, 32);
    agenda_buf_free(&e);
}

/* Random ids (UUIDv4 keys) are found again, also after a restart, which
 * rebuilds the in-memory index from the table. */
static void test_random_ids_are_found_after_a_restart(void **state)
{
    struct fixture *f = *state;
    struct agenda_buf e = {0};
    char ids[300][40];
    srand(7);
    for (int i = 0; i < 300; i++) {
        snprintf(ids[i], sizeof(ids[i]), "k%08x%08x.%d", (unsigned)rand(),
                 (unsigned)rand(), i);
        make_cmd(&e, ids[i], 5000 + (uint64_t)(i % 7), AGENDA_KV_OP_PUT,
                 ids[i], "v");
        assert_false(apply(f, (uint64_t)i + 1, &e));
    }
    reopen(f);
    for (int i = 0; i < 300; i++) {
        make_cmd(&e, ids[i], 9000, AGENDA_KV_OP_PUT, ids[i], "changed");
        assert_true(apply(f, 1000 + (uint64_t)i, &e));
        assert_int_equal(f->res.status, 200);
    }
    assert_int_equal(lookup(f, "k-never-seen"), MDB_NOTFOUND);
    agenda_buf_free(&e);
}

/* An aborted batch leaves nothing behind, in LMDB or in the index; within
 * a batch a retry of an id applied earlier in it is already a duplicate. */
static void test_an_aborted_batch_is_forgotten(void **state)
{
    struct fixture *f = *state;
    struct agenda_buf e = {0};
    char value[32];
    MDB_txn *txn;
    make_cmd(&e, "batch-1", 2000, AGENDA_KV_OP_PUT, "k", "first");
    assert_int_equal(mdb_txn_begin(f->env, NULL, 0, &txn), 0);
    size_t remembered = f->sessions.index.count;
    assert_false(apply_in(f, txn, 1, &e));
    assert_true(apply_in(f, txn, 2, &e));
    assert_int_equal(f->sessions.index.count, remembered + 1);
    mdb_txn_abort(txn);
    agenda_sessions_aborted(&f->sessions);
    /* the index took its addition back too (no stale pair is left) */
    assert_int_equal(f->sessions.index.count, remembered);
    assert_int_equal(lookup(f, "batch-1"), MDB_NOTFOUND);
    assert_int_equal(query(f, "k", value, sizeof(value)), 404);
    /* applied again (the batch retried), it is new, then remembered */
    assert_false(apply(f, 1, &e));
    assert_true(apply(f, 2, &e));
    assert_int_equal(query(f, "k", value, sizeof(value)), 200);
    assert_string_equal(value, "first");
    agenda_buf_free(&e);
}

/* Forgetting is part of the batch: when the batch aborts, the id is still
 * remembered, and a retry of it is still answered as a duplicate. */
static void test_expiry_takes_effect_only_when_committed(void **state)
{
    struct fixture *f = *state;
    struct agenda_buf old = {0}, e = {0};
    MDB_txn *txn;
    make_cmd(&old, "old", 1000, AGENDA_KV_OP_PUT, "a", "1");
    apply(f, 1, &old);
    make_cmd(&e, "late", 1000 + AGENDA_SESSION_RETENTION_MS + 251,
             AGENDA_KV_OP_PUT, "b", "2");
    assert_int_equal(mdb_txn_begin(f->env, NULL, 0, &txn), 0);
    assert_false(apply_in(f, txn, 2, &e));
    mdb_txn_abort(txn);
    agenda_sessions_aborted(&f->sessions);
    assert_int_equal(lookup(f, "old"), 0);
    assert_true(apply(f, 2, &old));
    /* the same batch committed: forgotten, a retry is applied anew */
    assert_false(apply(f, 3, &e));
    assert_int_equal(lookup(f, "old"), MDB_NOTFOUND);
    assert_false(apply(f, 4, &old));
    agenda_buf_free(&old);
    agenda_buf_free(&e);
}

/* Agents before the time-ordered table kept "sessions" (id -> result) and
 * "sessions_time"; opening moves what they remember, and drops them. */
static void test_the_old_layout_is_moved(void **state)
{
    struct fixture *f = *state;
    MDB_txn *txn;
    MDB_dbi ids, by_time;
    assert_int_equal(mdb_txn_begin(f->env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "sessions", MDB_CREATE, &ids), 0);
    assert_int_equal(mdb_dbi_open(txn, "sessions_time", MDB_CREATE,
                                  &by_time), 0);
    /* index 9, time 4242, status 201, body "made" */
    uint8_t result[18 + 4] = {9, 0, 0, 0, 0, 0, 0, 0, 0x92, 0x10, 0, 0,
                              0, 0, 0, 0, 201, 0, 'm', 'a', 'd', 'e'};
    uint8_t tkey[8 + 6] = {0, 0, 0, 0, 0, 0, 0x10, 0x92,
                           'l', 'e', 'g', 'a', 'c', 'y'};
    MDB_val k = {6, "legacy"}, v = {sizeof(result), result};
    MDB_val tk = {sizeof(tkey), tkey}, empty = {0, NULL};
    assert_int_equal(mdb_put(txn, ids, &k, &v, 0), 0);
    assert_int_equal(mdb_put(txn, by_time, &tk, &empty, 0), 0);
    /* an id whose result was forgotten already is not carried over */
    uint8_t gone[8 + 4] = {0, 0, 0, 0, 0, 0, 0x10, 0x93, 'g', 'o', 'n', 'e'};
    MDB_val gk = {sizeof(gone), gone};
    assert_int_equal(mdb_put(txn, by_time, &gk, &empty, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);

    reopen(f);
    assert_int_equal(lookup(f, "legacy"), 0);
    assert_int_equal(f->res.status, 201);
    assert_int_equal(f->res.body.len, 4);
    assert_memory_equal(f->res.body.data, "made", 4);
    assert_int_equal(lookup(f, "gone"), MDB_NOTFOUND);
    assert_int_equal(mdb_txn_begin(f->env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "sessions", 0, &ids), MDB_NOTFOUND);
    assert_int_equal(mdb_dbi_open(txn, "sessions_time", 0, &by_time),
                     MDB_NOTFOUND);
    mdb_txn_abort(txn);
    /* and a retry of it is answered from there */
    struct agenda_buf e = {0};
    make_cmd(&e, "legacy", 5000, AGENDA_KV_OP_PUT, "x", "y");
    assert_true(apply(f, 10, &e));
    assert_int_equal(f->res.status, 201);
    agenda_buf_free(&e);
}

/* A new leader's clock may be behind the last one's: ids stamped earlier
 * than ones already remembered are still found, and forgotten in time
 * order. */
static void test_times_going_backwards(void **state)
{
    struct fixture *f = *state;
    struct agenda_buf a = {0}, b = {0}, e = {0};
    make_cmd(&a, "ahead", 50000, AGENDA_KV_OP_PUT, "a", "1");
    make_cmd(&b, "behind", 20000, AGENDA_KV_OP_PUT, "b", "2");
    assert_false(apply(f, 1, &a));
    assert_false(apply(f, 2, &b));
    assert_true(apply(f, 3, &a));
    assert_true(apply(f, 4, &b));
    /* past "behind"'s retention and a step, not yet "ahead"'s */
    make_cmd(&e, "later", 20000 + AGENDA_SESSION_RETENTION_MS + 251,
             AGENDA_KV_OP_PUT, "c", "3");
    assert_false(apply(f, 5, &e));
    assert_int_equal(lookup(f, "behind"), MDB_NOTFOUND);
    assert_int_equal(lookup(f, "ahead"), 0);
    agenda_buf_free(&a);
    agenda_buf_free(&b);
    agenda_buf_free(&e);
}

/* A damaged old layout is refused, and left as it was: nothing is half
 * moved. */
static void test_a_damaged_old_layout_is_left_intact(void **state)
{
    struct fixture *f = *state;
    MDB_txn *txn;
    MDB_dbi ids, by_time, log;
    MDB_val k = {3, "abc"}, v = {18, "012345678901234567"};
    uint8_t good[8 + 3] = {0, 0, 0, 0, 0, 0, 0, 1, 'a', 'b', 'c'};
    MDB_val gk = {sizeof(good), good}, bad = {4, "shrt"}, empty = {0, NULL};
    assert_int_equal(mdb_txn_begin(f->env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "sessions", MDB_CREATE, &ids), 0);
    assert_int_equal(mdb_dbi_open(txn, "sessions_time", MDB_CREATE,
                                  &by_time), 0);
    assert_int_equal(mdb_put(txn, ids, &k, &v, 0), 0);
    assert_int_equal(mdb_put(txn, by_time, &gk, &empty, 0), 0);
    assert_int_equal(mdb_put(txn, by_time, &bad, &empty, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);

    struct agenda_sessions s2 = {0};
    assert_int_equal(mdb_txn_begin(f->env, NULL, 0, &txn), 0);
    assert_int_equal(agenda_sessions_open(&s2, txn), MDB_CORRUPTED);
    mdb_txn_abort(txn);
    agenda_sessions_aborted(&s2);
    agenda_sessions_close(&s2);
    assert_int_equal(mdb_txn_begin(f->env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "sessions", 0, &ids), 0);
    assert_int_equal(mdb_dbi_open(txn, "sessions_time", 0, &by_time), 0);
    MDB_val got;
    assert_int_equal(mdb_get(txn, ids, &k, &got), 0);
    assert_int_equal(mdb_dbi_open(txn, "sessions_log", 0, &log), 0);
    MDB_stat st;
    assert_int_equal(mdb_stat(txn, log, &st), 0);
    assert_int_equal(st.ms_entries, 0);
    mdb_txn_abort(txn);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_envelope_round_trip),
        cmocka_unit_test(test_request_id_rules),
        cmocka_unit_test_setup_teardown(test_put_then_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_is_applied_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_failed_result_is_remembered,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_ids_are_forgotten_in_batches,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_ids_expire_after_retention,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_entries_change_nothing,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_newer_agents_entry_stops_the_apply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_digest_depends_on_content_only,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_random_ids_are_found_after_a_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_aborted_batch_is_forgotten,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_expiry_takes_effect_only_when_committed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_the_old_layout_is_moved, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_times_going_backwards, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_a_damaged_old_layout_is_left_intact, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_agenda_props.c — properties of the whole agenda state machine over
 * seeded random histories of valid and invalid commands:
 *
 *  1. determinism: two fresh replicas fed the same commands give the same
 *     answers and the same digest after every step;
 *  2. a rejected command changes nothing but the audit log;
 *  3. the secondary indexes agree with the primary records afterwards
 *     (group members; events when the events module is present), the audit
 *     chain verifies with one record per command applied, and the feed
 *     keeps its limit;
 *  4. a snapshot (compacting LMDB copy) has the same digest, answers every
 *     query the same, and goes on applying commands identically.
 *
 * A failing seed prints itself; PROPS_SEEDS and PROPS_STEPS in the
 * environment override the defaults.  Ops that do not exist in this build
 * (modules still being written) are answered 400 unknown_op identically on
 * both replicas, so the test runs against whatever is linked.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "agenda_fixture.h"
#include "event_index.h"
#include "json_text.h"

/* 50 histories take about 3 s in a release build; under ASan every
 * command's nested LMDB transaction (3 MB of bookkeeping, freshly mapped
 * and poisoned) makes them about ten times slower, so fewer by default. */
#if defined(__SANITIZE_ADDRESS__)
#define DEFAULT_SEEDS 10
#else
#define DEFAULT_SEEDS 50
#endif
#define DEFAULT_STEPS 300
#define FEED_KEEP 10 /* small, so trimming happens within a history */

#define HASH_OK "$argon2id$v=19$m=65536,t=3,p=4$BxQhLjtIVWJvfImWo7C9yg$" \
                "BxQhLjtIVWJvfImWo7C9ytfk8f4LGCUyP0xZZnOAjZo"

static const char *const users[] = {"alice", "bob", "carol", "dave"};
#define NUSERS (sizeof(users) / sizeof(users[0]))
static const char *const gids[] = {"00000000000000a1", "00000000000000b2",
                                   "00000000000000c3"};
#define NGIDS (sizeof(gids) / sizeof(gids[0]))

/* ---- a small deterministic generator ------------------------------------- */

struct rng {
    uint64_t s;
};

static uint64_t rnd(struct rng *r)
{
    /* xorshift64* */
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 2685821657736338717ull;
}

static unsigned pick(struct rng *r, unsigned n)
{
    return (unsigned)(rnd(r) >> 33) % n;
}

static bool chance(struct rng *r, unsigned percent)
{
    return pick(r, 100) < percent;
}

#define ONE_OF(r, ...)                                                      \
    ((const char *const[]){__VA_ARGS__})[pick(                              \
        r, sizeof((const char *const[]){__VA_ARGS__}) / sizeof(char *))]

/* A buffer that commands are printed into. */
struct out {
    char b[8192];
    size_t n;
};

__attribute__((format(printf, 2, 3)))
static void put(struct out *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(o->b + o->n, sizeof(o->b) - o->n, fmt, ap);
    va_end(ap);
    assert_true(k >= 0 && (size_t)k < sizeof(o->b) - o->n);
    o->n += (size_t)k;
}

static const char *any_user(struct rng *r)
{
    return chance(r, 90) ? users[pick(r, NUSERS)]
                         : ONE_OF(r, "ALICE", "al", "bad name", "erin");
}

/* Mostly the few known groups, so that histories build on them; now and
 * then a fresh id (deleted groups' ids are never taken again, so without
 * those the groups would run out); sometimes a malformed one. */
static const char *any_gid(struct rng *r)
{
    static char fresh[4][AGENDA_GROUP_ID_LEN + 1];
    static unsigned next;
    if (chance(r, 10)) {
        char *f = fresh[next++ % 4];
        snprintf(f, sizeof(fresh[0]), "%016llx",
                 (unsigned long long)rnd(r));
        return f;
    }
    return chance(r, 91) ? gids[pick(r, NGIDS)]
                         : ONE_OF(r, "xyz", "00000000000000A1",
                                  "00000000000000d4");
}

static void actor(struct rng *r, struct out *o)
{
    unsigned k = pick(r, 20);
    const char *cal = ONE_OF(r, "none", "member", "leader");
    if (k < 15)
        put(o, "{\"user\":\"%s\",\"role\":\"user\",\"calendar_role\":\"%s\"}",
            users[pick(r, NUSERS)], cal);
    else if (k < 17)
        put(o, "{\"user\":\"root\",\"role\":\"admin\"}");
    else if (k < 19)
        put(o, "{\"user\":\"edge\",\"role\":\"system\"}");
    else
        put(o, "{\"role\":\"user\"}");
}

/* Commands common to every shard: the edge's audit records and mistakes. */
static void common_cmd(struct rng *r, struct out *o)
{
    switch (pick(r, 4)) {
    case 0:
        put(o, "{\"op\":\"audit.record\",\"actor\":");
        actor(r, o);
        put(o, ",\"args\":{\"action\":\"%s\",\"object\":\"user:%s\","
               "\"outcome\":\"%s\"}}",
            ONE_OF(r, "login", "login_failed", ""), any_user(r),
            ONE_OF(r, "ok", "bad password", "x\\ty"));
        break;
    case 1:
        put(o, "{\"op\":\"no.such\",\"actor\":{\"user\":\"alice\","
               "\"role\":\"user\"},\"args\":{}}");
        break;
    case 2:
        put(o, "{\"op\":\"changes.list\",\"actor\":{\"user\":\"alice\","
               "\"role\":\"user\"},\"args\":{}}");
        break;
    default:
        put(o, "{\"op\":\"audit.record\"");
        break;
    }
}

/* An actor who is usually entitled: the user named by the command most of
 * the time, otherwise anyone. */
static void actor_for(struct rng *r, struct out *o, const char *user)
{
    if (chance(r, 60) && user != NULL && user[0] != 'g')
        put(o, "{\"user\":\"%s\",\"role\":\"user\",\"calendar_role\":\"%s\"}",
            user, ONE_OF(r, "none", "member", "leader"));
    else if (chance(r, 50) && user != NULL && user[0] == 'g')
        put(o, "{\"user\":\"%s\",\"role\":\"user\",\"calendar_role\":\"%s\"}",
            users[pick(r, NUSERS)], ONE_OF(r, "member", "leader", "none"));
    else
        actor(r, o);
}

/* A valid value most of the time, else one of the invalid ones. */
#define VALID_OR(r, valid, ...)                                             \
    (chance(r, 95) ? (valid) : ONE_OF(r, __VA_ARGS__))

static void users_cmd(struct rng *r, struct out *o)
{
    unsigned k = pick(r, 10);
    if (k == 9) {
        common_cmd(r, o);
        return;
    }
    const char *op = k < 4 ? "user.register" : k < 7 ? "user.update"
                                                     : "user.password";
    const char *name = any_user(r);
    put(o, "{\"op\":\"%s\",\"actor\":", op);
    if (k < 4 && chance(r, 50))
        put(o, "{\"role\":\"user\"}"); /* anonymous registration */
    else
        actor_for(r, o, name);
    put(o, ",\"args\":{\"username\":\"%s\"", name);
    if (k < 4 || (k < 7 && chance(r, 60)))
        put(o, ",\"display_name\":\"%s\"",
            VALID_OR(r, ONE_OF(r, "Alice A.", "Bob", "Zo\u00eb"), "", " "));
    if (k < 4 || (k < 7 && chance(r, 50)))
        put(o, ",\"email\":\"%s\"",
            VALID_OR(r, ONE_OF(r, "a@example.com", "b@example.org"), "nope"));
    if (k < 4 || k >= 7)
        put(o, ",\"password_hash\":\"%s\"", VALID_OR(r, HASH_OK, "hunter2"));
    if (k < 4 && chance(r, 10))
        put(o, ",\"role\":\"%s\"", ONE_OF(r, "admin", "user", "system"));
    if (chance(r, 3))
        put(o, ",\"surprise\":1");
    put(o, "}}");
}

static void groups_cmd(struct rng *r, struct out *o)
{
    unsigned k = pick(r, 16);
    if (k == 15) {
        common_cmd(r, o);
        return;
    }
    static const char *const ops[] = {
        "group.create", "group.create", "group.create", "group.update",
        "group.update", "group.delete", "group.member_add",
        "group.member_add", "group.member_add", "group.member_add",
        "group.member_remove", "group.member_role", "group.member_role",
        "group.leave", "group.leave",
    };
    const char *op = ops[k];
    put(o, "{\"op\":\"%s\",\"actor\":", op);
    if (k >= 3 && k < 13 && chance(r, 35))
        put(o, "{\"user\":\"root\",\"role\":\"admin\"}"); /* manages any */
    else
        actor(r, o);
    put(o, ",\"args\":{\"id\":\"%s\"", any_gid(r));
    if (k < 3 || (k < 5 && chance(r, 60)))
        put(o, ",\"name\":\"%s\"",
            VALID_OR(r, ONE_OF(r, "Team", "Band", "Crew"), "", "\\u0001"));
    if (k < 5 && chance(r, 40))
        put(o, ",\"description\":\"%s\"", ONE_OF(r, "We meet", "", "L\\n2"));
    if ((k == 3 || k == 4 || k == 5) && chance(r, 40))
        put(o, ",\"expected_version\":%u", pick(r, 6));
    if (k >= 6 && k <= 12)
        put(o, ",\"user\":\"%s\"", any_user(r));
    if ((k >= 6 && k <= 9 && chance(r, 50)) || k == 11 || k == 12)
        put(o, ",\"role\":\"%s\"",
            VALID_OR(r, ONE_OF(r, "member", "leader"), "owner"));
    if (chance(r, 3))
        put(o, ",\"surprise\":1");
    put(o, "}}");
}

static void events_cmd(struct rng *r, struct out *o)
{
    unsigned k = pick(r, 14);
    if (k == 13) {
        common_cmd(r, o);
        return;
    }
    /* few calendars and ids, so that updates, answers and deletes mostly
     * find the events that creates made */
    char cal[40];
    unsigned owner_ix = pick(r, 3);
    const char *owner = users[owner_ix];
    if (chance(r, 75))
        snprintf(cal, sizeof(cal), "%s", owner);
    else
        snprintf(cal, sizeof(cal), "g:%s", gids[0]);
    if (chance(r, 3))
        snprintf(cal, sizeof(cal), "%s", ONE_OF(r, "g:zz", "A B", "x"));
    const char *op = k < 5 ? "event.create" : k < 9 ? "event.update"
                     : k < 12 ? "event.rsvp" : "event.delete";
    bool rsvp = k >= 9 && k < 12;
    put(o, "{\"op\":\"%s\",\"actor\":", op);
    if (rsvp)
        put(o, "{\"user\":\"%s\",\"role\":\"user\"}",
            users[pick(r, NUSERS)]); /* rsvp: usually someone invited */
    else if (chance(r, 75) && cal[0] == 'g')
        put(o, "{\"user\":\"%s\",\"role\":\"user\",\"calendar_role\":"
               "\"%s\"}", users[pick(r, NUSERS)],
            ONE_OF(r, "member", "leader", "leader"));
    else if (chance(r, 75))
        put(o, "{\"user\":\"%s\",\"role\":\"user\",\"calendar_role\":"
               "\"%s\"}", owner, ONE_OF(r, "none", "member", "leader"));
    else
        actor(r, o);
    /* ids are unique on the shard: each calendar has its own few */
    char id[AGENDA_EVENT_ID_LEN + 1];
    snprintf(id, sizeof(id), "%030x%02x", (unsigned)cal[0], pick(r, 4));
    put(o, ",\"args\":{\"calendar\":\"%s\",\"id\":\"%s\"", cal,
        VALID_OR(r, id, "e1", "000000000000000000000000000000E1"));
    if (rsvp) {
        put(o, ",\"response\":\"%s\"}}",
            VALID_OR(r, ONE_OF(r, "accepted", "declined", "tentative"),
                     "needs_action", "maybe"));
        return;
    }
    if (k < 9) {
        bool create = k < 5;
        if (create || chance(r, 40))
            put(o, ",\"title\":\"%s\"",
                VALID_OR(r, ONE_OF(r, "Standup", "Lunch", "Review"), ""));
        if (create || chance(r, 40)) {
            int h = (int)pick(r, 20);
            int len = chance(r, 95) ? 1 + (int)pick(r, 3) : -1;
            put(o, ",\"start\":\"2026-11-20T%02d:00:00Z\","
                   "\"end\":\"2026-11-20T%02d:30:00Z\"", h, h + len);
        }
        if (create || chance(r, 10))
            put(o, ",\"time_zone\":\"%s\"",
                VALID_OR(r, ONE_OF(r, "UTC", "Europe/Madrid"),
                         "Mars/Olympus"));
        if (chance(r, 60)) {
            /* others than the owner, usually */
            put(o, ",\"participants\":[");
            unsigned n = pick(r, 3);
            for (unsigned i = 0; i < n; i++) {
                const char *u = chance(r, 90)
                                    ? users[(owner_ix + 1 + i) % NUSERS]
                                    : any_user(r);
                put(o, "%s\"%s\"", i ? "," : "", u);
            }
            put(o, "]");
        }
        if (chance(r, 15))
            put(o, ",\"visibility\":\"%s\"",
                VALID_OR(r, "private", "secret"));
        if (chance(r, 20))
            put(o, ",\"conflict_policy\":\"%s\"",
                VALID_OR(r, ONE_OF(r, "reject", "allow"), "maybe"));
    }
    if (k >= 5 && chance(r, k < 9 ? 90 : 30)) /* update requires it */
        put(o, ",\"expected_version\":%s", ONE_OF(r, "1", "1", "2", "0"));
    if (chance(r, 3))
        put(o, ",\"surprise\":1");
    put(o, "}}");
}

/* ---- state checks -------------------------------------------------------- */

/* SHA-256 of everything but the audit log (and its head), to show that a
 * rejected command changed nothing else. */
static void state_digest(struct agenda_fx *fx, uint8_t out[32])
{
    const struct agenda_db *d = &fx->sm.db;
    const MDB_dbi dbs[] = {d->users, d->groups, d->group_members, d->events,
                           d->ev_by_cal, d->ev_by_part, d->cal_meta, d->feed,
                           d->feed_by_target, d->meta};
    EVP_MD_CTX *h = EVP_MD_CTX_new();
    assert_non_null(h);
    assert_int_equal(EVP_DigestInit_ex(h, EVP_sha256(), NULL), 1);
    MDB_txn *txn;
    assert_int_equal(mdb_txn_begin(fx->env, NULL, MDB_RDONLY, &txn), 0);
    for (size_t i = 0; i < sizeof(dbs) / sizeof(dbs[0]); i++) {
        MDB_cursor *cur;
        assert_int_equal(mdb_cursor_open(txn, dbs[i], &cur), 0);
        MDB_val k, v;
        int rc;
        EVP_DigestUpdate(h, "|", 1);
        while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
            if (dbs[i] == d->meta && k.mv_size == 10 &&
                memcmp(k.mv_data, "audit_head", 10) == 0)
                continue;
            uint8_t lens[16];
            agenda_key_u64(lens, k.mv_size);
            agenda_key_u64(lens + 8, v.mv_size);
            EVP_DigestUpdate(h, lens, sizeof(lens));
            EVP_DigestUpdate(h, k.mv_data, k.mv_size);
            EVP_DigestUpdate(h, v.mv_data, v.mv_size);
        }
        assert_int_equal(rc, MDB_NOTFOUND);
        mdb_cursor_close(cur);
    }
    mdb_txn_abort(txn);
    unsigned int n = 32;
    assert_int_equal(EVP_DigestFinal_ex(h, out, &n), 1);
    EVP_MD_CTX_free(h);
}

/* The group member index holds exactly one entry per membership of the
 * group records, with the same role. */
static void check_group_index(struct agenda_fx *fx, uint64_t seed)
{
    const struct agenda_db *d = &fx->sm.db;
    MDB_txn *txn;
    assert_int_equal(mdb_txn_begin(fx->env, NULL, MDB_RDONLY, &txn), 0);
    MDB_cursor *cur;
    MDB_val k, v;
    size_t memberships = 0, entries = 0;
    assert_int_equal(mdb_cursor_open(txn, d->groups, &cur), 0);
    while (mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0) {
        json_t *g = json_loadb(v.mv_data, v.mv_size, 0, NULL);
        json_t *members = json_object_get(g, "members");
        const char *id = json_string_value(json_object_get(g, "id"));
        if (!json_is_object(members) || id == NULL)
            fail_msg("seed %llu: malformed group record",
                     (unsigned long long)seed);
        const char *user;
        json_t *role;
        json_object_foreach(members, user, role) {
            struct agenda_key ik;
            agenda_key_reset(&ik);
            agenda_key_str(&ik, user);
            agenda_key_str(&ik, id);
            MDB_val ikv = agenda_key_val(&ik), iv;
            if (mdb_get(txn, d->group_members, &ikv, &iv) != 0 ||
                iv.mv_size != strlen(json_string_value(role)) ||
                memcmp(iv.mv_data, json_string_value(role), iv.mv_size) != 0)
                fail_msg("seed %llu: index lacks %s in %s as %s",
                         (unsigned long long)seed, user, id,
                         json_string_value(role));
            memberships++;
        }
        json_decref(g);
    }
    mdb_cursor_close(cur);
    MDB_stat st;
    assert_int_equal(mdb_stat(txn, d->group_members, &st), 0);
    entries = st.ms_entries;
    mdb_txn_abort(txn);
    if (entries != memberships)
        fail_msg("seed %llu: %zu index entries for %zu memberships",
                 (unsigned long long)seed, entries, memberships);
}

static void check_event_index(struct agenda_fx *fx, uint64_t seed)
{
    MDB_txn *txn;
    char why[256] = "";
    assert_int_equal(mdb_txn_begin(fx->env, NULL, MDB_RDONLY, &txn), 0);
    int rc = agenda_events_check_indexes(txn, &fx->sm.db, why, sizeof(why));
    mdb_txn_abort(txn);
    if (rc != 0)
        fail_msg("seed %llu: event indexes disagree (%d): %s",
                 (unsigned long long)seed, rc, why);
}

/* Every change is stored exactly as json_dumps(AGENDA_JSON_FLAGS) writes
 * it: they are written directly (json_text.h), byte for byte alike. */
static void check_feed_canonical(struct agenda_fx *fx, uint64_t seed)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc;
    assert_int_equal(mdb_txn_begin(fx->env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(mdb_cursor_open(txn, fx->sm.db.feed, &cur), 0);
    while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
        json_t *j = json_loadb(v.mv_data, v.mv_size, 0, NULL);
        char *canon = j != NULL ? json_dumps(j, AGENDA_JSON_FLAGS) : NULL;
        if (canon == NULL || strlen(canon) != v.mv_size ||
            memcmp(canon, v.mv_data, v.mv_size) != 0)
            fail_msg("seed %llu: change stored as %.*s, canonical %s",
                     (unsigned long long)seed, (int)v.mv_size,
                     (const char *)v.mv_data, canon ? canon : "(none)");
        free(canon);
        json_decref(j);
    }
    assert_int_equal(rc, MDB_NOTFOUND);
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
}

/* One audit record per command applied, a sound chain, a bounded feed. */
static void check_logs(struct agenda_fx *fx, uint64_t seed, size_t applied)
{
    assert_int_equal(agenda_fx_query(fx, "{\"op\":\"audit.verify\",\"actor\":"
                                         "{\"user\":\"root\",\"role\":"
                                         "\"admin\"},\"args\":{}}"),
                     200);
    json_t *b = agenda_fx_body(fx);
    if (!json_is_true(json_object_get(b, "ok")) ||
        json_integer_value(json_object_get(b, "records")) !=
            (json_int_t)applied)
        fail_msg("seed %llu: audit chain %.*s after %zu commands",
                 (unsigned long long)seed, (int)fx->res.body.len,
                 (const char *)fx->res.body.data, applied);
    json_decref(b);
    MDB_txn *txn;
    MDB_stat st;
    assert_int_equal(mdb_txn_begin(fx->env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(mdb_stat(txn, fx->sm.db.feed, &st), 0);
    mdb_txn_abort(txn);
    if (st.ms_entries > FEED_KEEP)
        fail_msg("seed %llu: feed keeps %zu changes",
                 (unsigned long long)seed, (size_t)st.ms_entries);
    check_feed_canonical(fx, seed);
}

/* ---- comparing replicas -------------------------------------------------- */

static void same_digest(struct agenda_fx *a, struct agenda_fx *b,
                        uint64_t seed, int step, const char *what)
{
    char da[65], db[65];
    agenda_fx_digest(a, da);
    agenda_fx_digest(b, db);
    if (strcmp(da, db) != 0)
        fail_msg("seed %llu step %d: digests differ (%s)",
                 (unsigned long long)seed, step, what);
}

static void same_answer(struct agenda_fx *a, struct agenda_fx *b,
                        const char *q, uint64_t seed)
{
    int sa = agenda_fx_query(a, q);
    struct agenda_buf copy = {0};
    assert_int_equal(agenda_buf_append(&copy, a->res.body.data,
                                       a->res.body.len),
                     0);
    int sb = agenda_fx_query(b, q);
    if (sa != sb || copy.len != b->res.body.len ||
        memcmp(copy.data, b->res.body.data, copy.len) != 0)
        fail_msg("seed %llu: %s answered %d %.*s vs %d %.*s",
                 (unsigned long long)seed, q, sa, (int)copy.len,
                 (const char *)copy.data, sb, (int)b->res.body.len,
                 (const char *)b->res.body.data);
    agenda_buf_free(&copy);
}

/* The feed of target from tokens before the floor (410) up to the head,
 * in small pages. */
static void same_changes(struct agenda_fx *a, struct agenda_fx *b,
                         const char *target, uint64_t seed)
{
    assert_int_equal(agenda_fx_query(a, "{\"op\":\"changes.head\",\"actor\":"
                                        "{\"user\":\"root\",\"role\":"
                                        "\"admin\"},\"args\":{}}"),
                     200);
    json_t *body = agenda_fx_body(a);
    json_int_t head = json_integer_value(json_object_get(body,
                                                         "sync_token"));
    json_decref(body);
    char q[512];
    for (json_int_t since = head - 2 * FEED_KEEP; since <= head; since += 3) {
        if (since < 0)
            continue;
        snprintf(q, sizeof(q),
                 "{\"op\":\"changes.list\",\"actor\":{\"user\":\"root\","
                 "\"role\":\"admin\"},\"args\":{\"target\":\"%s\","
                 "\"since\":%lld,\"limit\":3}}",
                 target, (long long)since);
        same_answer(a, b, q, seed);
    }
}

/* The queries a snapshot must answer exactly as its source. */
static void same_answers(struct agenda_fx *a, struct agenda_fx *b, int kind,
                         uint64_t seed)
{
    static const char *const admin = "{\"user\":\"root\",\"role\":\"admin\"}";
    char q[512];
    same_answer(a, b, "{\"op\":\"audit.verify\",\"actor\":{\"user\":\"root\","
                      "\"role\":\"admin\"},\"args\":{}}", seed);
    same_answer(a, b, "{\"op\":\"audit.list\",\"actor\":{\"user\":\"root\","
                      "\"role\":\"admin\"},\"args\":{\"limit\":500}}", seed);
    same_answer(a, b, "{\"op\":\"changes.head\",\"actor\":{\"user\":\"root\","
                      "\"role\":\"admin\"},\"args\":{}}", seed);
    for (size_t u = 0; u < NUSERS; u++) {
        snprintf(q, sizeof(q), "user:%s", users[u]);
        same_changes(a, b, q, seed);
        if (kind == AGENDA_SHARD_USERS) {
            snprintf(q, sizeof(q),
                     "{\"op\":\"user.get\",\"actor\":%s,\"args\":"
                     "{\"username\":\"%s\"}}", admin, users[u]);
            same_answer(a, b, q, seed);
        }
        if (kind == AGENDA_SHARD_GROUPS) {
            snprintf(q, sizeof(q),
                     "{\"op\":\"group.list\",\"actor\":%s,\"args\":"
                     "{\"user\":\"%s\"}}", admin, users[u]);
            same_answer(a, b, q, seed);
        }
        if (kind == AGENDA_SHARD_EVENTS) {
            static const char *const ops[] = {"event.list",
                                              "event.list_participant"};
            static const char *const keys[] = {"calendar", "user"};
            for (int i = 0; i < 2; i++) {
                snprintf(q, sizeof(q),
                         "{\"op\":\"%s\",\"actor\":%s,\"args\":{\"%s\":"
                         "\"%s\",\"from\":\"2026-11-19T00:00:00Z\","
                         "\"to\":\"2026-11-22T00:00:00Z\"}}",
                         ops[i], admin, keys[i], users[u]);
                same_answer(a, b, q, seed);
            }
            snprintf(q, sizeof(q), "calendar:%s", users[u]);
            same_changes(a, b, q, seed);
        }
    }
    if (kind == AGENDA_SHARD_USERS)
        same_answer(a, b, "{\"op\":\"user.list\",\"actor\":{\"user\":\"root\","
                          "\"role\":\"admin\"},\"args\":{\"prefix\":\"a\"}}",
                    seed);
    for (size_t g = 0; g < NGIDS && kind != AGENDA_SHARD_USERS; g++) {
        if (kind == AGENDA_SHARD_GROUPS) {
            snprintf(q, sizeof(q),
                     "{\"op\":\"group.get\",\"actor\":%s,\"args\":"
                     "{\"id\":\"%s\"}}", admin, gids[g]);
            same_answer(a, b, q, seed);
        }
        snprintf(q, sizeof(q), "%s:%s",
                 kind == AGENDA_SHARD_GROUPS ? "group" : "calendar:g",
                 gids[g]);
        same_changes(a, b, q, seed);
    }
}

/* ---- the property runs --------------------------------------------------- */

typedef void (*gen_fn)(struct rng *r, struct out *o);

/* The shard kinds a history drives, each on two replicas. */
static const struct kind {
    int kind;
    gen_fn gen;
    const char *needs; /* the op whose module must be linked */
} kinds[] = {
    {AGENDA_SHARD_USERS, users_cmd, "user.register"},
    {AGENDA_SHARD_GROUPS, groups_cmd, "group.create"},
    {AGENDA_SHARD_EVENTS, events_cmd, "event.create"},
};
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

struct pair {
    const struct kind *k;
    struct agenda_fx *a, *b;
    size_t applied;       /* commands applied (retries excluded) */
    struct out last;      /* the last command, for retries */
    char last_id[32];
    uint8_t state[32];    /* state_digest(a) after the last command */
};

static int env_int(const char *name, int dflt)
{
    const char *s = getenv(name);
    return s != NULL && atoi(s) > 0 ? atoi(s) : dflt;
}

/* Apply one command (or a retry of the last one) to both replicas. */
static void step_pair(struct pair *p, struct rng *r, uint64_t seed, int step)
{
    struct out o = {.n = 0};
    char id[32];
    if (p->last_id[0] != '\0' && chance(r, 5)) {
        o = p->last; /* a client retry after a lost answer */
        memcpy(id, p->last_id, sizeof(id));
    } else {
        p->k->gen(r, &o);
        snprintf(id, sizeof(id), "req-%llu-%d", (unsigned long long)seed,
                 step);
    }
    int sa = agenda_fx_cmd_id(p->a, id, o.b);
    bool dup = p->a->duplicate;
    struct agenda_buf ans = {0};
    assert_int_equal(agenda_buf_append(&ans, p->a->res.body.data,
                                       p->a->res.body.len),
                     0);
    int sb = agenda_fx_cmd_id(p->b, id, o.b);
    if (sa != sb || dup != p->b->duplicate || ans.len != p->b->res.body.len ||
        memcmp(ans.data, p->b->res.body.data, ans.len) != 0)
        fail_msg("seed %llu step %d: %s answered %d vs %d",
                 (unsigned long long)seed, step, o.b, sa, sb);
    if (sa >= 500)
        fail_msg("seed %llu step %d: %s answered %d %.*s",
                 (unsigned long long)seed, step, o.b, sa, (int)ans.len,
                 (const char *)ans.data);
    agenda_buf_free(&ans);
    if (!dup)
        p->applied++;
    same_digest(p->a, p->b, seed, step, o.b);
    uint8_t now[32];
    state_digest(p->a, now);
    if ((sa >= 400 || dup) && memcmp(p->state, now, 32) != 0)
        fail_msg("seed %llu step %d: %s %s (%d) changed state",
                 (unsigned long long)seed, step, dup ? "retried" : "rejected",
                 o.b, sa);
    memcpy(p->state, now, sizeof(now));
    p->last = o;
    memcpy(p->last_id, id, sizeof(id));
}

static void run_history(uint64_t seed, int steps)
{
    struct pair pairs[NKINDS];
    size_t n = 0;
    for (size_t i = 0; i < NKINDS; i++) {
        if (agenda_op_find(kinds[i].needs) == NULL && i > 0)
            continue; /* module not linked yet; audit/feed still run */
        struct pair *p = &pairs[n++];
        memset(p, 0, sizeof(*p));
        p->k = &kinds[i];
        p->a = agenda_fx_new(kinds[i].kind, "", "");
        p->b = agenda_fx_new(kinds[i].kind, "", "");
        p->a->sm.shard.feed_keep = p->b->sm.shard.feed_keep = FEED_KEEP;
        state_digest(p->a, p->state);
    }
    struct rng r = {seed * 0x9E3779B97F4A7C15ull + 1};
    for (int step = 0; step < steps; step++)
        step_pair(&pairs[pick(&r, (unsigned)n)], &r, seed, step);

    for (size_t i = 0; i < n; i++) {
        struct pair *p = &pairs[i];
        check_logs(p->a, seed, p->applied);
        if (p->k->kind == AGENDA_SHARD_GROUPS)
            check_group_index(p->a, seed);
        if (p->k->kind == AGENDA_SHARD_EVENTS)
            check_event_index(p->a, seed);

        /* a snapshot of a is a replica: same digest, answers and future */
        struct agenda_fx *s = agenda_fx_open_copy(p->a);
        same_digest(p->a, s, seed, steps, "snapshot");
        same_answers(p->a, s, p->k->kind, seed);
        for (int step = 0; step < 10; step++) {
            struct out o = {.n = 0};
            p->k->gen(&r, &o);
            int sa = agenda_fx_cmd(p->a, o.b);
            int ss = agenda_fx_cmd(s, o.b);
            if (sa != ss)
                fail_msg("seed %llu after snapshot: %s answered %d vs %d",
                         (unsigned long long)seed, o.b, sa, ss);
        }
        same_digest(p->a, s, seed, steps + 10, "after snapshot");
        agenda_fx_free(s);
        agenda_fx_free(p->a);
        agenda_fx_free(p->b);
    }
}

static void test_replicas_agree_on_random_histories(void **state)
{
    (void)state;
    int seeds = env_int("PROPS_SEEDS", DEFAULT_SEEDS);
    int steps = env_int("PROPS_STEPS", DEFAULT_STEPS);
    for (size_t i = 0; i < NKINDS; i++)
        if (agenda_op_find(kinds[i].needs) == NULL)
            print_message("(%s not linked: its shard is not driven)\n",
                          kinds[i].needs);
    for (int seed = 1; seed <= seeds; seed++)
        run_history((uint64_t)seed, steps);
}

/* The generators produce both outcomes: a history of only rejections (or
 * only successes) would make the properties above vacuous. */
static void test_histories_mix_outcomes(void **state)
{
    (void)state;
    bool failed = false;
    for (size_t i = 0; i < NKINDS; i++) {
        if (agenda_op_find(kinds[i].needs) == NULL)
            continue;
        struct agenda_fx *fx = agenda_fx_new(kinds[i].kind, "", "");
        struct rng r = {12345};
        int ok = 0, bad = 0;
        for (int step = 0; step < 300; step++) {
            struct out o = {.n = 0};
            kinds[i].gen(&r, &o);
            int st = agenda_fx_cmd(fx, o.b);
            if (getenv("PROPS_TRACE") != NULL)
                printf("%d %s %s\n", st, agenda_fx_error(fx), o.b + 7);
            if (st < 300)
                ok++;
            else
                bad++;
        }
        agenda_fx_free(fx);
        if (ok < 30 || bad < 30) {
            print_error("%s: %d accepted, %d rejected of 300\n",
                        kinds[i].needs, ok, bad);
            failed = true;
        }
    }
    assert_false(failed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_histories_mix_outcomes),
        cmocka_unit_test(test_replicas_agree_on_random_histories),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

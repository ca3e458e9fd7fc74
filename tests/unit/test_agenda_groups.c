/*
 * test_agenda_groups.c — the groups shard: group.create, get, list,
 * update, delete, member_add, member_remove, member_role and leave through
 * the agenda state machine, and the membership index kept in step with the
 * records.
 *
 * With AGENDA_WRITE_CORPUS=<dir> the run also writes a few valid operation
 * sequences into <dir> (seeds of tests/fuzz/fuzz_agenda_ops.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agenda_fixture.h"
#include "agenda_test_util.h"

#define G1 "00000000000000a1"
#define G2 "00000000000000b2"
#define G3 "ff000000000000c3"

/* ---- helpers ----------------------------------------------------------- */

static int setup(void **state)
{
    *state = agenda_fx_new(AGENDA_SHARD_GROUPS, "", "");
    return 0;
}

static int teardown(void **state)
{
    agenda_fx_free(*state);
    return 0;
}

static int create(struct agenda_fx *fx, const char *who, const char *id,
                  const char *name)
{
    char args[256];
    snprintf(args, sizeof(args), "{\"id\":\"%s\",\"name\":\"%s\"}", id, name);
    return tu_cmd(fx, "group.create", tu_user(who), args);
}

static int add(struct agenda_fx *fx, const char *who, const char *id,
               const char *user, const char *role)
{
    char args[256];
    snprintf(args, sizeof(args), "{\"id\":\"%s\",\"user\":\"%s\",\"role\":"
             "\"%s\"}", id, user, role);
    return tu_cmd(fx, "group.member_add", tu_user(who), args);
}

static int get_as(struct agenda_fx *fx, const char *actor, const char *id)
{
    char args[64];
    snprintf(args, sizeof(args), "{\"id\":\"%s\"}", id);
    return tu_query(fx, "group.get", actor, args);
}

/* "user:role,..." of the last answer's group, in order. */
static const char *members(struct agenda_fx *fx)
{
    static char out[8192];
    out[0] = '\0';
    json_t *b = agenda_fx_body(fx);
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(json_object_get(b, "group"),
                                       "members"), i, m) {
        size_t n = strlen(out);
        snprintf(out + n, sizeof(out) - n, "%s%s:%s", n ? "," : "",
                 json_string_value(json_object_get(m, "user")),
                 json_string_value(json_object_get(m, "role")));
    }
    json_decref(b);
    return out;
}

/* "id:role,..." of the groups of user (group.list as the edge). */
static const char *groups_of(struct agenda_fx *fx, const char *user)
{
    static char out[16384];
    char args[64];
    snprintf(args, sizeof(args), "{\"user\":\"%s\"}", user);
    if (tu_query(fx, "group.list", TU_SYSTEM, args) != 200)
        return "(error)";
    out[0] = '\0';
    json_t *b = agenda_fx_body(fx);
    size_t i;
    json_t *g;
    json_array_foreach(json_object_get(b, "groups"), i, g) {
        size_t n = strlen(out);
        snprintf(out + n, sizeof(out) - n, "%s%s:%s", n ? "," : "",
                 json_string_value(json_object_get(g, "id")),
                 json_string_value(json_object_get(g, "role")));
    }
    json_decref(b);
    return out;
}

static int64_t version_of(struct agenda_fx *fx, const char *id)
{
    if (get_as(fx, TU_SYSTEM, id) != 200)
        return -1;
    return tu_int(fx, "group.version");
}

/*
 * The invariants, read straight from the databases: every membership in a
 * record has exactly its index entry with the same role, every index entry
 * belongs to a membership, every group has a member and a leader.
 */
static void check_index(struct agenda_fx *fx)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    size_t memberships = 0, entries = 0;
    const struct agenda_db *d = &fx->sm.db;
    assert_int_equal(mdb_txn_begin(fx->env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(mdb_cursor_open(txn, d->groups, &cur), 0);
    while (mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0) {
        json_t *g = json_loadb(v.mv_data, v.mv_size, 0, NULL);
        assert_non_null(g);
        const char *id = json_string_value(json_object_get(g, "id"));
        assert_non_null(id);
        assert_int_equal(k.mv_size, strlen(id) + 1);
        assert_memory_equal(k.mv_data, id, k.mv_size);
        json_t *ms = json_object_get(g, "members");
        assert_true(json_object_size(ms) > 0);
        size_t leaders = 0;
        const char *user;
        json_t *role;
        json_object_foreach(ms, user, role) {
            char key[128];
            size_t n = (size_t)snprintf(key, sizeof(key), "%s%c%s", user,
                                        '\0', id) + 1;
            MDB_val ik = {n, key}, iv;
            if (mdb_get(txn, d->group_members, &ik, &iv) != 0)
                fail_msg("no index entry for %s in %s", user, id);
            assert_int_equal(iv.mv_size, strlen(json_string_value(role)));
            assert_memory_equal(iv.mv_data, json_string_value(role),
                                iv.mv_size);
            leaders += strcmp(json_string_value(role), "leader") == 0;
            memberships++;
        }
        if (leaders == 0)
            fail_msg("group %s has no leader", id);
        json_decref(g);
    }
    mdb_cursor_close(cur);
    assert_int_equal(mdb_cursor_open(txn, d->group_members, &cur), 0);
    while (mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0) {
        const char *user = k.mv_data;
        const char *id = user + strlen(user) + 1;
        assert_int_equal(k.mv_size, strlen(user) + strlen(id) + 2);
        char gk[32];
        snprintf(gk, sizeof(gk), "%s", id);
        MDB_val key = {strlen(gk) + 1, gk}, gv;
        if (mdb_get(txn, d->groups, &key, &gv) != 0)
            fail_msg("index entry %s/%s without a group", user, id);
        json_t *g = json_loadb(gv.mv_data, gv.mv_size, 0, NULL);
        if (json_object_get(json_object_get(g, "members"), user) == NULL)
            fail_msg("index entry %s/%s without a membership", user, id);
        json_decref(g);
        entries++;
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    assert_int_equal(entries, memberships);
}

/* A group G1 led by alice with member bob. */
static void alice_and_bob(struct agenda_fx *fx)
{
    assert_int_equal(create(fx, "alice", G1, "Choir"), 201);
    assert_int_equal(add(fx, "alice", G1, "bob", "member"), 201);
}

/* ---- group.create ------------------------------------------------------ */

static void create_makes_creator_leader(void **state)
{
    struct agenda_fx *fx = *state;
    assert_int_equal(tu_cmd(fx, "group.create", tu_user("Alice"),
                            "{\"id\":\"" G1 "\",\"name\":\"Choir\","
                            "\"description\":\"Tuesdays\\nat 8\"}"),
                     201);
    assert_string_equal(tu_str(fx, "group.id"), G1);
    assert_string_equal(tu_str(fx, "group.name"), "Choir");
    assert_string_equal(tu_str(fx, "group.description"), "Tuesdays\nat 8");
    assert_string_equal(tu_str(fx, "group.calendar"), "g:" G1);
    assert_string_equal(tu_str(fx, "group.created"), "2026-11-18T11:06:40Z");
    assert_string_equal(tu_str(fx, "group.updated"), "2026-11-18T11:06:40Z");
    assert_int_equal(tu_int(fx, "group.version"), 1);
    assert_true(tu_int(fx, "sync_token") >= 1);
    assert_string_equal(members(fx), "alice:leader");
    assert_string_equal(tu_feed(fx, "group:" G1), "group.created");
    assert_string_equal(tu_feed(fx, "user:alice"), "group.created");
    assert_string_equal(tu_last_audit_object(fx), "group:" G1);
    assert_string_equal(groups_of(fx, "alice"), G1 ":leader");
    check_index(fx);

    /* description is optional */
    assert_int_equal(create(fx, "alice", G2, "Band"), 201);
    assert_string_equal(tu_str(fx, "group.description"), "");
    assert_string_equal(groups_of(fx, "alice"), G1 ":leader," G2 ":leader");
}

static void create_rejects_bad_input(void **state)
{
    struct agenda_fx *fx = *state;
    char longname[AGENDA_GROUP_NAME_MAX + 2];
    char longdesc[AGENDA_GROUP_DESCRIPTION_MAX + 2];
    memset(longname, 'n', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    memset(longdesc, 'd', sizeof(longdesc) - 1);
    longdesc[sizeof(longdesc) - 1] = '\0';
    char a_longname[256], a_longdesc[4096];
    snprintf(a_longname, sizeof(a_longname),
             "{\"id\":\"" G2 "\",\"name\":\"%s\"}", longname);
    snprintf(a_longdesc, sizeof(a_longdesc),
             "{\"id\":\"" G2 "\",\"name\":\"x\",\"description\":\"%s\"}",
             longdesc);
    assert_int_equal(create(fx, "alice", G1, "Choir"), 201);
    const struct {
        const char *actor, *args;
        int status;
        const char *code;
    } cases[] = {
        {NULL, "{\"name\":\"x\"}", 400, "missing_field"},
        {NULL, "{\"id\":\"00a1\",\"name\":\"x\"}", 400, "invalid_field"},
        {NULL, "{\"id\":\"00000000000000A1\",\"name\":\"x\"}", 400,
         "invalid_field"},
        {NULL, "{\"id\":\"00000000000000g1\",\"name\":\"x\"}", 400,
         "invalid_field"},
        {NULL, "{\"id\":\"00000000000000a1b\",\"name\":\"x\"}", 400,
         "invalid_field"},
        {NULL, "{\"id\":161,\"name\":\"x\"}", 400, "invalid_field"},
        {NULL, "{\"id\":\"" G2 "\"}", 400, "missing_field"},
        {NULL, "{\"id\":\"" G2 "\",\"name\":\" \"}", 400, "invalid_field"},
        {NULL, "{\"id\":\"" G2 "\",\"name\":\"a\\nb\"}", 400,
         "invalid_field"},
        {NULL, a_longname, 400, "invalid_field"},
        {NULL, a_longdesc, 400, "invalid_field"},
        {NULL, "{\"id\":\"" G2 "\",\"name\":\"x\",\"description\":[]}", 400,
         "invalid_field"},
        {NULL, "{\"id\":\"" G2 "\",\"name\":\"x\",\"members\":{}}", 400,
         "unknown_field"},
        {NULL, "{\"id\":\"" G2 "\",\"name\":\"x\",\"version\":3}", 400,
         "unknown_field"},
        {TU_SYSTEM, "{\"id\":\"" G2 "\",\"name\":\"x\"}", 400,
         "invalid_actor"},
        {NULL, "{\"id\":\"" G1 "\",\"name\":\"again\"}", 409, "group_exists"},
        {"{\"user\":\"bob\",\"role\":\"user\"}",
         "{\"id\":\"" G1 "\",\"name\":\"again\"}", 409, "group_exists"},
    };
    uint64_t sig = tu_state_sig(fx);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int st = tu_cmd(fx, "group.create",
                        cases[i].actor ? cases[i].actor : tu_user("alice"),
                        cases[i].args);
        if (st != cases[i].status ||
            strcmp(agenda_fx_error(fx), cases[i].code) != 0)
            fail_msg("case %zu: got %d %s, want %d %s", i, st,
                     agenda_fx_error(fx), cases[i].status, cases[i].code);
    }
    assert_true(tu_state_sig(fx) == sig);
    assert_int_equal(get_as(fx, TU_SYSTEM, G2), 404);
    assert_int_equal(get_as(fx, TU_SYSTEM, G1), 200);
    assert_string_equal(tu_str(fx, "group.name"), "Choir");
    assert_string_equal(members(fx), "alice:leader");

    /* the limits are inclusive */
    longname[AGENDA_GROUP_NAME_MAX] = '\0';
    assert_int_equal(create(fx, "alice", G2, longname), 201);
}

/* ---- authorization, table-driven --------------------------------------- */

/*
 * Each mutation against G1 (alice leader, bob member, dave co-leader),
 * by the member, by an outsider, by an admin who is not a member: what
 * they get.  Each case runs on a fresh state machine.
 */
static void mutations_need_a_leader(void **state)
{
    (void)state;
    static const struct {
        const char *op, *args;
        int member, outsider, admin;
    } cases[] = {
        {"group.update", "{\"id\":\"" G1 "\",\"name\":\"New\"}", 403, 404,
         200},
        {"group.delete", "{\"id\":\"" G1 "\"}", 403, 404, 200},
        {"group.member_add", "{\"id\":\"" G1 "\",\"user\":\"erin\"}", 403,
         404, 201},
        {"group.member_remove", "{\"id\":\"" G1 "\",\"user\":\"dave\"}", 403,
         404, 200},
        {"group.member_role",
         "{\"id\":\"" G1 "\",\"user\":\"bob\",\"role\":\"leader\"}", 403, 404,
         200},
    };
    static const struct {
        const char *who, *role;
        int col;
    } actors[] = {
        {"bob", "user", 0},
        {"carol", "user", 1},
        {"root", "admin", 2},
        {"", "system", 2},
        {"alice", "user", 3},
        {"dave", "user", 3},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (size_t a = 0; a < sizeof(actors) / sizeof(actors[0]); a++) {
            struct agenda_fx *fx =
                agenda_fx_new(AGENDA_SHARD_GROUPS, "", "");
            alice_and_bob(fx);
            assert_int_equal(add(fx, "alice", G1, "dave", "leader"), 201);
            uint64_t sig = tu_state_sig(fx);
            int want = actors[a].col == 0   ? cases[i].member
                       : actors[a].col == 1 ? cases[i].outsider
                       : actors[a].col == 2 ? cases[i].admin
                                            : cases[i].admin;
            int st = tu_cmd(fx, cases[i].op,
                            tu_actor(actors[a].who, actors[a].role),
                            cases[i].args);
            if (st != want)
                fail_msg("%s by %s: got %d (%s), want %d", cases[i].op,
                         actors[a].who, st, agenda_fx_error(fx), want);
            if (st >= 400) {
                assert_true(tu_state_sig(fx) == sig);
                /* outsiders learn nothing: same answer as a missing group */
                if (st == 404)
                    assert_string_equal(agenda_fx_error(fx), "not_found");
            }
            check_index(fx);
            agenda_fx_free(fx);
        }
    }
}

/* ---- group.get / group.list -------------------------------------------- */

static void get_is_for_members_and_admins(void **state)
{
    struct agenda_fx *fx = *state;
    alice_and_bob(fx);
    static const struct {
        const char *who, *role;
        int status;
    } cases[] = {
        {"alice", "user", 200}, {"bob", "user", 200},
        {"root", "admin", 200}, {"", "system", 200},
        {"carol", "user", 404},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int st = get_as(fx, tu_actor(cases[i].who, cases[i].role), G1);
        assert_int_equal(st, cases[i].status);
        if (st == 200)
            assert_string_equal(members(fx), "alice:leader,bob:member");
    }
    /* an outsider's 404 is the same as for a group that does not exist */
    assert_int_equal(get_as(fx, tu_user("carol"), G1), 404);
    char hidden[1024];
    snprintf(hidden, sizeof(hidden), "%s", agenda_fx_error(fx));
    assert_int_equal(get_as(fx, tu_user("carol"), G2), 404);
    assert_string_equal(agenda_fx_error(fx), hidden);

    assert_int_equal(get_as(fx, tu_user("alice"), "zz"), 400);
    assert_int_equal(tu_query(fx, "group.get", tu_user("alice"),
                              "{\"id\":\"" G1 "\",\"full\":true}"),
                     400);
    assert_string_equal(agenda_fx_error(fx), "unknown_field");
    assert_int_equal(tu_query(fx, "group.get", TU_ANON,
                              "{\"id\":\"" G1 "\"}"),
                     401);
}

static void list_shows_own_groups_with_roles(void **state)
{
    struct agenda_fx *fx = *state;
    alice_and_bob(fx);
    assert_int_equal(create(fx, "bob", G2, "Band"), 201);
    assert_int_equal(tu_query(fx, "group.list", tu_user("bob"),
                              "{\"user\":\"BOB\"}"),
                     200);
    json_t *b = agenda_fx_body(fx);
    json_t *gs = json_object_get(b, "groups");
    assert_int_equal(json_array_size(gs), 2);
    json_t *g0 = json_array_get(gs, 0), *g1 = json_array_get(gs, 1);
    assert_string_equal(json_string_value(json_object_get(g0, "id")), G1);
    assert_string_equal(json_string_value(json_object_get(g0, "name")),
                        "Choir");
    assert_string_equal(json_string_value(json_object_get(g0, "role")),
                        "member");
    assert_string_equal(json_string_value(json_object_get(g0, "calendar")),
                        "g:" G1);
    assert_string_equal(json_string_value(json_object_get(g1, "role")),
                        "leader");
    json_decref(b);
    assert_string_equal(groups_of(fx, "alice"), G1 ":leader");
    assert_string_equal(groups_of(fx, "carol"), "");
    /* a prefix of another name is a different user */
    assert_string_equal(groups_of(fx, "bo_"), "");

    assert_int_equal(tu_query(fx, "group.list", tu_user("carol"),
                              "{\"user\":\"bob\"}"),
                     403);
    assert_int_equal(tu_query(fx, "group.list", tu_admin("root"),
                              "{\"user\":\"bob\"}"),
                     200);
    assert_int_equal(tu_query(fx, "group.list", tu_user("bob"), "{}"), 400);
    assert_int_equal(tu_query(fx, "group.list", tu_user("bob"),
                              "{\"user\":\"b\"}"),
                     400);
    assert_int_equal(tu_query(fx, "group.list", tu_user("bob"),
                              "{\"user\":\"bob\",\"limit\":3}"),
                     400);
}

/* ---- group.update / group.delete --------------------------------------- */

static void update_changes_and_versions(void **state)
{
    struct agenda_fx *fx = *state;
    alice_and_bob(fx);
    assert_int_equal(version_of(fx, G1), 2);
    assert_int_equal(tu_cmd(fx, "group.update", tu_user("alice"),
                            "{\"id\":\"" G1 "\",\"name\":\"Chorus\","
                            "\"expected_version\":2}"),
                     200);
    assert_string_equal(tu_str(fx, "group.name"), "Chorus");
    assert_int_equal(tu_int(fx, "group.version"), 3);
    assert_string_equal(tu_str(fx, "group.created"), "2026-11-18T11:06:40Z");
    assert_string_equal(tu_str(fx, "group.updated"), "2026-11-18T11:06:42Z");
    assert_int_equal(tu_cmd(fx, "group.update", tu_user("alice"),
                            "{\"id\":\"" G1 "\",\"description\":\"\"}"),
                     200);
    assert_int_equal(tu_int(fx, "group.version"), 4);
    assert_string_equal(tu_str(fx, "group.name"), "Chorus");
    assert_string_equal(tu_feed(fx, "group:" G1),
                        "group.created,group.member_added,group.updated,"
                        "group.updated");

    static const struct {
        const char *args;
        int status;
        const char *code;
    } cases[] = {
        {"{\"id\":\"" G1 "\",\"name\":\"X\",\"expected_version\":3}", 412,
         "version_mismatch"},
        {"{\"id\":\"" G1 "\",\"name\":\"X\",\"expected_version\":5}", 412,
         "version_mismatch"},
        {"{\"id\":\"" G1 "\",\"name\":\"X\",\"expected_version\":0}", 400,
         "invalid_field"},
        {"{\"id\":\"" G1 "\",\"name\":\"X\",\"expected_version\":\"4\"}", 400,
         "invalid_field"},
        {"{\"id\":\"" G1 "\"}", 400, "missing_field"},
        {"{\"id\":\"" G1 "\",\"name\":\"\"}", 400, "invalid_field"},
        {"{\"id\":\"" G1 "\",\"name\":\"X\",\"calendar\":\"bob\"}", 400,
         "unknown_field"},
        {"{\"id\":\"" G2 "\",\"name\":\"X\"}", 404, "not_found"},
    };
    uint64_t sig = tu_state_sig(fx);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int st = tu_cmd(fx, "group.update", tu_user("alice"), cases[i].args);
        if (st != cases[i].status ||
            strcmp(agenda_fx_error(fx), cases[i].code) != 0)
            fail_msg("case %zu: got %d %s, want %d %s", i, st,
                     agenda_fx_error(fx), cases[i].status, cases[i].code);
    }
    assert_true(tu_state_sig(fx) == sig);
    assert_int_equal(version_of(fx, G1), 4);
}

static void delete_removes_group_and_index(void **state)
{
    struct agenda_fx *fx = *state;
    alice_and_bob(fx);
    assert_int_equal(create(fx, "bob", G2, "Band"), 201);
    uint64_t sig = tu_state_sig(fx);
    assert_int_equal(tu_cmd(fx, "group.delete", tu_user("alice"),
                            "{\"id\":\"" G1 "\",\"expected_version\":1}"),
                     412);
    assert_int_equal(tu_cmd(fx, "group.delete", tu_user("alice"),
                            "{\"id\":\"" G1 "\",\"force\":true}"),
                     400);
    assert_true(tu_state_sig(fx) == sig);
    assert_int_equal(tu_cmd(fx, "group.delete", tu_user("alice"),
                            "{\"id\":\"" G1 "\",\"expected_version\":2}"),
                     200);
    assert_string_equal(tu_str(fx, "id"), G1);
    assert_true(tu_int(fx, "sync_token") > 0);
    json_t *b = agenda_fx_body(fx);
    json_t *former = json_object_get(b, "members");
    assert_int_equal(json_array_size(former), 2);
    assert_string_equal(json_string_value(json_array_get(former, 0)),
                        "alice");
    assert_string_equal(json_string_value(json_array_get(former, 1)), "bob");
    json_decref(b);
    assert_string_equal(tu_last_audit_object(fx), "group:" G1);
    assert_int_equal(get_as(fx, TU_SYSTEM, G1), 404);
    assert_string_equal(groups_of(fx, "alice"), "");
    assert_string_equal(groups_of(fx, "bob"), G2 ":leader");
    assert_string_equal(tu_feed(fx, "group:" G1),
                        "group.created,group.member_added,group.deleted");
    assert_string_equal(tu_feed(fx, "user:bob"),
                        "group.member_added,group.created,group.deleted");
    assert_string_equal(tu_feed(fx, "user:alice"),
                        "group.created,group.deleted");
    check_index(fx);
    /* gone: a second delete is a 404, and the id is never used again
     * (what the purge of its calendar may have missed stays unreadable);
     * the 404 says "gone" for the edge, which then purges the calendar
     * again: whoever asks, since its client sees only the 404 */
    assert_int_equal(tu_cmd(fx, "group.delete", tu_user("carol"),
                            "{\"id\":\"" G1 "\"}"),
                     404);
    assert_string_equal(agenda_fx_error(fx), "not_found");
    b = agenda_fx_body(fx);
    assert_true(json_is_true(json_object_get(json_object_get(b, "error"),
                                             "gone")));
    json_decref(b);
    /* never "gone" for a group that exists or never did */
    assert_int_equal(tu_cmd(fx, "group.delete", tu_user("alice"),
                            "{\"id\":\"" G2 "\"}"),
                     404);
    b = agenda_fx_body(fx);
    assert_null(json_object_get(json_object_get(b, "error"), "gone"));
    json_decref(b);
    assert_int_equal(tu_cmd(fx, "group.delete", tu_user("alice"),
                            "{\"id\":\"0123456789abcdef\"}"),
                     404);
    b = agenda_fx_body(fx);
    assert_null(json_object_get(json_object_get(b, "error"), "gone"));
    json_decref(b);
    sig = tu_state_sig(fx);
    assert_int_equal(create(fx, "carol", G1, "Reborn"), 409);
    assert_string_equal(agenda_fx_error(fx), "group_exists");
    assert_true(tu_state_sig(fx) == sig);
    assert_int_equal(get_as(fx, TU_SYSTEM, G1), 404);
    check_index(fx);
}

/* ---- membership -------------------------------------------------------- */

static void member_add_and_errors(void **state)
{
    struct agenda_fx *fx = *state;
    assert_int_equal(create(fx, "alice", G1, "Choir"), 201);
    assert_int_equal(tu_cmd(fx, "group.member_add", tu_user("alice"),
                            "{\"id\":\"" G1 "\",\"user\":\"BOB\"}"),
                     201);
    assert_string_equal(members(fx), "alice:leader,bob:member");
    assert_int_equal(tu_int(fx, "group.version"), 2);
    assert_string_equal(tu_last_audit_object(fx), "group:" G1 "/member:bob");
    assert_int_equal(add(fx, "alice", G1, "aaron", "leader"), 201);
    assert_string_equal(members(fx), "aaron:leader,alice:leader,bob:member");
    assert_string_equal(tu_feed(fx, "user:bob"), "group.member_added");
    assert_string_equal(tu_feed(fx, "user:aaron"), "group.member_added");
    assert_string_equal(tu_feed(fx, "group:" G1),
                        "group.created,group.member_added,"
                        "group.member_added");
    assert_string_equal(groups_of(fx, "aaron"), G1 ":leader");

    static const struct {
        const char *args;
        int status;
        const char *code;
    } cases[] = {
        {"{\"id\":\"" G1 "\",\"user\":\"bob\"}", 409, "already_member"},
        {"{\"id\":\"" G1 "\",\"user\":\"Bob\",\"role\":\"leader\"}", 409,
         "already_member"},
        {"{\"id\":\"" G1 "\",\"user\":\"alice\"}", 409, "already_member"},
        {"{\"id\":\"" G1 "\",\"user\":\"x\"}", 400, "invalid_field"},
        {"{\"id\":\"" G1 "\",\"user\":\"bad name\"}", 400, "invalid_field"},
        {"{\"id\":\"" G1 "\"}", 400, "missing_field"},
        {"{\"id\":\"" G1 "\",\"user\":\"carol\",\"role\":\"owner\"}", 400,
         "invalid_field"},
        {"{\"id\":\"" G1 "\",\"user\":\"carol\",\"role\":\"none\"}", 400,
         "invalid_field"},
        {"{\"id\":\"" G1 "\",\"user\":\"carol\",\"notify\":true}", 400,
         "unknown_field"},
        {"{\"id\":\"" G2 "\",\"user\":\"carol\"}", 404, "not_found"},
    };
    uint64_t sig = tu_state_sig(fx);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int st = tu_cmd(fx, "group.member_add", tu_user("alice"),
                        cases[i].args);
        if (st != cases[i].status ||
            strcmp(agenda_fx_error(fx), cases[i].code) != 0)
            fail_msg("case %zu: got %d %s, want %d %s", i, st,
                     agenda_fx_error(fx), cases[i].status, cases[i].code);
    }
    assert_true(tu_state_sig(fx) == sig);
    check_index(fx);
}

static void member_remove_keeps_a_leader(void **state)
{
    struct agenda_fx *fx = *state;
    alice_and_bob(fx);
    assert_int_equal(add(fx, "alice", G1, "carol", "member"), 201);
    uint64_t sig = tu_state_sig(fx);
    static const struct {
        const char *who, *args;
        int status;
        const char *code;
    } cases[] = {
        {"alice", "{\"id\":\"" G1 "\",\"user\":\"alice\"}", 409,
         "last_leader"},
        {"alice", "{\"id\":\"" G1 "\",\"user\":\"dave\"}", 404, "not_member"},
        {"alice", "{\"id\":\"" G1 "\",\"user\":\"d\"}", 400, "invalid_field"},
        {"alice", "{\"id\":\"" G1 "\"}", 400, "missing_field"},
        {"alice", "{\"id\":\"" G1 "\",\"user\":\"bob\",\"why\":\"x\"}", 400,
         "unknown_field"},
        {"bob", "{\"id\":\"" G1 "\",\"user\":\"carol\"}", 403, "forbidden"},
        {"dave", "{\"id\":\"" G1 "\",\"user\":\"carol\"}", 404, "not_found"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int st = tu_cmd(fx, "group.member_remove", tu_user(cases[i].who),
                        cases[i].args);
        if (st != cases[i].status ||
            strcmp(agenda_fx_error(fx), cases[i].code) != 0)
            fail_msg("case %zu: got %d %s, want %d %s", i, st,
                     agenda_fx_error(fx), cases[i].status, cases[i].code);
    }
    assert_true(tu_state_sig(fx) == sig);

    assert_int_equal(tu_cmd(fx, "group.member_remove", tu_user("alice"),
                            "{\"id\":\"" G1 "\",\"user\":\"bob\"}"),
                     200);
    assert_string_equal(members(fx), "alice:leader,carol:member");
    assert_int_equal(tu_int(fx, "group.version"), 4);
    assert_string_equal(tu_feed(fx, "user:bob"),
                        "group.member_added,group.member_removed");
    assert_string_equal(groups_of(fx, "bob"), "");
    /* bob no longer sees the group */
    assert_int_equal(get_as(fx, tu_user("bob"), G1), 404);

    /* with a second leader, a leader may be removed, even oneself */
    assert_int_equal(add(fx, "alice", G1, "dave", "leader"), 201);
    assert_int_equal(tu_cmd(fx, "group.member_remove", tu_user("alice"),
                            "{\"id\":\"" G1 "\",\"user\":\"alice\"}"),
                     200);
    assert_string_equal(members(fx), "carol:member,dave:leader");
    assert_int_equal(tu_cmd(fx, "group.member_remove", tu_user("dave"),
                            "{\"id\":\"" G1 "\",\"user\":\"dave\"}"),
                     409);
    assert_string_equal(agenda_fx_error(fx), "last_leader");
    check_index(fx);
}

static void member_role_keeps_a_leader(void **state)
{
    struct agenda_fx *fx = *state;
    alice_and_bob(fx);
    uint64_t sig = tu_state_sig(fx);
    static const struct {
        const char *who, *args;
        int status;
        const char *code;
    } cases[] = {
        {"alice", "{\"id\":\"" G1 "\",\"user\":\"alice\",\"role\":"
         "\"member\"}", 409, "last_leader"},
        {"alice", "{\"id\":\"" G1 "\",\"user\":\"carol\",\"role\":"
         "\"leader\"}", 404, "not_member"},
        {"alice", "{\"id\":\"" G1 "\",\"user\":\"bob\"}", 400,
         "missing_field"},
        {"alice", "{\"id\":\"" G1 "\",\"user\":\"bob\",\"role\":\"admin\"}",
         400, "invalid_field"},
        {"alice", "{\"id\":\"" G1 "\",\"user\":\"bob\",\"role\":\"leader\","
         "\"expected_version\":2}", 400, "unknown_field"},
        {"bob", "{\"id\":\"" G1 "\",\"user\":\"bob\",\"role\":\"leader\"}",
         403, "forbidden"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int st = tu_cmd(fx, "group.member_role", tu_user(cases[i].who),
                        cases[i].args);
        if (st != cases[i].status ||
            strcmp(agenda_fx_error(fx), cases[i].code) != 0)
            fail_msg("case %zu: got %d %s, want %d %s", i, st,
                     agenda_fx_error(fx), cases[i].status, cases[i].code);
    }
    assert_true(tu_state_sig(fx) == sig);

    /* promote bob; then alice may step down */
    assert_int_equal(tu_cmd(fx, "group.member_role", tu_user("alice"),
                            "{\"id\":\"" G1 "\",\"user\":\"bob\",\"role\":"
                            "\"leader\"}"),
                     200);
    assert_string_equal(members(fx), "alice:leader,bob:leader");
    assert_int_equal(tu_int(fx, "group.version"), 3);
    assert_string_equal(groups_of(fx, "bob"), G1 ":leader");
    assert_int_equal(tu_cmd(fx, "group.member_role", tu_user("alice"),
                            "{\"id\":\"" G1 "\",\"user\":\"alice\",\"role\":"
                            "\"member\"}"),
                     200);
    assert_string_equal(members(fx), "alice:member,bob:leader");
    assert_string_equal(tu_feed(fx, "user:alice"),
                        "group.created,group.member_role_changed");
    assert_string_equal(tu_last_audit_object(fx),
                        "group:" G1 "/member:alice");
    /* alice is no leader any more */
    assert_int_equal(add(fx, "alice", G1, "carol", "member"), 403);
    /* the role a member already has: nothing changes */
    sig = tu_state_sig(fx);
    assert_int_equal(tu_cmd(fx, "group.member_role", tu_user("bob"),
                            "{\"id\":\"" G1 "\",\"user\":\"alice\",\"role\":"
                            "\"member\"}"),
                     200);
    assert_int_equal(tu_int(fx, "group.version"), 4);
    assert_true(tu_state_sig(fx) == sig);
    check_index(fx);
}

static void leave_rules(void **state)
{
    struct agenda_fx *fx = *state;
    alice_and_bob(fx);
    assert_int_equal(add(fx, "alice", G1, "carol", "member"), 201);
    uint64_t sig = tu_state_sig(fx);
    /* the last leader cannot leave members behind */
    assert_int_equal(tu_cmd(fx, "group.leave", tu_user("alice"),
                            "{\"id\":\"" G1 "\"}"),
                     409);
    assert_string_equal(agenda_fx_error(fx), "last_leader");
    /* not a member: not found, admins included */
    assert_int_equal(tu_cmd(fx, "group.leave", tu_user("dave"),
                            "{\"id\":\"" G1 "\"}"),
                     404);
    assert_int_equal(tu_cmd(fx, "group.leave", tu_admin("root"),
                            "{\"id\":\"" G1 "\"}"),
                     404);
    assert_int_equal(tu_cmd(fx, "group.leave", TU_SYSTEM,
                            "{\"id\":\"" G1 "\"}"),
                     400);
    assert_int_equal(tu_cmd(fx, "group.leave", tu_user("bob"),
                            "{\"id\":\"" G1 "\",\"user\":\"carol\"}"),
                     400);
    assert_string_equal(agenda_fx_error(fx), "unknown_field");
    assert_true(tu_state_sig(fx) == sig);

    assert_int_equal(tu_cmd(fx, "group.leave", tu_user("bob"),
                            "{\"id\":\"" G1 "\"}"),
                     200);
    json_t *b = agenda_fx_body(fx);
    assert_true(json_is_false(json_object_get(b, "group_deleted")));
    assert_true(json_is_true(json_object_get(b, "left")));
    json_decref(b);
    assert_string_equal(tu_last_audit_object(fx), "group:" G1 "/member:bob");
    assert_string_equal(tu_feed(fx, "user:bob"),
                        "group.member_added,group.member_removed");
    assert_int_equal(get_as(fx, TU_SYSTEM, G1), 200);
    assert_string_equal(members(fx), "alice:leader,carol:member");
    assert_int_equal(tu_int(fx, "group.version"), 4);

    /* a leader may leave when another leader stays */
    assert_int_equal(tu_cmd(fx, "group.member_role", tu_user("alice"),
                            "{\"id\":\"" G1 "\",\"user\":\"carol\",\"role\":"
                            "\"leader\"}"),
                     200);
    assert_int_equal(tu_cmd(fx, "group.leave", tu_user("alice"),
                            "{\"id\":\"" G1 "\"}"),
                     200);
    /* the last member leaving deletes the group */
    assert_int_equal(tu_cmd(fx, "group.leave", tu_user("carol"),
                            "{\"id\":\"" G1 "\"}"),
                     200);
    b = agenda_fx_body(fx);
    assert_true(json_is_true(json_object_get(b, "group_deleted")));
    json_decref(b);
    assert_int_equal(get_as(fx, TU_SYSTEM, G1), 404);
    assert_string_equal(groups_of(fx, "carol"), "");
    assert_string_equal(tu_feed(fx, "user:carol"),
                        "group.member_added,group.member_role_changed,"
                        "group.deleted");
    check_index(fx);
    assert_int_equal(create(fx, "dave", G1, "Again"), 409);
    assert_string_equal(agenda_fx_error(fx), "group_exists");
}

/* ---- exactly once ------------------------------------------------------ */

static void retry_changes_nothing_twice(void **state)
{
    struct agenda_fx *fx = *state;
    assert_int_equal(create(fx, "alice", G1, "Choir"), 201);
    const char *args = "{\"id\":\"" G1 "\",\"user\":\"bob\"}";
    assert_int_equal(tu_cmd_id(fx, "add-bob", "group.member_add",
                               tu_user("alice"), args),
                     201);
    static char first[65536]; /* as large as tu_body_text()'s text */
    snprintf(first, sizeof(first), "%s", tu_body_text(fx));
    uint64_t sig = tu_state_sig(fx);
    assert_int_equal(tu_cmd_id(fx, "add-bob", "group.member_add",
                               tu_user("alice"), args),
                     201);
    assert_true(fx->duplicate);
    assert_string_equal(tu_body_text(fx), first);
    assert_true(tu_state_sig(fx) == sig);
    assert_int_equal(version_of(fx, G1), 2);

    /* a retried leave of the last member answers "deleted" again */
    assert_int_equal(tu_cmd(fx, "group.member_remove", tu_user("alice"),
                            "{\"id\":\"" G1 "\",\"user\":\"bob\"}"),
                     200);
    assert_int_equal(tu_cmd_id(fx, "bye", "group.leave", tu_user("alice"),
                               "{\"id\":\"" G1 "\"}"),
                     200);
    snprintf(first, sizeof(first), "%s", tu_body_text(fx));
    assert_int_equal(tu_cmd_id(fx, "bye", "group.leave", tu_user("alice"),
                               "{\"id\":\"" G1 "\"}"),
                     200);
    assert_true(fx->duplicate);
    assert_string_equal(tu_body_text(fx), first);
    /* a new request id is a new command: the group is gone */
    assert_int_equal(tu_cmd_id(fx, "bye-2", "group.leave", tu_user("alice"),
                               "{\"id\":\"" G1 "\"}"),
                     404);
}

/* ---- limits ------------------------------------------------------------ */

static void members_are_capped(void **state)
{
    struct agenda_fx *fx = *state;
    assert_int_equal(create(fx, "alice", G1, "Crowd"), 201);
    for (int i = 1; i < AGENDA_GROUP_MEMBERS_MAX; i++) {
        char name[16];
        snprintf(name, sizeof(name), "m%04d", i);
        assert_int_equal(add(fx, "alice", G1, name, "member"), 201);
    }
    uint64_t sig = tu_state_sig(fx);
    assert_int_equal(add(fx, "alice", G1, "onemore", "member"), 413);
    assert_string_equal(agenda_fx_error(fx), "too_many_members");
    assert_true(tu_state_sig(fx) == sig);
    /* room again after someone leaves */
    assert_int_equal(tu_cmd(fx, "group.leave", tu_user("m0001"),
                            "{\"id\":\"" G1 "\"}"),
                     200);
    assert_int_equal(add(fx, "alice", G1, "onemore", "member"), 201);
    check_index(fx);
}

static void groups_per_user_are_capped(void **state)
{
    struct agenda_fx *fx = *state;
    char id[AGENDA_GROUP_ID_LEN + 1];
    for (int i = 0; i < AGENDA_USER_GROUPS_MAX; i++) {
        snprintf(id, sizeof(id), "%016x", i);
        assert_int_equal(create(fx, "busy", id, "G"), 201);
    }
    /* G3 is beyond the ids busy used */
    assert_int_equal(create(fx, "other", G3, "Other"), 201);
    uint64_t sig = tu_state_sig(fx);
    snprintf(id, sizeof(id), "%016x", AGENDA_USER_GROUPS_MAX);
    assert_int_equal(create(fx, "busy", id, "G"), 413);
    assert_string_equal(agenda_fx_error(fx), "too_many_groups");
    assert_int_equal(add(fx, "other", G3, "busy", "member"), 413);
    assert_string_equal(agenda_fx_error(fx), "too_many_groups");
    assert_true(tu_state_sig(fx) == sig);
    /* others are not affected */
    assert_int_equal(add(fx, "other", G3, "bus", "member"), 201);
    check_index(fx);
}

/* ---- random sequences -------------------------------------------------- */

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/*
 * Random operations by random actors on a few groups and users: whatever
 * each answer, the index matches the records after every step, every group
 * keeps a leader, and versions only grow.
 */
static void random_sequences_keep_index_consistent(void **state)
{
    struct agenda_fx *fx = *state;
    static const char *const users[] = {"ann", "ben", "cat", "dan", "eve"};
    static const char *const roles[] = {"member", "leader"};
    /* a slot's group gets a new id (generation) once deleted: deleted
     * groups' ids are never taken again */
    unsigned gen[3] = {0, 0, 0};
    bool seen[3] = {false, false, false};
    char ids[3][AGENDA_GROUP_ID_LEN + 1];
    int64_t last_version[3] = {0, 0, 0};
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    int ok = 0, last_leader = 0;
    for (int step = 0; step < 600; step++) {
        const char *actor = users[rng_next(&seed) % 5];
        const char *user = users[rng_next(&seed) % 5];
        size_t gi = rng_next(&seed) % 3;
        snprintf(ids[gi], sizeof(ids[gi]), "00000000000a%01zx%03x", gi,
                 gen[gi]);
        const char *id = ids[gi];
        /* mostly act as one of the group's leaders, so that most steps
         * reach the membership rules instead of a 403 */
        char leader[AGENDA_USERNAME_MAX + 1] = "";
        bool exists = get_as(fx, TU_SYSTEM, id) == 200;
        if (seen[gi] && !exists) {
            seen[gi] = false;
            last_version[gi] = 0;
            snprintf(ids[gi], sizeof(ids[gi]), "00000000000a%01zx%03x", gi,
                     ++gen[gi]);
        }
        seen[gi] = seen[gi] || exists;
        unsigned op = (unsigned)(rng_next(&seed) % 6);
        if (!exists && rng_next(&seed) % 3 != 0)
            op = 0; /* mostly recreate what is gone */
        else if (exists && op == 0 && rng_next(&seed) % 3 != 0)
            op = 1;
        if (exists && rng_next(&seed) % 4 != 0) {
            json_t *b = agenda_fx_body(fx);
            size_t i;
            json_t *m;
            json_array_foreach(json_object_get(json_object_get(b, "group"),
                                               "members"), i, m) {
                if (strcmp(json_string_value(json_object_get(m, "role")),
                           "leader") == 0 &&
                    (leader[0] == '\0' || rng_next(&seed) % 2 == 0))
                    snprintf(leader, sizeof(leader), "%s",
                             json_string_value(json_object_get(m, "user")));
            }
            json_decref(b);
            for (size_t u = 0; u < 5 && leader[0] != '\0'; u++)
                if (strcmp(users[u], leader) == 0)
                    actor = users[u];
        }
        const char *role = roles[rng_next(&seed) % 2];
        char args[256];
        int st;
        switch (op) {
        case 0:
            st = create(fx, actor, id, "R");
            break;
        case 1:
            st = add(fx, actor, id, user, role);
            break;
        case 2:
            snprintf(args, sizeof(args), "{\"id\":\"%s\",\"user\":\"%s\"}",
                     id, user);
            st = tu_cmd(fx, "group.member_remove", tu_user(actor), args);
            break;
        case 3:
            snprintf(args, sizeof(args), "{\"id\":\"%s\",\"user\":\"%s\","
                     "\"role\":\"%s\"}", id, user, role);
            st = tu_cmd(fx, "group.member_role", tu_user(actor), args);
            break;
        case 4:
            snprintf(args, sizeof(args), "{\"id\":\"%s\"}", id);
            st = tu_cmd(fx, "group.leave", tu_user(actor), args);
            break;
        default:
            snprintf(args, sizeof(args), "{\"id\":\"%s\"}", id);
            st = rng_next(&seed) % 4 == 0
                     ? tu_cmd(fx, "group.delete", tu_user(actor), args)
                     : tu_cmd(fx, "group.update", tu_user(actor),
                              "{\"id\":\"00000000000000a1\",\"name\":\"U\"}");
            break;
        }
        if (st != 200 && st != 201 && st != 403 && st != 404 && st != 409)
            fail_msg("step %d: unexpected %d %s", step, st,
                     tu_body_text(fx));
        ok += st < 300;
        last_leader += strcmp(agenda_fx_error(fx), "last_leader") == 0;
        check_index(fx);
        int64_t v = version_of(fx, id);
        if (v >= 0 && last_version[gi] > 0 && v < last_version[gi] &&
            v != 1)
            fail_msg("step %d: version of %s went back to %lld", step, id,
                     (long long)v);
        last_version[gi] = v;
    }
    /* the walk did real work, not only rejections */
    if (ok < 200 || last_leader == 0)
        fail_msg("only %d of 600 steps succeeded, %d met the last-leader "
                 "rule", ok, last_leader);
}

/* ---- shard and corpus -------------------------------------------------- */

static void groups_live_on_the_groups_shard(void **state)
{
    (void)state;
    struct agenda_fx *u = agenda_fx_new(AGENDA_SHARD_USERS, "", "");
    assert_int_equal(create(u, "alice", G1, "Choir"), 421);
    assert_string_equal(agenda_fx_error(u), "wrong_shard");
    assert_int_equal(get_as(u, tu_user("alice"), G1), 421);
    agenda_fx_free(u);
}

/* Valid operation sequences for the fuzz target's corpus (first byte: the
 * shard kind; one operation per line; '?' makes a line a query). */
static void write_corpus(void **state)
{
    (void)state;
    const char *dir = getenv("AGENDA_WRITE_CORPUS");
    if (dir == NULL)
        skip();
#define A(u) "\"actor\":{\"user\":\"" u "\",\"role\":\"user\"}"
    static const struct {
        const char *name, *text;
    } seeds[] = {
        {"groups_lifecycle",
         "\x02{\"op\":\"group.create\"," A("ann") ",\"args\":{\"id\":\""
         "00000000000000c3\",\"name\":\"C\",\"description\":\"d\"}}\n"
         "{\"op\":\"group.member_add\"," A("ann") ",\"args\":{\"id\":\""
         "00000000000000c3\",\"user\":\"ben\",\"role\":\"member\"}}\n"
         "{\"op\":\"group.member_role\"," A("ann") ",\"args\":{\"id\":\""
         "00000000000000c3\",\"user\":\"ben\",\"role\":\"leader\"}}\n"
         "{\"op\":\"group.update\"," A("ben") ",\"args\":{\"id\":\""
         "00000000000000c3\",\"name\":\"N\",\"expected_version\":3}}\n"
         "?{\"op\":\"group.get\"," A("ben") ",\"args\":{\"id\":\""
         "00000000000000c3\"}}\n"
         "?{\"op\":\"group.list\"," A("ben") ",\"args\":{\"user\":\"ben\"}}\n"
         "{\"op\":\"group.leave\"," A("ann") ",\"args\":{\"id\":\""
         "00000000000000c3\"}}\n"},
        {"groups_members",
         "\x02{\"op\":\"group.member_add\"," A("ann") ",\"args\":{\"id\":\""
         "00000000000000a1\",\"user\":\"cat\"}}\n"
         "{\"op\":\"group.member_remove\"," A("ann") ",\"args\":{\"id\":\""
         "00000000000000a1\",\"user\":\"ben\"}}\n"
         "{\"op\":\"group.delete\"," A("ann") ",\"args\":{\"id\":\""
         "00000000000000a1\",\"expected_version\":4}}\n"},
    };
#undef A
    for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", dir, seeds[i].name);
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        fputs(seeds[i].text, f);
        assert_int_equal(fclose(f), 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(create_makes_creator_leader),
        T(create_rejects_bad_input),
        cmocka_unit_test(mutations_need_a_leader),
        T(get_is_for_members_and_admins),
        T(list_shows_own_groups_with_roles),
        T(update_changes_and_versions),
        T(delete_removes_group_and_index),
        T(member_add_and_errors),
        T(member_remove_keeps_a_leader),
        T(member_role_keeps_a_leader),
        T(leave_rules),
        T(retry_changes_nothing_twice),
        T(members_are_capped),
        T(groups_per_user_are_capped),
        T(random_sequences_keep_index_consistent),
        cmocka_unit_test(groups_live_on_the_groups_shard),
        cmocka_unit_test(write_corpus),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

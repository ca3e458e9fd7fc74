/*
 * test_agenda_users.c — the users shard: user.register, user.get,
 * user.update, user.password, user.list, user.auth and user.missing
 * through the agenda state machine, as the agent applies them.
 *
 * With AGENDA_WRITE_CORPUS=<dir> the run also writes a few valid
 * operations into <dir> (seeds of tests/fuzz/fuzz_agenda_ops.c).
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

/* ---- helpers ----------------------------------------------------------- */

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

static int reg_as(struct agenda_fx *fx, const char *actor, const char *name,
                  const char *role)
{
    char args[1024];
    snprintf(args, sizeof(args),
             "{\"username\":\"%s\",\"display_name\":\"The %s\","
             "\"email\":\"%s@example.org\",\"password_hash\":\"%s\"%s%s%s}",
             name, name, name, TU_HASH1, role ? ",\"role\":\"" : "",
             role ? role : "", role ? "\"" : "");
    return tu_cmd(fx, "user.register", actor, args);
}

static int reg(struct agenda_fx *fx, const char *name)
{
    return reg_as(fx, TU_ANON, name, NULL);
}

/* user.get of name as actor: status. */
static int get_as(struct agenda_fx *fx, const char *actor, const char *name)
{
    char args[128];
    snprintf(args, sizeof(args), "{\"username\":\"%s\"}", name);
    return tu_query(fx, "user.get", actor, args);
}

/* ---- user.register ----------------------------------------------------- */

static void register_creates_account(void **state)
{
    struct agenda_fx *fx = *state;
    assert_int_equal(tu_cmd(fx, "user.register", TU_ANON,
                            "{\"username\":\"Alice\",\"display_name\":"
                            "\"Alice Liddell\",\"email\":\"alice@example.org\","
                            "\"password_hash\":\"" TU_HASH1 "\"}"),
                     201);
    assert_string_equal(tu_str(fx, "user.username"), "alice");
    assert_string_equal(tu_str(fx, "user.display_name"), "Alice Liddell");
    assert_string_equal(tu_str(fx, "user.email"), "alice@example.org");
    assert_string_equal(tu_str(fx, "user.role"), "user");
    assert_string_equal(tu_str(fx, "user.created"), "2026-11-18T11:06:40Z");
    assert_string_equal(tu_str(fx, "user.updated"), "2026-11-18T11:06:40Z");
    assert_int_equal(tu_int(fx, "user.token_version"), 1);
    assert_true(tu_int(fx, "sync_token") >= 1);
    assert_false(tu_has(fx, "user.password_hash"));
    assert_null(strstr(tu_body_text(fx), "argon2"));

    assert_string_equal(tu_feed(fx, "user:alice"), "user.registered");
    assert_string_equal(tu_last_audit_object(fx), "user:alice");

    /* the edge sees the hash, for logins */
    assert_int_equal(tu_query(fx, "user.auth", TU_SYSTEM,
                              "{\"username\":\"ALICE\"}"),
                     200);
    assert_string_equal(tu_str(fx, "user.password_hash"), TU_HASH1);
    assert_string_equal(tu_str(fx, "user.role"), "user");
    assert_int_equal(tu_int(fx, "user.token_version"), 1);
}

static void register_rejects_bad_input(void **state)
{
    struct agenda_fx *fx = *state;
    static const struct {
        const char *args;
        int status;
        const char *code;
    } cases[] = {
        {"{\"display_name\":\"X\",\"email\":\"x@example.org\","
         "\"password_hash\":\"" TU_HASH1 "\"}", 400, "missing_field"},
        {"{\"username\":\"ab\",\"display_name\":\"X\",\"email\":"
         "\"x@example.org\",\"password_hash\":\"" TU_HASH1 "\"}", 400,
         "invalid_field"},
        {"{\"username\":\"a b c\",\"display_name\":\"X\",\"email\":"
         "\"x@example.org\",\"password_hash\":\"" TU_HASH1 "\"}", 400,
         "invalid_field"},
        {"{\"username\":\"abcdefghijabcdefghijabcdefghijabc\",\"display_name\":"
         "\"X\",\"email\":\"x@example.org\",\"password_hash\":\"" TU_HASH1
         "\"}", 400, "invalid_field"},
        {"{\"username\":42,\"display_name\":\"X\",\"email\":"
         "\"x@example.org\",\"password_hash\":\"" TU_HASH1 "\"}", 400,
         "invalid_field"},
        {"{\"username\":\"carol\",\"email\":\"x@example.org\","
         "\"password_hash\":\"" TU_HASH1 "\"}", 400, "missing_field"},
        {"{\"username\":\"carol\",\"display_name\":\"   \",\"email\":"
         "\"x@example.org\",\"password_hash\":\"" TU_HASH1 "\"}", 400,
         "invalid_field"},
        {"{\"username\":\"carol\",\"display_name\":\"a\\u0007b\",\"email\":"
         "\"x@example.org\",\"password_hash\":\"" TU_HASH1 "\"}", 400,
         "invalid_field"},
        {"{\"username\":\"carol\",\"display_name\":\"X\",\"email\":"
         "\"not-an-email\",\"password_hash\":\"" TU_HASH1 "\"}", 400,
         "invalid_field"},
        {"{\"username\":\"carol\",\"display_name\":\"X\","
         "\"password_hash\":\"" TU_HASH1 "\"}", 400, "missing_field"},
        {"{\"username\":\"carol\",\"display_name\":\"X\",\"email\":"
         "\"x@example.org\",\"password_hash\":\"hunter2\"}", 400,
         "invalid_field"},
        {"{\"username\":\"carol\",\"display_name\":\"X\",\"email\":"
         "\"x@example.org\"}", 400, "missing_field"},
        {"{\"username\":\"carol\",\"display_name\":\"X\",\"email\":"
         "\"x@example.org\",\"password_hash\":\"" TU_HASH1 "\","
         "\"role\":\"system\"}", 400, "invalid_field"},
        {"{\"username\":\"carol\",\"display_name\":\"X\",\"email\":"
         "\"x@example.org\",\"password_hash\":\"" TU_HASH1 "\","
         "\"role\":\"boss\"}", 400, "invalid_field"},
        {"{\"username\":\"carol\",\"display_name\":\"X\",\"email\":"
         "\"x@example.org\",\"password_hash\":\"" TU_HASH1 "\","
         "\"role\":1}", 400, "invalid_field"},
        {"{\"username\":\"carol\",\"display_name\":\"X\",\"email\":"
         "\"x@example.org\",\"password_hash\":\"" TU_HASH1 "\","
         "\"admin\":true}", 400, "unknown_field"},
        /* the edge computes hashes: a password never reaches the shard */
        {"{\"username\":\"carol\",\"display_name\":\"X\",\"email\":"
         "\"x@example.org\",\"password\":\"hunter2\"}", 400,
         "unknown_field"},
    };
    uint64_t before = tu_state_sig(fx);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int st = tu_cmd(fx, "user.register", TU_ANON, cases[i].args);
        if (st != cases[i].status ||
            strcmp(agenda_fx_error(fx), cases[i].code) != 0)
            fail_msg("case %zu: got %d %s, want %d %s", i, st,
                     agenda_fx_error(fx), cases[i].status, cases[i].code);
    }
    assert_true(tu_state_sig(fx) == before);
    assert_int_equal(get_as(fx, TU_SYSTEM, "carol"), 404);

    /* the display name limit is in characters, not bytes */
    char args[2048], name[AGENDA_DISPLAY_NAME_MAX * 2 + 8];
    for (int n = AGENDA_DISPLAY_NAME_MAX; n <= AGENDA_DISPLAY_NAME_MAX + 1;
         n++) {
        name[0] = '\0';
        for (int i = 0; i < n; i++)
            strcat(name, "\xc3\xa9");
        snprintf(args, sizeof(args),
                 "{\"username\":\"len%d\",\"display_name\":\"%s\",\"email\":"
                 "\"x@example.org\",\"password_hash\":\"" TU_HASH1 "\"}",
                 n, name);
        assert_int_equal(tu_cmd(fx, "user.register", TU_ANON, args),
                         n <= AGENDA_DISPLAY_NAME_MAX ? 201 : 400);
    }
}

static void register_username_taken(void **state)
{
    struct agenda_fx *fx = *state;
    assert_int_equal(reg(fx, "alice"), 201);
    uint64_t before = tu_state_sig(fx);
    assert_int_equal(reg(fx, "alice"), 409);
    assert_string_equal(agenda_fx_error(fx), "username_taken");
    assert_int_equal(reg(fx, "ALICE"), 409);
    assert_true(tu_state_sig(fx) == before);
}

static void register_admin_needs_admin(void **state)
{
    struct agenda_fx *fx = *state;
    static const struct {
        const char *actor;
        int status;
    } cases[] = {
        {TU_ANON, 403},
        {"{\"user\":\"\",\"role\":\"admin\"}", 403}, /* anonymous "admin" */
        {"{\"user\":\"mallory\",\"role\":\"user\"}", 403},
        {"{\"user\":\"root\",\"role\":\"admin\"}", 201},
        {TU_SYSTEM, 201},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char name[16];
        snprintf(name, sizeof(name), "boss%zu", i);
        int st = reg_as(fx, cases[i].actor, name, "admin");
        if (st != cases[i].status)
            fail_msg("case %zu: got %d, want %d", i, st, cases[i].status);
        if (st == 201)
            assert_string_equal(tu_str(fx, "user.role"), "admin");
        else
            assert_string_equal(agenda_fx_error(fx), "forbidden");
    }
    /* an ordinary account may be created by anyone, role given or not */
    assert_int_equal(reg_as(fx, tu_user("mallory"), "plain", "user"), 201);
    assert_string_equal(tu_str(fx, "user.role"), "user");
}

static void register_retry_answers_first_result(void **state)
{
    struct agenda_fx *fx = *state;
    const char *args = "{\"username\":\"alice\",\"display_name\":\"A\","
                       "\"email\":\"a@example.org\",\"password_hash\":\""
                       TU_HASH1 "\"}";
    assert_int_equal(tu_cmd_id(fx, "req-1", "user.register", TU_ANON, args),
                     201);
    assert_false(fx->duplicate);
    static char first[65536]; /* as large as tu_body_text()'s text */
    snprintf(first, sizeof(first), "%s", tu_body_text(fx));
    uint64_t sig = tu_state_sig(fx);

    /* the same request again, even with other arguments, is the first one */
    assert_int_equal(tu_cmd_id(fx, "req-1", "user.register", TU_ANON,
                               "{\"username\":\"other\",\"display_name\":"
                               "\"B\",\"email\":\"b@example.org\","
                               "\"password_hash\":\"" TU_HASH1 "\"}"),
                     201);
    assert_true(fx->duplicate);
    assert_string_equal(tu_body_text(fx), first);
    assert_true(tu_state_sig(fx) == sig);
    assert_int_equal(get_as(fx, TU_SYSTEM, "other"), 404);
    assert_string_equal(tu_feed(fx, "user:alice"), "user.registered");

    /* a new request id is a new command */
    assert_int_equal(tu_cmd_id(fx, "req-2", "user.register", TU_ANON, args),
                     409);
}

/* ---- user.get ---------------------------------------------------------- */

static void get_shows_private_fields_to_self_and_admins(void **state)
{
    struct agenda_fx *fx = *state;
    assert_int_equal(reg(fx, "alice"), 201);
    assert_int_equal(reg(fx, "bob"), 201);
    static const struct {
        const char *who;
        const char *role;
        bool full;
    } cases[] = {
        {"alice", "user", true},
        {"bob", "user", false},
        {"root", "admin", true},
        {"", "system", true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(
            get_as(fx, tu_actor(cases[i].who, cases[i].role), "Alice"), 200);
        assert_string_equal(tu_str(fx, "user.username"), "alice");
        assert_string_equal(tu_str(fx, "user.display_name"), "The alice");
        if (tu_has(fx, "user.email") != cases[i].full ||
            tu_has(fx, "user.role") != cases[i].full ||
            tu_has(fx, "user.created") != cases[i].full ||
            tu_has(fx, "user.token_version") != cases[i].full)
            fail_msg("case %zu: %s", i, tu_body_text(fx));
        assert_false(tu_has(fx, "user.password_hash"));
    }
}

static void get_errors(void **state)
{
    struct agenda_fx *fx = *state;
    assert_int_equal(get_as(fx, tu_user("bob"), "nobody"), 404);
    assert_string_equal(agenda_fx_error(fx), "not_found");
    assert_int_equal(get_as(fx, tu_user("bob"), "x"), 400);
    assert_string_equal(agenda_fx_error(fx), "invalid_field");
    assert_int_equal(tu_query(fx, "user.get", tu_user("bob"), "{}"), 400);
    assert_string_equal(agenda_fx_error(fx), "missing_field");
    assert_int_equal(tu_query(fx, "user.get", tu_user("bob"),
                              "{\"username\":\"bob\",\"x\":1}"),
                     400);
    assert_string_equal(agenda_fx_error(fx), "unknown_field");
    /* a field name quoted in the message is cut at 64 bytes; cut inside
     * a character, the answer still names its error */
    char euros[128] = "{\"username\":\"bob\",\"";
    for (int i = 0; i < 22; i++)
        strcat(euros, "\xe2\x82\xac");
    strcat(euros, "\":1}");
    assert_int_equal(tu_query(fx, "user.get", tu_user("bob"), euros), 400);
    assert_string_equal(agenda_fx_error(fx), "unknown_field");
    /* reads need an identity */
    assert_int_equal(get_as(fx, TU_ANON, "bob"), 401);
    /* a query is not a command, and users live on the users shard */
    assert_int_equal(tu_cmd(fx, "user.get", tu_user("bob"),
                            "{\"username\":\"bob\"}"),
                     400);
    assert_string_equal(agenda_fx_error(fx), "wrong_kind");
    struct agenda_fx *g = agenda_fx_new(AGENDA_SHARD_GROUPS, "", "");
    assert_int_equal(reg(g, "alice"), 421);
    assert_int_equal(get_as(g, tu_user("bob"), "alice"), 421);
    agenda_fx_free(g);
}

/* ---- user.update ------------------------------------------------------- */

static void update_by_self_and_admin(void **state)
{
    struct agenda_fx *fx = *state;
    assert_int_equal(reg(fx, "alice"), 201);
    int64_t t0 = tu_int(fx, "sync_token");
    assert_int_equal(tu_cmd(fx, "user.update", tu_user("alice"),
                            "{\"username\":\"alice\",\"display_name\":"
                            "\"Alice L.\"}"),
                     200);
    assert_string_equal(tu_str(fx, "user.display_name"), "Alice L.");
    assert_string_equal(tu_str(fx, "user.email"), "alice@example.org");
    assert_string_equal(tu_str(fx, "user.created"), "2026-11-18T11:06:40Z");
    assert_string_equal(tu_str(fx, "user.updated"), "2026-11-18T11:06:41Z");
    assert_true(tu_int(fx, "sync_token") > t0);

    assert_int_equal(tu_cmd(fx, "user.update", tu_admin("root"),
                            "{\"username\":\"ALICE\",\"email\":"
                            "\"new@example.org\"}"),
                     200);
    assert_string_equal(tu_str(fx, "user.email"), "new@example.org");
    assert_string_equal(tu_str(fx, "user.display_name"), "Alice L.");
    assert_int_equal(get_as(fx, tu_user("alice"), "alice"), 200);
    assert_string_equal(tu_str(fx, "user.email"), "new@example.org");
    assert_string_equal(tu_feed(fx, "user:alice"),
                        "user.registered,user.updated,user.updated");
    assert_string_equal(tu_last_audit_object(fx), "user:alice");
}

static void update_rejections_change_nothing(void **state)
{
    struct agenda_fx *fx = *state;
    assert_int_equal(reg(fx, "alice"), 201);
    static const struct {
        const char *actor_user, *actor_role, *args;
        int status;
        const char *code;
    } cases[] = {
        {"bob", "user", "{\"username\":\"alice\",\"display_name\":\"B\"}",
         403, "forbidden"},
        {"alice", "user", "{\"username\":\"alice\"}", 400, "missing_field"},
        {"alice", "user", "{\"display_name\":\"B\"}", 400, "missing_field"},
        {"alice", "user", "{\"username\":\"alice\",\"email\":\"@x\"}", 400,
         "invalid_field"},
        {"alice", "user", "{\"username\":\"alice\",\"display_name\":\"\"}",
         400, "invalid_field"},
        {"alice", "user", "{\"username\":\"alice\",\"display_name\":7}", 400,
         "invalid_field"},
        {"alice", "user", "{\"username\":\"alice\",\"role\":\"admin\"}", 400,
         "unknown_field"},
        {"alice", "user", "{\"username\":\"alice\",\"password_hash\":\""
         TU_HASH2 "\"}", 400, "unknown_field"},
        {"root", "admin", "{\"username\":\"ghost\",\"display_name\":\"G\"}",
         404, "not_found"},
    };
    assert_int_equal(get_as(fx, TU_SYSTEM, "alice"), 200);
    static char before[65536]; /* as large as tu_body_text()'s text */
    snprintf(before, sizeof(before), "%s", tu_body_text(fx));
    uint64_t sig = tu_state_sig(fx);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int st = tu_cmd(fx, "user.update",
                        tu_actor(cases[i].actor_user, cases[i].actor_role),
                        cases[i].args);
        if (st != cases[i].status ||
            strcmp(agenda_fx_error(fx), cases[i].code) != 0)
            fail_msg("case %zu: got %d %s, want %d %s", i, st,
                     agenda_fx_error(fx), cases[i].status, cases[i].code);
    }
    assert_true(tu_state_sig(fx) == sig);
    assert_int_equal(get_as(fx, TU_SYSTEM, "alice"), 200);
    assert_string_equal(tu_body_text(fx), before);
}

/* ---- user.password ----------------------------------------------------- */

static void password_change_bumps_token_version(void **state)
{
    struct agenda_fx *fx = *state;
    assert_int_equal(reg(fx, "alice"), 201);
    assert_int_equal(tu_cmd(fx, "user.password", tu_user("alice"),
                            "{\"username\":\"alice\",\"password_hash\":\""
                            TU_HASH2 "\"}"),
                     200);
    assert_int_equal(tu_int(fx, "user.token_version"), 2);
    assert_false(tu_has(fx, "user.password_hash"));
    assert_string_equal(tu_last_audit_object(fx), "user:alice");
    assert_int_equal(tu_cmd(fx, "user.password", tu_admin("root"),
                            "{\"username\":\"alice\",\"password_hash\":\""
                            TU_HASH1 "\"}"),
                     200);
    assert_int_equal(tu_int(fx, "user.token_version"), 3);
    assert_int_equal(tu_query(fx, "user.auth", TU_SYSTEM,
                              "{\"username\":\"alice\"}"),
                     200);
    assert_string_equal(tu_str(fx, "user.password_hash"), TU_HASH1);
    assert_int_equal(tu_int(fx, "user.token_version"), 3);
    assert_string_equal(
        tu_feed(fx, "user:alice"),
        "user.registered,user.password_changed,user.password_changed");
    /* the feed never carries the hash */
    assert_int_equal(tu_query(fx, "changes.list", TU_SYSTEM,
                              "{\"target\":\"user:alice\",\"since\":0}"),
                     200);
    assert_null(strstr(tu_body_text(fx), "argon2"));
}

/* Two changes checked against the same old password (the edge sends the
 * version of the token each was asked with): the second finds the
 * account moved on and changes nothing. */
static void password_change_needs_the_token_version_it_was_asked_with(
    void **state)
{
    struct agenda_fx *fx = *state;
    assert_int_equal(reg(fx, "alice"), 201);
    assert_int_equal(tu_cmd(fx, "user.password", TU_SYSTEM,
                            "{\"username\":\"alice\",\"password_hash\":\""
                            TU_HASH2 "\",\"expected_token_version\":1}"),
                     200);
    assert_int_equal(tu_int(fx, "user.token_version"), 2);
    uint64_t sig = tu_state_sig(fx);
    assert_int_equal(tu_cmd(fx, "user.password", TU_SYSTEM,
                            "{\"username\":\"alice\",\"password_hash\":\""
                            TU_HASH1 "\",\"expected_token_version\":1}"),
                     409);
    assert_string_equal(agenda_fx_error(fx), "password_changed");
    assert_true(tu_state_sig(fx) == sig);
    assert_int_equal(tu_cmd(fx, "user.password", TU_SYSTEM,
                            "{\"username\":\"alice\",\"password_hash\":\""
                            TU_HASH1 "\",\"expected_token_version\":\"2\"}"),
                     400);
}

static void password_rejections_change_nothing(void **state)
{
    struct agenda_fx *fx = *state;
    assert_int_equal(reg(fx, "alice"), 201);
    static const struct {
        const char *actor_user, *actor_role, *args;
        int status;
        const char *code;
    } cases[] = {
        {"bob", "user", "{\"username\":\"alice\",\"password_hash\":\""
         TU_HASH2 "\"}", 403, "forbidden"},
        {"alice", "user", "{\"username\":\"alice\"}", 400, "missing_field"},
        {"alice", "user", "{\"username\":\"alice\",\"password_hash\":"
         "\"$argon2id$v=19$m=65536,t=3,p=4$short$short\"}", 400,
         "invalid_field"},
        {"alice", "user", "{\"username\":\"alice\",\"password_hash\":\""
         TU_HASH2 "\",\"token_version\":9}", 400, "unknown_field"},
        {"root", "admin", "{\"username\":\"ghost\",\"password_hash\":\""
         TU_HASH2 "\"}", 404, "not_found"},
    };
    uint64_t sig = tu_state_sig(fx);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int st = tu_cmd(fx, "user.password",
                        tu_actor(cases[i].actor_user, cases[i].actor_role),
                        cases[i].args);
        if (st != cases[i].status ||
            strcmp(agenda_fx_error(fx), cases[i].code) != 0)
            fail_msg("case %zu: got %d %s, want %d %s", i, st,
                     agenda_fx_error(fx), cases[i].status, cases[i].code);
    }
    assert_true(tu_state_sig(fx) == sig);
    assert_int_equal(tu_query(fx, "user.auth", TU_SYSTEM,
                              "{\"username\":\"alice\"}"),
                     200);
    assert_string_equal(tu_str(fx, "user.password_hash"), TU_HASH1);
    assert_int_equal(tu_int(fx, "user.token_version"), 1);
}

/* ---- user.auth --------------------------------------------------------- */

static void auth_is_for_the_edge_only(void **state)
{
    struct agenda_fx *fx = *state;
    assert_int_equal(reg(fx, "alice"), 201);
    assert_int_equal(tu_query(fx, "user.auth", tu_user("alice"),
                              "{\"username\":\"alice\"}"),
                     403);
    assert_int_equal(tu_query(fx, "user.auth", tu_admin("root"),
                              "{\"username\":\"alice\"}"),
                     403);
    assert_null(strstr(tu_body_text(fx), "argon2"));
    assert_int_equal(tu_query(fx, "user.auth", TU_SYSTEM,
                              "{\"username\":\"ghost\"}"),
                     404);
    assert_int_equal(tu_query(fx, "user.auth", TU_SYSTEM,
                              "{\"username\":\"alice\",\"x\":1}"),
                     400);
    assert_int_equal(tu_query(fx, "user.auth", TU_SYSTEM, "{}"), 400);
}

/* ---- user.list --------------------------------------------------------- */

/* The usernames of the last user.list answer, comma-separated. */
static const char *listed(struct agenda_fx *fx)
{
    static char out[4096];
    out[0] = '\0';
    json_t *b = agenda_fx_body(fx);
    size_t i;
    json_t *u;
    json_array_foreach(json_object_get(b, "users"), i, u) {
        size_t n = strlen(out);
        snprintf(out + n, sizeof(out) - n, "%s%s", n ? "," : "",
                 json_string_value(json_object_get(u, "username")));
        /* listings show public fields only */
        if (json_object_size(u) != 2)
            fail_msg("listing shows too much: %s", tu_body_text(fx));
    }
    json_decref(b);
    return out;
}

static void list_walks_from_prefix(void **state)
{
    struct agenda_fx *fx = *state;
    const char *names[] = {"alan", "albert", "alice", "alicia", "alz",
                           "bob", "al_x", "ali"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        assert_int_equal(reg(fx, names[i]), 201);
    static const struct {
        const char *args;
        const char *want;
        bool more;
    } cases[] = {
        {"{\"prefix\":\"ali\"}", "ali,alice,alicia", false},
        {"{\"prefix\":\"ALI\"}", "ali,alice,alicia", false},
        {"{\"prefix\":\"al\"}", "al_x,alan,albert,ali,alice,alicia,alz",
         false},
        {"{\"prefix\":\"al\",\"limit\":2}", "al_x,alan", true},
        {"{\"prefix\":\"alicia\",\"limit\":1}", "alicia", false},
        {"{\"prefix\":\"b\"}", "bob", false},
        {"{\"prefix\":\"c\"}", "", false},
        {"{\"prefix\":\"zzz\"}", "", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(
            tu_query(fx, "user.list", tu_user("bob"), cases[i].args), 200);
        assert_string_equal(listed(fx), cases[i].want);
        json_t *b = agenda_fx_body(fx);
        assert_int_equal(json_is_true(json_object_get(b, "more")),
                         cases[i].more);
        json_decref(b);
    }
}

static void list_is_capped(void **state)
{
    struct agenda_fx *fx = *state;
    for (int i = 0; i < AGENDA_USER_LIST_MAX + 5; i++) {
        char name[16];
        snprintf(name, sizeof(name), "u%03d", i);
        assert_int_equal(reg(fx, name), 201);
    }
    assert_int_equal(tu_query(fx, "user.list", tu_user("bob"),
                              "{\"prefix\":\"u\",\"limit\":1000}"),
                     200);
    json_t *b = agenda_fx_body(fx);
    assert_int_equal(json_array_size(json_object_get(b, "users")),
                     AGENDA_USER_LIST_MAX);
    assert_true(json_is_true(json_object_get(b, "more")));
    json_decref(b);
}

static void list_rejects_bad_input(void **state)
{
    struct agenda_fx *fx = *state;
    static const struct {
        const char *actor, *args;
        int status;
    } cases[] = {
        {NULL, "{}", 400},
        {NULL, "{\"prefix\":\"\"}", 400},
        {NULL, "{\"prefix\":\"a b\"}", 400},
        {NULL, "{\"prefix\":\"a\\u0000b\"}", 400},
        {NULL, "{\"prefix\":\"abcdefghijabcdefghijabcdefghijabc\"}", 400},
        {NULL, "{\"prefix\":\"a\",\"limit\":0}", 400},
        {NULL, "{\"prefix\":\"a\",\"limit\":-5}", 400},
        {NULL, "{\"prefix\":\"a\",\"limit\":\"10\"}", 400},
        {NULL, "{\"prefix\":\"a\",\"offset\":3}", 400},
        {TU_ANON, "{\"prefix\":\"a\"}", 401},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int st = tu_query(fx, "user.list",
                          cases[i].actor ? cases[i].actor : tu_user("bob"),
                          cases[i].args);
        if (st != cases[i].status)
            fail_msg("case %zu: got %d, want %d (%s)", i, st,
                     cases[i].status, tu_body_text(fx));
    }
}

/* ---- user.missing ------------------------------------------------------ */

static void missing_names_free_names_in_order(void **state)
{
    struct agenda_fx *fx = *state;
    assert_int_equal(reg(fx, "alice"), 201);
    assert_int_equal(reg(fx, "carol"), 201);
    assert_int_equal(
        tu_query(fx, "user.missing", tu_user("bob"),
                 "{\"usernames\":[\"Zoe\",\"alice\",\"ally\",\"CAROL\","
                 "\"bob\",\"ZOE\"]}"),
        200);
    json_t *b = agenda_fx_body(fx);
    char *got = json_dumps(json_object_get(b, "missing"), JSON_COMPACT);
    /* folded, each once, in the order given; bob has no account here */
    assert_string_equal(got, "[\"zoe\",\"ally\",\"bob\"]");
    free(got);
    json_decref(b);
    assert_int_equal(tu_query(fx, "user.missing", tu_user("bob"),
                              "{\"usernames\":[\"alice\"]}"),
                     200);
    assert_string_equal(tu_body_text(fx), "{\"missing\":[]}");
}

static void missing_rejects_bad_input(void **state)
{
    struct agenda_fx *fx = *state;
    char many[2048] = "{\"usernames\":[";
    for (int i = 0; i <= AGENDA_PARTICIPANTS_MAX; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many),
                 "%s\"u%03d\"", i ? "," : "", i);
    strcat(many, "]}");
    const char *cases[] = {
        "{}",
        "{\"usernames\":[]}",
        "{\"usernames\":\"alice\"}",
        "{\"usernames\":[\"alice\",7]}",
        "{\"usernames\":[\"a b\"]}",
        "{\"usernames\":[\"al\\u0000ice\"]}",
        "{\"usernames\":[\"alice\"],\"extra\":1}",
        many,
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int st = tu_query(fx, "user.missing", tu_user("bob"), cases[i]);
        if (st != 400)
            fail_msg("case %zu: got %d, want 400 (%s)", i, st,
                     tu_body_text(fx));
    }
    assert_int_equal(tu_query(fx, "user.missing", TU_ANON,
                              "{\"usernames\":[\"alice\"]}"),
                     401);
}

/* ---- seed corpus ------------------------------------------------------- */

/* Valid operations on the users shard, for the fuzz target's corpus: the
 * first byte selects the shard kind, then one operation per line, a '?'
 * line prefix making it a query (see tests/fuzz/fuzz_agenda_ops.c). */
static void write_corpus(void **state)
{
    (void)state;
    const char *dir = getenv("AGENDA_WRITE_CORPUS");
    if (dir == NULL)
        skip();
    static const struct {
        const char *name, *text;
    } seeds[] = {
        {"users_register",
         "\x03{\"op\":\"user.register\",\"actor\":{\"user\":\"\",\"role\":"
         "\"user\"},\"args\":{\"username\":\"Zed\",\"display_name\":\"Z\","
         "\"email\":\"z@example.org\",\"password_hash\":\"" TU_HASH1 "\"}}\n"
         "?{\"op\":\"user.get\",\"actor\":{\"user\":\"zed\",\"role\":"
         "\"user\"},\"args\":{\"username\":\"zed\"}}\n"},
        {"users_update",
         "\x03{\"op\":\"user.update\",\"actor\":{\"user\":\"alice\",\"role\":"
         "\"user\"},\"args\":{\"username\":\"alice\",\"email\":"
         "\"a@example.org\",\"display_name\":\"A\"}}\n"
         "{\"op\":\"user.password\",\"actor\":{\"user\":\"alice\",\"role\":"
         "\"user\"},\"args\":{\"username\":\"alice\",\"password_hash\":\""
         TU_HASH2 "\"}}\n"},
        {"users_queries",
         "\x03?{\"op\":\"user.list\",\"actor\":{\"user\":\"bob\",\"role\":"
         "\"user\"},\"args\":{\"prefix\":\"a\",\"limit\":2}}\n"
         "?{\"op\":\"user.auth\",\"actor\":{\"user\":\"\",\"role\":"
         "\"system\"},\"args\":{\"username\":\"alice\"}}\n"
         "?{\"op\":\"user.missing\",\"actor\":{\"user\":\"bob\",\"role\":"
         "\"user\"},\"args\":{\"usernames\":[\"alice\",\"Zed\"]}}\n"},
    };
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
        T(register_creates_account),
        T(register_rejects_bad_input),
        T(register_username_taken),
        T(register_admin_needs_admin),
        T(register_retry_answers_first_result),
        T(get_shows_private_fields_to_self_and_admins),
        T(get_errors),
        T(update_by_self_and_admin),
        T(update_rejections_change_nothing),
        T(password_change_bumps_token_version),
        T(password_change_needs_the_token_version_it_was_asked_with),
        T(password_rejections_change_nothing),
        T(auth_is_for_the_edge_only),
        T(list_walks_from_prefix),
        T(list_is_capped),
        T(list_rejects_bad_input),
        T(missing_names_free_names_in_order),
        T(missing_rejects_bad_input),
        cmocka_unit_test(write_corpus),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

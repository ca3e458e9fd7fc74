/*
 * test_flow_groups.c — groups and members, the change feed with its
 * opaque per-shard sync tokens, the audit log and /cluster (admins).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <cmocka.h>

#include "flow_harness.h"

#define GID "52af714bf64d0525"
#define GRP                                                                \
    "{\"group\":{\"id\":\"" GID "\",\"name\":\"Team\",\"version\":2,"      \
    "\"members\":[{\"user\":\"alice\",\"role\":\"leader\"}]},"             \
    "\"sync_token\":4}"
#define ERR(code) "{\"error\":{\"code\":\"" code "\",\"message\":\"m\"}}"
#define G "/groups/" GID

#define FH_AUTH_ADMIN                                                      \
    {"user.auth", NULL, 200,                                               \
     "{\"user\":{\"username\":\"alice\",\"password_hash\":\"" FH_HASH      \
     "\",\"role\":\"admin\",\"token_version\":1}}"}

static const struct fh_row s_ok[] = {
    FH_AUTH_ALICE,
    {"group.list", NULL, 200, "{\"groups\":[]}"},
    {"group.create", NULL, 201, GRP},
    {"group.get", NULL, 200, GRP},
    {"group.update", NULL, 200, GRP},
    {"group.delete", NULL, 200,
     "{\"id\":\"" GID "\",\"deleted\":true,\"members\":[\"alice\","
     "\"bob\"],\"sync_token\":5}"},
    {"user.get", NULL, 200, "{\"user\":{\"username\":\"bob\"}}"},
    {"group.member_add", NULL, 201, GRP},
    {"group.member_role", NULL, 200, GRP},
    {"group.member_remove", NULL, 200, GRP},
    {"group.leave", NULL, 200,
     "{\"id\":\"" GID "\",\"left\":true,\"group_deleted\":false}"},
    {"calendar.purge", NULL, 200,
     "{\"calendar\":\"g:" GID "\",\"deleted\":3,\"more\":false,"
     "\"sync_token\":9}"},
    {"changes.head", "users", 200, "{\"sync_token\":10}"},
    {"changes.head", "groups", 200, "{\"sync_token\":20}"},
    {"changes.head", "events_am", 200, "{\"sync_token\":30}"},
    {"changes.head", "events_nz", 200, "{\"sync_token\":40}"},
    {"changes.list", "events_am", 200,
     "{\"changes\":[{\"seq\":31,\"time\":\"2026-11-27T02:41:33Z\","
     "\"type\":\"invitation.created\"}],\"more\":false,\"sync_token\":31}"},
    {"changes.list", "events_nz", 200,
     "{\"changes\":[{\"seq\":41,\"time\":\"2026-11-27T02:41:32.500Z\","
     "\"type\":\"invitation.created\"}],\"more\":true,\"sync_token\":41}"},
    {"changes.list", NULL, 200,
     "{\"changes\":[],\"more\":false,\"sync_token\":0}"},
};

static const struct fh_row s_err[] = {
    FH_AUTH_ALICE,
    {"user.get", NULL, 404, ERR("not_found")},
    {"group.get", NULL, 404, ERR("not_found")},
    {"group.update", NULL, 403, ERR("forbidden")},
    {"group.member_remove", NULL, 409, ERR("last_leader")},
    {"changes.list", "events_nz", 410, ERR("sync_token_expired")},
    {"changes.list", NULL, 200,
     "{\"changes\":[],\"more\":false,\"sync_token\":0}"},
};

static const struct fh_row s_admin[] = {
    FH_AUTH_ADMIN,
    {"audit.list", "users", 200,
     "{\"records\":[{\"seq\":1,\"time\":\"2026-11-27T02:41:33Z\"}],"
     "\"next_after\":1,\"more\":false}"},
    {"audit.list", NULL, 200,
     "{\"records\":[{\"seq\":7,\"time\":\"2026-11-27T02:41:30Z\"}],"
     "\"next_after\":7,\"more\":true}"},
    /* the replicas' GET /status: the groups replica is down */
    {"status", "groups", 502, NULL},
    {"status", NULL, 200,
     "{\"shard\":\"x\",\"node_id\":1,\"role\":\"leader\",\"term\":4,"
     "\"leader_id\":1,\"commit_index\":17,\"applied_index\":17,"
     "\"healthy\":true,\"peers\":[]}"},
};

static const struct fh_case group_cases[] = {
    {"list", "GET", "/groups", NULL, FH_ALICE, NULL, NULL, NULL,
     FH_SCRIPT(s_ok), 200, NULL, 2, "group.list"},
    {"create", "POST", "/groups", NULL, FH_ALICE, NULL, FH_JSON,
     "{\"name\":\"Team\"}", FH_SCRIPT(s_ok), 201, NULL, 2, "group.create"},
    {"create unknown", "POST", "/groups", NULL, FH_ALICE, NULL, FH_JSON,
     "{\"name\":\"Team\",\"members\":[]}", FH_SCRIPT(s_ok), 400,
     "unknown_field", 0, NULL},
    {"get", "GET", G, NULL, FH_ALICE, NULL, NULL, NULL, FH_SCRIPT(s_ok),
     200, NULL, 2, "group.get"},
    {"get bad id", "GET", "/groups/xyz", NULL, FH_ALICE, NULL, NULL, NULL,
     FH_SCRIPT(s_ok), 404, "not_found", 1, NULL},
    {"get hidden", "GET", G, NULL, FH_ALICE, NULL, NULL, NULL,
     FH_SCRIPT(s_err), 404, "not_found", 2, NULL},
    {"patch", "PATCH", G, NULL, FH_ALICE, "\"2\"", FH_JSON,
     "{\"name\":\"T2\"}", FH_SCRIPT(s_ok), 200, NULL, 2, "group.update"},
    {"patch not leader", "PATCH", G, NULL, FH_ALICE, NULL, FH_JSON,
     "{\"name\":\"T2\"}", FH_SCRIPT(s_err), 403, "forbidden", 2, NULL},
    {"patch bad if-match", "PATCH", G, NULL, FH_ALICE, "2", FH_JSON,
     "{\"name\":\"T2\"}", FH_SCRIPT(s_ok), 400, "invalid_if_match", 1,
     NULL},
    {"delete", "DELETE", G, NULL, FH_ALICE, NULL, NULL, NULL,
     FH_SCRIPT(s_ok), 200, NULL, 3, "calendar.purge"},
    {"add member", "POST", G "/members", NULL, FH_ALICE, NULL, FH_JSON,
     "{\"user\":\"Bob\",\"role\":\"member\"}", FH_SCRIPT(s_ok), 201, NULL,
     3, "group.member_add"},
    {"add unknown user", "POST", G "/members", NULL, FH_ALICE, NULL,
     FH_JSON, "{\"user\":\"ghost\"}", FH_SCRIPT(s_err), 404,
     "user_not_found", 2, "user.get"},
    {"add bad user", "POST", G "/members", NULL, FH_ALICE, NULL, FH_JSON,
     "{\"user\":\"a b\"}", FH_SCRIPT(s_ok), 400, "invalid_field", 1, NULL},
    {"add role not string", "POST", G "/members", NULL, FH_ALICE, NULL,
     FH_JSON, "{\"user\":\"bob\",\"role\":1}", FH_SCRIPT(s_ok), 400,
     "invalid_field", 1, NULL},
    {"member role", "PATCH", G "/members/bob", NULL, FH_ALICE, NULL, FH_JSON,
     "{\"role\":\"leader\"}", FH_SCRIPT(s_ok), 200, NULL, 2,
     "group.member_role"},
    {"member role missing", "PATCH", G "/members/bob", NULL, FH_ALICE, NULL,
     FH_JSON, "{}", FH_SCRIPT(s_ok), 400, "missing_field", 1, NULL},
    {"remove other", "DELETE", G "/members/bob", NULL, FH_ALICE, NULL, NULL,
     NULL, FH_SCRIPT(s_ok), 200, NULL, 2, "group.member_remove"},
    {"remove last leader", "DELETE", G "/members/bob", NULL, FH_ALICE, NULL,
     NULL, NULL, FH_SCRIPT(s_err), 409, "last_leader", 2, NULL},
    {"leave", "DELETE", G "/members/ALICE", NULL, FH_ALICE, NULL, NULL,
     NULL, FH_SCRIPT(s_ok), 200, NULL, 2, "group.leave"},
    {"changes head", "GET", "/changes", NULL, FH_ALICE, NULL, NULL, NULL,
     FH_SCRIPT(s_ok), 200, NULL, 5, "changes.head"},
    {"changes bad target", "GET", "/changes", "target=event:x", FH_ALICE,
     NULL, NULL, NULL, FH_SCRIPT(s_ok), 400, "invalid_target", 1, NULL},
    {"changes garbage token", "GET", "/changes", "since=!!", FH_ALICE, NULL,
     NULL, NULL, FH_SCRIPT(s_ok), 400, "invalid_sync_token", 1, NULL},
    {"changes of another user", "GET", "/changes", "target=user:Bob",
     FH_ALICE, NULL, NULL, NULL, FH_SCRIPT(s_ok), 403, "forbidden", 1,
     NULL},
    {"changes of another calendar", "GET", "/changes", "target=calendar:bob",
     FH_ALICE, NULL, NULL, NULL, FH_SCRIPT(s_ok), 403, "forbidden", 1,
     NULL},
    {"changes of my calendar", "GET", "/changes", "target=calendar:Alice",
     FH_ALICE, NULL, NULL, NULL, FH_SCRIPT(s_ok), 200, NULL, 2,
     "changes.head"},
    {"changes bad limit", "GET", "/changes", "limit=x", FH_ALICE, NULL,
     NULL, NULL, FH_SCRIPT(s_ok), 400, "invalid_parameter", 1, NULL},
    {"audit not admin", "GET", "/audit", NULL, FH_ALICE, NULL, NULL, NULL,
     FH_SCRIPT(s_ok), 403, "forbidden", 1, NULL},
    {"cluster not admin", "GET", "/cluster", NULL, FH_ALICE, NULL, NULL,
     NULL, FH_SCRIPT(s_ok), 403, "forbidden", 1, NULL},
};

static void test_group_table(void **state)
{
    (void)state;
    fh_cases_run(group_cases, sizeof group_cases / sizeof group_cases[0]);
}

static int get(struct fh *h, const char *path, const char *query)
{
    struct agenda_flow_request r = {.method = "GET", .path = path,
                                    .query = query};

    r.authorization = fh_bearer(h, "alice", 1);
    return fh_run(h, &r);
}

static void test_member_notifications(void **state)
{
    struct fh h;
    struct agenda_flow_request r = {.method = "POST", .path = G "/members",
                                    .content_type = FH_JSON};
    const char *body = "{\"user\":\"Bob\"}";

    (void)state;
    fh_init(&h, FH_SCRIPT(s_ok));
    r.authorization = fh_bearer(&h, "alice", 1);
    r.body = (const uint8_t *)body;
    r.body_len = strlen(body);
    assert_int_equal(fh_run(&h, &r), 201);
    assert_string_equal(fh_op(&h, 1), "user.get");
    assert_string_equal(fh_arg(&h, 1, "username"), "bob");
    assert_string_equal(h.calls[1].shard, "users");
    assert_string_equal(fh_arg(&h, 2, "user"), "bob");
    assert_string_equal(fh_header(&h, "ETag"), "\"2\"");
    assert_true(fh_notified(&h, "group/" GID, "group.member_added"));
    assert_true(fh_notified(&h, "user/bob", "group.member_added"));
    size_t after;
    assert_false(fh_closed(&h, "group/" GID, &after));
    fh_done(&h);

    /* a member removed, or leaving: told first, then the group's
     * subscribers are disconnected (they subscribe again through the
     * guard, which refuses the former member) */
    static const char *const removals[] = {G "/members/bob",
                                           G "/members/alice"};
    for (size_t i = 0; i < 2; i++) {
        struct agenda_flow_request d = {.method = "DELETE",
                                        .path = removals[i]};
        fh_init(&h, FH_SCRIPT(s_ok));
        d.authorization = fh_bearer(&h, "alice", 1);
        assert_int_equal(fh_run(&h, &d), 200);
        assert_true(fh_notified(&h, "group/" GID, "group.member_removed"));
        assert_true(fh_closed(&h, "group/" GID, &after));
        assert_int_equal(after, 0);
        assert_false(fh_closed(&h, "user/bob", &after));
        fh_done(&h);
    }
    /* refused: nothing told, nobody disconnected */
    struct agenda_flow_request d = {.method = "DELETE",
                                    .path = G "/members/bob"};
    fh_init(&h, FH_SCRIPT(s_err));
    d.authorization = fh_bearer(&h, "alice", 1);
    assert_int_equal(fh_run(&h, &d), 409);
    assert_false(fh_closed(&h, "group/" GID, &after));
    fh_done(&h);
}

/* ---- a deleted group's calendar is emptied ------------------------------ */

static const struct fh_row s_purge_forever[] = {
    FH_AUTH_ALICE,
    {"group.delete", NULL, 200,
     "{\"id\":\"" GID "\",\"deleted\":true,\"sync_token\":5}"},
    {"calendar.purge", NULL, 200,
     "{\"calendar\":\"g:" GID "\",\"deleted\":100,\"more\":true}"},
};

static const struct fh_row s_purge_down[] = {
    FH_AUTH_ALICE,
    {"group.delete", NULL, 200,
     "{\"id\":\"" GID "\",\"deleted\":true,\"sync_token\":5}"},
    {"calendar.purge", NULL, 0, NULL},
};

static const struct fh_row s_last_leaves[] = {
    FH_AUTH_ALICE,
    {"group.leave", NULL, 200,
     "{\"id\":\"" GID "\",\"left\":true,\"group_deleted\":true}"},
    {"calendar.purge", NULL, 200,
     "{\"calendar\":\"g:" GID "\",\"deleted\":0,\"more\":false}"},
};

static const struct fh_row s_delete_refused[] = {
    FH_AUTH_ALICE,
    {"group.delete", NULL, 403, ERR("forbidden")},
    {"calendar.purge", NULL, 200, "{\"deleted\":0,\"more\":false}"},
};

static const struct fh_row s_deleted_before[] = {
    FH_AUTH_ALICE,
    {"group.delete", NULL, 404,
     "{\"error\":{\"code\":\"not_found\",\"message\":\"m\","
     "\"gone\":true}}"},
    {"calendar.purge", NULL, 200,
     "{\"calendar\":\"g:" GID "\",\"deleted\":4,\"more\":false,"
     "\"sync_token\":9}"},
};

static const struct fh_row s_never_was[] = {
    FH_AUTH_ALICE,
    {"group.delete", NULL, 404, ERR("not_found")},
    {"calendar.purge", NULL, 200, "{\"deleted\":0,\"more\":false}"},
};

static int del(struct fh *h, const char *path)
{
    struct agenda_flow_request r = {.method = "DELETE", .path = path};

    r.authorization = fh_bearer(h, "alice", 1);
    return fh_run(h, &r);
}

static void test_delete_empties_the_group_calendar(void **state)
{
    struct fh h;
    json_t *actor;

    (void)state;
    fh_init(&h, FH_SCRIPT(s_ok));
    assert_int_equal(del(&h, G), 200);
    assert_int_equal(h.n_calls, 3);
    assert_string_equal(fh_op(&h, 2), "calendar.purge");
    assert_true(h.calls[2].command);
    assert_string_equal(h.calls[2].shard, "events_am"); /* "g:" < "n" */
    assert_string_equal(fh_arg(&h, 2, "calendar"), "g:" GID);
    actor = json_object_get(h.calls[2].req, "actor");
    assert_string_equal(json_string_value(json_object_get(actor, "role")),
                        "system");
    assert_int_equal(json_integer_value(json_object_get(h.body,
                                                        "events_deleted")),
                     3);
    assert_true(json_is_true(json_object_get(h.body, "calendar_purged")));
    assert_true(json_is_true(json_object_get(h.body, "deleted")));
    assert_null(json_object_get(h.body, "sync_token"));
    assert_null(json_object_get(h.body, "members"));
    /* the group's channel, and every former member's own */
    assert_true(fh_notified(&h, "group/" GID, "group.deleted"));
    assert_true(fh_notified(&h, "user/alice", "group.deleted"));
    assert_true(fh_notified(&h, "user/bob", "group.deleted"));
    size_t after;
    assert_true(fh_closed(&h, "group/" GID, &after));
    assert_int_equal(after, 0);
    fh_done(&h);

    /* a rename reaches the members' own channels too */
    {
        struct agenda_flow_request r = {.method = "PATCH", .path = G,
                                        .content_type = FH_JSON};
        const char *body = "{\"name\":\"T2\"}";

        fh_init(&h, FH_SCRIPT(s_ok));
        r.authorization = fh_bearer(&h, "alice", 1);
        r.body = (const uint8_t *)body;
        r.body_len = strlen(body);
        assert_int_equal(fh_run(&h, &r), 200);
        assert_true(fh_notified(&h, "group/" GID, "group.updated"));
        assert_true(fh_notified(&h, "user/alice", "group.updated"));
        fh_done(&h);
    }

    /* a calendar that never ends: bounded, and said so */
    fh_init(&h, FH_SCRIPT(s_purge_forever));
    assert_int_equal(del(&h, G), 200);
    assert_int_equal(h.n_calls, 2 + 20);
    assert_int_equal(json_integer_value(json_object_get(h.body,
                                                        "events_deleted")),
                     2000);
    assert_true(json_is_false(json_object_get(h.body, "calendar_purged")));
    fh_done(&h);

    /* the events shard unreachable: the group is deleted all the same */
    fh_init(&h, FH_SCRIPT(s_purge_down));
    assert_int_equal(del(&h, G), 200);
    assert_int_equal(json_integer_value(json_object_get(h.body,
                                                        "events_deleted")),
                     0);
    assert_true(json_is_false(json_object_get(h.body, "calendar_purged")));
    fh_done(&h);

    /* a refused delete purges nothing */
    fh_init(&h, FH_SCRIPT(s_delete_refused));
    assert_int_equal(del(&h, G), 403);
    assert_int_equal(h.n_calls, 2);
    fh_done(&h);

    /* deleting again a group deleted before purges its calendar again,
     * in case the first time could not, and answers a plain 404 */
    fh_init(&h, FH_SCRIPT(s_deleted_before));
    assert_int_equal(del(&h, G), 404);
    assert_string_equal(fh_code(&h), "not_found");
    assert_null(json_object_get(json_object_get(h.body, "error"), "gone"));
    assert_int_equal(h.n_calls, 3);
    assert_string_equal(fh_op(&h, 2), "calendar.purge");
    assert_int_equal(h.n_notes, 0);
    fh_done(&h);
    /* a group that never was: nothing to purge */
    fh_init(&h, FH_SCRIPT(s_never_was));
    assert_int_equal(del(&h, G), 404);
    assert_int_equal(h.n_calls, 2);
    fh_done(&h);

    /* the last member leaving deletes the group: same clean-up */
    fh_init(&h, FH_SCRIPT(s_last_leaves));
    assert_int_equal(del(&h, G "/members/alice"), 200);
    assert_int_equal(h.n_calls, 3);
    assert_string_equal(fh_op(&h, 2), "calendar.purge");
    assert_true(json_is_true(json_object_get(h.body, "calendar_purged")));
    assert_true(json_is_true(json_object_get(h.body, "group_deleted")));
    fh_done(&h);

    /* leaving a group that goes on: no purge */
    fh_init(&h, FH_SCRIPT(s_ok));
    assert_int_equal(del(&h, G "/members/alice"), 200);
    assert_int_equal(h.n_calls, 2);
    fh_done(&h);
}

static void test_sync_token_round_trip(void **state)
{
    struct fh h;
    char token[512];
    json_t *changes;
    const char *t;

    (void)state;
    fh_init(&h, FH_SCRIPT(s_ok));
    assert_int_equal(get(&h, "/changes", NULL), 200);
    /* user:<me> lives on every shard */
    assert_int_equal(h.n_calls, 5);
    assert_int_equal(json_array_size(json_object_get(h.body, "changes")), 0);
    t = json_string_value(json_object_get(h.body, "sync_token"));
    assert_non_null(t);
    snprintf(token, sizeof token, "since=%s", t);
    assert_int_equal(get(&h, "/changes", token), 200);
    for (size_t i = 1; i < h.n_calls; i++) {
        json_t *args = json_object_get(h.calls[i].req, "args");
        int want = strcmp(h.calls[i].shard, "users") == 0 ? 10
                   : strcmp(h.calls[i].shard, "groups") == 0 ? 20
                   : strcmp(h.calls[i].shard, "events_am") == 0 ? 30 : 40;

        assert_string_equal(fh_op(&h, i), "changes.list");
        assert_string_equal(fh_arg(&h, i, "target"), "user:alice");
        assert_int_equal(json_integer_value(json_object_get(args, "since")),
                         want);
    }
    /* merged by time across shards, tagged with their shard */
    changes = json_object_get(h.body, "changes");
    assert_int_equal(json_array_size(changes), 2);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(changes, 0), "shard")),
                        "events_nz");
    assert_true(json_is_true(json_object_get(h.body, "more")));
    /* the token of another target (other shards) is refused */
    {
        char q[600];

        snprintf(q, sizeof q, "target=group:" GID "&%s", token);
        assert_int_equal(get(&h, "/changes", q), 400);
        assert_string_equal(fh_code(&h), "invalid_sync_token");
    }
    /* and so is the token of another target on the same shard (two
     * groups): it would skip the changes before its position */
    {
        char q[600];

        assert_int_equal(get(&h, "/changes", "target=group:" GID), 200);
        t = json_string_value(json_object_get(h.body, "sync_token"));
        snprintf(q, sizeof q, "target=group:" GID "&since=%s", t);
        assert_int_equal(get(&h, "/changes", q), 200);
        snprintf(q, sizeof q, "target=group:0123456789abcdef&since=%s",
                 json_string_value(json_object_get(h.body, "sync_token")));
        assert_int_equal(get(&h, "/changes", q), 400);
        assert_string_equal(fh_code(&h), "invalid_sync_token");
    }
    fh_done(&h);
    /* any shard's 410 makes the answer 410 */
    fh_init(&h, FH_SCRIPT(s_err));
    assert_int_equal(get(&h, "/changes", token), 410);
    assert_string_equal(fh_code(&h), "sync_token_expired");
    fh_done(&h);
}

/* A new leader's clock may be behind the old one's: a shard's records
 * still come in their own order (seq), merged with the other shards'.
 * And the feed is read at the leaders even when asked stale. */
static void test_changes_keep_each_shards_order(void **state)
{
    static const struct fh_row s_clock[] = {
        FH_AUTH_ALICE,
        {"changes.list", "events_am", 200,
         "{\"changes\":[{\"seq\":31,\"time\":\"2026-11-27T02:41:33Z\","
         "\"type\":\"event.created\"},{\"seq\":32,\"time\":"
         "\"2026-11-27T02:41:31Z\",\"type\":\"event.deleted\"}],"
         "\"more\":false,\"sync_token\":32}"},
        {"changes.list", "events_nz", 200,
         "{\"changes\":[{\"seq\":41,\"time\":\"2026-11-27T02:41:32Z\","
         "\"type\":\"invitation.created\"}],\"more\":false,"
         "\"sync_token\":41}"},
        {"changes.list", NULL, 200,
         "{\"changes\":[],\"more\":false,\"sync_token\":0}"},
    };
    /* {"users":1,"groups":1,"events_am":1,"events_nz":1} */
    static const char since[] =
        "consistency=stale&"
        "since=eyJ1c2VycyI6MSwiZ3JvdXBzIjoxLCJldmVudHNfYW0iOjEsImV2ZW50c1"
        "9ueiI6MX0";
    static const char *const want[] = {"41", "31", "32"};
    struct fh h;
    json_t *changes, *c;
    size_t i;

    (void)state;
    fh_init(&h, FH_SCRIPT(s_clock));
    assert_int_equal(get(&h, "/changes", since), 200);
    /* the feed is read at the leaders, even when asked stale */
    for (i = 1; i < h.n_calls; i++)
        assert_false(h.calls[i].stale);
    changes = json_object_get(h.body, "changes");
    assert_int_equal(json_array_size(changes), 3);
    json_array_foreach(changes, i, c) {
        char seq[24];

        snprintf(seq, sizeof seq, "%lld",
                 (long long)json_integer_value(json_object_get(c, "seq")));
        assert_string_equal(seq, want[i]);
    }
    fh_done(&h);
}

static void test_group_feed_uses_group_role(void **state)
{
    struct fh h;

    (void)state;
    fh_init(&h, FH_SCRIPT(s_ok));
    /* {"groups":1} */
    assert_int_equal(get(&h, "/changes", "target=group:" GID
                                         "&since=eyJncm91cHMiOjF9"), 200);
    assert_int_equal(h.n_calls, 3);
    assert_string_equal(fh_op(&h, 1), "group.get");
    assert_string_equal(fh_op(&h, 2), "changes.list");
    assert_string_equal(h.calls[2].shard, "groups");
    assert_string_equal(fh_actor(&h, 2, "calendar_role"), "leader");
    fh_done(&h);
}

static void test_audit_and_cluster_for_admins(void **state)
{
    struct fh h;
    json_t *recs, *shards;
    char q[600];

    (void)state;
    fh_init(&h, FH_SCRIPT(s_admin));
    assert_int_equal(get(&h, "/audit", "limit=2"), 200);
    assert_int_equal(h.n_calls, 5);
    recs = json_object_get(h.body, "records");
    assert_int_equal(json_array_size(recs), 4);
    assert_true(json_is_true(json_object_get(h.body, "more")));
    snprintf(q, sizeof q, "cursor=%s", json_string_value(
                 json_object_get(h.body, "cursor")));
    assert_int_equal(get(&h, "/audit", q), 200);
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(h.calls[4].req, "args"), "after")),
                     1 + 6 * (strcmp(h.calls[4].shard, "users") != 0));
    assert_int_equal(get(&h, "/cluster", NULL), 200);
    shards = json_object_get(h.body, "shards");
    assert_int_equal(json_array_size(shards), 4);
    /* user.auth, then one GET /status per replica */
    assert_int_equal(h.n_calls, 5);
    assert_string_equal(fh_op(&h, 1), "status");
    for (size_t i = 0; i < 4; i++) {
        json_t *s = json_array_get(shards, i);
        json_t *st = json_object_get(json_array_get(
            json_object_get(s, "replicas"), 0), "status");
        const char *name = json_string_value(json_object_get(s, "name"));

        if (strcmp(name, "groups") == 0) {
            assert_true(json_is_false(json_object_get(st, "reachable")));
            assert_true(json_is_null(json_object_get(s, "leader")));
            continue;
        }
        assert_true(json_is_true(json_object_get(st, "reachable")));
        assert_string_equal(json_string_value(json_object_get(st, "role")),
                            "leader");
        assert_null(json_object_get(st, "peers"));
        assert_int_equal(json_integer_value(json_object_get(
                             json_object_get(s, "leader"), "commit_index")),
                         17);
        assert_int_equal(json_integer_value(json_object_get(
                             json_object_get(s, "leader"), "term")), 4);
    }
    fh_done(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_group_table),
        cmocka_unit_test(test_member_notifications),
        cmocka_unit_test(test_delete_empties_the_group_calendar),
        cmocka_unit_test(test_sync_token_round_trip),
        cmocka_unit_test(test_changes_keep_each_shards_order),
        cmocka_unit_test(test_group_feed_uses_group_role),
        cmocka_unit_test(test_audit_and_cluster_for_admins),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

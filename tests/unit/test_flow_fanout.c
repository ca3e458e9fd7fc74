/*
 * test_flow_fanout.c — /agenda, /invitations and /freebusy: one call per
 * events shard in one CALL action, merged in time order without
 * duplicates; any failing shard fails the answer.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <cmocka.h>

#include "agenda_flow_internal.h"
#include "flow_harness.h"

#define E(cal, id, start)                                                  \
    "{\"calendar\":\"" cal "\",\"id\":\"" id "\",\"start\":\"" start "\"}"
#define WIN "\"from\":\"2026-12-01T00:00:00Z\",\"to\":\"2026-12-31T00:00:00Z\""

static const struct fh_row s_agenda[] = {
    FH_AUTH_ALICE,
    /* alice's own calendar (events_am) */
    {"event.list", "events_am", 200,
     "{" WIN ",\"next_cursor\":null,\"events\":["
     E("alice", "e1", "2026-12-01T10:00:00Z") ","
     E("alice", "e3", "2026-12-01T12:00:00Z") "]}"},
    /* her invitations on each shard; e1 again: listed once */
    {"event.list_participant", "events_am", 200,
     "{" WIN ",\"next_cursor\":null,\"events\":["
     E("bob", "e2", "2026-12-01T09:00:00Z") ","
     E("alice", "e1", "2026-12-01T10:00:00Z") "]}"},
    {"event.list_participant", "events_nz", 200,
     "{" WIN ",\"next_cursor\":\"00ff\",\"events\":["
     E("zed", "e4", "2026-12-01") ","
     E("zed", "e5", "2026-12-01T10:00:00.500Z") "]}"},
    {"event.freebusy", "events_am", 200,
     "{" WIN ",\"users\":{\"alice\":[{\"start\":\"2026-12-01T09:00:00Z\","
     "\"end\":\"2026-12-01T10:00:00Z\"},{\"start\":\"2026-12-02T09:00:00Z\","
     "\"end\":\"2026-12-02T10:00:00Z\"}],\"bob\":[]}}"},
    {"event.freebusy", "events_nz", 200,
     "{" WIN ",\"users\":{\"alice\":[{\"start\":\"2026-12-01T09:30:00Z\","
     "\"end\":\"2026-12-01T11:00:00Z\"},{\"start\":\"2026-12-01T11:00:00Z\","
     "\"end\":\"2026-12-01T11:30:00Z\"}],\"bob\":[{\"start\":"
     "\"2026-12-01T15:00:00Z\",\"end\":\"2026-12-01T16:00:00Z\"}]}}"},
};

static const struct fh_row s_one_down[] = {
    FH_AUTH_ALICE,
    {"event.list", NULL, 200, "{" WIN ",\"events\":[]}"},
    {"event.list_participant", "events_am", 200, "{" WIN ",\"events\":[]}"},
    {"event.list_participant", "events_nz", 0, NULL},
};

static const struct fh_row s_bad_window[] = {
    FH_AUTH_ALICE,
    {"event.list", NULL, 422,
     "{\"error\":{\"code\":\"invalid_range\",\"message\":\"m\"}}"},
    {"event.list_participant", NULL, 422,
     "{\"error\":{\"code\":\"invalid_range\",\"message\":\"m\"}}"},
};

#define Q "from=2026-12-01T00:00:00Z&to=2026-12-31T00:00:00Z"

static const struct fh_case fan_cases[] = {
    {"agenda", "GET", "/agenda", Q, FH_ALICE, NULL, NULL, NULL,
     FH_SCRIPT(s_agenda), 200, NULL, 4, NULL},
    {"agenda no window", "GET", "/agenda", NULL, FH_ALICE, NULL, NULL, NULL,
     FH_SCRIPT(s_agenda), 400, "missing_parameter", 1, NULL},
    {"agenda shard down", "GET", "/agenda", Q, FH_ALICE, NULL, NULL, NULL,
     FH_SCRIPT(s_one_down), 503, "unavailable", 4, NULL},
    {"agenda bad window", "GET", "/agenda", "from=b&to=a", FH_ALICE, NULL,
     NULL, NULL, FH_SCRIPT(s_bad_window), 422, "invalid_range", 4, NULL},
    {"invitations", "GET", "/invitations", "status=needs_action", FH_ALICE,
     NULL, NULL, NULL, FH_SCRIPT(s_agenda), 200, NULL, 3, NULL},
    {"invitations half window", "GET", "/invitations", "from=x", FH_ALICE,
     NULL, NULL, NULL, FH_SCRIPT(s_agenda), 400, "missing_parameter", 1,
     NULL},
    {"freebusy", "GET", "/freebusy", "users=alice,Bob&" Q, FH_ALICE, NULL,
     NULL, NULL, FH_SCRIPT(s_agenda), 200, NULL, 3, NULL},
    {"freebusy no users", "GET", "/freebusy", Q, FH_ALICE, NULL, NULL, NULL,
     FH_SCRIPT(s_agenda), 400, "missing_parameter", 1, NULL},
    {"freebusy bad user", "GET", "/freebusy", "users=al%20ice&" Q, FH_ALICE,
     NULL, NULL, NULL, FH_SCRIPT(s_agenda), 400, "invalid_parameter", 1,
     NULL},
    {"freebusy empty name", "GET", "/freebusy", "users=alice,,bob&" Q,
     FH_ALICE, NULL, NULL, NULL, FH_SCRIPT(s_agenda), 400,
     "invalid_parameter", 1, NULL},
    {"freebusy too many", "GET", "/freebusy",
     "users=u01,u02,u03,u04,u05,u06,u07,u08,u09,u10,u11,u12,u13,u14,u15,"
     "u16,u17,u18,u19,u20,u21&" Q, FH_ALICE, NULL, NULL, NULL,
     FH_SCRIPT(s_agenda), 400, "too_many_users", 1, NULL},
};

static void test_fanout_table(void **state)
{
    (void)state;
    fh_cases_run(fan_cases, sizeof fan_cases / sizeof fan_cases[0]);
}

static int get(struct fh *h, const char *path, const char *query)
{
    struct agenda_flow_request r = {.method = "GET", .path = path,
                                    .query = query};

    r.authorization = fh_bearer(h, "alice", 1);
    return fh_run(h, &r);
}

/* events_nz had more (next_cursor): the merge ends with its last event
 * (e5, 10:00:00.500), so e3 (12:00, on events_am) is left out rather than
 * shown with whatever events_nz holds before noon missing. */
static void test_agenda_merge_order_and_dedupe(void **state)
{
    static const char *const want[] = {"e4", "e2", "e1", "e5"};
    struct fh h;
    json_t *events;

    (void)state;
    fh_init(&h, FH_SCRIPT(s_agenda));
    assert_int_equal(get(&h, "/agenda", Q), 200);
    /* one parallel action: own calendar, then every events shard */
    assert_string_equal(fh_op(&h, 1), "event.list");
    assert_string_equal(fh_arg(&h, 1, "calendar"), "alice");
    assert_string_equal(h.calls[2].shard, "events_am");
    assert_string_equal(h.calls[3].shard, "events_nz");
    assert_string_equal(fh_arg(&h, 3, "user"), "alice");
    events = json_object_get(h.body, "events");
    assert_int_equal(json_array_size(events), 4);
    for (size_t i = 0; i < 4; i++)
        assert_string_equal(json_string_value(json_object_get(
                                json_array_get(events, i), "id")),
                            want[i]);
    assert_true(json_is_true(json_object_get(h.body, "truncated")));
    assert_string_equal(json_string_value(json_object_get(h.body, "from")),
                        "2026-12-01T00:00:00Z");
    fh_done(&h);
}

/* A time's offset sent without percent-encoding its '+' is the offset,
 * as encoded; "+" is not read as a form's space. */
static void test_an_unencoded_plus_is_a_plus(void **state)
{
    struct fh h;

    (void)state;
    fh_init(&h, FH_SCRIPT(s_agenda));
    assert_int_equal(get(&h, "/agenda", "from=2026-12-01T09:00:00+01:00"
                                        "&to=2026-12-31T00:00:00%2B01:00"),
                     200);
    assert_string_equal(fh_arg(&h, 1, "from"), "2026-12-01T09:00:00+01:00");
    assert_string_equal(fh_arg(&h, 1, "to"), "2026-12-31T00:00:00+01:00");
    fh_done(&h);
}

/* The "after" a call carried, as compact JSON ("" when none). */
static const char *after_of(const struct fh *h, size_t i)
{
    static char out[256];
    json_t *a = json_object_get(json_object_get(h->calls[i].req, "args"),
                                "after");
    char *text = a != NULL ? json_dumps(a, JSON_COMPACT | JSON_SORT_KEYS)
                           : NULL;

    snprintf(out, sizeof out, "%s", text != NULL ? text : "");
    free(text);
    return out;
}

/* A truncated agenda's next_cursor resumes each walk after its last item
 * within the page (shown, or a duplicate of one shown), with the same
 * window; a cursor of something else is refused. */
static void test_agenda_pages_with_a_cursor(void **state)
{
    struct fh h;
    char q[1024], *token;
    json_t *tok;
    char *after;

    (void)state;
    fh_init(&h, FH_SCRIPT(s_agenda));
    assert_int_equal(get(&h, "/agenda", Q), 200);
    assert_non_null(json_string_value(json_object_get(h.body,
                                                      "next_cursor")));
    token = strdup(json_string_value(json_object_get(h.body,
                                                     "next_cursor")));
    tok = flow_b64_object_decode(token, FLOW_CURSOR_MAX);
    assert_non_null(tok);
    after = json_dumps(json_object_get(tok, "after"), JSON_COMPACT);
    /* own calendar: e1 (e3 is past the cut); invitations on events_am:
     * e1, shown from the own calendar; on events_nz: e5, its last */
    assert_string_equal(after, "[[1796119200000,\"alice\",\"e1\"],"
                               "[1796119200000,\"alice\",\"e1\"],"
                               "[1796119200500,\"zed\",\"e5\"]]");
    free(after);
    /* the cursor names the events shards its walks are on: made on
     * others (the topology changed), it is refused, not resumed at
     * another shard's place; made before there were such tags, taken */
    {
        json_int_t tag = json_integer_value(json_object_get(tok, "shards"));
        char *forged;

        assert_true(tag > 0);
        json_object_set_new(tok, "shards", json_integer(tag ^ 1));
        forged = flow_token_encode(tok);
        snprintf(q, sizeof q, "cursor=%s", forged);
        free(forged);
        assert_int_equal(get(&h, "/agenda", q), 400);
        assert_string_equal(fh_code(&h), "invalid_cursor");
        json_object_del(tok, "shards");
        forged = flow_token_encode(tok);
        snprintf(q, sizeof q, "cursor=%s", forged);
        free(forged);
        assert_int_equal(get(&h, "/agenda", q), 200);
    }
    json_decref(tok);

    snprintf(q, sizeof q, "cursor=%s", token);
    assert_int_equal(get(&h, "/agenda", q), 200);
    assert_string_equal(fh_arg(&h, 1, "from"), "2026-12-01T00:00:00Z");
    assert_string_equal(fh_arg(&h, 1, "to"), "2026-12-31T00:00:00Z");
    assert_string_equal(after_of(&h, 1), "{\"calendar\":\"alice\","
                                         "\"id\":\"e1\",\"start\":"
                                         "1796119200000}");
    assert_string_equal(after_of(&h, 3), "{\"calendar\":\"zed\","
                                         "\"id\":\"e5\",\"start\":"
                                         "1796119200500}");
    /* the first page asks no walk to resume */
    assert_int_equal(get(&h, "/agenda", Q), 200);
    assert_string_equal(after_of(&h, 1), "");
    /* the same window given again is fine, another one is not */
    snprintf(q, sizeof q, Q "&cursor=%s", token);
    assert_int_equal(get(&h, "/agenda", q), 200);
    snprintf(q, sizeof q, "from=2026-11-01T00:00:00Z&cursor=%s", token);
    assert_int_equal(get(&h, "/agenda", q), 400);
    assert_string_equal(fh_code(&h), "invalid_cursor");
    /* /invitations has a walk fewer: not its cursor */
    snprintf(q, sizeof q, "cursor=%s", token);
    assert_int_equal(get(&h, "/invitations", q), 400);
    assert_string_equal(fh_code(&h), "invalid_cursor");
    assert_int_equal(get(&h, "/agenda", "cursor=bm90IGpzb24"), 400);
    assert_string_equal(fh_code(&h), "invalid_cursor");
    free(token);
    /* a cursor past other values' 4 KiB (one of ~30 events shards and
     * more) reaches the cursor's own checks, not a bad_query */
    {
        char *big = malloc(6000 + sizeof "cursor=");

        assert_non_null(big);
        strcpy(big, "cursor=");
        memset(big + 7, 'A', 6000);
        big[7 + 6000] = '\0';
        assert_int_equal(get(&h, "/agenda", big), 400);
        assert_string_equal(fh_code(&h), "invalid_cursor");
        free(big);
    }

    /* /invitations' cursor holds its filter too */
    assert_int_equal(get(&h, "/invitations", "status=needs_action&" Q), 200);
    token = strdup(json_string_value(json_object_get(h.body,
                                                     "next_cursor")));
    snprintf(q, sizeof q, "status=needs_action&cursor=%s", token);
    assert_int_equal(get(&h, "/invitations", q), 200);
    assert_string_equal(fh_arg(&h, 1, "response"), "needs_action");
    snprintf(q, sizeof q, "status=accepted&cursor=%s", token);
    assert_int_equal(get(&h, "/invitations", q), 400);
    assert_string_equal(fh_code(&h), "invalid_cursor");
    snprintf(q, sizeof q, "cursor=%s", token);
    assert_int_equal(get(&h, "/invitations", q), 400);
    free(token);
    fh_done(&h);
}

static void test_invitations_default_window(void **state)
{
    struct fh h;

    (void)state;
    fh_init(&h, FH_SCRIPT(s_agenda));
    assert_int_equal(get(&h, "/invitations", "status=needs_action"), 200);
    assert_int_equal(h.n_calls, 3);
    /* FH_NOW is 2026-11-18T11:06:40Z: one day back, 365 ahead */
    assert_string_equal(fh_arg(&h, 1, "response"), "needs_action");
    assert_string_equal(fh_arg(&h, 1, "user"), "alice");
    assert_non_null(fh_arg(&h, 1, "from"));
    assert_true(strncmp(fh_arg(&h, 1, "from"), "2026-11-17", 10) == 0);
    assert_true(strncmp(fh_arg(&h, 1, "to"), "2027-11-18", 10) == 0);
    assert_int_equal(json_array_size(json_object_get(h.body,
                                                     "invitations")), 4);
    fh_done(&h);
}

static void test_freebusy_merges_per_user(void **state)
{
    struct fh h;
    json_t *alice, *bob;

    (void)state;
    fh_init(&h, FH_SCRIPT(s_agenda));
    assert_int_equal(get(&h, "/freebusy", "users=alice,Bob,alice&" Q), 200);
    /* one call per shard for both users (deduplicated, folded) */
    assert_int_equal(h.n_calls, 3);
    for (size_t i = 1; i < 3; i++) {
        json_t *users = json_object_get(
            json_object_get(h.calls[i].req, "args"), "users");
        assert_int_equal(json_array_size(users), 2);
        assert_string_equal(json_string_value(json_array_get(users, 0)),
                            "alice");
        assert_string_equal(json_string_value(json_array_get(users, 1)),
                            "bob");
    }
    alice = json_object_get(json_object_get(h.body, "users"), "alice");
    bob = json_object_get(json_object_get(h.body, "users"), "bob");
    assert_int_equal(json_array_size(bob), 1);
    /* 9:00-10:00 + 9:30-11:00 + 11:00-11:30 touch: one stretch */
    assert_int_equal(json_array_size(alice), 2);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(alice, 0), "start")),
                        "2026-12-01T09:00:00Z");
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(alice, 0), "end")),
                        "2026-12-01T11:30:00Z");
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(alice, 1), "start")),
                        "2026-12-02T09:00:00Z");
    fh_done(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fanout_table),
        cmocka_unit_test(test_agenda_merge_order_and_dedupe),
        cmocka_unit_test(test_an_unencoded_plus_is_a_plus),
        cmocka_unit_test(test_agenda_pages_with_a_cursor),
        cmocka_unit_test(test_invitations_default_window),
        cmocka_unit_test(test_freebusy_merges_per_user),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

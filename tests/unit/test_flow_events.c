/*
 * test_flow_events.c — calendars and events through the flows: routing
 * to the calendar's shard, group calendars (role lookup), ETag/If-Match,
 * notifications, and the mapping of shard errors.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <cmocka.h>

#include "agenda_tz.h"
#include "flow_harness.h"

#define EID "7c0a47d82924506125b8c247cb4ce483"
#define GID "52af714bf64d0525"
#define EV_ALICE                                                           \
    "{\"event\":{\"calendar\":\"alice\",\"id\":\"" EID "\",\"title\":"     \
    "\"Standup\",\"start\":\"2026-12-01T09:00:00Z\",\"end\":"              \
    "\"2026-12-01T09:30:00Z\",\"participants\":{\"bob\":\"needs_action\"," \
    "\"carol\":\"accepted\"},\"version\":3},\"sync_token\":7}"
#define EV_UPDATED                                                         \
    "{\"event\":{\"calendar\":\"alice\",\"id\":\"" EID "\",\"title\":"     \
    "\"Standup\",\"participants\":{\"bob\":\"needs_action\","              \
    "\"dave\":\"needs_action\"},\"version\":4},\"sync_token\":8}"
#define EV_BODY                                                            \
    "{\"title\":\"Standup\",\"start\":\"2026-12-01T09:00:00Z\",\"end\":"   \
    "\"2026-12-01T09:30:00Z\",\"time_zone\":\"Europe/Madrid\","            \
    "\"participants\":[\"bob\",\"carol\"]}"
#define GROUP(role)                                                        \
    "{\"group\":{\"id\":\"" GID "\",\"version\":1,\"members\":["           \
    "{\"user\":\"alice\",\"role\":\"" role "\"},"                          \
    "{\"user\":\"zed\",\"role\":\"leader\"}]}}"
#define ERR(code) "{\"error\":{\"code\":\"" code "\",\"message\":\"m\"}}"

#define EVS "/calendars/alice/events"
#define ONE "/calendars/alice/events/" EID
#define GEVS "/calendars/g:" GID "/events"

static const struct fh_row s_ok[] = {
    FH_AUTH_ALICE,
    {"event.list", "events_am", 200,
     "{\"calendar\":\"alice\",\"events\":[],\"next_cursor\":null}"},
    {"event.create", "events_am", 201, EV_ALICE},
    {"event.get", "events_am", 200, EV_ALICE},
    {"event.get", "events_nz", 200, EV_ALICE},
    {"event.update", "events_am", 200, EV_UPDATED},
    {"event.delete", "events_am", 200,
     "{\"calendar\":\"alice\",\"id\":\"" EID "\",\"deleted\":true,"
     "\"version\":3,\"sync_token\":9}"},
    {"event.rsvp", "events_am", 200, EV_ALICE},
    {"group.get", "groups", 200, GROUP("member")},
    {"user.missing", "users", 200, "{\"missing\":[]}"},
};

static const struct fh_row s_err[] = {
    FH_AUTH_ALICE,
    {"event.get", NULL, 404, ERR("not_found")},
    {"event.update", NULL, 412, ERR("version_mismatch")},
    {"event.create", NULL, 409,
     "{\"error\":{\"code\":\"double_booked\",\"message\":\"m\","
     "\"conflicts\":[{\"id\":\"x\"}]}}"},
    {"event.list", NULL, 421, ERR("wrong_shard")},
    {"event.rsvp", NULL, 0, NULL},
    {"group.get", NULL, 404, ERR("not_found")},
    {"user.missing", NULL, 200, "{\"missing\":[]}"},
};

static const struct fh_case event_cases[] = {
    {"list", "GET", EVS, "from=2026-12-01T00:00:00Z&to=2026-12-31T00:00:00Z",
     FH_ALICE, NULL, NULL, NULL, FH_SCRIPT(s_ok), 200, NULL, 2,
     "event.list"},
    {"list no window", "GET", EVS, NULL, FH_ALICE, NULL, NULL, NULL,
     FH_SCRIPT(s_ok), 400, "missing_parameter", 1, NULL},
    {"list bad limit", "GET", EVS, "from=a&to=b&limit=1x", FH_ALICE, NULL,
     NULL, NULL, FH_SCRIPT(s_ok), 400, "invalid_parameter", 1, NULL},
    {"list wrong_shard is ours", "GET", EVS, "from=a&to=b", FH_ALICE, NULL,
     NULL, NULL, FH_SCRIPT(s_err), 500, "internal", 2, NULL},
    {"list bad calendar", "GET", "/calendars/a%20b/events", "from=a&to=b",
     FH_ALICE, NULL, NULL, NULL, FH_SCRIPT(s_ok), 400, "invalid_calendar",
     1, NULL},
    {"list bad group calendar", "GET", "/calendars/g:XYZ/events",
     "from=a&to=b", FH_ALICE, NULL, NULL, NULL, FH_SCRIPT(s_ok), 400,
     "invalid_calendar", 1, NULL},
    {"create", "POST", EVS, NULL, FH_ALICE, NULL, FH_JSON, EV_BODY,
     FH_SCRIPT(s_ok), 201, NULL, 3, "event.create"},
    {"create title with an override", "POST", EVS, NULL, FH_ALICE, NULL,
     FH_JSON, "{\"title\":\"a\u202eb\"}", FH_SCRIPT(s_ok), 400,
     "invalid_text", 0, NULL},
    {"create location with an isolate", "POST", EVS, NULL, FH_ALICE, NULL,
     FH_JSON, "{\"title\":\"x\",\"location\":\"\u2067r\"}",
     FH_SCRIPT(s_ok), 400, "invalid_text", 0, NULL},
    {"create unknown field", "POST", EVS, NULL, FH_ALICE, NULL, FH_JSON,
     "{\"title\":\"x\",\"group\":\"" GID "\"}", FH_SCRIPT(s_ok), 400,
     "unknown_field", 0, NULL},
    {"create double booked", "POST", EVS, NULL, FH_ALICE, NULL, FH_JSON,
     EV_BODY, FH_SCRIPT(s_err), 409, "double_booked", 3, NULL},
    {"get", "GET", ONE, NULL, FH_ALICE, NULL, NULL, NULL, FH_SCRIPT(s_ok),
     200, NULL, 2, "event.get"},
    {"get missing", "GET", ONE, NULL, FH_ALICE, NULL, NULL, NULL,
     FH_SCRIPT(s_err), 404, "not_found", 2, NULL},
    {"get bad id", "GET", EVS "/nothex", NULL, FH_ALICE, NULL, NULL, NULL,
     FH_SCRIPT(s_ok), 404, "not_found", 1, NULL},
    {"patch no if-match", "PATCH", ONE, NULL, FH_ALICE, NULL, FH_JSON,
     "{\"title\":\"x\"}", FH_SCRIPT(s_ok), 428, "precondition_required", 1,
     NULL},
    {"patch weak etag", "PATCH", ONE, NULL, FH_ALICE, "W/\"3\"", FH_JSON,
     "{\"title\":\"x\"}", FH_SCRIPT(s_ok), 400, "invalid_if_match", 1,
     NULL},
    {"patch star", "PATCH", ONE, NULL, FH_ALICE, "*", FH_JSON,
     "{\"title\":\"x\"}", FH_SCRIPT(s_ok), 400, "invalid_if_match", 1, NULL},
    {"patch", "PATCH", ONE, NULL, FH_ALICE, "\"3\"", FH_JSON,
     "{\"title\":\"x\"}", FH_SCRIPT(s_ok), 200, NULL, 2, "event.update"},
    {"patch stale version", "PATCH", ONE, NULL, FH_ALICE, "\"2\"", FH_JSON,
     "{\"title\":\"x\"}", FH_SCRIPT(s_err), 412, "version_mismatch", 2,
     NULL},
    {"put missing title", "PUT", ONE, NULL, FH_ALICE, "\"3\"", FH_JSON,
     "{\"start\":\"2026-12-01T09:00:00Z\"}", FH_SCRIPT(s_ok), 400,
     "missing_field", 1, NULL},
    {"delete unconditional", "DELETE", ONE, NULL, FH_ALICE, NULL, NULL,
     NULL, FH_SCRIPT(s_ok), 200, NULL, 3, "event.delete"},
    {"delete missing", "DELETE", ONE, NULL, FH_ALICE, "\"3\"", NULL, NULL,
     FH_SCRIPT(s_err), 404, "not_found", 2, "event.get"},
    {"rsvp", "POST", ONE "/rsvp", NULL, FH_ALICE, NULL, FH_JSON,
     "{\"response\":\"accepted\"}", FH_SCRIPT(s_ok), 200, NULL, 2,
     "event.rsvp"},
    {"rsvp unknown field", "POST", ONE "/rsvp", NULL, FH_ALICE, NULL,
     FH_JSON, "{\"response\":\"accepted\",\"user\":\"bob\"}",
     FH_SCRIPT(s_ok), 400, "unknown_field", 0, NULL},
    {"rsvp shard unreachable", "POST", ONE "/rsvp", NULL, FH_ALICE, NULL,
     FH_JSON, "{\"response\":\"accepted\"}", FH_SCRIPT(s_err), 503,
     "unavailable", 2, NULL},
    {"group calendar list", "GET", GEVS, "from=a&to=b", FH_ALICE, NULL,
     NULL, NULL, FH_SCRIPT(s_ok), 200, NULL, 3, "event.list"},
    {"group calendar not a member", "GET", GEVS, "from=a&to=b", FH_ALICE,
     NULL, NULL, NULL, FH_SCRIPT(s_err), 404, "not_found", 2, "group.get"},
};

static void test_event_table(void **state)
{
    (void)state;
    fh_cases_run(event_cases, sizeof event_cases / sizeof event_cases[0]);
}

/* With the client's Idempotency-Key (NULL: none). */
static int req_keyed(struct fh *h, const char *method, const char *path,
                     const char *if_match, const char *body, const char *key)
{
    struct agenda_flow_request r = {.method = method, .path = path,
                                    .if_match = if_match,
                                    .idempotency_key = key};

    r.authorization = fh_bearer(h, "alice", 1);
    if (body != NULL) {
        r.content_type = FH_JSON;
        r.body = (const uint8_t *)body;
        r.body_len = strlen(body);
    }
    return fh_run(h, &r);
}

static int req(struct fh *h, const char *method, const char *path,
               const char *if_match, const char *body)
{
    return req_keyed(h, method, path, if_match, body, NULL);
}

/* A page of events goes to the client byte for byte as the shard wrote it
 * (never parsed at the edge); an answer that is not an object is still
 * refused. */
static const struct fh_row s_list_odd[] = {
    FH_AUTH_ALICE,
    {"event.list", "events_am", 200,
     "{\"calendar\": \"alice\", \"events\": [ ], \"z\":1, "
     "\"next_cursor\": null}"},
};

static const struct fh_row s_list_garbage[] = {
    FH_AUTH_ALICE,
    {"event.list", "events_am", 200, "[\"not an object\"]"},
};

static int list_december(struct fh *h)
{
    struct agenda_flow_request r = {
        .method = "GET", .path = EVS,
        .query = "from=2026-12-01T00:00:00Z&to=2026-12-31T00:00:00Z"};

    r.authorization = fh_bearer(h, "alice", 1);
    return fh_run(h, &r);
}

static void test_list_passes_the_page_through(void **state)
{
    struct fh h;

    (void)state;
    fh_init(&h, FH_SCRIPT(s_list_odd));
    assert_int_equal(list_december(&h),
                     200);
    assert_string_equal(h.raw, "{\"calendar\": \"alice\", \"events\": "
                               "[ ], \"z\":1, \"next_cursor\": null}");
    fh_done(&h);

    fh_init(&h, FH_SCRIPT(s_list_garbage));
    assert_int_equal(list_december(&h),
                     500);
    fh_done(&h);
}

static void test_create_headers_and_notifications(void **state)
{
    struct fh h;

    (void)state;
    fh_init(&h, FH_SCRIPT(s_ok));
    assert_int_equal(req(&h, "POST", EVS, NULL, EV_BODY), 201);
    assert_string_equal(fh_op(&h, 1), "user.missing");
    assert_string_equal(h.calls[2].shard, "events_am");
    assert_true(h.calls[2].command);
    assert_string_equal(fh_arg(&h, 2, "calendar"), "alice");
    assert_string_equal(fh_arg(&h, 2, "title"), "Standup");
    assert_string_equal(fh_header(&h, "Location"),
                        "/api/v1/calendars/alice/events/" EID);
    assert_string_equal(fh_header(&h, "ETag"), "\"3\"");
    assert_true(fh_notified(&h, "user/alice", "event.created"));
    assert_true(fh_notified(&h, "user/bob", "invitation.created"));
    assert_true(fh_notified(&h, "user/carol", "invitation.created"));
    assert_non_null(strstr(h.notes[0][1], "\"sync_token\":7"));
    assert_non_null(strstr(h.notes[0][1], "\"actor\":\"alice\""));
    assert_null(json_object_get(h.body, "sync_token"));
    fh_done(&h);
}

static void test_get_etag_and_case_folded_calendar(void **state)
{
    struct fh h;

    (void)state;
    fh_init(&h, FH_SCRIPT(s_ok));
    assert_int_equal(req(&h, "GET", "/calendars/ALICE/events/" EID, NULL,
                         NULL), 200);
    assert_string_equal(fh_arg(&h, 1, "calendar"), "alice");
    assert_string_equal(fh_header(&h, "ETag"), "\"3\"");
    fh_done(&h);
}

static void test_if_match_becomes_expected_version(void **state)
{
    struct fh h;
    json_t *args;

    (void)state;
    fh_init(&h, FH_SCRIPT(s_ok));
    assert_int_equal(req(&h, "PATCH", ONE, "\"3\"", "{\"title\":\"x\"}"),
                     200);
    args = json_object_get(h.calls[1].req, "args");
    assert_int_equal(json_integer_value(json_object_get(args,
                                                        "expected_version")),
                     3);
    assert_null(json_object_get(args, "description")); /* PATCH: as is */
    assert_string_equal(fh_header(&h, "ETag"), "\"4\"");
    /* PUT: omitted fields get their defaults */
    assert_int_equal(req(&h, "PUT", ONE, "\"3\"",
                         "{\"title\":\"x\",\"start\":\"2026-12-01T09:00:00Z\","
                         "\"end\":\"2026-12-01T10:00:00Z\",\"time_zone\":"
                         "\"UTC\"}"), 200);
    /* the participants reset: read first, then update */
    assert_string_equal(fh_op(&h, 1), "event.get");
    args = json_object_get(h.calls[2].req, "args");
    assert_string_equal(json_string_value(json_object_get(args,
                                                          "description")),
                        "");
    assert_int_equal(json_array_size(json_object_get(args, "participants")),
                     0);
    /* the read shows another version: 412 at once, nothing proposed,
     * also for a version still to come (others' writes could reach it
     * before this one, which was worked out from the read) */
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(req(&h, "PUT", ONE, i == 0 ? "\"2\"" : "\"9\"",
                             "{\"title\":\"x\",\"start\":"
                             "\"2026-12-01T09:00:00Z\",\"end\":"
                             "\"2026-12-01T10:00:00Z\",\"time_zone\":"
                             "\"UTC\"}"), 412);
        assert_string_equal(fh_op(&h, h.n_calls - 1), "event.get");
        assert_string_equal(fh_code(&h), "version_mismatch");
    }
    /* with the client's Idempotency-Key an older version may be the
     * retry of a write that made the one read: the shard knows (here it
     * answers); one still to come is refused at once all the same */
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(req_keyed(&h, "PUT", ONE,
                                   i == 0 ? "\"2\"" : "\"9\"",
                                   "{\"title\":\"x\",\"start\":"
                                   "\"2026-12-01T09:00:00Z\",\"end\":"
                                   "\"2026-12-01T10:00:00Z\",\"time_zone\":"
                                   "\"UTC\"}", "retry-1"),
                         i == 0 ? 200 : 412);
        assert_string_equal(fh_op(&h, h.n_calls - 1),
                            i == 0 ? "event.update" : "event.get");
        if (i > 0)
            continue;
        /* nothing of the read (v3: bob, carol) is taken for what the
         * answer (v4: bob, dave) replaced: no account check, and no
         * invitation created or removed on its word, only event.updated
         * to whoever the answer holds */
        for (size_t k = 0; k < h.n_calls; k++)
            assert_string_not_equal(fh_op(&h, k), "user.missing");
        assert_true(fh_notified(&h, "user/dave", "event.updated"));
        assert_true(fh_notified(&h, "user/bob", "event.updated"));
        assert_false(fh_notified(&h, "user/dave", "invitation.created"));
        assert_false(fh_notified(&h, "user/carol", "invitation.removed"));
    }
    /* DELETE with If-Match */
    assert_int_equal(req(&h, "DELETE", ONE, "\"3\"", NULL), 200);
    args = json_object_get(h.calls[2].req, "args");
    assert_int_equal(json_integer_value(json_object_get(args,
                                                        "expected_version")),
                     3);
    assert_true(fh_notified(&h, "user/bob", "event.deleted"));
    assert_true(fh_notified(&h, "user/carol", "event.deleted"));
    assert_true(fh_notified(&h, "user/alice", "event.deleted"));
    fh_done(&h);
}

/* The usernames call i asked the users shard about, as compact JSON. */
static const char *usernames_asked(const struct fh *h, size_t i)
{
    static char out[1024];
    char *text = json_dumps(json_object_get(json_object_get(h->calls[i].req,
                                                            "args"),
                                            "usernames"),
                            JSON_COMPACT);

    assert_non_null(text);
    snprintf(out, sizeof out, "%s", text);
    free(text);
    return out;
}

/* Someone invited who has no account: 422, and nothing is written. */
static void test_unknown_invitee_is_refused(void **state)
{
    static const struct fh_row s_ghost[] = {
        FH_AUTH_ALICE,
        {"user.missing", "users", 200, "{\"missing\":[\"ghost\"]}"},
        {"event.get", "events_am", 200, EV_ALICE},
        {"event.create", "events_am", 201, EV_ALICE},
        {"event.update", "events_am", 200, EV_UPDATED},
    };
    struct fh h;

    (void)state;
    fh_init(&h, FH_SCRIPT(s_ghost));
    /* folded, each once; names that are not usernames are the events
     * shard's to refuse */
    assert_int_equal(req(&h, "POST", EVS, NULL,
                         "{\"title\":\"x\",\"start\":\"2026-12-01T09:00:00Z\","
                         "\"end\":\"2026-12-01T10:00:00Z\",\"time_zone\":"
                         "\"UTC\",\"participants\":"
                         "[\"Ghost\",\"bob\",\"ghost\","
                         "\"a b\",7]}"),
                     422);
    assert_string_equal(fh_code(&h), "unknown_participant");
    assert_non_null(strstr(json_string_value(json_object_get(
                               json_object_get(h.body, "error"), "message")),
                           "'ghost'"));
    assert_int_equal(h.n_calls, 2);
    assert_string_equal(usernames_asked(&h, 1), "[\"ghost\",\"bob\"]");
    /* a PATCH adding someone without an account: read, ask, refuse */
    assert_int_equal(req(&h, "PATCH", ONE, "\"3\"",
                         "{\"participants\":[\"bob\",\"ghost\"]}"), 422);
    assert_string_equal(fh_code(&h), "unknown_participant");
    assert_int_equal(h.n_calls, 3);
    assert_string_equal(fh_op(&h, 1), "event.get");
    assert_string_equal(usernames_asked(&h, 2), "[\"ghost\"]");
    /* no one added: nobody to ask about, whatever the users shard says */
    assert_int_equal(req(&h, "PATCH", ONE, "\"3\"",
                         "{\"participants\":[\"carol\"]}"), 200);
    assert_string_equal(fh_op(&h, 2), "event.update");
    assert_int_equal(req(&h, "POST", EVS, NULL,
                         "{\"title\":\"x\",\"start\":\"2026-12-01T09:00:00Z\","
                         "\"end\":\"2026-12-01T10:00:00Z\",\"time_zone\":"
                         "\"UTC\",\"participants\":[]}"),
                     201);
    assert_string_equal(fh_op(&h, 1), "event.create");
    fh_done(&h);
}

/* An answer reaches the calendar's channel and every participant's own:
 * they all see the answers in the event. */
static void test_rsvp_notifies_every_participant(void **state)
{
    struct fh h;

    (void)state;
    fh_init(&h, FH_SCRIPT(s_ok));
    assert_int_equal(req(&h, "POST", ONE "/rsvp", NULL,
                         "{\"response\":\"accepted\"}"), 200);
    assert_true(fh_notified(&h, "user/alice", "invitation.responded"));
    assert_true(fh_notified(&h, "user/bob", "invitation.responded"));
    assert_true(fh_notified(&h, "user/carol", "invitation.responded"));
    assert_null(json_object_get(h.body, "changed"));
    fh_done(&h);
    /* the same answer again: only the responder hears of it */
    static const struct fh_row s_same[] = {
        FH_AUTH_ALICE,
        {"event.rsvp", "events_am", 200,
         "{\"event\":{\"calendar\":\"alice\",\"id\":\"" EID "\","
         "\"participants\":{\"alice\":\"accepted\",\"carol\":"
         "\"accepted\"},\"version\":3},\"changed\":false,"
         "\"sync_token\":7}"},
    };
    fh_init(&h, FH_SCRIPT(s_same));
    assert_int_equal(req(&h, "POST", ONE "/rsvp", NULL,
                         "{\"response\":\"accepted\"}"), 200);
    assert_true(fh_notified(&h, "user/alice", "invitation.responded"));
    assert_false(fh_notified(&h, "user/carol", "invitation.responded"));
    fh_done(&h);
}

static void test_participant_changes_notify(void **state)
{
    struct fh h;

    (void)state;
    fh_init(&h, FH_SCRIPT(s_ok));
    /* before: bob, carol; after: bob, dave */
    assert_int_equal(req(&h, "PATCH", ONE, "\"3\"",
                         "{\"participants\":[\"bob\",\"dave\"]}"), 200);
    assert_string_equal(fh_op(&h, 1), "event.get");
    assert_false(h.calls[1].stale);
    /* only dave is new: only dave's account is looked for */
    assert_string_equal(fh_op(&h, 2), "user.missing");
    assert_string_equal(h.calls[2].shard, "users");
    assert_string_equal(usernames_asked(&h, 2), "[\"dave\"]");
    assert_string_equal(fh_op(&h, 3), "event.update");
    assert_true(fh_notified(&h, "user/alice", "event.updated"));
    assert_true(fh_notified(&h, "user/bob", "event.updated"));
    assert_true(fh_notified(&h, "user/dave", "invitation.created"));
    assert_true(fh_notified(&h, "user/carol", "invitation.removed"));
    fh_done(&h);
}

/*
 * All-day events: the edge sends the instants their dates begin in their
 * zone (start_at, end_at), from its tz database; a PATCH reads the event
 * first only when the span needs what the event keeps.
 */
#define EV_ALLDAY                                                          \
    "{\"event\":{\"calendar\":\"alice\",\"id\":\"" EID "\","               \
    "\"title\":"                                                          \
    "\"Eve\",\"all_day\":true,\"start\":\"2026-12-24\",\"end\":"         \
    "\"2026-12-25\",\"time_zone\":\"Asia/Tokyo\",\"participants\":{},"     \
    "\"version\":3},\"sync_token\":7}"

static int64_t arg_int(const struct fh *h, size_t i, const char *key)
{
    json_t *v = fh_arg_json(h, i, key);

    assert_true(json_is_integer(v));
    return (int64_t)json_integer_value(v);
}

static void test_all_day_spans(void **state)
{
    static const struct fh_row s_allday[] = {
        FH_AUTH_ALICE,
        {"event.create", "events_am", 201, EV_ALLDAY},
        {"event.get", "events_am", 200, EV_ALLDAY},
        {"event.update", "events_am", 200, EV_ALLDAY},
    };
    /* 2026-12-23T15:00Z and the day after: Tokyo's 24th */
    const int64_t tokyo_24 = 1798038000000LL, day = 86400000LL;
    struct agenda_tz_db *db;
    char err[256];
    struct fh h;

    (void)state;
    assert_int_equal(agenda_tz_db_load("/usr/share/zoneinfo", &db, NULL, err,
                                       sizeof err), 0);
    fh_init(&h, FH_SCRIPT(s_allday));
    h.env.tz = db;

    /* create: from the body */
    assert_int_equal(req(&h, "POST", EVS, NULL,
                         "{\"title\":\"Eve\",\"all_day\":true,\"start\":"
                         "\"2026-12-24\",\"end\":\"2026-12-25\",\"time_zone\":"
                         "\"Asia/Tokyo\"}"), 201);
    assert_string_equal(fh_op(&h, 1), "event.create");
    assert_int_equal(arg_int(&h, 1, "start_at"), tokyo_24);
    assert_int_equal(arg_int(&h, 1, "end_at"), tokyo_24 + day);

    /* a new zone only: read first for the dates it keeps */
    assert_int_equal(req(&h, "PATCH", ONE, "\"3\"",
                         "{\"time_zone\":\"Europe/Madrid\"}"), 200);
    assert_string_equal(fh_op(&h, 1), "event.get");
    assert_string_equal(fh_op(&h, 2), "event.update");
    assert_int_equal(arg_int(&h, 2, "start_at"), tokyo_24 - 15 * 3600000LL +
                                                     23 * 3600000LL);

    /* everything given: no read */
    assert_int_equal(req(&h, "PATCH", ONE, "\"3\"",
                         "{\"all_day\":true,\"start\":\"2026-12-24\",\"end\":"
                         "\"2026-12-26\",\"time_zone\":\"Asia/Tokyo\"}"), 200);
    assert_string_equal(fh_op(&h, 1), "event.update");
    assert_int_equal(arg_int(&h, 1, "end_at"), tokyo_24 + 2 * day);

    /* a timed move, or all_day false: no read, no span */
    assert_int_equal(req(&h, "PATCH", ONE, "\"3\"",
                         "{\"start\":\"2026-12-24T10:00:00Z\",\"end\":"
                         "\"2026-12-24T11:00:00Z\"}"), 200);
    assert_string_equal(fh_op(&h, 1), "event.update");
    assert_null(fh_arg_json(&h, 1, "start_at"));
    assert_int_equal(req(&h, "PATCH", ONE, "\"3\"",
                         "{\"all_day\":false,\"start\":"
                         "\"2026-12-24T10:00:00Z\","
                         "\"end\":\"2026-12-24T11:00:00Z\"}"), 200);
    assert_string_equal(fh_op(&h, 1), "event.update");
    assert_null(fh_arg_json(&h, 1, "start_at"));

    /* a title only: no read, no span (the shard keeps it) */
    assert_int_equal(req(&h, "PATCH", ONE, "\"3\"", "{\"title\":\"x\"}"),
                     200);
    assert_string_equal(fh_op(&h, 1), "event.update");
    assert_null(fh_arg_json(&h, 1, "start_at"));

    /* without a tz database: UTC days, no span */
    h.env.tz = NULL;
    assert_int_equal(req(&h, "PATCH", ONE, "\"3\"",
                         "{\"end\":\"2026-12-27\"}"), 200);
    assert_null(fh_arg_json(&h, h.n_calls - 1, "start_at"));
    fh_done(&h);
    agenda_tz_db_free(db);
}

static void test_group_calendar_role(void **state)
{
    static const struct fh_row s_leader[] = {
        FH_AUTH_ALICE,
        {"group.get", "groups", 200, GROUP("leader")},
        {"user.missing", "users", 200, "{\"missing\":[]}"},
        {"event.create", NULL, 201,
         "{\"event\":{\"calendar\":\"g:" GID "\",\"id\":\"" EID "\","
         "\"version\":1,\"participants\":{}},\"sync_token\":2}"},
    };
    struct fh h;
    const char *shard;

    (void)state;
    fh_init(&h, FH_SCRIPT(s_leader));
    assert_int_equal(req(&h, "POST", GEVS, NULL, EV_BODY), 201);
    assert_int_equal(h.n_calls, 4);
    assert_string_equal(fh_op(&h, 1), "group.get");
    assert_string_equal(fh_arg(&h, 1, "id"), GID);
    assert_string_equal(fh_actor(&h, 1, "user"), "alice");
    assert_false(h.calls[1].stale);
    assert_string_equal(fh_op(&h, 2), "user.missing");
    assert_string_equal(fh_op(&h, 3), "event.create");
    assert_string_equal(fh_actor(&h, 3, "calendar_role"), "leader");
    /* g:5... routes by the calendar id like any other */
    shard = agenda_route_calendar(h.topo, "g:" GID)->name;
    assert_string_equal(h.calls[3].shard, shard);
    assert_true(fh_notified(&h, "group/" GID, "event.created"));
    fh_done(&h);
    /* a plain member */
    fh_init(&h, FH_SCRIPT(s_ok));
    assert_int_equal(req(&h, "GET", GEVS "/" EID, NULL, NULL), 200);
    assert_string_equal(fh_actor(&h, 2, "calendar_role"), "member");
    fh_done(&h);
}

static void test_personal_calendar_has_no_role(void **state)
{
    struct fh h;

    (void)state;
    fh_init(&h, FH_SCRIPT(s_ok));
    assert_int_equal(req(&h, "GET", "/calendars/zed/events/" EID, NULL,
                         NULL), 200);
    assert_int_equal(h.n_calls, 2);
    assert_string_equal(h.calls[1].shard, "events_nz");
    assert_string_equal(fh_actor(&h, 1, "calendar_role"), "none");
    fh_done(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_event_table),
        cmocka_unit_test(test_list_passes_the_page_through),
        cmocka_unit_test(test_create_headers_and_notifications),
        cmocka_unit_test(test_get_etag_and_case_folded_calendar),
        cmocka_unit_test(test_if_match_becomes_expected_version),
        cmocka_unit_test(test_participant_changes_notify),
        cmocka_unit_test(test_unknown_invitee_is_refused),
        cmocka_unit_test(test_rsvp_notifies_every_participant),
        cmocka_unit_test(test_all_day_spans),
        cmocka_unit_test(test_group_calendar_role),
        cmocka_unit_test(test_personal_calendar_has_no_role),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

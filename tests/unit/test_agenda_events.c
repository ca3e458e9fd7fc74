/*
 * test_agenda_events.c — events, invitations, free/busy and their indexes
 * on an events shard, through the state machine exactly as the agent
 * applies commands (agenda_fixture.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agenda_fixture.h"
#include "agenda_test_util.h"
#include "event_index.h"
#include "validate.h"

/* Actors as the edge sends them. */
#define ALICE "{\"user\":\"alice\",\"role\":\"user\"}"
#define BOB "{\"user\":\"bob\",\"role\":\"user\"}"
#define CAROL "{\"user\":\"carol\",\"role\":\"user\"}"
#define DAVE "{\"user\":\"dave\",\"role\":\"user\"}"
#define ADMIN "{\"user\":\"root\",\"role\":\"admin\"}"
#define SYSTEM "{\"role\":\"system\"}"
#define GROUP_ACTOR(user, role)                                               \
    "{\"user\":\"" user "\",\"role\":\"user\",\"calendar_role\":\"" role "\"}"
#define LEADER GROUP_ACTOR("lea", "leader")
#define MEMBER GROUP_ACTOR("mem", "member")
#define OUTSIDER GROUP_ACTOR("out", "none")
/* carol claiming leadership of alice's personal calendar: ignored */
#define CAROL_LEADER                                                          \
    "{\"user\":\"carol\",\"role\":\"user\",\"calendar_role\":\"leader\"}"

#define GCAL "g:0123456789abcdef"
#define DAY (24LL * 3600 * 1000)
#define HOUR (3600LL * 1000)

/* ---- helpers ------------------------------------------------------------- */

/* A well-formed event id for n (static, rotating buffers). */
static const char *eid(unsigned n)
{
    static char buf[8][AGENDA_EVENT_ID_LEN + 1];
    static unsigned next;
    char *b = buf[next++ % 8];
    snprintf(b, AGENDA_EVENT_ID_LEN + 1, "%032x", n);
    return b;
}

/* An RFC 3339 instant (static, rotating buffers). */
static const char *ts(int64_t ms)
{
    static char buf[8][40];
    static unsigned next;
    char *b = buf[next++ % 8];
    assert_true(agenda_time_format(ms, b, 40) > 0);
    return b;
}

/* 2026-12-01T00:00:00Z: the day most tests happen on. */
static const int64_t T0 = 1796083200000LL;

/* Run op as actor with args (printf format); a command or a query as the
 * op table says.  Returns the status. */
__attribute__((format(printf, 4, 5)))
static int run(struct agenda_fx *fx, const char *actor, const char *op,
               const char *fmt, ...)
{
    char args[60000], doc[61000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof(args), fmt, ap);
    va_end(ap);
    snprintf(doc, sizeof(doc), "{\"op\":\"%s\",\"actor\":%s,\"args\":%s}", op,
             actor, args);
    const struct agenda_op *o = agenda_op_find(op);
    assert_non_null(o);
    return o->is_command ? agenda_fx_cmd(fx, doc) : agenda_fx_query(fx, doc);
}

/* Create a timed event in cal as actor; extra is more JSON members
 * (",\"participants\":[...]" etc.) or "". */
static int create(struct agenda_fx *fx, const char *actor, const char *cal,
                  unsigned n, int64_t start, int64_t end, const char *extra)
{
    return run(fx, actor, "event.create",
               "{\"calendar\":\"%s\",\"id\":\"%s\",\"title\":\"event %u\","
               "\"start\":\"%s\",\"end\":\"%s\",\"time_zone\":\"UTC\"%s}",
               cal, eid(n), n, ts(start), ts(end), extra);
}

static json_t *body(struct agenda_fx *fx)
{
    json_t *b = agenda_fx_body(fx);
    assert_non_null(b);
    return b;
}

/* The answer's path a.b (objects only), as an integer / string. */
static json_int_t body_int(struct agenda_fx *fx, const char *a, const char *b)
{
    json_t *j = body(fx);
    json_t *v = json_object_get(j, a);
    if (b != NULL)
        v = json_object_get(v, b);
    assert_true(json_is_integer(v));
    json_int_t r = json_integer_value(v);
    json_decref(j);
    return r;
}

static void expect(struct agenda_fx *fx, int status, int want,
                   const char *code)
{
    if (status != want || strcmp(agenda_fx_error(fx), code) != 0)
        fprintf(stderr, "got %d %.*s; want %d %s\n", status,
                (int)fx->res.body.len, (const char *)fx->res.body.data, want,
                code);
    assert_int_equal(status, want);
    assert_string_equal(agenda_fx_error(fx), code);
}

/* The newest change on target's feed, read as actor, is of type want. */
static void expect_last_change(struct agenda_fx *fx, const char *actor,
                               const char *target, const char *want)
{
    expect(fx, run(fx, actor, "changes.list",
                   "{\"target\":\"%s\",\"since\":0}", target),
           200, "");
    json_t *b = body(fx);
    json_t *changes = json_object_get(b, "changes");
    json_t *last = json_array_get(changes, json_array_size(changes) - 1);
    assert_string_equal(json_string_value(json_object_get(last, "type")),
                        want);
    json_decref(b);
}

/* The indexes agree with the records. */
static void check_indexes(struct agenda_fx *fx)
{
    MDB_txn *txn;
    char why[256] = "";
    assert_int_equal(mdb_txn_begin(fx->env, NULL, MDB_RDONLY, &txn), 0);
    int rc = agenda_events_check_indexes(txn, &fx->sm.db, why, sizeof(why));
    mdb_txn_abort(txn);
    if (rc != 0)
        fprintf(stderr, "indexes: %s\n", why);
    assert_int_equal(rc, 0);
}

/* FNV-1a over everything the event handlers write (records, indexes,
 * metadata and the change feed): equal before and after means a refused
 * command changed nothing. */
static uint64_t state_hash(struct agenda_fx *fx)
{
    const struct agenda_db *d = &fx->sm.db;
    MDB_dbi dbs[] = {d->events, d->ev_by_cal, d->ev_by_part, d->cal_meta,
                     d->feed, d->feed_by_target};
    uint64_t h = 1469598103934665603ull;
    MDB_txn *txn;
    assert_int_equal(mdb_txn_begin(fx->env, NULL, MDB_RDONLY, &txn), 0);
    for (size_t i = 0; i < sizeof(dbs) / sizeof(dbs[0]); i++) {
        MDB_cursor *cur;
        MDB_val k, v;
        assert_int_equal(mdb_cursor_open(txn, dbs[i], &cur), 0);
        while (mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0) {
            const MDB_val *parts[2] = {&k, &v};
            for (int p = 0; p < 2; p++) {
                const uint8_t *b = parts[p]->mv_data;
                for (size_t j = 0; j < parts[p]->mv_size; j++)
                    h = (h ^ b[j]) * 1099511628211ull;
                h = (h ^ 0xff) * 1099511628211ull;
            }
        }
        mdb_cursor_close(cur);
        h = (h ^ 0xfe) * 1099511628211ull;
    }
    mdb_txn_abort(txn);
    return h;
}

/* The ids of the events of the last list answer, in order, appended to
 * out (a JSON array). */
static void collect_ids(struct agenda_fx *fx, json_t *out)
{
    json_t *b = body(fx);
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(b, "events"), i, e)
        json_array_append(out, json_object_get(e, "id"));
    json_decref(b);
}

static bool ids_contain(const json_t *ids, const char *id)
{
    size_t i;
    json_t *e;
    json_array_foreach(ids, i, e)
        if (strcmp(json_string_value(e), id) == 0)
            return true;
    return false;
}

/* List [from, to) of cal as actor, every page; returns the ids. */
static json_t *list_all(struct agenda_fx *fx, const char *actor,
                        const char *op, const char *owner_key,
                        const char *owner, int64_t from, int64_t to,
                        int limit)
{
    json_t *ids = json_array();
    char cursor[1000] = "";
    for (int pages = 0; pages < 10000; pages++) {
        char cur_arg[1100] = "";
        if (cursor[0] != '\0')
            snprintf(cur_arg, sizeof(cur_arg), ",\"cursor\":\"%s\"", cursor);
        int st = run(fx, actor, op,
                     "{\"%s\":\"%s\",\"from\":\"%s\",\"to\":\"%s\","
                     "\"limit\":%d%s}",
                     owner_key, owner, ts(from), ts(to), limit, cur_arg);
        expect(fx, st, 200, "");
        collect_ids(fx, ids);
        json_t *b = body(fx);
        json_t *next = json_object_get(b, "next_cursor");
        assert_true(json_array_size(json_object_get(b, "events")) <=
                    (size_t)limit);
        if (json_is_null(next)) {
            json_decref(b);
            return ids;
        }
        snprintf(cursor, sizeof(cursor), "%s", json_string_value(next));
        json_decref(b);
    }
    fail_msg("paging does not end");
    return ids;
}

/* tmpl with every "@ID" replaced by id, into out. */
static void subst(char *out, size_t len, const char *tmpl, const char *id)
{
    size_t o = 0;
    for (const char *p = tmpl; *p != '\0' && o + 1 < len;) {
        if (strncmp(p, "@ID", 3) == 0) {
            o += (size_t)snprintf(out + o, len - o, "%s", id);
            p += 3;
        } else {
            out[o++] = *p++;
        }
    }
    out[o < len ? o : len - 1] = '\0';
}

static struct agenda_fx *new_shard(void)
{
    return agenda_fx_new(AGENDA_SHARD_EVENTS, "", "");
}

/* ---- create and get ------------------------------------------------------ */

static void test_create_and_get(void **state)
{
    (void)state;
    struct agenda_fx *fx = new_shard();
    int st = run(fx, ALICE, "event.create",
                 "{\"calendar\":\"alice\",\"id\":\"%s\",\"title\":\"Plan\","
                 "\"description\":\"line 1\\nline 2\",\"location\":\"Room "
                 "1\",\"start\":\"2026-12-01T10:00:00+01:00\",\"end\":"
                 "\"2026-12-01T10:30:00Z\",\"time_zone\":\"Europe/Madrid\","
                 "\"participants\":[\"Bob\",\"carol\"]}",
                 eid(1));
    expect(fx, st, 201, "");
    json_t *b = body(fx);
    json_t *ev = json_object_get(b, "event");
    assert_string_equal(json_string_value(json_object_get(ev, "title")),
                        "Plan");
    assert_string_equal(json_string_value(json_object_get(ev, "start")),
                        "2026-12-01T09:00:00Z");
    assert_string_equal(json_string_value(json_object_get(ev, "end")),
                        "2026-12-01T10:30:00Z");
    assert_int_equal(json_integer_value(json_object_get(ev, "version")), 1);
    assert_string_equal(json_string_value(json_object_get(ev, "creator")),
                        "alice");
    assert_string_equal(json_string_value(json_object_get(ev, "visibility")),
                        "default");
    assert_string_equal(
        json_string_value(json_object_get(
            json_object_get(ev, "participants"), "bob")),
        "needs_action");
    assert_int_equal(json_array_size(json_object_get(b, "conflicts")), 0);
    assert_true(json_integer_value(json_object_get(b, "sync_token")) >= 3);
    json_decref(b);

    /* who sees it: owner, participants, admins; nobody else */
    static const struct {
        const char *actor;
        int status;
    } seers[] = {
        {ALICE, 200}, {BOB, 200}, {CAROL, 200}, {ADMIN, 200}, {SYSTEM, 200},
        {DAVE, 404},  {CAROL_LEADER, 200}, {MEMBER, 404},
    };
    for (size_t i = 0; i < sizeof(seers) / sizeof(seers[0]); i++) {
        st = run(fx, seers[i].actor, "event.get",
                 "{\"calendar\":\"alice\",\"id\":\"%s\"}", eid(1));
        expect(fx, st, seers[i].status,
               seers[i].status == 200 ? "" : "not_found");
        if (st == 200) {
            b = body(fx);
            assert_string_equal(json_string_value(json_object_get(
                                    json_object_get(b, "event"), "title")),
                                "Plan");
            json_decref(b);
        }
    }
    /* a missing event and a bad id */
    st = run(fx, ALICE, "event.get", "{\"calendar\":\"alice\",\"id\":\"%s\"}",
             eid(2));
    expect(fx, st, 404, "not_found");
    st = run(fx, ALICE, "event.get",
             "{\"calendar\":\"alice\",\"id\":\"XYZ\"}");
    expect(fx, st, 400, "invalid_id");

    /* the feed told the calendar and each invitee */
    st = run(fx, SYSTEM, "changes.list",
             "{\"target\":\"user:bob\",\"since\":0}");
    expect(fx, st, 200, "");
    b = body(fx);
    json_t *ch = json_array_get(json_object_get(b, "changes"), 0);
    assert_string_equal(json_string_value(json_object_get(ch, "type")),
                        "invitation.created");
    assert_null(json_object_get(json_object_get(ch, "data"), "title"));
    json_decref(b);
    st = run(fx, SYSTEM, "changes.list",
             "{\"target\":\"calendar:alice\",\"since\":0}");
    b = body(fx);
    ch = json_array_get(json_object_get(b, "changes"), 0);
    assert_string_equal(json_string_value(json_object_get(ch, "type")),
                        "event.created");
    json_decref(b);
    check_indexes(fx);
    agenda_fx_free(fx);
}

/* ---- validation ---------------------------------------------------------- */

#define OK_TIMES                                                              \
    "\"start\":\"2026-12-01T09:00:00Z\",\"end\":\"2026-12-01T10:00:00Z\""
#define OK_REST "\"title\":\"t\"," OK_TIMES ",\"time_zone\":\"UTC\""

static const struct {
    const char *args; /* members after calendar and id */
    int status;
    const char *code;
} create_cases[] = {
    {OK_REST, 201, ""},
    {"\"title\":\"t\",\"start\":\"2026-12-01T11:00:00Z\",\"end\":"
     "\"2026-12-01T12:00:00Z\",\"time_zone\":\"UTC\",\"participants\":[],"
     "\"visibility\":\"private\",\"conflict_policy\":\"reject\","
     "\"all_day\":false",
     201, ""},
    /* missing and wrongly typed fields */
    {OK_TIMES ",\"time_zone\":\"UTC\"", 400, "missing_field"},
    {"\"title\":\"t\",\"end\":\"2026-12-01T10:00:00Z\",\"time_zone\":\"UTC\"",
     400, "missing_field"},
    {"\"title\":\"t\"," OK_TIMES, 400, "missing_field"},
    {"\"title\":7," OK_TIMES ",\"time_zone\":\"UTC\"", 400, "invalid_field"},
    {OK_REST ",\"all_day\":\"yes\"", 400, "invalid_field"},
    {OK_REST ",\"participants\":\"bob\"", 400, "invalid_field"},
    {OK_REST ",\"participants\":[7]", 400, "invalid_participant"},
    {"\"title\":\"t\",\"start\":1796110000000,\"end\":\"2026-12-01T10:00:00Z\","
     "\"time_zone\":\"UTC\"",
     400, "invalid_field"},
    {OK_REST ",\"colour\":\"red\"", 400, "unknown_field"},
    {OK_REST ",\"version\":3", 400, "unknown_field"},
    /* times */
    {"\"title\":\"t\",\"start\":\"2026-12-01 09:00\",\"end\":"
     "\"2026-12-01T10:00:00Z\",\"time_zone\":\"UTC\"",
     400, "invalid_time"},
    {"\"title\":\"t\",\"start\":\"2026-12-01T09:00:00\",\"end\":"
     "\"2026-12-01T10:00:00Z\",\"time_zone\":\"UTC\"",
     400, "invalid_time"},
    {"\"title\":\"t\",\"start\":\"2026-02-30T09:00:00Z\",\"end\":"
     "\"2026-12-01T10:00:00Z\",\"time_zone\":\"UTC\"",
     400, "invalid_time"},
    {"\"title\":\"t\",\"start\":\"2026-12-01T10:00:00Z\",\"end\":"
     "\"2026-12-01T10:00:00Z\",\"time_zone\":\"UTC\"",
     422, "end_before_start"},
    {"\"title\":\"t\",\"start\":\"2026-12-01T11:00:00Z\",\"end\":"
     "\"2026-12-01T10:00:00Z\",\"time_zone\":\"UTC\"",
     422, "end_before_start"},
    {"\"title\":\"t\",\"start\":\"2026-12-01T10:00:00Z\",\"end\":"
     "\"2028-12-01T10:00:00Z\",\"time_zone\":\"UTC\"",
     422, "duration_too_long"},
    {"\"title\":\"t\",\"start\":\"2026-12-01T10:00:00Z\",\"end\":"
     "\"2027-12-02T10:00:00Z\",\"time_zone\":\"UTC\"",
     201, ""}, /* 366 days: the limit */
    {"\"title\":\"t\",\"start\":\"2026-12-01T10:00:00Z\",\"end\":"
     "\"2027-12-02T10:00:00.001Z\",\"time_zone\":\"UTC\"",
     422, "duration_too_long"},
    /* all-day */
    {"\"title\":\"t\",\"all_day\":true,\"start\":\"2026-12-01\",\"end\":"
     "\"2026-12-02\",\"time_zone\":\"UTC\"",
     201, ""},
    {"\"title\":\"t\",\"all_day\":true,\"start\":\"2026-12-01\",\"end\":"
     "\"2026-12-01\",\"time_zone\":\"UTC\"",
     422, "end_before_start"},
    {"\"title\":\"t\",\"all_day\":true," OK_TIMES ",\"time_zone\":\"UTC\"",
     400, "invalid_date"},
    {"\"title\":\"t\",\"start\":\"2026-12-01\",\"end\":\"2026-12-02\","
     "\"time_zone\":\"UTC\"",
     400, "invalid_time"},
    /* time zones */
    {"\"title\":\"t\"," OK_TIMES ",\"time_zone\":\"Mars/Olympus\"", 400,
     "invalid_time_zone"},
    {"\"title\":\"t\"," OK_TIMES ",\"time_zone\":\"\"", 400,
     "invalid_time_zone"},
    {"\"title\":\"t\"," OK_TIMES ",\"time_zone\":\"America/Argentina/"
     "Buenos_Aires\"",
     201, ""},
    /* text */
    {"\"title\":\"\"," OK_TIMES ",\"time_zone\":\"UTC\"", 400,
     "invalid_text"},
    {"\"title\":\"   \"," OK_TIMES ",\"time_zone\":\"UTC\"", 400,
     "invalid_text"},
    {"\"title\":\"a\\nb\"," OK_TIMES ",\"time_zone\":\"UTC\"", 400,
     "invalid_text"},
    {"\"title\":\"bell\\u0007\"," OK_TIMES ",\"time_zone\":\"UTC\"", 400,
     "invalid_text"},
    {"\"title\":\"a\\u0000b\"," OK_TIMES ",\"time_zone\":\"UTC\"", 400,
     "bad_json"},
    {"\"title\":\"caf\\u00e9 \\ud83d\\ude00\"," OK_TIMES
     ",\"time_zone\":\"UTC\"",
     201, ""},
    {OK_REST ",\"description\":\"tab\\there\\nnew line\"", 201, ""},
    {OK_REST ",\"location\":\"a\\nb\"", 400, "invalid_text"},
    /* participants */
    {OK_REST ",\"participants\":[\"bob\",\"BOB\"]", 400,
     "duplicate_participant"},
    {OK_REST ",\"participants\":[\"b\"]", 400, "invalid_participant"},
    {OK_REST ",\"participants\":[\"bob smith\"]", 400,
     "invalid_participant"},
    {OK_REST ",\"participants\":[\"alice\"]", 422, "owner_is_participant"},
    {OK_REST ",\"participants\":[\"Alice\"]", 422, "owner_is_participant"},
    /* enumerations and group */
    {OK_REST ",\"visibility\":\"secret\"", 400, "invalid_visibility"},
    {OK_REST ",\"conflict_policy\":\"maybe\"", 400,
     "invalid_conflict_policy"},
    {OK_REST ",\"group\":\"0123456789abcdef\"", 422, "group_mismatch"},
    {OK_REST ",\"group\":\"nothex\"", 400, "invalid_group"},
};

static void test_create_validation(void **state)
{
    (void)state;
    struct agenda_fx *fx = new_shard();
    for (size_t i = 0; i < sizeof(create_cases) / sizeof(create_cases[0]);
         i++) {
        uint64_t before = state_hash(fx);
        int st = run(fx, ALICE, "event.create",
                     "{\"calendar\":\"alice\",\"id\":\"%s\",%s}",
                     eid(100 + (unsigned)i), create_cases[i].args);
        if (st != create_cases[i].status)
            fprintf(stderr, "case %zu: %s\n", i, create_cases[i].args);
        expect(fx, st, create_cases[i].status, create_cases[i].code);
        if (st != 201)
            assert_true(state_hash(fx) == before);
    }
    /* calendar and id themselves */
    static const struct {
        const char *cal;
        const char *id;
        int status;
        const char *code;
    } ids[] = {
        {"alice", "0123", 400, "invalid_id"},
        {"alice", "0000000000000000000000000000000G", 400, "invalid_id"},
        {"alice", "00000000000000000000000000000000a", 400, "invalid_id"},
        /* personal calendars are usernames: case-folded, so "Alice" is
         * alice's calendar */
        {"Alice", "00000000000000000000000000000001", 201, ""},
        {"al ice", "00000000000000000000000000000002", 400,
         "invalid_calendar"},
        {"g:xyz", "00000000000000000000000000000001", 400,
         "invalid_calendar"},
    };
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        int st = run(fx, ALICE, "event.create",
                     "{\"calendar\":\"%s\",\"id\":\"%s\"," OK_REST "}",
                     ids[i].cal, ids[i].id);
        expect(fx, st, ids[i].status, ids[i].code);
    }
    check_indexes(fx);
    agenda_fx_free(fx);
}

/* Text and participant limits, at and just over each limit. */
static void test_create_limits(void **state)
{
    (void)state;
    struct agenda_fx *fx = new_shard();
    static const struct {
        const char *field;
        size_t max;
        const char *unit; /* one character as JSON */
    } texts[] = {
        {"title", AGENDA_TITLE_MAX, "\\u00e9"},
        {"description", AGENDA_DESCRIPTION_MAX, "x"},
        {"location", AGENDA_LOCATION_MAX, "\\u4e2d"},
    };
    unsigned n = 1;
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        for (size_t extra = 0; extra < 2; extra++) {
            size_t count = texts[i].max + extra;
            size_t ul = strlen(texts[i].unit);
            char *s = malloc(count * ul + 1);
            for (size_t j = 0; j < count; j++)
                memcpy(s + j * ul, texts[i].unit, ul);
            s[count * ul] = '\0';
            const char *rest = strcmp(texts[i].field, "title") == 0
                                   ? ""
                                   : ",\"title\":\"t\"";
            int st = run(fx, ALICE, "event.create",
                         "{\"calendar\":\"alice\",\"id\":\"%s\",\"%s\":"
                         "\"%s\"%s," OK_TIMES ",\"time_zone\":\"UTC\"}",
                         eid(n++), texts[i].field, s, rest);
            if (extra == 0)
                expect(fx, st, 201, "");
            else
                expect(fx, st, 413, "too_long");
            free(s);
        }
    }
    /* invalid UTF-8 cannot be sent as JSON text; jansson refuses it, so
     * the state machine answers bad_json */
    int st = agenda_fx_cmd(fx, "{\"op\":\"event.create\",\"actor\":" ALICE
                               ",\"args\":{\"calendar\":\"alice\",\"id\":"
                               "\"00000000000000000000000000000fff\","
                               "\"title\":\"\xc3\x28\"," OK_TIMES
                               ",\"time_zone\":\"UTC\"}}");
    expect(fx, st, 400, "bad_json");

    /* participants: exactly the limit, then one more */
    for (int extra = 0; extra < 2; extra++) {
        char list[AGENDA_PARTICIPANTS_MAX * 12 + 64] = "";
        size_t len = 0;
        for (int j = 0; j < AGENDA_PARTICIPANTS_MAX + extra; j++)
            len += (size_t)snprintf(list + len, sizeof(list) - len,
                                    "%s\"user%03d\"", j ? "," : "", j);
        st = run(fx, ALICE, "event.create",
                 "{\"calendar\":\"alice\",\"id\":\"%s\",\"participants\":"
                 "[%s]," OK_REST "}",
                 eid(n++), list);
        if (extra == 0)
            expect(fx, st, 201, "");
        else
            expect(fx, st, 413, "too_many_participants");
    }
    check_indexes(fx);
    agenda_fx_free(fx);
}

/* ---- authorization ------------------------------------------------------- */

static void test_authorization(void **state)
{
    (void)state;
    struct agenda_fx *fx = new_shard();
    expect(fx, create(fx, ALICE, "alice", 1, T0 + 9 * HOUR, T0 + 10 * HOUR,
                      ",\"participants\":[\"bob\"]"),
           201, "");
    char e1[40];
    snprintf(e1, sizeof(e1), "%s", eid(1));
    const struct {
        const char *actor;
        const char *op;
        const char *args;
        int status;
        const char *code;
    } cases[] = {
        /* strangers: the event does not exist for them */
        {CAROL, "event.get", "{\"calendar\":\"alice\",\"id\":\"@ID\"}", 404,
         "not_found"},
        {CAROL, "event.update",
         "{\"calendar\":\"alice\",\"id\":\"@ID\",\"expected_version\":1,"
         "\"title\":\"mine\"}",
         404, "not_found"},
        {CAROL, "event.delete", "{\"calendar\":\"alice\",\"id\":\"@ID\"}", 404,
         "not_found"},
        {CAROL, "event.rsvp",
         "{\"calendar\":\"alice\",\"id\":\"@ID\",\"response\":\"accepted\"}",
         404, "not_found"},
        {CAROL, "event.list",
         "{\"calendar\":\"alice\",\"from\":\"2026-12-01T00:00:00Z\","
         "\"to\":\"2026-12-02T00:00:00Z\"}",
         403, "forbidden"},
        {CAROL, "event.create",
         "{\"calendar\":\"alice\",\"id\":\"0000000000000000000000000000"
         "0009\"," OK_REST "}",
         403, "forbidden"},
        {CAROL, "event.list_participant",
         "{\"user\":\"bob\",\"from\":\"2026-12-01T00:00:00Z\","
         "\"to\":\"2026-12-02T00:00:00Z\"}",
         403, "forbidden"},
        /* a calendar_role means nothing on a personal calendar */
        {CAROL_LEADER, "event.update",
         "{\"calendar\":\"alice\",\"id\":\"@ID\",\"expected_version\":1,"
         "\"title\":\"mine\"}",
         404, "not_found"},
        {CAROL_LEADER, "event.create",
         "{\"calendar\":\"alice\",\"id\":\"0000000000000000000000000000"
         "0009\"," OK_REST "}",
         403, "forbidden"},
        /* a participant sees it but may only answer */
        {BOB, "event.update",
         "{\"calendar\":\"alice\",\"id\":\"@ID\",\"expected_version\":1,"
         "\"title\":\"mine\"}",
         403, "forbidden"},
        {BOB, "event.delete", "{\"calendar\":\"alice\",\"id\":\"@ID\"}", 403,
         "forbidden"},
        {BOB, "event.list",
         "{\"calendar\":\"alice\",\"from\":\"2026-12-01T00:00:00Z\","
         "\"to\":\"2026-12-02T00:00:00Z\"}",
         403, "forbidden"},
        /* the owner is not a participant of their own event */
        {ALICE, "event.rsvp",
         "{\"calendar\":\"alice\",\"id\":\"@ID\",\"response\":\"accepted\"}",
         403, "forbidden"},
        /* admins read but do not write others' calendars */
        {ADMIN, "event.update",
         "{\"calendar\":\"alice\",\"id\":\"@ID\",\"expected_version\":1,"
         "\"title\":\"mine\"}",
         403, "forbidden"},
        {ADMIN, "event.delete", "{\"calendar\":\"alice\",\"id\":\"@ID\"}", 403,
         "forbidden"},
        {ADMIN, "event.rsvp",
         "{\"calendar\":\"alice\",\"id\":\"@ID\",\"response\":\"accepted\"}",
         403, "forbidden"},
        {ADMIN, "event.create",
         "{\"calendar\":\"alice\",\"id\":\"0000000000000000000000000000"
         "0009\"," OK_REST "}",
         403, "forbidden"},
        {SYSTEM, "event.create",
         "{\"calendar\":\"alice\",\"id\":\"0000000000000000000000000000"
         "0009\"," OK_REST "}",
         403, "forbidden"},
        /* but they may read */
        {ADMIN, "event.list",
         "{\"calendar\":\"alice\",\"from\":\"2026-12-01T00:00:00Z\","
         "\"to\":\"2026-12-02T00:00:00Z\"}",
         200, ""},
        {ADMIN, "event.list_participant",
         "{\"user\":\"bob\",\"from\":\"2026-12-01T00:00:00Z\","
         "\"to\":\"2026-12-02T00:00:00Z\"}",
         200, ""},
        /* anyone authenticated may ask for free/busy */
        {CAROL, "event.freebusy",
         "{\"user\":\"alice\",\"from\":\"2026-12-01T00:00:00Z\","
         "\"to\":\"2026-12-02T00:00:00Z\"}",
         200, ""},
        /* an anonymous actor is refused by the dispatcher */
        {"{\"role\":\"user\"}", "event.get",
         "{\"calendar\":\"alice\",\"id\":\"@ID\"}", 401, "unauthenticated"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t before = state_hash(fx);
        char args[2000];
        subst(args, sizeof(args), cases[i].args, e1);
        int st = run(fx, cases[i].actor, cases[i].op, "%s", args);
        if (st != cases[i].status)
            fprintf(stderr, "case %zu: %s %s\n", i, cases[i].op, args);
        expect(fx, st, cases[i].status, cases[i].code);
        assert_true(state_hash(fx) == before);
    }
    /* the event is as it was */
    expect(fx, run(fx, ALICE, "event.get",
                   "{\"calendar\":\"alice\",\"id\":\"%s\"}", e1),
           200, "");
    assert_int_equal(body_int(fx, "event", "version"), 1);
    check_indexes(fx);
    agenda_fx_free(fx);
}

/* Calendars outside the shard's range are refused with 421. */
static void test_wrong_shard(void **state)
{
    (void)state;
    struct agenda_fx *fx = agenda_fx_new(AGENDA_SHARD_EVENTS, "a", "n");
    expect(fx, create(fx, ALICE, "alice", 1, T0, T0 + HOUR, ""), 201, "");
    expect(fx, create(fx, "{\"user\":\"zed\",\"role\":\"user\"}", "zed", 2,
                      T0, T0 + HOUR, ""),
           421, "wrong_shard");
    expect(fx, run(fx, ADMIN, "event.get",
                   "{\"calendar\":\"nina\",\"id\":\"%s\"}", eid(1)),
           421, "wrong_shard");
    expect(fx, run(fx, ADMIN, "event.list",
                   "{\"calendar\":\"n\",\"from\":\"%s\",\"to\":\"%s\"}",
                   ts(T0), ts(T0 + DAY)),
           400, "invalid_calendar");
    expect(fx, run(fx, ADMIN, "event.list",
                   "{\"calendar\":\"nobody\",\"from\":\"%s\",\"to\":\"%s\"}",
                   ts(T0), ts(T0 + DAY)),
           421, "wrong_shard");
    /* a group calendar is placed by its id like any other: "g:..." is in
     * [a, n), "g:" sorts after "fz" */
    expect(fx, create(fx, LEADER, GCAL, 3, T0, T0 + HOUR, ""), 201, "");
    /* zed may still be invited to alice's event; free/busy of zed here
     * covers those invitations only */
    expect(fx, create(fx, ALICE, "alice", 4, T0 + 2 * HOUR, T0 + 3 * HOUR,
                      ",\"participants\":[\"zed\"]"),
           201, "");
    expect(fx, run(fx, "{\"user\":\"zed\",\"role\":\"user\"}", "event.rsvp",
                   "{\"calendar\":\"alice\",\"id\":\"%s\",\"response\":"
                   "\"accepted\"}",
                   eid(4)),
           200, "");
    expect(fx, run(fx, CAROL, "event.freebusy",
                   "{\"user\":\"zed\",\"from\":\"%s\",\"to\":\"%s\"}", ts(T0),
                   ts(T0 + DAY)),
           200, "");
    json_t *b = body(fx);
    assert_int_equal(json_array_size(json_object_get(b, "busy")), 1);
    json_decref(b);
    check_indexes(fx);
    agenda_fx_free(fx);
}

/* ---- versions, retries, update and delete -------------------------------- */

static void test_versions_and_retry(void **state)
{
    (void)state;
    struct agenda_fx *fx = new_shard();
    char doc[2000];
    snprintf(doc, sizeof(doc),
             "{\"op\":\"event.create\",\"actor\":" ALICE ",\"args\":{"
             "\"calendar\":\"alice\",\"id\":\"%s\"," OK_REST "}}",
             eid(1));
    expect(fx, agenda_fx_cmd_id(fx, "req-1", doc), 201, "");
    assert_false(fx->duplicate);
    char first[4000];
    snprintf(first, sizeof(first), "%.*s", (int)fx->res.body.len,
             (const char *)fx->res.body.data);
    uint64_t before = state_hash(fx);
    /* the retry of the same request answers the same, applies nothing */
    expect(fx, agenda_fx_cmd_id(fx, "req-1", doc), 201, "");
    assert_true(fx->duplicate);
    assert_int_equal(fx->res.body.len, strlen(first));
    assert_memory_equal(fx->res.body.data, first, strlen(first));
    assert_true(state_hash(fx) == before);
    /* a new request with the same event id is a conflict */
    expect(fx, agenda_fx_cmd_id(fx, "req-2", doc), 409, "duplicate_id");
    assert_true(state_hash(fx) == before);

#define UPD                                                                   \
    "{\"calendar\":\"alice\",\"id\":\"%s\",\"expected_version\":%d,"           \
    "\"title\":\"v%d\"}"
    expect(fx, run(fx, ALICE, "event.update", UPD, eid(1), 1, 2), 200, "");
    assert_int_equal(body_int(fx, "event", "version"), 2);
    before = state_hash(fx);
    expect(fx, run(fx, ALICE, "event.update", UPD, eid(1), 1, 3), 412,
           "version_mismatch");
    expect(fx, run(fx, ALICE, "event.update",
                   "{\"calendar\":\"alice\",\"id\":\"%s\",\"title\":\"x\"}",
                   eid(1)),
           400, "missing_field");
    expect(fx, run(fx, ALICE, "event.update",
                   "{\"calendar\":\"alice\",\"id\":\"%s\","
                   "\"expected_version\":\"2\"}",
                   eid(1)),
           400, "invalid_field");
    expect(fx, run(fx, ALICE, "event.update",
                   "{\"calendar\":\"alice\",\"id\":\"%s\","
                   "\"expected_version\":2,\"group\":\"0123456789abcdef\"}",
                   eid(1)),
           400, "unknown_field");
    expect(fx, run(fx, ALICE, "event.update",
                   "{\"calendar\":\"alice\",\"id\":\"%s\","
                   "\"expected_version\":2,\"end\":\"2026-12-01T08:00:00Z\"}",
                   eid(1)),
           422, "end_before_start");
    expect(fx, run(fx, ALICE, "event.update",
                   "{\"calendar\":\"alice\",\"id\":\"%s\","
                   "\"expected_version\":2,\"all_day\":true}",
                   eid(1)),
           400, "missing_field");
    expect(fx, run(fx, ALICE, "event.delete",
                   "{\"calendar\":\"alice\",\"id\":\"%s\","
                   "\"expected_version\":1}",
                   eid(1)),
           412, "version_mismatch");
    assert_true(state_hash(fx) == before);

    /* switching to all-day with both dates */
    expect(fx, run(fx, ALICE, "event.update",
                   "{\"calendar\":\"alice\",\"id\":\"%s\","
                   "\"expected_version\":2,\"all_day\":true,\"start\":"
                   "\"2026-12-01\",\"end\":\"2026-12-03\"}",
                   eid(1)),
           200, "");
    json_t *b = body(fx);
    json_t *ev = json_object_get(b, "event");
    assert_string_equal(json_string_value(json_object_get(ev, "start")),
                        "2026-12-01");
    assert_string_equal(json_string_value(json_object_get(ev, "end")),
                        "2026-12-03");
    assert_string_equal(json_string_value(json_object_get(ev, "title")),
                        "v2");
    assert_true(json_is_true(json_object_get(ev, "all_day")));
    json_decref(b);

    expect(fx, run(fx, ALICE, "event.delete",
                   "{\"calendar\":\"alice\",\"id\":\"%s\","
                   "\"expected_version\":3}",
                   eid(1)),
           200, "");
    expect(fx, run(fx, ALICE, "event.get",
                   "{\"calendar\":\"alice\",\"id\":\"%s\"}", eid(1)),
           404, "not_found");
    expect(fx, run(fx, ALICE, "event.delete",
                   "{\"calendar\":\"alice\",\"id\":\"%s\"}", eid(1)),
           404, "not_found");
    /* the id may be used again once deleted */
    expect(fx, agenda_fx_cmd_id(fx, "req-3", doc), 201, "");
    expect(fx, run(fx, ALICE, "event.delete",
                   "{\"calendar\":\"alice\",\"id\":\"%s\"}", eid(1)),
           200, "");
    check_indexes(fx);
    agenda_fx_free(fx);
}

/* Participants on update: kept ones keep their answer, new ones need
 * action, removed ones are told; indexes follow the new start. */
static void test_update_participants(void **state)
{
    (void)state;
    struct agenda_fx *fx = new_shard();
    expect(fx, create(fx, ALICE, "alice", 1, T0 + 9 * HOUR, T0 + 10 * HOUR,
                      ",\"participants\":[\"bob\",\"carol\"]"),
           201, "");
    expect(fx, run(fx, BOB, "event.rsvp",
                   "{\"calendar\":\"alice\",\"id\":\"%s\",\"response\":"
                   "\"accepted\"}",
                   eid(1)),
           200, "");
    assert_int_equal(body_int(fx, "event", "version"), 2);
    /* carol, invited too, sees bob's answer in the event: her feed says
     * it changed */
    expect_last_change(fx, CAROL, "user:carol", "invitation.responded");
    /* the same answer again changes nothing */
    uint64_t before = state_hash(fx);
    expect(fx, run(fx, BOB, "event.rsvp",
                   "{\"calendar\":\"alice\",\"id\":\"%s\",\"response\":"
                   "\"accepted\"}",
                   eid(1)),
           200, "");
    assert_int_equal(body_int(fx, "event", "version"), 2);
    assert_true(state_hash(fx) == before);
    json_t *same = body(fx);
    assert_true(json_is_false(json_object_get(same, "changed")));
    json_decref(same);
    expect(fx, run(fx, BOB, "event.rsvp",
                   "{\"calendar\":\"alice\",\"id\":\"%s\",\"response\":"
                   "\"needs_action\"}",
                   eid(1)),
           400, "invalid_response");
    expect(fx, run(fx, BOB, "event.rsvp",
                   "{\"calendar\":\"alice\",\"id\":\"%s\"}", eid(1)),
           400, "missing_field");

    expect(fx, run(fx, ALICE, "event.update",
                   "{\"calendar\":\"alice\",\"id\":\"%s\","
                   "\"expected_version\":2,\"participants\":[\"bob\","
                   "\"dave\"],\"start\":\"%s\",\"end\":\"%s\"}",
                   eid(1), ts(T0 + DAY + 9 * HOUR), ts(T0 + DAY + 10 * HOUR)),
           200, "");
    json_t *b = body(fx);
    json_t *p = json_object_get(json_object_get(b, "event"), "participants");
    assert_int_equal(json_object_size(p), 2);
    assert_string_equal(json_string_value(json_object_get(p, "bob")),
                        "accepted");
    assert_string_equal(json_string_value(json_object_get(p, "dave")),
                        "needs_action");
    json_decref(b);
    check_indexes(fx);

    /* carol lost it: not in her list, not visible, and she was told */
    json_t *ids = list_all(fx, CAROL, "event.list_participant", "user",
                           "carol", T0, T0 + 7 * DAY, 10);
    assert_int_equal(json_array_size(ids), 0);
    json_decref(ids);
    expect(fx, run(fx, CAROL, "event.get",
                   "{\"calendar\":\"alice\",\"id\":\"%s\"}", eid(1)),
           404, "not_found");
    expect_last_change(fx, SYSTEM, "user:carol", "invitation.removed");
    /* dave has a new invitation, at the new time only */
    ids = list_all(fx, DAVE, "event.list_participant", "user", "dave",
                   T0 + DAY, T0 + 2 * DAY, 10);
    assert_int_equal(json_array_size(ids), 1);
    json_decref(ids);
    ids = list_all(fx, ALICE, "event.list", "calendar", "alice", T0,
                   T0 + DAY, 10);
    assert_int_equal(json_array_size(ids), 0);
    json_decref(ids);

    /* response filter */
    static const struct {
        const char *user;
        const char *actor;
        const char *response;
        size_t count;
    } filters[] = {
        {"bob", BOB, "accepted", 1},      {"bob", BOB, "needs_action", 0},
        {"dave", DAVE, "needs_action", 1}, {"dave", DAVE, "declined", 0},
    };
    for (size_t i = 0; i < sizeof(filters) / sizeof(filters[0]); i++) {
        expect(fx, run(fx, filters[i].actor, "event.list_participant",
                       "{\"user\":\"%s\",\"from\":\"%s\",\"to\":\"%s\","
                       "\"response\":\"%s\"}",
                       filters[i].user, ts(T0), ts(T0 + 7 * DAY),
                       filters[i].response),
               200, "");
        b = body(fx);
        json_t *evs = json_object_get(b, "events");
        assert_int_equal(json_array_size(evs), filters[i].count);
        if (filters[i].count > 0)
            assert_string_equal(json_string_value(json_object_get(
                                    json_array_get(evs, 0), "response")),
                                filters[i].response);
        json_decref(b);
    }
    expect(fx, run(fx, BOB, "event.list_participant",
                   "{\"user\":\"bob\",\"from\":\"%s\",\"to\":\"%s\","
                   "\"response\":\"maybe\"}",
                   ts(T0), ts(T0 + DAY)),
           400, "invalid_response");

    /* delete removes every index entry */
    expect(fx, run(fx, ALICE, "event.delete",
                   "{\"calendar\":\"alice\",\"id\":\"%s\"}", eid(1)),
           200, "");
    check_indexes(fx);
    ids = list_all(fx, BOB, "event.list_participant", "user", "bob", T0,
                   T0 + 7 * DAY, 10);
    assert_int_equal(json_array_size(ids), 0);
    json_decref(ids);
    agenda_fx_free(fx);
}

/* ---- double booking ------------------------------------------------------ */

static size_t conflicts_of(struct agenda_fx *fx, const char *who)
{
    json_t *b = body(fx);
    /* a success lists them at the top, a 409 inside the error */
    json_t *list = json_object_get(b, "conflicts");
    if (list == NULL)
        list = json_object_get(json_object_get(b, "error"), "conflicts");
    size_t n = 0, i;
    json_t *c;
    json_array_foreach(list, i, c) {
        assert_null(json_object_get(c, "title"));
        if (who == NULL ||
            strcmp(json_string_value(json_object_get(c, "who")), who) == 0)
            n++;
    }
    json_decref(b);
    return n;
}

static void test_double_booking(void **state)
{
    (void)state;
    struct agenda_fx *fx = new_shard();
    int64_t nine = T0 + 9 * HOUR;
    expect(fx, create(fx, ALICE, "alice", 1, nine, nine + HOUR, ""), 201, "");
    expect(fx, create(fx, BOB, "bob", 2, nine, nine + HOUR, ""), 201, "");
    /* carol's calendar has an event she will not count: she declines an
     * invitation to something overlapping */
    expect(fx, create(fx, DAVE, "dave", 3, nine, nine + HOUR,
                      ",\"participants\":[\"carol\"]"),
           201, "");
    expect(fx, run(fx, CAROL, "event.rsvp",
                   "{\"calendar\":\"dave\",\"id\":\"%s\",\"response\":"
                   "\"declined\"}",
                   eid(3)),
           200, "");

    /* touching is not overlapping */
    expect(fx, create(fx, ALICE, "alice", 10, nine + HOUR, nine + 2 * HOUR,
                      ",\"conflict_policy\":\"reject\""),
           201, "");
    assert_int_equal(conflicts_of(fx, NULL), 0);
    expect(fx, create(fx, ALICE, "alice", 11, nine - HOUR, nine,
                      ",\"conflict_policy\":\"reject\""),
           201, "");

    /* reject: nothing stored, the conflicts say who and when */
    uint64_t before = state_hash(fx);
    expect(fx, create(fx, ALICE, "alice", 20, nine + HOUR / 2,
                      nine + HOUR / 2 + 10 * 60000,
                      ",\"participants\":[\"bob\",\"carol\"],"
                      "\"conflict_policy\":\"reject\""),
           409, "double_booked");
    assert_true(state_hash(fx) == before);
    assert_int_equal(conflicts_of(fx, "alice"), 1);
    assert_int_equal(conflicts_of(fx, "bob"), 1);
    assert_int_equal(conflicts_of(fx, "carol"), 0);
    json_t *b = body(fx);
    json_t *err = json_object_get(b, "error");
    assert_false(json_is_true(json_object_get(err, "conflicts_truncated")));
    json_t *c0 = json_array_get(json_object_get(err, "conflicts"), 0);
    assert_string_equal(json_string_value(json_object_get(c0, "calendar")),
                        "alice");
    assert_string_equal(json_string_value(json_object_get(c0, "id")), eid(1));
    assert_string_equal(json_string_value(json_object_get(c0, "start")),
                        ts(nine));
    /* bob's own event is his: alice learns he is busy then, not which
     * event of whose calendar keeps him (free/busy tells as much) */
    json_t *c1 = json_array_get(json_object_get(err, "conflicts"), 1);
    assert_string_equal(json_string_value(json_object_get(c1, "who")),
                        "bob");
    assert_null(json_object_get(c1, "calendar"));
    assert_null(json_object_get(c1, "id"));
    assert_string_equal(json_string_value(json_object_get(c1, "start")),
                        ts(nine));
    json_decref(b);

    /* allow (the default): stored, conflicts reported */
    expect(fx, create(fx, ALICE, "alice", 20, nine + HOUR / 2,
                      nine + HOUR / 2 + 10 * 60000,
                      ",\"participants\":[\"bob\",\"carol\"]"),
           201, "");
    assert_int_equal(conflicts_of(fx, NULL), 2);

    /* bob is now invited to 20 too: an invitation makes him busy, and the
     * update of 20 does not conflict with itself */
    expect(fx, run(fx, ALICE, "event.update",
                   "{\"calendar\":\"alice\",\"id\":\"%s\","
                   "\"expected_version\":1,\"title\":\"x\"}",
                   eid(20)),
           200, "");
    assert_int_equal(conflicts_of(fx, NULL), 2);
    /* a new event at that time for bob now conflicts twice for him */
    expect(fx, create(fx, DAVE, "dave", 21, nine + HOUR / 2,
                      nine + HOUR / 2 + 60000,
                      ",\"participants\":[\"bob\"]"),
           201, "");
    assert_int_equal(conflicts_of(fx, "bob"), 2);
    assert_int_equal(conflicts_of(fx, "dave"), 1); /* his event 3 */
    /* once bob declines 20, it no longer counts for him */
    expect(fx, run(fx, BOB, "event.rsvp",
                   "{\"calendar\":\"alice\",\"id\":\"%s\",\"response\":"
                   "\"declined\"}",
                   eid(20)),
           200, "");
    expect(fx, create(fx, DAVE, "dave", 22, nine + HOUR / 2,
                      nine + HOUR / 2 + 60000,
                      ",\"participants\":[\"bob\"]"),
           201, "");
    assert_int_equal(conflicts_of(fx, "bob"), 2); /* his own 2, dave's 21 */
    /* moving 20 away clears alice's conflicts; reject now succeeds */
    expect(fx, run(fx, ALICE, "event.update",
                   "{\"calendar\":\"alice\",\"id\":\"%s\","
                   "\"expected_version\":3,\"start\":\"%s\",\"end\":\"%s\","
                   "\"participants\":[],\"conflict_policy\":\"reject\"}",
                   eid(20), ts(T0 + 20 * HOUR), ts(T0 + 21 * HOUR)),
           200, "");
    assert_int_equal(conflicts_of(fx, NULL), 0);
    /* and an update into a busy slot with reject is refused */
    before = state_hash(fx);
    expect(fx, run(fx, ALICE, "event.update",
                   "{\"calendar\":\"alice\",\"id\":\"%s\","
                   "\"expected_version\":4,\"start\":\"%s\",\"end\":\"%s\","
                   "\"conflict_policy\":\"reject\"}",
                   eid(20), ts(nine), ts(nine + 1000)),
           409, "double_booked");
    assert_true(state_hash(fx) == before);

    /* at most AGENDA_CONFLICTS_MAX are reported */
    for (unsigned i = 0; i < AGENDA_CONFLICTS_MAX + 5; i++)
        expect(fx, create(fx, CAROL, "carol", 100 + i, T0 + 2 * DAY,
                          T0 + 2 * DAY + HOUR, ""),
               201, "");
    expect(fx, create(fx, CAROL, "carol", 200, T0 + 2 * DAY,
                      T0 + 2 * DAY + HOUR, ""),
           201, "");
    assert_int_equal(conflicts_of(fx, NULL), AGENDA_CONFLICTS_MAX);
    b = body(fx);
    assert_true(json_is_true(json_object_get(b, "conflicts_truncated")));
    json_decref(b);
    check_indexes(fx);
    agenda_fx_free(fx);
}

/* ---- range queries ------------------------------------------------------- */

static void test_range_boundaries(void **state)
{
    (void)state;
    struct agenda_fx *fx = new_shard();
    int64_t nine = T0 + 9 * HOUR;
    expect(fx, create(fx, ALICE, "alice", 1, nine, nine + HOUR, ""), 201, "");
    expect(fx, create(fx, ALICE, "alice", 2, nine - HOUR, nine + 3 * HOUR,
                      ""),
           201, "");
    expect(fx, create(fx, ALICE, "alice", 3, nine + 2 * HOUR,
                      nine + 2 * HOUR + 1, ""),
           201, "");
    /* a month-long event that started 20 days earlier */
    expect(fx, create(fx, ALICE, "alice", 4, T0 - 20 * DAY, T0 + 10 * DAY,
                      ""),
           201, "");
    /* an event that ended long before */
    expect(fx, create(fx, ALICE, "alice", 5, T0 - 10 * DAY,
                      T0 - 10 * DAY + HOUR, ""),
           201, "");
    static const struct {
        int64_t from, to;  /* offsets from 9:00 */
        const char *want;  /* event numbers in answer order */
    } cases[] = {
        {0, HOUR, "4 2 1"},            /* 4 and 2 span it */
        {HOUR, 2 * HOUR, "4 2"},       /* 1 ended exactly at from */
        {-HOUR, 0, "4 2"},             /* 1 starts exactly at to */
        {2 * HOUR, 2 * HOUR + 1, "4 2 3"},
        {2 * HOUR + 1, 3 * HOUR, "4 2"},
        {3 * HOUR, 4 * HOUR, "4"},
        {-9 * HOUR - 10 * DAY, -9 * HOUR - 10 * DAY + 1, "4 5"},
        {11 * DAY, 12 * DAY, ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *ids = list_all(fx, ALICE, "event.list", "calendar", "alice",
                               nine + cases[i].from, nine + cases[i].to, 2);
        char got[100] = "";
        size_t len = 0, j;
        json_t *e;
        json_array_foreach(ids, j, e) {
            unsigned n = (unsigned)strtoul(json_string_value(e), NULL, 16);
            len += (size_t)snprintf(got + len, sizeof(got) - len, "%s%u",
                                    j ? " " : "", n);
        }
        if (strcmp(got, cases[i].want) != 0)
            fprintf(stderr, "case %zu: got '%s'\n", i, got);
        assert_string_equal(got, cases[i].want);
        json_decref(ids);
    }
    /* the window itself */
    static const struct {
        const char *from, *to;
        int status;
        const char *code;
    } windows[] = {
        {"2026-12-01T00:00:00Z", "2026-12-01T00:00:00Z", 422,
         "invalid_range"},
        {"2026-12-02T00:00:00Z", "2026-12-01T00:00:00Z", 422,
         "invalid_range"},
        {"2026-12-01T00:00:00Z", "2027-12-02T00:00:00Z", 200, ""},
        {"2026-12-01T00:00:00Z", "2027-12-02T00:00:00.001Z", 413,
         "range_too_large"},
        {"2026-12-01", "2026-12-02T00:00:00Z", 400, "invalid_time"},
        {"2026-12-01T00:00:00Z", "tomorrow", 400, "invalid_time"},
    };
    for (size_t i = 0; i < sizeof(windows) / sizeof(windows[0]); i++) {
        expect(fx, run(fx, ALICE, "event.list",
                       "{\"calendar\":\"alice\",\"from\":\"%s\",\"to\":"
                       "\"%s\"}",
                       windows[i].from, windows[i].to),
               windows[i].status, windows[i].code);
        expect(fx, run(fx, ALICE, "event.freebusy",
                       "{\"user\":\"alice\",\"from\":\"%s\",\"to\":\"%s\"}",
                       windows[i].from, windows[i].to),
               windows[i].status, windows[i].code);
    }
    static const char *const bad_paging[] = {
        "\"limit\":0", "\"limit\":501", "\"limit\":\"5\"", "\"cursor\":\"zz\"",
        "\"cursor\":\"abc\"", "\"cursor\":\"\"", "\"cursor\":5",
        "\"page\":1",
    };
    static const char *const bad_codes[] = {
        "invalid_limit",  "invalid_limit",  "invalid_field", "invalid_cursor",
        "invalid_cursor", "invalid_cursor", "invalid_field", "unknown_field",
    };
    for (size_t i = 0; i < sizeof(bad_paging) / sizeof(bad_paging[0]); i++) {
        int st = run(fx, ALICE, "event.list",
                     "{\"calendar\":\"alice\",\"from\":\"%s\",\"to\":\"%s\","
                     "%s}",
                     ts(T0), ts(T0 + DAY), bad_paging[i]);
        expect(fx, st, 400, bad_codes[i]);
    }
    /* a forged cursor only moves the start: it never reaches another
     * calendar's events */
    expect(fx, create(fx, BOB, "bob", 9, nine, nine + HOUR, ""), 201, "");
    expect(fx, run(fx, ALICE, "event.list",
                   "{\"calendar\":\"alice\",\"from\":\"%s\",\"to\":\"%s\","
                   "\"cursor\":\"ffffffffffffffffffff\"}",
                   ts(T0), ts(T0 + DAY)),
           200, "");
    json_t *b = body(fx);
    assert_int_equal(json_array_size(json_object_get(b, "events")), 0);
    json_decref(b);
    agenda_fx_free(fx);
}

static void test_paging(void **state)
{
    (void)state;
    struct agenda_fx *fx = new_shard();
    /* 25 events: groups of 5 share a start, so order falls back to the id */
    for (unsigned i = 0; i < 25; i++)
        expect(fx, create(fx, ALICE, "alice", 1000 - i,
                          T0 + (int64_t)(i / 5) * HOUR,
                          T0 + (int64_t)(i / 5) * HOUR + 30 * 60000,
                          ",\"participants\":[\"bob\"]"),
               201, "");
    static const int limits[] = {1, 7, 10, 25, 500};
    for (size_t l = 0; l < sizeof(limits) / sizeof(limits[0]); l++) {
        const char *op[2] = {"event.list", "event.list_participant"};
        const char *key[2] = {"calendar", "user"};
        const char *owner[2] = {"alice", "bob"};
        for (int w = 0; w < 2; w++) {
            json_t *ids = list_all(fx, ADMIN, op[w], key[w], owner[w], T0,
                                   T0 + DAY, limits[l]);
            assert_int_equal(json_array_size(ids), 25);
            for (size_t i = 0; i < 25; i++) {
                /* start ascending, then id ascending */
                unsigned want = 1000 - (unsigned)(i / 5 * 5 + 4 - i % 5);
                assert_string_equal(json_string_value(json_array_get(ids, i)),
                                    eid(want));
            }
            json_decref(ids);
        }
    }
    /* "after" an item resumes strictly after it, as a cursor would: in
     * the second group (T0 + 1 h: ids 991..995), after 993 come 994, 995
     * and the three later groups */
    for (int w = 0; w < 2; w++) {
        const char *op[2] = {"event.list", "event.list_participant"};
        const char *owner[2] = {"\"calendar\":\"alice\"",
                                "\"user\":\"bob\""};
        expect(fx, run(fx, ADMIN, op[w],
                       "{%s,\"from\":\"%s\",\"to\":\"%s\",\"limit\":500,"
                       "\"after\":{\"start\":%lld,\"calendar\":\"alice\","
                       "\"id\":\"%s\"}}",
                       owner[w], ts(T0), ts(T0 + DAY),
                       (long long)(T0 + HOUR), eid(993)),
               200, "");
        json_t *after = json_array();
        collect_ids(fx, after);
        assert_int_equal(json_array_size(after), 17);
        assert_string_equal(json_string_value(json_array_get(after, 0)),
                            eid(994));
        assert_string_equal(json_string_value(json_array_get(after, 1)),
                            eid(995));
        json_decref(after);
    }
    static const char *const bad_after[] = {
        "\"cursor\":\"00\",\"after\":{\"start\":0,\"calendar\":\"alice\","
        "\"id\":\"00000000000000000000000000000001\"}",
        "\"after\":{\"start\":0,\"calendar\":\"bob\","
        "\"id\":\"00000000000000000000000000000001\"}",
        "\"after\":{\"start\":0,\"calendar\":\"alice\",\"id\":\"xyz\"}",
        "\"after\":{\"start\":\"0\",\"calendar\":\"alice\","
        "\"id\":\"00000000000000000000000000000001\"}",
        "\"after\":{\"start\":0,\"calendar\":\"alice\","
        "\"id\":\"00000000000000000000000000000001\",\"x\":1}",
        "\"after\":[0,\"alice\",\"00000000000000000000000000000001\"]",
        "\"after\":{\"start\":999999999999999999,\"calendar\":\"alice\","
        "\"id\":\"00000000000000000000000000000001\"}",
    };
    for (size_t i = 0; i < sizeof(bad_after) / sizeof(bad_after[0]); i++)
        expect(fx, run(fx, ALICE, "event.list",
                       "{\"calendar\":\"alice\",\"from\":\"%s\",\"to\":"
                       "\"%s\",%s}",
                       ts(T0), ts(T0 + DAY), bad_after[i]),
               400, "invalid_cursor");
    /* null is absent, as for every argument */
    expect(fx, run(fx, ALICE, "event.list",
                   "{\"calendar\":\"alice\",\"from\":\"%s\",\"to\":"
                   "\"%s\",\"after\":null}",
                   ts(T0), ts(T0 + DAY)),
           200, "");
    /* an event created behind the cursor is not seen; one ahead is */
    expect(fx, run(fx, ALICE, "event.list",
                   "{\"calendar\":\"alice\",\"from\":\"%s\",\"to\":\"%s\","
                   "\"limit\":10}",
                   ts(T0), ts(T0 + DAY)),
           200, "");
    json_t *b = body(fx);
    char cursor[200];
    snprintf(cursor, sizeof(cursor), "%s",
             json_string_value(json_object_get(b, "next_cursor")));
    json_decref(b);
    expect(fx, create(fx, ALICE, "alice", 1, T0, T0 + HOUR, ""), 201, "");
    expect(fx, create(fx, ALICE, "alice", 2, T0 + 10 * HOUR, T0 + 11 * HOUR,
                      ""),
           201, "");
    expect(fx, run(fx, ALICE, "event.list",
                   "{\"calendar\":\"alice\",\"from\":\"%s\",\"to\":\"%s\","
                   "\"limit\":500,\"cursor\":\"%s\"}",
                   ts(T0), ts(T0 + DAY), cursor),
           200, "");
    json_t *ids = json_array();
    collect_ids(fx, ids);
    assert_int_equal(json_array_size(ids), 16);
    assert_false(ids_contain(ids, eid(1)));
    assert_true(ids_contain(ids, eid(2)));
    json_decref(ids);
    agenda_fx_free(fx);
}

/* ---- all-day, private, group calendars ----------------------------------- */

static void test_all_day(void **state)
{
    (void)state;
    struct agenda_fx *fx = new_shard();
    expect(fx, run(fx, ALICE, "event.create",
                   "{\"calendar\":\"alice\",\"id\":\"%s\",\"title\":\"Trip\","
                   "\"all_day\":true,\"start\":\"2026-12-24\",\"end\":"
                   "\"2026-12-27\",\"time_zone\":\"Europe/Madrid\"}",
                   eid(1)),
           201, "");
    json_t *b = body(fx);
    json_t *ev = json_object_get(b, "event");
    assert_string_equal(json_string_value(json_object_get(ev, "start")),
                        "2026-12-24");
    assert_string_equal(json_string_value(json_object_get(ev, "end")),
                        "2026-12-27");
    json_decref(b);
    /* stored as UTC midnights, end exclusive */
    json_t *ids = list_all(fx, ALICE, "event.list", "calendar", "alice",
                           T0 + 26 * DAY - 1, T0 + 26 * DAY, 10);
    assert_int_equal(json_array_size(ids), 1);
    json_decref(ids);
    ids = list_all(fx, ALICE, "event.list", "calendar", "alice",
                   T0 + 26 * DAY, T0 + 27 * DAY, 10);
    assert_int_equal(json_array_size(ids), 0);
    json_decref(ids);
    ids = list_all(fx, ALICE, "event.list", "calendar", "alice",
                   T0 + 23 * DAY, T0 + 23 * DAY + 1, 10);
    assert_int_equal(json_array_size(ids), 1);
    json_decref(ids);
    /* dates on update of an all-day event; a date-time is refused */
    expect(fx, run(fx, ALICE, "event.update",
                   "{\"calendar\":\"alice\",\"id\":\"%s\","
                   "\"expected_version\":1,\"end\":\"2026-12-25T00:00:00Z\"}",
                   eid(1)),
           400, "invalid_date");
    expect(fx, run(fx, ALICE, "event.update",
                   "{\"calendar\":\"alice\",\"id\":\"%s\","
                   "\"expected_version\":1,\"end\":\"2026-12-25\"}",
                   eid(1)),
           200, "");
    /* back to timed */
    expect(fx, run(fx, ALICE, "event.update",
                   "{\"calendar\":\"alice\",\"id\":\"%s\","
                   "\"expected_version\":2,\"all_day\":false,\"start\":"
                   "\"2026-12-24T10:00:00Z\",\"end\":\"2026-12-24T11:00:00Z\"}",
                   eid(1)),
           200, "");
    b = body(fx);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(b, "event"), "end")),
                        "2026-12-24T11:00:00Z");
    json_decref(b);
    check_indexes(fx);
    agenda_fx_free(fx);
}

/*
 * An all-day event with start_at/end_at (what the edge computes from its
 * tz database: the first instants of its dates in its time zone) occupies
 * those instants: in the lists' windows, conflicts and free/busy; its
 * dates stay what they were.  Without them it occupies UTC days.
 */
static void test_all_day_in_its_time_zone(void **state)
{
    (void)state;
    struct agenda_fx *fx = new_shard();
    const int64_t eve = T0 + 22 * DAY + 15 * HOUR; /* 12-23T15:00Z */
    /* Christmas Eve in Tokyo: 2026-12-23T15:00Z .. 2026-12-24T15:00Z */
    expect(fx, run(fx, ALICE, "event.create",
                   "{\"calendar\":\"alice\",\"id\":\"%s\",\"title\":\"Eve\","
                   "\"all_day\":true,\"start\":\"2026-12-24\",\"end\":"
                   "\"2026-12-25\",\"time_zone\":\"Asia/Tokyo\","
                   "\"start_at\":%lld,\"end_at\":%lld}",
                   eid(1), (long long)eve, (long long)(eve + DAY)),
           201, "");
    assert_string_equal(tu_str(fx, "event.start"), "2026-12-24");
    assert_string_equal(tu_str(fx, "event.end"), "2026-12-25");
    assert_string_equal(tu_str(fx, "event.start_at"), "2026-12-23T15:00:00Z");
    assert_string_equal(tu_str(fx, "event.end_at"), "2026-12-24T15:00:00Z");
    static const struct {
        int64_t from, to;
        size_t n;
    } windows[] = {
        {T0 + 22 * DAY + 14 * HOUR, T0 + 22 * DAY + 15 * HOUR, 0},
        {T0 + 22 * DAY + 15 * HOUR, T0 + 22 * DAY + 15 * HOUR + 1, 1},
        {T0 + 23 * DAY + 15 * HOUR - 1, T0 + 23 * DAY + 15 * HOUR, 1},
        /* its UTC day's last hours are Tokyo's 25th */
        {T0 + 23 * DAY + 15 * HOUR, T0 + 24 * DAY, 0},
    };
    for (size_t i = 0; i < sizeof windows / sizeof windows[0]; i++) {
        json_t *ids = list_all(fx, ALICE, "event.list", "calendar", "alice",
                               windows[i].from, windows[i].to, 10);
        assert_int_equal(json_array_size(ids), windows[i].n);
        json_decref(ids);
    }
    /* free/busy: busy for Tokyo's 24th */
    expect(fx, run(fx, CAROL, "event.freebusy",
                   "{\"user\":\"alice\",\"from\":\"%s\",\"to\":\"%s\"}",
                   ts(T0 + 20 * DAY), ts(T0 + 25 * DAY)),
           200, "");
    json_t *b = body(fx);
    json_t *busy = json_array_get(json_object_get(b, "busy"), 0);
    assert_int_equal(json_array_size(json_object_get(b, "busy")), 1);
    assert_string_equal(json_string_value(json_object_get(busy, "start")),
                        "2026-12-23T15:00:00Z");
    assert_string_equal(json_string_value(json_object_get(busy, "end")),
                        "2026-12-24T15:00:00Z");
    json_decref(b);
    /* a conflict names the Tokyo dates, at the Tokyo instants */
    expect(fx, create(fx, ALICE, "alice", 2, eve - HOUR, eve + 1,
                      ",\"conflict_policy\":\"reject\""),
           409, "double_booked");
    b = body(fx);
    json_t *c0 = json_array_get(
        json_object_get(json_object_get(b, "error"), "conflicts"), 0);
    assert_string_equal(json_string_value(json_object_get(c0, "start")),
                        "2026-12-24");
    assert_string_equal(json_string_value(json_object_get(c0, "end")),
                        "2026-12-25");
    json_decref(b);
    expect(fx, create(fx, ALICE, "alice", 2, eve - HOUR, eve,
                      ",\"conflict_policy\":\"reject\""),
           201, "");

    /* what the shard refuses: half a span, a span for a timed event, a
     * span far from its dates; nothing changes */
    uint64_t before = state_hash(fx);
    expect(fx, run(fx, ALICE, "event.update",
                   "{\"calendar\":\"alice\",\"id\":\"%s\","
                   "\"expected_version\":1,\"start_at\":%lld}",
                   eid(1), (long long)eve),
           400, "missing_field");
    expect(fx, run(fx, ALICE, "event.update",
                   "{\"calendar\":\"alice\",\"id\":\"%s\","
                   "\"expected_version\":1,\"all_day\":false,\"start\":"
                   "\"2026-12-24T10:00:00Z\",\"end\":\"2026-12-24T11:00:00Z\","
                   "\"start_at\":%lld,\"end_at\":%lld}",
                   eid(1), (long long)eve, (long long)(eve + DAY)),
           400, "invalid_field");
    expect(fx, run(fx, ALICE, "event.update",
                   "{\"calendar\":\"alice\",\"id\":\"%s\","
                   "\"expected_version\":1,\"start_at\":%lld,"
                   "\"end_at\":%lld}",
                   eid(1), (long long)(eve - DAY),
                   (long long)(eve + DAY)),
           400, "invalid_field");
    expect(fx, run(fx, ALICE, "event.update",
                   "{\"calendar\":\"alice\",\"id\":\"%s\","
                   "\"expected_version\":1,\"start_at\":%lld,"
                   "\"end_at\":%lld}",
                   eid(1), (long long)(eve + DAY + 5 * HOUR),
                   (long long)(eve + 19 * HOUR)),
           422, "end_before_start");
    assert_true(state_hash(fx) == before);

    /* a change that does not move it keeps the span */
    expect(fx, run(fx, ALICE, "event.update",
                   "{\"calendar\":\"alice\",\"id\":\"%s\","
                   "\"expected_version\":1,\"title\":\"Eve!\"}",
                   eid(1)),
           200, "");
    assert_string_equal(tu_str(fx, "event.start_at"), "2026-12-23T15:00:00Z");
    /* one that moves it without a new span: UTC days */
    expect(fx, run(fx, ALICE, "event.update",
                   "{\"calendar\":\"alice\",\"id\":\"%s\","
                   "\"expected_version\":2,\"end\":\"2026-12-26\"}",
                   eid(1)),
           200, "");
    assert_string_equal(tu_str(fx, "event.start_at"), "2026-12-24T00:00:00Z");
    assert_string_equal(tu_str(fx, "event.end_at"), "2026-12-26T00:00:00Z");
    check_indexes(fx);
    /* timed again: no span at all */
    expect(fx, run(fx, ALICE, "event.update",
                   "{\"calendar\":\"alice\",\"id\":\"%s\","
                   "\"expected_version\":3,\"all_day\":false,\"start\":"
                   "\"2026-12-24T10:00:00Z\",\"end\":\"2026-12-24T11:00:00Z\"}",
                   eid(1)),
           200, "");
    b = body(fx);
    assert_null(json_object_get(json_object_get(b, "event"), "start_at"));
    json_decref(b);
    check_indexes(fx);
    agenda_fx_free(fx);
}

/* The busy-only view carries times and nothing else. */
static void assert_busy_only(const json_t *ev)
{
    assert_true(json_is_true(json_object_get(ev, "busy")));
    assert_null(json_object_get(ev, "title"));
    assert_null(json_object_get(ev, "description"));
    assert_null(json_object_get(ev, "location"));
    assert_null(json_object_get(ev, "participants"));
    assert_non_null(json_object_get(ev, "start"));
    assert_string_equal(json_string_value(json_object_get(ev, "visibility")),
                        "private");
}

static void test_group_calendar(void **state)
{
    (void)state;
    struct agenda_fx *fx = new_shard();
    int64_t nine = T0 + 9 * HOUR;
    expect(fx, create(fx, LEADER, GCAL, 1, nine, nine + HOUR,
                      ",\"group\":\"0123456789abcdef\""),
           201, "");
    json_t *b = body(fx);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(b, "event"), "group")),
                        "0123456789abcdef");
    json_decref(b);
    expect(fx, create(fx, LEADER, GCAL, 2, nine, nine + HOUR,
                      ",\"visibility\":\"private\",\"participants\":"
                      "[\"bob\",\"lea\"]"),
           201, "");
    /* no owner conflicts on a group calendar: only participants' */
    assert_int_equal(conflicts_of(fx, NULL), 0);
    expect(fx, create(fx, MEMBER, GCAL, 3, nine, nine + HOUR, ""), 403,
           "forbidden");
    expect(fx, create(fx, OUTSIDER, GCAL, 3, nine, nine + HOUR, ""), 403,
           "forbidden");
    expect(fx, create(fx, LEADER, GCAL, 3, nine, nine + HOUR,
                      ",\"group\":\"fedcba9876543210\""),
           422, "group_mismatch");

    /* member: full view of the default event, busy-only of the private */
    expect(fx, run(fx, MEMBER, "event.get",
                   "{\"calendar\":\"" GCAL "\",\"id\":\"%s\"}", eid(1)),
           200, "");
    assert_int_equal(body_int(fx, "event", "version"), 1);
    expect(fx, run(fx, MEMBER, "event.get",
                   "{\"calendar\":\"" GCAL "\",\"id\":\"%s\"}", eid(2)),
           200, "");
    b = body(fx);
    assert_busy_only(json_object_get(b, "event"));
    json_decref(b);
    /* admins too see busy time only; participants and leaders all of it */
    expect(fx, run(fx, ADMIN, "event.get",
                   "{\"calendar\":\"" GCAL "\",\"id\":\"%s\"}", eid(2)),
           200, "");
    b = body(fx);
    assert_busy_only(json_object_get(b, "event"));
    json_decref(b);
    const char *full[] = {BOB, LEADER};
    for (int i = 0; i < 2; i++) {
        expect(fx, run(fx, full[i], "event.get",
                       "{\"calendar\":\"" GCAL "\",\"id\":\"%s\"}", eid(2)),
               200, "");
        b = body(fx);
        assert_non_null(json_object_get(json_object_get(b, "event"),
                                        "title"));
        json_decref(b);
    }
    /* outsiders see nothing */
    expect(fx, run(fx, OUTSIDER, "event.get",
                   "{\"calendar\":\"" GCAL "\",\"id\":\"%s\"}", eid(1)),
           404, "not_found");
    expect(fx, run(fx, OUTSIDER, "event.list",
                   "{\"calendar\":\"" GCAL "\",\"from\":\"%s\",\"to\":\"%s\"}",
                   ts(T0), ts(T0 + DAY)),
           403, "forbidden");
    /* the member's list: both, the private one busy-only */
    expect(fx, run(fx, MEMBER, "event.list",
                   "{\"calendar\":\"" GCAL "\",\"from\":\"%s\",\"to\":\"%s\"}",
                   ts(T0), ts(T0 + DAY)),
           200, "");
    b = body(fx);
    json_t *evs = json_object_get(b, "events");
    assert_int_equal(json_array_size(evs), 2);
    assert_non_null(json_object_get(json_array_get(evs, 0), "title"));
    assert_busy_only(json_array_get(evs, 1));
    json_decref(b);
    /* members do not write; leaders do */
    expect(fx, run(fx, MEMBER, "event.update",
                   "{\"calendar\":\"" GCAL "\",\"id\":\"%s\","
                   "\"expected_version\":1,\"title\":\"x\"}",
                   eid(1)),
           403, "forbidden");
    expect(fx, run(fx, MEMBER, "event.delete",
                   "{\"calendar\":\"" GCAL "\",\"id\":\"%s\"}", eid(1)),
           403, "forbidden");
    expect(fx, run(fx, LEADER, "event.update",
                   "{\"calendar\":\"" GCAL "\",\"id\":\"%s\","
                   "\"expected_version\":1,\"title\":\"x\"}",
                   eid(1)),
           200, "");
    /* the private event on a personal calendar: a participant sees it */
    expect(fx, create(fx, ALICE, "alice", 5, nine, nine + HOUR,
                      ",\"visibility\":\"private\",\"participants\":"
                      "[\"bob\"]"),
           201, "");
    expect(fx, run(fx, BOB, "event.get",
                   "{\"calendar\":\"alice\",\"id\":\"%s\"}", eid(5)),
           200, "");
    b = body(fx);
    assert_non_null(json_object_get(json_object_get(b, "event"), "title"));
    json_decref(b);
    expect(fx, run(fx, LEADER, "event.delete",
                   "{\"calendar\":\"" GCAL "\",\"id\":\"%s\"}", eid(2)),
           200, "");
    check_indexes(fx);
    agenda_fx_free(fx);
}

/* ---- free/busy ----------------------------------------------------------- */

/* The newest change of calendar:GCAL as a member reads it. */
static json_t *last_group_change(struct agenda_fx *fx)
{
    expect(fx, run(fx, MEMBER, "changes.list",
                   "{\"target\":\"calendar:%s\",\"since\":0}", GCAL),
           200, "");
    json_t *b = body(fx);
    json_t *changes = json_object_get(b, "changes");
    json_t *last = json_incref(
        json_array_get(changes, json_array_size(changes) - 1));
    json_decref(b);
    return last;
}

/* A group calendar's feed is read by every member; they see a private
 * event as busy time, not who is invited to it: an answer to it is told
 * without naming who answered. */
static void test_answers_to_private_group_events_are_anonymous(
    void **state)
{
    (void)state;
    struct agenda_fx *fx = new_shard();
    int64_t nine = T0 + 9 * HOUR;
    expect(fx, create(fx, LEADER, GCAL, 1, nine, nine + HOUR,
                      ",\"visibility\":\"private\",\"participants\":"
                      "[\"bob\"]"),
           201, "");
    expect(fx, create(fx, LEADER, GCAL, 2, nine, nine + HOUR,
                      ",\"participants\":[\"bob\"]"),
           201, "");
    expect(fx, run(fx, BOB, "event.rsvp",
                   "{\"calendar\":\"%s\",\"id\":\"%s\",\"response\":"
                   "\"accepted\"}", GCAL, eid(1)),
           200, "");
    json_t *c = last_group_change(fx);
    assert_string_equal(json_string_value(json_object_get(c, "type")),
                        "invitation.responded");
    assert_string_equal(json_string_value(json_object_get(c, "actor")), "");
    assert_null(json_object_get(json_object_get(c, "data"), "user"));
    assert_non_null(json_object_get(json_object_get(c, "data"), "id"));
    json_decref(c);
    /* bob's own feed still tells him, and a default event's answer is
     * named as before */
    expect_last_change(fx, BOB, "user:bob", "invitation.responded");
    expect(fx, run(fx, BOB, "event.rsvp",
                   "{\"calendar\":\"%s\",\"id\":\"%s\",\"response\":"
                   "\"accepted\"}", GCAL, eid(2)),
           200, "");
    c = last_group_change(fx);
    assert_string_equal(json_string_value(json_object_get(c, "actor")),
                        "bob");
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(c, "data"), "user")),
                        "bob");
    json_decref(c);
    agenda_fx_free(fx);
}

static void test_freebusy(void **state)
{
    (void)state;
    struct agenda_fx *fx = new_shard();
    int64_t nine = T0 + 9 * HOUR;
    /* alice's own: 9-10 and 9:30-11 merge; 11-12 touches and merges */
    expect(fx, create(fx, ALICE, "alice", 1, nine, nine + HOUR, ""), 201, "");
    expect(fx, create(fx, ALICE, "alice", 2, nine + HOUR / 2, nine + 2 * HOUR,
                      ",\"visibility\":\"private\""),
           201, "");
    expect(fx, create(fx, ALICE, "alice", 3, nine + 2 * HOUR,
                      nine + 3 * HOUR, ""),
           201, "");
    /* invitations: accepted 14-15, tentative 16-17, declined 18-19,
     * unanswered 20-21 */
    static const char *const answers[] = {"accepted", "tentative", "declined",
                                          NULL};
    for (unsigned i = 0; i < 4; i++) {
        int64_t s = T0 + (14 + 2 * (int64_t)i) * HOUR;
        expect(fx, create(fx, BOB, "bob", 10 + i, s, s + HOUR,
                          ",\"participants\":[\"alice\"]"),
               201, "");
        if (answers[i] != NULL)
            expect(fx, run(fx, ALICE, "event.rsvp",
                           "{\"calendar\":\"bob\",\"id\":\"%s\","
                           "\"response\":\"%s\"}",
                           eid(10 + i), answers[i]),
                   200, "");
    }
    /* a long event clipped to the window */
    expect(fx, create(fx, ALICE, "alice", 4, T0 - 3 * DAY, T0 + HOUR, ""),
           201, "");
    expect(fx, run(fx, DAVE, "event.freebusy",
                   "{\"user\":\"Alice\",\"from\":\"%s\",\"to\":\"%s\"}",
                   ts(T0), ts(T0 + DAY)),
           200, "");
    json_t *b = body(fx);
    char got[400] = "";
    size_t len = 0, i;
    json_t *iv;
    json_array_foreach(json_object_get(b, "busy"), i, iv) {
        assert_int_equal(json_object_size(iv), 2);
        len += (size_t)snprintf(
            got + len, sizeof(got) - len, "%s-%s ",
            json_string_value(json_object_get(iv, "start")) + 11,
            json_string_value(json_object_get(iv, "end")) + 11);
    }
    assert_string_equal(got, "00:00:00Z-01:00:00Z 09:00:00Z-12:00:00Z "
                             "14:00:00Z-15:00:00Z 16:00:00Z-17:00:00Z ");
    assert_string_equal(json_string_value(json_object_get(b, "user")),
                        "alice");
    json_decref(b);
    expect(fx, run(fx, DAVE, "event.freebusy",
                   "{\"user\":\"al\",\"from\":\"%s\",\"to\":\"%s\"}", ts(T0),
                   ts(T0 + DAY)),
           400, "invalid_field");
    /* a null counts as absent, for either */
    expect(fx, run(fx, DAVE, "event.freebusy",
                   "{\"user\":\"alice\",\"users\":null,\"from\":\"%s\","
                   "\"to\":\"%s\"}", ts(T0), ts(T0 + DAY)),
           200, "");
    expect(fx, run(fx, DAVE, "event.freebusy",
                   "{\"user\":null,\"users\":[\"alice\"],\"from\":\"%s\","
                   "\"to\":\"%s\"}", ts(T0), ts(T0 + DAY)),
           200, "");
    expect(fx, run(fx, DAVE, "event.freebusy",
                   "{\"user\":\"alice\",\"from\":\"%s\",\"to\":\"%s\","
                   "\"title\":true}",
                   ts(T0), ts(T0 + DAY)),
           400, "unknown_field");

    /* several users at once (the edge's one call per shard): the same
     * intervals per user, a repeated name once, bob's own 14-21 */
    expect(fx, run(fx, DAVE, "event.freebusy",
                   "{\"users\":[\"Alice\",\"bob\",\"alice\",\"carol\"],"
                   "\"from\":\"%s\",\"to\":\"%s\"}",
                   ts(T0), ts(T0 + DAY)),
           200, "");
    b = body(fx);
    json_t *users = json_object_get(b, "users");
    assert_int_equal(json_object_size(users), 3);
    assert_int_equal(json_array_size(json_object_get(users, "alice")), 4);
    assert_int_equal(json_array_size(json_object_get(users, "bob")), 4);
    assert_int_equal(json_array_size(json_object_get(users, "carol")), 0);
    assert_string_equal(
        json_string_value(json_object_get(
            json_array_get(json_object_get(users, "alice"), 1), "end")),
        "2026-12-01T12:00:00Z");
    assert_null(json_object_get(b, "busy"));
    assert_non_null(json_object_get(b, "from"));
    json_decref(b);
    static const char *const bad_users[] = {
        "[]", "\"alice\"", "[\"al\"]", "[5]",
        "[\"u01\",\"u02\",\"u03\",\"u04\",\"u05\",\"u06\",\"u07\","
        "\"u08\",\"u09\",\"u10\",\"u11\",\"u12\",\"u13\",\"u14\","
        "\"u15\",\"u16\",\"u17\",\"u18\",\"u19\",\"u20\",\"u21\"]",
    };
    for (size_t k = 0; k < sizeof(bad_users) / sizeof(bad_users[0]); k++)
        expect(fx, run(fx, DAVE, "event.freebusy",
                       "{\"users\":%s,\"from\":\"%s\",\"to\":\"%s\"}",
                       bad_users[k], ts(T0), ts(T0 + DAY)),
               400, "invalid_field");
    expect(fx, run(fx, DAVE, "event.freebusy",
                   "{\"user\":\"alice\",\"users\":[\"bob\"],\"from\":\"%s\","
                   "\"to\":\"%s\"}",
                   ts(T0), ts(T0 + DAY)),
           400, "invalid_field");
    agenda_fx_free(fx);
}

/* ---- scale --------------------------------------------------------------- */

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/*
 * Pages end by size too: 60 events with the longest description (8000
 * four-byte characters) are ~2 MB of JSON, more than the edge reads of one
 * shard answer (2 MiB), so a page of up to 500 stops before 1 MiB of
 * events; walking the pages still sees every event once, for the owner's
 * list and the participant's.
 */
static void test_pages_end_before_a_mebibyte(void **state)
{
    (void)state;
    struct agenda_fx *fx = new_shard();
    enum { N = 60 };
    static char extra[40000];
    size_t o = (size_t)snprintf(extra, sizeof(extra),
                                ",\"participants\":[\"bob\"],"
                                "\"description\":\"");
    for (int i = 0; i < AGENDA_DESCRIPTION_MAX; i++) {
        memcpy(extra + o, "\xf0\x9f\x98\x80", 4);
        o += 4;
    }
    snprintf(extra + o, sizeof(extra) - o, "\"");
    for (unsigned i = 0; i < N; i++)
        expect(fx, create(fx, ALICE, "alice", i + 1, T0 + i * HOUR / 4,
                          T0 + i * HOUR / 4 + HOUR, extra),
               201, "");
    const char *op[2] = {"event.list", "event.list_participant"};
    const char *key[2] = {"calendar", "user"};
    const char *owner[2] = {"alice", "bob"};
    for (int w = 0; w < 2; w++) {
        expect(fx, run(fx, ADMIN, op[w],
                       "{\"%s\":\"%s\",\"from\":\"%s\",\"to\":\"%s\","
                       "\"limit\":500}",
                       key[w], owner[w], ts(T0), ts(T0 + DAY)),
               200, "");
        json_t *b = body(fx);
        size_t first = json_array_size(json_object_get(b, "events"));
        assert_true(first > 1 && first < N);
        assert_true(json_is_string(json_object_get(b, "next_cursor")));
        json_decref(b);
        assert_true(fx->res.body.len <= AGENDA_PAGE_BYTES_MAX + 1024);
        json_t *ids = list_all(fx, ADMIN, op[w], key[w], owner[w], T0,
                               T0 + DAY, 500);
        assert_int_equal(json_array_size(ids), N);
        for (unsigned i = 0; i < N; i++)
            assert_string_equal(json_string_value(json_array_get(ids, i)),
                                eid(i + 1));
        json_decref(ids);
    }
    agenda_fx_free(fx);
}

/*
 * A calendar of 10 000 events (written directly through the index layer in
 * one transaction, as create does), next to another busy calendar: range
 * queries return exactly the events a brute-force scan says overlap.
 */
static void test_large_calendar(void **state)
{
    (void)state;
    struct agenda_fx *fx = new_shard();
    enum { N = 10000 };
    static int64_t starts[N], ends[N];
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    MDB_txn *txn;
    assert_int_equal(mdb_txn_begin(fx->env, NULL, 0, &txn), 0);
    const char *cals[2] = {"alice", "bob"};
    for (int c = 0; c < 2; c++) {
        for (unsigned i = 0; i < N; i++) {
            int64_t s = T0 + (int64_t)(rng_next(&seed) % (365 * 96)) * 900000;
            int64_t d = (int64_t)(rng_next(&seed) % 16 + 1) * 900000;
            if (i % 1000 == 7)
                d = (int64_t)(rng_next(&seed) % 40 + 1) * DAY; /* long */
            if (c == 0) {
                starts[i] = s;
                ends[i] = s + d;
            }
            json_t *ev = json_pack(
                "{s:s,s:s,s:s,s:s,s:s,s:b,s:s,s:{s:s},s:s,s:I,s:I,s:I,s:I,"
                "s:I,s:s}",
                "calendar", cals[c], "id", eid(i), "title", "t",
                "description", "", "location", "", "all_day", 0, "time_zone",
                "UTC", "participants", c == 0 ? "carol" : "dave",
                "needs_action", "visibility", "default", "version",
                (json_int_t)1, "start", (json_int_t)s, "end",
                (json_int_t)(s + d), "created", (json_int_t)T0, "updated",
                (json_int_t)T0, "creator", cals[c]);
            char *text = json_dumps(ev, JSON_COMPACT | JSON_SORT_KEYS);
            struct agenda_key k;
            agenda_evkey_event(&k, cals[c], eid(i));
            MDB_val key = agenda_key_val(&k), v = {strlen(text), text};
            assert_int_equal(mdb_put(txn, fx->sm.db.events, &key, &v, 0), 0);
            assert_int_equal(agenda_ev_index_add(txn, &fx->sm.db, ev), 0);
            free(text);
            json_decref(ev);
        }
    }
    assert_int_equal(mdb_txn_commit(txn), 0);
    check_indexes(fx);

    static const struct {
        int64_t from, len;
    } windows[] = {
        {0, DAY},           {100 * DAY, 7 * DAY}, {200 * DAY + 1, HOUR},
        {-30 * DAY, 31 * DAY}, {364 * DAY, 30 * DAY},
    };
    for (size_t w = 0; w < sizeof(windows) / sizeof(windows[0]); w++) {
        int64_t from = T0 + windows[w].from, to = from + windows[w].len;
        const char *who[2][3] = {{ALICE, "event.list", "calendar"},
                                 {CAROL, "event.list_participant", "user"}};
        const char *owner[2] = {"alice", "carol"};
        for (int k = 0; k < 2; k++) {
            json_t *ids = list_all(fx, who[k][0], who[k][1], who[k][2],
                                   owner[k], from, to, 500);
            size_t want = 0;
            for (unsigned i = 0; i < N; i++) {
                bool in = starts[i] < to && ends[i] > from;
                want += in;
                if (in && !ids_contain(ids, eid(i)))
                    fail_msg("window %zu misses event %u", w, i);
            }
            assert_int_equal(json_array_size(ids), want);
            json_decref(ids);
        }
    }
    /* free/busy is made of at most AGENDA_FREEBUSY_MAX events (alice has
     * exactly that many in the year): one more is refused, a shorter
     * window still answers */
    assert_int_equal(N, AGENDA_FREEBUSY_MAX);
#define FB "{\"user\":\"alice\",\"from\":\"%s\",\"to\":\"%s\"}"
    expect(fx, run(fx, CAROL, "event.freebusy", FB, ts(T0),
                   ts(T0 + 366 * DAY)),
           200, "");
    expect(fx, create(fx, ALICE, "alice", N + 1, T0, T0 + HOUR, ""), 201, "");
    expect(fx, run(fx, CAROL, "event.freebusy", FB, ts(T0),
                   ts(T0 + 366 * DAY)),
           413, "range_too_large");
    expect(fx, run(fx, CAROL, "event.freebusy", FB, ts(T0), ts(T0 + DAY)),
           200, "");
#undef FB
    agenda_fx_free(fx);
}

/* ---- random sequences ---------------------------------------------------- */

/*
 * Random creates, updates, deletes and answers by random actors (most of
 * them legitimate): after every step the indexes agree with the records,
 * and a refused command changed nothing.
 */
static void test_random_sequences(void **state)
{
    (void)state;
    static const char *const users[] = {"alice", "bob", "carol", "dave"};
    for (uint64_t run_seed = 1; run_seed <= 3; run_seed++) {
        struct agenda_fx *fx = new_shard();
        uint64_t seed = run_seed * 0x2545f4914f6cdd1dull;
        int versions[40] = {0}; /* 0: absent; owner is users[id % 4] */
        for (int step = 0; step < 300; step++) {
            unsigned n = (unsigned)(rng_next(&seed) % 40);
            const char *owner = users[n % 4];
            const char *actor_name = rng_next(&seed) % 5 == 0
                                         ? users[rng_next(&seed) % 4]
                                         : owner;
            char actor[100];
            snprintf(actor, sizeof(actor),
                     "{\"user\":\"%s\",\"role\":\"user\"}", actor_name);
            int64_t s = T0 + (int64_t)(rng_next(&seed) % 48) * HOUR;
            int64_t e = s + (int64_t)(rng_next(&seed) % 30 + 1) * HOUR;
            char parts[200] = "";
            size_t len = 0;
            for (int u = 0; u < 4; u++)
                if (strcmp(users[u], owner) != 0 && rng_next(&seed) % 2)
                    len += (size_t)snprintf(parts + len, sizeof(parts) - len,
                                            "%s\"%s\"", len ? "," : "",
                                            users[u]);
            uint64_t before = state_hash(fx);
            int st;
            switch (rng_next(&seed) % 4) {
            case 0:
                st = run(fx, actor, "event.create",
                         "{\"calendar\":\"%s\",\"id\":\"%s\",\"title\":\"r\","
                         "\"start\":\"%s\",\"end\":\"%s\",\"time_zone\":"
                         "\"UTC\",\"participants\":[%s]}",
                         owner, eid(n), ts(s), ts(e), parts);
                if (st == 201)
                    versions[n] = 1;
                break;
            case 1:
                st = run(fx, actor, "event.update",
                         "{\"calendar\":\"%s\",\"id\":\"%s\","
                         "\"expected_version\":%d,\"start\":\"%s\","
                         "\"end\":\"%s\",\"participants\":[%s]}",
                         owner, eid(n), versions[n], ts(s), ts(e), parts);
                if (st == 200)
                    versions[n]++;
                break;
            case 2:
                st = run(fx, actor, "event.delete",
                         "{\"calendar\":\"%s\",\"id\":\"%s\"}", owner,
                         eid(n));
                if (st == 200)
                    versions[n] = 0;
                break;
            default:
                st = run(fx, actor, "event.rsvp",
                         "{\"calendar\":\"%s\",\"id\":\"%s\",\"response\":"
                         "\"%s\"}",
                         owner, eid(n),
                         (const char *[]){"accepted", "declined",
                                          "tentative"}[rng_next(&seed) % 3]);
                if (st == 200) {
                    /* answered: version may have moved */
                    versions[n] = (int)body_int(fx, "event", "version");
                }
                break;
            }
            if (st >= 400)
                assert_true(state_hash(fx) == before);
            assert_true(st < 500);
            check_indexes(fx);
        }
        /* every participant's list matches the records */
        for (int u = 0; u < 4; u++) {
            char actor[100];
            snprintf(actor, sizeof(actor),
                     "{\"user\":\"%s\",\"role\":\"user\"}", users[u]);
            json_t *ids = list_all(fx, actor, "event.list_participant",
                                   "user", users[u], T0 - DAY, T0 + 5 * DAY,
                                   3);
            size_t want = 0;
            for (unsigned n = 0; n < 40; n++) {
                if (versions[n] == 0)
                    continue;
                expect(fx, run(fx, ADMIN, "event.get",
                               "{\"calendar\":\"%s\",\"id\":\"%s\"}",
                               users[n % 4], eid(n)),
                       200, "");
                json_t *b = body(fx);
                bool part = json_object_get(
                                json_object_get(json_object_get(b, "event"),
                                                "participants"),
                                users[u]) != NULL;
                json_decref(b);
                want += part;
                assert_true(part == ids_contain(ids, eid(n)));
            }
            assert_int_equal(json_array_size(ids), want);
            json_decref(ids);
        }
        agenda_fx_free(fx);
    }
}

static int count_visit(void *arg, const struct agenda_ev_hit *hit)
{
    (void)hit;
    (*(int *)arg)++;
    return 0;
}

/* A damaged index is noticed by the checker. */
static void test_check_detects_damage(void **state)
{
    (void)state;
    struct agenda_fx *fx = new_shard();
    expect(fx, create(fx, ALICE, "alice", 1, T0, T0 + HOUR,
                      ",\"participants\":[\"bob\"]"),
           201, "");
    check_indexes(fx);
    MDB_txn *txn;
    char why[256];
    struct agenda_key k;
    assert_int_equal(mdb_txn_begin(fx->env, NULL, 0, &txn), 0);
    agenda_evkey_part(&k, "bob", T0, "alice", eid(1));
    MDB_val key = agenda_key_val(&k);
    assert_int_equal(mdb_del(txn, fx->sm.db.ev_by_part, &key, NULL), 0);
    assert_int_equal(
        agenda_events_check_indexes(txn, &fx->sm.db, why, sizeof(why)), 1);
    assert_non_null(strstr(why, "bob"));
    mdb_txn_abort(txn);

    /* an entry whose value disagrees with the record (bob's response) */
    assert_int_equal(mdb_txn_begin(fx->env, NULL, 0, &txn), 0);
    MDB_val v;
    assert_int_equal(mdb_get(txn, fx->sm.db.ev_by_part, &key, &v), 0);
    assert_int_equal(v.mv_size, 10);
    uint8_t changed[10];
    memcpy(changed, v.mv_data, sizeof(changed));
    changed[9] = AGENDA_RESPONSE_ACCEPTED;
    MDB_val cv = {sizeof(changed), changed};
    assert_int_equal(mdb_put(txn, fx->sm.db.ev_by_part, &key, &cv, 0), 0);
    assert_int_equal(
        agenda_events_check_indexes(txn, &fx->sm.db, why, sizeof(why)), 1);
    assert_non_null(strstr(why, "wrong value"));
    /* and a value no encoder writes is corruption to a walk */
    changed[9] = 0;
    assert_int_equal(mdb_put(txn, fx->sm.db.ev_by_part, &key, &cv, 0), 0);
    int seen = 0;
    assert_int_equal(agenda_ev_walk_index(txn, &fx->sm.db, AGENDA_EV_BY_PART,
                                          "bob", T0, T0 + DAY, count_visit,
                                          &seen),
                     MDB_CORRUPTED);
    mdb_txn_abort(txn);

    assert_int_equal(mdb_txn_begin(fx->env, NULL, 0, &txn), 0);
    agenda_evkey_cal(&k, "alice", T0 + 1, eid(2));
    key = agenda_key_val(&k);
    MDB_val empty = {0, why};
    assert_int_equal(mdb_put(txn, fx->sm.db.ev_by_cal, &key, &empty, 0), 0);
    assert_int_equal(
        agenda_events_check_indexes(txn, &fx->sm.db, why, sizeof(why)), 1);
    assert_non_null(strstr(why, "ev_by_cal"));
    /* and a walk meeting an entry without a record reports corruption */
    int hits = 0;
    assert_int_equal(agenda_ev_walk(txn, &fx->sm.db, AGENDA_EV_BY_CAL,
                                    "alice", T0, T0 + DAY, NULL, 0, NULL,
                                    count_visit, &hits),
                     MDB_CORRUPTED);
    mdb_txn_abort(txn);

    /* a walk for one answer never reads the records of participations
     * holding another (an invitations page filtered by status costs
     * index entries, not a JSON parse each): with bob's record gone, a
     * walk for his accepted ones meets nothing, one for every answer
     * meets the missing record */
    assert_int_equal(mdb_txn_begin(fx->env, NULL, 0, &txn), 0);
    agenda_evkey_event(&k, "alice", eid(1));
    key = agenda_key_val(&k);
    assert_int_equal(mdb_del(txn, fx->sm.db.events, &key, NULL), 0);
    hits = 0;
    assert_int_equal(agenda_ev_walk(txn, &fx->sm.db, AGENDA_EV_BY_PART,
                                    "bob", T0, T0 + DAY, NULL, 0, "accepted",
                                    count_visit, &hits),
                     0);
    assert_int_equal(hits, 0);
    assert_int_equal(agenda_ev_walk(txn, &fx->sm.db, AGENDA_EV_BY_PART,
                                    "bob", T0, T0 + DAY, NULL, 0,
                                    "needs_action", count_visit, &hits),
                     MDB_CORRUPTED);
    mdb_txn_abort(txn);
    agenda_fx_free(fx);
}

/* calendar.purge empties a group calendar in bounded batches: the edge's
 * clean-up after a group is deleted. */
static void test_purge_empties_a_group_calendar(void **state)
{
    (void)state;
    struct agenda_fx *fx = new_shard();
    const unsigned total = 2 * AGENDA_PURGE_BATCH + 7;
    for (unsigned i = 1; i <= total; i++)
        expect(fx, create(fx, LEADER, GCAL, i, T0 + (int64_t)i * HOUR,
                          T0 + (int64_t)i * HOUR + HOUR / 2,
                          i == 5 ? ",\"participants\":[\"bob\"]" : ""),
               201, "");
    expect(fx, create(fx, ALICE, "alice", 1, T0, T0 + HOUR, ""), 201, "");

    /* only the edge; only group calendars; nothing changes when refused */
    const char *args = "{\"calendar\":\"" GCAL "\"}";
    expect(fx, run(fx, LEADER, "calendar.purge", "%s", args), 403,
           "forbidden");
    expect(fx, run(fx, ADMIN, "calendar.purge", "%s", args), 403,
           "forbidden");
    expect(fx, run(fx, SYSTEM, "calendar.purge", "{\"calendar\":\"alice\"}"),
           400, "invalid_calendar");
    expect(fx, run(fx, SYSTEM, "calendar.purge",
                   "{\"calendar\":\"" GCAL "\",\"all\":true}"),
           400, "unknown_field");
    expect(fx, run(fx, LEADER, "calendar.purging", "{}"), 403, "forbidden");
    expect(fx, run(fx, SYSTEM, "calendar.purging", "{\"limit\":1}"), 400,
           "unknown_field");
    static const char none[] = "{\"calendars\":[],\"more\":false}";
    expect(fx, run(fx, SYSTEM, "calendar.purging", "{}"), 200, "");
    assert_int_equal(fx->res.body.len, sizeof(none) - 1);
    assert_memory_equal(fx->res.body.data, none, sizeof(none) - 1);
    expect(fx, run(fx, BOB, "event.list_participant",
                   "{\"user\":\"bob\",\"from\":\"%s\",\"to\":\"%s\"}",
                   ts(T0), ts(T0 + 30 * DAY)),
           200, "");
    json_t *b = body(fx);
    assert_int_equal(json_array_size(json_object_get(b, "events")), 1);
    json_decref(b);

    unsigned deleted = 0;
    for (int round = 0;; round++) {
        assert_true(round < 4);
        expect(fx, run(fx, SYSTEM, "calendar.purge", "%s", args), 200, "");
        json_int_t n = body_int(fx, "deleted", NULL);
        b = body(fx);
        bool more = json_is_true(json_object_get(b, "more"));
        assert_true(json_is_integer(json_object_get(b, "sync_token")));
        json_decref(b);
        assert_true(n <= AGENDA_PURGE_BATCH);
        deleted += (unsigned)n;
        check_indexes(fx);
        /* an unfinished purge is listed for the shard's leader to finish
         * (purge_driver.c); a finished one is not */
        expect(fx, run(fx, SYSTEM, "calendar.purging", "{}"), 200, "");
        b = body(fx);
        json_t *listed = json_object_get(b, "calendars");
        assert_int_equal(json_array_size(listed), more ? 1 : 0);
        if (more)
            assert_string_equal(json_string_value(json_array_get(listed, 0)),
                                GCAL);
        json_decref(b);
        if (!more)
            break;
        assert_int_equal(n, AGENDA_PURGE_BATCH);
    }
    assert_int_equal(deleted, total);
    /* empty now, and again is a no-op */
    expect(fx, run(fx, SYSTEM, "calendar.purge", "%s", args), 200, "");
    assert_int_equal(body_int(fx, "deleted", NULL), 0);
    expect(fx, run(fx, MEMBER, "event.list",
                   "{\"calendar\":\"" GCAL "\",\"from\":\"%s\",\"to\":"
                   "\"%s\"}", ts(T0), ts(T0 + 30 * DAY)),
           200, "");
    b = body(fx);
    assert_int_equal(json_array_size(json_object_get(b, "events")), 0);
    json_decref(b);
    /* bob's invitation went with it; alice's own calendar is untouched */
    expect(fx, run(fx, BOB, "event.list_participant",
                   "{\"user\":\"bob\",\"from\":\"%s\",\"to\":\"%s\"}",
                   ts(T0), ts(T0 + 30 * DAY)),
           200, "");
    b = body(fx);
    assert_int_equal(json_array_size(json_object_get(b, "events")), 0);
    json_decref(b);
    expect(fx, run(fx, ALICE, "event.get",
                   "{\"calendar\":\"alice\",\"id\":\"%s\"}", eid(1)),
           200, "");
    /* the participant's feed says the event is gone */
    expect_last_change(fx, BOB, "user:bob", "event.deleted");
    agenda_fx_free(fx);
}

/* Empty every value of an index database, as format 1 wrote them. */
static void empty_values(MDB_txn *txn, MDB_dbi dbi)
{
    MDB_cursor *cur;
    MDB_val k, v, empty = {0, (void *)""};
    uint8_t keys[16][AGENDA_KEY_MAX];
    size_t lens[16], n = 0;
    /* collect first: a put moves the page the cursor's key points into */
    assert_int_equal(mdb_cursor_open(txn, dbi, &cur), 0);
    while (mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0) {
        assert_true(n < 16 && k.mv_size <= AGENDA_KEY_MAX);
        memcpy(keys[n], k.mv_data, k.mv_size);
        lens[n++] = k.mv_size;
    }
    mdb_cursor_close(cur);
    assert_true(n > 0);
    for (size_t i = 0; i < n; i++) {
        MDB_val key = {lens[i], keys[i]};
        assert_int_equal(mdb_put(txn, dbi, &key, &empty, 0), 0);
    }
}

/* A shard written between the binary audit head and the format key (the
 * values of format 2, no format key) opens: it is taken for format 1,
 * and upgrading it changes nothing. */
static void test_format_2_without_its_key_opens(void **state)
{
    (void)state;
    struct agenda_fx *fx = new_shard();
    expect(fx, create(fx, ALICE, "alice", 1, T0, T0 + HOUR,
                      ",\"participants\":[\"bob\"]"),
           201, "");
    MDB_txn *txn;
    MDB_val fk = {6, (void *)"format"}, v;
    char before[65], after[65];
    agenda_fx_digest(fx, before);
    assert_int_equal(mdb_txn_begin(fx->env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_del(txn, fx->sm.db.meta, &fk, NULL), 0);
    assert_int_equal(agenda_sm_ops.open(&fx->sm, txn), 0);
    assert_int_equal(mdb_get(txn, fx->sm.db.meta, &fk, &v), 0);
    assert_int_equal(agenda_key_u64_decode(v.mv_data), 3);
    assert_int_equal(mdb_txn_commit(txn), 0);
    agenda_fx_digest(fx, after);
    assert_string_equal(before, after);

    check_indexes(fx);
    expect(fx, run(fx, ADMIN, "audit.verify", "{}"), 200, "");
    json_t *b = body(fx);
    assert_true(json_is_true(json_object_get(b, "ok")));
    json_decref(b);
    expect(fx, create(fx, ALICE, "alice", 2, T0, T0 + HOUR,
                      ",\"conflict_policy\":\"reject\""),
           409, "double_booked");
    agenda_fx_free(fx);
}

/* A shard written by a format-1 agent (empty index values, JSON audit
 * head, no format key) is upgraded when opened, and then works. */
static void test_format_1_is_upgraded_on_open(void **state)
{
    (void)state;
    struct agenda_fx *fx = new_shard();
    expect(fx, create(fx, ALICE, "alice", 1, T0, T0 + HOUR,
                      ",\"participants\":[\"bob\"]"),
           201, "");
    expect(fx, create(fx, ALICE, "alice", 2, T0 + DAY, T0 + DAY + HOUR, ""),
           201, "");
    expect(fx, run(fx, ADMIN, "audit.verify", "{}"), 200, "");
    json_t *b = body(fx);
    const char *head_hash = json_string_value(json_object_get(b, "head"));
    json_int_t records = json_integer_value(json_object_get(b, "records"));
    char old_head[160];
    snprintf(old_head, sizeof(old_head), "{\"hash\":\"%s\",\"seq\":%lld}",
             head_hash, (long long)records);
    json_decref(b);

    MDB_txn *txn;
    MDB_val fk = {6, (void *)"format"}, hk = {10, (void *)"audit_head"};
    MDB_val hv = {strlen(old_head), old_head};
    assert_int_equal(mdb_txn_begin(fx->env, NULL, 0, &txn), 0);
    empty_values(txn, fx->sm.db.ev_by_cal);
    empty_values(txn, fx->sm.db.ev_by_part);
    assert_int_equal(mdb_put(txn, fx->sm.db.meta, &hk, &hv, 0), 0);
    assert_int_equal(mdb_del(txn, fx->sm.db.meta, &fk, NULL), 0);
    char why[256];
    assert_int_equal(
        agenda_events_check_indexes(txn, &fx->sm.db, why, sizeof(why)), 1);
    /* reopened, as at start or after a snapshot install */
    assert_int_equal(agenda_sm_ops.open(&fx->sm, txn), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);

    check_indexes(fx);
    expect(fx, run(fx, ADMIN, "audit.verify", "{}"), 200, "");
    b = body(fx);
    assert_true(json_is_true(json_object_get(b, "ok")));
    json_decref(b);
    /* the upgraded indexes serve a conflict check and a new command */
    expect(fx, run(fx, BOB, "event.freebusy",
                   "{\"user\":\"alice\",\"from\":\"%s\",\"to\":\"%s\"}",
                   ts(T0), ts(T0 + 2 * DAY)),
           200, "");
    b = body(fx);
    assert_int_equal(json_array_size(json_object_get(b, "busy")), 2);
    json_decref(b);
    expect(fx, create(fx, ALICE, "alice", 3, T0, T0 + HOUR,
                      ",\"conflict_policy\":\"reject\""),
           409, "double_booked");
    expect(fx, run(fx, ADMIN, "audit.verify", "{}"), 200, "");
    b = body(fx);
    assert_true(json_is_true(json_object_get(b, "ok")));
    assert_int_equal(json_integer_value(json_object_get(b, "records")),
                     records + 1); /* the refused create */
    json_decref(b);

    /* a format from a newer agent is refused, not misread */
    uint8_t future[8];
    agenda_key_u64(future, 4);
    MDB_val fv = {8, future};
    assert_int_equal(mdb_txn_begin(fx->env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_put(txn, fx->sm.db.meta, &fk, &fv, 0), 0);
    assert_int_equal(agenda_sm_ops.open(&fx->sm, txn), MDB_VERSION_MISMATCH);
    mdb_txn_abort(txn);
    agenda_fx_free(fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_and_get),
        cmocka_unit_test(test_purge_empties_a_group_calendar),
        cmocka_unit_test(test_format_1_is_upgraded_on_open),
        cmocka_unit_test(test_format_2_without_its_key_opens),
        cmocka_unit_test(test_create_validation),
        cmocka_unit_test(test_create_limits),
        cmocka_unit_test(test_authorization),
        cmocka_unit_test(test_wrong_shard),
        cmocka_unit_test(test_versions_and_retry),
        cmocka_unit_test(test_update_participants),
        cmocka_unit_test(test_double_booking),
        cmocka_unit_test(test_range_boundaries),
        cmocka_unit_test(test_paging),
        cmocka_unit_test(test_all_day),
        cmocka_unit_test(test_all_day_in_its_time_zone),
        cmocka_unit_test(test_group_calendar),
        cmocka_unit_test(test_answers_to_private_group_events_are_anonymous),
        cmocka_unit_test(test_freebusy),
        cmocka_unit_test(test_pages_end_before_a_mebibyte),
        cmocka_unit_test(test_large_calendar),
        cmocka_unit_test(test_random_sequences),
        cmocka_unit_test(test_check_detects_damage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

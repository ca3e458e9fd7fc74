/*
 * events.c — events, invitations and free/busy on an events shard.
 *
 * A calendar is a username (its owner's) or "g:" + group id (a group's,
 * written by its leaders).  An event lives in one calendar and lists its
 * participants with their responses; invitations are those participant
 * lists, so every write touches only the shard of the event's calendar.
 *
 * Who may do what (c->actor; cal_role counts only on group calendars, so a
 * wrong calendar_role from the edge never opens a personal calendar):
 *
 *   write (create, update, delete)  the owner, or a group leader
 *   read a calendar (list)          writers, group members, admins; others
 *                                   get 403 (calendar ids are not secret,
 *                                   so refusing says nothing new)
 *   see an event (get)              readers of its calendar, participants;
 *                                   others get 404, as for a missing event
 *   answer (rsvp)                   a participant, for themselves; 403 for
 *                                   others who can see the event, else 404
 *   full view of a private event    writers, participants, its creator;
 *                                   everyone else who can see it (group
 *                                   members, admins) gets busy time only
 *   list_participant                the user themselves, admins
 *   freebusy                        any authenticated actor; no titles
 *   purge a group calendar          the edge (role system), once the group
 *                                   is deleted; the shard's leader finishes
 *                                   what the edge left (calendar.purging)
 *
 * Busy time: for free/busy, every event of the user's own calendar and
 * their participations answered "accepted" or "tentative" (tentative is
 * busy, as in iCalendar's BUSY-TENTATIVE; "needs_action" and "declined"
 * are not).  For double-booking, everything except declined participations
 * counts: an unanswered invitation is a likely commitment.
 */
#include "agenda.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event_index.h"
#include "event_render.h"
#include "json_text.h"
#include "render.h"
#include "validate.h"

/* A paging cursor is an index key tail in hex. */
#define CURSOR_HEX_MAX (2 * AGENDA_KEY_MAX)

/* Return from a handler step when it failed or answered an error. */
#define TRY(c, expr)                                                          \
    do {                                                                      \
        int try_rc_ = (expr);                                                 \
        if (try_rc_ != 0)                                                     \
            return try_rc_;                                                   \
        if (agenda_failed(c))                                                 \
            return 0;                                                         \
    } while (0)

/* ---- who may do what ----------------------------------------------------- */

static bool in_shard(const struct agenda_ctx *c, const char *cal)
{
    const char *from = c->shard->range_from ? c->shard->range_from : "";
    const char *to = c->shard->range_to ? c->shard->range_to : "";
    return strcmp(cal, from) >= 0 && (to[0] == '\0' || strcmp(cal, to) < 0);
}

static bool is_group(const char *cal)
{
    return agenda_calendar_is_group(cal);
}

static bool can_write(const struct agenda_ctx *c, const char *cal)
{
    if (c->actor.user[0] == '\0')
        return false;
    if (is_group(cal))
        return c->actor.cal_role == AGENDA_CAL_LEADER;
    return strcmp(c->actor.user, cal) == 0;
}

static bool can_read_calendar(const struct agenda_ctx *c, const char *cal)
{
    return can_write(c, cal) || agenda_actor_is_admin(c) ||
           (is_group(cal) && c->actor.user[0] != '\0' &&
            c->actor.cal_role >= AGENDA_CAL_MEMBER);
}

/* The user's response to the event, or NULL when not a participant. */
static const char *response_of(const json_t *ev, const char *user)
{
    if (user[0] == '\0')
        return NULL;
    return json_string_value(
        json_object_get(json_object_get(ev, "participants"), user));
}

static bool can_see(const struct agenda_ctx *c, const char *cal,
                    const json_t *ev)
{
    return can_read_calendar(c, cal) ||
           response_of(ev, c->actor.user) != NULL;
}

/* Whether the actor (who can see ev) sees all of it or busy time only. */
static bool full_view(const struct agenda_ctx *c, const char *cal,
                      const json_t *ev)
{
    const char *vis = json_string_value(json_object_get(ev, "visibility"));
    const char *creator = json_string_value(json_object_get(ev, "creator"));
    if (vis == NULL || strcmp(vis, "private") != 0)
        return true;
    return can_write(c, cal) || response_of(ev, c->actor.user) != NULL ||
           (creator != NULL && c->actor.user[0] != '\0' &&
            strcmp(creator, c->actor.user) == 0);
}

/* ---- arguments ----------------------------------------------------------- */

/* The calendar argument: valid (400) and served here (421). */
static bool arg_calendar(struct agenda_ctx *c, const char **cal)
{
    if (!agenda_arg_str(c, "calendar", true, cal))
        return false;
    /* A personal calendar is named by its owner, and usernames are
     * case-insensitive: fold it like every other username. */
    char folded[AGENDA_USERNAME_MAX + 1];
    if (!agenda_calendar_is_group(*cal) &&
        agenda_username_fold(*cal, folded) == 0 && strcmp(folded, *cal) != 0) {
        if (json_object_set_new(c->args, "calendar", json_string(folded)))
            return agenda_fail(c, 500, "internal", "out of memory"), false;
        *cal = json_string_value(json_object_get(c->args, "calendar"));
    }
    if (!agenda_calendar_valid(*cal)) {
        agenda_fail(c, 400, "invalid_calendar",
                    "'calendar' must be a username or \"g:\" followed by a "
                    "group id");
        return false;
    }
    if (!in_shard(c, *cal)) {
        agenda_fail(c, 421, "wrong_shard",
                    "calendar '%s' is not stored on this shard; route the "
                    "request by its calendar", *cal);
        return false;
    }
    return true;
}

static bool arg_event_id(struct agenda_ctx *c, const char **id)
{
    if (!agenda_arg_str(c, "id", true, id))
        return false;
    if (!agenda_hex_id_valid(*id, AGENDA_EVENT_ID_LEN)) {
        agenda_fail(c, 400, "invalid_id",
                    "'id' must be %d lowercase hex digits",
                    AGENDA_EVENT_ID_LEN);
        return false;
    }
    return true;
}

/* conflict_policy: "allow" (default) or "reject". */
static bool arg_policy(struct agenda_ctx *c, bool *reject)
{
    const char *s;
    *reject = false;
    if (!agenda_arg_str(c, "conflict_policy", false, &s))
        return !agenda_failed(c);
    if (strcmp(s, "reject") != 0 && strcmp(s, "allow") != 0) {
        agenda_fail(c, 400, "invalid_conflict_policy",
                    "'conflict_policy' must be \"allow\" or \"reject\"");
        return false;
    }
    *reject = strcmp(s, "reject") == 0;
    return true;
}

/* from/to: RFC 3339, to > from, at most AGENDA_RANGE_MAX_MS apart. */
static bool arg_window(struct agenda_ctx *c, int64_t *from, int64_t *to)
{
    const char *s[2];
    static const char *const keys[2] = {"from", "to"};
    int64_t *out[2] = {from, to};
    for (int i = 0; i < 2; i++) {
        if (!agenda_arg_str(c, keys[i], true, &s[i]))
            return false;
        if (agenda_time_parse(s[i], out[i]) != 0) {
            agenda_fail(c, 400, "invalid_time",
                        "'%s' must be an RFC 3339 date-time with an offset, "
                        "like 2026-11-27T09:30:00Z", keys[i]);
            return false;
        }
    }
    if (*to <= *from) {
        agenda_fail(c, 422, "invalid_range", "'to' must be after 'from'");
        return false;
    }
    if (*to - *from > AGENDA_RANGE_MAX_MS) {
        agenda_fail(c, 413, "range_too_large",
                    "a window is limited to %lld days; ask page by page",
                    AGENDA_RANGE_MAX_MS / 86400000LL);
        return false;
    }
    return true;
}

static int hex_value(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

/* cursor (optional, opaque: a key tail in hex) and limit. */
static bool arg_paging(struct agenda_ctx *c, uint8_t *cursor,
                       size_t *cursor_len, size_t *limit)
{
    const char *s;
    int64_t n;
    *cursor_len = 0;
    *limit = AGENDA_PAGE_DEFAULT;
    if (agenda_arg_str(c, "cursor", false, &s)) {
        size_t len = strlen(s);
        bool ok = len > 0 && len % 2 == 0 && len <= CURSOR_HEX_MAX;
        for (size_t i = 0; ok && i < len; i += 2) {
            int hi = hex_value(s[i]), lo = hex_value(s[i + 1]);
            ok = hi >= 0 && lo >= 0;
            cursor[i / 2] = (uint8_t)(hi * 16 + lo);
        }
        if (!ok) {
            agenda_fail(c, 400, "invalid_cursor",
                        "'cursor' must be a next_cursor from an earlier "
                        "answer");
            return false;
        }
        *cursor_len = len / 2;
    } else if (agenda_failed(c)) {
        return false;
    }
    if (agenda_arg_int(c, "limit", false, &n)) {
        if (n < 1 || n > AGENDA_PAGE_MAX) {
            agenda_fail(c, 400, "invalid_limit",
                        "'limit' must be between 1 and %d", AGENDA_PAGE_MAX);
            return false;
        }
        *limit = (size_t)n;
    }
    return !agenda_failed(c);
}

/*
 * after {start, calendar, id} (optional, instead of cursor): resume
 * strictly after that item of this list, start in ms.  The edge merges
 * the walks of several owners and shards and shows a prefix of each
 * (agenda_flow_fanout.c): it resumes each walk after the last item it
 * showed, which is not where the walk's own page ended.  The cursor bytes
 * are the item's index key after its owner, as next_cursor's are.
 */
static bool arg_after(struct agenda_ctx *c, enum agenda_ev_index which,
                      const char *owner, uint8_t *cursor, size_t *cursor_len)
{
    json_t *a = agenda_arg_json(c, "after");
    if (a == NULL)
        return true;
    json_t *st = json_object_get(a, "start");
    const char *cal = json_string_value(json_object_get(a, "calendar"));
    const char *id = json_string_value(json_object_get(a, "id"));
    json_int_t ms = json_integer_value(st);
    struct agenda_key k;
    size_t skip = strlen(owner) + 1;
    bool ok = *cursor_len == 0 && json_is_object(a) &&
              json_object_size(a) == 3 && json_is_integer(st) &&
              ms >= AGENDA_TIME_MIN_MS && ms <= AGENDA_TIME_MAX_MS &&
              cal != NULL && agenda_calendar_valid(cal) && id != NULL &&
              agenda_hex_id_valid(id, AGENDA_EVENT_ID_LEN) &&
              (which == AGENDA_EV_BY_PART || strcmp(cal, owner) == 0);
    if (ok) {
        if (which == AGENDA_EV_BY_CAL)
            agenda_evkey_cal(&k, owner, ms, id);
        else
            agenda_evkey_part(&k, owner, ms, cal, id);
        ok = !k.bad && k.len > skip && k.len - skip <= AGENDA_KEY_MAX;
    }
    if (!ok) {
        agenda_fail(c, 400, "invalid_cursor",
                    "'after' must be {start (ms), calendar, id} of an item "
                    "of this list, without 'cursor'");
        return false;
    }
    memcpy(cursor, k.b + skip, k.len - skip);
    *cursor_len = k.len - skip;
    return true;
}

/* ---- event fields -------------------------------------------------------- */

static int set_str(json_t *obj, const char *key, const char *s)
{
    return json_object_set_new(obj, key, json_string(s)) == 0 ? 0 : ENOMEM;
}

static int set_int(json_t *obj, const char *key, int64_t v)
{
    return json_object_set_new(obj, key, json_integer((json_int_t)v)) == 0
               ? 0
               : ENOMEM;
}

/* A text field: well-formed (400 invalid_text), within max (413). */
static int set_text(struct agenda_ctx *c, json_t *ev, const char *key,
                    bool required, size_t max, bool multiline,
                    bool allow_empty)
{
    const char *s;
    if (!agenda_arg_str(c, key, required, &s))
        return 0;
    if (!agenda_text_valid(s, SIZE_MAX, multiline, allow_empty)) {
        agenda_fail(c, 400, "invalid_text",
                    "'%s' must be %sUTF-8 text without control characters%s",
                    key, allow_empty ? "" : "non-blank ",
                    multiline ? " (newlines and tabs are allowed)" : "");
        return 0;
    }
    if (!agenda_text_valid(s, max, multiline, allow_empty)) {
        agenda_fail(c, 413, "too_long", "'%s' is limited to %zu characters",
                    key, max);
        return 0;
    }
    return set_str(ev, key, s);
}

/* start or end: a date for all-day events, else an RFC 3339 instant. */
static int set_time(struct agenda_ctx *c, json_t *ev, const char *key,
                    bool all_day, bool required, bool *given)
{
    const char *s;
    int64_t ms;
    *given = false;
    if (!agenda_arg_str(c, key, required, &s))
        return 0;
    if (all_day ? agenda_date_parse(s, &ms) != 0
                : agenda_time_parse(s, &ms) != 0) {
        if (all_day)
            agenda_fail(c, 400, "invalid_date",
                        "'%s' of an all-day event must be a date like "
                        "2026-11-27 (the end is exclusive)", key);
        else
            agenda_fail(c, 400, "invalid_time",
                        "'%s' must be an RFC 3339 date-time with an offset, "
                        "like 2026-11-27T09:30:00Z", key);
        return 0;
    }
    *given = true;
    return set_int(ev, key, ms);
}

/* participants: usernames, unique, at most AGENDA_PARTICIPANTS_MAX, never
 * the owner; kept ones keep their response, new ones need action. */
static int set_participants(struct agenda_ctx *c, json_t *ev,
                            const char *cal)
{
    json_t *list = agenda_arg_json(c, "participants");
    if (list == NULL)
        return 0;
    if (!json_is_array(list)) {
        agenda_fail(c, 400, "invalid_field",
                    "'participants' must be an array of usernames");
        return 0;
    }
    if (json_array_size(list) > AGENDA_PARTICIPANTS_MAX) {
        agenda_fail(c, 413, "too_many_participants",
                    "an event may have at most %d participants",
                    AGENDA_PARTICIPANTS_MAX);
        return 0;
    }
    json_t *old = json_object_get(ev, "participants");
    json_t *now = json_object();
    if (now == NULL)
        return ENOMEM;
    size_t i;
    json_t *item;
    json_array_foreach(list, i, item) {
        char user[AGENDA_USERNAME_MAX + 1];
        if (!json_is_string(item) ||
            strlen(json_string_value(item)) != json_string_length(item) ||
            agenda_username_fold(json_string_value(item), user) != 0) {
            agenda_fail(c, 400, "invalid_participant",
                        "participant %zu is not a username (%d to %d of "
                        "a-z, 0-9, '_', '.', '-')", i, AGENDA_USERNAME_MIN,
                        AGENDA_USERNAME_MAX);
            break;
        }
        if (json_object_get(now, user) != NULL) {
            agenda_fail(c, 400, "duplicate_participant",
                        "participant '%s' is listed twice", user);
            break;
        }
        if (!is_group(cal) && strcmp(user, cal) == 0) {
            agenda_fail(c, 422, "owner_is_participant",
                        "'%s' owns the calendar; list only the others", user);
            break;
        }
        json_t *r = json_object_get(old, user);
        if (set_str(now, user, json_is_string(r) ? json_string_value(r)
                                                  : "needs_action") != 0) {
            json_decref(now);
            return ENOMEM;
        }
    }
    if (agenda_failed(c)) {
        json_decref(now);
        return 0;
    }
    return json_object_set_new(ev, "participants", now) == 0 ? 0 : ENOMEM;
}

/* at is within a day and two hours of the date (its UTC midnight), as
 * the start of that date is in any time zone, and within the times an
 * event may have. */
static bool day_start_near(int64_t date_ms, int64_t at)
{
    const int64_t slack = 26 * 3600 * 1000LL;
    return at >= date_ms - slack && at <= date_ms + slack &&
           at >= AGENDA_TIME_MIN_MS && at <= AGENDA_TIME_MAX_MS + 1;
}

/*
 * start_at and end_at: the instants an all-day event occupies, the first
 * instants of its start and end dates in its time zone.  The edge
 * computes them from its tz database and the command carries them: the
 * replicas of a shard may run with different tzdata, and every one must
 * store the same event.  An all-day event without them occupies its
 * dates' UTC midnights (as every one did before they existed).  They stay
 * while neither the dates, the time zone nor all_day change (moved), and
 * go when one does without new ones.
 */
static int set_day_span(struct agenda_ctx *c, json_t *ev, bool all_day,
                        bool moved)
{
    int64_t start_at = 0, end_at = 0;
    bool has_start = agenda_arg_int(c, "start_at", false, &start_at);
    if (agenda_failed(c))
        return 0;
    bool has_end = agenda_arg_int(c, "end_at", false, &end_at);
    if (agenda_failed(c))
        return 0;
    if (has_start != has_end)
        return agenda_fail(c, 400, "missing_field",
                           "'start_at' and 'end_at' go together");
    if (!has_start) {
        if (moved || !all_day) {
            json_object_del(ev, "start_at");
            json_object_del(ev, "end_at");
        }
        return 0;
    }
    if (!all_day)
        return agenda_fail(c, 400, "invalid_field",
                           "'start_at' and 'end_at' are for all-day events");
    if (!day_start_near(json_integer_value(json_object_get(ev, "start")),
                        start_at) ||
        !day_start_near(json_integer_value(json_object_get(ev, "end")),
                        end_at))
        return agenda_fail(c, 400, "invalid_field",
                           "'start_at' and 'end_at' must be instants within "
                           "26 hours of the dates 'start' and 'end'");
    TRY(c, set_int(ev, "start_at", start_at));
    return set_int(ev, "end_at", end_at);
}

/*
 * Merge the event fields of c->args into ev (a new record when creating,
 * else a copy of the stored one) and check the result as a whole.  Returns
 * 0 with an error answer set on invalid input, or ENOMEM.
 */
static int set_fields(struct agenda_ctx *c, json_t *ev, const char *cal,
                      bool creating)
{
    TRY(c, set_text(c, ev, "title", creating, AGENDA_TITLE_MAX, false,
                    false));
    TRY(c, set_text(c, ev, "description", false, AGENDA_DESCRIPTION_MAX,
                    true, true));
    TRY(c, set_text(c, ev, "location", false, AGENDA_LOCATION_MAX, false,
                    true));

    bool was_all_day = json_is_true(json_object_get(ev, "all_day"));
    bool all_day = was_all_day;
    if (agenda_arg_bool(c, "all_day", false, &all_day))
        TRY(c, json_object_set_new(ev, "all_day", json_boolean(all_day)) == 0
                   ? 0
                   : ENOMEM);
    else if (agenda_failed(c))
        return 0;
    bool start_given, end_given;
    TRY(c, set_time(c, ev, "start", all_day, creating, &start_given));
    TRY(c, set_time(c, ev, "end", all_day, creating, &end_given));
    if (all_day != was_all_day && (!start_given || !end_given))
        return agenda_fail(c, 400, "missing_field",
                           "changing all_day needs both start and end, as "
                           "%s", all_day ? "dates" : "date-times");

    const char *s;
    bool zone_given = false;
    if (agenda_arg_str(c, "time_zone", creating, &s)) {
        if (!agenda_tz_valid(s))
            return agenda_fail(c, 400, "invalid_time_zone",
                               "'time_zone' must be an IANA time zone name "
                               "like Europe/Madrid or UTC");
        TRY(c, set_str(ev, "time_zone", s));
        zone_given = true;
    } else if (agenda_failed(c)) {
        return 0;
    }
    TRY(c, set_day_span(c, ev, all_day,
                        start_given || end_given || zone_given ||
                            all_day != was_all_day));
    if (agenda_arg_str(c, "visibility", false, &s)) {
        if (agenda_visibility_parse(s) == 0)
            return agenda_fail(c, 400, "invalid_visibility",
                               "'visibility' must be \"default\" or "
                               "\"private\"");
        TRY(c, set_str(ev, "visibility", s));
    } else if (agenda_failed(c)) {
        return 0;
    }
    TRY(c, set_participants(c, ev, cal));
    if (creating) {
        if (agenda_arg_str(c, "group", false, &s)) {
            if (!agenda_hex_id_valid(s, AGENDA_GROUP_ID_LEN))
                return agenda_fail(c, 400, "invalid_group",
                                   "'group' must be %d lowercase hex digits",
                                   AGENDA_GROUP_ID_LEN);
            if (!is_group(cal) || strcmp(s, cal + 2) != 0)
                return agenda_fail(c, 422, "group_mismatch",
                                   "'group' must be the group whose calendar "
                                   "this is; omit it");
        } else if (agenda_failed(c)) {
            return 0;
        }
        if (is_group(cal))
            TRY(c, set_str(ev, "group", cal + 2));
    }

    int64_t start = agenda_ev_start(ev), end = agenda_ev_end(ev);
    if (end <= start || json_integer_value(json_object_get(ev, "end")) <=
                            json_integer_value(json_object_get(ev, "start")))
        return agenda_fail(c, 422, "end_before_start",
                           "the event must end after it starts");
    if (end - start > AGENDA_EVENT_DURATION_MAX_MS)
        return agenda_fail(c, 422, "duration_too_long",
                           "an event may last at most %lld days",
                           AGENDA_EVENT_DURATION_MAX_MS / 86400000LL);
    return 0;
}

/* ---- conflicts ----------------------------------------------------------- */

struct conflict_walk {
    const struct agenda_ctx *c;
    json_t *list;
    const char *self_cal;
    const char *self_id;
    const char *who;
    bool participation;   /* walking who's invitations: skip declined */
    bool truncated;
};

/*
 * Whether the actor may know which event h is: one of the actor's own
 * calendar, one the actor is invited to, one of the calendar the event
 * being written is on when the actor may read it (a group's members), or
 * any for admins.  Other people's events are only busy time, as free/busy
 * shows them: naming their calendar (who meets whom) and id (its creation
 * time) would tell more than the actor may see.
 */
static bool conflict_known(const struct conflict_walk *w,
                           const struct agenda_ev_hit *h)
{
    const struct agenda_ctx *c = w->c;
    return agenda_actor_is_admin(c) ||
           (c->actor.user[0] != '\0' &&
            (strcmp(h->calendar, c->actor.user) == 0 ||
             (w->participation && strcmp(w->who, c->actor.user) == 0))) ||
           (strcmp(h->calendar, w->self_cal) == 0 &&
            can_read_calendar(c, h->calendar));
}

/*
 * When the conflicting event h happens, into o: instants, or an all-day
 * event's dates (the days of its own time zone, the end exclusive), which
 * its index entry does not hold (it holds the instants those days occupy)
 * and its record does.
 */
static int conflict_times(const struct agenda_ctx *c,
                          const struct agenda_ev_hit *h, json_t *o)
{
    json_t *ev;

    if (!h->all_day)
        return agenda_render_time(o, "start", h->start) != 0 ||
                       agenda_render_time(o, "end", h->end) != 0
                   ? ENOMEM
                   : 0;
    int rc = agenda_ev_load(c->txn, c->db, h->calendar, h->id, &ev);
    if (rc != 0)
        return rc == MDB_NOTFOUND ? MDB_CORRUPTED : rc;
    if (agenda_ev_render_instant(
            o, "start", json_integer_value(json_object_get(ev, "start")),
            true) != 0 ||
        agenda_ev_render_instant(
            o, "end", json_integer_value(json_object_get(ev, "end")),
            true) != 0)
        rc = ENOMEM;
    json_decref(ev);
    return rc;
}

static int conflict_visit(void *arg, const struct agenda_ev_hit *h)
{
    struct conflict_walk *w = arg;
    if (strcmp(h->calendar, w->self_cal) == 0 &&
        strcmp(h->id, w->self_id) == 0)
        return 0;
    if (w->participation && strcmp(h->response, "declined") == 0)
        return 0;
    if (json_array_size(w->list) >= AGENDA_CONFLICTS_MAX) {
        w->truncated = true;
        return 1;
    }
    json_t *o = conflict_known(w, h)
                    ? json_pack("{s:s,s:s,s:s}", "calendar", h->calendar,
                                "id", h->id, "who", w->who)
                    : json_pack("{s:s}", "who", w->who);
    int rc = o == NULL ? ENOMEM : conflict_times(w->c, h, o);
    if (rc != 0) {
        json_decref(o);
        return rc;
    }
    if (json_array_append(w->list, o) != 0) {
        json_decref(o);
        return ENOMEM;
    }
    json_decref(o);
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * The events overlapping ev (itself excluded) that keep someone it
 * concerns busy: the owner of a personal calendar and every participant
 * who has not declined ev; for each, their own calendar when it is on this
 * shard and the invitations they have not declined.  At most
 * AGENDA_CONFLICTS_MAX, in a deterministic order (owner, then participants
 * by name).  Only times are reported, never titles, and the calendar and
 * id only of events the actor may know (conflict_known).
 */
static int find_conflicts(struct agenda_ctx *c, const json_t *ev,
                          json_t **out, bool *truncated)
{
    const char *cal = json_string_value(json_object_get(ev, "calendar"));
    struct conflict_walk w = {
        .c = c,
        .list = json_array(),
        .self_cal = cal,
        .self_id = json_string_value(json_object_get(ev, "id")),
    };
    const char *people[AGENDA_PARTICIPANTS_MAX + 1];
    size_t n = 0;
    const char *user;
    json_t *r;
    json_object_foreach(json_object_get(ev, "participants"), user, r) {
        if (n < AGENDA_PARTICIPANTS_MAX &&
            strcmp(json_string_value(r), "declined") != 0)
            people[n++] = user;
    }
    qsort(people, n, sizeof(people[0]), cmp_str);
    if (!is_group(cal)) {
        memmove(people + 1, people, n * sizeof(people[0]));
        people[0] = cal;
        n++;
    }
    int64_t from = agenda_ev_start(ev), to = agenda_ev_end(ev);
    int rc = w.list == NULL ? ENOMEM : 0;
    for (size_t i = 0; i < n && rc == 0 && !w.truncated; i++) {
        w.who = people[i];
        if (agenda_calendar_valid(people[i]) && in_shard(c, people[i])) {
            w.participation = false;
            rc = agenda_ev_walk_index(c->txn, c->db, AGENDA_EV_BY_CAL,
                                      people[i], from, to, conflict_visit,
                                      &w);
        }
        if (rc == 0 && !w.truncated) {
            w.participation = true;
            rc = agenda_ev_walk_index(c->txn, c->db, AGENDA_EV_BY_PART,
                                      people[i], from, to, conflict_visit,
                                      &w);
        }
    }
    if (rc != 0) {
        json_decref(w.list);
        return rc;
    }
    *out = w.list;
    *truncated = w.truncated;
    return 0;
}

/* 409 double_booked carrying the conflicts (stolen), inside the error
 * object like every other error detail. */
static int fail_double_booked(struct agenda_ctx *c, json_t *conflicts,
                              bool truncated)
{
    json_t *body = json_pack(
        "{s:{s:s,s:s,s:o,s:b}}", "error", "code", "double_booked", "message",
        "the event overlaps events of the people it concerns (listed in "
        "conflicts); move it, or send conflict_policy \"allow\"",
        "conflicts", conflicts, "conflicts_truncated", truncated);
    if (body == NULL)
        return ENOMEM;
    return agenda_reply(c, 409, body);
}

/* ---- storage and change feed --------------------------------------------- */

static int put_event(struct agenda_ctx *c, const json_t *ev)
{
    struct agenda_key k;
    agenda_evkey_event(&k,
                       json_string_value(json_object_get(ev, "calendar")),
                       json_string_value(json_object_get(ev, "id")));
    return agenda_put_json(c, c->db->events, agenda_key_val(&k), ev);
}

/*
 * Append a change about ev to the feed of kind:name ("calendar", "user").
 * The change carries the ids and version only — never titles — since a
 * calendar's feed is read by members who may see busy time only; clients
 * fetch the event.  extra_key/extra (may be NULL) add one string field.
 */
static int feed_as(struct agenda_ctx *c, const char *actor,
                   const char *kind, const char *name, const char *type,
                   const json_t *ev, const char *extra_key,
                   const char *extra)
{
    const char *cal = json_string_value(json_object_get(ev, "calendar"));
    const char *id = json_string_value(json_object_get(ev, "id"));
    const json_t *version = json_object_get(ev, "version");
    /* {"calendar","id",extra_key?,"version"} written directly, keys in
     * sorted order: extra_key ("response", "user") sorts between */
    if (cal == NULL || id == NULL || !json_is_integer(version) ||
        (extra_key != NULL &&
         (extra == NULL || strcmp(extra_key, "id") <= 0 ||
          strcmp(extra_key, "version") >= 0)))
        return EINVAL;
    char target[AGENDA_CALENDAR_MAX + 16];
    char object[AGENDA_CALENDAR_MAX + AGENDA_EVENT_ID_LEN + 8];
    snprintf(target, sizeof(target), "%s:%s", kind, name);
    snprintf(object, sizeof(object), "%s/%s", cal, id);
    struct agenda_buf data = {0};
    bool ok =
        agenda_buf_append(&data, "{", 1) == 0 &&
        agenda_json_text_key(&data, "calendar") == 0 &&
        agenda_json_text_str(&data, cal) == 0 &&
        agenda_buf_append(&data, ",", 1) == 0 &&
        agenda_json_text_key(&data, "id") == 0 &&
        agenda_json_text_str(&data, id) == 0 &&
        (extra_key == NULL ||
         (agenda_buf_append(&data, ",", 1) == 0 &&
          agenda_json_text_key(&data, extra_key) == 0 &&
          agenda_json_text_str(&data, extra) == 0)) &&
        agenda_buf_append(&data, ",", 1) == 0 &&
        agenda_json_text_key(&data, "version") == 0 &&
        agenda_json_text_int(&data, json_integer_value(version)) == 0 &&
        agenda_buf_append(&data, "}", 1) == 0 &&
        agenda_buf_append(&data, "", 1) == 0;
    int rc = ok ? agenda_feed_append_text_as(c, actor, target, type, object,
                                             (const char *)data.data)
                : ENOMEM;
    agenda_buf_free(&data);
    return rc;
}

/* feed_as() naming the command's actor. */
static int feed(struct agenda_ctx *c, const char *kind, const char *name,
                const char *type, const json_t *ev, const char *extra_key,
                const char *extra)
{
    return feed_as(c, c->actor.user, kind, name, type, ev, extra_key, extra);
}

static void set_audit_object(struct agenda_ctx *c, const char *cal,
                             const char *id)
{
    snprintf(c->audit_object, sizeof(c->audit_object), "event:%s/%s", cal,
             id);
}

/*
 * Load the event named by the calendar and id arguments into *ev (new
 * reference).  *ev is NULL when the answer is set instead (bad arguments,
 * 421, or 404 not_found when it does not exist or the actor may not see
 * it).  Returns 0 or an LMDB error.
 */
static int load_visible(struct agenda_ctx *c, const char **cal,
                        const char **id, json_t **ev)
{
    *ev = NULL;
    if (!arg_calendar(c, cal) || !arg_event_id(c, id))
        return 0;
    if (c->is_command)
        set_audit_object(c, *cal, *id);
    int rc = agenda_ev_load(c->txn, c->db, *cal, *id, ev);
    if (rc == 0 && !can_see(c, *cal, *ev)) {
        json_decref(*ev);
        *ev = NULL;
        rc = MDB_NOTFOUND;
    }
    if (rc == MDB_NOTFOUND) {
        agenda_fail(c, 404, "not_found",
                    "there is no event %s in calendar %s that you can see",
                    *id, *cal);
        return 0;
    }
    return rc;
}

/* Load for a write by the owner or a group leader: 403 for others who
 * can see it, 404 for the rest. */
static int load_writable(struct agenda_ctx *c, const char **cal,
                         const char **id, json_t **ev)
{
    int rc = load_visible(c, cal, id, ev);
    if (rc != 0 || *ev == NULL)
        return rc;
    if (!can_write(c, *cal)) {
        json_decref(*ev);
        *ev = NULL;
        return agenda_fail(c, 403, "forbidden",
                           "only the calendar's owner or a leader of its "
                           "group may change this event");
    }
    return 0;
}

/* expected_version (required or not): 412 when it is not the stored one. */
static bool check_version(struct agenda_ctx *c, const json_t *ev,
                          bool required)
{
    int64_t want;
    if (!agenda_arg_int(c, "expected_version", required, &want))
        return !agenda_failed(c);
    json_int_t have = json_integer_value(json_object_get(ev, "version"));
    if (want != have) {
        agenda_fail(c, 412, "version_mismatch",
                    "the event is at version %lld, not %lld; fetch it again "
                    "and reapply your change", (long long)have,
                    (long long)want);
        return false;
    }
    return true;
}

/* Answer {event, conflicts, conflicts_truncated} of a create or update. */
static int reply_written(struct agenda_ctx *c, int status, const json_t *ev,
                         json_t *conflicts, bool truncated)
{
    json_t *body = json_pack("{s:o,s:o,s:b}", "event",
                             agenda_ev_render(ev, true), "conflicts",
                             conflicts, "conflicts_truncated", truncated);
    if (body == NULL)
        return ENOMEM;
    return agenda_reply_synced(c, status, body);
}

/* ---- commands ------------------------------------------------------------ */

static int ev_create(struct agenda_ctx *c)
{
    static const char *const allowed[] = {
        "calendar", "id", "title", "description", "location", "start",
        "end", "all_day", "time_zone", "participants", "group", "visibility",
        "conflict_policy", "start_at", "end_at", NULL,
    };
    const char *cal, *id;
    bool reject;
    if (!agenda_args_only(c, allowed) || !arg_calendar(c, &cal))
        return 0;
    if (!can_write(c, cal))
        return agenda_fail(c, 403, "forbidden",
                           "only the owner of calendar '%s' (or a leader of "
                           "its group) may add events to it", cal);
    if (!arg_event_id(c, &id))
        return 0;
    set_audit_object(c, cal, id);
    if (!arg_policy(c, &reject))
        return 0;

    json_t *ev = json_pack(
        "{s:s,s:s,s:s,s:s,s:b,s:s,s:{},s:I,s:I,s:I,s:s}", "calendar", cal,
        "id", id, "description", "", "location", "", "all_day", 0,
        "visibility", "default", "participants", "version", (json_int_t)1,
        "created", (json_int_t)c->now_ms, "updated", (json_int_t)c->now_ms,
        "creator", c->actor.user);
    if (ev == NULL)
        return ENOMEM;
    /* start and end are required: placeholders until set_fields */
    int rc = set_int(ev, "start", 0);
    if (rc == 0)
        rc = set_int(ev, "end", 0);
    if (rc == 0)
        rc = set_fields(c, ev, cal, true);
    json_t *conflicts = NULL;
    bool truncated = false;
    if (rc == 0 && !agenda_failed(c)) {
        struct agenda_key k;
        agenda_evkey_event(&k, cal, id);
        MDB_val key = agenda_key_val(&k), v;
        rc = mdb_get(c->txn, c->db->events, &key, &v);
        if (rc == 0)
            agenda_fail(c, 409, "duplicate_id",
                        "calendar %s already has an event %s", cal, id);
        rc = rc == MDB_NOTFOUND ? 0 : rc;
    }
    if (rc == 0 && !agenda_failed(c))
        rc = find_conflicts(c, ev, &conflicts, &truncated);
    if (rc == 0 && !agenda_failed(c) && reject &&
        json_array_size(conflicts) > 0) {
        rc = fail_double_booked(c, conflicts, truncated);
        conflicts = NULL;
    }
    if (rc == 0 && !agenda_failed(c))
        rc = put_event(c, ev);
    if (rc == 0 && !agenda_failed(c))
        rc = agenda_ev_index_add(c->txn, c->db, ev);
    if (rc == 0 && !agenda_failed(c))
        rc = feed(c, "calendar", cal, "event.created", ev, NULL, NULL);
    const char *user;
    json_t *r;
    json_object_foreach(json_object_get(ev, "participants"), user, r) {
        if (rc != 0 || agenda_failed(c))
            break;
        rc = feed(c, "user", user, "invitation.created", ev, "response",
                  json_string_value(r));
    }
    if (rc == 0 && !agenda_failed(c)) {
        rc = reply_written(c, 201, ev, conflicts, truncated);
        conflicts = NULL;
    }
    json_decref(conflicts);
    json_decref(ev);
    return rc;
}

/* Feed the participants of an update: new, kept and removed ones. */
static int feed_participants(struct agenda_ctx *c, const json_t *old,
                             const json_t *next)
{
    json_t *was = json_object_get(old, "participants");
    json_t *now = json_object_get(next, "participants");
    const char *user;
    json_t *r;
    int rc = 0;
    json_object_foreach(now, user, r) {
        if (rc != 0)
            break;
        if (json_object_get(was, user) != NULL)
            rc = feed(c, "user", user, "event.updated", next, NULL, NULL);
        else
            rc = feed(c, "user", user, "invitation.created", next,
                      "response", json_string_value(r));
    }
    json_object_foreach(was, user, r) {
        if (rc != 0)
            break;
        if (json_object_get(now, user) == NULL)
            rc = feed(c, "user", user, "invitation.removed", next, NULL,
                      NULL);
    }
    return rc;
}

static int ev_update(struct agenda_ctx *c)
{
    static const char *const allowed[] = {
        "calendar", "id", "expected_version", "title", "description",
        "location", "start", "end", "all_day", "time_zone", "participants",
        "visibility", "conflict_policy", "start_at", "end_at", NULL,
    };
    const char *cal, *id;
    json_t *ev;
    bool reject;
    if (!agenda_args_only(c, allowed))
        return 0;
    int rc = load_writable(c, &cal, &id, &ev);
    if (rc != 0 || ev == NULL)
        return rc;
    json_t *next = NULL, *conflicts = NULL;
    bool truncated = false;
    if (!check_version(c, ev, true) || !arg_policy(c, &reject))
        goto out;
    next = json_deep_copy(ev);
    if (next == NULL) {
        rc = ENOMEM;
        goto out;
    }
    rc = set_fields(c, next, cal, false);
    if (rc != 0 || agenda_failed(c))
        goto out;
    rc = find_conflicts(c, next, &conflicts, &truncated);
    if (rc != 0)
        goto out;
    if (reject && json_array_size(conflicts) > 0) {
        rc = fail_double_booked(c, conflicts, truncated);
        conflicts = NULL;
        goto out;
    }
    rc = set_int(next, "version", json_integer_value(json_object_get(
                                      ev, "version")) + 1);
    if (rc == 0)
        rc = set_int(next, "updated", c->now_ms);
    /* the keys depend on start and the participants: re-index wholesale */
    if (rc == 0)
        rc = agenda_ev_index_del(c->txn, c->db, ev);
    if (rc == 0)
        rc = put_event(c, next);
    if (rc == 0)
        rc = agenda_ev_index_add(c->txn, c->db, next);
    if (rc == 0)
        rc = feed(c, "calendar", cal, "event.updated", next, NULL, NULL);
    if (rc == 0)
        rc = feed_participants(c, ev, next);
    if (rc == 0) {
        rc = reply_written(c, 200, next, conflicts, truncated);
        conflicts = NULL;
    }
out:
    json_decref(conflicts);
    json_decref(next);
    json_decref(ev);
    return rc;
}

/* Remove the stored event ev (calendar/id) with its index entries, and
 * tell the calendar's and the participants' feeds. */
static int delete_event(struct agenda_ctx *c, const char *cal,
                        const char *id, const json_t *ev)
{
    struct agenda_key k;
    agenda_evkey_event(&k, cal, id);
    MDB_val key = agenda_key_val(&k);
    int rc = mdb_del(c->txn, c->db->events, &key, NULL);
    if (rc == 0)
        rc = agenda_ev_index_del(c->txn, c->db, ev);
    if (rc == 0)
        rc = feed(c, "calendar", cal, "event.deleted", ev, NULL, NULL);
    const char *user;
    json_t *r;
    json_object_foreach(json_object_get(ev, "participants"), user, r) {
        if (rc != 0)
            break;
        rc = feed(c, "user", user, "event.deleted", ev, NULL, NULL);
    }
    return rc;
}

static int ev_delete(struct agenda_ctx *c)
{
    static const char *const allowed[] = {
        "calendar", "id", "expected_version", NULL,
    };
    const char *cal, *id;
    json_t *ev;
    if (!agenda_args_only(c, allowed))
        return 0;
    int rc = load_writable(c, &cal, &id, &ev);
    if (rc != 0 || ev == NULL)
        return rc;
    if (!check_version(c, ev, false)) {
        json_decref(ev);
        return 0;
    }
    rc = delete_event(c, cal, id, ev);
    if (rc == 0) {
        json_t *body = json_pack("{s:s,s:s,s:b,s:O}", "calendar", cal, "id",
                                 id, "deleted", 1, "version",
                                 json_object_get(ev, "version"));
        rc = body == NULL ? ENOMEM : agenda_reply_synced(c, 200, body);
    }
    json_decref(ev);
    return rc;
}

static int ev_rsvp(struct agenda_ctx *c)
{
    static const char *const allowed[] = {
        "calendar", "id", "response", NULL,
    };
    const char *cal, *id, *answer = NULL;
    json_t *ev;
    if (!agenda_args_only(c, allowed))
        return 0;
    int rc = load_visible(c, &cal, &id, &ev);
    if (rc != 0 || ev == NULL)
        return rc;
    const char *was = response_of(ev, c->actor.user);
    if (was == NULL) {
        agenda_fail(c, 403, "forbidden",
                    "only an invited participant may answer an invitation, "
                    "and only for themselves");
    } else if (agenda_arg_str(c, "response", true, &answer)) {
        enum agenda_response r = agenda_response_parse(answer);
        if (r != AGENDA_RESPONSE_ACCEPTED && r != AGENDA_RESPONSE_DECLINED &&
            r != AGENDA_RESPONSE_TENTATIVE)
            agenda_fail(c, 400, "invalid_response",
                        "'response' must be \"accepted\", \"declined\" or "
                        "\"tentative\"");
    }
    if (agenda_failed(c)) {
        json_decref(ev);
        return 0;
    }
    /* answering the same again changes nothing (and feeds nothing); was
     * is the record's string, gone once the answer replaces it */
    bool changed = strcmp(was, answer) != 0;
    if (changed) {
        rc = set_str(json_object_get(ev, "participants"), c->actor.user,
                     answer);
        if (rc == 0)
            rc = set_int(ev, "version", json_integer_value(json_object_get(
                                            ev, "version")) + 1);
        if (rc == 0)
            rc = set_int(ev, "updated", c->now_ms);
        if (rc == 0)
            rc = put_event(c, ev);
        /* same keys, new values: the index carries the response */
        if (rc == 0)
            rc = agenda_ev_index_add(c->txn, c->db, ev);
        /* A group calendar's feed is read by its members, who see
         * private events as busy time only: not who is invited to them,
         * so not who answered. */
        const char *vis =
            json_string_value(json_object_get(ev, "visibility"));
        bool hidden = is_group(cal) && vis != NULL &&
                      strcmp(vis, "private") == 0;
        if (rc == 0 && hidden)
            rc = feed_as(c, "", "calendar", cal, "invitation.responded", ev,
                         NULL, NULL);
        else if (rc == 0)
            rc = feed(c, "calendar", cal, "invitation.responded", ev, "user",
                      c->actor.user);
        if (rc == 0)
            rc = feed(c, "user", c->actor.user, "invitation.responded", ev,
                      "response", answer);
        /* the other participants see everyone's answer in the event: their
         * copies changed too */
        const char *p;
        json_t *r;
        json_object_foreach(json_object_get(ev, "participants"), p, r) {
            if (rc == 0 && strcmp(p, c->actor.user) != 0)
                rc = feed(c, "user", p, "invitation.responded", ev, "user",
                          c->actor.user);
        }
    }
    if (rc == 0) {
        /* changed: false when it was the answer already (nothing fed) */
        json_t *body = json_pack("{s:o,s:s,s:b}", "event",
                                 agenda_ev_render(ev, true), "response",
                                 answer, "changed", changed);
        rc = body == NULL ? ENOMEM : agenda_reply_synced(c, 200, body);
    }
    json_decref(ev);
    return rc;
}

/* The first events of a calendar, at most AGENDA_PURGE_BATCH + 1 (one
 * more says that more remain after this batch). */
struct purge_walk {
    char ids[AGENDA_PURGE_BATCH + 1][AGENDA_EVENT_ID_LEN + 1];
    size_t n;
};

static int purge_visit(void *arg, const struct agenda_ev_hit *h)
{
    struct purge_walk *w = arg;
    if (strlen(h->id) != AGENDA_EVENT_ID_LEN)
        return MDB_CORRUPTED;
    memcpy(w->ids[w->n], h->id, AGENDA_EVENT_ID_LEN + 1);
    return ++w->n == AGENDA_PURGE_BATCH + 1 ? 1 : 0;
}

/* The meta key that says a purge of cal is unfinished: "purging:" + cal.
 * It is set while calendar.purge leaves events behind, and the shard's
 * leader finishes the work (purge_driver.c) when the edge does not: a
 * calendar of more events than the edge purges per request, or an edge
 * stopped half way.  Cleared by the purge that finds nothing more. */
#define PURGING_PREFIX "purging:"

static MDB_val purging_key(char buf[sizeof(PURGING_PREFIX) +
                                    AGENDA_CALENDAR_MAX],
                           const char *cal)
{
    int n = snprintf(buf, sizeof(PURGING_PREFIX) + AGENDA_CALENDAR_MAX,
                     PURGING_PREFIX "%s", cal);
    return (MDB_val){(size_t)n, buf};
}

static int purging_mark(struct agenda_ctx *c, const char *cal, bool more)
{
    char buf[sizeof(PURGING_PREFIX) + AGENDA_CALENDAR_MAX];
    MDB_val k = purging_key(buf, cal), empty = {0, buf};
    if (more)
        return mdb_put(c->txn, c->db->meta, &k, &empty, 0);
    int rc = mdb_del(c->txn, c->db->meta, &k, NULL);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/*
 * calendar.purge {calendar} -> {calendar, deleted, more, sync_token}
 * Deletes the first AGENDA_PURGE_BATCH events of a group calendar whose
 * group is gone, as event.delete would (feeds included); the edge repeats
 * it while more is true, and the shard's leader after it (see
 * purging_key).  Bounded work per command, so a calendar of any size
 * never makes one apply long.  Role system only: whether the group still
 * exists is known on the groups shard, not here.
 */
static int cal_purge(struct agenda_ctx *c)
{
    static const char *const allowed[] = {"calendar", NULL};
    const char *cal;
    if (!agenda_args_only(c, allowed))
        return 0;
    if (c->actor.role != AGENDA_ROLE_SYSTEM)
        return agenda_fail(c, 403, "forbidden",
                           "calendar.purge is reserved to the edge (role "
                           "system), after the group is deleted");
    if (!arg_calendar(c, &cal))
        return 0;
    if (!is_group(cal))
        return agenda_fail(c, 400, "invalid_calendar",
                           "only a group calendar (\"g:<id>\") is purged");
    snprintf(c->audit_object, sizeof(c->audit_object), "calendar:%s", cal);
    struct purge_walk *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return ENOMEM;
    int rc = agenda_ev_walk_index(c->txn, c->db, AGENDA_EV_BY_CAL, cal,
                                  AGENDA_TIME_MIN_MS, AGENDA_TIME_MAX_MS + 1,
                                  purge_visit, w);
    size_t n = w->n > AGENDA_PURGE_BATCH ? AGENDA_PURGE_BATCH : w->n;
    for (size_t i = 0; i < n && rc == 0; i++) {
        json_t *ev;
        rc = agenda_ev_load(c->txn, c->db, cal, w->ids[i], &ev);
        if (rc == MDB_NOTFOUND)
            rc = MDB_CORRUPTED; /* indexed, so it must be there */
        if (rc == 0) {
            rc = delete_event(c, cal, w->ids[i], ev);
            json_decref(ev);
        }
    }
    bool more = w->n > AGENDA_PURGE_BATCH;
    free(w);
    if (rc == 0)
        rc = purging_mark(c, cal, more);
    if (rc != 0)
        return rc;
    json_t *body = json_pack("{s:s,s:I,s:b}", "calendar", cal, "deleted",
                             (json_int_t)n, "more", more);
    return agenda_reply_synced(c, 200, body);
}

/*
 * calendar.purging {} -> {"calendars": [cal, ...], "more": bool}: the
 * group calendars whose purge is unfinished, at most
 * AGENDA_PURGING_LIST_MAX, in name order.  For this shard's leader
 * (purge_driver.c): role system only.
 */
static int cal_purging(struct agenda_ctx *c)
{
    static const char *const allowed[] = {NULL};
    if (!agenda_args_only(c, allowed))
        return 0;
    if (c->actor.role != AGENDA_ROLE_SYSTEM)
        return agenda_fail(c, 403, "forbidden",
                           "calendar.purging is reserved to the shard "
                           "(role system)");
    json_t *list = json_array();
    if (list == NULL)
        return ENOMEM;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(c->txn, c->db->meta, &cur);
    if (rc != 0) {
        json_decref(list);
        return rc;
    }
    const size_t plen = sizeof(PURGING_PREFIX) - 1;
    MDB_val k = {plen, (void *)(uintptr_t)PURGING_PREFIX}, v;
    bool more = false;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size <= plen || memcmp(k.mv_data, PURGING_PREFIX, plen) != 0)
            break;
        if (json_array_size(list) == AGENDA_PURGING_LIST_MAX) {
            more = true;
            break;
        }
        char cal[AGENDA_CALENDAR_MAX + 1];
        size_t len = k.mv_size - plen;
        if (len > AGENDA_CALENDAR_MAX) {
            rc = MDB_CORRUPTED;
            break;
        }
        memcpy(cal, (const char *)k.mv_data + plen, len);
        cal[len] = '\0';
        if (!is_group(cal) || strlen(cal) != len) {
            rc = MDB_CORRUPTED;
            break;
        }
        if (json_array_append_new(list, json_string(cal)) != 0) {
            rc = ENOMEM;
            break;
        }
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        json_decref(list);
        return rc;
    }
    json_t *body = json_pack("{s:o,s:b}", "calendars", list, "more", more);
    return body == NULL ? ENOMEM : agenda_reply(c, 200, body);
}

/* ---- queries ------------------------------------------------------------- */

static int ev_get(struct agenda_ctx *c)
{
    static const char *const allowed[] = {"calendar", "id", NULL};
    const char *cal, *id;
    json_t *ev;
    if (!agenda_args_only(c, allowed))
        return 0;
    int rc = load_visible(c, &cal, &id, &ev);
    if (rc != 0 || ev == NULL)
        return rc;
    json_t *body = json_pack("{s:o}", "event",
                             agenda_ev_render(ev, full_view(c, cal, ev)));
    json_decref(ev);
    return body == NULL ? ENOMEM : agenda_reply(c, 200, body);
}

/* Bytes an event's rendering may add to its stored record (see
 * page_visit): its times as ISO text, 13 more characters each than stored
 * (start, end, created, updated), or an all-day event's start_at and
 * end_at, whole members (~35 bytes each) when it is stored without them;
 * 40 for "response", 36 for the busy view: under 200, rounded up. */
#define EVENT_RENDER_EXTRA 256

/* One page of a range walk. */
struct page_walk {
    struct agenda_ctx *c;
    json_t *items;
    size_t limit;
    size_t bytes;          /* of items, as JSON (AGENDA_PAGE_BYTES_MAX) */
    const char *user;      /* list_participant: whose responses */
    const char *filter;    /* list_participant: only this response */
    bool more;
    uint8_t last[AGENDA_KEY_MAX];
    size_t last_len;
};

static int page_visit(void *arg, const struct agenda_ev_hit *h)
{
    struct page_walk *w = arg;
    const char *response = NULL;
    if (w->user != NULL) {
        /* the walk kept only what the index says holds the filter's
         * answer: a record that disagrees is damage, not a skip */
        response = response_of(h->event, w->user);
        if (response == NULL || (w->filter != NULL &&
                                 strcmp(response, w->filter) != 0))
            return MDB_CORRUPTED;
    }
    if (json_array_size(w->items) >= w->limit) {
        w->more = true;
        return 1;
    }
    json_t *o = agenda_ev_render(h->event,
                                 full_view(w->c, h->calendar, h->event));
    if (o == NULL || (response != NULL && set_str(o, "response", response))) {
        json_decref(o);
        return ENOMEM;
    }
    /* what it renders to is at most its stored text (the same strings,
     * written the same way) and what rendering adds (EVENT_RENDER_EXTRA),
     * its comma */
    size_t bytes = h->record_len + EVENT_RENDER_EXTRA;
    if (json_array_size(w->items) > 0 &&
        w->bytes + bytes > AGENDA_PAGE_BYTES_MAX) {
        json_decref(o); /* the next page starts with it */
        w->more = true;
        return 1;
    }
    w->bytes += bytes;
    if (json_array_append(w->items, o) != 0) {
        json_decref(o);
        return ENOMEM;
    }
    json_decref(o);
    if (h->pos_len > sizeof(w->last))
        return MDB_CORRUPTED;
    memcpy(w->last, h->pos, h->pos_len);
    w->last_len = h->pos_len;
    return 0;
}

/* Walk one page and answer {<owner_key>: owner, from, to, events,
 * next_cursor}. */
static int list_page(struct agenda_ctx *c, enum agenda_ev_index which,
                     const char *owner_key, const char *owner,
                     const char *filter)
{
    int64_t from, to;
    uint8_t cursor[AGENDA_KEY_MAX];
    size_t cursor_len;
    struct page_walk w = {.c = c, .filter = filter};
    if (!arg_window(c, &from, &to) ||
        !arg_paging(c, cursor, &cursor_len, &w.limit) ||
        !arg_after(c, which, owner, cursor, &cursor_len))
        return 0;
    if (which == AGENDA_EV_BY_PART)
        w.user = owner;
    w.items = json_array();
    if (w.items == NULL)
        return ENOMEM;
    int rc = agenda_ev_walk(c->txn, c->db, which, owner, from, to,
                            cursor_len > 0 ? cursor : NULL, cursor_len,
                            filter, page_visit, &w);
    if (rc != 0) {
        json_decref(w.items);
        return rc;
    }
    char next[CURSOR_HEX_MAX + 1];
    for (size_t i = 0; i < w.last_len; i++)
        snprintf(next + 2 * i, 3, "%02x", w.last[i]);
    next[2 * w.last_len] = '\0';
    json_t *body = json_pack("{s:s,s:o,s:o}", owner_key, owner, "events",
                             w.items, "next_cursor",
                             w.more ? json_string(next) : json_null());
    if (body == NULL || agenda_render_time(body, "from", from) != 0 ||
        agenda_render_time(body, "to", to) != 0) {
        json_decref(body);
        return ENOMEM;
    }
    return agenda_reply(c, 200, body);
}

static int ev_list(struct agenda_ctx *c)
{
    static const char *const allowed[] = {
        "calendar", "from", "to", "cursor", "after", "limit", NULL,
    };
    const char *cal;
    if (!agenda_args_only(c, allowed) || !arg_calendar(c, &cal))
        return 0;
    if (!can_read_calendar(c, cal))
        return agenda_fail(c, 403, "forbidden",
                           "only the owner, the group's members and admins "
                           "may list calendar '%s'", cal);
    return list_page(c, AGENDA_EV_BY_CAL, "calendar", cal, NULL);
}

static int ev_list_participant(struct agenda_ctx *c)
{
    static const char *const allowed[] = {
        "user", "from", "to", "response", "cursor", "after", "limit",
        NULL,
    };
    char user[AGENDA_USERNAME_MAX + 1];
    const char *filter = NULL;
    if (!agenda_args_only(c, allowed) ||
        !agenda_arg_username(c, "user", user))
        return 0;
    if (strcmp(user, c->actor.user) != 0 && !agenda_actor_is_admin(c))
        return agenda_fail(c, 403, "forbidden",
                           "only %s (or an admin) may list their "
                           "invitations", user);
    if (agenda_arg_str(c, "response", false, &filter)) {
        if (agenda_response_parse(filter) == 0)
            return agenda_fail(c, 400, "invalid_response",
                               "'response' must be needs_action, accepted, "
                               "declined or tentative");
    } else if (agenda_failed(c)) {
        return 0;
    }
    return list_page(c, AGENDA_EV_BY_PART, "user", user, filter);
}

struct busy {
    int64_t start;
    int64_t end;
};

struct busy_walk {
    struct busy *v;
    size_t n;
    size_t cap;
    const char *user;      /* participations: whose response counts */
    int64_t from;
    int64_t to;
    bool too_many;         /* over AGENDA_FREEBUSY_MAX: refused */
};

static int busy_visit(void *arg, const struct agenda_ev_hit *h)
{
    struct busy_walk *w = arg;
    if (w->user != NULL && strcmp(h->response, "accepted") != 0 &&
        strcmp(h->response, "tentative") != 0)
        return 0;
    if (w->n == AGENDA_FREEBUSY_MAX) {
        w->too_many = true;
        return 1;
    }
    if (w->n == w->cap) {
        size_t cap = w->cap == 0 ? 64 : 2 * w->cap;
        struct busy *v = realloc(w->v, cap * sizeof(*v));
        if (v == NULL)
            return ENOMEM;
        w->v = v;
        w->cap = cap;
    }
    w->v[w->n].start = h->start > w->from ? h->start : w->from;
    w->v[w->n].end = h->end < w->to ? h->end : w->to;
    w->n++;
    return 0;
}

static int cmp_busy(const void *a, const void *b)
{
    const struct busy *x = a, *y = b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}

/* The merged busy intervals of user in [w->from, w->to), appended to
 * *out (a new array); w->v is reused, w->n counts on across users so that
 * AGENDA_FREEBUSY_MAX bounds the whole answer (w->too_many, *out NULL). */
static int busy_of(struct agenda_ctx *c, const char *user,
                   struct busy_walk *w, json_t **out)
{
    size_t first = w->n;
    int rc = 0;
    *out = NULL;
    w->user = NULL;
    if (in_shard(c, user))
        rc = agenda_ev_walk_index(c->txn, c->db, AGENDA_EV_BY_CAL, user,
                                  w->from, w->to, busy_visit, w);
    w->user = user;
    if (rc == 0 && !w->too_many)
        rc = agenda_ev_walk_index(c->txn, c->db, AGENDA_EV_BY_PART, user,
                                  w->from, w->to, busy_visit, w);
    if (rc != 0 || w->too_many)
        return rc;
    json_t *list = json_array();
    if (list == NULL)
        return ENOMEM;
    size_t n = w->n - first;
    struct busy *v = n > 0 ? w->v + first : NULL; /* w->v NULL: none yet */
    if (n > 0)
        qsort(v, n, sizeof(v[0]), cmp_busy);
    for (size_t i = 0; i < n && rc == 0;) {
        /* merge everything overlapping or touching this interval */
        int64_t start = v[i].start, end = v[i].end;
        for (i++; i < n && v[i].start <= end; i++)
            if (v[i].end > end)
                end = v[i].end;
        json_t *o = json_object();
        if (o == NULL || agenda_render_time(o, "start", start) != 0 ||
            agenda_render_time(o, "end", end) != 0 ||
            json_array_append(list, o) != 0)
            rc = ENOMEM;
        json_decref(o);
    }
    if (rc != 0) {
        json_decref(list);
        return rc;
    }
    *out = list;
    return 0;
}

/* One user ("user": answer {user, from, to, busy}) or several ("users":
 * answer {from, to, users: {name: busy}}, one call per shard for the
 * edge's /freebusy). */
static int ev_freebusy(struct agenda_ctx *c)
{
    static const char *const allowed[] = {"user", "users", "from", "to",
                                          NULL};
    char names[AGENDA_FREEBUSY_USERS][AGENDA_USERNAME_MAX + 1];
    size_t n = 1;
    bool several = agenda_arg_json(c, "users") != NULL;
    struct busy_walk w = {0};
    if (!agenda_args_only(c, allowed))
        return 0;
    if (several && agenda_arg_json(c, "user") != NULL)
        return agenda_fail(c, 400, "invalid_field",
                           "give 'user' or 'users', not both");
    if (several ? !agenda_arg_usernames(c, "users", AGENDA_FREEBUSY_USERS,
                                        names, &n)
                : !agenda_arg_username(c, "user", names[0]))
        return 0;
    if (!arg_window(c, &w.from, &w.to))
        return 0;
    json_t *per = json_object(), *busy = NULL;
    int rc = per == NULL ? ENOMEM : 0;
    for (size_t i = 0; i < n && rc == 0 && !w.too_many; i++) {
        rc = busy_of(c, names[i], &w, &busy);
        if (rc == 0 && busy != NULL &&
            json_object_set_new(per, names[i], busy) != 0)
            rc = ENOMEM;
    }
    free(w.v);
    if (rc == 0 && w.too_many) {
        json_decref(per);
        return agenda_fail(c, 413, "range_too_large",
                           "more than %d events between 'from' and 'to'; "
                           "ask for a shorter window",
                           AGENDA_FREEBUSY_MAX);
    }
    json_t *body = NULL;
    if (rc == 0)
        body = several
                   ? json_pack("{s:O}", "users", per)
                   : json_pack("{s:s,s:O}", "user", names[0], "busy",
                               json_object_get(per, names[0]));
    json_decref(per);
    if (rc != 0)
        return rc;
    if (body == NULL || agenda_render_time(body, "from", w.from) != 0 ||
        agenda_render_time(body, "to", w.to) != 0) {
        json_decref(body);
        return ENOMEM;
    }
    return agenda_reply(c, 200, body);
}

const struct agenda_op agenda_event_ops[] = {
    {"event.create", true, AGENDA_ON_EVENTS, ev_create},
    {"event.update", true, AGENDA_ON_EVENTS, ev_update},
    {"event.delete", true, AGENDA_ON_EVENTS, ev_delete},
    {"event.rsvp", true, AGENDA_ON_EVENTS, ev_rsvp},
    {"calendar.purge", true, AGENDA_ON_EVENTS, cal_purge},
    {"event.get", false, AGENDA_ON_EVENTS, ev_get},
    {"event.list", false, AGENDA_ON_EVENTS, ev_list},
    {"event.list_participant", false, AGENDA_ON_EVENTS, ev_list_participant},
    {"event.freebusy", false, AGENDA_ON_EVENTS, ev_freebusy},
    {"calendar.purging", false, AGENDA_ON_EVENTS, cal_purging},
    {NULL, false, 0, NULL},
};

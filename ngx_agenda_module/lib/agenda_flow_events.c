/*
 * agenda_flow_events.c — /calendars/{calendar}/events and one event: list,
 * create, read, replace (PUT), change (PATCH), delete, RSVP.
 *
 * Versions: every event carries "version"; answers about one event send
 * it as ETag "\"<version>\"", and writes take it back as If-Match, which
 * becomes the shard's expected_version (412 version_mismatch when it is
 * stale).  PUT and PATCH require If-Match (428 precondition_required), so
 * a client never overwrites a change it has not seen; DELETE takes it when
 * given and deletes unconditionally otherwise.
 *
 * Group calendars ("g:<group id>"): the caller's role in the group is
 * looked up on the groups shard first (group.get as the caller: 404 for
 * non-members, so a group's existence is not revealed) and passed to the
 * events shard as actor.calendar_role.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agenda_flow_internal.h"
#include "agenda_tz.h"
#include "route.h"
#include "validate.h"

static const char *const event_fields[] = {
    "title", "description", "location", "start", "end", "all_day",
    "time_zone", "visibility", "participants", "conflict_policy", NULL};

static const struct agenda_shard *cal_shard(struct agenda_flow *f)
{
    return agenda_route_calendar(f->env.topo, f->cal);
}

/* The next action: one call on the calendar's shard with the caller's
 * standing on it; fresh: a read at the leader even when the request asked
 * for stale reads. */
static void cal_action(struct agenda_flow *f, bool command, const char *op,
                       json_t *args, bool fresh)
{
    flow_calls_begin(f);
    flow_call_as(f, cal_shard(f), command, op, args, f->user, f->role,
                 f->cal_role);
    if (fresh)
        flow_last_call_fresh(f);
    flow_calls_emit(f);
}

static void cal_call(struct agenda_flow *f, bool command, const char *op,
                     json_t *args)
{
    cal_action(f, command, op, args, false);
}

/* For the read a change is computed from. */
static void cal_read_fresh(struct agenda_flow *f, const char *op,
                           json_t *args)
{
    cal_action(f, false, op, args, true);
}

/* {"calendar": cal, "id": id} plus the rest added by the caller. */
static json_t *event_args(struct agenda_flow *f, bool with_id)
{
    json_t *a = json_pack("{s:s}", "calendar", f->cal);

    if (a == NULL)
        f->oom = true;
    else if (with_id)
        flow_set_str(f, a, "id", f->seg[1]);
    return a;
}

bool flow_calendar_ready(struct agenda_flow *f)
{
    const char *raw = f->cal_raw != NULL ? f->cal_raw : f->seg[0];
    json_t *members, *m;
    size_t i;

    switch (f->cal_stage) {
    case 0:
        if (strncmp(raw, "g:", 2) == 0) {
            if (!agenda_hex_id_valid(raw + 2, AGENDA_GROUP_ID_LEN)) {
                flow_error(f, 400, "invalid_calendar",
                           "a group calendar is g: and 16 lowercase hex");
                return false;
            }
            strcpy(f->cal, raw);
            f->group_cal = true;
        } else if (agenda_username_fold(raw, f->cal) != 0) {
            flow_error(f, 400, "invalid_calendar",
                       "a calendar is a username or g:<group id>");
            return false;
        }
        if (!f->group_cal) {
            f->cal_stage = 2;
            return true;
        }
        flow_calls_begin(f);
        flow_call(f, agenda_route_kind(f->env.topo, AGENDA_SHARD_GROUPS),
                  false, "group.get", json_pack("{s:s}", "id", f->cal + 2));
        flow_last_call_fresh(f); /* authorization: fresh roles */
        flow_calls_emit(f);
        f->cal_stage = 1;
        return false;
    case 1:
        /* The groups shard answers members only.  A route naming one event
         * goes on without a role: the events shard shows an event to the
         * people invited to it whether or not they are members (and
         * answers 404 to the others), so invitees can see and answer
         * it. */
        if (f->ans[0].status == 404 && f->n_seg >= 2) {
            f->cal_role = "none";
            f->cal_stage = 2;
            return true;
        }
        if (f->ans[0].status == 404) {
            flow_error(f, 404, "not_found", "no such calendar");
            return false;
        }
        if (!flow_ok(f, 0)) {
            flow_shard_error(f, 0);
            return false;
        }
        members = json_object_get(json_object_get(f->ans[0].json, "group"),
                                  "members");
        f->cal_role = "none"; /* admins who are not members */
        json_array_foreach(members, i, m) {
            const char *u = json_string_value(json_object_get(m, "user"));
            const char *r = json_string_value(json_object_get(m, "role"));

            if (u != NULL && r != NULL && strcmp(u, f->user) == 0)
                f->cal_role = strcmp(r, "leader") == 0 ? "leader"
                                                       : "member";
        }
        f->cal_stage = 2;
        return true;
    default:
        return true;
    }
}

/* The event id of the path: 404 when it cannot name an event. */
static bool event_id_ok(struct agenda_flow *f)
{
    if (agenda_hex_id_valid(f->seg[1], AGENDA_EVENT_ID_LEN))
        return true;
    flow_error(f, 404, "not_found", "no such event");
    return false;
}

/* Channels and messages for a change of the event in answer ans. */
static void notify_event(struct agenda_flow *f, const char *type,
                         json_t *ans, json_t *event, json_t *old)
{
    char channel[80];
    const char *id = json_string_value(json_object_get(event, "id"));
    json_t *parts = json_object_get(event, "participants");
    const char *p;
    json_t *v;

    if (id == NULL)
        id = f->n_seg > 1 ? f->seg[1] : "";
    flow_calendar_channel(f->cal, channel, sizeof channel);
    flow_notify(f, channel,
                flow_note_msg(f, type, id, f->cal, cal_shard(f), ans));
    json_object_foreach(parts, p, v) {
        const char *t = type;

        if (strcmp(type, "event.created") == 0
            || (old != NULL && json_object_get(old, p) == NULL))
            t = "invitation.created";
        snprintf(channel, sizeof channel, "user/%s", p);
        flow_notify(f, channel,
                    flow_note_msg(f, t, id, f->cal, cal_shard(f), ans));
    }
    json_object_foreach(old, p, v) {
        if (json_object_get(parts, p) != NULL)
            continue;
        snprintf(channel, sizeof channel, "user/%s", p);
        flow_notify(f, channel,
                    flow_note_msg(f, strcmp(type, "event.deleted") == 0
                                     ? type : "invitation.removed",
                                  id, f->cal, cal_shard(f), ans));
    }
}

/* ---- invitees must have accounts ----------------------------------------
 *
 * An invitation stored under a name nobody holds would be read, with the
 * event, by whoever registers that name next; and a typo would invite no
 * one without saying so.  So before a write adds participants, the users
 * shard says which of the new ones have no account (user.missing), and
 * the write is refused with 422 unknown_participant if any.  Accounts are
 * never deleted, so a name found stays taken.  Names that are not
 * usernames, duplicates and too long a list are left to the events shard,
 * which refuses them with its own errors.
 */

/* The body's participants that fold to usernames and are not keys of
 * old (the event's participants, or NULL), each once; NULL when there are
 * none to ask about. */
static json_t *invitees_to_check(struct agenda_flow *f, const json_t *old)
{
    json_t *list = json_object_get(f->in, "participants"), *item, *names;
    char user[AGENDA_USERNAME_MAX + 1];
    size_t i;

    if (!json_is_array(list) || json_array_size(list) == 0
        || json_array_size(list) > AGENDA_PARTICIPANTS_MAX)
        return NULL;
    names = json_array();
    if (names == NULL) {
        f->oom = true;
        return NULL;
    }
    json_array_foreach(list, i, item) {
        size_t j;
        json_t *seen;
        bool dup = false;

        if (!json_is_string(item)
            || strlen(json_string_value(item)) != json_string_length(item)
            || agenda_username_fold(json_string_value(item), user) != 0
            || json_object_get(old, user) != NULL)
            continue;
        json_array_foreach(names, j, seen)
            dup = dup || strcmp(json_string_value(seen), user) == 0;
        if (!dup && json_array_append_new(names, json_string(user)) != 0)
            f->oom = true;
    }
    if (f->oom || json_array_size(names) == 0) {
        json_decref(names);
        return NULL;
    }
    return names;
}

/* Ask the users shard which of names (consumed) have no account. */
static void invitees_ask(struct agenda_flow *f, json_t *names)
{
    flow_calls_begin(f);
    flow_call(f, agenda_route_kind(f->env.topo, AGENDA_SHARD_USERS), false,
              "user.missing", json_pack("{s:o}", "usernames", names));
    flow_calls_emit(f);
}

/* After invitees_ask(): true when everyone has an account; else the
 * request is answered (422 naming the first of the others, or the
 * shard's error). */
static bool invitees_exist(struct agenda_flow *f)
{
    json_t *missing;
    const char *first;

    if (!flow_answer_ok(f, 0))
        return false;
    missing = json_object_get(f->ans[0].json, "missing");
    if (!json_is_array(missing)) {
        flow_error(f, 500, "internal",
                   "the users shard gave no list of missing accounts");
        return false;
    }
    if (json_array_size(missing) == 0)
        return true;
    first = json_string_value(json_array_get(missing, 0));
    flow_error(f, 422, "unknown_participant",
               "no account is named '%s'%s; invite only registered users",
               first != NULL ? first : "?",
               json_array_size(missing) > 1 ? " (nor some others)" : "");
    return false;
}

/* ---- all-day events ----------------------------------------------------- */

/* What the event will hold for key: the body's value, else (PATCH) the
 * event's as read before the write (old, may be NULL). */
static const json_t *field_after(const struct agenda_flow *f,
                                 const json_t *old, const char *key)
{
    const json_t *v = json_object_get(f->in, key);

    return v != NULL && !json_is_null(v) ? v : json_object_get(old, key);
}

/*
 * An all-day event occupies its dates as days of its own time zone: from
 * the first instant of its start date there to the first instant of its
 * (exclusive) end date.  The edge works the instants out from its tz
 * database and sends them as start_at and end_at (the shard's own tzdata
 * may differ from its peers', and every replica must store the same);
 * the shard checks that they are near the dates.  Nothing is added when
 * the event is not all-day, when a date is not a date (the shard refuses
 * it), or when the zone has no rules on this edge; nor when the shard
 * would refuse the span although it takes the dates: empty (the zone
 * skipped those days: Samoa's 2011-12-30), outside the times an event may
 * have (0001-01-01 east of Greenwich began in year 0), or longer than an
 * event may last (366 days of dates ending an hour later in the year
 * than they begin).  The event then occupies UTC days.
 */
static void day_span(struct agenda_flow *f, json_t *args, const json_t *old)
{
    const char *zone = json_string_value(field_after(f, old, "time_zone"));
    const char *start = json_string_value(field_after(f, old, "start"));
    const char *end = json_string_value(field_after(f, old, "end"));
    const struct agenda_tz *z;
    int64_t start_ms, end_ms, start_at, end_at;

    if (!json_is_true(field_after(f, old, "all_day")) || zone == NULL
        || start == NULL || end == NULL
        || agenda_date_parse(start, &start_ms) != 0
        || agenda_date_parse(end, &end_ms) != 0)
        return;
    z = agenda_tz_db_find(f->env.tz, zone);
    if (z == NULL)
        return;
    /* dates parse to UTC midnights: whole days */
    start_at = agenda_tz_day_start(z, start_ms / 86400000) * 1000;
    end_at = agenda_tz_day_start(z, end_ms / 86400000) * 1000;
    if (end_at <= start_at || start_at < AGENDA_TIME_MIN_MS
        || end_at > AGENDA_TIME_MAX_MS + 1
        || end_at - start_at > AGENDA_EVENT_DURATION_MAX_MS)
        return;
    flow_set(f, args, "start_at", json_integer((json_int_t)start_at));
    flow_set(f, args, "end_at", json_integer((json_int_t)end_at));
}

/*
 * Whether day_span needs the event as it is for this PATCH: it moves the
 * event (dates, zone or all_day) and may leave it all-day without giving
 * all day_span reads.  Moving a timed event (date-times, or all_day
 * false) needs no read: date-times on an all-day event are refused by the
 * shard anyway.
 */
static bool span_needs_event(const struct agenda_flow *f)
{
    static const char *const span_keys[] = {"time_zone", "start", "end",
                                            NULL};
    const json_t *all_day = json_object_get(f->in, "all_day");
    int64_t ms;
    bool moves = all_day != NULL, complete = true;

    for (size_t i = 0; span_keys[i] != NULL; i++) {
        const json_t *v = json_object_get(f->in, span_keys[i]);

        moves = moves || v != NULL;
        complete = complete && v != NULL && !json_is_null(v);
        if (i > 0 && json_is_string(v)
            && agenda_date_parse(json_string_value(v), &ms) != 0)
            return false;   /* a date-time: not all-day */
    }
    if (!moves || json_is_false(all_day))
        return false;
    return !(json_is_true(all_day) && complete);
}

/* ---- GET|POST /calendars/{calendar}/events ------------------------------- */

void flow_h_events_list(struct agenda_flow *f)
{
    json_t *args;

    if (!flow_calendar_ready(f))
        return;
    if (f->stage == 0) {
        if (flow_param(f, "from") == NULL || flow_param(f, "to") == NULL) {
            flow_error(f, 400, "missing_parameter",
                       "give ?from= and ?to= (RFC 3339 instants)");
            return;
        }
        args = event_args(f, false);
        flow_param_str(f, args, "from");
        flow_param_str(f, args, "to");
        flow_param_str(f, args, "cursor");
        if (flow_param_int(f, args, "limit") != 0) {
            json_decref(args);
            return;
        }
        cal_call(f, false, "event.list", args);
        /* the page goes to the client as the shard wrote it: a month of
         * events is parsed and serialised once, at the shard */
        flow_answer_raw(f, 0);
        f->stage = 1;
        return;
    }
    if (!flow_answer_ok(f, 0))
        return;
    flow_respond_answer(f, 200, 0);
}

void flow_h_events_create(struct agenda_flow *f)
{
    json_t *args, *ev;
    const char *id;
    char loc[160];

    if (!flow_calendar_ready(f))
        return;
    if (f->stage == 0) {
        json_t *names = invitees_to_check(f, NULL);

        f->stage = 1;
        if (names != NULL) {
            invitees_ask(f, names);
            return;
        }
        if (f->oom)
            return;
    } else if (f->stage == 1 && !invitees_exist(f)) {
        return;
    }
    if (f->stage == 1) {
        args = event_args(f, false);
        flow_copy_fields(f, args, event_fields);
        flow_copy_fields(f, args, (const char *const[]){"id", NULL});
        day_span(f, args, NULL);
        cal_call(f, true, "event.create", args);
        f->stage = 2;
        return;
    }
    if (!flow_answer_ok(f, 0))
        return;
    ev = json_object_get(f->ans[0].json, "event");
    id = json_string_value(json_object_get(ev, "id"));
    if (id != NULL) {
        snprintf(loc, sizeof loc, "/api/v1/calendars/%s/events/%s", f->cal,
                 id);
        flow_header(f, "Location", loc);
    }
    flow_etag(f, ev);
    notify_event(f, "event.created", f->ans[0].json, ev, NULL);
    json_object_del(f->ans[0].json, "sync_token");
    flow_respond(f, 201, json_incref(f->ans[0].json));
}

/* ---- one event ----------------------------------------------------------- */

void flow_h_event_get(struct agenda_flow *f)
{
    if (f->cal_stage == 0 && !event_id_ok(f))
        return;
    if (!flow_calendar_ready(f))
        return;
    if (f->stage == 0) {
        cal_call(f, false, "event.get", event_args(f, true));
        f->stage = 1;
        return;
    }
    if (!flow_answer_ok(f, 0))
        return;
    flow_etag(f, json_object_get(f->ans[0].json, "event"));
    flow_respond(f, 200, json_incref(f->ans[0].json));
}

/*
 * PUT replaces the event's fields: those it omits get their defaults.
 * PATCH changes only the fields it gives.  When the participants may
 * change (PUT, or PATCH with participants), the event is read first so
 * that the notifications can tell new invitees (invitation.created) and
 * removed ones (invitation.removed) from those kept (event.updated), and
 * so that only the new ones need an account check (stage 4).  A PATCH
 * that moves an event which may be all-day reads it too: the span needs
 * the dates and time zone it keeps (day_span, span_needs_event).  The
 * write carries If-Match's version, so it applies to the event as read or
 * not at all (412).
 */
static void event_write(struct agenda_flow *f, bool put)
{
    static const char *const required[] = {"title", "start", "end",
                                           "time_zone", NULL};
    long long version, current;
    json_t *args, *ev, *old, *names;
    int im;

    if (f->cal_stage == 0) {
        if (!event_id_ok(f))
            return;
        im = flow_if_match(f->if_match, &version);
        if (im == 1) {
            flow_error(f, 428, "precondition_required",
                       "send If-Match with the event's ETag (GET it "
                       "first)");
            return;
        }
        if (im < 0) {
            flow_error(f, 400, "invalid_if_match",
                       "If-Match must be one ETag such as \"3\"");
            return;
        }
        for (size_t i = 0; put && required[i] != NULL; i++) {
            json_t *v = json_object_get(f->in, required[i]);

            if (v == NULL || json_is_null(v)) {
                flow_error(f, 400, "missing_field",
                           "'%s' is required (PUT replaces the event; "
                           "use PATCH to change some fields)", required[i]);
                return;
            }
        }
        f->scratch = json_pack("{s:I}", "version", (json_int_t)version);
        if (f->scratch == NULL) {
            f->oom = true;
            return;
        }
    }
    if (!flow_calendar_ready(f))
        return;
    switch (f->stage) {
    case 0:
        f->stage = 2;
        if (put || json_object_get(f->in, "participants") != NULL
            || span_needs_event(f))
        {
            cal_read_fresh(f, "event.get", event_args(f, true));
            f->stage = 1;
            return;
        }
        break;
    case 1:
        if (!flow_answer_ok(f, 0))
            return;
        ev = json_object_get(f->ans[0].json, "event");
        /* The read is the leader's, so the event is at this version now.
         * One naming a version still to come could be reached by others'
         * writes in between, and then apply what was worked out from this
         * read (the notifications, an all-day span) to an event that
         * changed since: answer as the shard would, now.  An older one
         * can never apply, but with the client's Idempotency-Key it may
         * be the retry of a write that did (and made this version): only
         * the shard knows, and answers the first result or 412. */
        version = json_integer_value(json_object_get(f->scratch, "version"));
        current = json_integer_value(json_object_get(ev, "version"));
        if (current != version) {
            if (!(current > version && f->idem != NULL
                  && !f->idem_generated))
            {
                flow_error(f, 412, "version_mismatch",
                           "the event is at version %lld, not %lld; fetch "
                           "it again and reapply your change", current,
                           version);
                return;
            }
            /* Nothing of this read belongs to what the shard answers (the
             * first result, or 412): the write goes as one made without a
             * read, with no account check, and its notifications follow
             * the answer alone (event.updated to whoever is in it), not a
             * difference with a version it may not have replaced. */
            f->stage = 2;
            break;
        }
        old = json_object_get(ev, "participants");
        flow_set(f, f->scratch, "old",
                 json_is_object(old) ? json_incref(old) : json_object());
        if (json_is_object(ev))
            flow_set(f, f->scratch, "event", json_incref(ev));
        f->stage = 2;
        /* only the people this write adds need an account check */
        names = invitees_to_check(f, json_object_get(f->scratch, "old"));
        if (names != NULL) {
            invitees_ask(f, names);
            f->stage = 4;
            return;
        }
        if (f->oom)
            return;
        break;
    case 4:
        if (!invitees_exist(f))
            return;
        f->stage = 2;
        break;
    default:
        break;
    }
    if (f->stage == 2) {
        args = event_args(f, true);
        flow_set(f, args, "expected_version",
                 json_integer(json_integer_value(
                     json_object_get(f->scratch, "version"))));
        if (put) {
            flow_set_str(f, args, "description", "");
            flow_set_str(f, args, "location", "");
            flow_set(f, args, "all_day", json_false());
            flow_set_str(f, args, "visibility", "default");
            flow_set(f, args, "participants", json_array());
        }
        flow_copy_fields(f, args, event_fields);
        day_span(f, args, put ? NULL : json_object_get(f->scratch, "event"));
        cal_call(f, true, "event.update", args);
        f->stage = 3;
        return;
    }
    if (!flow_answer_ok(f, 0))
        return;
    ev = json_object_get(f->ans[0].json, "event");
    flow_etag(f, ev);
    notify_event(f, "event.updated", f->ans[0].json, ev,
                 json_object_get(f->scratch, "old"));
    json_object_del(f->ans[0].json, "sync_token");
    flow_respond(f, 200, json_incref(f->ans[0].json));
}

void flow_h_event_put(struct agenda_flow *f)
{
    event_write(f, true);
}

void flow_h_event_patch(struct agenda_flow *f)
{
    event_write(f, false);
}

void flow_h_event_delete(struct agenda_flow *f)
{
    long long version = 0;
    json_t *args, *ev;
    int im;

    if (f->cal_stage == 0) {
        if (!event_id_ok(f))
            return;
        im = flow_if_match(f->if_match, &version);
        if (im < 0) {
            flow_error(f, 400, "invalid_if_match",
                       "If-Match must be one ETag such as \"3\"");
            return;
        }
        f->scratch = im == 0 ? json_pack("{s:I}", "version",
                                         (json_int_t)version)
                             : json_object();
        if (f->scratch == NULL) {
            f->oom = true;
            return;
        }
    }
    if (!flow_calendar_ready(f))
        return;
    switch (f->stage) {
    case 0:
        /* read first: the participants are told of the deletion */
        cal_read_fresh(f, "event.get", event_args(f, true));
        f->stage = 1;
        return;
    case 1:
        if (!flow_answer_ok(f, 0))
            return;
        ev = json_object_get(f->ans[0].json, "event");
        flow_set(f, f->scratch, "event", json_incref(ev));
        args = event_args(f, true);
        if (json_object_get(f->scratch, "version") != NULL)
            flow_set(f, args, "expected_version",
                     json_integer(json_integer_value(
                         json_object_get(f->scratch, "version"))));
        cal_call(f, true, "event.delete", args);
        f->stage = 2;
        return;
    default:
        if (!flow_answer_ok(f, 0))
            return;
        notify_event(f, "event.deleted", f->ans[0].json,
                     json_object_get(f->scratch, "event"), NULL);
        json_object_del(f->ans[0].json, "sync_token");
        flow_respond(f, 200, json_incref(f->ans[0].json));
        return;
    }
}

void flow_h_event_rsvp(struct agenda_flow *f)
{
    char channel[80];
    json_t *args, *msg, *v;
    const char *vis, *p;
    bool changed;

    if (f->cal_stage == 0 && !event_id_ok(f))
        return;
    if (!flow_calendar_ready(f))
        return;
    if (f->stage == 0) {
        args = event_args(f, true);
        flow_copy_fields(f, args, (const char *const[]){"response", NULL});
        cal_call(f, true, "event.rsvp", args);
        f->stage = 1;
        return;
    }
    if (!flow_answer_ok(f, 0))
        return;
    flow_etag(f, json_object_get(f->ans[0].json, "event"));
    flow_calendar_channel(f->cal, channel, sizeof channel);
    msg = flow_note_msg(f, "invitation.responded", f->seg[1], f->cal,
                        cal_shard(f), f->ans[0].json);
    /* a group's members see a private event as busy time only: not who
     * is invited to it, so not who answered (the shard's feed says as
     * little) */
    vis = json_string_value(json_object_get(
        json_object_get(f->ans[0].json, "event"), "visibility"));
    if (msg != NULL && f->group_cal && vis != NULL
        && strcmp(vis, "private") == 0)
        json_object_del(msg, "actor");
    flow_notify(f, channel, msg);
    /* the responder, and the other participants, who see every answer in
     * the event (the shard feeds each of them when the answer changed) */
    changed = !json_is_false(json_object_get(f->ans[0].json, "changed"));
    json_object_foreach(json_object_get(json_object_get(f->ans[0].json,
                                                        "event"),
                                        "participants"), p, v) {
        if (!changed && strcmp(p, f->user) != 0)
            continue;
        snprintf(channel, sizeof channel, "user/%s", p);
        flow_notify(f, channel, flow_note_msg(f, "invitation.responded",
                                              f->seg[1], f->cal,
                                              cal_shard(f), f->ans[0].json));
    }
    json_object_del(f->ans[0].json, "sync_token");
    json_object_del(f->ans[0].json, "changed");
    flow_respond(f, 200, json_incref(f->ans[0].json));
}

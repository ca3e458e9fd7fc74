/*
 * agenda_flow_groups.c — /groups, /groups/{id}, /groups/{id}/members and
 * /groups/{id}/members/{username}: the groups shard's operations, with
 * ETag/If-Match on the group's version (If-Match is optional here: group
 * edits are small and the shard serialises them).
 *
 * DELETE /groups/{id}/members/{me} is leaving the group (group.leave, any
 * member); removing someone else is a leader's group.member_remove.
 */
#include <stdio.h>
#include <string.h>

#include "agenda_flow_internal.h"
#include "route.h"
#include "validate.h"

static const struct agenda_shard *groups_shard(struct agenda_flow *f)
{
    return agenda_route_kind(f->env.topo, AGENDA_SHARD_GROUPS);
}

static void one_call(struct agenda_flow *f, const struct agenda_shard *s,
                     bool command, const char *op, json_t *args)
{
    flow_calls_begin(f);
    flow_call(f, s, command, op, args);
    flow_calls_emit(f);
}

/* The group id of the path: 404 when it cannot name a group. */
static bool group_id_ok(struct agenda_flow *f)
{
    if (agenda_hex_id_valid(f->seg[0], AGENDA_GROUP_ID_LEN))
        return true;
    flow_error(f, 404, "not_found", "no such group");
    return false;
}

/* The member of the path (folded into out); 404 when it is no name. */
static bool member_ok(struct agenda_flow *f, char *out)
{
    if (agenda_username_fold(f->seg[1], out) == 0)
        return true;
    flow_error(f, 404, "not_member", "no such member");
    return false;
}

/* expected_version from If-Match when given; false when it responded. */
static bool take_if_match(struct agenda_flow *f, json_t *args)
{
    long long v;
    int im = flow_if_match(f->if_match, &v);

    if (im < 0) {
        flow_error(f, 400, "invalid_if_match",
                   "If-Match must be one ETag such as \"3\"");
        return false;
    }
    if (im == 0)
        flow_set(f, args, "expected_version", json_integer(v));
    return true;
}

/* Tell the group's channel (and a member's) about a change; both
 * messages name the member concerned, so members know who came or went. */
static void notify_group_of(struct agenda_flow *f, const char *type,
                            const char *user, json_t *ans)
{
    char channel[64];
    json_t *m;

    snprintf(channel, sizeof channel, "group/%s", f->seg[0]);
    m = flow_note_msg(f, type, f->seg[0], NULL, groups_shard(f), ans);
    if (user != NULL)
        flow_set_str(f, m, "user", user);
    flow_notify(f, channel, m);
    if (user != NULL) {
        m = flow_note_msg(f, type, f->seg[0], NULL, groups_shard(f), ans);
        flow_set_str(f, m, "user", user);
        snprintf(channel, sizeof channel, "user/%s", user);
        flow_notify(f, channel, m);
    }
}

/* After the group lost a member or was deleted: its subscribers are
 * disconnected and subscribe again through the guard, which refuses
 * whoever is no longer a member (the others resume; their messages up to
 * now were delivered before). */
static void close_group_channel(struct agenda_flow *f)
{
    char channel[64];

    snprintf(channel, sizeof channel, "group/%s", f->seg[0]);
    flow_close_channel(f, channel);
}

/* The same about the groups shard's answer (answer 0). */
static void notify_group(struct agenda_flow *f, const char *type,
                         const char *user)
{
    notify_group_of(f, type, user, f->ans[0].json);
}

/*
 * A change to the whole group (renamed, deleted) also goes to every
 * member's own channel: a client always listens there, but to a group's
 * channel only while it shows that group.  members is the answer's list:
 * names, or {"user", "role"} objects.
 */
static void notify_members(struct agenda_flow *f, const char *type,
                           json_t *ans, json_t *members)
{
    char channel[64];
    const char *name;
    json_t *m;
    size_t i;

    json_array_foreach(members, i, m) {
        name = json_is_string(m) ? json_string_value(m)
               : json_string_value(json_object_get(m, "user"));
        if (name == NULL)
            continue;
        snprintf(channel, sizeof channel, "user/%s", name);
        flow_notify(f, channel, flow_note_msg(f, type, f->seg[0], NULL,
                                              groups_shard(f), ans));
    }
}

/* The answer of a one-call route: error, or 2xx with ETag of "group". */
static void answer(struct agenda_flow *f, int status)
{
    if (!flow_answer_ok(f, 0))
        return;
    flow_etag(f, json_object_get(f->ans[0].json, "group"));
    json_object_del(f->ans[0].json, "sync_token");
    flow_respond(f, status, json_incref(f->ans[0].json));
}

void flow_h_groups_list(struct agenda_flow *f)
{
    if (f->stage++ == 0) {
        one_call(f, groups_shard(f), false, "group.list",
                 json_pack("{s:s}", "user", f->user));
        return;
    }
    if (!flow_answer_ok(f, 0))
        return;
    flow_respond(f, 200, json_incref(f->ans[0].json));
}

void flow_h_groups_create(struct agenda_flow *f)
{
    static const char *const fields[] = {"id", "name", "description", NULL};
    char loc[64], channel[64];
    const char *id;
    json_t *args;

    if (f->stage++ == 0) {
        args = flow_obj(f);
        flow_copy_fields(f, args, fields);
        one_call(f, groups_shard(f), true, "group.create", args);
        return;
    }
    if (!flow_answer_ok(f, 0))
        return;
    id = json_string_value(json_object_get(
        json_object_get(f->ans[0].json, "group"), "id"));
    if (id != NULL) {
        snprintf(loc, sizeof loc, "/api/v1/groups/%s", id);
        flow_header(f, "Location", loc);
        snprintf(channel, sizeof channel, "user/%s", f->user);
        flow_notify(f, channel, flow_note_msg(f, "group.created", id, NULL,
                                              groups_shard(f),
                                              f->ans[0].json));
    }
    answer(f, 201);
}

void flow_h_group_get(struct agenda_flow *f)
{
    if (f->stage++ == 0) {
        if (!group_id_ok(f))
            return;
        one_call(f, groups_shard(f), false, "group.get",
                 json_pack("{s:s}", "id", f->seg[0]));
        return;
    }
    answer(f, 200);
}

void flow_h_group_patch(struct agenda_flow *f)
{
    static const char *const fields[] = {"name", "description", NULL};
    json_t *args;

    if (f->stage++ == 0) {
        if (!group_id_ok(f))
            return;
        args = json_pack("{s:s}", "id", f->seg[0]);
        if (args == NULL) {
            f->oom = true;
            return;
        }
        if (!take_if_match(f, args)) {
            json_decref(args);
            return;
        }
        flow_copy_fields(f, args, fields);
        one_call(f, groups_shard(f), true, "group.update", args);
        return;
    }
    if (flow_ok(f, 0)) {
        notify_group(f, "group.updated", NULL);
        notify_members(f, "group.updated", f->ans[0].json,
                       json_object_get(json_object_get(f->ans[0].json,
                                                       "group"),
                                       "members"));
    }
    answer(f, 200);
}

/* ---- emptying a deleted group's calendar --------------------------------
 *
 * Once the groups shard has deleted a group (DELETE, or its last member
 * leaving), its calendar "g:<id>" on an events shard is emptied with
 * calendar.purge (100 events a call, AGENDA_PURGE_BATCH) before
 * answering; the answer is the groups shard's, plus "events_deleted" and
 * "calendar_purged".  At most PURGE_CALLS_MAX calls per request: a purge
 * that leaves events behind is marked on the events shard, whose leader
 * finishes it (raft_agent/purge_driver.c), so a huge calendar or an edge
 * stopped half way only delays the emptying.  A first purge that never
 * ran (the events shard unreachable) runs when the DELETE is repeated
 * (deleted_before).  The groups shard never gives a deleted group's id to
 * a new group, so nobody becomes a reader of that calendar again
 * meanwhile.
 */
#define PURGE_CALLS_MAX 20

static void purge_call(struct agenda_flow *f)
{
    char cal[AGENDA_CALENDAR_MAX + 1];

    snprintf(cal, sizeof cal, "%s%s", AGENDA_GROUP_CALENDAR_PREFIX,
             f->seg[0]);
    flow_calls_begin(f);
    flow_call_as(f, agenda_route_calendar(f->env.topo, cal), true,
                 "calendar.purge", json_pack("{s:s}", "calendar", cal), "",
                 "system", NULL);
    flow_calls_emit(f);
}

/* Keep the groups shard's answer (answer 0) and the notification it
 * calls for (type, and the member concerned or NULL), sent with the final
 * answer, and start purging. */
static void purge_begin(struct agenda_flow *f, const char *type,
                        const char *user)
{
    f->scratch = json_pack("{s:O, s:i, s:i, s:s, s:s?}", "answer",
                           f->ans[0].json, "deleted", 0, "calls", 0,
                           "note", type, "note_user", user);
    if (f->scratch == NULL) {
        f->oom = true;
        return;
    }
    purge_call(f);
}

/* A DELETE of a group deleted before: the groups shard's 404 says
 * "gone".  Its calendar is purged again, in case the first deletion
 * could not finish (its events shard unreachable, the edge stopped), and
 * the client hears a plain 404, as for any group it does not belong to. */
static bool deleted_before(struct agenda_flow *f)
{
    return f->ans[0].status == 404
           && json_is_true(json_object_get(json_object_get(f->ans[0].json,
                                                           "error"),
                                           "gone"));
}

static void purge_again(struct agenda_flow *f)
{
    json_t *answer = json_deep_copy(f->ans[0].json);

    json_object_del(json_object_get(answer, "error"), "gone");
    f->scratch = answer != NULL
                     ? json_pack("{s:o, s:i, s:i, s:b}", "answer", answer,
                                 "deleted", 0, "calls", 0, "again", 1)
                     : NULL;
    if (f->scratch == NULL) {
        f->oom = true;
        return;
    }
    purge_call(f);
}

/* After a calendar.purge answer: purge on, or answer the request. */
static void purge_step(struct agenda_flow *f)
{
    json_t *a = f->ans[0].json, *body;
    json_int_t deleted = json_integer_value(json_object_get(f->scratch,
                                                            "deleted"));
    json_int_t calls = json_integer_value(json_object_get(f->scratch,
                                                          "calls")) + 1;
    json_t *n = json_object_get(a, "deleted");
    bool ok = flow_ok(f, 0) && json_is_integer(n);
    bool more = ok && json_is_true(json_object_get(a, "more"));

    if (ok)
        deleted += json_integer_value(n);
    if (more && calls < PURGE_CALLS_MAX) {
        flow_set(f, f->scratch, "deleted", json_integer(deleted));
        flow_set(f, f->scratch, "calls", json_integer(calls));
        purge_call(f);
        return;
    }
    if (json_is_true(json_object_get(f->scratch, "again"))) {
        /* the groups shard's own 404, without "gone" */
        flow_respond(f, 404, json_incref(json_object_get(f->scratch,
                                                         "answer")));
        return;
    }
    notify_group_of(f, json_string_value(json_object_get(f->scratch, "note")),
                    json_string_value(json_object_get(f->scratch,
                                                      "note_user")),
                    json_object_get(f->scratch, "answer"));
    close_group_channel(f);
    notify_members(f, "group.deleted", json_object_get(f->scratch, "answer"),
                   json_object_get(json_object_get(f->scratch, "answer"),
                                   "members"));
    body = json_deep_copy(json_object_get(f->scratch, "answer"));
    if (body == NULL) {
        f->oom = true;
        return;
    }
    json_object_del(body, "sync_token");
    json_object_del(body, "members"); /* for the notifications only */
    flow_set(f, body, "events_deleted", json_integer(deleted));
    flow_set(f, body, "calendar_purged", json_boolean(ok && !more));
    flow_respond(f, 200, body);
}

void flow_h_group_delete(struct agenda_flow *f)
{
    json_t *args;

    switch (f->stage++) {
    case 0:
        if (!group_id_ok(f))
            return;
        args = json_pack("{s:s}", "id", f->seg[0]);
        if (args == NULL) {
            f->oom = true;
            return;
        }
        if (!take_if_match(f, args)) {
            json_decref(args);
            return;
        }
        one_call(f, groups_shard(f), true, "group.delete", args);
        return;
    case 1:
        if (deleted_before(f)) {
            purge_again(f);
            return;
        }
        if (!flow_ok(f, 0)) {
            answer(f, 200);
            return;
        }
        purge_begin(f, "group.deleted", NULL);
        return;
    default:
        f->stage = 2;
        purge_step(f);
    }
}

/* POST /groups/{id}/members: the account must exist (users shard). */
void flow_h_members_add(struct agenda_flow *f)
{
    char user[AGENDA_USERNAME_MAX + 1];
    const char *raw;
    bool bad = false;
    json_t *args;

    switch (f->stage) {
    case 0:
        if (!group_id_ok(f))
            return;
        raw = flow_body_str(f, "user", true, &bad);
        if (!bad)
            (void)flow_body_str(f, "role", false, &bad);
        if (bad)
            return;
        if (agenda_username_fold(raw, user) != 0) {
            flow_error(f, 400, "invalid_field", "'user' is not a username");
            return;
        }
        f->scratch = json_pack("{s:s}", "user", user);
        if (f->scratch == NULL) {
            f->oom = true;
            return;
        }
        one_call(f, agenda_route_kind(f->env.topo, AGENDA_SHARD_USERS),
                 false, "user.get", json_pack("{s:s}", "username", user));
        f->stage = 1;
        return;
    case 1:
        if (f->ans[0].status == 404) {
            flow_error(f, 404, "user_not_found", "no such user");
            return;
        }
        if (!flow_answer_ok(f, 0))
            return;
        args = json_pack("{s:s, s:O}", "id", f->seg[0], "user",
                         json_object_get(f->scratch, "user"));
        if (args == NULL) {
            f->oom = true;
            return;
        }
        flow_copy_fields(f, args, (const char *const[]){"role", NULL});
        one_call(f, groups_shard(f), true, "group.member_add", args);
        f->stage = 2;
        return;
    default:
        if (flow_ok(f, 0))
            notify_group(f, "group.member_added", json_string_value(
                             json_object_get(f->scratch, "user")));
        answer(f, 201);
        return;
    }
}

void flow_h_member_patch(struct agenda_flow *f)
{
    char user[AGENDA_USERNAME_MAX + 1];
    bool bad = false;
    json_t *args;

    if (f->stage == 0) {
        if (!group_id_ok(f) || !member_ok(f, user))
            return;
        if (flow_body_str(f, "role", true, &bad) == NULL)
            return;
        args = json_pack("{s:s, s:s}", "id", f->seg[0], "user", user);
        if (args == NULL) {
            f->oom = true;
            return;
        }
        flow_copy_fields(f, args, (const char *const[]){"role", NULL});
        one_call(f, groups_shard(f), true, "group.member_role", args);
        f->stage = 1;
        return;
    }
    if (!member_ok(f, user))
        return;
    if (flow_ok(f, 0))
        notify_group(f, "group.member_role_changed", user);
    answer(f, 200);
}

void flow_h_member_delete(struct agenda_flow *f)
{
    char user[AGENDA_USERNAME_MAX + 1];
    bool self;

    if (!member_ok(f, user))
        return;
    self = strcmp(user, f->user) == 0;
    switch (f->stage) {
    case 0:
        if (!group_id_ok(f))
            return;
        if (self)
            one_call(f, groups_shard(f), true, "group.leave",
                     json_pack("{s:s}", "id", f->seg[0]));
        else
            one_call(f, groups_shard(f), true, "group.member_remove",
                     json_pack("{s:s, s:s}", "id", f->seg[0], "user", user));
        f->stage = 1;
        return;
    case 1:
        /* the last member left: the group is gone with its calendar */
        if (flow_ok(f, 0) && json_is_true(json_object_get(f->ans[0].json,
                                                          "group_deleted"))) {
            f->stage = 2;
            purge_begin(f, "group.member_removed", user);
            return;
        }
        if (flow_ok(f, 0)) {
            notify_group(f, "group.member_removed", user);
            close_group_channel(f);
        }
        answer(f, 200);
        return;
    default:
        purge_step(f);
    }
}

/*
 * groups.c — groups of the groups shard: creation, reads, updates,
 * deletion and membership (add, remove, role change, leave).
 *
 * Record (db->groups, key: id 0):
 *   {"id","name","description","calendar","members":{"<user>":"leader"|
 *    "member",...},"created","updated","version"}   (times in ms UTC)
 * Index (db->group_members, key: user 0 id 0, value "leader"|"member"):
 * exactly one entry per membership, written in the same transaction as the
 * record, so a user's groups are a range walk, never a scan.
 *
 * Rules: the creator is the first leader; leaders (and admins) manage the
 * group; a group always keeps a leader while it has members (409
 * last_leader); the last member leaving deletes it, and a deleted group's
 * id is never taken again (see group_erase).  Non-members get 404
 * for everything, so a group's existence is not revealed.  Every mutation
 * bumps "version" and "updated"; update and delete accept
 * expected_version (412 version_mismatch).  Whether a user named in
 * member_add has an account is checked by the edge on the users shard:
 * this shard only checks that the name is a valid username.
 *
 * Answers render a group as {"id","name","description","calendar",
 * "members":[{"user","role"}] (by name),"created","updated","version"}.
 */
#include "agenda.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "render.h"
#include "validate.h"

#define GROUP_TARGET_MAX (8 + AGENDA_GROUP_ID_LEN + 1)
#define USER_TARGET_MAX (8 + AGENDA_USERNAME_MAX + 1)

/* ---- records ----------------------------------------------------------- */

static MDB_val group_key(struct agenda_key *k, const char *id)
{
    agenda_key_reset(k);
    agenda_key_str(k, id);
    return agenda_key_val(k);
}

static MDB_val index_key(struct agenda_key *k, const char *user,
                         const char *id)
{
    agenda_key_reset(k);
    agenda_key_str(k, user);
    agenda_key_str(k, id);
    return agenda_key_val(k);
}

static const char *str_of(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static int64_t int_of(const json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

static json_t *members_of(const json_t *g)
{
    return json_object_get(g, "members");
}

static bool role_name_ok(const char *r)
{
    return r != NULL && (strcmp(r, "leader") == 0 || strcmp(r, "member") == 0);
}

/* A stored record is checked before use: the disk is not trusted. */
static bool group_record_ok(const json_t *g)
{
    if (!json_is_object(g) || str_of(g, "id") == NULL ||
        !agenda_hex_id_valid(str_of(g, "id"), AGENDA_GROUP_ID_LEN) ||
        str_of(g, "name") == NULL || str_of(g, "description") == NULL ||
        str_of(g, "calendar") == NULL || !json_is_object(members_of(g)) ||
        !json_is_integer(json_object_get(g, "created")) ||
        !json_is_integer(json_object_get(g, "updated")) ||
        !json_is_integer(json_object_get(g, "version")) ||
        int_of(g, "version") < 1 || int_of(g, "version") == INT64_MAX)
        return false;
    const char *user;
    json_t *r;
    json_object_foreach(members_of(g), user, r) {
        if (!agenda_username_valid(user) || !role_name_ok(json_string_value(r)))
            return false;
    }
    return true;
}

/* Returns 0 (*out new reference), MDB_NOTFOUND, MDB_CORRUPTED or another
 * LMDB error. */
static int group_load(struct agenda_ctx *c, const char *id, json_t **out)
{
    struct agenda_key k;
    MDB_val v;
    MDB_val key = group_key(&k, id);
    int rc = mdb_get(c->txn, c->db->groups, &key, &v);
    if (rc != 0)
        return rc;
    *out = json_loadb(v.mv_data, v.mv_size, JSON_REJECT_DUPLICATES, NULL);
    if (*out != NULL && group_record_ok(*out) &&
        strcmp(str_of(*out, "id"), id) == 0)
        return 0;
    json_decref(*out);
    *out = NULL;
    return MDB_CORRUPTED;
}

static int group_store(struct agenda_ctx *c, const json_t *g)
{
    struct agenda_key k;
    return agenda_put_json(c, c->db->groups, group_key(&k, str_of(g, "id")),
                           g);
}

/* The meta key remembering that a group id was used: "gone:" + id. */
static MDB_val tombstone_key(char buf[8 + AGENDA_GROUP_ID_LEN + 1],
                             const char *id)
{
    int n = snprintf(buf, 8 + AGENDA_GROUP_ID_LEN + 1, "gone:%s", id);
    return (MDB_val){(size_t)n, buf};
}

/*
 * Delete the group's record and remember its id for good: the group's
 * calendar ("g:<id>") lives on an events shard, which the edge empties
 * afterwards (calendar.purge), possibly not completely (a crash, a shard
 * down); an id never used twice means whatever is left there can never
 * be read by the members of a new group that took the old id.
 */
static int group_erase(struct agenda_ctx *c, const char *id)
{
    struct agenda_key k;
    MDB_val key = group_key(&k, id);
    int rc = mdb_del(c->txn, c->db->groups, &key, NULL);
    char tb[8 + AGENDA_GROUP_ID_LEN + 1];
    MDB_val tk = tombstone_key(tb, id);
    MDB_val empty = {0, tb};
    if (rc == 0)
        rc = mdb_put(c->txn, c->db->meta, &tk, &empty, 0);
    return rc;
}

/* Whether id belonged to a deleted group (0 no, 1 yes) or an LMDB error. */
static int group_id_used(struct agenda_ctx *c, const char *id)
{
    char tb[8 + AGENDA_GROUP_ID_LEN + 1];
    MDB_val tk = tombstone_key(tb, id), v;
    int rc = mdb_get(c->txn, c->db->meta, &tk, &v);
    return rc == 0 ? 1 : rc == MDB_NOTFOUND ? 0 : rc;
}

static int index_put(struct agenda_ctx *c, const char *user, const char *id,
                     const char *role)
{
    struct agenda_key k;
    MDB_val key = index_key(&k, user, id);
    MDB_val v = {strlen(role), (void *)(uintptr_t)role};
    return mdb_put(c->txn, c->db->group_members, &key, &v, 0);
}

static int index_del(struct agenda_ctx *c, const char *user, const char *id)
{
    struct agenda_key k;
    MDB_val key = index_key(&k, user, id);
    int rc = mdb_del(c->txn, c->db->group_members, &key, NULL);
    /* The goal (no entry) holds either way; never wedge the apply loop. */
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* How many groups user belongs to, counting no further than `stop`. */
static int user_group_count(struct agenda_ctx *c, const char *user,
                            size_t stop, size_t *n)
{
    struct agenda_key k;
    agenda_key_reset(&k);
    agenda_key_str(&k, user);
    MDB_cursor *cur;
    int rc = mdb_cursor_open(c->txn, c->db->group_members, &cur);
    if (rc != 0)
        return rc;
    MDB_val key = agenda_key_val(&k), v;
    size_t plen = key.mv_size;
    *n = 0;
    rc = mdb_cursor_get(cur, &key, &v, MDB_SET_RANGE);
    while (rc == 0 && *n < stop && key.mv_size > plen &&
           memcmp(key.mv_data, k.b, plen) == 0) {
        (*n)++;
        rc = mdb_cursor_get(cur, &key, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* The user's standing in g (none for the anonymous ""). */
static enum agenda_cal_role member_role(const json_t *g, const char *user)
{
    const char *r = json_string_value(json_object_get(members_of(g), user));
    if (r == NULL)
        return AGENDA_CAL_NONE;
    return strcmp(r, "leader") == 0 ? AGENDA_CAL_LEADER : AGENDA_CAL_MEMBER;
}

static size_t leader_count(const json_t *g)
{
    size_t n = 0;
    const char *user;
    json_t *r;
    json_object_foreach(members_of(g), user, r) {
        if (strcmp(json_string_value(r), "leader") == 0)
            n++;
    }
    return n;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The group as the API shows it.  New reference or NULL (ENOMEM). */
static json_t *group_view(const json_t *g)
{
    json_t *members = json_array();
    if (members == NULL)
        return NULL;
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:I,s:O}", "id", str_of(g, "id"),
                          "name", str_of(g, "name"), "description",
                          str_of(g, "description"), "calendar",
                          str_of(g, "calendar"), "version",
                          (json_int_t)int_of(g, "version"), "members",
                          members);
    /* o holds its own reference: members stays valid while o lives. */
    json_decref(members);
    if (o == NULL)
        return NULL;
    /* Canonical records keep members sorted by name; so does the view. */
    const char **names = malloc(sizeof(*names) *
                                (json_object_size(members_of(g)) + 1));
    size_t n = 0;
    const char *user;
    json_t *r;
    if (names == NULL) {
        json_decref(o);
        return NULL;
    }
    json_object_foreach(members_of(g), user, r) names[n++] = user;
    qsort(names, n, sizeof(*names), cmp_str);
    int bad = 0;
    for (size_t i = 0; i < n && !bad; i++) {
        r = json_object_get(members_of(g), names[i]);
        bad = json_array_append_new(
            members, json_pack("{s:s,s:s}", "user", names[i], "role",
                               json_string_value(r)));
    }
    free(names);
    if (bad || agenda_render_time(o, "created", int_of(g, "created")) ||
        agenda_render_time(o, "updated", int_of(g, "updated"))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* A short summary for change-feed entries. */
static json_t *group_summary(const json_t *g)
{
    return json_pack("{s:s,s:s,s:s,s:I}", "id", str_of(g, "id"), "name",
                     str_of(g, "name"), "calendar", str_of(g, "calendar"),
                     "version", (json_int_t)int_of(g, "version"));
}

/* ---- change feed ------------------------------------------------------- */

/* Append type to "group:<id>" and, when user is not NULL, to
 * "user:<user>" (so a member hears of changes to their own standing on
 * their own channel).  data is borrowed. */
static int feed_both(struct agenda_ctx *c, const char *id, const char *user,
                     const char *type, const json_t *data)
{
    char target[USER_TARGET_MAX > GROUP_TARGET_MAX ? USER_TARGET_MAX
                                                   : GROUP_TARGET_MAX];
    snprintf(target, sizeof(target), "group:%s", id);
    int rc = agenda_feed_append(c, target, type, id, data);
    if (rc == 0 && user != NULL) {
        snprintf(target, sizeof(target), "user:%s", user);
        rc = agenda_feed_append(c, target, type, id, data);
    }
    return rc;
}

/* ---- shared steps ------------------------------------------------------ */

static void set_audit(struct agenda_ctx *c, const char *id, const char *user)
{
    if (user == NULL)
        snprintf(c->audit_object, sizeof(c->audit_object), "group:%s", id);
    else
        snprintf(c->audit_object, sizeof(c->audit_object),
                 "group:%s/member:%s", id, user);
}

static bool arg_group_id(struct agenda_ctx *c,
                         char out[AGENDA_GROUP_ID_LEN + 1])
{
    const char *s;
    if (!agenda_arg_str(c, "id", true, &s))
        return false;
    if (!agenda_hex_id_valid(s, AGENDA_GROUP_ID_LEN)) {
        agenda_fail(c, 400, "invalid_field", "'id' must be %d lowercase "
                    "hexadecimal digits", AGENDA_GROUP_ID_LEN);
        return false;
    }
    memcpy(out, s, AGENDA_GROUP_ID_LEN + 1);
    return true;
}

/* An optional member role argument ("leader" or "member"). */
static bool arg_role(struct agenda_ctx *c, bool required, const char **out)
{
    if (!agenda_arg_str(c, "role", required, out))
        return false;
    if (!role_name_ok(*out)) {
        agenda_fail(c, 400, "invalid_field",
                    "'role' must be leader or member");
        return false;
    }
    return true;
}

/* Optional expected_version: true when present and valid. */
static bool arg_expected_version(struct agenda_ctx *c, int64_t *out)
{
    if (!agenda_arg_int(c, "expected_version", false, out))
        return false;
    if (*out < 1) {
        agenda_fail(c, 400, "invalid_field",
                    "'expected_version' must be a version (1 or more)");
        return false;
    }
    return true;
}

/* The operations need either sight of the group or its leadership. */
enum need { NEED_SEE, NEED_LEAD };

/* The 404 of a group the actor does not belong to, existing or not. */
#define GROUP_NOT_FOUND "there is no group '%s' that you belong to"

/*
 * Load group id and check the actor's standing.  Returns 0 with *g set
 * (new reference) when allowed; 0 with *g NULL and the answer set (404 for
 * non-members, so existence is not revealed; 403 for members who are not
 * leaders); or an LMDB error.  Admins and the edge stand as leaders.
 */
static int group_open(struct agenda_ctx *c, const char *id, enum need need,
                      json_t **g)
{
    *g = NULL;
    json_t *grp = NULL;
    int rc = group_load(c, id, &grp);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return rc;
    enum agenda_cal_role r =
        rc == 0 ? member_role(grp, c->actor.user) : AGENDA_CAL_NONE;
    bool admin = agenda_actor_is_admin(c);
    if (rc == MDB_NOTFOUND || (r == AGENDA_CAL_NONE && !admin)) {
        json_decref(grp);
        agenda_fail(c, 404, "not_found", GROUP_NOT_FOUND, id);
        return 0;
    }
    if (need == NEED_LEAD && r != AGENDA_CAL_LEADER && !admin) {
        json_decref(grp);
        agenda_fail(c, 403, "forbidden", "only a leader of group '%s' may "
                    "do %s", id, c->op);
        return 0;
    }
    *g = grp;
    return 0;
}

static bool version_matches(struct agenda_ctx *c, const json_t *g,
                            bool has_expected, int64_t expected)
{
    if (!has_expected || int_of(g, "version") == expected)
        return true;
    agenda_fail(c, 412, "version_mismatch", "group '%s' is at version %lld, "
                "not %lld; reload it and retry", str_of(g, "id"),
                (long long)int_of(g, "version"), (long long)expected);
    return false;
}

/* Every mutation bumps the version and the update time. */
static int group_touch(struct agenda_ctx *c, json_t *g)
{
    if (json_object_set_new(g, "version",
                            json_integer(int_of(g, "version") + 1)) ||
        json_object_set_new(g, "updated", json_integer(c->now_ms)))
        return ENOMEM;
    return 0;
}

/* Answer {"group": view, "sync_token"}. */
static int reply_group(struct agenda_ctx *c, int status, const json_t *g)
{
    json_t *view = group_view(g);
    json_t *body = view != NULL ? json_pack("{s:o}", "group", view) : NULL;
    return body == NULL ? ENOMEM : agenda_reply_synced(c, status, body);
}

/* Store a changed group and record change `type` about member `user` (or
 * the group alone when NULL), with data = summary plus extra (borrowed
 * keys merged in). */
static int commit_change(struct agenda_ctx *c, json_t *g, const char *user,
                         const char *type, json_t *extra)
{
    int rc = group_touch(c, g);
    if (rc == 0)
        rc = group_store(c, g);
    json_t *data = rc == 0 ? group_summary(g) : NULL;
    if (rc == 0 && (data == NULL ||
                    (extra != NULL && json_object_update(data, extra) != 0)))
        rc = ENOMEM;
    if (rc == 0)
        rc = feed_both(c, str_of(g, "id"), user, type, data);
    json_decref(data);
    json_decref(extra);
    return rc;
}

/* Remove the group and every index entry; tell each member.  g borrowed. */
static int group_destroy(struct agenda_ctx *c, const json_t *g)
{
    const char *id = str_of(g, "id");
    json_t *data = group_summary(g);
    if (data == NULL)
        return ENOMEM;
    int rc = group_erase(c, id);
    if (rc == 0)
        rc = feed_both(c, id, NULL, "group.deleted", data);
    const char *user;
    json_t *r;
    json_object_foreach(members_of(g), user, r) {
        if (rc == 0)
            rc = index_del(c, user, id);
        if (rc == 0) {
            char target[USER_TARGET_MAX];
            snprintf(target, sizeof(target), "user:%s", user);
            rc = agenda_feed_append(c, target, "group.deleted", id, data);
        }
    }
    json_decref(data);
    return rc;
}

/* ---- commands ---------------------------------------------------------- */

/*
 * group.create {id, name, description?} → 201 {"group", "sync_token"}.
 * id is minted by the leader; the actor becomes the first leader.
 * 409 group_exists; 413 too_many_groups (AGENDA_USER_GROUPS_MAX).
 */
static int group_create(struct agenda_ctx *c)
{
    static const char *const allowed[] = {"id", "name", "description", NULL};
    char id[AGENDA_GROUP_ID_LEN + 1];
    const char *name, *desc = "";
    if (!agenda_args_only(c, allowed) || !arg_group_id(c, id))
        return 0;
    set_audit(c, id, NULL);
    if (!agenda_arg_text(c, "name", true, AGENDA_GROUP_NAME_MAX, false,
                         false, &name) ||
        (!agenda_arg_text(c, "description", false,
                          AGENDA_GROUP_DESCRIPTION_MAX, true, true, &desc) &&
         agenda_failed(c)))
        return 0;
    if (c->actor.user[0] == '\0')
        return agenda_fail(c, 400, "invalid_actor", "group.create needs an "
                           "actor.user to lead the group");
    json_t *g;
    int rc = group_load(c, id, &g);
    if (rc == 0) {
        json_decref(g);
        return agenda_fail(c, 409, "group_exists",
                           "group '%s' exists; use a fresh id", id);
    }
    if (rc != MDB_NOTFOUND)
        return rc;
    rc = group_id_used(c, id);
    if (rc == 1)
        return agenda_fail(c, 409, "group_exists",
                           "group id '%s' belonged to a deleted group; use "
                           "a fresh id", id);
    if (rc != 0)
        return rc;
    size_t n;
    rc = user_group_count(c, c->actor.user, AGENDA_USER_GROUPS_MAX, &n);
    if (rc != 0)
        return rc;
    if (n >= AGENDA_USER_GROUPS_MAX)
        return agenda_fail(c, 413, "too_many_groups", "you belong to %d "
                           "groups, the most allowed; leave one first",
                           AGENDA_USER_GROUPS_MAX);
    char calendar[AGENDA_CALENDAR_MAX + 1];
    snprintf(calendar, sizeof(calendar), "%s%s",
             AGENDA_GROUP_CALENDAR_PREFIX, id);
    /* version 0 here: commit_change() makes it 1 like any mutation. */
    g = json_pack("{s:s,s:s,s:s,s:s,s:{s:s},s:I,s:I,s:I}", "id", id, "name",
                  name, "description", desc, "calendar", calendar, "members",
                  c->actor.user, "leader", "created", (json_int_t)c->now_ms,
                  "updated", (json_int_t)c->now_ms, "version",
                  (json_int_t)0);
    if (g == NULL)
        return ENOMEM;
    rc = index_put(c, c->actor.user, id, "leader");
    if (rc == 0)
        rc = commit_change(c, g, c->actor.user, "group.created",
                           json_pack("{s:s}", "role", "leader"));
    if (rc == 0)
        rc = reply_group(c, 201, g);
    json_decref(g);
    return rc;
}

/*
 * group.update {id, name?, description?, expected_version?}
 * → 200 {"group", "sync_token"}.  Leaders and admins.
 */
static int group_update(struct agenda_ctx *c)
{
    static const char *const allowed[] = {
        "id", "name", "description", "expected_version", NULL,
    };
    char id[AGENDA_GROUP_ID_LEN + 1];
    const char *name = NULL, *desc = NULL;
    int64_t expected = 0;
    if (!agenda_args_only(c, allowed) || !arg_group_id(c, id))
        return 0;
    set_audit(c, id, NULL);
    bool has_name = agenda_arg_text(c, "name", false, AGENDA_GROUP_NAME_MAX,
                                    false, false, &name);
    bool has_desc = !agenda_failed(c) &&
                    agenda_arg_text(c, "description", false,
                                    AGENDA_GROUP_DESCRIPTION_MAX, true, true,
                                    &desc);
    bool has_expected = !agenda_failed(c) &&
                        arg_expected_version(c, &expected);
    if (agenda_failed(c))
        return 0;
    if (!has_name && !has_desc)
        return agenda_fail(c, 400, "missing_field", "group.update needs "
                           "name or description (or both)");
    json_t *g;
    int rc = group_open(c, id, NEED_LEAD, &g);
    if (rc != 0 || g == NULL)
        return rc;
    if (!version_matches(c, g, has_expected, expected)) {
        json_decref(g);
        return 0;
    }
    if ((has_name && json_object_set_new(g, "name", json_string(name))) ||
        (has_desc &&
         json_object_set_new(g, "description", json_string(desc))))
        rc = ENOMEM;
    if (rc == 0)
        rc = commit_change(c, g, NULL, "group.updated",
                           json_pack("{s:s}", "description",
                                     str_of(g, "description")));
    if (rc == 0)
        rc = reply_group(c, 200, g);
    json_decref(g);
    return rc;
}

/* The 404 of group.delete for the id of a group deleted before: the same
 * as for any group the actor is not in, plus "gone": true for the edge,
 * which then
 * empties the calendar again in case a first deletion could not (its
 * events shard unreachable, the edge stopped).  The edge tells its own
 * client only the 404, so ids of past groups are revealed to no one. */
static int gone_not_found(struct agenda_ctx *c, const char *id)
{
    char msg[sizeof(GROUP_NOT_FOUND) + AGENDA_GROUP_ID_LEN];
    snprintf(msg, sizeof(msg), GROUP_NOT_FOUND, id);
    return agenda_reply(c, 404, json_pack("{s:{s:s,s:s,s:b}}", "error",
                                          "code", "not_found", "message",
                                          msg, "gone", 1));
}

/*
 * group.delete {id, expected_version?} → 200 {"id", "deleted": true,
 * "sync_token"}.  Leaders and admins.  The group calendar's events live on
 * an events shard: removing them is the edge's job.
 */
static int group_delete(struct agenda_ctx *c)
{
    static const char *const allowed[] = {"id", "expected_version", NULL};
    char id[AGENDA_GROUP_ID_LEN + 1];
    int64_t expected = 0;
    if (!agenda_args_only(c, allowed) || !arg_group_id(c, id))
        return 0;
    set_audit(c, id, NULL);
    bool has_expected = arg_expected_version(c, &expected);
    if (agenda_failed(c))
        return 0;
    json_t *g;
    int rc = group_open(c, id, NEED_LEAD, &g);
    if (rc == 0 && g == NULL && c->res->status == 404) {
        rc = group_id_used(c, id);
        if (rc == 1)
            return gone_not_found(c, id);
    }
    if (rc != 0 || g == NULL)
        return rc;
    if (!version_matches(c, g, has_expected, expected)) {
        json_decref(g);
        return 0;
    }
    /* who was in it: the edge tells each of them on their own channel */
    json_t *former = json_array();
    const char *user;
    json_t *role;
    rc = former == NULL ? ENOMEM : 0;
    json_object_foreach(json_object_get(g, "members"), user, role) {
        if (rc == 0 &&
            json_array_append_new(former, json_string(user)) != 0)
            rc = ENOMEM; /* a partial list would miss someone */
    }
    if (rc == 0)
        rc = group_destroy(c, g);
    json_decref(g);
    if (rc != 0) {
        json_decref(former);
        return rc;
    }
    return agenda_reply_synced(c, 200, json_pack("{s:s,s:b,s:o}", "id", id,
                                                 "deleted", 1, "members",
                                                 former));
}

/*
 * group.member_add {id, user, role?} → 201 {"group", "sync_token"}.
 * Leaders and admins.  role defaults to member.  The edge checks that the
 * account exists.  409 already_member; 413 too_many_members /
 * too_many_groups.
 */
static int group_member_add(struct agenda_ctx *c)
{
    static const char *const allowed[] = {"id", "user", "role", NULL};
    char id[AGENDA_GROUP_ID_LEN + 1], user[AGENDA_USERNAME_MAX + 1];
    const char *role = "member";
    if (!agenda_args_only(c, allowed) || !arg_group_id(c, id) ||
        !agenda_arg_username(c, "user", user))
        return 0;
    set_audit(c, id, user);
    if (!arg_role(c, false, &role) && agenda_failed(c))
        return 0;
    json_t *g;
    int rc = group_open(c, id, NEED_LEAD, &g);
    if (rc != 0 || g == NULL)
        return rc;
    size_t n = 0;
    if (member_role(g, user) != AGENDA_CAL_NONE)
        agenda_fail(c, 409, "already_member", "'%s' is already a member of "
                    "group '%s'; use group.member_role to change the role",
                    user, id);
    else if (json_object_size(members_of(g)) >= AGENDA_GROUP_MEMBERS_MAX)
        agenda_fail(c, 413, "too_many_members", "group '%s' has %d members, "
                    "the most allowed", id, AGENDA_GROUP_MEMBERS_MAX);
    else if ((rc = user_group_count(c, user, AGENDA_USER_GROUPS_MAX, &n)) ==
                 0 &&
             n >= AGENDA_USER_GROUPS_MAX)
        agenda_fail(c, 413, "too_many_groups", "'%s' belongs to %d groups, "
                    "the most allowed", user, AGENDA_USER_GROUPS_MAX);
    if (rc == 0 && !agenda_failed(c)) {
        if (json_object_set_new(members_of(g), user, json_string(role)))
            rc = ENOMEM;
        if (rc == 0)
            rc = index_put(c, user, id, role);
        if (rc == 0)
            rc = commit_change(c, g, user, "group.member_added",
                               json_pack("{s:s,s:s}", "user", user, "role",
                                         role));
        if (rc == 0)
            rc = reply_group(c, 201, g);
    }
    json_decref(g);
    return rc;
}

/*
 * group.member_remove {id, user} → 200 {"group", "sync_token"}.  Leaders
 * and admins.  404 not_member; 409 last_leader.
 */
static int group_member_remove(struct agenda_ctx *c)
{
    static const char *const allowed[] = {"id", "user", NULL};
    char id[AGENDA_GROUP_ID_LEN + 1], user[AGENDA_USERNAME_MAX + 1];
    if (!agenda_args_only(c, allowed) || !arg_group_id(c, id) ||
        !agenda_arg_username(c, "user", user))
        return 0;
    set_audit(c, id, user);
    json_t *g;
    int rc = group_open(c, id, NEED_LEAD, &g);
    if (rc != 0 || g == NULL)
        return rc;
    enum agenda_cal_role r = member_role(g, user);
    if (r == AGENDA_CAL_NONE)
        agenda_fail(c, 404, "not_member", "'%s' is not a member of group "
                    "'%s'", user, id);
    else if (r == AGENDA_CAL_LEADER && leader_count(g) == 1)
        agenda_fail(c, 409, "last_leader", "'%s' is the last leader of group "
                    "'%s'; make another member leader first, or delete the "
                    "group", user, id);
    if (!agenda_failed(c)) {
        if (json_object_del(members_of(g), user) != 0)
            rc = ENOMEM;
        if (rc == 0)
            rc = index_del(c, user, id);
        if (rc == 0)
            rc = commit_change(c, g, user, "group.member_removed",
                               json_pack("{s:s}", "user", user));
        if (rc == 0)
            rc = reply_group(c, 200, g);
    }
    json_decref(g);
    return rc;
}

/*
 * group.member_role {id, user, role} → 200 {"group", "sync_token"}.
 * Leaders and admins.  Setting the role a member already has changes
 * nothing.  404 not_member; 409 last_leader (demoting the last leader).
 */
static int group_member_role(struct agenda_ctx *c)
{
    static const char *const allowed[] = {"id", "user", "role", NULL};
    char id[AGENDA_GROUP_ID_LEN + 1], user[AGENDA_USERNAME_MAX + 1];
    const char *role;
    if (!agenda_args_only(c, allowed) || !arg_group_id(c, id) ||
        !agenda_arg_username(c, "user", user))
        return 0;
    set_audit(c, id, user);
    if (!arg_role(c, true, &role))
        return 0;
    json_t *g;
    int rc = group_open(c, id, NEED_LEAD, &g);
    if (rc != 0 || g == NULL)
        return rc;
    enum agenda_cal_role r = member_role(g, user);
    enum agenda_cal_role want =
        strcmp(role, "leader") == 0 ? AGENDA_CAL_LEADER : AGENDA_CAL_MEMBER;
    if (r == AGENDA_CAL_NONE)
        agenda_fail(c, 404, "not_member", "'%s' is not a member of group "
                    "'%s'", user, id);
    else if (r == AGENDA_CAL_LEADER && want == AGENDA_CAL_MEMBER &&
             leader_count(g) == 1)
        agenda_fail(c, 409, "last_leader", "'%s' is the last leader of group "
                    "'%s'; make another member leader first", user, id);
    if (!agenda_failed(c) && r != want) {
        if (json_object_set_new(members_of(g), user, json_string(role)))
            rc = ENOMEM;
        if (rc == 0)
            rc = index_put(c, user, id, role);
        if (rc == 0)
            rc = commit_change(c, g, user, "group.member_role_changed",
                               json_pack("{s:s,s:s}", "user", user, "role",
                                         role));
    }
    if (rc == 0 && !agenda_failed(c))
        rc = reply_group(c, 200, g);
    json_decref(g);
    return rc;
}

/*
 * group.leave {id} → 200 {"id", "left": true, "group_deleted", "sync_token"}.
 * The actor leaves; the last member leaving deletes the group; the last
 * leader may not leave other members behind (409 last_leader).
 */
static int group_leave(struct agenda_ctx *c)
{
    static const char *const allowed[] = {"id", NULL};
    char id[AGENDA_GROUP_ID_LEN + 1];
    if (!agenda_args_only(c, allowed) || !arg_group_id(c, id))
        return 0;
    set_audit(c, id, c->actor.user[0] != '\0' ? c->actor.user : NULL);
    if (c->actor.user[0] == '\0')
        return agenda_fail(c, 400, "invalid_actor", "group.leave needs an "
                           "actor.user");
    json_t *g = NULL;
    int rc = group_load(c, id, &g);
    if (rc == MDB_NOTFOUND ||
        (rc == 0 && member_role(g, c->actor.user) == AGENDA_CAL_NONE)) {
        json_decref(g);
        return agenda_fail(c, 404, "not_found", "there is no group '%s' "
                           "that you belong to", id);
    }
    if (rc != 0)
        return rc;
    bool alone = json_object_size(members_of(g)) == 1;
    if (!alone && member_role(g, c->actor.user) == AGENDA_CAL_LEADER &&
        leader_count(g) == 1) {
        json_decref(g);
        return agenda_fail(c, 409, "last_leader", "you are the last leader "
                           "of group '%s'; make another member leader "
                           "first, or delete the group", id);
    }
    if (alone) {
        rc = group_destroy(c, g);
    } else {
        if (json_object_del(members_of(g), c->actor.user) != 0)
            rc = ENOMEM;
        if (rc == 0)
            rc = index_del(c, c->actor.user, id);
        if (rc == 0)
            rc = commit_change(c, g, c->actor.user, "group.member_removed",
                               json_pack("{s:s,s:b}", "user", c->actor.user,
                                         "left", 1));
    }
    json_decref(g);
    if (rc != 0)
        return rc;
    return agenda_reply_synced(c, 200,
                               json_pack("{s:s,s:b,s:b}", "id", id, "left", 1,
                                         "group_deleted", alone));
}

/* ---- queries ----------------------------------------------------------- */

/* group.get {id} → 200 {"group"}: members, leaders, admins; 404 else. */
static int group_get(struct agenda_ctx *c)
{
    static const char *const allowed[] = {"id", NULL};
    char id[AGENDA_GROUP_ID_LEN + 1];
    if (!agenda_args_only(c, allowed) || !arg_group_id(c, id))
        return 0;
    json_t *g;
    int rc = group_open(c, id, NEED_SEE, &g);
    if (rc != 0 || g == NULL)
        return rc;
    json_t *view = group_view(g);
    json_decref(g);
    json_t *body = view != NULL ? json_pack("{s:o}", "group", view) : NULL;
    return body == NULL ? ENOMEM : agenda_reply(c, 200, body);
}

/*
 * group.list {user} → 200 {"groups": [{id, name, calendar, role,
 * version}]}: the groups user belongs to, in id order, from the index.
 * The user themself and admins.
 */
static int group_list(struct agenda_ctx *c)
{
    static const char *const allowed[] = {"user", NULL};
    char user[AGENDA_USERNAME_MAX + 1];
    if (!agenda_args_only(c, allowed) ||
        !agenda_arg_username(c, "user", user))
        return 0;
    if (strcmp(c->actor.user, user) != 0 && !agenda_actor_is_admin(c))
        return agenda_fail(c, 403, "forbidden", "only %s or an admin may "
                           "list the groups of %s", user, user);
    json_t *list = json_array();
    if (list == NULL)
        return ENOMEM;
    struct agenda_key k;
    agenda_key_reset(&k);
    agenda_key_str(&k, user);
    MDB_cursor *cur;
    int rc = mdb_cursor_open(c->txn, c->db->group_members, &cur);
    if (rc != 0) {
        json_decref(list);
        return rc;
    }
    MDB_val key = agenda_key_val(&k), v;
    size_t plen = key.mv_size;
    rc = mdb_cursor_get(cur, &key, &v, MDB_SET_RANGE);
    while (rc == 0 && key.mv_size > plen &&
           memcmp(key.mv_data, k.b, plen) == 0) {
        /* key: user 0 id 0 */
        const char *kid = (const char *)key.mv_data + plen;
        char id[AGENDA_GROUP_ID_LEN + 1];
        json_t *g = NULL;
        if (key.mv_size - plen != AGENDA_GROUP_ID_LEN + 1 ||
            kid[AGENDA_GROUP_ID_LEN] != '\0') {
            rc = MDB_CORRUPTED;
            break;
        }
        memcpy(id, kid, sizeof(id));
        rc = group_load(c, id, &g);
        if (rc == 0 && member_role(g, user) == AGENDA_CAL_NONE)
            rc = MDB_CORRUPTED; /* the index and the record disagree */
        if (rc != 0) {
            json_decref(g);
            rc = rc == MDB_NOTFOUND ? MDB_CORRUPTED : rc;
            break;
        }
        json_t *item = json_pack(
            "{s:s,s:s,s:s,s:s,s:I}", "id", id, "name", str_of(g, "name"),
            "calendar", str_of(g, "calendar"), "role",
            member_role(g, user) == AGENDA_CAL_LEADER ? "leader" : "member",
            "version", (json_int_t)int_of(g, "version"));
        json_decref(g);
        if (item == NULL || json_array_append_new(list, item) != 0) {
            rc = ENOMEM;
            break;
        }
        rc = mdb_cursor_get(cur, &key, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        json_decref(list);
        return rc;
    }
    json_t *body = json_pack("{s:o}", "groups", list);
    return body == NULL ? ENOMEM : agenda_reply(c, 200, body);
}

const struct agenda_op agenda_group_ops[] = {
    {"group.create", true, AGENDA_ON_GROUPS, group_create},
    {"group.update", true, AGENDA_ON_GROUPS, group_update},
    {"group.delete", true, AGENDA_ON_GROUPS, group_delete},
    {"group.member_add", true, AGENDA_ON_GROUPS, group_member_add},
    {"group.member_remove", true, AGENDA_ON_GROUPS, group_member_remove},
    {"group.member_role", true, AGENDA_ON_GROUPS, group_member_role},
    {"group.leave", true, AGENDA_ON_GROUPS, group_leave},
    {"group.get", false, AGENDA_ON_GROUPS, group_get},
    {"group.list", false, AGENDA_ON_GROUPS, group_list},
    {NULL, false, 0, NULL},
};

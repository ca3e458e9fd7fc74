/*
 * agenda_flow_changes.c — /changes (incremental sync), /audit and
 * /cluster (admins).
 *
 * Sync tokens.  A target's changes live on one or more shards, each with
 * its own sequence numbers:
 *   user:<me>        every shard (the users shard: the account; the groups
 *                    shard: memberships; each events shard: invitations)
 *   calendar:<cal>   the calendar's events shard
 *   group:<id>       the groups shard
 * The public token is opaque: base64url (no padding) of the compact JSON
 * object {"<shard name>": <seq>, ..., "#": <tag>} over exactly the
 * target's shards, the tag naming the target (flow_tag()).  A token
 * whose shard set differs from the target's (another target, or the
 * topology changed), or whose tag names another target (two calendars on
 * one shard, two groups), is 400 invalid_sync_token; a token without a
 * tag (made before there were tags) is taken as it is.  Any shard answering
 * 410 makes the whole answer 410 sync_token_expired.  In both cases the
 * client does a full sync.  Without ?since= the answer is the current
 * position (changes.head of each shard) and no changes: take it *before*
 * the full sync, then ask for what changed since.
 *
 * The audit log uses the same encoding for its cursor ({"shard": after}).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agenda_flow_internal.h"
#include "route.h"
#include "validate.h"

/* The key of a sync token's target tag (flow_tag()): no shard is named so
 * (topology names begin with a letter).  Without it a token of another
 * target on the same shards would be taken for this one's, and the
 * changes before its position never listed. */
#define TOKEN_TAG_KEY "#"

struct rec {
    int64_t time;
    const char *shard;
    json_int_t seq;
    json_t *v;
};

static int rec_cmp(const void *a, const void *b)
{
    const struct rec *x = a, *y = b;
    int c;

    if (x->time != y->time)
        return x->time < y->time ? -1 : 1;
    c = strcmp(x->shard, y->shard);
    if (c != 0)
        return c;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

/*
 * Merge the arrays under key of every answer, each item tagged with its
 * shard, by time, shard, seq; the new positions go to pos[shard] from
 * pos_key of each answer.  *more when any answer says so.
 *
 * A shard's records keep their own order (seq) whatever their times say:
 * the times are the leaders' clocks, and a new leader's may be behind
 * the old one's, which would list a deletion before the creation it
 * follows.  So a record sorts at the latest time of its shard so far.
 */
static json_t *merge_feed(struct agenda_flow *f, const char *key,
                          const char *pos_key, json_t *pos, bool *more)
{
    size_t n = 0, k = 0, j;
    struct rec *r;
    json_t *out = json_array(), *v;

    *more = false;
    for (size_t i = 0; i < f->n_ans; i++)
        n += json_array_size(json_object_get(f->ans[i].json, key));
    r = calloc(n + 1, sizeof *r);
    if (r == NULL || out == NULL)
        goto fail;
    for (size_t i = 0; i < f->n_ans; i++) {
        const char *shard = f->scratch != NULL
            ? json_string_value(json_array_get(
                  json_object_get(f->scratch, "shards"), i)) : NULL;
        json_t *a = f->ans[i].json, *p = json_object_get(a, pos_key);
        int64_t latest = INT64_MIN;

        if (shard == NULL)
            goto fail;
        if (json_is_true(json_object_get(a, "more")))
            *more = true;
        if (json_is_integer(p))
            flow_set(f, pos, shard, json_integer(json_integer_value(p)));
        json_array_foreach(json_object_get(a, key), j, v) {
            const char *t = json_string_value(json_object_get(v, "time"));
            int64_t ms = 0;

            if (!json_is_object(v))
                continue;
            if (t != NULL)
                (void)agenda_time_parse(t, &ms);
            if (ms < latest)
                ms = latest;
            latest = ms;
            if (json_object_set_new(v, "shard", json_string(shard)) != 0)
                goto fail;
            r[k++] = (struct rec){ms, shard,
                                  json_integer_value(json_object_get(v,
                                                                     "seq")),
                                  v};
        }
    }
    qsort(r, k, sizeof *r, rec_cmp);
    for (size_t i = 0; i < k; i++)
        if (json_array_append(out, r[i].v) != 0)
            goto fail;
    free(r);
    return out;
fail:
    free(r);
    json_decref(out);
    f->oom = true;
    return NULL;
}

/* Remember the shards of the fan-out, in call order, in scratch. */
static void add_call_shard(struct agenda_flow *f, const struct agenda_shard *s)
{
    json_t *list = json_object_get(f->scratch, "shards");

    if (list == NULL || json_array_append_new(list, json_string(s->name)))
        f->oom = true;
}

/* ---- GET /changes -------------------------------------------------------- */

/* Parse ?target= into scratch {"target", "kind"}; false when responded. */
static bool parse_target(struct agenda_flow *f)
{
    const char *t = flow_param(f, "target");
    char target[128], name[AGENDA_USERNAME_MAX + 1];

    if (t == NULL)
        snprintf(target, sizeof target, "user:%s", f->user);
    else if (strncmp(t, "user:", 5) == 0
             && agenda_username_fold(t + 5, name) == 0)
        snprintf(target, sizeof target, "user:%s", name);
    else if (strncmp(t, "calendar:g:", 11) == 0
             && agenda_hex_id_valid(t + 11, AGENDA_GROUP_ID_LEN))
        snprintf(target, sizeof target, "%s", t);
    else if (strncmp(t, "calendar:", 9) == 0
             && agenda_username_fold(t + 9, name) == 0)
        snprintf(target, sizeof target, "calendar:%s", name);
    else if (strncmp(t, "group:", 6) == 0
             && agenda_hex_id_valid(t + 6, AGENDA_GROUP_ID_LEN))
        snprintf(target, sizeof target, "%s", t);
    else {
        flow_error(f, 400, "invalid_target",
                   "target must be user:<name>, calendar:<name>, "
                   "calendar:g:<group id> or group:<group id>");
        return false;
    }
    f->scratch = json_pack("{s:s, s:[]}", "target", target, "shards");
    if (f->scratch == NULL) {
        f->oom = true;
        return false;
    }
    /* group feeds are read with the caller's role in the group */
    if (strncmp(target, "calendar:g:", 11) == 0)
        f->cal_raw = json_string_value(json_object_get(f->scratch,
                                                       "target")) + 9;
    else if (strncmp(target, "group:", 6) == 0) {
        char cal[AGENDA_CALENDAR_MAX + 1];

        snprintf(cal, sizeof cal, "g:%.16s", target + 6);
        flow_set_str(f, f->scratch, "cal", cal);
        f->cal_raw = json_string_value(json_object_get(f->scratch, "cal"));
    }
    return true;
}

/*
 * Who may read target's feed (API.md, changes.list): X and admins for
 * user:X and calendar:X, members and admins for a group's.  The shard
 * checks it for changes.list; changes.head has no target, so without
 * ?since= the edge must check it, or anyone could watch another user's
 * feed advance.
 */
static bool may_read_target(const struct agenda_flow *f, const char *target)
{
    const char *name = NULL;

    if (strcmp(f->role, "admin") == 0)
        return true;
    if (strncmp(target, "calendar:g:", 11) == 0
        || strncmp(target, "group:", 6) == 0)
        return strcmp(f->cal_role, "none") != 0;
    if (strncmp(target, "user:", 5) == 0)
        name = target + 5;
    else if (strncmp(target, "calendar:", 9) == 0)
        name = target + 9;
    return name != NULL && strcmp(name, f->user) == 0;
}

void flow_h_changes(struct agenda_flow *f)
{
    const struct agenda_topology *topo = f->env.topo;
    const char *target, *since = flow_param(f, "since");
    json_t *pos = NULL, *changes, *args;
    json_int_t tag;
    char *token;
    bool more;

    if (f->cal_stage == 0 && f->stage == 0) {
        /* a malformed limit is refused even where it would go unused
         * (without since), so that a client learns of it at once */
        args = flow_obj(f);
        if (flow_param_int(f, args, "limit") != 0) {
            json_decref(args);
            return;
        }
        json_decref(args);
        if (!parse_target(f))
            return;
        if (f->cal_raw == NULL)
            f->cal_stage = 2;
    }
    if (f->cal_raw != NULL && !flow_calendar_ready(f))
        return;
    target = json_string_value(json_object_get(f->scratch, "target"));
    if (f->stage == 0) {
        const struct agenda_shard *list[AGENDA_TOPO_MAX_SHARDS];
        size_t n = 0;

        if (!may_read_target(f, target)) {
            flow_error(f, 403, "forbidden",
                       "you may not read the changes of %s", target);
            return;
        }

        if (strncmp(target, "user:", 5) == 0)
            for (size_t i = 0; i < topo->n_shards; i++)
                list[n++] = &topo->shards[i];
        else if (strncmp(target, "group:", 6) == 0)
            list[n++] = agenda_route_kind(topo, AGENDA_SHARD_GROUPS);
        else
            list[n++] = agenda_route_calendar(topo, target + 9);
        if (since != NULL) {
            json_t *named;

            pos = flow_token_decode(since);
            named = json_object_get(pos, TOKEN_TAG_KEY);
            if (named != NULL) {
                if (json_integer_value(named) != flow_tag(target))
                    goto bad_token;
                json_object_del(pos, TOKEN_TAG_KEY);
            }
            if (pos == NULL || json_object_size(pos) != n)
                goto bad_token;
            for (size_t i = 0; i < n; i++)
                if (json_object_get(pos, list[i]->name) == NULL)
                    goto bad_token;
        }
        flow_calls_begin(f);
        for (size_t i = 0; i < n; i++) {
            add_call_shard(f, list[i]);
            if (since == NULL) {
                args = flow_obj(f);
            } else {
                args = json_pack("{s:s, s:O}", "target", target, "since",
                                 json_object_get(pos, list[i]->name));
                if (flow_param_int(f, args, "limit") != 0) {
                    json_decref(args);
                    json_decref(pos);
                    return;
                }
            }
            flow_call_as(f, list[i], false,
                         since == NULL ? "changes.head" : "changes.list",
                         args, f->user, f->role, f->cal_role);
            /* at the leader even when asked stale: a lagging replica's
             * head is refused by the others (400), and its list ends
             * early */
            flow_last_call_fresh(f);
        }
        json_decref(pos);
        flow_calls_emit(f);
        f->stage = 1;
        return;
    }
    for (size_t i = 0; i < f->n_ans; i++) {
        if (f->ans[i].status == 410) {
            flow_error(f, 410, "sync_token_expired",
                       "the sync token is too old: GET /changes without "
                       "since for a new token, then do a full sync and go "
                       "on from that token");
            return;
        }
        if (f->ans[i].status == 400 && since != NULL) {
            const char *code = json_string_value(json_object_get(
                json_object_get(f->ans[i].json, "error"), "code"));

            if (code != NULL && strcmp(code, "invalid_sync_token") == 0)
                goto bad_token;
        }
    }
    if (flow_first_failure(f) >= 0) {
        flow_shard_error(f, (size_t)flow_first_failure(f));
        return;
    }
    pos = flow_obj(f);
    changes = merge_feed(f, "changes", "sync_token", pos, &more);
    tag = flow_tag(target);
    if (pos != NULL
        && (tag < 0 || json_object_set_new(pos, TOKEN_TAG_KEY,
                                           json_integer(tag)) != 0))
        f->oom = true;
    token = pos != NULL && !f->oom ? flow_token_encode(pos) : NULL;
    json_decref(pos);
    if (changes == NULL || token == NULL) {
        json_decref(changes);
        free(token);
        f->oom = true;
        return;
    }
    flow_respond(f, 200, json_pack("{s:s, s:o, s:s, s:b}", "target", target,
                                   "changes", changes, "sync_token", token,
                                   "more", more));
    free(token);
    return;
bad_token:
    json_decref(pos);
    flow_error(f, 400, "invalid_sync_token",
               "this sync token is not one of this target's (or the "
               "cluster changed): do a full sync");
}

/* ---- GET /audit (admins) ------------------------------------------------- */

void flow_h_audit(struct agenda_flow *f)
{
    const struct agenda_topology *topo = f->env.topo;
    const char *cursor = flow_param(f, "cursor");
    json_t *pos = NULL, *records, *args;
    char *next;
    bool more;

    if (f->stage == 0) {
        if (strcmp(f->role, "admin") != 0) {
            flow_error(f, 403, "forbidden", "only admins read the audit log");
            return;
        }
        if (cursor != NULL) {
            pos = flow_token_decode(cursor);
            if (pos == NULL) {
                flow_error(f, 400, "invalid_cursor",
                           "give back a cursor from an earlier answer");
                return;
            }
        }
        f->scratch = json_pack("{s:[]}", "shards");
        if (f->scratch == NULL) {
            json_decref(pos);
            f->oom = true;
            return;
        }
        flow_calls_begin(f);
        for (size_t i = 0; i < topo->n_shards; i++) {
            json_t *after = json_object_get(pos, topo->shards[i].name);

            args = json_pack("{s:I}", "after",
                             after != NULL ? json_integer_value(after) : 0);
            if (flow_param_int(f, args, "limit") != 0) {
                json_decref(args);
                json_decref(pos);
                return;
            }
            add_call_shard(f, &topo->shards[i]);
            flow_call(f, &topo->shards[i], false, "audit.list", args);
        }
        json_decref(pos);
        flow_calls_emit(f);
        f->stage = 1;
        return;
    }
    if (flow_first_failure(f) >= 0) {
        flow_shard_error(f, (size_t)flow_first_failure(f));
        return;
    }
    pos = flow_obj(f);
    records = merge_feed(f, "records", "next_after", pos, &more);
    next = pos != NULL && !f->oom ? flow_token_encode(pos) : NULL;
    json_decref(pos);
    if (records == NULL || next == NULL) {
        json_decref(records);
        free(next);
        f->oom = true;
        return;
    }
    flow_respond(f, 200, json_pack("{s:o, s:s, s:b}", "records", records,
                                   "cursor", next, "more", more));
    free(next);
}

/* ---- GET /cluster (admins) ----------------------------------------------- */

/* More replicas than this are shown as configured only: every status call
 * is a subrequest, and the executor allows a few dozen per request. */
#define FLOW_CLUSTER_STATUS_MAX 32

/* The live fields of one replica's GET /status answer (API.md), or
 * {"reachable": false}. */
static json_t *replica_status(struct agenda_flow *f, size_t i)
{
    static const char *const keys[] = {
        "role", "term", "leader_id", "commit_index", "applied_index",
        "last_index", "healthy", "storage_full", NULL};
    json_t *st, *a;

    if (i >= f->n_ans || !flow_ok(f, i) || f->ans[i].status != 200)
        return json_pack("{s:b}", "reachable", false);
    a = f->ans[i].json;
    st = json_pack("{s:b}", "reachable", true);
    for (size_t k = 0; st != NULL && keys[k] != NULL; k++) {
        json_t *v = json_object_get(a, keys[k]);

        if (v != NULL && !json_is_object(v) && !json_is_array(v))
            flow_set(f, st, keys[k], json_incref(v));
    }
    return st;
}

/*
 * The configured layout, and with it each replica's live state from its
 * GET /status (role, leader, term, commit index) and per shard the leader
 * that the replica in the highest term reports, with its commit index.
 */
void flow_h_cluster(struct agenda_flow *f)
{
    const struct agenda_topology *topo = f->env.topo;
    size_t total = 0, k = 0;
    bool live;
    json_t *shards;

    if (f->stage == 0) {
        if (strcmp(f->role, "admin") != 0) {
            flow_error(f, 403, "forbidden", "only admins see the cluster");
            return;
        }
        for (size_t i = 0; i < topo->n_shards; i++)
            total += topo->shards[i].n_replicas;
        if (total > 0 && total <= FLOW_CLUSTER_STATUS_MAX) {
            flow_calls_begin(f);
            for (size_t i = 0; i < topo->n_shards; i++)
                for (size_t r = 0; r < topo->shards[i].n_replicas; r++)
                    flow_call_status(f, &topo->shards[i],
                                     &topo->shards[i].replicas[r]);
            flow_calls_emit(f);
            f->stage = 1;
            return;
        }
        f->stage = 2;
    }
    live = f->stage == 1;
    shards = json_array();
    for (size_t i = 0; shards != NULL && i < topo->n_shards; i++) {
        const struct agenda_shard *s = &topo->shards[i];
        json_t *reps = json_array(), *leader = json_null();
        json_int_t best_term = -1;

        for (size_t r = 0; reps != NULL && r < s->n_replicas; r++, k++) {
            json_t *rep = json_pack(
                "{s:i, s:s, s:s, s:i}", "id", (int)s->replicas[r].id,
                "name", s->replicas[r].name, "host", s->replicas[r].host,
                "http_port", (int)s->replicas[r].http_port);
            json_t *st = live ? replica_status(f, k) : NULL;
            json_t *term = json_object_get(st, "term");
            const char *role = json_string_value(json_object_get(st,
                                                                 "role"));

            if (st != NULL && role != NULL && strcmp(role, "leader") == 0
                && json_is_integer(term)
                && json_integer_value(term) > best_term) {
                best_term = json_integer_value(term);
                json_decref(leader);
                leader = json_pack("{s:i, s:O, s:O}", "id",
                                   (int)s->replicas[r].id, "term", term,
                                   "commit_index", json_object_get(
                                       st, "commit_index") != NULL
                                       ? json_object_get(st, "commit_index")
                                       : json_null());
            }
            if (st != NULL)
                flow_set(f, rep, "status", st);
            if (json_array_append_new(reps, rep) != 0)
                f->oom = true;
        }
        if (json_array_append_new(shards, json_pack(
                "{s:s, s:s, s:{s:s, s:s}, s:o?, s:o?}", "name", s->name,
                "kind", agenda_shard_kind_name(s->kind), "range",
                "from", s->range_from, "to", s->range_to,
                "replicas", reps, "leader", live ? leader : NULL)) != 0)
            f->oom = true;
        if (!live)
            json_decref(leader);
    }
    flow_respond(f, 200, json_pack("{s:s, s:o?}", "cluster", topo->cluster,
                                   "shards", shards));
}

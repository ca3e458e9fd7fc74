/*
 * agenda_flow_fanout.c — the scatter-gather routes: /agenda,
 * /invitations and /freebusy ask every events shard in parallel (one CALL
 * action with a call per shard) and merge the answers here.
 *
 * Answers are all-or-nothing: when any shard fails the client gets that
 * shard's error (503 when it is unreachable), never a silently partial
 * view.  Each shard is asked for up to FLOW_FANOUT_LIMIT items; when a
 * shard had more, the answer says "truncated": true, ends where that
 * shard's did, and gives a next_cursor to ask for the rest.
 *
 * Paging.  /agenda and /invitations merge several walks (the caller's
 * calendar, the caller's invitations on each events shard) and show a
 * prefix of each: the merge ends at the first walk that stopped early,
 * and the other walks' later items are left for the next page.  So a
 * walk resumes after the last item of it the page showed, which is not
 * where its own page ended: the client's cursor is base64url of
 * {"from", "to", "after": [per walk, in call order: null (from the
 * start) or [start ms, calendar, id]], "status" (/invitations' filter,
 * or null)}, and each walk is asked with that
 * "after" (events.c, arg_after).  Only items strictly after are shown
 * again, so a page always moves on, however many events share an
 * instant or overlap the window's start.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agenda_flow_internal.h"
#include "route.h"
#include "validate.h"

#define DAY_MS (24LL * 3600 * 1000)

struct item {
    int64_t start;
    const char *cal, *id;
    json_t *ev;
    size_t call;
};

static int item_cmp(const void *a, const void *b)
{
    const struct item *x = a, *y = b;
    int c;

    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    c = strcmp(x->cal, y->cal);
    return c != 0 ? c : strcmp(x->id, y->id);
}

/* Item j of answer i into *it; false when it is not an event.  Its start
 * is where the shard's walk placed it: an all-day event's start_at (the
 * start date's first instant in its time zone) when it has one. */
static bool item_at(struct agenda_flow *f, size_t i, size_t j,
                    struct item *it)
{
    json_t *ev = json_array_get(json_object_get(f->ans[i].json, "events"),
                                j);
    json_t *at = json_object_get(ev, "start_at");
    const char *st = json_string_value(at != NULL
                                       ? at : json_object_get(ev, "start"));

    it->cal = json_string_value(json_object_get(ev, "calendar"));
    it->id = json_string_value(json_object_get(ev, "id"));
    it->ev = ev;
    it->call = i;
    return it->cal != NULL && it->id != NULL && st != NULL
           && flow_parse_when(st, &it->start);
}

/*
 * Merge the "events" arrays of every answer: in start order (then
 * calendar, then id), each (calendar, id) once, the first answer that has
 * it winning (for /agenda the caller's own calendar comes first, so its
 * full view wins over the same event seen as an invitation).
 *
 * *truncated is set when a walk had more.  The merge then ends at that
 * walk's last item: another walk's later events would show a stretch of
 * time with this one's events missing, as if there were none.  What is
 * kept is a prefix in merge order, complete up to there.  after (one
 * entry per answer, see the top of the file) moves to each walk's last
 * item within that prefix, shown or a duplicate of one shown.  Returns a
 * new array or NULL.
 */
static json_t *merge_events(struct agenda_flow *f, json_t *after,
                            bool *truncated)
{
    size_t n = 0, k = 0, j, len;
    struct item *items, it, cut = {INT64_MAX, "", "", NULL, 0};
    bool cut_set = false;
    json_t *seen, *out;

    *truncated = false;
    for (size_t i = 0; i < f->n_ans; i++)
        n += json_array_size(json_object_get(f->ans[i].json, "events"));
    items = calloc(n + 1, sizeof *items);
    seen = json_object();
    out = json_array();
    if (items == NULL || seen == NULL || out == NULL)
        goto fail;
    /* where the merge ends: the least of the stopped walks' last items */
    for (size_t i = 0; i < f->n_ans; i++) {
        struct item last = {INT64_MIN, "", "", NULL, i};

        if (!json_is_string(json_object_get(f->ans[i].json, "next_cursor")))
            continue;
        *truncated = true;
        len = json_array_size(json_object_get(f->ans[i].json, "events"));
        for (j = 0; j < len; j++)
            if (item_at(f, i, j, &it) && item_cmp(&it, &last) > 0)
                last = it;
        if (last.ev != NULL && (!cut_set || item_cmp(&last, &cut) < 0)) {
            cut = last;
            cut_set = true;
        }
    }
    for (size_t i = 0; i < f->n_ans; i++) {
        struct item last = {INT64_MIN, "", "", NULL, i};

        len = json_array_size(json_object_get(f->ans[i].json, "events"));
        for (j = 0; j < len; j++) {
            char key[AGENDA_CALENDAR_MAX + AGENDA_EVENT_ID_LEN + 2];

            if (!item_at(f, i, j, &it))
                continue; /* not an event: skip rather than fail */
            if (cut_set && item_cmp(&it, &cut) > 0)
                continue; /* the next page's */
            if (item_cmp(&it, &last) > 0)
                last = it;
            snprintf(key, sizeof key, "%s/%s", it.cal, it.id);
            if (json_object_get(seen, key) != NULL)
                continue;
            if (json_object_set_new(seen, key, json_true()) != 0)
                goto fail;
            items[k++] = it;
        }
        if (last.ev != NULL
            && json_array_set_new(after, i,
                                  json_pack("[I, s, s]",
                                            (json_int_t)last.start,
                                            last.cal, last.id)) != 0)
            goto fail;
    }
    qsort(items, k, sizeof *items, item_cmp);
    for (size_t i = 0; i < k; i++)
        if (json_array_append(out, items[i].ev) != 0)
            goto fail;
    free(items);
    json_decref(seen);
    return out;
fail:
    free(items);
    json_decref(seen);
    json_decref(out);
    f->oom = true;
    return NULL;
}

/* The args of walk i: the window, the limit and, on a later page, the
 * item to resume after (from f->scratch, see paging_begin). */
static json_t *window_args(struct agenda_flow *f, size_t i)
{
    json_t *after = json_array_get(json_object_get(f->scratch, "after"), i);
    json_t *a = json_pack("{s:O, s:O, s:i}",
                          "from", json_object_get(f->scratch, "from"),
                          "to", json_object_get(f->scratch, "to"),
                          "limit", FLOW_FANOUT_LIMIT);

    if (a != NULL && json_is_array(after)
        && json_object_set_new(a, "after",
                               json_pack("{s:O, s:O, s:O}",
                                         "start", json_array_get(after, 0),
                                         "calendar", json_array_get(after, 1),
                                         "id", json_array_get(after, 2)))
               != 0) {
        json_decref(a);
        a = NULL;
    }
    if (a == NULL)
        f->oom = true;
    return a;
}

/* Whether after (from a client's cursor) holds n entries, each null or
 * [start ms, calendar, id]; the shards check the rest. */
static bool after_valid(const json_t *after, size_t n)
{
    size_t i;
    json_t *a;

    if (!json_is_array(after) || json_array_size(after) != n)
        return false;
    json_array_foreach(after, i, a) {
        if (json_is_null(a))
            continue;
        if (!json_is_array(a) || json_array_size(a) != 3
            || !json_is_integer(json_array_get(a, 0))
            || !json_is_string(json_array_get(a, 1))
            || !json_is_string(json_array_get(a, 2)))
            return false;
    }
    return true;
}

int64_t agenda_flow_events_tag(const struct agenda_topology *t)
{
    char *names = malloc(t->n_events * (AGENDA_TOPO_NAME_LEN_MAX + 1) + 1);
    size_t len = 0;
    json_int_t tag;

    if (names == NULL)
        return -1;
    for (size_t i = 0; i < t->n_events; i++) {
        size_t n = strlen(t->events[i]->name);

        memcpy(names + len, t->events[i]->name, n);
        len += n;
        names[len++] = '\n';
    }
    names[len] = '\0';
    tag = flow_tag(names);
    free(names);
    return tag;
}

/*
 * Keep in f->scratch the window and where each of the n walks starts:
 * from ?cursor= when given (its window wins; from/to given too must be
 * the same; made on these events shards), else from/to and every walk
 * from its start.  False when it responded (400).  A cursor without the
 * shards' tag (from an edge before it) is taken as it is.
 */
static bool paging_begin(struct agenda_flow *f, const char *from,
                         const char *to, size_t n)
{
    const char *cursor = flow_param(f, "cursor");
    const char *status = flow_param(f, "status");
    json_int_t tag = f->env.events_tag;
    json_t *c, *cs, *ct;

    if (tag < 0) {
        f->oom = true;
        return false;
    }
    if (cursor == NULL) {
        json_t *after = json_array();

        for (size_t i = 0; after != NULL && i < n; i++)
            if (json_array_append_new(after, json_null()) != 0) {
                json_decref(after);
                after = NULL;
            }
        f->scratch = after != NULL
                         ? json_pack("{s:s, s:s, s:o, s:s?, s:I}", "from",
                                     from, "to", to, "after", after,
                                     "status", status, "shards", tag)
                         : NULL;
        if (f->scratch == NULL)
            f->oom = true;
        return f->scratch != NULL;
    }
    c = flow_b64_object_decode(cursor, FLOW_CURSOR_MAX);
    cs = json_object_get(c, "status");
    ct = json_object_get(c, "shards");
    if (c == NULL || json_object_size(c) != (ct != NULL ? 5u : 4u)
        || (ct != NULL && json_integer_value(ct) != tag)
        || !json_is_string(json_object_get(c, "from"))
        || !json_is_string(json_object_get(c, "to"))
        || !after_valid(json_object_get(c, "after"), n)
        || (flow_param(f, "from") != NULL
            && strcmp(flow_param(f, "from"),
                      json_string_value(json_object_get(c, "from"))) != 0)
        || (flow_param(f, "to") != NULL
            && strcmp(flow_param(f, "to"),
                      json_string_value(json_object_get(c, "to"))) != 0)
        || (status == NULL ? !json_is_null(cs)
                           : !json_is_string(cs)
                             || strcmp(status, json_string_value(cs)) != 0)) {
        json_decref(c);
        flow_error(f, 400, "invalid_cursor",
                   "'cursor' must be the next_cursor of an earlier answer "
                   "to the same request");
        return false;
    }
    f->scratch = c;
    return true;
}

/* Respond with the first failure; true when there was one. */
static bool any_failure(struct agenda_flow *f)
{
    long i = flow_first_failure(f);

    if (i < 0)
        return false;
    flow_shard_error(f, (size_t)i);
    return true;
}

static bool need_window(struct agenda_flow *f)
{
    if (flow_param(f, "from") != NULL && flow_param(f, "to") != NULL)
        return true;
    flow_error(f, 400, "missing_parameter",
               "give ?from= and ?to= (RFC 3339 instants)");
    return false;
}

/* One event.list_participant call per events shard (the caller's
 * invitations there), with the given response filter or none; walk
 * first + i is shard i's. */
static void participant_calls(struct agenda_flow *f, size_t first,
                              const char *response)
{
    const struct agenda_topology *t = f->env.topo;
    json_t *args;

    for (size_t i = 0; i < t->n_events; i++) {
        args = window_args(f, first + i);
        flow_set_str(f, args, "user", f->user);
        if (response != NULL)
            flow_set_str(f, args, "response", response);
        flow_call(f, t->events[i], false, "event.list_participant", args);
    }
}

/* Answer {from, to, <key>: the merged events, truncated, next_cursor},
 * or the first shard's failure. */
static void respond_merged(struct agenda_flow *f, const char *key)
{
    json_t *events, *first, *next = NULL;
    bool truncated;
    char *token = NULL;

    if (any_failure(f))
        return;
    events = merge_events(f, json_object_get(f->scratch, "after"),
                          &truncated);
    if (events == NULL)
        return;
    if (truncated) {
        token = flow_token_encode(f->scratch);
        next = token != NULL ? json_string(token) : NULL;
        free(token);
        if (next == NULL) {
            json_decref(events);
            f->oom = true;
            return;
        }
    }
    first = f->ans[0].json;
    flow_respond(f, 200,
                 json_pack("{s:O?, s:O?, s:o, s:b, s:o}",
                           "from", json_object_get(first, "from"),
                           "to", json_object_get(first, "to"),
                           key, events, "truncated", truncated,
                           "next_cursor", next != NULL ? next
                                                       : json_null()));
}

/* ---- GET /agenda --------------------------------------------------------- */

void flow_h_agenda(struct agenda_flow *f)
{
    const char *from = flow_param(f, "from"), *to = flow_param(f, "to");
    const struct agenda_topology *t = f->env.topo;
    json_t *args;

    if (f->stage == 0) {
        if (flow_param(f, "cursor") == NULL && !need_window(f))
            return;
        if (!paging_begin(f, from, to, 1 + t->n_events))
            return;
        flow_calls_begin(f);
        args = window_args(f, 0);
        flow_set_str(f, args, "calendar", f->user);
        flow_call(f, agenda_route_calendar(t, f->user), false, "event.list",
                  args);
        participant_calls(f, 1, NULL);
        flow_calls_emit(f);
        f->stage = 1;
        return;
    }
    respond_merged(f, "events");
}

/* ---- GET /invitations ---------------------------------------------------- */

/*
 * Without from/to the window is [now - 1 day, now + 365 days): what is
 * still worth answering (the shards allow 366 days at most).
 */
void flow_h_invitations(struct agenda_flow *f)
{
    const char *from = flow_param(f, "from"), *to = flow_param(f, "to");
    const char *status = flow_param(f, "status");
    char dfrom[32], dto[32];

    if (f->stage == 0) {
        if ((from == NULL) != (to == NULL)) {
            flow_error(f, 400, "missing_parameter",
                       "give both ?from= and ?to=, or neither");
            return;
        }
        if (from == NULL && flow_param(f, "cursor") == NULL) {
            agenda_time_format(f->env.now_s * 1000 - DAY_MS, dfrom,
                               sizeof dfrom);
            agenda_time_format(f->env.now_s * 1000 + 365 * DAY_MS, dto,
                               sizeof dto);
            from = dfrom;
            to = dto;
        }
        if (!paging_begin(f, from, to, f->env.topo->n_events))
            return;
        flow_calls_begin(f);
        participant_calls(f, 0, status);
        flow_calls_emit(f);
        f->stage = 1;
        return;
    }
    respond_merged(f, "invitations");
}

/* ---- GET /freebusy ------------------------------------------------------- */

struct span {
    int64_t start, end;
};

static int span_cmp(const void *a, const void *b)
{
    const struct span *x = a, *y = b;

    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}

/* user's busy intervals in answer i (one per events shard). */
static json_t *busy_in(struct agenda_flow *f, size_t i, const char *user)
{
    return json_object_get(json_object_get(f->ans[i].json, "users"), user);
}

/* The union of user's intervals in answers [0, n) as [{start, end}],
 * sorted. */
static json_t *merge_busy(struct agenda_flow *f, size_t n, const char *user)
{
    size_t total = 0, k = 0, j;
    struct span *s;
    json_t *out = json_array(), *b;

    for (size_t i = 0; i < n; i++)
        total += json_array_size(busy_in(f, i, user));
    s = calloc(total + 1, sizeof *s);
    if (s == NULL || out == NULL)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        json_array_foreach(busy_in(f, i, user), j, b) {
            const char *st = json_string_value(json_object_get(b, "start"));
            const char *en = json_string_value(json_object_get(b, "end"));
            struct span sp;

            if (st != NULL && en != NULL && flow_parse_when(st, &sp.start)
                && flow_parse_when(en, &sp.end) && sp.end > sp.start)
                s[k++] = sp;
        }
    }
    qsort(s, k, sizeof *s, span_cmp);
    for (size_t i = 0; i < k;) {
        struct span cur = s[i++];
        char a[32], e[32];

        /* overlapping or touching intervals are one busy stretch */
        while (i < k && s[i].start <= cur.end) {
            if (s[i].end > cur.end)
                cur.end = s[i].end;
            i++;
        }
        if (agenda_time_format(cur.start, a, sizeof a) < 0
            || agenda_time_format(cur.end, e, sizeof e) < 0)
            continue;
        if (json_array_append_new(out, json_pack("{s:s, s:s}", "start", a,
                                                 "end", e)) != 0)
            goto fail;
    }
    free(s);
    return out;
fail:
    free(s);
    json_decref(out);
    f->oom = true;
    return NULL;
}

void flow_h_freebusy(struct agenda_flow *f)
{
    const struct agenda_topology *t = f->env.topo;
    const char *list = flow_param(f, "users");
    json_t *users, *args, *per, *first, *u;
    size_t n, i;

    if (f->stage == 0) {
        char name[64];
        const char *p = list;

        if (list == NULL || list[0] == '\0') {
            flow_error(f, 400, "missing_parameter",
                       "give ?users=a,b (comma-separated usernames)");
            return;
        }
        if (!need_window(f))
            return;
        users = json_array();
        f->scratch = users;
        if (users == NULL) {
            f->oom = true;
            return;
        }
        while (*p != '\0') {
            size_t len = strcspn(p, ",");
            char folded[AGENDA_USERNAME_MAX + 1];
            bool dup = false;

            snprintf(name, sizeof name, "%.*s",
                     (int)(len < 63 ? len : 63), p);
            if (len > AGENDA_USERNAME_MAX
                || agenda_username_fold(name, folded) != 0) {
                flow_error(f, 400, "invalid_parameter",
                           "users must be comma-separated usernames");
                return;
            }
            json_array_foreach(users, i, u)
                if (strcmp(json_string_value(u), folded) == 0)
                    dup = true;
            if (!dup && json_array_append_new(users, json_string(folded))
                != 0) {
                f->oom = true;
                return;
            }
            if (json_array_size(users) > FLOW_FREEBUSY_USERS) {
                flow_error(f, 400, "too_many_users",
                           "at most %d users at once", FLOW_FREEBUSY_USERS);
                return;
            }
            p += len;
            if (*p == ',')
                p++;
        }
        /* one call per events shard for all the users: a call per user
         * and shard would pass agenda_max_calls with enough users */
        flow_calls_begin(f);
        for (size_t s = 0; s < t->n_events; s++) {
            args = json_pack("{s:O, s:s, s:s}", "users", users,
                             "from", flow_param(f, "from"),
                             "to", flow_param(f, "to"));
            flow_call(f, t->events[s], false, "event.freebusy", args);
        }
        flow_calls_emit(f);
        f->stage = 1;
        return;
    }
    if (any_failure(f))
        return;
    users = f->scratch;
    n = t->n_events;
    per = flow_obj(f);
    json_array_foreach(users, i, u) {
        json_t *busy = merge_busy(f, n, json_string_value(u));

        if (busy == NULL)
            return;
        flow_set(f, per, json_string_value(u), busy);
    }
    first = f->ans[0].json;
    flow_respond(f, 200,
                 json_pack("{s:O?, s:O?, s:o}",
                           "from", json_object_get(first, "from"),
                           "to", json_object_get(first, "to"),
                           "users", per));
}

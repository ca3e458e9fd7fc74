/*
 * agenda_flow.c — the public API's routes and the flow's life cycle:
 * start, dispatch, the checks every request goes through, and the
 * executor's entry points.
 *
 * Order of the checks (so that an anonymous client learns nothing but
 * "authenticate" about a protected route): route (404/405), Origin (403),
 * bearer token (401), Idempotency-Key, query and body (400/413/415), then
 * the token's subject: its entry in the auth cache when the executor has
 * one and it is fresh, else user.auth (401), then the route's handler.
 */
#include <stdlib.h>
#include <string.h>

#include "agenda_flow_internal.h"

/* ---- the route table ----------------------------------------------------- */

static const char *const f_register[] = {"username", "password",
                                         "display_name", "email", NULL};
static const char *const f_login[] = {"username", "password", NULL};
static const char *const f_me[] = {"display_name", "email", NULL};
static const char *const f_password[] = {"current_password",
                                         "new_password", NULL};
static const char *const f_event_new[] = {
    "id", "title", "description", "location", "start", "end", "all_day",
    "time_zone", "visibility", "participants", "conflict_policy", NULL};
static const char *const f_event[] = {
    "title", "description", "location", "start", "end", "all_day",
    "time_zone", "visibility", "participants", "conflict_policy", NULL};
static const char *const f_rsvp[] = {"response", NULL};
static const char *const f_group_new[] = {"id", "name", "description",
                                          NULL};
static const char *const f_group[] = {"name", "description", NULL};
static const char *const f_member_new[] = {"user", "role", NULL};
static const char *const f_member[] = {"role", NULL};

static const char *const p_none[] = {NULL};
static const char *const p_read[] = {"consistency", NULL};
static const char *const p_users[] = {"prefix", "limit", "consistency",
                                      NULL};
static const char *const p_list[] = {"from", "to", "cursor", "limit",
                                     "consistency", NULL};
static const char *const p_agenda[] = {"from", "to", "cursor",
                                       "consistency", NULL};
static const char *const p_invit[] = {"status", "from", "to", "cursor",
                                      "consistency", NULL};
static const char *const p_freebusy[] = {"users", "from", "to",
                                         "consistency", NULL};
static const char *const p_changes[] = {"since", "target", "limit",
                                        "consistency", NULL};
static const char *const p_audit[] = {"cursor", "limit", "consistency",
                                      NULL};

/* columns: method, pattern, caller (enum flow_auth), JSON body, allowed
 * body fields, allowed query parameters, handler */
#define EV "/calendars/*/events"
#define ANON FLOW_ANON
#define TOKEN FLOW_TOKEN
#define TOKEN_HASH FLOW_TOKEN_HASH

static const struct flow_route routes[] = {
    {"POST", "/auth/register", ANON, true, f_register, p_none,
     flow_h_register},
    {"POST", "/auth/login", ANON, true, f_login, p_none, flow_h_login},
    {"GET", "/health", ANON, false, NULL, p_none, flow_h_health},
    {"GET", "/me", TOKEN, false, NULL, p_read, flow_h_me_get},
    {"PATCH", "/me", TOKEN, true, f_me, p_none, flow_h_me_patch},
    {"POST", "/me/password", TOKEN_HASH, true, f_password, p_none,
     flow_h_me_password},
    {"GET", "/users", TOKEN, false, NULL, p_users, flow_h_users},
    {"GET", EV, TOKEN, false, NULL, p_list, flow_h_events_list},
    {"POST", EV, TOKEN, true, f_event_new, p_none, flow_h_events_create},
    {"GET", EV "/*", TOKEN, false, NULL, p_read, flow_h_event_get},
    {"PUT", EV "/*", TOKEN, true, f_event, p_none, flow_h_event_put},
    {"PATCH", EV "/*", TOKEN, true, f_event, p_none, flow_h_event_patch},
    {"DELETE", EV "/*", TOKEN, false, NULL, p_none, flow_h_event_delete},
    {"POST", EV "/*/rsvp", TOKEN, true, f_rsvp, p_none, flow_h_event_rsvp},
    {"GET", "/agenda", TOKEN, false, NULL, p_agenda, flow_h_agenda},
    {"GET", "/invitations", TOKEN, false, NULL, p_invit,
     flow_h_invitations},
    {"GET", "/freebusy", TOKEN, false, NULL, p_freebusy, flow_h_freebusy},
    {"GET", "/groups", TOKEN, false, NULL, p_read, flow_h_groups_list},
    {"POST", "/groups", TOKEN, true, f_group_new, p_none,
     flow_h_groups_create},
    {"GET", "/groups/*", TOKEN, false, NULL, p_read, flow_h_group_get},
    {"PATCH", "/groups/*", TOKEN, true, f_group, p_none, flow_h_group_patch},
    {"DELETE", "/groups/*", TOKEN, false, NULL, p_none, flow_h_group_delete},
    {"POST", "/groups/*/members", TOKEN, true, f_member_new, p_none,
     flow_h_members_add},
    {"PATCH", "/groups/*/members/*", TOKEN, true, f_member, p_none,
     flow_h_member_patch},
    {"DELETE", "/groups/*/members/*", TOKEN, false, NULL, p_none,
     flow_h_member_delete},
    {"GET", "/changes", TOKEN, false, NULL, p_changes, flow_h_changes},
    {"GET", "/audit", TOKEN, false, NULL, p_audit, flow_h_audit},
    {"GET", "/cluster", TOKEN, false, NULL, p_none, flow_h_cluster},
};

#define N_ROUTES (sizeof(routes) / sizeof(routes[0]))

/* The preallocated answer when memory ran out: it must not allocate. */
static const char oom_body[] =
    "{\"error\":{\"code\":\"internal\",\"message\":\"the edge ran out of "
    "memory; retry later\"}}";

/* ---- path matching ------------------------------------------------------- */

/* Split path into segments (pointers into buf, which it modifies).
 * Returns the count, or -1 for an empty segment or too many. */
static int split_path(char *buf, char **seg, size_t max)
{
    size_t n = 0;
    char *p = buf;

    if (*p != '/')
        return -1;
    for (;;) {
        char *start = ++p;

        while (*p != '\0' && *p != '/')
            p++;
        if (p == start || n == max)
            return -1;
        seg[n++] = start;
        if (*p == '\0')
            return (int)n;
        *p = '\0';
    }
}

/* Whether the pattern's segments match; '*' captures into caps. */
static bool match(const char *pattern, char **seg, int n, char **caps,
                  size_t *n_caps)
{
    char buf[64], *pseg[FLOW_MAX_SEGMENTS];
    int pn;

    strcpy(buf, pattern); /* patterns are ours and short */
    pn = split_path(buf, pseg, FLOW_MAX_SEGMENTS);
    if (pn != n)
        return false;
    *n_caps = 0;
    for (int i = 0; i < n; i++) {
        if (strcmp(pseg[i], "*") == 0)
            caps[(*n_caps)++] = seg[i];
        else if (strcmp(pseg[i], seg[i]) != 0)
            return false;
    }
    return true;
}

static bool segment_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > FLOW_SEGMENT_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] == 0x7f)
            return false;
    return true;
}

/* Find the route; responds 404/405 when there is none. */
static int find_route(struct agenda_flow *f)
{
    char *buf, *seg[FLOW_MAX_SEGMENTS], *caps[FLOW_MAX_SEGMENTS];
    char allow[64] = "";
    size_t n_caps;
    int n;

    buf = strdup(f->path);
    if (buf == NULL) {
        f->oom = true;
        return -1;
    }
    n = split_path(buf, seg, FLOW_MAX_SEGMENTS);
    for (int i = 0; i < n; i++)
        if (!segment_ok(seg[i]))
            n = -1;
    for (size_t r = 0; n > 0 && r < N_ROUTES; r++) {
        if (!match(routes[r].pattern, seg, n, caps, &n_caps))
            continue;
        if (strcmp(routes[r].method, f->method) != 0) {
            if (strlen(allow) + strlen(routes[r].method) + 3 < sizeof allow) {
                if (allow[0] != '\0')
                    strcat(allow, ", ");
                strcat(allow, routes[r].method);
            }
            continue;
        }
        f->route = &routes[r];
        for (size_t i = 0; i < n_caps; i++) {
            f->seg[i] = strdup(caps[i]);
            if (f->seg[i] == NULL)
                f->oom = true;
        }
        f->n_seg = n_caps;
        free(buf);
        return f->oom ? -1 : 0;
    }
    free(buf);
    if (allow[0] != '\0') {
        flow_header(f, "Allow", allow);
        flow_error(f, 405, "method_not_allowed",
                   "%s is not allowed here; allowed: %s", f->method, allow);
    } else {
        flow_error(f, 404, "not_found", "no such resource: %s", f->path);
    }
    return -1;
}

/* ---- the common checks --------------------------------------------------- */

static bool idem_key_ok(const char *k)
{
    size_t n = strlen(k);

    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                   "0123456789._:-", k[i]) == NULL)
            return false;
    return true;
}

static int check_params(struct agenda_flow *f)
{
    const char *c;

    if (flow_parse_query(f) != 0)
        return -1;
    for (size_t i = 0; i < f->n_params; i++) {
        bool known = false;

        for (const char *const *p = f->route->params; *p != NULL; p++)
            if (strcmp(*p, f->params[i].name) == 0)
                known = true;
        if (!known) {
            flow_error(f, 400, "unknown_parameter",
                       "unknown query parameter '%.64s'",
                       f->params[i].name);
            return -1;
        }
    }
    c = flow_param(f, "consistency");
    if (c != NULL) {
        if (strcmp(c, "stale") == 0) {
            f->stale = true;
        } else if (strcmp(c, "linearizable") != 0) {
            flow_error(f, 400, "bad_consistency",
                       "consistency must be 'linearizable' or 'stale'");
            return -1;
        }
    }
    return 0;
}

/* Everything before authentication's shard call; -1 when it responded. */
static int prechecks(struct agenda_flow *f)
{
    if (find_route(f) != 0)
        return -1;
    if (f->origin != NULL && f->env.allowed_origin != NULL
        && f->env.allowed_origin[0] != '\0'
        && strcmp(f->origin, f->env.allowed_origin) != 0) {
        flow_error(f, 403, "forbidden_origin",
                   "requests from this Origin are not accepted");
        return -1;
    }
    if (f->route->auth != FLOW_ANON && flow_jwt_check(f) != 0)
        return -1;
    if (f->idem != NULL && !idem_key_ok(f->idem)) {
        flow_error(f, 400, "bad_idempotency_key",
                   "Idempotency-Key must be 1-64 of [A-Za-z0-9._:-]");
        return -1;
    }
    if (check_params(f) != 0)
        return -1;
    if (f->route->body && flow_parse_body(f) != 0)
        return -1;
    return 0;
}

static void run(struct agenda_flow *f)
{
    if (f->auth_stage == 0) {
        f->auth_stage = 1;
        if (prechecks(f) != 0)
            return;
        if (f->route->auth != FLOW_ANON) {
            int cached = flow_auth_cached(f);

            if (cached < 0)
                return;
            if (cached == 0) {
                f->auth_stage = 2;
                flow_auth_call(f);
                return;
            }
        }
        f->auth_stage = 3;
    } else if (f->auth_stage == 2) {
        if (!flow_auth_done(f))
            return;
        f->auth_stage = 3;
    }
    if (f->auth_stage == 3)
        f->route->handler(f);
}

/* ---- action storage ------------------------------------------------------ */

static void free_action(struct agenda_flow *f)
{
    for (size_t i = 0; i < 2 * f->n_calls; i++)
        free(f->call_strings[i]);
    f->n_calls = 0;
    for (size_t i = 0; i < f->n_headers; i++)
        free(f->header_values[i]);
    f->n_headers = 0;
    for (size_t i = 0; i < f->n_notes; i++) {
        free((void *)(uintptr_t)f->notes[i].channel);
        free((void *)(uintptr_t)f->notes[i].message);
    }
    f->n_notes = 0;
    free(f->resp_body);
    f->resp_body = NULL;
    memset(&f->act, 0, sizeof f->act);
}

static void free_answers(struct agenda_flow *f)
{
    for (size_t i = 0; i < f->n_ans; i++) {
        json_decref(f->ans[i].json);
        free(f->ans[i].raw);
    }
    free(f->ans);
    f->ans = NULL;
    f->n_ans = 0;
}

void flow_calls_begin(struct agenda_flow *f)
{
    free_answers(f);
    for (size_t i = 0; i < 2 * f->n_calls; i++)
        free(f->call_strings[i]);
    f->n_calls = 0;
}

/* ---- the executor's entry points ----------------------------------------- */

static char *dup_or_null(const char *s, bool *oom)
{
    char *d;

    if (s == NULL)
        return NULL;
    d = strdup(s);
    if (d == NULL)
        *oom = true;
    return d;
}

struct agenda_flow *agenda_flow_start(const struct agenda_flow_env *env,
                                      const struct agenda_flow_request *req)
{
    struct agenda_flow *f = calloc(1, sizeof *f);
    bool oom = false;

    if (f == NULL)
        return NULL;
    f->env = *env;
    f->method = dup_or_null(req->method != NULL ? req->method : "", &oom);
    f->path = dup_or_null(req->path != NULL ? req->path : "", &oom);
    f->query = dup_or_null(req->query, &oom);
    f->authorization = dup_or_null(req->authorization, &oom);
    f->if_match = dup_or_null(req->if_match, &oom);
    f->idem = dup_or_null(req->idempotency_key, &oom);
    f->content_type = dup_or_null(req->content_type, &oom);
    f->origin = dup_or_null(req->origin, &oom);
    f->client_addr = dup_or_null(req->client_addr != NULL
                                 ? req->client_addr : "-", &oom);
    if (req->body_len > 0 && req->body != NULL) {
        /* one more byte than the body: handlers treat it as a string */
        f->body = malloc(req->body_len + 1);
        if (f->body == NULL) {
            oom = true;
        } else {
            memcpy(f->body, req->body, req->body_len);
            f->body[req->body_len] = '\0';
            f->body_len = req->body_len;
        }
    }
    f->cal_role = "none";
    f->oom = oom;
    return f;
}

const struct agenda_flow_action *agenda_flow_next(struct agenda_flow *f)
{
    if (f->responded)
        return &f->act;
    free_action(f);
    if (!f->oom)
        run(f);
    if (!f->oom && f->act.kind == 0)
        flow_error(f, 500, "internal",
                   "the edge lost track of this request");
    if (f->oom) {
        free_action(f);
        f->act.kind = AGENDA_FLOW_RESPOND;
        f->act.status = 500;
        f->act.body = oom_body;
        f->act.body_len = sizeof oom_body - 1;
    }
    if (f->act.kind == AGENDA_FLOW_RESPOND)
        f->responded = true;
    return &f->act;
}

void agenda_flow_call_done(struct agenda_flow *f, size_t i, int status,
                           const char *body, size_t len)
{
    if (f == NULL || i >= f->n_ans)
        return;
    json_decref(f->ans[i].json);
    free(f->ans[i].raw);
    f->ans[i].status = status;
    f->ans[i].json = NULL;
    f->ans[i].raw = NULL;
    f->ans[i].raw_len = 0;
    if (f->ans[i].raw_wanted && status >= 200 && status < 300
        && flow_looks_like_object(body, len)) {
        f->ans[i].raw = malloc(len);
        if (f->ans[i].raw == NULL) {
            f->oom = true;
            return;
        }
        memcpy(f->ans[i].raw, body, len);
        f->ans[i].raw_len = len;
        return;
    }
    if (body != NULL && len > 0) {
        json_t *j = json_loadb(body, len, 0, NULL);

        if (json_is_object(j))
            f->ans[i].json = j;
        else
            json_decref(j);
    }
}

void agenda_flow_hash_done(struct agenda_flow *f, const char *phc)
{
    if (f == NULL)
        return;
    free(f->hashed);
    f->hashed = NULL;
    if (phc != NULL) {
        f->hashed = strdup(phc);
        if (f->hashed == NULL)
            f->oom = true;
    }
}

void agenda_flow_verify_done(struct agenda_flow *f, int result)
{
    if (f != NULL)
        f->verify_result = result;
}

void agenda_flow_free(struct agenda_flow *f)
{
    if (f == NULL)
        return;
    free_action(f);
    free_answers(f);
    free(f->calls);
    free(f->call_strings);
    free(f->notes);
    for (size_t i = 0; i < f->n_seg; i++)
        free(f->seg[i]);
    for (size_t i = 0; i < f->n_params; i++) {
        free(f->params[i].name);
        free(f->params[i].value);
    }
    json_decref(f->in);
    json_decref(f->scratch);
    free(f->phc);
    free(f->hashed);
    if (f->body != NULL) {
        /* the body may hold a password */
        memset(f->body, 0, f->body_len);
        free(f->body);
    }
    free(f->method);
    free(f->path);
    free(f->query);
    free(f->authorization);
    free(f->if_match);
    free(f->idem);
    free(f->content_type);
    free(f->origin);
    free(f->client_addr);
    free(f);
}

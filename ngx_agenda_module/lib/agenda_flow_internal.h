/*
 * agenda_flow_internal.h — what the files of the flow library share.
 *
 * Not part of the contract with the executor (that is agenda_flow.h).
 *
 * A flow is a small coroutine: the route's handler is called once per
 * agenda_flow_next() and must leave exactly one action in f->act (a CALL,
 * HASH, VERIFY or RESPOND), advancing f->stage to remember where it is.
 * Answers of the last CALL are in f->ans[i] when it is called again.
 *
 * Allocation failures are not propagated by hand through every handler:
 * a helper that cannot allocate sets f->oom, and agenda_flow_next()
 * replaces whatever the handler produced with a preallocated 500 answer.
 * Handlers therefore check the helpers' results only where they need a
 * value to go on.
 */
#ifndef AGENDA_FLOW_INTERNAL_H
#define AGENDA_FLOW_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "agenda_flow.h"
#include "model.h"

#define FLOW_MAX_SEGMENTS 6
#define FLOW_MAX_PARAMS 16     /* query parameters */
#define FLOW_MAX_HEADERS 6
#define FLOW_SEGMENT_MAX 128   /* bytes of one path segment */
#define FLOW_FREEBUSY_USERS AGENDA_FREEBUSY_USERS /* one /freebusy: one call */
#define FLOW_TOKEN_MAX 4096    /* sync tokens and audit cursors */
#define FLOW_QUERY_VALUE_MAX 4096 /* bytes of one query value, but: */
/* /agenda's cursor: ~140 characters per events shard.  nginx's own
 * limit on a whole request line (large_client_header_buffers) is 8 KiB,
 * which holds the cursors of ~50 events shards */
#define FLOW_CURSOR_MAX 8192
#define FLOW_FANOUT_LIMIT 500  /* items asked from each shard */

struct agenda_flow;
typedef void flow_handler(struct agenda_flow *f);

/* What a route needs to know of its caller. */
enum flow_auth {
    FLOW_ANON = 0,              /* nothing: anyone may call it */
    FLOW_TOKEN,                 /* a bearer token and the account's role
                                   and token version (auth cache or
                                   user.auth) */
    FLOW_TOKEN_HASH             /* that, and the stored password hash
                                   (f->phc): always user.auth, as the
                                   cache never holds hashes */
};

/* One row of the route table (agenda_flow.c). */
struct flow_route {
    const char *method;
    const char *pattern;        /* "/calendars/ * /events": '*' a segment */
    enum flow_auth auth;
    bool body;                  /* takes a JSON object */
    const char *const *fields;  /* allowed body fields, NULL-terminated */
    const char *const *params;  /* allowed query parameters */
    flow_handler *handler;
};

struct flow_answer {
    int status;                 /* 0: no replica answered */
    json_t *json;               /* the parsed body, or NULL */
    /* flow_answer_raw(): a 2xx body is kept as text and never parsed
     * (json stays NULL), for flows that pass it on unchanged */
    bool raw_wanted;
    char *raw;
    size_t raw_len;
};

struct flow_param {
    char *name;
    char *value;
};

struct agenda_flow {
    struct agenda_flow_env env;

    /* the request, copied */
    char *method, *path, *query, *authorization, *if_match, *idem;
    char *content_type, *origin, *client_addr;
    uint8_t *body;
    size_t body_len;

    const struct flow_route *route;
    char *seg[FLOW_MAX_SEGMENTS];   /* the '*' segments of the pattern */
    size_t n_seg;
    struct flow_param params[FLOW_MAX_PARAMS];
    size_t n_params;
    json_t *in;                     /* the body, an object, or NULL */
    bool stale;                     /* ?consistency=stale */

    /* the authenticated caller */
    int auth_stage;
    struct agenda_jwt_claims claims;
    char user[AGENDA_USERNAME_MAX + 1];
    char role[8];                   /* "user" or "admin" */
    uint64_t token_version;
    char *phc;                      /* the stored hash (from user.auth;
                                       NULL after an auth cache hit) */

    /* the handler's state */
    int stage;
    int cal_stage;
    unsigned n_commands;            /* derives idempotency keys */
    bool idem_generated;            /* idem drawn by the edge, not given */
    const char *cal_raw;            /* the calendar asked for (default:
                                       the first path segment) */
    char cal[AGENDA_CALENDAR_MAX + 1];
    bool group_cal;
    const char *cal_role;           /* "none", "member", "leader" */
    json_t *scratch;                /* anything kept between stages */
    int verify_result;
    char *hashed;                   /* the PHC string of the last HASH */
    const char *password;           /* borrowed from f->in */

    /* the current action and what it owns */
    struct agenda_flow_action act;
    struct agenda_flow_call *calls;
    char **call_strings;            /* bodies and keys, 2 per call */
    size_t n_calls, cap_calls;
    struct flow_answer *ans;
    size_t n_ans;
    struct agenda_flow_header headers[FLOW_MAX_HEADERS];
    char *header_values[FLOW_MAX_HEADERS];
    size_t n_headers;
    struct agenda_flow_notification *notes;
    size_t n_notes, cap_notes;
    char *resp_body;
    bool responded;
    bool oom;
};

/* ---- agenda_flow_json.c: answers, errors, inputs ---------------------- */

/* Keep answer i of the CALL just emitted as text when it is a success:
 * the flow will send it to the client as it is (flow_respond_answer), so
 * parsing and re-serialising it would only cost time.  Errors are parsed
 * as usual. */
void flow_answer_raw(struct agenda_flow *f, size_t i);

/* RESPOND with answer i's body as the shard sent it (see
 * flow_answer_raw); the answer must have passed flow_answer_ok(). */
void flow_respond_answer(struct agenda_flow *f, int status, size_t i);
bool flow_looks_like_object(const char *body, size_t len);

/* Start a new CALL action (drops the previous answers). */
void flow_calls_begin(struct agenda_flow *f);
/* Add a call: {"op", "actor": {user, role[, calendar_role]}, "args"};
 * args is stolen (NULL means {}).  Commands get an idempotency key derived
 * from the client's Idempotency-Key (or a random one).  user NULL means
 * the caller; role "system" with user "" is the edge itself. */
void flow_call(struct agenda_flow *f, const struct agenda_shard *shard,
               bool command, const char *op, json_t *args);
void flow_call_as(struct agenda_flow *f, const struct agenda_shard *shard,
                  bool command, const char *op, json_t *args,
                  const char *user, const char *role, const char *cal_role);
/* The call just added reads at the shard's leader even when the request
 * asked for consistency=stale: for what authorization or a change is
 * decided on.  No-op when that call could not be added (oom). */
void flow_last_call_fresh(struct agenda_flow *f);
/* Add a call for GET /status of one replica of shard (answers that are
 * not 200 with a JSON object mean it is unreachable or unwell). */
void flow_call_status(struct agenda_flow *f, const struct agenda_shard *shard,
                      const struct agenda_replica *replica);
/* Make the calls added since flow_calls_begin() the action. */
void flow_calls_emit(struct agenda_flow *f);

/* The answer i is a success (2xx with a JSON object). */
bool flow_ok(const struct agenda_flow *f, size_t i);
/* Answer the client with what went wrong in answer i. */
void flow_shard_error(struct agenda_flow *f, size_t i);
/* flow_ok(), and when answer i failed, answer the client with its error:
 * the step then just returns. */
bool flow_answer_ok(struct agenda_flow *f, size_t i);
/* The first failed answer, or -1 when all succeeded. */
long flow_first_failure(const struct agenda_flow *f);

void flow_hash(struct agenda_flow *f, const char *pw);
void flow_verify(struct agenda_flow *f, const char *phc, const char *pw);

/* If-Match: one strong ETag "\"<n>\"" into *v; 0 ok, 1 absent, -1 bad. */
int flow_if_match(const char *h, long long *v);

/* RESPOND with body (stolen; NULL means building it failed: 500). */
void flow_respond(struct agenda_flow *f, int status, json_t *body);
void flow_error(struct agenda_flow *f, int status, const char *code,
                const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* 401 with WWW-Authenticate. */
void flow_unauthorized(struct agenda_flow *f, const char *message);
/* Add a response header (name static, value copied). */
void flow_header(struct agenda_flow *f, const char *name, const char *value);
void flow_etag(struct agenda_flow *f, json_t *obj);
/* Add a notification; msg is stolen. */
void flow_notify(struct agenda_flow *f, const char *channel, json_t *msg);
/* Disconnect channel's subscribers after the notifications so far (struct
 * agenda_flow_notification.close). */
void flow_close_channel(struct agenda_flow *f, const char *channel);
/* {type, id, calendar, actor, time, shard, sync_token} for a change. */
json_t *flow_note_msg(struct agenda_flow *f, const char *type,
                      const char *id, const char *calendar,
                      const struct agenda_shard *shard, json_t *answer);
/* "user/<name>" or "group/<id>" for a calendar. */
void flow_calendar_channel(const char *cal, char *out, size_t len);

/* Query parameters (percent-decoded). */
const char *flow_param(const struct agenda_flow *f, const char *name);
/* Parse the query string; on error responds and returns -1. */
int flow_parse_query(struct agenda_flow *f);
/* An integer parameter into args[name]; on error responds, returns -1. */
int flow_param_int(struct agenda_flow *f, json_t *args, const char *name);
/* A string parameter into args[name] when present. */
void flow_param_str(struct agenda_flow *f, json_t *args, const char *name);

/* Parse and check the body against the route; responds on error. */
int flow_parse_body(struct agenda_flow *f);
/* A required / optional string field of the body, type-checked; on error
 * responds and returns NULL / sets *bad. */
const char *flow_body_str(struct agenda_flow *f, const char *name,
                          bool required, bool *bad);

/* Copies of body fields into args (those present, not null). */
void flow_copy_fields(struct agenda_flow *f, json_t *args,
                      const char *const *names);

/* json helpers that flag f->oom */
json_t *flow_obj(struct agenda_flow *f);
void flow_set(struct agenda_flow *f, json_t *obj, const char *key,
              json_t *v);
void flow_set_str(struct agenda_flow *f, json_t *obj, const char *key,
                  const char *s);

/* now as RFC 3339 into out[32]. */
void flow_now_str(const struct agenda_flow *f, char out[32]);
/* n random lowercase hex digits into out[n + 1]; -1 on failure. */
int flow_random_hex(char *out, size_t n);
/* v as compact JSON, keys sorted or in insertion order: exactly what
 * json_dumps writes (json_text.h), in less time; malloc'd and
 * NUL-terminated, its length in *len (len may be NULL); NULL when memory
 * cannot be had. */
char *flow_json_text(const json_t *v, bool sort_keys, size_t *len);
/* An instant or a date as milliseconds; false if it is neither. */
bool flow_parse_when(const char *s, int64_t *ms);

/* Opaque per-shard positions: base64url of {"shard": n, ...}. */
char *flow_token_encode(json_t *positions);
json_t *flow_token_decode(const char *token);
/* Any JSON object from the base64url a flow_token_encode() wrote (at most
 * max characters, no duplicate keys); NULL otherwise. */
json_t *flow_b64_object_decode(const char *token, size_t max);
/* What a token or cursor counts for, as the integer it carries to be
 * compared on its return: the first 32 bits of the SHA-256 of s, the same
 * on every edge; -1 if the digest fails. */
json_int_t flow_tag(const char *s);

/* ---- handlers --------------------------------------------------------- */

/* agenda_flow_auth.c: the bearer token (responds 401 and returns -1 when
 * it is not valid); then the auth cache's entry for its subject
 * (flow_auth_cached(): 1 the caller is known, -1 it responded 401, 0 ask
 * the shard), or user.auth, whose answer flow_auth_done() checks (false:
 * it responded). */
int flow_jwt_check(struct agenda_flow *f);
int flow_auth_cached(struct agenda_flow *f);
void flow_auth_call(struct agenda_flow *f);
bool flow_auth_done(struct agenda_flow *f);
/* agenda_flow_events.c: the calendar's standing of the caller (group
 * calendars ask the groups shard); false while it emitted or responded. */
bool flow_calendar_ready(struct agenda_flow *f);

void flow_h_register(struct agenda_flow *f);
void flow_h_login(struct agenda_flow *f);
void flow_h_me_get(struct agenda_flow *f);
void flow_h_me_patch(struct agenda_flow *f);
void flow_h_me_password(struct agenda_flow *f);
void flow_h_users(struct agenda_flow *f);

void flow_h_events_list(struct agenda_flow *f);
void flow_h_events_create(struct agenda_flow *f);
void flow_h_event_get(struct agenda_flow *f);
void flow_h_event_put(struct agenda_flow *f);
void flow_h_event_patch(struct agenda_flow *f);
void flow_h_event_delete(struct agenda_flow *f);
void flow_h_event_rsvp(struct agenda_flow *f);

void flow_h_agenda(struct agenda_flow *f);
void flow_h_invitations(struct agenda_flow *f);
void flow_h_freebusy(struct agenda_flow *f);

void flow_h_groups_list(struct agenda_flow *f);
void flow_h_groups_create(struct agenda_flow *f);
void flow_h_group_get(struct agenda_flow *f);
void flow_h_group_patch(struct agenda_flow *f);
void flow_h_group_delete(struct agenda_flow *f);
void flow_h_members_add(struct agenda_flow *f);
void flow_h_member_patch(struct agenda_flow *f);
void flow_h_member_delete(struct agenda_flow *f);

void flow_h_changes(struct agenda_flow *f);
void flow_h_audit(struct agenda_flow *f);
void flow_h_cluster(struct agenda_flow *f);
void flow_h_health(struct agenda_flow *f);

#endif /* AGENDA_FLOW_INTERNAL_H */

/*
 * agenda_flow.h — serving one public REST request (/api/v1/...) as a
 * sequence of actions, free of nginx types.
 *
 * The nginx module is a generic executor: it starts a flow for a request,
 * then repeatedly asks agenda_flow_next() what to do and reports back:
 *
 *   CALL     send every call of the action in parallel to its shard
 *            (commands to the leader, queries linearizable at the leader or
 *            stale anywhere), following 421 leader hints and retrying
 *            within the retry budget with the same Idempotency-Key; report
 *            each answer with agenda_flow_call_done() (a call with
 *            status_of asks that one replica's GET /status instead);
 *   HASH     hash a password in a thread pool (agenda_password_hash), then
 *            agenda_flow_hash_done();
 *   VERIFY   check a password against a stored hash in a thread pool, then
 *            agenda_flow_verify_done();
 *   RESPOND  send status, headers and body to the client; then publish the
 *            notifications (best effort, after the response).
 *
 * All the REST knowledge lives behind this interface: routes, validation of
 * public bodies (unknown fields are 400), authentication (JWT via
 * agenda_jwt.h, then the user's token version checked on the users shard
 * or in the executor's auth cache, see struct agenda_auth_cache),
 * which shard gets which internal operation (router/route.h), how answers
 * of several shards merge (agenda, invitations, free/busy), ETag/If-Match,
 * the error mapping to {"error":{"code","message"}}, and what to notify.
 * So it is unit-tested without nginx by feeding it simulated shard answers.
 *
 * Ownership: strings in a request are copied by agenda_flow_start(); an
 * action returned by agenda_flow_next() and everything it points to belong
 * to the flow and stay valid until the next call on the flow.
 */
#ifndef AGENDA_FLOW_H
#define AGENDA_FLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agenda_jwt.h"
#include "agenda_jwt_memo.h"
#include "topology.h"

/* Largest JSON body a route accepts (413 above it); the executor should
 * not read more than this (client_max_body_size). */
#define AGENDA_FLOW_BODY_MAX (64 * 1024)

/*
 * What the edge remembers of an account between requests, so that a
 * protected request need not ask the users shard (user.auth: one more
 * shard call and a ReadIndex round) who its caller is.  Never the
 * password hash: /me/password and logins always ask the shard.
 */
struct agenda_auth_entry {
    char role[8];               /* "user" or "admin" */
    uint64_t token_version;
};

/*
 * An auth cache the executor may offer (agenda_flow_env.auth_cache); the
 * flows call it synchronously and never keep data.  user is a folded
 * username (agenda_username_fold).
 *
 *   lookup  1 and *out when a fresh entry for user exists, else 0;
 *   store   remember user's role and token version, fresh for the cache's
 *           time to live; must never lower the token version of an entry
 *           it holds (versions only grow: an answer read before a password
 *           change may arrive after it), and may drop the entry instead
 *           when it has no room;
 *   forget  drop user's entry, if any.
 *
 * The flows keep the entries of this edge exact: they store what the
 * users shard answers to user.auth (also at login) and the new version
 * of a password change as soon as the shard confirmed it, and forget an
 * account the shard no longer has.  A change made elsewhere (another
 * edge, or straight at the shard) is only noticed when the entry expires:
 * the time to live bounds how long a revoked token keeps working there.
 * A token newer than the entry (its password changed elsewhere, then a
 * login) makes the flow ask the shard instead of refusing it.
 */
struct agenda_auth_cache {
    void *data;                 /* the implementation's, passed back */
    int (*lookup)(void *data, const char *user,
                  struct agenda_auth_entry *out);
    void (*store)(void *data, const char *user,
                  const struct agenda_auth_entry *entry);
    void (*forget)(void *data, const char *user);
};

struct agenda_flow_env {
    const struct agenda_topology *topo;
    const struct agenda_jwt_config *jwt;
    /* verified tokens remembered (agenda_jwt_memo.h); NULL: none */
    struct agenda_jwt_memo *jwt_memo;
    int64_t now_s;              /* the edge's clock, for tokens */
    const char *allowed_origin; /* e.g. "https://localhost:8443" */
    /* NULL: no cache, every protected request asks user.auth */
    const struct agenda_auth_cache *auth_cache;
    /* when days begin in each time zone (agenda_tz.h); NULL: all-day
     * events occupy UTC days */
    const struct agenda_tz_db *tz;
    /* agenda_flow_events_tag(topo), worked out once with the topology */
    int64_t events_tag;
};

/* What /agenda's and /invitations' cursors carry to name topo's events
 * shards (their names in order): a cursor's resume points go to the
 * shards by position, so one made on other shards is refused.  -1
 * without memory. */
int64_t agenda_flow_events_tag(const struct agenda_topology *topo);

struct agenda_flow_request {
    const char *method;          /* "GET", "POST", ... */
    const char *path;            /* below /api/v1, decoded: "/me" */
    const char *query;           /* raw query string, or NULL */
    const char *authorization;   /* header value, or NULL */
    const char *if_match;        /* header value, or NULL */
    const char *idempotency_key; /* header value, or NULL */
    const char *content_type;    /* header value, or NULL */
    const char *origin;          /* header value, or NULL */
    const uint8_t *body;
    size_t body_len;
    const char *client_addr;     /* for the audit of logins */
};

enum agenda_flow_kind {
    AGENDA_FLOW_CALL = 1,
    AGENDA_FLOW_HASH,
    AGENDA_FLOW_VERIFY,
    AGENDA_FLOW_RESPOND
};

struct agenda_flow_call {
    const struct agenda_shard *shard;
    bool command;                /* POST /v1/commands, else /v1/queries */
    bool stale;                  /* queries: any replica may answer */
    const char *idempotency_key; /* commands: keep it on every retry */
    const char *body;            /* the internal operation (API.md) */
    size_t body_len;
    /* Not NULL: instead of an operation, GET /status of this replica of
     * shard (body unused), once, without retries or leader tracking;
     * status 0 when it did not answer.  For /cluster's live state. */
    const struct agenda_replica *status_of;
};

struct agenda_flow_header {
    const char *name;
    const char *value;
};

struct agenda_flow_notification {
    const char *channel;         /* "user/alice", "group/0123..." */
    const char *message;         /* JSON text; NULL when close */
    /* Instead of a message: delete the channel, which disconnects its
     * subscribers (nchan closes them with 410).  They subscribe again
     * through the guard, so one who may no longer read it (removed from
     * the group, token revoked) is refused.  After the messages before
     * it in the list, which are delivered first. */
    bool close;
};

struct agenda_flow_action {
    enum agenda_flow_kind kind;
    /* CALL */
    size_t n_calls;
    const struct agenda_flow_call *calls;
    /* HASH / VERIFY */
    const char *password;
    size_t password_len;
    const char *phc;             /* VERIFY: the stored hash */
    /* RESPOND */
    int status;
    const char *body;            /* JSON */
    size_t body_len;
    size_t n_headers;
    const struct agenda_flow_header *headers; /* ETag, Location, ... */
    size_t n_notifications;
    const struct agenda_flow_notification *notifications;
};

struct agenda_flow;

/* Start serving req.  Returns NULL only without memory (answer 500). */
struct agenda_flow *agenda_flow_start(const struct agenda_flow_env *env,
                                      const struct agenda_flow_request *req);

/* What to do next (never NULL while the flow exists; RESPOND is last). */
const struct agenda_flow_action *agenda_flow_next(struct agenda_flow *f);

/* The answer to call i of the last CALL action: the shard's HTTP status
 * and body, or status 0 when no replica answered within the budget. */
void agenda_flow_call_done(struct agenda_flow *f, size_t i, int status,
                           const char *body, size_t len);

/* The PHC string of a HASH action, or NULL when hashing failed. */
void agenda_flow_hash_done(struct agenda_flow *f, const char *phc);

/* The result of a VERIFY action: 1 match, 0 no match, -1 error. */
void agenda_flow_verify_done(struct agenda_flow *f, int result);

void agenda_flow_free(struct agenda_flow *f);

#endif /* AGENDA_FLOW_H */

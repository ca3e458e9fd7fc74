/*
 * http_reply.h — answers of the agent's internal HTTP API, and requests
 * waiting for the log (shared by the http_*.c route files).
 *
 * Every error is JSON {"error":{"code","message"}}; a follower's refusal
 * (421) names the leader in X-Raft-Leader.
 */
#ifndef AGENDA_HTTP_REPLY_H
#define AGENDA_HTTP_REPLY_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/http.h>
#include <jansson.h>

#include "command.h"
#include "node.h"

void http_reply(struct evhttp_request *req, int status, const char *ctype,
                const void *body, size_t len);
/* Steals j; NULL (out of memory) becomes a 500. */
void http_reply_json(struct evhttp_request *req, int status, json_t *j);
void http_reply_error(struct evhttp_request *req, int status,
                      const char *code, const char *message);
/* The answer for a node failure: 421 with the leader, 503, 507, 413. */
void http_reply_fail(struct agenda_node *node, struct evhttp_request *req,
                     enum agenda_node_fail f);

/* The request's Idempotency-Key, or a fresh random one when absent.
 * Returns false when the given key is malformed. */
bool http_request_id(struct evhttp_request *req,
                     char out[AGENDA_REQUEST_ID_MAX + 1]);

/* A request waiting for the log; freed by its completion callback, or when
 * its connection is freed first (the node op is then cancelled): that is
 * evhttp_free() as the agent exits.  A client hanging up is not noticed
 * before then (evhttp reads nothing while a request is being handled): its
 * op runs to its end, at most the request timeout, and the answer is
 * written to the closed connection, which evhttp then frees. */
struct http_pending {
    struct agenda_node *node;
    struct evhttp_request *req;
    struct agenda_node_op *op;
    char request_id[AGENDA_REQUEST_ID_MAX + 1];
    char *arg;              /* route-specific (key, body copy), malloc'd */
    size_t arg_len;
};

struct http_pending *http_pending_new(struct agenda_node *node,
                                      struct evhttp_request *req);
void http_pending_free(struct http_pending *p);
/* Watch the client connection while the op is outstanding. */
void http_pending_watch(struct http_pending *p);
/* Stop watching (the op completed); call before answering. */
void http_pending_unwatch(struct http_pending *p);

/* Completion of a write (agenda_node_write_cb with a struct http_pending
 * as arg): answers the state machine's result with the Idempotency-Key and,
 * for a replay, Idempotent-Replayed: true; frees p. */
void http_pending_write_done(void *arg, enum agenda_node_fail fail,
                             const struct sm_result *res, bool duplicate);

/* The "consistency" query parameter: returns 0 and sets *stale, or -1
 * after answering 400. */
int http_consistency(struct evhttp_request *req, const char *query,
                     bool *stale);

#endif /* AGENDA_HTTP_REPLY_H */

/*
 * http_routes.h — the route handlers of the agent's internal HTTP API
 * (http_api.c dispatches to them).  Each answers the request, now or when
 * the log has spoken.
 */
#ifndef AGENDA_HTTP_ROUTES_H
#define AGENDA_HTTP_ROUTES_H

#include <event2/http.h>

#include "node.h"

/* /kv/{key}: GET, PUT, DELETE (http_kv.c) */
void http_kv(struct agenda_node *node, struct evhttp_request *req,
             const char *key, const char *query);

/* /status, /health, /metrics, /digest, POST /transfer-leader
 * (http_status.c) */
void http_status(struct agenda_node *node, struct evhttp_request *req);
void http_health(struct agenda_node *node, struct evhttp_request *req);
void http_metrics(struct agenda_node *node, struct evhttp_request *req);
void http_digest(struct agenda_node *node, struct evhttp_request *req);
void http_transfer(struct agenda_node *node, struct evhttp_request *req);

/* POST /v1/commands and POST /v1/queries (http_agenda.c) */
void http_agenda_command(struct agenda_node *node,
                         struct evhttp_request *req);
void http_agenda_query(struct agenda_node *node, struct evhttp_request *req,
                       const char *query);

#endif /* AGENDA_HTTP_ROUTES_H */

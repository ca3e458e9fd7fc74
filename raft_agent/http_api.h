/*
 * http_api.h — the agent's internal HTTP/1.1 API (evhttp, keep-alive).
 *
 *   GET    /status            replica state as JSON
 *   GET    /health            200 when the replica can serve, else 503
 *   GET    /metrics           Prometheus text
 *   GET    /digest            SHA-256 of the replicated state + applied index
 *   POST   /transfer-leader   leader hands over leadership (tests, ops)
 *   PUT    /kv/{key}          diagnostic key-value store (body = value)
 *   DELETE /kv/{key}
 *   GET    /kv/{key}[?consistency=linearizable|stale]
 *   POST   /v1/commands       agenda command (see API.md)
 *   POST   /v1/queries        agenda query [?consistency=...]
 *
 * Writes carry the Idempotency-Key header (generated when absent and echoed
 * back); a replay is answered with the first result and the header
 * `Idempotent-Replayed: true`.  A follower answers writes and linearizable
 * reads with 421 and `X-Raft-Leader: host:port` of the leader when known.
 * Every error is JSON: {"error":{"code":"...","message":"..."}}.
 */
#ifndef AGENDA_HTTP_API_H
#define AGENDA_HTTP_API_H

#include <stdint.h>

#include <event2/event.h>

#include "node.h"

struct agenda_http_api;

/* Bind host:port and serve node's API on base, over mutually
 * authenticated TLS when tls is not NULL (tls.h).  Returns NULL (logged)
 * on failure.  node and tls are borrowed and must outlive the API. */
struct agenda_http_api *agenda_http_api_new(struct event_base *base,
                                            struct agenda_node *node,
                                            const char *host, uint16_t port,
                                            struct agenda_tls *tls);
void agenda_http_api_free(struct agenda_http_api *api);

#endif /* AGENDA_HTTP_API_H */

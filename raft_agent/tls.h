/*
 * tls.h — mutually authenticated TLS on the agent's internal links.
 *
 * When the topology has "internal_tls", every link of an agent is TLS 1.2
 * or newer with a certificate on both ends, issued by the internal CA of
 * that directory (config/dev-internal-certs makes development ones):
 *
 *   DIR/ca.pem                      the CA every peer must chain to
 *   DIR/<shard>-<replica>.pem/.key  this replica's identity, whose
 *                                   subjectAltName is the DNS name
 *                                   <replica>.<shard>.agenda
 *
 * Raft peers prove who they are: an outbound connection requires the
 * server's certificate to name the peer it dialled, and an inbound one is
 * accepted only when the client certificate names the replica its HELLO
 * claims.  The internal HTTP API's handshake accepts the edge's
 * certificate (edge.agenda) and this replica's own (its health check)
 * only: a replica trusts the
 * acting user the edge names, so no other replica's key may speak for
 * users.
 *
 * No globals: the context lives in struct agenda_tls, owned by main.
 */
#ifndef AGENDA_TLS_H
#define AGENDA_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

/* Longest certificate name: two topology names, two dots and "agenda". */
#define AGENDA_TLS_NAME_MAX (63 + 1 + 63 + 1 + 6)

/* The edge's certificate name (config/dev-internal-certs). */
#define AGENDA_TLS_EDGE_NAME "edge.agenda"

struct agenda_tls;

/* Loads DIR/ca.pem and the identity of shard/replica.  A private key
 * readable by group or others is refused, as are a certificate and key
 * that do not match.  NULL on failure, with a message in err. */
struct agenda_tls *agenda_tls_new(const char *dir, const char *shard,
                                  const char *replica, char *err,
                                  size_t errlen);

void agenda_tls_free(struct agenda_tls *tls);

/* The DNS name in the certificate of shard/replica; false if it does not
 * fit in size bytes. */
bool agenda_tls_replica_name(char *out, size_t size, const char *shard,
                             const char *replica);

/* A TLS bufferevent on fd (-1: to be connected with
 * bufferevent_socket_connect).  With peer_name, the handshake fails
 * unless the server's certificate names it.  Closes fd with the bev. */
struct bufferevent *agenda_tls_bev_new(struct agenda_tls *tls,
                                       struct event_base *base,
                                       evutil_socket_t fd, bool outbound,
                                       const char *peer_name);

/* Whether bev's peer sent a certificate, verified against the CA, that
 * names name. */
bool agenda_tls_peer_is(struct bufferevent *bev, const char *name);

/* A bufferevent for a connection the internal HTTP API accepts (evhttp
 * gives it its socket): the handshake fails unless the client's
 * certificate is the edge's or this replica's own, so that is checked
 * once per connection, not per request. */
struct bufferevent *agenda_tls_api_bev_new(struct agenda_tls *tls,
                                           struct event_base *base);

/* Whether the client of an API connection is the edge or this replica,
 * by the certificate of its session, resumed or not: checked again for
 * every request, whatever the handshake did. */
bool agenda_tls_api_client_ok(struct agenda_tls *tls,
                              struct bufferevent *bev);

/* The OpenSSL reason of bev's last failure, or "" when there is none:
 * a handshake that failed says why (unknown CA, name mismatch, ...). */
const char *agenda_tls_error(struct bufferevent *bev);

#endif /* AGENDA_TLS_H */

/* http_api.c — the agent's internal HTTP API: server and routing; the
 * routes live in http_kv.c, http_status.c and http_agenda.c. */
#include "http_api.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>

#include "http_reply.h"
#include "http_routes.h"
#include "log.h"
#include "tls.h"

#define API_MAX_BODY (1u << 20)
#define API_MAX_HEADERS (16u * 1024u)
#define API_TIMEOUT_S 30
#define API_LISTEN_BACKLOG 4096
#define API_ACCEPT_PAUSE_MS 100

struct agenda_http_api {
    struct evhttp *http;
    struct agenda_node *node;
    struct agenda_tls *tls;   /* borrowed; NULL: plain HTTP */
};

/* ---- routing --------------------------------------------------------------------- */

static void route(struct evhttp_request *req, void *arg)
{
    struct agenda_http_api *api = arg;
    struct bufferevent *bev = evhttp_connection_get_bufferevent(
        evhttp_request_get_connection(req));
    if (api->tls != NULL &&
        (bufferevent_openssl_get_ssl(bev) == NULL ||
         !agenda_tls_api_client_ok(api->tls, bev))) {
        /* evhttp falls back to a plain socket when the TLS bufferevent
         * could not be made: never serve such a connection.  Who may call
         * is checked in the handshake (agenda_tls_api_bev_new), and again
         * here, where a session resumed some other way cannot skip it. */
        http_reply_error(req, 403, "forbidden_client",
                         "this API serves the edge ("
                         AGENDA_TLS_EDGE_NAME ") over TLS only");
        return;
    }
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *raw = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
    if (raw == NULL) {
        http_reply_error(req, 400, "bad_uri", "malformed request URI");
        return;
    }
    size_t len;
    char *path = evhttp_uridecode(raw, 0, &len);
    if (path == NULL || strlen(path) != len) {
        free(path);
        http_reply_error(req, 400, "bad_uri", "malformed path encoding");
        return;
    }
    enum evhttp_cmd_type method = evhttp_request_get_command(req);
    bool get = method == EVHTTP_REQ_GET;
    struct agenda_node *node = api->node;
    bool post = method == EVHTTP_REQ_POST;
    if (strncmp(path, "/kv/", 4) == 0) {
        if (get || method == EVHTTP_REQ_PUT || method == EVHTTP_REQ_DELETE)
            http_kv(node, req, path + 4, evhttp_uri_get_query(uri));
        else
            http_reply_error(req, 405, "method_not_allowed",
                             "use GET, PUT or DELETE on /kv/{key}");
    } else if (strcmp(path, "/v1/commands") == 0 && post) {
        http_agenda_command(node, req);
    } else if (strcmp(path, "/v1/queries") == 0 && post) {
        http_agenda_query(node, req, evhttp_uri_get_query(uri));
    } else if (strcmp(path, "/status") == 0 && get) {
        http_status(node, req);
    } else if (strcmp(path, "/health") == 0 && get) {
        http_health(node, req);
    } else if (strcmp(path, "/metrics") == 0 && get) {
        http_metrics(node, req);
    } else if (strcmp(path, "/digest") == 0 && get) {
        http_digest(node, req);
    } else if (strcmp(path, "/transfer-leader") == 0 && post) {
        http_transfer(node, req);
    } else {
        http_reply_error(req, 404, "not_found", "no such resource");
    }
    free(path);
}

static void accept_resume_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    evconnlistener_enable(arg);
}

/* accept() failed, typically EMFILE: the listening socket stays readable,
 * so libevent would call accept() again at every turn of the loop (a
 * spinning agent, its log flooded).  Pause accepting for a moment
 * instead; connections wait in the backlog meanwhile.  The pause is a
 * one-shot event of the base: the listener outlives it (both go only
 * when the agent exits, after its loop). */
static void accept_error_cb(struct evconnlistener *l, void *arg)
{
    (void)arg;
    agenda_log(AGENDA_LOG_ERROR, "HTTP: accept failed: %s; pausing for "
               "%d ms", evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()),
               API_ACCEPT_PAUSE_MS);
    evconnlistener_disable(l);
    struct timeval tv = {0, API_ACCEPT_PAUSE_MS * 1000};
    if (event_base_once(evconnlistener_get_base(l), -1, EV_TIMEOUT,
                        accept_resume_cb, l, &tv) != 0)
        evconnlistener_enable(l);
}

/* evhttp's bufferevent for each accepted connection: TLS, which evhttp
 * gives its socket (bufferevent_setfd) once it has accepted. */
static struct bufferevent *tls_bev(struct event_base *base, void *arg)
{
    struct agenda_http_api *api = arg;
    return agenda_tls_api_bev_new(api->tls, base);
}

struct agenda_http_api *agenda_http_api_new(struct event_base *base,
                                            struct agenda_node *node,
                                            const char *host, uint16_t port,
                                            struct agenda_tls *tls)
{
    struct agenda_http_api *api = calloc(1, sizeof(*api));
    if (api == NULL)
        return NULL;
    api->node = node;
    api->http = evhttp_new(base);
    if (api->http == NULL) {
        free(api);
        return NULL;
    }
    evhttp_set_max_body_size(api->http, API_MAX_BODY);
    evhttp_set_max_headers_size(api->http, API_MAX_HEADERS);
    evhttp_set_timeout(api->http, API_TIMEOUT_S);
    evhttp_set_allowed_methods(api->http, EVHTTP_REQ_GET | EVHTTP_REQ_PUT |
                                              EVHTTP_REQ_DELETE |
                                              EVHTTP_REQ_POST);
    evhttp_set_gencb(api->http, route, api);
    /* With TLS a client must show the edge's certificate, or this
     * replica's own (its health check), from the internal CA (tls.h). */
    api->tls = tls;
    if (tls != NULL)
        evhttp_set_bevcb(api->http, tls_bev, api);
    struct evhttp_bound_socket *bound =
        evhttp_bind_socket_with_handle(api->http, host, port);
    if (bound == NULL) {
        agenda_log(AGENDA_LOG_ERROR, "cannot listen for HTTP on %s:%u", host,
                   port);
        agenda_http_api_free(api);
        return NULL;
    }
    evconnlistener_set_error_cb(evhttp_bound_socket_get_listener(bound),
                                accept_error_cb);
    /* Accepted sockets inherit TCP_NODELAY on Linux.  Without it the last
     * partial segment of a large answer waits for the client's delayed ACK
     * (Nagle): ~40 ms added to every answer over a few kilobytes. */
    int one = 1;
    evutil_socket_t fd = evhttp_bound_socket_get_fd(bound);
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    /* libevent listens with a backlog of 128.  An edge opening a burst of
     * connections (more concurrent calls than its keep-alive pool) then
     * overflows it, connects time out and calls are retried elsewhere:
     * hundreds of milliseconds for nothing.  Listening again on Linux
     * just raises the backlog (the kernel caps it at somaxconn). */
    if (listen(fd, API_LISTEN_BACKLOG) != 0)
        agenda_log(AGENDA_LOG_WARN, "cannot raise the HTTP listen backlog "
                   "of %s:%u; keeping libevent's", host, port);
    return api;
}

void agenda_http_api_free(struct agenda_http_api *api)
{
    if (api == NULL)
        return;
    if (api->http != NULL)
        evhttp_free(api->http);
    free(api);
}

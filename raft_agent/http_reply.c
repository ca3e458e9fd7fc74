/* http_reply.c — answers and pending requests; see http_reply.h. */
#include "http_reply.h"

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/keyvalq_struct.h>
#include <openssl/rand.h>

#include "bev_flush.h"

/* ---- replies --------------------------------------------------------------- */

void http_reply(struct evhttp_request *req, int status, const char *ctype,
                  const void *body, size_t len)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", ctype);
    evhttp_add_header(h, "Cache-Control", "no-store");
    struct evbuffer *b = evbuffer_new();
    if (b != NULL && len > 0)
        evbuffer_add(b, body, len);
    const char *reason = status == 421 ? "Misdirected Request" : NULL;
    evhttp_send_reply(req, status, reason, b);
    if (b != NULL)
        evbuffer_free(b);
}

void http_reply_json(struct evhttp_request *req, int status, json_t *j)
{
    char *text = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
    if (text == NULL) {
        static const char oom[] =
            "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";
        http_reply(req, 500, "application/json", oom, sizeof(oom) - 1);
    } else {
        http_reply(req, status, "application/json", text, strlen(text));
    }
    free(text);
    json_decref(j);
}

void http_reply_error(struct evhttp_request *req, int status,
                        const char *code, const char *message)
{
    http_reply_json(req, status, json_pack("{s:{s:s,s:s}}", "error", "code", code,
                                      "message", message));
}

static void leader_addr(struct agenda_node *n, char *buf, size_t len)
{
    struct agenda_node_info info;
    agenda_node_info(n, &info);
    buf[0] = '\0';
    if (info.leader_peer != NULL)
        snprintf(buf, len, "%s:%u", info.leader_peer->host,
                 info.leader_peer->http_port);
}

void http_reply_fail(struct agenda_node *node, struct evhttp_request *req,
                     enum agenda_node_fail f)
{
    const char *msg = agenda_node_fail_message(f);
    switch (f) {
    case AGENDA_NODE_NOT_LEADER: {
        char addr[300];
        leader_addr(node, addr, sizeof(addr));
        if (addr[0] != '\0')
            evhttp_add_header(evhttp_request_get_output_headers(req),
                              "X-Raft-Leader", addr);
        http_reply_json(req, 421,
                   json_pack("{s:{s:s,s:s,s:s?}}", "error", "code",
                             "not_leader", "message", msg, "leader",
                             addr[0] != '\0' ? addr : NULL));
        return;
    }
    case AGENDA_NODE_STORAGE_FULL:
        http_reply_error(req, 507, "storage_full", msg);
        return;
    case AGENDA_NODE_TOO_BIG:
        http_reply_error(req, 413, "too_large", msg);
        return;
    case AGENDA_NODE_UNKNOWN:
        http_reply_error(req, 503, "outcome_unknown", msg);
        return;
    default:
        evhttp_add_header(evhttp_request_get_output_headers(req),
                          "Retry-After", "1");
        http_reply_error(req, 503, "unavailable", msg);
        return;
    }
}

/* ---- pending requests and client disconnects ---------------------------- */

static void pending_conn_closed(struct evhttp_connection *conn, void *arg)
{
    struct http_pending *p = arg;
    (void)conn;
    agenda_node_cancel(p->node, p->op);
    http_pending_free(p);
}

struct http_pending *http_pending_new(struct agenda_node *node,
                                      struct evhttp_request *req)
{
    struct http_pending *p = calloc(1, sizeof(*p));
    if (p != NULL) {
        p->node = node;
        p->req = req;
    }
    return p;
}

void http_pending_free(struct http_pending *p)
{
    if (p == NULL)
        return;
    free(p->arg);
    free(p);
}

void http_pending_watch(struct http_pending *p)
{
    evhttp_connection_set_closecb(evhttp_request_get_connection(p->req),
                                  pending_conn_closed, p);
}

void http_pending_unwatch(struct http_pending *p)
{
    evhttp_connection_set_closecb(evhttp_request_get_connection(p->req),
                                  NULL, NULL);
}

bool http_request_id(struct evhttp_request *req,
                     char out[AGENDA_REQUEST_ID_MAX + 1])
{
    const char *given = evhttp_find_header(
        evhttp_request_get_input_headers(req), "Idempotency-Key");
    if (given != NULL) {
        size_t len = strlen(given);
        if (!agenda_request_id_valid(given, len))
            return false;
        memcpy(out, given, len + 1);
        return true;
    }
    unsigned char rnd[16];
    if (RAND_bytes(rnd, sizeof(rnd)) != 1)
        return false;
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", rnd[i]);
    return true;
}

int http_consistency(struct evhttp_request *req, const char *query,
                     bool *stale)
{
    *stale = false;
    if (query == NULL)
        return 0;
    struct evkeyvalq params;
    if (evhttp_parse_query_str(query, &params) != 0) {
        http_reply_error(req, 400, "bad_query", "malformed query string");
        return -1;
    }
    const char *c = evhttp_find_header(&params, "consistency");
    bool ok = c == NULL || strcmp(c, "linearizable") == 0 ||
              strcmp(c, "stale") == 0;
    *stale = c != NULL && strcmp(c, "stale") == 0;
    evhttp_clear_headers(&params);
    if (!ok) {
        http_reply_error(req, 400, "bad_consistency",
                         "consistency must be linearizable or stale");
        return -1;
    }
    return 0;
}

/* Write the answer just queued on req's connection to its socket now: a
 * writer's answer is queued right before the fsync of its batch (node.c,
 * commit_batch) and would otherwise wait behind it.  evhttp still learns
 * that the answer went out from the bufferevent, on the next loop turn. */
static void send_now(struct evhttp_request *req)
{
    struct evhttp_connection *con = evhttp_request_get_connection(req);
    struct bufferevent *bev =
        con != NULL ? evhttp_connection_get_bufferevent(con) : NULL;
    if (bev != NULL)
        agenda_bev_write_now(bev);
}

void http_pending_write_done(void *arg, enum agenda_node_fail fail,
                             const struct sm_result *res, bool duplicate)
{
    struct http_pending *p = arg;
    http_pending_unwatch(p);
    struct evkeyvalq *h = evhttp_request_get_output_headers(p->req);
    evhttp_add_header(h, "Idempotency-Key", p->request_id);
    if (fail != AGENDA_NODE_OK) {
        http_reply_fail(p->node, p->req, fail);
    } else {
        if (duplicate)
            evhttp_add_header(h, "Idempotent-Replayed", "true");
        http_reply(p->req, res->status, "application/json", res->body.data,
                   res->body.len);
        send_now(p->req);
    }
    http_pending_free(p);
}

/* http_kv.c — the diagnostic key-value routes; see http_api.h. */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>

#include "http_reply.h"
#include "http_routes.h"
#include "kv_sm.h"

static void serve_query(struct agenda_node *node, struct evhttp_request *req,
                        const char *key)
{
    char path[AGENDA_KV_KEY_MAX + 8];
    snprintf(path, sizeof(path), "kv/%s", key);
    struct sm_query q = {.method = "GET", .path = path};
    struct sm_result res = {0};
    int rc = agenda_node_query(node, &q, &res);
    if (rc != 0)
        http_reply_error(req, 500, "storage", "the replica could not read");
    else
        http_reply(req, res.status,
                   res.status == 200 ? "application/octet-stream"
                                     : "application/json",
                   res.body.data, res.body.len);
    agenda_buf_free(&res.body);
}

static void kv_read_done(void *arg, enum agenda_node_fail fail)
{
    struct http_pending *p = arg;
    http_pending_unwatch(p);
    if (fail != AGENDA_NODE_OK)
        http_reply_fail(p->node, p->req, fail);
    else
        serve_query(p->node, p->req, p->arg);
    http_pending_free(p);
}

void http_kv(struct agenda_node *node, struct evhttp_request *req,
             const char *key, const char *query)
{
    enum evhttp_cmd_type method = evhttp_request_get_command(req);
    size_t klen = strlen(key);
    if (!agenda_kv_key_valid(key, klen)) {
        http_reply_error(req, 400, "bad_key",
                         "keys are 1-256 printable ASCII characters, no '/'");
        return;
    }
    if (method == EVHTTP_REQ_GET) {
        bool stale;
        if (http_consistency(req, query, &stale) != 0)
            return;
        if (stale) {
            serve_query(node, req, key);
            return;
        }
    }
    struct http_pending *p = http_pending_new(node, req);
    if (p == NULL || (p->arg = strdup(key)) == NULL) {
        http_pending_free(p);
        http_reply_error(req, 503, "unavailable", "out of memory");
        return;
    }
    enum agenda_node_fail f;
    if (method == EVHTTP_REQ_GET) {
        f = agenda_node_read(node, kv_read_done, p, &p->op);
    } else {
        if (!http_request_id(req, p->request_id)) {
            http_pending_free(p);
            http_reply_error(req, 400, "bad_idempotency_key",
                             "Idempotency-Key must be 1-64 characters of "
                             "[A-Za-z0-9._:-]");
            return;
        }
        struct evbuffer *in = evhttp_request_get_input_buffer(req);
        size_t vlen = evbuffer_get_length(in);
        const uint8_t *value = evbuffer_pullup(in, -1);
        struct agenda_buf cmd = {0};
        int op = method == EVHTTP_REQ_PUT ? AGENDA_KV_OP_PUT
                                          : AGENDA_KV_OP_DELETE;
        if (agenda_kv_encode(&cmd, op, key, klen, value,
                             op == AGENDA_KV_OP_PUT ? vlen : 0) != 0) {
            http_pending_free(p);
            http_reply_error(req, 503, "unavailable", "out of memory");
            return;
        }
        f = agenda_node_write(node, p->request_id, cmd.data, cmd.len,
                              http_pending_write_done, p, &p->op);
        agenda_buf_free(&cmd);
    }
    if (f != AGENDA_NODE_OK) {
        http_pending_free(p);
        http_reply_fail(node, req, f);
        return;
    }
    http_pending_watch(p);
}

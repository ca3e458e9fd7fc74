/* http_api.c — the agent's internal HTTP API; see http_api.h. */
#include "http_api.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/rand.h>

#include "command.h"
#include "kv_sm.h"
#include "log.h"

#define API_MAX_BODY (1u << 20)
#define API_MAX_HEADERS (16u * 1024u)
#define API_TIMEOUT_S 30

struct agenda_http_api {
    struct evhttp *http;
    struct agenda_node *node;
};

/* A client request waiting for the log.  Freed when answered or when the
 * client connection closes first. */
struct api_pending {
    struct agenda_http_api *api;
    struct evhttp_request *req;
    struct agenda_node_op *op;
    char request_id[AGENDA_REQUEST_ID_MAX + 1];
    char key[AGENDA_KV_KEY_MAX + 1];
};

/* ---- replies --------------------------------------------------------------- */

static void reply(struct evhttp_request *req, int status, const char *ctype,
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

static void reply_json(struct evhttp_request *req, int status, json_t *j)
{
    char *text = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
    if (text == NULL) {
        static const char oom[] =
            "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";
        reply(req, 500, "application/json", oom, sizeof(oom) - 1);
    } else {
        reply(req, status, "application/json", text, strlen(text));
    }
    free(text);
    json_decref(j);
}

static void reply_error(struct evhttp_request *req, int status,
                        const char *code, const char *message)
{
    reply_json(req, status, json_pack("{s:{s:s,s:s}}", "error", "code", code,
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

static void reply_fail(struct agenda_http_api *api, struct evhttp_request *req,
                       enum agenda_node_fail f)
{
    const char *msg = agenda_node_fail_message(f);
    switch (f) {
    case AGENDA_NODE_NOT_LEADER: {
        char addr[300];
        leader_addr(api->node, addr, sizeof(addr));
        if (addr[0] != '\0')
            evhttp_add_header(evhttp_request_get_output_headers(req),
                              "X-Raft-Leader", addr);
        reply_json(req, 421,
                   json_pack("{s:{s:s,s:s,s:s?}}", "error", "code",
                             "not_leader", "message", msg, "leader",
                             addr[0] != '\0' ? addr : NULL));
        return;
    }
    case AGENDA_NODE_STORAGE_FULL:
        reply_error(req, 507, "storage_full", msg);
        return;
    case AGENDA_NODE_TOO_BIG:
        reply_error(req, 413, "too_large", msg);
        return;
    case AGENDA_NODE_UNKNOWN:
        reply_error(req, 503, "outcome_unknown", msg);
        return;
    default:
        evhttp_add_header(evhttp_request_get_output_headers(req),
                          "Retry-After", "1");
        reply_error(req, 503, "unavailable", msg);
        return;
    }
}

/* ---- pending requests and client disconnects ---------------------------------- */

static void pending_conn_closed(struct evhttp_connection *conn, void *arg)
{
    struct api_pending *p = arg;
    (void)conn;
    agenda_node_cancel(p->api->node, p->op);
    free(p);
}

static void pending_watch(struct api_pending *p)
{
    evhttp_connection_set_closecb(evhttp_request_get_connection(p->req),
                                  pending_conn_closed, p);
}

static void pending_unwatch(struct api_pending *p)
{
    evhttp_connection_set_closecb(evhttp_request_get_connection(p->req),
                                  NULL, NULL);
}

/* ---- /kv ------------------------------------------------------------------------ */

static void kv_write_done(void *arg, enum agenda_node_fail fail,
                          const struct sm_result *res, bool duplicate)
{
    struct api_pending *p = arg;
    pending_unwatch(p);
    struct evkeyvalq *h = evhttp_request_get_output_headers(p->req);
    evhttp_add_header(h, "Idempotency-Key", p->request_id);
    if (fail != AGENDA_NODE_OK) {
        reply_fail(p->api, p->req, fail);
    } else {
        if (duplicate)
            evhttp_add_header(h, "Idempotent-Replayed", "true");
        reply(p->req, res->status, "application/json", res->body.data,
              res->body.len);
    }
    free(p);
}

static void serve_query(struct agenda_http_api *api,
                        struct evhttp_request *req, const char *key)
{
    char path[AGENDA_KV_KEY_MAX + 8];
    snprintf(path, sizeof(path), "kv/%s", key);
    struct sm_query q = {.method = "GET", .path = path, .query = NULL};
    struct sm_result res = {0};
    int rc = agenda_node_query(api->node, &q, &res);
    if (rc != 0) {
        reply_error(req, 500, "storage", "the replica could not read");
    } else if (res.status == 200) {
        reply(req, 200, "application/octet-stream", res.body.data,
              res.body.len);
    } else {
        reply(req, res.status, "application/json", res.body.data,
              res.body.len);
    }
    agenda_buf_free(&res.body);
}

static void kv_read_done(void *arg, enum agenda_node_fail fail)
{
    struct api_pending *p = arg;
    pending_unwatch(p);
    if (fail != AGENDA_NODE_OK)
        reply_fail(p->api, p->req, fail);
    else
        serve_query(p->api, p->req, p->key);
    free(p);
}

static bool request_id_of(struct evhttp_request *req, char *out)
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

static void handle_kv(struct agenda_http_api *api, struct evhttp_request *req,
                      const char *key, const char *query)
{
    enum evhttp_cmd_type method = evhttp_request_get_command(req);
    size_t klen = strlen(key);
    if (!agenda_kv_key_valid(key, klen)) {
        reply_error(req, 400, "bad_key",
                    "keys are 1-256 printable ASCII characters, no '/'");
        return;
    }
    struct api_pending *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        reply_error(req, 503, "unavailable", "out of memory");
        return;
    }
    p->api = api;
    p->req = req;
    memcpy(p->key, key, klen + 1);
    enum agenda_node_fail f;

    if (method == EVHTTP_REQ_GET) {
        bool stale = false;
        if (query != NULL) {
            struct evkeyvalq params;
            if (evhttp_parse_query_str(query, &params) != 0) {
                free(p);
                reply_error(req, 400, "bad_query", "malformed query string");
                return;
            }
            const char *c = evhttp_find_header(&params, "consistency");
            bool ok = c == NULL || strcmp(c, "linearizable") == 0 ||
                      strcmp(c, "stale") == 0;
            stale = c != NULL && strcmp(c, "stale") == 0;
            evhttp_clear_headers(&params);
            if (!ok) {
                free(p);
                reply_error(req, 400, "bad_consistency",
                            "consistency must be linearizable or stale");
                return;
            }
        }
        if (stale) {
            free(p);
            serve_query(api, req, key);
            return;
        }
        f = agenda_node_read(api->node, kv_read_done, p, &p->op);
    } else {
        if (!request_id_of(req, p->request_id)) {
            free(p);
            reply_error(req, 400, "bad_idempotency_key",
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
            free(p);
            reply_error(req, 503, "unavailable", "out of memory");
            return;
        }
        f = agenda_node_write(api->node, p->request_id, cmd.data, cmd.len,
                              kv_write_done, p, &p->op);
        agenda_buf_free(&cmd);
    }
    if (f != AGENDA_NODE_OK) {
        free(p);
        reply_fail(api, req, f);
        return;
    }
    pending_watch(p);
}

/* ---- status, health, metrics, digest ------------------------------------------- */

static void handle_status(struct agenda_http_api *api,
                          struct evhttp_request *req)
{
    struct agenda_node_info info;
    agenda_node_info(api->node, &info);
    const struct agenda_node_config *cfg = agenda_node_config(api->node);
    char addr[300] = "";
    if (info.leader_peer != NULL)
        snprintf(addr, sizeof(addr), "%s:%u", info.leader_peer->host,
                 info.leader_peer->http_port);
    json_t *peers = json_array();
    for (unsigned i = 0; i < info.raft.n_peers; i++) {
        const struct raft_peer_status *ps = &info.raft.peers[i];
        if (ps->id == cfg->id)
            continue;
        json_t *p = json_pack("{s:i}", "id", (int)ps->id);
        if (info.raft.role == RAFT_LEADER)
            json_object_update(p, json_pack("{s:I,s:I,s:b,s:b}", "match_index",
                                            (json_int_t)ps->match,
                                            "next_index", (json_int_t)ps->next,
                                            "active", ps->recent_active,
                                            "snapshotting", ps->snapshotting));
        json_array_append_new(peers, p);
    }
    json_t *j = json_pack(
        "{s:s,s:i,s:s,s:I,s:i,s:s?,s:I,s:I,s:I,s:I,s:I,s:i,s:b,s:b,s:o}",
        "shard", cfg->shard, "node_id", (int)cfg->id, "role",
        raft_role_name(info.raft.role), "term", (json_int_t)info.raft.term,
        "leader_id", (int)info.raft.leader, "leader_addr",
        addr[0] != '\0' ? addr : NULL, "commit_index",
        (json_int_t)info.raft.commit, "applied_index",
        (json_int_t)info.raft.applied, "last_index",
        (json_int_t)info.raft.last_index, "first_index",
        (json_int_t)info.first_index, "snapshot_index",
        (json_int_t)info.snapshot.index, "pid", (int)getpid(),
        "healthy", info.healthy, "storage_full", info.storage_full, "peers",
        peers);
    reply_json(req, 200, j);
}

static void handle_health(struct agenda_http_api *api,
                          struct evhttp_request *req)
{
    struct agenda_node_info info;
    agenda_node_info(api->node, &info);
    if (info.healthy) {
        reply_json(req, 200, json_pack("{s:s,s:s}", "status", "ok", "role",
                                       raft_role_name(info.raft.role)));
        return;
    }
    const char *why = info.storage_full ? "storage is full"
                      : info.raft.leader == RAFT_NONE
                          ? "no leader is known (election in progress?)"
                          : "the replica is not serving";
    reply_error(req, 503, "unhealthy", why);
}

static void handle_metrics(struct agenda_http_api *api,
                           struct evhttp_request *req)
{
    struct agenda_node_info in;
    agenda_node_info(api->node, &in);
    const struct agenda_node_config *cfg = agenda_node_config(api->node);
    struct agenda_buf b = {0};
    char l[160];
    snprintf(l, sizeof(l), "shard=\"%s\",node=\"%u\"", cfg->shard, cfg->id);
    agenda_buf_printf(&b, "# TYPE agenda_raft_role gauge\n");
    for (int r = RAFT_FOLLOWER; r <= RAFT_LEADER; r++)
        agenda_buf_printf(&b, "agenda_raft_role{%s,role=\"%s\"} %d\n", l,
                          raft_role_name((enum raft_role)r),
                          in.raft.role == (enum raft_role)r);
    struct {
        const char *name, *type;
        double value;
    } m[] = {
        {"agenda_raft_term", "gauge", (double)in.raft.term},
        {"agenda_raft_commit_index", "gauge", (double)in.raft.commit},
        {"agenda_raft_applied_index", "gauge", (double)in.raft.applied},
        {"agenda_raft_commits_total", "counter", (double)in.commits},
        {"agenda_raft_proposals_total", "counter", (double)in.proposals},
        {"agenda_raft_elections_total", "counter", (double)in.elections},
        {"agenda_raft_leader_changes_total", "counter",
         (double)in.leader_changes},
        {"agenda_raft_apply_batches_total", "counter",
         (double)in.apply_batches},
        {"agenda_raft_apply_seconds_total", "counter",
         (double)in.apply_ns_total / 1e9},
        {"agenda_raft_apply_seconds_max", "gauge",
         (double)in.apply_ns_max / 1e9},
        {"agenda_storage_fsync_total", "counter", (double)in.sync_count},
        {"agenda_storage_fsync_seconds_total", "counter",
         (double)in.sync_ns_total / 1e9},
        {"agenda_storage_fsync_seconds_max", "gauge",
         (double)in.sync_ns_max / 1e9},
        {"agenda_raft_snapshots_sent_total", "counter",
         (double)in.snapshots_sent},
        {"agenda_raft_snapshots_received_total", "counter",
         (double)in.snapshots_received},
        {"agenda_raft_snapshots_failed_total", "counter",
         (double)in.snapshots_failed},
        {"agenda_raft_compactions_total", "counter", (double)in.compactions},
        {"agenda_sessions_duplicates_total", "counter",
         (double)in.duplicates},
        {"agenda_storage_used_bytes", "gauge", (double)in.storage_used},
        {"agenda_storage_map_bytes", "gauge", (double)in.storage_map},
        {"agenda_storage_full", "gauge", in.storage_full ? 1.0 : 0.0},
        {"agenda_transport_drops_total", "counter",
         (double)in.transport_drops},
        {"agenda_transport_bad_frames_total", "counter",
         (double)in.transport_bad_frames},
    };
    for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
        agenda_buf_printf(&b, "# TYPE %s %s\n%s{%s} %.9g\n", m[i].name,
                          m[i].type, m[i].name, l, m[i].value);
    reply(req, 200, "text/plain; version=0.0.4", b.data, b.len);
    agenda_buf_free(&b);
}

static void handle_digest(struct agenda_http_api *api,
                          struct evhttp_request *req)
{
    char hex[65];
    raft_index applied;
    if (agenda_node_digest(api->node, hex, &applied) != 0) {
        reply_error(req, 500, "storage", "cannot compute the digest");
        return;
    }
    reply_json(req, 200, json_pack("{s:s,s:I}", "digest", hex,
                                   "applied_index", (json_int_t)applied));
}

static void handle_transfer(struct agenda_http_api *api,
                            struct evhttp_request *req)
{
    if (!agenda_node_start_transfer(api->node)) {
        reply_fail(api, req, AGENDA_NODE_NOT_LEADER);
        return;
    }
    reply_json(req, 202, json_pack("{s:s}", "status", "transferring"));
}

/* ---- routing --------------------------------------------------------------------- */

static void route(struct evhttp_request *req, void *arg)
{
    struct agenda_http_api *api = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *raw = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
    if (raw == NULL) {
        reply_error(req, 400, "bad_uri", "malformed request URI");
        return;
    }
    size_t len;
    char *path = evhttp_uridecode(raw, 0, &len);
    if (path == NULL || strlen(path) != len) {
        free(path);
        reply_error(req, 400, "bad_uri", "malformed path encoding");
        return;
    }
    enum evhttp_cmd_type method = evhttp_request_get_command(req);
    bool get = method == EVHTTP_REQ_GET;
    if (strncmp(path, "/kv/", 4) == 0) {
        if (get || method == EVHTTP_REQ_PUT || method == EVHTTP_REQ_DELETE)
            handle_kv(api, req, path + 4, evhttp_uri_get_query(uri));
        else
            reply_error(req, 405, "method_not_allowed",
                        "use GET, PUT or DELETE on /kv/{key}");
    } else if (strcmp(path, "/status") == 0 && get) {
        handle_status(api, req);
    } else if (strcmp(path, "/health") == 0 && get) {
        handle_health(api, req);
    } else if (strcmp(path, "/metrics") == 0 && get) {
        handle_metrics(api, req);
    } else if (strcmp(path, "/digest") == 0 && get) {
        handle_digest(api, req);
    } else if (strcmp(path, "/transfer-leader") == 0 &&
               method == EVHTTP_REQ_POST) {
        handle_transfer(api, req);
    } else {
        reply_error(req, 404, "not_found", "no such resource");
    }
    free(path);
}

struct agenda_http_api *agenda_http_api_new(struct event_base *base,
                                            struct agenda_node *node,
                                            const char *host, uint16_t port)
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
    if (evhttp_bind_socket_with_handle(api->http, host, port) == NULL) {
        agenda_log(AGENDA_LOG_ERROR, "cannot listen for HTTP on %s:%u", host,
                   port);
        agenda_http_api_free(api);
        return NULL;
    }
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

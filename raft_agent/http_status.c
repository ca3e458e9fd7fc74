/* http_status.c — status, health, metrics, digest and leadership transfer
 * routes; see http_api.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "http_reply.h"
#include "http_routes.h"
#include "storage.h"

/* ---- status, health, metrics, digest ------------------------------------------- */

void http_status(struct agenda_node *node, struct evhttp_request *req)
{
    struct agenda_node_info info;
    agenda_node_info(node, &info);
    const struct agenda_node_config *cfg = agenda_node_config(node);
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
            json_object_update_new(
                p, json_pack("{s:I,s:I,s:b,s:b}", "match_index",
                             (json_int_t)ps->match, "next_index",
                             (json_int_t)ps->next, "active",
                             ps->recent_active, "snapshotting",
                             ps->snapshotting));
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
    http_reply_json(req, 200, j);
}

void http_health(struct agenda_node *node, struct evhttp_request *req)
{
    struct agenda_node_info info;
    agenda_node_info(node, &info);
    if (info.healthy) {
        http_reply_json(req, 200, json_pack("{s:s,s:s}", "status", "ok", "role",
                                       raft_role_name(info.raft.role)));
        return;
    }
    const char *why = info.storage_full ? "storage is full"
                      : info.raft.leader == RAFT_NONE
                          ? "no leader is known (election in progress?)"
                          : "the replica is not serving";
    http_reply_error(req, 503, "unhealthy", why);
}

void http_metrics(struct agenda_node *node, struct evhttp_request *req)
{
    struct agenda_node_info in;
    agenda_node_info(node, &in);
    const struct agenda_node_config *cfg = agenda_node_config(node);
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
        {"agenda_storage_commits_lazy_total", "counter",
         (double)in.sync_lazy},
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
        {"agenda_sessions_remembered", "gauge",
         (double)in.sessions_remembered},
        {"agenda_sessions_index_bytes", "gauge",
         (double)in.sessions_index_bytes},
        {"agenda_raft_answered_before_sync_total", "counter",
         (double)in.answered_before_sync},
        {"agenda_queries_total", "counter", (double)in.queries},
        {"agenda_raft_read_index_total", "counter", (double)in.read_index},
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
    http_reply(req, 200, "text/plain; version=0.0.4", b.data, b.len);
    agenda_buf_free(&b);
}

/* A /digest waiting for its thread (node_digest.c). */
struct digest_wait {
    struct agenda_node *node;
    struct evhttp_request *req;
};

static void digest_done(void *arg, int rc, const char *hex,
                        raft_index applied)
{
    struct digest_wait *w = arg;
    evhttp_connection_set_closecb(evhttp_request_get_connection(w->req),
                                  NULL, NULL);
    if (rc != 0)
        http_reply_error(w->req, 500, "storage",
                         "cannot compute the digest");
    else
        http_reply_json(w->req, 200,
                        json_pack("{s:s,s:I}", "digest", hex,
                                  "applied_index", (json_int_t)applied));
    free(w);
}

/* The connection goes first (the agent's end frees it): nobody to answer. */
static void digest_conn_closed(struct evhttp_connection *conn, void *arg)
{
    struct digest_wait *w = arg;
    (void)conn;
    agenda_node_digest_forget(w->node, w);
    free(w);
}

void http_digest(struct agenda_node *node, struct evhttp_request *req)
{
    struct digest_wait *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        http_reply_error(req, 500, "storage", "out of memory");
        return;
    }
    w->node = node;
    w->req = req;
    int rc = agenda_node_digest_start(node, digest_done, w);
    if (rc == AGENDA_STORAGE_BUSY) {
        free(w);
        evhttp_add_header(evhttp_request_get_output_headers(req),
                          "Retry-After", "1");
        http_reply_error(req, 503, "busy", "a digest is being computed "
                         "here; ask again when it is done");
        return;
    }
    if (rc != 0) {
        free(w);
        http_reply_error(req, 500, "storage", "cannot compute the digest");
        return;
    }
    evhttp_connection_set_closecb(evhttp_request_get_connection(req),
                                  digest_conn_closed, w);
}

void http_transfer(struct agenda_node *node, struct evhttp_request *req)
{
    if (!agenda_node_start_transfer(node)) {
        http_reply_fail(node, req, AGENDA_NODE_NOT_LEADER);
        return;
    }
    http_reply_json(req, 202, json_pack("{s:s}", "status", "transferring"));
}


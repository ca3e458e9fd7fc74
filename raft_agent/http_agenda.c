/*
 * http_agenda.c — the agenda routes of the internal API (API.md):
 *
 *   POST /v1/commands   {"op","actor","args"} → proposed to the log
 *   POST /v1/queries    {"op","actor","args"} → answered from this replica
 *                       (?consistency=linearizable (default) | stale)
 *
 * The leader mints the random ids of new objects here, before proposing,
 * because apply must be deterministic on every replica.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/rand.h>

#include "agenda_sm.h"
#include "buf.h"
#include "http_reply.h"
#include "http_routes.h"
#include "json_text.h"
#include "model.h"

/* Commands whose new object gets an id minted by the leader.  Event ids
 * start with the leader's clock (12 hex digits of Unix milliseconds) and
 * end with 80 random bits: a calendar's new events then sort after its
 * older ones in the events database, so a batch of creations dirties a
 * few neighbouring B+tree pages instead of one random page each. */
static const struct {
    const char *op;
    size_t id_len;
    bool time_prefixed;
} minted_ids[] = {
    {"event.create", AGENDA_EVENT_ID_LEN, true},
    {"group.create", AGENDA_GROUP_ID_LEN, false},
};

#define ID_TIME_HEX 12

static bool random_hex(char *out, size_t len)
{
    unsigned char rnd[32];
    if (len > 2 * sizeof(rnd) || RAND_bytes(rnd, (int)(len + 1) / 2) != 1)
        return false;
    for (size_t i = 0; i < len; i++)
        out[i] = "0123456789abcdef"[(rnd[i / 2] >> (i % 2 ? 0 : 4)) & 15];
    out[len] = '\0';
    return true;
}

/* Answer what every replica would refuse of an operation of len bytes
 * named name (NULL: the size only), agenda_op_refusal(); true when it
 * answered. */
static bool refused(struct evhttp_request *req, const char *name,
                    size_t len)
{
    const char *code;
    char why[160];
    int status = agenda_op_refusal(name, len, true, NULL, &code, why,
                                   sizeof(why));
    if (status != 0)
        http_reply_error(req, status, code, why);
    return status != 0;
}

/* Parse the body as an operation; answers and returns NULL when it is
 * not an object naming a command, or is over the size every replica
 * would refuse at apply: nothing is proposed then (it would be stored and
 * synced on a majority only to be refused). */
static json_t *read_operation(struct evhttp_request *req)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    if (refused(req, NULL, len))
        return NULL;
    const char *body = (const char *)evbuffer_pullup(in, -1);
    json_error_t jerr;
    json_t *j = len > 0 ? json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr)
                        : NULL;
    if (j == NULL || !json_is_object(j) ||
        !json_is_string(json_object_get(j, "op"))) {
        json_decref(j);
        http_reply_error(req, 400, "bad_json",
                         "the body must be a JSON object with op, actor and "
                         "args (see API.md)");
        return NULL;
    }
    if (refused(req, json_string_value(json_object_get(j, "op")), len)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

static bool mint_id(json_t *op)
{
    const char *name = json_string_value(json_object_get(op, "op"));
    json_t *args = json_object_get(op, "args");
    for (size_t i = 0; i < sizeof(minted_ids) / sizeof(minted_ids[0]); i++) {
        json_t *given = json_object_get(args, "id");
        /* null is absent (API.md): it gets an id too */
        if (strcmp(name, minted_ids[i].op) != 0 || !json_is_object(args) ||
            (given != NULL && !json_is_null(given)))
            continue;
        char id[65];
        size_t skip = 0;
        if (minted_ids[i].time_prefixed) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            uint64_t ms = (uint64_t)ts.tv_sec * 1000u +
                          (uint64_t)ts.tv_nsec / 1000000u;
            snprintf(id, sizeof(id), "%012" PRIx64,
                     ms & ((UINT64_C(1) << (4 * ID_TIME_HEX)) - 1));
            skip = ID_TIME_HEX;
        }
        if (!random_hex(id + skip, minted_ids[i].id_len - skip))
            return false;
        json_object_set_new(args, "id", json_string(id));
    }
    return true;
}

void http_agenda_command(struct agenda_node *node, struct evhttp_request *req)
{
    struct http_pending *p = http_pending_new(node, req);
    if (p == NULL) {
        http_reply_error(req, 503, "unavailable", "out of memory");
        return;
    }
    if (!http_request_id(req, p->request_id)) {
        http_pending_free(p);
        http_reply_error(req, 400, "bad_idempotency_key",
                         "Idempotency-Key must be 1-64 characters of "
                         "[A-Za-z0-9._:-]");
        return;
    }
    json_t *op = read_operation(req);
    if (op == NULL) {
        http_pending_free(p);
        return;
    }
    struct agenda_buf text = {0};
    bool ok = mint_id(op) && agenda_json_text_value(&text, op, false) == 0;
    json_decref(op);
    if (!ok) {
        agenda_buf_free(&text);
        http_pending_free(p);
        http_reply_error(req, 503, "unavailable", "out of memory");
        return;
    }
    if (refused(req, NULL, text.len)) { /* grown by its minted id */
        agenda_buf_free(&text);
        http_pending_free(p);
        return;
    }
    enum agenda_node_fail f =
        agenda_node_write(node, p->request_id, (const char *)text.data,
                          text.len, http_pending_write_done, p, &p->op);
    agenda_buf_free(&text);
    if (f != AGENDA_NODE_OK) {
        http_pending_free(p);
        http_reply_fail(node, req, f);
        return;
    }
    http_pending_watch(p);
}

static void serve_query(struct agenda_node *node, struct evhttp_request *req,
                        const char *body, size_t len)
{
    struct sm_query q = {.method = "POST", .path = "v1/queries",
                         .body = (const uint8_t *)body, .body_len = len};
    struct sm_result res = {0};
    if (agenda_node_query(node, &q, &res) != 0)
        http_reply_error(req, 500, "storage", "the replica could not read");
    else
        http_reply(req, res.status, "application/json", res.body.data,
                   res.body.len);
    agenda_buf_free(&res.body);
}

static void query_ready(void *arg, enum agenda_node_fail fail)
{
    struct http_pending *p = arg;
    http_pending_unwatch(p);
    if (fail != AGENDA_NODE_OK)
        http_reply_fail(p->node, p->req, fail);
    else
        serve_query(p->node, p->req, p->arg, p->arg_len);
    http_pending_free(p);
}

void http_agenda_query(struct agenda_node *node, struct evhttp_request *req,
                       const char *query)
{
    bool stale;
    if (http_consistency(req, query, &stale) != 0)
        return;
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    const char *body = (const char *)evbuffer_pullup(in, -1);
    if (stale) {
        serve_query(node, req, body, len);
        return;
    }
    struct http_pending *p = http_pending_new(node, req);
    if (p == NULL || (p->arg = malloc(len + 1)) == NULL) {
        http_pending_free(p);
        http_reply_error(req, 503, "unavailable", "out of memory");
        return;
    }
    if (len > 0)
        memcpy(p->arg, body, len);
    p->arg_len = len;
    enum agenda_node_fail f = agenda_node_read(node, query_ready, p, &p->op);
    if (f != AGENDA_NODE_OK) {
        http_pending_free(p);
        http_reply_fail(node, req, f);
        return;
    }
    http_pending_watch(p);
}

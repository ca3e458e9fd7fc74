/*
 * flow_harness.h — drives agenda_flow (ngx_agenda_module/lib/agenda_flow.h)
 * the way the nginx executor does, with scripted shard answers instead of
 * shards, and records what the flow asked for.  Included by the
 * tests/unit/test_flow*.c files only (after cmocka.h); all static.
 *
 * Shard answers come from a script: rows {op, shard or NULL, status,
 * body}; each call gets the first row whose op (and shard, when given)
 * matches, so one row answers every call of an op.  An op without a row
 * fails the test (a replica's GET /status is the op "status").  HASH
 * returns FH_HASH; VERIFY matches FH_PASSWORD
 * against any hash but the login's dummy one.
 *
 * fh_cache_on() gives the flows an in-memory auth cache (struct fh_cache)
 * that keeps the contract of agenda_flow.h (a store never lowers the
 * version of an entry) and counts what the flows did with it; its
 * entries stay fresh until forgotten or fh_cache_clear().
 */
#ifndef FLOW_HARNESS_H
#define FLOW_HARNESS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "agenda_flow.h"
#include "route.h"
#include "topology.h"

#define FH_FN static __attribute__((unused))
#define FH_NOW 1795000000 /* 2026-11-18T11:06:40Z */
#define FH_PASSWORD "correct-horse-9"
#define FH_HASH                                                            \
    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$"               \
    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
#define FH_MAX_CALLS 64
#define FH_CLOSE "(close)" /* what a channel closing reads as in notes */

static const char fh_topology[] =
    "{\"version\":1,\"cluster\":\"t\",\"raft\":{\"tick_ms\":25,"
    "\"election_ticks\":8,\"heartbeat_ticks\":2,\"snapshot_threshold\":100,"
    "\"map_size_mb\":64},\"data_dir\":\"var\",\"servers\":[{\"name\":\"s1\","
    "\"host\":\"127.0.0.1\"}],\"shards\":["
    "{\"name\":\"events_am\",\"kind\":\"events\",\"range\":{\"from\":\"\","
    "\"to\":\"n\"},\"replicas\":[{\"id\":1,\"name\":\"a1\",\"server\":\"s1\","
    "\"http_port\":7100,\"raft_port\":7200}]},"
    "{\"name\":\"events_nz\",\"kind\":\"events\",\"range\":{\"from\":\"n\","
    "\"to\":\"\"},\"replicas\":[{\"id\":1,\"name\":\"b1\",\"server\":\"s1\","
    "\"http_port\":7110,\"raft_port\":7210}]},"
    "{\"name\":\"groups\",\"kind\":\"groups\",\"range\":{\"from\":\"\","
    "\"to\":\"\"},\"replicas\":[{\"id\":1,\"name\":\"g1\",\"server\":\"s1\","
    "\"http_port\":7120,\"raft_port\":7220}]},"
    "{\"name\":\"users\",\"kind\":\"users\",\"range\":{\"from\":\"\","
    "\"to\":\"\"},\"replicas\":[{\"id\":1,\"name\":\"u1\",\"server\":\"s1\","
    "\"http_port\":7130,\"raft_port\":7230}]}]}";

static const unsigned char fh_secret[] = "0123456789abcdef0123456789abcdef";

struct fh_row {
    const char *op;
    const char *shard;  /* NULL: any */
    int status;
    const char *body;
};

/* user.auth's answer for alice (user, token version 1). */
#define FH_AUTH_ALICE                                                      \
    {"user.auth", NULL, 200,                                               \
     "{\"user\":{\"username\":\"alice\",\"password_hash\":\"" FH_HASH      \
     "\",\"role\":\"user\",\"token_version\":1}}"}

struct fh_call {
    char shard[64];
    bool command, stale;
    char key[80];
    json_t *req;        /* the operation sent */
};

#define FH_CACHE_MAX 8

struct fh_cache {
    struct agenda_auth_cache iface;
    struct {
        bool used;
        char user[40];
        struct agenda_auth_entry e;
    } slot[FH_CACHE_MAX];
    int lookups, hits, stores, forgets;
};

struct fh {
    struct agenda_topology *topo;
    struct agenda_jwt_config jwt;
    struct agenda_flow_env env;
    const struct fh_row *script;
    size_t n_script;
    /* what happened */
    struct fh_call calls[FH_MAX_CALLS];
    size_t n_calls;
    int n_hash, n_verify;
    int status;
    json_t *body;       /* the answer, parsed */
    char raw[1024];     /* and its first bytes as sent, 0-terminated */
    char headers[8][2][160];
    size_t n_headers;
    char notes[16][2][512];
    size_t n_notes;
    struct fh_cache cache;
};

/* ---- the fake auth cache ------------------------------------------------- */

FH_FN int fh_cache_find(struct fh_cache *c, const char *user)
{
    for (int i = 0; i < FH_CACHE_MAX; i++)
        if (c->slot[i].used && strcmp(c->slot[i].user, user) == 0)
            return i;
    return -1;
}

FH_FN int fh_cache_lookup(void *data, const char *user,
                          struct agenda_auth_entry *out)
{
    struct fh_cache *c = data;
    int i = fh_cache_find(c, user);

    c->lookups++;
    if (i < 0)
        return 0;
    c->hits++;
    *out = c->slot[i].e;
    return 1;
}

FH_FN void fh_cache_put(struct fh_cache *c, const char *user,
                        const char *role, uint64_t tv)
{
    int i = fh_cache_find(c, user);

    for (int k = 0; i < 0 && k < FH_CACHE_MAX; k++)
        if (!c->slot[k].used)
            i = k;
    if (i < 0)
        fail_msg("the fake auth cache is full");
    c->slot[i].used = true;
    snprintf(c->slot[i].user, sizeof c->slot[i].user, "%s", user);
    memset(&c->slot[i].e, 0, sizeof c->slot[i].e);
    snprintf(c->slot[i].e.role, sizeof c->slot[i].e.role, "%s", role);
    c->slot[i].e.token_version = tv;
}

FH_FN void fh_cache_store(void *data, const char *user,
                          const struct agenda_auth_entry *e)
{
    struct fh_cache *c = data;
    int i = fh_cache_find(c, user);

    c->stores++;
    if (strcmp(e->role, "user") != 0 && strcmp(e->role, "admin") != 0)
        fail_msg("stored role '%.8s'", e->role);
    /* the contract: never lower a fresh entry's version */
    if (i >= 0 && c->slot[i].e.token_version > e->token_version)
        return;
    fh_cache_put(c, user, e->role, e->token_version);
}

FH_FN void fh_cache_forget(void *data, const char *user)
{
    struct fh_cache *c = data;
    int i = fh_cache_find(c, user);

    c->forgets++;
    if (i >= 0)
        c->slot[i].used = false;
}

/* The entry of user, or NULL. */
FH_FN const struct agenda_auth_entry *fh_cache_get(struct fh *h,
                                                   const char *user)
{
    int i = fh_cache_find(&h->cache, user);

    return i < 0 ? NULL : &h->cache.slot[i].e;
}

FH_FN void fh_cache_on(struct fh *h)
{
    h->cache.iface.data = &h->cache;
    h->cache.iface.lookup = fh_cache_lookup;
    h->cache.iface.store = fh_cache_store;
    h->cache.iface.forget = fh_cache_forget;
    h->env.auth_cache = &h->cache.iface;
}

/* Every entry expires; the counters restart. */
FH_FN void fh_cache_clear(struct fh *h)
{
    memset(h->cache.slot, 0, sizeof h->cache.slot);
    h->cache.lookups = h->cache.hits = 0;
    h->cache.stores = h->cache.forgets = 0;
}

FH_FN void fh_init(struct fh *h, const struct fh_row *script, size_t n)
{
    char err[256];

    memset(h, 0, sizeof *h);
    if (agenda_topology_parse(fh_topology, strlen(fh_topology), &h->topo,
                              err, sizeof err) != 0)
        fail_msg("topology: %s", err);
    h->jwt.alg = AGENDA_JWT_HS256;
    h->jwt.sign_key = fh_secret;
    h->jwt.sign_key_len = 32;
    h->jwt.verify_key = fh_secret;
    h->jwt.verify_key_len = 32;
    h->jwt.issuer = "agenda-test";
    h->jwt.audience = "agenda";
    h->jwt.ttl_s = 900;
    h->jwt.leeway_s = 30;
    h->env.topo = h->topo;
    h->env.events_tag = agenda_flow_events_tag(h->topo);
    h->env.jwt = &h->jwt;
    /* as in nginx: tokens are verified through a memo, so every flow test
     * also shows that it changes no answer */
    h->env.jwt_memo = agenda_jwt_memo_init(
        malloc(agenda_jwt_memo_bytes(8)), 8);
    if (h->env.jwt_memo == NULL)
        fail_msg("no memory for the token memo");
    h->env.now_s = FH_NOW;
    h->env.allowed_origin = "https://localhost:8443";
    h->script = script;
    h->n_script = n;
}

FH_FN void fh_reset(struct fh *h)
{
    for (size_t i = 0; i < h->n_calls; i++)
        json_decref(h->calls[i].req);
    h->n_calls = 0;
    json_decref(h->body);
    h->body = NULL;
    h->n_headers = h->n_notes = 0;
    h->n_hash = h->n_verify = 0;
}

FH_FN void fh_done(struct fh *h)
{
    fh_reset(h);
    agenda_topology_free(h->topo);
    free(h->env.jwt_memo); /* the memo is its own memory */
}

/* A bearer header for user with token version tv ("Bearer ..."). */
FH_FN const char *fh_bearer(struct fh *h, const char *user, uint64_t tv)
{
    static char buf[2][4200];
    static int k;
    char *tok = NULL, *b = buf[k++ % 2];

    if (agenda_jwt_issue(&h->jwt, user, "user", tv, FH_NOW - 10,
                         "0123456789abcdef0123456789abcdef", &tok) != 0)
        fail_msg("cannot issue a test token");
    snprintf(b, sizeof buf[0], "Bearer %s", tok);
    free(tok);
    return b;
}

static const struct fh_row *fh_find(struct fh *h, const char *op,
                                    const char *shard)
{
    for (size_t i = 0; i < h->n_script; i++)
        if (strcmp(h->script[i].op, op) == 0
            && (h->script[i].shard == NULL
                || strcmp(h->script[i].shard, shard) == 0))
            return &h->script[i];
    return NULL;
}

/* Run one request to its RESPOND; returns the status. */
FH_FN int fh_run(struct fh *h, const struct agenda_flow_request *req)
{
    struct agenda_flow *f;
    const struct agenda_flow_action *a;
    int steps = 0;

    fh_reset(h);
    f = agenda_flow_start(&h->env, req);
    assert_non_null(f);
    for (;;) {
        a = agenda_flow_next(f);
        assert_non_null(a);
        if (++steps > 50)
            fail_msg("the flow does not end");
        if (a->kind == AGENDA_FLOW_CALL) {
            assert_true(a->n_calls > 0);
            for (size_t i = 0; i < a->n_calls; i++) {
                const struct agenda_flow_call *c = &a->calls[i];
                struct fh_call *rec = &h->calls[h->n_calls++];
                const char *op;
                const struct fh_row *row;

                assert_true(h->n_calls <= FH_MAX_CALLS);
                snprintf(rec->shard, sizeof rec->shard, "%s", c->shard->name);
                rec->command = c->command;
                rec->stale = c->stale;
                snprintf(rec->key, sizeof rec->key, "%s",
                         c->idempotency_key ? c->idempotency_key : "");
                /* a replica's GET /status is scripted as op "status" */
                if (c->status_of != NULL)
                    rec->req = json_pack("{s:s, s:i}", "op", "status",
                                         "replica", (int)c->status_of->id);
                else
                    rec->req = json_loadb(c->body, c->body_len, 0, NULL);
                assert_non_null(rec->req);
                op = json_string_value(json_object_get(rec->req, "op"));
                assert_non_null(op);
                row = fh_find(h, op, rec->shard);
                if (row == NULL)
                    fail_msg("no scripted answer for %s on %s", op,
                             rec->shard);
                agenda_flow_call_done(f, i, row->status, row->body,
                                      row->body ? strlen(row->body) : 0);
            }
        } else if (a->kind == AGENDA_FLOW_HASH) {
            h->n_hash++;
            agenda_flow_hash_done(f, FH_HASH);
        } else if (a->kind == AGENDA_FLOW_VERIFY) {
            h->n_verify++;
            agenda_flow_verify_done(
                f, strncmp(a->phc, FH_HASH, 40) == 0
                   && a->password_len == strlen(FH_PASSWORD)
                   && memcmp(a->password, FH_PASSWORD,
                             a->password_len) == 0);
        } else {
            assert_int_equal(a->kind, AGENDA_FLOW_RESPOND);
            h->status = a->status;
            assert_non_null(a->body);
            snprintf(h->raw, sizeof h->raw, "%.*s", (int)a->body_len,
                     a->body);
            h->body = json_loadb(a->body, a->body_len, 0, NULL);
            if (!json_is_object(h->body))
                fail_msg("answer is not a JSON object: %.*s",
                         (int)a->body_len, a->body);
            for (size_t i = 0; i < a->n_headers && i < 8; i++) {
                snprintf(h->headers[i][0], 160, "%s", a->headers[i].name);
                snprintf(h->headers[i][1], 160, "%s", a->headers[i].value);
                h->n_headers++;
            }
            for (size_t i = 0; i < a->n_notifications && i < 16; i++) {
                snprintf(h->notes[i][0], 512, "%s",
                         a->notifications[i].channel);
                if (a->notifications[i].close)
                    assert_null(a->notifications[i].message);
                snprintf(h->notes[i][1], 512, "%s",
                         a->notifications[i].close
                             ? FH_CLOSE
                             : a->notifications[i].message);
                h->n_notes++;
            }
            /* RESPOND is final and stable */
            assert_ptr_equal(agenda_flow_next(f), a);
            break;
        }
    }
    agenda_flow_free(f);
    return h->status;
}

/* The answer's error code ("" when there is none). */
FH_FN const char *fh_code(const struct fh *h)
{
    const char *c = json_string_value(json_object_get(
        json_object_get(h->body, "error"), "code"));
    return c != NULL ? c : "";
}

FH_FN const char *fh_header(const struct fh *h, const char *name)
{
    for (size_t i = 0; i < h->n_headers; i++)
        if (strcasecmp(h->headers[i][0], name) == 0)
            return h->headers[i][1];
    return NULL;
}

/* The op of call i, and a string of its args or actor. */
FH_FN const char *fh_op(const struct fh *h, size_t i)
{
    return json_string_value(json_object_get(h->calls[i].req, "op"));
}

/* Arg name of call i, or NULL. */
FH_FN json_t *fh_arg_json(const struct fh *h, size_t i, const char *name)
{
    return json_object_get(json_object_get(h->calls[i].req, "args"), name);
}

FH_FN const char *fh_arg(const struct fh *h, size_t i, const char *name)
{
    return json_string_value(fh_arg_json(h, i, name));
}

FH_FN const char *fh_actor(const struct fh *h, size_t i, const char *name)
{
    return json_string_value(json_object_get(
        json_object_get(h->calls[i].req, "actor"), name));
}

/* Whether channel's subscribers are disconnected, after every message
 * before that in the list (the messages to it after are counted). */
FH_FN bool fh_closed(const struct fh *h, const char *channel,
                     size_t *messages_after)
{
    bool closed = false;

    *messages_after = 0;
    for (size_t i = 0; i < h->n_notes; i++) {
        if (strcmp(h->notes[i][0], channel) != 0)
            continue;
        if (strcmp(h->notes[i][1], FH_CLOSE) == 0)
            closed = true;
        else if (closed)
            (*messages_after)++;
    }
    return closed;
}

/* Whether a notification went to channel with "type": type. */
FH_FN bool fh_notified(const struct fh *h, const char *channel,
                       const char *type)
{
    char want[80];

    snprintf(want, sizeof want, "\"type\":\"%s\"", type);
    for (size_t i = 0; i < h->n_notes; i++)
        if (strcmp(h->notes[i][0], channel) == 0
            && strstr(h->notes[i][1], want) != NULL)
            return true;
    return false;
}

/* ---- table rows ---------------------------------------------------------- */

#define FH_ALICE "alice" /* auth: a valid token of alice (version 1) */
#define FH_JSON "application/json"

struct fh_case {
    const char *name;
    const char *method, *path, *query;
    const char *auth;     /* NULL, FH_ALICE, or a literal header */
    const char *if_match;
    const char *ctype;
    const char *body;
    const struct fh_row *script;
    size_t n_script;
    int status;
    const char *code;     /* expected error code, or NULL for success */
    long n_calls;         /* expected shard calls, -1: any */
    const char *last_op;  /* the op of the last call, or NULL */
};

#define FH_SCRIPT(s) s, sizeof(s) / sizeof((s)[0])

FH_FN void fh_case_run(const struct fh_case *c)
{
    struct fh h;
    struct agenda_flow_request r = {0};
    int st;

    fh_init(&h, c->script, c->n_script);
    r.method = c->method;
    r.path = c->path;
    r.query = c->query;
    if (c->auth != NULL && strcmp(c->auth, FH_ALICE) == 0)
        r.authorization = fh_bearer(&h, "alice", 1);
    else
        r.authorization = c->auth;
    r.if_match = c->if_match;
    r.content_type = c->ctype;
    r.body = (const uint8_t *)c->body;
    r.body_len = c->body != NULL ? strlen(c->body) : 0;
    r.client_addr = "192.0.2.7";
    st = fh_run(&h, &r);
    if (st != c->status)
        fail_msg("%s: status %d, want %d (%s)", c->name, st, c->status,
                 fh_code(&h));
    if (c->code != NULL && strcmp(fh_code(&h), c->code) != 0)
        fail_msg("%s: code '%s', want '%s'", c->name, fh_code(&h), c->code);
    if (c->code == NULL && fh_code(&h)[0] != '\0')
        fail_msg("%s: unexpected error '%s'", c->name, fh_code(&h));
    if (c->n_calls >= 0 && (long)h.n_calls != c->n_calls)
        fail_msg("%s: %zu shard calls, want %ld", c->name, h.n_calls,
                 c->n_calls);
    if (c->last_op != NULL
        && (h.n_calls == 0
            || strcmp(fh_op(&h, h.n_calls - 1), c->last_op) != 0))
        fail_msg("%s: last op %s, want %s", c->name,
                 h.n_calls ? fh_op(&h, h.n_calls - 1) : "(none)",
                 c->last_op);
    if (st == 401 && fh_header(&h, "WWW-Authenticate") == NULL)
        fail_msg("%s: 401 without WWW-Authenticate", c->name);
    if (st == 503 && fh_header(&h, "Retry-After") == NULL)
        fail_msg("%s: 503 without Retry-After", c->name);
    fh_done(&h);
}

FH_FN void fh_cases_run(const struct fh_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fh_case_run(&cases[i]);
}

#endif /* FLOW_HARNESS_H */

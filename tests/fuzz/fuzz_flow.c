/*
 * fuzz_flow.c — libFuzzer target for the REST flows (agenda_flow.h):
 * an arbitrary request, then arbitrary answers to every action, must
 * never crash, leak or hang, and every answer must be a JSON object with
 * a sane status ({"error": {...}} for 4xx/5xx).
 *
 * Input layout: "METHOD\nPATH\nQUERY\nAUTH\nIF-MATCH\nCONTENT-TYPE\n"
 * then the body up to a 0xff byte, then the script of answers.  AUTH "@"
 * stands for a valid token of alice (so that the flows get past the
 * token check), "@admin" for an admin's, "@c" alice's with her entry
 * (user, version 1) already in the auth cache.  Every input runs with a
 * fresh in-memory auth cache, which checks what the flows store in it.
 * Each shard answer takes a
 * selector byte (a status and, for successes, one of the canned bodies
 * below or fuzz bytes) and, for raw bodies, a length byte and the bytes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "agenda_flow.h"
#include "command.h"
#include "topology.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,          \
                    __LINE__, #cond);                                       \
            abort();                                                        \
        }                                                                   \
    } while (0)

static const char topology[] =
    "{\"version\":1,\"servers\":[{\"name\":\"s\",\"host\":\"127.0.0.1\"}],"
    "\"shards\":["
    "{\"name\":\"events_am\",\"kind\":\"events\",\"range\":{\"from\":\"\","
    "\"to\":\"n\"},\"replicas\":[{\"id\":1,\"name\":\"a\",\"server\":\"s\","
    "\"http_port\":7100,\"raft_port\":7200}]},"
    "{\"name\":\"events_nz\",\"kind\":\"events\",\"range\":{\"from\":\"n\","
    "\"to\":\"\"},\"replicas\":[{\"id\":1,\"name\":\"b\",\"server\":\"s\","
    "\"http_port\":7110,\"raft_port\":7210}]},"
    "{\"name\":\"groups\",\"kind\":\"groups\",\"replicas\":[{\"id\":1,"
    "\"name\":\"g\",\"server\":\"s\",\"http_port\":7120,"
    "\"raft_port\":7220}]},"
    "{\"name\":\"users\",\"kind\":\"users\",\"replicas\":[{\"id\":1,"
    "\"name\":\"u\",\"server\":\"s\",\"http_port\":7130,"
    "\"raft_port\":7230}]}]}";

#define HASH                                                               \
    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$"               \
    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"

/* Successful answers that lead the flows further than random bytes. */
static const char *const canned[] = {
    "{\"user\":{\"username\":\"alice\",\"password_hash\":\"" HASH "\","
    "\"role\":\"user\",\"token_version\":1}}",
    "{\"user\":{\"username\":\"alice\",\"password_hash\":\"" HASH "\","
    "\"role\":\"admin\",\"token_version\":1}}",
    "{\"event\":{\"calendar\":\"alice\",\"id\":\"0123\",\"version\":2,"
    "\"participants\":{\"bob\":\"accepted\",\"zed\":1}},\"sync_token\":3}",
    "{\"from\":\"2026-12-01T00:00:00Z\",\"to\":\"2026-12-02T00:00:00Z\","
    "\"events\":[{\"calendar\":\"a\",\"id\":\"1\",\"start\":"
    "\"2026-12-01\"},{\"calendar\":\"a\",\"id\":\"1\",\"start\":"
    "\"2026-12-01T01:00:00Z\"},7],\"next_cursor\":\"ab\"}",
    "{\"busy\":[{\"start\":\"2026-12-01T00:00:00Z\",\"end\":"
    "\"2026-12-01T01:00:00Z\"},{\"start\":\"x\"}]}",
    "{\"group\":{\"id\":\"52af714bf64d0525\",\"version\":1,\"members\":["
    "{\"user\":\"alice\",\"role\":\"leader\"},{\"user\":7}]}}",
    "{\"changes\":[{\"seq\":1,\"time\":\"2026-12-01T00:00:00Z\"},3],"
    "\"records\":[{\"seq\":2}],\"more\":true,\"sync_token\":9,"
    "\"next_after\":4}",
    "{\"sync_token\":5}",
    "{\"error\":{\"code\":\"double_booked\",\"message\":\"m\","
    "\"conflicts\":[]}}",
    "{}",
};

static const int statuses[] = {0, 200, 201, 400, 401, 403, 404, 409, 410,
                               412, 421, 500, 503, 507, 302, 999};

static struct agenda_topology *topo;
static struct agenda_jwt_config jwt = {
    .alg = AGENDA_JWT_HS256,
    .sign_key = (const unsigned char *)"fuzz-secret-fuzz-secret-fuzz-sec",
    .sign_key_len = 32,
    .verify_key = (const unsigned char *)"fuzz-secret-fuzz-secret-fuzz-sec",
    .verify_key_len = 32,
    .issuer = "fuzz",
    .audience = "agenda",
    .ttl_s = 900,
    .leeway_s = 30,
};
static char *token_user, *token_admin;

#define NOW 1795000000

static void setup(void)
{
    char err[200], *t;

    if (topo != NULL)
        return;
    CHECK(agenda_topology_parse(topology, strlen(topology), &topo, err,
                                sizeof err) == 0);
    CHECK(agenda_jwt_issue(&jwt, "alice", "user", 1, NOW,
                           "fuzzfuzzfuzzfuzzfuzz", &t) == 0);
    token_user = malloc(strlen(t) + 8);
    CHECK(token_user != NULL);
    sprintf(token_user, "Bearer %s", t);
    free(t);
    CHECK(agenda_jwt_issue(&jwt, "alice", "admin", 1, NOW,
                           "fuzzfuzzfuzzfuzzfuzz", &t) == 0);
    token_admin = malloc(strlen(t) + 8);
    CHECK(token_admin != NULL);
    sprintf(token_admin, "Bearer %s", t);
    free(t);
}

/* The auth cache of one input: one entry is all a flow touches. */
static struct {
    bool used;
    char user[64];
    struct agenda_auth_entry e;
} cached;

static int cache_lookup(void *data, const char *user,
                        struct agenda_auth_entry *out)
{
    (void)data;
    if (!cached.used || strcmp(user, cached.user) != 0)
        return 0;
    *out = cached.e;
    return 1;
}

static void cache_store(void *data, const char *user,
                        const struct agenda_auth_entry *e)
{
    (void)data;
    CHECK(user[0] != '\0' && strlen(user) < sizeof cached.user);
    CHECK(strcmp(e->role, "user") == 0 || strcmp(e->role, "admin") == 0);
    cached.used = true;
    strcpy(cached.user, user);
    cached.e = *e;
}

static void cache_forget(void *data, const char *user)
{
    (void)data;
    CHECK(user[0] != '\0');
    if (cached.used && strcmp(user, cached.user) == 0)
        cached.used = false;
}

static const struct agenda_auth_cache cache = {
    NULL, cache_lookup, cache_store, cache_forget,
};

/* The next '\n'-terminated field as a NUL-terminated copy (or NULL). */
static char *field(const uint8_t **p, const uint8_t *end)
{
    const uint8_t *nl = memchr(*p, '\n', (size_t)(end - *p));
    size_t n;
    char *s;

    if (nl == NULL)
        nl = end;
    n = (size_t)(nl - *p);
    s = malloc(n + 1);
    CHECK(s != NULL);
    memcpy(s, *p, n);
    s[n] = '\0';
    *p = nl < end ? nl + 1 : end;
    return s;
}

static void check_answer(const struct agenda_flow_action *a)
{
    json_t *j;

    CHECK(a->status >= 200 && a->status <= 599);
    CHECK(a->body != NULL && a->body_len == strlen(a->body));
    j = json_loadb(a->body, a->body_len, 0, NULL);
    CHECK(json_is_object(j));
    if (a->status >= 400)
        CHECK(json_is_string(json_object_get(json_object_get(j, "error"),
                                             "code")));
    json_decref(j);
    for (size_t i = 0; i < a->n_headers; i++)
        CHECK(a->headers[i].name != NULL && a->headers[i].value != NULL);
    for (size_t i = 0; i < a->n_notifications; i++) {
        CHECK(a->notifications[i].channel != NULL);
        if (a->notifications[i].close) { /* the channel is deleted */
            CHECK(a->notifications[i].message == NULL);
            continue;
        }
        j = json_loads(a->notifications[i].message, 0, NULL);
        CHECK(json_is_object(j));
        json_decref(j);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *p = data, *end = data + size, *body, *script;
    char *method, *path, *query, *auth, *im, *ct;
    struct agenda_flow_env env = {0};
    struct agenda_flow_request req = {0};
    struct agenda_flow *f;
    int steps = 0;

    setup();
    method = field(&p, end);
    path = field(&p, end);
    query = field(&p, end);
    auth = field(&p, end);
    im = field(&p, end);
    ct = field(&p, end);
    body = p;
    script = memchr(p, 0xff, (size_t)(end - p));
    if (script == NULL)
        script = end;
    req.method = method;
    req.path = path;
    req.query = query[0] != '\0' ? query : NULL;
    memset(&cached, 0, sizeof cached);
    if (strcmp(auth, "@c") == 0) {
        cached.used = true;
        strcpy(cached.user, "alice");
        strcpy(cached.e.role, "user");
        cached.e.token_version = 1;
    }
    req.authorization = strcmp(auth, "@") == 0 || strcmp(auth, "@c") == 0
                        ? token_user
                        : strcmp(auth, "@admin") == 0 ? token_admin
                        : auth[0] != '\0' ? auth : NULL;
    req.if_match = im[0] != '\0' ? im : NULL;
    req.content_type = ct[0] != '\0' ? ct : NULL;
    req.body = body;
    req.body_len = (size_t)(script - body);
    req.client_addr = "198.51.100.1";
    /* none, and client keys of several lengths up to the longest */
    static const char *const keys[4] = {
        NULL, "fuzz-key", "k123456789k123456789k1",
        "k123456789k123456789k123456789k123456789k123456789k123456789kkkk"};
    req.idempotency_key = keys[req.body_len % 4];
    p = script < end ? script + 1 : end;

    env.topo = topo;
    env.events_tag = agenda_flow_events_tag(topo);
    env.jwt = &jwt;
    env.now_s = NOW;
    env.allowed_origin = "https://localhost:8443";
    env.auth_cache = &cache;
    f = agenda_flow_start(&env, &req);
    CHECK(f != NULL);
    for (;;) {
        const struct agenda_flow_action *a = agenda_flow_next(f);

        CHECK(a != NULL);
        if (a->kind == AGENDA_FLOW_RESPOND) {
            check_answer(a);
            CHECK(agenda_flow_next(f) == a);
            break;
        }
        CHECK(++steps < 64); /* every flow is a handful of actions */
        if (a->kind == AGENDA_FLOW_CALL) {
            CHECK(a->n_calls > 0 && a->calls != NULL);
            for (size_t i = 0; i < a->n_calls; i++) {
                const struct agenda_flow_call *c = &a->calls[i];
                unsigned sel = p < end ? *p++ : 1;
                int status = statuses[sel % 16];
                json_t *op = json_loadb(c->body, c->body_len, 0, NULL);

                /* a call is an operation, or a replica's GET /status */
                CHECK(c->shard != NULL);
                if (c->status_of != NULL)
                    CHECK(!c->command && c->status_of >= c->shard->replicas
                          && c->status_of < c->shard->replicas
                                            + c->shard->n_replicas);
                else
                    CHECK(json_is_object(op));
                CHECK(!c->command || c->idempotency_key != NULL);
                /* every key is one the shards accept as a request id */
                CHECK(!c->command
                      || agenda_request_id_valid(
                             c->idempotency_key,
                             strlen(c->idempotency_key)));
                json_decref(op);
                if ((sel >> 4) < 10) {
                    const char *b = canned[sel >> 4];

                    agenda_flow_call_done(f, i, status, b, strlen(b));
                } else {
                    size_t n = p < end ? *p++ : 0;

                    if (n > (size_t)(end - p))
                        n = (size_t)(end - p);
                    agenda_flow_call_done(f, i, status, (const char *)p, n);
                    p += n;
                }
            }
            /* out-of-range answers are ignored */
            agenda_flow_call_done(f, a->n_calls, 200, "{}", 2);
        } else if (a->kind == AGENDA_FLOW_HASH) {
            CHECK(a->password != NULL);
            agenda_flow_hash_done(f, p < end && (*p++ & 1) ? NULL : HASH);
        } else {
            CHECK(a->kind == AGENDA_FLOW_VERIFY);
            CHECK(a->password != NULL && a->phc != NULL);
            agenda_flow_verify_done(f, p < end ? (*p++ % 3) - 1 : 1);
        }
    }
    agenda_flow_free(f);
    free(method);
    free(path);
    free(query);
    free(auth);
    free(im);
    free(ct);
    return 0;
}

/*
 * test_flow_auth.c — the flows of accounts and authentication, and the
 * checks every request goes through (route, Origin, token, body, query),
 * driven with scripted shard answers (flow_harness.h).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "flow_harness.h"

static const struct fh_row s_none[] = {{"none", NULL, 0, NULL}};

static const struct fh_row s_alice[] = {
    FH_AUTH_ALICE,
    {"user.get", NULL, 200,
     "{\"user\":{\"username\":\"alice\",\"display_name\":\"Alice\","
     "\"email\":\"a@example.org\",\"role\":\"user\",\"token_version\":1}}"},
    {"user.update", NULL, 200,
     "{\"user\":{\"username\":\"alice\",\"display_name\":\"Al\"},"
     "\"sync_token\":5}"},
    {"user.list", NULL, 200, "{\"users\":[],\"more\":false}"},
    {"user.password", NULL, 200,
     "{\"user\":{\"username\":\"alice\",\"token_version\":2},"
     "\"sync_token\":6}"},
};

static const struct fh_row s_register[] = {
    {"user.register", "users", 201,
     "{\"sync_token\":1,\"user\":{\"username\":\"alice\",\"display_name\":"
     "\"Alice\",\"email\":\"a@example.org\",\"role\":\"user\","
     "\"token_version\":1}}"},
};

static const struct fh_row s_taken[] = {
    {"user.register", "users", 409,
     "{\"error\":{\"code\":\"username_taken\",\"message\":\"taken\"}}"},
};

static const struct fh_row s_down[] = {{"user.register", NULL, 0, NULL}};
static const struct fh_row s_auth_down[] = {{"user.auth", NULL, 0, NULL}};
static const struct fh_row s_revoked[] = {
    {"user.auth", NULL, 200,
     "{\"user\":{\"username\":\"alice\",\"password_hash\":\"" FH_HASH
     "\",\"role\":\"user\",\"token_version\":2}}"},
};
static const struct fh_row s_gone[] = {
    {"user.auth", NULL, 404,
     "{\"error\":{\"code\":\"not_found\",\"message\":\"no\"}}"},
};
static const struct fh_row s_wrong_shard[] = {
    FH_AUTH_ALICE,
    {"user.get", NULL, 421,
     "{\"error\":{\"code\":\"wrong_shard\",\"message\":\"no\"}}"},
};

#define REG "/auth/register"
#define GOOD_REG                                                           \
    "{\"username\":\"Alice\",\"password\":\"" FH_PASSWORD "\","           \
    "\"display_name\":\"Alice\",\"email\":\"a@example.org\"}"

static const struct fh_case register_cases[] = {
    {"register ok", "POST", REG, NULL, NULL, NULL, FH_JSON, GOOD_REG,
     FH_SCRIPT(s_register), 201, NULL, 1, "user.register"},
    {"register charset ok", "POST", REG, NULL, NULL, NULL,
     "application/json; charset=utf-8", GOOD_REG, FH_SCRIPT(s_register),
     201, NULL, 1, NULL},
    {"register taken", "POST", REG, NULL, NULL, NULL, FH_JSON, GOOD_REG,
     FH_SCRIPT(s_taken), 409, "username_taken", 1, NULL},
    {"register shard down", "POST", REG, NULL, NULL, NULL, FH_JSON,
     GOOD_REG, FH_SCRIPT(s_down), 503, "unavailable", 1, NULL},
    {"register unknown field", "POST", REG, NULL, NULL, NULL, FH_JSON,
     "{\"username\":\"alice\",\"password\":\"" FH_PASSWORD "\","
     "\"display_name\":\"A\",\"email\":\"a@example.org\",\"role\":"
     "\"admin\"}", FH_SCRIPT(s_none), 400, "unknown_field", 0, NULL},
    {"register missing field", "POST", REG, NULL, NULL, NULL, FH_JSON,
     "{\"username\":\"alice\",\"password\":\"" FH_PASSWORD "\"}",
     FH_SCRIPT(s_none), 400, "missing_field", 0, NULL},
    {"register wrong type", "POST", REG, NULL, NULL, NULL, FH_JSON,
     "{\"username\":7,\"password\":\"" FH_PASSWORD "\","
     "\"display_name\":\"A\",\"email\":\"a@example.org\"}",
     FH_SCRIPT(s_none), 400, "invalid_field", 0, NULL},
    {"register bad username", "POST", REG, NULL, NULL, NULL, FH_JSON,
     "{\"username\":\"a b\",\"password\":\"" FH_PASSWORD "\","
     "\"display_name\":\"A\",\"email\":\"a@example.org\"}",
     FH_SCRIPT(s_none), 400, "invalid_username", 0, NULL},
    {"register short password", "POST", REG, NULL, NULL, NULL, FH_JSON,
     "{\"username\":\"alice\",\"password\":\"short\","
     "\"display_name\":\"A\",\"email\":\"a@example.org\"}",
     FH_SCRIPT(s_none), 400, "invalid_password", 0, NULL},
    {"register bad email", "POST", REG, NULL, NULL, NULL, FH_JSON,
     "{\"username\":\"alice\",\"password\":\"" FH_PASSWORD "\","
     "\"display_name\":\"A\",\"email\":\"nope\"}",
     FH_SCRIPT(s_none), 400, "invalid_field", 0, NULL},
    {"register blank name", "POST", REG, NULL, NULL, NULL, FH_JSON,
     "{\"username\":\"alice\",\"password\":\"" FH_PASSWORD "\","
     "\"display_name\":\"  \",\"email\":\"a@example.org\"}",
     FH_SCRIPT(s_none), 400, "invalid_field", 0, NULL},
    /* a name of invisible characters, or one that reads as another's:
     * refused before anything is asked of the shard */
    {"register invisible name", "POST", REG, NULL, NULL, NULL, FH_JSON,
     "{\"username\":\"alice\",\"password\":\"" FH_PASSWORD "\","
     "\"display_name\":\"\u3164\",\"email\":\"a@example.org\"}",
     FH_SCRIPT(s_none), 400, "invalid_text", 0, NULL},
    {"register overridden name", "POST", REG, NULL, NULL, NULL, FH_JSON,
     "{\"username\":\"alice\",\"password\":\"" FH_PASSWORD "\","
     "\"display_name\":\"\u202enimda\",\"email\":\"a@example.org\"}",
     FH_SCRIPT(s_none), 400, "invalid_text", 0, NULL},
    {"register NUL in string", "POST", REG, NULL, NULL, NULL, FH_JSON,
     "{\"username\":\"al\\u0000ice\",\"password\":\"" FH_PASSWORD "\","
     "\"display_name\":\"A\",\"email\":\"a@example.org\"}",
     FH_SCRIPT(s_none), 400, "bad_json", 0, NULL},
    {"register bad utf-8", "POST", REG, NULL, NULL, NULL, FH_JSON,
     "{\"username\":\"alice\",\"password\":\"" FH_PASSWORD "\","
     "\"display_name\":\"\xc3\x28\",\"email\":\"a@example.org\"}",
     FH_SCRIPT(s_none), 400, "invalid_utf8", 0, NULL},
    {"register not json", "POST", REG, NULL, NULL, NULL, FH_JSON, "{",
     FH_SCRIPT(s_none), 400, "bad_json", 0, NULL},
    {"register array", "POST", REG, NULL, NULL, NULL, FH_JSON, "[]",
     FH_SCRIPT(s_none), 400, "bad_json", 0, NULL},
    {"register duplicate key", "POST", REG, NULL, NULL, NULL, FH_JSON,
     "{\"username\":\"a\",\"username\":\"b\"}", FH_SCRIPT(s_none), 400,
     "bad_json", 0, NULL},
    {"register empty body", "POST", REG, NULL, NULL, NULL, FH_JSON, NULL,
     FH_SCRIPT(s_none), 400, "bad_json", 0, NULL},
    {"register text/plain", "POST", REG, NULL, NULL, NULL, "text/plain",
     GOOD_REG, FH_SCRIPT(s_none), 415, "unsupported_media_type", 0, NULL},
    {"register no content type", "POST", REG, NULL, NULL, NULL, NULL,
     GOOD_REG, FH_SCRIPT(s_none), 415, "unsupported_media_type", 0, NULL},
    {"register latin1", "POST", REG, NULL, NULL, NULL,
     "application/json; charset=latin1", GOOD_REG, FH_SCRIPT(s_none), 415,
     "unsupported_media_type", 0, NULL},
    {"register query param", "POST", REG, "x=1", NULL, NULL, FH_JSON,
     GOOD_REG, FH_SCRIPT(s_none), 400, "unknown_parameter", 0, NULL},
};

static void test_register_table(void **state)
{
    (void)state;
    fh_cases_run(register_cases,
                 sizeof register_cases / sizeof register_cases[0]);
}

static void test_register_anonymous_hashed(void **state)
{
    static const char *body = GOOD_REG;
    struct fh h;
    struct agenda_flow_request r = {.method = "POST", .path = REG,
                                    .content_type = FH_JSON};

    (void)state;
    fh_init(&h, FH_SCRIPT(s_register));
    r.body = (const uint8_t *)body;
    r.body_len = strlen(body);
    assert_int_equal(fh_run(&h, &r), 201);
    assert_int_equal(h.n_hash, 1);
    assert_string_equal(fh_arg(&h, 0, "username"), "alice"); /* folded */
    assert_string_equal(fh_arg(&h, 0, "password_hash"), FH_HASH);
    assert_null(fh_arg(&h, 0, "password"));
    assert_string_equal(fh_actor(&h, 0, "user"), "");
    assert_string_equal(fh_actor(&h, 0, "role"), "user");
    assert_true(h.calls[0].command);
    assert_true(h.calls[0].key[0] != '\0');
    assert_null(json_object_get(json_object_get(h.body, "user"),
                                "token_version"));
    fh_done(&h);
}

static void test_oversize_body(void **state)
{
    struct fh h;
    size_t n = AGENDA_FLOW_BODY_MAX + 1;
    char *big = malloc(n);
    struct agenda_flow_request r = {.method = "POST", .path = REG,
                                    .content_type = FH_JSON};

    (void)state;
    assert_non_null(big);
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    fh_init(&h, FH_SCRIPT(s_none));
    r.body = (const uint8_t *)big;
    r.body_len = n;
    assert_int_equal(fh_run(&h, &r), 413);
    assert_string_equal(fh_code(&h), "too_large");
    fh_done(&h);
    free(big);
}

/* ---- login --------------------------------------------------------------- */

static const struct fh_row s_login[] = {
    FH_AUTH_ALICE,
    {"audit.record", "users", 200, "{\"seq\":9}"},
};
static const struct fh_row s_login_unknown[] = {
    {"user.auth", NULL, 404,
     "{\"error\":{\"code\":\"not_found\",\"message\":\"no\"}}"},
    {"audit.record", "users", 200, "{\"seq\":9}"},
};
static const struct fh_row s_login_audit_down[] = {
    FH_AUTH_ALICE,
    {"audit.record", "users", 0, NULL},
};

static int login(struct fh *h, const char *body)
{
    struct agenda_flow_request r = {.method = "POST", .path = "/auth/login",
                                    .content_type = FH_JSON,
                                    .client_addr = "192.0.2.7"};

    r.body = (const uint8_t *)body;
    r.body_len = strlen(body);
    return fh_run(h, &r);
}

static void test_login_ok_issues_valid_token(void **state)
{
    struct agenda_jwt_claims cl;
    const char *tok;
    struct fh h;

    (void)state;
    fh_init(&h, FH_SCRIPT(s_login));
    assert_int_equal(login(&h, "{\"username\":\"ALICE\",\"password\":\""
                               FH_PASSWORD "\"}"), 200);
    assert_int_equal(h.n_verify, 1);
    assert_string_equal(fh_op(&h, 0), "user.auth");
    assert_string_equal(fh_actor(&h, 0, "role"), "system");
    assert_false(h.calls[0].stale);
    assert_string_equal(fh_op(&h, 1), "audit.record");
    assert_string_equal(fh_arg(&h, 1, "action"), "login");
    assert_string_equal(fh_arg(&h, 1, "object"), "user:alice");
    assert_string_equal(fh_arg(&h, 1, "outcome"), "ok");
    assert_string_equal(json_string_value(json_object_get(h.body,
                                                          "token_type")),
                        "Bearer");
    assert_int_equal(json_integer_value(json_object_get(h.body,
                                                        "expires_in")),
                     900);
    assert_string_equal(fh_header(&h, "Cache-Control"), "no-store");
    tok = json_string_value(json_object_get(h.body, "access_token"));
    assert_non_null(tok);
    assert_int_equal(agenda_jwt_verify(&h.jwt, tok, strlen(tok), FH_NOW,
                                       &cl), AGENDA_JWT_OK);
    assert_string_equal(cl.sub, "alice");
    assert_string_equal(cl.role, "user");
    assert_int_equal(cl.token_version, 1);
    assert_int_equal(strlen(cl.jti), 32);
    fh_done(&h);
}

static void test_login_failures_look_alike(void **state)
{
    struct fh h;

    (void)state;
    /* wrong password */
    fh_init(&h, FH_SCRIPT(s_login));
    assert_int_equal(login(&h, "{\"username\":\"alice\",\"password\":"
                               "\"wrong-password\"}"), 401);
    assert_string_equal(fh_code(&h), "invalid_credentials");
    assert_int_equal(h.n_verify, 1);
    assert_string_equal(fh_arg(&h, 1, "outcome"), "failed:192.0.2.7");
    fh_done(&h);
    /* unknown user: the KDF still runs (against the dummy hash) */
    fh_init(&h, FH_SCRIPT(s_login_unknown));
    assert_int_equal(login(&h, "{\"username\":\"mallory\",\"password\":\""
                               FH_PASSWORD "\"}"), 401);
    assert_string_equal(fh_code(&h), "invalid_credentials");
    assert_int_equal(h.n_verify, 1);
    assert_string_equal(fh_arg(&h, 1, "object"), "user:mallory");
    fh_done(&h);
    /* a name no account can have: no lookup, same answer, still a KDF */
    fh_init(&h, FH_SCRIPT(s_login_unknown));
    assert_int_equal(login(&h, "{\"username\":\"\\u00e9\\n\",\"password\":"
                               "\"x\"}"), 401);
    assert_int_equal(h.n_verify, 1);
    assert_int_equal(h.n_calls, 1);
    assert_string_equal(fh_op(&h, 0), "audit.record");
    assert_string_equal(fh_arg(&h, 0, "object"), "user:???");
    fh_done(&h);
    /* no unaudited success */
    fh_init(&h, FH_SCRIPT(s_login_audit_down));
    assert_int_equal(login(&h, "{\"username\":\"alice\",\"password\":\""
                               FH_PASSWORD "\"}"), 503);
    fh_done(&h);
}

/* ---- bearer tokens ------------------------------------------------------- */

/* base64url without padding */
static void b64url(const char *in, char *out)
{
    static const char t[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t n = strlen(in), o = 0;

    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned char)in[i] << 16;

        if (i + 1 < n)
            v |= (unsigned char)in[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char)in[i + 2];
        out[o++] = t[(v >> 18) & 63];
        out[o++] = t[(v >> 12) & 63];
        if (i + 1 < n)
            out[o++] = t[(v >> 6) & 63];
        if (i + 2 < n)
            out[o++] = t[v & 63];
    }
    out[o] = '\0';
}

static int get_me(struct fh *h, const char *authorization)
{
    struct agenda_flow_request r = {.method = "GET", .path = "/me",
                                    .authorization = authorization};

    return fh_run(h, &r);
}

static void test_bad_tokens_are_401(void **state)
{
    struct agenda_jwt_config other;
    char *tok = NULL, hdr[4200], none[600], p[400], h64[100];
    struct fh h;
    const char *dot;

    (void)state;
    fh_init(&h, FH_SCRIPT(s_alice));
    assert_int_equal(get_me(&h, NULL), 401);
    assert_string_equal(fh_code(&h), "unauthenticated");
    assert_non_null(strstr(fh_header(&h, "WWW-Authenticate"),
                           "error=\"invalid_token\""));
    assert_int_equal(h.n_calls, 0);
    assert_int_equal(get_me(&h, "Basic YWxpY2U6cHc="), 401);
    assert_int_equal(get_me(&h, "Bearer "), 401);
    assert_int_equal(get_me(&h, "Bearer a.b.c"), 401);
    assert_string_equal(fh_code(&h), "invalid_token");
    /* expired */
    assert_int_equal(agenda_jwt_issue(&h.jwt, "alice", "user", 1,
                                      FH_NOW - 5000,
                                      "0123456789abcdef0123456789abcdef",
                                      &tok), 0);
    snprintf(hdr, sizeof hdr, "Bearer %s", tok);
    assert_int_equal(get_me(&h, hdr), 401);
    assert_int_equal(h.n_calls, 0);
    /* alg none with the payload of a valid token */
    free(tok);
    assert_int_equal(agenda_jwt_issue(&h.jwt, "alice", "user", 1, FH_NOW,
                                      "0123456789abcdef0123456789abcdef",
                                      &tok), 0);
    dot = strchr(tok, '.');
    snprintf(p, sizeof p, "%.*s", (int)(strchr(dot + 1, '.') - dot - 1),
             dot + 1);
    b64url("{\"alg\":\"none\",\"typ\":\"JWT\"}", h64);
    snprintf(none, sizeof none, "Bearer %s.%s.", h64, p);
    assert_int_equal(get_me(&h, none), 401);
    /* tampered signature */
    snprintf(hdr, sizeof hdr, "Bearer %s", tok);
    hdr[strlen(hdr) - 2] = hdr[strlen(hdr) - 2] == 'A' ? 'B' : 'A';
    assert_int_equal(get_me(&h, hdr), 401);
    free(tok);
    /* signed with another secret */
    other = h.jwt;
    other.sign_key = (const unsigned char *)"another-secret-another-secret-xx";
    other.verify_key = other.sign_key;
    assert_int_equal(agenda_jwt_issue(&other, "alice", "user", 1, FH_NOW,
                                      "0123456789abcdef0123456789abcdef",
                                      &tok), 0);
    snprintf(hdr, sizeof hdr, "Bearer %s", tok);
    assert_int_equal(get_me(&h, hdr), 401);
    assert_int_equal(h.n_calls, 0);
    free(tok);
    fh_done(&h);
}

static void test_token_version_revokes(void **state)
{
    struct fh h;

    (void)state;
    fh_init(&h, FH_SCRIPT(s_revoked));
    assert_int_equal(get_me(&h, fh_bearer(&h, "alice", 1)), 401);
    assert_string_equal(fh_code(&h), "invalid_token");
    assert_int_equal(h.n_calls, 1);
    assert_string_equal(fh_op(&h, 0), "user.auth");
    assert_string_equal(fh_arg(&h, 0, "username"), "alice");
    fh_done(&h);
    fh_init(&h, FH_SCRIPT(s_gone));
    assert_int_equal(get_me(&h, fh_bearer(&h, "alice", 1)), 401);
    fh_done(&h);
    fh_init(&h, FH_SCRIPT(s_auth_down));
    assert_int_equal(get_me(&h, fh_bearer(&h, "alice", 1)), 503);
    fh_done(&h);
}

/* ---- /me, /users, common checks ------------------------------------------ */

static const struct fh_case me_cases[] = {
    {"me", "GET", "/me", NULL, FH_ALICE, NULL, NULL, NULL,
     FH_SCRIPT(s_alice), 200, NULL, 2, "user.get"},
    {"me stale", "GET", "/me", "consistency=stale", FH_ALICE, NULL, NULL,
     NULL, FH_SCRIPT(s_alice), 200, NULL, 2, "user.get"},
    {"me bad consistency", "GET", "/me", "consistency=eventual", FH_ALICE,
     NULL, NULL, NULL, FH_SCRIPT(s_alice), 400, "bad_consistency", 0, NULL},
    {"me patch", "PATCH", "/me", NULL, FH_ALICE, NULL, FH_JSON,
     "{\"display_name\":\"Al\"}", FH_SCRIPT(s_alice), 200, NULL, 2,
     "user.update"},
    {"me patch unknown", "PATCH", "/me", NULL, FH_ALICE, NULL, FH_JSON,
     "{\"role\":\"admin\"}", FH_SCRIPT(s_alice), 400, "unknown_field", 0,
     NULL},
    {"me patch unauthenticated first", "PATCH", "/me", NULL, NULL, NULL,
     FH_JSON, "{\"role\":\"admin\"}", FH_SCRIPT(s_alice), 401,
     "unauthenticated", 0, NULL},
    {"users", "GET", "/users", "prefix=al&limit=5", FH_ALICE, NULL, NULL,
     NULL, FH_SCRIPT(s_alice), 200, NULL, 2, "user.list"},
    {"users no prefix", "GET", "/users", NULL, FH_ALICE, NULL, NULL, NULL,
     FH_SCRIPT(s_alice), 400, "missing_parameter", 1, NULL},
    {"users bad limit", "GET", "/users", "prefix=a&limit=x", FH_ALICE, NULL,
     NULL, NULL, FH_SCRIPT(s_alice), 400, "invalid_parameter", 1, NULL},
    {"users dup param", "GET", "/users", "prefix=a&prefix=b", FH_ALICE,
     NULL, NULL, NULL, FH_SCRIPT(s_alice), 400, "bad_query", 0, NULL},
    {"users bad escape", "GET", "/users", "prefix=%zz", FH_ALICE, NULL,
     NULL, NULL, FH_SCRIPT(s_alice), 400, "bad_query", 0, NULL},
    {"users encoded NUL", "GET", "/users", "prefix=a%00", FH_ALICE, NULL,
     NULL, NULL, FH_SCRIPT(s_alice), 400, "bad_query", 0, NULL},
    {"unknown route", "GET", "/nope", NULL, FH_ALICE, NULL, NULL, NULL,
     FH_SCRIPT(s_alice), 404, "not_found", 0, NULL},
    {"trailing slash", "GET", "/me/", NULL, FH_ALICE, NULL, NULL, NULL,
     FH_SCRIPT(s_alice), 404, "not_found", 0, NULL},
    {"root", "GET", "/", NULL, NULL, NULL, NULL, NULL, FH_SCRIPT(s_alice),
     404, "not_found", 0, NULL},
    {"wrong method", "DELETE", "/me", NULL, FH_ALICE, NULL, NULL, NULL,
     FH_SCRIPT(s_alice), 405, "method_not_allowed", 0, NULL},
    {"shard says wrong_shard", "GET", "/me", NULL, FH_ALICE, NULL, NULL,
     NULL, FH_SCRIPT(s_wrong_shard), 500, "internal", 2, NULL},
    {"health", "GET", "/health", NULL, NULL, NULL, NULL, NULL,
     FH_SCRIPT(s_none), 200, NULL, 0, NULL},
};

static void test_me_table(void **state)
{
    (void)state;
    fh_cases_run(me_cases, sizeof me_cases / sizeof me_cases[0]);
}

static void test_common_headers(void **state)
{
    struct fh h;
    struct agenda_flow_request r = {.method = "GET", .path = "/me"};

    (void)state;
    fh_init(&h, FH_SCRIPT(s_alice));
    r.authorization = fh_bearer(&h, "alice", 1);
    r.origin = "https://evil.example";
    assert_int_equal(fh_run(&h, &r), 403);
    assert_string_equal(fh_code(&h), "forbidden_origin");
    r.origin = "https://localhost:8443";
    assert_int_equal(fh_run(&h, &r), 200);
    r.method = "DELETE";
    assert_int_equal(fh_run(&h, &r), 405);
    assert_non_null(strstr(fh_header(&h, "Allow"), "GET"));
    assert_non_null(strstr(fh_header(&h, "Allow"), "PATCH"));
    r.method = "GET";
    r.query = "consistency=stale";
    assert_int_equal(fh_run(&h, &r), 200);
    assert_false(h.calls[0].stale); /* authentication reads fresh data */
    assert_true(h.calls[1].stale);
    fh_done(&h);
}

static void test_idempotency_keys(void **state)
{
    struct fh h;
    struct agenda_flow_request r = {.method = "PATCH", .path = "/me",
                                    .content_type = FH_JSON,
                                    .idempotency_key = "client-key-1"};
    const char *body = "{\"display_name\":\"Al\"}";
    char k1[80];

    (void)state;
    fh_init(&h, FH_SCRIPT(s_alice));
    r.authorization = fh_bearer(&h, "alice", 1);
    r.body = (const uint8_t *)body;
    r.body_len = strlen(body);
    assert_int_equal(fh_run(&h, &r), 200);
    assert_true(h.calls[1].command);
    strcpy(k1, h.calls[1].key);
    assert_true(strlen(k1) >= 1 && strlen(k1) <= 64);
    /* 'k' and 160 bits of the hash: the client's key itself never
     * reaches the shards (nor their audit log) */
    assert_int_equal(k1[0], 'k');
    assert_int_equal(strlen(k1), 1 + 40);
    assert_int_equal(strspn(k1 + 1, "0123456789abcdef"), 40);
    assert_null(strstr(k1, "client"));
    /* the same request again: the same key (the shard replays it) */
    assert_int_equal(fh_run(&h, &r), 200);
    assert_string_equal(h.calls[1].key, k1);
    /* another body with the same client key: another key */
    body = "{\"display_name\":\"Bo\"}";
    r.body = (const uint8_t *)body;
    r.body_len = strlen(body);
    assert_int_equal(fh_run(&h, &r), 200);
    assert_string_not_equal(h.calls[1].key, k1);
    /* client keys that share a long prefix still give different keys,
     * of the same form */
    r.idempotency_key = "a123456789b123456789c1";
    assert_int_equal(fh_run(&h, &r), 200);
    assert_int_equal(strlen(h.calls[1].key), 41);
    strcpy(k1, h.calls[1].key);
    r.idempotency_key = "a123456789b123456789c1-and-more-of-a-long-key-x";
    assert_int_equal(fh_run(&h, &r), 200);
    assert_int_equal(strlen(h.calls[1].key), 41);
    assert_string_not_equal(h.calls[1].key, k1);
    assert_int_equal(strspn(h.calls[1].key + 1, "0123456789abcdef"), 40);
    /* a bad client key */
    r.idempotency_key = "bad key";
    assert_int_equal(fh_run(&h, &r), 400);
    assert_string_equal(fh_code(&h), "bad_idempotency_key");
    /* no client key: a fresh random one each time, named in the answer;
     * a retry with it (after an unknown outcome) derives the same key */
    char given[80];
    r.idempotency_key = NULL;
    assert_int_equal(fh_run(&h, &r), 200);
    strcpy(k1, h.calls[1].key);
    assert_non_null(fh_header(&h, "Idempotency-Key"));
    strcpy(given, fh_header(&h, "Idempotency-Key"));
    assert_int_equal(strlen(given), 32);
    assert_int_equal(strspn(given, "0123456789abcdef"), 32);
    assert_int_equal(fh_run(&h, &r), 200);
    assert_string_not_equal(h.calls[1].key, k1);
    assert_string_not_equal(fh_header(&h, "Idempotency-Key"), given);
    assert_int_equal(strlen(k1), 41);
    assert_int_equal(k1[0], 'k');
    assert_int_equal(strspn(k1 + 1, "0123456789abcdef"), 40);
    r.idempotency_key = given;
    assert_int_equal(fh_run(&h, &r), 200);
    assert_string_equal(h.calls[1].key, k1);
    /* a client's own key is not repeated back */
    assert_null(fh_header(&h, "Idempotency-Key"));
    /* keyed with the edge's signing key: the same request derives
     * another key under another one, so whoever reads the shards cannot
     * recompute a key from a guessed body (a login's password) */
    assert_int_equal(fh_run(&h, &r), 200);
    assert_string_equal(h.calls[1].key, k1);
    h.jwt.sign_key = (const unsigned char *)"another-secret-another-secret-xx";
    assert_int_equal(fh_run(&h, &r), 200);
    assert_int_equal(strlen(h.calls[1].key), 41);
    assert_string_not_equal(h.calls[1].key, k1);
    h.jwt.sign_key = fh_secret;
    fh_done(&h);
}

static void test_password_change(void **state)
{
    struct fh h;
    struct agenda_jwt_claims cl;
    struct agenda_flow_request r = {.method = "POST",
                                    .path = "/me/password",
                                    .content_type = FH_JSON};
    const char *bad = "{\"current_password\":\"not-it-at-all\","
                      "\"new_password\":\"another-long-one\"}";
    const char *good = "{\"current_password\":\"" FH_PASSWORD "\","
                       "\"new_password\":\"another-long-one\"}";
    const char *tok;

    (void)state;
    fh_init(&h, FH_SCRIPT(s_alice));
    r.authorization = fh_bearer(&h, "alice", 1);
    r.body = (const uint8_t *)bad;
    r.body_len = strlen(bad);
    assert_int_equal(fh_run(&h, &r), 403);
    assert_string_equal(fh_code(&h), "wrong_password");
    assert_int_equal(h.n_hash, 0);
    assert_int_equal(h.n_calls, 1);
    r.body = (const uint8_t *)good;
    r.body_len = strlen(good);
    assert_int_equal(fh_run(&h, &r), 200);
    assert_int_equal(h.n_verify, 1);
    assert_int_equal(h.n_hash, 1);
    assert_string_equal(fh_op(&h, 1), "user.password");
    assert_string_equal(fh_arg(&h, 1, "password_hash"), FH_HASH);
    /* at the version of the token it was asked with (users.c) */
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(h.calls[1].req, "args"),
                         "expected_token_version")),
                     1);
    /* a fresh token at the new version */
    tok = json_string_value(json_object_get(h.body, "access_token"));
    assert_non_null(tok);
    assert_int_equal(agenda_jwt_verify(&h.jwt, tok, strlen(tok), FH_NOW,
                                       &cl), 0);
    assert_int_equal(cl.token_version, 2);
    assert_true(fh_notified(&h, "user/alice", "user.password_changed"));
    /* subscriptions made with the revoked tokens are disconnected */
    size_t after;
    assert_true(fh_closed(&h, "user/alice", &after));
    assert_int_equal(after, 0);
    fh_done(&h);
}

/* ---- the auth cache (agenda_flow.h) -------------------------------------- */

static const char pw_change[] = "{\"current_password\":\"" FH_PASSWORD "\","
                                "\"new_password\":\"another-long-one\"}";

static int change_password(struct fh *h, const char *authorization)
{
    struct agenda_flow_request r = {.method = "POST",
                                    .path = "/me/password",
                                    .content_type = FH_JSON,
                                    .authorization = authorization};

    r.body = (const uint8_t *)pw_change;
    r.body_len = strlen(pw_change);
    return fh_run(h, &r);
}

static void test_cache_hit_skips_user_auth(void **state)
{
    struct fh h;

    (void)state;
    fh_init(&h, FH_SCRIPT(s_alice));
    fh_cache_on(&h);
    fh_cache_put(&h.cache, "alice", "user", 1);
    assert_int_equal(get_me(&h, fh_bearer(&h, "alice", 1)), 200);
    assert_int_equal(h.n_calls, 1);
    assert_string_equal(fh_op(&h, 0), "user.get");
    assert_int_equal(h.cache.hits, 1);
    assert_int_equal(h.cache.stores, 0);
    fh_done(&h);
}

static void test_cache_role_comes_from_the_entry(void **state)
{
    struct fh h;

    (void)state;
    fh_init(&h, FH_SCRIPT(s_alice));
    fh_cache_on(&h);
    fh_cache_put(&h.cache, "alice", "admin", 1);
    assert_int_equal(get_me(&h, fh_bearer(&h, "alice", 1)), 200);
    assert_int_equal(h.n_calls, 1);
    assert_string_equal(fh_actor(&h, 0, "user"), "alice");
    assert_string_equal(fh_actor(&h, 0, "role"), "admin");
    fh_done(&h);
}

static void test_cache_miss_asks_and_stores(void **state)
{
    const struct agenda_auth_entry *e;
    struct fh h;

    (void)state;
    fh_init(&h, FH_SCRIPT(s_alice));
    fh_cache_on(&h);
    assert_int_equal(get_me(&h, fh_bearer(&h, "alice", 1)), 200);
    assert_int_equal(h.n_calls, 2);
    assert_string_equal(fh_op(&h, 0), "user.auth");
    assert_false(h.calls[0].stale);
    assert_int_equal(h.cache.stores, 1);
    e = fh_cache_get(&h, "alice");
    assert_non_null(e);
    assert_string_equal(e->role, "user");
    assert_int_equal(e->token_version, 1);
    /* the next request is a hit */
    assert_int_equal(get_me(&h, fh_bearer(&h, "alice", 1)), 200);
    assert_int_equal(h.n_calls, 1);
    assert_string_equal(fh_op(&h, 0), "user.get");
    /* expired: asks again */
    fh_cache_clear(&h);
    assert_int_equal(get_me(&h, fh_bearer(&h, "alice", 1)), 200);
    assert_int_equal(h.n_calls, 2);
    assert_int_equal(h.cache.stores, 1);
    fh_done(&h);
}

static void test_cache_hit_with_an_older_token_is_401(void **state)
{
    struct fh h;

    (void)state;
    fh_init(&h, FH_SCRIPT(s_alice));
    fh_cache_on(&h);
    fh_cache_put(&h.cache, "alice", "user", 2);
    assert_int_equal(get_me(&h, fh_bearer(&h, "alice", 1)), 401);
    assert_string_equal(fh_code(&h), "invalid_token");
    assert_non_null(strstr(json_string_value(json_object_get(
                               json_object_get(h.body, "error"), "message")),
                           "revoked"));
    assert_non_null(fh_header(&h, "WWW-Authenticate"));
    assert_int_equal(h.n_calls, 0);
    fh_done(&h);
}

static const struct fh_row s_alice_v2[] = {
    {"user.auth", NULL, 200,
     "{\"user\":{\"username\":\"alice\",\"password_hash\":\"" FH_HASH
     "\",\"role\":\"user\",\"token_version\":2}}"},
    {"user.get", NULL, 200, "{\"user\":{\"username\":\"alice\"}}"},
};

static void test_cache_older_than_the_token_asks_the_shard(void **state)
{
    struct fh h;

    (void)state;
    /* the password changed through another edge, then a login there */
    fh_init(&h, FH_SCRIPT(s_alice_v2));
    fh_cache_on(&h);
    fh_cache_put(&h.cache, "alice", "user", 1);
    assert_int_equal(get_me(&h, fh_bearer(&h, "alice", 2)), 200);
    assert_int_equal(h.n_calls, 2);
    assert_string_equal(fh_op(&h, 0), "user.auth");
    assert_int_equal(fh_cache_get(&h, "alice")->token_version, 2);
    /* and from now on the old token is refused here too */
    assert_int_equal(get_me(&h, fh_bearer(&h, "alice", 1)), 401);
    assert_int_equal(h.n_calls, 0);
    fh_done(&h);
}

static void test_cache_a_password_change_revokes_at_once(void **state)
{
    const struct agenda_auth_entry *e;
    const char *tok;
    char fresh[4200];
    struct fh h;

    (void)state;
    fh_init(&h, FH_SCRIPT(s_alice));
    fh_cache_on(&h);
    assert_int_equal(get_me(&h, fh_bearer(&h, "alice", 1)), 200);
    assert_int_equal(fh_cache_get(&h, "alice")->token_version, 1);
    /* the hash is needed: asks user.auth although the entry is fresh */
    assert_int_equal(change_password(&h, fh_bearer(&h, "alice", 1)), 200);
    assert_string_equal(fh_op(&h, 0), "user.auth");
    assert_string_equal(fh_op(&h, 1), "user.password");
    e = fh_cache_get(&h, "alice");
    assert_non_null(e);
    assert_int_equal(e->token_version, 2);
    tok = json_string_value(json_object_get(h.body, "access_token"));
    assert_non_null(tok);
    snprintf(fresh, sizeof fresh, "Bearer %s", tok);
    /* the very next request with the old token: 401 without the shard */
    assert_int_equal(get_me(&h, fh_bearer(&h, "alice", 1)), 401);
    assert_string_equal(fh_code(&h), "invalid_token");
    assert_int_equal(h.n_calls, 0);
    /* the new token: a hit */
    assert_int_equal(get_me(&h, fresh), 200);
    assert_int_equal(h.n_calls, 1);
    fh_done(&h);
}

static const struct fh_row s_password_lost[] = {
    FH_AUTH_ALICE,
    {"user.password", NULL, 0, NULL},
};

static void test_cache_an_unknown_password_outcome_forgets(void **state)
{
    struct fh h;

    (void)state;
    fh_init(&h, FH_SCRIPT(s_password_lost));
    fh_cache_on(&h);
    fh_cache_put(&h.cache, "alice", "user", 1);
    assert_int_equal(change_password(&h, fh_bearer(&h, "alice", 1)), 503);
    assert_null(fh_cache_get(&h, "alice"));
    fh_done(&h);
}

/* An answer read before a password change, arriving after it, must not
 * bring the old version back. */
static void test_cache_a_late_answer_does_not_undo_a_change(void **state)
{
    const struct agenda_flow_action *a;
    struct agenda_flow_request r = {.method = "GET", .path = "/me"};
    struct agenda_flow *slow;
    struct fh h;
    const char *old_auth =
        "{\"user\":{\"username\":\"alice\",\"password_hash\":\"" FH_HASH
        "\",\"role\":\"user\",\"token_version\":1}}";

    (void)state;
    fh_init(&h, FH_SCRIPT(s_alice));
    fh_cache_on(&h);
    r.authorization = fh_bearer(&h, "alice", 1);
    slow = agenda_flow_start(&h.env, &r);
    assert_non_null(slow);
    a = agenda_flow_next(slow);
    assert_int_equal(a->kind, AGENDA_FLOW_CALL);
    assert_int_equal(a->n_calls, 1);
    assert_non_null(strstr(a->calls[0].body, "user.auth"));
    /* meanwhile, the password changes through this edge */
    assert_int_equal(change_password(&h, fh_bearer(&h, "alice", 1)), 200);
    assert_int_equal(fh_cache_get(&h, "alice")->token_version, 2);
    /* the slow request's user.auth answer (version 1) arrives */
    agenda_flow_call_done(slow, 0, 200, old_auth, strlen(old_auth));
    a = agenda_flow_next(slow);
    assert_int_equal(a->kind, AGENDA_FLOW_CALL); /* user.get */
    agenda_flow_free(slow);
    assert_int_equal(fh_cache_get(&h, "alice")->token_version, 2);
    assert_int_equal(get_me(&h, fh_bearer(&h, "alice", 1)), 401);
    assert_int_equal(h.n_calls, 0);
    fh_done(&h);
}

static void test_cache_never_holds_a_missing_account(void **state)
{
    struct fh h;

    (void)state;
    fh_init(&h, FH_SCRIPT(s_gone));
    fh_cache_on(&h);
    assert_int_equal(get_me(&h, fh_bearer(&h, "alice", 1)), 401);
    assert_int_equal(h.cache.stores, 0);
    assert_null(fh_cache_get(&h, "alice"));
    /* asked again: the 404 was not remembered as anything */
    assert_int_equal(get_me(&h, fh_bearer(&h, "alice", 1)), 401);
    assert_int_equal(h.n_calls, 1);
    assert_string_equal(fh_op(&h, 0), "user.auth");
    assert_int_equal(h.cache.stores, 0);
    fh_done(&h);
    /* nor when user.auth fails, nor a login of an unknown name */
    fh_init(&h, FH_SCRIPT(s_auth_down));
    fh_cache_on(&h);
    assert_int_equal(get_me(&h, fh_bearer(&h, "alice", 1)), 503);
    assert_int_equal(h.cache.stores, 0);
    fh_done(&h);
    fh_init(&h, FH_SCRIPT(s_login_unknown));
    fh_cache_on(&h);
    assert_int_equal(login(&h, "{\"username\":\"mallory\",\"password\":\""
                               FH_PASSWORD "\"}"), 401);
    assert_int_equal(h.cache.stores, 0);
    assert_null(fh_cache_get(&h, "mallory"));
    fh_done(&h);
}

static void test_cache_login_refreshes_the_entry(void **state)
{
    struct fh h;

    (void)state;
    fh_init(&h, FH_SCRIPT(s_login));
    fh_cache_on(&h);
    /* a failed login stores nothing (no cache filling by guessing) */
    assert_int_equal(login(&h, "{\"username\":\"alice\",\"password\":"
                               "\"wrong-password\"}"), 401);
    assert_int_equal(h.cache.stores, 0);
    /* a login still asks the shard (the hash) and refreshes the entry */
    fh_cache_put(&h.cache, "alice", "admin", 1);
    assert_int_equal(login(&h, "{\"username\":\"alice\",\"password\":\""
                               FH_PASSWORD "\"}"), 200);
    assert_string_equal(fh_op(&h, 0), "user.auth");
    assert_int_equal(h.cache.stores, 1);
    assert_string_equal(fh_cache_get(&h, "alice")->role, "user");
    fh_done(&h);
}

static void test_no_cache_asks_every_time(void **state)
{
    struct fh h;

    (void)state;
    fh_init(&h, FH_SCRIPT(s_alice));
    assert_null(h.env.auth_cache);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(get_me(&h, fh_bearer(&h, "alice", 1)), 200);
        assert_int_equal(h.n_calls, 2);
        assert_string_equal(fh_op(&h, 0), "user.auth");
    }
    assert_int_equal(change_password(&h, fh_bearer(&h, "alice", 1)), 200);
    assert_int_equal(h.cache.lookups + h.cache.stores + h.cache.forgets, 0);
    fh_done(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_register_table),
        cmocka_unit_test(test_register_anonymous_hashed),
        cmocka_unit_test(test_oversize_body),
        cmocka_unit_test(test_login_ok_issues_valid_token),
        cmocka_unit_test(test_login_failures_look_alike),
        cmocka_unit_test(test_bad_tokens_are_401),
        cmocka_unit_test(test_token_version_revokes),
        cmocka_unit_test(test_me_table),
        cmocka_unit_test(test_common_headers),
        cmocka_unit_test(test_idempotency_keys),
        cmocka_unit_test(test_password_change),
        cmocka_unit_test(test_cache_hit_skips_user_auth),
        cmocka_unit_test(test_cache_role_comes_from_the_entry),
        cmocka_unit_test(test_cache_miss_asks_and_stores),
        cmocka_unit_test(test_cache_hit_with_an_older_token_is_401),
        cmocka_unit_test(test_cache_older_than_the_token_asks_the_shard),
        cmocka_unit_test(test_cache_a_password_change_revokes_at_once),
        cmocka_unit_test(test_cache_an_unknown_password_outcome_forgets),
        cmocka_unit_test(test_cache_a_late_answer_does_not_undo_a_change),
        cmocka_unit_test(test_cache_never_holds_a_missing_account),
        cmocka_unit_test(test_cache_login_refreshes_the_entry),
        cmocka_unit_test(test_no_cache_asks_every_time),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

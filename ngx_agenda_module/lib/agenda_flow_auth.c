/*
 * agenda_flow_auth.c — accounts and authentication: bearer tokens on every
 * protected route, /auth/register, /auth/login, /me, /me/password, /users.
 *
 * Who the caller is (role, token version) comes from the executor's auth
 * cache when it has a fresh entry, else from user.auth on the users shard,
 * whose answer is then stored.  The flows here are the only writers of
 * what the cache holds: a login stores what it read, a password change the
 * new version as soon as the shard confirmed it (or forgets the entry when
 * the outcome is unknown), and user.auth's 404 forgets the account.  The
 * users shard has no operation that changes a role or deletes an account.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "agenda_flow_internal.h"
#include "agenda_password.h"
#include "route.h"
#include "validate.h"

/*
 * Verified against when the username does not exist, so that a failed
 * login costs the same KDF time whether or not the account exists.  Its
 * cost parameters are the defaults (agenda_password_cost_default); the
 * salt and hash are arbitrary, no password matches them.
 */
static const char dummy_phc[] =
    "$argon2id$v=19$m=19456,t=2,p=1$ZHVtbXlzYWx0ZHVtbXlzYQ$"
    "kNIUFyC4vW6ucxC6a6tZCBoQyhMJaU2y8Sb6VCmHg0E";

static const struct agenda_shard *users_shard(struct agenda_flow *f)
{
    return agenda_route_kind(f->env.topo, AGENDA_SHARD_USERS);
}

/* ---- bearer tokens ------------------------------------------------------- */

int flow_jwt_check(struct agenda_flow *f)
{
    const char *a = f->authorization, *tok;
    size_t len;
    int rc;

    if (a == NULL) {
        flow_unauthorized(f, "this route needs Authorization: Bearer "
                             "<access_token> (POST /auth/login)");
        return -1;
    }
    if (strncasecmp(a, "Bearer ", 7) != 0) {
        flow_unauthorized(f, "the Authorization scheme must be Bearer");
        return -1;
    }
    tok = a + 7;
    while (*tok == ' ')
        tok++;
    len = strlen(tok);
    while (len > 0 && tok[len - 1] == ' ')
        len--;
    if (len == 0 || len > AGENDA_JWT_MAX_TOKEN || f->env.jwt == NULL) {
        flow_unauthorized(f, "the access token is not valid");
        return -1;
    }
    rc = agenda_jwt_verify_memo(f->env.jwt, f->env.jwt_memo, tok, len,
                                f->env.now_s, &f->claims);
    if (rc == AGENDA_JWT_NOMEM) {
        f->oom = true;
        return -1;
    }
    if (rc != AGENDA_JWT_OK) {
        flow_unauthorized(f, rc == AGENDA_JWT_EXPIRED
                             ? "the access token has expired; log in again"
                             : "the access token is not valid");
        return -1;
    }
    f->claims.sub[sizeof f->claims.sub - 1] = '\0';
    if (agenda_username_fold(f->claims.sub, f->user) != 0) {
        flow_unauthorized(f, "the access token is not valid");
        return -1;
    }
    return 0;
}

/* ---- the auth cache (agenda_flow.h) ------------------------------------- */

/* Remembers the caller's role and token version as f holds them. */
static void cache_store(struct agenda_flow *f)
{
    const struct agenda_auth_cache *c = f->env.auth_cache;
    struct agenda_auth_entry e;

    if (c == NULL || f->user[0] == '\0')
        return;
    memset(&e, 0, sizeof e);
    strcpy(e.role, f->role);
    e.token_version = f->token_version;
    c->store(c->data, f->user, &e);
}

static void cache_forget(struct agenda_flow *f)
{
    const struct agenda_auth_cache *c = f->env.auth_cache;

    if (c != NULL && f->user[0] != '\0')
        c->forget(c->data, f->user);
}

/* A password change bumps the version: older tokens die with it.  False
 * when it responded 401. */
static bool token_current(struct agenda_flow *f)
{
    if (f->token_version == f->claims.token_version)
        return true;
    flow_unauthorized(f, "the access token was revoked (the password "
                         "changed); log in again");
    return false;
}

int flow_auth_cached(struct agenda_flow *f)
{
    const struct agenda_auth_cache *c = f->env.auth_cache;
    struct agenda_auth_entry e;

    /* hashes are never cached: such routes always ask the shard */
    if (c == NULL || f->route->auth == FLOW_TOKEN_HASH)
        return 0;
    memset(&e, 0, sizeof e);
    if (c->lookup(c->data, f->user, &e) != 1)
        return 0;
    e.role[sizeof e.role - 1] = '\0';
    if (strcmp(e.role, "user") != 0 && strcmp(e.role, "admin") != 0)
        return 0;
    /*
     * Versions only grow.  A token newer than the entry was issued after
     * a password change this edge did not see (another edge, then a
     * login): the shard decides, not the stale entry.  An older one was
     * revoked, whatever happened since.
     */
    if (f->claims.token_version > e.token_version)
        return 0;
    strcpy(f->role, e.role);
    f->token_version = e.token_version;
    return token_current(f) ? 1 : -1;
}

/* ---- user.auth ----------------------------------------------------------- */

void flow_auth_call(struct agenda_flow *f)
{
    json_t *args = json_pack("{s:s}", "username", f->user);

    flow_calls_begin(f);
    flow_call_as(f, users_shard(f), false, "user.auth", args, "", "system",
                 NULL);
    flow_last_call_fresh(f); /* who is calling is decided on fresh data */
    flow_calls_emit(f);
}

/* Read user.auth's answer into the flow: role, token version, hash. */
static int take_auth(struct agenda_flow *f, json_t *ans)
{
    json_t *u = json_object_get(ans, "user");
    json_t *tv = json_object_get(u, "token_version");
    const char *role = json_string_value(json_object_get(u, "role"));
    const char *phc = json_string_value(json_object_get(u, "password_hash"));

    if (!json_is_integer(tv) || role == NULL || phc == NULL
        || (strcmp(role, "user") != 0 && strcmp(role, "admin") != 0))
        return -1;
    strcpy(f->role, role);
    f->token_version = (uint64_t)json_integer_value(tv);
    free(f->phc);
    f->phc = strdup(phc);
    if (f->phc == NULL)
        f->oom = true;
    return 0;
}

bool flow_auth_done(struct agenda_flow *f)
{
    if (f->ans[0].status == 404) {
        /* a missing account is not an entry: nothing to remember */
        cache_forget(f);
        flow_unauthorized(f, "the account of this token no longer exists");
        return false;
    }
    if (!flow_ok(f, 0)) {
        flow_shard_error(f, 0);
        return false;
    }
    if (take_auth(f, f->ans[0].json) != 0) {
        flow_error(f, 500, "internal", "the users shard answered oddly");
        return false;
    }
    /* fresh from the shard, whether or not this token is still current */
    cache_store(f);
    return token_current(f);
}

/* ---- helpers ------------------------------------------------------------- */

/* printable ASCII for audit fields (1..max bytes, as audit.record wants) */
static void audit_text(char *out, size_t max, const char *prefix,
                       const char *s)
{
    size_t o = 0;

    for (const char *p = prefix; *p != '\0' && o < max; p++)
        out[o++] = *p;
    for (const unsigned char *p = (const unsigned char *)s;
         *p != '\0' && o < max; p++)
        out[o++] = *p >= 0x20 && *p < 0x7f ? (char)*p : '?';
    out[o] = '\0';
}

/* The 200 answer of a login (and of a password change): a new token. */
static json_t *token_answer(struct agenda_flow *f, json_t *into)
{
    char jti[33], *tok = NULL;
    int rc;

    if (flow_random_hex(jti, 32) != 0) {
        json_decref(into);
        return NULL;
    }
    rc = agenda_jwt_issue(f->env.jwt, f->user, f->role, f->token_version,
                          f->env.now_s, jti, &tok);
    if (rc != AGENDA_JWT_OK) {
        json_decref(into);
        return NULL;
    }
    flow_set_str(f, into, "access_token", tok);
    flow_set_str(f, into, "token_type", "Bearer");
    flow_set(f, into, "expires_in", json_integer(f->env.jwt->ttl_s));
    free(tok);
    flow_header(f, "Cache-Control", "no-store");
    return into;
}

/* ---- POST /auth/register ------------------------------------------------- */

void flow_h_register(struct agenda_flow *f)
{
    const char *username, *pw, *name, *email;
    char folded[AGENDA_USERNAME_MAX + 1];
    json_t *args, *u;
    bool bad = false;

    switch (f->stage) {
    case 0:
        username = flow_body_str(f, "username", true, &bad);
        pw = bad ? NULL : flow_body_str(f, "password", true, &bad);
        name = bad ? NULL : flow_body_str(f, "display_name", true, &bad);
        email = bad ? NULL : flow_body_str(f, "email", true, &bad);
        if (bad)
            return;
        if (agenda_username_fold(username, folded) != 0) {
            flow_error(f, 400, "invalid_username",
                       "username must be 3-32 of [A-Za-z0-9_.-]");
            return;
        }
        if (!agenda_password_acceptable(pw, strlen(pw))) {
            flow_error(f, 400, "invalid_password",
                       "password must be %d-%d bytes of UTF-8 text "
                       "without control characters",
                       AGENDA_PASSWORD_MIN, AGENDA_PASSWORD_MAX);
            return;
        }
        if (!agenda_text_valid(name, AGENDA_DISPLAY_NAME_MAX, false, false)) {
            flow_error(f, 400, "invalid_field",
                       "display_name must be 1-%d characters of one-line "
                       "text", AGENDA_DISPLAY_NAME_MAX);
            return;
        }
        if (!agenda_email_valid(email)) {
            flow_error(f, 400, "invalid_field",
                       "email must be an address like name@example.org");
            return;
        }
        f->scratch = json_pack("{s:s}", "username", folded);
        if (f->scratch == NULL) {
            f->oom = true;
            return;
        }
        f->stage = 1;
        flow_hash(f, pw);
        return;
    case 1:
        if (f->hashed == NULL) {
            flow_error(f, 500, "internal", "could not hash the password");
            return;
        }
        args = json_pack("{s:O, s:O, s:O, s:s}",
                         "username", json_object_get(f->scratch, "username"),
                         "display_name", json_object_get(f->in,
                                                         "display_name"),
                         "email", json_object_get(f->in, "email"),
                         "password_hash", f->hashed);
        if (args == NULL) {
            f->oom = true;
            return;
        }
        flow_calls_begin(f);
        /* anonymous: the shard refuses an anonymous role "admin" */
        flow_call_as(f, users_shard(f), true, "user.register", args, "",
                     "user", NULL);
        flow_calls_emit(f);
        f->stage = 2;
        return;
    default:
        if (!flow_answer_ok(f, 0))
            return;
        u = json_object_get(f->ans[0].json, "user");
        json_object_del(u, "token_version");
        flow_respond(f, 201, json_pack("{s:O?}", "user", u));
        return;
    }
}

/* ---- POST /auth/login ---------------------------------------------------- */

void flow_h_login(struct agenda_flow *f)
{
    const char *username, *pw;
    char object[101], outcome[101];
    bool bad = false, known, success;
    json_t *args, *answer;

    pw = json_string_value(json_object_get(f->in, "password"));
    switch (f->stage) {
    case 0:
        username = flow_body_str(f, "username", true, &bad);
        pw = bad ? NULL : flow_body_str(f, "password", true, &bad);
        if (bad)
            return;
        if (agenda_username_fold(username, f->user) == 0)
            audit_text(object, 90, "user:", f->user);
        else
            audit_text(object, 90, "user:", username);
        f->scratch = json_pack("{s:s, s:b}", "object", object, "known", 0);
        if (f->scratch == NULL) {
            f->oom = true;
            return;
        }
        if (agenda_username_fold(username, f->user) != 0) {
            /* no such account can exist: still spend the KDF time */
            f->user[0] = '\0';
            f->stage = 2;
            flow_verify(f, dummy_phc, pw);
            return;
        }
        flow_auth_call(f);
        f->stage = 1;
        return;
    case 1:
        if (f->ans[0].status == 404) {
            cache_forget(f);
            flow_verify(f, dummy_phc, pw);
        } else if (!flow_answer_ok(f, 0))
            return; else if (take_auth(f, f->ans[0].json) != 0) {
            flow_error(f, 500, "internal", "the users shard answered oddly");
            return;
        } else {
            json_object_set_new(f->scratch, "known", json_true());
            flow_verify(f, f->phc, pw);
        }
        f->stage = 2;
        return;
    case 2:
        known = json_is_true(json_object_get(f->scratch, "known"));
        success = known && f->verify_result == 1;
        if (success) {
            answer = token_answer(f, flow_obj(f));
            if (answer == NULL) {
                flow_error(f, 500, "internal", "could not issue a token");
                return;
            }
            flow_set(f, f->scratch, "answer", answer);
            strcpy(outcome, "ok");
            /* the new token's first request need not ask the shard */
            cache_store(f);
        } else {
            audit_text(outcome, 100, "failed:", f->client_addr);
        }
        flow_set(f, f->scratch, "success", json_boolean(success));
        args = json_pack("{s:s, s:O, s:s}", "action", "login", "object",
                         json_object_get(f->scratch, "object"),
                         "outcome", outcome);
        flow_calls_begin(f);
        flow_call_as(f, users_shard(f), true, "audit.record", args, "",
                     "system", NULL);
        flow_calls_emit(f);
        f->stage = 3;
        return;
    default:
        if (!json_is_true(json_object_get(f->scratch, "success"))) {
            flow_error(f, 401, "invalid_credentials",
                       "wrong username or password");
            return;
        }
        /* no unaudited login: the client may retry */
        if (!flow_answer_ok(f, 0))
            return;
        flow_header(f, "Cache-Control", "no-store");
        flow_respond(f, 200, json_incref(json_object_get(f->scratch,
                                                         "answer")));
        return;
    }
}

/* ---- /me ----------------------------------------------------------------- */

void flow_h_me_get(struct agenda_flow *f)
{
    if (f->stage == 0) {
        flow_calls_begin(f);
        flow_call(f, users_shard(f), false, "user.get",
                  json_pack("{s:s}", "username", f->user));
        flow_calls_emit(f);
        f->stage = 1;
        return;
    }
    if (!flow_answer_ok(f, 0))
        return;
    flow_respond(f, 200, json_pack("{s:O?}", "user",
                                   json_object_get(f->ans[0].json, "user")));
}

void flow_h_me_patch(struct agenda_flow *f)
{
    static const char *const fields[] = {"display_name", "email", NULL};
    char channel[64];
    json_t *args;

    if (f->stage == 0) {
        args = json_pack("{s:s}", "username", f->user);
        if (args == NULL) {
            f->oom = true;
            return;
        }
        flow_copy_fields(f, args, fields);
        flow_calls_begin(f);
        flow_call(f, users_shard(f), true, "user.update", args);
        flow_calls_emit(f);
        f->stage = 1;
        return;
    }
    if (!flow_answer_ok(f, 0))
        return;
    snprintf(channel, sizeof channel, "user/%s", f->user);
    flow_notify(f, channel, flow_note_msg(f, "user.updated", f->user, NULL,
                                          users_shard(f), f->ans[0].json));
    flow_respond(f, 200, json_pack("{s:O?}", "user",
                                   json_object_get(f->ans[0].json, "user")));
}

void flow_h_me_password(struct agenda_flow *f)
{
    const char *cur, *pw;
    bool bad = false;
    char channel[64];
    json_t *u, *answer;
    json_int_t tv;

    cur = json_string_value(json_object_get(f->in, "current_password"));
    pw = json_string_value(json_object_get(f->in, "new_password"));
    switch (f->stage) {
    case 0:
        cur = flow_body_str(f, "current_password", true, &bad);
        pw = bad ? NULL : flow_body_str(f, "new_password", true, &bad);
        if (bad)
            return;
        if (!agenda_password_acceptable(pw, strlen(pw))) {
            flow_error(f, 400, "invalid_password",
                       "new_password must be %d-%d bytes of UTF-8 text "
                       "without control characters",
                       AGENDA_PASSWORD_MIN, AGENDA_PASSWORD_MAX);
            return;
        }
        if (f->phc == NULL) {
            /* FLOW_TOKEN_HASH: user.auth always answered before this */
            flow_error(f, 500, "internal", "the stored password hash is "
                                           "missing");
            return;
        }
        f->stage = 1;
        flow_verify(f, f->phc, cur);
        return;
    case 1:
        if (f->verify_result != 1) {
            if (f->verify_result < 0)
                flow_error(f, 500, "internal",
                           "could not check the current password");
            else
                flow_error(f, 403, "wrong_password",
                           "current_password is not right");
            return;
        }
        f->stage = 2;
        flow_hash(f, pw);
        return;
    case 2:
        if (f->hashed == NULL) {
            flow_error(f, 500, "internal", "could not hash the password");
            return;
        }
        flow_calls_begin(f);
        /* the version of the token whose holder proved the password:
         * a change made meanwhile wins (409), see users.c */
        flow_call(f, users_shard(f), true, "user.password",
                  json_pack("{s:s, s:s, s:I}", "username", f->user,
                            "password_hash", f->hashed,
                            "expected_token_version",
                            (json_int_t)f->claims.token_version));
        flow_calls_emit(f);
        f->stage = 3;
        return;
    default:
        if (!flow_ok(f, 0)) {
            /* the change may have happened (no answer in time): the next
             * request must learn the version from the shard */
            cache_forget(f);
            flow_shard_error(f, 0);
            return;
        }
        u = json_object_get(f->ans[0].json, "user");
        tv = json_integer_value(json_object_get(u, "token_version"));
        if (tv <= 0) {
            cache_forget(f);
            flow_error(f, 500, "internal",
                       "the password changed but no new token could be "
                       "issued; log in again");
            return;
        }
        /* every older token is revoked now, on every worker of this edge
         * from the very next request on (other edges: when their entry
         * expires, see struct agenda_auth_cache); hand the caller a new
         * one */
        f->token_version = (uint64_t)tv;
        cache_store(f);
        answer = token_answer(f, json_pack("{s:O?}", "user", u));
        if (answer == NULL) {
            flow_error(f, 500, "internal",
                       "the password changed but no new token could be "
                       "issued; log in again");
            return;
        }
        snprintf(channel, sizeof channel, "user/%s", f->user);
        flow_notify(f, channel,
                    flow_note_msg(f, "user.password_changed", f->user, NULL,
                                  users_shard(f), f->ans[0].json));
        /* subscriptions made with the revoked tokens end; the caller's
         * client subscribes again with the new one */
        flow_close_channel(f, channel);
        flow_respond(f, 200, answer);
        return;
    }
}

/* ---- GET /users ---------------------------------------------------------- */

void flow_h_users(struct agenda_flow *f)
{
    json_t *args;

    if (f->stage == 0) {
        if (flow_param(f, "prefix") == NULL) {
            flow_error(f, 400, "missing_parameter",
                       "give ?prefix= (1-32 of [A-Za-z0-9_.-])");
            return;
        }
        args = flow_obj(f);
        flow_param_str(f, args, "prefix");
        if (flow_param_int(f, args, "limit") != 0) {
            json_decref(args);
            return;
        }
        flow_calls_begin(f);
        flow_call(f, users_shard(f), false, "user.list", args);
        flow_calls_emit(f);
        f->stage = 1;
        return;
    }
    if (!flow_answer_ok(f, 0))
        return;
    flow_respond(f, 200, json_incref(f->ans[0].json));
}

/* ---- GET /health (normally served by the module itself) ------------------ */

void flow_h_health(struct agenda_flow *f)
{
    flow_respond(f, 200, json_pack("{s:s}", "status", "ok"));
}

/*
 * agenda_flow_json.c — what every route uses: building shard calls,
 * answering the client (errors, headers, notifications), reading the
 * query string and the JSON body, and the opaque tokens of fanned-out
 * feeds.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>

#include "agenda_flow_internal.h"
#include "json_text.h"
#include "validate.h"

/* ---- json helpers -------------------------------------------------------- */

json_t *flow_obj(struct agenda_flow *f)
{
    json_t *o = json_object();

    if (o == NULL)
        f->oom = true;
    return o;
}

void flow_set(struct agenda_flow *f, json_t *obj, const char *key, json_t *v)
{
    if (obj == NULL || v == NULL || json_object_set_new(obj, key, v) != 0)
        f->oom = true;
}

void flow_set_str(struct agenda_flow *f, json_t *obj, const char *key,
                  const char *s)
{
    flow_set(f, obj, key, json_string(s));
}

void flow_now_str(const struct agenda_flow *f, char out[32])
{
    if (agenda_time_format(f->env.now_s * 1000, out, 32) < 0)
        strcpy(out, "1970-01-01T00:00:00Z");
}

char *flow_json_text(const json_t *v, bool sort_keys, size_t *len)
{
    struct agenda_buf b = {0};

    if (agenda_buf_reserve(&b, 512) != 0
        || agenda_json_text_value(&b, v, sort_keys) != 0
        || agenda_buf_append(&b, "", 1) != 0) {
        agenda_buf_free(&b);
        return NULL;
    }
    if (len != NULL)
        *len = b.len - 1;
    return (char *) b.data;
}

int flow_random_hex(char *out, size_t n)
{
    unsigned char buf[64];
    size_t need = (n + 1) / 2, got = 0;

    if (need > sizeof buf)
        return -1;
    while (got < need) {
        ssize_t r = getrandom(buf + got, need - got, 0);

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = "0123456789abcdef"[(buf[i / 2] >> (i % 2 ? 0 : 4)) & 15];
    out[n] = '\0';
    return 0;
}

bool flow_parse_when(const char *s, int64_t *ms)
{
    return agenda_time_parse(s, ms) == 0 || agenda_date_parse(s, ms) == 0;
}

/* ---- shard calls --------------------------------------------------------- */

static int grow_calls(struct agenda_flow *f)
{
    struct agenda_flow_call *c;
    char **s;
    size_t cap;

    if (f->n_calls < f->cap_calls)
        return 0;
    cap = f->cap_calls == 0 ? 4 : 2 * f->cap_calls;
    c = realloc(f->calls, cap * sizeof *c);
    if (c == NULL)
        return -1;
    f->calls = c;
    s = realloc(f->call_strings, 2 * cap * sizeof *s);
    if (s == NULL)
        return -1;
    f->call_strings = s;
    f->cap_calls = cap;
    return 0;
}

/*
 * The Idempotency-Key of the next command.  The shards remember keys
 * globally, so a client's key is never passed as is: it is hashed with
 * the caller, the request line, If-Match, the body and the command's
 * position in the flow.  A retry of the same request by the same client
 * therefore maps to the same keys (applied once), while equal keys of two
 * clients (anonymous ones too: registrations) or of two different
 * requests never collide, so nobody is ever answered with somebody else's
 * result.
 * Without a client key, the first command draws a random one for the
 * whole request and the answer names it in an Idempotency-Key header: a
 * client told its outcome is unknown (503) can retry with it and is
 * answered with the first result instead of having it applied twice.
 *
 * The hash is an HMAC keyed with the edge's token-signing key: a body may
 * hold a password (login, registration, password change), and with a
 * guessable client key a plain hash stored in the shards' log would let
 * whoever reads their disks test passwords at hash speed, argon2 skipped.
 * Every edge of a cluster signs with the same key, so they all derive the
 * same keys.
 */
static bool mac_part(EVP_MAC_CTX *m, const char *s)
{
    return EVP_MAC_update(m, (const unsigned char *)s, strlen(s) + 1) == 1;
}

static char *derive_key(struct agenda_flow *f)
{
    static const char domain[] = "agenda command key v1";
    char *k = malloc(42);
    unsigned char md[EVP_MAX_MD_SIZE];
    size_t md_len = 0;
    char digest[] = OSSL_DIGEST_NAME_SHA2_256;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end(),
    };
    const unsigned char *key = (const unsigned char *)"";
    size_t key_len = 0;
    EVP_MAC *mac;
    EVP_MAC_CTX *ctx;
    char n[16];
    int ok;

    if (k == NULL)
        return NULL;
    f->n_commands++;
    if (f->idem == NULL) {
        f->idem = malloc(33);
        if (f->idem == NULL || flow_random_hex(f->idem, 32) != 0) {
            free(f->idem);
            f->idem = NULL;
            free(k);
            return NULL;
        }
        f->idem_generated = true; /* see respond_text() */
    }
    if (f->env.jwt != NULL && f->env.jwt->sign_key != NULL) {
        key = f->env.jwt->sign_key;
        key_len = f->env.jwt->sign_key_len;
    }
    /* the command's position, and the request's If-Match when it has
     * one: a retry whose precondition was corrected is another request
     * (its first answer was a 412), not the replay of the first */
    snprintf(n, sizeof n, "%u", f->n_commands);
    mac = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
    ctx = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
    ok = ctx != NULL && EVP_MAC_init(ctx, key, key_len, params) == 1
         && mac_part(ctx, domain) && mac_part(ctx, f->method)
         && mac_part(ctx, f->path) && mac_part(ctx, f->user)
         && mac_part(ctx, f->idem) && mac_part(ctx, n)
         && (f->if_match == NULL || mac_part(ctx, f->if_match))
         && (f->body_len == 0
             || EVP_MAC_update(ctx, (const unsigned char *)f->body,
                               f->body_len) == 1)
         && EVP_MAC_final(ctx, md, &md_len, sizeof md) == 1 && md_len >= 20;
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    if (!ok) {
        free(k);
        return NULL;
    }
    k[0] = 'k';
    for (size_t i = 0; i < 20; i++) {
        k[1 + 2 * i] = "0123456789abcdef"[md[i] >> 4];
        k[2 + 2 * i] = "0123456789abcdef"[md[i] & 15];
    }
    k[41] = '\0';
    return k;
}

void flow_call_as(struct agenda_flow *f, const struct agenda_shard *shard,
                  bool command, const char *op, json_t *args,
                  const char *user, const char *role, const char *cal_role)
{
    json_t *req, *actor;
    char *body, *key = NULL;
    size_t body_len = 0;
    struct agenda_flow_call *c;

    if (args == NULL)
        args = json_object();
    actor = json_pack("{s:s, s:s}", "user", user, "role", role);
    if (actor != NULL && cal_role != NULL)
        json_object_set_new(actor, "calendar_role", json_string(cal_role));
    req = json_pack("{s:s, s:o, s:o}", "op", op, "actor", actor,
                    "args", args);
    body = req != NULL ? flow_json_text(req, false, &body_len) : NULL;
    json_decref(req);
    if (command && body != NULL)
        key = derive_key(f);
    if (shard == NULL || body == NULL || (command && key == NULL)
        || grow_calls(f) != 0) {
        free(body);
        free(key);
        f->oom = true;
        return;
    }
    c = &f->calls[f->n_calls];
    c->shard = shard;
    c->command = command;
    c->stale = !command && f->stale;
    c->idempotency_key = key;
    c->body = body;
    c->body_len = body_len;
    c->status_of = NULL;
    f->call_strings[2 * f->n_calls] = body;
    f->call_strings[2 * f->n_calls + 1] = key;
    f->n_calls++;
}

void flow_last_call_fresh(struct agenda_flow *f)
{
    if (f->n_calls > 0)
        f->calls[f->n_calls - 1].stale = false;
}

void flow_call_status(struct agenda_flow *f, const struct agenda_shard *shard,
                      const struct agenda_replica *replica)
{
    char *body = strdup("");
    struct agenda_flow_call *c;

    if (body == NULL || grow_calls(f) != 0) {
        free(body);
        f->oom = true;
        return;
    }
    c = &f->calls[f->n_calls];
    memset(c, 0, sizeof *c);
    c->shard = shard;
    c->body = body;
    c->status_of = replica;
    f->call_strings[2 * f->n_calls] = body;
    f->call_strings[2 * f->n_calls + 1] = NULL;
    f->n_calls++;
}

void flow_call(struct agenda_flow *f, const struct agenda_shard *shard,
               bool command, const char *op, json_t *args)
{
    flow_call_as(f, shard, command, op, args, f->user, f->role, NULL);
}

void flow_calls_emit(struct agenda_flow *f)
{
    /* no call means one could not be built: answer 500, never hang */
    if (f->oom || f->n_calls == 0) {
        f->oom = true;
        return;
    }
    f->ans = calloc(f->n_calls, sizeof *f->ans);
    if (f->ans == NULL) {
        f->oom = true;
        return;
    }
    f->n_ans = f->n_calls;
    f->act.kind = AGENDA_FLOW_CALL;
    f->act.n_calls = f->n_calls;
    f->act.calls = f->calls;
}

bool flow_ok(const struct agenda_flow *f, size_t i)
{
    return i < f->n_ans && f->ans[i].status >= 200 && f->ans[i].status < 300
           && (f->ans[i].json != NULL || f->ans[i].raw != NULL);
}

void flow_answer_raw(struct agenda_flow *f, size_t i)
{
    if (i < f->n_ans)
        f->ans[i].raw_wanted = true;
}

/* The shards answer compact JSON objects; anything else is parsed (and
 * refused) the usual way. */
bool flow_looks_like_object(const char *body, size_t len)
{
    return body != NULL && len >= 2 && body[0] == '{' && body[len - 1] == '}';
}

/* RESPOND with text (malloc'd, NULL when building it failed), which the
 * flow owns from here on: it lives until the flow ends. */
static void respond_text(struct agenda_flow *f, int status, char *text,
                         size_t len)
{
    f->act.kind = AGENDA_FLOW_RESPOND;
    f->act.status = status;
    free(f->resp_body);
    f->resp_body = text;
    if (text == NULL) {
        f->oom = true; /* every answer has a body: building it failed */
        return;
    }
    f->act.body = text;
    f->act.body_len = len;
    if (f->idem_generated) /* the key a retry of this request should use */
        flow_header(f, "Idempotency-Key", f->idem);
    f->act.n_headers = f->n_headers;
    f->act.headers = f->headers;
    f->act.n_notifications = f->n_notes;
    f->act.notifications = f->notes;
}

void flow_respond_answer(struct agenda_flow *f, int status, size_t i)
{
    struct flow_answer *a = &f->ans[i];

    if (a->raw == NULL) {
        flow_respond(f, status, json_incref(a->json));
        return;
    }
    respond_text(f, status, a->raw, a->raw_len);
    a->raw = NULL;
}

bool flow_answer_ok(struct agenda_flow *f, size_t i)
{
    if (flow_ok(f, i))
        return true;
    flow_shard_error(f, i);
    return false;
}

long flow_first_failure(const struct agenda_flow *f)
{
    for (size_t i = 0; i < f->n_ans; i++)
        if (!flow_ok(f, i))
            return (long)i;
    return -1;
}

void flow_shard_error(struct agenda_flow *f, size_t i)
{
    const struct flow_answer *a = &f->ans[i];
    json_t *err = json_object_get(a->json, "error");
    const char *code = json_string_value(json_object_get(err, "code"));
    json_t *body;

    if (a->status == 0) {
        flow_header(f, "Retry-After", "1");
        flow_error(f, 503, "unavailable",
                   "the service is temporarily unavailable; retry shortly");
        return;
    }
    if (a->status == 503 || a->status == 507) {
        flow_header(f, "Retry-After", "1");
        flow_error(f, 503, code != NULL ? code : "unavailable",
                   "the service is temporarily unavailable; retry shortly "
                   "(with the same Idempotency-Key for writes)");
        return;
    }
    if (a->status == 421 || a->status == 401 || a->status >= 500
        || a->status < 400 || !json_is_object(err) || code == NULL) {
        /* our own mistake (routing, actor) or a broken answer */
        flow_error(f, 500, "internal",
                   "the edge could not complete this request (%d %.40s)",
                   a->status, code != NULL ? code : "");
        return;
    }
    body = json_pack("{s:O}", "error", err);
    if (body == NULL) {
        f->oom = true;
        return;
    }
    flow_respond(f, a->status, body);
}

/* ---- other actions ------------------------------------------------------- */

void flow_hash(struct agenda_flow *f, const char *pw)
{
    f->act.kind = AGENDA_FLOW_HASH;
    f->act.password = pw;
    f->act.password_len = strlen(pw);
}

void flow_verify(struct agenda_flow *f, const char *phc, const char *pw)
{
    f->verify_result = -1;
    f->act.kind = AGENDA_FLOW_VERIFY;
    f->act.phc = phc;
    f->act.password = pw;
    f->act.password_len = strlen(pw);
}

void flow_respond(struct agenda_flow *f, int status, json_t *body)
{
    size_t len = 0;
    char *text = body != NULL ? flow_json_text(body, false, &len) : NULL;

    json_decref(body);
    respond_text(f, status, text, len);
}

void flow_error(struct agenda_flow *f, int status, const char *code,
                const char *fmt, ...)
{
    char msg[320];
    va_list ap;
    json_t *body;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* a truncated or foreign message must stay valid UTF-8 */
    body = json_pack("{s:{s:s, s:s}}", "error", "code", code, "message",
                     agenda_text_valid(msg, sizeof msg, true, true)
                     ? msg : "invalid request");
    if (body == NULL) {
        f->oom = true;
        return;
    }
    /* notifications belong to successes only */
    for (size_t i = 0; i < f->n_notes; i++) {
        free((void *)(uintptr_t)f->notes[i].channel);
        free((void *)(uintptr_t)f->notes[i].message);
    }
    f->n_notes = 0;
    flow_respond(f, status, body);
}

void flow_unauthorized(struct agenda_flow *f, const char *message)
{
    flow_header(f, "WWW-Authenticate",
                "Bearer realm=\"agenda\", error=\"invalid_token\"");
    flow_error(f, 401, f->authorization == NULL ? "unauthenticated"
                                                : "invalid_token",
               "%s", message);
}

void flow_header(struct agenda_flow *f, const char *name, const char *value)
{
    char *v;

    if (f->n_headers == FLOW_MAX_HEADERS)
        return; /* the table is sized for every route's headers */
    v = strdup(value);
    if (v == NULL) {
        f->oom = true;
        return;
    }
    f->header_values[f->n_headers] = v;
    f->headers[f->n_headers].name = name;
    f->headers[f->n_headers].value = v;
    f->n_headers++;
}

void flow_etag(struct agenda_flow *f, json_t *obj)
{
    json_t *v = json_object_get(obj, "version");
    char tag[32];

    if (!json_is_integer(v))
        return;
    snprintf(tag, sizeof tag, "\"%lld\"", (long long)json_integer_value(v));
    flow_header(f, "ETag", tag);
}

/* Append a notification: channel with message m (taken; NULL with
 * close). */
static void note_push(struct agenda_flow *f, const char *channel, char *m,
                      bool close)
{
    struct agenda_flow_notification *n;
    char *c;

    if (f->n_notes == f->cap_notes) {
        size_t cap = f->cap_notes == 0 ? 4 : 2 * f->cap_notes;

        n = realloc(f->notes, cap * sizeof *n);
        if (n == NULL) {
            free(m);
            f->oom = true;
            return;
        }
        f->notes = n;
        f->cap_notes = cap;
    }
    c = strdup(channel);
    if (c == NULL) {
        free(m);
        f->oom = true;
        return;
    }
    f->notes[f->n_notes].channel = c;
    f->notes[f->n_notes].message = m;
    f->notes[f->n_notes].close = close;
    f->n_notes++;
}

void flow_notify(struct agenda_flow *f, const char *channel, json_t *msg)
{
    char *m;

    if (msg == NULL) {
        f->oom = true;
        return;
    }
    m = flow_json_text(msg, false, NULL);
    json_decref(msg);
    if (m == NULL) {
        f->oom = true;
        return;
    }
    note_push(f, channel, m, false);
}

void flow_close_channel(struct agenda_flow *f, const char *channel)
{
    note_push(f, channel, NULL, true);
}

json_t *flow_note_msg(struct agenda_flow *f, const char *type,
                      const char *id, const char *calendar,
                      const struct agenda_shard *shard, json_t *answer)
{
    char now[32];
    json_t *m = flow_obj(f);
    json_t *tok = json_object_get(answer, "sync_token");

    flow_now_str(f, now);
    flow_set_str(f, m, "type", type);
    flow_set_str(f, m, "id", id);
    if (calendar != NULL)
        flow_set_str(f, m, "calendar", calendar);
    flow_set_str(f, m, "actor", f->user);
    flow_set_str(f, m, "time", now);
    if (shard != NULL)
        flow_set_str(f, m, "shard", shard->name);
    if (json_is_integer(tok))
        flow_set(f, m, "sync_token", json_integer(json_integer_value(tok)));
    return m;
}

void flow_calendar_channel(const char *cal, char *out, size_t len)
{
    if (strncmp(cal, "g:", 2) == 0)
        snprintf(out, len, "group/%s", cal + 2);
    else
        snprintf(out, len, "user/%s", cal);
}

/* If-Match: a strong ETag "\"<n>\"" into *v; 0 ok, 1 absent, -1 bad. */
int flow_if_match(const char *h, long long *v)
{
    char *end;
    const char *p;

    if (h == NULL)
        return 1;
    p = h;
    while (*p == ' ')
        p++;
    if (p[0] != '"' || p[1] < '1' || p[1] > '9')
        return -1;
    *v = strtoll(p + 1, &end, 10);
    if (end[0] != '"' || end - (p + 1) > 15)
        return -1;
    for (end++; *end == ' '; end++)
        ;
    return *end == '\0' ? 0 : -1;
}

/* ---- the query string ---------------------------------------------------- */

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decode s[0..len) ('+' is a space); NULL on a bad escape or an
 * encoded NUL, or without memory (*oom). */
static char *decode(const char *s, size_t len, bool *oom)
{
    char *out = malloc(len + 1);
    size_t o = 0;

    if (out == NULL) {
        *oom = true;
        return NULL;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '%') {
            int hi = i + 2 < len ? hexval((unsigned char)s[i + 1]) : -1;
            int lo = i + 2 < len ? hexval((unsigned char)s[i + 2]) : -1;

            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                free(out);
                return NULL;
            }
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            /* '+' is itself (RFC 3986), not a form's space: a time's
             * offset (from=...T09:00:00+01:00) is often sent unencoded,
             * and no parameter takes a space */
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return out;
}

int flow_parse_query(struct agenda_flow *f)
{
    const char *p = f->query;

    while (p != NULL && *p != '\0') {
        const char *end = strchr(p, '&');
        const char *eq;
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        char *name, *value;
        bool oom = false;

        if (len == 0) {
            p = end != NULL ? end + 1 : NULL;
            continue;
        }
        eq = memchr(p, '=', len);
        name = decode(p, eq != NULL ? (size_t)(eq - p) : len, &oom);
        value = eq != NULL ? decode(eq + 1, len - (size_t)(eq - p) - 1, &oom)
                           : decode("", 0, &oom);
        if (oom) {
            free(name);
            free(value);
            f->oom = true;
            return -1;
        }
        if (name == NULL || value == NULL || name[0] == '\0'
            || f->n_params == FLOW_MAX_PARAMS
            || !agenda_text_valid(value, strcmp(name, "cursor") == 0
                                             ? FLOW_CURSOR_MAX
                                             : FLOW_QUERY_VALUE_MAX,
                                  false, true)
            || !agenda_text_valid(name, 64, false, false)) {
            free(name);
            free(value);
            flow_error(f, 400, "bad_query",
                       "the query string is malformed (bad escape, "
                       "control character, invalid UTF-8 or too many "
                       "parameters)");
            return -1;
        }
        if (flow_param(f, name) != NULL) {
            flow_error(f, 400, "bad_query",
                       "query parameter '%.64s' is given twice", name);
            free(name);
            free(value);
            return -1;
        }
        f->params[f->n_params].name = name;
        f->params[f->n_params].value = value;
        f->n_params++;
        p = end != NULL ? end + 1 : NULL;
    }
    return 0;
}

const char *flow_param(const struct agenda_flow *f, const char *name)
{
    for (size_t i = 0; i < f->n_params; i++)
        if (strcmp(f->params[i].name, name) == 0)
            return f->params[i].value;
    return NULL;
}

int flow_param_int(struct agenda_flow *f, json_t *args, const char *name)
{
    const char *v = flow_param(f, name);
    char *end;
    long long n;

    if (v == NULL)
        return 0;
    errno = 0;
    n = strtoll(v, &end, 10);
    if (v[0] == '\0' || *end != '\0' || errno != 0 || v[0] == ' '
        || v[0] == '+') {
        flow_error(f, 400, "invalid_parameter",
                   "query parameter '%s' must be an integer", name);
        return -1;
    }
    flow_set(f, args, name, json_integer(n));
    return 0;
}

void flow_param_str(struct agenda_flow *f, json_t *args, const char *name)
{
    const char *v = flow_param(f, name);

    if (v != NULL)
        flow_set_str(f, args, name, v);
}

/* ---- the body ------------------------------------------------------------ */

static bool is_json_type(const char *ct)
{
    static const char want[] = "application/json";
    size_t n = sizeof want - 1;

    if (ct == NULL || strncasecmp(ct, want, n) != 0)
        return false;
    ct += n;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    if (*ct == '\0')
        return true;
    if (*ct != ';')
        return false;
    ct++;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    /* the only parameter JSON knows; any other charset is refused */
    return strncasecmp(ct, "charset=utf-8", 13) == 0
           && (ct[13] == '\0' || ct[13] == ' ' || ct[13] == ';')
           && strchr(ct, ';') == NULL;
}

/*
 * The one-line fields people read as names and titles must show
 * something and not read as another (agenda_line_shows): checked here,
 * before anything is proposed, because the replicas' own rules must stay
 * what agents of every version apply alike.  Other problems (types,
 * lengths, control characters) are the shard's to answer.
 */
static int check_lines(struct agenda_flow *f)
{
    /* names and titles must show something; a location may be blank */
    static const struct {
        const char *key;
        bool visible;
    } lines[] = {{"title", true}, {"display_name", true}, {"name", true},
                 {"location", false}};

    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        json_t *v = json_object_get(f->in, lines[i].key);
        const char *s = json_string_value(v);

        /* what the usual rules refuse (blank, control characters) gets
         * their usual answer, from the flow or the shard */
        if (s == NULL || strlen(s) != json_string_length(v)
            || !agenda_text_valid(s, SIZE_MAX, false, false)
            || (lines[i].visible ? agenda_line_shows(s)
                                 : !agenda_line_redirects(s)))
            continue;
        flow_error(f, 400, "invalid_text",
                   "'%s' must %sshow no direction override or isolate",
                   lines[i].key, lines[i].visible
                                     ? "have a visible character and " : "");
        return -1;
    }
    return 0;
}

int flow_parse_body(struct agenda_flow *f)
{
    json_error_t err;
    const char *key;
    json_t *v;

    if (f->body_len > AGENDA_FLOW_BODY_MAX) {
        flow_error(f, 413, "too_large",
                   "the body is over %d bytes", AGENDA_FLOW_BODY_MAX);
        return -1;
    }
    if (!is_json_type(f->content_type)) {
        flow_error(f, 415, "unsupported_media_type",
                   "send the body as Content-Type: application/json");
        return -1;
    }
    if (f->body_len == 0) {
        flow_error(f, 400, "bad_json", "a JSON object body is required");
        return -1;
    }
    f->in = json_loadb((const char *)f->body, f->body_len,
                       JSON_REJECT_DUPLICATES, &err);
    if (f->in == NULL) {
        /* jansson's words for bytes that are not UTF-8 */
        if (strstr(err.text, "unable to decode byte") != NULL
            || strstr(err.text, "UTF-8") != NULL)
            flow_error(f, 400, "invalid_utf8",
                       "the body is not valid UTF-8 (at byte %d)",
                       err.position);
        else
            flow_error(f, 400, "bad_json",
                       "the body is not valid JSON (at byte %d)",
                       err.position);
        return -1;
    }
    if (!json_is_object(f->in)) {
        flow_error(f, 400, "bad_json", "the body must be a JSON object");
        return -1;
    }
    json_object_foreach(f->in, key, v) {
        bool known = false;

        for (const char *const *n = f->route->fields; n && *n != NULL; n++)
            if (strcmp(*n, key) == 0)
                known = true;
        if (!known) {
            flow_error(f, 400, "unknown_field", "unknown field '%.64s'",
                       key);
            return -1;
        }
    }
    return check_lines(f);
}

const char *flow_body_str(struct agenda_flow *f, const char *name,
                          bool required, bool *bad)
{
    json_t *v = json_object_get(f->in, name);

    if (v == NULL || json_is_null(v)) {
        if (required) {
            flow_error(f, 400, "missing_field", "'%s' is required", name);
            *bad = true;
        }
        return NULL;
    }
    if (!json_is_string(v)) {
        flow_error(f, 400, "invalid_field", "'%s' must be a string", name);
        *bad = true;
        return NULL;
    }
    if (strlen(json_string_value(v)) != json_string_length(v)) {
        flow_error(f, 400, "invalid_field", "'%s' contains a NUL", name);
        *bad = true;
        return NULL;
    }
    return json_string_value(v);
}

void flow_copy_fields(struct agenda_flow *f, json_t *args,
                      const char *const *names)
{
    for (const char *const *n = names; *n != NULL; n++) {
        json_t *v = json_object_get(f->in, *n);

        if (v != NULL && !json_is_null(v)
            && json_object_set(args, *n, v) != 0)
            f->oom = true;
    }
}

/* ---- tokens: base64url of compact JSON ----------------------------------- */

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

char *flow_token_encode(json_t *positions)
{
    size_t n, o = 0;
    char *js = flow_json_text(positions, true, &n);
    char *out;

    if (js == NULL)
        return NULL;
    out = malloc(4 * (n / 3 + 1) + 1);
    if (out == NULL) {
        free(js);
        return NULL;
    }
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned char)js[i] << 16;

        if (i + 1 < n)
            v |= (unsigned char)js[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char)js[i + 2];
        out[o++] = b64[(v >> 18) & 63];
        out[o++] = b64[(v >> 12) & 63];
        if (i + 1 < n)
            out[o++] = b64[(v >> 6) & 63];
        if (i + 2 < n)
            out[o++] = b64[v & 63];
    }
    out[o] = '\0';
    free(js);
    return out;
}

json_t *flow_b64_object_decode(const char *token, size_t max)
{
    size_t n = strlen(token), o = 0;
    unsigned acc = 0;
    int bits = 0;
    char *raw;
    json_t *j;

    if (n == 0 || n > max)
        return NULL;
    raw = malloc(n + 1);
    if (raw == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        const char *p = strchr(b64, token[i]);

        if (p == NULL || token[i] == '\0') {
            free(raw);
            return NULL;
        }
        acc = (acc << 6) | (unsigned)(p - b64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            raw[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    j = json_loadb(raw, o, JSON_REJECT_DUPLICATES, NULL);
    free(raw);
    if (!json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

json_int_t flow_tag(const char *s)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;

    if (EVP_Digest(s, strlen(s), md, &n, EVP_sha256(), NULL) != 1 || n < 4)
        return -1;
    return (json_int_t)((uint32_t)md[0] << 24 | (uint32_t)md[1] << 16
                        | (uint32_t)md[2] << 8 | (uint32_t)md[3]);
}

json_t *flow_token_decode(const char *token)
{
    json_t *j = flow_b64_object_decode(token, FLOW_TOKEN_MAX), *v;
    const char *k;

    json_object_foreach(j, k, v) {
        if (!json_is_integer(v) || json_integer_value(v) < 0) {
            json_decref(j);
            return NULL;
        }
    }
    return j;
}

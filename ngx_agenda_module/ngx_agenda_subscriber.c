
/*
 * ngx_agenda_subscriber.c — "agenda_subscriber": the guard in front of the
 * nchan websocket subscriber of /api/v1/notifications, and the variable
 * $agenda_channel that names the channel nchan subscribes to.
 *
 * Everything is decided in the access phase, before nchan's content
 * handler runs, because nchan 1.3.6 parses the message id (last_event_id,
 * Last-Event-ID, If-None-Match/If-Modified-Since) at the very start of its
 * handler — a malformed one crashes the worker (nchan issue 670) — and
 * only asks nchan_authorize_request afterwards (whose denial path also
 * expects an upstream subrequest).  So, in order:
 *
 *   1. A GET without a body, else 405 or 400 (every refusal discards the
 *      body, whose bytes would otherwise be read as the connection's next
 *      request).  If-None-Match and If-Modified-Since are refused (400):
 *      websocket clients have no use for them and nchan reads message ids
 *      from them.
 *      last_event_id (the first one, URL-decoded, as nchan takes it) and
 *      every Last-Event-ID header must be "<time>:<tag>", both decimal,
 *      the tag at most 32767 (nchan keeps it in an int16): else 400.
 *   2. An Origin header, which every browser sends on a websocket, must
 *      be the one of agenda_allowed_origin: else 403 (cross-site websocket
 *      hijacking).  Clients without Origin are not browsers.
 *   3. The access token: "Authorization: Bearer <jwt>" for API clients, or
 *      the access_token query parameter for browsers, which cannot set
 *      headers on a websocket.  The parameter is what browsers can do
 *      safely here: the connection is TLS only, the token is short-lived,
 *      the generated configuration's access log withholds a query string
 *      holding access_token, the guard blanks the parameter in the
 *      request line that error log lines quote (before step 1, so that
 *      no refusal logs it), and a websocket URL is never a page
 *      that could leak it through Referer.  (Smuggling it in
 *      Sec-WebSocket-Protocol would need nchan to echo that protocol,
 *      which it does not, so browsers would drop the connection.)  The
 *      token is verified with agenda_jwt_verify_memo(): missing or invalid is
 *      401.
 *   4. The channel: "user/<sub>" by default, or the "channel" parameter:
 *      the caller's own "user/<sub>" or a "group/<id>" (16 lowercase hex);
 *      anything else is 403.
 *   5. The shards, through the REST executor (ngx_agenda_api.c) without
 *      blocking the worker: the flow of GET /me for a user channel, of
 *      GET /groups/<id> for a group channel.  Both check the token's
 *      version like every request, in the auth cache or on the users
 *      shard (a password change revokes websocket tokens too: 401);
 *      GET /groups/<id> answers only members (and
 *      admins, who may read every group), so anyone else is 403.  While
 *      the shards answer, this handler returns NGX_AGAIN; nginx posts the
 *      request when a subrequest finishes and the phase engine calls it
 *      again.  No answer within the retry budget is 503.
 *   6. A message id that passed step 1 goes to nchan (through
 *      $agenda_last_event_id) only if nchan holds a recent message on
 *      the channel: ngx_agenda_resume.c, which asks nchan first.
 *
 * A subscription is checked once, here.  What would refuse it later ends
 * it instead: the REST flows delete a group's channel when the group loses
 * a member or is deleted, and a user's channel when the password changes
 * (struct agenda_flow_notification.close); nchan closes the subscribers
 * and each must come through this guard again.  And every subscription
 * is watched (ngx_http_agenda_subscriber_arm()): it ends when its token
 * expires, or when this edge learns that the token was revoked, which
 * reaches what deleting channels cannot: a group subscription made with a
 * token that a password change revoked.
 */


#include "ngx_agenda_module.h"


#define NGX_HTTP_AGENDA_MSGID_MAX  64


typedef struct {
    ngx_uint_t              kind;      /* NGX_HTTP_AGENDA_CTX_SUBSCRIBER */
    ngx_str_t               channel;
    ngx_str_t               path;      /* what the check asks: /me, ... */
    ngx_str_t               token;
    ngx_http_agenda_ctx_t  *check;     /* the shards' check, once started */
    ngx_uint_t              allowed;   /* unsigned:1 */
    time_t                  expires;   /* the token's exp and leeway */
    ngx_str_t               user;      /* the token's sub, folded */
    uint64_t                token_version;
    ngx_http_agenda_auth_cache_t  *cache;  /* NULL: none on this edge */
    ngx_connection_t       *connection;
    ngx_msec_t              since;     /* when its check began */
    ngx_event_t             watch;     /* ends the subscription, see arm */
    ngx_http_agenda_resume_t  resume;  /* the message id, see resume.c */
} ngx_http_agenda_sub_ctx_t;


static ngx_int_t ngx_http_agenda_subscriber_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_agenda_subscriber_check(ngx_http_request_t *r,
    ngx_http_agenda_sub_ctx_t *ctx, const char **code, const char **message);
static ngx_int_t ngx_http_agenda_subscriber_checked(ngx_http_request_t *r,
    ngx_http_agenda_sub_ctx_t *ctx, ngx_int_t status);
static ngx_int_t ngx_http_agenda_subscriber_arm(ngx_http_request_t *r,
    ngx_http_agenda_sub_ctx_t *ctx);
static void ngx_http_agenda_subscriber_schedule(
    ngx_http_agenda_sub_ctx_t *ctx);
static void ngx_http_agenda_subscriber_watch(ngx_event_t *ev);
static void ngx_http_agenda_subscriber_end(ngx_http_agenda_sub_ctx_t *ctx,
    const char *why);
static void ngx_http_agenda_subscriber_disarm(void *data);
static ngx_int_t ngx_http_agenda_subscriber_refuse(ngx_http_request_t *r,
    ngx_int_t status, const char *code, const char *message);
static ngx_int_t ngx_http_agenda_group_channel(u_char *p, size_t len);
static ngx_int_t ngx_http_agenda_msgid_valid(u_char *p, size_t len);
static ngx_int_t ngx_http_agenda_arg(ngx_http_request_t *r, char *name,
    size_t len, ngx_str_t *value);
static void ngx_http_agenda_redact_tokens(ngx_http_request_t *r);
static ngx_table_elt_t *ngx_http_agenda_find_header(ngx_http_request_t *r,
    char *name, size_t len, ngx_table_elt_t *after);
static ngx_int_t ngx_http_agenda_sub_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


/*
 * $agenda_channel: the channel the guard allowed; not found otherwise, so
 * nchan refuses the subscription.
 * $agenda_last_event_id: the message id nchan resumes the allowed
 * subscription from (ngx_agenda_resume.c); not found: none, nchan sends
 * what comes next.
 */

static ngx_http_variable_t  ngx_http_agenda_sub_vars[] = {

    { ngx_string("agenda_channel"), NULL, ngx_http_agenda_sub_variable,
      offsetof(ngx_http_agenda_sub_ctx_t, channel),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("agenda_last_event_id"), NULL, ngx_http_agenda_sub_variable,
      offsetof(ngx_http_agenda_sub_ctx_t, resume.msgid),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


ngx_int_t
ngx_http_agenda_subscriber_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_agenda_sub_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_agenda_subscriber_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_agenda_subscriber_handler;

    return NGX_OK;
}


static ngx_int_t
ngx_http_agenda_subscriber_handler(ngx_http_request_t *r)
{
    ngx_int_t                    rc;
    const char                  *code, *message;
    ngx_http_agenda_sub_ctx_t   *ctx;
    ngx_http_agenda_loc_conf_t  *alcf;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_agenda_module);

    if (!alcf->subscriber || r != r->main) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_agenda_module);

    if (ctx != NULL && ctx->kind == NGX_HTTP_AGENDA_CTX_SUBSCRIBER) {

        if (ctx->allowed) {
            return NGX_DECLINED;
        }

        /* called again by the phase engine: a shard call finished */

        rc = ngx_http_agenda_check_poll(r, ctx->check);

        if (rc == NGX_AGAIN) {
            return NGX_AGAIN;
        }

        return ngx_http_agenda_subscriber_checked(r, ctx, rc);
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_agenda_sub_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->kind = NGX_HTTP_AGENDA_CTX_SUBSCRIBER;
    ctx->since = ngx_current_msec;

    rc = ngx_http_agenda_subscriber_check(r, ctx, &code, &message);

    if (rc == NGX_HTTP_INTERNAL_SERVER_ERROR) {
        return rc;
    }

    if (rc != NGX_OK) {
        return ngx_http_agenda_subscriber_refuse(r, rc, code, message);
    }

    /* the context first: the handler is called again while shards answer */

    ngx_http_set_ctx(r, ctx, ngx_http_agenda_module);

    if (ngx_http_agenda_check_start(r, &ctx->path, &ctx->token, &ctx->check)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_agenda_check_poll(r, ctx->check);

    if (rc == NGX_AGAIN) {
        return NGX_AGAIN;
    }

    return ngx_http_agenda_subscriber_checked(r, ctx, rc);
}


/* What the shards' answer (the status of the check's flow) means. */

static ngx_int_t
ngx_http_agenda_subscriber_checked(ngx_http_request_t *r,
    ngx_http_agenda_sub_ctx_t *ctx, ngx_int_t status)
{
    if (status == NGX_HTTP_OK) {

        /* a message id: first what nchan holds (ngx_agenda_resume.c) */

        if (ctx->resume.msgid.len > 0) {

            if (!ctx->resume.asked) {
                if (ngx_http_agenda_resume_ask(r, &ctx->channel,
                                               &ctx->resume)
                    != NGX_OK)
                {
                    return NGX_HTTP_INTERNAL_SERVER_ERROR;
                }

                return NGX_AGAIN;
            }

            if (!ctx->resume.done) {
                return NGX_AGAIN;
            }

            ngx_http_agenda_resume_decide(&ctx->resume, ngx_time());
        }

        /*
         * Every subrequest of the check was the active one when it ended,
         * so none waits in r->postponed (see ngx_http_agenda_check_start);
         * one that did would swallow nchan's output.
         */

        if (r->postponed != NULL) {
            ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                          "agenda: subscriber check left a subrequest "
                          "behind");
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (ngx_http_agenda_subscriber_arm(r, ctx) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ctx->allowed = 1;
        return NGX_DECLINED;
    }

    if (status == NGX_HTTP_UNAUTHORIZED) {
        return ngx_http_agenda_subscriber_refuse(r, status,
                   "unauthenticated", "the access token is not valid");
    }

    if (status == NGX_HTTP_SERVICE_UNAVAILABLE
        || status >= NGX_HTTP_INTERNAL_SERVER_ERROR || status < 200)
    {
        return ngx_http_agenda_subscriber_refuse(r,
                   NGX_HTTP_SERVICE_UNAVAILABLE, "unavailable",
                   "the service is temporarily unavailable; retry shortly");
    }

    return ngx_http_agenda_subscriber_refuse(r, NGX_HTTP_FORBIDDEN,
               "forbidden", "you may only subscribe to your own channel "
               "and to those of your groups");
}


/*
 * A subscription is watched while it lasts, and ended (its client then
 * subscribes again through this guard) as soon as the token it was made
 * with is no longer valid:
 *
 *   - when the token expires (its exp and the leeway a token is given);
 *   - when this edge learns that the token was revoked: the auth cache
 *     holds a higher token version for its user.  A password change made
 *     here stores the new version as soon as the shard confirms it, so a
 *     group subscription made with a stolen token ends within
 *     ngx_http_agenda_auth_cache_recheck() of the change (a user's own
 *     channel is deleted at once).  A change made through another edge,
 *     or one whose outcome this edge never learnt (it then forgets the
 *     entry), is seen here when this edge next learns the user's version
 *     (a request of that user), or never: then expiry bounds it, as it
 *     bounds REST access there for the cache's time to live.
 *
 * A membership lost while nobody closed the group's channel (see struct
 * agenda_flow_notification.close) is bounded by expiry as well.
 */

static ngx_int_t
ngx_http_agenda_subscriber_arm(ngx_http_request_t *r,
    ngx_http_agenda_sub_ctx_t *ctx)
{
    ngx_pool_cleanup_t           *cln;
    ngx_http_agenda_main_conf_t  *amcf;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_agenda_module);

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_agenda_subscriber_disarm;
    cln->data = &ctx->watch;

    ctx->cache = amcf->auth_cache;
    ctx->connection = r->connection;

    ctx->watch.handler = ngx_http_agenda_subscriber_watch;
    ctx->watch.data = ctx;
    ctx->watch.log = r->connection->log;
    ctx->watch.cancelable = 1;   /* no reason to delay a graceful stop */

    ngx_http_agenda_subscriber_schedule(ctx);

    return NGX_OK;
}


/* The next look: at the token's expiry, or sooner to ask the cache. */

static void
ngx_http_agenda_subscriber_schedule(ngx_http_agenda_sub_ctx_t *ctx)
{
    time_t      left;
    ngx_msec_t  delay;

    left = ctx->expires - ngx_time();

    if (left < 1) {
        left = 1;
    }

    delay = (ngx_msec_t) left * 1000;

    if (ctx->cache != NULL) {
        delay = ngx_min(delay, ngx_http_agenda_auth_cache_recheck(ctx->cache));
    }

    ngx_add_timer(&ctx->watch, delay);
}


static void
ngx_http_agenda_subscriber_watch(ngx_event_t *ev)
{
    ngx_http_agenda_sub_ctx_t *ctx = ev->data;

    if (ngx_time() >= ctx->expires) {
        ngx_http_agenda_subscriber_end(ctx,
            "the subscription's access token expired");
        return;
    }

    if (ngx_http_agenda_auth_cache_revoked(ctx->cache, ctx->user.data,
                                           ctx->user.len, ctx->token_version))
    {
        ngx_http_agenda_subscriber_end(ctx,
            "the subscription's access token was revoked");
        return;
    }

    /* a group's channel closed since its check began (a member left, the
     * group was deleted): ngx_http_agenda_auth_cache_mark() */

    if (ngx_http_agenda_group_channel(ctx->channel.data, ctx->channel.len)
        && ngx_http_agenda_auth_cache_revoked(ctx->cache, ctx->channel.data,
                                              ctx->channel.len,
                                              (uint64_t) ctx->since))
    {
        ngx_http_agenda_subscriber_end(ctx,
            "the subscription's group channel was closed");
        return;
    }

    ngx_http_agenda_subscriber_schedule(ctx);
}


static void
ngx_http_agenda_subscriber_end(ngx_http_agenda_sub_ctx_t *ctx,
    const char *why)
{
    ngx_err_t          err;
    ngx_uint_t         level;
    ngx_connection_t  *c = ctx->connection;

    ngx_log_error(NGX_LOG_INFO, c->log, 0, "agenda: %s", why);

    /*
     * Closed as if the client had gone: its read event reports the hang
     * up, and nchan forgets the subscriber and ends the request the way
     * it does for every client that disconnects.
     */

    if (shutdown(c->fd, SHUT_RDWR) == -1) {
        err = ngx_socket_errno;

        /* ENOTCONN: the client's reset came first, and is being read */

        level = (err == NGX_ENOTCONN) ? NGX_LOG_INFO : NGX_LOG_ALERT;

        ngx_log_error(level, c->log, err,
                      "agenda: shutdown() of an ended subscription failed");
    }
}


static void
ngx_http_agenda_subscriber_disarm(void *data)
{
    ngx_event_t  *ev = data;

    if (ev->timer_set) {
        ngx_del_timer(ev);
    }
}


/* Answers the refusal itself and ends the request (NGX_DONE). */

static ngx_int_t
ngx_http_agenda_subscriber_refuse(ngx_http_request_t *r, ngx_int_t status,
    const char *code, const char *message)
{
    ngx_table_elt_t  *h;

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "agenda: subscription refused: %s", message);

    /* nobody reads a refused request's body: unread, its bytes would be
     * parsed as the connection's next request */

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        r->keepalive = 0;
    }

    if (status == NGX_HTTP_NOT_ALLOWED) {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "Allow");
        ngx_str_set(&h->value, "GET");
    }

    if (status == NGX_HTTP_UNAUTHORIZED
        || status == NGX_HTTP_SERVICE_UNAVAILABLE)
    {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;

        if (status == NGX_HTTP_UNAUTHORIZED) {
            ngx_str_set(&h->key, "WWW-Authenticate");
            ngx_str_set(&h->value, "Bearer");

        } else {
            ngx_str_set(&h->key, "Retry-After");
            ngx_str_set(&h->value, "1");
        }
    }

    /* the answer is complete: the remaining phases must not run */

    ngx_http_finalize_request(r,
        ngx_http_agenda_send_error(r, status, code, message));

    return NGX_DONE;
}


/* NGX_OK with ctx->channel set, or the status to refuse with. */

static ngx_int_t
ngx_http_agenda_subscriber_check(ngx_http_request_t *r,
    ngx_http_agenda_sub_ctx_t *ctx, const char **code, const char **message)
{
    int                           rc;
    ngx_uint_t                    escaped;
    ngx_str_t                     value, token, query_token, own;
    ngx_table_elt_t              *h;
    struct agenda_jwt_claims      claims;
    ngx_http_agenda_main_conf_t  *amcf;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_agenda_module);

    *code = "bad_request";

    /* 0. a token in the query string is copied, then blanked where the
     *    error log would quote it, before anything can be logged */

    ngx_str_null(&query_token);
    escaped = 0;

    if (ngx_http_arg(r, (u_char *) "access_token", 12, &value) == NGX_OK) {

        /* a token is written without escapes: one with them is another
         * key for the per-token socket limit (gen-nginx keys it on the
         * raw parameter) while naming the same token; so the raw value,
         * refused below when it has any, is the token */

        escaped = ngx_strlchr(value.data, value.data + value.len, '%')
                  != NULL;

        query_token.data = ngx_pnalloc(r->pool, value.len + 1);
        if (query_token.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_memcpy(query_token.data, value.data, value.len);
        query_token.data[value.len] = '\0';
        query_token.len = value.len;
    }

    ngx_http_agenda_redact_tokens(r);

    if (escaped) {
        *code = "unauthenticated";
        *message = "write the access_token parameter as the token is, "
                   "without %-escapes";
        return NGX_HTTP_UNAUTHORIZED;
    }

    /* 1. a subscription is a GET without a body */

    if (r->method != NGX_HTTP_GET) {
        *code = "method_not_allowed";
        *message = "subscribe with GET (a WebSocket upgrade)";
        return NGX_HTTP_NOT_ALLOWED;
    }

    if (r->headers_in.content_length_n > 0 || r->headers_in.chunked) {
        *message = "a subscription has no request body";
        return NGX_HTTP_BAD_REQUEST;
    }

    /*    and its message ids, before nchan parses them */

    if (r->headers_in.if_none_match || r->headers_in.if_modified_since) {
        *message = "If-None-Match and If-Modified-Since are not accepted "
                   "here; resume with last_event_id";
        return NGX_HTTP_BAD_REQUEST;
    }

    for (h = ngx_http_agenda_find_header(r, "Last-Event-ID", 13, NULL);
         h != NULL;
         h = ngx_http_agenda_find_header(r, "Last-Event-ID", 13, h))
    {
        if (!ngx_http_agenda_msgid_valid(h->value.data, h->value.len)) {
            *message = "Last-Event-ID must be <time>:<tag>, two decimal "
                       "numbers";
            return NGX_HTTP_BAD_REQUEST;
        }

        /* the first one, as nchan took it: the header before the
         * parameter ($agenda_last_event_id gives nchan this one) */

        if (ctx->resume.msgid.len == 0) {
            ctx->resume.msgid = h->value;
        }
    }

    rc = ngx_http_agenda_arg(r, "last_event_id", 13, &value);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_OK) {
        if (!ngx_http_agenda_msgid_valid(value.data, value.len)) {
            *message = "last_event_id must be <time>:<tag>, two decimal "
                       "numbers";
            return NGX_HTTP_BAD_REQUEST;
        }

        if (ctx->resume.msgid.len == 0) {
            ctx->resume.msgid = value;
        }
    }

    /* 2. the browser's origin */

    h = ngx_http_agenda_find_header(r, "Origin", 6, NULL);

    if (h != NULL
        && (amcf->allowed_origin.len == 0
            || h->value.len != amcf->allowed_origin.len
            || ngx_strncasecmp(h->value.data, amcf->allowed_origin.data,
                               h->value.len)
               != 0))
    {
        *code = "forbidden";
        *message = "this Origin may not subscribe";
        return NGX_HTTP_FORBIDDEN;
    }

    /* 3. the access token */

    *code = "unauthenticated";
    token.len = 0;

    if (r->headers_in.authorization != NULL) {
        value = r->headers_in.authorization->value;

        if (value.len > 7
            && ngx_strncasecmp(value.data, (u_char *) "Bearer ", 7) == 0)
        {
            token.data = value.data + 7;
            token.len = value.len - 7;
        }

    } else {
        token = query_token;
    }

    if (token.len == 0 || token.len > AGENDA_JWT_MAX_TOKEN) {
        *message = "an access token is needed (Authorization: Bearer, or "
                   "the access_token parameter)";
        return NGX_HTTP_UNAUTHORIZED;
    }

    if (amcf->jwt.alg == 0) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = agenda_jwt_verify_memo(&amcf->jwt, amcf->jwt_memo,
                                (const char *) token.data, token.len,
                                (int64_t) ngx_time(), &claims);

    if (rc != AGENDA_JWT_OK) {
        *message = "the access token is not valid";
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "agenda: subscriber token refused: %s",
                      agenda_jwt_strerror(rc));
        return NGX_HTTP_UNAUTHORIZED;
    }

    /* 4. the channel, and what the shards must confirm (5.) */

    ctx->token = token;
    ctx->expires = (time_t) claims.exp + (time_t) amcf->jwt.leeway_s;
    ctx->token_version = claims.token_version;

    own.data = ngx_pnalloc(r->pool, sizeof("user/") - 1 + sizeof(claims.sub));
    if (own.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    own.len = ngx_sprintf(own.data, "user/%s", claims.sub) - own.data;

    ctx->channel = own;

    /* the auth cache's key for the user (see the subscription's watch):
     * the name after "user/", folded already (the token check refuses a
     * sub that is not) */

    ctx->user.data = own.data + sizeof("user/") - 1;
    ctx->user.len = own.len - (sizeof("user/") - 1);
    ngx_str_set(&ctx->path, "/me");

    rc = ngx_http_agenda_arg(r, "channel", 7, &value);

    if (rc != NGX_OK) {
        return rc == NGX_ERROR ? NGX_HTTP_INTERNAL_SERVER_ERROR : NGX_OK;
    }

    if (value.len == own.len
        && ngx_strncmp(value.data, own.data, own.len) == 0)
    {
        return NGX_OK;
    }

    if (ngx_http_agenda_group_channel(value.data, value.len)) {
        ctx->channel = value;

        /* "group/<id>" -> "/groups/<id>" */

        ctx->path.len = sizeof("/groups/") - 1 + ctx->channel.len
                        - (sizeof("group/") - 1);
        ctx->path.data = ngx_pnalloc(r->pool, ctx->path.len);
        if (ctx->path.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_memcpy(ngx_cpymem(ctx->path.data, "/groups/", 8),
                   value.data + sizeof("group/") - 1,
                   ctx->channel.len - (sizeof("group/") - 1));

        return NGX_OK;
    }

    *code = "forbidden";
    *message = "you may only subscribe to your own channel and to those "
               "of your groups";
    return NGX_HTTP_FORBIDDEN;
}


/* "group/" and a group id: 16 lowercase hex digits (model.h). */

static ngx_int_t
ngx_http_agenda_group_channel(u_char *p, size_t len)
{
    size_t  i;

    if (len != sizeof("group/") - 1 + 16
        || ngx_strncmp(p, "group/", sizeof("group/") - 1) != 0)
    {
        return 0;
    }

    for (i = sizeof("group/") - 1; i < len; i++) {
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f'))) {
            return 0;
        }
    }

    return 1;
}


/* "<time>:<tag>": what nchan's parser handles without surprises. */

static ngx_int_t
ngx_http_agenda_msgid_valid(u_char *p, size_t len)
{
    ngx_int_t  at, tag;

    return len <= NGX_HTTP_AGENDA_MSGID_MAX
           && ngx_http_agenda_msgid_parse(p, len, &at, &tag) == NGX_OK;
}


/*
 * The first query parameter name, URL-decoded (as nchan decodes the ones
 * it reads) into a copy in the request pool: NGX_OK, NGX_DECLINED when
 * there is none, NGX_ERROR without memory.
 */

static ngx_int_t
ngx_http_agenda_arg(ngx_http_request_t *r, char *name, size_t len,
    ngx_str_t *value)
{
    u_char     *p, *dst, *src;
    ngx_str_t   raw;

    if (ngx_http_arg(r, (u_char *) name, len, &raw) != NGX_OK) {
        return NGX_DECLINED;
    }

    p = ngx_pnalloc(r->pool, raw.len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    dst = p;
    src = raw.data;
    ngx_unescape_uri(&dst, &src, raw.len, NGX_UNESCAPE_URI);
    *dst = '\0';

    value->data = p;
    value->len = dst - p;

    return NGX_OK;
}


/*
 * Overwrite with '*' the value of every access_token parameter in place.
 * nginx keeps the query string in the buffer of the request line, which
 * every error log line about this request quotes ("request: ..."): an
 * upstream refusing a connection during an election would otherwise write
 * the token to error.log.  The token was copied before; nothing after this
 * guard (nchan reads last_event_id, the channel comes from the context)
 * reads it there.
 */

static void
ngx_http_agenda_redact_tokens(ngx_http_request_t *r)
{
    u_char  *p, *last;

    static const size_t  name_len = sizeof("access_token=") - 1;

    p = r->args.data;
    last = p + r->args.len;

    while (p != NULL && p < last) {

        if ((size_t) (last - p) >= name_len
            && ngx_strncasecmp(p, (u_char *) "access_token=", name_len) == 0)
        {
            for (p += name_len; p < last && *p != '&'; p++) {
                *p = '*';
            }
        }

        p = ngx_strlchr(p, last, '&');

        if (p != NULL) {
            p++;
        }
    }
}


static ngx_table_elt_t *
ngx_http_agenda_find_header(ngx_http_request_t *r, char *name, size_t len,
    ngx_table_elt_t *after)
{
    ngx_uint_t        i, seen;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;
    seen = (after == NULL);

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (!seen) {
            if (&h[i] == after) {
                seen = 1;
            }

            continue;
        }

        if (h[i].key.len == len
            && ngx_strncasecmp(h[i].key.data, (u_char *) name, len) == 0)
        {
            return &h[i];
        }
    }
}


/* A string of an allowed subscription's context, at offset data:
 * not found before the guard allowed it, or when empty. */

static ngx_int_t
ngx_http_agenda_sub_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t                  *value;
    ngx_http_agenda_sub_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_agenda_module);

    if (ctx == NULL || ctx->kind != NGX_HTTP_AGENDA_CTX_SUBSCRIBER
        || !ctx->allowed)
    {
        v->not_found = 1;
        return NGX_OK;
    }

    value = (ngx_str_t *) ((u_char *) ctx + data);

    if (value->len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = value->len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->data = value->data;

    return NGX_OK;
}

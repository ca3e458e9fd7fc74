
/*
 * ngx_agenda_api.c — the "agenda_api" content handler: the executor of
 * agenda_flow.h.
 *
 * A client request below /api/v1 becomes a flow.  The handler reads the
 * body, starts the flow, and then does what agenda_flow_next() asks:
 *
 *   CALL     one in-memory, waited subrequest per call, all at once, to
 *            /_agenda/replica/<shard>/<id>/v1/{commands,queries}: an
 *            internal location that proxies to that one replica (see
 *            config/gen-nginx).  Commands and linearizable queries go to
 *            the leader the workers know (shared memory), stale queries
 *            round-robin over the replicas.  A 421 with X-Raft-Leader is
 *            followed at once (and remembered); a 421 without it, 502,
 *            503, 504 and 507 (that replica's disk is full) are retried on
 *            the next replica after a backoff of 50 ms doubling up to 1 s,
 *            with the same body and Idempotency-Key, until
 *            agenda_retry_budget is spent: then the flow hears the last
 *            507, or status 0.  The flow continues when every call of
 *            the action has its answer.
 *   HASH,    an nginx thread pool task (agenda_thread_pool), so argon2id
 *   VERIFY   never runs in a worker's event loop.
 *   RESPOND  one in-memory subrequest per notification to the internal
 *            nchan publisher location /_agenda/publish/<channel>, issued
 *            before the response is sent: nginx then holds the response
 *            body back until the publications are done (the postponed
 *            list), so a client that reads its answer can count on the
 *            notification being in nchan already; publishing is local and
 *            takes microseconds.  A failed publication is only logged:
 *            clients resynchronise through /changes.
 *
 * The main request waits with its write_event_handler set to
 * ngx_http_agenda_api_wake(): nginx posts the parent request whenever a
 * subrequest finishes, and the thread task's completion calls it too.  A
 * subrequest that finishes while it is not the active one is only marked
 * done (NGX_HTTP_SUBREQUEST_WAITED) and is drained by the postpone filter
 * when the response goes out, so every decision here looks at sr->done.
 *
 * Memory: everything lives in the request pool; the flow is freed and the
 * retry timers are deleted by a cleanup of that pool.  While a thread task
 * runs, r->main->blocked keeps the request (and so the task's memory)
 * alive even if the client goes away, and shard calls are not cut short
 * when it does (proxy_ignore_client_abort in config/gen-nginx), so a
 * write reaches its answer and its publications (the client's close is
 * hidden from nchan while they start: ngx_http_agenda_respond()).
 * agenda_max_calls
 * (default 40) bounds a request's shard calls, retries included.
 */


#include "ngx_agenda_module.h"

#include "agenda_flow.h"
#include "agenda_password.h"


#define NGX_HTTP_AGENDA_API_PREFIX     "/api/v1"
#define NGX_HTTP_AGENDA_BACKOFF_FIRST  50
#define NGX_HTTP_AGENDA_BACKOFF_MAX    1000


typedef enum {
    NGX_HTTP_AGENDA_RUN = 0,
    NGX_HTTP_AGENDA_WAIT_CALLS,
    NGX_HTTP_AGENDA_WAIT_TASK,
    NGX_HTTP_AGENDA_FINISHED
} ngx_http_agenda_state_e;


typedef enum {
    NGX_HTTP_AGENDA_CALL_RUNNING = 0,
    NGX_HTTP_AGENDA_CALL_BACKOFF,
    NGX_HTTP_AGENDA_CALL_DONE
} ngx_http_agenda_call_state_e;


typedef struct {
    ngx_uint_t                     kind;      /* NGX_HTTP_AGENDA_CTX_CALL */
    ngx_http_agenda_ctx_t         *ctx;
    const struct agenda_shard     *shard;
    ngx_uint_t                     command;   /* unsigned:1 */
    ngx_uint_t                     stale;     /* unsigned:1 */
    ngx_uint_t                     probe;     /* unsigned:1 GET /status */

    ngx_str_t                      body;      /* copies in the pool */
    ngx_str_t                      key;

    ngx_http_agenda_call_state_e   state;
    ngx_uint_t                     replica;   /* index of the target */
    ngx_uint_t                     hops;      /* hints followed at once */
    ngx_msec_t                     deadline;
    ngx_msec_t                     backoff;
    ngx_event_t                    timer;

    ngx_http_request_t            *sr;        /* the current attempt */
    ngx_int_t                      sr_status;

    /* a replica's 507, what the flow hears if no other replica answers
     * (503 storage_full to the client: retry with the same key, as for
     * any outcome the edge does not know) */
    ngx_str_t                      full;

    ngx_int_t                      status;    /* the answer for the flow */
    ngx_str_t                      answer;
} ngx_http_agenda_call_t;


struct ngx_http_agenda_ctx_s {
    ngx_uint_t                     kind;      /* NGX_HTTP_AGENDA_CTX_API */
    ngx_http_request_t            *request;
    struct agenda_flow            *flow;
    ngx_http_agenda_state_e        state;

    ngx_http_agenda_call_t        *calls;
    ngx_uint_t                     n_calls;
    ngx_uint_t                     used;      /* shard subrequests issued */

    enum agenda_flow_kind          task_kind;
    ngx_uint_t                     task_done; /* unsigned:1 */
    ngx_thread_task_t             *task;

    /* a check for another phase (ngx_http_agenda_check_start()): the
     * flow's RESPOND is not sent, its status is kept */
    ngx_uint_t                     check;     /* unsigned:1 */
    ngx_int_t                      check_status;

    /* runs the connection's posted requests after a publication that
     * nchan completed from its IPC handler (see publish_done) */
    ngx_event_t                    publish_wake;

    /* puts back the client's hang-up, hidden from nchan while this
     * request's publications start (see ngx_http_agenda_respond) */
    ngx_event_t                    eof_restore;
    unsigned                       hid_eof:1;
    unsigned                       hid_pending_eof:1;
};


/* what a password task needs, in the task's own memory */
typedef struct {
    enum agenda_flow_kind          kind;      /* HASH or VERIFY */
    char                          *password;
    size_t                         password_len;
    char                          *phc;       /* VERIFY */
    struct agenda_password_cost    cost;
    int                            result;
    char                           out[AGENDA_PASSWORD_HASH_LEN];
} ngx_http_agenda_kdf_t;


static void ngx_http_agenda_api_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_agenda_api_start(ngx_http_request_t *r,
    ngx_http_agenda_ctx_t *ctx);
static char *ngx_http_agenda_cstr(ngx_pool_t *pool, ngx_str_t *s);
static char *ngx_http_agenda_header(ngx_http_request_t *r, const char *name,
    size_t len);
static ngx_int_t ngx_http_agenda_body(ngx_http_request_t *r,
    const uint8_t **body, size_t *len);
static void ngx_http_agenda_api_cleanup(void *data);
static void ngx_http_agenda_api_run(ngx_http_request_t *r,
    ngx_http_agenda_ctx_t *ctx);
static void ngx_http_agenda_api_wake(ngx_http_request_t *r);
static void ngx_http_agenda_api_fail(ngx_http_request_t *r,
    ngx_http_agenda_ctx_t *ctx, ngx_uint_t status);

static ngx_int_t ngx_http_agenda_calls_start(ngx_http_request_t *r,
    ngx_http_agenda_ctx_t *ctx, const struct agenda_flow_action *a);
static ngx_int_t ngx_http_agenda_call_issue(ngx_http_request_t *r,
    ngx_http_agenda_call_t *call);
static ngx_int_t ngx_http_agenda_call_done(ngx_http_request_t *sr,
    void *data, ngx_int_t rc);
static void ngx_http_agenda_calls_check(ngx_http_request_t *r,
    ngx_http_agenda_ctx_t *ctx);
static void ngx_http_agenda_call_answer(ngx_http_request_t *r,
    ngx_http_agenda_call_t *call);
static void ngx_http_agenda_call_retry(ngx_http_request_t *r,
    ngx_http_agenda_call_t *call, ngx_uint_t at_once);
static void ngx_http_agenda_call_final(ngx_http_agenda_call_t *call,
    ngx_int_t status, ngx_str_t *answer);
static void ngx_http_agenda_call_timer(ngx_event_t *ev);
static ngx_int_t ngx_http_agenda_leader_hint(ngx_http_request_t *sr,
    const struct agenda_shard *shard);
static ngx_int_t ngx_http_agenda_bare_headers(ngx_http_request_t *sr);
static ngx_int_t ngx_http_agenda_set_body(ngx_http_request_t *sr,
    ngx_str_t *body);

static ngx_int_t ngx_http_agenda_task_start(ngx_http_request_t *r,
    ngx_http_agenda_ctx_t *ctx, const struct agenda_flow_action *a);
static void ngx_http_agenda_kdf_thread(void *data, ngx_log_t *log);
static void ngx_http_agenda_kdf_event(ngx_event_t *ev);

static void ngx_http_agenda_respond(ngx_http_request_t *r,
    ngx_http_agenda_ctx_t *ctx, const struct agenda_flow_action *a);
static void ngx_http_agenda_publish(ngx_http_request_t *r,
    const struct agenda_flow_notification *n);
static ngx_int_t ngx_http_agenda_publish_done(ngx_http_request_t *sr,
    void *data, ngx_int_t rc);
static void ngx_http_agenda_publish_wake(ngx_event_t *ev);
static void ngx_http_agenda_eof_restore(ngx_event_t *ev);

static ngx_int_t ngx_http_agenda_idempotency_key_variable(
    ngx_http_request_t *r, ngx_http_variable_value_t *v, uintptr_t data);


static ngx_http_variable_t  ngx_http_agenda_api_vars[] = {

    { ngx_string("agenda_idempotency_key"), NULL,
      ngx_http_agenda_idempotency_key_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


ngx_int_t
ngx_http_agenda_api_handler(ngx_http_request_t *r)
{
    ngx_int_t               rc;
    ngx_pool_cleanup_t     *cln;
    ngx_http_agenda_ctx_t  *ctx;

    if (r != r->main) {
        return NGX_HTTP_NOT_FOUND;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_agenda_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the cleanup first: whatever happens next is released with the pool */

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_agenda_api_cleanup;
    cln->data = ctx;

    ctx->kind = NGX_HTTP_AGENDA_CTX_API;
    ctx->request = r;

    ngx_http_set_ctx(r, ctx, ngx_http_agenda_module);

    /* bodies are small JSON documents: keep them in one memory buffer */

    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r, ngx_http_agenda_api_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


/*
 * The body is read (its reading holds a reference on the request, released
 * by the final ngx_http_finalize_request()): start the flow and run it.
 */

static void
ngx_http_agenda_api_body(ngx_http_request_t *r)
{
    ngx_int_t               rc;
    ngx_http_agenda_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_agenda_module);

    r->write_event_handler = ngx_http_agenda_api_wake;

    rc = ngx_http_agenda_api_start(r, ctx);

    if (rc != NGX_OK) {
        ngx_http_agenda_api_fail(r, ctx, rc);
        return;
    }

    ngx_http_agenda_api_run(r, ctx);
}


static ngx_int_t
ngx_http_agenda_api_start(ngx_http_request_t *r, ngx_http_agenda_ctx_t *ctx)
{
    size_t                        plen;
    ngx_str_t                     path;
    struct agenda_flow_env        env;
    struct agenda_flow_request    req;
    ngx_http_agenda_main_conf_t  *amcf;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_agenda_module);

    plen = sizeof(NGX_HTTP_AGENDA_API_PREFIX) - 1;

    if (r->uri.len <= plen
        || ngx_strncmp(r->uri.data, NGX_HTTP_AGENDA_API_PREFIX, plen) != 0
        || r->uri.data[plen] != '/')
    {
        return NGX_HTTP_NOT_FOUND;
    }

    path.data = r->uri.data + plen;
    path.len = r->uri.len - plen;

    /* the flow takes C strings: a decoded %00 cannot name anything */

    if (ngx_strlchr(path.data, path.data + path.len, '\0') != NULL) {
        return NGX_HTTP_BAD_REQUEST;
    }

    ngx_memzero(&env, sizeof(env));
    ngx_memzero(&req, sizeof(req));

    env.topo = amcf->topology;
    env.events_tag = amcf->events_tag;
    env.jwt = &amcf->jwt;
    env.jwt_memo = amcf->jwt_memo;
    env.tz = amcf->tz_db;
    env.now_s = (int64_t) ngx_time();
    env.allowed_origin = amcf->allowed_origin.len
                         ? (const char *) amcf->allowed_origin.data : NULL;
    env.auth_cache = ngx_http_agenda_auth_cache(r);

    req.method = ngx_http_agenda_cstr(r->pool, &r->method_name);
    req.path = ngx_http_agenda_cstr(r->pool, &path);

    if (req.method == NULL || req.path == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (r->args.len) {
        req.query = ngx_http_agenda_cstr(r->pool, &r->args);
        if (req.query == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    req.authorization = ngx_http_agenda_header(r, "Authorization", 13);
    req.if_match = ngx_http_agenda_header(r, "If-Match", 8);
    req.idempotency_key = ngx_http_agenda_header(r, "Idempotency-Key", 15);
    req.content_type = ngx_http_agenda_header(r, "Content-Type", 12);
    req.origin = ngx_http_agenda_header(r, "Origin", 6);
    req.client_addr = ngx_http_agenda_cstr(r->pool,
                                           &r->connection->addr_text);

    if (req.client_addr == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_agenda_body(r, &req.body, &req.body_len) != NGX_OK) {
        return NGX_HTTP_REQUEST_ENTITY_TOO_LARGE;
    }

    ctx->flow = agenda_flow_start(&env, &req);

    if (ctx->flow == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_OK;
}


/*
 * A check for another phase of r (the subscriber guard): the flow of
 * "GET <path>" with "Authorization: Bearer <token>", run by this executor
 * with r's subrequests, but its answer is not sent: its status is what
 * ngx_http_agenda_check_poll() reports.  The caller's handler is called
 * again by the phase engine whenever a subrequest of r finishes (nginx
 * posts r; its write handler is ngx_http_core_run_phases) and then polls.
 * A check must only use flows whose actions make one call each: a
 * finished subrequest then never waits in r->postponed, which would hold
 * back the output of the phase that follows.
 */

ngx_int_t
ngx_http_agenda_check_start(ngx_http_request_t *r, ngx_str_t *path,
    ngx_str_t *token, ngx_http_agenda_ctx_t **out)
{
    u_char                       *p;
    ngx_pool_cleanup_t           *cln;
    ngx_http_agenda_ctx_t        *ctx;
    struct agenda_flow_env        env;
    struct agenda_flow_request    req;
    ngx_http_agenda_main_conf_t  *amcf;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_agenda_module);

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_agenda_ctx_t));
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_agenda_api_cleanup;
    cln->data = ctx;

    ctx->kind = NGX_HTTP_AGENDA_CTX_API;
    ctx->request = r;
    ctx->check = 1;

    ngx_memzero(&env, sizeof(env));
    ngx_memzero(&req, sizeof(req));

    env.topo = amcf->topology;
    env.events_tag = amcf->events_tag;
    env.jwt = &amcf->jwt;
    env.jwt_memo = amcf->jwt_memo;
    env.tz = amcf->tz_db;
    env.now_s = (int64_t) ngx_time();

    /* a subscription's token is checked like a request's, same cache */
    env.auth_cache = ngx_http_agenda_auth_cache(r);

    p = ngx_pnalloc(r->pool, sizeof("Bearer ") + token->len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    *ngx_cpymem(ngx_cpymem(p, "Bearer ", 7), token->data, token->len) = '\0';

    req.method = "GET";
    req.path = ngx_http_agenda_cstr(r->pool, path);
    req.authorization = (const char *) p;
    req.client_addr = ngx_http_agenda_cstr(r->pool,
                                           &r->connection->addr_text);

    if (req.path == NULL || req.client_addr == NULL) {
        return NGX_ERROR;
    }

    ctx->flow = agenda_flow_start(&env, &req);

    if (ctx->flow == NULL) {
        return NGX_ERROR;
    }

    *out = ctx;

    ngx_http_agenda_api_run(r, ctx);

    return NGX_OK;
}


/* NGX_AGAIN while the check runs, else the status of its answer. */

ngx_int_t
ngx_http_agenda_check_poll(ngx_http_request_t *r, ngx_http_agenda_ctx_t *ctx)
{
    if (ctx->state == NGX_HTTP_AGENDA_WAIT_CALLS) {
        ngx_http_agenda_calls_check(r, ctx);
    }

    if (ctx->state != NGX_HTTP_AGENDA_FINISHED) {
        return NGX_AGAIN;
    }

    return ctx->check_status;
}


/* A NUL-terminated copy of s in pool; NULL without memory. */

static char *
ngx_http_agenda_cstr(ngx_pool_t *pool, ngx_str_t *s)
{
    u_char  *p;

    p = ngx_pnalloc(pool, s->len + 1);
    if (p == NULL) {
        return NULL;
    }

    ngx_memcpy(p, s->data, s->len);
    p[s->len] = '\0';

    return (char *) p;
}


/*
 * The first request header called name, as a C string in the request pool,
 * or NULL when absent (or without memory: the flow then sees it absent,
 * which only ever refuses more).  nginx refuses NUL bytes in headers.
 */

static char *
ngx_http_agenda_header(ngx_http_request_t *r, const char *name, size_t len)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == len
            && ngx_strncasecmp(h[i].key.data, (u_char *) name, len) == 0)
        {
            return ngx_http_agenda_cstr(r->pool, &h[i].value);
        }
    }
}


/*
 * The request body as one piece of memory.  A body nginx wrote to a file
 * (client_body_buffer_size smaller than client_max_body_size) is refused
 * rather than read with blocking I/O.
 */

static ngx_int_t
ngx_http_agenda_body(ngx_http_request_t *r, const uint8_t **body,
    size_t *len)
{
    size_t        n;
    u_char       *p;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    *body = NULL;
    *len = 0;

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        return NGX_OK;
    }

    if (r->request_body->temp_file) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "agenda: request body buffered to a file; set "
                      "client_body_buffer_size to client_max_body_size");
        return NGX_ERROR;
    }

    n = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (b->in_file) {
            return NGX_ERROR;
        }

        n += b->last - b->pos;
    }

    if (n == 0) {
        return NGX_OK;
    }

    if (r->request_body->bufs->next == NULL) {
        *body = r->request_body->bufs->buf->pos;
        *len = n;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, n);
    if (p == NULL) {
        return NGX_ERROR;
    }

    *body = p;
    *len = n;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        p = ngx_cpymem(p, cl->buf->pos, cl->buf->last - cl->buf->pos);
    }

    return NGX_OK;
}


static void
ngx_http_agenda_api_cleanup(void *data)
{
    ngx_http_agenda_ctx_t  *ctx = data;

    ngx_uint_t  i;

    if (ctx->publish_wake.posted) {
        ngx_delete_posted_event(&ctx->publish_wake);
    }

    if (ctx->eof_restore.posted) {
        ngx_delete_posted_event(&ctx->eof_restore);
        ngx_http_agenda_eof_restore(&ctx->eof_restore);
    }

    for (i = 0; i < ctx->n_calls; i++) {
        if (ctx->calls[i].timer.timer_set) {
            ngx_del_timer(&ctx->calls[i].timer);
        }
    }

    if (ctx->flow != NULL) {
        agenda_flow_free(ctx->flow);
        ctx->flow = NULL;
    }
}


/*
 * Does what the flow says until it has to wait (subrequests, a thread
 * task) or has answered.
 */

static void
ngx_http_agenda_api_run(ngx_http_request_t *r, ngx_http_agenda_ctx_t *ctx)
{
    ngx_int_t                          rc;
    const struct agenda_flow_action   *a;

    while (ctx->state == NGX_HTTP_AGENDA_RUN) {

        a = agenda_flow_next(ctx->flow);

        switch (a->kind) {

        case AGENDA_FLOW_CALL:
            rc = ngx_http_agenda_calls_start(r, ctx, a);

            if (rc == NGX_ERROR) {
                ngx_http_agenda_api_fail(r, ctx,
                                         NGX_HTTP_INTERNAL_SERVER_ERROR);
                return;
            }

            if (rc == NGX_AGAIN) {
                ctx->state = NGX_HTTP_AGENDA_WAIT_CALLS;
                return;
            }

            /* every call failed at once: the answers are reported */

            break;

        case AGENDA_FLOW_HASH:
        case AGENDA_FLOW_VERIFY:
            if (ngx_http_agenda_task_start(r, ctx, a) == NGX_OK) {
                ctx->state = NGX_HTTP_AGENDA_WAIT_TASK;
                return;
            }

            if (a->kind == AGENDA_FLOW_HASH) {
                agenda_flow_hash_done(ctx->flow, NULL);

            } else {
                agenda_flow_verify_done(ctx->flow, -1);
            }

            break;

        case AGENDA_FLOW_RESPOND:
            if (ctx->check) {
                ctx->state = NGX_HTTP_AGENDA_FINISHED;
                ctx->check_status = a->status;
                return;
            }

            ngx_http_agenda_respond(r, ctx, a);
            return;

        default:
            ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                          "agenda: the flow asked for unknown action %d",
                          (int) a->kind);
            ngx_http_agenda_api_fail(r, ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
    }
}


/*
 * The main request's write_event_handler while a flow runs: nginx calls it
 * when a subrequest finished (the parent is posted), on write events, and
 * the thread task's completion calls it.  It only acts on what is done.
 */

static void
ngx_http_agenda_api_wake(ngx_http_request_t *r)
{
    ngx_http_agenda_kdf_t  *kdf;
    ngx_http_agenda_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_agenda_module);

    if (ctx == NULL || ctx->kind != NGX_HTTP_AGENDA_CTX_API) {
        return;
    }

    switch (ctx->state) {

    case NGX_HTTP_AGENDA_WAIT_CALLS:
        ngx_http_agenda_calls_check(r, ctx);
        return;

    case NGX_HTTP_AGENDA_WAIT_TASK:
        if (!ctx->task_done) {
            return;
        }

        kdf = ctx->task->ctx;
        ctx->state = NGX_HTTP_AGENDA_RUN;

        if (ctx->task_kind == AGENDA_FLOW_HASH) {
            agenda_flow_hash_done(ctx->flow,
                                  kdf->result == 0 ? kdf->out : NULL);
            ngx_explicit_memzero(kdf->out, sizeof(kdf->out));

        } else {
            agenda_flow_verify_done(ctx->flow, kdf->result);
        }

        ngx_http_agenda_api_run(r, ctx);
        return;

    default:
        return;
    }
}


/* Answers status with a JSON error and ends the request. */

static void
ngx_http_agenda_api_fail(ngx_http_request_t *r, ngx_http_agenda_ctx_t *ctx,
    ngx_uint_t status)
{
    const char  *code, *message;

    ctx->state = NGX_HTTP_AGENDA_FINISHED;

    if (ctx->check) {
        ctx->check_status = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return;
    }

    switch (status) {

    case NGX_HTTP_NOT_FOUND:
        code = "not_found";
        message = "no such endpoint";
        break;

    case NGX_HTTP_BAD_REQUEST:
        code = "bad_request";
        message = "the path holds a NUL byte";
        break;

    case NGX_HTTP_REQUEST_ENTITY_TOO_LARGE:
        code = "too_large";
        message = "the request body is too large";
        break;

    default:
        status = NGX_HTTP_INTERNAL_SERVER_ERROR;
        code = "internal";
        message = "the edge failed to serve this request; retry later";
        break;
    }

    ngx_http_finalize_request(r,
        ngx_http_agenda_send_error(r, status, code, message));
}


/* ---- CALL ---------------------------------------------------------------- */


/*
 * Copies the calls of action a into the request pool and issues them all.
 * Returns NGX_AGAIN when some are under way, NGX_OK when all have already
 * been answered (reported to the flow), NGX_ERROR without memory.
 */

static ngx_int_t
ngx_http_agenda_calls_start(ngx_http_request_t *r, ngx_http_agenda_ctx_t *ctx,
    const struct agenda_flow_action *a)
{
    u_char                          *p;
    ngx_uint_t                       i, leader;
    ngx_http_agenda_call_t          *call;
    ngx_http_agenda_loc_conf_t      *alcf;
    const struct agenda_flow_call   *fc;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_agenda_module);

    /* the previous action's calls are done: their timers are not set */

    ctx->calls = ngx_pcalloc(r->pool,
                             a->n_calls * sizeof(ngx_http_agenda_call_t));
    if (ctx->calls == NULL && a->n_calls) {
        return NGX_ERROR;
    }

    ctx->n_calls = a->n_calls;

    for (i = 0; i < a->n_calls; i++) {
        fc = &a->calls[i];
        call = &ctx->calls[i];

        call->kind = NGX_HTTP_AGENDA_CTX_CALL;
        call->ctx = ctx;
        call->shard = fc->shard;
        call->command = fc->command ? 1 : 0;
        call->stale = (fc->stale && !fc->command) ? 1 : 0;
        call->deadline = ngx_current_msec + alcf->retry_budget;
        call->backoff = NGX_HTTP_AGENDA_BACKOFF_FIRST;

        call->timer.handler = ngx_http_agenda_call_timer;
        call->timer.data = call;
        call->timer.log = r->connection->log;

        call->body.len = fc->body_len;
        call->body.data = ngx_pnalloc(r->pool, fc->body_len ? fc->body_len
                                                            : 1);
        if (call->body.data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(call->body.data, fc->body, fc->body_len);

        /*
         * Every retry of a command carries the same key, so the shard
         * applies it once; the flow normally gives one (the client's or
         * its own), else one is made here, unique enough per edge.
         */

        if (call->command) {
            if (fc->idempotency_key && fc->idempotency_key[0]) {
                call->key.len = ngx_strlen(fc->idempotency_key);
                call->key.data = ngx_pnalloc(r->pool, call->key.len);
                if (call->key.data == NULL) {
                    return NGX_ERROR;
                }

                ngx_memcpy(call->key.data, fc->idempotency_key,
                           call->key.len);

            } else {
                p = ngx_pnalloc(r->pool, 64);
                if (p == NULL) {
                    return NGX_ERROR;
                }

                call->key.data = p;
                call->key.len = ngx_sprintf(p, "edge-%xT-%xP-%xA-%08xD",
                                            ngx_time(), ngx_pid,
                                            r->connection->number,
                                            (uint32_t) ngx_random())
                                - p;
            }
        }

        if (call->shard == NULL || call->shard->n_replicas == 0) {
            ngx_http_agenda_call_final(call, 0, NULL);
            continue;
        }

        if (fc->status_of != NULL) {

            /* one replica's GET /status: that replica, one attempt */

            if (fc->status_of < call->shard->replicas
                || fc->status_of
                   >= call->shard->replicas + call->shard->n_replicas)
            {
                ngx_http_agenda_call_final(call, 0, NULL);
                continue;
            }

            call->probe = 1;
            call->command = 0;
            call->stale = 0;
            call->replica = fc->status_of - call->shard->replicas;

            if (ngx_http_agenda_call_issue(r, call) != NGX_OK) {
                ngx_http_agenda_call_final(call, 0, NULL);
            }

            continue;
        }

        leader = call->stale ? 0 : ngx_http_agenda_leader_get(r, call->shard);

        if (leader) {
            call->replica = agenda_topology_replica(call->shard, leader)
                            - call->shard->replicas;

        } else {
            call->replica = ngx_http_agenda_next_replica(r, call->shard);
        }

        if (ngx_http_agenda_call_issue(r, call) != NGX_OK) {
            ngx_http_agenda_call_final(call, 0, NULL);
        }
    }

    for (i = 0; i < ctx->n_calls; i++) {
        if (ctx->calls[i].state != NGX_HTTP_AGENDA_CALL_DONE) {
            return NGX_AGAIN;
        }
    }

    for (i = 0; i < ctx->n_calls; i++) {
        call = &ctx->calls[i];
        agenda_flow_call_done(ctx->flow, i, (int) call->status,
                              (const char *) call->answer.data,
                              call->answer.len);
    }

    return NGX_OK;
}


/*
 * One attempt of call: a subrequest to its current replica.  NGX_DECLINED
 * when this request may make no more subrequests, NGX_ERROR on failure.
 */

static ngx_int_t
ngx_http_agenda_call_issue(ngx_http_request_t *r, ngx_http_agenda_call_t *call)
{
    u_char                         *p;
    ngx_str_t                       uri, args, *argsp;
    ngx_http_request_t             *sr;
    ngx_http_agenda_ctx_t          *ctx;
    ngx_http_post_subrequest_t     *ps;
    ngx_http_agenda_loc_conf_t     *alcf;
    const struct agenda_replica    *rep;

    ctx = call->ctx;
    alcf = ngx_http_get_module_loc_conf(r, ngx_http_agenda_module);

    /*
     * The only bound on a request's subrequests: nginx's own
     * (r->subrequests) is a nesting depth, and every call here is a
     * child of the main request.
     */
    if (ctx->used >= alcf->max_calls) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "agenda: this request made %ui shard calls, the "
                      "most allowed (agenda_max_calls)", ctx->used);
        return NGX_DECLINED;
    }

    rep = &call->shard->replicas[call->replica];

    p = ngx_pnalloc(r->pool, sizeof("/_agenda/replica///v1/commands") - 1
                             + AGENDA_TOPO_NAME_LEN_MAX + NGX_INT_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    uri.data = p;

    if (call->probe) {
        uri.len = ngx_sprintf(p, "/_agenda/replica/%s/%uD/status",
                              call->shard->name, rep->id)
                  - p;

    } else {
        uri.len = ngx_sprintf(p, "/_agenda/replica/%s/%uD/v1/%s",
                              call->shard->name, rep->id,
                              call->command ? "commands" : "queries")
                  - p;
    }

    argsp = NULL;

    if (call->stale) {
        ngx_str_set(&args, "consistency=stale");
        argsp = &args;
    }

    ps = ngx_palloc(r->pool, sizeof(ngx_http_post_subrequest_t));
    if (ps == NULL) {
        return NGX_ERROR;
    }

    ps->handler = ngx_http_agenda_call_done;
    ps->data = call;

    if (ngx_http_subrequest(r, &uri, argsp, &sr, ps,
                            NGX_HTTP_SUBREQUEST_IN_MEMORY
                            |NGX_HTTP_SUBREQUEST_WAITED)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ctx->used++;

    /* the subrequest runs later (it is posted): set it up now */

    if (call->probe) {

        /* a GET without the client's body (a subrequest shares it) */

        sr->request_body = NULL;
        sr->headers_in.content_length_n = 0;
        sr->headers_in.content_length = NULL;
        sr->headers_in.chunked = 0;
        sr->headers_in.transfer_encoding = NULL;

    } else if (ngx_http_agenda_set_body(sr, &call->body) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_http_set_ctx(sr, call, ngx_http_agenda_module);

    call->sr = sr;
    call->sr_status = 0;
    call->state = NGX_HTTP_AGENDA_CALL_RUNNING;

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "agenda call %V (%s %uD) attempt %ui",
                   &uri, call->shard->name, rep->id, ctx->used);

    return NGX_OK;
}


/*
 * Makes sr a POST of body with "Content-Type: application/json".  sr's
 * headers_in is a copy of the client's: only this copy's fields are
 * replaced, the shared header list is not touched (the internal
 * locations do not pass the client's headers on).
 */

static ngx_int_t
ngx_http_agenda_set_body(ngx_http_request_t *sr, ngx_str_t *body)
{
    ngx_buf_t                 *b;
    ngx_chain_t               *cl;
    ngx_table_elt_t           *ct;
    ngx_http_request_body_t   *rb;

    rb = ngx_pcalloc(sr->pool, sizeof(ngx_http_request_body_t));
    b = ngx_calloc_buf(sr->pool);
    cl = ngx_alloc_chain_link(sr->pool);
    ct = ngx_pcalloc(sr->pool, sizeof(ngx_table_elt_t));

    if (rb == NULL || b == NULL || cl == NULL || ct == NULL) {
        return NGX_ERROR;
    }

    b->start = body->data;
    b->pos = body->data;
    b->last = body->data + body->len;
    b->end = b->last;
    b->memory = 1;
    b->last_buf = 1;
    b->last_in_chain = 1;

    cl->buf = b;
    cl->next = NULL;

    rb->bufs = cl;
    rb->buf = b;
    rb->rest = 0;

    sr->request_body = rb;
    sr->method = NGX_HTTP_POST;
    ngx_str_set(&sr->method_name, "POST");

    sr->headers_in.content_length_n = body->len;
    sr->headers_in.content_length = NULL;
    sr->headers_in.chunked = 0;
    sr->headers_in.transfer_encoding = NULL;

    ct->hash = 1;
    ngx_str_set(&ct->key, "Content-Type");
    ngx_str_set(&ct->value, "application/json");
    sr->headers_in.content_type = ct;

    return NGX_OK;
}


/*
 * The post-subrequest handler of a shard call.  nginx may run it more than
 * once for one subrequest (after an error page, and again when a waited
 * subrequest is finally drained): it only records the status while the
 * subrequest is not done, and the decision is taken by the parent.  Errors
 * are turned into a plain end of the subrequest (no error page, and never
 * NGX_ERROR, which would terminate the client's request).
 */

static ngx_int_t
ngx_http_agenda_call_done(ngx_http_request_t *sr, void *data, ngx_int_t rc)
{
    ngx_http_agenda_call_t *call = data;

    if (sr != call->sr || sr->done) {
        return rc;
    }

    if (rc == NGX_ERROR || rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        call->sr_status = (rc == NGX_ERROR) ? NGX_HTTP_BAD_GATEWAY : rc;

        if (sr->connection->error) {
            return rc;
        }

        return NGX_OK;
    }

    if (call->sr_status == 0) {
        call->sr_status = sr->headers_out.status;
    }

    return rc;
}


/* Looks at every call whose attempt is done; resumes the flow when all
 * calls have their answer. */

static void
ngx_http_agenda_calls_check(ngx_http_request_t *r, ngx_http_agenda_ctx_t *ctx)
{
    ngx_uint_t               i;
    ngx_http_agenda_call_t  *call;

    for (i = 0; i < ctx->n_calls; i++) {
        call = &ctx->calls[i];

        if (call->state == NGX_HTTP_AGENDA_CALL_RUNNING
            && call->sr != NULL && call->sr->done)
        {
            ngx_http_agenda_call_answer(r, call);
        }
    }

    for (i = 0; i < ctx->n_calls; i++) {
        if (ctx->calls[i].state != NGX_HTTP_AGENDA_CALL_DONE) {
            return;
        }
    }

    /* the action's memory belongs to the flow: report only now */

    for (i = 0; i < ctx->n_calls; i++) {
        call = &ctx->calls[i];
        agenda_flow_call_done(ctx->flow, i, (int) call->status,
                              (const char *) call->answer.data,
                              call->answer.len);
    }

    ctx->state = NGX_HTTP_AGENDA_RUN;

    ngx_http_agenda_api_run(r, ctx);
}


/* What to do with the answer of call's finished attempt. */

static void
ngx_http_agenda_call_answer(ngx_http_request_t *r, ngx_http_agenda_call_t *call)
{
    ngx_int_t                     status, hint;
    ngx_str_t                     answer;
    ngx_buf_t                    *b;
    ngx_http_request_t           *sr;
    const struct agenda_replica  *rep;

    sr = call->sr;
    status = call->sr_status ? call->sr_status
                             : (ngx_int_t) sr->headers_out.status;
    rep = &call->shard->replicas[call->replica];

    answer.data = NULL;
    answer.len = 0;

    if (sr->out != NULL && sr->out->buf != NULL) {
        b = sr->out->buf;
        answer.data = b->pos;
        answer.len = b->last - b->pos;
    }

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "agenda call to %s %uD answered %i (%uz bytes)",
                   call->shard->name, rep->id, status, answer.len);

    if (call->probe) {

        /* a status probe reports on that replica alone: no retry */

        if (status == NGX_HTTP_BAD_GATEWAY
            || status == NGX_HTTP_GATEWAY_TIME_OUT)
        {
            status = 0;
        }

        ngx_http_agenda_call_final(call, status, &answer);
        return;
    }

    switch (status) {

    case NGX_HTTP_MISDIRECTED_REQUEST:

        /* wrong_shard is a routing error: retrying cannot help */

        if (answer.len
            && ngx_strlcasestrn(answer.data, answer.data + answer.len,
                                (u_char *) "wrong_shard", 11 - 1)
               != NULL)
        {
            ngx_http_agenda_call_final(call, status, &answer);
            return;
        }

        hint = ngx_http_agenda_leader_hint(sr, call->shard);

        if (hint >= 0) {
            ngx_http_agenda_leader_set(r, call->shard,
                                       call->shard->replicas[hint].id);

            if ((ngx_uint_t) hint != call->replica
                && call->hops < call->shard->n_replicas)
            {
                call->hops++;
                call->replica = hint;
                ngx_http_agenda_call_retry(r, call, 1);
                return;
            }
        }

        ngx_http_agenda_leader_forget(r, call->shard, rep->id);
        call->replica = (call->replica + 1) % call->shard->n_replicas;
        ngx_http_agenda_call_retry(r, call, 0);
        return;

    case NGX_HTTP_INSUFFICIENT_STORAGE:

        /*
         * That replica's disk is full: it refused before proposing
         * anything.  Frozen, it stops heartbeating and the others elect
         * a leader that can store; it stays "leader" in its own eyes
         * meanwhile, so it is no leader to remember.  If no replica has
         * room, the client hears this 507 when the budget is spent.
         */

        call->full.len = answer.len;
        call->full.data = answer.len ? ngx_pstrdup(r->pool, &answer) : NULL;

        if (call->full.data == NULL) {
            call->full.len = 0;
        }

        /* fall through */

    case 0:
    case NGX_HTTP_BAD_GATEWAY:
    case NGX_HTTP_SERVICE_UNAVAILABLE:
    case NGX_HTTP_GATEWAY_TIME_OUT:

        /*
         * No answer, or the replica cannot serve now (no leader yet,
         * shutting down, outcome unknown): another replica may know
         * better; the same Idempotency-Key makes a repeat harmless.
         */

        ngx_http_agenda_leader_forget(r, call->shard, rep->id);
        call->replica = (call->replica + 1) % call->shard->n_replicas;
        ngx_http_agenda_call_retry(r, call, 0);
        return;

    default:
        if (!call->command && !call->stale) {
            ngx_http_agenda_leader_set(r, call->shard, rep->id);
        }

        if (call->command && status < NGX_HTTP_INTERNAL_SERVER_ERROR) {
            ngx_http_agenda_leader_set(r, call->shard, rep->id);
        }

        ngx_http_agenda_call_final(call, status, &answer);
        return;
    }
}


/*
 * Tries call again on call->replica: at once when following a leader hint,
 * else after the backoff; once the retry budget is spent the flow hears
 * status 0.
 */

static void
ngx_http_agenda_call_retry(ngx_http_request_t *r,
    ngx_http_agenda_call_t *call, ngx_uint_t at_once)
{
    ngx_msec_t  now, delay;

    now = ngx_current_msec;

    if ((ngx_msec_int_t) (call->deadline - now) <= 0) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "agenda: shard \"%s\" did not answer within the "
                      "retry budget%s", call->shard->name,
                      call->full.len ? "; a replica's storage is full" : "");

        if (call->full.len) {
            ngx_http_agenda_call_final(call, NGX_HTTP_INSUFFICIENT_STORAGE,
                                       &call->full);

        } else {
            ngx_http_agenda_call_final(call, 0, NULL);
        }

        return;
    }

    if (at_once) {
        if (ngx_http_agenda_call_issue(r, call) != NGX_OK) {
            ngx_http_agenda_call_final(call, 0, NULL);
        }

        return;
    }

    call->hops = 0;

    /* from half to one and a half times the backoff: the calls one
     * election failed together do not all come back at the same moment */

    delay = call->backoff / 2
            + (ngx_msec_t) ngx_random() % (call->backoff + 1);

    if (delay > call->deadline - now) {
        delay = call->deadline - now;
    }

    call->backoff *= 2;

    if (call->backoff > NGX_HTTP_AGENDA_BACKOFF_MAX) {
        call->backoff = NGX_HTTP_AGENDA_BACKOFF_MAX;
    }

    call->state = NGX_HTTP_AGENDA_CALL_BACKOFF;
    call->sr = NULL;

    ngx_add_timer(&call->timer, delay);
}


static void
ngx_http_agenda_call_final(ngx_http_agenda_call_t *call, ngx_int_t status,
    ngx_str_t *answer)
{
    call->state = NGX_HTTP_AGENDA_CALL_DONE;
    call->status = status;

    if (answer != NULL) {
        call->answer = *answer;

    } else {
        call->answer.data = NULL;
        call->answer.len = 0;
    }
}


static void
ngx_http_agenda_call_timer(ngx_event_t *ev)
{
    ngx_connection_t        *c;
    ngx_http_request_t      *r;
    ngx_http_agenda_call_t  *call;

    call = ev->data;
    r = call->ctx->request;
    c = r->connection;

    ngx_http_set_log_request(c->log, r);

    if (ngx_http_agenda_call_issue(r, call) != NGX_OK) {
        ngx_http_agenda_call_final(call, 0, NULL);

        /*
         * The request's write handler looks at the calls: the executor's
         * wake, or for a check the phase engine, which runs the checking
         * handler again.
         */

        if (ngx_http_post_request(r, NULL) != NGX_OK) {
            ngx_http_agenda_calls_check(r, call->ctx);
        }
    }

    ngx_http_run_posted_requests(c);
}


/*
 * The replica index named by the X-Raft-Leader header ("host:port") of a
 * 421 answer, or -1.
 */

static ngx_int_t
ngx_http_agenda_leader_hint(ngx_http_request_t *sr,
    const struct agenda_shard *shard)
{
    u_char                       *colon, *host, *end;
    size_t                        hlen;
    ngx_int_t                     port;
    ngx_uint_t                    i, j;
    ngx_list_part_t              *part;
    ngx_table_elt_t              *h;
    const struct agenda_replica  *rep;

    part = &sr->headers_out.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return -1;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].hash == 0 || h[i].key.len != sizeof("X-Raft-Leader") - 1
            || ngx_strncasecmp(h[i].key.data, (u_char *) "X-Raft-Leader",
                               sizeof("X-Raft-Leader") - 1)
               != 0)
        {
            continue;
        }

        host = h[i].value.data;
        end = host + h[i].value.len;

        colon = NULL;

        for (end = end - 1; end > host; end--) {
            if (*end == ':') {
                colon = end;
                break;
            }
        }

        if (colon == NULL) {
            return -1;
        }

        port = ngx_atoi(colon + 1,
                        h[i].value.data + h[i].value.len - colon - 1);
        if (port <= 0) {
            return -1;
        }

        hlen = colon - host;

        if (hlen > 2 && host[0] == '[' && host[hlen - 1] == ']') {
            host++;
            hlen -= 2;
        }

        for (j = 0; j < shard->n_replicas; j++) {
            rep = &shard->replicas[j];

            if (rep->http_port == port && ngx_strlen(rep->host) == hlen
                && ngx_strncasecmp((u_char *) rep->host, host, hlen) == 0)
            {
                return j;
            }
        }

        return -1;
    }
}


/* ---- HASH / VERIFY ------------------------------------------------------- */


static ngx_int_t
ngx_http_agenda_task_start(ngx_http_request_t *r, ngx_http_agenda_ctx_t *ctx,
    const struct agenda_flow_action *a)
{
    size_t                       phc_len;
    ngx_thread_task_t           *task;
    ngx_http_agenda_kdf_t       *kdf;
    ngx_http_agenda_loc_conf_t  *alcf;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_agenda_module);

    if (alcf->thread_pool == NULL) {
        return NGX_ERROR;
    }

    phc_len = (a->kind == AGENDA_FLOW_VERIFY && a->phc) ? ngx_strlen(a->phc)
                                                        : 0;

    task = ngx_thread_task_alloc(r->pool, sizeof(ngx_http_agenda_kdf_t)
                                          + a->password_len + phc_len + 2);
    if (task == NULL) {
        return NGX_ERROR;
    }

    /* the thread sees only this memory, never the pool or the flow */

    kdf = task->ctx;
    kdf->kind = a->kind;
    kdf->password = (char *) (kdf + 1);
    kdf->password_len = a->password_len;
    ngx_memcpy(kdf->password, a->password, a->password_len);
    kdf->password[a->password_len] = '\0';
    kdf->phc = kdf->password + a->password_len + 1;
    ngx_memcpy(kdf->phc, a->phc ? a->phc : "", phc_len);
    kdf->phc[phc_len] = '\0';
    kdf->result = -1;
    agenda_password_cost_default(&kdf->cost);

    task->handler = ngx_http_agenda_kdf_thread;
    task->event.handler = ngx_http_agenda_kdf_event;
    task->event.data = r;

    if (ngx_thread_task_post(alcf->thread_pool, task) != NGX_OK) {
        ngx_explicit_memzero(kdf->password, kdf->password_len);
        return NGX_ERROR;
    }

    ctx->task = task;
    ctx->task_kind = a->kind;
    ctx->task_done = 0;

    /* keeps the request, and so the task's memory, until the task ends */

    r->main->blocked++;
    r->aio = 1;

    return NGX_OK;
}


/* Runs in a thread of the pool: no nginx API here but the log. */

static void
ngx_http_agenda_kdf_thread(void *data, ngx_log_t *log)
{
    ngx_http_agenda_kdf_t *kdf = data;

    if (kdf->kind == AGENDA_FLOW_HASH) {
        kdf->result = agenda_password_hash(&kdf->cost, kdf->password,
                                           kdf->password_len, kdf->out);

    } else {
        kdf->result = agenda_password_verify(kdf->phc, kdf->password,
                                             kdf->password_len);
    }

    ngx_explicit_memzero(kdf->password, kdf->password_len);
}


static void
ngx_http_agenda_kdf_event(ngx_event_t *ev)
{
    ngx_connection_t       *c;
    ngx_http_request_t     *r;
    ngx_http_agenda_ctx_t  *ctx;

    r = ev->data;
    c = r->connection;

    ngx_http_set_log_request(c->log, r);

    r->main->blocked--;
    r->aio = 0;

    ctx = ngx_http_get_module_ctx(r, ngx_http_agenda_module);

    if (ctx != NULL && ctx->kind == NGX_HTTP_AGENDA_CTX_API) {
        ctx->task_done = 1;
    }

    /* our wake handler, or nginx's finalizer if the request was ended */

    r->write_event_handler(r);

    ngx_http_run_posted_requests(c);
}


/* ---- RESPOND ------------------------------------------------------------- */


static void
ngx_http_agenda_respond(ngx_http_request_t *r, ngx_http_agenda_ctx_t *ctx,
    const struct agenda_flow_action *a)
{
    size_t                              vlen;
    ngx_int_t                           rc;
    ngx_buf_t                          *b;
    ngx_uint_t                          i, content_type, cache_control;
    ngx_chain_t                         out;
    ngx_table_elt_t                    *h;
    ngx_connection_t                   *c;
    const struct agenda_flow_header    *fh;

    ctx->state = NGX_HTTP_AGENDA_FINISHED;

    /*
     * nchan 1.3.6 refuses (499) any request whose connection has seen its
     * client's close (nchan_pubsub_handler tests c->read->eof and
     * pending_eof first), and the publications share the client's
     * connection: a client that hung up before its answer would have
     * every notification of its committed write dropped.  So the flags are
     * hidden while the publications start: they run from the posted
     * requests of this event-loop cycle, before epoll can set them again,
     * and a posted event, which runs after those, puts them back.
     */

    c = r->connection;

    if (a->n_notifications && (c->read->eof || c->read->pending_eof)
        && !ctx->eof_restore.posted)
    {
        ctx->hid_eof = c->read->eof;
        ctx->hid_pending_eof = c->read->pending_eof;
        c->read->eof = 0;
        c->read->pending_eof = 0;

        ctx->eof_restore.handler = ngx_http_agenda_eof_restore;
        ctx->eof_restore.data = ctx;
        ctx->eof_restore.log = c->log;
        ngx_post_event(&ctx->eof_restore, &ngx_posted_events);
    }

    for (i = 0; i < a->n_notifications; i++) {
        ngx_http_agenda_publish(r, &a->notifications[i]);
    }

    /*
     * The flow stays alive until the pool goes, and nothing calls it again,
     * so its strings can be sent as they are.
     */

    r->headers_out.status = (a->status >= 100 && a->status <= 599)
                            ? (ngx_uint_t) a->status
                            : NGX_HTTP_INTERNAL_SERVER_ERROR;
    r->headers_out.content_length_n = a->body_len;

    content_type = 0;
    cache_control = 0;

    for (i = 0; i < a->n_headers; i++) {
        fh = &a->headers[i];

        if (fh->name == NULL || fh->value == NULL) {
            continue;
        }

        vlen = ngx_strlen(fh->value);

        if (ngx_strcasecmp((u_char *) fh->name, (u_char *) "Content-Type")
            == 0)
        {
            r->headers_out.content_type.data = (u_char *) fh->value;
            r->headers_out.content_type.len = vlen;
            r->headers_out.content_type_len = vlen;
            r->headers_out.content_type_lowcase = NULL;
            content_type = 1;
            continue;
        }

        if (ngx_strcasecmp((u_char *) fh->name, (u_char *) "Content-Length")
            == 0)
        {
            continue;
        }

        if (ngx_strcasecmp((u_char *) fh->name, (u_char *) "Cache-Control")
            == 0)
        {
            cache_control = 1;
        }

        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        h->hash = 1;
        h->key.data = (u_char *) fh->name;
        h->key.len = ngx_strlen(fh->name);
        h->value.data = (u_char *) fh->value;
        h->value.len = vlen;
    }

    if (!cache_control && ngx_http_agenda_no_store(r) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (!content_type && a->body_len) {
        ngx_str_set(&r->headers_out.content_type, "application/json");
        r->headers_out.content_type_len = r->headers_out.content_type.len;
        r->headers_out.content_type_lowcase = NULL;
    }

    if (a->body_len == 0) {
        r->header_only = 1;
    }

    /*
     * The flow has already answered If-Match and If-None-Match itself
     * (412 version_mismatch from the shard).  nginx's not_modified filter
     * would test them again against headers_out.etag, which we never set,
     * and turn every 200 of a PATCH, PUT or DELETE sent with If-Match into
     * a 412 after the write was applied, closing the connection without
     * an answer.
     */
    r->disable_not_modified = 1;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        ngx_http_finalize_request(r, rc);
        return;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        ngx_http_finalize_request(r, NGX_ERROR);
        return;
    }

    b->pos = (u_char *) a->body;
    b->last = b->pos + a->body_len;
    b->start = b->pos;
    b->end = b->last;
    b->memory = 1;
    b->last_buf = 1;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    ngx_http_finalize_request(r, ngx_http_output_filter(r, &out));
}


/*
 * Publishes n (or deletes its channel: n->close) through the internal
 * nchan publisher location.  The subrequest is in memory so nchan's
 * answer never reaches the client, and waited so that it is drained
 * before the response (see the top).
 */

static void
ngx_http_agenda_publish(ngx_http_request_t *r,
    const struct agenda_flow_notification *n)
{
    u_char                        ch;
    size_t                        clen, i;
    ngx_str_t                     channel, body;
    ngx_http_request_t           *sr;
    ngx_http_agenda_main_conf_t  *amcf;

    if (n->channel == NULL || (n->message == NULL && !n->close)) {
        return;
    }

    clen = ngx_strlen(n->channel);

    /* channel names are ours, but they become a URI: allow-list them */

    for (i = 0; i < clen; i++) {
        ch = (u_char) n->channel[i];

        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')
              || (ch >= '0' && ch <= '9') || ch == '/' || ch == '_'
              || ch == '-' || ch == '.' || ch == ':'))
        {
            clen = 0;
            break;
        }
    }

    if (clen == 0 || clen > 256) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "agenda: not publishing to malformed channel \"%s\"",
                      n->channel);
        return;
    }

    /* a group's channel closed: its subscriptions end at their next look
     * even if nchan never gets the DELETE (ngx_agenda_auth_cache.c) */

    if (n->close && ngx_strncmp(n->channel, "group/", 6) == 0) {
        amcf = ngx_http_get_module_main_conf(r, ngx_http_agenda_module);
        ngx_http_agenda_auth_cache_mark(amcf->auth_cache, n->channel,
                                        ngx_current_msec);
    }

    channel.data = (u_char *) n->channel;
    channel.len = clen;

    if (ngx_http_agenda_publisher_subrequest(r, &channel,
            ngx_http_agenda_publish_done,
            ngx_http_get_module_ctx(r, ngx_http_agenda_module), &sr)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "agenda: cannot publish to \"%s\"", n->channel);
        return;
    }

    if (n->close) {
        ngx_str_set(&body, "");

    } else {
        body.data = (u_char *) n->message;
        body.len = ngx_strlen(n->message);
    }

    if (ngx_http_agenda_set_body(sr, &body) != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "agenda: cannot publish to \"%s\"", n->channel);
        return;
    }

    if (n->close) {

        /* nchan deletes the channel and closes its subscribers (410) */

        sr->method = NGX_HTTP_DELETE;
        ngx_str_set(&sr->method_name, "DELETE");
    }
}


/*
 * A subrequest to nchan carries none of the client's headers: nchan reads
 * message ids (If-Modified-Since, If-None-Match, Last-Event-ID) in every
 * request, publications included, refusing them (400) when they are odd,
 * and keeps X-EventSource-Event with every message it stores.  A client's
 * write would otherwise decide whether its notifications are published,
 * and how much of nchan's shared memory each one takes.
 */

static ngx_int_t
ngx_http_agenda_bare_headers(ngx_http_request_t *sr)
{
    ngx_memzero(&sr->headers_in, sizeof(ngx_http_headers_in_t));

    if (ngx_list_init(&sr->headers_in.headers, sr->pool, 2,
                      sizeof(ngx_table_elt_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    sr->headers_in.content_length_n = -1;
    sr->headers_in.keep_alive_n = -1;

    return NGX_OK;
}


/*
 * An in-memory, waited subrequest of r to nchan's publisher location for
 * channel (/_agenda/publish/<channel>), without the client's headers (see
 * bare_headers); handler and data end it.  The publications of a write
 * and the resume guard's question about a channel (ngx_agenda_resume.c)
 * both go this way.
 */

ngx_int_t
ngx_http_agenda_publisher_subrequest(ngx_http_request_t *r,
    ngx_str_t *channel, ngx_http_post_subrequest_pt handler, void *data,
    ngx_http_request_t **sr)
{
    u_char                      *p;
    ngx_str_t                    uri;
    ngx_http_post_subrequest_t  *ps;

    p = ngx_pnalloc(r->pool, sizeof("/_agenda/publish/") - 1 + channel->len);
    ps = ngx_palloc(r->pool, sizeof(ngx_http_post_subrequest_t));

    if (p == NULL || ps == NULL) {
        return NGX_ERROR;
    }

    uri.data = p;
    uri.len = ngx_cpymem(ngx_cpymem(p, "/_agenda/publish/",
                                    sizeof("/_agenda/publish/") - 1),
                         channel->data, channel->len)
              - p;

    ps->handler = handler;
    ps->data = data;

    if (ngx_http_subrequest(r, &uri, NULL, sr, ps,
                            NGX_HTTP_SUBREQUEST_IN_MEMORY
                            |NGX_HTTP_SUBREQUEST_WAITED)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_agenda_bare_headers(*sr);
}


/*
 * A publication that fails must not take the client's answer with it: a
 * subrequest ending in NGX_ERROR would terminate the main request, whose
 * write has committed, and the client would see its connection closed
 * without an answer.  So failures are logged and end the subrequest
 * plainly (unless the client's connection itself failed).
 */

static ngx_int_t
ngx_http_agenda_publish_done(ngx_http_request_t *sr, void *data,
    ngx_int_t rc)
{
    ngx_http_agenda_ctx_t  *ctx = data;

    /*
     * With several workers nchan completes a publication from its IPC
     * channel handler, which runs no posted requests: the parent woken by
     * this subrequest would wait until its client gave up.  A posted event
     * runs them in this same event-loop cycle.
     */

    if (ctx != NULL && !ctx->publish_wake.posted) {
        ctx->publish_wake.handler = ngx_http_agenda_publish_wake;
        ctx->publish_wake.data = sr->connection;
        ctx->publish_wake.log = sr->connection->log;
        ngx_post_event(&ctx->publish_wake, &ngx_posted_events);
    }

    if (rc != NGX_ERROR && rc < NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    if (sr->connection->error) {
        return rc;
    }

    ngx_log_error(NGX_LOG_WARN, sr->connection->log, 0,
                  "agenda: publishing to \"%V\" failed (%i); its "
                  "subscribers resynchronise through /changes",
                  &sr->uri, rc);

    return NGX_OK;
}


static void
ngx_http_agenda_publish_wake(ngx_event_t *ev)
{
    ngx_http_run_posted_requests(ev->data);
}


static void
ngx_http_agenda_eof_restore(ngx_event_t *ev)
{
    ngx_http_agenda_ctx_t  *ctx = ev->data;
    ngx_connection_t       *c;

    c = ctx->request->connection;

    if (ctx->hid_eof) {
        c->read->eof = 1;
    }

    if (ctx->hid_pending_eof) {
        c->read->pending_eof = 1;
    }
}


/* ---- variables ----------------------------------------------------------- */


ngx_int_t
ngx_http_agenda_api_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_agenda_api_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


/* $agenda_idempotency_key: the key of the shard call a subrequest makes;
 * empty elsewhere (proxy_set_header then sends no header). */

static ngx_int_t
ngx_http_agenda_idempotency_key_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_agenda_call_t  *call;

    call = ngx_http_get_module_ctx(r, ngx_http_agenda_module);

    if (call == NULL || call->kind != NGX_HTTP_AGENDA_CTX_CALL
        || call->key.len == 0)
    {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = call->key.len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->data = call->key.data;

    return NGX_OK;
}

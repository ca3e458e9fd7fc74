
/*
 * ngx_agenda_json.c — jansson values in request pools, and JSON answers.
 *
 * jansson allocates with malloc; every value the module creates while
 * handling a request is handed to ngx_http_agenda_json_track(), which makes
 * the request pool own that reference, so no path through a handler can
 * leak it.  Answers are serialized straight into a buffer of the request
 * pool.
 */


#include "ngx_agenda_module.h"


static void ngx_http_agenda_json_cleanup(void *data);


/*
 * Makes pool own the reference "json" (a new reference, e.g. the result of
 * json_pack()); it is released when the pool is destroyed.  Returns json,
 * borrowed from the pool from now on, or NULL if json is NULL or the cleanup
 * cannot be allocated (the reference is then released at once).
 */

json_t *
ngx_http_agenda_json_track(ngx_pool_t *pool, json_t *json)
{
    ngx_pool_cleanup_t  *cln;

    if (json == NULL) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(pool, 0);
    if (cln == NULL) {
        json_decref(json);
        return NULL;
    }

    cln->handler = ngx_http_agenda_json_cleanup;
    cln->data = json;

    return json;
}


static void
ngx_http_agenda_json_cleanup(void *data)
{
    json_decref(data);
}


/*
 * Sends body (borrowed) as the whole response with the given status and
 * "Content-Type: application/json".  Returns what a content handler returns.
 */

/*
 * Answers are one person's calendar, invitations or account: no cache may
 * keep them (a browser's disk cache included), whatever the client asked.
 */

ngx_int_t
ngx_http_agenda_no_store(ngx_http_request_t *r)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Cache-Control");
    ngx_str_set(&h->value, "no-store");

    return NGX_OK;
}


ngx_int_t
ngx_http_agenda_send_json(ngx_http_request_t *r, ngx_uint_t status,
    json_t *body)
{
    size_t        len;
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    len = json_dumpb(body, NULL, 0, JSON_COMPACT);
    if (len == 0) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "agenda: cannot serialize a JSON answer");
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (json_dumpb(body, (char *) b->pos, len, JSON_COMPACT) != len) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "agenda: JSON answer changed size while serialized");
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = b->pos + len;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    r->headers_out.status = status;
    r->headers_out.content_length_n = len;
    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    if (ngx_http_agenda_no_store(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/*
 * Sends {"error":{"code":code,"message":message}} with the given status;
 * code and message are borrowed C strings.
 */

ngx_int_t
ngx_http_agenda_send_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *code, const char *message)
{
    json_t  *body;

    body = ngx_http_agenda_json_track(r->pool,
               json_pack("{s:{s:s, s:s}}",
                         "error", "code", code, "message", message));
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_agenda_send_json(r, status, body);
}

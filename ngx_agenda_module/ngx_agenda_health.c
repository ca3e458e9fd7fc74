
/*
 * ngx_agenda_health.c — the "agenda_health" content handler.
 *
 * GET or HEAD answer 200 {"status":"ok","shards":N}, N being the number of
 * shards of the loaded topology; other methods answer 405 with a JSON error
 * and an Allow header.  It says that this nginx serves the agenda module
 * with a valid topology; it does not (yet) ask the shards anything.
 */


#include "ngx_agenda_module.h"


static ngx_int_t ngx_http_agenda_health_not_allowed(ngx_http_request_t *r);


ngx_int_t
ngx_http_agenda_health_handler(ngx_http_request_t *r)
{
    json_t                       *body;
    ngx_int_t                     rc;
    ngx_http_agenda_main_conf_t  *amcf;

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_http_agenda_health_not_allowed(r);
    }

    amcf = ngx_http_get_module_main_conf(r, ngx_http_agenda_module);

    body = ngx_http_agenda_json_track(r->pool,
               json_pack("{s:s, s:I}",
                         "status", "ok",
                         "shards", (json_int_t) amcf->topology->n_shards));
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_agenda_send_json(r, NGX_HTTP_OK, body);
}


static ngx_int_t
ngx_http_agenda_health_not_allowed(ngx_http_request_t *r)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Allow");
    ngx_str_set(&h->value, "GET, HEAD");

    return ngx_http_agenda_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                      "method_not_allowed",
                                      "this resource answers GET and HEAD");
}

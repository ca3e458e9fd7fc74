
/*
 * ngx_agenda_module.h — types and functions shared by the files of
 * ngx_http_agenda_module.
 *
 * Ownership: the topology is loaded once per configuration cycle by the
 * "agenda_topology" directive and released by a cleanup of that cycle's
 * pool; request code only borrows it (and everything route.h returns) for
 * the lifetime of the request.  jansson values used while handling a
 * request are tied to the request pool with ngx_http_agenda_json_track().
 */


#ifndef _NGX_AGENDA_MODULE_H_INCLUDED_
#define _NGX_AGENDA_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <jansson.h>

#include "topology.h"
#include "route.h"


typedef struct {
    ngx_str_t                    topology_file; /* absolute, NUL-terminated */
    struct agenda_topology      *topology;      /* NULL until loaded */

    /* the first directive that needs a topology, for the error message */
    ngx_str_t                    needs_topology;
    ngx_str_t                    needs_topology_file;
    ngx_uint_t                   needs_topology_line;
} ngx_http_agenda_main_conf_t;


typedef struct {
    ngx_msec_t                   retry_budget;
} ngx_http_agenda_loc_conf_t;


/* ngx_agenda_health.c */
ngx_int_t ngx_http_agenda_health_handler(ngx_http_request_t *r);

/* ngx_agenda_json.c */
json_t *ngx_http_agenda_json_track(ngx_pool_t *pool, json_t *json);
ngx_int_t ngx_http_agenda_send_json(ngx_http_request_t *r, ngx_uint_t status,
    json_t *body);
ngx_int_t ngx_http_agenda_send_error(ngx_http_request_t *r,
    ngx_uint_t status, const char *code, const char *message);


extern ngx_module_t  ngx_http_agenda_module;


#endif /* _NGX_AGENDA_MODULE_H_INCLUDED_ */


/*
 * ngx_agenda_module.h — types and functions shared by the files of
 * ngx_http_agenda_module.
 *
 * Ownership: the topology is loaded once per configuration cycle by the
 * "agenda_topology" directive and released by a cleanup of that cycle's
 * pool; request code only borrows it (and everything route.h returns) for
 * the lifetime of the request.  The JWT keys and settings live in the
 * cycle's pool too.  jansson values used while handling a request are tied
 * to the request pool with ngx_http_agenda_json_track(); a flow
 * (agenda_flow.h) is freed by a cleanup of the request pool.
 */


#ifndef _NGX_AGENDA_MODULE_H_INCLUDED_
#define _NGX_AGENDA_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <jansson.h>

#include "topology.h"
#include "route.h"
#include "agenda_jwt.h"
#include "agenda_jwt_memo.h"
#include "agenda_tz.h"


#if !(NGX_THREADS)
#error ngx_http_agenda_module needs nginx built --with-threads
#endif


/*
 * The first field of every request context of this module says what it
 * is: the same module slot holds a client request's context, a shard
 * call's (in its subrequest) or a subscriber's.
 */
/* agenda_retry_budget's ceiling (ms): well within the five minutes a
 * shard remembers a request id (raft_agent/session.h) */
#define NGX_HTTP_AGENDA_RETRY_BUDGET_MAX  60000

#define NGX_HTTP_AGENDA_CTX_API         1
#define NGX_HTTP_AGENDA_CTX_CALL        2
#define NGX_HTTP_AGENDA_CTX_SUBSCRIBER  3


/* the auth cache in shared memory (ngx_agenda_auth_cache.c) */
typedef struct ngx_http_agenda_auth_cache_s  ngx_http_agenda_auth_cache_t;

struct agenda_auth_cache;


/* what the workers share: the last known leader of every shard */
typedef struct {
    ngx_atomic_t                 leader[AGENDA_TOPO_MAX_SHARDS]; /* 0: none */
    ngx_atomic_t                 next[AGENDA_TOPO_MAX_SHARDS];   /* stale rr */
} ngx_http_agenda_shm_t;


typedef struct {
    ngx_str_t                    topology_file; /* absolute, NUL-terminated */
    struct agenda_topology      *topology;      /* NULL until loaded */
    int64_t                      events_tag;    /* of the topology's
                                                   events shards */

    /* the first directive that needs a topology, for the error message */
    ngx_str_t                    needs_topology;
    ngx_str_t                    needs_topology_file;
    ngx_uint_t                   needs_topology_line;

    /* the first directive that needs the JWT settings */
    ngx_str_t                    needs_jwt;

    /* agenda_jwt_*: NUL-terminated copies in the cycle's pool */
    ngx_str_t                    jwt_alg;
    ngx_str_t                    jwt_key_file;
    ngx_str_t                    jwt_verify_key_file;
    ngx_str_t                    jwt_issuer;
    ngx_str_t                    jwt_audience;
    time_t                       jwt_ttl;
    time_t                       jwt_leeway;
    struct agenda_jwt_config     jwt;           /* alg 0: not configured */

    ngx_str_t                    allowed_origin; /* "" when not pinned */

    ngx_shm_zone_t              *shm_zone;
    ngx_http_agenda_shm_t       *shm;           /* set by the zone's init */

    ngx_msec_t                   auth_cache_ttl;  /* 0: no auth cache */
    size_t                       auth_cache_size;
    ngx_http_agenda_auth_cache_t *auth_cache;   /* NULL: no auth cache */

    ngx_int_t                    jwt_memo_slots;  /* 0: no token memo */
    struct agenda_jwt_memo      *jwt_memo;      /* this worker's, or NULL */

    ngx_str_t                    zoneinfo;      /* NUL-terminated */
    struct agenda_tz_db         *tz_db;         /* NULL until loaded */
} ngx_http_agenda_main_conf_t;


typedef struct {
    ngx_msec_t                   retry_budget;
    ngx_uint_t                   max_calls;     /* subrequests per request */
    ngx_str_t                    thread_pool_name;
    ngx_thread_pool_t           *thread_pool;   /* NULL unless agenda_api */
    ngx_flag_t                   api;           /* agenda_api here */
    ngx_flag_t                   subscriber;    /* agenda_subscriber here */
} ngx_http_agenda_loc_conf_t;


/* ngx_agenda_module.c */
ngx_uint_t ngx_http_agenda_leader_get(ngx_http_request_t *r,
    const struct agenda_shard *shard);
void ngx_http_agenda_leader_set(ngx_http_request_t *r,
    const struct agenda_shard *shard, ngx_uint_t id);
void ngx_http_agenda_leader_forget(ngx_http_request_t *r,
    const struct agenda_shard *shard, ngx_uint_t id);
ngx_uint_t ngx_http_agenda_next_replica(ngx_http_request_t *r,
    const struct agenda_shard *shard);

/* ngx_agenda_auth_cache.c */
ngx_int_t ngx_http_agenda_auth_cache_init_conf(ngx_conf_t *cf,
    ngx_http_agenda_main_conf_t *amcf);
const struct agenda_auth_cache *ngx_http_agenda_auth_cache(
    ngx_http_request_t *r);
ngx_uint_t ngx_http_agenda_auth_cache_revoked(ngx_http_agenda_auth_cache_t *c,
    u_char *user, size_t len, uint64_t token_version);
ngx_msec_t ngx_http_agenda_auth_cache_recheck(ngx_http_agenda_auth_cache_t *c);
void ngx_http_agenda_auth_cache_mark(ngx_http_agenda_auth_cache_t *c,
    const char *channel, ngx_msec_t stamp);

/* ngx_agenda_health.c */
ngx_int_t ngx_http_agenda_health_handler(ngx_http_request_t *r);

/* ngx_agenda_api.c */
typedef struct ngx_http_agenda_ctx_s  ngx_http_agenda_ctx_t;

ngx_int_t ngx_http_agenda_api_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_agenda_check_start(ngx_http_request_t *r, ngx_str_t *path,
    ngx_str_t *token, ngx_http_agenda_ctx_t **out);
ngx_int_t ngx_http_agenda_check_poll(ngx_http_request_t *r,
    ngx_http_agenda_ctx_t *ctx);
ngx_int_t ngx_http_agenda_api_add_variables(ngx_conf_t *cf);
ngx_int_t ngx_http_agenda_publisher_subrequest(ngx_http_request_t *r,
    ngx_str_t *channel, ngx_http_post_subrequest_pt handler, void *data,
    ngx_http_request_t **sr);

/* ngx_agenda_resume.c: the message id a subscription resumes from */
typedef struct {
    ngx_str_t                    msgid;    /* the client's; emptied if unsafe */
    unsigned                     asked:1;  /* nchan was asked about the channel */
    unsigned                     done:1;   /* and answered */
    ngx_int_t                    status;   /* its answer's status, 0: none */
    ngx_str_t                    info;     /* and text */
    ngx_event_t                  wake;
} ngx_http_agenda_resume_t;

ngx_int_t ngx_http_agenda_resume_ask(ngx_http_request_t *r,
    ngx_str_t *channel, ngx_http_agenda_resume_t *rs);
void ngx_http_agenda_resume_decide(ngx_http_agenda_resume_t *rs, time_t now);
ngx_int_t ngx_http_agenda_msgid_parse(u_char *p, size_t len, ngx_int_t *at,
    ngx_int_t *tag);

/* ngx_agenda_subscriber.c */
ngx_int_t ngx_http_agenda_subscriber_init(ngx_conf_t *cf);
ngx_int_t ngx_http_agenda_subscriber_add_variables(ngx_conf_t *cf);

/* ngx_agenda_json.c */
json_t *ngx_http_agenda_json_track(ngx_pool_t *pool, json_t *json);
ngx_int_t ngx_http_agenda_no_store(ngx_http_request_t *r);
ngx_int_t ngx_http_agenda_send_json(ngx_http_request_t *r, ngx_uint_t status,
    json_t *body);
ngx_int_t ngx_http_agenda_send_error(ngx_http_request_t *r,
    ngx_uint_t status, const char *code, const char *message);


extern ngx_module_t  ngx_http_agenda_module;


#endif /* _NGX_AGENDA_MODULE_H_INCLUDED_ */

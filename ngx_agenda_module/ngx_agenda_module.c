
/*
 * ngx_agenda_module.c — the module definition and its configuration:
 * directives, main and location configuration, the topology's lifetime.
 *
 * Directives:
 *
 *   agenda_topology <file>;        http.  Loads and validates the cluster
 *                                  topology once, at configuration time, with
 *                                  the router library; a relative path is
 *                                  relative to the directory of nginx.conf.
 *   agenda_health;                 location.  GET/HEAD answer
 *                                  {"status":"ok","shards":N}.
 *   agenda_retry_budget <time>;    http, server, location; default 5s.  How
 *                                  long a shard call may keep retrying while
 *                                  a shard elects a leader (read by the
 *                                  routing of shard calls).
 */


#include "ngx_agenda_module.h"


#define NGX_HTTP_AGENDA_ERRLEN  1024


static char *ngx_http_agenda_topology(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_agenda_health(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static void ngx_http_agenda_need_topology(ngx_conf_t *cf, ngx_command_t *cmd);
static void ngx_http_agenda_topology_cleanup(void *data);
static void *ngx_http_agenda_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_agenda_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_agenda_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_agenda_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);


static ngx_command_t  ngx_http_agenda_commands[] = {

    { ngx_string("agenda_topology"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_agenda_topology,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("agenda_health"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_agenda_health,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("agenda_retry_budget"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_agenda_loc_conf_t, retry_budget),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_agenda_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    ngx_http_agenda_create_main_conf,      /* create main configuration */
    ngx_http_agenda_init_main_conf,        /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_agenda_create_loc_conf,       /* create location configuration */
    ngx_http_agenda_merge_loc_conf         /* merge location configuration */
};


ngx_module_t  ngx_http_agenda_module = {
    NGX_MODULE_V1,
    &ngx_http_agenda_module_ctx,           /* module context */
    ngx_http_agenda_commands,              /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


/*
 * Loading blocks, which is fine here: configuration is read by the master
 * (or by "nginx -t") before any request is served.  The topology is malloc'd
 * by the router library, so its release is registered as a cleanup of the
 * cycle's pool before it is loaded: whether this cycle fails later or is
 * replaced by a reload, the topology goes with it.
 */

static char *
ngx_http_agenda_topology(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_agenda_main_conf_t *amcf = conf;

    u_char               *p;
    ngx_str_t            *value, file;
    ngx_pool_cleanup_t   *cln;
    char                  err[NGX_HTTP_AGENDA_ERRLEN];

    if (amcf->topology_file.data != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;
    file = value[1];

    if (file.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" needs the path of a topology file",
                           &cmd->name);
        return NGX_CONF_ERROR;
    }

    if (ngx_conf_full_name(cf->cycle, &file, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    /* the router takes a C string */

    p = ngx_pnalloc(cf->pool, file.len + 1);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(p, file.data, file.len);
    p[file.len] = '\0';

    amcf->topology_file.data = p;
    amcf->topology_file.len = file.len;

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_agenda_topology_cleanup;
    cln->data = NULL;

    if (agenda_topology_load((const char *) p, &amcf->topology, err,
                             sizeof(err))
        != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%s", err);
        return NGX_CONF_ERROR;
    }

    cln->data = amcf->topology;

    return NGX_CONF_OK;
}


static char *
ngx_http_agenda_health(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler != NULL) {
        return "is duplicate, or the location already has a content handler";
    }

    clcf->handler = ngx_http_agenda_health_handler;

    ngx_http_agenda_need_topology(cf, cmd);

    return NGX_CONF_OK;
}


/*
 * Remembers the first directive that cannot work without "agenda_topology",
 * which may legitimately come later in the http block; the check itself is
 * in ngx_http_agenda_init_main_conf(), after the whole block is read.
 */

static void
ngx_http_agenda_need_topology(ngx_conf_t *cf, ngx_command_t *cmd)
{
    ngx_http_agenda_main_conf_t  *amcf;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_agenda_module);

    if (amcf->needs_topology.data != NULL) {
        return;
    }

    amcf->needs_topology = cmd->name;
    amcf->needs_topology_file = cf->conf_file->file.name;
    amcf->needs_topology_line = cf->conf_file->line;
}


static void
ngx_http_agenda_topology_cleanup(void *data)
{
    agenda_topology_free(data);
}


static void *
ngx_http_agenda_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_agenda_main_conf_t  *amcf;

    amcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_agenda_main_conf_t));
    if (amcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     amcf->topology_file = { 0, NULL };
     *     amcf->topology = NULL;
     *     amcf->needs_topology = { 0, NULL };
     *     amcf->needs_topology_file = { 0, NULL };
     *     amcf->needs_topology_line = 0;
     */

    return amcf;
}


static char *
ngx_http_agenda_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_agenda_main_conf_t *amcf = conf;

    if (amcf->needs_topology.data != NULL && amcf->topology == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"%V\" in %V:%ui needs \"agenda_topology\" in the "
                      "\"http\" block",
                      &amcf->needs_topology, &amcf->needs_topology_file,
                      amcf->needs_topology_line);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static void *
ngx_http_agenda_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_agenda_loc_conf_t  *alcf;

    alcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_agenda_loc_conf_t));
    if (alcf == NULL) {
        return NULL;
    }

    alcf->retry_budget = NGX_CONF_UNSET_MSEC;

    return alcf;
}


static char *
ngx_http_agenda_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_agenda_loc_conf_t *prev = parent;
    ngx_http_agenda_loc_conf_t *conf = child;

    ngx_conf_merge_msec_value(conf->retry_budget, prev->retry_budget, 5000);

    return NGX_CONF_OK;
}

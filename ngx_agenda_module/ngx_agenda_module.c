
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
 *   agenda_retry_budget <time>;    http, server, location; default 5s, at
 *                                  most 60s.  How long a shard call may keep
 *                                  retrying while a shard elects a leader.
 *   agenda_api;                    location.  Serves the public REST API
 *                                  (ngx_agenda_api.c) through agenda_flow.
 *   agenda_max_calls <n>;          http, server, location; default 40.  Shard
 *                                  subrequests (retries included) one client
 *                                  request may make; nginx allows 50 in all
 *                                  and the rest is kept for publishing.
 *   agenda_thread_pool <name>;     http, server, location; default
 *                                  "default".  The nginx thread pool that
 *                                  hashes and verifies passwords.
 *   agenda_subscriber;             location.  Guards an nchan websocket
 *                                  subscriber (ngx_agenda_subscriber.c).
 *   agenda_shared_zone <name> <size>;  http.  The shared memory holding the
 *                                  known leader of every shard; created
 *                                  automatically (agenda_leaders, 64k) when
 *                                  absent.
 *   agenda_jwt_alg <alg>;  agenda_jwt_key_file <file> [<public key file>];
 *   agenda_jwt_issuer <s>;  agenda_jwt_audience <s>;
 *   agenda_jwt_ttl <time>;  agenda_jwt_leeway <time>;   http.  Access
 *                                  tokens (agenda_jwt.h); the key files are
 *                                  read once, here, and must not be readable
 *                                  by group or others.
 *   agenda_allowed_origin <origin>;  http.  The one browser Origin allowed
 *                                  (e.g. https://localhost:8443).
 *   agenda_auth_cache_ttl <time>;  http; default 2s, at most 1h, 0 turns the
 *                                  cache off.  How long the workers keep an
 *                                  account's role and token version instead
 *                                  of asking the users shard (user.auth) on
 *                                  every request.  Password changes through
 *                                  this edge apply at once; one made through
 *                                  another edge or at the shard may go
 *                                  unnoticed here this long: a revoked token
 *                                  still works on this edge meanwhile
 *                                  (ngx_agenda_auth_cache.c).
 *   agenda_auth_cache_size <size>;  http; default 1m.  The shared zone
 *                                  "agenda_auth_cache" (about 8000 accounts
 *                                  per megabyte; the least recently used go
 *                                  when it is full).
 *   agenda_jwt_memo <n>;           http; default 1024, at most 65536, 0 turns
 *                                  it off.  Access tokens each worker
 *                                  remembers as verified (agenda_jwt_memo.h,
 *                                  about 1.2 KiB each): a client's next
 *                                  request with the same token only has its
 *                                  times checked.
 *   agenda_zoneinfo <dir>;         http; default /usr/share/zoneinfo, a
 *                                  relative path from nginx's prefix.  The
 *                                  tz database (TZif files, Debian's tzdata)
 *                                  that tells when days begin in an all-day
 *                                  event's time zone (agenda_tz.h); read
 *                                  once, here, so a reload picks up a new
 *                                  tzdata.  A zone without a file here makes
 *                                  its all-day events occupy UTC days.
 */


#include "ngx_agenda_module.h"
#include "agenda_flow.h"


#define NGX_HTTP_AGENDA_ERRLEN        1024
#define NGX_HTTP_AGENDA_KEY_MAX       16384
#define NGX_HTTP_AGENDA_SHM_SIZE      (64 * 1024)
#define NGX_HTTP_AGENDA_AUTH_TTL      2000          /* ms */
#define NGX_HTTP_AGENDA_AUTH_TTL_MAX  3600000       /* ms */
#define NGX_HTTP_AGENDA_ZONEINFO      "/usr/share/zoneinfo"
#define NGX_HTTP_AGENDA_AUTH_SIZE     (1024 * 1024)
#define NGX_HTTP_AGENDA_JWT_MEMO      1024          /* tokens per worker */
#define NGX_HTTP_AGENDA_JWT_MEMO_MAX  65536


static char *ngx_http_agenda_topology(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_agenda_health(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_agenda_api(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_agenda_subscriber(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_agenda_shared_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_agenda_jwt_key_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_agenda_set_cstr(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static void ngx_http_agenda_key_cleanup(void *data);
static void ngx_http_agenda_pkey_cleanup(void *data);
static ngx_int_t ngx_http_agenda_read_key(ngx_conf_t *cf, ngx_str_t *file,
    ngx_str_t *key);
static char *ngx_http_agenda_init_jwt(ngx_conf_t *cf,
    ngx_http_agenda_main_conf_t *amcf);
static ngx_int_t ngx_http_agenda_add_zone(ngx_conf_t *cf,
    ngx_http_agenda_main_conf_t *amcf, ngx_str_t *name, size_t size);
static ngx_int_t ngx_http_agenda_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_agenda_need_topology(ngx_conf_t *cf, ngx_command_t *cmd);
static ngx_int_t ngx_http_agenda_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_agenda_postconfiguration(ngx_conf_t *cf);
static void ngx_http_agenda_topology_cleanup(void *data);
static ngx_int_t ngx_http_agenda_full_cstr(ngx_conf_t *cf, ngx_str_t *name,
    ngx_uint_t conf_prefix);
static char *ngx_http_agenda_init_zoneinfo(ngx_conf_t *cf,
    ngx_http_agenda_main_conf_t *amcf);
static void ngx_http_agenda_tz_db_cleanup(void *data);
static void *ngx_http_agenda_create_main_conf(ngx_conf_t *cf);
static ngx_int_t ngx_http_agenda_init_process(ngx_cycle_t *cycle);
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

    { ngx_string("agenda_api"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_agenda_api,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("agenda_max_calls"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_agenda_loc_conf_t, max_calls),
      NULL },

    { ngx_string("agenda_thread_pool"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_agenda_loc_conf_t, thread_pool_name),
      NULL },

    { ngx_string("agenda_subscriber"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_agenda_subscriber,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("agenda_shared_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_agenda_shared_zone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("agenda_jwt_alg"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_agenda_set_cstr,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_agenda_main_conf_t, jwt_alg),
      NULL },

    { ngx_string("agenda_jwt_key_file"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_agenda_jwt_key_file,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("agenda_jwt_issuer"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_agenda_set_cstr,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_agenda_main_conf_t, jwt_issuer),
      NULL },

    { ngx_string("agenda_jwt_audience"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_agenda_set_cstr,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_agenda_main_conf_t, jwt_audience),
      NULL },

    { ngx_string("agenda_jwt_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_agenda_main_conf_t, jwt_ttl),
      NULL },

    { ngx_string("agenda_jwt_leeway"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_agenda_main_conf_t, jwt_leeway),
      NULL },

    { ngx_string("agenda_allowed_origin"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_agenda_set_cstr,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_agenda_main_conf_t, allowed_origin),
      NULL },

    { ngx_string("agenda_auth_cache_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_agenda_main_conf_t, auth_cache_ttl),
      NULL },

    { ngx_string("agenda_auth_cache_size"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_agenda_main_conf_t, auth_cache_size),
      NULL },

    { ngx_string("agenda_jwt_memo"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_agenda_main_conf_t, jwt_memo_slots),
      NULL },

    { ngx_string("agenda_zoneinfo"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_agenda_set_cstr,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_agenda_main_conf_t, zoneinfo),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_agenda_module_ctx = {
    ngx_http_agenda_preconfiguration,      /* preconfiguration */
    ngx_http_agenda_postconfiguration,     /* postconfiguration */

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
    ngx_http_agenda_init_process,          /* init process */
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

    /* the router takes a C string */

    if (ngx_http_agenda_full_cstr(cf, &file, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    amcf->topology_file = file;

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_agenda_topology_cleanup;
    cln->data = NULL;

    if (agenda_topology_load((const char *) file.data, &amcf->topology, err,
                             sizeof(err))
        != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%s", err);
        return NGX_CONF_ERROR;
    }

    cln->data = amcf->topology;

    amcf->events_tag = agenda_flow_events_tag(amcf->topology);
    if (amcf->events_tag < 0) {
        return NGX_CONF_ERROR;
    }

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


/*
 * name made absolute (from the configuration's directory with
 * conf_prefix, else from nginx's prefix) and NUL-terminated, in the
 * cycle's pool, for the libraries that take C strings.
 */

static ngx_int_t
ngx_http_agenda_full_cstr(ngx_conf_t *cf, ngx_str_t *name,
    ngx_uint_t conf_prefix)
{
    u_char  *p;

    if (ngx_conf_full_name(cf->cycle, name, conf_prefix) != NGX_OK) {
        return NGX_ERROR;
    }

    p = ngx_pnalloc(cf->pool, name->len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(p, name->data, name->len);
    p[name->len] = '\0';

    name->data = p;

    return NGX_OK;
}


static void
ngx_http_agenda_topology_cleanup(void *data)
{
    agenda_topology_free(data);
}


static char *
ngx_http_agenda_api(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_agenda_loc_conf_t *alcf = conf;

    ngx_http_core_loc_conf_t     *clcf;
    ngx_http_agenda_main_conf_t  *amcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler != NULL) {
        return "is duplicate, or the location already has a content handler";
    }

    clcf->handler = ngx_http_agenda_api_handler;
    alcf->api = 1;

    ngx_http_agenda_need_topology(cf, cmd);

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_agenda_module);

    if (amcf->needs_jwt.data == NULL) {
        amcf->needs_jwt = cmd->name;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_agenda_subscriber(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_agenda_loc_conf_t *alcf = conf;

    ngx_http_agenda_main_conf_t  *amcf;

    if (alcf->subscriber == 1) {
        return "is duplicate";
    }

    alcf->subscriber = 1;

    /* the guard asks the users shard for the token version (and
     * whether a group's channel is the subscriber's) */
    ngx_http_agenda_need_topology(cf, cmd);

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_agenda_module);

    if (amcf->needs_jwt.data == NULL) {
        amcf->needs_jwt = cmd->name;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_agenda_shared_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_agenda_main_conf_t *amcf = conf;

    ssize_t     size;
    ngx_str_t  *value;

    if (amcf->shm_zone != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;

    size = ngx_parse_size(&value[2]);

    if (size == NGX_ERROR || size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone size \"%V\" (at least %uz)",
                           &value[2], 8 * ngx_pagesize);
        return NGX_CONF_ERROR;
    }

    if (ngx_http_agenda_add_zone(cf, amcf, &value[1], size) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_agenda_jwt_key_file(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_agenda_main_conf_t *amcf = conf;

    ngx_str_t  *value;

    if (amcf->jwt_key_file.data != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;

    amcf->jwt_key_file = value[1];

    if (cf->args->nelts == 3) {
        amcf->jwt_verify_key_file = value[2];
    }

    return NGX_CONF_OK;
}


/*
 * A string directive whose value the nginx-free libraries read as a C
 * string: stored NUL-terminated, and refused when it holds a NUL.
 */

static char *
ngx_http_agenda_set_cstr(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    u_char     *p;
    ngx_str_t  *field, *value;

    field = (ngx_str_t *) ((u_char *) conf + cmd->offset);

    if (field->data != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 0
        || ngx_strlchr(value[1].data, value[1].data + value[1].len, '\0'))
    {
        return "needs a non-empty value";
    }

    p = ngx_pnalloc(cf->pool, value[1].len + 1);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(p, value[1].data, value[1].len);
    p[value[1].len] = '\0';

    field->data = p;
    field->len = value[1].len;

    return NGX_CONF_OK;
}


static void
ngx_http_agenda_key_cleanup(void *data)
{
    ngx_str_t  *key = data;

    ngx_explicit_memzero(key->data, key->len);
}


/*
 * Reads a key file into the cycle's pool, wiped when the cycle goes.  A
 * key readable by group or others is refused: the master reads it as root
 * at configuration time, the workers never need the file.  One trailing
 * newline is dropped, so a secret written by `echo` or `openssl rand -hex`
 * is the line itself.
 */

static ngx_int_t
ngx_http_agenda_read_key(ngx_conf_t *cf, ngx_str_t *file, ngx_str_t *key)
{
    ssize_t              n;
    ngx_fd_t             fd;
    ngx_str_t           *kept;
    ngx_file_info_t      fi;
    ngx_pool_cleanup_t  *cln;

    if (ngx_conf_full_name(cf->cycle, file, 1) != NGX_OK) {
        return NGX_ERROR;
    }

    fd = ngx_open_file(file->data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_open_file_n " \"%V\" failed", file);
        return NGX_ERROR;
    }

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_fd_info_n " \"%V\" failed", file);
        goto failed;
    }

    if (fi.st_mode & 077) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "key file \"%V\" is readable by group or others: "
                           "chmod 600 it", file);
        goto failed;
    }

    if (ngx_file_size(&fi) <= 0
        || ngx_file_size(&fi) > NGX_HTTP_AGENDA_KEY_MAX)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "key file \"%V\" must hold 1..%d bytes", file,
                           NGX_HTTP_AGENDA_KEY_MAX);
        goto failed;
    }

    kept = ngx_palloc(cf->pool, sizeof(ngx_str_t));
    key->data = ngx_pnalloc(cf->pool, ngx_file_size(&fi) + 1);
    cln = ngx_pool_cleanup_add(cf->pool, 0);

    if (kept == NULL || key->data == NULL || cln == NULL) {
        goto failed;
    }

    n = ngx_read_fd(fd, key->data, ngx_file_size(&fi));

    if (n != ngx_file_size(&fi)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "cannot read key file \"%V\"", file);
        ngx_explicit_memzero(key->data, ngx_file_size(&fi));
        goto failed;
    }

    key->len = n;

    if (key->len > 1 && key->data[key->len - 1] == '\n') {
        key->len--;
    }

    key->data[key->len] = '\0';

    *kept = *key;
    kept->len = n;
    cln->handler = ngx_http_agenda_key_cleanup;
    cln->data = kept;

    ngx_close_file(fd);

    return NGX_OK;

failed:

    ngx_close_file(fd);

    return NGX_ERROR;
}


static char *
ngx_http_agenda_init_jwt(ngx_conf_t *cf, ngx_http_agenda_main_conf_t *amcf)
{
    int                        rc;
    ngx_str_t                  sign, verify;
    ngx_pool_cleanup_t        *cln;
    enum agenda_jwt_alg        alg;
    struct agenda_jwt_config  *jwt;

    if (amcf->jwt_alg.data == NULL && amcf->jwt_key_file.data == NULL) {
        if (amcf->needs_jwt.data != NULL) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"%V\" needs \"agenda_jwt_alg\" and "
                          "\"agenda_jwt_key_file\" in the \"http\" block",
                          &amcf->needs_jwt);
            return NGX_CONF_ERROR;
        }

        return NGX_CONF_OK;
    }

    if (amcf->jwt_alg.data == NULL || amcf->jwt_key_file.data == NULL
        || amcf->jwt_issuer.data == NULL || amcf->jwt_audience.data == NULL)
    {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "JWT settings need \"agenda_jwt_alg\", "
                      "\"agenda_jwt_key_file\", \"agenda_jwt_issuer\" and "
                      "\"agenda_jwt_audience\"");
        return NGX_CONF_ERROR;
    }

    alg = agenda_jwt_alg_parse((const char *) amcf->jwt_alg.data);

    if (alg == 0) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "unknown \"agenda_jwt_alg\" \"%V\" (HS256, HS384, "
                      "HS512, RS256 or ES256)", &amcf->jwt_alg);
        return NGX_CONF_ERROR;
    }

    if (ngx_http_agenda_read_key(cf, &amcf->jwt_key_file, &sign) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (alg == AGENDA_JWT_HS256 || alg == AGENDA_JWT_HS384
        || alg == AGENDA_JWT_HS512)
    {
        if (amcf->jwt_verify_key_file.data != NULL) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"agenda_jwt_key_file\": an HMAC algorithm takes "
                          "one secret, not a public key");
            return NGX_CONF_ERROR;
        }

        /* RFC 7518 3.2: a key at least as long as the hash output */

        if (sign.len < 32) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "the secret in \"%V\" is shorter than 32 bytes",
                          &amcf->jwt_key_file);
            return NGX_CONF_ERROR;
        }

        verify = sign;

    } else {
        if (amcf->jwt_verify_key_file.data == NULL) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"agenda_jwt_key_file\": %V needs the private "
                          "and the public key file", &amcf->jwt_alg);
            return NGX_CONF_ERROR;
        }

        if (ngx_http_agenda_read_key(cf, &amcf->jwt_verify_key_file, &verify)
            != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    jwt = &amcf->jwt;

    jwt->alg = alg;
    jwt->sign_key = sign.data;
    jwt->sign_key_len = sign.len;
    jwt->verify_key = verify.data;
    jwt->verify_key_len = verify.len;
    jwt->issuer = (const char *) amcf->jwt_issuer.data;
    jwt->audience = (const char *) amcf->jwt_audience.data;
    jwt->ttl_s = (unsigned) amcf->jwt_ttl;
    jwt->leeway_s = (unsigned) amcf->jwt_leeway;

    /*
     * RS256/ES256: the public key parsed once (agenda_jwt_sig.h), before
     * the check below, so that its probe goes through it too; a key that
     * does not parse is the check's to report
     */

    if (alg == AGENDA_JWT_RS256 || alg == AGENDA_JWT_ES256) {
        cln = ngx_pool_cleanup_add(cf->pool, 0);
        if (cln == NULL) {
            return NGX_CONF_ERROR;
        }

        jwt->verify_pkey = agenda_jwt_key_load(jwt);

        cln->handler = ngx_http_agenda_pkey_cleanup;
        cln->data = jwt->verify_pkey;
    }

    /*
     * the checks above only catch what a message can name precisely; this
     * one signs and verifies a probe token, so that a key that would make
     * every login fail (an HS384/HS512 secret shorter than its hash, a
     * small or wrong-type RSA/EC key, keys that are not a pair) stops
     * "nginx -t" instead
     */

    rc = agenda_jwt_config_check(jwt);

    if (rc != AGENDA_JWT_OK) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "the keys in \"agenda_jwt_key_file\" do not work "
                      "with %V (%s): an HMAC secret needs at least as many "
                      "bytes as its hash, RS256 an RSA key pair of 2048 "
                      "bits or more, ES256 a P-256 key pair",
                      &amcf->jwt_alg, agenda_jwt_strerror(rc));
        return NGX_CONF_ERROR;
    }

    if ((alg == AGENDA_JWT_RS256 || alg == AGENDA_JWT_ES256)
        && jwt->verify_pkey == NULL)
    {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "the public key in \"%V\" could not be parsed again "
                      "(out of memory?)", &amcf->jwt_verify_key_file);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static void
ngx_http_agenda_pkey_cleanup(void *data)
{
    EVP_PKEY_free(data);
}


static ngx_int_t
ngx_http_agenda_add_zone(ngx_conf_t *cf, ngx_http_agenda_main_conf_t *amcf,
    ngx_str_t *name, size_t size)
{
    ngx_shm_zone_t  *zone;

    zone = ngx_shared_memory_add(cf, name, size, &ngx_http_agenda_module);
    if (zone == NULL) {
        return NGX_ERROR;
    }

    if (zone->data != NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "shared zone \"%V\" is already used", name);
        return NGX_ERROR;
    }

    zone->init = ngx_http_agenda_init_zone;
    zone->data = amcf;

    amcf->shm_zone = zone;

    return NGX_OK;
}


/*
 * The leaders survive a reload when the zone keeps its name and size: they
 * are only hints (a wrong one costs one 421), so the old table is reused
 * as is even if the topology changed.
 */

static ngx_int_t
ngx_http_agenda_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_agenda_main_conf_t  *oamcf = data;

    ngx_slab_pool_t              *shpool;
    ngx_http_agenda_main_conf_t  *amcf;

    amcf = shm_zone->data;
    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (oamcf != NULL) {
        amcf->shm = oamcf->shm;
        return NGX_OK;
    }

    if (shm_zone->shm.exists) {
        amcf->shm = shpool->data;
        return NGX_OK;
    }

    amcf->shm = ngx_slab_calloc(shpool, sizeof(ngx_http_agenda_shm_t));
    if (amcf->shm == NULL) {
        return NGX_ERROR;
    }

    shpool->data = amcf->shm;

    return NGX_OK;
}


/* The known leader's Raft id of shard, or 0 when none is known. */

ngx_uint_t
ngx_http_agenda_leader_get(ngx_http_request_t *r,
    const struct agenda_shard *shard)
{
    ngx_uint_t                    id;
    ngx_http_agenda_main_conf_t  *amcf;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_agenda_module);

    if (amcf->shm == NULL || shard->index >= AGENDA_TOPO_MAX_SHARDS) {
        return 0;
    }

    id = amcf->shm->leader[shard->index];

    return agenda_topology_replica(shard, id) ? id : 0;
}


void
ngx_http_agenda_leader_set(ngx_http_request_t *r,
    const struct agenda_shard *shard, ngx_uint_t id)
{
    ngx_http_agenda_main_conf_t  *amcf;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_agenda_module);

    if (amcf->shm == NULL || shard->index >= AGENDA_TOPO_MAX_SHARDS) {
        return;
    }

    if (amcf->shm->leader[shard->index] == id) {
        return;
    }

    amcf->shm->leader[shard->index] = id;

    /* rare (elections), and what an operator wants to see */

    ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                  "agenda: shard \"%s\" is now led by replica %ui",
                  shard->name, id);
}


/* Forgets id as the leader of shard, unless another worker replaced it. */

void
ngx_http_agenda_leader_forget(ngx_http_request_t *r,
    const struct agenda_shard *shard, ngx_uint_t id)
{
    ngx_http_agenda_main_conf_t  *amcf;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_agenda_module);

    if (amcf->shm == NULL || shard->index >= AGENDA_TOPO_MAX_SHARDS) {
        return;
    }

    (void) ngx_atomic_cmp_set(&amcf->shm->leader[shard->index], id, 0);
}


/* The index of the replica that serves the next stale read of shard. */

ngx_uint_t
ngx_http_agenda_next_replica(ngx_http_request_t *r,
    const struct agenda_shard *shard)
{
    ngx_http_agenda_main_conf_t  *amcf;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_agenda_module);

    if (amcf->shm == NULL || shard->index >= AGENDA_TOPO_MAX_SHARDS) {
        return ngx_random() % shard->n_replicas;
    }

    return ngx_atomic_fetch_add(&amcf->shm->next[shard->index], 1)
           % shard->n_replicas;
}


static ngx_int_t
ngx_http_agenda_preconfiguration(ngx_conf_t *cf)
{
    if (ngx_http_agenda_api_add_variables(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_agenda_subscriber_add_variables(cf);
}


static ngx_int_t
ngx_http_agenda_postconfiguration(ngx_conf_t *cf)
{
    return ngx_http_agenda_subscriber_init(cf);
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
     *     amcf->needs_jwt = { 0, NULL };
     *     amcf->jwt_* = { 0, NULL };
     *     amcf->jwt = { 0 };
     *     amcf->allowed_origin = { 0, NULL };
     *     amcf->shm_zone = NULL;
     *     amcf->shm = NULL;
     *     amcf->auth_cache = NULL;
     *     amcf->jwt_memo = NULL;
     *     amcf->zoneinfo = { 0, NULL };
     *     amcf->tz_db = NULL;
     */

    amcf->jwt_ttl = NGX_CONF_UNSET;
    amcf->jwt_leeway = NGX_CONF_UNSET;
    amcf->auth_cache_ttl = NGX_CONF_UNSET_MSEC;
    amcf->auth_cache_size = NGX_CONF_UNSET_SIZE;
    amcf->jwt_memo_slots = NGX_CONF_UNSET;

    return amcf;
}


static char *
ngx_http_agenda_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_agenda_main_conf_t *amcf = conf;

    ngx_str_t  name = ngx_string("agenda_leaders");

    if (amcf->needs_topology.data != NULL && amcf->topology == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"%V\" in %V:%ui needs \"agenda_topology\" in the "
                      "\"http\" block",
                      &amcf->needs_topology, &amcf->needs_topology_file,
                      amcf->needs_topology_line);
        return NGX_CONF_ERROR;
    }

    ngx_conf_init_value(amcf->jwt_ttl, 900);
    ngx_conf_init_value(amcf->jwt_leeway, 30);

    if (amcf->jwt_ttl <= 0 || amcf->jwt_ttl > 86400) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"agenda_jwt_ttl\" must be 1s..1d");
        return NGX_CONF_ERROR;
    }

    if (amcf->jwt_leeway > 300) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"agenda_jwt_leeway\" must be at most 5m");
        return NGX_CONF_ERROR;
    }

    if (ngx_http_agenda_init_jwt(cf, amcf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    ngx_conf_init_msec_value(amcf->auth_cache_ttl, NGX_HTTP_AGENDA_AUTH_TTL);
    ngx_conf_init_size_value(amcf->auth_cache_size,
                             NGX_HTTP_AGENDA_AUTH_SIZE);

    /* the window in which another edge's revocation goes unnoticed here */

    if (amcf->auth_cache_ttl > NGX_HTTP_AGENDA_AUTH_TTL_MAX) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"agenda_auth_cache_ttl\" must be at most 1h "
                      "(0 turns the cache off)");
        return NGX_CONF_ERROR;
    }

    if (amcf->auth_cache_size < 8 * ngx_pagesize) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"agenda_auth_cache_size\" must be at least %uz",
                      8 * ngx_pagesize);
        return NGX_CONF_ERROR;
    }

    ngx_conf_init_value(amcf->jwt_memo_slots, NGX_HTTP_AGENDA_JWT_MEMO);

    if (amcf->jwt_memo_slots < 0
        || amcf->jwt_memo_slots > NGX_HTTP_AGENDA_JWT_MEMO_MAX)
    {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"agenda_jwt_memo\" must be 0..%d",
                      NGX_HTTP_AGENDA_JWT_MEMO_MAX);
        return NGX_CONF_ERROR;
    }

    if (amcf->topology != NULL
        && ngx_http_agenda_init_zoneinfo(cf, amcf) != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (amcf->topology != NULL && amcf->auth_cache_ttl > 0) {
        if (ngx_http_agenda_auth_cache_init_conf(cf, amcf) != NGX_OK) {
            return NGX_CONF_ERROR;
        }
    }

    if (amcf->topology != NULL && amcf->shm_zone == NULL) {
        if (ngx_http_agenda_add_zone(cf, amcf, &name,
                                     NGX_HTTP_AGENDA_SHM_SIZE)
            != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/*
 * The tz database is read here, by the master (or "nginx -t"), before any
 * request: reading ~600 small files blocks, which only configuration may.
 * The workers inherit it, read only.  Like the topology it is malloc'd by
 * a library, so its release is a cleanup of the cycle's pool.
 */

static char *
ngx_http_agenda_init_zoneinfo(ngx_conf_t *cf,
    ngx_http_agenda_main_conf_t *amcf)
{
    int                  rc;
    size_t               missing;
    ngx_str_t            name;
    const char          *dir;
    ngx_pool_cleanup_t  *cln;
    char                 err[NGX_HTTP_AGENDA_ERRLEN];

    dir = NGX_HTTP_AGENDA_ZONEINFO;

    if (amcf->zoneinfo.len) {

        /* relative to nginx's prefix, as other paths are */

        name = amcf->zoneinfo;

        if (ngx_http_agenda_full_cstr(cf, &name, 0) != NGX_OK) {
            return NGX_CONF_ERROR;
        }

        dir = (const char *) name.data;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_agenda_tz_db_cleanup;
    cln->data = NULL;

    rc = agenda_tz_db_load(dir, &amcf->tz_db, &missing, err, sizeof(err));

    if (rc == ENOMEM) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "out of memory loading the tz database from %s", dir);
        return NGX_CONF_ERROR;
    }

    if (rc != 0) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "%s (install tzdata, or set \"agenda_zoneinfo\")",
                      err);
        return NGX_CONF_ERROR;
    }

    cln->data = amcf->tz_db;

    if (missing > 0) {
        ngx_log_error(NGX_LOG_WARN, cf->log, 0,
                      "%uz time zones have no usable file in %s: their "
                      "all-day events occupy UTC days", missing, dir);
    }

    return NGX_CONF_OK;
}


static void
ngx_http_agenda_tz_db_cleanup(void *data)
{
    agenda_tz_db_free(data);
}


/*
 * Each worker gets its own token memo: what it remembers is only ever
 * read and written by that worker, so it needs no lock, and it lives as
 * long as the cycle (a reload starts new workers with empty memos).
 */
static ngx_int_t
ngx_http_agenda_init_process(ngx_cycle_t *cycle)
{
    size_t                        size;
    void                         *mem;
    ngx_http_agenda_main_conf_t  *amcf;

    amcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_agenda_module);

    if (amcf == NULL || amcf->jwt.alg == 0 || amcf->jwt_memo_slots <= 0) {
        return NGX_OK;
    }

    size = agenda_jwt_memo_bytes((unsigned) amcf->jwt_memo_slots);

    mem = ngx_palloc(cycle->pool, size);
    if (mem == NULL) {
        return NGX_ERROR;
    }

    amcf->jwt_memo = agenda_jwt_memo_init(mem,
                                          (unsigned) amcf->jwt_memo_slots);

    return NGX_OK;
}


static void *
ngx_http_agenda_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_agenda_loc_conf_t  *alcf;

    alcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_agenda_loc_conf_t));
    if (alcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     alcf->thread_pool_name = { 0, NULL };
     *     alcf->thread_pool = NULL;
     */

    alcf->retry_budget = NGX_CONF_UNSET_MSEC;
    alcf->max_calls = NGX_CONF_UNSET_UINT;
    alcf->api = NGX_CONF_UNSET;
    alcf->subscriber = NGX_CONF_UNSET;

    return alcf;
}


static char *
ngx_http_agenda_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_agenda_loc_conf_t *prev = parent;
    ngx_http_agenda_loc_conf_t *conf = child;

    ngx_conf_merge_msec_value(conf->retry_budget, prev->retry_budget, 5000);
    ngx_conf_merge_uint_value(conf->max_calls, prev->max_calls, 40);
    ngx_conf_merge_str_value(conf->thread_pool_name, prev->thread_pool_name,
                             "default");

    /* agenda_api and agenda_subscriber are not inherited */

    if (conf->api == NGX_CONF_UNSET) {
        conf->api = 0;
    }

    if (conf->subscriber == NGX_CONF_UNSET) {
        conf->subscriber = 0;
    }

    /* a shard remembers a request id for five minutes: an attempt begun
     * later could apply a write the first attempt applied */

    if (conf->retry_budget > NGX_HTTP_AGENDA_RETRY_BUDGET_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"agenda_retry_budget\" must be at most 60s: "
                           "shards remember a write's request id for 5 "
                           "minutes, and a retry must begin well within "
                           "them");
        return NGX_CONF_ERROR;
    }

    if (conf->max_calls == 0 || conf->max_calls > NGX_HTTP_MAX_SUBREQUESTS) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"agenda_max_calls\" must be 1..%d",
                           NGX_HTTP_MAX_SUBREQUESTS);
        return NGX_CONF_ERROR;
    }

    /* only where passwords are hashed, so others do not start threads */

    if (conf->api) {
        conf->thread_pool = ngx_thread_pool_add(cf, &conf->thread_pool_name);
        if (conf->thread_pool == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}

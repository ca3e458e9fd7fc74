
/*
 * ngx_agenda_auth_cache.c — the auth cache of agenda_flow.h (struct
 * agenda_auth_cache) in shared memory, common to every worker of this
 * edge: the role and token version of an account, kept for
 * agenda_auth_cache_ttl, so that a protected request usually skips
 * user.auth (one more shard call and a ReadIndex round on the users
 * shard) before doing its work.  Never a password hash.
 *
 * The zone "agenda_auth_cache" (agenda_auth_cache_size) is a slab pool
 * holding a red-black tree of entries keyed by the CRC32 of the username
 * (equal keys are told apart by the name) and a queue of the same
 * entries from the most to the least recently used.  Every operation
 * holds the pool's mutex for a walk of that small tree and nothing else.
 * A store frees a couple of expired entries from the old end of the
 * queue; when the slab still has no room it evicts the least recently
 * used entry, so a full cache keeps the active accounts.
 *
 * What the time to live means.  The flows of this edge store what the
 * users shard answered and overwrite the entry as soon as the shard
 * confirms a password change made here, so on this edge (all workers) an
 * old token is refused from the very next request.  A change made through
 * another edge, or straight at the shard, is not seen here until the
 * entry expires: for up to agenda_auth_cache_ttl a revoked token still
 * works on this edge.  That is the price of the saved round; 0 disables
 * the cache (every request asks the shard, revocation is immediate
 * everywhere).  Open subscriptions read the versions too, to end those
 * made with a token revoked since (ngx_http_agenda_auth_cache_revoked()).
 *
 * Times are ngx_current_msec, shared by the workers.  An entry whose
 * remaining life exceeds the time to live (the clock went back, or a
 * reload shortened the time to live) counts as expired, so no clock
 * change can stretch the window above.
 */


#include "ngx_agenda_module.h"

#include "agenda_flow.h"


#define NGX_HTTP_AGENDA_AUTH_ZONE  "agenda_auth_cache"


typedef struct {
    u_char                         color;
    u_char                         len;       /* of name */
    u_char                         admin;     /* unsigned:1 */
    u_char                         dummy;
    ngx_queue_t                    queue;     /* in sh->lru */
    ngx_msec_t                     expires;
    uint64_t                       token_version;
    u_char                         name[1];
} ngx_http_agenda_auth_node_t;


typedef struct {
    ngx_rbtree_t                   rbtree;
    ngx_rbtree_node_t              sentinel;
    ngx_queue_t                    lru;       /* most recently used first */
} ngx_http_agenda_auth_sh_t;


struct ngx_http_agenda_auth_cache_s {
    ngx_msec_t                     ttl;
    ngx_http_agenda_auth_sh_t     *sh;        /* set by the zone's init */
    ngx_slab_pool_t               *shpool;
    struct agenda_auth_cache       iface;     /* what the flows call */
};


static ngx_int_t ngx_http_agenda_auth_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_agenda_auth_rbtree_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_http_agenda_auth_node_t *ngx_http_agenda_auth_find(
    ngx_http_agenda_auth_cache_t *c, uint32_t hash, u_char *name, size_t len);
static ngx_uint_t ngx_http_agenda_auth_fresh(ngx_http_agenda_auth_cache_t *c,
    ngx_http_agenda_auth_node_t *an);
static void ngx_http_agenda_auth_delete(ngx_http_agenda_auth_cache_t *c,
    ngx_http_agenda_auth_node_t *an);
static void ngx_http_agenda_auth_expire(ngx_http_agenda_auth_cache_t *c,
    ngx_uint_t force);
static int ngx_http_agenda_auth_lookup(void *data, const char *user,
    struct agenda_auth_entry *out);
static void ngx_http_agenda_auth_store(void *data, const char *user,
    const struct agenda_auth_entry *entry);
static void ngx_http_agenda_auth_forget(void *data, const char *user);


/*
 * Called by init_main_conf when the cache is on (agenda_auth_cache_ttl
 * above 0): the zone, sized by agenda_auth_cache_size.
 */

ngx_int_t
ngx_http_agenda_auth_cache_init_conf(ngx_conf_t *cf,
    ngx_http_agenda_main_conf_t *amcf)
{
    ngx_str_t                      name;
    ngx_shm_zone_t                *zone;
    ngx_http_agenda_auth_cache_t  *c;

    ngx_str_set(&name, NGX_HTTP_AGENDA_AUTH_ZONE);

    c = ngx_pcalloc(cf->pool, sizeof(ngx_http_agenda_auth_cache_t));
    if (c == NULL) {
        return NGX_ERROR;
    }

    zone = ngx_shared_memory_add(cf, &name, amcf->auth_cache_size,
                                 &ngx_http_agenda_module);
    if (zone == NULL) {
        return NGX_ERROR;
    }

    if (zone->data != NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "shared zone \"%V\" is already used", &name);
        return NGX_ERROR;
    }

    c->ttl = amcf->auth_cache_ttl;
    c->iface.data = c;
    c->iface.lookup = ngx_http_agenda_auth_lookup;
    c->iface.store = ngx_http_agenda_auth_store;
    c->iface.forget = ngx_http_agenda_auth_forget;

    zone->init = ngx_http_agenda_auth_init_zone;
    zone->data = c;

    amcf->auth_cache = c;

    return NGX_OK;
}


/* What a flow's env.auth_cache gets: NULL when the cache is off. */

const struct agenda_auth_cache *
ngx_http_agenda_auth_cache(ngx_http_request_t *r)
{
    ngx_http_agenda_main_conf_t  *amcf;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_agenda_module);

    if (amcf->auth_cache == NULL || amcf->auth_cache->sh == NULL) {
        return NULL;
    }

    return &amcf->auth_cache->iface;
}


/*
 * The entries survive a reload that keeps the zone's size: they are as
 * true as they were, and the time to live still bounds them (see
 * ngx_http_agenda_auth_fresh()).
 */

static ngx_int_t
ngx_http_agenda_auth_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_agenda_auth_cache_t  *octx = data;

    size_t                         len;
    ngx_http_agenda_auth_cache_t  *c;

    c = shm_zone->data;

    if (octx != NULL) {
        c->sh = octx->sh;
        c->shpool = octx->shpool;
        return NGX_OK;
    }

    c->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        c->sh = c->shpool->data;
        return NGX_OK;
    }

    c->sh = ngx_slab_alloc(c->shpool, sizeof(ngx_http_agenda_auth_sh_t));
    if (c->sh == NULL) {
        return NGX_ERROR;
    }

    c->shpool->data = c->sh;

    ngx_rbtree_init(&c->sh->rbtree, &c->sh->sentinel,
                    ngx_http_agenda_auth_rbtree_insert_value);

    ngx_queue_init(&c->sh->lru);

    len = sizeof(" in agenda auth cache zone \"\"") + shm_zone->shm.name.len;

    c->shpool->log_ctx = ngx_slab_alloc(c->shpool, len);
    if (c->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(c->shpool->log_ctx, " in agenda auth cache zone \"%V\"%Z",
                &shm_zone->shm.name);

    /* a full slab is normal here: the least recently used entry goes */

    c->shpool->log_nomem = 0;

    return NGX_OK;
}


static void
ngx_http_agenda_auth_rbtree_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t            **p;
    ngx_http_agenda_auth_node_t   *an, *ant;

    for ( ;; ) {

        if (node->key < temp->key) {

            p = &temp->left;

        } else if (node->key > temp->key) {

            p = &temp->right;

        } else { /* node->key == temp->key */

            an = (ngx_http_agenda_auth_node_t *) &node->color;
            ant = (ngx_http_agenda_auth_node_t *) &temp->color;

            p = (ngx_memn2cmp(an->name, ant->name, an->len, ant->len) < 0)
                ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


/* The entry of name, fresh or not; the mutex is held. */

static ngx_http_agenda_auth_node_t *
ngx_http_agenda_auth_find(ngx_http_agenda_auth_cache_t *c, uint32_t hash,
    u_char *name, size_t len)
{
    ngx_int_t                     rc;
    ngx_rbtree_node_t            *node, *sentinel;
    ngx_http_agenda_auth_node_t  *an;

    node = c->sh->rbtree.root;
    sentinel = c->sh->rbtree.sentinel;

    while (node != sentinel) {

        if (hash < node->key) {
            node = node->left;
            continue;
        }

        if (hash > node->key) {
            node = node->right;
            continue;
        }

        /* hash == node->key */

        an = (ngx_http_agenda_auth_node_t *) &node->color;

        rc = ngx_memn2cmp(name, an->name, len, (size_t) an->len);

        if (rc == 0) {
            return an;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


static ngx_uint_t
ngx_http_agenda_auth_fresh(ngx_http_agenda_auth_cache_t *c,
    ngx_http_agenda_auth_node_t *an)
{
    ngx_msec_int_t  left;

    left = (ngx_msec_int_t) (an->expires - ngx_current_msec);

    return left > 0 && (ngx_msec_t) left <= c->ttl;
}


static void
ngx_http_agenda_auth_delete(ngx_http_agenda_auth_cache_t *c,
    ngx_http_agenda_auth_node_t *an)
{
    ngx_rbtree_node_t  *node;

    node = (ngx_rbtree_node_t *)
               ((u_char *) an - offsetof(ngx_rbtree_node_t, color));

    ngx_queue_remove(&an->queue);
    ngx_rbtree_delete(&c->sh->rbtree, node);
    ngx_slab_free_locked(c->shpool, node);
}


/*
 * Frees up to two expired entries from the least recently used end; with
 * force, the least recently used entry first, whatever its age.  The
 * mutex is held.
 */

static void
ngx_http_agenda_auth_expire(ngx_http_agenda_auth_cache_t *c,
    ngx_uint_t force)
{
    ngx_uint_t                    n;
    ngx_queue_t                  *q;
    ngx_http_agenda_auth_node_t  *an;

    for (n = 0; n < 3; n++) {

        if (ngx_queue_empty(&c->sh->lru)) {
            return;
        }

        q = ngx_queue_last(&c->sh->lru);
        an = ngx_queue_data(q, ngx_http_agenda_auth_node_t, queue);

        if ((!force || n > 0) && ngx_http_agenda_auth_fresh(c, an)) {
            return;
        }

        ngx_http_agenda_auth_delete(c, an);
    }
}


static int
ngx_http_agenda_auth_lookup(void *data, const char *user,
    struct agenda_auth_entry *out)
{
    ngx_http_agenda_auth_cache_t *c = data;

    size_t                        len;
    uint32_t                      hash;
    ngx_http_agenda_auth_node_t  *an;

    len = ngx_strlen(user);

    if (len == 0 || len > 255) {
        return 0;
    }

    hash = ngx_crc32_short((u_char *) user, len);

    ngx_shmtx_lock(&c->shpool->mutex);

    an = ngx_http_agenda_auth_find(c, hash, (u_char *) user, len);

    if (an == NULL) {
        ngx_shmtx_unlock(&c->shpool->mutex);
        return 0;
    }

    if (!ngx_http_agenda_auth_fresh(c, an)) {
        ngx_http_agenda_auth_delete(c, an);
        ngx_shmtx_unlock(&c->shpool->mutex);
        return 0;
    }

    ngx_queue_remove(&an->queue);
    ngx_queue_insert_head(&c->sh->lru, &an->queue);

    out->token_version = an->token_version;
    ngx_cpystrn((u_char *) out->role,
                (u_char *) (an->admin ? "admin" : "user"), sizeof(out->role));

    ngx_shmtx_unlock(&c->shpool->mutex);

    return 1;
}


/*
 * Token versions only grow, so a store never lowers the version of an
 * entry, even an expired one (lookups drop those): a user.auth answer
 * read before a password change, stored after the change's own store,
 * must not bring the revoked version back.
 */

static void
ngx_http_agenda_auth_store(void *data, const char *user,
    const struct agenda_auth_entry *entry)
{
    ngx_http_agenda_auth_cache_t *c = data;

    size_t                        len, size;
    uint32_t                      hash;
    ngx_uint_t                    admin;
    ngx_rbtree_node_t            *node;
    ngx_http_agenda_auth_node_t  *an;

    len = ngx_strlen(user);

    if (len == 0 || len > 255) {
        return;
    }

    if (ngx_strcmp(entry->role, "admin") == 0) {
        admin = 1;

    } else if (ngx_strcmp(entry->role, "user") == 0) {
        admin = 0;

    } else {
        return;
    }

    hash = ngx_crc32_short((u_char *) user, len);

    ngx_shmtx_lock(&c->shpool->mutex);

    an = ngx_http_agenda_auth_find(c, hash, (u_char *) user, len);

    if (an != NULL) {

        if (an->token_version <= entry->token_version) {
            an->admin = (u_char) admin;
            an->token_version = entry->token_version;
            an->expires = ngx_current_msec + c->ttl;

            ngx_queue_remove(&an->queue);
            ngx_queue_insert_head(&c->sh->lru, &an->queue);
        }

        ngx_shmtx_unlock(&c->shpool->mutex);
        return;
    }

    ngx_http_agenda_auth_expire(c, 0);

    size = offsetof(ngx_rbtree_node_t, color)
           + offsetof(ngx_http_agenda_auth_node_t, name)
           + len;

    node = ngx_slab_alloc_locked(c->shpool, size);

    if (node == NULL) {
        ngx_http_agenda_auth_expire(c, 1);

        node = ngx_slab_alloc_locked(c->shpool, size);

        if (node == NULL) {
            /* best effort: the next request asks the shard again */
            ngx_shmtx_unlock(&c->shpool->mutex);
            return;
        }
    }

    node->key = hash;

    an = (ngx_http_agenda_auth_node_t *) &node->color;

    an->len = (u_char) len;
    an->admin = (u_char) admin;
    an->token_version = entry->token_version;
    an->expires = ngx_current_msec + c->ttl;
    ngx_memcpy(an->name, user, len);

    ngx_rbtree_insert(&c->sh->rbtree, node);
    ngx_queue_insert_head(&c->sh->lru, &an->queue);

    ngx_shmtx_unlock(&c->shpool->mutex);
}


static void
ngx_http_agenda_auth_forget(void *data, const char *user)
{
    ngx_http_agenda_auth_cache_t *c = data;

    size_t                        len;
    uint32_t                      hash;
    ngx_http_agenda_auth_node_t  *an;

    len = ngx_strlen(user);

    if (len == 0 || len > 255) {
        return;
    }

    hash = ngx_crc32_short((u_char *) user, len);

    ngx_shmtx_lock(&c->shpool->mutex);

    an = ngx_http_agenda_auth_find(c, hash, (u_char *) user, len);

    if (an != NULL) {
        ngx_http_agenda_auth_delete(c, an);
    }

    ngx_shmtx_unlock(&c->shpool->mutex);
}


/*
 * Whether this edge knows that user's tokens of token_version were
 * revoked: the entry, fresh or not, holds a higher version.  Freshness
 * does not matter here because versions only grow: an old entry's version
 * is still a lower bound of the account's.  Read only, so that watching
 * subscriptions neither keeps entries alive nor reorders them.
 */

ngx_uint_t
ngx_http_agenda_auth_cache_revoked(ngx_http_agenda_auth_cache_t *c,
    u_char *user, size_t len, uint64_t token_version)
{
    uint32_t                      hash;
    ngx_uint_t                    revoked;
    ngx_http_agenda_auth_node_t  *an;

    if (c == NULL || c->sh == NULL || len == 0 || len > 255) {
        return 0;
    }

    hash = ngx_crc32_short(user, len);

    ngx_shmtx_lock(&c->shpool->mutex);

    an = ngx_http_agenda_auth_find(c, hash, user, len);

    revoked = (an != NULL && an->token_version > token_version);

    ngx_shmtx_unlock(&c->shpool->mutex);

    return revoked;
}


/*
 * A channel closed at time stamp (ngx_current_msec, the same monotonic
 * clock in every worker): kept under the channel's name ("group/<id>",
 * never a username) like a token version, which only grows.  A
 * subscription to the channel made before stamp then ends at its next
 * look (ngx_http_agenda_auth_cache_revoked() with the time its check
 * began), whether or not nchan closed it: a backstop should the
 * channel's DELETE be lost (the respond step hides a hung-up writer's
 * close from nchan, which would refuse the DELETE with 499).
 */

void
ngx_http_agenda_auth_cache_mark(ngx_http_agenda_auth_cache_t *c,
    const char *channel, ngx_msec_t stamp)
{
    struct agenda_auth_entry  entry;

    if (c == NULL || c->sh == NULL) {
        return;
    }

    ngx_memzero(&entry, sizeof(entry));
    ngx_cpystrn((u_char *) entry.role, (u_char *) "user", sizeof(entry.role));
    entry.token_version = (uint64_t) stamp;

    ngx_http_agenda_auth_store(c, channel, &entry);
}


/*
 * How often a subscription asks ngx_http_agenda_auth_cache_revoked():
 * half the time to live, because an entry stays at least that long after
 * a store (only a full zone evicts fresh entries), so a revocation stored
 * here is seen at least once; at most a second, so that it is seen
 * promptly whatever the time to live; and no less than 100 ms, so that
 * many subscriptions cost little (with a time to live under 200 ms an
 * expired entry may be dropped before it is seen: then the token's
 * expiry ends the subscription).
 */

ngx_msec_t
ngx_http_agenda_auth_cache_recheck(ngx_http_agenda_auth_cache_t *c)
{
    ngx_msec_t  t;

    t = ngx_min(c->ttl / 2, 1000);

    return ngx_max(t, 100);
}

/*
 * topology.c — parse and validate the topology file (see topology.h).
 *
 * Parsing is one pass over the JSON tree that copies every field into fixed
 * structs, checking each as it goes; the cross-field rules (unique names,
 * unique endpoints, kinds, range tiling) run afterwards on the structs.  The
 * first violation stops everything, so an error always names one path.
 * The field readers (json_check.h) are shared with agent_config.c, which
 * reads an agent's part of a topology through agenda_topology_parse_root().
 */
#include "topology.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "json_check.h"
#include "topology_internal.h"

/* Defaults for the optional "raft" object and "data_dir". */
#define DEFAULT_TICK_MS 25
#define DEFAULT_ELECTION_TICKS 8
#define DEFAULT_HEARTBEAT_TICKS 2
#define DEFAULT_SNAPSHOT_THRESHOLD 10000
#define DEFAULT_MAP_SIZE_MB 1024
#define DEFAULT_DATA_DIR "var/data"

/* One listening endpoint, for the duplicate (host, port) check. */
struct endpoint {
    const char *host;
    uint16_t port;
    size_t shard;
    size_t replica;
    const char *field; /* "http_port" or "raft_port" */
};

static int parse_raft(json_t *root, struct agenda_raft_timing *rt,
                      struct jc_err *e)
{
    static const char *const keys[] = {
        "tick_ms", "election_ticks", "heartbeat_ticks",
        "snapshot_threshold", "map_size_mb", NULL
    };
    json_t *obj = json_object_get(root, "raft");
    uint64_t v;

    rt->tick_ms = DEFAULT_TICK_MS;
    rt->election_ticks = DEFAULT_ELECTION_TICKS;
    rt->heartbeat_ticks = DEFAULT_HEARTBEAT_TICKS;
    rt->snapshot_threshold = DEFAULT_SNAPSHOT_THRESHOLD;
    rt->map_size_mb = DEFAULT_MAP_SIZE_MB;
    if (obj == NULL) {
        return 0;
    }
    if (jc_want_object(obj, "raft", e) ||
        jc_check_keys(obj, "raft", keys, NULL, e)) {
        return -1;
    }
    switch (jc_get_uint(obj, "raft", "tick_ms", 0, 1, 10000, &v, e)) {
    case -1: return -1;
    case 1: rt->tick_ms = (uint32_t)v; break;
    default: break;
    }
    switch (jc_get_uint(obj, "raft", "election_ticks", 0, 2, 100000, &v, e)) {
    case -1: return -1;
    case 1: rt->election_ticks = (uint32_t)v; break;
    default: break;
    }
    switch (jc_get_uint(obj, "raft", "heartbeat_ticks", 0, 1, 100000, &v, e)) {
    case -1: return -1;
    case 1: rt->heartbeat_ticks = (uint32_t)v; break;
    default: break;
    }
    switch (jc_get_uint(obj, "raft", "snapshot_threshold", 0, 1, 1000000000,
                        &v, e)) {
    case -1: return -1;
    case 1: rt->snapshot_threshold = v; break;
    default: break;
    }
    switch (jc_get_uint(obj, "raft", "map_size_mb", 0, 1, 1048576, &v, e)) {
    case -1: return -1;
    case 1: rt->map_size_mb = (uint32_t)v; break;
    default: break;
    }
    /* A follower must hear several heartbeats per election timeout, or it
     * campaigns against a healthy leader. */
    if (rt->election_ticks <= rt->heartbeat_ticks) {
        jc_fail(e, "raft.election_ticks", "must be greater than "
                "raft.heartbeat_ticks (%u), got %u",
                (unsigned)rt->heartbeat_ticks, (unsigned)rt->election_ticks);
        return -1;
    }
    return 0;
}

static int parse_servers(json_t *root, struct agenda_topology *t,
                         struct jc_err *e)
{
    static const char *const keys[] = { "name", "host", NULL };
    json_t *arr = json_object_get(root, "servers");
    size_t i, j, n;
    char p[JC_PATH_LEN];

    if (arr == NULL) {
        jc_fail(e, "servers", "missing (required)");
        return -1;
    }
    if (!json_is_array(arr)) {
        jc_fail(e, "servers", "must be an array");
        return -1;
    }
    n = json_array_size(arr);
    if (n < 1 || n > AGENDA_TOPO_MAX_SERVERS) {
        jc_fail(e, "servers", "must list 1..%d servers, got %zu",
                AGENDA_TOPO_MAX_SERVERS, n);
        return -1;
    }
    t->servers = calloc(n, sizeof(*t->servers));
    if (t->servers == NULL) {
        jc_fail(e, "servers", "out of memory");
        return -1;
    }
    for (i = 0; i < n; i++) {
        json_t *s = json_array_get(arr, i);
        struct agenda_server *sv = &t->servers[i];

        snprintf(p, sizeof(p), "servers[%zu]", i);
        if (jc_want_object(s, p, e) || jc_check_keys(s, p, keys, NULL, e) ||
            jc_get_string(s, p, "name", 1, sv->name, AGENDA_TOPO_NAME_LEN_MAX,
                          e) < 0 ||
            jc_check_name(sv->name, p, "name", e) ||
            jc_get_string(s, p, "host", 1, sv->host, AGENDA_TOPO_HOST_LEN_MAX,
                          e) < 0 ||
            jc_check_host(sv->host, p, "host", e)) {
            return -1;
        }
        for (j = 0; j < i; j++) {
            if (strcasecmp(t->servers[j].name, sv->name) == 0) {
                char np[JC_PATH_LEN];

                jc_join(np, p, "name");
                jc_fail(e, np, "duplicate server name \"%s\" (also "
                        "servers[%zu])", sv->name, j);
                return -1;
            }
        }
        t->n_servers = i + 1;
    }
    return 0;
}

static const struct agenda_server *find_server(const struct agenda_topology *t,
                                               const char *name)
{
    size_t i;

    for (i = 0; i < t->n_servers; i++) {
        if (strcmp(t->servers[i].name, name) == 0) {
            return &t->servers[i];
        }
    }
    return NULL;
}

static int parse_replica(json_t *r, const char *p,
                         const struct agenda_topology *t,
                         struct agenda_shard *sh, size_t j, struct jc_err *e)
{
    static const char *const keys[] = {
        "id", "name", "server", "http_port", "raft_port", NULL
    };
    struct agenda_replica *rep = &sh->replicas[j];
    char server[AGENDA_TOPO_NAME_LEN_MAX + 1];
    char fp[JC_PATH_LEN];
    uint64_t v;
    size_t k;

    if (jc_want_object(r, p, e) || jc_check_keys(r, p, keys, NULL, e) ||
        jc_get_uint(r, p, "id", 1, 1, AGENDA_TOPO_MAX_REPLICAS, &v, e) < 0) {
        return -1;
    }
    rep->id = (uint32_t)v;
    if (jc_get_string(r, p, "name", 1, rep->name, AGENDA_TOPO_NAME_LEN_MAX,
                      e) < 0 || jc_check_name(rep->name, p, "name", e) ||
        jc_get_string(r, p, "server", 1, server, AGENDA_TOPO_NAME_LEN_MAX,
                      e) < 0) {
        return -1;
    }
    rep->server = find_server(t, server);
    if (rep->server == NULL) {
        jc_join(fp, p, "server");
        jc_fail(e, fp, "unknown server \"%s\" (not in servers)", server);
        return -1;
    }
    rep->host = rep->server->host;
    if (jc_get_uint(r, p, "http_port", 1, 1, 65535, &v, e) < 0) {
        return -1;
    }
    rep->http_port = (uint16_t)v;
    if (jc_get_uint(r, p, "raft_port", 1, 1, 65535, &v, e) < 0) {
        return -1;
    }
    rep->raft_port = (uint16_t)v;
    for (k = 0; k < j; k++) {
        if (sh->replicas[k].id == rep->id) {
            jc_join(fp, p, "id");
            jc_fail(e, fp, "duplicate replica id %u in shard \"%s\" "
                    "(also replicas[%zu])", (unsigned)rep->id, sh->name, k);
            return -1;
        }
        if (strcasecmp(sh->replicas[k].name, rep->name) == 0) {
            jc_join(fp, p, "name");
            jc_fail(e, fp, "duplicate replica name \"%s\" in shard \"%s\" "
                    "(also replicas[%zu])", rep->name, sh->name, k);
            return -1;
        }
    }
    return 0;
}

static int parse_kind(json_t *s, const char *p,
                      enum agenda_shard_kind *kind, struct jc_err *e)
{
    char buf[16];
    char fp[JC_PATH_LEN];

    if (jc_get_string(s, p, "kind", 1, buf, sizeof(buf) - 1, e) < 0) {
        return -1;
    }
    if (strcmp(buf, "events") == 0) {
        *kind = AGENDA_SHARD_EVENTS;
    } else if (strcmp(buf, "groups") == 0) {
        *kind = AGENDA_SHARD_GROUPS;
    } else if (strcmp(buf, "users") == 0) {
        *kind = AGENDA_SHARD_USERS;
    } else {
        jc_join(fp, p, "kind");
        jc_fail(e, fp, "\"%s\" is not a shard kind (events, groups or users)",
                buf);
        return -1;
    }
    return 0;
}

/* Range bounds are compared with case-folded keys, so they must be folded
 * themselves: a bound "N" would sort before every lower-case key. */
static int check_bound(const char *s, const char *p, const char *key,
                       struct jc_err *e)
{
    char fp[JC_PATH_LEN];
    size_t i;

    for (i = 0; s[i] != '\0'; i++) {
        if (s[i] >= 'A' && s[i] <= 'Z') {
            jc_join(fp, p, key);
            jc_fail(e, fp, "\"%s\" has upper-case letters; keys are "
                    "case-folded before routing, so bounds must be lower case",
                    s);
            return -1;
        }
    }
    return 0;
}

static int parse_range(json_t *s, const char *p,
                       struct agenda_shard *sh, struct jc_err *e)
{
    static const char *const keys[] = { "from", "to", NULL };
    json_t *r = json_object_get(s, "range");
    char rp[JC_PATH_LEN];

    jc_join(rp, p, "range");
    sh->range_from[0] = '\0';
    sh->range_to[0] = '\0';
    if (r == NULL) {
        if (sh->kind == AGENDA_SHARD_EVENTS) {
            jc_fail(e, rp, "missing (required for events shards)");
            return -1;
        }
        return 0;
    }
    if (jc_want_object(r, rp, e) || jc_check_keys(r, rp, keys, NULL, e) ||
        jc_get_string(r, rp, "from", 1, sh->range_from,
                      AGENDA_TOPO_KEY_LEN_MAX, e) < 0 ||
        check_bound(sh->range_from, rp, "from", e) ||
        jc_get_string(r, rp, "to", 1, sh->range_to,
                      AGENDA_TOPO_KEY_LEN_MAX, e) < 0 ||
        check_bound(sh->range_to, rp, "to", e)) {
        return -1;
    }
    if (sh->kind != AGENDA_SHARD_EVENTS) {
        if (sh->range_from[0] != '\0' || sh->range_to[0] != '\0') {
            jc_fail(e, rp, "a %s shard holds every key: use "
                    "{\"from\": \"\", \"to\": \"\"} or leave range out",
                    agenda_shard_kind_name(sh->kind));
            return -1;
        }
        return 0;
    }
    if (sh->range_to[0] != '\0' && strcmp(sh->range_from, sh->range_to) >= 0) {
        jc_fail(e, rp, "from \"%s\" must sort before to \"%s\" "
                "(\"\" as to means unbounded)", sh->range_from, sh->range_to);
        return -1;
    }
    return 0;
}

static int parse_shard(json_t *s, const char *p, size_t i,
                       struct agenda_topology *t, struct jc_err *e)
{
    static const char *const keys[] = {
        "name", "kind", "range", "replicas", NULL
    };
    struct agenda_shard *sh = &t->shards[i];
    json_t *reps;
    char rp[JC_PATH_LEN];
    size_t j, n;

    sh->index = i;
    if (jc_want_object(s, p, e) || jc_check_keys(s, p, keys, NULL, e) ||
        jc_get_string(s, p, "name", 1, sh->name, AGENDA_TOPO_NAME_LEN_MAX,
                      e) < 0 ||
        jc_check_name(sh->name, p, "name", e)) {
        return -1;
    }
    for (j = 0; j < i; j++) {
        if (strcasecmp(t->shards[j].name, sh->name) == 0) {
            jc_join(rp, p, "name");
            jc_fail(e, rp, "duplicate shard name \"%s\" (also shards[%zu])",
                    sh->name, j);
            return -1;
        }
    }
    if (parse_kind(s, p, &sh->kind, e) || parse_range(s, p, sh, e)) {
        return -1;
    }
    jc_join(rp, p, "replicas");
    reps = json_object_get(s, "replicas");
    if (reps == NULL) {
        jc_fail(e, rp, "missing (required)");
        return -1;
    }
    if (!json_is_array(reps)) {
        jc_fail(e, rp, "must be an array");
        return -1;
    }
    n = json_array_size(reps);
    if (n < 1 || n > AGENDA_TOPO_MAX_REPLICAS) {
        jc_fail(e, rp, "must list 1..%d replicas, got %zu",
                AGENDA_TOPO_MAX_REPLICAS, n);
        return -1;
    }
    for (j = 0; j < n; j++) {
        char ep[JC_PATH_LEN];

        jc_join_index(ep, rp, j);
        if (parse_replica(json_array_get(reps, j), ep, t, sh, j, e)) {
            return -1;
        }
        sh->n_replicas = j + 1;
    }
    return 0;
}

/* out (JC_PATH_LEN) = the path of an endpoint's port: "shard.replicas[j].f"
 * in an agent's one-shard document, "shards[i].replicas[j].f" otherwise. */
static void endpoint_path(char *out, const struct endpoint *ep, int one_shard)
{
    if (one_shard) {
        snprintf(out, JC_PATH_LEN, "shard.replicas[%zu].%s", ep->replica,
                 ep->field);
    } else {
        snprintf(out, JC_PATH_LEN, "shards[%zu].replicas[%zu].%s", ep->shard,
                 ep->replica, ep->field);
    }
}

/* Two replicas listening on the same address could never both start. */
static int check_endpoints(const struct agenda_topology *t, int one_shard,
                           struct jc_err *e)
{
    struct endpoint *ep;
    size_t n = 0, i, j, k;
    char p[JC_PATH_LEN], q[JC_PATH_LEN];
    int rc = 0;

    for (i = 0; i < t->n_shards; i++) {
        n += 2 * t->shards[i].n_replicas;
    }
    ep = calloc(n, sizeof(*ep));
    if (ep == NULL) {
        jc_fail(e, "shards", "out of memory");
        return -1;
    }
    n = 0;
    for (i = 0; i < t->n_shards; i++) {
        for (j = 0; j < t->shards[i].n_replicas; j++) {
            const struct agenda_replica *r = &t->shards[i].replicas[j];
            struct endpoint a = { r->host, r->http_port, i, j, "http_port" };
            struct endpoint b = { r->host, r->raft_port, i, j, "raft_port" };
            ep[n++] = a;
            ep[n++] = b;
        }
    }
    for (i = 0; i < n && rc == 0; i++) {
        for (k = 0; k < i; k++) {
            if (ep[k].port == ep[i].port &&
                strcasecmp(ep[k].host, ep[i].host) == 0) {
                endpoint_path(p, &ep[i], one_shard);
                endpoint_path(q, &ep[k], one_shard);
                jc_fail(e, p, "%s:%u is already used by %s", ep[i].host,
                        (unsigned)ep[i].port, q);
                rc = -1;
                break;
            }
        }
    }
    free(ep);
    return rc;
}

/* Exactly one users shard and one groups shard; at least one events. */
static int check_kinds(const struct agenda_topology *t, struct jc_err *e)
{
    static const enum agenda_shard_kind single[] = {
        AGENDA_SHARD_USERS, AGENDA_SHARD_GROUPS
    };
    size_t i, k;
    char p[JC_PATH_LEN];

    for (k = 0; k < sizeof(single) / sizeof(single[0]); k++) {
        size_t first = t->n_shards;

        for (i = 0; i < t->n_shards; i++) {
            if (t->shards[i].kind != single[k]) {
                continue;
            }
            if (first != t->n_shards) {
                snprintf(p, sizeof(p), "shards[%zu].kind", i);
                jc_fail(e, p, "a second shard of kind \"%s\" (shards[%zu] is "
                        "one already); exactly one is required",
                        agenda_shard_kind_name(single[k]), first);
                return -1;
            }
            first = i;
        }
        if (first == t->n_shards) {
            jc_fail(e, "shards", "no shard of kind \"%s\"; exactly one is "
                    "required", agenda_shard_kind_name(single[k]));
            return -1;
        }
    }
    if (t->n_events == 0) {
        jc_fail(e, "shards", "no shard of kind \"events\"; at least one is "
                "required");
        return -1;
    }
    return 0;
}

static int cmp_range(const void *a, const void *b)
{
    const struct agenda_shard *x = *(const struct agenda_shard *const *)a;
    const struct agenda_shard *y = *(const struct agenda_shard *const *)b;
    int c = strcmp(x->range_from, y->range_from);

    if (c != 0) {
        return c;
    }
    return x->index < y->index ? -1 : x->index > y->index;
}

/*
 * Sorts the events shards by range and checks that the ranges tile the key
 * space: the first starts at "", each starts where the previous ends, the
 * last is unbounded.  Then every key has exactly one events shard.
 */
static int check_tiling(struct agenda_topology *t, struct jc_err *e)
{
    const struct agenda_shard **ev = t->events;
    size_t i, n = 0;
    char p[JC_PATH_LEN];

    for (i = 0; i < t->n_shards; i++) {
        if (t->shards[i].kind == AGENDA_SHARD_EVENTS) {
            ev[n++] = &t->shards[i];
        }
    }
    qsort(ev, n, sizeof(*ev), cmp_range);
    if (ev[0]->range_from[0] != '\0') {
        snprintf(p, sizeof(p), "shards[%zu].range.from", ev[0]->index);
        jc_fail(e, p, "the lowest events range starts at \"%s\", but the "
                "ranges must start at \"\" so that every key has a shard",
                ev[0]->range_from);
        return -1;
    }
    for (i = 0; i + 1 < n; i++) {
        const struct agenda_shard *a = ev[i], *b = ev[i + 1];
        int c;

        if (a->range_to[0] == '\0') {
            snprintf(p, sizeof(p), "shards[%zu].range", b->index);
            jc_fail(e, p, "[\"%s\", \"%s\") overlaps shards[%zu], whose range "
                    "[\"%s\", unbounded) already covers it", b->range_from,
                    b->range_to, a->index, a->range_from);
            return -1;
        }
        c = strcmp(b->range_from, a->range_to);
        if (c < 0) {
            snprintf(p, sizeof(p), "shards[%zu].range", b->index);
            jc_fail(e, p, "[\"%s\", \"%s\") overlaps shards[%zu] range "
                    "[\"%s\", \"%s\")", b->range_from, b->range_to, a->index,
                    a->range_from, a->range_to);
            return -1;
        }
        if (c > 0) {
            snprintf(p, sizeof(p), "shards[%zu].range.from", b->index);
            jc_fail(e, p, "gap: keys from \"%s\" (where shards[%zu] ends) to "
                    "\"%s\" have no shard; ranges must be contiguous",
                    a->range_to, a->index, b->range_from);
            return -1;
        }
    }
    if (ev[n - 1]->range_to[0] != '\0') {
        snprintf(p, sizeof(p), "shards[%zu].range.to", ev[n - 1]->index);
        jc_fail(e, p, "the highest events range ends at \"%s\"; the last "
                "range must end at \"\" (unbounded) so that every key has a "
                "shard",
                ev[n - 1]->range_to);
        return -1;
    }
    return 0;
}

static int parse_shards(json_t *root, struct agenda_topology *t,
                        struct jc_err *e)
{
    json_t *arr = json_object_get(root, "shards");
    size_t i, n;

    if (arr == NULL) {
        jc_fail(e, "shards", "missing (required)");
        return -1;
    }
    if (!json_is_array(arr)) {
        jc_fail(e, "shards", "must be an array");
        return -1;
    }
    n = json_array_size(arr);
    if (n < 1 || n > AGENDA_TOPO_MAX_SHARDS) {
        jc_fail(e, "shards", "must list 1..%d shards, got %zu",
                AGENDA_TOPO_MAX_SHARDS, n);
        return -1;
    }
    t->shards = calloc(n, sizeof(*t->shards));
    if (t->shards == NULL) {
        jc_fail(e, "shards", "out of memory");
        return -1;
    }
    for (i = 0; i < n; i++) {
        char p[JC_PATH_LEN];

        jc_join_index(p, "shards", i);
        if (parse_shard(json_array_get(arr, i), p, i, t, e)) {
            return -1;
        }
        t->n_shards = i + 1;
        if (t->shards[i].kind == AGENDA_SHARD_EVENTS) {
            t->n_events++;
        }
    }
    if (check_kinds(t, e) || check_endpoints(t, 0, e)) {
        return -1;
    }
    t->events = calloc(t->n_events, sizeof(*t->events));
    if (t->events == NULL) {
        jc_fail(e, "shards", "out of memory");
        return -1;
    }
    return check_tiling(t, e);
}

/*
 * The one shard of an agent's document ("shard", an object).  It is part
 * of a cluster, so the cluster-wide rules (one users and one groups shard,
 * events ranges tiling the key space) do not apply; its own rules do.
 */
static int parse_one_shard(json_t *root, struct agenda_topology *t,
                           struct jc_err *e)
{
    json_t *s = json_object_get(root, "shard");

    if (s == NULL) {
        jc_fail(e, "shard", "missing (required)");
        return -1;
    }
    t->shards = calloc(1, sizeof(*t->shards));
    t->events = calloc(1, sizeof(*t->events));
    if (t->shards == NULL || t->events == NULL) {
        jc_fail(e, "shard", "out of memory");
        return -1;
    }
    if (parse_shard(s, "shard", 0, t, e)) {
        return -1;
    }
    t->n_shards = 1;
    if (t->shards[0].kind == AGENDA_SHARD_EVENTS) {
        t->events[0] = &t->shards[0];
        t->n_events = 1;
    }
    return check_endpoints(t, 1, e);
}

/* Optional "internal_tls": {"dir": "<non-empty path>"}. */
static int parse_internal_tls(json_t *root, struct agenda_topology *t,
                              struct jc_err *e)
{
    static const char *const keys[] = { "dir", NULL };
    json_t *tls = json_object_get(root, "internal_tls");

    if (tls == NULL) {
        return 0;
    }
    if (jc_want_object(tls, "internal_tls", e) ||
        jc_check_keys(tls, "internal_tls", keys, NULL, e) ||
        jc_get_string(tls, "internal_tls", "dir", 1, t->internal_tls_dir,
                      AGENDA_TOPO_PATH_LEN_MAX, e) < 0) {
        return -1;
    }
    if (t->internal_tls_dir[0] == '\0') {
        jc_fail(e, "internal_tls.dir", "must not be empty");
        return -1;
    }
    return 0;
}

int agenda_topology_parse_root(json_t *root, int one_shard,
                               const char *const *extra_keys,
                               struct agenda_topology *t, struct jc_err *e)
{
    static const char *const whole[] = {
        "version", "cluster", "raft", "data_dir", "internal_tls", "servers",
        "shards", NULL
    };
    static const char *const part[] = {
        "version", "cluster", "raft", "internal_tls", "servers", "shard", NULL
    };
    uint64_t v;

    if (jc_check_keys(root, "", one_shard ? part : whole, extra_keys, e)) {
        return -1;
    }
    if (jc_get_uint(root, "", "version", 1, 0, UINT32_MAX, &v, e) < 0) {
        return -1;
    }
    if (v != AGENDA_TOPO_VERSION) {
        jc_fail(e, "version", "unsupported version %llu (this build reads "
                "version %d)", (unsigned long long)v, AGENDA_TOPO_VERSION);
        return -1;
    }
    t->version = (uint32_t)v;
    if (jc_get_string(root, "", "cluster", 0, t->cluster,
                      AGENDA_TOPO_NAME_LEN_MAX, e) < 0 ||
        (t->cluster[0] != '\0' &&
         jc_check_name(t->cluster, "", "cluster", e))) {
        return -1;
    }
    if (!one_shard) {
        switch (jc_get_string(root, "", "data_dir", 0, t->data_dir,
                              AGENDA_TOPO_PATH_LEN_MAX, e)) {
        case -1:
            return -1;
        case 0:
            snprintf(t->data_dir, sizeof(t->data_dir), "%s",
                     DEFAULT_DATA_DIR);
            break;
        default:
            if (t->data_dir[0] == '\0') {
                jc_fail(e, "data_dir", "must not be empty");
                return -1;
            }
            break;
        }
    }
    if (parse_internal_tls(root, t, e) || parse_raft(root, &t->raft, e) ||
        parse_servers(root, t, e)) {
        return -1;
    }
    return one_shard ? parse_one_shard(root, t, e) : parse_shards(root, t, e);
}

int agenda_topology_parse(const char *json, size_t len,
                          struct agenda_topology **out,
                          char *err, size_t errlen)
{
    struct jc_err e = { err, errlen };
    struct agenda_topology *t;
    json_t *root;
    int rc;

    if (out == NULL) {
        return -1;
    }
    *out = NULL;
    if (err != NULL && errlen > 0) {
        err[0] = '\0';
    }
    root = jc_load(json, len, &e);
    if (root == NULL) {
        return -1;
    }
    t = calloc(1, sizeof(*t));
    if (t == NULL) {
        json_decref(root);
        jc_fail(&e, "(top level)", "out of memory");
        return -1;
    }
    rc = agenda_topology_parse_root(root, 0, NULL, t, &e);
    json_decref(root);
    if (rc != 0) {
        agenda_topology_free(t);
        return -1;
    }
    *out = t;
    return 0;
}

/* jc_load_file's parser */
static int parse_file(const char *json, size_t len, void *out, char *err,
                      size_t errlen)
{
    return agenda_topology_parse(json, len, out, err, errlen);
}

int agenda_topology_load(const char *path, struct agenda_topology **out,
                         char *err, size_t errlen)
{
    if (out == NULL) {
        return -1;
    }
    *out = NULL;
    return jc_load_file(path, "topology", parse_file, out, err, errlen);
}

void agenda_topology_free(struct agenda_topology *topo)
{
    if (topo == NULL) {
        return;
    }
    free(topo->servers);
    free(topo->shards);
    free(topo->events);
    free(topo);
}

const struct agenda_shard *agenda_topology_shard(
    const struct agenda_topology *topo, const char *name)
{
    size_t i;

    if (topo == NULL || name == NULL) {
        return NULL;
    }
    for (i = 0; i < topo->n_shards; i++) {
        if (strcmp(topo->shards[i].name, name) == 0) {
            return &topo->shards[i];
        }
    }
    return NULL;
}

const struct agenda_replica *agenda_topology_replica(
    const struct agenda_shard *shard, uint32_t id)
{
    size_t i;

    if (shard == NULL) {
        return NULL;
    }
    for (i = 0; i < shard->n_replicas; i++) {
        if (shard->replicas[i].id == id) {
            return &shard->replicas[i];
        }
    }
    return NULL;
}

const char *agenda_shard_kind_name(enum agenda_shard_kind kind)
{
    switch (kind) {
    case AGENDA_SHARD_EVENTS:
        return "events";
    case AGENDA_SHARD_GROUPS:
        return "groups";
    case AGENDA_SHARD_USERS:
        return "users";
    }
    return "unknown";
}

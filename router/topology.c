/*
 * topology.c — parse and validate the topology file (see topology.h).
 *
 * Parsing is one pass over the JSON tree that copies every field into fixed
 * structs, checking each as it goes; the cross-field rules (unique names,
 * unique endpoints, kinds, range tiling) run afterwards on the structs.  The
 * first violation stops everything, so an error always names one path.
 */
#include "topology.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PATH_LEN 128

/* Defaults for the optional "raft" object and "data_dir". */
#define DEFAULT_TICK_MS 25
#define DEFAULT_ELECTION_TICKS 8
#define DEFAULT_HEARTBEAT_TICKS 2
#define DEFAULT_SNAPSHOT_THRESHOLD 10000
#define DEFAULT_MAP_SIZE_MB 1024
#define DEFAULT_DATA_DIR "var/data"

struct perr {
    char *buf;
    size_t len;
};

/* One listening endpoint, for the duplicate (host, port) check. */
struct endpoint {
    const char *host;
    uint16_t port;
    size_t shard;
    size_t replica;
    const char *field; /* "http_port" or "raft_port" */
};

static void fail(struct perr *e, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(struct perr *e, const char *path, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (e->buf == NULL || e->len == 0) {
        return;
    }
    n = snprintf(e->buf, e->len, "%s: ", path);
    if (n < 0 || (size_t)n >= e->len) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(e->buf + n, e->len - (size_t)n, fmt, ap);
    va_end(ap);
}

/*
 * Writes "parent.key" (or "key" at the top level) into out.  Paths are
 * short by construction (names are bounded); a truncated one still ends in
 * a NUL, and only makes the message less precise.
 */
static void join(char *out, const char *parent, const char *key)
{
    int n;

    if (parent[0] == '\0') {
        n = snprintf(out, PATH_LEN, "%s", key);
    } else {
        n = snprintf(out, PATH_LEN, "%s.%s", parent, key);
    }
    if (n < 0) {
        out[0] = '\0';
    }
}

/* Writes "parent[i]" into out, like join(). */
static void join_index(char *out, const char *parent, size_t i)
{
    if (snprintf(out, PATH_LEN, "%s[%zu]", parent, i) < 0) {
        out[0] = '\0';
    }
}

/*
 * Rejects any key of obj not in allowed (NULL-terminated), so that a typo
 * such as "raft_prot" is an error instead of a silently ignored field.
 */
static int check_keys(json_t *obj, const char *path,
                      const char *const *allowed, struct perr *e)
{
    const char *key;
    json_t *val;
    char p[PATH_LEN];

    json_object_foreach(obj, key, val) {
        size_t i;
        int known = 0;

        (void)val;
        for (i = 0; allowed[i] != NULL; i++) {
            if (strcmp(key, allowed[i]) == 0) {
                known = 1;
                break;
            }
        }
        if (!known) {
            char list[256];
            size_t used = 0;

            list[0] = '\0';
            for (i = 0; allowed[i] != NULL && used < sizeof(list); i++) {
                int n = snprintf(list + used, sizeof(list) - used, "%s%s",
                                 i ? ", " : "", allowed[i]);
                if (n < 0) {
                    break;
                }
                used += (size_t)n;
            }
            join(p, path, key);
            fail(e, p, "unknown key (allowed: %s)", list);
            return -1;
        }
    }
    return 0;
}

/* The object at obj, or an error naming path when it is something else. */
static int want_object(json_t *obj, const char *path, struct perr *e)
{
    if (!json_is_object(obj)) {
        fail(e, path, "must be a JSON object");
        return -1;
    }
    return 0;
}

/*
 * Copies the string member key of obj into dst (capacity max + 1).
 * Returns 1 when copied, 0 when absent and optional, -1 on error.  Strings
 * with NUL or other control characters are refused: they end up in file
 * names, logs and HTTP headers.
 */
static int get_string(json_t *obj, const char *path, const char *key,
                      int required, char *dst, size_t max, struct perr *e)
{
    json_t *v = json_object_get(obj, key);
    char p[PATH_LEN];
    const char *s;
    size_t n, i;

    join(p, path, key);
    if (v == NULL) {
        if (required) {
            fail(e, p, "missing (required)");
            return -1;
        }
        return 0;
    }
    if (!json_is_string(v)) {
        fail(e, p, "must be a string");
        return -1;
    }
    s = json_string_value(v);
    n = json_string_length(v);
    if (n > max) {
        fail(e, p, "too long (%zu bytes, at most %zu)", n, max);
        return -1;
    }
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f) {
            fail(e, p, "must not contain control characters");
            return -1;
        }
    }
    memcpy(dst, s, n);
    dst[n] = '\0';
    return 1;
}

/*
 * Reads the integer member key of obj into *out, checking min..max.
 * Returns 1 when read, 0 when absent and optional, -1 on error.
 */
static int get_uint(json_t *obj, const char *path, const char *key,
                    int required, uint64_t min, uint64_t max, uint64_t *out,
                    struct perr *e)
{
    json_t *v = json_object_get(obj, key);
    char p[PATH_LEN];
    json_int_t n;

    join(p, path, key);
    if (v == NULL) {
        if (required) {
            fail(e, p, "missing (required)");
            return -1;
        }
        return 0;
    }
    if (!json_is_integer(v)) {
        fail(e, p, "must be an integer, %llu..%llu",
             (unsigned long long)min, (unsigned long long)max);
        return -1;
    }
    n = json_integer_value(v);
    if (n < 0 || (uint64_t)n < min || (uint64_t)n > max) {
        fail(e, p, "must be %llu..%llu", (unsigned long long)min,
             (unsigned long long)max);
        return -1;
    }
    *out = (uint64_t)n;
    return 1;
}

/* Names become directory names and nginx upstream names: keep them tame. */
static int check_name(const char *s, const char *path, const char *key,
                      struct perr *e)
{
    char p[PATH_LEN];
    size_t i;
    int ok = (s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z');

    for (i = 1; ok && s[i] != '\0'; i++) {
        char c = s[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
             (c >= '0' && c <= '9') || c == '_' || c == '-';
    }
    if (!ok) {
        join(p, path, key);
        fail(e, p, "\"%s\" is not a valid name: use 1..%d letters, digits, "
             "'_' or '-', starting with a letter", s,
             AGENDA_TOPO_NAME_LEN_MAX);
        return -1;
    }
    return 0;
}

/* A DNS name, an IPv4 literal or a bare IPv6 literal (no brackets). */
static int check_host(const char *s, const char *path, struct perr *e)
{
    char p[PATH_LEN];
    size_t i;
    int ok = s[0] != '\0';

    for (i = 0; ok && s[i] != '\0'; i++) {
        char c = s[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
             (c >= '0' && c <= '9') || c == '.' || c == '-' || c == ':';
    }
    if (!ok) {
        join(p, path, "host");
        fail(e, p, "\"%s\" is not a host name or IP address", s);
        return -1;
    }
    return 0;
}

static int parse_raft(json_t *root, struct agenda_raft_timing *rt,
                      struct perr *e)
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
    if (want_object(obj, "raft", e) || check_keys(obj, "raft", keys, e)) {
        return -1;
    }
    switch (get_uint(obj, "raft", "tick_ms", 0, 1, 10000, &v, e)) {
    case -1: return -1;
    case 1: rt->tick_ms = (uint32_t)v; break;
    default: break;
    }
    switch (get_uint(obj, "raft", "election_ticks", 0, 2, 100000, &v, e)) {
    case -1: return -1;
    case 1: rt->election_ticks = (uint32_t)v; break;
    default: break;
    }
    switch (get_uint(obj, "raft", "heartbeat_ticks", 0, 1, 100000, &v, e)) {
    case -1: return -1;
    case 1: rt->heartbeat_ticks = (uint32_t)v; break;
    default: break;
    }
    switch (get_uint(obj, "raft", "snapshot_threshold", 0, 1, 1000000000,
                     &v, e)) {
    case -1: return -1;
    case 1: rt->snapshot_threshold = v; break;
    default: break;
    }
    switch (get_uint(obj, "raft", "map_size_mb", 0, 1, 1048576, &v, e)) {
    case -1: return -1;
    case 1: rt->map_size_mb = (uint32_t)v; break;
    default: break;
    }
    /* A follower must hear several heartbeats per election timeout, or it
     * campaigns against a healthy leader. */
    if (rt->election_ticks <= rt->heartbeat_ticks) {
        fail(e, "raft.election_ticks", "must be greater than "
             "raft.heartbeat_ticks (%u), got %u",
             (unsigned)rt->heartbeat_ticks, (unsigned)rt->election_ticks);
        return -1;
    }
    return 0;
}

static int parse_servers(json_t *root, struct agenda_topology *t,
                         struct perr *e)
{
    static const char *const keys[] = { "name", "host", NULL };
    json_t *arr = json_object_get(root, "servers");
    size_t i, j, n;
    char p[PATH_LEN];

    if (arr == NULL) {
        fail(e, "servers", "missing (required)");
        return -1;
    }
    if (!json_is_array(arr)) {
        fail(e, "servers", "must be an array");
        return -1;
    }
    n = json_array_size(arr);
    if (n < 1 || n > AGENDA_TOPO_MAX_SERVERS) {
        fail(e, "servers", "must list 1..%d servers, got %zu",
             AGENDA_TOPO_MAX_SERVERS, n);
        return -1;
    }
    t->servers = calloc(n, sizeof(*t->servers));
    if (t->servers == NULL) {
        fail(e, "servers", "out of memory");
        return -1;
    }
    for (i = 0; i < n; i++) {
        json_t *s = json_array_get(arr, i);
        struct agenda_server *sv = &t->servers[i];

        snprintf(p, sizeof(p), "servers[%zu]", i);
        if (want_object(s, p, e) || check_keys(s, p, keys, e) ||
            get_string(s, p, "name", 1, sv->name, AGENDA_TOPO_NAME_LEN_MAX,
                       e) < 0 ||
            check_name(sv->name, p, "name", e) ||
            get_string(s, p, "host", 1, sv->host, AGENDA_TOPO_HOST_LEN_MAX,
                       e) < 0 ||
            check_host(sv->host, p, e)) {
            return -1;
        }
        for (j = 0; j < i; j++) {
            if (strcmp(t->servers[j].name, sv->name) == 0) {
                char np[PATH_LEN];

                join(np, p, "name");
                fail(e, np, "duplicate server name \"%s\" (also "
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
                         struct agenda_shard *sh, size_t j, struct perr *e)
{
    static const char *const keys[] = {
        "id", "name", "server", "http_port", "raft_port", NULL
    };
    struct agenda_replica *rep = &sh->replicas[j];
    char server[AGENDA_TOPO_NAME_LEN_MAX + 1];
    char fp[PATH_LEN];
    uint64_t v;
    size_t k;

    if (want_object(r, p, e) || check_keys(r, p, keys, e) ||
        get_uint(r, p, "id", 1, 1, AGENDA_TOPO_MAX_REPLICAS, &v, e) < 0) {
        return -1;
    }
    rep->id = (uint32_t)v;
    if (get_string(r, p, "name", 1, rep->name, AGENDA_TOPO_NAME_LEN_MAX,
                   e) < 0 || check_name(rep->name, p, "name", e) ||
        get_string(r, p, "server", 1, server, AGENDA_TOPO_NAME_LEN_MAX,
                   e) < 0) {
        return -1;
    }
    rep->server = find_server(t, server);
    if (rep->server == NULL) {
        join(fp, p, "server");
        fail(e, fp, "unknown server \"%s\" (not in servers)", server);
        return -1;
    }
    rep->host = rep->server->host;
    if (get_uint(r, p, "http_port", 1, 1, 65535, &v, e) < 0) {
        return -1;
    }
    rep->http_port = (uint16_t)v;
    if (get_uint(r, p, "raft_port", 1, 1, 65535, &v, e) < 0) {
        return -1;
    }
    rep->raft_port = (uint16_t)v;
    for (k = 0; k < j; k++) {
        if (sh->replicas[k].id == rep->id) {
            join(fp, p, "id");
            fail(e, fp, "duplicate replica id %u in shard \"%s\" "
                 "(also replicas[%zu])", (unsigned)rep->id, sh->name, k);
            return -1;
        }
        if (strcmp(sh->replicas[k].name, rep->name) == 0) {
            join(fp, p, "name");
            fail(e, fp, "duplicate replica name \"%s\" in shard \"%s\" "
                 "(also replicas[%zu])", rep->name, sh->name, k);
            return -1;
        }
    }
    return 0;
}

static int parse_kind(json_t *s, const char *p,
                      enum agenda_shard_kind *kind, struct perr *e)
{
    char buf[16];
    char fp[PATH_LEN];

    if (get_string(s, p, "kind", 1, buf, sizeof(buf) - 1, e) < 0) {
        return -1;
    }
    if (strcmp(buf, "events") == 0) {
        *kind = AGENDA_SHARD_EVENTS;
    } else if (strcmp(buf, "groups") == 0) {
        *kind = AGENDA_SHARD_GROUPS;
    } else if (strcmp(buf, "users") == 0) {
        *kind = AGENDA_SHARD_USERS;
    } else {
        join(fp, p, "kind");
        fail(e, fp, "\"%s\" is not a shard kind (events, groups or users)",
             buf);
        return -1;
    }
    return 0;
}

/* Range bounds are compared with case-folded keys, so they must be folded
 * themselves: a bound "N" would sort before every lower-case key. */
static int check_bound(const char *s, const char *p, const char *key,
                       struct perr *e)
{
    char fp[PATH_LEN];
    size_t i;

    for (i = 0; s[i] != '\0'; i++) {
        if (s[i] >= 'A' && s[i] <= 'Z') {
            join(fp, p, key);
            fail(e, fp, "\"%s\" has upper-case letters; keys are "
                 "case-folded before routing, so bounds must be lower case",
                 s);
            return -1;
        }
    }
    return 0;
}

static int parse_range(json_t *s, const char *p,
                       struct agenda_shard *sh, struct perr *e)
{
    static const char *const keys[] = { "from", "to", NULL };
    json_t *r = json_object_get(s, "range");
    char rp[PATH_LEN];

    join(rp, p, "range");
    sh->range_from[0] = '\0';
    sh->range_to[0] = '\0';
    if (r == NULL) {
        if (sh->kind == AGENDA_SHARD_EVENTS) {
            fail(e, rp, "missing (required for events shards)");
            return -1;
        }
        return 0;
    }
    if (want_object(r, rp, e) || check_keys(r, rp, keys, e) ||
        get_string(r, rp, "from", 1, sh->range_from,
                   AGENDA_TOPO_KEY_LEN_MAX, e) < 0 ||
        check_bound(sh->range_from, rp, "from", e) ||
        get_string(r, rp, "to", 1, sh->range_to,
                   AGENDA_TOPO_KEY_LEN_MAX, e) < 0 ||
        check_bound(sh->range_to, rp, "to", e)) {
        return -1;
    }
    if (sh->kind != AGENDA_SHARD_EVENTS) {
        if (sh->range_from[0] != '\0' || sh->range_to[0] != '\0') {
            fail(e, rp, "a %s shard holds every key: use "
                 "{\"from\": \"\", \"to\": \"\"} or leave range out",
                 agenda_shard_kind_name(sh->kind));
            return -1;
        }
        return 0;
    }
    if (sh->range_to[0] != '\0' && strcmp(sh->range_from, sh->range_to) >= 0) {
        fail(e, rp, "from \"%s\" must sort before to \"%s\" "
             "(\"\" as to means unbounded)", sh->range_from, sh->range_to);
        return -1;
    }
    return 0;
}

static int parse_shard(json_t *s, size_t i, struct agenda_topology *t,
                       struct perr *e)
{
    static const char *const keys[] = {
        "name", "kind", "range", "replicas", NULL
    };
    struct agenda_shard *sh = &t->shards[i];
    json_t *reps;
    char p[PATH_LEN], rp[PATH_LEN];
    size_t j, n;

    snprintf(p, sizeof(p), "shards[%zu]", i);
    sh->index = i;
    if (want_object(s, p, e) || check_keys(s, p, keys, e) ||
        get_string(s, p, "name", 1, sh->name, AGENDA_TOPO_NAME_LEN_MAX,
                   e) < 0 ||
        check_name(sh->name, p, "name", e)) {
        return -1;
    }
    for (j = 0; j < i; j++) {
        if (strcmp(t->shards[j].name, sh->name) == 0) {
            join(rp, p, "name");
            fail(e, rp, "duplicate shard name \"%s\" (also shards[%zu])",
                 sh->name, j);
            return -1;
        }
    }
    if (parse_kind(s, p, &sh->kind, e) || parse_range(s, p, sh, e)) {
        return -1;
    }
    join(rp, p, "replicas");
    reps = json_object_get(s, "replicas");
    if (reps == NULL) {
        fail(e, rp, "missing (required)");
        return -1;
    }
    if (!json_is_array(reps)) {
        fail(e, rp, "must be an array");
        return -1;
    }
    n = json_array_size(reps);
    if (n < 1 || n > AGENDA_TOPO_MAX_REPLICAS) {
        fail(e, rp, "must list 1..%d replicas, got %zu",
             AGENDA_TOPO_MAX_REPLICAS, n);
        return -1;
    }
    for (j = 0; j < n; j++) {
        char ep[PATH_LEN];

        join_index(ep, rp, j);
        if (parse_replica(json_array_get(reps, j), ep, t, sh, j, e)) {
            return -1;
        }
        sh->n_replicas = j + 1;
    }
    return 0;
}

/* Two replicas listening on the same address could never both start. */
static int check_endpoints(const struct agenda_topology *t, struct perr *e)
{
    struct endpoint *ep;
    size_t n = 0, i, j, k;
    char p[PATH_LEN];
    int rc = 0;

    for (i = 0; i < t->n_shards; i++) {
        n += 2 * t->shards[i].n_replicas;
    }
    ep = calloc(n, sizeof(*ep));
    if (ep == NULL) {
        fail(e, "shards", "out of memory");
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
                snprintf(p, sizeof(p), "shards[%zu].replicas[%zu].%s",
                         ep[i].shard, ep[i].replica, ep[i].field);
                fail(e, p, "%s:%u is already used by "
                     "shards[%zu].replicas[%zu].%s", ep[i].host,
                     (unsigned)ep[i].port, ep[k].shard, ep[k].replica,
                     ep[k].field);
                rc = -1;
                break;
            }
        }
    }
    free(ep);
    return rc;
}

/* Exactly one users shard and one groups shard; at least one events. */
static int check_kinds(const struct agenda_topology *t, struct perr *e)
{
    static const enum agenda_shard_kind single[] = {
        AGENDA_SHARD_USERS, AGENDA_SHARD_GROUPS
    };
    size_t i, k;
    char p[PATH_LEN];

    for (k = 0; k < sizeof(single) / sizeof(single[0]); k++) {
        size_t first = t->n_shards;

        for (i = 0; i < t->n_shards; i++) {
            if (t->shards[i].kind != single[k]) {
                continue;
            }
            if (first != t->n_shards) {
                snprintf(p, sizeof(p), "shards[%zu].kind", i);
                fail(e, p, "a second shard of kind \"%s\" (shards[%zu] is "
                     "one already); exactly one is required",
                     agenda_shard_kind_name(single[k]), first);
                return -1;
            }
            first = i;
        }
        if (first == t->n_shards) {
            fail(e, "shards", "no shard of kind \"%s\"; exactly one is "
                 "required", agenda_shard_kind_name(single[k]));
            return -1;
        }
    }
    if (t->n_events == 0) {
        fail(e, "shards", "no shard of kind \"events\"; at least one is "
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
static int check_tiling(struct agenda_topology *t, struct perr *e)
{
    const struct agenda_shard **ev = t->events;
    size_t i, n = 0;
    char p[PATH_LEN];

    for (i = 0; i < t->n_shards; i++) {
        if (t->shards[i].kind == AGENDA_SHARD_EVENTS) {
            ev[n++] = &t->shards[i];
        }
    }
    qsort(ev, n, sizeof(*ev), cmp_range);
    if (ev[0]->range_from[0] != '\0') {
        snprintf(p, sizeof(p), "shards[%zu].range.from", ev[0]->index);
        fail(e, p, "the lowest events range starts at \"%s\", but the "
             "ranges must start at \"\" so that every key has a shard",
             ev[0]->range_from);
        return -1;
    }
    for (i = 0; i + 1 < n; i++) {
        const struct agenda_shard *a = ev[i], *b = ev[i + 1];
        int c;

        if (a->range_to[0] == '\0') {
            snprintf(p, sizeof(p), "shards[%zu].range", b->index);
            fail(e, p, "[\"%s\", \"%s\") overlaps shards[%zu], whose range "
                 "[\"%s\", unbounded) already covers it", b->range_from,
                 b->range_to, a->index, a->range_from);
            return -1;
        }
        c = strcmp(b->range_from, a->range_to);
        if (c < 0) {
            snprintf(p, sizeof(p), "shards[%zu].range", b->index);
            fail(e, p, "[\"%s\", \"%s\") overlaps shards[%zu] range "
                 "[\"%s\", \"%s\")", b->range_from, b->range_to, a->index,
                 a->range_from, a->range_to);
            return -1;
        }
        if (c > 0) {
            snprintf(p, sizeof(p), "shards[%zu].range.from", b->index);
            fail(e, p, "gap: keys from \"%s\" (where shards[%zu] ends) to "
                 "\"%s\" have no shard; ranges must be contiguous",
                 a->range_to, a->index, b->range_from);
            return -1;
        }
    }
    if (ev[n - 1]->range_to[0] != '\0') {
        snprintf(p, sizeof(p), "shards[%zu].range.to", ev[n - 1]->index);
        fail(e, p, "the highest events range ends at \"%s\"; the last range "
             "must end at \"\" (unbounded) so that every key has a shard",
             ev[n - 1]->range_to);
        return -1;
    }
    return 0;
}

static int parse_shards(json_t *root, struct agenda_topology *t,
                        struct perr *e)
{
    json_t *arr = json_object_get(root, "shards");
    size_t i, n;

    if (arr == NULL) {
        fail(e, "shards", "missing (required)");
        return -1;
    }
    if (!json_is_array(arr)) {
        fail(e, "shards", "must be an array");
        return -1;
    }
    n = json_array_size(arr);
    if (n < 1 || n > AGENDA_TOPO_MAX_SHARDS) {
        fail(e, "shards", "must list 1..%d shards, got %zu",
             AGENDA_TOPO_MAX_SHARDS, n);
        return -1;
    }
    t->shards = calloc(n, sizeof(*t->shards));
    if (t->shards == NULL) {
        fail(e, "shards", "out of memory");
        return -1;
    }
    for (i = 0; i < n; i++) {
        if (parse_shard(json_array_get(arr, i), i, t, e)) {
            return -1;
        }
        t->n_shards = i + 1;
        if (t->shards[i].kind == AGENDA_SHARD_EVENTS) {
            t->n_events++;
        }
    }
    if (check_kinds(t, e) || check_endpoints(t, e)) {
        return -1;
    }
    t->events = calloc(t->n_events, sizeof(*t->events));
    if (t->events == NULL) {
        fail(e, "shards", "out of memory");
        return -1;
    }
    return check_tiling(t, e);
}

static int parse_root(json_t *root, struct agenda_topology *t,
                      struct perr *e)
{
    static const char *const keys[] = {
        "version", "cluster", "raft", "data_dir", "servers", "shards", NULL
    };
    uint64_t v;

    if (!json_is_object(root)) {
        fail(e, "(top level)", "must be a JSON object");
        return -1;
    }
    if (check_keys(root, "", keys, e) ||
        get_uint(root, "", "version", 1, 0, UINT32_MAX, &v, e) < 0) {
        return -1;
    }
    if (v != AGENDA_TOPO_VERSION) {
        fail(e, "version", "unsupported version %llu (this build reads "
             "version %d)", (unsigned long long)v, AGENDA_TOPO_VERSION);
        return -1;
    }
    t->version = (uint32_t)v;
    if (get_string(root, "", "cluster", 0, t->cluster,
                   AGENDA_TOPO_NAME_LEN_MAX, e) < 0 ||
        (t->cluster[0] != '\0' && check_name(t->cluster, "", "cluster", e))) {
        return -1;
    }
    switch (get_string(root, "", "data_dir", 0, t->data_dir,
                       AGENDA_TOPO_PATH_LEN_MAX, e)) {
    case -1:
        return -1;
    case 0:
        snprintf(t->data_dir, sizeof(t->data_dir), "%s", DEFAULT_DATA_DIR);
        break;
    default:
        if (t->data_dir[0] == '\0') {
            fail(e, "data_dir", "must not be empty");
            return -1;
        }
        break;
    }
    if (parse_raft(root, &t->raft, e) || parse_servers(root, t, e) ||
        parse_shards(root, t, e)) {
        return -1;
    }
    return 0;
}

int agenda_topology_parse(const char *json, size_t len,
                          struct agenda_topology **out,
                          char *err, size_t errlen)
{
    struct perr e = { err, errlen };
    struct agenda_topology *t;
    json_error_t jerr;
    json_t *root;
    int rc;

    if (out == NULL) {
        return -1;
    }
    *out = NULL;
    if (err != NULL && errlen > 0) {
        err[0] = '\0';
    }
    if (json == NULL) {
        fail(&e, "(top level)", "no input");
        return -1;
    }
    /* Duplicate keys are refused: the later one would silently win. */
    root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        char where[PATH_LEN];

        snprintf(where, sizeof(where), "line %d column %d", jerr.line,
                 jerr.column);
        fail(&e, where, "invalid JSON: %s", jerr.text);
        return -1;
    }
    t = calloc(1, sizeof(*t));
    if (t == NULL) {
        json_decref(root);
        fail(&e, "(top level)", "out of memory");
        return -1;
    }
    rc = parse_root(root, t, &e);
    json_decref(root);
    if (rc != 0) {
        agenda_topology_free(t);
        return -1;
    }
    *out = t;
    return 0;
}

int agenda_topology_load(const char *path, struct agenda_topology **out,
                         char *err, size_t errlen)
{
    char *data;
    size_t n;
    FILE *f;
    int rc, saved;

    if (out == NULL) {
        return -1;
    }
    *out = NULL;
    if (path == NULL) {
        if (err != NULL && errlen > 0) {
            snprintf(err, errlen, "no topology file given");
        }
        return -1;
    }
    f = fopen(path, "rb");
    if (f == NULL) {
        saved = errno;
        if (err != NULL && errlen > 0) {
            snprintf(err, errlen, "%s: %s", path, strerror(saved));
        }
        return -1;
    }
    data = malloc(AGENDA_TOPO_FILE_MAX + 1);
    if (data == NULL) {
        fclose(f);
        if (err != NULL && errlen > 0) {
            snprintf(err, errlen, "%s: out of memory", path);
        }
        return -1;
    }
    n = fread(data, 1, AGENDA_TOPO_FILE_MAX + 1, f);
    saved = errno;
    if (ferror(f)) {
        if (err != NULL && errlen > 0) {
            snprintf(err, errlen, "%s: %s", path, strerror(saved));
        }
        fclose(f);
        free(data);
        return -1;
    }
    fclose(f);
    if (n > AGENDA_TOPO_FILE_MAX) {
        if (err != NULL && errlen > 0) {
            snprintf(err, errlen, "%s: larger than %d bytes", path,
                     AGENDA_TOPO_FILE_MAX);
        }
        free(data);
        return -1;
    }
    rc = agenda_topology_parse(data, n, out, err, errlen);
    free(data);
    if (rc != 0 && err != NULL && errlen > 0) {
        /* Prefix the file name; err already holds the message. */
        size_t plen = strlen(path) + 2;
        size_t mlen = strlen(err);

        if (plen < errlen) {
            if (plen + mlen >= errlen) {
                mlen = errlen - plen - 1;
            }
            memmove(err + plen, err, mlen);
            err[plen + mlen] = '\0';
            memcpy(err, path, plen - 2);
            err[plen - 2] = ':';
            err[plen - 1] = ' ';
        }
    }
    return rc;
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

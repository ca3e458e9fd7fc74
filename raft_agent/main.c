/*
 * main.c — the raft_agent daemon: one replica of one shard.
 *
 *   raft_agent --config FILE [options]
 *   raft_agent --topology FILE --shard NAME --node ID [options]
 *   options: [--data-dir DIR] [--listen HOST] [--log-level LEVEL] [--check]
 *
 * The agent's own config (config/gen-agents writes one per replica, see
 * agent_config.h) names the replica and holds its shard, peers, timing and
 * data directory; the second form picks the replica out of the whole
 * topology instead.  Either way everything comes from the topology, the
 * single source of truth in config/; the options override the file.
 * --check validates, prints what the agent would run as, and exits (0 when
 * valid, 2 otherwise) without touching the data.
 *
 * SIGTERM or SIGINT stop the agent gracefully: a leader first hands
 * leadership to a follower, so a planned restart costs no election timeout.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <event2/event.h>

#include "agent_config.h"
#include "http_api.h"
#include "mux_sm.h"
#include "purge_driver.h"
#include "shard_identity.h"
#include "log.h"
#include "tls.h"
#include "node.h"
#include "topology.h"

_Static_assert(AGENDA_TOPO_MAX_REPLICAS == RAFT_MAX_NODES,
               "topology and raft core disagree on the replica limit");

#define TRANSFER_ON_STOP_MS 2000
#define REQUEST_TIMEOUT_MS 5000

struct options {
    const char *config;
    const char *topology;
    const char *shard;
    unsigned long node;
    const char *data_dir;
    const char *listen;
    const char *log_level;
    int check;
};

static void usage(FILE *f)
{
    fprintf(f, "usage: raft_agent --config FILE [options]\n"
               "       raft_agent --topology FILE --shard NAME --node ID "
               "[options]\n"
               "options: [--data-dir DIR] [--listen HOST]\n"
               "         [--log-level debug|info|warn|error] [--check]\n");
}

static int parse_options(int argc, char **argv, struct options *o)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"topology", required_argument, NULL, 't'},
        {"shard", required_argument, NULL, 's'},
        {"node", required_argument, NULL, 'n'},
        {"data-dir", required_argument, NULL, 'd'},
        {"listen", required_argument, NULL, 'l'},
        {"log-level", required_argument, NULL, 'v'},
        {"check", no_argument, NULL, 'k'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof(*o));
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'c':
            o->config = optarg;
            break;
        case 't':
            o->topology = optarg;
            break;
        case 's':
            o->shard = optarg;
            break;
        case 'n':
            errno = 0;
            o->node = strtoul(optarg, &end, 10);
            if (errno != 0 || *end != '\0' || o->node == 0 ||
                o->node > RAFT_MAX_NODES) {
                fprintf(stderr, "raft_agent: --node must be 1..%d\n",
                        RAFT_MAX_NODES);
                return -1;
            }
            break;
        case 'd':
            o->data_dir = optarg;
            break;
        case 'l':
            o->listen = optarg;
            break;
        case 'v':
            o->log_level = optarg;
            break;
        case 'k':
            o->check = 1;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return -1;
        }
    }
    /* exactly one of the two forms */
    int by_topology = o->topology != NULL || o->shard != NULL || o->node != 0;
    if (optind != argc ||
        (o->config != NULL ? by_topology
                           : (o->topology == NULL || o->shard == NULL ||
                              o->node == 0))) {
        usage(stderr);
        return -1;
    }
    return 0;
}

static int set_log_level(const char *name)
{
    enum agenda_log_level level;
    if (agenda_log_level_parse(name, &level) != 0) {
        fprintf(stderr, "raft_agent: unknown log level '%s'\n", name);
        return -1;
    }
    agenda_log_set_level(level);
    return 0;
}

/* mkdir -p for the parents of the data directory (storage creates the
 * last component itself). */
static int make_parents(const char *path)
{
    char buf[2048];
    if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
        return -1;
    for (char *p = buf + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return 0;
}

struct agent {
    struct event_base *base;
    struct agenda_node *node;
    struct agenda_http_api *api;
    struct agenda_purge_driver *purges; /* events shards only */
    struct event *sigterm;
    struct event *sigint;
    struct event *stop_poll;
    unsigned stop_waited_ms;
};

#define STOP_POLL_MS 20

/* While stopping: exit once leadership moved on, or after the budget. */
static void on_stop_poll(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct agent *a = arg;
    a->stop_waited_ms += STOP_POLL_MS;
    if (!agenda_node_is_leader(a->node) ||
        a->stop_waited_ms >= TRANSFER_ON_STOP_MS) {
        event_base_loopexit(a->base, NULL);
        return;
    }
    struct timeval tv = {0, STOP_POLL_MS * 1000};
    evtimer_add(a->stop_poll, &tv);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct agent *a = arg;
    agenda_log(AGENDA_LOG_INFO, "signal %d: stopping", (int)sig);
    event_del(a->sigterm);
    event_del(a->sigint);
    if (!agenda_node_start_transfer(a->node)) {
        event_base_loopexit(a->base, NULL);
        return;
    }
    struct timeval tv = {0, STOP_POLL_MS * 1000};
    evtimer_add(a->stop_poll, &tv);
}

/* Every edge worker may keep hundreds of connections to a leader (its
 * keep-alive pool and bursts beyond it): take the hard limit on open
 * files rather than the usual soft 1024. */
static void raise_open_files(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            agenda_log(AGENDA_LOG_WARN, "cannot raise the open files "
                       "limit: %s", strerror(errno));
    }
}

/* Who this agent is, from either form of the command line; the options
 * override the agent config file. */
struct identity {
    struct agenda_agent_config *config;  /* --config, else NULL */
    struct agenda_topology *whole;       /* --topology, else NULL */
    const struct agenda_topology *topo;  /* the one in use */
    const struct agenda_shard *shard;
    const struct agenda_replica *self;
    char data_dir[2048];
    const char *listen;
    const char *log_level;               /* NULL: the default */
    struct agenda_tls *tls;              /* internal links, or NULL */
};

static void identity_free(struct identity *id)
{
    agenda_tls_free(id->tls);
    agenda_agent_config_free(id->config);
    agenda_topology_free(id->whole);
}

static int identity_load(const struct options *o, struct identity *id)
{
    char err[512];
    memset(id, 0, sizeof(*id));
    if (o->config != NULL) {
        if (agenda_agent_config_load(o->config, &id->config, err,
                                     sizeof(err)) != 0) {
            fprintf(stderr, "raft_agent: %s\n", err);
            return -1;
        }
        id->topo = id->config->topology;
        id->shard = id->config->shard;
        id->self = id->config->self;
        snprintf(id->data_dir, sizeof(id->data_dir), "%s",
                 id->config->data_dir);
        if (id->config->listen[0] != '\0')
            id->listen = id->config->listen;
        if (id->config->log_level[0] != '\0')
            id->log_level = id->config->log_level;
    } else {
        if (agenda_topology_load(o->topology, &id->whole, err,
                                 sizeof(err)) != 0) {
            fprintf(stderr, "raft_agent: %s\n", err);
            return -1;
        }
        id->topo = id->whole;
        id->shard = agenda_topology_shard(id->whole, o->shard);
        id->self = id->shard != NULL
                       ? agenda_topology_replica(id->shard,
                                                 (uint32_t)o->node)
                       : NULL;
        if (id->self == NULL) {
            fprintf(stderr, "raft_agent: the topology has no %s %s%s\n",
                    id->shard == NULL ? "shard" : "replica", o->shard,
                    id->shard == NULL ? "" : " with that --node id");
            return -1;
        }
        snprintf(id->data_dir, sizeof(id->data_dir), "%s/%s/%s",
                 id->whole->data_dir, id->shard->name, id->self->name);
    }
    if (o->data_dir != NULL)
        snprintf(id->data_dir, sizeof(id->data_dir), "%s", o->data_dir);
    if (o->listen != NULL)
        id->listen = o->listen;
    if (id->listen == NULL)
        id->listen = id->self->host;
    if (o->log_level != NULL)
        id->log_level = o->log_level;
    /* Loaded here so that --check also proves the certificates usable. */
    if (id->topo->internal_tls_dir[0] != '\0') {
        id->tls = agenda_tls_new(id->topo->internal_tls_dir, id->shard->name,
                                 id->self->name, err, sizeof(err));
        if (id->tls == NULL) {
            fprintf(stderr, "raft_agent: internal_tls: %s\n", err);
            return -1;
        }
    }
    return 0;
}

/* --check: what this agent would run as, one line per fact. */
static void identity_print(const struct identity *id)
{
    printf("cluster %s\nshard %s (%s)\nnode %u (%s)\nhttp %s:%u\n"
           "raft %s:%u\ndata_dir %s\npeers",
           id->topo->cluster, id->shard->name,
           agenda_shard_kind_name(id->shard->kind), id->self->id,
           id->self->name, id->listen, id->self->http_port, id->listen,
           id->self->raft_port, id->data_dir);
    for (size_t i = 0; i < id->shard->n_replicas; i++) {
        const struct agenda_replica *r = &id->shard->replicas[i];
        if (r != id->self)
            printf(" %u=%s:%u", r->id, r->host, r->raft_port);
    }
    printf("\ninternal_tls %s\n", id->topo->internal_tls_dir[0] != '\0'
                                      ? id->topo->internal_tls_dir
                                      : "off");
}

int main(int argc, char **argv)
{
    struct options o;
    if (parse_options(argc, argv, &o) != 0)
        return 2;
    struct identity id;
    if (identity_load(&o, &id) != 0) {
        identity_free(&id);
        return 2;
    }
    if (id.log_level != NULL && set_log_level(id.log_level) != 0) {
        identity_free(&id);
        return 2;
    }
    if (o.check) {
        identity_print(&id);
        identity_free(&id);
        return 0;
    }
    signal(SIGPIPE, SIG_IGN);
    raise_open_files();

    const struct agenda_topology *topo = id.topo;
    const struct agenda_shard *shard = id.shard;
    const struct agenda_replica *self = id.self;
    if (make_parents(id.data_dir) != 0) {
        fprintf(stderr, "raft_agent: cannot create the parents of %s: %s\n",
                id.data_dir, strerror(errno));
        identity_free(&id);
        return 2;
    }

    struct agenda_node_config cfg = {
        .cluster = topo->cluster,
        .shard = shard->name,
        .id = self->id,
        .data_dir = id.data_dir,
        .map_size = (size_t)topo->raft.map_size_mb << 20,
        .listen_host = id.listen,
        .tick_ms = topo->raft.tick_ms,
        .election_ticks = topo->raft.election_ticks,
        .heartbeat_ticks = topo->raft.heartbeat_ticks,
        .snapshot_threshold = topo->raft.snapshot_threshold,
        .request_timeout_ms = REQUEST_TIMEOUT_MS,
        .sm_ops = &agenda_mux_sm_ops,
    };
    /* The shard's kind and range decide which agenda operations and which
     * calendars this replica accepts. */
    struct agenda_mux_sm sm = {0};
    sm.agenda.shard.kind = (int)shard->kind;
    sm.agenda.shard.range_from = shard->range_from;
    sm.agenda.shard.range_to = shard->range_to;
    cfg.sm = &sm;
    /* ...and every replica of the shard must agree on them: see
     * shard_identity.h. */
    struct agenda_buf identity = {0};
    if (agenda_shard_identity_encode(&identity,
                                     agenda_shard_kind_name(shard->kind),
                                     shard->range_from,
                                     shard->range_to) != 0) {
        fprintf(stderr, "raft_agent: out of memory\n");
        identity_free(&id);
        return 1;
    }
    cfg.identity = identity.data;
    cfg.identity_len = identity.len;
    for (size_t i = 0; i < shard->n_replicas; i++) {
        const struct agenda_replica *r = &shard->replicas[i];
        cfg.peers[i].id = r->id;
        cfg.peers[i].name = r->name;
        cfg.peers[i].host = r->host;
        cfg.peers[i].raft_port = r->raft_port;
        cfg.peers[i].http_port = r->http_port;
    }
    cfg.n_peers = (unsigned)shard->n_replicas;

    char err[512];
    struct agent a = {0};
    a.base = event_base_new();
    int rc = 1;
    if (a.base == NULL || event_base_priority_init(a.base, 3) != 0) {
        fprintf(stderr, "raft_agent: cannot create the event loop\n");
        goto out;
    }
    cfg.tls = id.tls;
    a.node = agenda_node_new(a.base, &cfg, err, sizeof(err));
    if (a.node == NULL) {
        fprintf(stderr, "raft_agent: %s\n", err);
        goto out;
    }
    a.api = agenda_http_api_new(a.base, a.node, cfg.listen_host,
                                self->http_port, id.tls);
    if (a.api == NULL)
        goto out;
    if (shard->kind == AGENDA_SHARD_EVENTS &&
        (a.purges = agenda_purge_driver_new(a.base, a.node)) == NULL) {
        fprintf(stderr, "raft_agent: out of memory\n");
        goto out;
    }
    a.sigterm = evsignal_new(a.base, SIGTERM, on_signal, &a);
    a.sigint = evsignal_new(a.base, SIGINT, on_signal, &a);
    a.stop_poll = evtimer_new(a.base, on_stop_poll, &a);
    if (a.sigterm == NULL || a.sigint == NULL || a.stop_poll == NULL ||
        event_add(a.sigterm, NULL) != 0 || event_add(a.sigint, NULL) != 0)
        goto out;
    agenda_log(AGENDA_LOG_INFO, "shard %s node %u (%s): http %s:%u raft "
               "%s:%u data %s", shard->name, self->id, self->name,
               cfg.listen_host, self->http_port, cfg.listen_host,
               self->raft_port, id.data_dir);
    event_base_dispatch(a.base);
    rc = 0;
out:
    if (a.stop_poll != NULL)
        event_free(a.stop_poll);
    if (a.sigterm != NULL)
        event_free(a.sigterm);
    if (a.sigint != NULL)
        event_free(a.sigint);
    agenda_http_api_free(a.api);
    agenda_purge_driver_free(a.purges);
    agenda_node_free(a.node);
    agenda_buf_free(&identity);   /* the node borrowed it */
    if (a.base != NULL)
        event_base_free(a.base);
    identity_free(&id);
    return rc;
}

/*
 * agent_config.h — one agent's own configuration: which replica it is, the
 * one shard it serves, its peers, and where its data lives.
 *
 * config/gen-agents writes one such file per replica from the topology (so
 * config/topology.json stays the single source of truth), and
 * `raft_agent --config FILE` runs from that file alone: a container or a
 * service unit is given its own file, which names no other shard.
 *
 * The format is the topology's, narrowed to the agent's shard, plus the
 * object "agent" (config/README.md):
 *
 *   { "version": 1, "cluster": "agenda-dev", "raft": { ... },
 *     "servers": [ the servers that the shard's replicas run on ],
 *     "shard": { "name": ..., "kind": ..., "range": ..., "replicas": [...] },
 *     "agent": { "node": 1, "data_dir": "var/data/events_am/node1",
 *                "listen": "0.0.0.0", "log_level": "info" } }
 *
 * "agent.node" must be the id of one of the shard's replicas.  "listen"
 * (the address to bind; default: the host of the replica's server) and
 * "log_level" (debug, info, warn or error; default: the agent's) are
 * optional.  Input is untrusted and checked like the topology; errors start
 * with the JSON path of the offending value.
 */
#ifndef AGENDA_AGENT_CONFIG_H
#define AGENDA_AGENT_CONFIG_H

#include <stddef.h>

#include "topology.h"

struct agenda_agent_config {
    struct agenda_topology *topology;   /* n_shards == 1: not for route.h */
    const struct agenda_shard *shard;   /* &topology->shards[0] */
    const struct agenda_replica *self;  /* the replica "agent.node" names */
    char data_dir[AGENDA_TOPO_PATH_LEN_MAX + 1];
    char listen[AGENDA_TOPO_HOST_LEN_MAX + 1];  /* "" when not given */
    char log_level[8];                          /* "" when not given */
};

/*
 * Parses len bytes of JSON.  On success returns 0 and stores a new config
 * in *out (release it with agenda_agent_config_free()); on failure returns
 * -1 with *out NULL and a message in err, as agenda_topology_parse() does.
 */
int agenda_agent_config_parse(const char *json, size_t len,
                              struct agenda_agent_config **out,
                              char *err, size_t errlen);

/* Reads the file at path (at most AGENDA_TOPO_FILE_MAX bytes) and parses
 * it; messages are prefixed with "<path>: ". */
int agenda_agent_config_load(const char *path,
                             struct agenda_agent_config **out,
                             char *err, size_t errlen);

/* Releases a config and its topology.  NULL is accepted. */
void agenda_agent_config_free(struct agenda_agent_config *cfg);

#endif /* AGENDA_AGENT_CONFIG_H */

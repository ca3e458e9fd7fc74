/*
 * agent_config.c — parse and validate an agent's own configuration (see
 * agent_config.h).  The topology members go through the topology parser
 * itself (agenda_topology_parse_root, one-shard scope), so a replica, a
 * range or a port is checked by exactly the same rules in both files.
 */
#include "agent_config.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_check.h"
#include "log.h" /* raft_agent/: the agent reads this file */
#include "topology_internal.h"

static int parse_log_level(json_t *agent, struct agenda_agent_config *cfg,
                           struct jc_err *e)
{
    enum agenda_log_level level;

    switch (jc_get_string(agent, "agent", "log_level", 0, cfg->log_level,
                          sizeof(cfg->log_level) - 1, e)) {
    case -1:
        return -1;
    case 0:
        return 0;
    default:
        break;
    }
    if (agenda_log_level_parse(cfg->log_level, &level) == 0) {
        return 0;
    }
    jc_fail(e, "agent.log_level", "\"%s\" is not a log level (debug, info, "
            "warn or error)", cfg->log_level);
    return -1;
}

static int parse_agent(json_t *root, struct agenda_agent_config *cfg,
                       struct jc_err *e)
{
    static const char *const keys[] = {
        "node", "data_dir", "listen", "log_level", NULL
    };
    json_t *agent = json_object_get(root, "agent");
    uint64_t node;

    if (agent == NULL) {
        jc_fail(e, "agent", "missing (required)");
        return -1;
    }
    if (jc_want_object(agent, "agent", e) ||
        jc_check_keys(agent, "agent", keys, NULL, e) ||
        jc_get_uint(agent, "agent", "node", 1, 1, AGENDA_TOPO_MAX_REPLICAS,
                    &node, e) < 0) {
        return -1;
    }
    cfg->shard = &cfg->topology->shards[0];
    cfg->self = agenda_topology_replica(cfg->shard, (uint32_t)node);
    if (cfg->self == NULL) {
        jc_fail(e, "agent.node", "shard \"%s\" has no replica with id %u",
                cfg->shard->name, (unsigned)node);
        return -1;
    }
    if (jc_get_string(agent, "agent", "data_dir", 1, cfg->data_dir,
                      AGENDA_TOPO_PATH_LEN_MAX, e) < 0) {
        return -1;
    }
    if (cfg->data_dir[0] == '\0') {
        jc_fail(e, "agent.data_dir", "must not be empty");
        return -1;
    }
    switch (jc_get_string(agent, "agent", "listen", 0, cfg->listen,
                          AGENDA_TOPO_HOST_LEN_MAX, e)) {
    case -1:
        return -1;
    case 1:
        if (jc_check_host(cfg->listen, "agent", "listen", e)) {
            return -1;
        }
        break;
    default:
        break;
    }
    return parse_log_level(agent, cfg, e);
}

int agenda_agent_config_parse(const char *json, size_t len,
                              struct agenda_agent_config **out,
                              char *err, size_t errlen)
{
    static const char *const extra[] = { "agent", NULL };
    struct jc_err e = { err, errlen };
    struct agenda_agent_config *cfg;
    json_t *root;
    int rc = -1;

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
    cfg = calloc(1, sizeof(*cfg));
    if (cfg != NULL) {
        cfg->topology = calloc(1, sizeof(*cfg->topology));
    }
    if (cfg == NULL || cfg->topology == NULL) {
        jc_fail(&e, "(top level)", "out of memory");
    } else if (agenda_topology_parse_root(root, 1, extra, cfg->topology,
                                          &e) == 0) {
        rc = parse_agent(root, cfg, &e);
    }
    json_decref(root);
    if (rc != 0) {
        agenda_agent_config_free(cfg);
        return -1;
    }
    *out = cfg;
    return 0;
}

/* jc_load_file's parser */
static int parse_file(const char *json, size_t len, void *out, char *err,
                      size_t errlen)
{
    return agenda_agent_config_parse(json, len, out, err, errlen);
}

int agenda_agent_config_load(const char *path,
                             struct agenda_agent_config **out,
                             char *err, size_t errlen)
{
    if (out == NULL) {
        return -1;
    }
    *out = NULL;
    return jc_load_file(path, "agent config", parse_file, out, err, errlen);
}

void agenda_agent_config_free(struct agenda_agent_config *cfg)
{
    if (cfg == NULL) {
        return;
    }
    agenda_topology_free(cfg->topology);
    free(cfg);
}

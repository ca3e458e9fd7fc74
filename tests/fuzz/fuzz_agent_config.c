/*
 * fuzz_agent_config.c — libFuzzer target for an agent's own config
 * (router/agent_config.h).
 *
 * Arbitrary bytes go to agenda_agent_config_parse().  A rejected input
 * must leave no config and a NUL-terminated message that names where the
 * problem is; an accepted one must give what main.c relies on: one shard,
 * the replica it names among that shard's replicas, a data directory, and
 * a log level the agent knows (or none).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int known_level(const char *s)
{
    return s[0] == '\0' || strcmp(s, "debug") == 0 ||
           strcmp(s, "info") == 0 || strcmp(s, "warn") == 0 ||
           strcmp(s, "error") == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct agenda_agent_config *c = NULL;
    const struct agenda_shard *s;
    char err[256];

    err[0] = 'x';
    if (agenda_agent_config_parse((const char *)data, size, &c, err,
                                  sizeof(err)) != 0) {
        if (c != NULL || memchr(err, '\0', sizeof(err)) == NULL ||
            err[0] == '\0' || strchr(err, ':') == NULL) {
            abort();
        }
        return 0;
    }
    s = c->shard;
    if (c->topology == NULL || c->topology->n_shards != 1 ||
        s != &c->topology->shards[0] || s->n_replicas < 1 ||
        s->n_replicas > AGENDA_TOPO_MAX_REPLICAS || c->self == NULL ||
        c->self < &s->replicas[0] || c->self >= &s->replicas[s->n_replicas] ||
        agenda_topology_replica(s, c->self->id) != c->self ||
        c->self->host == NULL || c->self->host[0] == '\0' ||
        c->data_dir[0] == '\0' || !known_level(c->log_level) ||
        (s->kind == AGENDA_SHARD_EVENTS) != (c->topology->n_events == 1)) {
        abort();
    }
    agenda_agent_config_free(c);
    return 0;
}

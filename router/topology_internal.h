/*
 * topology_internal.h — the topology parser's entry for other documents of
 * config/ that embed topology members (agent_config.h).  Internal to
 * router/.
 */
#ifndef AGENDA_TOPOLOGY_INTERNAL_H
#define AGENDA_TOPOLOGY_INTERNAL_H

#include <jansson.h>

#include "json_check.h"
#include "topology.h"

/*
 * Parses the topology members of the JSON object root into t (zeroed by the
 * caller, released with agenda_topology_free() on success or failure).
 *
 * one_shard = 0: a whole topology ("shards", all cluster-wide rules).
 * one_shard = 1: part of one, as an agent sees it: a single "shard" object
 * instead of the "shards" array and no "data_dir"; the cluster-wide rules
 * (one users and one groups shard, events ranges tiling the key space) are
 * not checked, the shard's own rules and unique endpoints are.  The result
 * has n_shards == 1 and t->data_dir "", and is not meant for route.h.
 *
 * extra_keys (NULL-terminated, or NULL) are further top-level keys that the
 * caller reads itself; any other unknown key is an error.
 */
int agenda_topology_parse_root(json_t *root, int one_shard,
                               const char *const *extra_keys,
                               struct agenda_topology *t, struct jc_err *e);

#endif /* AGENDA_TOPOLOGY_INTERNAL_H */

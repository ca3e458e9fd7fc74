/*
 * fuzz_topology.c — libFuzzer target for the topology parser and router.
 *
 * Arbitrary bytes go to agenda_topology_parse().  A rejected input must
 * leave no topology and a NUL-terminated message that names where the
 * problem is; an accepted one must satisfy the invariants route.h relies
 * on, which are checked by routing a few keys, including ones built from
 * the topology's own range bounds.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "route.h"
#include "topology.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Whether key (folded) lies in the shard's range [from, to). */
static int in_range(const struct agenda_shard *s, const char *key)
{
    char folded[AGENDA_TOPO_KEY_LEN_MAX + 2];
    size_t i, n = strlen(key);

    if (n >= sizeof(folded)) {
        n = sizeof(folded) - 1;
    }
    for (i = 0; i < n; i++) {
        char c = key[i];
        folded[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    folded[n] = '\0';
    return strcmp(folded, s->range_from) >= 0 &&
           (s->range_to[0] == '\0' || strcmp(folded, s->range_to) < 0);
}

static void check_route(const struct agenda_topology *t, const char *key)
{
    const struct agenda_shard *s = agenda_route_calendar(t, key);

    if (s == NULL || s->kind != AGENDA_SHARD_EVENTS || !in_range(s, key)) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const keys[] = {
        "", "alice", "bob", "Mallory", "n", "N", "nadia", "Zed", "0day",
        "\xff\xff", "~"
    };
    struct agenda_topology *t = NULL;
    char err[256];
    size_t i;

    err[0] = 'x';
    if (agenda_topology_parse((const char *)data, size, &t, err,
                              sizeof(err)) != 0) {
        if (t != NULL || err[0] == '\0' || strchr(err, ':') == NULL) {
            abort();
        }
        return 0;
    }
    if (t == NULL || t->n_events == 0 ||
        agenda_route_kind(t, AGENDA_SHARD_USERS) == NULL ||
        agenda_route_kind(t, AGENDA_SHARD_GROUPS) == NULL) {
        abort();
    }
    for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        check_route(t, keys[i]);
    }
    /* Each range's own lower bound must route to that very shard. */
    for (i = 0; i < t->n_events; i++) {
        if (agenda_route_calendar(t, t->events[i]->range_from) !=
            t->events[i]) {
            abort();
        }
        check_route(t, t->events[i]->range_to);
    }
    for (i = 0; i < t->n_shards; i++) {
        const struct agenda_shard *s = &t->shards[i];

        if (agenda_topology_shard(t, s->name) != s ||
            s->n_replicas < 1 || s->n_replicas > AGENDA_TOPO_MAX_REPLICAS ||
            agenda_topology_replica(s, s->replicas[0].id) !=
                &s->replicas[0]) {
            abort();
        }
    }
    agenda_topology_free(t);
    return 0;
}

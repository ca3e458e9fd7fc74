/*
 * route.c — key → shard (see route.h).
 *
 * The events shards are kept sorted by range and their ranges tile the key
 * space (checked at load), so the shard for a key is the last one whose
 * lower bound is <= the key: a binary search, without copying the key.
 */
#include "route.h"

#include <string.h>

static unsigned char fold(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
}

/*
 * Compares the case-folded key (len bytes) with the NUL-terminated bound,
 * like strcmp: <0, 0 or >0.  Bounds hold no upper-case letters and no NUL,
 * so folding only the key is enough.
 */
static int cmp_folded(const char *key, size_t len, const char *bound)
{
    size_t i;

    for (i = 0; i < len; i++) {
        unsigned char k = fold((unsigned char)key[i]);
        unsigned char b = (unsigned char)bound[i];

        if (b == '\0') {
            return 1; /* key is longer than bound with bound as prefix */
        }
        if (k != b) {
            return k < b ? -1 : 1;
        }
    }
    return bound[len] == '\0' ? 0 : -1;
}

const struct agenda_shard *agenda_route_key(
    const struct agenda_topology *topo, const char *key, size_t len)
{
    size_t lo, hi;

    if (topo == NULL || key == NULL || topo->n_events == 0) {
        return NULL;
    }
    /* Invariant: events[lo - 1] starts <= key (events[0] starts at ""),
     * events[hi] starts > key. */
    lo = 1;
    hi = topo->n_events;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (cmp_folded(key, len, topo->events[mid]->range_from) >= 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return topo->events[lo - 1];
}

const struct agenda_shard *agenda_route_calendar(
    const struct agenda_topology *topo, const char *calendar_id)
{
    if (calendar_id == NULL) {
        return NULL;
    }
    return agenda_route_key(topo, calendar_id, strlen(calendar_id));
}

const struct agenda_shard *agenda_route_kind(
    const struct agenda_topology *topo, enum agenda_shard_kind kind)
{
    size_t i;

    if (topo == NULL || kind == AGENDA_SHARD_EVENTS) {
        return NULL;
    }
    for (i = 0; i < topo->n_shards; i++) {
        if (topo->shards[i].kind == kind) {
            return &topo->shards[i];
        }
    }
    return NULL;
}

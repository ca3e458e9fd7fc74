/*
 * route.h — which shard holds a key.
 *
 * Calendars live on the events shard whose range contains the calendar id
 * (the owner's user name, or a group calendar's id) after ASCII case
 * folding: 'A'..'Z' become 'a'..'z', every other byte is kept, and keys are
 * compared bytewise as unsigned chars.  Users and groups each live on the
 * single shard of their kind.
 *
 * All results are borrowed from the topology and stay valid until
 * agenda_topology_free().  These functions never allocate and never fail on
 * a valid topology; a NULL argument gives NULL.
 */
#ifndef AGENDA_ROUTE_H
#define AGENDA_ROUTE_H

#include <stddef.h>

#include "topology.h"

/*
 * Returns the events shard for the NUL-terminated calendar_id.  Any string
 * routes somewhere (the ranges tile the key space); checking that the id is
 * a well-formed name is the caller's job.
 */
const struct agenda_shard *agenda_route_calendar(
    const struct agenda_topology *topo, const char *calendar_id);

/*
 * The same for a key of len bytes that need not be NUL-terminated (an
 * ngx_str_t, a slice of a URI).  Bytes after len are never read.
 */
const struct agenda_shard *agenda_route_key(
    const struct agenda_topology *topo, const char *key, size_t len);

/*
 * Returns the shard of kind AGENDA_SHARD_USERS or AGENDA_SHARD_GROUPS.  For
 * AGENDA_SHARD_EVENTS, which may have many shards, returns NULL: use
 * agenda_route_calendar() or iterate topo->events for a scatter-gather.
 */
const struct agenda_shard *agenda_route_kind(
    const struct agenda_topology *topo, enum agenda_shard_kind kind);

#endif /* AGENDA_ROUTE_H */

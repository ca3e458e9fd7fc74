/*
 * purge_driver.h — an events shard's leader finishes the purges of
 * deleted groups' calendars that the edge left unfinished.
 *
 * When a group is deleted, the edge empties its calendar with
 * calendar.purge, a bounded batch at a time, and answers its client after
 * a bounded number of batches.  A calendar of more events, an edge that
 * stopped half way, or a shard that changed leader mid-way leave events
 * behind, marked in the state (calendar.purging lists them).  While this
 * replica leads, the driver proposes calendar.purge for them, one batch
 * in flight at a time and a short pause between batches, so that clients'
 * writes keep their share of the log.  Any replica that becomes leader
 * picks up where the last one stopped: the marks are replicated state.
 */
#ifndef AGENDA_PURGE_DRIVER_H
#define AGENDA_PURGE_DRIVER_H

#include <event2/event.h>

#include "node.h"

struct agenda_purge_driver;

/* Start polling node (an events shard's replica).  NULL on ENOMEM. */
struct agenda_purge_driver *agenda_purge_driver_new(struct event_base *base,
                                                    struct agenda_node *node);
/* Stop; a batch in flight is cancelled (its outcome is the log's). */
void agenda_purge_driver_free(struct agenda_purge_driver *d);

#endif /* AGENDA_PURGE_DRIVER_H */

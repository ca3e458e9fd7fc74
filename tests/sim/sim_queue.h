/*
 * sim_queue.h — the simulator's agenda of future events.
 *
 * A binary min-heap ordered by (time, seq): events at the same logical time
 * run in the order they were scheduled, which keeps runs deterministic.
 * The queue owns nothing an event points to; sim_queue_free() hands each
 * remaining event to a callback so its owner can release it.
 */
#ifndef SIM_QUEUE_H
#define SIM_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft.h"

struct sim_xfer;

struct sim_event {
    uint64_t time;
    uint64_t seq;           /* assigned by sim_queue_push */
    uint8_t type;           /* enum sim_ev_type (sim.h) */
    raft_id node;
    uint64_t aux;           /* type-specific */
    struct sim_xfer *xfer;  /* message in flight, or NULL */
};

struct sim_queue {
    struct sim_event *heap;
    size_t n;
    size_t cap;
    uint64_t next_seq;
};

void sim_queue_init(struct sim_queue *q);

/* Schedule a copy of *ev.  Returns 0, or -1 when memory runs out (the
 * event is then not scheduled and the caller still owns ev->xfer). */
int sim_queue_push(struct sim_queue *q, const struct sim_event *ev);

/* Remove the earliest event into *out; false when the queue is empty. */
bool sim_queue_pop(struct sim_queue *q, struct sim_event *out);

/* Time of the earliest event; UINT64_MAX when empty. */
uint64_t sim_queue_peek_time(const struct sim_queue *q);

/* Pass every remaining event to drop (if not NULL), then free the heap. */
void sim_queue_free(struct sim_queue *q, void (*drop)(struct sim_event *ev));

#endif /* SIM_QUEUE_H */

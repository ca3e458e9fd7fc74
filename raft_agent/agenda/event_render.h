/*
 * event_render.h — events as the API shows them: instants as RFC 3339
 * strings (dates "YYYY-MM-DD" for all-day events, the end exclusive, with
 * start_at and end_at: the instants those dates begin in the event's time
 * zone), and the busy-only view of a private event for those who may know it exists
 * but not what it is.
 */
#ifndef AGENDA_EVENT_RENDER_H
#define AGENDA_EVENT_RENDER_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

/* Set obj[key] to ms as a date (all_day) or an RFC 3339 instant; null when
 * out of range.  Returns 0 or ENOMEM. */
int agenda_ev_render_instant(json_t *obj, const char *key, int64_t ms,
                             bool all_day);

/*
 * The stored event ev (borrowed, already checked by agenda_ev_load) for an
 * answer: with full, every field (participants as {user: response});
 * otherwise only {calendar, id, start, end, all_day (start_at, end_at),
 * busy: true, visibility: "private"}.  Returns a new reference, or NULL (ENOMEM).
 */
json_t *agenda_ev_render(const json_t *ev, bool full);

#endif /* AGENDA_EVENT_RENDER_H */

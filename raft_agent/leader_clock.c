/* leader_clock.c — see leader_clock.h. */
#include "leader_clock.h"

static void anchor(struct agenda_leader_clock *c, uint64_t t,
                   uint64_t mono_ms)
{
    c->known = true;
    c->anchor_ms = t;
    c->anchor_mono_ms = mono_ms;
}

void agenda_leader_clock_observe(struct agenda_leader_clock *c, uint64_t t,
                                 uint64_t mono_ms)
{
    anchor(c, t, mono_ms);
    c->last_ms = t;
}

uint64_t agenda_leader_clock_stamp(struct agenda_leader_clock *c,
                                   uint64_t wall_ms, uint64_t mono_ms)
{
    if (!c->known) {
        anchor(c, wall_ms, mono_ms);
        c->last_ms = wall_ms;
        return wall_ms;
    }
    uint64_t el = mono_ms > c->anchor_mono_ms ? mono_ms - c->anchor_mono_ms
                                              : 0;
    uint64_t lo = c->anchor_ms + el - el / 16;
    uint64_t hi = c->anchor_ms + el + el / 16;
    uint64_t t = wall_ms < lo ? lo : wall_ms > hi ? hi : wall_ms;
    if (t < c->last_ms)
        t = c->last_ms; /* never backwards */
    c->last_ms = t;
    if (el >= AGENDA_LEADER_CLOCK_ANCHOR_MS)
        anchor(c, t, mono_ms);
    return t;
}

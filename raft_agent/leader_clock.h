/*
 * leader_clock.h — the time a leader stamps on the commands it proposes.
 *
 * Applying a command never reads a clock: the leader stamps its time in the
 * envelope (command.h), and every replica remembers request ids for five
 * minutes of that time (session.h).  A wall clock that jumps would move
 * that time with it.  Forward, and every replica would forget the last
 * five minutes of request ids at once, so a client's retry of a write it
 * did not hear about would be applied a second time; backward, and none
 * would be forgotten for as long, so the table would grow without bound.
 *
 * So a stamp follows the wall clock only as fast as the monotonic clock
 * allows: from an anchor (its own last stamp, or the latest command of the
 * current term's leader applied here as a follower) it may advance between
 * 15/16 and 17/16 of the monotonic time elapsed, and never goes back below
 * that anchor.  A clock that jumps moves stamps by at most a 16th of the
 * time since, and request ids stay remembered between 16/17 and 16/15 of
 * five minutes.  A clock that is merely off (a new leader's, by some
 * milliseconds) is caught up with at that rate.  Until the node has seen a command of this
 * process's life (it just started), a stamp is the wall clock: a jump while
 * it was down cannot be told from the downtime.
 *
 * Pure: the caller passes both clocks, so tests choose them.
 */
#ifndef AGENDA_LEADER_CLOCK_H
#define AGENDA_LEADER_CLOCK_H

#include <stdbool.h>
#include <stdint.h>

/* A stamp becomes the anchor once this much monotonic time has passed
 * since the last one: the allowance is measured over long enough spans
 * that rounding it (a 16th, in milliseconds) loses nothing. */
#define AGENDA_LEADER_CLOCK_ANCHOR_MS 1000u

struct agenda_leader_clock {
    bool known;              /* the fields below are set */
    uint64_t anchor_ms;      /* a command time ... */
    uint64_t anchor_mono_ms; /* ... and the monotonic time it was had */
    uint64_t last_ms;        /* the last command time stamped or followed */
};

/* A follower applied a command stamped t by the leader of the current
 * term, at monotonic time mono_ms: that leader's time is the reference
 * from now on, even below what this node saw before (a leader that just
 * restarted, its clock right, after one whose stamps had drifted ahead:
 * keeping the higher line would step stamps forward at the next failover
 * and forget ids early).  A leader does not observe its own stamps. */
void agenda_leader_clock_observe(struct agenda_leader_clock *c, uint64_t t,
                                 uint64_t mono_ms);

/* The stamp of a command proposed at wall time wall_ms and monotonic time
 * mono_ms. */
uint64_t agenda_leader_clock_stamp(struct agenda_leader_clock *c,
                                   uint64_t wall_ms, uint64_t mono_ms);

#endif /* AGENDA_LEADER_CLOCK_H */

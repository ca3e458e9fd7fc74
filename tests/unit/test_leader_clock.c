/*
 * test_leader_clock.c — the stamps a leader puts on commands
 * (raft_agent/leader_clock.h) with both clocks chosen by the test: they
 * follow a good wall clock exactly, follow a wall clock that jumps only at
 * 15/16 to 17/16 of the monotonic time, never go backwards, catch up with
 * a clock that was merely off (also when commands come every millisecond),
 * and a node that followed its former leader's stamps starts from them,
 * even when that leader's time went back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "leader_clock.h"

#define T0 1796083200000ull /* a wall time: 2026-12-01 */
#define M0 5000ull          /* a monotonic time */
#define HOUR (3600ull * 1000)

static void test_a_fresh_node_stamps_the_wall_clock(void **state)
{
    struct agenda_leader_clock c = {0};
    (void)state;
    assert_int_equal(agenda_leader_clock_stamp(&c, T0 + 7, M0), T0 + 7);
    assert_true(c.known);
}

static void test_a_good_clock_is_followed_exactly(void **state)
{
    struct agenda_leader_clock c = {0};
    (void)state;
    for (uint64_t ms = 0; ms < 20000; ms += 3)
        assert_int_equal(agenda_leader_clock_stamp(&c, T0 + ms, M0 + ms),
                         T0 + ms);
}

/* Stamps every step_ms of monotonic time for span_ms, the wall clock
 * jump_ms ahead (or behind) after the first; checks every stamp against
 * the allowance since the jump and returns the last. */
static uint64_t run_jump(uint64_t step_ms, uint64_t span_ms, int64_t jump_ms)
{
    struct agenda_leader_clock c = {0};
    uint64_t first = agenda_leader_clock_stamp(&c, T0, M0), prev = first;
    for (uint64_t el = step_ms; el <= span_ms; el += step_ms) {
        uint64_t wall = (uint64_t)((int64_t)(T0 + el) + jump_ms);
        uint64_t t = agenda_leader_clock_stamp(&c, wall, M0 + el);
        assert_true(t >= prev);                        /* never back */
        assert_true(t - first <= el + el / 16 + 1);    /* at most 17/16 */
        assert_true(t - first + el / 16 + 1 >= el);    /* at least 15/16 */
        prev = t;
    }
    return prev;
}

static void test_a_jump_moves_stamps_by_a_sixteenth_at_most(void **state)
{
    (void)state;
    /* an hour forward: five minutes later, stamps are ~19 s ahead, not
     * an hour (so request ids are not all forgotten at once) */
    uint64_t t = run_jump(1, 300000, (int64_t)HOUR);
    assert_true(t - T0 <= 300000 + 300000 / 16 + 1);
    assert_true(t - T0 >= 300000 + 300000 / 16 - 1100);
    /* an hour back: stamps still advance, at 15/16 */
    t = run_jump(1, 300000, -(int64_t)HOUR);
    assert_true(t - T0 >= 300000 - 300000 / 16 - 1);
    /* the same with commands every 250 ms and every 2 s */
    (void)run_jump(250, 600000, (int64_t)HOUR);
    (void)run_jump(2000, 600000, -(int64_t)HOUR);
}

/* A wall clock off by off_ms (a new leader's) is caught up with at a 16th
 * of the time: after 16 * off and some anchoring, stamps are the wall's
 * again, whichever way and however often commands come. */
static void test_a_clock_off_is_caught_up_with(void **state)
{
    static const int64_t offs[] = {160, -160, 5000, -5000};
    static const uint64_t steps[] = {1, 7, 250, 1500};
    (void)state;
    for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
        for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
            struct agenda_leader_clock c = {0};
            agenda_leader_clock_observe(&c, T0, M0); /* the old leader's */
            uint64_t off = (uint64_t)(offs[i] < 0 ? -offs[i] : offs[i]);
            uint64_t by = 16 * off + 16 * AGENDA_LEADER_CLOCK_ANCHOR_MS +
                          steps[k];
            uint64_t t = 0, wall = 0;
            for (uint64_t el = steps[k]; el <= by + 10 * steps[k];
                 el += steps[k]) {
                wall = (uint64_t)((int64_t)(T0 + el) + offs[i]);
                t = agenda_leader_clock_stamp(&c, wall, M0 + el);
            }
            if (t != wall)
                fail_msg("off %lld ms, a command every %llu ms: %llu ms "
                         "apart at the end", (long long)offs[i],
                         (unsigned long long)steps[k],
                         (unsigned long long)(t > wall ? t - wall
                                                       : wall - t));
        }
    }
}

/* A follower anchors on the stamps it applies; leading next, a jumped
 * clock of its own does not move stamps past the allowance from them. */
static void test_a_new_leader_starts_from_the_stamps_it_applied(void **state)
{
    struct agenda_leader_clock c = {0};
    (void)state;
    for (uint64_t el = 0; el <= 10000; el += 10)
        agenda_leader_clock_observe(&c, T0 + el, M0 + el);
    assert_int_equal(c.anchor_ms, T0 + 10000);
    uint64_t t = agenda_leader_clock_stamp(&c, T0 + 2 * HOUR, M0 + 10500);
    assert_true(t >= T0 + 10500 - 500 / 16 && t <= T0 + 10500 + 500 / 16);
    /* and a leader's stamps never go below its anchor */
    struct agenda_leader_clock d = {0};
    agenda_leader_clock_observe(&d, T0 + HOUR, M0);
    assert_int_equal(agenda_leader_clock_stamp(&d, T0, M0), T0 + HOUR);
}

/* Leader A's clock ran ahead: its stamps drifted 5 minutes ahead of real
 * time (80 minutes at 17/16).  A restarts, its clock now right, and leads
 * again stamping real time.  Follower B follows A's new, lower line: when
 * B leads next, its stamps continue from it, with no step of 5 minutes
 * forward (which would forget the ids of those 5 minutes at once). */
static void test_a_follower_follows_a_leader_whose_time_went_back(
    void **state)
{
    struct agenda_leader_clock b = {0};
    (void)state;
    const uint64_t drift = 5 * 60 * 1000, span = 16 * drift;
    for (uint64_t el = 0; el <= span; el += 1000)  /* A's first term */
        agenda_leader_clock_observe(&b, T0 + el + el / 16, M0 + el);
    for (uint64_t el = span + 1000; el <= span + 60000; el += 1000)
        agenda_leader_clock_observe(&b, T0 + el, M0 + el); /* A again */
    uint64_t last = T0 + span + 60000;
    uint64_t t = agenda_leader_clock_stamp(&b, T0 + span + 61000,
                                           M0 + span + 61000); /* B leads */
    assert_true(t >= last && t <= last + 1000 + 1000 / 16 + 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_fresh_node_stamps_the_wall_clock),
        cmocka_unit_test(test_a_good_clock_is_followed_exactly),
        cmocka_unit_test(test_a_jump_moves_stamps_by_a_sixteenth_at_most),
        cmocka_unit_test(test_a_clock_off_is_caught_up_with),
        cmocka_unit_test(test_a_new_leader_starts_from_the_stamps_it_applied),
        cmocka_unit_test(
            test_a_follower_follows_a_leader_whose_time_went_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_compaction.c — how far a replica compacts its log (compaction.h):
 * the most recent half of the threshold, and on a leader what followers in
 * touch and the snapshot being streamed still need, up to a bound.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "compaction.h"

#define T 100u /* the threshold */

static raft_index upto(raft_index applied, raft_index first,
                       const struct compaction_peer *peers, size_t n,
                       raft_index streaming)
{
    return agenda_compaction_upto(applied, first, T, peers, n, streaming);
}

static void test_below_the_threshold_nothing(void **state)
{
    (void)state;
    assert_int_equal(upto(150, 51, NULL, 0, 0), 0);
    assert_int_equal(upto(150, 200, NULL, 0, 0), 0); /* applied < first */
    assert_int_equal(agenda_compaction_upto(1000, 1, 0, NULL, 0, 0), 0);
}

static void test_the_recent_half_is_kept(void **state)
{
    (void)state;
    assert_int_equal(upto(151, 51, NULL, 0, 0), 102);
    /* followers all caught up change nothing */
    const struct compaction_peer up[] = {{151, true, false, 0},
                                         {149, true, false, 0}};
    assert_int_equal(upto(151, 51, up, 2, 0), 102);
}

static void test_a_follower_in_touch_keeps_what_it_needs(void **state)
{
    (void)state;
    const struct compaction_peer lag[] = {{151, true, false, 0},
                                          {70, true, false, 0}};
    assert_int_equal(upto(151, 51, lag, 2, 0), 71);
    /* one that is not in touch does not hold the log back */
    const struct compaction_peer gone[] = {{151, true, false, 0},
                                           {70, false, false, 0}};
    assert_int_equal(upto(151, 51, gone, 2, 0), 102);
    /* nothing to drop yet when it needs the first entry */
    const struct compaction_peer first[] = {{50, true, false, 0}};
    assert_int_equal(upto(151, 51, first, 1, 0), 0);
    /* one that never acknowledged anything (a new leader calls every
     * peer active at first, a replica never started included) does not
     * hold the log back */
    const struct compaction_peer never[] = {{151, true, false, 0},
                                            {0, true, false, 0}};
    assert_int_equal(upto(151, 51, never, 2, 0), 102);
}

static void test_the_streamed_snapshot_keeps_what_follows_it(void **state)
{
    (void)state;
    /* the follower being sent the snapshot at 120 will need 121 on; its
     * own match (10) does not count */
    const struct compaction_peer snap[] = {{151, true, false, 0},
                                           {10, true, true, 0}};
    assert_int_equal(upto(200, 51, snap, 2, 120), 121);
    assert_int_equal(upto(200, 51, snap, 2, 0), 151);
}

static void test_an_installing_follower_keeps_what_follows_it(void **state)
{
    (void)state;
    /* the whole snapshot at 120 received, not yet installed: no longer
     * streamed nor snapshotting, match still 0 */
    const struct compaction_peer inst[] = {{151, true, false, 0},
                                           {0, true, false, 120}};
    assert_int_equal(upto(200, 51, inst, 2, 0), 121);
    /* once its match shows the install, what it needs is its match */
    const struct compaction_peer done[] = {{151, true, false, 0},
                                           {190, true, false, 120}};
    assert_int_equal(upto(200, 51, done, 2, 0), 151);
}

static void test_what_is_kept_for_followers_is_bounded(void **state)
{
    (void)state;
    const struct compaction_peer slow[] = {{5, true, false, 0}};
    /* at most 4 thresholds of applied entries stay */
    assert_int_equal(upto(1000, 2, slow, 1, 0), 1001 - 4 * T);
    const struct compaction_peer stuck[] = {{0, true, false, 3}};
    assert_int_equal(upto(1000, 2, stuck, 1, 0), 1001 - 4 * T);
    assert_int_equal(upto(1000, 2, NULL, 0, 3), 1001 - 4 * T);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_below_the_threshold_nothing),
        cmocka_unit_test(test_the_recent_half_is_kept),
        cmocka_unit_test(test_a_follower_in_touch_keeps_what_it_needs),
        cmocka_unit_test(test_the_streamed_snapshot_keeps_what_follows_it),
        cmocka_unit_test(test_an_installing_follower_keeps_what_follows_it),
        cmocka_unit_test(test_what_is_kept_for_followers_is_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

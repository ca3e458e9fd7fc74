/*
 * test_raft_snapshot_msg.c — how a follower's Raft core answers an
 * InstallSnapshot message, driven directly through raft.h with a log kept
 * in memory.
 *
 * A follower whose log already holds the snapshot's last entry keeps its
 * log, but may acknowledge only what it knows matches the leader's: up to
 * the snapshot (or its commit index, if higher).  Its entries after that
 * were never compared with the leader's log; a leader told they match
 * would count them as replicated and let the follower commit entries of
 * an older term that the leader does not have.  A leader may send a
 * snapshot older than the one it meant to (a copy that finished while it
 * compacted further), so this is reachable in the agent.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "raft.h"
#include "raft_mem_log.h"

/* What the follower answered its leader in the batches drained. */
struct answer {
    bool seen;
    bool reject;
    raft_index index;
};

/* Persist and "send" every ready batch; the last APPEND_RESP to node 2. */
static struct answer drain(struct raft *r, struct mem_log *m)
{
    struct answer a = {0};
    while (raft_has_ready(r)) {
        const struct raft_ready *rd = raft_ready(r);
        assert_null(rd->snapshot);
        for (size_t i = 0; i < rd->n_entries; i++) {
            const struct raft_entry *e = &rd->entries[i];
            assert_true(e->index >= 1 && e->index <= LOG_MAX);
            m->terms[e->index] = e->term;
            m->last = e->index; /* later indexes were truncated */
        }
        if (rd->hard_state_changed)
            m->hs = rd->hard_state;
        for (size_t i = 0; i < rd->n_msgs; i++) {
            const struct raft_msg *msg = &rd->msgs[i];
            if (msg->type == RAFT_MSG_APPEND_RESP && msg->to == 2) {
                a.seen = true;
                a.reject = msg->reject;
                a.index = msg->index;
            }
        }
        assert_int_equal(raft_advance(r), RAFT_OK);
    }
    return a;
}

/* An APPEND from leader 2 in term: entries [first, last] of entry_term
 * after (first - 1, prev_term), with the leader's commit index. */
static void append(struct raft *r, raft_term term, raft_index first,
                   raft_index last, raft_term prev_term,
                   raft_term entry_term, raft_index commit)
{
    struct raft_entry ents[LOG_MAX];
    uint32_t n = 0;
    for (raft_index i = first; i <= last; i++)
        ents[n++] = (struct raft_entry){.term = entry_term, .index = i,
                                        .type = RAFT_ENTRY_NORMAL};
    struct raft_msg msg = {.type = RAFT_MSG_APPEND, .from = 2, .to = 1,
                           .term = term, .index = first - 1,
                           .log_term = prev_term, .commit = commit,
                           .n_entries = n, .entries = ents};
    assert_int_equal(raft_step(r, &msg), RAFT_OK);
}

static struct answer snapshot(struct raft *r, struct mem_log *m,
                              raft_term term, raft_index index,
                              raft_term snap_term)
{
    struct raft_msg msg = {.type = RAFT_MSG_SNAPSHOT, .from = 2, .to = 1,
                           .term = term,
                           .snapshot = {.index = index, .term = snap_term}};
    assert_int_equal(raft_step(r, &msg), RAFT_OK);
    return drain(r, m);
}

/* The follower holds 1..8 of term 1, 1..2 committed; a leader of term 2
 * sends a snapshot up to 5 (term 1).  Entries 6..8 may be ones that old
 * leader never got committed: the answer is 5, not 8. */
static void test_matching_snapshot_acknowledges_only_what_it_covers(
    void **state)
{
    struct mem_log m = {0};
    (void)state;
    struct raft *r = mem_node1(&m);
    append(r, 1, 1, 8, 0, 1, 2);
    struct answer a = drain(r, &m);
    assert_true(a.seen && !a.reject);
    assert_int_equal(a.index, 8);

    a = snapshot(r, &m, 2, 5, 1);
    assert_true(a.seen);
    assert_false(a.reject);
    assert_int_equal(a.index, 5);
    /* the log is kept, and what the snapshot covers is committed */
    assert_int_equal(m.last, 8);
    struct raft_status st;
    raft_status(r, &st);
    assert_int_equal(st.commit, 5);
    raft_free(r);
}

/* A snapshot at or below the commit index: the commit index is the
 * answer, never the last index (committed entries are the same in every
 * log, the ones after may not be). */
static void test_snapshot_below_commit_answers_the_commit(void **state)
{
    struct mem_log m = {0};
    (void)state;
    struct raft *r = mem_node1(&m);
    append(r, 1, 1, 8, 0, 1, 6);
    (void)drain(r, &m);
    struct answer a = snapshot(r, &m, 2, 5, 1);
    assert_true(a.seen && !a.reject);
    assert_int_equal(a.index, 6);
    raft_free(r);
}

/* A snapshot the log does not match (another term at its index) replaces
 * the log, and its index is the answer. */
static void test_other_snapshot_is_installed(void **state)
{
    struct mem_log m = {0};
    (void)state;
    struct raft *r = mem_node1(&m);
    append(r, 1, 1, 8, 0, 1, 2);
    (void)drain(r, &m);
    struct raft_msg msg = {.type = RAFT_MSG_SNAPSHOT, .from = 2, .to = 1,
                           .term = 3, .snapshot = {.index = 6, .term = 2}};
    assert_int_equal(raft_step(r, &msg), RAFT_OK);
    assert_true(raft_has_ready(r));
    const struct raft_ready *rd = raft_ready(r);
    assert_non_null(rd->snapshot);
    assert_int_equal(rd->snapshot->index, 6);
    bool answered = false;
    for (size_t i = 0; i < rd->n_msgs; i++)
        if (rd->msgs[i].type == RAFT_MSG_APPEND_RESP) {
            answered = true;
            assert_false(rd->msgs[i].reject);
            assert_int_equal(rd->msgs[i].index, 6);
        }
    assert_true(answered);
    raft_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            test_matching_snapshot_acknowledges_only_what_it_covers),
        cmocka_unit_test(test_snapshot_below_commit_answers_the_commit),
        cmocka_unit_test(test_other_snapshot_is_installed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

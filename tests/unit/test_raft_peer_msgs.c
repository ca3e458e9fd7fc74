/*
 * test_raft_peer_msgs.c — peer messages the Raft core must not believe,
 * driven directly through raft.h with a log kept in memory.
 *
 * Without internal TLS anyone who reaches a peer port can send messages,
 * and with it a replica with a bug still can:
 *   - a term near 2^64 would be adopted and stored, after which no node
 *     can campaign (a candidate's term + 1 wraps) and the shard never has
 *     a leader again, restarts included;
 *   - an acknowledgement of entries the leader does not have would count
 *     as a copy and commit entries only the leader holds, and a client
 *     would be told they are safe.
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

/* Persist every ready batch (messages are dropped). */
static void drain(struct raft *r, struct mem_log *m)
{
    while (raft_has_ready(r)) {
        const struct raft_ready *rd = raft_ready(r);
        for (size_t i = 0; i < rd->n_entries; i++) {
            const struct raft_entry *e = &rd->entries[i];
            assert_true(e->index >= 1 && e->index <= LOG_MAX);
            m->terms[e->index] = e->term;
            m->last = e->index;
        }
        if (rd->hard_state_changed)
            m->hs = rd->hard_state;
        assert_int_equal(raft_advance(r), RAFT_OK);
    }
}

static void step(struct raft *r, struct raft_msg msg)
{
    msg.to = 1;
    (void)raft_step(r, &msg);
}

/* Node 1 leads term t, its no-op at index 1 persisted. */
static struct raft *leader(struct mem_log *m)
{
    struct raft *r = mem_node1(m);
    assert_int_equal(raft_campaign(r), RAFT_OK);
    drain(r, m);
    struct raft_status st;
    raft_status(r, &st);
    if (st.role != RAFT_CANDIDATE) { /* pre-vote first */
        step(r, (struct raft_msg){.type = RAFT_MSG_PREVOTE_RESP, .from = 2,
                                  .term = st.term + 1});
        drain(r, m);
        raft_status(r, &st);
    }
    step(r, (struct raft_msg){.type = RAFT_MSG_VOTE_RESP, .from = 2,
                              .term = st.term});
    drain(r, m);
    raft_status(r, &st);
    assert_int_equal(st.role, RAFT_LEADER);
    return r;
}

static void test_a_term_near_the_top_is_not_adopted(void **state)
{
    struct mem_log m = {0};
    (void)state;
    struct raft *r = mem_node1(&m);
    drain(r, &m);
    struct raft_status before, after;
    raft_status(r, &before);
    const enum raft_msg_type types[] = {
        RAFT_MSG_HEARTBEAT, RAFT_MSG_APPEND, RAFT_MSG_VOTE,
        RAFT_MSG_APPEND_RESP, RAFT_MSG_TIMEOUT_NOW,
    };
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        step(r, (struct raft_msg){.type = types[i], .from = 2,
                                  .term = UINT64_MAX});
        step(r, (struct raft_msg){.type = types[i], .from = 2,
                                  .term = UINT64_MAX / 2 + 1});
        drain(r, &m);
    }
    raft_status(r, &after);
    assert_true(after.term == before.term);
    assert_true(m.hs.term == before.term);
    /* and it can still be elected */
    raft_free(r);
    r = leader(&m);
    raft_free(r);
}

static void test_an_ack_beyond_the_log_commits_nothing(void **state)
{
    struct mem_log m = {0};
    (void)state;
    struct raft *r = leader(&m);
    struct raft_status st;
    raft_status(r, &st);
    raft_term term = st.term;
    raft_index idx;
    raft_term t;
    assert_int_equal(raft_propose(r, "x", 1, &idx, &t), RAFT_OK);
    drain(r, &m);
    assert_int_equal(m.last, 2); /* the no-op and "x", on node 1 only */
    /* node 2 claims entries up to 9: the leader has 2 */
    step(r, (struct raft_msg){.type = RAFT_MSG_APPEND_RESP, .from = 2,
                              .term = term, .index = 9});
    drain(r, &m);
    raft_status(r, &st);
    assert_int_equal(st.commit, 0);
    /* a true acknowledgement of 2 commits both */
    step(r, (struct raft_msg){.type = RAFT_MSG_APPEND_RESP, .from = 2,
                              .term = term, .index = 2});
    drain(r, &m);
    raft_status(r, &st);
    assert_int_equal(st.commit, 2);
    raft_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_term_near_the_top_is_not_adopted),
        cmocka_unit_test(test_an_ack_beyond_the_log_commits_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

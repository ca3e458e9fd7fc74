/*
 * test_session_index.c — the in-memory index of remembered request ids
 * (raft_agent/session_index.h): the keyed hash, and the multiset of
 * (hash, time) pairs against a plain model, with hashes chosen to collide
 * in the table so that probing, wrap-around and deletion are exercised.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "session_index.h"

/* SipHash-2-4 of the paper (Aumasson, Bernstein 2012), appendix A: key
 * 00..0f, message 00..0e. */
static void test_hash_is_siphash_2_4(void **state)
{
    struct agenda_session_index x = {0};
    uint8_t msg[15];
    (void)state;
    for (int i = 0; i < 15; i++)
        msg[i] = (uint8_t)i;
    x.key[0] = 0x0706050403020100ULL;
    x.key[1] = 0x0f0e0d0c0b0a0908ULL;
    assert_true(agenda_session_index_hash(&x, msg, sizeof(msg)) ==
                0xa129ca6149be45e5ULL);
    /* a fresh index draws its own key */
    struct agenda_session_index a, b;
    assert_int_equal(agenda_session_index_init(&a), 0);
    assert_int_equal(agenda_session_index_init(&b), 0);
    assert_true(agenda_session_index_hash(&a, "id", 2) !=
                agenda_session_index_hash(&b, "id", 2));
    agenda_session_index_free(&a);
    agenda_session_index_free(&b);
}

/* How many times (hash, time) is in the index, by iteration. */
static int count_pair(const struct agenda_session_index *x, uint64_t hash,
                      uint64_t time)
{
    size_t pos = 0;
    uint64_t t;
    int n = 0;
    while (agenda_session_index_next(x, hash, &pos, &t))
        n += t == time;
    return n;
}

#define PAIRS 3000

struct model {
    uint64_t hash[PAIRS], time[PAIRS];
    int group[PAIRS]; /* the first pair with the same hash and time */
    int live[PAIRS];  /* committed copies added through this pair */
};

static void check_model(const struct agenda_session_index *x,
                        const struct model *m)
{
    static int want[PAIRS]; /* copies of the pair, whoever added them */
    size_t total = 0;
    memset(want, 0, sizeof(want));
    for (int i = 0; i < PAIRS; i++) {
        want[m->group[i]] += m->live[i];
        total += (size_t)m->live[i];
    }
    for (int i = 0; i < PAIRS; i++)
        assert_int_equal(count_pair(x, m->hash[i], m->time[i]),
                         want[m->group[i]]);
    assert_int_equal(x->count, total);
}

static void test_matches_a_model_through_commits_and_aborts(void **state)
{
    struct agenda_session_index x;
    static struct model m;
    size_t peak_cap = 0;
    (void)state;
    assert_int_equal(agenda_session_index_init(&x), 0);
    memset(&m, 0, sizeof(m));
    srand(42);
    for (int i = 0; i < PAIRS; i++) {
        /* few distinct low bits: long clusters, some at the table's end;
         * some pairs share a hash (another id) or even hash and time */
        uint64_t low = (uint64_t)(rand() % 256);
        if (rand() % 2)
            low = 0xffff - low; /* homes at the table's end: wrap around */
        m.hash[i] = ((uint64_t)(rand() % 97) << 40) | low | 1;
        m.time[i] = (uint64_t)(rand() % 5);
        m.group[i] = i;
        for (int j = 0; j < i; j++)
            if (m.hash[j] == m.hash[i] && m.time[j] == m.time[i]) {
                m.group[i] = j;
                break;
            }
    }
    /* this round's additions and removals, per pair */
    int plus[PAIRS], minus[PAIRS];
    for (int round = 0; round < 300; round++) {
        memset(plus, 0, sizeof(plus));
        memset(minus, 0, sizeof(minus));
        /* from round 200 on, only removals: the table shrinks again */
        bool draining = round >= 200;
        for (int op = 0; op < 40; op++) {
            int i = rand() % PAIRS;
            for (int n = 0; draining && n < PAIRS &&
                            m.live[i] + plus[i] - minus[i] == 0; n++)
                i = (i + 1) % PAIRS;
            /* a removal may take a pair added earlier in the same round
             * (a batch that forgets an id it remembered) */
            if (m.live[i] + plus[i] - minus[i] > 0 &&
                (draining || rand() % 2)) {
                assert_int_equal(agenda_session_index_remove_later(
                                     &x, m.hash[i], m.time[i]), 0);
                minus[i]++;
                /* and the very same pair may come back before the commit */
                if (!draining && rand() % 8 == 0) {
                    assert_int_equal(agenda_session_index_add(
                                         &x, m.hash[i], m.time[i]), 0);
                    plus[i]++;
                }
            } else if (!draining) {
                assert_int_equal(agenda_session_index_add(&x, m.hash[i],
                                                          m.time[i]), 0);
                plus[i]++;
                /* visible at once, before the commit */
                assert_true(count_pair(&x, m.hash[i], m.time[i]) >= 1);
            }
        }
        if (rand() % 4 == 0) {
            agenda_session_index_abort(&x);
        } else {
            agenda_session_index_commit(&x);
            for (int i = 0; i < PAIRS; i++)
                m.live[i] += plus[i] - minus[i];
        }
        check_model(&x, &m);
        if (round == 199)
            peak_cap = x.cap;
    }
    /* removals gave memory back */
    assert_true(peak_cap > 1024);
    assert_true(x.cap < peak_cap);
    /* load keeps the table at most half full */
    assert_true(x.count * 2 <= x.cap);
    agenda_session_index_clear(&x);
    assert_int_equal(x.count, 0);
    assert_int_equal(count_pair(&x, m.hash[0], m.time[0]), 0);
    agenda_session_index_free(&x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_is_siphash_2_4),
        cmocka_unit_test(test_matches_a_model_through_commits_and_aborts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

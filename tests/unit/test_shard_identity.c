/*
 * test_shard_identity.c — the shard identity a leader puts in its no-op
 * (raft_agent/shard_identity.h): equal configs compare equal whatever the
 * leader's JSON spelling, any difference of kind or range is reported with
 * the leader's values, and whatever is not an identity this build reads
 * (empty no-ops of older agents, other formats, garbage) is not compared.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "shard_identity.h"

static const char prefix[] = "agenda-shard-identity/1 ";

static enum agenda_identity_match compare_text(const char *theirs,
                                               const struct agenda_buf *mine,
                                               char *why, size_t whylen)
{
    return agenda_shard_identity_compare((const uint8_t *)theirs,
                                         strlen(theirs), mine->data,
                                         mine->len, why, whylen);
}

static void test_equal_configs_are_the_same(void **state)
{
    struct agenda_buf a = {0}, b = {0};
    (void)state;
    assert_int_equal(agenda_shard_identity_encode(&a, "events", "", "n"), 0);
    assert_int_equal(agenda_shard_identity_encode(&b, "events", "", "n"), 0);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.data, b.data, a.len);
    assert_int_equal(agenda_shard_identity_compare(a.data, a.len, b.data,
                                                   b.len, NULL, 0),
                     AGENDA_IDENTITY_SAME);
    /* the same values spelt otherwise by the leader */
    assert_int_equal(compare_text("agenda-shard-identity/1 "
                                  "{ \"to\": \"n\", \"kind\": \"events\", "
                                  "\"from\": \"\" }", &a, NULL, 0),
                     AGENDA_IDENTITY_SAME);
    agenda_buf_free(&a);
    agenda_buf_free(&b);
}

static void test_a_different_kind_or_range_is_reported(void **state)
{
    struct agenda_buf mine = {0}, theirs = {0};
    char why[200];
    (void)state;
    assert_int_equal(agenda_shard_identity_encode(&mine, "events", "", "n"),
                     0);
    static const char *const others[][4] = {
        { "events", "", "m", "kind \"events\", range [\"\", \"m\")" },
        { "events", "a", "n", "kind \"events\", range [\"a\", \"n\")" },
        { "groups", "", "n", "kind \"groups\", range [\"\", \"n\")" },
        { "events", "", "", "kind \"events\", range [\"\", \"\")" },
    };
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        assert_int_equal(agenda_shard_identity_encode(&theirs, others[i][0],
                                                      others[i][1],
                                                      others[i][2]), 0);
        assert_int_equal(agenda_shard_identity_compare(theirs.data,
                                                       theirs.len, mine.data,
                                                       mine.len, why,
                                                       sizeof(why)),
                         AGENDA_IDENTITY_DIFFERENT);
        assert_string_equal(why, others[i][3]);
    }
    /* a leader's values are logged escaped, whatever they hold */
    assert_int_equal(compare_text("agenda-shard-identity/1 {\"kind\":"
                                  "\"events\",\"from\":\"\\n\\u001bx\\u00e9\","
                                  "\"to\":\"n\"}", &mine, why, sizeof(why)),
                     AGENDA_IDENTITY_DIFFERENT);
    assert_string_equal(why, "kind \"events\", range [\"\\n\\u001Bx\\u00E9\", "
                             "\"n\")");
    /* no agent writes a NUL (names are C strings): not an identity */
    assert_int_equal(compare_text("agenda-shard-identity/1 {\"kind\":"
                                  "\"events\",\"from\":\"\",\"to\":"
                                  "\"n\\u0000z\"}", &mine, NULL, 0),
                     AGENDA_IDENTITY_UNKNOWN);
    agenda_buf_free(&mine);
    agenda_buf_free(&theirs);
}

static void test_what_is_not_an_identity_is_not_compared(void **state)
{
    struct agenda_buf mine = {0};
    char long_text[5000];
    (void)state;
    assert_int_equal(agenda_shard_identity_encode(&mine, "users", "", ""), 0);
    static const char *const unknown[] = {
        "",                                       /* an older agent's no-op */
        "agenda-shard-identity/2 {\"kind\":\"groups\",\"from\":\"\","
        "\"to\":\"\"}",                           /* a later format */
        "agenda-shard-identity/1 ",
        "agenda-shard-identity/1 {\"kind\":\"groups\"",
        "agenda-shard-identity/1 [\"groups\", \"\", \"\"]",
        "agenda-shard-identity/1 {\"kind\":\"groups\",\"from\":\"\"}",
        "agenda-shard-identity/1 {\"kind\":\"groups\",\"from\":\"\","
        "\"to\":\"\",\"shard\":\"x\"}",
        "agenda-shard-identity/1 {\"kind\":1,\"from\":\"\",\"to\":\"\"}",
        "agenda-shard-identity/1 {\"kind\":\"groups\",\"kind\":\"users\","
        "\"from\":\"\",\"to\":\"\"}",             /* duplicate key */
        "{\"kind\":\"groups\",\"from\":\"\",\"to\":\"\"}",
    };
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++)
        assert_int_equal(compare_text(unknown[i], &mine, NULL, 0),
                         AGENDA_IDENTITY_UNKNOWN);
    /* more than any identity can be */
    memset(long_text, ' ', sizeof(long_text) - 1);
    long_text[sizeof(long_text) - 1] = '\0';
    memcpy(long_text, prefix, sizeof(prefix) - 1);
    memcpy(long_text + 4900, "{\"kind\":\"groups\",\"from\":\"\",\"to\":\"\"}",
           36);
    assert_int_equal(compare_text(long_text, &mine, NULL, 0),
                     AGENDA_IDENTITY_UNKNOWN);
    agenda_buf_free(&mine);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_equal_configs_are_the_same),
        cmocka_unit_test(test_a_different_kind_or_range_is_reported),
        cmocka_unit_test(test_what_is_not_an_identity_is_not_compared),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_json_text.c — JSON string literals written directly
 * (raft_agent/agenda/json_text.h) are byte for byte what jansson writes:
 * every ASCII character alone, strings that mix escapes with plain runs,
 * multi-byte UTF-8, and random valid UTF-8 strings; and whole values —
 * random trees of every type, keys sorted or in insertion order — are
 * written exactly as json_dumps writes them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "json_text.h"

/* What jansson writes for s, and what we write, must be the same. */
static void same_as_jansson(const char *s)
{
    json_t *j = json_string(s);
    assert_non_null(j);
    char *want = json_dumps(j, JSON_ENCODE_ANY | AGENDA_JSON_FLAGS);
    json_decref(j);
    assert_non_null(want);
    struct agenda_buf b = {0};
    assert_int_equal(agenda_json_text_str(&b, s), 0);
    if (b.len != strlen(want) || memcmp(b.data, want, b.len) != 0)
        fail_msg("for \"%s\": wrote %.*s, jansson %s", s, (int)b.len,
                 (const char *)b.data, want);
    free(want);
    agenda_buf_free(&b);
}

static void every_ascii_character(void **state)
{
    (void)state;
    for (int ch = 1; ch < 0x80; ch++) {
        char s[4] = {'a', (char)ch, 'z', '\0'};
        same_as_jansson(s);
        char one[2] = {(char)ch, '\0'};
        same_as_jansson(one);
    }
}

static void mixed_strings(void **state)
{
    static const char *const cases[] = {
        "", "plain", "quote\"inside", "back\\slash", "\"\"\\\\",
        "tab\tnew\nline\r\n", "\x01\x1f\x7f", "slash/stays",
        "caf\xc3\xa9", "\xe2\x82\xac 5", "\xf0\x9f\x98\x80 emoji",
        "\xe2\x80\xa8 line separator", "end\\",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        same_as_jansson(cases[i]);
}

/* Append the UTF-8 encoding of code point cp. */
static size_t utf8(char *out, uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

static void random_utf8_strings(void **state)
{
    uint64_t x = 0x9e3779b97f4a7c15u;
    (void)state;
    for (int round = 0; round < 2000; round++) {
        char s[200];
        size_t n = 0;
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int chars = (int)(x % 40);
        for (int i = 0; i < chars; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            uint32_t cp;
            switch (x % 4) {
            case 0: cp = 1 + (uint32_t)(x >> 8) % 0x7f; break;
            case 1: cp = 1 + (uint32_t)(x >> 8) % 0x20; break;
            case 2: cp = 0x80 + (uint32_t)(x >> 8) % 0xd780; break;
            default: cp = 0x10000 + (uint32_t)(x >> 8) % 0x100000; break;
            }
            n += utf8(s + n, cp);
        }
        s[n] = '\0';
        same_as_jansson(s);
    }
}

static uint64_t rnd(uint64_t *x)
{
    *x ^= *x << 13, *x ^= *x >> 7, *x ^= *x << 17;
    return *x;
}

/* A random string: ASCII, escapes and multi-byte characters. */
static json_t *random_string(uint64_t *x)
{
    char s[64];
    size_t n = 0;
    int chars = (int)(rnd(x) % 12);
    for (int i = 0; i < chars; i++) {
        uint64_t r = rnd(x);
        uint32_t cp = r % 3 == 0   ? 1 + (uint32_t)(r >> 8) % 0x7f
                      : r % 3 == 1 ? 'a' + (uint32_t)(r >> 8) % 26
                                   : 0xa0 + (uint32_t)(r >> 8) % 0x3000;
        n += utf8(s + n, cp);
    }
    s[n] = '\0';
    return json_string(s);
}

static json_t *random_value(uint64_t *x, int depth)
{
    uint64_t r = rnd(x) % (depth < 4 ? 9 : 6);
    switch (r) {
    case 0: return json_integer((json_int_t)(rnd(x) % 2000000) - 1000000);
    case 1: return json_integer((json_int_t)rnd(x));
    case 2: return random_string(x);
    case 3: return json_true();
    case 4: return json_false();
    case 5: return json_null();
    case 6:
    case 7: {
        json_t *o = json_object();
        int n = (int)(rnd(x) % 40); /* past the sorting buffer on the stack */
        for (int i = 0; i < n; i++) {
            json_t *k = random_string(x);
            json_object_set_new(o, json_string_value(k),
                                random_value(x, depth + 1));
            json_decref(k);
        }
        return o;
    }
    default: {
        json_t *a = json_array();
        int n = (int)(rnd(x) % 6);
        for (int i = 0; i < n; i++)
            json_array_append_new(a, random_value(x, depth + 1));
        return a;
    }
    }
}

static void same_value_as_jansson(const json_t *v, bool sort)
{
    size_t flags = JSON_COMPACT | JSON_ENCODE_ANY |
                   (sort ? JSON_SORT_KEYS : 0);
    char *want = json_dumps(v, flags);
    assert_non_null(want);
    struct agenda_buf b = {.len = 0};
    assert_int_equal(agenda_buf_append(&b, "x", 1), 0); /* appends */
    assert_int_equal(agenda_json_text_value(&b, v, sort), 0);
    if (b.len != strlen(want) + 1 || memcmp(b.data + 1, want, b.len - 1))
        fail_msg("sort %d: wrote %.*s, jansson %s", sort, (int)b.len - 1,
                 (const char *)b.data + 1, want);
    free(want);
    agenda_buf_free(&b);
}

static void random_values(void **state)
{
    uint64_t x = 0x243f6a8885a308d3u;
    (void)state;
    for (int round = 0; round < 3000; round++) {
        json_t *v = random_value(&x, 0);
        assert_non_null(v);
        same_value_as_jansson(v, true);
        same_value_as_jansson(v, false);
        json_decref(v);
    }
    /* integers at the edges */
    const json_int_t edges[] = {0, -1, 9, 10, -10, INT64_MAX, INT64_MIN};
    for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++) {
        json_t *n = json_integer(edges[i]);
        same_value_as_jansson(n, false);
        json_decref(n);
    }
    /* a string with NUL inside, and a double (jansson's spelling) */
    json_t *nul = json_stringn("a\0b", 3);
    same_value_as_jansson(nul, true);
    json_decref(nul);
    json_t *real = json_real(0.1);
    same_value_as_jansson(real, false);
    json_decref(real);
}

static void refusals_leave_the_buffer(void **state)
{
    struct agenda_buf b = {0};
    (void)state;
    assert_int_equal(agenda_buf_append(&b, "kept", 4), 0);
    assert_int_equal(agenda_json_text_value(&b, NULL, true), -1);
    /* nested past the limit: refused, nothing half-written */
    json_t *deep = json_array(), *cur = deep;
    for (int i = 0; i < 3000; i++) {
        json_t *next = json_array();
        json_array_append_new(cur, next);
        cur = next;
    }
    assert_int_equal(agenda_json_text_value(&b, deep, false), -1);
    assert_int_equal(b.len, 4);
    json_decref(deep);
    agenda_buf_free(&b);
}

/* Bytes that are not UTF-8 are refused, as json_dumps refuses them
 * (strings made with json_stringn_nocheck, as a corrupt record could). */
static void invalid_utf8_is_refused(void **state)
{
    static const char *const bad[] = {
        "\x80", "a\xbfz", "\xc0\xaf", "\xc1\x81", "\xe0\x80\xaf",
        "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80",
        "\xe2\x82", "\xe2\x28\xa1", "\xff",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *j = json_stringn_nocheck(bad[i], strlen(bad[i]));
        char *d = json_dumps(j, JSON_ENCODE_ANY | AGENDA_JSON_FLAGS);
        if (d != NULL)
            fail_msg("jansson wrote case %zu: %s", i, d);
        struct agenda_buf b = {0};
        assert_int_equal(agenda_json_text_value(&b, j, true), -1);
        assert_int_equal(b.len, 0);
        agenda_buf_free(&b);
        json_decref(j);
    }
    /* the largest code point and the last before the surrogates are fine */
    same_as_jansson("\xf4\x8f\xbf\xbf \xed\x9f\xbf");
}

static void keys(void **state)
{
    struct agenda_buf b = {0};
    (void)state;
    assert_int_equal(agenda_json_text_key(&b, "seq"), 0);
    assert_int_equal(b.len, 6);
    assert_memory_equal(b.data, "\"seq\":", 6);
    agenda_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_ascii_character),
        cmocka_unit_test(mixed_strings),
        cmocka_unit_test(random_utf8_strings),
        cmocka_unit_test(keys),
        cmocka_unit_test(random_values),
        cmocka_unit_test(invalid_utf8_is_refused),
        cmocka_unit_test(refusals_leave_the_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_json_scan.c — a top-level string member read from JSON object text
 * without parsing it (raft_agent/agenda/json_scan.h): found where it is
 * plain, the last of repeated names, never inside nested values, and
 * told apart from names with escapes other than \u; every text it cannot
 * answer for (escapes, other types, malformed or trailing text, too deep)
 * is left to the parser; and on random objects, written compact or
 * indented, it agrees with jansson.
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

#include "json_scan.h"

static int scan(const char *text, const char **v, size_t *n)
{
    return agenda_json_scan_string(text, strlen(text), "target", v, n);
}

static void found_cases(void **state)
{
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"{\"target\":\"user:ana\"}", "user:ana"},
        {"{\"actor\":\"ana\",\"data\":{\"target\":\"inner\",\"x\":[1,{}]},"
         "\"seq\":7,\"target\":\"calendar:ana\",\"time\":\"2026-01-01T00:"
         "00:00Z\",\"type\":\"event.created\"}",
         "calendar:ana"},
        {" \r\n\t{ \"target\" : \"\" , \"n\" : -1.5e+3 } \n", ""},
        {"{\"target\":\"first\",\"target\":\"last\"}", "last"},
        {"{\"target\":1,\"target\":\"then a string\"}", "then a string"},
        {"{\"a\":\"q\\\"}\",\"target\":\"t\"}", "t"},
        /* escaped names other than \u cannot spell "target" */
        {"{\"a\\\"b\\/\":1,\"target\":\"t\"}", "t"},
        {"{\"a\":[\"]\",\"}\"],\"b\":null,\"c\":true,"
         "\"target\":\"caf\xc3\xa9\"}",
         "caf\xc3\xa9"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *v = NULL;
        size_t n = 99;
        if (scan(cases[i].text, &v, &n) != 1)
            fail_msg("case %zu not found: %s", i, cases[i].text);
        assert_int_equal(n, strlen(cases[i].want));
        assert_memory_equal(v, cases[i].want, n);
        /* borrowed from the text */
        assert_true(v >= cases[i].text &&
                    v + n <= cases[i].text + strlen(cases[i].text));
    }
}

static void left_to_the_parser(void **state)
{
    static const char *const cases[] = {
        "", "   ", "[]", "\"target\"", "{", "{}", "{\"a\":1}",
        "{\"target\":\"x\"", "{\"target\":\"x\",}", "{\"target\":\"x\"}}",
        "{\"target\":\"x\"} x", "{\"target\":\"x\"}{}",
        "{\"target\" \"x\"}", "{\"target\":\"x\" \"y\":1}",
        "{target:\"x\"}", "{\"target\":\"x\\\"y\"}",
        "{\"target\":\"x\\u0041\"}", "{\"t\\u0061rget\":\"x\"}",
        "{\"target\":\"tab\there\"}", "{\"target\":\"x\",\"target\":2}",
        "{\"target\":{\"target\":\"x\"}}", "{\"target\":null}",
        "{\"target\":[\"x\"]}", "{\"a\":{\"target\":\"x\"}}",
        "{\"a\":[1,2}", "{\"a\":\"unterminated}", "{\"a\":}",
        "{\"a\":]\"target\":\"x\"}", "{\"target\":\"x\\",
        "{\"a\":@,\"target\":\"x\"}",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *v = NULL;
        size_t n = 0;
        if (scan(cases[i], &v, &n) != 0)
            fail_msg("case %zu answered '%.*s': %s", i, (int)n, v,
                     cases[i]);
    }
}

/* Nesting past the scan's depth is left to the parser; below it is
 * skipped. */
static void depth(void **state)
{
    char text[512];
    const char *v;
    size_t n;
    (void)state;
    for (int d = 1; d <= 100; d++) {
        int len = snprintf(text, sizeof(text), "{\"a\":");
        for (int i = 0; i < d; i++)
            text[len++] = '[';
        for (int i = 0; i < d; i++)
            text[len++] = ']';
        snprintf(text + len, sizeof(text) - (size_t)len,
                 ",\"target\":\"x\"}");
        assert_int_equal(scan(text, &v, &n), d <= 64 ? 1 : 0);
    }
}

/* The text is len bytes, not a C string: every proper prefix of a valid
 * object, in a buffer of exactly its size, is incomplete (ASan sees any
 * read past it). */
static void prefixes_are_incomplete(void **state)
{
    static const char text[] =
        "{\"a\":[\"x\",{\"b\":1}],\"target\":\"user:ana\",\"c\":\"q\\\"\"}";
    const char *v;
    size_t n;
    (void)state;
    for (size_t len = 0; len < sizeof(text) - 1; len++) {
        char *buf = malloc(len > 0 ? len : 1);
        assert_non_null(buf);
        memcpy(buf, text, len);
        if (agenda_json_scan_string(buf, len, "target", &v, &n) != 0)
            fail_msg("answered for the first %zu bytes", len);
        free(buf);
    }
    char *whole = malloc(sizeof(text) - 1);
    assert_non_null(whole);
    memcpy(whole, text, sizeof(text) - 1);
    assert_int_equal(agenda_json_scan_string(whole, sizeof(text) - 1,
                                             "target", &v, &n), 1);
    assert_int_equal(n, 8);
    assert_memory_equal(v, "user:ana", 8);
    free(whole);
}

static uint64_t next(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* Names and strings from a small alphabet that needs escapes sometimes,
 * and "target" often. */
static json_t *random_string(uint64_t *x)
{
    static const char alphabet[] = "target\"\\\n/ {}[],:\xc3\xa9";
    if (next(x) % 3 == 0)
        return json_string("target");
    char s[12];
    size_t n = next(x) % 8, i = 0;
    while (i < n) {
        size_t k = next(x) % (sizeof(alphabet) - 1);
        if ((unsigned char)alphabet[k] >= 0x80) {
            if (i + 2 > n)
                break;
            s[i++] = '\xc3';
            s[i++] = '\xa9';
        } else {
            s[i++] = alphabet[k];
        }
    }
    s[i] = '\0';
    return json_string(s);
}

static json_t *random_value(uint64_t *x, int d)
{
    switch (next(x) % (d > 4 ? 4 : 6)) {
    case 0: return json_integer((json_int_t)(next(x) % 2001) - 1000);
    case 1: return random_string(x);
    case 2: return next(x) % 2 ? json_true() : json_null();
    case 3: return json_real(0.5);
    case 4: {
        json_t *o = json_object();
        for (uint64_t i = next(x) % 5; i > 0; i--) {
            json_t *k = random_string(x);
            json_object_set_new(o, json_string_value(k),
                                random_value(x, d + 1));
            json_decref(k);
        }
        return o;
    }
    default: {
        json_t *a = json_array();
        for (uint64_t i = next(x) % 4; i > 0; i--)
            json_array_append_new(a, random_value(x, d + 1));
        return a;
    }
    }
}

/* A top-level string is answered exactly when its dump needs no escape. */
static void random_objects_agree_with_jansson(void **state)
{
    uint64_t x = 0x9e3779b97f4a7c15u;
    int answered = 0, left = 0;
    (void)state;
    for (int round = 0; round < 20000; round++) {
        /* from depth 2: other members hold containers too, which the
         * scan must skip before it reaches "target" */
        json_t *o = random_value(&x, 2);
        if (!json_is_object(o)) {
            json_decref(o);
            o = json_object();
        }
        if (next(&x) % 2)
            json_object_set_new(o, "target", random_value(&x, 3));
        size_t flags = next(&x) % 2 ? JSON_COMPACT : JSON_INDENT(2);
        char *text = json_dumps(o, flags | (next(&x) % 2 ? JSON_SORT_KEYS
                                                          : 0));
        assert_non_null(text);
        json_t *t = json_object_get(o, "target");
        const char *s = json_string_value(t);
        bool plain = s != NULL && strpbrk(s, "\"\\\n") == NULL;
        const char *v;
        size_t n;
        int got = scan(text, &v, &n);
        if (got != (plain ? 1 : 0))
            fail_msg("answered %d for %s", got, text);
        if (got == 1) {
            assert_int_equal(n, json_string_length(t));
            assert_memory_equal(v, s, n);
            answered++;
        } else {
            left++;
        }
        free(text);
        json_decref(o);
    }
    /* both outcomes were exercised */
    if (answered < 1000 || left < 1000)
        fail_msg("answered %d, left %d", answered, left);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(found_cases),
        cmocka_unit_test(left_to_the_parser),
        cmocka_unit_test(depth),
        cmocka_unit_test(prefixes_are_incomplete),
        cmocka_unit_test(random_objects_agree_with_jansson),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

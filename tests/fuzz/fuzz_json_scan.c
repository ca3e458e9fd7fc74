/*
 * fuzz_json_scan.c — libFuzzer target for the scan of one member of a
 * stored JSON object (raft_agent/agenda/json_scan.h): records on disk are
 * untrusted.
 *
 * Arbitrary bytes are scanned for "target".  An answer lies inside the
 * input, and whenever jansson accepts the input, jansson reads the same
 * string for "target".  Then the object jansson read, written back
 * compactly, is scanned too: its "target", when a string that needs no
 * escape, must be found (the scan gives up on nothing it should answer).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "json_scan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Nesting of v, for the scan's fixed depth. */
static int depth(const json_t *v)
{
    int d = 0;
    size_t i;
    const char *k;
    json_t *m;
    if (json_is_object(v)) {
        json_object_foreach((json_t *)(uintptr_t)v, k, m) {
            int dm = depth(m);
            d = dm > d ? dm : d;
        }
        return d + 1;
    }
    if (json_is_array(v)) {
        json_array_foreach(v, i, m) {
            int dm = depth(m);
            d = dm > d ? dm : d;
        }
        return d + 1;
    }
    return 0;
}

/* Whether jansson writes s (n bytes) with an escape. */
static bool needs_escape(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == '"' || s[i] == '\\')
            return true;
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    const char *v = NULL;
    size_t n = 0;
    int got = agenda_json_scan_string(text, size, "target", &v, &n);
    if (got != 0 && got != 1)
        abort();
    if (got == 1 && (v < text || n > size || v + n > text + size))
        abort();
    json_t *j = json_loadb(text, size, 0, NULL);
    const json_t *t = json_object_get(j, "target");
    if (got == 1 && j != NULL &&
        (!json_is_string(t) || json_string_length(t) != n ||
         memcmp(json_string_value(t), v, n) != 0))
        abort();
    if (json_is_object(j) && json_is_string(t) &&
        !needs_escape(json_string_value(t), json_string_length(t)) &&
        depth(j) < 64) {
        /* no key of j may need \u either: written back, a control
         * character other than \b \f \n \r \t would be */
        char *again = json_dumps(j, JSON_COMPACT);
        bool unicode = again == NULL || strstr(again, "\\u") != NULL;
        if (!unicode &&
            (agenda_json_scan_string(again, strlen(again), "target", &v,
                                     &n) != 1 ||
             n != json_string_length(t) ||
             memcmp(v, json_string_value(t), n) != 0))
            abort();
        free(again);
    }
    json_decref(j);
    return 0;
}

/*
 * json_text.c — JSON text as jansson's compact json_dumps writes it
 * (json_text.h).
 */
#include "json_text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "validate.h"

/* jansson refuses deeper values (JSON_PARSER_MAX_DEPTH, also used when
 * dumping); nothing stored here is more than a few levels deep. */
#define TEXT_MAX_DEPTH 2048
/* Objects with more members sort a malloc'd array instead. */
#define SORT_ON_STACK 32

int agenda_json_text_strn(struct agenda_buf *b, const char *s, size_t n)
{
    if (agenda_buf_reserve(b, n + 2) != 0 ||
        agenda_buf_append(b, "\"", 1) != 0)
        return -1;
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x80) {
            /* invalid UTF-8 is refused, as json_dumps refuses it */
            uint32_t cp;
            size_t len = agenda_utf8_decode((const unsigned char *)s + i,
                                            n - i, &cp);
            if (len == 0)
                return -1;
            i += len - 1;
            continue;
        }
        if (ch >= 0x20 && ch != '"' && ch != '\\')
            continue;
        /* flush the plain run before i */
        if (i > run && agenda_buf_append(b, s + run, i - run) != 0)
            return -1;
        char esc[8];
        const char *e = esc;
        switch (ch) {
        case '"': e = "\\\""; break;
        case '\\': e = "\\\\"; break;
        case '\b': e = "\\b"; break;
        case '\f': e = "\\f"; break;
        case '\n': e = "\\n"; break;
        case '\r': e = "\\r"; break;
        case '\t': e = "\\t"; break;
        default: snprintf(esc, sizeof(esc), "\\u%04X", ch); break;
        }
        if (agenda_buf_append(b, e, strlen(e)) != 0)
            return -1;
        run = i + 1;
    }
    if (n > run && agenda_buf_append(b, s + run, n - run) != 0)
        return -1;
    return agenda_buf_append(b, "\"", 1);
}

int agenda_json_text_str(struct agenda_buf *b, const char *s)
{
    return agenda_json_text_strn(b, s, strlen(s));
}

int agenda_json_text_int(struct agenda_buf *b, int64_t v)
{
    char digits[24];
    size_t i = sizeof(digits);
    /* in unsigned arithmetic, so that INT64_MIN negates */
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        digits[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        digits[--i] = '-';
    return agenda_buf_append(b, digits + i, sizeof(digits) - i);
}

int agenda_json_text_key(struct agenda_buf *b, const char *name)
{
    if (agenda_buf_append(b, "\"", 1) != 0 ||
        agenda_buf_append(b, name, strlen(name)) != 0)
        return -1;
    return agenda_buf_append(b, "\":", 2);
}

static int by_key(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int value_text(struct agenda_buf *b, const json_t *v, bool sort,
                      int depth);

static int member_text(struct agenda_buf *b, const char *key,
                       const json_t *v, bool first, bool sort, int depth)
{
    if ((!first && agenda_buf_append(b, ",", 1) != 0) ||
        agenda_json_text_str(b, key) != 0 ||
        agenda_buf_append(b, ":", 1) != 0)
        return -1;
    return value_text(b, v, sort, depth);
}

static int object_text(struct agenda_buf *b, const json_t *v, bool sort,
                       int depth)
{
    const char *key;
    const json_t *m;
    size_t n = json_object_size(v);
    if (agenda_buf_append(b, "{", 1) != 0)
        return -1;
    if (!sort || n < 2) {
        bool first = true;
        json_object_foreach((json_t *)(uintptr_t)v, key, m) {
            if (member_text(b, key, m, first, sort, depth) != 0)
                return -1;
            first = false;
        }
        return agenda_buf_append(b, "}", 1);
    }
    /* jansson sorts the keys with strcmp */
    const char *stack[SORT_ON_STACK];
    const char **keys = n <= SORT_ON_STACK ? stack : malloc(n * sizeof(*keys));
    if (keys == NULL)
        return -1;
    size_t i = 0;
    json_object_foreach((json_t *)(uintptr_t)v, key, m)
        keys[i++] = key;
    qsort(keys, n, sizeof(*keys), by_key);
    int rc = 0;
    for (i = 0; i < n && rc == 0; i++)
        rc = member_text(b, keys[i], json_object_get(v, keys[i]), i == 0,
                         sort, depth);
    if (keys != stack)
        free(keys);
    return rc != 0 ? -1 : agenda_buf_append(b, "}", 1);
}

static int value_text(struct agenda_buf *b, const json_t *v, bool sort,
                      int depth)
{
    if (v == NULL || depth > TEXT_MAX_DEPTH)
        return -1;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return object_text(b, v, sort, depth + 1);
    case JSON_ARRAY: {
        if (agenda_buf_append(b, "[", 1) != 0)
            return -1;
        for (size_t i = 0; i < json_array_size(v); i++)
            if ((i > 0 && agenda_buf_append(b, ",", 1) != 0) ||
                value_text(b, json_array_get(v, i), sort, depth + 1) != 0)
                return -1;
        return agenda_buf_append(b, "]", 1);
    }
    case JSON_STRING:
        return agenda_json_text_strn(b, json_string_value(v),
                                     json_string_length(v));
    case JSON_INTEGER:
        return agenda_json_text_int(b, json_integer_value(v));
    case JSON_TRUE:
        return agenda_buf_append(b, "true", 4);
    case JSON_FALSE:
        return agenda_buf_append(b, "false", 5);
    case JSON_NULL:
        return agenda_buf_append(b, "null", 4);
    case JSON_REAL: {
        /* jansson's own spelling of doubles (none are stored today) */
        char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        int rc = t != NULL ? agenda_buf_append(b, t, strlen(t)) : -1;
        free(t);
        return rc;
    }
    }
    return -1;
}

int agenda_json_text_value(struct agenda_buf *b, const json_t *v,
                           bool sort_keys)
{
    size_t len = b->len;
    int rc = value_text(b, v, sort_keys, 0);
    if (rc != 0)
        b->len = len;
    return rc;
}

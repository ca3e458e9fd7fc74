/*
 * json_scan.c — one top-level string member of JSON object text, found
 * without parsing the rest into values (json_scan.h).
 */
#include "json_scan.h"

#include <stdbool.h>
#include <string.h>

/* Deeper values are left to the full parser (jansson allows 2048; stored
 * records are a few levels deep). */
#define SCAN_MAX_DEPTH 64

struct scan {
    const char *p;
    size_t n;
    size_t i;
};

static void skip_space(struct scan *s)
{
    while (s->i < s->n && (s->p[s->i] == ' ' || s->p[s->i] == '\t' ||
                           s->p[s->i] == '\n' || s->p[s->i] == '\r'))
        s->i++;
}

static bool at(const struct scan *s, char ch)
{
    return s->i < s->n && s->p[s->i] == ch;
}

/* Past white space, ch: step over it (true), or stay before it. */
static bool eat(struct scan *s, char ch)
{
    skip_space(s);
    if (!at(s, ch))
        return false;
    s->i++;
    return true;
}

/* How a string is spelled: its bytes are its value; or it has escapes,
 * and those spell only characters that need them (" \ / b f n r t); or
 * one is \u, which spells any character. */
enum spelling { PLAIN, ESCAPED, UNICODE };

/* At an opening quote: move past the closing one, saying how the string
 * is spelled.  False when the string is not terminated or holds a raw
 * control character. */
static bool skip_string(struct scan *s, enum spelling *how)
{
    *how = PLAIN;
    s->i++;
    while (s->i < s->n) {
        unsigned char ch = (unsigned char)s->p[s->i++];
        if (ch == '"')
            return true;
        if (ch < 0x20)
            return false;
        if (ch == '\\') {
            if (s->i >= s->n)
                return false;
            /* the escaped character, which may be a quote */
            if (s->p[s->i++] == 'u')
                *how = UNICODE;
            else if (*how == PLAIN)
                *how = ESCAPED;
        }
    }
    return false;
}

/* Characters of numbers and of true, false and null. */
static bool scalar_char(char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
           (ch >= 'A' && ch <= 'Z') || ch == '-' || ch == '+' || ch == '.';
}

/*
 * Move past one value.  Inside containers only brackets and strings are
 * tracked, not where separators belong: text jansson accepts is skipped
 * exactly, and text it refuses only has to be skipped safely.
 */
static bool skip_value(struct scan *s)
{
    int depth = 0;
    do {
        skip_space(s);
        if (s->i >= s->n)
            return false;
        char ch = s->p[s->i];
        enum spelling how;
        if (ch == '"') {
            if (!skip_string(s, &how))
                return false;
        } else if (ch == '{' || ch == '[') {
            if (++depth > SCAN_MAX_DEPTH)
                return false;
            s->i++;
        } else if (ch == '}' || ch == ']') {
            if (depth == 0)
                return false;
            depth--;
            s->i++;
        } else if (ch == ',' || ch == ':') {
            if (depth == 0)
                return false;
            s->i++;
        } else if (scalar_char(ch)) {
            while (s->i < s->n && scalar_char(s->p[s->i]))
                s->i++;
        } else {
            return false;
        }
    } while (depth > 0);
    return true;
}

int agenda_json_scan_string(const char *text, size_t len, const char *key,
                            const char **val, size_t *val_len)
{
    struct scan s = {text, len, 0};
    size_t key_len = strlen(key);
    /* 1: the last member named key is a plain string at [v0, v0+vn);
     * -1: it is something else; 0: not seen */
    int found = 0;
    size_t v0 = 0, vn = 0;
    enum spelling how;

    if (!eat(&s, '{'))
        return 0;
    if (!eat(&s, '}')) {
        do {
            skip_space(&s);
            if (!at(&s, '"'))
                return 0;
            size_t k0 = s.i + 1;
            if (!skip_string(&s, &how) || how == UNICODE)
                return 0; /* \u may spell key */
            /* a name with other escapes holds characters key has not */
            bool named = how == PLAIN && s.i - 1 - k0 == key_len &&
                         memcmp(text + k0, key, key_len) == 0;
            if (!eat(&s, ':'))
                return 0;
            skip_space(&s);
            if (at(&s, '"')) {
                size_t start = s.i + 1;
                if (!skip_string(&s, &how))
                    return 0;
                if (named) {
                    found = how == PLAIN ? 1 : -1;
                    v0 = start;
                    vn = s.i - 1 - start;
                }
            } else {
                if (!skip_value(&s))
                    return 0;
                if (named)
                    found = -1;
            }
        } while (eat(&s, ','));
        if (!eat(&s, '}'))
            return 0;
    }
    skip_space(&s);
    if (s.i != s.n || found != 1)
        return 0;
    *val = text + v0;
    *val_len = vn;
    return 1;
}

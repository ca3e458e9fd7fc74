/*
 * json_check.c — field readers for the strict JSON documents of config/
 * (see json_check.h).
 */
#include "json_check.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "topology.h"

void jc_fail(struct jc_err *e, const char *path, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (e->buf == NULL || e->len == 0) {
        return;
    }
    n = snprintf(e->buf, e->len, "%s: ", path);
    if (n < 0 || (size_t)n >= e->len) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(e->buf + n, e->len - (size_t)n, fmt, ap);
    va_end(ap);
}

/*
 * Writes "parent.key" (or "key" at the top level) into out.  Paths are
 * short by construction (names are bounded); a truncated one still ends in
 * a NUL, and only makes the message less precise.
 */
void jc_join(char *out, const char *parent, const char *key)
{
    int n;

    if (parent[0] == '\0') {
        n = snprintf(out, JC_PATH_LEN, "%s", key);
    } else {
        n = snprintf(out, JC_PATH_LEN, "%s.%s", parent, key);
    }
    if (n < 0) {
        out[0] = '\0';
    }
}

/* Writes "parent[i]" into out, like jc_join(). */
void jc_join_index(char *out, const char *parent, size_t i)
{
    if (snprintf(out, JC_PATH_LEN, "%s[%zu]", parent, i) < 0) {
        out[0] = '\0';
    }
}

static int in_list(const char *key, const char *const *list)
{
    size_t i;

    for (i = 0; list != NULL && list[i] != NULL; i++) {
        if (strcmp(key, list[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Appends the names of list to out (used bytes so far in *used). */
static void append_list(char *out, size_t size, size_t *used,
                        const char *const *list)
{
    size_t i;

    for (i = 0; list != NULL && list[i] != NULL && *used < size; i++) {
        int n = snprintf(out + *used, size - *used, "%s%s",
                         *used ? ", " : "", list[i]);
        if (n < 0) {
            return;
        }
        *used += (size_t)n;
    }
}

/*
 * A typo such as "raft_prot" must be an error, not a silently ignored
 * field: every key must be in allowed or more.
 */
int jc_check_keys(json_t *obj, const char *path, const char *const *allowed,
                  const char *const *more, struct jc_err *e)
{
    const char *key;
    json_t *val;

    json_object_foreach(obj, key, val) {
        char p[JC_PATH_LEN], list[256];
        size_t used = 0;

        (void)val;
        if (in_list(key, allowed) || in_list(key, more)) {
            continue;
        }
        list[0] = '\0';
        append_list(list, sizeof(list), &used, allowed);
        append_list(list, sizeof(list), &used, more);
        jc_join(p, path, key);
        jc_fail(e, p, "unknown key (allowed: %s)", list);
        return -1;
    }
    return 0;
}

/* The object at obj, or an error naming path when it is something else. */
int jc_want_object(json_t *obj, const char *path, struct jc_err *e)
{
    if (!json_is_object(obj)) {
        jc_fail(e, path, "must be a JSON object");
        return -1;
    }
    return 0;
}

/*
 * Copies the string member key of obj into dst (capacity max + 1).
 * Returns 1 when copied, 0 when absent and optional, -1 on error.  Strings
 * with NUL or other control characters are refused: they end up in file
 * names, logs and HTTP headers.
 */
int jc_get_string(json_t *obj, const char *path, const char *key,
                  int required, char *dst, size_t max, struct jc_err *e)
{
    json_t *v = json_object_get(obj, key);
    char p[JC_PATH_LEN];
    const char *s;
    size_t n, i;

    jc_join(p, path, key);
    if (v == NULL) {
        if (required) {
            jc_fail(e, p, "missing (required)");
            return -1;
        }
        return 0;
    }
    if (!json_is_string(v)) {
        jc_fail(e, p, "must be a string");
        return -1;
    }
    s = json_string_value(v);
    n = json_string_length(v);
    if (n > max) {
        jc_fail(e, p, "too long (%zu bytes, at most %zu)", n, max);
        return -1;
    }
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f) {
            jc_fail(e, p, "must not contain control characters");
            return -1;
        }
    }
    memcpy(dst, s, n);
    dst[n] = '\0';
    return 1;
}

/*
 * Reads the integer member key of obj into *out, checking min..max.
 * Returns 1 when read, 0 when absent and optional, -1 on error.
 */
int jc_get_uint(json_t *obj, const char *path, const char *key,
                int required, uint64_t min, uint64_t max, uint64_t *out,
                struct jc_err *e)
{
    json_t *v = json_object_get(obj, key);
    char p[JC_PATH_LEN];
    json_int_t n;

    jc_join(p, path, key);
    if (v == NULL) {
        if (required) {
            jc_fail(e, p, "missing (required)");
            return -1;
        }
        return 0;
    }
    if (!json_is_integer(v)) {
        jc_fail(e, p, "must be an integer, %llu..%llu",
                (unsigned long long)min, (unsigned long long)max);
        return -1;
    }
    n = json_integer_value(v);
    if (n < 0 || (uint64_t)n < min || (uint64_t)n > max) {
        jc_fail(e, p, "must be %llu..%llu", (unsigned long long)min,
                (unsigned long long)max);
        return -1;
    }
    *out = (uint64_t)n;
    return 1;
}

/* Names become directory names and nginx upstream names: keep them tame. */
int jc_check_name(const char *s, const char *path, const char *key,
                  struct jc_err *e)
{
    char p[JC_PATH_LEN];
    size_t i;
    int ok = (s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z');

    for (i = 1; ok && s[i] != '\0'; i++) {
        char c = s[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
             (c >= '0' && c <= '9') || c == '_' || c == '-';
    }
    if (!ok) {
        jc_join(p, path, key);
        jc_fail(e, p, "\"%s\" is not a valid name: use 1..%d letters, digits, "
                "'_' or '-', starting with a letter", s,
                AGENDA_TOPO_NAME_LEN_MAX);
        return -1;
    }
    return 0;
}

/* A DNS name, an IPv4 literal or a bare IPv6 literal (no brackets). */
int jc_check_host(const char *s, const char *path, const char *key,
                  struct jc_err *e)
{
    char p[JC_PATH_LEN];
    size_t i;
    int ok = s[0] != '\0';

    for (i = 0; ok && s[i] != '\0'; i++) {
        char c = s[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
             (c >= '0' && c <= '9') || c == '.' || c == '-' || c == ':';
    }
    if (!ok) {
        jc_join(p, path, key);
        jc_fail(e, p, "\"%s\" is not a host name or IP address", s);
        return -1;
    }
    return 0;
}

json_t *jc_load(const char *json, size_t len, struct jc_err *e)
{
    json_error_t jerr;
    json_t *root;

    if (json == NULL) {
        jc_fail(e, "(top level)", "no input");
        return NULL;
    }
    /* Duplicate keys are refused: the later one would silently win. */
    root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        char where[JC_PATH_LEN];

        snprintf(where, sizeof(where), "line %d column %d", jerr.line,
                 jerr.column);
        jc_fail(e, where, "invalid JSON: %s", jerr.text);
        return NULL;
    }
    if (!json_is_object(root)) {
        jc_fail(e, "(top level)", "must be a JSON object");
        json_decref(root);
        return NULL;
    }
    return root;
}

static int read_file(const char *path, size_t max, char **data,
                     size_t *len, char *err, size_t errlen)
{
    char *buf;
    size_t n;
    FILE *f;
    int saved;

    *data = NULL;
    *len = 0;
    f = fopen(path, "rb");
    if (f == NULL) {
        saved = errno;
        if (err != NULL && errlen > 0) {
            snprintf(err, errlen, "%s: %s", path, strerror(saved));
        }
        return -1;
    }
    buf = malloc(max + 1);
    if (buf == NULL) {
        fclose(f);
        if (err != NULL && errlen > 0) {
            snprintf(err, errlen, "%s: out of memory", path);
        }
        return -1;
    }
    /* One byte more than allowed tells "too large" from "exactly max". */
    n = fread(buf, 1, max + 1, f);
    saved = errno;
    if (ferror(f)) {
        if (err != NULL && errlen > 0) {
            snprintf(err, errlen, "%s: %s", path, strerror(saved));
        }
        fclose(f);
        free(buf);
        return -1;
    }
    fclose(f);
    if (n > max) {
        if (err != NULL && errlen > 0) {
            snprintf(err, errlen, "%s: larger than %zu bytes", path, max);
        }
        free(buf);
        return -1;
    }
    *data = buf;
    *len = n;
    return 0;
}

/* Prefixes the message in err with "<path>: " (truncating its end). */
static void prefix_path(char *err, size_t errlen, const char *path)
{
    size_t plen, mlen;

    if (err == NULL || errlen == 0) {
        return;
    }
    plen = strlen(path) + 2;
    mlen = strlen(err);
    if (plen >= errlen) {
        return;
    }
    if (plen + mlen >= errlen) {
        mlen = errlen - plen - 1;
    }
    memmove(err + plen, err, mlen);
    err[plen + mlen] = '\0';
    memcpy(err, path, plen - 2);
    err[plen - 2] = ':';
    err[plen - 1] = ' ';
}

int jc_load_file(const char *path, const char *what, jc_parse_fn parse,
                 void *out, char *err, size_t errlen)
{
    char *data;
    size_t n;
    int rc;

    if (path == NULL) {
        if (err != NULL && errlen > 0) {
            snprintf(err, errlen, "no %s file given", what);
        }
        return -1;
    }
    if (read_file(path, AGENDA_TOPO_FILE_MAX, &data, &n, err, errlen) != 0) {
        return -1;
    }
    rc = parse(data, n, out, err, errlen);
    free(data);
    if (rc != 0) {
        prefix_path(err, errlen, path);
    }
    return rc;
}

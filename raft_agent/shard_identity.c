/*
 * shard_identity.c — a shard's kind and range, as no-op data; see
 * shard_identity.h.
 */
#include "shard_identity.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#define IDENTITY_PREFIX "agenda-shard-identity/1 "
#define IDENTITY_PREFIX_LEN (sizeof(IDENTITY_PREFIX) - 1)
/* Far above any real identity (two bounds of at most 255 bytes): more is
 * not ours to read. */
#define IDENTITY_MAX 4096

int agenda_shard_identity_encode(struct agenda_buf *out, const char *kind,
                                 const char *from, const char *to)
{
    json_t *o = json_pack("{s:s,s:s,s:s}", "kind", kind, "from", from,
                          "to", to);
    char *text = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS)
                           : NULL;
    json_decref(o);
    agenda_buf_reset(out);
    int rc = text != NULL &&
                     agenda_buf_append(out, IDENTITY_PREFIX,
                                       IDENTITY_PREFIX_LEN) == 0 &&
                     agenda_buf_append(out, text, strlen(text)) == 0
                 ? 0
                 : -1;
    free(text);
    return rc;
}

/* The object after the prefix, or NULL if data is not an identity this
 * build reads: three strings and nothing else. */
static json_t *identity_parse(const uint8_t *data, size_t len)
{
    if (len <= IDENTITY_PREFIX_LEN || len > IDENTITY_MAX ||
        memcmp(data, IDENTITY_PREFIX, IDENTITY_PREFIX_LEN) != 0)
        return NULL;
    json_t *o = json_loadb((const char *)data + IDENTITY_PREFIX_LEN,
                           len - IDENTITY_PREFIX_LEN, JSON_REJECT_DUPLICATES,
                           NULL);
    if (!json_is_object(o) || json_object_size(o) != 3 ||
        !json_is_string(json_object_get(o, "kind")) ||
        !json_is_string(json_object_get(o, "from")) ||
        !json_is_string(json_object_get(o, "to"))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static bool same_string(json_t *a, json_t *b)
{
    size_t n = json_string_length(a);
    return n == json_string_length(b) &&
           memcmp(json_string_value(a), json_string_value(b), n) == 0;
}

/* A string value as JSON (quoted, escaped): safe to log whatever it is. */
static char *quoted(json_t *s)
{
    return json_dumps(s, JSON_ENCODE_ANY | JSON_ENSURE_ASCII);
}

enum agenda_identity_match agenda_shard_identity_compare(
    const uint8_t *data, size_t len, const uint8_t *mine, size_t mine_len,
    char *why, size_t whylen)
{
    if (len == mine_len && len > 0 && memcmp(data, mine, len) == 0)
        return AGENDA_IDENTITY_SAME;
    json_t *theirs = identity_parse(data, len);
    json_t *ours = identity_parse(mine, mine_len);
    enum agenda_identity_match m = AGENDA_IDENTITY_UNKNOWN;
    if (theirs != NULL && ours != NULL) {
        static const char *const keys[] = { "kind", "from", "to" };
        m = AGENDA_IDENTITY_SAME;
        for (size_t i = 0; i < 3; i++)
            if (!same_string(json_object_get(theirs, keys[i]),
                             json_object_get(ours, keys[i])))
                m = AGENDA_IDENTITY_DIFFERENT;
    }
    if (m == AGENDA_IDENTITY_DIFFERENT && why != NULL && whylen > 0) {
        char *k = quoted(json_object_get(theirs, "kind"));
        char *f = quoted(json_object_get(theirs, "from"));
        char *t = quoted(json_object_get(theirs, "to"));
        snprintf(why, whylen, "kind %s, range [%s, %s)", k ? k : "?",
                 f ? f : "?", t ? t : "?");
        free(k);
        free(f);
        free(t);
    }
    json_decref(theirs);
    json_decref(ours);
    return m;
}

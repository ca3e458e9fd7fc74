/* render.c — answer and argument helpers of users and groups; render.h. */
#include "render.h"

#include <errno.h>
#include <string.h>

#include "json_text.h"
#include "validate.h"

int agenda_render_time(json_t *obj, const char *key, int64_t ms)
{
    char text[40];
    json_t *v = agenda_time_format(ms, text, sizeof(text)) < 0
                    ? json_null()
                    : json_string(text);
    return json_object_set_new(obj, key, v) == 0 ? 0 : ENOMEM;
}

int agenda_render_time_text(struct agenda_buf *b, int64_t ms)
{
    char text[40];
    return agenda_time_format(ms, text, sizeof(text)) >= 0
               ? agenda_json_text_str(b, text)
               : agenda_json_text_int(b, ms);
}

int agenda_reply_synced(struct agenda_ctx *c, int status, json_t *body)
{
    uint64_t head = 0;
    if (body == NULL)
        return ENOMEM;
    int rc = agenda_feed_head(c, &head);
    if (rc != 0) {
        json_decref(body);
        return rc;
    }
    /* Sequence numbers stay far below 2^53, exact in any JSON reader. */
    if (json_object_set_new(body, "sync_token",
                            json_integer((json_int_t)head)) != 0) {
        json_decref(body);
        return ENOMEM;
    }
    return agenda_reply(c, status, body);
}

bool agenda_arg_username(struct agenda_ctx *c, const char *key,
                         char out[AGENDA_USERNAME_MAX + 1])
{
    const char *s;
    if (!agenda_arg_str(c, key, true, &s))
        return false;
    if (agenda_username_fold(s, out) != 0) {
        agenda_fail(c, 400, "invalid_field",
                    "'%s' must be a username: %d to %d characters of a-z, "
                    "0-9, '_', '.' and '-'",
                    key, AGENDA_USERNAME_MIN, AGENDA_USERNAME_MAX);
        return false;
    }
    return true;
}

bool agenda_arg_usernames(struct agenda_ctx *c, const char *key, size_t max,
                          char names[][AGENDA_USERNAME_MAX + 1], size_t *n)
{
    json_t *list = agenda_arg_json(c, key), *u;
    size_t i;
    *n = 0;
    if (!json_is_array(list) || json_array_size(list) == 0 ||
        json_array_size(list) > max) {
        agenda_fail(c, 400, "invalid_field",
                    "'%s' must be an array of 1 to %zu usernames", key, max);
        return false;
    }
    json_array_foreach(list, i, u) {
        const char *s = json_string_value(u);
        if (s == NULL || strlen(s) != json_string_length(u) ||
            agenda_username_fold(s, names[*n]) != 0) {
            agenda_fail(c, 400, "invalid_field",
                        "%s[%zu] is not a username", key, i);
            return false;
        }
        bool dup = false;
        for (size_t k = 0; k < *n && !dup; k++)
            dup = strcmp(names[k], names[*n]) == 0;
        if (!dup)
            (*n)++;
    }
    return true;
}

bool agenda_arg_text(struct agenda_ctx *c, const char *key, bool required,
                     size_t max, bool multiline, bool allow_empty,
                     const char **out)
{
    if (!agenda_arg_str(c, key, required, out))
        return false;
    if (!agenda_text_valid(*out, max, multiline, allow_empty)) {
        agenda_fail(c, 400, "invalid_field",
                    "'%s' must be %s text of at most %zu characters%s, "
                    "without control characters",
                    key, allow_empty ? "UTF-8" : "non-blank UTF-8", max,
                    multiline ? " (newlines and tabs allowed)" : "");
        return false;
    }
    return true;
}

bool agenda_actor_is_admin(const struct agenda_ctx *c)
{
    return c->actor.role == AGENDA_ROLE_ADMIN ||
           c->actor.role == AGENDA_ROLE_SYSTEM;
}

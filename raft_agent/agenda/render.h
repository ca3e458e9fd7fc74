/*
 * render.h — small pieces shared by the handlers that answer with stored
 * records: instants as RFC 3339 strings, the sync token of a mutation, and
 * the argument checks users and groups have in common.
 */
#ifndef AGENDA_RENDER_H
#define AGENDA_RENDER_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "agenda.h"
#include "buf.h"

/*
 * Set obj[key] to the RFC 3339 rendering of ms (agenda_time_format); an
 * instant outside the representable range is rendered as null rather than
 * failing the answer.  Returns 0, or ENOMEM.
 */
int agenda_render_time(json_t *obj, const char *key, int64_t ms);

/*
 * Append the instant of a stored record (change, audit record) as JSON: an
 * RFC 3339 string when it can be rendered, else the raw milliseconds (a
 * leader clock gone mad must not stop the shard).  Returns 0, or -1 when
 * memory runs out.
 */
int agenda_render_time_text(struct agenda_buf *b, int64_t ms);

/*
 * Answer a mutation: add "sync_token" (the change-feed head after the
 * change, a JSON integer, the token a client passes to the feed to sync
 * from here) to body (stolen) and set the answer.  Returns 0, ENOMEM or an
 * LMDB error from reading the feed head.
 */
int agenda_reply_synced(struct agenda_ctx *c, int status, json_t *body);

/*
 * Fetch the required string argument key, case-fold it and check it is a
 * username (agenda_username_fold) into out.  On false the answer is set
 * (400 missing_field / invalid_field).
 */
bool agenda_arg_username(struct agenda_ctx *c, const char *key,
                         char out[AGENDA_USERNAME_MAX + 1]);

/*
 * The required argument key: an array of 1 to max usernames, each folded
 * into names (which has room for max), each once, in the order given; *n
 * how many.  On false the answer is set (400 invalid_field).
 */
bool agenda_arg_usernames(struct agenda_ctx *c, const char *key, size_t max,
                          char names[][AGENDA_USERNAME_MAX + 1], size_t *n);

/*
 * Fetch the string argument key and check it with agenda_text_valid(max,
 * multiline, allow_empty).  Returns true when present and valid; false when
 * absent and not required (no answer set) or invalid (400 set) — tell them
 * apart with agenda_failed().
 */
bool agenda_arg_text(struct agenda_ctx *c, const char *key, bool required,
                     size_t max, bool multiline, bool allow_empty,
                     const char **out);

/* The actor acts with administrative rights (role admin or system). */
bool agenda_actor_is_admin(const struct agenda_ctx *c);

#endif /* AGENDA_RENDER_H */

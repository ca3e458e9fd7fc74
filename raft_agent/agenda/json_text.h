/*
 * json_text.h — JSON text written directly into a buffer, byte for byte
 * as jansson's json_dumps(JSON_COMPACT | JSON_SORT_KEYS) writes the same
 * values, for the records a command writes many of (changes): building
 * a jansson object only to serialise it at once was a quarter of the
 * apply time of an event creation.  Byte-identical output keeps what the
 * replicas store independent of which path wrote it.
 */
#ifndef AGENDA_JSON_TEXT_H
#define AGENDA_JSON_TEXT_H

#include <stdint.h>

#include <jansson.h>

#include "buf.h"

/* The canonical serialisation of stored records (json_dumps flags). */
#define AGENDA_JSON_FLAGS (JSON_COMPACT | JSON_SORT_KEYS)

/*
 * Append s (NUL-terminated, valid UTF-8: it comes from a validated value)
 * as a JSON string literal, escaped as jansson escapes it: \" \\ \b \f \n
 * \r \t, other control characters as \u00XX (upper-case hex), everything
 * else as is.  Returns 0, or -1 when memory cannot be had.
 */
int agenda_json_text_str(struct agenda_buf *b, const char *s);

/* Append "name": (the name must need no escaping: a literal). */
int agenda_json_text_key(struct agenda_buf *b, const char *name);

#endif /* AGENDA_JSON_TEXT_H */

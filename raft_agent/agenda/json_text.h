/*
 * json_text.h — JSON text written directly into a buffer, byte for byte
 * as jansson's json_dumps(JSON_COMPACT [| JSON_SORT_KEYS]) writes the same
 * values.  For the records a command writes many of (changes, audit),
 * building a jansson object only to serialise it at once was a quarter of
 * the apply time of an event creation; and json_dumps itself (a callback
 * per fragment, UTF-8 decoding of every string, a malloc'd key array per
 * sorted object) was a fifth of what remained.  Byte-identical output
 * keeps what the replicas store independent of which path wrote it.
 */
#ifndef AGENDA_JSON_TEXT_H
#define AGENDA_JSON_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "buf.h"

/* The canonical serialisation of stored records (json_dumps flags). */
#define AGENDA_JSON_FLAGS (JSON_COMPACT | JSON_SORT_KEYS)

/*
 * Append s (NUL-terminated) as a JSON string literal, escaped as jansson
 * escapes it: \" \\ \b \f \n \r \t, other control characters as \u00XX
 * (upper-case hex), everything else as is.  Returns 0, or -1 when memory
 * cannot be had or s is not valid UTF-8 (json_dumps refuses it too; the
 * buffer may then hold part of the literal).
 */
int agenda_json_text_str(struct agenda_buf *b, const char *s);
/* The same for n bytes (which may include NUL: written \u0000). */
int agenda_json_text_strn(struct agenda_buf *b, const char *s, size_t n);

/*
 * Append v as json_dumps(v, JSON_COMPACT | (sort_keys ? JSON_SORT_KEYS :
 * 0) | JSON_ENCODE_ANY) would write it.  Returns 0, or -1 (the buffer as
 * it was) when memory cannot be had or v cannot be serialised (NULL; too
 * deeply nested; a string or key that is not valid UTF-8).
 */
int agenda_json_text_value(struct agenda_buf *b, const json_t *v,
                           bool sort_keys);

/* Append v in decimal, as jansson writes integers (without printf). */
int agenda_json_text_int(struct agenda_buf *b, int64_t v);

/* Append "name": (the name must need no escaping: a literal). */
int agenda_json_text_key(struct agenda_buf *b, const char *name);

#endif /* AGENDA_JSON_TEXT_H */

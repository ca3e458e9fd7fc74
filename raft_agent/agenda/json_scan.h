/*
 * json_scan.h — one member of a stored JSON object, read without building
 * the object.
 *
 * Trimming the change feed needs only the "target" of each change it
 * deletes: building the whole change with jansson (an object, a hash
 * table, a string per member) to read one short string was 5% of the
 * agents' CPU in a profile of creations once the feed was full; reading
 * it with this scan raised those creations from 4,171 to 4,484/s.
 * The scan walks the text once, allocates nothing, and says "parse it
 * yourself" whenever the answer is not plain: records on disk are
 * untrusted.
 */
#ifndef AGENDA_JSON_SCAN_H
#define AGENDA_JSON_SCAN_H

#include <stddef.h>

/*
 * In text (len bytes, not NUL-terminated), which should be one JSON object
 * and nothing else but white space, find the member named key (printable
 * ASCII other than " \ and /, which JSON may spell with escapes) at the
 * top level.  When the object is well formed as
 * far as the scan checks, has the member, and the member's value (the last
 * one, when the name repeats, as jansson keeps it) is a string without
 * escapes or control characters, returns 1 with *val and *val_len
 * borrowed from text (the bytes between the quotes).  Returns 0 in every
 * other case: the caller must then parse the text fully to know whether
 * the member is missing, differently spelled or the text malformed.
 *
 * The scan checks the top level's structure (names, colons, commas, the
 * closing brace, nothing after it); inside the other members' values it
 * only pairs quotes and counts brackets (up to a fixed depth), without
 * matching their kinds or checking separators.  It checks neither escape
 * sequences nor UTF-8, nor the spelling of numbers and literals, nor the
 * range of integers.  So it may answer 1 for text jansson refuses; but
 * whenever jansson accepts text, 1 means jansson reads the same string
 * for key.
 */
int agenda_json_scan_string(const char *text, size_t len, const char *key,
                            const char **val, size_t *val_len);

#endif /* AGENDA_JSON_SCAN_H */

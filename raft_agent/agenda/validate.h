/*
 * validate.h — validators and parsers for every field the agenda accepts.
 *
 * Pure functions of their input (no clock, no files, no locale), so the
 * state machine may call them on apply; the set of time zones is compiled
 * in (tz_names.c) for the same reason.  Every function accepts any bytes
 * (NUL-terminated) and never reads past the terminator.
 */
#ifndef AGENDA_VALIDATE_H
#define AGENDA_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model.h"

/*
 * Decode the UTF-8 sequence at s[0..n) (n >= 1) into *cp; returns its
 * length in bytes, or 0 when it is malformed: a stray continuation byte, a
 * lead byte 0xC0, 0xC1 or >= 0xF5, a missing continuation (or fewer than
 * the sequence's bytes before n), an overlong form, a surrogate
 * (U+D800..U+DFFF) or a value above U+10FFFF — the rules jansson applies
 * too.  The second byte's allowed range depends on the lead byte (Unicode
 * table 3-7), which rules out overlongs, surrogates and out-of-range
 * values in one check.
 */
size_t agenda_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);

/* Cut the NUL-terminated s at its first malformed UTF-8 sequence: what a
 * byte-counted "%.64s" leaves of a multi-byte character at its end, so
 * that a message quoting untrusted text stays a JSON string. */
void agenda_utf8_cut(char *s);

/* Case-fold (ASCII) a username into out and validate it: 3..32 bytes of
 * [a-z0-9_.-].  Returns 0, or -1 (out is then "").  out may alias in. */
int agenda_username_fold(const char *in, char out[AGENDA_USERNAME_MAX + 1]);
bool agenda_username_valid(const char *s); /* already folded */

/* A calendar id: a valid username, or "g:" followed by a group id. */
bool agenda_calendar_valid(const char *s);
bool agenda_calendar_is_group(const char *s);

/*
 * A one-line text others will read as a name or a title: at least one
 * character that is neither space nor invisible (agenda_text_valid's
 * blanks, plus the Hangul and Braille fillers, soft hyphen, combining
 * grapheme joiner, Mongolian vowel separator, direction marks, invisible
 * operators, deprecated format characters), and no bidirectional
 * embedding, override or isolate (U+202A-202E, U+2066-2069), which make
 * one name read as another.  s is already valid UTF-8.  For the edge,
 * before proposing: the replicas keep agenda_text_valid's rules, so that
 * agents of every version apply a logged command alike.
 */
bool agenda_line_shows(const char *s);
/* Whether s holds a bidirectional embedding, override or isolate. */
bool agenda_line_redirects(const char *s);

/* Well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF), no NUL or
 * other C0/C1 control characters except, when multiline, '\n' and '\t';
 * at most max_chars code points; at least one non-space character unless
 * allow_empty. */
bool agenda_text_valid(const char *s, size_t max_chars, bool multiline,
                       bool allow_empty);

/* A pragmatic e-mail check: local@domain, <= 254 bytes, printable ASCII,
 * one '@', a dot in the domain, no spaces or quotes. */
bool agenda_email_valid(const char *s);

/* A PHC-format password hash: "$argon2id$v=19$m=..,t=..,p=..$salt$hash"
 * or "$scrypt$ln=..,r=..,p=..$salt$hash" (base64 parts), <= 256 bytes. */
bool agenda_password_hash_valid(const char *s);

/* Random ids minted by the leader: exactly len lowercase hex digits. */
bool agenda_hex_id_valid(const char *s, size_t len);

/*
 * RFC 3339 date-time with a mandatory offset ("Z", "+hh:mm", "-hh:mm"),
 * optional fraction (milliseconds kept, more digits truncated), 'T' or 't'
 * separator; calendar-checked (leap years, days per month; a leap second
 * ":60" is refused).  *ms is the UTC instant, within
 * [AGENDA_TIME_MIN_MS, AGENDA_TIME_MAX_MS].  Returns 0 or -1.
 */
int agenda_time_parse(const char *s, int64_t *ms);
/* Format a UTC instant as "YYYY-MM-DDTHH:MM:SSZ" (".mmm" when the
 * milliseconds are not zero) into out (at least 32 bytes).  Returns the
 * length, or -1 out of range. */
int agenda_time_format(int64_t ms, char *out, size_t len);

/* A calendar date "YYYY-MM-DD" (all-day events): *ms = its UTC midnight. */
int agenda_date_parse(const char *s, int64_t *ms);
int agenda_date_format(int64_t ms, char *out, size_t len);

/* Proleptic Gregorian calendar arithmetic (also the edge's time zone
 * rules, agenda_tz.c): days are counted from 1970-01-01, m is 1..12. */
bool agenda_is_leap(int64_t y);
int agenda_days_in_month(int64_t y, int m);
int64_t agenda_days_from_civil(int64_t y, int m, int d);
void agenda_civil_from_days(int64_t days, int64_t *y, int *m, int *d);

/* An IANA time zone name known to the compiled tz database ("UTC",
 * "Europe/Madrid", "America/Argentina/Buenos_Aires", ...). */
bool agenda_tz_valid(const char *s);
/* Its index in agenda_tz_names (tz_names.h), or -1 for any other. */
long agenda_tz_index(const char *s);

#endif /* AGENDA_VALIDATE_H */

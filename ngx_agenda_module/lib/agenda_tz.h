/*
 * agenda_tz.h — the rules of IANA time zones, read from TZif files
 * (RFC 8536, as /usr/share/zoneinfo holds them), so that the edge can
 * tell when a day begins in an event's time zone.
 *
 * Why the edge and not the replicas: an all-day event on 2026-12-24 in
 * Asia/Tokyo occupies 2026-12-23T15:00Z .. 2026-12-24T15:00Z, and which
 * instants those are depends on the tz database.  Replicas of one shard
 * may run with different tzdata (a rolling upgrade of the images), and
 * a replicated state machine must compute the same state from the same
 * log everywhere; so the edge computes the instants once and the command
 * carries them (start_at / end_at, raft_agent/API.md).
 *
 * Every byte of a file is untrusted: a malformed file is refused (the
 * zone then counts as missing), never read out of bounds
 * (tests/fuzz/fuzz_tz.c).  Times are seconds since 1970-01-01T00:00Z;
 * offsets are seconds east of UTC.
 */
#ifndef AGENDA_TZ_H
#define AGENDA_TZ_H

#include <stddef.h>
#include <stdint.h>

/* One zone's rules. */
struct agenda_tz;

/* Parse a TZif file (versions 1 to 4).  Returns 0 and *out (free with
 * agenda_tz_free), -1 when the bytes are not a TZif file this code
 * accepts (leap-second "right/" files included), ENOMEM. */
int agenda_tz_parse(const uint8_t *data, size_t len, struct agenda_tz **out);
void agenda_tz_free(struct agenda_tz *z);

/* The zone's offset from UTC at instant t: the transitions of the file,
 * before the first one its first local time type, after the last one the
 * POSIX TZ rule of its footer (when it has one). */
int32_t agenda_tz_offset(const struct agenda_tz *z, int64_t t);

/* The first instant of local date `day` (days since 1970-01-01): local
 * midnight, or, where the clocks skip midnight, the instant they jump
 * to; where they go back across midnight, the first of the two. */
int64_t agenda_tz_day_start(const struct agenda_tz *z, int64_t day);


/* The zones of every name the replicas accept (tz_names.h), loaded from
 * a zoneinfo directory. */
struct agenda_tz_db;

/* Load dir/<name> for every compiled-in name.  A name whose file is
 * missing or malformed is counted in *missing (may be NULL) and has no
 * rules.  Returns 0 and *out, ENOMEM, or another errno when dir cannot
 * be read at all (err then says why). */
int agenda_tz_db_load(const char *dir, struct agenda_tz_db **out,
                      size_t *missing, char *err, size_t errlen);
void agenda_tz_db_free(struct agenda_tz_db *db);

/* The rules of the zone called name, or NULL (unknown name, or no file). */
const struct agenda_tz *agenda_tz_db_find(const struct agenda_tz_db *db,
                                          const char *name);

#endif /* AGENDA_TZ_H */

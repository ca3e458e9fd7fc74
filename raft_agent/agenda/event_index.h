/*
 * event_index.h — the time indexes of the events shard and the range walks
 * that read them.
 *
 *   events      calendar 0 id                     -> event JSON
 *   ev_by_cal   calendar 0 start(8) 0 id          -> end(8) flags(1)
 *   ev_by_part  user 0 start(8) 0 calendar 0 id   -> end(8) flags(1)
 *                                                    response(1)
 *               (every participant, whatever the response)
 *   cal_meta    calendar          -> {"max_duration": ms}
 *               "part:" + user    -> {"max_duration": ms}
 *
 * start(8) is agenda_key_time(), so an index is in (start, ...) order.
 * max_duration is the longest event ever indexed under that calendar or
 * participant.  It only grows (a delete does not shrink it), which keeps it
 * correct without a scan; it is bounded by AGENDA_EVENT_DURATION_MAX_MS.
 * An event overlapping [from, to) starts in [from - max_duration, to), so a
 * range walk seeks there and never visits anything outside that interval of
 * the owner's own keys: the cost is the owner's events in the window plus
 * those starting up to max_duration earlier, never the shard.
 *
 * The index values hold what the hot walks need without parsing records:
 * end (agenda_key_time), flags (bit 0: all_day) and, in ev_by_part, the
 * participant's enum agenda_response.  Double-booking detection and
 * free/busy run on the indexes alone (agenda_ev_walk_index), so a create
 * costs index reads, not a JSON parse per neighbouring event; an answer to
 * an invitation rewrites the participant's value.
 *
 * Everything works on an MDB_txn directly (no agenda_ctx) so the property
 * tests and the fuzzer can check the indexes of any environment.
 * Returned pointers into keys or records live as long as the call that
 * hands them out (LMDB values: the transaction; JSON: the callback).
 */
#ifndef AGENDA_EVENT_INDEX_H
#define AGENDA_EVENT_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <lmdb.h>

#include "agenda.h"

/* The cal_meta key prefix of a participant's max duration.  Calendars never
 * contain ':' other than in "g:", so "part:" cannot collide. */
#define AGENDA_PART_META_PREFIX "part:"

/* Key of the record: calendar 0 id. */
void agenda_evkey_event(struct agenda_key *k, const char *calendar,
                        const char *id);
/* Key in ev_by_cal / ev_by_part. */
void agenda_evkey_cal(struct agenda_key *k, const char *calendar,
                      int64_t start, const char *id);
void agenda_evkey_part(struct agenda_key *k, const char *user, int64_t start,
                       const char *calendar, const char *id);

/*
 * Load the event calendar/id into *out (new reference) and check the shape
 * the indexes rely on (calendar, id, integer start < end, participants an
 * object of strings).  Returns 0, MDB_NOTFOUND, MDB_CORRUPTED (unparsable
 * or misshapen record) or another LMDB error.
 */
int agenda_ev_load(MDB_txn *txn, const struct agenda_db *db,
                   const char *calendar, const char *id, json_t **out);

/* The instants (ms) a record already checked by agenda_ev_load() occupies:
 * start and end, or an all-day event's start_at and end_at when it has
 * them (the first instants of its dates in its time zone).  The indexes,
 * walks and conflicts all use these. */
int64_t agenda_ev_start(const json_t *ev);
int64_t agenda_ev_end(const json_t *ev);

/*
 * Add (or remove) every index entry of the stored record ev (borrowed):
 * its ev_by_cal key and one ev_by_part key per participant; adding also
 * raises the max durations.  Removing an entry that is not there is
 * MDB_CORRUPTED (the indexes must agree with the records).  Returns 0 or an
 * LMDB error.
 */
int agenda_ev_index_add(MDB_txn *txn, const struct agenda_db *db,
                        const json_t *ev);
int agenda_ev_index_del(MDB_txn *txn, const struct agenda_db *db,
                        const json_t *ev);

/* Rewrite every index value from the records (their keys are unchanged):
 * the upgrade from format 1, whose index values were empty. */
int agenda_ev_index_rewrite_values(MDB_txn *txn, const struct agenda_db *db);

/* One event met by a range walk. */
struct agenda_ev_hit {
    const char *calendar;  /* borrowed from the record */
    const char *id;
    int64_t start;
    int64_t end;
    bool all_day;
    const char *response;  /* ev_by_part: the owner's response (static) */
    const json_t *event;   /* the record, borrowed for the callback; NULL
                              in agenda_ev_walk_index */
    size_t record_len;     /* its stored JSON text's bytes (with event) */
    const uint8_t *pos;    /* the index key after its owner prefix: where */
    size_t pos_len;        /* a paging cursor resumes (agenda_ev_walk) */
};

/* Called for each hit in key order: return 0 to go on, 1 to stop, anything
 * else is an error that ends the walk and is returned by it. */
typedef int (*agenda_ev_visit)(void *arg, const struct agenda_ev_hit *hit);

enum agenda_ev_index {
    AGENDA_EV_BY_CAL,      /* owner is a calendar */
    AGENDA_EV_BY_PART      /* owner is a participant's username */
};

/*
 * Visit every event of the owner overlapping [from, to) (start < to and
 * end > from), in index order (start, then id — or calendar and id for
 * participations).  after (may be NULL) is a hit's pos from an earlier walk
 * of the same owner: the walk resumes strictly after it.  response (may be
 * NULL; participations only) keeps the participations holding that answer
 * in the index, skipped before their records are read.  Returns 0 (also
 * when visit stopped it), visit's error, or an LMDB error (MDB_CORRUPTED
 * when an index entry has no record).
 */
int agenda_ev_walk(MDB_txn *txn, const struct agenda_db *db,
                   enum agenda_ev_index which, const char *owner,
                   int64_t from, int64_t to, const uint8_t *after,
                   size_t after_len, const char *response,
                   agenda_ev_visit visit, void *arg);

/* The same walk without loading the records: hits carry what the index
 * holds (calendar, id, start, end, all_day, response), event is NULL. */
int agenda_ev_walk_index(MDB_txn *txn, const struct agenda_db *db,
                         enum agenda_ev_index which, const char *owner,
                         int64_t from, int64_t to, agenda_ev_visit visit,
                         void *arg);

/* The max duration recorded for a calendar or participant (0 if none).
 * Returns 0 or an LMDB error. */
int agenda_ev_max_duration(MDB_txn *txn, const struct agenda_db *db,
                           enum agenda_ev_index which, const char *owner,
                           int64_t *ms);

/*
 * Verify that ev_by_cal and ev_by_part hold exactly the entries the events
 * database implies (no missing and no extra entries, the values the records
 * imply), that every record is well formed and stored under its own
 * calendar/id, and that every recorded max duration covers the events under it.  Returns 0
 * when they agree, 1 with a reason in why when they do not, or an LMDB
 * error.
 */
int agenda_events_check_indexes(MDB_txn *txn, const struct agenda_db *db,
                                char *why, size_t len);

#endif /* AGENDA_EVENT_INDEX_H */

/*
 * event_index.c — keys, index maintenance, range walks and the consistency
 * check of the events shard's time indexes; see event_index.h.
 */
#include "event_index.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest calendar or event id a well-formed key part can hold. */
#define PART_MAX 64

static const uint8_t zero_byte;

/* Index values: end(8) flags(1) [response(1)] */
#define INDEX_VALUE_MAX 10
#define INDEX_FLAG_ALL_DAY 0x01

void agenda_evkey_event(struct agenda_key *k, const char *calendar,
                        const char *id)
{
    agenda_key_reset(k);
    agenda_key_str(k, calendar);
    agenda_key_raw(k, id, strlen(id));
}

void agenda_evkey_cal(struct agenda_key *k, const char *calendar,
                      int64_t start, const char *id)
{
    uint8_t t[8];
    agenda_key_time(t, start);
    agenda_key_reset(k);
    agenda_key_str(k, calendar);
    agenda_key_raw(k, t, sizeof(t));
    agenda_key_raw(k, &zero_byte, 1);
    agenda_key_raw(k, id, strlen(id));
}

void agenda_evkey_part(struct agenda_key *k, const char *user, int64_t start,
                       const char *calendar, const char *id)
{
    uint8_t t[8];
    agenda_key_time(t, start);
    agenda_key_reset(k);
    agenda_key_str(k, user);
    agenda_key_raw(k, t, sizeof(t));
    agenda_key_raw(k, &zero_byte, 1);
    agenda_key_str(k, calendar);
    agenda_key_raw(k, id, strlen(id));
}

/* The cal_meta key of a calendar or of a participant. */
static void meta_key(struct agenda_key *k, enum agenda_ev_index which,
                     const char *owner)
{
    agenda_key_reset(k);
    if (which == AGENDA_EV_BY_PART)
        agenda_key_raw(k, AGENDA_PART_META_PREFIX,
                       strlen(AGENDA_PART_META_PREFIX));
    agenda_key_raw(k, owner, strlen(owner));
}

/* Two stored instants that make a span an index can hold. */
static bool span_ok(const json_t *s, const json_t *e)
{
    return json_is_integer(s) && json_is_integer(e) &&
           json_integer_value(s) < json_integer_value(e) &&
           json_integer_value(s) >= AGENDA_TIME_MIN_MS &&
           json_integer_value(e) <= AGENDA_TIME_MAX_MS + 1;
}

/* The shape every index operation relies on; the disk is not trusted. */
static bool shape_ok(const json_t *ev)
{
    json_t *s = json_object_get(ev, "start");
    json_t *e = json_object_get(ev, "end");
    json_t *p = json_object_get(ev, "participants");
    if (!json_is_string(json_object_get(ev, "calendar")) ||
        !json_is_string(json_object_get(ev, "id")) || !span_ok(s, e) ||
        !json_is_object(p))
        return false;
    /* an all-day event's own span (events.c, set_day_span) */
    json_t *sa = json_object_get(ev, "start_at");
    json_t *ea = json_object_get(ev, "end_at");
    if ((sa != NULL || ea != NULL) && !span_ok(sa, ea))
        return false;
    const char *user;
    json_t *r;
    json_object_foreach(p, user, r) {
        if (!json_is_string(r) ||
            agenda_response_parse(json_string_value(r)) == 0 ||
            strlen(user) == 0 ||
            strlen(user) > AGENDA_USERNAME_MAX)
            return false;
    }
    return true;
}

int64_t agenda_ev_start(const json_t *ev)
{
    json_t *at = json_object_get(ev, "start_at");
    return json_integer_value(at != NULL ? at : json_object_get(ev, "start"));
}

int64_t agenda_ev_end(const json_t *ev)
{
    json_t *at = json_object_get(ev, "end_at");
    return json_integer_value(at != NULL ? at : json_object_get(ev, "end"));
}

/* The record at key, checked; *len (may be NULL) its stored size. */
static int load_key(MDB_txn *txn, const struct agenda_db *db, MDB_val key,
                    json_t **out, size_t *len)
{
    MDB_val v;
    int rc = mdb_get(txn, db->events, &key, &v);
    if (rc != 0)
        return rc;
    if (len != NULL)
        *len = v.mv_size;
    json_t *ev = json_loadb(v.mv_data, v.mv_size, JSON_REJECT_DUPLICATES,
                            NULL);
    if (ev == NULL || !shape_ok(ev)) {
        json_decref(ev);
        return MDB_CORRUPTED;
    }
    *out = ev;
    return 0;
}

static int load_record(MDB_txn *txn, const struct agenda_db *db,
                       const char *calendar, const char *id, json_t **out,
                       size_t *len)
{
    struct agenda_key k;
    agenda_evkey_event(&k, calendar, id);
    if (k.bad)
        return MDB_NOTFOUND;
    json_t *ev;
    int rc = load_key(txn, db, agenda_key_val(&k), &ev, len);
    if (rc != 0)
        return rc;
    if (strcmp(json_string_value(json_object_get(ev, "calendar")),
               calendar) != 0 ||
        strcmp(json_string_value(json_object_get(ev, "id")), id) != 0) {
        json_decref(ev);
        return MDB_CORRUPTED;
    }
    *out = ev;
    return 0;
}

int agenda_ev_load(MDB_txn *txn, const struct agenda_db *db,
                   const char *calendar, const char *id, json_t **out)
{
    return load_record(txn, db, calendar, id, out, NULL);
}

/* The value as raise_max writes it (and every agent has written it),
 * {"max_duration":N}, read without a JSON parser: every creation reads
 * it.  -1 when it is not that text. */
static int64_t max_duration_text(const char *s, size_t n)
{
    static const char head[] = "{\"max_duration\":";
    size_t h = sizeof(head) - 1, i = h;
    int64_t d = 0;
    if (n < h + 2 || memcmp(s, head, h) != 0 || s[n - 1] != '}' ||
        (s[i] == '0' && i + 1 < n - 1))
        return -1;
    for (; i < n - 1; i++) {
        if (s[i] < '0' || s[i] > '9' || d > AGENDA_EVENT_DURATION_MAX_MS)
            return -1;
        d = d * 10 + (s[i] - '0');
    }
    return d <= AGENDA_EVENT_DURATION_MAX_MS ? d : -1;
}

int agenda_ev_max_duration(MDB_txn *txn, const struct agenda_db *db,
                           enum agenda_ev_index which, const char *owner,
                           int64_t *ms)
{
    struct agenda_key k;
    meta_key(&k, which, owner);
    MDB_val key = agenda_key_val(&k), v;
    *ms = 0;
    int rc = mdb_get(txn, db->cal_meta, &key, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return rc;
    int64_t d = max_duration_text(v.mv_data, v.mv_size);
    if (d < 0)
        return MDB_CORRUPTED;
    *ms = d;
    return 0;
}

static int raise_max(MDB_txn *txn, const struct agenda_db *db,
                     enum agenda_ev_index which, const char *owner,
                     int64_t duration)
{
    int64_t cur;
    int rc = agenda_ev_max_duration(txn, db, which, owner, &cur);
    if (rc != 0 || duration <= cur)
        return rc;
    /* one key: this is already the canonical serialisation */
    char text[64];
    int n = snprintf(text, sizeof(text), "{\"max_duration\":%" PRId64 "}",
                     duration);
    struct agenda_key k;
    meta_key(&k, which, owner);
    MDB_val key = agenda_key_val(&k);
    MDB_val v = {(size_t)n, text};
    return mdb_put(txn, db->cal_meta, &key, &v, 0);
}

/* The value of an index entry (see event_index.h): end, flags and, in
 * ev_by_part, the participant's response; response is NULL for ev_by_cal.
 * Returns its length. */
static size_t index_value(uint8_t out[INDEX_VALUE_MAX], const json_t *ev,
                          const char *response)
{
    agenda_key_time(out, agenda_ev_end(ev));
    out[8] = json_is_true(json_object_get(ev, "all_day"))
                 ? INDEX_FLAG_ALL_DAY : 0;
    if (response == NULL)
        return 9;
    out[9] = (uint8_t)agenda_response_parse(response);
    return 10;
}

/* Decode an index value read from disk (untrusted) into the hit's end,
 * all_day and response. */
static int index_value_decode(enum agenda_ev_index which, MDB_val v,
                              struct agenda_ev_hit *hit)
{
    const uint8_t *b = v.mv_data;
    size_t want = which == AGENDA_EV_BY_CAL ? 9 : 10;
    if (v.mv_size != want || (b[8] & ~INDEX_FLAG_ALL_DAY) != 0)
        return MDB_CORRUPTED;
    hit->end = agenda_key_time_decode(b);
    hit->all_day = (b[8] & INDEX_FLAG_ALL_DAY) != 0;
    hit->response = NULL;
    if (which == AGENDA_EV_BY_PART) {
        if (b[9] < AGENDA_RESPONSE_NEEDS_ACTION ||
            b[9] > AGENDA_RESPONSE_TENTATIVE)
            return MDB_CORRUPTED;
        hit->response = agenda_response_name((enum agenda_response)b[9]);
    }
    if (hit->end <= hit->start ||
        hit->end - hit->start > AGENDA_EVENT_DURATION_MAX_MS)
        return MDB_CORRUPTED;
    return 0;
}

/* Put or delete one index entry; a missing entry on delete means the
 * indexes disagree with the records. */
static int index_one(MDB_txn *txn, MDB_dbi dbi, const struct agenda_key *k,
                     const json_t *ev, const char *response, bool add)
{
    if (k->bad)
        return MDB_BAD_VALSIZE;
    MDB_val key = agenda_key_val(k);
    if (add) {
        uint8_t b[INDEX_VALUE_MAX];
        MDB_val v = {index_value(b, ev, response), b};
        return mdb_put(txn, dbi, &key, &v, 0);
    }
    int rc = mdb_del(txn, dbi, &key, NULL);
    return rc == MDB_NOTFOUND ? MDB_CORRUPTED : rc;
}

static int index_all(MDB_txn *txn, const struct agenda_db *db,
                     const json_t *ev, bool add)
{
    if (!shape_ok(ev))
        return MDB_CORRUPTED;
    const char *cal = json_string_value(json_object_get(ev, "calendar"));
    const char *id = json_string_value(json_object_get(ev, "id"));
    int64_t start = agenda_ev_start(ev);
    int64_t duration = agenda_ev_end(ev) - start;
    struct agenda_key k;
    agenda_evkey_cal(&k, cal, start, id);
    int rc = index_one(txn, db->ev_by_cal, &k, ev, NULL, add);
    if (rc == 0 && add)
        rc = raise_max(txn, db, AGENDA_EV_BY_CAL, cal, duration);
    const char *user;
    json_t *r;
    json_object_foreach(json_object_get(ev, "participants"), user, r) {
        if (rc != 0)
            break;
        agenda_evkey_part(&k, user, start, cal, id);
        rc = index_one(txn, db->ev_by_part, &k, ev, json_string_value(r),
                       add);
        if (rc == 0 && add)
            rc = raise_max(txn, db, AGENDA_EV_BY_PART, user, duration);
    }
    return rc;
}

int agenda_ev_index_rewrite_values(MDB_txn *txn, const struct agenda_db *db)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, db->events, &cur);
    if (rc != 0)
        return rc;
    MDB_val k, v;
    while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
        json_t *ev;
        rc = load_key(txn, db, k, &ev, NULL);
        if (rc == 0) {
            /* same keys: the puts only replace the values */
            rc = index_all(txn, db, ev, true);
            json_decref(ev);
        }
        if (rc != 0)
            break;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int agenda_ev_index_add(MDB_txn *txn, const struct agenda_db *db,
                        const json_t *ev)
{
    return index_all(txn, db, ev, true);
}

int agenda_ev_index_del(MDB_txn *txn, const struct agenda_db *db,
                        const json_t *ev)
{
    return index_all(txn, db, ev, false);
}

/* Copy a 0-terminated part of a key starting at p (at most end) into out;
 * returns the byte after its terminator, or NULL when malformed. */
static const uint8_t *key_part(const uint8_t *p, const uint8_t *end,
                               char out[PART_MAX + 1])
{
    const uint8_t *z = memchr(p, 0, (size_t)(end - p));
    if (z == NULL || z == p || z - p > PART_MAX)
        return NULL;
    memcpy(out, p, (size_t)(z - p));
    out[z - p] = '\0';
    return z + 1;
}

/* Split the tail of an index key (after owner 0 start(8) 0) into calendar
 * (for ev_by_part) and id. */
static int key_tail(enum agenda_ev_index which, const char *owner,
                    const uint8_t *p, const uint8_t *end,
                    char cal[PART_MAX + 1], char id[PART_MAX + 1])
{
    if (which == AGENDA_EV_BY_CAL) {
        snprintf(cal, PART_MAX + 1, "%s", owner);
    } else {
        p = key_part(p, end, cal);
        if (p == NULL)
            return MDB_CORRUPTED;
    }
    size_t n = (size_t)(end - p);
    if (n == 0 || n > PART_MAX || memchr(p, 0, n) != NULL)
        return MDB_CORRUPTED;
    memcpy(id, p, n);
    id[n] = '\0';
    return 0;
}

static int key_cmp(const struct agenda_key *a, const struct agenda_key *b)
{
    size_t n = a->len < b->len ? a->len : b->len;
    int d = memcmp(a->b, b->b, n);
    if (d != 0)
        return d;
    return a->len < b->len ? -1 : a->len > b->len;
}

static int walk(MDB_txn *txn, const struct agenda_db *db,
                enum agenda_ev_index which, const char *owner, int64_t from,
                int64_t to, const uint8_t *after, size_t after_len,
                const char *response, bool load, agenda_ev_visit visit,
                void *arg)
{
    int64_t maxdur;
    int rc = agenda_ev_max_duration(txn, db, which, owner, &maxdur);
    if (rc != 0)
        return rc;
    MDB_dbi dbi = which == AGENDA_EV_BY_CAL ? db->ev_by_cal : db->ev_by_part;
    /* from >= AGENDA_TIME_MIN_MS and maxdur <= a year: no overflow */
    int64_t lo = from - maxdur;
    uint8_t t[8];
    agenda_key_time(t, lo);
    struct agenda_key seek;
    agenda_key_reset(&seek);
    agenda_key_str(&seek, owner);
    size_t prefix = seek.len;
    agenda_key_raw(&seek, t, sizeof(t));
    bool skip_equal = false;
    if (after != NULL) {
        struct agenda_key resume;
        agenda_key_reset(&resume);
        agenda_key_str(&resume, owner);
        agenda_key_raw(&resume, after, after_len);
        if (!resume.bad && key_cmp(&resume, &seek) > 0) {
            seek = resume;
            skip_equal = true;
        }
    }
    if (seek.bad)
        return 0;   /* no such owner can be stored */

    MDB_cursor *cur;
    rc = mdb_cursor_open(txn, dbi, &cur);
    if (rc != 0)
        return rc;
    MDB_val k = agenda_key_val(&seek), v;
    MDB_cursor_op op = MDB_SET_RANGE;
    for (;;) {
        rc = mdb_cursor_get(cur, &k, &v, op);
        op = MDB_NEXT;
        if (rc == MDB_NOTFOUND) {
            rc = 0;
            break;
        }
        if (rc != 0)
            break;
        const uint8_t *kb = k.mv_data;
        if (k.mv_size < prefix + 9 || memcmp(kb, seek.b, prefix) != 0)
            break;
        if (skip_equal) {
            skip_equal = false;
            if (k.mv_size == seek.len && memcmp(kb, seek.b, seek.len) == 0)
                continue;
        }
        struct agenda_ev_hit hit = {
            .start = agenda_key_time_decode(kb + prefix),
            .pos = kb + prefix,
            .pos_len = k.mv_size - prefix,
        };
        if (hit.start >= to)
            break;
        char cal[PART_MAX + 1], id[PART_MAX + 1];
        if (kb[prefix + 8] != 0 ||
            key_tail(which, owner, kb + prefix + 9, kb + k.mv_size, cal,
                     id) != 0 ||
            index_value_decode(which, v, &hit) != 0) {
            rc = MDB_CORRUPTED;
            break;
        }
        /* the index alone says whether it overlaps, and which answer it
         * holds: most entries met before from, and every participation
         * with another answer than the one asked for, are never loaded */
        if (hit.end <= from || (response != NULL &&
                                (hit.response == NULL ||
                                 strcmp(hit.response, response) != 0)))
            continue;
        hit.calendar = cal;
        hit.id = id;
        json_t *ev = NULL;
        if (load) {
            rc = load_record(txn, db, cal, id, &ev, &hit.record_len);
            if (rc == MDB_NOTFOUND)
                rc = MDB_CORRUPTED;
            if (rc != 0)
                break;
            if (agenda_ev_start(ev) != hit.start ||
                agenda_ev_end(ev) != hit.end) {
                json_decref(ev);
                rc = MDB_CORRUPTED;
                break;
            }
            hit.event = ev;
        }
        int vr = visit(arg, &hit);
        json_decref(ev);
        if (vr == 1)
            break;      /* rc is 0 */
        if (vr != 0) {
            rc = vr;
            break;
        }
    }
    mdb_cursor_close(cur);
    return rc;
}

int agenda_ev_walk(MDB_txn *txn, const struct agenda_db *db,
                   enum agenda_ev_index which, const char *owner,
                   int64_t from, int64_t to, const uint8_t *after,
                   size_t after_len, const char *response,
                   agenda_ev_visit visit, void *arg)
{
    return walk(txn, db, which, owner, from, to, after, after_len, response,
                true, visit, arg);
}

int agenda_ev_walk_index(MDB_txn *txn, const struct agenda_db *db,
                         enum agenda_ev_index which, const char *owner,
                         int64_t from, int64_t to, agenda_ev_visit visit,
                         void *arg)
{
    return walk(txn, db, which, owner, from, to, NULL, 0, NULL, false, visit,
                arg);
}

/* ---- consistency check ------------------------------------------------- */

#define WHY(...) (snprintf(why, len, __VA_ARGS__), 1)

/* MDB_NOTFOUND also when the entry is there with another value than the
 * record implies. */
static int expect_entry(MDB_txn *txn, MDB_dbi dbi, const struct agenda_key *k,
                        const json_t *ev, const char *response)
{
    if (k->bad)
        return MDB_NOTFOUND;
    MDB_val key = agenda_key_val(k), v;
    int rc = mdb_get(txn, dbi, &key, &v);
    uint8_t want[INDEX_VALUE_MAX];
    size_t n = index_value(want, ev, response);
    if (rc == 0 && (v.mv_size != n || memcmp(v.mv_data, want, n) != 0))
        return MDB_NOTFOUND;
    return rc;
}

static int count_entries(MDB_txn *txn, MDB_dbi dbi, size_t *n)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, dbi, &cur);
    if (rc != 0)
        return rc;
    MDB_val k, v;
    *n = 0;
    while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0)
        (*n)++;
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Check one record's index entries and max durations; counts the entries
 * it expects in *n_part. */
static int check_event(MDB_txn *txn, const struct agenda_db *db,
                       const char *cal, const char *id, const json_t *ev,
                       size_t *n_part, char *why, size_t len)
{
    int64_t start = agenda_ev_start(ev);
    int64_t dur = agenda_ev_end(ev) - start;
    int64_t maxdur;
    struct agenda_key k;
    agenda_evkey_cal(&k, cal, start, id);
    int rc = expect_entry(txn, db->ev_by_cal, &k, ev, NULL);
    if (rc == MDB_NOTFOUND)
        return WHY("event %s/%s is missing from ev_by_cal or has a wrong "
                   "value there", cal, id);
    if (rc == 0)
        rc = agenda_ev_max_duration(txn, db, AGENDA_EV_BY_CAL, cal, &maxdur);
    if (rc != 0)
        return rc;
    if (maxdur < dur)
        return WHY("max_duration of calendar %s (%" PRId64 ") is below "
                   "event %s (%" PRId64 ")", cal, maxdur, id, dur);
    const char *user;
    json_t *r;
    json_object_foreach(json_object_get(ev, "participants"), user, r) {
        agenda_evkey_part(&k, user, start, cal, id);
        rc = expect_entry(txn, db->ev_by_part, &k, ev, json_string_value(r));
        if (rc == MDB_NOTFOUND)
            return WHY("participant %s of %s/%s is missing from ev_by_part "
                       "or has a wrong value there", user, cal, id);
        if (rc == 0)
            rc = agenda_ev_max_duration(txn, db, AGENDA_EV_BY_PART, user,
                                        &maxdur);
        if (rc != 0)
            return rc;
        if (maxdur < dur)
            return WHY("max_duration of participant %s is below event "
                       "%s/%s", user, cal, id);
        (*n_part)++;
    }
    return 0;
}

int agenda_events_check_indexes(MDB_txn *txn, const struct agenda_db *db,
                                char *why, size_t len)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, db->events, &cur);
    if (rc != 0)
        return rc;
    size_t n_cal = 0, n_part = 0;
    MDB_val k, v;
    while (rc == 0 && (rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
        char cal[PART_MAX + 1], same[PART_MAX + 1], id[PART_MAX + 1];
        const uint8_t *kb = k.mv_data;
        const uint8_t *p = key_part(kb, kb + k.mv_size, cal);
        if (p == NULL || key_tail(AGENDA_EV_BY_CAL, cal, p, kb + k.mv_size,
                                  same, id) != 0) {
            rc = WHY("malformed key in events (%zu bytes)", k.mv_size);
            break;
        }
        json_t *ev;
        rc = load_key(txn, db, k, &ev, NULL);
        if (rc == MDB_CORRUPTED) {
            rc = WHY("record %s/%s is malformed", cal, id);
            break;
        }
        if (rc != 0)
            break;
        if (strcmp(json_string_value(json_object_get(ev, "calendar")),
                   cal) != 0 ||
            strcmp(json_string_value(json_object_get(ev, "id")), id) != 0)
            rc = WHY("record %s/%s names another calendar/id", cal, id);
        else
            rc = check_event(txn, db, cal, id, ev, &n_part, why, len);
        json_decref(ev);
        n_cal++;
    }
    mdb_cursor_close(cur);
    if (rc == MDB_NOTFOUND)
        rc = 0;
    if (rc != 0)
        return rc;
    size_t have;
    rc = count_entries(txn, db->ev_by_cal, &have);
    if (rc != 0)
        return rc;
    if (have != n_cal)
        return WHY("ev_by_cal has %zu entries for %zu events", have, n_cal);
    rc = count_entries(txn, db->ev_by_part, &have);
    if (rc != 0)
        return rc;
    if (have != n_part)
        return WHY("ev_by_part has %zu entries for %zu participations",
                   have, n_part);
    return 0;
}

/*
 * model.h — the agenda data model: every limit and enumeration in one place.
 *
 * Records are stored as canonical JSON (jansson, sorted keys, compact) in
 * LMDB; times are integers, milliseconds since the Unix epoch in UTC, and
 * are rendered as RFC 3339 strings ("2026-11-27T09:30:00Z") at the API.
 * Every limit here is enforced by the state machine itself on apply
 * (defence in depth: the edge is not trusted to have checked).
 */
#ifndef AGENDA_MODEL_H
#define AGENDA_MODEL_H

#include <stdint.h>

/* Users */
#define AGENDA_USERNAME_MIN 3
#define AGENDA_USERNAME_MAX 32        /* [a-z0-9_.-], case-folded */
#define AGENDA_DISPLAY_NAME_MAX 100   /* Unicode characters */
#define AGENDA_EMAIL_MAX 254          /* bytes */
#define AGENDA_PASSWORD_HASH_MAX 256  /* bytes, PHC string format */
#define AGENDA_USER_LIST_MAX 50       /* results of user.list */

/* Groups */
#define AGENDA_GROUP_ID_LEN 16        /* lowercase hex, random at the leader */
#define AGENDA_GROUP_NAME_MAX 100     /* characters */
#define AGENDA_GROUP_DESCRIPTION_MAX 2000
#define AGENDA_GROUP_MEMBERS_MAX 500
#define AGENDA_USER_GROUPS_MAX 500    /* groups one user may belong to */

/* Calendars: a username, or "g:" + group id for a group's calendar. */
#define AGENDA_CALENDAR_MAX 40
#define AGENDA_GROUP_CALENDAR_PREFIX "g:"

/* Events */
#define AGENDA_EVENT_ID_LEN 32        /* lowercase hex, random at the leader */
#define AGENDA_TITLE_MAX 200          /* characters, at least 1 */
#define AGENDA_DESCRIPTION_MAX 8000   /* characters */
#define AGENDA_LOCATION_MAX 500       /* characters */
#define AGENDA_TZ_MAX 64              /* bytes of an IANA zone name */
#define AGENDA_PARTICIPANTS_MAX 100
#define AGENDA_EVENT_DURATION_MAX_MS (366LL * 24 * 3600 * 1000)
#define AGENDA_TIME_MIN_MS (-62135596800000LL) /* 0001-01-01T00:00:00Z */
#define AGENDA_TIME_MAX_MS (253402300799999LL) /* 9999-12-31T23:59:59.999Z */
#define AGENDA_RANGE_MAX_MS (366LL * 24 * 3600 * 1000) /* list windows */
#define AGENDA_PAGE_MAX 500           /* items per page */
/* A page also ends before its events would pass this many bytes of JSON:
 * an event whose description is 8000 four-byte characters is ~32 KB, so
 * 500 of them ~16 MB, and the edge reads a shard's answer into a 2 MiB
 * buffer (config/gen-nginx). */
#define AGENDA_PAGE_BYTES_MAX (1024 * 1024)
#define AGENDA_PAGE_DEFAULT 100
#define AGENDA_CONFLICTS_MAX 20       /* overlapping events reported */
/* Events a free/busy answer may be made of: a window holding more is
 * refused (413), so that the walk and the answer stay bounded (merged
 * intervals of ~62 bytes each: well under the edge's 2 MiB). */
#define AGENDA_FREEBUSY_MAX 10000
#define AGENDA_FREEBUSY_USERS 20      /* users of one free/busy query */
#define AGENDA_PURGE_BATCH 100        /* events one calendar.purge deletes */
#define AGENDA_PURGING_LIST_MAX 16    /* calendars one calendar.purging lists */

/* Change feed and audit */
#define AGENDA_FEED_KEEP 100000       /* changes kept per shard (and a
                                       * slack between trims: feed.c) */
#define AGENDA_AUDIT_PAGE_MAX 500

/* Global roles of users; "system" is the edge itself (login, lookups). */
enum agenda_role {
    AGENDA_ROLE_USER = 1,
    AGENDA_ROLE_ADMIN,
    AGENDA_ROLE_SYSTEM
};

/* The actor's standing on a group calendar, established by the edge from
 * the groups shard and passed with each command on an events shard. */
enum agenda_cal_role {
    AGENDA_CAL_NONE = 0,
    AGENDA_CAL_MEMBER,
    AGENDA_CAL_LEADER
};

/* A participant's answer to an invitation. */
enum agenda_response {
    AGENDA_RESPONSE_NEEDS_ACTION = 1,
    AGENDA_RESPONSE_ACCEPTED,
    AGENDA_RESPONSE_DECLINED,
    AGENDA_RESPONSE_TENTATIVE
};

enum agenda_visibility {
    AGENDA_VISIBILITY_DEFAULT = 1,
    AGENDA_VISIBILITY_PRIVATE   /* others see only busy time */
};

/* Names of the enumerations as they appear in JSON; each parse function
 * returns 0 for an unknown name. */
const char *agenda_role_name(enum agenda_role r);
enum agenda_role agenda_role_parse(const char *s);
const char *agenda_cal_role_name(enum agenda_cal_role r);
enum agenda_cal_role agenda_cal_role_parse(const char *s); /* -1 unknown */
const char *agenda_response_name(enum agenda_response r);
enum agenda_response agenda_response_parse(const char *s);
const char *agenda_visibility_name(enum agenda_visibility v);
enum agenda_visibility agenda_visibility_parse(const char *s);

#endif /* AGENDA_MODEL_H */

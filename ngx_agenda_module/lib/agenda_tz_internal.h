/*
 * agenda_tz_internal.h — what the TZif reader (agenda_tz.c) shares with
 * the POSIX TZ rule of a file's footer (agenda_tz_rule.c).
 */
#ifndef AGENDA_TZ_INTERNAL_H
#define AGENDA_TZ_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* RFC 8536's bounds of a UT offset: -24:59:59 .. 25:59:59. */
#define AGENDA_TZ_OFFSET_MIN (-89999)
#define AGENDA_TZ_OFFSET_MAX 93599

/* The day of a year a rule changes the clocks on. */
struct agenda_tz_date {
    char kind;        /* 'J': Jn (1..365, no Feb 29), 'N': n (0..365),
                         'M': Mm.w.d */
    int n, m, w, d;
    int32_t time;     /* local seconds after that day's midnight */
};

/* "std offset [dst [offset],start[/time],end[/time]]" (POSIX, with RFC
 * 8536's extension of rule times to -167..167 hours). */
struct agenda_tz_rule {
    int32_t std_off;  /* east of UTC, as everywhere here (POSIX: west) */
    int32_t dst_off;
    bool has_dst;
    struct agenda_tz_date start, end;
};

/* Parse s[0..len).  Returns 0 or -1. */
int agenda_tz_rule_parse(const char *s, size_t len, struct agenda_tz_rule *r);

/* The rule's offset at instant t. */
int32_t agenda_tz_rule_offset(const struct agenda_tz_rule *r, int64_t t);

#endif /* AGENDA_TZ_INTERNAL_H */

/*
 * agenda_tz_rule.c — the POSIX TZ string a TZif file ends with, which
 * gives the zone's offsets after its last transition ("CET-1CEST,M3.5.0,
 * M10.5.0/3": the clocks go forward on March's last Sunday at 02:00 and
 * back on October's at 03:00, every year).  Files built "slim" hold no
 * transitions past today's rules at all, and "fat" ones stop in 2037,
 * while events may be dated up to 9999.
 */
#include "agenda_tz_internal.h"

#include "validate.h"

/* ---- parsing ------------------------------------------------------------- */

static bool is_alpha(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

struct cursor {
    const char *p, *end;
};

static bool at(const struct cursor *c, char ch)
{
    return c->p < c->end && *c->p == ch;
}

/* A zone abbreviation: three or more letters, or "<...>" of letters,
 * digits, '+' and '-'.  Only its shape matters here. */
static bool eat_name(struct cursor *c)
{
    const char *start = c->p;

    if (at(c, '<')) {
        c->p++;
        start = c->p;
        while (c->p < c->end && (is_alpha(*c->p) || is_digit(*c->p) ||
                                 *c->p == '+' || *c->p == '-'))
            c->p++;
        if (c->p - start < 3 || !at(c, '>'))
            return false;
        c->p++;
        return true;
    }
    while (c->p < c->end && is_alpha(*c->p))
        c->p++;
    return c->p - start >= 3;
}

/* 1 or 2 (hours: up to 3) digits, at most max. */
static bool eat_number(struct cursor *c, int digits, int max, int *out)
{
    int v = 0, n = 0;

    while (n < digits && c->p < c->end && is_digit(*c->p)) {
        v = v * 10 + (*c->p - '0');
        c->p++;
        n++;
    }
    if (n == 0 || v > max)
        return false;
    *out = v;
    return true;
}

/* [+-]hh[:mm[:ss]] in seconds, hours at most max_hours. */
static bool eat_hms(struct cursor *c, int max_hours, int32_t *out)
{
    int sign = 1, h, m = 0, s = 0;

    if (at(c, '+') || at(c, '-')) {
        sign = *c->p == '-' ? -1 : 1;
        c->p++;
    }
    if (!eat_number(c, 3, max_hours, &h))
        return false;
    if (at(c, ':')) {
        c->p++;
        if (!eat_number(c, 2, 59, &m))
            return false;
        if (at(c, ':')) {
            c->p++;
            if (!eat_number(c, 2, 59, &s))
                return false;
        }
    }
    *out = sign * (h * 3600 + m * 60 + s);
    return true;
}

/* Jn, n or Mm.w.d, then an optional /time (02:00 when absent). */
static bool eat_date(struct cursor *c, struct agenda_tz_date *d)
{
    if (at(c, 'J')) {
        c->p++;
        d->kind = 'J';
        if (!eat_number(c, 3, 365, &d->n) || d->n < 1)
            return false;
    } else if (at(c, 'M')) {
        c->p++;
        d->kind = 'M';
        if (!eat_number(c, 2, 12, &d->m) || d->m < 1 || !at(c, '.'))
            return false;
        c->p++;
        if (!eat_number(c, 1, 5, &d->w) || d->w < 1 || !at(c, '.'))
            return false;
        c->p++;
        if (!eat_number(c, 1, 6, &d->d))
            return false;
    } else {
        d->kind = 'N';
        if (!eat_number(c, 3, 365, &d->n))
            return false;
    }
    d->time = 2 * 3600;
    if (at(c, '/')) {
        c->p++;
        return eat_hms(c, 167, &d->time);
    }
    return true;
}

int agenda_tz_rule_parse(const char *s, size_t len, struct agenda_tz_rule *r)
{
    struct cursor c = {s, s + len};
    int32_t west;

    *r = (struct agenda_tz_rule){0};
    if (!eat_name(&c) || !eat_hms(&c, 24, &west))
        return -1;
    r->std_off = -west;
    if (c.p == c.end)
        return 0;
    if (!eat_name(&c))
        return -1;
    r->has_dst = true;
    r->dst_off = r->std_off + 3600;
    if (!at(&c, ',')) {
        if (!eat_hms(&c, 24, &west))
            return -1;
        r->dst_off = -west;
    }
    /* without a rule POSIX leaves the dates to the implementation; TZif
     * footers always give them */
    if (!at(&c, ','))
        return -1;
    c.p++;
    if (!eat_date(&c, &r->start) || !at(&c, ','))
        return -1;
    c.p++;
    if (!eat_date(&c, &r->end) || c.p != c.end)
        return -1;
    return 0;
}

/* ---- evaluation ---------------------------------------------------------- */

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* The day (since 1970-01-01) of year y that d names. */
static int64_t rule_day(const struct agenda_tz_date *d, int64_t y)
{
    int64_t jan1 = agenda_days_from_civil(y, 1, 1), first, day, end;
    int wday;

    switch (d->kind) {
    case 'J':
        return jan1 + d->n - 1 + (agenda_is_leap(y) && d->n >= 60);
    case 'N':
        return jan1 + d->n;
    default:
        first = agenda_days_from_civil(y, d->m, 1);
        wday = (int)(first + 4 - floor_div(first + 4, 7) * 7); /* 0: Sun */
        day = first + (d->d - wday + 7) % 7 + (int64_t)(d->w - 1) * 7;
        end = first + agenda_days_in_month(y, d->m);
        while (day >= end) /* "the fifth" is the last one */
            day -= 7;
        return day;
    }
}

/*
 * The clocks follow the latest change at or before t among those of the
 * years around t's (in standard time): each year's start of daylight time
 * (its time read in standard time) and its end (read in daylight time).
 * Rule times reach 167 hours, which can carry a change into the next
 * year, so two years back and one ahead are looked at.  At equal
 * instants the start counts as later: "0/0,J365/25" (daylight time all
 * year, as zic writes it) ends one year's daylight time as the next
 * one's starts.  t is within the years events may have (1 to 9999), far
 * from any overflow.
 */
int32_t agenda_tz_rule_offset(const struct agenda_tz_rule *r, int64_t t)
{
    int64_t y, latest = INT64_MIN;
    int m, d;
    bool dst = false;

    if (!r->has_dst)
        return r->std_off;
    agenda_civil_from_days(floor_div(t + r->std_off, 86400), &y, &m, &d);
    for (int64_t k = y - 2; k <= y + 1; k++) {
        int64_t start =
            rule_day(&r->start, k) * 86400 + r->start.time - r->std_off;
        int64_t end = rule_day(&r->end, k) * 86400 + r->end.time - r->dst_off;

        if (end <= t && end > latest) {
            latest = end;
            dst = false;
        }
        if (start <= t && start >= latest) {
            latest = start;
            dst = true;
        }
    }
    return dst ? r->dst_off : r->std_off;
}

/*
 * agenda_tz.c — a zone's rules from its TZif file (RFC 8536), and when
 * a local day begins in it; see agenda_tz.h.
 *
 * Only what the offsets need is kept: the transition times and the UT
 * offset from each on.  Abbreviations, the isdst flags and the
 * standard/wall and UT/local indicators (which only matter to a POSIX TZ
 * string without rules, which zic never writes) are checked for shape and
 * dropped.  Files with leap-second records are refused: with them the
 * times count leap seconds and are not POSIX times.
 */
#include "agenda_tz.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "agenda_tz_internal.h"

struct agenda_tz {
    size_t n;             /* transitions */
    int64_t *at;          /* ascending */
    int32_t *off;         /* the offset from at[i] on */
    int32_t first_off;    /* before at[0]: time type 0's */
    bool has_rule;        /* after at[n-1] (or always when n == 0) */
    struct agenda_tz_rule rule;
};

/* The six counts of a header, in file order. */
struct tzif_counts {
    uint64_t isut, isstd, leap, time, type, chars;
};

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
           (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const uint8_t *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

#define TZIF_HEADER 44

/* The header at p (len bytes left): its version ('\0', '2', '3', '4') and
 * counts, checked against each other as RFC 8536 requires. */
static int read_header(const uint8_t *p, size_t len, char *version,
                       struct tzif_counts *n)
{
    if (len < TZIF_HEADER || memcmp(p, "TZif", 4) != 0 ||
        (p[4] != 0 && (p[4] < '2' || p[4] > '4')))
        return -1;
    *version = (char)p[4];
    n->isut = be32(p + 20);
    n->isstd = be32(p + 24);
    n->leap = be32(p + 28);
    n->time = be32(p + 32);
    n->type = be32(p + 36);
    n->chars = be32(p + 40);
    if (n->type == 0 || n->type > 256 || n->chars == 0 ||
        (n->isut != 0 && n->isut != n->type) ||
        (n->isstd != 0 && n->isstd != n->type))
        return -1;
    return 0;
}

/* The size of the data block after a header, with times of tsize bytes;
 * every count is below 2^32, so this cannot overflow 64 bits. */
static uint64_t block_size(const struct tzif_counts *n, uint64_t tsize)
{
    return n->time * tsize + n->time + n->type * 6 + n->chars +
           n->leap * (tsize + 4) + n->isstd + n->isut;
}

/* Fill z's transitions and offsets from the data block at p (its size
 * checked by the caller). */
static int read_block(const uint8_t *p, const struct tzif_counts *n,
                      size_t tsize, struct agenda_tz *z)
{
    const uint8_t *times = p, *idx = p + n->time * tsize;
    const uint8_t *types = idx + n->time;
    const uint8_t *chars = types + n->type * 6;
    int32_t type_off[256];

    if (n->leap != 0)
        return -1;
    for (uint64_t i = 0; i < n->type; i++) {
        const uint8_t *t = types + i * 6;
        int32_t off = (int32_t)be32(t);

        if (off < AGENDA_TZ_OFFSET_MIN || off > AGENDA_TZ_OFFSET_MAX ||
            t[4] > 1 || t[5] >= n->chars)
            return -1;
        type_off[i] = off;
    }
    /* the abbreviations must each end inside the block */
    if (chars[n->chars - 1] != '\0')
        return -1;
    z->first_off = type_off[0];
    for (uint64_t i = 0; i < n->time; i++) {
        int64_t at = tsize == 8 ? be64(times + i * 8)
                                : (int64_t)(int32_t)be32(times + i * 4);

        if (idx[i] >= n->type || (i > 0 && at <= z->at[i - 1]))
            return -1;
        z->at[i] = at;
        z->off[i] = type_off[idx[i]];
    }
    z->n = (size_t)n->time;
    return 0;
}

/* The footer of a version 2+ file: "\n" TZ-string "\n", to the end. */
static int read_footer(const uint8_t *p, size_t len, struct agenda_tz *z)
{
    const uint8_t *nl;

    if (len < 2 || p[0] != '\n' || p[len - 1] != '\n')
        return -1;
    nl = memchr(p + 1, '\n', len - 1);
    if (nl != p + len - 1 || memchr(p + 1, '\0', len - 2) != NULL)
        return -1;
    if (len == 2)
        return 0; /* no rule: the last transition's offset stays */
    if (agenda_tz_rule_parse((const char *)p + 1, len - 2, &z->rule) != 0)
        return -1;
    z->has_rule = true;
    return 0;
}

int agenda_tz_parse(const uint8_t *data, size_t len, struct agenda_tz **out)
{
    struct tzif_counts n;
    uint64_t size;
    size_t tsize = 4, used;
    char version, v2;
    struct agenda_tz *z;

    *out = NULL;
    if (read_header(data, len, &version, &n) != 0)
        return -1;
    size = block_size(&n, 4);
    if (size > len - TZIF_HEADER)
        return -1;
    used = TZIF_HEADER;
    if (version != 0) {
        /* version 2+: the 64-bit block after the 32-bit one is the data */
        used += (size_t)size;
        if (read_header(data + used, len - used, &v2, &n) != 0 ||
            v2 != version)
            return -1;
        used += TZIF_HEADER;
        tsize = 8;
        size = block_size(&n, 8);
        if (size > len - used)
            return -1;
    }
    z = calloc(1, sizeof(*z) + n.time * (sizeof(int64_t) + sizeof(int32_t)));
    if (z == NULL)
        return ENOMEM;
    z->at = (int64_t *)(z + 1);
    z->off = (int32_t *)(z->at + n.time);
    if (read_block(data + used, &n, tsize, z) != 0 ||
        (version != 0 &&
         read_footer(data + used + size, len - used - (size_t)size, z) != 0) ||
        (version == 0 && used + size != len)) {
        free(z);
        return -1;
    }
    *out = z;
    return 0;
}

void agenda_tz_free(struct agenda_tz *z)
{
    free(z);
}

int32_t agenda_tz_offset(const struct agenda_tz *z, int64_t t)
{
    size_t lo = 0, hi;

    if (z->n == 0)
        return z->has_rule ? agenda_tz_rule_offset(&z->rule, t)
                           : z->first_off;
    if (t < z->at[0])
        return z->first_off;
    /* the last transition at or before t */
    hi = z->n;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;

        if (z->at[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    if (lo == z->n - 1 && z->has_rule)
        return agenda_tz_rule_offset(&z->rule, t);
    return z->off[lo];
}

/*
 * Local midnight L happens at L - o for each offset o in force around it
 * for which the zone's offset at L - o is indeed o.  The offsets of a day
 * before and after cover every zone that changes its clocks at most once
 * in two days.  No such instant: the clocks skip midnight, and the day
 * begins at the change, the first instant whose local time is L or
 * later, found by bisection between the two candidates.
 */
int64_t agenda_tz_day_start(const struct agenda_tz *z, int64_t day)
{
    int64_t local = day * 86400, best = INT64_MAX, lo, hi;
    int32_t before = agenda_tz_offset(z, local - 86400);
    int32_t after = agenda_tz_offset(z, local + 86400);
    int32_t tries[3] = {before, after, agenda_tz_offset(z, local)};

    for (size_t i = 0; i < 3; i++) {
        int64_t t = local - tries[i];

        if (agenda_tz_offset(z, t) == tries[i] && t < best)
            best = t;
    }
    if (best != INT64_MAX)
        return best;
    lo = local - (before > after ? before : after);
    hi = local - (before > after ? after : before);
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;

        if (mid + agenda_tz_offset(z, mid) >= local)
            hi = mid;
        else
            lo = mid + 1;
    }
    return hi;
}

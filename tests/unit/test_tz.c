/*
 * test_tz.c — time zone rules read from TZif files
 * (ngx_agenda_module/lib/agenda_tz.h).
 *
 * The oracle is the C library: for every zone the replicas accept, on
 * the days its clocks change (and the days around them) in nine sample
 * years from 1900 to 2300 — some past the last transition of a "fat" file
 * (2037), so the footer's rule is exercised — the first instant whose
 * local date is that day, found by asking localtime_r() about instants,
 * must be what agenda_tz_day_start() says; and the offset at every noon of
 * those years must be the C library's.  Then a few known answers, the POSIX rule
 * strings, and every truncation of a real file (refused, never read out
 * of bounds under the sanitizers).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "agenda_tz.h"
#include "agenda_tz_internal.h"
#include "tz_names.h"
#include "validate.h"

#define ZONEINFO "/usr/share/zoneinfo"

static int64_t day_of(int y, int m, int d)
{
    return agenda_days_from_civil(y, m, d);
}

/* ---- the C library as the oracle ------------------------------------------ */

static int64_t libc_local_day(int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;

    assert_non_null(localtime_r(&tt, &tm));
    return agenda_days_from_civil(tm.tm_year + 1900LL, tm.tm_mon + 1,
                                  tm.tm_mday);
}

static int32_t libc_offset(int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;

    assert_non_null(localtime_r(&tt, &tm));
    return (int32_t)tm.tm_gmtoff;
}

/* The first instant of local day `day`: step from well before it, then
 * bisect the last step. */
static int64_t libc_day_start(int64_t day)
{
    int64_t t = day * 86400 - 30 * 3600, lo, hi;

    while (libc_local_day(t) < day)
        t += 900;
    lo = t - 900;
    hi = t;
    while (hi - lo > 1) {
        int64_t mid = lo + (hi - lo) / 2;

        if (libc_local_day(mid) >= day)
            hi = mid;
        else
            lo = mid;
    }
    return hi;
}

static void expect_day(const char *zone, const struct agenda_tz *z,
                       int64_t day, size_t *checked)
{
    int64_t want = libc_day_start(day), got = agenda_tz_day_start(z, day);

    if (got != want) {
        int64_t y;
        int m, d;

        agenda_civil_from_days(day, &y, &m, &d);
        fail_msg("%s %04lld-%02d-%02d: day starts at %lld, the C library "
                 "says %lld", zone, (long long)y, m, d, (long long)got,
                 (long long)want);
    }
    (*checked)++;
}

static void every_zone_agrees_with_the_c_library(void **state)
{
    static const int years[] = {1900, 1946, 1985, 2011, 2026, 2037,
                                2038, 2051, 2300};
    struct agenda_tz_db *db;
    size_t missing = 99999, checked = 0, zones = 0;
    char err[256];

    (void)state;
    assert_int_equal(agenda_tz_db_load(ZONEINFO, &db, &missing, err,
                                       sizeof err), 0);
    /* Debian's tzdata holds every name the replicas accept, or nearly
     * (a name newer than the installed tzdata) */
    assert_true(missing <= 5);
    for (size_t i = 0; i < agenda_tz_names_count; i++) {
        const char *name = agenda_tz_names[i];
        const struct agenda_tz *z = agenda_tz_db_find(db, name);
        char tz[256];

        if (z == NULL)
            continue;
        snprintf(tz, sizeof tz, ":%s/%s", ZONEINFO, name);
        assert_int_equal(setenv("TZ", tz, 1), 0);
        tzset();
        zones++;
        for (size_t k = 0; k < sizeof years / sizeof years[0]; k++) {
            int64_t first = day_of(years[k], 1, 1);
            int64_t last = day_of(years[k] + 1, 1, 1);
            int32_t prev = libc_offset(first * 86400 - 86400);

            expect_day(name, z, first, &checked);
            for (int64_t d = first; d < last; d++) {
                int32_t noon = libc_offset(d * 86400 + 43200);

                assert_int_equal(agenda_tz_offset(z, d * 86400 + 43200),
                                 noon);
                if (noon != prev) {
                    expect_day(name, z, d - 1, &checked);
                    expect_day(name, z, d, &checked);
                    expect_day(name, z, d + 1, &checked);
                }
                prev = noon;
            }
        }
    }
    unsetenv("TZ");
    tzset();
    print_message("%zu zones, %zu days checked, %zu names without a file\n",
                  zones, checked, missing);
    assert_true(zones > 300);
    assert_true(checked > 10000);
    agenda_tz_db_free(db);
}

/* ---- known answers ----------------------------------------------------------- */

static void known_day_starts(void **state)
{
    struct agenda_tz_db *db;
    char err[256];

    (void)state;
    assert_int_equal(agenda_tz_db_load(ZONEINFO, &db, NULL, err, sizeof err),
                     0);
    /* 2026-12-24 in Tokyo (+09, no DST) begins 2026-12-23T15:00Z */
    assert_int_equal(agenda_tz_day_start(agenda_tz_db_find(db, "Asia/Tokyo"),
                                         day_of(2026, 12, 24)),
                     day_of(2026, 12, 23) * 86400 + 15 * 3600);
    /* Sao Paulo went from 00:00 -03 to 01:00 -02 on 2018-11-04: the day
     * began at 01:00 local, 03:00Z */
    assert_int_equal(
        agenda_tz_day_start(agenda_tz_db_find(db, "America/Sao_Paulo"),
                            day_of(2018, 11, 4)),
        day_of(2018, 11, 4) * 86400 + 3 * 3600);
    /* Samoa skipped 2011-12-30 altogether: it begins when the 31st does,
     * at 00:00 +14, 10:00Z the day before */
    const struct agenda_tz *apia = agenda_tz_db_find(db, "Pacific/Apia");
    assert_int_equal(agenda_tz_day_start(apia, day_of(2011, 12, 30)),
                     day_of(2011, 12, 30) * 86400 + 10 * 3600);
    assert_int_equal(agenda_tz_day_start(apia, day_of(2011, 12, 31)),
                     day_of(2011, 12, 30) * 86400 + 10 * 3600);
    /* Madrid in 2060 (past the file's table: the footer's rule), summer
     * and winter */
    const struct agenda_tz *madrid = agenda_tz_db_find(db, "Europe/Madrid");
    assert_int_equal(agenda_tz_day_start(madrid, day_of(2060, 7, 1)),
                     day_of(2060, 6, 30) * 86400 + 22 * 3600);
    assert_int_equal(agenda_tz_day_start(madrid, day_of(2060, 1, 1)),
                     day_of(2059, 12, 31) * 86400 + 23 * 3600);
    /* the first and last days an event may have */
    assert_int_equal(agenda_tz_day_start(agenda_tz_db_find(db, "UTC"),
                                         day_of(1, 1, 1)),
                     day_of(1, 1, 1) * 86400);
    assert_int_equal(agenda_tz_day_start(madrid, day_of(9999, 12, 31)),
                     day_of(9999, 12, 30) * 86400 + 23 * 3600);
    assert_null(agenda_tz_db_find(db, "Mars/Olympus_Mons"));
    assert_null(agenda_tz_db_find(NULL, "UTC"));
    agenda_tz_db_free(db);
}

static void missing_directory_is_an_error(void **state)
{
    struct agenda_tz_db *db = (void *)1;
    char err[256] = "";

    (void)state;
    assert_int_not_equal(agenda_tz_db_load("/nonexistent/zoneinfo", &db,
                                           NULL, err, sizeof err), 0);
    assert_null(db);
    assert_non_null(strstr(err, "/nonexistent/zoneinfo"));
}

/* ---- POSIX TZ strings ---------------------------------------------------------- */

static int32_t rule_offset_at(const char *s, int y, int m, int d, int h)
{
    struct agenda_tz_rule r;

    assert_int_equal(agenda_tz_rule_parse(s, strlen(s), &r), 0);
    return agenda_tz_rule_offset(&r, day_of(y, m, d) * 86400 + h * 3600);
}

static void posix_rules(void **state)
{
    static const char *const bad[] = {
        "", "AB-1", "CET", "CET-1CEST", "CET-1CEST,M3.5.0",
        "CET-1CEST,M13.5.0,M10.5.0", "CET-1CEST,M3.6.0,M10.5.0",
        "CET-1CEST,M3.5.7,M10.5.0", "CET-1CEST,M3.5.0,M10.5.0/168",
        "CET-25", "<+03>", "<+0>-3", "CET-1CEST,J0,J365",
        "CET-1CEST,366,0", "CET-1:60", "CET-1CEST,M3.5.0,M10.5.0 ",
        "CET-1CEST,M3.5.0,M10.5.0,", "CET-1 ",
    };
    struct agenda_tz_rule r;

    (void)state;
    /* Central Europe: +1, +2 from March's last Sunday 01:00Z to
     * October's last Sunday 01:00Z (2026: the 29th and the 25th) */
    const char *cet = "CET-1CEST,M3.5.0,M10.5.0/3";
    assert_int_equal(rule_offset_at(cet, 2026, 1, 15, 12), 3600);
    assert_int_equal(rule_offset_at(cet, 2026, 3, 29, 0), 3600);
    assert_int_equal(rule_offset_at(cet, 2026, 3, 29, 1), 7200);
    assert_int_equal(rule_offset_at(cet, 2026, 10, 25, 0), 7200);
    assert_int_equal(rule_offset_at(cet, 2026, 10, 25, 1), 3600);
    /* the southern hemisphere: Sydney, +11 from October to April */
    const char *syd = "AEST-10AEDT,M10.1.0,M4.1.0/3";
    assert_int_equal(rule_offset_at(syd, 2026, 1, 15, 0), 11 * 3600);
    assert_int_equal(rule_offset_at(syd, 2026, 7, 15, 0), 10 * 3600);
    assert_int_equal(rule_offset_at(syd, 2026, 12, 15, 0), 11 * 3600);
    /* numeric names, minutes, and no daylight time */
    assert_int_equal(rule_offset_at("<+0530>-5:30", 2026, 6, 1, 0),
                     5 * 3600 + 1800);
    assert_int_equal(rule_offset_at("<-03>3", 2026, 6, 1, 0), -3 * 3600);
    /* daylight time all year, as zic writes it ("0/0,J365/25") */
    const char *always = "EST5EDT,0/0,J365/25";
    assert_int_equal(rule_offset_at(always, 2026, 1, 1, 6), -4 * 3600);
    assert_int_equal(rule_offset_at(always, 2026, 12, 31, 23), -4 * 3600);
    /* an explicit daylight offset, Jn and n dates, negative rule times */
    const char *odd = "AAA3BBB1:30,J60/-1,300/26";
    assert_int_equal(rule_offset_at(odd, 2026, 2, 28, 12), -3 * 3600);
    assert_int_equal(rule_offset_at(odd, 2026, 3, 2, 0), -5400);
    assert_int_equal(rule_offset_at(odd, 2026, 10, 29, 0), -5400);
    assert_int_equal(rule_offset_at(odd, 2026, 10, 29, 6), -3 * 3600);
    /* a change carried into the next year by its time (30 hours after
     * 2026-12-31 began: 2027-01-01 06:00 local, 09:00Z), and standard
     * time before it although 2027 has begun */
    const char *late = "AAA3BBB,J365/30,M3.2.0";
    assert_int_equal(rule_offset_at(late, 2026, 12, 31, 12), -3 * 3600);
    assert_int_equal(rule_offset_at(late, 2027, 1, 1, 8), -3 * 3600);
    assert_int_equal(rule_offset_at(late, 2027, 1, 1, 9), -2 * 3600);
    assert_int_equal(rule_offset_at(late, 2027, 2, 1, 0), -2 * 3600);
    assert_int_equal(rule_offset_at(late, 2027, 6, 1, 0), -3 * 3600);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (agenda_tz_rule_parse(bad[i], strlen(bad[i]), &r) == 0)
            fail_msg("accepted \"%s\"", bad[i]);
}

/* ---- malformed files ------------------------------------------------------------ */

static uint8_t *read_zone_file(const char *name, size_t *len)
{
    char path[256];
    FILE *f;
    uint8_t *data = malloc(1 << 16);

    assert_non_null(data);
    snprintf(path, sizeof path, "%s/%s", ZONEINFO, name);
    f = fopen(path, "rb");
    assert_non_null(f);
    *len = fread(data, 1, 1 << 16, f);
    fclose(f);
    assert_true(*len > 44 && *len < (1 << 16));
    return data;
}

static void every_truncation_is_refused(void **state)
{
    size_t len;
    uint8_t *data = read_zone_file("Europe/Madrid", &len);
    struct agenda_tz *z;

    (void)state;
    for (size_t n = 0; n < len; n++) {
        /* a copy of exactly n bytes, so that the sanitizers see any read
         * past it */
        uint8_t *cut = malloc(n > 0 ? n : 1);

        assert_non_null(cut);
        memcpy(cut, data, n);
        if (agenda_tz_parse(cut, n, &z) != -1)
            fail_msg("accepted the first %zu of %zu bytes", n, len);
        assert_null(z);
        free(cut);
    }
    assert_int_equal(agenda_tz_parse(data, len, &z), 0);
    agenda_tz_free(z);
    /* one changed byte in the header's magic, the version, a type index */
    data[0] = 'X';
    assert_int_equal(agenda_tz_parse(data, len, &z), -1);
    data[0] = 'T';
    data[4] = '9';
    assert_int_equal(agenda_tz_parse(data, len, &z), -1);
    free(data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_zone_agrees_with_the_c_library),
        cmocka_unit_test(known_day_starts),
        cmocka_unit_test(missing_directory_is_an_error),
        cmocka_unit_test(posix_rules),
        cmocka_unit_test(every_truncation_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * fuzz_tz.c — libFuzzer target for time zone files (agenda_tz.h): TZif
 * files and the POSIX TZ rule of their footer.
 *
 * The input is parsed as a TZif file, and as a bare rule string, from a
 * heap block of exactly its length (AddressSanitizer catches any read past
 * it).  For every accepted file, beyond "does not crash":
 *   - offsets stay within RFC 8536's bounds at any instant;
 *   - the start of a day lies within 26 hours of its UTC midnight, and is
 *     the same when asked twice;
 * for days across the whole range events may have (years 1 to 9999).
 * Any violation aborts.  That a day starts on its own date is true of
 * zones whose clocks change at most once in two days, which random files
 * are not: tests/unit/test_tz.c checks it against the C library for every
 * real zone.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agenda_tz.h"
#include "agenda_tz_internal.h"

/* 0001-01-01 and 9999-12-31, in days since 1970-01-01 */
#define DAY_MIN (-719162)
#define DAY_MAX 2932896

static void check_offset(int32_t off)
{
    if (off < AGENDA_TZ_OFFSET_MIN || off > AGENDA_TZ_OFFSET_MAX)
        abort();
}

static void check_day(const struct agenda_tz *z, int64_t day)
{
    int64_t start = agenda_tz_day_start(z, day);

    if (start < day * 86400 - 26 * 3600 || start > day * 86400 + 26 * 3600)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size > 0 ? size : 1);
    struct agenda_tz *z = NULL;
    struct agenda_tz_rule rule;

    if (copy == NULL)
        return 0;
    memcpy(copy, data, size);
    if (agenda_tz_rule_parse((const char *)copy, size, &rule) == 0) {
        check_offset(agenda_tz_rule_offset(&rule, 0));
        check_offset(agenda_tz_rule_offset(&rule, 1790000000));
    }
    if (agenda_tz_parse(copy, size, &z) == 0) {
        uint64_t seed = 0;

        for (size_t i = 0; i < size; i++)
            seed = seed * 31 + copy[i];
        check_day(z, DAY_MIN);
        check_day(z, DAY_MAX - 1);
        for (int i = 0; i < 64; i++) {
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            check_day(z, DAY_MIN + (int64_t)((seed >> 11) %
                                             (DAY_MAX - DAY_MIN)));
            check_offset(agenda_tz_offset(
                z, (int64_t)(seed >> 20) - (int64_t)(1ULL << 43)));
        }
        /* a day a week of 2024-2027 (days 20000-21097), where real
         * files' tables change the most often */
        for (int64_t day = 0; day < 366 * 3; day += 7)
            check_day(z, day + 20000);
        agenda_tz_free(z);
    }
    free(copy);
    return 0;
}

/*
 * fuzz_validate.c — libFuzzer target for the field validators and the
 * RFC 3339 / date codecs (raft_agent/agenda/validate.h).
 *
 * The input, cut at its first NUL, is copied into a heap block of exactly
 * its length + 1, so that AddressSanitizer catches any read past the
 * terminator, and handed to every validator.  Beyond "does not crash",
 * the checks are properties that must hold for any input:
 *   - a time or date that parses formats to a canonical string that parses
 *     back to the same instant and formats to the same string again;
 *   - any 8 bytes read as an instant either format and round-trip, or are
 *     out of range;
 *   - a folded username is valid and folding is idempotent, in place too;
 *   - text validity only grows as the rules loosen (more characters,
 *     multiline, empty allowed);
 *   - a group calendar is a calendar; a valid zone is at most 64 bytes.
 * Any violation aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,          \
                    __LINE__, #cond);                                       \
            abort();                                                        \
        }                                                                   \
    } while (0)

static void check_time_instant(int64_t ms)
{
    char out[32], again[32];
    int64_t back;
    int n = agenda_time_format(ms, out, sizeof out);

    if (ms < AGENDA_TIME_MIN_MS || ms > AGENDA_TIME_MAX_MS) {
        CHECK(n == -1);
        CHECK(agenda_date_format(ms, out, sizeof out) == -1);
        return;
    }
    CHECK(n > 0 && (size_t)n == strlen(out));
    CHECK(agenda_time_parse(out, &back) == 0);
    CHECK(back == ms);
    CHECK(agenda_time_format(back, again, sizeof again) == n);
    CHECK(strcmp(out, again) == 0);

    n = agenda_date_format(ms, out, sizeof out);
    CHECK(n == 10);
    CHECK(agenda_date_parse(out, &back) == 0);
    CHECK(back <= ms && ms - back < 86400000LL);
    CHECK(agenda_date_format(back, again, sizeof again) == 10);
    CHECK(strcmp(out, again) == 0);
}

static void check_time(const char *s)
{
    int64_t ms;

    if (agenda_time_parse(s, &ms) == 0) {
        CHECK(ms >= AGENDA_TIME_MIN_MS && ms <= AGENDA_TIME_MAX_MS);
        check_time_instant(ms);
    }
    if (agenda_date_parse(s, &ms) == 0) {
        char out[16];

        CHECK(ms >= AGENDA_TIME_MIN_MS && ms <= AGENDA_TIME_MAX_MS);
        CHECK(ms % 86400000LL == 0);
        /* A date has one spelling: it formats back to the input. */
        CHECK(agenda_date_format(ms, out, sizeof out) == 10);
        CHECK(strcmp(out, s) == 0);
        check_time_instant(ms);
    }
}

static void check_username(const char *s, size_t len)
{
    char out[AGENDA_USERNAME_MAX + 1], again[AGENDA_USERNAME_MAX + 1];
    char *copy;
    int rc = agenda_username_fold(s, out);

    if (rc != 0) {
        CHECK(rc == -1 && out[0] == '\0');
        CHECK(!agenda_username_valid(s));
        return;
    }
    CHECK(strlen(out) == len);
    CHECK(agenda_username_valid(out));
    CHECK(agenda_calendar_valid(out));
    CHECK(!agenda_calendar_is_group(out));
    CHECK(agenda_username_fold(out, again) == 0);
    CHECK(strcmp(out, again) == 0);
    CHECK(agenda_username_valid(s) == (strcmp(s, out) == 0));

    copy = malloc(len + 1);
    CHECK(copy != NULL);
    memcpy(copy, s, len + 1);
    CHECK(agenda_username_fold(copy, copy) == 0);
    CHECK(strcmp(copy, out) == 0);
    free(copy);
}

static void check_text(const char *s, size_t len)
{
    size_t maxes[] = {0, 1, 2, 100, len, len + 1};

    for (size_t i = 0; i < sizeof maxes / sizeof maxes[0]; i++) {
        size_t m = maxes[i];
        bool single = agenda_text_valid(s, m, false, false);
        bool multi = agenda_text_valid(s, m, true, false);
        bool empty_ok = agenda_text_valid(s, m, true, true);

        CHECK(!single || multi);
        CHECK(!multi || empty_ok);
        CHECK(!single || agenda_text_valid(s, m + 1, false, false));
        CHECK(!empty_ok || agenda_text_valid(s, m + 1, true, true));
        /* A character takes at least one byte. */
        if (m >= len)
            CHECK(agenda_text_valid(s, len, true, true)
                  == agenda_text_valid(s, SIZE_MAX, true, true));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t len = strnlen((const char *)data, size);
    char *s = malloc(len + 1);
    int64_t ms;

    CHECK(s != NULL);
    memcpy(s, data, len);
    s[len] = '\0';

    check_username(s, len);
    check_text(s, len);
    check_time(s);

    if (agenda_calendar_is_group(s))
        CHECK(agenda_calendar_valid(s));
    if (agenda_tz_valid(s))
        CHECK(len >= 1 && len <= AGENDA_TZ_MAX);
    if (agenda_email_valid(s))
        CHECK(len <= AGENDA_EMAIL_MAX && strchr(s, '@') != NULL);
    if (agenda_password_hash_valid(s))
        CHECK(len <= AGENDA_PASSWORD_HASH_MAX && s[0] == '$');
    CHECK(agenda_hex_id_valid(s, len) == (len > 0
                                          && strspn(s, "0123456789abcdef")
                                             == len));
    CHECK(!agenda_hex_id_valid(s, len + 1));
    (void)agenda_hex_id_valid(s, AGENDA_GROUP_ID_LEN);
    (void)agenda_hex_id_valid(s, AGENDA_EVENT_ID_LEN);

    /* The raw bytes as an instant: in range it round-trips, else -1. */
    if (size >= 8) {
        uint64_t u = 0;

        for (int i = 0; i < 8; i++)
            u = u << 8 | data[i];
        ms = (int64_t)u;
        check_time_instant(ms);
        /* Fold into the range so that most inputs exercise formatting. */
        check_time_instant(AGENDA_TIME_MIN_MS
                           + (int64_t)(u % (uint64_t)(AGENDA_TIME_MAX_MS
                                                      - AGENDA_TIME_MIN_MS
                                                      + 1)));
    }

    free(s);
    return 0;
}

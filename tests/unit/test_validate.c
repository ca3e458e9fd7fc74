/*
 * test_validate.c — field validators and the RFC 3339 / date codecs.
 *
 * Mostly tables of inputs and expected answers, one table per function.
 * Expected instants were computed independently (Python's datetime), and
 * the calendar is also checked exhaustively against a second, naive
 * implementation (a day counter walked from 0001-01-01 to 9999-12-31).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tz_names.h"
#include "validate.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/*
 * Table rows: ROW() names the row being checked, and the checks below
 * quote it when they fail (cmocka alone would report only the line of the
 * assertion, the same for every row).
 */
static char row[512];
#define ROW(...) snprintf(row, sizeof row, __VA_ARGS__)

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond))                                                        \
            fail_msg("%s:%d: %s fails for row %s", __FILE__, __LINE__,      \
                     #cond, row);                                           \
    } while (0)
#define EQ(a, b)                                                            \
    do {                                                                    \
        long long a_ = (long long)(a), b_ = (long long)(b);                 \
        if (a_ != b_)                                                       \
            fail_msg("%s:%d: %s is %lld, want %lld, for row %s", __FILE__,  \
                     __LINE__, #a, a_, b_, row);                            \
    } while (0)
#define STR_EQ(a, b)                                                        \
    do {                                                                    \
        if (strcmp((a), (b)) != 0)                                          \
            fail_msg("%s:%d: \"%s\", want \"%s\", for row %s", __FILE__,   \
                     __LINE__, (a), (b), row);                              \
    } while (0)

/* ---- usernames and calendars -------------------------------------------- */

struct fold_case {
    const char *in;
    const char *out; /* NULL: refused */
};

static const struct fold_case fold_cases[] = {
    {"alice", "alice"},
    {"Alice", "alice"},
    {"AL_ice.B-0", "al_ice.b-0"},
    {"abc", "abc"},
    {"a.b", "a.b"},
    {"___", "___"},
    {"0123456789", "0123456789"},
    {"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345", "abcdefghijklmnopqrstuvwxyz012345"},
    {"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456", NULL}, /* 33 bytes */
    {"ab", NULL},
    {"", NULL},
    {"a", NULL},
    {"al ice", NULL},
    {" alice", NULL},
    {"alice ", NULL},
    {"al\tice", NULL},
    {"al\xc3\xaf" "ce", NULL}, /* i with diaeresis */
    {"alice@example.com", NULL},
    {"g:0123456789abcdef", NULL},
    {"a:b", NULL},
    {"a/b", NULL},
    {"a+b", NULL},
    {"\xc4\xb0stanbul", NULL}, /* dotted capital I: not ASCII */
};

static void username_fold_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < COUNT(fold_cases); i++) {
        const struct fold_case *c = &fold_cases[i];
        char out[AGENDA_USERNAME_MAX + 1];
        int rc;

        ROW("\"%s\"", c->in);
        memset(out, 'x', sizeof out);
        rc = agenda_username_fold(c->in, out);
        if (c->out == NULL) {
            EQ(rc, -1);
            STR_EQ(out, "");
        } else {
            EQ(rc, 0);
            STR_EQ(out, c->out);
            CHECK(agenda_username_valid(out));
            CHECK(agenda_calendar_valid(out));
            CHECK(!agenda_calendar_is_group(out));
        }
    }
}

static void username_fold_works_in_place(void **state)
{
    char buf[AGENDA_USERNAME_MAX + 1] = "MiXeD.Case_01";
    char bad[AGENDA_USERNAME_MAX + 1] = "Not Valid";

    (void)state;
    EQ(agenda_username_fold(buf, buf), 0);
    STR_EQ(buf, "mixed.case_01");
    EQ(agenda_username_fold(bad, bad), -1);
    STR_EQ(bad, "");
}

static void username_valid_requires_folded(void **state)
{
    (void)state;
    CHECK(agenda_username_valid("alice"));
    CHECK(!agenda_username_valid("Alice"));
    CHECK(!agenda_username_valid("ab"));
    CHECK(!agenda_username_valid(""));
    CHECK(!agenda_username_valid(NULL));
    CHECK(agenda_username_valid("abcdefghijklmnopqrstuvwxyz012345"));
    CHECK(!agenda_username_valid("abcdefghijklmnopqrstuvwxyz0123456"));
}

struct cal_case {
    const char *s;
    bool valid;
    bool group;
};

static const struct cal_case cal_cases[] = {
    {"alice", true, false},
    {"g:0123456789abcdef", true, true},
    {"g:ffffffffffffffff", true, true},
    {"g:0123456789ABCDEF", false, false},
    {"g:0123456789abcde", false, false},
    {"g:0123456789abcdef0", false, false},
    {"g:0123456789abcdeg", false, false},
    {"g:", false, false},
    {"G:0123456789abcdef", false, false},
    {"g0123456789abcdef", true, false}, /* 17 chars: a username */
    {"g:alice", false, false},
    {"", false, false},
    {"Alice", false, false},
};

static void calendar_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < COUNT(cal_cases); i++) {
        ROW("\"%s\"", cal_cases[i].s);
        EQ(agenda_calendar_valid(cal_cases[i].s),
                         cal_cases[i].valid);
        EQ(agenda_calendar_is_group(cal_cases[i].s),
                         cal_cases[i].group);
    }
    CHECK(!agenda_calendar_valid(NULL));
    CHECK(!agenda_calendar_is_group(NULL));
}

struct hex_case {
    const char *s;
    size_t len;
    bool valid;
};

static const struct hex_case hex_cases[] = {
    {"0123456789abcdef", 16, true},
    {"0123456789abcdef0123456789abcdef", 32, true},
    {"0123456789abcdef", 32, false},
    {"0123456789abcdef0123456789abcdef", 16, false},
    {"0123456789ABCDEF", 16, false},
    {"0123456789abcdeg", 16, false},
    {"0123456789abcde", 16, false},
    {"0123456789abcde ", 16, false},
    {" 123456789abcdef", 16, false},
    {"", 16, false},
    {"", 0, false},
    {"a", 1, true},
};

static void hex_id_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < COUNT(hex_cases); i++) {
        ROW("\"%s\" %zu", hex_cases[i].s, hex_cases[i].len);
        EQ(agenda_hex_id_valid(hex_cases[i].s,
                                             hex_cases[i].len),
                         hex_cases[i].valid);
    }
    CHECK(!agenda_hex_id_valid(NULL, 16));
}

/* ---- UTF-8 text ---------------------------------------------------------- */

struct text_case {
    const char *what;
    const char *s;
    size_t max;
    bool multiline;
    bool allow_empty;
    bool valid;
};

static const struct text_case text_cases[] = {
    /* well-formed */
    {"ascii", "Team meeting", 200, false, false, true},
    {"2-byte", "caf\xc3\xa9", 200, false, false, true},
    {"3-byte euro", "\xe2\x82\xac 5", 200, false, false, true},
    {"4-byte emoji", "\xf0\x9f\x98\x80", 200, false, false, true},
    {"U+0080 lowest 2-byte is C1", "\xc2\x80", 200, false, false, false},
    {"U+00A0 then text", "\xc2\xa0x", 200, false, false, true},
    {"U+07FF", "\xdf\xbf", 200, false, false, true},
    {"U+0800", "\xe0\xa0\x80", 200, false, false, true},
    {"U+D7FF", "\xed\x9f\xbf", 200, false, false, true},
    {"U+E000", "\xee\x80\x80", 200, false, false, true},
    {"U+FFFD", "\xef\xbf\xbd", 200, false, false, true},
    {"U+FFFF", "\xef\xbf\xbf", 200, false, false, true},
    {"U+10000", "\xf0\x90\x80\x80", 200, false, false, true},
    {"U+10FFFF", "\xf4\x8f\xbf\xbf", 200, false, false, true},
    {"mixed scripts", "\xe4\xbc\x9a\xe8\xad\xb0 \xd0\xbf\xd0\xbb\xd0\xb0\xd0"
     "\xbd", 200, false, false, true},
    /* stray continuation bytes */
    {"lone 0x80", "\x80", 200, false, false, false},
    {"lone 0xBF", "a\xbf", 200, false, false, false},
    {"extra continuation", "\xc3\xa9\xa9", 200, false, false, false},
    /* lead bytes that never appear */
    {"0xC0 overlong NUL", "\xc0\x80", 200, false, false, false},
    {"0xC1 overlong", "\xc1\xbf", 200, false, false, false},
    {"0xF5", "\xf5\x80\x80\x80", 200, false, false, false},
    {"0xF8 5-byte", "\xf8\x88\x80\x80\x80", 200, false, false, false},
    {"0xFC 6-byte", "\xfc\x84\x80\x80\x80\x80", 200, false, false, false},
    {"0xFE", "\xfe", 200, false, false, false},
    {"0xFF", "\xff", 200, false, false, false},
    /* overlongs */
    {"overlong '/' 2-byte", "\xc0\xaf", 200, false, false, false},
    {"overlong 3-byte NUL", "\xe0\x80\x80", 200, false, false, false},
    {"overlong 3-byte U+07FF", "\xe0\x9f\xbf", 200, false, false, false},
    {"overlong 4-byte NUL", "\xf0\x80\x80\x80", 200, false, false, false},
    {"overlong 4-byte U+FFFF", "\xf0\x8f\xbf\xbf", 200, false, false, false},
    /* surrogates */
    {"U+D800", "\xed\xa0\x80", 200, false, false, false},
    {"U+DBFF", "\xed\xaf\xbf", 200, false, false, false},
    {"U+DC00", "\xed\xb0\x80", 200, false, false, false},
    {"U+DFFF", "\xed\xbf\xbf", 200, false, false, false},
    {"CESU-8 pair", "\xed\xa0\xbd\xed\xb8\x80", 200, false, false, false},
    /* beyond U+10FFFF */
    {"U+110000", "\xf4\x90\x80\x80", 200, false, false, false},
    {"U+13FFFF", "\xf4\xbf\xbf\xbf", 200, false, false, false},
    /* truncated sequences */
    {"2-byte cut", "\xc3", 200, false, false, false},
    {"2-byte cut at end", "ab\xc3", 200, false, false, false},
    {"3-byte cut", "\xe2\x82", 200, false, false, false},
    {"3-byte cut by ascii", "\xe2\x82z", 200, false, false, false},
    {"4-byte cut", "\xf0\x9f\x98", 200, false, false, false},
    {"4-byte cut by ascii", "\xf0\x9fzz", 200, false, false, false},
    {"4-byte cut by lead", "\xf0\x9f\x98\xf0\x9f\x98\x80", 200, false, false,
     false},
    /* control characters */
    {"C0 SOH", "a\x01", 200, false, false, false},
    {"C0 US", "a\x1f" "b", 200, true, false, false},
    {"ESC", "\x1b[31mred", 200, true, false, false},
    {"CR", "a\rb", 200, true, false, false},
    {"CRLF", "a\r\nb", 200, true, false, false},
    {"DEL", "a\x7f", 200, true, false, false},
    {"C1 U+0085 NEL", "a\xc2\x85", 200, true, false, false},
    {"C1 U+009F", "a\xc2\x9f", 200, true, false, false},
    {"newline single-line", "a\nb", 200, false, false, false},
    {"tab single-line", "a\tb", 200, false, false, false},
    {"newline multiline", "a\nb", 200, true, false, true},
    {"tab multiline", "a\tb\n\tc", 200, true, false, true},
    /* character counts, not bytes */
    {"3 chars max 3", "\xc3\xa9\xc3\xa9\xc3\xa9", 3, false, false, true},
    {"3 chars max 2", "\xc3\xa9\xc3\xa9\xc3\xa9", 2, false, false, false},
    {"4 emoji max 4", "\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0"
     "\x9f\x98\x80", 4, false, false, true},
    {"4 emoji max 3", "\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0"
     "\x9f\x98\x80", 3, false, false, false},
    {"newline counts", "ab\ncd", 4, true, false, false},
    {"max 0 empty", "", 0, false, true, true},
    {"max 0 one char", "a", 0, false, true, false},
    /* emptiness */
    {"empty", "", 200, false, false, false},
    {"empty allowed", "", 200, false, true, true},
    {"spaces", "   ", 200, false, false, false},
    {"spaces allowed", "   ", 200, false, true, true},
    {"newlines and tabs", "\n\t \n", 200, true, false, false},
    {"NBSP", "\xc2\xa0", 200, false, false, false},
    {"ideographic space", "\xe3\x80\x80", 200, false, false, false},
    {"em space", "\xe2\x80\x83", 200, false, false, false},
    {"zero width space", "\xe2\x80\x8b", 200, false, false, false},
    {"BOM", "\xef\xbb\xbf", 200, false, false, false},
    {"line separator", "\xe2\x80\xa8", 200, false, false, false},
    {"space then dot", "  .", 200, false, false, true},
};

static void text_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < COUNT(text_cases); i++) {
        const struct text_case *c = &text_cases[i];

        ROW("%s", c->what);
        EQ(agenda_text_valid(c->s, c->max, c->multiline,
                                           c->allow_empty),
                         c->valid);
    }
    CHECK(!agenda_text_valid(NULL, 10, true, true));
}

/* Every 1-, 2-, 3- and 4-byte sequence: accepted exactly when it encodes a
 * scalar value the straightforward way, with the shortest encoding. */
static void text_exhaustive_sequences(void **state)
{
    unsigned char b[5];

    (void)state;
    for (unsigned a = 1; a < 256; a++) {
        for (unsigned c = 0x80; c < 0xC0; c++) {
            uint32_t cp;
            bool want;

            b[0] = (unsigned char)a;
            b[1] = (unsigned char)c;
            b[2] = 0;
            cp = ((a & 0x1Fu) << 6) | (c & 0x3Fu);
            want = a >= 0xC0 && a < 0xE0 && cp >= 0xA0;
            EQ(agenda_text_valid((const char *)b, 1, false,
                                               true), want);
            if (a < 0xE0 || a >= 0xF0)
                continue;
            for (unsigned d = 0x80; d < 0xC0; d++) {
                b[2] = (unsigned char)d;
                b[3] = 0;
                cp = ((a & 0x0Fu) << 12) | ((c & 0x3Fu) << 6) | (d & 0x3Fu);
                want = cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF);
                EQ(agenda_text_valid((const char *)b, 1, false,
                                                   true), want);
            }
        }
    }
    /* 4-byte: every lead with the extreme second bytes. */
    for (unsigned a = 0xF0; a < 0x100; a++) {
        for (unsigned c = 0x80; c < 0xC0; c++) {
            uint32_t cp = ((a & 0x07u) << 18) | ((c & 0x3Fu) << 12)
                          | (0x3Fu << 6) | 0x3Fu;
            bool want = a <= 0xF4 && cp >= 0x10000 && cp <= 0x10FFFF;

            b[0] = (unsigned char)a;
            b[1] = (unsigned char)c;
            b[2] = 0xBF;
            b[3] = 0xBF;
            b[4] = 0;
            EQ(agenda_text_valid((const char *)b, 1, false,
                                               true), want);
        }
    }
}

/* ---- e-mail -------------------------------------------------------------- */

struct str_case {
    const char *s;
    bool valid;
};

static const struct str_case email_cases[] = {
    {"a@b.co", true},
    {"alice@example.com", true},
    {"Alice.Smith+tag@Example.COM", true},
    {"o'brien@example.ie", true},
    {"x_y-z@sub.example-host.org", true},
    {"1@2.3", true},
    {"!#$%&*+-/=?^_`{|}~@example.com", true},
    {"", false},
    {"alice", false},
    {"@example.com", false},
    {"alice@", false},
    {"alice@example", false},
    {"a@@example.com", false},
    {"a@b@example.com", false},
    {"a b@example.com", false},
    {" a@example.com", false},
    {"a@example.com ", false},
    {"\"a\"@example.com", false},
    {"\"a b\"@example.com", false},
    {".a@example.com", false},
    {"a.@example.com", false},
    {"a..b@example.com", false},
    {"a@.example.com", false},
    {"a@example..com", false},
    {"a@example.com.", false},
    {"a@-example.com", false},
    {"a@example-.com", false},
    {"a@exa_mple.com", false},
    {"a@[192.0.2.1]", false},
    {"a(b)@example.com", false},
    {"a,b@example.com", false},
    {"a\\b@example.com", false},
    {"\xc3\xa9@example.com", false},
    {"a@ex\xc3\xa4mple.com", false},
    {"a@example.com\n", false},
    {"a\t@example.com", false},
    {"a\x7f@example.com", false},
};

static void email_table(void **state)
{
    char buf[400];

    (void)state;
    for (size_t i = 0; i < COUNT(email_cases); i++) {
        ROW("\"%s\"", email_cases[i].s);
        EQ(agenda_email_valid(email_cases[i].s),
                         email_cases[i].valid);
    }
    CHECK(!agenda_email_valid(NULL));

    /* Local part: 64 bytes fit, 65 do not. */
    memset(buf, 'l', 64);
    strcpy(buf + 64, "@example.com");
    CHECK(agenda_email_valid(buf));
    memset(buf, 'l', 65);
    strcpy(buf + 65, "@example.com");
    CHECK(!agenda_email_valid(buf));

    /* Whole address: 254 bytes fit, 255 do not (labels of 60). */
    strcpy(buf, "a@");
    for (int k = 0; k < 4; k++) {
        memset(buf + strlen(buf), 'd', 60);
        buf[2 + 61 * k + 60] = '\0';
        strcat(buf, ".");
    }
    strcat(buf, "comxxxx"); /* 2 + 244 + 7 = 253 */
    EQ(strlen(buf), 253);
    CHECK(agenda_email_valid(buf));
    strcat(buf, "x");
    CHECK(agenda_email_valid(buf));
    strcat(buf, "x");
    CHECK(!agenda_email_valid(buf));

    /* A 64-byte label fails, 63 passes. */
    strcpy(buf, "a@");
    memset(buf + 2, 'd', 63);
    strcpy(buf + 65, ".com");
    CHECK(agenda_email_valid(buf));
    strcpy(buf, "a@");
    memset(buf + 2, 'd', 64);
    strcpy(buf + 66, ".com");
    CHECK(!agenda_email_valid(buf));
}

/* ---- password hashes ----------------------------------------------------- */

/* Base64 (unpadded) of 8, 16, 32 and 64 bytes, plus near misses. */
#define SALT8 "BxQhLjtIVWI"
#define SALT16 "BxQhLjtIVWJvfImWo7C9yg"
#define HASH32 "BxQhLjtIVWJvfImWo7C9ytfk8f4LGCUyP0xZZnOAjZo"
#define HASH64 "BxQhLjtIVWJvfImWo7C9ytfk8f4LGCUyP0xZZnOAjZqntMHO2+j1Ag8cKTZD" \
               "UF1qd4SRnqu4xdLf7PkGEyAtOg"
#define B7 "BxQhLjtIVQ"                                 /* 7 bytes */
#define B15 "BxQhLjtIVWJvfImWo7C9"                      /* 15 bytes */
#define B65 HASH64 "c"                                  /* 65 bytes */
#define A2 "$argon2id$v=19$"
#define SC "$scrypt$"

static const struct str_case hash_cases[] = {
    {A2 "m=65536,t=3,p=4$" SALT16 "$" HASH32, true},
    {A2 "m=19456,t=2,p=1$" SALT8 "$" HASH32, true},
    {A2 "m=8,t=1,p=1$" SALT16 "$" HASH64, true},
    {A2 "m=4194304,t=100,p=64$" SALT16 "$" HASH32, true},
    {SC "ln=17,r=8,p=1$" SALT16 "$" HASH32, true},
    {SC "ln=1,r=1,p=1$" SALT8 "$" HASH64, true},
    {SC "ln=24,r=32,p=16$" SALT16 "$" HASH32, true},
    /* algorithm and version */
    {"$argon2i$v=19$m=65536,t=3,p=4$" SALT16 "$" HASH32, false},
    {"$argon2d$v=19$m=65536,t=3,p=4$" SALT16 "$" HASH32, false},
    {"$argon2id$v=16$m=65536,t=3,p=4$" SALT16 "$" HASH32, false},
    {"$argon2id$m=65536,t=3,p=4$" SALT16 "$" HASH32, false},
    {"$ARGON2ID$v=19$m=65536,t=3,p=4$" SALT16 "$" HASH32, false},
    {"$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW", false},
    {"$scrypt$ln=17,r=8,p=1$$" HASH32, false},
    /* parameters: order, spelling, bounds */
    {A2 "t=3,m=65536,p=4$" SALT16 "$" HASH32, false},
    {A2 "m=65536,t=3$" SALT16 "$" HASH32, false},
    {A2 "m=65536,t=3,p=4,x=1$" SALT16 "$" HASH32, false},
    {A2 "m=065536,t=3,p=4$" SALT16 "$" HASH32, false},
    {A2 "m=,t=3,p=4$" SALT16 "$" HASH32, false},
    {A2 "m=-1,t=3,p=4$" SALT16 "$" HASH32, false},
    {A2 "m=65536,t=0,p=4$" SALT16 "$" HASH32, false},
    {A2 "m=65536,t=101,p=4$" SALT16 "$" HASH32, false},
    {A2 "m=65536,t=3,p=0$" SALT16 "$" HASH32, false},
    {A2 "m=65536,t=3,p=65$" SALT16 "$" HASH32, false},
    {A2 "m=7,t=1,p=1$" SALT16 "$" HASH32, false},
    {A2 "m=31,t=1,p=4$" SALT16 "$" HASH32, false}, /* m < 8p */
    {A2 "m=4194305,t=3,p=4$" SALT16 "$" HASH32, false},
    {A2 "m=99999999999999999999,t=3,p=4$" SALT16 "$" HASH32, false},
    {A2 "m=65536, t=3,p=4$" SALT16 "$" HASH32, false},
    {SC "ln=0,r=8,p=1$" SALT16 "$" HASH32, false},
    {SC "ln=25,r=8,p=1$" SALT16 "$" HASH32, false},
    {SC "ln=17,r=0,p=1$" SALT16 "$" HASH32, false},
    {SC "ln=17,r=33,p=1$" SALT16 "$" HASH32, false},
    {SC "ln=17,r=8,p=17$" SALT16 "$" HASH32, false},
    {SC "ln=17,p=1,r=8$" SALT16 "$" HASH32, false},
    {SC "n=131072,r=8,p=1$" SALT16 "$" HASH32, false},
    /* salt and hash encodings and lengths */
    {A2 "m=65536,t=3,p=4$" B7 "$" HASH32, false},
    {A2 "m=65536,t=3,p=4$" B65 "$" HASH32, false},
    {A2 "m=65536,t=3,p=4$" SALT16 "$" B15, false},
    {A2 "m=65536,t=3,p=4$" SALT16 "$" B65, false},
    {A2 "m=65536,t=3,p=4$" SALT16 "==$" HASH32, false},
    {A2 "m=65536,t=3,p=4$" SALT16 "$" HASH32 "=", false},
    {A2 "m=65536,t=3,p=4$BxQhLjtIVWJvfImWo7C9yh$" HASH32, false},
    {A2 "m=65536,t=3,p=4$" SALT16 "$"
        "BxQhLjtIVWJvfImWo7C9ytfk8f4LGCUyP0xZZnOAjZp", false},
    {A2 "m=65536,t=3,p=4$" SALT16 "$" HASH32 "AA", false}, /* len % 4 == 1 */
    {A2 "m=65536,t=3,p=4$BxQhLjtIVWJvfImWo7C9y-$" HASH32, false},
    {A2 "m=65536,t=3,p=4$BxQhLjtIVWJvfImWo7C9y_$" HASH32, false},
    {A2 "m=65536,t=3,p=4$" SALT16 "$" HASH32 "$", false},
    {A2 "m=65536,t=3,p=4$" SALT16 "$" HASH32 "$x", false},
    {A2 "m=65536,t=3,p=4$" SALT16, false},
    {A2 "m=65536,t=3,p=4$" SALT16 "$", false},
    {A2 "m=65536,t=3,p=4" SALT16 "$" HASH32, false},
    {"", false},
    {"$", false},
    {"password", false},
    {"argon2id$v=19$m=65536,t=3,p=4$" SALT16 "$" HASH32, false},
};

static void password_hash_table(void **state)
{
    char buf[512];

    (void)state;
    for (size_t i = 0; i < COUNT(hash_cases); i++) {
        ROW("\"%s\"", hash_cases[i].s);
        EQ(agenda_password_hash_valid(hash_cases[i].s),
                         hash_cases[i].valid);
    }
    CHECK(!agenda_password_hash_valid(NULL));

    /* The longest valid form fits in 256 bytes. */
    snprintf(buf, sizeof buf, "%s", A2 "m=4194304,t=100,p=64$" HASH64 "$"
             HASH64);
    CHECK(strlen(buf) <= AGENDA_PASSWORD_HASH_MAX);
    CHECK(agenda_password_hash_valid(buf));
}

/* ---- time zones ---------------------------------------------------------- */

static const struct str_case tz_cases[] = {
    {"UTC", true},
    {"Etc/UTC", true},
    {"GMT", true},
    {"Europe/Madrid", true},
    {"America/Argentina/Buenos_Aires", true},
    {"America/Indiana/Indianapolis", true},
    {"America/Port-au-Prince", true},
    {"US/Eastern", true},
    {"Asia/Kolkata", true},
    {"Asia/Calcutta", true},
    {"Etc/GMT+5", true},
    {"Etc/GMT-14", true},
    {"EST5EDT", true},
    {"Africa/Abidjan", true}, /* first entry */
    {"Zulu", true},           /* last entry */
    {"", false},
    {"utc", false},
    {"europe/madrid", false},
    {"Europe/madrid", false},
    {"Europe/", false},
    {"Europe", false},
    {"/UTC", false},
    {"UTC ", false},
    {" UTC", false},
    {"Europe/Madrid/", false},
    {"Mars/Olympus_Mons", false},
    {"Etc/GMT+15", false},
    {"Factory", false},
    {"localtime", false},
    {"posixrules", false},
    {"right/UTC", false},
    {"posix/UTC", false},
    {"zone.tab", false},
    {"+01:00", false},
    {"A", false},
    {"Zz", false},
};

static void tz_table(void **state)
{
    char buf[200];

    (void)state;
    for (size_t i = 0; i < COUNT(tz_cases); i++) {
        ROW("\"%s\"", tz_cases[i].s);
        EQ(agenda_tz_valid(tz_cases[i].s), tz_cases[i].valid);
    }
    CHECK(!agenda_tz_valid(NULL));
    memset(buf, 'A', sizeof buf - 1);
    buf[sizeof buf - 1] = '\0';
    CHECK(!agenda_tz_valid(buf));
}

/* The generated table is what binary search needs, and complete enough. */
static void tz_table_is_sorted_and_found(void **state)
{
    (void)state;
    CHECK(agenda_tz_names_count > 500);
    CHECK(strlen(agenda_tz_version) > 0);
    for (size_t i = 0; i < agenda_tz_names_count; i++) {
        ROW("%s", agenda_tz_names[i]);
        if (i > 0)
            CHECK(strcmp(agenda_tz_names[i - 1],
                               agenda_tz_names[i]) < 0);
        CHECK(strlen(agenda_tz_names[i]) <= AGENDA_TZ_MAX);
        CHECK(agenda_tz_valid(agenda_tz_names[i]));
    }
}

/* ---- RFC 3339 ------------------------------------------------------------ */

struct time_case {
    const char *s;
    int rc;
    int64_t ms;
};

static const struct time_case time_cases[] = {
    {"1970-01-01T00:00:00Z", 0, 0},
    {"1970-01-01t00:00:00z", 0, 0},
    {"1970-01-01T00:00:00+00:00", 0, 0},
    {"1970-01-01T00:00:00-00:00", 0, 0},
    {"1969-12-31T23:59:59.999Z", 0, -1},
    {"2026-03-29T01:30:00+02:00", 0, 1774740600000LL},
    {"2026-03-29T01:30:00Z", 0, 1774747800000LL},
    {"2026-11-27T09:30:00Z", 0, 1795771800000LL},
    {"2026-11-27T09:30:00.5+05:30", 0, 1795752000500LL},
    {"2026-01-01T00:00:00+23:59", 0, 1767139260000LL},
    {"2026-01-01T00:00:00-23:59", 0, 1767311940000LL},
    {"2000-02-29T12:00:00Z", 0, 951825600000LL},
    {"2024-02-29T00:00:00Z", 0, 1709164800000LL},
    {"1600-02-29T00:00:00Z", 0, -11670998400000LL},
    {"1900-03-01T00:00:00Z", 0, -2203891200000LL},
    {"1969-07-20T20:17:40Z", 0, -14182940000LL},
    {"2038-01-19T03:14:08Z", 0, 2147483648000LL},
    /* fractions: milliseconds kept, the rest truncated */
    {"1970-01-01T00:00:00.1Z", 0, 100},
    {"1970-01-01T00:00:00.12Z", 0, 120},
    {"1970-01-01T00:00:00.123Z", 0, 123},
    {"1970-01-01T00:00:00.1239Z", 0, 123},
    {"1970-01-01T00:00:00.000000001Z", 0, 0},
    {"1970-01-01T00:00:00.999999999999999999999999Z", 0, 999},
    {"1969-12-31T23:59:59.9999Z", 0, -1},
    /* the edges of the range */
    {"0001-01-01T00:00:00Z", 0, AGENDA_TIME_MIN_MS},
    {"0001-01-01T01:00:00+01:00", 0, AGENDA_TIME_MIN_MS},
    {"0000-12-31T23:00:00-01:00", 0, AGENDA_TIME_MIN_MS},
    {"9999-12-31T23:59:59.999Z", 0, AGENDA_TIME_MAX_MS},
    {"9999-12-31T23:59:59.999999Z", 0, AGENDA_TIME_MAX_MS},
    {"9999-12-31T00:00:00Z", 0, 253402214400000LL},
    {"0001-01-01T00:00:00+00:01", -1, 0},
    {"0000-12-31T23:59:59.999Z", -1, 0},
    {"0000-01-01T00:00:00Z", -1, 0},
    {"9999-12-31T23:59:59-00:01", -1, 0},
    {"9999-12-31T23:59:59.999-23:59", -1, 0},
    /* calendar */
    {"1900-02-29T00:00:00Z", -1, 0},
    {"2100-02-29T00:00:00Z", -1, 0},
    {"2023-02-29T00:00:00Z", -1, 0},
    {"2026-02-30T00:00:00Z", -1, 0},
    {"2026-04-31T00:00:00Z", -1, 0},
    {"2026-06-31T00:00:00Z", -1, 0},
    {"2026-09-31T00:00:00Z", -1, 0},
    {"2026-11-31T00:00:00Z", -1, 0},
    {"2026-01-32T00:00:00Z", -1, 0},
    {"2026-01-00T00:00:00Z", -1, 0},
    {"2026-00-01T00:00:00Z", -1, 0},
    {"2026-13-01T00:00:00Z", -1, 0},
    /* clock */
    {"2026-01-01T24:00:00Z", -1, 0},
    {"2026-01-01T23:60:00Z", -1, 0},
    {"2016-12-31T23:59:60Z", -1, 0},
    {"2026-01-01T23:59:61Z", -1, 0},
    {"2026-01-01T99:00:00Z", -1, 0},
    /* offsets */
    {"2026-01-01T00:00:00", -1, 0},
    {"2026-01-01T00:00:00+24:00", -1, 0},
    {"2026-01-01T00:00:00+00:60", -1, 0},
    {"2026-01-01T00:00:00+0100", -1, 0},
    {"2026-01-01T00:00:00+01", -1, 0},
    {"2026-01-01T00:00:00+1:00", -1, 0},
    {"2026-01-01T00:00:00+01:00:00", -1, 0},
    {"2026-01-01T00:00:00UTC", -1, 0},
    {"2026-01-01T00:00:00 Z", -1, 0},
    {"2026-01-01T00:00:00ZZ", -1, 0},
    {"2026-01-01T00:00:00Z ", -1, 0},
    {"2026-01-01T00:00:00+01:00Z", -1, 0},
    /* shape */
    {"", -1, 0},
    {"2026-01-01", -1, 0},
    {"2026-01-01T", -1, 0},
    {"2026-01-01 00:00:00Z", -1, 0},
    {"2026-01-01_00:00:00Z", -1, 0},
    {"2026-01-01T00:00Z", -1, 0},
    {"2026-01-01T0:00:00Z", -1, 0},
    {"2026-1-01T00:00:00Z", -1, 0},
    {"2026-01-1T00:00:00Z", -1, 0},
    {"20260-01-01T00:00:00Z", -1, 0},
    {"226-01-01T00:00:00Z", -1, 0},
    {"+2026-01-01T00:00:00Z", -1, 0},
    {"-2026-01-01T00:00:00Z", -1, 0},
    {" 2026-01-01T00:00:00Z", -1, 0},
    {"2026/01/01T00:00:00Z", -1, 0},
    {"2026-01-01T00.00.00Z", -1, 0},
    {"2026-01-01T00:00:00.Z", -1, 0},
    {"2026-01-01T00:00:00,5Z", -1, 0},
    {"2026-01-01T00:00:00.-5Z", -1, 0},
    {"20260101T000000Z", -1, 0},
    {"\xef\xbc\x92\xef\xbc\x90\xef\xbc\x92\xef\xbc\x96-01-01T00:00:00Z",
     -1, 0},
};

static void time_parse_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < COUNT(time_cases); i++) {
        const struct time_case *c = &time_cases[i];
        int64_t ms = 12345;

        ROW("\"%s\"", c->s);
        EQ(agenda_time_parse(c->s, &ms), c->rc);
        if (c->rc == 0)
            EQ(ms, c->ms);
        else
            EQ(ms, 12345); /* untouched on failure */
    }
    {
        int64_t ms;

        EQ(agenda_time_parse(NULL, &ms), -1);
    }
}

struct format_case {
    int64_t ms;
    const char *s; /* NULL: out of range */
};

static const struct format_case time_formats[] = {
    {0, "1970-01-01T00:00:00Z"},
    {1, "1970-01-01T00:00:00.001Z"},
    {-1, "1969-12-31T23:59:59.999Z"},
    {10, "1970-01-01T00:00:00.010Z"},
    {100, "1970-01-01T00:00:00.100Z"},
    {1774740600000LL, "2026-03-28T23:30:00Z"},
    {1795752000500LL, "2026-11-27T04:00:00.500Z"},
    {951782400000LL, "2000-02-29T00:00:00Z"},
    {-11670998400000LL, "1600-02-29T00:00:00Z"},
    {-14182940000LL, "1969-07-20T20:17:40Z"},
    {AGENDA_TIME_MIN_MS, "0001-01-01T00:00:00Z"},
    {AGENDA_TIME_MAX_MS, "9999-12-31T23:59:59.999Z"},
    {AGENDA_TIME_MIN_MS - 1, NULL},
    {AGENDA_TIME_MAX_MS + 1, NULL},
    {INT64_MIN, NULL},
    {INT64_MAX, NULL},
};

static void time_format_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < COUNT(time_formats); i++) {
        const struct format_case *c = &time_formats[i];
        char out[32];
        int64_t back;

        ROW("%lld", (long long)c->ms);
        if (c->s == NULL) {
            EQ(agenda_time_format(c->ms, out, sizeof out), -1);
            continue;
        }
        EQ(agenda_time_format(c->ms, out, sizeof out),
                         (int)strlen(c->s));
        STR_EQ(out, c->s);
        EQ(agenda_time_parse(out, &back), 0);
        EQ(back, c->ms);
    }
}

static void format_respects_buffer_length(void **state)
{
    char out[32];

    (void)state;
    /* 20 characters need 21 bytes. */
    EQ(agenda_time_format(0, out, 21), 20);
    EQ(agenda_time_format(0, out, 20), -1);
    EQ(agenda_time_format(1, out, 25), 24);
    EQ(agenda_time_format(1, out, 24), -1);
    EQ(agenda_date_format(0, out, 11), 10);
    EQ(agenda_date_format(0, out, 10), -1);
    EQ(agenda_time_format(0, out, 0), -1);
}

/* Every parsed string formats to a canonical form that parses back to the
 * same instant, whatever offset or fraction it was written with. */
static void time_round_trips(void **state)
{
    (void)state;
    for (size_t i = 0; i < COUNT(time_cases); i++) {
        char out[32];
        int64_t ms, back;

        if (time_cases[i].rc != 0)
            continue;
        ROW("\"%s\"", time_cases[i].s);
        EQ(agenda_time_parse(time_cases[i].s, &ms), 0);
        CHECK(agenda_time_format(ms, out, sizeof out) > 0);
        EQ(agenda_time_parse(out, &back), 0);
        EQ(back, ms);
    }
}

/* Pseudo-random instants across the whole range (a fixed LCG, so every
 * run checks the same ones). */
static void time_round_trips_random(void **state)
{
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    const uint64_t span = (uint64_t)(AGENDA_TIME_MAX_MS - AGENDA_TIME_MIN_MS);

    (void)state;
    for (int i = 0; i < 200000; i++) {
        char out[32], dout[16];
        int64_t ms, back, day;

        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        ms = AGENDA_TIME_MIN_MS + (int64_t)((x >> 11) % (span + 1));
        if (i % 4 == 0)
            ms -= ms % 1000; /* whole seconds take the short form */
        CHECK(agenda_time_format(ms, out, sizeof out) > 0);
        EQ(agenda_time_parse(out, &back), 0);
        EQ(back, ms);
        EQ(agenda_date_format(ms, dout, sizeof dout), 10);
        EQ(agenda_date_parse(dout, &day), 0);
        CHECK(day <= ms && ms - day < 86400000LL);
        assert_memory_equal(out, dout, 10);
    }
}

/* The calendar, checked against a naive second implementation: walk every
 * day from 0001-01-01 to 9999-12-31 with a y/m/d counter. */
static void every_day_of_the_calendar(void **state)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30,
                                  31, 31, 30, 31, 30, 31};
    int y = 1, m = 1, d = 1;
    int64_t ms = AGENDA_TIME_MIN_MS;

    (void)state;
    for (;;) {
        char want[40], got[16];
        int64_t back;
        int len;
        bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

        snprintf(want, sizeof want, "%04d-%02d-%02d", y, m, d);
        len = agenda_date_format(ms, got, sizeof got);
        if (len != 10 || strcmp(got, want) != 0)
            fail_msg("%lld formats as %s, want %s", (long long)ms, got, want);
        if (agenda_date_parse(want, &back) != 0 || back != ms)
            fail_msg("%s parses as %lld, want %lld", want, (long long)back,
                     (long long)ms);
        if (y == 9999 && m == 12 && d == 31)
            break;
        if (++d > mdays[m - 1] + (m == 2 && leap)) {
            d = 1;
            if (++m > 12) {
                m = 1;
                y++;
            }
        }
        ms += 86400000LL;
    }
    EQ(ms, AGENDA_TIME_MAX_MS - 86399999LL);
}

/* ---- dates --------------------------------------------------------------- */

static const struct time_case date_cases[] = {
    {"1970-01-01", 0, 0},
    {"0001-01-01", 0, AGENDA_TIME_MIN_MS},
    {"9999-12-31", 0, 253402214400000LL},
    {"2000-02-29", 0, 951782400000LL},
    {"2024-02-29", 0, 1709164800000LL},
    {"1600-02-29", 0, -11670998400000LL},
    {"2026-03-29", 0, 1774742400000LL},
    {"0000-01-01", -1, 0},
    {"0000-12-31", -1, 0},
    {"1900-02-29", -1, 0},
    {"2100-02-29", -1, 0},
    {"2026-02-29", -1, 0},
    {"2026-04-31", -1, 0},
    {"2026-00-10", -1, 0},
    {"2026-13-10", -1, 0},
    {"2026-01-00", -1, 0},
    {"2026-1-1", -1, 0},
    {"26-01-01", -1, 0},
    {"10000-01-01", -1, 0},
    {"2026/01/01", -1, 0},
    {"2026-01-01T00:00:00Z", -1, 0},
    {"2026-01-01Z", -1, 0},
    {"2026-01-01 ", -1, 0},
    {" 2026-01-01", -1, 0},
    {"2026-01-0", -1, 0},
    {"", -1, 0},
};

static void date_parse_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < COUNT(date_cases); i++) {
        const struct time_case *c = &date_cases[i];
        int64_t ms = 12345;
        char out[16];

        ROW("\"%s\"", c->s);
        EQ(agenda_date_parse(c->s, &ms), c->rc);
        if (c->rc != 0) {
            EQ(ms, 12345);
            continue;
        }
        EQ(ms, c->ms);
        EQ(agenda_date_format(ms, out, sizeof out), 10);
        STR_EQ(out, c->s);
    }
    {
        int64_t ms;

        EQ(agenda_date_parse(NULL, &ms), -1);
    }
}

static void date_format_takes_the_utc_day(void **state)
{
    char out[16];

    (void)state;
    EQ(agenda_date_format(-1, out, sizeof out), 10);
    STR_EQ(out, "1969-12-31");
    EQ(agenda_date_format(86399999, out, sizeof out), 10);
    STR_EQ(out, "1970-01-01");
    EQ(agenda_date_format(AGENDA_TIME_MAX_MS, out, sizeof out),
                     10);
    STR_EQ(out, "9999-12-31");
    EQ(agenda_date_format(AGENDA_TIME_MIN_MS - 1, out,
                                        sizeof out), -1);
    EQ(agenda_date_format(AGENDA_TIME_MAX_MS + 1, out,
                                        sizeof out), -1);
}

static int clear_row(void **state)
{
    (void)state;
    snprintf(row, sizeof row, "(none)");
    return 0;
}

/* A byte-counted cut that ends inside a character loses that character
 * only; whole text and ASCII are kept; text malformed further in ends
 * there. */
static void utf8_cut_table(void **state)
{
    static const struct {
        const char *in, *out;
    } rows[] = {
        {"", ""},
        {"plain", "plain"},
        {"caf\xc3\xa9", "caf\xc3\xa9"},
        {"caf\xc3", "caf"},
        {"\xe2\x82\xac\xe2\x82", "\xe2\x82\xac"},
        {"\xf0\x9f\x98\x80\xf0\x9f\x98", "\xf0\x9f\x98\x80"},
        {"ok\xffrest", "ok"},
        {"ok\xc0\xafrest", "ok"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char buf[64];
        snprintf(row, sizeof row, "utf8_cut row %zu", i);
        snprintf(buf, sizeof buf, "%s", rows[i].in);
        agenda_utf8_cut(buf);
        assert_string_equal(buf, rows[i].out);
    }
}

/* Names and titles (the edge's agenda_line_shows): something visible,
 * nothing that makes the text read as another. */
static void line_shows_table(void **state)
{
    static const struct {
        const char *what, *s;
        bool shows, redirects;
    } rows[] = {
        {"plain", "Ana", true, false},
        {"empty", "", false, false},
        {"spaces", "  ", false, false},
        {"Hangul filler", "\xe3\x85\xa4", false, false},
        {"Hangul choseong filler", "\xe1\x85\x9f", false, false},
        {"halfwidth Hangul filler", "\xef\xbe\xa0", false, false},
        {"Braille blank", "\xe2\xa0\x80", false, false},
        {"soft hyphen", "\xc2\xad", false, false},
        {"combining grapheme joiner", "\xcd\x8f", false, false},
        {"Mongolian vowel separator", "\xe1\xa0\x8e", false, false},
        {"LRM and RLM", "\xe2\x80\x8e\xe2\x80\x8f", false, false},
        {"invisible times", "\xe2\x81\xa2", false, false},
        {"deprecated format", "\xe2\x81\xaa", false, false},
        {"ZWSP and a filler", "\xe2\x80\x8b\xe3\x85\xa4", false, false},
        {"RLM in a name", "\xe2\x80\x8f" "Ana", true, false},
        {"RLO", "moc.elpmaxe\xe2\x80\xae", false, true},
        {"LRE", "a\xe2\x80\xaa" "b", false, true},
        {"PDF", "a\xe2\x80\xac", false, true},
        {"RLI", "a\xe2\x81\xa7" "b", false, true},
        {"PDI", "a\xe2\x81\xa9", false, true},
        {"Arabic", "\xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7", true,
         false},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        snprintf(row, sizeof row, "line %s", rows[i].what);
        assert_int_equal(agenda_line_shows(rows[i].s), rows[i].shows);
        assert_int_equal(agenda_line_redirects(rows[i].s), rows[i].redirects);
        /* the replicas' own rule is unchanged: every row is text */
        assert_true(agenda_text_valid(rows[i].s, 200, false, true));
    }
}

#define TEST(f) cmocka_unit_test_setup(f, clear_row)

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(username_fold_table),
        TEST(username_fold_works_in_place),
        TEST(username_valid_requires_folded),
        TEST(calendar_table),
        TEST(hex_id_table),
        TEST(text_table),
        TEST(text_exhaustive_sequences),
        TEST(email_table),
        TEST(password_hash_table),
        TEST(tz_table),
        TEST(tz_table_is_sorted_and_found),
        TEST(time_parse_table),
        TEST(time_format_table),
        TEST(format_respects_buffer_length),
        TEST(time_round_trips),
        TEST(time_round_trips_random),
        TEST(every_day_of_the_calendar),
        TEST(date_parse_table),
        TEST(date_format_takes_the_utc_day),
        TEST(utf8_cut_table),
        TEST(line_shows_table),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

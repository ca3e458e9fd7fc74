/*
 * test_password.c — argon2id password hashes (agenda_password.h).
 *
 * Hashing uses a cheap cost (m = 256 KiB, t = 1) except in one test, which
 * hashes once at the default cost and prints how long it took.  Known
 * answers are the Argon2 reference implementation's published argon2id
 * vectors (password "password", salt "somesalt").
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

#include "agenda_password.h"
#include "validate.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static char row[512];
#define ROW(...) snprintf(row, sizeof row, __VA_ARGS__)

#define EQ(a, b)                                                            \
    do {                                                                    \
        long long a_ = (long long)(a), b_ = (long long)(b);                 \
        if (a_ != b_)                                                       \
            fail_msg("%s:%d: %s is %lld, want %lld, for row %s", __FILE__,  \
                     __LINE__, #a, a_, b_, row);                            \
    } while (0)

static const struct agenda_password_cost cheap = {256, 1, 1};

static int verify_str(const char *phc, const char *pw)
{
    return agenda_password_verify(phc, pw, strlen(pw));
}

/* ---- acceptable ---------------------------------------------------------- */

struct accept_case {
    const char *pw;
    size_t len; /* 0: strlen(pw) */
    bool want;
};

static const struct accept_case accept_cases[] = {
    {"12345678", 0, true},
    {"1234567", 0, false},
    {"", 0, false},
    {"correct horse battery staple", 0, true},
    {"        ", 0, true},                     /* spaces are characters */
    {"p\xc3\xa4ssw\xc3\xb6rd", 0, true},       /* pässwörd */
    {"\xc3\xa9\xc3\xa9\xc3\xa9", 0, false},    /* 3 characters, 6 bytes */
    {"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 0, true}, /* 8 bytes */
    /* 密码密码, four 3-byte characters */
    {"\xe5\xaf\x86\xe7\xa0\x81\xe5\xaf\x86\xe7\xa0\x81", 0, true},
    {"\xf0\x9f\x94\x91\xf0\x9f\x94\x91", 0, true}, /* two U+1F511 */
    {"nbsp\xc2\xa0nbsp", 0, true},             /* U+00A0 is printable */
    {"tab\there12", 0, false},
    {"newline\n12", 0, false},
    {"del\x7f" "12345", 0, false},
    {"c1\xc2\x80" "12345", 0, false},          /* U+0080 */
    {"c1\xc2\x9f" "12345", 0, false},          /* U+009F */
    {"nul\0" "12345", 9, false},
    {"over\xc0\xaf" "long", 0, false},         /* overlong '/' */
    {"over\xe0\x80\xaf" "long", 0, false},
    {"over\xf0\x80\x80\xaf" "long", 0, false},
    {"sur\xed\xa0\x80" "rogate", 0, false},    /* U+D800 */
    {"big\xf4\x90\x80\x80" "code", 0, false},  /* U+110000 */
    {"big\xf5\x80\x80\x80" "code", 0, false},
    {"lone\x80" "cont", 0, false},
    {"cut at end\xe5\xaf", 0, false},
    {"cut\xe5\xaf" "inside", 0, false},
    {"\xff\xfe" "12345678", 0, false},
};

static void acceptable_table(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < COUNT(accept_cases); i++) {
        const struct accept_case *c = &accept_cases[i];
        size_t len = c->len != 0 ? c->len : strlen(c->pw);

        ROW("accept %zu", i);
        EQ(agenda_password_acceptable(c->pw, len), c->want);
    }
    ROW("NULL");
    EQ(agenda_password_acceptable(NULL, 8), false);
}

static void acceptable_length_limits(void **state)
{
    char pw[AGENDA_PASSWORD_MAX + 2];

    (void)state;
    memset(pw, 'x', sizeof pw);
    ROW("lengths");
    EQ(agenda_password_acceptable(pw, AGENDA_PASSWORD_MIN - 1), false);
    EQ(agenda_password_acceptable(pw, AGENDA_PASSWORD_MIN), true);
    EQ(agenda_password_acceptable(pw, AGENDA_PASSWORD_MAX), true);
    EQ(agenda_password_acceptable(pw, AGENDA_PASSWORD_MAX + 1), false);
    /* a multi-byte character may not straddle the maximum: bytes count */
    memcpy(pw + AGENDA_PASSWORD_MAX - 1, "\xc3\xa9", 2);
    EQ(agenda_password_acceptable(pw, AGENDA_PASSWORD_MAX + 1), false);
    EQ(agenda_password_acceptable(pw, AGENDA_PASSWORD_MAX), false);
}

/* ---- hash and verify ----------------------------------------------------- */

static void round_trip(void **state)
{
    static const char *const pws[] = {
        "correct horse battery staple",
        "p\xc3\xa4ssw\xc3\xb6rd",
        "\xe5\xaf\x86\xe7\xa0\x81\xe5\xaf\x86\xe7\xa0\x81",
        "\xf0\x9f\x94\x91\xf0\x9f\x94\x91 key",
        "12345678",
    };
    char phc[AGENDA_PASSWORD_HASH_LEN], again[AGENDA_PASSWORD_HASH_LEN];
    size_t i;

    (void)state;
    for (i = 0; i < COUNT(pws); i++) {
        size_t n = strlen(pws[i]);

        ROW("password %zu", i);
        EQ(agenda_password_hash(&cheap, pws[i], n, phc), 0);
        assert_true(strncmp(phc, "$argon2id$v=19$m=256,t=1,p=1$", 29) == 0);
        /* what the users shard will be asked to store */
        EQ(agenda_password_hash_valid(phc), true);
        EQ(agenda_password_verify(phc, pws[i], n), 1);
        /* near misses */
        EQ(agenda_password_verify(phc, pws[i], n - 1), 0);
        EQ(verify_str(phc, "wrong password"), 0);
        /* a fresh salt each time */
        EQ(agenda_password_hash(&cheap, pws[i], n, again), 0);
        EQ(strcmp(phc, again) != 0, 1);
        EQ(agenda_password_verify(again, pws[i], n), 1);
    }
}

static void wrong_passwords(void **state)
{
    char phc[AGENDA_PASSWORD_HASH_LEN];

    (void)state;
    ROW("wrong passwords");
    EQ(agenda_password_hash(&cheap, "Secret-Passw0rd", 15, phc), 0);
    EQ(verify_str(phc, "Secret-Passw0rd"), 1);
    EQ(verify_str(phc, "secret-Passw0rd"), 0);
    EQ(verify_str(phc, "Secret-Passw0rd "), 0);
    EQ(verify_str(phc, ""), 0);
    EQ(agenda_password_verify(phc, NULL, 0), 0);
    /* longer than any password that can have been hashed */
    {
        char big[AGENDA_PASSWORD_MAX + 1];

        memset(big, 'a', sizeof big);
        EQ(agenda_password_verify(phc, big, sizeof big), 0);
    }
}

static void longest_password(void **state)
{
    char pw[AGENDA_PASSWORD_MAX + 1], phc[AGENDA_PASSWORD_HASH_LEN];

    (void)state;
    ROW("longest");
    memset(pw, 'z', sizeof pw);
    EQ(agenda_password_hash(&cheap, pw, AGENDA_PASSWORD_MAX, phc), 0);
    EQ(agenda_password_verify(phc, pw, AGENDA_PASSWORD_MAX), 1);
    EQ(agenda_password_verify(phc, pw, AGENDA_PASSWORD_MAX - 1), 0);
    EQ(agenda_password_hash(&cheap, pw, AGENDA_PASSWORD_MAX + 1, phc), -1);
    EQ(phc[0], '\0');
    EQ(agenda_password_hash(&cheap, pw, AGENDA_PASSWORD_MIN - 1, phc), -1);
    EQ(agenda_password_hash(&cheap, "tab\there12", 10, phc), -1);
}

static void hash_refuses_bad_costs(void **state)
{
    static const struct agenda_password_cost bad[] = {
        {256, 0, 1},     /* no pass */
        {256, 1, 0},     /* no lane */
        {15, 1, 2},      /* m < 8 * p */
        {1048577, 1, 1}, /* above our 1 GiB bound */
        {256, 17, 1},
        {256, 1, 17},
    };
    char phc[AGENDA_PASSWORD_HASH_LEN];
    size_t i;

    (void)state;
    for (i = 0; i < COUNT(bad); i++) {
        ROW("cost %zu", i);
        EQ(agenda_password_hash(&bad[i], "12345678", 8, phc), -1);
    }
    ROW("NULL cost and output");
    EQ(agenda_password_hash(NULL, "12345678", 8, phc), -1);
    EQ(agenda_password_hash(&cheap, "12345678", 8, NULL), -1);
}

static void several_lanes(void **state)
{
    const struct agenda_password_cost c = {64, 1, 4};
    char phc[AGENDA_PASSWORD_HASH_LEN];

    (void)state;
    ROW("p = 4");
    EQ(agenda_password_hash(&c, "four lanes", 10, phc), 0);
    EQ(agenda_password_hash_valid(phc), true);
    EQ(verify_str(phc, "four lanes"), 1);
    EQ(verify_str(phc, "five lanes"), 0);
}

/* The Argon2 reference implementation's argon2id vectors. */
static void known_answers(void **state)
{
    static const char *const kat[] = {
        "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$"
        "nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4",
        "$argon2id$v=19$m=256,t=2,p=2$c29tZXNhbHQ$"
        "bQk8UB/VmZZF4Oo79iDXuL5/0ttZwg2f/5U52iv1cDc",
        "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$"
        "CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
    };
    size_t i;

    (void)state;
    for (i = 0; i < COUNT(kat); i++) {
        ROW("vector %zu", i);
        EQ(verify_str(kat[i], "password"), 1);
        EQ(verify_str(kat[i], "passwore"), 0);
    }
}

/* ---- malformed hashes ---------------------------------------------------- */

#define SALT "c29tZXNhbHQ"
#define TAG "nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"

static const char *const malformed[] = {
    "",
    "$",
    "password",
    "$argon2id$",
    "$argon2id$v=19$",
    "$argon2id$v=19$m=256,t=2,p=1$",
    "$argon2id$v=19$m=256,t=2,p=1$" SALT,
    "$argon2id$v=19$m=256,t=2,p=1$" SALT "$",
    "$argon2id$v=19$m=256,t=2,p=1$" SALT "$" TAG "$",
    "$argon2id$v=19$m=256,t=2,p=1$" SALT "$" TAG "=",
    "$argon2id$v=19$m=256,t=2,p=1$" SALT "=$" TAG,
    "$argon2id$v=19$m=256,t=2,p=1$" SALT "$" TAG " ",
    "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbH-$" TAG,   /* base64url '-' */
    "$argon2id$v=19$m=256,t=2,p=1$c29tZX$" TAG,        /* salt < 8 bytes */
    "$argon2id$v=19$m=256,t=2,p=1$" SALT "$AAAAAAAAAAAAAAAAAAAA", /* < 16 */
    "$argon2id$v=19$m=256,t=2,p=1$" SALT "$AA" TAG,    /* 45 % 4 == 1 */
    "$argon2i$v=19$m=256,t=2,p=1$" SALT "$" TAG,
    "$argon2d$v=19$m=256,t=2,p=1$" SALT "$" TAG,
    "$argon2ID$v=19$m=256,t=2,p=1$" SALT "$" TAG,
    "$argon2id$v=16$m=256,t=2,p=1$" SALT "$" TAG,
    "$argon2id$m=256,t=2,p=1$" SALT "$" TAG,           /* no version */
    "$argon2id$v=19$m=0256,t=2,p=1$" SALT "$" TAG,
    "$argon2id$v=19$m=0,t=2,p=1$" SALT "$" TAG,
    "$argon2id$v=19$m=256,t=0,p=1$" SALT "$" TAG,
    "$argon2id$v=19$m=256,t=2,p=0$" SALT "$" TAG,
    "$argon2id$v=19$m=256,t=2,p=33$" SALT "$" TAG,     /* m < 8 * p */
    "$argon2id$v=19$m=-256,t=2,p=1$" SALT "$" TAG,
    "$argon2id$v=19$m=256,p=1,t=2$" SALT "$" TAG,      /* order */
    "$argon2id$v=19$m=256,t=2$" SALT "$" TAG,
    "$argon2id$v=19$m=256,t=2,p=1,k=1$" SALT "$" TAG,
    "$argon2id$v=19$m=4194304,t=2,p=1$" SALT "$" TAG,  /* 4 GiB */
    "$argon2id$v=19$m=9999999999,t=2,p=1$" SALT "$" TAG,
    "$argon2id$v=19$m=256,t=100,p=1$" SALT "$" TAG,
    "$argon2id$v=19$m=256,t=2,p=1$" SALT "$" TAG "\n",
    "$scrypt$ln=15,r=8,p=1$" SALT "$" TAG, /* valid for the shard */
};

static void malformed_hashes(void **state)
{
    char big[300], salt64[87];
    size_t i;

    (void)state;
    for (i = 0; i < COUNT(malformed); i++) {
        ROW("malformed %zu: %s", i, malformed[i]);
        EQ(verify_str(malformed[i], "password"), -1);
    }
    ROW("NULL");
    EQ(agenda_password_verify(NULL, "password", 8), -1);

    ROW("too long");
    /* a 64-byte salt is allowed, but makes the string 159 bytes */
    memset(salt64, 'A', 86);
    salt64[86] = '\0';
    snprintf(big, sizeof big, "$argon2id$v=19$m=256,t=2,p=1$%s$%s", salt64,
             TAG);
    EQ(verify_str(big, "password"), -1);

    /* the control: the same text, well formed, verifies */
    ROW("control");
    EQ(verify_str("$argon2id$v=19$m=256,t=2,p=1$" SALT "$" TAG, "password"),
       1);
    /* well formed but made up: no match, not malformed */
    EQ(verify_str("$argon2id$v=19$m=8,t=1,p=1$" SALT
                  "$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                  "password"),
       0);
}

/* ---- the default cost ---------------------------------------------------- */

static double seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void default_cost(void **state)
{
    struct agenda_password_cost c;
    char phc[AGENDA_PASSWORD_HASH_LEN];
    double t0, t1, t2;

    (void)state;
    ROW("default");
    agenda_password_cost_default(&c);
    EQ(c.m_kib, 19456);
    EQ(c.t, 2);
    EQ(c.p, 1);
    t0 = seconds();
    EQ(agenda_password_hash(&c, "correct horse battery staple", 28, phc), 0);
    t1 = seconds();
    assert_true(strncmp(phc, "$argon2id$v=19$m=19456,t=2,p=1$", 31) == 0);
    EQ(agenda_password_hash_valid(phc), true);
    EQ(verify_str(phc, "correct horse battery staple"), 1);
    t2 = seconds();
    EQ(verify_str(phc, "correct horse battery stapler"), 0);
    print_message("default cost: hash %.1f ms, verify %.1f ms\n",
                  (t1 - t0) * 1e3, (t2 - t1) * 1e3);
}

static int clear_row(void **state)
{
    (void)state;
    snprintf(row, sizeof row, "(none)");
    return 0;
}

#define TEST(f) cmocka_unit_test_setup(f, clear_row)

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(acceptable_table),
        TEST(acceptable_length_limits),
        TEST(round_trip),
        TEST(wrong_passwords),
        TEST(longest_password),
        TEST(hash_refuses_bad_costs),
        TEST(several_lanes),
        TEST(known_answers),
        TEST(malformed_hashes),
        TEST(default_cost),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

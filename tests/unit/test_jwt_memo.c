/*
 * test_jwt_memo.c — the memo of verified tokens
 * (ngx_agenda_module/lib/agenda_jwt_memo.h): it answers exactly what a
 * full verification would, at any time, for any bytes, and only spares
 * the work.  HS256 with a fixed clock (NOW); the counters show which path
 * answered.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agenda_jwt.h"
#include "agenda_jwt_memo.h"

#define NOW INT64_C(1700000000)
#define TTL 900
#define LEEWAY 30

static const char secret[] = "0123456789abcdef0123456789abcdef";
static const char other_secret[] = "fedcba9876543210fedcba9876543210";

static struct agenda_jwt_config config(const char *key)
{
    struct agenda_jwt_config c = {
        .alg = AGENDA_JWT_HS256,
        .sign_key = (const unsigned char *)key,
        .sign_key_len = strlen(key),
        .verify_key = (const unsigned char *)secret,
        .verify_key_len = strlen(secret),
        .issuer = "agenda",
        .audience = "agenda-api",
        .ttl_s = TTL,
        .leeway_s = LEEWAY,
    };
    return c;
}

static char *issue(const char *sub, uint64_t tv, int64_t at, const char *key)
{
    struct agenda_jwt_config c = config(key);
    char *tok = NULL;

    assert_int_equal(agenda_jwt_issue(&c, sub, "user", tv, at,
                                      "memo-test-jti-0123", &tok),
                     AGENDA_JWT_OK);
    return tok;
}

/* A memo of `slots` entries (free() drops it: it is its own memory). */
static struct agenda_jwt_memo *memo_new(unsigned slots)
{
    struct agenda_jwt_memo *m;

    m = agenda_jwt_memo_init(malloc(agenda_jwt_memo_bytes(slots)), slots);
    assert_non_null(m);
    return m;
}

/* The first len bytes of tok, verified through m. */
static int verify_n(struct agenda_jwt_memo *m, const char *tok, size_t len,
                    int64_t now, struct agenda_jwt_claims *cl)
{
    struct agenda_jwt_config c = config(secret);

    return agenda_jwt_verify_memo(&c, m, tok, len, now, cl);
}

static int verify(struct agenda_jwt_memo *m, const char *tok, int64_t now,
                  struct agenda_jwt_claims *cl)
{
    return verify_n(m, tok, strlen(tok), now, cl);
}

static void expect_stat(const struct agenda_jwt_memo *m,
                        unsigned long long hits, unsigned long long misses,
                        unsigned long long stores)
{
    struct agenda_jwt_memo_stat st;

    agenda_jwt_memo_stat(m, &st);
    assert_int_equal(st.hits, hits);
    assert_int_equal(st.misses, misses);
    assert_int_equal(st.stores, stores);
}

/* The second request with a token is answered from the memo with the same
 * claims a full verification gives. */
static void hit_gives_the_same_claims(void **state)
{
    struct agenda_jwt_memo *m = memo_new(64);
    struct agenda_jwt_claims full, first, second;
    struct agenda_jwt_config c = config(secret);
    char *tok = issue("alice", 7, NOW, secret);

    (void)state;
    assert_int_equal(agenda_jwt_verify(&c, tok, strlen(tok), NOW, &full),
                     AGENDA_JWT_OK);
    assert_int_equal(verify(m, tok, NOW, &first), AGENDA_JWT_OK);
    expect_stat(m, 0, 1, 1);
    assert_int_equal(verify(m, tok, NOW + 10, &second), AGENDA_JWT_OK);
    expect_stat(m, 1, 1, 1);
    assert_memory_equal(&full, &first, sizeof full);
    assert_memory_equal(&full, &second, sizeof full);
    assert_string_equal(second.sub, "alice");
    assert_int_equal(second.token_version, 7);
    free(tok);
    free(m);
}

/* A remembered token expires exactly when a full verification says so,
 * and is then forgotten; one presented before its nbf is refused too. */
static void hit_checks_the_clock(void **state)
{
    struct agenda_jwt_memo *m = memo_new(64);
    struct agenda_jwt_claims cl;
    char *tok = issue("alice", 1, NOW, secret);
    int64_t last_ok = NOW + TTL + LEEWAY - 1;

    (void)state;
    assert_int_equal(verify(m, tok, NOW, &cl), AGENDA_JWT_OK);
    assert_int_equal(verify(m, tok, last_ok, &cl), AGENDA_JWT_OK);
    assert_int_equal(verify(m, tok, NOW - LEEWAY, &cl), AGENDA_JWT_OK);
    expect_stat(m, 2, 1, 1);
    assert_int_equal(verify(m, tok, NOW - LEEWAY - 1, &cl),
                     AGENDA_JWT_NOT_YET_VALID);
    assert_string_equal(cl.sub, "");
    /* not valid yet is not a reason to forget it... */
    expect_stat(m, 3, 1, 1);
    assert_int_equal(verify(m, tok, last_ok + 1, &cl),
                     AGENDA_JWT_EXPIRED);
    assert_string_equal(cl.sub, "");
    expect_stat(m, 4, 1, 1);
    /* ...but expired is: the next call verifies in full, and still fails */
    assert_int_equal(verify(m, tok, last_ok + 1, &cl),
                     AGENDA_JWT_EXPIRED);
    expect_stat(m, 4, 2, 1);
    free(tok);
    free(m);
}

/* Refused tokens are never remembered, and bytes that differ from a
 * remembered token in one place are not taken for it: one slot, so every
 * token is compared with the remembered one. */
static void only_exact_valid_tokens_are_remembered(void **state)
{
    struct agenda_jwt_memo *m = memo_new(1);
    struct agenda_jwt_claims cl;
    char *tok = issue("alice", 1, NOW, secret);
    char *forged = issue("alice", 1, NOW, other_secret);
    char *flipped = strdup(tok);
    size_t n = strlen(tok);

    (void)state;
    assert_non_null(flipped);
    assert_int_equal(verify(m, forged, NOW, &cl),
                     AGENDA_JWT_BAD_SIGNATURE);
    assert_int_equal(verify(m, forged, NOW, &cl),
                     AGENDA_JWT_BAD_SIGNATURE);
    expect_stat(m, 0, 2, 0);

    assert_int_equal(verify(m, tok, NOW, &cl), AGENDA_JWT_OK);
    /* the same length, one signature character changed */
    flipped[n - 2] = flipped[n - 2] == 'A' ? 'B' : 'A';
    assert_int_equal(verify(m, flipped, NOW, &cl),
                     AGENDA_JWT_BAD_SIGNATURE);
    /* a prefix of a remembered token (its signature no longer decodes) */
    assert_int_equal(verify_n(m, tok, n - 1, NOW, &cl), AGENDA_JWT_MALFORMED);
    expect_stat(m, 0, 5, 1);
    /* neither took the slot: the token itself is still remembered */
    assert_int_equal(verify(m, tok, NOW, &cl), AGENDA_JWT_OK);
    expect_stat(m, 1, 5, 1);
    free(tok);
    free(forged);
    free(flipped);
    free(m);
}

/* Two tokens competing for one slot: each answer is still its own. */
static void collisions_evict_but_never_mix(void **state)
{
    struct agenda_jwt_memo *m = memo_new(1);
    struct agenda_jwt_claims cl;
    char *ta = issue("alice", 1, NOW, secret);
    char *tb = issue("bobby", 2, NOW, secret);

    (void)state;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(verify(m, ta, NOW, &cl), AGENDA_JWT_OK);
        assert_string_equal(cl.sub, "alice");
        assert_int_equal(verify(m, tb, NOW, &cl), AGENDA_JWT_OK);
        assert_string_equal(cl.sub, "bobby");
        assert_int_equal(cl.token_version, 2);
    }
    expect_stat(m, 0, 6, 6);
    assert_int_equal(verify(m, tb, NOW, &cl), AGENDA_JWT_OK);
    expect_stat(m, 1, 6, 6);
    free(ta);
    free(tb);
    free(m);
}

/* No memo is a plain verification; sizes out of range are refused. */
static void without_memo_and_bad_sizes(void **state)
{
    struct agenda_jwt_claims cl;
    char *tok = issue("alice", 1, NOW, secret);
    char dummy[8];

    (void)state;
    assert_int_equal(verify(NULL, tok, NOW, &cl), AGENDA_JWT_OK);
    assert_string_equal(cl.sub, "alice");
    assert_int_equal(verify(NULL, tok, NOW + TTL + LEEWAY, &cl),
                     AGENDA_JWT_EXPIRED);
    assert_int_equal(agenda_jwt_memo_bytes(0), 0);
    assert_int_equal(agenda_jwt_memo_bytes((1u << 20) + 1), 0);
    assert_true(agenda_jwt_memo_bytes(1) > AGENDA_JWT_MEMO_TOKEN_MAX);
    assert_null(agenda_jwt_memo_init(NULL, 4));
    assert_null(agenda_jwt_memo_init(dummy, 0));
    free(tok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hit_gives_the_same_claims),
        cmocka_unit_test(hit_checks_the_clock),
        cmocka_unit_test(only_exact_valid_tokens_are_remembered),
        cmocka_unit_test(collisions_evict_but_never_mix),
        cmocka_unit_test(without_memo_and_bad_sizes),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * fuzz_jwt.c — libFuzzer target for token verification (agenda_jwt.h).
 *
 * Every input is verified, as a bearer token, under an HS256 and an ES256
 * configuration (the bytes are copied into a heap block of exactly their
 * length, so AddressSanitizer catches any read past it: the token is not
 * NUL-terminated).  Random bytes never carry a valid signature, so inputs
 * that begin with '{' are also turned into a correctly HS256-signed token
 * with the input as its payload (or, when it contains a 0x01 byte, as its
 * header, then payload) to reach the header and claim checks behind the
 * signature.  Beyond "does not crash", for every accepted token:
 *   - the claims are well formed (sub, role, jti, tv, iat <= nbf < exp,
 *     a lifetime of at most a day, not expired at NOW);
 *   - the other configuration refuses it (one algorithm per config);
 *   - ES256 with the public key parsed once (agenda_jwt_sig.h) answers
 *     exactly as libjwt alone does;
 *   - verify is deterministic (the same answer twice);
 *   - verifying through the token memo (agenda_jwt_memo.h, one memo kept
 *     across inputs, so slots collide) answers exactly as verify does,
 *     when the token is new to it and when it is remembered, and a day
 *     later says expired.
 * Any violation aborts.  The keys are test keys, fixed so that the seed
 * corpus (tokens issued with them) stays valid.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "agenda_jwt.h"
#include "agenda_jwt_memo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,          \
                    __LINE__, #cond);                                       \
            abort();                                                        \
        }                                                                   \
    } while (0)

#define NOW INT64_C(1700000000)

static const char hs_secret[] = "fuzz-secret-0123456789abcdefghij";

static const char ec_priv[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgc95YG39Clbxk5ehr\n"
    "F0QfhG7vY3p97nWh33tyJdFGTIihRANCAATd35hN1WCAZK4LB1xmMyAYl2eQt1uw\n"
    "Zghw5bxezFlD9cxyEzaLNpJCiBSAxMDm8IB9/Ka9rqsKJWH8o53ul85+\n"
    "-----END PRIVATE KEY-----\n";

static const char ec_pub[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE3d+YTdVggGSuCwdcZjMgGJdnkLdb\n"
    "sGYIcOW8XsxZQ/XMchM2izaSQogUgMTA5vCAffymva6rCiVh/KOd7pfOfg==\n"
    "-----END PUBLIC KEY-----\n";

static struct agenda_jwt_config hs_config(void)
{
    struct agenda_jwt_config c = {
        .alg = AGENDA_JWT_HS256,
        .sign_key = (const unsigned char *)hs_secret,
        .sign_key_len = sizeof hs_secret - 1,
        .verify_key = (const unsigned char *)hs_secret,
        .verify_key_len = sizeof hs_secret - 1,
        .issuer = "agenda",
        .audience = "agenda-api",
        .ttl_s = 900,
        .leeway_s = 30,
    };

    return c;
}

static struct agenda_jwt_config es_config(void)
{
    struct agenda_jwt_config c = hs_config();

    c.alg = AGENDA_JWT_ES256;
    c.sign_key = (const unsigned char *)ec_priv;
    c.sign_key_len = sizeof ec_priv - 1;
    c.verify_key = (const unsigned char *)ec_pub;
    c.verify_key_len = sizeof ec_pub - 1;
    return c;
}

/* es_config() with its public key parsed (once; the process ends). */
static struct agenda_jwt_config es_parsed_config(void)
{
    static EVP_PKEY *key;
    struct agenda_jwt_config c = es_config();

    if (key == NULL) {
        key = agenda_jwt_key_load(&c);
        CHECK(key != NULL);
    }
    c.verify_pkey = key;
    return c;
}

static void check_claims(const struct agenda_jwt_claims *c)
{
    size_t sub = strlen(c->sub), jti = strlen(c->jti), i;

    CHECK(sub >= 3 && sub <= 32);
    for (i = 0; i < sub; i++)
        CHECK(strchr("abcdefghijklmnopqrstuvwxyz0123456789_.-", c->sub[i])
              != NULL);
    CHECK(jti >= 16 && jti <= 64);
    CHECK(strcmp(c->role, "user") == 0 || strcmp(c->role, "admin") == 0);
    CHECK(c->token_version >= 1);
    CHECK(c->iat <= c->nbf && c->nbf < c->exp);
    CHECK(c->exp - c->iat <= 24 * 3600);
    CHECK(NOW < c->exp + 30);
    CHECK(NOW >= c->nbf - 30 && NOW >= c->iat - 30);
}

/* One small memo for the whole run (never freed: the process ends). */
static struct agenda_jwt_memo *memo(void)
{
    static struct agenda_jwt_memo *m;

    if (m == NULL) {
        m = agenda_jwt_memo_init(malloc(agenda_jwt_memo_bytes(4)), 4);
        CHECK(m != NULL);
    }
    return m;
}

static void check_memo(const struct agenda_jwt_config *cfg, const char *tok,
                       size_t len, int plain,
                       const struct agenda_jwt_claims *plain_claims)
{
    struct agenda_jwt_claims c;

    for (int round = 0; round < 2; round++) {
        CHECK(agenda_jwt_verify_memo(cfg, memo(), tok, len, NOW, &c)
              == plain);
        if (plain == AGENDA_JWT_OK)
            CHECK(memcmp(&c, plain_claims, sizeof c) == 0);
    }
    if (plain == AGENDA_JWT_OK) {
        /* a remembered token is valid up to the last second a full
         * verification allows, and not one second more */
        int64_t end = plain_claims->exp + (int64_t)cfg->leeway_s;
        CHECK(agenda_jwt_verify_memo(cfg, memo(), tok, len, end - 1, &c)
              == AGENDA_JWT_OK);
        CHECK(agenda_jwt_verify_memo(cfg, memo(), tok, len, end, &c)
              == AGENDA_JWT_EXPIRED);
    }
}

static void check_token(const char *tok, size_t len)
{
    struct agenda_jwt_config hs = hs_config(), es = es_config();
    struct agenda_jwt_config es_parsed = es_parsed_config();
    struct agenda_jwt_claims c, again;
    int rh, re;

    rh = agenda_jwt_verify(&hs, tok, len, NOW, &c);
    CHECK(rh >= 0 && rh < AGENDA_JWT_ERR__COUNT);
    CHECK(rh != AGENDA_JWT_BAD_KEY && rh != AGENDA_JWT_NOMEM);
    if (rh == AGENDA_JWT_OK) {
        check_claims(&c);
        CHECK(agenda_jwt_verify(&hs, tok, len, NOW, &again) == rh);
        CHECK(memcmp(&c, &again, sizeof c) == 0);
    }
    check_memo(&hs, tok, len, rh, &c);
    re = agenda_jwt_verify(&es, tok, len, NOW, &c);
    CHECK(re >= 0 && re < AGENDA_JWT_ERR__COUNT);
    CHECK(re != AGENDA_JWT_BAD_KEY && re != AGENDA_JWT_NOMEM);
    if (re == AGENDA_JWT_OK)
        check_claims(&c);
    CHECK(agenda_jwt_verify(&es_parsed, tok, len, NOW, &again) == re);
    CHECK(rh != AGENDA_JWT_OK || re != AGENDA_JWT_OK);
}

static size_t b64url(const uint8_t *s, size_t n, char *out)
{
    static const char a[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t i, o = 0;

    for (i = 0; i + 2 < n; i += 3) {
        out[o++] = a[s[i] >> 2];
        out[o++] = a[((s[i] & 3) << 4) | (s[i + 1] >> 4)];
        out[o++] = a[((s[i + 1] & 15) << 2) | (s[i + 2] >> 6)];
        out[o++] = a[s[i + 2] & 63];
    }
    if (n - i == 1) {
        out[o++] = a[s[i] >> 2];
        out[o++] = a[(s[i] & 3) << 4];
    } else if (n - i == 2) {
        out[o++] = a[s[i] >> 2];
        out[o++] = a[((s[i] & 3) << 4) | (s[i + 1] >> 4)];
        out[o++] = a[(s[i + 1] & 15) << 2];
    }
    return o;
}

/* header.payload signed with the HS256 secret; tok has room for it. */
static size_t sign_hs256(const uint8_t *h, size_t hl, const uint8_t *p,
                         size_t pl, char *tok)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    size_t n = b64url(h, hl, tok);

    tok[n++] = '.';
    n += b64url(p, pl, tok + n);
    CHECK(HMAC(EVP_sha256(), hs_secret, (int)(sizeof hs_secret - 1),
               (const unsigned char *)tok, n, mac, &mac_len) != NULL);
    tok[n++] = '.';
    n += b64url(mac, mac_len, tok + n);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    char *tok;
    const uint8_t *sep;
    size_t n;

    if (size > 2 * AGENDA_JWT_MAX_TOKEN)
        return 0;
    tok = malloc(size > 0 ? size : 1);
    CHECK(tok != NULL);
    memcpy(tok, data, size);
    check_token(tok, size);
    free(tok);

    if (size == 0 || data[0] != '{')
        return 0;
    tok = malloc(2 * size + 128);
    CHECK(tok != NULL);
    sep = memchr(data, 0x01, size);
    if (sep != NULL)
        n = sign_hs256(data, (size_t)(sep - data), sep + 1,
                       size - (size_t)(sep - data) - 1, tok);
    else
        n = sign_hs256((const uint8_t *)header, sizeof header - 1, data,
                       size, tok);
    check_token(tok, n);
    free(tok);
    return 0;
}

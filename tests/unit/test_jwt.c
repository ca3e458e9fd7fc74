/*
 * test_jwt.c — access tokens (ngx_agenda_module/lib/agenda_jwt.h).
 *
 * Round trips for every algorithm, then a table of attacks, each a token
 * built by hand (header and payload JSON as written, signed as the row
 * says) with the exact error expected.  RSA and EC keys are generated
 * here, in memory, once per run.  The clock is fixed: NOW = 1700000000.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "agenda_jwt.h"
#include "agenda_jwt_sig.h"

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
#define ERR_EQ(a, b)                                                        \
    do {                                                                    \
        int a_ = (a), b_ = (b);                                             \
        if (a_ != b_)                                                       \
            fail_msg("%s:%d: %s is %d (%s), want %d (%s), for row %s",      \
                     __FILE__, __LINE__, #a, a_, agenda_jwt_strerror(a_),   \
                     b_, agenda_jwt_strerror(b_), row);                     \
    } while (0)
#define STR_EQ(a, b)                                                        \
    do {                                                                    \
        if (strcmp((a), (b)) != 0)                                          \
            fail_msg("%s:%d: \"%s\", want \"%s\", for row %s", __FILE__,   \
                     __LINE__, (a), (b), row);                              \
    } while (0)

#define NOW INT64_C(1700000000)
#define TTL 900
#define LEEWAY 30
#define JTI "0123456789abcdef_-XYZ"

/* 32 bytes exactly: the shortest secret HS256 accepts */
static const char secret[] = "0123456789abcdef0123456789abcdef";
static const char secret64[] =
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/* Generated keys, PEM, NUL-terminated (lengths exclude the NUL). */
static char *ec_priv, *ec_pub, *rsa_priv, *rsa_pub;

/* The public keys parsed (agenda_jwt_key_load), and whether config()
 * hands them to verification: the tests marked PARSED run both ways. */
static EVP_PKEY *ec_parsed, *rsa_parsed;
static int use_parsed;

static char *pem_of(EVP_PKEY *k, int private_key)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data, *out;
    long n;

    assert_non_null(b);
    if (private_key)
        assert_int_equal(
            PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL), 1);
    else
        assert_int_equal(PEM_write_bio_PUBKEY(b, k), 1);
    n = BIO_get_mem_data(b, &data);
    assert_true(n > 0);
    out = malloc((size_t)n + 1);
    assert_non_null(out);
    memcpy(out, data, (size_t)n);
    out[n] = '\0';
    BIO_free(b);
    return out;
}

static struct agenda_jwt_config config(enum agenda_jwt_alg alg);

static int make_keys(void **state)
{
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);

    (void)state;
    if (ec == NULL || rsa == NULL)
        return -1;
    ec_priv = pem_of(ec, 1);
    ec_pub = pem_of(ec, 0);
    rsa_priv = pem_of(rsa, 1);
    rsa_pub = pem_of(rsa, 0);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(rsa);
    {
        struct agenda_jwt_config e = config(AGENDA_JWT_ES256);
        struct agenda_jwt_config r = config(AGENDA_JWT_RS256);

        ec_parsed = agenda_jwt_key_load(&e);
        rsa_parsed = agenda_jwt_key_load(&r);
    }
    if (ec_parsed == NULL || rsa_parsed == NULL)
        return -1;
    return 0;
}

static int free_keys(void **state)
{
    (void)state;
    free(ec_priv);
    free(ec_pub);
    free(rsa_priv);
    free(rsa_pub);
    EVP_PKEY_free(ec_parsed);
    EVP_PKEY_free(rsa_parsed);
    return 0;
}

static int parsed_on(void **state)
{
    (void)state;
    use_parsed = 1;
    snprintf(row, sizeof row, "(none)");
    return 0;
}

static int parsed_off(void **state)
{
    (void)state;
    use_parsed = 0;
    return 0;
}

static struct agenda_jwt_config config(enum agenda_jwt_alg alg)
{
    struct agenda_jwt_config c = {
        .alg = alg,
        .issuer = "agenda",
        .audience = "agenda-api",
        .ttl_s = TTL,
        .leeway_s = LEEWAY,
    };
    const char *sign = secret, *verify = secret;

    if (alg == AGENDA_JWT_HS384 || alg == AGENDA_JWT_HS512)
        sign = verify = secret64;
    else if (alg == AGENDA_JWT_RS256) {
        sign = rsa_priv;
        verify = rsa_pub;
    } else if (alg == AGENDA_JWT_ES256) {
        sign = ec_priv;
        verify = ec_pub;
    }
    c.sign_key = (const unsigned char *)sign;
    c.sign_key_len = strlen(sign);
    c.verify_key = (const unsigned char *)verify;
    c.verify_key_len = strlen(verify);
    if (use_parsed && alg == AGENDA_JWT_RS256)
        c.verify_pkey = rsa_parsed;
    else if (use_parsed && alg == AGENDA_JWT_ES256)
        c.verify_pkey = ec_parsed;
    return c;
}

static int verify_str(const struct agenda_jwt_config *c, const char *tok,
                      int64_t now, struct agenda_jwt_claims *claims)
{
    return agenda_jwt_verify(c, tok, strlen(tok), now, claims);
}

/* ---- hand-made tokens ---------------------------------------------------- */

static void b64url(const void *data, size_t n, char *out)
{
    static const char a[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const unsigned char *s = data;
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
    out[o] = '\0';
}

enum sig_kind {
    SIG_HS256,     /* HMAC-SHA256 with the row's key */
    SIG_HS512,
    SIG_EMPTY,     /* "header.payload." */
    SIG_JUNK,      /* a valid base64url segment that is no signature */
};

/* header.payload.signature, malloc'd. */
static char *make_token(const char *header, const char *payload,
                        enum sig_kind sig, const char *key)
{
    size_t hl = strlen(header), pl = strlen(payload);
    char *t = malloc(2 * (hl + pl) + 256);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    size_t n;

    assert_non_null(t);
    b64url(header, hl, t);
    n = strlen(t);
    t[n++] = '.';
    b64url(payload, pl, t + n);
    n = strlen(t);
    switch (sig) {
    case SIG_HS256:
    case SIG_HS512:
        assert_non_null(HMAC(sig == SIG_HS256 ? EVP_sha256() : EVP_sha512(),
                             key, (int)strlen(key), (unsigned char *)t, n,
                             mac, &mac_len));
        t[n++] = '.';
        b64url(mac, mac_len, t + n);
        break;
    case SIG_EMPTY:
        strcpy(t + n, ".");
        break;
    case SIG_JUNK:
        strcpy(t + n, ".c2lnbmF0dXJl");
        break;
    }
    return t;
}

/* ---- round trips --------------------------------------------------------- */

static void round_trip_every_alg(void **state)
{
    static const enum agenda_jwt_alg all[] = {
        AGENDA_JWT_HS256, AGENDA_JWT_HS384, AGENDA_JWT_HS512,
        AGENDA_JWT_RS256, AGENDA_JWT_ES256,
    };
    size_t i;

    (void)state;
    for (i = 0; i < COUNT(all); i++) {
        struct agenda_jwt_config c = config(all[i]);
        struct agenda_jwt_claims cl;
        char *tok = NULL;

        ROW("alg %d", (int)all[i]);
        ERR_EQ(agenda_jwt_issue(&c, "alice.b-1_", "admin", 7, NOW, JTI,
                                &tok),
               AGENDA_JWT_OK);
        assert_non_null(tok);
        ERR_EQ(verify_str(&c, tok, NOW, &cl), AGENDA_JWT_OK);
        STR_EQ(cl.sub, "alice.b-1_");
        STR_EQ(cl.role, "admin");
        STR_EQ(cl.jti, JTI);
        EQ(cl.token_version, 7);
        EQ(cl.iat, NOW);
        EQ(cl.nbf, NOW);
        EQ(cl.exp, NOW + TTL);
        free(tok);
    }
}

static void issued_token_has_plain_header(void **state)
{
    struct agenda_jwt_config c = config(AGENDA_JWT_HS256);
    char *tok = NULL;

    (void)state;
    ERR_EQ(agenda_jwt_issue(&c, "alice", "user", 1, NOW, JTI, &tok),
           AGENDA_JWT_OK);
    /* base64url of {"alg":"HS256","typ":"JWT"} as libjwt writes it */
    assert_true(strncmp(tok, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.", 37)
                == 0);
    free(tok);
}

/* A token of one algorithm is refused by every other configuration. */
static void tokens_do_not_cross_algorithms(void **state)
{
    static const enum agenda_jwt_alg all[] = {
        AGENDA_JWT_HS256, AGENDA_JWT_HS384, AGENDA_JWT_HS512,
        AGENDA_JWT_RS256, AGENDA_JWT_ES256,
    };
    size_t i, j;

    (void)state;
    for (i = 0; i < COUNT(all); i++) {
        struct agenda_jwt_config ci = config(all[i]);
        struct agenda_jwt_claims cl;
        char *tok = NULL;

        ERR_EQ(agenda_jwt_issue(&ci, "alice", "user", 1, NOW, JTI, &tok),
               AGENDA_JWT_OK);
        for (j = 0; j < COUNT(all); j++) {
            struct agenda_jwt_config cj = config(all[j]);

            ROW("issued %d, verified %d", (int)all[i], (int)all[j]);
            ERR_EQ(verify_str(&cj, tok, NOW, &cl),
                   i == j ? AGENDA_JWT_OK : AGENDA_JWT_BAD_ALG);
        }
        free(tok);
    }
}

/* ---- the attack table ---------------------------------------------------- */

#define H_HS256 "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
#define H_ES256 "{\"alg\":\"ES256\",\"typ\":\"JWT\"}"
#define P_CLAIMS(extra)                                                     \
    "{\"iss\":\"agenda\",\"aud\":\"agenda-api\",\"sub\":\"alice\","        \
    "\"role\":\"user\",\"jti\":\"" JTI "\",\"tv\":3" extra "}"
#define P_TIMES ",\"iat\":1700000000,\"nbf\":1700000000,\"exp\":1700000900"
#define P_OK P_CLAIMS(P_TIMES)

struct attack {
    const char *name;
    enum agenda_jwt_alg cfg;
    const char *header;
    const char *payload;
    enum sig_kind sig;
    const char *key; /* for SIG_HS*: NULL = the configured HMAC secret */
    int want;
};

/* placeholder keys, resolved in the test (the PEMs are generated) */
static const char EC_PUB[] = "(ec public key)";
static const char RSA_PUB[] = "(rsa public key)";

static const struct attack attacks[] = {
    /* the control row: everything right */
    {"valid", AGENDA_JWT_HS256, H_HS256, P_OK, SIG_HS256, NULL,
     AGENDA_JWT_OK},
    {"valid without typ", AGENDA_JWT_HS256, "{\"alg\":\"HS256\"}", P_OK,
     SIG_HS256, NULL, AGENDA_JWT_OK},
    {"aud array containing ours", AGENDA_JWT_HS256, H_HS256,
     "{\"iss\":\"agenda\",\"aud\":[\"x\",\"agenda-api\"],\"sub\":\"alice\","
     "\"role\":\"user\",\"jti\":\"" JTI "\",\"tv\":3" P_TIMES "}",
     SIG_HS256, NULL, AGENDA_JWT_OK},
    {"unknown claims ignored", AGENDA_JWT_HS256, H_HS256,
     P_CLAIMS(P_TIMES ",\"foo\":{\"bar\":[1,2]}"), SIG_HS256, NULL,
     AGENDA_JWT_OK},

    /* algorithm */
    {"alg none, empty signature", AGENDA_JWT_HS256, "{\"alg\":\"none\"}",
     P_OK, SIG_EMPTY, NULL, AGENDA_JWT_MALFORMED},
    {"alg None, empty signature", AGENDA_JWT_HS256, "{\"alg\":\"None\"}",
     P_OK, SIG_EMPTY, NULL, AGENDA_JWT_MALFORMED},
    {"alg NONE, empty signature", AGENDA_JWT_HS256, "{\"alg\":\"NONE\"}",
     P_OK, SIG_EMPTY, NULL, AGENDA_JWT_MALFORMED},
    {"alg none, any signature", AGENDA_JWT_HS256, "{\"alg\":\"none\"}",
     P_OK, SIG_JUNK, NULL, AGENDA_JWT_BAD_ALG},
    {"alg None, any signature", AGENDA_JWT_HS256, "{\"alg\":\"None\"}",
     P_OK, SIG_JUNK, NULL, AGENDA_JWT_BAD_ALG},
    {"alg NONE, any signature", AGENDA_JWT_HS256, "{\"alg\":\"NONE\"}",
     P_OK, SIG_JUNK, NULL, AGENDA_JWT_BAD_ALG},
    {"alg none, HS256 MAC", AGENDA_JWT_HS256, "{\"alg\":\"none\"}", P_OK,
     SIG_HS256, NULL, AGENDA_JWT_BAD_ALG},
    {"alg HS512 when HS256 configured", AGENDA_JWT_HS256,
     "{\"alg\":\"HS512\",\"typ\":\"JWT\"}", P_OK, SIG_HS512, NULL,
     AGENDA_JWT_BAD_ALG},
    {"alg in lower case", AGENDA_JWT_HS256, "{\"alg\":\"hs256\"}", P_OK,
     SIG_HS256, NULL, AGENDA_JWT_BAD_ALG},
    {"alg missing", AGENDA_JWT_HS256, "{\"typ\":\"JWT\"}", P_OK, SIG_HS256,
     NULL, AGENDA_JWT_BAD_ALG},
    {"alg not a string", AGENDA_JWT_HS256, "{\"alg\":256}", P_OK, SIG_HS256,
     NULL, AGENDA_JWT_BAD_ALG},
    {"HS256 under ES256, MAC keyed with the EC public key",
     AGENDA_JWT_ES256, H_HS256, P_OK, SIG_HS256, EC_PUB,
     AGENDA_JWT_BAD_ALG},
    {"HS256 under RS256, MAC keyed with the RSA public key",
     AGENDA_JWT_RS256, H_HS256, P_OK, SIG_HS256, RSA_PUB,
     AGENDA_JWT_BAD_ALG},
    {"ES256 header, MAC keyed with the EC public key", AGENDA_JWT_ES256,
     H_ES256, P_OK, SIG_HS256, EC_PUB, AGENDA_JWT_BAD_SIGNATURE},

    /* header parameters we refuse */
    {"typ not JWT", AGENDA_JWT_HS256, "{\"alg\":\"HS256\",\"typ\":\"jwt\"}",
     P_OK, SIG_HS256, NULL, AGENDA_JWT_MALFORMED},
    {"kid", AGENDA_JWT_HS256, "{\"alg\":\"HS256\",\"kid\":\"1\"}", P_OK,
     SIG_HS256, NULL, AGENDA_JWT_MALFORMED},
    {"jku", AGENDA_JWT_HS256,
     "{\"alg\":\"HS256\",\"jku\":\"https://evil/k\"}", P_OK, SIG_HS256, NULL,
     AGENDA_JWT_MALFORMED},
    {"jwk", AGENDA_JWT_HS256, "{\"alg\":\"HS256\",\"jwk\":{\"kty\":\"oct\"}}",
     P_OK, SIG_HS256, NULL, AGENDA_JWT_MALFORMED},
    {"x5u", AGENDA_JWT_HS256, "{\"alg\":\"HS256\",\"x5u\":\"https://e/c\"}",
     P_OK, SIG_HS256, NULL, AGENDA_JWT_MALFORMED},
    {"crit", AGENDA_JWT_HS256, "{\"alg\":\"HS256\",\"crit\":[\"exp\"]}",
     P_OK, SIG_HS256, NULL, AGENDA_JWT_MALFORMED},
    {"duplicate alg", AGENDA_JWT_HS256,
     "{\"alg\":\"none\",\"alg\":\"HS256\"}", P_OK, SIG_HS256, NULL,
     AGENDA_JWT_MALFORMED},
    {"header not JSON", AGENDA_JWT_HS256, "alg=HS256", P_OK, SIG_HS256, NULL,
     AGENDA_JWT_MALFORMED},
    {"header an array", AGENDA_JWT_HS256, "[\"HS256\"]", P_OK, SIG_HS256,
     NULL, AGENDA_JWT_MALFORMED},
    {"header trailing garbage", AGENDA_JWT_HS256, H_HS256 "x", P_OK,
     SIG_HS256, NULL, AGENDA_JWT_MALFORMED},

    /* signature */
    {"wrong secret", AGENDA_JWT_HS256, H_HS256, P_OK, SIG_HS256,
     "0123456789abcdef0123456789abcdeX", AGENDA_JWT_BAD_SIGNATURE},
    {"junk signature", AGENDA_JWT_HS256, H_HS256, P_OK, SIG_JUNK, NULL,
     AGENDA_JWT_BAD_SIGNATURE},
    {"junk ES256 signature", AGENDA_JWT_ES256, H_ES256, P_OK, SIG_JUNK,
     NULL, AGENDA_JWT_BAD_SIGNATURE},

    /* payload shape */
    {"payload not JSON", AGENDA_JWT_HS256, H_HS256, "sub=alice", SIG_HS256,
     NULL, AGENDA_JWT_MALFORMED},
    {"payload an array", AGENDA_JWT_HS256, H_HS256, "[1]", SIG_HS256, NULL,
     AGENDA_JWT_MALFORMED},
    {"duplicate sub", AGENDA_JWT_HS256, H_HS256,
     P_CLAIMS(P_TIMES ",\"sub\":\"admin\""), SIG_HS256, NULL,
     AGENDA_JWT_MALFORMED},

    /* issuer and audience */
    {"wrong iss", AGENDA_JWT_HS256, H_HS256,
     "{\"iss\":\"other\",\"aud\":\"agenda-api\",\"sub\":\"alice\","
     "\"role\":\"user\",\"jti\":\"" JTI "\",\"tv\":3" P_TIMES "}",
     SIG_HS256, NULL, AGENDA_JWT_BAD_ISSUER},
    {"wrong aud", AGENDA_JWT_HS256, H_HS256,
     "{\"iss\":\"agenda\",\"aud\":\"agenda\",\"sub\":\"alice\","
     "\"role\":\"user\",\"jti\":\"" JTI "\",\"tv\":3" P_TIMES "}",
     SIG_HS256, NULL, AGENDA_JWT_BAD_AUDIENCE},
    {"aud array without ours", AGENDA_JWT_HS256, H_HS256,
     "{\"iss\":\"agenda\",\"aud\":[\"a\",\"b\"],\"sub\":\"alice\","
     "\"role\":\"user\",\"jti\":\"" JTI "\",\"tv\":3" P_TIMES "}",
     SIG_HS256, NULL, AGENDA_JWT_BAD_AUDIENCE},
    {"aud empty array", AGENDA_JWT_HS256, H_HS256,
     "{\"iss\":\"agenda\",\"aud\":[],\"sub\":\"alice\","
     "\"role\":\"user\",\"jti\":\"" JTI "\",\"tv\":3" P_TIMES "}",
     SIG_HS256, NULL, AGENDA_JWT_BAD_AUDIENCE},
    {"aud array with a number", AGENDA_JWT_HS256, H_HS256,
     "{\"iss\":\"agenda\",\"aud\":[\"agenda-api\",1],\"sub\":\"alice\","
     "\"role\":\"user\",\"jti\":\"" JTI "\",\"tv\":3" P_TIMES "}",
     SIG_HS256, NULL, AGENDA_JWT_BAD_CLAIMS},
    {"missing iss", AGENDA_JWT_HS256, H_HS256,
     "{\"aud\":\"agenda-api\",\"sub\":\"alice\","
     "\"role\":\"user\",\"jti\":\"" JTI "\",\"tv\":3" P_TIMES "}",
     SIG_HS256, NULL, AGENDA_JWT_BAD_CLAIMS},
    {"missing aud", AGENDA_JWT_HS256, H_HS256,
     "{\"iss\":\"agenda\",\"sub\":\"alice\","
     "\"role\":\"user\",\"jti\":\"" JTI "\",\"tv\":3" P_TIMES "}",
     SIG_HS256, NULL, AGENDA_JWT_BAD_CLAIMS},

    /* claims missing or of the wrong type */
    {"missing sub", AGENDA_JWT_HS256, H_HS256,
     "{\"iss\":\"agenda\",\"aud\":\"agenda-api\","
     "\"role\":\"user\",\"jti\":\"" JTI "\",\"tv\":3" P_TIMES "}",
     SIG_HS256, NULL, AGENDA_JWT_BAD_CLAIMS},
    {"missing tv", AGENDA_JWT_HS256, H_HS256,
     "{\"iss\":\"agenda\",\"aud\":\"agenda-api\",\"sub\":\"alice\","
     "\"role\":\"user\",\"jti\":\"" JTI "\"" P_TIMES "}",
     SIG_HS256, NULL, AGENDA_JWT_BAD_CLAIMS},
    {"missing jti", AGENDA_JWT_HS256, H_HS256,
     "{\"iss\":\"agenda\",\"aud\":\"agenda-api\",\"sub\":\"alice\","
     "\"role\":\"user\",\"tv\":3" P_TIMES "}",
     SIG_HS256, NULL, AGENDA_JWT_BAD_CLAIMS},
    {"missing role", AGENDA_JWT_HS256, H_HS256,
     "{\"iss\":\"agenda\",\"aud\":\"agenda-api\",\"sub\":\"alice\","
     "\"jti\":\"" JTI "\",\"tv\":3" P_TIMES "}",
     SIG_HS256, NULL, AGENDA_JWT_BAD_CLAIMS},
    {"missing exp", AGENDA_JWT_HS256, H_HS256,
     P_CLAIMS(",\"iat\":1700000000,\"nbf\":1700000000"), SIG_HS256, NULL,
     AGENDA_JWT_BAD_CLAIMS},
    {"missing iat", AGENDA_JWT_HS256, H_HS256,
     P_CLAIMS(",\"nbf\":1700000000,\"exp\":1700000900"), SIG_HS256, NULL,
     AGENDA_JWT_BAD_CLAIMS},
    {"missing nbf", AGENDA_JWT_HS256, H_HS256,
     P_CLAIMS(",\"iat\":1700000000,\"exp\":1700000900"), SIG_HS256, NULL,
     AGENDA_JWT_BAD_CLAIMS},
    {"exp a real", AGENDA_JWT_HS256, H_HS256,
     P_CLAIMS(",\"iat\":1700000000,\"nbf\":1700000000,"
              "\"exp\":1700000900.0"), SIG_HS256, NULL,
     AGENDA_JWT_BAD_CLAIMS},
    {"exp a string", AGENDA_JWT_HS256, H_HS256,
     P_CLAIMS(",\"iat\":1700000000,\"nbf\":1700000000,"
              "\"exp\":\"1700000900\""), SIG_HS256, NULL,
     AGENDA_JWT_BAD_CLAIMS},
    {"tv zero", AGENDA_JWT_HS256, H_HS256,
     "{\"iss\":\"agenda\",\"aud\":\"agenda-api\",\"sub\":\"alice\","
     "\"role\":\"user\",\"jti\":\"" JTI "\",\"tv\":0" P_TIMES "}",
     SIG_HS256, NULL, AGENDA_JWT_BAD_CLAIMS},
    {"tv negative", AGENDA_JWT_HS256, H_HS256,
     "{\"iss\":\"agenda\",\"aud\":\"agenda-api\",\"sub\":\"alice\","
     "\"role\":\"user\",\"jti\":\"" JTI "\",\"tv\":-1" P_TIMES "}",
     SIG_HS256, NULL, AGENDA_JWT_BAD_CLAIMS},
    {"tv a string", AGENDA_JWT_HS256, H_HS256,
     "{\"iss\":\"agenda\",\"aud\":\"agenda-api\",\"sub\":\"alice\","
     "\"role\":\"user\",\"jti\":\"" JTI "\",\"tv\":\"3\"" P_TIMES "}",
     SIG_HS256, NULL, AGENDA_JWT_BAD_CLAIMS},
    {"role root", AGENDA_JWT_HS256, H_HS256,
     "{\"iss\":\"agenda\",\"aud\":\"agenda-api\",\"sub\":\"alice\","
     "\"role\":\"root\",\"jti\":\"" JTI "\",\"tv\":3" P_TIMES "}",
     SIG_HS256, NULL, AGENDA_JWT_BAD_CLAIMS},
    {"sub not folded", AGENDA_JWT_HS256, H_HS256,
     "{\"iss\":\"agenda\",\"aud\":\"agenda-api\",\"sub\":\"Alice\","
     "\"role\":\"user\",\"jti\":\"" JTI "\",\"tv\":3" P_TIMES "}",
     SIG_HS256, NULL, AGENDA_JWT_BAD_CLAIMS},
    {"sub too long", AGENDA_JWT_HS256, H_HS256,
     "{\"iss\":\"agenda\",\"aud\":\"agenda-api\","
     "\"sub\":\"abcdefghijklmnopqrstuvwxyz0123456\","
     "\"role\":\"user\",\"jti\":\"" JTI "\",\"tv\":3" P_TIMES "}",
     SIG_HS256, NULL, AGENDA_JWT_BAD_CLAIMS},
    {"jti too short", AGENDA_JWT_HS256, H_HS256,
     "{\"iss\":\"agenda\",\"aud\":\"agenda-api\",\"sub\":\"alice\","
     "\"role\":\"user\",\"jti\":\"0123456789abcde\",\"tv\":3" P_TIMES "}",
     SIG_HS256, NULL, AGENDA_JWT_BAD_CLAIMS},
    {"jti with a dot", AGENDA_JWT_HS256, H_HS256,
     "{\"iss\":\"agenda\",\"aud\":\"agenda-api\",\"sub\":\"alice\","
     "\"role\":\"user\",\"jti\":\"0123456789abcdef.\",\"tv\":3" P_TIMES "}",
     SIG_HS256, NULL, AGENDA_JWT_BAD_CLAIMS},
    {"lifetime over a day", AGENDA_JWT_HS256, H_HS256,
     P_CLAIMS(",\"iat\":1700000000,\"nbf\":1700000000,"
              "\"exp\":1700086401"), SIG_HS256, NULL,
     AGENDA_JWT_BAD_CLAIMS},
    {"exp before iat", AGENDA_JWT_HS256, H_HS256,
     P_CLAIMS(",\"iat\":1700000000,\"nbf\":1700000000,"
              "\"exp\":1699999999"), SIG_HS256, NULL,
     AGENDA_JWT_BAD_CLAIMS},
    {"nbf before iat", AGENDA_JWT_HS256, H_HS256,
     P_CLAIMS(",\"iat\":1700000000,\"nbf\":1699999999,"
              "\"exp\":1700000900"), SIG_HS256, NULL,
     AGENDA_JWT_BAD_CLAIMS},
    {"times out of range", AGENDA_JWT_HS256, H_HS256,
     P_CLAIMS(",\"iat\":9223372036854775000,\"nbf\":9223372036854775000,"
              "\"exp\":9223372036854775807"), SIG_HS256, NULL,
     AGENDA_JWT_BAD_CLAIMS},

    /* time, with LEEWAY = 30 at NOW = 1700000000 */
    {"expired", AGENDA_JWT_HS256, H_HS256,
     P_CLAIMS(",\"iat\":1699990000,\"nbf\":1699990000,"
              "\"exp\":1699990900"), SIG_HS256, NULL, AGENDA_JWT_EXPIRED},
    {"expired at exactly exp + leeway", AGENDA_JWT_HS256, H_HS256,
     P_CLAIMS(",\"iat\":1699999070,\"nbf\":1699999070,"
              "\"exp\":1699999970"), SIG_HS256, NULL, AGENDA_JWT_EXPIRED},
    {"valid one second before exp + leeway", AGENDA_JWT_HS256, H_HS256,
     P_CLAIMS(",\"iat\":1699999071,\"nbf\":1699999071,"
              "\"exp\":1699999971"), SIG_HS256, NULL, AGENDA_JWT_OK},
    {"nbf in the future", AGENDA_JWT_HS256, H_HS256,
     P_CLAIMS(",\"iat\":1700000000,\"nbf\":1700000031,"
              "\"exp\":1700000900"), SIG_HS256, NULL,
     AGENDA_JWT_NOT_YET_VALID},
    {"nbf at exactly now + leeway", AGENDA_JWT_HS256, H_HS256,
     P_CLAIMS(",\"iat\":1700000000,\"nbf\":1700000030,"
              "\"exp\":1700000900"), SIG_HS256, NULL, AGENDA_JWT_OK},
    {"iat in the future", AGENDA_JWT_HS256, H_HS256,
     P_CLAIMS(",\"iat\":1700000031,\"nbf\":1700000031,"
              "\"exp\":1700000900"), SIG_HS256, NULL,
     AGENDA_JWT_NOT_YET_VALID},
    {"iat at exactly now + leeway", AGENDA_JWT_HS256, H_HS256,
     P_CLAIMS(",\"iat\":1700000030,\"nbf\":1700000030,"
              "\"exp\":1700000900"), SIG_HS256, NULL, AGENDA_JWT_OK},
};

static void attack_table(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < COUNT(attacks); i++) {
        const struct attack *a = &attacks[i];
        struct agenda_jwt_config c = config(a->cfg);
        struct agenda_jwt_claims cl;
        const char *key = a->key;
        char *tok;

        ROW("\"%s\"", a->name);
        if (key == NULL)
            key = (const char *)c.verify_key;
        else if (key == EC_PUB)
            key = ec_pub;
        else if (key == RSA_PUB)
            key = rsa_pub;
        tok = make_token(a->header, a->payload, a->sig, key);
        memset(&cl, 0xA5, sizeof cl);
        ERR_EQ(verify_str(&c, tok, NOW, &cl), a->want);
        if (a->want != AGENDA_JWT_OK)
            EQ(cl.sub[0] | cl.token_version | (uint64_t)cl.exp, 0);
        else
            STR_EQ(cl.sub, "alice");
        free(tok);
    }
}

/* A valid token's payload swapped for another one, signature kept. */
static void tampered_payload_is_refused(void **state)
{
    static const enum agenda_jwt_alg some[] = {
        AGENDA_JWT_HS256, AGENDA_JWT_RS256, AGENDA_JWT_ES256,
    };
    size_t i;

    (void)state;
    for (i = 0; i < COUNT(some); i++) {
        struct agenda_jwt_config c = config(some[i]);
        struct agenda_jwt_claims cl;
        char *user = NULL, *admin = NULL, *forged;
        const char *u1, *u2, *a1, *a2;

        ROW("alg %d", (int)some[i]);
        ERR_EQ(agenda_jwt_issue(&c, "alice", "user", 1, NOW, JTI, &user),
               AGENDA_JWT_OK);
        ERR_EQ(agenda_jwt_issue(&c, "alice", "admin", 1, NOW, JTI, &admin),
               AGENDA_JWT_OK);
        u1 = strchr(user, '.');
        u2 = strchr(u1 + 1, '.');
        a1 = strchr(admin, '.');
        a2 = strchr(a1 + 1, '.');
        forged = malloc(strlen(user) + strlen(admin) + 1);
        assert_non_null(forged);
        /* user's header, admin's payload, user's signature */
        sprintf(forged, "%.*s%.*s%s", (int)(u1 - user), user,
                (int)(a2 - a1), a1, u2);
        ERR_EQ(verify_str(&c, forged, NOW, &cl), AGENDA_JWT_BAD_SIGNATURE);
        free(user);
        free(admin);
        free(forged);
    }
}

/* ---- shape --------------------------------------------------------------- */

struct shape {
    const char *token;
    int want;
};

/* Segments of the valid HS256 token issued in malformed_shapes. */
static char g_head[256], g_body[512], g_sig[128];

static void malformed_shapes(void **state)
{
    struct agenda_jwt_config c = config(AGENDA_JWT_HS256);
    struct agenda_jwt_claims cl;
    char *tok = NULL, *d1, *d2, buf[1024];
    size_t i;

    (void)state;
    ERR_EQ(agenda_jwt_issue(&c, "alice", "user", 1, NOW, JTI, &tok),
           AGENDA_JWT_OK);
    d1 = strchr(tok, '.');
    d2 = strchr(d1 + 1, '.');
    snprintf(g_head, sizeof g_head, "%.*s", (int)(d1 - tok), tok);
    snprintf(g_body, sizeof g_body, "%.*s", (int)(d2 - d1 - 1), d1 + 1);
    snprintf(g_sig, sizeof g_sig, "%s", d2 + 1);
    free(tok);

    {
        char sig_bad_bits[128], sig_padded[136], body_bad[512];
        size_t n = strlen(g_sig);
        /* each token is the concatenation of its (up to 6) parts */
        const struct {
            const char *part[6];
            int want;
        } rows[] = {
            {{g_head, ".", g_body, ".", g_sig}, AGENDA_JWT_OK},
            {{g_head}, AGENDA_JWT_MALFORMED},
            {{g_head, ".", g_body}, AGENDA_JWT_MALFORMED},
            {{g_head, ".", g_body, ".", g_sig, "."}, AGENDA_JWT_MALFORMED},
            {{g_head, ".", g_body, ".", g_sig, ".x"}, AGENDA_JWT_MALFORMED},
            {{".", g_body, ".", g_sig}, AGENDA_JWT_MALFORMED},
            {{g_head, "..", g_sig}, AGENDA_JWT_MALFORMED},
            {{g_head, ".", g_body, "."}, AGENDA_JWT_MALFORMED},
            {{".."}, AGENDA_JWT_MALFORMED},
            {{g_head, ".", g_body, ".", sig_padded}, AGENDA_JWT_MALFORMED},
            {{g_head, ".", g_body, ".", sig_bad_bits}, AGENDA_JWT_MALFORMED},
            {{g_head, ".", body_bad, ".", g_sig}, AGENDA_JWT_MALFORMED},
            {{g_head, ".", g_body, ".a"}, AGENDA_JWT_MALFORMED},
            {{g_head, " .", g_body, ".", g_sig}, AGENDA_JWT_MALFORMED},
        };

        /* a 43-character HS256 signature ends in 2 spare bits: set one */
        snprintf(sig_bad_bits, sizeof sig_bad_bits, "%s", g_sig);
        assert_int_equal(n, 43);
        {
            static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                    "abcdefghijklmnopqrstuvwxyz0123456789-_";
            size_t v = (size_t)(strchr(a, sig_bad_bits[n - 1]) - a);

            sig_bad_bits[n - 1] = a[v | 1];
        }
        snprintf(sig_padded, sizeof sig_padded, "%s=", g_sig);
        snprintf(body_bad, sizeof body_bad, "%s", g_body);
        body_bad[3] = '+'; /* standard base64, not base64url */

        for (i = 0; i < COUNT(rows); i++) {
            size_t k;

            buf[0] = '\0';
            for (k = 0; k < 6 && rows[i].part[k] != NULL; k++)
                strcat(buf, rows[i].part[k]);
            ROW("shape %zu: %.400s", i, buf);
            ERR_EQ(verify_str(&c, buf, NOW, &cl), rows[i].want);
        }
    }
}

static void length_limits(void **state)
{
    struct agenda_jwt_config c = config(AGENDA_JWT_HS256);
    struct agenda_jwt_claims cl;
    char *tok = NULL, *huge;
    size_t n;

    (void)state;
    ERR_EQ(agenda_jwt_issue(&c, "alice", "user", 1, NOW, JTI, &tok),
           AGENDA_JWT_OK);
    n = strlen(tok);

    ROW("empty");
    ERR_EQ(agenda_jwt_verify(&c, "", 0, NOW, &cl), AGENDA_JWT_MALFORMED);
    ROW("NULL token");
    ERR_EQ(agenda_jwt_verify(&c, NULL, 10, NOW, &cl), AGENDA_JWT_MALFORMED);
    ROW("only the first len bytes count");
    EQ(agenda_jwt_verify(&c, tok, n - 1, NOW, &cl) != AGENDA_JWT_OK, 1);
    EQ(agenda_jwt_verify(&c, tok, n, NOW, &cl), AGENDA_JWT_OK);
    ROW("NUL inside");
    tok[5] = '\0';
    ERR_EQ(agenda_jwt_verify(&c, tok, n, NOW, &cl), AGENDA_JWT_MALFORMED);
    free(tok);

    ROW("huge");
    huge = malloc(AGENDA_JWT_MAX_TOKEN + 2);
    assert_non_null(huge);
    memset(huge, 'A', AGENDA_JWT_MAX_TOKEN + 1);
    huge[100] = '.';
    huge[200] = '.';
    huge[AGENDA_JWT_MAX_TOKEN + 1] = '\0';
    ERR_EQ(verify_str(&c, huge, NOW, &cl), AGENDA_JWT_MALFORMED);
    /* one byte shorter passes the size check and fails later */
    huge[AGENDA_JWT_MAX_TOKEN] = '\0';
    EQ(verify_str(&c, huge, NOW, &cl) != AGENDA_JWT_OK, 1);
    free(huge);
}

/* ---- keys and arguments -------------------------------------------------- */

static void bad_keys(void **state)
{
    struct agenda_jwt_config c;
    struct agenda_jwt_claims cl;
    char *tok = NULL;

    (void)state;
    ROW("HS256, 31-byte secret");
    c = config(AGENDA_JWT_HS256);
    c.sign_key_len = c.verify_key_len = 31;
    ERR_EQ(agenda_jwt_issue(&c, "alice", "user", 1, NOW, JTI, &tok),
           AGENDA_JWT_BAD_KEY);
    assert_null(tok);
    ERR_EQ(verify_str(&c, "a.b.c", NOW, &cl), AGENDA_JWT_BAD_KEY);

    ROW("HS512, 32-byte secret");
    c = config(AGENDA_JWT_HS512);
    c.sign_key_len = c.verify_key_len = 32;
    ERR_EQ(agenda_jwt_issue(&c, "alice", "user", 1, NOW, JTI, &tok),
           AGENDA_JWT_BAD_KEY);
    ERR_EQ(verify_str(&c, "a.b.c", NOW, &cl), AGENDA_JWT_BAD_KEY);

    ROW("no key");
    c = config(AGENDA_JWT_HS256);
    c.verify_key = NULL;
    ERR_EQ(verify_str(&c, "a.b.c", NOW, &cl), AGENDA_JWT_BAD_KEY);

    ROW("ES256 with RSA keys: refused at issue, fails verify");
    c = config(AGENDA_JWT_ES256);
    c.sign_key = (const unsigned char *)rsa_priv;
    c.sign_key_len = strlen(rsa_priv);
    c.verify_key = (const unsigned char *)rsa_pub;
    c.verify_key_len = strlen(rsa_pub);
    ERR_EQ(agenda_jwt_issue(&c, "alice", "user", 1, NOW, JTI, &tok),
           AGENDA_JWT_BAD_KEY);
    assert_null(tok);
    {
        struct agenda_jwt_config es = config(AGENDA_JWT_ES256);

        ERR_EQ(agenda_jwt_issue(&es, "alice", "user", 1, NOW, JTI, &tok),
               AGENDA_JWT_OK);
        ERR_EQ(verify_str(&c, tok, NOW, &cl), AGENDA_JWT_BAD_SIGNATURE);
        free(tok);
        tok = NULL;
    }

    ROW("unknown alg, no issuer, huge leeway");
    c = config(AGENDA_JWT_HS256);
    c.alg = 0;
    ERR_EQ(verify_str(&c, "a.b.c", NOW, &cl), AGENDA_JWT_BAD_KEY);
    c = config(AGENDA_JWT_HS256);
    c.issuer = NULL;
    ERR_EQ(verify_str(&c, "a.b.c", NOW, &cl), AGENDA_JWT_BAD_KEY);
    c = config(AGENDA_JWT_HS256);
    c.leeway_s = 3601;
    ERR_EQ(verify_str(&c, "a.b.c", NOW, &cl), AGENDA_JWT_BAD_KEY);
}

static char *encrypted_pem(const char *pem)
{
    BIO *in = BIO_new_mem_buf(pem, -1), *out = BIO_new(BIO_s_mem());
    EVP_PKEY *k = PEM_read_bio_PrivateKey(in, NULL, NULL, NULL);
    char *data, *copy;
    long n;

    assert_non_null(k);
    assert_int_equal(PEM_write_bio_PrivateKey(out, k, EVP_aes_128_cbc(),
                                              (unsigned char *)"pass", 4,
                                              NULL, NULL),
                     1);
    n = BIO_get_mem_data(out, &data);
    copy = malloc((size_t)n + 1);
    assert_non_null(copy);
    memcpy(copy, data, (size_t)n);
    copy[n] = '\0';
    EVP_PKEY_free(k);
    BIO_free(in);
    BIO_free(out);
    return copy;
}

/* Each row changes one thing in a good configuration of its alg. */
static void config_check_table(void **state)
{
    EVP_PKEY *other_ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    EVP_PKEY *rsa1024 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    char *other_ec_pub, *p384_priv, *p384_pub, *rsa1024_priv, *rsa1024_pub;
    char *ec_enc;
    size_t i;

    (void)state;
    assert_non_null(other_ec);
    assert_non_null(p384);
    assert_non_null(rsa1024);
    other_ec_pub = pem_of(other_ec, 0);
    p384_priv = pem_of(p384, 1);
    p384_pub = pem_of(p384, 0);
    rsa1024_priv = pem_of(rsa1024, 1);
    rsa1024_pub = pem_of(rsa1024, 0);
    ec_enc = encrypted_pem(ec_priv);

    const struct {
        const char *name;
        enum agenda_jwt_alg alg;
        const char *sign, *verify; /* NULL: unchanged */
        size_t hs_len;             /* HS*: 0 = unchanged */
        unsigned ttl, leeway;
        int want;
    } rows[] = {
        {"HS256", AGENDA_JWT_HS256, NULL, NULL, 0, TTL, LEEWAY,
         AGENDA_JWT_OK},
        {"HS384", AGENDA_JWT_HS384, NULL, NULL, 0, TTL, LEEWAY,
         AGENDA_JWT_OK},
        {"HS512", AGENDA_JWT_HS512, NULL, NULL, 0, TTL, LEEWAY,
         AGENDA_JWT_OK},
        {"RS256", AGENDA_JWT_RS256, NULL, NULL, 0, TTL, LEEWAY,
         AGENDA_JWT_OK},
        {"ES256", AGENDA_JWT_ES256, NULL, NULL, 0, TTL, LEEWAY,
         AGENDA_JWT_OK},
        {"HS256 short secret", AGENDA_JWT_HS256, NULL, NULL, 31, TTL, LEEWAY,
         AGENDA_JWT_BAD_KEY},
        {"HS384 32-byte secret", AGENDA_JWT_HS384, NULL, NULL, 32, TTL,
         LEEWAY, AGENDA_JWT_BAD_KEY},
        {"HS256 secrets differ", AGENDA_JWT_HS256, NULL, secret64, 0, TTL,
         LEEWAY, AGENDA_JWT_BAD_KEY},
        {"ttl 0", AGENDA_JWT_HS256, NULL, NULL, 0, 0, LEEWAY,
         AGENDA_JWT_BAD_KEY},
        {"ttl over a day", AGENDA_JWT_HS256, NULL, NULL, 0, 86401, LEEWAY,
         AGENDA_JWT_BAD_KEY},
        {"ttl a day", AGENDA_JWT_HS256, NULL, NULL, 0, 86400, LEEWAY,
         AGENDA_JWT_OK},
        {"leeway over an hour", AGENDA_JWT_HS256, NULL, NULL, 0, TTL, 3601,
         AGENDA_JWT_BAD_KEY},
        {"ES256 with RSA keys", AGENDA_JWT_ES256, rsa_priv, rsa_pub, 0, TTL,
         LEEWAY, AGENDA_JWT_BAD_KEY},
        {"RS256 with EC keys", AGENDA_JWT_RS256, ec_priv, ec_pub, 0, TTL,
         LEEWAY, AGENDA_JWT_BAD_KEY},
        {"ES256 keys swapped", AGENDA_JWT_ES256, ec_pub, ec_priv, 0, TTL,
         LEEWAY, AGENDA_JWT_BAD_KEY},
        {"ES256 keys of two pairs", AGENDA_JWT_ES256, NULL, other_ec_pub, 0,
         TTL, LEEWAY, AGENDA_JWT_BAD_KEY},
        {"ES256 on P-384", AGENDA_JWT_ES256, p384_priv, p384_pub, 0, TTL,
         LEEWAY, AGENDA_JWT_BAD_KEY},
        {"RS256 with 1024 bits", AGENDA_JWT_RS256, rsa1024_priv, rsa1024_pub,
         0, TTL, LEEWAY, AGENDA_JWT_BAD_KEY},
        {"ES256 encrypted private key", AGENDA_JWT_ES256, ec_enc, NULL, 0,
         TTL, LEEWAY, AGENDA_JWT_BAD_KEY},
        {"ES256 PEM garbage", AGENDA_JWT_ES256, NULL,
         "-----BEGIN PUBLIC KEY-----\nxx\n-----END PUBLIC KEY-----\n", 0,
         TTL, LEEWAY, AGENDA_JWT_BAD_KEY},
        {"HS256 secret as ES256 key", AGENDA_JWT_ES256, secret, secret, 0,
         TTL, LEEWAY, AGENDA_JWT_BAD_KEY},
    };

    for (i = 0; i < COUNT(rows); i++) {
        struct agenda_jwt_config c = config(rows[i].alg);
        const char *sign = rows[i].sign, *verify = rows[i].verify;

        ROW("config %s", rows[i].name);
        if (sign != NULL) {
            c.sign_key = (const unsigned char *)sign;
            c.sign_key_len = strlen(sign);
        }
        if (verify != NULL) {
            c.verify_key = (const unsigned char *)verify;
            c.verify_key_len = strlen(verify);
        }
        if (rows[i].hs_len != 0)
            c.sign_key_len = c.verify_key_len = rows[i].hs_len;
        c.ttl_s = rows[i].ttl;
        c.leeway_s = rows[i].leeway;
        ERR_EQ(agenda_jwt_config_check(&c), rows[i].want);
    }
    ROW("NULL");
    ERR_EQ(agenda_jwt_config_check(NULL), AGENDA_JWT_BAD_KEY);
    free(other_ec_pub);
    free(p384_priv);
    free(p384_pub);
    free(rsa1024_priv);
    free(rsa1024_pub);
    free(ec_enc);
    EVP_PKEY_free(other_ec);
    EVP_PKEY_free(p384);
    EVP_PKEY_free(rsa1024);
}

static void issue_refuses_bad_arguments(void **state)
{
    struct agenda_jwt_config c = config(AGENDA_JWT_HS256);
    char *tok = NULL;

    (void)state;
    ROW("issue arguments");
    ERR_EQ(agenda_jwt_issue(&c, "Al", "user", 1, NOW, JTI, &tok),
           AGENDA_JWT_BAD_CLAIMS);
    ERR_EQ(agenda_jwt_issue(&c, "Alice", "user", 1, NOW, JTI, &tok),
           AGENDA_JWT_BAD_CLAIMS);
    ERR_EQ(agenda_jwt_issue(&c, NULL, "user", 1, NOW, JTI, &tok),
           AGENDA_JWT_BAD_CLAIMS);
    ERR_EQ(agenda_jwt_issue(&c, "alice", "root", 1, NOW, JTI, &tok),
           AGENDA_JWT_BAD_CLAIMS);
    ERR_EQ(agenda_jwt_issue(&c, "alice", "user", 0, NOW, JTI, &tok),
           AGENDA_JWT_BAD_CLAIMS);
    ERR_EQ(agenda_jwt_issue(&c, "alice", "user", UINT64_MAX, NOW, JTI,
                            &tok),
           AGENDA_JWT_BAD_CLAIMS);
    ERR_EQ(agenda_jwt_issue(&c, "alice", "user", 1, NOW, "short", &tok),
           AGENDA_JWT_BAD_CLAIMS);
    ERR_EQ(agenda_jwt_issue(&c, "alice", "user", 1, NOW, JTI "!", &tok),
           AGENDA_JWT_BAD_CLAIMS);
    ERR_EQ(agenda_jwt_issue(&c, "alice", "user", 1, -1, JTI, &tok),
           AGENDA_JWT_BAD_CLAIMS);
    ERR_EQ(agenda_jwt_issue(&c, "alice", "user", 1, NOW, JTI, NULL),
           AGENDA_JWT_BAD_CLAIMS);
    c.ttl_s = 0;
    ERR_EQ(agenda_jwt_issue(&c, "alice", "user", 1, NOW, JTI, &tok),
           AGENDA_JWT_BAD_CLAIMS);
    c.ttl_s = 24 * 3600 + 1;
    ERR_EQ(agenda_jwt_issue(&c, "alice", "user", 1, NOW, JTI, &tok),
           AGENDA_JWT_BAD_CLAIMS);
    assert_null(tok);
}

/* Issued at the edges of the window, checked at NOW. */
static void issued_token_lifetime(void **state)
{
    struct agenda_jwt_config c = config(AGENDA_JWT_ES256);
    struct agenda_jwt_claims cl;
    const struct {
        int64_t issued;
        int want;
    } rows[] = {
        {NOW - TTL - LEEWAY, AGENDA_JWT_EXPIRED},
        {NOW - TTL - LEEWAY + 1, AGENDA_JWT_OK},
        {NOW + LEEWAY, AGENDA_JWT_OK},
        {NOW + LEEWAY + 1, AGENDA_JWT_NOT_YET_VALID},
    };
    size_t i;

    (void)state;
    for (i = 0; i < COUNT(rows); i++) {
        char *tok = NULL;

        ROW("issued at NOW%+lld", (long long)(rows[i].issued - NOW));
        ERR_EQ(agenda_jwt_issue(&c, "alice", "user", 2, rows[i].issued, JTI,
                                &tok),
               AGENDA_JWT_OK);
        ERR_EQ(verify_str(&c, tok, NOW, &cl), rows[i].want);
        free(tok);
    }
}

/* ---- the parsed public key (agenda_jwt_sig.h) ---------------------------- */

/* Each check can refuse on its own: the pre-check with the parsed key
 * (the PEM is right), and libjwt with the PEM (the parsed key is right). */
static void parsed_key_and_libjwt_both_decide(void **state)
{
    static const enum agenda_jwt_alg some[] = {
        AGENDA_JWT_RS256, AGENDA_JWT_ES256,
    };
    EVP_PKEY *other_ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *other_rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    struct agenda_jwt_claims cl;
    size_t i;

    (void)state;
    assert_non_null(other_ec);
    assert_non_null(other_rsa);
    for (i = 0; i < COUNT(some); i++) {
        int rsa = some[i] == AGENDA_JWT_RS256;
        struct agenda_jwt_config c = config(some[i]);
        EVP_PKEY *right = agenda_jwt_key_load(&c);
        EVP_PKEY *wrong = rsa ? other_rsa : other_ec;
        char *wrong_pem = pem_of(wrong, 0);
        char *tok = NULL;

        ROW("%s", rsa ? "RS256" : "ES256");
        assert_non_null(right);
        ERR_EQ(agenda_jwt_issue(&c, "alice", "user", 1, NOW, JTI, &tok),
               AGENDA_JWT_OK);
        c.verify_pkey = right;
        ERR_EQ(verify_str(&c, tok, NOW, &cl), AGENDA_JWT_OK);
        c.verify_pkey = wrong;
        ERR_clear_error(); /* what earlier refusals of libjwt's left */
        ERR_EQ(verify_str(&c, tok, NOW, &cl), AGENDA_JWT_BAD_SIGNATURE);
        EQ(ERR_peek_error(), 0); /* and ours leaves nothing */
        c.verify_pkey = right;
        c.verify_key = (const unsigned char *)wrong_pem;
        c.verify_key_len = strlen(wrong_pem);
        ERR_EQ(verify_str(&c, tok, NOW, &cl), AGENDA_JWT_BAD_SIGNATURE);
        ERR_clear_error(); /* libjwt's own refusal leaves errors queued */
        free(tok);
        free(wrong_pem);
        EVP_PKEY_free(right);
    }

    ROW("nothing to parse");
    {
        struct agenda_jwt_config c = config(AGENDA_JWT_HS256);

        assert_null(agenda_jwt_key_load(&c));
        c = config(AGENDA_JWT_ES256);
        c.verify_key = (const unsigned char *)rsa_pub;
        c.verify_key_len = strlen(rsa_pub);
        assert_null(agenda_jwt_key_load(&c));
        c = config(AGENDA_JWT_RS256);
        c.verify_key = (const unsigned char *)rsa_priv; /* not a PUBKEY */
        c.verify_key_len = strlen(rsa_priv);
        assert_null(agenda_jwt_key_load(&c));
        assert_null(agenda_jwt_key_load(NULL));
    }
    EVP_PKEY_free(other_ec);
    EVP_PKEY_free(other_rsa);
}

/* A signature of data by the private key in pem, as OpenSSL writes it
 * (DER for ECDSA); its length. */
static size_t openssl_sign(const char *pem, const char *data,
                           unsigned char *sig, size_t room)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    size_t n = room;

    assert_non_null(k);
    assert_non_null(md);
    assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k), 1);
    assert_int_equal(EVP_DigestSign(md, sig, &n, (const unsigned char *)data,
                                    strlen(data)),
                     1);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(k);
    BIO_free(b);
    return n;
}

/* An ECDSA P-256 signature as OpenSSL writes it (DER) in the JWS form,
 * r and s of 32 bytes each. */
static void der_to_jws(const unsigned char *der, size_t der_len,
                       unsigned char jws[64])
{
    const unsigned char *p = der;
    const BIGNUM *r, *s;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)der_len);

    assert_non_null(es);
    ECDSA_SIG_get0(es, &r, &s);
    assert_int_equal(BN_bn2binpad(r, jws, 32), 32);
    assert_int_equal(BN_bn2binpad(s, jws + 32, 32), 32);
    ECDSA_SIG_free(es);
}

/* The forms of signature agenda_jwt_sig_valid() takes and refuses. */
static void signature_forms(void **state)
{
    static const char data[] = "header.payload";
    unsigned char der[128], jws[64], rs[512];
    size_t der_len, rs_len;

    (void)state;
    ERR_clear_error(); /* what earlier refusals of libjwt's left */
    ROW("ES256");
    der_len = openssl_sign(ec_priv, data, der, sizeof der);
    der_to_jws(der, der_len, jws);
#define VALID(key, alg, d, sig, n)                                          \
    agenda_jwt_sig_valid((key), (alg), (const unsigned char *)(d),          \
                         strlen(d), (sig), (n))
    assert_true(VALID(ec_parsed, AGENDA_JWT_ES256, data, jws, 64));
    assert_false(VALID(ec_parsed, AGENDA_JWT_ES256, "header.payloaD", jws,
                       64));
    assert_false(VALID(ec_parsed, AGENDA_JWT_ES256, data, der, der_len));
    assert_false(VALID(ec_parsed, AGENDA_JWT_ES256, data, jws, 63));
    assert_false(VALID(rsa_parsed, AGENDA_JWT_ES256, data, jws, 64));
    assert_false(VALID(ec_parsed, AGENDA_JWT_RS256, data, jws, 64));
    assert_false(VALID(ec_parsed, AGENDA_JWT_HS256, data, jws, 64));
    assert_false(VALID(NULL, AGENDA_JWT_ES256, data, jws, 64));
    jws[5] ^= 1;
    assert_false(VALID(ec_parsed, AGENDA_JWT_ES256, data, jws, 64));
    memset(jws, 0, sizeof jws); /* r = s = 0: never a signature */
    assert_false(VALID(ec_parsed, AGENDA_JWT_ES256, data, jws, 64));

    ROW("ES256, r and s of every form");
    {
        /* the DER form differs when r or s has its top bit set (a 0x00 is
         * prepended) or a leading zero byte (it is dropped): signatures
         * are made until both were seen, each checked */
        bool high = false, zero = false;
        char msg[32];

        for (int i = 0; i < 5000 && !(high && zero); i++) {
            snprintf(msg, sizeof msg, "message %d", i);
            der_len = openssl_sign(ec_priv, msg, der, sizeof der);
            der_to_jws(der, der_len, jws);
            high = high || (jws[0] & 0x80) || (jws[32] & 0x80);
            zero = zero || jws[0] == 0 || jws[32] == 0;
            assert_true(VALID(ec_parsed, AGENDA_JWT_ES256, msg, jws, 64));
        }
        assert_true(high && zero);
    }

    ROW("RS256");
    rs_len = openssl_sign(rsa_priv, data, rs, sizeof rs);
    assert_int_equal(rs_len, 256);
    assert_true(VALID(rsa_parsed, AGENDA_JWT_RS256, data, rs, rs_len));
    assert_false(VALID(rsa_parsed, AGENDA_JWT_RS256, data, rs, rs_len - 1));
    assert_false(VALID(ec_parsed, AGENDA_JWT_RS256, data, rs, rs_len));
    rs[100] ^= 0x80;
    assert_false(VALID(rsa_parsed, AGENDA_JWT_RS256, data, rs, rs_len));
#undef VALID
    EQ(ERR_peek_error(), 0);
}

static void names_and_messages(void **state)
{
    int e, f;

    (void)state;
    ROW("names");
    EQ(agenda_jwt_alg_parse("HS256"), AGENDA_JWT_HS256);
    EQ(agenda_jwt_alg_parse("HS384"), AGENDA_JWT_HS384);
    EQ(agenda_jwt_alg_parse("HS512"), AGENDA_JWT_HS512);
    EQ(agenda_jwt_alg_parse("RS256"), AGENDA_JWT_RS256);
    EQ(agenda_jwt_alg_parse("ES256"), AGENDA_JWT_ES256);
    EQ(agenda_jwt_alg_parse("none"), 0);
    EQ(agenda_jwt_alg_parse("hs256"), 0);
    EQ(agenda_jwt_alg_parse("ES384"), 0);
    EQ(agenda_jwt_alg_parse(""), 0);
    EQ(agenda_jwt_alg_parse(NULL), 0);
    for (e = 0; e < AGENDA_JWT_ERR__COUNT; e++) {
        assert_non_null(agenda_jwt_strerror(e));
        for (f = 0; f < e; f++)
            assert_string_not_equal(agenda_jwt_strerror(e),
                                    agenda_jwt_strerror(f));
    }
    assert_non_null(agenda_jwt_strerror(-1));
    assert_non_null(agenda_jwt_strerror(AGENDA_JWT_ERR__COUNT));
}

static int clear_row(void **state)
{
    (void)state;
    snprintf(row, sizeof row, "(none)");
    return 0;
}

#define TEST(f) cmocka_unit_test_setup(f, clear_row)
#define PARSED(f)                                                           \
    {#f " (parsed key)", f, parsed_on, parsed_off, NULL}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(round_trip_every_alg),
        TEST(issued_token_has_plain_header),
        TEST(tokens_do_not_cross_algorithms),
        TEST(attack_table),
        TEST(tampered_payload_is_refused),
        TEST(malformed_shapes),
        TEST(length_limits),
        TEST(bad_keys),
        TEST(config_check_table),
        TEST(issue_refuses_bad_arguments),
        TEST(issued_token_lifetime),
        TEST(names_and_messages),
        TEST(parsed_key_and_libjwt_both_decide),
        TEST(signature_forms),
        PARSED(round_trip_every_alg),
        PARSED(tokens_do_not_cross_algorithms),
        PARSED(attack_table),
        PARSED(tampered_payload_is_refused),
        PARSED(issued_token_lifetime),
    };

    return cmocka_run_group_tests(tests, make_keys, free_keys);
}

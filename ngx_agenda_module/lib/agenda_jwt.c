/*
 * agenda_jwt.c — access tokens: issue with libjwt, verify around libjwt.
 *
 * Verification is a pipeline in which each stage trusts only what the
 * stages before it established:
 *
 *   1. shape: at most AGENDA_JWT_MAX_TOKEN bytes, exactly three non-empty
 *      segments of canonical, unpadded base64url (one spelling per value,
 *      so a token cannot be altered without altering its bytes) — an
 *      unsigned "alg": "none" token, with its empty third segment, already
 *      ends here as MALFORMED; with any signature it is BAD_ALG below;
 *   2. header: a JSON object (duplicate keys refused) holding "alg", equal
 *      to the configured name, and optionally "typ": "JWT", and nothing
 *      else.  Refusing every other parameter is our decision: the edge
 *      only ever verifies tokens it issued itself (libjwt writes exactly
 *      these two), and "crit", "jku", "jwk", "x5u", "x5c" or "kid" would
 *      each ask the verifier to trust something the token brings along;
 *   3. payload: a JSON object, duplicate keys refused (two "sub" members
 *      read differently by two parsers are an old trick);
 *   4. signature: for HS* we first compare the HMAC ourselves in constant
 *      time (libjwt 1.10.2 compares with strcmp(), which leaks how much of
 *      a forged MAC is right), for RS256/ES256 we first verify with the
 *      key parsed once (agenda_jwt_sig.h), when the caller gave it; then
 *      jwt_decode() with the configured verify key, and jwt_get_alg()
 *      must still be the configured one;
 *   5. claims, read from our own parse of the payload bytes that libjwt
 *      has just verified.
 *
 * Keys: agenda_jwt_config_check() parses and checks them once; each call
 * re-checks only what costs nothing (presence, an HMAC secret's length).
 *
 * Cost: HS256 verifies in ~25 us; a valid RS256/ES256 token in ~0.5 ms
 * (measured 0.46 and 0.65 ms), most of it libjwt parsing the PEM key
 * again on every call (its 1.10.2 API takes the key as text), so HS256
 * is the better choice for a busy edge.  A forged one is refused by the
 * pre-check of step 4 in 0.03 ms (RS256) or 0.09 ms (ES256).
 */
#include "agenda_jwt.h"
#include "agenda_jwt_sig.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

/* Longest accepted lifetime (exp - iat): a day.  Longer-lived tokens are
 * refused even when correctly signed, so that a leaked signing key or a
 * misconfigured ttl cannot mint tokens that outlive a key rotation. */
#define JWT_MAX_LIFETIME_S (24 * 3600)

/* Times are bounded (year 9999) so that every sum below fits in int64. */
#define JWT_TIME_MAX INT64_C(253402300799)

/* The configured leeway is bounded by the same reasoning. */
#define JWT_LEEWAY_MAX 3600u

#define JTI_MIN 16
#define JTI_MAX 64
#define SUB_MIN 3
#define SUB_MAX 32

static const char *const errors[AGENDA_JWT_ERR__COUNT] = {
    [AGENDA_JWT_OK] = "ok",
    [AGENDA_JWT_MALFORMED] =
        "token is not three base64url segments of JSON objects",
    [AGENDA_JWT_BAD_ALG] = "token algorithm is not the configured one",
    [AGENDA_JWT_BAD_SIGNATURE] = "token signature does not verify",
    [AGENDA_JWT_EXPIRED] = "token has expired",
    [AGENDA_JWT_NOT_YET_VALID] = "token is not valid yet (nbf or iat)",
    [AGENDA_JWT_BAD_ISSUER] = "token issuer is not the configured one",
    [AGENDA_JWT_BAD_AUDIENCE] = "token audience does not include ours",
    [AGENDA_JWT_BAD_CLAIMS] = "token claim missing or of the wrong type",
    [AGENDA_JWT_BAD_KEY] = "configured JWT key or settings are unusable",
    [AGENDA_JWT_NOMEM] = "out of memory",
};

const char *agenda_jwt_strerror(int err)
{
    if (err < 0 || err >= AGENDA_JWT_ERR__COUNT)
        return "unknown JWT error";
    return errors[err];
}

/* ---- algorithms ---------------------------------------------------------- */

struct alg_info {
    enum agenda_jwt_alg alg;
    const char *name;
    jwt_alg_t lib;
    int hmac_len; /* HS*: digest bytes (also the minimum key length); else 0 */
};

static const struct alg_info algs[] = {
    {AGENDA_JWT_HS256, "HS256", JWT_ALG_HS256, 32},
    {AGENDA_JWT_HS384, "HS384", JWT_ALG_HS384, 48},
    {AGENDA_JWT_HS512, "HS512", JWT_ALG_HS512, 64},
    {AGENDA_JWT_RS256, "RS256", JWT_ALG_RS256, 0},
    {AGENDA_JWT_ES256, "ES256", JWT_ALG_ES256, 0},
};

#define ALG_COUNT (sizeof(algs) / sizeof(algs[0]))

static const struct alg_info *alg_info(enum agenda_jwt_alg alg)
{
    size_t i;

    for (i = 0; i < ALG_COUNT; i++)
        if (algs[i].alg == alg)
            return &algs[i];
    return NULL;
}

enum agenda_jwt_alg agenda_jwt_alg_parse(const char *name)
{
    size_t i;

    if (name == NULL)
        return 0;
    for (i = 0; i < ALG_COUNT; i++)
        if (strcmp(algs[i].name, name) == 0)
            return algs[i].alg;
    return 0;
}

static const EVP_MD *hmac_md(enum agenda_jwt_alg alg)
{
    switch (alg) {
    case AGENDA_JWT_HS256:
        return EVP_sha256();
    case AGENDA_JWT_HS384:
        return EVP_sha384();
    case AGENDA_JWT_HS512:
        return EVP_sha512();
    default:
        return NULL;
    }
}

/* ---- keys ---------------------------------------------------------------- */

/* Never prompt for a passphrase (OpenSSL's default would read the
 * terminal, from an nginx worker): an encrypted key is unusable here. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return 0;
}

/* What every call checks: a key is there, and an HMAC secret is at least
 * as long as its digest. */
static bool key_present(const struct alg_info *ai, const unsigned char *key,
                        size_t len)
{
    if (key == NULL || len == 0 || len > INT_MAX)
        return false;
    return ai->hmac_len == 0 || len >= (size_t)ai->hmac_len;
}

/*
 * A PEM public (verify) or private (sign) key of the right type for ai —
 * RSA of >= 2048 bits, EC on P-256 — parsed; NULL when it is not one.
 */
static EVP_PKEY *key_parse(const struct alg_info *ai, const unsigned char *key,
                           size_t len, bool private_key)
{
    BIO *bio;
    EVP_PKEY *pkey;
    bool ok = false;
    char group[32];
    size_t glen = 0;

    if (ai->hmac_len != 0 || !key_present(ai, key, len))
        return NULL;
    bio = BIO_new_mem_buf(key, (int)len);
    if (bio == NULL)
        return NULL;
    pkey = private_key ? PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL)
                       : PEM_read_bio_PUBKEY(bio, NULL, no_passphrase, NULL);
    BIO_free(bio);
    if (pkey == NULL)
        return NULL;
    if (ai->alg == AGENDA_JWT_RS256)
        ok = EVP_PKEY_is_a(pkey, "RSA") && EVP_PKEY_get_bits(pkey) >= 2048;
    else if (ai->alg == AGENDA_JWT_ES256)
        ok = EVP_PKEY_is_a(pkey, "EC")
             && EVP_PKEY_get_group_name(pkey, group, sizeof group, &glen) == 1
             && strcmp(group, "prime256v1") == 0;
    if (!ok) {
        EVP_PKEY_free(pkey);
        return NULL;
    }
    return pkey;
}

/* What agenda_jwt_config_check adds: the key parses (key_parse()), or is
 * an HMAC secret long enough. */
static bool key_usable(const struct alg_info *ai, const unsigned char *key,
                       size_t len, bool private_key)
{
    EVP_PKEY *pkey;
    bool ok;

    if (ai->hmac_len != 0)
        return key_present(ai, key, len);
    pkey = key_parse(ai, key, len, private_key);
    ok = pkey != NULL;
    EVP_PKEY_free(pkey);
    return ok;
}

/* The configuration apart from the key: alg known, iss/aud present,
 * bounded leeway. */
static const struct alg_info *config_usable(const struct agenda_jwt_config *c)
{
    const struct alg_info *ai;

    if (c == NULL || c->issuer == NULL || c->audience == NULL
        || c->leeway_s > JWT_LEEWAY_MAX)
        return NULL;
    ai = alg_info(c->alg);
    return ai;
}

/* ---- base64url ----------------------------------------------------------- */

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

/*
 * Decode s[0..n) — unpadded, canonical base64url (the unused low bits of a
 * final partial group must be zero) — into out, which has room for n
 * bytes.  Returns the decoded length, or -1.  An empty segment is refused.
 */
static long b64url_decode(const char *s, size_t n, unsigned char *out)
{
    uint32_t acc = 0;
    size_t i, o = 0;
    int v = 0, bits = 0;

    if (n == 0 || n % 4 == 1)
        return -1;
    for (i = 0; i < n; i++) {
        v = b64url_value((unsigned char)s[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* leftover bits (2 or 4) must be zero: otherwise two spellings */
    if (acc != 0)
        return -1;
    return (long)o;
}

/* ---- small validators ---------------------------------------------------- */

static bool username_ok(const char *s)
{
    size_t n = strlen(s), i;

    if (n < SUB_MIN || n > SUB_MAX)
        return false;
    for (i = 0; i < n; i++) {
        char c = s[i];

        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'
              || c == '.' || c == '-'))
            return false;
    }
    return true;
}

static bool jti_ok(const char *s)
{
    size_t n = strlen(s), i;

    if (n < JTI_MIN || n > JTI_MAX)
        return false;
    for (i = 0; i < n; i++)
        if (b64url_value((unsigned char)s[i]) < 0)
            return false;
    return true;
}

static bool role_ok(const char *s)
{
    return strcmp(s, "user") == 0 || strcmp(s, "admin") == 0;
}

/* ---- issue --------------------------------------------------------------- */

static int issue_grants(jwt_t *jwt, const struct agenda_jwt_config *cfg,
                        const char *sub, const char *role, uint64_t tv,
                        int64_t now, const char *jti)
{
    int64_t exp = now + (int64_t)cfg->ttl_s;

    /* libjwt stores integers as long: 64 bits on every target we build */
    if (jwt_add_grant(jwt, "iss", cfg->issuer) != 0
        || jwt_add_grant(jwt, "aud", cfg->audience) != 0
        || jwt_add_grant(jwt, "sub", sub) != 0
        || jwt_add_grant(jwt, "role", role) != 0
        || jwt_add_grant(jwt, "jti", jti) != 0
        || jwt_add_grant_int(jwt, "tv", (long)tv) != 0
        || jwt_add_grant_int(jwt, "iat", (long)now) != 0
        || jwt_add_grant_int(jwt, "nbf", (long)now) != 0
        || jwt_add_grant_int(jwt, "exp", (long)exp) != 0)
        return AGENDA_JWT_NOMEM;
    return AGENDA_JWT_OK;
}

int agenda_jwt_issue(const struct agenda_jwt_config *cfg, const char *sub,
                     const char *role, uint64_t token_version, int64_t now,
                     const char *jti, char **out)
{
    const struct alg_info *ai;
    jwt_t *jwt = NULL;
    char *tok;
    int rc;

    if (out == NULL)
        return AGENDA_JWT_BAD_CLAIMS;
    *out = NULL;
    ai = config_usable(cfg);
    if (ai == NULL
        || !key_present(ai, cfg->sign_key, cfg->sign_key_len))
        return AGENDA_JWT_BAD_KEY;
    if (sub == NULL || role == NULL || jti == NULL || !username_ok(sub)
        || !role_ok(role) || !jti_ok(jti) || token_version == 0
        || token_version > (uint64_t)LONG_MAX || cfg->ttl_s == 0
        || cfg->ttl_s > JWT_MAX_LIFETIME_S || now < 0
        || now > JWT_TIME_MAX - JWT_MAX_LIFETIME_S)
        return AGENDA_JWT_BAD_CLAIMS;

    if (jwt_new(&jwt) != 0)
        return AGENDA_JWT_NOMEM;
    rc = issue_grants(jwt, cfg, sub, role, token_version, now, jti);
    if (rc == AGENDA_JWT_OK
        && jwt_set_alg(jwt, ai->lib, cfg->sign_key, (int)cfg->sign_key_len)
               != 0)
        rc = AGENDA_JWT_BAD_KEY;
    if (rc == AGENDA_JWT_OK) {
        errno = 0;
        tok = jwt_encode_str(jwt); /* malloc'd by libjwt: free() it */
        if (tok == NULL)
            rc = errno == ENOMEM ? AGENDA_JWT_NOMEM : AGENDA_JWT_BAD_KEY;
        else
            *out = tok;
    }
    jwt_free(jwt);
    return rc;
}

/* ---- verify -------------------------------------------------------------- */

/* The three segments of a token, located in the caller's buffer. */
struct segments {
    const char *head, *body, *sig;
    size_t head_len, body_len, sig_len;
};

static int split(const char *t, size_t len, struct segments *s)
{
    const char *d1, *d2;

    if (len == 0 || len > AGENDA_JWT_MAX_TOKEN || memchr(t, '\0', len))
        return AGENDA_JWT_MALFORMED;
    d1 = memchr(t, '.', len);
    if (d1 == NULL)
        return AGENDA_JWT_MALFORMED;
    d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - t));
    if (d2 == NULL || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - t)))
        return AGENDA_JWT_MALFORMED;
    s->head = t;
    s->head_len = (size_t)(d1 - t);
    s->body = d1 + 1;
    s->body_len = (size_t)(d2 - s->body);
    s->sig = d2 + 1;
    s->sig_len = len - (size_t)(s->sig - t);
    if (s->head_len == 0 || s->body_len == 0 || s->sig_len == 0)
        return AGENDA_JWT_MALFORMED;
    return AGENDA_JWT_OK;
}

/* Decode a segment holding a JSON object (duplicate keys refused) into
 * *out (a new reference).  buf has room for n bytes. */
static int decode_object(const char *seg, size_t n, unsigned char *buf,
                         json_t **out)
{
    long m = b64url_decode(seg, n, buf);
    json_t *j;

    *out = NULL;
    if (m < 0)
        return AGENDA_JWT_MALFORMED;
    j = json_loadb((const char *)buf, (size_t)m, JSON_REJECT_DUPLICATES,
                   NULL);
    if (j == NULL)
        return AGENDA_JWT_MALFORMED;
    if (!json_is_object(j)) {
        json_decref(j);
        return AGENDA_JWT_MALFORMED;
    }
    *out = j;
    return AGENDA_JWT_OK;
}

/* The header holds "alg" (the configured name) and optionally "typ":
 * "JWT"; any other member is refused (see the top of the file). */
static int check_header(json_t *h, const struct alg_info *ai)
{
    const char *key;
    json_t *v;
    const json_t *alg = json_object_get(h, "alg");

    if (!json_is_string(alg) || strcmp(json_string_value(alg), ai->name) != 0)
        return AGENDA_JWT_BAD_ALG;
    json_object_foreach(h, key, v) {
        if (strcmp(key, "alg") == 0)
            continue;
        if (strcmp(key, "typ") == 0 && json_is_string(v)
            && strcmp(json_string_value(v), "JWT") == 0)
            continue;
        return AGENDA_JWT_MALFORMED;
    }
    return AGENDA_JWT_OK;
}

/* HS*: recompute the MAC over "head.body" and compare in constant time. */
static int check_hmac(const struct agenda_jwt_config *cfg,
                      const struct alg_info *ai, const struct segments *s,
                      const unsigned char *sig, long sig_len)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    size_t signed_len = s->head_len + 1 + s->body_len;

    if (sig_len != ai->hmac_len)
        return AGENDA_JWT_BAD_SIGNATURE;
    if (HMAC(hmac_md(ai->alg), cfg->verify_key, (int)cfg->verify_key_len,
             (const unsigned char *)s->head, signed_len, mac, &mac_len)
            == NULL
        || mac_len != (unsigned int)ai->hmac_len)
        return AGENDA_JWT_NOMEM;
    if (CRYPTO_memcmp(mac, sig, mac_len) != 0)
        return AGENDA_JWT_BAD_SIGNATURE;
    return AGENDA_JWT_OK;
}

/* libjwt's verification, with the configured key only; token is the
 * whole token, NUL-terminated. */
static int check_libjwt(const struct agenda_jwt_config *cfg,
                        const struct alg_info *ai, const char *token)
{
    jwt_t *jwt = NULL;
    int rc;

    rc = jwt_decode(&jwt, token, cfg->verify_key, (int)cfg->verify_key_len);
    if (rc != 0)
        return rc == ENOMEM ? AGENDA_JWT_NOMEM : AGENDA_JWT_BAD_SIGNATURE;
    rc = jwt_get_alg(jwt) == ai->lib ? AGENDA_JWT_OK : AGENDA_JWT_BAD_ALG;
    jwt_free(jwt);
    return rc;
}

/* A required string claim: NULL when missing or not a string. */
static const char *claim_str(const json_t *p, const char *name)
{
    const json_t *v = json_object_get(p, name);

    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* A required integer claim in [min, max]. */
static bool claim_int(const json_t *p, const char *name, json_int_t min,
                      json_int_t max, json_int_t *out)
{
    const json_t *v = json_object_get(p, name);

    if (!json_is_integer(v))
        return false;
    *out = json_integer_value(v);
    return *out >= min && *out <= max;
}

/* 1: aud (a string or an array of strings) names audience; 0: it does
 * not; -1: aud is missing or of the wrong type. */
static int audience_has(const json_t *p, const char *audience)
{
    const json_t *aud = json_object_get(p, "aud");
    size_t i;
    int found = 0;

    if (json_is_string(aud))
        return strcmp(json_string_value(aud), audience) == 0;
    if (!json_is_array(aud))
        return -1;
    for (i = 0; i < json_array_size(aud); i++) {
        const json_t *e = json_array_get(aud, i);

        if (!json_is_string(e))
            return -1;
        if (strcmp(json_string_value(e), audience) == 0)
            found = 1;
    }
    return found;
}

/*
 * The claims of a verified payload.  Order: every claim present and of the
 * right type and form (BAD_CLAIMS), then iss, aud, then time.  Times:
 *   expired        iff now >= exp + leeway
 *   not yet valid  iff now <  nbf - leeway  or  now < iat - leeway
 * and, whatever the clock, iat <= nbf < exp and exp - iat <= a day.
 */
static int check_claims(const struct agenda_jwt_config *cfg, const json_t *p,
                        int64_t now, struct agenda_jwt_claims *c)
{
    const char *iss, *sub, *role, *jti;
    json_int_t tv, iat, nbf, exp;
    int aud, rc;

    iss = claim_str(p, "iss");
    sub = claim_str(p, "sub");
    role = claim_str(p, "role");
    jti = claim_str(p, "jti");
    aud = audience_has(p, cfg->audience);
    if (iss == NULL || sub == NULL || role == NULL || jti == NULL || aud < 0
        || !username_ok(sub) || !role_ok(role) || !jti_ok(jti)
        || !claim_int(p, "tv", 1, INT64_MAX, &tv)
        || !claim_int(p, "iat", 0, JWT_TIME_MAX, &iat)
        || !claim_int(p, "nbf", 0, JWT_TIME_MAX, &nbf)
        || !claim_int(p, "exp", 0, JWT_TIME_MAX, &exp)
        || iat > nbf || nbf >= exp || exp - iat > JWT_MAX_LIFETIME_S)
        return AGENDA_JWT_BAD_CLAIMS;
    if (strcmp(iss, cfg->issuer) != 0)
        return AGENDA_JWT_BAD_ISSUER;
    if (aud == 0)
        return AGENDA_JWT_BAD_AUDIENCE;
    c->iat = iat;
    c->nbf = nbf;
    c->exp = exp;
    rc = agenda_jwt_check_times(cfg, c, now);
    if (rc != AGENDA_JWT_OK)
        return rc;

    /* lengths were checked above: these copies always fit */
    memcpy(c->sub, sub, strlen(sub) + 1);
    memcpy(c->role, role, strlen(role) + 1);
    memcpy(c->jti, jti, strlen(jti) + 1);
    c->token_version = (uint64_t)tv;
    return AGENDA_JWT_OK;
}

int agenda_jwt_check_times(const struct agenda_jwt_config *cfg,
                           const struct agenda_jwt_claims *c, int64_t now)
{
    int64_t lw = (int64_t)cfg->leeway_s;

    if (now >= c->exp + lw)
        return AGENDA_JWT_EXPIRED;
    if (now < c->nbf - lw || now < c->iat - lw)
        return AGENDA_JWT_NOT_YET_VALID;
    return AGENDA_JWT_OK;
}

int agenda_jwt_verify(const struct agenda_jwt_config *cfg, const char *token,
                      size_t len, int64_t now,
                      struct agenda_jwt_claims *claims)
{
    const struct alg_info *ai;
    struct segments s;
    unsigned char *buf = NULL;
    char *copy = NULL;
    json_t *head = NULL, *body = NULL;
    long sig_len;
    int rc;

    if (claims != NULL)
        memset(claims, 0, sizeof *claims);
    ai = config_usable(cfg);
    if (ai == NULL
        || !key_present(ai, cfg->verify_key, cfg->verify_key_len))
        return AGENDA_JWT_BAD_KEY;
    if (token == NULL || claims == NULL)
        return AGENDA_JWT_MALFORMED;
    rc = split(token, len, &s);
    if (rc != AGENDA_JWT_OK)
        return rc;

    /* one scratch buffer: each segment decodes to fewer bytes than it has */
    buf = malloc(len);
    copy = malloc(len + 1);
    if (buf == NULL || copy == NULL) {
        rc = AGENDA_JWT_NOMEM;
        goto done;
    }

    rc = decode_object(s.head, s.head_len, buf, &head);
    if (rc == AGENDA_JWT_OK)
        rc = check_header(head, ai);
    if (rc == AGENDA_JWT_OK)
        rc = decode_object(s.body, s.body_len, buf, &body);
    if (rc != AGENDA_JWT_OK)
        goto done;
    sig_len = b64url_decode(s.sig, s.sig_len, buf);
    if (sig_len < 0) {
        rc = AGENDA_JWT_MALFORMED;
        goto done;
    }

    if (ai->hmac_len != 0) {
        rc = check_hmac(cfg, ai, &s, buf, sig_len);
        if (rc != AGENDA_JWT_OK)
            goto done;
    } else if (cfg->verify_pkey != NULL
               && !agenda_jwt_sig_valid(cfg->verify_pkey, ai->alg,
                                        (const unsigned char *)s.head,
                                        s.head_len + 1 + s.body_len, buf,
                                        (size_t)sig_len)) {
        rc = AGENDA_JWT_BAD_SIGNATURE;
        goto done;
    }
    memcpy(copy, token, len);
    copy[len] = '\0';
    rc = check_libjwt(cfg, ai, copy);
    if (rc == AGENDA_JWT_OK)
        rc = check_claims(cfg, body, now, claims);

done:
    json_decref(head);
    json_decref(body);
    free(buf);
    free(copy);
    if (rc != AGENDA_JWT_OK && claims != NULL)
        memset(claims, 0, sizeof *claims);
    return rc;
}

/* ---- configuration ------------------------------------------------------- */

int agenda_jwt_config_check(const struct agenda_jwt_config *cfg)
{
    /* a fixed instant: the probe must not depend on the clock */
    static const int64_t at = INT64_C(1000000000);
    const struct alg_info *ai = config_usable(cfg);
    struct agenda_jwt_claims claims;
    char *probe = NULL;
    int rc;

    if (ai == NULL || cfg->ttl_s == 0 || cfg->ttl_s > JWT_MAX_LIFETIME_S
        || !key_usable(ai, cfg->sign_key, cfg->sign_key_len, true)
        || !key_usable(ai, cfg->verify_key, cfg->verify_key_len, false))
        return AGENDA_JWT_BAD_KEY;
    /* the keys must be a pair: what one signs, the other verifies */
    rc = agenda_jwt_issue(cfg, "probe", "user", 1, at, "config-check-probe",
                          &probe);
    if (rc == AGENDA_JWT_OK)
        rc = agenda_jwt_verify(cfg, probe, strlen(probe), at, &claims);
    free(probe);
    if (rc == AGENDA_JWT_NOMEM)
        return rc;
    return rc == AGENDA_JWT_OK ? AGENDA_JWT_OK : AGENDA_JWT_BAD_KEY;
}

EVP_PKEY *agenda_jwt_key_load(const struct agenda_jwt_config *cfg)
{
    const struct alg_info *ai = config_usable(cfg);

    if (ai == NULL)
        return NULL;
    return key_parse(ai, cfg->verify_key, cfg->verify_key_len, false);
}

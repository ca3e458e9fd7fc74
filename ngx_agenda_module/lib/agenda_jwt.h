/*
 * agenda_jwt.h — access tokens for the edge, on Debian's libjwt 1.10.2.
 *
 * That libjwt takes the algorithm from the token's own header and checks
 * no claim (RFC 8725 warns about both), so this layer does what it does
 * not: the key is always passed, exactly one configured algorithm is
 * accepted (a token saying "none", or HS256 when the key is an RSA/EC
 * public key, is refused before libjwt sees it), and every claim is
 * checked here: iss, aud, sub, iat, nbf, exp, jti and our own "tv" (the
 * user's token version, bumped by a password change) and "role".
 *
 * nginx-free and allocation-explicit: usable from the module and from the
 * unit tests alike.  Every function is reentrant.
 */
#ifndef AGENDA_JWT_H
#define AGENDA_JWT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/types.h>

#define AGENDA_JWT_MAX_TOKEN 4096 /* longer bearer tokens are refused */

enum agenda_jwt_err {
    AGENDA_JWT_OK = 0,
    AGENDA_JWT_MALFORMED,     /* not three base64url segments of JSON */
    AGENDA_JWT_BAD_ALG,       /* header alg is not the configured one */
    AGENDA_JWT_BAD_SIGNATURE,
    AGENDA_JWT_EXPIRED,       /* now >= exp + leeway */
    AGENDA_JWT_NOT_YET_VALID, /* now < nbf - leeway, or iat in the future */
    AGENDA_JWT_BAD_ISSUER,
    AGENDA_JWT_BAD_AUDIENCE,
    AGENDA_JWT_BAD_CLAIMS,    /* a claim missing or of the wrong type */
    AGENDA_JWT_BAD_KEY,       /* the configured key is unusable */
    AGENDA_JWT_NOMEM,
    AGENDA_JWT_ERR__COUNT
};

/* A sentence for each error (for logs; clients just get 401). */
const char *agenda_jwt_strerror(int err);

/* The accepted algorithms. */
enum agenda_jwt_alg {
    AGENDA_JWT_HS256 = 1,
    AGENDA_JWT_HS384,
    AGENDA_JWT_HS512,
    AGENDA_JWT_RS256,
    AGENDA_JWT_ES256
};

/* Parse "HS256", ... ; 0 when unknown. */
enum agenda_jwt_alg agenda_jwt_alg_parse(const char *name);

struct agenda_jwt_config {
    enum agenda_jwt_alg alg;
    const unsigned char *sign_key;   /* HMAC secret or private key PEM */
    size_t sign_key_len;
    const unsigned char *verify_key; /* HMAC secret or public key PEM */
    size_t verify_key_len;
    const char *issuer;              /* "iss", required and checked */
    const char *audience;            /* "aud", required and checked */
    unsigned ttl_s;                  /* lifetime of issued tokens */
    unsigned leeway_s;               /* clock skew allowed on exp/nbf/iat */
    /* RS256/ES256: verify_key parsed once (agenda_jwt_key_load()), which
     * agenda_jwt_verify() checks signatures with before libjwt does;
     * NULL: libjwt alone, ~0.5 ms per token (see agenda_jwt_sig.h) */
    EVP_PKEY *verify_pkey;
};

/*
 * Check cfg once, at configuration time: a known alg, issuer and audience
 * set, leeway_s <= 3600, ttl_s in 1..86400, and keys usable for alg — an
 * HMAC secret at least as long as the hash (RFC 7518 3.2), or unencrypted
 * PEM keys of the right type (RSA >= 2048 bits, EC P-256) that form a
 * pair (a probe token is signed and verified).  Parsing a PEM key costs
 * ~0.5 ms, so agenda_jwt_issue and agenda_jwt_verify re-check only what
 * is cheap; with an unchecked bad PEM key they fail with BAD_KEY (issue)
 * or BAD_SIGNATURE (verify).  Returns AGENDA_JWT_OK or AGENDA_JWT_BAD_KEY.
 */
int agenda_jwt_config_check(const struct agenda_jwt_config *cfg);

/*
 * cfg's verify key parsed, for cfg->verify_pkey: a new key (free it with
 * EVP_PKEY_free()) for RS256 and ES256 keys that agenda_jwt_config_check()
 * accepts, NULL otherwise (HMAC secrets have nothing to parse).
 */
EVP_PKEY *agenda_jwt_key_load(const struct agenda_jwt_config *cfg);

/* What a valid token says. */
struct agenda_jwt_claims {
    char sub[33];          /* the username (3..32 of [a-z0-9_.-]) */
    char role[8];          /* "user" or "admin" */
    char jti[65];
    uint64_t token_version;
    int64_t iat, nbf, exp; /* seconds since the epoch */
};

/*
 * Issue a token for sub with role and token_version at time now (seconds),
 * with iat = nbf = now, exp = now + ttl_s and the given jti (16..64
 * characters of [A-Za-z0-9_-]).  *out is malloc'd (caller frees).
 * Returns AGENDA_JWT_OK, AGENDA_JWT_BAD_KEY, AGENDA_JWT_BAD_CLAIMS (bad
 * argument) or AGENDA_JWT_NOMEM.
 */
int agenda_jwt_issue(const struct agenda_jwt_config *cfg, const char *sub,
                     const char *role, uint64_t token_version, int64_t now,
                     const char *jti, char **out);

/*
 * Verify token[0..len) at time now (seconds) and fill *claims.  Nothing is
 * trusted before the signature is checked with the configured algorithm
 * and key, and nothing after it is trusted without being checked.
 * Returns AGENDA_JWT_OK or the first problem found.
 */
int agenda_jwt_verify(const struct agenda_jwt_config *cfg, const char *token,
                      size_t len, int64_t now,
                      struct agenda_jwt_claims *claims);

/*
 * The clock part of verification alone, for claims a verification already
 * established (see agenda_jwt_memo.h): AGENDA_JWT_EXPIRED when now >= exp
 * + leeway, AGENDA_JWT_NOT_YET_VALID when now < nbf - leeway or now < iat
 * - leeway, else AGENDA_JWT_OK.
 */
int agenda_jwt_check_times(const struct agenda_jwt_config *cfg,
                           const struct agenda_jwt_claims *claims,
                           int64_t now);

#endif /* AGENDA_JWT_H */

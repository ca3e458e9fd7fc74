/*
 * agenda_jwt_sig.c — RS256/ES256 signatures checked with a parsed key
 * (see agenda_jwt_sig.h for why).
 */
#include "agenda_jwt_sig.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>

/* ES256's r and s, each the size of the P-256 group order. */
#define ES256_HALF 32

/* A P-256 ECDSA-Sig-Value in DER: a SEQUENCE of two INTEGERs of at most
 * 33 bytes (a leading zero when the top bit is set), 72 bytes at most. */
#define ES256_DER_MAX 72

/* The JWS form r||s as DER into der (ES256_DER_MAX bytes); its length, or
 * 0 on error. */
static size_t es256_der(const unsigned char *sig, unsigned char *der)
{
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, ES256_HALF, NULL);
    BIGNUM *s = BN_bin2bn(sig + ES256_HALF, ES256_HALF, NULL);
    unsigned char *p = der;
    int n = 0;

    if (es == NULL || r == NULL || s == NULL
        || ECDSA_SIG_set0(es, r, s) != 1) {
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(es);
        return 0;
    }
    /* es owns r and s from here */
    if (i2d_ECDSA_SIG(es, NULL) <= ES256_DER_MAX)
        n = i2d_ECDSA_SIG(es, &p);
    ECDSA_SIG_free(es);
    return n > 0 ? (size_t)n : 0;
}

/* The check itself; may leave OpenSSL errors queued. */
static bool sig_valid(EVP_PKEY *key, enum agenda_jwt_alg alg,
                      const unsigned char *signed_data, size_t len,
                      const unsigned char *sig, size_t sig_len)
{
    unsigned char der[ES256_DER_MAX];
    EVP_MD_CTX *md;
    bool ok;

    if (alg == AGENDA_JWT_ES256) {
        if (!EVP_PKEY_is_a(key, "EC") || sig_len != 2 * ES256_HALF)
            return false;
        sig_len = es256_der(sig, der);
        if (sig_len == 0)
            return false;
        sig = der;
    } else if (alg == AGENDA_JWT_RS256) {
        if (!EVP_PKEY_is_a(key, "RSA")
            || sig_len != (size_t)EVP_PKEY_get_size(key))
            return false;
    } else {
        return false;
    }
    md = EVP_MD_CTX_new();
    if (md == NULL)
        return false;
    ok = EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) == 1
         && EVP_DigestVerify(md, sig, sig_len, signed_data, len) == 1;
    EVP_MD_CTX_free(md);
    return ok;
}

bool agenda_jwt_sig_valid(EVP_PKEY *key, enum agenda_jwt_alg alg,
                          const unsigned char *signed_data, size_t len,
                          const unsigned char *sig, size_t sig_len)
{
    bool ok;

    if (key == NULL)
        return false;
    /* whatever a refusal queues in OpenSSL's errors is dropped: nginx's
     * TLS code, on the same thread, must not find it */
    ERR_set_mark();
    ok = sig_valid(key, alg, signed_data, len, sig, sig_len);
    ERR_pop_to_mark();
    return ok;
}

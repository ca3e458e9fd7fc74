/*
 * agenda_jwt_sig.h — checking an RS256 or ES256 signature with a public
 * key parsed once, ahead of libjwt.
 *
 * libjwt 1.10.2 takes its key as PEM text and parses it again for every
 * token (~0.5 ms for RSA or EC), on the nginx event loop.  Verifying first
 * with the key agenda_jwt_key_load() parsed at configuration time refuses
 * a forged token in tens of microseconds, so that a stream of them cannot
 * hold a worker; a token that passes is still verified by libjwt (and is
 * then remembered, agenda_jwt_memo.h), so this only ever refuses more.
 */
#ifndef AGENDA_JWT_SIG_H
#define AGENDA_JWT_SIG_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>

#include "agenda_jwt.h"

/*
 * Whether sig[0..sig_len) is alg's signature of signed[0..len) under key:
 * RS256, RSASSA-PKCS1-v1_5 with SHA-256 and a signature as long as the
 * modulus; ES256, ECDSA P-256 with SHA-256 and the JWS form of the
 * signature (RFC 7518 3.4: r and s, 32 bytes each, big-endian), which
 * OpenSSL wants as DER.  False for any other alg and on any error.
 */
bool agenda_jwt_sig_valid(EVP_PKEY *key, enum agenda_jwt_alg alg,
                          const unsigned char *signed_data, size_t len,
                          const unsigned char *sig, size_t sig_len);

#endif

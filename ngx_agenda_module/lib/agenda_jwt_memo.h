/*
 * agenda_jwt_memo.h — what recently verified access tokens said, so that a
 * client sending the same bearer token on every request is not verified
 * from scratch each time (base64url, two JSON parses, the HMAC twice and
 * libjwt's own decode: ~20% of an edge worker's CPU per created event).
 *
 * What is remembered is a fact about the token's bytes under one
 * configuration: "these exact bytes are a token signed with our key whose
 * claims are these".  It never goes stale while the configuration stays
 * (an nginx reload starts new workers with new memos), except for the
 * clock: every hit checks exp, nbf and iat against the time of the call,
 * exactly as a full verification would.  Revocation is not the memo's
 * business: the token version ("tv") is compared with the users shard's
 * after the token is read, memo or not.
 *
 * A token is found only by comparing all its bytes (in constant time, so
 * that how long a comparison takes tells nothing about a remembered
 * token); only valid tokens are ever stored, so an attacker can evict
 * entries only with valid tokens of their own, which costs the victim a
 * verification, nothing else.  Direct-mapped: a new token takes its slot.
 *
 * The memory is the caller's (nginx: one memo per worker, from the
 * cycle's pool), so there is nothing to free and no global state.
 */
#ifndef AGENDA_JWT_MEMO_H
#define AGENDA_JWT_MEMO_H

#include <stddef.h>

#include "agenda_jwt.h"

/* Longer tokens are verified every time (ours are ~300 bytes). */
#define AGENDA_JWT_MEMO_TOKEN_MAX 1024

struct agenda_jwt_memo;

/* Bytes needed for a memo of `slots` entries (1..1<<20); 0 otherwise. */
size_t agenda_jwt_memo_bytes(unsigned slots);

/* Lay an empty memo of `slots` entries out in mem (agenda_jwt_memo_bytes
 * bytes, suitably aligned for any object, as malloc's are) and return it:
 * the memo is mem itself, free mem to drop it.  NULL when slots is out of
 * range or mem is NULL. */
struct agenda_jwt_memo *agenda_jwt_memo_init(void *mem, unsigned slots);

/*
 * agenda_jwt_verify() through the memo (which may be NULL: a plain
 * verification): a remembered token only has its times checked against
 * now; any other is verified in full and, when valid, remembered.
 * Returns what agenda_jwt_verify() would, with the same *claims.
 */
int agenda_jwt_verify_memo(const struct agenda_jwt_config *cfg,
                           struct agenda_jwt_memo *memo, const char *token,
                           size_t len, int64_t now,
                           struct agenda_jwt_claims *claims);

/* Counters, for tests and benchmarks. */
struct agenda_jwt_memo_stat {
    unsigned long long hits, misses, stores;
};
void agenda_jwt_memo_stat(const struct agenda_jwt_memo *memo,
                          struct agenda_jwt_memo_stat *out);

#endif /* AGENDA_JWT_MEMO_H */

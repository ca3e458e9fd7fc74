/*
 * agenda_password.h — password hashing with argon2id (Debian libargon2).
 *
 * Hashing is deliberately slow (memory-hard): the module calls these from
 * an nginx thread pool, never from a worker's event loop.  The hash is a
 * PHC string ("$argon2id$v=19$m=...,t=...,p=...$salt$hash"), which is what
 * the users shard stores (it never sees a password).
 */
#ifndef AGENDA_PASSWORD_H
#define AGENDA_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AGENDA_PASSWORD_MIN 8       /* bytes */
#define AGENDA_PASSWORD_MAX 128     /* bytes; longer ones are refused */
#define AGENDA_PASSWORD_HASH_LEN 128 /* room for the PHC string */

/* Cost parameters (OWASP's argon2id baseline: 19 MiB, 2 passes, 1 lane). */
struct agenda_password_cost {
    uint32_t m_kib;
    uint32_t t;
    uint32_t p;
};

/* The defaults above; tests may use cheaper ones. */
void agenda_password_cost_default(struct agenda_password_cost *c);

/* True when pw (len bytes) is acceptable: AGENDA_PASSWORD_MIN..MAX bytes
 * of valid UTF-8 without control characters. */
bool agenda_password_acceptable(const char *pw, size_t len);

/*
 * Hash pw with a fresh random salt (16 bytes from the OS) into out
 * (AGENDA_PASSWORD_HASH_LEN bytes), NUL-terminated.  Returns 0, or -1 on
 * an unacceptable password or an internal failure.
 */
int agenda_password_hash(const struct agenda_password_cost *cost,
                         const char *pw, size_t len, char *out);

/*
 * Check pw against a stored PHC string in constant time with respect to
 * the password.  Returns 1 (match), 0 (no match) or -1 (malformed hash).
 * For unknown users the caller still calls this with a dummy hash, so that
 * response times do not reveal which usernames exist.
 */
int agenda_password_verify(const char *phc, const char *pw, size_t len);

#endif /* AGENDA_PASSWORD_H */

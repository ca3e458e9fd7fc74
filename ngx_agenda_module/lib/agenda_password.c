/*
 * agenda_password.c — argon2id password hashes (libargon2), PHC strings.
 *
 * A stored hash is parsed by this file before libargon2 sees it, for two
 * reasons: a malformed string must be told apart from a wrong password
 * (-1, not 0), and the cost parameters in it must be bounded — the hash
 * comes from storage, and a hash claiming gigabytes of memory or
 * thousands of passes would turn each login into a denial of service.
 * The bounds (COST_*_MAX) are the same for hashing, so every hash this
 * file produces, it also verifies.  They are tighter than what the users
 * shard accepts (agenda_password_hash_valid): the shard only stores
 * strings, the edge is the one that pays for computing them.
 *
 * Passwords are compared as bytes: no Unicode normalisation (we have no
 * normaliser at hand); clients are expected to send what the user typed,
 * the same way each time.
 */
#include "agenda_password.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include <argon2.h>

#include "validate.h"

#define SALT_LEN 16 /* bytes, from the OS */
#define HASH_LEN 32 /* bytes of argon2id output */

#define COST_M_MAX 1048576u /* KiB: 1 GiB */
#define COST_T_MAX 16u
#define COST_P_MAX 16u

/* Decoded sizes accepted in a stored hash (argon2's own minima, and as
 * long as anybody would make them). */
#define PHC_SALT_MIN 8
#define PHC_SALT_MAX 64
#define PHC_HASH_MIN 16
#define PHC_HASH_MAX 64

void agenda_password_cost_default(struct agenda_password_cost *c)
{
    c->m_kib = 19456;
    c->t = 2;
    c->p = 1;
}

static bool cost_ok(uint32_t m, uint32_t t, uint32_t p)
{
    /* argon2 itself needs m >= 8 * p */
    return t >= 1 && t <= COST_T_MAX && p >= 1 && p <= COST_P_MAX
           && m >= 8 * p && m <= COST_M_MAX;
}

/* ---- acceptable passwords ------------------------------------------------ */

/*
 * Length of the well-formed UTF-8 sequence at s[0..n) (validate.h) that is
 * not a control character (C0, DEL, C1); 0 when there is none.
 */
static size_t utf8_char(const unsigned char *s, size_t n)
{
    uint32_t cp;
    size_t len = agenda_utf8_decode(s, n, &cp);

    if (len == 0 || cp < 0x20 || (cp >= 0x7F && cp <= 0x9F))
        return 0;
    return len;
}

bool agenda_password_acceptable(const char *pw, size_t len)
{
    const unsigned char *s = (const unsigned char *)pw;
    size_t i = 0, n;

    if (pw == NULL || len < AGENDA_PASSWORD_MIN || len > AGENDA_PASSWORD_MAX)
        return false;
    while (i < len) {
        n = utf8_char(s + i, len - i);
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}

/* ---- hashing ------------------------------------------------------------- */

static int random_bytes(unsigned char *buf, size_t len)
{
    size_t got = 0;
    ssize_t r;

    while (got < len) {
        r = getrandom(buf + got, len - got, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        got += (size_t)r;
    }
    return 0;
}

int agenda_password_hash(const struct agenda_password_cost *cost,
                         const char *pw, size_t len, char *out)
{
    unsigned char salt[SALT_LEN];
    int rc;

    if (out == NULL)
        return -1;
    out[0] = '\0';
    if (cost == NULL || !cost_ok(cost->m_kib, cost->t, cost->p)
        || !agenda_password_acceptable(pw, len)
        || argon2_encodedlen(cost->t, cost->m_kib, cost->p, SALT_LEN,
                             HASH_LEN, Argon2_id)
               > AGENDA_PASSWORD_HASH_LEN
        || random_bytes(salt, sizeof salt) != 0)
        return -1;
    rc = argon2id_hash_encoded(cost->t, cost->m_kib, cost->p, pw, len, salt,
                               sizeof salt, HASH_LEN, out,
                               AGENDA_PASSWORD_HASH_LEN);
    if (rc != ARGON2_OK) {
        out[0] = '\0';
        return -1;
    }
    return 0;
}

/* ---- verifying ----------------------------------------------------------- */

static bool eat(const char **p, const char *lit)
{
    size_t n = strlen(lit);

    if (strncmp(*p, lit, n) != 0)
        return false;
    *p += n;
    return true;
}

/* A decimal without leading zeros, at most 9 digits; advance *p. */
static bool eat_uint(const char **p, uint32_t *out)
{
    const char *s = *p;
    uint32_t v = 0;
    size_t n = 0;

    while (s[n] >= '0' && s[n] <= '9') {
        if (n == 9)
            return false;
        v = v * 10 + (uint32_t)(s[n] - '0');
        n++;
    }
    if (n == 0 || (n > 1 && s[0] == '0'))
        return false;
    *p = s + n;
    *out = v;
    return true;
}

static bool is_b64(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
           || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

/* PHC base64 (standard alphabet, unpadded) up to the next '$' or the end,
 * decoding to [min, max] bytes; advance *p. */
static bool eat_b64(const char **p, size_t min, size_t max)
{
    const char *s = *p;
    size_t n = 0, bytes;

    while (is_b64(s[n]))
        n++;
    if (n % 4 == 1 || (s[n] != '\0' && s[n] != '$'))
        return false;
    bytes = n / 4 * 3 + (n % 4 == 0 ? 0 : n % 4 - 1);
    if (bytes < min || bytes > max)
        return false;
    *p = s + n;
    return true;
}

/* "$argon2id$v=19$m=M,t=T,p=P$salt$hash" with bounded costs and sizes. */
static bool phc_ok(const char *phc)
{
    const char *p = phc;
    uint32_t m, t, par;

    if (strnlen(phc, AGENDA_PASSWORD_HASH_LEN) >= AGENDA_PASSWORD_HASH_LEN)
        return false;
    return eat(&p, "$argon2id$v=19$m=") && eat_uint(&p, &m)
           && eat(&p, ",t=") && eat_uint(&p, &t)
           && eat(&p, ",p=") && eat_uint(&p, &par) && cost_ok(m, t, par)
           && eat(&p, "$") && eat_b64(&p, PHC_SALT_MIN, PHC_SALT_MAX)
           && eat(&p, "$") && eat_b64(&p, PHC_HASH_MIN, PHC_HASH_MAX)
           && *p == '\0';
}

int agenda_password_verify(const char *phc, const char *pw, size_t len)
{
    int rc;

    if (phc == NULL || !phc_ok(phc))
        return -1;
    /* such a password was never hashed (agenda_password_hash refuses it) */
    if (pw == NULL || len > AGENDA_PASSWORD_MAX)
        return 0;
    /* argon2id_verify compares the tags in constant time */
    rc = argon2id_verify(phc, pw, len);
    if (rc == ARGON2_OK)
        return 1;
    if (rc == ARGON2_VERIFY_MISMATCH)
        return 0;
    return -1;
}

/*
 * agenda_jwt_memo.c — a direct-mapped table of verified tokens and their
 * claims (see agenda_jwt_memo.h for what is remembered and why it is safe).
 */
#include "agenda_jwt_memo.h"

#include <stdint.h>
#include <string.h>

#include <openssl/crypto.h>

#define MEMO_SLOTS_MAX (1u << 20)

struct memo_slot {
    size_t len; /* 0: empty */
    struct agenda_jwt_claims claims;
    char token[AGENDA_JWT_MEMO_TOKEN_MAX];
};

struct agenda_jwt_memo {
    unsigned slots;
    struct agenda_jwt_memo_stat stat;
    struct memo_slot slot[];
};

size_t agenda_jwt_memo_bytes(unsigned slots)
{
    if (slots == 0 || slots > MEMO_SLOTS_MAX)
        return 0;
    return sizeof(struct agenda_jwt_memo) + slots * sizeof(struct memo_slot);
}

struct agenda_jwt_memo *agenda_jwt_memo_init(void *mem, unsigned slots)
{
    struct agenda_jwt_memo *m = mem;

    if (m == NULL || agenda_jwt_memo_bytes(slots) == 0)
        return NULL;
    memset(m, 0, agenda_jwt_memo_bytes(slots));
    m->slots = slots;
    return m;
}

/* FNV-1a: spreads tokens over the slots; not a security boundary (a slot
 * is only ever matched by comparing every byte). */
static struct memo_slot *slot_of(struct agenda_jwt_memo *m, const char *t,
                                 size_t len)
{
    uint64_t h = UINT64_C(14695981039346656037);

    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)t[i];
        h *= UINT64_C(1099511628211);
    }
    return &m->slot[h % m->slots];
}

int agenda_jwt_verify_memo(const struct agenda_jwt_config *cfg,
                           struct agenda_jwt_memo *memo, const char *token,
                           size_t len, int64_t now,
                           struct agenda_jwt_claims *claims)
{
    struct memo_slot *s;
    int rc;

    if (memo == NULL || token == NULL || claims == NULL || len == 0
        || len > AGENDA_JWT_MEMO_TOKEN_MAX)
        return agenda_jwt_verify(cfg, token, len, now, claims);
    s = slot_of(memo, token, len);
    if (s->len == len && CRYPTO_memcmp(s->token, token, len) == 0) {
        memo->stat.hits++;
        rc = agenda_jwt_check_times(cfg, &s->claims, now);
        if (rc != AGENDA_JWT_OK) {
            /* an expired token is never valid again: free its slot (one
             * not valid yet may become valid: keep it) */
            if (rc == AGENDA_JWT_EXPIRED)
                s->len = 0;
            memset(claims, 0, sizeof *claims);
            return rc;
        }
        *claims = s->claims;
        return AGENDA_JWT_OK;
    }
    memo->stat.misses++;
    rc = agenda_jwt_verify(cfg, token, len, now, claims);
    if (rc == AGENDA_JWT_OK) {
        memcpy(s->token, token, len);
        s->len = len;
        s->claims = *claims;
        memo->stat.stores++;
    }
    return rc;
}

void agenda_jwt_memo_stat(const struct agenda_jwt_memo *memo,
                          struct agenda_jwt_memo_stat *out)
{
    if (memo == NULL)
        memset(out, 0, sizeof *out);
    else
        *out = memo->stat;
}

/* sim_kv.c — the simulated state machine's data and command codec. */
#include "sim_kv.h"

#include "sim_rng.h"

#define SIM_CMD_MAGIC 0x50 /* 'P' for PUT */

void sim_cmd_encode(const struct sim_cmd *c, uint8_t out[SIM_CMD_LEN])
{
    out[0] = SIM_CMD_MAGIC;
    out[1] = c->key;
    out[2] = 0;
    out[3] = 0;
    for (unsigned i = 0; i < 8; i++)
        out[4 + i] = (uint8_t)(c->value >> (8 * i));
}

bool sim_cmd_decode(const uint8_t *p, size_t len, struct sim_cmd *out)
{
    if (p == NULL || len != SIM_CMD_LEN)
        return false;
    if (p[0] != SIM_CMD_MAGIC || p[1] >= SIM_KV_KEYS || p[2] || p[3])
        return false;
    uint64_t v = 0;
    for (unsigned i = 0; i < 8; i++)
        v |= (uint64_t)p[4 + i] << (8 * i);
    if (v == 0)
        return false;
    out->key = p[1];
    out->value = v;
    return true;
}

uint64_t sim_kv_digest(const struct sim_kv *kv)
{
    uint64_t h = 0x243f6a8885a308d3ULL;
    for (unsigned k = 0; k < SIM_KV_KEYS; k++)
        h = sim_mix64(h ^ sim_mix64(kv->val[k] + k));
    return h;
}

uint64_t sim_hash_bytes(const uint8_t *p, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return sim_mix64(h ^ len);
}

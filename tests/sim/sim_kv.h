/*
 * sim_kv.h — the simulated state machine: a register per small integer key.
 *
 * Key 0 is reserved for the simulator's liveness probe; clients use keys
 * 1 .. SIM_KV_KEYS - 1.  A value of 0 means "never written"; every written
 * value is nonzero and unique within a run, which is what lets the checkers
 * tell writes apart.
 */
#ifndef SIM_KV_H
#define SIM_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIM_KV_KEYS 16
#define SIM_KV_PROBE_KEY 0
#define SIM_CMD_LEN 12

struct sim_kv {
    uint64_t val[SIM_KV_KEYS];
};

/* PUT(key, value): the only command in the log. */
struct sim_cmd {
    uint8_t key;
    uint64_t value;
};

/* Encode into exactly SIM_CMD_LEN bytes. */
void sim_cmd_encode(const struct sim_cmd *c, uint8_t out[SIM_CMD_LEN]);

/* Decode untrusted bytes.  Returns false (and leaves *out unspecified)
 * unless p holds a well-formed command: right length, magic, key in range,
 * padding zero, value nonzero. */
bool sim_cmd_decode(const uint8_t *p, size_t len, struct sim_cmd *out);

/* Order-independent-of-history digest of the whole map: two maps have the
 * same digest iff (with overwhelming probability) they hold the same values. */
uint64_t sim_kv_digest(const struct sim_kv *kv);

/* 64-bit hash of a byte string (FNV-1a, then mixed). */
uint64_t sim_hash_bytes(const uint8_t *p, size_t len);

#endif /* SIM_KV_H */

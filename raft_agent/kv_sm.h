/*
 * kv_sm.h — the diagnostic key-value state machine.
 *
 * Used by tests and benchmarks to exercise the replicated log without the
 * agenda data model: PUT and DELETE of opaque values under printable keys.
 * Command payload (inside the envelope of command.h):
 *   u8 op (1 = put, 2 = delete), u16 LE key length, key, value bytes.
 * Queries: path "kv/<key>" answers the raw value.
 */
#ifndef AGENDA_KV_SM_H
#define AGENDA_KV_SM_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "sm.h"

#define AGENDA_KV_KEY_MAX 256
#define AGENDA_KV_OP_PUT 1
#define AGENDA_KV_OP_DELETE 2

struct agenda_kv_sm {
    MDB_dbi db;
};

extern const struct sm_ops agenda_kv_sm_ops;

/* True when key (len bytes) is an acceptable key: 1..AGENDA_KV_KEY_MAX
 * printable ASCII bytes other than '/'. */
bool agenda_kv_key_valid(const char *key, size_t len);

/* Append a command payload to out.  Returns 0 or -1. */
int agenda_kv_encode(struct agenda_buf *out, int op, const char *key,
                     size_t key_len, const void *value, size_t value_len);

#endif /* AGENDA_KV_SM_H */

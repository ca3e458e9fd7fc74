/*
 * mux_sm.c — the agent's state machine: the agenda state machine and the
 * diagnostic key-value store side by side in one environment; see mux_sm.h.
 *
 * Commands are told apart by their first byte: agenda operations are JSON
 * objects ('{'), key-value commands start with their op byte (1 or 2).
 * Queries by path: "kv/..." or "v1/queries".
 */
#include "mux_sm.h"

#include <errno.h>
#include <string.h>

#include <openssl/evp.h>

static int mux_open(void *p, MDB_txn *txn)
{
    struct agenda_mux_sm *m = p;
    int rc = agenda_kv_sm_ops.open(&m->kv, txn);
    return rc != 0 ? rc : agenda_sm_ops.open(&m->agenda, txn);
}

static int mux_apply(void *p, MDB_txn *txn, const struct sm_apply_info *info,
                     const uint8_t *cmd, size_t len, struct sm_result *res)
{
    struct agenda_mux_sm *m = p;
    if (len > 0 && cmd[0] == '{')
        return agenda_sm_ops.apply(&m->agenda, txn, info, cmd, len, res);
    return agenda_kv_sm_ops.apply(&m->kv, txn, info, cmd, len, res);
}

static int mux_query(void *p, MDB_txn *txn, const struct sm_query *q,
                     struct sm_result *res)
{
    struct agenda_mux_sm *m = p;
    if (strncmp(q->path, "kv/", 3) == 0)
        return agenda_kv_sm_ops.query(&m->kv, txn, q, res);
    return agenda_sm_ops.query(&m->agenda, txn, q, res);
}

static int mux_digest(void *p, MDB_txn *txn, uint8_t out[32])
{
    struct agenda_mux_sm *m = p;
    uint8_t kv[32], ag[32];
    int rc = agenda_kv_sm_ops.digest(&m->kv, txn, kv);
    if (rc == 0)
        rc = agenda_sm_ops.digest(&m->agenda, txn, ag);
    if (rc != 0)
        return rc;
    EVP_MD_CTX *h = EVP_MD_CTX_new();
    unsigned int n = 32;
    if (h == NULL || EVP_DigestInit_ex(h, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(h, kv, 32) != 1 || EVP_DigestUpdate(h, ag, 32) != 1 ||
        EVP_DigestFinal_ex(h, out, &n) != 1)
        rc = ENOMEM;
    EVP_MD_CTX_free(h);
    return rc;
}

const struct sm_ops agenda_mux_sm_ops = {
    .name = "agenda+kv",
    .open = mux_open,
    .apply = mux_apply,
    .query = mux_query,
    .digest = mux_digest,
};

/* kv_sm.c — the diagnostic key-value state machine; see kv_sm.h. */
#include "kv_sm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

bool agenda_kv_key_valid(const char *key, size_t len)
{
    if (len == 0 || len > AGENDA_KV_KEY_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (key[i] <= ' ' || key[i] > '~' || key[i] == '/')
            return false;
    return true;
}

int agenda_kv_encode(struct agenda_buf *out, int op, const char *key,
                     size_t key_len, const void *value, size_t value_len)
{
    if (!agenda_kv_key_valid(key, key_len))
        return -1;
    uint8_t hdr[3] = {(uint8_t)op, (uint8_t)(key_len & 0xff),
                      (uint8_t)(key_len >> 8)};
    if (agenda_buf_reserve(out, 3 + key_len + value_len) != 0)
        return -1;
    agenda_buf_append(out, hdr, 3);
    agenda_buf_append(out, key, key_len);
    agenda_buf_append(out, value, value_len);
    return 0;
}

static int kv_open(void *sm, MDB_txn *txn)
{
    struct agenda_kv_sm *kv = sm;
    return mdb_dbi_open(txn, "kv", MDB_CREATE, &kv->db);
}

static int set_error(struct sm_result *res, int status, const char *code,
                     const char *message)
{
    res->status = status;
    agenda_buf_reset(&res->body);
    json_t *j = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message",
                          message);
    char *text = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
    int rv = text != NULL ? agenda_buf_append(&res->body, text, strlen(text))
                          : -1;
    free(text);
    json_decref(j);
    return rv == 0 ? 0 : ENOMEM;
}

static int kv_apply(void *sm, MDB_txn *txn, const struct sm_apply_info *info,
                    const uint8_t *cmd, size_t len, struct sm_result *res)
{
    struct agenda_kv_sm *kv = sm;
    if (len < 3)
        return set_error(res, 400, "bad_command", "truncated kv command");
    int op = cmd[0];
    size_t klen = (size_t)cmd[1] | ((size_t)cmd[2] << 8);
    if (len < 3 + klen || !agenda_kv_key_valid((const char *)cmd + 3, klen))
        return set_error(res, 400, "bad_key", "malformed kv key");
    MDB_val k = {klen, (void *)(uintptr_t)(cmd + 3)};
    int rc;
    if (op == AGENDA_KV_OP_PUT) {
        MDB_val v = {len - 3 - klen, (void *)(uintptr_t)(cmd + 3 + klen)};
        rc = mdb_put(txn, kv->db, &k, &v, 0);
    } else if (op == AGENDA_KV_OP_DELETE) {
        rc = mdb_del(txn, kv->db, &k, NULL);
        if (rc == MDB_NOTFOUND)
            return set_error(res, 404, "not_found", "no such key");
    } else {
        return set_error(res, 400, "bad_command", "unknown kv operation");
    }
    if (rc != 0)
        return rc;
    res->status = 200;
    agenda_buf_reset(&res->body);
    json_t *j = json_pack("{s:s%,s:I}", "key", (const char *)cmd + 3, klen,
                          "index", (json_int_t)info->index);
    char *text = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
    rc = text != NULL ? agenda_buf_append(&res->body, text, strlen(text)) : -1;
    free(text);
    json_decref(j);
    return rc == 0 ? 0 : ENOMEM;
}

static int kv_query(void *sm, MDB_txn *txn, const struct sm_query *q,
                    struct sm_result *res)
{
    struct agenda_kv_sm *kv = sm;
    if (strncmp(q->path, "kv/", 3) != 0)
        return set_error(res, 404, "not_found", "unknown resource");
    const char *key = q->path + 3;
    size_t klen = strlen(key);
    if (!agenda_kv_key_valid(key, klen))
        return set_error(res, 400, "bad_key",
                         "keys are 1-256 printable ASCII characters, no '/'");
    MDB_val k = {klen, (void *)(uintptr_t)key}, v;
    int rc = mdb_get(txn, kv->db, &k, &v);
    if (rc == MDB_NOTFOUND)
        return set_error(res, 404, "not_found", "no such key");
    if (rc != 0)
        return rc;
    res->status = 200;
    agenda_buf_reset(&res->body);
    return agenda_buf_append(&res->body, v.mv_data, v.mv_size) == 0 ? 0
                                                                   : ENOMEM;
}

static int kv_digest(void *sm, MDB_txn *txn, uint8_t out[32])
{
    struct agenda_kv_sm *kv = sm;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(ctx);
        return ENOMEM;
    }
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, kv->db, &cur);
    if (rc == 0) {
        MDB_val k, v;
        while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
            uint8_t lens[8];
            for (int i = 0; i < 4; i++) {
                lens[i] = (uint8_t)(k.mv_size >> (8 * i));
                lens[4 + i] = (uint8_t)(v.mv_size >> (8 * i));
            }
            EVP_DigestUpdate(ctx, lens, sizeof(lens));
            EVP_DigestUpdate(ctx, k.mv_data, k.mv_size);
            EVP_DigestUpdate(ctx, v.mv_data, v.mv_size);
        }
        mdb_cursor_close(cur);
        if (rc == MDB_NOTFOUND)
            rc = 0;
    }
    unsigned int n = 32;
    if (rc == 0 && EVP_DigestFinal_ex(ctx, out, &n) != 1)
        rc = ENOMEM;
    EVP_MD_CTX_free(ctx);
    return rc;
}

const struct sm_ops agenda_kv_sm_ops = {
    .name = "kv",
    .open = kv_open,
    .apply = kv_apply,
    .query = kv_query,
    .digest = kv_digest,
};

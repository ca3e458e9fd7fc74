/*
 * agenda_sm.c — the agenda state machine behind sm.h: decodes operations,
 * routes them to the handlers of the op tables, isolates each command in a
 * nested LMDB transaction and audits it.
 *
 * A command runs in a child transaction of the apply batch: when it answers
 * with a client error its writes are thrown away whatever the handler did,
 * so "bad input changes nothing" holds by construction; the audit record of
 * the attempt is then written to the parent.
 */
#include "agenda_sm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "validate.h"

#define OP_NAME_MAX 64

static const struct agenda_op *const op_tables[] = {
    agenda_user_ops, agenda_group_ops, agenda_event_ops, agenda_feed_ops,
    agenda_audit_ops,
};

const struct agenda_op *agenda_op_find(const char *name)
{
    for (size_t t = 0; t < sizeof(op_tables) / sizeof(op_tables[0]); t++)
        for (const struct agenda_op *op = op_tables[t]; op->name != NULL;
             op++)
            if (strcmp(op->name, name) == 0)
                return op;
    return NULL;
}

int agenda_op_refusal(const char *name, size_t len, bool want_command,
                      const struct agenda_op **op, const char **code,
                      char *msg, size_t msg_size)
{
    if (len > AGENDA_OP_BODY_MAX) {
        *code = "too_large";
        snprintf(msg, msg_size, "operations are limited to %d bytes",
                 AGENDA_OP_BODY_MAX);
        return 413;
    }
    if (name == NULL)
        return 0;
    const struct agenda_op *found = agenda_op_find(name);
    if (found == NULL) {
        *code = "unknown_op";
        snprintf(msg, msg_size, "unknown operation '%.64s'", name);
        agenda_utf8_cut(msg);
        return 400;
    }
    if (found->is_command != want_command) {
        *code = "wrong_kind";
        snprintf(msg, msg_size, "'%s' is a %s; send it to %s", found->name,
                 found->is_command ? "command" : "query",
                 found->is_command ? "/v1/commands" : "/v1/queries");
        return 400;
    }
    if (op != NULL)
        *op = found;
    return 0;
}

/* Decode {"op","actor","args"} into c; on a client error the answer is set
 * and NULL returned.  *root receives the parsed document (caller frees). */
static const struct agenda_op *decode(struct agenda_ctx *c,
                                      const struct agenda_sm *sm,
                                      const uint8_t *p, size_t len,
                                      bool want_command, json_t **root)
{
    *root = NULL;
    const char *code;
    char why[160];
    int status = agenda_op_refusal(NULL, len, want_command, NULL, &code, why,
                                   sizeof(why));
    if (status != 0) {
        agenda_fail(c, status, code, "%s", why);
        return NULL;
    }
    json_error_t jerr;
    json_t *j = json_loadb((const char *)p, len, JSON_REJECT_DUPLICATES,
                           &jerr);
    if (j == NULL || !json_is_object(j)) {
        json_decref(j);
        agenda_fail(c, 400, "bad_json", "the operation must be a JSON object "
                    "with op, actor and args: %.200s",
                    j == NULL ? jerr.text : "not an object");
        return NULL;
    }
    *root = j;
    c->args = json_object_get(j, "args");
    const char *key;
    json_t *v;
    json_object_foreach(j, key, v) {
        if (strcmp(key, "op") != 0 && strcmp(key, "actor") != 0 &&
            strcmp(key, "args") != 0) {
            agenda_fail(c, 400, "unknown_field",
                        "unknown top-level field '%.64s'", key);
            return NULL;
        }
    }
    json_t *jop = json_object_get(j, "op");
    if (!json_is_string(jop) || json_string_length(jop) > OP_NAME_MAX) {
        agenda_fail(c, 400, "missing_field", "'op' must name an operation");
        return NULL;
    }
    c->op = json_string_value(jop);
    const struct agenda_op *op = NULL;
    status = agenda_op_refusal(c->op, len, want_command, &op, &code, why,
                               sizeof(why));
    if (status != 0) {
        agenda_fail(c, status, code, "%s", why);
        return NULL;
    }
    if ((op->shards & (1u << sm->shard.kind)) == 0) {
        agenda_fail(c, 421, "wrong_shard", "'%s' is not served by this shard",
                    op->name);
        return NULL;
    }
    if (c->args == NULL) {
        c->args = json_object();
        json_object_set_new(j, "args", c->args);
    } else if (!json_is_object(c->args)) {
        agenda_fail(c, 400, "invalid_field", "'args' must be an object");
        return NULL;
    }

    json_t *actor = json_object_get(j, "actor");
    if (!json_is_object(actor)) {
        agenda_fail(c, 400, "missing_field", "'actor' must be an object "
                    "with user, role and calendar_role");
        return NULL;
    }
    json_object_foreach(actor, key, v) {
        if (strcmp(key, "user") != 0 && strcmp(key, "role") != 0 &&
            strcmp(key, "calendar_role") != 0) {
            agenda_fail(c, 400, "unknown_field",
                        "unknown actor field '%.64s'", key);
            return NULL;
        }
    }
    json_t *u = json_object_get(actor, "user");
    json_t *r = json_object_get(actor, "role");
    json_t *cr = json_object_get(actor, "calendar_role");
    c->actor.user[0] = '\0';
    if (u != NULL && (!json_is_string(u) ||
                      (json_string_length(u) > 0 &&
                       agenda_username_fold(json_string_value(u),
                                            c->actor.user) != 0))) {
        agenda_fail(c, 400, "invalid_actor", "actor.user is not a username");
        return NULL;
    }
    c->actor.role = json_is_string(r) ? agenda_role_parse(json_string_value(r))
                                      : (enum agenda_role)0;
    if (c->actor.role == 0) {
        agenda_fail(c, 400, "invalid_actor",
                    "actor.role must be user, admin or system");
        return NULL;
    }
    if (c->actor.user[0] == '\0' && c->actor.role != AGENDA_ROLE_SYSTEM &&
        strcmp(op->name, "user.register") != 0) {
        agenda_fail(c, 401, "unauthenticated", "'%s' needs an actor.user",
                    op->name);
        return NULL;
    }
    int cal = cr == NULL ? AGENDA_CAL_NONE
              : json_is_string(cr)
                  ? (int)agenda_cal_role_parse(json_string_value(cr))
                  : -1;
    if (cal < 0) {
        agenda_fail(c, 400, "invalid_actor",
                    "actor.calendar_role must be none, member or leader");
        return NULL;
    }
    c->actor.cal_role = (enum agenda_cal_role)cal;
    return op;
}

static int sm_open(void *p, MDB_txn *txn)
{
    struct agenda_sm *sm = p;
    int rc = agenda_db_open(&sm->db, txn);
    return rc != 0 ? rc : agenda_format_upgrade(txn, &sm->db);
}

static int sm_apply(void *p, MDB_txn *txn, const struct sm_apply_info *info,
                    const uint8_t *cmd, size_t len, struct sm_result *res)
{
    struct agenda_sm *sm = p;
    struct agenda_ctx c = {
        .db = &sm->db,
        .shard = &sm->shard,
        .txn = txn,
        .is_command = true,
        .index = info->index,
        .now_ms = (int64_t)info->time_ms,
        .request_id = info->request_id,
        .op = "",
        .res = res,
    };
    res->status = 0;
    json_t *root;
    const struct agenda_op *op = decode(&c, sm, cmd, len, true, &root);
    int rc = 0;
    if (op != NULL) {
        MDB_txn *child;
        rc = mdb_txn_begin(mdb_txn_env(txn), txn, 0, &child);
        if (rc == 0) {
            c.txn = child;
            rc = op->handler(&c);
            if (rc == EINVAL) {
                /* A handler bug, the same on every replica: answer it
                 * rather than stall the shard retrying the batch forever. */
                rc = agenda_fail(&c, 500, "internal",
                                 "'%s' failed inside the state machine; "
                                 "nothing was changed", op->name);
            }
            if (rc == 0 && !agenda_failed(&c) && c.res->status == 0)
                rc = agenda_reply(&c, 200, NULL);
            if (rc != 0 || agenda_failed(&c))
                mdb_txn_abort(child);
            else
                rc = mdb_txn_commit(child);
            c.txn = txn;
        }
    }
    if (rc == 0) {
        char outcome[80];
        if (agenda_failed(&c)) {
            json_t *e = json_loadb((const char *)res->body.data,
                                   res->body.len, 0, NULL);
            const char *code = json_string_value(
                json_object_get(json_object_get(e, "error"), "code"));
            snprintf(outcome, sizeof(outcome), "error:%d:%s", res->status,
                     code != NULL ? code : "unknown");
            json_decref(e);
        } else {
            snprintf(outcome, sizeof(outcome), "ok");
        }
        rc = agenda_audit_append(&c, outcome);
    }
    json_decref(root);
    return rc;
}

static int sm_query(void *p, MDB_txn *txn, const struct sm_query *q,
                    struct sm_result *res)
{
    struct agenda_sm *sm = p;
    struct agenda_ctx c = {
        .db = &sm->db,
        .shard = &sm->shard,
        .txn = txn,
        .is_command = false,
        .op = "",
        .res = res,
    };
    res->status = 0;
    json_t *root;
    const struct agenda_op *op =
        decode(&c, sm, q->body, q->body_len, false, &root);
    int rc = 0;
    if (op != NULL) {
        rc = op->handler(&c);
        if (rc == 0 && res->status == 0)
            rc = agenda_reply(&c, 200, NULL);
    }
    json_decref(root);
    return rc;
}

/* Hash one database (name, then every key/value with lengths). */
static int digest_db(EVP_MD_CTX *h, MDB_txn *txn, MDB_dbi dbi,
                     const char *name)
{
    EVP_DigestUpdate(h, name, strlen(name) + 1);
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, dbi, &cur);
    if (rc != 0)
        return rc;
    MDB_val k, v;
    while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
        uint8_t lens[16];
        agenda_key_u64(lens, k.mv_size);
        agenda_key_u64(lens + 8, v.mv_size);
        EVP_DigestUpdate(h, lens, sizeof(lens));
        EVP_DigestUpdate(h, k.mv_data, k.mv_size);
        EVP_DigestUpdate(h, v.mv_data, v.mv_size);
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static int sm_digest(void *p, MDB_txn *txn, uint8_t out[32])
{
    struct agenda_sm *sm = p;
    const struct agenda_db *d = &sm->db;
    const struct {
        MDB_dbi dbi;
        const char *name;
    } dbs[] = {
        {d->users, "users"},           {d->groups, "groups"},
        {d->group_members, "members"}, {d->events, "events"},
        {d->ev_by_cal, "ev_by_cal"},   {d->ev_by_part, "ev_by_part"},
        {d->cal_meta, "cal_meta"},     {d->feed, "feed"},
        {d->feed_by_target, "feed_t"}, {d->audit, "audit"},
        {d->meta, "meta"},
    };
    EVP_MD_CTX *h = EVP_MD_CTX_new();
    if (h == NULL || EVP_DigestInit_ex(h, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(h);
        return ENOMEM;
    }
    int rc = 0;
    for (size_t i = 0; i < sizeof(dbs) / sizeof(dbs[0]) && rc == 0; i++)
        rc = digest_db(h, txn, dbs[i].dbi, dbs[i].name);
    unsigned int n = 32;
    if (rc == 0 && EVP_DigestFinal_ex(h, out, &n) != 1)
        rc = ENOMEM;
    EVP_MD_CTX_free(h);
    return rc;
}

const struct sm_ops agenda_sm_ops = {
    .name = "agenda",
    .open = sm_open,
    .apply = sm_apply,
    .query = sm_query,
    .digest = sm_digest,
};

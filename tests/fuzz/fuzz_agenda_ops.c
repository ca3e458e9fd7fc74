/*
 * fuzz_agenda_ops.c — agenda operations from an untrusted edge, applied:
 * the operation decoder, the dispatcher and every handler and validator
 * behind it, on a state machine of each shard kind.
 *
 * Input: the first byte selects the shard kind (byte % 3, 0 meaning 3:
 * 1 events, 2 groups, 3 users, as enum agenda_shard_kind); the rest is one
 * operation per line, a line starting with '?' being a query and any other
 * a command.  The lines run in order in one
 * write transaction over a small committed base state (two users, a group
 * with a leader and a member), which is aborted afterwards, so every input
 * starts from the same state and sequences reach the deep rules (last
 * leader, limits, versions).  FUZZ_AGENDA_VERBOSE=1 prints each answer
 * (to see what a corpus file reaches).
 *
 * Checked: no crash or sanitizer report; every answer has a status in
 * 200..599 and a JSON object body, error answers carry error.code; a
 * handler returns only LMDB resource errors; and after the sequence the
 * membership index matches the group records exactly, every group has a
 * leader.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <lmdb.h>

#include "agenda_sm.h"
#include "topology.h"
#include "../env_dir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_LINES 64
#define BASE_TIME_MS 1795000000000LL

static MDB_env *env;
static char env_dir[] = "/tmp/agenda-fuzz-ops-XXXXXX";
static struct agenda_sm sms[3];

static void remove_env(void)
{
    mdb_env_close(env);
    test_env_dir_remove(env_dir);
}

/* Apply one command; returns the handler's rc (status in res). */
static int apply(struct agenda_sm *sm, MDB_txn *txn, uint64_t index,
                 const char *text, size_t len, struct sm_result *res)
{
    char id[32];
    snprintf(id, sizeof(id), "fuzz-%llu", (unsigned long long)index);
    struct sm_apply_info info = {
        .index = index,
        .time_ms = (uint64_t)(BASE_TIME_MS + (int64_t)index * 1000),
        .request_id = id,
    };
    agenda_buf_reset(&res->body);
    return agenda_sm_ops.apply(sm, txn, &info, (const uint8_t *)text, len,
                               res);
}

static void base_state(void)
{
    static const struct {
        int kind;
        const char *op;
    } base[] = {
        {AGENDA_SHARD_USERS,
         "{\"op\":\"user.register\",\"actor\":{\"user\":\"\",\"role\":"
         "\"user\"},\"args\":{\"username\":\"alice\",\"display_name\":\"A\","
         "\"email\":\"a@example.org\",\"password_hash\":\"$argon2id$v=19$"
         "m=65536,t=3,p=4$c2FsdHNhbHRzYWx0c2FsdA$AAECAwQFBgcICQoLDA0ODxAREh"
         "MUFRYXGBkaGxwdHh8\"}}"},
        {AGENDA_SHARD_USERS,
         "{\"op\":\"user.register\",\"actor\":{\"user\":\"\",\"role\":"
         "\"user\"},\"args\":{\"username\":\"bob\",\"display_name\":\"B\","
         "\"email\":\"b@example.org\",\"password_hash\":\"$argon2id$v=19$"
         "m=65536,t=3,p=4$c2FsdHNhbHRzYWx0c2FsdA$AAECAwQFBgcICQoLDA0ODxAREh"
         "MUFRYXGBkaGxwdHh8\"}}"},
        {AGENDA_SHARD_GROUPS,
         "{\"op\":\"group.create\",\"actor\":{\"user\":\"ann\",\"role\":"
         "\"user\"},\"args\":{\"id\":\"00000000000000a1\",\"name\":\"G\"}}"},
        {AGENDA_SHARD_GROUPS,
         "{\"op\":\"group.member_add\",\"actor\":{\"user\":\"ann\",\"role\":"
         "\"user\"},\"args\":{\"id\":\"00000000000000a1\",\"user\":\"ben\"}}"},
    };
    MDB_txn *txn;
    struct sm_result res = {0};
    if (mdb_txn_begin(env, NULL, 0, &txn) != 0)
        abort();
    for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++) {
        if (apply(&sms[base[i].kind - 1], txn, i + 1, base[i].op,
                  strlen(base[i].op), &res) != 0 ||
            res.status >= 300) {
            fprintf(stderr, "base state: %d %.*s\n", res.status,
                    (int)res.body.len, (const char *)res.body.data);
            abort();
        }
    }
    if (mdb_txn_commit(txn) != 0)
        abort();
    agenda_buf_free(&res.body);
}

static void open_env(void)
{
    const char *dir = mkdtemp(env_dir);
    if (dir == NULL || mdb_env_create(&env) != 0 ||
        mdb_env_set_maxdbs(env, 32) != 0 ||
        mdb_env_set_mapsize(env, 256u << 20) != 0 ||
        mdb_env_open(env, dir, MDB_NOSYNC, 0600) != 0)
        abort();
    atexit(remove_env);
    MDB_txn *txn;
    if (mdb_txn_begin(env, NULL, 0, &txn) != 0)
        abort();
    for (int k = 0; k < 3; k++) {
        sms[k].shard.kind = k + 1;
        /* the events replica serves every calendar */
        sms[k].shard.range_from = "";
        sms[k].shard.range_to = "";
        if (agenda_sm_ops.open(&sms[k], txn) != 0)
            abort();
    }
    if (mdb_txn_commit(txn) != 0)
        abort();
    base_state();
}

/* The answer must be a JSON object; errors must say their code. */
static void check_answer(const struct sm_result *res)
{
    if (res->status < 200 || res->status > 599)
        abort();
    json_t *b = json_loadb((const char *)res->body.data, res->body.len, 0,
                           NULL);
    if (!json_is_object(b))
        abort();
    if (res->status >= 400 &&
        !json_is_string(json_object_get(json_object_get(b, "error"),
                                        "code")))
        abort();
    json_decref(b);
}

/* The membership index and the group records agree exactly. */
static void check_groups(MDB_txn *txn, const struct agenda_db *d)
{
    MDB_cursor *cur;
    MDB_val k, v;
    size_t memberships = 0, entries = 0;
    if (mdb_cursor_open(txn, d->groups, &cur) != 0)
        abort();
    while (mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0) {
        json_t *g = json_loadb(v.mv_data, v.mv_size, 0, NULL);
        const char *id = json_string_value(json_object_get(g, "id"));
        json_t *ms = json_object_get(g, "members");
        if (id == NULL || json_object_size(ms) == 0)
            abort();
        size_t leaders = 0;
        const char *user;
        json_t *role;
        json_object_foreach(ms, user, role) {
            char key[128];
            int n = snprintf(key, sizeof(key), "%s%c%s", user, '\0', id);
            MDB_val ik = {(size_t)n + 1, key}, iv;
            const char *r = json_string_value(role);
            if (r == NULL || mdb_get(txn, d->group_members, &ik, &iv) != 0 ||
                iv.mv_size != strlen(r) || memcmp(iv.mv_data, r, iv.mv_size))
                abort();
            leaders += strcmp(r, "leader") == 0;
            memberships++;
        }
        if (leaders == 0)
            abort();
        json_decref(g);
    }
    mdb_cursor_close(cur);
    if (mdb_cursor_open(txn, d->group_members, &cur) != 0)
        abort();
    while (mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0)
        entries++;
    mdb_cursor_close(cur);
    if (entries != memberships)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (env == NULL)
        open_env();
    if (size == 0)
        return 0;
    int kind = data[0] % 3 == 0 ? 3 : data[0] % 3;
    struct agenda_sm *sm = &sms[kind - 1];
    static int verbose = -1;
    if (verbose < 0)
        verbose = getenv("FUZZ_AGENDA_VERBOSE") != NULL;
    MDB_txn *txn;
    if (mdb_txn_begin(env, NULL, 0, &txn) != 0)
        abort();
    struct sm_result res = {0};
    size_t pos = 1;
    int rc = 0;
    for (int line = 0; line < MAX_LINES && pos < size && rc == 0; line++) {
        const uint8_t *nl = memchr(data + pos, '\n', size - pos);
        size_t end = nl != NULL ? (size_t)(nl - data) : size;
        const char *text = (const char *)data + pos;
        size_t len = end - pos;
        pos = end + 1;
        if (len > 0 && text[0] == '?') {
            struct sm_query q = {.method = "POST", .path = "v1/queries",
                                 .body = (const uint8_t *)text + 1,
                                 .body_len = len - 1};
            agenda_buf_reset(&res.body);
            rc = agenda_sm_ops.query(sm, txn, &q, &res);
        } else {
            rc = apply(sm, txn, 100 + (uint64_t)line, text, len, &res);
        }
        if (verbose)
            fprintf(stderr, "kind %d line %d rc %d: %d %.*s\n", kind, line,
                    rc, res.status, (int)res.body.len,
                    (const char *)res.body.data);
        if (rc == 0)
            check_answer(&res);
        else if (rc != MDB_MAP_FULL && rc != MDB_TXN_FULL &&
                 rc != MDB_BAD_VALSIZE && rc != ENOMEM)
            abort();
    }
    if (rc == 0)
        check_groups(txn, &sm->db);
    mdb_txn_abort(txn);
    agenda_buf_free(&res.body);
    return 0;
}

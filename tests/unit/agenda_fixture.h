/*
 * agenda_fixture.h — a fresh agenda state machine on a temporary LMDB
 * environment, for the cmocka tests of the agenda modules.
 *
 *   struct agenda_fx *fx = agenda_fx_new(AGENDA_SHARD_EVENTS, "", "n");
 *   int status = agenda_fx_cmd(fx, "{\"op\":\"event.create\",...}");
 *   json_t *body = agenda_fx_body(fx);   (new reference, or NULL)
 *   agenda_fx_free(fx);
 *
 * Commands are applied exactly as the agent applies them (through the
 * session layer, in their own committed transaction, with an increasing log
 * index and the fixture's clock as the leader's time), queries through the
 * state machine's query().  Included by test files only: everything is
 * static.
 */
#ifndef AGENDA_FIXTURE_H
#define AGENDA_FIXTURE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <lmdb.h>

#include "agenda_sm.h"
#include "command.h"
#include "session.h"
#include "topology.h"
#include "../env_dir.h"

/* Not every test file uses every helper. */
#define FX_FN static __attribute__((unused))

struct agenda_fx {
    char dir[64];
    MDB_env *env;
    struct agenda_sm sm;
    struct agenda_sessions sessions;
    struct sm_result res;
    uint64_t index;   /* last log index used */
    int64_t now_ms;   /* the "leader's" clock; tests move it */
    bool duplicate;   /* the last command was a replay */
};

/* The directories of fixtures not freed yet.  A failing check longjmps
 * out of its test, past agenda_fx_free(): what is left here is removed
 * when the test program exits, so no failure leaves files in /tmp. */
#define FX_LIVE_MAX 64
static char fx_live[FX_LIVE_MAX][64];

static void fx_remove_live(void)
{
    for (int i = 0; i < FX_LIVE_MAX; i++)
        if (fx_live[i][0] != '\0')
            test_env_dir_remove(fx_live[i]);
}

FX_FN void fx_track(const char *dir)
{
    static bool registered;
    if (!registered && atexit(fx_remove_live) == 0)
        registered = true;
    for (int i = 0; i < FX_LIVE_MAX; i++)
        if (fx_live[i][0] == '\0') {
            snprintf(fx_live[i], sizeof(fx_live[i]), "%s", dir);
            return;
        }
}

FX_FN void fx_untrack(const char *dir)
{
    for (int i = 0; i < FX_LIVE_MAX; i++)
        if (strcmp(fx_live[i], dir) == 0)
            fx_live[i][0] = '\0';
}

FX_FN struct agenda_fx *agenda_fx_new(int kind, const char *from,
                                       const char *to)
{
    struct agenda_fx *fx = calloc(1, sizeof(*fx));
    if (fx == NULL)
        abort();
    strcpy(fx->dir, "/tmp/agenda-fx-XXXXXX");
    if (mkdtemp(fx->dir) == NULL)
        abort();
    fx_track(fx->dir);
    if (mdb_env_create(&fx->env) != 0 ||
        mdb_env_set_maxdbs(fx->env, 32) != 0 ||
        mdb_env_set_mapsize(fx->env, 256u << 20) != 0 ||
        mdb_env_open(fx->env, fx->dir, MDB_NOSYNC, 0600) != 0)
        abort();
    fx->sm.shard.kind = kind;
    fx->sm.shard.range_from = from;
    fx->sm.shard.range_to = to;
    MDB_txn *txn;
    if (mdb_txn_begin(fx->env, NULL, 0, &txn) != 0 ||
        agenda_sm_ops.open(&fx->sm, txn) != 0 ||
        agenda_sessions_open(&fx->sessions, txn) != 0 ||
        mdb_txn_commit(txn) != 0)
        abort();
    agenda_sessions_committed(&fx->sessions);
    fx->now_ms = 1795000000000LL; /* 2026-11-18 */
    return fx;
}

FX_FN void agenda_fx_free(struct agenda_fx *fx)
{
    agenda_sessions_close(&fx->sessions);
    mdb_env_close(fx->env);
    test_env_dir_remove(fx->dir);
    fx_untrack(fx->dir);
    agenda_buf_free(&fx->res.body);
    free(fx);
}

/* Apply a command with an explicit request id (for retry tests). */
FX_FN int agenda_fx_cmd_id(struct agenda_fx *fx, const char *request_id,
                            const char *json)
{
    struct agenda_buf entry = {0};
    if (agenda_command_encode(&entry, request_id, (uint64_t)fx->now_ms, json,
                              strlen(json)) != 0)
        abort();
    MDB_txn *txn;
    if (mdb_txn_begin(fx->env, NULL, 0, &txn) != 0)
        abort();
    int rc = agenda_sessions_apply(&fx->sessions, &agenda_sm_ops, &fx->sm,
                                   txn, ++fx->index, entry.data, entry.len,
                                   &fx->res, &fx->duplicate);
    if (rc != 0) {
        fprintf(stderr, "apply failed with LMDB error %d: %s\n", rc,
                mdb_strerror(rc));
        abort();
    }
    if (mdb_txn_commit(txn) != 0)
        abort();
    agenda_sessions_committed(&fx->sessions);
    agenda_buf_free(&entry);
    fx->now_ms += 1000;
    return fx->res.status;
}

/* Apply a command (fresh request id each time). */
FX_FN int agenda_fx_cmd(struct agenda_fx *fx, const char *json)
{
    char id[32];
    snprintf(id, sizeof(id), "fx-%llu", (unsigned long long)fx->index + 1);
    return agenda_fx_cmd_id(fx, id, json);
}

/* printf-style command. */
__attribute__((format(printf, 2, 3)))
FX_FN int agenda_fx_cmdf(struct agenda_fx *fx, const char *fmt, ...)
{
    char buf[16384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    return agenda_fx_cmd(fx, buf);
}

FX_FN int agenda_fx_query(struct agenda_fx *fx, const char *json)
{
    MDB_txn *txn;
    if (mdb_txn_begin(fx->env, NULL, MDB_RDONLY, &txn) != 0)
        abort();
    struct sm_query q = {.method = "POST", .path = "v1/queries",
                         .body = (const uint8_t *)json,
                         .body_len = strlen(json)};
    int rc = agenda_sm_ops.query(&fx->sm, txn, &q, &fx->res);
    mdb_txn_abort(txn);
    if (rc != 0) {
        fprintf(stderr, "query failed with LMDB error %d\n", rc);
        abort();
    }
    return fx->res.status;
}

__attribute__((format(printf, 2, 3)))
FX_FN int agenda_fx_queryf(struct agenda_fx *fx, const char *fmt, ...)
{
    char buf[16384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    return agenda_fx_query(fx, buf);
}

/* The last answer's body, parsed (new reference; NULL when not JSON). */
FX_FN json_t *agenda_fx_body(struct agenda_fx *fx)
{
    return json_loadb((const char *)fx->res.body.data, fx->res.body.len, 0,
                      NULL);
}

/* The error code of the last answer, or "" (static buffer). */
FX_FN const char *agenda_fx_error(struct agenda_fx *fx)
{
    static char code[64];
    json_t *b = agenda_fx_body(fx);
    const char *c = json_string_value(
        json_object_get(json_object_get(b, "error"), "code"));
    snprintf(code, sizeof(code), "%s", c != NULL ? c : "");
    json_decref(b);
    return code;
}

/* SHA-256 of the whole state machine (hex into out[65]). */
FX_FN void agenda_fx_digest(struct agenda_fx *fx, char out[65])
{
    MDB_txn *txn;
    uint8_t d[32];
    if (mdb_txn_begin(fx->env, NULL, MDB_RDONLY, &txn) != 0 ||
        agenda_sm_ops.digest(&fx->sm, txn, d) != 0)
        abort();
    mdb_txn_abort(txn);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/*
 * A fixture on a compacted copy of src's environment (mdb_env_copy2 with
 * MDB_CP_COMPACT, what a snapshot is), serving the same shard, with src's
 * log index and clock: the state a replica has after installing a snapshot
 * of src.  Free it with agenda_fx_free().
 */
FX_FN struct agenda_fx *agenda_fx_open_copy(struct agenda_fx *src)
{
    struct agenda_fx *fx = calloc(1, sizeof(*fx));
    if (fx == NULL)
        abort();
    strcpy(fx->dir, "/tmp/agenda-fx-XXXXXX");
    if (mkdtemp(fx->dir) == NULL)
        abort();
    fx_track(fx->dir);
    if (mdb_env_copy2(src->env, fx->dir, MDB_CP_COMPACT) != 0 ||
        mdb_env_create(&fx->env) != 0 ||
        mdb_env_set_maxdbs(fx->env, 32) != 0 ||
        mdb_env_set_mapsize(fx->env, 256u << 20) != 0 ||
        mdb_env_open(fx->env, fx->dir, MDB_NOSYNC, 0600) != 0)
        abort();
    fx->sm.shard = src->sm.shard;
    MDB_txn *txn;
    if (mdb_txn_begin(fx->env, NULL, 0, &txn) != 0 ||
        agenda_sm_ops.open(&fx->sm, txn) != 0 ||
        agenda_sessions_open(&fx->sessions, txn) != 0 ||
        mdb_txn_commit(txn) != 0)
        abort();
    agenda_sessions_committed(&fx->sessions);
    fx->index = src->index;
    fx->now_ms = src->now_ms;
    return fx;
}

#endif /* AGENDA_FIXTURE_H */

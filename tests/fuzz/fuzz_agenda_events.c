/*
 * fuzz_agenda_events.c — operations on an events shard, one JSON document
 * a line ({"op","actor","args"}), applied or queried through agenda_sm_ops
 * in one LMDB transaction that is aborted at the end of the input.
 *
 * Checked after every operation: the answer has a status in 200..599 and
 * the state machine returned no error other than a full map; the time
 * indexes agree with the records (agenda_events_check_indexes); and a
 * command answered with an error changed none of the event databases.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agenda_sm.h"
#include "event_index.h"
#include "topology.h"
#include "../env_dir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define OPS_MAX 64

static MDB_env *env;
static char env_dir[] = "/tmp/agenda-fuzz-events-XXXXXX";
static struct agenda_sm sm;

/* The environment is scratch space: removed when the fuzzer exits. */
static void remove_env(void)
{
    mdb_env_close(env);
    test_env_dir_remove(env_dir);
}

static void open_env(void)
{
    const char *dir = mkdtemp(env_dir);
    if (dir == NULL || mdb_env_create(&env) != 0 ||
        mdb_env_set_maxdbs(env, 32) != 0 ||
        mdb_env_set_mapsize(env, 256u << 20) != 0 ||
        mdb_env_open(env, dir, MDB_NOSYNC, 0600) != 0)
        abort();
    /* calendars a..s live here: "zed" and others are 421 */
    sm.shard.kind = AGENDA_SHARD_EVENTS;
    sm.shard.range_from = "a";
    sm.shard.range_to = "t";
    MDB_txn *txn;
    if (mdb_txn_begin(env, NULL, 0, &txn) != 0 ||
        agenda_sm_ops.open(&sm, txn) != 0 || mdb_txn_commit(txn) != 0)
        abort();
    atexit(remove_env);
}

/* FNV-1a over the databases the event handlers write. */
static uint64_t events_hash(MDB_txn *txn)
{
    const struct agenda_db *d = &sm.db;
    MDB_dbi dbs[] = {d->events, d->ev_by_cal, d->ev_by_part, d->cal_meta,
                     d->feed, d->feed_by_target};
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < sizeof(dbs) / sizeof(dbs[0]); i++) {
        MDB_cursor *cur;
        MDB_val k, v;
        if (mdb_cursor_open(txn, dbs[i], &cur) != 0)
            abort();
        while (mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0) {
            const MDB_val *parts[2] = {&k, &v};
            for (int p = 0; p < 2; p++) {
                const uint8_t *b = parts[p]->mv_data;
                for (size_t j = 0; j < parts[p]->mv_size; j++)
                    h = (h ^ b[j]) * 1099511628211ull;
                h = (h ^ 0xff) * 1099511628211ull;
            }
        }
        mdb_cursor_close(cur);
    }
    return h;
}

/* Whether the line names a command (else it is sent as a query). */
static bool is_command(const uint8_t *p, size_t len)
{
    json_t *j = json_loadb((const char *)p, len, 0, NULL);
    const char *name = json_string_value(json_object_get(j, "op"));
    const struct agenda_op *op = name != NULL ? agenda_op_find(name) : NULL;
    bool cmd = op != NULL ? op->is_command : len % 2 == 0;
    json_decref(j);
    return cmd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (env == NULL)
        open_env();
    MDB_txn *txn;
    if (mdb_txn_begin(env, NULL, 0, &txn) != 0)
        abort();
    struct sm_result res = {0};
    uint64_t index = 0;
    const uint8_t *p = data, *end = data + size;
    for (int ops = 0; p < end && ops < OPS_MAX; ops++) {
        const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = (size_t)((nl != NULL ? nl : end) - p);
        agenda_buf_reset(&res.body);
        res.status = 0;
        int rc;
        if (is_command(p, len)) {
            char rid[32];
            snprintf(rid, sizeof(rid), "fz-%d", ops);
            index++;
            struct sm_apply_info info = {
                .index = index,
                .time_ms = 1795000000000ull + index * 1000,
                .request_id = rid,
            };
            uint64_t before = events_hash(txn);
            rc = agenda_sm_ops.apply(&sm, txn, &info, p, len, &res);
            if (rc == 0 && res.status >= 400 && events_hash(txn) != before)
                abort();   /* a refused command changed something */
        } else {
            struct sm_query q = {.method = "POST", .path = "v1/queries",
                                 .body = p, .body_len = len};
            rc = agenda_sm_ops.query(&sm, txn, &q, &res);
        }
        if (getenv("FUZZ_EVENTS_VERBOSE") != NULL)   /* seed debugging */
            fprintf(stderr, "%d %.*s\n", res.status, (int)res.body.len,
                    (const char *)res.body.data);
        if (rc == MDB_MAP_FULL || rc == MDB_TXN_FULL)
            break;
        if (rc != 0 || res.status < 200 || res.status > 599)
            abort();
        char why[256];
        if (agenda_events_check_indexes(txn, &sm.db, why, sizeof(why)) != 0) {
            fprintf(stderr, "indexes disagree: %s\n", why);
            abort();
        }
        p = nl != NULL ? nl + 1 : end;
    }
    mdb_txn_abort(txn);
    agenda_buf_free(&res.body);
    return 0;
}

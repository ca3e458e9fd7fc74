/*
 * fuzz_command.c — a log entry from a peer or from disk, applied: the
 * command envelope decoder, the session table and the key-value command
 * decoder, inside a real LMDB transaction that is then aborted.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "command.h"
#include "kv_sm.h"
#include "session.h"
#include "../env_dir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static MDB_env *env;
static char env_dir[] = "/tmp/agenda-fuzz-command-XXXXXX";
static struct agenda_kv_sm kv;
static struct agenda_sessions sessions;

/* The environment is scratch space: removed when the fuzzer exits. */
static void remove_env(void)
{
    agenda_sessions_close(&sessions);
    mdb_env_close(env);
    test_env_dir_remove(env_dir);
}

static void open_env(void)
{
    const char *dir = mkdtemp(env_dir);
    if (dir == NULL || mdb_env_create(&env) != 0 ||
        mdb_env_set_maxdbs(env, 8) != 0 ||
        mdb_env_set_mapsize(env, 64u << 20) != 0 ||
        mdb_env_open(env, dir, MDB_NOSYNC, 0600) != 0)
        abort();
    MDB_txn *txn;
    if (mdb_txn_begin(env, NULL, 0, &txn) != 0 ||
        agenda_kv_sm_ops.open(&kv, txn) != 0 ||
        agenda_sessions_open(&sessions, txn) != 0 || mdb_txn_commit(txn))
        abort();
    agenda_sessions_committed(&sessions);
    atexit(remove_env);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (env == NULL)
        open_env();
    struct agenda_command cmd;
    if (agenda_command_decode(data, size, &cmd) == 0) {
        /* a decoded envelope re-encodes to the same bytes */
        struct agenda_buf b = {0};
        if (agenda_command_encode(&b, cmd.request_id, cmd.time_ms,
                                  cmd.payload, cmd.payload_len) != 0 ||
            b.len != size || memcmp(b.data, data, size) != 0)
            abort();
        agenda_buf_free(&b);
    }
    MDB_txn *txn;
    if (mdb_txn_begin(env, NULL, 0, &txn) != 0)
        abort();
    struct sm_result res = {0};
    bool dup;
    int rc = agenda_sessions_apply(&sessions, &agenda_kv_sm_ops, &kv, txn, 1,
                                   data, size, &res, &dup);
    /* a newer agent's envelope stops the apply, and only that does */
    if ((rc == MDB_VERSION_MISMATCH) !=
        (size > 0 && data[0] > AGENDA_COMMAND_VERSION))
        abort();
    if (rc != 0 && rc != MDB_MAP_FULL && rc != MDB_BAD_VALSIZE &&
        rc != MDB_VERSION_MISMATCH)
        abort();
    if (rc == 0 && (res.status < 200 || res.status > 599))
        abort();
    mdb_txn_abort(txn);
    agenda_sessions_aborted(&sessions);
    agenda_buf_free(&res.body);
    return 0;
}

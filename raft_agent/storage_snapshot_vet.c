/*
 * storage_snapshot_vet.c — a received snapshot rebuilt record by record
 * into a file LMDB writes itself; see agenda_storage_snapshot_vet() in
 * storage.h and snapshot_vet.h for the process it runs in.
 *
 * Why rebuild rather than install the file as received: LMDB trusts the
 * pages of its files.  A walk with a cursor reads what records say (and
 * storage_in_map() keeps every key and value inside the map), but never
 * branch keys, the free list, or page headers it does not need for
 * reading, and a write transaction or a compacting copy later would trust
 * those (a compacting copy writes an overflow page as long as its header
 * says, from wherever that reaches).  Putting every record, in order,
 * into a new environment leaves all of that behind: what gets installed
 * holds the records and nothing else of the peer's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage.h"
#include "storage_internal.h"

/* The only database flag our databases use (the log's); a file asking for
 * others (duplicates, reverse keys) is not one of ours. */
#define VET_DB_FLAGS MDB_INTEGERKEY
/* Commit the rebuilt file every this many bytes of records, so that one
 * write transaction never holds more dirty pages than LMDB allows. */
#define VET_TXN_BYTES ((size_t)64 << 20)
/* Room beyond twice the input for the rebuilt file's own pages. */
#define VET_MAP_SLACK ((size_t)64 << 20)

struct rebuild {
    MDB_env *env;        /* the new file */
    MDB_txn *txn;        /* its open write transaction */
    size_t pending;      /* bytes put since the last commit */
};

static int rebuild_commit(struct rebuild *rb, bool again)
{
    int rc = mdb_txn_commit(rb->txn);
    rb->txn = NULL;
    rb->pending = 0;
    if (rc == MDB_SUCCESS && again)
        rc = mdb_txn_begin(rb->env, NULL, 0, &rb->txn);
    return rc == MDB_SUCCESS ? AGENDA_STORAGE_OK : agenda_storage_map_mdb(rc);
}

/* Every record of the input's database name, in order, into the same
 * database of the new file (MDB_APPEND: an input whose order is not the
 * database's is refused) — but the log's, which are only checked:
 * installing empties the log. */
static int rebuild_db(MDB_txn *in, const struct storage_map *map,
                      const char *name, MDB_dbi dbi, void *arg)
{
    struct rebuild *rb = arg;
    unsigned flags = 0;
    MDB_dbi out;
    MDB_cursor *cur;
    MDB_val k, v;

    if (mdb_dbi_flags(in, dbi, &flags) != MDB_SUCCESS ||
        (flags & ~(unsigned)VET_DB_FLAGS) != 0)
        return AGENDA_STORAGE_CORRUPT;
    int rc = mdb_dbi_open(rb->txn, name, flags | MDB_CREATE, &out);
    if (rc != MDB_SUCCESS)
        return agenda_storage_map_mdb(rc);
    if (strcmp(name, STORAGE_DB_LOG) == 0)
        return storage_walk_db(in, map, name, dbi, &dbi);
    if ((rc = mdb_cursor_open(in, dbi, &cur)) != MDB_SUCCESS)
        return agenda_storage_map_mdb(rc);
    int r = AGENDA_STORAGE_OK;
    while (r == AGENDA_STORAGE_OK &&
           (rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == MDB_SUCCESS) {
        if (!storage_in_map(map, &k) || !storage_in_map(map, &v)) {
            r = AGENDA_STORAGE_CORRUPT;
            break;
        }
        rc = mdb_put(rb->txn, out, &k, &v, MDB_APPEND);
        if (rc == MDB_KEYEXIST || rc == MDB_BAD_VALSIZE) {
            r = AGENDA_STORAGE_CORRUPT; /* out of order, or a bad key */
            break;
        }
        if (rc != MDB_SUCCESS) {
            r = agenda_storage_map_mdb(rc);
            break;
        }
        rb->pending += k.mv_size + v.mv_size;
        if (rb->pending >= VET_TXN_BYTES)
            r = rebuild_commit(rb, true);
    }
    if (r == AGENDA_STORAGE_OK && rc != MDB_NOTFOUND)
        r = AGENDA_STORAGE_CORRUPT;
    mdb_cursor_close(cur);
    return r;
}

/* LMDB may leave pages it allocated and freed again within a transaction
 * unwritten at the end of the file, while its meta page counts them; the
 * file is made as long as that (zeros), as opening it requires. */
static int fill_to_last_page(MDB_env *env)
{
    MDB_envinfo info;
    MDB_stat st;
    struct stat sb;
    int fd;
    if (mdb_env_info(env, &info) != MDB_SUCCESS ||
        mdb_env_stat(env, &st) != MDB_SUCCESS ||
        mdb_env_get_fd(env, &fd) != MDB_SUCCESS || fstat(fd, &sb) != 0)
        return AGENDA_STORAGE_IO;
    off_t need = (off_t)((info.me_last_pgno + 1) * (size_t)st.ms_psize);
    if (sb.st_size < need && ftruncate(fd, need) != 0)
        return agenda_storage_map_mdb(errno);
    return AGENDA_STORAGE_OK;
}

/* The new environment at tmp, for the records of an input of in_size
 * bytes, with its write transaction open. */
static int rebuild_open(struct rebuild *rb, const char *tmp, size_t in_size)
{
    int rc;
    unlink(tmp);
    if ((rc = mdb_env_create(&rb->env)) != MDB_SUCCESS)
        return agenda_storage_map_mdb(rc);
    if ((rc = mdb_env_set_maxdbs(rb->env, AGENDA_STORAGE_MAXDBS)) ||
        (rc = mdb_env_set_mapsize(rb->env, 2 * in_size + VET_MAP_SLACK)) ||
        (rc = mdb_env_open(rb->env, tmp,
                           MDB_NOSUBDIR | MDB_NOLOCK | MDB_NOSYNC, 0600)) ||
        (rc = mdb_txn_begin(rb->env, NULL, 0, &rb->txn)))
        return agenda_storage_map_mdb(rc);
    return AGENDA_STORAGE_OK;
}

/* The records of the environment at in, checked (storage_copy_check, and
 * every record on the way), put into a new one at tmp; *m: in's meta. */
static int rebuild(const char *in, const char *tmp, struct storage_meta *m)
{
    struct rebuild rb = {NULL, NULL, 0};
    struct storage_map map;
    MDB_env *src;
    MDB_txn *txn;
    struct stat sb;
    int rc;

    int r = storage_copy_begin(in, &src, &txn);
    if (r != AGENDA_STORAGE_OK)
        return r;
    if ((r = storage_copy_check(txn, false, m)) != AGENDA_STORAGE_OK)
        goto out;
    if (!m->has_applied) {
        r = AGENDA_STORAGE_CORRUPT;
        goto out;
    }
    if (stat(in, &sb) != 0) {
        r = agenda_storage_map_mdb(errno);
        goto out;
    }
    if ((r = rebuild_open(&rb, tmp, (size_t)sb.st_size)) ||
        (r = storage_map_of(txn, &map)) ||
        (r = storage_each_db(txn, &map, rebuild_db, &rb)) ||
        (r = rebuild_commit(&rb, false)) ||
        (r = fill_to_last_page(rb.env)))
        goto out;
    if ((rc = mdb_env_sync(rb.env, 1)) != MDB_SUCCESS)
        r = agenda_storage_map_mdb(rc);
out:
    if (rb.txn != NULL)
        mdb_txn_abort(rb.txn);
    if (rb.env != NULL)
        mdb_env_close(rb.env);
    mdb_txn_abort(txn);
    mdb_env_close(src);
    return r;
}

int agenda_storage_snapshot_vet(const char *in, const char *out,
                                struct raft_snapshot_meta *meta)
{
    struct storage_meta got;

    if (in == NULL || out == NULL || meta == NULL)
        return AGENDA_STORAGE_INVALID;
    char *tmp = storage_tmp_name(out);
    if (tmp == NULL)
        return AGENDA_STORAGE_NOMEM;
    int r = rebuild(in, tmp, &got);
    if (r == AGENDA_STORAGE_OK && rename(tmp, out) != 0)
        r = agenda_storage_map_mdb(errno);
    if (r == AGENDA_STORAGE_OK)
        r = storage_sync_dir_of(out);
    if (r == AGENDA_STORAGE_OK)
        r = agenda_storage_snapshot_check(out, meta);
    if (r == AGENDA_STORAGE_OK &&
        (meta->index != got.applied || meta->term != got.applied_term))
        r = AGENDA_STORAGE_CORRUPT;
    if (r != AGENDA_STORAGE_OK) {
        unlink(tmp);
        unlink(out);
    }
    free(tmp);
    return r;
}

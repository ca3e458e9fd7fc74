/*
 * storage_snapshot.c — snapshots as compacted copies of the environment:
 * creating one (possibly in a worker thread) and installing one received
 * from a peer; see storage.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage.h"
#include "storage_internal.h"

/* Smaller than two meta pages of the smallest page size LMDB uses here:
 * not an environment.  (LMDB would take an empty file for a new one.) */
#define SNAP_MIN_FILE 8192u
/* Room for the few pages install writes into the received copy. */
#define SNAP_INSTALL_SLACK ((size_t)64 << 20)

int storage_copy_open(const char *path, unsigned flags, size_t map_size,
                      MDB_env **out)
{
    struct stat sb;
    *out = NULL;
    if (stat(path, &sb) != 0)
        return errno == ENOENT ? AGENDA_STORAGE_INVALID : AGENDA_STORAGE_IO;
    if (!S_ISREG(sb.st_mode) || sb.st_size < (off_t)SNAP_MIN_FILE)
        return AGENDA_STORAGE_CORRUPT;
    if (map_size == 0)
        map_size = (size_t)sb.st_size;

    MDB_env *env;
    int rc = mdb_env_create(&env);
    if (rc != MDB_SUCCESS)
        return agenda_storage_map_mdb(rc);
    if ((rc = mdb_env_set_maxdbs(env, AGENDA_STORAGE_MAXDBS)) != 0 ||
        (rc = mdb_env_set_mapsize(env, map_size)) != 0 ||
        (rc = mdb_env_open(env, path, MDB_NOSUBDIR | MDB_NOLOCK | flags,
                           0600)) != 0) {
        mdb_env_close(env);
        /* a file LMDB cannot parse is a corrupt snapshot, whatever the
         * errno it picked */
        return rc == ENOMEM ? AGENDA_STORAGE_NOMEM : AGENDA_STORAGE_CORRUPT;
    }
    rc = storage_check_length(env);
    if (rc != AGENDA_STORAGE_OK) {
        mdb_env_close(env);
        return rc;
    }
    *out = env;
    return AGENDA_STORAGE_OK;
}

int storage_map_of(MDB_txn *txn, struct storage_map *m)
{
    MDB_env *env = mdb_txn_env(txn);
    struct stat sb;
    MDB_envinfo info;
    MDB_cursor *cur;
    MDB_dbi main_dbi;
    MDB_val k, v;
    int fd;
    m->base = NULL;
    m->len = 0;
    if (mdb_env_get_fd(env, &fd) != MDB_SUCCESS || fstat(fd, &sb) != 0 ||
        mdb_env_info(env, &info) != MDB_SUCCESS)
        return AGENDA_STORAGE_IO;
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0)
        return AGENDA_STORAGE_IO;
    size_t maplen = (info.me_mapsize + (size_t)page - 1) /
                    (size_t)page * (size_t)page;
    /* LMDB does not say where it mapped the file (mdb_env_info's address
     * is the one a fixed map asks for).  It is the mapping, in the
     * process's list, that holds a key LMDB handed out, from the file's
     * offset 0 and of the map's length.  (Not by inode and device: on
     * overlayfs the list and stat() can name different ones.) */
    if (mdb_dbi_open(txn, NULL, 0, &main_dbi) != MDB_SUCCESS ||
        mdb_cursor_open(txn, main_dbi, &cur) != MDB_SUCCESS)
        return AGENDA_STORAGE_CORRUPT;
    int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    mdb_cursor_close(cur);
    if (rc != MDB_SUCCESS)
        return AGENDA_STORAGE_CORRUPT; /* ours always name databases */
    uintptr_t key = (uintptr_t)k.mv_data;
    FILE *maps = fopen("/proc/self/maps", "re");
    if (maps == NULL)
        return AGENDA_STORAGE_IO;
    char line[4096];
    while (fgets(line, sizeof line, maps) != NULL) {
        unsigned long start, end, off;
        if (sscanf(line, "%lx-%lx %*s %lx", &start, &end, &off) != 3 ||
            key < start || key >= end)
            continue;
        if (off == 0 && end - start == maplen) {
            m->base = (const char *)(uintptr_t)start;
            /* past the end of the file the map would fault (SIGBUS) */
            m->len = info.me_mapsize < (size_t)sb.st_size
                         ? info.me_mapsize
                         : (size_t)sb.st_size;
        }
        break;
    }
    fclose(maps);
    return m->base != NULL ? AGENDA_STORAGE_OK : AGENDA_STORAGE_CORRUPT;
}

bool storage_in_map(const struct storage_map *m, const MDB_val *v)
{
    const char *p = v->mv_data;
    return p >= m->base && v->mv_size <= m->len &&
           (size_t)(p - m->base) <= m->len - v->mv_size;
}

int storage_each_db(MDB_txn *txn, const struct storage_map *map,
                    storage_db_fn fn, void *arg)
{
    MDB_dbi main_dbi;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = mdb_dbi_open(txn, NULL, 0, &main_dbi);
    if (rc != MDB_SUCCESS)
        return AGENDA_STORAGE_CORRUPT;
    rc = mdb_cursor_open(txn, main_dbi, &cur);
    if (rc != MDB_SUCCESS)
        return agenda_storage_map_mdb(rc);
    int r = AGENDA_STORAGE_OK;
    while (r == AGENDA_STORAGE_OK &&
           (rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == MDB_SUCCESS) {
        char name[512];
        MDB_dbi dbi;
        if (k.mv_size == 0 || k.mv_size >= sizeof(name) ||
            !storage_in_map(map, &k) ||
            memchr(k.mv_data, '\0', k.mv_size) != NULL) {
            r = AGENDA_STORAGE_CORRUPT;
            break;
        }
        memcpy(name, k.mv_data, k.mv_size);
        name[k.mv_size] = '\0';
        /* Fails for a plain record in the main database (we never store
         * one) and for more databases than the live env could open. */
        if (mdb_dbi_open(txn, name, 0, &dbi) != MDB_SUCCESS)
            r = AGENDA_STORAGE_CORRUPT;
        else
            r = fn(txn, map, name, dbi, arg);
    }
    if (r == AGENDA_STORAGE_OK && rc != MDB_NOTFOUND)
        r = AGENDA_STORAGE_CORRUPT;
    mdb_cursor_close(cur);
    return r;
}

int storage_walk_db(MDB_txn *txn, const struct storage_map *map,
                    const char *name, MDB_dbi dbi, void *arg)
{
    bool is_log = dbi == *(const MDB_dbi *)arg;
    MDB_cursor *cur;
    MDB_val k, v;
    (void)name;
    int rc = mdb_cursor_open(txn, dbi, &cur);
    if (rc != MDB_SUCCESS)
        return agenda_storage_map_mdb(rc);
    raft_index expect = 0;
    int r = AGENDA_STORAGE_OK;
    while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == MDB_SUCCESS) {
        if (!storage_in_map(map, &k) || !storage_in_map(map, &v)) {
            r = AGENDA_STORAGE_CORRUPT;
            break;
        }
        if (!is_log)
            continue;
        struct raft_entry e;
        if (storage_entry_decode(&k, &v, &e) != AGENDA_STORAGE_OK ||
            (expect != 0 && e.index != expect) || e.index == UINT64_MAX) {
            r = AGENDA_STORAGE_CORRUPT;
            break;
        }
        expect = e.index + 1;
    }
    if (r == AGENDA_STORAGE_OK && rc != MDB_NOTFOUND)
        r = AGENDA_STORAGE_CORRUPT;
    mdb_cursor_close(cur);
    return r;
}

int storage_copy_begin(const char *path, MDB_env **env, MDB_txn **txn)
{
    int r = storage_copy_open(path, MDB_RDONLY, 0, env);
    if (r != AGENDA_STORAGE_OK)
        return r;
    int rc = mdb_txn_begin(*env, NULL, MDB_RDONLY, txn);
    if (rc != MDB_SUCCESS) {
        mdb_env_close(*env);
        *env = NULL;
        return agenda_storage_map_mdb(rc);
    }
    return AGENDA_STORAGE_OK;
}

int storage_copy_check(MDB_txn *txn, bool deep, struct storage_meta *m)
{
    MDB_dbi log, meta;
    int r;
    if (storage_open_dbis(txn, &log, &meta) != MDB_SUCCESS)
        return AGENDA_STORAGE_CORRUPT;
    if ((r = storage_meta_read(txn, meta, m)) != AGENDA_STORAGE_OK)
        return r;
    if (!m->has_version)
        return AGENDA_STORAGE_CORRUPT;
    if (m->version != AGENDA_STORAGE_FORMAT)
        return AGENDA_STORAGE_VERSION;
    if (!deep)
        return AGENDA_STORAGE_OK;
    struct storage_map map;
    r = storage_map_of(txn, &map);
    if (r == AGENDA_STORAGE_OK)
        r = storage_each_db(txn, &map, storage_walk_db, &log);
    return r;
}

/* Read (and with deep, walk) a copy; *m gets its meta records. */
static int copy_inspect(const char *path, bool deep, struct storage_meta *m)
{
    MDB_env *env;
    MDB_txn *txn;
    int r = storage_copy_begin(path, &env, &txn);
    if (r != AGENDA_STORAGE_OK)
        return r;
    r = storage_copy_check(txn, deep, m);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return r;
}

/* Directory part of path, malloc'd ("." when there is none). */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        return strdup(".");
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    char *d = malloc(n + 1);
    if (d != NULL) {
        memcpy(d, path, n);
        d[n] = '\0';
    }
    return d;
}

int storage_sync_dir_of(const char *path)
{
    char *d = dir_of(path);
    if (d == NULL)
        return AGENDA_STORAGE_NOMEM;
    int r = storage_fsync_dir(d);
    free(d);
    return r;
}

char *storage_tmp_name(const char *path)
{
    size_t n = strlen(path);
    char *tmp = malloc(n + sizeof(".tmp"));
    if (tmp != NULL) {
        memcpy(tmp, path, n);
        memcpy(tmp + n, ".tmp", sizeof(".tmp"));
    }
    return tmp;
}

/* A compacted copy of env written to tmp and synced. */
static int compact_copy(MDB_env *env, const char *tmp)
{
    int r = AGENDA_STORAGE_OK;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return agenda_storage_map_mdb(errno);
    int rc = mdb_env_copyfd2(env, fd, MDB_CP_COMPACT);
    if (rc != MDB_SUCCESS)
        r = agenda_storage_map_mdb(rc);
    else if (fsync(fd) != 0)
        r = agenda_storage_map_mdb(errno);
    close(fd);
    return r;
}

int agenda_storage_snapshot_create(struct agenda_storage *s,
                                   const char *path,
                                   struct raft_snapshot_meta *meta)
{
    if (path == NULL || meta == NULL)
        return AGENDA_STORAGE_INVALID;
    if (atomic_exchange(&s->copying, 1) != 0)
        return AGENDA_STORAGE_BUSY;
    MDB_env *env = s->env;
    char *tmp = storage_tmp_name(path);
    int r = AGENDA_STORAGE_OK;
    struct storage_meta m;

    if (env == NULL) {
        r = AGENDA_STORAGE_CLOSED;
        goto out;
    }
    if (tmp == NULL) {
        r = AGENDA_STORAGE_NOMEM;
        goto out;
    }
    if ((r = compact_copy(env, tmp)) != AGENDA_STORAGE_OK)
        goto out;
    /* The copy's read txn started after our call: ask the copy itself
     * what it contains. */
    if ((r = copy_inspect(tmp, false, &m)) != AGENDA_STORAGE_OK)
        goto out;
    if (rename(tmp, path) != 0) {
        r = agenda_storage_map_mdb(errno);
        goto out;
    }
    r = storage_sync_dir_of(path);
    if (r == AGENDA_STORAGE_OK) {
        meta->index = m.applied;
        meta->term = m.applied_term;
    }
out:
    if (r != AGENDA_STORAGE_OK && tmp != NULL)
        unlink(tmp);
    free(tmp);
    atomic_store(&s->copying, 0);
    return r;
}

/* Make the received copy ours: own hard state, empty log, snapshot meta =
 * its applied state.  Synced before it replaces data.mdb. */
static int copy_adopt(struct agenda_storage *s, const char *path,
                      const struct storage_meta *m)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi log, meta;
    size_t map = s->map_size;
    struct stat sb;
    if (stat(path, &sb) == 0 &&
        (uint64_t)sb.st_size + SNAP_INSTALL_SLACK > map)
        map = (size_t)sb.st_size + SNAP_INSTALL_SLACK;
    int r = storage_copy_open(path, 0, map, &env);
    if (r != AGENDA_STORAGE_OK)
        return r;
    struct raft_hard_state hs = s->hs;
    if (m->applied > hs.commit)
        hs.commit = m->applied;
    const char *what = "install: mdb_txn_begin";
    int rc = mdb_txn_begin(env, NULL, 0, &txn);
    if (rc == MDB_SUCCESS) {
        what = "install: opening databases";
        rc = storage_open_dbis(txn, &log, &meta);
        if (rc == MDB_SUCCESS) {
            what = "install: emptying log";
            rc = mdb_drop(txn, log, 0);
        }
        if (rc == MDB_SUCCESS) {
            what = "install: writing hard state";
            rc = storage_meta_put_hs(txn, meta, &hs);
        }
        if (rc == MDB_SUCCESS) {
            what = "install: writing snapshot meta";
            rc = storage_meta_put_pair(txn, meta, STORAGE_KEY_SNAPSHOT,
                                       m->applied, m->applied_term);
        }
        if (rc == MDB_SUCCESS)
            r = storage_commit(s, txn);
        else
            mdb_txn_abort(txn);
    }
    if (rc != MDB_SUCCESS)
        r = storage_fail(s, what, rc);
    mdb_env_close(env);
    return r;
}

int agenda_storage_snapshot_check(const char *path,
                                  struct raft_snapshot_meta *meta)
{
    struct storage_meta m;
    if (path == NULL || meta == NULL)
        return AGENDA_STORAGE_INVALID;
    int r = copy_inspect(path, true, &m);
    if (r != AGENDA_STORAGE_OK)
        return r;
    if (!m.has_applied)
        return AGENDA_STORAGE_CORRUPT;
    meta->index = m.applied;
    meta->term = m.applied_term;
    return AGENDA_STORAGE_OK;
}

int agenda_storage_snapshot_install(struct agenda_storage *s,
                                    const char *path,
                                    struct raft_snapshot_meta *meta_out)
{
    struct storage_meta m;
    if (path == NULL)
        return AGENDA_STORAGE_INVALID;
    if (s->env == NULL)
        return AGENDA_STORAGE_CLOSED;
    if (s->wtxn_open || s->readers_open > 0 ||
        atomic_load(&s->copying) != 0)
        return AGENDA_STORAGE_BUSY;

    /* shallow: the file is the vet's rebuild, walked in its process */
    int r = copy_inspect(path, false, &m);
    if (r != AGENDA_STORAGE_OK) {
        snprintf(s->errmsg, sizeof(s->errmsg),
                 "install: %s is not a valid snapshot: %s", path,
                 agenda_storage_strerror(r));
        return r;
    }
    if (m.applied < s->applied) {
        /* Going back would lose applied entries along with the log. */
        snprintf(s->errmsg, sizeof(s->errmsg),
                 "install: snapshot at %llu is older than applied %llu",
                 (unsigned long long)m.applied,
                 (unsigned long long)s->applied);
        return AGENDA_STORAGE_INVALID;
    }
    if ((r = copy_adopt(s, path, &m)) != AGENDA_STORAGE_OK)
        return r;

    size_t n = strlen(s->dir);
    char *data = malloc(n + sizeof("/data.mdb"));
    if (data == NULL)
        return AGENDA_STORAGE_NOMEM;
    memcpy(data, s->dir, n);
    memcpy(data + n, "/data.mdb", sizeof("/data.mdb"));

    storage_env_close(s);
    if (rename(path, data) != 0) {
        int e = errno;
        free(data);
        snprintf(s->errmsg, sizeof(s->errmsg), "install: rename: %s",
                 strerror(e));
        /* data.mdb is untouched: go back to it */
        r = storage_env_open(s);
        return r == AGENDA_STORAGE_OK ? agenda_storage_map_mdb(e)
                                      : AGENDA_STORAGE_CLOSED;
    }
    free(data);
    /* Without this a crash could bring back the old data.mdb under a
     * hard state we already acted on; the new one is complete either way */
    r = storage_fsync_dir(s->dir);
    if (r == AGENDA_STORAGE_OK)
        r = storage_env_open(s);
    if (r != AGENDA_STORAGE_OK) {
        storage_env_close(s);
        return AGENDA_STORAGE_CLOSED;
    }
    if (s->snap.index != m.applied || s->last != m.applied) {
        snprintf(s->errmsg, sizeof(s->errmsg),
                 "install: reopened environment does not hold the snapshot");
        storage_env_close(s);
        return AGENDA_STORAGE_CLOSED;
    }
    if (meta_out != NULL) {
        meta_out->index = m.applied;
        meta_out->term = m.applied_term;
    }
    return AGENDA_STORAGE_OK;
}

/*
 * storage.c — environment lifecycle, meta records, apply and read
 * transactions, statistics; see storage.h.  The log lives in storage_log.c,
 * snapshots in storage_snapshot.c.
 */
#include "storage.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "storage_internal.h"

#define STORAGE_DEFAULT_MAP ((size_t)1 << 30)

static const char *const storage_messages[AGENDA_STORAGE_ERR__COUNT] = {
    [0] = "success",
    [1] = "storage I/O error; the agent should stop and be restarted",
    [2] = "storage is full (LMDB map size or disk); writes are refused "
          "until space is made or the map size raised",
    [3] = "stored data is corrupt (malformed record or file)",
    [4] = "invalid storage request",
    [5] = "log index is below the first index (compacted into a snapshot)",
    [6] = "log index is above the last index",
    [7] = "out of memory",
    [8] = "unsupported storage format or LMDB version",
    [9] = "storage busy: a transaction or snapshot copy is in progress",
    [10] = "storage closed after a failed snapshot installation; restart "
           "the agent",
};

const char *agenda_storage_strerror(int err)
{
    if (err > 0 || err <= -AGENDA_STORAGE_ERR__COUNT)
        return "unknown storage error";
    return storage_messages[-err];
}

int agenda_storage_map_mdb(int rc)
{
    switch (rc) {
    case MDB_SUCCESS:
        return AGENDA_STORAGE_OK;
    case MDB_MAP_FULL:
    case ENOSPC:
    case EDQUOT:
        return AGENDA_STORAGE_FULL;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_INCOMPATIBLE:
    case MDB_BAD_VALSIZE:
        return AGENDA_STORAGE_CORRUPT;
    case MDB_VERSION_MISMATCH:
        return AGENDA_STORAGE_VERSION;
    case ENOMEM:
        return AGENDA_STORAGE_NOMEM;
    case MDB_READERS_FULL:
    case MDB_DBS_FULL:
        return AGENDA_STORAGE_BUSY;
    default:
        return AGENDA_STORAGE_IO;
    }
}

int storage_fail(struct agenda_storage *s, const char *what, int rc)
{
    snprintf(s->errmsg, sizeof(s->errmsg), "%s: %s", what,
             mdb_strerror(rc));
    return agenda_storage_map_mdb(rc);
}

void storage_put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

uint64_t storage_get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

void storage_put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

uint32_t storage_get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* 1 with the record of key (borrowed from txn), 0 if none, or an error. */
static int meta_get_any(MDB_txn *txn, MDB_dbi meta, const char *key,
                        const uint8_t **out, size_t *len)
{
    MDB_val k = { strlen(key), (void *)(uintptr_t)key };
    MDB_val v;
    int rc = mdb_get(txn, meta, &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != MDB_SUCCESS)
        return agenda_storage_map_mdb(rc);
    *out = v.mv_data;
    *len = v.mv_size;
    return 1;
}

/* meta_get_any for a record of exactly want bytes. */
static int meta_get(MDB_txn *txn, MDB_dbi meta, const char *key,
                    size_t want, const uint8_t **out)
{
    size_t len = 0;
    int rc = meta_get_any(txn, meta, key, out, &len);
    return rc == 1 && len != want ? AGENDA_STORAGE_CORRUPT : rc;
}

int storage_meta_read(MDB_txn *txn, MDB_dbi meta, struct storage_meta *m)
{
    const uint8_t *p;
    int rc;

    memset(m, 0, sizeof(*m));
    if ((rc = meta_get(txn, meta, STORAGE_KEY_VERSION, 4, &p)) < 0)
        return rc;
    if (rc == 1) {
        m->has_version = true;
        m->version = storage_get_u32(p);
    }
    if ((rc = meta_get(txn, meta, STORAGE_KEY_HARD_STATE, STORAGE_HS_SIZE,
                       &p)) < 0)
        return rc;
    if (rc == 1) {
        m->has_hs = true;
        m->hs.term = storage_get_u64(p);
        m->hs.vote = storage_get_u32(p + 8);
        m->hs.commit = storage_get_u64(p + 12);
    }
    if ((rc = meta_get(txn, meta, STORAGE_KEY_SNAPSHOT, STORAGE_PAIR_SIZE,
                       &p)) < 0)
        return rc;
    if (rc == 1) {
        m->has_snap = true;
        m->snap.index = storage_get_u64(p);
        m->snap.term = storage_get_u64(p + 8);
    }
    if ((rc = meta_get(txn, meta, STORAGE_KEY_APPLIED, STORAGE_PAIR_SIZE,
                       &p)) < 0)
        return rc;
    if (rc == 1) {
        m->has_applied = true;
        m->applied = storage_get_u64(p);
        m->applied_term = storage_get_u64(p + 8);
    }
    return AGENDA_STORAGE_OK;
}

static int meta_put(MDB_txn *txn, MDB_dbi meta, const char *key,
                    const uint8_t *val, size_t len)
{
    MDB_val k = { strlen(key), (void *)(uintptr_t)key };
    MDB_val v = { len, (void *)(uintptr_t)val };
    return mdb_put(txn, meta, &k, &v, 0);
}

int agenda_storage_identity_get(struct agenda_storage *s, MDB_txn *txn,
                                const uint8_t **data, size_t *len)
{
    return meta_get_any(txn, s->meta_dbi, STORAGE_KEY_IDENTITY, data, len);
}

int agenda_storage_identity_put(struct agenda_storage *s, MDB_txn *txn,
                                const uint8_t *data, size_t len)
{
    int rc = meta_put(txn, s->meta_dbi, STORAGE_KEY_IDENTITY, data, len);
    return rc == MDB_SUCCESS ? AGENDA_STORAGE_OK
                             : storage_fail(s, "storing the shard identity",
                                            rc);
}

int storage_meta_put_hs(MDB_txn *txn, MDB_dbi meta,
                        const struct raft_hard_state *hs)
{
    uint8_t b[STORAGE_HS_SIZE];
    storage_put_u64(b, hs->term);
    storage_put_u32(b + 8, hs->vote);
    storage_put_u64(b + 12, hs->commit);
    return meta_put(txn, meta, STORAGE_KEY_HARD_STATE, b, sizeof(b));
}

int storage_meta_put_pair(MDB_txn *txn, MDB_dbi meta, const char *key,
                          uint64_t index, uint64_t term)
{
    uint8_t b[STORAGE_PAIR_SIZE];
    storage_put_u64(b, index);
    storage_put_u64(b + 8, term);
    return meta_put(txn, meta, key, b, sizeof(b));
}

static int storage_dbis(MDB_txn *txn, unsigned create, MDB_dbi *log,
                        MDB_dbi *meta)
{
    int rc = mdb_dbi_open(txn, STORAGE_DB_LOG, MDB_INTEGERKEY | create, log);
    if (rc != MDB_SUCCESS)
        return rc;
    return mdb_dbi_open(txn, STORAGE_DB_META, create, meta);
}

int storage_open_dbis(MDB_txn *txn, MDB_dbi *log, MDB_dbi *meta)
{
    return storage_dbis(txn, 0, log, meta);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int storage_commit(struct agenda_storage *s, MDB_txn *txn)
{
    uint64_t t0 = now_ns();
    int rc = mdb_txn_commit(txn);
    uint64_t dt = now_ns() - t0;
    if (rc != MDB_SUCCESS)
        return storage_fail(s, "mdb_txn_commit", rc);
    s->sync.count++;
    s->sync.total_ns += dt;
    if (dt > s->sync.max_ns)
        s->sync.max_ns = dt;
    return AGENDA_STORAGE_OK;
}

int storage_check_length(MDB_env *env)
{
    MDB_envinfo info;
    MDB_stat st;
    int fd;
    struct stat sb;

    if (mdb_env_info(env, &info) != MDB_SUCCESS ||
        mdb_env_stat(env, &st) != MDB_SUCCESS ||
        mdb_env_get_fd(env, &fd) != MDB_SUCCESS || fstat(fd, &sb) != 0)
        return AGENDA_STORAGE_IO;
    if (st.ms_psize == 0 || sb.st_size < 0)
        return AGENDA_STORAGE_CORRUPT;
    uint64_t pages = (uint64_t)info.me_last_pgno + 1;
    if (pages > UINT64_MAX / st.ms_psize ||
        pages * st.ms_psize > (uint64_t)sb.st_size)
        return AGENDA_STORAGE_CORRUPT;
    return AGENDA_STORAGE_OK;
}

/* Create the databases and the format version, or check them. */
static int storage_init_db(struct agenda_storage *s)
{
    MDB_txn *txn;
    struct storage_meta m;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc != MDB_SUCCESS)
        return storage_fail(s, "mdb_txn_begin (init)", rc);
    rc = storage_dbis(txn, MDB_CREATE, &s->log_dbi, &s->meta_dbi);
    if (rc != MDB_SUCCESS) {
        mdb_txn_abort(txn);
        return storage_fail(s, "mdb_dbi_open (log, meta)", rc);
    }
    rc = storage_meta_read(txn, s->meta_dbi, &m);
    if (rc != AGENDA_STORAGE_OK) {
        mdb_txn_abort(txn);
        snprintf(s->errmsg, sizeof(s->errmsg), "reading meta: %s",
                 agenda_storage_strerror(rc));
        return rc;
    }
    if (m.has_version && m.version != AGENDA_STORAGE_FORMAT) {
        mdb_txn_abort(txn);
        snprintf(s->errmsg, sizeof(s->errmsg),
                 "format version %u, this build reads %u", m.version,
                 AGENDA_STORAGE_FORMAT);
        return AGENDA_STORAGE_VERSION;
    }
    if (!m.has_version) {
        MDB_stat st;
        rc = mdb_stat(txn, s->log_dbi, &st);
        if (rc == MDB_SUCCESS &&
            (m.has_hs || m.has_snap || m.has_applied || st.ms_entries > 0)) {
            mdb_txn_abort(txn);
            snprintf(s->errmsg, sizeof(s->errmsg),
                     "meta has records but no format version");
            return AGENDA_STORAGE_CORRUPT;
        }
        uint8_t v[4];
        storage_put_u32(v, AGENDA_STORAGE_FORMAT);
        MDB_val k = { strlen(STORAGE_KEY_VERSION),
                      (void *)(uintptr_t)STORAGE_KEY_VERSION };
        MDB_val d = { sizeof(v), v };
        if (rc == MDB_SUCCESS)
            rc = mdb_put(txn, s->meta_dbi, &k, &d, 0);
        if (rc != MDB_SUCCESS) {
            mdb_txn_abort(txn);
            return storage_fail(s, "writing format version", rc);
        }
    }
    /* Commit even when nothing changed: handles opened in an aborted txn
     * would be closed with it. */
    return storage_commit(s, txn);
}

/*
 * One process per data directory: LMDB lets several open an environment
 * (their writes take turns), and two agents on one replica's storage
 * would be two voters with one identity, each remembering its own vote —
 * say a container still stopping while its replacement starts on the same
 * volume.  The lock is a flock on dir/agent.lock, released by the kernel
 * whenever the process ends, however it ends.
 */
static int storage_lock(struct agenda_storage *s)
{
    char path[4096];
    if (snprintf(path, sizeof(path), "%s/agent.lock", s->dir) >=
        (int)sizeof(path)) {
        s->lock_fd = -1;
        snprintf(s->errmsg, sizeof(s->errmsg), "directory name too long");
        return AGENDA_STORAGE_INVALID;
    }
    s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (s->lock_fd < 0) {
        snprintf(s->errmsg, sizeof(s->errmsg), "opening agent.lock: %s",
                 strerror(errno));
        return agenda_storage_map_mdb(errno);
    }
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        if (e == EWOULDBLOCK) {
            snprintf(s->errmsg, sizeof(s->errmsg), "another process has "
                     "this directory open (agent.lock is locked)");
            return AGENDA_STORAGE_BUSY;
        }
        snprintf(s->errmsg, sizeof(s->errmsg), "locking agent.lock: %s",
                 strerror(e));
        return agenda_storage_map_mdb(e);
    }
    return AGENDA_STORAGE_OK;
}

int storage_env_open(struct agenda_storage *s)
{
    int rc = storage_mend_recover(s->dir);
    if (rc != AGENDA_STORAGE_OK) {
        s->env = NULL;
        snprintf(s->errmsg, sizeof(s->errmsg), "%s: cannot put data.mdb "
                 "back as it was before an interrupted check of its length",
                 STORAGE_MEND_MARK);
        return rc;
    }
    rc = mdb_env_create(&s->env);
    if (rc != MDB_SUCCESS) {
        s->env = NULL;
        return storage_fail(s, "mdb_env_create", rc);
    }
    if ((rc = mdb_env_set_maxdbs(s->env, AGENDA_STORAGE_MAXDBS)) != 0 ||
        (rc = mdb_env_set_mapsize(s->env, s->map_size)) != 0) {
        storage_env_close(s);
        return storage_fail(s, "configuring environment", rc);
    }
    rc = mdb_env_open(s->env, s->dir, MDB_NOTLS, 0600);
    if (rc != MDB_SUCCESS) {
        storage_env_close(s);
        return storage_fail(s, "mdb_env_open", rc);
    }
    int dead = 0;
    rc = mdb_reader_check(s->env, &dead);
    if (rc != MDB_SUCCESS) {
        storage_env_close(s);
        return storage_fail(s, "mdb_reader_check", rc);
    }
    /* The caller logs it (agenda_storage_stale_readers()): a library
     * that printed too would log it twice. */
    s->stale_readers = dead;
    rc = storage_mend_length(s->dir, s->env, &s->mended_bytes);
    if (rc != AGENDA_STORAGE_OK) {
        storage_env_close(s);
        snprintf(s->errmsg, sizeof(s->errmsg),
                 "data.mdb is shorter than its meta page says, and records "
                 "lie past its end (truncated)");
        return rc;
    }
    if ((rc = storage_init_db(s)) != AGENDA_STORAGE_OK ||
        (rc = storage_load(s)) != AGENDA_STORAGE_OK) {
        storage_env_close(s);
        return rc;
    }
    return AGENDA_STORAGE_OK;
}

void storage_env_close(struct agenda_storage *s)
{
    if (s->rtxn != NULL) {
        mdb_txn_abort(s->rtxn);
        s->rtxn = NULL;
    }
    if (s->env != NULL) {
        mdb_env_close(s->env);
        s->env = NULL;
    }
}

int storage_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return AGENDA_STORAGE_IO;
    int rc = fsync(fd) == 0 ? AGENDA_STORAGE_OK : AGENDA_STORAGE_IO;
    close(fd);
    return rc;
}

static void set_err(char *err, size_t errlen, const char *dir,
                    const char *why)
{
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "storage %s: %s", dir ? dir : "(null)", why);
}

int agenda_storage_open(const char *dir, size_t map_size,
                        struct agenda_storage **out, char *err,
                        size_t errlen)
{
    if (out == NULL)
        return AGENDA_STORAGE_INVALID;
    *out = NULL;
    if (dir == NULL || dir[0] == '\0') {
        set_err(err, errlen, dir, "no directory given");
        return AGENDA_STORAGE_INVALID;
    }
    bool created = mkdir(dir, 0700) == 0;
    if (!created && errno != EEXIST) {
        int e = errno;
        char why[160];
        snprintf(why, sizeof(why), "cannot create directory: %s",
                 strerror(e));
        set_err(err, errlen, dir, why);
        return agenda_storage_map_mdb(e);
    }
    struct agenda_storage *s = calloc(1, sizeof(*s));
    if (s == NULL || (s->dir = strdup(dir)) == NULL) {
        free(s);
        set_err(err, errlen, dir, "out of memory");
        return AGENDA_STORAGE_NOMEM;
    }
    s->map_size = map_size ? map_size : STORAGE_DEFAULT_MAP;
    atomic_init(&s->copying, 0);
    int rc = storage_lock(s);
    if (rc == AGENDA_STORAGE_OK)
        rc = storage_env_open(s);
    /* The first open creates data.mdb (and maybe the directory): their
     * names must be on disk before anything written into the file is
     * acknowledged (a vote, an entry), or a power loss could take the
     * file away with them.  Syncing the directory again at later opens is
     * cheap.  Its parent, only when this open created the directory, and
     * at best effort: it may be a mount point this user cannot open. */
    if (rc == AGENDA_STORAGE_OK) {
        rc = storage_fsync_dir(dir);
        if (rc != AGENDA_STORAGE_OK) {
            storage_env_close(s);
            snprintf(s->errmsg, sizeof(s->errmsg),
                     "cannot sync the directory");
        } else if (created) {
            (void)storage_sync_dir_of(dir);
        }
    }
    if (rc != AGENDA_STORAGE_OK) {
        char why[400];
        snprintf(why, sizeof(why), "%s (%s)", agenda_storage_strerror(rc),
                 s->errmsg);
        set_err(err, errlen, dir, why);
        if (s->lock_fd >= 0)
            close(s->lock_fd);
        free(s->dir);
        free(s);
        return rc;
    }
    *out = s;
    return AGENDA_STORAGE_OK;
}

void agenda_storage_close(struct agenda_storage *s)
{
    if (s == NULL)
        return;
    storage_env_close(s);
    if (s->lock_fd >= 0)
        close(s->lock_fd);
    free(s->dir);
    free(s);
}

MDB_env *agenda_storage_env(struct agenda_storage *s)
{
    return s->env;
}

uint64_t agenda_storage_mended_bytes(const struct agenda_storage *s)
{
    return s->mended_bytes;
}

int agenda_storage_stale_readers(const struct agenda_storage *s)
{
    return s->stale_readers;
}

const char *agenda_storage_last_error(const struct agenda_storage *s)
{
    return s->errmsg;
}

int agenda_storage_apply_begin(struct agenda_storage *s, MDB_txn **txn)
{
    if (txn == NULL)
        return AGENDA_STORAGE_INVALID;
    *txn = NULL;
    if (s->env == NULL)
        return AGENDA_STORAGE_CLOSED;
    if (s->wtxn_open)
        return AGENDA_STORAGE_BUSY;
    int rc = mdb_txn_begin(s->env, NULL, 0, txn);
    if (rc != MDB_SUCCESS) {
        *txn = NULL;
        return storage_fail(s, "mdb_txn_begin (apply)", rc);
    }
    s->wtxn_open = true;
    return AGENDA_STORAGE_OK;
}

int agenda_storage_apply_commit(struct agenda_storage *s, MDB_txn *txn,
                                raft_index applied, raft_term applied_term)
{
    if (txn == NULL || !s->wtxn_open)
        return AGENDA_STORAGE_INVALID;
    s->wtxn_open = false;
    if (applied < s->applied) {
        memset(&s->pending, 0, sizeof(s->pending));
        mdb_txn_abort(txn);
        snprintf(s->errmsg, sizeof(s->errmsg),
                 "apply_commit: applied %llu below current %llu",
                 (unsigned long long)applied,
                 (unsigned long long)s->applied);
        return AGENDA_STORAGE_INVALID;
    }
    int rc = storage_meta_put_pair(txn, s->meta_dbi, STORAGE_KEY_APPLIED,
                                   applied, applied_term);
    if (rc != MDB_SUCCESS) {
        memset(&s->pending, 0, sizeof(s->pending));
        mdb_txn_abort(txn);
        return storage_fail(s, "apply_commit: mdb_put applied", rc);
    }
    /* see agenda_storage_batch_begin() in storage.h: only entries, terms
     * and votes must be on disk before the commit returns */
    bool lazy = s->pending.batch && !s->pending.has_entries &&
                (!s->pending.has_hs || (s->pending.hs.term == s->hs.term &&
                                        s->pending.hs.vote == s->hs.vote));
    /* setting or clearing a flag only fails on a bad argument */
    if (lazy)
        (void)mdb_env_set_flags(s->env, MDB_NOMETASYNC, 1);
    rc = storage_commit(s, txn);
    if (lazy) {
        (void)mdb_env_set_flags(s->env, MDB_NOMETASYNC, 0);
        if (rc == AGENDA_STORAGE_OK)
            s->sync.lazy++;
    }
    if (rc != AGENDA_STORAGE_OK) {
        memset(&s->pending, 0, sizeof(s->pending));
        return rc;
    }
    storage_pending_apply(s);
    s->applied = applied;
    s->applied_term = applied_term;
    return AGENDA_STORAGE_OK;
}

void agenda_storage_apply_abort(struct agenda_storage *s, MDB_txn *txn)
{
    if (txn == NULL || !s->wtxn_open)
        return;
    s->wtxn_open = false;
    memset(&s->pending, 0, sizeof(s->pending));
    mdb_txn_abort(txn);
}

int agenda_storage_applied(struct agenda_storage *s, raft_index *index,
                           raft_term *term)
{
    if (s->env == NULL)
        return AGENDA_STORAGE_CLOSED;
    if (index != NULL)
        *index = s->applied;
    if (term != NULL)
        *term = s->applied_term;
    return AGENDA_STORAGE_OK;
}

int agenda_storage_read_begin(struct agenda_storage *s, MDB_txn **txn)
{
    if (txn == NULL)
        return AGENDA_STORAGE_INVALID;
    *txn = NULL;
    if (s->env == NULL)
        return AGENDA_STORAGE_CLOSED;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, txn);
    if (rc != MDB_SUCCESS) {
        *txn = NULL;
        return storage_fail(s, "mdb_txn_begin (read)", rc);
    }
    s->readers_open++;
    return AGENDA_STORAGE_OK;
}

void agenda_storage_read_end(struct agenda_storage *s, MDB_txn *txn)
{
    if (txn == NULL)
        return;
    mdb_txn_abort(txn);
    if (s->readers_open > 0)
        s->readers_open--;
}

int agenda_storage_stat(struct agenda_storage *s,
                        struct agenda_storage_stat *out)
{
    MDB_envinfo info;
    MDB_stat st;

    memset(out, 0, sizeof(*out));
    if (s->env == NULL)
        return AGENDA_STORAGE_CLOSED;
    int rc = mdb_env_info(s->env, &info);
    if (rc == MDB_SUCCESS)
        rc = mdb_env_stat(s->env, &st);
    if (rc != MDB_SUCCESS)
        return storage_fail(s, "mdb_env_info", rc);
    out->map_size = info.me_mapsize;
    out->page_size = st.ms_psize;
    out->used_bytes = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
    out->first_index = s->first;
    out->last_index = s->last;
    out->log_entries = s->last >= s->first ? s->last - s->first + 1 : 0;
    out->snapshot = s->snap;
    out->applied = s->applied;
    out->applied_term = s->applied_term;
    return AGENDA_STORAGE_OK;
}

void agenda_storage_sync_stats(const struct agenda_storage *s,
                               struct agenda_storage_sync_stats *out)
{
    *out = s->sync;
}

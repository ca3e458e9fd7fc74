/*
 * storage_internal.h — what storage.c, storage_log.c and storage_snapshot.c
 * share.  Not for use outside those three files.
 */
#ifndef AGENDA_STORAGE_INTERNAL_H
#define AGENDA_STORAGE_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lmdb.h>

#include "storage.h"

#define STORAGE_DB_LOG "log"
#define STORAGE_DB_META "meta"
#define STORAGE_KEY_VERSION "version"
#define STORAGE_KEY_HARD_STATE "hard_state"
#define STORAGE_KEY_SNAPSHOT "snapshot"
#define STORAGE_KEY_APPLIED "applied"
#define STORAGE_KEY_IDENTITY "shard_identity"

#define STORAGE_HS_SIZE 20    /* term u64, vote u32, commit u64 */
#define STORAGE_PAIR_SIZE 16  /* index u64, term u64 */
#define STORAGE_ENTRY_HDR 9   /* term u64, type u8; data follows */

struct agenda_storage {
    char *dir;
    int lock_fd;           /* dir/agent.lock, flock()ed while open */
    size_t map_size;
    MDB_env *env;          /* NULL after a failed install */
    MDB_dbi log_dbi;
    MDB_dbi meta_dbi;

    MDB_txn *rtxn;         /* long-lived read txn, reset between uses */
    bool wtxn_open;        /* an apply txn is open */
    unsigned readers_open; /* read_begin() txns not yet ended */
    atomic_int copying;    /* snapshot_create() running */

    /* caches, changed only after a successful commit */
    raft_index first;      /* == snap.index + 1 */
    raft_index last;
    raft_term last_term;
    struct raft_snapshot_meta snap;
    struct raft_hard_state hs;
    raft_index applied;
    raft_term applied_term;

    /* cache updates of a batch transaction, applied at its commit */
    struct {
        bool active, has_entries, has_hs;
        bool batch; /* begun by batch_begin: may commit lazily */
        raft_index last;
        raft_term last_term;
        struct raft_hard_state hs;
    } pending;

    int stale_readers;
    uint64_t mended_bytes; /* zeros added at the last open, see storage.c */
    struct agenda_storage_sync_stats sync;
    char errmsg[256];
};

/* What the meta database says; each field valid when its has_ flag is. */
struct storage_meta {
    bool has_version, has_hs, has_snap, has_applied;
    uint32_t version;
    struct raft_hard_state hs;
    struct raft_snapshot_meta snap;
    raft_index applied;
    raft_term applied_term;
};

/* Record "what: LMDB message" in s->errmsg; returns agenda_storage_map_mdb(rc). */
int storage_fail(struct agenda_storage *s, const char *what, int rc);

/* Little-endian codecs for meta values and entry headers. */
void storage_put_u64(uint8_t *p, uint64_t v);
uint64_t storage_get_u64(const uint8_t *p);
void storage_put_u32(uint8_t *p, uint32_t v);
uint32_t storage_get_u32(const uint8_t *p);

/* Read every meta record in txn, validating sizes.  Returns 0,
 * AGENDA_STORAGE_CORRUPT or another error. */
int storage_meta_read(MDB_txn *txn, MDB_dbi meta, struct storage_meta *m);

/* Write the hard state / an (index, term) pair under key in txn. */
int storage_meta_put_hs(MDB_txn *txn, MDB_dbi meta,
                        const struct raft_hard_state *hs);
int storage_meta_put_pair(MDB_txn *txn, MDB_dbi meta, const char *key,
                          uint64_t index, uint64_t term);

/* Open (not create) the "log" and "meta" databases in txn. */
int storage_open_dbis(MDB_txn *txn, MDB_dbi *log, MDB_dbi *meta);

/* Decode a log record; 0 or AGENDA_STORAGE_CORRUPT.  e->data points into
 * val (valid while the txn is). */
int storage_entry_decode(const MDB_val *key, const MDB_val *val,
                         struct raft_entry *e);

/* Commit txn, timing it into s->sync.  The txn is always ended. */
int storage_commit(struct agenda_storage *s, MDB_txn *txn);

/* Move the pending cache updates of a committed batch into the caches. */
void storage_pending_apply(struct agenda_storage *s);

/* Load caches from the environment (first/last from the log, meta);
 * validates the log's shape.  0 or a negative error (message in s). */
int storage_load(struct agenda_storage *s);

/* Check that the file behind env is as long as its meta page says, before
 * any page beyond the meta pages is touched (a short file would SIGBUS). */
int storage_check_length(MDB_env *env);

/* ---- a short data.mdb (storage_mend.c) ---- */

#define STORAGE_MEND_MARK "data.mdb.mending"

/* env (the live environment of dir) ends before the last page its meta
 * page counts: extend it with zeros if every record lies within what it
 * has, or refuse it (CORRUPT, left as it was).  *mended: bytes added. */
int storage_mend_length(const char *dir, MDB_env *env, uint64_t *mended);
/* Before opening dir: undo a mend an agent stopped in the middle of. */
int storage_mend_recover(const char *dir);

/* Open or create the environment of s->dir into s->env, create/check the
 * databases and load the caches.  On failure s->env is NULL. */
int storage_env_open(struct agenda_storage *s);

/* Close s->env (and the long-lived read txn) if open. */
void storage_env_close(struct agenda_storage *s);

/* fsync the directory holding path (or path itself when it is one). */
int storage_fsync_dir(const char *dir);

/* ---- snapshot files (storage_snapshot*.c) ---- */

/* Open the copy at path as a single-file environment without a lock file
 * (nobody else uses it) and check its length before any data page is
 * touched.  flags: MDB_RDONLY or 0.  map_size: 0 to map just the file. */
int storage_copy_open(const char *path, unsigned flags, size_t map_size,
                      MDB_env **out);

/* Where an environment's file is mapped, as far as the file goes: LMDB
 * hands out keys and values of the lengths a page states, so a bad page
 * could point anywhere, and only what lies inside may be read. */
struct storage_map {
    const char *base;
    size_t len;
};
int storage_map_of(MDB_txn *txn, struct storage_map *m);
bool storage_in_map(const struct storage_map *m, const MDB_val *v);

/* Call fn for every named database listed in txn's main database (its
 * name, NUL-terminated, and an open handle), stopping at the first
 * error; a main database holding anything else is CORRUPT. */
typedef int (*storage_db_fn)(MDB_txn *txn, const struct storage_map *map,
                             const char *name, MDB_dbi dbi, void *arg);
int storage_each_db(MDB_txn *txn, const struct storage_map *map,
                    storage_db_fn fn, void *arg);

/* A storage_db_fn: every record of dbi walked, every key and value inside
 * the map; when dbi is the log (*arg, an MDB_dbi), its records decoded
 * and checked to be contiguous. */
int storage_walk_db(MDB_txn *txn, const struct storage_map *map,
                    const char *name, MDB_dbi dbi, void *arg);

/* The copy at path opened read-only (storage_copy_open) with a read
 * transaction on it; on failure nothing is left open. */
int storage_copy_begin(const char *path, MDB_env **env, MDB_txn **txn);

/* What a copy must be, in a read transaction of it: our databases, our
 * format version (VERSION otherwise), *m its meta records; with deep,
 * every database walked (storage_walk_db). */
int storage_copy_check(MDB_txn *txn, bool deep, struct storage_meta *m);

/* path + ".tmp", malloc'd (NULL when out of memory). */
char *storage_tmp_name(const char *path);

/* fsync the directory that holds path. */
int storage_sync_dir_of(const char *path);

#endif /* AGENDA_STORAGE_INTERNAL_H */

/*
 * storage_mend.c — a live data.mdb that ends before the last page its
 * meta page counts: mended when it is sound, refused when it was cut.
 *
 * LMDB never writes the pages a transaction allocated at the end of the
 * file and freed again (mdb_page_flush skips loose pages), while its meta
 * page counts them (fill_to_last_page() in storage_snapshot_vet.c meets
 * the same in rebuilt snapshots): a stop before a later transaction
 * writes past them leaves a short file that is sound.  A file really cut
 * short (a bad copy, a damaged disk) looks the same until its records are
 * read, and reading a page past the end of a mapped file is SIGBUS.  So:
 *
 *   1. the mark (STORAGE_MEND_MARK) is written with the file's length and
 *      synced;
 *   2. the file is extended with zeros to what the meta page counts;
 *   3. a child process opens it afresh and walks every database, the free
 *      list included, requiring every key and value to lie within the
 *      bytes the file had (a zero page met on the way is corrupt to LMDB,
 *      or makes it abort: the child, not the agent);
 *   4. sound: the mark goes.  Cut short: the length is put back, the mark
 *      goes, and the file is refused.
 *
 * An agent stopped between 1 and 4 finds the mark at its next open and
 * puts the length back before anything else (storage_mend_recover()), so
 * the check is never skipped.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "storage.h"
#include "storage_internal.h"

static void path_of(char *out, size_t n, const char *dir, const char *name)
{
    snprintf(out, n, "%s/%s", dir, name);
}

/* In the child: every record of the file at path within its first had
 * bytes. */
static int walk_within(const char *path, off_t had)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi log, meta;
    struct storage_map map;
    int r = storage_copy_begin(path, &env, &txn);
    if (r != AGENDA_STORAGE_OK)
        return r;
    r = storage_map_of(txn, &map);
    if (r == AGENDA_STORAGE_OK && map.len > (size_t)had)
        map.len = (size_t)had;
    if (r == AGENDA_STORAGE_OK && storage_open_dbis(txn, &log, &meta) != 0)
        r = AGENDA_STORAGE_CORRUPT;
    /* the free list (database 0), then every named database */
    if (r == AGENDA_STORAGE_OK)
        r = storage_walk_db(txn, &map, "", 0, &log);
    if (r == AGENDA_STORAGE_OK)
        r = storage_each_db(txn, &map, storage_walk_db, &log);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return r;
}

/* Whether a child process finds every record of path within had bytes. */
static bool sound_within(const char *path, off_t had)
{
    pid_t pid = fork();
    if (pid == 0)
        _exit(walk_within(path, had) == AGENDA_STORAGE_OK ? 0 : 1);
    if (pid < 0)
        return false;
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return false;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static int write_mark(const char *dir, off_t had)
{
    char path[4096], text[32];
    path_of(path, sizeof(path), dir, STORAGE_MEND_MARK);
    int n = snprintf(text, sizeof(text), "%" PRId64 "\n", (int64_t)had);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return agenda_storage_map_mdb(errno);
    int r = write(fd, text, (size_t)n) == n && fsync(fd) == 0
                ? AGENDA_STORAGE_OK
                : AGENDA_STORAGE_IO;
    close(fd);
    if (r == AGENDA_STORAGE_OK)
        r = storage_fsync_dir(dir);
    return r;
}

static int remove_mark(const char *dir)
{
    char path[4096];
    path_of(path, sizeof(path), dir, STORAGE_MEND_MARK);
    if (unlink(path) != 0 && errno != ENOENT)
        return agenda_storage_map_mdb(errno);
    return storage_fsync_dir(dir);
}

int storage_mend_length(const char *dir, MDB_env *env, uint64_t *mended)
{
    MDB_envinfo info;
    MDB_stat st;
    struct stat sb;
    int fd;
    char path[4096];

    *mended = 0;
    if (storage_check_length(env) == AGENDA_STORAGE_OK)
        return AGENDA_STORAGE_OK;
    if (mdb_env_info(env, &info) != MDB_SUCCESS ||
        mdb_env_stat(env, &st) != MDB_SUCCESS ||
        mdb_env_get_fd(env, &fd) != MDB_SUCCESS || fstat(fd, &sb) != 0 ||
        st.ms_psize == 0 ||
        (uint64_t)info.me_last_pgno >= (uint64_t)INT64_MAX / st.ms_psize)
        return AGENDA_STORAGE_CORRUPT;
    off_t had = sb.st_size;
    off_t need = (off_t)(((uint64_t)info.me_last_pgno + 1) * st.ms_psize);
    int r = write_mark(dir, had);
    if (r != AGENDA_STORAGE_OK)
        return r;
    if (ftruncate(fd, need) != 0) {
        r = agenda_storage_map_mdb(errno);
        (void)remove_mark(dir);
        return r;
    }
    path_of(path, sizeof(path), dir, "data.mdb");
    bool sound = sound_within(path, had);
    if (!sound && ftruncate(fd, had) != 0)
        return AGENDA_STORAGE_IO; /* the mark stays: the next open retries */
    r = remove_mark(dir);
    if (r != AGENDA_STORAGE_OK)
        return r;
    if (!sound)
        return AGENDA_STORAGE_CORRUPT;
    *mended = (uint64_t)(need - had);
    return AGENDA_STORAGE_OK;
}

int storage_mend_recover(const char *dir)
{
    char path[4096], text[32], data[4096];
    path_of(path, sizeof(path), dir, STORAGE_MEND_MARK);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? AGENDA_STORAGE_OK : AGENDA_STORAGE_IO;
    ssize_t n = read(fd, text, sizeof(text) - 1);
    close(fd);
    if (n <= 0)
        return AGENDA_STORAGE_CORRUPT;
    text[n] = '\0';
    char *end;
    errno = 0;
    long long had = strtoll(text, &end, 10);
    if (errno != 0 || end == text || (*end != '\n' && *end != '\0') ||
        had <= 0)
        return AGENDA_STORAGE_CORRUPT;
    path_of(data, sizeof(data), dir, "data.mdb");
    struct stat sb;
    if (stat(data, &sb) != 0)
        return AGENDA_STORAGE_IO;
    /* only ever shortened back: a mark never makes a file longer */
    if (sb.st_size > (off_t)had && truncate(data, (off_t)had) != 0)
        return agenda_storage_map_mdb(errno);
    return remove_mark(dir);
}

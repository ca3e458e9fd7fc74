/*
 * test_storage.c — the LMDB storage of raft_agent (raft_agent/storage.h).
 *
 * Each test runs in a fresh mkdtemp directory, removed afterwards.  Log
 * reads go through the real struct raft_storage callbacks with a sink built
 * from the core's own arena, exactly as the core reads them.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <lmdb.h>

#include "raft.h"
#include "raft_arena.h"
#include "raft_log.h"
#include "storage.h"

#include "../env_dir.h"

#define MIB ((size_t)1 << 20)

struct fx {
    char dir[64];      /* the environment of storage s */
    char dir2[64];     /* a second one, for snapshot tests */
    struct agenda_storage *s;
    struct raft_arena arena;
    uint8_t data[64][256]; /* payloads of generated entries */
};

/* --- helpers -------------------------------------------------------------- */

static void path_in(char *out, size_t n, const char *dir, const char *name)
{
    int w = snprintf(out, n, "%s/%s", dir, name);
    assert_true(w > 0 && (size_t)w < n);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    strcpy(f->dir, "/tmp/agenda_storage_XXXXXX");
    strcpy(f->dir2, "/tmp/agenda_storage_XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    assert_non_null(mkdtemp(f->dir2));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    agenda_storage_close(f->s);
    raft_arena_free(&f->arena);
    test_dir_remove_all(f->dir);
    test_dir_remove_all(f->dir2);
    free(f);
    return 0;
}

static struct agenda_storage *open_at(const char *dir, size_t map)
{
    struct agenda_storage *s = NULL;
    char err[256] = "";
    int rc = agenda_storage_open(dir, map, &s, err, sizeof(err));
    if (rc != 0)
        fail_msg("open %s: %d %s", dir, rc, err);
    return s;
}

static void reopen(struct fx *f)
{
    agenda_storage_close(f->s);
    f->s = open_at(f->dir, 0);
}

/* Entry i of a generated log: payload depends on i and term so that an
 * overwritten entry is told apart from the original. */
static struct raft_entry mk(struct fx *f, raft_index i, raft_term t,
                            uint32_t len)
{
    assert_true(len <= sizeof(f->data[0]));
    uint8_t *d = f->data[i % 64];
    for (uint32_t k = 0; k < len; k++)
        d[k] = (uint8_t)(i * 31 + t * 7 + k);
    struct raft_entry e = { .term = t, .index = i,
                            .type = len ? RAFT_ENTRY_NORMAL : RAFT_ENTRY_NOOP,
                            .len = len, .data = len ? d : NULL };
    return e;
}

static void check_payload(const struct raft_entry *e, raft_index i,
                          raft_term t, uint32_t len)
{
    assert_int_equal(e->index, i);
    assert_int_equal(e->term, t);
    assert_int_equal(e->len, len);
    assert_int_equal(e->type, len ? RAFT_ENTRY_NORMAL : RAFT_ENTRY_NOOP);
    for (uint32_t k = 0; k < len; k++)
        assert_int_equal(e->data[k], (uint8_t)(i * 31 + t * 7 + k));
}

/* Append entries lo..hi (inclusive) of term t, len bytes each. */
static int append(struct fx *f, const struct raft_hard_state *hs,
                  raft_index lo, raft_index hi, raft_term t, uint32_t len)
{
    struct raft_entry ents[64];
    size_t n = 0;
    assert_true(hi - lo + 1 <= 64);
    for (raft_index i = lo; i <= hi; i++)
        ents[n++] = mk(f, i, t, len);
    return agenda_storage_persist(f->s, hs, ents, n);
}

/* Read lo..hi-1 through the raft_storage callback into a fresh sink. */
static int read_entries(struct fx *f, struct agenda_storage *s,
                        raft_index lo, raft_index hi, size_t max,
                        struct raft_entry_sink *sk)
{
    raft_arena_reset(&f->arena);
    memset(sk, 0, sizeof(*sk));
    sk->arena = &f->arena;
    sk->next = lo;
    sk->max_bytes = max;
    return agenda_storage_raft_ops()->entries(s, lo, hi, max, sk);
}

static raft_index last_of(struct agenda_storage *s)
{
    raft_index v = 0;
    assert_int_equal(agenda_storage_raft_ops()->last_index(s, &v), RAFT_OK);
    return v;
}

static raft_index first_of(struct agenda_storage *s)
{
    raft_index v = 0;
    assert_int_equal(agenda_storage_raft_ops()->first_index(s, &v), RAFT_OK);
    return v;
}

static int term_of(struct agenda_storage *s, raft_index i, raft_term *t)
{
    return agenda_storage_raft_ops()->term(s, i, t);
}

/* Put key=val into the state machine database "sm_test" and commit the
 * apply batch with (applied, term). */
static void sm_apply(struct agenda_storage *s, const char *key,
                     const void *val, size_t len, raft_index applied,
                     raft_term term)
{
    MDB_txn *txn;
    MDB_dbi dbi;
    assert_int_equal(agenda_storage_apply_begin(s, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "sm_test", MDB_CREATE, &dbi), 0);
    MDB_val k = { strlen(key), (void *)(uintptr_t)key };
    MDB_val v = { len, (void *)(uintptr_t)val };
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    assert_int_equal(agenda_storage_apply_commit(s, txn, applied, term), 0);
}

/* Value of key in "sm_test" copied to out (NUL-terminated); -1 if absent */
static int sm_get(struct agenda_storage *s, const char *key, char *out,
                  size_t n)
{
    MDB_txn *txn;
    MDB_dbi dbi;
    assert_int_equal(agenda_storage_read_begin(s, &txn), 0);
    int rc = mdb_dbi_open(txn, "sm_test", 0, &dbi);
    MDB_val k = { strlen(key), (void *)(uintptr_t)key };
    MDB_val v;
    if (rc == 0)
        rc = mdb_get(txn, dbi, &k, &v);
    if (rc == 0) {
        size_t m = v.mv_size < n - 1 ? v.mv_size : n - 1;
        memcpy(out, v.mv_data, m);
        out[m] = '\0';
    }
    agenda_storage_read_end(s, txn);
    return rc == 0 ? 0 : -1;
}

static void write_file(const char *path, const void *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, p, n), (ssize_t)n);
    close(fd);
}

static void copy_file(const char *from, const char *to, off_t limit)
{
    int in = open(from, O_RDONLY);
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(in >= 0 && out >= 0);
    char buf[8192];
    off_t done = 0;
    ssize_t r;
    while ((limit < 0 || done < limit) &&
           (r = read(in, buf, sizeof(buf))) > 0) {
        if (limit >= 0 && done + r > limit)
            r = (ssize_t)(limit - done);
        assert_int_equal(write(out, buf, (size_t)r), r);
        done += r;
    }
    close(in);
    close(out);
}

static off_t file_size(const char *path)
{
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    return sb.st_size;
}

static void random_bytes(uint8_t *p, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005u + 1442695040888963407u;
        p[i] = (uint8_t)(seed >> 56);
    }
}

/* --- tests ---------------------------------------------------------------- */

static void test_append_and_read_back(void **state)
{
    struct fx *f = *state;
    f->s = open_at(f->dir, 0);
    assert_int_equal(first_of(f->s), 1);
    assert_int_equal(last_of(f->s), 0);

    struct raft_entry ents[4] = { mk(f, 1, 1, 0), mk(f, 2, 1, 10),
                                  mk(f, 3, 2, 200), mk(f, 4, 2, 5) };
    assert_int_equal(agenda_storage_persist(f->s, NULL, ents, 4), 0);
    assert_int_equal(first_of(f->s), 1);
    assert_int_equal(last_of(f->s), 4);

    raft_term t = 99;
    assert_int_equal(term_of(f->s, 0, &t), RAFT_OK);
    assert_int_equal(t, 0);
    assert_int_equal(term_of(f->s, 2, &t), RAFT_OK);
    assert_int_equal(t, 1);
    assert_int_equal(term_of(f->s, 3, &t), RAFT_OK);
    assert_int_equal(t, 2);
    assert_int_equal(term_of(f->s, 5, &t), RAFT_ERR_INVALID);

    struct raft_entry_sink sk;
    assert_int_equal(read_entries(f, f->s, 1, 5, SIZE_MAX, &sk), RAFT_OK);
    assert_int_equal(sk.n, 4);
    check_payload(&sk.ents[0], 1, 1, 0);
    check_payload(&sk.ents[1], 2, 1, 10);
    check_payload(&sk.ents[2], 3, 2, 200);
    check_payload(&sk.ents[3], 4, 2, 5);

    /* The byte budget stops before an entry that would exceed it... */
    assert_int_equal(read_entries(f, f->s, 1, 5, 100, &sk), RAFT_OK);
    assert_int_equal(sk.n, 2);
    /* ...but one entry is always returned, however large. */
    assert_int_equal(read_entries(f, f->s, 3, 5, 1, &sk), RAFT_OK);
    assert_int_equal(sk.n, 1);
    check_payload(&sk.ents[0], 3, 2, 200);
    /* Out of range. */
    assert_int_equal(read_entries(f, f->s, 2, 6, SIZE_MAX, &sk),
                     RAFT_ERR_INVALID);
    assert_int_equal(read_entries(f, f->s, 0, 2, SIZE_MAX, &sk),
                     RAFT_ERR_COMPACTED);

    /* Appending right after the last index needs no truncation. */
    assert_int_equal(append(f, NULL, 5, 6, 3, 7), 0);
    assert_int_equal(last_of(f->s), 6);
    reopen(f);
    assert_int_equal(last_of(f->s), 6);
    assert_int_equal(read_entries(f, f->s, 1, 7, SIZE_MAX, &sk), RAFT_OK);
    assert_int_equal(sk.n, 6);
    check_payload(&sk.ents[2], 3, 2, 200);
    check_payload(&sk.ents[5], 6, 3, 7);
}

static void test_conflicting_suffix_is_overwritten(void **state)
{
    struct fx *f = *state;
    f->s = open_at(f->dir, 0);
    assert_int_equal(append(f, NULL, 1, 5, 1, 16), 0);
    assert_int_equal(append(f, NULL, 3, 4, 2, 8), 0);
    assert_int_equal(last_of(f->s), 4);

    raft_term t;
    assert_int_equal(term_of(f->s, 4, &t), RAFT_OK);
    assert_int_equal(t, 2);
    assert_int_equal(term_of(f->s, 5, &t), RAFT_ERR_INVALID);

    reopen(f);
    assert_int_equal(last_of(f->s), 4);
    struct raft_entry_sink sk;
    assert_int_equal(read_entries(f, f->s, 1, 5, SIZE_MAX, &sk), RAFT_OK);
    assert_int_equal(sk.n, 4);
    check_payload(&sk.ents[1], 2, 1, 16);
    check_payload(&sk.ents[2], 3, 2, 8);
    check_payload(&sk.ents[3], 4, 2, 8);
    struct agenda_storage_stat st;
    assert_int_equal(agenda_storage_stat(f->s, &st), 0);
    assert_int_equal(st.log_entries, 4);
}

static void test_hard_state_survives_reopen(void **state)
{
    struct fx *f = *state;
    f->s = open_at(f->dir, 0);
    struct raft_hard_state hs = { .term = 5, .vote = 2, .commit = 3 };
    assert_int_equal(append(f, &hs, 1, 3, 5, 4), 0);
    /* hs NULL leaves it alone; hs without entries saves only it */
    assert_int_equal(append(f, NULL, 4, 4, 5, 4), 0);
    reopen(f);

    struct raft_hard_state got;
    struct raft_snapshot_meta snap = { 9, 9 };
    assert_int_equal(agenda_storage_raft_ops()->initial_state(f->s, &got,
                                                              &snap), 0);
    assert_int_equal(got.term, 5);
    assert_int_equal(got.vote, 2);
    assert_int_equal(got.commit, 3);
    assert_int_equal(snap.index, 0);
    assert_int_equal(snap.term, 0);

    struct raft_hard_state hs2 = { .term = 6, .vote = 0, .commit = 4 };
    assert_int_equal(agenda_storage_persist(f->s, &hs2, NULL, 0), 0);
    reopen(f);
    assert_int_equal(agenda_storage_raft_ops()->initial_state(f->s, &got,
                                                              &snap), 0);
    assert_int_equal(got.term, 6);
    assert_int_equal(got.vote, 0);
    assert_int_equal(got.commit, 4);
    assert_int_equal(last_of(f->s), 4);
}

static void test_invalid_batches_change_nothing(void **state)
{
    struct fx *f = *state;
    f->s = open_at(f->dir, 0);
    struct raft_hard_state hs = { .term = 3, .vote = 1, .commit = 2 };
    assert_int_equal(append(f, &hs, 1, 4, 2, 4), 0);

    /* gap after the last index */
    assert_int_equal(append(f, NULL, 6, 6, 2, 4), AGENDA_STORAGE_INVALID);
    /* would truncate committed entry 2 */
    assert_int_equal(append(f, NULL, 2, 2, 3, 4), AGENDA_STORAGE_INVALID);
    /* index 0 lies inside the (empty) snapshot */
    assert_int_equal(append(f, NULL, 0, 0, 3, 4), AGENDA_STORAGE_INVALID);
    /* not contiguous, bad type, decreasing terms, term going back */
    struct raft_entry e[2] = { mk(f, 5, 3, 4), mk(f, 7, 3, 4) };
    assert_int_equal(agenda_storage_persist(f->s, NULL, e, 2),
                     AGENDA_STORAGE_INVALID);
    e[1] = mk(f, 6, 3, 4);
    e[1].type = 9;
    assert_int_equal(agenda_storage_persist(f->s, NULL, e, 2),
                     AGENDA_STORAGE_INVALID);
    e[1] = mk(f, 6, 1, 4);
    assert_int_equal(agenda_storage_persist(f->s, NULL, e, 2),
                     AGENDA_STORAGE_INVALID);
    e[0] = mk(f, 5, 1, 4);
    assert_int_equal(agenda_storage_persist(f->s, NULL, e, 1),
                     AGENDA_STORAGE_INVALID);
    struct raft_hard_state old = { .term = 2, .vote = 0, .commit = 2 };
    assert_int_equal(agenda_storage_persist(f->s, &old, NULL, 0),
                     AGENDA_STORAGE_INVALID);
    assert_string_not_equal(agenda_storage_last_error(f->s), "");

    reopen(f);
    assert_int_equal(last_of(f->s), 4);
    struct raft_hard_state got;
    struct raft_snapshot_meta snap;
    agenda_storage_raft_ops()->initial_state(f->s, &got, &snap);
    assert_int_equal(got.term, 3);
    assert_int_equal(got.vote, 1);
}

static void test_apply_commit_is_atomic(void **state)
{
    struct fx *f = *state;
    char buf[64];
    f->s = open_at(f->dir, 0);
    assert_int_equal(append(f, NULL, 1, 3, 1, 4), 0);

    sm_apply(f->s, "k1", "v1", 2, 2, 1);
    raft_index ai = 0;
    raft_term at = 0;
    assert_int_equal(agenda_storage_applied(f->s, &ai, &at), 0);
    assert_int_equal(ai, 2);
    assert_int_equal(at, 1);

    /* An open apply txn blocks other writers instead of deadlocking. */
    MDB_txn *txn;
    MDB_dbi dbi;
    assert_int_equal(agenda_storage_apply_begin(f->s, &txn), 0);
    MDB_txn *txn2;
    assert_int_equal(agenda_storage_apply_begin(f->s, &txn2),
                     AGENDA_STORAGE_BUSY);
    assert_int_equal(append(f, NULL, 4, 4, 1, 4), AGENDA_STORAGE_BUSY);
    assert_int_equal(agenda_storage_compact(f->s, 2), AGENDA_STORAGE_BUSY);
    assert_int_equal(mdb_dbi_open(txn, "sm_test", 0, &dbi), 0);
    MDB_val k = { 2, "k2" }, v = { 2, "v2" };
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    agenda_storage_apply_abort(f->s, txn);
    assert_int_equal(sm_get(f->s, "k2", buf, sizeof(buf)), -1);
    assert_int_equal(agenda_storage_applied(f->s, &ai, &at), 0);
    assert_int_equal(ai, 2);

    /* applied never goes back: the batch is refused whole */
    assert_int_equal(agenda_storage_apply_begin(f->s, &txn), 0);
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    assert_int_equal(agenda_storage_apply_commit(f->s, txn, 1, 1),
                     AGENDA_STORAGE_INVALID);
    assert_int_equal(sm_get(f->s, "k2", buf, sizeof(buf)), -1);

    sm_apply(f->s, "k3", "v3", 2, 3, 1);
    reopen(f);
    assert_int_equal(agenda_storage_applied(f->s, &ai, &at), 0);
    assert_int_equal(ai, 3);
    assert_int_equal(sm_get(f->s, "k1", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "v1");
    assert_int_equal(sm_get(f->s, "k3", buf, sizeof(buf)), 0);
    assert_int_equal(sm_get(f->s, "k2", buf, sizeof(buf)), -1);
}

/* After a (clean) reopen: the applied index, the hard state and the state
 * machine's k1 = v1 are what the batches left. */
static void expect_reopened(struct fx *f, raft_index applied,
                            const struct raft_hard_state *want)
{
    char buf[64];
    reopen(f);
    raft_index ai = 0;
    raft_term at = 0;
    assert_int_equal(agenda_storage_applied(f->s, &ai, &at), 0);
    assert_int_equal(ai, applied);
    struct raft_hard_state got;
    struct raft_snapshot_meta snap;
    assert_int_equal(agenda_storage_raft_ops()->initial_state(f->s, &got,
                                                              &snap), 0);
    assert_int_equal(got.term, want->term);
    assert_int_equal(got.vote, want->vote);
    assert_int_equal(got.commit, want->commit);
    assert_int_equal(sm_get(f->s, "k1", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "v1");
}

/* The agent's batch: log entries, hard state and state-machine changes in
 * one transaction; nothing of it is visible unless it commits. */
static void test_batch_persists_and_applies_atomically(void **state)
{
    struct fx *f = *state;
    char buf[64];
    f->s = open_at(f->dir, 0);
    struct raft_entry ents[3] = {mk(f, 1, 1, 8), mk(f, 2, 1, 8),
                                 mk(f, 3, 1, 8)};
    struct raft_hard_state hs = {.term = 1, .vote = 2, .commit = 2};
    MDB_txn *txn;
    MDB_dbi dbi;

    /* aborted: neither the entries nor the write are there */
    assert_int_equal(agenda_storage_batch_begin(f->s, &hs, ents, 3, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "sm_test", MDB_CREATE, &dbi), 0);
    MDB_val k = {2, "k1"}, v = {2, "v1"};
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    agenda_storage_apply_abort(f->s, txn);
    assert_int_equal(last_of(f->s), 0);
    assert_int_equal(sm_get(f->s, "k1", buf, sizeof(buf)), -1);

    /* committed: all of it, caches included, and it survives a reopen */
    assert_int_equal(agenda_storage_batch_begin(f->s, &hs, ents, 3, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "sm_test", MDB_CREATE, &dbi), 0);
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    assert_int_equal(agenda_storage_apply_commit(f->s, txn, 2, 1), 0);
    assert_int_equal(last_of(f->s), 3);
    expect_reopened(f, 2, &hs);
    assert_int_equal(last_of(f->s), 3);

    /* an invalid batch is refused before any transaction is opened */
    struct raft_entry gap = mk(f, 9, 1, 8);
    assert_int_equal(agenda_storage_batch_begin(f->s, NULL, &gap, 1, &txn),
                     AGENDA_STORAGE_INVALID);
    assert_null(txn);
    assert_int_equal(agenda_storage_apply_begin(f->s, &txn), 0);
    agenda_storage_apply_abort(f->s, txn);
}

static void test_compaction_moves_first_index(void **state)
{
    struct fx *f = *state;
    f->s = open_at(f->dir, 0);
    assert_int_equal(append(f, NULL, 1, 5, 1, 4), 0);
    assert_int_equal(append(f, NULL, 6, 10, 2, 4), 0);

    /* not applied yet */
    assert_int_equal(agenda_storage_compact(f->s, 4), AGENDA_STORAGE_INVALID);
    sm_apply(f->s, "k", "v", 1, 8, 2);
    assert_int_equal(agenda_storage_compact(f->s, 10),
                     AGENDA_STORAGE_INVALID);
    assert_int_equal(agenda_storage_compact(f->s, 7), 0);
    assert_int_equal(first_of(f->s), 7);
    assert_int_equal(last_of(f->s), 10);

    raft_term t;
    assert_int_equal(term_of(f->s, 6, &t), RAFT_OK); /* snapshot term */
    assert_int_equal(t, 2);
    assert_int_equal(term_of(f->s, 5, &t), RAFT_ERR_COMPACTED);
    assert_int_equal(term_of(f->s, 1, &t), RAFT_ERR_COMPACTED);
    struct raft_entry_sink sk;
    assert_int_equal(read_entries(f, f->s, 6, 8, SIZE_MAX, &sk),
                     RAFT_ERR_COMPACTED);
    assert_int_equal(read_entries(f, f->s, 7, 11, SIZE_MAX, &sk), RAFT_OK);
    assert_int_equal(sk.n, 4);
    check_payload(&sk.ents[0], 7, 2, 4);

    /* below the first index: nothing to do */
    assert_int_equal(agenda_storage_compact(f->s, 3), 0);
    assert_int_equal(first_of(f->s), 7);

    reopen(f);
    struct raft_hard_state hs;
    struct raft_snapshot_meta snap;
    assert_int_equal(agenda_storage_raft_ops()->initial_state(f->s, &hs,
                                                              &snap), 0);
    assert_int_equal(snap.index, 6);
    assert_int_equal(snap.term, 2);
    assert_int_equal(first_of(f->s), 7);
    struct agenda_storage_stat st;
    assert_int_equal(agenda_storage_stat(f->s, &st), 0);
    assert_int_equal(st.log_entries, 4);
    assert_int_equal(st.first_index, 7);
    assert_int_equal(st.last_index, 10);

    /* compacting everything applied leaves an empty log */
    assert_int_equal(agenda_storage_compact(f->s, 9), 0);
    sm_apply(f->s, "k", "w", 1, 10, 2);
    assert_int_equal(agenda_storage_compact(f->s, 11), 0);
    assert_int_equal(first_of(f->s), 11);
    assert_int_equal(last_of(f->s), 10);
    assert_int_equal(term_of(f->s, 10, &t), RAFT_OK);
    assert_int_equal(t, 2);
    assert_int_equal(append(f, NULL, 11, 11, 3, 4), 0);
    reopen(f);
    assert_int_equal(first_of(f->s), 11);
    assert_int_equal(last_of(f->s), 11);
}

static void test_map_full_is_reported_and_harmless(void **state)
{
    struct fx *f = *state;
    f->s = open_at(f->dir, 1 * MIB);
    struct raft_hard_state hs = { .term = 1, .vote = 1, .commit = 0 };
    raft_index next = 1;
    int rc = 0;
    for (int round = 0; round < 10000; round++) {
        hs.commit = next - 1;
        rc = append(f, &hs, next, next + 15, 1, 250);
        if (rc != 0)
            break;
        next += 16;
    }
    assert_int_equal(rc, AGENDA_STORAGE_FULL);
    assert_true(next > 100); /* a meaningful amount fitted first */
    assert_string_not_equal(agenda_storage_last_error(f->s), "");
    assert_int_equal(last_of(f->s), next - 1);

    /* what fitted is intact and readable */
    struct raft_entry_sink sk;
    raft_index i = 1;
    while (i < next) {
        assert_int_equal(read_entries(f, f->s, i, next, 64 * 1024, &sk),
                         RAFT_OK);
        assert_true(sk.n > 0);
        for (size_t k = 0; k < sk.n; k++)
            check_payload(&sk.ents[k], i + k, 1, 250);
        i += sk.n;
    }
    /* the same batch is still refused; still consistent after reopen */
    assert_int_equal(append(f, &hs, next, next + 15, 1, 250),
                     AGENDA_STORAGE_FULL);
    assert_int_equal(last_of(f->s), next - 1);
    agenda_storage_close(f->s);
    f->s = open_at(f->dir, 1 * MIB);
    assert_int_equal(last_of(f->s), next - 1);
    struct raft_hard_state got;
    struct raft_snapshot_meta snap;
    agenda_storage_raft_ops()->initial_state(f->s, &got, &snap);
    assert_int_equal(got.commit, next - 17);
    /* a larger map lets writes resume */
    agenda_storage_close(f->s);
    f->s = open_at(f->dir, 4 * MIB);
    assert_int_equal(append(f, NULL, next, next + 15, 1, 250), 0);
}

static void raw_put(struct agenda_storage *s, raft_index i, const void *val,
                    size_t len)
{
    MDB_txn *txn;
    MDB_dbi dbi;
    uint64_t k = i;
    MDB_val key = { sizeof(k), &k };
    MDB_val v = { len, (void *)(uintptr_t)val };
    assert_int_equal(mdb_txn_begin(agenda_storage_env(s), NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "log", MDB_INTEGERKEY, &dbi), 0);
    assert_int_equal(mdb_put(txn, dbi, &key, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
}

static void test_corrupt_record_is_an_error(void **state)
{
    struct fx *f = *state;
    f->s = open_at(f->dir, 0);
    assert_int_equal(append(f, NULL, 1, 5, 1, 8), 0);

    raw_put(f->s, 2, "xyz", 3); /* shorter than a header */
    uint8_t badtype[12] = { 1, 0, 0, 0, 0, 0, 0, 0, 7, 'a', 'b', 'c' };
    raw_put(f->s, 3, badtype, sizeof(badtype));

    raft_term t;
    struct raft_entry_sink sk;
    assert_int_equal(term_of(f->s, 2, &t), RAFT_ERR_STORAGE);
    assert_non_null(strstr(agenda_storage_last_error(f->s), "entry 2"));
    assert_int_equal(term_of(f->s, 3, &t), RAFT_ERR_STORAGE);
    assert_int_equal(read_entries(f, f->s, 1, 6, SIZE_MAX, &sk),
                     RAFT_ERR_STORAGE);
    assert_int_equal(read_entries(f, f->s, 3, 6, SIZE_MAX, &sk),
                     RAFT_ERR_STORAGE);
    /* the sound parts stay readable */
    assert_int_equal(read_entries(f, f->s, 4, 6, SIZE_MAX, &sk), RAFT_OK);
    assert_int_equal(sk.n, 2);
    assert_int_equal(term_of(f->s, 1, &t), RAFT_OK);

    /* a malformed last record, or a gap, is refused at open */
    raw_put(f->s, 5, "q", 1);
    agenda_storage_close(f->s);
    f->s = NULL;
    char err[256] = "";
    struct agenda_storage *s = (struct agenda_storage *)1;
    assert_int_equal(agenda_storage_open(f->dir, 0, &s, err, sizeof(err)),
                     AGENDA_STORAGE_CORRUPT);
    assert_null(s);
    assert_non_null(strstr(err, f->dir));
}

static void test_open_refuses_garbage_and_truncated_files(void **state)
{
    struct fx *f = *state;
    char path[128], err[256];
    struct agenda_storage *s;

    /* random bytes */
    uint8_t junk[16384];
    random_bytes(junk, sizeof(junk), 42);
    path_in(path, sizeof(path), f->dir, "data.mdb");
    write_file(path, junk, sizeof(junk));
    assert_int_equal(agenda_storage_open(f->dir, 0, &s, err, sizeof(err)),
                     AGENDA_STORAGE_CORRUPT);
    assert_null(s);
    /* shorter than a page */
    write_file(path, junk, 100);
    assert_int_equal(agenda_storage_open(f->dir, 0, &s, err, sizeof(err)),
                     AGENDA_STORAGE_CORRUPT);

    /* a real environment cut in half */
    path_in(path, sizeof(path), f->dir2, "data.mdb");
    s = open_at(f->dir2, 0);
    uint8_t big[4000];
    random_bytes(big, sizeof(big), 7);
    for (int i = 0; i < 64; i++) {
        char key[16];
        snprintf(key, sizeof(key), "k%d", i);
        sm_apply(s, key, big, sizeof(big), (raft_index)i, 0);
    }
    agenda_storage_close(s);
    off_t full = file_size(path);
    assert_true(full > 64 * 4000);
    assert_int_equal(truncate(path, full / 2), 0);
    s = (struct agenda_storage *)1;
    assert_int_equal(agenda_storage_open(f->dir2, 0, &s, err, sizeof(err)),
                     AGENDA_STORAGE_CORRUPT);
    assert_null(s);
    assert_non_null(strstr(err, "truncated"));
    /* and left as it was */
    assert_int_equal(file_size(path), full / 2);
}

/* Put (or with del, delete) keys k<from>..k<to-1> of database name in
 * one apply batch committed at applied. */
static void bulk(struct agenda_storage *s, const char *name, int from, int to,
                 bool del, raft_index applied)
{
    static const char val[200] = {0};
    MDB_txn *txn;
    MDB_dbi dbi;
    assert_int_equal(agenda_storage_apply_begin(s, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, name, MDB_CREATE, &dbi), 0);
    for (int i = from; i < to; i++) {
        char key[32];
        MDB_val k = {(size_t)snprintf(key, sizeof(key), "k%08d", i), key};
        MDB_val v = {sizeof(val), (void *)(uintptr_t)val};
        assert_int_equal(del ? mdb_del(txn, dbi, &k, NULL)
                             : mdb_put(txn, dbi, &k, &v, 0),
                         0);
    }
    assert_int_equal(agenda_storage_apply_commit(s, txn, applied, 1), 0);
}

/* LMDB never writes the pages a transaction allocated at the end of the
 * file and freed again, while its meta page counts them: a file can end
 * before its last page and be sound.  Such a file opens (extended with
 * zeros).  Made here by cutting off pages that are free: a database that
 * grew the file, then dropped by a transaction that writes only pages
 * taken from the free list. */
static void test_open_mends_a_file_that_ends_in_free_pages(void **state)
{
    struct fx *f = *state;
    char path[128], out[16];
    MDB_txn *txn;
    MDB_dbi dbi;

    path_in(path, sizeof(path), f->dir, "data.mdb");
    f->s = open_at(f->dir, 0);
    sm_apply(f->s, "kept", "yes", 3, 1, 1);
    /* free pages for the drop below to take */
    bulk(f->s, "filler", 0, 5000, false, 2);
    bulk(f->s, "filler", 0, 2500, true, 3);
    sm_apply(f->s, "again", "x", 1, 4, 1);
    off_t before = file_size(path);
    bulk(f->s, "grown", 0, 3000, false, 5);
    off_t grown = file_size(path);
    assert_int_equal(agenda_storage_apply_begin(f->s, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "grown", 0, &dbi), 0);
    assert_int_equal(mdb_drop(txn, dbi, 1), 0);
    assert_int_equal(agenda_storage_apply_commit(f->s, txn, 6, 1), 0);
    /* the drop wrote nothing past what the file had: the pages after
     * `before` are all free now */
    assert_int_equal(file_size(path), grown);
    assert_true(grown > before);
    agenda_storage_close(f->s);
    f->s = NULL;
    assert_int_equal(truncate(path, before), 0);

    /* as if an open had stopped after extending it */
    char mark[160], text[32];
    path_in(mark, sizeof(mark), f->dir, "data.mdb.mending");
    snprintf(text, sizeof(text), "%lld\n", (long long)before);
    write_file(mark, text, strlen(text));
    assert_int_equal(truncate(path, grown), 0);

    f->s = open_at(f->dir, 0);
    assert_int_equal(access(mark, F_OK), -1);
    assert_int_equal(agenda_storage_mended_bytes(f->s),
                     (uint64_t)(grown - before));
    assert_int_equal(file_size(path), grown);
    assert_int_equal(sm_get(f->s, "kept", out, sizeof(out)), 0);
    assert_string_equal(out, "yes");
    bulk(f->s, "after", 0, 3000, false, 7);
    reopen(f);
    assert_int_equal(agenda_storage_mended_bytes(f->s), 0);
    assert_int_equal(sm_get(f->s, "again", out, sizeof(out)), 0);
}

/* A mend that an agent stopped in the middle of (the mark written, the
 * file extended, the check not done) is undone at the next open before
 * anything is read, then done again: a file cut short is still refused,
 * and left at the length it had. */
static void test_an_interrupted_mend_is_done_again(void **state)
{
    struct fx *f = *state;
    char path[128], mark[160], err[256];
    struct agenda_storage *s;

    path_in(path, sizeof(path), f->dir, "data.mdb");
    path_in(mark, sizeof(mark), f->dir, "data.mdb.mending");
    f->s = open_at(f->dir, 0);
    /* many small records: their leaves sit past any cut in the middle */
    bulk(f->s, "many", 0, 6000, false, 1);
    agenda_storage_close(f->s);
    f->s = NULL;
    off_t full = file_size(path);
    off_t cut = full / 2 / 4096 * 4096;
    assert_int_equal(truncate(path, cut), 0);
    /* what a stop right after extending leaves: long again, and a mark */
    char text[32];
    snprintf(text, sizeof(text), "%lld\n", (long long)cut);
    write_file(mark, text, strlen(text));
    assert_int_equal(truncate(path, full), 0);
    s = (struct agenda_storage *)1;
    assert_int_equal(agenda_storage_open(f->dir, 0, &s, err, sizeof(err)),
                     AGENDA_STORAGE_CORRUPT);
    assert_null(s);
    assert_non_null(strstr(err, "truncated"));
    assert_int_equal(file_size(path), cut);
    assert_int_equal(access(mark, F_OK), -1);
    /* a mark it cannot read: nothing is opened, nothing is changed */
    write_file(mark, "garbage", 7);
    assert_int_equal(agenda_storage_open(f->dir, 0, &s, err, sizeof(err)),
                     AGENDA_STORAGE_CORRUPT);
    assert_int_equal(file_size(path), cut);
    assert_non_null(strstr(err, "data.mdb.mending"));
}

static void test_unknown_format_version_is_refused(void **state)
{
    struct fx *f = *state;
    f->s = open_at(f->dir, 0);
    MDB_txn *txn;
    MDB_dbi dbi;
    uint8_t v2[4] = { 2, 0, 0, 0 };
    MDB_val k = { 7, "version" }, v = { 4, v2 };
    assert_int_equal(mdb_txn_begin(agenda_storage_env(f->s), NULL, 0, &txn),
                     0);
    assert_int_equal(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    agenda_storage_close(f->s);
    f->s = NULL;
    struct agenda_storage *s;
    char err[256];
    assert_int_equal(agenda_storage_open(f->dir, 0, &s, err, sizeof(err)),
                     AGENDA_STORAGE_VERSION);
}

/* Leader-side state for the snapshot tests: log 1..5, applied 5 (term 2),
 * sm_test = {k1: v1, big: 40 KiB}. */
static struct agenda_storage *make_leader(struct fx *f, const char *dir)
{
    struct agenda_storage *s = open_at(dir, 0);
    struct agenda_storage *keep = f->s;
    f->s = s;
    struct raft_hard_state hs = { .term = 2, .vote = 1, .commit = 5 };
    assert_int_equal(append(f, &hs, 1, 3, 1, 4), 0);
    assert_int_equal(append(f, &hs, 4, 5, 2, 4), 0);
    f->s = keep;
    static uint8_t big[40000];
    random_bytes(big, sizeof(big), 3);
    sm_apply(s, "big", big, sizeof(big), 4, 2);
    sm_apply(s, "k1", "v1", 2, 5, 2);
    return s;
}

static void test_snapshot_create_and_install(void **state)
{
    struct fx *f = *state;
    char snap_path[128], recv[128], tmp[140], buf[64];
    struct agenda_storage *leader = make_leader(f, f->dir2);
    path_in(snap_path, sizeof(snap_path), f->dir2, "snap.mdb");
    struct raft_snapshot_meta meta = { 0, 0 };
    assert_int_equal(agenda_storage_snapshot_create(leader, snap_path, &meta),
                     0);
    assert_int_equal(meta.index, 5);
    assert_int_equal(meta.term, 2);
    snprintf(tmp, sizeof(tmp), "%s.tmp", snap_path);
    assert_int_equal(access(tmp, F_OK), -1);

    /* the receiver has its own term, vote and a divergent log */
    f->s = open_at(f->dir, 0);
    struct raft_hard_state hs = { .term = 7, .vote = 3, .commit = 1 };
    assert_int_equal(append(f, &hs, 1, 2, 1, 9), 0);
    path_in(recv, sizeof(recv), f->dir, "recv.mdb");
    copy_file(snap_path, recv, -1);

    struct raft_snapshot_meta got = { 0, 0 };
    assert_int_equal(agenda_storage_snapshot_install(f->s, recv, &got), 0);
    assert_int_equal(got.index, 5);
    assert_int_equal(got.term, 2);
    assert_int_equal(access(recv, F_OK), -1); /* consumed */

    for (int round = 0; round < 2; round++) {
        raft_index ai;
        raft_term at;
        assert_int_equal(agenda_storage_applied(f->s, &ai, &at), 0);
        assert_int_equal(ai, 5);
        assert_int_equal(at, 2);
        assert_int_equal(first_of(f->s), 6);
        assert_int_equal(last_of(f->s), 5);
        struct agenda_storage_stat st;
        assert_int_equal(agenda_storage_stat(f->s, &st), 0);
        assert_int_equal(st.log_entries, 0);
        struct raft_hard_state h;
        struct raft_snapshot_meta sm;
        agenda_storage_raft_ops()->initial_state(f->s, &h, &sm);
        assert_int_equal(h.term, 7);
        assert_int_equal(h.vote, 3);
        assert_int_equal(h.commit, 5);
        assert_int_equal(sm.index, 5);
        assert_int_equal(sm.term, 2);
        raft_term t;
        assert_int_equal(term_of(f->s, 5, &t), RAFT_OK);
        assert_int_equal(t, 2);
        assert_int_equal(sm_get(f->s, "k1", buf, sizeof(buf)), 0);
        assert_string_equal(buf, "v1");
        reopen(f);
    }
    /* the log continues after the snapshot */
    assert_int_equal(append(f, NULL, 6, 6, 7, 3), 0);
    assert_int_equal(last_of(f->s), 6);

    /* a snapshot older than what we applied would lose entry 6 */
    sm_apply(f->s, "k6", "v6", 2, 6, 7);
    copy_file(snap_path, recv, -1);
    assert_int_equal(agenda_storage_snapshot_install(f->s, recv, &got),
                     AGENDA_STORAGE_INVALID);
    assert_int_equal(last_of(f->s), 6);
    assert_int_equal(sm_get(f->s, "k6", buf, sizeof(buf)), 0);
    agenda_storage_close(leader);
}

struct copy_job {
    struct agenda_storage *s;
    const char *path;
    struct raft_snapshot_meta meta;
    int rc;
};

static void *copy_thread(void *arg)
{
    struct copy_job *j = arg;
    j->rc = agenda_storage_snapshot_create(j->s, j->path, &j->meta);
    return NULL;
}

static void test_snapshot_create_runs_beside_writes(void **state)
{
    struct fx *f = *state;
    char snap_path[128];
    f->s = make_leader(f, f->dir);
    path_in(snap_path, sizeof(snap_path), f->dir2, "snap.mdb");
    struct copy_job j = { .s = f->s, .path = snap_path };
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, copy_thread, &j), 0);
    /* the owner keeps appending and applying meanwhile */
    for (raft_index i = 6; i < 40; i++) {
        assert_int_equal(append(f, NULL, i, i, 2, 32), 0);
        sm_apply(f->s, "k1", "v1", 2, i, 2);
    }
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(j.rc, 0);
    /* the copy is self-consistent: it says what it contains */
    assert_true(j.meta.index >= 5 && j.meta.index <= 39);
    assert_int_equal(j.meta.term, 2);

    struct agenda_storage *r = open_at(f->dir2, 0);
    char recv[128];
    path_in(recv, sizeof(recv), f->dir2, "recv.mdb");
    assert_int_equal(rename(snap_path, recv), 0);
    struct raft_snapshot_meta got;
    assert_int_equal(agenda_storage_snapshot_install(r, recv, &got), 0);
    assert_int_equal(got.index, j.meta.index);
    raft_index ai;
    assert_int_equal(agenda_storage_applied(r, &ai, NULL), 0);
    assert_int_equal(ai, j.meta.index);
    agenda_storage_close(r);
}

static void test_install_refuses_garbage(void **state)
{
    struct fx *f = *state;
    char snap_path[128], bad[128], buf[64];
    struct agenda_storage *leader = make_leader(f, f->dir2);
    path_in(snap_path, sizeof(snap_path), f->dir2, "snap.mdb");
    struct raft_snapshot_meta meta;
    assert_int_equal(agenda_storage_snapshot_create(leader, snap_path, &meta),
                     0);
    agenda_storage_close(leader);

    f->s = open_at(f->dir, 0);
    struct raft_hard_state hs = { .term = 4, .vote = 2, .commit = 1 };
    assert_int_equal(append(f, &hs, 1, 3, 1, 9), 0);
    sm_apply(f->s, "mine", "yes", 3, 1, 1);
    MDB_env *env = agenda_storage_env(f->s);
    path_in(bad, sizeof(bad), f->dir, "recv.mdb");

    off_t full = file_size(snap_path);
    assert_true(full > 3 * 8192);
    static uint8_t junk[65536];
    random_bytes(junk, sizeof(junk), 99);
    struct {
        const char *what;
        off_t keep; /* bytes of the real snapshot, or -1: junk */
        size_t junk;
        int want;
    } cases[] = {
        { "random bytes", -1, sizeof(junk), AGENDA_STORAGE_CORRUPT },
        { "tiny file", -1, 10, AGENDA_STORAGE_CORRUPT },
        { "empty file", -1, 0, AGENDA_STORAGE_CORRUPT },
        { "truncated copy", full / 2, 0, AGENDA_STORAGE_CORRUPT },
        { "meta pages only", 8192, 0, AGENDA_STORAGE_CORRUPT },
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        if (cases[c].keep >= 0)
            copy_file(snap_path, bad, cases[c].keep);
        else
            write_file(bad, junk, cases[c].junk);
        struct raft_snapshot_meta got = { 77, 77 };
        int rc = agenda_storage_snapshot_install(f->s, bad, &got);
        if (rc != cases[c].want)
            fail_msg("%s: got %d want %d", cases[c].what, rc, cases[c].want);
        assert_int_equal(got.index, 77);
        assert_ptr_equal(agenda_storage_env(f->s), env);
        assert_int_equal(last_of(f->s), 3);
    }
    /* an LMDB file of another format (no meta database) */
    char other[128];
    path_in(other, sizeof(other), f->dir2, "other.mdb");
    MDB_env *oe;
    MDB_txn *txn;
    MDB_dbi dbi;
    assert_int_equal(mdb_env_create(&oe), 0);
    assert_int_equal(mdb_env_open(oe, other, MDB_NOSUBDIR, 0600), 0);
    assert_int_equal(mdb_txn_begin(oe, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
    MDB_val k = { 1, "a" }, v = { 1, "b" };
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(oe);
    assert_int_equal(agenda_storage_snapshot_install(f->s, other, NULL),
                     AGENDA_STORAGE_CORRUPT);
    /* a missing file */
    path_in(other, sizeof(other), f->dir2, "nope.mdb");
    assert_int_equal(agenda_storage_snapshot_install(f->s, other, NULL),
                     AGENDA_STORAGE_INVALID);
    /* an open read txn makes installation wait */
    copy_file(snap_path, bad, -1);
    MDB_txn *rtxn;
    assert_int_equal(agenda_storage_read_begin(f->s, &rtxn), 0);
    assert_int_equal(agenda_storage_snapshot_install(f->s, bad, NULL),
                     AGENDA_STORAGE_BUSY);
    agenda_storage_read_end(f->s, rtxn);

    /* the live environment is untouched and still works */
    reopen(f);
    assert_int_equal(last_of(f->s), 3);
    assert_int_equal(sm_get(f->s, "mine", buf, sizeof(buf)), 0);
    assert_int_equal(sm_get(f->s, "k1", buf, sizeof(buf)), -1);
    struct raft_hard_state h;
    struct raft_snapshot_meta sm;
    agenda_storage_raft_ops()->initial_state(f->s, &h, &sm);
    assert_int_equal(h.term, 4);
    assert_int_equal(sm.index, 0);
    assert_int_equal(append(f, NULL, 4, 4, 1, 9), 0);
}

/* Open the environment in a child process; with hold, keep it open until
 * hold_fd reaches EOF (after writing one byte to ready_fd); without,
 * begin a read txn and die without releasing its reader slot. */
static pid_t lmdb_child(const char *dir, bool hold, int ready_fd,
                        int hold_fd, int hold_wr)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid != 0)
        return pid;
    if (hold_wr >= 0)
        close(hold_wr); /* else the holder would never see EOF */
    MDB_env *env;
    MDB_txn *txn;
    char c = 1;
    if (mdb_env_create(&env) != 0 || mdb_env_set_maxdbs(env, 32) != 0 ||
        mdb_env_open(env, dir, MDB_NOTLS, 0600) != 0)
        _exit(1);
    if (!hold) {
        if (mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) != 0)
            _exit(1);
        _exit(0);
    }
    if (write(ready_fd, &c, 1) != 1)
        _exit(1);
    while (read(hold_fd, &c, 1) > 0)
        ;
    mdb_env_close(env);
    _exit(0);
}

static void reap(pid_t pid)
{
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_stale_readers_are_cleared(void **state)
{
    struct fx *f = *state;
    f->s = open_at(f->dir, 0);
    agenda_storage_close(f->s);
    f->s = NULL;
    /* LMDB resets the reader table when the first process opens the
     * environment, so one process keeps it open while another dies
     * holding a reader slot. */
    int ready[2], hold[2];
    char c;
    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(hold), 0);
    pid_t holder = lmdb_child(f->dir, true, ready[1], hold[0], hold[1]);
    close(hold[0]);
    close(ready[1]);
    assert_int_equal(read(ready[0], &c, 1), 1);
    reap(lmdb_child(f->dir, false, -1, -1, hold[1]));

    f->s = open_at(f->dir, 0);
    int cleared = agenda_storage_stale_readers(f->s);
    close(hold[1]);
    close(ready[0]);
    reap(holder);
    assert_int_equal(cleared, 1);
    reopen(f);
    assert_int_equal(agenda_storage_stale_readers(f->s), 0);
}

/* Two agents must never share a replica's storage: the second open of a
 * directory, from this process or another, is refused while the first is
 * open, and allowed again once it is closed or its process is gone. */
static void test_one_process_per_directory(void **state)
{
    struct fx *f = *state;
    struct agenda_storage *other = NULL;
    char err[256] = "";
    f->s = open_at(f->dir, 0);
    assert_int_equal(agenda_storage_open(f->dir, 0, &other, err,
                                         sizeof(err)),
                     AGENDA_STORAGE_BUSY);
    assert_null(other);
    assert_non_null(strstr(err, "agent.lock"));
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct agenda_storage *c = NULL;
        int rc = agenda_storage_open(f->dir, 0, &c, NULL, 0);
        _exit(rc == AGENDA_STORAGE_BUSY ? 0 : 1);
    }
    reap(pid);
    agenda_storage_close(f->s);
    f->s = NULL;
    /* a process that dies holding it (no close) leaves it free */
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct agenda_storage *c = NULL;
        _exit(agenda_storage_open(f->dir, 0, &c, NULL, 0) ==
                      AGENDA_STORAGE_OK ? 0 : 1);
    }
    reap(pid);
    f->s = open_at(f->dir, 0);
}

static void test_sync_stats_count_commits(void **state)
{
    struct fx *f = *state;
    f->s = open_at(f->dir, 0);
    struct agenda_storage_sync_stats a, b;
    agenda_storage_sync_stats(f->s, &a);
    assert_int_equal(append(f, NULL, 1, 3, 1, 4), 0);
    sm_apply(f->s, "k", "v", 1, 1, 1);
    assert_int_equal(append(f, NULL, 4, 4, 1, 4), AGENDA_STORAGE_OK);
    assert_int_equal(append(f, NULL, 9, 9, 1, 4), AGENDA_STORAGE_INVALID);
    agenda_storage_sync_stats(f->s, &b);
    assert_int_equal(b.count - a.count, 3);
    assert_true(b.total_ns > a.total_ns);
    assert_true(b.max_ns > 0 && b.max_ns <= b.total_ns);
}

/* A batch needs its meta page synced only when it stores log entries or a
 * new term or vote; applying (and a higher commit index) commits lazily,
 * and what it wrote is there all the same. */
static void test_only_apply_batches_commit_lazily(void **state)
{
    struct fx *f = *state;
    f->s = open_at(f->dir, 0);
    struct raft_entry ents[2] = {mk(f, 1, 1, 8), mk(f, 2, 1, 8)};
    struct raft_hard_state hs = {.term = 1, .vote = 2, .commit = 0};
    struct agenda_storage_sync_stats st;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val k = {2, "k1"}, v = {2, "v1"};
    unsigned flags;

    /* entries and a vote: synced */
    assert_int_equal(agenda_storage_batch_begin(f->s, &hs, ents, 2, &txn), 0);
    assert_int_equal(agenda_storage_apply_commit(f->s, txn, 0, 0), 0);
    agenda_storage_sync_stats(f->s, &st);
    assert_int_equal(st.lazy, 0);

    /* only the commit index moves, and entries are applied: lazy */
    hs.commit = 2;
    assert_int_equal(agenda_storage_batch_begin(f->s, &hs, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "sm_test", MDB_CREATE, &dbi), 0);
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    assert_int_equal(agenda_storage_apply_commit(f->s, txn, 2, 1), 0);
    agenda_storage_sync_stats(f->s, &st);
    assert_int_equal(st.lazy, 1);
    /* the flag is only for that commit */
    assert_int_equal(mdb_env_get_flags(agenda_storage_env(f->s), &flags), 0);
    assert_int_equal(flags & MDB_NOMETASYNC, 0);

    /* applying alone: lazy */
    assert_int_equal(agenda_storage_batch_begin(f->s, NULL, NULL, 0, &txn), 0);
    assert_int_equal(agenda_storage_apply_commit(f->s, txn, 2, 1), 0);
    agenda_storage_sync_stats(f->s, &st);
    assert_int_equal(st.lazy, 2);
    /* right after it, a transaction that is not a batch: synced (nothing
     * of that batch carries over) */
    assert_int_equal(agenda_storage_apply_begin(f->s, &txn), 0);
    assert_int_equal(agenda_storage_apply_commit(f->s, txn, 2, 1), 0);
    agenda_storage_sync_stats(f->s, &st);
    assert_int_equal(st.lazy, 2);

    /* a new term, even without entries: synced */
    hs.term = 2;
    hs.vote = 0;
    assert_int_equal(agenda_storage_batch_begin(f->s, &hs, NULL, 0, &txn), 0);
    assert_int_equal(agenda_storage_apply_commit(f->s, txn, 2, 1), 0);
    /* a vote in that term: synced */
    hs.vote = 3;
    assert_int_equal(agenda_storage_batch_begin(f->s, &hs, NULL, 0, &txn), 0);
    assert_int_equal(agenda_storage_apply_commit(f->s, txn, 2, 1), 0);
    /* a transaction that is not a batch (opening the state machine) */
    assert_int_equal(agenda_storage_apply_begin(f->s, &txn), 0);
    assert_int_equal(agenda_storage_apply_commit(f->s, txn, 2, 1), 0);
    agenda_storage_sync_stats(f->s, &st);
    assert_int_equal(st.lazy, 2);

    /* everything is there after a reopen */
    expect_reopened(f, 2, &hs);
}

static void test_strerror_covers_every_code(void **state)
{
    (void)state;
    for (int e = 0; e > -AGENDA_STORAGE_ERR__COUNT; e--) {
        const char *m = agenda_storage_strerror(e);
        assert_non_null(m);
        assert_true(strlen(m) > 5);
        assert_string_not_equal(m, "unknown storage error");
        for (int o = 0; o > e; o--)
            assert_string_not_equal(m, agenda_storage_strerror(o));
    }
    assert_string_equal(agenda_storage_strerror(1), "unknown storage error");
    assert_string_equal(agenda_storage_strerror(-AGENDA_STORAGE_ERR__COUNT),
                        "unknown storage error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_append_and_read_back),
        T(test_conflicting_suffix_is_overwritten),
        T(test_hard_state_survives_reopen),
        T(test_invalid_batches_change_nothing),
        T(test_apply_commit_is_atomic),
        T(test_batch_persists_and_applies_atomically),
        T(test_compaction_moves_first_index),
        T(test_map_full_is_reported_and_harmless),
        T(test_corrupt_record_is_an_error),
        T(test_open_refuses_garbage_and_truncated_files),
        T(test_open_mends_a_file_that_ends_in_free_pages),
        T(test_an_interrupted_mend_is_done_again),
        T(test_unknown_format_version_is_refused),
        T(test_snapshot_create_and_install),
        T(test_snapshot_create_runs_beside_writes),
        T(test_install_refuses_garbage),
        T(test_stale_readers_are_cleared),
        T(test_one_process_per_directory),
        T(test_sync_stats_count_commits),
        T(test_only_apply_batches_commit_lazily),
        T(test_strerror_covers_every_code),
#undef T
    };
    return cmocka_run_group_tests_name("storage", tests, NULL, NULL);
}

/*
 * test_snapshot_vet.c — received snapshots read in a child process first
 * (raft_agent/snapshot_vet.h).
 *
 * A real snapshot is made with the storage API (a log, a state machine
 * database with small records and one that spans overflow pages), then
 * checked as it is, with pages damaged the way a crafted file would be,
 * missing, and with a child that hangs (stopped by the test) or whose
 * check is cancelled.  Every test drives its own event_base until the
 * answer comes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lmdb.h>

#include "snapshot_vet.h"
#include "storage.h"

#include "../env_dir.h"

#define PAGE 4096
#define TIMEOUT_MS 20000

struct fx {
    char dir[64];
    char snap[128];
    char bad[128];
    char out[128];     /* where every check writes its copy */
    struct raft_snapshot_meta meta; /* what the snapshot holds */
    struct event_base *base;
    bool answered;
    struct snapshot_vet_result res;
};

/* A log of 3 entries, applied, and 200 records in "sm", one of 40 KB. */
static void make_snapshot(struct fx *f)
{
    struct agenda_storage *s = NULL;
    struct raft_hard_state hs = {.term = 2, .vote = 1, .commit = 3};
    static uint8_t payload[3][100];
    static char big[40000];
    struct raft_entry e[3];
    char err[256] = "";
    MDB_txn *txn;
    MDB_dbi dbi;

    assert_int_equal(agenda_storage_open(f->dir, 0, &s, err, sizeof err), 0);
    for (int i = 0; i < 3; i++) {
        memset(payload[i], 'a' + i, sizeof payload[i]);
        e[i] = (struct raft_entry){.term = 2, .index = (raft_index)i + 1,
                                   .type = RAFT_ENTRY_NORMAL,
                                   .len = sizeof payload[i],
                                   .data = payload[i]};
    }
    assert_int_equal(agenda_storage_persist(s, &hs, e, 3), 0);
    memset(big, 'z', sizeof big);
    assert_int_equal(agenda_storage_apply_begin(s, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "sm", MDB_CREATE, &dbi), 0);
    for (int i = 0; i < 200; i++) {
        char key[16];
        MDB_val k = {(size_t)snprintf(key, sizeof key, "key%03d", i), key};
        MDB_val v = {i == 5 ? sizeof big : 50, big};
        assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    }
    assert_int_equal(agenda_storage_apply_commit(s, txn, 3, 2), 0);
    assert_int_equal(agenda_storage_snapshot_create(s, f->snap, &f->meta), 0);
    agenda_storage_close(s);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);

    assert_non_null(f);
    strcpy(f->dir, "/tmp/agenda_vet_XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->snap, sizeof f->snap, "%s/snap.mdb", f->dir);
    snprintf(f->bad, sizeof f->bad, "%s/bad.mdb", f->dir);
    snprintf(f->out, sizeof f->out, "%s/vetted.mdb", f->dir);
    f->base = event_base_new();
    assert_non_null(f->base);
    make_snapshot(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    event_base_free(f->base);
    test_dir_remove_all(f->dir);
    free(f);
    return 0;
}

static void answered(const struct snapshot_vet_result *r, void *arg)
{
    struct fx *f = arg;

    assert_false(f->answered); /* once */
    f->answered = true;
    f->res = *r;
}

/* Run the loop until the started check answers. */
static void wait_answer(struct fx *f)
{
    while (!f->answered)
        assert_true(event_base_loop(f->base, EVLOOP_ONCE) >= 0);
}

/* Check path and wait for the answer in f->res; false when the check
 * could not start (no assertion: see the damaged pages' test). */
static bool try_vet(struct fx *f, const char *path)
{
    struct snapshot_vet v;

    bool ok = true;

    snapshot_vet_init(&v);
    f->answered = false;
    if (snapshot_vet_start(&v, f->base, path, f->out, TIMEOUT_MS, answered,
                           f) != 0)
        return false;
    while (ok && !f->answered)
        ok = event_base_loop(f->base, EVLOOP_ONCE) >= 0;
    ok = ok && !snapshot_vet_running(&v);
    snapshot_vet_cancel(&v);
    snapshot_vet_reap(&v, true); /* the child that answered, too */
    return ok;
}

static void vet(struct fx *f, const char *path)
{
    assert_true(try_vet(f, path));
}

static size_t read_all(const char *path, uint8_t **out)
{
    struct stat sb;
    int fd = open(path, O_RDONLY);

    assert_true(fd >= 0);
    assert_int_equal(fstat(fd, &sb), 0);
    *out = malloc((size_t)sb.st_size);
    assert_non_null(*out);
    assert_int_equal(read(fd, *out, (size_t)sb.st_size), sb.st_size);
    close(fd);
    return (size_t)sb.st_size;
}

/* ---- tests ------------------------------------------------------------- */

static off_t size_of(const char *path)
{
    struct stat sb;

    return stat(path, &sb) == 0 ? sb.st_size : -1;
}

/* A sound snapshot passes, and its vetted copy holds the same state. */
static void test_a_sound_snapshot_passes(void **state)
{
    struct fx *f = *state;
    struct raft_snapshot_meta again = {0, 0};

    vet(f, f->snap);
    assert_int_equal(f->res.outcome, SNAPSHOT_VET_CHECKED);
    assert_int_equal(f->res.rc, 0);
    assert_int_equal(f->res.meta.index, f->meta.index);
    assert_int_equal(f->res.meta.term, f->meta.term);
    assert_int_equal(f->res.meta.index, 3);
    assert_int_equal(agenda_storage_snapshot_check(f->out, &again), 0);
    assert_int_equal(again.index, 3);
    assert_int_equal(again.term, 2);
}

/* Whether the file at path holds the bytes of marker. */
static bool file_holds(const char *path, const char *marker)
{
    uint8_t *data;
    size_t len = read_all(path, &data), n = strlen(marker);
    bool found = false;

    for (size_t i = 0; i + n <= len && !found; i++)
        found = memcmp(data + i, marker, n) == 0;
    free(data);
    return found;
}

/*
 * What gets installed holds the records and nothing else of the peer's
 * file: a record deleted before the copy was made still lies in a page
 * of that environment's file (LMDB only lists the page as free), and
 * not in the vetted file.
 */
static void test_only_the_records_are_kept(void **state)
{
    struct fx *f = *state;
    static char marker[] = "deleted-record-8c1f5a77";
    static char old[] = "old";
    struct agenda_storage *s = NULL;
    char env[160], err[256] = "";
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val k = {sizeof old - 1, old}, v = {sizeof marker - 1, marker};

    assert_int_equal(agenda_storage_open(f->dir, 0, &s, err, sizeof err), 0);
    assert_int_equal(agenda_storage_apply_begin(s, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "sm", 0, &dbi), 0);
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    assert_int_equal(agenda_storage_apply_commit(s, txn, 4, 2), 0);
    assert_int_equal(agenda_storage_apply_begin(s, &txn), 0);
    assert_int_equal(mdb_del(txn, dbi, &k, NULL), 0);
    assert_int_equal(agenda_storage_apply_commit(s, txn, 5, 2), 0);
    agenda_storage_close(s);

    snprintf(env, sizeof env, "%s/data.mdb", f->dir);
    assert_true(file_holds(env, marker)); /* the premise */
    vet(f, env);
    assert_int_equal(f->res.outcome, SNAPSHOT_VET_CHECKED);
    assert_int_equal(f->res.rc, 0);
    assert_int_equal(f->res.meta.index, 5);
    assert_false(file_holds(f->out, marker));
    assert_true(file_holds(f->out, "key199")); /* and the records are */
}

static void test_a_missing_file_is_the_checks_answer(void **state)
{
    struct fx *f = *state;

    vet(f, f->bad);
    assert_int_equal(f->res.outcome, SNAPSHOT_VET_CHECKED);
    assert_int_equal(f->res.rc, AGENDA_STORAGE_INVALID);
    assert_int_equal(size_of(f->out), -1);
}

/* LMDB's page layout (lmdb.h's MDB_page and MDB_node, little-endian):
 * what the damage below aims at. */
#define PAGE_FLAGS 10  /* u16 */
#define PAGE_LOWER 12  /* u16: end of the node offsets */
#define PAGE_PTRS 16   /* u16 offsets of the nodes */
#define P_BRANCH 0x01
#define P_LEAF 0x02
#define P_NOT_NODES (0x04 | 0x08 | 0x20) /* overflow, meta, LEAF2 */
#define MAX_PAGES 64   /* the test snapshot has about 20 */
#define NODE_FLAGS 4   /* u16 */
#define F_SUBDATA 0x02 /* a database's record: LMDB reads its fixed size */

static unsigned u16_at(const uint8_t *p)
{
    return (unsigned)p[0] | (unsigned)p[1] << 8;
}

/* Damage page p of a snapshot in copy; false: this page is left out. */
typedef bool (*damage_fn)(uint8_t *copy, size_t p);

/*
 * Vet the snapshot with each page damaged in turn: res[p] gets the answer
 * for page p (pages 2.. ; meta pages 0 and 1 are left alone), tried[p]
 * whether it was damaged at all.  The children's fault reports (a
 * sanitizer's) are kept off the test's output.
 */
static void vet_each_page(struct fx *f, damage_fn damage,
                          struct snapshot_vet_result *res, bool *tried,
                          size_t *pages)
{
    uint8_t *orig, *copy;
    size_t len = read_all(f->snap, &orig), broken = 0;
    int quiet = open("/dev/null", O_WRONLY), saved = dup(STDERR_FILENO);

    *pages = len / PAGE;
    assert_true(len % PAGE == 0 && *pages > 4 && *pages <= MAX_PAGES);
    assert_true(quiet >= 0 && saved >= 0);
    copy = malloc(len);
    assert_non_null(copy);
    /* no assertion until stderr is back: cmocka reports failures there */
    dup2(quiet, STDERR_FILENO);
    for (size_t p = 2; p < *pages && broken == 0; p++) {
        int fd;

        memcpy(copy, orig, len);
        tried[p] = damage(copy, p);
        if (!tried[p])
            continue;
        fd = open(f->bad, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0 || write(fd, copy, len) != (ssize_t)len
            || !try_vet(f, f->bad))
            broken = p;
        if (fd >= 0)
            close(fd);
        res[p] = f->res;
    }
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(quiet);
    assert_int_equal(broken, 0);
    free(copy);
    free(orig);
}

/* The first record of a leaf page (but a database's own record, whose
 * size LMDB never reads) claims a value of 0x7fffffff bytes. */
static bool oversized_value(uint8_t *copy, size_t p)
{
    uint8_t *pg = copy + p * PAGE;
    unsigned flags = u16_at(pg + PAGE_FLAGS), node;

    if (!(flags & P_LEAF) || (flags & P_NOT_NODES)
        || u16_at(pg + PAGE_LOWER) <= PAGE_PTRS)
        return false;
    node = u16_at(pg + PAGE_PTRS);
    if (node < PAGE_PTRS || node + 8 > PAGE
        || (u16_at(pg + node + NODE_FLAGS) & F_SUBDATA))
        return false;
    memcpy(pg + node, "\xff\xff\xff\x7f", 4); /* mn_lo, mn_hi */
    return true;
}

/* Bytes flipped across the whole page. */
static bool flipped_bytes(uint8_t *copy, size_t p)
{
    for (size_t i = 16; i < PAGE; i += 7)
        copy[p * PAGE + i] ^= 0x5a;
    return true;
}

/* Each page damaged in turn by damage (vet_each_page()), and every one
 * damaged answered with outcome and value (the rc when CHECKED, the
 * signal when CRASHED); how many pages were damaged. */
static unsigned expect_each(struct fx *f, damage_fn damage,
                            enum snapshot_vet_outcome outcome, int value)
{
    struct snapshot_vet_result res[MAX_PAGES];
    bool tried[MAX_PAGES] = {false};
    size_t pages;
    unsigned n = 0;

    vet_each_page(f, damage, res, tried, &pages);
    for (size_t p = 2; p < pages; p++) {
        if (!tried[p])
            continue;
        n++;
        assert_int_equal(res[p].outcome, outcome);
        assert_int_equal(outcome == SNAPSHOT_VET_CRASHED ? res[p].signal
                                                          : res[p].rc,
                         value);
    }
    return n;
}

static bool crash_signal(const struct snapshot_vet_result *r)
{
    /* 0: under AddressSanitizer a fault is a report and exit status 1 */
    return r->signal == SIGSEGV || r->signal == SIGBUS
           || r->signal == SIGABRT || r->signal == 0;
}

/*
 * A leaf node states its value's size, and LMDB hands out a value of that
 * size without comparing it with the page.  Each leaf page's first
 * record is made to claim 2 GB: reading it would run off the map, and
 * the walk refuses it (every key and value must lie inside the file)
 * instead of reading it — never a crash, never accepted.
 */
static void test_a_value_past_the_file_is_refused(void **state)
{
    /* the log's, the meta records' and those of "sm" (4) */
    assert_true(expect_each(*state, oversized_value, SNAPSHOT_VET_CHECKED,
                            AGENDA_STORAGE_CORRUPT) >= 3);
}

/* A branch page that says it has no keys: LMDB asserts that a branch
 * has some, and aborts (Debian's liblmdb keeps its assertions). */
static bool empty_branch(uint8_t *copy, size_t p)
{
    uint8_t *pg = copy + p * PAGE;

    if (!(u16_at(pg + PAGE_FLAGS) & P_BRANCH))
        return false;
    pg[PAGE_LOWER] = PAGE_PTRS;
    pg[PAGE_LOWER + 1] = 0;
    return true;
}

/*
 * What no check of ours can catch before LMDB reads a page, it reads in
 * the child: a branch page without keys makes LMDB abort there (a
 * receiver reading the file itself would have died), and this process
 * lives on.
 */
static void test_a_page_lmdb_aborts_on_crashes_only_the_child(void **state)
{
    /* the root of "sm" at least */
    assert_true(expect_each(*state, empty_branch, SNAPSHOT_VET_CRASHED,
                            SIGABRT) >= 1);
}

/*
 * Every data page damaged in turn (bytes flipped across it): the answers
 * are refusals, crashes of the child (as above), or, when only record
 * contents changed (the overflow pages of the big value), acceptance —
 * and this process survives every one.
 */
static void test_damaged_pages_are_answered(void **state)
{
    struct fx *f = *state;
    struct snapshot_vet_result res[MAX_PAGES];
    bool tried[MAX_PAGES] = {false};
    unsigned crashed = 0, refused = 0, accepted = 0;
    size_t pages;

    vet_each_page(f, flipped_bytes, res, tried, &pages);
    for (size_t p = 2; p < pages; p++) {
        if (res[p].outcome == SNAPSHOT_VET_CRASHED) {
            assert_true(crash_signal(&res[p]));
            crashed++;
        } else {
            assert_int_equal(res[p].outcome, SNAPSHOT_VET_CHECKED);
            if (res[p].rc == 0)
                accepted++;
            else
                refused++;
        }
    }
    print_message("%zu pages: %u crashed the child, %u refused, %u "
                  "accepted\n", pages - 2, crashed, refused, accepted);
    assert_int_equal(crashed + refused + accepted, pages - 2);
    assert_true(refused > 0 && accepted > 0);
}

/* A vet that never ends (in the child). */
static _Noreturn int hang(const char *in, const char *out,
                          struct raft_snapshot_meta *meta)
{
    (void)in;
    (void)out;
    (void)meta;
    for (;;)
        pause();
}

/* Whether pid is gone: not a child of ours any more (reaped). */
static bool reaped(pid_t pid)
{
    return waitpid(pid, NULL, WNOHANG) == -1 && errno == ECHILD;
}

/* v started on a child that never answers, with limit_ms. */
static void start_hanging(struct fx *f, struct snapshot_vet *v,
                          uint64_t limit_ms)
{
    snapshot_vet_init(v);
    v->work = hang;
    f->answered = false;
    assert_int_equal(snapshot_vet_start(v, f->base, f->snap, f->out,
                                        limit_ms, answered, f),
                     0);
}

/* A child that never answers is killed at the limit, and reaped. */
static void test_a_hanging_check_is_killed(void **state)
{
    struct fx *f = *state;
    struct snapshot_vet v;
    pid_t pid;

    alarm(30); /* a time limit that never fires fails, not hangs */
    start_hanging(f, &v, 300);
    pid = v.pid;
    wait_answer(f);
    alarm(0);
    assert_int_equal(f->res.outcome, SNAPSHOT_VET_TIMEOUT);
    assert_false(snapshot_vet_running(&v));
    snapshot_vet_reap(&v, true);
    assert_true(reaped(pid));
}

/* A cancelled check never answers, and its child is gone. */
static void test_a_cancelled_check_is_reaped(void **state)
{
    struct fx *f = *state;
    struct snapshot_vet v;
    pid_t pid;

    start_hanging(f, &v, TIMEOUT_MS);
    assert_int_equal(snapshot_vet_start(&v, f->base, f->snap, f->out,
                                        TIMEOUT_MS, answered, f),
                     -1);
    assert_int_equal(errno, EBUSY);
    pid = v.pid;
    snapshot_vet_cancel(&v);
    assert_false(snapshot_vet_running(&v));
    snapshot_vet_reap(&v, true);
    assert_true(reaped(pid));
    /* nothing is left registered on the loop */
    assert_int_equal(event_base_loop(f->base, EVLOOP_NONBLOCK), 1);
    assert_false(f->answered);
    snapshot_vet_cancel(&v); /* idle: nothing */
}

/* Checks one after the other fork at least gap_ms apart: the second
 * waits for its turn (and still answers). */
static void test_checks_fork_at_most_once_per_gap(void **state)
{
    struct fx *f = *state;
    struct snapshot_vet v;
    uint64_t first;

    snapshot_vet_init(&v);
    v.gap_ms = 400;
    f->answered = false;
    assert_int_equal(snapshot_vet_start(&v, f->base, f->snap, f->out,
                                        TIMEOUT_MS, answered, f),
                     0);
    first = v.forked_ms;
    wait_answer(f);
    f->answered = false;
    assert_int_equal(snapshot_vet_start(&v, f->base, f->snap, f->out,
                                        TIMEOUT_MS, answered, f),
                     0);
    assert_true(snapshot_vet_running(&v));
    assert_int_equal(v.pid, 0); /* waiting for its turn */
    wait_answer(f);
    assert_int_equal(f->res.outcome, SNAPSHOT_VET_CHECKED);
    assert_int_equal(f->res.rc, 0);
    assert_true(v.forked_ms - first >= 400);
    snapshot_vet_reap(&v, true);
}

/* A snapshot of more records than one rebuild transaction takes (64 MB):
 * every record is in the vetted file. */
static void test_a_large_snapshot_is_rebuilt_whole(void **state)
{
    struct fx *f = *state;
    struct agenda_storage *s = NULL;
    char err[256] = "", env[160];
    static char big[60000];
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_env *out;
    MDB_stat st;
    const unsigned n = 1200; /* 72 MB */

    assert_int_equal(agenda_storage_open(f->dir, (size_t)512 << 20, &s, err,
                                         sizeof err),
                     0);
    for (unsigned i = 0; i < n; i += 100) {
        assert_int_equal(agenda_storage_apply_begin(s, &txn), 0);
        assert_int_equal(mdb_dbi_open(txn, "bulk", MDB_CREATE, &dbi), 0);
        for (unsigned j = i; j < i + 100; j++) {
            char key[16];
            MDB_val k = {(size_t)snprintf(key, sizeof key, "b%05u", j), key};
            MDB_val v = {sizeof big, big};
            memset(big, (int)('a' + j % 26), sizeof big);
            assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
        }
        assert_int_equal(agenda_storage_apply_commit(s, txn, 4 + i / 100, 2),
                         0);
    }
    agenda_storage_close(s);
    snprintf(env, sizeof env, "%s/data.mdb", f->dir);
    vet(f, env);
    assert_int_equal(f->res.outcome, SNAPSHOT_VET_CHECKED);
    assert_int_equal(f->res.rc, 0);
    assert_int_equal(f->res.meta.index, 4 + (n - 1) / 100);
    assert_int_equal(mdb_env_create(&out), 0);
    assert_int_equal(mdb_env_set_maxdbs(out, 8), 0);
    assert_int_equal(mdb_env_open(out, f->out,
                                  MDB_NOSUBDIR | MDB_RDONLY | MDB_NOLOCK,
                                  0600),
                     0);
    assert_int_equal(mdb_txn_begin(out, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "bulk", 0, &dbi), 0);
    assert_int_equal(mdb_stat(txn, dbi, &st), 0);
    assert_int_equal(st.ms_entries, n);
    {
        MDB_val k = {6, (void *)(uintptr_t)"b01199"}, v;
        assert_int_equal(mdb_get(txn, dbi, &k, &v), 0);
        assert_int_equal(v.mv_size, sizeof big);
        assert_int_equal(((const char *)v.mv_data)[sizeof big - 1],
                         'a' + 1199 % 26);
    }
    mdb_txn_abort(txn);
    mdb_env_close(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(test_a_sound_snapshot_passes),
        T(test_only_the_records_are_kept),
        T(test_a_missing_file_is_the_checks_answer),
        T(test_a_value_past_the_file_is_refused),
        T(test_a_page_lmdb_aborts_on_crashes_only_the_child),
        T(test_damaged_pages_are_answered),
        T(test_a_hanging_check_is_killed),
        T(test_a_cancelled_check_is_reaped),
        T(test_checks_fork_at_most_once_per_gap),
        T(test_a_large_snapshot_is_rebuilt_whole),
#undef T
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}

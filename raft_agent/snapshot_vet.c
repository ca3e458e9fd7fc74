/*
 * snapshot_vet.c — a received snapshot checked in a child process (see
 * snapshot_vet.h).
 */
#include "snapshot_vet.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "storage.h"

/* The time limit: a floor, and 4 MB/s of the file, slow enough for the
 * child's reads of it, the rebuild's writes and their sync on a slow
 * disk; it only ends a child that hangs. */
#define VET_LIMIT_MIN_MS 30000
#define VET_LIMIT_BYTES_PER_MS 4000
/* Descriptors closed one by one when close_range() is missing (kernels
 * before 5.9): as many as a process of ours could have. */
#define VET_FD_SCAN_MAX 65536

/* What the child writes, in one write() well under PIPE_BUF. */
struct vet_answer {
    int32_t rc;
    uint64_t index, term;
};

uint64_t snapshot_vet_limit_ms(uint64_t size)
{
    return VET_LIMIT_MIN_MS + size / VET_LIMIT_BYTES_PER_MS;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Every descriptor from 3 up but keep (which is 3 or more: 0..2 are
 * taken whenever the agent runs, so a pipe never gets them). */
static void close_others(int keep)
{
    bool done = (keep == 3 || close_range(3, (unsigned)keep - 1, 0) == 0) &&
                close_range((unsigned)keep + 1, ~0u, 0) == 0;
    if (done)
        return;
    long max = sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > VET_FD_SCAN_MAX)
        max = VET_FD_SCAN_MAX;
    for (int fd = 3; fd < (int)max; fd++)
        if (fd != keep)
            close(fd);
}

/* The child: nothing of the parent's is touched but memory it reads (no
 * event loop, no socket, no LMDB environment of the parent's; every
 * other descriptor is closed first so that none outlives the parent
 * because of it), and it ends with _exit(), so no handler runs twice. */
static void child_main(const struct snapshot_vet *v, pid_t parent, int out)
{
    static const int ends[] = {SIGTERM, SIGINT, SIGSEGV, SIGBUS, SIGABRT,
                               SIGFPE, SIGILL, SIGXFSZ};
    const struct rlimit no_core = {0, 0};
    struct raft_snapshot_meta meta = {0, 0};
    struct vet_answer a;
    struct stat sb;

    /* An agent that dies (kill -9, a crash) takes its check with it: a
     * restarted one would start another on the same files. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
        _exit(1);
    /* Whatever handlers the parent has (libevent's for its stop signals,
     * which would write to descriptors closed here; a sanitizer's or a
     * test framework's for faults, which would report or carry on), a
     * signal ends this process, and without a core file: not even for a
     * core_pattern pipe (a peer could make us run it at will). */
    for (size_t i = 0; i < sizeof ends / sizeof ends[0]; i++)
        signal(ends[i], SIG_DFL);
    (void)setrlimit(RLIMIT_CORE, &no_core);
    (void)prctl(PR_SET_DUMPABLE, 0);
    /* The rebuilt file holds the input's records: it cannot honestly
     * outgrow twice the input (SIGXFSZ ends it). */
    if (stat(v->in, &sb) == 0) {
        rlim_t most = (rlim_t)sb.st_size * 2 + ((rlim_t)64 << 20);
        const struct rlimit fsize = {most, most};
        (void)setrlimit(RLIMIT_FSIZE, &fsize);
    }
    if (out >= 3)
        close_others(out);
    memset(&a, 0, sizeof a);
    a.rc = v->work(v->in, v->out, &meta);
    a.index = meta.index;
    a.term = meta.term;
    _exit(write(out, &a, sizeof a) == (ssize_t)sizeof a ? 0 : 1);
}

/* Reap pid now if it has exited (after killing it, with kill_first),
 * else later (snapshot_vet_reap).  A child that answered is left to exit
 * by itself: under valgrind, its report is written on the way out. */
static void reap_child(struct snapshot_vet *v, pid_t pid, bool kill_first)
{
    pid_t r;
    if (kill_first)
        kill(pid, SIGKILL);
    while ((r = waitpid(pid, NULL, WNOHANG)) < 0 && errno == EINTR)
        ;
    if (r != 0)
        return; /* reaped (or not ours any more) */
    for (int i = 0; i < SNAPSHOT_VET_KILLED_MAX; i++)
        if (v->killed[i] == 0) {
            v->killed[i] = pid;
            return;
        }
    /* every slot taken: killed, so the wait is short */
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
}

/* With wait, a child still there gets this long to exit by itself. */
#define VET_REAP_GRACE_MS 1000

void snapshot_vet_reap(struct snapshot_vet *v, bool wait)
{
    uint64_t until = mono_ms() + VET_REAP_GRACE_MS;
    for (int i = 0; i < SNAPSHOT_VET_KILLED_MAX; i++) {
        pid_t r;
        if (v->killed[i] == 0)
            continue;
        for (;;) {
            while ((r = waitpid(v->killed[i], NULL, WNOHANG)) < 0 &&
                   errno == EINTR)
                ;
            if (r != 0 || !wait)
                break;
            if (mono_ms() >= until)
                kill(v->killed[i], SIGKILL); /* stopped, or stuck */
            usleep(10000);
        }
        if (r != 0)
            v->killed[i] = 0;
    }
}

/* Leave v idle (the child gone or in v->killed). */
static void idle(struct snapshot_vet *v)
{
    if (v->ev != NULL)
        event_free(v->ev);
    if (v->turn != NULL)
        event_free(v->turn);
    if (v->fd >= 0)
        close(v->fd);
    v->ev = NULL;
    v->turn = NULL;
    v->fd = -1;
    v->pid = 0;
    v->cb = NULL;
    v->arg = NULL;
}

/* The end of a check: v idle, then cb told. */
static void answer(struct snapshot_vet *v, const struct snapshot_vet_result *r)
{
    snapshot_vet_cb cb = v->cb;
    void *cb_arg = v->arg;
    idle(v);
    cb(r, cb_arg);
}

static void on_child(evutil_socket_t fd, short what, void *arg)
{
    struct snapshot_vet *v = arg;
    struct snapshot_vet_result r;
    struct vet_answer a;
    pid_t pid = v->pid;
    ssize_t got = 0;
    int status = 0;

    memset(&r, 0, sizeof r);
    if (what & EV_TIMEOUT) {
        reap_child(v, pid, true);
        r.outcome = SNAPSHOT_VET_TIMEOUT;
    } else {
        do
            got = read(fd, &a, sizeof a);
        while (got < 0 && errno == EINTR);
        if (got == (ssize_t)sizeof a) {
            /* answered: it is exiting, and its status adds nothing */
            reap_child(v, pid, false);
            r.rc = a.rc;
            r.meta.index = a.index;
            r.meta.term = a.term;
        } else {
            /* no answer: the pipe closed because it died (or, if reading
             * failed, it is ended here), so the wait is short */
            if (got != 0)
                kill(pid, SIGKILL);
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
            r.outcome = SNAPSHOT_VET_CRASHED;
            r.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
        }
    }
    answer(v, &r);
}

/* Fork the child of the check v holds; 0 or -1 with errno. */
static int fork_check(struct snapshot_vet *v, struct event_base *base)
{
    int p[2], e;
    pid_t pid, self = getpid();
    struct timeval tv = {(time_t)(v->timeout_ms / 1000),
                         (suseconds_t)(v->timeout_ms % 1000) * 1000};

    snapshot_vet_reap(v, false);
    if (pipe2(p, O_CLOEXEC) != 0)
        return -1;
    v->ev = event_new(base, p[0], EV_READ, on_child, v);
    if (v->ev == NULL) {
        close(p[0]);
        close(p[1]);
        errno = ENOMEM;
        return -1;
    }
    v->forked_ms = mono_ms();
    pid = fork();
    if (pid == 0)
        child_main(v, self, p[1]);
    e = errno;
    close(p[1]);
    if (pid < 0 || event_add(v->ev, &tv) != 0) {
        if (pid > 0) {
            e = ENOMEM;
            reap_child(v, pid, true);
        }
        event_free(v->ev);
        v->ev = NULL;
        close(p[0]);
        errno = e;
        return -1;
    }
    v->pid = pid;
    v->fd = p[0];
    return 0;
}

/* A check's turn to fork has come. */
static void on_turn(evutil_socket_t fd, short what, void *arg)
{
    struct snapshot_vet *v = arg;
    struct event_base *base = event_get_base(v->turn);
    (void)fd;
    (void)what;
    event_free(v->turn);
    v->turn = NULL;
    if (fork_check(v, base) != 0) {
        struct snapshot_vet_result r = {.outcome = SNAPSHOT_VET_CRASHED};
        answer(v, &r);
    }
}

void snapshot_vet_init(struct snapshot_vet *v)
{
    memset(v, 0, sizeof *v);
    v->fd = -1;
    v->work = agenda_storage_snapshot_vet;
    v->gap_ms = SNAPSHOT_VET_GAP_MS;
}

bool snapshot_vet_running(const struct snapshot_vet *v)
{
    return v->pid > 0 || v->turn != NULL;
}

int snapshot_vet_start(struct snapshot_vet *v, struct event_base *base,
                       const char *in, const char *out, uint64_t timeout_ms,
                       snapshot_vet_cb cb, void *arg)
{
    if (snapshot_vet_running(v)) {
        errno = EBUSY;
        return -1;
    }
    if (strlen(in) >= sizeof v->in || strlen(out) >= sizeof v->out) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(v->in, in);
    strcpy(v->out, out);
    v->timeout_ms = timeout_ms;
    v->cb = cb;
    v->arg = arg;
    uint64_t since = mono_ms() - v->forked_ms;
    if (v->forked_ms == 0 || since >= v->gap_ms) {
        if (fork_check(v, base) == 0)
            return 0;
    } else {
        uint64_t wait = v->gap_ms - since;
        struct timeval tv = {(time_t)(wait / 1000),
                             (suseconds_t)(wait % 1000) * 1000};
        v->turn = evtimer_new(base, on_turn, v);
        if (v->turn != NULL && evtimer_add(v->turn, &tv) == 0)
            return 0;
        errno = ENOMEM;
    }
    int e = errno;
    idle(v);
    errno = e;
    return -1;
}

void snapshot_vet_cancel(struct snapshot_vet *v)
{
    if (!snapshot_vet_running(v))
        return;
    if (v->pid > 0)
        reap_child(v, v->pid, true);
    idle(v);
}

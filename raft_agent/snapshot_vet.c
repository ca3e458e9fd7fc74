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
#include <unistd.h>

#include "storage.h"

#define VET_LIMIT_MIN_MS 30000
#define VET_LIMIT_BYTES_PER_MS 10000 /* 10 MB/s */
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

/* Every descriptor but 0..2 and keep. */
static void close_others(int keep)
{
    bool done = (keep <= 3 || close_range(3, (unsigned)keep - 1, 0) == 0) &&
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
static void child_main(snapshot_vet_work work, pid_t parent, const char *in,
                       const char *out_path, int out)
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
     * signal ends this process, and without a core file. */
    for (size_t i = 0; i < sizeof ends / sizeof ends[0]; i++)
        signal(ends[i], SIG_DFL);
    (void)setrlimit(RLIMIT_CORE, &no_core);
    /* The rebuilt file holds the input's records: it cannot honestly
     * outgrow twice the input (SIGXFSZ ends it). */
    if (stat(in, &sb) == 0) {
        rlim_t most = (rlim_t)sb.st_size * 2 + ((rlim_t)64 << 20);
        const struct rlimit fsize = {most, most};
        (void)setrlimit(RLIMIT_FSIZE, &fsize);
    }
    close_others(out);
    memset(&a, 0, sizeof a);
    a.rc = work(in, out_path, &meta);
    a.index = meta.index;
    a.term = meta.term;
    _exit(write(out, &a, sizeof a) == (ssize_t)sizeof a ? 0 : 1);
}

/* Reap pid now if it has exited, else later (snapshot_vet_reap). */
static void reap_or_keep(struct snapshot_vet *v, pid_t pid)
{
    pid_t r;
    while ((r = waitpid(pid, NULL, WNOHANG)) < 0 && errno == EINTR)
        ;
    if (r != 0)
        return; /* reaped (or not ours any more) */
    for (int i = 0; i < SNAPSHOT_VET_KILLED_MAX; i++)
        if (v->killed[i] == 0) {
            v->killed[i] = pid;
            return;
        }
    /* every slot taken: this one is killed, so the wait is short */
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
}

void snapshot_vet_reap(struct snapshot_vet *v, bool wait)
{
    for (int i = 0; i < SNAPSHOT_VET_KILLED_MAX; i++) {
        pid_t r;
        if (v->killed[i] == 0)
            continue;
        if (wait)
            kill(v->killed[i], SIGKILL); /* even one that answered */
        while ((r = waitpid(v->killed[i], NULL, wait ? 0 : WNOHANG)) < 0 &&
               errno == EINTR)
            ;
        if (r != 0)
            v->killed[i] = 0;
    }
}

/* Leave v idle (the child is gone or in v->killed). */
static void idle(struct snapshot_vet *v)
{
    event_free(v->ev);
    close(v->fd);
    v->ev = NULL;
    v->fd = -1;
    v->pid = 0;
    v->cb = NULL;
    v->arg = NULL;
}

static void on_child(evutil_socket_t fd, short what, void *arg)
{
    struct snapshot_vet *v = arg;
    struct snapshot_vet_result r;
    struct vet_answer a;
    snapshot_vet_cb cb = v->cb;
    void *cb_arg = v->arg;
    pid_t pid = v->pid;
    ssize_t got = 0;
    int status = 0;

    memset(&r, 0, sizeof r);
    if (what & EV_TIMEOUT) {
        kill(pid, SIGKILL);
        reap_or_keep(v, pid);
        r.outcome = SNAPSHOT_VET_TIMEOUT;
    } else {
        do
            got = read(fd, &a, sizeof a);
        while (got < 0 && errno == EINTR);
        if (got == (ssize_t)sizeof a) {
            /* answered: it is exiting, and its status adds nothing */
            reap_or_keep(v, pid);
            r.rc = a.rc;
            r.meta.index = a.index;
            r.meta.term = a.term;
        } else {
            /* the pipe closed unanswered: it has died, or is dying */
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
            r.outcome = SNAPSHOT_VET_CRASHED;
            r.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
        }
    }
    idle(v);
    cb(&r, cb_arg);
}

void snapshot_vet_init(struct snapshot_vet *v)
{
    memset(v, 0, sizeof *v);
    v->fd = -1;
    v->work = agenda_storage_snapshot_vet;
}

bool snapshot_vet_running(const struct snapshot_vet *v)
{
    return v->pid > 0;
}

int snapshot_vet_start(struct snapshot_vet *v, struct event_base *base,
                       const char *in, const char *out, uint64_t timeout_ms,
                       snapshot_vet_cb cb, void *arg)
{
    int p[2], e;
    pid_t pid, self = getpid();
    struct timeval tv = {(time_t)(timeout_ms / 1000),
                         (suseconds_t)(timeout_ms % 1000) * 1000};

    if (snapshot_vet_running(v)) {
        errno = EBUSY;
        return -1;
    }
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
    pid = fork();
    if (pid == 0)
        child_main(v->work, self, in, out, p[1]);
    e = errno;
    close(p[1]);
    if (pid < 0 || event_add(v->ev, &tv) != 0) {
        if (pid > 0) {
            e = ENOMEM;
            kill(pid, SIGKILL);
            reap_or_keep(v, pid);
        }
        event_free(v->ev);
        v->ev = NULL;
        close(p[0]);
        errno = e;
        return -1;
    }
    v->pid = pid;
    v->fd = p[0];
    v->cb = cb;
    v->arg = arg;
    return 0;
}

void snapshot_vet_cancel(struct snapshot_vet *v)
{
    if (!snapshot_vet_running(v))
        return;
    kill(v->pid, SIGKILL);
    reap_or_keep(v, v->pid);
    idle(v);
}

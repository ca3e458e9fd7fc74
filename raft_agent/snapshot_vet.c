/*
 * snapshot_vet.c — a received snapshot checked in a child process (see
 * snapshot_vet.h).
 */
#include "snapshot_vet.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "storage.h"

/* What the child writes, in one write() well under PIPE_BUF. */
struct vet_answer {
    int32_t rc;
    uint64_t index, term;
};

/* The child: nothing of the parent's is touched but memory it reads (no
 * event loop, no socket, no LMDB environment of the parent's; every
 * other descriptor is closed first so that none outlives the parent
 * because of it), and it ends with _exit(), so no handler runs twice. */
static void child_main(const char *in, const char *out_path, int out)
{
    static const int ends[] = {SIGTERM, SIGINT, SIGSEGV, SIGBUS, SIGABRT,
                               SIGFPE, SIGILL, SIGXFSZ};
    const struct rlimit no_core = {0, 0};
    struct raft_snapshot_meta meta = {0, 0};
    struct vet_answer a;
    struct stat sb;

    /* Whatever handlers the parent has (libevent's for its stop signals,
     * which would write to descriptors closed here; a sanitizer's or a
     * test framework's for faults, which would report or carry on), a
     * signal ends this process, and without a core file. */
    for (size_t i = 0; i < sizeof ends / sizeof ends[0]; i++)
        signal(ends[i], SIG_DFL);
    (void)setrlimit(RLIMIT_CORE, &no_core);
    /* A crafted tree can name the same pages from many places, and the
     * compacted copy would write them as often: it may not outgrow what
     * the input could honestly hold (SIGXFSZ ends it). */
    if (stat(in, &sb) == 0) {
        rlim_t most = (rlim_t)sb.st_size * 2 + ((rlim_t)64 << 20);
        const struct rlimit fsize = {most, most};
        (void)setrlimit(RLIMIT_FSIZE, &fsize);
    }
    if (out > 3)
        (void)close_range(3, (unsigned)out - 1, 0);
    (void)close_range((unsigned)out + 1, ~0u, 0);
    memset(&a, 0, sizeof a);
    a.rc = agenda_storage_snapshot_vet(in, out_path, &meta);
    a.index = meta.index;
    a.term = meta.term;
    _exit(write(out, &a, sizeof a) == (ssize_t)sizeof a ? 0 : 1);
}

/* Reap the child (it has answered or been killed: waitpid returns at
 * once) and leave v idle. */
static int finish(struct snapshot_vet *v)
{
    int status = 0;

    while (waitpid(v->pid, &status, 0) < 0 && errno == EINTR)
        ;
    event_free(v->ev);
    close(v->fd);
    snapshot_vet_init(v);
    return status;
}

static void on_child(evutil_socket_t fd, short what, void *arg)
{
    struct snapshot_vet *v = arg;
    struct snapshot_vet_result r;
    struct vet_answer a;
    snapshot_vet_cb cb = v->cb;
    void *cb_arg = v->arg;
    ssize_t got = 0;
    int status;

    memset(&r, 0, sizeof r);
    if (what & EV_TIMEOUT) {
        kill(v->pid, SIGKILL);
        r.outcome = SNAPSHOT_VET_TIMEOUT;
    } else {
        do
            got = read(fd, &a, sizeof a);
        while (got < 0 && errno == EINTR);
    }
    status = finish(v);
    if (r.outcome == SNAPSHOT_VET_CHECKED) {
        if (got == (ssize_t)sizeof a && WIFEXITED(status)
            && WEXITSTATUS(status) == 0) {
            r.rc = a.rc;
            r.meta.index = a.index;
            r.meta.term = a.term;
        } else {
            r.outcome = SNAPSHOT_VET_CRASHED;
            r.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
        }
    }
    cb(&r, cb_arg);
}

void snapshot_vet_init(struct snapshot_vet *v)
{
    memset(v, 0, sizeof *v);
    v->fd = -1;
}

bool snapshot_vet_running(const struct snapshot_vet *v)
{
    return v->pid > 0;
}

int snapshot_vet_start(struct snapshot_vet *v, struct event_base *base,
                       const char *in, const char *out, uint64_t timeout_ms,
                       snapshot_vet_cb cb, void *arg)
{
    int p[2];
    pid_t pid;
    struct timeval tv = {(time_t)(timeout_ms / 1000),
                         (suseconds_t)(timeout_ms % 1000) * 1000};

    if (snapshot_vet_running(v)) {
        errno = EBUSY;
        return -1;
    }
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
        child_main(in, out, p[1]);
    close(p[1]);
    if (pid < 0 || event_add(v->ev, &tv) != 0) {
        int e = pid < 0 ? errno : ENOMEM;
        if (pid > 0) {
            kill(pid, SIGKILL);
            while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
        }
        event_free(v->ev);
        close(p[0]);
        snapshot_vet_init(v);
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
    (void)finish(v);
}

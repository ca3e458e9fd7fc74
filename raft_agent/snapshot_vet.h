/*
 * snapshot_vet.h — reading a received snapshot in a child process before
 * this one does.
 *
 * A snapshot is a whole LMDB file from a peer, and LMDB trusts the pages
 * of the files it opens: a page whose offsets or lengths are wrong makes
 * it read outside its map (SIGSEGV) or trip an assertion (SIGABRT).  The
 * transport's CRC only proves that the file is the one the leader sent,
 * not that it is sound.  So the receiver first runs
 * agenda_storage_snapshot_vet() in a forked child: every record of every
 * database walked and every page of every key and value read, then a
 * compacted copy written by LMDB (the file that gets installed: nothing
 * of the peer's free list or unreachable pages is kept) and walked the
 * same way.  A crash or a hang there refuses the snapshot and costs this
 * process nothing; once a child has read the whole copy without a fault,
 * the same reads here (install walks it again) are safe.
 *
 * The parent never blocks: the child's answer comes through a pipe that
 * the event loop watches, with a time limit after which the child is
 * killed.
 */
#ifndef AGENDA_SNAPSHOT_VET_H
#define AGENDA_SNAPSHOT_VET_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <event2/event.h>

#include "raft.h"

enum snapshot_vet_outcome {
    SNAPSHOT_VET_CHECKED = 0, /* the child answered: see rc */
    SNAPSHOT_VET_CRASHED,     /* it died of a signal or without answering */
    SNAPSHOT_VET_TIMEOUT      /* it was killed at the time limit */
};

struct snapshot_vet_result {
    enum snapshot_vet_outcome outcome;
    int rc;                         /* CHECKED: the check's result */
    struct raft_snapshot_meta meta; /* CHECKED and rc 0: what it holds */
    int signal;                     /* CRASHED: the signal, 0 if none */
};

/* Called once per started check, from the event loop, unless cancelled. */
typedef void (*snapshot_vet_cb)(const struct snapshot_vet_result *r,
                                void *arg);

struct snapshot_vet {
    pid_t pid;                /* 0: no check running */
    int fd;                   /* the read end of the child's pipe */
    struct event *ev;
    snapshot_vet_cb cb;
    void *arg;
};

/* An idle vet (nothing to free until a check starts). */
void snapshot_vet_init(struct snapshot_vet *v);

/*
 * Vet the file at in, writing the copy to install at out, in a child,
 * answering through cb within timeout_ms.  Returns 0, or -1 with errno (a
 * check is already running: EBUSY; fork, pipe or event failures).
 */
int snapshot_vet_start(struct snapshot_vet *v, struct event_base *base,
                       const char *in, const char *out, uint64_t timeout_ms,
                       snapshot_vet_cb cb, void *arg);

bool snapshot_vet_running(const struct snapshot_vet *v);

/* End a running check without calling its cb: the child is killed and
 * reaped.  Nothing when none runs. */
void snapshot_vet_cancel(struct snapshot_vet *v);

#endif

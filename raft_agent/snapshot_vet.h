/*
 * snapshot_vet.h — reading a received snapshot in a child process before
 * this one does.
 *
 * A snapshot is a whole LMDB file from a peer, and LMDB trusts the pages
 * of the files it opens: a page whose offsets or counts are wrong makes it
 * read outside its map (SIGSEGV) or trip an assertion (SIGABRT).  The
 * transport's CRC only proves that the file is the one the leader sent,
 * not that it is sound.  So the receiver runs
 * agenda_storage_snapshot_vet() in a forked child: every record of every
 * database walked (every key and value checked to lie inside the file),
 * then put into a new environment, which is the file that gets installed
 * (nothing of the peer's file is kept but its records), and that walked
 * the same way.  A crash or a hang there refuses the snapshot and costs
 * this process nothing.
 *
 * The parent never blocks: the child's answer comes through a pipe that
 * the event loop watches, with a time limit after which the child is
 * killed; a killed child that has not exited yet is reaped later
 * (snapshot_vet_reap()).  The child dies with its parent.  Checks are
 * forked at most once per gap_ms (SNAPSHOT_VET_GAP_MS; a later one waits
 * for its turn), so that a peer sending one small file after another
 * cannot make the agent fork at the rate of its messages.
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
    int rc;                         /* CHECKED: the vet's result */
    struct raft_snapshot_meta meta; /* CHECKED and rc 0: what it holds */
    int signal;                     /* CRASHED: the signal, 0 if none */
};

/* Called once per started check, from the event loop, unless cancelled. */
typedef void (*snapshot_vet_cb)(const struct snapshot_vet_result *r,
                                void *arg);

/* What the child runs: agenda_storage_snapshot_vet() (tests put another
 * here, one that hangs, to reach the time limit). */
typedef int (*snapshot_vet_work)(const char *in, const char *out,
                                 struct raft_snapshot_meta *meta);

#define SNAPSHOT_VET_KILLED_MAX 4
#define SNAPSHOT_VET_GAP_MS 100
#define SNAPSHOT_VET_PATH_MAX 1024

struct snapshot_vet {
    snapshot_vet_work work;
    uint64_t gap_ms;          /* between forks (tests may shorten it) */
    pid_t pid;                /* 0: no child running */
    int fd;                   /* the read end of the child's pipe */
    struct event *ev;         /* the pipe, and the time limit */
    struct event *turn;       /* a check waiting for its turn to fork */
    snapshot_vet_cb cb;
    void *arg;
    char in[SNAPSHOT_VET_PATH_MAX], out[SNAPSHOT_VET_PATH_MAX];
    uint64_t timeout_ms;
    uint64_t forked_ms;       /* monotonic time of the last fork, or 0 */
    pid_t killed[SNAPSHOT_VET_KILLED_MAX]; /* to reap; 0: free slot */
};

/*
 * How long a child may take for a file of size bytes: a walk and a
 * rebuild go at hundreds of MB/s, so this only ends one that hangs.  The
 * sender waits that long (and its own stall time) for the answer.
 */
uint64_t snapshot_vet_limit_ms(uint64_t size);

/* An idle vet that runs agenda_storage_snapshot_vet(). */
void snapshot_vet_init(struct snapshot_vet *v);

/*
 * Vet the file at in, writing the copy to install at out, in a child,
 * answering through cb within timeout_ms of its fork (which may wait for
 * its turn, see above).  Returns 0, or -1 with errno (a check is already
 * running: EBUSY; a path too long: ENAMETOOLONG; fork, pipe or event
 * failures; a failure of a fork that waited for its turn is answered
 * through cb as a crash).
 */
int snapshot_vet_start(struct snapshot_vet *v, struct event_base *base,
                       const char *in, const char *out, uint64_t timeout_ms,
                       snapshot_vet_cb cb, void *arg);

/* A check is running or waiting for its turn. */
bool snapshot_vet_running(const struct snapshot_vet *v);

/* End a running check without calling its cb: the child is killed (and
 * reaped now or by snapshot_vet_reap()).  Nothing when none runs. */
void snapshot_vet_cancel(struct snapshot_vet *v);

/* Reap children that have exited since they were killed or answered;
 * with wait (at the end, when v goes), wait for every one, killing those
 * still there after a second. */
void snapshot_vet_reap(struct snapshot_vet *v, bool wait);

#endif

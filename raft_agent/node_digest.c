/*
 * node_digest.c — GET /digest, off the event loop.
 *
 * A digest reads the whole replicated state.  On the loop it would hold
 * heartbeats and every request for as long as that takes, and on a large
 * shard's leader outlast the election timeout and move leadership.  So it
 * runs on a thread of its own, as the snapshot copy does (node_snapshot.c):
 * the loop begins the read transaction and reads the applied index with it
 * (both then describe one state; the environment is MDB_NOTLS, so another
 * thread may use the transaction), the thread hashes, a pipe wakes the
 * loop, which ends the transaction and hands the result to the caller.
 *
 * One digest at a time.  Its thread only reads what stays put while it
 * runs: the databases' handles, reopened only by a snapshot install, and
 * the install and the node's end wait for it first (node_digest_join),
 * as the install needs no reader open.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "log.h"
#include "node_internal.h"

/* SHA-256 of the state machine and of the session table, as hex. */
static int digest_compute(struct agenda_node *n, MDB_txn *txn, char hex[65])
{
    uint8_t sm[32], all[32];
    int rc = n->cfg.sm_ops->digest(n->cfg.sm, txn, sm);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (rc == 0 && (ctx == NULL ||
                    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1))
        rc = ENOMEM;
    if (rc == 0) {
        EVP_DigestUpdate(ctx, sm, sizeof(sm));
        rc = agenda_sessions_digest(&n->sessions, txn, ctx);
    }
    unsigned int len = 32;
    if (rc == 0 && EVP_DigestFinal_ex(ctx, all, &len) != 1)
        rc = ENOMEM;
    EVP_MD_CTX_free(ctx);
    if (rc == 0)
        for (int i = 0; i < 32; i++)
            snprintf(hex + 2 * i, 3, "%02x", all[i]);
    return rc;
}

static void *digest_main(void *arg)
{
    struct agenda_node *n = arg;
    struct node_digest *d = &n->digest;
    d->rc = digest_compute(n, d->txn, d->hex);
    char one = 1;
    while (write(d->pipe[1], &one, 1) < 0 && errno == EINTR)
        ;
    return NULL;
}

/* The thread is done (or about to be): join it, end its transaction, and
 * give the caller still waiting the outcome. */
static void digest_finish(struct agenda_node *n)
{
    struct node_digest *d = &n->digest;
    if (!d->running)
        return;
    pthread_join(d->thread, NULL);
    d->running = false;
    /* the thread's byte, which a join from node_digest_join() leaves:
     * read later, it would have the next digest's thread joined on the
     * loop, whole */
    char buf[16];
    while (read(d->pipe[0], buf, sizeof(buf)) > 0)
        ;
    agenda_storage_read_end(n->st, d->txn);
    d->txn = NULL;
    agenda_node_digest_cb cb = d->cb;
    d->cb = NULL;
    if (cb != NULL)
        cb(d->arg, d->rc, d->hex, d->applied);
}

static void digest_done_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    digest_finish(arg);
}

int agenda_node_digest_start(struct agenda_node *n, agenda_node_digest_cb cb,
                             void *arg)
{
    struct node_digest *d = &n->digest;
    if (d->running)
        return AGENDA_STORAGE_BUSY;
    raft_term term;
    int rc = agenda_storage_read_begin(n->st, &d->txn);
    if (rc != 0)
        return rc;
    agenda_storage_applied(n->st, &d->applied, &term);
    d->cb = cb;
    d->arg = arg;
    if (pthread_create(&d->thread, NULL, digest_main, n) != 0) {
        agenda_storage_read_end(n->st, d->txn);
        d->txn = NULL;
        d->cb = NULL;
        return AGENDA_STORAGE_NOMEM;
    }
    d->running = true;
    return 0;
}

void agenda_node_digest_forget(struct agenda_node *n, void *arg)
{
    if (n->digest.arg == arg)
        n->digest.cb = NULL;
}

void node_digest_join(struct agenda_node *n)
{
    if (n->digest.running)
        agenda_log(AGENDA_LOG_INFO, "shard %s node %u: waiting for the "
                   "digest in progress", n->cfg.shard, n->cfg.id);
    digest_finish(n);
}

int node_digest_init(struct agenda_node *n)
{
    struct node_digest *d = &n->digest;
    if (pipe2(d->pipe, O_CLOEXEC | O_NONBLOCK) != 0)
        return -1;
    d->ev = event_new(n->base, d->pipe[0], EV_READ | EV_PERSIST,
                      digest_done_cb, n);
    if (d->ev == NULL || event_add(d->ev, NULL) != 0)
        return -1;
    return 0;
}

void node_digest_free(struct agenda_node *n)
{
    struct node_digest *d = &n->digest;
    node_digest_join(n);
    if (d->ev != NULL)
        event_free(d->ev);
    d->ev = NULL;
    for (int i = 0; i < 2; i++) {
        if (d->pipe[i] >= 0)
            close(d->pipe[i]);
        d->pipe[i] = -1;
    }
}

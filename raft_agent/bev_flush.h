/*
 * bev_flush.h — write a socket bufferevent's queued output now.
 *
 * libevent writes a bufferevent's output when the loop next finds the
 * socket writable.  A replica that queues a message or an answer and then
 * blocks in the fsync of its batch would hold those bytes back for the
 * whole sync: a follower's append would start a sync later, a client's
 * answer would wait for a commit it does not depend on.  This writes what
 * the socket takes at once.
 */
#ifndef AGENDA_BEV_FLUSH_H
#define AGENDA_BEV_FLUSH_H

#include <event2/bufferevent.h>

/* Write as much of bev's output as its socket accepts without blocking;
 * what it does not take the bufferevent sends as usual.  The bufferevent's
 * write callback still runs from the loop: its write event, armed when the
 * bytes were queued, fires on the next turn and runs the callback even
 * when nothing is left to write (libevent 2.1, bufferevent_writecb).  A
 * bev that is not a plain socket bufferevent (TLS, filters) is left alone:
 * its output is not what goes on the wire. */
void agenda_bev_write_now(struct bufferevent *bev);

#endif /* AGENDA_BEV_FLUSH_H */

/* bev_flush.c — write a socket bufferevent's queued output now; see
 * bev_flush.h. */
#include "bev_flush.h"

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>

void agenda_bev_write_now(struct bufferevent *bev)
{
    /* Only a plain socket bufferevent holds the bytes that go on the
     * wire: a TLS one holds plaintext, a filter feeds another bufferevent;
     * those are left to libevent. */
    if (bufferevent_openssl_get_ssl(bev) != NULL ||
        bufferevent_get_underlying(bev) != NULL)
        return;
    struct evbuffer *out = bufferevent_get_output(bev);
    evutil_socket_t fd = bufferevent_getfd(bev);
    if (fd < 0 || evbuffer_get_length(out) == 0)
        return;
    /* A socket bufferevent freezes the start of its output so that only
     * it drains it; this does what its write event would.  A failed write
     * (EAGAIN, a reset) leaves the bytes: the bufferevent meets the same
     * condition and handles it. */
    evbuffer_unfreeze(out, 1);
    (void)evbuffer_write(out, fd);
    evbuffer_freeze(out, 1);
}

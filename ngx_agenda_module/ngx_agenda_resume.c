
/*
 * ngx_agenda_resume.c — the message id a subscription resumes from.
 *
 * nchan 1.3.6 aborts the worker (spool_fetch_msg: "Assertion
 * `spool->msg_status == MSG_INVALID' failed", upstream issues 534, 670,
 * 676 and 720) when two subscribers ask an empty channel for one message
 * id, however well formed: the first leaves a spool waiting for that id,
 * the second trips over it.  An empty channel is common: one that has not
 * had a message yet, or whose messages expired (nchan_message_timeout),
 * and clients reconnecting from two tabs send the same id.  Every worker
 * crash drops all the websockets and requests it served.
 *
 * So nchan gets a client's message id ($agenda_last_event_id, named by
 * nchan_subscriber_last_message_id) only when the channel holds a message
 * recent enough to still be there when nchan looks: the guard asks nchan
 * about the channel first (GET on the internal publisher location, an
 * in-memory subrequest) and drops the id otherwise.  Without an id nchan
 * sends what comes next (nchan_subscriber_first_message newest), which is
 * what resuming from an id past every message there would do too; what a
 * client missed while its messages expired, it learns from /changes, as
 * it does when its id is too old.
 */


#include "ngx_agenda_module.h"


/* A channel's newest message must be younger than this for an id to be
 * passed on: nchan_message_timeout (10 minutes in config/gen-nginx) less
 * a minute, so the channel cannot empty itself before nchan reads it. */
#define NGX_HTTP_AGENDA_RESUME_MAX_AGE  540


static void ngx_http_agenda_resume_cleanup(void *data);
static ngx_int_t ngx_http_agenda_resume_done(ngx_http_request_t *sr,
    void *data, ngx_int_t rc);
static void ngx_http_agenda_resume_wake(ngx_event_t *ev);
static ngx_int_t ngx_http_agenda_resume_field(ngx_str_t *info,
    const char *name, size_t len, ngx_str_t *value);


/*
 * Asks nchan about channel: NGX_OK once the subrequest is issued (the
 * phase handler is called again when it ends, rs->done then set),
 * NGX_ERROR without memory.
 */

ngx_int_t
ngx_http_agenda_resume_ask(ngx_http_request_t *r, ngx_str_t *channel,
    ngx_http_agenda_resume_t *rs)
{
    ngx_pool_cleanup_t          *cln;
    ngx_http_request_t          *sr;

    /* the wake-up below must not outlive rs, which the pool holds */

    cln = ngx_pool_cleanup_add(r->pool, 0);

    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_agenda_resume_cleanup;
    cln->data = rs;

    /* a plain GET: not the client's websocket upgrade and headers */

    if (ngx_http_agenda_publisher_subrequest(r, channel,
                                             ngx_http_agenda_resume_done,
                                             rs, &sr)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    sr->method = NGX_HTTP_GET;
    ngx_str_set(&sr->method_name, "GET");

    rs->asked = 1;

    return NGX_OK;
}


static void
ngx_http_agenda_resume_cleanup(void *data)
{
    ngx_http_agenda_resume_t *rs = data;

    if (rs->wake.posted) {
        ngx_delete_posted_event(&rs->wake);
    }
}


static ngx_int_t
ngx_http_agenda_resume_done(ngx_http_request_t *sr, void *data,
    ngx_int_t rc)
{
    ngx_http_agenda_resume_t *rs = data;

    ngx_buf_t  *b;

    if (rs->done) {
        return rc;
    }

    rs->done = 1;
    rs->status = (rc == NGX_ERROR || rc >= NGX_HTTP_SPECIAL_RESPONSE)
                 ? 0 : (ngx_int_t) sr->headers_out.status;

    b = (sr->out != NULL) ? sr->out->buf : NULL;

    if (rs->status == NGX_HTTP_OK && b != NULL && b->last > b->pos) {
        rs->info.data = b->pos;
        rs->info.len = b->last - b->pos;
    }

    /*
     * nchan may answer from its IPC handler (the channel lives in another
     * worker), which runs no posted requests: the guard, woken by this
     * subrequest, would wait for its client's next byte.
     */

    if (!rs->wake.posted) {
        rs->wake.handler = ngx_http_agenda_resume_wake;
        rs->wake.data = sr->connection;
        rs->wake.log = sr->connection->log;
        ngx_post_event(&rs->wake, &ngx_posted_events);
    }

    /* nchan's refusal (a channel it does not know: 404) is an answer, not
     * a failure of the subscription that asked */

    if ((rc != NGX_ERROR && rc < NGX_HTTP_SPECIAL_RESPONSE)
        || sr->connection->error)
    {
        return rc;
    }

    return NGX_OK;
}


static void
ngx_http_agenda_resume_wake(ngx_event_t *ev)
{
    ngx_http_run_posted_requests(ev->data);
}


/*
 * What nchan said: keeps rs->msgid only when the channel holds a message
 * published within NGX_HTTP_AGENDA_RESUME_MAX_AGE seconds of now, and the
 * id is not ahead of that newest message; otherwise empties it.  nchan
 * parks a subscriber whose id is ahead until a message with a later id
 * comes: a forged id, or one from a clock gone wrong, would otherwise get
 * nothing for as long as its token lasts.  nchan's answer is text/plain
 * lines such as "queued messages: 3" and "last message id: 1795822528:0".
 */

void
ngx_http_agenda_resume_decide(ngx_http_agenda_resume_t *rs, time_t now)
{
    ngx_int_t   queued, last, last_tag, at, tag;
    ngx_str_t   value;

    queued = NGX_ERROR;

    if (rs->status == NGX_HTTP_OK
        && ngx_http_agenda_resume_field(&rs->info, "queued messages: ", 17,
                                        &value)
           == NGX_OK)
    {
        queued = ngx_atoi(value.data, value.len);
    }

    /* the client's id was checked by the guard: this parse succeeds */

    if (queued == NGX_ERROR || queued <= 0
        || ngx_http_agenda_resume_field(&rs->info, "last message id: ", 17,
                                        &value)
           != NGX_OK
        || ngx_http_agenda_msgid_parse(value.data, value.len, &last,
                                       &last_tag)
           != NGX_OK
        || (time_t) last + NGX_HTTP_AGENDA_RESUME_MAX_AGE < now
        || ngx_http_agenda_msgid_parse(rs->msgid.data, rs->msgid.len, &at,
                                       &tag)
           != NGX_OK
        || at > last || (at == last && tag > last_tag))
    {
        rs->msgid.len = 0;
    }
}


/*
 * A message id "<time>:<tag>", both decimal, the time at most 19 digits
 * and the tag at most 32767 (nchan keeps it in an int16): the guard's
 * check of a client's id, and the reading of nchan's own.
 */

ngx_int_t
ngx_http_agenda_msgid_parse(u_char *p, size_t len, ngx_int_t *at,
    ngx_int_t *tag)
{
    u_char  *colon, *last;

    last = p + len;
    colon = ngx_strlchr(p, last, ':');

    if (colon == NULL || colon == p || colon + 1 == last
        || colon - p > 19 || last - colon - 1 > 5)
    {
        return NGX_ERROR;
    }

    *at = ngx_atoi(p, colon - p);
    *tag = ngx_atoi(colon + 1, last - colon - 1);

    if (*at == NGX_ERROR || *tag == NGX_ERROR || *tag > 32767) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* The rest of the line of info that starts with name. */

static ngx_int_t
ngx_http_agenda_resume_field(ngx_str_t *info, const char *name, size_t len,
    ngx_str_t *value)
{
    u_char  *p, *end, *eol;

    p = info->data;
    end = info->data + info->len;

    while (p < end) {
        eol = ngx_strlchr(p, end, '\n');

        if (eol == NULL) {
            eol = end;
        }

        if ((size_t) (eol - p) > len
            && ngx_strncmp(p, name, len) == 0)
        {
            value->data = p + len;
            value->len = eol - p - len;

            while (value->len > 0
                   && (value->data[value->len - 1] == '\r'
                       || value->data[value->len - 1] == ' '))
            {
                value->len--;
            }

            return NGX_OK;
        }

        p = eol + 1;
    }

    return NGX_DECLINED;
}

/*
 * purge_driver.c — see purge_driver.h.
 */
#include "purge_driver.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "log.h"

#define PURGE_POLL_MS 1000 /* how often a leader looks for unfinished work */
#define PURGE_PAUSE_MS 50  /* between two batches of one calendar */

struct agenda_purge_driver {
    struct agenda_node *node;
    struct event *timer;
    struct agenda_node_op *op; /* the batch in flight, or NULL */
    char calendar[64];         /* its calendar */
    unsigned turn;             /* which listed calendar goes next */
};

static void arm(struct agenda_purge_driver *d, unsigned ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(d->timer, &tv);
}

static void purge_done(void *arg, enum agenda_node_fail fail,
                       const struct sm_result *res, bool duplicate)
{
    (void)duplicate;
    struct agenda_purge_driver *d = arg;
    d->op = NULL;
    if (fail != AGENDA_NODE_OK || res->status != 200) {
        /* lost leadership, full disk...: the next leader, or the next
         * poll, tries again */
        agenda_log(AGENDA_LOG_INFO, "purge of calendar %s: %s", d->calendar,
                   fail != AGENDA_NODE_OK ? agenda_node_fail_message(fail)
                                          : "refused");
        arm(d, PURGE_POLL_MS);
        return;
    }
    json_t *body = json_loadb((const char *)res->body.data, res->body.len,
                              0, NULL);
    bool more = json_is_true(json_object_get(body, "more"));
    json_decref(body);
    if (!more)
        agenda_log(AGENDA_LOG_INFO, "calendar %s of a deleted group is "
                   "empty now", d->calendar);
    arm(d, more ? PURGE_PAUSE_MS : PURGE_POLL_MS);
}

/* One of the calendars whose purge is unfinished, by turns, into
 * d->calendar.  Returns false when there is none (or the state cannot
 * be read now). */
static bool pick_calendar(struct agenda_purge_driver *d)
{
    static const char ask[] = "{\"op\":\"calendar.purging\",\"actor\":"
                              "{\"user\":\"\",\"role\":\"system\"},"
                              "\"args\":{}}";
    struct sm_query q = {.method = "POST", .path = "v1/queries",
                         .body = (const uint8_t *)ask,
                         .body_len = sizeof(ask) - 1};
    struct sm_result res = {0};
    bool found = false;
    if (agenda_node_query(d->node, &q, &res) == 0 && res.status == 200) {
        json_t *body = json_loadb((const char *)res.body.data, res.body.len,
                                  0, NULL);
        json_t *list = json_object_get(body, "calendars");
        size_t n = json_array_size(list);
        const char *cal = n > 0 ? json_string_value(
                                      json_array_get(list, d->turn++ % n))
                                : NULL;
        if (cal != NULL && strlen(cal) < sizeof(d->calendar)) {
            strcpy(d->calendar, cal);
            found = true;
        }
        json_decref(body);
    }
    agenda_buf_free(&res.body);
    return found;
}

/* Propose the next batch of d->calendar's purge.  Its request id names
 * the applied index it follows, so a leader that proposes it again after
 * a restart gets the first outcome back instead of a second deletion. */
static void propose(struct agenda_purge_driver *d)
{
    struct agenda_node_info info;
    agenda_node_info(d->node, &info);
    char id[96];
    snprintf(id, sizeof(id), "purge:%s:%" PRIu64, d->calendar,
             (uint64_t)info.raft.applied);
    json_t *cmd = json_pack("{s:s,s:{s:s,s:s},s:{s:s}}", "op",
                            "calendar.purge", "actor", "user", "", "role",
                            "system", "args", "calendar", d->calendar);
    char *text = cmd != NULL ? json_dumps(cmd, JSON_COMPACT) : NULL;
    json_decref(cmd);
    enum agenda_node_fail f = AGENDA_NODE_UNAVAILABLE;
    if (text != NULL)
        f = agenda_node_write(d->node, id, text, strlen(text), purge_done,
                              d, &d->op);
    free(text);
    if (f != AGENDA_NODE_OK) {
        d->op = NULL;
        arm(d, PURGE_POLL_MS);
    }
}

static void tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct agenda_purge_driver *d = arg;
    if (d->op != NULL)
        return; /* its completion re-arms */
    if (agenda_node_is_leader(d->node) && pick_calendar(d))
        propose(d);
    else
        arm(d, PURGE_POLL_MS);
}

struct agenda_purge_driver *agenda_purge_driver_new(struct event_base *base,
                                                    struct agenda_node *node)
{
    struct agenda_purge_driver *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return NULL;
    d->node = node;
    d->timer = evtimer_new(base, tick, d);
    if (d->timer == NULL) {
        free(d);
        return NULL;
    }
    arm(d, PURGE_POLL_MS);
    return d;
}

void agenda_purge_driver_free(struct agenda_purge_driver *d)
{
    if (d == NULL)
        return;
    if (d->op != NULL)
        agenda_node_cancel(d->node, d->op);
    event_free(d->timer);
    free(d);
}

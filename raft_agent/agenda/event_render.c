/* event_render.c — events as the API shows them; see event_render.h. */
#include "event_render.h"

#include <errno.h>
#include <string.h>

#include "event_index.h"
#include "render.h"
#include "validate.h"

int agenda_ev_render_instant(json_t *obj, const char *key, int64_t ms,
                             bool all_day)
{
    if (!all_day)
        return agenda_render_time(obj, key, ms);
    char text[40];
    json_t *v = agenda_date_format(ms, text, sizeof(text)) < 0
                    ? json_null()
                    : json_string(text);
    return json_object_set_new(obj, key, v) == 0 ? 0 : ENOMEM;
}

/* Share ev[key] with out when present: values are never modified once
 * rendered, so a reference is enough (a deep copy per field was most of
 * the cost of a month view). */
static int copy(json_t *out, const json_t *ev, const char *key)
{
    json_t *v = json_object_get(ev, key);
    if (v == NULL)
        return 0;
    return json_object_set(out, key, v) == 0 ? 0 : ENOMEM;
}

json_t *agenda_ev_render(const json_t *ev, bool full)
{
    static const char *const full_keys[] = {
        "calendar", "id", "title", "description", "location", "all_day",
        "time_zone", "participants", "group", "visibility", "version",
        "creator", NULL,
    };
    static const char *const busy_keys[] = {
        "calendar", "id", "all_day", NULL,
    };
    json_t *out = json_object();
    if (out == NULL)
        return NULL;
    bool all_day = json_is_true(json_object_get(ev, "all_day"));
    const char *const *keys = full ? full_keys : busy_keys;
    int rc = 0;
    for (size_t i = 0; keys[i] != NULL && rc == 0; i++)
        rc = copy(out, ev, keys[i]);
    if (rc == 0)
        rc = agenda_ev_render_instant(
            out, "start", json_integer_value(json_object_get(ev, "start")),
            all_day);
    if (rc == 0)
        rc = agenda_ev_render_instant(
            out, "end", json_integer_value(json_object_get(ev, "end")),
            all_day);
    /* the instants an all-day event occupies, in its time zone's days */
    if (rc == 0 && all_day)
        rc = agenda_render_time(out, "start_at", agenda_ev_start(ev));
    if (rc == 0 && all_day)
        rc = agenda_render_time(out, "end_at", agenda_ev_end(ev));
    if (rc == 0 && full) {
        rc = agenda_render_time(
            out, "created",
            json_integer_value(json_object_get(ev, "created")));
        if (rc == 0)
            rc = agenda_render_time(
                out, "updated",
                json_integer_value(json_object_get(ev, "updated")));
    }
    if (rc == 0 && !full)
        rc = json_object_set_new(out, "busy", json_true()) != 0 ||
                     json_object_set_new(out, "visibility",
                                         json_string("private")) != 0
                 ? ENOMEM
                 : 0;
    if (rc != 0) {
        json_decref(out);
        return NULL;
    }
    return out;
}

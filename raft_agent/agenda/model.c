/* model.c — JSON names of the model's enumerations; see model.h. */
#include "model.h"

#include <string.h>

struct name {
    int value;
    const char *name;
};

static const struct name roles[] = {
    {AGENDA_ROLE_USER, "user"},
    {AGENDA_ROLE_ADMIN, "admin"},
    {AGENDA_ROLE_SYSTEM, "system"},
};

static const struct name cal_roles[] = {
    {AGENDA_CAL_NONE, "none"},
    {AGENDA_CAL_MEMBER, "member"},
    {AGENDA_CAL_LEADER, "leader"},
};

static const struct name responses[] = {
    {AGENDA_RESPONSE_NEEDS_ACTION, "needs_action"},
    {AGENDA_RESPONSE_ACCEPTED, "accepted"},
    {AGENDA_RESPONSE_DECLINED, "declined"},
    {AGENDA_RESPONSE_TENTATIVE, "tentative"},
};

static const struct name visibilities[] = {
    {AGENDA_VISIBILITY_DEFAULT, "default"},
    {AGENDA_VISIBILITY_PRIVATE, "private"},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const char *name_of(const struct name *t, size_t n, int v)
{
    for (size_t i = 0; i < n; i++)
        if (t[i].value == v)
            return t[i].name;
    return "unknown";
}

static int parse(const struct name *t, size_t n, const char *s, int unknown)
{
    if (s == NULL)
        return unknown;
    for (size_t i = 0; i < n; i++)
        if (strcmp(t[i].name, s) == 0)
            return t[i].value;
    return unknown;
}

const char *agenda_role_name(enum agenda_role r)
{
    return name_of(roles, COUNT(roles), (int)r);
}

enum agenda_role agenda_role_parse(const char *s)
{
    return (enum agenda_role)parse(roles, COUNT(roles), s, 0);
}

const char *agenda_cal_role_name(enum agenda_cal_role r)
{
    return name_of(cal_roles, COUNT(cal_roles), (int)r);
}

enum agenda_cal_role agenda_cal_role_parse(const char *s)
{
    return (enum agenda_cal_role)parse(cal_roles, COUNT(cal_roles), s, -1);
}

const char *agenda_response_name(enum agenda_response r)
{
    return name_of(responses, COUNT(responses), (int)r);
}

enum agenda_response agenda_response_parse(const char *s)
{
    return (enum agenda_response)parse(responses, COUNT(responses), s, 0);
}

const char *agenda_visibility_name(enum agenda_visibility v)
{
    return name_of(visibilities, COUNT(visibilities), (int)v);
}

enum agenda_visibility agenda_visibility_parse(const char *s)
{
    return (enum agenda_visibility)parse(visibilities, COUNT(visibilities),
                                         s, 0);
}

/*
 * tz_names.h — the compiled-in IANA time zone names (tz_names.c, generated
 * by gen_tz_names.sh).  Static data: valid for the life of the process.
 */
#ifndef AGENDA_TZ_NAMES_H
#define AGENDA_TZ_NAMES_H

#include <stddef.h>

/* Zone and link names in strcmp() order, no duplicates. */
extern const char *const agenda_tz_names[];
extern const size_t agenda_tz_names_count;
/* The tzdata release the table was generated from, e.g. "2025b". */
extern const char agenda_tz_version[];

#endif /* AGENDA_TZ_NAMES_H */

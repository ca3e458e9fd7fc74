/*
 * log.h — one-line diagnostics on stderr.
 *
 * Each call writes a single line "2024-05-01T12:00:00.123Z WARN message\n"
 * with one write(2), so lines from several processes sharing a terminal or
 * a log collector do not interleave.  Lines longer than 1 KiB are cut.
 */
#ifndef AGENDA_LOG_H
#define AGENDA_LOG_H

enum agenda_log_level {
    AGENDA_LOG_DEBUG = 0,
    AGENDA_LOG_INFO,
    AGENDA_LOG_WARN,
    AGENDA_LOG_ERROR,
    AGENDA_LOG_OFF      /* only for agenda_log_set_level(): log nothing */
};

/* Drop messages below `min` from now on (default AGENDA_LOG_INFO).  The
 * level is process-wide: set it once at start, from one thread. */
void agenda_log_set_level(enum agenda_log_level min);

/* The level called name ("debug", "info", "warn", "error") in *out:
 * returns 0, or -1 for another name (NULL included). */
int agenda_log_level_parse(const char *name, enum agenda_log_level *out);

/* The current minimum level, so callers can skip costly formatting. */
enum agenda_log_level agenda_log_level(void);

/* Format and write one line if `level` passes the minimum.  A trailing
 * newline in fmt is not needed (one is added).  Never fails visibly: if
 * stderr cannot be written the line is lost. */
void agenda_log(enum agenda_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif /* AGENDA_LOG_H */

/* log.c — timestamped one-line diagnostics; see log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 1024

static enum agenda_log_level log_min = AGENDA_LOG_INFO;

static const char *const log_names[] = {
    [AGENDA_LOG_DEBUG] = "DEBUG",
    [AGENDA_LOG_INFO] = "INFO",
    [AGENDA_LOG_WARN] = "WARN",
    [AGENDA_LOG_ERROR] = "ERROR",
};

void agenda_log_set_level(enum agenda_log_level min)
{
    log_min = min;
}

int agenda_log_level_parse(const char *name, enum agenda_log_level *out)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; name != NULL && i < 4; i++)
        if (strcmp(name, names[i]) == 0) {
            *out = (enum agenda_log_level)i; /* the enum's order */
            return 0;
        }
    return -1;
}

enum agenda_log_level agenda_log_level(void)
{
    return log_min;
}

void agenda_log(enum agenda_log_level level, const char *fmt, ...)
{
    if (level < log_min || level >= AGENDA_LOG_OFF)
        return;

    char line[LOG_LINE_MAX];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);

    int n = snprintf(line, sizeof line,
                     "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000L, log_names[level]);
    if (n < 0 || (size_t)n >= sizeof line)
        return;

    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    if (m < 0)
        return;

    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof line - 2)
        len = sizeof line - 2; /* cut: keep room for the newline */
    line[len++] = '\n';

    /* One write so the line arrives whole; a short or failed write to
     * stderr has nowhere better to be reported. */
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

/*
 * sim_trace.h — the readable event trace of a replayed run.
 *
 * Lines look like "[  123.4] n2 ...", the time in ticks.  The trace only
 * prints; formatting is skipped entirely when tracing is off, so it costs
 * nothing in the bulk runs.
 */
#ifndef SIM_TRACE_H
#define SIM_TRACE_H

#include "sim.h"

/* Print one trace line (a newline is added). */
void sim_tracef(const struct sim *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* One-line description of a message into buf. */
void sim_msg_describe(const struct raft_msg *m, char *buf, size_t len);

#define SIM_TRACE(s, ...)                       \
    do {                                        \
        if ((s)->trace)                         \
            sim_tracef((s), __VA_ARGS__);       \
    } while (0)

#endif /* SIM_TRACE_H */

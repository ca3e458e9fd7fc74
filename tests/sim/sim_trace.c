/* sim_trace.c — readable event trace; see sim_trace.h. */
#include "sim_trace.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

void sim_tracef(const struct sim *s, const char *fmt, ...)
{
    printf("[%6" PRIu64 ".%" PRIu64 "] ", s->now / SIM_TIME_PER_TICK,
           s->now % SIM_TIME_PER_TICK);
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

void sim_msg_describe(const struct raft_msg *m, char *buf, size_t len)
{
    int off = snprintf(buf, len, "%s n%u->n%u term %" PRIu64,
                       raft_msg_type_name(m->type), m->from, m->to, m->term);
    if (off < 0 || (size_t)off >= len)
        return;
    size_t o = (size_t)off;
    switch (m->type) {
    case RAFT_MSG_APPEND:
        if (m->n_entries == 0) {
            snprintf(buf + o, len - o, " prev %" PRIu64 "/%" PRIu64
                     " no entries, commit %" PRIu64, m->index, m->log_term,
                     m->commit);
            break;
        }
        snprintf(buf + o, len - o,
                 " prev %" PRIu64 "/%" PRIu64 " entries %" PRIu64 "..%"
                 PRIu64 " commit %" PRIu64,
                 m->index, m->log_term, m->index + 1,
                 m->index + m->n_entries, m->commit);
        break;
    case RAFT_MSG_APPEND_RESP:
        snprintf(buf + o, len - o, " index %" PRIu64 "%s hint %" PRIu64
                 "/%" PRIu64, m->index, m->reject ? " REJECT" : "",
                 m->reject_hint, m->hint_term);
        break;
    case RAFT_MSG_VOTE:
    case RAFT_MSG_PREVOTE:
        snprintf(buf + o, len - o, " last %" PRIu64 "/%" PRIu64,
                 m->index, m->log_term);
        break;
    case RAFT_MSG_VOTE_RESP:
    case RAFT_MSG_PREVOTE_RESP:
        snprintf(buf + o, len - o, "%s", m->reject ? " REJECT" : " grant");
        break;
    case RAFT_MSG_HEARTBEAT:
    case RAFT_MSG_HEARTBEAT_RESP:
        snprintf(buf + o, len - o, " commit %" PRIu64 " ctx %" PRIu64,
                 m->commit, m->context);
        break;
    case RAFT_MSG_SNAPSHOT:
        snprintf(buf + o, len - o, " snap %" PRIu64 "/%" PRIu64,
                 m->snapshot.index, m->snapshot.term);
        break;
    default:
        break;
    }
}

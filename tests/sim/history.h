/*
 * history.h — the client history of one run, for the linearizability check.
 *
 * Each operation has an invocation and a completion stamp from one
 * strictly increasing clock, so "a completed before b was invoked" is
 * exact.  A PUT whose outcome is unknown (its node crashed, lost
 * leadership, or the client gave up after proposing) stays in the history
 * as SIM_OP_UNKNOWN: it may take effect at any point after its invocation,
 * or never.  Operations that certainly had no effect (a GET without an
 * answer, a PUT never accepted by any leader) are SIM_OP_DROPPED.
 */
#ifndef SIM_HISTORY_H
#define SIM_HISTORY_H

#include <stddef.h>
#include <stdint.h>

enum sim_op_kind {
    SIM_OP_PUT = 1,
    SIM_OP_GET
};

enum sim_op_status {
    SIM_OP_PENDING = 0,
    SIM_OP_OK,
    SIM_OP_UNKNOWN,
    SIM_OP_DROPPED
};

struct sim_op {
    uint8_t kind;      /* enum sim_op_kind */
    uint8_t status;    /* enum sim_op_status */
    uint8_t key;
    uint8_t client;
    uint64_t value;    /* PUT: the value written; GET: the value read */
    uint64_t invoke;
    uint64_t complete; /* valid when status is SIM_OP_OK */
};

struct sim_history {
    struct sim_op *ops;
    size_t n;
    size_t cap;
    uint64_t clock;
};

void sim_history_init(struct sim_history *h);
void sim_history_free(struct sim_history *h);

/* Next stamp of the history clock (strictly increasing). */
uint64_t sim_history_stamp(struct sim_history *h);

/* Record the invocation of an operation; *op_out gets its position.
 * Returns 0, or -1 without memory. */
int sim_history_invoke(struct sim_history *h, uint8_t kind, uint8_t key,
                       uint8_t client, uint64_t value, size_t *op_out);

#endif /* SIM_HISTORY_H */

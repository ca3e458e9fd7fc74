/*
 * lincheck.h — linearizability of a register history.
 *
 * Keys are independent registers, so the history is checked one key at a
 * time (linearizability is compositional).  For each key a Wing & Gong
 * search with Lowe's memoisation looks for an order of the operations that
 * respects real time and register semantics (a GET returns the value of
 * the latest PUT before it, or 0 if none).  PUTs with an unknown outcome
 * may be placed anywhere after their invocation or left out.
 */
#ifndef SIM_LINCHECK_H
#define SIM_LINCHECK_H

#include <stddef.h>

#include "history.h"

/* Most operations one key may carry: the search state is a bitmask. */
#define SIM_LIN_MAX_OPS 32

struct sim_lin_stats {
    size_t ops_checked;  /* operations that took part in the check */
    size_t states;       /* search states explored */
};

/* Check h.  Returns 0 when every key's history is linearizable, -1 when
 * one is not (or a key has more than SIM_LIN_MAX_OPS operations, or memory
 * runs out); msg then describes the key and its operations.  st, if not
 * NULL, is added to. */
int sim_lincheck(const struct sim_history *h, char *msg, size_t msg_len,
                 struct sim_lin_stats *st);

#endif /* SIM_LINCHECK_H */
